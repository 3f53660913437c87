//! Label files: one normalized model for every annotation format.
//!
//! Each format has its own folder (`coco/`, `yolo/`, `kitti/`, `voc/`,
//! `cvat/`) with a parser from bytes to [`FrameLabels`], and implements
//! [`LabelFormat`] at its end; [`format_of`] is the registry. Parsers never panic
//! on input: every failure is a [`LabelError`] with a line (and column where the
//! format has one), and the caller adds the file's path. The rest of dsv (diff,
//! stats, query, export) sees only this model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod attrs;
pub mod coco;
pub mod compare;
pub mod cvat;
pub mod format;
pub mod kitti;
pub mod labelstudio;
pub mod names;
pub mod tool;
pub mod units;
pub mod voc;
pub mod yolo;

pub use attrs::Attributes;
pub use format::{
    Counts, DatasetFile, DatasetLineage, DatasetPlan, ExportLayout, FileTally, LabelFormat, Place,
    PlainBox, REGISTRY, format_from_tag, format_of, format_tag,
};
pub use names::{ClassNames, KptShape, parse_class_names};
pub use tool::AnnotationTool;

/// Every annotation tool, in the order `--format` names them: the one place
/// a tool is registered.
// Here rather than in `tool`: the tools implement that module's trait, so a
// registry beside it would make `tool` and each tool's folder import each other.
pub static TOOLS: [&dyn AnnotationTool; 2] = [&cvat::CvatTool, &labelstudio::LabelStudioTool];

/// The tool `--format` names (by its name or an alias).
pub fn tool_named(name: &str) -> Option<&'static dyn AnnotationTool> {
    TOOLS
        .iter()
        .find(|t| t.name() == name || t.aliases().contains(&name))
        .copied()
}

/// The tool whose edited files have the extension of `file`, in any case.
pub fn tool_of_file(file: &str) -> Option<&'static dyn AnnotationTool> {
    let ext = file.rsplit_once('.').map_or("", |(_, e)| e);
    TOOLS
        .iter()
        .find(|t| ext.eq_ignore_ascii_case(t.extension()))
        .copied()
}

/// The tools' names as a sentence lists them: `a, b or c`.
pub fn tool_names() -> String {
    crate::quote::or_list(TOOLS.iter().map(|t| t.name()))
}

/// The annotation formats dsv understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// COCO detection JSON: one file for many frames.
    Coco,
    /// YOLO txt: one file per frame, normalized centre/size boxes.
    Yolo,
    /// KITTI `label_2` txt: one file per frame, 15 or 16 columns.
    Kitti,
    /// Pascal VOC XML: one file per frame.
    Voc,
    /// CVAT for images XML: one file for many frames.
    Cvat,
}

impl Format {
    /// Every format, in a fixed order.
    pub const ALL: [Format; 5] = [
        Format::Coco,
        Format::Yolo,
        Format::Kitti,
        Format::Voc,
        Format::Cvat,
    ];

    /// The name used in `dsv.toml` and on the command line.
    pub fn name(self) -> &'static str {
        format_of(self).name()
    }

    /// Parses a format name as written in `dsv.toml`.
    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
    }

    /// Whether one file of this format describes many frames.
    pub fn is_multi_frame(self) -> bool {
        format_of(self).is_multi_frame()
    }
}

/// Units of box coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    /// Pixels, origin at the top-left corner.
    #[default]
    Pixels,
    /// Fractions of the image width and height (YOLO), origin at the top-left.
    Normalized,
}

/// An axis-aligned 2D box: top-left corner, width and height.
///
/// This is the one box convention of every output (`labels`, `query`,
/// `diff`, predictions, CEL's `box`): a map `{x, y, w, h}` with (x, y) the
/// top-left corner, in the [`Units`] of its frame (YOLO's centres are
/// converted on reading). See [`box_convention`].
///
/// IoU does not depend on the units as long as both boxes use the same ones
/// (scaling each axis scales intersection and union alike), so YOLO boxes can
/// be compared without knowing the image size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    #[serde(serialize_with = "ser_coord")]
    pub x: f64,
    /// Top edge.
    #[serde(serialize_with = "ser_coord")]
    pub y: f64,
    /// Width.
    #[serde(serialize_with = "ser_coord")]
    pub w: f64,
    /// Height.
    #[serde(serialize_with = "ser_coord")]
    pub h: f64,
}

