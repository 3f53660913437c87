//! The HTML review page: one self-contained file (inline CSS, images as data
//! URIs, no script) that a reviewer can open from a CI artifact or an e-mail.
//!
//! Every changed frame gets a card with its image and the old boxes (red,
//! dashed) and new boxes (green, solid) drawn over it in an SVG overlay whose
//! `viewBox` is the label's coordinate space, so boxes line up with the image
//! whatever size it is displayed at. Class tags are HTML, not SVG text, because
//! the overlay is stretched non-uniformly (`preserveAspectRatio="none"`) and
//! SVG text would be distorted.
//!
//! Everything that comes from the data (class names, paths, attribute values,
//! messages) is user-controlled. The page is written by `maud` templates, which
//! escape every value they interpolate; the only text written unescaped is the
//! stylesheet (`review.css`), the page's skeleton tags and base64.
//!
//! The page is written section by section and card by card, so its size in
//! memory is one card's, not the page's.

mod card;
mod draw;

use std::io::{self, Write};

use maud::{Markup, PreEscaped, html};

use super::{Side, short};
use crate::labels::compare::ObjectChangeKind;
use crate::ops::label_diff::{DatasetDiff, FrameObjects, LabelFileDiff};

/// Paths per frame-file list before the rest is only counted.
const MAX_LISTED: usize = 1000;

/// The page's stylesheet, inlined so the page is one file.
const CSS: &str = include_str!("review.css");

/// Renders the review page.
pub fn render(
    diff: &DatasetDiff,
    frame_bytes: &dyn Fn(&str, Side) -> Option<Vec<u8>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    // The skeleton stays open across sections written one at a time.
    out.write_all(b"<!DOCTYPE html>\n<html lang=\"en\">\n")?;
    emit(out, head(diff))?;
    out.write_all(b"<body>\n<main>\n")?;
    emit(out, heading(diff))?;
    emit(out, totals(diff))?;
    emit(out, classes(diff))?;
    emit(out, frame_attributes(diff))?;
    emit(out, warnings(diff))?;
    emit(out, frame_files(diff))?;
    card::write_cards(out, diff, frame_bytes)?;
    out.write_all(b"</main>\n</body>\n</html>\n")
}

/// Writes one rendered piece of the page on its own line.
fn emit(out: &mut dyn Write, m: Markup) -> io::Result<()> {
    if m.0.is_empty() {
        return Ok(());
    }
    out.write_all(m.0.as_bytes())?;
    out.write_all(b"\n")
}

fn head(diff: &DatasetDiff) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="generator" content="dsv";
            title { "dsv diff " (short(&diff.from)) " → " (short(&diff.to)) }
            style { (PreEscaped(CSS)) }
        }
    }
}

fn heading(diff: &DatasetDiff) -> Markup {
    html! {
        h1 {
            "Dataset diff "
            code title=(diff.from) { (short(&diff.from)) }
            " → "
            code title=(diff.to) { (short(&diff.to)) }
        }
    }
}

fn totals(diff: &DatasetDiff) -> Markup {
    let f = &diff.frames;
    let frames_with_changes = changed_frames(diff).count();
    let stats: [(&str, usize); 12] = [
        ("frames added", f.added.len()),
        ("frames removed", f.removed.len()),
        ("frames modified", f.modified.len()),
        ("frames renamed", f.renamed.len()),
        ("label files changed", diff.labels.len()),
        ("frames with object changes", frames_with_changes),
        ("objects added", diff.count(ObjectChangeKind::Added)),
        ("objects removed", diff.count(ObjectChangeKind::Removed)),
        ("objects moved", diff.count(ObjectChangeKind::Moved)),
        (
            "objects reclassified",
            diff.count(ObjectChangeKind::Reclassified),
        ),
        (
            "objects with attribute changes",
            diff.count(ObjectChangeKind::Attributes),
        ),
        (
            "frames with attribute changes",
            diff.frame_attribute_totals.frames,
        ),
    ];
    html! {
        h2 { "Totals" }
        div class="totals" {
            @for (what, n) in stats {
                div class="stat" { b { (n) } " " (what) }
            }
        }
    }
}

/// A delta for people (`+3`, `−2`, `0`) and the class that colours it.
fn signed(v: i64) -> (String, &'static str) {
    match v {
        0 => ("0".into(), ""),
        v if v > 0 => (format!("+{v}"), "pos"),
        v => (format!("−{}", v.unsigned_abs()), "neg"),
    }
}

