//! The records written since the last flush (id -> location), kept compactly.
//!
//! A first `add` of a large tree writes two objects a frame before one flush. A
//! `HashMap<ObjectId, Location>` costs 45 bytes a bucket at up to twice as many
//! buckets as entries, and while it grows the old table and the new one (twice as
//! large) are both held: about 270 MiB at two million objects. Here the entries
//! sit in fixed-size chunks (44 bytes each, never copied as they grow) and the
//! table holds only 4-byte entry numbers, at most half full: about 60 bytes an
//! entry at worst, and no copy of the entries when the table grows.

use crate::error::{Error, Result};
use crate::id::ObjectId;

use super::Location;

/// Entries per chunk (2.9 MB of entries).
const CHUNK: usize = 1 << 16;

/// Slots of the first table.
const MIN_SLOTS: usize = 1024;

/// A map from object id to location, insertion-ordered, with removal.
#[derive(Default)]
pub(super) struct Pending {
    /// Entries in insertion order; a removed one has a location of length 0 (a
    /// record is never empty: it has a header).
    chunks: Vec<Vec<(ObjectId, Location)>>,
    /// Entries held, removed ones included.
    len: usize,
    /// Entries not removed.
    live: usize,
    /// Open addressing with linear probing: entry number + 1, 0 for a free slot.
    /// A power of two long, at most half full.
    slots: Vec<u32>,
}

impl Pending {
    fn entry(&self, n: usize) -> &(ObjectId, Location) {
        &self.chunks[n / CHUNK][n % CHUNK]
    }

    fn entry_mut(&mut self, n: usize) -> &mut (ObjectId, Location) {
        &mut self.chunks[n / CHUNK][n % CHUNK]
    }

    /// First probe for `id`: ids are blake3 hashes, so their first bytes are
    /// already uniformly spread.
    fn home(id: &ObjectId, mask: usize) -> usize {
        let mut b = [0u8; 8];
        b.copy_from_slice(&id.0[..8]);
        u64::from_le_bytes(b) as usize & mask
    }

    /// The slot holding `id`'s entry, or the free slot where it would go.
    fn probe(&self, id: &ObjectId) -> (usize, Option<usize>) {
        let mask = self.slots.len() - 1;
        let mut s = Self::home(id, mask);
        loop {
            match self.slots[s] {
                0 => return (s, None),
                n if self.entry(n as usize - 1).0 == *id => return (s, Some(n as usize - 1)),
                _ => s = (s + 1) & mask,
            }
        }
    }

    /// Where `id` was written, if it was and was not removed since.
    pub(super) fn get(&self, id: &ObjectId) -> Option<Location> {
        if self.slots.is_empty() {
            return None;
        }
        match self.probe(id) {
            (_, Some(n)) => Some(self.entry(n).1).filter(|l| l.len != 0),
            _ => None,
        }
    }

    /// Whether `id` is held.
    pub(super) fn contains_key(&self, id: &ObjectId) -> bool {
        self.get(id).is_some()
    }

    /// Records `id` at `loc` (replacing a location it had).
    pub(super) fn insert(&mut self, id: ObjectId, loc: Location) -> Result<()> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow()?;
        }
        match self.probe(&id) {
            (_, Some(n)) => {
                let e = self.entry_mut(n);
                let was_removed = e.1.len == 0;
                e.1 = loc;
                if was_removed {
                    self.live += 1;
                }
            }
            (s, None) => {
                let n = u32::try_from(self.len + 1)
                    .map_err(|_| Error::Corrupt("too many objects written at once".into()))?;
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::new());
                }
                let chunk = self.chunks.last_mut().expect("pushed above");
                if chunk.len() == chunk.capacity() && chunk.capacity() * 2 > CHUNK {
                    // Straight to the chunk's full size rather than doubling past it.
                    chunk.reserve_exact(CHUNK - chunk.len());
                }
                chunk.push((id, loc));
                self.slots[s] = n;
                self.len += 1;
                self.live += 1;
            }
        }
        Ok(())
    }

    /// Forgets `id`'s location (its write failed).
    pub(super) fn remove(&mut self, id: &ObjectId) {
        if self.slots.is_empty() {
            return;
        }
        if let (_, Some(n)) = self.probe(id) {
            let e = self.entry_mut(n);
            let was_live = e.1.len != 0;
            e.1.len = 0;
            if was_live {
                self.live -= 1;
            }
        }
    }

    fn grow(&mut self) -> Result<()> {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        if u32::try_from(size).is_err() {
            return Err(Error::Corrupt("too many objects written at once".into()));
        }
        self.slots = vec![0; size];
        let mask = size - 1;
        for n in 0..self.len {
            let mut s = Self::home(&self.entry(n).0, mask);
            while self.slots[s] != 0 {
                s = (s + 1) & mask;
            }
            self.slots[s] = n as u32 + 1;
        }
        Ok(())
    }

    /// Whether nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Entries held, in insertion order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &(ObjectId, Location)> {
        self.chunks.iter().flatten().filter(|(_, l)| l.len != 0)
    }

    /// Entries held, in id order (sorted by 4-byte entry numbers, not copied).
    pub(super) fn sorted(&self) -> impl Iterator<Item = &(ObjectId, Location)> {
        let mut order: Vec<u32> = (0..self.len as u32)
            .filter(|n| self.entry(*n as usize).1.len != 0)
            .collect();
        order.sort_unstable_by_key(|n| self.entry(*n as usize).0);
        order.into_iter().map(|n| self.entry(n as usize))
    }

    /// Drops everything, memory included.
    pub(super) fn clear(&mut self) {
        *self = Pending::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> ObjectId {
        ObjectId::hash(&i.to_le_bytes())
    }

    fn loc(i: u32) -> Location {
        Location {
            pack: i % 7,
            offset: i,
            len: 40 + i,
        }
    }

    #[test]
    fn pending_matches_a_hash_map_across_chunks_growth_and_removal() {
        let mut p = Pending::default();
        let mut m = std::collections::HashMap::new();
        assert!(p.is_empty() && p.get(&id(1)).is_none());
        p.remove(&id(1));
        let n = CHUNK as u32 + 5000;
        for i in 0..n {
            p.insert(id(i), loc(i)).unwrap();
            m.insert(id(i), loc(i));
            if i % 3 == 0 {
                p.remove(&id(i / 2));
                m.remove(&id(i / 2));
            }
        }
        // Re-inserted after removal, and replaced.
        p.insert(id(0), loc(9)).unwrap();
        m.insert(id(0), loc(9));
        for i in 0..n + 10 {
            assert_eq!(p.get(&id(i)), m.get(&id(i)).copied(), "{i}");
            assert_eq!(p.contains_key(&id(i)), m.contains_key(&id(i)));
        }
        assert_eq!(p.iter().count(), m.len());
        let sorted: Vec<_> = p.sorted().copied().collect();
        let mut want: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        want.sort_unstable_by_key(|(k, _)| *k);
        assert_eq!(sorted, want);
        p.clear();
        assert!(p.is_empty() && p.get(&id(3)).is_none() && p.iter().next().is_none());
        for i in 0..n {
            p.remove(&id(i));
        }
        assert!(p.is_empty());
    }
}
