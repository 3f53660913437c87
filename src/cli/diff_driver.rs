//! `dsv diff-driver PATH OLD-FILE OLD-HEX OLD-MODE NEW-FILE NEW-HEX NEW-MODE`: the git
//! external diff driver for `dsv.lock` (installed by `dsv install-git-integration`).
//!
//! git stops a whole `git diff` with "external diff died" when a driver exits non-zero,
//! so every failure here (an unreadable or unparsable lock file, a dataset that cannot be
//! opened or diffed) is printed as part of the diff and the driver still exits 0.

use std::io::Write;
use std::path::PathBuf;

use dsv::lock::Access;
use dsv::ops::git_integration::{LockChange, lock_changes};
use dsv::ops::label_diff::{DiffSpec, diff_repo};
use dsv::ops::stats::StatsCache;
use dsv::query::QueryCache;
use dsv::query::stats::rev_stats;
use dsv::repo::Repository;

use super::Ctx;

/// Arguments of `diff-driver` (git passes seven).
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The path git is diffing.
    path: String,
    /// The old version's contents (`/dev/null` when added).
    old_file: PathBuf,
    /// Old blob id.
    old_hex: String,
    /// Old mode.
    old_mode: String,
    /// The new version's contents (`/dev/null` when deleted).
    new_file: PathBuf,
    /// New blob id.
    new_hex: Option<String>,
    /// New mode.
    new_mode: Option<String>,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("reading '{}': {e}", path.display()))
}

/// Runs `diff-driver`. Always exits 0 (see the module comment).
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let out = &mut std::io::stdout().lock();
    writeln!(out, "diff --dsv a/{} b/{}", args.path, args.path)?;
    let (old, new) = match (read(&args.old_file), read(&args.new_file)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            writeln!(out, "dsv diff-driver: {}", super::output::safe_text(&e))?;
            return Ok(0);
        }
    };
    let changes = match lock_changes(&old, &new) {
        Ok(c) => c,
        Err(e) => {
            // Typically conflict markers after `git merge`: show the text itself.
            writeln!(
                out,
                "dsv diff-driver: {}; showing the lines that differ instead",
                super::output::safe_text(&e.to_string())
            )?;
            let diff = similar::TextDiff::from_lines(&old, &new);
            write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", args.path), &format!("b/{}", args.path))
            )?;
            return Ok(0);
        }
    };
    if changes.is_empty() {
        writeln!(out, "no dataset version changed")?;
    }
    for c in &changes {
        dataset(ctx, out, c)?;
    }
    Ok(0)
}

fn short(id: Option<dsv::ObjectId>) -> String {
    id.map(|i| i.short()).unwrap_or_else(|| "(none)".into())
}

/// Prints one dataset's change: the label-aware diff, or what a newly locked dataset holds.
fn dataset(ctx: &Ctx, out: &mut dyn Write, c: &LockChange) -> anyhow::Result<()> {
    writeln!(
        out,
        "dataset {}: {} -> {}",
        super::output::quote_path(&c.path),
        short(c.old),
        short(c.new)
    )?;
    let Some(new) = c.new else {
        writeln!(out, "  no longer locked")?;
        return Ok(());
    };
    // git runs the driver at the top of the worktree; dataset paths are relative to it.
    let dir = ctx.cwd.join(&c.path);
    let repo = match Repository::discover(&dir, Access::Read, &ctx.open) {
        Ok(r) => r,
        Err(e) => {
            writeln!(
                out,
                "  (cannot open the dataset: {})",
                super::output::safe_text(&e.to_string())
            )?;
            return Ok(());
        }
    };
    let Some(old) = c.old else {
        // First lock: say what the dataset holds, not only its id.
        let (cache, qcache) = (
            StatsCache::open(repo.dsv_dir()),
            QueryCache::open(repo.dsv_dir(), &repo.settings),
        );
        match rev_stats(&repo, &new.to_hex(), &cache, &qcache) {
            Ok((_, s)) => {
                writeln!(
                    out,
                    "  newly locked: {} frame{}, {} label file{}, {} object{} in {} class{}",
                    s.frames,
                    plural(s.frames),
                    s.label_files,
                    plural(s.label_files),
                    s.objects,
                    plural(s.objects),
                    s.classes.len(),
                    if s.classes.len() == 1 { "" } else { "es" }
                )?;
                for (class, n) in &s.classes {
                    writeln!(out, "    {}: {n}", super::output::safe_text(class))?;
                }
            }
            Err(e) => writeln!(
                out,
                "  (cannot read the locked version: {})",
                super::output::safe_text(&e.to_string())
            )?,
        }
        return Ok(());
    };
    let spec = DiffSpec {
        revs: vec![old.to_hex(), new.to_hex()],
        labels: true,
        ..DiffSpec::default()
    };
    match diff_repo(&repo, &spec, &dsv::progress::NoProgress) {
        Ok(diff) => dsv::report::text::render(&diff, false, out)?,
        Err(e) => writeln!(
            out,
            "  (cannot diff the dataset versions: {})",
            super::output::safe_text(&e.to_string())
        )?,
    }
    Ok(())
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Examples shown by `dsv diff-driver --help`.
const EXAMPLES: &str = "\
Examples:
  dsv install-git-integration        sets git up to call it
  git diff HEAD~1 -- dsv.lock        git then runs: dsv diff-driver PATH OLD-FILE ...";
