//! [`FileSource`]s over the three places a dataset version lives: a commit's
//! tree, the index, and the working tree.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::layout::FileSource;
use crate::object::diff::FileState;
use crate::object::tree::TreeObject;
use crate::object::{EntryMode, Tree};
use crate::store::ObjectStore;

/// Files of a stored tree. Directory objects are cached (up to [`TREE_CACHE`] of
/// them), and inside a sharded directory only the shard holding the name is read,
/// so many lookups in a million-entry directory stay cheap.
pub struct TreeSource<'a> {
    store: &'a ObjectStore,
    root: Option<ObjectId>,
    cache: Mutex<HashMap<ObjectId, Arc<TreeObject>>>,
}

/// Directory objects a [`TreeSource`] keeps. Lookups come in path order (a commit's
/// label check walks the whole tree of a first commit), so recent directories are
/// what is asked again; starting afresh when full bounds the cache, which kept
/// every directory of a million-frame tree (~80 bytes a frame) before.
const TREE_CACHE: usize = 64;

impl<'a> TreeSource<'a> {
    /// A source over `root` (`None`: an empty tree).
    pub fn new(store: &'a ObjectStore, root: Option<ObjectId>) -> TreeSource<'a> {
        TreeSource {
            store,
            root,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn object(&self, id: &ObjectId) -> Result<Arc<TreeObject>> {
        if let Some(o) = self.cache.lock().ok().and_then(|c| c.get(id).cloned()) {
            return Ok(o);
        }
        let o = Arc::new(Tree::load_object(self.store, id)?);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= TREE_CACHE {
                c.clear();
            }
            c.insert(*id, o.clone());
        }
        Ok(o)
    }

    fn entry_in(&self, dir: &ObjectId, name: &[u8]) -> Result<Option<(EntryMode, ObjectId)>> {
        let obj = self.object(dir)?;
        let entries = match obj.as_ref() {
            TreeObject::Entries(e) => return Ok(find(e, name)),
            TreeObject::Shards(shards) => {
                let Some(s) = shards.iter().find(|s| s.last.as_slice() >= name) else {
                    return Ok(None);
                };
                self.object(&s.id)?
            }
        };
        match entries.as_ref() {
            TreeObject::Entries(e) => Ok(find(e, name)),
            TreeObject::Shards(_) => Err(Error::CorruptObject {
                id: *dir,
                reason: "nested shard list".into(),
            }),
        }
    }

    /// Mode and id of the file or directory at `path`.
    pub fn lookup(&self, path: &str) -> Result<Option<(EntryMode, ObjectId)>> {
        let Some(mut cur) = self.root else {
            return Ok(None);
        };
        if path.is_empty() {
            return Ok(Some((EntryMode::Dir, cur)));
        }
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let Some((mode, id)) = self.entry_in(&cur, part.as_bytes())? else {
                return Ok(None);
            };
            if parts.peek().is_none() {
                return Ok(Some((mode, id)));
            }
            if mode != EntryMode::Dir {
                return Ok(None);
            }
            cur = id;
        }
        Ok(None)
    }
}

fn find(entries: &[crate::object::TreeEntry], name: &[u8]) -> Option<(EntryMode, ObjectId)> {
    entries
        .binary_search_by(|e| e.name.as_slice().cmp(name))
        .ok()
        .and_then(|i| entries.get(i))
        .map(|e| (e.mode, e.id))
}

impl FileSource for TreeSource<'_> {
    fn read_id(&self, _path: &str, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.store.get(id)?))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.lookup(path)? {
            Some((mode, id)) if mode.is_blob() => Ok(Some(self.store.get(&id)?)),
            _ => Ok(None),
        }
    }
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.lookup(path)?.is_some_and(|(m, _)| m != EntryMode::Dir))
    }
    fn paths(&self) -> Result<Option<Vec<String>>> {
        let files = crate::object::diff::flatten_scoped(self.store, self.root.as_ref(), &[])?;
        Ok(Some(
            files
                .keys()
                .map(|p| crate::paths::display_path(p))
                .collect(),
        ))
    }
}

/// Files as a path map says (the index), contents from the store.
pub struct MapSource<'a> {
    store: &'a ObjectStore,
    files: &'a BTreeMap<Vec<u8>, FileState>,
}

impl<'a> MapSource<'a> {
    /// A source over a path -> state map whose ids are all in the store.
    pub fn new(store: &'a ObjectStore, files: &'a BTreeMap<Vec<u8>, FileState>) -> MapSource<'a> {
        MapSource { store, files }
    }
}

impl FileSource for MapSource<'_> {
    fn read_id(&self, _path: &str, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.store.get(id)?))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.files.get(path.as_bytes()) {
            Some(s) => Ok(Some(self.store.get(&s.id)?)),
            None => Ok(None),
        }
    }
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.files.contains_key(path.as_bytes()))
    }
    fn paths(&self) -> Result<Option<Vec<String>>> {
        Ok(Some(
            self.files
                .keys()
                .map(|p| crate::paths::display_path(p))
                .collect(),
        ))
    }
}

/// Files as the index says, looked up one by one (no map of the whole index),
/// contents from the store.
pub struct IndexSource<'a> {
    store: &'a ObjectStore,
    reader: &'a super::index::IndexReader<'a>,
}

impl<'a> IndexSource<'a> {
    /// A source over one view of the index whose ids are all in the store.
    pub fn new(
        store: &'a ObjectStore,
        reader: &'a super::index::IndexReader<'a>,
    ) -> IndexSource<'a> {
        IndexSource { store, reader }
    }

    fn entry(&self, path: &str) -> Result<Option<super::index::IndexEntry>> {
        Ok(self.reader.get_many([path.as_bytes()])?.pop().flatten())
    }
}

impl FileSource for IndexSource<'_> {
    fn read_id(&self, _path: &str, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.store.get(id)?))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.entry(path)? {
            Some(e) => Ok(Some(self.store.get(&e.id)?)),
            None => Ok(None),
        }
    }
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.entry(path)?.is_some())
    }
}

/// Files of the working tree, read from disk.
pub struct WorktreeSource {
    root: PathBuf,
}

impl WorktreeSource {
    /// A source over the worktree at `root`.
    pub fn new(root: PathBuf) -> WorktreeSource {
        WorktreeSource { root }
    }
}

impl FileSource for WorktreeSource {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if path
            .split('/')
            .any(|c| c == ".dsv" || c == ".." || c.is_empty())
        {
            return Ok(None);
        }
        let p = self.root.join(path);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e).ctx("reading", &p),
        }
    }
    fn exists(&self, path: &str) -> Result<bool> {
        if path
            .split('/')
            .any(|c| c == ".dsv" || c == ".." || c.is_empty())
        {
            return Ok(false);
        }
        Ok(std::fs::symlink_metadata(self.root.join(path)).is_ok_and(|m| m.is_file()))
    }
}
