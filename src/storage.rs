//! The write path to disk, behind a trait so tests can inject faults.
//!
//! Every byte dsv writes (packs, databases, refs, worktree files) goes through a
//! [`Storage`]. [`OsStorage`] is the real thing; [`FaultStorage`] wraps it and fails
//! or kills the process at the N-th write, which the crash tests use to prove that
//! every operation is all-or-nothing. The CLI picks `FaultStorage` when the
//! `DSV_FAULT` environment variable is set (`kill:N` or `fail:N`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, IoContext, Result};

/// File operations dsv performs that change state on disk.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Called before each low-level write; the fault injector fails or stops here.
    fn fault_point(&self) -> Result<()> {
        Ok(())
    }
    /// Appends bytes to an open file.
    fn append(&self, file: &mut File, path: &Path, data: &[u8]) -> Result<()> {
        self.fault_point()?;
        file.write_all(data).ctx("writing", path)
    }
    /// Writes bytes at an offset of an open file (positioned write; the file must not be in append mode).
    fn write_at(&self, file: &File, path: &Path, offset: u64, data: &[u8]) -> Result<()> {
        self.fault_point()?;
        std::os::unix::fs::FileExt::write_all_at(file, data, offset).ctx("writing", path)
    }
    /// Opens a file for positioned writes, creating it if missing.
    fn open_write(&self, path: &Path) -> Result<File> {
        self.fault_point()?;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(path)
            .ctx("opening", path)
    }
    /// Flushes a file's data to stable storage.
    fn sync(&self, file: &File, path: &Path) -> Result<()> {
        self.fault_point()?;
        file.sync_data().ctx("syncing", path)
    }
    /// Asks the kernel to start writing a byte range of a file to disk without
    /// waiting. Only a hint (no durability, no fault point): it lets the disk work
    /// while dsv goes on hashing, so the `sync` at the end has little left to do.
    fn start_writeback(&self, file: &File, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
                return;
            };
            // SAFETY: the descriptor is open for the lifetime of `file`; the call only
            // schedules writeback of pages already written and touches no memory of ours.
            unsafe {
                libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (file, offset, len);
    }
    /// Replaces `path` with `data` atomically (temp file, fsync, rename).
    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = temp_name(path);
        self.fault_point()?;
        let mut f = File::create(&tmp).ctx("creating", &tmp)?;
        let res = (|| {
            self.append(&mut f, &tmp, data)?;
            self.sync(&f, &tmp)?;
            self.rename(&tmp, path)?;
            sync_dir(dir);
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
    /// Renames a file, replacing the target.
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.fault_point()?;
        fs::rename(from, to).ctx("renaming", to)
    }
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.fault_point()?;
        fs::remove_file(path).ctx("removing", path)
    }
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).ctx("creating directory", path)
    }
    /// Truncates or extends an open file to `len` bytes.
    fn set_len(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        self.fault_point()?;
        file.set_len(len).ctx("truncating", path)
    }
    /// Opens a file for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> Result<File> {
        self.fault_point()?;
        OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .ctx("opening", path)
    }
}

/// Prefix of every temporary file name dsv makes (see [`temp_name`]).
pub const TEMP_PREFIX: &str = ".dsv-tmp-";

/// A temporary sibling of `path` (same directory, so a rename replaces `path`
/// atomically), unique per process and call: `.dsv-tmp-PID-N`. The name is not
/// derived from `path`'s own name, so a file name of the full 255 bytes still
/// has a temp name that fits.
pub fn temp_name(path: &Path) -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!("{TEMP_PREFIX}{}-{n}", std::process::id()))
}

/// Best-effort fsync of a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The real filesystem.
#[derive(Debug, Default)]
pub struct OsStorage;

impl Storage for OsStorage {}

/// What [`FaultStorage`] does when its counter reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Return an error, as a full disk would (ENOSPC).
    Fail,
    /// SIGKILL the process, as a crash or power cut would.
    Kill,
}

/// Wraps a storage and injects one fault at the N-th write operation (1-based).
#[derive(Debug)]
pub struct FaultStorage {
    inner: Arc<dyn Storage>,
    mode: FaultMode,
    at: u64,
    count: AtomicU64,
}

