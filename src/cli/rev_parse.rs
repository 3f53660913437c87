//! `dsv rev-parse [--short] [--abbrev-ref] [--verify] REV...`: revisions to commit ids,
//! for scripts (as git's).

use dsv::lock::Access;
use dsv::ops::revparse::resolve;
use dsv::refs::Head;

use super::Ctx;
use super::output::safe_line;

/// Arguments of `rev-parse`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Revisions (`HEAD`, a branch, tag, `origin/main`, an id or short id, `REV~N`, `REV^`).
    #[arg(required = true)]
    revs: Vec<String>,
    /// Print 12-digit short ids.
    #[arg(long)]
    short: bool,
    /// Print the branch name a revision stands for (`HEAD` when detached), not its id.
    #[arg(long)]
    abbrev_ref: bool,
    /// Exactly one revision, which must resolve (an error otherwise).
    #[arg(long)]
    verify: bool,
}

/// Runs `rev-parse`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.verify && args.revs.len() != 1 {
        crate::usage!("--verify takes exactly one revision");
    }
    let repo = ctx.repo(Access::Read)?;
    let mut out = Vec::with_capacity(args.revs.len());
    for rev in &args.revs {
        if args.abbrev_ref {
            let name = match rev.as_str() {
                "HEAD" | "@" => match repo.refs.head()? {
                    Head::Branch(b) => b,
                    Head::Detached(_) => "HEAD".to_string(),
                },
                _ => {
                    // Any revision that resolves names itself (a branch, a tag, an id).
                    resolve(&repo, rev)?;
                    rev.clone()
                }
            };
            out.push(safe_line(&name).into_owned());
            continue;
        }
        let id = resolve(&repo, rev)?;
        out.push(if args.short {
            id.short()
        } else {
            id.to_string()
        });
    }
    for line in out {
        println!("{line}");
    }
    Ok(0)
}

/// Examples shown by `dsv rev-parse --help`.
const EXAMPLES: &str = "\
Examples:
  dsv rev-parse HEAD~2
  dsv rev-parse --short v1";
