//! `dsv query EXPR [REV]`: list the frames a CEL expression selects, or record
//! them as a new branch.

use dsv::lock::Access;
use dsv::query::{Query, QueryCache, rev_count, rev_index, rev_query, select};

use super::Ctx;
use super::output::{print_json, safe_text};

/// Arguments of `query`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// CEL expression over path, attrs, objects, predictions (e.g. `weather == "rain"`).
    expr: String,
    /// The revision to query (default HEAD).
    #[arg(default_value = "HEAD")]
    rev: String,
    /// Print only the number of matching frames.
    #[arg(long, conflicts_with_all = ["json", "paths"])]
    count: bool,
    /// Print the matching frames as JSON (path, id, attributes, objects, predictions).
    #[arg(long, conflicts_with = "paths")]
    json: bool,
    /// Print matching paths, one per line (the default).
    #[arg(long)]
    paths: bool,
    /// Record the matching frames and their labels as a new branch NAME.
    #[arg(long, value_name = "NAME", conflicts_with = "commit")]
    branch: Option<String>,
    /// Record the matching frames as a commit (printed) without a branch.
    #[arg(long)]
    commit: bool,
    /// Do not read or write the query index cache.
    #[arg(long)]
    no_cache: bool,
    /// Units of the boxes of --json: `file` (the label files' own) or `pixels` (normalized boxes scaled by the size in the frame's image header).
    #[arg(long, value_enum, default_value = "file", requires = "json")]
    units: super::labels::UnitsArg,
}

/// Says, loudly, that frames were judged without the labels of files that
/// do not parse (they are not unlabelled: their labels are unknown).
pub(super) fn warn_invalid(index: &dsv::query::FrameIndex) {
    let (n, listed) = &index.bad_boxes;
    for b in listed {
        eprintln!("warning: invalid box: {b}");
    }
    if *n > listed.len() as u64 {
        eprintln!(
            "warning: ... and {} more invalid boxes",
            n - listed.len() as u64
        );
    }
    if index.invalid.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} label file(s) do not parse; the frames they describe are judged without their labels:",
        index.invalid.len()
    );
    for x in &index.invalid {
        eprintln!("  {}", x.message);
    }
}

/// Runs `query`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    // Compile first: a malformed expression fails before the repository is read.
    let q = Query::compile(&args.expr)?;
    let writing = args.branch.is_some() || args.commit;
    let repo = ctx.repo(if writing { Access::Write } else { Access::Read })?;
    let cache = if args.no_cache {
        QueryCache::disabled()
    } else {
        QueryCache::open(repo.dsv_dir(), &repo.settings)
    };
    if writing {
        let (commit, index) = rev_index(&repo, &args.rev, &cache)?;
        for w in &index.warnings {
            eprintln!("warning: {}", safe_text(&w.to_string()));
        }
        warn_invalid(&index);
        let hits = select(&index, Some(&q))?;
        let msg = format!(
            "query: {}\n\nSelected from {} ({}).",
            args.expr,
            commit.short(),
            dsv::quote::count(hits.len(), "frame")
        );
        let repo = repo.into_writable()?;
        let s = dsv::query::select::record(
            &repo,
            commit,
            &index,
            &hits,
            &args.expr,
            args.branch.as_deref(),
            &msg,
        )?;
        if args.json {
            print_json(&s)?;
        } else {
            match &s.branch {
                Some(b) => println!(
                    "branch {b} at {} ({})",
                    s.commit.short(),
                    dsv::quote::count(s.frames, "frame")
                ),
                None => println!("{}", s.commit),
            }
        }
        return Ok(0);
    }
    if args.count {
        // Counted: no frame decoded.
        let (_, index, n) = rev_count(&repo, &args.rev, &cache, &q)?;
        if std::env::var_os("DSV_DEBUG_READS").is_some() {
            eprintln!("records read: {}", repo.store.records_read());
        }
        for w in &index.warnings {
            eprintln!("warning: {}", safe_text(&w.to_string()));
        }
        warn_invalid(&index);
        println!("{n}");
        return Ok(0);
    }
    // Only the matching frames are kept while the index is read.
    let (commit, mut index) = rev_query(&repo, &args.rev, &cache, &q)?;
    if std::env::var_os("DSV_DEBUG_READS").is_some() {
        eprintln!("records read: {}", repo.store.records_read());
    }
    for w in &index.warnings {
        eprintln!("warning: {}", safe_text(&w.to_string()));
    }
    warn_invalid(&index);
    if args.units == super::labels::UnitsArg::Pixels {
        dsv::query::pixels::records_to_pixels(&repo, &mut index.frames)?;
    }
    let hits: Vec<&dsv::query::FrameRecord> = index.frames.iter().collect();
    if args.count {
        println!("{}", hits.len());
    } else if args.json {
        print_json(&serde_json::json!({
            "commit": commit,
            "count": hits.len(),
            "index": if index.from_cache { "cached" } else { "built" },
            "invalid": index.invalid,
            "frames": hits,
        }))?;
    } else {
        let mut out = String::new();
        for f in &hits {
            out.push_str(&dsv::quote::path_str(&f.path));
            out.push('\n');
        }
        print!("{out}");
    }
    // The process exits next: freeing every matching frame record (hundreds of
    // thousands, with their objects) would only delay that.
    drop(hits);
    std::mem::forget(index);
    Ok(0)
}

/// Examples shown by `dsv query --help`.
const EXAMPLES: &str = "\
Examples:
  dsv query 'weather == \"rain\"'
  dsv query 'objects.exists(o, o.class == \"person\" && o.area < 100)' v1
  dsv query --count 'size(objects) == 0'
  dsv query true --json --units pixels      boxes in pixels, whatever the format
  dsv query 'split == \"val\"' --branch val-only   record the selection as a branch";
