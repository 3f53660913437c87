//! Frame attribute changes of a dataset diff: which attributes of which frame
//! were added, removed or given a new value, in the metadata sidecar (a row per
//! frame path) or in a label file's frame-level attributes (COCO image fields,
//! CVAT image tags), and their totals per attribute value.
//!
//! The totals are computed once here and carried by the diff, so `diff` (text,
//! JSON, markdown, HTML) and the hook payload show the same figures; values are
//! counted under the same names as `dsv stats` counts them (real numbers under
//! "number"), so their deltas are the deltas of `dsv stats A B`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::Result;
use crate::labels::compare::{MatchOptions, ObjectChange, ObjectChangeKind, compare_objects};
use crate::labels::{AttrValue, FrameLabels, Object};
use crate::meta::{Prediction, Sidecar};

/// How one attribute of a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeChangeKind {
    /// The frame did not have the attribute before.
    Added,
    /// The frame no longer has the attribute.
    Removed,
    /// The attribute has a new value.
    Changed,
}

/// One attribute of one frame that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeChange {
    /// Attribute name.
    pub attribute: String,
    /// Added, removed or changed.
    pub kind: AttributeChangeKind,
    /// Value before (`null` when added).
    pub before: Option<AttrValue>,
    /// Value after (`null` when removed).
    pub after: Option<AttrValue>,
}

/// The attribute changes of one frame in one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameAttributeChanges {
    /// The frame: its path (a sidecar row's path, or the frame file a label
    /// file's entry resolves to), else the name the label file gives it.
    pub frame: String,
    /// Where the attributes are written: the sidecar or the label file.
    pub file: String,
    /// The attributes that changed, by name.
    pub changes: Vec<AttributeChange>,
}

/// Frames having one value of one attribute, before and after, over the
/// frames where that attribute changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttributeValueDelta {
    /// Attribute name.
    pub attribute: String,
    /// The value as `dsv stats` counts it (real numbers are "number").
    pub value: String,
    /// Frames with this value before.
    pub before: u64,
    /// Frames with this value after.
    pub after: u64,
    /// after - before.
    pub delta: i64,
}

/// Totals of the frame attribute changes of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FrameAttributeTotals {
    /// Distinct frames with at least one attribute change.
    pub frames: usize,
    /// Attributes added to a frame.
    pub added: usize,
    /// Attributes removed from a frame.
    pub removed: usize,
    /// Attributes given a new value.
    pub changed: usize,
    /// Per attribute and value, sorted by attribute then value.
    pub values: Vec<AttributeValueDelta>,
}

impl FrameAttributeTotals {
    /// Whether no frame attribute changed.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }
}

/// The attributes that differ between two versions of a frame, by name.
pub fn compare_attrs(
    before: &BTreeMap<String, AttrValue>,
    after: &BTreeMap<String, AttrValue>,
) -> Vec<AttributeChange> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter_map(|k| {
            let (b, a) = (before.get(k), after.get(k));
            let kind = match (b, a) {
                (None, Some(_)) => AttributeChangeKind::Added,
                (Some(_), None) => AttributeChangeKind::Removed,
                (Some(x), Some(y)) if x != y => AttributeChangeKind::Changed,
                _ => return None,
            };
            Some(AttributeChange {
                attribute: k.clone(),
                kind,
                before: b.cloned(),
                after: a.cloned(),
            })
        })
        .collect()
}

/// The attribute changes between two versions of the sidecar `file`, per row.
pub fn sidecar_changes(file: &str, old: &Sidecar, new: &Sidecar) -> Vec<FrameAttributeChanges> {
    let empty = BTreeMap::new();
    let paths: BTreeSet<&String> = old.rows.keys().chain(new.rows.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let b = old.rows.get(p).map_or(&empty, |m| &m.attrs);
            let a = new.rows.get(p).map_or(&empty, |m| &m.attrs);
            let changes = compare_attrs(b, a);
            (!changes.is_empty()).then(|| FrameAttributeChanges {
                frame: p.clone(),
                file: file.to_string(),
                changes,
            })
        })
        .collect()
}

