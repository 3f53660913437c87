//! `dsv push [REMOTE] [BRANCH] [--force] [--force-with-lease] [--json]`.

use dsv::hooks::Event;
use dsv::remote::push::ForceMode;

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `push`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Remote name (default: origin).
    remote: Option<String>,
    /// Branch (default: the current branch).
    branch: Option<String>,
    /// Replace the remote branch even if this is not a fast-forward, but only if it
    /// still holds what you last fetched (never overwrites commits you have not seen).
    #[arg(short, long)]
    force: bool,
    /// Same as --force: replace only if the remote still matches the remote-tracking branch.
    #[arg(long)]
    force_with_lease: bool,
    /// Machine-readable report (objects, packs, bytes sent).
    #[arg(long)]
    json: bool,
}

/// Runs `push`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let remote = args.remote.as_deref().unwrap_or("origin");
    let force = if args.force || args.force_with_lease {
        ForceMode::WithLease
    } else {
        ForceMode::No
    };
    // Hooks come with the push: a bad dsv.toml refuses it, pre-push can reject it.
    let hooked = dsv::hooks::push(
        &repo,
        remote,
        args.branch.as_deref(),
        force,
        &ctx.progress(),
    )?;
    super::hooks::report(ctx, Event::PrePush, &hooked.pre);
    let r = hooked.report;
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
        if r.up_to_date {
            eprintln!("Everything up-to-date ({remote}/{})", r.branch);
        } else {
            let old = r.old.map_or("(new branch)".to_string(), |o| o.short());
            eprintln!(
                "{remote}/{}: {old} -> {}; {}, {} sent in {}",
                r.branch,
                r.new.short(),
                dsv::quote::count(r.objects, "object"),
                human_bytes(r.transfer.bytes_up),
                dsv::quote::count(r.transfer.puts, "PUT")
            );
        }
    }
    if r.up_to_date {
        return Ok(0);
    }
    super::hooks::after_post(
        ctx,
        Event::PostPush,
        repo.into_inner(),
        hooked.post,
        &format!("{remote}/{} was pushed", r.branch),
    )
}

/// Examples shown by `dsv push --help`.
const EXAMPLES: &str = "\
Examples:
  dsv push                           the current branch to origin
  dsv push origin relabel
  dsv push --force-with-lease        replace the remote branch if it is where you last saw it";
