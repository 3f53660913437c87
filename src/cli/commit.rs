//! `dsv commit -m MSG`.

use dsv::hooks::Event;
use dsv::lock::Access;
use dsv::ops::commit::CommitOptions;

use super::Ctx;
use super::output::human_bytes;

/// Arguments of `commit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Commit message (several -m are joined as paragraphs).
    #[arg(short, long = "message", required = true)]
    message: Vec<String>,
    /// Allow a commit whose tree equals its parent's.
    #[arg(long)]
    allow_empty: bool,
    /// Stage all changes to tracked and new files first (like `add -A`).
    #[arg(short = 'a', long = "all")]
    all: bool,
}

/// Runs `commit`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Write)?;
    // A bad dsv.toml refuses the commit before `-a` stages anything.
    dsv::hooks::load(&repo)?;
    if args.all {
        dsv::ops::add::add(&repo, &[], &[], &ctx.progress())?;
    }
    // Hooks come with the commit: a bad dsv.toml refuses it, pre-commit can reject it.
    let hooked = dsv::hooks::commit(
        &repo,
        &CommitOptions {
            message: args.message.join("\n\n"),
            allow_empty: args.allow_empty,
        },
    )?;
    super::hooks::report(ctx, Event::PreCommit, &hooked.pre);
    let r = hooked.result;
    if !ctx.quiet {
        let root = if r.root { " (root-commit)" } else { "" };
        let on = r.branch.as_deref().unwrap_or("detached HEAD");
        println!(
            "[{on}{root} {}] {}",
            r.id.short(),
            super::output::safe_line(r.commit.subject())
        );
        println!(
            " {} files, {}",
            r.commit.summary.files,
            human_bytes(r.commit.summary.bytes)
        );
    }
    super::hooks::after_post(
        ctx,
        Event::PostCommit,
        repo,
        hooked.post,
        &format!("commit {} was made", r.id.short()),
    )
}
