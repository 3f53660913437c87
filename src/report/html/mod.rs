//! The HTML review: one self-contained page (inline CSS and script, images as
//! data URIs) that a reviewer can open from a CI artifact or an e-mail, or, for
//! reviews of any size, a folder that works offline from itself: a summary
//! page (`index.html`), pages of [`PAGE_FRAMES`] frame cards (`pages/`), the
//! images beside them (`img/`, loaded as they near the screen), one stylesheet
//! and one script.
//!
//! Every changed frame gets a card with its image and the old boxes (red,
//! dashed, labelled "old" below the box) and new boxes (green, solid, labelled
//! "new" above it) drawn over it, and the unchanged objects faint, for context,
//! in an SVG overlay whose `viewBox` is the label's coordinate space, so boxes
//! line up with the image whatever size it is displayed at. Class tags are
//! HTML, not SVG text, because the overlay is stretched non-uniformly
//! (`preserveAspectRatio="none"`) and SVG text would be distorted.
//!
//! The script (`review.js`, small, no library) adds the context toggle, the
//! class filter, click-to-zoom and keyboard navigation; without it the page is
//! still complete, every card shown.
//!
//! Everything that comes from the data (class names, paths, attribute values,
//! messages) is user-controlled. Pages are written by `maud` templates, which
//! escape every value they interpolate; the only text written unescaped is the
//! stylesheet and script (constants), the page's skeleton tags, base64, and the
//! class index of a folder review (`classes.js`, JSON from `serde_json`). No
//! file name comes from the data: images are named by their hash.
//!
//! Pages are written section by section and card by card, so memory holds one
//! card, not a page.

mod card;
mod draw;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use maud::{Markup, PreEscaped, html};

use super::{Side, short};
use crate::labels::compare::ObjectChangeKind;
use crate::ops::label_diff::{ClassDelta, DatasetDiff, FrameObjects, LabelFileDiff};

/// Reads a frame file's bytes on one side of the diff, `None` when it cannot.
pub type FrameReader<'a> = &'a dyn Fn(&str, Side) -> Option<Vec<u8>>;

/// Paths per frame-file list before the rest is only counted.
const MAX_LISTED: usize = 1000;
/// Frames in the summary's list of the largest changes.
const LARGEST: usize = 20;
/// Frame cards per page of a folder review: a page of thumbnails a browser
/// lays out at once, and a class filter that still has something to show.
pub const PAGE_FRAMES: usize = 100;

/// The stylesheet, inlined in the single page, a file in a folder review.
const CSS: &str = include_str!("review.css");
/// The script, inlined in the single page, a file in a folder review.
const JS: &str = include_str!("review.js");

/// Renders the review as one self-contained page (at most the first
/// [`card::MAX_CARDS`] frames drawn).
pub fn render(diff: &DatasetDiff, frame_bytes: FrameReader, out: &mut dyn Write) -> io::Result<()> {
    let counts = ClassFrames::of(diff);
    // The skeleton stays open across sections written one at a time.
    out.write_all(b"<!DOCTYPE html>\n<html lang=\"en\">\n")?;
    emit(out, head(diff, None, Style::Inline))?;
    out.write_all(b"<body>\n<main>\n")?;
    emit(out, heading(diff))?;
    emit(out, summary(diff, &counts, &Links::Single))?;
    emit(out, toolbar(&counts))?;
    card::write_cards(out, diff, frame_bytes)?;
    out.write_all(b"</main>\n")?;
    emit(out, html! { script { (PreEscaped(JS)) } })?;
    out.write_all(b"</body>\n</html>\n")
}

/// What a folder review holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderReview {
    /// Pages of frame cards.
    pub pages: usize,
    /// Frames with object changes, each on one page.
    pub frames: usize,
    /// Distinct images written to `img/`.
    pub images: usize,
    /// Bytes of those images.
    pub image_bytes: u64,
    /// Bytes of the HTML, stylesheet and scripts.
    pub page_bytes: u64,
}

