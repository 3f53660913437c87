//! `dsv merge BRANCH [--no-ff|--ff-only] [--strategy ours|theirs] [-m MSG] | --continue | --abort`.

use dsv::ops::merge::{self, FileConflict, MergeOptions, MergeReport, Outcome, Side};
use dsv::ops::revparse::resolve;

use super::Ctx;
use super::output::{paint, print_json};

/// Which side `--strategy` favours.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Strategy {
    /// Keep our version of every conflicting file, frame or object.
    Ours,
    /// Take their version of every conflicting file, frame or object.
    Theirs,
}

impl From<Strategy> for Side {
    fn from(s: Strategy) -> Side {
        match s {
            Strategy::Ours => Side::Ours,
            Strategy::Theirs => Side::Theirs,
        }
    }
}

/// Arguments of `merge`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Branch or revision to merge into the current branch.
    #[arg(required_unless_present_any = ["continue_", "abort"])]
    target: Option<String>,
    /// Make a merge commit even when a fast-forward is possible.
    #[arg(long, conflicts_with = "ff_only")]
    no_ff: bool,
    /// Refuse unless the merge is a fast-forward.
    #[arg(long)]
    ff_only: bool,
    /// Decide every conflict for one side instead of stopping.
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// Message of the merge commit.
    #[arg(short, long = "message")]
    message: Option<String>,
    /// Commit the merge once every conflict is resolved.
    #[arg(long = "continue", conflicts_with_all = ["target", "abort"])]
    continue_: bool,
    /// Give up the merge: restore HEAD, the index and the working tree.
    #[arg(long, conflicts_with = "target")]
    abort: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the conflicts of a merge: file, frame, object and both versions.
pub fn print_conflicts(color: bool, conflicts: &[FileConflict]) {
    for c in conflicts {
        let what = match c.kind {
            merge::ConflictKind::Content => "both modified",
            merge::ConflictKind::AddAdd => "both added",
            merge::ConflictKind::ModifyDelete => {
                if c.ours.is_none() {
                    "deleted by us"
                } else {
                    "deleted by them"
                }
            }
            merge::ConflictKind::Labels => "labels conflict",
            merge::ConflictKind::Metadata => "metadata conflict",
        };
        let done = if c.resolved { " (resolved)" } else { "" };
        println!(
            "\t{}",
            paint(
                color,
                "31",
                &format!("{what}: {}{done}", super::output::quote_path(&c.path))
            )
        );
        for l in &c.labels {
            let obj = l.object.as_deref().unwrap_or("(frame)");
            println!(
                "\t    frame {}: {}: {}",
                super::output::quote_path(&l.frame),
                super::output::safe_line(obj),
                super::output::safe_line(&l.reason)
            );
            let show = |o: &Option<dsv::labels::Object>| match o {
                Some(o) => serde_json::to_string(o).unwrap_or_default(),
                None => "(none)".into(),
            };
            if l.object.is_some() {
                println!("\t      ours:   {}", show(&l.ours));
                println!("\t      theirs: {}", show(&l.theirs));
            }
        }
        for m in &c.meta {
            let field = m.field.as_deref().unwrap_or("(row)");
            println!(
                "\t    row {}: {}: {}",
                super::output::quote_path(&m.frame),
                super::output::safe_line(field),
                super::output::safe_line(&m.reason)
            );
            let show = |v: &Option<serde_json::Value>| match v {
                Some(v) => v.to_string(),
                None => "(none)".into(),
            };
            println!("\t      ours:   {}", show(&m.ours));
            println!("\t      theirs: {}", show(&m.theirs));
        }
    }
}

