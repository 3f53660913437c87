//! `dsv export REV --format F --out DIR [--where EXPR]` and `--manifest FILE`.

use std::path::PathBuf;

use dsv::labels::Format;
use dsv::lock::Access;
use dsv::query::{Query, QueryCache, rev_index, rev_query, select};

use super::Ctx;

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
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
}

/// Runs `export`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if args.out.is_none() && args.manifest.is_none() {
        crate::usage!("export needs --format F --out DIR, or --manifest FILE");
    }
    let format = match &args.format {
        Some(f) => match Format::from_name(f) {
            Some(Format::Cvat) | None => {
                crate::usage!("unknown export format '{f}' (expected coco, yolo, voc or kitti)")
            }
            Some(f) => Some(f),
        },
        None => None,
    };
    let q = args.filter.as_deref().map(Query::compile).transpose()?;
    let repo = ctx.repo(Access::Read)?;
    let cache = QueryCache::open(repo.dsv_dir());
    // With --where only the matching frames are kept while the index is read.
    let (_, index) = match &q {
        Some(q) => rev_query(&repo, &args.rev, &cache, q)?,
        None => rev_index(&repo, &args.rev, &cache)?,
    };
    for w in &index.warnings {
        eprintln!("warning: {}", super::output::safe_text(&w.to_string()));
    }
    let frames = select(&index, None)?;
    if let (Some(format), Some(out)) = (format, &args.out) {
        let out = dsv::export::out_dir(&ctx.cwd, out);
        let r = dsv::export::export(&repo, &frames, format, &out)?;
        for w in &r.warnings {
            eprintln!("warning: {}", super::output::safe_text(&w.to_string()));
        }
        if !ctx.quiet {
            eprintln!(
                "{} frames ({} linked, {} written), {} label files in {}",
                r.frames,
                r.linked,
                r.written,
                r.label_files,
                out.display()
            );
        }
    }
    if let Some(m) = &args.manifest {
        let path = dsv::export::out_dir(&ctx.cwd, m);
        dsv::export::manifest(&frames, &path)?;
        if !ctx.quiet {
            eprintln!("{} frames in {}", frames.len(), path.display());
        }
    }
    Ok(0)
}
