//! `dsv checkout REV`, `dsv checkout -b NEW [START]`, `dsv checkout [REV] -- PATH...`.

use std::path::PathBuf;

use dsv::ops::checkout::{SwitchTarget, checkout_paths, restore, switch};
use dsv::ops::events::OpEvent;
use dsv::ops::revparse::resolve;
use dsv::remote::fetch::fetch_paths;

use super::Ctx;

/// Arguments of `checkout`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Branch, tag or commit.
    rev: Option<String>,
    /// Paths to restore from REV (or from the index without REV).
    #[arg(last = true)]
    paths: Vec<PathBuf>,
    /// Create a branch and switch to it.
    #[arg(short = 'b', value_name = "NEW")]
    new_branch: Option<String>,
    /// Discard local changes.
    #[arg(short, long)]
    force: bool,
    /// Check out the dataset commit named by the git repository's dsv.lock (detached).
    #[arg(long, conflicts_with_all = ["rev", "paths", "new_branch"])]
    locked: bool,
}

/// Runs `checkout`, then fires the hooks of what it did.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let events = move_head(ctx, &repo, args)?;
    super::hooks::fire(
        ctx,
        repo.into_inner(),
        &events,
        "checkout",
        "the checkout is done",
    )
}

/// The checkout itself; returns what it did (`-- PATH...` moves no HEAD: nothing).
fn move_head(ctx: &Ctx, repo: &dsv::WritableRepo, args: Args) -> anyhow::Result<Vec<OpEvent>> {
    let progress = ctx.progress();
    if !args.paths.is_empty() {
        let scopes = dsv::ops::add::pathspecs(repo, &ctx.cwd, &args.paths)?;
        let r = match &args.rev {
            Some(rev) => {
                let id = resolve(repo, rev)?;
                // A partial clone downloads just the data these paths need.
                fetch_paths(repo, &id, &scopes, &progress)?;
                checkout_paths(repo, id, &scopes, &args.paths, &progress)?
            }
            None => restore(repo, &scopes, &args.paths, None, false, true, &progress)?,
        };
        if !ctx.quiet {
            eprintln!(
                "Updated {}",
                dsv::quote::count(r.written + r.removed, "path")
            );
        }
        return Ok(r.events);
    }
    if let Some(new) = &args.new_branch {
        let start = resolve(repo, args.rev.as_deref().unwrap_or("HEAD"))?;
        let mut events = dsv::ops::branch::create_branch(repo, new, start, false)?;
        let r = switch(
            repo,
            SwitchTarget::Branch(new.clone()),
            args.force,
            &progress,
        )?;
        if !ctx.quiet {
            eprintln!("Switched to a new branch '{new}'");
        }
        events.extend(r.events);
        return Ok(events);
    }
    if args.locked {
        let id = dsv::ops::git_integration::locked_commit(repo)?;
        let r = switch(repo, SwitchTarget::Detached(id), args.force, &progress)?;
        if !ctx.quiet {
            eprintln!(
                "HEAD is now at {} (the version dsv.lock names; detached)",
                id.short()
            );
        }
        return Ok(r.events);
    }
    let Some(rev) = args.rev else {
        crate::usage!("nothing to check out: give a revision, or `-- PATH...`");
    };
    let target = if repo
        .refs
        .read(&format!("{}{rev}", dsv::refs::HEADS))?
        .is_some()
    {
        SwitchTarget::Branch(rev.clone())
    } else {
        SwitchTarget::Detached(resolve(repo, &rev)?)
    };
    let detached = matches!(target, SwitchTarget::Detached(_));
    // A partial clone downloads the data of the files that change.
    let r = dsv::ops::sync::switch(repo, target, args.force, &progress)?;
    if !ctx.quiet {
        if detached {
            eprintln!(
                "HEAD is now at {} (detached; create a branch with `dsv switch -c NAME`)",
                r.commit.map(|c| c.short()).unwrap_or_default()
            );
        } else {
            eprintln!("Switched to branch '{rev}'");
        }
    }
    Ok(r.events)
}

/// Examples shown by `dsv checkout --help`.
const EXAMPLES: &str = "\
Examples:
  dsv checkout v1                    detach HEAD at a tag
  dsv checkout -b fix HEAD~2         a new branch at HEAD~2, switched to
  dsv checkout v1 -- labels/         restore a directory as it was in v1";
