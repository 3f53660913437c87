//! The terminal rendering of a dataset diff (`dsv diff` without `--json`/`--format`).

use std::io::{self, Write};

use crate::labels::compare::{ObjectChange, ObjectChangeKind};
use crate::labels::{AttrValue, BBox, Units};
use crate::object::diff::ChangeKind;
use crate::ops::frame_attrs::{AttributeChangeKind, AttributeValueDelta, FramePredictionChanges};
use crate::ops::label_diff::{ClassDelta, DatasetDiff};
use crate::paths::display_path;
use crate::quote::{line as safe_line, path as quote_path, path_str as quote};

/// Wraps `s` in an ANSI colour when `on`.
fn paint(on: bool, code: &str, s: &str) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// A box as `[x, y, w, h]`, with precision that suits its units.
pub fn fmt_box(b: &Option<BBox>, units: Units) -> String {
    let Some(b) = b else {
        return "-".into();
    };
    let digits = match units {
        Units::Normalized => 4,
        Units::Pixels => 1,
    };
    let num = |v: f64| {
        let s = format!("{v:.digits$}");
        // "-0.0000" reads as a sign error to a reviewer.
        if s.starts_with('-') && s[1..].bytes().all(|c| c == b'0' || c == b'.') {
            s[1..].to_string()
        } else {
            s
        }
    };
    format!("[{}, {}, {}, {}]", num(b.x), num(b.y), num(b.w), num(b.h))
}

/// The one-character mark, colour and word of a change kind.
pub fn kind_style(kind: ObjectChangeKind) -> (char, &'static str, &'static str) {
    match kind {
        ObjectChangeKind::Added => ('+', "32", "added"),
        ObjectChangeKind::Removed => ('-', "31", "removed"),
        ObjectChangeKind::Moved => ('~', "33", "moved"),
        ObjectChangeKind::Reclassified => ('*', "36", "reclassified"),
        ObjectChangeKind::Attributes => ('!', "35", "attributes"),
    }
}

/// What an object change says beyond its kind: classes, IoU, boxes, attributes.
pub fn change_detail(c: &ObjectChange, units: Units) -> (String, String) {
    let class = match &c.old_class {
        Some(old) => format!("{old} -> {}", c.class),
        None => c.class.clone(),
    };
    let mut detail = Vec::new();
    if c.shape != "box" {
        detail.push(c.shape.to_string());
    }
    if let Some(iou) = c.iou {
        detail.push(format!("IoU {iou:.2}"));
    }
    match c.kind {
        ObjectChangeKind::Added => detail.push(fmt_box(&c.after, units)),
        ObjectChangeKind::Removed => detail.push(fmt_box(&c.before, units)),
        _ if c.before != c.after => detail.push(format!(
            "{} -> {}",
            fmt_box(&c.before, units),
            fmt_box(&c.after, units)
        )),
        _ => {}
    }
    for (k, v) in &c.attributes {
        let show = |x: &Option<crate::labels::AttrValue>| {
            x.as_ref().map_or("(none)".to_string(), |v| v.to_string())
        };
        detail.push(format!("{k}: {} -> {}", show(&v.before), show(&v.after)));
    }
    if c.kind == ObjectChangeKind::Attributes && c.attributes.is_empty() {
        // Same class, box and attributes: the points or the kind changed.
        detail.push("shape changed".to_string());
    }
    (class, detail.join("  "))
}

/// Totals line for the object changes.
pub fn object_totals(diff: &DatasetDiff) -> String {
    let frames: usize = diff.labels.iter().map(|l| l.frames.len()).sum();
    format!(
        "{}, {} with object changes: {} added, {} removed, {} moved, {} reclassified, {} attributes changed",
        crate::quote::count(diff.labels.len(), "label file"),
        crate::quote::count(frames, "frame"),
        diff.count(ObjectChangeKind::Added),
        diff.count(ObjectChangeKind::Removed),
        diff.count(ObjectChangeKind::Moved),
        diff.count(ObjectChangeKind::Reclassified),
        diff.count(ObjectChangeKind::Attributes),
    )
}

/// The box convention line ([`crate::labels::box_convention`]) for the
/// boxes a diff shows, `None` when it shows none.
pub fn box_convention_line(diff: &DatasetDiff) -> Option<String> {
    let mut units = diff
        .labels
        .iter()
        .flat_map(|l| &l.frames)
        .filter(|f| {
            f.changes
                .iter()
                .any(|c| c.before.is_some() || c.after.is_some())
        })
        .map(|f| f.units)
        .peekable();
    units.peek()?;
    Some(crate::labels::box_convention(units))
}

/// The box convention line for the prediction boxes a diff shows, `None`
/// when it shows none.
pub fn prediction_convention_line(diff: &DatasetDiff) -> Option<String> {
    let mut units = diff
        .prediction_changes
        .iter()
        .filter(|f| {
            f.changes
                .iter()
                .any(|c| c.before.is_some() || c.after.is_some())
        })
        .map(prediction_units)
        .peekable();
    units.peek()?;
    Some(crate::labels::box_convention(units))
}

