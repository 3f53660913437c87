//! From an index to trees: the Merkle directories a commit records, built from
//! the sorted paths of the index in one pass, stored or only hashed.
//!
//! The paths arrive one at a time in byte order ([`TreeBuilder`]), so only the
//! directories still open (one per level of the current path) are in memory, never
//! the whole index: the paths under `dir/` are contiguous in byte order, so a
//! directory is complete as soon as a path outside it arrives.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{EntryMode, Summary, Tree, TreeEntry};
use crate::store::ObjectStore;

use super::index::IndexEntry;

/// Builds and stores the tree of an index; returns the root tree id and summary.
pub fn build_tree(
    store: &ObjectStore,
    entries: &BTreeMap<Vec<u8>, IndexEntry>,
) -> Result<(ObjectId, Summary)> {
    tree_of_index(entries, &mut |bytes| store.put(bytes))
}

/// The root tree id an index would commit to, without storing anything.
pub fn index_tree_id(entries: &BTreeMap<Vec<u8>, IndexEntry>) -> Result<ObjectId> {
    Ok(tree_of_index(entries, &mut |bytes| Ok(ObjectId::hash(bytes)))?.0)
}

/// The root tree and summary of an index, each tree object handed to `put`.
pub fn tree_of_index(
    entries: &BTreeMap<Vec<u8>, IndexEntry>,
    put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
) -> Result<(ObjectId, Summary)> {
    let mut builder = TreeBuilder::new(put);
    for (path, e) in entries {
        builder.push(path, e)?;
    }
    builder.finish()
}

/// Builds the trees of paths given one at a time in strictly increasing byte order
/// (the order of the index table), handing each finished tree object to `put`.
pub struct TreeBuilder<'a> {
    put: &'a mut dyn FnMut(&[u8]) -> Result<ObjectId>,
    /// The open directories from the root down: (name, entries so far); the root's
    /// name is empty.
    open: Vec<(Vec<u8>, Vec<TreeEntry>)>,
    /// The previous path, to refuse input out of order (it would split a directory).
    last: Vec<u8>,
}

