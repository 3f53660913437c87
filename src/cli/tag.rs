//! `dsv tag [NAME [REV]] | -d NAME`.

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
}

/// Runs `tag`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.name {
        None => {
            let repo = ctx.repo(Access::Read)?;
            let tags = list_tags(&repo)?;
            if args.json {
                let v: Vec<_> = tags
                    .iter()
                    .map(|(n, id)| serde_json::json!({"name": n, "id": id}))
                    .collect();
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
            println!("Deleted tag '{name}' (was {})", id.short());
        }
        Some(name) => {
            let repo = ctx.writable_repo()?;
            let id = resolve(&repo, args.rev.as_deref().unwrap_or("HEAD"))?;
            create_tag(&repo, &name, id, args.force)?;
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
