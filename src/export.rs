//! Export for training (`dsv export`): a copy of a version's frames with their
//! labels converted to one format, and a JSONL manifest for data loaders.
//!
//! Frames are hard-linked from the working tree when the file there is the
//! committed content (the index entry has the frame's id and a clean stat), so a
//! large export costs seconds; otherwise they are written from the store.
//! Layouts: COCO `images/<path>` + `annotations.json`; YOLO `images/<path>` +
//! `labels/<path>.txt` + `data.yaml`; VOC `JPEGImages/<path>` +
//! `Annotations/<path>.xml`; KITTI `image_2/<path>` + `label_2/<path>.txt`,
//! where `<path>` is the frame's path in the dataset (so names never collide).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::labels::{ExportLayout, Format, FrameLabels, LabelFormat, Units, format_of};
use crate::query::FrameRecord;
use crate::repo::Repository;

/// What an export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// Frames exported.
    pub frames: usize,
    /// Frames hard-linked from the working tree.
    pub linked: usize,
    /// Frames written from the store.
    pub written: usize,
    /// Label files written.
    pub label_files: usize,
    /// Objects left out (no box, or a box the format cannot hold), by frame.
    pub warnings: Vec<String>,
    /// Shapes the format cannot hold, per label file and kind.
    pub not_exported: Vec<NotExported>,
}

/// Shapes of one kind from one label file that an export could not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotExported {
    /// The label file(s) they come from.
    pub file: String,
    /// The shape kind ([`crate::labels::Object::kind`]).
    pub kind: &'static str,
    /// How many.
    pub count: usize,
    /// Their bounding boxes were written in their place (areas: ellipses,
    /// cuboids, masks, polygons); otherwise the objects are left out (lines
    /// and points, whose box is not the object).
    pub as_boxes: bool,
}

impl std::fmt::Display for NotExported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} shapes of kind {} in {} are not exported",
            self.count, self.kind, self.file
        )?;
        if self.as_boxes {
            f.write_str(" (their bounding boxes are)")?;
        }
        Ok(())
    }
}

/// What a format does with an object: `None` when it holds its shape,
/// else whether its bounding box is written in its place.
fn shape_loss(format: &dyn LabelFormat, o: &crate::labels::Object) -> Option<bool> {
    use crate::labels::Geometry as G;
    let thin = o.geometry.as_ref().is_some_and(G::is_thin);
    let held = match &o.geometry {
        None => true,
        // The 2D box of a KITTI object is a real box; the 3D part is KITTI's.
        Some(G::Box3d(_)) => true,
        Some(g) => format.holds(g),
    };
    (!held).then_some(!thin && o.bbox.is_some())
}

fn dirs(format: Format) -> Result<ExportLayout> {
    format_of(format).export_layout().ok_or_else(|| {
        Error::InvalidArgument(
            "export writes coco, yolo, voc or kitti (dsv has no CVAT writer)".into(),
        )
    })
}

fn with_ext(path: &str, ext: &str) -> String {
    let (dir, file) = path.rsplit_once('/').map_or(("", path), |(d, f)| (d, f));
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    if dir.is_empty() {
        format!("{stem}.{ext}")
    } else {
        format!("{dir}/{stem}.{ext}")
    }
}

/// Width and height from an image header (what YOLO <-> pixel conversion
/// needs when no label file says the size); never 0.
pub use crate::image::size as image_size;

/// Converts every box of a frame to `target` units (needs the image size).
fn to_units(fl: &mut FrameLabels, target: Units) -> std::result::Result<(), String> {
    if fl.units == target || fl.objects.iter().all(|o| o.bbox.is_none()) {
        fl.units = target;
        return Ok(());
    }
    let (Some(w), Some(h)) = (fl.width, fl.height) else {
        return Err("image size unknown: cannot convert its boxes".into());
    };
    let (sx, sy) = match target {
        Units::Pixels => (f64::from(w), f64::from(h)),
        Units::Normalized => (1.0 / f64::from(w), 1.0 / f64::from(h)),
    };
    for o in &mut fl.objects {
        if let Some(b) = o.bbox.as_mut() {
            b.x *= sx;
            b.w *= sx;
            b.y *= sy;
            b.h *= sy;
        }
    }
    fl.units = target;
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).ctx("creating", d)?;
    }
    std::fs::write(path, bytes).ctx("writing", path)
}

