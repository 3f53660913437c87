//! Sparse checkout: the repository paths a working tree holds (`dsv sparse set`).
//!
//! `.dsv/sparse` (format in docs/format.md) lists directories and files, one per
//! line. Paths outside them stay in the index at the version of the commit checked
//! out, but are not written to the working tree: checkouts record them in the index
//! only, and status and `add -A` do not take their absence for a deletion, so a
//! commit keeps them as they were.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::paths::{display_path, path_within};
use crate::storage::Storage;

/// File name under `.dsv/`.
pub const FILE: &str = "sparse";

/// First line of the file: format and version.
const HEADER: &[u8] = b"dsv-sparse 1";

/// Largest `.dsv/sparse` read (a list of paths, not data).
const MAX_FILE: u64 = 16 << 20;

/// Why a sparse definition cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    /// `.dsv/sparse` is not a sparse file this build reads.
    #[error("{}: line {line}: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// `.dsv/sparse` is larger than any list of paths should be.
    #[error("{}: {size} bytes, more than a sparse file may have ({MAX_FILE}); not read", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
}

impl crate::error::ModuleError for SparseError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Damaged
    }
}

crate::error::module_error!(SparseError);

/// The paths a sparse working tree holds: repository paths (directories or files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sparse {
    /// Sorted, unique, none inside another.
    #[serde(serialize_with = "paths")]
    pub paths: Vec<Vec<u8>>,
}

fn paths<S: serde::Serializer>(p: &[Vec<u8>], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(p.iter().map(|p| display_path(p)))
}

impl Sparse {
    /// A definition holding `paths` (a path inside another is dropped; the whole
    /// tree, an empty path, makes the definition hold everything).
    pub fn new(mut paths: Vec<Vec<u8>>) -> Sparse {
        paths.sort();
        paths.dedup();
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for p in paths {
            if !kept.iter().any(|k| path_within(&p, k)) {
                kept.push(p);
            }
        }
        Sparse { paths: kept }
    }

    /// Whether `path` is in the working tree.
    pub fn includes(&self, path: &[u8]) -> bool {
        self.paths.iter().any(|s| path_within(path, s))
    }

    /// Whether the definition holds everything.
    pub fn is_everything(&self) -> bool {
        self.paths.iter().any(|p| p.is_empty())
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        out.push(b'\n');
        for p in &self.paths {
            out.extend_from_slice(p);
            out.push(b'\n');
        }
        out
    }

    /// Parses the file's bytes (`path` names it in errors).
    pub fn decode(bytes: &[u8], path: &Path) -> std::result::Result<Sparse, SparseError> {
        let bad = |line: usize, reason: String| SparseError::Damaged {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut lines = bytes.split(|b| *b == b'\n');
        if lines.next() != Some(HEADER) {
            return Err(bad(
                1,
                format!(
                    "expected '{}' (written by a newer dsv, or damaged)",
                    String::from_utf8_lossy(HEADER)
                ),
            ));
        }
        let mut out = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            if let Err(e) = check_path(line) {
                return Err(bad(i + 2, e));
            }
            out.push(line.to_vec());
        }
        Ok(Sparse::new(out))
    }
}

/// A repository path a sparse file can hold: relative, no `.`/`..`/empty
/// components, no NUL or newline, not inside `.dsv`.
pub fn check_path(p: &[u8]) -> std::result::Result<(), String> {
    let shown = crate::quote::bytes(&p[..p.len().min(200)]);
    if p.contains(&0) || p.contains(&b'\n') {
        return Err(format!("'{shown}' holds a NUL or a newline"));
    }
    for c in p.split(|b| *b == b'/') {
        if crate::object::tree::check_name(c).is_err() {
            return Err(format!("'{shown}' is not a repository path"));
        }
    }
    Ok(())
}

/// The path of the sparse file.
pub fn file(dsv_dir: &Path) -> PathBuf {
    dsv_dir.join(FILE)
}

/// The sparse definition, `None` when the working tree holds everything.
pub fn load(dsv_dir: &Path) -> Result<Option<Sparse>> {
    let path = file(dsv_dir);
    match crate::refs::read_capped(&path, MAX_FILE) {
        Ok(bytes) if bytes.len() as u64 > MAX_FILE => Err(SparseError::TooLarge {
            size: std::fs::metadata(&path).map_or(0, |m| m.len()),
            path,
        }
        .into()),
        Ok(bytes) => Ok(Some(Sparse::decode(&bytes, &path)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::Error::io("reading", path, e)),
    }
}

/// Writes the definition (atomically).
pub fn save(storage: &dyn Storage, dsv_dir: &Path, sparse: &Sparse) -> Result<()> {
    storage.write_atomic(&file(dsv_dir), &sparse.encode())
}

/// Removes the definition (the working tree holds everything again).
pub fn remove(storage: &dyn Storage, dsv_dir: &Path) -> Result<()> {
    let path = file(dsv_dir);
    if path.exists() {
        storage.remove_file(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_nesting() {
        let s = Sparse::new(vec![
            b"images/night".to_vec(),
            b"images/night/a.jpg".to_vec(),
            b"labels".to_vec(),
            b"labels".to_vec(),
        ]);
        assert_eq!(s.paths, vec![b"images/night".to_vec(), b"labels".to_vec()]);
        assert!(s.includes(b"images/night/x.jpg"));
        assert!(s.includes(b"labels"));
        assert!(!s.includes(b"images/nightly/x.jpg"));
        assert!(!s.includes(b"images/day/x.jpg"));
        let back = Sparse::decode(&s.encode(), Path::new("sparse")).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn damaged_files_are_errors_naming_the_line() {
        let e = Sparse::decode(b"nope\n", Path::new("s")).unwrap_err();
        assert!(e.to_string().contains("s: line 1"), "{e}");
        let e = Sparse::decode(b"dsv-sparse 1\nok\n../x\n", Path::new("s")).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
