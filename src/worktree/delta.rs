//! How the working tree differs from the index: one walk merged with the sorted
//! index, stat first, content hashed only where the stat changed (the racy
//! timestamp rule of [`super::index::IndexState::is_clean`]).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::object::diff::FileState;
use crate::paths::{os_path, path_within};
use crate::progress::Progress;
use crate::store::chunk::StatStamp;

use super::index::{IndexEntry, IndexState, Packed};
use super::scan::{Visit, WorkFile, child_path, scan, stat_path, walk};
use crate::store::poisoned;

/// Hashes a worktree file (or a symlink's target) without storing it.
pub fn hash_worktree_file(root: &Path, f: &WorkFile) -> Result<ObjectId> {
    let path = root.join(os_path(&f.path));
    if f.mode == EntryMode::Symlink {
        let target = std::fs::read_link(&path).ctx("reading link", &path)?;
        return Ok(ObjectId::hash(target.as_os_str().as_bytes()));
    }
    let mut file = std::fs::File::open(&path).ctx("opening", &path)?;
    let mut hasher = blake3::Hasher::new();
    if f.stat.size <= 1 << 20 {
        let mut buf = Vec::with_capacity(f.stat.size as usize);
        file.read_to_end(&mut buf).ctx("reading", &path)?;
        hasher.update(&buf);
    } else {
        hasher.update_reader(&mut file).ctx("reading", &path)?;
    }
    Ok(ObjectId(*hasher.finalize().as_bytes()))
}

/// lstat of a tracked path: `None` when it is missing, not a trackable file, or below a
/// symlinked directory (see [`super::symlink_prefix`]).
pub fn stat_tracked(root: &Path, path: &[u8]) -> Option<WorkFile> {
    if super::symlink_prefix(root, path).is_some() {
        return None;
    }
    stat_path(root, path)
}

/// How the working tree differs from the index.
#[derive(Debug, Default)]
pub struct WorktreeDelta {
    /// Tracked files whose content or mode differs: (file, its current id if hashed).
    pub modified: Vec<(WorkFile, Option<ObjectId>)>,
    /// Tracked paths missing from the working tree.
    pub deleted: Vec<Vec<u8>>,
    /// Files not in the index.
    pub untracked: Vec<WorkFile>,
    /// Clean files whose stat changed: the entries to record so the next status is fast.
    pub refreshed: Vec<(Vec<u8>, IndexEntry)>,
    /// The index entries of the modified and deleted paths (what they were).
    pub old: BTreeMap<Vec<u8>, IndexEntry>,
}

/// Compares the working tree under `scopes` with the index. When `hash` is false,
/// stat-changed files are reported as modified without reading them (for `add`,
/// which reads them anyway).
pub fn worktree_delta(
    root: &Path,
    index: &IndexState,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let files = scan(root, scopes, progress)?;
    classify(root, index, files, scopes, hash, progress)
}

/// [`worktree_delta`] for files already scanned.
pub fn classify(
    root: &Path,
    index: &IndexState,
    files: Vec<WorkFile>,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let each = |f: &mut dyn FnMut(&[u8], &IndexEntry) -> Result<()>| {
        index.entries.iter().try_for_each(|(p, e)| f(p, e))
    };
    classify_each(root, each, files, scopes, hash, progress)
}

/// [`classify`] against entries handed over in path order by `each` (e.g. straight
/// from the index table by [`super::index::IndexReader::each`], with no map built).
pub fn classify_each(
    root: &Path,
    each: impl FnOnce(&mut dyn FnMut(&[u8], &IndexEntry) -> Result<()>) -> Result<()>,
    files: impl IntoIterator<Item = WorkFile>,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let in_scope = |p: &[u8]| whole || scopes.iter().any(|s| path_within(p, s));
    let mut delta = WorktreeDelta::default();
    let mut suspects: Vec<(WorkFile, IndexEntry)> = Vec::new();
    let mut unseen: Vec<(Vec<u8>, IndexEntry)> = Vec::new();
    // Both lists are sorted by path: one merge pass classifies everything.
    let mut files = files.into_iter().peekable();
    each(&mut |p, e| {
        if !in_scope(p) {
            return Ok(());
        }
        while let Some(f) = files.next_if(|f| f.path.as_slice() < p) {
            delta.untracked.push(f);
        }
        match files.next_if(|f| f.path.as_slice() == p) {
            Some(f) => {
                if !(f.mode == e.mode && is_clean(e, &f.stat)) {
                    suspects.push((f, *e));
                }
            }
            None => unseen.push((p.to_vec(), *e)),
        }
        Ok(())
    })?;
    delta.untracked.extend(files);
    settle(root, delta, suspects, unseen, hash, progress)
}