/// Checks the size each frame's tree entry claims (which the manifest gives)
/// against its stored object, reading record headers only: before anything is written.
pub fn check_sizes(repo: &Repository, frames: &[&FrameRecord]) -> Result<()> {
    for f in frames {
        if let Some(real) = repo.store.content_len(&f.id)? {
            crate::object::tree::check_size(f.path.as_bytes(), f.size, &f.id, real)?;
        }
    }
    Ok(())
}

/// Writes the frames (already selected) of a version to `out` with labels in `format`.
/// `out` must not exist or be empty.
pub fn export(
    repo: &Repository,
    frames: &[&FrameRecord],
    format: Format,
    out: &Path,
) -> Result<ExportReport> {
    dirs(format)?;
    check_sizes(repo, frames)?;
    if out.exists() && std::fs::read_dir(out).ctx("reading", out)?.next().is_some() {
        return Err(ExportError::NotEmpty(out.to_path_buf()).into());
    }
    // Written into a temporary directory beside the target and renamed into
    // place: a failed export leaves nothing behind.
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).ctx("creating", &parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".dsv-export-")
        .tempdir_in(&parent)
        .ctx("creating a temporary directory in", &parent)?;
    let rep = export_into(repo, frames, format, tmp.path())?;
    if out.exists() {
        std::fs::remove_dir(out).ctx("replacing", out)?;
    }
    std::fs::rename(tmp.path(), out).ctx("renaming into place", out)?;
    // The directory is `out` now: nothing for the guard to remove.
    let _ = tmp.keep();
    Ok(rep)
}

