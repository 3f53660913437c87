//! Writing files into the working tree without ever leaving it.
//!
//! Every file is created, renamed and removed relative to a handle on its parent
//! directory, and that handle is reached from the worktree root one component
//! at a time with `openat(O_NOFOLLOW | O_DIRECTORY)`. A symlink or a file where
//! a directory should be is an error, and since no path is ever resolved again
//! after its directories were checked, another process swapping a directory for
//! a symlink while dsv writes cannot redirect a write outside the worktree (a
//! tree from an untrusted remote cannot either). Files are written to a
//! temporary sibling and renamed into place, so a reader never sees a
//! half-written file.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::storage::{Storage, temp_name};
use crate::store::ObjectStore;
use crate::store::chunk::StatStamp;

use crate::paths::{display_path, os_path};

fn io_err(action: &'static str, root: &Path, rel: &[u8], e: Errno) -> Error {
    Error::io(action, root.join(os_path(rel)), std::io::Error::from(e))
}

/// Flags for stepping into one directory: never through a link, never a file.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens the worktree root (the user's own path: a symlink there is followed).
fn open_root(root: &Path) -> Result<OwnedFd> {
    rustix::fs::openat(
        CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("opening", root, std::io::Error::from(e)))
}

/// What is at `name` in `dir` when it is not a directory (for the error message).
fn not_a_dir(dir: &OwnedFd, name: &[u8]) -> &'static str {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => "a symlink",
        _ => "a file",
    }
}

/// The components of `path` before its last one, and the last one; with `check`,
/// each must be a valid tree name.
fn parent_parts(path: &[u8], check: bool) -> Result<(Vec<&[u8]>, &[u8])> {
    let mut parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    let name = parts.pop().unwrap_or_default();
    for part in parts.iter().chain(std::iter::once(&name)).filter(|_| check) {
        crate::object::tree::check_name(part).map_err(|reason| WriteError::UnsafeName {
            path: display_path(path),
            reason,
        })?;
    }
    Ok((parts, name))
}

/// An open directory of the worktree, reached without following any link.
#[derive(Debug)]
pub struct WorkDir {
    fd: OwnedFd,
    root: PathBuf,
    /// The directory's repository path (empty for the root).
    rel: Vec<u8>,
}

