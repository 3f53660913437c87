//! What an operation did that hooks fire on: each operation that records a commit,
//! moves a branch or moves HEAD to a commit lists it in its result, `hooks::fire_events`
//! maps the list to hook events, and the CLI hands every operation's list to it from
//! one function (`cli::hooks::fire`), so which command fires what is decided by what
//! the operation did, never by the command.

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
    /// `dsv merge` (or a `dsv pull` that moved the branch) finished at `commit`
    /// (fast-forward or merge commit) from HEAD at `previous` (`post-merge`).
    Merged {
        /// Where HEAD is now.
        commit: ObjectId,
        /// Where it was.
        previous: Option<ObjectId>,
    },
    /// A branch moved to a new commit (`branch-updated`).
    BranchMoved(BranchMove),
    /// `dsv switch` or `dsv checkout REV` moved HEAD to `commit` from `previous`
    /// (`post-checkout`).
    CheckedOut {
        /// Where HEAD is now.
        commit: ObjectId,
        /// Where it was (`None`: an unborn branch).
        previous: Option<ObjectId>,
    },
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
