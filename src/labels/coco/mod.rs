//! COCO detection JSON: one file describing many frames.
//!
//! Mapping to the normalized model:
//!
//! - one [`FrameLabels`] per entry of `images`, in file order, named by
//!   `file_name`, with `width`/`height`; images without annotations appear
//!   with no objects. Boxes are in pixels.
//! - image fields other than `id`, `file_name`, `width`, `height`, `license`,
//!   `flickr_url`, `coco_url` and `date_captured` become frame attributes;
//!   nested values are kept as their JSON text (`AttrValue::Str`), `null`s are
//!   dropped.
//! - one [`Object`] per annotation, in annotation order within its frame:
//!   class = category name, `id` = annotation id as text, `bbox` = `[x,y,w,h]`,
//!   polygon `segmentation` = [`Geometry::Polygon`], RLE `segmentation`
//!   (`counts` as a list or pycocotools' compressed text, `size` = [h, w]) =
//!   [`Geometry::Mask`] in columns over the image, `keypoints` (x, y, v
//!   triples) = [`Geometry::Keypoints`] holding the polygon segmentation too.
//! - object attributes: `iscrowd` = `AttrValue::Bool(true)` on crowd regions
//!   only (no attribute means not crowd, which keeps ordinary objects free of
//!   an attribute map), `score` as `Float` when present, then every key of an
//!   `attributes` object (Datumaro and CVAT exports keep `occluded`,
//!   `track_id`, ... there); those override `iscrowd`/`score` on a clash.
//!   Other annotation fields (`area`, mmdet3d's `bbox_cam3d`, ...) are ignored.
//!
//! [`write()`] numbers images 1..n in frame order, numbers categories 1..k in
//! order of first appearance (frames in order, objects in order), and keeps an
//! object's id as annotation id when it is an integer written canonically and
//! not already used; other objects get fresh ids above the largest kept one.
//!
//! One reader (`fast.rs`) reads COCO through one tokenizer (`lex.rs`),
//! driven two ways: [`parse`] first streams images and annotations straight
//! into frames (the usual layout, in one pass); a document that does not
//! stream (a repeated top-level list, an unknown or repeated id, and every
//! error) is read again by the same element readers into lists ([`Doc`],
//! the last of repeated lists winning), whose ids are then checked in
//! order. Errors are worded and positioned as serde_json (which this reader
//! replaced) worded them: a data error where the reader stops, else the
//! document's first syntax error (`lex::first_syntax_error`).
//! [`parse_each`] (and [`check`]) stream the same way, but hold each
//! annotation as a compact record until its frame is handed over, so no
//! command that reads a file frame by frame holds all its objects.
//! [`parse_fast_only`] and [`parse_buffered_only`] expose the two drivers
//! for differential tests and fuzzing; the results on the corpus of the
//! differential tests are pinned in `golden/` (see `fast.rs`' tests). The
//! layout-preserving writer ([`layout`]) and the locator of semantic errors
//! read JSON through the same tokenizer.
//!
//! Numbers are written in their shortest exact form. serde_json's default
//! float parsing (without its `float_roundtrip` feature) can land one ulp off
//! on 17-digit numbers, so full-precision coordinates may come back from a
//! write/parse round trip one ulp away; coordinates with up to 15 significant
//! digits (what labelling tools write) come back exact.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;

use super::{
    AttrValue, Attributes, BBox, Counts, FileTally, FrameLabels, Geometry, Keypoints, LabelError,
    MAX_POLYGON_POINTS, Mask, Object, Units,
};

/// Image fields that are COCO bookkeeping, not frame attributes.
const IMAGE_FIELDS: [&str; 8] = [
    "id",
    "file_name",
    "width",
    "height",
    "license",
    "flickr_url",
    "coco_url",
    "date_captured",
];

/// Whether the bytes look like COCO detection JSON (a cheap check on the first bytes).
pub fn sniff(path: &str, head: &[u8]) -> bool {
    if !path.to_ascii_lowercase().ends_with(".json") {
        return false;
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // Label Studio exports are a top-level array; COCO is always an object.
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    // "annotations" alone is not enough: a single Label Studio task has it too.
    has_key(head, b"\"images\"") || has_key(head, b"\"categories\"")
}

/// Whether `key` (with its quotes) occurs followed by a colon.
fn has_key(head: &[u8], key: &[u8]) -> bool {
    let mut from = 0;
    while let Some(pos) = find(head.get(from..).unwrap_or_default(), key) {
        let after = from + pos + key.len();
        let rest = head.get(after..).unwrap_or_default();
        if rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':') {
            return true;
        }
        from = after;
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

mod fast;
mod format;
pub mod layout;
pub use format::CocoFormat;
mod lex;

use lex::{Lexer, NO_LIMIT};

/// Parses a whole COCO file into its frames.
pub fn parse(bytes: &[u8]) -> Result<Vec<FrameLabels>, LabelError> {
    // The streaming read takes every valid file of the usual layout;
    // whatever it does not take (every error, and the rare layouts it
    // leaves out) is read into lists, which gives the same frames or
    // reports the error with its position.
    match fast::parse(bytes) {
        Some(frames) => Ok(frames),
        None => parse_buffered(bytes),
    }
}

/// The `categories` of a document, each its integer id and name, in file
/// order; `None` when the document is not JSON or a category lacks an
/// integer id or a name (see `fast.rs`).
fn category_list(bytes: &[u8]) -> Option<Vec<(i64, String)>> {
    fast::category_list(bytes)
}

/// [`parse`] handing the frames to `each` one at a time, in the same order.
/// Each frame's annotations wait as compact records until it is handed
/// over, and only then become objects, so a consumer never holds a whole
/// file's objects: the read holds the bytes, the frames and about 56 bytes
/// per plain annotation. An error is known before the first frame is
/// handed over.
pub fn parse_each(bytes: &[u8], each: &mut dyn FnMut(FrameLabels)) -> Result<(), LabelError> {
    read_each(Cow::Borrowed(bytes), each)
}

/// [`parse_each`] owning the bytes: the compact records keep nothing of them,
/// so they are freed before the first frame's objects are built (a cold query
/// of a 480 MB file held them beside its growing encoding, over the memory
/// budget; issue 16, item 9).
pub fn parse_each_owned(
    bytes: Vec<u8>,
    each: &mut dyn FnMut(FrameLabels),
) -> Result<(), LabelError> {
    read_each(Cow::Owned(bytes), each)
}

/// [`parse_each`] and [`parse_each_owned`]: owned bytes are dropped as soon as
/// the compact read is done.
fn read_each(bytes: Cow<'_, [u8]>, each: &mut dyn FnMut(FrameLabels)) -> Result<(), LabelError> {
    match fast::parse_compact(&bytes) {
        Some((frames, names)) => {
            drop(bytes);
            for w in frames {
                each(w.into_frame(&names));
            }
            Ok(())
        }
        None => {
            parse_buffered(&bytes)?.into_iter().for_each(each);
            Ok(())
        }
    }
}

/// Whether [`parse`] accepts a file (the same error when not), without
/// building its objects where the streaming read takes it.
pub fn check(bytes: &[u8]) -> Result<(), LabelError> {
    match fast::parse_compact(bytes) {
        Some(_) => Ok(()),
        None => parse_buffered(bytes).map(drop),
    }
}

/// [`parse_each`]'s streaming read alone, its frames collected, reading the
/// `images` and `annotations` lists in two halves at once from `split_from`
/// bytes on (see [`parse_fast_split_from`]): for tests and fuzzing.
pub fn parse_each_fast_split_from(bytes: &[u8], split_from: usize) -> Option<Vec<FrameLabels>> {
    let (frames, names) = fast::parse_compact_split_from(bytes, split_from)?;
    Some(frames.into_iter().map(|w| w.into_frame(&names)).collect())
}

/// The streaming read alone: `None` where [`parse`] reads the document into
/// lists instead (for differential tests and fuzzing).
pub fn parse_fast_only(bytes: &[u8]) -> Option<Vec<FrameLabels>> {
    fast::parse(bytes)
}

/// [`parse_fast_only`], reading the `images` and `annotations` lists in two
/// halves at once (see `fast.rs`) from `split_from` bytes on instead of
/// from 2 MiB: for tests and fuzzing of the split on small documents.
pub fn parse_fast_split_from(bytes: &[u8], split_from: usize) -> Option<Vec<FrameLabels>> {
    fast::parse_split_from(bytes, split_from)
}

/// The reading of the whole document into lists alone, which [`parse`]
/// falls back to (for differential tests and fuzzing).
pub fn parse_buffered_only(bytes: &[u8]) -> Result<Vec<FrameLabels>, LabelError> {
    parse_buffered(bytes)
}

/// About how many images the file has: the `"file_name"` keys before the first
/// `"annotations"` (images are listed first in every writer dsv knows; where
/// they are not, this is low and the lists grow as usual). Bounded by the
/// smallest image entry, so odd text cannot make it huge.
fn image_count_hint(bytes: &[u8]) -> usize {
    let end = memchr::memmem::find(bytes, b"\"annotations\"").unwrap_or(bytes.len());
    let head = bytes.get(..end).unwrap_or(bytes);
    let count = memchr::memmem::find_iter(head, b"\"file_name\"").count();
    // {"id":1,"file_name":""},
    count.min(bytes.len() / 24)
}

/// The whole document into [`Doc`] first, then into frames. [`parse`]
/// falls back to it for files the streaming read does not take (and for
/// every error, whose message and position come from here).
fn parse_buffered(bytes: &[u8]) -> Result<Vec<FrameLabels>, LabelError> {
    let doc = fast::collect(bytes).map_err(|e| json_error(bytes, e))?;
    frames_of(bytes, doc)
}

/// The frames of a document read into lists: ids resolved and checked.
fn frames_of<'a>(bytes: &[u8], doc: Doc<'a>) -> Result<Vec<FrameLabels>, LabelError> {
    let Some(images) = doc.images else {
        return Err(LabelError::at_line(
            1,
            "no \"images\" list: this is not a COCO detection file",
        ));
    };

    let mut classes = IdIndex::new(doc.categories.iter().map(|c| &c.id));
    let mut names: Vec<String> = Vec::with_capacity(doc.categories.len());
    for (k, cat) in doc.categories.into_iter().enumerate() {
        if !classes.insert(&cat.id, names.len()) {
            return Err(semantic_error(
                bytes,
                ("categories", k, "id"),
                format!(
                    "category id {} appears twice in \"categories\"",
                    cat.id.display()
                ),
            ));
        }
        names.push(cat.name.into_owned());
    }

    let mut frame_of = IdIndex::new(images.iter().map(|i| &i.id));
    let mut frames: Vec<FrameLabels> = Vec::with_capacity(images.len());
    for (k, img) in images.into_iter().enumerate() {
        if !frame_of.insert(&img.id, frames.len()) {
            return Err(semantic_error(
                bytes,
                ("images", k, "id"),
                format!(
                    "image id {} appears twice in \"images\" (again for {:?})",
                    img.id.display(),
                    img.file_name
                ),
            ));
        }
        frames.push(img.into_frame());
    }

    // Resolve every annotation first so each frame's object list can be
    // allocated once at its final size: growing them is a large share of the
    // time on big files.
    let mut slots: Vec<(usize, usize)> = Vec::with_capacity(doc.annotations.len());
    let mut counts = vec![0usize; frames.len()];
    for (k, ann) in doc.annotations.iter().enumerate() {
        let name = || match &ann.id {
            Some(id) => format!("annotation {}", id.display()),
            None => format!("annotation #{} (no id)", k + 1),
        };
        let Some(fi) = frame_of.get(&ann.image_id) else {
            return Err(semantic_error(
                bytes,
                ("annotations", k, "image_id"),
                format!(
                    "{} refers to image_id {}, which is not in \"images\"",
                    name(),
                    ann.image_id.display()
                ),
            ));
        };
        let Some(ci) = classes.get(&ann.category_id).filter(|c| *c < names.len()) else {
            return Err(semantic_error(
                bytes,
                ("annotations", k, "category_id"),
                format!(
                    "{} has category_id {}, which is not in \"categories\"",
                    name(),
                    ann.category_id.display()
                ),
            ));
        };
        if let Some(c) = counts.get_mut(fi) {
            *c += 1;
        }
        slots.push((fi, ci));
    }
    for (frame, n) in frames.iter_mut().zip(counts) {
        frame.objects.reserve_exact(n);
    }

    for (ann, (fi, ci)) in doc.annotations.into_iter().zip(slots) {
        let obj = ann.into_object(names.get(ci).cloned().unwrap_or_default());
        if let Some(frame) = frames.get_mut(fi) {
            frame.objects.push(obj);
        }
    }
    Ok(frames)
}

/// Maps ids to positions. Ids are nearly always small integers, and a plain
/// table for those is several times faster than hashing on large files.
struct IdIndex<'a> {
    dense: Vec<u32>,
    sparse: HashMap<Id<'a>, usize>,
}