/// The end of a classification: `unseen` (tracked paths the walk did not report) are
/// looked at one by one, `suspects` (files whose stat differs from their entry) hashed
/// when `hash` is set.
fn settle(
    root: &Path,
    mut delta: WorktreeDelta,
    mut suspects: Vec<(WorkFile, IndexEntry)>,
    unseen: Vec<(Vec<u8>, IndexEntry)>,
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    // Tracked paths the walk did not report: deleted, or ignored by .dsvignore but still tracked.
    for (path, e) in unseen {
        match stat_tracked(root, &path) {
            Some(f) if f.mode == e.mode && is_clean(&e, &f.stat) => {}
            Some(f) => suspects.push((f, e)),
            None => {
                delta.old.insert(path.clone(), e);
                delta.deleted.push(path);
            }
        }
    }
    suspects.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for (f, e) in &suspects {
        delta.old.insert(f.path.clone(), *e);
    }
    if !hash {
        delta.modified = suspects.into_iter().map(|(f, _)| (f, None)).collect();
        return Ok(delta);
    }
    progress.start("checking", Some(suspects.len() as u64));
    let results: Vec<Result<(WorkFile, IndexEntry, Option<ObjectId>)>> = suspects
        .into_par_iter()
        .map(|(f, e)| {
            let r = match hash_worktree_file(root, &f) {
                Ok(id) => Ok((f, e, Some(id))),
                // Vanished between the walk and the read: report as deleted.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok((f, e, None))
                }
                Err(err) => Err(err),
            };
            progress.inc(1);
            r
        })
        .collect();
    progress.finish();
    for r in results {
        let (f, e, id) = r?;
        match id {
            Some(id) if id == e.id && f.mode == e.mode => {
                delta.old.remove(&f.path);
                let entry = IndexEntry {
                    mode: f.mode,
                    id,
                    stat: f.stat,
                };
                delta.refreshed.push((f.path, entry));
            }
            Some(id) => delta.modified.push((f, Some(id))),
            None => delta.deleted.push(f.path),
        }
    }
    delta.deleted.sort();
    Ok(delta)
}

/// The index's entries grouped by the directory holding them: for each directory,
/// the runs of positions of its files in the packed index, in name order.
struct ByDir<'a> {
    packed: &'a Packed,
    dirs: HashMap<&'a [u8], Vec<Range<u32>>>,
    /// Which entries the walk found (a file of that name in that directory).
    seen: Vec<AtomicBool>,
}

impl<'a> ByDir<'a> {
    fn new(packed: &'a Packed) -> ByDir<'a> {
        let mut dirs: HashMap<&[u8], Vec<Range<u32>>> = HashMap::new();
        for (dir, run) in packed.runs() {
            dirs.entry(dir).or_default().push(run);
        }
        let seen = (0..packed.len()).map(|_| AtomicBool::new(false)).collect();
        ByDir { packed, dirs, seen }
    }

    /// Compares the files of directory `rel` listed in `kept` with their entries,
    /// marking those entries seen; keeps in `found` what is not clean. The listing is
    /// sorted by name and merged with the directory's entries (in name order already):
    /// both are small and contiguous, where a search per file would miss the cache
    /// on every probe.
    fn compare(&self, rel: &[u8], kept: &Kept, found: &mut Found) {
        let runs = self.dirs.get(rel).map_or(&[][..], |v| v.as_slice());
        let mut order: Vec<u32> = (0..kept.len() as u32).collect();
        order.sort_unstable_by(|a, b| kept.name(*a as usize).cmp(kept.name(*b as usize)));
        let mut entries = runs.iter().flat_map(|r| r.clone()).peekable();
        for k in order {
            let k = k as usize;
            let n = kept.name(k);
            let (mode, stat) = (kept.modes[k], kept.stats[k]);
            let file = || WorkFile {
                path: child_path(rel, n),
                mode,
                stat,
            };
            while entries
                .next_if(|&i| self.packed.name(i as usize) < n)
                .is_some()
            {}
            match entries.next_if(|&i| self.packed.name(i as usize) == n) {
                Some(i) => {
                    let i = i as usize;
                    self.seen[i].store(true, Ordering::Relaxed);
                    let (emode, estat) = self.packed.stat(i);
                    if !(mode == emode && estat == &stat && estat.mtime_ns != 0) {
                        found.suspects.push(file());
                    }
                }
                None => found.untracked.push(file()),
            }
        }
    }
}

/// Compares each directory the walk lists with its index entries as soon as it is
/// listed: a clean file costs its lstat, its name copied into the directory's
/// listing, a merge step and a mark, and no path is built for it. The index is read
/// while the walk starts: directories listed before it is ready wait (their listings
/// kept, up to [`WAITING_BUDGET`] bytes, beyond which the walk waits too) and are
/// compared once it is.
struct Against<'a, 'c> {
    by_dir: &'c OnceLock<ByDir<'a>>,
    found: Mutex<Found>,
    /// Listings kept because the index was not ready when they ended, and their size.
    waiting: Mutex<(Vec<Waiting>, usize)>,
    /// Whether the index read has ended (read or failed), and its signal.
    settled: Mutex<bool>,
    settle: Condvar,
    /// How many bytes of listings may wait ([`WAITING_BUDGET`]).
    budget: usize,
}

/// A directory's listing kept for the index: its path and its files.
type Waiting = (Vec<u8>, Kept);

/// How many bytes of listings may wait for the index before the walk waits for it
/// too: the walk overlaps the read of a large index without holding the whole tree's
/// listings (a million-frame tree's would take over 100 MB).
const WAITING_BUDGET: usize = 48 << 20;

impl Against<'_, '_> {
    /// Marks the index read ended and wakes the walk's waiting threads.
    fn settled(&self) {
        if let Ok(mut s) = self.settled.lock() {
            *s = true;
        }
        self.settle.notify_all();
    }

