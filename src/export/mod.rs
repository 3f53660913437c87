//! Export for training (`dsv export`): a copy of a version's frames with their
//! labels converted to one format, in the layout that format's own readers
//! import as it is, and a JSONL manifest for data loaders.
//!
//! Each format says where its frames and label files go
//! ([`LabelFormat::export_layout`]), how a label file is written
//! ([`LabelFormat::write_exported`]) and what else its dataset holds
//! ([`LabelFormat::write_dataset_files`]: YOLO's `data.yaml`, VOC's image sets
//! and `labelmap.txt`, COCO's per-split annotation files, ...); this module
//! decides what is written, converts the labels and places the frames. Every
//! export has `dsv-export.json` (lineage, classes, splits and what each frame
//! became).
//!
//! `<name>` is the frame's file name when no other exported frame has the same
//! stem, else its whole path with `/` as `__` ([`file_names`]).

mod classes;
mod filestat;
mod handoff;
pub mod import;
mod place;
mod record;
mod split;

pub use classes::Classes;
pub use handoff::ExportFormat;
pub use place::LinkMode;
pub use split::{DEFAULT_SPLIT, Split};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::labels::format::name_stem as stem;
use crate::labels::tool::{TaskFrame, TaskPlan};
use crate::labels::{
    DatasetFile, DatasetLineage, DatasetPlan, ExportLayout, FrameLabels, LabelFormat, Units,
    format_of,
};
use crate::query::FrameRecord;
use crate::repo::Repository;

/// What an export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// Frames exported.
    pub frames: usize,
    /// Frames hard-linked or symlinked to the working tree.
    pub linked: usize,
    /// Frames cloned copy-on-write from the working tree.
    pub reflinked: usize,
    /// Frames copied from the working tree.
    pub copied: usize,
    /// Frames written from the store (not clean in the working tree).
    pub written: usize,
    /// Frames an update kept from the earlier export (same content and place).
    pub unchanged: usize,
    /// Label files written.
    pub label_files: usize,
    /// Label files an update kept from the earlier export (same bytes).
    pub labels_unchanged: usize,
    /// Frames per split.
    pub splits: BTreeMap<String, usize>,
    /// The classes, in id order.
    pub classes: Vec<String>,
    /// Objects left out (no box, or a box the format cannot hold), by frame.
    pub warnings: Vec<String>,
    /// Shapes the format cannot hold, per label file and kind.
    pub not_exported: Vec<NotExported>,
    /// The frames `skip_invalid` left out, a line each group (label files
    /// that do not parse, invalid boxes) listing them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
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

/// Width and height from an image header (what YOLO <-> pixel conversion
/// needs when no label file says the size); never 0.
pub use crate::image::size as image_size;

/// Converts every box of a frame to `target` units (needs the image size).
fn to_units(fl: &mut FrameLabels, target: Units) -> std::result::Result<(), String> {
    if fl.units == target
        || fl
            .objects
            .iter()
            .all(|o| o.bbox.is_none() && o.geometry.is_none())
    {
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
    // Shapes too: a YOLO polygon or pose written to COCO is in pixels like its box.
    for o in &mut fl.objects {
        crate::labels::units::scale_object(o, sx, sy);
    }
    fl.units = target;
    Ok(())
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

/// The frames to export of `frames`: those described by a label file that
/// does not parse (`invalid`), or with an invalid box, are refused (nothing is
/// written), or with `skip_invalid` left out with a line in `left_out`.
/// `checked(i)`: frame `i` is known to pass the box check (an update's frame
/// that the earlier export checked and that has not changed since), which
/// an update uses to check only what changed.
pub fn check_frames<'f>(
    frames: &[&'f FrameRecord],
    invalid: &[crate::query::codec::Invalid],
    skip_invalid: bool,
    checked: impl Fn(usize) -> bool,
    left_out: &mut Vec<String>,
) -> Result<Vec<&'f FrameRecord>> {
    // A frame whose label file does not parse is not unlabelled: its labels
    // are unknown, so it is never exported as an image without them.
    let mut skip: rustc_hash::FxHashSet<&str> = Default::default();
    if !invalid.is_empty() {
        let chosen: rustc_hash::FxHashSet<&str> = frames.iter().map(|f| f.path.as_str()).collect();
        let bad: Vec<&crate::query::codec::Invalid> = invalid
            .iter()
            .filter(|x| x.frame.as_deref().is_none_or(|f| chosen.contains(f)))
            .collect();
        if !bad.is_empty() {
            let list: String = bad.iter().map(|x| format!("\n  {}", x.message)).collect();
            let unknown = bad.iter().any(|x| x.frame.is_none());
            if !skip_invalid || unknown {
                let why = if skip_invalid {
                    "which frames some of them describe cannot be told (fix or remove them)"
                } else {
                    "their frames would be exported without their labels (--skip-invalid leaves those frames out)"
                };
                return Err(ExportError::Unparsed {
                    count: bad.len(),
                    why,
                    list,
                }
                .into());
            }
            skip.extend(bad.iter().filter_map(|x| x.frame.as_deref()));
            left_out.push(format!(
                "left out {} frame(s) whose label files do not parse:{list}",
                skip.len()
            ));
        }
    }
    // One validation of boxes for every format: an invalid box is refused, not
    // written as whatever the format's writer makes of it.
    let unchecked: Vec<&FrameRecord> = frames
        .iter()
        .enumerate()
        .filter(|&(i, f)| !checked(i) && !skip.contains(f.path.as_str()))
        .map(|(_, f)| *f)
        .collect();
    let bad_boxes = box_problems(&unchecked);
    drop(unchecked);
    if !bad_boxes.is_empty() {
        let n: usize = bad_boxes.iter().map(|(_, l)| l.len()).sum();
        let list: String = bad_boxes
            .iter()
            .flat_map(|(_, l)| l)
            .take(20)
            .map(|l| format!("\n  {l}"))
            .collect();
        let more = if n > 20 {
            format!("\n  ... and {} more", n - 20)
        } else {
            String::new()
        };
        if !skip_invalid {
            return Err(ExportError::InvalidBoxes {
                count: n,
                list: format!("{list}{more}"),
            }
            .into());
        }
        let before = skip.len();
        skip.extend(bad_boxes.iter().map(|(p, _)| p.as_str()));
        left_out.push(format!(
            "left out {} frame(s) with invalid boxes:{list}{more}",
            skip.len() - before
        ));
        // The paths borrowed from `bad_boxes` are owned again below.
        let skip: rustc_hash::FxHashSet<String> = skip.into_iter().map(str::to_string).collect();
        return Ok(frames
            .iter()
            .copied()
            .filter(|f| !skip.contains(&f.path))
            .collect());
    }
    if skip.is_empty() {
        return Ok(frames.to_vec());
    }
    Ok(frames
        .iter()
        .copied()
        .filter(|f| !skip.contains(f.path.as_str()))
        .collect())
}

/// Where a version came from, written into every export (COCO `info`,
/// `data.yaml` keys, `dsv-export.json`, the manifest's first line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The commit exported (full id).
    pub commit: String,
    /// The revision as given (`HEAD`, a branch, a tag).
    pub rev: String,
    /// The `--where` expression, if any.
    #[serde(rename = "where")]
    pub query: Option<String>,
    /// dsv's version.
    pub dsv_version: String,
    /// When the export was made (RFC 3339).
    pub date: String,
}

