//! The dataset diff: file-level changes sorted into frames and label files, and
//! inside each changed label file the objects that were added, removed, moved,
//! reclassified or had attributes changed, with per-class totals.
//!
//! Input is the file-level change list (`ops::diff`) plus the two versions as
//! [`FileSource`]s. Only changed label files are read and parsed (in parallel),
//! so the cost follows the size of the change, not of the dataset. A label file
//! that does not parse becomes a warning and stays a file-level change, unless
//! the caller asked for strictness.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write as _;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::labels::compare::{
    MatchOptions, ObjectChange, ObjectChangeKind, compare_objects_keeping_same,
};
use crate::labels::{Format, FrameLabels, LabelError, Object, format_of};
use crate::layout::{FileSource, Layout, Role};
use crate::object::diff::{Change, ChangeKind};
use crate::ops::frame_attrs::{
    FrameAttributeChanges, FrameAttributeTotals, FramePredictionChanges, PredictionTotals,
};
use crate::paths::display_path;

/// Version of the JSON document [`DatasetDiff`] serializes to.
pub const SCHEMA: &str = "dsv.diff/1";

/// How objects are paired and how errors are treated.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabelDiffOptions {
    /// Object pairing.
    pub matching: MatchOptions,
    /// Ids policy: `None` = per format (ids used where they persist across versions).
    pub use_ids: Option<bool>,
    /// A label file that fails to parse is an error instead of a warning.
    pub strict: bool,
}

/// A frame renamed (same content, new path).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Renamed {
    /// Old path.
    pub from: String,
    /// New path.
    pub to: String,
}

/// Frame files that changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrameChanges {
    /// New frames.
    pub added: Vec<String>,
    /// Frames that are gone.
    pub removed: Vec<String>,
    /// Frames whose bytes changed.
    pub modified: Vec<String>,
    /// Frames moved to a new path with the same bytes.
    pub renamed: Vec<Renamed>,
}

/// The object changes of one frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameObjects {
    /// The frame as the label file names it.
    pub frame: String,
    /// The frame file it resolves to (new version, else old), if found.
    pub frame_path: Option<String>,
    /// Image size from the label file, when it says (new version, else old).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height, as `width`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Whether boxes are in pixels or normalized to [0, 1].
    pub units: crate::labels::Units,
    /// Objects in the frame before and after.
    pub objects_before: usize,
    /// Objects after.
    pub objects_after: usize,
    /// What changed.
    pub changes: Vec<ObjectChange>,
    /// Objects per class in this frame: (before, after).
    #[serde(skip)]
    pub class_counts: BTreeMap<String, (u64, u64)>,
    /// Boxes of the objects the same on both sides (class, box), at most
    /// [`MAX_UNCHANGED`], which the review page draws faintly for context.
    #[serde(skip)]
    pub unchanged: Vec<(String, crate::labels::BBox)>,
}

/// Unchanged boxes kept per frame for the review page; a frame with more
/// would be drawn as a blur, and memory stays bounded by the changes.
pub const MAX_UNCHANGED: usize = 1000;

/// One label file that changed.
#[derive(Debug, Clone, Serialize)]
pub struct LabelFileDiff {
    /// Path (new path for renames).
    pub path: String,
    /// Old path of a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Format of the file.
    pub format: Format,
    /// How the file changed.
    pub kind: ChangeKind,
    /// Frames with object changes, in file order.
    pub frames: Vec<FrameObjects>,
}

/// Totals for one class over the frames that changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClassDelta {
    /// Class name.
    pub class: String,
    /// Objects of this class in the changed frames, before.
    pub before: u64,
    /// After.
    pub after: u64,
    /// after - before.
    pub delta: i64,
    /// Objects added.
    pub added: u64,
    /// Objects removed.
    pub removed: u64,
    /// Objects of this class whose box moved.
    pub moved: u64,
    /// Objects that became this class.
    pub reclassified_in: u64,
    /// Objects that left this class for another.
    pub reclassified_out: u64,
    /// Objects whose attributes changed.
    pub attributes: u64,
}

/// A label file that could not be read as labels.
#[derive(Debug, Clone, Serialize)]
pub struct LabelWarning {
    /// The file that failed (the label file, or a class-names file it needs).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LabelWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything `dsv diff` reports.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetDiff {
    /// Schema version of this document.
    pub schema: &'static str,
    /// What the old side is (a commit id, or "index").
    pub from: String,
    /// What the new side is (a commit id, "index" or "worktree").
    pub to: String,
    /// Frame files that changed.
    pub frames: FrameChanges,
    /// Label files that changed, with their object changes.
    pub labels: Vec<LabelFileDiff>,
    /// Per-class totals over the changed frames, sorted by class.
    pub classes: Vec<ClassDelta>,
    /// Label files shown at file level only because they did not parse.
    pub warnings: Vec<LabelWarning>,
    /// Invalid boxes in the new version of the changed label files ("FILE:
    /// frame F: object N (CLASS): problem", see [`crate::labels::box_problem`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_boxes: Vec<String>,
    /// Frame attributes that changed (sidecar rows, label files' frame-level
    /// attributes), per frame and file, sorted by frame then file.
    pub frame_attributes: Vec<FrameAttributeChanges>,
    /// Totals of `frame_attributes`, the figures every rendering shows.
    pub frame_attribute_totals: FrameAttributeTotals,
    /// Predictions of the metadata sidecar that changed, per frame.
    pub prediction_changes: Vec<FramePredictionChanges>,
    /// Totals of `prediction_changes`.
    pub prediction_totals: PredictionTotals,
    /// Every changed file, as `dsv diff --name-status` lists them.
    pub files: Vec<Change>,
}

impl DatasetDiff {
    /// Number of object changes of a kind, over all files.
    pub fn count(&self, kind: ObjectChangeKind) -> usize {
        self.labels
            .iter()
            .flat_map(|l| &l.frames)
            .flat_map(|f| &f.changes)
            .filter(|c| c.kind == kind)
            .count()
    }
}

fn warning(file: String, e: LabelError) -> LabelWarning {
    LabelWarning {
        file,
        line: e.line,
        column: e.column,
        message: e.message,
    }
}

/// One side's parsed content of a label file (empty when absent on that side).
type Parsed = std::result::Result<Vec<FrameLabels>, LabelWarning>;

