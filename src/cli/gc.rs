//! `dsv gc`.

use dsv::ops::gc::gc;

use super::Ctx;
use super::output::human_bytes;

/// Arguments of `gc`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `gc`.
pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let r = gc(&repo)?;
    if !ctx.quiet {
        println!(
            "kept {} objects, dropped {}; packs {} -> {}, {} -> {}",
            r.kept,
            r.dropped,
            r.packs_before,
            r.packs_after,
            human_bytes(r.bytes_before),
            human_bytes(r.bytes_after)
        );
    }
    Ok(0)
}