impl FaultStorage {
    /// A storage that faults at write number `at`.
    pub fn new(inner: Arc<dyn Storage>, mode: FaultMode, at: u64) -> Self {
        FaultStorage {
            inner,
            mode,
            at,
            count: AtomicU64::new(0),
        }
    }

    /// Parses `DSV_FAULT` (`kill:N` or `fail:N`); `None` when unset or malformed.
    pub fn from_spec(spec: &str) -> Option<Self> {
        let (mode, n) = spec.split_once(':')?;
        let mode = match mode {
            "kill" => FaultMode::Kill,
            "fail" => FaultMode::Fail,
            _ => return None,
        };
        let at = n.trim().parse().ok()?;
        Some(FaultStorage::new(Arc::new(OsStorage), mode, at))
    }

    /// Number of write operations seen so far.
    pub fn writes(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

impl Storage for FaultStorage {
    fn fault_point(&self) -> Result<()> {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.at {
            match self.mode {
                FaultMode::Kill => {
                    // SAFETY: sending SIGKILL to our own pid has no memory-safety implications.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                    std::process::abort();
                }
                FaultMode::Fail => {
                    return Err(Error::io(
                        "writing",
                        "(injected fault)",
                        std::io::Error::from_raw_os_error(libc::ENOSPC),
                    ));
                }
            }
        }
        self.inner.fault_point()
    }
}

/// A redb storage backend that routes every write through a [`Storage`] fault point.
#[derive(Debug)]
pub struct RedbBackend {
    inner: redb::backends::FileBackend,
    storage: Arc<dyn Storage>,
    /// Whether `sync_data` reaches the disk (see [`RedbBackend::unsynced`]).
    sync: bool,
}

impl RedbBackend {
    /// Wraps an opened database file.
    pub fn new(
        file: File,
        storage: Arc<dyn Storage>,
    ) -> std::result::Result<Self, redb::DatabaseError> {
        Ok(RedbBackend {
            inner: redb::backends::FileBackend::new(file)?,
            storage,
            sync: true,
        })
    }

    /// Wraps the file of a cache database, which is never synced. A cache
    /// holds derived data only: after a crash of the process the kernel still
    /// writes what it was given, and after a power loss redb's commit
    /// checksums reject a torn commit, which costs a rebuild, never a wrong
    /// answer. Syncing tens of megabytes on every cold `stats` or `query`
    /// cost a quarter of its time.
    pub fn unsynced(file: File) -> std::result::Result<Self, redb::DatabaseError> {
        Ok(RedbBackend {
            sync: false,
            ..RedbBackend::new(file, Arc::new(OsStorage))?
        })
    }

    fn point(&self) -> std::result::Result<(), std::io::Error> {
        self.storage
            .fault_point()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

type Bound = std::ops::Bound<u64>;

impl redb::StorageBackend for RedbBackend {
    fn len(&self) -> std::result::Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::result::Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::result::Result<(), std::io::Error> {
        self.point()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::result::Result<(), std::io::Error> {
        self.point()?;
        if self.sync {
            self.inner.sync_data()
        } else {
            Ok(())
        }
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), std::io::Error> {
        self.point()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> std::result::Result<(), std::io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound, e: Bound) -> std::result::Result<bool, redb::BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(
        &self,
        s: Bound,
        e: Bound,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound, e: Bound) -> std::result::Result<(), redb::BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound, e: Bound) -> std::result::Result<(), redb::BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound, e: Bound) -> std::result::Result<(), redb::BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(
        &self,
        s: Bound,
        e: Bound,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.inner.query_lock_range(s, e)
    }
}
/// Whether a file name is a temporary sibling made by [`temp_name`]
/// (`.dsv-tmp-PID-N`), or by versions before it (`NAME.dsv-tmp-PID-N`), which a
/// crash may have left behind.
pub fn is_dsv_temp(name: &[u8]) -> bool {
    let tag = TEMP_PREFIX.as_bytes();
    name.windows(tag.len()).any(|w| w == tag)
}
