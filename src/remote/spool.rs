//! Whole-pack downloads kept on disk while they arrive, so a fetch or clone that
//! was killed resumes a half-downloaded pack with a range request instead of
//! downloading it again.
//!
//! A pack read whole is written, as it streams in, to
//! `.dsv/remotes/NAME/download/<pack hex>-<length>.part` (the name says what the
//! bytes must become). The next run that wants the pack reads what is there,
//! asks the remote for the rest only, and uses the result only if the whole pack
//! hashes to its name; anything else (a longer file, a damaged one, a tail the
//! remote will not give) is deleted and the pack downloaded again whole. A file
//! is deleted once the records taken from its pack are durable in the store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;

use super::Remote;
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The directory of whole-pack downloads and the packs complete in it.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    /// Complete, verified downloads whose records may not be durable yet.
    done: Mutex<Vec<PathBuf>>,
}

impl Spool {
    /// A spool in `dir` (created on first use).
    pub(crate) fn new(dir: PathBuf) -> Spool {
        Spool {
            dir,
            done: Mutex::new(Vec::new()),
        }
    }

    fn part(&self, pack: &ObjectId, len: u64) -> PathBuf {
        self.dir.join(format!("{pack}-{len}.part"))
    }

    /// Deletes the complete downloads: their records are durable now.
    pub(crate) fn release(&self) {
        let done = std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()));
        for p in done {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Deletes every download (the fetch is complete: what is left is stale).
    pub(crate) fn clear(&self) {
        self.release();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What an earlier run left of a pack of `len` bytes: `None` when there is no
/// file, it cannot be read, or it is longer than the pack (then it is deleted).
fn leftover(part: &Path, len: u64) -> Option<Vec<u8>> {
    let f = std::fs::File::open(part).ok()?;
    let mut buf = Vec::new();
    if f.take(len + 1).read_to_end(&mut buf).is_err() || buf.len() as u64 > len {
        let _ = std::fs::remove_file(part);
        return None;
    }
    Some(buf)
}

/// Reads pack `pack` of `len` bytes (as its index says) whole, resuming what an
/// earlier run left in the spool. The bytes returned hash to `pack`.
pub(crate) async fn get_whole(
    remote: &Remote,
    spool: &Spool,
    path: &StorePath,
    pack: ObjectId,
    len: u64,
) -> Result<bytes::Bytes> {
    let bad = |what: String| Error::Remote {
        remote: remote.name.clone(),
        message: format!("pack {pack}: {what}"),
    };
    let part = spool.part(&pack, len);
    if let Some(mut buf) = leftover(&part, len) {
        let have = buf.len() as u64;
        let rest = if have < len {
            remote.counters.gets.fetch_add(1, Ordering::Relaxed);
            remote.store.get_range(path, have..len).await.ok()
        } else {
            Some(bytes::Bytes::new())
        };
        if let Some(rest) = rest {
            remote
                .counters
                .down
                .fetch_add(rest.len() as u64, Ordering::Relaxed);
            buf.extend_from_slice(&rest);
            // Never trusted on its own: the pack as a whole must hash to its name.
            if buf.len() as u64 == len && ObjectId::hash(&buf) == pack {
                if !rest.is_empty()
                    && let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&part)
                {
                    let _ = f.write_all(&rest);
                }
                spool
                    .done
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(part);
                return Ok(buf.into());
            }
        }
        // Damaged, or a tail the remote would not give: downloaded again whole.
        let _ = std::fs::remove_file(&part);
    }
    let res = remote
        .store
        .get(path)
        .await
        .map_err(|e| remote.err(&format!("reading {path}"), e))?;
    remote.counters.gets.fetch_add(1, Ordering::Relaxed);
    if res.meta.size > len {
        return Err(bad(format!(
            "{} bytes or more, its index says {len} (damaged pack)",
            res.meta.size
        )));
    }
    // The spool is a help, never a need: a file that cannot be written is dropped.
    let mut file = std::fs::create_dir_all(&spool.dir)
        .and_then(|()| std::fs::File::create(&part))
        .ok();
    let mut buf = Vec::with_capacity(res.meta.size as usize);
    let mut body = res.into_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| remote.err(&format!("reading {path}"), e))?;
        remote
            .counters
            .down
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if (buf.len() + chunk.len()) as u64 > len {
            drop(file);
            let _ = std::fs::remove_file(&part);
            return Err(bad(format!(
                "{} bytes or more, its index says {len} (damaged pack)",
                buf.len() + chunk.len()
            )));
        }
        buf.extend_from_slice(&chunk);
        if let Some(f) = &mut file
            && f.write_all(&chunk).is_err()
        {
            file = None;
            let _ = std::fs::remove_file(&part);
        }
    }
    if buf.len() as u64 != len {
        return Err(bad(format!(
            "{} bytes, its index says {len} (truncated pack)",
            buf.len()
        )));
    }
    if ObjectId::hash(&buf) != pack {
        drop(file);
        let _ = std::fs::remove_file(&part);
        return Err(bad("content does not match its name (damaged pack)".into()));
    }
    if file.is_some() {
        spool
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(part);
    }
    Ok(buf.into())
}