/// Writes the review as a folder: `index.html` (the summary: totals, classes
/// with the largest deltas first, the largest changes, the commit ids, links
/// to the pages), `pages/NNNN.html` with [`PAGE_FRAMES`] frames each,
/// `img/` with each distinct image once, `review.css`, `review.js` and
/// `classes.js`. `dir` is created if needed; its `pages/` and `img/` are
/// replaced, nothing else in it is touched.
pub fn render_folder(
    diff: &DatasetDiff,
    frame_bytes: FrameReader,
    dir: &Path,
) -> io::Result<FolderReview> {
    let counts = ClassFrames::of(diff);
    let total = changed_frames(diff).count();
    let pages = total.div_ceil(PAGE_FRAMES);
    let (pages_dir, img_dir) = (dir.join("pages"), dir.join("img"));
    for d in [&pages_dir, &img_dir] {
        match std::fs::remove_dir_all(d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(d, e)),
            _ => {}
        }
    }
    for d in [dir, &pages_dir, &img_dir] {
        std::fs::create_dir_all(d).map_err(|e| at(d, e))?;
    }
    let mut review = FolderReview {
        pages,
        frames: total,
        ..FolderReview::default()
    };
    review.page_bytes += write_file(&dir.join("review.css"), CSS.as_bytes())?;
    review.page_bytes += write_file(&dir.join("review.js"), JS.as_bytes())?;
    review.page_bytes += write_file(&dir.join("classes.js"), counts.script().as_bytes())?;

    let index = dir.join("index.html");
    review.page_bytes += write_page(&index, |out| {
        out.write_all(b"<!DOCTYPE html>\n<html lang=\"en\">\n")?;
        emit(out, head(diff, None, Style::Beside("")))?;
        out.write_all(b"<body>\n<main>\n")?;
        emit(out, heading(diff))?;
        emit(out, summary(diff, &counts, &Links::Folder))?;
        emit(out, page_list(diff, pages))?;
        out.write_all(b"</main>\n</body>\n</html>\n")
    })?;

    let mut cards = card::Cards::new(
        diff,
        frame_bytes,
        card::Images::Folder {
            dir: img_dir,
            url: "../img/",
            written: Default::default(),
            bytes: 0,
        },
    );
    let mut frames = changed_frames(diff).enumerate().peekable();
    for page in 1..=pages {
        let first = (page - 1) * PAGE_FRAMES;
        let last = (first + PAGE_FRAMES).min(total);
        let path = pages_dir.join(page_name(page));
        review.page_bytes += write_page(&path, |out| {
            out.write_all(b"<!DOCTYPE html>\n<html lang=\"en\">\n")?;
            emit(out, head(diff, Some(page), Style::Beside("../")))?;
            writeln!(
                out,
                "<body data-page=\"{page}\" data-pages=\"{pages}\">\n<main>"
            )?;
            let nav = page_nav(page, pages, first, last);
            emit(out, html! { (heading(diff)) (nav) })?;
            emit(out, toolbar(&counts))?;
            let units = changed_frames(diff)
                .skip(first)
                .take(last - first)
                .map(|(_, f)| f.units);
            emit(out, card::preamble(units))?;
            let mut position = 0;
            while let Some((i, (label, frame))) = frames.next_if(|(i, _)| *i < last) {
                emit(out, card::card(&mut cards, i, position, label, frame)?)?;
                position += 1;
            }
            emit(out, nav)?;
            out.write_all(b"</main>\n")?;
            emit(
                out,
                html! {
                    script src="../classes.js" {}
                    script src="../review.js" {}
                },
            )?;
            out.write_all(b"</body>\n</html>\n")
        })?;
    }
    if let card::Images::Folder { written, bytes, .. } = &cards.images {
        review.images = written.len();
        review.image_bytes = *bytes;
    }
    Ok(review)
}

/// Writes one rendered piece of a page on its own line.
fn emit(out: &mut dyn Write, m: Markup) -> io::Result<()> {
    if m.0.is_empty() {
        return Ok(());
    }
    out.write_all(m.0.as_bytes())?;
    out.write_all(b"\n")
}

/// An I/O error naming the path it happened at.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<u64> {
    std::fs::write(path, bytes).map_err(|e| at(path, e))?;
    Ok(bytes.len() as u64)
}

