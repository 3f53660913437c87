//! The index: path -> (mode, size, mtime, ctime, inode, id) in redb.
//!
//! `status` trusts an entry without re-hashing only if the file's stat matches.
//! An entry recorded when its file's mtime was within [`RACY_WINDOW_NS`] of the
//! operation's start is "racy": the file could change again within the same
//! timestamp tick and keep an identical stat (git's racy-timestamp problem). Such
//! entries are stored smudged (mtime 0), so they are re-hashed until a later
//! status or add records them again once they are old enough.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::storage::Storage;
use crate::store::chunk::StatStamp;

/// path bytes -> encoded [`IndexEntry`].
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// "stamp" -> nanoseconds since the epoch when the index was last written.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Entries whose mtime is this close to (or after) the index write are re-hashed.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;
const ENCODED_LEN: usize = 1 + 8 + 8 + 8 + 8 + 32;

/// One tracked path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// File kind.
    pub mode: EntryMode,
    /// Content id.
    pub id: ObjectId,
    /// Stat when the content was last verified (zeroed = unknown, always re-hash).
    pub stat: StatStamp,
}

impl IndexEntry {
    fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut b = [0u8; ENCODED_LEN];
        b[0] = match self.mode {
            EntryMode::File => 1,
            EntryMode::Exec => 2,
            EntryMode::Symlink => 3,
            EntryMode::Dir => 4,
        };
        b[1..9].copy_from_slice(&self.stat.size.to_le_bytes());
        b[9..17].copy_from_slice(&self.stat.mtime_ns.to_le_bytes());
        b[17..25].copy_from_slice(&self.stat.ctime_ns.to_le_bytes());
        b[25..33].copy_from_slice(&self.stat.ino.to_le_bytes());
        b[33..65].copy_from_slice(&self.id.0);
        b
    }

    fn decode(b: &[u8]) -> Option<IndexEntry> {
        if b.len() != ENCODED_LEN {
            return None;
        }
        let mode = match b[0] {
            1 => EntryMode::File,
            2 => EntryMode::Exec,
            3 => EntryMode::Symlink,
            _ => return None,
        };
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap_or([0; 8]));
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[33..65]);
        Some(IndexEntry {
            mode,
            id: ObjectId(id),
            stat: StatStamp {
                size: u(1..9),
                mtime_ns: u(9..17) as i64,
                ctime_ns: u(17..25) as i64,
                ino: u(25..33),
            },
        })
    }

    /// An entry whose stat is unknown (forces a re-hash at the next status).
    pub fn unverified(mode: EntryMode, id: ObjectId, size: u64) -> IndexEntry {
        IndexEntry {
            mode,
            id,
            stat: StatStamp {
                size,
                mtime_ns: 0,
                ctime_ns: 0,
                ino: 0,
            },
        }
    }
}

/// The index as loaded in memory.
#[derive(Debug, Clone, Default)]
pub struct IndexState {
    /// Tracked paths, sorted.
    pub entries: BTreeMap<Vec<u8>, IndexEntry>,
    /// When the index was last written (ns since epoch).
    pub stamp: i64,
}

impl IndexState {
    /// Whether `entry`'s stat can be trusted against `actual` (matching and not smudged).
    pub fn is_clean(&self, entry: &IndexEntry, actual: &StatStamp) -> bool {
        entry.stat == *actual && entry.stat.mtime_ns != 0
    }
}

/// Handle on `.dsv/index.redb`.
pub struct Index {
    db: Db,
}

/// A change to apply to the index in one transaction.
#[derive(Debug, Clone)]
pub enum IndexEdit {
    /// Insert or replace an entry.
    Set(Vec<u8>, IndexEntry),
    /// Remove an entry.
    Remove(Vec<u8>),
}

/// Clears the mtime of an entry too recent to trust (see the module docs).
fn smudge_if_racy(mut entry: IndexEntry, stamp: i64) -> IndexEntry {
    if entry.stat.mtime_ns >= stamp - RACY_WINDOW_NS {
        entry.stat.mtime_ns = 0;
    }
    entry
}

