//! Comparing trees, the index and the working tree at file level.
//!
//! Tree comparison walks both Merkle trees together and descends only into
//! directories (and shards) whose ids differ, so unchanged parts of a large
//! dataset are never read.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::{EntryMode, Tree};
use crate::paths::path_within;
use crate::store::ObjectStore;

/// A file as recorded in a tree or the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileState {
    /// Kind of file.
    pub mode: EntryMode,
    /// Content id.
    pub id: ObjectId,
    /// Size in bytes.
    pub size: u64,
}

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New path.
    Added,
    /// Path removed.
    Deleted,
    /// Content or mode changed.
    Modified,
    /// Same content under a new path.
    Renamed,
}

impl ChangeKind {
    /// git's one-letter code.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
            ChangeKind::Modified => 'M',
            ChangeKind::Renamed => 'R',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Path (the new path for renames).
    #[serde(serialize_with = "crate::paths::ser")]
    pub path: Vec<u8>,
    /// Old path of a rename.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::paths::ser_opt"
    )]
    pub from: Option<Vec<u8>>,
    /// Kind of change.
    pub kind: ChangeKind,
    /// State before.
    pub old: Option<FileState>,
    /// State after.
    pub new: Option<FileState>,
}

impl Change {
    /// A change between two optional states (both `None` is not a change).
    pub fn between(
        path: Vec<u8>,
        old: Option<FileState>,
        new: Option<FileState>,
    ) -> Option<Change> {
        let kind = match (&old, &new) {
            (None, None) => return None,
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Deleted,
            (Some(a), Some(b)) if a.id == b.id && a.mode == b.mode => return None,
            _ => ChangeKind::Modified,
        };
        Some(Change {
            path,
            from: None,
            kind,
            old,
            new,
        })
    }
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
        p.extend_from_slice(prefix);
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }
}

/// Checks the sizes the trees claim for each side of `changes` (which diff and
/// show print) against the stored objects, reading record headers only.
pub fn check_change_sizes(store: &ObjectStore, changes: &[Change]) -> Result<()> {
    for c in changes {
        let old_path = c.from.as_deref().unwrap_or(&c.path);
        for (path, st) in [(old_path, c.old), (&c.path[..], c.new)] {
            if let Some(st) = st
                && st.mode.is_blob()
                && let Some(real) = store.content_len(&st.id)?
            {
                crate::object::tree::check_size(path, st.size, &st.id, real)?;
            }
        }
    }
    Ok(())
}

/// Lists every file of a tree (recursively) with its path.
pub fn flatten(store: &ObjectStore, tree: &ObjectId) -> Result<BTreeMap<Vec<u8>, FileState>> {
    let mut out = BTreeMap::new();
    flatten_into(store, tree, &[], &mut out)?;
    Ok(out)
}

/// Every file of `tree` as (path, state), in tree order: [`flatten`] as a list, for
/// a caller that looks nothing up (a full checkout into an empty index). At
/// millions of files a map held about twice the bytes of the list.
pub fn flatten_list(store: &ObjectStore, tree: &ObjectId) -> Result<Vec<(Vec<u8>, FileState)>> {
    let mut out = Vec::new();
    walk_files(store, tree, &[], &mut |p, st| out.push((p, st)))?;
    Ok(out)
}

fn flatten_into(
    store: &ObjectStore,
    tree: &ObjectId,
    prefix: &[u8],
    out: &mut BTreeMap<Vec<u8>, FileState>,
) -> Result<()> {
    walk_files(store, tree, prefix, &mut |p, st| {
        out.insert(p, st);
    })
}

fn walk_files(
    store: &ObjectStore,
    tree: &ObjectId,
    prefix: &[u8],
    out: &mut dyn FnMut(Vec<u8>, FileState),
) -> Result<()> {
    crate::object::tree::check_dir_depth(prefix)?;
    let t = Tree::load(store, tree)?;
    for e in t.entries {
        let path = join(prefix, &e.name);
        if e.mode == EntryMode::Dir {
            walk_files(store, &e.id, &path, out)?;
        } else {
            out(
                path,
                FileState {
                    mode: e.mode,
                    id: e.id,
                    size: e.size,
                },
            );
        }
    }
    Ok(())
}

