//! Walking the working tree in parallel, honouring `.dsvignore` (gitignore syntax).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::object::EntryMode;
use crate::progress::Progress;
use crate::store::chunk::StatStamp;
use crate::store::poisoned;

use crate::paths::{display_path, path_within};

/// Name of the ignore file.
pub const IGNORE_FILE: &str = ".dsvignore";

/// A file found in the working tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkFile {
    /// Repository path.
    pub path: Vec<u8>,
    /// File kind.
    pub mode: EntryMode,
    /// lstat at scan time.
    pub stat: StatStamp,
}

/// Classifies lstat metadata; `None` for directories and special files.
pub fn mode_of(meta: &std::fs::Metadata) -> Option<EntryMode> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        Some(EntryMode::Symlink)
    } else if ft.is_file() {
        if meta.permissions().mode() & 0o111 != 0 {
            Some(EntryMode::Exec)
        } else {
            Some(EntryMode::File)
        }
    } else {
        None
    }
}

/// A `.dsvignore` matcher and the matchers of the directories above it.
struct IgnoreNode {
    matcher: ignore::gitignore::Gitignore,
    parent: Option<Arc<IgnoreNode>>,
}

fn is_ignored(node: &Option<Arc<IgnoreNode>>, path: &Path, is_dir: bool) -> bool {
    let mut cur = node.as_ref();
    while let Some(n) = cur {
        match n.matcher.matched(path, is_dir) {
            ignore::Match::Ignore(_) => return true,
            ignore::Match::Whitelist(_) => return false,
            ignore::Match::None => cur = n.parent.as_ref(),
        }
    }
    false
}

/// The kind of an entry from its `lstat` mode: a trackable file, a directory, or
/// what else it is (for the warning).
fn kind_of_raw(st_mode: u32) -> Result<Option<EntryMode>, &'static str> {
    use rustix::fs::FileType;
    match FileType::from_raw_mode(st_mode as rustix::fs::RawMode) {
        FileType::Symlink => Ok(Some(EntryMode::Symlink)),
        FileType::RegularFile if st_mode & 0o111 != 0 => Ok(Some(EntryMode::Exec)),
        FileType::RegularFile => Ok(Some(EntryMode::File)),
        FileType::Directory => Ok(None),
        FileType::Fifo => Err("a FIFO"),
        FileType::Socket => Err("a socket"),
        FileType::BlockDevice | FileType::CharacterDevice => Err("a device"),
        FileType::Unknown => Err("not a regular file"),
    }
}

/// The stamp of a raw `lstat`, equal to [`StatStamp::of`] on the same file.
// The `stat` field types differ between platforms and rustix backends: the casts are
// no-ops only on some.
#[allow(clippy::unnecessary_cast)]
fn stamp_of_raw(st: &rustix::fs::Stat) -> StatStamp {
    StatStamp {
        size: st.st_size as u64,
        mtime_ns: st.st_mtime as i64 * 1_000_000_000 + st.st_mtime_nsec as i64,
        ctime_ns: st.st_ctime as i64 * 1_000_000_000 + st.st_ctime_nsec as i64,
        ino: st.st_ino as u64,
    }
}

/// Calls `f` with the name and `d_type` of every entry of the open directory but
/// `.` and `..`, straight from the kernel's buffer (no allocation per entry).
#[cfg(target_os = "linux")]
fn each_entry(
    fd: &rustix::fd::OwnedFd,
    mut f: impl FnMut(&std::ffi::CStr, rustix::fs::FileType),
) -> rustix::io::Result<()> {
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut dir = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name();
        if !matches!(name.to_bytes(), b"." | b"..") {
            f(name, entry.file_type());
        }
    }
    Ok(())
}

/// Calls `f` with the name and `d_type` of every entry of the open directory but
/// `.` and `..`.
#[cfg(not(target_os = "linux"))]
fn each_entry(
    fd: &rustix::fd::OwnedFd,
    mut f: impl FnMut(&std::ffi::CStr, rustix::fs::FileType),
) -> rustix::io::Result<()> {
    for entry in rustix::fs::Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name();
        if !matches!(name.to_bytes(), b"." | b"..") {
            f(name, entry.file_type());
        }
    }
    Ok(())
}

