//! `dsv resolve PATH... --ours|--theirs`.

use std::path::PathBuf;

use dsv::ops::merge::{self, Side};

use super::Ctx;
use super::output::print_json;

/// Arguments of `resolve`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Conflicted paths to resolve.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Decide every conflict in the files for our side (clean merges are kept).
    #[arg(long, conflicts_with = "theirs", required_unless_present = "theirs")]
    ours: bool,
    /// Decide every conflict in the files for their side (clean merges are kept).
    #[arg(long)]
    theirs: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `resolve`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let side = if args.theirs {
        Side::Theirs
    } else {
        Side::Ours
    };
    let r = merge::resolve(&repo, &scopes, side)?;
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
        for p in &r.resolved {
            println!("Resolved {}", super::output::quote_path(p));
        }
        println!("{} conflicted file(s) remaining", r.remaining);
    }
    Ok(0)
}

/// Examples shown by `dsv resolve --help`.
const EXAMPLES: &str = "\
Examples:
  dsv resolve --ours labels/frame_001.txt
  dsv resolve --theirs annotations/instances.json";
