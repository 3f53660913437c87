//! `dsv show [REV]`: a commit and the files it changed.

use dsv::lock::Access;
use dsv::object::Commit;
use dsv::object::diff::{detect_renames, diff_trees};
use dsv::ops::revparse::resolve;

use super::Ctx;
use super::output::print_json;

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Revision to show (default HEAD).
    #[arg(default_value = "HEAD")]
    rev: String,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `show`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
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
    let deco = super::log::decorations(&repo)?;
    super::log::print_commit(ctx, &id, &c, deco.get(&id));
    println!();
    let mut out = std::io::stdout().lock();
    super::diff::print_name_status(ctx, &mut out, &changes)?;
    super::diff::print_summary(&mut out, &changes)?;
    Ok(0)
}

/// Examples shown by `dsv show --help`.
const EXAMPLES: &str = "\
Examples:
  dsv show                           the last commit and its dataset diff
  dsv show v1 --json
  dsv show HEAD~2";
