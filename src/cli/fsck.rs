//! `dsv fsck [--json]`.

use dsv::lock::Access;
use dsv::ops::fsck::fsck;

use super::Ctx;
use super::output::print_json;

/// Arguments of `fsck`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
    /// Check a remote instead (default: origin): indexes, pack lengths, and that
    /// every branch's commits, trees and files are all on the remote.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "origin")]
    remote: Option<String>,
    /// With --remote: also download every pack and verify its content hash.
    #[arg(long, requires = "remote")]
    records: bool,
}

/// Runs `fsck`; exit 1 when a problem is found.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    if let Some(name) = &args.remote {
        let r = dsv::remote::fsck::fsck_remote(&repo, name, args.records, &ctx.progress())?;
        if args.json {
            print_json(&r)?;
        } else {
            for p in &r.problems {
                println!("error: {}", super::output::safe_text(&p.to_string()));
            }
            if !ctx.quiet {
                eprintln!(
                    "remote {name}: {}, {}, {}: {}",
                    dsv::quote::count(r.packs, "pack"),
                    dsv::quote::count(r.refs, "branch"),
                    dsv::quote::count(r.objects, "object"),
                    dsv::quote::count(r.problems.len(), "problem")
                );
            }
        }
        return Ok(if r.problems.is_empty() { 0 } else { 1 });
    }
    let report = fsck(&repo, &ctx.progress())?;
    if args.json {
        print_json(&report)?;
    } else {
        for p in &report.problems {
            match &p.id {
                Some(id) => println!(
                    "error: object {id}: {}",
                    super::output::safe_text(&p.message)
                ),
                None => println!("error: {}", super::output::safe_text(&p.message)),
            }
            for u in &p.used_by {
                println!("  used by {}", super::output::safe_text(&u.to_string()));
            }
        }
        if !ctx.quiet {
            eprintln!(
                "checked {}, {}: {}",
                dsv::quote::count(report.objects, "object"),
                dsv::quote::count(report.commits, "commit"),
                dsv::quote::count(report.problems.len(), "problem")
            );
        }
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}

/// Examples shown by `dsv fsck --help`.
const EXAMPLES: &str = "\
Examples:
  dsv fsck                           verify every object and reference
  dsv fsck --remote origin           check a remote's packs and branches";
