//! Reading label files from disk as dsv sees them (`dsv labels`): which format,
//! which frames, which objects. Useful to check detection and `dsv.toml` rules,
//! and to measure parsing on its own.

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::labels::layout::{FileSource, Layout, Role};
use crate::labels::{Format, FrameLabels};
use crate::ops::sources::WorktreeSource;

/// A label file as parsed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspected {
    /// The path as given.
    pub path: String,
    /// The format used.
    pub format: Format,
    /// Its frames.
    pub frames: Vec<FrameLabels>,
}

/// Parses a label file on disk. `root` is the dataset root (rules of its
/// `dsv.toml` and class-name files apply); `format` overrides detection.
pub fn inspect_file(root: &Path, file: &Path, format: Option<Format>) -> Result<Inspected> {
    let bytes = std::fs::read(file).ctx("reading", file)?;
    let src = WorktreeSource::new(root.to_path_buf());
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let rel = file
        .strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/");
    let format = match format {
        Some(f) => f,
        None => match layout.role(&rel, &bytes) {
            Role::Label(f) => f,
            _ => {
                return Err(Error::Labels(format!(
                    "{}: not recognized as a label file (use --format to say which it is)",
                    file.display()
                )));
            }
        },
    };
    let frames = layout
        .parse(&src as &dyn FileSource, &rel, format, &bytes)?
        .map_err(|(f, e)| Error::Labels(format!("{f}: {e}")))?;
    Ok(Inspected {
        path: file.display().to_string(),
        format,
        frames,
    })
}
