//! CVAT for images XML 1.1: one file describing many frames.
//!
//! Mapping to the normalized model:
//!
//! - each `<image id name width height>` is a [`FrameLabels`] (frame = `name`,
//!   pixels), in file order. Its other XML attributes (`subset`, `task_id` in
//!   project exports) become frame attributes, typed from their text:
//!   `true`/`false` are `Bool`, integers and decimals written canonically
//!   (`3`, `2.5`, not `007` or `2.50`) are `Int`/`Float`, the rest is `Str`.
//! - `<tag label="L">` on an image becomes the frame attribute `tag:L` =
//!   `Bool(true)`.
//! - `<box label xtl ytl xbr ybr>` is an [`Object`] with the box from its
//!   corners; `<polygon label points="x,y;x,y">` is an object with a
//!   [`Geometry::Polygon`] of one ring and the bounding box of its points.
//! - object attributes: `occluded` (always, `Bool`), `z_order` (`Int`, when
//!   non-zero), `group_id` (`Int`, when non-zero), `rotation` (`Float`, when
//!   non-zero), then each child `<attribute name="..">value</attribute>`,
//!   typed by the label's attribute spec in `<meta>` (checkbox = `Bool`,
//!   number = `Int` or `Float`, text/select/radio = `Str`) or, without a spec,
//!   from its text like frame attributes. A child attribute overrides an XML
//!   attribute of the same name.
//! - `<track id label>` (video tasks): each `<box frame=N>` or
//!   `<polygon frame=N>` not marked `outside="1"` is an object on the image
//!   whose `id` is N (the first such image in project exports, where ids
//!   repeat per task), with [`Object::id`] = the track id. Frames that only
//!   tracks mention (video exports have no `<image>`) are added after the
//!   images, in frame order, named like `frame_000123` and sized
//!   from `<meta>`'s `original_size`. On each frame, tracked objects come after
//!   the image's own shapes, ordered by track id (numerically), then label.
//!
//! - `<polyline>`, `<points>`, `<ellipse>`, `<cuboid>` and `<mask>` are
//!   objects with the matching [`Geometry`]; a `<skeleton>` is one object
//!   with [`Geometry::Keypoints`]: a point per child `<points label
//!   points="x,y">`, visibility 0 when `outside`, 1 when `occluded`, else 2,
//!   the child labels in [`Keypoints::labels`], and the box the bounds of the
//!   points not outside. A child's `<attribute name="N">` is the skeleton's
//!   attribute `LABEL/N`. A track's skeleton whose points are all outside is
//!   outside.
//!
//! Everything else dsv does not know is skipped.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::{partial_escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};

use super::{
    AttrValue, BBox, Cuboid, Ellipse, FrameLabels, Geometry, Keypoints, LabelError, Mask, Object,
    PointList, Units,
};

mod format;
pub use format::{CvatFormat, CvatTool};

/// Whether the bytes look like CVAT XML (a cheap check on the first bytes).
pub fn sniff(path: &str, head: &[u8]) -> bool {
    if !path.to_ascii_lowercase().ends_with(".xml") {
        return false;
    }
    // VOC's root is <annotation>: the plural (followed by a delimiter) is CVAT's.
    head.windows(13).any(|w| {
        w.starts_with(b"<annotations")
            && matches!(w.get(12), Some(b'>' | b' ' | b'\n' | b'\r' | b'\t'))
    })
}

/// Types an attribute value that comes without a spec: `true`/`false` are
/// `Bool`, integers and decimals written canonically (`3`, `2.5`, not `007`
/// or `2.50`) are `Int`/`Float`, everything else stays text. The canonical
/// rule means writing a value back reproduces the same text and type.
fn infer(text: &str) -> AttrValue {
    match text {
        "true" => return AttrValue::Bool(true),
        "false" => return AttrValue::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>()
        && i.to_string() == text
    {
        return AttrValue::Int(i);
    }
    if let Ok(x) = text.parse::<f64>()
        && x.is_finite()
        && format!("{x:?}") == text
    {
        return AttrValue::Float(x);
    }
    AttrValue::Str(text.to_string())
}

/// Types a child attribute value by its CVAT `input_type`.
fn typed(input_type: Option<&str>, text: &str) -> AttrValue {
    match input_type {
        Some("checkbox") if text.eq_ignore_ascii_case("true") => AttrValue::Bool(true),
        Some("checkbox") if text.eq_ignore_ascii_case("false") => AttrValue::Bool(false),
        Some("number") => {
            let t = text.trim();
            if let Ok(i) = t.parse::<i64>() {
                AttrValue::Int(i)
            } else {
                match t.parse::<f64>() {
                    Ok(x) if x.is_finite() => AttrValue::Float(x),
                    _ => infer(text),
                }
            }
        }
        Some("text" | "select" | "radio") => AttrValue::Str(text.to_string()),
        _ => infer(text),
    }
}

/// The shape elements dsv reads, in images and tracks.
const SHAPES: [&str; 7] = [
    "box", "polygon", "polyline", "points", "ellipse", "cuboid", "mask",
];

/// CVAT's cuboid corner attributes, in the order of [`Cuboid::corners`].
const CUBOID_KEYS: [(&str, &str); 8] = [
    ("xtl1", "ytl1"),
    ("xbl1", "ybl1"),
    ("xtr1", "ytr1"),
    ("xbr1", "ybr1"),
    ("xtl2", "ytl2"),
    ("xbl2", "ybl2"),
    ("xtr2", "ytr2"),
    ("xbr2", "ybr2"),
];

/// What an open element is, as far as dsv cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    Root,
    Meta,
    Image,
    Track,
    Shape,
    /// A `<points>` inside a `<skeleton>`.
    Point,
    Attribute,
    Other,
}

/// A box or polygon being read.
struct Shape {
    obj: Object,
    /// Child `<attribute>`s as text; typed when the shape closes.
    raw: Vec<(String, String)>,
    /// For track shapes: the frame number and whether it is `outside`.
    track: Option<(u64, bool)>,
}

/// A track shape waiting for all images to be known.
struct Tracked {
    frame: u64,
    order: (u64, String, String),
    obj: Object,
}

/// What `<meta>` says that matters: attribute specs and the video frame size.
#[derive(Default)]
struct Meta {
    path: Vec<String>,
    text: String,
    label: Option<String>,
    label_specs: Vec<(String, String)>,
    spec_name: Option<String>,
    spec_type: Option<String>,
    /// label -> attribute name -> input_type.
    specs: HashMap<String, HashMap<String, String>>,
    width: Option<u32>,
    height: Option<u32>,
}

impl Meta {
    fn ends_with(&self, tail: &[&str]) -> bool {
        self.path.len() >= tail.len()
            && self
                .path
                .iter()
                .rev()
                .zip(tail.iter().rev())
                .all(|(a, b)| a == b)
    }

    fn open(&mut self, name: &str) {
        self.path.push(name.to_string());
        self.text.clear();
    }

    fn close(&mut self) {
        let text = std::mem::take(&mut self.text);
        if self.ends_with(&["label", "attributes", "attribute", "name"]) {
            self.spec_name = Some(text);
        } else if self.ends_with(&["label", "attributes", "attribute", "input_type"]) {
            self.spec_type = Some(text.trim().to_string());
        } else if self.ends_with(&["labels", "label", "name"]) {
            self.label = Some(text);
        } else if self.ends_with(&["label", "attributes", "attribute"]) {
            if let Some(name) = self.spec_name.take() {
                let kind = self.spec_type.take().unwrap_or_default();
                self.label_specs.push((name, kind));
            }
        } else if self.ends_with(&["labels", "label"]) {
            let specs = std::mem::take(&mut self.label_specs);
            if let Some(label) = self.label.take() {
                self.specs.entry(label).or_default().extend(specs);
            }
        } else if self.ends_with(&["original_size", "width"]) {
            self.width = text.trim().parse().ok();
        } else if self.ends_with(&["original_size", "height"]) {
            self.height = text.trim().parse().ok();
        }
        self.path.pop();
    }
}

/// One XML attribute of a tag, unescaped, with where its value starts.
struct XmlAttr<'e> {
    key: &'e str,
    value: Cow<'e, str>,
    at: usize,
}

/// What the parser keeps of what it reads.
enum Keep<'k> {
    /// Every frame, returned at the end ([`parse`]).
    All,
    /// Frames without their objects: the file is only checked ([`check`]).
    NoObjects,
    /// Each frame handed over when its `<image>` closes ([`parse_each`] of a
    /// file without tracks, whose frames are then complete at that point).
    Each(&'k mut dyn FnMut(FrameLabels)),
}

/// Parser state between events.
struct Parser<'x, 'k> {
    keep: Keep<'k>,
    /// The whole input, to turn positions into lines.
    bytes: &'x [u8],
    /// The text being parsed (after a BOM) and its offset in `bytes`.
    text: &'x str,
    base: usize,
    frames: Vec<FrameLabels>,
    image_ids: HashMap<u64, usize>,
    stack: Vec<El>,
    image: Option<usize>,
    track: Option<(String, String, Option<i64>)>,
    shape: Option<Shape>,
    attr: Option<(String, String)>,
    tracked: Vec<Tracked>,
    meta: Meta,
    saw_root: bool,
}

/// Parses a whole CVAT for images XML file into its frames.
pub fn parse(bytes: &[u8]) -> Result<Vec<FrameLabels>, LabelError> {
    read(bytes, Keep::All)
}

/// Whether [`parse`] accepts the file (the same error when not), without
/// keeping its objects: a file of millions of shapes is checked in the
/// memory of the file and its frame list.
pub fn check(bytes: &[u8]) -> Result<(), LabelError> {
    read(bytes, Keep::NoObjects).map(drop)
}

