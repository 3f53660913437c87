//! The index: path -> (mode, size, mtime, ctime, inode, id) in redb.
//!
//! `status` trusts an entry without re-hashing only if the file's stat matches.
//! An entry recorded when its file's mtime was within [`RACY_WINDOW_NS`] of the
//! operation's start is "racy": the file could change again within the same
//! timestamp tick and keep an identical stat (git's racy-timestamp problem). Such
//! entries are stored smudged (mtime 0), so they are re-hashed until a later
//! status or add records them again once they are old enough.
//!
//! Beside the entries, every write keeps two derived tables so that `status` can
//! answer from keyed lookups instead of reading the whole index (format in
//! docs/format.md, "index.redb tables"): the smudged paths, and the tree id the
//! entries hash to, recorded by whoever computed it and dropped by every change
//! of the entries. An index last written by a dsv that did not keep them (its
//! `aux` stamp differs from `stamp`) is read whole, as before, and the tables are
//! rebuilt by the next status that can write.

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

// Declared above the index so the monitor's token bookkeeping
// (`fsmonitor::token`), which the index calls at each write, need not import it.
pub use super::IndexVersion;

/// path bytes -> encoded [`IndexEntry`].
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// "stamp" -> nanoseconds since the epoch when the index was last written.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// path bytes -> (): the entries stored smudged (`mtime_ns == 0`).
const SMUDGED: TableDefinition<&[u8], ()> = TableDefinition::new("smudged");
/// "tree" -> `generation i64, stamp i64, id [u8; 32]`: the tree id the entries hash to, valid
/// while `meta` still holds that `generation` and `stamp`.
const CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("cache");
/// Page cache of a read-only index. Its large reads are scans of the entries table
/// (`status`), which never come back to a page: a cache the size of the objects
/// database's only held them (32 MB at a million frames). The branch pages that
/// keyed lookups come back to fit many times over.
const READ_CACHE: usize = 8 << 20;
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

    /// Whether this entry's stat can be trusted against `actual` (matching and not
    /// smudged).
    pub fn is_clean(&self, actual: &StatStamp) -> bool {
        self.stat == *actual && self.stat.mtime_ns != 0
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
    /// Counts the writes that changed entries (see [`Peek::generation`]).
    pub generation: i64,
}

impl IndexState {
    /// The write of the entries this state was read at.
    pub fn version(&self) -> IndexVersion {
        IndexVersion {
            generation: self.generation,
            stamp: self.stamp,
        }
    }

    /// Whether `entry`'s stat can be trusted against `actual` (matching and not smudged).
    pub fn is_clean(&self, entry: &IndexEntry, actual: &StatStamp) -> bool {
        entry.is_clean(actual)
    }
}

/// Handle on `.dsv/index.redb`.
pub struct Index {
    db: Db,
    /// `.dsv`, where the monitor's token lives (see [`Index::carry`]).
    dsv_dir: std::path::PathBuf,
}

/// What one write of the entries saw in its transaction, for the monitor's token.
struct Written {
    /// The version before the write (`None`: the index had no stamp).
    before: Option<IndexVersion>,
    /// The version the write leaves.
    after: IndexVersion,
    /// Entries after the write.
    entries: u64,
}

/// A change to apply to the index in one transaction.
#[derive(Debug, Clone)]
pub enum IndexEdit {
    /// Insert or replace an entry.
    Set(Vec<u8>, IndexEntry),
    /// Remove an entry.
    Remove(Vec<u8>),
}

impl IndexEdit {
    /// The path and the entry it sets (`None`: removed).
    pub fn as_ref(&self) -> (&[u8], Option<IndexEntry>) {
        match self {
            IndexEdit::Set(p, e) => (p, Some(*e)),
            IndexEdit::Remove(p) => (p, None),
        }
    }
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

/// What [`Index::peek`] finds without reading the entries.
#[derive(Debug, Clone, Default)]
pub struct Peek {
    /// When the index was last written (ns since epoch).
    pub stamp: i64,
    /// Counts the writes that changed entries (0 in an index older than the counter).
    pub generation: i64,
    /// The tree id the entries hash to, if recorded for this very state.
    pub tree: Option<ObjectId>,
    /// The smudged paths, sorted; `None` when the index was last written by a dsv
    /// that did not keep them (read the whole index instead).
    pub smudged: Option<Vec<Vec<u8>>>,
}

impl Peek {
    /// The write of the entries this view is at.
    pub fn version(&self) -> IndexVersion {
        IndexVersion {
            generation: self.generation,
            stamp: self.stamp,
        }
    }
}

/// The state of the index a command read, to write the tree id its edits lead to
/// only if nothing else wrote the index in between (see [`Index::apply_recording`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Base {
    /// The generation read.
    pub generation: i64,
    /// The stamp read.
    pub stamp: i64,
    /// The tree id recorded for that very state, if any.
    pub tree: Option<ObjectId>,
}

