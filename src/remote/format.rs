//! Remote format 1: the marker object and the pack index (`.idx`) encoding.
//!
//! A remote pack is a local pack (magic `DSVPACK1` then records, see
//! [`crate::store::pack`]) named by the blake3 of its bytes. Its index lists
//! every record as `(id, offset, record length)` so a client can range-read
//! single objects. The index is written after its pack and is what makes the
//! pack visible; it ends with a blake3 checksum of everything before it.

use crate::id::ObjectId;
use std::collections::HashSet;

use crate::store::pack::{self, PACK_MAGIC, RECORD_HEADER, RecordHeader, Repr};

/// Default size at which a remote pack is closed and uploaded.
pub const PACK_TARGET: u64 = 32 * 1024 * 1024;

/// Pack size for pushes: the settings' (`DSV_REMOTE_PACK_SIZE`, for tests and
/// tuning) when at least 1024 bytes, else [`PACK_TARGET`].
pub fn pack_target(settings: &crate::settings::Settings) -> u64 {
    settings
        .remote_pack_size
        .filter(|v| *v >= 1024)
        .unwrap_or(PACK_TARGET)
}

/// Remote format version this build writes and reads.
pub const REMOTE_FORMAT: u32 = 1;
/// Name of the marker object at the remote root.
pub const MARKER: &str = "dsv-remote";
/// Magic bytes at the start of a pack index.
pub const IDX_MAGIC: &[u8; 8] = b"DSVRIDX1";
/// Bytes of one index entry: id, offset u64, length u32.
pub const IDX_ENTRY: usize = 32 + 8 + 4;
/// Fixed bytes before the entries: magic, pack hash, pack length u64, count u32.
pub const IDX_HEAD: usize = 8 + 32 + 8 + 4;

/// The marker's JSON.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// Remote format version.
    pub format: u32,
}

/// Encodes the marker for this build's format.
pub fn marker_bytes() -> Vec<u8> {
    serde_json::to_vec(&Marker {
        format: REMOTE_FORMAT,
    })
    .unwrap_or_else(|_| br#"{"format":1}"#.to_vec())
}

/// Parses a marker and refuses a format this build does not know.
pub fn check_marker(bytes: &[u8]) -> Result<(), String> {
    let m: Marker = serde_json::from_slice(bytes).map_err(|_| {
        format!(
            "marker object '{MARKER}' is malformed (expected {{\"format\":{REMOTE_FORMAT}}}, found '{}')",
            crate::quote::bytes(&bytes[..bytes.len().min(40)])
        )
    })?;
    if m.format != REMOTE_FORMAT {
        return Err(format!(
            "remote format {} is not supported (this dsv reads format {REMOTE_FORMAT})",
            m.format
        ));
    }
    Ok(())
}

/// One record of a remote pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    /// Object id.
    pub id: ObjectId,
    /// Offset of the record header in the pack.
    pub offset: u64,
    /// Record length, header included.
    pub len: u32,
}

/// A decoded pack index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIndex {
    /// blake3 of the pack bytes (the pack's name).
    pub pack: ObjectId,
    /// Pack length in bytes.
    pub pack_len: u64,
    /// Records sorted by id.
    pub entries: Vec<IdxEntry>,
}

