//! `dsv revert REV | --continue | --abort`.

use dsv::ops::merge;

use super::Ctx;

/// Arguments of `revert` (shared with the other pick-like command).
pub type Args = super::merge::PickArgs;

/// Runs `revert` (Undo what REV changed (against its parent) on the current branch).
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    super::merge::run_pick(ctx, args, merge::revert)
}

/// Examples shown by `dsv revert --help`.
pub const EXAMPLES: &str = "\
Examples:
  dsv revert HEAD                    a new commit undoing the last one
  dsv revert HEAD~2 --json
  dsv revert --abort";
