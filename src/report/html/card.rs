//! The "Changed frames" section: one card per frame with object changes, its
//! picture read through the caller's frame reader, the boxes drawn over it and
//! the table of its changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};

use base64::Engine as _;
use maud::{Markup, Render, html};

use super::draw::{self, Drawn, Geometry, Picture};
use super::{Side, changed_frames, emit};
use crate::labels::compare::ObjectChangeKind;
use crate::labels::{AttrValue, Units};
use crate::ops::label_diff::{DatasetDiff, FrameObjects, LabelFileDiff};

/// Frame cards beyond this many are only counted, so the page stays openable.
pub(super) const MAX_CARDS: usize = 500;
/// Rows of one frame's change table beyond this many are only counted.
const MAX_ROWS: usize = 200;
/// Class tags beyond this many boxes would hide the image; tooltips remain.
const MAX_TAGS: usize = 60;
/// Larger images are not embedded (a data URI that size makes browsers crawl).
const MAX_IMAGE_BYTES: usize = 16 << 20;
/// Total image bytes embedded in one page.
const MAX_TOTAL_IMAGE_BYTES: usize = 512 << 20;

/// What the cards share: the frame reader, and lookups into the frame-file changes.
struct Cards<'a> {
    frame_bytes: &'a dyn Fn(&str, Side) -> Option<Vec<u8>>,
    /// New path → old path, so a renamed frame can still be read on the old side.
    renamed_from: HashMap<&'a str, &'a str>,
    modified: HashSet<&'a str>,
    embedded: usize,
}

/// Writes the section: heading, legend, then each card as it is rendered.
pub(super) fn write_cards(
    out: &mut dyn Write,
    diff: &DatasetDiff,
    frame_bytes: &dyn Fn(&str, Side) -> Option<Vec<u8>>,
) -> io::Result<()> {
    let total = changed_frames(diff).count();
    let units = changed_frames(diff).map(|(_, f)| f.units);
    emit(
        out,
        html! {
            h2 { "Changed frames (" (total) ")" }
            @if total == 0 {
                p class="note" { "No object changes." }
            } @else {
                (legend())
                p class="note" {
                    "Boxes: (x, y) is the top-left corner, w×h the size; "
                    (crate::labels::units_words(units)) "."
                }
            }
        },
    )?;
    if total == 0 {
        return Ok(());
    }
    let mut cards = Cards {
        frame_bytes,
        renamed_from: diff
            .frames
            .renamed
            .iter()
            .map(|r| (r.to.as_str(), r.from.as_str()))
            .collect(),
        modified: diff.frames.modified.iter().map(String::as_str).collect(),
        embedded: 0,
    };
    for (i, (label, frame)) in changed_frames(diff).take(MAX_CARDS).enumerate() {
        emit(out, card(&mut cards, i, label, frame))?;
    }
    if total > MAX_CARDS {
        emit(
            out,
            html! {
                p class="note" {
                    (total - MAX_CARDS) " more frames with object changes are not shown (the page shows the first "
                    (MAX_CARDS) "); use " code { "dsv diff --format json" } " for all of them."
                }
            },
        )?;
    }
    Ok(())
}

fn legend() -> Markup {
    let swatch = |class: &str| {
        html! {
            svg width="30" height="12" aria-hidden="true" {
                line class={ "swatch " (class) } x1="1" y1="6" x2="29" y2="6" {}
            }
        }
    };
    html! {
        div class="legend" {
            span { (swatch("before")) " old box (removed, or where a moved object was)" }
            span { (swatch("after")) " new box (added, moved to, reclassified)" }
            span { (swatch("attributes")) " attributes changed, box unchanged" }
            span { "reclassified objects are tagged " i { "old → new" } }
        }
    }
}

impl Cards<'_> {
    /// Reads the frame's image (the new version, else the old one) and decides
    /// whether it is embedded.
    fn picture(&mut self, frame: &FrameObjects) -> Picture {
        let mut notes = Vec::new();
        let missing = |notes: Vec<String>| Picture {
            image: None,
            size: None,
            notes,
        };
        let Some(path) = frame.frame_path.as_deref() else {
            notes.push(format!(
                "Frame file not found (the label file names it “{}”); boxes are drawn on a placeholder.",
                frame.frame
            ));
            return missing(notes);
        };
        let read = match (self.frame_bytes)(path, Side::After) {
            Some(b) => Some((b, Side::After)),
            None => {
                let old = self.renamed_from.get(path).copied().unwrap_or(path);
                (self.frame_bytes)(old, Side::Before).map(|b| (b, Side::Before))
            }
        };
        let Some((bytes, side)) = read else {
            notes.push(format!(
                "Frame file {path} could not be read in either version; boxes are drawn on a placeholder."
            ));
            return missing(notes);
        };
        if side == Side::Before {
            notes.push(
                "Showing the old version of the image (the frame is not in the new one).".into(),
            );
        } else if self.modified.contains(path) {
            notes.push("The image itself changed in this diff; showing the new version.".into());
        }
        let Some(format) = crate::image::format(&bytes) else {
            notes.push(format!(
                "{path} is not a PNG, JPEG, GIF, WebP or BMP image; boxes are drawn on a placeholder."
            ));
            return missing(notes);
        };
        let size = crate::image::size(&bytes);
        if bytes.len() > MAX_IMAGE_BYTES {
            notes.push(format!(
                "Image not embedded: {:.1} MiB is more than the {} MiB a card embeds.",
                bytes.len() as f64 / (1u64 << 20) as f64,
                MAX_IMAGE_BYTES >> 20
            ));
            return Picture {
                image: None,
                size,
                notes,
            };
        }
        if self.embedded + bytes.len() > MAX_TOTAL_IMAGE_BYTES {
            notes.push(format!(
                "Image not embedded: the page already holds {} MiB of images.",
                self.embedded >> 20
            ));
            return Picture {
                image: None,
                size,
                notes,
            };
        }
        self.embedded += bytes.len();
        Picture {
            image: Some((format, bytes)),
            size,
            notes,
        }
    }
}