impl<'a> IdIndex<'a> {
    const NONE: u32 = u32::MAX;

    fn new<'b>(ids: impl Iterator<Item = &'b Id<'a>> + Clone) -> IdIndex<'a>
    where
        'a: 'b,
    {
        // A bound on the table so that a few huge ids cannot make it huge.
        let limit = ids.clone().count().saturating_mul(4).saturating_add(1024);
        let size = ids
            .filter_map(|id| match id {
                Id::Int(n) => usize::try_from(*n).ok().filter(|n| *n < limit),
                Id::Text(_) => None,
            })
            .max()
            .map_or(0, |m| m + 1);
        IdIndex {
            dense: vec![Self::NONE; size],
            sparse: HashMap::new(),
        }
    }

    fn slot(&self, id: &Id) -> Option<usize> {
        match id {
            Id::Int(n) => usize::try_from(*n).ok().filter(|n| *n < self.dense.len()),
            Id::Text(_) => None,
        }
    }

    /// Records `id` at `index`; false if the id was already there.
    fn insert(&mut self, id: &Id<'a>, index: usize) -> bool {
        let value = u32::try_from(index).unwrap_or(Self::NONE);
        match self.slot(id).and_then(|s| self.dense.get_mut(s)) {
            Some(cell) if *cell == Self::NONE && value != Self::NONE => {
                *cell = value;
                true
            }
            Some(_) => false,
            None => self.sparse.insert(id.clone(), index).is_none(),
        }
    }

    fn get(&self, id: &Id) -> Option<usize> {
        match self.slot(id).and_then(|s| self.dense.get(s)) {
            Some(&v) => (v != Self::NONE).then_some(v as usize),
            None => self.sparse.get(id).copied(),
        }
    }
}

/// A positioned label error with a readable message, from the reader's
/// error (worded and positioned as serde_json's).
fn json_error(bytes: &[u8], e: lex::JsonError) -> LabelError {
    let (line, column) = lex::position(bytes, e.index);
    let msg = e.message;
    let message = match e.kind {
        lex::Kind::Eof => format!("the JSON stops early ({msg}): the file looks truncated"),
        lex::Kind::Syntax => format!("invalid JSON: {msg}"),
        lex::Kind::Data => format!("not valid COCO: {msg}"),
    };
    LabelError {
        line: (line > 0).then_some(line),
        column: (column > 0).then_some(column),
        message,
    }
}

/// An error about a document that is valid JSON, positioned by re-scanning
/// the text: serde does not report where a value was, and this path is rare.
fn semantic_error(bytes: &[u8], at: (&str, usize, &str), message: String) -> LabelError {
    match locate(bytes, at.0, at.1, at.2) {
        Some(off) => LabelError::at_offset(bytes, off, message),
        None => LabelError::msg(message),
    }
}

/// Byte offset of `field` inside element `index` of the top-level array `list`
/// (or of the element itself when it has no such field).
fn locate(bytes: &[u8], list: &str, index: usize, field: &str) -> Option<usize> {
    // Only ever run on JSON the reader accepted (skipping is iterative).
    let mut s = Lexer::new(bytes, 0, NO_LIMIT);
    s.ws();
    enter_object_at(&mut s, list.as_bytes())?;
    s.ws();
    s.eat(b'[')?;
    for _ in 0..index {
        s.ws();
        s.skip(0)?;
        s.ws();
        s.eat(b',')?;
    }
    s.ws();
    let element = s.i;
    Some(enter_object_at(&mut s, field.as_bytes()).unwrap_or(element))
}

/// In the object starting at the lexer, finds the key whose raw text (as
/// written, escapes undecoded) is `key`: leaves the lexer at its value and
/// returns the offset of the key.
fn enter_object_at(s: &mut Lexer<'_>, key: &[u8]) -> Option<usize> {
    s.eat(b'{')?;
    loop {
        s.ws();
        let at = s.i;
        s.skip_string()?;
        let hit = s.b.get(at + 1..s.i - 1)? == key;
        s.ws();
        s.eat(b':')?;
        s.ws();
        if hit {
            return Some(at);
        }
        s.skip(0)?;
        s.ws();
        s.eat(b',')?;
    }
}

// ---------------------------------------------------------------------------
// Streaming: images and annotations straight into the frames.
//
// The fast reader (`fast.rs`) builds the frames as it walks the document, so
// no list of annotations is ever held: on a file of a million annotations
// that list and its growth were several hundred MB of fresh memory, and the
// kernel zeroing those pages was the largest single cost (an `annotations`
// list before the `images` is read once they are). Anything it does not
// handle (a repeated list, a value nested more than 64 deep) or any error
// (unknown or repeated ids included) stops it, and [`parse_buffered`] does
// the work again and reports as it always has.

