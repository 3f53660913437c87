//! The cache of parsed label files behind index builds: one pack file under
//! `.dsv/cache/query-labels/`, holding per group of label files (a directory,
//! or a bucket of a large one) the bytes the build module encodes, found by
//! the group's key.
//!
//! A pack is written whole by the build that parsed anything, streamed from
//! the parses it already holds (no second copy in memory and no database
//! pages: the redb file this replaces cost a cold query of a million label
//! files about a second), and replaces the packs before it. Like every cache
//! it is not fsynced: each group carries a blake3 hash, checked when the
//! group is used, and the table has one too, so a pack torn by a power loss
//! is simply not used. Format: docs/format.md.

use std::io::Write;
use std::path::{Path, PathBuf};

/// First and last bytes of a pack; the digit is the format version.
const MAGIC: &[u8; 8] = b"DSVQLP1\0";
/// A table slot: key, start, length, hash.
const SLOT: usize = 32 + 8 + 8 + 32;
/// Table start, slot count, table hash, magic.
const TRAILER: usize = 8 + 8 + 32 + 8;
const SUFFIX: &str = ".pack";

/// Where the packs of a repository live (nothing when disabled).
pub struct ParseCache {
    dir: Option<PathBuf>,
}

/// One group's place in a pack.
struct Slot {
    key: [u8; 32],
    start: usize,
    len: usize,
    hash: [u8; 32],
}

/// A pack opened for reading.
pub struct Pack {
    map: memmap2::Mmap,
    table: Vec<Slot>,
}

impl ParseCache {
    /// The cache of the repository whose `.dsv` directory is given.
    pub fn open(dsv_dir: &Path) -> ParseCache {
        ParseCache::open_named(dsv_dir, "query-labels")
    }

    /// A cache of the same form in `.dsv/cache/<name>/` (the sidecar's rows use one).
    pub fn open_named(dsv_dir: &Path, name: &str) -> ParseCache {
        ParseCache {
            dir: Some(dsv_dir.join("cache").join(name)),
        }
    }

    /// A cache that holds nothing and stores nothing.
    pub fn disabled() -> ParseCache {
        ParseCache { dir: None }
    }

    /// The packs present, oldest first (names sort by the time they were written).
    fn packs(&self) -> Vec<PathBuf> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(SUFFIX)))
            .collect();
        out.sort();
        out
    }

    /// The newest pack, if there is one whose table checks out.
    pub fn load(&self) -> Option<Pack> {
        let path = self.packs().pop()?;
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: packs are written under a temporary name and renamed into
        // place, never changed afterwards; removing one leaves an existing
        // mapping intact. Every read is bounds-checked and each group's hash
        // is checked before it is used.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let table = table(&map)?;
        Some(Pack { map, table })
    }

    /// Writes a pack of one group per item, `fill(item, buf)` putting its
    /// bytes into the (cleared) buffer and returning its key, then removes the
    /// older packs. Never fails: a pack that cannot be written only costs
    /// time on the next build.
    pub fn store<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        fill: impl FnMut(T, &mut Vec<u8>) -> [u8; 32],
    ) {
        let Some(dir) = &self.dir else { return };
        let _ = self.try_store(dir, items, fill);
    }

    fn try_store<T>(
        &self,
        dir: &Path,
        items: impl IntoIterator<Item = T>,
        mut fill: impl FnMut(T, &mut Vec<u8>) -> [u8; 32],
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
        w.write_all(MAGIC)?;
        let mut pos = MAGIC.len();
        let mut slots = Vec::new();
        let mut buf = Vec::new();
        for item in items {
            buf.clear();
            let key = fill(item, &mut buf);
            w.write_all(&buf)?;
            slots.push(Slot {
                key,
                start: pos,
                len: buf.len(),
                hash: *blake3::hash(&buf).as_bytes(),
            });
            pos += buf.len();
        }
        slots.sort_by_key(|s| s.key);
        let mut tail = Vec::with_capacity(slots.len() * SLOT + TRAILER);
        for s in &slots {
            tail.extend_from_slice(&s.key);
            tail.extend_from_slice(&(s.start as u64).to_le_bytes());
            tail.extend_from_slice(&(s.len as u64).to_le_bytes());
            tail.extend_from_slice(&s.hash);
        }
        let table_hash = *blake3::hash(&tail).as_bytes();
        tail.extend_from_slice(&(pos as u64).to_le_bytes());
        tail.extend_from_slice(&(slots.len() as u64).to_le_bytes());
        tail.extend_from_slice(&table_hash);
        tail.extend_from_slice(MAGIC);
        w.write_all(&tail)?;
        let tmp = w.into_inner().map_err(|e| e.into_error())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("{now:032x}-{}{SUFFIX}", std::process::id());
        let path = dir.join(&name);
        tmp.persist(&path).map_err(|e| e.error)?;
        // The packs before this one (not any a concurrent build wrote after it).
        for old in self.packs() {
            if old < path {
                let _ = std::fs::remove_file(old);
            }
        }
        // The redb file packs replaced.
        if let Some(cache) = dir.parent() {
            let _ = std::fs::remove_file(cache.join("query-labels.redb"));
        }
        Ok(())
    }
}