/// Wall-clock nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Index {
    /// Creates an empty index database.
    pub fn create(dsv_dir: &Path, storage: Arc<dyn Storage>) -> Result<()> {
        let db = Db::open_rw(&dsv_dir.join("index.redb"), storage)?;
        let tx = db.write()?;
        {
            tx.open_table(ENTRIES).map_err(|e| db.err(e))?;
            let mut meta = tx.open_table(META).map_err(|e| db.err(e))?;
            meta.insert("stamp", now_ns()).map_err(|e| db.err(e))?;
        }
        tx.commit().map_err(|e| db.err(e))
    }

    /// Writes a new index holding exactly `entries` (stored as given, not
    /// smudged) under a temporary name and renames it over `.dsv/index.redb`
    /// (for `dsv repair`, when the old one cannot be read).
    pub fn rebuild(
        dsv_dir: &Path,
        entries: &BTreeMap<Vec<u8>, IndexEntry>,
        stamp: i64,
        storage: Arc<dyn Storage>,
    ) -> Result<()> {
        let path = dsv_dir.join("index.redb");
        let tmp = crate::storage::temp_name(&path);
        let write = || -> Result<()> {
            let db = Db::open_rw(&tmp, storage.clone())?;
            db.guard(|| {
                let tx = db.write()?;
                {
                    let mut table = tx.open_table(ENTRIES).map_err(|e| db.err(e))?;
                    for (p, entry) in entries {
                        table
                            .insert(p.as_slice(), entry.encode().as_slice())
                            .map_err(|e| db.err(e))?;
                    }
                    let mut meta = tx.open_table(META).map_err(|e| db.err(e))?;
                    meta.insert("stamp", stamp).map_err(|e| db.err(e))?;
                }
                tx.commit().map_err(|e| db.err(e))
            })?;
            drop(db);
            storage.rename(&tmp, &path)?;
            crate::storage::sync_dir(dsv_dir);
            Ok(())
        };
        let res = write();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }

    /// Opens the index database.
    pub fn open(dsv_dir: &Path, write: bool, storage: Arc<dyn Storage>) -> Result<Index> {
        let path = dsv_dir.join("index.redb");
        let db = if write {
            Db::open_existing_rw(&path, storage)?
        } else {
            Db::open_ro(&path)?
        };
        Ok(Index { db })
    }

    /// Loads every entry.
    pub fn load(&self) -> Result<IndexState> {
        self.db.guard(|| self.load_inner())
    }

    fn load_inner(&self) -> Result<IndexState> {
        let tx = self.db.read()?;
        let table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
        // redb yields keys in order: collect, then build the map in one bulk pass
        // instead of 100k ordered inserts.
        let mut sorted = Vec::with_capacity(table.len().map_err(|e| self.db.err(e))? as usize);
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            let entry = IndexEntry::decode(v.value()).ok_or_else(|| Error::NeedsRepair {
                path: self.db.path().to_path_buf(),
                reason: format!(
                    "bad index entry for '{}'",
                    String::from_utf8_lossy(k.value())
                ),
            })?;
            sorted.push((k.value().to_vec(), entry));
        }
        let entries: BTreeMap<Vec<u8>, IndexEntry> = sorted.into_iter().collect();
        let meta = tx.open_table(META).map_err(|e| self.db.err(e))?;
        let stamp = meta
            .get("stamp")
            .map_err(|e| self.db.err(e))?
            .map(|v| v.value())
            .unwrap_or(0);
        Ok(IndexState { entries, stamp })
    }

    /// Applies edits atomically. `stamp` is when the operation started looking at
    /// the files (see [`now_ns`]): entries modified within the racy window of it are re-hashed later.
    pub fn apply(&self, edits: &[IndexEdit], stamp: i64) -> Result<()> {
        self.db.guard(|| self.apply_inner(edits, stamp))
    }

    fn apply_inner(&self, edits: &[IndexEdit], stamp: i64) -> Result<()> {
        let tx = self.db.write()?;
        {
            let mut table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            for edit in edits {
                match edit {
                    IndexEdit::Set(path, entry) => {
                        let entry = smudge_if_racy(*entry, stamp);
                        table
                            .insert(path.as_slice(), entry.encode().as_slice())
                            .map_err(|e| self.db.err(e))?;
                    }
                    IndexEdit::Remove(path) => {
                        table.remove(path.as_slice()).map_err(|e| self.db.err(e))?;
                    }
                }
            }
            let mut meta = tx.open_table(META).map_err(|e| self.db.err(e))?;
            meta.insert("stamp", stamp).map_err(|e| self.db.err(e))?;
        }
        tx.commit().map_err(|e| self.db.err(e))
    }

    /// Records fresh stat data for clean files, but only where the entry still names the
    /// same content: another command may have changed the index since the caller read it.
    pub fn refresh(&self, entries: &[(Vec<u8>, IndexEntry)], stamp: i64) -> Result<()> {
        self.db.guard(|| self.refresh_inner(entries, stamp))
    }

    fn refresh_inner(&self, entries: &[(Vec<u8>, IndexEntry)], stamp: i64) -> Result<()> {
        let tx = self.db.write()?;
        {
            let mut table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            for (path, entry) in entries {
                let current = table
                    .get(path.as_slice())
                    .map_err(|e| self.db.err(e))?
                    .and_then(|v| IndexEntry::decode(v.value()));
                if current.is_some_and(|c| c.id == entry.id && c.mode == entry.mode) {
                    let entry = smudge_if_racy(*entry, stamp);
                    table
                        .insert(path.as_slice(), entry.encode().as_slice())
                        .map_err(|e| self.db.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.db.err(e))
    }

    /// Replaces the whole index.
    pub fn replace_all(&self, entries: &BTreeMap<Vec<u8>, IndexEntry>, stamp: i64) -> Result<()> {
        self.db.guard(|| self.replace_all_inner(entries, stamp))
    }

    fn replace_all_inner(&self, entries: &BTreeMap<Vec<u8>, IndexEntry>, stamp: i64) -> Result<()> {
        let tx = self.db.write()?;
        {
            tx.delete_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let mut table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            for (path, entry) in entries {
                let entry = smudge_if_racy(*entry, stamp);
                table
                    .insert(path.as_slice(), entry.encode().as_slice())
                    .map_err(|e| self.db.err(e))?;
            }
            let mut meta = tx.open_table(META).map_err(|e| self.db.err(e))?;
            meta.insert("stamp", stamp).map_err(|e| self.db.err(e))?;
        }
        tx.commit().map_err(|e| self.db.err(e))
    }

    /// Whether the index can be written.
    pub fn writable(&self) -> bool {
        self.db.writable()
    }

    /// Calls `f` with every entry in path order, one at a time: for walks over a
    /// large index (fsck, gc) that would otherwise hold all of it in memory.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &IndexEntry) -> Result<()>) -> Result<()> {
        self.db.guard(|| {
            let tx = self.db.read()?;
            let table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, v) = item.map_err(|e| self.db.err(e))?;
                let entry =
                    IndexEntry::decode(v.value()).ok_or_else(|| self.bad_entry(k.value()))?;
                f(k.value(), &entry)?;
            }
            Ok(())
        })
    }

    /// The entry of one path, if the index has it.
    pub fn get(&self, path: &[u8]) -> Result<Option<IndexEntry>> {
        self.db.guard(|| {
            let tx = self.db.read()?;
            let table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let Some(v) = table.get(path).map_err(|e| self.db.err(e))? else {
                return Ok(None);
            };
            let entry = IndexEntry::decode(v.value()).ok_or_else(|| self.bad_entry(path))?;
            Ok(Some(entry))
        })
    }

    fn bad_entry(&self, path: &[u8]) -> Error {
        Error::NeedsRepair {
            path: self.db.path().to_path_buf(),
            reason: format!("bad index entry for '{}'", String::from_utf8_lossy(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn entry_round_trip(size in any::<u64>(), m in any::<i64>(), c in any::<i64>(), ino in any::<u64>(), id in proptest::array::uniform32(any::<u8>()), mode in 0u8..3) {
            let mode = [EntryMode::File, EntryMode::Exec, EntryMode::Symlink][mode as usize];
            let e = IndexEntry { mode, id: ObjectId(id), stat: StatStamp { size, mtime_ns: m, ctime_ns: c, ino } };
            prop_assert_eq!(IndexEntry::decode(&e.encode()), Some(e));
        }
    }
}