/// Totals line for the frame files.
pub fn frame_totals(diff: &DatasetDiff) -> String {
    let f = &diff.frames;
    format!(
        "{} added, {} removed, {} modified, {} renamed",
        f.added.len(),
        f.removed.len(),
        f.modified.len(),
        f.renamed.len()
    )
}

/// Totals line for the frame attribute changes.
pub fn attribute_totals(diff: &DatasetDiff) -> String {
    let t = &diff.frame_attribute_totals;
    format!(
        "{} with attribute changes: {} added, {} removed, {} changed",
        crate::quote::count(t.frames, "frame"),
        t.added,
        t.removed,
        t.changed
    )
}

/// Totals line for the prediction changes.
pub fn prediction_totals(diff: &DatasetDiff) -> String {
    let t = &diff.prediction_totals;
    format!(
        "{} frames with prediction changes: {} added, {} removed, {} changed",
        t.frames, t.added, t.removed, t.changed
    )
}

/// The units a frame's prediction boxes are shown in. Predictions are in
/// their frame's label units, which the sidecar does not say: boxes within
/// the unit square are shown as normalized.
pub fn prediction_units(f: &FramePredictionChanges) -> Units {
    let unit = f
        .changes
        .iter()
        .flat_map(|c| [c.before, c.after])
        .flatten()
        .all(|b| [b.x, b.y, b.w, b.h].iter().all(|v| (0.0..=1.0).contains(v)));
    if unit {
        Units::Normalized
    } else {
        Units::Pixels
    }
}

/// The word and colour of a frame attribute change.
pub fn attribute_kind_style(kind: AttributeChangeKind) -> (char, &'static str, &'static str) {
    match kind {
        AttributeChangeKind::Added => ('+', "32", "added"),
        AttributeChangeKind::Removed => ('-', "31", "removed"),
        AttributeChangeKind::Changed => ('!', "35", "changed"),
    }
}

/// A frame attribute value, or "(none)" on the side that does not have it.
pub fn attribute_value(v: &Option<AttrValue>) -> String {
    v.as_ref().map_or("(none)".to_string(), |v| v.to_string())
}

/// "+3" / "-1" / "0".
pub fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// Renders the class table rows as aligned text.
fn class_table(out: &mut dyn Write, classes: &[ClassDelta]) -> io::Result<()> {
    let w = classes
        .iter()
        .map(|c| c.class.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 40);
    writeln!(
        out,
        "  {:<w$}  {:>7}  {:>7}  {:>6}  {:>6}  {:>7}  {:>6}  {:>9}  {:>6}",
        "class", "before", "after", "delta", "added", "removed", "moved", "reclassed", "attrs"
    )?;
    for c in classes {
        writeln!(
            out,
            "  {:<w$}  {:>7}  {:>7}  {:>6}  {:>6}  {:>7}  {:>6}  {:>9}  {:>6}",
            safe_line(&c.class),
            c.before,
            c.after,
            signed(c.delta),
            c.added,
            c.removed,
            c.moved,
            format!("+{}/-{}", c.reclassified_in, c.reclassified_out),
            c.attributes
        )?;
    }
    Ok(())
}

/// Renders the per-value frame attribute totals as aligned text.
fn attribute_table(out: &mut dyn Write, values: &[AttributeValueDelta]) -> io::Result<()> {
    let width = |f: &dyn Fn(&AttributeValueDelta) -> &str, min: usize| {
        values
            .iter()
            .map(|v| f(v).chars().count())
            .max()
            .unwrap_or(min)
            .clamp(min, 40)
    };
    let aw = width(&|v| &v.attribute, 9);
    let vw = width(&|v| &v.value, 5);
    writeln!(
        out,
        "  {:<aw$}  {:<vw$}  {:>7}  {:>7}  {:>6}",
        "attribute", "value", "before", "after", "delta"
    )?;
    for v in values {
        writeln!(
            out,
            "  {:<aw$}  {:<vw$}  {:>7}  {:>7}  {:>6}",
            safe_line(&v.attribute),
            safe_line(&v.value),
            v.before,
            v.after,
            signed(v.delta)
        )?;
    }
    Ok(())
}

