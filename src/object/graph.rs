//! The ancestry of commits: every ancestor, the merge base of two commits, and
//! the selection a branch was cut from. Pure walks over parents, so they are
//! tested on hand-built histories.

use std::collections::{HashSet, VecDeque};

use crate::error::Result;
use crate::id::ObjectId;
use crate::store::ObjectStore;

use super::Commit;

/// Where the walks read commits from: the object store, or a map in tests.
pub trait Commits {
    /// The commit `id`.
    fn commit(&self, id: &ObjectId) -> Result<Commit>;
}

impl Commits for ObjectStore {
    fn commit(&self, id: &ObjectId) -> Result<Commit> {
        Commit::load(self, id)
    }
}

/// The best common ancestor of two commits: a commit reachable from both that no
/// other such commit descends from (the newest of them when there are several).
pub fn merge_base(commits: &impl Commits, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>> {
    let from_a = ancestors(commits, [a])?;
    let from_b = ancestors(commits, [b])?;
    let common: Vec<ObjectId> = from_b.intersection(&from_a).copied().collect();
    if common.is_empty() {
        return Ok(None);
    }
    // Best common ancestors: those no other common ancestor descends from. Commit
    // times only break a tie between several (a criss-cross history); they never
    // decide on their own, so a skewed clock cannot pick an older base.
    let mut parents = Vec::new();
    for id in &common {
        parents.extend(commits.commit(id)?.parents);
    }
    let shadowed = ancestors(commits, parents)?;
    let mut best: Vec<(i64, ObjectId)> = Vec::new();
    for id in common.into_iter().filter(|c| !shadowed.contains(c)) {
        best.push((commits.commit(&id)?.time, id));
    }
    best.sort();
    Ok(best.last().map(|(_, id)| *id))
}

/// The selection commit to merge `theirs` back against, if any: walking back from
/// `theirs` along first parents and stopping at the first commit reachable from
/// `ours`, the first commit met that records a selection (`dsv query EXPR
/// --branch`), so the nearest to `theirs` when there are several.
///
/// A selection's tree holds only the frames it selected, so against the ordinary
/// base (the queried commit) every frame left out would look deleted on their
/// side. Against the selection itself, a path it does not hold is absent on base
/// and theirs and keeps our version; what was changed on the branch after the
/// selection (edits, additions, deletions) is what gets merged.
///
/// Only first parents are followed because they say what a branch is: a branch
/// that merged a selection branch in as a second parent holds the whole dataset
/// (the selection was folded into it) and is merged the ordinary way, while a
/// selection branch that merged its source in is still a subset (against their
/// common base, the frames it left out are deleted on its side, so the merge
/// does not bring them back).
/// A selection already merged back is reachable from `ours` and no longer
/// counts: a later merge of the same branch uses the ordinary base, the branch
/// tip merged last, whose tree is the same subset.
pub fn selection_base(
    commits: &impl Commits,
    ours: ObjectId,
    theirs: ObjectId,
) -> Result<Option<ObjectId>> {
    let known = ancestors(commits, [ours])?;
    let mut next = Some(theirs);
    let mut seen = HashSet::new();
    while let Some(id) = next {
        if known.contains(&id) || !seen.insert(id) {
            break;
        }
        let c = commits.commit(&id)?;
        if c.selection.is_some() {
            return Ok(Some(id));
        }
        next = c.parents.first().copied();
    }
    Ok(None)
}

/// Every commit reachable from `starts`, the starts included.
pub fn ancestors(
    commits: &impl Commits,
    starts: impl IntoIterator<Item = ObjectId>,
) -> Result<HashSet<ObjectId>> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<ObjectId> = starts.into_iter().collect();
    while let Some(id) = queue.pop_front() {
        if seen.insert(id) {
            queue.extend(commits.commit(&id)?.parents);
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::Error;
    use crate::object::commit::COMMIT_FORMAT;
    use crate::object::{Person, SelectionOf, Summary};

    /// A history built by hand: commit `n` has id `[n; 32]`.
    #[derive(Default)]
    struct History(HashMap<ObjectId, Commit>);

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 32])
    }

    impl History {
        fn add(&mut self, n: u8, parents: &[u8], time: i64) -> &mut Commit {
            let c = Commit {
                format: COMMIT_FORMAT,
                tree: ObjectId([0; 32]),
                parents: parents.iter().map(|p| id(*p)).collect(),
                author: Person {
                    name: "t".into(),
                    email: "t@t".into(),
                },
                time,
                tz_offset_min: 0,
                message: format!("{n}\n"),
                summary: Summary { files: 0, bytes: 0 },
                code: None,
                selection: None,
            };
            self.0.entry(id(n)).or_insert(c)
        }
    }

    impl Commits for History {
        fn commit(&self, i: &ObjectId) -> Result<Commit> {
            self.0
                .get(i)
                .cloned()
                .ok_or_else(|| Error::Corrupt(format!("missing commit {i}")))
        }
    }

    #[test]
    fn merge_base_of_two_branches_is_their_fork_point() {
        // 1 - 2 - 3 (ours)
        //      \- 4 - 5 (theirs)
        let mut h = History::default();
        h.add(1, &[], 1);
        h.add(2, &[1], 2);
        h.add(3, &[2], 3);
        h.add(4, &[2], 4);
        h.add(5, &[4], 5);
        assert_eq!(merge_base(&h, id(3), id(5)).unwrap(), Some(id(2)));
        assert_eq!(merge_base(&h, id(5), id(3)).unwrap(), Some(id(2)));
        // An ancestor is its own base with a descendant (fast-forward).
        assert_eq!(merge_base(&h, id(2), id(5)).unwrap(), Some(id(2)));
    }

    #[test]
    fn merge_base_of_unrelated_histories_is_none() {
        let mut h = History::default();
        h.add(1, &[], 1);
        h.add(2, &[], 2);
        assert_eq!(merge_base(&h, id(1), id(2)).unwrap(), None);
    }

    #[test]
    fn merge_base_ignores_a_skewed_clock() {
        // 1 - 2 - 3 (ours) and 2 - 4 (theirs); 1 has a clock far in the future.
        // 2 is the base: 1 is an ancestor of 2, so it is never the best one.
        let mut h = History::default();
        h.add(1, &[], 1_000_000);
        h.add(2, &[1], 2);
        h.add(3, &[2], 3);
        h.add(4, &[2], 4);
        assert_eq!(merge_base(&h, id(3), id(4)).unwrap(), Some(id(2)));
    }

    #[test]
    fn criss_cross_merge_base_is_the_newest_best_ancestor() {
        // 1 -> 2, 1 -> 3; 4 = merge(2, 3), 5 = merge(3, 2). Best common ancestors
        // of 4 and 5 are 2 and 3; the newer (3) is taken.
        let mut h = History::default();
        h.add(1, &[], 1);
        h.add(2, &[1], 2);
        h.add(3, &[1], 3);
        h.add(4, &[2, 3], 4);
        h.add(5, &[3, 2], 5);
        assert_eq!(merge_base(&h, id(4), id(5)).unwrap(), Some(id(3)));
    }

    #[test]
    fn selection_base_is_the_nearest_selection_on_their_first_parents() {
        // 1 (ours' history) ; 2 = selection of 1 ; 3 edits on the selection branch.
        let mut h = History::default();
        h.add(1, &[], 1);
        h.add(2, &[1], 2).selection = Some(SelectionOf {
            of: id(1),
            query: "true".into(),
        });
        h.add(3, &[2], 3);
        h.add(6, &[1], 6);
        assert_eq!(selection_base(&h, id(6), id(3)).unwrap(), Some(id(2)));
        // Once the selection is reachable from ours (merged back), it no longer counts.
        h.add(7, &[6, 3], 7);
        assert_eq!(selection_base(&h, id(7), id(3)).unwrap(), None);
    }

    #[test]
    fn ancestors_include_the_starts_and_every_parent() {
        let mut h = History::default();
        h.add(1, &[], 1);
        h.add(2, &[1], 2);
        h.add(3, &[1], 3);
        h.add(4, &[2, 3], 4);
        let a = ancestors(&h, [id(4)]).unwrap();
        assert_eq!(a.len(), 4);
        assert!(
            ancestors(&h, [id(9)]).is_err(),
            "a missing commit is an error"
        );
    }
}