/// The prediction changes of one frame in the metadata sidecar: its
/// predictions paired and compared as label objects are (a prediction's
/// `score` is an attribute, so a new score alone is an `attributes` change).
#[derive(Debug, Clone, Serialize)]
pub struct FramePredictionChanges {
    /// The frame's path (the sidecar row's).
    pub frame: String,
    /// The sidecar file.
    pub file: String,
    /// Predictions of the frame before.
    pub predictions_before: usize,
    /// Predictions after.
    pub predictions_after: usize,
    /// What changed: added, removed, moved, reclassified, attributes (score).
    pub changes: Vec<ObjectChange>,
}

/// Totals of the prediction changes of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PredictionTotals {
    /// Frames with at least one prediction change.
    pub frames: usize,
    /// Predictions added.
    pub added: usize,
    /// Predictions removed.
    pub removed: usize,
    /// Predictions paired with one before whose box, class or score changed.
    pub changed: usize,
}

impl PredictionTotals {
    /// Whether no prediction changed.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }
}

fn prediction_objects(ps: &[Prediction]) -> Vec<Object> {
    ps.iter()
        .map(|p| {
            let mut o = Object::new(p.class.clone(), p.bbox);
            if let Some(s) = p.score {
                o.attributes.insert("score".into(), AttrValue::Float(s));
            }
            o
        })
        .collect()
}

/// The prediction changes between two versions of the sidecar `file`, per row.
pub fn prediction_changes(file: &str, old: &Sidecar, new: &Sidecar) -> Vec<FramePredictionChanges> {
    let none: Vec<Prediction> = Vec::new();
    let paths: BTreeSet<&String> = old.rows.keys().chain(new.rows.keys()).collect();
    let opts = MatchOptions::default();
    paths
        .into_iter()
        .filter_map(|p| {
            let b = old.rows.get(p).map_or(&none, |m| &m.predictions);
            let a = new.rows.get(p).map_or(&none, |m| &m.predictions);
            if b == a {
                return None;
            }
            let changes = compare_objects(&prediction_objects(b), &prediction_objects(a), &opts);
            (!changes.is_empty()).then(|| FramePredictionChanges {
                frame: p.clone(),
                file: file.to_string(),
                predictions_before: b.len(),
                predictions_after: a.len(),
                changes,
            })
        })
        .collect()
}

/// The totals of a list of prediction changes.
pub fn prediction_totals(changes: &[FramePredictionChanges]) -> PredictionTotals {
    let mut t = PredictionTotals {
        frames: changes
            .iter()
            .map(|f| &f.frame)
            .collect::<BTreeSet<_>>()
            .len(),
        ..PredictionTotals::default()
    };
    for c in changes.iter().flat_map(|f| &f.changes) {
        match c.kind {
            ObjectChangeKind::Added => t.added += 1,
            ObjectChangeKind::Removed => t.removed += 1,
            _ => t.changed += 1,
        }
    }
    t
}

/// Per frame path, the attribute names its sidecar row sets before and after.
pub type SidecarNames = BTreeMap<String, [BTreeSet<String>; 2]>;

/// Drops from the label files' attribute changes what the sidecar overrides:
/// where a frame's sidecar row sets an attribute on a side, the label file's
/// value is not the frame's there (the sidecar's is, as queries and `dsv stats`
/// see it), so a change in the label file is listed only for the sides where it
/// shows. `sidecar` names the sidecar file, whose own changes are kept.
pub fn drop_shadowed(changes: &mut Vec<FrameAttributeChanges>, sidecar: &str, rows: &SidecarNames) {
    for f in changes.iter_mut() {
        if f.file == sidecar {
            continue;
        }
        let Some([before, after]) = rows.get(&f.frame) else {
            continue;
        };
        f.changes.retain_mut(|c| {
            if before.contains(&c.attribute) {
                c.before = None;
            }
            if after.contains(&c.attribute) {
                c.after = None;
            }
            c.kind = match (&c.before, &c.after) {
                (None, None) => return false,
                (None, Some(_)) => AttributeChangeKind::Added,
                (Some(_), None) => AttributeChangeKind::Removed,
                (Some(x), Some(y)) if x != y => AttributeChangeKind::Changed,
                _ => return false,
            };
            true
        });
    }
    changes.retain(|f| !f.changes.is_empty());
}

