//! Pascal VOC XML annotation files: one `<annotation>` per frame.
//!
//! - Frame: `<filename>` (the label file's stem when absent), `<size>` width and
//!   height, pixel units. A `<depth>` other than 3 (the usual RGB value, and
//!   what the writer puts when it has none) is kept as the frame attribute
//!   `depth` ([`AttrValue::Int`]) so that grayscale datasets are written back
//!   as such.
//! - Objects: class = `<name>`, box from `<bndbox>` (coordinates may be
//!   fractional). `<truncated>`, `<difficult>` and `<occluded>` become
//!   [`AttrValue::Bool`] attributes of the same name when present and not
//!   empty. `<pose>` becomes the [`AttrValue::Str`] attribute `pose`, except
//!   `Unspecified` (VOC's "no value", the writer's default), so that most
//!   objects carry no noise attribute.
//! - Datumaro-style `<attributes><attribute><name>k</name><value>v</value>`
//!   pairs become attributes, typed from the text: `true`/`false` (any case)
//!   as Bool, whole numbers as Int, other finite numbers as Float, the rest as
//!   Str. VOC stores only text, so a Str that reads as a number or a boolean
//!   comes back typed (a known limit of the format).
//! - `<part>`, `<actions>`, `<point>` and any other element are skipped.
//!
//! Errors carry the line and column of the offending element (from the XML
//! reader's byte offsets).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::Reader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;

use super::{AttrValue, BBox, FrameLabels, LabelError, Object, ParseContext, Units};

mod format;
pub use format::VocFormat;

/// Attribute names with their own VOC element (written as elements, not under `<attributes>`).
const FLAGS: [&str; 3] = ["truncated", "difficult", "occluded"];

/// Deeper paths match nothing we read, so the matcher looks at this many levels.
const MAX_DEPTH: usize = 5;

/// Whether the path and first bytes look like a Pascal VOC annotation.
pub fn sniff(path: &str, head: &[u8]) -> bool {
    let is_xml = path.len() >= 4
        && path
            .as_bytes()
            .get(path.len() - 4..)
            .is_some_and(|e| e.eq_ignore_ascii_case(b".xml"));
    is_xml && root_element(head) == Some(b"annotation".as_slice())
}

/// The name of the first element in `head`, skipping the prolog, if the head holds it whole.
fn root_element(head: &[u8]) -> Option<&[u8]> {
    let mut rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        rest = rest.get(start..)?;
        let skip_to = |end: &[u8], rest: &[u8]| {
            rest.windows(end.len())
                .position(|w| w == end)
                .map(|p| p + end.len())
        };
        let after = if rest.starts_with(b"<?") {
            skip_to(b"?>", rest)?
        } else if rest.starts_with(b"<!--") {
            skip_to(b"-->", rest)?
        } else if rest.starts_with(b"<!") {
            skip_to(b">", rest)?
        } else if let Some(tag) = rest.strip_prefix(b"<") {
            let end = tag
                .iter()
                .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')?;
            return tag.get(..end);
        } else {
            return None;
        };
        rest = rest.get(after..)?;
    }
}

/// An `<object>` being read.
struct PendingObject {
    /// Byte offset of `<object>`, for errors about missing parts.
    start: usize,
    number: usize,
    class: Option<String>,
    corners: [Option<f64>; 4],
    has_bndbox: bool,
    attributes: BTreeMap<String, AttrValue>,
    attr_name: Option<String>,
    attr_value: Option<String>,
}