fn parse_side(
    layout: &Layout,
    src: &dyn FileSource,
    path: &str,
    format: Format,
    state: Option<&crate::object::diff::FileState>,
) -> Result<Parsed> {
    let Some(state) = state else {
        return Ok(Ok(Vec::new()));
    };
    let Some(bytes) = src.read_id(path, &state.id)? else {
        return Ok(Ok(Vec::new()));
    };
    Ok(layout
        .parse(src, path, format, &bytes)?
        .map_err(|(file, e)| warning(file, e)))
}

/// Multi-frame label files from this size on are compared without holding
/// both versions' parses at once (issue 16: a command's memory stays within
/// twice its largest label file plus 200 MiB), at the cost of parsing the old
/// version twice.
const LOW_MEMORY_FROM: u64 = 32 << 20;

/// One side of a change: its layout, its files, the file's state there.
type Side<'a> = (
    &'a Layout,
    &'a dyn FileSource,
    Option<&'a crate::object::diff::FileState>,
);

/// Each invalid box of a version's frames, as the diff lists it.
fn box_problems(path: &str, frames: &[FrameLabels]) -> Vec<String> {
    let mut bad = Vec::new();
    for f in frames {
        for p in crate::labels::frame_box_problems(&f.objects, f.units, (f.width, f.height)) {
            bad.push(format!("{path}: frame {}: {p}", f.frame));
        }
    }
    bad
}

/// One side's label file handed over frame by frame ([`Layout::parse_each`]):
/// a warning when it does not parse (the frames already handed over are then
/// to be discarded); nothing when absent on that side.
fn each_side(
    side: Side<'_>,
    path: &str,
    format: Format,
    each: &mut dyn FnMut(FrameLabels),
) -> Result<std::result::Result<(), LabelWarning>> {
    let (layout, src, state) = side;
    let Some(state) = state else {
        return Ok(Ok(()));
    };
    let Some(bytes) = src.read_id(path, &state.id)? else {
        return Ok(Ok(()));
    };
    Ok(layout
        .parse_each(src, path, format, &bytes, each)?
        .map_err(|(file, e)| warning(file, e)))
}

/// Both versions of a large multi-frame file, each without the frames that
/// are the same on both sides, and the new version's invalid boxes (over all
/// its frames). Each version is read frame by frame ([`each_side`]): the old
/// one reduced to a digest per frame, the new one to the frames that differ,
/// then the old one again to the frames that differ. Peak memory is then one
/// version's bytes and the frames that differ, never a whole parse. Leaving
/// such frames out changes nothing in the diff: a frame equal on both sides
/// has no object or attribute change.
fn parse_without_equal_frames(
    old: Side<'_>,
    new: Side<'_>,
    path: &str,
    format: Format,
) -> Result<(Parsed, Parsed, Vec<String>)> {
    without_equal_frames(
        &mut |each| each_side(old, path, format, each),
        &mut |each| each_side(new, path, format, each),
        path,
    )
}

/// A reading of one version frame by frame (see [`each_side`]).
type Reading<'a> =
    dyn FnMut(&mut dyn FnMut(FrameLabels)) -> Result<std::result::Result<(), LabelWarning>> + 'a;

/// [`parse_without_equal_frames`] over two readings.
fn without_equal_frames(
    old: &mut Reading<'_>,
    new: &mut Reading<'_>,
    path: &str,
) -> Result<(Parsed, Parsed, Vec<String>)> {
    let mut digests = Digests::new();
    if let Err(w) = old(&mut |f| add_digest(&mut digests, &f))? {
        return Ok((Err(w), Ok(Vec::new()), Vec::new()));
    }
    let (mut b, mut bad, mut equal) = (Vec::new(), Vec::new(), HashSet::new());
    let read = new(&mut |f| {
        bad.extend(box_problems(path, std::slice::from_ref(&f)));
        if first_and_equal(&mut digests, &f) {
            equal.insert(f.frame);
        } else {
            b.push(f);
        }
    })?;
    if let Err(w) = read {
        return Ok((Ok(Vec::new()), Err(w), Vec::new()));
    }
    let before = equal.len();
    equal.retain(|n: &String| digests.get(n.as_str()).is_some_and(|d| d.1 == 1));
    drop(digests);
    if equal.len() != before {
        // A frame left out shares its name with a later new frame: both
        // stay. Rare enough to read the new version again for.
        b.clear();
        let read = new(&mut |f| {
            if !equal.contains(f.frame.as_str()) {
                b.push(f);
            }
        })?;
        if let Err(w) = read {
            return Ok((Ok(Vec::new()), Err(w), Vec::new()));
        }
    }
    let mut a = Vec::new();
    let read = old(&mut |f| {
        if !equal.contains(f.frame.as_str()) {
            a.push(f);
        }
    })?;
    Ok((read.map(|()| a), Ok(b), bad))
}

/// The old version's frames by name: a digest of each (`None` for a name
/// that several frames share, or a frame that is not equal to itself (a NaN
/// somewhere), which are never left out), and how many new frames have the
/// name so far.
type Digests = HashMap<String, (Option<blake3::Hash>, u32)>;

/// Adds an old frame to its digests.
fn add_digest(out: &mut Digests, f: &FrameLabels) {
    match out.entry(f.frame.clone()) {
        Entry::Occupied(mut e) => {
            e.get_mut().0 = None;
        }
        Entry::Vacant(e) => {
            e.insert((frame_digest(f), 0));
        }
    }
}

/// Counts a new frame's name, and says whether the frame may be left out:
/// the first new frame of a name unique on the old side, and exactly the old
/// frame (whether a later new frame shares its name is known at the end).
fn first_and_equal(old: &mut Digests, f: &FrameLabels) -> bool {
    let Some((digest, seen)) = old.get_mut(f.frame.as_str()) else {
        return false;
    };
    *seen += 1;
    *seen == 1 && matches!(digest, Some(d) if frame_digest(f) == Some(*d))
}