/// The frames [`parse`] returns, in the same order, handed to `each` one at
/// a time, so a consumer that counts or encodes them never holds the whole
/// file's objects. Frames of a file with tracks are complete only at its
/// end: those are parsed whole first. On an error, the frames already handed
/// over are to be discarded.
pub fn parse_each(bytes: &[u8], each: &mut dyn FnMut(FrameLabels)) -> Result<(), LabelError> {
    // Any `<track` (even in text or a comment) takes the whole path: the
    // cheap test errs only on the side of holding more.
    if memchr::memmem::find(bytes, b"<track").is_some() {
        read(bytes, Keep::All)?.into_iter().for_each(each);
        return Ok(());
    }
    read(bytes, Keep::Each(each)).map(drop)
}

fn read(bytes: &[u8], keep: Keep<'_>) -> Result<Vec<FrameLabels>, LabelError> {
    let (body, base) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, 3),
        None => (bytes, 0),
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        LabelError::at_offset(
            bytes,
            base + e.valid_up_to(),
            "the file is not UTF-8 text (CVAT XML is UTF-8)",
        )
    })?;
    let mut p = Parser {
        keep,
        bytes,
        text,
        base,
        frames: Vec::new(),
        image_ids: HashMap::new(),
        stack: Vec::new(),
        image: None,
        track: None,
        shape: None,
        attr: None,
        tracked: Vec::new(),
        meta: Meta::default(),
        saw_root: false,
    };
    let mut reader = Reader::from_str(text);
    loop {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            p.error(at, format!("malformed XML: {e}"))
        })?;
        match event {
            Event::Start(e) => {
                let el = p.open(&e, pos)?;
                p.stack.push(el);
            }
            Event::Empty(e) => {
                let el = p.open(&e, pos)?;
                p.close(el);
            }
            Event::End(_) => {
                if let Some(el) = p.stack.pop() {
                    p.close(el);
                }
            }
            Event::Text(t) => p.push_text(&t.xml10_content()),
            Event::CData(c) => p.push_text(&c.xml10_content()),
            // References only matter inside text dsv keeps.
            Event::GeneralRef(r) if p.collecting() => {
                let ch = r
                    .resolve_char_ref()
                    .map_err(|e| p.error(pos, e.to_string()))?;
                match ch {
                    Some(c) => p.push_text(c.encode_utf8(&mut [0; 4])),
                    None => match resolve_predefined_entity(&r) {
                        Some(s) => p.push_text(s),
                        None => {
                            return Err(p.error(pos, format!("unknown entity &{};", &*r)));
                        }
                    },
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !p.saw_root {
        return Err(p.error(
            text.len(),
            "no <annotations> element: this is not a CVAT XML file",
        ));
    }
    if !p.stack.is_empty() {
        return Err(p.error(
            text.len(),
            "the file ends before </annotations>: it looks truncated",
        ));
    }
    Ok(p.finish())
}

impl<'x> Parser<'x, '_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> LabelError {
        LabelError::at_offset(self.bytes, self.base.saturating_add(offset), message)
    }

    /// Offset of `part` in the input when it is a slice of it (attribute
    /// values usually are), so errors can point at the value itself.
    fn offset_of(&self, part: &str) -> Option<usize> {
        let start = (part.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        (start + part.len() <= self.text.len()).then_some(start)
    }

    fn collecting(&self) -> bool {
        matches!(self.stack.last(), Some(El::Attribute | El::Meta))
    }

    fn push_text(&mut self, s: &str) {
        match self.stack.last() {
            Some(El::Attribute) => {
                if let Some((_, text)) = &mut self.attr {
                    text.push_str(s);
                }
            }
            Some(El::Meta) => self.meta.text.push_str(s),
            _ => {}
        }
    }

    /// Handles an opening (or empty) tag; returns what it is.
    fn open(&mut self, e: &BytesStart, pos: usize) -> Result<El, LabelError> {
        let name = e.name();
        let name = name.as_ref();
        let el = match (self.stack.last(), name) {
            (None, "annotations") => {
                self.saw_root = true;
                El::Root
            }
            (None, other) => {
                return Err(self.error(
                    pos,
                    format!("the root element is <{other}>, not <annotations>: this is not a CVAT XML file"),
                ));
            }
            (Some(El::Root), "meta") | (Some(El::Meta), _) => {
                self.meta.open(name);
                El::Meta
            }
            (Some(El::Root), "image") => {
                self.open_image(e, pos)?;
                El::Image
            }
            (Some(El::Root), "track") => {
                self.open_track(e, pos)?;
                El::Track
            }
            (Some(El::Image), kind) if SHAPES.contains(&kind) => {
                self.open_shape(e, pos, false)?;
                El::Shape
            }
            (Some(El::Track), kind) if SHAPES.contains(&kind) || kind == "skeleton" => {
                self.open_shape(e, pos, true)?;
                El::Shape
            }
            (Some(El::Image), "skeleton") => {
                self.open_shape(e, pos, false)?;
                El::Shape
            }
            (Some(El::Shape), "points") if self.skeleton().is_some() => {
                self.open_point(e, pos)?;
                El::Point
            }
            (Some(El::Image), "tag") => {
                let attrs = self.attributes(e, pos)?;
                let label = self.label(&attrs, "tag", pos)?;
                let key = format!("tag:{label}");
                if let Some(frame) = self.image.and_then(|i| self.frames.get_mut(i)) {
                    frame.attributes.insert(key, AttrValue::Bool(true));
                }
                El::Other
            }
            (Some(El::Shape), "attribute") => {
                let attrs = self.attributes(e, pos)?;
                let name = self.required(&attrs, "attribute", "name", pos)?;
                self.attr = Some((name.to_string(), String::new()));
                El::Attribute
            }
            // A skeleton point's attributes become the skeleton's, named
            // `POINT/NAME`, so that they are compared and written back.
            (Some(El::Point), "attribute") => {
                let attrs = self.attributes(e, pos)?;
                let name = self.required(&attrs, "attribute", "name", pos)?;
                let point = self
                    .skeleton()
                    .and_then(|k| k.labels.as_ref()?.last().cloned())
                    .unwrap_or_default();
                self.attr = Some((format!("{point}/{name}"), String::new()));
                El::Attribute
            }
            _ => El::Other,
        };
        Ok(el)
    }

    fn close(&mut self, el: El) {
        match el {
            El::Meta => self.meta.close(),
            El::Image => {
                if let Some(frame) = self.image.and_then(|i| self.frames.get_mut(i)) {
                    fit(&mut frame.objects);
                    if let Keep::Each(each) = &mut self.keep {
                        // Only the frame's place stays: its index is what
                        // `image_ids` keeps, and no track will need it.
                        each(std::mem::replace(
                            frame,
                            FrameLabels::new(String::new(), Units::Pixels),
                        ));
                    }
                }
                self.image = None;
            }
            El::Track => self.track = None,
            El::Attribute => {
                if let (Some(attr), Some(shape)) = (self.attr.take(), &mut self.shape) {
                    shape.raw.push(attr);
                }
            }
            El::Shape => self.close_shape(),
            El::Root | El::Point | El::Other => {}
        }
    }

    /// The attributes of a tag, unescaped, with the raw value kept for positions.
    fn attributes<'e>(
        &self,
        e: &'e BytesStart,
        pos: usize,
    ) -> Result<Vec<XmlAttr<'e>>, LabelError> {
        let mut out = Vec::new();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.error(pos, format!("malformed XML: {err}")))?;
            let at = self.offset_of(&attr.value).unwrap_or(pos);
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| self.error(at, format!("malformed XML: {err}")))?;
            out.push(XmlAttr {
                key: attr.key.0,
                value,
                at,
            });
        }
        Ok(out)
    }

    fn get<'a>(attrs: &'a [XmlAttr], key: &str) -> Option<(&'a str, usize)> {
        attrs
            .iter()
            .find(|a| a.key == key)
            .map(|a| (a.value.as_ref(), a.at))
    }

    fn required<'a>(
        &self,
        attrs: &'a [XmlAttr],
        element: &str,
        key: &str,
        pos: usize,
    ) -> Result<&'a str, LabelError> {
        Self::get(attrs, key)
            .map(|(v, _)| v)
            .ok_or_else(|| self.error(pos, format!("<{element}> has no {key}=\"...\"")))
    }

    /// A shape's, track's or tag's label: CVAT has no unlabelled shapes, and
    /// one read as class "" would be counted and compared as a class.
    fn label<'a>(
        &self,
        attrs: &'a [XmlAttr],
        element: &str,
        pos: usize,
    ) -> Result<&'a str, LabelError> {
        match Self::get(attrs, "label") {
            None => Err(self.error(
                pos,
                format!("<{element}> has no label=\"...\": every CVAT shape needs a label"),
            )),
            Some((v, at)) if v.trim().is_empty() => Err(self.error(
                at,
                format!("<{element}> has an empty label=\"\": every CVAT shape needs a label"),
            )),
            Some((v, _)) => Ok(v),
        }
    }

    /// A `<mask rle="n,n,..." left top width height>`.
    fn mask(&self, attrs: &[XmlAttr], pos: usize) -> Result<Mask, LabelError> {
        let whole = |key: &str| -> Result<u32, LabelError> {
            self.number(attrs, "mask", key, "a whole number of pixels")?
                .ok_or_else(|| self.error(pos, format!("<mask> has no {key}=\"...\"")))
        };
        let (rle, at) =
            Self::get(attrs, "rle").ok_or_else(|| self.error(pos, "<mask> has no rle=\"...\""))?;
        let counts = rle
            .split(',')
            .map(|n| n.trim().parse::<u32>())
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| {
                let shown: String = rle.chars().take(40).collect();
                self.error(
                    at,
                    format!("<mask> rle=\"{shown}\" is not a list of whole numbers n,n,..."),
                )
            })?;
        Ok(Mask {
            counts,
            left: whole("left")?,
            top: whole("top")?,
            width: whole("width")?,
            height: whole("height")?,
            column_major: false,
        })
    }

    fn number<T: std::str::FromStr>(
        &self,
        attrs: &[XmlAttr],
        element: &str,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, LabelError> {
        match Self::get(attrs, key) {
            None => Ok(None),
            Some((v, at)) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.error(at, format!("<{element}> {key}=\"{v}\" is not {what}"))),
        }
    }

    fn coordinate(
        &self,
        attrs: &[XmlAttr],
        element: &str,
        key: &str,
        pos: usize,
    ) -> Result<f64, LabelError> {
        let (v, at) = Self::get(attrs, key)
            .ok_or_else(|| self.error(pos, format!("<{element}> has no {key}=\"...\"")))?;
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.error(at, format!("<{element}> {key}=\"{v}\" is not a number"))),
        }
    }

    fn flag(&self, attrs: &[XmlAttr], element: &str, key: &str) -> Result<bool, LabelError> {
        match Self::get(attrs, key) {
            None => Ok(false),
            Some((v, at)) => match v.trim() {
                "1" => Ok(true),
                "0" => Ok(false),
                t if t.eq_ignore_ascii_case("true") => Ok(true),
                t if t.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(self.error(at, format!("<{element}> {key}=\"{v}\" is not 0 or 1"))),
            },
        }
    }

    fn open_image(&mut self, e: &BytesStart, pos: usize) -> Result<(), LabelError> {
        let attrs = self.attributes(e, pos)?;
        let name = self.required(&attrs, "image", "name", pos)?;
        let mut frame = FrameLabels::new(name, Units::Pixels);
        frame.width = self.number(&attrs, "image", "width", "a whole number of pixels")?;
        frame.height = self.number(&attrs, "image", "height", "a whole number of pixels")?;
        let id: Option<u64> = self.number(&attrs, "image", "id", "a frame number")?;
        for a in &attrs {
            if !matches!(a.key, "id" | "name" | "width" | "height") {
                frame.attributes.insert(a.key.to_string(), infer(&a.value));
            }
        }
        if let Some(id) = id {
            self.image_ids.entry(id).or_insert(self.frames.len());
        }
        self.image = Some(self.frames.len());
        self.frames.push(frame);
        Ok(())
    }

    fn open_track(&mut self, e: &BytesStart, pos: usize) -> Result<(), LabelError> {
        let attrs = self.attributes(e, pos)?;
        let id = self
            .required(&attrs, "track", "id", pos)?
            .trim()
            .to_string();
        let label = self.label(&attrs, "track", pos)?.to_string();
        let group = self.number(&attrs, "track", "group_id", "a whole number")?;
        self.track = Some((id, label, group));
        Ok(())
    }

    fn open_shape(&mut self, e: &BytesStart, pos: usize, in_track: bool) -> Result<(), LabelError> {
        let element = e.name();
        let element = element.as_ref();
        let attrs = self.attributes(e, pos)?;
        let (label, id, track_group) = match (&self.track, in_track) {
            (Some((id, label, group)), true) => (label.clone(), Some(id.clone()), *group),
            _ => (self.label(&attrs, element, pos)?.to_string(), None, None),
        };
        let mut obj = if element == "box" {
            let xtl = self.coordinate(&attrs, element, "xtl", pos)?;
            let ytl = self.coordinate(&attrs, element, "ytl", pos)?;
            let xbr = self.coordinate(&attrs, element, "xbr", pos)?;
            let ybr = self.coordinate(&attrs, element, "ybr", pos)?;
            Object::new(label, Some(BBox::from_corners(xtl, ytl, xbr, ybr)))
        } else if element == "ellipse" {
            let e = Ellipse {
                cx: self.coordinate(&attrs, element, "cx", pos)?,
                cy: self.coordinate(&attrs, element, "cy", pos)?,
                rx: self.coordinate(&attrs, element, "rx", pos)?,
                ry: self.coordinate(&attrs, element, "ry", pos)?,
            };
            let bbox = BBox::from_corners(e.cx - e.rx, e.cy - e.ry, e.cx + e.rx, e.cy + e.ry);
            let mut obj = Object::new(label, Some(bbox));
            obj.geometry = Some(Geometry::Ellipse(Box::new(e)));
            obj
        } else if element == "cuboid" {
            let mut corners = [[0.0; 2]; 8];
            for (c, (kx, ky)) in corners.iter_mut().zip(CUBOID_KEYS) {
                *c = [
                    self.coordinate(&attrs, element, kx, pos)?,
                    self.coordinate(&attrs, element, ky, pos)?,
                ];
            }
            let mut obj = Object::new(label, bounds(&corners));
            obj.geometry = Some(Geometry::Cuboid(Box::new(Cuboid { corners })));
            obj
        } else if element == "skeleton" {
            // The points and the box come from the child `<points>`.
            let mut obj = Object::new(label, None);
            obj.geometry = Some(Geometry::Keypoints(Box::new(Keypoints {
                points: Vec::new(),
                outline: None,
                labels: Some(Vec::new()),
            })));
            obj
        } else if element == "mask" {
            let mask = self.mask(&attrs, pos)?;
            let bbox = BBox {
                x: f64::from(mask.left),
                y: f64::from(mask.top),
                w: f64::from(mask.width),
                h: f64::from(mask.height),
            };
            let mut obj = Object::new(label, Some(bbox));
            obj.geometry = Some(Geometry::Mask(Box::new(mask)));
            obj
        } else {
            let (points, at) = Self::get(&attrs, "points")
                .ok_or_else(|| self.error(pos, format!("<{element}> has no points=\"...\"")))?;
            let count = points.split(';').filter(|p| !p.trim().is_empty()).count();
            if count > super::MAX_POLYGON_POINTS {
                return Err(self.error(
                    at,
                    format!(
                        "<{element}> has {count} points: dsv reads at most {} points per polygon",
                        super::MAX_POLYGON_POINTS
                    ),
                ));
            }
            let ring = parse_points(points).ok_or_else(|| {
                // A short prefix: the attribute may be megabytes long.
                let shown: String = points.chars().take(40).collect();
                let more = if shown.len() < points.len() {
                    "..."
                } else {
                    ""
                };
                self.error(
                    at,
                    format!(
                        "<{element}> points=\"{shown}{more}\" is not a list of x,y;x,y numbers"
                    ),
                )
            })?;
            let mut obj = Object::new(label, bounds(&ring));
            obj.geometry = Some(match element {
                "polyline" => Geometry::Polyline(Box::new(PointList { points: ring })),
                "points" => Geometry::Points(Box::new(PointList { points: ring })),
                _ => Geometry::Polygon { rings: vec![ring] },
            });
            obj
        };
        obj.id = id;
        obj.attributes.insert(
            "occluded".to_string(),
            AttrValue::Bool(self.flag(&attrs, element, "occluded")?),
        );
        let z: Option<i64> = self.number(&attrs, element, "z_order", "a whole number")?;
        if let Some(z) = z.filter(|z| *z != 0) {
            obj.attributes
                .insert("z_order".to_string(), AttrValue::Int(z));
        }
        let group: Option<i64> = self.number(&attrs, element, "group_id", "a whole number")?;
        if let Some(g) = group.or(track_group).filter(|g| *g != 0) {
            obj.attributes
                .insert("group_id".to_string(), AttrValue::Int(g));
        }
        if Self::get(&attrs, "rotation").is_some() {
            let r = self.coordinate(&attrs, element, "rotation", pos)?;
            if r != 0.0 {
                obj.attributes
                    .insert("rotation".to_string(), AttrValue::Float(r));
            }
        }
        let track = if in_track {
            let frame = self
                .number(&attrs, element, "frame", "a frame number")?
                .ok_or_else(|| {
                    self.error(
                        pos,
                        format!("<{element}> in a <track> has no frame=\"...\""),
                    )
                })?;
            Some((frame, self.flag(&attrs, element, "outside")?))
        } else {
            None
        };
        self.shape = Some(Shape {
            obj,
            raw: Vec::new(),
            track,
        });
        Ok(())
    }

    fn close_shape(&mut self) {
        let Some(Shape {
            mut obj,
            raw,
            track,
        }) = self.shape.take()
        else {
            return;
        };
        if let Some(Geometry::Keypoints(k)) = &obj.geometry {
            obj.bbox = bounds(&k.placed());
        }
        // CVAT marks a skeleton gone from a frame by making all its points outside.
        let track = match (track, &obj.geometry) {
            (Some((frame, false)), Some(Geometry::Keypoints(k)))
                if !k.points.is_empty() && k.points.iter().all(|p| p[2] == 0.0) =>
            {
                Some((frame, true))
            }
            (track, _) => track,
        };
        let specs = self.meta.specs.get(&obj.class);
        for (name, text) in raw {
            let kind = specs.and_then(|s| s.get(&name)).map(String::as_str);
            let value = typed(kind, &text);
            obj.attributes.insert(name, value);
        }
        match track {
            Some((_, true)) => {}
            _ if matches!(self.keep, Keep::NoObjects) => {}
            Some((frame, false)) => {
                let id = obj.id.clone().unwrap_or_default();
                let order = (id.parse().unwrap_or(u64::MAX), id, obj.class.clone());
                self.tracked.push(Tracked { frame, order, obj });
            }
            None => {
                if let Some(frame) = self.image.and_then(|i| self.frames.get_mut(i)) {
                    frame.objects.push(obj);
                }
            }
        }
    }

    /// The keypoints of the `<skeleton>` being read, if one is.
    fn skeleton(&self) -> Option<&Keypoints> {
        match &self.shape.as_ref()?.obj.geometry {
            Some(Geometry::Keypoints(k)) => Some(k),
            _ => None,
        }
    }

    /// A `<points label outside occluded points="x,y">` of a skeleton: one
    /// keypoint, visibility 0 outside, 1 occluded, 2 visible (COCO's).
    fn open_point(&mut self, e: &BytesStart, pos: usize) -> Result<(), LabelError> {
        let attrs = self.attributes(e, pos)?;
        let label = self.label(&attrs, "points", pos)?.to_string();
        let (points, at) = Self::get(&attrs, "points")
            .ok_or_else(|| self.error(pos, "<points> has no points=\"...\""))?;
        let point = match parse_points(points).as_deref() {
            Some([p]) => *p,
            _ => {
                let shown: String = points.chars().take(40).collect();
                return Err(self.error(
                    at,
                    format!("<points> points=\"{shown}\" in a <skeleton> is not one x,y point"),
                ));
            }
        };
        let v = if self.flag(&attrs, "points", "outside")? {
            0.0
        } else if self.flag(&attrs, "points", "occluded")? {
            1.0
        } else {
            2.0
        };
        if self
            .skeleton()
            .is_some_and(|k| k.points.len() >= super::MAX_POLYGON_POINTS)
        {
            return Err(self.error(
                pos,
                format!(
                    "<skeleton> has more than {} points: dsv reads at most that many",
                    super::MAX_POLYGON_POINTS
                ),
            ));
        }
        if let Some(Shape { obj, .. }) = &mut self.shape
            && let Some(Geometry::Keypoints(k)) = &mut obj.geometry
        {
            k.points.push([point[0], point[1], v]);
            k.labels.get_or_insert_with(Vec::new).push(label);
        }
        Ok(())
    }

    /// Places tracked objects on their frames.
    fn finish(mut self) -> Vec<FrameLabels> {
        let mut tracked = std::mem::take(&mut self.tracked);
        // Stable, so boxes of one track on one frame keep their file order.
        tracked.sort_by(|a, b| (a.frame, &a.order).cmp(&(b.frame, &b.order)));
        for t in tracked {
            let index = match self.image_ids.get(&t.frame) {
                Some(&i) => i,
                None => {
                    let mut frame =
                        FrameLabels::new(format!("frame_{:06}", t.frame), Units::Pixels);
                    frame.width = self.meta.width;
                    frame.height = self.meta.height;
                    self.image_ids.insert(t.frame, self.frames.len());
                    self.frames.push(frame);
                    self.frames.len() - 1
                }
            };
            if let Some(frame) = self.frames.get_mut(index) {
                frame.objects.push(t.obj);
            }
        }
        for frame in &mut self.frames {
            fit(&mut frame.objects);
        }
        self.frames
    }
}