impl Lineage {
    /// The lineage of an export of `commit` made now by this dsv.
    pub fn new(commit: &ObjectId, rev: &str, query: Option<&str>, date: String) -> Lineage {
        Lineage {
            commit: commit.to_hex(),
            rev: rev.to_string(),
            query: query.map(str::to_string),
            dsv_version: env!("CARGO_PKG_VERSION").to_string(),
            date,
        }
    }
}

/// A failure particular to export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `--out` holds something that is not an export of dsv.
    #[error(
        "{}: not empty (export writes into a new or empty directory, or updates an earlier dsv export there)",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// Two frames would get the same file name in the export.
    #[error("frames {a} and {b} would both be exported as {name}")]
    NameCollision {
        /// One frame.
        a: String,
        /// The other.
        b: String,
        /// The name both would get (without extension).
        name: String,
    },
    /// A class of the exported frames is not in the list given.
    #[error("class {class:?} of frame {frame} is not in the class list {file}")]
    UnknownClass {
        /// The class.
        class: String,
        /// The first frame that has it.
        frame: String,
        /// The list given (`--classes FILE`).
        file: String,
    },
    /// A class name the format cannot hold.
    #[error("class {class:?} cannot be written to {why}")]
    ClassName {
        /// The class.
        class: String,
        /// What refuses it ([`LabelFormat::refuse_class_name`]).
        why: &'static str,
    },
    /// A frame's normalized boxes cannot be converted to the pixels a
    /// multi-frame format needs (no size in its labels or image header).
    #[error("frame {frame:?} has normalized boxes but no image size; {format} needs pixel boxes")]
    NoImageSize {
        /// The frame.
        frame: String,
        /// The format.
        format: &'static str,
    },
    /// Label files that do not parse describe frames to export.
    #[error("{count} label file(s) do not parse; {why}; nothing written:{list}")]
    Unparsed {
        /// How many.
        count: usize,
        /// Why that is refused.
        why: &'static str,
        /// Their parse errors, a line each.
        list: String,
    },
    /// Frames to export have invalid boxes.
    #[error(
        "{count} invalid box(es) (--skip-invalid leaves their frames out); nothing written:{list}"
    )]
    InvalidBoxes {
        /// How many.
        count: usize,
        /// The first few, a line each.
        list: String,
    },
    /// A label writer refused a frame.
    #[error("{frame}: {message}")]
    Write {
        /// The frame (or split file).
        frame: String,
        /// The writer's message.
        message: String,
    },
}

impl crate::error::ModuleError for ExportError {}

crate::error::module_error!(ExportError);

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The format.
    pub format: ExportFormat,
    /// The splits (one split, [`DEFAULT_SPLIT`], when none was asked for).
    pub split: Split,
    /// Whether the splits were asked for (`--split`).
    pub split_given: bool,
    /// A class list to use (`--classes FILE`: the file's name and its names).
    pub classes: Option<(String, Vec<String>)>,
    /// How frames are placed.
    pub link: LinkMode,
    /// Where the version came from.
    pub lineage: Lineage,
    /// The root tree of the version (where the dataset's class lists are looked up).
    pub tree: Option<ObjectId>,
    /// What Label Studio's `data.image` starts with, before `images/<path>`.
    pub url_prefix: String,
    /// Leave out the frames whose label files do not parse or that have an
    /// invalid box, instead of refusing to export.
    pub skip_invalid: bool,
}

/// The file name of the record every export has (its head: the frames are
/// in `dsv-export.frames` beside it).
pub const RECORD: &str = record::HEAD;

/// `dsv-export.json`: what an export holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Version of this record's layout.
    pub dsv_export: u32,
    /// The format written.
    pub format: String,
    /// Where the version came from.
    pub lineage: Lineage,
    /// The splits and their fractions.
    pub split: Split,
    /// The classes, in id order.
    pub classes: Classes,
    /// How frames were placed.
    pub link: LinkMode,
    /// Every exported frame.
    pub frames: Vec<RecordFrame>,
}

