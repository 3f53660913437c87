//! `dsv diff`: file-level differences between commits, the index and the working tree.
//! (Label-aware diff is a later issue; this shows which frames and files changed.)

use std::path::PathBuf;

use dsv::lock::Access;
use dsv::object::Commit;
use dsv::ops::diff::{Change, ChangeKind, detect_renames, diff_trees, merge_maps};
use dsv::ops::revparse::resolve;
use dsv::ops::status::{head_tree, index_states};
use dsv::repo::Repository;
use dsv::worktree::display_path;

use super::Ctx;
use super::output::{human_bytes, paint, print_json};

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Revisions: none (worktree vs HEAD), REV (worktree vs REV), A B or A..B; then `-- PATH...`.
    #[arg(value_name = "REV")]
    revs: Vec<String>,
    /// Paths to limit the diff to (after `--`).
    #[arg(last = true)]
    paths: Vec<PathBuf>,
    /// Compare the index with HEAD (or REV).
    #[arg(long, alias = "cached")]
    staged: bool,
    /// Show only names and change letters.
    #[arg(long)]
    name_status: bool,
    /// Show per-file size changes.
    #[arg(long)]
    stat: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

fn commit_tree(repo: &Repository, rev: &str) -> anyhow::Result<dsv::ObjectId> {
    Ok(Commit::load(&repo.store, &resolve(repo, rev)?)?.tree)
}

/// Prints `X\tpath` lines.
pub fn print_name_status(ctx: &Ctx, changes: &[Change]) {
    for ch in changes {
        let color = match ch.kind {
            ChangeKind::Added => "32",
            ChangeKind::Deleted => "31",
            _ => "33",
        };
        let letter = paint(ctx.color, color, &ch.kind.letter().to_string());
        match &ch.from {
            Some(from) => println!(
                "{letter}\t{}\t{}",
                display_path(from),
                display_path(&ch.path)
            ),
            None => println!("{letter}\t{}", display_path(&ch.path)),
        }
    }
}

/// Prints the one-line totals.
pub fn print_summary(changes: &[Change]) {
    let count = |k| changes.iter().filter(|c| c.kind == k).count();
    println!(
        " {} files changed: {} added, {} modified, {} deleted, {} renamed",
        changes.len(),
        count(ChangeKind::Added),
        count(ChangeKind::Modified),
        count(ChangeKind::Deleted),
        count(ChangeKind::Renamed)
    );
}

/// Runs `diff`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = dsv::Repository::discover(&ctx.cwd, Access::Read, &ctx.open)?;
    let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let mut revs: Vec<String> = Vec::new();
    for r in &args.revs {
        match r.split_once("..") {
            Some((a, b)) => {
                revs.push(if a.is_empty() {
                    "HEAD".into()
                } else {
                    a.into()
                });
                revs.push(if b.is_empty() {
                    "HEAD".into()
                } else {
                    b.into()
                });
            }
            None => revs.push(r.clone()),
        }
    }
    let changes = match revs.as_slice() {
        [a, b] => diff_trees(
            &repo.store,
            Some(&commit_tree(&repo, a)?),
            Some(&commit_tree(&repo, b)?),
            &scopes,
        )?,
        [] | [_] => {
            let base = match revs.first() {
                Some(r) => Some(commit_tree(&repo, r)?),
                None => head_tree(&repo)?,
            };
            let old = dsv::ops::diff::flatten_scoped(&repo.store, base.as_ref(), &scopes)?;
            let new = if args.staged {
                let index = repo.index.load()?;
                index_states(&index)
                    .into_iter()
                    .filter(|(p, _)| {
                        scopes.is_empty() || scopes.iter().any(|s| dsv::worktree::path_within(p, s))
                    })
                    .collect()
            } else {
                dsv::ops::status::worktree_states(&repo, &scopes, &ctx.progress())?
            };
            let mut out = Vec::new();
            merge_maps(old, new, &mut out);
            out
        }
        _ => crate::usage!("diff takes at most two revisions"),
    };
    let changes = detect_renames(changes);
    if args.json {
        print_json(&serde_json::json!({ "changes": changes }))?;
        return Ok(0);
    }
    if args.stat {
        let width = changes
            .iter()
            .map(|c| display_path(&c.path).len())
            .max()
            .unwrap_or(0)
            .min(60);
        for ch in &changes {
            let old = ch
                .old
                .map(|s| human_bytes(s.size))
                .unwrap_or_else(|| "-".into());
            let new = ch
                .new
                .map(|s| human_bytes(s.size))
                .unwrap_or_else(|| "-".into());
            println!(
                " {:<width$} | {} {old} -> {new}",
                display_path(&ch.path),
                ch.kind.letter()
            );
        }
        print_summary(&changes);
        return Ok(0);
    }
    print_name_status(ctx, &changes);
    if !args.name_status && !changes.is_empty() {
        print_summary(&changes);
    }
    Ok(0)
}
