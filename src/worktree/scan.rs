//! Walking the working tree in parallel, honouring `.dsvignore` (gitignore syntax).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
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

fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
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

struct Walk<'a> {
    root: &'a Path,
    scopes: &'a [Vec<u8>],
    whole: bool,
    progress: &'a dyn Progress,
    found: Mutex<Vec<WorkFile>>,
    /// A directory too deep to track (see `tree::MAX_DEPTH`): the scan fails.
    too_deep: Mutex<Option<Vec<u8>>>,
}

impl Walk<'_> {
    fn relevant(&self, rel: &[u8], is_dir: bool) -> bool {
        self.whole
            || self
                .scopes
                .iter()
                .any(|s| path_within(rel, s) || (is_dir && path_within(s, rel)))
    }

    /// Lists one directory and queues its subdirectories on the rayon scope. Entries are
    /// stat'ed relative to the open directory (std's `DirEntry::metadata`), which spares
    /// the kernel a full path lookup per file.
    fn dir<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        abs: PathBuf,
        rel: Vec<u8>,
        parent: Option<Arc<IgnoreNode>>,
    ) {
        let rd = match std::fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(e) => {
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
        let mut local = Vec::new();
        for entry in rd {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.progress.warn(&format!(
                        "skipping an entry of '{}': {e}",
                        display_path(&rel)
                    ));
                    continue;
                }
            };
            let name = entry.file_name();
            let name = name.as_bytes();
            if rel.is_empty() && (name == b".dsv" || name == b".git") {
                continue;
            }
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    self.progress
                        .warn(&format!("skipping '{}': {e}", display_path(&child)));
                    continue;
                }
            };
            let is_dir = meta.is_dir();
            // A path named explicitly (`dsv add cache/x`) is taken even if ignored, like `git add -f`.
            let explicit = !self.whole && self.scopes.contains(&child);
            if !self.relevant(&child, is_dir)
                || (!explicit && is_ignored(&node, &entry.path(), is_dir))
            {
                continue;
            }
            if is_dir {
                if crate::object::tree::check_dir_depth(&child).is_err() {
                    if let Ok(mut d) = self.too_deep.lock() {
                        d.get_or_insert(child);
                    }
                    continue;
                }
                let node = node.clone();
                let path = entry.path();
                scope.spawn(move |s| self.dir(s, path, child, node));
                continue;
            }
            // A temporary file of a checkout that was killed before renaming it into place
            // (see `write::write_entry`): never user data, so never untracked or added.
            if crate::storage::is_dsv_temp(name) {
                continue;
            }
            match mode_of(&meta) {
                Some(mode) => local.push(WorkFile {
                    path: child,
                    mode,
                    stat: StatStamp::of(&meta),
                }),
                None => self.progress.warn(&format!(
                    "skipping '{}': {} (only files, directories and symlinks are tracked)",
                    display_path(&child),
                    special_kind(&meta)
                )),
            }
        }
        if !local.is_empty()
            && let Ok(mut f) = self.found.lock()
        {
            f.append(&mut local);
        }
    }
}

/// Lists files under the given scopes (repository paths; empty = everything), sorted.
/// Ignored files are left out; special files are skipped with a warning.
pub fn scan(root: &Path, scopes: &[Vec<u8>], progress: &dyn Progress) -> Result<Vec<WorkFile>> {
    let walk = Walk {
        root,
        scopes,
        whole: scopes.is_empty() || scopes.iter().any(|s| s.is_empty()),
        progress,
        found: Mutex::new(Vec::new()),
        too_deep: Mutex::new(None),
    };
    rayon::scope(|s| walk.dir(s, walk.root.to_path_buf(), Vec::new(), None));
    if let Some(path) = walk.too_deep.into_inner().map_err(poisoned)? {
        return Err(crate::object::tree::too_deep(&path));
    }
    let mut files = walk.found.into_inner().map_err(poisoned)?;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
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