/// Parses one Pascal VOC annotation file.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<FrameLabels, LabelError> {
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let body = bytes.get(bom..).unwrap_or_default();
    let text = std::str::from_utf8(body)
        .map_err(|e| LabelError::at_offset(bytes, bom + e.valid_up_to(), "not UTF-8 text"))?;
    let at = |offset: usize, message: String| {
        LabelError::at_offset(bytes, bom.saturating_add(offset), message)
    };

    let mut reader = Reader::from_str(text);
    let mut frame = FrameLabels::new(String::new(), Units::Pixels);
    let mut stack: Vec<String> = Vec::new();
    let mut content = String::new();
    // Where each open element starts, for errors about it.
    let mut starts: Vec<usize> = Vec::new();
    let mut object: Option<PendingObject> = None;
    let mut objects_seen = 0usize;
    let mut root_done = false;

    loop {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let p = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            at(p, format!("invalid XML: {e}"))
        })?;
        let (name, empty) = match &event {
            Event::Start(e) => (Some(e.local_name()), false),
            Event::Empty(e) => (Some(e.local_name()), true),
            _ => (None, false),
        };
        if let Some(name) = name {
            let name = name.as_ref();
            if stack.is_empty() {
                if root_done {
                    return Err(at(pos, format!("<{name}> after the end of <annotation>")));
                }
                if name != "annotation" {
                    return Err(at(
                        pos,
                        format!("the root element is <{name}>, not <annotation>: not a VOC file"),
                    ));
                }
            }
            stack.push(name.to_owned());
            content.clear();
            starts.push(pos);
            if path_is(&stack, &["annotation", "object"]) {
                objects_seen += 1;
                object = Some(PendingObject {
                    start: pos,
                    number: objects_seen,
                    class: None,
                    corners: [None; 4],
                    has_bndbox: false,
                    attributes: BTreeMap::new(),
                    attr_name: None,
                    attr_value: None,
                });
            }
            if !empty {
                continue;
            }
        }
        match event {
            Event::Start(_) => {}
            Event::Text(t) => content.push_str(&t.xml10_content()),
            Event::CData(t) => content.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().ok().flatten()
                } else {
                    resolve_predefined_entity(&r).and_then(|s| s.chars().next())
                };
                match resolved {
                    Some(c) => content.push(c),
                    None => return Err(at(pos, format!("unknown or invalid reference &{};", &*r))),
                }
            }
            Event::End(_) | Event::Empty(_) => {
                close_element(
                    &stack,
                    content.trim(),
                    starts.last().copied().unwrap_or(pos),
                    &mut frame,
                    &mut object,
                    &at,
                )?;
                stack.pop();
                starts.pop();
                content.clear();
                if stack.is_empty() {
                    root_done = true;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(at(text.len(), format!("<{open}> is not closed")));
    }
    if !root_done {
        return Err(LabelError::msg("no <annotation> element: not a VOC file"));
    }
    if frame.frame.is_empty() {
        frame.frame.clone_from(&ctx.stem);
    }
    Ok(frame)
}

fn path_is(stack: &[String], path: &[&str]) -> bool {
    stack.len() == path.len() && stack.iter().zip(path).all(|(a, b)| a == b)
}

/// Handles the end of the innermost element of `stack`, whose text is `text`.
fn close_element(
    stack: &[String],
    text: &str,
    start: usize,
    frame: &mut FrameLabels,
    object: &mut Option<PendingObject>,
    at: &impl Fn(usize, String) -> LabelError,
) -> Result<(), LabelError> {
    if stack.len() > MAX_DEPTH {
        return Ok(());
    }
    let mut names = [""; MAX_DEPTH];
    for (slot, s) in names.iter_mut().zip(stack) {
        *slot = s.as_str();
    }
    let path = names.get(..stack.len()).unwrap_or_default();
    match path {
        ["annotation", "filename"] => frame.frame = text.to_owned(),
        ["annotation", "size", dim @ ("width" | "height" | "depth")] => {
            if text.is_empty() {
                return Ok(());
            }
            let v = parse_size(text).ok_or_else(|| {
                at(
                    start,
                    format!("<{dim}> is {}, not a size in pixels", quote(text)),
                )
            })?;
            match *dim {
                "width" => frame.width = Some(v),
                "height" => frame.height = Some(v),
                // 3 is the writer's default: keeping it would only add noise.
                _ if v == 3 => {}
                _ => {
                    frame
                        .attributes
                        .insert("depth".to_owned(), AttrValue::Int(i64::from(v)));
                }
            }
        }
        ["annotation", "object", rest @ ..] => {
            let Some(obj) = object.as_mut() else {
                return Ok(());
            };
            let n = obj.number;
            match rest {
                [] => {}
                ["name"] => obj.class = Some(text.to_owned()),
                ["pose"] if !text.is_empty() && !text.eq_ignore_ascii_case("Unspecified") => {
                    obj.attributes
                        .insert("pose".to_owned(), AttrValue::Str(text.to_owned()));
                }
                [flag @ ("truncated" | "difficult" | "occluded")] if !text.is_empty() => {
                    let v = parse_flag(text).ok_or_else(|| {
                        at(
                            start,
                            format!("object {n}: <{flag}> is {}, expected 0 or 1", quote(text)),
                        )
                    })?;
                    obj.attributes
                        .insert((*flag).to_owned(), AttrValue::Bool(v));
                }
                ["bndbox"] => obj.has_bndbox = true,
                ["bndbox", corner @ ("xmin" | "ymin" | "xmax" | "ymax")] => {
                    let v = text
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| {
                            at(
                                start,
                                format!("object {n}: <{corner}> is {}, not a number", quote(text)),
                            )
                        })?;
                    let i = match *corner {
                        "xmin" => 0,
                        "ymin" => 1,
                        "xmax" => 2,
                        _ => 3,
                    };
                    if let Some(slot) = obj.corners.get_mut(i) {
                        *slot = Some(v);
                    }
                }
                ["attributes", "attribute", "name"] => obj.attr_name = Some(text.to_owned()),
                ["attributes", "attribute", "value"] => obj.attr_value = Some(text.to_owned()),
                ["attributes", "attribute"] => {
                    let value = obj.attr_value.take();
                    let Some(key) = obj.attr_name.take().filter(|k| !k.is_empty()) else {
                        return Err(at(start, format!("object {n}: <attribute> has no <name>")));
                    };
                    obj.attributes
                        .insert(key, infer_value(value.as_deref().unwrap_or("")));
                }
                _ => {}
            }
            if rest.is_empty()
                && let Some(done) = object.take()
            {
                if frame.objects.len() >= super::MAX_OBJECTS_PER_FRAME {
                    let e = super::too_many_objects(0);
                    return Err(at(done.start, e.message));
                }
                frame.objects.push(finish_object(done, at)?);
            }
        }
        _ => {}
    }
    Ok(())
}

