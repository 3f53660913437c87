//! `dsv diff`: what changed in the dataset — frames, label files, and the objects
//! inside them — between commits, the index and the working tree.

use std::io::Write;
use std::path::PathBuf;

use dsv::labels::compare::MatchOptions;
use dsv::lock::Access;
use dsv::object::diff::{Change, ChangeKind};
use dsv::ops::label_diff::{DiffSpec, LabelDiffOptions, SideReader, diff_repo, split_ranges};
use dsv::report::Side;

use super::Ctx;
use super::output::{human_bytes, paint, print_json, quote_path, safe_text, write_paged};

/// Output formats of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable terminal output (default).
    Text,
    /// The stable JSON document (same as --json).
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
    /// One self-contained HTML page with the changed frames and their boxes.
    Html,
}

/// How objects are paired across versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Match {
    /// By id where the format's ids persist across versions (CVAT tracks), else by IoU.
    Auto,
    /// By id first, then by IoU.
    Id,
    /// By IoU only.
    Iou,
}

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Revisions: none (worktree vs HEAD), REV (worktree vs REV), A B or A..B, A...B (B against where it left A); then `-- PATH...`.
    #[arg(value_name = "REV")]
    revs: Vec<String>,
    /// Paths to limit the diff to (after `--`).
    #[arg(last = true)]
    paths: Vec<PathBuf>,
    /// Compare the index with HEAD (or REV).
    #[arg(long, alias = "cached")]
    staged: bool,
    /// Only file names with change letters (A, D, M, R), as git; labels are not read.
    #[arg(long)]
    name_status: bool,
    /// Only the names of changed files, as git; labels are not read.
    #[arg(long, conflicts_with_all = ["name_status", "stat"])]
    name_only: bool,
    /// Per-file size changes, as git's --stat; labels are not read.
    #[arg(long)]
    stat: bool,
    /// The JSON document (schema dsv.diff/1, see docs/guide/diff.md).
    #[arg(long)]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the output to FILE instead of stdout; with --format html, a DIR ending in `/` (or an existing directory) gets the review as a folder: DIR/index.html, DIR/pages/, DIR/img/.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Minimum IoU for two boxes to be the same object.
    #[arg(long, value_name = "IOU", default_value_t = 0.5)]
    iou_threshold: f64,
    /// How objects are paired across versions.
    #[arg(long = "match", value_enum, default_value = "auto")]
    matching: Match,
    /// Fail when a label file does not parse (default: warn and show it at file level).
    #[arg(long)]
    strict: bool,
    /// Compare files only; do not read label files.
    #[arg(long)]
    no_labels: bool,
    /// Units of the object boxes: `file` (the label files' own) or `pixels` (normalized boxes scaled by the size in the frame's image header, each side's image for its boxes).
    #[arg(long, value_enum, default_value = "file")]
    units: super::labels::UnitsArg,
}

/// Prints `X\tpath` lines.
pub fn print_name_status(
    ctx: &Ctx,
    out: &mut dyn Write,
    changes: &[Change],
) -> std::io::Result<()> {
    for ch in changes {
        let color = match ch.kind {
            ChangeKind::Added => "32",
            ChangeKind::Deleted => "31",
            _ => "33",
        };
        let letter = paint(ctx.color, color, &ch.kind.letter().to_string());
        match &ch.from {
            Some(from) => writeln!(
                out,
                "{letter}\t{}\t{}",
                quote_path(from),
                quote_path(&ch.path)
            )?,
            None => writeln!(out, "{letter}\t{}", quote_path(&ch.path))?,
        }
    }
    Ok(())
}

/// Prints the one-line totals.
pub fn print_summary(out: &mut dyn Write, changes: &[Change]) -> std::io::Result<()> {
    let count = |k| changes.iter().filter(|c| c.kind == k).count();
    writeln!(
        out,
        " {} changed: {} added, {} modified, {} deleted, {} renamed",
        dsv::quote::count(changes.len(), "file"),
        count(ChangeKind::Added),
        count(ChangeKind::Modified),
        count(ChangeKind::Deleted),
        count(ChangeKind::Renamed)
    )
}