/// The digest of a frame's `Debug` text: exact (floats in their shortest
/// round-trip form, `-0.0` kept), unlike the JSON form, which rounds
/// coordinates.
fn frame_digest(f: &FrameLabels) -> Option<blake3::Hash> {
    // A NaN makes a frame unequal to itself although its text is the same.
    #[allow(clippy::eq_op)]
    if f != f {
        return None;
    }
    let mut h = blake3::Hasher::new();
    write!(h, "{f:?}").ok()?;
    Some(h.finalize())
}

/// Builds the dataset diff from file-level changes and the two versions.
pub fn label_diff(
    changes: &[Change],
    old: (&dyn FileSource, &Layout),
    new: (&dyn FileSource, &Layout),
    from: String,
    to: String,
    opts: &LabelDiffOptions,
) -> Result<DatasetDiff> {
    let (old_src, old_layout) = old;
    let (new_src, new_layout) = new;
    let mut frames = FrameChanges::default();
    // (index into changes, format)
    let mut label_changes: Vec<(usize, Format)> = Vec::new();
    for (i, ch) in changes.iter().enumerate() {
        let path = display_path(&ch.path);
        let old_path = ch.from.as_deref().map(display_path).unwrap_or(path.clone());
        let role_of = |layout: &Layout, src: &dyn FileSource, p: &str, id| -> Result<Role> {
            if let Some(r) = layout.role_by_path(p) {
                return Ok(r);
            }
            let head = src.read_id(p, id)?.unwrap_or_default();
            Ok(layout.role(p, &head))
        };
        // A file is a label file if either version is one: a label file broken by
        // the change must still be reported (as a warning), not dropped. A deleted
        // file is what the old version's layout says it was.
        let role = match (&ch.new, &ch.old) {
            (None, Some(o)) => role_of(old_layout, old_src, &old_path, &o.id)?,
            (None, None) => Role::Other,
            (Some(n), old) => {
                let new_role = role_of(new_layout, new_src, &path, &n.id)?;
                match (&new_role, old) {
                    (Role::Other, Some(o)) => {
                        match role_of(old_layout, old_src, &old_path, &o.id)? {
                            Role::Label(f) => Role::Label(f),
                            _ => new_role,
                        }
                    }
                    _ => new_role,
                }
            }
        };
        match role {
            Role::Frame => match ch.kind {
                ChangeKind::Added => frames.added.push(path),
                ChangeKind::Deleted => frames.removed.push(path),
                ChangeKind::Modified => frames.modified.push(path),
                ChangeKind::Renamed => frames.renamed.push(Renamed {
                    from: old_path,
                    to: path,
                }),
            },
            Role::Label(f) => {
                if ch.kind != ChangeKind::Renamed {
                    label_changes.push((i, f));
                }
            }
            Role::Other => {}
        }
    }

    // Frames that exist on one side only, and their stems, which is what a
    // label entry naming one of them must match.
    let (gone, came) = moved_frames(&frames);
    let moved_stems: HashSet<&str> = gone
        .iter()
        .chain(&came)
        .map(|p| crate::layout::stem(p))
        .collect();
    let moved = |name: &str| moved_stems.contains(crate::layout::stem(name));
    type One = (
        Option<LabelFileDiff>,
        Vec<LabelWarning>,
        Vec<String>,
        Vec<FrameAttributeChanges>,
    );
    let results: Vec<Result<One>> = label_changes
        .par_iter()
        .map(|&(i, format)| {
            let ch = &changes[i];
            let path = display_path(&ch.path);
            let old_side = (old_layout, old_src, ch.old.as_ref());
            let new_side = (new_layout, new_src, ch.new.as_ref());
            let large = format.is_multi_frame()
                && ch.old.as_ref().is_some_and(|s| s.size >= LOW_MEMORY_FROM);
            let (a, b, bad) = if large {
                parse_without_equal_frames(old_side, new_side, &path, format)?
            } else {
                let a = parse_side(old_side.0, old_side.1, &path, format, old_side.2)?;
                let b = parse_side(new_side.0, new_side.1, &path, format, new_side.2)?;
                let bad = b
                    .as_ref()
                    .map(|b| box_problems(&path, b))
                    .unwrap_or_default();
                (a, b, bad)
            };
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => {
                    let mut w = Vec::new();
                    w.extend(a.err());
                    w.extend(b.err());
                    return Ok((None, w, Vec::new(), Vec::new()));
                }
            };
            let mut matching = opts.matching;
            matching.use_ids = opts
                .use_ids
                .unwrap_or_else(|| format_of(format).ids_are_stable());
            let resolve = |key: &str, after: bool| {
                let (src, layout) = if after {
                    (new_src, new_layout)
                } else {
                    (old_src, old_layout)
                };
                layout.frame_path(src, &path, format, key)
            };
            let frames = compare_frames(&a, &b, &matching, resolve)?;
            let attrs = crate::ops::frame_attrs::label_changes(&path, &a, &b, resolve, moved)?;
            Ok((
                Some(LabelFileDiff {
                    path,
                    from: None,
                    format,
                    kind: ch.kind,
                    frames,
                }),
                Vec::new(),
                bad,
                attrs,
            ))
        })
        .collect();
    let mut labels = Vec::new();
    let mut warnings = Vec::new();
    let mut invalid_boxes = Vec::new();
    let mut frame_attributes = Vec::new();
    for r in results {
        let (l, w, b, a) = r?;
        labels.extend(l);
        warnings.extend(w);
        invalid_boxes.extend(b);
        frame_attributes.extend(a);
    }
    split_relabelled_renames(&mut frames, &labels);
    match unchanged_label_changes(changes, &label_changes, (&gone, &came), old, new)? {
        Ok(a) => frame_attributes.extend(a),
        Err(w) => warnings.push(w),
    }
    // The frames whose label-file attributes changed: the sidecar may override them.
    let shadowed: BTreeSet<String> = frame_attributes.iter().map(|f| f.frame.clone()).collect();
    let mut prediction_changes = Vec::new();
    match sidecar_changes(changes, &frames, &shadowed, old, new)? {
        Ok(sc) => {
            crate::ops::frame_attrs::drop_shadowed(&mut frame_attributes, &sc.file, &sc.names);
            frame_attributes.extend(sc.attributes);
            prediction_changes = sc.predictions;
        }
        Err(w) => warnings.push(w),
    }
    let prediction_totals = crate::ops::frame_attrs::prediction_totals(&prediction_changes);
    frame_attributes.sort_by(|x, y| (&x.frame, &x.file).cmp(&(&y.frame, &y.file)));
    let frame_attribute_totals = crate::ops::frame_attrs::totals(&frame_attributes);
    if opts.strict
        && let Some(w) = warnings.first()
    {
        return Err(Error::Labels(w.to_string()));
    }
    let classes = class_totals(&labels);
    Ok(DatasetDiff {
        schema: SCHEMA,
        from,
        to,
        frames,
        labels,
        classes,
        warnings,
        invalid_boxes,
        frame_attributes,
        frame_attribute_totals,
        prediction_changes,
        prediction_totals,
        files: changes.to_vec(),
    })
}

