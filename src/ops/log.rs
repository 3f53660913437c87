//! History: commits reachable from a start, newest first.

use std::collections::{BinaryHeap, HashSet};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::Commit;
use crate::repo::Repository;

/// Walks history from `starts`, newest first (by commit time), each commit once.
pub fn history(
    repo: &Repository,
    starts: &[ObjectId],
    limit: Option<usize>,
    first_parent: bool,
) -> Result<Vec<(ObjectId, Commit)>> {
    let mut heap: BinaryHeap<(i64, u64, ObjectId)> = BinaryHeap::new();
    let mut seen = HashSet::new();
    let mut seq = u64::MAX;
    for s in starts {
        if seen.insert(*s) {
            let c = Commit::load(&repo.store, s)?;
            heap.push((c.time, seq, *s));
            seq -= 1;
        }
    }
    let mut out = Vec::new();
    while let Some((_, _, id)) = heap.pop() {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let c = Commit::load(&repo.store, &id)?;
        let parents: Vec<ObjectId> = if first_parent {
            c.parents.iter().take(1).copied().collect()
        } else {
            c.parents.clone()
        };
        for p in parents {
            if seen.insert(p) {
                let pc = Commit::load(&repo.store, &p)?;
                heap.push((pc.time, seq, p));
                seq = seq.saturating_sub(1);
            }
        }
        out.push((id, c));
    }
    Ok(out)
}