impl WorkDir {
    /// Opens the parent directory of repository path `path`, creating missing
    /// directories when `create`; `Ok(None)` when a directory is missing and not
    /// created. Refuses to pass through a symlink or a file.
    pub fn parent_of(root: &Path, path: &[u8], create: bool) -> Result<Option<(WorkDir, Vec<u8>)>> {
        let (parts, name) = parent_parts(path, true)?;
        let mut fd = open_root(root)?;
        let mut rel: Vec<u8> = Vec::new();
        for part in parts {
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(part);
            fd = match Self::step(&fd, part, create) {
                Ok(Some(next)) => next,
                Ok(None) => return Ok(None),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    return Err(WriteError::NotADirectory {
                        path: display_path(path),
                        parent: display_path(&rel),
                        what: not_a_dir(&fd, part),
                    }
                    .into());
                }
                Err(e) => return Err(io_err("opening directory", root, &rel, e)),
            };
        }
        let dir = WorkDir {
            fd,
            root: root.to_path_buf(),
            rel,
        };
        Ok(Some((dir, name.to_vec())))
    }

    /// Opens (and when `create`, first makes) the directory `name` inside `dir`.
    fn step(
        dir: &OwnedFd,
        name: &[u8],
        create: bool,
    ) -> std::result::Result<Option<OwnedFd>, Errno> {
        match rustix::fs::openat(dir, name, dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                // Opened again with O_NOFOLLOW: whatever is there now must be a real directory.
                rustix::fs::openat(dir, name, dir_flags(), Mode::empty()).map(Some)
            }
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn path_of(&self, name: &[u8]) -> Vec<u8> {
        if self.rel.is_empty() {
            name.to_vec()
        } else {
            [&self.rel[..], b"/", name].concat()
        }
    }

    fn err(&self, action: &'static str, name: &[u8], e: Errno) -> Error {
        io_err(action, &self.root, &self.path_of(name), e)
    }

    /// Lstat of `name` in this directory; `None` when it does not exist.
    fn lstat(&self, name: &[u8]) -> Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err("reading", name, e)),
        }
    }

    /// A fresh temporary name for a sibling of `name` (a dsv temp file, which scans skip).
    fn temp(name: &[u8]) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let tmp = temp_name(Path::new(os_path(name)));
        tmp.file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Creates `tmp` here, runs `fill` on it, then renames it over `name`.
    fn replace(
        &self,
        name: &[u8],
        fill: impl FnOnce(&[u8]) -> Result<()>,
    ) -> Result<rustix::fs::Stat> {
        if let Some(st) = self.lstat(name)?
            && FileType::from_raw_mode(st.st_mode) == FileType::Directory
        {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
                .map_err(|_| WriteError::DirectoryInTheWay(display_path(&self.path_of(name))))?;
        }
        let tmp = Self::temp(name);
        let result = fill(&tmp).and_then(|()| {
            rustix::fs::renameat(&self.fd, &tmp[..], &self.fd, name)
                .map_err(|e| self.err("renaming", name, e))
        });
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp[..], AtFlags::empty());
            return Err(e);
        }
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.err("reading", name, e))
    }

    /// Creates a new file `name` here (never through a link) with permissions `perm`.
    fn create_file(&self, name: &[u8], perm: u32) -> Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(perm),
        )
        .map_err(|e| self.err("creating", name, e))?;
        Ok(File::from(fd))
    }

    /// Writes one entry (file, executable or symlink) from the store as `name` here;
    /// `size` is what its tree entry claims, and a file of another length is refused
    /// before it replaces anything.
    pub fn write_entry(
        &self,
        name: &[u8],
        mode: EntryMode,
        id: &ObjectId,
        size: u64,
        store: &ObjectStore,
        storage: &dyn Storage,
    ) -> Result<StatStamp> {
        crate::object::tree::check_name(name).map_err(|reason| WriteError::UnsafeName {
            path: display_path(&self.path_of(name)),
            reason,
        })?;
        storage.fault_point()?;
        let st = self.replace(name, |tmp| match mode {
            EntryMode::Symlink => {
                let link = store.get(id)?;
                crate::object::tree::check_size(&self.path_of(name), size, id, link.len() as u64)?;
                rustix::fs::symlinkat(&link[..], &self.fd, tmp)
                    .map_err(|e| self.err("creating symlink", tmp, e))
            }
            EntryMode::File | EntryMode::Exec => {
                let perm = if mode == EntryMode::Exec {
                    0o777
                } else {
                    0o666
                };
                // No buffering: the store hands over whole chunks, one write each.
                let mut w = self.create_file(tmp, perm)?;
                let n = store.read_into(id, &mut w).map_err(|e| match e {
                    Error::Io { source, .. } if source.kind() != std::io::ErrorKind::Other => {
                        Error::io(
                            "writing",
                            self.root.join(os_path(&self.path_of(name))),
                            source,
                        )
                    }
                    e => e,
                })?;
                crate::object::tree::check_size(&self.path_of(name), size, id, n)
            }
            EntryMode::Dir => Err(Error::Internal("write_entry on a directory".into())),
        })?;
        Ok(stamp(&st))
    }

    /// Replaces `name` here with a regular file holding `bytes`.
    pub fn write_bytes(&self, name: &[u8], bytes: &[u8]) -> Result<StatStamp> {
        let st = self.replace(name, |tmp| {
            let mut f = self.create_file(tmp, 0o666)?;
            f.write_all(bytes)
                .map_err(|e| Error::io("writing", self.root.join(os_path(&self.path_of(name))), e))
        })?;
        Ok(stamp(&st))
    }

    /// A handle on this directory's file descriptor.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[allow(clippy::unnecessary_cast)] // the field types differ between architectures
