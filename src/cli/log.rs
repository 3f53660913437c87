//! `dsv log [REV...] [--oneline] [-n N] [--json]`.

use std::collections::HashMap;

use dsv::ObjectId;
use dsv::lock::Access;
use dsv::object::Commit;
use dsv::ops::{log::history, revparse::resolve};
use dsv::refs::{HEADS, Head, TAGS};
use dsv::repo::Repository;

use super::Ctx;
use super::output::{git_date, human_bytes, paint, print_json, safe_line, safe_text};

/// Arguments of `log`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Revisions to start from (default HEAD).
    revs: Vec<String>,
    /// One line per commit.
    #[arg(long)]
    oneline: bool,
    /// Show at most N commits.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// Follow only first parents.
    #[arg(long)]
    first_parent: bool,
    /// Start from every branch and tag.
    #[arg(long)]
    all: bool,
    /// Machine-readable JSON.
    #[arg(long, conflicts_with = "oneline")]
    json: bool,
    /// Show the git commit of the code beside each dataset commit.
    #[arg(long)]
    code: bool,
    /// Only dataset commits made with this git commit of the code (a prefix of 4+ hex digits).
    #[arg(long, value_name = "SHA")]
    code_commit: Option<String>,
}

/// Ref names pointing at each commit, for decorations.
pub fn decorations(repo: &Repository) -> anyhow::Result<HashMap<ObjectId, Vec<String>>> {
    let mut map: HashMap<ObjectId, Vec<String>> = HashMap::new();
    let head = repo.refs.head()?;
    if let Head::Detached(id) = &head {
        map.entry(*id).or_default().push("HEAD".into());
    }
    for (name, id) in repo.refs.list(HEADS)? {
        let label = if head == Head::Branch(name.clone()) {
            format!("HEAD -> {name}")
        } else {
            name
        };
        map.entry(id).or_default().push(label);
    }
    for (name, id) in repo.refs.list(TAGS)? {
        map.entry(id).or_default().push(format!("tag: {name}"));
    }
    for v in map.values_mut() {
        v.sort_by_key(|s| !s.starts_with("HEAD"));
    }
    Ok(map)
}

/// Prints one commit in the full format.
pub fn print_commit(ctx: &Ctx, id: &ObjectId, c: &Commit, deco: Option<&Vec<String>>) {
    let d = deco
        .map(|d| format!(" ({})", d.join(", ")))
        .unwrap_or_default();
    println!("{}", paint(ctx.color, "33", &format!("commit {id}{d}")));
    if c.parents.len() > 1 {
        println!(
            "Merge:  {}",
            c.parents
                .iter()
                .map(|p| p.short())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    // Whoever made the commit wrote these: terminal control characters are escaped.
    println!(
        "Author: {} <{}>",
        safe_line(&c.author.name),
        safe_line(&c.author.email)
    );
    println!("Date:   {}", git_date(c.time, c.tz_offset_min));
    println!(
        "Data:   {}, {}",
        dsv::quote::count(c.summary.files, "file"),
        human_bytes(c.summary.bytes)
    );
    if let Some(code) = &c.code {
        let dirty = if code.dirty { " (worktree dirty)" } else { "" };
        println!("Code:   git {}{dirty}", code.git_commit);
    }
    if let Some(sel) = &c.selection {
        println!(
            "Selection of {} by {}",
            sel.of.short(),
            safe_line(&sel.query)
        );
    }
    println!();
    for line in c.message.lines() {
        println!("    {}", safe_text(line));
    }
}

/// Runs `log`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let mut starts = Vec::new();
    for r in &args.revs {
        starts.push(resolve(&repo, r)?);
    }
    if args.all {
        for ns in [HEADS, TAGS] {
            starts.extend(repo.refs.list(ns)?.into_iter().map(|(_, id)| id));
        }
    }
    if starts.is_empty() {
        match repo.refs.head_commit()? {
            Some(h) => starts.push(h),
            None => {
                let b = match repo.refs.head()? {
                    Head::Branch(b) => b,
                    Head::Detached(_) => "HEAD".into(),
                };
                anyhow::bail!("your current branch '{b}' does not have any commits yet");
            }
        }
    }
    let mut commits = history(
        &repo,
        &starts,
        args.max_count.filter(|_| args.code_commit.is_none()),
        args.first_parent,
    )?;
    if let Some(sha) = &args.code_commit {
        let sha = sha.to_ascii_lowercase();
        if sha.len() < 4 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            crate::usage!("--code-commit needs at least 4 hex digits of a git commit, got '{sha}'");
        }
        commits.retain(|(_, c)| {
            c.code
                .as_ref()
                .is_some_and(|k| k.git_commit.starts_with(&sha))
        });
        if let Some(n) = args.max_count {
            commits.truncate(n);
        }
    }
    if args.json {
        let items: Vec<serde_json::Value> = commits
            .iter()
            .map(|(id, c)| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("id".into(), serde_json::Value::String(id.to_hex()));
                }
                v
            })
            .collect();
        print_json(&items)?;
        return Ok(0);
    }
    let deco = decorations(&repo)?;
    for (i, (id, c)) in commits.iter().enumerate() {
        if args.oneline {
            let d = deco
                .get(id)
                .map(|d| format!(" ({})", d.join(", ")))
                .unwrap_or_default();
            let code = if args.code {
                let g = match &c.code {
                    Some(k) => format!(
                        "git {}{}",
                        k.git_commit.get(..12).unwrap_or(&k.git_commit),
                        if k.dirty { "+dirty" } else { "" }
                    ),
                    None => "git -".to_string(),
                };
                format!("{} ", paint(ctx.color, "35", &format!("[{g}]")))
            } else {
                String::new()
            };
            println!(
                "{}{} {code}{}",
                paint(ctx.color, "33", &id.short()),
                paint(ctx.color, "36", &d),
                safe_line(c.subject())
            );
        } else {
            if i > 0 {
                println!();
            }
            print_commit(ctx, id, c, deco.get(id));
        }
    }
    Ok(0)
}

/// Examples shown by `dsv log --help`.
const EXAMPLES: &str = "\
Examples:
  dsv log                            history of the current branch
  dsv log -3 --oneline
  dsv log --all --first-parent
  dsv log main..relabel              commits on relabel not on main
  dsv log --json -n 1";
