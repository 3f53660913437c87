//! `merge`, `cherry-pick` and `revert`: three-way merges of dataset versions.
//!
//! The three root trees (base, ours, theirs) are walked together and any
//! directory whose id is equal on two sides is settled without being read, so a
//! merge costs what changed, not what exists. A path changed on one side only
//! takes that side. A label file changed on both sides is merged frame by frame
//! and object by object ([`labels`]); anything else changed on both
//! sides is a file-level conflict.
//!
//! A merge that stops on conflicts leaves its state in `.dsv/MERGE_STATE` (JSON,
//! written atomically before the worktree is touched) with `MERGE_HEAD`,
//! `ORIG_HEAD` and `MERGE_MSG` beside it for people and scripts. `--abort`
//! puts back HEAD's version of every path the merge or the user changed in the
//! index, and `--continue` commits once every conflict is resolved.
//!
//! By concern: [`tree`] merges three trees (pure: reads the store, writes
//! nothing), [`labels`] and [`meta`] merge one label file and the sidecar,
//! [`state`] keeps the merge in progress on disk, [`apply`] writes a merge
//! result to the index and the working tree; this module holds the command
//! flows (merge, cherry-pick, revert, continue, abort, resolve).

mod apply;
mod error;
pub mod labels;
pub mod meta;
pub mod state;
mod tree;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::commit::COMMIT_FORMAT;
use crate::object::diff::{FileState, diff_trees};
use crate::object::graph;
use crate::object::{Commit, Person};
use crate::ops::events::{OpEvent, head_move};
use crate::paths::display_path;
use crate::refs::{HEADS, Head};
use crate::repo::{Repository, WritableRepo};
use crate::worktree::index::{IndexEdit, now_ns};

use apply::{
    apply_changes, index_already_applied, local_changes_error, sparse_absent, worktree_is,
};
pub use error::MergeError;
pub use state::{
    ConflictKind, FileConflict, MergeKind, MergeState, STATE_FILE, STATE_VERSION, load_state,
    refuse_if_in_progress,
};
use state::{clear_state, in_progress, save_state, update_state};
use tree::merge_trees;

/// Which side wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The current branch.
    Ours,
    /// The branch or commit being merged in.
    Theirs,
}

/// How `merge` behaves.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Make a merge commit even when a fast-forward is possible.
    pub no_ff: bool,
    /// Refuse unless a fast-forward is possible.
    pub ff_only: bool,
    /// Decide every conflict for this side instead of stopping.
    pub strategy: Option<Side>,
    /// Message of the merge commit.
    pub message: Option<String>,
}

/// How a merge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to do: their commit is already in our history.
    UpToDate,
    /// HEAD moved forward to their commit.
    FastForward,
    /// A new commit was made.
    Committed,
    /// Stopped on conflicts; the state is in `.dsv/MERGE_STATE`.
    Conflicts,
}

/// What a merge, cherry-pick or revert did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The command.
    pub kind: MergeKind,
    /// The commit merged in.
    pub theirs: ObjectId,
    /// The merge base.
    pub base: Option<ObjectId>,
    /// The new commit (or the fast-forward target).
    pub commit: Option<ObjectId>,
    /// Files written into the working tree.
    pub written: u64,
    /// Files removed from the working tree.
    pub removed: u64,
    /// Label files both sides changed that were merged at object level.
    pub label_merged: Vec<String>,
    /// The frame-metadata sidecar, when both sides changed it and it was merged
    /// row by row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_merged: Option<String>,
    /// Conflicts (for `Conflicts`; resolved by `--strategy` otherwise not listed).
    pub conflicts: Vec<FileConflict>,
    /// The selection commit used as the merge base, when `merge` folded a
    /// selection's branch back (see [`graph::selection_base`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<ObjectId>,
    /// What hooks fire on: the commit recorded, the merge, the branch moved.
    #[serde(skip)]
    pub events: Vec<OpEvent>,
}

