//! `dsv push [REMOTE] [BRANCH|TAG] [--tags] [--delete NAME] [--force] [--force-with-lease] [--json]`.

use dsv::hooks::{Event, FireReport};
use dsv::remote::push::ForceMode;
use dsv::remote::refs::RefKind;
use dsv::remote::refupdate::{RefPushReport, local_kind, local_tags};

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `push`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Remote name (default: origin).
    remote: Option<String>,
    /// Branch or tag (default: the current branch); with --delete, the remote
    /// branch or tag to delete.
    branch: Option<String>,
    /// Delete the remote branch (or tag) BRANCH, only if it still holds what you
    /// last fetched (with --force: whatever it holds).
    #[arg(short, long)]
    delete: bool,
    /// Push every local tag (and BRANCH too, if named).
    #[arg(long, conflicts_with = "delete")]
    tags: bool,
    /// Replace the remote branch even if this is not a fast-forward, but only if it
    /// still holds what you last fetched (never overwrites commits you have not seen);
    /// replace a remote tag that points elsewhere; delete without the check.
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
    let forced = args.force || args.force_with_lease;
    if args.delete {
        let Some(name) = args.branch.as_deref() else {
            return Err(dsv::Error::InvalidArgument(
                "push --delete needs the branch or tag to delete: dsv push REMOTE --delete NAME"
                    .into(),
            )
            .into());
        };
        let hooked = dsv::hooks::push_delete(&repo, remote, name, forced)?;
        super::hooks::report(ctx, Event::PrePush, &hooked.pre);
        print_refs(ctx, args.json, &hooked.report)?;
        return super::hooks::after_post(
            ctx,
            Event::PostPush,
            repo.into_inner(),
            hooked.post,
            &format!("{remote}/{name} was deleted"),
        );
    }
    let force = if forced {
        ForceMode::WithLease
    } else {
        ForceMode::No
    };
    // A name that is a tag pushes the tag; `--tags` alone pushes only tags, as git.
    let mut tags = Vec::new();
    let mut branch = args.branch.clone();
    if let Some(name) = &args.branch
        && local_kind(&repo, name)? == Some(RefKind::Tag)
    {
        tags.push(name.clone());
        branch = None;
    }
    if args.tags {
        for t in local_tags(&repo)? {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    let push_branch = branch.is_some() || tags.is_empty() && !args.tags;
    let mut post: dsv::Result<FireReport> = Ok(FireReport::default());
    let mut done = Vec::new();
    let mut moved = false;
    let mut branch_json = None;
    if push_branch {
        // Hooks come with the push: a bad dsv.toml refuses it, pre-push can reject it.
        let hooked = dsv::hooks::push(&repo, remote, branch.as_deref(), force, &ctx.progress())?;
        super::hooks::report(ctx, Event::PrePush, &hooked.pre);
        let r = hooked.report;
        if args.json {
            branch_json = Some(serde_json::to_value(&r)?);
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
        if !r.up_to_date {
            moved = true;
            done.push(format!("{remote}/{}", r.branch));
            post = hooked.post;
        }
    }
    if !tags.is_empty() {
        let hooked = dsv::hooks::push_tags(&repo, remote, &tags, forced, &ctx.progress())?;
        super::hooks::report(ctx, Event::PrePush, &hooked.pre);
        match branch_json.take() {
            // Both: one document.
            Some(b) => print_json(&serde_json::json!({ "branch": b, "tags": hooked.report }))?,
            None => print_refs(ctx, args.json, &hooked.report)?,
        }
        for u in hooked.report.updates.iter().filter(|u| !u.up_to_date) {
            moved = true;
            done.push(format!("tag {}", u.name));
        }
        post = match (post, hooked.post) {
            (Ok(mut a), Ok(b)) => {
                a.queued.extend(b.queued);
                a.skipped.extend(b.skipped);
                Ok(a)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    } else if args.tags && !push_branch && !ctx.quiet && !args.json {
        eprintln!("No tags to push.");
    }
    if let Some(b) = branch_json {
        print_json(&b)?;
    }
    if !moved {
        return Ok(0);
    }
    super::hooks::after_post(
        ctx,
        Event::PostPush,
        repo.into_inner(),
        post,
        &format!("{} pushed", done.join(", ")),
    )
}

/// Prints what a delete or tag push did.
fn print_refs(ctx: &Ctx, json: bool, r: &RefPushReport) -> anyhow::Result<()> {
    if json {
        print_json(r)?;
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    for u in &r.updates {
        let name = match u.kind {
            "tag" => format!("tag {}", u.name),
            _ => format!("{}/{}", r.remote, u.name),
        };
        match (u.old, u.new) {
            _ if u.up_to_date => eprintln!("{name}: up to date"),
            (Some(o), None) => eprintln!("{name}: deleted (was {})", o.short()),
            (old, Some(n)) => eprintln!(
                "{name}: {} -> {}; {}",
                old.map_or("(new tag)".to_string(), |o| o.short()),
                n.short(),
                dsv::quote::count(u.objects, "object")
            ),
            (None, None) => {}
        }
    }
    if r.transfer.bytes_up > 0 {
        eprintln!(
            "{} sent in {}",
            human_bytes(r.transfer.bytes_up),
            dsv::quote::count(r.transfer.puts, "PUT")
        );
    }
    Ok(())
}

/// Examples shown by `dsv push --help`.
const EXAMPLES: &str = "\
Examples:
  dsv push                           the current branch to origin
  dsv push origin relabel
  dsv push --force-with-lease        replace the remote branch if it is where you last saw it
  dsv push origin v1.0               a tag
  dsv push --tags                    every tag
  dsv push origin --delete relabel   delete a remote branch (or tag)";