/// What the streaming read makes of an image and of an annotation: whole
/// frames and objects ([`Whole`], for [`parse`]), or frames whose
/// annotations wait as compact records until the frame is handed over
/// ([`Compact`], for [`parse_each`]). A COCO file can hand a frame over only
/// once it has read both lists (annotations may come before the images), so
/// what is held per annotation until then is the memory of the read.
trait Build {
    /// What an image becomes.
    type Frame: Send;
    /// What an annotation becomes.
    type Obj: Send;
    /// The frame of an image.
    fn frame(img: Image<'_>) -> Self::Frame;
    /// The objects of a frame.
    fn objects(frame: &mut Self::Frame) -> &mut Vec<Self::Obj>;
    /// The object of an annotation of class `class` (an index into `names`;
    /// [`Class::LATER`] when the categories come later, set by
    /// [`Build::set_class`]).
    fn object(ann: Ann<'_>, class: u32, names: &[String]) -> Self::Obj;
    /// Sets an object's class (an index into `names`) once it is known.
    fn set_class(obj: &mut Self::Obj, class: u32, names: &[String]);
}

/// Whole frames with their objects.
struct Whole;

impl Build for Whole {
    type Frame = FrameLabels;
    type Obj = Object;

    fn frame(img: Image<'_>) -> FrameLabels {
        img.into_frame()
    }

    fn objects(frame: &mut FrameLabels) -> &mut Vec<Object> {
        &mut frame.objects
    }

    fn object(ann: Ann<'_>, class: u32, names: &[String]) -> Object {
        ann.into_object(names.get(class as usize).cloned().unwrap_or_default())
    }

    fn set_class(obj: &mut Object, class: u32, names: &[String]) {
        if let Some(name) = names.get(class as usize) {
            obj.class.clone_from(name);
        }
    }
}

/// Frames whose annotations are held as [`Rec`]s until handed over.
struct Compact;

/// A frame without its objects, and the records of its annotations.
struct Waiting {
    frame: FrameLabels,
    recs: Vec<Rec>,
}

impl Waiting {
    /// The frame with its objects, classes named from `names`.
    fn into_frame(self, names: &[String]) -> FrameLabels {
        let mut frame = self.frame;
        frame.objects = self
            .recs
            .into_iter()
            .map(|r| {
                let class = names.get(r.class as usize).cloned().unwrap_or_default();
                r.into_object(class)
            })
            .collect();
        frame
    }
}

impl Build for Compact {
    type Frame = Waiting;
    type Obj = Rec;

    fn frame(img: Image<'_>) -> Waiting {
        Waiting {
            frame: img.into_frame(),
            recs: Vec::new(),
        }
    }

    fn objects(frame: &mut Waiting) -> &mut Vec<Rec> {
        &mut frame.recs
    }

    fn object(ann: Ann<'_>, class: u32, _names: &[String]) -> Rec {
        Rec::new(ann, class)
    }

    fn set_class(obj: &mut Rec, class: u32, _names: &[String]) {
        obj.class = class;
    }
}

/// Frames kept only as what `dsv stats` counts ([`count`]): their
/// attributes and, per annotation, its class and attributes.
struct Tally;

/// A frame as [`Tally`] keeps it.
struct Tallied {
    attributes: BTreeMap<String, AttrValue>,
    objects: Vec<Tick>,
}

/// An annotation as [`Tally`] keeps it: its class (an index into the
/// categories) and its object's attributes, when it has any.
struct Tick {
    class: u32,
    attributes: Option<Box<Attributes>>,
}

impl Build for Tally {
    type Frame = Tallied;
    type Obj = Tick;

    fn frame(img: Image<'_>) -> Tallied {
        Tallied {
            attributes: img.attributes,
            objects: Vec::new(),
        }
    }

    fn objects(frame: &mut Tallied) -> &mut Vec<Tick> {
        &mut frame.objects
    }

    fn object(ann: Ann<'_>, class: u32, _names: &[String]) -> Tick {
        let (_, _, attributes, _) = ann.into_parts();
        Tick {
            class,
            attributes: (!attributes.is_empty()).then(|| Box::new(attributes)),
        }
    }

    fn set_class(obj: &mut Tick, class: u32, _names: &[String]) {
        obj.class = class;
    }
}

/// What [`parse`] would count (see [`Counts`] and [`FileTally`]), without
/// building frames or objects: `None` where the streaming read does not
/// take the file (every error among them: [`parse`] then says which, or
/// gives the frames of a layout this does not take).
pub fn count(bytes: &[u8]) -> Option<Counts> {
    let (frames, names) = fast::parse_tally(bytes)?;
    counts_of(frames, names)
}

/// The counts of what [`Tally`] kept of a file's frames, whose classes
/// index `names`.
fn counts_of(frames: Vec<Tallied>, names: Vec<String>) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut tally = FileTally::default();
    // Each class's place in `counts.classes`, by class index.
    let mut place: Vec<Option<usize>> = vec![None; names.len()];
    let bump = |list: &mut Vec<(String, String, u64)>, (k, v): (String, AttrValue)| {
        let bucket = super::attr_bucket(&v);
        match list.iter_mut().find(|e| e.0 == k && e.1 == bucket) {
            Some(e) => e.2 += 1,
            None => list.push((k, bucket, 1)),
        }
    };
    for frame in frames {
        if frame.objects.is_empty() {
            tally.empty += 1;
        } else {
            tally.labelled += 1;
        }
        for kv in frame.attributes {
            bump(&mut tally.frame_attributes, kv);
        }
        for tick in frame.objects {
            counts.objects += 1;
            let class = tick.class as usize;
            let at = place.get_mut(class)?;
            match *at {
                Some(k) => counts.classes.get_mut(k)?.1 += 1,
                None => {
                    *at = Some(counts.classes.len());
                    counts.classes.push((class, 1));
                }
            }
            for kv in tick.attributes.into_iter().flat_map(|a| *a) {
                bump(&mut tally.attributes, kv);
            }
        }
    }
    tally.names = names;
    counts.frames = Some(Box::new(tally));
    Some(counts)
}

/// An annotation as [`Compact`] holds it: its class as an index into the
/// categories, its box as four numbers, an integer id as the integer, and
/// whatever else it has (a segmentation, keypoints, attributes, a score, a
/// crowd flag, another id) in the form its object will hold it, boxed, only
/// when present. 56 bytes for a plain box, a third of its [`Object`] and
/// the strings of its class and id.
struct Rec {
    bbox: [f64; 4],
    id: i64,
    class: u32,
    flags: u8,
    more: Option<Box<More>>,
}

/// What few annotations have ([`Rec`]).
struct More {
    id: Option<String>,
    attributes: Attributes,
    geometry: Option<Geometry>,
}

impl Rec {
    /// `bbox` holds the box.
    const BOX: u8 = 1;
    /// `id` holds the id.
    const INT_ID: u8 = 2;

    fn new(ann: Ann<'_>, class: u32) -> Rec {
        let (bbox, id, attributes, geometry) = ann.into_parts();
        let mut flags = 0;
        let bbox = match bbox {
            Some(b) => {
                flags |= Rec::BOX;
                [b.x, b.y, b.w, b.h]
            }
            None => [0.0; 4],
        };
        let (id, id_text) = match id {
            Some(Id::Int(n)) if i64::try_from(n).is_ok() => {
                flags |= Rec::INT_ID;
                (i64::try_from(n).unwrap_or_default(), None)
            }
            Some(other) => (0, Some(other.into_string())),
            None => (0, None),
        };
        let more = (id_text.is_some() || !attributes.is_empty() || geometry.is_some()).then(|| {
            Box::new(More {
                id: id_text,
                attributes,
                geometry,
            })
        });
        Rec {
            bbox,
            id,
            class,
            flags,
            more,
        }
    }

    /// The object, as [`Ann::into_object`] makes it.
    fn into_object(self, class: String) -> Object {
        let [x, y, w, h] = self.bbox;
        let bbox = (self.flags & Rec::BOX != 0).then_some(BBox { x, y, w, h });
        let mut obj = Object::new(class, bbox);
        if self.flags & Rec::INT_ID != 0 {
            obj.id = Some(int_text(self.id));
        }
        if let Some(more) = self.more {
            let More {
                id,
                attributes,
                geometry,
            } = *more;
            if id.is_some() {
                obj.id = id;
            }
            obj.attributes = attributes;
            obj.geometry = geometry;
        }
        obj
    }
}

/// Streaming state: what has been read so far.
struct Stream<'a, B: Build> {
    /// One per image, in file order; their objects come in runs.
    frames: Vec<B::Frame>,
    /// Whether the `images` list has been read.
    images_done: bool,
    /// Ids of `frames`, until the index is built at the end of `images`.
    image_ids: Vec<Id<'a>>,
    frame_of: Option<IdIndex<'a>>,
    /// Whether an `annotations` list has been read.
    annotations_done: bool,
    /// The last `categories` list (as in the buffered parse, the last one
    /// wins): its index and names, checked for repeated ids.
    classes: Option<(IdIndex<'a>, Vec<String>)>,
    /// Whether annotations took their classes from `classes` as they were
    /// read (categories before annotations); otherwise (pycocotools writes
    /// categories last) the keys below say, and classes are set at the end.
    classes_used: bool,
    /// For each annotation, in file order: its frame and its category key
    /// (into `category_keys`), when `classes` was not known yet.
    ann_frames: Vec<u32>,
    ann_categories: Vec<u32>,
    category_keys: Keys<'a>,
    /// Consecutive annotations of one frame, moved into it in one go so that
    /// its object list is allocated at its final size (annotations are nearly
    /// always grouped by image).
    run: Vec<B::Obj>,
    run_frame: usize,
}

impl<B: Build> Default for Stream<'_, B> {
    fn default() -> Self {
        Stream {
            frames: Vec::new(),
            images_done: false,
            image_ids: Vec::new(),
            frame_of: None,
            annotations_done: false,
            classes: None,
            classes_used: false,
            ann_frames: Vec::new(),
            ann_categories: Vec::new(),
            category_keys: Keys::default(),
            run: Vec::new(),
            run_frame: 0,
        }
    }
}

