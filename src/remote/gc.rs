//! Garbage collection of a remote (`dsv gc --remote`) and retention pins.
//!
//! Nothing runs on a remote, so a collector cannot stop pushes and fetches while
//! it works. It works in two phases across runs, with a grace period between them
//! (docs/format.md, "Remote gc (remote format 1 addition)"):
//!
//! * a run marks what every ref (branches, tags, pins) reaches, plus every record
//!   of a pack younger than the grace period (a push may be uploading it), plus
//!   the dead records of the packs it keeps; it copies the records so marked that
//!   live only in packs on their way out into new packs, and writes a gc record
//!   (`gc/records/...`) naming its candidates: packs with no live record, packs
//!   mostly dead (rewritten), packs without an index (interrupted uploads);
//! * a later run, once a record is older than the grace period, deletes its
//!   candidates (after the same copying, so nothing it keeps loses a record).
//!
//! Pushes treat retiring packs as absent, stop their walk only at objects of
//! settled packs ([`PackClass`]) and read the records again just before their
//! compare-and-swap, walking again if they changed. Invariant: the packs no record
//! retires that were listed before every pending record are closed under
//! references; so a push that stopped its walk at one of them sent a complete
//! closure, unless it spent more than the grace period between its last look at
//! the records and its ref update.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::fetch::{Checked, check_record, download, open_remote};
use super::{
    ListedPack, Remote, RemoteIndex, TransferStats, idx_name, list_packs, pack_name, read_indexes,
};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::object::tree::TreeObject;
use crate::repo::Repository;
use crate::store::pack::{self, RECORD_HEADER, RecordHeader, Repr};

/// Prefix of the gc records.
pub const RECORDS: &str = "gc/records";
/// The object a collector writes to read the store's clock.
pub const CLOCK: &str = "gc/clock";
/// Prefix of retention pins on the remote.
pub const PINS: &str = "refs/pins";
/// Largest gc record read (a record names at most a few hundred thousand packs).
pub const MAX_GC_RECORD: u64 = 64 << 20;
/// Default grace period: a day, far longer than any push spends between its last
/// look at the records and its ref update, and than a fetch spends between its
/// listing and its last download.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Default rewrite threshold: a pack at least this dead (by bytes) is rewritten.
pub const DEFAULT_REWRITE_THRESHOLD: f64 = 0.5;
/// Times a push walks again because the gc records changed before it gives up.
pub const MAX_SETTLE_ROUNDS: usize = 5;

/// Failures of remote garbage collection and pins.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A gc record on the remote is not one.
    #[error(
        "remote '{remote}': gc record {key} is damaged ({reason}); the packs it retires cannot be known, so pushes and gc stop until it is removed (dsv fsck --remote lists it)"
    )]
    BadRecord {
        /// Remote name.
        remote: String,
        /// The record's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A ref on the remote cannot be read: gc cannot know what it protects.
    #[error(
        "remote '{remote}': ref {key} cannot be read ({reason}); gc refuses to collect while a ref may protect data it cannot see"
    )]
    BadRef {
        /// Remote name.
        remote: String,
        /// The ref's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An object a live object references is on no pack of the remote.
    #[error(
        "remote '{remote}': object {id} ({what}) is referenced but no pack lists it; the remote is incomplete, gc stops (dsv fsck --remote)"
    )]
    Incomplete {
        /// Remote name.
        remote: String,
        /// The missing object.
        id: ObjectId,
        /// What referenced it.
        what: String,
    },
    /// Collectors kept retiring packs while a push ran.
    #[error(
        "remote '{remote}': the gc records changed {rounds} times while this push ran; retry the push"
    )]
    Unsettled {
        /// Remote name.
        remote: String,
        /// Walks done.
        rounds: usize,
    },
    /// A pin names a commit the remote does not have.
    #[error("commit {commit} is not on remote '{remote}'; push it before pinning it")]
    PinNotOnRemote {
        /// Remote name.
        remote: String,
        /// The commit.
        commit: ObjectId,
    },
    /// A version `[retention]` in dsv.toml keeps is not on the remote.
    #[error(
        "{name} names commit {commit}, which is not on remote '{remote}'; gc stops rather than keep nothing of it (push it, or remove it from [retention])"
    )]
    RetainedNotOnRemote {
        /// Remote name.
        remote: String,
        /// Where the revision was named (`dsv.toml [retention] REV`).
        name: String,
        /// The commit.
        commit: ObjectId,
    },
    /// No such pin.
    #[error("remote '{remote}' has no pin of {commit}")]
    NoSuchPin {
        /// Remote name.
        remote: String,
        /// The commit.
        commit: ObjectId,
    },
}

impl crate::error::ModuleError for GcError {}

crate::error::module_error!(GcError);

