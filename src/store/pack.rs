//! Pack files: append-only containers of object records.
//!
//! Layout (format version 1, see docs/format.md):
//! a pack starts with the 8-byte magic `DSVPACK1`, followed by records
//! `[0xD5][flags u8][id 32B][stored_len u32 LE][raw_len u32 LE][payload]`.
//! `flags` bits 0-1: representation (0 = raw bytes, 1 = concatenation list);
//! bits 2-3: codec (0 = none, 1 = zstd). The id inside each record lets an
//! index be rebuilt by scanning packs; the redb index is the source of truth for
//! which records are committed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;

/// Magic bytes at the start of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"DSVPACK1";
/// First byte of every record.
pub const RECORD_MAGIC: u8 = 0xD5;
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 1 + 1 + 32 + 4 + 4;

/// Largest decoded payload accepted (dsv writes at most a few MiB per record).
pub const MAX_RAW_LEN: u32 = 256 * 1024 * 1024;

/// How an object's bytes are represented in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// The payload (after decompression) is the object's bytes.
    Raw,
    /// The payload is a list of (child id, length); the object is their concatenation.
    Concat,
}

/// Compression applied to a record's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is.
    None,
    /// zstd frame.
    Zstd,
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Representation of the payload.
    pub repr: Repr,
    /// Compression of the payload.
    pub codec: Codec,
    /// Object id.
    pub id: ObjectId,
    /// Bytes of payload in the pack.
    pub stored_len: u32,
    /// Bytes of payload after decompression.
    pub raw_len: u32,
}

impl RecordHeader {
    /// Serializes the header.
    pub fn encode(&self) -> [u8; RECORD_HEADER] {
        let mut h = [0u8; RECORD_HEADER];
        h[0] = RECORD_MAGIC;
        let repr = match self.repr {
            Repr::Raw => 0,
            Repr::Concat => 1,
        };
        let codec = match self.codec {
            Codec::None => 0,
            Codec::Zstd => 1,
        };
        h[1] = repr | (codec << 2);
        h[2..34].copy_from_slice(&self.id.0);
        h[34..38].copy_from_slice(&self.stored_len.to_le_bytes());
        h[38..42].copy_from_slice(&self.raw_len.to_le_bytes());
        h
    }

    /// Parses a header, rejecting unknown flags.
    pub fn decode(h: &[u8]) -> std::result::Result<Self, String> {
        if h.len() < RECORD_HEADER {
            return Err("truncated record header".into());
        }
        if h[0] != RECORD_MAGIC {
            return Err(format!("bad record magic 0x{:02x}", h[0]));
        }
        let repr = match h[1] & 3 {
            0 => Repr::Raw,
            1 => Repr::Concat,
            r => return Err(format!("unknown representation {r}")),
        };
        let codec = match (h[1] >> 2) & 3 {
            0 => Codec::None,
            1 => Codec::Zstd,
            c => return Err(format!("unknown codec {c}")),
        };
        if h[1] >> 4 != 0 {
            return Err(format!("unknown record flags 0x{:02x}", h[1]));
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&h[2..34]);
        let stored_len = u32::from_le_bytes([h[34], h[35], h[36], h[37]]);
        let raw_len = u32::from_le_bytes([h[38], h[39], h[40], h[41]]);
        Ok(RecordHeader {
            repr,
            codec,
            id: ObjectId(id),
            stored_len,
            raw_len,
        })
    }
}

/// Path of pack number `n` inside the packs directory.
pub fn pack_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("pack-{n:08}.dsvpack"))
}

/// Parses a pack file name back into its number.
pub fn parse_pack_name(name: &str) -> Option<u32> {
    name.strip_prefix("pack-")?
        .strip_suffix(".dsvpack")?
        .parse()
        .ok()
}

