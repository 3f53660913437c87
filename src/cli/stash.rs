//! `dsv stash [push [-m MSG] | list | show [STASH] | apply [STASH] | pop [STASH] | drop [STASH]]`.

use clap::Subcommand;

use dsv::lock::Access;
use dsv::ops::stash;

use super::Ctx;
use super::output::{print_json, safe_line};

/// Arguments of `stash`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// With no subcommand (`stash` alone is `stash push`): the stash's message.
    #[arg(short = 'm', long = "message")]
    message: Option<String>,
}

/// What `stash` does.
#[derive(Debug, Subcommand)]
enum Action {
    /// Put the changes to tracked files (staged or not) aside and reset them to HEAD.
    Push {
        /// A message for the stash list (default: WIP on BRANCH: COMMIT).
        #[arg(short = 'm', long = "message")]
        message: Option<String>,
    },
    /// List the stashes, newest first (`stash@{0}`).
    List {
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// The files a stash changed, with sizes (`--name-status` for letters only).
    Show {
        /// The stash (`stash@{N}` or N; default the newest).
        stash: Option<String>,
        /// `X\tPATH` lines instead of sizes.
        #[arg(long)]
        name_status: bool,
    },
    /// Bring a stash's changes back, keeping it in the list.
    Apply {
        /// The stash (`stash@{N}` or N; default the newest).
        stash: Option<String>,
    },
    /// Bring a stash's changes back and drop it (kept if they do not apply).
    Pop {
        /// The stash (`stash@{N}` or N; default the newest).
        stash: Option<String>,
    },
    /// Remove a stash from the list.
    Drop {
        /// The stash (`stash@{N}` or N; default the newest).
        stash: Option<String>,
    },
}

/// Runs `stash`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let action = match args.action {
        Some(a) => {
            if args.message.is_some() {
                crate::usage!("-m goes after the subcommand: dsv stash push -m MESSAGE");
            }
            a
        }
        None => Action::Push {
            message: args.message,
        },
    };
    match action {
        Action::Push { message } => {
            let repo = ctx.writable_repo()?;
            match stash::push(&repo, message.as_deref(), &ctx.progress())? {
                None => println!("No local changes to save"),
                Some(e) => {
                    if !ctx.quiet {
                        println!(
                            "Saved working directory and index state {}",
                            safe_line(&e.message)
                        );
                    }
                }
            }
        }
        Action::List { json } => {
            let repo = ctx.repo(Access::Read)?;
            let entries = stash::list(&repo)?;
            if json {
                print_json(&entries)?;
            } else {
                for e in entries {
                    println!("{}: {}", e.name(), safe_line(&e.message));
                }
            }
        }
        Action::Show {
            stash: spec,
            name_status,
        } => {
            let repo = ctx.repo(Access::Read)?;
            let e = stash::find(&repo, spec.as_deref())?;
            let changes = stash::changes(&repo, &e)?;
            let mut out = std::io::stdout().lock();
            if name_status {
                super::diff::print_name_status(ctx, &mut out, &changes)?;
            } else {
                super::diff::print_stat(&mut out, &changes)?;
            }
        }
        Action::Apply { stash: spec } => {
            let repo = ctx.writable_repo()?;
            let e = stash::find(&repo, spec.as_deref())?;
            stash::apply(&repo, &e, &ctx.progress())?;
            if !ctx.quiet {
                println!("Applied {} ({})", e.name(), safe_line(&e.message));
            }
        }
        Action::Pop { stash: spec } => {
            let repo = ctx.writable_repo()?;
            let e = stash::find(&repo, spec.as_deref())?;
            stash::apply(&repo, &e, &ctx.progress())?;
            stash::drop(&repo, &e)?;
            if !ctx.quiet {
                println!("Dropped {} ({})", e.name(), e.id.short());
            }
        }
        Action::Drop { stash: spec } => {
            let repo = ctx.writable_repo()?;
            let e = stash::find(&repo, spec.as_deref())?;
            stash::drop(&repo, &e)?;
            if !ctx.quiet {
                println!("Dropped {} ({})", e.name(), e.id.short());
            }
        }
    }
    Ok(0)
}

/// Examples shown by `dsv stash --help`.
const EXAMPLES: &str = "\
Examples:
  dsv stash -m \"half-done relabel\"         put label edits aside
  dsv stash list
  dsv stash show stash@{0}
  dsv stash pop                            bring the newest back and drop it";
