//! What an operation did that hooks fire on: each operation that records a commit or
//! moves a branch lists it in its result, and `hooks::fire_events` maps the list to
//! hook events, so which command fires what is decided in one place.

use crate::id::ObjectId;

/// A branch moved from one commit to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchMove {
    /// The branch (without `refs/heads/`).
    pub branch: String,
    /// Its commit before (`None`: the branch had no commit yet).
    pub old: Option<ObjectId>,
    /// Its commit now.
    pub new: ObjectId,
}

/// Something an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpEvent {
    /// A new commit was recorded (`post-commit`).
    Committed(ObjectId),
    /// `dsv merge` finished at `commit` (fast-forward or merge commit) from HEAD at
    /// `previous` (`post-merge`).
    Merged {
        /// Where HEAD is now.
        commit: ObjectId,
        /// Where it was.
        previous: Option<ObjectId>,
    },
    /// A branch moved to a new commit (`branch-updated`).
    BranchMoved(BranchMove),
}

/// The move of the branch HEAD is on from `old` to `new`, if HEAD is on a branch and
/// it moved.
pub fn head_move(
    head: &crate::refs::Head,
    old: Option<ObjectId>,
    new: ObjectId,
) -> Option<OpEvent> {
    match head {
        crate::refs::Head::Branch(b) if old != Some(new) => {
            Some(OpEvent::BranchMoved(BranchMove {
                branch: b.clone(),
                old,
                new,
            }))
        }
        _ => None,
    }
}