fn gc_err(e: GcError) -> Error {
    e.into()
}

/// How a push and a fetch may use a pack ([`super::RemoteIndex`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum PackClass {
    /// Retired by no record and listed before every pending record: closed under
    /// references, a push may stop its walk at its objects.
    Settled,
    /// Retired by no record but uploaded after a pending record listed the
    /// remote: present, but what it references may be retiring.
    Fresh,
    /// A candidate of a gc record: deleted once the record is past its grace period.
    Retiring,
}

/// Why a pack is a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// No record of it is reachable.
    Unreferenced,
    /// Mostly dead: its live records were copied into a new pack.
    Rewritten,
    /// A pack without an index (an interrupted upload).
    NoIndex,
}

/// A pack a gc record retires.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Candidate {
    /// The pack.
    pub pack: ObjectId,
    /// Its size in bytes.
    pub bytes: u64,
    /// Records in it.
    pub objects: u64,
    /// Why.
    pub why: Why,
}

/// A gc record (`gc/records/<ms>-<hash>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GcRecord {
    /// Record format (1).
    pub dsv_gc: u32,
    /// When the collector listed the remote, in ms since the epoch by the store's clock.
    pub listed_at_ms: i64,
    /// The packs retired.
    pub candidates: Vec<Candidate>,
}

/// The gc records of a remote.
#[derive(Debug, Clone, Default)]
pub struct GcState {
    /// Records by key, sorted.
    pub records: Vec<(String, GcRecord)>,
}

impl GcState {
    /// The record keys.
    pub fn keys(&self) -> Vec<String> {
        self.records.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Every pack some record retires.
    pub fn retiring(&self) -> HashSet<ObjectId> {
        self.records
            .iter()
            .flat_map(|(_, r)| r.candidates.iter().map(|c| c.pack))
            .collect()
    }

    /// The class of a pack whose index was written at `idx_ms`.
    pub fn class_of(&self, pack: &ObjectId, idx_ms: i64) -> PackClass {
        if self
            .records
            .iter()
            .any(|(_, r)| r.candidates.iter().any(|c| c.pack == *pack))
        {
            return PackClass::Retiring;
        }
        match self.records.iter().map(|(_, r)| r.listed_at_ms).min() {
            // Equal times are fresh: stores give seconds, and the pack may have
            // landed after the listing within the same second.
            Some(h) if idx_ms >= h => PackClass::Fresh,
            _ => PackClass::Settled,
        }
    }
}

/// Parses a gc record (the error names what is wrong, briefly).
pub fn parse_record(bytes: &[u8]) -> std::result::Result<GcRecord, String> {
    let r: GcRecord = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a gc record: {} (starts '{}')",
            crate::quote::short(&e.to_string()),
            super::quote_prefix(bytes)
        )
    })?;
    if r.dsv_gc != 1 {
        return Err(format!("gc record format {} is not supported", r.dsv_gc));
    }
    Ok(r)
}

