//! The record of an export on disk (version 2): `dsv-export.json`, a small
//! JSON head (lineage, classes, splits, placement), and `dsv-export.frames`,
//! what each frame became, in a compact binary file the head names by the
//! BLAKE3 hash of its body.
//!
//! Split in two because the frames grow with the dataset and the head does
//! not: an update that changes no frame entry rewrites the head alone, and
//! one that does writes the frames as bytes, not as ~300 B of JSON each.
//! Version 1 records (frames inline in the JSON) are still read.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Classes, Lineage, LinkMode, Record, RecordFrame, Split};
use crate::codec::{Reader, string, varint};
use crate::error::{IoContext, Result};
use crate::id::ObjectId;

/// The record's head (JSON).
pub const HEAD: &str = "dsv-export.json";
/// The record's frames (binary), named by the head.
pub const FRAMES: &str = "dsv-export.frames";
/// The layout version written.
pub const VERSION: u32 = 2;
/// The first bytes of the frames file.
const MAGIC: &[u8; 8] = b"dsvxfrm\x01";

/// Which frames file a head goes with: its frame count and the BLAKE3 hash
/// of its body (the bytes after the magic and the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FramesRef {
    /// Frames in the file.
    pub count: usize,
    /// BLAKE3 of the body, hex.
    pub blake3: String,
}

/// The head as written (version 2): the record without its frames.
#[derive(Serialize)]
struct Head<'a> {
    dsv_export: u32,
    format: &'a str,
    lineage: &'a Lineage,
    split: &'a Split,
    classes: &'a Classes,
    link: LinkMode,
    frames_file: &'a FramesRef,
}

/// A head as read, of either version.
#[derive(Deserialize)]
struct AnyHead {
    dsv_export: u32,
    format: String,
    lineage: Lineage,
    split: Split,
    classes: Classes,
    link: LinkMode,
    /// Version 1: the frames inline.
    #[serde(default)]
    frames: Vec<RecordFrame>,
    /// Version 2: the frames file it goes with.
    #[serde(default)]
    frames_file: Option<FramesRef>,
}

/// A record as read from an export.
pub struct Read {
    /// The record (no frames when they could not be read intact).
    pub record: Record,
    /// An update was interrupted, or the frames file is not the one the head
    /// names: no file of the export is to be trusted.
    pub interrupted: bool,
    /// The frames file the record's frames were read from (version 2), which
    /// an update that changes no frame entry keeps as it is.
    pub frames: Option<FramesRef>,
}

/// The record of the export at `dir`, if it is one: its head from
/// [`HEAD`], else from `updating` (an update in place was interrupted).
pub fn read(dir: &Path, updating: &str) -> Option<Read> {
    let (bytes, interrupted) = match std::fs::read(dir.join(HEAD)) {
        Ok(b) => (b, false),
        Err(_) => (std::fs::read(dir.join(updating)).ok()?, true),
    };
    let head: AnyHead = serde_json::from_slice(&bytes).ok()?;
    let mut read = Read {
        record: Record {
            dsv_export: head.dsv_export,
            format: head.format,
            lineage: head.lineage,
            split: head.split,
            classes: head.classes,
            link: head.link,
            frames: head.frames,
        },
        interrupted,
        frames: None,
    };
    if head.dsv_export >= 2 {
        let frames = head
            .frames_file
            .as_ref()
            .and_then(|r| std::fs::read(dir.join(FRAMES)).ok().map(|b| (r, b)))
            .and_then(|(r, b)| decode_frames(&b, r));
        match frames {
            Some(f) => {
                read.record.frames = f;
                read.frames = head.frames_file;
            }
            // A head without its frames: the update that wrote one of them
            // was interrupted; the export is rebuilt whole.
            None => read.interrupted = true,
        }
    }
    Some(read)
}

