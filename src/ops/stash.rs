//! `stash`: put the label edits of the working tree aside as commits on
//! `refs/stash` (the stash list is its reflog, as in git), and bring them back.
//! Untracked files are not stashed (git's default).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::object::commit::COMMIT_FORMAT;
use crate::object::diff::{Change, FileState, diff_trees, flatten};
use crate::progress::Progress;
use crate::refs::{Head, STASH};
use crate::repo::{Repository, WritableRepo};
use crate::worktree::build::{build_tree, tree_of_index};
use crate::worktree::index::{IndexEdit, IndexEntry, now_ns};

/// Why a stash command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum StashError {
    /// Nothing to stash on: the branch has no commit yet.
    #[error("cannot stash: the current branch has no commit yet")]
    NoCommit,
    /// The stash list is empty.
    #[error("no stash entries")]
    Empty,
    /// `stash@{N}` past the end of the list.
    #[error("{0} does not exist (see `dsv stash list`)")]
    NoSuchEntry(String),
    /// A name that is not `stash@{N}` or `N`.
    #[error("'{0}' is not a stash reference (stash@{{N}} or N)")]
    BadName(String),
    /// Local changes (or untracked files) in the way of the stash's changes.
    #[error(
        "{name} does not apply: local changes or untracked files in the way at {paths}; nothing was changed (commit, stash or remove them first)"
    )]
    Conflicts {
        /// The stash.
        name: String,
        /// The paths in the way (the first few).
        paths: String,
    },
}

impl crate::error::ModuleError for StashError {}

crate::error::module_error!(StashError);

/// One entry of the stash list.
#[derive(Debug, Clone, Serialize)]
pub struct StashEntry {
    /// Position: 0 is the newest (`stash@{0}`).
    pub index: usize,
    /// The stash commit (the working tree; parents HEAD then the index commit).
    pub id: ObjectId,
    /// `On BRANCH: MSG` or `WIP on BRANCH: SUBJECT`.
    pub message: String,
}

impl StashEntry {
    /// `stash@{N}`.
    pub fn name(&self) -> String {
        format!("stash@{{{}}}", self.index)
    }
}

/// The stash list, newest first.
pub fn list(repo: &Repository) -> Result<Vec<StashEntry>> {
    let log = repo.refs.reflog(STASH)?;
    Ok(log
        .into_iter()
        .rev()
        .enumerate()
        .map(|(index, e)| StashEntry {
            index,
            id: e.new,
            message: e.message,
        })
        .collect())
}

/// The entry `spec` names (`stash@{N}`, `N`; `None`: the newest).
pub fn find(repo: &Repository, spec: Option<&str>) -> Result<StashEntry> {
    let n = match spec {
        None => 0,
        Some(s) => {
            let digits = s
                .strip_prefix("stash@{")
                .and_then(|r| r.strip_suffix('}'))
                .unwrap_or(s);
            digits
                .parse::<usize>()
                .map_err(|_| StashError::BadName(crate::quote::short(s)))?
        }
    };
    let entries = list(repo)?;
    if entries.is_empty() {
        return Err(StashError::Empty.into());
    }
    entries
        .into_iter()
        .nth(n)
        .ok_or_else(|| StashError::NoSuchEntry(format!("stash@{{{n}}}")).into())
}

fn commit_of(
    repo: &WritableRepo,
    tree: ObjectId,
    summary: crate::object::Summary,
    parents: Vec<ObjectId>,
    message: String,
) -> Result<ObjectId> {
    let (time, tz) = repo.now()?;
    let c = Commit {
        format: COMMIT_FORMAT,
        tree,
        parents,
        author: repo.identity()?,
        time,
        tz_offset_min: tz,
        message,
        summary,
        code: None,
        selection: None,
    };
    repo.store.put_commit(&c.encode())
}

