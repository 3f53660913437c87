//! Three-way merge of one label file at frame and object level.
//!
//! The three versions (base, ours, theirs) are parsed into the normalized model.
//! Frames are matched by name; inside a frame changed on both sides, the objects
//! of each side are paired with the base's objects by the same matching the
//! dataset diff uses ([`pair_objects`]), so every object knows whether a side
//! kept, changed or removed it. Only the same object (or the same frame's
//! fields) changed differently on both sides is a conflict. Every conflict is
//! resolved twice, once each way, so `dsv resolve --ours/--theirs` can later
//! pick a side without merging again.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::labels::compare::{MatchOptions, pair_objects};
use crate::labels::{FrameLabels, Object};

/// One frame- or object-level conflict inside a label file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelConflict {
    /// The frame, as the label file names it.
    pub frame: String,
    /// The object (its id, else its class and box); `None` for the frame itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// What each side did.
    pub reason: String,
    /// The object in the merge base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Object>,
    /// The object on our side (`None`: removed or absent).
    #[serde(default)]
    pub ours: Option<Object>,
    /// The object on their side (`None`: removed or absent).
    #[serde(default)]
    pub theirs: Option<Object>,
}

/// The outcome of merging the frames of one label file.
#[derive(Debug, Clone)]
pub struct FramesMerge {
    /// Merged frames, conflicts resolved in favour of ours.
    pub ours: Vec<FrameLabels>,
    /// Merged frames, conflicts resolved in favour of theirs.
    pub theirs: Vec<FrameLabels>,
    /// The conflicts (empty: a clean merge, and `ours == theirs`).
    pub conflicts: Vec<LabelConflict>,
}

/// Names an object for a person: its id, else its class and box.
fn describe(o: &Object) -> String {
    if let Some(id) = &o.id {
        return format!("{} (id {id})", o.class);
    }
    // Rounded: YOLO's centre-to-corner conversion leaves float noise no tool means.
    let r = |v: f64| (v * 1e6).round() / 1e6 + 0.0;
    match &o.bbox {
        Some(b) => format!(
            "{} at [{}, {}, {}, {}]",
            o.class,
            r(b.x),
            r(b.y),
            r(b.w),
            r(b.h)
        ),
        None => o.class.clone(),
    }
}

/// Merges whole files' frames. `None` when a side names one frame twice: such a
/// file cannot be merged by frame, and the caller falls back to the file level.
pub fn merge_frames(
    base: &[FrameLabels],
    ours: &[FrameLabels],
    theirs: &[FrameLabels],
    opts: &MatchOptions,
) -> Option<FramesMerge> {
    let index = |frames: &[FrameLabels]| -> Option<HashMap<String, usize>> {
        let mut m = HashMap::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            if m.insert(f.frame.clone(), i).is_some() {
                return None;
            }
        }
        Some(m)
    };
    let (bi, oi, ti) = (index(base)?, index(ours)?, index(theirs)?);
    let mut out = FramesMerge {
        ours: Vec::new(),
        theirs: Vec::new(),
        conflicts: Vec::new(),
    };
    // Our order first, then frames only they have, in their order; frames we
    // removed come back at their position in the base when they changed them.
    let mut names: Vec<&str> = ours.iter().map(|f| f.frame.as_str()).collect();
    names.extend(
        theirs
            .iter()
            .map(|f| f.frame.as_str())
            .filter(|n| !oi.contains_key(*n)),
    );
    names.extend(
        base.iter()
            .map(|f| f.frame.as_str())
            .filter(|n| !oi.contains_key(*n) && !ti.contains_key(*n)),
    );
    for name in names {
        let b = bi.get(name).map(|&i| &base[i]);
        let o = oi.get(name).map(|&i| &ours[i]);
        let t = ti.get(name).map(|&i| &theirs[i]);
        let (mo, mt) = merge_frame(b, o, t, opts, &mut out.conflicts);
        out.ours.extend(mo);
        out.theirs.extend(mt);
    }
    Some(out)
}

/// Three-way choice of one value: `Err` when both sides changed it differently.
fn pick<T: PartialEq + Clone>(b: &T, o: &T, t: &T) -> Result<T, ()> {
    if o == t || b == t {
        Ok(o.clone())
    } else if b == o {
        Ok(t.clone())
    } else {
        Err(())
    }
}

