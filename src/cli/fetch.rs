//! `dsv fetch [REMOTE] [--prune] [--json]`.

use dsv::remote::fetch::{FetchMode, fetch, partial_remote};

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `fetch`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Remote name (default: origin).
    remote: Option<String>,
    /// Remove remote-tracking branches whose branch is gone from the remote.
    #[arg(short, long)]
    prune: bool,
    /// Machine-readable report.
    #[arg(long)]
    json: bool,
}

/// Runs `fetch`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let remote = args.remote.as_deref().unwrap_or("origin");
    // A partial repository stays partial: fetch brings commits and trees only.
    let mode = if partial_remote(&repo)?.is_some() {
        FetchMode::Metadata
    } else {
        FetchMode::Full
    };
    let r = fetch(&repo, remote, mode, args.prune, &ctx.progress())?;
    warn_skipped(remote, &r.skipped);
    for s in &r.skipped_tags {
        eprintln!(
            "warning: remote '{remote}': tag '{}' not fetched: {}",
            s.branch, s.reason
        );
    }
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
        for u in &r.updated {
            let old = u.old.map_or("(new)".to_string(), |o| o.short());
            let new = u.new.map_or("(deleted)".to_string(), |o| o.short());
            eprintln!("{remote}/{}: {old} -> {new}", u.branch);
        }
        for u in &r.pruned {
            let old = u.old.map_or("(none)".to_string(), |o| o.short());
            eprintln!(
                "{remote}/{}: pruned (was {old}; gone from the remote)",
                u.branch
            );
        }
        for t in &r.tags {
            let new = t.new.map_or("(none)".to_string(), |o| o.short());
            eprintln!("tag {}: (new) -> {new}", t.branch);
        }
        if !r.stale.is_empty() {
            eprintln!(
                "{} remote-tracking branch{} gone from '{remote}' (dsv fetch --prune removes them): {}",
                r.stale.len(),
                if r.stale.len() == 1 { "" } else { "es" },
                r.stale
                    .iter()
                    .map(|b| format!("{remote}/{b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        eprintln!(
            "{}, {} received",
            dsv::quote::count(r.objects, "object"),
            human_bytes(r.transfer.bytes_down)
        );
    }
    // As git: the other refs were fetched, but the command reports failure.
    if !r.skipped.is_empty() {
        eprintln!(
            "error: remote '{remote}': {} branch{} not fetched (see above); every other branch was",
            r.skipped.len(),
            if r.skipped.len() == 1 { "" } else { "es" }
        );
        return Ok(1);
    }
    if !r.skipped_tags.is_empty() {
        eprintln!(
            "error: remote '{remote}': {} tag{} not fetched (see above); every other ref was",
            r.skipped_tags.len(),
            if r.skipped_tags.len() == 1 { "" } else { "s" }
        );
        return Ok(1);
    }
    Ok(0)
}

/// Prints one warning per remote branch a fetch set aside (even with `--quiet`).
pub(super) fn warn_skipped(remote: &str, skipped: &[dsv::remote::refs::Skipped]) {
    for s in skipped {
        eprintln!(
            "warning: remote '{remote}': branch '{}' not fetched: {}",
            s.branch, s.reason
        );
    }
}

/// Examples shown by `dsv fetch --help`.
const EXAMPLES: &str = "\
Examples:
  dsv fetch                          every branch of origin
  dsv fetch backup --json";
