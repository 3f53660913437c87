//! KITTI object detection label files (`label_2/*.txt`): one file per frame.
//!
//! Each line has 15 whitespace-separated columns, 16 with a detection score:
//! `type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]`.
//!
//! - The class is `type` as written, `DontCare` included: those regions matter
//!   to evaluation (detections inside them are not false positives), so they
//!   stay visible to diff and stats instead of being dropped.
//! - Attributes: `truncated` ([`AttrValue::Float`]), `occluded`
//!   ([`AttrValue::Int`], 0 to 3, or -1 as `DontCare` lines write it), `alpha`
//!   ([`AttrValue::Float`]) and, when present, `score` ([`AttrValue::Float`]).
//! - The 2D box comes from the corners, in pixels; the 3D box becomes
//!   [`Geometry::Box3d`], except when `h w l` are all -1, KITTI's marker for
//!   "no 3D box" (DontCare lines, 2D-only datasets). The writer puts KITTI's
//!   `DontCare` placeholders (`-1 -1 -1 -1000 -1000 -1000 -10`) back there.
//!
//! Errors name the line and the column, where a column is a 1-based
//! whitespace-separated field (column 5 is `x1`).

use std::fmt::Write as _;

use super::{
    AttrValue, BBox, Box3d, FrameLabels, Geometry, LabelError, Object, ParseContext, Units,
};

mod format;
pub use format::KittiFormat;

const COLUMNS: [&str; 16] = [
    "type",
    "truncated",
    "occluded",
    "alpha",
    "x1",
    "y1",
    "x2",
    "y2",
    "h",
    "w",
    "l",
    "x",
    "y",
    "z",
    "rotation_y",
    "score",
];

/// What KITTI writes in the 3D columns when an object has no 3D box.
const NO_BOX3D: [f64; 7] = [-1.0, -1.0, -1.0, -1000.0, -1000.0, -1000.0, -10.0];

/// Whether the path and first bytes look like a KITTI label file.
pub fn sniff(path: &str, head: &[u8]) -> bool {
    let is_txt = path.len() >= 4
        && path
            .as_bytes()
            .get(path.len() - 4..)
            .is_some_and(|e| e.eq_ignore_ascii_case(b".txt"));
    if !is_txt {
        return false;
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // A first field that is a number (a YOLO class) rules KITTI out, and every
    // YOLO file is asked this: answer it before checking and splitting the text.
    // ASCII whitespace never belongs to a non-blank line's content, so the first
    // ASCII token is the first field of the first non-blank line.
    let first = head
        .split(|b| b.is_ascii_whitespace())
        .find(|f| !f.is_empty());
    if first.is_some_and(|f| {
        f.is_ascii() && std::str::from_utf8(f).is_ok_and(|t| t.parse::<f64>().is_ok())
    }) {
        return false;
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => head
            .get(..e.valid_up_to())
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or(""),
        Err(_) => return false,
    };
    let mut segments = text.split('\n').peekable();
    let (line, complete) = loop {
        let Some(seg) = segments.next() else {
            return false;
        };
        if !seg.trim().is_empty() {
            // Only a line followed by a newline is known to be whole.
            break (seg, segments.peek().is_some());
        }
    };
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some((kind, numbers)) = fields.split_first() else {
        return false;
    };
    if kind.parse::<f64>().is_ok() {
        return false;
    }
    // A line the head cut short still shows its 2D box; its last field may be a prefix.
    let count_ok = if complete {
        matches!(fields.len(), 15 | 16)
    } else {
        (8..=16).contains(&fields.len())
    };
    let checked = if complete {
        numbers.len()
    } else {
        numbers.len().saturating_sub(1)
    };
    count_ok
        && numbers
            .iter()
            .take(checked)
            .all(|f| f.parse::<f64>().is_ok())
}

/// Parses one frame's KITTI label file (frame name = `ctx.stem`, pixel units).
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<FrameLabels, LabelError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| LabelError::at_offset(bytes, e.valid_up_to(), "not UTF-8 text"))?;
    let mut frame = FrameLabels::new(ctx.stem.clone(), Units::Pixels);
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut fields = raw.split_ascii_whitespace();
        let Some(kind) = fields.next() else {
            continue;
        };
        if frame.objects.len() >= super::MAX_OBJECTS_PER_FRAME {
            return Err(super::too_many_objects(line_no));
        }
        let mut v = [0.0f64; 15];
        let mut count = 1;
        for (slot, tok) in v.iter_mut().zip(fields.by_ref()) {
            count += 1;
            *slot = number(tok, line_no, count)?;
        }
        if count < 15 {
            return Err(field_error(
                line_no,
                count + 1,
                format!(
                    "{} is missing: a KITTI line has 15 columns (16 with a score), this one has {count}",
                    column_name(count)
                ),
            ));
        }
        if fields.next().is_some() {
            return Err(field_error(
                line_no,
                17,
                "extra column: a KITTI line has 15 columns (16 with a score)".to_owned(),
            ));
        }
        frame
            .objects
            .push(object_from_columns(kind, &v, count, line_no)?);
    }
    Ok(frame)
}