impl<'a, B: Build> Stream<'a, B> {
    /// Adds an annotation whose frame and class [`resolve`] found; `names`
    /// are the categories' (empty when they come later).
    fn add_resolved(
        &mut self,
        fi: usize,
        class: Class<'a>,
        ann: Ann<'a>,
        names: &[String],
    ) -> Option<()> {
        let fi32 = u32::try_from(fi).ok()?;
        let class = match class {
            Class::Index(c) => {
                self.classes_used = true;
                c
            }
            Class::Later(id) => {
                let key = self.category_keys.key(id)?;
                self.ann_frames.push(fi32);
                self.ann_categories.push(key);
                Class::LATER
            }
        };
        if fi != self.run_frame {
            self.flush_run();
            self.run_frame = fi;
        }
        self.run.push(B::object(ann, class, names));
        Some(())
    }

    /// Adds the objects another thread made from the rest of the
    /// `annotations` list (`fast.rs`), as [`Stream::add_resolved`] would
    /// have added them one by one: `runs` are consecutive objects of one
    /// frame in list order, `later` the category id of each object when the
    /// categories were not known yet (empty otherwise), `named` whether
    /// any took its class from `classes`.
    fn add_runs(
        &mut self,
        runs: Vec<(usize, Vec<B::Obj>)>,
        later: Vec<Id<'a>>,
        named: bool,
    ) -> Option<()> {
        self.flush_run();
        if named {
            self.classes_used = true;
        }
        let mut later = later.into_iter();
        let by_id = self.classes.is_none();
        for (fi, mut objects) in runs {
            let fi32 = u32::try_from(fi).ok()?;
            if by_id {
                for _ in 0..objects.len() {
                    let key = self.category_keys.key(later.next()?)?;
                    self.ann_frames.push(fi32);
                    self.ann_categories.push(key);
                }
            }
            // As `flush_run`: a frame index comes from `frame_of`, so always
            // in range; a run already at its exact size is taken as it is.
            let Some(frame) = self.frames.get_mut(fi) else {
                continue;
            };
            let held = B::objects(frame);
            if held.capacity() == 0 {
                *held = objects;
            } else {
                held.append(&mut objects);
            }
        }
        // Every id has its object.
        later.next().is_none().then_some(())
    }

    fn flush_run(&mut self) {
        if self.run.is_empty() {
            return;
        }
        let Some(frame) = self.frames.get_mut(self.run_frame) else {
            self.run.clear();
            return;
        };
        let objects = B::objects(frame);
        if objects.capacity() == 0 {
            // `append` to an empty list would round up to 4.
            *objects = Vec::with_capacity(self.run.len());
        }
        objects.append(&mut self.run);
    }

    /// The frames, with classes set, and the categories' names; `None` if
    /// anything calls for the buffered parse (which then reports the error).
    fn finish(mut self) -> Option<(Vec<B::Frame>, Vec<String>)> {
        if !self.images_done {
            return None;
        }
        if self.ann_frames.is_empty() {
            let names = self.classes.map(|(_, names)| names).unwrap_or_default();
            return Some((self.frames, names));
        }
        // No categories at all: every annotation lacks its class, which the
        // buffered parse reports.
        let (classes, names) = self.classes.take()?;
        let class_of_key: Vec<Option<u32>> = self
            .category_keys
            .ids
            .iter()
            .map(|id| {
                let c = classes.get(id).filter(|c| *c < names.len())?;
                u32::try_from(c).ok()
            })
            .collect();
        // Objects of a frame are in annotation order: a cursor per frame
        // finds each annotation's object.
        let mut next = vec![0u32; self.frames.len()];
        for (&fi, &key) in self.ann_frames.iter().zip(&self.ann_categories) {
            let class = class_of_key.get(key as usize).copied().flatten()?;
            let fi = fi as usize;
            let pos = next.get_mut(fi)?;
            let obj = B::objects(self.frames.get_mut(fi)?).get_mut(*pos as usize)?;
            *pos += 1;
            B::set_class(obj, class, &names);
        }
        Some((self.frames, names))
    }
}

/// An annotation's class as far as it is known while reading: its index
/// into the categories' names, or (categories come later in the file) its
/// category id, resolved by [`Stream::finish`].
enum Class<'a> {
    Index(u32),
    Later(Id<'a>),
}

impl Class<'_> {
    /// The index an object's class has until [`Stream::finish`] sets it.
    const LATER: u32 = u32::MAX;
}

/// The frame index and class of an annotation, from the images and the
/// categories read so far; `None` when either id is unknown. Only reads, so
/// the fast path's second thread can resolve with the same tables.
fn resolve<'a>(
    frame_of: &IdIndex<'a>,
    classes: Option<&(IdIndex<'a>, Vec<String>)>,
    ann: &Ann<'a>,
) -> Option<(usize, Class<'a>)> {
    let fi = frame_of.get(&ann.image_id)?;
    let class = match classes {
        Some((index, names)) => {
            let c = index.get(&ann.category_id).filter(|c| *c < names.len())?;
            Class::Index(u32::try_from(c).ok()?)
        }
        None => Class::Later(ann.category_id.clone()),
    };
    Some((fi, class))
}

/// The index and names of a `categories` list; `None` if an id repeats.
fn classes(categories: Vec<Category<'_>>) -> Option<(IdIndex<'_>, Vec<String>)> {
    let mut index = IdIndex::new(categories.iter().map(|c| &c.id));
    let mut names: Vec<String> = Vec::with_capacity(categories.len());
    for cat in categories {
        if !index.insert(&cat.id, names.len()) {
            return None;
        }
        names.push(cat.name.into_owned());
    }
    Some((index, names))
}

/// Small numbers for the distinct ids of a list (category ids of annotations):
/// few distinct values, looked up once per annotation.
#[derive(Default)]
struct Keys<'a> {
    /// Key + 1 of small integer ids, by value (0 = not seen yet).
    dense: Vec<u32>,
    other: HashMap<Id<'a>, u32>,
    /// The ids, by key.
    ids: Vec<Id<'a>>,
}

impl<'a> Keys<'a> {
    const DENSE: usize = 1 << 16;

    fn key(&mut self, id: Id<'a>) -> Option<u32> {
        let next = u32::try_from(self.ids.len()).ok()?;
        let small = match &id {
            Id::Int(n) => usize::try_from(*n).ok().filter(|n| *n < Self::DENSE),
            Id::Text(_) => None,
        };
        let key = match small {
            Some(n) => {
                if self.dense.len() <= n {
                    self.dense.resize(n + 1, 0);
                }
                let slot = self.dense.get_mut(n)?;
                if *slot == 0 {
                    *slot = next.checked_add(1)?;
                    self.ids.push(id);
                }
                *slot - 1
            }
            None => match self.other.get(&id) {
                Some(&k) => k,
                None => {
                    self.other.insert(id.clone(), next);
                    self.ids.push(id);
                    next
                }
            },
        };
        Some(key)
    }
}

// ---------------------------------------------------------------------------
// The document as the reader (`fast.rs`) makes it, borrowing from the bytes.

/// The parts of a COCO document dsv reads; everything else is skipped unparsed.
struct Doc<'a> {
    images: Option<Vec<Image<'a>>>,
    annotations: Vec<Ann<'a>>,
    categories: Vec<Category<'a>>,
}

/// A category: its id and name.
struct Category<'a> {
    id: Id<'a>,
    name: Cow<'a, str>,
}

/// An annotation's fields dsv reads.
struct Ann<'a> {
    id: Option<Id<'a>>,
    image_id: Id<'a>,
    category_id: Id<'a>,
    bbox: Option<Bbox4>,
    segmentation: Segmentation,
    keypoints: Option<KeypointList>,
    iscrowd: Option<Crowd>,
    score: Option<f64>,
    attributes: Attrs<'a>,
}

impl<'a> Ann<'a> {
    /// The object of this annotation, with its class already resolved.
    fn into_object(self, class: String) -> Object {
        let (bbox, id, attributes, geometry) = self.into_parts();
        Object {
            class,
            bbox,
            id: id.map(Id::into_string),
            attributes,
            geometry,
        }
    }

    /// Its object's box, id, attributes and geometry.
    fn into_parts(self) -> (Option<BBox>, Option<Id<'a>>, Attributes, Option<Geometry>) {
        let mut attributes = Attributes::new();
        // Only crowd regions carry the flag: an attribute map on every object
        // would cost an allocation each, and "not crowd" is the default.
        if self.iscrowd.is_some_and(|c| c.0) {
            attributes.insert("iscrowd".to_string(), AttrValue::Bool(true));
        }
        if let Some(score) = self.score {
            attributes.insert("score".to_string(), AttrValue::Float(score));
        }
        for (key, value) in self.attributes.0 {
            attributes.insert(key.into_owned(), value);
        }
        let geometry = match (self.keypoints, self.segmentation.0) {
            (Some(KeypointList(points)), seg) if !points.is_empty() => {
                let outline = match seg {
                    Some(Seg::Rings(rings)) => Some(rings),
                    _ => None,
                };
                Some(Geometry::Keypoints(Box::new(Keypoints {
                    points,
                    outline,
                    labels: None,
                })))
            }
            (_, Some(Seg::Rings(rings))) => Some(Geometry::Polygon { rings }),
            (_, Some(Seg::Rle(mask))) => Some(Geometry::Mask(Box::new(mask))),
            (_, None) => None,
        };
        (self.bbox.map(|b| b.0), self.id, attributes, geometry)
    }
}

