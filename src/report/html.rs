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
//! messages) is user-controlled and goes through [`escape`].

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use super::{Side, short};
use crate::labels::compare::{ObjectChange, ObjectChangeKind};
use crate::labels::{AttrValue, BBox, Units};
use crate::ops::label_diff::{DatasetDiff, FrameObjects, LabelFileDiff};

/// Frame cards beyond this many are only counted, so the page stays openable.
const MAX_CARDS: usize = 500;
/// Rows of one frame's change table beyond this many are only counted.
const MAX_ROWS: usize = 200;
/// Class tags beyond this many boxes would hide the image; tooltips remain.
const MAX_TAGS: usize = 60;
/// Paths per frame-file list before the rest is only counted.
const MAX_LISTED: usize = 1000;
/// Largest picture drawn: wide enough to judge a box, small enough for two columns.
const MAX_W: f64 = 480.0;
/// Tallest picture drawn, so portrait frames do not take a whole screen.
const MAX_H: f64 = 640.0;
/// Larger images are not embedded (a data URI that size makes browsers crawl).
const MAX_IMAGE_BYTES: usize = 16 << 20;
/// Total image bytes embedded in one page.
const MAX_TOTAL_IMAGE_BYTES: usize = 512 << 20;

const CSS: &str = r#"
:root{--old:#e00000;--new:#00a000;--attr:#e08a00;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#1f2328;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:20px;margin:4px 0 12px}
h2{font-size:16px;margin:22px 0 8px}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eaeef2;padding:1px 4px;border-radius:4px;word-break:break-all}
.totals{display:flex;flex-wrap:wrap;gap:8px}
.stat{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 10px}
.stat b{font-size:16px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
.l{text-align:left}
.pos{color:#1a7f37}.neg{color:#cf222e}
.note{color:var(--muted);font-size:12px;margin:4px 0}
.warnings li{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.legend{display:flex;flex-wrap:wrap;gap:18px;align-items:center;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.swatch{stroke-width:2;fill:none}
.swatch.before{stroke:var(--old);stroke-dasharray:6 4}
.swatch.after{stroke:var(--new)}
.swatch.attributes{stroke:var(--attr)}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:14px 0}
.card h3{font-size:15px;margin:0 0 2px;word-break:break-all}
.card .meta{color:var(--muted);font-size:12px;margin-bottom:8px;word-break:break-all}
.body{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.pic{flex:none;max-width:100%}
.stage{position:relative;background:#c8c8c8;overflow:hidden;outline:1px solid #afb8c1}
.stage img{position:absolute;left:0;top:0;width:100%;height:100%;display:block}
.stage.natural{display:inline-block}
.stage.natural img{position:static;width:auto;height:auto;max-width:480px;max-height:640px}
.stage .placeholder{position:absolute;left:0;bottom:0;color:#444;font-size:11px;padding:2px 6px}
.stage svg{position:absolute;left:0;top:0;width:100%;height:100%}
.box{fill:none;stroke-width:2}
.box.before{stroke:var(--old);stroke-dasharray:6 4}
.box.after{stroke:var(--new)}
.box.attributes{stroke:var(--attr)}
.tag{position:absolute;font:11px/14px system-ui,sans-serif;color:#fff;padding:0 3px;white-space:nowrap;pointer-events:none;opacity:.9}
.tag.before{background:var(--old)}
.tag.after{background:var(--new)}
.tag.attributes{background:var(--attr)}
.tag.above{transform:translateY(-100%)}
.changes{font-size:12px;flex:1 1 360px;min-width:0;overflow-x:auto}
.changes table{width:100%}
.changes td.box-cell{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.kind-added{color:var(--new)}.kind-removed{color:var(--old)}.kind-attributes{color:#9a6700}
details{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin:6px 0}
details ul{margin:4px 0;padding-left:20px;font-size:12px;word-break:break-all}
"#;

/// Renders the review page.
pub fn render(
    diff: &DatasetDiff,
    frame_bytes: &dyn Fn(&str, Side) -> Option<Vec<u8>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_head(out, diff)?;
    write_totals(out, diff)?;
    write_classes(out, diff)?;
    write_frame_attributes(out, diff)?;
    write_warnings(out, diff)?;
    write_frame_files(out, diff)?;
    write_cards(out, diff, frame_bytes)?;
    writeln!(out, "</main>\n</body>\n</html>")
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn write_head(out: &mut dyn Write, diff: &DatasetDiff) -> io::Result<()> {
    let (from, to) = (escape(short(&diff.from)), escape(short(&diff.to)));
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(out, "<meta name=\"generator\" content=\"dsv\">")?;
    writeln!(out, "<title>dsv diff {from} → {to}</title>")?;
    writeln!(out, "<style>{CSS}</style>\n</head>\n<body>\n<main>")?;
    writeln!(
        out,
        "<h1>Dataset diff <code title=\"{}\">{from}</code> → <code title=\"{}\">{to}</code></h1>",
        escape(&diff.from),
        escape(&diff.to)
    )
}

fn write_totals(out: &mut dyn Write, diff: &DatasetDiff) -> io::Result<()> {
    let f = &diff.frames;
    let frames_with_changes = changed_frames(diff).count();
    writeln!(out, "<h2>Totals</h2>\n<div class=\"totals\">")?;
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
    for (what, n) in stats {
        writeln!(out, "<div class=\"stat\"><b>{n}</b> {what}</div>")?;
    }
    writeln!(out, "</div>")
}

fn signed(v: i64) -> (String, &'static str) {
    match v {
        0 => ("0".into(), ""),
        v if v > 0 => (format!("+{v}"), "pos"),
        v => (format!("−{}", v.unsigned_abs()), "neg"),
    }
}

fn write_classes(out: &mut dyn Write, diff: &DatasetDiff) -> io::Result<()> {
    if diff.classes.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<h2>Classes <span class=\"note\">(objects in the changed frames)</span></h2>"
    )?;
    writeln!(
        out,
        "<table class=\"classes\">\n<tr><th class=\"l\">class</th><th>before</th><th>after</th><th>delta</th>\
         <th>added</th><th>removed</th><th>moved</th><th>reclassified in</th>\
         <th>reclassified out</th><th>attributes</th></tr>"
    )?;
    for c in &diff.classes {
        let (delta, cls) = signed(c.delta);
        writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{delta}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.class),
            c.before,
            c.after,
            c.added,
            c.removed,
            c.moved,
            c.reclassified_in,
            c.reclassified_out,
            c.attributes
        )?;
    }
    writeln!(out, "</table>")
}

/// The per-value totals and the per-frame list of frame attribute changes.
fn write_frame_attributes(out: &mut dyn Write, diff: &DatasetDiff) -> io::Result<()> {
    use crate::report::text::{attribute_kind_style, attribute_value};
    let t = &diff.frame_attribute_totals;
    if t.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<h2>Frame attributes <span class=\"note\">({} added, {} removed, {} changed; frames with each value, where the attribute changed)</span></h2>",
        t.added, t.removed, t.changed
    )?;
    writeln!(
        out,
        "<table class=\"attributes\">\n<tr><th class=\"l\">attribute</th><th class=\"l\">value</th>\
         <th>before</th><th>after</th><th>delta</th></tr>"
    )?;
    for v in &t.values {
        let (delta, cls) = signed(v.delta);
        writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{delta}</td></tr>",
            escape(&v.attribute),
            escape(&v.value),
            v.before,
            v.after
        )?;
    }
    writeln!(out, "</table>")?;
    let n = diff.frame_attributes.len();
    writeln!(
        out,
        "<details open><summary>Frame attribute changes by frame ({n})</summary>\n\
         <table class=\"frame-attributes\">\n<tr><th class=\"l\">frame</th><th class=\"l\">file</th>\
         <th class=\"l\">attribute</th><th class=\"l\">change</th><th class=\"l\">before</th>\
         <th class=\"l\">after</th></tr>"
    )?;
    for f in diff.frame_attributes.iter().take(MAX_LISTED) {
        for c in &f.changes {
            let (_, _, word) = attribute_kind_style(c.kind);
            writeln!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
                 <td class=\"l\">{word}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                escape(&f.frame),
                escape(&f.file),
                escape(&c.attribute),
                escape(&attribute_value(&c.before)),
                escape(&attribute_value(&c.after))
            )?;
        }
    }
    writeln!(out, "</table>")?;
    if n > MAX_LISTED {
        writeln!(
            out,
            "<p class=\"note\">{} more frames with attribute changes are not listed; run <code>dsv diff</code> for all of them.</p>",
            n - MAX_LISTED
        )?;
    }
    writeln!(out, "</details>")
}

fn write_warnings(out: &mut dyn Write, diff: &DatasetDiff) -> io::Result<()> {
    if diff.warnings.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<h2>Warnings <span class=\"note\">(label files shown at file level only because they did not parse)</span></h2>\n<ul class=\"warnings\">"
    )?;
    for w in &diff.warnings {
        writeln!(out, "<li>{}</li>", escape(&w.to_string()))?;
    }
    writeln!(out, "</ul>")
}

fn write_list<'a>(
    out: &mut dyn Write,
    title: &str,
    items: impl ExactSizeIterator<Item = String> + 'a,
) -> io::Result<()> {
    let n = items.len();
    if n == 0 {
        return Ok(());
    }
    writeln!(out, "<details><summary>{title} ({n})</summary><ul>")?;
    for item in items.take(MAX_LISTED) {
        writeln!(out, "<li>{}</li>", escape(&item))?;
    }
    if n > MAX_LISTED {
        writeln!(out, "<li>… and {} more</li>", n - MAX_LISTED)?;
    }
    writeln!(out, "</ul></details>")
}

fn write_frame_files(out: &mut dyn Write, diff: &DatasetDiff) -> io::Result<()> {
    let f = &diff.frames;
    if f.added.is_empty() && f.removed.is_empty() && f.modified.is_empty() && f.renamed.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Frame files</h2>")?;
    write_list(out, "added", f.added.iter().cloned())?;
    write_list(out, "removed", f.removed.iter().cloned())?;
    write_list(out, "modified", f.modified.iter().cloned())?;
    write_list(
        out,
        "renamed",
        f.renamed.iter().map(|r| format!("{} → {}", r.from, r.to)),
    )
}

fn write_legend(out: &mut dyn Write) -> io::Result<()> {
    let swatch = |class: &str| {
        format!(
            "<svg width=\"30\" height=\"12\" aria-hidden=\"true\"><line class=\"swatch {class}\" x1=\"1\" y1=\"6\" x2=\"29\" y2=\"6\"/></svg>"
        )
    };
    writeln!(
        out,
        "<div class=\"legend\"><span>{} old box (removed, or where a moved object was)</span>\
         <span>{} new box (added, moved to, reclassified)</span>\
         <span>{} attributes changed, box unchanged</span>\
         <span>reclassified objects are tagged <i>old → new</i></span></div>",
        swatch("before"),
        swatch("after"),
        swatch("attributes")
    )
}

fn changed_frames(diff: &DatasetDiff) -> impl Iterator<Item = (&LabelFileDiff, &FrameObjects)> {
    diff.labels
        .iter()
        .flat_map(|l| l.frames.iter().map(move |f| (l, f)))
        .filter(|(_, f)| !f.changes.is_empty())
}

/// What the cards share: the frame reader, and lookups into the frame-file changes.
struct Cards<'a> {
    frame_bytes: &'a dyn Fn(&str, Side) -> Option<Vec<u8>>,
    /// New path → old path, so a renamed frame can still be read on the old side.
    renamed_from: HashMap<&'a str, &'a str>,
    modified: HashSet<&'a str>,
    embedded: usize,
}

fn write_cards(
    out: &mut dyn Write,
    diff: &DatasetDiff,
    frame_bytes: &dyn Fn(&str, Side) -> Option<Vec<u8>>,
) -> io::Result<()> {
    let total = changed_frames(diff).count();
    writeln!(out, "<h2>Changed frames ({total})</h2>")?;
    if total == 0 {
        writeln!(out, "<p class=\"note\">No object changes.</p>")?;
        return Ok(());
    }
    write_legend(out)?;
    let units = changed_frames(diff).map(|(_, f)| f.units);
    writeln!(
        out,
        "<p class=\"note\">Boxes: (x, y) is the top-left corner, w×h the size; {}.</p>",
        crate::labels::units_words(units)
    )?;
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
        write_card(out, &mut cards, i, label, frame)?;
    }
    if total > MAX_CARDS {
        writeln!(
            out,
            "<p class=\"note\">{} more frames with object changes are not shown (the page shows the first {MAX_CARDS}); \
             use <code>dsv diff --format json</code> for all of them.</p>",
            total - MAX_CARDS
        )?;
    }
    Ok(())
}

