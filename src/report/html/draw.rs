//! What a card draws, computed without any markup: which rectangles for a
//! frame's changes, in which coordinate space, at what displayed size, and how
//! numbers and boxes are written.

use crate::image::ImageFormat;
use crate::labels::compare::{ObjectChange, ObjectChangeKind};
use crate::labels::{BBox, Units};
use crate::ops::label_diff::FrameObjects;

/// Largest picture drawn: wide enough to judge a box, small enough for two columns.
const MAX_W: f64 = 480.0;
/// Tallest picture drawn, so portrait frames do not take a whole screen.
const MAX_H: f64 = 640.0;

/// Which box of a change a drawn rectangle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Before,
    After,
    Attributes,
}

impl Role {
    /// The CSS class that colours the rectangle and its tag.
    pub(super) fn class(self) -> &'static str {
        match self {
            Role::Before => "before",
            Role::After => "after",
            Role::Attributes => "attributes",
        }
    }
}

/// One rectangle of the overlay.
pub(super) struct Drawn<'a> {
    pub(super) role: Role,
    pub(super) bbox: BBox,
    pub(super) change: &'a ObjectChange,
    /// The class tag, on one box per change.
    pub(super) tag: Option<String>,
}

/// The word for a change kind, as the page's classes and tables use it.
pub(super) fn kind_name(k: ObjectChangeKind) -> &'static str {
    match k {
        ObjectChangeKind::Added => "added",
        ObjectChangeKind::Removed => "removed",
        ObjectChangeKind::Reclassified => "reclassified",
        ObjectChangeKind::Moved => "moved",
        ObjectChangeKind::Attributes => "attributes",
    }
}

/// The class of a change; `old → new` for a reclassified object.
pub(super) fn class_label(c: &ObjectChange) -> String {
    match (&c.kind, &c.old_class) {
        (ObjectChangeKind::Reclassified, Some(old)) => format!("{old} → {}", c.class),
        _ => c.class.clone(),
    }
}

/// A box with non-negative size, or `None` when it cannot be drawn.
fn drawable(b: Option<BBox>) -> Option<BBox> {
    let b = b?;
    if ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) {
        return None;
    }
    Some(BBox {
        x: b.x.min(b.x + b.w),
        y: b.y.min(b.y + b.h),
        w: b.w.abs(),
        h: b.h.abs(),
    })
}

/// The rectangles to draw for a frame's changes: new boxes first, old ones
/// last so their dashes stay visible where the two overlap.
pub(super) fn drawn_boxes(changes: &[ObjectChange]) -> Vec<Drawn<'_>> {
    let mut news = Vec::new();
    let mut olds = Vec::new();
    for c in changes {
        let (old, new) = match c.kind {
            ObjectChangeKind::Added => (None, c.after.map(|b| (Role::After, b))),
            ObjectChangeKind::Removed => (c.before, None),
            ObjectChangeKind::Moved => (c.before, c.after.map(|b| (Role::After, b))),
            ObjectChangeKind::Reclassified => (
                // An unmoved box drawn twice would only blur the tag.
                c.before.filter(|_| c.box_changed || c.after.is_none()),
                c.after.map(|b| (Role::After, b)),
            ),
            ObjectChangeKind::Attributes => {
                (None, c.after.or(c.before).map(|b| (Role::Attributes, b)))
            }
        };
        let new = new.and_then(|(r, b)| drawable(Some(b)).map(|b| (r, b)));
        let old = drawable(old);
        let tag = Some(class_label(c));
        match (old, new) {
            (Some(o), Some((role, n))) => {
                // Each box is labelled, so old and new are told apart by word,
                // not only by colour; the old box with the class it had.
                olds.push(Drawn {
                    role: Role::Before,
                    bbox: o,
                    change: c,
                    tag: Some(c.old_class.clone().unwrap_or_else(|| c.class.clone())),
                });
                news.push(Drawn {
                    role,
                    bbox: n,
                    change: c,
                    tag,
                });
            }
            (Some(o), None) => olds.push(Drawn {
                role: Role::Before,
                bbox: o,
                change: c,
                tag,
            }),
            (None, Some((role, n))) => news.push(Drawn {
                role,
                bbox: n,
                change: c,
                tag,
            }),
            (None, None) => {}
        }
    }
    news.extend(olds);
    news
}