/// git's `--stat`: one line per file with its size before and after, then the totals.
pub fn print_stat(out: &mut dyn Write, changes: &[Change]) -> std::io::Result<()> {
    let width = changes
        .iter()
        .map(|c| quote_path(&c.path).len())
        .max()
        .unwrap_or(0)
        .min(60);
    for ch in changes {
        let old = ch
            .old
            .map(|s| human_bytes(s.size))
            .unwrap_or_else(|| "-".into());
        let new = ch
            .new
            .map(|s| human_bytes(s.size))
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            " {:<width$} | {} {old} -> {new}",
            quote_path(&ch.path),
            ch.kind.letter()
        )?;
    }
    print_summary(out, changes)
}

/// Warns when `diff A B` compares a selection branch with the version it was cut from:
/// every frame the selection left out is then listed as removed, which is true of the
/// trees but rarely the question; `A...B` shows only what changed on the branch.
fn selection_hint(repo: &dsv::repo::Repository, revs: &[String]) {
    let [a, b] = revs else { return };
    let resolve = |r: &str| dsv::ops::revparse::resolve(repo, r).ok();
    let (Some(ca), Some(cb)) = (resolve(a), resolve(b)) else {
        return;
    };
    if let Ok(Some(_)) = dsv::object::graph::selection_base(&repo.store, ca, cb) {
        eprintln!(
            "hint: {b} is a selection cut from {a}'s history: the frames it left out are listed as removed; `dsv diff {a}...{b}` shows only what changed on {b}"
        );
    }
}

/// Whether `-o PATH` asks for a folder review: a path ending in a separator,
/// or a directory that exists (a file could not be written there anyway).
fn wants_folder(ctx: &Ctx, path: &std::path::Path) -> bool {
    let text = path.as_os_str().as_encoded_bytes();
    text.last()
        .is_some_and(|&b| std::path::is_separator(char::from(b)))
        || ctx.cwd.join(path).is_dir()
}

/// Refuses a folder review into a directory that is not empty and holds no
/// earlier review (its `index.html` written by dsv), so a mistyped path cannot
/// clobber anything: a review replaces only its own files.
fn check_folder(dir: &std::path::Path) -> anyhow::Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    if entries.next().is_none() {
        return Ok(());
    }
    // The marker is in the page's head, within its first few hundred bytes.
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(dir.join("index.html")) {
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut head);
    }
    if memchr::memmem::find(&head, br#"<meta name="generator" content="dsv">"#).is_none() {
        crate::usage!(
            "'{}' is not empty and holds no dsv review (no index.html written by dsv); give a new or empty directory",
            dir.display()
        );
    }
    Ok(())
}

/// Writes the HTML review as a folder (see [`check_folder`]).
fn write_folder(
    ctx: &Ctx,
    diff: &dsv::ops::label_diff::DatasetDiff,
    frame: dsv::report::html::FrameReader,
    dir: &std::path::Path,
) -> anyhow::Result<i32> {
    let review = dsv::report::html::render_folder(diff, frame, dir)?;
    if !ctx.quiet {
        let n =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        eprintln!(
            "wrote {} ({} on {}, {}; {} of pages, {} of images)",
            dir.join("index.html").display(),
            n(review.frames, "frame", "frames"),
            n(review.pages, "page", "pages"),
            n(review.images, "image", "images"),
            human_bytes(review.page_bytes),
            human_bytes(review.image_bytes)
        );
    }
    Ok(0)
}

