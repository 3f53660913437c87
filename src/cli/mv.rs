//! `dsv mv [-f] [-v] SRC... DST`.

use std::path::PathBuf;

use super::Ctx;
use super::output::quote_path;

/// Arguments of `mv`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The files or directories to move, then where to: a new name, or an existing
    /// directory to move them into.
    #[arg(required = true, num_args = 2..)]
    paths: Vec<PathBuf>,
    /// Replace a file already at the destination.
    #[arg(short, long)]
    force: bool,
    /// Print each move made.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `mv`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let mut sources = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let dest = sources.pop().unwrap_or_default();
    let moved = dsv::ops::mv::mv(&repo, &sources, &dest, args.force)?;
    if args.verbose && !ctx.quiet {
        for m in moved {
            println!("Renaming {} to {}", quote_path(&m.from), quote_path(&m.to));
        }
    }
    Ok(0)
}

/// Examples shown by `dsv mv --help`.
const EXAMPLES: &str = "\
Examples:
  dsv mv images/a.jpg images/b.jpg         rename a frame
  dsv mv labels/old.txt labels/new.txt     rename its label file too
  dsv mv night/*.jpg archive/              move several into a directory";
