//! `dsv export REV --format F --out DIR [--where EXPR] [--split S] [--classes FILE]
//! [--link MODE]` and `--manifest FILE`.

use std::path::PathBuf;

use dsv::export::ExportFormat;
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
    /// Format to write: coco, yolo, voc or kitti (for training), cvat or
    /// labelstudio (for annotators; `dsv import` brings the edited file back).
    #[arg(long, requires = "out")]
    format: Option<String>,
    /// Directory to write into: new, empty, or an earlier export of the same
    /// format, which is updated (only what changed is written).
    #[arg(long, requires = "format")]
    out: Option<PathBuf>,
    /// Split the frames by a hash of their path, e.g. `train=0.8,val=0.1,test=0.1`
    /// (a frame keeps its split as the dataset grows; default: all in `train`).
    #[arg(long, value_name = "NAME=FRACTION,...", requires = "out")]
    split: Option<String>,
    /// Class list to number classes by (one name a line, or a YOLO `data.yaml`);
    /// a class of the frames not in it is an error.
    #[arg(long, value_name = "FILE", requires = "out")]
    classes: Option<PathBuf>,
    /// How frames are placed: reflink (a copy-on-write clone, else a copy; the
    /// default), copy, hard (hard links into the checkout) or symlink (links to
    /// it); hard and symlink share the bytes with the checkout.
    #[arg(long, value_name = "MODE", default_value = "reflink", value_parser = ["reflink", "copy", "hard", "symlink"], requires = "out")]
    link: String,
    /// With --format labelstudio: what each task's `data.image` starts with,
    /// before `images/<path>` (e.g. `/data/local-files/?d=export/`).
    #[arg(long, value_name = "PREFIX", default_value = "", requires = "out")]
    url_prefix: String,
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
        Some(f) => match ExportFormat::from_name(f) {
            Some(f) => Some(f),
            None => crate::usage!(
                "unknown export format '{f}' (expected {})",
                ExportFormat::names()
            ),
        },
        None => None,
    };
    let split = match &args.split {
        Some(s) => Some(dsv::export::Split::parse(s)?),
        None => None,
    };
    let link = dsv::export::LinkMode::from_name(&args.link)
        .ok_or_else(|| dsv::Error::InvalidArgument(format!("unknown --link {}", args.link)))?;
    let classes = match &args.classes {
        Some(p) => {
            let path = dsv::export::out_dir(&ctx.cwd, p);
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading '{}': {e}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let list = dsv::labels::parse_class_names(&name, &bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Some((path.display().to_string(), list.names))
        }
        None => None,
    };
    let q = args.filter.as_deref().map(Query::compile).transpose()?;
    let repo = ctx.repo(Access::Read)?;
    let cache = QueryCache::open(repo.dsv_dir(), &repo.settings);
    // With --where only the matching frames are kept while the index is read.
    let (commit, index) = match &q {
        Some(q) => rev_query(&repo, &args.rev, &cache, q)?,
        None => rev_index(&repo, &args.rev, &cache)?,
    };
    for w in &index.warnings {
        eprintln!("warning: {}", super::output::safe_text(&w.to_string()));
    }
    let frames = select(&index, None)?;
    let warn_left_out = |left_out: &[String]| {
        for l in left_out {
            eprintln!("warning: {}", super::output::safe_text(l));
        }
    };
    // The export checks the frames itself (an update only those that
    // changed); a manifest needs every frame checked first.
    let (frames, invalid) = if args.manifest.is_some() {
        let mut left_out = Vec::new();
        let checked = dsv::export::check_frames(
            &frames,
            &index.invalid,
            args.skip_invalid,
            |_| false,
            &mut left_out,
        )?;
        warn_left_out(&left_out);
        (checked, &[][..])
    } else {
        (frames, &index.invalid[..])
    };
    let date = jiff::Timestamp::now()
        .round(jiff::Unit::Second)?
        .to_string();
    let lineage = dsv::export::Lineage::new(&commit, &args.rev, args.filter.as_deref(), date);
    if let (Some(format), Some(out)) = (format, &args.out) {
        let out = dsv::export::out_dir(&ctx.cwd, out);
        let opts = dsv::export::ExportOptions {
            format,
            split_given: split.is_some(),
            split: split.unwrap_or_else(|| dsv::export::Split::all_in(dsv::export::DEFAULT_SPLIT)),
            classes,
            link,
            lineage: lineage.clone(),
            tree: Some(dsv::object::Commit::load(&repo.store, &commit)?.tree),
            url_prefix: args.url_prefix.clone(),
            skip_invalid: args.skip_invalid,
        };
        let r = dsv::export::export(&repo, &frames, invalid, &opts, &out)?;
        warn_left_out(&r.left_out);
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
            let splits = r
                .splits
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let kept = if r.unchanged + r.labels_unchanged > 0 {
                format!(
                    "; kept {} and {} of the earlier export",
                    dsv::quote::count(r.unchanged, "frame"),
                    dsv::quote::count(r.labels_unchanged, "label file")
                )
            } else {
                String::new()
            };
            eprintln!(
                "{} ({} reflinked, {} copied, {} linked, {} written), {}, {} in {} (splits: {splits}){kept}",
                dsv::quote::count(r.frames, "frame"),
                r.reflinked,
                r.copied,
                r.linked,
                r.written,
                dsv::quote::count(r.label_files, "label file"),
                dsv::quote::count(r.classes.len(), "class"),
                out.display()
            );
        }
    }
    if let Some(m) = &args.manifest {
        let path = dsv::export::out_dir(&ctx.cwd, m);
        dsv::export::check_sizes(&repo, &frames)?;
        dsv::export::manifest(&frames, &lineage, &path)?;
        if !ctx.quiet {
            eprintln!(
                "{} in {}",
                dsv::quote::count(frames.len(), "frame"),
                path.display()
            );
        }
    }
    // The process exits next: freeing every frame record (hundreds of
    // thousands, with their objects) would only delay that.
    drop(frames);
    std::mem::forget(index);
    Ok(0)
}

/// Examples shown by `dsv export --help`.
const EXAMPLES: &str = "\
Examples:
  dsv export --format coco --out /data/train
  dsv export v1 --format yolo --out /data/v1 --where 'split == \"train\"'
  dsv export --manifest frames.jsonl
  dsv export --format labelstudio --out /data/to-label --where 'split == \"val\"'";
