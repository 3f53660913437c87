//! Moving the working tree between versions: switch, checkout, restore, reset.
//!
//! Every command here computes a plan (files to write, files to remove, index
//! edits) first, refuses before touching anything if the plan would destroy
//! local changes, then executes it: removals, then parallel writes, then one
//! index transaction, then the ref move. A file that cannot be written (say its
//! object is corrupt) is reported while every other file is still written.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::paths::{display_path, path_within};
use crate::progress::Progress;
use crate::refs::{HEADS, Head};
use crate::repo::{Repository, WritableRepo};
use crate::worktree::index::{Base, IndexEdit, IndexEntry, now_ns};
use crate::worktree::sparse::Sparse;
use crate::worktree::write;

use crate::object::diff::{FileState, diff_trees, flatten, flatten_list, flatten_scoped};
use crate::worktree::delta::{hash_worktree_file, stat_tracked};

/// Files to write and remove, with what the index should say afterwards.
#[derive(Debug, Default)]
struct Plan {
    writes: Vec<(Vec<u8>, FileState)>,
    removes: Vec<Vec<u8>>,
    /// Index entries to set without touching the worktree (e.g. reset --mixed).
    index_only: Vec<IndexEdit>,
    /// Whether written files get index entries.
    update_index: bool,
    /// A sparse working tree: writes outside it go to the index only.
    sparse: Option<Sparse>,
    /// The tree id the index hashes to once every edit is made, if the index is
    /// still as read at this base: recorded with the edits so the next status
    /// need not read the index (see [`crate::worktree::index::Index::apply_recording`]).
    record: Option<(Base, ObjectId)>,
}

/// What a checkout-like command did.
#[derive(Debug, Default, Serialize)]
pub struct CheckoutReport {
    /// Files written.
    pub written: u64,
    /// Files removed.
    pub removed: u64,
    /// The commit now checked out (for switch/reset).
    pub commit: Option<ObjectId>,
    /// What hooks fire on: the branch a reset or fast-forward moved, HEAD a switch moved.
    #[serde(skip)]
    pub events: Vec<crate::ops::events::OpEvent>,
}

/// Whether the worktree file at `path` matches `entry` (stat first, hash if needed).
fn worktree_matches(repo: &Repository, path: &[u8], entry: &IndexEntry) -> Result<bool> {
    match stat_tracked(repo.root(), path) {
        None => Ok(false),
        Some(f) if f.mode != entry.mode => Ok(false),
        Some(f) if entry.is_clean(&f.stat) => Ok(true),
        Some(f) => Ok(hash_worktree_file(repo.root(), &f)? == entry.id),
    }
}

