//! Object-level comparison of two versions of one frame's labels.
//!
//! Objects are paired in three steps: identical objects first (the common case:
//! most objects of an edited file did not change), then by stable id when the
//! format has ids that persist across versions, then by an optimal assignment on
//! IoU (Kuhn-Munkres from `pathfinding`), run separately on each group of boxes
//! that overlap, so a crowded frame costs a few small assignments instead of one
//! cubic one (a group of more than a thousand boxes, which only a hostile or
//! damaged file makes, is paired greedily), and last lines and points (whose
//! boxes may have no area) by nearest box centre within the same kind and
//! class. Every shape kind is compared this way on its bounding box, and any
//! change of its points, kind, class or attributes is an object change.
//! Unpaired old objects were removed, unpaired new ones added.

use std::collections::{BTreeMap, HashMap};

use pathfinding::prelude::{Matrix, kuhn_munkres};
use serde::Serialize;

use super::{AttrValue, BBox, Geometry, Object};

/// Options of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct MatchOptions {
    /// Minimum IoU for two boxes to be the same object (default 0.5).
    pub iou_threshold: f64,
    /// Pair objects by their id first.
    pub use_ids: bool,
    /// Box coordinates closer than this are equal (absorbs float printing).
    pub epsilon: f64,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            iou_threshold: 0.5,
            use_ids: false,
            epsilon: 1e-6,
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectChangeKind {
    /// Only in the new version.
    Added,
    /// Only in the old version.
    Removed,
    /// Same object, class changed (the box may have moved too).
    Reclassified,
    /// Same object and class, box changed.
    Moved,
    /// Same object, class and box; attributes or geometry changed.
    Attributes,
}

/// One attribute's values before and after (`null` when absent on a side).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrChange {
    /// Value before.
    pub before: Option<AttrValue>,
    /// Value after.
    pub after: Option<AttrValue>,
}

/// One object that changed between the two versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectChange {
    /// The kind of change.
    pub kind: ObjectChangeKind,
    /// Class after the change (before, for removals).
    pub class: String,
    /// Class before, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_class: Option<String>,
    /// Box before.
    pub before: Option<BBox>,
    /// Box after.
    pub after: Option<BBox>,
    /// IoU of the two boxes, for paired objects that both have boxes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    /// The object's id (new side, else old side), when the format has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Attributes that differ.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrChange>,
    /// The box moved as well (set on reclassified objects).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub box_changed: bool,
    /// The shape kind ([`Object::kind`]) after the change (before, for
    /// removals); absent for plain boxes.
    #[serde(skip_serializing_if = "is_box")]
    pub shape: &'static str,
}

fn is_box(kind: &&'static str) -> bool {
    *kind == "box"
}

fn box_eq(a: &Option<BBox>, b: &Option<BBox>, eps: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            (a.x - b.x).abs() <= eps
                && (a.y - b.y).abs() <= eps
                && (a.w - b.w).abs() <= eps
                && (a.h - b.h).abs() <= eps
        }
        _ => false,
    }
}

fn attr_changes(a: &Object, b: &Object) -> BTreeMap<String, AttrChange> {
    let mut out = BTreeMap::new();
    for (k, v) in &a.attributes {
        if b.attributes.get(k) != Some(v) {
            out.insert(
                k.clone(),
                AttrChange {
                    before: Some(v.clone()),
                    after: b.attributes.get(k).cloned(),
                },
            );
        }
    }
    for (k, v) in &b.attributes {
        if !a.attributes.contains_key(k) {
            out.insert(
                k.clone(),
                AttrChange {
                    before: None,
                    after: Some(v.clone()),
                },
            );
        }
    }
    out
}

/// Describes a pair of matched objects; `None` when they are the same.
fn pair_change(a: &Object, b: &Object, eps: f64) -> Option<ObjectChange> {
    let box_changed = !box_eq(&a.bbox, &b.bbox, eps);
    let attributes = attr_changes(a, b);
    let class_changed = a.class != b.class;
    let geometry_changed = a.geometry != b.geometry;
    let kind = if class_changed {
        ObjectChangeKind::Reclassified
    } else if box_changed {
        ObjectChangeKind::Moved
    } else if !attributes.is_empty() || geometry_changed {
        ObjectChangeKind::Attributes
    } else {
        return None;
    };
    let iou = match (&a.bbox, &b.bbox) {
        (Some(x), Some(y)) if box_changed => Some(x.iou(y)),
        _ => None,
    };
    Some(ObjectChange {
        kind,
        class: b.class.clone(),
        old_class: class_changed.then(|| a.class.clone()),
        before: a.bbox,
        after: b.bbox,
        iou,
        id: b.id.clone().or_else(|| a.id.clone()),
        attributes,
        box_changed: class_changed && box_changed,
        shape: b.kind(),
    })
}