fn classes(diff: &DatasetDiff) -> Markup {
    if diff.classes.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Classes " span class="note" { "(objects in the changed frames)" } }
        table class="classes" {
            tr {
                th class="l" { "class" } th { "before" } th { "after" } th { "delta" }
                th { "added" } th { "removed" } th { "moved" } th { "reclassified in" }
                th { "reclassified out" } th { "attributes" }
            }
            @for c in &diff.classes {
                @let (delta, cls) = signed(c.delta);
                tr {
                    td class="l" { (c.class) } td { (c.before) } td { (c.after) }
                    td class=(cls) { (delta) }
                    td { (c.added) } td { (c.removed) } td { (c.moved) }
                    td { (c.reclassified_in) } td { (c.reclassified_out) } td { (c.attributes) }
                }
            }
        }
    }
}

/// The per-value totals and the per-frame list of frame attribute changes.
fn frame_attributes(diff: &DatasetDiff) -> Markup {
    use crate::report::text::{attribute_kind_style, attribute_value};
    let t = &diff.frame_attribute_totals;
    if t.is_empty() {
        return html! {};
    }
    let n = diff.frame_attributes.len();
    html! {
        h2 {
            "Frame attributes "
            span class="note" {
                "(" (t.added) " added, " (t.removed) " removed, " (t.changed)
                " changed; frames with each value, where the attribute changed)"
            }
        }
        table class="attributes" {
            tr {
                th class="l" { "attribute" } th class="l" { "value" }
                th { "before" } th { "after" } th { "delta" }
            }
            @for v in &t.values {
                @let (delta, cls) = signed(v.delta);
                tr {
                    td class="l" { (v.attribute) } td class="l" { (v.value) }
                    td { (v.before) } td { (v.after) } td class=(cls) { (delta) }
                }
            }
        }
        details open {
            summary { "Frame attribute changes by frame (" (n) ")" }
            table class="frame-attributes" {
                tr {
                    th class="l" { "frame" } th class="l" { "file" }
                    th class="l" { "attribute" } th class="l" { "change" } th class="l" { "before" }
                    th class="l" { "after" }
                }
                @for f in diff.frame_attributes.iter().take(MAX_LISTED) {
                    @for c in &f.changes {
                        tr {
                            td class="l" { (f.frame) } td class="l" { (f.file) }
                            td class="l" { (c.attribute) }
                            td class="l" { (attribute_kind_style(c.kind).2) }
                            td class="l" { (attribute_value(&c.before)) }
                            td class="l" { (attribute_value(&c.after)) }
                        }
                    }
                }
            }
            @if n > MAX_LISTED {
                p class="note" {
                    (n - MAX_LISTED) " more frames with attribute changes are not listed; run "
                    code { "dsv diff" } " for all of them."
                }
            }
        }
    }
}

fn warnings(diff: &DatasetDiff) -> Markup {
    if diff.warnings.is_empty() {
        return html! {};
    }
    html! {
        h2 {
            "Warnings "
            span class="note" { "(label files shown at file level only because they did not parse)" }
        }
        ul class="warnings" {
            @for w in &diff.warnings {
                li { (w.to_string()) }
            }
        }
    }
}

/// A folded list of paths, the first [`MAX_LISTED`] of them shown.
fn list(title: &str, items: impl ExactSizeIterator<Item = String>) -> Markup {
    let n = items.len();
    if n == 0 {
        return html! {};
    }
    html! {
        details {
            summary { (title) " (" (n) ")" }
            ul {
                @for item in items.take(MAX_LISTED) {
                    li { (item) }
                }
                @if n > MAX_LISTED {
                    li { "… and " (n - MAX_LISTED) " more" }
                }
            }
        }
    }
}

fn frame_files(diff: &DatasetDiff) -> Markup {
    let f = &diff.frames;
    if f.added.is_empty() && f.removed.is_empty() && f.modified.is_empty() && f.renamed.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Frame files" }
        (list("added", f.added.iter().cloned()))
        (list("removed", f.removed.iter().cloned()))
        (list("modified", f.modified.iter().cloned()))
        (list("renamed", f.renamed.iter().map(|r| format!("{} → {}", r.from, r.to))))
    }
}

