//! Why a merge, cherry-pick or revert (or a command refused during one) does not run.

use crate::error::{ErrorKind, ModuleError};
use crate::paths::PathList;

/// A refusal of a merge, cherry-pick or revert.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Staged changes would be mixed into the merge result.
    #[error(
        "cannot {command}: you have staged changes (commit them, or unstage them with `dsv restore --staged`)"
    )]
    StagedChanges {
        /// `merge`, `cherry-pick` or `revert`.
        command: &'static str,
    },
    /// Uncommitted worktree edits would be overwritten.
    #[error(
        "your local changes to these files would be overwritten by {command}:\n{files}\ncommit them first (or restore them)"
    )]
    LocalChanges {
        /// The operation.
        command: String,
        /// The modified files.
        files: PathList,
    },
    /// A cherry-pick or revert whose result equals the current tree.
    #[error("nothing to commit: the {command} changes nothing on this branch")]
    NothingToCommit {
        /// `cherry-pick` or `revert`.
        command: &'static str,
    },
    /// `--ff-only` with a branch that holds a `dsv query` selection.
    #[error(
        "not possible to fast-forward: {theirs} holds a selection ({selection}) made by `dsv query`; merging it back needs a merge commit (merge without --ff-only)"
    )]
    SelectionNeedsMergeCommit {
        /// The branch or revision merged.
        theirs: String,
        /// Short id of the commit the selection was made from.
        selection: String,
    },
    /// `--ff-only` with diverged histories.
    #[error(
        "not possible to fast-forward: {theirs} and HEAD have diverged (merge without --ff-only)"
    )]
    NotFastForward {
        /// The branch or revision merged.
        theirs: String,
    },
    /// Cherry-pick or revert on a branch with no commit.
    #[error("cannot {command}: the current branch has no commits yet")]
    NoCommitsYet {
        /// `cherry-pick` or `revert`.
        command: &'static str,
    },
    /// Cherry-pick or revert of a merge commit.
    #[error(
        "cannot {command} {name}: it is a merge commit (pick or revert one of the commits it merged instead)"
    )]
    MergeCommit {
        /// `cherry-pick` or `revert`.
        command: &'static str,
        /// The revision as given.
        name: String,
    },
    /// Cherry-pick or revert of a `dsv query` selection commit.
    #[error(
        "cannot {command} {name}: it is a selection of {of} (`dsv query`), which holds only the selected frames; merge the selection's branch to bring its later commits back, or pick those commits"
    )]
    SelectionCommit {
        /// `cherry-pick` or `revert`.
        command: &'static str,
        /// The revision as given.
        name: String,
        /// Short id of the commit the selection was made from.
        of: String,
    },
    /// `--continue`, `--abort` or `resolve` with nothing in progress.
    #[error("there is no merge, cherry-pick or revert in progress")]
    NoneInProgress,
    /// `--continue` with conflicts left.
    #[error(
        "{} conflicted file(s) not resolved yet: {} (use `dsv resolve PATH --ours|--theirs`, or edit and `dsv add`)",
        .paths.len(), .paths.join(", ")
    )]
    Unresolved {
        /// The conflicted paths.
        paths: Vec<String>,
    },
    /// `--continue` after HEAD was moved by something else.
    #[error("HEAD moved since the {command} started; abort it with `dsv {command} --abort`")]
    HeadMoved {
        /// `merge`, `cherry-pick` or `revert`.
        command: &'static str,
    },
    /// `resolve` of a path that is not conflicted.
    #[error("'{0}' is not a conflicted path of this merge")]
    NotConflicted(String),
    /// Another command while an interrupted merge has not written its files yet.
    #[error(
        "cannot {what}: a {command} of {theirs} was interrupted before its files were written (run `dsv {command} {theirs}` again to finish it, or `dsv {command} --abort`)"
    )]
    Interrupted {
        /// The command refused.
        what: String,
        /// `merge`, `cherry-pick` or `revert`.
        command: &'static str,
        /// What is being merged.
        theirs: String,
    },
    /// Another command while a merge waits for `--continue` or `--abort`.
    #[error(
        "cannot {what}: a {command} is in progress (finish it with `dsv {command} --continue`, or `dsv {command} --abort`)"
    )]
    InProgress {
        /// The command refused.
        what: String,
        /// `merge`, `cherry-pick` or `revert`.
        command: &'static str,
    },
}

impl ModuleError for MergeError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Refused
    }
}

crate::error::module_error!(MergeError);
