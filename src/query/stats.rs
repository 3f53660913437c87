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

use super::index::{QueryCache, tree_index};

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
    let index = tree_index(store, tree, qcache)?;
    let frames: Vec<&super::FrameRecord> = index.frames.iter().collect();
    let exact = super::stats_of(&frames);
    // What is counted over frames comes from the pairing; objects, classes and
    // attributes stay counted over label files (a dataset may version its labels
    // without its frames), with the entries that name no frame counted apart.
    s.labelled_frames = exact.labelled_frames;
    s.empty_label_frames = exact.empty_label_frames;
    s.frame_attributes = exact.frame_attributes;
    let paired: u64 = frames.iter().map(|f| f.labels.len() as u64).sum();
    s.entries_without_frame = entries.saturating_sub(paired);
    cache.put_paired(tree, &s);
    Ok(s)
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