/// Looks up one path in a tree, reading only the directories on the way.
pub fn lookup(
    store: &ObjectStore,
    tree: &ObjectId,
    path: &[u8],
) -> Result<Option<(EntryMode, ObjectId, u64)>> {
    if path.is_empty() {
        return Ok(Some((EntryMode::Dir, *tree, 0)));
    }
    let mut current = *tree;
    let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    for (i, part) in parts.iter().enumerate() {
        let t = Tree::load(store, &current)?;
        let Some(e) = t.get(part) else {
            return Ok(None);
        };
        if i + 1 == parts.len() {
            return Ok(Some((e.mode, e.id, e.size)));
        }
        if e.mode != EntryMode::Dir {
            return Ok(None);
        }
        current = e.id;
    }
    Ok(None)
}

/// Files of a tree under the given scopes (empty = all), reading only needed directories.
pub fn flatten_scoped(
    store: &ObjectStore,
    tree: Option<&ObjectId>,
    scopes: &[Vec<u8>],
) -> Result<BTreeMap<Vec<u8>, FileState>> {
    let Some(tree) = tree else {
        return Ok(BTreeMap::new());
    };
    if scopes.is_empty() || scopes.iter().any(|s| s.is_empty()) {
        return flatten(store, tree);
    }
    let mut out = BTreeMap::new();
    for scope in scopes {
        match lookup(store, tree, scope)? {
            Some((EntryMode::Dir, id, _)) => flatten_into(store, &id, scope, &mut out)?,
            Some((mode, id, size)) => {
                out.insert(scope.clone(), FileState { mode, id, size });
            }
            None => {}
        }
    }
    Ok(out)
}

/// Compares two trees (either may be absent), limited to `scopes` (empty = all).
pub fn diff_trees(
    store: &ObjectStore,
    a: Option<&ObjectId>,
    b: Option<&ObjectId>,
    scopes: &[Vec<u8>],
) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    match (a, b) {
        (None, None) => {}
        (Some(a), None) => {
            for (p, s) in flatten(store, a)? {
                out.extend(Change::between(p, Some(s), None));
            }
        }
        (None, Some(b)) => {
            for (p, s) in flatten(store, b)? {
                out.extend(Change::between(p, None, Some(s)));
            }
        }
        (Some(a), Some(b)) => diff_dirs(store, a, b, &[], &mut out)?,
    }
    if !scopes.is_empty() && !scopes.iter().any(|s| s.is_empty()) {
        out.retain(|c| scopes.iter().any(|s| path_within(&c.path, s)));
    }
    Ok(out)
}

/// The changes between two trees (either may be absent), handed to `f` one at a
/// time as the walk finds them instead of gathered: only the directories along the
/// current path are in memory, so the first commit of a million files never lists
/// them all (`label_check::check_trees`). Sequential; each directory's changes
/// come at its entry's place, as in [`diff_trees`], and a path that is a file on
/// one side and a directory on the other comes before the files below it.
pub fn diff_trees_each(
    store: &ObjectStore,
    a: Option<&ObjectId>,
    b: Option<&ObjectId>,
    f: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    each_change(store, a, b, &[], f)
}

fn each_change(
    store: &ObjectStore,
    a: Option<&ObjectId>,
    b: Option<&ObjectId>,
    prefix: &[u8],
    f: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    crate::object::tree::check_dir_depth(prefix)?;
    let empty = || Tree {
        entries: Vec::new(),
    };
    let (ta, tb) = match (a, b) {
        (Some(a), Some(b)) => Tree::load_pair_differing(store, a, b)?,
        (Some(a), None) => (Tree::load(store, a)?, empty()),
        (None, Some(b)) => (empty(), Tree::load(store, b)?),
        (None, None) => return Ok(()),
    };
    for (ea, eb) in differing(&ta.entries, &tb.entries) {
        let name = ea.or(eb).map(|e| e.name.as_slice()).unwrap_or_default();
        let path = join(prefix, name);
        let file = |e: Option<&crate::object::TreeEntry>| {
            e.filter(|e| e.mode != EntryMode::Dir).map(|e| FileState {
                mode: e.mode,
                id: e.id,
                size: e.size,
            })
        };
        let dir = |e: Option<&crate::object::TreeEntry>| {
            e.filter(|e| e.mode == EntryMode::Dir).map(|e| e.id)
        };
        let (da, db) = (dir(ea), dir(eb));
        if let Some(c) = Change::between(path.clone(), file(ea), file(eb)) {
            f(c)?;
        }
        if da.is_some() || db.is_some() {
            each_change(store, da.as_ref(), db.as_ref(), &path, f)?;
        }
    }
    Ok(())
}