/// Moves `objects` into an allocation of exactly their number. Ten boxes
/// would otherwise sit in room for sixteen, a third of a parse of millions of
/// boxes; `shrink_to_fit` does not help, as the allocator keeps a block that
/// shrinks by less than half where it is.
fn fit(objects: &mut Vec<Object>) {
    if objects.capacity() > objects.len() {
        let mut exact = Vec::with_capacity(objects.len());
        exact.append(objects);
        *objects = exact;
    }
}

/// Parses `x,y;x,y;...`.
fn parse_points(s: &str) -> Option<Vec<[f64; 2]>> {
    let mut ring = Vec::new();
    for pair in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (x, y) = pair.split_once(',')?;
        let x: f64 = x.trim().parse().ok()?;
        let y: f64 = y.trim().parse().ok()?;
        if !x.is_finite() || !y.is_finite() {
            return None;
        }
        ring.push([x, y]);
    }
    (!ring.is_empty()).then_some(ring)
}

/// The bounding box of a ring of points.
fn bounds(ring: &[[f64; 2]]) -> Option<BBox> {
    let first = ring.first()?;
    let mut lo = *first;
    let mut hi = *first;
    for [x, y] in ring {
        lo = [lo[0].min(*x), lo[1].min(*y)];
        hi = [hi[0].max(*x), hi[1].max(*y)];
    }
    Some(BBox::from_corners(lo[0], lo[1], hi[0], hi[1]))
}

