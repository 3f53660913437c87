//! `fetch` and lazy downloads for partial clones: transport only. Bytes come from a
//! remote, are verified and stored, and remote-tracking refs move; nothing here
//! touches the worktree, the index or a branch (`pull`, `clone` and the download
//! before a switch are flows of `ops::sync` built on these functions).
//!
//! Everything downloaded is verified before it is stored: a raw record must hash
//! to its id; a concatenation is stored only once its children are present and
//! the concatenated content (streamed from the store) hashes to its id. Records
//! are stored byte for byte. Write order keeps the local store's rule that a
//! present tree or commit implies everything below it is present: file data
//! first (flushed in batches, so an interrupted fetch keeps what arrived), then
//! trees and commits in one flush, then the remote-tracking refs.
//!
//! A partial repository (`clone --no-checkout`, `pull --only`) has every commit and
//! tree but only some file data; `.dsv/partial` names the remote that holds the
//! rest, and checkout downloads what it needs from there.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use rayon::prelude::*;
use serde::Serialize;

use super::refs::Skipped;
use super::{Remote, RemoteIndex, RemoteLoc, TransferStats, load_index, pack_name, tracking_ref};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::diff::FileState;
use crate::object::tree::TreeObject;
use crate::object::{Commit, EntryMode, Tree};
use crate::progress::Progress;
use crate::repo::{Repository, WritableRepo};
use crate::store::pack::{self, RECORD_HEADER, RecordHeader, Repr};

/// Bytes of fetched file data stored between two flushes (what an interrupted
/// fetch can lose at most): one pack's worth.
fn flush_every(repo: &Repository) -> u64 {
    super::format::pack_target(&repo.settings)
}

/// Records checked in parallel at once (their decoded copies are held meanwhile).
const CHECK_SLICE: usize = 4096;

/// Record bytes downloaded per round (bounds memory): two packs' worth.
fn batch_bytes(repo: &Repository) -> u64 {
    2 * super::format::pack_target(&repo.settings)
}

/// A remote-tracking ref that changed.
#[derive(Debug, Clone, Serialize)]
pub struct RefChange {
    /// Branch on the remote.
    pub branch: String,
    /// Previous remote-tracking value.
    pub old: Option<ObjectId>,
    /// New value (None: branch gone from the remote).
    pub new: Option<ObjectId>,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchReport {
    /// Remote name.
    pub remote: String,
    /// Remote-tracking refs that changed.
    pub updated: Vec<RefChange>,
    /// Remote-tracking refs removed by `--prune` (their branch is gone from the remote).
    pub pruned: Vec<RefChange>,
    /// Remote-tracking refs whose branch is gone from the remote, kept (no `--prune`).
    pub stale: Vec<String>,
    /// Local tags created from the remote's (`branch` is the tag name).
    pub tags: Vec<RefChange>,
    /// Remote tags not taken: an invalid name, an unreadable ref, or a local tag of
    /// that name at another commit (never overwritten).
    pub skipped_tags: Vec<Skipped>,
    /// Objects stored.
    pub objects: u64,
    /// Remote branches not fetched (invalid name, unreadable ref, name conflict);
    /// every other branch was.
    pub skipped: Vec<Skipped>,
    /// Bytes and requests.
    pub transfer: TransferStats,
}

/// How much a fetch downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Commits, trees and file data.
    Full,
    /// Commits and trees only; the repository becomes partial.
    Metadata,
}

fn remote_err(remote: &Remote, message: String) -> Error {
    Error::Remote {
        remote: remote.name.clone(),
        message,
    }
}

/// Path of the partial-repository marker.
fn partial_path(repo: &Repository) -> PathBuf {
    repo.dsv_dir().join("partial")
}

