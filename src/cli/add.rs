//! `dsv add PATH... | -A`.

use std::path::PathBuf;

use dsv::ops::add;

use super::Ctx;
use super::output::human_bytes;

/// Arguments of `add`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Files or directories to stage.
    paths: Vec<PathBuf>,
    /// Stage every change in the working tree (new, modified and deleted files).
    #[arg(short = 'A', long = "all")]
    all: bool,
}

/// Runs `add`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.paths.is_empty() && !args.all {
        crate::usage!("nothing specified, nothing added (give paths, or -A for everything)");
    }
    let repo = ctx.writable_repo()?;
    let (scopes, user) = if args.all && args.paths.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            add::pathspecs(&repo, &ctx.cwd, &args.paths)?,
            args.paths.clone(),
        )
    };
    let progress = ctx.progress();
    let r = add::add(&repo, &scopes, &user, &progress)?;
    super::fsmonitor::ensure_running(repo.root(), &r.monitor);
    if !ctx.quiet {
        eprintln!(
            "{} added, {} modified, {} removed; {}, {} stored",
            r.added,
            r.modified,
            r.removed,
            dsv::quote::count(r.new_objects, "new object"),
            human_bytes(r.new_bytes)
        );
    }
    let check = dsv::ops::label_check::check_index_paths(&repo, &r.changed)?;
    super::commit::report_label_errors(&check);
    Ok(0)
}

/// Examples shown by `dsv add --help`.
const EXAMPLES: &str = "\
Examples:
  dsv add -A                          stage every change (new, modified, deleted)
  dsv add images/ labels/             stage two directories
  dsv add labels/frame_001.txt";
