//! `dsv import`: an annotation tool's edited file (one of
//! [`crate::labels::TOOLS`], which reads it) written back into the dataset's
//! own label files, in their own format and layout, in the working tree.
//!
//! Each frame of the file is named by its dataset path (what `dsv export
//! --format TOOL` writes). Its objects are paired with the label file's (as
//! `dsv diff` pairs them); an object the annotator did not change is kept as
//! it was, byte for byte where the writer allows, so `dsv diff` then shows
//! exactly the edits. Nothing is written unless every frame imports.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::labels::compare::{MatchOptions, object_change, pair_objects};
use crate::labels::tool::{AnnotationTool, Handed};
use crate::labels::{AttrValue, BBox, Format, Object, Units, format_of};
use crate::layout::{FileSource, Layout};
use crate::query::FrameIndex;
use crate::worktree::sources::WorktreeSource;

/// A failure particular to import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file does not parse as the format.
    #[error("{file}: {message}")]
    Parse {
        /// The imported file.
        file: String,
        /// What is wrong, and where.
        message: String,
    },
    /// A frame of the file is not a frame of the dataset.
    #[error("{file}: frame {frame:?} is not a frame of HEAD")]
    UnknownFrame {
        /// The imported file.
        file: String,
        /// The frame.
        frame: String,
    },
    /// A frame appears twice in the file.
    #[error("{file}: frame {frame:?} appears twice")]
    Duplicate {
        /// The imported file.
        file: String,
        /// The frame.
        frame: String,
    },
    /// A frame has labels to write but no label file to write them to.
    #[error(
        "frame {frame:?} has no label file in HEAD: import cannot tell where its {count} object(s) go (add a label file for it first)"
    )]
    NoLabelFile {
        /// The frame.
        frame: String,
        /// Objects imported for it.
        count: usize,
    },
    /// A frame is described by more than one label file.
    #[error("frame {frame:?} is described by {files}: import cannot tell which to write")]
    ManyLabelFiles {
        /// The frame.
        frame: String,
        /// The label files.
        files: String,
    },
    /// A label file of HEAD is missing or changed beyond recognition in the working tree.
    #[error("{file}: {message}")]
    LabelFile {
        /// The label file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// An imported box does not fit the image, or cannot be converted.
    #[error("{file}: frame {frame:?}: {message}")]
    BadBox {
        /// The imported file.
        file: String,
        /// The frame.
        frame: String,
        /// What is wrong with which object.
        message: String,
    },
    /// Attribute edits the label file's format cannot hold (YOLO holds none).
    #[error(
        "{file} ({format}) cannot hold the attribute edits of {count} object(s) (--drop-attributes imports the rest without them); nothing written:{list}"
    )]
    AttributesNotHeld {
        /// The label file.
        file: String,
        /// Its format.
        format: &'static str,
        /// How many objects.
        count: usize,
        /// One line per object: frame, object, attributes.
        list: String,
    },
    /// The label file's writer refused the frame (a class not in its names list...).
    #[error("{file}: {message}")]
    Write {
        /// The label file.
        file: String,
        /// The writer's message.
        message: String,
    },
}

impl crate::error::ModuleError for ImportError {}

crate::error::module_error!(ImportError);

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Frames in the imported file.
    pub frames: usize,
    /// Frames whose labels changed.
    pub changed: Vec<String>,
    /// Label files written.
    pub files: Vec<String>,
    /// Things left out, said once each (tasks without an annotation...).
    pub warnings: Vec<String>,
}

/// Scales a box's coordinates.
fn scaled(b: &BBox, sx: f64, sy: f64) -> BBox {
    BBox {
        x: b.x * sx,
        y: b.y * sy,
        w: b.w * sx,
        h: b.h * sy,
    }
}

/// Sets the attributes an annotator edited: those the tool holds
/// ([`AnnotationTool::attributes`]) become `want`; others stay as they were.
/// One the annotator cleared is gone, or the value the tool means by its
/// absence ([`AnnotationTool::cleared`]).
fn set_attributes(o: &mut Object, want: &BTreeMap<String, AttrValue>, tool: &dyn AnnotationTool) {
    for k in tool.attributes(o).keys() {
        if !want.contains_key(k) {
            match tool.cleared(k) {
                Some(v) => o.attributes.insert(k.clone(), v),
                None => o.attributes.remove(k),
            };
        }
    }
    for (k, v) in want {
        o.attributes.insert(k.clone(), v.clone());
    }
}

