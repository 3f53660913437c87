//! `dsv import FILE [--format cvat|labelstudio]`: an annotation tool's edited
//! file written back into the dataset's own label files.

use std::path::PathBuf;

use dsv::labels::{tool_named, tool_names, tool_of_file};
use dsv::lock::Access;
use dsv::query::{QueryCache, rev_index};

use super::Ctx;

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The annotation tool's file: CVAT for images 1.1 XML, or Label Studio
    /// JSON tasks, from `dsv export --format cvat|labelstudio` and edited.
    file: PathBuf,
    /// Its format: cvat or labelstudio (default: by its extension, .xml or .json).
    #[arg(long)]
    format: Option<String>,
    /// Import the other edits when a label file's format cannot hold the
    /// attribute edits of some objects (YOLO holds none), leaving those out
    /// with a warning listing them; without it such an import is refused.
    #[arg(long)]
    drop_attributes: bool,
    /// Print what was imported as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `import`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let name = args.file.to_string_lossy().into_owned();
    let tool = match &args.format {
        Some(f) => match tool_named(f) {
            Some(t) => t,
            None => crate::usage!("unknown import format '{f}' (expected {})", tool_names()),
        },
        None => match tool_of_file(&name) {
            Some(t) => t,
            None => crate::usage!(
                "cannot tell the format of '{name}' from its extension; give --format {}",
                tool_names()
            ),
        },
    };
    let path = dsv::export::out_dir(&ctx.cwd, &args.file);
    let bytes =
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading '{}': {e}", path.display()))?;
    let repo = ctx.repo(Access::Write)?;
    let cache = QueryCache::open(repo.dsv_dir(), &repo.settings);
    let (_, index) = rev_index(&repo, "HEAD", &cache)?;
    let r = dsv::export::import::import(
        repo.root(),
        &index,
        tool,
        &name,
        &bytes,
        args.drop_attributes,
    )?;
    for w in &r.warnings {
        eprintln!("warning: {}", super::output::safe_text(w));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    }
    if !ctx.quiet {
        eprintln!(
            "{} read, {} changed, {} written (see dsv diff)",
            dsv::quote::count(r.frames, "frame"),
            r.changed.len(),
            dsv::quote::count(r.files.len(), "label file")
        );
    }
    Ok(0)
}

/// Examples shown by `dsv import --help`.
const EXAMPLES: &str = "\
Examples:
  dsv export --format labelstudio --out /data/to-label
  dsv import ~/Downloads/project-1-at-2026-12-07.json
  dsv import /data/to-label/annotations.xml --format cvat
  dsv diff";
