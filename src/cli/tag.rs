//! `dsv tag [NAME [REV]] | -a NAME -m MSG [REV] | -d NAME`.

use dsv::lock::Access;
use dsv::ops::branch::{create_tag, delete_tag, list_tags};
use dsv::ops::revparse::resolve;

use super::Ctx;
use super::output::print_json;

/// Arguments of `tag`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Tag to create.
    name: Option<String>,
    /// Revision to tag (default HEAD).
    rev: Option<String>,
    /// Delete the tag.
    #[arg(short, long)]
    delete: bool,
    /// Replace an existing tag.
    #[arg(short, long)]
    force: bool,
    /// Machine-readable JSON listing.
    #[arg(long)]
    json: bool,
    /// Make an annotated tag: with a tagger, a date and a message (`dsv show TAG` prints them).
    #[arg(short = 'a', long = "annotate", conflicts_with = "delete")]
    annotate: bool,
    /// The annotated tag's message (implies -a; several -m are joined as paragraphs).
    #[arg(
        short = 'm',
        long = "message",
        value_name = "MESSAGE",
        conflicts_with = "delete"
    )]
    message: Vec<String>,
}

/// Runs `tag`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.name {
        None => {
            let repo = ctx.repo(Access::Read)?;
            let tags = list_tags(&repo)?;
            if args.json {
                let mut v = Vec::new();
                for (n, id) in &tags {
                    let mut row = serde_json::json!({"name": n, "id": id});
                    if let Some(note) = dsv::ops::tag_note::read(&repo, n)? {
                        row["tagger"] = serde_json::to_value(&note.tagger)?;
                        row["time"] = note.time.into();
                        row["message"] = note.message.into();
                    }
                    v.push(row);
                }
                print_json(&v)?;
            } else {
                for (n, _) in tags {
                    println!("{n}");
                }
            }
        }
        Some(name) if args.delete => {
            let repo = ctx.writable_repo()?;
            let id = delete_tag(&repo, &name)?;
            dsv::ops::tag_note::remove(&repo, &name)?;
            println!("Deleted tag '{name}' (was {})", id.short());
        }
        Some(name) => {
            let repo = ctx.writable_repo()?;
            let id = resolve(&repo, args.rev.as_deref().unwrap_or("HEAD"))?;
            if args.annotate || !args.message.is_empty() {
                if args.message.is_empty() {
                    crate::usage!("tag -a needs a message: dsv tag -a {name} -m MESSAGE");
                }
                dsv::ops::tag_note::create_annotated(
                    &repo,
                    &name,
                    id,
                    &args.message.join("\n\n"),
                    args.force,
                )?;
            } else {
                create_tag(&repo, &name, id, args.force)?;
                // A lightweight tag over an annotated one drops the annotation.
                dsv::ops::tag_note::remove(&repo, &name)?;
            }
        }
    }
    Ok(0)
}

/// Examples shown by `dsv tag --help`.
const EXAMPLES: &str = "\
Examples:
  dsv tag                            list tags
  dsv tag v1.0                       tag HEAD
  dsv tag v0.9 HEAD~3                tag an older commit
  dsv tag -d v1.0";
