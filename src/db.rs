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

impl Db {
    /// Opens (creating if needed) a database for writing; writes go through `storage`.
    pub fn open_rw(path: &Path, storage: Arc<dyn Storage>) -> Result<Db> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("opening database", path, e))?;
        let backend = RedbBackend::new(file, storage).map_err(|e| Error::db(path, e))?;
        let db = Database::builder()
            .create_with_backend(backend)
            .map_err(|e| Error::db(path, e))?;
        Ok(Db::Rw(db, path.to_path_buf()))
    }

    /// Opens an existing database read-only.
    pub fn open_ro(path: &Path) -> Result<Db> {
        let db = Database::builder()
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
}