/// Turns each frame rename whose labels did not go with it into a removal and an
/// addition. Renames are found by bytes, so a deleted frame and a new one that share
/// an image (duplicates, placeholder images) would otherwise be one renamed frame,
/// with the old frame's objects removed and the new frame's added: "0 removed, 0
/// added" for a frame that is gone.
fn split_relabelled_renames(frames: &mut FrameChanges, labels: &[LabelFileDiff]) {
    let touched: BTreeSet<&str> = labels
        .iter()
        .flat_map(|l| &l.frames)
        .filter_map(|f| f.frame_path.as_deref())
        .collect();
    let (split, kept): (Vec<Renamed>, Vec<Renamed>) = std::mem::take(&mut frames.renamed)
        .into_iter()
        .partition(|r| touched.contains(r.from.as_str()) || touched.contains(r.to.as_str()));
    frames.renamed = kept;
    if split.is_empty() {
        return;
    }
    for r in split {
        frames.removed.push(r.from);
        frames.added.push(r.to);
    }
    frames.removed.sort();
    frames.added.sort();
}

/// Frame files that exist on one side only: removed (and the old paths of
/// renames), and added (and the new paths of renames).
fn moved_frames(frames: &FrameChanges) -> (BTreeSet<String>, BTreeSet<String>) {
    let gone = frames
        .removed
        .iter()
        .cloned()
        .chain(frames.renamed.iter().map(|r| r.from.clone()))
        .collect();
    let came = frames
        .added
        .iter()
        .cloned()
        .chain(frames.renamed.iter().map(|r| r.to.clone()))
        .collect();
    (gone, came)
}

/// The frame attributes that went or came with frame files while the
/// multi-frame label file describing them stayed the same: as `dsv stats`
/// counts them, a frame removed takes its entry's attributes with it even
/// though no label file changed. Such files are found by listing a side
/// (sources that cannot list are skipped) and are parsed only when their bytes
/// hold the stem of a frame that came or went. A label file that does not
/// parse is a warning, as in the rest of the diff.
fn unchanged_label_changes(
    changes: &[Change],
    changed_labels: &[(usize, Format)],
    (gone, came): (&BTreeSet<String>, &BTreeSet<String>),
    old: (&dyn FileSource, &Layout),
    new: (&dyn FileSource, &Layout),
) -> Result<std::result::Result<Vec<FrameAttributeChanges>, LabelWarning>> {
    {
        if gone.is_empty() && came.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let (src, layout, listing) = match old.0.paths()? {
            Some(l) => (old.0, old.1, l),
            None => match new.0.paths()? {
                Some(l) => (new.0, new.1, l),
                None => return Ok(Ok(Vec::new())),
            },
        };
        let touched: HashSet<String> = changed_labels
            .iter()
            .flat_map(|&(i, _)| {
                let ch = &changes[i];
                [Some(&ch.path), ch.from.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|p| display_path(p))
            })
            .collect();
        let needles: Vec<memchr::memmem::Finder> = gone
            .iter()
            .chain(came)
            .map(|p| memchr::memmem::Finder::new(crate::layout::stem(p)))
            .collect();
        let mut out = Vec::new();
        for path in listing {
            if touched.contains(&path) {
                continue;
            }
            let format = match layout.role_by_path(&path) {
                Some(Role::Label(f)) => f,
                Some(_) => continue,
                None => {
                    let ext = crate::layout::file_name(&path)
                        .rsplit_once('.')
                        .map(|(_, e)| e.to_ascii_lowercase());
                    if !ext
                        .as_deref()
                        .is_some_and(crate::labels::format::multi_frame_extension)
                    {
                        continue;
                    }
                    let Some(head) = src.read(&path)? else {
                        continue;
                    };
                    match layout.role(&path, &head) {
                        Role::Label(f) => f,
                        _ => continue,
                    }
                }
            };
            if !format.is_multi_frame() {
                continue;
            }
            let Some(bytes) = src.read(&path)? else {
                continue;
            };
            // A name outside ASCII may be escaped in the file: always parse then.
            if !needles
                .iter()
                .zip(gone.iter().chain(came))
                .any(|(n, p)| !p.is_ascii() || n.find(&bytes).is_some())
            {
                continue;
            }
            let frames = match layout.parse(src, &path, format, &bytes)? {
                Ok(f) => f,
                Err((file, e)) => return Ok(Err(warning(file, e))),
            };
            drop(bytes);
            let on = |(s, l): (&dyn FileSource, &Layout), set: &BTreeSet<String>, name: &str| {
                Ok(l.frame_path(s, &path, format, name)?
                    .filter(|p| set.contains(p)))
            };
            out.extend(crate::ops::frame_attrs::moved_frame_changes(
                &path,
                &frames,
                |n| on(old, gone, n),
                |n| on(new, came, n),
            )?);
        }
        Ok(Ok(out))
    }
}