fn finish_object(
    obj: PendingObject,
    at: &impl Fn(usize, String) -> LabelError,
) -> Result<Object, LabelError> {
    let n = obj.number;
    let class = obj
        .class
        .filter(|c| !c.is_empty())
        .ok_or_else(|| at(obj.start, format!("object {n} has no <name>")))?;
    if !obj.has_bndbox {
        return Err(at(
            obj.start,
            format!("object {n} ({class}) has no <bndbox>"),
        ));
    }
    let mut corners = [0.0; 4];
    for ((slot, v), label) in corners
        .iter_mut()
        .zip(obj.corners)
        .zip(["xmin", "ymin", "xmax", "ymax"])
    {
        *slot = v.ok_or_else(|| {
            at(
                obj.start,
                format!("object {n} ({class}): <bndbox> has no <{label}>"),
            )
        })?;
    }
    let [x1, y1, x2, y2] = corners;
    let bbox = BBox::from_corners(x1, y1, x2, y2);
    // The writer rebuilds xmax as xmin + w, which must not overflow either.
    if !(bbox.w.is_finite()
        && bbox.h.is_finite()
        && (x1 + bbox.w).is_finite()
        && (y1 + bbox.h).is_finite())
    {
        return Err(at(
            obj.start,
            format!("object {n} ({class}): box corners overflow"),
        ));
    }
    let mut out = Object::new(class, Some(bbox));
    out.attributes = obj.attributes.into();
    Ok(out)
}

fn parse_size(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().or_else(|| {
        // Some exporters write sizes as floats ("500.0").
        let v = text.parse::<f64>().ok()?;
        (v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v)).then_some(v as u32)
    })
}

fn parse_flag(text: &str) -> Option<bool> {
    match text {
        "0" => Some(false),
        "1" => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        t if t.eq_ignore_ascii_case("true") => Some(true),
        _ => None,
    }
}

/// Types a text value the way it was most likely written.
fn infer_value(text: &str) -> AttrValue {
    if text.eq_ignore_ascii_case("true") {
        return AttrValue::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return AttrValue::Bool(false);
    }
    if let Ok(i) = text.parse::<i64>() {
        return AttrValue::Int(i);
    }
    // Rust also reads "inf" and "NaN" as floats; those stay text.
    let numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(f) if numeric && f.is_finite() => AttrValue::Float(f),
        _ => AttrValue::Str(text.to_owned()),
    }
}

/// Writes one frame as a Pascal VOC annotation (pixel boxes; normalized ones need the image size).
pub fn write(frame: &FrameLabels) -> Result<Vec<u8>, LabelError> {
    write_in(frame, None)
}