/// Writes a coordinate rounded to 10 decimals: converting YOLO's centre form
/// leaves float noise (0.19999999999999998) that no label tool means.
fn ser_coord<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    let r = (v * 1e10).round() / 1e10;
    s.serialize_f64(if r.is_finite() { r + 0.0 } else { *v })
}

impl BBox {
    /// A box from corner coordinates (x1, y1, x2, y2).
    pub fn from_corners(x1: f64, y1: f64, x2: f64, y2: f64) -> BBox {
        BBox {
            x: x1,
            y: y1,
            w: x2 - x1,
            h: y2 - y1,
        }
    }

    /// A box from its centre and size (YOLO's convention).
    pub fn from_center(cx: f64, cy: f64, w: f64, h: f64) -> BBox {
        BBox {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            w,
            h,
        }
    }

    /// Area (0 for degenerate boxes).
    pub fn area(&self) -> f64 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Intersection over union, in [0, 1].
    pub fn iou(&self, other: &BBox) -> f64 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

impl Units {
    /// The word outputs print: `pixels` or `normalized`.
    pub fn name(self) -> &'static str {
        match self {
            Units::Pixels => "pixels",
            Units::Normalized => "normalized",
        }
    }
}

/// The header line text outputs print before their boxes, naming the
/// convention: `box = [x, y, w, h] (top-left corner; pixels)`, with every
/// units the boxes shown use.
pub fn box_convention(units: impl IntoIterator<Item = Units>) -> String {
    format!(
        "box = [x, y, w, h] (top-left corner; {})",
        units_words(units)
    )
}

/// The units of a set of boxes in words: `pixels`, `normalized to the image
/// size`, or both when they mix.
pub fn units_words(units: impl IntoIterator<Item = Units>) -> &'static str {
    let (mut px, mut norm) = (false, false);
    for u in units {
        match u {
            Units::Pixels => px = true,
            Units::Normalized => norm = true,
        }
    }
    match (px, norm) {
        (true, true) => "pixels, or normalized to the image size for YOLO",
        (false, true) => "normalized to the image size",
        _ => "pixels",
    }
}

/// How far (pixels) a box may reach past the image edge before it is invalid:
/// converters round, and VOC counts from 1.
pub const EDGE_TOLERANCE_PX: f64 = 1.0;
/// The same in normalized units.
pub const EDGE_TOLERANCE_NORM: f64 = 0.01;

/// What is wrong with a box, if anything: the one validation every format
/// and command applies (a coordinate that is not a finite number, a zero or
/// negative size, or a box outside the image, when its size is known, by more
/// than [`EDGE_TOLERANCE_PX`] / [`EDGE_TOLERANCE_NORM`]).
pub fn box_problem(b: &BBox, units: Units, size: (Option<u32>, Option<u32>)) -> Option<String> {
    if ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) {
        return Some(format!(
            "box is not finite (x {}, y {}, w {}, h {})",
            b.x, b.y, b.w, b.h
        ));
    }
    if b.w <= 0.0 || b.h <= 0.0 {
        return Some(format!(
            "box has zero or negative size (w {}, h {})",
            b.w, b.h
        ));
    }
    let (limit_w, limit_h, tol) = match units {
        Units::Normalized => (Some(1.0), Some(1.0), EDGE_TOLERANCE_NORM),
        Units::Pixels => (
            size.0.map(f64::from),
            size.1.map(f64::from),
            EDGE_TOLERANCE_PX,
        ),
    };
    let outside = |lo: f64, len: f64, limit: Option<f64>| {
        lo < -tol || limit.is_some_and(|l| lo + len > l + tol)
    };
    if outside(b.x, b.w, limit_w) || outside(b.y, b.h, limit_h) {
        let dims = match (limit_w, limit_h) {
            (Some(w), Some(h)) if units == Units::Pixels => format!(" {w}x{h}"),
            _ => String::new(),
        };
        return Some(format!(
            "box lies outside the{dims} image (x {}..{}, y {}..{})",
            b.x,
            b.x + b.w,
            b.y,
            b.y + b.h
        ));
    }
    None
}

