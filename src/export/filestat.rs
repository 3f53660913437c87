//! What an update checks of each exported image: its length, modification and
//! change times, read for every image of an export in one parallel pass.
//!
//! The change time (ctime) is what catches an edit that keeps the length and
//! puts the modification time back (`touch -r`, tools that preserve times):
//! a process can set mtime but not ctime.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What an update compares of an exported image with the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileStat {
    /// Length in bytes.
    pub len: u64,
    /// Modification time, ns since the epoch.
    pub mtime: i128,
    /// Change time, ns since the epoch (`None` in records written before it
    /// was recorded: then only the length and mtime are compared).
    pub ctime: Option<i128>,
}

impl FileStat {
    /// Whether the file `now` is as recorded in `self`.
    pub fn unchanged(&self, now: &FileStat) -> bool {
        self.len == now.len
            && self.mtime == now.mtime
            && self.ctime.is_none_or(|c| now.ctime == Some(c))
    }
}

/// The stat of a file (not following a symlink).
pub fn stat(path: &Path) -> Option<FileStat> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(FileStat {
            len: m.len(),
            mtime: ns(m.mtime(), m.mtime_nsec()),
            ctime: Some(ns(m.ctime(), m.ctime_nsec())),
        })
    }
    #[cfg(not(unix))]
    {
        let m = std::fs::symlink_metadata(path).ok()?;
        let mtime = match m.modified().ok()?.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Some(FileStat {
            len: m.len(),
            mtime,
            ctime: None,
        })
    }
}

/// Seconds and nanoseconds as ns (`libc`'s field types differ between platforms).
fn ns(sec: impl Into<i128>, nsec: impl Into<i128>) -> i128 {
    sec.into() * 1_000_000_000 + nsec.into()
}

/// The stats of `files` (paths relative to `root`, `/`-separated), in their
/// order; `None` for a file that is missing or cannot be read. Spread over
/// the cores, and each looked up in its directory opened once (consecutive
/// files share one), not by walking the whole path again.
pub fn stats(root: &Path, files: &[&str]) -> Vec<Option<FileStat>> {
    const CHUNK: usize = 2048;
    files
        .par_chunks(CHUNK)
        .flat_map_iter(|chunk| chunk_stats(root, chunk))
        .collect()
}

#[cfg(unix)]
fn chunk_stats(root: &Path, files: &[&str]) -> Vec<Option<FileStat>> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    let mut out = Vec::with_capacity(files.len());
    let mut open: Option<(&str, Option<rustix::fd::OwnedFd>)> = None;
    for f in files {
        let (dir, name) = f.rsplit_once('/').unwrap_or(("", f));
        if open.as_ref().is_none_or(|(d, _)| *d != dir) {
            let fd = rustix::fs::openat(
                CWD,
                root.join(dir),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok();
            open = Some((dir, fd));
        }
        let st = match open.as_ref().and_then(|(_, fd)| fd.as_ref()) {
            // `..` or an empty name would look elsewhere: the slow path says what is there.
            Some(fd) if !name.is_empty() && name != ".." && name != "." => {
                rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .map(|st| FileStat {
                        len: st.st_size as u64,
                        mtime: ns(st.st_mtime, st.st_mtime_nsec),
                        ctime: Some(ns(st.st_ctime, st.st_ctime_nsec)),
                    })
            }
            _ => stat(&root.join(f)),
        };
        out.push(st);
    }
    out
}

#[cfg(not(unix))]
fn chunk_stats(root: &Path, files: &[&str]) -> Vec<Option<FileStat>> {
    files.iter().map(|f| stat(&root.join(f))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_one_by_one_stats_and_missing_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x.jpg"), b"12345").unwrap();
        std::fs::write(dir.path().join("a/y.jpg"), b"1").unwrap();
        std::fs::write(dir.path().join("top"), b"").unwrap();
        let files = ["a/b/x.jpg", "a/b/gone.jpg", "a/y.jpg", "top", "none/z"];
        let got = stats(dir.path(), &files);
        let want: Vec<_> = files.iter().map(|f| stat(&dir.path().join(f))).collect();
        assert_eq!(got, want);
        assert_eq!(got[0].unwrap().len, 5);
        assert!(got[1].is_none() && got[4].is_none());
    }

    #[test]
    fn a_record_without_ctime_compares_length_and_mtime_only() {
        let a = FileStat {
            len: 3,
            mtime: 10,
            ctime: None,
        };
        let now = FileStat {
            len: 3,
            mtime: 10,
            ctime: Some(99),
        };
        assert!(a.unchanged(&now));
        let b = FileStat {
            ctime: Some(98),
            ..a
        };
        assert!(!b.unchanged(&now));
        assert!(!FileStat { len: 4, ..a }.unchanged(&now));
    }
}