/// A directory entry as [`differing`] pairs it: its name, kind and content id.
trait Listed {
    fn key(&self) -> (&[u8], EntryMode, &ObjectId);
}

impl Listed for crate::object::TreeEntry {
    fn key(&self) -> (&[u8], EntryMode, &ObjectId) {
        (&self.name, self.mode, &self.id)
    }
}

impl Listed for crate::object::tree::EntryRef<'_> {
    fn key(&self) -> (&[u8], EntryMode, &ObjectId) {
        (self.name, self.mode, &self.id)
    }
}

/// The entries of two name-sorted listings paired by name, in name order, leaving
/// out pairs with the same kind and id: most entries of a large directory are
/// unchanged, and for them the callers build no path.
fn differing<'a, T: Listed>(
    a: &'a [T],
    b: &'a [T],
) -> impl Iterator<Item = (Option<&'a T>, Option<&'a T>)> + 'a {
    use std::cmp::Ordering;
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        loop {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.key().0.cmp(y.key().0),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => return None,
            };
            let (ea, eb) = match order {
                Ordering::Less => (a.get(i), None),
                Ordering::Greater => (None, b.get(j)),
                Ordering::Equal => (a.get(i), b.get(j)),
            };
            i += usize::from(ea.is_some());
            j += usize::from(eb.is_some());
            if let (Some(x), Some(y)) = (ea, eb) {
                let ((_, mx, ix), (_, my, iy)) = (x.key(), y.key());
                if mx == my && ix == iy {
                    continue;
                }
            }
            return Some((ea, eb));
        }
    })
}

/// What one directory's comparison leaves to do, in path order: changes
/// found, and subdirectories to compare (in parallel, then spliced in).
enum Part {
    Changes(Vec<Change>),
    Dir(Vec<u8>, ObjectId, ObjectId),
}

fn diff_dirs(
    store: &ObjectStore,
    a: &ObjectId,
    b: &ObjectId,
    prefix: &[u8],
    out: &mut Vec<Change>,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    crate::object::tree::check_dir_depth(prefix)?;
    let parts = Tree::with_pair_differing(store, a, b, |ta, tb| {
        let mut parts: Vec<Part> = Vec::new();
        let mut changes = Vec::new();
        for (ea, eb) in differing(ta, tb) {
            let name = ea.or(eb).map(|e| e.name).unwrap_or_default();
            let path = join(prefix, name);
            if let (Some(x), Some(y)) = (ea, eb)
                && x.mode == EntryMode::Dir
                && y.mode == EntryMode::Dir
            {
                if !changes.is_empty() {
                    parts.push(Part::Changes(std::mem::take(&mut changes)));
                }
                parts.push(Part::Dir(path, x.id, y.id));
                continue;
            }
            let side = |e: Option<&crate::object::tree::EntryRef>| -> Result<BTreeMap<Vec<u8>, FileState>> {
                let mut m = BTreeMap::new();
                if let Some(e) = e {
                    if e.mode == EntryMode::Dir {
                        flatten_into(store, &e.id, &path, &mut m)?;
                    } else {
                        m.insert(
                            path.clone(),
                            FileState {
                                mode: e.mode,
                                id: e.id,
                                size: e.size,
                            },
                        );
                    }
                }
                Ok(m)
            };
            merge_maps(side(ea)?, side(eb)?, &mut changes);
        }
        if !changes.is_empty() {
            parts.push(Part::Changes(changes));
        }
        Ok(parts)
    })?;
    let dirs = parts.iter().filter(|p| matches!(p, Part::Dir(..))).count();
    if dirs < 2 {
        for part in parts {
            match part {
                Part::Changes(c) => out.extend(c),
                Part::Dir(path, x, y) => diff_dirs(store, &x, &y, &path, out)?,
            }
        }
        return Ok(());
    }
    // Sibling directories are independent; each result is kept in its place so the
    // order (and the first error, in path order) is what a sequential walk gives.
    let results: Vec<Result<Vec<Change>>> = parts
        .into_par_iter()
        .map(|part| match part {
            Part::Changes(c) => Ok(c),
            Part::Dir(path, x, y) => {
                let mut v = Vec::new();
                diff_dirs(store, &x, &y, &path, &mut v).map(|()| v)
            }
        })
        .collect();
    for r in results {
        out.extend(r?);
    }
    Ok(())
}

