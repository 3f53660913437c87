//! Statistics of a version that agree with its frames as queries see them.
//!
//! `ops::stats` counts label files (cached per subtree), which is exact for objects,
//! classes and parse errors but not for frames: a COCO or CVAT file may describe
//! images that are not in the version, a frame may be described twice, and the
//! metadata sidecar is not a label file. When any of that can be the case, the
//! figures counted over frames (labelled frames, frames without labels, frame
//! attributes) are taken from the query index, where label entries are paired with
//! the frames that exist (and cached per version like any query), and the entries
//! naming no frame are counted apart.

use crate::error::Result;
use crate::id::ObjectId;
use crate::ops::stats::{Stats, StatsCache, tree_stats_from};
use crate::store::ObjectStore;
use crate::worktree::sources::TreeSource;

use super::FrameRecord;
use super::codec::Known;
use super::index::{QueryCache, build_full, build_tree_or_file, cache_key, undecodable};

/// Statistics of a stored tree with exact frame figures (see the module comment);
/// `bases` are earlier versions' trees, nearest first, whose cached statistics
/// the label-file counts may be derived from.
pub fn version_stats(
    store: &ObjectStore,
    tree: &ObjectId,
    bases: &[ObjectId],
    cache: &StatsCache,
    qcache: &QueryCache,
) -> Result<Stats> {
    // Pairing reads the whole version's query index, so its result is kept: asking
    // again is one lookup, as for versions whose figures need no pairing.
    if let Some(s) = cache.get_paired(tree) {
        return Ok(s);
    }
    let mut s = tree_stats_from(store, tree, bases, cache)?;
    let entries = s.labelled_frames + s.empty_label_frames;
    if s.frames == 0 && !has_sidecar(store, tree)? {
        // Label files only (the frames kept elsewhere): no entry names a frame here.
        s.entries_without_frame = entries;
        s.labelled_frames = 0;
        s.empty_label_frames = 0;
        s.frame_attributes.clear();
        return Ok(s);
    }
    // Every label file one entry, no more entries than frames: each entry is taken
    // to be its own frame, as pairing would find it.
    let by_file_is_by_frame = entries == s.label_files && entries <= s.frames;
    if by_file_is_by_frame && !has_sidecar(store, tree)? {
        return Ok(s);
    }
    let paired = tree_pairing(store, tree, qcache)?;
    // What is counted over frames comes from the pairing; objects, classes and
    // attributes stay counted over label files (a dataset may version its labels
    // without its frames), with the entries that name no frame counted apart.
    s.labelled_frames = paired.stats.labelled_frames;
    s.empty_label_frames = paired.stats.empty_label_frames;
    s.frame_attributes = paired.stats.frame_attributes;
    s.entries_without_frame = entries.saturating_sub(paired.entries);
    cache.put_paired(tree, &s);
    Ok(s)
}

/// The figures of a version counted over its frames as the query index pairs
/// them with label entries: added up frame by frame, no frame kept.
#[derive(Debug, Default)]
pub(super) struct Pairing {
    /// Labelled and empty-label frames and frame attributes (nothing else counted).
    pub stats: Stats,
    /// Label entries paired with a frame.
    pub entries: u64,
}

impl Pairing {
    /// Adds one frame, as [`super::stats_of`] counts it.
    pub fn add_frame(&mut self, f: &FrameRecord) {
        if !f.labels.is_empty() {
            if f.objects.is_empty() {
                self.stats.empty_label_frames += 1;
            } else {
                self.stats.labelled_frames += 1;
            }
        }
        self.entries += f.labels.len() as u64;
        for (k, v) in &f.attrs {
            *self
                .stats
                .frame_attributes
                .entry(k.clone())
                .or_default()
                .entry(super::bucket(v))
                .or_default() += 1;
        }
    }

    /// Adds another part's figures.
    pub fn merge(&mut self, o: &Pairing) {
        self.stats.add(&o.stats);
        self.entries += o.entries;
    }
}

/// The figures of a stored tree counted over its frames (see
/// [`Pairing`]), from the cached index or from one built (and
/// cached) first. Frames are decoded chunk by chunk in parallel and counted,
/// none kept: the memory is the index's encoding, not its decoded frames.
fn tree_pairing(store: &ObjectStore, tree: &ObjectId, cache: &QueryCache) -> Result<Pairing> {
    let key = cache_key(tree);
    let count = |select: &dyn Fn(&std::sync::Mutex<Pairing>) -> Option<()>| {
        let total = std::sync::Mutex::new(Pairing::default());
        select(&total)?;
        total.into_inner().ok()
    };
    let from_file = || {
        cache
            .with_index_releasing(&key, |l, release| {
                count(&|total| {
                    let r = l.select_releasing(Known::Nothing, false, || tally(total), release);
                    r.unwrap_or_else(|e| match e {}).map(drop)
                })
            })
            .flatten()
    };
    if let Some(p) = from_file() {
        return Ok(p);
    }
    // An index not derived is built into its file and counted from there,
    // never whole in memory; one that does not read is built again.
    let index = match build_tree_or_file(store, tree, cache)? {
        Some(index) => index,
        None => match from_file() {
            Some(p) => return Ok(p),
            None => build_full(store, tree, cache)?,
        },
    };
    cache.put(&key, &index);
    let p = count(&|total| {
        let r = index.select(Known::Nothing, false, || tally(total));
        r.unwrap_or_else(|e| match e {}).map(drop)
    })
    .ok_or_else(undecodable);
    std::thread::spawn(move || drop(index));
    p
}