/// What changed between two versions of one paired object; `None` when
/// they are the same (what [`compare_objects`] reports for a pair).
pub fn object_change(old: &Object, new: &Object, opts: &MatchOptions) -> Option<ObjectChange> {
    pair_change(old, new, opts.epsilon)
}

fn single(kind: ObjectChangeKind, o: &Object) -> ObjectChange {
    let (before, after) = match kind {
        ObjectChangeKind::Removed => (o.bbox, None),
        _ => (None, o.bbox),
    };
    ObjectChange {
        kind,
        class: o.class.clone(),
        old_class: None,
        before,
        after,
        iou: None,
        id: o.id.clone(),
        attributes: BTreeMap::new(),
        box_changed: false,
        shape: o.kind(),
    }
}

/// A hashable fingerprint of an object, for pairing identical ones.
fn fingerprint(o: &Object) -> String {
    // serde_json of the model is canonical (attributes are a BTreeMap).
    serde_json::to_string(o).unwrap_or_default()
}

/// Compares the objects of one frame; returns the changes in a stable order
/// (removed and changed objects in old order, then added ones in new order).
pub fn compare_objects(old: &[Object], new: &[Object], opts: &MatchOptions) -> Vec<ObjectChange> {
    compare_objects_keeping_same(old, new, opts).0
}

/// As [`compare_objects`], with the indices (into `new`) of the objects that
/// did not change, which the review page draws faintly for context.
pub fn compare_objects_keeping_same(
    old: &[Object],
    new: &[Object],
    opts: &MatchOptions,
) -> (Vec<ObjectChange>, Vec<usize>) {
    let old_pair = pair_objects(old, new, opts);
    let mut new_taken = vec![false; new.len()];
    for j in old_pair.iter().flatten() {
        new_taken[*j] = true;
    }
    let mut out = Vec::new();
    let mut same = Vec::new();
    for (i, o) in old.iter().enumerate() {
        match old_pair[i] {
            Some(j) => match pair_change(o, &new[j], opts.epsilon) {
                Some(c) => out.push(c),
                None => same.push(j),
            },
            None => out.push(single(ObjectChangeKind::Removed, o)),
        }
    }
    for (j, o) in new.iter().enumerate() {
        if !new_taken[j] {
            out.push(single(ObjectChangeKind::Added, o));
        }
    }
    (out, same)
}

/// Pairs the objects of two versions of a frame: for each old object, the index of
/// the new object that is the same object (identical, same id, or best IoU), if any.
/// The merge uses these pairs to tell which objects each side changed.
pub fn pair_objects(old: &[Object], new: &[Object], opts: &MatchOptions) -> Vec<Option<usize>> {
    let mut old_pair: Vec<Option<usize>> = vec![None; old.len()];
    let mut new_taken = vec![false; new.len()];

    // 1. Identical objects.
    let mut by_print: HashMap<String, Vec<usize>> = HashMap::new();
    for (j, o) in new.iter().enumerate().rev() {
        by_print.entry(fingerprint(o)).or_default().push(j);
    }
    for (i, o) in old.iter().enumerate() {
        if let Some(list) = by_print.get_mut(&fingerprint(o))
            && let Some(j) = list.pop()
        {
            old_pair[i] = Some(j);
            new_taken[j] = true;
        }
    }

    // 2. Stable ids.
    if opts.use_ids {
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        for (j, o) in new.iter().enumerate() {
            if !new_taken[j]
                && let Some(id) = &o.id
            {
                by_id.entry(id.as_str()).or_insert(j);
            }
        }
        for (i, o) in old.iter().enumerate() {
            if old_pair[i].is_none()
                && let Some(id) = &o.id
                && let Some(&j) = by_id.get(id.as_str())
                && !new_taken[j]
            {
                old_pair[i] = Some(j);
                new_taken[j] = true;
            }
        }
    }

    // 3. Optimal assignment on IoU, per group of overlapping boxes.
    let rest_old: Vec<usize> = (0..old.len())
        .filter(|&i| old_pair[i].is_none() && old[i].bbox.is_some())
        .collect();
    let rest_new: Vec<usize> = (0..new.len())
        .filter(|&j| !new_taken[j] && new[j].bbox.is_some())
        .collect();
    for (gi, gj) in overlap_groups(old, new, &rest_old, &rest_new, opts.iou_threshold) {
        for (i, j) in assign(old, new, &gi, &gj, opts.iou_threshold) {
            old_pair[i] = Some(j);
            new_taken[j] = true;
        }
    }

    // 4. Lines and points, whose boxes may have no area (one point, a
    // straight line) and so no IoU: each left over, in order, with the
    // nearest left-over shape of the same kind and class, when the centres
    // of their boxes are at most the longer box diagonal apart (at least
    // THIN_REACH).
    for (i, o) in old.iter().enumerate() {
        if old_pair[i].is_some() || !o.geometry.as_ref().is_some_and(Geometry::is_thin) {
            continue;
        }
        let Some(a) = o.bbox else { continue };
        let best = new
            .iter()
            .enumerate()
            .filter(|(j, n)| !new_taken[*j] && n.class == o.class && n.kind() == o.kind())
            .filter_map(|(j, n)| {
                let b = n.bbox?;
                let d =
                    (a.x + a.w / 2.0 - b.x - b.w / 2.0).hypot(a.y + a.h / 2.0 - b.y - b.h / 2.0);
                let reach = a.w.hypot(a.h).max(b.w.hypot(b.h)).max(THIN_REACH);
                (d <= reach).then_some((d, j))
            })
            .min_by(|x, y| x.0.total_cmp(&y.0));
        if let Some((_, j)) = best {
            old_pair[i] = Some(j);
            new_taken[j] = true;
        }
    }
    old_pair
}