/// Reads every gc record (one LIST, one GET each). A record that is too large or
/// does not parse is an error naming it.
pub fn read_state(remote: &Remote) -> Result<GcState> {
    let mut out = GcState::default();
    let base = remote.path(&[RECORDS]);
    for meta in remote.list(&[RECORDS])? {
        let key = relative_key(remote, &meta.location);
        let bad = |reason: String| {
            gc_err(GcError::BadRecord {
                remote: remote.name.clone(),
                key: crate::quote::short(&key),
                reason,
            })
        };
        if meta.location.prefix_match(&base).is_none() {
            continue;
        }
        let bytes = match remote.get_small(&meta.location, MAX_GC_RECORD) {
            Ok(Some(b)) => b,
            // Deleted by a collector since the listing: it retires nothing any more.
            Ok(None) => continue,
            Err(Error::Remote { message, .. }) if message.contains("more than the") => {
                return Err(bad(format!("{} bytes or more", meta.size)));
            }
            Err(e) => return Err(e),
        };
        let record = parse_record(&bytes).map_err(bad)?;
        out.records.push((key, record));
    }
    out.records.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The record keys under `gc/records/` (one LIST): what a push compares before
/// its ref update.
pub fn record_keys(remote: &Remote) -> Result<Vec<String>> {
    let mut keys: Vec<String> = remote
        .list(&[RECORDS])?
        .iter()
        .map(|m| relative_key(remote, &m.location))
        .collect();
    keys.sort();
    Ok(keys)
}

fn relative_key(remote: &Remote, location: &object_store::path::Path) -> String {
    match location.prefix_match(&remote.base) {
        Some(parts) => parts
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => location.to_string(),
    }
}

/// A ref of the remote that protects data: a branch, tag, pin or any other key under `refs/`.
#[derive(Debug, Clone, Serialize)]
pub struct Root {
    /// The ref (`refs/heads/main`, `refs/pins/<hex>`).
    pub name: String,
    /// The commit it names.
    pub commit: ObjectId,
}

/// Every ref under `refs/`: branches through the ref store (either layout), and
/// every other key (tags, pins, ...) read directly, the highest sequence file of
/// a directory of them standing for the ref. Any value that cannot be read is an error.
pub fn list_roots(remote: &Remote) -> Result<Vec<Root>> {
    let bad = |key: String, reason: String| {
        gc_err(GcError::BadRef {
            remote: remote.name.clone(),
            key: crate::quote::short(&key),
            reason,
        })
    };
    let mut out = Vec::new();
    for (branch, value) in remote.refs().list_values()? {
        let key = format!("refs/heads/{branch}");
        match value {
            Ok(commit) => out.push(Root { name: key, commit }),
            Err(reason) => return Err(bad(key, reason)),
        }
    }
    // Other namespaces: newest sequence file per directory, or the object itself.
    let mut refs: std::collections::BTreeMap<String, (u64, object_store::path::Path)> =
        Default::default();
    for meta in remote.list(&["refs"])? {
        let key = relative_key(remote, &meta.location);
        if key.starts_with("refs/heads/") {
            continue;
        }
        let (name, seq) = match key.rsplit_once('/') {
            Some((dir, last))
                if last.len() == super::refs::SEQ_DIGITS
                    && last.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (dir.to_string(), last.parse::<u64>().unwrap_or(0))
            }
            _ => (key.clone(), 0),
        };
        let e = refs.entry(name).or_insert((seq, meta.location.clone()));
        if seq >= e.0 {
            *e = (seq, meta.location.clone());
        }
    }
    for (name, (_, location)) in refs {
        let bytes = match remote.get_small(&location, super::MAX_METADATA_OBJECT) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => return Err(bad(name, e.to_string())),
        };
        // A deleted tag or branch (`push --delete`) is a tombstone: it protects nothing.
        match super::refs::parse_ref_slot(&bytes) {
            Ok(Some(commit)) => out.push(Root { name, commit }),
            Ok(None) => {}
            Err(reason) => return Err(bad(name, reason)),
        }
    }
    Ok(out)
}

/// What an object is, as far as the walk knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Commit,
    Tree,
    Blob,
    /// A record of a pack kept whole: anything.
    Any,
}

/// Reads objects' references, from the local store where it has them (free) and
/// from the remote otherwise.
struct Marker<'a> {
    repo: &'a Repository,
    remote: &'a Remote,
    index: &'a RemoteIndex,
    files: HashMap<u32, std::fs::File>,
}

type Edges = Vec<(ObjectId, Kind)>;

fn tree_edges(t: TreeObject) -> Edges {
    match t {
        TreeObject::Entries(entries) => entries
            .into_iter()
            .map(|e| {
                let k = if e.mode == crate::object::EntryMode::Dir {
                    Kind::Tree
                } else {
                    Kind::Blob
                };
                (e.id, k)
            })
            .collect(),
        TreeObject::Shards(shards) => shards.into_iter().map(|s| (s.id, Kind::Tree)).collect(),
    }
}

fn commit_edges(c: Commit) -> Edges {
    let mut out = vec![(c.tree, Kind::Tree)];
    out.extend(c.parents.into_iter().map(|p| (p, Kind::Commit)));
    out
}

/// References of a raw payload of unknown kind: a commit's or a tree's if it
/// decodes as one (a blob that happens to also decodes keeps more, never less).
fn any_edges(bytes: &[u8]) -> Edges {
    if bytes.first() == Some(&b'{')
        && let Ok(c) = Commit::decode(bytes)
    {
        return commit_edges(c);
    }
    match TreeObject::decode(bytes) {
        Ok(t) => tree_edges(t),
        Err(_) => Vec::new(),
    }
}

