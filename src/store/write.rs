//! Writing: records appended to per-thread packs with positioned writes,
//! compressed where it pays, made durable and indexed in one redb transaction by
//! `flush`; `.dsv/pack-writes` records what a crash may have left half-written.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableTable;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::storage::Storage;

use super::pack::{self, Codec, RecordHeader, Repr};
use super::*;

pub(super) struct PackWriter {
    pub(super) n: u32,
    pub(super) file: Arc<File>,
    pub(super) path: PathBuf,
    /// End of the space reserved so far; records are written with positioned writes
    /// outside the slot lock.
    pub(super) len: u64,
    /// Offset up to which writeback has been started (see `start_writeback`).
    pub(super) kicked: u64,
}

/// Bytes a pack grows by before dsv asks the kernel to start writing them out.
pub(super) const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;
/// Largest page-cache folio (the PMD size on x86-64); see `append_record`.
pub(super) const FOLIO_MAX: u64 = 2 * 1024 * 1024;

/// One pack being filled. There is one slot per worker thread: each thread
/// appends to its own pack, so writers never queue on one file's inode lock.
#[derive(Default)]
pub(super) struct WriterState {
    pub(super) current: Option<PackWriter>,
    /// Filled packs still to sync at the next flush (with `core.fsync = false`, where
    /// that is only a fault point; durable packs go to [`PackIo::sync`] when filled).
    pub(super) to_sync: Vec<(Arc<File>, PathBuf)>,
}

/// The background threads of [`bgio`]: one starts writeback of written ranges, one
/// fsyncs filled packs. Two threads, because an fsync waits for the device's cache
/// flush (up to a second here) and writeback must keep the disk busy meanwhile.
pub(super) struct PackIo {
    pub(super) kick: bgio::Worker<(Arc<File>, u64, u64)>,
    pub(super) sync: bgio::Worker<(Arc<File>, PathBuf)>,
}

impl PackIo {
    pub(super) fn new(storage: &Arc<dyn Storage>) -> PackIo {
        let (k, s) = (storage.clone(), storage.clone());
        PackIo {
            kick: bgio::Worker::new(
                "dsv-writeback",
                move |(f, off, len): (Arc<File>, u64, u64)| {
                    k.start_writeback(&f, off, len);
                    Ok(())
                },
            ),
            sync: bgio::Worker::new("dsv-packsync", move |(f, path): (Arc<File>, PathBuf)| {
                s.sync(&f, &path)
            }),
        }
    }
}

/// Hands out pack numbers to the writer slots.
#[derive(Default)]
pub(super) struct PackAlloc {
    /// Read from the database on first use.
    pub(super) ready: bool,
    /// The last committed pack, if it has room to grow (given to the first slot that asks).
    pub(super) reusable: Option<(u32, u64)>,
    /// The next unused pack number.
    pub(super) next: u32,
}

/// Shannon entropy (bits per byte) of up to 2 KiB sampled from the start and middle.
pub(super) fn sample_entropy(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    let head = &data[..data.len().min(1024)];
    let mid_start = data.len() / 2;
    let mid = &data[mid_start..data.len().min(mid_start + 1024)];
    for &b in head.iter().chain(mid) {
        counts[b as usize] += 1;
    }
    let n = (head.len() + mid.len()) as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Objects shorter than this are never compressed.
pub const SMALL_RAW: usize = 512;

pub(super) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    // Small objects (label files, configs) stay raw: zstd saves a few dozen bytes on
    // them, but building its tables costs more to read back than parsing the file,
    // and statistics read every label file of a dataset.
    if data.len() < SMALL_RAW {
        return None;
    }
    // Photos, compressed point clouds and random data look like noise: trying zstd on
    // them costs more than hashing. A sample's byte entropy tells us cheaply.
    if data.len() >= 1024 && sample_entropy(data) > 7.5 {
        return None;
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        let out = c.as_mut()?.compress(data).ok()?;
        // Keep compression only when it saves at least ~3%: jpg/png and random data stay raw.
        (out.len() < data.len() - data.len() / 32).then_some(out)
    })
}

/// Parses `.dsv/pack-writes`; `None` when it is missing or malformed (no proof).
pub(super) fn read_pack_writes(path: &Path) -> Option<std::collections::BTreeMap<u32, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != PACK_WRITES_HEADER {
        return None;
    }
    let mut out = std::collections::BTreeMap::new();
    for line in lines {
        let (n, from) = line.split_once(' ')?;
        out.insert(n.parse().ok()?, from.parse().ok()?);
    }
    Some(out)
}