/// Shortest decimal form with at most 6 decimals (SVG coordinates).
pub(super) fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s {
        "" | "-" | "-0" => "0".to_string(),
        s => s.to_string(),
    }
}

/// A box for people, in the frame's units; `—` for none.
pub(super) fn fmt_box(b: &Option<BBox>, units: Units) -> String {
    match b {
        None => "—".to_string(),
        Some(b) => match units {
            Units::Pixels => format!("({:.1}, {:.1}) {:.1}×{:.1}", b.x, b.y, b.w, b.h),
            Units::Normalized => format!("({:.4}, {:.4}) {:.4}×{:.4}", b.x, b.y, b.w, b.h),
        },
    }
}

/// Where a card's image is read from.
pub(super) enum Source {
    /// Embedded in the page.
    Data(ImageFormat, Vec<u8>),
    /// A file beside the page.
    Url(String),
}

/// The picture a card shows, and why when it is not the frame.
pub(super) struct Picture {
    pub(super) image: Option<Source>,
    pub(super) size: Option<(u32, u32)>,
    pub(super) notes: Vec<String>,
}

/// Where the boxes are drawn: the overlay's coordinate space and the displayed size.
pub(super) struct Geometry {
    pub(super) view: (f64, f64),
    /// Displayed size in CSS pixels; `None` lets the image size itself.
    pub(super) display: Option<(u32, u32)>,
}

