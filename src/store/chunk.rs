//! Storing files: whole for small ones, content-defined chunks for large ones.
//!
//! Chunking parameters are part of the format (changing them would stop new
//! versions of a file from sharing chunks with old ones): FastCDC 2020,
//! min 16 KiB, average 64 KiB, max 256 KiB, normalization level 1.
//! Chunks are grouped into segments; a segment ends after a chunk whose id's
//! first two bytes, read as a little-endian u16, are divisible by 64 (about 64
//! chunks, 4-5 MiB), or at 1024 chunks. The file's record lists its segments;
//! each segment's record lists its chunks. A one-byte edit therefore rewrites
//! one chunk, one segment list and the short top list.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;

use super::{CHUNK_THRESHOLD, ObjectStore};
use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;

/// Smallest chunk.
pub const MIN_CHUNK: usize = 16 * 1024;
/// Target average chunk.
pub const AVG_CHUNK: usize = 64 * 1024;
/// Largest chunk.
pub const MAX_CHUNK: usize = 256 * 1024;
/// A segment ends after a chunk whose id prefix is divisible by this.
pub const SEGMENT_DIVISOR: u16 = 64;
/// Hard cap on chunks per segment.
pub const SEGMENT_MAX_CHUNKS: usize = 1024;
/// Chunks processed in parallel per batch (bounds memory to ~batch * MAX_CHUNK).
const BATCH: usize = 32;

/// A file's identity as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFile {
    /// blake3 of the content.
    pub id: ObjectId,
    /// Content length.
    pub size: u64,
}

/// The stat fields that must not change while a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatStamp {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status-change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
}

impl StatStamp {
    /// Extracts the stamp from metadata.
    pub fn of(m: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        StatStamp {
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
        }
    }
}

impl ObjectStore {
    /// Stores a regular file's content and returns its id and size.
    ///
    /// `before` is the stat taken when the file was found; if the file's stat
    /// differs after reading, it was being written to and nothing is recorded
    /// for it ([`Error::ChangedWhileReading`]).
    pub fn put_file(&self, path: &Path, before: &StatStamp) -> Result<StoredFile> {
        let mut file = File::open(path).ctx("opening", path)?;
        let stored = if before.size <= CHUNK_THRESHOLD {
            // Read into an exact buffer (one spare byte detects growth): read_to_end
            // would stat and seek again to size its buffer.
            let mut buf = vec![0u8; before.size as usize + 1];
            let mut filled = 0;
            loop {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        filled += n;
                        if filled == buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("reading", path, e)),
                }
            }
            buf.truncate(filled);
            check_unchanged(&file, path, before, buf.len() as u64)?;
            let id = ObjectId::hash(&buf);
            self.put_known(id, &buf)?;
            StoredFile {
                id,
                size: buf.len() as u64,
            }
        } else {
            let stored = self.put_stream(&mut file, path)?;
            check_unchanged(&file, path, before, stored.size)?;
            stored
        };
        Ok(stored)
    }

    /// Stores content read from `reader` with content-defined chunking.
    pub fn put_stream(&self, reader: &mut dyn Read, path: &Path) -> Result<StoredFile> {
        let cdc = fastcdc::v2020::StreamCDC::new(reader, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
        let mut whole = blake3::Hasher::new();
        let mut segment = Segment::default();
        let mut top: Vec<(ObjectId, u64)> = Vec::new();
        let mut size = 0u64;
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
        let mut cdc = cdc.peekable();
        loop {
            batch.clear();
            while batch.len() < BATCH {
                match cdc.next() {
                    None => break,
                    Some(Ok(c)) => batch.push(c.data),
                    Some(Err(fastcdc::v2020::Error::IoError(e))) => {
                        return Err(Error::io("reading", path, e));
                    }
                    Some(Err(e)) => {
                        return Err(Error::io(
                            "reading",
                            path,
                            std::io::Error::other(e.to_string()),
                        ));
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let ids: Vec<ObjectId> = batch
                .par_iter()
                .map(|data| {
                    let id = ObjectId(*blake3::hash(data).as_bytes());
                    self.put_known(id, data).map(|_| id)
                })
                .collect::<Result<_>>()?;
            for (data, id) in batch.iter().zip(ids) {
                whole.update(data);
                size += data.len() as u64;
                segment.push(id, data);
                let prefix = u16::from_le_bytes([id.0[0], id.0[1]]);
                if prefix.is_multiple_of(SEGMENT_DIVISOR)
                    || segment.children.len() >= SEGMENT_MAX_CHUNKS
                {
                    top.push(segment.finish(self)?);
                }
            }
            if cdc.peek().is_none() {
                break;
            }
        }
        if !segment.children.is_empty() {
            top.push(segment.finish(self)?);
        }
        let id = ObjectId(*whole.finalize().as_bytes());
        match top.as_slice() {
            // A single segment covers the whole file: its id is the file's id.
            [(seg, _)] if *seg == id => {}
            [] => {
                self.put_known(id, &[])?;
            }
            _ => self.put_concat(id, &top)?,
        }
        Ok(StoredFile { id, size })
    }
}

#[derive(Default)]
struct Segment {
    hasher: blake3::Hasher,
    children: Vec<(ObjectId, u64)>,
    len: u64,
}

impl Segment {
    fn push(&mut self, id: ObjectId, data: &[u8]) {
        self.hasher.update(data);
        self.children.push((id, data.len() as u64));
        self.len += data.len() as u64;
    }

    fn finish(&mut self, store: &ObjectStore) -> Result<(ObjectId, u64)> {
        let id = ObjectId(*self.hasher.finalize().as_bytes());
        let len = self.len;
        if self.children.len() == 1 {
            // One chunk: the segment's bytes are the chunk's, already stored under this id.
        } else {
            store.put_concat(id, &self.children)?;
        }
        *self = Segment::default();
        Ok((id, len))
    }
}

fn check_unchanged(file: &File, path: &Path, before: &StatStamp, read: u64) -> Result<()> {
    let after = StatStamp::of(&file.metadata().ctx("reading", path)?);
    if after != *before || read != before.size {
        return Err(Error::ChangedWhileReading(path.to_path_buf()));
    }
    Ok(())
}
