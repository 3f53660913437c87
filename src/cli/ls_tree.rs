//! `dsv ls-tree [-r] REV [PATH]`.

use dsv::lock::Access;
use dsv::object::{Commit, EntryMode, Tree};
use dsv::ops::diff::lookup;
use dsv::ops::revparse::resolve;
use dsv::repo::Repository;
use dsv::worktree::display_path;

use super::Ctx;

/// Arguments of `ls-tree`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Revision (or tree id).
    rev: String,
    /// Directory inside the tree.
    path: Option<String>,
    /// Recurse into subdirectories.
    #[arg(short)]
    r: bool,
    /// Names only.
    #[arg(long)]
    name_only: bool,
}

fn list(repo: &Repository, tree: &dsv::ObjectId, prefix: &str, args: &Args) -> anyhow::Result<()> {
    let t = Tree::load(&repo.store, tree)?;
    for e in t.entries {
        let name = format!("{prefix}{}", display_path(&e.name));
        if args.r && e.mode == EntryMode::Dir {
            dsv::object::tree::check_dir_depth(name.as_bytes())?;
            list(repo, &e.id, &format!("{name}/"), args)?;
            continue;
        }
        if args.name_only {
            println!("{name}");
        } else {
            println!("{} {} {:>10}\t{name}", e.mode.label(), e.id, e.size);
        }
    }
    Ok(())
}

/// Runs `ls-tree`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let id = resolve(&repo, &args.rev)?;
    let root = match Commit::load(&repo.store, &id) {
        Ok(c) => c.tree,
        Err(_) => id,
    };
    let (tree, prefix) = match &args.path {
        Some(p) if !p.trim_matches('/').is_empty() => {
            let p = p.trim_matches('/');
            match lookup(&repo.store, &root, p.as_bytes())? {
                Some((EntryMode::Dir, id, _)) => (id, format!("{p}/")),
                Some(_) => anyhow::bail!("'{p}' is a file, not a directory"),
                None => anyhow::bail!("path '{p}' does not exist in '{}'", args.rev),
            }
        }
        _ => (root, String::new()),
    };
    list(&repo, &tree, &prefix, &args)?;
    Ok(0)
}