/// `keypoints`: a flat list of x, y, visibility triples.
struct KeypointList(Vec<[f64; 3]>);

/// Decodes pycocotools' compressed RLE text (`rleFrString`): each run is
/// 5-bit groups (characters from 48), 0x20 marks a continuation and 0x10 the
/// sign of the last group; from the third run on, a run is stored as the
/// difference to the run two before.
pub(super) fn decode_rle_text(s: &str) -> Option<Vec<u32>> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let c = i64::from(bytes.get(p)?.checked_sub(48)?);
            if k > 11 {
                return None;
            }
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        if counts.len() > 2 {
            x += i64::from(counts[counts.len() - 2]);
        }
        counts.push(u32::try_from(x).ok()?);
    }
    Some(counts)
}

/// An image entry; fields other than COCO's bookkeeping are its attributes.
struct Image<'a> {
    id: Id<'a>,
    file_name: Cow<'a, str>,
    width: Option<u32>,
    height: Option<u32>,
    attributes: BTreeMap<String, AttrValue>,
}

impl Image<'_> {
    fn into_frame(self) -> FrameLabels {
        let mut frame = FrameLabels::new(self.file_name.into_owned(), Units::Pixels);
        frame.width = self.width;
        frame.height = self.height;
        frame.attributes = self.attributes;
        frame
    }
}

/// A COCO id: an integer in most files, a string in some (nuScenes tokens).
/// Integers and strings never match each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Id<'a> {
    Int(i128),
    Text(Cow<'a, str>),
}

impl Id<'_> {
    fn display(&self) -> String {
        match self {
            Id::Int(n) => n.to_string(),
            Id::Text(s) => format!("{s:?}"),
        }
    }

    fn into_string(self) -> String {
        match self {
            // i128 formatting is slow; nearly every id fits an i64.
            Id::Int(n) => match i64::try_from(n) {
                Ok(small) => int_text(small),
                Err(_) => n.to_string(),
            },
            Id::Text(s) => s.into_owned(),
        }
    }
}

/// `n.to_string()` without the formatting machinery: it is called once per
/// annotation, a million times on a large file.
fn int_text(n: i64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'-';
        }
    }
    String::from(std::str::from_utf8(digits.get(at..).unwrap_or_default()).unwrap_or_default())
}

/// `bbox`: exactly four numbers.
struct Bbox4(BBox);

/// `iscrowd`: 0/1 in COCO, true/false in some writers.
struct Crowd(bool);

/// `segmentation`: polygons become rings of points, RLE (an object) a mask
/// in columns over the image; empty lists become `None`.
#[derive(Default)]
struct Segmentation(Option<Seg>);

/// A segmentation that is there.
enum Seg {
    Rings(Vec<Vec<[f64; 2]>>),
    Rle(Mask),
}

/// The error of a polygon past [`MAX_POLYGON_POINTS`].
fn too_many_points() -> String {
    format!(
        "segmentation polygon of more than {MAX_POLYGON_POINTS} points: dsv reads at most {MAX_POLYGON_POINTS} points per polygon"
    )
}

/// An annotation's `attributes` object (null = none).
#[derive(Default)]
struct Attrs<'a>(Vec<(Cow<'a, str>, AttrValue)>);

// ---------------------------------------------------------------------------
// Writing.

/// Writes frames as one COCO detection file.
///
/// `iscrowd` is 1 for objects whose `iscrowd` attribute is `Bool(true)`, else
/// 0; a `score` that is a `Float` becomes the top-level `score`; every other
/// attribute (including an `iscrowd` or `score` of another type) goes into
/// the annotation's `attributes` object, so [`parse`] gets it back. Every
/// annotation has `bbox` (when the object has one), `area` = w × h and
/// `segmentation` (its polygon, its RLE mask as uncompressed `counts`, or `[]`),
/// and `keypoints` with `num_keypoints` for keypoints (CVAT points are written
/// as keypoints of visibility 2). Normalized boxes are converted to pixels (the frame must have a size).
/// 3D boxes are not written: COCO has no place for them. Output has one
/// image, annotation or category per line so that text diffs stay readable.
pub fn write(frames: &[FrameLabels]) -> Result<Vec<u8>, LabelError> {
    write_with(frames, None, None)
}

/// [`write`] with a fixed category list (category id = position + 1, every
/// category listed whether used or not; a class not in it is an error) and
/// `info` (a JSON object's text) in place of the default one: what an export
/// writes, so category ids do not depend on which classes a version uses.
pub fn write_with(
    frames: &[FrameLabels],
    categories: Option<&[String]>,
    info: Option<&str>,
) -> Result<Vec<u8>, LabelError> {
    let mut out: Vec<u8> = Vec::with_capacity(256 + frames.len() * 128);
    out.extend_from_slice(b"{\"info\":");
    out.extend_from_slice(
        info.unwrap_or("{\"description\":\"written by dsv\"}")
            .as_bytes(),
    );
    out.extend_from_slice(b",\"licenses\":[],\n\"images\":[");

    for (i, frame) in frames.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        write!(out, "{{\"id\":{},\"file_name\":", i + 1).map_err(io_error)?;
        put_str(&mut out, &frame.frame)?;
        if let Some(w) = frame.width {
            write!(out, ",\"width\":{w}").map_err(io_error)?;
        }
        if let Some(h) = frame.height {
            write!(out, ",\"height\":{h}").map_err(io_error)?;
        }
        for (key, value) in &frame.attributes {
            // These would clash with the fields written above.
            if matches!(key.as_str(), "id" | "file_name" | "width" | "height") {
                continue;
            }
            out.push(b',');
            put_str(&mut out, key)?;
            out.push(b':');
            put_attr(&mut out, value, || {
                format!("frame {:?}, attribute {key:?}", frame.frame)
            })?;
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"\n],\n\"annotations\":[");

    let ids = annotation_ids(frames);
    let fixed = categories.is_some();
    let mut categories: Vec<&str> = categories
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    let mut category_of: HashMap<&str, usize> = HashMap::new();
    for (k, c) in categories.iter().enumerate() {
        category_of.entry(c).or_insert(k + 1);
    }
    let mut first = true;
    let mut ids = ids.into_iter();
    for (i, frame) in frames.iter().enumerate() {
        let (sx, sy) = scale(frame)?;
        for (j, obj) in frame.objects.iter().enumerate() {
            let what = || format!("frame {:?}, object {}", frame.frame, j + 1);
            let cat = match category_of.get(obj.class.as_str()) {
                Some(&c) => c,
                None if fixed => {
                    return Err(LabelError::msg(format!(
                        "{}: class {:?} is not in the category list",
                        what(),
                        obj.class
                    )));
                }
                None => {
                    categories.push(obj.class.as_str());
                    category_of.insert(obj.class.as_str(), categories.len());
                    categories.len()
                }
            };
            let id = ids.next().unwrap_or_default();
            out.extend_from_slice(if first { b"\n" } else { b",\n" });
            first = false;
            write!(
                out,
                "{{\"id\":{id},\"image_id\":{},\"category_id\":{cat}",
                i + 1
            )
            .map_err(io_error)?;
            let mut area = 0.0;
            if let Some(b) = obj.bbox {
                let b = BBox {
                    x: b.x * sx,
                    y: b.y * sy,
                    w: b.w * sx,
                    h: b.h * sy,
                };
                out.extend_from_slice(b",\"bbox\":[");
                for (k, v) in [b.x, b.y, b.w, b.h].into_iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    put_f64(&mut out, v, what)?;
                }
                out.push(b']');
                area = b.area();
            }
            out.extend_from_slice(b",\"area\":");
            put_f64(&mut out, area, what)?;

            let iscrowd = matches!(obj.attributes.get("iscrowd"), Some(AttrValue::Bool(true)));
            write!(out, ",\"iscrowd\":{}", u8::from(iscrowd)).map_err(io_error)?;

            let (rings, mask, keypoints): (&[Vec<[f64; 2]>], _, _) = match &obj.geometry {
                Some(Geometry::Polygon { rings }) => (rings, None, None),
                Some(Geometry::Keypoints(k)) => (
                    k.outline.as_deref().unwrap_or_default(),
                    None,
                    Some(Cow::Borrowed(&k.points[..])),
                ),
                // CVAT points are keypoints without a visibility: visible.
                Some(Geometry::Points(p)) => (
                    &[][..],
                    None,
                    Some(Cow::Owned(
                        p.points.iter().map(|&[x, y]| [x, y, 2.0]).collect(),
                    )),
                ),
                Some(Geometry::Mask(m)) if m.column_major => (&[][..], Some(m), None),
                _ => (&[][..], None, None),
            };
            if let Some(m) = mask {
                out.extend_from_slice(b",\"segmentation\":{\"counts\":[");
                for (k, n) in m.counts.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    write!(out, "{n}").map_err(io_error)?;
                }
                write!(out, "],\"size\":[{},{}]}}", m.height, m.width).map_err(io_error)?;
            }
            if let Some(points) = keypoints {
                out.extend_from_slice(b",\"keypoints\":[");
                for (k, [x, y, v]) in points.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    put_f64(&mut out, *x, what)?;
                    out.push(b',');
                    put_f64(&mut out, *y, what)?;
                    out.push(b',');
                    // Visibility is a flag (0, 1, 2): written as the integer it is.
                    if v.fract() == 0.0 && v.abs() < 1e15 {
                        write!(out, "{}", *v as i64).map_err(io_error)?;
                    } else {
                        put_f64(&mut out, *v, what)?;
                    }
                }
                let n = points.iter().filter(|p| p[2] > 0.0).count();
                write!(out, "],\"num_keypoints\":{n}").map_err(io_error)?;
            }
            if mask.is_none() {
                out.extend_from_slice(b",\"segmentation\":[");
            }
            for (r, ring) in rings.iter().filter(|r| !r.is_empty()).enumerate() {
                out.extend_from_slice(if r == 0 { b"[" } else { b",[" });
                for (k, [x, y]) in ring.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    put_f64(&mut out, *x, what)?;
                    out.push(b',');
                    put_f64(&mut out, *y, what)?;
                }
                out.push(b']');
            }
            if mask.is_none() {
                out.push(b']');
            }

            if let Some(AttrValue::Float(score)) = obj.attributes.get("score") {
                out.extend_from_slice(b",\"score\":");
                put_f64(&mut out, *score, what)?;
            }
            // Whatever did not fit a top-level field goes into "attributes".
            let rest: Vec<(&String, &AttrValue)> = obj
                .attributes
                .iter()
                .filter(|(k, v)| {
                    !matches!(
                        (k.as_str(), v),
                        ("iscrowd", AttrValue::Bool(true)) | ("score", AttrValue::Float(_))
                    )
                })
                .collect();
            if !rest.is_empty() {
                out.extend_from_slice(b",\"attributes\":{");
                for (k, (key, value)) in rest.into_iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    put_str(&mut out, key)?;
                    out.push(b':');
                    put_attr(&mut out, value, || format!("{}, attribute {key:?}", what()))?;
                }
                out.push(b'}');
            }
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"\n],\n\"categories\":[");
    for (k, name) in categories.iter().enumerate() {
        out.extend_from_slice(if k == 0 { b"\n" } else { b",\n" });
        write!(out, "{{\"id\":{},\"name\":", k + 1).map_err(io_error)?;
        put_str(&mut out, name)?;
        out.extend_from_slice(b",\"supercategory\":\"\"}");
    }
    out.extend_from_slice(b"\n]}\n");
    Ok(out)
}

