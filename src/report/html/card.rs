//! The "Changed frames" section: one card per frame with object changes, its
//! picture read through the caller's frame reader, the boxes drawn over it and
//! the table of its changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Write};
use std::path::PathBuf;

use base64::Engine as _;
use maud::{Markup, Render, html};

use super::draw::{self, Drawn, Geometry, Picture, Source};
use super::{FrameReader, changed_frames, emit};
use crate::labels::compare::ObjectChangeKind;
use crate::labels::{AttrValue, Units};
use crate::ops::label_diff::{DatasetDiff, FrameObjects, LabelFileDiff};
use crate::report::Side;

/// Frame cards beyond this many are only counted in the single-file page, so
/// it stays openable; the folder review has no such limit.
pub(super) const MAX_CARDS: usize = 500;
/// Rows of one frame's change table beyond this many are only counted.
const MAX_ROWS: usize = 200;
/// Class tags beyond this many boxes would hide the image; tooltips remain.
const MAX_TAGS: usize = 60;
/// Larger images are not embedded (a data URI that size makes browsers crawl).
const MAX_IMAGE_BYTES: usize = 16 << 20;
/// Total image bytes embedded in one page.
const MAX_TOTAL_IMAGE_BYTES: usize = 512 << 20;
/// Cards of a page whose images load at once; later ones load as they near
/// the screen, so a page paints before its last image is read.
pub(super) const EAGER_IMAGES: usize = 4;

/// Where a card's image goes.
pub(super) enum Images {
    /// Into the page as a data URI, up to [`MAX_TOTAL_IMAGE_BYTES`] in all.
    Inline { embedded: usize },
    /// Into a folder beside the pages, one file per distinct image, named by
    /// its hash (so no name from the data reaches the file system).
    Folder {
        dir: PathBuf,
        /// The folder as the pages refer to it (`../img/`).
        url: &'static str,
        written: HashSet<String>,
        bytes: u64,
    },
}

/// What the cards share: the frame reader, and lookups into the frame-file changes.
pub(super) struct Cards<'a> {
    frame_bytes: FrameReader<'a>,
    /// New path → old path, so a renamed frame can still be read on the old side.
    renamed_from: HashMap<&'a str, &'a str>,
    modified: HashSet<&'a str>,
    pub(super) images: Images,
}

impl<'a> Cards<'a> {
    /// Cards for the frames of `diff`, their images going to `images`.
    pub(super) fn new(diff: &'a DatasetDiff, frame_bytes: FrameReader<'a>, images: Images) -> Self {
        Cards {
            frame_bytes,
            renamed_from: diff
                .frames
                .renamed
                .iter()
                .map(|r| (r.to.as_str(), r.from.as_str()))
                .collect(),
            modified: diff.frames.modified.iter().map(String::as_str).collect(),
            images,
        }
    }
}

/// The classes a frame's changes are about (old and new class of a
/// reclassified object), which the class filter matches.
pub(super) fn frame_classes(frame: &FrameObjects) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for c in &frame.changes {
        out.insert(c.class.as_str());
        if let Some(old) = &c.old_class {
            out.insert(old.as_str());
        }
    }
    out
}

/// Writes the section of the single-file page: heading, legend, then each
/// card as it is rendered, up to [`MAX_CARDS`].
pub(super) fn write_cards(
    out: &mut dyn Write,
    diff: &DatasetDiff,
    frame_bytes: FrameReader,
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
                (preamble(units))
            }
        },
    )?;
    if total == 0 {
        return Ok(());
    }
    let mut cards = Cards::new(diff, frame_bytes, Images::Inline { embedded: 0 });
    for (i, (label, frame)) in changed_frames(diff).take(MAX_CARDS).enumerate() {
        emit(out, card(&mut cards, i, i, label, frame)?)?;
    }
    if total > MAX_CARDS {
        emit(
            out,
            html! {
                p class="note" {
                    (total - MAX_CARDS) " more frames with object changes are not shown (the page shows the first "
                    (MAX_CARDS) "); write the review as a folder with every frame, "
                    code { "dsv diff --format html -o DIR/" } ", or use "
                    code { "dsv diff --format json" } "."
                }
            },
        )?;
    }
    Ok(())
}

