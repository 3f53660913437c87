//! `dsv revert REV | --continue | --abort`.

use dsv::lock::Access;
use dsv::ops::merge::{self, Side};
use dsv::ops::revparse::resolve;

use super::Ctx;
use super::merge::{Strategy, report};

/// Arguments of `revert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The commit.
    #[arg(required_unless_present_any = ["continue_", "abort"])]
    rev: Option<String>,
    /// Decide every conflict for one side instead of stopping.
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// Commit once every conflict is resolved.
    #[arg(long = "continue", conflicts_with_all = ["rev", "abort"])]
    continue_: bool,
    /// Give up: restore HEAD, the index and the working tree.
    #[arg(long, conflicts_with = "rev")]
    abort: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `revert` (Undo what REV changed (against its parent) on the current branch).
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Write)?;
    if args.abort {
        let r = merge::abort(&repo)?;
        if !ctx.quiet {
            println!(
                "Aborted; HEAD is back at {}",
                r.commit.map(|c| c.short()).unwrap_or_default()
            );
        }
        return Ok(0);
    }
    let r = if args.continue_ {
        merge::continue_merge(&repo)?
    } else {
        let name = args.rev.unwrap_or_default();
        let rev = resolve(&repo, &name)?;
        merge::revert(&repo, rev, &name, args.strategy.map(Side::from))?
    };
    report(ctx, &r, args.json)
}
