//! From an index to trees: the Merkle directories a commit records, built from
//! the sorted paths of the index in one pass, stored or only hashed.

use std::collections::BTreeMap;

use crate::error::Result;
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
    let items: Vec<(&[u8], &IndexEntry)> = entries.iter().map(|(p, e)| (p.as_slice(), e)).collect();
    let (id, size, files) = build_dir(put, &items, 1)?;
    Ok((id, Summary { files, bytes: size }))
}

/// `items` are sorted paths relative to this directory, whose entries have
/// `depth` components.
fn build_dir(
    put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
    items: &[(&[u8], &IndexEntry)],
    depth: usize,
) -> Result<(ObjectId, u64, u64)> {
    let mut entries = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let (path, e) = items[i];
        match path.iter().position(|b| *b == b'/') {
            None => {
                entries.push(TreeEntry {
                    name: path.to_vec(),
                    mode: e.mode,
                    id: e.id,
                    size: e.stat.size,
                    files: 1,
                });
                i += 1;
            }
            Some(slash) => {
                let name = &path[..slash];
                // All paths under `name/` are contiguous in byte order.
                let mut j = i;
                let mut sub = Vec::new();
                while j < items.len()
                    && items[j].0.len() > slash
                    && items[j].0[..slash] == *name
                    && items[j].0[slash] == b'/'
                {
                    sub.push((&items[j].0[slash + 1..], items[j].1));
                    j += 1;
                }
                if depth >= crate::object::tree::MAX_DEPTH {
                    return Err(crate::object::tree::too_deep(path));
                }
                let (id, size, files) = build_dir(put, &sub, depth + 1)?;
                entries.push(TreeEntry {
                    name: name.to_vec(),
                    mode: EntryMode::Dir,
                    id,
                    size,
                    files,
                });
                i = j;
            }
        }
    }
    let tree = Tree { entries };
    let size = tree.size();
    let files = tree.files();
    Ok((tree.store_with(put)?, size, files))
}
