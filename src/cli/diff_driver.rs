//! `dsv diff-driver PATH OLD-FILE OLD-HEX OLD-MODE NEW-FILE NEW-HEX NEW-MODE`: the git
//! external diff driver for `dsv.lock` (installed by `dsv install-git-integration`).

use std::path::PathBuf;

use dsv::lock::Access;
use dsv::ops::git_integration::lock_changes;
use dsv::ops::label_diff::{DiffSpec, diff_repo};
use dsv::repo::Repository;

use super::Ctx;

/// Arguments of `diff-driver` (git passes seven).
#[derive(Debug, clap::Args)]
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

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading '{}': {e}", path.display()))
}

/// Runs `diff-driver`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let (old, new) = (read(&args.old_file)?, read(&args.new_file)?);
    println!("diff --dsv a/{} b/{}", args.path, args.path);
    let changes = lock_changes(&old, &new)?;
    if changes.is_empty() {
        println!("no dataset version changed");
    }
    for c in changes {
        let short =
            |id: Option<dsv::ObjectId>| id.map(|i| i.short()).unwrap_or_else(|| "(none)".into());
        println!(
            "dataset {}: {} -> {}",
            super::output::quote_path(&c.path),
            short(c.old),
            short(c.new)
        );
        let (Some(a), Some(b)) = (c.old, c.new) else {
            continue;
        };
        // git runs the driver at the top of the worktree; dataset paths are relative to it.
        let dir = ctx.cwd.join(&c.path);
        let repo = match Repository::discover(&dir, Access::Read, &ctx.open) {
            Ok(r) => r,
            Err(e) => {
                println!(
                    "  (cannot open the dataset: {})",
                    super::output::safe_text(&e.to_string())
                );
                continue;
            }
        };
        let spec = DiffSpec {
            revs: vec![a.to_hex(), b.to_hex()],
            labels: true,
            ..DiffSpec::default()
        };
        match diff_repo(&repo, &spec, &dsv::progress::NoProgress) {
            Ok(diff) => {
                let mut buf = Vec::new();
                dsv::report::text::render(&diff, false, &mut buf)?;
                print!("{}", String::from_utf8_lossy(&buf));
            }
            Err(e) => println!(
                "  (cannot diff the dataset versions: {})",
                super::output::safe_text(&e.to_string())
            ),
        }
    }
    Ok(0)
}
