//! YOLO txt label files: one file per frame, one object per line.
//!
//! A line is `class cx cy w h`, all coordinates normalized to the image size.
//! The parity of the count of numbers after the class decides what follows:
//!
//! | numbers after class | meaning                                          |
//! |---------------------|--------------------------------------------------|
//! | 4                   | box `cx cy w h`                                  |
//! | 5                   | box plus confidence score (`save_conf`)          |
//! | even, 6 or more     | segmentation polygon `x1 y1 x2 y2 ...`           |
//! | odd, 7 or more      | polygon plus a trailing score (Ultralytics        |
//! |                     | segmentation predictions with `save_conf`)       |
//!
//! A polygon needs at least three points, so four numbers are always a box, and
//! an odd count can never be a bare polygon: that is how a 6-number line (class
//! plus five) is told apart from a polygon. The score becomes the attribute
//! `score` ([`AttrValue::Float`]); a polygon becomes [`Geometry::Polygon`] (in
//! normalized units, like the frame) and its bounding box the object's box.
//!
//! Pose files (box plus keypoints) are not read: their keypoint columns read
//! like a polygon, so a `data.yaml` with `kpt_shape` is an error
//! ([`parse_class_names`]) rather than a source of class names.
//!
//! Errors name the line and the column, where a column is a 1-based
//! whitespace-separated field (column 1 is the class), which is what a user
//! counts when reading a YOLO line.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{
    AttrValue, BBox, FrameLabels, Geometry, LabelError, MAX_OBJECTS_PER_FRAME, MAX_POLYGON_POINTS,
    Object, ParseContext, Units, too_many_objects,
};

mod format;
pub use format::YoloFormat;

/// Whether the path and first bytes look like a YOLO label file.
pub fn sniff(path: &str, head: &[u8]) -> bool {
    if !ends_with_ignore_case(path, ".txt") {
        return false;
    }
    let (text, may_be_cut) = head_text(head);
    let Some((line, cut)) = first_line(text, may_be_cut) else {
        return false;
    };
    let mut fields = line.split_ascii_whitespace();
    if fields
        .next()
        .and_then(|c| c.parse::<usize>().ok())
        .is_none()
    {
        return false;
    }
    let rest: Vec<&str> = fields.collect();
    if rest.len() < 4 {
        return false;
    }
    // The last field of a line the head cut short may be a number's prefix ("1e").
    let checked = if cut { rest.len() - 1 } else { rest.len() };
    rest.iter().take(checked).all(|f| parse_number(f).is_some())
}

/// Parses one frame's YOLO label file (frame name = `ctx.stem`).
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<FrameLabels, LabelError> {
    let text = utf8(bytes)?;
    let names = ctx.class_names.as_deref().map(Vec::as_slice);
    let mut frame = FrameLabels::new(ctx.stem.clone(), Units::Normalized);
    // One scratch buffer per file keeps the per-line cost free of allocations.
    let mut nums: Vec<f64> = Vec::with_capacity(8);
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut fields = raw.split_ascii_whitespace();
        let Some(class_tok) = fields.next() else {
            continue;
        };
        if frame.objects.len() >= MAX_OBJECTS_PER_FRAME {
            return Err(too_many_objects(line_no));
        }
        let Ok(index) = class_tok.parse::<usize>() else {
            return Err(field_error(
                line_no,
                1,
                format!(
                    "class is {}, not a class index (a whole number from 0)",
                    quote(class_tok)
                ),
            ));
        };
        let bad_number = |k: usize, tok: &str| {
            let count = raw.split_ascii_whitespace().count().saturating_sub(1);
            field_error(
                line_no,
                k + 2,
                format!(
                    "{} is {}, not a finite number",
                    value_name(k, count),
                    quote(tok)
                ),
            )
        };
        // A polygon line is read straight into its ring, sized by a count of
        // the fields first: collecting its numbers and then pairing them held
        // the polygon twice (and a buffer grown by doubling), which is what a
        // file of one huge line costs.
        let rest = fields.clone().take(7).count();
        if rest >= 6 {
            let count = fields.clone().count();
            let points = count / 2;
            if points > MAX_POLYGON_POINTS {
                return Err(LabelError::at_line(
                    line_no,
                    format!(
                        "a polygon of {points} points: dsv reads at most {MAX_POLYGON_POINTS} points per polygon"
                    ),
                ));
            }
            let mut ring: Vec<[f64; 2]> = Vec::with_capacity(points);
            let mut score = None;
            let mut k = 0;
            while let Some(tok) = fields.next() {
                let x = parse_number(tok).ok_or_else(|| bad_number(k, tok))?;
                match fields.next() {
                    Some(tok) => {
                        let y = parse_number(tok).ok_or_else(|| bad_number(k + 1, tok))?;
                        ring.push([x, y]);
                    }
                    None => score = Some(x),
                }
                k += 2;
            }
            let class = class_name(index, names, line_no)?;
            frame
                .objects
                .push(polygon_object(class, ring, score, line_no)?);
            continue;
        }
        nums.clear();
        for (k, tok) in fields.enumerate() {
            nums.push(parse_number(tok).ok_or_else(|| bad_number(k, tok))?);
        }
        let class = class_name(index, names, line_no)?;
        frame
            .objects
            .push(object_from_numbers(class, &nums, line_no)?);
    }
    Ok(frame)
}