/// The attribute changes in the metadata sidecar (each side's sidecar is the
/// one its own `dsv.toml` names). As in the query index and `dsv stats`, a row
/// counts only for a frame file present on its side: a frame added or removed
/// brings or takes its row's attributes even when the sidecar did not change,
/// and a row naming no frame is no attribute of anything. A sidecar that does
/// not parse is a warning, as a label file would be.
fn sidecar_changes(
    changes: &[Change],
    frames: &FrameChanges,
    shadowed: &BTreeSet<String>,
    old: (&dyn FileSource, &Layout),
    new: (&dyn FileSource, &Layout),
) -> Result<std::result::Result<SidecarDiff, LabelWarning>> {
    use crate::meta::{Sidecar, SidecarFormat, sidecar_path};
    if changes.is_empty() {
        return Ok(Ok(SidecarDiff::default()));
    }
    let name_of =
        |(src, layout): (&dyn FileSource, &Layout)| sidecar_path(&layout.toml, &|p| src.exists(p));
    let (old_name, new_name) = (name_of(old)?, name_of(new)?);
    let touched = changes.iter().any(|c| {
        [Some(&c.path), c.from.as_ref()]
            .into_iter()
            .flatten()
            .any(|p| *p == old_name.as_bytes() || *p == new_name.as_bytes())
    });
    // Frames that exist on one side only (a renamed frame leaves its old path
    // and arrives at its new one; rows are by path).
    let gone: BTreeSet<&str> = frames
        .removed
        .iter()
        .map(String::as_str)
        .chain(frames.renamed.iter().map(|r| r.from.as_str()))
        .collect();
    let came: BTreeSet<&str> = frames
        .added
        .iter()
        .map(String::as_str)
        .chain(frames.renamed.iter().map(|r| r.to.as_str()))
        .collect();
    if !touched && gone.is_empty() && came.is_empty() && shadowed.is_empty() {
        return Ok(Ok(SidecarDiff::default()));
    }
    let parse = |name: &str, bytes: &[u8]| {
        Sidecar::parse(name, bytes).map_err(|e| {
            let text = e.to_string();
            let message = text
                .strip_prefix(&format!("{name}: "))
                .unwrap_or(&text)
                .to_string();
            LabelWarning {
                file: name.to_string(),
                line: None,
                column: None,
                message,
            }
        })
    };
    let new_bytes = new.0.read(&new_name)?.unwrap_or_default();
    // Untouched, it is one file, the same on both sides.
    let old_bytes = match !touched && old_name == new_name {
        true => None,
        false => Some(old.0.read(&old_name)?.unwrap_or_default()),
    };
    let old_bytes = old_bytes.as_deref().unwrap_or(&new_bytes);
    let (mut a, mut b) = {
        let jsonl = |n: &str| SidecarFormat::of(n) == SidecarFormat::Jsonl;
        let reduced = if jsonl(&old_name) && jsonl(&new_name) {
            // Rows the two versions share cannot differ, except where a frame came
            // or went: those rows are kept on both sides. The rows of an untouched
            // sidecar are read only for those frames.
            // A line without a backslash has no escape, so it names a frame only
            // if it holds the frame's file name as it is: most lines are settled
            // by a substring search instead of a parse.
            let names: Vec<memchr::memmem::Finder> = match gone.len() + came.len() + shadowed.len()
            {
                1..=16 => gone
                    .iter()
                    .chain(&came)
                    .copied()
                    .chain(shadowed.iter().map(String::as_str))
                    .map(|p| memchr::memmem::Finder::new(crate::layout::file_name(p)))
                    .collect(),
                _ => Vec::new(),
            };
            let wanted = |line: &[u8]| {
                if gone.is_empty() && came.is_empty() && shadowed.is_empty() {
                    return false;
                }
                if !names.is_empty()
                    && !line.contains(&b'\\')
                    && !names.iter().any(|f| f.find(line).is_some())
                {
                    return false;
                }
                let Ok(line) = std::str::from_utf8(line) else {
                    return true;
                };
                match crate::meta::row(line) {
                    Ok(r) => {
                        gone.contains(r.path.as_ref())
                            || came.contains(r.path.as_ref())
                            || shadowed.contains(r.path.as_ref())
                    }
                    // Kept, so the error is found where it is.
                    Err(_) => true,
                }
            };
            let (ra, rb) = crate::ops::frame_attrs::reduce_jsonl(old_bytes, &new_bytes, &wanted);
            match rayon::join(|| parse(&old_name, &ra), || parse(&new_name, &rb)) {
                (Ok(a), Ok(b)) => Some((a, b)),
                // Parsed whole again, so an error names its real line.
                _ => None,
            }
        } else {
            None
        };
        match reduced {
            Some(ab) => ab,
            None => match rayon::join(
                || parse(&old_name, old_bytes),
                || parse(&new_name, &new_bytes),
            ) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(w), _) | (_, Err(w)) => return Ok(Err(w)),
            },
        }
    };
    // The attributes each side's row sets for the frames whose label files'
    // attributes changed (a frame that is not there has no row there).
    let names: crate::ops::frame_attrs::SidecarNames = shadowed
        .iter()
        .map(|p| {
            let keys = |sc: &Sidecar, here: bool| {
                sc.rows
                    .get(p)
                    .filter(|_| here)
                    .map(|m| m.attrs.keys().cloned().collect::<BTreeSet<String>>())
                    .unwrap_or_default()
            };
            let (was, is) = (!came.contains(p.as_str()), !gone.contains(p.as_str()));
            (p.clone(), [keys(&a, was), keys(&b, is)])
        })
        .filter(|(_, [x, y])| !x.is_empty() || !y.is_empty())
        .collect();
    if !touched {
        // Only the rows of frames that came or went can have changed.
        a.rows.retain(|p, _| gone.contains(p.as_str()));
        b.rows.retain(|p, _| came.contains(p.as_str()));
    }
    for p in &gone {
        b.rows.remove(*p);
    }
    for p in &came {
        a.rows.remove(*p);
    }
    let out = crate::ops::frame_attrs::sidecar_changes(&new_name, &a, &b);
    let predictions = crate::ops::frame_attrs::prediction_changes(&new_name, &a, &b);
    // A changed row of a path that is no frame file on either side (frames that
    // came or went are settled above) is no attribute of anything.
    let is_frame = |(src, layout): (&dyn FileSource, &Layout), p: &str| -> Result<bool> {
        Ok(gone.contains(p)
            || came.contains(p)
            || (layout.role_by_path(p) == Some(Role::Frame) && src.exists(p)?))
    };
    let mut attributes = Vec::with_capacity(out.len());
    for f in out {
        if is_frame(new, &f.frame)? || is_frame(old, &f.frame)? {
            attributes.push(f);
        }
    }
    let mut kept = Vec::with_capacity(predictions.len());
    for f in predictions {
        if is_frame(new, &f.frame)? || is_frame(old, &f.frame)? {
            kept.push(f);
        }
    }
    Ok(Ok(SidecarDiff {
        file: new_name,
        attributes,
        predictions: kept,
        names,
    }))
}

