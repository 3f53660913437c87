//! `dsv repair [--json]`.

use dsv::lock::Access;
use dsv::ops::fsck::fsck;
use dsv::ops::repair::repair;
use dsv::repo::Repository;

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `repair`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Machine-readable JSON (the repair report and the fsck that follows).
    #[arg(long)]
    json: bool,
}

/// Runs `repair`, then `fsck`; exit 1 when something could not be recovered.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let root = Repository::locate(&ctx.cwd)?;
    let report = repair(
        &root,
        ctx.open.storage.clone(),
        ctx.open.settings.lock_timeout,
    )?;
    let repo = Repository::discover(&root, Access::Read, &ctx.open)?;
    let check = fsck(&repo, &ctx.progress())?;
    if args.json {
        print_json(&serde_json::json!({ "repair": report, "fsck": check }))?;
    } else {
        if !ctx.quiet {
            println!(
                "objects.redb rebuilt from {} ({}): {}, {}",
                dsv::quote::count(report.packs, "pack"),
                human_bytes(report.bytes),
                dsv::quote::count(report.objects, "object"),
                dsv::quote::count(report.commits, "commit")
            );
            if report.bad_records > 0 {
                println!(
                    "skipped {} damaged or torn records ({} unreadable)",
                    report.bad_records,
                    human_bytes(report.unreadable_bytes)
                );
            }
            for p in &report.magic_fixed {
                println!("rewrote the damaged header of {p}");
            }
            if let Some(reason) = &report.index_reason {
                println!(
                    "index.redb rebuilt from HEAD ({}) because {reason}",
                    dsv::quote::count(report.index_entries, "entry")
                );
            }
            if let Some(to) = &report.hooks_outbox_moved {
                println!(
                    "hooks.redb was damaged: moved to {} (its pending deliveries are not replayed)",
                    to.display()
                );
            }
        }
        for p in &check.problems {
            match &p.id {
                Some(id) => println!("error: object {id}: {}", p.message),
                None => println!("error: {}", p.message),
            }
            for u in &p.used_by {
                println!("  used by {u}");
            }
        }
        if !check.problems.is_empty() {
            eprintln!(
                "repair could not recover everything: {} problems remain (the packs no longer hold that data)",
                check.problems.len()
            );
        }
    }
    Ok(if check.problems.is_empty() { 0 } else { 1 })
}

/// Examples shown by `dsv repair --help`.
const EXAMPLES: &str = "\
Examples:
  dsv repair                         rebuild objects.redb from the packs, then fsck";