/// Each invalid box of a frame's objects: "object N (CLASS): problem".
pub fn frame_box_problems(
    objects: &[Object],
    units: Units,
    size: (Option<u32>, Option<u32>),
) -> Vec<String> {
    objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let b = o.bbox.as_ref()?;
            // Lines and points may have a box of no area (one point, a
            // straight line): only a negative size is wrong there.
            let p =
                if o.geometry.as_ref().is_some_and(Geometry::is_thin) && b.w >= 0.0 && b.h >= 0.0 {
                    let grown = BBox {
                        w: b.w.max(f64::MIN_POSITIVE),
                        h: b.h.max(f64::MIN_POSITIVE),
                        ..*b
                    };
                    box_problem(&grown, units, size)?
                } else {
                    box_problem(b, units, size)?
                };
            Some(format!("object {} ({}): {p}", i + 1, o.class))
        })
        .collect()
}

/// An attribute value (of an object or a frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// true / false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A real number.
    Float(f64),
    /// Text.
    Str(String),
}

impl AttrValue {
    /// The value borrowed.
    pub fn as_attr(&self) -> AttrRef<'_> {
        match self {
            AttrValue::Bool(b) => AttrRef::Bool(*b),
            AttrValue::Int(i) => AttrRef::Int(*i),
            AttrValue::Float(x) => AttrRef::Float(*x),
            AttrValue::Str(s) => AttrRef::Str(s),
        }
    }
}

/// An attribute value borrowed: encoders take it, so a value read from a
/// file can be written without an owned copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrRef<'a> {
    /// true / false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A real number.
    Float(f64),
    /// Text.
    Str(&'a str),
}

impl AttrRef<'_> {
    /// The value owned.
    pub fn to_owned(self) -> AttrValue {
        match self {
            AttrRef::Bool(b) => AttrValue::Bool(b),
            AttrRef::Int(i) => AttrValue::Int(i),
            AttrRef::Float(x) => AttrValue::Float(x),
            AttrRef::Str(s) => AttrValue::Str(s.to_string()),
        }
    }
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => write!(f, "{x}"),
            AttrValue::Str(s) => f.write_str(s),
        }
    }
}

/// The value an attribute is counted under (`dsv stats`): real numbers all
/// under "number", any other value as its text.
pub fn attr_bucket(v: &AttrValue) -> String {
    match v {
        AttrValue::Float(_) => "number".into(),
        other => other.to_string(),
    }
}

/// Geometry beyond the 2D box, kept as it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Geometry {
    /// A polygon (or several, as COCO segmentation allows), as (x, y) points in pixels.
    Polygon {
        /// Rings of points.
        rings: Vec<Vec<[f64; 2]>>,
    },
    /// A 3D box (KITTI convention: dimensions h, w, l in metres, location x, y, z
    /// in camera coordinates, rotation about the y axis). Boxed: inline, its
    /// 56 bytes would be in every object, most of which have no geometry.
    /// Serialized as the struct variant it was (`type`, then its fields).
    Box3d(Box<Box3d>),
    /// An open line of points (CVAT `<polyline>`), in pixels. The new kinds
    /// are boxed for the same reason as [`Geometry::Box3d`].
    Polyline(Box<PointList>),
    /// Separate points (CVAT `<points>`), in pixels.
    Points(Box<PointList>),
    /// An ellipse (CVAT `<ellipse>`); its rotation is the object's `rotation`
    /// attribute, as for boxes.
    Ellipse(Box<Ellipse>),
    /// A pseudo-3D cuboid drawn on the image (CVAT `<cuboid>`): eight corners.
    Cuboid(Box<Cuboid>),
    /// A run-length encoded mask (CVAT `<mask>`, COCO RLE `segmentation`).
    Mask(Box<Mask>),
    /// Keypoints with visibility (COCO `keypoints`, CVAT `<skeleton>`), with
    /// the polygon segmentation a COCO annotation may carry.
    Keypoints(Box<Keypoints>),
}

