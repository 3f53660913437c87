//! Walking the working tree in parallel, honouring `.dsvignore` (gitignore syntax).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use crate::error::Result;
use crate::object::EntryMode;
use crate::progress::Progress;
use crate::store::chunk::StatStamp;
use crate::store::poisoned;

use super::{display_path, path_within};

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

/// Lists files under the given scopes (repository paths; empty = everything), sorted.
/// Ignored files are left out; special files are skipped with a warning.
pub fn scan(root: &Path, scopes: &[Vec<u8>], progress: &dyn Progress) -> Result<Vec<WorkFile>> {
    let found: Mutex<Vec<WorkFile>> = Mutex::new(Vec::new());
    let root_buf = root.to_path_buf();
    let scopes_owned: Vec<Vec<u8>> = scopes.to_vec();
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let relevant = move |rel: &[u8], is_dir: bool| -> bool {
        if whole {
            return true;
        }
        scopes_owned
            .iter()
            .any(|s| path_within(rel, s) || (is_dir && path_within(s, rel)))
    };
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .threads(rayon::current_num_threads().max(2));
    let root_for_filter = root_buf.clone();
    let relevant_filter = relevant.clone();
    builder.filter_entry(move |e| {
        let rel = e.path().strip_prefix(&root_for_filter).unwrap_or(e.path());
        let first = rel.as_os_str().as_bytes();
        if e.depth() == 1 && (first == b".dsv" || first == b".git") {
            return false;
        }
        if e.depth() == 0 {
            return true;
        }
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        relevant_filter(first, is_dir)
    });
    builder.build_parallel().run(|| {
        let found = &found;
        let root = &root_buf;
        let relevant = relevant.clone();
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    progress.warn(&format!("skipping: {err}"));
                    return ignore::WalkState::Continue;
                }
            };
            if entry.depth() == 0 {
                return ignore::WalkState::Continue;
            }
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .as_os_str()
                .as_bytes()
                .to_vec();
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(err) => {
                    progress.warn(&format!("skipping '{}': {err}", display_path(&rel)));
                    return ignore::WalkState::Continue;
                }
            };
            if meta.is_dir() {
                return ignore::WalkState::Continue;
            }
            if !relevant(&rel, false) {
                return ignore::WalkState::Continue;
            }
            match mode_of(&meta) {
                Some(mode) => {
                    if let Ok(mut f) = found.lock() {
                        f.push(WorkFile {
                            path: rel,
                            mode,
                            stat: StatStamp::of(&meta),
                        });
                    }
                }
                None => progress.warn(&format!(
                    "skipping '{}': {} (only files, directories and symlinks are tracked)",
                    display_path(&rel),
                    special_kind(&meta)
                )),
            }
            ignore::WalkState::Continue
        })
    });
    let mut files = found.into_inner().map_err(poisoned)?;
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