fn object_from_columns(
    kind: &str,
    v: &[f64; 15],
    count: usize,
    line_no: usize,
) -> Result<Object, LabelError> {
    let [
        truncated,
        occluded,
        alpha,
        x1,
        y1,
        x2,
        y2,
        h,
        w,
        l,
        x,
        y,
        z,
        rotation_y,
        score,
    ] = *v;
    let occluded_i = occluded as i64;
    if occluded_i as f64 != occluded || !(-1..=3).contains(&occluded_i) {
        return Err(field_error(
            line_no,
            3,
            format!("occluded is {occluded}; KITTI uses 0, 1, 2, 3 (or -1 on DontCare lines)"),
        ));
    }
    let bbox = BBox::from_corners(x1, y1, x2, y2);
    // The writer rebuilds x2 as x1 + w, which must not overflow either.
    if !(bbox.w.is_finite()
        && bbox.h.is_finite()
        && (x1 + bbox.w).is_finite()
        && (y1 + bbox.h).is_finite())
    {
        return Err(LabelError::at_line(line_no, "box corners overflow"));
    }
    let mut obj = Object::new(kind, Some(bbox));
    obj.attributes
        .insert("truncated".to_owned(), AttrValue::Float(truncated));
    obj.attributes
        .insert("occluded".to_owned(), AttrValue::Int(occluded_i));
    obj.attributes
        .insert("alpha".to_owned(), AttrValue::Float(alpha));
    if count == 16 {
        obj.attributes
            .insert("score".to_owned(), AttrValue::Float(score));
    }
    if !(h == -1.0 && w == -1.0 && l == -1.0) {
        obj.geometry = Some(Geometry::Box3d(Box::new(Box3d {
            dimensions: [h, w, l],
            location: [x, y, z],
            rotation_y,
        })));
    }
    Ok(obj)
}