/// An object whose attributes the import set: its index in the frame's
/// merged objects and the attributes it must hold.
type AttrEdit = (usize, BTreeMap<String, AttrValue>);

/// The objects of a frame after an import, and those whose attributes it set.
type Merged = (Vec<Object>, Vec<AttrEdit>);

/// What an import compares of an object: its class and box, and its shape
/// where the tool holds shapes. Attributes are compared apart
/// ([`AnnotationTool::attributes`]).
fn seen(o: &Object, tool: &dyn AnnotationTool) -> Object {
    let mut v = Object::new(o.class.clone(), o.bbox);
    if tool.holds_shapes() {
        v.geometry = o.geometry.clone();
    }
    v
}

/// The objects of `original` (in `units`, image `size`) after the edits
/// `incoming` (pixels) holds, or `None` when there are none. Objects the
/// annotator did not change are kept as they were.
fn merged(
    original: &[Object],
    units: Units,
    size: Option<(u32, u32)>,
    incoming: &[Object],
    tool: &dyn AnnotationTool,
) -> std::result::Result<Option<Merged>, String> {
    let (sx, sy) = match (units, size) {
        (Units::Pixels, _) => (1.0, 1.0),
        (Units::Normalized, Some((w, h))) => (f64::from(w), f64::from(h)),
        (Units::Normalized, None) => {
            return Err("image size unknown: cannot convert pixel boxes to normalized ones".into());
        }
    };
    let old: Vec<Object> = original
        .iter()
        .map(|o| {
            let mut v = seen(o, tool);
            v.bbox = v.bbox.map(|b| scaled(&b, sx, sy));
            v
        })
        .collect();
    let new: Vec<Object> = incoming.iter().map(|o| seen(o, tool)).collect();
    // Boxes closer than a thousandth of a pixel are the same box: what
    // printing floats (a YOLO file's six decimals) moves them by.
    let opts = MatchOptions {
        epsilon: 1e-3,
        ..MatchOptions::default()
    };
    let pairs = pair_objects(&old, &new, &opts);
    let mut taken = vec![false; new.len()];
    let mut changed = false;
    let mut out = Vec::with_capacity(new.len());
    let mut edits: Vec<AttrEdit> = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let Some(j) = *p else {
            changed = true;
            continue;
        };
        taken[j] = true;
        let inc = &incoming[j];
        let want = tool.attributes(inc);
        let attrs_same = tool.attributes(&original[i]) == want;
        let moved = object_change(&old[i], &new[j], &opts).is_some();
        if !moved && attrs_same {
            out.push(original[i].clone());
            continue;
        }
        changed = true;
        let mut o = original[i].clone();
        if !attrs_same {
            set_attributes(&mut o, &want, tool);
            edits.push((out.len(), want));
        }
        if !moved {
            out.push(o);
            continue;
        }
        o.class = inc.class.clone();
        o.bbox = inc.bbox.map(|b| scaled(&b, 1.0 / sx, 1.0 / sy));
        if tool.holds_shapes() {
            if inc.geometry.is_some() && units != Units::Pixels {
                return Err(format!(
                    "object {:?}: a {} can be imported into a label file with pixel boxes only",
                    inc.class,
                    inc.kind()
                ));
            }
            o.geometry = inc.geometry.clone();
        } else if o.geometry.is_some() {
            // The tool moved the box of a shape it does not hold: the shape is gone.
            o.geometry = None;
        }
        out.push(o);
    }
    for (j, inc) in incoming.iter().enumerate() {
        if taken[j] {
            continue;
        }
        changed = true;
        if inc.geometry.is_some() && units != Units::Pixels {
            return Err(format!(
                "object {:?}: a {} can be imported into a label file with pixel boxes only",
                inc.class,
                inc.kind()
            ));
        }
        let mut o = inc.clone();
        o.bbox = inc.bbox.map(|b| scaled(&b, 1.0 / sx, 1.0 / sy));
        let want = tool.attributes(inc);
        o.attributes = crate::labels::Attributes::default();
        set_attributes(&mut o, &want, tool);
        if !want.is_empty() {
            edits.push((out.len(), want));
        }
        out.push(o);
    }
    Ok(changed.then_some((out, edits)))
}

