//! `dsv restore [--source REV] [--staged] [--worktree] PATH...`.

use std::path::PathBuf;

use dsv::ops::checkout::restore;
use dsv::ops::revparse::resolve;

use super::Ctx;

/// Arguments of `restore`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Paths to restore.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Take content from this revision (default: the index, or HEAD with --staged).
    #[arg(short, long)]
    source: Option<String>,
    /// Restore the index.
    #[arg(short = 'S', long)]
    staged: bool,
    /// Restore the working tree (the default unless --staged).
    #[arg(short = 'W', long)]
    worktree: bool,
}

/// Runs `restore`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let source = args
        .source
        .as_deref()
        .map(|s| resolve(&repo, s))
        .transpose()?;
    let worktree = args.worktree || !args.staged;
    restore(
        &repo,
        &scopes,
        &args.paths,
        source,
        args.staged,
        worktree,
        &ctx.progress(),
    )?;
    Ok(0)
}

/// Examples shown by `dsv restore --help`.
const EXAMPLES: &str = "\
Examples:
  dsv restore labels/frame_001.txt   discard worktree changes
  dsv restore -S labels/             unstage
  dsv restore -s v1 labels/          the version of v1";