/// Writes the frames of `rec` to `path`; the reference its head is to give.
pub fn write_frames(path: &Path, frames: &[RecordFrame]) -> Result<FramesRef> {
    let body = encode_frames(frames);
    let hash = blake3::hash(&body);
    let file = std::fs::File::create(path).ctx("writing", path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    w.write_all(MAGIC).ctx("writing", path)?;
    w.write_all(hash.as_bytes()).ctx("writing", path)?;
    w.write_all(&body).ctx("writing", path)?;
    w.flush().ctx("writing", path)?;
    Ok(FramesRef {
        count: frames.len(),
        blake3: hash.to_hex().to_string(),
    })
}

/// Writes the head of `rec` (naming the frames file `frames`) to `path`.
pub fn write_head(path: &Path, rec: &Record, frames: &FramesRef) -> Result<()> {
    let head = Head {
        dsv_export: VERSION,
        format: &rec.format,
        lineage: &rec.lineage,
        split: &rec.split,
        classes: &rec.classes,
        link: rec.link,
        frames_file: frames,
    };
    let bytes = serde_json::to_vec_pretty(&head)
        .map_err(std::io::Error::from)
        .ctx("writing", path)?;
    std::fs::write(path, bytes).ctx("writing", path)
}

const LABEL: u8 = 1;
const LABEL_HASH: u8 = 2;
const SIZE: u8 = 4;
const CTIME: u8 = 8;

/// The body: a count, then per frame its path, id (32 bytes), split, image,
/// a flags byte, then what the flags say is there (label, label hash as 32
/// bytes, size), the image's length, mtime and, when flagged, ctime (i128
/// little-endian).
fn encode_frames(frames: &[RecordFrame]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + frames.len() * 160);
    varint(&mut out, frames.len() as u64);
    for f in frames {
        string(&mut out, &f.path);
        out.extend_from_slice(&f.id.0);
        string(&mut out, &f.split);
        string(&mut out, &f.image);
        let hash = f.label_hash;
        let flags = if f.label.is_some() { LABEL } else { 0 }
            | if hash.is_some() { LABEL_HASH } else { 0 }
            | if f.size.is_some() { SIZE } else { 0 }
            | if f.ctime.is_some() { CTIME } else { 0 };
        out.push(flags);
        if let Some(l) = &f.label {
            string(&mut out, l);
        }
        if let Some(h) = hash {
            out.extend_from_slice(&h.0);
        }
        if let Some((w, h)) = f.size {
            varint(&mut out, w.into());
            varint(&mut out, h.into());
        }
        varint(&mut out, f.stat.0);
        out.extend_from_slice(&f.stat.1.to_le_bytes());
        if let Some(c) = f.ctime {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    out
}

/// The frames of a frames file whatever head it goes with (its magic
/// checked, the hash it holds not): what the fuzz target reads.
pub fn decode_file(bytes: &[u8]) -> Option<Vec<RecordFrame>> {
    decode_body(bytes.strip_prefix(MAGIC)?.get(32..)?)
}

/// The frames of a frames file, if it is the one `want` names and decodes
/// exactly.
fn decode_frames(bytes: &[u8], want: &FramesRef) -> Option<Vec<RecordFrame>> {
    let mut r = Reader::new(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let hash = ObjectId(r.take(32)?.try_into().ok()?);
    if hash.to_hex() != want.blake3 {
        return None;
    }
    let frames = decode_body(r.take(r.rest_len())?)?;
    (frames.len() == want.count).then_some(frames)
}

/// The frames of a frames file's body (the bytes after its magic and hash),
/// if it decodes exactly. Hostile bytes give `None`, never a panic (fuzzed).
pub fn decode_body(bytes: &[u8]) -> Option<Vec<RecordFrame>> {
    let mut r = Reader::new(bytes);
    let n = r.count()?;
    // Every frame takes at least this many bytes: a hostile count reserves
    // no more than the bytes could hold.
    const LEAST: usize = 1 + 32 + 1 + 1 + 1 + 1 + 16;
    let mut out = Vec::with_capacity(n.min(r.rest_len() / LEAST));
    let i128_le = |r: &mut Reader| Some(i128::from_le_bytes(r.take(16)?.try_into().ok()?));
    for _ in 0..n {
        let path = r.string()?;
        let id = ObjectId(r.take(32)?.try_into().ok()?);
        let split = r.string()?;
        let image = r.string()?;
        let flags = r.u8()?;
        if flags & !(LABEL | LABEL_HASH | SIZE | CTIME) != 0 {
            return None;
        }
        let label = if flags & LABEL != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let label_hash = if flags & LABEL_HASH != 0 {
            Some(ObjectId(r.take(32)?.try_into().ok()?))
        } else {
            None
        };
        let size = if flags & SIZE != 0 {
            let w = u32::try_from(r.varint()?).ok()?;
            let h = u32::try_from(r.varint()?).ok()?;
            Some((w, h))
        } else {
            None
        };
        let len = r.varint()?;
        let mtime = i128_le(&mut r)?;
        let ctime = if flags & CTIME != 0 {
            Some(i128_le(&mut r)?)
        } else {
            None
        };
        out.push(RecordFrame {
            path,
            id,
            split,
            image,
            label,
            label_hash,
            size,
            stat: (len, mtime),
            ctime,
        });
    }
    r.done().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u32, full: bool) -> RecordFrame {
        RecordFrame {
            path: format!("img/{i:04}.jpg"),
            id: ObjectId::hash(&i.to_le_bytes()),
            split: if i.is_multiple_of(2) { "train" } else { "val" }.into(),
            image: format!("images/x/{i:04}.jpg"),
            label: full.then(|| format!("labels/x/{i:04}.txt")),
            label_hash: full.then(|| ObjectId::hash(&i.to_be_bytes())),
            size: full.then_some((640, 480 + i)),
            stat: (u64::from(i) * 1000, -5 - i128::from(i) * 1_000_000_007),
            ctime: full.then_some(i128::from(i) << 70),
        }
    }

    #[test]
    fn frames_round_trip_and_a_damaged_or_other_file_is_refused() {
        let frames: Vec<RecordFrame> = (0..50).map(|i| frame(i, i % 3 != 0)).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FRAMES);
        let r = write_frames(&path, &frames).unwrap();
        assert_eq!(r.count, 50);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(decode_frames(&bytes, &r), Some(frames.clone()));
        // Another file's reference, a truncated file, a flipped magic: refused.
        let other = FramesRef {
            blake3: ObjectId::hash(b"x").to_hex(),
            ..r.clone()
        };
        assert_eq!(decode_frames(&bytes, &other), None);
        assert_eq!(decode_frames(&bytes[..bytes.len() - 1], &r), None);
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert_eq!(decode_frames(&bad, &r), None);
        // Every truncation gives None, never a panic.
        for k in 0..bytes.len() {
            assert_eq!(decode_frames(&bytes[..k], &r), None);
        }
    }
}