// ---------------------------------------------------------------------------
// Writing.

/// Writes frames as one CVAT for images XML 1.1 file.
///
/// Frames become `<image id=0..n-1>` in order. An object becomes a
/// `<polygon>` when it has a polygon (one per ring; its box is not written,
/// [`parse`] derives it from the points) and a `<box>` otherwise. Objects
/// whose id is a number are written as tracks (`<track id=...>` with one
/// shape per frame and `outside="1"` where the object disappears) so that the
/// id survives; other ids are not written. `occluded` (`Bool`), `z_order`,
/// `group_id` (non-zero `Int`) and `rotation` (non-zero `Float`) are XML
/// attributes; every other attribute is a child `<attribute>`, and `<meta>`
/// gets a spec per label and attribute name whose values all have one type,
/// so [`parse`] types them back. Frame attributes `tag:L` = `Bool(true)` are
/// `<tag label="L">`; other frame attributes are `<image>` XML attributes.
/// Normalized boxes are converted to pixels (the frame needs a size); 3D
/// boxes are not written.
pub fn write(frames: &[FrameLabels]) -> Result<Vec<u8>, LabelError> {
    let mut labels: Vec<&str> = Vec::new();
    let mut label_index: HashMap<&str, usize> = HashMap::new();
    let mut specs: Vec<BTreeMap<&str, Spec>> = Vec::new();
    for frame in frames {
        for key in frame.attributes.keys() {
            if let Some(label) = key.strip_prefix("tag:") {
                intern(label, &mut labels, &mut label_index, &mut specs);
            }
        }
        for obj in &frame.objects {
            let li = intern(&obj.class, &mut labels, &mut label_index, &mut specs);
            if let Some(label_specs) = specs.get_mut(li) {
                for (name, value) in &obj.attributes {
                    if !is_xml_attribute(name, value) {
                        label_specs
                            .entry(name.as_str())
                            .and_modify(|s| s.merge(value))
                            .or_insert_with(|| Spec::of(value));
                    }
                }
            }
        }
    }

    let mut out = String::with_capacity(1024 + frames.len() * 256);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n    <task>\n");
    let _ = writeln!(out, "      <size>{}</size>", frames.len());
    out.push_str("      <mode>annotation</mode>\n      <labels>\n");
    for (label, label_specs) in labels.iter().zip(&specs) {
        out.push_str("        <label>\n          <name>");
        text(&mut out, label)?;
        out.push_str("</name>\n          <attributes>\n");
        for (name, spec) in label_specs {
            let Some((input_type, default, values)) = spec.describe() else {
                continue;
            };
            out.push_str("            <attribute>\n              <name>");
            text(&mut out, name)?;
            let _ = write!(
                out,
                "</name>\n              <mutable>False</mutable>\n              <input_type>{input_type}</input_type>\n              <default_value>{default}</default_value>\n              <values>{values}</values>\n            </attribute>\n"
            );
        }
        out.push_str("          </attributes>\n        </label>\n");
    }
    out.push_str("      </labels>\n    </task>\n  </meta>\n");

    // Tracks, keyed by (id, label, shape kind), in order of first appearance;
    // each holds (frame index, shape).
    let mut tracks: Vec<(TrackKey, Vec<(usize, ShapeOut)>)> = Vec::new();
    let mut track_index: HashMap<TrackKey, usize> = HashMap::new();

    for (i, frame) in frames.iter().enumerate() {
        let (sx, sy) = scale(frame)?;
        let _ = write!(out, "  <image id=\"{i}\" name=\"");
        attr(&mut out, &frame.frame)?;
        out.push('"');
        if let Some(w) = frame.width {
            let _ = write!(out, " width=\"{w}\"");
        }
        if let Some(h) = frame.height {
            let _ = write!(out, " height=\"{h}\"");
        }
        let mut tags = Vec::new();
        for (key, value) in &frame.attributes {
            if let Some(label) = key.strip_prefix("tag:") {
                if *value != AttrValue::Bool(true) {
                    return Err(LabelError::msg(format!(
                        "frame {:?}: attribute {key:?} = {value}: a CVAT tag is present or absent, so only true can be written",
                        frame.frame
                    )));
                }
                tags.push(label);
                continue;
            }
            if matches!(key.as_str(), "id" | "name" | "width" | "height") || !is_xml_name(key) {
                return Err(LabelError::msg(format!(
                    "frame {:?}: attribute {key:?} cannot be written as an XML attribute of <image>",
                    frame.frame
                )));
            }
            let _ = write!(out, " {key}=\"");
            attr(
                &mut out,
                &value_text(value, || format!("frame {:?}", frame.frame))?,
            )?;
            out.push('"');
        }
        let mut body = String::new();
        for (j, obj) in frame.objects.iter().enumerate() {
            let what = || format!("frame {:?}, object {}", frame.frame, j + 1);
            let shapes = shapes_of(obj, sx, sy, &what)?;
            match obj.id.as_deref().filter(|id| is_track_id(id)) {
                Some(id) => {
                    for shape in shapes {
                        let key = (id, obj.class.as_str(), shape.kind());
                        let t = *track_index.entry(key).or_insert_with(|| {
                            tracks.push((key, Vec::new()));
                            tracks.len() - 1
                        });
                        if let Some((_, list)) = tracks.get_mut(t) {
                            list.push((i, shape));
                        }
                    }
                }
                None => {
                    for shape in shapes {
                        body.push_str("    ");
                        shape.open(&mut body, Some(&obj.class), None)?;
                        shape.close(&mut body, "    ", &what)?;
                    }
                }
            }
        }
        for label in tags {
            body.push_str("    <tag label=\"");
            attr(&mut body, label)?;
            body.push_str("\" source=\"manual\"/>\n");
        }
        if body.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            out.push_str(&body);
            out.push_str("  </image>\n");
        }
    }

    for ((id, label, _), list) in &tracks {
        out.push_str("  <track id=\"");
        attr(&mut out, id)?;
        out.push_str("\" label=\"");
        attr(&mut out, label)?;
        out.push_str("\" source=\"manual\">\n");
        for (k, (frame, shape)) in list.iter().enumerate() {
            let what = || format!("track {id}, frame {frame}");
            out.push_str("    ");
            shape.open(&mut out, None, Some((*frame, false)))?;
            shape.close(&mut out, "    ", &what)?;
            // CVAT keeps a track visible until a shape says it is outside.
            let next = list.get(k + 1).map(|(f, _)| *f);
            let gone = frame + 1;
            if gone < frames.len() && next.is_none_or(|n| n > gone) {
                out.push_str("    ");
                shape.open(&mut out, None, Some((gone, true)))?;
                out.push_str("/>\n");
            }
        }
        out.push_str("  </track>\n");
    }
    out.push_str("</annotations>\n");
    Ok(out.into_bytes())
}