/// Reads one record at `offset` of length `len` (header included) from an open pack.
pub fn read_record(
    file: &File,
    path: &Path,
    offset: u64,
    len: u32,
) -> Result<(RecordHeader, Vec<u8>)> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)
        .ctx("reading pack", path)?;
    let header = RecordHeader::decode(&buf)
        .map_err(|e| Error::Corrupt(format!("{} at offset {offset}: {e}", path.display())))?;
    if RECORD_HEADER + header.stored_len as usize != buf.len() {
        return Err(Error::Corrupt(format!(
            "{} at offset {offset}: record length {} does not match index length {len}",
            path.display(),
            RECORD_HEADER + header.stored_len as usize
        )));
    }
    buf.drain(..RECORD_HEADER);
    Ok((header, buf))
}

/// Decodes a record payload into the representation's bytes (decompressing).
pub fn decode_payload(
    header: &RecordHeader,
    payload: Vec<u8>,
) -> std::result::Result<Vec<u8>, String> {
    match header.codec {
        Codec::None => Ok(payload),
        Codec::Zstd => {
            // The header is untrusted: never let it size a huge allocation.
            if header.raw_len > MAX_RAW_LEN {
                return Err(format!(
                    "record claims {} bytes, more than any object dsv writes",
                    header.raw_len
                ));
            }
            // One decompression context per thread: creating one costs more than
            // decompressing a small label file.
            thread_local! {
                static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                    const { std::cell::RefCell::new(None) };
            }
            let out = DCTX
                .with(|cell| {
                    let mut slot = cell.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(zstd::bulk::Decompressor::new()?);
                    }
                    match slot.as_mut() {
                        Some(d) => d.decompress(&payload, header.raw_len as usize),
                        None => Err(std::io::Error::other("no zstd context")),
                    }
                })
                .map_err(|e| format!("zstd: {e}"))?;
            if out.len() != header.raw_len as usize {
                return Err(format!(
                    "decompressed to {} bytes, header says {}",
                    out.len(),
                    header.raw_len
                ));
            }
            Ok(out)
        }
    }
}

/// Encodes a concatenation list: repeated `[id 32B][len varint]`.
pub fn encode_concat(children: &[(ObjectId, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(children.len() * 36);
    for (id, len) in children {
        out.extend_from_slice(&id.0);
        put_varint(&mut out, *len);
    }
    out
}

/// Decodes a concatenation list.
pub fn decode_concat(mut bytes: &[u8]) -> std::result::Result<Vec<(ObjectId, u64)>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 33 {
            return Err("truncated concatenation list".into());
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&bytes[..32]);
        bytes = &bytes[32..];
        let len = get_varint(&mut bytes).ok_or("bad length in concatenation list")?;
        out.push((ObjectId(id), len));
    }
    Ok(out)
}

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads an unsigned LEB128 varint, advancing the slice.
pub fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    // Most varints (name lengths, file counts, small sizes) are one byte.
    if let Some((&b, rest)) = bytes.split_first()
        && b < 0x80
    {
        *bytes = rest;
        return Some(u64::from(b));
    }
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i >= 10 {
            return None;
        }
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_round_trip(id in proptest::array::uniform32(any::<u8>()), s in any::<u32>(), r in any::<u32>(), concat in any::<bool>(), z in any::<bool>()) {
            let h = RecordHeader {
                repr: if concat { Repr::Concat } else { Repr::Raw },
                codec: if z { Codec::Zstd } else { Codec::None },
                id: ObjectId(id), stored_len: s, raw_len: r };
            prop_assert_eq!(RecordHeader::decode(&h.encode()), Ok(h));
        }

        #[test]
        fn concat_round_trip(items in proptest::collection::vec((proptest::array::uniform32(any::<u8>()), any::<u64>()), 0..50)) {
            let items: Vec<_> = items.into_iter().map(|(a, l)| (ObjectId(a), l)).collect();
            prop_assert_eq!(decode_concat(&encode_concat(&items)), Ok(items));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RecordHeader::decode(&bytes);
            let _ = decode_concat(&bytes);
        }
    }
}