/// What changed in the metadata sidecar between two versions.
#[derive(Default)]
struct SidecarDiff {
    /// The sidecar's path (the new side's).
    file: String,
    /// Frame attributes that changed.
    attributes: Vec<FrameAttributeChanges>,
    /// Predictions that changed.
    predictions: Vec<FramePredictionChanges>,
    /// The attributes the sidecar sets on each side for the frames whose
    /// label files' attributes changed.
    names: crate::ops::frame_attrs::SidecarNames,
}

/// Pairs the frames of two versions of one label file by frame name and compares them.
fn compare_frames(
    old: &[FrameLabels],
    new: &[FrameLabels],
    opts: &MatchOptions,
    resolve: impl Fn(&str, bool) -> Result<Option<String>>,
) -> Result<Vec<FrameObjects>> {
    let mut old_by: BTreeMap<&str, &FrameLabels> = BTreeMap::new();
    for f in old {
        old_by.entry(f.frame.as_str()).or_insert(f);
    }
    let new_names: BTreeSet<&str> = new.iter().map(|f| f.frame.as_str()).collect();
    let empty: Vec<Object> = Vec::new();
    let mut out = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let push = |frame: &str,
                a: Option<&FrameLabels>,
                b: Option<&FrameLabels>,
                out: &mut Vec<FrameObjects>|
     -> Result<()> {
        let oa = a.map_or(&empty, |f| &f.objects);
        let ob = b.map_or(&empty, |f| &f.objects);
        let (changes, same) = compare_objects_keeping_same(oa, ob, opts);
        if changes.is_empty() {
            return Ok(());
        }
        let unchanged = same
            .iter()
            .filter_map(|&j| ob[j].bbox.map(|b| (ob[j].class.clone(), b)))
            .take(MAX_UNCHANGED)
            .collect();
        let frame_path = match resolve(frame, b.is_some())? {
            Some(p) => Some(p),
            None if b.is_some() && a.is_some() => resolve(frame, false)?,
            None => None,
        };
        let mut class_counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for o in oa {
            class_counts.entry(o.class.clone()).or_default().0 += 1;
        }
        for o in ob {
            class_counts.entry(o.class.clone()).or_default().1 += 1;
        }
        let info = b.or(a);
        out.push(FrameObjects {
            frame: frame.to_string(),
            frame_path,
            width: info.and_then(|f| f.width),
            height: info.and_then(|f| f.height),
            units: info.map(|f| f.units).unwrap_or_default(),
            objects_before: oa.len(),
            objects_after: ob.len(),
            changes,
            class_counts,
            unchanged,
        });
        Ok(())
    };
    for f in new {
        if !seen.insert(f.frame.as_str()) {
            continue;
        }
        push(
            &f.frame,
            old_by.get(f.frame.as_str()).copied(),
            Some(f),
            &mut out,
        )?;
    }
    for f in old {
        if !new_names.contains(f.frame.as_str()) && seen.insert(f.frame.as_str()) {
            push(&f.frame, Some(f), None, &mut out)?;
        }
    }
    Ok(out)
}

fn class_totals(labels: &[LabelFileDiff]) -> Vec<ClassDelta> {
    let mut by: BTreeMap<String, ClassDelta> = BTreeMap::new();
    fn entry<'a>(by: &'a mut BTreeMap<String, ClassDelta>, c: &str) -> &'a mut ClassDelta {
        by.entry(c.to_string()).or_insert_with(|| ClassDelta {
            class: c.to_string(),
            ..ClassDelta::default()
        })
    }
    for f in labels.iter().flat_map(|l| &l.frames) {
        for (class, (b, a)) in &f.class_counts {
            let e = entry(&mut by, class);
            e.before += b;
            e.after += a;
        }
        for c in &f.changes {
            match c.kind {
                ObjectChangeKind::Added => {
                    let e = entry(&mut by, &c.class);
                    e.added += 1;
                }
                ObjectChangeKind::Removed => {
                    let e = entry(&mut by, &c.class);
                    e.removed += 1;
                }
                ObjectChangeKind::Reclassified => {
                    let old = c.old_class.as_deref().unwrap_or(&c.class);
                    let e = entry(&mut by, old);
                    e.reclassified_out += 1;
                    let e = entry(&mut by, &c.class);
                    e.reclassified_in += 1;
                }
                ObjectChangeKind::Moved => {
                    let e = entry(&mut by, &c.class);
                    e.moved += 1;
                }
                ObjectChangeKind::Attributes => {
                    let e = entry(&mut by, &c.class);
                    e.attributes += 1;
                }
            }
        }
    }
    by.into_values()
        .map(|mut c| {
            c.delta = c.after as i64 - c.before as i64;
            c
        })
        .collect()
}

/// What to compare, as `dsv diff` takes it.
#[derive(Debug, Clone, Default)]
pub struct DiffSpec {
    /// Zero, one or two revisions (`A..B` already split).
    pub revs: Vec<String>,
    /// `A...B`: compare B with where it left A instead of with A itself (see
    /// [`fork_point`]); needs two revisions.
    pub since_fork: bool,
    /// Compare the index instead of the working tree (zero or one revision).
    pub staged: bool,
    /// Root-relative path prefixes to limit the diff to (empty = all).
    pub scopes: Vec<Vec<u8>>,
    /// Parse label files and report object changes.
    pub labels: bool,
    /// Object pairing and strictness.
    pub options: LabelDiffOptions,
}

/// Splits `A..B` and `A...B` arguments into two revisions (an empty side is HEAD);
/// the flag says whether `...` was used (compare with the fork point, as git does).
pub fn split_ranges(args: &[String]) -> (Vec<String>, bool) {
    let mut revs = Vec::new();
    let mut since_fork = false;
    for r in args {
        let split = match r.split_once("...") {
            Some(sides) => {
                since_fork = true;
                Some(sides)
            }
            None => r.split_once(".."),
        };
        match split {
            Some((a, b)) => {
                revs.push(if a.is_empty() { "HEAD" } else { a }.to_string());
                revs.push(if b.is_empty() { "HEAD" } else { b }.to_string());
            }
            None => revs.push(r.clone()),
        }
    }
    (revs, since_fork)
}