fn intern<'a>(
    label: &'a str,
    labels: &mut Vec<&'a str>,
    index: &mut HashMap<&'a str, usize>,
    specs: &mut Vec<BTreeMap<&'a str, Spec>>,
) -> usize {
    *index.entry(label).or_insert_with(|| {
        labels.push(label);
        specs.push(BTreeMap::new());
        labels.len() - 1
    })
}

/// The type of one attribute across all objects of a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Checkbox,
    Number,
    Text,
    Mixed,
}

impl Spec {
    fn of(v: &AttrValue) -> Spec {
        match v {
            AttrValue::Bool(_) => Spec::Checkbox,
            AttrValue::Int(_) | AttrValue::Float(_) => Spec::Number,
            AttrValue::Str(_) => Spec::Text,
        }
    }

    fn merge(&mut self, v: &AttrValue) {
        if *self != Spec::of(v) {
            *self = Spec::Mixed;
        }
    }

    /// input_type, default value and values; none for mixed types, which
    /// [`parse`] then types value by value.
    fn describe(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Spec::Checkbox => Some(("checkbox", "false", "false\ntrue")),
            Spec::Number => Some(("number", "0", "")),
            Spec::Text => Some(("text", "", "")),
            Spec::Mixed => None,
        }
    }
}

/// Attributes written on the shape element itself rather than as children.
fn is_xml_attribute(name: &str, value: &AttrValue) -> bool {
    match (name, value) {
        ("occluded", AttrValue::Bool(_)) => true,
        ("z_order" | "group_id", AttrValue::Int(n)) => *n != 0,
        ("rotation", AttrValue::Float(r)) => *r != 0.0 && r.is_finite(),
        _ => false,
    }
}