/// The size in an image file's header (its first 256 KiB), if any.
fn header_size(path: &Path) -> Option<(u32, u32)> {
    use std::io::Read;
    let mut head = Vec::with_capacity(1 << 18);
    std::fs::File::open(path)
        .ok()?
        .take(1 << 18)
        .read_to_end(&mut head)
        .ok()?;
    crate::image::size(&head)
}

/// Imports `bytes` (the file `file`, from `tool`) into the working tree at
/// `root`, against `index` (HEAD's frames: which label files describe each).
/// Attribute edits a label file's format cannot hold are refused, or with
/// `drop_attributes` left out with a warning.
pub fn import(
    root: &Path,
    index: &FrameIndex,
    tool: &dyn AnnotationTool,
    file: &str,
    bytes: &[u8],
    drop_attributes: bool,
) -> Result<ImportReport> {
    let mut rep = ImportReport::default();
    let incoming = tool
        .read(bytes, &mut rep.warnings)
        .map_err(|message| ImportError::Parse {
            file: file.to_string(),
            message,
        })?;
    rep.frames = incoming.len();
    let by_path: HashMap<&str, &crate::query::FrameRecord> =
        index.frames.iter().map(|f| (f.path.as_str(), f)).collect();
    // Frames by label file, in file order.
    let mut by_file: BTreeMap<(String, Format), Vec<&Handed>> = BTreeMap::new();
    let mut seen_paths = std::collections::HashSet::new();
    for inc in &incoming {
        if !seen_paths.insert(inc.path.as_str()) {
            return Err(ImportError::Duplicate {
                file: file.into(),
                frame: inc.path.clone(),
            }
            .into());
        }
        let rec = by_path
            .get(inc.path.as_str())
            .ok_or_else(|| ImportError::UnknownFrame {
                file: file.into(),
                frame: inc.path.clone(),
            })?;
        match rec.labels.as_slice() {
            [] if inc.objects.is_empty() => {}
            [] => {
                return Err(ImportError::NoLabelFile {
                    frame: inc.path.clone(),
                    count: inc.objects.len(),
                }
                .into());
            }
            [one] => by_file.entry(one.clone()).or_default().push(inc),
            many => {
                return Err(ImportError::ManyLabelFiles {
                    frame: inc.path.clone(),
                    files: many
                        .iter()
                        .map(|(p, _)| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into());
            }
        }
    }
    let src = WorktreeSource::new(root.to_path_buf());
    let layout = match Layout::load(&src)? {
        Ok(l) => l,
        Err(e) => {
            return Err(ImportError::LabelFile {
                file: crate::dsv_toml::FILE_NAME.into(),
                message: e.to_string(),
            }
            .into());
        }
    };
    let mut writes: Vec<(String, Vec<u8>)> = Vec::new();
    for ((label, lformat), frames) in &by_file {
        let lf = |message: String| ImportError::LabelFile {
            file: label.clone(),
            message,
        };
        let old = src
            .read(label)?
            .ok_or_else(|| lf("missing in the working tree".into()))?;
        let mut parsed = layout
            .parse(&src, label, *lformat, &old)?
            .map_err(|(f, e)| ImportError::LabelFile {
                file: f,
                message: e.to_string(),
            })?;
        let originals = parsed.clone();
        let imp = format_of(*lformat);
        let mut any = false;
        // Per frame of the file (by index), the objects whose attributes were set.
        let mut attr_edits: Vec<(usize, &str, Vec<AttrEdit>)> = Vec::new();
        for inc in frames {
            let k = if imp.is_multi_frame() {
                let mut hit = None;
                for (k, fl) in parsed.iter().enumerate() {
                    if layout
                        .frame_path(&src, label, *lformat, &fl.frame)?
                        .as_deref()
                        == Some(inc.path.as_str())
                    {
                        hit = Some(k);
                        break;
                    }
                }
                hit.ok_or_else(|| lf(format!("no entry for frame {:?}", inc.path)))?
            } else if parsed.len() == 1 {
                0
            } else {
                return Err(lf(format!("{} frames in a one-frame file", parsed.len())).into());
            };
            let fl = &mut parsed[k];
            let rec = by_path[inc.path.as_str()];
            // A frame whose regions were all deleted may say no size (a
            // Label Studio task): the image's header in the working tree does.
            let size = fl
                .width
                .zip(fl.height)
                .or(rec.width.zip(rec.height))
                .or(inc.size)
                .or_else(|| header_size(&root.join(&inc.path)));
            let boxed = |message: String| ImportError::BadBox {
                file: file.into(),
                frame: inc.path.clone(),
                message,
            };
            let Some((objects, edits)) =
                merged(&fl.objects, fl.units, size, &inc.objects, tool).map_err(boxed)?
            else {
                continue;
            };
            if !edits.is_empty() {
                attr_edits.push((k, inc.path.as_str(), edits));
            }
            let check = size.or(inc.size);
            let problems = crate::labels::frame_box_problems(
                &objects,
                fl.units,
                (check.map(|s| s.0), check.map(|s| s.1)),
            );
            if let Some(p) = problems.first() {
                return Err(boxed(p.clone()).into());
            }
            fl.objects = objects;
            any = true;
            rep.changed.push(inc.path.clone());
        }
        if !any {
            continue;
        }
        let names = if imp.uses_class_names() {
            layout
                .class_names(&src, label)?
                .map_err(|(f, e)| ImportError::LabelFile {
                    file: f,
                    message: e.to_string(),
                })?
        } else {
            None
        };
        let bytes = imp
            .write_like(
                (old.as_slice(), originals.as_slice()),
                &[],
                &parsed,
                names.as_deref().map(|n| n.names.as_slice()),
            )
            .map_err(|e| ImportError::Write {
                file: label.clone(),
                message: e.to_string(),
            })?;
        if !attr_edits.is_empty() {
            // What the file holds is what it parses back to: an attribute
            // that does not come back was not stored.
            let back = layout.parse(&src, label, *lformat, &bytes)?.ok();
            let mut lost = Vec::new();
            for (k, path, edits) in &attr_edits {
                let objects = back.as_ref().and_then(|b| b.get(*k)).map(|f| &f.objects);
                for (i, want) in edits {
                    let held = objects.and_then(|o| o.get(*i));
                    let missing: Vec<String> = want
                        .iter()
                        .filter(|(key, v)| held.and_then(|o| o.attributes.get(key)) != Some(*v))
                        .map(|(key, v)| format!("{key}={v}"))
                        .collect();
                    if !missing.is_empty() {
                        let class = &parsed[*k].objects[*i].class;
                        lost.push(format!(
                            "frame {path}: object {} ({class}): {}",
                            i + 1,
                            missing.join(", ")
                        ));
                    }
                }
            }
            if !lost.is_empty() {
                if !drop_attributes {
                    return Err(ImportError::AttributesNotHeld {
                        file: label.clone(),
                        format: imp.name(),
                        count: lost.len(),
                        list: lost.iter().map(|l| format!("\n  {l}")).collect(),
                    }
                    .into());
                }
                rep.warnings.push(format!(
                    "{label} ({}) cannot hold these attribute edits, left out:{}",
                    imp.name(),
                    lost.iter().map(|l| format!("\n  {l}")).collect::<String>()
                ));
            }
        }
        writes.push((label.clone(), bytes));
    }
    // Everything converted: only now is anything written, each file replaced whole.
    for (label, bytes) in writes {
        let path = root.join(&label);
        let dir = path.parent().unwrap_or(root);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).ctx("writing", &path)?;
        // A temporary file is private (0600): the label file keeps its own mode.
        if let Ok(m) = std::fs::metadata(&path) {
            let _ = tmp.as_file().set_permissions(m.permissions());
        }
        std::io::Write::write_all(&mut tmp, &bytes).ctx("writing", &path)?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .ctx("writing", &path)?;
        rep.files.push(label);
    }
    Ok(rep)
}