/// How far apart (in the boxes' units: pixels for every format with lines
/// or points) two small line or point shapes may be to still be one object.
const THIN_REACH: f64 = 8.0;

/// Connected groups of old/new boxes linked by IoU >= threshold.
fn overlap_groups(
    old: &[Object],
    new: &[Object],
    rest_old: &[usize],
    rest_new: &[usize],
    threshold: f64,
) -> Vec<(Vec<usize>, Vec<usize>)> {
    // Union-find over old (0..n) and new (n..n+m) positions.
    let n = rest_old.len();
    let mut parent: Vec<usize> = (0..n + rest_new.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut linked = vec![false; parent.len()];
    for (a, &i) in rest_old.iter().enumerate() {
        let Some(bi) = &old[i].bbox else { continue };
        for (b, &j) in rest_new.iter().enumerate() {
            let Some(bj) = &new[j].bbox else { continue };
            if bi.iou(bj) >= threshold {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, n + b));
                parent[ra] = rb;
                linked[a] = true;
                linked[n + b] = true;
            }
        }
    }
    let mut groups: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (a, &i) in rest_old.iter().enumerate() {
        if linked[a] {
            let r = find(&mut parent, a);
            groups.entry(r).or_default().0.push(i);
        }
    }
    for (b, &j) in rest_new.iter().enumerate() {
        if linked[n + b] {
            let r = find(&mut parent, n + b);
            groups.entry(r).or_default().1.push(j);
        }
    }
    groups.into_values().collect()
}

/// Optimal pairs within one group: maximum total IoU, a small bonus for keeping
/// the class, and no pair below the threshold.
fn assign(
    old: &[Object],
    new: &[Object],
    gi: &[usize],
    gj: &[usize],
    threshold: f64,
) -> Vec<(usize, usize)> {
    const SCALE: f64 = 1_000_000.0;
    const SAME_CLASS_BONUS: i64 = 50_000;
    let size = gi.len().max(gj.len());
    let weight = |a: usize, b: usize| -> i64 {
        let (Some(&i), Some(&j)) = (gi.get(a), gj.get(b)) else {
            return 0;
        };
        let (Some(x), Some(y)) = (&old[i].bbox, &new[j].bbox) else {
            return 0;
        };
        let iou = x.iou(y);
        if iou < threshold || !iou.is_finite() {
            return 0;
        }
        let bonus = if old[i].class == new[j].class {
            SAME_CLASS_BONUS
        } else {
            0
        };
        (iou * SCALE) as i64 + bonus + 1
    };
    if size > MAX_OPTIMAL_GROUP {
        return assign_greedy(gi, gj, weight);
    }
    let m = Matrix::from_fn(size, size, |(a, b)| weight(a, b));
    let (_, cols) = kuhn_munkres(&m);
    cols.iter()
        .enumerate()
        .filter(|&(a, &b)| weight(a, b) > 0)
        .filter_map(|(a, &b)| Some((*gi.get(a)?, *gj.get(b)?)))
        .collect()
}

/// The largest group of overlapping boxes paired by the optimal assignment:
/// its matrix is the square of the group (8 MB here) and its time the cube. A
/// larger group (a crowd of boxes chained by overlaps, as a hostile or damaged
/// file can make) is paired greedily instead, in memory linear in the group.
const MAX_OPTIMAL_GROUP: usize = 1000;