/// One frame of [`Record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFrame {
    /// Its path in the dataset.
    pub path: String,
    /// Its content id.
    pub id: ObjectId,
    /// Its split.
    pub split: String,
    /// Its image in the export (relative to the export's root).
    pub image: String,
    /// Its label file in the export, for one-file-per-frame formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The BLAKE3 hash of the label file's bytes (hex in JSON; one that is
    /// not 64 hex digits, in a hand-edited version 1 record, is read as none:
    /// the label file is then written again).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_hash"
    )]
    pub label_hash: Option<ObjectId>,
    /// The image size used, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<(u32, u32)>,
    /// The image file's length and modification time (ns since the epoch)
    /// when written: an update reuses the file only if both are unchanged
    /// (it was not edited in place since).
    #[serde(default)]
    pub stat: (u64, i128),
    /// The image file's change time (ns since the epoch) when written, also
    /// compared by an update: an edit can put the mtime back, not the ctime.
    /// Absent in records of earlier versions of dsv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<i128>,
}

impl RecordFrame {
    /// The image file as recorded.
    fn recorded(&self) -> filestat::FileStat {
        filestat::FileStat {
            len: self.stat.0,
            mtime: self.stat.1,
            ctime: self.ctime,
        }
    }

    /// Records the image file's stat as it is now. Not the ctime of a hard
    /// link into the checkout: linking the same file again (another export)
    /// changes it, and an edit through the link is the checkout's own.
    fn set_stat(&mut self, st: Option<filestat::FileStat>, link: LinkMode) {
        let st = st.unwrap_or_default();
        self.stat = (st.len, st.mtime);
        self.ctime = st.ctime.filter(|_| link != LinkMode::Hard);
    }
}

/// A label hash as a version 1 record holds it: anything but 64 hex digits
/// is none.
fn lenient_hash<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<ObjectId>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.as_deref().and_then(ObjectId::from_hex))
}

/// An earlier export being updated: its directory and record.
struct Earlier<'a> {
    dir: &'a Path,
    record: Record,
    /// Updated in place: only new and changed files are staged, then moved
    /// in; unchanged ones are not touched at all.
    in_place: bool,
    /// An update in place of it was interrupted: none of its files is trusted.
    interrupted: bool,
    /// Its frames file, kept as it is by an update that changes no frame entry.
    frames: Option<record::FramesRef>,
}

/// What an update in place renames its record to while it moves files in:
/// an export holding it was interrupted halfway and is rebuilt whole.
const UPDATING: &str = ".dsv-export-updating.json";
/// Where a new frames file is written before it replaces the export's.
const UPDATING_FRAMES: &str = ".dsv-export-updating.frames";

/// The record of the export at `dir`, if it is one and no update of it was
/// interrupted (of either layout version: docs/format.md).
pub fn read_record(dir: &Path) -> Option<Record> {
    record::read(dir, UPDATING)
        .filter(|r| !r.interrupted)
        .map(|r| r.record)
}

/// The frames of the bytes of a `dsv-export.frames` file (the hash it holds
/// not compared with any head), if they decode exactly; hostile bytes give
/// `None`, never a panic (a fuzz target).
pub fn decode_frames_file(bytes: &[u8]) -> Option<Vec<RecordFrame>> {
    record::decode_file(bytes)
}

/// The file name of each frame in an export: its own file name, unless
/// another exported frame has the same stem (`a/0001.jpg`, `b/0001.jpg`, or
/// `0001.jpg` and `0001.png`, whose label files would collide), then its whole
/// path with every `/` as `__` (`a__0001.jpg`). Two frames that still share a
/// stem are an error naming both.
pub fn file_names(frames: &[&FrameRecord]) -> std::result::Result<Vec<String>, ExportError> {
    fn base(p: &str) -> &str {
        p.rsplit('/').next().unwrap_or(p)
    }
    let mut count: rustc_hash::FxHashMap<&str, usize> = Default::default();
    count.reserve(frames.len());
    for f in frames {
        *count.entry(stem(base(&f.path))).or_default() += 1;
    }
    let names: Vec<String> = frames
        .iter()
        .map(|f| {
            let b = base(&f.path);
            if count[stem(b)] > 1 {
                f.path.replace('/', "__")
            } else {
                b.to_string()
            }
        })
        .collect();
    // No stem shared: every name is its frame's own file name, and their
    // stems are distinct already.
    let shared = count.values().any(|&n| n > 1);
    drop(count);
    if !shared {
        return Ok(names);
    }
    let mut seen: rustc_hash::FxHashMap<&str, usize> = Default::default();
    seen.reserve(names.len());
    for (i, n) in names.iter().enumerate() {
        if let Some(&j) = seen.get(stem(n)) {
            return Err(ExportError::NameCollision {
                a: frames[j].path.clone(),
                b: frames[i].path.clone(),
                name: stem(n).to_string(),
            });
        }
        seen.insert(stem(n), i);
    }
    Ok(names)
}

/// Where a format puts a frame's image and its label file in an export.
fn paths(layout: &ExportLayout, split: &str, name: &str) -> (String, Option<String>) {
    (layout.image(split, name), layout.label(split, stem(name)))
}

/// For each frame (in path order), the entry of the earlier record `rec` for
/// the same path, found by merging the two lists (the record's frames are in
/// the path order they were exported in). An entry out of that order is not
/// found: its frame is then treated as new, which costs work, never a wrong
/// file.
fn match_record<'r>(
    frames: &[&FrameRecord],
    rec: &'r [RecordFrame],
) -> Vec<Option<&'r RecordFrame>> {
    let mut j = 0;
    frames
        .iter()
        .map(|f| {
            while j < rec.len() && rec[j].path.as_str() < f.path.as_str() {
                j += 1;
            }
            rec.get(j).filter(|r| r.path == f.path)
        })
        .collect()
}