/// [`write`] with a `<folder>`: the directory, relative to the dataset root,
/// that holds the image `<filename>` names (what an export writes, so that
/// `<folder>/<filename>` finds the image).
pub fn write_in(frame: &FrameLabels, folder: Option<&str>) -> Result<Vec<u8>, LabelError> {
    let (sx, sy) = match frame.units {
        Units::Pixels => (1.0, 1.0),
        Units::Normalized => match (frame.width, frame.height) {
            (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
            _ => {
                return Err(LabelError::msg(
                    "VOC needs pixel boxes, and this frame's boxes are normalized with no image size",
                ));
            }
        },
    };
    let mut out = String::with_capacity(256 + frame.objects.len() * 256);
    out.push_str("<annotation>\n");
    if let Some(folder) = folder {
        let _ = writeln!(out, "  <folder>{}</folder>", text(folder)?);
    }
    let _ = writeln!(out, "  <filename>{}</filename>", text(&frame.frame)?);
    if frame.width.is_some() || frame.height.is_some() || frame.attributes.contains_key("depth") {
        out.push_str("  <size>\n");
        if let Some(w) = frame.width {
            let _ = writeln!(out, "    <width>{w}</width>");
        }
        if let Some(h) = frame.height {
            let _ = writeln!(out, "    <height>{h}</height>");
        }
        match frame.attributes.get("depth") {
            Some(AttrValue::Int(d)) => {
                let _ = writeln!(out, "    <depth>{d}</depth>");
            }
            _ => out.push_str("    <depth>3</depth>\n"),
        }
        out.push_str("  </size>\n");
    }
    for (i, obj) in frame.objects.iter().enumerate() {
        let fail =
            |what: &str| LabelError::msg(format!("object {} ({}): {what}", i + 1, obj.class));
        if obj.class.trim().is_empty() {
            return Err(fail("a VOC object needs a class name"));
        }
        let Some(b) = obj.bbox else {
            return Err(fail("has no box, which every VOC object needs"));
        };
        out.push_str("  <object>\n");
        let _ = writeln!(out, "    <name>{}</name>", text(&obj.class)?);
        let pose = match obj.attributes.get("pose") {
            Some(AttrValue::Str(p)) => p.as_str(),
            _ => "Unspecified",
        };
        let _ = writeln!(out, "    <pose>{}</pose>", text(pose)?);
        for flag in FLAGS {
            if let Some(AttrValue::Bool(v)) = obj.attributes.get(flag) {
                let _ = writeln!(out, "    <{flag}>{}</{flag}>", u8::from(*v));
            }
        }
        let corners = [
            ("xmin", b.x * sx),
            ("ymin", b.y * sy),
            ("xmax", (b.x + b.w) * sx),
            ("ymax", (b.y + b.h) * sy),
        ];
        if corners.iter().any(|(_, v)| !v.is_finite()) {
            return Err(fail("has a box corner that is not a finite number"));
        }
        out.push_str("    <bndbox>\n");
        for (tag, v) in corners {
            let _ = writeln!(out, "      <{tag}>{v}</{tag}>");
        }
        out.push_str("    </bndbox>\n");
        let extra: Vec<(&String, &AttrValue)> = obj
            .attributes
            .iter()
            .filter(|(k, v)| !is_element_attribute(k, v))
            .collect();
        if !extra.is_empty() {
            out.push_str("    <attributes>\n");
            for (k, v) in extra {
                let value = match v {
                    AttrValue::Float(f) if !f.is_finite() => {
                        return Err(fail(&format!(
                            "attribute '{k}' is {f}, not a finite number"
                        )));
                    }
                    // Debug keeps the ".0" that tells a float from an integer.
                    AttrValue::Float(f) => format!("{f:?}"),
                    other => other.to_string(),
                };
                let _ = write!(
                    out,
                    "      <attribute>\n        <name>{}</name>\n        <value>{}</value>\n      </attribute>\n",
                    text(k)?,
                    text(&value)?
                );
            }
            out.push_str("    </attributes>\n");
        }
        out.push_str("  </object>\n");
    }
    out.push_str("</annotation>\n");
    Ok(out.into_bytes())
}

/// Whether an attribute is written as its own VOC element rather than under `<attributes>`.
fn is_element_attribute(key: &str, value: &AttrValue) -> bool {
    match value {
        AttrValue::Bool(_) => FLAGS.contains(&key),
        AttrValue::Str(s) => key == "pose" && !s.trim().is_empty(),
        _ => false,
    }
}

/// Escapes text for an element, refusing characters XML 1.0 cannot hold.
fn text(s: &str) -> Result<std::borrow::Cow<'_, str>, LabelError> {
    if let Some(c) = s.chars().find(|c| {
        (*c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(LabelError::msg(format!(
            "{} contains the character U+{:04X}, which XML cannot hold",
            quote(s),
            u32::from(c)
        )));
    }
    Ok(escape(s))
}

/// Quotes a value for a message, shortened so a huge one cannot flood it.
fn quote(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("'{}...'", s.get(..cut).unwrap_or(s)),
        None => format!("'{s}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DATUMARO: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/voc_dataset/voc_dataset1/Annotations/2007_000001.xml"
    );
    const ROBOFLOW: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/roboflow_dataset/voc"
    );

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ctx(stem: &str) -> ParseContext {
        ParseContext {
            class_names: None,
            stem: stem.to_owned(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    fn assert_frames_close(a: &FrameLabels, b: &FrameLabels) {
        assert_eq!(
            (&a.frame, a.width, a.height, a.units),
            (&b.frame, b.width, b.height, b.units)
        );
        assert_eq!(a.attributes, b.attributes);
        assert_eq!(a.objects.len(), b.objects.len());
        for (x, y) in a.objects.iter().zip(&b.objects) {
            assert_eq!(x.class, y.class);
            let (p, q) = (x.bbox.expect("box"), y.bbox.expect("box"));
            assert!(
                close(p.x, q.x) && close(p.y, q.y) && close(p.w, q.w) && close(p.h, q.h),
                "{p:?} vs {q:?}"
            );
            assert_eq!(x.attributes, y.attributes);
        }
    }

    fn roundtrip(frame: &FrameLabels) {
        let bytes = write(frame).expect("write");
        let again = parse(&bytes, &ctx("unused")).expect("reparse");
        assert_frames_close(frame, &again);
    }

    #[test]
    fn datumaro_fixture_with_parts_and_actions() {
        let bytes = read(DATUMARO);
        assert!(sniff("Annotations/2007_000001.xml", &bytes));
        let f = parse(&bytes, &ctx("2007_000001")).expect("parse");
        assert_eq!(f.frame, "2007_000001.jpg");
        assert_eq!(
            (f.width, f.height, f.units),
            (Some(20), Some(10), Units::Pixels)
        );
        assert!(f.attributes.is_empty(), "depth 3 is the default");
        assert_eq!(f.objects.len(), 2);
        let cat = &f.objects[0];
        assert_eq!(cat.class, "cat");
        assert_eq!(cat.bbox, Some(BBox::from_corners(1.0, 2.0, 3.0, 4.0)));
        assert_eq!(
            cat.attributes.get("truncated"),
            Some(&AttrValue::Bool(true))
        );
        assert_eq!(
            cat.attributes.get("difficult"),
            Some(&AttrValue::Bool(false))
        );
        assert!(
            !cat.attributes.contains_key("pose"),
            "Unspecified is no pose"
        );
        // The part's <name> and <bndbox> must not leak into the person.
        let person = &f.objects[1];
        assert_eq!(person.class, "person");
        assert_eq!(person.bbox, Some(BBox::from_corners(4.0, 5.0, 6.0, 7.0)));
        assert!(person.attributes.is_empty());
        roundtrip(&f);
    }

    #[test]
    fn roboflow_fixtures() {
        let f = parse(&read(&format!("{ROBOFLOW}/train/train_002.xml")), &ctx("x")).expect("parse");
        assert_eq!(f.frame, "train_002.jpg");
        assert_eq!((f.width, f.height), (Some(10), Some(5)));
        assert_eq!(f.objects.len(), 1);
        let o = &f.objects[0];
        assert_eq!(o.class, "label_1");
        assert_eq!(o.bbox, Some(BBox::from_corners(0.0, 0.0, 2.0, 4.0)));
        assert_eq!(o.attributes.get("occluded"), Some(&AttrValue::Bool(false)));
        roundtrip(&f);
        let v = parse(&read(&format!("{ROBOFLOW}/val/val_001.xml")), &ctx("x")).expect("parse");
        assert_eq!(v.objects.len(), 2);
        assert_eq!(
            v.objects[1].bbox,
            Some(BBox::from_corners(0.0, 0.0, 9.0, 1.0))
        );
        roundtrip(&v);
        // xmax before ymin in the file: order of corners does not matter.
        let t = parse(&read(&format!("{ROBOFLOW}/train/train_001.xml")), &ctx("x")).expect("parse");
        assert_eq!(
            t.objects[0].bbox,
            Some(BBox::from_corners(2.0, 1.0, 5.0, 2.0))
        );
        roundtrip(&t);
    }

    #[test]
    fn empty_elements_float_coords_attributes_and_entities() {
        let xml = br#"<?xml version="1.0"?>
<!-- exported -->
<annotation>
  <size><height>375</height><width>500.0</width></size>
  <object>
    <name>R&amp;D &#x41;<![CDATA[<x>]]></name>
    <pose/>
    <truncated/>
    <difficult>1</difficult>
    <bndbox><xmin>91.5</xmin><ymin>107.25</ymin><xmax>240</xmax><ymax>330</ymax></bndbox>
    <attributes>
      <attribute><name>visibility</name><value>0.75</value></attribute>
      <attribute><name>track_id</name><value>12</value></attribute>
      <attribute><name>moving</name><value>True</value></attribute>
      <attribute><name>color</name><value>dark red</value></attribute>
      <attribute><name>note</name><value/></attribute>
    </attributes>
  </object>
</annotation>"#;
        let f = parse(xml, &ctx("2011_000006")).expect("parse");
        assert_eq!(f.frame, "2011_000006", "no <filename>: the stem");
        assert_eq!((f.width, f.height), (Some(500), Some(375)));
        let o = &f.objects[0];
        assert_eq!(o.class, "R&D A<x>");
        assert_eq!(o.bbox, Some(BBox::from_corners(91.5, 107.25, 240.0, 330.0)));
        let a = &o.attributes;
        assert_eq!(a.get("difficult"), Some(&AttrValue::Bool(true)));
        assert!(!a.contains_key("truncated") && !a.contains_key("pose"));
        assert_eq!(a.get("visibility"), Some(&AttrValue::Float(0.75)));
        assert_eq!(a.get("track_id"), Some(&AttrValue::Int(12)));
        assert_eq!(a.get("moving"), Some(&AttrValue::Bool(true)));
        assert_eq!(a.get("color"), Some(&AttrValue::Str("dark red".into())));
        assert_eq!(a.get("note"), Some(&AttrValue::Str(String::new())));
        roundtrip(&f);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse(
            b"<annotation>\n  <object>\n    <name>cat</name>\n  </objet>\n</annotation>",
            &ctx("a"),
        )
        .expect_err("mismatched tag");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.column.is_some());

        let e = parse(b"<annotation>\n  <filename>a.jpg</filename>\n  <object>\n    <name>cat</name>\n  </object>\n</annotation>", &ctx("a"))
            .expect_err("no bndbox");
        assert_eq!((e.line, e.column), (Some(3), Some(3)));
        assert!(e.message.contains("object 1 (cat) has no <bndbox>"), "{e}");

        let e = parse(b"<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>\n<object><name>a</name></object></annotation>", &ctx("a"))
            .expect_err("no name");
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("object 1 has no <name>"), "{e}");

        let e = parse(b"<annotation>\n<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object></annotation>", &ctx("a"))
            .expect_err("no ymax");
        assert!(e.message.contains("no <ymax>"), "{e}");
        assert_eq!(e.line, Some(2));

        let e = parse(b"<annotation>\n<object><name>a</name><bndbox>\n  <xmin>abc</xmin></bndbox></object></annotation>", &ctx("a"))
            .expect_err("bad number");
        assert_eq!((e.line, e.column), (Some(3), Some(3)));
        assert!(e.message.contains("<xmin> is 'abc'"), "{e}");

        let e = parse(b"<annotation>\n<object><name>a</name><difficult>maybe</difficult></object></annotation>", &ctx("a"))
            .expect_err("bad flag");
        assert_eq!(e.line, Some(2));

        let e = parse(b"<annotation>\n  <object>", &ctx("a")).expect_err("truncated file");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(parse(b"<annotations><image/></annotations>", &ctx("a")).is_err());
        assert!(parse(b"", &ctx("a")).is_err());
        assert!(parse(b"<annotation><name>&bogus;</name></annotation>", &ctx("a")).is_err());
        assert!(parse(b"<annotation></annotation><annotation/>", &ctx("a")).is_err());
        let e = parse(
            b"<annotation>\n<filename>\xff</filename></annotation>",
            &ctx("a"),
        )
        .expect_err("utf8");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn writer_refuses_what_voc_cannot_hold() {
        let mut f = FrameLabels::new("a.jpg", Units::Pixels);
        f.objects.push(Object::new("cat", None));
        assert!(write(&f).is_err());
        f.objects[0].bbox = Some(BBox::from_corners(0.1, 0.2, 0.3, 0.4));
        f.units = Units::Normalized;
        assert!(write(&f).is_err());
        f.width = Some(100);
        f.height = Some(10);
        let back = parse(&write(&f).expect("write"), &ctx("a")).expect("parse");
        let b = back.objects[0].bbox.expect("box");
        assert!(close(b.x, 10.0) && close(b.y, 2.0) && close(b.w, 20.0) && close(b.h, 2.0));
        f.objects[0].class = "a\u{1}b".into();
        assert!(write(&f).is_err());
    }

    #[test]
    fn sniffs_voc_but_not_cvat() {
        assert!(sniff(
            "a.xml",
            b"<?xml version=\"1.0\"?>\n<!-- c -->\n<annotation>\n"
        ));
        assert!(sniff("a.XML", b"\xEF\xBB\xBF<annotation verified=\"yes\">"));
        assert!(!sniff(
            "a.xml",
            b"<?xml version=\"1.0\"?><annotations><version>1.1</version>"
        ));
        assert!(!sniff("a.json", b"<annotation>"));
        assert!(!sniff("a.xml", b"<annot"));
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Starts with a letter so that it is not read back as a number or a boolean.
        "[a-zA-Z]([a-zA-Z0-9 _&<>\"'.é-]{0,10}[a-zA-Z0-9])?".prop_filter("not a bool", |s| {
            !s.eq_ignore_ascii_case("true") && !s.eq_ignore_ascii_case("false")
        })
    }

    fn arb_value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            (-1e12f64..1e12).prop_map(AttrValue::Float),
            arb_text().prop_map(AttrValue::Str),
        ]
    }

    fn arb_object() -> impl Strategy<Value = Object> {
        (
            arb_text(),
            (
                -100.0f64..2000.0,
                -100.0f64..2000.0,
                0.0f64..500.0,
                0.0f64..500.0,
            ),
            proptest::option::of(
                arb_text().prop_filter("pose", |p| !p.eq_ignore_ascii_case("unspecified")),
            ),
            proptest::collection::vec(proptest::option::of(any::<bool>()), 3),
            proptest::collection::btree_map("[a-z][a-z_]{0,8}", arb_value(), 0..4),
        )
            .prop_map(|(class, (x, y, w, h), pose, flags, extra)| {
                let mut o = Object::new(class, Some(BBox::from_corners(x, y, x + w, y + h)));
                for (k, v) in extra {
                    if !FLAGS.contains(&k.as_str()) && k != "pose" {
                        o.attributes.insert(k, v);
                    }
                }
                if let Some(p) = pose {
                    o.attributes.insert("pose".into(), AttrValue::Str(p));
                }
                for (flag, v) in FLAGS.iter().zip(flags) {
                    if let Some(v) = v {
                        o.attributes.insert((*flag).to_owned(), AttrValue::Bool(v));
                    }
                }
                o
            })
    }

    proptest! {
        #[test]
        fn proptest_roundtrip(
            name in arb_text(),
            size in proptest::option::of((1u32..10_000, 1u32..10_000, proptest::option::of(1i64..3))),
            objects in proptest::collection::vec(arb_object(), 0..6),
        ) {
            let mut f = FrameLabels::new(name, Units::Pixels);
            if let Some((w, h, d)) = size {
                f.width = Some(w);
                f.height = Some(h);
                if let Some(d) = d {
                    f.attributes.insert("depth".into(), AttrValue::Int(d));
                }
            }
            f.objects = objects;
            roundtrip(&f);
        }

        #[test]
        fn proptest_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut doc = b"<annotation><object><name>a</name><bndbox>".to_vec();
            doc.extend_from_slice(&bytes);
            for input in [&bytes[..], &doc[..]] {
                if let Ok(f) = parse(input, &ctx("a"))
                    && let Ok(out) = write(&f)
                {
                    prop_assert!(parse(&out, &ctx("a")).is_ok());
                }
                let _ = sniff("a.xml", input);
            }
        }
    }
}
