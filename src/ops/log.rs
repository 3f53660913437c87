//! History: commits reachable from a start, newest first.

use std::collections::{BinaryHeap, HashSet};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::Commit;
use crate::repo::Repository;

/// The walk both logs share: commits newest first by commit time, each once; among
/// equal times, the one queued first comes first.
struct Walk<'a> {
    repo: &'a Repository,
    heap: BinaryHeap<(i64, u64, ObjectId)>,
    seen: HashSet<ObjectId>,
    seq: u64,
}

impl<'a> Walk<'a> {
    fn new(repo: &'a Repository, starts: &[ObjectId]) -> Result<Walk<'a>> {
        let mut w = Walk {
            repo,
            heap: BinaryHeap::new(),
            seen: HashSet::new(),
            seq: u64::MAX,
        };
        for s in starts {
            w.queue(*s)?;
        }
        Ok(w)
    }

    /// Queues `id` unless it was queued before.
    fn queue(&mut self, id: ObjectId) -> Result<()> {
        if self.seen.insert(id) {
            let c = Commit::load(&self.repo.store, &id)?;
            self.heap.push((c.time, self.seq, id));
            self.seq = self.seq.saturating_sub(1);
        }
        Ok(())
    }

    /// The next commit, newest first.
    fn next(&mut self) -> Result<Option<(ObjectId, Commit)>> {
        match self.heap.pop() {
            Some((_, _, id)) => Ok(Some((id, Commit::load(&self.repo.store, &id)?))),
            None => Ok(None),
        }
    }
}

/// The parents a walk follows: the first only with `first_parent`.
fn parents_of(c: &Commit, first_parent: bool) -> Vec<ObjectId> {
    let n = if first_parent { 1 } else { usize::MAX };
    c.parents.iter().take(n).copied().collect()
}

/// Walks history from `starts`, newest first (by commit time), each commit once.
pub fn history(
    repo: &Repository,
    starts: &[ObjectId],
    limit: Option<usize>,
    first_parent: bool,
) -> Result<Vec<(ObjectId, Commit)>> {
    let mut walk = Walk::new(repo, starts)?;
    let mut out = Vec::new();
    while limit.is_none_or(|l| out.len() < l) {
        let Some((id, c)) = walk.next()? else { break };
        for p in parents_of(&c, first_parent) {
            walk.queue(p)?;
        }
        out.push((id, c));
    }
    Ok(out)
}

/// What the paths `scopes` hold in `tree`: the id of each one's entry (file or
/// directory), so two commits touching none of them compare equal without a diff.
fn scoped_ids(
    repo: &Repository,
    tree: &ObjectId,
    scopes: &[Vec<u8>],
) -> Result<Vec<Option<ObjectId>>> {
    scopes
        .iter()
        .map(|s| Ok(crate::object::diff::lookup(&repo.store, tree, s)?.map(|(_, id, _)| id)))
        .collect()
}

/// git's `log -- PATH...`: the commits of [`history`] that changed what `scopes`
/// hold, with git's default history simplification: a commit whose paths equal
/// one parent's (TREESAME) is left out and only that parent is followed, so a merge
/// that took the paths from one side does not pull in the other side's history.
/// A root commit is shown when it has any of the paths. With `follow` (one path),
/// a commit that renamed the file to that path switches the walk to its old name.
pub fn history_of_paths(
    repo: &Repository,
    starts: &[ObjectId],
    limit: Option<usize>,
    first_parent: bool,
    scopes: &[Vec<u8>],
    follow_renames: bool,
) -> Result<Vec<(ObjectId, Commit)>> {
    let mut scopes = scopes.to_vec();
    let mut walk = Walk::new(repo, starts)?;
    let mut out = Vec::new();
    while limit.is_none_or(|l| out.len() < l) {
        let Some((id, c)) = walk.next()? else { break };
        let mine = scoped_ids(repo, &c.tree, &scopes)?;
        let candidates = parents_of(&c, first_parent);
        let mut follow = candidates.clone();
        let mut changed = true;
        if candidates.is_empty() {
            changed = mine.iter().any(Option::is_some);
        }
        for p in &candidates {
            let pc = Commit::load(&repo.store, p)?;
            if scoped_ids(repo, &pc.tree, &scopes)? == mine {
                follow = vec![*p];
                changed = false;
                break;
            }
        }
        // The file appeared here: if it came from another path, follow that one.
        if follow_renames
            && changed
            && let (Some(p), [path]) = (c.parents.first(), scopes.as_slice())
        {
            let pc = Commit::load(&repo.store, p)?;
            if crate::object::diff::lookup(&repo.store, &pc.tree, path)?.is_none() {
                let changes = crate::object::diff::detect_renames(crate::object::diff::diff_trees(
                    &repo.store,
                    Some(&pc.tree),
                    Some(&c.tree),
                    &[],
                )?);
                if let Some(from) = changes
                    .into_iter()
                    .find(|ch| ch.path == *path && ch.from.is_some())
                    .and_then(|ch| ch.from)
                {
                    scopes = vec![from];
                }
            }
        }
        for p in follow {
            walk.queue(p)?;
        }
        if changed {
            out.push((id, c));
        }
    }
    Ok(out)
}