/// What a walk does with the trackable files it finds, directory by directory.
pub(crate) trait Visit: Sync {
    /// What is kept while one directory is listed (a fresh one per directory).
    type Dir: Default;
    /// One trackable file: `name` in directory `rel` (a repository path, empty at the
    /// root), already lstat'ed.
    fn file(&self, dir: &mut Self::Dir, rel: &[u8], name: &[u8], mode: EntryMode, stat: StatStamp);
    /// The directory `rel` is listed.
    fn done(&self, rel: &[u8], dir: Self::Dir);
}

/// `rel/name` as a repository path.
pub(crate) fn child_path(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut child = Vec::with_capacity(rel.len() + 1 + name.len());
    child.extend_from_slice(rel);
    if !child.is_empty() {
        child.push(b'/');
    }
    child.extend_from_slice(name);
    child
}

struct Walk<'a, V: Visit> {
    scopes: &'a [Vec<u8>],
    whole: bool,
    progress: &'a dyn Progress,
    visit: &'a V,
    /// A directory too deep to track (see `tree::MAX_DEPTH`): the scan fails.
    too_deep: Mutex<Option<Vec<u8>>>,
}

impl<V: Visit> Walk<'_, V> {
    fn relevant(&self, rel: &[u8], is_dir: bool) -> bool {
        self.whole
            || self
                .scopes
                .iter()
                .any(|s| path_within(rel, s) || (is_dir && path_within(s, rel)))
    }

    /// Lists one directory and queues its subdirectories on the rayon scope. Entries
    /// come from the kernel's buffer and are lstat'ed relative to the open directory
    /// (no path lookup from the root); the type the directory entry gives spares a
    /// subdirectory its lstat. A file's path is only built when something needs it
    /// (a scope to check, a warning, or the visitor).
    fn dir<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        abs: PathBuf,
        rel: Vec<u8>,
        parent: Option<Arc<IgnoreNode>>,
    ) {
        use rustix::fs::{AtFlags, FileType, Mode, OFlags};
        let fd = match rustix::fs::open(
            &abs,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                let e = std::io::Error::from(e);
                self.progress
                    .warn(&format!("skipping directory '{}': {e}", display_path(&rel)));
                return;
            }
        };
        let ignore_file = abs.join(IGNORE_FILE);
        let node = if ignore_file.is_file() {
            let mut b = ignore::gitignore::GitignoreBuilder::new(&abs);
            if let Some(e) = b.add(&ignore_file) {
                self.progress
                    .warn(&format!("{}: {e}", ignore_file.display()));
            }
            match b.build() {
                Ok(matcher) => Some(Arc::new(IgnoreNode {
                    matcher,
                    parent: parent.clone(),
                })),
                Err(e) => {
                    self.progress
                        .warn(&format!("{}: {e}", ignore_file.display()));
                    parent
                }
            }
        } else {
            parent
        };
        let mut local = V::Dir::default();
        let listed = each_entry(&fd, |cname, dtype| {
            let name = cname.to_bytes();
            if rel.is_empty() && (name == b".dsv" || name == b".git") {
                return;
            }
            let stat = match dtype {
                FileType::Directory => None,
                _ => match rustix::fs::statat(&fd, cname, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => Some(st),
                    Err(e) => {
                        let e = std::io::Error::from(e);
                        self.progress.warn(&format!(
                            "skipping '{}': {e}",
                            display_path(&child_path(&rel, name))
                        ));
                        return;
                    }
                },
            };
            let kind = stat.as_ref().map_or(Ok(None), |st| kind_of_raw(st.st_mode));
            let is_dir = matches!(kind, Ok(None));
            // A path named explicitly (`dsv add cache/x`) is taken even if ignored, like `git add -f`.
            let mut explicit = false;
            if !self.whole {
                let child = child_path(&rel, name);
                if !self.relevant(&child, is_dir) {
                    return;
                }
                explicit = self.scopes.contains(&child);
            }
            if !explicit
                && node.is_some()
                && is_ignored(&node, &abs.join(std::ffi::OsStr::from_bytes(name)), is_dir)
            {
                return;
            }
            if is_dir {
                let child = child_path(&rel, name);
                if crate::object::tree::check_dir_depth(&child).is_err() {
                    if let Ok(mut d) = self.too_deep.lock() {
                        d.get_or_insert(child);
                    }
                    return;
                }
                let node = node.clone();
                let path = abs.join(std::ffi::OsStr::from_bytes(name));
                scope.spawn(move |s| self.dir(s, path, child, node));
                return;
            }
            // A temporary file of a checkout that was killed before renaming it into place
            // (see `write::write_entry`): never user data, so never untracked or added.
            if crate::storage::is_dsv_temp(name) {
                return;
            }
            match (kind, stat) {
                (Ok(Some(mode)), Some(st)) => {
                    self.visit
                        .file(&mut local, &rel, name, mode, stamp_of_raw(&st));
                }
                (Err(what), _) => self.progress.warn(&format!(
                    "skipping '{}': {what} (only files, directories and symlinks are tracked)",
                    display_path(&child_path(&rel, name)),
                )),
                _ => {}
            }
        });
        if let Err(e) = listed {
            let e = std::io::Error::from(e);
            self.progress.warn(&format!(
                "skipping an entry of '{}': {e}",
                display_path(&rel)
            ));
        }
        // The directory's fd is closed before the visitor's work on what it listed.
        drop(fd);
        self.visit.done(&rel, local);
    }
}