    /// Blocks until the index read has ended.
    fn wait_settled(&self) {
        let Ok(mut s) = self.settled.lock() else {
            return;
        };
        while !*s {
            s = match self.settle.wait(s) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
    }
}

/// Ends the index read for the walk when dropped (also on an error or a panic: the
/// walk's threads never wait for a read that will not come).
struct Settle<'x, 'a, 'c>(&'x Against<'a, 'c>);

impl Drop for Settle<'_, '_, '_> {
    fn drop(&mut self) {
        self.0.settled();
    }
}

/// What the walk found that is not clean.
#[derive(Default)]
struct Found {
    /// Files whose stat differs from their entry's.
    suspects: Vec<WorkFile>,
    untracked: Vec<WorkFile>,
}

impl Found {
    fn append(&mut self, other: &mut Found) {
        self.suspects.append(&mut other.suspects);
        self.untracked.append(&mut other.untracked);
    }
}

/// A directory's files as listed: the names laid end to end, and beside them (not
/// in one padded tuple per file: listings may wait for the index by the million)
/// where each ends, its mode and its stat.
#[derive(Default)]
struct Kept {
    names: Vec<u8>,
    ends: Vec<usize>,
    modes: Vec<EntryMode>,
    stats: Vec<StatStamp>,
}

impl Kept {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn name(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.names[start..self.ends[k]]
    }

    /// The bytes its arrays hold.
    fn bytes(&self) -> usize {
        self.names.capacity()
            + self.ends.capacity() * size_of::<usize>()
            + self.modes.capacity() * size_of::<EntryMode>()
            + self.stats.capacity() * size_of::<StatStamp>()
    }

    /// Gives back what the growing arrays did not use (before it waits).
    fn shrink(&mut self) {
        self.names.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.modes.shrink_to_fit();
        self.stats.shrink_to_fit();
    }
}

/// One directory's share of [`Against`].
#[derive(Default)]
struct AgainstDir {
    kept: Kept,
    found: Found,
}

impl Visit for Against<'_, '_> {
    type Dir = AgainstDir;

    fn file(
        &self,
        dir: &mut Self::Dir,
        _rel: &[u8],
        name: &[u8],
        mode: EntryMode,
        stat: StatStamp,
    ) {
        let kept = &mut dir.kept;
        kept.names.extend_from_slice(name);
        kept.ends.push(kept.names.len());
        kept.modes.push(mode);
        kept.stats.push(stat);
    }

