//! Reading: locating records through the redb index (a snapshot per thread),
//! reading and verifying them from the packs, one at a time or many in pack
//! order, and reassembling chunked files.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use redb::ReadableTableMetadata;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;

use super::pack::{self, RecordHeader, Repr};
use super::*;

/// A child of concatenation `id` has the length its list gives.
pub(super) fn check_child_len(id: &ObjectId, child: &ObjectId, n: u64, len: u64) -> Result<()> {
    if n == len {
        return Ok(());
    }
    Err(Error::CorruptObject {
        id: *id,
        reason: format!("child {} has {n} bytes, list says {len}", child.short()),
    })
}

/// Records at most this far apart are fetched with one read.
const GAP: u64 = 64 * 1024;
/// Most bytes one read of nearby records spans.
const RUN: u64 = 4 * 1024 * 1024;

thread_local! {
    /// A reading thread's buffer for runs of records (see `read_located`).
    static RUN_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl ObjectStore {
    /// Looks up where an object is stored.
    pub fn locate(&self, id: &ObjectId) -> Result<Option<Location>> {
        if let Some(loc) = self.pending.lock().map_err(poisoned)?.get(id) {
            return Ok(Some(loc));
        }
        let table = self.objects_snapshot()?;
        let Some(table) = table else { return Ok(None) };
        self.db.guard(|| {
            let v = table.get(&id.0).map_err(|e| self.db.err(e))?;
            Ok(v.map(|g| {
                let (pack, offset, len) = g.value();
                Location { pack, offset, len }
            }))
        })
    }

    pub(super) fn objects_snapshot(&self) -> Result<Option<Arc<ObjectsTable>>> {
        let mut snap = self.snapshot.lock().map_err(poisoned)?;
        if let Some(t) = snap.as_ref() {
            return Ok(Some(t.clone()));
        }
        let table = self.db.guard(|| {
            let tx = self.db.read()?;
            match tx.open_table(OBJECTS_BY_REF) {
                Ok(t) => Ok(Some(Arc::new(t))),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(self.db.err(e)),
            }
        })?;
        let Some(table) = table else { return Ok(None) };
        *snap = Some(table.clone());
        Ok(Some(table))
    }

    pub(super) fn drop_snapshot(&self) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = None;
        }
    }

    /// Whether the store holds an object.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.locate(id)?.is_some())
    }

    pub(super) fn reader(&self, pack: u32, id: &ObjectId) -> Result<(Arc<File>, PathBuf)> {
        let path = pack::pack_path(&self.packs_dir, pack);
        let mut readers = self.readers.lock().map_err(poisoned)?;
        if let Some(f) = readers.get(&pack) {
            return Ok((f.clone(), path));
        }
        let f = Arc::new(File::open(&path).map_err(|source| Error::PackUnreadable {
            id: *id,
            pack: path.clone(),
            source,
        })?);
        readers.insert(pack, f.clone());
        Ok((f, path))
    }

    /// The length of an object's content as its record gives it (a raw record's
    /// header, or the sum of a concatenation's list), without reading or hashing the
    /// content: what the sizes a tree claims are checked against. `None` when the
    /// object is not stored here (a partial clone fetches it when it is read).
    pub fn content_len(&self, id: &ObjectId) -> Result<Option<u64>> {
        let Some((header, _)) = self.record_header(id)? else {
            return Ok(None);
        };
        match header.repr {
            Repr::Raw => Ok(Some(u64::from(header.raw_len))),
            Repr::Concat => self
                .children(id)?
                .iter()
                .try_fold(0u64, |acc, (_, len)| acc.checked_add(*len))
                .map(Some)
                .ok_or_else(|| self.corrupt(id, "concatenation lengths overflow".into())),
        }
    }

    /// The header of `id`'s record, read alone (not the payload), and the
    /// record's stored length (header and payload, as [`Self::raw_record`]
    /// gives it). `None` when the object is not stored here.
    pub fn record_header(&self, id: &ObjectId) -> Result<Option<(RecordHeader, u64)>> {
        let Some(loc) = self.locate(id)? else {
            return Ok(None);
        };
        let (file, path) = self.reader(loc.pack, id)?;
        let mut h = [0u8; pack::RECORD_HEADER];
        if (loc.len as usize) < h.len() {
            return Err(self.corrupt(id, "record shorter than its header".into()));
        }
        std::os::unix::fs::FileExt::read_exact_at(file.as_ref(), &mut h, loc.offset as u64)
            .map_err(|source| Error::PackUnreadable {
                id: *id,
                pack: path.clone(),
                source,
            })?;
        let header = RecordHeader::decode(&h).map_err(|reason| self.corrupt(id, reason))?;
        if header.id != *id {
            return Err(self.corrupt(id, format!("record holds {}", header.id)));
        }
        Ok(Some((header, u64::from(loc.len))))
    }

    /// Reads and decodes the record for `id` without resolving concatenations.
    pub fn read_record(&self, id: &ObjectId) -> Result<(RecordHeader, Vec<u8>)> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let loc = self.locate(id)?.ok_or(Error::MissingObject(*id))?;
        let (file, path) = self.reader(loc.pack, id)?;
        let (header, payload) = pack::read_record(&file, &path, loc.offset as u64, loc.len)
            .map_err(|e| match e {
                Error::Corrupt(reason) => Error::CorruptObject { id: *id, reason },
                Error::Io { source, .. } => Error::PackUnreadable {
                    id: *id,
                    pack: path.clone(),
                    source,
                },
                e => e,
            })?;
        if header.id != *id {
            return Err(Error::CorruptObject {
                id: *id,
                reason: format!(
                    "record at {}:{} holds {}",
                    path.display(),
                    loc.offset,
                    header.id
                ),
            });
        }
        let bytes =
            pack::decode_payload(&header, payload).map_err(|reason| self.corrupt(id, reason))?;
        Ok((header, bytes))
    }

    /// Locations of `want` (sorted ids, with their positions in `ids`) from an
    /// ordered pass over `range` of the objects table.
    pub(super) fn merge_join(
        &self,
        range: std::result::Result<ObjectsRange<'_>, redb::StorageError>,
        want: &[(u64, usize)],
        ids: &[ObjectId],
    ) -> Result<Vec<(usize, Location)>> {
        let mut out = Vec::with_capacity(want.len());
        let mut next = want.iter().peekable();
        for item in range.map_err(|e| self.db.err(e))? {
            if next.peek().is_none() {
                break;
            }
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            let key: &[u8; 32] = k.value();
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&key[..8]);
            let prefix = u64::from_be_bytes(prefix);
            while let Some(&&(p, j)) = next.peek() {
                // The integer prefix settles almost every comparison; the full id
                // only breaks a tie on it.
                match p.cmp(&prefix).then_with(|| ids[j].0.cmp(key)) {
                    std::cmp::Ordering::Less => {
                        next.next();
                    }
                    std::cmp::Ordering::Equal => {
                        let (pack, offset, len) = v.value();
                        out.push((j, Location { pack, offset, len }));
                        next.next();
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
        }
        Ok(out)
    }

    /// Reads many small objects at once, each verified against its id; `out[i]` is
    /// the content of `ids[i]`. Locations come from one ordered pass over the
    /// objects table when many ids are asked for, and records lying close together
    /// in a pack are fetched with one read, so a million label files cost a few
    /// hundred large reads instead of a million lookups and syscalls.
    pub fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
        self.get_many_with_cow(ids, |_, bytes| Ok(bytes.into_owned()))
    }

    /// [`get_many`](Self::get_many), handing each object's verified bytes to `f`
    /// (with its position in `ids`) on the reading thread: nothing is copied out
    /// of the pack reads, and `f` runs in parallel with the reading. `out[i]` is
    /// `f(i, content of ids[i])`.
    pub fn get_many_with<T, F>(&self, ids: &[ObjectId], f: F) -> Result<Vec<T>>
    where
        T: Send + Default + Clone,
        F: Fn(usize, &[u8]) -> Result<T> + Sync,
    {
        self.get_many_with_cow(ids, |i, bytes| f(i, &bytes))
    }

    /// [`get_many_with`](Self::get_many_with), handing `f` the bytes as a
    /// [`Cow`]: borrowed from the pack read for small objects, owned where
    /// they were decompressed or assembled from chunks (a large file), so
    /// that `f` can drop a large file's bytes before it is done with it.
    pub fn get_many_with_cow<T, F>(&self, ids: &[ObjectId], f: F) -> Result<Vec<T>>
    where
        T: Send + Default + Clone,
        F: Fn(usize, Cow<'_, [u8]>) -> Result<T> + Sync,
    {
        let mut t = crate::trace::Phases::start("store.get_many");
        let mut locs: Vec<Option<Location>> = vec![None; ids.len()];
        {
            let pending = self.pending.lock().map_err(poisoned)?;
            for (i, id) in ids.iter().enumerate() {
                locs[i] = pending.get(id);
            }
        }
        if let Some(table) = self.objects_snapshot()? {
            self.db.guard(|| self.locate_many(&table, ids, &mut locs))?;
        }
        t.mark("locate");
        self.read_located(ids, &locs, f, t)
    }

    /// Fills the unset `locs[i]` with the locations of `ids[i]` from the objects table.
    pub(super) fn locate_many(
        &self,
        table: &ObjectsTable,
        ids: &[ObjectId],
        locs: &mut [Option<Location>],
    ) -> Result<()> {
        use rayon::prelude::*;
        {
            let total = table.len().map_err(|e| self.db.err(e))?;
            if (ids.len() as u64) * 8 >= total {
                // Merge join of the sorted ids with the table's sorted keys, in two
                // key ranges at once. Sorting on the first 8 bytes as an integer
                // makes most comparisons one instruction instead of a memcmp.
                let mut order: Vec<(u64, usize)> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (id.prefix_u64(), i))
                    .collect();
                order.par_sort_unstable_by(|a, b| {
                    a.0.cmp(&b.0).then_with(|| ids[a.1].cmp(&ids[b.1]))
                });
                let mut mid = order.len() / 2;
                while mid > 0 && ids[order[mid - 1].1] == ids[order[mid].1] {
                    mid -= 1;
                }
                let (lo, hi) = order.split_at(mid);
                let (a, b) = match hi.first() {
                    Some(&(_, split)) => {
                        let split = ids[split].0;
                        rayon::join(
                            || self.merge_join(table.range::<&[u8; 32]>(..&split), lo, ids),
                            || self.merge_join(table.range::<&[u8; 32]>(&split..), hi, ids),
                        )
                    }
                    None => (Ok(Vec::new()), Ok(Vec::new())),
                };
                for (i, loc) in a?.into_iter().chain(b?) {
                    if locs[i].is_none() {
                        locs[i] = Some(loc);
                    }
                }
            } else {
                for (i, id) in ids.iter().enumerate() {
                    if locs[i].is_none()
                        && let Some(v) = table.get(&id.0).map_err(|e| self.db.err(e))?
                    {
                        let (pack, offset, len) = v.value();
                        locs[i] = Some(Location { pack, offset, len });
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn read_located<T, F>(
        &self,
        ids: &[ObjectId],
        locs: &[Option<Location>],
        f: F,
        mut t: crate::trace::Phases,
    ) -> Result<Vec<T>>
    where
        T: Send + Default + Clone,
        F: Fn(usize, Cow<'_, [u8]>) -> Result<T> + Sync,
    {
        use rayon::prelude::*;
        // Runs of nearby records, in pack order.
        let mut by_pos: Vec<usize> = (0..ids.len()).collect();
        for (i, l) in locs.iter().enumerate() {
            if l.is_none() {
                return Err(Error::MissingObject(ids[i]));
            }
        }
        by_pos.sort_unstable_by_key(|&i| locs[i].map(|l| (l.pack, l.offset)));
        let mut runs: Vec<(u32, u64, u64, Vec<usize>)> = Vec::new();
        for &i in &by_pos {
            let Some(l) = locs[i] else { continue };
            let (start, end) = (l.offset as u64, l.offset as u64 + l.len as u64);
            match runs.last_mut() {
                Some((p, s, e, members))
                    if *p == l.pack && start <= *e + GAP && end.max(*e) - *s <= RUN =>
                {
                    *e = (*e).max(end);
                    members.push(i);
                }
                _ => runs.push((l.pack, start, end, vec![i])),
            }
        }
        self.reads
            .fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
        t.mark("runs");
        type Fetched<T> = Result<Vec<(usize, T)>>;
        let read = |run: &(u32, u64, u64, Vec<usize>)| {
            // The thread's read buffer, reused from run to run and from call to
            // call: a fresh one per run had the kernel fault in and zero it, and
            // resize zero it again (a sixth of reading a batch of 10 KiB frames).
            // Taken out while in use, so an `f` that reads again is safe.
            let mut buf = RUN_BUF.take();
            let r = self.read_run(ids, locs, &f, &mut buf, run);
            // Kept for the thread's next run unless a huge record made it
            // larger than a run: at most a few MiB per reading thread.
            if buf.capacity() <= (RUN + GAP) as usize {
                RUN_BUF.set(buf);
            }
            r
        };
        // One run (a single frame read, a small batch) is read on this thread:
        // handing it to the pool costs two thread wake-ups per call.
        let results: Vec<Fetched<T>> = if runs.len() == 1 {
            runs.iter().map(read).collect()
        } else {
            runs.par_iter().map(read).collect()
        };
        t.mark("read");
        let mut out: Vec<T> = vec![T::default(); ids.len()];
        for r in results {
            for (i, v) in r? {
                out[i] = v;
            }
        }
        t.mark("collect");
        Ok(out)
    }

    /// Reads one run of nearby records (pack, `start..end`, and the members'
    /// positions in `ids`) with one read into `buf`, each record verified against
    /// its id and handed to `f`.
    fn read_run<T, F>(
        &self,
        ids: &[ObjectId],
        locs: &[Option<Location>],
        f: &F,
        buf: &mut Vec<u8>,
        run: &(u32, u64, u64, Vec<usize>),
    ) -> Result<Vec<(usize, T)>>
    where
        F: Fn(usize, Cow<'_, [u8]>) -> Result<T>,
    {
        let (pack_n, start, end, members) = run;
        let (file, path) = self.reader(*pack_n, &ids[members[0]])?;
        // The buffer only grows (zeroed once): read_exact_at fills the
        // run's part, and nothing past it is looked at.
        let n = (end - start) as usize;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        let buf = &mut buf[..n];
        std::os::unix::fs::FileExt::read_exact_at(file.as_ref(), buf, *start).map_err(
            |source| Error::PackUnreadable {
                id: ids[members[0]],
                pack: path.clone(),
                source,
            },
        )?;
        let mut out = Vec::with_capacity(members.len());
        for &i in members {
            let id = ids[i];
            let Some(l) = locs[i] else { continue };
            let from = (l.offset as u64 - start) as usize;
            let rec = buf
                .get(from..from + l.len as usize)
                .ok_or_else(|| Error::CorruptObject {
                    id,
                    reason: "record outside the pack read".into(),
                })?;
            let header =
                RecordHeader::decode(rec).map_err(|reason| Error::CorruptObject { id, reason })?;
            if header.id != id || pack::RECORD_HEADER + header.stored_len as usize != rec.len() {
                return Err(Error::CorruptObject {
                    id,
                    reason: format!("record at {}:{} does not match", path.display(), l.offset),
                });
            }
            let payload = &rec[pack::RECORD_HEADER..];
            let bytes: Cow<'_, [u8]> = match (header.repr, header.codec) {
                (Repr::Raw, pack::Codec::None) => Cow::Borrowed(payload),
                (Repr::Raw, _) => Cow::Owned(
                    pack::decode_payload(&header, payload.to_vec())
                        .map_err(|reason| Error::CorruptObject { id, reason })?,
                ),
                // Large files: the ordinary path streams their chunks.
                (Repr::Concat, _) => Cow::Owned(self.get(&id)?),
            };
            if ObjectId::hash(&bytes) != id {
                return Err(Error::CorruptObject {
                    id,
                    reason: format!(
                        "content does not match its id (record at {}:{})",
                        path.display(),
                        l.offset
                    ),
                });
            }
            out.push((i, f(i, bytes)?));
        }
        Ok(out)
    }

    /// Reads an object's bytes whole, verifying the hash. For trees, commits and small files.
    pub fn get(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let (header, bytes) = self.read_record(id)?;
        let out = match header.repr {
            Repr::Raw => bytes,
            Repr::Concat => {
                // The chunks of a large file read and decompressed in parallel
                // (an 80 MB sidecar took a third of a second on one core), then
                // the whole checked against its id, as `read_into` does.
                let children =
                    pack::decode_concat(&bytes).map_err(|reason| self.corrupt(id, reason))?;
                // The chunks are read in parallel a few at a time and
                // appended to one buffer of the whole: the chunks and their
                // concatenation are never both held (twice a 200 MB label
                // file; issue 16, item 9). The room is only reserved (the
                // pages are touched as chunks arrive), so a list claiming more
                // than its chunks hold costs no memory before it is refused.
                let total = children
                    .iter()
                    .try_fold(0u64, |a, (_, len)| a.checked_add(*len))
                    .and_then(|t| usize::try_from(t).ok());
                let mut out = Vec::new();
                if let Some(t) = total {
                    let _ = out.try_reserve_exact(t);
                }
                self.append_concat(id, &children, &mut out, 0)?;
                out
            }
        };
        let mut hasher = blake3::Hasher::new();
        if out.len() >= 1 << 20 {
            hasher.update_rayon(&out);
        } else {
            hasher.update(&out);
        }
        if ObjectId(*hasher.finalize().as_bytes()) != *id {
            return Err(Error::CorruptObject {
                id: *id,
                reason: self.mismatch(id),
            });
        }
        Ok(out)
    }

    /// Appends the bytes of the children of concatenation `id` (listed with
    /// their lengths) to `out`, in order; `depth` is `id`'s nesting level
    /// (0 for a file's own list).
    ///
    /// A file's list names segments and each segment lists its chunks, so the
    /// segments are walked in turn and their chunks read in parallel batches,
    /// each appended to `out` as it comes: what is held beside `out` is one
    /// batch of chunks. (Reading each segment into a buffer of its own held
    /// several segments of up to 1,024 chunks at once, each grown by doubling,
    /// and took a 180 MB label file's check to 3.6 times the file; issue 16,
    /// item 9.) A child longer than its list says is refused as it arrives.
    fn append_concat(
        &self,
        id: &ObjectId,
        children: &[(ObjectId, u64)],
        out: &mut Vec<u8>,
        depth: u32,
    ) -> Result<()> {
        use rayon::prelude::*;
        // As `read_into_inner`: no record deeper than level 4 is read.
        if depth >= 4 && !children.is_empty() {
            return Err(Error::CorruptObject {
                id: *id,
                reason: "concatenation nested too deeply".into(),
            });
        }
        // A few chunks a thread per batch: the batch bounds the memory beside
        // `out` (a few MiB of MAX_CHUNK-sized chunks) and amortizes the
        // handing out to the threads.
        let batch = rayon::current_num_threads().max(1) * 4;
        for some in children.chunks(batch) {
            let records: Vec<(RecordHeader, Vec<u8>)> = some
                .par_iter()
                .map(|(child, _)| self.read_record(child))
                .collect::<Result<_>>()?;
            for ((child, len), (header, bytes)) in some.iter().zip(records) {
                let start = out.len();
                match header.repr {
                    Repr::Raw => {
                        check_child_len(id, child, bytes.len() as u64, *len)?;
                        out.extend_from_slice(&bytes);
                    }
                    Repr::Concat => {
                        let grand = pack::decode_concat(&bytes)
                            .map_err(|reason| self.corrupt(child, reason))?;
                        drop(bytes);
                        let claimed = grand.iter().try_fold(0u64, |a, (_, l)| a.checked_add(*l));
                        check_child_len(id, child, claimed.unwrap_or(u64::MAX), *len)?;
                        self.append_concat(child, &grand, out, depth + 1)?;
                    }
                }
                check_child_len(id, child, (out.len() - start) as u64, *len)?;
            }
        }
        Ok(())
    }

    /// Why `id`'s content is wrong, naming where its record is.
    pub(super) fn mismatch(&self, id: &ObjectId) -> String {
        self.with_place(id, "content does not match its id".into())
    }

    /// `reason`, followed by where `id`'s record is (when it can be located).
    pub(super) fn with_place(&self, id: &ObjectId, reason: String) -> String {
        match self.locate(id) {
            Ok(Some(l)) if !reason.contains(".dsvpack") => format!(
                "{reason} (record at {}:{})",
                pack::pack_path(&self.packs_dir, l.pack).display(),
                l.offset
            ),
            _ => reason,
        }
    }

    /// A corrupt-object error naming where the record is.
    pub(super) fn corrupt(&self, id: &ObjectId, reason: String) -> Error {
        Error::CorruptObject {
            id: *id,
            reason: self.with_place(id, reason),
        }
    }

    /// Streams an object's bytes into `w`, verifying the hash; returns the byte count.
    pub fn read_into(&self, id: &ObjectId, w: &mut dyn Write) -> Result<u64> {
        let mut hasher = blake3::Hasher::new();
        let n = self.read_into_inner(id, w, &mut hasher, 0)?;
        if ObjectId(*hasher.finalize().as_bytes()) != *id {
            return Err(Error::CorruptObject {
                id: *id,
                reason: self.mismatch(id),
            });
        }
        Ok(n)
    }

    pub(super) fn read_into_inner(
        &self,
        id: &ObjectId,
        w: &mut dyn Write,
        hasher: &mut blake3::Hasher,
        depth: u32,
    ) -> Result<u64> {
        if depth > 4 {
            return Err(Error::CorruptObject {
                id: *id,
                reason: "concatenation nested too deeply".into(),
            });
        }
        let (header, bytes) = self.read_record(id)?;
        match header.repr {
            Repr::Raw => {
                hasher.update(&bytes);
                w.write_all(&bytes)
                    .map_err(|e| Error::io("writing", "(output)", e))?;
                Ok(bytes.len() as u64)
            }
            Repr::Concat => {
                let children =
                    pack::decode_concat(&bytes).map_err(|reason| self.corrupt(id, reason))?;
                let mut total = 0;
                for (child, len) in children {
                    let n = self.read_into_inner(&child, w, hasher, depth + 1)?;
                    check_child_len(id, &child, n, len)?;
                    total += n;
                }
                Ok(total)
            }
        }
    }

    /// Ids an object directly depends on (children of a concatenation), for fsck and gc.
    pub fn children(&self, id: &ObjectId) -> Result<Vec<(ObjectId, u64)>> {
        let (header, bytes) = self.read_record(id)?;
        match header.repr {
            Repr::Raw => Ok(Vec::new()),
            Repr::Concat => pack::decode_concat(&bytes).map_err(|reason| self.corrupt(id, reason)),
        }
    }

    /// The record of `id` exactly as stored (header and payload, still compressed),
    /// so it can be copied byte for byte into a remote pack.
    pub fn raw_record(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let loc = self.locate(id)?.ok_or(Error::MissingObject(*id))?;
        let (file, path) = self.reader(loc.pack, id)?;
        let mut buf = vec![0u8; loc.len as usize];
        std::os::unix::fs::FileExt::read_exact_at(file.as_ref(), &mut buf, loc.offset as u64)
            .ctx("reading pack", &path)?;
        match RecordHeader::decode(&buf) {
            Ok(h) if h.id == *id && pack::RECORD_HEADER + h.stored_len as usize == buf.len() => {
                Ok(buf)
            }
            _ => Err(Error::CorruptObject {
                id: *id,
                reason: format!("record at {}:{} does not match", path.display(), loc.offset),
            }),
        }
    }

    /// Drops cached pack file handles (after gc replaced packs).
    pub(crate) fn forget_readers(&self) {
        if let Ok(mut r) = self.readers.lock() {
            r.clear();
        }
        self.drop_snapshot();
    }
}
