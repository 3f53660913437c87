//! The frames a query matched in a version, kept by (query, version): a
//! second run of the same query reads them instead of judging every frame,
//! and the first query of a version whose index is an overlay on another
//! (`derive.rs`) judges only the frames the overlay replaced, taking every
//! other frame's answer from its base's matches (the same record at the same
//! position gives the same answer). One file per (query, version) under
//! `.dsv/cache/query-matches/`; format: docs/format.md. Not fsynced: a file
//! cut short or damaged fails its hash and the frames are judged again.

use std::path::{Path, PathBuf};

use super::codec::{Reader, varint};

/// Magic of a matches file; the digit is its format version.
const MAGIC: &[u8; 8] = b"DSVQM01\0";

/// Part of every key: the matches file format and the index it positions
/// frames of (`index.rs`), and the program, whose expression semantics the
/// answers depend on.
const KEY_VERSION: &[u8] = concat!(
    "dsv-query-matches-1/dsv-query-10/",
    env!("CARGO_PKG_VERSION")
)
.as_bytes();

/// Files kept; older ones are removed when one is written.
const KEEP_FILES: usize = 16;

/// The matches files of a repository (nothing when disabled).
pub(super) struct MatchesCache {
    dir: Option<PathBuf>,
}

/// The positions of the matching frames of one version, ascending.
pub(super) type Positions = Vec<u64>;

impl MatchesCache {
    /// The cache of the repository whose `.dsv` directory is given.
    pub fn open(dsv_dir: &Path) -> MatchesCache {
        MatchesCache {
            dir: Some(dsv_dir.join("cache").join("query-matches")),
        }
    }

    /// A cache that holds and stores nothing.
    pub fn disabled() -> MatchesCache {
        MatchesCache { dir: None }
    }

    fn file(&self, tree: &[u8; 32], query: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!(
            "{}.sel",
            crate::id::ObjectId(key(tree, query)).to_hex()
        )))
    }

    /// The matches of `query` in the version `tree` of `frames` frames, if
    /// kept and intact.
    pub fn get(&self, tree: &[u8; 32], query: &str, frames: usize) -> Option<Positions> {
        let bytes = std::fs::read(self.file(tree, query)?).ok()?;
        decode(&bytes, tree, query, frames)
    }

    /// Keeps the matches of `query` in version `tree`; failures only cost time.
    pub fn put(&self, tree: &[u8; 32], query: &str, frames: usize, positions: &[u64]) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.file(tree, query)) else {
            return;
        };
        let bytes = encode(tree, query, frames, positions);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        if write().is_ok() {
            evict(dir, &path);
        }
    }
}

/// The file key of (version, query).
fn key(tree: &[u8; 32], query: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(KEY_VERSION);
    h.update(tree);
    h.update(query_hash(query).as_bytes());
    *h.finalize().as_bytes()
}

fn query_hash(query: &str) -> blake3::Hash {
    blake3::hash(query.as_bytes())
}

/// The bytes of a matches file: magic, version tree (32), blake3 of the
/// query text (32), frame count, match count, the positions as ascending
/// deltas (the first from zero), then blake3 of everything before (32).
pub(super) fn encode(tree: &[u8; 32], query: &str, frames: usize, positions: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(positions.len() * 2 + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(tree);
    out.extend_from_slice(query_hash(query).as_bytes());
    varint(&mut out, frames as u64);
    varint(&mut out, positions.len() as u64);
    let mut last = 0;
    for (k, &p) in positions.iter().enumerate() {
        // Ascending: the first as is, then the gap to the one before minus one.
        varint(&mut out, if k == 0 { p } else { p - last - 1 });
        last = p;
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Reads a matches file made for `tree`, `query` and an index of `frames`
/// frames; `None` for anything else or anything malformed.
pub(super) fn decode(b: &[u8], tree: &[u8; 32], query: &str, frames: usize) -> Option<Positions> {
    let body = b.get(..b.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != b.get(body.len()..)? {
        return None;
    }
    let mut r = Reader::new(body);
    if r.take(8)? != MAGIC || r.take(32)? != tree || r.take(32)? != query_hash(query).as_bytes() {
        return None;
    }
    if r.varint()? != frames as u64 {
        return None;
    }
    let n = r.count()?;
    if n > frames {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut next = 0u64;
    for _ in 0..n {
        let p = next.checked_add(r.varint()?)?;
        if p >= frames as u64 {
            return None;
        }
        out.push(p);
        next = p + 1;
    }
    r.done().then_some(out)
}

/// Removes all but the newest [`KEEP_FILES`] files (and temporary files
/// left by interrupted writes), never `keep`.
fn evict(dir: &Path, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, p)| p != keep)
        .collect();
    files.sort();
    let stale = files.len().saturating_sub(KEEP_FILES - 1);
    for (_, p) in files.into_iter().take(stale) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_round_trip_and_reject_other_versions_queries_and_damage() {
        let t = [7u8; 32];
        let pos = vec![0, 1, 5, 99];
        let b = encode(&t, "x == 1", 100, &pos);
        assert_eq!(decode(&b, &t, "x == 1", 100), Some(pos));
        assert_eq!(decode(&b, &[8u8; 32], "x == 1", 100), None);
        assert_eq!(decode(&b, &t, "x == 2", 100), None);
        assert_eq!(decode(&b, &t, "x == 1", 101), None);
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 1;
            assert_eq!(decode(&d, &t, "x == 1", 100), None, "byte {i} flipped");
        }
        for n in 0..b.len() {
            assert_eq!(decode(&b[..n], &t, "x == 1", 100), None, "cut at {n}");
        }
        assert_eq!(decode(&encode(&t, "q", 0, &[]), &t, "q", 0), Some(vec![]));
    }
}
