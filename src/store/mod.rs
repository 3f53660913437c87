//! The object store: content-addressed, deduplicated, compressed, packed.
//!
//! Every object is a byte string whose id is `blake3(bytes)`. Small objects are
//! stored whole; files above [`CHUNK_THRESHOLD`] are cut with content-defined
//! chunking ([`chunk`]) and stored as a two-level concatenation list, so a small
//! edit stores only the changed chunks. Records are appended to pack files and a
//! redb table maps id -> (pack, offset, length).

mod bgio;
pub mod chunk;
pub mod pack;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::db::Db;
use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::storage::Storage;
use pack::{Codec, RecordHeader, Repr};

/// Files larger than this are split into chunks.
pub const CHUNK_THRESHOLD: u64 = 1024 * 1024;
/// Packs are closed once they reach this size.
pub const PACK_TARGET_SIZE: u64 = 64 * 1024 * 1024;
/// zstd level for payloads.
pub const ZSTD_LEVEL: i32 = 3;

/// id -> (pack number, record offset, record length including header).
pub const OBJECTS: TableDefinition<[u8; 32], (u32, u32, u32)> = TableDefinition::new("objects");
/// [`OBJECTS`] read with borrowed keys: the same table (redb gives `[u8; N]` and
/// `&[u8; N]` one type name and encoding), but a key is compared with one memcmp
/// and read without the element-by-element copy (and allocation) of `[u8; 32]`,
/// which was most of the cost of locating a million objects.
const OBJECTS_BY_REF: TableDefinition<&[u8; 32], (u32, u32, u32)> = TableDefinition::new("objects");
/// pack number -> committed length in bytes (anything after it is a torn tail).
pub const PACKS: TableDefinition<u32, u64> = TableDefinition::new("packs");
/// Ids of commit objects, for short-id lookup and history listing.
pub const COMMITS: TableDefinition<[u8; 32], ()> = TableDefinition::new("commits");
/// `.dsv/` file naming the packs a writer may have extended past their committed
/// length (see [`ObjectStore::settle_packs`] and docs/format.md).
pub const PACK_WRITES: &str = "pack-writes";
const PACK_WRITES_HEADER: &str = "dsv pack-writes 1";

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Pack number.
    pub pack: u32,
    /// Offset of the record header.
    pub offset: u32,
    /// Record length, header included.
    pub len: u32,
}

struct PackWriter {
    n: u32,
    file: Arc<File>,
    path: PathBuf,
    /// End of the space reserved so far; records are written with positioned writes
    /// outside the slot lock.
    len: u64,
    /// Offset up to which writeback has been started (see `start_writeback`).
    kicked: u64,
}

/// Bytes a pack grows by before dsv asks the kernel to start writing them out.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;
/// Largest page-cache folio (the PMD size on x86-64); see `append_record`.
const FOLIO_MAX: u64 = 2 * 1024 * 1024;

/// One pack being filled. There is one slot per worker thread: each thread
/// appends to its own pack, so writers never queue on one file's inode lock.
#[derive(Default)]
struct WriterState {
    current: Option<PackWriter>,
    /// Filled packs still to sync at the next flush (with `core.fsync = false`, where
    /// that is only a fault point; durable packs go to [`PackIo::sync`] when filled).
    to_sync: Vec<(Arc<File>, PathBuf)>,
}

/// The background threads of [`bgio`]: one starts writeback of written ranges, one
/// fsyncs filled packs. Two threads, because an fsync waits for the device's cache
/// flush (up to a second here) and writeback must keep the disk busy meanwhile.
struct PackIo {
    kick: bgio::Worker<(Arc<File>, u64, u64)>,
    sync: bgio::Worker<(Arc<File>, PathBuf)>,
}

impl PackIo {
    fn new(storage: &Arc<dyn Storage>) -> PackIo {
        let (k, s) = (storage.clone(), storage.clone());
        PackIo {
            kick: bgio::Worker::new(
                "dsv-writeback",
                move |(f, off, len): (Arc<File>, u64, u64)| {
                    k.start_writeback(&f, off, len);
                    Ok(())
                },
            ),
            sync: bgio::Worker::new("dsv-packsync", move |(f, path): (Arc<File>, PathBuf)| {
                s.sync(&f, &path)
            }),
        }
    }
}

/// Hands out pack numbers to the writer slots.
#[derive(Default)]
struct PackAlloc {
    /// Read from the database on first use.
    ready: bool,
    /// The last committed pack, if it has room to grow (given to the first slot that asks).
    reusable: Option<(u32, u64)>,
    /// The next unused pack number.
    next: u32,
}

type ObjectsTable = redb::ReadOnlyTable<&'static [u8; 32], (u32, u32, u32)>;
type ObjectsRange<'a> = redb::Range<'a, &'static [u8; 32], (u32, u32, u32)>;

/// Byte counts of what an operation stored.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    /// New records written.
    pub objects: u64,
    /// Bytes appended to packs (headers included).
    pub bytes: u64,
}

