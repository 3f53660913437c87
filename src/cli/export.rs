//! `dsv export REV --format F --out DIR [--where EXPR]` and `--manifest FILE`.

use std::path::PathBuf;

use dsv::labels::{Format, format_of};
use dsv::lock::Access;
use dsv::query::{Query, QueryCache, rev_index, rev_query, select};

use super::Ctx;

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The revision to export (default HEAD).
    #[arg(default_value = "HEAD")]
    rev: String,
    /// Label format to write: coco, yolo, voc or kitti.
    #[arg(long, requires = "out")]
    format: Option<String>,
    /// Directory to write into (new or empty).
    #[arg(long, requires = "format")]
    out: Option<PathBuf>,
    /// Write a JSONL manifest (path, content id, size, labels, attributes per frame).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Only the frames this CEL expression selects.
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// Leave out the frames whose label files do not parse or hold an invalid
    /// box (listed on stderr) instead of refusing to export.
    #[arg(long)]
    skip_invalid: bool,
    /// Print what was written as JSON on stdout (frames, label files, and the
    /// shapes the format cannot hold, `not_exported`).
    #[arg(long)]
    json: bool,
}

/// Runs `export`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.out.is_none() && args.manifest.is_none() {
        crate::usage!("export needs --format F --out DIR, or --manifest FILE");
    }
    let format = match &args.format {
        Some(f) => match Format::from_name(f) {
            Some(f) if format_of(f).export_layout().is_some() => Some(f),
            _ => crate::usage!("unknown export format '{f}' (expected coco, yolo, voc or kitti)"),
        },
        None => None,
    };
    let q = args.filter.as_deref().map(Query::compile).transpose()?;
    let repo = ctx.repo(Access::Read)?;
    let cache = QueryCache::open(repo.dsv_dir(), &repo.settings);
    // With --where only the matching frames are kept while the index is read.
    let (_, index) = match &q {
        Some(q) => rev_query(&repo, &args.rev, &cache, q)?,
        None => rev_index(&repo, &args.rev, &cache)?,
    };
    for w in &index.warnings {
        eprintln!("warning: {}", super::output::safe_text(&w.to_string()));
    }
    let mut frames = select(&index, None)?;
    // A frame whose label file does not parse is not unlabelled: its labels
    // are unknown, so it is never exported as an image without them.
    let chosen: std::collections::BTreeSet<&str> = frames.iter().map(|f| f.path.as_str()).collect();
    let bad: Vec<&dsv::query::codec::Invalid> = index
        .invalid
        .iter()
        .filter(|x| x.frame.as_deref().is_none_or(|f| chosen.contains(f)))
        .collect();
    if !bad.is_empty() {
        let list = bad
            .iter()
            .map(|x| format!("\n  {}", x.message))
            .collect::<String>();
        let unknown = bad.iter().any(|x| x.frame.is_none());
        if !args.skip_invalid || unknown {
            let why = if args.skip_invalid {
                "which frames some of them describe cannot be told (fix or remove them)"
            } else {
                "their frames would be exported without their labels (--skip-invalid leaves those frames out)"
            };
            anyhow::bail!(
                "{} label file(s) do not parse; {why}; nothing written:{list}",
                bad.len()
            );
        }
        let skip: std::collections::BTreeSet<&str> =
            bad.iter().filter_map(|x| x.frame.as_deref()).collect();
        frames.retain(|f| !skip.contains(f.path.as_str()));
        eprintln!(
            "warning: left out {} frame(s) whose label files do not parse:{list}",
            skip.len()
        );
    }
    // One validation of boxes for every format: an invalid box is refused, not
    // written as whatever the format's writer makes of it.
    let bad_boxes = dsv::export::box_problems(&frames);
    if !bad_boxes.is_empty() {
        let n: usize = bad_boxes.iter().map(|(_, l)| l.len()).sum();
        let list: String = bad_boxes
            .iter()
            .flat_map(|(_, l)| l)
            .take(20)
            .map(|l| format!("\n  {l}"))
            .collect();
        let more = if n > 20 {
            format!("\n  ... and {} more", n - 20)
        } else {
            String::new()
        };
        if !args.skip_invalid {
            anyhow::bail!(
                "{n} invalid box(es) (--skip-invalid leaves their frames out); nothing written:{list}{more}"
            );
        }
        let skip: std::collections::BTreeSet<String> =
            bad_boxes.into_iter().map(|(p, _)| p).collect();
        frames.retain(|f| !skip.contains(&f.path));
        eprintln!(
            "warning: left out {} frame(s) with invalid boxes:{list}{more}",
            skip.len()
        );
    }
    if let (Some(format), Some(out)) = (format, &args.out) {
        let out = dsv::export::out_dir(&ctx.cwd, out);
        let r = dsv::export::export(&repo, &frames, format, &out)?;
        for w in &r.warnings {
            eprintln!("warning: {}", super::output::safe_text(&w.to_string()));
        }
        for n in &r.not_exported {
            eprintln!(
                "warning: {} ({} cannot hold them)",
                super::output::safe_text(&n.to_string()),
                format.name()
            );
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        if !ctx.quiet {
            eprintln!(
                "{} ({} linked, {} written), {} in {}",
                dsv::quote::count(r.frames, "frame"),
                r.linked,
                r.written,
                dsv::quote::count(r.label_files, "label file"),
                out.display()
            );
        }
    }
    if let Some(m) = &args.manifest {
        let path = dsv::export::out_dir(&ctx.cwd, m);
        dsv::export::check_sizes(&repo, &frames)?;
        dsv::export::manifest(&frames, &path)?;
        if !ctx.quiet {
            eprintln!(
                "{} in {}",
                dsv::quote::count(frames.len(), "frame"),
                path.display()
            );
        }
    }
    Ok(0)
}

/// Examples shown by `dsv export --help`.
const EXAMPLES: &str = "\
Examples:
  dsv export --format coco --out /data/train
  dsv export v1 --format yolo --out /data/v1 --where 'split == \"train\"'
  dsv export --manifest frames.jsonl";