/// The frames with object changes, with the label file each is in.
fn changed_frames(diff: &DatasetDiff) -> impl Iterator<Item = (&LabelFileDiff, &FrameObjects)> {
    diff.labels
        .iter()
        .flat_map(|l| l.frames.iter().map(move |f| (l, f)))
        .filter(|(_, f)| !f.changes.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::labels::Format;
    use crate::labels::compare::ObjectChange;
    use crate::labels::{BBox, Units};
    use crate::object::diff::ChangeKind;
    use crate::ops::label_diff::{ClassDelta, FrameChanges, SCHEMA};
    use card::MAX_CARDS;

    fn change(
        kind: ObjectChangeKind,
        class: &str,
        before: Option<BBox>,
        after: Option<BBox>,
    ) -> ObjectChange {
        ObjectChange {
            kind,
            class: class.into(),
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

    fn frame(units: Units, size: Option<(u32, u32)>, changes: Vec<ObjectChange>) -> FrameObjects {
        FrameObjects {
            frame: "f.jpg".into(),
            frame_path: Some("images/f.jpg".into()),
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            units,
            objects_before: 0,
            objects_after: 0,
            changes,
            class_counts: BTreeMap::new(),
        }
    }

    fn diff_of(frames: Vec<FrameObjects>, classes: Vec<ClassDelta>) -> DatasetDiff {
        DatasetDiff {
            schema: SCHEMA,
            from: "a".repeat(64),
            to: "worktree".into(),
            frames: FrameChanges::default(),
            labels: vec![LabelFileDiff {
                path: "labels/f.txt".into(),
                from: None,
                format: Format::Yolo,
                kind: ChangeKind::Modified,
                frames,
            }],
            classes,
            warnings: Vec::new(),
            invalid_boxes: Vec::new(),
            frame_attributes: Vec::new(),
            frame_attribute_totals: Default::default(),
            prediction_changes: Vec::new(),
            prediction_totals: Default::default(),
            files: Vec::new(),
        }
    }

    fn page(diff: &DatasetDiff, bytes: Option<Vec<u8>>) -> String {
        let mut out = Vec::new();
        render(diff, &|_, _| bytes.clone(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn b(x: f64, y: f64, w: f64, h: f64) -> Option<BBox> {
        Some(BBox { x, y, w, h })
    }

    #[test]
    fn escapes_class_names_and_paths() {
        let mut f = frame(
            Units::Pixels,
            Some((100, 100)),
            vec![change(
                ObjectChangeKind::Added,
                "<script>",
                None,
                b(1.0, 1.0, 5.0, 5.0),
            )],
        );
        f.frame_path = Some("a\"b<img src=x>.jpg".into());
        let classes = vec![ClassDelta {
            class: "<script>".into(),
            after: 1,
            delta: 1,
            added: 1,
            ..ClassDelta::default()
        }];
        let html = page(&diff_of(vec![f], classes), None);
        assert!(!html.contains("<script>"), "unescaped class name in page");
        assert!(!html.contains("<img src=x>"), "unescaped path in page");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("data-class=\"&lt;script&gt;\""));
        assert!(html.contains("a&quot;b&lt;img src=x&gt;.jpg"));
    }

    #[test]
    fn escapes_diff_sides_attribute_values_ids_and_frame_names() {
        let mut c = change(
            ObjectChangeKind::Attributes,
            "cat",
            b(1.0, 1.0, 5.0, 5.0),
            b(1.0, 1.0, 5.0, 5.0),
        );
        c.id = Some("<i>7".into());
        c.attributes.insert(
            "occluded\"<".into(),
            crate::labels::compare::AttrChange {
                before: None,
                after: Some(crate::labels::AttrValue::Str("</td><b>".into())),
            },
        );
        let mut f = frame(Units::Pixels, Some((100, 100)), vec![c]);
        f.frame_path = None;
        f.frame = "x<y>\"z".into();
        let mut d = diff_of(vec![f], vec![]);
        d.from = "main\"><script>".into();
        let html = page(&d, None);
        assert!(!html.contains("<script>"), "unescaped diff side");
        assert!(html.contains("title=\"main&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("<span class=\"note\">#&lt;i&gt;7</span>"));
        assert!(html.contains("occluded&quot;&lt;: — → &lt;/td&gt;&lt;b&gt;"));
        assert!(html.contains("names it “x&lt;y&gt;&quot;z”"));
    }

    #[test]
    fn frame_file_lists_stop_at_max_listed_and_escape_renames() {
        let mut d = diff_of(vec![], vec![]);
        d.frames.added = (0..MAX_LISTED + 2).map(|i| format!("a/{i}.jpg")).collect();
        d.frames.renamed = vec![crate::ops::label_diff::Renamed {
            from: "<old>.jpg".into(),
            to: "new&.jpg".into(),
        }];
        let html = page(&d, None);
        assert!(html.contains(&format!("<summary>added ({})</summary>", MAX_LISTED + 2)));
        assert_eq!(count(&html, "<li>a/"), MAX_LISTED);
        assert!(html.contains("<li>… and 2 more</li>"));
        assert!(html.contains("<li>&lt;old&gt;.jpg → new&amp;.jpg</li>"));
        assert!(
            !html.contains("<summary>removed"),
            "empty lists are left out"
        );
    }

    #[test]
    fn deltas_are_signed_with_a_true_minus() {
        assert_eq!(signed(0), ("0".to_string(), ""));
        assert_eq!(signed(3), ("+3".to_string(), "pos"));
        assert_eq!(signed(-2), ("−2".to_string(), "neg"));
    }

    fn count(html: &str, needle: &str) -> usize {
        html.matches(needle).count()
    }

    #[test]
    fn normalized_frame_draws_each_box_in_unit_space() {
        let mut reclass = change(
            ObjectChangeKind::Reclassified,
            "truck",
            b(0.5, 0.5, 0.2, 0.2),
            b(0.5, 0.5, 0.2, 0.2),
        );
        reclass.old_class = Some("car".into());
        let changes = vec![
            change(ObjectChangeKind::Added, "cat", None, b(0.1, 0.1, 0.2, 0.2)),
            change(
                ObjectChangeKind::Removed,
                "dog",
                b(0.6, 0.1, 0.2, 0.2),
                None,
            ),
            change(
                ObjectChangeKind::Moved,
                "cat",
                b(0.1, 0.6, 0.2, 0.2),
                b(0.15, 0.6, 0.2, 0.2),
            ),
            reclass,
        ];
        let html = page(
            &diff_of(vec![frame(Units::Normalized, None, changes)], vec![]),
            None,
        );
        assert_eq!(count(&html, "class=\"box before\""), 2);
        assert_eq!(count(&html, "class=\"box after\""), 3);
        assert!(html.contains("viewBox=\"0 0 1 1\""));
        assert!(html.contains("car → truck"));
        assert!(html.contains("x=\"0.15\""));
        assert!(html.contains("could not be read"));
    }

    #[test]
    fn pixel_frame_uses_image_size_from_header() {
        let mut moved = change(
            ObjectChangeKind::Moved,
            "cat",
            b(1.0, 1.0, 4.0, 4.0),
            b(2.0, 1.0, 4.0, 4.0),
        );
        moved.iou = Some(0.6);
        let changes = vec![
            moved,
            change(
                ObjectChangeKind::Removed,
                "dog",
                b(8.0, 2.0, 3.0, 3.0),
                None,
            ),
            change(
                ObjectChangeKind::Attributes,
                "dog",
                b(0.0, 0.0, 2.0, 2.0),
                b(0.0, 0.0, 2.0, 2.0),
            ),
        ];
        let jpeg = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/demo/images/frame_000.jpg"),
        )
        .unwrap();
        let html = page(
            &diff_of(vec![frame(Units::Pixels, None, changes)], vec![]),
            Some(jpeg),
        );
        assert_eq!(count(&html, "class=\"box before\""), 2);
        assert_eq!(count(&html, "class=\"box after\""), 1);
        assert_eq!(count(&html, "class=\"box attributes\""), 1);
        assert!(html.contains("viewBox=\"0 0 15 10\""));
        assert!(html.contains("width:480px;height:320px"));
        assert!(html.contains("src=\"data:image/jpeg;base64,/9j/"));
        assert!(html.contains("<td>0.60</td>"));
    }

    #[test]
    fn pixel_frame_without_size_or_image_uses_box_extent() {
        let changes = vec![change(
            ObjectChangeKind::Added,
            "cat",
            None,
            b(0.0, 0.0, 100.0, 50.0),
        )];
        let mut f = frame(Units::Pixels, None, changes);
        f.frame_path = None;
        let html = page(&diff_of(vec![f], vec![]), None);
        assert!(html.contains("viewBox=\"0 0 105 52.5\""));
        assert!(html.contains("class=\"stage missing\""));
        assert!(html.contains("Frame file not found"));
    }

    #[test]
    fn caps_the_number_of_cards() {
        let frames: Vec<FrameObjects> = (0..MAX_CARDS + 3)
            .map(|_| {
                frame(
                    Units::Normalized,
                    None,
                    vec![change(
                        ObjectChangeKind::Added,
                        "cat",
                        None,
                        b(0.1, 0.1, 0.2, 0.2),
                    )],
                )
            })
            .collect();
        let html = page(&diff_of(frames, vec![]), None);
        assert_eq!(count(&html, "<section class=\"card\""), MAX_CARDS);
        assert!(html.contains("3 more frames with object changes are not shown"));
    }
}
