//! The object store: content-addressed, deduplicated, compressed, packed.
//!
//! Every object is a byte string whose id is `blake3(bytes)`. Small objects are
//! stored whole; files above [`CHUNK_THRESHOLD`] are cut with content-defined
//! chunking ([`chunk`]) and stored as a two-level concatenation list, so a small
//! edit stores only the changed chunks. Records are appended to pack files and a
//! redb table maps id -> (pack, offset, length).

mod bgio;
pub mod chunk;
mod list;
pub mod pack;
mod pending;
mod read;
mod write;

pub use list::IdMarks;

use write::{PackAlloc, PackIo, WriterState};

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::TableDefinition;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::storage::Storage;

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
    pending: Mutex<pending::Pending>,
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
            pending: Mutex::new(pending::Pending::default()),
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

    /// Sets whether pack data is fsynced before being indexed. Without it a crash of the
    /// process still loses nothing (the data is in the page cache); a power cut may lose
    /// the last operation's packs while the index already names them (fsck reports it).
    pub fn set_fsync(&self, on: bool) {
        self.fsync.store(on, std::sync::atomic::Ordering::Relaxed);
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

    /// The storage used for writes.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
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

/// A poisoned mutex means a worker thread panicked; report instead of panicking again.
pub(crate) fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Corrupt("internal lock poisoned after a worker thread failed".into())
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
    fn a_file_of_segments_reads_back_whole_and_a_wrong_segment_is_an_error() {
        // A chunked file's list names segments, each listing its chunks: the
        // shape `get` appends chunk by chunk (a buffer a segment held several
        // segments of up to 1,024 chunks at once; issue 16, item 9).
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        let store = &repo.store;
        let mut segments = Vec::new();
        let mut whole = Vec::new();
        for s in 0..5u8 {
            let chunks: Vec<Vec<u8>> = (0..(3 + s))
                .map(|c| vec![s * 16 + c; 20_000 + 1000 * usize::from(c)])
                .collect();
            let list: Vec<(ObjectId, u64)> = chunks
                .iter()
                .map(|c| (store.put(c).unwrap(), c.len() as u64))
                .collect();
            let bytes = chunks.concat();
            let seg = ObjectId::hash(&bytes);
            store.put_concat(seg, &list).unwrap();
            segments.push((seg, bytes.len() as u64));
            whole.extend_from_slice(&bytes);
        }
        // One raw chunk straight in the file's list, as a segment of one chunk is.
        let tail = b"tail chunk".to_vec();
        segments.push((store.put(&tail).unwrap(), tail.len() as u64));
        whole.extend_from_slice(&tail);
        let id = ObjectId::hash(&whole);
        store.put_concat(id, &segments).unwrap();
        // A segment whose list says one byte more than its file list does.
        let mut long = segments.clone();
        long[2].1 -= 1;
        let long_id = ObjectId::hash(b"long");
        store.put_concat(long_id, &long).unwrap();
        // Lists nested five deep under a file: refused, as `read_into` does.
        let mut deep = (id, whole.len() as u64);
        for level in 0..5u8 {
            let nested = ObjectId::hash(&[b'd', level]);
            store.put_concat(nested, &[deep]).unwrap();
            deep = (nested, deep.1);
        }
        store.flush().unwrap();
        let got = store.get(&id).unwrap();
        assert_eq!(got, whole);
        let mut streamed = Vec::new();
        store.read_into(&id, &mut streamed).unwrap();
        assert_eq!(streamed, whole);
        let e = store.get(&long_id).unwrap_err().to_string();
        assert!(e.contains("list says"), "{e}");
        let e = store.get(&deep.0).unwrap_err().to_string();
        assert!(e.contains("nested too deeply"), "{e}");
        let e = store.read_into(&deep.0, &mut std::io::sink()).unwrap_err();
        assert!(e.to_string().contains("nested too deeply"), "{e}");
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
