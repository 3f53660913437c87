//! A bounded on-disk cache of file contents read from a remote, keyed by content
//! id: `DIR/ab/<hex id>`. Several processes may share one directory: an entry is
//! written to a temporary file and renamed into place (a reader sees a whole entry
//! or none), a hit sets the entry's modification time (the least recently used
//! entries are evicted first), and every entry is hashed again when read, so a
//! damaged or truncated entry is a miss (and removed), never returned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The cache; see the module documentation.
pub struct BlobCache {
    dir: PathBuf,
    limit: u64,
    /// Bytes in the directory at the last scan plus what this handle wrote since:
    /// other processes' writes are seen at the next scan.
    used: AtomicU64,
    /// Bytes this handle wrote since the last scan: a scan every quarter of the
    /// limit keeps several writers near the limit.
    since_scan: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evicted: AtomicU64,
}

/// What a cache handle did.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads the cache did not have.
    pub misses: u64,
    /// Entries this handle evicted.
    pub evicted: u64,
    /// Bytes in the cache as this handle last saw them.
    pub bytes: u64,
    /// The size limit.
    pub limit: u64,
}

impl BlobCache {
    /// Opens (creating) the cache directory `dir`, holding at most `limit` bytes.
    pub fn open(dir: &Path, limit: u64) -> Result<BlobCache> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir.to_path_buf(), e))?;
        let c = BlobCache {
            dir: dir.to_path_buf(),
            limit,
            used: AtomicU64::new(0),
            since_scan: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        };
        c.evict()?;
        Ok(c)
    }

    fn path(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// The content of `id` if the cache has it whole and undamaged.
    pub fn get(&self, id: &ObjectId) -> Option<Vec<u8>> {
        let path = self.path(id);
        let got = std::fs::File::open(&path).ok().and_then(|mut f| {
            use std::io::Read;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).ok()?;
            if ObjectId::hash(&buf) != *id {
                // Damaged (a disk error, a hand edit): dropped, read again from the remote.
                let _ = std::fs::remove_file(&path);
                return None;
            }
            // Recency for eviction; a failure only makes the entry look older.
            let _ = f.set_modified(SystemTime::now());
            Some(buf)
        });
        let n = if got.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        n.fetch_add(1, Ordering::Relaxed);
        got
    }

    /// Stores verified content of `id` (an entry larger than the limit is not kept).
    pub fn put(&self, id: &ObjectId, bytes: &[u8]) -> Result<()> {
        let len = bytes.len() as u64;
        if len > self.limit {
            return Ok(());
        }
        let path = self.path(id);
        if path.exists() {
            return Ok(());
        }
        let sub = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(sub).map_err(|e| Error::io("creating", sub.to_path_buf(), e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(sub)
            .map_err(|e| Error::io("creating a temporary file in", sub.to_path_buf(), e))?;
        std::io::Write::write_all(&mut tmp, bytes)
            .map_err(|e| Error::io("writing", tmp.path().to_path_buf(), e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("renaming into", path.clone(), e.error))?;
        let used = self.used.fetch_add(len, Ordering::Relaxed) + len;
        let since = self.since_scan.fetch_add(len, Ordering::Relaxed) + len;
        if used > self.limit || since > self.limit / 4 {
            self.evict()?;
        }
        Ok(())
    }

    /// Scans the directory and removes the least recently used entries until it
    /// holds at most nine tenths of the limit (or everything fits).
    fn evict(&self) -> Result<()> {
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let mut total = 0u64;
        let subs =
            std::fs::read_dir(&self.dir).map_err(|e| Error::io("reading", self.dir.clone(), e))?;
        for sub in subs.flatten() {
            let Ok(files) = std::fs::read_dir(sub.path()) else {
                continue;
            };
            for f in files.flatten() {
                // Entries another process removed meanwhile are skipped.
                let Ok(meta) = f.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                if f.file_name().to_string_lossy().starts_with(".tmp-") {
                    // Another process's entry being written: never evicted, only
                    // removed when a killed process left it an hour ago.
                    let stale = meta
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > 3600);
                    if stale {
                        let _ = std::fs::remove_file(f.path());
                    }
                    continue;
                }
                total += meta.len();
                entries.push((
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                    f.path(),
                ));
            }
        }
        if total > self.limit {
            entries.sort();
            let target = self.limit / 10 * 9;
            for (_, len, path) in entries {
                if total <= target {
                    break;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        self.evicted.fetch_add(1, Ordering::Relaxed);
                        total -= len;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                    Err(e) => return Err(Error::io("removing", path, e)),
                }
            }
        }
        self.used.store(total, Ordering::Relaxed);
        self.since_scan.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// What this handle did.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            bytes: self.used.load(Ordering::Relaxed),
            limit: self.limit,
        }
    }
}