/// Which box of a change a drawn rectangle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Before,
    After,
    Attributes,
}

impl Role {
    fn class(self) -> &'static str {
        match self {
            Role::Before => "before",
            Role::After => "after",
            Role::Attributes => "attributes",
        }
    }
}

struct Drawn<'a> {
    role: Role,
    bbox: BBox,
    change: &'a ObjectChange,
    /// The class tag, on one box per change.
    tag: Option<String>,
}

fn kind_name(k: ObjectChangeKind) -> &'static str {
    match k {
        ObjectChangeKind::Added => "added",
        ObjectChangeKind::Removed => "removed",
        ObjectChangeKind::Reclassified => "reclassified",
        ObjectChangeKind::Moved => "moved",
        ObjectChangeKind::Attributes => "attributes",
    }
}

fn class_label(c: &ObjectChange) -> String {
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
fn drawn_boxes(changes: &[ObjectChange]) -> Vec<Drawn<'_>> {
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
                olds.push(Drawn {
                    role: Role::Before,
                    bbox: o,
                    change: c,
                    tag: None,
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
fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s {
        "" | "-" | "-0" => "0".to_string(),
        s => s.to_string(),
    }
}

fn fmt_box(b: &Option<BBox>, units: Units) -> String {
    match b {
        None => "—".to_string(),
        Some(b) => match units {
            Units::Pixels => format!("({:.1}, {:.1}) {:.1}×{:.1}", b.x, b.y, b.w, b.h),
            Units::Normalized => format!("({:.4}, {:.4}) {:.4}×{:.4}", b.x, b.y, b.w, b.h),
        },
    }
}

/// Image formats a browser shows from a data URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Webp,
    Bmp,
}

impl ImageFormat {
    fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Bmp => "image/bmp",
        }
    }
}

