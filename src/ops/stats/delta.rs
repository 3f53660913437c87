//! Statistics of a new version derived from an earlier version's cached ones.
//!
//! Statistics are sums over label files and frames, so those of B are those of A
//! plus what B's changed files add, minus what A's changed files added. The
//! changed files come from walking A and B together, descending only into
//! directories (and shards) whose ids differ; each is read and counted by the
//! same code as a full computation, and a file that describes many frames
//! (COCO, CVAT) is counted whole. What a sum cannot express is left to the full
//! computation: a changed `dsv.toml` or class-names file (every file below it
//! may count differently), a class-names file in a sharded directory (it
//! applies to its shard only, and shard bounds move), a changed file that does
//! not parse or a base with more than one that does not (the first few errors
//! are kept in walk order), counts that would go below zero (a cache that does
//! not match its tree), and more changed files than [`limit`] allows.

use super::*;
use crate::layout::file_name;
use crate::object::tree::{EntryRef, Shard, Tree, TreeEntry, TreeObject, TreeObjectRef};

/// A frame or label-file candidate of one side that differs from the other side.
struct Job {
    /// On B's side (added) rather than A's (taken away).
    add: bool,
    path: String,
    id: ObjectId,
    scope: Arc<Scope>,
}

/// Changed files past which the full computation (which reuses unchanged
/// subtrees and unchanged files' counts) costs less than counting both sides.
fn limit(base: &Stats) -> usize {
    let files = base.frames.saturating_add(base.label_files);
    usize::try_from(files / 8).unwrap_or(usize::MAX).max(4096)
}

/// The walk over the two trees; `None` from any step means "give up".
struct Diff<'a> {
    store: &'a ObjectStore,
    layout: &'a Layout,
    limit: usize,
    /// Jobs found so far, over every thread.
    queued: std::sync::atomic::AtomicUsize,
}

/// What the walk found below one directory.
#[derive(Default)]
struct Found {
    frames_added: u64,
    frames_removed: u64,
    jobs: Vec<Job>,
}

impl Found {
    fn merge(&mut self, o: Found) {
        self.frames_added += o.frames_added;
        self.frames_removed += o.frames_removed;
        self.jobs.extend(o.jobs);
    }
}

