//! `dsv ls-tree [-r] REV [PATH]`.

use super::Ctx;
use super::output::quote_path;
use dsv::lock::Access;
use dsv::object::diff::lookup;
use dsv::object::tree::{TreeObject, check_entry_sizes, check_size};
use dsv::object::{Commit, EntryMode, Tree};
use dsv::ops::revparse::resolve;
use dsv::repo::Repository;

/// Arguments of `ls-tree`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
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

fn list(repo: &Repository, tree: &dsv::ObjectId, prefix: &[u8], args: &Args) -> anyhow::Result<()> {
    let t = Tree::load(&repo.store, tree)?;
    // The sizes listed are checked against the objects (their record headers) and
    // the directories below, so a damaged or forged tree fails here, not later.
    check_entry_sizes(
        &repo.store,
        prefix.strip_suffix(b"/").unwrap_or(prefix),
        t.entries
            .iter()
            .map(|e| (&e.name[..], e.mode, &e.id, e.size)),
    )?;
    for e in t.entries.iter().filter(|e| e.mode == EntryMode::Dir) {
        let below = match Tree::load_object(&repo.store, &e.id)? {
            TreeObject::Entries(entries) => entries.iter().map(|e| e.size).sum(),
            TreeObject::Shards(shards) => shards.iter().map(|s| s.size).sum(),
        };
        check_size(&[prefix, &e.name].concat(), e.size, &e.id, below)?;
    }
    for e in t.entries {
        let path = [prefix, &e.name].concat();
        if args.r && e.mode == EntryMode::Dir {
            dsv::object::tree::check_dir_depth(&path)?;
            list(repo, &e.id, &[&path[..], b"/"].concat(), args)?;
            continue;
        }
        let name = quote_path(&path);
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
    list(&repo, &tree, prefix.as_bytes(), &args)?;
    Ok(0)
}

/// Examples shown by `dsv ls-tree --help`.
const EXAMPLES: &str = "\
Examples:
  dsv ls-tree HEAD
  dsv ls-tree -r v1 labels";
