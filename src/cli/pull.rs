//! `dsv pull [REMOTE] [BRANCH] [--only PATH...] [--json]`.

use std::path::PathBuf;

use dsv::ops::sync::pull;

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `pull`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Remote name (default: origin).
    remote: Option<String>,
    /// Remote branch (default: the current branch's name).
    branch: Option<String>,
    /// Download and write only these paths, once (the branch does not move; to follow
    /// the branch with only some paths, use `dsv sparse set PATH...` and `dsv pull`).
    #[arg(long, num_args = 1.., value_name = "PATH")]
    only: Vec<PathBuf>,
    /// Machine-readable report.
    #[arg(long)]
    json: bool,
}

/// Runs `pull`, then fires the hooks of what it did.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let remote = args.remote.as_deref().unwrap_or("origin");
    let only = if args.only.is_empty() {
        Vec::new()
    } else {
        dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.only)?
    };
    let r = pull(
        &repo,
        remote,
        args.branch.as_deref(),
        &only,
        &ctx.progress(),
    )?;
    super::fetch::warn_skipped(remote, &r.fetch.skipped);
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
        if r.up_to_date {
            eprintln!("Already up to date.");
        } else if !only.is_empty() {
            eprintln!("Updated {}", dsv::quote::count(r.written, "path"));
        } else {
            eprintln!(
                "Fast-forward {} -> {}: {} written, {} removed",
                r.old.map_or("(none)".to_string(), |o| o.short()),
                r.new.map_or("(none)".to_string(), |o| o.short()),
                dsv::quote::count(r.written, "file"),
                r.removed
            );
        }
        eprintln!(
            "{}, {} received",
            dsv::quote::count(r.fetch.objects, "object"),
            human_bytes(r.fetch.transfer.bytes_down)
        );
    }
    super::hooks::fire(
        ctx,
        repo.into_inner(),
        &r.events,
        "pull",
        "the pull is done",
    )
}

/// Examples shown by `dsv pull --help`.
const EXAMPLES: &str = "\
Examples:
  dsv pull                           fetch and fast-forward the current branch
  dsv pull origin relabel
  dsv pull --only labels/            a partial clone: download only these files";