fn execute(
    repo: &Repository,
    plan: Plan,
    stamp: i64,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let mut report = CheckoutReport::default();
    let mut edits: Vec<IndexEdit> = plan.index_only;
    let mut errors = Vec::new();
    let mut writes = plan.writes;
    if let Some(sparse) = &plan.sparse {
        // Outside the sparse paths the index follows the commit; the worktree does not.
        writes.retain(|(path, st)| {
            let inside = sparse.includes(path);
            if !inside && plan.update_index {
                edits.push(IndexEdit::Set(
                    path.clone(),
                    IndexEntry::unverified(st.mode, st.id, st.size),
                ));
            }
            inside
        });
    }
    for p in &plan.removes {
        match write::remove_entry(repo.root(), p, repo.storage.as_ref()) {
            Ok(()) => {
                report.removed += 1;
                if plan.update_index {
                    edits.push(IndexEdit::Remove(p.clone()));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    progress.start("writing", Some(writes.len() as u64));
    // Threads take whole directories: two threads creating files in one directory
    // queue on its lock, which made a full checkout slower than `cp -r`. The groups
    // are slices of the sorted list, and each written file's path moves into its
    // index edit: a full checkout of a million files holds one list at a time, not
    // three (the groups, the results, the edits).
    writes.sort_by(|a, b| a.0.cmp(&b.0));
    let failed: std::sync::Mutex<Vec<(Vec<u8>, Error)>> = Default::default();
    // A tree entry holds the size: a written file whose size is not the tree's
    // would make the index hash to another tree than the one to record.
    let odd_size = std::sync::atomic::AtomicBool::new(false);
    // Collected slice by slice into a list of the final size: a parallel collect of
    // a million edits held them twice (per-thread lists, then their concatenation).
    let mut written: Vec<IndexEdit> = Vec::with_capacity(writes.len());
    for slice in writes.chunks_mut(WRITE_SLICE) {
        let part: Vec<IndexEdit> = slice
            .par_chunk_by_mut(|a, b| parent_dir(&a.0) == parent_dir(&b.0))
            .flat_map_iter(|group| {
                // One handle on the directory for the whole group; if it cannot be
                // opened, each file is tried on its own and gets its own error.
                let dir = write::WorkDir::parent_of(repo.root(), &group[0].0, true)
                    .ok()
                    .flatten()
                    .map(|(dir, _)| dir);
                let failed = &failed;
                let odd_size = &odd_size;
                group.iter_mut().filter_map(move |(path, st)| {
                    let path = std::mem::take(path);
                    let name = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
                    let r = match &dir {
                        Some(dir) => dir.write_entry(
                            name,
                            st.mode,
                            &st.id,
                            st.size,
                            &repo.store,
                            repo.storage.as_ref(),
                        ),
                        None => write::write_entry(
                            repo.root(),
                            &path,
                            st.mode,
                            &st.id,
                            st.size,
                            &repo.store,
                            repo.storage.as_ref(),
                        ),
                    };
                    progress.inc(1);
                    if r.as_ref().is_ok_and(|stat| stat.size != st.size) {
                        odd_size.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    match r {
                        Ok(stat) => Some(IndexEdit::Set(
                            path,
                            IndexEntry {
                                mode: st.mode,
                                id: st.id,
                                stat,
                            },
                        )),
                        Err(e) => {
                            failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((path, e));
                            None
                        }
                    }
                })
            })
            .collect();
        written.extend(part);
    }
    drop(writes);
    progress.finish();
    report.written += written.len() as u64;
    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    // In path order, as the files were listed.
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, e) in failed {
        errors.push(
            CheckoutError::CannotCheckOut {
                path: display_path(&path),
                reason: e.to_string(),
            }
            .into(),
        );
    }
    if plan.update_index {
        let mut written = written;
        if edits.is_empty() {
            edits = written;
        } else {
            edits.append(&mut written);
        }
    }
    // Only a plan carried out in full leaves the index at the tree it expects.
    let record = plan
        .record
        .filter(|_| plan.update_index && errors.is_empty() && !odd_size.into_inner());
    match (edits.is_empty(), record) {
        (false, Some((base, tree))) => {
            repo.index.apply_recording(&edits, stamp, &base, tree)?;
        }
        (false, None) => repo.index.apply(&edits, stamp)?,
        (true, Some((base, tree))) => {
            // Nothing to write: the index read is already that tree's. Best effort.
            let _ = repo
                .index
                .record_tree(base.generation, base.stamp, tree, false);
        }
        (true, None) => {}
    }
    if !errors.is_empty() {
        return Err(super::add::first_or_multiple(errors, "checkout"));
    }
    Ok(report)
}

/// Files written per parallel round of a checkout (see `execute`).
const WRITE_SLICE: usize = 1 << 15;

/// The directory part of a repository path (None at the root).
fn parent_dir(path: &[u8]) -> Option<&[u8]> {
    path.iter().rposition(|b| *b == b'/').map(|i| &path[..i])
}

fn conflict_error(paths: &[Vec<u8>], what: &str) -> Error {
    let mut list: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| format!("  {}", display_path(p)))
        .collect();
    if paths.len() > 10 {
        list.push(format!("  ... and {} more", paths.len() - 10));
    }
    CheckoutError::LocalChanges {
        command: what.to_string(),
        files: crate::paths::PathList(paths.to_vec()),
    }
    .into()
}

/// Switches HEAD to `target` (a branch name to attach to, or a detached commit),
/// rewriting only files that differ between the current and the target commit.
pub fn switch(
    repo: &WritableRepo,
    target: SwitchTarget,
    force: bool,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let stamp = now_ns();
    let previous = repo.refs.head_commit()?;
    let (commit, head) = match &target {
        SwitchTarget::Branch(b) => {
            let id = repo
                .refs
                .read(&format!("{HEADS}{b}"))?
                .ok_or_else(|| Error::RefNotFound {
                    kind: "branch",
                    name: b.clone(),
                })?;
            (id, Head::Branch(b.clone()))
        }
        SwitchTarget::Detached(id) => (*id, Head::Detached(*id)),
    };
    let target_tree = Commit::load(&repo.store, &commit)?.tree;
    let mut report = if force {
        reset_worktree(repo, &target_tree, stamp, progress)?
    } else {
        move_to_tree(repo, &target_tree, stamp, progress)?
    };
    let (time, _) = repo.now()?;
    let from = match repo.refs.head()? {
        Head::Branch(b) => b,
        Head::Detached(id) => id.short(),
    };
    let to = match &head {
        Head::Branch(b) => b.clone(),
        Head::Detached(id) => id.short(),
    };
    repo.refs.set_head(
        &head,
        &repo.reflog_identity(),
        time,
        &format!("switch: moving from {from} to {to}"),
    )?;
    report.commit = Some(commit);
    report
        .events
        .push(crate::ops::events::OpEvent::CheckedOut { commit, previous });
    Ok(report)
}

/// Moves index and worktree from HEAD's tree to `target_tree`, touching only paths
/// that differ, and refusing (before any change) if that would lose local changes.
fn move_to_tree(
    repo: &Repository,
    target_tree: &ObjectId,
    stamp: i64,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let current = repo.head_tree()?;
    // Only the entries of the paths that change are looked up, in one view of the
    // index: a switch between versions that differ in a few files reads a few entries,
    // not the whole index.
    let reader = repo.index.reader()?;
    let base = reader.base()?;
    let changes = diff_trees(&repo.store, current.as_ref(), Some(target_tree), &[])?;
    let entries = reader.get_many(changes.iter().map(|c| &c.path))?;
    drop(reader);
    let sparse = crate::worktree::sparse::load(repo.dsv_dir())?;
    let mut plan = Plan {
        update_index: true,
        ..Plan::default()
    };
    let mut conflicts = Vec::new();
    for (c, staged) in changes.into_iter().zip(entries) {
        let staged = staged.as_ref();
        // Outside a sparse worktree an absent file is what the index expects.
        let outside_absent = sparse.as_ref().is_some_and(|s| !s.includes(&c.path))
            && stat_tracked(repo.root(), &c.path).is_none();
        // The index must still hold the current commit's version of every path we touch,
        // and the worktree must match the index.
        // A path already at the target version (both in the index and the worktree) is
        // clean too, so a switch interrupted halfway (crash, full disk) can be re-run.
        let is = |st: &Option<FileState>| match (staged, st) {
            (None, None) => true,
            (Some(e), Some(o)) => e.id == o.id && e.mode == o.mode,
            _ => false,
        };
        let index_clean = is(&c.old) || is(&c.new);
        let at_target = || -> Result<bool> {
            Ok(match (&c.new, stat_tracked(repo.root(), &c.path)) {
                (None, None) => true,
                (Some(n), Some(f)) => {
                    f.mode == n.mode && hash_worktree_file(repo.root(), &f)? == n.id
                }
                _ => false,
            })
        };
        let wt_clean = match staged {
            _ if outside_absent => true,
            Some(e) => worktree_matches(repo, &c.path, e)? || at_target()?,
            None => match stat_tracked(repo.root(), &c.path) {
                None => true,
                // An untracked file in the way is fine only if it already has the target content.
                Some(f) => c.new.is_some_and(|n| {
                    hash_worktree_file(repo.root(), &f).ok() == Some(n.id) && f.mode == n.mode
                }),
            },
        };
        if !index_clean || !wt_clean {
            conflicts.push(c.path.clone());
            continue;
        }
        match c.new {
            Some(n) => plan.writes.push((c.path, n)),
            None => plan.removes.push(c.path),
        }
    }
    if !conflicts.is_empty() {
        return Err(conflict_error(&conflicts, "switching"));
    }
    plan.sparse = sparse;
    // An index known to hold exactly the current tree, moved along every path where
    // the target differs, holds exactly the target. With staged changes it does not.
    if current.is_some() && base.tree == current {
        plan.record = Some((base, *target_tree));
    }
    execute(repo, plan, stamp, progress)
}

/// Fast-forwards the current branch to `target` (pull): the worktree moves like a
/// switch (refusing to overwrite local changes), then the branch ref moves.
pub fn fast_forward(
    repo: &WritableRepo,
    target: ObjectId,
    message: &str,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let stamp = now_ns();
    let Head::Branch(branch) = repo.refs.head()? else {
        return Err(CheckoutError::DetachedHead.into());
    };
    let target_tree = Commit::load(&repo.store, &target)?.tree;
    let old = repo.refs.head_commit()?;
    let mut report = move_to_tree(repo, &target_tree, stamp, progress)?;
    let (time, _) = repo.now()?;
    repo.refs.update(
        &format!("{HEADS}{branch}"),
        target,
        &repo.reflog_identity(),
        time,
        message,
    )?;
    report.commit = Some(target);
    report.events.extend(crate::ops::events::head_move(
        &Head::Branch(branch),
        old,
        target,
    ));
    Ok(report)
}

/// Where `switch` goes.
#[derive(Debug, Clone)]
pub enum SwitchTarget {
    /// Attach HEAD to this branch.
    Branch(String),
    /// Detach HEAD at this commit.
    Detached(ObjectId),
}

/// Makes index and worktree equal `tree` for every tracked or target path; untracked files stay.
fn reset_worktree(
    repo: &Repository,
    tree: &ObjectId,
    stamp: i64,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let (index, base) = repo.index.load_based()?;
    // Every entry not in the tree is removed and every other one set to it or kept
    // as it is: carried out in full, the index holds exactly the tree.
    let mut plan = Plan {
        update_index: true,
        sparse: crate::worktree::sparse::load(repo.dsv_dir())?,
        record: Some((base, *tree)),
        ..Plan::default()
    };
    if index.entries.is_empty() {
        // A fresh clone: nothing to compare or remove, every file is written. The
        // tree's list as it is, without the map and its parallel copy.
        plan.writes = flatten_list(&repo.store, tree)?;
        return execute(repo, plan, stamp, progress);
    }
    let target = flatten(&repo.store, tree)?;
    for path in index.entries.keys() {
        if !target.contains_key(path) {
            plan.removes.push(path.clone());
        }
    }
    plan.writes = target
        .into_par_iter()
        .filter(|(path, st)| match index.entries.get(path) {
            // The size too: it is part of the tree the index is recorded to hash to.
            Some(e) if e.id == st.id && e.mode == st.mode && e.stat.size == st.size => {
                !worktree_matches(repo, path, e).unwrap_or(false)
            }
            _ => true,
        })
        .collect();
    execute(repo, plan, stamp, progress)
}

/// How far `reset` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetMode {
    /// Move the branch only.
    Soft,
    /// Move the branch and reset the index.
    Mixed,
    /// Move the branch, reset the index and the working tree.
    Hard,
}

/// Moves the current branch (or detached HEAD) to `target` and resets index/worktree per `mode`.
pub fn reset(
    repo: &WritableRepo,
    target: ObjectId,
    mode: ResetMode,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let stamp = now_ns();
    let tree = Commit::load(&repo.store, &target)?.tree;
    let mut report = match mode {
        ResetMode::Soft => CheckoutReport::default(),
        ResetMode::Mixed => {
            let index = repo.index.load()?;
            let files = flatten(&repo.store, &tree)?;
            let entries: BTreeMap<Vec<u8>, IndexEntry> = files
                .into_iter()
                .map(|(p, st)| {
                    let e = match index.entries.get(&p) {
                        Some(old)
                            if old.id == st.id
                                && old.mode == st.mode
                                && old.stat.size == st.size =>
                        {
                            *old
                        }
                        _ => IndexEntry::unverified(st.mode, st.id, st.size),
                    };
                    (p, e)
                })
                .collect();
            // Built from the tree alone (mode, id and size, all a tree holds): the
            // index hashes to it whatever it held before.
            repo.index.replace_all_recording(&entries, stamp, tree)?;
            CheckoutReport::default()
        }
        ResetMode::Hard => reset_worktree(repo, &tree, stamp, progress)?,
    };
    let (time, _) = repo.now()?;
    let who = repo.reflog_identity();
    let msg = format!("reset: moving to {}", target.short());
    let old = repo.refs.head_commit()?;
    let head = repo.refs.head()?;
    match &head {
        Head::Branch(b) => repo
            .refs
            .update(&format!("{HEADS}{b}"), target, &who, time, &msg)?,
        Head::Detached(_) => repo
            .refs
            .set_head(&Head::Detached(target), &who, time, &msg)?,
    }
    report.commit = Some(target);
    report
        .events
        .extend(crate::ops::events::head_move(&head, old, target));
    Ok(report)
}

/// `checkout REV -- PATH...`: writes those paths from REV into the worktree and the index.
pub fn checkout_paths(
    repo: &WritableRepo,
    rev: ObjectId,
    scopes: &[Vec<u8>],
    user: &[std::path::PathBuf],
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let stamp = now_ns();
    let tree = Commit::load(&repo.store, &rev)?.tree;
    let files = flatten_scoped(&repo.store, Some(&tree), scopes)?;
    for (scope, orig) in scopes.iter().zip(user) {
        if !files.keys().any(|p| path_within(p, scope)) {
            return Err(Error::PathspecNoMatch(orig.display().to_string()));
        }
    }
    let plan = Plan {
        writes: files.into_iter().collect(),
        update_index: true,
        ..Plan::default()
    };
    execute(repo, plan, stamp, progress)
}

/// `restore`: brings paths back from the index (default) or `source`, into the
/// worktree and/or the index.
pub fn restore(
    repo: &WritableRepo,
    scopes: &[Vec<u8>],
    user: &[std::path::PathBuf],
    source: Option<ObjectId>,
    staged: bool,
    worktree: bool,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let stamp = now_ns();
    let index = repo.index.load()?;
    let in_scope = |p: &[u8]| scopes.iter().any(|s| path_within(p, s));
    // The version to restore from.
    let src: BTreeMap<Vec<u8>, FileState> = match source {
        Some(rev) => flatten_scoped(
            &repo.store,
            Some(&Commit::load(&repo.store, &rev)?.tree),
            scopes,
        )?,
        None if staged => flatten_scoped(&repo.store, repo.head_tree()?.as_ref(), scopes)?,
        None => crate::worktree::delta::index_states(&index)
            .into_iter()
            .filter(|(p, _)| in_scope(p))
            .collect(),
    };
    let tracked: Vec<Vec<u8>> = index
        .entries
        .keys()
        .filter(|p| in_scope(p))
        .cloned()
        .collect();
    for (scope, orig) in scopes.iter().zip(user) {
        if !src.keys().any(|p| path_within(p, scope))
            && !tracked.iter().any(|p| path_within(p, scope))
        {
            return Err(Error::PathspecNoMatch(orig.display().to_string()));
        }
    }
    let mut plan = Plan::default();
    if staged {
        for p in &tracked {
            if !src.contains_key(p) {
                plan.index_only.push(IndexEdit::Remove(p.clone()));
            }
        }
        for (p, st) in &src {
            match index.entries.get(p) {
                Some(e) if e.id == st.id && e.mode == st.mode => {}
                _ => plan.index_only.push(IndexEdit::Set(
                    p.clone(),
                    IndexEntry::unverified(st.mode, st.id, st.size),
                )),
            }
        }
    }
    if worktree {
        // Written files get fresh index entries only when the index already names that content.
        plan.update_index = staged || source.is_none();
        for p in &tracked {
            if !src.contains_key(p) {
                plan.removes.push(p.clone());
            }
        }
        for (p, st) in src {
            let clean = match index.entries.get(&p) {
                Some(e) if e.id == st.id && e.mode == st.mode => worktree_matches(repo, &p, e)?,
                _ => false,
            };
            if !clean {
                plan.writes.push((p, st));
            }
        }
    }
    execute(repo, plan, stamp, progress)
}

/// Why a checkout, switch or reset was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// One file of a checkout could not be written.
    #[error("cannot check out '{path}': {reason}")]
    CannotCheckOut {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Uncommitted edits that the checkout would overwrite.
    #[error(
        "your local changes to these files would be overwritten by {command}:\n{files}\ncommit them (or copy them elsewhere), or use --force to discard them"
    )]
    LocalChanges {
        /// The operation.
        command: String,
        /// The modified files.
        files: crate::paths::PathList,
    },
    /// A fast-forward with no branch to move.
    #[error("HEAD is detached: switch to a branch first")]
    DetachedHead,
}

impl crate::error::ModuleError for CheckoutError {}

crate::error::module_error!(CheckoutError);
/// Writes `files` (absent from the worktree) and records them in the index: a
/// sparse working tree taking in paths it did not hold. `keeps`: the index, as read
/// at that base, already holds each file as given (mode, id and size), so it still
/// hashes to the tree recorded there, which is recorded again with the write.
pub fn write_files(
    repo: &WritableRepo,
    files: Vec<(Vec<u8>, FileState)>,
    keeps: Option<Base>,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let plan = Plan {
        writes: files,
        update_index: true,
        record: keeps.and_then(|b| Some((b, b.tree?))),
        ..Plan::default()
    };
    execute(repo, plan, now_ns(), progress)
}

/// Records `files` in the index without writing them (paths outside a sparse
/// working tree, in a repository whose index was empty).
pub fn record_only(repo: &WritableRepo, files: Vec<(Vec<u8>, FileState)>) -> Result<()> {
    let edits: Vec<IndexEdit> = files
        .into_iter()
        .map(|(p, st)| IndexEdit::Set(p, IndexEntry::unverified(st.mode, st.id, st.size)))
        .collect();
    if !edits.is_empty() {
        repo.index.apply(&edits, now_ns())?;
    }
    Ok(())
}
