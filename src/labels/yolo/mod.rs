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
//! Pose files (Ultralytics: `class cx cy w h x1 y1 [v1] x2 y2 [v2] ...`) are
//! read when the names file says their shape, `kpt_shape: [K, 2|3]`
//! ([`super::ClassNames::kpt_shape`]): every line is then a box and K keypoints,
//! an object with [`Geometry::Keypoints`] (as COCO keypoints), and a line
//! with another count of numbers is an error at its line. Without
//! `kpt_shape` the keypoint columns would read like a polygon, so a line
//! shaped like a pose line with visibilities is an error at its line
//! ([`pose_keypoints`]).
//!
//! Errors name the line and the column, where a column is a 1-based
//! whitespace-separated field (column 1 is the class), which is what a user
//! counts when reading a YOLO line.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::names::{KptShape, ends_with_ignore_case, quote, utf8};
use super::{
    AttrValue, BBox, Counts, FrameLabels, Geometry, Keypoints, LabelError, MAX_OBJECTS_PER_FRAME,
    MAX_POLYGON_POINTS, Object, ParseContext, PlainBox, Units, too_many_objects,
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
    rest.iter()
        .take(checked)
        .all(|f| number(f.as_bytes()).is_some())
}

/// The numbers after the class on a pose line: the box, then K × D.
fn line_values(shape: KptShape) -> usize {
    4 + shape.points * shape.dims
}

/// Parses one frame's YOLO label file (frame name = `ctx.stem`).
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<FrameLabels, LabelError> {
    let names = ctx.class_names.as_deref().map(|n| n.names.as_slice());
    let kpt = ctx.class_names.as_deref().and_then(|n| n.kpt_shape);
    let mut model = Model {
        names,
        frame: FrameLabels::new(ctx.stem.clone(), Units::Normalized),
    };
    read(bytes, names, kpt, &mut model)?;
    Ok(model.frame)
}

/// The objects [`parse`] builds from a file whose lines are all boxes (four
/// numbers, or five with a score), without building them: `true` exactly
/// when [`parse`] accepts the file and it holds no polygon (`out` is then
/// the boxes in file order), `false` (with `out` unspecified) otherwise.
/// `names` is a list without `kpt_shape`: a pose dataset's files are parsed.
pub fn plain_boxes(bytes: &[u8], names: Option<&[String]>, out: &mut Vec<PlainBox>) -> bool {
    out.clear();
    matches!(read(bytes, names, None, &mut Boxes(out)), Ok(true))
}

/// The counts of the objects [`parse`] would build, without building them
/// (no `String` per object): `None` exactly when [`parse`] refuses the file,
/// which the caller then runs for the error. `names` is a list without
/// `kpt_shape`: a pose dataset's files are parsed.
pub fn count(bytes: &[u8], names: Option<&[String]>) -> Option<Counts> {
    let mut counter = Counter(Counts::default());
    read(bytes, names, None, &mut counter).ok()?;
    Some(counter.0)
}

/// One object line [`read`] accepted.
struct Line {
    /// The class index (inside the names list, when there is one).
    class: usize,
    /// The box: from the centre and size, or the bounds of the polygon.
    bbox: BBox,
    /// The confidence score, when the line has one.
    score: Option<f64>,
    /// The polygon's points, for a polygon line when the sink keeps them.
    ring: Option<Vec<[f64; 2]>>,
    /// The keypoints (x, y, visibility) of a pose line, when the sink keeps them.
    keypoints: Option<Vec<[f64; 3]>>,
}

/// What a sink wants of a polygon line.
#[derive(PartialEq, Eq)]
enum Polygons {
    /// Its points, as a ring.
    Ring,
    /// Its box and score only (the points are read and checked all the same).
    Bounds,
    /// Nothing: the reading stops there and answers `false`.
    Decline,
}

/// What a reading of a YOLO file does with each object line. Every decision
/// to accept or refuse a line is [`read`]'s, so that [`parse`], [`count`]
/// and [`plain_boxes`] cannot disagree on a file; a sink only keeps.
trait Sink {
    /// What it wants of a polygon line.
    const POLYGONS: Polygons;
    /// An accepted object line.
    fn object(&mut self, line: Line);
}

/// Builds the frame ([`parse`]).
struct Model<'n> {
    names: Option<&'n [String]>,
    frame: FrameLabels,
}

