//! `clean`: delete untracked files (and with `dirs`, untracked directories), as
//! `git clean` does.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::error::{IoContext, Result};
use crate::paths::path_within;
use crate::progress::Progress;
use crate::repo::{Repository, WritableRepo};

/// What to clean.
#[derive(Debug, Clone, Copy, Default)]
pub struct CleanOptions {
    /// Remove untracked directories whole (git's `-d`); otherwise files in them stay.
    pub dirs: bool,
    /// Remove ignored files too (git's `-x`); otherwise `.dsvignore` protects them.
    pub ignored: bool,
}

/// One path to remove: an untracked file, or (with `dirs`) a directory holding no
/// tracked file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CleanEntry {
    /// Repository path.
    #[serde(serialize_with = "crate::paths::ser")]
    pub path: Vec<u8>,
    /// Whether it is a directory (removed with everything in it).
    pub dir: bool,
}

/// The untracked paths under `scopes` (empty = everything) that `clean` would remove,
/// sorted. Nothing is changed.
pub fn plan(
    repo: &Repository,
    scopes: &[Vec<u8>],
    opts: CleanOptions,
    progress: &dyn Progress,
) -> Result<Vec<CleanEntry>> {
    let index = repo.index.load()?;
    let files = crate::worktree::scan::scan_with(repo.root(), scopes, progress, !opts.ignored)?;
    let mut tracked_dirs = HashSet::new();
    for p in index.entries.keys() {
        for (i, b) in p.iter().enumerate() {
            if *b == b'/' {
                tracked_dirs.insert(&p[..i]);
            }
        }
    }
    let mut out = BTreeSet::new();
    for f in files {
        if index.entries.contains_key(&f.path) {
            continue;
        }
        // The outermost directory of the file that holds nothing tracked.
        let untracked_dir = f
            .path
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &f.path[..i])
            .find(|d| !tracked_dirs.contains(d));
        match untracked_dir {
            // A directory named as the scope itself is cleaned of files only, as git.
            Some(d) if opts.dirs && !scopes.iter().any(|s| path_within(s, d) && s != d) => {
                out.insert(CleanEntry {
                    path: d.to_vec(),
                    dir: true,
                });
            }
            Some(_) if !opts.dirs => {}
            _ => {
                out.insert(CleanEntry {
                    path: f.path,
                    dir: false,
                });
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Removes what [`plan`] listed. A directory is removed with everything in it
/// (symbolic links inside are removed, never followed).
pub fn clean(repo: &WritableRepo, entries: &[CleanEntry]) -> Result<()> {
    for e in entries {
        let path = repo.worktree_path(&e.path);
        if e.dir {
            std::fs::remove_dir_all(&path).ctx("removing", &path)?;
        } else {
            std::fs::remove_file(&path).ctx("removing", &path)?;
        }
    }
    Ok(())
}