/// The remote a partial repository downloads missing data from (None: complete repository).
pub fn partial_remote(repo: &Repository) -> Result<Option<String>> {
    let path = partial_path(repo);
    match crate::refs::read_capped(&path, 256) {
        Ok(b) => {
            let name = String::from_utf8_lossy(&b).trim().to_string();
            super::check_remote_name(&name)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
            Ok(Some(name))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", partial_path(repo), e)),
    }
}

/// Downloads records, reading whole packs when most of a pack is wanted and
/// coalesced ranges otherwise. Each record's header is checked against the index
/// (id, length); content is checked by the caller.
///
/// With `extras`, a pack read whole also yields its other records (after the
/// wanted ones): a caller that will need them later (the chunks of a large file
/// whose list it has not read yet) then does not download the pack twice.
pub(super) fn download(
    remote: &Remote,
    index: &RemoteIndex,
    ids: &[ObjectId],
    extras: bool,
) -> Result<Records> {
    let mut by_pack: BTreeMap<u32, Vec<(ObjectId, RemoteLoc)>> = BTreeMap::new();
    for id in ids {
        let loc = index.get(id).ok_or_else(|| {
            remote_err(
                remote,
                format!("object {id} is referenced but no pack index lists it (incomplete remote)"),
            )
        })?;
        by_pack.entry(loc.pack).or_default().push((*id, loc));
    }
    struct Job {
        pack: ObjectId,
        pack_len: u64,
        whole: bool,
        entries: Vec<(ObjectId, RemoteLoc)>,
    }
    let mut jobs = Vec::new();
    for (n, mut entries) in by_pack {
        let (pack, pack_len) = index.packs[n as usize];
        entries.sort_by_key(|(_, l)| l.offset);
        entries.dedup_by_key(|(id, _)| *id);
        let whole = read_whole(entries.iter().map(|(_, l)| l), pack_len);
        if whole && extras {
            let have: HashSet<ObjectId> = entries.iter().map(|(id, _)| *id).collect();
            for (id, offset, len) in index.members(n as usize) {
                if !have.contains(id) {
                    entries.push((
                        *id,
                        RemoteLoc {
                            pack: n,
                            offset: *offset,
                            len: *len,
                        },
                    ));
                }
            }
        }
        jobs.push(Job {
            pack,
            pack_len,
            whole,
            entries,
        });
        remote.fault_point()?;
    }
    use std::sync::atomic::Ordering;
    let run = |job: Job| async move {
        let path = remote.path(&[&pack_name(&job.pack)]);
        let bad = |what: String| remote_err(remote, format!("pack {}: {what}", job.pack));
        let mut out = Vec::with_capacity(job.entries.len());
        if job.whole
            && let Some(spool) = remote.spool.get()
        {
            let bytes =
                super::spool::get_whole(remote, spool, &path, job.pack, job.pack_len).await?;
            for (id, l) in job.entries {
                let range = l.offset as usize..(l.offset + l.len as u64) as usize;
                if bytes.get(range.clone()).is_none() {
                    return Err(bad(format!("record of {id} outside the pack")));
                }
                out.push((id, bytes.slice(range)));
            }
        } else if job.whole {
            // The index gave the pack's length: a longer pack is refused from its
            // stated size, before its body is downloaded.
            let bytes = match super::get_capped(remote.store.as_ref(), &path, job.pack_len)
                .await
                .map_err(|e| remote.err(&format!("reading {path}"), e))?
            {
                super::Capped::Bytes(b, _) => b,
                super::Capped::TooLarge(n) => {
                    return Err(bad(format!(
                        "{n} bytes or more, its index says {} (damaged pack)",
                        job.pack_len
                    )));
                }
            };
            remote.counters.gets.fetch_add(1, Ordering::Relaxed);
            remote
                .counters
                .down
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            if bytes.len() as u64 != job.pack_len {
                return Err(bad(format!(
                    "{} bytes, its index says {} (truncated pack)",
                    bytes.len(),
                    job.pack_len
                )));
            }
            if ObjectId::hash(&bytes) != job.pack {
                return Err(bad("content does not match its name (damaged pack)".into()));
            }
            for (id, l) in job.entries {
                let range = l.offset as usize..(l.offset + l.len as u64) as usize;
                if bytes.get(range.clone()).is_none() {
                    return Err(bad(format!("record of {id} outside the pack")));
                }
                // A view into the pack, not a copy.
                out.push((id, bytes.slice(range)));
            }
        } else {
            let ranges = coalesce(job.entries.iter().map(|(_, l)| l));
            let want: Vec<std::ops::Range<u64>> = ranges.iter().map(|(r, _)| r.clone()).collect();
            // One request per run, several at once: the backend's own coalescing would
            // merge runs up to 1 MiB apart and download the bytes between them.
            let got: Vec<bytes::Bytes> = futures::stream::iter(want.iter().cloned())
                .map(|r| remote.store.get_range(&path, r))
                .buffered(8)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| remote.err(&format!("reading {path} (truncated pack?)"), e))?;
            remote
                .counters
                .gets
                .fetch_add(want.len() as u64, Ordering::Relaxed);
            for ((r, members), data) in ranges.iter().zip(got) {
                remote
                    .counters
                    .down
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                if data.len() as u64 != r.end - r.start {
                    return Err(bad(format!(
                        "range {}..{} returned {} bytes (truncated pack)",
                        r.start,
                        r.end,
                        data.len()
                    )));
                }
                for &i in members {
                    let (id, l) = job.entries[i];
                    let from = (l.offset - r.start) as usize;
                    out.push((id, data.slice(from..from + l.len as usize)));
                }
            }
        }
        for (id, rec) in &out {
            match RecordHeader::decode(rec) {
                Ok(h) if h.id == *id && RECORD_HEADER + h.stored_len as usize == rec.len() => {}
                Ok(_) => {
                    return Err(bad(format!(
                        "record at the index's offset for {id} holds another object"
                    )));
                }
                Err(e) => return Err(bad(format!("record of {id}: {e}"))),
            }
        }
        Ok::<_, Error>(out)
    };
    let results: Vec<Result<Records>> = remote.rt.block_on(
        futures::stream::iter(jobs.into_iter().map(run))
            .buffer_unordered(4)
            .collect(),
    );
    let mut out = Vec::with_capacity(ids.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// Whether a pack is downloaded whole rather than by ranges: when the records
/// wanted from it make up half of it or more.
fn read_whole<'a>(wanted: impl Iterator<Item = &'a RemoteLoc>, pack_len: u64) -> bool {
    let wanted: u64 = wanted.map(|l| l.len as u64).sum();
    wanted * 2 >= pack_len
}

/// The ranges to request for records of one pack (sorted by offset): runs of
/// records at most 64 KiB apart become one range of at most 8 MiB (a record
/// larger than that is a range of its own). Each range lists the positions of
/// its records in `locs`.
fn coalesce<'a>(
    locs: impl Iterator<Item = &'a RemoteLoc>,
) -> Vec<(std::ops::Range<u64>, Vec<usize>)> {
    let mut ranges: Vec<(std::ops::Range<u64>, Vec<usize>)> = Vec::new();
    for (i, l) in locs.enumerate() {
        let (s, e) = (l.offset, l.offset + l.len as u64);
        match ranges.last_mut() {
            Some((r, members)) if s <= r.end + 64 * 1024 && e - r.start <= 8 << 20 => {
                r.end = r.end.max(e);
                members.push(i);
            }
            _ => ranges.push((s..e, vec![i])),
        }
    }
    ranges
}