/// Writes a page through a buffer; returns its size.
fn write_page(path: &Path, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<u64> {
    let file = File::create(path).map_err(|e| at(path, e))?;
    let mut out = Counting {
        inner: BufWriter::new(file),
        n: 0,
    };
    body(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| at(path, e))?;
    Ok(out.n)
}

/// A writer that counts what goes through it.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The file name of a page of a folder review, 1-based.
fn page_name(page: usize) -> String {
    format!("{page:04}.html")
}

/// Which page of a folder review a frame (0-based, over the review) is on.
fn page_of(index: usize) -> usize {
    index / PAGE_FRAMES + 1
}

/// Where the summary's links go.
enum Links {
    /// To cards in the same page.
    Single,
    /// To the pages of a folder review, from its index.
    Folder,
}

impl Links {
    /// The link to frame `index` (0-based); `None` when the page does not show it.
    fn frame(&self, index: usize) -> Option<String> {
        match self {
            Links::Single if index < card::MAX_CARDS => Some(format!("#frame-{index}")),
            Links::Single => None,
            Links::Folder => Some(format!("pages/{}#frame-{index}", page_name(page_of(index)))),
        }
    }

    /// The link that shows only the frames of a class.
    fn class(&self, class: &str, first_page: usize) -> String {
        let hash = format!("#class={}", percent(class));
        match self {
            Links::Single => hash,
            Links::Folder => format!("pages/{}{hash}", page_name(first_page)),
        }
    }
}

/// A string as a URL fragment's value: every byte but `A-Za-z0-9-._~` as `%XX`
/// (the script reads it back with `decodeURIComponent`).
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Per class, the changed frames that show it and the pages they are on.
struct ClassFrames {
    by: BTreeMap<String, (usize, BTreeSet<usize>)>,
}

impl ClassFrames {
    fn of(diff: &DatasetDiff) -> Self {
        let mut by: BTreeMap<String, (usize, BTreeSet<usize>)> = BTreeMap::new();
        for (i, (_, f)) in changed_frames(diff).enumerate() {
            for c in card::frame_classes(f) {
                let e = by.entry(c.to_string()).or_default();
                e.0 += 1;
                e.1.insert(page_of(i));
            }
        }
        ClassFrames { by }
    }

    fn frames(&self, class: &str) -> usize {
        self.by.get(class).map_or(0, |e| e.0)
    }

    fn first_page(&self, class: &str) -> usize {
        self.by
            .get(class)
            .and_then(|e| e.1.first().copied())
            .unwrap_or(1)
    }

    /// `classes.js`: the pages each class is on, so the pages' "next" and
    /// "previous" links skip the pages a class filter would leave empty. A
    /// list of pairs, not an object: a class named `__proto__` is data too.
    fn script(&self) -> String {
        let pairs: Vec<(&str, Vec<usize>)> = self
            .by
            .iter()
            .map(|(c, (_, pages))| (c.as_str(), pages.iter().copied().collect()))
            .collect();
        let json = serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into());
        format!("window.DSV_PAGES = {json};\n")
    }
}