/// Walks the working tree under `scopes` (repository paths; empty = everything) in
/// parallel, handing `visit` every trackable file that is not ignored; special files
/// are skipped with a warning.
pub(crate) fn walk<V: Visit>(
    root: &Path,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
    visit: &V,
) -> Result<()> {
    let walk = Walk {
        scopes,
        whole: scopes.is_empty() || scopes.iter().any(|s| s.is_empty()),
        progress,
        visit,
        too_deep: Mutex::new(None),
    };
    rayon::scope(|s| walk.dir(s, root.to_path_buf(), Vec::new(), None));
    if let Some(path) = walk.too_deep.into_inner().map_err(poisoned)? {
        return Err(crate::object::tree::too_deep(&path));
    }
    Ok(())
}

/// Collects the walk's files, each directory's sorted in its own task.
struct Collect {
    found: Mutex<Vec<Vec<WorkFile>>>,
}

impl Visit for Collect {
    type Dir = Vec<WorkFile>;

    fn file(&self, dir: &mut Self::Dir, rel: &[u8], name: &[u8], mode: EntryMode, stat: StatStamp) {
        dir.push(WorkFile {
            path: child_path(rel, name),
            mode,
            stat,
        });
    }

    fn done(&self, _rel: &[u8], mut dir: Self::Dir) {
        if !dir.is_empty() {
            // Sorted here, in parallel; `scan` then only merges the directories.
            dir.sort_unstable_by(|a, b| a.path.cmp(&b.path));
            if let Ok(mut f) = self.found.lock() {
                f.push(dir);
            }
        }
    }
}

/// Lists files under the given scopes (repository paths; empty = everything), sorted.
/// Ignored files are left out; special files are skipped with a warning.
pub fn scan(root: &Path, scopes: &[Vec<u8>], progress: &dyn Progress) -> Result<Vec<WorkFile>> {
    let mut runs = scan_runs(root, scopes, progress)?;
    if runs.len() == 1 {
        return Ok(runs.pop().unwrap_or_default());
    }
    let mut files = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    for run in runs {
        files.extend(run);
    }
    Ok(files)
}

/// [`scan`]'s files as sorted runs that follow each other in path order (one per
/// directory, usually), not copied into one list: read through
/// `runs.into_iter().flatten()`, each run's memory goes as soon as it is read, and the
/// whole list never exists twice (the runs and their concatenation, about 64 bytes a
/// file each).
pub fn scan_runs(
    root: &Path,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<Vec<Vec<WorkFile>>> {
    let collect = Collect {
        found: Mutex::new(Vec::new()),
    };
    walk(root, scopes, progress, &collect)?;
    let mut runs = collect.found.into_inner().map_err(poisoned)?;
    // Each directory's files are sorted; laid end to end in the order of their first
    // paths they are sorted already unless a directory's files and its subdirectories'
    // interleave: then one list, which the stable sort makes from the runs in one pass.
    runs.sort_unstable_by(|a, b| a[0].path.cmp(&b[0].path));
    let in_order = runs
        .windows(2)
        .all(|w| w[0].last().map(|f| &f.path) < w[1].first().map(|f| &f.path));
    if in_order {
        return Ok(runs);
    }
    let mut files = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    for run in runs {
        files.extend(run);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(vec![files])
}

/// lstat of one repository path; `None` if missing or not a trackable file.
pub fn stat_path(root: &Path, path: &[u8]) -> Option<WorkFile> {
    let meta = std::fs::symlink_metadata(root.join(std::ffi::OsStr::from_bytes(path))).ok()?;
    Some(WorkFile {
        path: path.to_vec(),
        mode: mode_of(&meta)?,
        stat: StatStamp::of(&meta),
    })
}