/// A concatenation's children: (id, length).
type Children = Vec<(ObjectId, u64)>;

/// Downloaded records: (id, record bytes).
type Records = Vec<(ObjectId, bytes::Bytes)>;

/// A concatenation waiting for its children: (id, record, children).
type PendingConcat = (ObjectId, bytes::Bytes, Vec<(ObjectId, u64)>);

/// A checked record: raw content (hash verified) or a concatenation list (verified later).
pub(super) enum Checked {
    /// Raw content, hash verified.
    Raw(Vec<u8>),
    /// Children of a concatenation (content verified later).
    Concat(Vec<(ObjectId, u64)>),
}

pub(super) fn check_record(remote: &Remote, id: &ObjectId, rec: &[u8]) -> Result<Checked> {
    let bad = |what: String| remote_err(remote, format!("object {id}: {what}"));
    let header = RecordHeader::decode(rec).map_err(&bad)?;
    let payload = pack::decode_payload(&header, rec[RECORD_HEADER..].to_vec()).map_err(&bad)?;
    match header.repr {
        Repr::Raw => {
            if ObjectId::hash(&payload) != *id {
                return Err(bad(
                    "content does not match its id (damaged or hostile remote); nothing was stored"
                        .into(),
                ));
            }
            Ok(Checked::Raw(payload))
        }
        Repr::Concat => Ok(Checked::Concat(
            pack::decode_concat(&payload).map_err(&bad)?,
        )),
    }
}