/// Recognizes an image by its magic bytes (file extensions in datasets lie).
fn sniff(b: &[u8]) -> Option<ImageFormat> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        Some(ImageFormat::Webp)
    } else if b.starts_with(b"BM") && b.len() >= 26 {
        Some(ImageFormat::Bmp)
    } else {
        None
    }
}

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_be_bytes)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_be_bytes)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

fn nonzero(w: u32, h: u32) -> Option<(u32, u32)> {
    (w > 0 && h > 0).then_some((w, h))
}

/// Width and height of an image, from its header only.
fn image_size(b: &[u8]) -> Option<(u32, u32)> {
    match sniff(b)? {
        ImageFormat::Png => png_size(b),
        ImageFormat::Jpeg => jpeg_size(b),
        ImageFormat::Gif => nonzero(le16(b, 6)?.into(), le16(b, 8)?.into()),
        ImageFormat::Webp => webp_size(b),
        ImageFormat::Bmp => bmp_size(b),
    }
}

fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    // IHDR must be the first chunk, right after the signature and its length.
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    nonzero(be32(b, 16)?, be32(b, 20)?)
}

fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2usize;
    loop {
        if *b.get(pos)? != 0xFF {
            return None;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *b.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *b.get(pos)?;
        pos += 1;
        match marker {
            // Standalone markers have no length field.
            0x01 | 0xD0..=0xD8 => continue,
            // A frame header always precedes the scan; none by now means none at all.
            0x00 | 0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(be16(b, pos)?);
        if len < 2 {
            return None;
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC) which share the range.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = be16(b, pos + 3)?;
            let w = be16(b, pos + 5)?;
            // Height 0 means "given later by a DNL marker": treat as unknown.
            return nonzero(w.into(), h.into());
        }
        pos += len;
    }
}

fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    let le24 = |at: usize| -> Option<u32> {
        let [x, y, z] = bytes_at::<3>(b, at)?;
        Some(u32::from_le_bytes([x, y, z, 0]))
    };
    match b.get(12..16)? {
        b"VP8 " => {
            // Frame tag (3 bytes) and start code 9d 01 2a precede the 14-bit sizes.
            if b.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            nonzero(
                u32::from(le16(b, 26)? & 0x3FFF),
                u32::from(le16(b, 28)? & 0x3FFF),
            )
        }
        b"VP8L" => {
            if *b.get(20)? != 0x2F {
                return None;
            }
            let bits = le32(b, 21)?;
            nonzero((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => nonzero(le24(24)? + 1, le24(27)? + 1),
        _ => None,
    }
}

fn bmp_size(b: &[u8]) -> Option<(u32, u32)> {
    if le32(b, 14)? == 12 {
        // OS/2 BITMAPCOREHEADER: 16-bit sizes.
        return nonzero(le16(b, 18)?.into(), le16(b, 20)?.into());
    }
    let w = i32::from_le_bytes(bytes_at(b, 18)?);
    // Negative height means rows are stored top-down.
    let h = i32::from_le_bytes(bytes_at(b, 22)?);
    nonzero(w.unsigned_abs(), h.unsigned_abs())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a data URI's base64 in slices, so a large image is not held twice.
fn write_base64(out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    for part in bytes.chunks(3 * 4096) {
        out.write_all(base64(part).as_bytes())?;
    }
    Ok(())
}

/// The picture a card shows, and why when it is not the frame.
struct Picture {
    image: Option<(ImageFormat, Vec<u8>)>,
    size: Option<(u32, u32)>,
    notes: Vec<String>,
}

impl Cards<'_> {
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
        let Some(format) = sniff(&bytes) else {
            notes.push(format!(
                "{path} is not a PNG, JPEG, GIF, WebP or BMP image; boxes are drawn on a placeholder."
            ));
            return missing(notes);
        };
        let size = image_size(&bytes);
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

/// Where the boxes are drawn: the overlay's coordinate space and the displayed size.
struct Geometry {
    view: (f64, f64),
    /// Displayed size in CSS pixels; `None` lets the image size itself.
    display: Option<(u32, u32)>,
}

fn geometry(frame: &FrameObjects, drawn: &[Drawn], pic: &mut Picture) -> Geometry {
    let labelled = match (frame.width, frame.height) {
        (Some(w), Some(h)) => nonzero(w, h),
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

fn write_card(
    out: &mut dyn Write,
    cards: &mut Cards,
    index: usize,
    label: &LabelFileDiff,
    frame: &FrameObjects,
) -> io::Result<()> {
    let drawn = drawn_boxes(&frame.changes);
    let mut pic = cards.picture(frame);
    let geo = geometry(frame, &drawn, &mut pic);
    let title = frame.frame_path.as_deref().unwrap_or(&frame.frame);
    writeln!(out, "<section class=\"card\" id=\"frame-{index}\">")?;
    writeln!(out, "<h3>{}</h3>", escape(title))?;
    let mut counts: std::collections::BTreeMap<ObjectChangeKind, usize> = Default::default();
    for c in &frame.changes {
        *counts.entry(c.kind).or_default() += 1;
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", kind_name(*k)))
        .collect();
    writeln!(
        out,
        "<div class=\"meta\">labels: {} ({}) · objects {} → {} · {}</div>",
        escape(&label.path),
        label.format.name(),
        frame.objects_before,
        frame.objects_after,
        summary.join(", ")
    )?;
    writeln!(out, "<div class=\"body\">\n<div class=\"pic\">")?;
    write_stage(out, frame, &drawn, &pic, &geo)?;
    for n in &pic.notes {
        writeln!(out, "<p class=\"note\">{}</p>", escape(n))?;
    }
    if drawn.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">These objects have no boxes to draw.</p>"
        )?;
    } else if drawn.len() > MAX_TAGS {
        writeln!(
            out,
            "<p class=\"note\">{} boxes: class tags hidden, hover a box for its class.</p>",
            drawn.len()
        )?;
    }
    writeln!(out, "</div>")?;
    write_change_table(out, frame)?;
    writeln!(out, "</div>\n</section>")
}

fn write_stage(
    out: &mut dyn Write,
    frame: &FrameObjects,
    drawn: &[Drawn],
    pic: &Picture,
    geo: &Geometry,
) -> io::Result<()> {
    let class = match (&pic.image, geo.display) {
        (None, _) => "stage missing",
        (Some(_), None) => "stage natural",
        (Some(_), Some(_)) => "stage",
    };
    match geo.display {
        Some((w, h)) => writeln!(
            out,
            "<div class=\"{class}\" style=\"width:{w}px;height:{h}px\">"
        )?,
        None => writeln!(out, "<div class=\"{class}\">")?,
    }
    match &pic.image {
        Some((format, bytes)) => {
            write!(
                out,
                "<img alt=\"frame\" src=\"data:{};base64,",
                format.mime()
            )?;
            write_base64(out, bytes)?;
            writeln!(out, "\">")?;
        }
        None => writeln!(out, "<div class=\"placeholder\">image not available</div>")?,
    }
    let (vw, vh) = geo.view;
    writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" preserveAspectRatio=\"none\">",
        num(vw),
        num(vh)
    )?;
    for d in drawn {
        let c = d.change;
        let role = d.role.class();
        writeln!(
            out,
            "<rect class=\"box {role}\" data-class=\"{}\" data-kind=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" \
             vector-effect=\"non-scaling-stroke\"><title>{} {} ({role}) {}</title></rect>",
            escape(&c.class),
            kind_name(c.kind),
            num(d.bbox.x),
            num(d.bbox.y),
            num(d.bbox.w),
            num(d.bbox.h),
            kind_name(c.kind),
            escape(&class_label(c)),
            fmt_box(&Some(d.bbox), frame.units)
        )?;
    }
    writeln!(out, "</svg>")?;
    if drawn.len() <= MAX_TAGS {
        for d in drawn {
            let Some(tag) = &d.tag else { continue };
            let left = (d.bbox.x / vw * 100.0).clamp(0.0, 95.0);
            let top = (d.bbox.y / vh * 100.0).clamp(0.0, 100.0);
            // Above the box unless that would leave the picture.
            let place = if top > 6.0 { " above" } else { "" };
            writeln!(
                out,
                "<span class=\"tag {}{place}\" style=\"left:{left:.3}%;top:{top:.3}%\">{}</span>",
                d.role.class(),
                escape(tag)
            )?;
        }
    }
    writeln!(out, "</div>")
}

fn attr_text(v: &Option<AttrValue>) -> String {
    v.as_ref()
        .map_or_else(|| "—".to_string(), |v| v.to_string())
}

fn write_change_table(out: &mut dyn Write, frame: &FrameObjects) -> io::Result<()> {
    writeln!(
        out,
        "<div class=\"changes\"><table>\n<tr><th class=\"l\">change</th><th class=\"l\">class</th><th>IoU</th>\
         <th class=\"l\">before</th><th class=\"l\">after</th><th class=\"l\">attributes</th></tr>"
    )?;
    for c in frame.changes.iter().take(MAX_ROWS) {
        let kind = kind_name(c.kind);
        let id =
            c.id.as_deref()
                .map(|id| format!(" <span class=\"note\">#{}</span>", escape(id)))
                .unwrap_or_default();
        let iou = c
            .iou
            .map(|v| format!("{v:.2}"))
            .unwrap_or_else(|| "—".into());
        let attrs: Vec<String> = c
            .attributes
            .iter()
            .map(|(k, a)| format!("{k}: {} → {}", attr_text(&a.before), attr_text(&a.after)))
            .collect();
        writeln!(
            out,
            "<tr><td class=\"l kind-{kind}\">{kind}</td><td class=\"l\">{}{id}</td><td>{iou}</td>\
             <td class=\"l box-cell\">{}</td><td class=\"l box-cell\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&class_label(c)),
            fmt_box(&c.before, frame.units),
            fmt_box(&c.after, frame.units),
            escape(&attrs.join("; "))
        )?;
    }
    writeln!(out, "</table>")?;
    if frame.changes.len() > MAX_ROWS {
        writeln!(
            out,
            "<p class=\"note\">{} more changes in this frame are not listed.</p>",
            frame.changes.len() - MAX_ROWS
        )?;
    }
    writeln!(out, "</div>")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::labels::Format;
    use crate::object::diff::ChangeKind;
    use crate::ops::label_diff::{ClassDelta, FrameChanges, SCHEMA};

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
        assert_eq!(escape("&'\""), "&amp;&#39;&quot;");
    }

    #[test]
    fn reads_jpeg_sizes_of_fixtures() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let cases = [
            ("demo/images/frame_000.jpg", (15, 10)),
            ("demo/images/frame_001.jpg", (10, 5)),
            ("demo/images/frame_004.jpg", (20, 10)),
            ("demo-edit/images/frame_006.jpg", (8, 8)),
            (
                "datumaro/coco_dataset/coco_instances/images/val/b.jpg",
                (5, 10),
            ),
        ];
        for (path, size) in cases {
            let bytes = std::fs::read(root.join(path)).unwrap();
            assert_eq!(sniff(&bytes), Some(ImageFormat::Jpeg), "{path}");
            assert_eq!(image_size(&bytes), Some(size), "{path}");
        }
    }

    #[test]
    fn reads_png_sizes_of_fixtures() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/datumaro");
        let cases = [
            (
                "voc_dataset/voc_dataset1/SegmentationClass/2007_000001.png",
                (20, 10),
            ),
            (
                "kitti_dataset/kitti_3d/training/image_2/000001.png",
                (10, 10),
            ),
        ];
        for (path, size) in cases {
            let bytes = std::fs::read(root.join(path)).unwrap();
            assert_eq!(sniff(&bytes), Some(ImageFormat::Png), "{path}");
            assert_eq!(image_size(&bytes), Some(size), "{path}");
        }
    }

    #[test]
    fn reads_progressive_jpeg_gif_webp_and_bmp_headers() {
        // SOI, an APP0 with fill bytes before its marker, then SOF2 (progressive) 640x480.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend([
            0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x01, 0x01,
        ]);
        assert_eq!(image_size(&jpeg), Some((640, 480)));
        assert_eq!(image_size(b"GIF89a\x03\x00\x02\x00"), Some((3, 2)));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0".to_vec();
        vp8x.extend([99, 0, 0, 49, 0, 0]);
        assert_eq!(image_size(&vp8x), Some((100, 50)));
        let mut bmp = vec![0u8; 26];
        bmp[..2].copy_from_slice(b"BM");
        bmp[14] = 40;
        bmp[18..22].copy_from_slice(&7i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&(-9i32).to_le_bytes());
        assert_eq!(image_size(&bmp), Some((7, 9)));
    }

    #[test]
    fn size_readers_survive_truncated_and_garbage_input() {
        let jpeg = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/demo/images/frame_000.jpg"),
        )
        .unwrap();
        for n in 0..jpeg.len().min(400) {
            let _ = image_size(&jpeg[..n]);
        }
        let garbage: &[&[u8]] = &[
            b"",
            b"\x89PNG\r\n\x1a\n",
            b"\xFF\xD8\xFF\x00",
            b"\xFF\xD8\xFF\xE0\x00\x00",
            b"\xFF\xD8\xFF\xC0\x00\x11\x08\x00\x00\x00\x10",
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f",
            b"GIF89a\x01",
        ];
        for g in garbage {
            assert_eq!(image_size(g), None, "{g:?}");
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        let mut out = Vec::new();
        let long: Vec<u8> = (0..=255u8).cycle().take(3 * 4096 + 7).collect();
        write_base64(&mut out, &long).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), base64(&long));
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
