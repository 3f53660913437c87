//! `dsv rm [--cached] [-f] PATH...`.

use std::path::PathBuf;

use dsv::ops::add;

use super::Ctx;

/// Arguments of `rm`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Files or directories to remove.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only remove from the index; keep the working-tree files.
    #[arg(long)]
    cached: bool,
    /// Delete files even if they have unstaged changes.
    #[arg(short, long)]
    force: bool,
}

/// Runs `rm`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let scopes = add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let r = add::rm(&repo, &scopes, &args.paths, args.cached, args.force)?;
    if !ctx.quiet {
        for p in &r.removed {
            // As git: `rm 'path'`; a name that needs quoting shows its quotes instead.
            let q = super::output::quote_path(p);
            if q.starts_with('"') {
                println!("rm {q}");
            } else {
                println!("rm '{q}'");
            }
        }
    }
    Ok(0)
}

/// Examples shown by `dsv rm --help`.
const EXAMPLES: &str = "\
Examples:
  dsv rm images/frame_009.jpg labels/frame_009.txt
  dsv rm -f images/broken.jpg        even with unstaged changes";