impl Marker<'_> {
    /// The local record header of `id`, if the local store has it.
    fn local_header(&mut self, id: &ObjectId) -> Result<Option<(RecordHeader, u32)>> {
        let Some(loc) = self.repo.store.locate(id)? else {
            return Ok(None);
        };
        if !self.files.contains_key(&loc.pack) {
            let path = pack::pack_path(self.repo.store.packs_dir(), loc.pack);
            let f = std::fs::File::open(&path).map_err(|e| Error::io("opening", path, e))?;
            self.files.insert(loc.pack, f);
        }
        let f = &self.files[&loc.pack];
        let mut h = [0u8; RECORD_HEADER];
        if (loc.len as usize) < RECORD_HEADER
            || std::os::unix::fs::FileExt::read_exact_at(f, &mut h, loc.offset as u64).is_err()
        {
            return Ok(None);
        }
        Ok(RecordHeader::decode(&h)
            .ok()
            .filter(|hd| hd.id == *id)
            .map(|hd| (hd, loc.len)))
    }

    /// The references of `id` from the local store, `None` when the remote must be asked.
    fn local_edges(&mut self, id: &ObjectId, kind: Kind) -> Result<Option<Edges>> {
        let Some((header, local_len)) = self.local_header(id)? else {
            return Ok(None);
        };
        // The content of commits and trees is fixed by their id; a file's record could
        // be raw here and a concatenation there only with another length.
        let remote_len = self.index.get(id).map(|l| l.len);
        Ok(Some(match (kind, header.repr) {
            (Kind::Commit, _) => commit_edges(Commit::load(&self.repo.store, id)?),
            (Kind::Tree, _) => tree_edges(crate::object::Tree::load_object(&self.repo.store, id)?),
            (_, Repr::Concat) => self
                .repo
                .store
                .children(id)?
                .into_iter()
                .map(|(c, _)| (c, Kind::Blob))
                .collect(),
            (Kind::Blob, Repr::Raw) if remote_len == Some(local_len) => Vec::new(),
            (Kind::Blob, Repr::Raw) => return Ok(None),
            (Kind::Any, Repr::Raw) => {
                let bytes = self.repo.store.get(id)?;
                let edges = any_edges(&bytes);
                if edges.is_empty() && remote_len != Some(local_len) {
                    return Ok(None);
                }
                edges
            }
        }))
    }

    /// The references of `ids`, downloaded from the remote in bounded batches.
    fn remote_edges(&self, ids: &[(ObjectId, Kind)], out: &mut Edges) -> Result<()> {
        const BATCH: u64 = 64 << 20;
        let mut start = 0;
        while start < ids.len() {
            let mut end = start;
            let mut bytes = 0u64;
            while end < ids.len() && (end == start || bytes < BATCH) {
                bytes += self.index.get(&ids[end].0).map_or(0, |l| l.len as u64);
                end += 1;
            }
            let batch = &ids[start..end];
            let kinds: HashMap<ObjectId, Kind> = batch.iter().copied().collect();
            let want: Vec<ObjectId> = batch.iter().map(|(i, _)| *i).collect();
            for (id, rec) in download(self.remote, self.index, &want, false)? {
                let kind = kinds.get(&id).copied().unwrap_or(Kind::Any);
                let corrupt = |reason: String| Error::Remote {
                    remote: self.remote.name.clone(),
                    message: format!("object {id}: {reason}"),
                };
                match (check_record(self.remote, &id, &rec)?, kind) {
                    (Checked::Concat(children), _) => {
                        out.extend(children.into_iter().map(|(c, _)| (c, Kind::Blob)))
                    }
                    (Checked::Raw(b), Kind::Commit) => {
                        out.extend(commit_edges(Commit::decode(&b).map_err(corrupt)?))
                    }
                    (Checked::Raw(b), Kind::Tree) => {
                        out.extend(tree_edges(TreeObject::decode(&b).map_err(corrupt)?))
                    }
                    (Checked::Raw(_), Kind::Blob) => {}
                    (Checked::Raw(b), Kind::Any) => out.extend(any_edges(&b)),
                }
            }
            start = end;
        }
        Ok(())
    }

    /// Adds to `live` everything `roots` reach.
    fn mark(
        &mut self,
        roots: Vec<(ObjectId, Kind, String)>,
        live: &mut HashSet<ObjectId>,
    ) -> Result<()> {
        let mut frontier: Vec<(ObjectId, Kind)> = Vec::new();
        for (id, kind, what) in roots {
            if !self.index.contains(&id) {
                return Err(gc_err(GcError::Incomplete {
                    remote: self.remote.name.clone(),
                    id,
                    what,
                }));
            }
            frontier.push((id, kind));
        }
        while !frontier.is_empty() {
            let mut next: Edges = Vec::new();
            let mut ask: Vec<(ObjectId, Kind)> = Vec::new();
            for (id, kind) in std::mem::take(&mut frontier) {
                if !live.insert(id) {
                    continue;
                }
                if !self.index.contains(&id) {
                    return Err(gc_err(GcError::Incomplete {
                        remote: self.remote.name.clone(),
                        id,
                        what: "referenced by a live object".into(),
                    }));
                }
                match self.local_edges(&id, kind)? {
                    Some(e) => next.extend(e),
                    None => ask.push((id, kind)),
                }
            }
            self.remote_edges(&ask, &mut next)?;
            frontier = next
                .into_iter()
                .filter(|(i, _)| !live.contains(i))
                .collect();
        }
        Ok(())
    }
}