/// Points of a polyline or a points shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointList {
    /// (x, y) in pixels, in file order.
    pub points: Vec<[f64; 2]>,
}

/// An ellipse: centre and radii, in pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ellipse {
    /// Centre x.
    pub cx: f64,
    /// Centre y.
    pub cy: f64,
    /// Radius along x.
    pub rx: f64,
    /// Radius along y.
    pub ry: f64,
}

/// A CVAT cuboid: the corners in CVAT's attribute order (`xtl1,ytl1`,
/// `xbl1,ybl1`, `xtr1,ytr1`, `xbr1,ybr1`, then the same with `2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cuboid {
    /// The eight corners, in pixels.
    pub corners: [[f64; 2]; 8],
}

/// A run-length encoded mask: alternating background and foreground run
/// lengths, starting with background, over the rectangle `left, top, width,
/// height`, in rows (CVAT) or columns (COCO, where the rectangle is the image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mask {
    /// Run lengths.
    pub counts: Vec<u32>,
    /// Left edge of the rectangle the runs cover.
    pub left: u32,
    /// Top edge.
    pub top: u32,
    /// Width of the rectangle.
    pub width: u32,
    /// Height of the rectangle.
    pub height: u32,
    /// Runs go down columns (COCO) instead of along rows (CVAT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub column_major: bool,
}

impl Mask {
    /// The bounding box of the foreground pixels (none when empty).
    pub fn bounds(&self) -> Option<BBox> {
        let (major, minor) = if self.column_major {
            (u64::from(self.height), u64::from(self.width))
        } else {
            (u64::from(self.width), u64::from(self.height))
        };
        if major == 0 || minor == 0 {
            return None;
        }
        // (lo, hi) along the run direction and across it.
        let (mut along, mut across) = ((u64::MAX, 0u64), (u64::MAX, 0u64));
        let mut pos = 0u64;
        for (k, &n) in self.counts.iter().enumerate() {
            let n = u64::from(n);
            if k % 2 == 1 && n > 0 {
                let (first, last) = (pos, pos + n - 1);
                let (l0, l1) = (first / major, last / major);
                across = (across.0.min(l0), across.1.max(l1));
                if l0 == l1 {
                    along = (along.0.min(first % major), along.1.max(last % major));
                } else {
                    along = (0, major - 1);
                }
            }
            pos = pos.saturating_add(n);
        }
        if along.0 > along.1 {
            return None;
        }
        let (xs, ys) = if self.column_major {
            (across, along)
        } else {
            (along, across)
        };
        #[allow(clippy::cast_precision_loss)]
        Some(BBox::from_corners(
            f64::from(self.left) + xs.0 as f64,
            f64::from(self.top) + ys.0 as f64,
            f64::from(self.left) + xs.1 as f64 + 1.0,
            f64::from(self.top) + ys.1 as f64 + 1.0,
        ))
    }
}

/// COCO keypoints: (x, y, visibility) triples, visibility 0 not labelled, 1
/// labelled but not visible, 2 visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keypoints {
    /// The triples, in the category's keypoint order.
    pub points: Vec<[f64; 3]>,
    /// The annotation's polygon segmentation, when it has one too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outline: Option<Vec<Vec<[f64; 2]>>>,
    /// The point labels of a CVAT `<skeleton>`, one per point, in file order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

impl Keypoints {
    /// The positions of the points that are placed (visibility above 0: visible or
    /// occluded, not outside or unlabelled).
    pub fn placed(&self) -> Vec<[f64; 2]> {
        self.points
            .iter()
            .filter(|p| p[2] > 0.0)
            .map(|p| [p[0], p[1]])
            .collect()
    }
}

impl Geometry {
    /// The shape kind's name, as diff, stats, queries and reports show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Geometry::Polygon { .. } => "polygon",
            Geometry::Box3d(_) => "box3d",
            Geometry::Polyline(_) => "polyline",
            Geometry::Points(_) => "points",
            Geometry::Ellipse(_) => "ellipse",
            Geometry::Cuboid(_) => "cuboid",
            Geometry::Mask(_) => "mask",
            Geometry::Keypoints(_) => "keypoints",
        }
    }

    /// Whether the shape is lines or points, whose bounding box may have no
    /// area (a single point, a straight line) without being wrong.
    pub fn is_thin(&self) -> bool {
        matches!(
            self,
            Geometry::Polyline(_) | Geometry::Points(_) | Geometry::Keypoints(_)
        )
    }
}

