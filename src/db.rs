//! Opening redb databases read-write or read-only, with dsv's error messages.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, WriteTransaction};

use crate::error::{Error, Result};
use crate::storage::{RedbBackend, Storage};

/// A redb database opened for writing or for reading only.
pub enum Db {
    /// Read-write (the caller holds the repository lock exclusively).
    Rw(Database, PathBuf),
    /// Read-only (shared lock).
    Ro(ReadOnlyDatabase, PathBuf),
}

/// Why a read-only open failed in a way that a read-write open would fix.
pub fn needs_repair(err: &Error) -> bool {
    matches!(err, Error::Database { message, .. } if message.contains("repair") || message.contains("Repair"))
}

/// Page cache of a read-only database handle.
const READ_CACHE: usize = 32 << 20;

/// Page cache of a read-write handle (redb's default is 1 GiB). A walk over the
/// objects table of a million-frame store (gc, fetch, add) otherwise keeps every
/// page it read, hundreds of megabytes; half of this is the write buffer, beyond
/// which redb writes a large transaction's pages out before its commit.
const WRITE_CACHE: usize = 64 << 20;

/// Page cache of a read-write handle on a database that is read and written in
/// key order (the worktree index: walks, and edits sorted by path), where a page is
/// rarely wanted again once passed: a smaller cache costs no extra reads there,
/// and at a million frames each megabyte less is a byte less per frame.
pub const SEQUENTIAL_CACHE: usize = 16 << 20;

/// Page cache of a derived-data database ([`CacheDb`]): written once in bulk
/// by a cold build and then read a key at a time.
const CACHE_DB_CACHE: usize = 16 << 20;

impl Db {
    /// Opens (creating if needed) a database for writing; writes go through `storage`.
    pub fn open_rw(path: &Path, storage: Arc<dyn Storage>) -> Result<Db> {
        contain(path, || Self::open_rw_inner(path, storage, WRITE_CACHE))
    }

    /// Opens an existing database for writing; a missing or empty file is refused
    /// (redb would lay out a new, empty database, and the store would take every
    /// pack for garbage).
    pub fn open_existing_rw(path: &Path, storage: Arc<dyn Storage>) -> Result<Db> {
        require_existing(path)?;
        Self::open_rw(path, storage)
    }

    /// [`Db::open_existing_rw`] with a page cache of `cache` bytes.
    pub fn open_existing_rw_cached(
        path: &Path,
        storage: Arc<dyn Storage>,
        cache: usize,
    ) -> Result<Db> {
        require_existing(path)?;
        contain(path, || Self::open_rw_inner(path, storage, cache))
    }

    fn open_rw_inner(path: &Path, storage: Arc<dyn Storage>, cache: usize) -> Result<Db> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("opening database", path, e))?;
        let backend = RedbBackend::new(file, storage).map_err(|e| Error::db(path, e))?;
        let db = Database::builder()
            .set_cache_size(cache)
            .create_with_backend(backend)
            .map_err(|e| Error::db(path, e))?;
        Ok(Db::Rw(db, path.to_path_buf()))
    }

    /// Opens an existing database read-only.
    pub fn open_ro(path: &Path) -> Result<Db> {
        Self::open_ro_cached(path, READ_CACHE)
    }

    /// Opens an existing database read-only with a page cache of `cache` bytes.
    pub fn open_ro_cached(path: &Path, cache: usize) -> Result<Db> {
        require_existing(path)?;
        contain(path, || Self::open_ro_inner(path, cache))
    }

    fn open_ro_inner(path: &Path, cache: usize) -> Result<Db> {
        // Readers mostly scan or look up once; a small page cache lets the
        // buffers of pages already read be reused instead of each page read
        // landing in fresh memory the kernel must zero (a scan of a
        // million-object table reads hundreds of megabytes of pages).
        let db = Database::builder()
            .set_cache_size(cache)
            .open_read_only(path)
            .map_err(|e| Error::db(path, e))?;
        Ok(Db::Ro(db, path.to_path_buf()))
    }

    /// File path of the database.
    pub fn path(&self) -> &Path {
        match self {
            Db::Rw(_, p) | Db::Ro(_, p) => p,
        }
    }

    /// Whether this handle can write.
    pub fn writable(&self) -> bool {
        matches!(self, Db::Rw(..))
    }

    /// Starts a read transaction.
    pub fn read(&self) -> Result<ReadTransaction> {
        match self {
            Db::Rw(db, p) => db.begin_read().map_err(|e| Error::db(p, e)),
            Db::Ro(db, p) => db.begin_read().map_err(|e| Error::db(p, e)),
        }
    }

    /// Starts a write transaction; an error on a read-only handle.
    pub fn write(&self) -> Result<WriteTransaction> {
        match self {
            Db::Rw(db, p) => db.begin_write().map_err(|e| Error::db(p, e)),
            Db::Ro(_, p) => Err(Error::db(p, "opened read-only")),
        }
    }

    /// Maps any redb error into [`Error::Database`] naming this database.
    pub fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::db(self.path(), e)
    }

    /// Runs redb's own integrity check (every page's checksum); `Ok(false)` when
    /// it found damage it repaired. A read-only handle cannot check.
    pub fn check_integrity(&mut self) -> Result<bool> {
        let path = self.path().to_path_buf();
        match self {
            Db::Rw(db, _) => contain(&path, || {
                db.check_integrity().map_err(|e| Error::db(&path, e))
            }),
            Db::Ro(..) => Ok(true),
        }
    }

    /// Runs `f` (which reads or writes this database) with redb's panics on a
    /// damaged page turned into an error naming the file (see [`contain`]).
    pub fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        contain(self.path(), f)
    }
}