/// Runs `diff`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    if !(0.0..=1.0).contains(&args.iou_threshold) || args.iou_threshold == 0.0 {
        crate::usage!(
            "--iou-threshold must be in (0, 1], got {}",
            args.iou_threshold
        );
    }
    let repo = ctx.repo(Access::Read)?;
    let scopes = dsv::ops::add::pathspecs(&repo, &ctx.cwd, &args.paths)?;
    let format = if args.json { Format::Json } else { args.format };
    let folder = match &args.output {
        Some(p) if format == Format::Html && wants_folder(ctx, p) => Some(ctx.cwd.join(p)),
        _ => None,
    };
    if let Some(dir) = &folder {
        check_folder(dir)?;
    }
    let file_level = args.name_status || args.name_only || args.stat || args.no_labels;
    let (revs, since_fork) = split_ranges(&args.revs);
    if !ctx.quiet && !since_fork {
        selection_hint(&repo, &revs);
    }
    let spec = DiffSpec {
        revs,
        since_fork,
        staged: args.staged,
        scopes,
        labels: !file_level,
        options: LabelDiffOptions {
            matching: MatchOptions {
                iou_threshold: args.iou_threshold,
                ..MatchOptions::default()
            },
            use_ids: match args.matching {
                Match::Auto => None,
                Match::Id => Some(true),
                Match::Iou => Some(false),
            },
            strict: args.strict,
        },
    };
    let mut diff = diff_repo(&repo, &spec, &ctx.progress())?;
    if args.units == super::labels::UnitsArg::Pixels {
        dsv::ops::pixels::diff_to_pixels(&repo, &mut diff)?;
    }
    if std::env::var_os("DSV_DEBUG_READS").is_some() {
        eprintln!("records read: {}", repo.store.records_read());
    }
    if !ctx.quiet && format != Format::Json {
        for w in &diff.warnings {
            eprintln!(
                "warning: {} (shown at file level; --strict makes this an error)",
                safe_text(&w.to_string())
            );
        }
        for b in &diff.invalid_boxes {
            eprintln!("warning: invalid box: {b}");
        }
    }
    let mut buf: Vec<u8> = Vec::new();
    if file_level && format != Format::Json {
        if args.stat {
            print_stat(&mut buf, &diff.files)?;
        } else if args.name_only {
            for ch in &diff.files {
                writeln!(buf, "{}", quote_path(&ch.path))?;
            }
        } else {
            print_name_status(ctx, &mut buf, &diff.files)?;
            if !args.name_status && !diff.files.is_empty() {
                print_summary(&mut buf, &diff.files)?;
            }
        }
    } else {
        match format {
            Format::Json => {
                if args.output.is_none() {
                    print_json(&diff)?;
                    return Ok(0);
                }
                serde_json::to_writer_pretty(&mut buf, &diff)?;
                buf.push(b'\n');
            }
            Format::Text => {
                let color = ctx.color && args.output.is_none();
                dsv::report::text::render(&diff, color, &mut buf)?;
            }
            Format::Markdown => dsv::report::markdown::render(&diff, &mut buf)?,
            Format::Html => {
                // One reader per side: a commit's trees are loaded once, not per frame.
                let before = SideReader::new(&repo, &diff.from)?;
                let after = SideReader::new(&repo, &diff.to)?;
                let frame = |path: &str, side: Side| {
                    let reader = match side {
                        Side::Before => &before,
                        Side::After => &after,
                    };
                    reader.read(path).ok().flatten()
                };
                if let Some(dir) = &folder {
                    return write_folder(ctx, &diff, &frame, dir);
                }
                dsv::report::html::render(&diff, &frame, &mut buf)?;
            }
        }
    }
    match &args.output {
        Some(path) => {
            let path = ctx.cwd.join(path);
            std::fs::write(&path, &buf)
                .map_err(|e| anyhow::anyhow!("writing '{}': {e}", path.display()))?;
            if !ctx.quiet {
                eprintln!("wrote {}", path.display());
            }
        }
        None => write_paged(&buf, format == Format::Text)?,
    }
    Ok(0)
}

/// Examples shown by `dsv diff --help`.
const EXAMPLES: &str = "\
Examples:
  dsv diff                           worktree against HEAD, object by object
  dsv diff --staged                  the index against HEAD
  dsv diff v1 HEAD --stat            per-file totals between two revisions
  dsv diff main...relabel            what a branch changed since it forked
  dsv diff v1 HEAD --format html -o review.html
  dsv diff HEAD~1 --json -- labels/
  dsv diff v1 HEAD --json --units pixels   YOLO boxes in pixels of their images";