/// Whether a names file lies in a sharded directory (looked up in the shard
/// whose name range covers it).
fn names_in_shards(store: &ObjectStore, shards: &[Shard]) -> Result<bool> {
    for n in names_files() {
        let Some(s) = shards.iter().find(|s| s.last.as_slice() >= n.as_bytes()) else {
            continue;
        };
        if let TreeObject::Entries(e) = Tree::load_object(store, &s.id)?
            && e.binary_search_by(|e| e.name.as_slice().cmp(n.as_bytes()))
                .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn entry_ref(e: &TreeEntry) -> EntryRef<'_> {
    EntryRef {
        name: &e.name,
        mode: e.mode,
        id: e.id,
        size: e.size,
        files: e.files,
    }
}

fn join(path: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if path.is_empty() {
        name.into_owned()
    } else {
        format!("{path}/{name}")
    }
}

impl Diff<'_> {
    /// The scope for the entries of one directory object (`None`: a names file
    /// in a sharded directory).
    fn level(
        &self,
        obj: &TreeObjectRef,
        path: &str,
        scope: &Arc<Scope>,
    ) -> Result<Option<Arc<Scope>>> {
        match obj {
            TreeObjectRef::Shards(s) => {
                if names_in_shards(self.store, s)? {
                    return Ok(None);
                }
                Ok(Some(scope.clone()))
            }
            TreeObjectRef::Entries(entries) => {
                for n in names_files() {
                    if let Ok(i) = entries.binary_search_by(|e| e.name.cmp(n.as_bytes())) {
                        let e = &entries[i];
                        if e.mode == EntryMode::Dir {
                            // Read as a names file by the full walk: left to it.
                            return Ok(None);
                        }
                        let bytes = self.store.get(&e.id)?;
                        let s = Scope::of_names_file(path, n, &e.id, &bytes);
                        return Ok(Some(Arc::new(s)));
                    }
                }
                Ok(Some(scope.clone()))
            }
        }
    }

    /// Walks two versions of the directory at `path`.
    fn dirs(
        &self,
        a: &ObjectId,
        b: &ObjectId,
        path: &str,
        sa: &Arc<Scope>,
        sb: &Arc<Scope>,
    ) -> Result<Option<Found>> {
        let mut found = Found::default();
        if a == b {
            return Ok(Some(found));
        }
        crate::object::tree::check_dir_depth(path.as_bytes())?;
        // Decoded in place: the names of a large directory are not copied.
        let (ba, bb) = (self.store.get(a)?, self.store.get(b)?);
        let decode = |bytes, id: &ObjectId| {
            TreeObjectRef::decode(bytes).map_err(|reason| Error::CorruptObject { id: *id, reason })
        };
        let (oa, ob) = (decode(&ba, a)?, decode(&bb, b)?);
        let Some(sa) = self.level(&oa, path, sa)? else {
            return Ok(None);
        };
        let Some(sb) = self.level(&ob, path, sb)? else {
            return Ok(None);
        };
        let joined;
        let (ea, eb) = match (oa, ob) {
            (TreeObjectRef::Entries(ea), TreeObjectRef::Entries(eb)) => (ea, eb),
            // Sharded on either side: shards the two share are skipped.
            _ => {
                joined = Tree::load_pair_differing(self.store, a, b)?;
                let (ta, tb): &(Tree, Tree) = &joined;
                (
                    ta.entries.iter().map(entry_ref).collect(),
                    tb.entries.iter().map(entry_ref).collect(),
                )
            }
        };
        let mut ia = ea.into_iter().peekable();
        let mut ib = eb.into_iter().peekable();
        // Directories changed on both sides, walked in parallel after this level.
        let mut below = Vec::new();
        loop {
            let order = match (ia.peek(), ib.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.name.cmp(y.name),
            };
            let (x, y) = match order {
                std::cmp::Ordering::Less => (ia.next(), None),
                std::cmp::Ordering::Greater => (None, ib.next()),
                std::cmp::Ordering::Equal => (ia.next(), ib.next()),
            };
            match (&x, &y) {
                (Some(x), Some(y)) if x.id == y.id && x.mode == y.mode => {}
                (Some(x), Some(y)) if x.mode == EntryMode::Dir && y.mode == EntryMode::Dir => {
                    below.push((x.id, y.id, join(path, x.name)));
                }
                _ => {
                    for (e, add, scope) in [(&x, false, &sa), (&y, true, &sb)] {
                        if let Some(e) = e
                            && self.entry(e, path, add, scope, &mut found)?.is_none()
                        {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        let subs = below
            .par_iter()
            .map(|(x, y, p)| self.dirs(x, y, p, &sa, &sb))
            .collect::<Result<Vec<Option<Found>>>>()?;
        for f in subs {
            let Some(f) = f else {
                return Ok(None);
            };
            found.merge(f);
        }
        Ok(Some(found))
    }

    /// Takes in one entry of one side whole (a file, or everything below a directory).
    fn entry(
        &self,
        e: &EntryRef,
        dir: &str,
        add: bool,
        scope: &Arc<Scope>,
        found: &mut Found,
    ) -> Result<Option<()>> {
        let path = join(dir, e.name);
        if e.mode == EntryMode::Dir {
            crate::object::tree::check_dir_depth(path.as_bytes())?;
            // A names file below gives up (in `file`), so the scope is unchanged.
            for c in Tree::load(self.store, &e.id)?.entries.iter().map(entry_ref) {
                if self.entry(&c, &path, add, scope, found)?.is_none() {
                    return Ok(None);
                }
            }
            return Ok(Some(()));
        }
        self.file(path, e.id, add, scope, found)
    }

    fn file(
        &self,
        path: String,
        id: ObjectId,
        add: bool,
        scope: &Arc<Scope>,
        found: &mut Found,
    ) -> Result<Option<()>> {
        let name = file_name(&path);
        if path == crate::dsv_toml::FILE_NAME
            || names_files().iter().any(|n| name.eq_ignore_ascii_case(n))
        {
            return Ok(None);
        }
        match self.layout.role_by_path(&path) {
            Some(Role::Frame) if add => found.frames_added += 1,
            Some(Role::Frame) => found.frames_removed += 1,
            Some(Role::Other) => {}
            _ => {
                let queued = self
                    .queued
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if queued >= self.limit {
                    return Ok(None);
                }
                found.jobs.push(Job {
                    add,
                    path,
                    id,
                    scope: scope.clone(),
                });
            }
        }
        Ok(Some(()))
    }
}

/// Whether every count of a view is positive: a full computation keeps a
/// class or attribute value only while some file counts it.
fn all_positive<'s, C, A>(v: &ParsedView<C, A>) -> bool
where
    C: Iterator<Item = (&'s str, u64)> + Clone,
    A: Iterator<Item = (&'s str, &'s str, u64)> + Clone,
{
    v.classes.clone().all(|(_, n)| n > 0)
        && v.attributes
            .iter()
            .all(|l| l.clone().all(|(_, _, n)| n > 0))
}

impl Stats {
    /// Takes away the counts of one label file that parsed; `None` when they
    /// are not all there to take.
    fn sub_parsed<'s, C, A>(&mut self, v: ParsedView<C, A>) -> Option<()>
    where
        C: Iterator<Item = (&'s str, u64)> + Clone,
        A: Iterator<Item = (&'s str, &'s str, u64)> + Clone,
    {
        if !all_positive(&v) {
            return None;
        }
        self.label_files = self.label_files.checked_sub(1)?;
        self.labelled_frames = self.labelled_frames.checked_sub(v.labelled)?;
        self.empty_label_frames = self.empty_label_frames.checked_sub(v.empty)?;
        self.objects = self.objects.checked_sub(v.objects)?;
        for (k, n) in v.classes {
            let c = self.classes.get_mut(k)?;
            *c = c.checked_sub(n)?;
            if *c == 0 {
                self.classes.remove(k);
            }
        }
        let [over_objects, over_frames] = v.attributes;
        for (map, list) in [
            (&mut self.attributes, over_objects),
            (&mut self.frame_attributes, over_frames),
        ] {
            for (k, val, n) in list {
                let values = map.get_mut(k)?;
                let c = values.get_mut(val)?;
                *c = c.checked_sub(n)?;
                if *c == 0 {
                    values.remove(val);
                    if values.is_empty() {
                        map.remove(k);
                    }
                }
            }
        }
        Some(())
    }

    /// Adds (or takes away) one file's counts; `None` for a file that does not
    /// parse (see the module comment) or counts that are not there to take.
    fn apply(&mut self, c: &Counted, names: &[String], add: bool) -> Option<()> {
        match (c, add) {
            (Counted::Indexed(y), true) => {
                let v = y.view(names);
                all_positive(&v).then(|| self.add_parsed(v))
            }
            (Counted::Indexed(y), false) => self.sub_parsed(y.view(names)),
            (Counted::Full(f), _) => match f.kind {
                FileKind::NotLabels => Some(()),
                FileKind::Error => None,
                FileKind::Parsed if add => {
                    let v = f.view();
                    all_positive(&v).then(|| self.add_parsed(v))
                }
                FileKind::Parsed => self.sub_parsed(f.view()),
            },
        }
    }
}

/// The statistics of tree `b` from `base`, those of tree `a`; `None` when they
/// cannot be derived (see the module comment) and must be computed.
pub(super) fn derive(
    store: &ObjectStore,
    layout: &Layout,
    a: &ObjectId,
    b: &ObjectId,
    base: Stats,
) -> Result<Option<Stats>> {
    let mut t = crate::trace::Phases::start("stats.derive");
    if base.label_errors > 1 {
        return Ok(None);
    }
    let walk = Diff {
        store,
        layout,
        limit: limit(&base),
        queued: 0.into(),
    };
    let root = Arc::new(Scope {
        names: None,
        digest: [0; 32],
        error: None,
    });
    let Some(diff) = walk.dirs(a, b, "", &root, &root)? else {
        return Ok(None);
    };
    t.mark("walk");
    let (src_a, src_b) = (
        TreeSource::new(store, Some(*a)),
        TreeSource::new(store, Some(*b)),
    );
    // The walk gave up on a changed `dsv.toml`, so A's is B's; each side has its
    // own layout all the same, as a layout remembers names files by path.
    let layout_a = Layout::new(layout.toml.clone());
    let cache = StatsCache::disabled();
    let walk = |src, layout| Walk {
        store,
        layout,
        src,
        cache: &cache,
    };
    let (wa, wb) = (walk(&src_a, &layout_a), walk(&src_b, layout));
    let ids: Vec<ObjectId> = diff.jobs.iter().map(|j| j.id).collect();
    let jobs = &diff.jobs;
    let counts = store.get_many_with(&ids, |i, bytes| match jobs.get(i) {
        Some(j) => (if j.add { &wb } else { &wa }).file_counts(bytes, &j.path, &j.scope),
        None => Ok(None),
    })?;
    t.mark("read-parse");
    let mut s = base;
    let frames =
        (s.frames.checked_add(diff.frames_added)).and_then(|f| f.checked_sub(diff.frames_removed));
    let Some(frames) = frames else {
        return Ok(None);
    };
    s.frames = frames;
    // Added first, so that a count taken away and added back never passes zero.
    for add in [true, false] {
        for (j, c) in jobs.iter().zip(&counts) {
            let Some(c) = c.as_ref().filter(|_| j.add == add) else {
                continue;
            };
            let names = j.scope.names.as_ref().map_or(&[][..], |n| n.as_slice());
            if s.apply(c, names, add).is_none() {
                return Ok(None);
            }
        }
    }
    t.mark("sum");
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed() -> impl Strategy<Value = FileCounts> {
        let name = || "[a-c]{1,2}";
        (
            (0u64..3, 0u64..3, 0u64..50),
            proptest::collection::vec((name(), 1u64..9), 0..4),
            proptest::collection::vec((name(), name(), 1u64..9), 0..3),
            proptest::collection::vec((name(), name(), 1u64..9), 0..3),
        )
            .prop_map(|((labelled, empty, objects), classes, a, f)| FileCounts {
                kind: FileKind::Parsed,
                labelled,
                empty,
                objects,
                classes,
                attributes: a,
                frame_attributes: f,
                ..FileCounts::default()
            })
    }

    proptest! {
        #[test]
        fn taking_away_a_files_counts_undoes_adding_them(
            base in proptest::collection::vec(parsed(), 0..5),
            c in parsed(),
        ) {
            let mut s = Stats::default();
            for b in &base {
                s.add_counts(b, String::new);
            }
            let before = s.clone();
            let file = Counted::Full(Box::new(c.clone()));
            prop_assert!(s.apply(&file, &[], true).is_some());
            prop_assert!(s.apply(&file, &[], false).is_some());
            // Classes and values no file counts any more are gone, as from scratch.
            prop_assert_eq!(s, before);
        }

        #[test]
        fn counts_that_are_not_there_are_never_taken_away(c in parsed()) {
            let mut s = Stats::default();
            let file = Counted::Full(Box::new(c.clone()));
            // Every parsed file counts as a label file: an empty base has none to take.
            prop_assert!(s.apply(&file, &[], false).is_none());
        }
    }

    #[test]
    fn a_file_that_does_not_parse_is_left_to_the_full_computation() {
        let mut s = Stats::default();
        let broken = Counted::Full(Box::new(FileCounts {
            kind: FileKind::Error,
            error: "line 1: bad".into(),
            ..FileCounts::default()
        }));
        assert!(s.apply(&broken, &[], true).is_none());
        assert!(s.apply(&broken, &[], false).is_none());
    }
}
