//! `dsv branch [NAME [START]] | -d NAME | -m [OLD] NEW`.

use dsv::lock::Access;
use dsv::object::Commit;
use dsv::ops::branch::{create_branch, delete_branch, list_branches, rename_branch};
use dsv::ops::revparse::resolve;
use dsv::refs::Head;

use super::Ctx;
use super::output::{paint, print_json};

/// Arguments of `branch`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Branch to create (or, with -m, the names).
    names: Vec<String>,
    /// Delete a fully merged branch.
    #[arg(short = 'd', long = "delete", conflicts_with = "move_")]
    delete: bool,
    /// Delete a branch even if not merged.
    #[arg(short = 'D', conflicts_with = "move_")]
    force_delete: bool,
    /// Rename a branch: `-m NEW` (current) or `-m OLD NEW`.
    #[arg(short = 'm', long = "move", id = "move_")]
    move_: bool,
    /// Allow overwriting an existing branch.
    #[arg(short, long)]
    force: bool,
    /// Show the commit and subject of each branch.
    #[arg(short, long)]
    verbose: bool,
    /// Machine-readable JSON listing.
    #[arg(long)]
    json: bool,
    /// List remote-tracking branches (`origin/main`).
    #[arg(short = 'r', long = "remotes")]
    remotes: bool,
}

/// Runs `branch`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.remotes {
        let repo = ctx.repo(Access::Read)?;
        let list = dsv::remote::list_tracking(&repo)?;
        if args.json {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|(n, id)| serde_json::json!({ "name": n, "id": id }))
                .collect();
            print_json(&rows)?;
            return Ok(0);
        }
        for (name, id) in list {
            if args.verbose {
                let subject = Commit::load(&repo.store, &id)
                    .map(|c| super::output::safe_line(c.subject()).into_owned())
                    .unwrap_or_default();
                println!("  {name} {} {subject}", id.short());
            } else {
                println!("  {name}");
            }
        }
        return Ok(0);
    }
    if args.delete || args.force_delete {
        let repo = ctx.writable_repo()?;
        if args.names.is_empty() {
            crate::usage!("branch name required");
        }
        for n in &args.names {
            let id = delete_branch(&repo, n, args.force_delete)?;
            println!("Deleted branch {n} (was {}).", id.short());
        }
        return Ok(0);
    }
    if args.move_ {
        let repo = ctx.writable_repo()?;
        let (old, new) = match args.names.as_slice() {
            [new] => match repo.refs.head()? {
                Head::Branch(b) => (b, new.clone()),
                Head::Detached(_) => anyhow::bail!("HEAD is detached: name the branch to rename"),
            },
            [old, new] => (old.clone(), new.clone()),
            _ => crate::usage!("usage: dsv branch -m [OLD] NEW"),
        };
        rename_branch(&repo, &old, &new, args.force)?;
        return Ok(0);
    }
    match args.names.as_slice() {
        [] => {
            let repo = ctx.repo(Access::Read)?;
            let branches = list_branches(&repo)?;
            if args.json {
                print_json(&branches)?;
                return Ok(0);
            }
            if let Head::Detached(id) = repo.refs.head()? {
                println!(
                    "* {}",
                    paint(
                        ctx.color,
                        "32",
                        &format!("(HEAD detached at {})", id.short())
                    )
                );
            }
            for b in branches {
                let mark = if b.current { "* " } else { "  " };
                let name = if b.current {
                    paint(ctx.color, "32", &b.name)
                } else {
                    b.name.clone()
                };
                if args.verbose {
                    let subject = Commit::load(&repo.store, &b.id)
                        .map(|c| super::output::safe_line(c.subject()).into_owned())
                        .unwrap_or_default();
                    println!("{mark}{name} {} {subject}", b.id.short());
                } else {
                    println!("{mark}{name}");
                }
            }
            Ok(0)
        }
        [name, rest @ ..] if rest.len() <= 1 => {
            let repo = ctx.writable_repo()?;
            let start = resolve(&repo, rest.first().map(String::as_str).unwrap_or("HEAD"))?;
            let events = create_branch(&repo, name, start, args.force)?;
            super::hooks::fire(
                ctx,
                repo.into_inner(),
                &events,
                "branch",
                "the branch moved",
            )
        }
        _ => crate::usage!("usage: dsv branch [NAME [START]]"),
    }
}

/// Examples shown by `dsv branch --help`.
const EXAMPLES: &str = "\
Examples:
  dsv branch                         list branches
  dsv branch relabel-night           create a branch at HEAD
  dsv branch -d relabel-night        delete it (refused if unmerged; -D forces)
  dsv branch -m old-name new-name
  dsv branch -r -v                   remote-tracking branches, with their commits";