/// A 3D box (KITTI convention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Box3d {
    /// Height, width, length.
    pub dimensions: [f64; 3],
    /// Centre of the bottom face.
    pub location: [f64; 3],
    /// Rotation around the vertical axis, radians.
    pub rotation_y: f64,
}

/// The most points dsv reads in one polygon. No annotation tool draws a
/// polygon of a million points; a polygon that large is damage or an attack,
/// and refusing it keeps the memory of every command bounded by its input (a
/// point costs 16 bytes parsed, from as few as 4 bytes of text).
pub const MAX_POLYGON_POINTS: usize = 1_000_000;

/// The most objects dsv reads in one frame of a one-file-per-frame format
/// (YOLO, KITTI, VOC). The densest real images hold a few tens of thousands;
/// a file of millions of lines is damage or an attack, and an object costs
/// about 200 bytes parsed, from as few as 10 bytes of text.
pub const MAX_OBJECTS_PER_FRAME: usize = 100_000;

/// The error of a frame past [`MAX_OBJECTS_PER_FRAME`], at its line.
pub(crate) fn too_many_objects(line: usize) -> LabelError {
    LabelError::at_line(
        line,
        format!(
            "more than {MAX_OBJECTS_PER_FRAME} objects in one frame: dsv reads at most that many"
        ),
    )
}

/// One labelled object in a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Class name (numeric classes without a names file become their number as text).
    pub class: String,
    /// The 2D box, if the object has one. Written as `box` (the name queries
    /// use); `bbox`, the name of older builds, is still read.
    #[serde(
        rename = "box",
        alias = "bbox",
        skip_serializing_if = "Option::is_none"
    )]
    pub bbox: Option<BBox>,
    /// An identifier from the file (COCO annotation id, CVAT track id, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Attributes: occluded, truncated, difficult, score, and any tool-specific ones.
    #[serde(skip_serializing_if = "Attributes::is_empty", default)]
    pub attributes: Attributes,
    /// Polygon or 3D box, when the format has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geometry: Option<Geometry>,
}

impl Object {
    /// The shape kind: `box` for a plain box, else the geometry's kind
    /// ([`Geometry::kind`]); `none` for an object with neither.
    pub fn kind(&self) -> &'static str {
        match (&self.geometry, &self.bbox) {
            (Some(g), _) => g.kind(),
            (None, Some(_)) => "box",
            (None, None) => "none",
        }
    }

    /// An object with a class and a box and nothing else.
    pub fn new(class: impl Into<String>, bbox: Option<BBox>) -> Object {
        Object {
            class: class.into(),
            bbox,
            id: None,
            attributes: Attributes::new(),
            geometry: None,
        }
    }
}

/// The labels of one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameLabels {
    /// How the label file names the frame: COCO's `file_name`, VOC's
    /// `<filename>`, CVAT's `name`; for one-file-per-frame formats without a
    /// name inside (YOLO, KITTI) the label file's stem. Resolved to a path in
    /// the tree by the caller.
    pub frame: String,
    /// Image width in pixels, when the file says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height in pixels, when the file says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Units of every box in `objects`.
    pub units: Units,
    /// Frame-level attributes (extra fields on COCO images, CVAT image tags...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub attributes: BTreeMap<String, AttrValue>,
    /// The labelled objects, in file order.
    pub objects: Vec<Object>,
}

impl FrameLabels {
    /// An empty frame in the given units.
    pub fn new(frame: impl Into<String>, units: Units) -> FrameLabels {
        FrameLabels {
            frame: frame.into(),
            width: None,
            height: None,
            units,
            attributes: BTreeMap::new(),
            objects: Vec::new(),
        }
    }
}