/// How a page gets its stylesheet.
enum Style {
    /// In the page.
    Inline,
    /// From `review.css` at this relative path.
    Beside(&'static str),
}

fn head(diff: &DatasetDiff, page: Option<usize>, style: Style) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="generator" content="dsv";
            title {
                "dsv diff " (short(&diff.from)) " → " (short(&diff.to))
                @if let Some(p) = page { " · page " (p) }
            }
            @match style {
                Style::Inline => style { (PreEscaped(CSS)) },
                Style::Beside(up) => link rel="stylesheet" href={ (up) "review.css" };,
            }
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

/// What a pull request links to: the commit ids, the totals, the classes
/// with the largest deltas first, the frames with the most changes, then the
/// frame attribute, prediction, warning and frame-file sections.
fn summary(diff: &DatasetDiff, counts: &ClassFrames, links: &Links) -> Markup {
    html! {
        section class="summary" id="summary" {
            p class="ids" {
                "old " code { (diff.from) } br;
                "new " code { (diff.to) }
            }
            (totals(diff))
            (classes(diff, counts, links))
            (largest(diff, links))
            (frame_attributes(diff))
            (predictions(diff))
            (warnings(diff))
            (frame_files(diff))
        }
    }
}

/// The class filter, the context toggle and the keys, above the cards.
fn toolbar(counts: &ClassFrames) -> Markup {
    html! {
        div class="toolbar" id="toolbar" {
            label { input type="checkbox" id="ctx" checked; " unchanged objects" }
            label {
                "class "
                select id="cls" {
                    option value="" { "all classes" }
                    @for (class, (frames, _)) in &counts.by {
                        option value=(class) { (class) " (" (frames) ")" }
                    }
                }
            }
            span id="shown" class="note" {}
            span class="note keys" {
                "keys: " kbd { "j" } "/" kbd { "k" } " or " kbd { "→" } "/" kbd { "←" }
                " next/previous frame · " kbd { "z" } " or click: zoom · " kbd { "Esc" }
                " close · " kbd { "c" } " context · " kbd { "n" } "/" kbd { "p" } " next/previous page"
            }
        }
    }
}

/// The frames with the most object changes, largest first.
fn largest(diff: &DatasetDiff, links: &Links) -> Markup {
    let mut frames: Vec<(usize, &LabelFileDiff, &FrameObjects)> = changed_frames(diff)
        .enumerate()
        .map(|(i, (l, f))| (i, l, f))
        .collect();
    if frames.is_empty() {
        return html! {};
    }
    // Stable: equal counts keep the review's order.
    frames.sort_by_key(|(_, _, f)| std::cmp::Reverse(f.changes.len()));
    frames.truncate(LARGEST);
    html! {
        h2 { "Largest changes " span class="note" { "(frames with the most object changes)" } }
        table class="largest" {
            tr { th { "changes" } th class="l" { "frame" } th class="l" { "label file" } th class="l" { "what" } }
            @for (i, l, f) in frames {
                @let title = f.frame_path.as_deref().unwrap_or(&f.frame);
                tr {
                    td { (f.changes.len()) }
                    td class="l" {
                        @match links.frame(i) {
                            Some(href) => a href=(href) { (title) },
                            None => (title),
                        }
                    }
                    td class="l" { (l.path) }
                    td class="l" { (kinds(f)) }
                }
            }
        }
    }
}

/// A frame's changes by kind, for people: "2 added, 1 moved".
fn kinds(f: &FrameObjects) -> String {
    let mut counts: BTreeMap<ObjectChangeKind, usize> = BTreeMap::new();
    for c in &f.changes {
        *counts.entry(c.kind).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", draw::kind_name(*k)))
        .collect();
    parts.join(", ")
}

/// The index's list of pages, each with its frames' range.
fn page_list(diff: &DatasetDiff, pages: usize) -> Markup {
    let total = changed_frames(diff).count();
    html! {
        h2 { "Changed frames (" (total) ") " span class="note" { "(" (PAGE_FRAMES) " per page)" } }
        @if pages == 0 {
            p class="note" { "No object changes." }
        } @else {
            ol class="pages" {
                @for p in 1..=pages {
                    @let first = (p - 1) * PAGE_FRAMES + 1;
                    @let last = (p * PAGE_FRAMES).min(total);
                    li { a href={ "pages/" (page_name(p)) } { "frames " (first) "–" (last) } }
                }
            }
        }
    }
}

/// Links to the index and the neighbouring pages (the script points them at
/// the pages with frames of the filtered class).
fn page_nav(page: usize, pages: usize, first: usize, last: usize) -> Markup {
    html! {
        nav class="pages" {
            a href="../index.html" { "summary" }
            " · page " (page) " of " (pages) " (frames " (first + 1) "–" (last) ") · "
            @if page > 1 {
                a class="prev" href=(page_name(page - 1)) { "← previous" }
            } @else {
                span class="note" { "← previous" }
            }
            " · "
            @if page < pages {
                a class="next" href=(page_name(page + 1)) { "next →" }
            } @else {
                span class="note" { "next →" }
            }
        }
    }
}

fn totals(diff: &DatasetDiff) -> Markup {
    let f = &diff.frames;
    let frames_with_changes = changed_frames(diff).count();
    let stats: [(&str, usize); 13] = [
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
        (
            "frames with prediction changes",
            diff.prediction_totals.frames,
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

/// The class table, the largest deltas first (then the most changed objects).
fn classes(diff: &DatasetDiff, counts: &ClassFrames, links: &Links) -> Markup {
    if diff.classes.is_empty() {
        return html! {};
    }
    let changed = |c: &ClassDelta| {
        c.added + c.removed + c.moved + c.reclassified_in + c.reclassified_out + c.attributes
    };
    let mut rows: Vec<&ClassDelta> = diff.classes.iter().collect();
    rows.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.delta.unsigned_abs()),
            std::cmp::Reverse(changed(c)),
        )
    });
    html! {
        h2 { "Classes " span class="note" { "(objects in the changed frames; largest deltas first)" } }
        table class="classes" {
            tr {
                th class="l" { "class" } th { "before" } th { "after" } th { "delta" }
                th { "added" } th { "removed" } th { "moved" } th { "reclassified in" }
                th { "reclassified out" } th { "attributes" } th { "frames" }
            }
            @for c in rows {
                @let (delta, cls) = signed(c.delta);
                @let frames = counts.frames(&c.class);
                tr {
                    td class="l" { (c.class) } td { (c.before) } td { (c.after) }
                    td class=(cls) { (delta) }
                    td { (c.added) } td { (c.removed) } td { (c.moved) }
                    td { (c.reclassified_in) } td { (c.reclassified_out) } td { (c.attributes) }
                    td {
                        @if frames > 0 {
                            a href=(links.class(&c.class, counts.first_page(&c.class))) { (frames) }
                        } @else {
                            "0"
                        }
                    }
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

/// The prediction changes of the metadata sidecar, per frame.
fn predictions(diff: &DatasetDiff) -> Markup {
    use crate::report::text::{change_detail, kind_style, prediction_units};
    let t = &diff.prediction_totals;
    if t.is_empty() {
        return html! {};
    }
    let n = diff.prediction_changes.len();
    html! {
        h2 {
            "Predictions "
            span class="note" {
                "(" (t.frames) " frames with prediction changes: " (t.added) " added, "
                (t.removed) " removed, " (t.changed) " changed)"
            }
        }
        details open {
            summary { "Prediction changes by frame (" (n) ")" }
            @if let Some(c) = crate::report::text::prediction_convention_line(diff) {
                p class="note" { (c) }
            }
            table class="predictions" {
                tr {
                    th class="l" { "frame" } th class="l" { "file" } th { "predictions" }
                    th class="l" { "change" } th class="l" { "class" } th class="l" { "detail" }
                }
                @for f in diff.prediction_changes.iter().take(MAX_LISTED) {
                    @let units = prediction_units(f);
                    @for c in &f.changes {
                        @let (class, detail) = change_detail(c, units);
                        tr {
                            td class="l" { (f.frame) } td class="l" { (f.file) }
                            td { (f.predictions_before) " → " (f.predictions_after) }
                            td class="l" { (kind_style(c.kind).2) }
                            td class="l" { (class) } td class="l" { (detail) }
                        }
                    }
                }
            }
            @if n > MAX_LISTED {
                p class="note" {
                    (n - MAX_LISTED) " more frames with prediction changes are not listed; run "
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

/// The frames with object changes, with the label file each is in, in the
/// review's order.
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
            unchanged: Vec::new(),
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
        // The page's own script is the only script element.
        assert_eq!(count(&html, "<script>"), 1, "unescaped class name in page");
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
        assert_eq!(count(&html, "<script>"), 1, "unescaped diff side");
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
    fn added(class: &str) -> ObjectChange {
        change(ObjectChangeKind::Added, class, None, b(0.1, 0.1, 0.2, 0.2))
    }

    fn folder(diff: &DatasetDiff, bytes: Option<Vec<u8>>, dir: &Path) -> FolderReview {
        render_folder(diff, &|_, _| bytes.clone(), dir).unwrap()
    }

    fn read(path: impl AsRef<Path>) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    fn demo_jpeg() -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/images/frame_000.jpg"),
        )
        .unwrap()
    }

    #[test]
    fn folder_review_puts_every_frame_on_a_page_and_each_image_once() {
        let frames: Vec<FrameObjects> = (0..2 * PAGE_FRAMES + 3)
            .map(|i| {
                let class = if i == 2 * PAGE_FRAMES + 1 {
                    "rare"
                } else {
                    "cat"
                };
                frame(Units::Normalized, None, vec![added(class)])
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let classes = ["cat", "rare"]
            .map(|c| ClassDelta {
                class: c.into(),
                ..ClassDelta::default()
            })
            .to_vec();
        let review = folder(&diff_of(frames, classes), Some(demo_jpeg()), dir.path());
        assert_eq!(
            (review.pages, review.frames, review.images),
            (3, 2 * PAGE_FRAMES + 3, 1)
        );
        let names: Vec<String> = std::fs::read_dir(dir.path().join("img"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(
            names[0].ends_with(".jpg") && names[0].len() == 36,
            "{names:?}"
        );
        let last = read(dir.path().join("pages/0003.html"));
        assert_eq!(count(&last, "<section class=\"card\""), 3);
        assert!(last.contains(&format!("id=\"frame-{}\"", 2 * PAGE_FRAMES)));
        assert!(last.contains(&format!("src=\"../img/{}\"", names[0])));
        assert!(last.contains("<script src=\"../review.js\"></script>"));
        assert!(!last.contains("data:image"), "folder pages embed no image");
        let first = read(dir.path().join("pages/0001.html"));
        assert_eq!(count(&first, "<section class=\"card\""), PAGE_FRAMES);
        // The first cards' images load at once, the rest as they near the screen.
        assert_eq!(
            count(&first, "loading=\"lazy\""),
            PAGE_FRAMES - card::EAGER_IMAGES
        );
        let index = read(dir.path().join("index.html"));
        assert!(index.contains("<a href=\"pages/0003.html\">frames 201–203</a>"));
        assert!(index.contains("href=\"pages/0003.html#class=rare\""));
        assert_eq!(
            read(dir.path().join("classes.js")),
            "window.DSV_PAGES = [[\"cat\",[1,2,3]],[\"rare\",[3]]];\n"
        );
    }

    #[test]
    fn folder_review_replaces_the_pages_of_an_earlier_one() {
        let many: Vec<FrameObjects> = (0..PAGE_FRAMES + 1)
            .map(|_| frame(Units::Normalized, None, vec![added("cat")]))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        folder(&diff_of(many, vec![]), None, dir.path());
        assert!(dir.path().join("pages/0002.html").is_file());
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let one = vec![frame(Units::Normalized, None, vec![added("cat")])];
        let review = folder(&diff_of(one, vec![]), None, dir.path());
        assert_eq!(review.pages, 1);
        assert!(
            !dir.path().join("pages/0002.html").exists(),
            "stale page kept"
        );
        assert_eq!(read(dir.path().join("notes.txt")), "mine");
    }

    #[test]
    fn hostile_class_names_stay_data_in_the_class_index_and_links() {
        let f = frame(
            Units::Normalized,
            None,
            vec![
                added("</script><b>\u{2028}"),
                added("__proto__"),
                added("a b#c"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        folder(&diff_of(vec![f], vec![]), None, dir.path());
        let js = read(dir.path().join("classes.js"));
        let json = js
            .strip_prefix("window.DSV_PAGES = ")
            .and_then(|j| j.strip_suffix(";\n"))
            .unwrap();
        let pairs: Vec<(String, Vec<usize>)> = serde_json::from_str(json).unwrap();
        assert_eq!(pairs.len(), 3);
        assert!(pairs.iter().any(|(c, _)| c == "</script><b>\u{2028}"));
        let page = read(dir.path().join("pages/0001.html"));
        assert!(!page.contains("</script><b>"));
        assert!(page.contains("<option value=\"a b#c\">a b#c (1)</option>"));
        assert_eq!(percent("a b#c/é"), "a%20b%23c%2F%C3%A9");
    }

    #[test]
    fn unchanged_objects_are_drawn_faintly_and_boxes_say_old_or_new() {
        let mut f = frame(
            Units::Normalized,
            None,
            vec![change(
                ObjectChangeKind::Moved,
                "cat",
                b(0.1, 0.1, 0.2, 0.2),
                b(0.2, 0.1, 0.2, 0.2),
            )],
        );
        f.unchanged = vec![(
            "tree<".into(),
            BBox {
                x: 0.5,
                y: 0.5,
                w: 0.1,
                h: 0.1,
            },
        )];
        let html = page(&diff_of(vec![f], vec![]), None);
        assert_eq!(count(&html, "class=\"box same\""), 1);
        assert!(html.contains("data-class=\"tree&lt;\""));
        assert!(html.contains(
            "<span class=\"tag same\" style=\"left:50.000%;top:50.000%\">tree&lt;</span>"
        ));
        assert!(html.contains("<b>old</b> cat</span>"));
        assert!(html.contains("<b>new</b> cat</span>"));
        assert!(html.contains("id=\"ctx\""), "the context toggle");
    }

    #[test]
    fn class_table_puts_the_largest_deltas_first() {
        let class = |name: &str, delta: i64| ClassDelta {
            class: name.into(),
            delta,
            ..ClassDelta::default()
        };
        let d = diff_of(
            vec![],
            vec![class("a", 1), class("b", -5), class("c", 0), class("d", 3)],
        );
        let html = page(&d, None);
        let at = |c: &str| html.find(&format!("<td class=\"l\">{c}</td>")).unwrap();
        assert!(at("b") < at("d") && at("d") < at("a") && at("a") < at("c"));
    }
}