/// Where `b` left `a`'s history, the base `A...B` compares `b` with: the selection
/// commit `b` was cut from that history when there is one (a selection's tree holds
/// only the frames it selected, so against anything else every frame it left out
/// would look removed), else the merge base. An error when the two share no history.
pub fn fork_point(
    repo: &crate::Repository,
    a: crate::ObjectId,
    b: crate::ObjectId,
) -> Result<crate::ObjectId> {
    use crate::object::graph::{merge_base, selection_base};
    if let Some(sel) = selection_base(&repo.store, a, b)? {
        return Ok(sel);
    }
    merge_base(&repo.store, a, b)?.ok_or_else(|| {
        crate::ops::revparse::RevError::NoCommonHistory {
            a: a.short(),
            b: b.short(),
        }
        .into()
    })
}

/// Computes the dataset diff for a repository: file level, then labels.
pub fn diff_repo(
    repo: &crate::Repository,
    spec: &DiffSpec,
    progress: &dyn crate::progress::Progress,
) -> Result<DatasetDiff> {
    use crate::object::Commit;
    use crate::object::diff::{detect_renames, diff_trees, flatten_scoped, merge_maps};
    use crate::ops::revparse::resolve;
    use crate::ops::status::worktree_states;
    use crate::worktree::delta::index_states;
    use crate::worktree::sources::{MapSource, TreeSource, WorktreeSource};

    let store = &repo.store;
    let commit_tree = |rev: &str| -> Result<(crate::ObjectId, crate::ObjectId)> {
        let c = resolve(repo, rev)?;
        Ok((c, Commit::load(store, &c)?.tree))
    };
    let load_layout = |src: &dyn FileSource| -> Result<Layout> {
        Layout::load(src)?.map_err(|e| Error::Labels(e.to_string()))
    };
    let finish = |changes: Vec<Change>,
                  old: &dyn FileSource,
                  new: &dyn FileSource,
                  from: String,
                  to: String|
     -> Result<DatasetDiff> {
        crate::object::diff::check_change_sizes(store, &changes)?;
        let changes = detect_renames(changes);
        let (lo, ln) = (load_layout(old)?, load_layout(new)?);
        let mut opts = spec.options;
        if !spec.labels {
            // File level only: classify, but do not read label contents.
            opts.strict = false;
            let mut d = label_diff(&[], (old, &lo), (new, &ln), from, to, &opts)?;
            d.files = changes;
            d.frames = classify_frames(&d.files, &ln, &lo);
            return Ok(d);
        }
        label_diff(&changes, (old, &lo), (new, &ln), from, to, &opts)
    };
    match spec.revs.as_slice() {
        [a, b] => {
            if spec.staged {
                return Err(Error::InvalidArgument(
                    "--staged compares the index with one revision, not two".into(),
                ));
            }
            let (mut ca, mut ta) = commit_tree(a)?;
            let (cb, tb) = commit_tree(b)?;
            if spec.since_fork {
                ca = fork_point(repo, ca, cb)?;
                ta = Commit::load(store, &ca)?.tree;
            }
            let changes = diff_trees(store, Some(&ta), Some(&tb), &spec.scopes)?;
            let (sa, sb) = (
                TreeSource::new(store, Some(ta)),
                TreeSource::new(store, Some(tb)),
            );
            finish(changes, &sa, &sb, ca.to_hex(), cb.to_hex())
        }
        [] | [_] if spec.since_fork => Err(Error::InvalidArgument(
            "`A...B` needs a revision on each side (an empty side is HEAD)".into(),
        )),
        [] | [_] => {
            let (from, base) = match spec.revs.first() {
                Some(r) => {
                    let (c, t) = commit_tree(r)?;
                    (c.to_hex(), Some(t))
                }
                None => match repo.head_tree()? {
                    Some(t) => (
                        repo.refs
                            .head_commit()?
                            .map(|c| c.to_hex())
                            .unwrap_or_default(),
                        Some(t),
                    ),
                    None => ("empty".to_string(), None),
                },
            };
            let old_files = flatten_scoped(store, base.as_ref(), &spec.scopes)?;
            let sa = TreeSource::new(store, base);
            let in_scope = |p: &Vec<u8>| {
                spec.scopes.is_empty()
                    || spec.scopes.iter().any(|s| crate::paths::path_within(p, s))
            };
            if spec.staged {
                let index = repo.index.load()?;
                let new_files: BTreeMap<Vec<u8>, crate::object::diff::FileState> =
                    index_states(&index)
                        .into_iter()
                        .filter(|(p, _)| in_scope(p))
                        .collect();
                let all = index_states(&index);
                let mut changes = Vec::new();
                merge_maps(old_files, new_files, &mut changes);
                let sb = MapSource::new(store, &all);
                finish(changes, &sa, &sb, from, "index".into())
            } else {
                let new_files = worktree_states(repo, &spec.scopes, progress)?;
                let mut changes = Vec::new();
                merge_maps(old_files, new_files, &mut changes);
                let sb = WorktreeSource::new(repo.root().to_path_buf());
                finish(changes, &sa, &sb, from, "worktree".into())
            }
        }
        _ => Err(Error::InvalidArgument(
            "diff takes at most two revisions".into(),
        )),
    }
}

/// Frame-level lists from file changes, without reading any label.
fn classify_frames(changes: &[Change], new: &Layout, old: &Layout) -> FrameChanges {
    let mut frames = FrameChanges::default();
    for ch in changes {
        let path = display_path(&ch.path);
        let layout = if ch.new.is_some() { new } else { old };
        if layout.role_by_path(&path) != Some(Role::Frame) {
            continue;
        }
        match ch.kind {
            ChangeKind::Added => frames.added.push(path),
            ChangeKind::Deleted => frames.removed.push(path),
            ChangeKind::Modified => frames.modified.push(path),
            ChangeKind::Renamed => frames.renamed.push(Renamed {
                from: ch.from.as_deref().map(display_path).unwrap_or_default(),
                to: path,
            }),
        }
    }
    frames
}

