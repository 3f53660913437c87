//! `dsv cherry-pick REV | --continue | --abort`.

use dsv::ops::merge;

use super::Ctx;

/// Arguments of `cherry-pick` (shared with the other pick-like command).
pub type Args = super::merge::PickArgs;

/// Runs `cherry-pick` (Apply what REV changed (against its parent) onto the current branch).
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    super::merge::run_pick(ctx, args, merge::cherry_pick)
}
