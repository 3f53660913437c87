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
use crate::worktree::delta::{WorktreeDelta, classify, index_states, walk_delta, worktree_delta};
use crate::worktree::fsmonitor::{MonitorUse, Session, monitored_delta};
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
    /// The index's tree id, computed and not yet recorded (the caller may record it
    /// with [`TreeRecord::save`] if it can write).
    #[serde(skip)]
    pub record: Option<TreeRecord>,
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

/// The tree id status computed for the index, to record in it (see
/// [`crate::worktree::index::Index::record_tree`]) so the next status need not.
#[derive(Debug, Clone, Copy)]
pub struct TreeRecord {
    /// The index's generation when read.
    pub generation: i64,
    /// The index's stamp when read.
    pub stamp: i64,
    /// The tree id its entries hash to.
    pub tree: ObjectId,
    /// Whether the smudged table must be rebuilt (an index written by an older dsv).
    pub rebuild: bool,
}

impl TreeRecord {
    /// Records it in `index`; best effort (a failure costs a hash next time).
    pub fn save(&self, index: &crate::worktree::index::Index) {
        let _ = index.record_tree(self.generation, self.stamp, self.tree, self.rebuild);
    }
}

/// Computes status under `scopes` (empty = whole tree); refreshes index stat data when possible.
///
/// Nothing staged is known without reading HEAD's trees or the index when the index
/// records that its entries hash to HEAD's tree (the common case on a large
/// dataset); then the working tree is compared either through the monitor, with
/// keyed lookups of the paths it names, or by merging the sorted scan with the
/// index read meanwhile. Otherwise the index is read whole and hashed, and the id
/// recorded for next time.
pub fn status(
    repo: &Repository,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<StatusReport> {
    let stamp = now_ns();
    // The phase names say which path was taken (the whole index read or not).
    let mut phases = crate::trace::Phases::start("status");
    let head = repo.refs.head_commit()?;
    let branch = match repo.refs.head()? {
        Head::Branch(b) => Some(b),
        Head::Detached(_) => None,
    };
    let tree = repo.head_tree()?;
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let reader = repo.index.reader()?;
    let peek = reader.peek()?;
    let known_unchanged = whole && tree.is_some() && peek.tree == tree;
    let mut staged = Vec::new();
    let mut record = None;
    let mut session = None;
    let mut delta = None;
    if known_unchanged {
        if repo.fsmonitor()
            && let Some(smudged) = &peek.smudged
        {
            // The question must come before anything is looked at.
            let s = Session::begin_with(repo.dsv_dir(), peek.version(), smudged);
            if let Some(c) = s.candidates() {
                let part = reader.subset(c)?;
                delta = Some(monitored_delta(repo.root(), &part, c, true, progress)?);
            }
            session = Some(s);
        }
        if delta.is_none() {
            // The index read packed (no map, no allocation per path) while the walk
            // starts; every file compared with its entry as the walk finds it.
            delta = Some(walk_delta(
                repo.root(),
                || reader.packed(),
                |paths| reader.get_many(paths),
                true,
                progress,
            )?);
        }
    }
    let mut delta = match delta {
        Some(d) => {
            phases.mark("staged_known");
            d
        }
        None => {
            let known = peek.tree.filter(|_| whole);
            let (index, index_tree, d, s) =
                read_whole(repo, &reader, scopes, whole, tree, known, progress)?;
            if known.is_none()
                && let Some(id) = index_tree
            {
                record = Some(TreeRecord {
                    generation: peek.generation,
                    stamp: peek.stamp,
                    tree: id,
                    rebuild: peek.smudged.is_none(),
                });
            }
            if !(tree.is_some() && index_tree == tree) {
                let head_files =
                    crate::object::diff::flatten_scoped(&repo.store, tree.as_ref(), scopes)?;
                let mut idx = index_states(&index);
                if !whole {
                    idx.retain(|p, _| scopes.iter().any(|s| path_within(p, s)));
                }
                merge_maps(head_files, idx, &mut staged);
            }
            session = s;
            phases.mark("index_read_whole");
            d
        }
    };
    drop(reader);
    keep_sparse(repo, &mut delta.deleted)?;
    if let Some(s) = &session {
        s.save(repo.dsv_dir(), peek.version(), &delta);
    }
    let state = |e: &IndexEntry| FileState {
        mode: e.mode,
        id: e.id,
        size: e.stat.size,
    };
    let mut unstaged = Vec::new();
    for (f, id) in &delta.modified {
        let old = delta.old.get(&f.path).map(state);
        let new = id.map(|id| FileState {
            mode: f.mode,
            id,
            size: f.stat.size,
        });
        unstaged.extend(Change::between(f.path.clone(), old, new));
    }
    for p in &delta.deleted {
        let old = delta.old.get(p).map(state);
        unstaged.extend(Change::between(p.clone(), old, None));
    }
    unstaged.sort_by(|a, b| a.path.cmp(&b.path));
    let refresh = if whole { delta.refreshed } else { Vec::new() };
    if repo.index.writable() {
        // Best effort: a failed refresh only costs a re-hash next time.
        if !refresh.is_empty() {
            let _ = repo.index.refresh(&refresh, stamp);
        }
        if let Some(r) = record.take() {
            r.save(&repo.index);
        }
    }
    Ok(StatusReport {
        branch,
        head,
        staged,
        unstaged,
        untracked: delta.untracked.into_iter().map(|f| f.path).collect(),
        refresh,
        record,
        stamp,
        monitor: session.map(|s| s.usage).unwrap_or_default(),
    })
}

/// The index read whole (when what is staged is not known from the recorded tree id):
/// the index, the tree id it hashes to (whole tree, HEAD born, only), the working tree's delta
/// and the monitor session used for it.
type Whole = (IndexState, Option<ObjectId>, WorktreeDelta, Option<Session>);

fn read_whole(
    repo: &Repository,
    reader: &crate::worktree::index::IndexReader<'_>,
    scopes: &[Vec<u8>],
    whole: bool,
    tree: Option<ObjectId>,
    known: Option<ObjectId>,
    progress: &dyn Progress,
) -> Result<Whole> {
    let index = reader.load()?;
    let hash = |index: &IndexState| {
        if known.is_some() {
            known
        } else if whole && tree.is_some() {
            crate::worktree::build::index_tree_id(&index.entries).ok()
        } else {
            None
        }
    };
    // With the monitor, the question must come before anything is looked at; hashing
    // the index and the look then run at once. Without, the walk is mostly waiting
    // on the kernel: hash meanwhile.
    if whole && repo.fsmonitor() {
        let (id, (session, delta)) = rayon::join(
            || hash(&index),
            || {
                let s = Session::begin(repo.dsv_dir(), &index);
                let d = s.delta(repo.root(), &index, true, progress);
                (s, d)
            },
        );
        Ok((index, id, delta?, Some(session)))
    } else {
        let (files, id) = rayon::join(|| scan(repo.root(), scopes, progress), || hash(&index));
        let delta = classify(repo.root(), &index, files?, scopes, true, progress)?;
        Ok((index, id, delta, None))
    }
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
