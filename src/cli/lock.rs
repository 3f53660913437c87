//! `dsv lock`: record the dataset commit in use in the git worktree's `dsv.lock`.

use dsv::lock::Access;
use dsv::ops::git_integration::lock;

use super::Ctx;
use super::output::print_json;

/// Arguments of `lock`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `lock`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let r = lock(&repo)?;
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
        let what = if r.changed {
            "Locked"
        } else {
            "Already locked:"
        };
        println!(
            "{what} dataset '{}' at {} in {} (commit it with your code)",
            r.dataset.path,
            r.dataset.commit.short(),
            r.file.display()
        );
    }
    Ok(0)
}

/// Examples shown by `dsv lock --help`.
const EXAMPLES: &str = "\
Examples:
  dsv lock                           write HEAD's id to the git repository's dsv.lock
  dsv lock --json";