/// Emits the changes between two path maps, in path order.
pub fn merge_maps(
    a: BTreeMap<Vec<u8>, FileState>,
    b: BTreeMap<Vec<u8>, FileState>,
    out: &mut Vec<Change>,
) {
    let mut ia = a.into_iter().peekable();
    let mut ib = b.into_iter().peekable();
    loop {
        let order = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.0.cmp(&y.0),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (p, s) = ia.next().expect("peeked");
                out.extend(Change::between(p, Some(s), None));
            }
            std::cmp::Ordering::Greater => {
                let (p, s) = ib.next().expect("peeked");
                out.extend(Change::between(p, None, Some(s)));
            }
            std::cmp::Ordering::Equal => {
                let (p, s) = ia.next().expect("peeked");
                let (_, t) = ib.next().expect("peeked");
                out.extend(Change::between(p, Some(s), Some(t)));
            }
        }
    }
}

/// Pairs deleted and added paths with identical content into renames.
pub fn detect_renames(changes: Vec<Change>) -> Vec<Change> {
    let mut deleted: HashMap<ObjectId, Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.kind == ChangeKind::Deleted
            && let Some(old) = &c.old
        {
            deleted.entry(old.id).or_default().push(i);
        }
    }
    let mut consumed = vec![false; changes.len()];
    let mut renames: HashMap<usize, usize> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.kind == ChangeKind::Added
            && let Some(new) = &c.new
            && let Some(list) = deleted.get_mut(&new.id)
            && let Some(j) = list.pop()
        {
            consumed[j] = true;
            renames.insert(i, j);
        }
    }
    let mut out = Vec::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        if consumed[i] {
            continue;
        }
        match renames.get(&i) {
            Some(&j) => out.push(Change {
                path: c.path.clone(),
                from: Some(changes[j].path.clone()),
                kind: ChangeKind::Renamed,
                old: changes[j].old,
                new: c.new,
            }),
            None => out.push(c.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::TreeEntry;
    use crate::repo::{OpenOptions, Repository};

    /// Stores the tree of `files` (path, content byte); returns its id.
    fn tree(store: &ObjectStore, files: &[(&str, u8)]) -> ObjectId {
        let mut here: BTreeMap<Vec<u8>, u8> = BTreeMap::new();
        let mut below: BTreeMap<Vec<u8>, Vec<(&str, u8)>> = BTreeMap::new();
        for (path, byte) in files {
            match path.split_once('/') {
                Some((dir, rest)) => below.entry(dir.into()).or_default().push((rest, *byte)),
                None => {
                    here.insert(path.as_bytes().to_vec(), *byte);
                }
            }
        }
        let mut entries: Vec<TreeEntry> = here
            .into_iter()
            .map(|(name, byte)| TreeEntry {
                name,
                mode: EntryMode::File,
                id: store.put(&[byte]).unwrap(),
                size: 1,
                files: 1,
            })
            .collect();
        for (name, sub) in below {
            let n = sub.len() as u64;
            entries.push(TreeEntry {
                name,
                mode: EntryMode::Dir,
                id: tree(store, &sub),
                size: n,
                files: n,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Tree { entries }.store(store).unwrap()
    }

    #[test]
    fn changes_handed_over_one_at_a_time_are_the_listed_changes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        let store = &repo.store;
        // A file replaced by a directory and the reverse, a name that sorts between a
        // directory and its files ("a.txt" against "a/"), nested and unchanged parts.
        let a = tree(
            store,
            &[
                ("a/b", 1),
                ("a/c/d", 2),
                ("a.txt", 3),
                ("x", 4),
                ("y/z", 5),
                ("k/l/m", 6),
            ],
        );
        let b = tree(
            store,
            &[
                ("a/b", 1),
                ("a/c/d", 9),
                ("a/e", 7),
                ("x/w", 4),
                ("y", 5),
                ("k/l/m", 6),
            ],
        );
        for (old, new) in [
            (None, Some(&b)),
            (Some(&a), Some(&b)),
            (Some(&b), Some(&a)),
            (Some(&a), None),
        ] {
            let mut listed = diff_trees(store, old, new, &[]).unwrap();
            let mut streamed = Vec::new();
            diff_trees_each(store, old, new, &mut |c| {
                streamed.push(c);
                Ok(())
            })
            .unwrap();
            assert!(!listed.is_empty());
            listed.sort_by(|x, y| x.path.cmp(&y.path));
            streamed.sort_by(|x, y| x.path.cmp(&y.path));
            assert_eq!(streamed, listed, "{old:?} -> {new:?}");
        }
    }
}