struct HashSink(blake3::Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Downloads file data (and the chunks of large files) the local store lacks,
/// verifies it and stores it. Returns the number of records stored.
///
/// Takes the list by value: at millions of files the ids themselves are the
/// largest thing held, so they are sorted in place and kept once (a set of them
/// beside a list took ~100 bytes an object).
fn fetch_blobs(
    repo: &Repository,
    remote: &Remote,
    index: &RemoteIndex,
    mut all: Vec<ObjectId>,
    progress: &dyn Progress,
) -> Result<u64> {
    if repo.writable() {
        remote.set_spool(super::cache_dir(repo, &remote.name).join("download"));
    }
    // Every id asked for, sorted: what `seen` answers for those; the parts of
    // large files found on the way go in `more`.
    all.sort_unstable();
    all.dedup();
    all.shrink_to_fit();
    let mut more: HashSet<ObjectId> = HashSet::new();
    let seen = |more: &HashSet<ObjectId>, id: &ObjectId| {
        all.binary_search(id).is_ok() || more.contains(id)
    };
    // The ids still wanted as (place on the remote, position in `all`): 16 bytes
    // each, not a second list of ids. The place (pack, then offset) only orders
    // the downloads; an id no index lists sorts first and fails in `download`.
    let mut want: Vec<(u64, u32)> = Vec::new();
    let mut total = 0u64;
    for (i, id) in all.iter().enumerate() {
        if !repo.store.contains(id)? {
            let place = index.get(id).map_or(0, |l| {
                total += l.len as u64;
                (u64::from(l.pack) << 40) | (l.offset & ((1 << 40) - 1))
            });
            want.push((place, i as u32));
        }
    }
    progress.start_bytes("downloading", Some(total));
    let mut stored = 0u64;
    let mut since_flush = 0u64;
    let mut concats: Vec<PendingConcat> = Vec::new();
    // Round one wants positions in `all`; later rounds the parts of large files.
    let mut parts: Vec<ObjectId> = Vec::new();
    let mut round = 0;
    loop {
        round += 1;
        if round > 4 {
            return Err(remote_err(
                remote,
                "concatenations nested too deeply (hostile remote?)".into(),
            ));
        }
        // Parts that arrived with a whole pack in the previous round are here already.
        let mut batch_ids: Vec<ObjectId> = Vec::new();
        if round == 1 {
            // Pack order, so each batch reads few packs.
            want.sort_unstable();
        } else {
            let mut missing = Vec::with_capacity(parts.len());
            for id in std::mem::take(&mut parts) {
                if !repo.store.contains(&id)? {
                    missing.push(id);
                }
            }
            missing.sort_by_key(|id| index.get(id).map(|l| (l.pack, l.offset)));
            batch_ids = missing;
        }
        let count = if round == 1 {
            want.len()
        } else {
            batch_ids.len()
        };
        if count == 0 {
            break;
        }
        let id_at = |k: usize| {
            if round == 1 {
                all[want[k].1 as usize]
            } else {
                batch_ids[k]
            }
        };
        let mut next = Vec::new();
        let mut start = 0;
        while start < count {
            let mut end = start;
            let mut bytes = 0u64;
            while end < count && (end == start || bytes < batch_bytes(repo)) {
                bytes += index.get(&id_at(end)).map_or(0, |l| l.len as u64);
                end += 1;
            }
            let ids: Vec<ObjectId> = (start..end).map(id_at).collect();
            let wanted: HashSet<ObjectId> = ids.iter().copied().collect();
            let recs = download(remote, index, &ids, true)?;
            drop(ids);
            start = end;
            // Records that came along with a whole pack: keep the raw ones not yet
            // here (verified like the rest), in case a later round wants them.
            let recs: Records = recs
                .into_iter()
                .filter(|(id, rec)| {
                    wanted.contains(id)
                        || (!seen(&more, id)
                            && RecordHeader::decode(rec).is_ok_and(|h| h.repr == Repr::Raw))
                })
                .collect();
            // Checked in slices, the content of a raw record dropped once its hash
            // matched: a batch's worth of decoded copies is never held at once.
            for part in recs.chunks(CHECK_SLICE) {
                let checked: Vec<Result<Option<Children>>> = part
                    .par_iter()
                    .map(|(id, rec)| match check_record(remote, id, rec)? {
                        Checked::Raw(_) => Ok(None),
                        Checked::Concat(children) => Ok(Some(children)),
                    })
                    .collect();
                for ((id, rec), c) in part.iter().zip(checked) {
                    let c = c?;
                    progress.inc(rec.len() as u64);
                    match c {
                        None => {
                            if !wanted.contains(id) && repo.store.contains(id)? {
                                continue;
                            }
                            repo.store.put_verified_record(rec, false)?;
                            stored += 1;
                            since_flush += rec.len() as u64;
                        }
                        Some(children) => {
                            for (c, _) in &children {
                                if !seen(&more, c) {
                                    more.insert(*c);
                                    if !repo.store.contains(c)? {
                                        next.push(*c);
                                    }
                                }
                            }
                            // Copied: a view would keep its whole pack in memory until the end.
                            concats.push((*id, bytes::Bytes::copy_from_slice(rec), children));
                        }
                    }
                }
            }
            drop(recs);
            if since_flush >= flush_every(repo) {
                repo.store.flush()?;
                // The packs downloaded so far are stored for good: their copies go.
                remote.release_spooled();
                since_flush = 0;
            }
        }
        if round == 1 {
            want = Vec::new();
        }
        parts = next;
    }
    progress.finish();
    // Concatenations: store each once all its children are present and the joined
    // content hashes to its id (segments before the files made of them).
    while !concats.is_empty() {
        let before = concats.len();
        let mut rest = Vec::new();
        for (id, rec, children) in concats {
            let mut ready = true;
            for (c, _) in &children {
                if !repo.store.contains(c)? {
                    ready = false;
                    break;
                }
            }
            if !ready {
                rest.push((id, rec, children));
                continue;
            }
            let mut sink = HashSink(blake3::Hasher::new());
            for (c, len) in &children {
                let n = repo.store.read_into(c, &mut sink)?;
                if n != *len {
                    return Err(remote_err(
                        remote,
                        format!(
                            "object {id}: child {} has {n} bytes, list says {len}",
                            c.short()
                        ),
                    ));
                }
            }
            if ObjectId(*sink.0.finalize().as_bytes()) != id {
                return Err(remote_err(
                    remote,
                    format!(
                        "object {id}: content does not match its id (damaged or hostile remote)"
                    ),
                ));
            }
            repo.store.put_verified_record(&rec, false)?;
            stored += 1;
        }
        if rest.len() == before {
            return Err(remote_err(
                remote,
                format!("{} large-file objects have missing parts", rest.len()),
            ));
        }
        concats = rest;
    }
    repo.store.flush()?;
    remote.clear_spool();
    Ok(stored)
}

/// Commits and trees downloaded by a walk, kept in memory until the file data is in.
#[derive(Default)]
struct Metadata {
    /// (id, record, is commit)
    records: Vec<(ObjectId, bytes::Bytes, bool)>,
    /// File ids below the new trees that the local store lacks.
    blobs: Vec<ObjectId>,
    /// Symlinks below the new trees: (path, target id).
    symlinks: Vec<(Vec<u8>, ObjectId)>,
    /// The trees downloaded: their position in `records`, decoded again when
    /// needed (to resolve links and check sizes before anything is stored). Kept
    /// decoded, a million entries took ~120 bytes each on top of their record.
    trees: HashMap<ObjectId, usize>,
    /// The root trees of the commits downloaded.
    roots: Vec<ObjectId>,
}

impl Metadata {
    /// A tree downloaded by the walk, decoded from its (verified) record.
    fn tree(&self, id: &ObjectId) -> Result<Option<TreeObject>> {
        let Some(&i) = self.trees.get(id) else {
            return Ok(None);
        };
        let rec = &self.records[i].1;
        let bad = |e: String| Error::Corrupt(format!("downloaded tree {id}: {e}"));
        let header = RecordHeader::decode(rec).map_err(bad)?;
        let payload = pack::decode_payload(&header, rec[RECORD_HEADER..].to_vec()).map_err(bad)?;
        TreeObject::decode(&payload).map(Some).map_err(bad)
    }
}

impl crate::worktree::links::LinkSource for (&Repository, &Metadata) {
    fn tree(&self, id: &ObjectId) -> Result<TreeObject> {
        match self.1.tree(id)? {
            Some(t) => Ok(t),
            None => Tree::load_object(&self.0.store, id),
        }
    }
    fn link(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        if self.0.store.contains(id)? {
            Ok(Some(self.0.store.get(id)?))
        } else {
            Ok(None)
        }
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// Downloads the commits and trees reachable from `tips` that the local store lacks.
/// With `all_trees` (a full fetch into a partial repository) trees already present
/// are walked too, to find file data they lack.
fn fetch_metadata(
    repo: &Repository,
    remote: &Remote,
    index: &RemoteIndex,
    tips: &[ObjectId],
    all_trees: bool,
) -> Result<Metadata> {
    let mut meta = Metadata::default();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut frontier: Vec<ObjectId> = Vec::new();
    for t in tips {
        if seen.insert(*t) && !repo.store.contains(t)? {
            frontier.push(*t);
        }
    }
    let mut roots: Vec<ObjectId> = Vec::new();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for (id, rec) in download(remote, index, &frontier, false)? {
            let Checked::Raw(bytes) = check_record(remote, &id, &rec)? else {
                return Err(remote_err(
                    remote,
                    format!("commit {id} is stored as a concatenation"),
                ));
            };
            let c = Commit::decode(&bytes)
                .map_err(|e| remote_err(remote, format!("commit {id}: {e}")))?;
            roots.push(c.tree);
            meta.roots.push(c.tree);
            for p in c.parents {
                if seen.insert(p) && !repo.store.contains(&p)? {
                    next.push(p);
                }
            }
            meta.records
                .push((id, bytes::Bytes::copy_from_slice(&rec), true));
        }
        frontier = next;
    }
    // Trees, level by level: (id, path).
    let mut frontier: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    let mut local: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    for r in roots {
        if seen.insert(r) {
            if !repo.store.contains(&r)? {
                frontier.push((r, Vec::new()));
            } else if all_trees {
                local.push((r, Vec::new()));
            }
        }
    }
    // File ids are collected with repeats (a file in several downloaded trees) and
    // made unique whenever the list doubles: a set beside the list cost ~70 bytes
    // an id at millions of files.
    let mut unique = 0usize;
    while !frontier.is_empty() || !local.is_empty() {
        let mut objects: Vec<(ObjectId, Vec<u8>, TreeObject)> = Vec::new();
        let paths: BTreeMap<ObjectId, Vec<u8>> = frontier.iter().cloned().collect();
        let ids: Vec<ObjectId> = frontier.iter().map(|(id, _)| *id).collect();
        for (id, rec) in download(remote, index, &ids, false)? {
            let Checked::Raw(bytes) = check_record(remote, &id, &rec)? else {
                return Err(remote_err(
                    remote,
                    format!("tree {id} is stored as a concatenation"),
                ));
            };
            // decode checks every name (no '..', '/', NUL, '.dsv'): a hostile tree stops here.
            let t = TreeObject::decode(&bytes)
                .map_err(|e| remote_err(remote, format!("tree {id}: {e}")))?;
            objects.push((id, paths.get(&id).cloned().unwrap_or_default(), t));
            meta.trees.insert(id, meta.records.len());
            meta.records
                .push((id, bytes::Bytes::copy_from_slice(&rec), false));
        }
        for (id, path) in local.drain(..) {
            objects.push((id, path, Tree::load_object(&repo.store, &id)?));
        }
        let mut next_remote = Vec::new();
        let mut next_local = Vec::new();
        let mut visit = |id: ObjectId, path: Vec<u8>| -> Result<()> {
            if seen.insert(id) {
                if !repo.store.contains(&id)? {
                    next_remote.push((id, path));
                } else if all_trees {
                    next_local.push((id, path));
                }
            }
            Ok(())
        };
        for (_, path, obj) in objects {
            match obj {
                TreeObject::Shards(shards) => {
                    for s in shards {
                        visit(s.id, path.clone())?;
                    }
                }
                TreeObject::Entries(entries) => {
                    for e in entries {
                        let p = join(&path, &e.name);
                        if e.mode == EntryMode::Dir {
                            // Refused before anything is written: every walk over a
                            // deeper tree would fail, and a checkout could not write it.
                            if p.iter().filter(|b| **b == b'/').count() + 1
                                >= crate::object::tree::MAX_DEPTH
                            {
                                return Err(remote_err(
                                    remote,
                                    crate::object::tree::too_deep(&p).to_string(),
                                ));
                            }
                            visit(e.id, p)?;
                            continue;
                        }
                        if e.mode == EntryMode::Symlink {
                            meta.symlinks.push((p, e.id));
                        }
                        if !repo.store.contains(&e.id)? {
                            meta.blobs.push(e.id);
                            if meta.blobs.len() >= 2 * unique.max(1 << 16) {
                                meta.blobs.sort_unstable();
                                meta.blobs.dedup();
                                unique = meta.blobs.len();
                            }
                        }
                    }
                }
            }
        }
        frontier = next_remote;
        local = next_local;
    }
    meta.blobs.sort_unstable();
    meta.blobs.dedup();
    meta.blobs.shrink_to_fit();
    Ok(meta)
}

/// Refuses symlinks whose target is absolute or climbs out of the worktree.
fn check_symlinks(repo: &Repository, remote: &Remote, links: &[(Vec<u8>, ObjectId)]) -> Result<()> {
    for (path, id) in links {
        if !repo.store.contains(id)? {
            continue;
        }
        let target = repo.store.get(id)?;
        if link_escapes(path, &target) {
            return Err(remote_err(
                remote,
                format!(
                    "symlink '{}' points outside the worktree ('{}'); refusing to fetch it",
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(&target)
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a symlink at `path` (a repository path) with `target` is empty,
/// absolute, or climbs above the worktree root at any point, read textually
/// (links it goes through are resolved by [`resolve_links`]).
fn link_escapes(path: &[u8], target: &[u8]) -> bool {
    let mut depth: i64 = path.iter().filter(|b| **b == b'/').count() as i64;
    let mut escapes = target.first() == Some(&b'/') || target.is_empty();
    for comp in target.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            escapes = true;
        }
    }
    escapes
}

/// Refuses the fetch if a symlink of one of the trees `roots` leads outside the
/// worktree once resolved through the tree's own links.
fn resolve_links(
    repo: &Repository,
    remote: &Remote,
    meta: &Metadata,
    roots: &[ObjectId],
) -> Result<()> {
    let mut roots = roots.to_vec();
    roots.sort();
    roots.dedup();
    match crate::worktree::links::check_links(&(repo, meta), &roots)? {
        Some(bad) => Err(remote_err(remote, format!("{bad}; refusing to fetch it"))),
        None => Ok(()),
    }
}

/// Refuses new trees whose entries claim sizes their objects (all here now) do not
/// have: a file entry against its record, a directory against the tree below.
fn check_sizes(repo: &Repository, remote: &Remote, meta: &Metadata) -> Result<()> {
    for tree in meta.trees.keys() {
        let Some(TreeObject::Entries(entries)) = meta.tree(tree)? else {
            continue;
        };
        for e in entries {
            let below = match e.mode {
                EntryMode::Dir => meta.tree(&e.id)?,
                _ => None,
            };
            let real = match (e.mode, below) {
                (EntryMode::Dir, Some(TreeObject::Entries(below))) => {
                    Some(below.iter().map(|e| e.size).sum())
                }
                (EntryMode::Dir, Some(TreeObject::Shards(below))) => {
                    Some(below.iter().map(|s| s.size).sum())
                }
                (EntryMode::Dir, None) => None,
                _ => repo.store.content_len(&e.id)?,
            };
            if let Some(real) = real
                && real != e.size
            {
                return Err(remote_err(
                    remote,
                    format!(
                        "tree {}: entry '{}' claims {} bytes but its object {} has {real}; refusing to fetch it",
                        tree.short(),
                        crate::quote::bytes(&e.name),
                        e.size,
                        e.id.short()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Stores downloaded commits and trees, then flushes (one transaction).
fn store_metadata(repo: &Repository, meta: &Metadata) -> Result<u64> {
    for (_, rec, commit) in &meta.records {
        repo.store.put_verified_record(rec, *commit)?;
    }
    repo.store.flush()?;
    Ok(meta.records.len() as u64)
}

/// Opens a configured remote for reading, with fault points and a checked marker.
pub fn open_remote(repo: &Repository, name: &str) -> Result<Remote> {
    let cfg = super::remote_config(repo, name)?;
    let remote = Remote::open(&cfg, false)?;
    remote.set_fault_storage(repo.storage.clone());
    remote.check_marker(false)?;
    Ok(remote)
}

/// Fetches every branch and tag of the remote: objects first, refs last. With
/// `prune`, remote-tracking branches whose branch is gone from the remote are
/// removed; without, they are kept and listed as `stale`.
pub fn fetch(
    repo: &WritableRepo,
    remote_name: &str,
    mode: FetchMode,
    prune: bool,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let remote = open_remote(repo, remote_name)?;
    let mut report = fetch_with(repo, &remote, mode, prune, progress)?;
    report.transfer = remote.stats();
    Ok(report)
}

/// [`fetch`] from a remote already open; the report's `transfer` is left for the
/// caller to fill (`remote.stats()` once everything it downloads is in).
pub fn fetch_with(
    repo: &Repository,
    remote: &Remote,
    mode: FetchMode,
    prune: bool,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let ns = format!("{}{}/", super::REMOTES, remote.name);
    let existing: BTreeMap<String, ObjectId> = repo.refs.list(&ns)?.into_iter().collect();
    let tracked: Vec<String> = existing.keys().cloned().collect();
    let listing = super::refs::sort_out(remote.refs().list_values()?, &tracked);
    let branches = listing.branches;
    let local_tags: BTreeMap<String, ObjectId> =
        repo.refs.list(crate::refs::TAGS)?.into_iter().collect();
    let tag_names: Vec<String> = local_tags.keys().cloned().collect();
    let tag_listing = super::refs::sort_out(remote.tags().list_values()?, &tag_names);
    let index = load_index(repo, remote)?;
    let tips: Vec<ObjectId> = branches
        .iter()
        .chain(&tag_listing.branches)
        .map(|(_, id)| *id)
        .collect();
    let partial = partial_remote(repo)?.is_some();
    let mut report = FetchReport {
        remote: remote.name.clone(),
        ..FetchReport::default()
    };
    let mut meta = fetch_metadata(
        repo,
        remote,
        &index,
        &tips,
        partial && mode == FetchMode::Full,
    )?;
    match mode {
        FetchMode::Full => {
            report.objects += fetch_blobs(
                repo,
                remote,
                &index,
                std::mem::take(&mut meta.blobs),
                progress,
            )?;
            drop(index);
            check_sizes(repo, remote, &meta)?;
            check_symlinks(repo, remote, &meta.symlinks)?;
            // A link may escape only through other links: resolve each one through
            // the whole tree it will be checked out with.
            if !meta.symlinks.is_empty() {
                resolve_links(repo, remote, &meta, &meta.roots)?;
            }
        }
        FetchMode::Metadata => {
            if !partial && !meta.records.is_empty() {
                // Written before the trees: a tree without its data is only allowed in
                // a repository that knows it is partial.
                repo.storage
                    .write_atomic(&partial_path(repo), format!("{}\n", remote.name).as_bytes())?;
            }
        }
    }
    report.objects += store_metadata(repo, &meta)?;
    // Remote-tracking refs last: they only ever name commits whose closure is here.
    let (time, _) = repo.now()?;
    let who = repo.reflog_identity();
    report.skipped = listing.skipped;
    // Gone branches first: `a` gone and `a/b` new needs `origin/a` removed before
    // `origin/a/b` can be created. A skipped branch still exists on the remote: its
    // remote-tracking ref stays as it was.
    for (b, id) in &existing {
        let listed = branches.iter().any(|(n, _)| n == b);
        if !listed && !report.skipped.iter().any(|s| s.branch == *b) {
            // Kept unless pruning, or in the way of a branch that replaced it.
            let in_way = branches
                .iter()
                .any(|(n, _)| super::refs::names_conflict(n, b));
            if !prune && !in_way {
                report.stale.push(b.clone());
                continue;
            }
            repo.refs.delete(&tracking_ref(&remote.name, b))?;
            report.pruned.push(RefChange {
                branch: b.clone(),
                old: Some(*id),
                new: None,
            });
        }
    }
    for (b, id) in &branches {
        let old = existing.get(b).copied();
        if old != Some(*id) {
            match repo
                .refs
                .update(&tracking_ref(&remote.name, b), *id, &who, time, "fetch")
            {
                Ok(()) => {}
                // A local ref in the way (not one of this remote's, which were sorted
                // out above): this branch is skipped, the others are still fetched.
                Err(e @ Error::RefConflict { .. }) => {
                    report.skipped.push(Skipped {
                        branch: b.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            }
            report.updated.push(RefChange {
                branch: b.clone(),
                old,
                new: Some(*id),
            });
        }
    }
    // Tags, as git: a new tag is created, a local tag is never moved.
    report.skipped_tags = tag_listing.skipped;
    for (t, id) in &tag_listing.branches {
        match local_tags.get(t) {
            Some(ours) if ours == id => continue,
            Some(ours) => {
                report.skipped_tags.push(Skipped {
                    branch: t.clone(),
                    reason: format!(
                        "would clobber the local tag at {} with {} (delete the local tag to take the remote's)",
                        ours.short(),
                        id.short()
                    ),
                });
                continue;
            }
            None => {}
        }
        match repo.refs.update(
            &format!("{}{t}", crate::refs::TAGS),
            *id,
            &who,
            time,
            "fetch",
        ) {
            Ok(()) => report.tags.push(RefChange {
                branch: t.clone(),
                old: None,
                new: Some(*id),
            }),
            Err(e @ Error::RefConflict { .. }) => report.skipped_tags.push(Skipped {
                branch: t.clone(),
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Downloads the file data `paths` (repository paths; empty: everything) need in
/// `commit`, from the remote a partial repository came from. Does nothing in a
/// complete repository. Checkout calls this before it writes files.
pub fn fetch_paths(
    repo: &Repository,
    commit: &ObjectId,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<u64> {
    let Some(name) = partial_remote(repo)? else {
        return Ok(0);
    };
    let remote = open_remote(repo, &name)?;
    fetch_paths_with(repo, &remote, commit, scopes, progress)
}

/// Downloads the blobs `ids` this repository lacks from the remote a partial
/// repository came from (`dsv watch` fetches the label files a commit changed, not
/// its frames). Does nothing in a complete repository.
pub fn fetch_objects(repo: &Repository, ids: &[ObjectId], progress: &dyn Progress) -> Result<u64> {
    let Some(name) = partial_remote(repo)? else {
        return Ok(0);
    };
    let mut missing = Vec::new();
    for id in ids {
        if !missing.contains(id) && !repo.store.contains(id)? {
            missing.push(*id);
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    let remote = open_remote(repo, &name)?;
    let index = load_index(repo, &remote)?;
    fetch_blobs(repo, &remote, &index, missing, progress)
}

/// Downloads from `remote` the file data `scopes` (repository paths; empty:
/// everything) need in `commit` and this repository lacks, and refuses symlinks
/// among them that lead outside the worktree.
pub fn fetch_paths_with(
    repo: &Repository,
    remote: &Remote,
    commit: &ObjectId,
    scopes: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<u64> {
    let tree = Commit::load(&repo.store, commit)?.tree;
    let files = crate::object::diff::flatten_scoped(&repo.store, Some(&tree), scopes)?;
    fetch_entries(
        repo,
        remote,
        &tree,
        files.iter().map(|(p, st)| (p.as_slice(), st)),
        progress,
    )
}

/// Downloads from `remote` the file data of `entries` (files of the tree `root`:
/// path and state) this repository lacks, then refuses symlinks among them whose
/// target is absolute or, resolved through `root`, leads outside the worktree.
/// Returns the number of records stored.
pub fn fetch_entries<'a>(
    repo: &Repository,
    remote: &Remote,
    root: &ObjectId,
    entries: impl IntoIterator<Item = (&'a [u8], &'a FileState)>,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut ids = Vec::new();
    let mut links = Vec::new();
    for (path, st) in entries {
        if !repo.store.contains(&st.id)? {
            ids.push(st.id);
        }
        if st.mode == EntryMode::Symlink {
            links.push((path.to_vec(), st.id));
        }
    }
    let n = if ids.is_empty() {
        0
    } else {
        let index = load_index(repo, remote)?;
        fetch_blobs(repo, remote, &index, ids, progress)?
    };
    check_symlinks(repo, remote, &links)?;
    if !links.is_empty() {
        resolve_links(repo, remote, &Metadata::default(), &[*root])?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(offset: u64, len: u32) -> RemoteLoc {
        RemoteLoc {
            pack: 0,
            offset,
            len,
        }
    }

    #[test]
    fn records_close_together_are_one_range_and_far_apart_two() {
        let locs = [
            loc(0, 100),
            loc(100, 50),
            loc(150 + 64 * 1024, 10),
            loc(1 << 20, 10),
        ];
        let ranges = coalesce(locs.iter());
        assert_eq!(
            ranges,
            vec![
                (0..150 + 64 * 1024 + 10, vec![0, 1, 2]),
                ((1 << 20)..(1 << 20) + 10, vec![3]),
            ]
        );
    }

    #[test]
    fn a_range_stops_growing_at_8_mib_and_a_larger_record_stands_alone() {
        let mib = 1u32 << 20;
        let locs = [
            loc(0, 5 * mib),
            loc(5 << 20, 4 * mib),
            loc(9 << 20, 9 * mib),
        ];
        let ranges = coalesce(locs.iter());
        assert_eq!(
            ranges,
            vec![
                (0..5 << 20, vec![0]),
                ((5 << 20)..(9 << 20), vec![1]),
                ((9 << 20)..(18 << 20), vec![2]),
            ]
        );
        assert!(coalesce(std::iter::empty()).is_empty());
    }

    #[test]
    fn a_pack_is_read_whole_when_half_of_it_or_more_is_wanted() {
        assert!(read_whole([loc(0, 50)].iter(), 100));
        assert!(!read_whole([loc(0, 49)].iter(), 100));
        assert!(read_whole([loc(0, 30), loc(60, 30)].iter(), 120));
        assert!(!read_whole(std::iter::empty(), 1));
    }

    #[test]
    fn symlinks_escaping_the_worktree_are_found_textually() {
        // Inside: a sibling, a file up a level from a subdirectory, `.` components.
        assert!(!link_escapes(b"a", b"b"));
        assert!(!link_escapes(b"d/link", b"../b"));
        assert!(!link_escapes(b"d/e/link", b"./../../b"));
        // Outside: absolute, empty, above the root, and above it on the way back in.
        assert!(link_escapes(b"link", b"/etc/passwd"));
        assert!(link_escapes(b"link", b""));
        assert!(link_escapes(b"link", b"../b"));
        assert!(link_escapes(b"d/e/link", b"../../../b"));
        assert!(link_escapes(b"d/link", b"../../d/b"));
    }
}