/// Merges one frame; returns the our-side and their-side resolutions.
fn merge_frame(
    b: Option<&FrameLabels>,
    o: Option<&FrameLabels>,
    t: Option<&FrameLabels>,
    opts: &MatchOptions,
    conflicts: &mut Vec<LabelConflict>,
) -> (Option<FrameLabels>, Option<FrameLabels>) {
    if o == t || b == t {
        return (o.cloned(), o.cloned());
    }
    if b == o {
        return (t.cloned(), t.cloned());
    }
    let (o, t) = match (o, t) {
        (Some(o), Some(t)) => (o, t),
        (o, t) => {
            let name = o.or(t).map(|f| f.frame.clone()).unwrap_or_default();
            let reason = if o.is_none() {
                "we removed the frame, they changed it"
            } else {
                "we changed the frame, they removed it"
            };
            conflicts.push(LabelConflict {
                frame: name,
                object: None,
                reason: reason.into(),
                base: None,
                ours: None,
                theirs: None,
            });
            return (o.cloned(), t.cloned());
        }
    };
    let empty = FrameLabels::new(o.frame.clone(), o.units);
    let b = b.unwrap_or(&empty);
    let mut mo = o.clone();
    let mut mt = o.clone();
    let fields = (
        pick(&b.width, &o.width, &t.width),
        pick(&b.height, &o.height, &t.height),
        pick(&b.units, &o.units, &t.units),
        pick(&b.attributes, &o.attributes, &t.attributes),
    );
    match fields {
        (Ok(w), Ok(h), Ok(u), Ok(a)) => {
            for m in [&mut mo, &mut mt] {
                m.width = w;
                m.height = h;
                m.units = u;
                m.attributes = a.clone();
            }
        }
        _ => {
            conflicts.push(LabelConflict {
                frame: o.frame.clone(),
                object: None,
                reason: "both sides changed the frame's size, units or attributes differently"
                    .into(),
                base: None,
                ours: None,
                theirs: None,
            });
            mt.width = t.width;
            mt.height = t.height;
            mt.units = t.units;
            mt.attributes = t.attributes.clone();
        }
    }
    if mo.units != mt.units || o.units != t.units {
        // Boxes in different units cannot be paired or mixed: the whole frame conflicts.
        conflicts.push(LabelConflict {
            frame: o.frame.clone(),
            object: None,
            reason: "the two sides use different box units".into(),
            base: None,
            ours: None,
            theirs: None,
        });
        return (Some(o.clone()), Some(t.clone()));
    }
    let (oo, ot) = merge_objects(
        &o.frame, &b.objects, &o.objects, &t.objects, opts, conflicts,
    );
    mo.objects = oo;
    mt.objects = ot;
    (Some(mo), Some(mt))
}