/// How a gc run may act.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Report only: write and delete nothing.
    pub dry_run: bool,
    /// How old a record must be before its candidates are deleted, and a pack
    /// before it may become one.
    pub grace: Duration,
    /// Fraction of dead bytes from which a pack is rewritten (0 < t <= 1).
    pub rewrite_threshold: f64,
    /// Size at which new packs are cut.
    pub pack_target: u64,
}

/// Packs, objects and bytes.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Amount {
    /// Packs.
    pub packs: u64,
    /// Records.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Amount {
    fn add(&mut self, objects: u64, bytes: u64) {
        self.packs += 1;
        self.objects += objects;
        self.bytes += bytes;
    }
}

/// Kept packs by reason.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Kept {
    /// Packs holding live records, under the rewrite threshold.
    pub live: Amount,
    /// Packs younger than the grace period (a push may be uploading them).
    pub young: Amount,
    /// Candidates of pending records, not yet past the grace period.
    pub pending: Amount,
}

/// What a remote gc did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RemoteGcReport {
    /// Remote name.
    pub remote: String,
    /// Nothing was written or deleted.
    pub dry_run: bool,
    /// Grace period in seconds.
    pub grace_seconds: u64,
    /// Refs marked from (branches, tags, pins).
    pub roots: Vec<Root>,
    /// Live records found.
    pub live_objects: u64,
    /// Deleted: candidates of records past the grace period.
    pub freed: Amount,
    /// Recorded as candidates by this run, deleted by a run past the grace period.
    pub recorded: Amount,
    /// Of `recorded`: packs mostly dead, rewritten.
    pub rewritten: Amount,
    /// Records copied into new packs (live records of rewritten packs, and records
    /// still needed that lived only in retiring packs).
    pub copied: Amount,
    /// What was kept and why.
    pub kept: Kept,
    /// gc records deleted (their candidates gone).
    pub records_done: u64,
    /// Bytes and requests.
    pub transfer: TransferStats,
}

/// The store's clock: writes [`CLOCK`] and reads its modification time.
fn store_now(remote: &Remote) -> Result<i64> {
    let path = remote.path(&[CLOCK]);
    remote.put(&path, bytes::Bytes::from_static(b"{}"), false)?;
    remote.counters.gets.fetch_add(1, Ordering::Relaxed);
    let meta = remote
        .rt
        .block_on(remote.store.head(&path))
        .map_err(|e| remote.err(&format!("reading {path}"), e))?;
    Ok(meta.last_modified.timestamp_millis())
}

fn delete(remote: &Remote, key: &str) -> Result<()> {
    remote.fault_point()?;
    let path = remote.path(&[key]);
    match remote.rt.block_on(remote.store.delete(&path)) {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(remote.err(&format!("deleting {path}"), e)),
    }
}

/// New packs of copied records.
struct Copier<'a> {
    repo: &'a Repository,
    remote: &'a Remote,
    target: u64,
    pack: super::format::PackBuf,
    done: Amount,
    avoid: HashSet<ObjectId>,
}

impl Copier<'_> {
    fn add(&mut self, id: ObjectId, record: &[u8]) -> Result<()> {
        if self.pack.add(id, record, self.target) {
            self.finish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let Some((buf, idx)) = self.pack.take(&self.avoid) else {
            return Ok(());
        };
        let hash = idx.pack;
        let n = idx.entries.len() as u64;
        self.done.add(n, buf.len() as u64);
        self.remote
            .put(&self.remote.path(&[&pack_name(&hash)]), buf.into(), false)?;
        let idx_bytes = idx.encode();
        self.remote.put(
            &self.remote.path(&[&idx_name(&hash)]),
            bytes::Bytes::from(idx_bytes.clone()),
            false,
        )?;
        if self.repo.writable() {
            let cache = super::cache_dir(self.repo, &self.remote.name).join("idx");
            self.repo.storage.create_dir_all(&cache)?;
            self.repo
                .storage
                .write_atomic(&cache.join(format!("{hash}.idx")), &idx_bytes)?;
        }
        Ok(())
    }
}

