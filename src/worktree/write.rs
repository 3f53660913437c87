//! Writing files into the working tree without ever leaving it.
//!
//! Each parent directory is checked with lstat on the way down: a symlink or a
//! file where a directory should be is an error, so a tree (possibly from an
//! untrusted remote) cannot make dsv write through a link to outside the
//! worktree. Files are written to a temporary sibling and renamed into place, so
//! a reader never sees a half-written file.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::storage::{Storage, temp_name};
use crate::store::ObjectStore;
use crate::store::chunk::StatStamp;

use super::{display_path, os_path};

/// Creates the parent directories of `path`, refusing to pass through anything but real directories.
pub fn ensure_parents(root: &Path, path: &[u8]) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        crate::object::tree::check_name(part).map_err(|reason| {
            Error::Refused(format!(
                "refusing to write '{}': {reason}",
                display_path(path)
            ))
        })?;
        dir.push(os_path(part));
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "a file"
                };
                return Err(Error::Refused(format!(
                    "cannot write '{}': '{}' is {what}, not a directory",
                    display_path(path),
                    dir.strip_prefix(root).unwrap_or(&dir).display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return Err(Error::io("creating directory", &dir, e)),
            },
            Err(e) => return Err(Error::io("reading", &dir, e)),
        }
    }
    Ok(root.join(os_path(path)))
}

/// Writes one entry (file, executable or symlink) from the store; returns its new lstat.
pub fn write_entry(
    root: &Path,
    path: &[u8],
    mode: EntryMode,
    id: &ObjectId,
    store: &ObjectStore,
    storage: &dyn Storage,
) -> Result<StatStamp> {
    storage.fault_point()?;
    let target = ensure_parents(root, path)?;
    if let Ok(m) = fs::symlink_metadata(&target)
        && m.is_dir()
    {
        fs::remove_dir(&target).map_err(|_| {
            Error::Refused(format!(
                "cannot write '{}': a non-empty directory is in the way",
                display_path(path)
            ))
        })?;
    }
    let tmp = temp_name(&target);
    let result = (|| -> Result<()> {
        match mode {
            EntryMode::Symlink => {
                let link = store.get(id)?;
                std::os::unix::fs::symlink(os_path(&link), &tmp).ctx("creating symlink", &tmp)?;
            }
            EntryMode::File | EntryMode::Exec => {
                let perm = if mode == EntryMode::Exec {
                    0o777
                } else {
                    0o666
                };
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(perm)
                    .open(&tmp)
                    .ctx("creating", &tmp)?;
                // No buffering: the store hands over whole chunks, one write each.
                let mut w = file;
                store.read_into(id, &mut w).map_err(|e| match e {
                    Error::Io { source, .. } if source.kind() != std::io::ErrorKind::Other => {
                        Error::io("writing", &target, source)
                    }
                    e => e,
                })?;
            }
            EntryMode::Dir => {
                return Err(Error::Refused(
                    "internal: write_entry on a directory".into(),
                ));
            }
        }
        fs::rename(&tmp, &target).ctx("renaming", &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let meta = fs::symlink_metadata(&target).ctx("reading", &target)?;
    Ok(StatStamp::of(&meta))
}

/// Removes a tracked file or symlink and any parent directories left empty.
pub fn remove_entry(root: &Path, path: &[u8], storage: &dyn Storage) -> Result<()> {
    // Below a symlinked directory the path is not in the worktree: never delete through the link.
    if super::symlink_prefix(root, path).is_some() {
        return Ok(());
    }
    let target = root.join(os_path(path));
    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            storage.fault_point()?;
            fs::remove_file(&target).ctx("removing", &target)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("reading", &target, e)),
    }
    let mut dir = target.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        if d == root || fs::remove_dir(&d).is_err() {
            break;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    Ok(())
}