/// The legend and the note on units, above the cards of a page.
pub(super) fn preamble(units: impl Iterator<Item = Units>) -> Markup {
    html! {
        (legend())
        p class="note" {
            "Boxes: (x, y) is the top-left corner, w×h the size; "
            (crate::labels::units_words(units)) "."
        }
    }
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
            span { (swatch("before")) " " b { "old" } " box, dashed, labelled below (removed, or where a moved object was)" }
            span { (swatch("after")) " " b { "new" } " box, solid, labelled above (added, moved to, reclassified)" }
            span { (swatch("attributes")) " " b { "attr" } ": attributes changed, box unchanged" }
            span class="ctx-legend" { (swatch("same")) " unchanged object, for context" }
            span { "reclassified objects are tagged " i { "old → new" } }
        }
    }
}

impl Cards<'_> {
    /// Reads the frame's image (the new version, else the old one) and puts
    /// it where the images go.
    fn picture(&mut self, frame: &FrameObjects) -> io::Result<Picture> {
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
            return Ok(missing(notes));
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
            return Ok(missing(notes));
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
            return Ok(missing(notes));
        };
        let size = crate::image::size(&bytes);
        let not_embedded = |notes: Vec<String>| Picture {
            image: None,
            size,
            notes,
        };
        match &mut self.images {
            Images::Inline { embedded } => {
                if bytes.len() > MAX_IMAGE_BYTES {
                    notes.push(format!(
                        "Image not embedded: {:.1} MiB is more than the {} MiB a card embeds.",
                        bytes.len() as f64 / (1u64 << 20) as f64,
                        MAX_IMAGE_BYTES >> 20
                    ));
                    return Ok(not_embedded(notes));
                }
                if *embedded + bytes.len() > MAX_TOTAL_IMAGE_BYTES {
                    notes.push(format!(
                        "Image not embedded: the page already holds {} MiB of images.",
                        *embedded >> 20
                    ));
                    return Ok(not_embedded(notes));
                }
                *embedded += bytes.len();
                Ok(Picture {
                    image: Some(Source::Data(format, bytes)),
                    size,
                    notes,
                })
            }
            Images::Folder {
                dir,
                url,
                written,
                bytes: total,
            } => {
                let name = format!(
                    "{}.{}",
                    &blake3::hash(&bytes).to_hex()[..32],
                    extension(format)
                );
                if !written.contains(&name) {
                    let file = dir.join(&name);
                    std::fs::write(&file, &bytes).map_err(|e| {
                        io::Error::new(e.kind(), format!("writing {}: {e}", file.display()))
                    })?;
                    *total += bytes.len() as u64;
                    written.insert(name.clone());
                }
                Ok(Picture {
                    image: Some(Source::Url(format!("{url}{name}"))),
                    size,
                    notes,
                })
            }
        }
    }
}

/// The file name extension of an image format, for images written beside the pages.
fn extension(format: crate::image::ImageFormat) -> &'static str {
    use crate::image::ImageFormat;
    match format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Gif => "gif",
        ImageFormat::Webp => "webp",
        ImageFormat::Bmp => "bmp",
    }
}

/// One frame's card; `index` numbers it over the whole review (its anchor is
/// `frame-INDEX`), `position` on its page.
pub(super) fn card(
    cards: &mut Cards,
    index: usize,
    position: usize,
    label: &LabelFileDiff,
    frame: &FrameObjects,
) -> io::Result<Markup> {
    let drawn = draw::drawn_boxes(&frame.changes);
    let mut pic = cards.picture(frame)?;
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
    let classes: Vec<&str> = frame_classes(frame).into_iter().collect();
    let lazy = position >= EAGER_IMAGES;
    Ok(html! {
        section class="card" id={ "frame-" (index) } data-classes=(classes.join("\n")) {
            h3 { a class="anchor" href={ "#frame-" (index) } { "#" (index + 1) } " " (title) }
            div class="meta" {
                "labels: " (label.path) " (" (label.format.name()) ") · objects "
                (frame.objects_before) " → " (frame.objects_after) " · " (summary.join(", "))
                @if !frame.unchanged.is_empty() {
                    " · " (frame.unchanged.len()) " unchanged drawn for context"
                }
            }
            div class="body" {
                div class="pic" {
                    (stage(frame, &drawn, &pic, &geo, lazy))
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
    })
}

/// Image bytes as the base64 of a data URI: its alphabet (`A-Za-z0-9+/=`) has
/// nothing to escape.
struct Base64<'a>(&'a [u8]);

impl Render for Base64<'_> {
    fn render_to(&self, buffer: &mut String) {
        base64::engine::general_purpose::STANDARD.encode_string(self.0, buffer);
    }
}

/// The word on a box's tag that says which box it is, so old and new are
/// told apart without their colours.
fn role_word(role: draw::Role) -> &'static str {
    match role {
        draw::Role::Before => "old",
        draw::Role::After => "new",
        draw::Role::Attributes => "attr",
    }
}