impl ObjectStore {
    /// Compares the pack files with the `packs` table. A pack longer than its
    /// committed length, or one the table does not list, is garbage only if
    /// `.dsv/pack-writes` says a writer started there from exactly the length
    /// the table still records (a writer that committed would have moved the
    /// table on); such garbage is cut off or removed. Anything else means the
    /// database is older than its packs: with `strict` that is an error asking
    /// for `dsv repair` (and nothing is touched), otherwise it is left alone.
    /// The record of writes is removed once everything is settled. A read-only
    /// handle only checks.
    pub fn settle_packs(&self, strict: bool) -> Result<()> {
        let committed: std::collections::BTreeMap<u32, u64> = self.db.guard(|| {
            let tx = self.db.read()?;
            let table = match tx.open_table(PACKS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Default::default()),
                Err(e) => return Err(self.db.err(e)),
            };
            let mut out = std::collections::BTreeMap::new();
            for item in table.iter().map_err(|e| self.db.err(e))? {
                let (k, v) = item.map_err(|e| self.db.err(e))?;
                out.insert(k.value(), v.value());
            }
            Ok(out)
        })?;
        let marker_exists = self.writes_path.exists();
        let marker = read_pack_writes(&self.writes_path);
        let rd = match std::fs::read_dir(&self.packs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("reading", &self.packs_dir, e)),
        };
        let mut garbage: Vec<(PathBuf, u32, u64)> = Vec::new();
        let mut unsettled = false;
        for ent in rd {
            let ent = ent.ctx("reading", &self.packs_dir)?;
            let name = ent.file_name();
            let Some(n) = name.to_str().and_then(pack::parse_pack_name) else {
                continue;
            };
            let path = ent.path();
            let actual = std::fs::metadata(&path).ctx("reading", &path)?.len();
            let known = committed.get(&n).copied();
            let c = known.unwrap_or(0);
            // A pack the table knows and at least as long: nothing to do here
            // (a short one is damage that fsck reports and writers refuse).
            if known.is_some() && actual <= c {
                continue;
            }
            // Nothing past the magic: no record can be lost.
            let empty = known.is_none() && actual <= pack::PACK_MAGIC.len() as u64;
            if empty || marker.as_ref().is_some_and(|m| m.get(&n) == Some(&c)) {
                garbage.push((path, n, c));
                continue;
            }
            if strict {
                let reason = match known {
                    Some(c) => format!(
                        "the database records {c} bytes of {} but the pack has {actual}: it is older than its packs",
                        path.display()
                    ),
                    None => format!(
                        "the database does not know {} ({actual} bytes): it is older than its packs",
                        path.display()
                    ),
                };
                return Err(Error::NeedsRepair {
                    path: self.db.path().to_path_buf(),
                    reason,
                });
            }
            unsettled = true;
        }
        if !self.db.writable() {
            return Ok(());
        }
        for (path, n, c) in garbage {
            if c == 0 && !committed.contains_key(&n) {
                self.storage.remove_file(&path)?;
            } else {
                let f = self.storage.open_write(&path)?;
                self.storage.set_len(&f, &path, c)?;
            }
            self.readers.lock().map_err(poisoned)?.remove(&n);
        }
        if marker_exists && !unsettled {
            self.storage.remove_file(&self.writes_path)?;
        }
        Ok(())
    }

    /// Notes that a commit to the database failed (see `uncertain`).
    pub(crate) fn mark_uncertain(&self) {
        self.uncertain
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Records, before any byte goes past it, that pack `n` may be written from
    /// `from` (its committed length; 0 for a pack the database does not list).
    /// gc also records the packs it is about to retire, with 0.
    pub(crate) fn note_write(&self, n: u32, from: u64) -> Result<()> {
        let mut writes = self.writes.lock().map_err(poisoned)?;
        if writes.get(&n) == Some(&from) {
            return Ok(());
        }
        writes.insert(n, from);
        self.save_writes(&writes)
    }

    pub(super) fn save_writes(&self, writes: &std::collections::BTreeMap<u32, u64>) -> Result<()> {
        let mut text = format!("{PACK_WRITES_HEADER}\n");
        for (n, from) in writes {
            text.push_str(&format!("{n} {from}\n"));
        }
        // Durable before the caller writes past the lengths it names: a power cut
        // may otherwise keep a pack's tail and lose its proof, and the store would
        // refuse to write until `dsv repair`. The file and the directory entry the
        // rename makes are both synced (a few per write command: one per pack
        // opened, one per commit to the database). Without `core.fsync` the packs
        // themselves are not synced, so neither is their record.
        let durable = self.fsync.load(std::sync::atomic::Ordering::Relaxed);
        let tmp = crate::storage::temp_name(&self.writes_path);
        let f = self.storage.open_write(&tmp)?;
        let res = self
            .storage
            .write_at(&f, &tmp, 0, text.as_bytes())
            .and_then(|_| match durable {
                true => self.storage.sync(&f, &tmp),
                false => Ok(()),
            })
            .and_then(|_| self.storage.rename(&tmp, &self.writes_path));
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else if durable && let Some(dir) = self.writes_path.parent() {
            crate::storage::sync_dir(dir);
        }
        res
    }

    pub(super) fn sync_pack(&self, file: &File, path: &Path) -> Result<()> {
        if self.fsync.load(std::sync::atomic::Ordering::Relaxed) {
            self.storage.sync(file, path)
        } else {
            self.storage.fault_point()
        }
    }

    /// Stores bytes (if new) and returns their id.
    pub fn put(&self, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::hash(bytes);
        if !self.contains(&id)? {
            self.write_record(id, Repr::Raw, bytes)?;
        }
        Ok(id)
    }

    /// Stores a commit object and records it in the commit table.
    pub fn put_commit(&self, bytes: &[u8]) -> Result<ObjectId> {
        let id = self.put(bytes)?;
        self.pending_commits.lock().map_err(poisoned)?.push(id);
        Ok(id)
    }

    /// Stores a concatenation record under `id` (the hash of the concatenated bytes).
    pub(crate) fn put_concat(&self, id: ObjectId, children: &[(ObjectId, u64)]) -> Result<()> {
        if !self.contains(&id)? {
            self.write_record(id, Repr::Concat, &pack::encode_concat(children))?;
        }
        Ok(())
    }

    /// Stores bytes whose id the caller already computed.
    pub(crate) fn put_known(&self, id: ObjectId, bytes: &[u8]) -> Result<bool> {
        if self.contains(&id)? {
            return Ok(false);
        }
        self.write_record(id, Repr::Raw, bytes)?;
        Ok(true)
    }

    pub(super) fn write_record(&self, id: ObjectId, repr: Repr, raw: &[u8]) -> Result<()> {
        let raw_len = u32::try_from(raw.len()).map_err(|_| StoreError::TooLarge(id.short()))?;
        let compressed = compress(raw);
        let (codec, payload) = match &compressed {
            Some(c) => (Codec::Zstd, c.as_slice()),
            None => (Codec::None, raw),
        };
        let header = RecordHeader {
            repr,
            codec,
            id,
            stored_len: payload.len() as u32,
            raw_len,
        };
        let record_len = pack::RECORD_HEADER as u64 + payload.len() as u64;
        let mut buf = Vec::with_capacity(record_len as usize);
        buf.extend_from_slice(&header.encode());
        buf.extend_from_slice(payload);
        self.append_record(id, &buf)
    }

    /// Stores a whole record (header and payload) received from elsewhere, byte for
    /// byte. The caller must have verified that the record's content hashes to its
    /// id (remote fetch does, before calling this); `commit` also lists it as a commit.
    /// Like every write it becomes durable at the next [`ObjectStore::flush`].
    pub fn put_verified_record(&self, record: &[u8], commit: bool) -> Result<ObjectId> {
        let header = RecordHeader::decode(record).map_err(Error::Corrupt)?;
        if pack::RECORD_HEADER + header.stored_len as usize != record.len() {
            return Err(Error::CorruptObject {
                id: header.id,
                reason: "record length does not match its header".into(),
            });
        }
        if !self.contains(&header.id)? {
            self.append_record(header.id, record)?;
        }
        if commit {
            self.pending_commits
                .lock()
                .map_err(poisoned)?
                .push(header.id);
        }
        Ok(header.id)
    }

    /// Appends one encoded record to this thread's pack.
    pub(super) fn append_record(&self, id: ObjectId, buf: &[u8]) -> Result<()> {
        let record_len = buf.len() as u64;
        // Reserve space under the lock; write outside it.
        let durable = self.fsync.load(std::sync::atomic::Ordering::Relaxed);
        let (file, path, loc) = {
            let slot = rayon::current_thread_index().unwrap_or(0) % self.writers.len();
            let mut state = self.writers[slot].lock().map_err(poisoned)?;
            let mut pending = self.pending.lock().map_err(poisoned)?;
            // Another thread may have stored the same id while we compressed.
            if pending.contains_key(&id) {
                return Ok(());
            }
            if state.current.as_ref().is_some_and(|w| {
                w.len > pack::PACK_MAGIC.len() as u64 && w.len + record_len > PACK_TARGET_SIZE
            }) {
                let w = state.current.take().expect("checked above");
                if durable {
                    // Its last records were written by this slot's thread already:
                    // write the rest out and fsync it while hashing goes on.
                    self.io
                        .kick
                        .submit((w.file.clone(), w.kicked, w.len - w.kicked));
                    self.io.sync.submit((w.file, w.path));
                } else {
                    state.to_sync.push((w.file, w.path));
                }
            }
            if state.current.is_none() {
                state.current = Some(self.open_writer()?);
            }
            let w = state.current.as_mut().expect("opened above");
            // Kick only whole folios at least one folio behind the end of the space
            // handed out: `add` may run two threads per slot, so the last records
            // may still be being written, and writeback locks the folios it writes
            // (ext4 uses folios of up to 2 MiB), which would stall the thread that
            // appends to one. The fsync of the filled pack covers the rest.
            let behind = (w.len & !(FOLIO_MAX - 1)).saturating_sub(FOLIO_MAX);
            if durable && behind >= w.kicked + WRITEBACK_STEP {
                self.io
                    .kick
                    .submit((w.file.clone(), w.kicked, behind - w.kicked));
                w.kicked = behind;
            }
            let offset = u32::try_from(w.len)
                .map_err(|_| Error::Corrupt(format!("pack {} exceeds 4 GiB", w.path.display())))?;
            let loc = Location {
                pack: w.n,
                offset,
                len: record_len as u32,
            };
            // Recorded before the space is taken: a failure leaves no hole in the pack.
            pending.insert(id, loc)?;
            w.len += record_len;
            (w.file.clone(), w.path.clone(), loc)
        };
        if let Err(e) = self.storage.write_at(&file, &path, loc.offset as u64, buf) {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(e);
        }
        if let Ok(mut s) = self.stats.lock() {
            s.objects += 1;
            s.bytes += record_len;
        }
        Ok(())
    }

    /// Opens the pack to append to: the last one if it has room, else a new one.
    /// Torn tails were settled when the store was opened (see
    /// [`settle_packs`](Self::settle_packs)); a pack that is not exactly its
    /// committed length now is refused, never cut.
    pub(super) fn open_writer(&self) -> Result<PackWriter> {
        self.storage.create_dir_all(&self.packs_dir)?;
        let (n, committed) = {
            let mut alloc = self.alloc.lock().map_err(poisoned)?;
            if !alloc.ready {
                let last = self.db.guard(|| {
                    let tx = self.db.read()?;
                    let packs = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
                    let last = packs
                        .last()
                        .map_err(|e| self.db.err(e))?
                        .map(|(k, v)| (k.value(), v.value()));
                    Ok(last)
                })?;
                alloc.next = last.map_or(1, |(n, _)| n + 1);
                alloc.reusable = last.filter(|(_, len)| *len < PACK_TARGET_SIZE / 2);
                alloc.ready = true;
            }
            match alloc.reusable.take() {
                Some(r) => r,
                None => {
                    alloc.next += 1;
                    (alloc.next - 1, 0)
                }
            }
        };
        let path = pack::pack_path(&self.packs_dir, n);
        let actual = match std::fs::metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        if actual.unwrap_or(0) != committed {
            return Err(Error::Corrupt(format!(
                "{} is {} bytes but {} records {committed}; nothing was written (run 'dsv fsck')",
                path.display(),
                actual.unwrap_or(0),
                self.db.path().display()
            )));
        }
        if committed != 0 && actual.is_none() {
            return Err(Error::Corrupt(format!(
                "{} is missing but {} records {committed} bytes of it; nothing was written (run 'dsv fsck')",
                path.display(),
                self.db.path().display()
            )));
        }
        // Recorded before the first byte goes past the committed length.
        self.note_write(n, committed)?;
        let file = self.storage.open_write(&path)?;
        let mut len = committed;
        if committed == 0 {
            self.storage.write_at(&file, &path, 0, pack::PACK_MAGIC)?;
            len = pack::PACK_MAGIC.len() as u64;
        }
        self.readers.lock().map_err(poisoned)?.remove(&n);
        Ok(PackWriter {
            n,
            file: Arc::new(file),
            path,
            len,
            kicked: len,
        })
    }

    /// Makes everything written so far durable: fsync the packs, then commit the
    /// index entries in one redb transaction. Until this returns, a crash leaves
    /// only an unreferenced pack tail.
    pub fn flush(&self) -> Result<()> {
        let mut guards = Vec::with_capacity(self.writers.len());
        for w in &self.writers {
            guards.push(w.lock().map_err(poisoned)?);
        }
        let mut pending = self.pending.lock().map_err(poisoned)?;
        let mut commits = self.pending_commits.lock().map_err(poisoned)?;
        if pending.is_empty() && commits.is_empty() {
            return Ok(());
        }
        let mut pack_lens: HashMap<u32, u64> = HashMap::new();
        let mut to_sync: Vec<(Arc<File>, PathBuf)> = Vec::new();
        for guard in guards.iter_mut() {
            to_sync.append(&mut guard.to_sync);
            if let Some(w) = guard.current.as_ref() {
                to_sync.push((w.file.clone(), w.path.clone()));
                pack_lens.insert(w.n, w.len);
            }
        }
        for (_, loc) in pending.iter() {
            let end = loc.offset as u64 + loc.len as u64;
            let e = pack_lens.entry(loc.pack).or_insert(end);
            *e = (*e).max(end);
        }
        // The fsyncs wait for the disk (mostly its cache flush); building the
        // transaction is CPU work. Both run at once, and the transaction is committed
        // only after every pack it points into is durable.
        let (synced, tx) = std::thread::scope(|scope| {
            let syncing = scope.spawn(|| -> Result<()> {
                for (f, path) in &to_sync {
                    self.sync_pack(f, path)?;
                }
                // Filled packs handed to the background thread.
                self.io.sync.wait()
            });
            let tx = self
                .db
                .guard(|| self.index_transaction(&pending, &pack_lens, &commits));
            let synced = syncing
                .join()
                .unwrap_or_else(|_| Err(Error::Corrupt("pack sync thread panicked".into())));
            (synced, tx)
        });
        let tx = match (synced, tx) {
            (Ok(()), Ok(tx)) => tx,
            (Err(e), tx) => {
                if let Ok(tx) = tx {
                    let _ = tx.abort();
                }
                return Err(e);
            }
            (Ok(()), Err(e)) => return Err(e),
        };
        if let Err(e) = self.db.guard(|| tx.commit().map_err(|e| self.db.err(e))) {
            self.mark_uncertain();
            return Err(e);
        }
        pending.clear();
        commits.clear();
        self.drop_snapshot();
        // The committed lengths moved on: garbage a crash leaves now starts there.
        let mut writes = self.writes.lock().map_err(poisoned)?;
        let mut changed = false;
        for (n, len) in &pack_lens {
            if let Some(from) = writes.get_mut(n)
                && *from < *len
            {
                *from = *len;
                changed = true;
            }
        }
        if changed {
            self.save_writes(&writes)?;
        }
        Ok(())
    }

    /// A write transaction (not yet committed) recording `pending` locations, the
    /// packs' new committed lengths and the new commits.
    pub(super) fn index_transaction(
        &self,
        pending: &super::pending::Pending,
        pack_lens: &HashMap<u32, u64>,
        commits: &[ObjectId],
    ) -> Result<redb::WriteTransaction> {
        let tx = self.db.write()?;
        {
            let mut objects = tx.open_table(OBJECTS).map_err(|e| self.db.err(e))?;
            for (id, loc) in pending.sorted() {
                objects
                    .insert(&id.0, (loc.pack, loc.offset, loc.len))
                    .map_err(|e| self.db.err(e))?;
            }
            let mut packs = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
            for (n, len) in pack_lens {
                let old = packs
                    .get(n)
                    .map_err(|e| self.db.err(e))?
                    .map(|v| v.value())
                    .unwrap_or(0);
                packs.insert(n, old.max(*len)).map_err(|e| self.db.err(e))?;
            }
            let mut ct = tx.open_table(COMMITS).map_err(|e| self.db.err(e))?;
            for id in commits {
                ct.insert(&id.0, ()).map_err(|e| self.db.err(e))?;
            }
        }
        Ok(tx)
    }

    /// Closes the current pack writer so the next write starts a fresh pack.
    pub(crate) fn close_writer(&self) -> Result<()> {
        self.io.sync.wait()?;
        for slot in &self.writers {
            let mut guard = slot.lock().map_err(poisoned)?;
            for (f, path) in guard.to_sync.drain(..) {
                self.storage.sync(&f, &path)?;
            }
            if let Some(w) = guard.current.take() {
                self.storage.sync(&w.file, &w.path)?;
            }
        }
        // Whoever writes packs next (gc) numbers them from the database again.
        *self.alloc.lock().map_err(poisoned)? = PackAlloc::default();
        Ok(())
    }
}

/// What the store refuses to write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An object of 4 GiB or more (a pack record holds its length in 32 bits).
    #[error("object {0} is too large for one record")]
    TooLarge(String),
}

impl crate::error::ModuleError for StoreError {}

crate::error::module_error!(StoreError);
