//! `dsv log [REV...] [--oneline] [-n N] [--json] [-- PATH...]`.

use std::collections::HashMap;
use std::io::Write;

use dsv::ObjectId;
use dsv::lock::Access;
use dsv::object::Commit;
use dsv::ops::log::{history, history_of_paths};
use dsv::ops::revparse::resolve;
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
    #[arg(long, conflicts_with_all = ["oneline", "graph", "stat"])]
    json: bool,
    /// Show the git commit of the code beside each dataset commit.
    #[arg(long)]
    code: bool,
    /// Only dataset commits made with this git commit of the code (a prefix of 4+ hex digits).
    #[arg(long, value_name = "SHA")]
    code_commit: Option<String>,
    /// Draw the history as an ASCII graph of lanes and merges (commits in topological order).
    #[arg(long)]
    graph: bool,
    /// The files each commit changed, with sizes before and after, and the frames and
    /// objects it added, removed and changed (not for merges, as git).
    #[arg(long)]
    stat: bool,
    /// Follow one file's history through renames (with `-- PATH`).
    #[arg(long)]
    follow: bool,
    /// Only commits that changed these paths (files or directories), as `git log -- PATH`.
    #[arg(last = true, value_name = "PATH")]
    paths: Vec<std::path::PathBuf>,
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
    print!("{}", format_commit(ctx, id, c, deco));
}

/// One commit in the full format, each line ending with a newline.
pub fn format_commit(ctx: &Ctx, id: &ObjectId, c: &Commit, deco: Option<&Vec<String>>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let d = deco
        .map(|d| format!(" ({})", d.join(", ")))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}",
        paint(ctx.color, "33", &format!("commit {id}{d}"))
    );
    if c.parents.len() > 1 {
        let _ = writeln!(
            out,
            "Merge:  {}",
            c.parents
                .iter()
                .map(|p| p.short())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    // Whoever made the commit wrote these: terminal control characters are escaped.
    let _ = writeln!(
        out,
        "Author: {} <{}>",
        safe_line(&c.author.name),
        safe_line(&c.author.email)
    );
    let _ = writeln!(out, "Date:   {}", git_date(c.time, c.tz_offset_min));
    let _ = writeln!(
        out,
        "Data:   {}, {}",
        dsv::quote::count(c.summary.files, "file"),
        human_bytes(c.summary.bytes)
    );
    if let Some(code) = &c.code {
        let dirty = if code.dirty { " (worktree dirty)" } else { "" };
        let _ = writeln!(out, "Code:   git {}{dirty}", code.git_commit);
    }
    if let Some(sel) = &c.selection {
        let _ = writeln!(
            out,
            "Selection of {} by {}",
            sel.of.short(),
            safe_line(&sel.query)
        );
    }
    let _ = writeln!(out);
    for line in c.message.lines() {
        let _ = writeln!(out, "    {}", safe_text(line));
    }
    out
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
    let limit = args.max_count.filter(|_| args.code_commit.is_none());
    let mut commits = if args.paths.is_empty() {
        if args.follow {
            crate::usage!("--follow needs exactly one path: dsv log --follow -- PATH");
        }
        history(&repo, &starts, limit, args.first_parent)?
    } else {
        if args.follow && args.paths.len() != 1 {
            crate::usage!("--follow needs exactly one path: dsv log --follow -- PATH");
        }
        let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
        history_of_paths(
            &repo,
            &starts,
            limit,
            args.first_parent,
            &scopes,
            args.follow,
        )?
    };
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
    if args.graph {
        commits = super::graph::topo_order(commits);
    }
    let mut graph = args.graph.then(super::graph::Graph::default);
    let listed: std::collections::HashSet<ObjectId> = commits.iter().map(|(id, _)| *id).collect();
    let mut prev_padding = String::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, (id, c)) in commits.iter().enumerate() {
        let mut text = if args.oneline {
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
            format!(
                "{}{} {code}{}\n",
                paint(ctx.color, "33", &id.short()),
                paint(ctx.color, "36", &d),
                safe_line(c.subject())
            )
        } else {
            format_commit(ctx, id, c, deco.get(id))
        };
        // git's --stat shows nothing for a merge (its diff is not against one parent).
        if args.stat && c.parents.len() <= 1 {
            let parent_tree = match c.parents.first() {
                Some(p) => Some(Commit::load(&repo.store, p)?.tree),
                None => None,
            };
            let changes = dsv::object::diff::detect_renames(dsv::object::diff::diff_trees(
                &repo.store,
                parent_tree.as_ref(),
                Some(&c.tree),
                &[],
            )?);
            dsv::object::diff::check_change_sizes(&repo.store, &changes)?;
            let mut stat = Vec::new();
            super::diff::print_stat(&mut stat, &changes)?;
            // dsv's extra line: what the commit did to frames and labelled objects,
            // the same figures a hook's payload carries.
            // A partial (metadata-only) repository lacks label files' contents: the
            // line says so instead of failing the whole log.
            match dsv::hooks::payload::summary_between(&repo, c.parents.first().copied(), c) {
                Ok(s) => {
                    let o = &s.objects;
                    writeln!(
                        stat,
                        " frames: {} added, {} removed, {} changed; objects: {} added, {} removed, {} changed",
                        s.frames.added,
                        s.frames.removed,
                        s.frames.modified + s.frames.renamed,
                        o.added,
                        o.removed,
                        o.moved + o.reclassified + o.attributes
                    )?;
                }
                Err(dsv::Error::MissingObject(_))
                    if dsv::remote::fetch::partial_remote(&repo)?.is_some() =>
                {
                    writeln!(
                        stat,
                        " frames: not counted (label files not fetched: partial repository)"
                    )?;
                }
                Err(e) => return Err(e.into()),
            }
            if !args.oneline {
                text.push('\n');
            }
            text.push_str(&String::from_utf8_lossy(&stat));
        }
        let separate = i > 0 && (!args.oneline || args.stat);
        match &mut graph {
            Some(g) => {
                if separate {
                    writeln!(out, "{prev_padding}")?;
                }
                // No lanes to the parents a --first-parent walk or a path limit
                // leaves out (past -n they run on, as in git).
                let parents: Vec<ObjectId> = c
                    .parents
                    .iter()
                    .take(if args.first_parent { 1 } else { usize::MAX })
                    .filter(|p| args.paths.is_empty() || listed.contains(*p))
                    .copied()
                    .collect();
                let rows = g.next(*id, &parents);
                for l in &rows.before {
                    writeln!(out, "{l}")?;
                }
                let mut lines = text.lines();
                writeln!(out, "{} {}", rows.commit, lines.next().unwrap_or(""))?;
                let mut after = rows.after.iter();
                for l in lines {
                    let pad = after.next().unwrap_or(&rows.padding);
                    let l = format!("{pad:<w$} {l}", w = rows.commit.len());
                    writeln!(out, "{}", l.trim_end())?;
                }
                for l in after {
                    writeln!(out, "{l}")?;
                }
                prev_padding = rows.padding;
            }
            None => {
                if separate {
                    writeln!(out)?;
                }
                out.write_all(text.as_bytes())?;
            }
        }
    }
    out.flush()?;
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