impl Sink for Model<'_> {
    const POLYGONS: Polygons = Polygons::Ring;

    fn object(&mut self, line: Line) {
        // `read` checked the index against the names.
        let class = match self.names.and_then(|n| n.get(line.class)) {
            Some(name) => name.clone(),
            None => line.class.to_string(),
        };
        let mut obj = Object::new(class, Some(line.bbox));
        if let Some(ring) = line.ring {
            obj.geometry = Some(Geometry::Polygon { rings: vec![ring] });
        }
        if let Some(points) = line.keypoints {
            obj.geometry = Some(Geometry::Keypoints(Box::new(Keypoints {
                points,
                outline: None,
                labels: None,
            })));
        }
        if let Some(score) = line.score {
            obj.attributes
                .insert("score".to_owned(), AttrValue::Float(score));
        }
        self.frame.objects.push(obj);
    }
}

/// Collects plain boxes ([`plain_boxes`]).
struct Boxes<'o>(&'o mut Vec<PlainBox>);

impl Sink for Boxes<'_> {
    const POLYGONS: Polygons = Polygons::Decline;

    fn object(&mut self, line: Line) {
        self.0.push((line.class, line.bbox, line.score));
    }
}

/// Counts ([`count`]).
struct Counter(Counts);

impl Sink for Counter {
    const POLYGONS: Polygons = Polygons::Bounds;

    fn object(&mut self, line: Line) {
        let c = &mut self.0;
        c.objects += 1;
        c.scored += u64::from(line.score.is_some());
        match c.classes.iter_mut().find(|e| e.0 == line.class) {
            Some(e) => e.1 += 1,
            None => c.classes.push((line.class, 1)),
        }
    }
}

/// The one reader of the YOLO grammar: tokenizes each line once, decides
/// whether it is accepted, and hands accepted object lines to `sink`.
/// `Ok(false)` when the sink declined a polygon line.
fn read<S: Sink>(
    bytes: &[u8],
    names: Option<&[String]>,
    kpt: Option<KptShape>,
    sink: &mut S,
) -> Result<bool, LabelError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // A file the reader accepts is ASCII (digits, signs, points, whitespace),
    // so UTF-8 is checked only on the way out with an error: a file that is
    // not UTF-8 reports that first, wherever the bad byte is, as it always has.
    read_lines(body, names, kpt, sink).map_err(|e| match utf8(bytes) {
        Err(not_text) => not_text,
        Ok(_) => e,
    })
}