/// A judge that counts every frame into a part of its own and keeps none;
/// the part is added to `into` when the judge is dropped (once per parallel
/// job, not per frame).
fn tally(
    into: &std::sync::Mutex<Pairing>,
) -> impl FnMut(&dyn super::FrameAccess) -> std::result::Result<bool, std::convert::Infallible> + '_
{
    let mut t = Tally {
        into,
        part: Pairing::default(),
    };
    move |f| {
        // A frame that does not decode fails the walk (the index is then built again).
        if let Some(r) = f.record() {
            t.part.add_frame(r);
        }
        Ok(false)
    }
}

/// One parallel job's counts, added to the total when dropped.
struct Tally<'m> {
    into: &'m std::sync::Mutex<Pairing>,
    part: Pairing,
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        if let Ok(mut total) = self.into.lock() {
            total.merge(&self.part);
        }
    }
}

fn has_sidecar(store: &ObjectStore, tree: &ObjectId) -> Result<bool> {
    use crate::layout::{FileSource, Layout};
    let src = TreeSource::new(store, Some(*tree));
    // A dsv.toml that does not parse fails the walk before this is reached.
    let Ok(layout) = Layout::load(&src)? else {
        return Ok(false);
    };
    let path = crate::meta::sidecar_path(&layout.toml, &|p| src.exists(p))?;
    src.exists(&path)
}

/// Statistics of a commit, by revision, with exact frame figures; returns the commit id too.
pub fn rev_stats(
    repo: &crate::Repository,
    rev: &str,
    cache: &StatsCache,
    qcache: &QueryCache,
) -> Result<(ObjectId, Stats)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let commit = crate::object::Commit::load(&repo.store, &c)?;
    let bases = ancestor_trees(&repo.store, &commit.parents);
    Ok((
        c,
        version_stats(&repo.store, &commit.tree, &bases, cache, qcache)?,
    ))
}

/// How many ancestors are offered as bases: statistics are usually asked for
/// a commit soon after its parent's, and each is one cache lookup.
const MAX_BASES: usize = 32;

/// The trees of the nearest ancestors, breadth first from `parents`; a commit
/// that cannot be read (a shallow history) ends the list there.
fn ancestor_trees(store: &ObjectStore, parents: &[ObjectId]) -> Vec<ObjectId> {
    let mut seen = std::collections::HashSet::new();
    let mut queue: std::collections::VecDeque<ObjectId> = parents.iter().copied().collect();
    let mut out = Vec::new();
    while let Some(c) = queue.pop_front() {
        if out.len() >= MAX_BASES {
            break;
        }
        if !seen.insert(c) {
            continue;
        }
        let Ok(commit) = crate::object::Commit::load(store, &c) else {
            continue;
        };
        out.push(commit.tree);
        queue.extend(commit.parents.iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{AttrValue, Format, Object, Units};

    fn frame(attrs: &[(&str, AttrValue)], objects: usize, labels: usize) -> FrameRecord {
        FrameRecord {
            path: "f.jpg".into(),
            id: ObjectId([0; 32]),
            size: 0,
            width: None,
            height: None,
            units: Units::Pixels,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            objects: (0..objects).map(|_| Object::new("car", None)).collect(),
            predictions: vec![],
            labels: (0..labels)
                .map(|i| (format!("l{i}.json"), Format::Coco))
                .collect(),
        }
    }

    #[test]
    fn pairing_counted_in_parts_agrees_with_the_whole_index() {
        let rain = || ("weather", AttrValue::Str("rain".into()));
        let frames = [
            frame(&[rain()], 2, 1),
            frame(&[("score", AttrValue::Float(0.5))], 0, 2),
            frame(&[rain()], 0, 0),
            frame(&[], 3, 3),
            frame(&[("weather", AttrValue::Str("sun".into()))], 1, 1),
        ];
        let refs: Vec<&FrameRecord> = frames.iter().collect();
        let whole = super::super::stats_of(&refs);
        // Split as parallel jobs split an index, then added up.
        for cut in 0..=frames.len() {
            let (a, b) = frames.split_at(cut);
            let mut total = Pairing::default();
            for part in [a, b] {
                let mut p = Pairing::default();
                part.iter().for_each(|f| p.add_frame(f));
                total.merge(&p);
            }
            assert_eq!(total.stats.labelled_frames, whole.labelled_frames);
            assert_eq!(total.stats.empty_label_frames, whole.empty_label_frames);
            assert_eq!(total.stats.frame_attributes, whole.frame_attributes);
            let entries: usize = frames.iter().map(|f| f.labels.len()).sum();
            assert_eq!(total.entries, entries as u64);
        }
        assert_eq!((whole.labelled_frames, whole.empty_label_frames), (3, 1));
    }
}
