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
    /// Show the commit and subject of each branch, and how far it is ahead of or
    /// behind the remote-tracking branch of its name.
    #[arg(short, long)]
    verbose: bool,
    /// Machine-readable JSON listing.
    #[arg(long)]
    json: bool,
    /// List remote-tracking branches (`origin/main`).
    #[arg(short = 'r', long = "remotes")]
    remotes: bool,
    /// List local and remote-tracking branches (`remotes/origin/main`).
    #[arg(short = 'a', long = "all", conflicts_with = "remotes")]
    all: bool,
}

/// One row of a listing: a local branch, or a remote-tracking one (`-r`, `-a`).
struct Row {
    /// As printed: `main`, `origin/main` (with -r) or `remotes/origin/main` (with -a).
    shown: String,
    id: dsv::ObjectId,
    current: bool,
    /// `[ahead 1, behind 2]` against the remote-tracking branch of the same name (-v).
    track: Option<String>,
}

/// git's `branch [-v] [-r | -a]` listing: `* ` before the current branch, with -v
/// names padded to one column, then the short id, `[ahead N, behind M]` and the subject.
fn list(ctx: &Ctx, args: &Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let mut rows = Vec::new();
    if !args.remotes {
        for b in list_branches(&repo)? {
            let track = if args.verbose {
                dsv::remote::upstream_status(&repo, &b.name)?.and_then(|u| {
                    let mut parts = Vec::new();
                    if u.ahead > 0 {
                        parts.push(format!("ahead {}", u.ahead));
                    }
                    if u.behind > 0 {
                        parts.push(format!("behind {}", u.behind));
                    }
                    (!parts.is_empty()).then(|| format!("[{}] ", parts.join(", ")))
                })
            } else {
                None
            };
            rows.push(Row {
                shown: b.name,
                id: b.id,
                current: b.current,
                track,
            });
        }
    }
    if args.remotes || args.all {
        for (name, id) in dsv::remote::list_tracking(&repo)? {
            let shown = if args.all {
                format!("remotes/{name}")
            } else {
                name
            };
            rows.push(Row {
                shown,
                id,
                current: false,
                track: None,
            });
        }
    }
    if args.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({ "name": r.shown, "id": r.id, "current": r.current }))
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    if !args.remotes
        && let Head::Detached(id) = repo.refs.head()?
    {
        let what = format!("(HEAD detached at {})", id.short());
        let width = rows.iter().map(|r| r.shown.len()).max().unwrap_or(0);
        if args.verbose {
            let subject = Commit::load(&repo.store, &id)
                .map(|c| super::output::safe_line(c.subject()).into_owned())
                .unwrap_or_default();
            let pad = " ".repeat(width.saturating_sub(what.len()));
            println!(
                "* {}{pad} {} {subject}",
                paint(ctx.color, "32", &what),
                id.short()
            );
        } else {
            println!("* {}", paint(ctx.color, "32", &what));
        }
    }
    let width = rows.iter().map(|r| r.shown.len()).max().unwrap_or(0);
    for r in rows {
        let mark = if r.current { "* " } else { "  " };
        let color = if r.current {
            Some("32")
        } else if r.shown.starts_with("remotes/") || args.remotes {
            Some("31")
        } else {
            None
        };
        let name = match color {
            Some(c) => paint(ctx.color, c, &r.shown),
            None => r.shown.clone(),
        };
        if args.verbose {
            let subject = Commit::load(&repo.store, &r.id)
                .map(|c| super::output::safe_line(c.subject()).into_owned())
                .unwrap_or_default();
            let pad = " ".repeat(width - r.shown.len());
            println!(
                "{mark}{name}{pad} {} {}{subject}",
                r.id.short(),
                r.track.unwrap_or_default()
            );
        } else {
            println!("{mark}{name}");
        }
    }
    Ok(0)
}

/// Runs `branch`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.remotes || args.all {
        if !args.names.is_empty() || args.delete || args.force_delete || args.move_ {
            crate::usage!("-r and -a list branches; they take no names");
        }
        return list(ctx, &args);
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
        [] => list(ctx, &args),
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
