//! Enumerating what the store holds: commits (by prefix or all), objects and packs.

use redb::{ReadableTable, ReadableTableMetadata};

use crate::error::Result;
use crate::id::ObjectId;

use super::*;

impl ObjectStore {
    /// Commit ids whose hex starts with `prefix`.
    pub fn commits_with_prefix(&self, prefix: &str) -> Result<Vec<ObjectId>> {
        let Some((lo, hi)) = ObjectId::prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<ObjectId> = self
            .pending_commits
            .lock()
            .map_err(poisoned)?
            .iter()
            .filter(|id| **id >= lo && **id <= hi)
            .copied()
            .collect();
        self.db.guard(|| {
            let tx = self.db.read()?;
            let table = tx.open_table(COMMITS).map_err(|e| self.db.err(e))?;
            for item in table
                .range::<[u8; 32]>(lo.0..=hi.0)
                .map_err(|e| self.db.err(e))?
            {
                let (k, _) = item.map_err(|e| self.db.err(e))?;
                let id = ObjectId(k.value());
                if !out.contains(&id) {
                    out.push(id);
                }
                if out.len() > 16 {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Every commit id in the store.
    pub fn all_commits(&self) -> Result<Vec<ObjectId>> {
        self.db.guard(|| self.all_commits_inner())
    }

    pub(super) fn all_commits_inner(&self) -> Result<Vec<ObjectId>> {
        let tx = self.db.read()?;
        let table = tx.open_table(COMMITS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, _) = item.map_err(|e| self.db.err(e))?;
            out.push(ObjectId(k.value()));
        }
        Ok(out)
    }

    /// Every (id, location) in the index.
    pub fn all_objects(&self) -> Result<Vec<(ObjectId, Location)>> {
        self.db.guard(|| self.all_objects_inner())
    }

    pub(super) fn all_objects_inner(&self) -> Result<Vec<(ObjectId, Location)>> {
        let tx = self.db.read()?;
        let table = tx.open_table(OBJECTS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            let (pack, offset, len) = v.value();
            out.push((ObjectId(k.value()), Location { pack, offset, len }));
        }
        Ok(out)
    }

    /// Every object id in the index, in id order (a quarter less memory than
    /// [`Self::all_objects`] for walks that only need the ids).
    pub fn all_object_ids(&self) -> Result<Vec<ObjectId>> {
        self.db.guard(|| {
            let tx = self.db.read()?;
            let table = tx.open_table(OBJECTS).map_err(|e| self.db.err(e))?;
            let mut out = Vec::with_capacity(table.len().map_err(|e| self.db.err(e))? as usize);
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, _) = item.map_err(|e| self.db.err(e))?;
                out.push(ObjectId(k.value()));
            }
            // redb orders the keys as byte strings, as `ObjectId` orders: checked, not
            // assumed, since lookups binary-search this list.
            if !out.is_sorted() {
                out.sort_unstable();
            }
            Ok(out)
        })
    }

    /// Every pack number with its committed length.
    pub fn all_packs(&self) -> Result<Vec<(u32, u64)>> {
        self.db.guard(|| self.all_packs_inner())
    }

    pub(super) fn all_packs_inner(&self) -> Result<Vec<(u32, u64)>> {
        let tx = self.db.read()?;
        let table = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }
}

/// A set of object ids kept as one bit per object of the store's sorted id list
/// ([`ObjectStore::all_object_ids`]) instead of a hash-set entry of ~64 bytes:
/// what reachability walks (gc, fsck) mark, at a million objects and more.
/// Ids the store lacks (a missing object a tree still names) go to a hash set.
pub struct IdMarks {
    ids: Vec<ObjectId>,
    bits: Vec<u64>,
    other: std::collections::HashSet<ObjectId>,
}

impl IdMarks {
    /// An empty set over `ids` (sorted, as `all_object_ids` gives them).
    pub fn new(ids: Vec<ObjectId>) -> IdMarks {
        debug_assert!(ids.is_sorted());
        let bits = vec![0u64; ids.len().div_ceil(64)];
        IdMarks {
            ids,
            bits,
            other: Default::default(),
        }
    }

    /// The position of `id` in the store's id list, if the store holds it.
    pub fn position(&self, id: &ObjectId) -> Option<usize> {
        self.ids.binary_search(id).ok()
    }

    /// The store's ids, sorted.
    pub fn ids(&self) -> &[ObjectId] {
        &self.ids
    }

    /// Whether the object at `position` is marked.
    pub fn is_marked(&self, position: usize) -> bool {
        self.bits[position / 64] & (1 << (position % 64)) != 0
    }

    /// Adds `id`; false if it was there already.
    pub fn insert(&mut self, id: ObjectId) -> bool {
        match self.position(&id) {
            Some(i) => {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                let new = self.bits[word] & bit == 0;
                self.bits[word] |= bit;
                new
            }
            None => self.other.insert(id),
        }
    }

    /// How many stored objects are marked.
    pub fn marked(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether `id` was added.
    pub fn contains(&self, id: &ObjectId) -> bool {
        match self.position(id) {
            Some(i) => self.is_marked(i),
            None => self.other.contains(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_marks_insert_and_contains() {
        let ids: Vec<ObjectId> = (0u8..200).map(|b| ObjectId([b; 32])).collect();
        let mut m = IdMarks::new(ids);
        assert!(m.insert(ObjectId([7; 32])));
        assert!(!m.insert(ObjectId([7; 32])));
        assert!(m.contains(&ObjectId([7; 32])));
        assert!(!m.contains(&ObjectId([8; 32])));
        assert!(m.insert(ObjectId([199; 32])));
        assert!(m.is_marked(199));
        assert_eq!(m.marked(), 2);
        // Not stored: kept apart.
        assert!(m.insert(ObjectId([250; 32])));
        assert!(!m.insert(ObjectId([250; 32])));
        assert!(m.contains(&ObjectId([250; 32])));
        assert_eq!(m.position(&ObjectId([250; 32])), None);
    }
}
