//! `dsv sparse set PATH... | list | disable`.

use std::path::PathBuf;

use dsv::ops::sparse;

use super::Ctx;
use super::output::print_json;

/// Arguments of `sparse`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Hold only these directories and files in the working tree (others stay in
    /// commits as they are, but are not written).
    Set {
        /// Directories or files (relative to the current directory).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Machine-readable report.
        #[arg(long)]
        json: bool,
    },
    /// Print the paths the working tree holds (nothing when it holds everything).
    List {
        /// Machine-readable list.
        #[arg(long)]
        json: bool,
    },
    /// Hold everything again (writes the files that were left out).
    Disable {
        /// Machine-readable report.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `sparse`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.cmd {
        Sub::List { json } => {
            let repo = ctx.repo(dsv::lock::Access::Read)?;
            let paths: Vec<String> = sparse::list(&repo)?
                .map(|s| {
                    s.paths
                        .iter()
                        .map(|p| dsv::paths::display_path(p))
                        .collect()
                })
                .unwrap_or_default();
            if json {
                print_json(&serde_json::json!({ "sparse": !paths.is_empty(), "paths": paths }))?;
            } else {
                for p in paths {
                    println!("{}", super::output::safe_text(&p));
                }
            }
            Ok(0)
        }
        Sub::Set { paths, json } => {
            let repo = ctx.writable_repo()?;
            let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &paths)?;
            let r = sparse::set(&repo, &scopes, &ctx.progress())?;
            report(ctx, json, &r)
        }
        Sub::Disable { json } => {
            let repo = ctx.writable_repo()?;
            let r = sparse::disable(&repo, &ctx.progress())?;
            report(ctx, json, &r)
        }
    }
}

fn report(ctx: &Ctx, json: bool, r: &sparse::SparseReport) -> anyhow::Result<i32> {
    if json {
        print_json(r)?;
        return Ok(0);
    }
    for k in &r.kept {
        eprintln!(
            "warning: '{}' is outside the sparse paths but has local changes; kept",
            super::output::safe_text(k)
        );
    }
    if !ctx.quiet {
        eprintln!("{} files written, {} removed", r.written, r.removed);
    }
    Ok(0)
}

/// Examples shown by `dsv sparse --help`.
const EXAMPLES: &str = "\
Examples:
  dsv sparse set images/night labels/night
                                           only these paths in the working tree
  dsv sparse list
  dsv sparse disable                       everything again";
