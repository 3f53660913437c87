//! `--units pixels`: the boxes of `dsv labels`, `dsv query --json` and
//! `dsv diff` in pixels whatever the format, normalized boxes (YOLO) scaled
//! by the size in their frame's image header. A frame whose image is missing
//! or unreadable is an error naming it: no box is left unconverted.

use crate::error::{ErrorKind, ModuleError, Result};
use crate::labels::units::{needs_image_size, scale_box, to_pixels};
use crate::labels::{Format, FrameLabels, Units};
use crate::layout::{FileSource, Layout};
use crate::ops::label_diff::{DatasetDiff, SideReader};
use crate::quote::path_str as quote;
use crate::worktree::sources::WorktreeSource;

/// Why boxes cannot be given in pixels.
#[derive(Debug, thiserror::Error)]
pub enum PixelsError {
    /// A frame with normalized boxes whose image file is not found.
    #[error(
        "{label}: frame {frame}: no image file found for it, so its normalized boxes cannot be given in pixels"
    )]
    NoImage {
        /// The label file.
        label: String,
        /// The frame, as the label file names it.
        frame: String,
    },
    /// An image whose header gives no size.
    #[error(
        "{image}: the image size cannot be read from its header (PNG, JPEG, GIF, WebP or BMP), so the normalized boxes of its frame cannot be given in pixels"
    )]
    Unreadable {
        /// The image file.
        image: String,
    },
}

impl ModuleError for PixelsError {
    fn kind(&self) -> ErrorKind {
        match self {
            PixelsError::NoImage { .. } => ErrorKind::NotFound,
            PixelsError::Unreadable { .. } => ErrorKind::Damaged,
        }
    }
}

crate::error::module_error!(PixelsError);

/// The size an image's header gives (an error naming `image` when it gives none).
pub(crate) fn header_size(bytes: &[u8], image: &str) -> Result<(u32, u32)> {
    crate::image::size(bytes).ok_or_else(|| {
        PixelsError::Unreadable {
            image: quote(image).into_owned(),
        }
        .into()
    })
}

/// Label-file frames in pixels: each frame's image is found as `layout`
/// pairs frames with the label file `rel` (a `format` file) in `src`, the
/// working tree.
pub fn labels_to_pixels(
    src: &WorktreeSource,
    layout: &Layout,
    rel: &str,
    format: Format,
    frames: &mut [FrameLabels],
) -> Result<()> {
    for f in frames.iter_mut().filter(|f| needs_image_size(f)) {
        let no_image = || PixelsError::NoImage {
            label: quote(rel).into_owned(),
            frame: quote(&f.frame).into_owned(),
        };
        let path = layout
            .frame_path(src as &dyn FileSource, rel, format, &f.frame)?
            .ok_or_else(no_image)?;
        let bytes = src.read(&path)?.ok_or_else(no_image)?;
        let size = header_size(&bytes, &path)?;
        to_pixels(f, size);
    }
    Ok(())
}

/// A diff's object changes in pixels: boxes before by the image of the old
/// side, boxes after by the new side's (the other side's when a side lacks
/// the image). Prediction changes stay in the sidecar's units, which it
/// does not say.
pub fn diff_to_pixels(repo: &crate::Repository, diff: &mut DatasetDiff) -> Result<()> {
    let old = SideReader::new(repo, &diff.from)?;
    let new = SideReader::new(repo, &diff.to)?;
    let size = |side: &SideReader, path: &str| -> Result<Option<(u32, u32)>> {
        side.read(path)?.map(|b| header_size(&b, path)).transpose()
    };
    for l in &mut diff.labels {
        for f in &mut l.frames {
            let boxed = !f.unchanged.is_empty()
                || f.changes
                    .iter()
                    .any(|c| c.before.is_some() || c.after.is_some());
            if f.units != Units::Normalized || !boxed {
                continue;
            }
            let no_image = || PixelsError::NoImage {
                label: quote(&l.path).into_owned(),
                frame: quote(&f.frame).into_owned(),
            };
            let path = f.frame_path.clone().ok_or_else(no_image)?;
            let (before, after) = match (size(&old, &path)?, size(&new, &path)?) {
                (Some(a), Some(b)) => (a, b),
                (Some(a), None) => (a, a),
                (None, Some(b)) => (b, b),
                (None, None) => return Err(no_image().into()),
            };
            let scale = |b: &mut crate::labels::BBox, (w, h): (u32, u32)| {
                scale_box(b, f64::from(w), f64::from(h));
            };
            for c in &mut f.changes {
                if let Some(b) = c.before.as_mut() {
                    scale(b, before);
                }
                if let Some(b) = c.after.as_mut() {
                    scale(b, after);
                }
            }
            for (_, b) in &mut f.unchanged {
                scale(b, after);
            }
            f.width = Some(after.0);
            f.height = Some(after.1);
            f.units = Units::Pixels;
        }
    }
    Ok(())
}