/// The object of a polygon line: the ring, its bounding box, the score.
fn polygon_object(
    class: String,
    ring: Vec<[f64; 2]>,
    score: Option<f64>,
    line_no: usize,
) -> Result<Object, LabelError> {
    let mut obj = Object::new(class, bounding_box(&ring));
    if obj.bbox.is_none() {
        return Err(LabelError::at_line(line_no, "polygon extent overflows"));
    }
    obj.geometry = Some(Geometry::Polygon { rings: vec![ring] });
    if let Some(score) = score {
        obj.attributes
            .insert("score".to_owned(), AttrValue::Float(score));
    }
    Ok(obj)
}

/// One box line of a YOLO file as [`parse`] reads it: class index, box, score.
pub type PlainBox = (usize, BBox, Option<f64>);

/// The objects [`parse`] would build from a file whose lines are all boxes
/// (four numbers, or five with a score), read the same way but without
/// building them: `false` (with `out` unspecified) for anything else, a
/// polygon, a class past `names`, any error, which [`parse`] then handles.
pub fn plain_boxes(bytes: &[u8], names: Option<&[String]>, out: &mut Vec<PlainBox>) -> bool {
    out.clear();
    let Ok(text) = utf8(bytes) else {
        return false;
    };
    for raw in text.lines() {
        let mut fields = raw.split_ascii_whitespace();
        let Some(class_tok) = fields.next() else {
            continue;
        };
        let Ok(index) = class_tok.parse::<usize>() else {
            return false;
        };
        if names.is_some_and(|n| index >= n.len()) || out.len() >= MAX_OBJECTS_PER_FRAME {
            return false;
        }
        let mut nums = [0f64; 5];
        let mut n = 0;
        for tok in fields {
            match (nums.get_mut(n), parse_number(tok)) {
                (Some(slot), Some(v)) => *slot = v,
                _ => return false,
            }
            n += 1;
        }
        let [cx, cy, w, h, score] = nums;
        if n < 4 || w < 0.0 || h < 0.0 {
            return false;
        }
        let b = BBox::from_center(cx, cy, w, h);
        if !corners_finite(&b) {
            return false;
        }
        out.push((index, b, (n == 5).then_some(score)));
    }
    true
}

/// What [`parse`] would count in a file, found without building objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Objects (non-blank lines).
    pub objects: u64,
    /// Objects per class index, in order of first appearance.
    pub classes: Vec<(usize, u64)>,
    /// Objects with a confidence score.
    pub scored: u64,
}

/// Counts the objects of a YOLO file the way [`parse`] would, without building
/// them: no `String` per object and no float parsing of plain decimals. `None`
/// whenever this pass cannot vouch that [`parse`] accepts the file (an error, or
/// anything unusual: non-ASCII text, exponents, a sign on a box size, a class
/// index out of range of `names`); the caller then runs [`parse`], which gives
/// the exact error. So the counts, when given, are always those of [`parse`].
pub fn count(bytes: &[u8], names: Option<&[String]>) -> Option<Counts> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut c = Counts::default();
    // One pass over the bytes, splitting fields by hand: this runs for every
    // label file of a dataset, and iterator adaptors cost more than the checks.
    let mut i = 0;
    while i < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |p| i + p);
        let line = &bytes[i..end];
        i = end + 1;
        let mut pos = 0;
        let mut fields = 0usize;
        let mut index = 0usize;
        let mut signed_size = false;
        loop {
            while pos < line.len() && line[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos == line.len() {
                break;
            }
            let start = pos;
            while pos < line.len() && !line[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let f = &line[start..pos];
            if fields == 0 {
                index = plain_index(f)?;
            } else {
                if !plain_decimal(f) {
                    return None;
                }
                // The third and fourth numbers are w and h on a box line, which
                // must not be negative; on a polygon line they are coordinates.
                signed_size |= (fields == 3 || fields == 4) && f[0] == b'-';
            }
            fields += 1;
        }
        if fields == 0 {
            // A blank line (only ASCII whitespace), which `parse` skips too.
            continue;
        }
        if names.is_some_and(|n| index >= n.len()) {
            return None;
        }
        let n = fields - 1;
        if (signed_size && n <= 5) || n / 2 > MAX_POLYGON_POINTS {
            return None;
        }
        let scored = match n {
            4 => false,
            5 => true,
            n if n >= 6 => n % 2 == 1,
            _ => return None,
        };
        if c.objects >= MAX_OBJECTS_PER_FRAME as u64 {
            return None;
        }
        c.objects += 1;
        c.scored += u64::from(scored);
        match c.classes.iter_mut().find(|e| e.0 == index) {
            Some(e) => e.1 += 1,
            None => c.classes.push((index, 1)),
        }
    }
    Some(c)
}