/// Writes the frames (already selected) of a version to `out`: a new or empty
/// directory, or an earlier export, which is updated. The frames are checked
/// first ([`check_frames`]: `invalid` are the version's label files that do
/// not parse); an update checks only the frames that changed since the
/// earlier export. Everything is written into a temporary directory beside
/// `out` and renamed into place, so a failed export leaves nothing behind.
pub fn export(
    repo: &Repository,
    frames: &[&FrameRecord],
    invalid: &[crate::query::codec::Invalid],
    opts: &ExportOptions,
    out: &Path,
) -> Result<ExportReport> {
    if let ExportFormat::Labels(f) = opts.format
        && format_of(f).export_layout().is_none()
        && format_of(f).task_file().is_none()
    {
        return Err(Error::InvalidArgument(format!(
            "export does not write {}",
            f.name()
        )));
    }
    if opts.format.is_handoff() && opts.split_given {
        return Err(Error::InvalidArgument(format!(
            "--split does not apply to --format {} (an export for annotators is one task list)",
            opts.format.name()
        )));
    }
    let mut earlier = None;
    if out.exists() && std::fs::read_dir(out).ctx("reading", out)?.next().is_some() {
        // An earlier export of the same format is updated; anything else is refused.
        match record::read(out, UPDATING) {
            Some(record::Read {
                record: r,
                interrupted,
                frames,
            }) if r.format == opts.format.name()
                && (1..=record::VERSION).contains(&r.dsv_export) =>
            {
                // Same placement and splits: every unchanged file stays where
                // it is. Otherwise (or after an interrupted update) the export
                // is rebuilt beside the earlier one and swapped in.
                let in_place = !interrupted && r.link == opts.link && r.split == opts.split;
                earlier = Some(Earlier {
                    dir: out,
                    record: r,
                    in_place,
                    interrupted,
                    frames,
                });
            }
            _ => return Err(ExportError::NotEmpty(out.to_path_buf()).into()),
        }
    }
    // What changed between the earlier export's commit and this one, when
    // every changed path is a frame or a label file of one (a changed class
    // list, layout or sidecar may change any frame: then nothing is known);
    // with it, per frame, whether its path or a label file of it changed:
    // the one change mask the checks below share (looked up once per frame
    // in the small set of changes, not a set of every frame's paths).
    let mut changed_mask: Vec<bool> = Vec::new();
    let changes = earlier
        .as_ref()
        .filter(|e| !e.interrupted)
        .and_then(|e| changed_paths(repo, &e.record.lineage.commit, &opts.lineage.commit))
        .filter(|t| {
            let mut known: rustc_hash::FxHashSet<&str> = Default::default();
            changed_mask = frames
                .iter()
                .map(|f| {
                    if t.is_empty() {
                        return false;
                    }
                    let mut hit = false;
                    for p in std::iter::once(f.path.as_str())
                        .chain(f.labels.iter().map(|(l, _)| l.as_str()))
                    {
                        if let Some(c) = t.get(p) {
                            known.insert(c.as_str());
                            hit = true;
                        }
                    }
                    hit
                })
                .collect();
            known.len() == t.len()
        });
    if changes.is_none() {
        changed_mask = Vec::new();
    }
    // Each frame's entry in the earlier record, by a merge of the two lists
    // (no map of every frame built).
    let matched_all = match &earlier {
        Some(e) if !e.interrupted => match_record(frames, &e.record.frames),
        _ => vec![None; frames.len()],
    };
    // A frame the earlier export (of this version of the record, which
    // checks every frame) holds with the same content, and whose path and
    // label files are unchanged since, passed the box check then.
    let mut left_out = Vec::new();
    let checked_before = earlier
        .as_ref()
        .is_some_and(|e| e.record.dsv_export == record::VERSION)
        && changes.is_some();
    let checked = |i: usize| {
        checked_before && matched_all[i].is_some_and(|r| r.id == frames[i].id) && !changed_mask[i]
    };
    let all = frames;
    let frames = check_frames(frames, invalid, opts.skip_invalid, checked, &mut left_out)?;
    // The mask and the matches of the frames kept (a subsequence of them all).
    let (matched, changed_mask) = if frames.len() == all.len() {
        (matched_all, changed_mask)
    } else {
        let mut k = 0;
        let mut m = Vec::with_capacity(frames.len());
        let mut c = Vec::with_capacity(if changed_mask.is_empty() {
            0
        } else {
            frames.len()
        });
        for (i, f) in all.iter().enumerate() {
            if frames.get(k).is_some_and(|g| std::ptr::eq(*g, *f)) {
                m.push(matched_all[i]);
                if let Some(&x) = changed_mask.get(i) {
                    c.push(x);
                }
                k += 1;
            }
        }
        (m, c)
    };
    let frames = &frames[..];
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).ctx("creating", &parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".dsv-export-")
        .tempdir_in(&parent)
        .ctx("creating a temporary directory in", &parent)?;
    // The path the export will have, without `..` (data.yaml's `path`).
    let named = match (parent.canonicalize(), out.file_name()) {
        (Ok(p), Some(n)) => p.join(n),
        _ => out.to_path_buf(),
    };
    // A frame an update keeps (same content as the earlier export recorded)
    // is not read from the store: its size claim needs no check.
    let unknown: Vec<&FrameRecord> = frames
        .iter()
        .zip(&matched)
        .filter(|(f, r)| r.is_none_or(|r| r.id != f.id))
        .map(|(f, _)| *f)
        .collect();
    check_sizes(repo, &unknown)?;
    drop(unknown);
    // An update in place of another commit's export: what changed between the
    // two commits, so that untouched frames are not converted again.
    let touched = changes
        .as_ref()
        .filter(|_| earlier.as_ref().is_some_and(|e| e.in_place))
        .map(|_| &changed_mask[..]);
    let (mut rep, mut rec, staged) = export_into(
        repo,
        frames,
        &matched,
        opts,
        earlier.as_ref(),
        touched,
        tmp.path(),
        &named,
    )?;
    rep.left_out = left_out;
    if let Some(e) = earlier.as_mut().filter(|e| e.in_place) {
        move_in(tmp.path(), out, e, &mut rec, &staged)?;
        return Ok(rep);
    }
    write_record(tmp.path(), &rec)?;
    if earlier.is_some() {
        // The earlier export is moved aside, the new one renamed into its
        // place, then the earlier one removed: at no point is there neither.
        let old = tempfile::Builder::new()
            .prefix(".dsv-export-old-")
            .tempdir_in(&parent)
            .ctx("creating a temporary directory in", &parent)?;
        let aside = old.path().join("export");
        std::fs::rename(out, &aside).ctx("moving aside", out)?;
        if let Err(e) = std::fs::rename(tmp.path(), out) {
            let _ = std::fs::rename(&aside, out);
            return Err(Error::io("renaming into place", out, e));
        }
        let _ = tmp.keep();
        drop(old);
        // The images hard-linked from the earlier export had their ctime
        // changed by its removal: recorded again, or the next update would
        // take them all for edited.
        if !staged.is_empty() {
            restat(out, &mut rec, &staged);
            // The frames first: a head left naming the frames file replaced
            // makes the next update rebuild the export whole.
            let frames = out.join(UPDATING_FRAMES);
            let fref = record::write_frames(&frames, &rec.frames)?;
            std::fs::rename(&frames, out.join(record::FRAMES))
                .ctx("writing", out.join(record::FRAMES))?;
            let next = out.join(UPDATING);
            record::write_head(&next, &rec, &fref)?;
            std::fs::rename(&next, out.join(RECORD)).ctx("writing", out.join(RECORD))?;
        }
        return Ok(rep);
    }
    if out.exists() {
        std::fs::remove_dir(out).ctx("replacing", out)?;
    }
    std::fs::rename(tmp.path(), out).ctx("renaming into place", out)?;
    // The directory is `out` now: nothing for the guard to remove.
    let _ = tmp.keep();
    Ok(rep)
}