fn card(cards: &mut Cards, index: usize, label: &LabelFileDiff, frame: &FrameObjects) -> Markup {
    let drawn = draw::drawn_boxes(&frame.changes);
    let mut pic = cards.picture(frame);
    let geo = draw::geometry(frame, &drawn, &mut pic);
    let title = frame.frame_path.as_deref().unwrap_or(&frame.frame);
    let mut counts: BTreeMap<ObjectChangeKind, usize> = BTreeMap::new();
    for c in &frame.changes {
        *counts.entry(c.kind).or_default() += 1;
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", draw::kind_name(*k)))
        .collect();
    html! {
        section class="card" id={ "frame-" (index) } {
            h3 { (title) }
            div class="meta" {
                "labels: " (label.path) " (" (label.format.name()) ") · objects "
                (frame.objects_before) " → " (frame.objects_after) " · " (summary.join(", "))
            }
            div class="body" {
                div class="pic" {
                    (stage(frame, &drawn, &pic, &geo))
                    @for n in &pic.notes {
                        p class="note" { (n) }
                    }
                    @if drawn.is_empty() {
                        p class="note" { "These objects have no boxes to draw." }
                    } @else if drawn.len() > MAX_TAGS {
                        p class="note" {
                            (drawn.len()) " boxes: class tags hidden, hover a box for its class."
                        }
                    }
                }
                (change_table(frame))
            }
        }
    }
}

/// Image bytes as the base64 of a data URI: its alphabet (`A-Za-z0-9+/=`) has
/// nothing to escape.
struct Base64<'a>(&'a [u8]);

impl Render for Base64<'_> {
    fn render_to(&self, buffer: &mut String) {
        base64::engine::general_purpose::STANDARD.encode_string(self.0, buffer);
    }
}

/// The picture, or a placeholder, with the boxes' overlay and the class tags.
fn stage(frame: &FrameObjects, drawn: &[Drawn], pic: &Picture, geo: &Geometry) -> Markup {
    let class = match (&pic.image, geo.display) {
        (None, _) => "stage missing",
        (Some(_), None) => "stage natural",
        (Some(_), Some(_)) => "stage",
    };
    let (vw, vh) = geo.view;
    html! {
        div class=(class) style=[geo.display.map(|(w, h)| format!("width:{w}px;height:{h}px"))] {
            @if let Some((format, bytes)) = &pic.image {
                img alt="frame" src={ "data:" (format.mime()) ";base64," (Base64(bytes)) };
            } @else {
                div class="placeholder" { "image not available" }
            }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (draw::num(vw)) " " (draw::num(vh)) }
                preserveAspectRatio="none" {
                @for d in drawn {
                    @let c = d.change;
                    @let (role, kind) = (d.role.class(), draw::kind_name(c.kind));
                    rect class={ "box " (role) } data-class=(c.class) data-kind=(kind)
                        x=(draw::num(d.bbox.x)) y=(draw::num(d.bbox.y))
                        width=(draw::num(d.bbox.w)) height=(draw::num(d.bbox.h))
                        vector-effect="non-scaling-stroke" {
                        title {
                            (kind) " " (draw::class_label(c)) " (" (role) ") "
                            (draw::fmt_box(&Some(d.bbox), frame.units))
                        }
                    }
                }
            }
            @if drawn.len() <= MAX_TAGS {
                @for d in drawn {
                    @if let Some(tag) = &d.tag {
                        @let left = (d.bbox.x / vw * 100.0).clamp(0.0, 95.0);
                        @let top = (d.bbox.y / vh * 100.0).clamp(0.0, 100.0);
                        // Above the box unless that would leave the picture.
                        @let place = if top > 6.0 { " above" } else { "" };
                        span class={ "tag " (d.role.class()) (place) }
                            style=(format!("left:{left:.3}%;top:{top:.3}%")) { (tag) }
                    }
                }
            }
        }
    }
}

fn attr_text(v: &Option<AttrValue>) -> String {
    v.as_ref()
        .map_or_else(|| "—".to_string(), |v| v.to_string())
}

fn change_table(frame: &FrameObjects) -> Markup {
    let units: Units = frame.units;
    html! {
        div class="changes" {
            table {
                tr {
                    th class="l" { "change" } th class="l" { "class" } th { "IoU" }
                    th class="l" { "before" } th class="l" { "after" } th class="l" { "attributes" }
                }
                @for c in frame.changes.iter().take(MAX_ROWS) {
                    @let kind = draw::kind_name(c.kind);
                    @let iou = c.iou.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into());
                    @let attrs: Vec<String> = c
                        .attributes
                        .iter()
                        .map(|(k, a)| format!("{k}: {} → {}", attr_text(&a.before), attr_text(&a.after)))
                        .collect();
                    tr {
                        td class={ "l kind-" (kind) } { (kind) }
                        td class="l" {
                            (draw::class_label(c))
                            @if let Some(id) = &c.id {
                                " " span class="note" { "#" (id) }
                            }
                        }
                        td { (iou) }
                        td class="l box-cell" { (draw::fmt_box(&c.before, units)) }
                        td class="l box-cell" { (draw::fmt_box(&c.after, units)) }
                        td class="l" { (attrs.join("; ")) }
                    }
                }
            }
            @if frame.changes.len() > MAX_ROWS {
                p class="note" {
                    (frame.changes.len() - MAX_ROWS) " more changes in this frame are not listed."
                }
            }
        }
    }
}
