//! `dsv cherry-pick REV | --continue | --abort`.

use dsv::ops::merge;

use super::Ctx;

/// Arguments of `cherry-pick` (shared with the other pick-like command).
pub type Args = super::merge::PickArgs;

/// Runs `cherry-pick` (Apply what REV changed (against its parent) onto the current branch).
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    super::merge::run_pick(ctx, args, merge::cherry_pick)
}

/// Examples shown by `dsv cherry-pick --help`.
pub const EXAMPLES: &str = "\
Examples:
  dsv cherry-pick relabel~1          apply one commit onto the current branch
  dsv cherry-pick --continue         after resolving conflicts
  dsv cherry-pick --abort";
