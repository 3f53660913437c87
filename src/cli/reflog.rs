//! `dsv reflog [REF] [-n N] [--json]`: where a ref (default HEAD) has pointed, newest
//! first, as git's `reflog show`.

use dsv::lock::Access;
use dsv::refs::HEADS;
use serde::Serialize;

use super::Ctx;
use super::output::{git_date, paint, print_json, safe_line};

/// Arguments of `reflog`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// `HEAD` (default), a branch name, or a full ref name (`refs/heads/main`).
    #[arg(value_name = "REF", default_value = "HEAD")]
    reference: String,
    /// Show at most N entries.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// One entry of the JSON output.
#[derive(Serialize)]
struct Entry {
    /// `REF@{N}`, N counting from the newest (0).
    selector: String,
    old: Option<String>,
    new: Option<String>,
    who: String,
    time: i64,
    message: String,
}

/// Runs `reflog`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let full = match args.reference.as_str() {
        "HEAD" | "@" => "HEAD".to_string(),
        r if r.starts_with("refs/") => r.to_string(),
        r => format!("{HEADS}{r}"),
    };
    if full != "HEAD" {
        dsv::refs::check_full_name(&full)?;
    }
    let mut entries = repo.refs.reflog(&full)?;
    entries.reverse();
    entries.truncate(args.max_count.unwrap_or(usize::MAX));
    let zero = |id: &dsv::ObjectId| *id == dsv::refs::ZERO;
    let shown = args.reference.as_str();
    if args.json {
        let out: Vec<Entry> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| Entry {
                selector: format!("{shown}@{{{i}}}"),
                old: (!zero(&e.old)).then(|| e.old.to_string()),
                new: (!zero(&e.new)).then(|| e.new.to_string()),
                who: e.who.clone(),
                time: e.time,
                message: e.message.clone(),
            })
            .collect();
        print_json(&out)?;
        return Ok(0);
    }
    for (i, e) in entries.iter().enumerate() {
        let id = if zero(&e.new) {
            "(deleted)   ".to_string()
        } else {
            e.new.short()
        };
        println!(
            "{} {shown}@{{{i}}}: {}  ({})",
            paint(ctx.color, "33", &id),
            safe_line(&e.message),
            git_date(e.time, 0)
        );
    }
    Ok(0)
}

/// Examples shown by `dsv reflog --help`.
const EXAMPLES: &str = "\
Examples:
  dsv reflog                         where HEAD has been
  dsv reflog main -5";