/// What running `kind` of `theirs` again finds: a state the same command left
/// when it was interrupted is taken up (`Some`), any other state refuses.
fn resumable(repo: &Repository, kind: MergeKind, theirs: ObjectId) -> Result<Option<MergeState>> {
    let Some(s) = load_state(repo)? else {
        return Ok(None);
    };
    let same = s.kind == kind && s.theirs == theirs && repo.refs.head_commit()? == Some(s.head);
    // An applied state with conflicts is the user's to resolve; one without had
    // only its commit left to make.
    if same && (!s.applied || s.conflicts.is_empty()) {
        return Ok(Some(s));
    }
    Err(in_progress(&s, kind.command()))
}

/// Three-way merges `theirs` into HEAD against `base`; the shared core of merge,
/// cherry-pick and revert. `ff` allows moving HEAD to `theirs` without a commit.
#[allow(clippy::too_many_arguments)]
fn run_merge(
    repo: &Repository,
    kind: MergeKind,
    head: Option<ObjectId>,
    base: Option<ObjectId>,
    theirs: ObjectId,
    theirs_tree: Option<ObjectId>,
    base_tree: Option<ObjectId>,
    ff: bool,
    strategy: Option<Side>,
    message: String,
    author: Option<Person>,
    theirs_name: &str,
    resuming: bool,
) -> Result<MergeReport> {
    let stamp = now_ns();
    let ours_tree = repo.head_tree()?;
    let (index, read_at) = repo.index.load_based()?;
    let index_tree = crate::worktree::build::index_tree_id(&index.entries)?;
    let clean_index = match ours_tree {
        Some(t) => index_tree == t,
        None => index.entries.is_empty(),
    };
    let staged = || MergeError::StagedChanges {
        command: kind.command(),
    };
    // A fast-forward or a resumed merge that was killed after its index transaction
    // finds the index it wrote: that is not a user's staged change.
    let may_be_applied = resuming || ff || head.is_none();
    if !clean_index && !may_be_applied {
        return Err(staged().into());
    }
    let tm = merge_trees(repo, base_tree, ours_tree, theirs_tree, strategy)?;
    // Objects written by the label merge must be durable before the index names them.
    repo.store.flush()?;
    let mut changes: Vec<(Vec<u8>, Option<FileState>, bool)> = Vec::new();
    for (p, st) in &tm.updates {
        changes.push((p.clone(), *st, true));
    }
    let sparse = crate::worktree::sparse::load(repo.dsv_dir())?;
    for (p, c) in &tm.conflicts {
        // A conflict outside a sparse working tree is written there all the same
        // (git materialises it too): it has to be seen to be resolved.
        if c.resolved_ours != c.ours || sparse_absent(repo, sparse.as_ref(), p) {
            changes.push((p.clone(), c.resolved_ours, false));
        }
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    if !clean_index && !index_already_applied(&index, &changes, index_tree)? {
        return Err(staged().into());
    }
    // Refuse before touching anything if a file to change has local changes.
    let mut dirty = Vec::new();
    for (p, new, _) in &changes {
        // Outside a sparse working tree an absent file is what the index expects.
        if sparse_absent(repo, sparse.as_ref(), p) {
            continue;
        }
        let ours = index.entries.get(p).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        if !worktree_is(repo, &index, p, ours.as_ref())?
            && !worktree_is(repo, &index, p, new.as_ref())?
        {
            dirty.push(p.clone());
        }
    }
    for (p, _) in &tm.conflicts {
        if changes.iter().any(|c| c.0 == *p) {
            // Checked above: ours, or the resolution the merge writes there.
            continue;
        }
        let ours = index.entries.get(p).map(|e| FileState {
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
        });
        if !worktree_is(repo, &index, p, ours.as_ref())? && !dirty.contains(p) {
            dirty.push(p.clone());
        }
    }
    if !dirty.is_empty() {
        dirty.sort();
        return Err(local_changes_error(&dirty, kind.command()));
    }
    let mut report = MergeReport {
        outcome: Outcome::Committed,
        kind,
        theirs,
        base,
        commit: None,
        written: 0,
        removed: 0,
        label_merged: tm.label_merged.clone(),
        meta_merged: tm.meta_merged.clone(),
        conflicts: Vec::new(),
        selection: None,
        events: Vec::new(),
    };
    let Some(head) = head.filter(|_| !ff) else {
        // Fast-forward: write their files, then move HEAD.
        // The index is at their tree now: recorded, the next status reads neither.
        let (w, r) = apply_changes(repo, &changes, stamp, Some((&index, &read_at)))?;
        report.written = w;
        report.removed = r;
        let moved = move_head(
            repo,
            theirs,
            &format!("{}: fast-forward to {theirs_name}", kind.command()),
        )?;
        report.events.push(OpEvent::Merged {
            commit: theirs,
            previous: head,
        });
        report.events.extend(moved);
        report.outcome = Outcome::FastForward;
        report.commit = Some(theirs);
        return Ok(report);
    };
    let mut state = MergeState {
        applied: false,
        version: STATE_VERSION,
        kind,
        head,
        theirs,
        theirs_name: theirs_name.to_string(),
        base,
        message,
        author,
        touched: changes.iter().map(|c| display_path(&c.0)).collect(),
        conflicts: tm.conflicts.iter().map(|(_, c)| c.clone()).collect(),
    };
    // The state is on disk before the worktree changes, so --abort always works.
    save_state(repo, &state)?;
    let (w, r) = apply_changes(repo, &changes, stamp, None)?;
    state.applied = true;
    update_state(repo, &state)?;
    report.written = w;
    report.removed = r;
    if !state.conflicts.is_empty() {
        report.outcome = Outcome::Conflicts;
        report.conflicts = state.conflicts;
        return Ok(report);
    }
    let (id, events) = finish(repo, &state)?;
    report.commit = Some(id);
    report.events = events;
    Ok(report)
}

/// Moves HEAD (its branch, or a detached HEAD) to `to`; returns the branch move.
fn move_head(repo: &Repository, to: ObjectId, msg: &str) -> Result<Option<OpEvent>> {
    let (time, _) = repo.now()?;
    let who = repo.reflog_identity();
    let head = repo.refs.head()?;
    let old = repo.refs.head_commit()?;
    match &head {
        Head::Branch(b) => repo
            .refs
            .update(&format!("{HEADS}{b}"), to, &who, time, msg)?,
        Head::Detached(_) => repo.refs.set_head(&Head::Detached(to), &who, time, msg)?,
    }
    Ok(head_move(&head, old, to))
}

/// Commits the index as the result of `state` and clears the state; returns the
/// commit and what hooks fire on.
fn finish(repo: &Repository, state: &MergeState) -> Result<(ObjectId, Vec<OpEvent>)> {
    let (index, base) = repo.index.load_based()?;
    let (tree, summary) = crate::worktree::build::build_tree(&repo.store, &index.entries)?;
    // As commit: the index hashes to `tree` unless written since it was read.
    let _ = repo
        .index
        .record_tree(base.generation, base.stamp, tree, true);
    let committer = repo.identity()?;
    let (time, tz) = repo.now()?;
    let parents = match state.kind {
        MergeKind::Merge => vec![state.head, state.theirs],
        MergeKind::CherryPick | MergeKind::Revert => vec![state.head],
    };
    if state.kind != MergeKind::Merge && Commit::load(&repo.store, &state.head)?.tree == tree {
        clear_state(repo)?;
        return Err(MergeError::NothingToCommit {
            command: state.kind.command(),
        }
        .into());
    }
    let commit = Commit {
        format: COMMIT_FORMAT,
        tree,
        parents,
        author: state.author.clone().unwrap_or(committer),
        time,
        tz_offset_min: tz,
        message: normalize(&state.message),
        summary,
        code: super::commit::code_version(repo.root()),
        selection: None,
    };
    let id = repo.store.put_commit(&commit.encode())?;
    repo.store.flush()?;
    let moved = move_head(
        repo,
        id,
        &format!("{}: {}", state.kind.command(), commit.subject()),
    )?;
    clear_state(repo)?;
    let mut events = vec![OpEvent::Committed(id)];
    if state.kind == MergeKind::Merge {
        events.push(OpEvent::Merged {
            commit: id,
            previous: Some(state.head),
        });
    }
    events.extend(moved);
    Ok((id, events))
}

fn normalize(m: &str) -> String {
    let lines: Vec<&str> = m.lines().map(str::trim_end).collect();
    format!("{}\n", lines.join("\n").trim_matches('\n'))
}

fn tree_of(repo: &Repository, c: Option<ObjectId>) -> Result<Option<ObjectId>> {
    c.map(|c| Commit::load(&repo.store, &c).map(|c| c.tree))
        .transpose()
}

/// `dsv merge THEIRS`: fast-forward or three-way merge of a commit into HEAD.
pub fn merge(
    repo: &WritableRepo,
    theirs: ObjectId,
    theirs_name: &str,
    opts: &MergeOptions,
) -> Result<MergeReport> {
    let resume = resumable(repo, MergeKind::Merge, theirs)?;
    if let Some(s) = &resume
        && s.applied
    {
        return finish_resumed(repo, s);
    }
    let head = repo.refs.head_commit()?;
    let base = match head {
        Some(h) => graph::merge_base(&repo.store, h, theirs)?,
        None => None,
    };
    let up_to_date = base == Some(theirs);
    if up_to_date {
        return Ok(MergeReport {
            outcome: Outcome::UpToDate,
            kind: MergeKind::Merge,
            theirs,
            base,
            commit: head,
            written: 0,
            removed: 0,
            label_merged: Vec::new(),
            meta_merged: None,
            conflicts: Vec::new(),
            selection: None,
            events: Vec::new(),
        });
    }
    // Merging a selection back: its commit is the base, so what it left out is
    // not taken as deleted, and HEAD never moves to the subset.
    let selection = match head {
        Some(h) => graph::selection_base(&repo.store, h, theirs)?,
        None => None,
    };
    let base = selection.or(base);
    let can_ff = selection.is_none() && (head.is_none() || base == head);
    if opts.ff_only && !can_ff {
        return Err(match selection {
            Some(s) => MergeError::SelectionNeedsMergeCommit {
                theirs: theirs_name.to_string(),
                selection: s.short(),
            },
            None => MergeError::NotFastForward {
                theirs: theirs_name.to_string(),
            },
        }
        .into());
    }
    let ff = can_ff && (!opts.no_ff || head.is_none());
    let branch = match repo.refs.head()? {
        Head::Branch(b) => b,
        Head::Detached(_) => "HEAD".into(),
    };
    let message = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Merge {theirs_name} into {branch}"));
    let mut report = run_merge(
        repo,
        MergeKind::Merge,
        head,
        base,
        theirs,
        tree_of(repo, Some(theirs))?,
        tree_of(repo, base)?,
        ff,
        opts.strategy,
        message,
        None,
        theirs_name,
        resume.is_some(),
    )?;
    report.selection = selection;
    Ok(report)
}

/// `dsv cherry-pick REV`: applies what REV changed (against its parent) onto HEAD.
pub fn cherry_pick(
    repo: &WritableRepo,
    rev: ObjectId,
    name: &str,
    strategy: Option<Side>,
) -> Result<MergeReport> {
    pick_or_revert(repo, MergeKind::CherryPick, rev, name, strategy)
}

/// `dsv revert REV`: undoes what REV changed (against its parent) on HEAD.
pub fn revert(
    repo: &WritableRepo,
    rev: ObjectId,
    name: &str,
    strategy: Option<Side>,
) -> Result<MergeReport> {
    pick_or_revert(repo, MergeKind::Revert, rev, name, strategy)
}

fn pick_or_revert(
    repo: &WritableRepo,
    kind: MergeKind,
    rev: ObjectId,
    name: &str,
    strategy: Option<Side>,
) -> Result<MergeReport> {
    let resume = resumable(repo, kind, rev)?;
    if let Some(s) = &resume
        && s.applied
    {
        return finish_resumed(repo, s);
    }
    let head = repo
        .refs
        .head_commit()?
        .ok_or_else(|| MergeError::NoCommitsYet {
            command: kind.command(),
        })?;
    let c = Commit::load(&repo.store, &rev)?;
    if c.parents.len() > 1 {
        return Err(MergeError::MergeCommit {
            command: kind.command(),
            name: name.to_string(),
        }
        .into());
    }
    if let Some(sel) = &c.selection {
        // Against its parent a selection deletes every frame it left out.
        return Err(MergeError::SelectionCommit {
            command: kind.command(),
            name: name.to_string(),
            of: sel.of.short(),
        }
        .into());
    }
    let parent = c.parents.first().copied();
    let parent_tree = tree_of(repo, parent)?;
    let (base_tree, theirs_tree, message, author) = match kind {
        MergeKind::Revert => (
            Some(c.tree),
            parent_tree,
            format!("Revert \"{}\"\n\nThis reverts commit {rev}.\n", c.subject()),
            None,
        ),
        _ => (
            parent_tree,
            Some(c.tree),
            c.message.clone(),
            Some(c.author.clone()),
        ),
    };
    run_merge(
        repo,
        kind,
        Some(head),
        parent,
        rev,
        theirs_tree,
        base_tree,
        false,
        strategy,
        message,
        author,
        name,
        resume.is_some(),
    )
}

/// Makes the commit of a merge whose files are written and conflicts resolved: for
/// `--continue`, and for a run killed after it wrote its files (the state says so),
/// what the uninterrupted run would have done last.
fn finish_resumed(repo: &Repository, state: &MergeState) -> Result<MergeReport> {
    let (id, events) = finish(repo, state)?;
    Ok(MergeReport {
        outcome: Outcome::Committed,
        kind: state.kind,
        theirs: state.theirs,
        base: state.base,
        commit: Some(id),
        written: 0,
        removed: 0,
        label_merged: Vec::new(),
        meta_merged: None,
        conflicts: Vec::new(),
        selection: None,
        events,
    })
}

/// `--continue`: commits once every conflict is resolved.
pub fn continue_merge(repo: &WritableRepo) -> Result<MergeReport> {
    let state = load_state(repo)?.ok_or(MergeError::NoneInProgress)?;
    if !state.applied {
        return Err(in_progress(&state, "continue"));
    }
    let open: Vec<String> = state.unresolved().map(|c| c.path.clone()).collect();
    if !open.is_empty() {
        return Err(MergeError::Unresolved { paths: open }.into());
    }
    if repo.refs.head_commit()? != Some(state.head) {
        return Err(MergeError::HeadMoved {
            command: state.kind.command(),
        }
        .into());
    }
    finish_resumed(repo, &state)
}

/// `--abort`: puts HEAD, the index and every path the merge (or the user, through
/// the index) changed back to the pre-merge commit, then drops the state.
pub fn abort(repo: &WritableRepo) -> Result<MergeReport> {
    let stamp = now_ns();
    let state = load_state(repo)?.ok_or(MergeError::NoneInProgress)?;
    let head_tree = Commit::load(&repo.store, &state.head)?.tree;
    let index = repo.index.load()?;
    let (index_tree, _) = crate::worktree::build::build_tree(&repo.store, &index.entries)?;
    let mut paths: Vec<Vec<u8>> = state
        .touched
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    for c in diff_trees(&repo.store, Some(&index_tree), Some(&head_tree), &[])? {
        paths.push(c.path);
    }
    paths.sort();
    paths.dedup();
    let touched: HashSet<&[u8]> = state.touched.iter().map(|p| p.as_bytes()).collect();
    let mut changes = Vec::new();
    let mut unstage = Vec::new();
    for p in paths {
        let want = crate::object::diff::lookup(&repo.store, &head_tree, &p)?
            .filter(|(m, _, _)| m.is_blob())
            .map(|(mode, id, size)| FileState { mode, id, size });
        if want.is_none() && !touched.contains(p.as_slice()) {
            // Staged during the merge, not in HEAD: the file may have been untracked
            // before the merge, so it is only unstaged, never deleted.
            unstage.push(IndexEdit::Remove(p));
            continue;
        }
        let in_index = index
            .entries
            .get(&p)
            .is_some_and(|e| want.is_some_and(|w| w.id == e.id && w.mode == e.mode));
        if !(in_index && worktree_is(repo, &index, &p, want.as_ref())?) {
            changes.push((p, want, true));
        }
    }
    if !unstage.is_empty() {
        repo.index.apply(&unstage, stamp)?;
    }
    let (written, removed) = apply_changes(repo, &changes, stamp, None)?;
    let mut events = Vec::new();
    // HEAD moved during the stop (a reset): going back to where the merge began is
    // a branch move like any other.
    if repo.refs.head_commit()? != Some(state.head) {
        events.extend(move_head(
            repo,
            state.head,
            &format!("{}: abort", state.kind.command()),
        )?);
    }
    clear_state(repo)?;
    Ok(MergeReport {
        outcome: Outcome::UpToDate,
        kind: state.kind,
        theirs: state.theirs,
        base: state.base,
        commit: Some(state.head),
        written,
        removed,
        label_merged: Vec::new(),
        meta_merged: None,
        conflicts: Vec::new(),
        selection: None,
        events,
    })
}

/// What `resolve` did.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveReport {
    /// Paths resolved.
    pub resolved: Vec<String>,
    /// Conflicted paths still open.
    pub remaining: usize,
}

