//! `dsv gc`.

use dsv::ops::gc::gc;

use super::Ctx;
use super::output::human_bytes;

/// Arguments of `gc`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {}

/// Runs `gc`.
pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let r = gc(&repo)?;
    if !ctx.quiet {
        println!(
            "kept {}, dropped {}; packs {} -> {}, {} -> {}",
            dsv::quote::count(r.kept, "object"),
            r.dropped,
            r.packs_before,
            r.packs_after,
            human_bytes(r.bytes_before),
            human_bytes(r.bytes_after)
        );
    }
    Ok(0)
}

/// Examples shown by `dsv gc --help`.
const EXAMPLES: &str = "\
Examples:
  dsv gc                             drop unreachable objects and repack";