impl Pack {
    /// The bytes of the group with this key, if the pack has it and they are intact.
    pub fn group(&self, key: &[u8; 32]) -> Option<&[u8]> {
        let i = self.table.binary_search_by(|s| s.key.cmp(key)).ok()?;
        group_bytes(&self.map, self.table.get(i)?)
    }
}

impl Pack {
    /// Gives back the memory of a group's bytes ([`Pack::group`]) that a
    /// build does not use: checking their hash read every page of them into
    /// memory, where they stayed beside the parse of the files that replaced
    /// them (a query or export after a 190 MB COCO file changed; issue 16,
    /// item 9). They stay in the file, and are read again if looked at.
    pub fn release(&self, group: &[u8]) {
        let offset = (group.as_ptr() as usize).wrapping_sub(self.map.as_ptr() as usize);
        if group.is_empty()
            || offset
                .checked_add(group.len())
                .is_none_or(|end| end > self.map.len())
        {
            return;
        }
        // SAFETY: the map is of a file opened read-only and never changed
        // (see `load`); dropping its pages only makes a later read fetch the
        // same bytes from the file again, so no reference sees other bytes.
        // Pages shared with a neighbouring group are read back the same way.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, group.len())
        };
    }
}

fn group_bytes<'a>(bytes: &'a [u8], s: &Slot) -> Option<&'a [u8]> {
    let b = bytes.get(s.start..s.start.checked_add(s.len)?)?;
    (blake3::hash(b).as_bytes() == &s.hash).then_some(b)
}

fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(raw)).ok()
}

/// A pack's table, checked: magic at both ends, the table's hash, every group
/// inside the group area, keys strictly ascending.
fn table(b: &[u8]) -> Option<Vec<Slot>> {
    if b.len() < MAGIC.len() + TRAILER || b.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let trailer = b.len() - TRAILER;
    if b.get(b.len() - MAGIC.len()..)? != MAGIC {
        return None;
    }
    let table_start = u64_at(b, trailer)?;
    let count = u64_at(b, trailer + 8)?;
    if table_start < MAGIC.len() || count.checked_mul(SLOT)?.checked_add(table_start)? != trailer {
        return None;
    }
    let raw = b.get(table_start..trailer)?;
    if blake3::hash(raw).as_bytes() != b.get(trailer + 16..trailer + 48)? {
        return None;
    }
    let mut out: Vec<Slot> = Vec::with_capacity(count);
    for s in raw.chunks_exact(SLOT) {
        let slot = Slot {
            key: s.get(..32)?.try_into().ok()?,
            start: u64_at(s, 32)?,
            len: u64_at(s, 40)?,
            hash: s.get(48..80)?.try_into().ok()?,
        };
        let end = slot.start.checked_add(slot.len)?;
        if slot.start < MAGIC.len() || end > table_start {
            return None;
        }
        if out.last().is_some_and(|l| l.key >= slot.key) {
            return None;
        }
        out.push(slot);
    }
    Some(out)
}

/// Reads a pack's table and every group it lists (for fuzzing and tests): the
/// bytes of the intact groups, `None` if the table is malformed. Never panics,
/// whatever the bytes.
pub fn read_pack(b: &[u8]) -> Option<Vec<&[u8]>> {
    Some(table(b)?.iter().filter_map(|s| group_bytes(b, s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn packs_round_trip_replace_older_ones_and_reject_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ParseCache::open(dir.path());
        assert!(cache.load().is_none());
        let groups: Vec<(u8, Vec<u8>)> =
            vec![(7, b"seven".to_vec()), (3, vec![]), (5, vec![9; 5000])];
        cache.store(&groups, |(k, bytes), buf| {
            buf.extend_from_slice(bytes);
            key(*k)
        });
        let pack = cache.load().unwrap();
        for (k, bytes) in &groups {
            assert_eq!(pack.group(&key(*k)), Some(bytes.as_slice()));
        }
        assert_eq!(pack.group(&key(4)), None);
        // A released group (and its neighbours on its pages) reads back the same.
        let blob = pack.group(&key(5)).unwrap();
        pack.release(blob);
        pack.release(&[]);
        pack.release(b"not in the pack");
        for (k, bytes) in &groups {
            assert_eq!(pack.group(&key(*k)), Some(bytes.as_slice()));
        }
        drop(pack);

        // A second pack replaces the first.
        cache.store([()], |(), buf| {
            buf.extend_from_slice(b"new");
            key(1)
        });
        assert_eq!(cache.packs().len(), 1);
        let pack = cache.load().unwrap();
        assert_eq!(pack.group(&key(1)), Some(&b"new"[..]));
        assert_eq!(pack.group(&key(7)), None);
        drop(pack);

        // Any changed byte loses the group it falls in, or the whole table.
        let path = cache.packs().pop().unwrap();
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            let kept = read_pack(&bad).map_or(0, |g| g.len());
            assert_eq!(kept, 0, "byte {at} changed, a group still read");
        }
        for cut in 0..good.len() {
            assert!(read_pack(&good[..cut]).is_none());
        }
        assert_eq!(read_pack(&good), Some(vec![&b"new"[..]]));
    }

    proptest::proptest! {
        #[test]
        fn damaged_packs_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = read_pack(&bytes);
        }
    }
}
