//! `dsv reset [--soft|--mixed|--hard] [REV]`.

use dsv::object::Commit;
use dsv::ops::checkout::{ResetMode, reset};
use dsv::ops::revparse::resolve;

use super::Ctx;

/// Arguments of `reset`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Commit to move to (default HEAD).
    #[arg(default_value = "HEAD")]
    rev: String,
    /// Move the branch only.
    #[arg(long, conflicts_with_all = ["mixed", "hard"])]
    soft: bool,
    /// Move the branch and reset the index (default).
    #[arg(long, conflicts_with = "hard")]
    mixed: bool,
    /// Move the branch and reset index and working tree (discards local changes to tracked files).
    #[arg(long)]
    hard: bool,
}

/// Runs `reset`, then fires the hooks of what it did.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let target = resolve(&repo, &args.rev)?;
    let mode = if args.soft {
        ResetMode::Soft
    } else if args.hard {
        ResetMode::Hard
    } else {
        ResetMode::Mixed
    };
    if mode == ResetMode::Hard {
        // A partial clone downloads the data of every file reset --hard may write
        // (in a sparse working tree, only its paths).
        let scopes = dsv::ops::sparse::list(&repo)?
            .map(|s| s.paths)
            .unwrap_or_default();
        dsv::remote::fetch::fetch_paths(&repo, &target, &scopes, &ctx.progress())?;
    }
    let r = reset(&repo, target, mode, &ctx.progress())?;
    if !ctx.quiet && mode == ResetMode::Hard {
        let c = Commit::load(&repo.store, &target)?;
        eprintln!(
            "HEAD is now at {} {} ({} written, {} removed)",
            target.short(),
            c.subject(),
            dsv::quote::count(r.written, "file"),
            r.removed
        );
    }
    super::hooks::fire(
        ctx,
        repo.into_inner(),
        &r.events,
        "reset",
        "the reset is done",
    )
}

/// Examples shown by `dsv reset --help`.
const EXAMPLES: &str = "\
Examples:
  dsv reset HEAD~1                   move the branch back, keep the files (mixed)
  dsv reset --hard v1                the files too
  dsv reset --soft HEAD~1            keep the index as well";
