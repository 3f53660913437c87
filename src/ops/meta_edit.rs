//! `dsv meta set`, `unset` and `import`: edits of the working tree's frame-metadata
//! sidecar, read and written whole through directory handles (a failure leaves the
//! old file). The sidecar's format and parsing live in [`crate::meta`].

use std::path::Path;

use crate::error::{Error, Result};
use crate::labels::AttrValue;
use crate::labels::layout::{FileSource, Layout};
use crate::meta::{Sidecar, SidecarFormat, check_key, parse_predictions, sidecar_path};
use crate::worktree::sources::WorktreeSource;
use crate::worktree::write::write_bytes;

/// What an edit of the sidecar did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MetaEdit {
    /// The sidecar written (root-relative).
    pub sidecar: String,
    /// Frames whose row changed.
    pub changed: usize,
}

/// Reads the worktree sidecar of the dataset at `root` (empty when absent).
fn load_worktree(root: &Path) -> Result<(String, Sidecar)> {
    let src = WorktreeSource::new(root.to_path_buf());
    let layout = Layout::load(&src)?.map_err(|e| Error::Metadata(e.to_string()))?;
    let name = sidecar_path(&layout.toml, &|p| src.exists(p))?;
    let sidecar = match src.read(&name)? {
        Some(b) => Sidecar::parse(&name, &b)?,
        None => Sidecar::default(),
    };
    Ok((name, sidecar))
}

/// Writes the sidecar back through a temporary file, so a failure leaves the old one.
fn save_worktree(root: &Path, name: &str, sidecar: &Sidecar) -> Result<()> {
    let bytes = sidecar.write(SidecarFormat::of(name))?;
    // Through directory handles: a symlink swapped into the path cannot redirect it.
    write_bytes(root, name.as_bytes(), &bytes)?;
    Ok(())
}

fn check_frames(root: &Path, paths: &[String]) -> Result<()> {
    for p in paths {
        if !root.join(p).is_file() {
            return Err(Error::Metadata(format!(
                "{p}: no such file in the working tree"
            )));
        }
    }
    Ok(())
}

/// `dsv meta set`: sets attributes on frames (root-relative paths) in the worktree sidecar.
pub fn set(root: &Path, paths: &[String], values: &[(String, AttrValue)]) -> Result<MetaEdit> {
    check_frames(root, paths)?;
    let (name, mut sc) = load_worktree(root)?;
    let mut changed = 0;
    for p in paths {
        let row = sc.rows.entry(p.clone()).or_default();
        let before = row.clone();
        for (k, v) in values {
            row.attrs.insert(k.clone(), v.clone());
        }
        changed += usize::from(*row != before);
    }
    save_worktree(root, &name, &sc)?;
    Ok(MetaEdit {
        sidecar: name,
        changed,
    })
}

/// `dsv meta unset`: removes attributes from frames in the worktree sidecar.
pub fn unset(root: &Path, paths: &[String], keys: &[String]) -> Result<MetaEdit> {
    for k in keys {
        check_key(k)?;
    }
    let (name, mut sc) = load_worktree(root)?;
    let mut changed = 0;
    for p in paths {
        if let Some(row) = sc.rows.get_mut(p) {
            let n = row.attrs.len();
            for k in keys {
                row.attrs.remove(k);
            }
            changed += usize::from(row.attrs.len() != n);
            if row.is_empty() {
                sc.rows.remove(p);
            }
        }
    }
    save_worktree(root, &name, &sc)?;
    Ok(MetaEdit {
        sidecar: name,
        changed,
    })
}

/// `dsv meta import`: replaces the predictions of every frame named in the file.
pub fn import_predictions(root: &Path, name: &str, bytes: &[u8]) -> Result<MetaEdit> {
    let preds = parse_predictions(name, bytes)?;
    let frames: Vec<String> = preds.keys().cloned().collect();
    check_frames(root, &frames)?;
    let (sidecar, mut sc) = load_worktree(root)?;
    if SidecarFormat::of(&sidecar) == SidecarFormat::Csv {
        return Err(Error::Metadata(format!(
            "{sidecar}: predictions need a JSONL sidecar (set [metadata] path = \"meta.jsonl\" in dsv.toml)"
        )));
    }
    let changed = preds.len();
    for (frame, p) in preds {
        sc.rows.entry(frame).or_default().predictions = p;
    }
    save_worktree(root, &sidecar, &sc)?;
    Ok(MetaEdit { sidecar, changed })
}