/// [`read`] after the byte order mark.
fn read_lines<S: Sink>(
    text: &[u8],
    names: Option<&[String]>,
    kpt: Option<KptShape>,
    sink: &mut S,
) -> Result<bool, LabelError> {
    let mut objects = 0usize;
    let mut line_no = 0usize;
    let mut start = 0;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |p| start + p);
        let raw = &text[start..end];
        start = end + 1;
        line_no += 1;
        let mut fields = Fields { line: raw, pos: 0 };
        let Some(class_tok) = fields.next() else {
            continue;
        };
        if objects >= MAX_OBJECTS_PER_FRAME {
            return Err(too_many_objects(line_no));
        }
        let Some(class) = class_index(class_tok) else {
            return Err(field_error(
                line_no,
                1,
                format!(
                    "class is {}, not a class index (a whole number from 0)",
                    quote(&String::from_utf8_lossy(class_tok))
                ),
            ));
        };
        let check_class = || match names {
            Some(names) if class >= names.len() => Err(field_error(
                line_no,
                1,
                format!(
                    "class index {class} is out of range: the names list has {} names",
                    names.len()
                ),
            )),
            _ => Ok(()),
        };
        // The fields are counted before a number is read: the count decides
        // a box from a polygon, and a polygon's size is checked before its
        // points are stored (a file may be one line of megabytes).
        let mut toks: [&[u8]; 5] = [&[]; 5];
        let mut n = 0;
        for tok in fields.clone() {
            if let Some(slot) = toks.get_mut(n) {
                *slot = tok;
            }
            n += 1;
        }
        let bad_number = |k: usize, tok: &[u8]| {
            field_error(
                line_no,
                k + 2,
                format!(
                    "{} is {}, not a finite number",
                    value_name(k, n),
                    quote(&String::from_utf8_lossy(tok))
                ),
            )
        };
        if let Some(shape) = kpt {
            let line = pose_line(line_no, shape, fields, n, S::POLYGONS)?;
            let Some(line) = line else {
                return Ok(false);
            };
            check_class()?;
            objects += 1;
            sink.object(Line { class, ..line });
            continue;
        }
        if let Some(k) = pose_keypoints(fields.clone(), n) {
            return Err(LabelError::at_line(
                line_no,
                format!(
                    "looks like a YOLO pose line (a box, then {k} keypoints as x y visibility), but no data.yaml gives its kpt_shape: it is not read as a polygon"
                ),
            ));
        }
        let line = if n >= 6 {
            let points = n / 2;
            if points > MAX_POLYGON_POINTS {
                return Err(LabelError::at_line(
                    line_no,
                    format!(
                        "a polygon of {points} points: dsv reads at most {MAX_POLYGON_POINTS} points per polygon"
                    ),
                ));
            }
            if S::POLYGONS == Polygons::Decline {
                return Ok(false);
            }
            let keep = S::POLYGONS == Polygons::Ring;
            let mut ring: Vec<[f64; 2]> = Vec::with_capacity(if keep { points } else { 0 });
            let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            let mut score = None;
            let mut k = 0;
            while let Some(tok) = fields.next() {
                let x = number(tok).ok_or_else(|| bad_number(k, tok))?;
                match fields.next() {
                    Some(tok) => {
                        let y = number(tok).ok_or_else(|| bad_number(k + 1, tok))?;
                        lo = [lo[0].min(x), lo[1].min(y)];
                        hi = [hi[0].max(x), hi[1].max(y)];
                        if keep {
                            ring.push([x, y]);
                        }
                    }
                    None => score = Some(x),
                }
                k += 2;
            }
            check_class()?;
            let bbox = BBox::from_corners(lo[0], lo[1], hi[0], hi[1]);
            if !(bbox.w.is_finite() && bbox.h.is_finite()) {
                return Err(LabelError::at_line(line_no, "polygon extent overflows"));
            }
            Line {
                class,
                bbox,
                score,
                ring: keep.then_some(ring),
                keypoints: None,
            }
        } else {
            let mut nums = [0f64; 5];
            for (k, (slot, tok)) in nums.iter_mut().zip(toks).take(n).enumerate() {
                *slot = number(tok).ok_or_else(|| bad_number(k, tok))?;
            }
            check_class()?;
            if n < 4 {
                return Err(field_error(
                    line_no,
                    n + 2,
                    format!(
                        "{} is missing: a YOLO line is `class cx cy w h`",
                        value_name(n, n)
                    ),
                ));
            }
            let [cx, cy, w, h, score] = nums;
            for (k, v) in [(2, w), (3, h)] {
                if v < 0.0 {
                    return Err(field_error(
                        line_no,
                        k + 2,
                        format!("{} is {v}, a box size cannot be negative", value_name(k, n)),
                    ));
                }
            }
            let bbox = BBox::from_center(cx, cy, w, h);
            if !corners_finite(&bbox) {
                return Err(LabelError::at_line(line_no, "box corners overflow"));
            }
            Line {
                class,
                bbox,
                score: (n == 5).then_some(score),
                ring: None,
                keypoints: None,
            }
        };
        objects += 1;
        sink.object(line);
    }
    Ok(true)
}

