//! `dsv clean [-n|-f] [-d] [-x] [PATH...]`.

use std::path::PathBuf;

use dsv::ops::clean::{CleanOptions, clean, plan};

use super::Ctx;
use super::output::quote_path;

/// Arguments of `clean`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Limit to these paths.
    paths: Vec<PathBuf>,
    /// Only list what would be removed.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Really remove (as git's clean.requireForce, clean does nothing without -f or -n).
    #[arg(short, long)]
    force: bool,
    /// Remove untracked directories too.
    #[arg(short = 'd')]
    dirs: bool,
    /// Remove ignored files too (.dsvignore does not protect them).
    #[arg(short = 'x')]
    ignored: bool,
}

/// Runs `clean`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if !args.dry_run && !args.force {
        crate::usage!(
            "clean removes untracked files for good: use -n to see what it would remove, -f to remove them"
        );
    }
    let opts = CleanOptions {
        dirs: args.dirs,
        ignored: args.ignored,
    };
    let show = |e: &dsv::ops::clean::CleanEntry| {
        let slash = if e.dir { "/" } else { "" };
        format!("{}{slash}", quote_path(&e.path))
    };
    if args.dry_run {
        let repo = ctx.repo(dsv::lock::Access::Read)?;
        let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
        for e in plan(&repo, &scopes, opts, &ctx.progress())? {
            println!("Would remove {}", show(&e));
        }
        return Ok(0);
    }
    let repo = ctx.writable_repo()?;
    let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let entries = plan(&repo, &scopes, opts, &ctx.progress())?;
    if !ctx.quiet {
        for e in &entries {
            println!("Removing {}", show(e));
        }
    }
    clean(&repo, &entries)?;
    Ok(0)
}

/// Examples shown by `dsv clean --help`.
const EXAMPLES: &str = "\
Examples:
  dsv clean -n                             what would be removed
  dsv clean -f                             remove untracked files
  dsv clean -fdx                           also untracked directories and ignored files";
