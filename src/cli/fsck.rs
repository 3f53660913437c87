//! `dsv fsck [--json]`.

use dsv::lock::Access;
use dsv::ops::fsck::fsck;

use super::Ctx;
use super::output::print_json;

/// Arguments of `fsck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `fsck`; exit 1 when a problem is found.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let report = fsck(&repo, &ctx.progress())?;
    if args.json {
        print_json(&report)?;
    } else {
        for p in &report.problems {
            match &p.id {
                Some(id) => println!("error: object {id}: {}", p.message),
                None => println!("error: {}", p.message),
            }
            for u in &p.used_by {
                println!("  used by {u}");
            }
        }
        if !ctx.quiet {
            eprintln!(
                "checked {} objects, {} commits: {} problems",
                report.objects,
                report.commits,
                report.problems.len()
            );
        }
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}