/// CVAT track ids are numbers.
fn is_track_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` can be an XML attribute name (kept simple: no namespaces).
fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.to_ascii_lowercase().starts_with("xml")
}

/// A written track: id, label and shape kind.
type TrackKey<'a> = (&'a str, &'a str, Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Box,
    Polygon,
    Polyline,
    Points,
    Ellipse,
    Cuboid,
    Mask,
    Skeleton,
}

impl Kind {
    fn element(self) -> &'static str {
        match self {
            Kind::Box => "box",
            Kind::Polygon => "polygon",
            Kind::Polyline => "polyline",
            Kind::Points => "points",
            Kind::Ellipse => "ellipse",
            Kind::Cuboid => "cuboid",
            Kind::Mask => "mask",
            Kind::Skeleton => "skeleton",
        }
    }
}

/// One `<box>` or `<polygon>` to write, with the object it comes from.
struct ShapeOut<'a> {
    obj: &'a Object,
    geometry: ShapeGeometry<'a>,
}

enum ShapeGeometry<'a> {
    Box(BBox),
    Polygon(&'a [[f64; 2]]),
    Polyline(&'a [[f64; 2]]),
    Points(Cow<'a, [[f64; 2]]>),
    Ellipse(&'a Ellipse),
    Cuboid(&'a Cuboid),
    Mask(&'a Mask),
    /// Keypoints with one label per point, as read from a `<skeleton>`.
    Skeleton(&'a [[f64; 3]], &'a [String]),
}

impl ShapeOut<'_> {
    fn kind(&self) -> Kind {
        match self.geometry {
            ShapeGeometry::Box(_) => Kind::Box,
            ShapeGeometry::Polygon(_) => Kind::Polygon,
            ShapeGeometry::Polyline(_) => Kind::Polyline,
            ShapeGeometry::Points(_) => Kind::Points,
            ShapeGeometry::Ellipse(_) => Kind::Ellipse,
            ShapeGeometry::Cuboid(_) => Kind::Cuboid,
            ShapeGeometry::Mask(_) => Kind::Mask,
            ShapeGeometry::Skeleton(..) => Kind::Skeleton,
        }
    }

    /// Writes the start tag up to its attributes (without closing `>`).
    fn open(
        &self,
        out: &mut String,
        label: Option<&str>,
        track: Option<(usize, bool)>,
    ) -> Result<(), LabelError> {
        out.push('<');
        out.push_str(self.kind().element());
        if let Some(label) = label {
            out.push_str(" label=\"");
            attr(out, label)?;
            out.push('"');
        }
        if let Some((frame, outside)) = track {
            let _ = write!(out, " frame=\"{frame}\" outside=\"{}\"", u8::from(outside));
        }
        let occluded = matches!(
            self.obj.attributes.get("occluded"),
            Some(AttrValue::Bool(true))
        );
        let _ = write!(out, " occluded=\"{}\"", u8::from(occluded));
        if track.is_some() {
            out.push_str(" keyframe=\"1\"");
        }
        match &self.geometry {
            ShapeGeometry::Box(b) => {
                let _ = write!(
                    out,
                    " xtl=\"{}\" ytl=\"{}\" xbr=\"{}\" ybr=\"{}\"",
                    b.x,
                    b.y,
                    // Exact on reading back: (x + w) - x == w for the w
                    // that parse computed as xbr - xtl.
                    b.x + b.w,
                    b.y + b.h
                );
            }
            ShapeGeometry::Polygon(ring) | ShapeGeometry::Polyline(ring) => points_attr(out, ring),
            ShapeGeometry::Points(ring) => points_attr(out, ring),
            ShapeGeometry::Ellipse(e) => {
                let _ = write!(
                    out,
                    " cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\"",
                    e.cx, e.cy, e.rx, e.ry
                );
            }
            ShapeGeometry::Cuboid(c) => {
                for ([x, y], (kx, ky)) in c.corners.iter().zip(CUBOID_KEYS) {
                    let _ = write!(out, " {kx}=\"{x}\" {ky}=\"{y}\"");
                }
            }
            ShapeGeometry::Mask(m) => {
                out.push_str(" rle=\"");
                for (k, n) in m.counts.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{n}");
                }
                let _ = write!(
                    out,
                    "\" left=\"{}\" top=\"{}\" width=\"{}\" height=\"{}\"",
                    m.left, m.top, m.width, m.height
                );
            }
            // The points are child elements, written by `close`.
            ShapeGeometry::Skeleton(..) => {}
        }
        let z = match self.obj.attributes.get("z_order") {
            Some(AttrValue::Int(z)) => *z,
            _ => 0,
        };
        let _ = write!(out, " z_order=\"{z}\"");
        if let Some(AttrValue::Int(g)) = self.obj.attributes.get("group_id")
            && *g != 0
        {
            let _ = write!(out, " group_id=\"{g}\"");
        }
        if let Some(AttrValue::Float(r)) = self.obj.attributes.get("rotation")
            && is_xml_attribute("rotation", &AttrValue::Float(*r))
        {
            let _ = write!(out, " rotation=\"{r}\"");
        }
        Ok(())
    }

    /// Writes the child attributes and the end of the element.
    fn close(
        &self,
        out: &mut String,
        indent: &str,
        what: &dyn Fn() -> String,
    ) -> Result<(), LabelError> {
        let mut children: Vec<_> = self
            .obj
            .attributes
            .iter()
            .filter(|(k, v)| !is_xml_attribute(k, v))
            .collect();
        let points = match self.geometry {
            ShapeGeometry::Skeleton(points, labels) => Some((points, labels)),
            _ => None,
        };
        if children.is_empty() && points.is_none() {
            out.push_str("/>\n");
            return Ok(());
        }
        out.push_str(">\n");
        if let Some((points, labels)) = points {
            let mut written = vec![false; children.len()];
            for (k, ([x, y, v], label)) in points.iter().zip(labels).enumerate() {
                let _ = write!(out, "{indent}  <points label=\"");
                attr(out, label)?;
                let _ = write!(
                    out,
                    "\" occluded=\"{}\" outside=\"{}\" points=\"{x},{y}\"",
                    u8::from(*v > 0.0 && *v < 2.0),
                    u8::from(*v <= 0.0)
                );
                // `POINT/NAME` attributes go back to the first point so labelled.
                let first = labels.iter().position(|l| l == label) == Some(k);
                let prefix = format!("{label}/");
                let mine: Vec<usize> = (0..children.len())
                    .filter(|&c| first && children[c].0.starts_with(&prefix))
                    .collect();
                if mine.is_empty() {
                    out.push_str("/>\n");
                    continue;
                }
                out.push_str(">\n");
                for c in mine {
                    written[c] = true;
                    let (name, value) = children[c];
                    let _ = write!(out, "{indent}    <attribute name=\"");
                    attr(out, &name[prefix.len()..])?;
                    out.push_str("\">");
                    text(
                        out,
                        &value_text(value, || format!("{}, attribute {name:?}", what()))?,
                    )?;
                    out.push_str("</attribute>\n");
                }
                let _ = writeln!(out, "{indent}  </points>");
            }
            let mut k = 0;
            children.retain(|_| {
                k += 1;
                !written[k - 1]
            });
        }
        for (name, value) in children {
            let _ = write!(out, "{indent}  <attribute name=\"");
            attr(out, name)?;
            out.push_str("\">");
            text(
                out,
                &value_text(value, || format!("{}, attribute {name:?}", what()))?,
            )?;
            out.push_str("</attribute>\n");
        }
        let _ = writeln!(out, "{indent}</{}>", self.kind().element());
        Ok(())
    }
}

/// Writes ` points="x,y;x,y"`.
fn points_attr(out: &mut String, ring: &[[f64; 2]]) {
    out.push_str(" points=\"");
    for (k, [x, y]) in ring.iter().enumerate() {
        if k > 0 {
            out.push(';');
        }
        let _ = write!(out, "{x},{y}");
    }
    out.push('"');
}

/// The shapes an object is written as.
fn shapes_of<'a>(
    obj: &'a Object,
    sx: f64,
    sy: f64,
    what: &dyn Fn() -> String,
) -> Result<Vec<ShapeOut<'a>>, LabelError> {
    let finite = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(LabelError::msg(format!(
                "{}: {} has a coordinate that is not a finite number",
                what(),
                obj.kind()
            )))
        }
    };
    let one = |geometry| Ok(vec![ShapeOut { obj, geometry }]);
    match &obj.geometry {
        Some(Geometry::Polyline(p)) if !p.points.is_empty() => {
            finite(p.points.iter().flatten().copied().all(f64::is_finite))?;
            return one(ShapeGeometry::Polyline(&p.points));
        }
        Some(Geometry::Points(p)) if !p.points.is_empty() => {
            finite(p.points.iter().flatten().copied().all(f64::is_finite))?;
            return one(ShapeGeometry::Points(Cow::Borrowed(&p.points)));
        }
        Some(Geometry::Keypoints(k))
            if k.labels
                .as_ref()
                .is_some_and(|l| l.len() == k.points.len() && !l.is_empty()) =>
        {
            finite(k.points.iter().flatten().copied().all(f64::is_finite))?;
            let labels = k.labels.as_deref().unwrap_or_default();
            return one(ShapeGeometry::Skeleton(&k.points, labels));
        }
        // CVAT points have no visibility: the labelled ones are written.
        Some(Geometry::Keypoints(k)) if k.points.iter().any(|p| p[2] > 0.0) => {
            let pts = k.placed();
            finite(pts.iter().flatten().copied().all(f64::is_finite))?;
            return one(ShapeGeometry::Points(Cow::Owned(pts)));
        }
        Some(Geometry::Ellipse(e)) => {
            finite([e.cx, e.cy, e.rx, e.ry].into_iter().all(f64::is_finite))?;
            return one(ShapeGeometry::Ellipse(e));
        }
        Some(Geometry::Cuboid(c)) => {
            finite(c.corners.iter().flatten().copied().all(f64::is_finite))?;
            return one(ShapeGeometry::Cuboid(c));
        }
        Some(Geometry::Mask(m)) if !m.column_major => return one(ShapeGeometry::Mask(m)),
        _ => {}
    }
    if let Some(Geometry::Polygon { rings }) = &obj.geometry {
        let rings: Vec<&[[f64; 2]]> = rings
            .iter()
            .filter(|r| !r.is_empty())
            .map(Vec::as_slice)
            .collect();
        if !rings.is_empty() {
            if !rings
                .iter()
                .flat_map(|r| r.iter().flatten())
                .all(|v| v.is_finite())
            {
                return Err(LabelError::msg(format!(
                    "{}: polygon has a coordinate that is not a finite number",
                    what()
                )));
            }
            return Ok(rings
                .into_iter()
                .map(|ring| ShapeOut {
                    obj,
                    geometry: ShapeGeometry::Polygon(ring),
                })
                .collect());
        }
    }
    match obj.bbox {
        Some(b) => {
            let b = BBox {
                x: b.x * sx,
                y: b.y * sy,
                w: b.w * sx,
                h: b.h * sy,
            };
            if ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) {
                return Err(LabelError::msg(format!(
                    "{}: box has a coordinate that is not a finite number",
                    what()
                )));
            }
            Ok(vec![ShapeOut {
                obj,
                geometry: ShapeGeometry::Box(b),
            }])
        }
        None => Err(LabelError::msg(format!(
            "{}: object {:?} has neither a box nor a polygon, which CVAT cannot hold",
            what(),
            obj.class
        ))),
    }
}

fn scale(frame: &FrameLabels) -> Result<(f64, f64), LabelError> {
    match frame.units {
        Units::Pixels => Ok((1.0, 1.0)),
        Units::Normalized => match (frame.width, frame.height) {
            (Some(w), Some(h)) => Ok((f64::from(w), f64::from(h))),
            _ => Err(LabelError::msg(format!(
                "frame {:?} has normalized boxes but no image size; CVAT needs pixel boxes",
                frame.frame
            ))),
        },
    }
}

/// An attribute value as text that `infer` / `typed` read back the same.
fn value_text(v: &AttrValue, what: impl Fn() -> String) -> Result<Cow<'_, str>, LabelError> {
    Ok(match v {
        AttrValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        AttrValue::Int(i) => Cow::Owned(i.to_string()),
        AttrValue::Float(x) if x.is_finite() => Cow::Owned(format!("{x:?}")),
        AttrValue::Float(x) => {
            return Err(LabelError::msg(format!(
                "{}: {x} cannot be written (not a finite number)",
                what()
            )));
        }
        AttrValue::Str(s) => Cow::Borrowed(s.as_str()),
    })
}

/// Characters XML 1.0 cannot hold at all, even escaped.
fn check_chars(s: &str) -> Result<(), LabelError> {
    match s
        .chars()
        .find(|c| matches!(*c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}'))
    {
        Some(c) => Err(LabelError::msg(format!(
            "{s:?} contains the control character {:?}, which XML cannot hold",
            c
        ))),
        None => Ok(()),
    }
}

/// Appends `s` escaped for an attribute value in double quotes.
fn attr(out: &mut String, s: &str) -> Result<(), LabelError> {
    check_chars(s)?;
    // quick_xml's attribute escaping is private to it; its text escaping
    // (`&`, `<`, `>`, CR) plus the quote and the whitespace that readers
    // normalize to spaces in attributes.
    for c in partial_escape(s).chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    Ok(())
}

/// Appends `s` escaped for element text.
fn text(out: &mut String, s: &str) -> Result<(), LabelError> {
    check_chars(s)?;
    // `&`, `<`, `>`, and CR (a literal one would be read back as LF).
    out.push_str(&partial_escape(s));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn xml_escaping_writes_the_bytes_it_always_wrote() {
        // The hand-written escaping quick_xml's replaced, kept as the reference.
        fn old_attr(s: &str) -> String {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\t' => out.push_str("&#9;"),
                    '\n' => out.push_str("&#10;"),
                    '\r' => out.push_str("&#13;"),
                    c => out.push(c),
                }
            }
            out
        }
        fn old_text(s: &str) -> String {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '\r' => out.push_str("&#13;"),
                    c => out.push(c),
                }
            }
            out
        }
        for s in [
            "",
            "car",
            "driver's seat",
            "a \"b\" <c> & d",
            "tab\there\nnewline\r\ncrlf",
            "ünïcödé 車 🚗 &amp; already",
            "'\"<>&\t\n\r ",
        ] {
            let (mut a, mut t) = (String::new(), String::new());
            attr(&mut a, s).unwrap();
            text(&mut t, s).unwrap();
            assert_eq!(a, old_attr(s), "{s:?}");
            assert_eq!(t, old_text(s), "{s:?}");
        }
        assert!(attr(&mut String::new(), "bell\u{7}").is_err());
    }

    const TASK: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/cvat_dataset/for_images/export_task/train.xml"
    );
    const PROJECT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/cvat_dataset/for_images/export_project/annotations.xml"
    );

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn attrs(pairs: &[(&str, AttrValue)]) -> BTreeMap<String, AttrValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn check_labelled_box(o: &Object) {
        assert_eq!(o.class, "label1");
        assert_eq!(o.bbox, Some(BBox::from_corners(0.0, 2.0, 4.0, 4.0)));
        assert_eq!(o.id, None);
        // Typed by the label's specs in <meta>: a3 is text, so "0003" stays text.
        assert_eq!(
            o.attributes,
            attrs(&[
                ("a1", AttrValue::Bool(true)),
                ("a2", AttrValue::Str("v3".into())),
                ("a3", AttrValue::Str("0003".into())),
                ("a4", AttrValue::Float(2.4)),
                ("occluded", AttrValue::Bool(true)),
                ("z_order", AttrValue::Int(1)),
            ])
        );
    }

    #[test]
    fn task_export_fixture() {
        // Datumaro's sample has shapes with label="", which CVAT never
        // writes: an error at the first, not class "".
        let err = parse(&read(TASK)).unwrap_err();
        assert_eq!((err.line, err.column), (Some(50), Some(22)), "{err}");
        assert!(
            err.message.contains("<polyline> has an empty label"),
            "{err}"
        );
        let frames = parse(&labelled_task()).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].frame, "img0.jpg");
        assert_eq!((frames[0].width, frames[0].height), (Some(8), Some(8)));
        assert_eq!(frames[0].units, Units::Pixels);
        assert_eq!(frames[0].objects.len(), 2);
        check_labelled_box(&frames[0].objects[0]);
        let line = &frames[0].objects[1];
        assert_eq!((line.class.as_str(), line.kind()), ("label1", "polyline"));
        assert_eq!(line.bbox, Some(BBox::from_corners(1.0, 2.0, 7.0, 8.0)));

        assert_eq!(frames[1].frame, "img1.jpg");
        let [poly, points] = &frames[1].objects[..] else {
            panic!("{:?}", frames[1].objects)
        };
        assert_eq!(
            points.geometry,
            Some(Geometry::Points(Box::new(PointList {
                points: vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
            })))
        );
        assert_eq!(points.class, "label2");
        assert_eq!(poly.class, "label1");
        assert_eq!(poly.bbox, Some(BBox::from_corners(1.0, 2.0, 6.0, 5.0)));
        assert_eq!(
            poly.geometry,
            Some(Geometry::Polygon {
                rings: vec![vec![[1.0, 2.0], [3.0, 4.0], [6.0, 5.0]]]
            })
        );
        assert_eq!(
            poly.attributes,
            attrs(&[
                ("occluded", AttrValue::Bool(false)),
                ("z_order", AttrValue::Int(1)),
            ])
        );
    }

    /// The task fixture with its unlabelled shapes labelled `label1`.
    fn labelled_task() -> Vec<u8> {
        String::from_utf8(read(TASK))
            .unwrap()
            .replace("label=\"\"", "label=\"label1\"")
            .into_bytes()
    }

    #[test]
    fn project_export_fixture() {
        let frames = parse(&read(PROJECT)).unwrap();
        let names: Vec<(&str, String)> = frames
            .iter()
            .map(|f| (f.frame.as_str(), f.attributes["subset"].to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("img0.jpg", "Test".to_string()),
                ("img1.jpg", "Test".into()),
                ("img0.jpg", "Train".into()),
                ("img1.jpg", "Train".into()),
                ("img0.jpg", "Validation".into()),
                ("img1.jpg", "Validation".into()),
            ]
        );
        assert_eq!(frames[0].attributes["task_id"], AttrValue::Int(39));
        check_labelled_box(&frames[4].objects[0]);
        assert_eq!(frames[5].objects[0].class, "label1");
        assert_eq!((frames[5].width, frames[5].height), (Some(10), Some(10)));
    }

    #[test]
    fn fixtures_round_trip() {
        for (path, bytes) in [(TASK, labelled_task()), (PROJECT, read(PROJECT))] {
            let frames = parse(&bytes).unwrap();
            let written = write(&frames).unwrap();
            let back = parse(&written)
                .unwrap_or_else(|e| panic!("{path}: {e}\n{}", String::from_utf8_lossy(&written)));
            assert_eq!(back, frames, "{path}");
        }
    }

    #[test]
    fn no_prefix_of_a_fixture_panics() {
        for path in [TASK, PROJECT] {
            let bytes = read(path);
            for n in 0..bytes.len() {
                let _ = parse(&bytes[..n]);
            }
        }
    }

    /// `check` and `parse_each` say what `parse` says of a file: the same
    /// error, or for `parse_each` the same frames in the same order.
    fn assert_readings_agree(bytes: &[u8]) {
        let parsed = parse(bytes);
        assert_eq!(check(bytes), parsed.clone().map(drop));
        let mut each = Vec::new();
        let streamed = parse_each(bytes, &mut |f| each.push(f));
        match parsed {
            Ok(frames) => {
                assert_eq!(streamed, Ok(()));
                assert_eq!(each, frames);
            }
            Err(e) => assert_eq!(streamed, Err(e)),
        }
    }

    #[test]
    fn check_and_frame_by_frame_reading_agree_with_parse() {
        let written = write(&parse(TRACKS.as_bytes()).unwrap()).unwrap();
        for bytes in [
            labelled_task(),
            read(PROJECT),
            TRACKS.as_bytes().to_vec(),
            written,
        ] {
            assert_readings_agree(&bytes);
            for n in (0..bytes.len()).step_by(5) {
                assert_readings_agree(&bytes[..n]);
            }
        }
    }

    const TRACKS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><original_size><width>640</width><height>480</height></original_size></task></meta>
  <image id="0" name="f0.png" width="640" height="480">
    <box label="car" occluded="0" xtl="1" ytl="2" xbr="3" ybr="4" z_order="0" group_id="3"/>
    <tag label="night" source="manual"/>
  </image>
  <image id="1" name="f1.png" width="640" height="480"/>
  <track id="7" label="person" source="manual">
    <box frame="0" outside="0" occluded="1" keyframe="1" xtl="10" ytl="10" xbr="20" ybr="30" z_order="0">
      <attribute name="pose">standing &amp; waving&#33;</attribute>
    </box>
    <box frame="1" outside="1" occluded="0" keyframe="1" xtl="10" ytl="10" xbr="20" ybr="30" z_order="0"/>
    <box frame="3" outside="0" occluded="0" keyframe="0" xtl="11" ytl="10" xbr="20" ybr="30" z_order="0" rotation="12.5"/>
  </track>
  <track id="2" label="dog"><polygon frame="0" outside="0" points="1,1;5,1;5,5" z_order="0"/></track>
  <unknown><box label="ignored"/></unknown>
</annotations>
"#;

    #[test]
    fn track_skeletons_are_keypoints_until_all_points_are_outside() {
        let xml = r#"<annotations><meta><task><original_size><width>9</width><height>9</height></original_size></task></meta>
<track id="3" label="s1" source="manual">
  <skeleton frame="0" keyframe="1" z_order="0">
    <points label="1" outside="0" occluded="0" keyframe="1" points="1,2"/>
    <points label="2" outside="0" occluded="1" keyframe="1" points="5,6"/>
  </skeleton>
  <skeleton frame="1" keyframe="1" z_order="0">
    <points label="1" outside="1" occluded="0" keyframe="1" points="1,2"/>
    <points label="2" outside="1" occluded="0" keyframe="1" points="5,6"/>
  </skeleton>
</track></annotations>"#;
        let frames = parse(xml.as_bytes()).unwrap();
        assert_eq!(frames.len(), 1, "{frames:?}");
        let o = &frames[0].objects[0];
        assert_eq!((o.class.as_str(), o.id.as_deref()), ("s1", Some("3")));
        assert_eq!(o.bbox, Some(BBox::from_corners(1.0, 2.0, 5.0, 6.0)));
        let Some(Geometry::Keypoints(k)) = &o.geometry else {
            panic!("{o:?}")
        };
        assert_eq!(k.points, vec![[1.0, 2.0, 2.0], [5.0, 6.0, 1.0]]);
        assert_eq!(k.labels, Some(vec!["1".to_string(), "2".to_string()]));
        // Written back as a track, it reads back the same.
        let again = parse(&write(&frames).unwrap()).unwrap();
        assert_eq!(again[0].objects, frames[0].objects);
    }

    #[test]
    fn skeleton_point_with_two_points_is_an_error() {
        let xml = r#"<annotations><image id="0" name="a" width="9" height="9">
<skeleton label="s"><points label="1" points="1,2;3,4"/></skeleton></image></annotations>"#;
        let err = parse(xml.as_bytes()).unwrap_err();
        assert!(err.message.contains("is not one x,y point"), "{err}");
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn tracks_tags_and_synthetic_frames() {
        let frames = parse(TRACKS.as_bytes()).unwrap();
        let names: Vec<&str> = frames.iter().map(|f| f.frame.as_str()).collect();
        assert_eq!(names, ["f0.png", "f1.png", "frame_000003"]);
        assert_eq!(
            frames[0].attributes,
            attrs(&[("tag:night", AttrValue::Bool(true))])
        );
        // Image shapes first, then tracks by id.
        let objs: Vec<(&str, Option<&str>)> = frames[0]
            .objects
            .iter()
            .map(|o| (o.class.as_str(), o.id.as_deref()))
            .collect();
        assert_eq!(
            objs,
            [("car", None), ("dog", Some("2")), ("person", Some("7"))]
        );
        assert_eq!(
            frames[0].objects[0].attributes.get("group_id"),
            Some(&AttrValue::Int(3))
        );
        let person = &frames[0].objects[2];
        assert_eq!(
            person.attributes.get("pose"),
            Some(&AttrValue::Str("standing & waving!".into()))
        );
        assert_eq!(
            person.attributes.get("occluded"),
            Some(&AttrValue::Bool(true))
        );
        assert!(frames[1].objects.is_empty(), "outside boxes are skipped");
        let late = &frames[2];
        assert_eq!((late.width, late.height), (Some(640), Some(480)));
        assert_eq!(late.objects[0].id.as_deref(), Some("7"));
        assert_eq!(
            late.objects[0].bbox,
            Some(BBox::from_corners(11.0, 10.0, 20.0, 30.0))
        );
        assert_eq!(
            late.objects[0].attributes.get("rotation"),
            Some(&AttrValue::Float(12.5))
        );

        let written = write(&frames).unwrap();
        let text = String::from_utf8(written.clone()).unwrap();
        assert!(text.contains(r#"<track id="7" label="person""#), "{text}");
        assert!(text.contains(r#"frame="1" outside="1""#), "{text}");
        assert!(text.contains(r#"<tag label="night""#), "{text}");
        assert_eq!(parse(&written).unwrap(), frames);
    }

    fn line_col(text: &str, needle: &str) -> (Option<usize>, Option<usize>) {
        let (line, l) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .unwrap();
        (Some(line + 1), l.find(needle).map(|c| c + 1))
    }

    #[test]
    fn non_numeric_coordinate_points_at_the_value() {
        let text = read(TASK);
        let text = String::from_utf8(text)
            .unwrap()
            .replacen(r#"xtl="0""#, r#"xtl="zero""#, 1);
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column), line_col(&text, "zero"), "{err}");
        assert!(
            err.message.contains("xtl=\"zero\" is not a number"),
            "{err}"
        );
    }

    #[test]
    fn broken_xml_reports_its_line() {
        let text = TRACKS.replacen("</image>", "</img>", 1);
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, line_col(&text, "</img>").0, "{err}");

        let text = TRACKS.replacen(r#"name="f1.png""#, r#"name="f1.png"#, 1);
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, line_col(&text, "f1.png").0, "{err}");

        let text = TRACKS.replacen("&amp;", "&bogus;", 1);
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, line_col(&text, "&bogus;").0, "{err}");
    }

    #[test]
    fn invalid_shapes_report_their_line() {
        for (from, to, needle, words) in [
            (
                r#"points="1,1;5,1;5,5""#,
                r#"points="1,1;5;5,5""#,
                "1,1;5;5,5",
                "points",
            ),
            (r#"<box frame="3""#, r#"<box"#, "rotation", "frame"),
            (r#"<box label="car" "#, "<box ", "group_id", "label"),
            (
                r#"occluded="1""#,
                r#"occluded="maybe""#,
                "maybe",
                "occluded",
            ),
            (r#"<image id="1""#, r#"<image id="one""#, "\"one\"", "id"),
        ] {
            let text = TRACKS.replacen(from, to, 1);
            assert_ne!(text, TRACKS);
            let err = parse(text.as_bytes()).unwrap_err();
            assert_eq!(err.line, line_col(&text, needle).0, "{to}: {err}");
            assert!(err.message.contains(words), "{to}: {err}");
        }
    }

    #[test]
    fn truncated_and_foreign_files() {
        let bytes = labelled_task();
        let cut = &bytes[..bytes.len() - 20];
        let err = parse(cut).unwrap_err();
        let lines = cut.iter().filter(|b| **b == b'\n').count() + 1;
        assert_eq!(err.line, Some(lines), "{err}");

        let err = parse(b"<annotation><filename>a.jpg</filename></annotation>").unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.message.contains("not a CVAT"), "{err}");
        assert!(parse(b"").is_err());
        assert!(parse(b"<annotations>\xff</annotations>").is_err());
    }

    #[test]
    fn value_typing() {
        assert_eq!(infer("3"), AttrValue::Int(3));
        assert_eq!(infer("-12"), AttrValue::Int(-12));
        assert_eq!(infer("2.5"), AttrValue::Float(2.5));
        assert_eq!(infer("true"), AttrValue::Bool(true));
        for text in ["0003", "2.50", "NaN", "inf", "True", "", "v1", "+3"] {
            assert_eq!(infer(text), AttrValue::Str(text.into()), "{text}");
        }
        assert_eq!(typed(Some("number"), "007"), AttrValue::Int(7));
        assert_eq!(typed(Some("number"), "2.0"), AttrValue::Float(2.0));
        assert_eq!(typed(Some("text"), "12"), AttrValue::Str("12".into()));
        assert_eq!(typed(Some("checkbox"), "True"), AttrValue::Bool(true));
    }

    #[test]
    fn sniffing() {
        assert!(sniff("export/annotations.xml", &read(PROJECT)));
        assert!(sniff("TRAIN.XML", b"<annotations>\n<version>1.1</version>"));
        assert!(!sniff("voc/0001.xml", b"<annotation><folder>VOC</folder>"));
        assert!(!sniff("a.json", &read(PROJECT)));
    }

    #[test]
    fn writer_rejects_what_cvat_cannot_hold() {
        let mut frame = FrameLabels::new("a.png", Units::Pixels);
        frame.objects.push(Object::new("nothing", None));
        assert!(write(std::slice::from_ref(&frame)).is_err());

        let mut frame = FrameLabels::new("a.png", Units::Pixels);
        frame
            .attributes
            .insert("tag:day".into(), AttrValue::Bool(false));
        assert!(write(std::slice::from_ref(&frame)).is_err());

        let mut frame = FrameLabels::new("a.png", Units::Pixels);
        frame
            .attributes
            .insert("two words".into(), AttrValue::Int(1));
        assert!(write(std::slice::from_ref(&frame)).is_err());

        let frame = FrameLabels::new("bell\u{7}.png", Units::Pixels);
        assert!(write(std::slice::from_ref(&frame)).is_err());

        let mut frame = FrameLabels::new("n.png", Units::Normalized);
        frame.objects.push(Object::new(
            "a",
            Some(BBox::from_corners(0.25, 0.5, 0.75, 1.0)),
        ));
        assert!(write(std::slice::from_ref(&frame)).is_err(), "no size");
        frame.width = Some(100);
        frame.height = Some(40);
        let back = parse(&write(&[frame]).unwrap()).unwrap();
        assert_eq!(
            back[0].objects[0].bbox,
            Some(BBox::from_corners(25.0, 20.0, 75.0, 40.0))
        );
    }

    fn coord() -> impl Strategy<Value = f64> {
        (-100_000i32..100_000).prop_map(|k| f64::from(k) / 100.0)
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z ]{0,6}".prop_filter("reads back as a bool", |s| s != "true" && s != "false")
    }

    fn value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            coord().prop_map(AttrValue::Float),
            word().prop_map(AttrValue::Str),
        ]
    }

    const TEXT: &str = "[a-zA-Z0-9 \t\n\r&<>\"'é_.-]{0,10}";

    fn object(track: bool) -> impl Strategy<Value = Object> {
        let shape = prop_oneof![
            (coord(), coord(), coord(), coord())
                .prop_map(|(a, b, c, d)| (Some(BBox::from_corners(a, b, c, d)), None)),
            prop::collection::vec((coord(), coord()).prop_map(|(x, y)| [x, y]), 1..6)
                .prop_map(|ring| (bounds(&ring), Some(Geometry::Polygon { rings: vec![ring] }))),
            // A skeleton with at least one point not outside (one whose points
            // are all outside is outside in a track).
            prop::collection::vec((coord(), coord(), 0u8..3, "[a-z&<]{1,3}"), 1..5)
                .prop_filter("a placed point", |p| p.iter().any(|q| q.2 > 0))
                .prop_map(|p| {
                    let points: Vec<[f64; 3]> =
                        p.iter().map(|q| [q.0, q.1, f64::from(q.2)]).collect();
                    let placed: Vec<[f64; 2]> = points
                        .iter()
                        .filter(|q| q[2] > 0.0)
                        .map(|q| [q[0], q[1]])
                        .collect();
                    let labels = p.into_iter().map(|q| q.3).collect();
                    (
                        bounds(&placed),
                        Some(Geometry::Keypoints(Box::new(Keypoints {
                            points,
                            outline: None,
                            labels: Some(labels),
                        }))),
                    )
                }),
        ];
        let nonzero = any::<i64>().prop_filter("zero is not written", |n| *n != 0);
        (
            prop_oneof![
                Just("car".to_string()),
                TEXT.prop_filter("CVAT has no unlabelled shapes", |s| !s.trim().is_empty())
                    .prop_map(String::from)
            ],
            shape,
            any::<bool>(),
            prop::option::of(nonzero.clone()),
            prop::option::of(nonzero),
            prop::option::of(coord().prop_filter("zero", |r| *r != 0.0)),
            prop::collection::btree_map("[a-z]{1,4}", value(), 0..3),
            0u8..4,
        )
            .prop_map(
                move |(class, (bbox, geometry), occ, z, g, rot, mut attributes, id)| {
                    attributes.insert("occluded".into(), AttrValue::Bool(occ));
                    for (k, v) in [
                        ("z_order", z.map(AttrValue::Int)),
                        ("group_id", g.map(AttrValue::Int)),
                        ("rotation", rot.map(AttrValue::Float)),
                    ] {
                        if let Some(v) = v {
                            attributes.insert(k.into(), v);
                        }
                    }
                    Object {
                        class,
                        bbox,
                        id: track.then(|| id.to_string()),
                        attributes: attributes.into(),
                        geometry,
                    }
                },
            )
    }

    fn frame() -> impl Strategy<Value = FrameLabels> {
        let tags = prop::collection::btree_map(
            "tag:[a-z&<][a-z &<]{0,3}",
            Just(AttrValue::Bool(true)),
            0..2,
        );
        let extra = prop::collection::btree_map("k[a-z_]{0,5}", value(), 0..3);
        (
            TEXT,
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            tags,
            extra,
            prop::collection::vec(object(false), 0..4),
            prop::collection::vec(object(true), 0..4),
        )
            .prop_map(|(name, width, height, tags, extra, shapes, mut tracked)| {
                // A track has one shape per frame, and they come after the
                // image's own shapes ordered by id and label.
                let mut seen = std::collections::HashSet::new();
                tracked.retain(|o| seen.insert(o.id.clone()));
                tracked.sort_by(|a, b| (&a.id, &a.class).cmp(&(&b.id, &b.class)));
                let mut attributes = tags;
                attributes.extend(extra);
                let mut objects = shapes;
                objects.extend(tracked);
                FrameLabels {
                    frame: name,
                    width,
                    height,
                    units: Units::Pixels,
                    attributes,
                    objects,
                }
            })
    }

    proptest! {
        #[test]
        fn box_corners_read_back_exactly(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let bbox = BBox::from_corners(a, 0.0, b, 1.0);
            prop_assert_eq!((bbox.x + bbox.w) - bbox.x, bbox.w);
        }

        #[test]
        fn random_frames_round_trip(frames in prop::collection::vec(frame(), 0..5)) {
            let written = write(&frames).unwrap();
            let back = parse(&written);
            prop_assert_eq!(back, Ok(frames), "{}", String::from_utf8_lossy(&written));
            assert_readings_agree(&written);
        }
    }
}