/// What a parser needs besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct ParseContext {
    /// Class names by index, for formats that store numbers (YOLO), with a
    /// pose dataset's `kpt_shape`. Read from `data.yaml`, `obj.names` or
    /// `classes.txt` by [`parse_class_names`]. Shared, because every
    /// label file of a directory uses the same list.
    pub class_names: Option<std::sync::Arc<ClassNames>>,
    /// The label file's stem, used as the frame name by YOLO and KITTI.
    pub stem: String,
}

/// A parse failure inside one label file (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location(*line, *column))]
pub struct LabelError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

impl LabelError {
    /// An error at a line.
    pub fn at_line(line: usize, message: impl Into<String>) -> LabelError {
        LabelError {
            line: Some(line),
            column: None,
            message: message.into(),
        }
    }

    /// An error without a position.
    pub fn msg(message: impl Into<String>) -> LabelError {
        LabelError {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// The 1-based line and column of a byte offset in `bytes`.
    pub fn at_offset(bytes: &[u8], offset: usize, message: impl Into<String>) -> LabelError {
        let offset = offset.min(bytes.len());
        let before = &bytes[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = offset
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        LabelError {
            line: Some(line),
            column: Some(col),
            message: message.into(),
        }
    }
}

/// Parses one label file of a known format.
pub fn parse(
    format: Format,
    bytes: &[u8],
    ctx: &ParseContext,
) -> Result<Vec<FrameLabels>, LabelError> {
    format_of(format).parse(bytes, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::from_corners(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::from_corners(20.0, 20.0, 30.0, 30.0)), 0.0);
        let b = BBox::from_corners(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-12);
    }

    #[test]
    fn object_box_is_written_as_box_and_read_under_its_old_name_bbox() {
        let o = Object::new("car", Some(BBox::from_center(0.5, 0.5, 0.2, 0.4)));
        let v = serde_json::to_value(&o).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"class": "car", "box": {"x": 0.4, "y": 0.3, "w": 0.2, "h": 0.4}})
        );
        let old = r#"{"class": "car", "bbox": {"x": 0.4, "y": 0.3, "w": 0.2, "h": 0.4}}"#;
        let back: Object = serde_json::from_str(old).expect("old name read");
        let want = BBox {
            x: 0.4,
            y: 0.3,
            w: 0.2,
            h: 0.4,
        };
        assert_eq!(back.bbox, Some(want));
        assert_eq!(
            box_convention([Units::Normalized, Units::Pixels]),
            "box = [x, y, w, h] (top-left corner; pixels, or normalized to the image size for YOLO)"
        );
    }

    #[test]
    fn object_stays_small_with_every_shape_kind() {
        // Every shape beyond the polygon is boxed: objects stay the size
        // they were with boxes and polygons only.
        assert_eq!(std::mem::size_of::<Option<Geometry>>(), 24);
        assert!(
            std::mem::size_of::<Object>() <= 144,
            "{}",
            std::mem::size_of::<Object>()
        );
    }

    #[test]
    fn mask_bounds_in_rows_and_columns() {
        // 3 wide, 2 high, rows: . X X / . X .
        let m = Mask {
            counts: vec![1, 2, 1, 1, 1],
            left: 10,
            top: 20,
            width: 3,
            height: 2,
            column_major: false,
        };
        assert_eq!(m.bounds(), Some(BBox::from_corners(11.0, 20.0, 13.0, 22.0)));
        // Same picture in columns: col0 . . / col1 X X / col2 X .
        let m = Mask {
            counts: vec![2, 3, 1],
            left: 0,
            top: 0,
            width: 3,
            height: 2,
            column_major: true,
        };
        assert_eq!(m.bounds(), Some(BBox::from_corners(1.0, 0.0, 3.0, 2.0)));
        let empty = Mask {
            counts: vec![6],
            left: 0,
            top: 0,
            width: 3,
            height: 2,
            column_major: true,
        };
        assert_eq!(empty.bounds(), None);
    }

    #[test]
    fn error_position_from_offset() {
        let e = LabelError::at_offset(b"ab\ncd\nef", 4, "bad");
        assert_eq!((e.line, e.column), (Some(2), Some(2)));
        assert_eq!(e.to_string(), "line 2, column 2: bad");
    }
}