fn stamp(st: &rustix::fs::Stat) -> StatStamp {
    StatStamp {
        size: st.st_size as u64,
        mtime_ns: st.st_mtime as i64 * 1_000_000_000 + st.st_mtime_nsec as i64,
        ctime_ns: st.st_ctime as i64 * 1_000_000_000 + st.st_ctime_nsec as i64,
        ino: st.st_ino as u64,
    }
}

/// Writes one entry (file, executable or symlink) from the store; returns its new lstat.
pub fn write_entry(
    root: &Path,
    path: &[u8],
    mode: EntryMode,
    id: &ObjectId,
    size: u64,
    store: &ObjectStore,
    storage: &dyn Storage,
) -> Result<StatStamp> {
    let (dir, name) = WorkDir::parent_of(root, path, true)?
        .ok_or_else(|| WriteError::CannotWrite(display_path(path)))?;
    dir.write_entry(&name, mode, id, size, store, storage)
}

/// Replaces the worktree file at repository path `path` with `bytes` (temp file and
/// rename, parents created, never through a link).
pub fn write_bytes(root: &Path, path: &[u8], bytes: &[u8]) -> Result<StatStamp> {
    let (dir, name) = WorkDir::parent_of(root, path, true)?
        .ok_or_else(|| WriteError::CannotWrite(display_path(path)))?;
    dir.write_bytes(&name, bytes)
}

/// Removes a tracked file or symlink and any parent directories left empty.
pub fn remove_entry(root: &Path, path: &[u8], storage: &dyn Storage) -> Result<()> {
    let (parts, name) = parent_parts(path, false)?;
    // A name no tree can hold ('..', '.dsv', …) never leads to a worktree file.
    if parts
        .iter()
        .chain(std::iter::once(&name))
        .any(|p| crate::object::tree::check_name(p).is_err())
    {
        return Ok(());
    }
    // The chain of open directories from the root, to remove emptied ones bottom-up.
    let mut chain: Vec<OwnedFd> = vec![open_root(root)?];
    let mut rel: Vec<u8> = Vec::new();
    for part in &parts {
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(part);
        let here = chain.last().expect("the root is first");
        match WorkDir::step(here, part, false) {
            Ok(Some(fd)) => chain.push(fd),
            // Missing: nothing to remove. Below a symlink or a file the path is not in
            // the worktree: never delete through the link.
            Ok(None) | Err(Errno::NOTDIR | Errno::LOOP) => return Ok(()),
            Err(e) => return Err(io_err("opening directory", root, &rel, e)),
        }
    }
    let dir = chain.last().expect("the root is first");
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
        Ok(_) => {
            storage.fault_point()?;
            rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(|e| io_err("removing", root, path, e))?;
        }
        Err(Errno::NOENT) => {}
        Err(e) => return Err(io_err("reading", root, path, e)),
    }
    // Remove parents left empty, stopping at the first one that is not.
    for i in (0..parts.len()).rev() {
        if rustix::fs::unlinkat(&chain[i], parts[i], AtFlags::REMOVEDIR).is_err() {
            break;
        }
    }
    Ok(())
}

/// Why a worktree file was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A name no tree may hold (`..`, `.dsv`, a slash, …).
    #[error("refusing to write '{path}': {reason}")]
    UnsafeName {
        /// The repository path.
        path: String,
        /// Why the name is unsafe.
        reason: &'static str,
    },
    /// A parent that is a file or a symlink.
    #[error("cannot write '{path}': '{parent}' is {what}, not a directory")]
    NotADirectory {
        /// The repository path.
        path: String,
        /// The parent in the way.
        parent: String,
        /// What it is ("a file", "a symbolic link").
        what: &'static str,
    },
    /// A non-empty directory where a file goes.
    #[error("cannot write '{0}': a non-empty directory is in the way")]
    DirectoryInTheWay(String),
    /// A path with no file name.
    #[error("cannot write '{0}'")]
    CannotWrite(String),
}

impl crate::error::ModuleError for WriteError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            WriteError::UnsafeName { .. } => crate::error::ErrorKind::Damaged,
            _ => crate::error::ErrorKind::Refused,
        }
    }
}

crate::error::module_error!(WriteError);