/// Collects garbage on remote `name` (see the module documentation), keeping
/// what the remote's refs reach and what `retained` (the `[retention]` versions of
/// dsv.toml, resolved by the caller) reaches: each must be on the remote.
pub fn collect(
    repo: &Repository,
    name: &str,
    opts: &GcOptions,
    retained: &[Root],
) -> Result<RemoteGcReport> {
    let remote = open_remote(repo, name)?;
    remote.set_fault_storage(repo.storage.clone());
    let grace_ms = i64::try_from(opts.grace.as_millis()).unwrap_or(i64::MAX);
    // The store's clock, read before the refs: every ref update this run misses
    // happened after `now`.
    // Records first: a damaged one stops the run before anything is written.
    let state = read_state(&remote)?;
    let now = if opts.dry_run {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    } else {
        store_now(&remote)?
    };
    let retiring = state.retiring();
    let mut roots = list_roots(&remote)?;
    let listed = list_packs(&remote)?;
    let with_idx: Vec<&ListedPack> = listed.iter().filter(|p| p.idx.is_some()).collect();
    let names: Vec<ObjectId> = with_idx.iter().map(|p| p.pack).collect();
    let idxs = read_indexes(repo, &remote, &names)?;
    // Every visible pack, retiring ones last so lookups prefer the others.
    let mut index = RemoteIndex::default();
    let mut order: Vec<(bool, usize)> = Vec::new();
    for (i, idx) in idxs.iter().enumerate() {
        if idx.is_some() {
            order.push((retiring.contains(&names[i]), i));
        }
    }
    order.sort();
    let mut listing: Vec<&ListedPack> = Vec::new();
    for (is_retiring, i) in &order {
        let idx = idxs[*i].as_ref().expect("filtered above");
        let class = if *is_retiring {
            PackClass::Retiring
        } else {
            PackClass::Settled
        };
        index.add_as(idx, class);
        listing.push(with_idx[*i]);
    }
    for r in retained {
        if !index.contains(&r.commit) {
            return Err(gc_err(GcError::RetainedNotOnRemote {
                remote: name.to_string(),
                name: crate::quote::short(&r.name),
                commit: r.commit,
            }));
        }
        roots.push(r.clone());
    }
    let young =
        |p: &ListedPack| p.idx.unwrap_or(i64::MAX).max(p.pack_time.unwrap_or(0)) > now - grace_ms;

    let mut marker = Marker {
        repo,
        remote: &remote,
        index: &index,
        files: HashMap::new(),
    };
    // Phase one: what the refs reach, and everything in young packs.
    let mut live: HashSet<ObjectId> = HashSet::new();
    let mut first: Vec<(ObjectId, Kind, String)> = roots
        .iter()
        .map(|r| (r.commit, Kind::Commit, r.name.clone()))
        .collect();
    for (n, p) in listing.iter().enumerate() {
        if index.class[n] != PackClass::Retiring && young(p) {
            for (id, _, _) in index.members(n) {
                first.push((*id, Kind::Any, format!("pack {}", p.pack)));
            }
        }
    }
    marker.mark(first, &mut live)?;
    // Classify the old packs no record retires.
    #[derive(Clone, Copy, PartialEq)]
    enum Fate {
        Keep,
        Young,
        Pending,
        Dead,
        Rewrite,
    }
    let mut fate = vec![Fate::Keep; index.packs.len()];
    let mut report = RemoteGcReport {
        remote: name.to_string(),
        dry_run: opts.dry_run,
        grace_seconds: opts.grace.as_secs(),
        roots: roots.clone(),
        live_objects: 0,
        freed: Amount::default(),
        recorded: Amount::default(),
        rewritten: Amount::default(),
        copied: Amount::default(),
        kept: Kept::default(),
        records_done: 0,
        transfer: TransferStats::default(),
    };
    let mut extra: Vec<(ObjectId, Kind, String)> = Vec::new();
    for (n, p) in listing.iter().enumerate() {
        let (_, pack_len) = index.packs[n];
        let members = index.members(n);
        if index.class[n] == PackClass::Retiring {
            fate[n] = Fate::Pending;
            continue;
        }
        if young(p) {
            fate[n] = Fate::Young;
            continue;
        }
        let live_bytes: u64 = members
            .iter()
            .filter(|(id, _, _)| live.contains(id))
            .map(|(_, _, l)| *l as u64)
            .sum();
        let dead = pack_len.saturating_sub(live_bytes) as f64 / pack_len.max(1) as f64;
        fate[n] = if live_bytes == 0 {
            Fate::Dead
        } else if dead >= opts.rewrite_threshold {
            Fate::Rewrite
        } else {
            // Kept whole: its dead records stay, so must what they reference.
            for (id, _, _) in members {
                if !live.contains(id) {
                    extra.push((*id, Kind::Any, format!("pack {}", p.pack)));
                }
            }
            Fate::Keep
        };
    }
    marker.mark(extra, &mut live)?;
    report.live_objects = live.len() as u64;
    // Records still needed that no kept pack holds: copied into new packs.
    let mut in_kept: HashSet<ObjectId> = HashSet::new();
    for (n, members) in (0..index.packs.len()).map(|n| (n, index.members(n))) {
        if matches!(fate[n], Fate::Keep | Fate::Young) {
            in_kept.extend(members.iter().map(|(id, _, _)| *id));
        }
    }
    let mut to_copy: Vec<(ObjectId, u32, u64)> = Vec::new();
    let mut copying: HashSet<ObjectId> = HashSet::new();
    for (n, members) in (0..index.packs.len()).map(|n| (n, index.members(n))) {
        if matches!(fate[n], Fate::Keep | Fate::Young) {
            continue;
        }
        for (id, off, _) in members {
            if live.contains(id) && !in_kept.contains(id) && copying.insert(*id) {
                to_copy.push((*id, n as u32, *off));
            }
        }
    }
    // Pack order, so the copies keep the layout of what they came from.
    to_copy.sort_by_key(|(_, n, off)| (*n, *off));
    let mut copier = Copier {
        repo,
        remote: &remote,
        target: opts.pack_target,
        pack: Default::default(),
        done: Amount::default(),
        // Never a name already there: it could be one on its way out.
        avoid: listed.iter().map(|p| p.pack).collect(),
    };
    let mut remote_ids = Vec::new();
    let mut would_copy = Amount::default();
    for (id, _, _) in &to_copy {
        let remote_len = index.get(id).map_or(0, |l| l.len);
        would_copy.objects += 1;
        would_copy.bytes += remote_len as u64;
        if opts.dry_run {
            continue;
        }
        // The local record when it is the same (same length), else the remote's.
        match marker.local_header(id)? {
            Some((_, len)) if len == remote_len => copier.add(*id, &repo.store.raw_record(id)?)?,
            _ => remote_ids.push(*id),
        }
    }
    for chunk in remote_ids.chunks(4096) {
        for (id, rec) in download(&remote, &index, chunk, false)? {
            check_record(&remote, &id, &rec)?;
            copier.add(id, &rec)?;
        }
    }
    copier.finish()?;
    report.copied = if opts.dry_run {
        Amount {
            packs: would_copy.bytes.div_ceil(opts.pack_target.max(1)),
            ..would_copy
        }
    } else {
        copier.done
    };
    // This run's candidates.
    let mut candidates = Vec::new();
    for (n, f) in fate.iter().enumerate() {
        let (pack, bytes) = index.packs[n];
        let objects = index.members(n).len() as u64;
        match *f {
            Fate::Keep => report.kept.live.add(objects, bytes),
            Fate::Young => report.kept.young.add(objects, bytes),
            Fate::Pending => {}
            Fate::Dead | Fate::Rewrite => {
                let why = if *f == Fate::Dead {
                    Why::Unreferenced
                } else {
                    report.rewritten.add(objects, bytes);
                    Why::Rewritten
                };
                report.recorded.add(objects, bytes);
                candidates.push(Candidate {
                    pack,
                    bytes,
                    objects,
                    why,
                });
            }
        }
    }
    for p in &listed {
        if p.idx.is_none()
            && !retiring.contains(&p.pack)
            && p.pack_time.is_some_and(|t| t <= now - grace_ms)
        {
            let bytes = p.pack_size.unwrap_or(0);
            report.recorded.add(0, bytes);
            candidates.push(Candidate {
                pack: p.pack,
                bytes,
                objects: 0,
                why: Why::NoIndex,
            });
        }
    }
    let expired = state
        .records
        .iter()
        .any(|(_, r)| r.listed_at_ms.saturating_add(grace_ms) <= now && !r.candidates.is_empty());
    // Written before anything is deleted: pushes read it to avoid these packs, and
    // a push that looked at the records before this run sees them change (a new
    // key every run that deletes), so it walks again.
    if !opts.dry_run && (!candidates.is_empty() || expired) {
        let record = GcRecord {
            dsv_gc: 1,
            listed_at_ms: now,
            candidates,
        };
        let body = serde_json::to_vec(&record).map_err(|e| Error::Remote {
            remote: name.to_string(),
            message: format!("encoding the gc record: {e}"),
        })?;
        let key = format!(
            "{RECORDS}/{:020}-{}.json",
            now.max(0),
            &ObjectId::hash(&body).to_string()[..16]
        );
        remote.put(&remote.path(&[&key]), body.into(), true)?;
    }
    // Phase two: candidates of records past the grace period.
    for (key, record) in &state.records {
        if record.listed_at_ms.saturating_add(grace_ms) > now {
            for c in &record.candidates {
                report.kept.pending.add(c.objects, c.bytes);
            }
            continue;
        }
        for c in &record.candidates {
            let present = listed.iter().find(|p| p.pack == c.pack);
            let Some(p) = present else { continue };
            let bytes = p.pack_size.unwrap_or(0);
            if !opts.dry_run {
                // The index first: the pack stops being visible before it goes.
                delete(&remote, &idx_name(&c.pack))?;
                delete(&remote, &pack_name(&c.pack))?;
            }
            report.freed.add(c.objects, bytes);
        }
        if !opts.dry_run {
            delete(&remote, key)?;
        }
        report.records_done += 1;
    }
    report.transfer = remote.stats();
    Ok(report)
}