/// A class index written as plain digits that fits a `usize` (what
/// `str::parse::<usize>` accepts, minus the rare `+` sign).
fn plain_index(f: &[u8]) -> Option<usize> {
    if f.is_empty() || f.len() > 18 || !f.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(f.iter().fold(0usize, |v, d| v * 10 + usize::from(d - b'0')))
}

/// `-?D+(.D+)?` with at most 15 digits before the point: a finite number whose
/// magnitude is below 1e15, so no box or polygon built from it can overflow.
fn plain_decimal(f: &[u8]) -> bool {
    let f = f.strip_prefix(b"-").unwrap_or(f);
    let int = f.iter().take_while(|b| b.is_ascii_digit()).count();
    if int == 0 || int > 15 {
        return false;
    }
    match f.get(int..) {
        Some([]) => true,
        Some([b'.', frac @ ..]) => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Writes one frame as YOLO lines; classes must be class indices written as numbers.
pub fn write(frame: &FrameLabels) -> Result<Vec<u8>, LabelError> {
    write_lines(frame, |class| {
        class.parse::<usize>().map_err(|_| {
            format!(
                "class {} is not a class index; write it with a names list (write_with_names)",
                quote(class)
            )
        })
    })
}

/// Writes one frame as YOLO lines, mapping class names to their index in `names`.
pub fn write_with_names(frame: &FrameLabels, names: &[String]) -> Result<Vec<u8>, LabelError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        // A name listed twice keeps its first index, as a YOLO reader would.
        index.entry(n.as_str()).or_insert(i);
    }
    write_lines(frame, |class| {
        index.get(class).copied().ok_or_else(|| {
            format!(
                "class {} is not in the names list ({} names)",
                quote(class),
                names.len()
            )
        })
    })
}

/// Reads class names from `data.yaml`/`*.yaml` or a one-name-per-line file (`obj.names`, `classes.txt`).
pub fn parse_class_names(file_name: &str, bytes: &[u8]) -> Result<Vec<String>, LabelError> {
    if ends_with_ignore_case(file_name, ".yaml") || ends_with_ignore_case(file_name, ".yml") {
        names_from_yaml(bytes)
    } else {
        names_from_lines(bytes)
    }
}

fn names_from_yaml(bytes: &[u8]) -> Result<Vec<String>, LabelError> {
    let doc: serde_norway::Value = serde_norway::from_slice(bytes).map_err(|e| {
        let message = format!("invalid YAML: {e}");
        match e.location() {
            Some(l) => LabelError {
                line: Some(l.line()),
                column: Some(l.column()),
                message,
            },
            None => LabelError::msg(message),
        }
    })?;
    // A pose line's keypoint columns read like a segment's polygon: refused
    // for the whole dataset rather than read as polygons.
    if doc.get("kpt_shape").is_some() {
        return Err(LabelError::msg(
            "'kpt_shape' says the labels are YOLO pose files (box plus keypoints), which dsv does not read yet: their keypoints would be read as a polygon",
        ));
    }
    let Some(names) = doc.get("names") else {
        return Err(LabelError::msg(
            "no 'names' key: cannot tell the class names",
        ));
    };
    match names {
        serde_norway::Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                scalar_text(v).ok_or_else(|| {
                    LabelError::msg(format!("names[{i}] is not a plain name (text or number)"))
                })
            })
            .collect(),
        serde_norway::Value::Mapping(map) => {
            let mut slots: Vec<Option<String>> = vec![None; map.len()];
            for (k, v) in map {
                let index = k
                    .as_u64()
                    .or_else(|| k.as_str().and_then(|s| s.trim().parse::<u64>().ok()))
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| {
                        LabelError::msg(format!(
                            "names key {} is not a class index",
                            quote(&scalar_text(k).unwrap_or_default())
                        ))
                    })?;
                let Some(slot) = slots.get_mut(index) else {
                    return Err(LabelError::msg(format!(
                        "names has {} entries but a key {index}: indices must be 0 to {}",
                        map.len(),
                        map.len().saturating_sub(1)
                    )));
                };
                let name = scalar_text(v).ok_or_else(|| {
                    LabelError::msg(format!(
                        "names[{index}] is not a plain name (text or number)"
                    ))
                })?;
                *slot = Some(name);
            }
            slots
                .into_iter()
                .enumerate()
                .map(|(i, s)| s.ok_or_else(|| LabelError::msg(format!("names has no entry {i}"))))
                .collect()
        }
        _ => Err(LabelError::msg(
            "'names' is neither a list nor a map of index to name",
        )),
    }
}

