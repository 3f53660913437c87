//! `dsv stats [REV] [REV2]`: frames, objects, per-class and per-attribute counts.

use std::io::Write;

use dsv::lock::Access;
use dsv::ops::stats::{Stats, StatsCache, StatsDelta};
use dsv::query::stats::rev_stats;
use dsv::report::text::signed;

use super::Ctx;
use super::output::{print_json, safe_line, safe_text, write_paged};

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The revision (default HEAD); with a second one, the difference between them.
    #[arg(value_name = "REV", num_args = 0..=2)]
    revs: Vec<String>,
    /// Machine-readable JSON.
    #[arg(long)]
    json: bool,
    /// Statistics of the frames this CEL expression selects (one revision only).
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// Do not read or write the statistics cache.
    #[arg(long)]
    no_cache: bool,
}

fn print_one(out: &mut dyn Write, s: &Stats) -> std::io::Result<()> {
    writeln!(out, "frames            {:>12}", s.frames)?;
    writeln!(out, "  without labels  {:>12}", s.frames_without_labels())?;
    writeln!(out, "label files       {:>12}", s.label_files)?;
    writeln!(out, "objects           {:>12}", s.objects)?;
    if s.label_errors > 0 {
        writeln!(out, "unreadable labels {:>12}", s.label_errors)?;
    }
    if s.entries_without_frame > 0 {
        writeln!(out, "unpaired labels   {:>12}", s.entries_without_frame)?;
    }
    if !s.classes.is_empty() {
        writeln!(out, "\nclasses:")?;
        let w = s
            .classes
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .min(40);
        // Class names and attributes come from label files: escaped, never raw.
        for (k, n) in &s.classes {
            writeln!(out, "  {:<w$}  {n:>10}", safe_line(k))?;
        }
    }
    for (title, map) in [
        ("object attributes", &s.attributes),
        ("frame attributes", &s.frame_attributes),
    ] {
        if map.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}:")?;
        for (k, vals) in map {
            for (v, n) in vals {
                writeln!(out, "  {:<30}  {n:>10}", safe_line(&format!("{k}={v}")))?;
            }
        }
    }
    Ok(())
}

fn print_delta(out: &mut dyn Write, d: &StatsDelta) -> std::io::Result<()> {
    let (b, a) = (&d.before, &d.after);
    writeln!(
        out,
        "{:<18} {:>12} {:>12} {:>10}",
        "", "before", "after", "delta"
    )?;
    let row = |out: &mut dyn Write, name: &str, x: u64, y: u64| {
        writeln!(
            out,
            "{name:<18} {x:>12} {y:>12} {:>10}",
            signed(y as i64 - x as i64)
        )
    };
    row(out, "frames", b.frames, a.frames)?;
    row(
        out,
        "  without labels",
        b.frames_without_labels(),
        a.frames_without_labels(),
    )?;
    row(out, "label files", b.label_files, a.label_files)?;
    row(out, "objects", b.objects, a.objects)?;
    if !d.classes.is_empty() {
        writeln!(out, "\nclasses:")?;
        for (k, (x, y, _)) in &d.classes {
            row(out, &format!("  {}", safe_line(k)), *x, *y)?;
        }
    }
    if !d.frame_attributes.is_empty() {
        writeln!(out, "\nframe attributes:")?;
        for (k, vals) in &d.frame_attributes {
            for (v, (x, y, _)) in vals {
                row(
                    out,
                    &format!("  {}", safe_line(&format!("{k}={v}"))),
                    *x,
                    *y,
                )?;
            }
        }
    }
    Ok(())
}

/// Runs `stats`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo(Access::Read)?;
    let cache = if args.no_cache {
        StatsCache::disabled()
    } else {
        StatsCache::open(repo.dsv_dir())
    };
    let qcache = if args.no_cache {
        dsv::query::QueryCache::disabled()
    } else {
        dsv::query::QueryCache::open(repo.dsv_dir(), &repo.settings)
    };
    let mut buf = Vec::new();
    match args.revs.as_slice() {
        [] | [_] => {
            let rev = args.revs.first().map_or("HEAD", |s| s.as_str());
            let (commit, s) = match &args.filter {
                Some(expr) => {
                    let q = dsv::query::Query::compile(expr)?;
                    let (c, index) = dsv::query::rev_query(&repo, rev, &qcache, &q)?;
                    super::query::warn_invalid(&index);
                    let hits: Vec<&dsv::query::FrameRecord> = index.frames.iter().collect();
                    let mut s = dsv::query::stats_of(&hits);
                    s.label_errors = index.invalid.len() as u64;
                    (c, s)
                }
                None => rev_stats(&repo, rev, &cache, &qcache)?,
            };
            if std::env::var_os("DSV_DEBUG_READS").is_some() {
                eprintln!("records read: {}", repo.store.records_read());
            }
            for e in &s.errors {
                eprintln!("warning: {}", safe_text(&e.to_string()));
            }
            if s.label_errors > 0 && args.filter.is_none() {
                eprintln!(
                    "warning: {} label file(s) do not parse; the frames they describe are counted without their labels",
                    s.label_errors
                );
            }
            if args.json {
                print_json(
                    &serde_json::json!({ "commit": commit, "stats": s, "frames_without_labels": s.frames_without_labels() }),
                )?;
                return Ok(0);
            }
            writeln!(buf, "commit {commit}")?;
            print_one(&mut buf, &s)?;
        }
        [_, _] if args.filter.is_some() => {
            crate::usage!("stats --where takes one revision")
        }
        [a, b] => {
            let (ca, sa) = rev_stats(&repo, a, &cache, &qcache)?;
            let (cb, sb) = rev_stats(&repo, b, &cache, &qcache)?;
            let d = StatsDelta::new(sa, sb);
            if args.json {
                print_json(&serde_json::json!({ "from": ca, "to": cb, "delta": d }))?;
                return Ok(0);
            }
            writeln!(buf, "{} -> {}", ca.short(), cb.short())?;
            print_delta(&mut buf, &d)?;
        }
        _ => crate::usage!("stats takes at most two revisions"),
    }
    write_paged(&buf, true)?;
    Ok(0)
}

/// Examples shown by `dsv stats --help`.
const EXAMPLES: &str = "\
Examples:
  dsv stats                          frames, objects, classes of HEAD
  dsv stats v1 HEAD                  the change between two revisions
  dsv stats --where 'weather == \"rain\"'";