/// `remote.NAME.gc_rewrite_threshold` from `.dsv/config.toml`, if set (a fraction
/// above 0 and at most 1).
pub fn configured_threshold(repo: &Repository, name: &str) -> Result<Option<f64>> {
    let file = crate::config::ConfigFile::load(&super::config_path(repo))?;
    let key = format!("remote.{name}.gc_rewrite_threshold");
    let Some(v) = file.values.get(&key) else {
        return Ok(None);
    };
    match v.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 1.0 => Ok(Some(t)),
        _ => Err(Error::Config {
            path: file.path.clone(),
            message: format!(
                "{key} must be a fraction above 0 and at most 1, not '{}'",
                crate::quote::text(v)
            ),
        }),
    }
}

/// A retention pin on a remote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pin {
    /// The pinned commit.
    pub commit: ObjectId,
    /// Why it is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn pin_key(commit: &ObjectId) -> String {
    format!("{PINS}/{commit}")
}

/// Pins `commit` on remote `name` (`refs/pins/<hex>`), so gc keeps it and its
/// history whatever happens to branches. The commit must be on the remote.
pub fn add_pin(repo: &Repository, name: &str, commit: ObjectId, note: Option<&str>) -> Result<()> {
    let remote = open_remote(repo, name)?;
    let index = super::load_index(repo, &remote)?;
    if !index.kept(&commit) {
        return Err(gc_err(GcError::PinNotOnRemote {
            remote: name.to_string(),
            commit,
        }));
    }
    let body = serde_json::to_vec(&Pin {
        commit,
        note: note.map(str::to_string),
    })
    .map_err(|e| Error::Remote {
        remote: name.to_string(),
        message: format!("encoding the pin: {e}"),
    })?;
    remote.put(&remote.path(&[&pin_key(&commit)]), body.into(), false)?;
    Ok(())
}