    fn done(&self, rel: &[u8], mut dir: Self::Dir) {
        if dir.kept.len() == 0 {
            return;
        }
        let mut by_dir = self.by_dir.get();
        if by_dir.is_none() {
            dir.kept.shrink();
            let size = dir.kept.bytes() + rel.len();
            let over = self
                .waiting
                .lock()
                .map_or(true, |w| w.1 + size > self.budget);
            if over {
                self.wait_settled();
                by_dir = self.by_dir.get();
            }
        }
        match by_dir {
            Some(by_dir) => by_dir.compare(rel, &dir.kept, &mut dir.found),
            None => {
                let size = dir.kept.bytes() + rel.len();
                if let Ok(mut w) = self.waiting.lock() {
                    w.0.push((rel.to_vec(), dir.kept));
                    w.1 += size;
                }
                return;
            }
        }
        if dir.found.suspects.is_empty() && dir.found.untracked.is_empty() {
            return;
        }
        if let Ok(mut f) = self.found.lock() {
            f.append(&mut dir.found);
        }
    }
}

/// [`worktree_delta`] of the whole tree against the index `read` returns (packed),
/// read while the walk starts: each file is compared with its entry as the walk
/// finds it, so a clean file is never collected, sorted or merged (the shape of a
/// `status` with little changed). The entries of the files that are not clean are
/// then fetched whole with `lookup` (paths in, entries out in the same order, from
/// the same view of the index as `read`).
pub fn walk_delta(
    root: &Path,
    read: impl FnOnce() -> Result<Packed>,
    lookup: impl FnOnce(&[Vec<u8>]) -> Result<Vec<Option<IndexEntry>>>,
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    walk_delta_within(root, read, lookup, hash, progress, WAITING_BUDGET)
}

/// [`walk_delta`] with `budget` bytes of listings allowed to wait for the index.
fn walk_delta_within(
    root: &Path,
    read: impl FnOnce() -> Result<Packed>,
    lookup: impl FnOnce(&[Vec<u8>]) -> Result<Vec<Option<IndexEntry>>>,
    hash: bool,
    progress: &dyn Progress,
    budget: usize,
) -> Result<WorktreeDelta> {
    let packed = OnceLock::new();
    let by_dir = OnceLock::new();
    let against = Against {
        by_dir: &by_dir,
        found: Mutex::new(Found::default()),
        waiting: Mutex::new((Vec::new(), 0)),
        settled: Mutex::new(false),
        settle: Condvar::new(),
        budget,
    };
    let (walked, ready) = std::thread::scope(|s| {
        let walk = s.spawn(|| walk(root, &[], progress, &against));
        let ready = {
            let _settle = Settle(&against);
            read().map(|p| {
                let _ = by_dir.set(ByDir::new(packed.get_or_init(|| p)));
            })
        };
        let walked = walk
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (walked, ready)
    });
    walked?;
    ready?;
    let by_dir = by_dir
        .get()
        .ok_or_else(|| Error::Internal("index not read".into()))?;
    let (waiting, _) = against.waiting.into_inner().map_err(poisoned)?;
    let mut found = against.found.into_inner().map_err(poisoned)?;
    let mut late = waiting
        .into_par_iter()
        .map(|(rel, kept)| {
            let mut f = Found::default();
            by_dir.compare(&rel, &kept, &mut f);
            f
        })
        .reduce(Found::default, |mut a, mut b| {
            a.append(&mut b);
            a
        });
    found.append(&mut late);
    let Found {
        suspects,
        mut untracked,
    } = found;
    let unseen: Vec<Vec<u8>> = by_dir
        .seen
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.load(Ordering::Relaxed))
        .map(|(i, _)| by_dir.packed.path(i))
        .collect();
    // One batch of keyed lookups for the few entries needed whole.
    let paths: Vec<Vec<u8>> = suspects
        .iter()
        .map(|f| f.path.clone())
        .chain(unseen.iter().cloned())
        .collect();
    let mut entries = lookup(&paths)?.into_iter();
    let mut whole = |p: &[u8]| {
        entries.next().flatten().ok_or_else(|| {
            Error::Internal(format!(
                "index entry of '{}' missing from its own view",
                String::from_utf8_lossy(p)
            ))
        })
    };
    let suspects = suspects
        .into_iter()
        .map(|f| whole(&f.path).map(|e| (f, e)))
        .collect::<Result<Vec<_>>>()?;
    let unseen = unseen
        .into_iter()
        .map(|p| whole(&p).map(|e| (p, e)))
        .collect::<Result<Vec<_>>>()?;
    untracked.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let delta = WorktreeDelta {
        untracked,
        ..WorktreeDelta::default()
    };
    settle(root, delta, suspects, unseen, hash, progress)
}

/// Whether `entry`'s stat can be trusted against `actual` (see [`IndexState::is_clean`]).
fn is_clean(entry: &IndexEntry, actual: &StatStamp) -> bool {
    entry.stat == *actual && entry.stat.mtime_ns != 0
}