/// The overlay's space and displayed size, from the label file's size, the
/// image's and the boxes' extent; notes on the picture say what was guessed.
pub(super) fn geometry(frame: &FrameObjects, drawn: &[Drawn], pic: &mut Picture) -> Geometry {
    let labelled = match (frame.width, frame.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    };
    if let (Some((lw, lh)), Some((iw, ih))) = (labelled, pic.size)
        && (lw, lh) != (iw, ih)
    {
        pic.notes.push(format!(
            "The label file says the image is {lw}×{lh}, the image is {iw}×{ih}; boxes are scaled to the image."
        ));
    }
    let known = labelled
        .or(pic.size)
        .map(|(w, h)| (f64::from(w), f64::from(h)));
    // Boxes' own extent, for a placeholder when nothing says how large the frame is.
    let extent = drawn
        .iter()
        .map(|d| (d.bbox.x + d.bbox.w, d.bbox.y + d.bbox.h))
        .fold(None, |acc: Option<(f64, f64)>, (x, y)| {
            Some(acc.map_or((x, y), |(ax, ay)| (ax.max(x), ay.max(y))))
        })
        .map(|(x, y)| ((x * 1.05).max(1.0), (y * 1.05).max(1.0)));
    let view = match frame.units {
        Units::Normalized => (1.0, 1.0),
        Units::Pixels => match known {
            Some(v) => v,
            None => {
                pic.notes.push(if pic.image.is_some() {
                    "Image size unknown; boxes are scaled to their own extent and may not line up."
                        .into()
                } else {
                    "Image size unknown; the placeholder is sized to the boxes' extent.".into()
                });
                extent.unwrap_or((4.0, 3.0))
            }
        },
    };
    let aspect = match (pic.size.or(labelled), &pic.image) {
        (Some((w, h)), _) => Some((f64::from(w), f64::from(h))),
        (None, Some(_)) => None,
        (None, None) => match frame.units {
            Units::Pixels => Some(view),
            Units::Normalized => {
                pic.notes
                    .push("Image size unknown; the placeholder is 4:3.".into());
                Some((4.0, 3.0))
            }
        },
    };
    let display = aspect.map(|(w, h)| {
        let scale = (MAX_W / w).min(MAX_H / h);
        let px = |v: f64| (v * scale).round().clamp(16.0, MAX_H) as u32;
        (px(w), px(h))
    });
    Geometry { view, display }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn change(kind: ObjectChangeKind, before: Option<BBox>, after: Option<BBox>) -> ObjectChange {
        ObjectChange {
            kind,
            class: "cat".into(),
            old_class: None,
            before,
            after,
            iou: None,
            id: None,
            attributes: BTreeMap::new(),
            box_changed: false,
            shape: "box",
        }
    }

    fn b(x: f64, y: f64, w: f64, h: f64) -> Option<BBox> {
        Some(BBox { x, y, w, h })
    }

    fn frame(units: Units, size: Option<(u32, u32)>) -> FrameObjects {
        FrameObjects {
            frame: "f.jpg".into(),
            frame_path: Some("images/f.jpg".into()),
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            units,
            objects_before: 0,
            objects_after: 0,
            changes: Vec::new(),
            class_counts: BTreeMap::new(),
            unchanged: Vec::new(),
        }
    }

    fn no_picture() -> Picture {
        Picture {
            image: None,
            size: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn num_is_the_shortest_form_with_at_most_6_decimals() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.0000001), "0");
        assert_eq!(num(15.0), "15");
        assert_eq!(num(0.15), "0.15");
        assert_eq!(num(1.0 / 3.0), "0.333333");
        assert_eq!(num(-2.5), "-2.5");
    }

    #[test]
    fn new_boxes_come_first_and_old_boxes_last() {
        let changes = [
            change(ObjectChangeKind::Removed, b(1.0, 1.0, 1.0, 1.0), None),
            change(
                ObjectChangeKind::Moved,
                b(0.0, 0.0, 1.0, 1.0),
                b(2.0, 0.0, 1.0, 1.0),
            ),
            change(ObjectChangeKind::Added, None, b(3.0, 3.0, 1.0, 1.0)),
        ];
        let roles: Vec<(Role, bool)> = drawn_boxes(&changes)
            .iter()
            .map(|d| (d.role, d.tag.is_some()))
            .collect();
        assert_eq!(
            roles,
            [
                (Role::After, true),
                (Role::After, true),
                (Role::Before, true),
                (Role::Before, true)
            ]
        );
    }

    #[test]
    fn negative_sizes_are_flipped_and_non_finite_boxes_dropped() {
        let changes = [
            change(ObjectChangeKind::Added, None, b(5.0, 5.0, -2.0, -3.0)),
            change(ObjectChangeKind::Added, None, b(f64::NAN, 0.0, 1.0, 1.0)),
        ];
        let drawn = drawn_boxes(&changes);
        assert_eq!(drawn.len(), 1);
        let d = drawn[0].bbox;
        assert_eq!((d.x, d.y, d.w, d.h), (3.0, 2.0, 2.0, 3.0));
    }

    #[test]
    fn geometry_prefers_the_image_size_and_notes_a_mismatch() {
        let mut pic = no_picture();
        pic.size = Some((300, 150));
        let geo = geometry(&frame(Units::Pixels, Some((200, 100))), &[], &mut pic);
        assert_eq!(geo.view, (200.0, 100.0));
        assert_eq!(geo.display, Some((480, 240)));
        assert!(pic.notes[0].contains("says the image is 200×100, the image is 300×150"));
    }

    #[test]
    fn geometry_without_any_size_uses_the_boxes_extent_or_4_by_3() {
        let changes = [change(
            ObjectChangeKind::Added,
            None,
            b(0.0, 0.0, 100.0, 50.0),
        )];
        let drawn = drawn_boxes(&changes);
        let mut pic = no_picture();
        let geo = geometry(&frame(Units::Pixels, None), &drawn, &mut pic);
        assert_eq!(geo.view, (105.0, 52.5));
        assert_eq!(geo.display, Some((480, 240)));
        let mut pic = no_picture();
        let geo = geometry(&frame(Units::Normalized, None), &drawn, &mut pic);
        assert_eq!((geo.view, geo.display), ((1.0, 1.0), Some((480, 360))));
        assert_eq!(pic.notes, ["Image size unknown; the placeholder is 4:3."]);
    }
}