/// A line of a pose file (the names file says `kpt_shape`): the box, then
/// `shape.points` keypoints of `shape.dims` numbers each, then an optional
/// score (Ultralytics' `save_conf`). Any other count of numbers is an error
/// at the line. `None` when the sink declines it (it is not a plain box);
/// the class is the caller's.
fn pose_line(
    line_no: usize,
    shape: KptShape,
    mut fields: Fields<'_>,
    n: usize,
    polygons: Polygons,
) -> Result<Option<Line>, LabelError> {
    let want = line_values(shape);
    let KptShape { points: k, dims: d } = shape;
    if n != want && n != want + 1 {
        return Err(LabelError::at_line(
            line_no,
            format!(
                "{n} numbers after the class, but kpt_shape [{k}, {d}] says a pose line has {want}: a box (cx cy w h) and {k} keypoints of {d} numbers ({}), and maybe a score",
                if d == 3 { "x y visibility" } else { "x y" }
            ),
        ));
    }
    if polygons == Polygons::Decline {
        return Ok(None);
    }
    let name = |i: usize| -> String {
        match i {
            0..4 => ["cx", "cy", "w", "h"][i].to_owned(),
            _ if i >= want => "score".to_owned(),
            _ => format!("{}{}", ["x", "y", "v"][(i - 4) % d], (i - 4) / d + 1),
        }
    };
    let mut next = |i: usize| -> Result<f64, LabelError> {
        let tok = fields.next().unwrap_or_default();
        number(tok).ok_or_else(|| {
            field_error(
                line_no,
                i + 2,
                format!(
                    "{} is {}, not a finite number",
                    name(i),
                    quote(&String::from_utf8_lossy(tok))
                ),
            )
        })
    };
    let mut bx = [0f64; 4];
    for (i, slot) in bx.iter_mut().enumerate() {
        *slot = next(i)?;
    }
    let [cx, cy, w, h] = bx;
    for (i, v) in [(2, w), (3, h)] {
        if v < 0.0 {
            return Err(field_error(
                line_no,
                i + 2,
                format!("{} is {v}, a box size cannot be negative", name(i)),
            ));
        }
    }
    let keep = polygons == Polygons::Ring;
    let mut kps: Vec<[f64; 3]> = Vec::with_capacity(if keep { k } else { 0 });
    for p in 0..k {
        let at = 4 + p * d;
        let x = next(at)?;
        let y = next(at + 1)?;
        // Without visibilities, Ultralytics takes a keypoint at (0, 0) for
        // one that is not labelled; every other one is visible.
        let v = if d == 3 {
            next(at + 2)?
        } else if x == 0.0 && y == 0.0 {
            0.0
        } else {
            2.0
        };
        if keep {
            kps.push([x, y, v]);
        }
    }
    let score = if n > want { Some(next(want)?) } else { None };
    let bbox = BBox::from_center(cx, cy, w, h);
    if !corners_finite(&bbox) {
        return Err(LabelError::at_line(line_no, "box corners overflow"));
    }
    Ok(Some(Line {
        class: 0,
        bbox,
        score,
        ring: None,
        keypoints: keep.then_some(kps),
    }))
}

/// The whitespace-separated fields of a line (ASCII whitespace, as
/// `str::split_ascii_whitespace` splits).
#[derive(Clone)]
struct Fields<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let line = self.line;
        let mut pos = self.pos;
        while pos < line.len() && line[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < line.len() && !line[pos].is_ascii_whitespace() {
            pos += 1;
        }
        self.pos = pos;
        (pos > start).then(|| &line[start..pos])
    }
}

/// A class index as `str::parse::<usize>` reads it (digits, an optional `+`).
fn class_index(tok: &[u8]) -> Option<usize> {
    if !tok.is_empty() && tok.len() <= 18 && tok.iter().all(u8::is_ascii_digit) {
        return Some(
            tok.iter()
                .fold(0usize, |v, d| v * 10 + usize::from(d - b'0')),
        );
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Writes one frame as YOLO lines; classes must be class indices written as numbers.
pub fn write(frame: &FrameLabels) -> Result<Vec<u8>, LabelError> {
    write_pose(frame, None, 3)
}

/// Writes one frame as YOLO lines, mapping class names to their index in `names`.
/// Keypoints are written as pose lines with visibilities (`kpt_shape: [K, 3]`).
pub fn write_with_names(frame: &FrameLabels, names: &[String]) -> Result<Vec<u8>, LabelError> {
    write_pose(frame, Some(names), 3)
}

/// [`write_with_names`] (or [`write`] without `names`), with `dims` numbers
/// per keypoint: the D of `kpt_shape: [K, D]`; 2 leaves the visibility out
/// and writes a keypoint that is not labelled at `0 0`.
pub fn write_pose(
    frame: &FrameLabels,
    names: Option<&[String]>,
    dims: usize,
) -> Result<Vec<u8>, LabelError> {
    let Some(names) = names else {
        return write_lines(frame, dims, |class| {
            class.parse::<usize>().map_err(|_| {
                format!(
                    "class {} is not a class index; write it with a names list (write_with_names)",
                    quote(class)
                )
            })
        });
    };
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        // A name listed twice keeps its first index, as a YOLO reader would.
        index.entry(n.as_str()).or_insert(i);
    }
    write_lines(frame, dims, |class| {
        index.get(class).copied().ok_or_else(|| {
            format!(
                "class {} is not in the names list ({} names)",
                quote(class),
                names.len()
            )
        })
    })
}

/// The D of `kpt_shape` a pose file was written with, found from its bytes
/// and its parse (the first object with keypoints, and its line's count of
/// numbers): what a merge writes the file back with. `None` without keypoints.
pub fn pose_dims(bytes: &[u8], frames: &[FrameLabels]) -> Option<usize> {
    let objects = &frames.first()?.objects;
    let (at, k) = objects
        .iter()
        .enumerate()
        .find_map(|(i, o)| keypoints_of(o).map(|p| (i, p.points.len())))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let line = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .nth(at)?;
    let n = Fields { line, pos: 0 }.count().checked_sub(1)?;
    // 4 + 2K (+ a score) numbers, unless 4 + 3K says the same.
    Some(if (n == 4 + 2 * k || n == 5 + 2 * k) && n != 4 + 3 * k {
        2
    } else {
        3
    })
}

/// The number of keypoints of a line whose `n` numbers after the class read
/// as a YOLO pose line with visibility (`cx cy w h` then `x y v` per
/// keypoint), or `None`. Such a line has 4 + 3k numbers, and without
/// `kpt_shape` it would read as a polygon (plus a score when the count is
/// odd). It is taken for a pose line when k >= 2 and every third number after
/// the box is a visibility, 0, 1 or 2, with at least one 2 (visible): a
/// polygon's coordinates are normalized to the image, so a 2 there is outside
/// it, and a polygon can therefore not be mistaken for a pose line. A pose
/// line without visibilities (4 + 2k numbers) cannot be told from a polygon
/// and still reads as one.
fn pose_keypoints<'a>(fields: impl Iterator<Item = &'a [u8]>, n: usize) -> Option<usize> {
    if n < 10 || !(n - 4).is_multiple_of(3) {
        return None;
    }
    let mut visible = false;
    for tok in fields.skip(6).step_by(3) {
        let v = number(tok)?;
        if v == 2.0 {
            visible = true;
        } else if v != 0.0 && v != 1.0 {
            return None;
        }
    }
    visible.then_some((n - 4) / 3)
}