/// The generation, stamp and recorded tree id in one read transaction's view.
fn read_base(tx: &redb::ReadTransaction) -> std::result::Result<Base, redb::Error> {
    let meta = tx.open_table(META)?;
    let stamp = meta.get("stamp")?.map(|v| v.value()).unwrap_or(0);
    let generation = meta.get("gen")?.map(|v| v.value()).unwrap_or(0);
    let mut base = Base {
        generation,
        stamp,
        tree: None,
    };
    // The tree id of an index last written by an older dsv is stale.
    if aux_kept(&meta)?
        && let Some(cache) = open_opt(tx, CACHE)?
        && let Some(v) = cache.get("tree")?
    {
        let v = v.value();
        if v.len() == 48 && v[..8] == generation.to_le_bytes() && v[8..16] == stamp.to_le_bytes() {
            let mut id = [0u8; 32];
            id.copy_from_slice(&v[16..]);
            base.tree = Some(ObjectId(id));
        }
    }
    Ok(base)
}

/// Writes `tree` as the id the entries hash to at `generation` and `stamp`.
fn put_tree(
    tx: &redb::WriteTransaction,
    generation: i64,
    stamp: i64,
    tree: ObjectId,
) -> std::result::Result<(), redb::Error> {
    let mut v = Vec::with_capacity(48);
    v.extend_from_slice(&generation.to_le_bytes());
    v.extend_from_slice(&stamp.to_le_bytes());
    v.extend_from_slice(&tree.0);
    tx.open_table(CACHE)?.insert("tree", v.as_slice())?;
    Ok(())
}

/// The derived tables of an index written by this version: `aux` == `stamp`.
fn aux_kept(
    meta: &impl ReadableTable<&'static str, i64>,
) -> std::result::Result<bool, redb::StorageError> {
    let stamp = meta.get("stamp")?.map(|v| v.value());
    let aux = meta.get("aux")?.map(|v| v.value());
    Ok(stamp.is_some() && stamp == aux)
}

/// Keeps the derived tables in step with a write of `entries` (in the same
/// transaction): records the path as smudged or not.
fn note_smudged(
    smudged: &mut redb::Table<&[u8], ()>,
    path: &[u8],
    entry: Option<&IndexEntry>,
) -> std::result::Result<(), redb::StorageError> {
    match entry {
        Some(e) if e.stat.mtime_ns == 0 => {
            smudged.insert(path, ())?;
        }
        _ => {
            smudged.remove(path)?;
        }
    }
    Ok(())
}

/// After a write that changed entries: a new generation (returned), the tree id
/// dropped, and the derived tables marked as kept at `stamp`.
fn bump(
    tx: &redb::WriteTransaction,
    stamp: i64,
    aux_was_kept: bool,
) -> std::result::Result<i64, redb::Error> {
    let mut meta = tx.open_table(META)?;
    let generation = meta.get("gen")?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert("gen", generation)?;
    meta.insert("stamp", stamp)?;
    if aux_was_kept {
        meta.insert("aux", stamp)?;
    } else {
        meta.remove("aux")?;
    }
    tx.open_table(CACHE)?.remove("tree")?;
    Ok(generation)
}