/// Index entries as file states.
pub fn index_states(index: &IndexState) -> BTreeMap<Vec<u8>, FileState> {
    index
        .entries
        .iter()
        .map(|(p, e)| {
            (
                p.clone(),
                FileState {
                    mode: e.mode,
                    id: e.id,
                    size: e.stat.size,
                },
            )
        })
        .collect()
}

/// Stat of a worktree file as an index entry, for entries written by checkout.
pub fn entry_from_stat(mode: EntryMode, id: ObjectId, stat: StatStamp) -> IndexEntry {
    IndexEntry { mode, id, stat }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn entry(root: &Path, path: &str) -> IndexEntry {
        let p = root.join(path);
        let meta = std::fs::symlink_metadata(&p).unwrap();
        IndexEntry {
            mode: EntryMode::File,
            id: ObjectId::hash(&std::fs::read(&p).unwrap()),
            stat: StatStamp::of(&meta),
        }
    }

    /// (modified, deleted, untracked, refreshed) paths, to compare deltas.
    type Summary = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

    fn summary(d: &WorktreeDelta) -> Summary {
        let s = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        (
            d.modified.iter().map(|(f, _)| s(&f.path)).collect(),
            d.deleted.iter().map(|p| s(p)).collect(),
            d.untracked.iter().map(|f| s(&f.path)).collect(),
            d.refreshed.iter().map(|(p, _)| s(p)).collect(),
        )
    }

    /// The listings kept while the index is still being read (here: all of them, the
    /// read being slow; or none, when no listing may wait and the walk waits for the
    /// read instead) must be classified as the ones compared as they are walked, and
    /// all as the merge of a sorted scan with the index does.
    #[test]
    fn listings_kept_while_the_index_is_read_are_classified_as_walked_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (p, c) in [
            ("a/b", "b"),
            ("a/c/d", "d"),
            ("a/e", "e"),
            ("a-b", "ab"),
            ("top", "top"),
            ("gone", "gone"),
            ("stale", "stale"),
        ] {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        let mut entries = BTreeMap::new();
        for p in ["a/b", "a/c/d", "a/e", "a-b", "top", "gone", "stale"] {
            entries.insert(p.as_bytes().to_vec(), entry(root, p));
        }
        // Deleted, modified (same size, other content), only touched, and new files.
        std::fs::remove_file(root.join("gone")).unwrap();
        entries.get_mut(&b"top"[..]).unwrap().stat.mtime_ns -= 1;
        std::fs::write(root.join("top"), "TOP").unwrap();
        entries.get_mut(&b"stale"[..]).unwrap().stat.mtime_ns -= 1;
        std::fs::write(root.join("a/c/new"), "n").unwrap();
        std::fs::write(root.join("a/d"), "n").unwrap();
        let expected: Summary = (
            vec!["top".into()],
            vec!["gone".into()],
            vec!["a/c/new".into(), "a/d".into()],
            vec!["stale".into()],
        );
        for (delay, budget) in [(0, WAITING_BUDGET), (300, WAITING_BUDGET), (300, 0)] {
            let d = walk_delta_within(
                root,
                || {
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    Packed::from_sorted(entries.iter().map(|(p, e)| (p.as_slice(), *e)))
                },
                |paths| Ok(paths.iter().map(|p| entries.get(p).copied()).collect()),
                true,
                &NoProgress,
                budget,
            )
            .unwrap();
            assert_eq!(
                summary(&d),
                expected,
                "index read after {delay} ms, {budget} bytes may wait"
            );
            // The entries of what changed are the index's, whole.
            for p in ["gone", "top"] {
                assert_eq!(d.old.get(p.as_bytes()), entries.get(p.as_bytes()), "{p}");
            }
        }
        let index = IndexState {
            entries,
            ..IndexState::default()
        };
        let merged = worktree_delta(root, &index, &[], true, &NoProgress).unwrap();
        assert_eq!(summary(&merged), expected);
    }

    /// A walk that waits for the index (no listing may wait) must not wait forever
    /// when the read fails: the failure is the answer.
    #[test]
    fn a_failed_index_read_never_leaves_the_walk_waiting() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("f"), d).unwrap();
        }
        let r = walk_delta_within(
            dir.path(),
            || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                Err(Error::Internal("unreadable".into()))
            },
            |_| unreachable!("nothing to look up after a failed read"),
            true,
            &NoProgress,
            0,
        );
        assert!(matches!(r, Err(Error::Internal(m)) if m == "unreadable"));
    }
}