/// Writes the record into `dir`: its frames file, then its head.
fn write_record(dir: &Path, rec: &Record) -> Result<()> {
    let fref = record::write_frames(&dir.join(record::FRAMES), &rec.frames)?;
    record::write_head(&dir.join(RECORD), rec, &fref)
}

/// Records again the stat of the images of `frames` of `rec`, now in `out`.
fn restat(out: &Path, rec: &mut Record, frames: &[usize]) {
    let images: Vec<&str> = frames
        .iter()
        .map(|&i| rec.frames[i].image.as_str())
        .collect();
    let now = filestat::stats(out, &images);
    for (&i, st) in frames.iter().zip(now) {
        rec.frames[i].set_stat(st, rec.link);
    }
}

/// Finishes an update in place: the files staged in `staged` (new and
/// changed ones, the split files) are renamed into `out`, then the files of
/// the earlier record no longer exported are removed, then the new record is
/// written: its frames file only when an entry changed. The earlier record is
/// renamed to [`UPDATING`] first, so an update interrupted here is seen by the
/// next one, which rebuilds the export whole.
/// `moved`: the frames of `new` whose image was staged (a rename changes a
/// file's ctime: their stats are taken again once in place).
fn move_in(
    staged: &Path,
    out: &Path,
    earlier_export: &Earlier,
    new: &mut Record,
    moved: &[usize],
) -> Result<()> {
    let earlier = &earlier_export.record;
    let new_json = staged.join(RECORD);
    std::fs::rename(out.join(RECORD), out.join(UPDATING)).ctx("updating", out)?;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = staged.join(&rel);
        for entry in std::fs::read_dir(&dir).ctx("reading", &dir)? {
            let entry = entry.ctx("reading", &dir)?;
            let name = rel.join(entry.file_name());
            if name.as_os_str() == RECORD || name.as_os_str() == record::FRAMES {
                continue;
            }
            let to = out.join(&name);
            if entry.file_type().ctx("reading", entry.path())?.is_dir() {
                std::fs::create_dir_all(&to).ctx("creating", &to)?;
                stack.push(name);
            } else {
                std::fs::rename(entry.path(), &to).ctx("writing", &to)?;
            }
        }
    }
    // Frame by frame the same files (an update that added, removed or
    // renamed none): nothing to remove, and no set of every file built.
    let same_files = earlier.frames.len() == new.frames.len()
        && earlier
            .frames
            .iter()
            .zip(&new.frames)
            .all(|(a, b)| a.image == b.image && a.label == b.label);
    if !same_files {
        let keep: rustc_hash::FxHashSet<&str> = new
            .frames
            .iter()
            .flat_map(|f| std::iter::once(f.image.as_str()).chain(f.label.as_deref()))
            .collect();
        for f in &earlier.frames {
            for p in std::iter::once(f.image.as_str()).chain(f.label.as_deref()) {
                if !keep.contains(p) {
                    let _ = std::fs::remove_file(out.join(p));
                }
            }
        }
    }
    restat(out, new, moved);
    let fref = match &earlier_export.frames {
        Some(f) if earlier.frames == new.frames => f.clone(),
        _ => {
            let path = staged.join(record::FRAMES);
            let f = record::write_frames(&path, &new.frames)?;
            std::fs::rename(&path, out.join(record::FRAMES))
                .ctx("writing", out.join(record::FRAMES))?;
            f
        }
    };
    record::write_head(&new_json, new, &fref)?;
    std::fs::rename(&new_json, out.join(RECORD)).ctx("writing", out.join(RECORD))?;
    let _ = std::fs::remove_file(out.join(UPDATING));
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).ctx("creating", d)?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    create_parent(path)?;
    std::fs::write(path, bytes).ctx("writing", path)
}