/// The picture, or a placeholder, with the boxes' overlay and the class tags:
/// unchanged objects first (faint, under the rest), new boxes, old boxes last.
fn stage(
    frame: &FrameObjects,
    drawn: &[Drawn],
    pic: &Picture,
    geo: &Geometry,
    lazy: bool,
) -> Markup {
    let class = match (&pic.image, geo.display) {
        (None, _) => "stage missing",
        (Some(_), None) => "stage natural",
        (Some(_), Some(_)) => "stage",
    };
    let (vw, vh) = geo.view;
    let style = geo.display.map(|(w, h)| {
        format!(
            "width:{w}px;height:{h}px;--ar:{}",
            draw::num(f64::from(w) / f64::from(h))
        )
    });
    // Tags of unchanged objects give way first.
    let tags = drawn.len() <= MAX_TAGS;
    let context_tags = drawn.len() + frame.unchanged.len() <= MAX_TAGS;
    let pct = |v: f64, of: f64| (v / of * 100.0).clamp(0.0, 100.0);
    html! {
        div class=(class) style=[style] title="click to zoom (z)" {
            @match &pic.image {
                Some(Source::Data(format, bytes)) => {
                    img alt="frame" src={ "data:" (format.mime()) ";base64," (Base64(bytes)) };
                }
                Some(Source::Url(url)) => {
                    img alt="frame" src=(url) loading=[lazy.then_some("lazy")] decoding="async"
                        width=[pic.size.map(|s| s.0)] height=[pic.size.map(|s| s.1)];
                }
                None => div class="placeholder" { "image not available" }
            }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (draw::num(vw)) " " (draw::num(vh)) }
                preserveAspectRatio="none" {
                @for (class, b) in &frame.unchanged {
                    rect class="box same" data-class=(class)
                        x=(draw::num(b.x)) y=(draw::num(b.y))
                        width=(draw::num(b.w)) height=(draw::num(b.h))
                        vector-effect="non-scaling-stroke" {
                        title { "unchanged " (class) " " (draw::fmt_box(&Some(*b), frame.units)) }
                    }
                }
                @for d in drawn {
                    @let c = d.change;
                    @let (role, kind) = (d.role.class(), draw::kind_name(c.kind));
                    rect class={ "box " (role) } data-class=(c.class) data-kind=(kind)
                        x=(draw::num(d.bbox.x)) y=(draw::num(d.bbox.y))
                        width=(draw::num(d.bbox.w)) height=(draw::num(d.bbox.h))
                        vector-effect="non-scaling-stroke" {
                        title {
                            (kind) " " (draw::class_label(c)) " (" (role_word(d.role)) ") "
                            (draw::fmt_box(&Some(d.bbox), frame.units))
                        }
                    }
                }
            }
            @if context_tags {
                @for (class, b) in &frame.unchanged {
                    @let (left, top) = (pct(b.x, vw).min(95.0), pct(b.y, vh));
                    span class="tag same" style=(format!("left:{left:.3}%;top:{top:.3}%")) { (class) }
                }
            }
            @if tags {
                @for d in drawn {
                    @if let Some(tag) = &d.tag {
                        @let left = pct(d.bbox.x, vw).min(95.0);
                        // New boxes are labelled above their top edge, old ones below
                        // their bottom edge, so the two labels of a moved object do
                        // not cover each other; inside the box where that would
                        // leave the picture.
                        @let (top, place) = match d.role {
                            draw::Role::Before => {
                                let bottom = pct(d.bbox.y + d.bbox.h, vh);
                                (bottom, if bottom < 94.0 { "" } else { " above" })
                            }
                            _ => {
                                let top = pct(d.bbox.y, vh);
                                (top, if top > 6.0 { " above" } else { "" })
                            }
                        };
                        span class={ "tag " (d.role.class()) (place) }
                            style=(format!("left:{left:.3}%;top:{top:.3}%")) {
                            b { (role_word(d.role)) } " " (tag)
                        }
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