/// Pairs a group greedily: each old box, in order, with the free new box of
/// the highest weight.
fn assign_greedy(
    gi: &[usize],
    gj: &[usize],
    weight: impl Fn(usize, usize) -> i64,
) -> Vec<(usize, usize)> {
    let mut taken = vec![false; gj.len()];
    let mut out = Vec::new();
    for (a, &i) in gi.iter().enumerate() {
        let best = (0..gj.len())
            .filter(|&b| !taken[b])
            .map(|b| (weight(a, b), b))
            .filter(|&(w, _)| w > 0)
            .max_by_key(|&(w, b)| (w, std::cmp::Reverse(b)));
        if let Some((_, b)) = best {
            taken[b] = true;
            out.push((i, gj[b]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(class: &str, x: f64, y: f64, w: f64, h: f64) -> Object {
        Object::new(class, Some(BBox { x, y, w, h }))
    }

    #[test]
    fn unchanged_objects_give_no_changes() {
        let a = vec![obj("car", 0., 0., 10., 10.), obj("car", 0., 0., 10., 10.)];
        assert!(compare_objects(&a, &a, &MatchOptions::default()).is_empty());
    }

    fn point(class: &str, x: f64, y: f64) -> Object {
        let mut o = Object::new(
            class,
            Some(BBox {
                x,
                y,
                w: 0.0,
                h: 0.0,
            }),
        );
        o.geometry = Some(Geometry::Points(Box::new(super::super::PointList {
            points: vec![[x, y]],
        })));
        o
    }

    #[test]
    fn a_single_point_moved_is_paired_by_distance_not_iou() {
        let old = vec![point("nose", 10.0, 10.0), point("nose", 100.0, 100.0)];
        let new = vec![point("nose", 13.0, 14.0), point("nose", 200.0, 100.0)];
        let ch = compare_objects(&old, &new, &MatchOptions::default());
        let kinds: Vec<_> = ch.iter().map(|c| (c.kind, c.shape)).collect();
        assert_eq!(
            kinds,
            vec![
                (ObjectChangeKind::Moved, "points"),
                (ObjectChangeKind::Removed, "points"),
                (ObjectChangeKind::Added, "points"),
            ]
        );
    }

    #[test]
    fn move_reclassify_add_remove() {
        let old = vec![
            obj("car", 0., 0., 10., 10.),
            obj("person", 50., 50., 10., 20.),
            obj("cone", 100., 100., 5., 5.),
        ];
        let new = vec![
            obj("truck", 50., 50., 10., 20.),
            obj("car", 1., 0., 10., 10.),
            obj("bike", 200., 0., 10., 10.),
        ];
        let ch = compare_objects(&old, &new, &MatchOptions::default());
        let kinds: Vec<_> = ch.iter().map(|c| (c.kind, c.class.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (ObjectChangeKind::Moved, "car"),
                (ObjectChangeKind::Reclassified, "truck"),
                (ObjectChangeKind::Removed, "cone"),
                (ObjectChangeKind::Added, "bike"),
            ]
        );
        let iou = ch[0].iou.unwrap_or(0.0);
        assert!((iou - 90.0 / 110.0).abs() < 1e-9, "{iou}");
        assert_eq!(ch[1].old_class.as_deref(), Some("person"));
    }

    #[test]
    fn assignment_is_optimal_not_greedy() {
        // Greedy on the best single IoU pairs a0-b0 (0.74) and leaves a1 without a
        // partner above the threshold; the optimal assignment pairs both.
        let old = vec![obj("c", 0., 0., 10., 10.), obj("c", 3., 0., 10., 10.)];
        let new = vec![obj("c", 1.5, 0., 10., 10.), obj("c", -2.5, 0., 10., 10.)];
        let ch = compare_objects(&old, &new, &MatchOptions::default());
        assert!(
            ch.iter().all(|c| c.kind == ObjectChangeKind::Moved),
            "{ch:?}"
        );
        assert_eq!(ch.len(), 2);
    }

    #[test]
    fn ids_pair_objects_that_moved_far() {
        let mut a = obj("car", 0., 0., 10., 10.);
        a.id = Some("7".into());
        let mut b = obj("car", 500., 500., 10., 10.);
        b.id = Some("7".into());
        let opts = MatchOptions {
            use_ids: true,
            ..MatchOptions::default()
        };
        let ch = compare_objects(std::slice::from_ref(&a), std::slice::from_ref(&b), &opts);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].kind, ObjectChangeKind::Moved);
        assert_eq!(ch[0].iou, Some(0.0));
        let ch = compare_objects(&[a], &[b], &MatchOptions::default());
        assert_eq!(ch.len(), 2, "without ids: one removed, one added");
    }

    #[test]
    fn attribute_change_is_reported() {
        let a = obj("car", 0., 0., 10., 10.);
        let mut b = a.clone();
        b.attributes
            .insert("occluded".into(), AttrValue::Bool(true));
        let ch = compare_objects(&[a], &[b], &MatchOptions::default());
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].kind, ObjectChangeKind::Attributes);
        assert!(ch[0].attributes.contains_key("occluded"));
    }
}
