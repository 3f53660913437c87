//! `dsv gc [--remote NAME [--dry-run] [--grace DURATION] [--rewrite-threshold F]] [--json]`.

use dsv::lock::Access;
use dsv::ops::gc::{gc, resolve_retention, retention};
use dsv::remote::gc::{Amount, DEFAULT_REWRITE_THRESHOLD, GcOptions, Root, collect};

use super::Ctx;
use super::output::{human_bytes, print_json};

/// Arguments of `gc`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Collect a remote instead (default: origin): delete packs no branch, tag,
    /// pin or dsv.toml [retention] version needs, in two runs at least the grace
    /// period apart.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "origin")]
    remote: Option<String>,
    /// With --remote: report what would be recorded and freed; change nothing.
    #[arg(long, requires = "remote")]
    dry_run: bool,
    /// With --remote: how long a pack waits between being recorded as garbage
    /// and being deleted (and how old a pack must be to be recorded), e.g. 1d, 12h, 30s.
    #[arg(long, requires = "remote", value_name = "DURATION", default_value = "1d", value_parser = parse_grace)]
    grace: std::time::Duration,
    /// With --remote: rewrite packs whose dead bytes reach this fraction (0 to 1)
    /// into packs of their live records [default: remote.NAME.gc_rewrite_threshold, else 0.5].
    #[arg(long, requires = "remote", value_name = "FRACTION", value_parser = parse_fraction)]
    rewrite_threshold: Option<f64>,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
}

fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration such as 1d, 12h or 30s ({e})"))
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("'{s}' is not a fraction above 0 and at most 1")),
    }
}

fn amount(a: &Amount) -> String {
    format!(
        "{} packs, {} objects, {}",
        a.packs,
        a.objects,
        human_bytes(a.bytes)
    )
}

/// Runs `gc`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if let Some(name) = &args.remote {
        // Written: the cache of the remote's pack indexes, so no index is read twice.
        let repo = ctx.repo(Access::Write)?;
        let threshold = match args.rewrite_threshold {
            Some(t) => t,
            None => dsv::remote::gc::configured_threshold(&repo, name)?
                .unwrap_or(DEFAULT_REWRITE_THRESHOLD),
        };
        let opts = GcOptions {
            dry_run: args.dry_run,
            grace: args.grace,
            rewrite_threshold: threshold,
            pack_target: dsv::remote::push::pack_target(&repo.settings),
        };
        // `[retention]` of dsv.toml, resolved here against this clone's refs.
        let retained: Vec<Root> = resolve_retention(&repo, &retention(&repo)?)?
            .into_iter()
            .map(|r| Root {
                name: format!("dsv.toml [retention] {}", r.rev),
                commit: r.commit,
            })
            .collect();
        let r = collect(&repo, name, &opts, &retained)?;
        if args.json {
            print_json(&r)?;
        } else if !ctx.quiet {
            let would = if r.dry_run { "would be " } else { "" };
            println!(
                "remote {name}: {} refs, {} live objects{}",
                r.roots.len(),
                r.live_objects,
                if r.dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
            println!("  {would}freed: {}", amount(&r.freed));
            println!(
                "  {would}recorded for deletion after {}: {} ({} of them rewritten)",
                humantime::format_duration(std::time::Duration::from_secs(r.grace_seconds)),
                amount(&r.recorded),
                r.rewritten.packs
            );
            println!("  {would}copied into new packs: {}", amount(&r.copied));
            println!("  kept, live: {}", amount(&r.kept.live));
            println!(
                "  kept, younger than the grace period: {}",
                amount(&r.kept.young)
            );
            println!(
                "  kept, recorded but not yet past the grace period: {}",
                amount(&r.kept.pending)
            );
        }
        return Ok(0);
    }
    let repo = ctx.writable_repo()?;
    let retained = resolve_retention(&repo, &retention(&repo)?)?;
    let r = gc(&repo, &retained)?;
    if args.json {
        print_json(&r)?;
    } else if !ctx.quiet {
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
  dsv gc                             drop unreachable objects and repack
  dsv gc --remote origin --dry-run   what a collection of the remote would free
  dsv gc --remote origin             record garbage now, delete what a run a day ago recorded";