fn scalar_text(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn names_from_lines(bytes: &[u8]) -> Result<Vec<String>, LabelError> {
    let text = utf8(bytes)?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    while names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    // An empty line in the middle would shift every later class by one.
    if let Some(i) = names.iter().position(|n| n.is_empty()) {
        return Err(LabelError::at_line(
            i + 1,
            "empty class name: every line up to the last name must hold one",
        ));
    }
    Ok(names)
}

fn class_name(
    index: usize,
    names: Option<&[String]>,
    line_no: usize,
) -> Result<String, LabelError> {
    match names {
        None => Ok(index.to_string()),
        Some(names) => names.get(index).cloned().ok_or_else(|| {
            field_error(
                line_no,
                1,
                format!(
                    "class index {index} is out of range: the names list has {} names",
                    names.len()
                ),
            )
        }),
    }
}

/// Whether a box from a centre and size has finite corners, and a centre the
/// writer (which rebuilds it as x + w / 2) can compute without overflow.
fn corners_finite(b: &BBox) -> bool {
    b.x.is_finite()
        && b.y.is_finite()
        && (b.x + b.w / 2.0).is_finite()
        && (b.y + b.h / 2.0).is_finite()
}

fn object_from_numbers(class: String, nums: &[f64], line_no: usize) -> Result<Object, LabelError> {
    let n = nums.len();
    let mut obj = Object::new(class, None);
    match nums {
        [cx, cy, w, h, rest @ ..] if n <= 5 => {
            for (k, v) in [(2, *w), (3, *h)] {
                if v < 0.0 {
                    return Err(field_error(
                        line_no,
                        k + 2,
                        format!("{} is {v}, a box size cannot be negative", value_name(k, n)),
                    ));
                }
            }
            let b = BBox::from_center(*cx, *cy, *w, *h);
            if !corners_finite(&b) {
                return Err(LabelError::at_line(line_no, "box corners overflow"));
            }
            obj.bbox = Some(b);
            if let [score] = rest {
                obj.attributes
                    .insert("score".to_owned(), AttrValue::Float(*score));
            }
        }
        _ => {
            return Err(field_error(
                line_no,
                n + 2,
                format!(
                    "{} is missing: a YOLO line is `class cx cy w h`",
                    value_name(n, n)
                ),
            ));
        }
    }
    Ok(obj)
}

fn bounding_box(points: &[[f64; 2]]) -> Option<BBox> {
    let mut it = points.iter();
    let [x0, y0] = *it.next()?;
    let (mut x1, mut y1, mut x2, mut y2) = (x0, y0, x0, y0);
    for [x, y] in it {
        x1 = x1.min(*x);
        y1 = y1.min(*y);
        x2 = x2.max(*x);
        y2 = y2.max(*y);
    }
    let b = BBox::from_corners(x1, y1, x2, y2);
    (b.w.is_finite() && b.h.is_finite()).then_some(b)
}

/// The name of the `k`-th number after the class on a line with `count` of them.
fn value_name(k: usize, count: usize) -> String {
    const BOX: [&str; 5] = ["cx", "cy", "w", "h", "score"];
    if count >= 6 {
        if count % 2 == 1 && k + 1 == count {
            return "score".to_owned();
        }
        let axis = if k.is_multiple_of(2) { 'x' } else { 'y' };
        return format!("{axis}{}", k / 2 + 1);
    }
    BOX.get(k)
        .map_or_else(|| "value".to_owned(), |s| (*s).to_owned())
}

fn write_lines(
    frame: &FrameLabels,
    class_index: impl Fn(&str) -> Result<usize, String>,
) -> Result<Vec<u8>, LabelError> {
    let (sx, sy) = to_normalized_scale(frame)?;
    let mut out = String::with_capacity(frame.objects.len() * 48);
    for (i, obj) in frame.objects.iter().enumerate() {
        let describe = |what: &str| {
            LabelError::msg(format!("object {} ({}): {what}", i + 1, quote(&obj.class)))
        };
        let index = class_index(&obj.class).map_err(|m| describe(&m))?;
        let _ = write!(out, "{index}");
        let polygon = match &obj.geometry {
            // YOLO holds one polygon per line; several rings fall back to the box.
            Some(Geometry::Polygon { rings }) => match rings.as_slice() {
                [ring] if ring.len() >= 3 => Some(ring),
                _ => None,
            },
            _ => None,
        };
        let mut values: Vec<f64> = match (polygon, &obj.bbox) {
            (Some(ring), _) => ring.iter().flat_map(|[x, y]| [x * sx, y * sy]).collect(),
            (None, Some(b)) => {
                if b.w < 0.0 || b.h < 0.0 {
                    return Err(describe("has a box of negative size"));
                }
                vec![
                    (b.x + b.w / 2.0) * sx,
                    (b.y + b.h / 2.0) * sy,
                    b.w * sx,
                    b.h * sy,
                ]
            }
            (None, None) => return Err(describe("has neither a box nor a polygon")),
        };
        match obj.attributes.get("score") {
            Some(AttrValue::Float(s)) => values.push(*s),
            Some(AttrValue::Int(s)) => values.push(*s as f64),
            _ => {}
        }
        // Written "NaN" or "inf" would make a file no YOLO reader, this one included, accepts.
        if values.iter().any(|v| !v.is_finite()) {
            return Err(describe("has a value that is not a finite number"));
        }
        for v in values {
            push_number(&mut out, v);
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

fn to_normalized_scale(frame: &FrameLabels) -> Result<(f64, f64), LabelError> {
    match frame.units {
        Units::Normalized => Ok((1.0, 1.0)),
        Units::Pixels => match (frame.width, frame.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => Ok((1.0 / f64::from(w), 1.0 / f64::from(h))),
            _ => Err(LabelError::msg(format!(
                "frame {}: YOLO needs normalized boxes, and the image size is unknown",
                quote(&frame.frame)
            ))),
        },
    }
}

/// Appends ` value` with six decimals, trailing zeros trimmed (error at most 5e-7).
fn push_number(out: &mut String, v: f64) {
    out.push(' ');
    let start = out.len();
    let _ = write!(out, "{v:.6}");
    if out.get(start..).is_some_and(|s| s.contains('.')) {
        let trimmed = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(trimmed);
    }
    if out.get(start..) == Some("-0") {
        out.truncate(start);
        out.push('0');
    }
}

fn parse_number(tok: &str) -> Option<f64> {
    if let Some(v) = short_decimal(tok) {
        return Some(v);
    }
    tok.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Powers of ten exact in an f64.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `[-]digits[.digits]` with at most 15 digits, the form nearly every YOLO
/// number takes, read without the general parser (a fifth of parsing a
/// million label files). The digits as an integer and the power of ten are
/// both exact in an f64, so the one division is correctly rounded: the same
/// value `str::parse` gives. Anything else is `None`, left to `str::parse`.
fn short_decimal(tok: &str) -> Option<f64> {
    let b = tok.as_bytes();
    let (neg, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let mut mant: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 15 {
                    return None;
                }
                mant = mant * 10 + u64::from(c - b'0');
                if let Some(f) = frac.as_mut() {
                    *f += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let v = mant as f64 / POW10.get(frac.unwrap_or(0))?;
    Some(if neg { -v } else { v })
}

fn field_error(line: usize, column: usize, message: String) -> LabelError {
    LabelError {
        line: Some(line),
        column: Some(column),
        message,
    }
}

/// Quotes a field for a message, shortened so a huge token cannot flood it.
fn quote(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("'{}...'", s.get(..cut).unwrap_or(s)),
        None => format!("'{s}'"),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, LabelError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map_err(|e| LabelError::at_offset(bytes, e.valid_up_to(), "not UTF-8 text"))
}

fn ends_with_ignore_case(path: &str, suffix: &str) -> bool {
    path.len() >= suffix.len()
        && path
            .as_bytes()
            .get(path.len() - suffix.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix.as_bytes()))
}

/// The head as text, and whether it may have been cut mid-line.
fn head_text(head: &[u8]) -> (&str, bool) {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match std::str::from_utf8(head) {
        Ok(t) => (t, true),
        // A multi-byte character cut by the head's end is fine; anything else is not text.
        Err(e) if e.error_len().is_none() => (
            head.get(..e.valid_up_to())
                .and_then(|h| std::str::from_utf8(h).ok())
                .unwrap_or(""),
            true,
        ),
        Err(_) => ("", false),
    }
}

/// The first non-blank line, and whether it runs into the (possibly cut) end of the head.
fn first_line(text: &str, may_be_cut: bool) -> Option<(&str, bool)> {
    let mut rest = text;
    loop {
        let (line, next, ended) = match rest.find('\n') {
            Some(p) => (rest.get(..p)?, rest.get(p + 1..)?, true),
            None => (rest, "", false),
        };
        if !line.trim().is_empty() {
            return Some((line, !ended && may_be_cut));
        }
        if !ended {
            return None;
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STRICT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/yolo_dataset/strict"
    );
    const ROBOFLOW: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/roboflow_dataset/yolo"
    );
    const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ctx(stem: &str, names: Option<Vec<String>>) -> ParseContext {
        ParseContext {
            class_names: names.map(std::sync::Arc::new),
            stem: stem.to_owned(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 + 1e-12
    }

    fn assert_frames_close(a: &FrameLabels, b: &FrameLabels) {
        assert_eq!(a.frame, b.frame);
        assert_eq!(a.units, b.units);
        assert_eq!(a.objects.len(), b.objects.len(), "{a:?}\n{b:?}");
        for (x, y) in a.objects.iter().zip(&b.objects) {
            assert_eq!(x.class, y.class);
            let (bx, by) = (x.bbox.expect("box"), y.bbox.expect("box"));
            for (u, v) in [(bx.x, by.x), (bx.y, by.y), (bx.w, by.w), (bx.h, by.h)] {
                assert!(close(u, v), "{bx:?} vs {by:?}");
            }
            assert_eq!(x.attributes.len(), y.attributes.len());
            for (k, v) in &x.attributes {
                match (v, y.attributes.get(k)) {
                    (AttrValue::Float(p), Some(AttrValue::Float(q))) => assert!(close(*p, *q)),
                    (p, q) => assert_eq!(Some(p), q),
                }
            }
            match (&x.geometry, &y.geometry) {
                (Some(Geometry::Polygon { rings: r1 }), Some(Geometry::Polygon { rings: r2 })) => {
                    assert_eq!(r1.len(), r2.len());
                    for (p, q) in r1.iter().flatten().zip(r2.iter().flatten()) {
                        assert!(close(p[0], q[0]) && close(p[1], q[1]));
                    }
                }
                (g1, g2) => assert_eq!(g1, g2),
            }
        }
    }

    fn roundtrip(frame: &FrameLabels, names: Option<&[String]>) {
        let bytes = match names {
            Some(n) => write_with_names(frame, n),
            None => write(frame),
        }
        .expect("write");
        let again =
            parse(&bytes, &ctx(&frame.frame, names.map(<[String]>::to_vec))).expect("reparse");
        assert_frames_close(frame, &again);
    }

    #[test]
    fn strict_fixture_with_obj_names() {
        let names =
            parse_class_names("obj.names", &read(&format!("{STRICT}/obj.names"))).expect("names");
        assert_eq!(names.len(), 10);
        assert_eq!(names[4], "label_4");
        let f = parse(
            &read(&format!("{STRICT}/obj_train_data/1.txt")),
            &ctx("1", Some(names.clone())),
        )
        .expect("parse");
        assert_eq!(f.frame, "1");
        assert_eq!(f.units, Units::Normalized);
        assert_eq!(f.objects.len(), 2);
        assert_eq!(f.objects[0].class, "label_2");
        assert_eq!(f.objects[1].class, "label_4");
        let b = f.objects[0].bbox.expect("box");
        assert!(
            close(b.x, 0.133333 - 0.266667 / 2.0)
                && close(b.w, 0.266667)
                && close(b.y, 0.2)
                && close(b.h, 0.2)
        );
        roundtrip(&f, Some(&names));
    }

    #[test]
    fn roboflow_fixture_with_data_yaml() {
        let names =
            parse_class_names("data.yaml", &read(&format!("{ROBOFLOW}/data.yaml"))).expect("names");
        assert_eq!(names, ["label_0", "label_1"]);
        let val = parse(
            &read(&format!("{ROBOFLOW}/val/labels/val_001.txt")),
            &ctx("val_001", Some(names.clone())),
        )
        .expect("parse");
        assert_eq!(val.objects.len(), 2);
        assert_eq!(val.objects[1].class, "label_1");
        let b = val.objects[1].bbox.expect("box");
        assert!(close(b.x, 0.0) && close(b.y, 0.0) && close(b.w, 0.9) && close(b.h, 0.2));
        roundtrip(&val, Some(&names));
        // No trailing newline in these files.
        for file in ["train/labels/train_001.txt", "train/labels/train_002.txt"] {
            let f = parse(
                &read(&format!("{ROBOFLOW}/{file}")),
                &ctx("t", Some(names.clone())),
            )
            .expect("parse");
            assert_eq!(f.objects.len(), 1);
            roundtrip(&f, Some(&names));
        }
    }

    #[test]
    fn demo_fixture_all_frames() {
        let names =
            parse_class_names("data.yaml", &read(&format!("{DEMO}/data.yaml"))).expect("names");
        assert_eq!(names.len(), 12);
        assert_eq!(names[11], "person");
        let f4 = parse(
            &read(&format!("{DEMO}/labels/frame_004.txt")),
            &ctx("frame_004", Some(names.clone())),
        )
        .expect("parse");
        assert_eq!(
            f4.objects
                .iter()
                .map(|o| o.class.as_str())
                .collect::<Vec<_>>(),
            ["cat", "person"]
        );
        let empty = parse(
            &read(&format!("{DEMO}/labels/frame_005.txt")),
            &ctx("frame_005", Some(names.clone())),
        )
        .expect("parse");
        assert!(empty.objects.is_empty());
        for i in 0..6 {
            let stem = format!("frame_{i:03}");
            let bytes = read(&format!("{DEMO}/labels/{stem}.txt"));
            let numeric = parse(&bytes, &ctx(&stem, None)).expect("parse");
            roundtrip(&numeric, None);
            let named = parse(&bytes, &ctx(&stem, Some(names.clone()))).expect("parse");
            roundtrip(&named, Some(&names));
            assert!(sniff(&format!("labels/{stem}.txt"), &bytes) || bytes.is_empty());
        }
    }

    #[test]
    fn numeric_classes_without_names() {
        let f = parse(b"7 0.5 0.5 0.2 0.2\n", &ctx("a", None)).expect("parse");
        assert_eq!(f.objects[0].class, "7");
    }

    #[test]
    fn score_and_polygon_lines() {
        let f = parse(
            b"0 0.5 0.5 0.2 0.4 0.87\n1 0.1 0.1 0.5 0.1 0.3 0.6\n2 0.1 0.1 0.5 0.1 0.3 0.6 0.9\n",
            &ctx("a", None),
        )
        .expect("parse");
        assert_eq!(
            f.objects[0].attributes.get("score"),
            Some(&AttrValue::Float(0.87))
        );
        assert!(f.objects[0].geometry.is_none());
        let Some(Geometry::Polygon { rings }) = &f.objects[1].geometry else {
            panic!("polygon expected");
        };
        assert_eq!(rings[0], vec![[0.1, 0.1], [0.5, 0.1], [0.3, 0.6]]);
        let b = f.objects[1].bbox.expect("box");
        assert!(close(b.x, 0.1) && close(b.w, 0.4) && close(b.y, 0.1) && close(b.h, 0.5));
        assert!(f.objects[1].attributes.is_empty());
        assert_eq!(
            f.objects[2].attributes.get("score"),
            Some(&AttrValue::Float(0.9))
        );
        roundtrip(&f, None);
    }

    #[test]
    fn blank_lines_crlf_and_trailing_spaces_are_fine() {
        let f = parse(
            b"\r\n0 0.5 0.5 0.2 0.2  \r\n\n  \n1\t0.5 0.5 0.2 0.2\t\n\n",
            &ctx("a", None),
        )
        .expect("parse");
        assert_eq!(f.objects.len(), 2);
    }

    #[test]
    fn malformed_lines_name_line_and_column() {
        let e =
            parse(b"0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n", &ctx("a", None)).expect_err("4 numbers");
        assert_eq!((e.line, e.column), (Some(2), Some(5)));
        assert!(e.message.contains("h is missing"), "{e}");

        let e = parse(b"0 0.5 abc 0.2 0.2\n", &ctx("a", None)).expect_err("not a number");
        assert_eq!((e.line, e.column), (Some(1), Some(3)));
        assert!(e.message.contains("cy is 'abc'"), "{e}");

        let e = parse(b"cat 0.5 0.5 0.2 0.2\n", &ctx("a", None)).expect_err("class");
        assert_eq!((e.line, e.column), (Some(1), Some(1)));

        let e = parse(
            b"0 0.5 0.5 0.2 0.2\n\n2 0.5 0.5 0.2 0.2\n",
            &ctx("a", Some(vec!["a".into(), "b".into()])),
        )
        .expect_err("range");
        assert_eq!((e.line, e.column), (Some(3), Some(1)));
        assert!(e.message.contains("class index 2 is out of range"), "{e}");

        let e = parse(b"0 0.5 0.5 -0.2 0.2\n", &ctx("a", None)).expect_err("negative");
        assert_eq!(e.column, Some(4));

        let e = parse(b"0 0.5 0.5 0.2 nan\n", &ctx("a", None)).expect_err("nan");
        assert_eq!(e.column, Some(5));

        let e = parse(b"0 0.5 0.5 0.2 0.2\n\xff\n", &ctx("a", None)).expect_err("utf8");
        assert_eq!(e.line, Some(2));

        let e = parse(b"0 1 2 3 4 5 6 7 x\n", &ctx("a", None)).expect_err("polygon value");
        assert_eq!(e.column, Some(9));
        assert!(e.message.starts_with("y4 is 'x'"), "{e}");

        let e = parse(b"0 1 2 3 4 5 6 x\n", &ctx("a", None)).expect_err("polygon score");
        assert_eq!(e.column, Some(8));
        assert!(e.message.starts_with("score is 'x'"), "{e}");
    }

    #[test]
    fn class_names_files() {
        assert_eq!(
            parse_class_names("classes.txt", b"cat\r\ntraffic light\n\n\n").expect("names"),
            ["cat", "traffic light"]
        );
        assert!(parse_class_names("classes.txt", b"cat\n\ndog\n").is_err());
        let map = parse_class_names("data.yaml", b"names:\n  1: dog\n  0: cat\n").expect("map");
        assert_eq!(map, ["cat", "dog"]);
        assert!(parse_class_names("data.yaml", b"names:\n  0: cat\n  2: dog\n").is_err());
        assert!(parse_class_names("data.yaml", b"nc: 2\n").is_err());
        let e = parse_class_names("data.yaml", b"names: [a, b\n").expect_err("yaml");
        assert!(e.line.is_some());
    }

    #[test]
    fn writers_refuse_what_yolo_cannot_hold() {
        let mut f = FrameLabels::new("a", Units::Normalized);
        f.objects.push(Object::new(
            "cat",
            Some(BBox::from_center(0.5, 0.5, 0.1, 0.1)),
        ));
        assert!(write(&f).is_err());
        assert!(write_with_names(&f, &["dog".to_owned()]).is_err());
        assert_eq!(
            write_with_names(&f, &["dog".to_owned(), "cat".to_owned()]).expect("write"),
            b"1 0.5 0.5 0.1 0.1\n"
        );
        f.units = Units::Pixels;
        assert!(write_with_names(&f, &["cat".to_owned()]).is_err());
        f.width = Some(10);
        f.height = Some(20);
        f.objects[0].bbox = Some(BBox::from_corners(1.0, 2.0, 3.0, 6.0));
        assert_eq!(
            write_with_names(&f, &["cat".to_owned()]).expect("write"),
            b"0 0.2 0.2 0.2 0.2\n"
        );
    }

    #[test]
    fn sniffs_yolo_but_not_kitti_or_names() {
        assert!(sniff("x/1.txt", b"2 0.133333 0.300000 0.266667 0.200000\n"));
        assert!(sniff("x/1.TXT", b"0 0.35 0.3 0.3 0.2"));
        assert!(sniff("x/1.txt", b"0 0.35 0.3 0.3 0.2 0.1 0.4 0.4 1e"));
        assert!(!sniff("x/1.xml", b"0 0.35 0.3 0.3 0.2\n"));
        assert!(!sniff(
            "x/1.txt",
            b"Car 0.00 0 -1.57 600 150 630 190 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
        ));
        assert!(!sniff("classes.txt", b"cat\ndog\n"));
        assert!(!sniff("x/1.txt", b""));
    }

    fn arb_frame() -> impl Strategy<Value = (FrameLabels, usize)> {
        let coord = || 0.0f64..1.0;
        let score = proptest::option::of(0.0f64..1.0);
        let object = (
            0usize..20,
            prop_oneof![
                (coord(), coord(), coord(), coord())
                    .prop_map(|(cx, cy, w, h)| (Some(BBox::from_center(cx, cy, w, h)), None)),
                proptest::collection::vec((coord(), coord()), 3..12).prop_map(|pts| {
                    let ring: Vec<[f64; 2]> = pts.into_iter().map(|(x, y)| [x, y]).collect();
                    (
                        bounding_box(&ring),
                        Some(Geometry::Polygon { rings: vec![ring] }),
                    )
                }),
            ],
            score,
        )
            .prop_map(|(class, (bbox, geometry), score)| {
                let mut o = Object::new(class.to_string(), bbox);
                o.geometry = geometry;
                if let Some(s) = score {
                    o.attributes.insert("score".into(), AttrValue::Float(s));
                }
                o
            });
        ("[a-z0-9_]{1,12}", proptest::collection::vec(object, 0..8)).prop_map(|(stem, objects)| {
            let mut f = FrameLabels::new(stem, Units::Normalized);
            f.objects = objects;
            (f, 20)
        })
    }

    proptest! {
        #[test]
        fn proptest_roundtrip((frame, n) in arb_frame()) {
            roundtrip(&frame, None);
            let names: Vec<String> = (0..n).map(|i| format!("class {i}")).collect();
            let mut named = frame.clone();
            for o in &mut named.objects {
                o.class = format!("class {}", o.class);
            }
            roundtrip(&named, Some(&names));
        }

        #[test]
        fn proptest_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes, &ctx("a", Some(vec!["a".into()])));
            let _ = parse_class_names("data.yaml", &bytes);
            let _ = parse_class_names("obj.names", &bytes);
            let _ = sniff("a.txt", &bytes);
        }
    }

    #[test]
    fn short_decimals_read_as_the_general_parser_reads_them() {
        for t in [
            "0",
            "-0",
            "1.",
            ".5",
            "-.5",
            "0.512345",
            "123456789012345",
            "0.00000000000001",
            "999999999999999",
            "1.000000000000000",
            "-",
            ".",
            "",
            "+1",
            "1e5",
            "1..2",
            "0x1",
            "1234567890123456",
            "0.1",
            "0.2",
            "0.3",
            "-7.25",
        ] {
            let general = t.parse::<f64>().ok().filter(|v| v.is_finite());
            assert_eq!(
                parse_number(t).map(f64::to_bits),
                general.map(f64::to_bits),
                "{t}"
            );
            if let Some(v) = short_decimal(t) {
                assert_eq!(Some(v.to_bits()), general.map(f64::to_bits), "{t}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_short_decimal_reads_as_the_general_parser_reads_it(t in "-?[0-9]{0,9}(\\.[0-9]{0,9})?") {
            let general = t.parse::<f64>().ok().filter(|v| v.is_finite());
            proptest::prop_assert_eq!(parse_number(&t).map(f64::to_bits), general.map(f64::to_bits));
            if let Some(v) = short_decimal(&t) {
                proptest::prop_assert_eq!(Some(v.to_bits()), general.map(f64::to_bits));
            }
        }
    }
}
