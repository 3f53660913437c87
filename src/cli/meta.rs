//! `dsv meta set|unset|import`: edit the frame-metadata sidecar in the working tree.

use std::path::PathBuf;

use dsv::meta;

use super::Ctx;

/// Arguments of `meta`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Set attributes on frames: `dsv meta set PATH... key=value...`, or on the frames
    /// a query selects (`--where`) or a file lists (`--paths-from`).
    #[command(after_long_help = SET_EXAMPLES)]
    Set {
        /// Frame paths (none with --where or --paths-from), then key=value pairs.
        #[arg(required = true, num_args = 1.., value_name = "PATH|KEY=VALUE")]
        items: Vec<String>,
        /// Also every frame this CEL expression selects (as `dsv query`), in the
        /// revision of --rev.
        #[arg(long = "where", value_name = "EXPR")]
        where_: Option<String>,
        /// The revision --where queries (default HEAD).
        #[arg(long, value_name = "REV", requires = "where_", default_value = "HEAD")]
        rev: String,
        /// Also every frame FILE lists, one repository path a line (`-`: standard input).
        #[arg(long, value_name = "FILE")]
        paths_from: Option<PathBuf>,
    },
    /// Remove attributes from frames: `dsv meta unset PATH... key...` (keys after `--keys`).
    #[command(after_long_help = "\
Examples:
  dsv meta unset images/0001.jpg --keys weather
  dsv meta unset images/*.jpg -k weather lux")]
    Unset {
        /// Frame paths.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Attribute names to remove.
        #[arg(long = "keys", short = 'k', required = true, num_args = 1..)]
        keys: Vec<String>,
    },
    /// Store model predictions (JSONL: frame, class, box {x, y, w, h} top-left, score) as metadata.
    #[command(after_long_help = "\
Examples:
  dsv meta import predictions.jsonl")]
    Import {
        /// The predictions file.
        file: PathBuf,
    },
}

const SET_EXAMPLES: &str = "\
Examples:
  dsv meta set images/0001.jpg images/0002.jpg weather=rain
  dsv meta set --where 'objects.exists(o, o.class == \"umbrella\")' weather=rain
  dsv query 'attrs.split == \"val\"' | dsv meta set --paths-from - reviewed=true
  dsv meta set --paths-from model_flags.txt needs_review=true";

/// Runs `meta`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let rel = |p: &std::path::Path| -> anyhow::Result<String> {
        let bytes = repo.repo_path(&ctx.cwd, p)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let edit = match args.action {
        Action::Set {
            items,
            where_,
            rev,
            paths_from,
        } => {
            let split = items
                .iter()
                .position(|s| s.contains('='))
                .unwrap_or(items.len());
            let listed = where_.is_some() || paths_from.is_some();
            if split == items.len() || (split == 0 && !listed) {
                crate::usage!(
                    "meta set takes frame paths (or --where EXPR, --paths-from FILE), then key=value pairs"
                );
            }
            // Assignments and the expression are checked before anything is read.
            let values = items[split..]
                .iter()
                .map(|kv| meta::parse_assignment(kv))
                .collect::<dsv::Result<Vec<_>>>()?;
            let query = where_
                .as_deref()
                .map(dsv::query::Query::compile)
                .transpose()?;
            let mut paths = items[..split]
                .iter()
                .map(|p| rel(std::path::Path::new(p)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(file) = &paths_from {
                let (name, bytes) = if file.as_os_str() == "-" {
                    let mut b = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut b)
                        .map_err(|e| anyhow::anyhow!("reading standard input: {e}"))?;
                    ("stdin".to_string(), b)
                } else {
                    let path = ctx.cwd.join(file);
                    let b = std::fs::read(&path)
                        .map_err(|e| anyhow::anyhow!("reading '{}': {e}", path.display()))?;
                    (file.display().to_string(), b)
                };
                paths.extend(dsv::ops::meta_edit::read_path_list(&repo, &name, &bytes)?);
            }
            if let Some(q) = &query {
                let cache = dsv::query::QueryCache::open(repo.dsv_dir(), &repo.settings);
                let (_, index) = dsv::query::rev_query(&repo, &rev, &cache, q)?;
                super::query::warn_invalid(&index);
                paths.extend(index.frames.iter().map(|f| f.path.clone()));
            }
            if paths.is_empty() {
                if !ctx.quiet {
                    eprintln!("no frames selected; nothing changed");
                }
                return Ok(0);
            }
            dsv::ops::meta_edit::set(repo.root(), &paths, &values)?
        }
        Action::Unset { paths, keys } => {
            let paths = paths
                .iter()
                .map(|p| rel(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            dsv::ops::meta_edit::unset(repo.root(), &paths, &keys)?
        }
        Action::Import { file } => {
            let path = ctx.cwd.join(&file);
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading '{}': {e}", path.display()))?;
            dsv::ops::meta_edit::import_predictions(
                repo.root(),
                &file.display().to_string(),
                &bytes,
            )?
        }
    };
    if !ctx.quiet {
        eprintln!(
            "{}: {} changed (stage it with `dsv add {}`)",
            edit.sidecar,
            dsv::quote::count(edit.changed, "frame"),
            edit.sidecar
        );
    }
    Ok(0)
}

/// Examples shown by `dsv meta --help`.
const EXAMPLES: &str = "\
Examples:
  dsv meta set images/0001.jpg weather=rain
  dsv meta set --where 'objects.exists(o, o.class == \"umbrella\")' weather=rain
  dsv meta unset images/0001.jpg --keys weather
  dsv meta import predictions.jsonl";