/// Writes the full terminal report.
pub fn render(diff: &DatasetDiff, color: bool, out: &mut dyn Write) -> io::Result<()> {
    if diff.files.is_empty() {
        // Like git: no difference, no output.
        return Ok(());
    }
    let bold = |s: &str| paint(color, "1", s);
    writeln!(out, "{} {}", bold("frames:"), frame_totals(diff))?;
    // Names and label contents are the committer's data: quoted and escaped, never raw.
    for p in &diff.frames.added {
        writeln!(out, "  {}  {}", paint(color, "32", "A"), quote(p))?;
    }
    for p in &diff.frames.removed {
        writeln!(out, "  {}  {}", paint(color, "31", "D"), quote(p))?;
    }
    for p in &diff.frames.modified {
        writeln!(out, "  {}  {}", paint(color, "33", "M"), quote(p))?;
    }
    for r in &diff.frames.renamed {
        writeln!(
            out,
            "  {}  {} -> {}",
            paint(color, "33", "R"),
            quote(&r.from),
            quote(&r.to)
        )?;
    }
    writeln!(out, "{} {}", bold("labels:"), object_totals(diff))?;
    if let Some(c) = box_convention_line(diff) {
        writeln!(out, "{}", paint(color, "2", &c))?;
    }
    for l in &diff.labels {
        for f in &l.frames {
            let frame = f.frame_path.as_deref().unwrap_or(&f.frame);
            writeln!(out)?;
            writeln!(
                out,
                "{}  {}  {}",
                bold(&quote(&l.path)),
                paint(color, "2", &format!("[{}]", l.format.name())),
                quote(frame)
            )?;
            let cw = f
                .changes
                .iter()
                .map(|c| change_detail(c, f.units).0.chars().count())
                .max()
                .unwrap_or(0)
                .min(40);
            for c in &f.changes {
                let (mark, code, word) = kind_style(c.kind);
                let (class, detail) = change_detail(c, f.units);
                let (class, detail) = (safe_line(&class), safe_line(&detail));
                let head = format!("{mark} {word:<12}");
                let line = format!("  {}  {class:<cw$}  {detail}", paint(color, code, &head));
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    if !diff.frame_attribute_totals.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{} {}",
            bold("frame attributes:"),
            attribute_totals(diff)
        )?;
    }
    for f in &diff.frame_attributes {
        writeln!(out)?;
        writeln!(out, "{}  {}", bold(&quote(&f.file)), quote(&f.frame))?;
        let aw = f
            .changes
            .iter()
            .map(|c| c.attribute.chars().count())
            .max()
            .unwrap_or(0)
            .min(40);
        for c in &f.changes {
            let (mark, code, word) = attribute_kind_style(c.kind);
            let head = format!("{mark} {word:<12}");
            let detail = format!(
                "{} -> {}",
                attribute_value(&c.before),
                attribute_value(&c.after)
            );
            let line = format!(
                "  {}  {:<aw$}  {}",
                paint(color, code, &head),
                safe_line(&c.attribute),
                safe_line(&detail)
            );
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    if !diff.prediction_totals.is_empty() {
        writeln!(out)?;
        writeln!(out, "{} {}", bold("predictions:"), prediction_totals(diff))?;
    }
    for f in &diff.prediction_changes {
        writeln!(out)?;
        writeln!(
            out,
            "{}  {}  {}",
            bold(&quote(&f.file)),
            quote(&f.frame),
            paint(
                color,
                "2",
                &format!(
                    "({} -> {} predictions)",
                    f.predictions_before, f.predictions_after
                )
            )
        )?;
        let units = prediction_units(f);
        for c in &f.changes {
            let (mark, code, word) = kind_style(c.kind);
            let (class, detail) = change_detail(c, units);
            let (class, detail) = (safe_line(&class), safe_line(&detail));
            let head = format!("{mark} {word:<12}");
            let line = format!("  {}  {class}  {detail}", paint(color, code, &head));
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    let others: Vec<_> = diff
        .files
        .iter()
        .filter(|c| {
            let p = display_path(&c.path);
            !diff.labels.iter().any(|l| l.path == p)
                && !diff.frames.added.contains(&p)
                && !diff.frames.removed.contains(&p)
                && !diff.frames.modified.contains(&p)
                && !diff.frames.renamed.iter().any(|r| r.to == p)
        })
        .collect();
    if !others.is_empty() {
        writeln!(out)?;
        writeln!(out, "{} {}", bold("other files:"), others.len())?;
        for c in others {
            let code = match c.kind {
                ChangeKind::Added => "32",
                ChangeKind::Deleted => "31",
                _ => "33",
            };
            let path = match &c.from {
                Some(f) => format!("{} -> {}", quote_path(f), quote_path(&c.path)),
                None => quote_path(&c.path).into_owned(),
            };
            writeln!(
                out,
                "  {}  {path}",
                paint(color, code, &c.kind.letter().to_string())
            )?;
        }
    }
    if !diff.classes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", bold("classes (objects in the changed frames):"))?;
        class_table(out, &diff.classes)?;
    }
    if !diff.frame_attribute_totals.values.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            bold("frame attributes (frames with each value, where the attribute changed):")
        )?;
        attribute_table(out, &diff.frame_attribute_totals.values)?;
    }
    if !diff.warnings.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{} {} shown at file level only (parse errors):",
            paint(color, "33", "warning:"),
            crate::quote::count(diff.warnings.len(), "label file")
        )?;
        for w in &diff.warnings {
            writeln!(out, "  {}", crate::quote::text(&w.to_string()))?;
        }
    }
    Ok(())
}