/// The lines of two versions of a JSONL sidecar that can make a difference:
/// each side's lines the other side lacks, and the lines both have for which
/// `wanted` says yes (kept on both sides, where they cancel out unless the
/// caller drops a side's row). A one-row edit of a million-row sidecar then
/// parses two rows, not two million.
pub fn reduce_jsonl(a: &[u8], b: &[u8], wanted: &dyn Fn(&[u8]) -> bool) -> (Vec<u8>, Vec<u8>) {
    use std::collections::HashSet;
    fn lines(x: &[u8]) -> Vec<&[u8]> {
        x.split(|&c| c == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
            .collect()
    }
    let (la, lb) = (lines(a), lines(b));
    let (sa, sb): (HashSet<&[u8]>, HashSet<&[u8]>) =
        (la.iter().copied().collect(), lb.iter().copied().collect());
    let keep = |ls: &[&[u8]], other: &HashSet<&[u8]>| {
        let mut out = Vec::new();
        for l in ls {
            if !other.contains(l) || wanted(l) {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
        }
        out
    };
    (keep(&la, &sb), keep(&lb, &sa))
}

/// A label file's frame attributes by frame name; a frame described twice has
/// its later entry's attributes win, as the query index merges them.
fn by_frame(frames: &[FrameLabels]) -> BTreeMap<&str, BTreeMap<String, AttrValue>> {
    let mut out: BTreeMap<&str, BTreeMap<String, AttrValue>> = BTreeMap::new();
    for f in frames {
        let e = out.entry(f.frame.as_str()).or_default();
        e.extend(f.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The frame attribute changes between two versions of the label file `file`;
/// `resolve(frame, after)` finds the frame file of a frame name on one side,
/// and `moved(frame)` says whether a frame of that name may have come or gone
/// between the versions (a frame file added, removed or renamed).
///
/// As in `dsv query` and `dsv stats`, an entry's attributes are its frame's
/// only on a side where that frame exists: a frame removed while its entry
/// stays loses them, a frame added to an entry that was there gains them. An
/// entry naming no frame on either side is compared by its name.
pub fn label_changes(
    file: &str,
    old: &[FrameLabels],
    new: &[FrameLabels],
    resolve: impl Fn(&str, bool) -> Result<Option<String>>,
    moved: impl Fn(&str) -> bool,
) -> Result<Vec<FrameAttributeChanges>> {
    if old.iter().chain(new).all(|f| f.attributes.is_empty()) {
        return Ok(Vec::new());
    }
    let (b, a) = (by_frame(old), by_frame(new));
    let empty = BTreeMap::new();
    let names: BTreeSet<&str> = b.keys().chain(a.keys()).copied().collect();
    let mut out = Vec::new();
    for name in names {
        let (bv, av) = (b.get(name), a.get(name));
        if bv == av && !moved(name) {
            continue;
        }
        let rb = match bv {
            Some(_) => resolve(name, false)?,
            None => None,
        };
        let ra = match av {
            Some(_) => resolve(name, true)?,
            None => None,
        };
        let (bv, av) = match (&rb, &ra) {
            (None, None) => (bv, av),
            _ => (bv.filter(|_| rb.is_some()), av.filter(|_| ra.is_some())),
        };
        let changes = compare_attrs(bv.unwrap_or(&empty), av.unwrap_or(&empty));
        if changes.is_empty() {
            continue;
        }
        let frame = match ra.or(rb) {
            Some(p) => p,
            None => name.to_string(),
        };
        out.push(FrameAttributeChanges {
            frame,
            file: file.to_string(),
            changes,
        });
    }
    Ok(out)
}

/// The attribute changes of the frames of an unchanged label file that came
/// or went: `gone(frame)` and `came(frame)` give the frame file an entry names
/// on the old and the new side when that frame file is one that went or came.
pub fn moved_frame_changes(
    file: &str,
    frames: &[FrameLabels],
    gone: impl Fn(&str) -> Result<Option<String>>,
    came: impl Fn(&str) -> Result<Option<String>>,
) -> Result<Vec<FrameAttributeChanges>> {
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for (name, attrs) in by_frame(frames) {
        if attrs.is_empty() {
            continue;
        }
        for (path, before, after) in [(gone(name)?, &attrs, &empty), (came(name)?, &empty, &attrs)]
        {
            if let Some(frame) = path {
                out.push(FrameAttributeChanges {
                    frame,
                    file: file.to_string(),
                    changes: compare_attrs(before, after),
                });
            }
        }
    }
    Ok(out)
}

/// The totals of a list of frame attribute changes.
pub fn totals(changes: &[FrameAttributeChanges]) -> FrameAttributeTotals {
    let mut t = FrameAttributeTotals::default();
    let mut values: BTreeMap<(&str, String), (u64, u64)> = BTreeMap::new();
    let mut frames: BTreeSet<&str> = BTreeSet::new();
    for f in changes {
        frames.insert(&f.frame);
        for c in &f.changes {
            match c.kind {
                AttributeChangeKind::Added => t.added += 1,
                AttributeChangeKind::Removed => t.removed += 1,
                AttributeChangeKind::Changed => t.changed += 1,
            }
            if let Some(v) = &c.before {
                values
                    .entry((&c.attribute, crate::labels::attr_bucket(v)))
                    .or_default()
                    .0 += 1;
            }
            if let Some(v) = &c.after {
                values
                    .entry((&c.attribute, crate::labels::attr_bucket(v)))
                    .or_default()
                    .1 += 1;
            }
        }
    }
    t.frames = frames.len();
    t.values = values
        .into_iter()
        .map(
            |((attribute, value), (before, after))| AttributeValueDelta {
                attribute: attribute.to_string(),
                value,
                before,
                after,
                delta: after as i64 - before as i64,
            },
        )
        .collect();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, AttrValue)]) -> BTreeMap<String, AttrValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn reduce_jsonl_keeps_differing_and_wanted_lines() {
        let a = b"{\"path\":\"a\",\"w\":1}\n{\"path\":\"b\",\"w\":1}\n\n{\"path\":\"c\",\"w\":1}\n";
        let b = b"{\"path\":\"a\",\"w\":1}\n{\"path\":\"b\",\"w\":2}\n{\"path\":\"c\",\"w\":1}";
        let wanted = |l: &[u8]| l.windows(5).any(|w| w == b"\"c\",\"");
        let (ra, rb) = reduce_jsonl(a, b, &wanted);
        assert_eq!(
            String::from_utf8(ra).unwrap(),
            "{\"path\":\"b\",\"w\":1}\n{\"path\":\"c\",\"w\":1}\n"
        );
        assert_eq!(
            String::from_utf8(rb).unwrap(),
            "{\"path\":\"b\",\"w\":2}\n{\"path\":\"c\",\"w\":1}\n"
        );
    }

    #[test]
    fn totals_count_values_as_stats_does_and_frames_once() {
        let s = |x: &str| AttrValue::Str(x.into());
        let changes = vec![
            FrameAttributeChanges {
                frame: "a.jpg".into(),
                file: "meta.jsonl".into(),
                changes: compare_attrs(
                    &row(&[("weather", s("rain")), ("score", AttrValue::Float(0.1))]),
                    &row(&[("weather", s("snow")), ("score", AttrValue::Float(0.2))]),
                ),
            },
            FrameAttributeChanges {
                frame: "a.jpg".into(),
                file: "ann.json".into(),
                changes: compare_attrs(&row(&[]), &row(&[("night", AttrValue::Bool(true))])),
            },
        ];
        let t = totals(&changes);
        assert_eq!((t.frames, t.added, t.removed, t.changed), (1, 1, 0, 2));
        let v: Vec<(&str, &str, i64)> = t
            .values
            .iter()
            .map(|v| (v.attribute.as_str(), v.value.as_str(), v.delta))
            .collect();
        assert_eq!(
            v,
            vec![
                ("night", "true", 1),
                ("score", "number", 0),
                ("weather", "rain", -1),
                ("weather", "snow", 1),
            ]
        );
    }
}