/// Merges the objects of one frame; returns the our-side and their-side resolutions.
pub fn merge_objects(
    frame: &str,
    base: &[Object],
    ours: &[Object],
    theirs: &[Object],
    opts: &MatchOptions,
    conflicts: &mut Vec<LabelConflict>,
) -> (Vec<Object>, Vec<Object>) {
    let po = pair_objects(base, ours, opts);
    let pt = pair_objects(base, theirs, opts);
    let mut base_of_ours: Vec<Option<usize>> = vec![None; ours.len()];
    for (i, j) in po.iter().enumerate() {
        if let Some(j) = j {
            base_of_ours[*j] = Some(i);
        }
    }
    let mut theirs_paired = vec![false; theirs.len()];
    for j in pt.iter().flatten() {
        theirs_paired[*j] = true;
    }
    let conflict = |conflicts: &mut Vec<LabelConflict>,
                    reason: &str,
                    b: &Object,
                    o: Option<&Object>,
                    t: Option<&Object>| {
        conflicts.push(LabelConflict {
            frame: frame.to_string(),
            object: Some(describe(o.or(t).unwrap_or(b))),
            reason: reason.into(),
            base: Some(b.clone()),
            ours: o.cloned(),
            theirs: t.cloned(),
        });
    };
    let mut mo = Vec::with_capacity(ours.len());
    let mut mt = Vec::with_capacity(ours.len());
    for (j, o) in ours.iter().enumerate() {
        let Some(i) = base_of_ours[j] else {
            // Added by us; their additions are compared with ours below.
            continue;
        };
        let b = &base[i];
        match pt[i].map(|k| &theirs[k]) {
            Some(t) => match pick(b, o, t) {
                Ok(m) => {
                    mo.push(m.clone());
                    mt.push(m);
                }
                Err(()) => {
                    conflict(
                        conflicts,
                        "both sides changed the object differently",
                        b,
                        Some(o),
                        Some(t),
                    );
                    mo.push(o.clone());
                    mt.push(t.clone());
                }
            },
            None if o == b => {}
            None => {
                conflict(
                    conflicts,
                    "we changed the object, they removed it",
                    b,
                    Some(o),
                    None,
                );
                mo.push(o.clone());
            }
        }
    }
    // Objects we removed that they changed.
    for (i, b) in base.iter().enumerate() {
        if po[i].is_none()
            && let Some(k) = pt[i]
            && theirs[k] != *b
        {
            conflict(
                conflicts,
                "we removed the object, they changed it",
                b,
                None,
                Some(&theirs[k]),
            );
            mt.push(theirs[k].clone());
        }
    }
    // Additions: the same new object added on both sides once; two different
    // versions of one new object (overlapping boxes) conflict.
    let ours_added: Vec<&Object> = (0..ours.len())
        .filter(|&j| base_of_ours[j].is_none())
        .map(|j| &ours[j])
        .collect();
    let theirs_added: Vec<&Object> = (0..theirs.len())
        .filter(|&k| !theirs_paired[k])
        .map(|k| &theirs[k])
        .collect();
    let oa: Vec<Object> = ours_added.iter().map(|o| (*o).clone()).collect();
    let ta: Vec<Object> = theirs_added.iter().map(|o| (*o).clone()).collect();
    let pair = pair_objects(&oa, &ta, opts);
    let mut ta_taken = vec![false; ta.len()];
    for (a, o) in oa.iter().enumerate() {
        match pair[a] {
            Some(k) if ta[k] != *o => {
                ta_taken[k] = true;
                conflicts.push(LabelConflict {
                    frame: frame.to_string(),
                    object: Some(describe(o)),
                    reason: "both sides added this object differently".into(),
                    base: None,
                    ours: Some(o.clone()),
                    theirs: Some(ta[k].clone()),
                });
                mo.push(o.clone());
                mt.push(ta[k].clone());
            }
            Some(k) => {
                ta_taken[k] = true;
                mo.push(o.clone());
                mt.push(o.clone());
            }
            None => {
                mo.push(o.clone());
                mt.push(o.clone());
            }
        }
    }
    for (k, t) in ta.into_iter().enumerate() {
        if !ta_taken[k] {
            mo.push(t.clone());
            mt.push(t);
        }
    }
    (mo, mt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{BBox, Units};

    fn obj(class: &str, x: f64) -> Object {
        Object::new(
            class,
            Some(BBox {
                x,
                y: 0.0,
                w: 10.0,
                h: 10.0,
            }),
        )
    }

    fn merge(b: &[Object], o: &[Object], t: &[Object]) -> (Vec<Object>, Vec<Object>, usize) {
        let mut c = Vec::new();
        let (mo, mt) = merge_objects("f", b, o, t, &MatchOptions::default(), &mut c);
        (mo, mt, c.len())
    }

    #[test]
    fn different_objects_merge_cleanly() {
        let base = vec![obj("car", 0.0), obj("car", 100.0)];
        let ours = vec![obj("truck", 0.0), obj("car", 100.0)];
        let theirs = vec![obj("car", 0.0), obj("car", 101.0), obj("bike", 300.0)];
        let (mo, mt, n) = merge(&base, &ours, &theirs);
        assert_eq!(n, 0);
        assert_eq!(mo, mt);
        assert_eq!(
            mo,
            vec![obj("truck", 0.0), obj("car", 101.0), obj("bike", 300.0)]
        );
    }

    #[test]
    fn same_object_changed_twice_conflicts() {
        let base = vec![obj("car", 0.0)];
        let (mo, mt, n) = merge(&base, &[obj("truck", 0.0)], &[obj("bus", 0.0)]);
        assert_eq!(n, 1);
        assert_eq!(mo, vec![obj("truck", 0.0)]);
        assert_eq!(mt, vec![obj("bus", 0.0)]);
    }

    #[test]
    fn removed_and_changed_conflicts_removed_and_kept_merges() {
        let base = vec![obj("car", 0.0), obj("car", 100.0)];
        let (mo, _, n) = merge(&base, &[obj("car", 100.0)], &base);
        assert_eq!((mo.len(), n), (1, 0));
        let (_, _, n) = merge(
            &base,
            &[obj("car", 100.0)],
            &[obj("van", 0.0), obj("car", 100.0)],
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn frames_added_on_both_sides_merge() {
        let f = |name: &str, objs: Vec<Object>| FrameLabels {
            objects: objs,
            ..FrameLabels::new(name, Units::Pixels)
        };
        let base = vec![f("a", vec![obj("car", 0.0)])];
        let ours = vec![f("a", vec![obj("car", 0.0)]), f("b", vec![])];
        let theirs = vec![f("a", vec![obj("car", 0.0)]), f("c", vec![obj("x", 5.0)])];
        let m = merge_frames(&base, &ours, &theirs, &MatchOptions::default()).expect("merge");
        assert!(m.conflicts.is_empty());
        let names: Vec<&str> = m.ours.iter().map(|f| f.frame.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