/// The repository's object store.
pub struct ObjectStore {
    packs_dir: PathBuf,
    /// `.dsv/pack-writes`.
    writes_path: PathBuf,
    /// Pack -> the committed length from which this handle may have written past
    /// (0: a pack the database does not know yet); mirrored in `writes_path`
    /// before the first byte goes past it.
    writes: Mutex<std::collections::BTreeMap<u32, u64>>,
    /// A database commit failed: whether it reached the disk is unknown, so this
    /// handle no longer knows what is committed and leaves garbage to the next
    /// opener, which reads the database afresh.
    uncertain: std::sync::atomic::AtomicBool,
    db: Db,
    storage: Arc<dyn Storage>,
    writers: Vec<Mutex<WriterState>>,
    alloc: Mutex<PackAlloc>,
    /// A read snapshot of the objects table, reused for lookups until the next flush.
    snapshot: Mutex<Option<Arc<ObjectsTable>>>,
    pending: Mutex<HashMap<ObjectId, Location>>,
    pending_commits: Mutex<Vec<ObjectId>>,
    readers: Mutex<HashMap<u32, Arc<File>>>,
    stats: Mutex<WriteStats>,
    /// Whether pack data is fsynced before it is indexed (`core.fsync`).
    fsync: std::sync::atomic::AtomicBool,
    /// Writeback and fsync of pack data off the hashing threads.
    io: PackIo,
    /// Records read so far (tests check that diffs skip unchanged subtrees).
    reads: std::sync::atomic::AtomicU64,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// Shannon entropy (bits per byte) of up to 2 KiB sampled from the start and middle.
fn sample_entropy(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    let head = &data[..data.len().min(1024)];
    let mid_start = data.len() / 2;
    let mid = &data[mid_start..data.len().min(mid_start + 1024)];
    for &b in head.iter().chain(mid) {
        counts[b as usize] += 1;
    }
    let n = (head.len() + mid.len()) as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Objects shorter than this are never compressed.
pub const SMALL_RAW: usize = 512;

fn compress(data: &[u8]) -> Option<Vec<u8>> {
    // Small objects (label files, configs) stay raw: zstd saves a few dozen bytes on
    // them, but building its tables costs more to read back than parsing the file,
    // and statistics read every label file of a dataset.
    if data.len() < SMALL_RAW {
        return None;
    }
    // Photos, compressed point clouds and random data look like noise: trying zstd on
    // them costs more than hashing. A sample's byte entropy tells us cheaply.
    if data.len() >= 1024 && sample_entropy(data) > 7.5 {
        return None;
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        let out = c.as_mut()?.compress(data).ok()?;
        // Keep compression only when it saves at least ~3%: jpg/png and random data stay raw.
        (out.len() < data.len() - data.len() / 32).then_some(out)
    })
}

impl ObjectStore {
    /// Opens the store over an opened objects database.
    pub fn open(dsv_dir: &Path, db: Db, storage: Arc<dyn Storage>) -> Result<ObjectStore> {
        // Create the tables only when missing: a write transaction costs fsyncs, and most
        // commands open the store without writing anything.
        let has_tables = db.guard(|| Ok(db.read()?.open_table(COMMITS).is_ok()))?;
        if db.writable() && !has_tables {
            let tx = db.write()?;
            {
                tx.open_table(OBJECTS).map_err(|e| db.err(e))?;
                tx.open_table(PACKS).map_err(|e| db.err(e))?;
                tx.open_table(COMMITS).map_err(|e| db.err(e))?;
            }
            tx.commit().map_err(|e| db.err(e))?;
        }
        let store = ObjectStore {
            packs_dir: dsv_dir.join("packs"),
            writes_path: dsv_dir.join(PACK_WRITES),
            writes: Mutex::new(Default::default()),
            uncertain: std::sync::atomic::AtomicBool::new(false),
            db,
            writers: (0..rayon::current_num_threads().max(1))
                .map(|_| Mutex::new(WriterState::default()))
                .collect(),
            alloc: Mutex::new(PackAlloc::default()),
            snapshot: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            pending_commits: Mutex::new(Vec::new()),
            readers: Mutex::new(HashMap::new()),
            stats: Mutex::new(WriteStats::default()),
            fsync: std::sync::atomic::AtomicBool::new(true),
            reads: std::sync::atomic::AtomicU64::new(0),
            io: PackIo::new(&storage),
            storage,
        };
        // A writer must know that every pack byte it might cut off is garbage; a
        // reader checks the same, so a database older than its packs is named
        // instead of showing up as objects "not found".
        store.settle_packs(true)?;
        Ok(store)
    }