impl Index {
    /// Creates an empty index database.
    pub fn create(dsv_dir: &Path, storage: Arc<dyn Storage>) -> Result<()> {
        let db = Db::open_rw(&dsv_dir.join("index.redb"), storage)?;
        let tx = db.write()?;
        {
            tx.open_table(ENTRIES).map_err(|e| db.err(e))?;
            tx.open_table(SMUDGED).map_err(|e| db.err(e))?;
            tx.open_table(CACHE).map_err(|e| db.err(e))?;
            let mut meta = tx.open_table(META).map_err(|e| db.err(e))?;
            let stamp = now_ns();
            meta.insert("stamp", stamp).map_err(|e| db.err(e))?;
            meta.insert("aux", stamp).map_err(|e| db.err(e))?;
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
                    let mut smudged = tx.open_table(SMUDGED).map_err(|e| db.err(e))?;
                    for (p, entry) in entries {
                        table
                            .insert(p.as_slice(), entry.encode().as_slice())
                            .map_err(|e| db.err(e))?;
                        note_smudged(&mut smudged, p, Some(entry)).map_err(|e| db.err(e))?;
                    }
                    tx.open_table(CACHE).map_err(|e| db.err(e))?;
                    let mut meta = tx.open_table(META).map_err(|e| db.err(e))?;
                    meta.insert("stamp", stamp).map_err(|e| db.err(e))?;
                    meta.insert("aux", stamp).map_err(|e| db.err(e))?;
                }
                tx.commit().map_err(|e| db.err(e))
            })?;
            drop(db);
            storage.rename(&tmp, &path)?;
            crate::storage::sync_dir(dsv_dir);
            // Whatever the monitor's token was saved against is gone.
            super::fsmonitor::token::forget(dsv_dir);
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
            Db::open_existing_rw_cached(&path, storage, crate::db::SEQUENTIAL_CACHE)?
        } else {
            Db::open_ro_cached(&path, READ_CACHE)?
        };
        Ok(Index {
            db,
            dsv_dir: dsv_dir.to_path_buf(),
        })
    }

    /// Carries the monitor's saved token across a write of the entries (see
    /// [`super::fsmonitor::token::carry`]): called after every such write, so a token can
    /// never outlive a change of the entries it does not know of.
    fn carry(&self, written: &Written, changed: Option<&[Vec<u8>]>) {
        if super::fsmonitor::token::has_token(&self.dsv_dir) {
            super::fsmonitor::token::carry(
                &self.dsv_dir,
                written.before,
                written.after,
                changed,
                written.entries,
            );
        }
    }

    fn carry_edits(&self, written: &Written, edits: &[IndexEdit]) {
        if super::fsmonitor::token::has_token(&self.dsv_dir) {
            let changed: Vec<Vec<u8>> = edits
                .iter()
                .map(|e| match e {
                    IndexEdit::Set(p, _) | IndexEdit::Remove(p) => p.clone(),
                })
                .collect();
            self.carry(written, Some(&changed));
        }
    }

    /// Loads every entry.
    pub fn load(&self) -> Result<IndexState> {
        Ok(self.load_based()?.0)
    }

    /// Loads every entry, with the state they were read at: for a command that
    /// writes the index and knows the tree id it will hash to.
    pub fn load_based(&self) -> Result<(IndexState, Base)> {
        self.db.guard(|| self.load_inner())
    }

    fn load_inner(&self) -> Result<(IndexState, Base)> {
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
        let base = read_base(&tx).map_err(|e| self.db.err(e))?;
        Ok((
            IndexState {
                entries,
                stamp: base.stamp,
                generation: base.generation,
            },
            base,
        ))
    }

    /// Applies edits atomically. `stamp` is when the operation started looking at
    /// the files (see [`now_ns`]): entries modified within the racy window of it are re-hashed later.
    pub fn apply(&self, edits: &[IndexEdit], stamp: i64) -> Result<()> {
        self.apply_versioned(edits, stamp).map(drop)
    }

    /// [`Index::apply`], returning the version the write left (for a token saved
    /// against it).
    pub fn apply_versioned(&self, edits: &[IndexEdit], stamp: i64) -> Result<IndexVersion> {
        let (_, written) = self
            .db
            .guard(|| self.apply_inner(&mut edits.iter().map(IndexEdit::as_ref), stamp, None))?;
        self.carry_edits(&written, edits);
        Ok(written.after)
    }

    /// [`Index::apply_versioned`] for edits not held in one list (a first add of a
    /// large tree would hold every path twice): each item is a path with its new
    /// entry, `None` to remove it. All in one transaction, as `apply`.
    pub fn apply_each<'e>(
        &self,
        edits: impl Iterator<Item = (&'e [u8], Option<IndexEntry>)>,
        stamp: i64,
    ) -> Result<IndexVersion> {
        let token = super::fsmonitor::token::has_token(&self.dsv_dir);
        let mut paths = Vec::new();
        let mut edits = edits.inspect(|(p, _)| {
            if token {
                paths.push(p.to_vec());
            }
        });
        let (_, written) = self
            .db
            .guard(|| self.apply_inner(&mut edits, stamp, None))?;
        if token {
            self.carry(&written, Some(&paths));
        }
        Ok(written.after)
    }

    /// [`Index::apply`], recording in the same transaction `tree` as the id the entries
    /// hash to after the edits, but only if the index is still as the caller read it
    /// (`base`): the caller derived `tree` from that state and these edits. Returns
    /// whether it recorded.
    pub fn apply_recording(
        &self,
        edits: &[IndexEdit],
        stamp: i64,
        base: &Base,
        tree: ObjectId,
    ) -> Result<bool> {
        let (recorded, written) = self.db.guard(|| {
            let mut each = edits.iter().map(IndexEdit::as_ref);
            self.apply_inner(&mut each, stamp, Some((base, tree)))
        })?;
        self.carry_edits(&written, edits);
        Ok(recorded)
    }

    fn apply_inner(
        &self,
        edits: &mut dyn Iterator<Item = (&[u8], Option<IndexEntry>)>,
        stamp: i64,
        record: Option<(&Base, ObjectId)>,
    ) -> Result<(bool, Written)> {
        let tx = self.db.write()?;
        let recorded;
        let written;
        {
            let (kept, unchanged, before) = {
                let meta = tx.open_table(META).map_err(|e| self.db.err(e))?;
                let get = |k: &str| -> Result<Option<i64>> {
                    Ok(meta.get(k).map_err(|e| self.db.err(e))?.map(|v| v.value()))
                };
                let now_gen = get("gen")?.unwrap_or(0);
                let now_stamp = get("stamp")?;
                let unchanged = record
                    .is_some_and(|(b, _)| b.generation == now_gen && Some(b.stamp) == now_stamp);
                (
                    aux_kept(&meta).map_err(|e| self.db.err(e))?,
                    unchanged,
                    now_stamp.map(|stamp| IndexVersion {
                        generation: now_gen,
                        stamp,
                    }),
                )
            };
            let mut table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let mut smudged = tx.open_table(SMUDGED).map_err(|e| self.db.err(e))?;
            for (path, edit) in edits {
                match edit {
                    Some(entry) => {
                        let entry = smudge_if_racy(entry, stamp);
                        table
                            .insert(path, entry.encode().as_slice())
                            .map_err(|e| self.db.err(e))?;
                        note_smudged(&mut smudged, path, Some(&entry))
                            .map_err(|e| self.db.err(e))?;
                    }
                    None => {
                        table.remove(path).map_err(|e| self.db.err(e))?;
                        note_smudged(&mut smudged, path, None).map_err(|e| self.db.err(e))?;
                    }
                }
            }
            let entries = table.len().map_err(|e| self.db.err(e))?;
            drop((table, smudged));
            let generation = bump(&tx, stamp, kept).map_err(|e| self.db.err(e))?;
            written = Written {
                before,
                after: IndexVersion { generation, stamp },
                entries,
            };
            // Without the derived tables kept, a recorded tree id would never be read.
            recorded = kept && unchanged;
            if let Some((_, tree)) = record.filter(|_| recorded) {
                put_tree(&tx, generation, stamp, tree).map_err(|e| self.db.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db.err(e))?;
        Ok((recorded, written))
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
            // The tree id stays valid: content and mode are unchanged, only stat data.
            let mut smudged = tx.open_table(SMUDGED).map_err(|e| self.db.err(e))?;
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
                    note_smudged(&mut smudged, path, Some(&entry)).map_err(|e| self.db.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.db.err(e))
    }

    /// Replaces the whole index.
    pub fn replace_all(&self, entries: &BTreeMap<Vec<u8>, IndexEntry>, stamp: i64) -> Result<()> {
        self.replace_all_carrying(entries, stamp, None)
    }

    /// [`Index::replace_all`], recording in the same transaction `tree` as the id
    /// `entries` hash to (the caller built them from that tree).
    pub fn replace_all_recording(
        &self,
        entries: &BTreeMap<Vec<u8>, IndexEntry>,
        stamp: i64,
        tree: ObjectId,
    ) -> Result<()> {
        self.replace_all_carrying(entries, stamp, Some(tree))
    }

    fn replace_all_carrying(
        &self,
        entries: &BTreeMap<Vec<u8>, IndexEntry>,
        stamp: i64,
        tree: Option<ObjectId>,
    ) -> Result<()> {
        // Which entries change is known only by comparing with the old ones in the
        // write's transaction: worth it only when there is a token to carry.
        let diff = super::fsmonitor::token::has_token(&self.dsv_dir);
        let (written, changed) = self
            .db
            .guard(|| self.replace_all_inner(entries, stamp, tree, diff))?;
        self.carry(&written, changed.as_deref());
        Ok(())
    }

    fn replace_all_inner(
        &self,
        entries: &BTreeMap<Vec<u8>, IndexEntry>,
        stamp: i64,
        tree: Option<ObjectId>,
        diff: bool,
    ) -> Result<(Written, Option<Vec<Vec<u8>>>)> {
        let tx = self.db.write()?;
        let before = tx
            .open_table(META)
            .and_then(|m| {
                let generation = m.get("gen")?.map(|v| v.value()).unwrap_or(0);
                Ok(m.get("stamp")?.map(|v| IndexVersion {
                    generation,
                    stamp: v.value(),
                }))
            })
            .map_err(|e| self.db.err(e))?;
        let changed = if diff {
            let old = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let mut changed = Vec::new();
            let mut new = entries.iter().peekable();
            for item in old.iter().map_err(|e| self.db.err(e))? {
                let (k, v) = item.map_err(|e| self.db.err(e))?;
                let k = k.value();
                while let Some((p, _)) = new.next_if(|(p, _)| p.as_slice() < k) {
                    changed.push(p.clone());
                }
                let same = new
                    .next_if(|(p, _)| p.as_slice() == k)
                    .is_some_and(|(_, e)| smudge_if_racy(*e, stamp).encode() == v.value());
                if !same {
                    changed.push(k.to_vec());
                }
            }
            changed.extend(new.map(|(p, _)| p.clone()));
            Some(changed)
        } else {
            None
        };
        let mut written = Written {
            before,
            after: IndexVersion::default(),
            entries: entries.len() as u64,
        };
        {
            tx.delete_table(ENTRIES).map_err(|e| self.db.err(e))?;
            tx.delete_table(SMUDGED).map_err(|e| self.db.err(e))?;
            let mut table = tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let mut smudged = tx.open_table(SMUDGED).map_err(|e| self.db.err(e))?;
            for (path, entry) in entries {
                let entry = smudge_if_racy(*entry, stamp);
                table
                    .insert(path.as_slice(), entry.encode().as_slice())
                    .map_err(|e| self.db.err(e))?;
                note_smudged(&mut smudged, path, Some(&entry)).map_err(|e| self.db.err(e))?;
            }
            drop((table, smudged));
            // Every entry was written just now: the derived tables are whole again.
            let generation = bump(&tx, stamp, true).map_err(|e| self.db.err(e))?;
            written.after = IndexVersion { generation, stamp };
            if let Some(tree) = tree {
                put_tree(&tx, generation, stamp, tree).map_err(|e| self.db.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db.err(e))?;
        Ok((written, changed))
    }

    /// One consistent view of the index for several reads (a redb read transaction).
    pub fn reader(&self) -> Result<IndexReader<'_>> {
        let tx = self.db.read()?;
        Ok(IndexReader { db: &self.db, tx })
    }

    /// Records `tree` as the id the entries hash to, if the index is still at
    /// generation `generation` and `stamp` (see [`Peek`]); with `rebuild`, first rebuilds the
    /// smudged table from the entries (an index last written by an older dsv).
    /// Returns whether it recorded anything.
    pub fn record_tree(
        &self,
        generation: i64,
        stamp: i64,
        tree: ObjectId,
        rebuild: bool,
    ) -> Result<bool> {
        self.db.guard(|| {
            let tx = self.db.write()?;
            let done = (|| -> std::result::Result<bool, redb::Error> {
                let mut meta = tx.open_table(META)?;
                let now_stamp = meta.get("stamp")?.map(|v| v.value());
                let now_gen = meta.get("gen")?.map(|v| v.value()).unwrap_or(0);
                if now_stamp != Some(stamp) || now_gen != generation {
                    return Ok(false);
                }
                if !aux_kept(&meta)? {
                    if !rebuild {
                        return Ok(false);
                    }
                    tx.delete_table(SMUDGED)?;
                    let mut smudged = tx.open_table(SMUDGED)?;
                    let table = tx.open_table(ENTRIES)?;
                    for item in table.iter()? {
                        let (k, v) = item?;
                        // An undecodable entry is left to the reader that reports it.
                        if IndexEntry::decode(v.value()).is_none_or(|e| e.stat.mtime_ns == 0) {
                            smudged.insert(k.value(), ())?;
                        }
                    }
                    meta.insert("aux", stamp)?;
                }
                put_tree(&tx, generation, stamp, tree)?;
                Ok(true)
            })()
            .map_err(|e| self.db.err(e))?;
            if done {
                tx.commit().map_err(|e| self.db.err(e))?;
            } else {
                tx.abort().map_err(|e| self.db.err(e))?;
            }
            Ok(done)
        })
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

/// A consistent view of the index, for keyed lookups (see [`Index::reader`]).
pub struct IndexReader<'a> {
    db: &'a Db,
    tx: redb::ReadTransaction,
}

/// Opens a table of a read transaction; `None` when an older index lacks it.
fn open_opt<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> std::result::Result<Option<redb::ReadOnlyTable<K, V>>, redb::TableError> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl IndexReader<'_> {
    fn bad(&self, path: &[u8]) -> Error {
        Error::NeedsRepair {
            path: self.db.path().to_path_buf(),
            reason: format!("bad index entry for '{}'", String::from_utf8_lossy(path)),
        }
    }

    /// The entries of `paths` in this view (`None` where the index has none): keyed
    /// lookups, not a read of the whole index.
    pub fn get_many<P: AsRef<[u8]>>(
        &self,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Vec<Option<IndexEntry>>> {
        self.db.guard(|| {
            let table = self.tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            paths
                .into_iter()
                .map(|p| {
                    let p = p.as_ref();
                    match table.get(p).map_err(|e| self.db.err(e))? {
                        Some(v) => Ok(Some(
                            IndexEntry::decode(v.value()).ok_or_else(|| self.bad(p))?,
                        )),
                        None => Ok(None),
                    }
                })
                .collect()
        })
    }

    /// The stamp, generation, recorded tree id and smudged paths, without the entries.
    pub fn peek(&self) -> Result<Peek> {
        self.db.guard(|| {
            let err = |e: redb::Error| self.db.err(e);
            let base = read_base(&self.tx).map_err(err)?;
            let meta = self.tx.open_table(META).map_err(|e| self.db.err(e))?;
            let mut peek = Peek {
                stamp: base.stamp,
                generation: base.generation,
                tree: base.tree,
                smudged: None,
            };
            if !aux_kept(&meta).map_err(|e| self.db.err(e))? {
                return Ok(peek);
            }
            let Some(table) = open_opt(&self.tx, SMUDGED).map_err(|e| err(e.into()))? else {
                return Ok(peek);
            };
            let mut smudged = Vec::new();
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, _) = item.map_err(|e| self.db.err(e))?;
                smudged.push(k.value().to_vec());
            }
            peek.smudged = Some(smudged);
            Ok(peek)
        })
    }

    /// The state this view reads (see [`Base`]).
    pub fn base(&self) -> Result<Base> {
        self.db
            .guard(|| read_base(&self.tx).map_err(|e| self.db.err(e)))
    }

    /// Whether the index has no entries, in this view.
    pub fn is_empty(&self) -> Result<bool> {
        self.db.guard(|| {
            let table = self.tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            table.is_empty().map_err(|e| self.db.err(e))
        })
    }

    /// Every entry (as [`Index::load`], in this view).
    pub fn load(&self) -> Result<IndexState> {
        let mut entries = Vec::new();
        self.each(|p, e| {
            entries.push((p.to_vec(), *e));
            Ok(())
        })?;
        let base = self.base()?;
        Ok(IndexState {
            entries: entries.into_iter().collect(),
            stamp: base.stamp,
            generation: base.generation,
        })
    }

    /// Calls `f` with every entry in path order, straight from the table (no copy of
    /// the paths: for merging with a sorted scan).
    pub fn each(&self, mut f: impl FnMut(&[u8], &IndexEntry) -> Result<()>) -> Result<()> {
        self.db.guard(|| {
            let table = self.tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, v) = item.map_err(|e| self.db.err(e))?;
                let k = k.value();
                let e = IndexEntry::decode(v.value()).ok_or_else(|| self.bad(k))?;
                f(k, &e)?;
            }
            Ok(())
        })
    }

    /// Every entry as `status` compares it with a walk (see [`Packed`]): names, modes
    /// and stats in a few flat arrays sized once, no content ids (look the few needed
    /// up with [`IndexReader::get_many`] in this same view).
    pub fn packed(&self) -> Result<Packed> {
        self.db.guard(|| {
            let table = self.tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let len = table.len().map_err(|e| self.db.err(e))?;
            // The count comes from the file: never reserve beyond what it can hold.
            let bound =
                std::fs::metadata(self.db.path()).map_or(0, |m| m.len()) / ENCODED_LEN as u64;
            let mut packed = Packed::with_capacity(len.min(bound) as usize);
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, v) = item.map_err(|e| self.db.err(e))?;
                let k = k.value();
                let e = IndexEntry::decode(v.value()).ok_or_else(|| self.bad(k))?;
                packed.push(k, e.mode, e.stat)?;
            }
            packed.seal();
            Ok(packed)
        })
    }

    /// The entries at `paths` and below them (a path may name a directory), with the
    /// index's stamp: a few keyed lookups, not a read of the whole index.
    pub fn subset(&self, paths: &[Vec<u8>]) -> Result<IndexState> {
        let base = self.base()?;
        self.db.guard(|| {
            let table = self.tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let mut entries = BTreeMap::new();
            for p in paths {
                if let Some(v) = table.get(p.as_slice()).map_err(|e| self.db.err(e))? {
                    let e = IndexEntry::decode(v.value()).ok_or_else(|| self.bad(p))?;
                    entries.insert(p.clone(), e);
                }
                let (lo, hi) = below(p);
                for item in table
                    .range(lo.as_slice()..hi.as_slice())
                    .map_err(|e| self.db.err(e))?
                {
                    let (k, v) = item.map_err(|e| self.db.err(e))?;
                    let k = k.value();
                    let e = IndexEntry::decode(v.value()).ok_or_else(|| self.bad(k))?;
                    entries.insert(k.to_vec(), e);
                }
            }
            Ok(IndexState {
                entries,
                stamp: base.stamp,
                generation: base.generation,
            })
        })
    }

    /// Whether any tracked path lies below directory `dir`.
    pub fn has_under(&self, dir: &[u8]) -> Result<bool> {
        self.db.guard(|| {
            let table = self.tx.open_table(ENTRIES).map_err(|e| self.db.err(e))?;
            let (lo, hi) = below(dir);
            let mut range = table
                .range(lo.as_slice()..hi.as_slice())
                .map_err(|e| self.db.err(e))?;
            Ok(range
                .next()
                .transpose()
                .map_err(|e| self.db.err(e))?
                .is_some())
        })
    }
}