/// Prints what a merge, cherry-pick or revert did; returns the exit code.
pub fn report(ctx: &Ctx, r: &MergeReport, json: bool) -> anyhow::Result<i32> {
    let code = if r.outcome == Outcome::Conflicts {
        1
    } else {
        0
    };
    if json {
        print_json(r)?;
        return Ok(code);
    }
    if let Some(sel) = r.selection
        && !ctx.quiet
    {
        println!(
            "Merging a selection back (base {}): files it left out keep this branch's version",
            sel.short()
        );
    }
    for p in &r.label_merged {
        if !r.conflicts.iter().any(|c| &c.path == p) && !ctx.quiet {
            println!(
                "Merged labels of {} object by object",
                super::output::quote_path(p)
            );
        }
    }
    if let Some(p) = &r.meta_merged
        && !r.conflicts.iter().any(|c| &c.path == p)
        && !ctx.quiet
    {
        println!(
            "Merged metadata of {} row by row",
            super::output::quote_path(p)
        );
    }
    match r.outcome {
        Outcome::UpToDate => println!("Already up to date."),
        Outcome::FastForward => {
            println!(
                "Fast-forward to {} ({} written, {} removed)",
                r.theirs.short(),
                r.written,
                r.removed
            );
        }
        Outcome::Committed => {
            if let Some(id) = r.commit {
                println!(
                    "Committed {} ({} file(s) written, {} removed)",
                    id.short(),
                    r.written,
                    r.removed
                );
            }
        }
        Outcome::Conflicts => {
            let cmd = r.kind.command();
            println!("Conflicts in {} file(s):", r.conflicts.len());
            print_conflicts(ctx.color, &r.conflicts);
            println!(
                "Resolve with `dsv resolve PATH --ours|--theirs` (or edit the file and `dsv add` it), then `dsv {cmd} --continue`; `dsv {cmd} --abort` gives up."
            );
        }
    }
    Ok(code)
}

/// Runs `merge`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let r = if args.abort {
        merge::abort(&repo)?
    } else if args.continue_ {
        merge::continue_merge(&repo)?
    } else {
        let name = args.target.unwrap_or_default();
        let theirs = resolve(&repo, &name)?;
        let opts = MergeOptions {
            no_ff: args.no_ff,
            ff_only: args.ff_only,
            strategy: args.strategy.map(Side::from),
            message: args.message,
        };
        merge::merge(&repo, theirs, &name, &opts)?
    };
    if args.abort {
        if args.json {
            print_json(&r)?;
        } else if !ctx.quiet {
            println!(
                "Aborted; HEAD is back at {}",
                r.commit.map(|c| c.short()).unwrap_or_default()
            );
        }
        return fire(ctx, repo.into_inner(), &r);
    }
    let code = report(ctx, &r, args.json)?;
    Ok(code.max(fire(ctx, repo.into_inner(), &r)?))
}

/// Fires the hooks of what a merge, cherry-pick or revert (or its `--continue` or
/// `--abort`) did: its report's events, empty when it stopped on conflicts.
fn fire(ctx: &Ctx, repo: dsv::Repository, r: &MergeReport) -> anyhow::Result<i32> {
    let command = r.kind.command();
    super::hooks::fire(
        ctx,
        repo,
        &r.events,
        command,
        &format!("the {command} is done"),
    )
}

/// Arguments of `cherry-pick` and `revert`.
#[derive(Debug, clap::Args)]
pub struct PickArgs {
    /// The commit.
    #[arg(required_unless_present_any = ["continue_", "abort"])]
    rev: Option<String>,
    /// Decide every conflict for one side instead of stopping.
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// Commit once every conflict is resolved.
    #[arg(long = "continue", conflicts_with_all = ["rev", "abort"])]
    continue_: bool,
    /// Give up: restore HEAD, the index and the working tree.
    #[arg(long, conflicts_with = "rev")]
    abort: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// The library operation behind `cherry-pick` or `revert`.
pub type PickOp =
    fn(&dsv::WritableRepo, dsv::ObjectId, &str, Option<Side>) -> dsv::Result<MergeReport>;

/// Runs `cherry-pick` or `revert`: `op` on REV, or `--continue` / `--abort`.
pub fn run_pick(ctx: &Ctx, args: PickArgs, op: PickOp) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    if args.abort {
        let r = merge::abort(&repo)?;
        if !ctx.quiet {
            println!(
                "Aborted; HEAD is back at {}",
                r.commit.map(|c| c.short()).unwrap_or_default()
            );
        }
        return fire(ctx, repo.into_inner(), &r);
    }
    let r = if args.continue_ {
        merge::continue_merge(&repo)?
    } else {
        let name = args.rev.unwrap_or_default();
        let rev = resolve(&repo, &name)?;
        op(&repo, rev, &name, args.strategy.map(Side::from))?
    };
    let code = report(ctx, &r, args.json)?;
    Ok(code.max(fire(ctx, repo.into_inner(), &r)?))
}

/// Examples shown by `dsv merge --help`.
const EXAMPLES: &str = "\
Examples:
  dsv merge relabel                  fast-forward, or a label-level three-way merge
  dsv merge --no-ff relabel -m 'Merge the night relabel'
  dsv merge --continue               after `dsv resolve`
  dsv merge --abort";