/// `dsv resolve PATH... --ours|--theirs`: writes the merge with every conflict of the
/// file decided for one side into the worktree and the index, and marks it resolved.
pub fn resolve(repo: &WritableRepo, paths: &[Vec<u8>], side: Side) -> Result<ResolveReport> {
    let stamp = now_ns();
    let mut state = load_state(repo)?.ok_or(MergeError::NoneInProgress)?;
    if !state.applied {
        return Err(in_progress(&state, "resolve"));
    }
    let mut changes = Vec::new();
    let mut resolved = Vec::new();
    for p in paths {
        let shown = display_path(p);
        let c = state
            .conflicts
            .iter_mut()
            .find(|c| c.path == shown)
            .ok_or_else(|| MergeError::NotConflicted(shown.to_string()))?;
        let pick = match side {
            Side::Ours => c.resolved_ours,
            Side::Theirs => c.resolved_theirs,
        };
        c.resolved = true;
        changes.push((p.clone(), pick, true));
        resolved.push(shown);
    }
    apply_changes(repo, &changes, stamp, None)?;
    save_state(repo, &state)?;
    Ok(ResolveReport {
        resolved,
        remaining: state.unresolved().count(),
    })
}

/// Called by `add`: staging a conflicted path marks it resolved.
pub fn mark_added(repo: &Repository, scopes: &[Vec<u8>]) -> Result<()> {
    let Some(mut state) = load_state(repo)? else {
        return Ok(());
    };
    if !state.applied {
        // Its conflicts are not in the worktree yet: nothing to mark.
        return Ok(());
    }
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let mut changed = false;
    for c in state.conflicts.iter_mut().filter(|c| !c.resolved) {
        let p = c.path.as_bytes();
        if whole || scopes.iter().any(|s| crate::paths::path_within(p, s)) {
            c.resolved = true;
            changed = true;
        }
    }
    if changed {
        save_state(repo, &state)?;
    }
    Ok(())
}