/// Every pin of remote `name`, by commit. A pin that cannot be read is an error.
pub fn list_pins(repo: &Repository, name: &str) -> Result<Vec<Pin>> {
    let remote = open_remote(repo, name)?;
    let mut out = Vec::new();
    for meta in remote.list(&[PINS])? {
        let key = relative_key(&remote, &meta.location);
        let bad = |reason: String| {
            gc_err(GcError::BadRef {
                remote: name.to_string(),
                key: crate::quote::short(&key),
                reason,
            })
        };
        let Some(bytes) = remote.get_small(&meta.location, super::MAX_METADATA_OBJECT)? else {
            continue;
        };
        let pin: Pin = serde_json::from_slice(&bytes).map_err(|_| {
            bad(format!(
                "not a pin (starts '{}')",
                super::quote_prefix(&bytes)
            ))
        })?;
        out.push(pin);
    }
    out.sort_by_key(|p| p.commit);
    Ok(out)
}

/// Removes the pin of `commit` from remote `name`.
pub fn remove_pin(repo: &Repository, name: &str, commit: ObjectId) -> Result<()> {
    let remote = open_remote(repo, name)?;
    let key = pin_key(&commit);
    if remote.head(&remote.path(&[&key]))?.is_none() {
        return Err(gc_err(GcError::NoSuchPin {
            remote: name.to_string(),
            commit,
        }));
    }
    delete(&remote, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let r = GcRecord {
            dsv_gc: 1,
            listed_at_ms: 5,
            candidates: vec![Candidate {
                pack: ObjectId([1; 32]),
                bytes: 10,
                objects: 2,
                why: Why::Rewritten,
            }],
        };
        let bytes = serde_json::to_vec(&r).unwrap();
        assert_eq!(parse_record(&bytes), Ok(r));
        assert!(
            parse_record(b"\x1b[2Jgarbage")
                .unwrap_err()
                .contains("\\u{1b}")
        );
        assert!(parse_record(br#"{"dsv_gc":2,"listed_at_ms":1,"candidates":[]}"#).is_err());
    }

    #[test]
    fn classes_follow_records_and_their_listing_times() {
        let a = ObjectId([1; 32]);
        let b = ObjectId([2; 32]);
        let st = GcState {
            records: vec![(
                "k".into(),
                GcRecord {
                    dsv_gc: 1,
                    listed_at_ms: 1000,
                    candidates: vec![Candidate {
                        pack: a,
                        bytes: 1,
                        objects: 1,
                        why: Why::Unreferenced,
                    }],
                },
            )],
        };
        assert_eq!(st.class_of(&a, 10), PackClass::Retiring);
        assert_eq!(st.class_of(&b, 999), PackClass::Settled);
        assert_eq!(st.class_of(&b, 1000), PackClass::Fresh);
        assert_eq!(GcState::default().class_of(&b, 5000), PackClass::Settled);
    }
}