/// Whether a box from a centre and size has finite corners, and a centre the
/// writer (which rebuilds it as x + w / 2) can compute without overflow.
fn corners_finite(b: &BBox) -> bool {
    b.x.is_finite()
        && b.y.is_finite()
        && (b.x + b.w / 2.0).is_finite()
        && (b.y + b.h / 2.0).is_finite()
}

/// The bounds of a ring, as [`read`] computes them (the tests' reference).
#[cfg(test)]
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

/// The keypoints of an object, when it has them.
fn keypoints_of(obj: &Object) -> Option<&Keypoints> {
    match &obj.geometry {
        Some(Geometry::Keypoints(k)) => Some(k),
        _ => None,
    }
}

fn write_lines(
    frame: &FrameLabels,
    dims: usize,
    class_index: impl Fn(&str) -> Result<usize, String>,
) -> Result<Vec<u8>, LabelError> {
    let (sx, sy) = to_normalized_scale(frame)?;
    // A pose file has one kpt_shape: every line a box and the same number of
    // keypoints, or the file written would not read back.
    let pose = frame.objects.iter().find_map(keypoints_of);
    if let Some(first) = pose {
        let k = first.points.len();
        if let Some((i, o)) = frame
            .objects
            .iter()
            .enumerate()
            .find(|(_, o)| keypoints_of(o).is_none_or(|p| p.points.len() != k))
        {
            return Err(LabelError::msg(format!(
                "object {} ({}): a YOLO pose file has {k} keypoints on every line, and this object has {}",
                i + 1,
                quote(&o.class),
                keypoints_of(o).map_or(0, |p| p.points.len())
            )));
        }
    }
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
        // Keypoints follow the box they were read with (never a polygon's).
        if let Some(kp) = keypoints_of(obj) {
            for [x, y, v] in &kp.points {
                match (dims, *v == 0.0) {
                    (2, true) => values.extend([0.0, 0.0]),
                    (2, false) => values.extend([x * sx, y * sy]),
                    _ => values.extend([x * sx, y * sy, *v]),
                }
            }
        }
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

/// A finite number as `str::parse::<f64>` reads it.
fn number(tok: &[u8]) -> Option<f64> {
    if let Some(v) = short_decimal(tok) {
        return Some(v);
    }
    std::str::from_utf8(tok)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
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
fn short_decimal(b: &[u8]) -> Option<f64> {
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
    use crate::labels::names::{ClassNames, parse_class_names};
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
            class_names: names.map(|n| std::sync::Arc::new(n.into())),
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
        let names = parse_class_names("obj.names", &read(&format!("{STRICT}/obj.names")))
            .expect("names")
            .names;
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
        let names = parse_class_names("data.yaml", &read(&format!("{ROBOFLOW}/data.yaml")))
            .expect("names")
            .names;
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
        let names = parse_class_names("data.yaml", &read(&format!("{DEMO}/data.yaml")))
            .expect("names")
            .names;
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
            parse_class_names("classes.txt", b"cat\r\ntraffic light\n\n\n")
                .expect("names")
                .names,
            ["cat", "traffic light"]
        );
        assert!(parse_class_names("classes.txt", b"cat\n\ndog\n").is_err());
        let map = parse_class_names("data.yaml", b"names:\n  1: dog\n  0: cat\n").expect("map");
        assert_eq!(map.names, ["cat", "dog"]);
        assert_eq!(map.kpt_shape, None);
        assert!(parse_class_names("data.yaml", b"names:\n  0: cat\n  2: dog\n").is_err());
        assert!(parse_class_names("data.yaml", b"nc: 2\n").is_err());
        let e = parse_class_names("data.yaml", b"names: [a, b\n").expect_err("yaml");
        assert!(e.line.is_some());
    }

    fn pose_ctx(k: usize, d: usize) -> ParseContext {
        ParseContext {
            class_names: Some(std::sync::Arc::new(ClassNames {
                names: vec!["person".into()],
                kpt_shape: Some(KptShape { points: k, dims: d }),
            })),
            stem: "a".into(),
        }
    }

    fn keypoints(o: &Object) -> &[[f64; 3]] {
        &keypoints_of(o).expect("keypoints").points
    }

    #[test]
    fn kpt_shape_is_read_from_data_yaml() {
        let n = parse_class_names("data.yaml", b"names: [person]\nkpt_shape: [17, 3]\n")
            .expect("names");
        assert_eq!(n.names, ["person"]);
        assert_eq!(
            n.kpt_shape,
            Some(KptShape {
                points: 17,
                dims: 3
            })
        );
        for bad in [
            "[17, 4]",
            "[0, 3]",
            "[17]",
            "17",
            "[17, 3, 1]",
            "[a, 3]",
            "[100000, 2]",
        ] {
            let yaml = format!("names: [person]\nkpt_shape: {bad}\n");
            let e = parse_class_names("data.yaml", yaml.as_bytes()).expect_err(bad);
            assert!(
                e.message.contains("kpt_shape is not [K, 2] or [K, 3]"),
                "{e}"
            );
        }
    }

    #[test]
    fn pose_line_with_visibilities_is_a_box_and_keypoints() {
        let f = parse(
            b"0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n",
            &pose_ctx(2, 3),
        )
        .expect("parse");
        let o = &f.objects[0];
        assert_eq!(o.class, "person");
        let b = o.bbox.expect("box");
        assert!(close(b.x, 0.4) && close(b.y, 0.3) && close(b.w, 0.2) && close(b.h, 0.4));
        assert_eq!(keypoints(o), [[0.45, 0.4, 2.0], [0.55, 0.4, 1.0]]);
        assert!(o.attributes.is_empty());
        roundtrip_pose(&f, 3);
    }

    #[test]
    fn pose_line_without_visibilities_marks_origin_points_unlabelled() {
        let f = parse(b"0 0.5 0.5 0.2 0.4 0.45 0.4 0 0 0.9\n", &pose_ctx(2, 2)).expect("parse");
        let o = &f.objects[0];
        assert_eq!(keypoints(o), [[0.45, 0.4, 2.0], [0.0, 0.0, 0.0]]);
        assert_eq!(o.attributes.get("score"), Some(&AttrValue::Float(0.9)));
        roundtrip_pose(&f, 2);
    }

    fn roundtrip_pose(frame: &FrameLabels, dims: usize) {
        let names = ["person".to_owned()];
        let bytes = write_pose(frame, Some(&names), dims).expect("write");
        assert_eq!(pose_dims(&bytes, std::slice::from_ref(frame)), Some(dims));
        let again =
            parse(&bytes, &pose_ctx(keypoints(&frame.objects[0]).len(), dims)).expect("reparse");
        assert_eq!(frame.objects.len(), again.objects.len());
        for (a, b) in frame.objects.iter().zip(&again.objects) {
            for (p, q) in keypoints(a).iter().zip(keypoints(b)) {
                assert!(close(p[0], q[0]) && close(p[1], q[1]) && close(p[2], q[2]));
            }
        }
    }

    #[test]
    fn pose_line_whose_count_does_not_fit_kpt_shape_is_an_error_at_its_line() {
        let e = parse(
            b"0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n0 0.5 0.5 0.2 0.4\n",
            &pose_ctx(2, 3),
        )
        .expect_err("a plain box in a pose file");
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.starts_with(
                "4 numbers after the class, but kpt_shape [2, 3] says a pose line has 10"
            ),
            "{e}"
        );
        let e = parse(b"0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55\n", &pose_ctx(2, 3)).expect_err("short");
        assert_eq!(e.line, Some(1));
        let e = parse(b"0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 x 1\n", &pose_ctx(2, 3))
            .expect_err("not a number");
        assert_eq!((e.line, e.column), (Some(1), Some(10)));
        assert!(e.message.starts_with("y2 is 'x'"), "{e}");
        let e = parse(
            b"1 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n",
            &pose_ctx(2, 3),
        )
        .expect_err("class");
        assert!(e.message.contains("out of range"), "{e}");
        // Counting passes without kpt_shape never vouch for a pose file.
        assert!(count(b"0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n", None).is_none());
    }

    #[test]
    fn pose_writer_refuses_lines_of_different_keypoint_counts() {
        let mut f = parse(
            b"0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n",
            &pose_ctx(2, 3),
        )
        .expect("parse");
        f.objects.push(Object::new(
            "person",
            Some(BBox::from_center(0.5, 0.5, 0.1, 0.1)),
        ));
        let e = write_pose(&f, Some(&["person".to_owned()]), 3).expect_err("mixed");
        assert!(e.message.contains("2 keypoints on every line"), "{e}");
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

    /// A YOLO-ish field: mostly numbers, some of every form the grammar
    /// refuses or reads only through the general number parser.
    fn yoloish_field() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "(0|0\\.[0-9]{1,6}|1|0\\.5)",
            1 => prop_oneof![
                Just("-0.25"), Just("-0"), Just("-0.0"), Just("1."), Just(".5"), Just("1e-3"),
                Just("+0.5"), Just("nan"), Just("inf"), Just("abc"), Just("0x1"),
                Just("1234567890123456"), Just("9e999"), Just("1e308"), Just("-1e308"),
                Just("\u{e9}"), Just("\u{a0}"), Just("\u{b}"), Just("\u{c}"),
            ]
            .prop_map(str::to_owned),
        ]
    }

    fn yoloish_line() -> impl Strategy<Value = Vec<u8>> {
        let class = prop_oneof![
            6 => "[0-4]",
            1 => prop_oneof![
                Just("007"), Just("+1"), Just("-1"), Just("x"), Just("12345678901234567890"),
                Just("1.0"), Just("\u{e9}"),
            ]
            .prop_map(str::to_owned),
        ];
        let sep = prop_oneof![
            Just(" "),
            Just("\t"),
            Just("  "),
            Just(" \r "),
            Just("\u{c}")
        ];
        (
            class,
            proptest::collection::vec((sep, yoloish_field()), 0..10),
            "( |\t|\r)?",
            proptest::option::weighted(0.03, any::<u8>()),
        )
            .prop_map(|(class, fields, end, byte)| {
                let mut line = class.into_bytes();
                for (sep, f) in fields {
                    line.extend_from_slice(sep.as_bytes());
                    line.extend_from_slice(f.as_bytes());
                }
                line.extend_from_slice(end.as_bytes());
                // Now and then a stray byte, which may make the file not UTF-8.
                if let Some(b) = byte {
                    let at = usize::from(b) % (line.len() + 1);
                    line.insert(at, b);
                }
                line
            })
    }

    fn yoloish_file() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(
                prop_oneof![8 => yoloish_line(), 1 => "[ \t]{0,2}".prop_map(String::into_bytes)],
                0..8,
            ),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(lines, crlf, bom, last_newline)| {
                let mut text = if bom {
                    b"\xEF\xBB\xBF".to_vec()
                } else {
                    Vec::new()
                };
                text.extend(lines.join(if crlf { &b"\r\n"[..] } else { &b"\n"[..] }));
                if last_newline {
                    text.push(b'\n');
                }
                text
            })
    }

    /// What `parse`, `count` and `plain_boxes` say of one file must agree:
    /// the same files accepted, the same objects counted and boxed.
    fn assert_consumers_agree(text: &[u8], names: Option<&[String]>) {
        let parsed = parse(text, &ctx("f", names.map(<[String]>::to_vec)));
        let counts = count(text, names);
        let mut boxes = Vec::new();
        let plain = plain_boxes(text, names, &mut boxes);
        let Ok(frame) = parsed else {
            assert!(
                counts.is_none(),
                "count accepts what parse refuses: {text:?}"
            );
            assert!(!plain, "plain_boxes accepts what parse refuses: {text:?}");
            return;
        };
        let counts = counts.unwrap_or_else(|| panic!("count refuses what parse accepts: {text:?}"));
        let class_of = |i: usize| names.map_or_else(|| i.to_string(), |n| n[i].clone());
        assert_eq!(counts.objects, frame.objects.len() as u64);
        let scored = frame
            .objects
            .iter()
            .filter(|o| o.attributes.contains_key("score"));
        assert_eq!(counts.scored, scored.count() as u64);
        for (index, n) in &counts.classes {
            let got = frame
                .objects
                .iter()
                .filter(|o| o.class == class_of(*index))
                .count();
            // Indices sharing a name are counted apart; their sum is the parser's.
            let same: u64 = counts
                .classes
                .iter()
                .filter(|(j, _)| class_of(*j) == class_of(*index))
                .map(|(_, m)| m)
                .sum();
            assert!(*n <= same && same == got as u64, "{text:?}");
        }
        let polygons = frame.objects.iter().any(|o| o.geometry.is_some());
        assert_eq!(plain, !polygons, "{text:?}");
        if plain {
            assert_eq!(boxes.len(), frame.objects.len());
            for ((index, b, score), o) in boxes.iter().zip(&frame.objects) {
                assert_eq!(class_of(*index), o.class);
                assert_eq!(Some(b), o.bbox.as_ref());
                assert_eq!(
                    score.map(AttrValue::Float).as_ref(),
                    o.attributes.get("score")
                );
            }
        }
    }

    #[test]
    fn fast_consumers_accept_every_file_the_parser_accepts() {
        // Each of these was sent back to the parser by the old counting pass
        // (a sign, an exponent, a negative zero size, no names list bound).
        for text in [
            &b"+1 0.5 0.5 0.1 0.1\n"[..],
            b"0 1e-3 0.5 0.1 0.1\n",
            b"0 0.5 0.5 -0 0.1 0.9\n",
            b"007 .5 1. 0.1 0.1\n",
            b"0 1e308 1 2 3 4 5 6\n",
            b"0 -1e307 0 1e307 1 0.5 0.5\n",
            b"\xEF\xBB\xBF1 0.5 0.5 0.1 0.1\r\n\x0c\n",
        ] {
            assert!(count(text, None).is_some(), "{text:?}");
            assert_consumers_agree(text, None);
        }
        let names = ["a".to_owned(), "b".to_owned()];
        assert_consumers_agree(b"1 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n", Some(&names));
        assert_consumers_agree(b"0 0.5 0.5 0.1 0.1\n\xff\n", Some(&names));
    }

    proptest! {
        #[test]
        fn parse_count_and_plain_boxes_agree(text in yoloish_file(), list in 0usize..3) {
            let names: Option<Vec<String>> = match list {
                0 => None,
                // Two indices with one name.
                1 => Some(["car", "dog", "car"].map(String::from).to_vec()),
                _ => Some(["car", "dog", "cone", "bus", "van"].map(String::from).to_vec()),
            };
            assert_consumers_agree(&text, names.as_deref());
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
                number(t.as_bytes()).map(f64::to_bits),
                general.map(f64::to_bits),
                "{t}"
            );
            if let Some(v) = short_decimal(t.as_bytes()) {
                assert_eq!(Some(v.to_bits()), general.map(f64::to_bits), "{t}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_short_decimal_reads_as_the_general_parser_reads_it(t in "-?[0-9]{0,9}(\\.[0-9]{0,9})?") {
            let general = t.parse::<f64>().ok().filter(|v| v.is_finite());
            proptest::prop_assert_eq!(number(t.as_bytes()).map(f64::to_bits), general.map(f64::to_bits));
            if let Some(v) = short_decimal(t.as_bytes()) {
                proptest::prop_assert_eq!(Some(v.to_bits()), general.map(f64::to_bits));
            }
        }
    }
}
