//! `dsv meta set`, `unset` and `import`: edits of the working tree's frame-metadata
//! sidecar, read and written whole through directory handles (a failure leaves the
//! old file). The sidecar's format and parsing live in [`crate::meta`].

use std::path::Path;

use crate::error::{Error, Result};
use crate::labels::AttrValue;
use crate::layout::{FileSource, Layout};
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

/// A line of a frame list (`dsv meta set --paths-from`) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaEditError {
    /// The line names a path that is not a file in the working tree.
    #[error("{file}:{line}: {path}: no such frame in the working tree")]
    UnknownPath {
        /// The list (its path, or "stdin").
        file: String,
        /// 1-based line.
        line: usize,
        /// The path as the line gives it (escaped for the terminal).
        path: String,
    },
    /// The line names a path outside the repository or inside `.dsv`, or is not UTF-8.
    #[error("{file}:{line}: {reason}")]
    BadPath {
        /// The list (its path, or "stdin").
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl crate::error::ModuleError for MetaEditError {}

crate::error::module_error!(MetaEditError);

/// The frames a list names, one repository path a line (as `dsv query` prints
/// them; blank lines and a trailing CR skipped), checked to be files of the
/// working tree, in list order without repeats. `name` is the list's name for
/// errors.
pub fn read_path_list(
    repo: &crate::Repository,
    name: &str,
    bytes: &[u8],
) -> std::result::Result<Vec<String>, MetaEditError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let bad = |reason: String| MetaEditError::BadPath {
            file: name.to_string(),
            line,
            reason,
        };
        let text = std::str::from_utf8(raw).map_err(|_| {
            bad(format!(
                "{}: not UTF-8",
                crate::quote::short(&String::from_utf8_lossy(raw))
            ))
        })?;
        if Path::new(text).is_absolute() {
            return Err(bad(format!(
                "{}: a frame list holds repository paths, not absolute ones",
                crate::quote::short(text)
            )));
        }
        let rel = repo
            .repo_path(repo.root(), Path::new(text))
            .map_err(|e| bad(e.to_string()))?;
        let path = String::from_utf8_lossy(&rel).into_owned();
        if path.is_empty() || !repo.root().join(&path).is_file() {
            return Err(MetaEditError::UnknownPath {
                file: name.to_string(),
                line,
                path: crate::quote::short(text),
            });
        }
        if seen.insert(path.clone()) {
            out.push(path);
        }
    }
    Ok(out)
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
