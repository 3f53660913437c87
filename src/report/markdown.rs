//! Markdown rendering of a dataset diff, for a pull-request comment.
//!
//! Tables render on GitHub and GitLab; long per-frame detail goes into a
//! collapsed `<details>` block so the comment stays short.

use std::io::{self, Write};

use crate::ops::label_diff::DatasetDiff;

use super::short;
use super::text::{
    attribute_kind_style, attribute_totals, attribute_value, box_convention_line, change_detail,
    frame_totals, kind_style, object_totals, prediction_convention_line, prediction_totals,
    prediction_units, signed,
};

/// Escapes text for a markdown table cell.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push('\''),
            '\n' | '\r' => out.push(' '),
            '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

/// Frame cards beyond this many are summarized, to keep the comment postable.
const MAX_FRAMES: usize = 200;

/// Writes the markdown report.
pub fn render(diff: &DatasetDiff, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "### Dataset diff `{}` → `{}`\n",
        short(&diff.from),
        short(&diff.to)
    )?;
    writeln!(out, "- **Frames:** {}", frame_totals(diff))?;
    writeln!(out, "- **Labels:** {}", object_totals(diff))?;
    if !diff.frame_attribute_totals.is_empty() {
        writeln!(out, "- **Frame attributes:** {}", attribute_totals(diff))?;
    }
    if !diff.prediction_totals.is_empty() {
        writeln!(out, "- **Predictions:** {}", prediction_totals(diff))?;
    }
    if !diff.warnings.is_empty() {
        writeln!(
            out,
            "- **Warnings:** {} did not parse (shown at file level)",
            crate::quote::count(diff.warnings.len(), "label file")
        )?;
    }
    if !diff.classes.is_empty() {
        writeln!(out, "\n#### Classes (objects in the changed frames)\n")?;
        writeln!(
            out,
            "| class | before | after | delta | added | removed | moved | reclassified in / out | attributes |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for c in &diff.classes {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
                cell(&c.class),
                c.before,
                c.after,
                signed(c.delta),
                c.added,
                c.removed,
                c.moved,
                c.reclassified_in,
                c.reclassified_out,
                c.attributes
            )?;
        }
    }
    if !diff.frame_attribute_totals.values.is_empty() {
        writeln!(
            out,
            "\n#### Frame attributes (frames with each value, where the attribute changed)\n"
        )?;
        writeln!(out, "| attribute | value | before | after | delta |")?;
        writeln!(out, "|---|---|---:|---:|---:|")?;
        for v in &diff.frame_attribute_totals.values {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&v.attribute),
                cell(&v.value),
                v.before,
                v.after,
                signed(v.delta)
            )?;
        }
    }
    let f = &diff.frames;
    if !(f.added.is_empty()
        && f.removed.is_empty()
        && f.modified.is_empty()
        && f.renamed.is_empty())
    {
        writeln!(out, "\n<details><summary>Frame files</summary>\n")?;
        writeln!(out, "| change | frame |")?;
        writeln!(out, "|---|---|")?;
        for p in &f.added {
            writeln!(out, "| added | {} |", cell(p))?;
        }
        for p in &f.removed {
            writeln!(out, "| removed | {} |", cell(p))?;
        }
        for p in &f.modified {
            writeln!(out, "| modified | {} |", cell(p))?;
        }
        for r in &f.renamed {
            writeln!(out, "| renamed | {} → {} |", cell(&r.from), cell(&r.to))?;
        }
        writeln!(out, "\n</details>")?;
    }
    let frames: Vec<_> = diff
        .labels
        .iter()
        .flat_map(|l| l.frames.iter().map(move |f| (l, f)))
        .collect();
    if !frames.is_empty() {
        writeln!(
            out,
            "\n<details><summary>Object changes by frame</summary>\n"
        )?;
        if let Some(c) = box_convention_line(diff) {
            writeln!(out, "{}\n", cell(&c))?;
        }
        writeln!(out, "| frame | change | class | detail |")?;
        writeln!(out, "|---|---|---|---|")?;
        for (l, f) in frames.iter().take(MAX_FRAMES) {
            let frame = f.frame_path.as_deref().unwrap_or(&f.frame);
            for c in &f.changes {
                let (_, _, word) = kind_style(c.kind);
                let (class, detail) = change_detail(c, f.units);
                writeln!(
                    out,
                    "| {} ({}) | {word} | {} | {} |",
                    cell(frame),
                    cell(&l.path),
                    cell(&class),
                    cell(&detail)
                )?;
            }
        }
        if frames.len() > MAX_FRAMES {
            writeln!(
                out,
                "\n{} more frames with changes are not listed; run `dsv diff` for all of them.",
                frames.len() - MAX_FRAMES
            )?;
        }
        writeln!(out, "\n</details>")?;
    }
    if !diff.frame_attributes.is_empty() {
        writeln!(
            out,
            "\n<details><summary>Frame attribute changes by frame</summary>\n"
        )?;
        writeln!(out, "| frame | attribute | change | before | after |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for f in diff.frame_attributes.iter().take(MAX_FRAMES) {
            for c in &f.changes {
                let (_, _, word) = attribute_kind_style(c.kind);
                writeln!(
                    out,
                    "| {} ({}) | {} | {word} | {} | {} |",
                    cell(&f.frame),
                    cell(&f.file),
                    cell(&c.attribute),
                    cell(&attribute_value(&c.before)),
                    cell(&attribute_value(&c.after))
                )?;
            }
        }
        if diff.frame_attributes.len() > MAX_FRAMES {
            writeln!(
                out,
                "\n{} more frames with attribute changes are not listed; run `dsv diff` for all of them.",
                diff.frame_attributes.len() - MAX_FRAMES
            )?;
        }
        writeln!(out, "\n</details>")?;
    }
    if !diff.prediction_changes.is_empty() {
        writeln!(
            out,
            "\n<details><summary>Prediction changes by frame</summary>\n"
        )?;
        if let Some(c) = prediction_convention_line(diff) {
            writeln!(out, "{}\n", cell(&c))?;
        }
        writeln!(out, "| frame | predictions | change | class | detail |")?;
        writeln!(out, "|---|---:|---|---|---|")?;
        for f in diff.prediction_changes.iter().take(MAX_FRAMES) {
            let units = prediction_units(f);
            for c in &f.changes {
                let (_, _, word) = kind_style(c.kind);
                let (class, detail) = change_detail(c, units);
                writeln!(
                    out,
                    "| {} ({}) | {} → {} | {word} | {} | {} |",
                    cell(&f.frame),
                    cell(&f.file),
                    f.predictions_before,
                    f.predictions_after,
                    cell(&class),
                    cell(&detail)
                )?;
            }
        }
        if diff.prediction_changes.len() > MAX_FRAMES {
            writeln!(
                out,
                "\n{} more frames with prediction changes are not listed; run `dsv diff` for all of them.",
                diff.prediction_changes.len() - MAX_FRAMES
            )?;
        }
        writeln!(out, "\n</details>")?;
    }
    if !diff.warnings.is_empty() {
        writeln!(out, "\n#### Warnings\n")?;
        for w in &diff.warnings {
            writeln!(out, "- {}", cell(&w.to_string()))?;
        }
    }
    Ok(())
}