/// The index's entries in path order as `status` compares them with a walk: each
/// entry's file name (its last component), mode and stat, in flat arrays, and the
/// directories as runs of consecutive entries sharing one (a million-frame tree's
/// full paths and content ids would double it). 4 GiB of names or 2^32 entries at
/// most.
#[derive(Debug, Default)]
pub struct Packed {
    /// The names, end to end.
    names: Vec<u8>,
    /// Where each entry's name ends in `names`.
    ends: Vec<u32>,
    modes: Vec<EntryMode>,
    stats: Vec<StatStamp>,
    /// The runs' directory paths, end to end.
    dirs: Vec<u8>,
    /// (first entry of the run, end of its directory in `dirs`).
    runs: Vec<(u32, u32)>,
}

impl Packed {
    /// Room for `n` entries (the names grow as they come).
    fn with_capacity(n: usize) -> Packed {
        Packed {
            ends: Vec::with_capacity(n),
            modes: Vec::with_capacity(n),
            stats: Vec::with_capacity(n),
            ..Packed::default()
        }
    }

    /// Appends the entry at `path` (paths must come in order).
    fn push(&mut self, path: &[u8], mode: EntryMode, stat: StatStamp) -> Result<()> {
        let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..0], path),
        };
        let too_large = || Error::Internal("index too large to compare in memory".into());
        let i = u32::try_from(self.ends.len()).map_err(|_| too_large())?;
        if self
            .runs
            .last()
            .is_none_or(|_| self.run_dir(self.runs.len() - 1) != dir)
        {
            self.dirs.extend_from_slice(dir);
            let end = u32::try_from(self.dirs.len()).map_err(|_| too_large())?;
            self.runs.push((i, end));
        }
        self.names.extend_from_slice(name);
        self.ends
            .push(u32::try_from(self.names.len()).map_err(|_| too_large())?);
        self.modes.push(mode);
        self.stats.push(stat);
        Ok(())
    }

    /// Gives back what the growing arrays did not use.
    fn seal(&mut self) {
        self.names.shrink_to_fit();
        self.dirs.shrink_to_fit();
        self.runs.shrink_to_fit();
    }

    /// The directory of run `r`.
    fn run_dir(&self, r: usize) -> &[u8] {
        let start = if r == 0 {
            0
        } else {
            self.runs[r - 1].1 as usize
        };
        &self.dirs[start..self.runs[r].1 as usize]
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entries given in path order, packed (as [`IndexReader::packed`] reads them).
    pub fn from_sorted<'p>(
        entries: impl IntoIterator<Item = (&'p [u8], IndexEntry)>,
    ) -> Result<Packed> {
        let mut packed = Packed::default();
        for (p, e) in entries {
            packed.push(p, e.mode, e.stat)?;
        }
        packed.seal();
        Ok(packed)
    }

    /// The file name of the `i`th entry (its path's last component).
    pub fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.names[start..self.ends[i] as usize]
    }

    /// The mode and stat of the `i`th entry.
    pub fn stat(&self, i: usize) -> (EntryMode, &StatStamp) {
        (self.modes[i], &self.stats[i])
    }

    /// The full path of the `i`th entry.
    pub fn path(&self, i: usize) -> Vec<u8> {
        let r = self.runs.partition_point(|(first, _)| *first as usize <= i) - 1;
        let dir = self.run_dir(r);
        let mut path = Vec::with_capacity(dir.len() + 1 + self.name(i).len());
        path.extend_from_slice(dir);
        if !dir.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(self.name(i));
        path
    }

    /// The runs: each directory with the positions of a stretch of its entries, in
    /// path order (a directory's entries may come in several runs, split by those of
    /// its subdirectories, and are in name order when the runs are joined).
    pub fn runs(&self) -> impl Iterator<Item = (&[u8], std::ops::Range<u32>)> + '_ {
        (0..self.runs.len()).map(move |r| {
            let end = self
                .runs
                .get(r + 1)
                .map_or(self.ends.len() as u32, |(first, _)| *first);
            (self.run_dir(r), self.runs[r].0..end)
        })
    }
}