/// The size in an image file's header: its first 256 KiB, else all of it (a
/// JPEG whose frame header follows a large EXIF block).
fn header_size(path: &Path) -> Result<Option<(u32, u32)>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(1 << 18);
    std::fs::File::open(path)
        .ctx("reading", path)?
        .take(1 << 18)
        .read_to_end(&mut head)
        .ctx("reading", path)?;
    if let Some(s) = image_size(&head) {
        return Ok(Some(s));
    }
    if head.len() < 1 << 18 {
        return Ok(None);
    }
    Ok(image_size(&std::fs::read(path).ctx("reading", path)?))
}

/// The paths that differ between the trees of commits `old` and `new` (both
/// sides of a rename), or `None` when either cannot be read (then every frame
/// is converted again).
fn changed_paths(repo: &Repository, old: &str, new: &str) -> Option<rustc_hash::FxHashSet<String>> {
    let tree = |hex: &str| -> Option<ObjectId> {
        let id = ObjectId::from_hex(hex)?;
        Some(crate::object::Commit::load(&repo.store, &id).ok()?.tree)
    };
    let (a, b) = (tree(old)?, tree(new)?);
    let changes = crate::object::diff::diff_trees(&repo.store, Some(&a), Some(&b), &[]).ok()?;
    let mut out = rustc_hash::FxHashSet::default();
    out.reserve(changes.len());
    for c in changes {
        for p in std::iter::once(c.path).chain(c.from) {
            out.insert(String::from_utf8(p).ok()?);
        }
    }
    Some(out)
}

/// Whether converting a frame's labels cannot warn or leave anything out:
/// every object has a box in the format's units and a shape it holds.
fn plain(f: &FrameRecord, imp: &dyn LabelFormat) -> bool {
    f.objects.is_empty()
        || (f.units == imp.units()
            && f.objects
                .iter()
                .all(|o| o.bbox.is_some() && shape_loss(imp, o).is_none()))
}

