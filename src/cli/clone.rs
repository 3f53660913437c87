//! `dsv clone URL [DIR] [--no-checkout] [--branch B] [--json]`.

use std::path::PathBuf;

use dsv::ops::sync::{CloneOptions, clone};

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `clone`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Remote URL (s3://, gs://, az://, file:// or a path).
    url: String,
    /// Directory to create (default: the last part of the URL).
    #[arg(value_name = "DIR")]
    directory: Option<PathBuf>,
    /// Download commits and trees only; `dsv checkout REV -- PATH...` fetches file data as needed.
    #[arg(long)]
    no_checkout: bool,
    /// Branch to check out (default: the remote's default branch).
    #[arg(short, long)]
    branch: Option<String>,
    /// Machine-readable report.
    #[arg(long)]
    json: bool,
}

/// Runs `clone`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let dir = match args.directory {
        Some(d) => d,
        None => {
            let last = args
                .url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty() && !s.contains(':'))
                .unwrap_or("dataset");
            PathBuf::from(last)
        }
    };
    let opts = CloneOptions {
        no_checkout: args.no_checkout,
        branch: args.branch,
    };
    let r = clone(
        &args.url,
        &ctx.cwd.join(&dir),
        &opts,
        &ctx.open,
        &ctx.progress(),
    )?;
    super::fetch::warn_skipped("origin", &r.skipped);
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
        match &r.branch {
            Some(b) => eprintln!(
                "Cloned into '{}' (branch {b}, {} written, {} received)",
                dir.display(),
                dsv::quote::count(r.written, "file"),
                human_bytes(r.transfer.bytes_down)
            ),
            None => eprintln!("Cloned an empty remote into '{}'", dir.display()),
        }
    }
    Ok(0)
}

/// Examples shown by `dsv clone --help`.
const EXAMPLES: &str = "\
Examples:
  dsv clone s3://bucket/datasets/street street
  dsv clone --no-checkout gs://bucket/street   metadata only: a partial clone
  dsv clone -b relabel /mnt/shared/street";