impl PackIndex {
    /// Serializes the index (entries must be sorted by id).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(IDX_HEAD + self.entries.len() * IDX_ENTRY + 32);
        out.extend_from_slice(IDX_MAGIC);
        out.extend_from_slice(&self.pack.0);
        out.extend_from_slice(&self.pack_len.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.id.0);
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.len.to_le_bytes());
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Parses an index from an untrusted remote: checksum, sorted unique ids, and
    /// every record inside the pack's bounds are checked.
    pub fn decode(bytes: &[u8]) -> Result<PackIndex, String> {
        if bytes.len() < IDX_HEAD + 32 {
            return Err("index truncated".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err("index checksum mismatch (truncated or damaged)".into());
        }
        if &body[..8] != IDX_MAGIC {
            return Err("not a dsv pack index (bad magic)".into());
        }
        let mut pack = [0u8; 32];
        pack.copy_from_slice(&body[8..40]);
        let pack_len = u64::from_le_bytes(body[40..48].try_into().map_err(|_| "bad length")?);
        let count = u32::from_le_bytes(body[48..52].try_into().map_err(|_| "bad count")?) as usize;
        let rest = &body[IDX_HEAD..];
        if rest.len() != count.saturating_mul(IDX_ENTRY) {
            return Err(format!(
                "index says {count} entries but holds {} bytes of entries",
                rest.len()
            ));
        }
        let mut entries = Vec::with_capacity(count);
        for chunk in rest.chunks_exact(IDX_ENTRY) {
            let mut id = [0u8; 32];
            id.copy_from_slice(&chunk[..32]);
            let offset = u64::from_le_bytes(chunk[32..40].try_into().map_err(|_| "bad offset")?);
            let len = u32::from_le_bytes(chunk[40..44].try_into().map_err(|_| "bad length")?);
            let e = IdxEntry {
                id: ObjectId(id),
                offset,
                len,
            };
            if (len as usize) < RECORD_HEADER
                || offset < PACK_MAGIC.len() as u64
                || offset
                    .checked_add(len as u64)
                    .is_none_or(|end| end > pack_len)
            {
                return Err(format!(
                    "entry for {} (offset {offset}, length {len}) lies outside the pack ({pack_len} bytes)",
                    e.id.short()
                ));
            }
            if entries.last().is_some_and(|p: &IdxEntry| p.id >= e.id) {
                return Err("index entries are not sorted".into());
            }
            entries.push(e);
        }
        Ok(PackIndex {
            pack: ObjectId(pack),
            pack_len,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn idx_round_trip_and_checks() {
        let idx = PackIndex {
            pack: ObjectId([9; 32]),
            pack_len: 1000,
            entries: vec![
                IdxEntry {
                    id: ObjectId([1; 32]),
                    offset: 8,
                    len: 50,
                },
                IdxEntry {
                    id: ObjectId([2; 32]),
                    offset: 58,
                    len: 942,
                },
            ],
        };
        let bytes = idx.encode();
        assert_eq!(PackIndex::decode(&bytes), Ok(idx.clone()));
        assert!(PackIndex::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut out_of_bounds = idx.clone();
        out_of_bounds.entries[1].len = 943;
        assert!(PackIndex::decode(&out_of_bounds.encode()).is_err());
        let mut unsorted = idx;
        unsorted.entries.swap(0, 1);
        assert!(PackIndex::decode(&unsorted.encode()).is_err());
    }

    #[test]
    fn marker_versions() {
        assert!(check_marker(&marker_bytes()).is_ok());
        assert!(check_marker(br#"{"format":2}"#).is_err());
        assert!(check_marker(b"garbage").is_err());
    }

    proptest! {
        #[test]
        fn idx_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = PackIndex::decode(&bytes);
        }
    }
}

/// A remote pack being filled: records appended after the pack magic, with their
/// index entries. Pushes and remote gc both build packs with it.
#[derive(Default)]
pub struct PackBuf {
    buf: Vec<u8>,
    entries: Vec<IdxEntry>,
}

impl PackBuf {
    /// Appends `record` (the object `id`); true once the pack holds `target` bytes.
    pub fn add(&mut self, id: ObjectId, record: &[u8], target: u64) -> bool {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(PACK_MAGIC);
        }
        self.entries.push(IdxEntry {
            id,
            offset: self.buf.len() as u64,
            len: record.len() as u32,
        });
        self.buf.extend_from_slice(record);
        self.buf.len() as u64 >= target
    }

    /// The pack so far and its index (named by its content, never one of `avoid`:
    /// see [`unique_pack`]), or `None` when empty; the buffer starts over.
    pub fn take(&mut self, avoid: &HashSet<ObjectId>) -> Option<(Vec<u8>, PackIndex)> {
        if self.entries.is_empty() {
            return None;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by_key(|e| e.id);
        let pack = unique_pack(&mut buf, &mut entries, avoid);
        let idx = PackIndex {
            pack,
            pack_len: buf.len() as u64,
            entries,
        };
        Some((buf, idx))
    }
}

/// Makes a new pack's name differ from every name in `avoid` (the retiring packs):
/// packs are named by their content, so a pack that holds exactly the records of
/// a retiring one would otherwise be deleted with it. A small record of its own
/// (an object no one references, collected later) is appended until the name is
/// new. Returns the pack's name.
pub fn unique_pack(
    buf: &mut Vec<u8>,
    entries: &mut Vec<IdxEntry>,
    avoid: &HashSet<ObjectId>,
) -> ObjectId {
    let mut hash = ObjectId::hash(buf);
    let mut n = 0u64;
    while avoid.contains(&hash) {
        let content = format!("dsv gc salt {hash} {n}\n").into_bytes();
        let id = ObjectId::hash(&content);
        let header = RecordHeader {
            repr: Repr::Raw,
            codec: pack::Codec::None,
            id,
            stored_len: content.len() as u32,
            raw_len: content.len() as u32,
        };
        entries.push(IdxEntry {
            id,
            offset: buf.len() as u64,
            len: (RECORD_HEADER + content.len()) as u32,
        });
        buf.extend_from_slice(&header.encode());
        buf.extend_from_slice(&content);
        entries.sort_by_key(|e| e.id);
        hash = ObjectId::hash(buf);
        n += 1;
    }
    hash
}