/// Writes one frame as KITTI lines (boxes in pixels; normalized boxes need the image size).
pub fn write(frame: &FrameLabels) -> Result<Vec<u8>, LabelError> {
    let (sx, sy) = match frame.units {
        Units::Pixels => (1.0, 1.0),
        Units::Normalized => match (frame.width, frame.height) {
            (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
            _ => {
                return Err(LabelError::msg(
                    "KITTI needs pixel boxes, and this frame's boxes are normalized with no image size",
                ));
            }
        },
    };
    let mut out = String::with_capacity(frame.objects.len() * 96);
    for (i, obj) in frame.objects.iter().enumerate() {
        let fail =
            |what: String| LabelError::msg(format!("object {} ({}): {what}", i + 1, obj.class));
        if obj.class.is_empty() || obj.class.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(fail(
                "a KITTI type must be one word without spaces".to_owned(),
            ));
        }
        let Some(b) = obj.bbox else {
            return Err(fail(
                "has no 2D box, which every KITTI line needs".to_owned(),
            ));
        };
        let truncated = float_attr(obj, "truncated").unwrap_or(0.0);
        let occluded = match obj.attributes.get("occluded") {
            None => 0,
            Some(AttrValue::Bool(o)) => i64::from(*o),
            Some(AttrValue::Int(o)) => *o,
            Some(AttrValue::Float(o)) if o.fract() == 0.0 => *o as i64,
            Some(other) => return Err(fail(format!("occluded is {other}, not a KITTI level"))),
        };
        if !(-1..=3).contains(&occluded) {
            return Err(fail(format!(
                "occluded is {occluded}; KITTI has levels 0 to 3"
            )));
        }
        let alpha = float_attr(obj, "alpha").unwrap_or(-10.0);
        let box3d = match obj.geometry.as_ref() {
            Some(Geometry::Box3d(b)) => {
                let Box3d {
                    dimensions: [h, w, l],
                    location: [x, y, z],
                    rotation_y,
                } = **b;
                [h, w, l, x, y, z, rotation_y]
            }
            _ => NO_BOX3D,
        };
        let score = float_attr(obj, "score");
        let values = [b.x * sx, b.y * sy, (b.x + b.w) * sx, (b.y + b.h) * sy];
        // Written "NaN" or "inf" would make a file no KITTI reader, this one included, accepts.
        if [truncated, alpha]
            .iter()
            .chain(&values)
            .chain(&box3d)
            .chain(&score)
            .any(|v| !v.is_finite())
        {
            return Err(fail("has a value that is not a finite number".to_owned()));
        }
        out.push_str(&obj.class);
        let _ = write!(out, " {truncated} {occluded} {alpha}");
        for v in values.into_iter().chain(box3d).chain(score) {
            let _ = write!(out, " {v}");
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

fn float_attr(obj: &Object, key: &str) -> Option<f64> {
    match obj.attributes.get(key)? {
        AttrValue::Float(v) => Some(*v),
        AttrValue::Int(v) => Some(*v as f64),
        AttrValue::Bool(v) => Some(f64::from(u8::from(*v))),
        AttrValue::Str(s) => s.trim().parse().ok(),
    }
}

fn column_name(index: usize) -> &'static str {
    COLUMNS.get(index).copied().unwrap_or("value")
}

/// Parses the 1-based `column` of a line.
fn number(tok: &str, line: usize, column: usize) -> Result<f64, LabelError> {
    match tok.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(field_error(
            line,
            column,
            format!(
                "{} is {}, not a finite number",
                column_name(column - 1),
                quote(tok)
            ),
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROOT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datumaro/kitti_dataset"
    );

    fn read(rel: &str) -> Vec<u8> {
        let path = format!("{ROOT}/{rel}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
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
        assert_eq!((&a.frame, a.units), (&b.frame, b.units));
        assert_eq!(a.objects.len(), b.objects.len());
        for (x, y) in a.objects.iter().zip(&b.objects) {
            assert_eq!(x.class, y.class);
            let (p, q) = (x.bbox.expect("box"), y.bbox.expect("box"));
            assert!(
                close(p.x, q.x) && close(p.y, q.y) && close(p.w, q.w) && close(p.h, q.h),
                "{p:?} vs {q:?}"
            );
            assert_eq!(x.attributes, y.attributes);
            assert_eq!(x.geometry, y.geometry);
        }
    }

    fn roundtrip(frame: &FrameLabels) {
        let bytes = write(frame).expect("write");
        let again = parse(&bytes, &ctx(&frame.frame)).expect("reparse");
        assert_frames_close(frame, &again);
    }

    #[test]
    fn kitti_3d_fixture() {
        let bytes = read("kitti_3d/training/label_2/000001.txt");
        assert!(sniff("training/label_2/000001.txt", &bytes));
        let f = parse(&bytes, &ctx("000001")).expect("parse");
        assert_eq!(f.frame, "000001");
        assert_eq!(f.units, Units::Pixels);
        assert_eq!(
            f.objects
                .iter()
                .map(|o| o.class.as_str())
                .collect::<Vec<_>>(),
            ["Truck", "Car", "DontCare"]
        );
        let car = &f.objects[1];
        assert_eq!(
            car.bbox,
            Some(BBox::from_corners(650.0, 160.0, 700.0, 200.0))
        );
        assert_eq!(car.attributes.get("occluded"), Some(&AttrValue::Int(3)));
        assert_eq!(car.attributes.get("alpha"), Some(&AttrValue::Float(-1.65)));
        assert_eq!(
            car.attributes.get("truncated"),
            Some(&AttrValue::Float(0.0))
        );
        assert!(!car.attributes.contains_key("score"));
        assert_eq!(
            car.geometry,
            Some(Geometry::Box3d(Box::new(Box3d {
                dimensions: [1.86, 0.60, 2.02],
                location: [4.59, 1.32, 45.84],
                rotation_y: -1.55
            })))
        );
        let dont_care = &f.objects[2];
        assert_eq!(dont_care.geometry, None);
        assert_eq!(
            dont_care.attributes.get("occluded"),
            Some(&AttrValue::Int(-1))
        );
        roundtrip(&f);
        // DontCare placeholders come back byte for byte.
        let written = String::from_utf8(write(&f).expect("write")).expect("utf8");
        assert!(
            written
                .ends_with("DontCare -1 -1 -10 500 170 590 190 -1 -1 -1 -1000 -1000 -1000 -10\n"),
            "{written}"
        );
    }

    #[test]
    fn kitti_detection_fixtures() {
        let f = parse(
            &read("kitti_detection/training/label_2/000030_10.txt"),
            &ctx("000030_10"),
        )
        .expect("parse");
        assert_eq!(f.objects.len(), 2);
        assert_eq!(f.objects[0].class, "Truck");
        assert_eq!(
            f.objects[0].attributes.get("truncated"),
            Some(&AttrValue::Float(1.0))
        );
        assert_eq!(
            f.objects[1].bbox,
            Some(BBox::from_corners(0.0, 5.0, 1.0, 8.0))
        );
        assert!(f.objects.iter().all(|o| o.geometry.is_none()));
        roundtrip(&f);
        let g = parse(
            &read("kitti_detection/training/label_2/000030_11.txt"),
            &ctx("000030_11"),
        )
        .expect("parse");
        assert_eq!(g.objects.len(), 3);
        assert!(g.objects.iter().all(|o| o.class == "Van"));
        assert_eq!(
            g.objects[2].attributes.get("occluded"),
            Some(&AttrValue::Int(1))
        );
        assert_eq!(
            g.objects[2].bbox,
            Some(BBox::from_corners(6.0, 6.0, 7.0, 9.0))
        );
        roundtrip(&g);
    }

    #[test]
    fn score_column() {
        let f = parse(
            b"Car 0 0 0.5 1 2 3 4 1.5 1.6 3.9 1 2 30 0.1 0.93\n",
            &ctx("a"),
        )
        .expect("parse");
        assert_eq!(
            f.objects[0].attributes.get("score"),
            Some(&AttrValue::Float(0.93))
        );
        roundtrip(&f);
    }

    #[test]
    fn malformed_lines_name_line_and_column() {
        let good = "Car 0.00 0 -1.65 650 160 700 200 1.86 0.60 2.02 4.59 1.32 45.84 -1.55\n";
        let e = parse(
            format!("{good}Car 0.00 0 -1.65 650 160 700 200 1.86 0.60 2.02 4.59 1.32 45.84\n")
                .as_bytes(),
            &ctx("a"),
        )
        .expect_err("14 columns");
        assert_eq!((e.line, e.column), (Some(2), Some(15)));
        assert!(e.message.contains("rotation_y is missing"), "{e}");

        let e = parse(
            format!(
                "{good}\nCar 0.00 0 -1.65 abc 160 700 200 1.86 0.60 2.02 4.59 1.32 45.84 -1.55\n"
            )
            .as_bytes(),
            &ctx("a"),
        )
        .expect_err("x1");
        assert_eq!((e.line, e.column), (Some(3), Some(5)));
        assert_eq!(
            e.to_string(),
            "line 3, column 5: x1 is 'abc', not a finite number"
        );

        let e = parse(b"Car 0 0 0 1 2 3 4 1 1 1 1 1 1 0 0.9 7\n", &ctx("a")).expect_err("17");
        assert_eq!((e.line, e.column), (Some(1), Some(17)));

        let e = parse(b"Car 0 7 0 1 2 3 4 1 1 1 1 1 1 0\n", &ctx("a")).expect_err("occluded");
        assert_eq!((e.line, e.column), (Some(1), Some(3)));

        let e = parse(b"Car\n", &ctx("a")).expect_err("1 column");
        assert_eq!(e.column, Some(2));

        assert!(parse(b"Car 0 0 0 1 2 3 4 1 1 1 1 1 1 inf\n", &ctx("a")).is_err());
        assert!(
            parse(b"\n  \r\n", &ctx("a"))
                .expect("blank")
                .objects
                .is_empty()
        );
    }

    #[test]
    fn writer_refuses_what_kitti_cannot_hold() {
        let mut f = FrameLabels::new("a", Units::Pixels);
        f.objects.push(Object::new(
            "traffic sign",
            Some(BBox::from_corners(0.0, 0.0, 1.0, 1.0)),
        ));
        assert!(write(&f).is_err());
        f.objects[0].class = "Sign".into();
        f.objects[0].bbox = None;
        assert!(write(&f).is_err());
        f.objects[0].bbox = Some(BBox::from_corners(0.0, 0.0, 0.5, 0.5));
        f.units = Units::Normalized;
        assert!(write(&f).is_err());
        f.width = Some(100);
        f.height = Some(10);
        assert_eq!(
            String::from_utf8(write(&f).expect("write")).expect("utf8"),
            "Sign 0 0 -10 0 0 50 5 -1 -1 -1 -1000 -1000 -1000 -10\n"
        );
    }

    #[test]
    fn sniffs_kitti_but_not_yolo() {
        assert!(sniff(
            "a/000001.txt",
            b"Truck 0.00 0 -1.57 600 150 630 190 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
        ));
        assert!(sniff(
            "a/000001.txt",
            b"Truck 0.00 0 -1.57 600 150 630 190 2.85 2.6"
        ));
        assert!(!sniff("a/000001.txt", b"0 0.35 0.3 0.3 0.2\n"));
        assert!(!sniff(
            "a/000001.json",
            b"Truck 0.00 0 -1.57 600 150 630 190 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
        ));
        assert!(!sniff("a/classes.txt", b"Truck\nCar\n"));
        assert!(sniff(
            "a/1.txt",
            b"\n\nCar 0.00 0 -1.65 650 160 700 200 1.8"
        ));
    }

    fn arb_object() -> impl Strategy<Value = Object> {
        let coord = -2000.0f64..2000.0;
        (
            "[A-Za-z_][A-Za-z0-9_-]{0,11}",
            (coord.clone(), coord.clone(), 0.0f64..500.0, 0.0f64..500.0),
            (-1.0f64..1.0, -1i64..=3, -10.0f64..10.0),
            proptest::option::of(0.0f64..1.0),
            proptest::option::of((
                0.1f64..20.0,
                0.1f64..20.0,
                0.1f64..20.0,
                coord.clone(),
                coord.clone(),
                coord,
                -3.2f64..3.2,
            )),
        )
            .prop_map(|(class, (x, y, w, h), (trunc, occ, alpha), score, b3)| {
                let mut o = Object::new(class, Some(BBox::from_corners(x, y, x + w, y + h)));
                o.attributes
                    .insert("truncated".into(), AttrValue::Float(trunc));
                o.attributes.insert("occluded".into(), AttrValue::Int(occ));
                o.attributes.insert("alpha".into(), AttrValue::Float(alpha));
                if let Some(s) = score {
                    o.attributes.insert("score".into(), AttrValue::Float(s));
                }
                o.geometry = b3.map(|(h, w, l, x, y, z, r)| {
                    Geometry::Box3d(Box::new(Box3d {
                        dimensions: [h, w, l],
                        location: [x, y, z],
                        rotation_y: r,
                    }))
                });
                o
            })
    }

    proptest! {
        #[test]
        fn proptest_roundtrip(stem in "[0-9]{6}", objects in proptest::collection::vec(arb_object(), 0..8)) {
            let mut f = FrameLabels::new(stem, Units::Pixels);
            f.objects = objects;
            roundtrip(&f);
        }

        #[test]
        fn proptest_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(f) = parse(&bytes, &ctx("a")) {
                let again = write(&f).expect("a parsed frame writes");
                prop_assert!(parse(&again, &ctx("a")).is_ok());
            }
            let _ = sniff("a.txt", &bytes);
        }
    }
}
