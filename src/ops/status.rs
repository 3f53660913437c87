//! Status: what is staged (index vs HEAD), what changed in the working tree
//! (worktree vs index), and what is untracked.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::{Commit, EntryMode};
use crate::paths::{os_path, path_within};
use crate::progress::Progress;
use crate::refs::Head;
use crate::repo::Repository;
use crate::store::chunk::StatStamp;
use crate::worktree::index::{IndexEntry, IndexState, now_ns};
use crate::worktree::scan::{WorkFile, scan, stat_path};

use crate::object::diff::{Change, FileState, merge_maps};

/// Hashes a worktree file (or a symlink's target) without storing it.
pub fn hash_worktree_file(root: &Path, f: &WorkFile) -> Result<ObjectId> {
    let path = root.join(os_path(&f.path));
    if f.mode == EntryMode::Symlink {
        let target = std::fs::read_link(&path).ctx("reading link", &path)?;
        return Ok(ObjectId::hash(target.as_os_str().as_bytes()));
    }
    let mut file = std::fs::File::open(&path).ctx("opening", &path)?;
    let mut hasher = blake3::Hasher::new();
    if f.stat.size <= 1 << 20 {
        let mut buf = Vec::with_capacity(f.stat.size as usize);
        file.read_to_end(&mut buf).ctx("reading", &path)?;
        hasher.update(&buf);
    } else {
        hasher.update_reader(&mut file).ctx("reading", &path)?;
    }
    Ok(ObjectId(*hasher.finalize().as_bytes()))
}

pub use crate::worktree::symlink_prefix;

/// lstat of a tracked path: `None` when it is missing, not a trackable file, or below a
/// symlinked directory (see [`symlink_prefix`]).
pub fn stat_tracked(root: &Path, path: &[u8]) -> Option<WorkFile> {
    if symlink_prefix(root, path).is_some() {
        return None;
    }
    stat_path(root, path)
}

/// How the working tree differs from the index.
#[derive(Debug, Default)]
pub struct WorktreeDelta {
    /// Tracked files whose content or mode differs: (file, its current id if hashed).
    pub modified: Vec<(WorkFile, Option<ObjectId>)>,
    /// Tracked paths missing from the working tree.
    pub deleted: Vec<Vec<u8>>,
    /// Files not in the index.
    pub untracked: Vec<WorkFile>,
    /// Clean files whose stat changed: the entries to record so the next status is fast.
    pub refreshed: Vec<(Vec<u8>, IndexEntry)>,
}

/// Compares the working tree under `scopes` with the index. When `hash` is false,
/// stat-changed files are reported as modified without reading them (for `add`,
/// which reads them anyway).
pub fn worktree_delta(
    root: &Path,
    index: &IndexState,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let files = scan(root, scopes, progress)?;
    classify(root, index, files, scopes, hash, progress)
}

/// [`worktree_delta`] for files already scanned.
pub fn classify(
    root: &Path,
    index: &IndexState,
    files: Vec<WorkFile>,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let in_scope = |p: &[u8]| whole || scopes.iter().any(|s| path_within(p, s));
    let mut delta = WorktreeDelta::default();
    let mut suspects: Vec<(WorkFile, IndexEntry)> = Vec::new();
    let mut unseen: Vec<(&Vec<u8>, &IndexEntry)> = Vec::new();
    // Both lists are sorted by path: one merge pass classifies everything.
    let mut tracked = index.entries.iter().filter(|(p, _)| in_scope(p)).peekable();
    for f in files {
        while let Some((p, e)) = tracked.peek() {
            if p.as_slice() < f.path.as_slice() {
                unseen.push((p, e));
                tracked.next();
            } else {
                break;
            }
        }
        match tracked.peek() {
            Some((p, e)) if **p == f.path => {
                let e = **e;
                tracked.next();
                if !(e.mode == f.mode && index.is_clean(&e, &f.stat)) {
                    suspects.push((f, e));
                }
            }
            _ => delta.untracked.push(f),
        }
    }
    unseen.extend(tracked);
    // Tracked paths the walk did not report: deleted, or ignored by .dsvignore but still tracked.
    for (path, e) in unseen {
        match stat_tracked(root, path) {
            Some(f) if f.mode == e.mode && index.is_clean(e, &f.stat) => {}
            Some(f) => suspects.push((f, *e)),
            None => delta.deleted.push(path.clone()),
        }
    }
    suspects.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    if !hash {
        delta.modified = suspects.into_iter().map(|(f, _)| (f, None)).collect();
        return Ok(delta);
    }
    progress.start("checking", Some(suspects.len() as u64));
    let results: Vec<Result<(WorkFile, IndexEntry, Option<ObjectId>)>> = suspects
        .into_par_iter()
        .map(|(f, e)| {
            let r = match hash_worktree_file(root, &f) {
                Ok(id) => Ok((f, e, Some(id))),
                // Vanished between the walk and the read: report as deleted.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok((f, e, None))
                }
                Err(err) => Err(err),
            };
            progress.inc(1);
            r
        })
        .collect();
    progress.finish();
    for r in results {
        let (f, e, id) = r?;
        match id {
            Some(id) if id == e.id && f.mode == e.mode => {
                let entry = IndexEntry {
                    mode: f.mode,
                    id,
                    stat: f.stat,
                };
                delta.refreshed.push((f.path, entry));
            }
            Some(id) => delta.modified.push((f, Some(id))),
            None => delta.deleted.push(f.path),
        }
    }
    delta.deleted.sort();
    Ok(delta)
}

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
}

impl StatusReport {
    /// Whether nothing is staged, modified or untracked.
    pub fn is_clean(&self) -> bool {
        self.staged.is_empty() && self.unstaged.is_empty() && self.untracked.is_empty()
    }
}

/// Index entries as file states.
pub fn index_states(index: &IndexState) -> BTreeMap<Vec<u8>, FileState> {
    index
        .entries
        .iter()
        .map(|(p, e)| {
            (
                p.clone(),
                FileState {
                    mode: e.mode,
                    id: e.id,
                    size: e.stat.size,
                },
            )
        })
        .collect()
}

/// Tree id of the commit HEAD points to.
pub fn head_tree(repo: &Repository) -> Result<Option<ObjectId>> {
    match repo.refs.head_commit()? {
        Some(c) => Ok(Some(Commit::load(&repo.store, &c)?.tree)),
        None => Ok(None),
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
    let tree = head_tree(repo)?;
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    // The walk is mostly waiting on the kernel; load and hash the index meanwhile.
    let (files, loaded) = rayon::join(
        || scan(repo.root(), scopes, progress),
        || -> Result<(IndexState, bool)> {
            let index = repo.index.load()?;
            // Merkle shortcut: if the index hashes to HEAD's tree, nothing is staged and
            // HEAD's trees need not be read at all (the common case on a large dataset).
            let unchanged = whole
                && tree
                    .is_some_and(|t| super::commit::index_tree_id(&index.entries).ok() == Some(t));
            Ok((index, unchanged))
        },
    );
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

    let delta = classify(repo.root(), &index, files?, scopes, true, progress)?;
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
    })
}

/// Stat of a worktree file as an index entry, for entries written by checkout.
pub fn entry_from_stat(mode: EntryMode, id: ObjectId, stat: StatStamp) -> IndexEntry {
    IndexEntry { mode, id, stat }
}

/// Tracked files as they are in the working tree now (content hashed where the stat changed).
pub fn worktree_states(
    repo: &Repository,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<BTreeMap<Vec<u8>, FileState>> {
    let index = repo.index.load()?;
    let delta = worktree_delta(repo.root(), &index, scopes, true, progress)?;
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