    /// Compares the pack files with the `packs` table. A pack longer than its
    /// committed length, or one the table does not list, is garbage only if
    /// `.dsv/pack-writes` says a writer started there from exactly the length
    /// the table still records (a writer that committed would have moved the
    /// table on); such garbage is cut off or removed. Anything else means the
    /// database is older than its packs: with `strict` that is an error asking
    /// for `dsv repair` (and nothing is touched), otherwise it is left alone.
    /// The record of writes is removed once everything is settled. A read-only
    /// handle only checks.
    pub fn settle_packs(&self, strict: bool) -> Result<()> {
        let committed: std::collections::BTreeMap<u32, u64> = self.db.guard(|| {
            let tx = self.db.read()?;
            let table = match tx.open_table(PACKS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Default::default()),
                Err(e) => return Err(self.db.err(e)),
            };
            let mut out = std::collections::BTreeMap::new();
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, v) = item.map_err(|e| self.db.err(e))?;
                out.insert(k.value(), v.value());
            }
            Ok(out)
        })?;
        let marker_exists = self.writes_path.exists();
        let marker = read_pack_writes(&self.writes_path);
        let rd = match std::fs::read_dir(&self.packs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("reading", &self.packs_dir, e)),
        };
        let mut garbage: Vec<(PathBuf, u32, u64)> = Vec::new();
        let mut unsettled = false;
        for ent in rd {
            let ent = ent.ctx("reading", &self.packs_dir)?;
            let name = ent.file_name();
            let Some(n) = name.to_str().and_then(pack::parse_pack_name) else {
                continue;
            };
            let path = ent.path();
            let actual = std::fs::metadata(&path).ctx("reading", &path)?.len();
            let known = committed.get(&n).copied();
            let c = known.unwrap_or(0);
            // A pack the table knows and at least as long: nothing to do here
            // (a short one is damage that fsck reports and writers refuse).
            if known.is_some() && actual <= c {
                continue;
            }
            // Nothing past the magic: no record can be lost.
            let empty = known.is_none() && actual <= pack::PACK_MAGIC.len() as u64;
            if empty || marker.as_ref().is_some_and(|m| m.get(&n) == Some(&c)) {
                garbage.push((path, n, c));
                continue;
            }
            if strict {
                let reason = match known {
                    Some(c) => format!(
                        "the database records {c} bytes of {} but the pack has {actual}: it is older than its packs",
                        path.display()
                    ),
                    None => format!(
                        "the database does not know {} ({actual} bytes): it is older than its packs",
                        path.display()
                    ),
                };
                return Err(Error::NeedsRepair {
                    path: self.db.path().to_path_buf(),
                    reason,
                });
            }
            unsettled = true;
        }
        if !self.db.writable() {
            return Ok(());
        }
        for (path, n, c) in garbage {
            if c == 0 && !committed.contains_key(&n) {
                self.storage.remove_file(&path)?;
            } else {
                let f = self.storage.open_write(&path)?;
                self.storage.set_len(&f, &path, c)?;
            }
            self.readers.lock().map_err(poisoned)?.remove(&n);
        }
        if marker_exists && !unsettled {
            self.storage.remove_file(&self.writes_path)?;
        }
        Ok(())
    }

    /// Notes that a commit to the database failed (see `uncertain`).
    pub(crate) fn mark_uncertain(&self) {
        self.uncertain
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Records, before any byte goes past it, that pack `n` may be written from
    /// `from` (its committed length; 0 for a pack the database does not list).
    /// gc also records the packs it is about to retire, with 0.
    pub(crate) fn note_write(&self, n: u32, from: u64) -> Result<()> {
        let mut writes = self.writes.lock().map_err(poisoned)?;
        if writes.get(&n) == Some(&from) {
            return Ok(());
        }
        writes.insert(n, from);
        self.save_writes(&writes)
    }

    fn save_writes(&self, writes: &std::collections::BTreeMap<u32, u64>) -> Result<()> {
        let mut text = format!("{PACK_WRITES_HEADER}\n");
        for (n, from) in writes {
            text.push_str(&format!("{n} {from}\n"));
        }
        // Durable before the caller writes past the lengths it names: a power cut
        // may otherwise keep a pack's tail and lose its proof, and the store would
        // refuse to write until `dsv repair`. The file and the directory entry the
        // rename makes are both synced (a few per write command: one per pack
        // opened, one per commit to the database). Without `core.fsync` the packs
        // themselves are not synced, so neither is their record.
        let durable = self.fsync.load(std::sync::atomic::Ordering::Relaxed);
        let tmp = crate::storage::temp_name(&self.writes_path);
        let f = self.storage.open_write(&tmp)?;
        let res = self
            .storage
            .write_at(&f, &tmp, 0, text.as_bytes())
            .and_then(|_| match durable {
                true => self.storage.sync(&f, &tmp),
                false => Ok(()),
            })
            .and_then(|_| self.storage.rename(&tmp, &self.writes_path));
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else if durable && let Some(dir) = self.writes_path.parent() {
            crate::storage::sync_dir(dir);
        }
        res
    }

    /// Sets whether pack data is fsynced before being indexed. Without it a crash of the
    /// process still loses nothing (the data is in the page cache); a power cut may lose
    /// the last operation's packs while the index already names them (fsck reports it).
    pub fn set_fsync(&self, on: bool) {
        self.fsync.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn sync_pack(&self, file: &File, path: &Path) -> Result<()> {
        if self.fsync.load(std::sync::atomic::Ordering::Relaxed) {
            self.storage.sync(file, path)
        } else {
            self.storage.fault_point()
        }
    }

    /// Number of records read from packs since the store was opened.
    pub fn records_read(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The underlying database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Directory holding pack files.
    pub fn packs_dir(&self) -> &Path {
        &self.packs_dir
    }

    /// What this handle has written so far.
    pub fn write_stats(&self) -> WriteStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Looks up where an object is stored.
    pub fn locate(&self, id: &ObjectId) -> Result<Option<Location>> {
        if let Some(loc) = self.pending.lock().map_err(poisoned)?.get(id) {
            return Ok(Some(*loc));
        }
        let table = self.objects_snapshot()?;
        let Some(table) = table else { return Ok(None) };
        self.db.guard(|| {
            let v = table.get(&id.0).map_err(|e| self.db.err(e))?;
            Ok(v.map(|g| {
                let (pack, offset, len) = g.value();
                Location { pack, offset, len }
            }))
        })
    }

    fn objects_snapshot(&self) -> Result<Option<Arc<ObjectsTable>>> {
        let mut snap = self.snapshot.lock().map_err(poisoned)?;
        if let Some(t) = snap.as_ref() {
            return Ok(Some(t.clone()));
        }
        let table = self.db.guard(|| {
            let tx = self.db.read()?;
            match tx.open_table(OBJECTS_BY_REF) {
                Ok(t) => Ok(Some(Arc::new(t))),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(self.db.err(e)),
            }
        })?;
        let Some(table) = table else { return Ok(None) };
        *snap = Some(table.clone());
        Ok(Some(table))
    }

    fn drop_snapshot(&self) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = None;
        }
    }

    /// Whether the store holds an object.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.locate(id)?.is_some())
    }

    fn reader(&self, pack: u32, id: &ObjectId) -> Result<(Arc<File>, PathBuf)> {
        let path = pack::pack_path(&self.packs_dir, pack);
        let mut readers = self.readers.lock().map_err(poisoned)?;
        if let Some(f) = readers.get(&pack) {
            return Ok((f.clone(), path));
        }
        let f = Arc::new(File::open(&path).map_err(|source| Error::PackUnreadable {
            id: *id,
            pack: path.clone(),
            source,
        })?);
        readers.insert(pack, f.clone());
        Ok((f, path))
    }

    /// The length of an object's content as its record gives it (a raw record's
    /// header, or the sum of a concatenation's list), without reading or hashing the
    /// content: what the sizes a tree claims are checked against. `None` when the
    /// object is not stored here (a partial clone fetches it when it is read).
    pub fn content_len(&self, id: &ObjectId) -> Result<Option<u64>> {
        let Some(loc) = self.locate(id)? else {
            return Ok(None);
        };
        let (file, path) = self.reader(loc.pack, id)?;
        let mut h = [0u8; pack::RECORD_HEADER];
        if (loc.len as usize) < h.len() {
            return Err(self.corrupt(id, "record shorter than its header".into()));
        }
        std::os::unix::fs::FileExt::read_exact_at(file.as_ref(), &mut h, loc.offset as u64)
            .map_err(|source| Error::PackUnreadable {
                id: *id,
                pack: path.clone(),
                source,
            })?;
        let header = RecordHeader::decode(&h).map_err(|reason| self.corrupt(id, reason))?;
        if header.id != *id {
            return Err(self.corrupt(id, format!("record holds {}", header.id)));
        }
        match header.repr {
            Repr::Raw => Ok(Some(u64::from(header.raw_len))),
            Repr::Concat => self
                .children(id)?
                .iter()
                .try_fold(0u64, |acc, (_, len)| acc.checked_add(*len))
                .map(Some)
                .ok_or_else(|| self.corrupt(id, "concatenation lengths overflow".into())),
        }
    }

    /// Reads and decodes the record for `id` without resolving concatenations.
    pub fn read_record(&self, id: &ObjectId) -> Result<(RecordHeader, Vec<u8>)> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let loc = self.locate(id)?.ok_or(Error::MissingObject(*id))?;
        let (file, path) = self.reader(loc.pack, id)?;
        let (header, payload) = pack::read_record(&file, &path, loc.offset as u64, loc.len)
            .map_err(|e| match e {
                Error::Corrupt(reason) => Error::CorruptObject { id: *id, reason },
                Error::Io { source, .. } => Error::PackUnreadable {
                    id: *id,
                    pack: path.clone(),
                    source,
                },
                e => e,
            })?;
        if header.id != *id {
            return Err(Error::CorruptObject {
                id: *id,
                reason: format!(
                    "record at {}:{} holds {}",
                    path.display(),
                    loc.offset,
                    header.id
                ),
            });
        }
        let bytes =
            pack::decode_payload(&header, payload).map_err(|reason| self.corrupt(id, reason))?;
        Ok((header, bytes))
    }

    /// Locations of `want` (sorted ids, with their positions in `ids`) from an
    /// ordered pass over `range` of the objects table.
    fn merge_join(
        &self,
        range: std::result::Result<ObjectsRange<'_>, redb::StorageError>,
        want: &[(u64, usize)],
        ids: &[ObjectId],
    ) -> Result<Vec<(usize, Location)>> {
        let mut out = Vec::with_capacity(want.len());
        let mut next = want.iter().peekable();
        for item in range.map_err(|e| self.db.err(e))? {
            if next.peek().is_none() {
                break;
            }
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            let key: &[u8; 32] = k.value();
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&key[..8]);
            let prefix = u64::from_be_bytes(prefix);
            while let Some(&&(p, j)) = next.peek() {
                // The integer prefix settles almost every comparison; the full id
                // only breaks a tie on it.
                match p.cmp(&prefix).then_with(|| ids[j].0.cmp(key)) {
                    std::cmp::Ordering::Less => {
                        next.next();
                    }
                    std::cmp::Ordering::Equal => {
                        let (pack, offset, len) = v.value();
                        out.push((j, Location { pack, offset, len }));
                        next.next();
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
        }
        Ok(out)
    }

    /// Reads many small objects at once, each verified against its id; `out[i]` is
    /// the content of `ids[i]`. Locations come from one ordered pass over the
    /// objects table when many ids are asked for, and records lying close together
    /// in a pack are fetched with one read, so a million label files cost a few
    /// hundred large reads instead of a million lookups and syscalls.
    pub fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
        self.get_many_with(ids, |_, bytes| Ok(bytes.to_vec()))
    }

    /// [`get_many`](Self::get_many), handing each object's verified bytes to `f`
    /// (with its position in `ids`) on the reading thread: nothing is copied out
    /// of the pack reads, and `f` runs in parallel with the reading. `out[i]` is
    /// `f(i, content of ids[i])`.
    pub fn get_many_with<T, F>(&self, ids: &[ObjectId], f: F) -> Result<Vec<T>>
    where
        T: Send + Default + Clone,
        F: Fn(usize, &[u8]) -> Result<T> + Sync,
    {
        let mut t = crate::trace::Phases::start("store.get_many");
        let mut locs: Vec<Option<Location>> = vec![None; ids.len()];
        {
            let pending = self.pending.lock().map_err(poisoned)?;
            for (i, id) in ids.iter().enumerate() {
                locs[i] = pending.get(id).copied();
            }
        }
        if let Some(table) = self.objects_snapshot()? {
            self.db.guard(|| self.locate_many(&table, ids, &mut locs))?;
        }
        t.mark("locate");
        self.read_located(ids, &locs, f, t)
    }

    /// Fills the unset `locs[i]` with the locations of `ids[i]` from the objects table.
    fn locate_many(
        &self,
        table: &ObjectsTable,
        ids: &[ObjectId],
        locs: &mut [Option<Location>],
    ) -> Result<()> {
        use rayon::prelude::*;
        {
            let total = table.len().map_err(|e| self.db.err(e))?;
            if (ids.len() as u64) * 8 >= total {
                // Merge join of the sorted ids with the table's sorted keys, in two
                // key ranges at once. Sorting on the first 8 bytes as an integer
                // makes most comparisons one instruction instead of a memcmp.
                let mut order: Vec<(u64, usize)> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (id.prefix_u64(), i))
                    .collect();
                order.par_sort_unstable_by(|a, b| {
                    a.0.cmp(&b.0).then_with(|| ids[a.1].cmp(&ids[b.1]))
                });
                let mut mid = order.len() / 2;
                while mid > 0 && ids[order[mid - 1].1] == ids[order[mid].1] {
                    mid -= 1;
                }
                let (lo, hi) = order.split_at(mid);
                let (a, b) = match hi.first() {
                    Some(&(_, split)) => {
                        let split = ids[split].0;
                        rayon::join(
                            || self.merge_join(table.range::<&[u8; 32]>(..&split), lo, ids),
                            || self.merge_join(table.range::<&[u8; 32]>(&split..), hi, ids),
                        )
                    }
                    None => (Ok(Vec::new()), Ok(Vec::new())),
                };
                for (i, loc) in a?.into_iter().chain(b?) {
                    if locs[i].is_none() {
                        locs[i] = Some(loc);
                    }
                }
            } else {
                for (i, id) in ids.iter().enumerate() {
                    if locs[i].is_none()
                        && let Some(v) = table.get(&id.0).map_err(|e| self.db.err(e))?
                    {
                        let (pack, offset, len) = v.value();
                        locs[i] = Some(Location { pack, offset, len });
                    }
                }
            }
        }
        Ok(())
    }

    fn read_located<T, F>(
        &self,
        ids: &[ObjectId],
        locs: &[Option<Location>],
        f: F,
        mut t: crate::trace::Phases,
    ) -> Result<Vec<T>>
    where
        T: Send + Default + Clone,
        F: Fn(usize, &[u8]) -> Result<T> + Sync,
    {
        use rayon::prelude::*;
        // Runs of nearby records, in pack order.
        let mut by_pos: Vec<usize> = (0..ids.len()).collect();
        for (i, l) in locs.iter().enumerate() {
            if l.is_none() {
                return Err(Error::MissingObject(ids[i]));
            }
        }
        by_pos.sort_unstable_by_key(|&i| locs[i].map(|l| (l.pack, l.offset)));
        const GAP: u64 = 64 * 1024;
        const RUN: u64 = 4 * 1024 * 1024;
        let mut runs: Vec<(u32, u64, u64, Vec<usize>)> = Vec::new();
        for &i in &by_pos {
            let Some(l) = locs[i] else { continue };
            let (start, end) = (l.offset as u64, l.offset as u64 + l.len as u64);
            match runs.last_mut() {
                Some((p, s, e, members))
                    if *p == l.pack && start <= *e + GAP && end.max(*e) - *s <= RUN =>
                {
                    *e = (*e).max(end);
                    members.push(i);
                }
                _ => runs.push((l.pack, start, end, vec![i])),
            }
        }
        self.reads
            .fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
        t.mark("runs");
        type Fetched<T> = Result<Vec<(usize, T)>>;
        let results: Vec<Fetched<T>> = runs
            .par_iter()
            // One read buffer per worker, reused from run to run: a fresh one per
            // run would have the kernel zero hundreds of megabytes.
            .map_init(Vec::new, |buf, (pack_n, start, end, members)| {
                let (file, path) = self.reader(*pack_n, &ids[members[0]])?;
                buf.resize((end - start) as usize, 0);
                std::os::unix::fs::FileExt::read_exact_at(file.as_ref(), buf, *start).map_err(
                    |source| Error::PackUnreadable {
                        id: ids[members[0]],
                        pack: path.clone(),
                        source,
                    },
                )?;
                let mut out = Vec::with_capacity(members.len());
                for &i in members {
                    let id = ids[i];
                    let Some(l) = locs[i] else { continue };
                    let from = (l.offset as u64 - start) as usize;
                    let rec = buf.get(from..from + l.len as usize).ok_or_else(|| {
                        Error::CorruptObject {
                            id,
                            reason: "record outside the pack read".into(),
                        }
                    })?;
                    let header = RecordHeader::decode(rec)
                        .map_err(|reason| Error::CorruptObject { id, reason })?;
                    if header.id != id
                        || pack::RECORD_HEADER + header.stored_len as usize != rec.len()
                    {
                        return Err(Error::CorruptObject {
                            id,
                            reason: format!(
                                "record at {}:{} does not match",
                                path.display(),
                                l.offset
                            ),
                        });
                    }
                    let payload = &rec[pack::RECORD_HEADER..];
                    let owned;
                    let bytes: &[u8] = match (header.repr, header.codec) {
                        (Repr::Raw, pack::Codec::None) => payload,
                        (Repr::Raw, _) => {
                            owned = pack::decode_payload(&header, payload.to_vec())
                                .map_err(|reason| Error::CorruptObject { id, reason })?;
                            &owned
                        }
                        // Large files: the ordinary path streams their chunks.
                        (Repr::Concat, _) => {
                            owned = self.get(&id)?;
                            &owned
                        }
                    };
                    if ObjectId::hash(bytes) != id {
                        return Err(Error::CorruptObject {
                            id,
                            reason: format!(
                                "content does not match its id (record at {}:{})",
                                path.display(),
                                l.offset
                            ),
                        });
                    }
                    out.push((i, f(i, bytes)?));
                }
                Ok(out)
            })
            .collect();
        t.mark("read");
        let mut out: Vec<T> = vec![T::default(); ids.len()];
        for r in results {
            for (i, v) in r? {
                out[i] = v;
            }
        }
        t.mark("collect");
        Ok(out)
    }

    /// Reads an object's bytes whole, verifying the hash. For trees, commits and small files.
    pub fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        use rayon::prelude::*;
        let (header, bytes) = self.read_record(id)?;
        let out = match header.repr {
            Repr::Raw => bytes,
            Repr::Concat => {
                // The chunks of a large file read and decompressed in parallel
                // (an 80 MB sidecar took a third of a second on one core), then
                // the whole checked against its id, as `read_into` does.
                let children =
                    pack::decode_concat(&bytes).map_err(|reason| self.corrupt(id, reason))?;
                let parts: Vec<Vec<u8>> = children
                    .par_iter()
                    .map(|(child, len)| {
                        let (h, b) = self.read_record(child)?;
                        let b = if h.repr == Repr::Raw {
                            b
                        } else {
                            // Nested lists are rare: read the old way.
                            let mut out = Vec::new();
                            let mut hasher = blake3::Hasher::new();
                            self.read_into_inner(child, &mut out, &mut hasher, 1)?;
                            out
                        };
                        check_child_len(id, child, b.len() as u64, *len)?;
                        Ok(b)
                    })
                    .collect::<Result<_>>()?;
                parts.concat()
            }
        };
        let mut hasher = blake3::Hasher::new();
        if out.len() >= 1 << 20 {
            hasher.update_rayon(&out);
        } else {
            hasher.update(&out);
        }
        if ObjectId(*hasher.finalize().as_bytes()) != *id {
            return Err(Error::CorruptObject {
                id: *id,
                reason: self.mismatch(id),
            });
        }
        Ok(out)
    }

    /// Why `id`'s content is wrong, naming where its record is.
    fn mismatch(&self, id: &ObjectId) -> String {
        self.with_place(id, "content does not match its id".into())
    }

    /// `reason`, followed by where `id`'s record is (when it can be located).
    fn with_place(&self, id: &ObjectId, reason: String) -> String {
        match self.locate(id) {
            Ok(Some(l)) if !reason.contains(".dsvpack") => format!(
                "{reason} (record at {}:{})",
                pack::pack_path(&self.packs_dir, l.pack).display(),
                l.offset
            ),
            _ => reason,
        }
    }

    /// A corrupt-object error naming where the record is.
    fn corrupt(&self, id: &ObjectId, reason: String) -> Error {
        Error::CorruptObject {
            id: *id,
            reason: self.with_place(id, reason),
        }
    }

    /// Streams an object's bytes into `w`, verifying the hash; returns the byte count.
    pub fn read_into(&self, id: &ObjectId, w: &mut dyn Write) -> Result<u64> {
        let mut hasher = blake3::Hasher::new();
        let n = self.read_into_inner(id, w, &mut hasher, 0)?;
        if ObjectId(*hasher.finalize().as_bytes()) != *id {
            return Err(Error::CorruptObject {
                id: *id,
                reason: self.mismatch(id),
            });
        }
        Ok(n)
    }

    fn read_into_inner(
        &self,
        id: &ObjectId,
        w: &mut dyn Write,
        hasher: &mut blake3::Hasher,
        depth: u32,
    ) -> Result<u64> {
        if depth > 4 {
            return Err(Error::CorruptObject {
                id: *id,
                reason: "concatenation nested too deeply".into(),
            });
        }
        let (header, bytes) = self.read_record(id)?;
        match header.repr {
            Repr::Raw => {
                hasher.update(&bytes);
                w.write_all(&bytes)
                    .map_err(|e| Error::io("writing", "(output)", e))?;
                Ok(bytes.len() as u64)
            }
            Repr::Concat => {
                let children =
                    pack::decode_concat(&bytes).map_err(|reason| self.corrupt(id, reason))?;
                let mut total = 0;
                for (child, len) in children {
                    let n = self.read_into_inner(&child, w, hasher, depth + 1)?;
                    check_child_len(id, &child, n, len)?;
                    total += n;
                }
                Ok(total)
            }
        }
    }

    /// Ids an object directly depends on (children of a concatenation), for fsck and gc.
    pub fn children(&self, id: &ObjectId) -> Result<Vec<(ObjectId, u64)>> {
        let (header, bytes) = self.read_record(id)?;
        match header.repr {
            Repr::Raw => Ok(Vec::new()),
            Repr::Concat => pack::decode_concat(&bytes).map_err(|reason| self.corrupt(id, reason)),
        }
    }

    /// Stores bytes (if new) and returns their id.
    pub fn put(&self, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::hash(bytes);
        if !self.contains(&id)? {
            self.write_record(id, Repr::Raw, bytes)?;
        }
        Ok(id)
    }

    /// Stores a commit object and records it in the commit table.
    pub fn put_commit(&self, bytes: &[u8]) -> Result<ObjectId> {
        let id = self.put(bytes)?;
        self.pending_commits.lock().map_err(poisoned)?.push(id);
        Ok(id)
    }

    /// Stores a concatenation record under `id` (the hash of the concatenated bytes).
    pub(crate) fn put_concat(&self, id: ObjectId, children: &[(ObjectId, u64)]) -> Result<()> {
        if !self.contains(&id)? {
            self.write_record(id, Repr::Concat, &pack::encode_concat(children))?;
        }
        Ok(())
    }

    /// Stores bytes whose id the caller already computed.
    pub(crate) fn put_known(&self, id: ObjectId, bytes: &[u8]) -> Result<bool> {
        if self.contains(&id)? {
            return Ok(false);
        }
        self.write_record(id, Repr::Raw, bytes)?;
        Ok(true)
    }

    fn write_record(&self, id: ObjectId, repr: Repr, raw: &[u8]) -> Result<()> {
        let raw_len = u32::try_from(raw.len()).map_err(|_| {
            Error::Refused(format!("object {} is too large for one record", id.short()))
        })?;
        let compressed = compress(raw);
        let (codec, payload) = match &compressed {
            Some(c) => (Codec::Zstd, c.as_slice()),
            None => (Codec::None, raw),
        };
        let header = RecordHeader {
            repr,
            codec,
            id,
            stored_len: payload.len() as u32,
            raw_len,
        };
        let record_len = pack::RECORD_HEADER as u64 + payload.len() as u64;
        let mut buf = Vec::with_capacity(record_len as usize);
        buf.extend_from_slice(&header.encode());
        buf.extend_from_slice(payload);
        self.append_record(id, &buf)
    }

    /// The record of `id` exactly as stored (header and payload, still compressed),
    /// so it can be copied byte for byte into a remote pack.
    pub fn raw_record(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let loc = self.locate(id)?.ok_or(Error::MissingObject(*id))?;
        let (file, path) = self.reader(loc.pack, id)?;
        let mut buf = vec![0u8; loc.len as usize];
        std::os::unix::fs::FileExt::read_exact_at(file.as_ref(), &mut buf, loc.offset as u64)
            .ctx("reading pack", &path)?;
        match RecordHeader::decode(&buf) {
            Ok(h) if h.id == *id && pack::RECORD_HEADER + h.stored_len as usize == buf.len() => {
                Ok(buf)
            }
            _ => Err(Error::CorruptObject {
                id: *id,
                reason: format!("record at {}:{} does not match", path.display(), loc.offset),
            }),
        }
    }

    /// Stores a whole record (header and payload) received from elsewhere, byte for
    /// byte. The caller must have verified that the record's content hashes to its
    /// id (remote fetch does, before calling this); `commit` also lists it as a commit.
    /// Like every write it becomes durable at the next [`ObjectStore::flush`].
    pub fn put_verified_record(&self, record: &[u8], commit: bool) -> Result<ObjectId> {
        let header = RecordHeader::decode(record).map_err(Error::Corrupt)?;
        if pack::RECORD_HEADER + header.stored_len as usize != record.len() {
            return Err(Error::CorruptObject {
                id: header.id,
                reason: "record length does not match its header".into(),
            });
        }
        if !self.contains(&header.id)? {
            self.append_record(header.id, record)?;
        }
        if commit {
            self.pending_commits
                .lock()
                .map_err(poisoned)?
                .push(header.id);
        }
        Ok(header.id)
    }

    /// Appends one encoded record to this thread's pack.
    fn append_record(&self, id: ObjectId, buf: &[u8]) -> Result<()> {
        let record_len = buf.len() as u64;
        // Reserve space under the lock; write outside it.
        let durable = self.fsync.load(std::sync::atomic::Ordering::Relaxed);
        let (file, path, loc) = {
            let slot = rayon::current_thread_index().unwrap_or(0) % self.writers.len();
            let mut state = self.writers[slot].lock().map_err(poisoned)?;
            let mut pending = self.pending.lock().map_err(poisoned)?;
            // Another thread may have stored the same id while we compressed.
            if pending.contains_key(&id) {
                return Ok(());
            }
            if state.current.as_ref().is_some_and(|w| {
                w.len > pack::PACK_MAGIC.len() as u64 && w.len + record_len > PACK_TARGET_SIZE
            }) {
                let w = state.current.take().expect("checked above");
                if durable {
                    // Its last records were written by this slot's thread already:
                    // write the rest out and fsync it while hashing goes on.
                    self.io
                        .kick
                        .submit((w.file.clone(), w.kicked, w.len - w.kicked));
                    self.io.sync.submit((w.file, w.path));
                } else {
                    state.to_sync.push((w.file, w.path));
                }
            }
            if state.current.is_none() {
                state.current = Some(self.open_writer()?);
            }
            let w = state.current.as_mut().expect("opened above");
            // Kick only whole folios at least one folio behind the end of the space
            // handed out: `add` may run two threads per slot, so the last records
            // may still be being written, and writeback locks the folios it writes
            // (ext4 uses folios of up to 2 MiB), which would stall the thread that
            // appends to one. The fsync of the filled pack covers the rest.
            let behind = (w.len & !(FOLIO_MAX - 1)).saturating_sub(FOLIO_MAX);
            if durable && behind >= w.kicked + WRITEBACK_STEP {
                self.io
                    .kick
                    .submit((w.file.clone(), w.kicked, behind - w.kicked));
                w.kicked = behind;
            }
            let offset = u32::try_from(w.len)
                .map_err(|_| Error::Corrupt(format!("pack {} exceeds 4 GiB", w.path.display())))?;
            w.len += record_len;
            let loc = Location {
                pack: w.n,
                offset,
                len: record_len as u32,
            };
            pending.insert(id, loc);
            (w.file.clone(), w.path.clone(), loc)
        };
        if let Err(e) = self.storage.write_at(&file, &path, loc.offset as u64, buf) {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(e);
        }
        if let Ok(mut s) = self.stats.lock() {
            s.objects += 1;
            s.bytes += record_len;
        }
        Ok(())
    }

    /// Opens the pack to append to: the last one if it has room, else a new one.
    /// Torn tails were settled when the store was opened (see
    /// [`settle_packs`](Self::settle_packs)); a pack that is not exactly its
    /// committed length now is refused, never cut.
    fn open_writer(&self) -> Result<PackWriter> {
        self.storage.create_dir_all(&self.packs_dir)?;
        let (n, committed) = {
            let mut alloc = self.alloc.lock().map_err(poisoned)?;
            if !alloc.ready {
                let last = self.db.guard(|| {
                    let tx = self.db.read()?;
                    let packs = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
                    let last = packs
                        .last()
                        .map_err(|e| self.db.err(e))?
                        .map(|(k, v)| (k.value(), v.value()));
                    Ok(last)
                })?;
                alloc.next = last.map_or(1, |(n, _)| n + 1);
                alloc.reusable = last.filter(|(_, len)| *len < PACK_TARGET_SIZE / 2);
                alloc.ready = true;
            }
            match alloc.reusable.take() {
                Some(r) => r,
                None => {
                    alloc.next += 1;
                    (alloc.next - 1, 0)
                }
            }
        };
        let path = pack::pack_path(&self.packs_dir, n);
        let actual = match std::fs::metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        if actual.unwrap_or(0) != committed {
            return Err(Error::Corrupt(format!(
                "{} is {} bytes but {} records {committed}; nothing was written (run 'dsv fsck')",
                path.display(),
                actual.unwrap_or(0),
                self.db.path().display()
            )));
        }
        if committed != 0 && actual.is_none() {
            return Err(Error::Corrupt(format!(
                "{} is missing but {} records {committed} bytes of it; nothing was written (run 'dsv fsck')",
                path.display(),
                self.db.path().display()
            )));
        }
        // Recorded before the first byte goes past the committed length.
        self.note_write(n, committed)?;
        let file = self.storage.open_write(&path)?;
        let mut len = committed;
        if committed == 0 {
            self.storage.write_at(&file, &path, 0, pack::PACK_MAGIC)?;
            len = pack::PACK_MAGIC.len() as u64;
        }
        self.readers.lock().map_err(poisoned)?.remove(&n);
        Ok(PackWriter {
            n,
            file: Arc::new(file),
            path,
            len,
            kicked: len,
        })
    }

    /// Makes everything written so far durable: fsync the packs, then commit the
    /// index entries in one redb transaction. Until this returns, a crash leaves
    /// only an unreferenced pack tail.
    pub fn flush(&self) -> Result<()> {
        let mut guards = Vec::with_capacity(self.writers.len());
        for w in &self.writers {
            guards.push(w.lock().map_err(poisoned)?);
        }
        let mut pending = self.pending.lock().map_err(poisoned)?;
        let mut commits = self.pending_commits.lock().map_err(poisoned)?;
        if pending.is_empty() && commits.is_empty() {
            return Ok(());
        }
        let mut pack_lens: HashMap<u32, u64> = HashMap::new();
        let mut to_sync: Vec<(Arc<File>, PathBuf)> = Vec::new();
        for guard in guards.iter_mut() {
            to_sync.append(&mut guard.to_sync);
            if let Some(w) = guard.current.as_ref() {
                to_sync.push((w.file.clone(), w.path.clone()));
                pack_lens.insert(w.n, w.len);
            }
        }
        for loc in pending.values() {
            let end = loc.offset as u64 + loc.len as u64;
            let e = pack_lens.entry(loc.pack).or_insert(end);
            *e = (*e).max(end);
        }
        // The fsyncs wait for the disk (mostly its cache flush); building the
        // transaction is CPU work. Both run at once, and the transaction is committed
        // only after every pack it points into is durable.
        let (synced, tx) = std::thread::scope(|scope| {
            let syncing = scope.spawn(|| -> Result<()> {
                for (f, path) in &to_sync {
                    self.sync_pack(f, path)?;
                }
                // Filled packs handed to the background thread.
                self.io.sync.wait()
            });
            let tx = self
                .db
                .guard(|| self.index_transaction(&pending, &pack_lens, &commits));
            let synced = syncing
                .join()
                .unwrap_or_else(|_| Err(Error::Corrupt("pack sync thread panicked".into())));
            (synced, tx)
        });
        let tx = match (synced, tx) {
            (Ok(()), Ok(tx)) => tx,
            (Err(e), tx) => {
                if let Ok(tx) = tx {
                    let _ = tx.abort();
                }
                return Err(e);
            }
            (Ok(()), Err(e)) => return Err(e),
        };
        if let Err(e) = self.db.guard(|| tx.commit().map_err(|e| self.db.err(e))) {
            self.mark_uncertain();
            return Err(e);
        }
        pending.clear();
        commits.clear();
        self.drop_snapshot();
        // The committed lengths moved on: garbage a crash leaves now starts there.
        let mut writes = self.writes.lock().map_err(poisoned)?;
        let mut changed = false;
        for (n, len) in &pack_lens {
            if let Some(from) = writes.get_mut(n)
                && *from < *len
            {
                *from = *len;
                changed = true;
            }
        }
        if changed {
            self.save_writes(&writes)?;
        }
        Ok(())
    }

    /// A write transaction (not yet committed) recording `pending` locations, the
    /// packs' new committed lengths and the new commits.
    fn index_transaction(
        &self,
        pending: &HashMap<ObjectId, Location>,
        pack_lens: &HashMap<u32, u64>,
        commits: &[ObjectId],
    ) -> Result<redb::WriteTransaction> {
        let tx = self.db.write()?;
        {
            let mut objects = tx.open_table(OBJECTS).map_err(|e| self.db.err(e))?;
            let mut ids: Vec<_> = pending.iter().collect();
            ids.sort_unstable_by_key(|(id, _)| **id);
            for (id, loc) in ids {
                objects
                    .insert(&id.0, (loc.pack, loc.offset, loc.len))
                    .map_err(|e| self.db.err(e))?;
            }
            let mut packs = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
            for (n, len) in pack_lens {
                let old = packs
                    .get(n)
                    .map_err(|e| self.db.err(e))?
                    .map(|v| v.value())
                    .unwrap_or(0);
                packs.insert(n, old.max(*len)).map_err(|e| self.db.err(e))?;
            }
            let mut ct = tx.open_table(COMMITS).map_err(|e| self.db.err(e))?;
            for id in commits {
                ct.insert(&id.0, ()).map_err(|e| self.db.err(e))?;
            }
        }
        Ok(tx)
    }

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

    fn all_commits_inner(&self) -> Result<Vec<ObjectId>> {
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

    fn all_objects_inner(&self) -> Result<Vec<(ObjectId, Location)>> {
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

    /// Every pack number with its committed length.
    pub fn all_packs(&self) -> Result<Vec<(u32, u64)>> {
        self.db.guard(|| self.all_packs_inner())
    }

    fn all_packs_inner(&self) -> Result<Vec<(u32, u64)>> {
        let tx = self.db.read()?;
        let table = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    /// The storage used for writes.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Drops cached pack file handles (after gc replaced packs).
    pub(crate) fn forget_readers(&self) {
        if let Ok(mut r) = self.readers.lock() {
            r.clear();
        }
        self.drop_snapshot();
    }

    /// Closes the current pack writer so the next write starts a fresh pack.
    pub(crate) fn close_writer(&self) -> Result<()> {
        self.io.sync.wait()?;
        for slot in &self.writers {
            let mut guard = slot.lock().map_err(poisoned)?;
            for (f, path) in guard.to_sync.drain(..) {
                self.storage.sync(&f, &path)?;
            }
            if let Some(w) = guard.current.take() {
                self.storage.sync(&w.file, &w.path)?;
            }
        }
        // Whoever writes packs next (gc) numbers them from the database again.
        *self.alloc.lock().map_err(poisoned)? = PackAlloc::default();
        Ok(())
    }
}

impl Drop for ObjectStore {
    /// Removes what this handle wrote but never committed (after a failed write,
    /// such as a full disk), so a failed command leaves the packs as they were.
    fn drop(&mut self) {
        let wrote = self.writes.lock().map(|w| !w.is_empty()).unwrap_or(false);
        let uncertain = self.uncertain.load(std::sync::atomic::Ordering::SeqCst);
        if wrote && self.db.writable() && !uncertain {
            let _ = self.io.sync.wait();
            if let Ok(mut readers) = self.readers.lock() {
                readers.clear();
            }
            for slot in &self.writers {
                if let Ok(mut s) = slot.lock() {
                    s.current = None;
                    s.to_sync.clear();
                }
            }
            let _ = self.settle_packs(false);
        }
    }
}

/// Parses `.dsv/pack-writes`; `None` when it is missing or malformed (no proof).
fn read_pack_writes(path: &Path) -> Option<std::collections::BTreeMap<u32, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != PACK_WRITES_HEADER {
        return None;
    }
    let mut out = std::collections::BTreeMap::new();
    for line in lines {
        let (n, from) = line.split_once(' ')?;
        out.insert(n.parse().ok()?, from.parse().ok()?);
    }
    Some(out)
}

/// A poisoned mutex means a worker thread panicked; report instead of panicking again.
pub(crate) fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Corrupt("internal lock poisoned after a worker thread failed".into())
}

