//! The repository lock: one writer at a time, readers share.
//!
//! `.dsv/lock` is locked with `flock` (exclusive for commands that change the
//! repository, shared for readers); the kernel drops the lock when a process
//! dies, so a crash never leaves the repository locked. The writer records its
//! pid in the file so a waiting command can say who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// Whether a command reads or changes the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Shared: many readers at once, no writer.
    Read,
    /// Exclusive: one writer, no readers.
    Write,
}

/// A held repository lock; released on drop (or process death).
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
    access: Access,
}

impl RepoLock {
    /// Which kind of lock is held.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Acquires the lock, polling until `timeout`.
    pub fn acquire(dsv_dir: &Path, access: Access, timeout: Duration) -> Result<RepoLock> {
        let path = dsv_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("opening lock file", &path)?;
        let start = Instant::now();
        loop {
            let got = match access {
                Access::Write => file.try_lock(),
                Access::Read => file.try_lock_shared(),
            };
            match got {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        return Err(Error::Locked {
                            pid: read_pid(&path),
                            path,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("locking", &path, e)),
            }
        }
        if access == Access::Write {
            let pid = std::process::id().to_string();
            let _ = file.set_len(0);
            let _ = file.seek(SeekFrom::Start(0));
            let _ = file.write_all(pid.as_bytes());
        }
        Ok(RepoLock {
            _file: file,
            access,
        })
    }

    /// Tries to take the write lock without waiting.
    pub fn try_write(dsv_dir: &Path) -> Result<Option<RepoLock>> {
        match Self::acquire(dsv_dir, Access::Write, Duration::ZERO) {
            Ok(l) => Ok(Some(l)),
            Err(Error::Locked { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The pid holding a lock on `path`: from the kernel's lock table (`/proc/locks`), which
/// also names readers; else the pid the last writer recorded in the file.
fn read_pid(path: &PathBuf) -> u32 {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path)
        && let Ok(locks) = std::fs::read_to_string("/proc/locks")
    {
        let me = std::process::id();
        let suffix = format!(":{}", meta.ino());
        for line in locks.lines() {
            // "1: FLOCK  ADVISORY  WRITE 12345 fd:01:123456 0 EOF"
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 6
                && fields[1] == "FLOCK"
                && fields[5].ends_with(&suffix)
                && let Ok(pid) = fields[4].parse::<u32>()
                && pid != me
            {
                return pid;
            }
        }
    }
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s.trim().parse().unwrap_or(0)
}
