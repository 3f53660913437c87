//! Status: what is staged (index vs HEAD), what changed in the working tree
//! (worktree vs index), and what is untracked.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::id::ObjectId;
use crate::paths::path_within;
use crate::progress::Progress;
use crate::refs::Head;
use crate::repo::Repository;
use crate::worktree::delta::{classify, index_states, worktree_delta};
use crate::worktree::fsmonitor::{MonitorUse, Session};
use crate::worktree::index::{IndexEntry, IndexState, now_ns};
use crate::worktree::scan::scan;

use crate::object::diff::{Change, FileState, merge_maps};

/// The full status report.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// Current branch (None when detached).
    pub branch: Option<String>,
    /// Commit HEAD points to (None on an unborn branch).
    pub head: Option<ObjectId>,
    /// Index vs HEAD.
    pub staged: Vec<Change>,
    /// Working tree vs index.
    pub unstaged: Vec<Change>,
    /// Untracked paths.
    #[serde(serialize_with = "crate::paths::ser_many")]
    pub untracked: Vec<Vec<u8>>,
    /// Clean files whose stat changed: recording them spares the next status a re-hash
    /// (see [`crate::worktree::index::Index::refresh`]).
    #[serde(skip)]
    pub refresh: Vec<(Vec<u8>, IndexEntry)>,
    /// When this status started looking at files.
    #[serde(skip)]
    pub stamp: i64,
    /// How the file-system monitor was used.
    #[serde(skip)]
    pub monitor: MonitorUse,
}

impl StatusReport {
    /// Whether nothing is staged, modified or untracked.
    pub fn is_clean(&self) -> bool {
        self.staged.is_empty() && self.unstaged.is_empty() && self.untracked.is_empty()
    }
}

/// Computes status under `scopes` (empty = whole tree); refreshes index stat data when possible.
pub fn status(
    repo: &Repository,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<StatusReport> {
    let stamp = now_ns();
    let head = repo.refs.head_commit()?;
    let branch = match repo.refs.head()? {
        Head::Branch(b) => Some(b),
        Head::Detached(_) => None,
    };
    let tree = repo.head_tree()?;
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    // Merkle shortcut: if the index hashes to HEAD's tree, nothing is staged and
    // HEAD's trees need not be read at all (the common case on a large dataset).
    let unchanged_of = |index: &IndexState| {
        whole
            && tree.is_some_and(|t| {
                crate::worktree::build::index_tree_id(&index.entries).ok() == Some(t)
            })
    };
    let load = || -> Result<(IndexState, bool)> {
        let index = repo.index.load()?;
        let unchanged = unchanged_of(&index);
        Ok((index, unchanged))
    };
    // With the monitor, the index (its stamp) must be known before asking it, and the
    // question must come before anything is looked at; hashing the index and the
    // monitored look then run at once.
    let (files, loaded, session, monitored) = if whole && repo.fsmonitor() {
        let index = repo.index.load()?;
        let (unchanged, (session, delta)) = rayon::join(
            || unchanged_of(&index),
            || {
                let s = Session::begin(repo.dsv_dir(), &index);
                let d = s.delta(repo.root(), &index, true, progress);
                (s, d)
            },
        );
        (None, Ok((index, unchanged)), Some(session), Some(delta))
    } else {
        // The walk is mostly waiting on the kernel; load and hash the index meanwhile.
        let (files, loaded) = rayon::join(|| scan(repo.root(), scopes, progress), load);
        (Some(files), loaded, None, None)
    };
    let (index, unchanged) = loaded?;
    let mut staged = Vec::new();
    if !unchanged {
        let head_files = crate::object::diff::flatten_scoped(&repo.store, tree.as_ref(), scopes)?;
        let mut idx = index_states(&index);
        if !whole {
            idx.retain(|p, _| scopes.iter().any(|s| path_within(p, s)));
        }
        merge_maps(head_files, idx, &mut staged);
    }

    let mut delta = match (files, monitored) {
        (Some(files), _) => classify(repo.root(), &index, files?, scopes, true, progress)?,
        (None, Some(d)) => d?,
        (None, None) => worktree_delta(repo.root(), &index, scopes, true, progress)?,
    };
    keep_sparse(repo, &mut delta.deleted)?;
    if let Some(s) = &session {
        s.save(repo.dsv_dir(), index.stamp, &delta);
    }
    let mut unstaged = Vec::new();
    for (f, id) in &delta.modified {
        let old = index.entries.get(&f.path).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        let new = id.map(|id| FileState {
            mode: f.mode,
            id,
            size: f.stat.size,
        });
        unstaged.extend(Change::between(f.path.clone(), old, new));
    }
    for p in &delta.deleted {
        let old = index.entries.get(p).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        unstaged.extend(Change::between(p.clone(), old, None));
    }
    unstaged.sort_by(|a, b| a.path.cmp(&b.path));
    let refresh = if whole { delta.refreshed } else { Vec::new() };
    if repo.index.writable() && !refresh.is_empty() {
        // Best effort: a failed refresh only costs a re-hash next time.
        let _ = repo.index.refresh(&refresh, stamp);
    }
    Ok(StatusReport {
        branch,
        head,
        staged,
        unstaged,
        untracked: delta.untracked.into_iter().map(|f| f.path).collect(),
        refresh,
        stamp,
        monitor: session.map(|s| s.usage).unwrap_or_default(),
    })
}

/// Drops from `deleted` the paths outside a sparse working tree: they are absent
/// by design, not deleted.
pub fn keep_sparse(repo: &Repository, deleted: &mut Vec<Vec<u8>>) -> Result<()> {
    if let Some(sparse) = crate::worktree::sparse::load(repo.dsv_dir())? {
        deleted.retain(|p| sparse.includes(p));
    }
    Ok(())
}

/// Tracked files as they are in the working tree now (content hashed where the stat changed).
pub fn worktree_states(
    repo: &Repository,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<BTreeMap<Vec<u8>, FileState>> {
    let index = repo.index.load()?;
    let mut delta = worktree_delta(repo.root(), &index, scopes, true, progress)?;
    keep_sparse(repo, &mut delta.deleted)?;
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let mut states: BTreeMap<Vec<u8>, FileState> = index_states(&index)
        .into_iter()
        .filter(|(p, _)| whole || scopes.iter().any(|s| path_within(p, s)))
        .collect();
    for p in &delta.deleted {
        states.remove(p);
    }
    for (f, id) in delta.modified {
        if let Some(id) = id {
            states.insert(
                f.path,
                FileState {
                    mode: f.mode,
                    id,
                    size: f.stat.size,
                },
            );
        }
    }
    Ok(states)
}