/// A child of concatenation `id` has the length its list gives.
fn check_child_len(id: &ObjectId, child: &ObjectId, n: u64, len: u64) -> Result<()> {
    if n == len {
        return Ok(());
    }
    Err(Error::CorruptObject {
        id: *id,
        reason: format!("child {} has {n} bytes, list says {len}", child.short()),
    })
}

#[cfg(test)]
mod tests {
    use crate::id::ObjectId;
    use crate::repo::{OpenOptions, Repository};

    #[test]
    fn a_concatenation_reads_back_whole_and_a_wrong_list_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        let store = &repo.store;
        let parts: Vec<Vec<u8>> = (0..40u8)
            .map(|i| vec![i; 50_000 + usize::from(i)])
            .collect();
        let children: Vec<(ObjectId, u64)> = parts
            .iter()
            .map(|p| (store.put(p).unwrap(), p.len() as u64))
            .collect();
        let whole = parts.concat();
        let id = ObjectId::hash(&whole);
        store.put_concat(id, &children).unwrap();
        // A list whose lengths are wrong, and one whose bytes are not its id.
        let mut short = children.clone();
        short[7].1 -= 1;
        let short_id = ObjectId::hash(b"short");
        store.put_concat(short_id, &short).unwrap();
        let mut swapped = children.clone();
        swapped.swap(3, 4);
        swapped[3].1 = children[4].1;
        swapped[4].1 = children[3].1;
        store
            .put_concat(ObjectId::hash(b"swapped"), &swapped)
            .unwrap();
        store.flush().unwrap();
        assert_eq!(store.get(&id).unwrap(), whole);
        let mut streamed = Vec::new();
        store.read_into(&id, &mut streamed).unwrap();
        assert_eq!(streamed, whole);
        let e = store.get(&short_id).unwrap_err().to_string();
        assert!(e.contains("list says"), "{e}");
        let e = store
            .get(&ObjectId::hash(b"swapped"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match its id"), "{e}");
    }

    #[test]
    fn get_many_matches_get_for_stored_pending_and_chunked_objects() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        let store = &repo.store;
        // Enough objects for the merge-join path, some compressible, one chunked.
        let mut blobs: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                format!("{i} 0.5 0.5 0.1 0.1\n")
                    .repeat(1 + (i as usize % 40))
                    .into_bytes()
            })
            .collect();
        let mut big = Vec::new();
        let mut x = 1u64;
        while big.len() < 3 * 1024 * 1024 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big.extend_from_slice(&x.to_le_bytes());
        }
        blobs.push(big.clone());
        let mut ids: Vec<ObjectId> = blobs[..150].iter().map(|b| store.put(b).unwrap()).collect();
        let big_id = store
            .put_stream(&mut big.as_slice(), std::path::Path::new("big"))
            .unwrap()
            .id;
        store.flush().unwrap();
        // The rest stay pending (not flushed) and must be found too.
        ids.extend(blobs[150..300].iter().map(|b| store.put(b).unwrap()));
        ids.push(big_id);
        ids.reverse();
        let mut want = blobs.clone();
        want.reverse();
        let got = store.get_many(&ids).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g == w, "object {i} differs");
        }
        let missing = ObjectId([7; 32]);
        assert!(store.get_many(&[ids[0], missing]).is_err());
    }
}
