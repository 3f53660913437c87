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
    let files: Vec<Vec<u8>> = if opts.ignored {
        walk_all(repo, scopes)?
    } else {
        crate::worktree::scan::scan(repo.root(), scopes, progress)?
            .into_iter()
            .map(|f| f.path)
            .collect()
    };
    let mut tracked_dirs = HashSet::new();
    for p in index.entries.keys() {
        for (i, b) in p.iter().enumerate() {
            if *b == b'/' {
                tracked_dirs.insert(&p[..i]);
            }
        }
    }
    let mut out = BTreeSet::new();
    for path in files {
        if index.entries.contains_key(&path) {
            continue;
        }
        // The outermost directory of the file that holds nothing tracked.
        let untracked_dir = path
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &path[..i])
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
                out.insert(CleanEntry { path, dir: false });
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Every file under `scopes` (empty = everything), ignored ones included (`clean -x`):
/// `.dsv` and `.git` at the root and dsv's temp files are skipped, symbolic links are
/// listed, never followed. Sorted.
fn walk_all(repo: &Repository, scopes: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let relevant = |rel: &[u8], is_dir: bool| {
        whole
            || scopes
                .iter()
                .any(|s| path_within(rel, s) || (is_dir && path_within(s, rel)))
    };
    let mut out = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(rel) = stack.pop() {
        let abs = repo.worktree_path(&rel);
        let rd = std::fs::read_dir(&abs).ctx("listing", &abs)?;
        for ent in rd {
            let ent = ent.ctx("listing", &abs)?;
            let name = ent.file_name();
            let name = name.as_bytes();
            if rel.is_empty() && (name == b".dsv" || name == b".git") {
                continue;
            }
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            let is_dir = ent.file_type().ctx("reading", ent.path())?.is_dir();
            if !relevant(&child, is_dir) {
                continue;
            }
            if is_dir {
                crate::object::tree::check_dir_depth(&child)?;
                stack.push(child);
            } else if !crate::storage::is_dsv_temp(name) {
                out.push(child);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
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
