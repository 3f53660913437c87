//! `dsv pin add REV [--note TEXT] | list | rm REV`, on a remote (default origin).

use dsv::id::ObjectId;
use dsv::lock::Access;
use dsv::ops::revparse::resolve;
use dsv::remote::gc::{add_pin, list_pins, remove_pin};

use super::Ctx;
use super::output::{print_json, safe_text};

/// Arguments of `pin`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// What `pin` does.
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Keep a commit and its history on the remote whatever happens to branches
    /// (`dsv gc --remote` never collects it).
    Add {
        /// The commit (it must already be on the remote).
        rev: String,
        /// Why it is kept (shown by `pin list`).
        #[arg(long)]
        note: Option<String>,
        /// The remote.
        #[arg(long, default_value = "origin")]
        remote: String,
    },
    /// List the remote's pins.
    List {
        /// The remote.
        #[arg(long, default_value = "origin")]
        remote: String,
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a pin (the commit becomes collectable if nothing else keeps it).
    Rm {
        /// The pinned commit (a revision, or its full id).
        rev: String,
        /// The remote.
        #[arg(long, default_value = "origin")]
        remote: String,
    },
}

fn commit_of(repo: &dsv::repo::Repository, rev: &str) -> anyhow::Result<ObjectId> {
    match resolve(repo, rev) {
        Ok(id) => Ok(id),
        Err(e) => ObjectId::from_hex(rev).ok_or_else(|| e.into()),
    }
}

/// Runs `pin`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    match args.action {
        Action::Add { rev, note, remote } => {
            let id = commit_of(&repo, &rev)?;
            add_pin(&repo, &remote, id, note.as_deref())?;
            if !ctx.quiet {
                println!("pinned {} on {remote}", id.short());
            }
        }
        Action::List { remote, json } => {
            let pins = list_pins(&repo, &remote)?;
            if json {
                print_json(&pins)?;
            } else {
                for p in pins {
                    match &p.note {
                        Some(n) => println!("{} {}", p.commit, safe_text(n)),
                        None => println!("{}", p.commit),
                    }
                }
            }
        }
        Action::Rm { rev, remote } => {
            let id = commit_of(&repo, &rev)?;
            remove_pin(&repo, &remote, id)?;
            if !ctx.quiet {
                println!("unpinned {} on {remote}", id.short());
            }
        }
    }
    Ok(0)
}

/// Examples shown by `dsv pin --help`.
const EXAMPLES: &str = "\
Examples:
  dsv pin add v2.1 --note \"model m17\"     keep a trained-on version on origin
  dsv pin list
  dsv pin rm v2.1";
