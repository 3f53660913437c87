//! `dsv switch BRANCH | - | -c NEW [START] | --detach REV`.

use dsv::ops::branch::create_branch;
use dsv::ops::checkout::{SwitchTarget, switch};
use dsv::ops::events::OpEvent;
use dsv::ops::revparse::resolve;
use dsv::ops::sync::fetch_for_switch;

use super::Ctx;

/// Arguments of `switch`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Branch to switch to (`-`: the previous one), or start point with -c / revision with --detach.
    target: Option<String>,
    /// Create a new branch (at TARGET or HEAD) and switch to it.
    #[arg(short = 'c', long = "create", value_name = "NEW")]
    create: Option<String>,
    /// Detach HEAD at a revision.
    #[arg(long)]
    detach: bool,
    /// Discard local changes to files that differ.
    #[arg(short, long, alias = "discard-changes")]
    force: bool,
}

/// Runs `switch`, then fires the hooks of what it did.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let events = move_head(ctx, &repo, args)?;
    super::hooks::fire(
        ctx,
        repo.into_inner(),
        &events,
        "switch",
        "the switch is done",
    )
}

/// The branch HEAD was on before the last switch (`dsv switch -`, git's `@{-1}`), from
/// HEAD's reflog.
fn previous_branch(repo: &dsv::Repository) -> anyhow::Result<String> {
    let log = repo.refs.reflog("HEAD")?;
    let from = log.iter().rev().find_map(|e| {
        e.message
            .strip_prefix("switch: moving from ")?
            .split_once(" to ")
            .map(|(from, _)| from.to_string())
    });
    let Some(from) = from else {
        anyhow::bail!("no previous branch: HEAD's reflog records no switch");
    };
    if repo
        .refs
        .read(&format!("{}{from}", dsv::refs::HEADS))?
        .is_none()
    {
        anyhow::bail!(
            "the previous HEAD was '{}', which is no branch now (use `dsv switch --detach {}` for a commit)",
            dsv::quote::text(&from),
            dsv::quote::text(&from)
        );
    }
    Ok(from)
}

/// The switch itself; returns what it did (nothing when HEAD names no commit).
fn move_head(ctx: &Ctx, repo: &dsv::WritableRepo, args: Args) -> anyhow::Result<Vec<OpEvent>> {
    let progress = ctx.progress();
    if let Some(new) = &args.create {
        let start = match &args.target {
            Some(t) => Some(resolve(repo, t)?),
            None => repo.refs.head_commit()?,
        };
        return match start {
            Some(id) => {
                fetch_for_switch(repo, &id, args.force, &progress)?;
                let mut events = create_branch(repo, new, id, false)?;
                let r = switch(
                    repo,
                    SwitchTarget::Branch(new.clone()),
                    args.force,
                    &progress,
                )?;
                if !ctx.quiet {
                    eprintln!(
                        "Switched to a new branch '{new}' ({} written, {} removed)",
                        dsv::quote::count(r.written, "file"),
                        r.removed
                    );
                }
                events.extend(r.events);
                Ok(events)
            }
            None => {
                // Unborn branch: just point HEAD at the new name, like `git switch -c` before the first commit.
                dsv::refs::check_ref_name("branch", new)?;
                let (time, _) = repo.now()?;
                repo.refs.set_head(
                    &dsv::refs::Head::Branch(new.clone()),
                    &repo.reflog_identity(),
                    time,
                    "switch: unborn branch",
                )?;
                if !ctx.quiet {
                    eprintln!("Switched to a new branch '{new}'");
                }
                Ok(Vec::new())
            }
        };
    }
    let Some(mut target) = args.target else {
        crate::usage!("missing branch name (use -c NEW to create one)");
    };
    if target == "-" && !args.detach {
        target = previous_branch(repo)?;
    }
    if args.detach {
        let id = resolve(repo, &target)?;
        let r = dsv::ops::sync::switch(repo, SwitchTarget::Detached(id), args.force, &progress)?;
        if !ctx.quiet {
            eprintln!(
                "HEAD is now at {} ({} written, {} removed)",
                id.short(),
                dsv::quote::count(r.written, "file"),
                r.removed
            );
        }
        return Ok(r.events);
    }
    if repo
        .refs
        .read(&format!("{}{target}", dsv::refs::HEADS))?
        .is_none()
    {
        anyhow::bail!(
            "no branch named '{target}' (use --detach to check out a commit or tag, -c to create a branch)"
        );
    }
    // A partial clone downloads the data of the files that change.
    let r = dsv::ops::sync::switch(
        repo,
        SwitchTarget::Branch(target.clone()),
        args.force,
        &progress,
    )?;
    if !ctx.quiet {
        eprintln!(
            "Switched to branch '{target}' ({} written, {} removed)",
            dsv::quote::count(r.written, "file"),
            r.removed
        );
    }
    Ok(r.events)
}

/// Examples shown by `dsv switch --help`.
const EXAMPLES: &str = "\
Examples:
  dsv switch relabel
  dsv switch -c night-fixes         create a branch and switch to it
  dsv switch -                      back to the previous branch
  dsv switch --detach v1";