/// [`export`] into the existing empty directory `dir`, which becomes `out`;
/// with the record of it (not yet written), and the frames of the record
/// whose image's stat is to be taken again once the export is in place: in an
/// update in place, those written into `dir` (a rename changes the ctime);
/// in an update rebuilt beside the earlier export, those hard-linked from it.
/// `touched`: per frame, whether its path or a label file of it changed since
/// the earlier export's commit, when that is known.
#[allow(clippy::too_many_arguments)]
fn export_into(
    repo: &Repository,
    frames: &[&FrameRecord],
    matched: &[Option<&RecordFrame>],
    opts: &ExportOptions,
    earlier: Option<&Earlier>,
    touched: Option<&[bool]>,
    dir: &Path,
    out: &Path,
) -> Result<(ExportReport, Record, Vec<usize>)> {
    let format = opts.format.writer();
    let handoff = opts.format.is_handoff();
    let imp = format_of(format);
    // Annotation tools name each frame by its dataset path: what `dsv import` reads back.
    let names = if handoff {
        frames.iter().map(|f| f.path.clone()).collect()
    } else {
        file_names(frames)?
    };
    let classes = match (&opts.classes, earlier) {
        (Some((file, list)), _) => classes::given(list.clone(), frames, file)?,
        // An update keeps the ids the earlier export gave.
        (None, Some(e)) => {
            classes::extend(e.record.classes.names.clone(), frames, "earlier-export")
        }
        (None, None) => classes::of_dataset(&repo.store, opts.tree, frames)?,
    };
    // What the earlier export holds of each frame with the same content,
    // with its image file's stat as it is now (one parallel pass); its files
    // are reused (hard-linked into the new export) only when placed the same
    // way.
    let mut before: Vec<Option<(&RecordFrame, Option<filestat::FileStat>)>> =
        vec![None; frames.len()];
    if let Some(e) = earlier.filter(|e| e.record.link == opts.link && !e.interrupted) {
        // An entry with other content keeps its label file if the bytes are
        // the same; its image is not looked at.
        for (b, r) in before.iter_mut().zip(matched) {
            *b = r.map(|r| (r, None));
        }
        let same: Vec<(usize, &RecordFrame)> = matched
            .iter()
            .zip(frames)
            .enumerate()
            .filter_map(|(i, (r, f))| r.filter(|r| r.id == f.id).map(|r| (i, r)))
            .collect();
        let images: Vec<&str> = same.iter().map(|(_, r)| r.image.as_str()).collect();
        let now = filestat::stats(e.dir, &images);
        for ((i, r), st) in same.into_iter().zip(now) {
            before[i] = Some((r, st));
        }
    }
    // The image is the one the earlier export wrote (not edited in place since).
    let as_written = |r: &RecordFrame, now: Option<filestat::FileStat>| {
        now.is_some_and(|n| r.recorded().unchanged(&n))
    };
    if let Some((c, why)) = classes
        .names
        .iter()
        .find_map(|c| imp.refuse_class_name(c).map(|why| (c, why)))
    {
        return Err(ExportError::ClassName {
            class: c.clone(),
            why,
        }
        .into());
    }
    // Frames the update leaves as they are, unconverted: only when every
    // changed path is one of the exported frames or their label files (a
    // changed class list, layout or sidecar may change any frame), and the
    // class ids are the earlier export's.
    // (`export` passes only changes that are all frames or label files.)
    let untouched: Option<&[bool]> =
        touched.filter(|_| earlier.is_some_and(|e| e.record.classes.names == classes.names));
    let split_names: Vec<&str> = opts.split.names().collect();
    // The worktree index, loaded when a frame is first placed from the
    // checkout (an update that places none never reads it).
    let mut index = None;
    let mut rep = ExportReport::default();
    let mut per_split: Vec<Vec<FrameLabels>> = vec![Vec::new(); split_names.len()];
    let mut tasks: Vec<TaskFrame> = Vec::new();
    // The file names of each split's frames, for the format's dataset files.
    let mut members: Vec<Vec<&str>> = vec![Vec::new(); split_names.len()];
    let mut per_split_frames = vec![0usize; split_names.len()];
    let mut record = Vec::with_capacity(frames.len());
    let mut staged = Vec::new();
    let in_place = earlier.is_some_and(|e| e.in_place);
    let mut lost: BTreeMap<(String, &'static str, bool), usize> = BTreeMap::new();
    // Formats that record the image size get it for every image.
    let wants_size = imp.needs_image_size();
    // A tool's own tasks (not a label format's file) hold boxes only
    // unless the tool holds shapes.
    let tasks_tool = opts.format.tasks();
    let boxes_only = tasks_tool.is_some_and(|t| !t.holds_shapes());
    let mut no_clones = false;
    for (i, ((f, name), before)) in frames.iter().zip(&names).zip(before).enumerate() {
        let s = opts.split.of(&f.path);
        let split = split_names[s];
        // Formats without a layout of their own are the hand-offs (`export` checks).
        let (image, label) = match imp.export_layout() {
            Some(layout) if !handoff => paths(&layout, split, name),
            _ => (format!("images/{name}"), None),
        };
        let mut dest = dir.join(&image);
        let mut bytes: Option<Vec<u8>> = None;
        let (old, now) = match before {
            Some((r, st)) => (Some(r), st),
            None => (None, None),
        };
        // Neither the image nor the labels changed since the earlier export,
        // which wrote this label file: nothing to convert or write.
        if let (Some(r), Some(_), Some(t)) = (old, earlier, untouched)
            && label.is_some()
            && r.id == f.id
            && r.image == image
            && r.label == label
            && r.label_hash.is_some()
            && !t[i]
            && plain(f, imp)
            && as_written(r, now)
        {
            rep.unchanged += 1;
            rep.labels_unchanged += 1;
            rep.frames += 1;
            per_split_frames[s] += 1;
            members[s].push(name);
            let mut r = r.clone();
            if r.split != split {
                r.split = split.to_string();
            }
            record.push(r);
            continue;
        }
        let reused = match (old, earlier) {
            (Some(r), Some(e)) if r.id == f.id && r.image == image => {
                let src = e.dir.join(&r.image);
                if !as_written(r, now) {
                    false
                } else if e.in_place {
                    // Left where it is; what reads it below reads it there.
                    dest = src;
                    true
                } else {
                    create_parent(&dest)?;
                    std::fs::hard_link(&src, &dest).is_ok()
                }
            }
            _ => false,
        };
        if !reused {
            create_parent(&dest)?;
        }
        let placed = if reused {
            Some(place::Placed::Unchanged)
        } else if linkable(repo, &mut index, f)? {
            place::place(
                &repo.worktree_path(f.path.as_bytes()),
                &dest,
                opts.link,
                &mut no_clones,
            )
            .ok()
        } else {
            None
        };
        match placed {
            Some(place::Placed::Reflinked) => rep.reflinked += 1,
            Some(place::Placed::Copied) => rep.copied += 1,
            Some(place::Placed::Linked) => rep.linked += 1,
            Some(place::Placed::Unchanged) => rep.unchanged += 1,
            None => {
                let _ = std::fs::remove_file(&dest);
                let b = repo.store.get(&f.id)?;
                crate::object::tree::check_size(f.path.as_bytes(), f.size, &f.id, b.len() as u64)?;
                write_file(&dest, &b)?;
                bytes = Some(b);
                rep.written += 1;
            }
        }
        rep.frames += 1;
        per_split_frames[s] += 1;
        let mut fl = FrameLabels {
            frame: f.path.clone(),
            width: f.width,
            height: f.height,
            units: f.units,
            attributes: f.attrs.clone(),
            objects: f.objects.clone(),
        };
        let target = imp.units();
        let needs_size = wants_size || (fl.units != target && !fl.objects.is_empty());
        if needs_size
            && (fl.width.is_none() || fl.height.is_none())
            && let Some((w, h)) = old.filter(|_| reused).and_then(|r| r.size)
        {
            fl.width = Some(w);
            fl.height = Some(h);
        }
        if needs_size && (fl.width.is_none() || fl.height.is_none()) {
            let size = match &bytes {
                Some(b) => image_size(b),
                None => header_size(&dest)?,
            };
            if let Some((w, h)) = size {
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
            let loss = match (&o.geometry, boxes_only) {
                (Some(crate::labels::Geometry::Box3d(_)) | None, true) => None,
                (Some(g), true) => Some(!g.is_thin() && o.bbox.is_some()),
                (_, false) => shape_loss(imp, &o),
            };
            match loss {
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
            // One file holds every frame: its writer would refuse the whole split.
            if imp.is_multi_frame() {
                return Err(ExportError::NoImageSize {
                    frame: f.path.clone(),
                    format: imp.name(),
                }
                .into());
            }
            rep.warnings
                .push(format!("{}: {e}; labels left out", f.path));
            fl.objects.clear();
        }
        if imp.needs_boxes() || boxes_only {
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
        fl.frame = name.clone();
        let size = fl.width.zip(fl.height);
        let mut label_hash = None;
        let failed = |e: crate::labels::LabelError| ExportError::Write {
            frame: f.path.clone(),
            message: e.to_string(),
        };
        if let Some(label) = &label {
            let bytes = imp
                .write_exported(&fl, Some(&classes.names))
                .map_err(failed)?;
            let hash = ObjectId(*blake3::hash(&bytes).as_bytes());
            let same = match (old, earlier) {
                (Some(r), Some(e))
                    if r.label.as_deref() == Some(label.as_str()) && r.label_hash == Some(hash) =>
                {
                    if e.in_place {
                        // Written by dsv with these bytes; a label edited in
                        // place since is not looked for (as in a rebuild).
                        true
                    } else {
                        create_parent(&dir.join(label))?;
                        std::fs::hard_link(e.dir.join(label), dir.join(label)).is_ok()
                    }
                }
                _ => false,
            };
            if same {
                rep.labels_unchanged += 1;
            } else {
                write_file(&dir.join(label), &bytes)?;
                rep.label_files += 1;
            }
            label_hash = Some(hash);
        } else if tasks_tool.is_some() {
            tasks.push(TaskFrame {
                labels: fl,
                path: &f.path,
                id: f.id.to_hex(),
                units: f.units,
                predictions: f
                    .predictions
                    .iter()
                    .map(|p| (p.class.as_str(), p.bbox, p.score))
                    .collect(),
            });
        } else {
            per_split[s].push(fl);
        }
        members[s].push(name);
        let mut entry = RecordFrame {
            path: f.path.clone(),
            id: f.id,
            split: split.to_string(),
            stat: (0, 0),
            ctime: None,
            image,
            label,
            label_hash,
            size,
        };
        match old {
            Some(r) if reused && in_place => {
                entry.stat = r.stat;
                entry.ctime = r.ctime;
            }
            // Moved into place later: its stat is taken there.
            _ if in_place => staged.push(record.len()),
            _ => {
                if reused {
                    staged.push(record.len());
                }
                entry.set_stat(filestat::stat(&dest), opts.link);
            }
        }
        record.push(entry);
    }
    for (name, n) in split_names.iter().zip(per_split_frames) {
        if n > 0 {
            rep.splits.insert(name.to_string(), n);
        }
    }
    if let Some(tool) = tasks_tool {
        let plan = TaskPlan {
            frames: &tasks,
            url_prefix: &opts.url_prefix,
            commit: &opts.lineage.commit,
            classes: &classes.names,
        };
        let files = tool
            .write_tasks(&plan)
            .map_err(|(frame, message)| ExportError::Write { frame, message })?;
        for f in files {
            write_file(&dir.join(&f.path), &f.bytes)?;
            rep.label_files += usize::from(f.labels);
        }
        std::fs::create_dir_all(dir.join("images")).ctx("creating", dir)?;
    } else {
        write_split_files(dir, out, opts, &classes, &per_split, &members, &mut rep)?;
    }
    let rec = Record {
        dsv_export: record::VERSION,
        format: opts.format.name().to_string(),
        lineage: opts.lineage.clone(),
        split: opts.split.clone(),
        classes: classes.clone(),
        link: opts.link,
        frames: record,
    };
    rep.classes = classes.names;
    rep.not_exported = lost
        .into_iter()
        .map(|((file, kind, as_boxes), count)| NotExported {
            file,
            kind,
            count,
            as_boxes,
        })
        .collect();
    Ok((rep, rec, staged))
}

/// The files of a whole split or export beside the frames' own label files
/// ([`LabelFormat::write_dataset_files`]), and the directories of empty splits.
fn write_split_files(
    dir: &Path,
    out: &Path,
    opts: &ExportOptions,
    classes: &Classes,
    per_split: &[Vec<FrameLabels>],
    members: &[Vec<&str>],
    rep: &mut ExportReport,
) -> Result<()> {
    let imp = format_of(opts.format.writer());
    let lin = &opts.lineage;
    let splits: Vec<&str> = opts.split.names().collect();
    if let Some(layout) = imp.export_layout() {
        for d in splits.iter().flat_map(|s| layout.dirs(s)) {
            std::fs::create_dir_all(dir.join(d)).ctx("creating", dir)?;
        }
    }
    if opts.format.is_handoff() {
        // Hand-offs place frames under `images/`.
        std::fs::create_dir_all(dir.join("images")).ctx("creating", dir)?;
    }
    let root = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let plan = DatasetPlan {
        root: &root,
        splits: &splits,
        classes: &classes.names,
        lineage: DatasetLineage {
            commit: &lin.commit,
            rev: &lin.rev,
            query: lin.query.as_deref(),
            dsv_version: &lin.dsv_version,
            date: &lin.date,
        },
        frames: per_split,
        members,
    };
    let mut failed = None;
    let mut put = |f: DatasetFile| match write_file(&dir.join(&f.path), &f.bytes) {
        Ok(()) => {
            rep.label_files += usize::from(f.labels);
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    };
    let written = imp.write_dataset_files(&plan, &mut put);
    if let Some(e) = failed {
        return Err(e);
    }
    written.map_err(|(frame, e)| {
        ExportError::Write {
            frame,
            message: e.to_string(),
        }
        .into()
    })
}

/// Whether the worktree copy of a frame is the committed content (`index`:
/// the worktree index, loaded on first use).
fn linkable(
    repo: &Repository,
    index: &mut Option<crate::worktree::index::IndexState>,
    f: &FrameRecord,
) -> Result<bool> {
    let index = match index {
        Some(i) => i,
        None => index.insert(repo.index.load()?),
    };
    let Some(entry) = index.entries.get(f.path.as_bytes()) else {
        return Ok(false);
    };
    if entry.id != f.id {
        return Ok(false);
    }
    Ok(
        match crate::worktree::scan::stat_path(repo.root(), f.path.as_bytes()) {
            Some(wf) => index.is_clean(entry, &wf.stat),
            None => false,
        },
    )
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

/// Writes the JSONL manifest of the frames to `path`: a first line
/// `{"lineage": {...}}`, then one line per frame.
pub fn manifest(frames: &[&FrameRecord], lineage: &Lineage, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).ctx("creating", path)?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut w, &serde_json::json!({ "lineage": lineage }))
        .map_err(std::io::Error::from)
        .ctx("writing", path)?;
    w.write_all(b"\n").ctx("writing", path)?;
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