/// The frames whose boxes fail [`crate::labels::box_problem`], each with one
/// line per bad object naming its label file(s), frame and object.
pub fn box_problems(frames: &[&FrameRecord]) -> Vec<(String, Vec<String>)> {
    frames
        .iter()
        .filter_map(|f| {
            let p = crate::labels::frame_box_problems(&f.objects, f.units, (f.width, f.height));
            if p.is_empty() {
                return None;
            }
            let files = f
                .labels
                .iter()
                .map(|(l, _)| l.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let lines = p
                .into_iter()
                .map(|x| format!("{files}: frame {}: {x}", f.path))
                .collect();
            Some((f.path.clone(), lines))
        })
        .collect()
}

/// [`export`] into an existing empty directory.
fn export_into(
    repo: &Repository,
    frames: &[&FrameRecord],
    format: Format,
    out: &Path,
) -> Result<ExportReport> {
    let imp = format_of(format);
    let ExportLayout {
        images: img_dir,
        labels: lbl_dir,
        ext,
    } = dirs(format)?;
    let index = repo.index.load()?;
    let mut rep = ExportReport::default();
    let mut all_labels: Vec<FrameLabels> = Vec::new();
    let mut lost: std::collections::BTreeMap<(String, &'static str, bool), usize> =
        std::collections::BTreeMap::new();
    let classes: BTreeSet<&str> = frames
        .iter()
        .flat_map(|f| f.objects.iter().map(|o| o.class.as_str()))
        .collect();
    let names: Vec<String> = classes.into_iter().map(str::to_string).collect();
    for f in frames {
        let dest = out.join(img_dir).join(&f.path);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).ctx("creating", d)?;
        }
        let mut bytes: Option<Vec<u8>> = None;
        if linkable(repo, &index, f)
            && std::fs::hard_link(repo.worktree_path(f.path.as_bytes()), &dest).is_ok()
        {
            rep.linked += 1;
        } else {
            let b = repo.store.get(&f.id)?;
            crate::object::tree::check_size(f.path.as_bytes(), f.size, &f.id, b.len() as u64)?;
            write_file(&dest, &b)?;
            bytes = Some(b);
            rep.written += 1;
        }
        rep.frames += 1;
        let mut fl = FrameLabels {
            frame: f.path.clone(),
            width: f.width,
            height: f.height,
            units: f.units,
            attributes: f.attrs.clone(),
            objects: f.objects.clone(),
        };
        let target = imp.units();
        if fl.units != target && (fl.width.is_none() || fl.height.is_none()) {
            let b = match bytes {
                Some(b) => b,
                None => std::fs::read(&dest).ctx("reading", &dest)?,
            };
            if let Some((w, h)) = image_size(&b) {
                fl.width = Some(w);
                fl.height = Some(h);
            }
        }
        let files = || {
            f.labels
                .iter()
                .map(|(l, _)| l.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut kept = Vec::with_capacity(fl.objects.len());
        for mut o in std::mem::take(&mut fl.objects) {
            match shape_loss(imp, &o) {
                None => kept.push(o),
                Some(as_boxes) => {
                    let key = (files(), o.kind(), as_boxes);
                    *lost.entry(key).or_insert(0) += 1;
                    if as_boxes {
                        o.geometry = None;
                        kept.push(o);
                    }
                }
            }
        }
        fl.objects = kept;
        if let Err(e) = to_units(&mut fl, target) {
            rep.warnings
                .push(format!("{}: {e}; labels left out", f.path));
            fl.objects.clear();
        }
        if imp.needs_boxes() {
            let before = fl.objects.len();
            fl.objects.retain(|o| o.bbox.is_some());
            if fl.objects.len() != before {
                rep.warnings.push(format!(
                    "{}: {} without a box left out",
                    f.path,
                    crate::quote::count(before - fl.objects.len(), "object")
                ));
            }
        }
        fl.frame = imp.frame_name(&f.path).to_string();
        if imp.is_multi_frame() {
            all_labels.push(fl);
        } else {
            let bytes = imp
                .write(std::slice::from_ref(&fl), Some(&names))
                .map_err(|e| Error::Labels(format!("{}: {e}", f.path)))?;
            write_file(&out.join(lbl_dir).join(with_ext(&f.path, ext)), &bytes)?;
            rep.label_files += 1;
        }
    }
    if imp.is_multi_frame() {
        let bytes = imp
            .write(&all_labels, Some(&names))
            .map_err(|e| Error::Labels(e.to_string()))?;
        write_file(&out.join(lbl_dir), &bytes)?;
        rep.label_files += 1;
    }
    if let Some((file, bytes)) = imp.names_file(&names) {
        write_file(&out.join(file), &bytes)?;
    }
    rep.not_exported = lost
        .into_iter()
        .map(|((file, kind, as_boxes), count)| NotExported {
            file,
            kind,
            count,
            as_boxes,
        })
        .collect();
    Ok(rep)
}

/// Whether the worktree copy of a frame is the committed content.
fn linkable(
    repo: &Repository,
    index: &crate::worktree::index::IndexState,
    f: &FrameRecord,
) -> bool {
    let Some(entry) = index.entries.get(f.path.as_bytes()) else {
        return false;
    };
    if entry.id != f.id {
        return false;
    }
    match crate::worktree::scan::stat_path(repo.root(), f.path.as_bytes()) {
        Some(wf) => index.is_clean(entry, &wf.stat),
        None => false,
    }
}

/// One manifest line.
#[derive(Serialize)]
struct ManifestLine<'a> {
    path: &'a str,
    id: &'a crate::ObjectId,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    units: Units,
    labels: &'a [crate::labels::Object],
    attributes: &'a std::collections::BTreeMap<String, crate::labels::AttrValue>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    predictions: &'a [crate::meta::Prediction],
}

/// Writes the JSONL manifest of the frames to `path` (one line per frame).
pub fn manifest(frames: &[&FrameRecord], path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).ctx("creating", path)?;
    let mut w = std::io::BufWriter::new(file);
    for f in frames {
        let line = ManifestLine {
            path: &f.path,
            id: &f.id,
            size: f.size,
            width: f.width,
            height: f.height,
            units: f.units,
            labels: &f.objects,
            attributes: &f.attrs,
            predictions: &f.predictions,
        };
        serde_json::to_writer(&mut w, &line)
            .map_err(std::io::Error::from)
            .ctx("writing", path)?;
        w.write_all(b"\n").ctx("writing", path)?;
    }
    w.flush().ctx("writing", path)?;
    Ok(())
}

/// The output directory a relative `--out` names (relative to `cwd`).
pub fn out_dir(cwd: &Path, out: &Path) -> PathBuf {
    if out.is_absolute() {
        out.to_path_buf()
    } else {
        cwd.join(out)
    }
}

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `--out` names a directory with files in it.
    #[error("{}: not empty (export writes into a new or empty directory)", .0.display())]
    NotEmpty(std::path::PathBuf),
}

impl crate::error::ModuleError for ExportError {}

crate::module_error!(ExportError);