/// Reads a file of one side of a diff (as named by `DatasetDiff::from`/`to`):
/// a commit id, "index" or "worktree". `None` when the file is not there.
pub fn read_side_file(repo: &crate::Repository, side: &str, path: &str) -> Result<Option<Vec<u8>>> {
    use crate::worktree::sources::{TreeSource, WorktreeSource};
    match side {
        "worktree" => WorktreeSource::new(repo.root().to_path_buf()).read(path),
        "index" => {
            let index = repo.index.load()?;
            match index.entries.get(path.as_bytes()) {
                Some(e) => Ok(Some(repo.store.get(&e.id)?)),
                None => Ok(None),
            }
        }
        hex => match crate::ObjectId::from_hex(hex) {
            Some(c) => {
                let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
                TreeSource::new(&repo.store, Some(tree)).read(path)
            }
            None => Ok(None),
        },
    }
}

/// Reads many files of one side of a diff, as [`read_side_file`] does one: a
/// commit's tree objects are loaded once, not once per file (the review page
/// reads every changed frame).
pub struct SideReader<'a> {
    repo: &'a crate::Repository,
    side: SideFiles<'a>,
}

enum SideFiles<'a> {
    Worktree(crate::worktree::sources::WorktreeSource),
    Index(crate::worktree::index::IndexState),
    Tree(crate::worktree::sources::TreeSource<'a>),
    Nothing,
}

impl<'a> SideReader<'a> {
    /// A reader of `side` (a commit id, "index" or "worktree").
    pub fn new(repo: &'a crate::Repository, side: &str) -> Result<Self> {
        use crate::worktree::sources::{TreeSource, WorktreeSource};
        let side = match side {
            "worktree" => SideFiles::Worktree(WorktreeSource::new(repo.root().to_path_buf())),
            "index" => SideFiles::Index(repo.index.load()?),
            hex => match crate::ObjectId::from_hex(hex) {
                Some(c) => {
                    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
                    SideFiles::Tree(TreeSource::new(&repo.store, Some(tree)))
                }
                None => SideFiles::Nothing,
            },
        };
        Ok(SideReader { repo, side })
    }

    /// The file's bytes; `None` when it is not there.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match &self.side {
            SideFiles::Worktree(w) => w.read(path),
            SideFiles::Index(index) => match index.entries.get(path.as_bytes()) {
                Some(e) => Ok(Some(self.repo.store.get(&e.id)?)),
                None => Ok(None),
            },
            SideFiles::Tree(t) => t.read(path),
            SideFiles::Nothing => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{AttrValue, BBox, Units};

    fn frame(name: &str, objects: &[(&str, f64)]) -> FrameLabels {
        let mut f = FrameLabels::new(name, Units::Pixels);
        for (class, x) in objects {
            f.objects.push(Object::new(
                *class,
                Some(BBox {
                    x: *x,
                    y: 1.0,
                    w: 5.0,
                    h: 5.0,
                }),
            ));
        }
        f
    }

    /// The diff of one file's frames, as JSON: objects and frame attributes.
    fn diff_json(a: &[FrameLabels], b: &[FrameLabels]) -> String {
        let resolve = |name: &str, after: bool| Ok(Some(format!("{name}:{after}")));
        let objects = compare_frames(a, b, &MatchOptions::default(), resolve).unwrap();
        let attrs =
            crate::ops::frame_attrs::label_changes("l.json", a, b, resolve, |_| false).unwrap();
        format!(
            "{}\n{}",
            serde_json::to_string(&objects).unwrap(),
            serde_json::to_string(&attrs).unwrap()
        )
    }

    #[test]
    fn large_file_diff_without_equal_frames_is_the_same_diff() {
        let mut tagged = frame("t.jpg", &[("car", 1.0)]);
        tagged
            .attributes
            .insert("time".into(), AttrValue::Str("day".into()));
        let mut retagged = tagged.clone();
        retagged
            .attributes
            .insert("time".into(), AttrValue::Str("night".into()));
        let mut nan = frame("nan.jpg", &[("car", 1.0)]);
        nan.objects[0].bbox.as_mut().unwrap().x = f64::NAN;
        let old = vec![
            frame("same.jpg", &[("car", 1.0), ("dog", 2.0)]),
            frame("moved.jpg", &[("car", 1.0)]),
            frame("gone.jpg", &[("car", 1.0)]),
            frame("twice.jpg", &[("car", 1.0)]),
            frame("twice.jpg", &[("dog", 1.0)]),
            frame("zero.jpg", &[("car", 0.0)]),
            frame("tiny.jpg", &[("car", 1.0)]),
            tagged.clone(),
            nan.clone(),
            frame("later.jpg", &[("car", 1.0)]),
        ];
        let new = vec![
            frame("new.jpg", &[("cat", 1.0)]),
            // Equal to the old one, but a later new frame has its name too.
            frame("later.jpg", &[("car", 1.0)]),
            frame("twice.jpg", &[("car", 1.0)]),
            frame("moved.jpg", &[("car", 9.0)]),
            frame("twice.jpg", &[("dog", 1.0)]),
            frame("zero.jpg", &[("car", -0.0)]),
            frame("tiny.jpg", &[("car", 1.0 + 1e-12)]),
            frame("same.jpg", &[("car", 1.0), ("dog", 2.0)]),
            retagged,
            nan,
            frame("later.jpg", &[("dog", 1.0)]),
        ];
        let reading = |frames: &Vec<FrameLabels>| {
            let frames = frames.clone();
            move |each: &mut dyn FnMut(FrameLabels)| {
                frames.iter().cloned().for_each(&mut *each);
                Ok(Ok(()))
            }
        };
        let (pruned_old, pruned_new, _) =
            without_equal_frames(&mut reading(&old), &mut reading(&new), "l.json").unwrap();
        let (pruned_old, pruned_new) = (pruned_old.unwrap(), pruned_new.unwrap());
        let kept = |frames: &[FrameLabels]| -> Vec<String> {
            frames.iter().map(|f| f.frame.clone()).collect()
        };
        assert_eq!(
            (kept(&pruned_old).len(), kept(&pruned_new).len()),
            (old.len() - 1, new.len() - 1),
            "only frames named once on each side, exactly equal and free of NaN, are left out"
        );
        assert!(!kept(&pruned_new).contains(&"same.jpg".to_string()));
        assert_eq!(diff_json(&pruned_old, &pruned_new), diff_json(&old, &new));
    }
}