/// `stash push`: records the index and the tracked files of the working tree as
/// commits, adds them to the stash list, and resets the index and the tracked files
/// to HEAD. `None` when there are no local changes to save (nothing is written).
pub fn push(
    repo: &WritableRepo,
    message: Option<&str>,
    progress: &dyn Progress,
) -> Result<Option<StashEntry>> {
    super::merge::state::refuse_if_in_progress(repo, "stash")?;
    let head = repo.refs.head_commit()?.ok_or(StashError::NoCommit)?;
    let head_commit = Commit::load(&repo.store, &head)?;
    let index = repo.index.load()?;
    let states = super::status::worktree_states(repo, &[], progress)?;
    let hash = &mut |b: &[u8]| Ok(ObjectId::hash(b));
    let (index_tree, _) = tree_of_index(&index.entries, hash)?;
    let mut work: BTreeMap<Vec<u8>, IndexEntry> = BTreeMap::new();
    for (p, st) in &states {
        let e = match index.entries.get(p) {
            Some(e) if e.id == st.id && e.mode == st.mode => *e,
            _ => IndexEntry::unverified(st.mode, st.id, st.size),
        };
        work.insert(p.clone(), e);
    }
    let (work_tree, _) = tree_of_index(&work, hash)?;
    if index_tree == head_commit.tree && work_tree == index_tree {
        return Ok(None);
    }
    // The changed files' contents go into the store (the index's already are).
    for (p, st) in &states {
        if index.entries.get(p).is_some_and(|e| e.id == st.id) {
            continue;
        }
        if let Some(f) = crate::worktree::scan::stat_path(repo.root(), p) {
            let stored = super::add::store_one(repo, repo.root(), &f)?;
            if stored.id != st.id {
                return Err(Error::ChangedWhileReading(repo.worktree_path(p)));
            }
        }
    }
    let branch = match repo.refs.head()? {
        Head::Branch(b) => b,
        Head::Detached(_) => "(no branch)".into(),
    };
    let short = format!("{} {}", head.short(), head_commit.subject());
    let (itree, isum) = build_tree(&repo.store, &index.entries)?;
    let i = commit_of(
        repo,
        itree,
        isum,
        vec![head],
        format!("index on {branch}: {short}\n"),
    )?;
    let message = match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!("On {branch}: {m}"),
        None => format!("WIP on {branch}: {short}"),
    };
    let (wtree, wsum) = build_tree(&repo.store, &work)?;
    let w = commit_of(repo, wtree, wsum, vec![head, i], format!("{message}\n"))?;
    repo.store.flush()?;
    let (time, _) = repo.now()?;
    repo.refs
        .update(STASH, w, &repo.reflog_identity(), time, &message)?;
    super::checkout::reset(repo, head, super::checkout::ResetMode::Hard, progress)?;
    Ok(Some(StashEntry {
        index: 0,
        id: w,
        message,
    }))
}

/// What a stash changed: its working tree against the commit it was made on.
pub fn changes(repo: &Repository, entry: &StashEntry) -> Result<Vec<Change>> {
    let w = Commit::load(&repo.store, &entry.id)?;
    let base = match w.parents.first() {
        Some(p) => Some(Commit::load(&repo.store, p)?.tree),
        None => None,
    };
    diff_trees(&repo.store, base.as_ref(), Some(&w.tree), &[])
}

/// What `apply` did.
#[derive(Debug, Default, Serialize)]
pub struct ApplyReport {
    /// Paths written or removed in the working tree.
    #[serde(serialize_with = "crate::paths::ser_many")]
    pub paths: Vec<Vec<u8>>,
    /// Paths outside a sparse working tree (and absent from it): their stashed
    /// version was staged in the index, never written.
    #[serde(serialize_with = "crate::paths::ser_many")]
    pub index_only: Vec<Vec<u8>>,
}