/// Annotation ids for every object, in frame then object order: an object's
/// own id when it is a canonical integer not taken by an earlier object,
/// otherwise a fresh one above every kept id.
fn annotation_ids(frames: &[FrameLabels]) -> Vec<i128> {
    let objects = || frames.iter().flat_map(|f| f.objects.iter());
    let mut taken = HashSet::new();
    let kept: Vec<Option<i128>> = objects()
        .map(|o| {
            let id = o.id.as_deref()?;
            let n: i128 = id.parse().ok()?;
            let fits = (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&n);
            (fits && n.to_string() == id && taken.insert(n)).then_some(n)
        })
        .collect();
    let mut next = taken.iter().copied().max().map_or(1, |m| m + 1);
    kept.into_iter()
        .map(|k| {
            k.unwrap_or_else(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// Factors that turn the frame's boxes into pixels.
fn scale(frame: &FrameLabels) -> Result<(f64, f64), LabelError> {
    match frame.units {
        Units::Pixels => Ok((1.0, 1.0)),
        Units::Normalized => match (frame.width, frame.height) {
            (Some(w), Some(h)) => Ok((f64::from(w), f64::from(h))),
            _ => Err(LabelError::msg(format!(
                "frame {:?} has normalized boxes but no image size; COCO needs pixel boxes",
                frame.frame
            ))),
        },
    }
}

fn io_error(e: std::io::Error) -> LabelError {
    LabelError::msg(format!("cannot write COCO JSON: {e}"))
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), LabelError> {
    serde_json::to_writer(&mut *out, s).map_err(|e| LabelError::msg(e.to_string()))
}

fn put_f64(out: &mut Vec<u8>, v: f64, what: impl Fn() -> String) -> Result<(), LabelError> {
    // serde_json would silently write null for these.
    if !v.is_finite() {
        return Err(LabelError::msg(format!(
            "{}: {v} cannot be written to JSON",
            what()
        )));
    }
    serde_json::to_writer(&mut *out, &v).map_err(|e| LabelError::msg(e.to_string()))
}

fn put_attr(out: &mut Vec<u8>, v: &AttrValue, what: impl Fn() -> String) -> Result<(), LabelError> {
    match v {
        AttrValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AttrValue::Int(i) => write!(out, "{i}").map_err(io_error)?,
        AttrValue::Float(x) => put_f64(out, *x, what)?,
        AttrValue::Str(s) => put_str(out, s)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const TRAIN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/coco_dataset/coco_instances/annotations/instances_train.json"
    );
    const VAL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/coco_dataset/coco_instances/annotations/instances_val.json"
    );
    const RF_TRAIN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/roboflow_dataset/coco/train/_annotations.coco.json"
    );
    const RF_VAL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/roboflow_dataset/coco/val/_annotations.coco.json"
    );
    const ALL: [&str; 4] = [TRAIN, VAL, RF_TRAIN, RF_VAL];

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn bbox(x: f64, y: f64, w: f64, h: f64) -> Option<BBox> {
        Some(BBox { x, y, w, h })
    }

    #[test]
    fn datumaro_train_fixture() {
        let frames = parse(&read(TRAIN)).unwrap();
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert_eq!(f.frame, "a.jpg");
        assert_eq!((f.width, f.height), (Some(10), Some(5)));
        assert_eq!(f.units, Units::Pixels);
        assert!(
            f.attributes.is_empty(),
            "bookkeeping fields are not attributes"
        );
        assert_eq!(f.objects.len(), 1);
        let o = &f.objects[0];
        assert_eq!(o.class, "b");
        assert_eq!(o.id.as_deref(), Some("1"));
        assert_eq!(o.bbox, bbox(2.0, 2.0, 3.0, 1.0));
        assert!(o.attributes.is_empty());
        assert_eq!(o.geometry, None);
    }

    #[test]
    fn datumaro_val_fixture_polygon_rle_and_attributes() {
        let frames = parse(&read(VAL)).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].frame, "b.jpg");
        assert_eq!((frames[0].width, frames[0].height), (Some(5), Some(10)));
        let [a, b] = &frames[0].objects[..] else {
            panic!("expected two objects: {:?}", frames[0].objects)
        };
        assert_eq!(a.class, "a");
        assert_eq!(a.bbox, bbox(0.0, 0.0, 1.0, 2.0));
        assert_eq!(
            a.geometry,
            Some(Geometry::Polygon {
                rings: vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [0.0, 2.0]]]
            })
        );
        assert_eq!(a.attributes.get("x"), Some(&AttrValue::Int(1)));
        assert_eq!(a.attributes.get("y"), Some(&AttrValue::Str("hello".into())));
        assert_eq!(a.attributes.get("iscrowd"), None);
        // RLE: a mask in columns over the image.
        assert_eq!(b.class, "b");
        assert_eq!(b.id.as_deref(), Some("2"));
        assert_eq!(b.bbox, bbox(0.0, 0.0, 1.0, 9.0));
        assert_eq!(b.kind(), "mask");
        assert_eq!(b.attributes.get("iscrowd"), Some(&AttrValue::Bool(true)));
    }

    #[test]
    fn compressed_rle_text_decodes_like_pycocotools() {
        // pycocotools: encode of runs [3, 2] is "32"; deltas from the third run on.
        assert_eq!(decode_rle_text("32"), Some(vec![3, 2]));
        assert_eq!(decode_rle_text(""), Some(vec![]));
        // "0" then "1" then a delta of 0 from run 1: [0, 1, 0 + 0].
        assert_eq!(decode_rle_text("010"), Some(vec![0, 1, 0]));
        // Hostile: endless continuation groups, bytes below '0', negative runs.
        assert_eq!(decode_rle_text(&"o".repeat(40)), None);
        assert_eq!(decode_rle_text(" "), None);
        assert_eq!(decode_rle_text("P"), None);
    }

    #[test]
    fn roboflow_fixtures() {
        let train = parse(&read(RF_TRAIN)).unwrap();
        let names: Vec<&str> = train.iter().map(|f| f.frame.as_str()).collect();
        assert_eq!(names, ["train_001.jpg", "train_002.jpg"]);
        assert_eq!(train[0].objects[0].id.as_deref(), Some("0"));
        assert_eq!(train[0].objects[0].class, "label_0");
        assert_eq!(train[0].objects[0].bbox, bbox(2.0, 1.0, 3.0, 1.0));
        assert_eq!(train[1].objects[0].class, "label_1");
        assert_eq!(train[1].objects[0].bbox, bbox(0.0, 0.0, 2.0, 4.0));

        let val = parse(&read(RF_VAL)).unwrap();
        assert_eq!(val.len(), 1);
        assert_eq!(val[0].frame, "val_001.jpg");
        let classes: Vec<&str> = val[0].objects.iter().map(|o| o.class.as_str()).collect();
        assert_eq!(classes, ["label_0", "label_1"]);
        assert_eq!(
            val[0].objects[1].attributes.get("iscrowd"),
            Some(&AttrValue::Bool(true))
        );
    }

    #[test]
    fn fixtures_round_trip() {
        for path in ALL {
            let frames = parse(&read(path)).unwrap();
            let written = write(&frames).unwrap();
            let back = parse(&written)
                .unwrap_or_else(|e| panic!("{path}: {e}\n{}", String::from_utf8_lossy(&written)));
            assert_eq!(back, frames, "{path}");
        }
    }

    #[test]
    fn no_prefix_of_a_fixture_panics() {
        for path in ALL {
            let bytes = read(path);
            for n in 0..bytes.len() {
                let _ = parse(&bytes[..n]);
            }
        }
    }

    #[test]
    fn integer_ids_as_text() {
        for n in [0, 7, -7, 10, 99, 857_142, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(int_text(n), n.to_string());
        }
    }

    /// The streaming parse must give what the buffered parse gives, frames or error.
    fn same_as_buffered(bytes: &[u8]) -> Result<Vec<FrameLabels>, LabelError> {
        let streamed = parse(bytes);
        assert_eq!(
            streamed,
            parse_buffered(bytes),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        streamed
    }

    #[test]
    fn streaming_matches_buffered_on_every_prefix_of_the_fixtures() {
        for path in ALL {
            let bytes = read(path);
            assert!(same_as_buffered(&bytes).is_ok(), "{path}");
            for n in 0..bytes.len() {
                let _ = same_as_buffered(&bytes[..n]);
            }
        }
    }

    #[test]
    fn streaming_matches_buffered_whatever_the_order_of_the_lists() {
        let images = r#""images": [{"id": 1, "file_name": "a.jpg", "tag": "x"}, {"id": 2, "file_name": "b.jpg"}, {"id": "t", "file_name": "c.jpg"}]"#;
        // Annotations of one frame are not consecutive; ids and category ids of both kinds.
        let annotations = r#""annotations": [
            {"id": 1, "image_id": 2, "category_id": 7, "bbox": [1, 2, 3, 4], "segmentation": [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]},
            {"id": "a", "image_id": 1, "category_id": "c", "iscrowd": 1},
            {"id": 3, "image_id": 2, "category_id": 7, "segmentation": [1, 2, 3, 4], "score": 0.5},
            {"image_id": "t", "category_id": 7, "attributes": {"occluded": true, "n": null}},
            {"id": 5, "image_id": 2, "category_id": "c", "segmentation": {"counts": [1], "size": [1, 1]}}]"#;
        let categories = r#""categories": [{"id": 7, "name": "car"}, {"id": "c", "name": "bus"}]"#;
        let other_categories =
            r#""categories": [{"id": 7, "name": "van"}, {"id": "c", "name": "emu"}]"#;
        let docs = [
            format!("{{{images}, {annotations}, {categories}}}"),
            format!("{{{categories}, {images}, {annotations}}}"),
            format!("{{{images}, {categories}, {annotations}}}"),
            // Buffered: the last list wins; streaming hands these to it.
            format!("{{{annotations}, {images}, {categories}}}"),
            format!("{{{images}, {annotations}, {categories}, {images}}}"),
            format!("{{{images}, {annotations}, {annotations}, {categories}}}"),
            format!("{{{categories}, {images}, {annotations}, {other_categories}}}"),
            format!("{{{other_categories}, {images}, {annotations}, {categories}}}"),
            format!("{{{categories}, {images}, {other_categories}, {annotations}}}"),
            format!("{{{images}, \"annotations\": null, {categories}}}"),
            format!("{{{images}, \"annotations\": [], \"info\": {{}}}}"),
            // Semantic errors: reported by the buffered parse, with their positions.
            format!("{{{images}, {annotations}}}"),
            format!(
                "{{{categories}, {images}, {annotations}, \"categories\": [{{\"id\": 7, \"name\": \"x\"}}]}}"
            ),
            format!(
                "{{\"categories\": [{{\"id\": 7, \"name\": \"x\"}}, {{\"id\": 7, \"name\": \"y\"}}], {images}, {annotations}}}"
            ),
            format!(
                "{{{images}, {annotations}, \"categories\": [{{\"id\": 7, \"name\": \"x\"}}]}}"
            ),
            format!(
                "{{\"images\": [{{\"id\": 1, \"file_name\": \"a\"}}, {{\"id\": 1, \"file_name\": \"b\"}}], {annotations}, {categories}}}"
            ),
            format!(
                "{{{categories}, \"images\": [{{\"id\": 1, \"file_name\": \"a\"}}], {annotations}}}"
            ),
            format!("{{{categories}, {annotations}}}"),
            // JSON errors after a semantic one: the JSON error is reported.
            format!("{{{categories}, \"images\": [], {annotations}, \"x\": [}}"),
            format!("{{{images}, {annotations}, {categories}}} x"),
        ];
        let mut ok = 0;
        for doc in &docs {
            if let Ok(frames) = same_as_buffered(doc.as_bytes()) {
                ok += 1;
                let classes: Vec<Vec<&str>> = frames
                    .iter()
                    .map(|f| f.objects.iter().map(|o| o.class.as_str()).collect())
                    .collect();
                if doc.contains("\"annotations\": null") || doc.contains("[], \"info\"") {
                    assert!(classes.iter().all(Vec::is_empty));
                } else if doc.rfind(other_categories) > doc.rfind(categories) {
                    assert_eq!(
                        classes,
                        [vec!["emu"], vec!["van", "van", "emu"], vec!["van"]]
                    );
                } else {
                    assert_eq!(
                        classes,
                        [vec!["bus"], vec!["car", "car", "bus"], vec!["car"]]
                    );
                }
            }
        }
        assert_eq!(ok, 11);
    }

    #[test]
    fn nesting_deeper_than_64_is_read_and_past_serde_jsons_limit_refused() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let doc = |info: &str, attr: &str| {
            format!(
                r#"{{"info": {info}, "images": [{{"id": 1, "file_name": "a.jpg", "deep": {attr}}}],
 "annotations": [], "categories": []}}"#
            )
        };
        // Skipped values have no limit (serde_json's `IgnoredAny` had none).
        let frames = parse(doc(&nested(100_000), "1").as_bytes()).unwrap();
        assert_eq!(frames[0].frame, "a.jpg");
        // An attribute nested 100 deep (the streaming read once stopped at
        // 64) is read; 3 containers enclose it, so 124 is the most.
        let frames = parse(doc("{}", &nested(124)).as_bytes()).unwrap();
        assert_eq!(
            frames[0].attributes.get("deep"),
            Some(&AttrValue::Str(nested(124)))
        );
        let text = doc("{}", &nested(125));
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(
            err.message, "invalid JSON: recursion limit exceeded",
            "{err}"
        );
        assert_eq!(err.line, Some(1));
        let err = parse(doc("{}", &nested(1_000_000)).as_bytes()).unwrap_err();
        assert_eq!(
            err.message, "invalid JSON: recursion limit exceeded",
            "{err}"
        );
    }

    #[test]
    fn a_repeated_images_list_is_read_the_last_one_wins() {
        let text = r#"{"images": [{"id": 1, "file_name": "old.jpg"}],
 "annotations": [{"id": 1, "image_id": 2, "category_id": 1}],
 "images": [{"id": 2, "file_name": "new.jpg"}],
 "categories": [{"id": 1, "name": "car"}]}"#;
        assert_eq!(parse_fast_only(text.as_bytes()), None);
        let frames = parse(text.as_bytes()).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].frame, "new.jpg");
        assert_eq!(frames[0].objects[0].class, "car");
    }

    #[test]
    fn invalid_utf8_is_reported_where_it_is() {
        let text = SMALL.replacen("a.jpg", "a\u{e9}.jpg", 1);
        let mut bytes = text.into_bytes();
        let at = bytes.iter().position(|b| *b == 0xC3).unwrap();
        // A lone continuation byte: not UTF-8.
        bytes.remove(at);
        let err = same_as_buffered(&bytes).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("invalid"), "{err}");
        // Valid UTF-8 outside ASCII is read as before.
        let text = SMALL.replacen("a.jpg", "\u{e9}t\u{e9}.jpg", 1);
        assert_eq!(
            same_as_buffered(text.as_bytes()).unwrap()[0].frame,
            "\u{e9}t\u{e9}.jpg"
        );
    }

    #[test]
    fn images_without_annotations_and_extra_image_fields() {
        let json = br#"{"images": [
            {"id": "tok-b", "file_name": "b.jpg", "width": 4, "height": 3,
             "token": "abc", "cam": [[1, 2], [3, 4.5]], "flag": true, "n": 7,
             "f": 1.5, "url": null, "license": 2, "coco_url": "x", "date_captured": null},
            {"id": 2, "file_name": "a.jpg"}],
          "annotations": [{"id": 9, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4],
                           "score": 0.5, "segmentation": [1, 2, 3, 4, 5, 6]}],
          "categories": [{"id": 1, "name": "car"}]}"#;
        let frames = parse(json).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].frame, "b.jpg");
        assert!(frames[0].objects.is_empty());
        let attrs: BTreeMap<String, AttrValue> = [
            ("token", AttrValue::Str("abc".into())),
            ("cam", AttrValue::Str("[[1,2],[3,4.5]]".into())),
            ("flag", AttrValue::Bool(true)),
            ("n", AttrValue::Int(7)),
            ("f", AttrValue::Float(1.5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(frames[0].attributes, attrs);
        assert_eq!((frames[1].width, frames[1].height), (None, None));
        let o = &frames[1].objects[0];
        assert_eq!(o.id.as_deref(), Some("9"));
        assert_eq!(o.attributes.get("score"), Some(&AttrValue::Float(0.5)));
        // A flat segmentation list is read as one polygon.
        assert_eq!(
            o.geometry,
            Some(Geometry::Polygon {
                rings: vec![vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]
            })
        );
        assert_eq!(parse(&write(&frames).unwrap()).unwrap(), frames);
    }

    fn line_of(bytes: &[u8], needle: &str) -> usize {
        let text = std::str::from_utf8(bytes).unwrap();
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    const SMALL: &str = r#"{
  "images": [
    {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}
  ],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}
  ],
  "categories": [{"id": 1, "name": "car"}]
}"#;

    fn broken(from: &str, to: &str) -> (Vec<u8>, LabelError) {
        let text = SMALL.replacen(from, to, 1);
        assert_ne!(text, SMALL);
        let err = parse(text.as_bytes()).expect_err("must fail");
        (text.into_bytes(), err)
    }

    #[test]
    fn truncated_json_reports_the_last_line() {
        let bytes = read(VAL);
        let cut = &bytes[..bytes.len() / 2];
        let err = parse(cut).unwrap_err();
        let lines = cut.iter().filter(|b| **b == b'\n').count() + 1;
        assert_eq!(err.line, Some(lines), "{err}");
        assert!(err.message.contains("truncated"), "{err}");
    }

    #[test]
    fn bbox_with_three_numbers() {
        let (text, err) = broken(
            r#""id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]"#,
            r#""id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]"#,
        );
        assert_eq!(err.line, Some(line_of(&text, "[1, 2, 3]}")), "{err}");
        assert!(err.message.contains("bbox has 3 numbers"), "{err}");
    }

    #[test]
    fn annotation_with_missing_image() {
        let (text, err) = broken(r#""id": 2, "image_id": 1"#, r#""id": 2, "image_id": 77"#);
        assert_eq!(err.line, Some(line_of(&text, "\"image_id\": 77")), "{err}");
        assert!(
            err.message.contains("annotation 2") && err.message.contains("image_id 77"),
            "{err}"
        );
    }

    #[test]
    fn annotation_with_missing_category() {
        let (text, err) = broken(
            r#""id": 2, "image_id": 1, "category_id": 1"#,
            r#""id": 2, "image_id": 1, "category_id": 5"#,
        );
        assert_eq!(
            err.line,
            Some(line_of(&text, "\"category_id\": 5")),
            "{err}"
        );
        let col = text
            .split(|b| *b == b'\n')
            .nth(6)
            .and_then(|l| find(l, b"\"category_id\""))
            .map(|c| c + 1);
        assert_eq!(err.column, col, "{err}");
        assert!(err.message.contains("annotation 2"), "{err}");
    }

    #[test]
    fn other_malformed_inputs() {
        let (text, err) = broken(r#""bbox": [1, 2, 3, 4]}"#, r#""bbox": [1, "x", 3, 4]}"#);
        assert_eq!(err.line, Some(line_of(&text, "\"x\"")), "{err}");
        let (text, err) = broken(r#""width": 10"#, r#""width": -10"#);
        assert_eq!(err.line, Some(line_of(&text, "-10")), "{err}");
        let (text, err) = broken(r#"{"id": 2, "image_id": 1,"#, r#"{"id": 2,"#);
        assert_eq!(err.line, Some(line_of(&text, "{\"id\": 2,")), "{err}");
        assert!(err.message.contains("image_id"), "{err}");
        let (_, err) = broken(r#"{"id": 1, "file_name""#, r#"{"id": 2, "file_name""#);
        assert!(err.message.contains("annotation 1"), "{err}");
        let err = parse(b"[1, 2]").unwrap_err();
        assert_eq!(err.line, Some(1));
        let err = parse(b"{\"info\": {}}").unwrap_err();
        assert!(err.message.contains("images"), "{err}");
        let (text, err) = broken(
            r#"{"id": 1, "name": "car"}"#,
            r#"{"id": 1, "name": "car"}, {"id": 1, "name": "bus"}"#,
        );
        assert_eq!(err.line, Some(line_of(&text, "bus")), "{err}");
        assert!(err.message.contains("twice"), "{err}");
    }

    #[test]
    fn writer_keeps_numeric_ids_and_orders_categories_by_first_use() {
        let mut frame = FrameLabels::new("x.jpg", Units::Pixels);
        for (class, id) in [
            ("dog", Some("5")),
            ("cat", Some("abc")),
            ("dog", None),
            ("cat", Some("5")),
            ("emu", Some("007")),
        ] {
            let mut o = Object::new(class, bbox(1.0, 1.0, 2.0, 2.0));
            o.id = id.map(str::to_string);
            frame.objects.push(o);
        }
        let written = write(std::slice::from_ref(&frame)).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&written).unwrap();
        let cats: Vec<(i64, &str)> = doc["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["id"].as_i64().unwrap(), c["name"].as_str().unwrap()))
            .collect();
        assert_eq!(cats, [(1, "dog"), (2, "cat"), (3, "emu")]);
        assert_eq!(doc["annotations"][0]["area"].as_f64(), Some(4.0));
        let back = parse(&written).unwrap();
        let ids: Vec<&str> = back[0]
            .objects
            .iter()
            .map(|o| o.id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["5", "6", "7", "8", "9"]);
    }

    #[test]
    fn writer_converts_normalized_boxes_and_rejects_what_json_cannot_hold() {
        let mut frame = FrameLabels::new("n.jpg", Units::Normalized);
        frame
            .objects
            .push(Object::new("a", bbox(0.25, 0.5, 0.5, 0.25)));
        assert!(write(std::slice::from_ref(&frame)).is_err(), "no size");
        frame.width = Some(100);
        frame.height = Some(40);
        let back = parse(&write(std::slice::from_ref(&frame)).unwrap()).unwrap();
        assert_eq!(back[0].units, Units::Pixels);
        assert_eq!(back[0].objects[0].bbox, bbox(25.0, 20.0, 50.0, 10.0));

        let mut frame = FrameLabels::new("nan.jpg", Units::Pixels);
        frame
            .objects
            .push(Object::new("a", bbox(f64::NAN, 0.0, 1.0, 1.0)));
        assert!(write(&[frame]).is_err());
    }

    #[test]
    fn sniffing() {
        let head = read(VAL);
        assert!(sniff("ann/instances_val.json", &head));
        assert!(sniff("A.JSON", br#"  {"categories": []}"#));
        assert!(!sniff("a.xml", &head));
        assert!(!sniff(
            "ls.json",
            br#"[{"id": 1, "annotations": [], "images": []}]"#
        ));
        assert!(!sniff(
            "task.json",
            br#"{"id": 1, "annotations": [], "data": {"image": "x"}}"#
        ));
        assert!(!sniff(
            "labelme.json",
            br#"{"shapes": [], "imagePath": "images"}"#
        ));
    }

    fn coord() -> impl Strategy<Value = f64> {
        // Two decimals: what real files hold, and exact through JSON.
        (-100_000i32..100_000).prop_map(|k| f64::from(k) / 100.0)
    }

    fn attr_value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            coord().prop_map(AttrValue::Float),
            "\\PC{0,8}".prop_map(AttrValue::Str),
        ]
    }

    fn object() -> impl Strategy<Value = Object> {
        let bbox = prop::option::of((coord(), coord(), coord(), coord()))
            .prop_map(|b| b.map(|(x, y, w, h)| BBox { x, y, w, h }));
        let ring = prop::collection::vec((coord(), coord()).prop_map(|(x, y)| [x, y]), 1..6);
        let geometry = prop::option::of(
            prop::collection::vec(ring, 1..3).prop_map(|rings| Geometry::Polygon { rings }),
        );
        let attrs = prop::collection::btree_map("[a-z_]{1,8}", attr_value(), 0..4);
        ("\\PC{0,8}", bbox, geometry, attrs).prop_map(|(class, bbox, geometry, attributes)| {
            Object {
                class,
                bbox,
                id: None,
                attributes: attributes.into(),
                geometry,
            }
        })
    }

    fn frame() -> impl Strategy<Value = FrameLabels> {
        let attrs = prop::collection::btree_map(
            "[a-z_]{1,8}".prop_filter("bookkeeping field", |k| !IMAGE_FIELDS.contains(&k.as_str())),
            attr_value(),
            0..3,
        );
        (
            "\\PC{0,12}",
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            attrs,
            prop::collection::vec(object(), 0..5),
        )
            .prop_map(|(name, width, height, attributes, objects)| FrameLabels {
                frame: name,
                width,
                height,
                units: Units::Pixels,
                attributes,
                objects,
            })
    }

    proptest! {
        #[test]
        fn random_frames_round_trip(mut frames in prop::collection::vec(frame(), 0..5), first in 0i64..1000) {
            // Annotation ids survive when they are distinct integers.
            for (k, o) in frames.iter_mut().flat_map(|f| f.objects.iter_mut()).enumerate() {
                o.id = Some((first + k as i64).to_string());
            }
            let written = write(&frames).unwrap();
            let back = parse(&written);
            prop_assert_eq!(back, Ok(frames));
        }
    }
}