/// The key range of the paths below `dir` (`dir/` up to, not including, `dir0`).
fn below(dir: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lo = dir.to_vec();
    lo.push(b'/');
    let mut hi = dir.to_vec();
    hi.push(b'/' + 1);
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(byte: u8, mtime_ns: i64) -> IndexEntry {
        IndexEntry {
            mode: EntryMode::File,
            id: ObjectId([byte; 32]),
            stat: StatStamp {
                size: 1,
                mtime_ns,
                ctime_ns: 1,
                ino: 1,
            },
        }
    }

    /// The packed view keeps each path's name and its directory once per run: every
    /// path comes back whole, and joining a directory's runs gives its entries in name
    /// order even where a subdirectory's entries (or a name sorting before `/`) split them.
    #[test]
    fn packed_entries_come_back_whole_and_grouped_by_directory() {
        let paths: Vec<&[u8]> = vec![
            b"a", b"d/a", b"d/b", b"d/b-c/x", b"d/b/y", b"d/b/z/w", b"d/c", b"d0", b"e/f/g",
        ];
        let packed = Packed::from_sorted(
            paths
                .iter()
                .enumerate()
                .map(|(i, p)| (*p, entry(i as u8, 7 + i as i64))),
        )
        .unwrap();
        assert_eq!(packed.len(), paths.len());
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(packed.path(i), p.to_vec());
            assert_eq!(packed.name(i), p.rsplit(|b| *b == b'/').next().unwrap());
            assert_eq!(packed.stat(i).1.mtime_ns, 7 + i as i64);
        }
        let mut dirs: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for (dir, run) in packed.runs() {
            for i in run {
                dirs.entry(dir.to_vec())
                    .or_default()
                    .push(packed.name(i as usize).to_vec());
            }
        }
        let names = |v: &[&str]| v.iter().map(|n| n.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(dirs[&b""[..]], names(&["a", "d0"]));
        assert_eq!(dirs[&b"d"[..]], names(&["a", "b", "c"]));
        assert_eq!(dirs[&b"d/b"[..]], names(&["y"]));
        assert_eq!(dirs[&b"d/b-c"[..]], names(&["x"]));
        assert_eq!(dirs.len(), 6);
        for names in dirs.values() {
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        }
    }

    #[test]
    fn keyed_lookups_see_one_view_and_name_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::OsStorage);
        Index::create(dir.path(), storage.clone()).unwrap();
        let index = Index::open(dir.path(), true, storage).unwrap();
        let stamp = 1_000_000_000_000;
        let set = |p: &[u8], e| IndexEdit::Set(p.to_vec(), e);
        index
            .apply(&[set(b"a", entry(1, 5)), set(b"d/e", entry(2, 5))], stamp)
            .unwrap();
        let reader = index.reader().unwrap();
        // A write after the view was taken is not seen by it.
        index.apply(&[set(b"b", entry(3, 5))], stamp).unwrap();
        let got = reader.get_many([&b"d/e"[..], b"b", b"a", b"d"]).unwrap();
        let ids: Vec<Option<u8>> = got.iter().map(|e| e.map(|e| e.id.0[0])).collect();
        assert_eq!(ids, vec![Some(2), None, Some(1), None]);
        assert_eq!(reader.base().unwrap().generation, 1);
    }

    #[test]
    fn a_tree_id_computed_before_a_write_is_never_recorded_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::OsStorage);
        Index::create(dir.path(), storage.clone()).unwrap();
        let index = Index::open(dir.path(), true, storage).unwrap();
        let old = 1_000_000_000_000;
        let stamp = old + 10 * RACY_WINDOW_NS;
        let set = |p: &[u8], e| IndexEdit::Set(p.to_vec(), e);
        index
            .apply(
                &[set(b"a", entry(1, old)), set(b"b", entry(2, stamp))],
                stamp,
            )
            .unwrap();
        let peek = index.reader().unwrap().peek().unwrap();
        assert_eq!(peek.smudged, Some(vec![b"b".to_vec()]));
        assert_eq!(peek.tree, None);
        // A second write with the same stamp (one command, two transactions).
        index.apply(&[set(b"c", entry(3, old))], stamp).unwrap();
        let t = ObjectId([9; 32]);
        assert!(
            !index
                .record_tree(peek.generation, peek.stamp, t, false)
                .unwrap()
        );
        assert_eq!(index.reader().unwrap().peek().unwrap().tree, None);
        let now = index.reader().unwrap().peek().unwrap();
        assert!(
            index
                .record_tree(now.generation, now.stamp, t, false)
                .unwrap()
        );
        assert_eq!(index.reader().unwrap().peek().unwrap().tree, Some(t));
        // Stat data refreshed keeps it; a removal drops it and the smudged path.
        index
            .refresh(&[(b"b".to_vec(), entry(2, old))], stamp)
            .unwrap();
        let peek = index.reader().unwrap().peek().unwrap();
        assert_eq!((peek.tree, peek.smudged), (Some(t), Some(vec![])));
        index
            .apply(&[IndexEdit::Remove(b"a".to_vec())], stamp + 1)
            .unwrap();
        assert_eq!(index.reader().unwrap().peek().unwrap().tree, None);
        let sub = index
            .reader()
            .unwrap()
            .subset(&[b"b".to_vec(), b"x".to_vec()])
            .unwrap();
        assert_eq!(sub.entries.len(), 1);
    }

    #[test]
    fn a_write_records_its_tree_only_over_the_state_it_was_derived_from() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::OsStorage);
        Index::create(dir.path(), storage.clone()).unwrap();
        let index = Index::open(dir.path(), true, storage).unwrap();
        let old = 1_000_000_000_000;
        let stamp = old + 10 * RACY_WINDOW_NS;
        let set = |p: &[u8], e| IndexEdit::Set(p.to_vec(), e);
        let (t, u) = (ObjectId([7; 32]), ObjectId([8; 32]));
        let all: BTreeMap<Vec<u8>, IndexEntry> = [(b"a".to_vec(), entry(1, old))].into();
        index.replace_all_recording(&all, stamp, t).unwrap();
        let (state, base) = index.load_based().unwrap();
        assert_eq!((state.entries, base.tree), (all, Some(t)));
        // Another command writes between this one's read and its write: no record.
        index.apply(&[set(b"b", entry(2, old))], stamp).unwrap();
        assert!(
            !index
                .apply_recording(&[set(b"c", entry(3, old))], stamp, &base, u)
                .unwrap()
        );
        assert_eq!(index.reader().unwrap().peek().unwrap().tree, None);
        // Read again, the write records, and the id is the one the next reader sees.
        let (_, base) = index.load_based().unwrap();
        assert!(
            index
                .apply_recording(&[set(b"d", entry(4, old))], stamp, &base, u)
                .unwrap()
        );
        let (_, now) = index.load_based().unwrap();
        assert_eq!(now.tree, Some(u));
        assert_eq!(now.generation, base.generation + 1);
        // The stale base cannot record over the new state either.
        assert!(
            !index
                .record_tree(base.generation, base.stamp, t, true)
                .unwrap()
        );
        assert_eq!(index.reader().unwrap().base().unwrap().tree, Some(u));
    }

    proptest! {
        #[test]
        fn entry_round_trip(size in any::<u64>(), m in any::<i64>(), c in any::<i64>(), ino in any::<u64>(), id in proptest::array::uniform32(any::<u8>()), mode in 0u8..3) {
            let mode = [EntryMode::File, EntryMode::Exec, EntryMode::Symlink][mode as usize];
            let e = IndexEntry { mode, id: ObjectId(id), stat: StatStamp { size, mtime_ns: m, ctime_ns: c, ino } };
            prop_assert_eq!(IndexEntry::decode(&e.encode()), Some(e));
        }
    }
}