/// `stash apply`: brings the stash's changes back into the working tree (files the
/// stash added are staged, as git does). Every changed path must be already as the
/// stash has it, or as the stash found it with no unstaged change, and no untracked
/// file may be in the way; otherwise nothing is changed.
pub fn apply(
    repo: &WritableRepo,
    entry: &StashEntry,
    progress: &dyn Progress,
) -> Result<ApplyReport> {
    super::merge::state::refuse_if_in_progress(repo, "stash apply")?;
    let w = Commit::load(&repo.store, &entry.id)?;
    let base_tree = match w.parents.first() {
        Some(p) => Some(Commit::load(&repo.store, p)?.tree),
        None => None,
    };
    let base = match &base_tree {
        Some(t) => flatten(&repo.store, t)?,
        None => BTreeMap::new(),
    };
    let stashed = flatten(&repo.store, &w.tree)?;
    let changes = diff_trees(&repo.store, base_tree.as_ref(), Some(&w.tree), &[])?;
    let index = repo.index.load()?;
    let states = super::status::worktree_states(repo, &[], progress)?;
    let same = |a: Option<&FileState>, b: Option<&FileState>| match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.id == b.id && a.mode == b.mode,
        _ => false,
    };
    let mut in_way = Vec::new();
    for ch in &changes {
        let p = &ch.path;
        let idx = index.entries.get(p).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        let wt = states.get(p);
        let untracked = idx.is_none() && std::fs::symlink_metadata(repo.worktree_path(p)).is_ok();
        // Already as the stash has it, or untouched since the stash was made.
        let ok = !untracked
            && (same(wt, stashed.get(p))
                || (same(wt, idx.as_ref()) && same(idx.as_ref(), base.get(p))));
        if !ok {
            in_way.push(crate::quote::path(p).into_owned());
        }
    }
    if !in_way.is_empty() {
        let more = in_way.len().saturating_sub(10);
        let mut paths = in_way.into_iter().take(10).collect::<Vec<_>>().join(", ");
        if more > 0 {
            paths.push_str(&format!(" and {more} more"));
        }
        return Err(StashError::Conflicts {
            name: entry.name(),
            paths,
        }
        .into());
    }
    let stamp = now_ns();
    let mut edits = Vec::new();
    let mut report = ApplyReport::default();
    let sparse = crate::worktree::sparse::load(repo.dsv_dir())?;
    for ch in changes {
        // Outside a sparse working tree the index is the only place a version can
        // go (git's skip-worktree): the change comes back staged.
        if sparse.as_ref().is_some_and(|s| !s.includes(&ch.path))
            && crate::worktree::delta::stat_tracked(repo.root(), &ch.path).is_none()
        {
            edits.push(match stashed.get(&ch.path) {
                Some(st) => IndexEdit::Set(
                    ch.path.clone(),
                    IndexEntry::unverified(st.mode, st.id, st.size),
                ),
                None => IndexEdit::Remove(ch.path.clone()),
            });
            report.index_only.push(ch.path);
            continue;
        }
        match stashed.get(&ch.path) {
            Some(st) => {
                if states
                    .get(&ch.path)
                    .is_some_and(|c| c.id == st.id && c.mode == st.mode)
                {
                    continue;
                }
                let stat = crate::worktree::write::write_entry(
                    repo.root(),
                    &ch.path,
                    st.mode,
                    &st.id,
                    st.size,
                    &repo.store,
                    repo.storage.as_ref(),
                )?;
                if !index.entries.contains_key(&ch.path) {
                    edits.push(IndexEdit::Set(
                        ch.path.clone(),
                        crate::worktree::delta::entry_from_stat(st.mode, st.id, stat),
                    ));
                }
            }
            None => {
                if states.contains_key(&ch.path) {
                    crate::worktree::write::remove_entry(
                        repo.root(),
                        &ch.path,
                        repo.storage.as_ref(),
                    )?;
                }
            }
        }
        report.paths.push(ch.path);
    }
    if !edits.is_empty() {
        repo.index.apply(&edits, stamp)?;
    }
    Ok(report)
}

/// `stash drop`: removes an entry from the stash list.
pub fn drop(repo: &WritableRepo, entry: &StashEntry) -> Result<()> {
    match repo.refs.drop_reflog_entry(STASH, entry.index)? {
        Some(_) => Ok(()),
        None => Err(StashError::NoSuchEntry(entry.name()).into()),
    }
}
