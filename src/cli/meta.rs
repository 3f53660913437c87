//! `dsv meta set|unset|import`: edit the frame-metadata sidecar in the working tree.

use std::path::PathBuf;

use dsv::meta;

use super::Ctx;

/// Arguments of `meta`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Set attributes on frames: `dsv meta set PATH... key=value...`.
    Set {
        /// Frame paths, then key=value pairs.
        #[arg(required = true, num_args = 2..)]
        items: Vec<String>,
    },
    /// Remove attributes from frames: `dsv meta unset PATH... key...` (keys after `--keys`).
    Unset {
        /// Frame paths.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Attribute names to remove.
        #[arg(long = "keys", short = 'k', required = true, num_args = 1..)]
        keys: Vec<String>,
    },
    /// Store model predictions (JSONL: frame, class, box {x, y, w, h} top-left, score) as metadata.
    Import {
        /// The predictions file.
        file: PathBuf,
    },
}

/// Runs `meta`.
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let repo = ctx.writable_repo()?;
    let rel = |p: &std::path::Path| -> anyhow::Result<String> {
        let bytes = repo.repo_path(&ctx.cwd, p)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let edit = match args.action {
        Action::Set { items } => {
            let split = items
                .iter()
                .position(|s| s.contains('='))
                .unwrap_or(items.len());
            if split == 0 || split == items.len() {
                crate::usage!("meta set takes frame paths, then key=value pairs");
            }
            let paths = items[..split]
                .iter()
                .map(|p| rel(std::path::Path::new(p)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let values = items[split..]
                .iter()
                .map(|kv| meta::parse_assignment(kv))
                .collect::<dsv::Result<Vec<_>>>()?;
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
            "{}: {} frame{} changed (stage it with `dsv add {}`)",
            edit.sidecar,
            edit.changed,
            if edit.changed == 1 { "" } else { "s" },
            edit.sidecar
        );
    }
    Ok(0)
}
