//! `dsv show [REV | REV:PATH] [--stat]`: a commit and the files it changed, or a
//! file (or directory listing) as a revision holds it.

use std::io::Write;

use dsv::lock::Access;
use dsv::object::Commit;
use dsv::object::diff::{detect_renames, diff_trees};
use dsv::object::tree::{EntryMode, Tree};
use dsv::ops::revparse::{resolve, resolve_entry, split_rev_path};

use super::Ctx;
use super::output::{git_date, paint, print_json, quote_path, safe_line, safe_text};

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Revision to show (default HEAD; an annotated tag shows its tagger and message
    /// first); `REV:PATH` prints that file as REV holds it (`:PATH`: as staged), a
    /// directory as its list of names.
    #[arg(default_value = "HEAD")]
    rev: String,
    /// Per-file size changes instead of the name-status list, as `git show --stat`.
    #[arg(long)]
    stat: bool,
    /// Machine-readable JSON.
    #[arg(long, conflicts_with = "stat")]
    json: bool,
}

/// `show REV:PATH`: the file's bytes, or a directory's names as git prints them.
fn show_entry(ctx: &Ctx, spec: &str, rev: &str, path: &str) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    // As in git, the path is from the repository root unless it starts with ./ or ../.
    let path: Vec<u8> = if path.starts_with("./") || path.starts_with("../") {
        repo.repo_path(&ctx.cwd, std::path::Path::new(path))?
    } else {
        path.trim_matches('/').as_bytes().to_vec()
    };
    let (mode, id) = resolve_entry(&repo, rev, &path)?;
    let mut out = std::io::stdout().lock();
    if mode == EntryMode::Dir {
        writeln!(out, "tree {}\n", quote_path(spec.as_bytes()))?;
        for e in Tree::load(&repo.store, &id)?.entries {
            let slash = if e.mode == EntryMode::Dir { "/" } else { "" };
            writeln!(out, "{}{slash}", quote_path(&e.name))?;
        }
    } else {
        repo.store.read_into(&id, &mut out)?;
    }
    out.flush()?;
    Ok(0)
}

/// Runs `show`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if let Some((rev, path)) = split_rev_path(&args.rev) {
        if args.stat || args.json {
            crate::usage!("--stat and --json show commits, not 'REV:PATH'");
        }
        return show_entry(ctx, &args.rev, rev, path);
    }
    let repo = ctx.repo(Access::Read)?;
    let id = resolve(&repo, &args.rev)?;
    let c = Commit::load(&repo.store, &id)?;
    let parent_tree = match c.parents.first() {
        Some(p) => Some(Commit::load(&repo.store, p)?.tree),
        None => None,
    };
    let changes = diff_trees(&repo.store, parent_tree.as_ref(), Some(&c.tree), &[])?;
    dsv::object::diff::check_change_sizes(&repo.store, &changes)?;
    let changes = detect_renames(changes);
    if args.json {
        print_json(&serde_json::json!({ "id": id, "commit": c, "changes": changes }))?;
        return Ok(0);
    }
    // An annotated tag shows its tagger, date and message first, as git.
    let name = args.rev.strip_prefix("refs/tags/").unwrap_or(&args.rev);
    if dsv::refs::check_ref_name("tag", name).is_ok()
        && (args.rev.starts_with("refs/tags/")
            || repo
                .refs
                .read(&format!("{}{name}", dsv::refs::HEADS))?
                .is_none())
        && let Some(note) = dsv::ops::tag_note::read(&repo, name)?
    {
        println!("{}", paint(ctx.color, "33", &format!("tag {name}")));
        println!(
            "Tagger: {} <{}>",
            safe_line(&note.tagger.name),
            safe_line(&note.tagger.email)
        );
        println!("Date:   {}\n", git_date(note.time, note.tz_offset_min));
        for line in note.message.lines() {
            println!("{}", safe_text(line));
        }
        println!();
    }
    let deco = super::log::decorations(&repo)?;
    super::log::print_commit(ctx, &id, &c, deco.get(&id));
    println!();
    let mut out = std::io::stdout().lock();
    if args.stat {
        super::diff::print_stat(&mut out, &changes)?;
    } else {
        super::diff::print_name_status(ctx, &mut out, &changes)?;
        super::diff::print_summary(&mut out, &changes)?;
    }
    Ok(0)
}

/// Examples shown by `dsv show --help`.
const EXAMPLES: &str = "\
Examples:
  dsv show                           the last commit and its dataset diff
  dsv show v1 --json
  dsv show HEAD~2";