impl<'a> TreeBuilder<'a> {
    /// A builder with only the (empty) root open.
    pub fn new(put: &'a mut dyn FnMut(&[u8]) -> Result<ObjectId>) -> TreeBuilder<'a> {
        TreeBuilder {
            put,
            open: vec![(Vec::new(), Vec::new())],
            last: Vec::new(),
        }
    }

    /// Adds the entry at `path`, which must sort after every path added before.
    pub fn push(&mut self, path: &[u8], e: &IndexEntry) -> Result<()> {
        if !self.last.is_empty() && path <= self.last.as_slice() {
            return Err(Error::Internal(format!(
                "tree builder: '{}' out of order",
                String::from_utf8_lossy(path)
            )));
        }
        self.last.clear();
        self.last.extend_from_slice(path);
        let mut parts = path.split(|b| *b == b'/');
        let name = parts.next_back().unwrap_or_default();
        let dirs: Vec<&[u8]> = parts.collect();
        if dirs.len() >= crate::object::tree::MAX_DEPTH {
            return Err(crate::object::tree::too_deep(path));
        }
        // The open directories this path shares (the root always).
        let mut keep = 1;
        while keep < self.open.len()
            && keep - 1 < dirs.len()
            && self.open[keep].0.as_slice() == dirs[keep - 1]
        {
            keep += 1;
        }
        while self.open.len() > keep {
            self.close()?;
        }
        for d in &dirs[keep - 1..] {
            self.open.push((d.to_vec(), Vec::new()));
        }
        let top = &mut self.open.last_mut().expect("the root stays open").1;
        top.push(TreeEntry {
            name: name.to_vec(),
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
            files: 1,
        });
        Ok(())
    }

    /// Stores the innermost open directory and enters it in its parent.
    fn close(&mut self) -> Result<()> {
        let (name, entries) = self.open.pop().expect("close below the root");
        let (id, size, files) = store(self.put, entries)?;
        let parent = &mut self.open.last_mut().expect("the root stays open").1;
        parent.push(TreeEntry {
            name,
            mode: EntryMode::Dir,
            id,
            size,
            files,
        });
        Ok(())
    }

    /// Stores every directory still open; returns the root tree id and summary.
    pub fn finish(mut self) -> Result<(ObjectId, Summary)> {
        while self.open.len() > 1 {
            self.close()?;
        }
        let (_, entries) = self.open.pop().expect("the root stays open");
        let (id, bytes, files) = store(self.put, entries)?;
        Ok((id, Summary { files, bytes }))
    }
}

/// Stores one directory's tree; returns its id, bytes and files.
fn store(
    put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
    entries: Vec<TreeEntry>,
) -> Result<(ObjectId, u64, u64)> {
    let tree = Tree { entries };
    let size = tree.size();
    let files = tree.files();
    Ok((tree.store_with(put)?, size, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chunk::StatStamp;

    fn file(byte: u8, size: u64) -> IndexEntry {
        IndexEntry {
            mode: EntryMode::File,
            id: ObjectId([byte; 32]),
            stat: StatStamp {
                size,
                mtime_ns: 1,
                ctime_ns: 1,
                ino: 1,
            },
        }
    }

    fn hash(b: &[u8]) -> Result<ObjectId> {
        Ok(ObjectId::hash(b))
    }

    fn leaf(name: &str, e: &IndexEntry) -> TreeEntry {
        TreeEntry {
            name: name.as_bytes().to_vec(),
            mode: e.mode,
            id: e.id,
            size: e.stat.size,
            files: 1,
        }
    }

    #[test]
    fn directories_close_when_a_path_leaves_them() {
        // "a.txt" < "a/b" < "a/c/d" < "a0" < "z/y": `a/` opens after a sibling
        // and closes before another, `a/c/` closes with it.
        let (e1, e2, e3, e4, e5) = (file(1, 1), file(2, 2), file(3, 4), file(4, 8), file(5, 16));
        let index: BTreeMap<Vec<u8>, IndexEntry> = [
            ("a.txt", e1),
            ("a/b", e2),
            ("a/c/d", e3),
            ("a0", e4),
            ("z/y", e5),
        ]
        .into_iter()
        .map(|(p, e)| (p.as_bytes().to_vec(), e))
        .collect();
        let (root, summary) = tree_of_index(&index, &mut hash).unwrap();

        let dir = |name: &str, entries: Vec<TreeEntry>| {
            let (id, size, files) = store(&mut hash, entries).unwrap();
            TreeEntry {
                name: name.as_bytes().to_vec(),
                mode: EntryMode::Dir,
                id,
                size,
                files,
            }
        };
        let c = dir("c", vec![leaf("d", &e3)]);
        let a = dir("a", vec![leaf("b", &e2), c]);
        let z = dir("z", vec![leaf("y", &e5)]);
        let want = store(&mut hash, vec![leaf("a.txt", &e1), a, leaf("a0", &e4), z]).unwrap();
        assert_eq!((root, summary.bytes, summary.files), want);
        assert_eq!((summary.bytes, summary.files), (31, 5));
    }

    #[test]
    fn paths_out_of_order_are_refused() {
        let mut put = hash;
        let mut b = TreeBuilder::new(&mut put);
        b.push(b"a/b", &file(1, 1)).unwrap();
        b.push(b"c", &file(2, 1)).unwrap();
        // Accepting "a/x" now would store `a` twice.
        assert!(b.push(b"a/x", &file(3, 1)).is_err());
        assert!(b.push(b"c", &file(3, 1)).is_err());
    }

    #[test]
    fn empty_index_is_the_empty_tree() {
        let (root, summary) = tree_of_index(&BTreeMap::new(), &mut hash).unwrap();
        assert_eq!(root, store(&mut hash, Vec::new()).unwrap().0);
        assert_eq!((summary.files, summary.bytes), (0, 0));
    }
}