/// Refuses a database file that is missing or empty: it must be rebuilt from the
/// packs (`dsv repair`), never silently created again.
pub fn require_existing(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(()),
        Ok(_) => Err(Error::NeedsRepair {
            path: path.to_path_buf(),
            reason: "the database is empty".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NeedsRepair {
            path: path.to_path_buf(),
            reason: "the database is missing".into(),
        }),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// Runs `f`, which uses the redb database at `path`, turning a panic into
/// [`Error::NeedsRepair`] naming the file. redb trusts its pages: a damaged one
/// can reach an `unreachable!()` in its b-tree code instead of an error. The
/// CLI's panic hook keeps such a panic quiet; the error says what happened.
pub fn contain<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Error::NeedsRepair {
            path: path.to_path_buf(),
            reason: format!(
                "the database is damaged (redb cannot read a page: {})",
                panic_message(payload.as_ref()).trim_start_matches("internal error: ")
            ),
        }),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "internal error".to_string()
    }
}

/// A cache key: blake3 of the cache's version string and each part,
/// length-prefixed so that parts cannot run into each other.
pub fn cache_key(version: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(version);
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// A derived-data database under `.dsv/cache/` (statistics, query index). Never
/// an error: one that cannot be opened (another process has it, disk full) is
/// simply not used, one that does not open cleanly is rebuilt from scratch, and
/// a failed write only costs time on the next run.
pub struct CacheDb(Option<Database>);

impl CacheDb {
    /// Opens (creating) `.dsv/cache/<file>`.
    pub fn open(dsv_dir: &Path, file: &str) -> CacheDb {
        let dir = dsv_dir.join("cache");
        let path = dir.join(file);
        let create = || -> std::result::Result<Database, redb::DatabaseError> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            // redb's default page cache (1 GiB) would keep every page a
            // cold build writes: a million label files' entries resident.
            Database::builder()
                .set_cache_size(CACHE_DB_CACHE)
                .create_with_backend(RedbBackend::unsynced(file)?)
        };
        // A damaged cache can make redb panic: contained, and then rebuilt.
        let create = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(create))
                .unwrap_or(Err(redb::DatabaseError::RepairAborted))
        };
        let db = std::fs::create_dir_all(&dir)
            .ok()
            .and_then(|_| match create() {
                Ok(db) => Some(db),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => None,
                Err(_) => {
                    let _ = std::fs::remove_file(&path);
                    create().ok()
                }
            });
        CacheDb(db)
    }

    /// A cache that stores nothing.
    pub fn disabled() -> CacheDb {
        CacheDb(None)
    }

    /// `f` of the value stored under `key` in `table`, if there is one.
    pub fn with_value<T>(
        &self,
        table: redb::TableDefinition<[u8; 32], &[u8]>,
        key: &[u8; 32],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Option<T> {
        let read = || {
            let tx = self.0.as_ref()?.begin_read().ok()?;
            let t = tx.open_table(table).ok()?;
            let v = t.get(key).ok()??;
            Some(f(v.value()))
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or(None)
    }

    /// Runs `f` in one write transaction and commits it; errors are dropped.
    pub fn write(
        &self,
        f: impl FnOnce(&WriteTransaction) -> std::result::Result<(), Box<dyn std::error::Error>>,
    ) {
        let Some(db) = &self.0 else { return };
        let run = || -> std::result::Result<(), Box<dyn std::error::Error>> {
            let tx = db.begin_write()?;
            f(&tx)?;
            tx.commit()?;
            Ok(())
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    }
}
