//! `repair`: rebuild `objects.redb` from the packs, and the index from HEAD.
//!
//! Packs are self-describing: every record carries its id, so the objects,
//! packs and commits tables can be derived from them alone. Each record is
//! verified before it is indexed (a raw record's content must hash to its id; a
//! concatenation must list children that are present and stream to its id), so
//! a damaged record is skipped, never indexed. The scan resynchronises after
//! damage by looking for the next record that verifies. The new database is
//! written under a temporary name and renamed over the old one; pack bytes are
//! never removed (only a damaged pack magic is rewritten), so a repair can
//! always be run again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use serde::Serialize;

use crate::db::Db;
use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::lock::{Access, RepoLock};
use crate::object::{Commit, EntryMode};
use crate::refs::Refs;
use crate::storage::Storage;
use crate::store::pack::{self, Codec, RecordHeader, Repr};
use crate::store::{COMMITS, Location, OBJECTS, ObjectStore, PACKS};
use crate::worktree::index::{Index, IndexEntry};

/// What a repair did.
#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    /// Pack files scanned.
    pub packs: u64,
    /// Bytes of pack data scanned.
    pub bytes: u64,
    /// Records that verified and are indexed.
    pub objects: u64,
    /// Of which commits.
    pub commits: u64,
    /// Records that did not verify (damaged or torn), skipped.
    pub bad_records: u64,
    /// Bytes of pack data that belong to no verified record.
    pub unreadable_bytes: u64,
    /// Packs whose header magic was damaged and rewritten.
    pub magic_fixed: Vec<String>,
    /// Whether `index.redb` was rebuilt from HEAD (it was unreadable or named
    /// objects the packs do not hold).
    pub index_rebuilt: bool,
    /// Why the index was rebuilt.
    pub index_reason: Option<String>,
    /// Index entries written (when rebuilt).
    pub index_entries: u64,
    /// Where a damaged hooks outbox was moved to (its pending deliveries are not replayed).
    pub hooks_outbox_moved: Option<PathBuf>,
}

/// A verified record found by the scan.
#[derive(Clone, Copy)]
struct Found {
    loc: Location,
    concat: bool,
    commit: bool,
}

#[derive(Default)]
struct PackScan {
    found: Vec<(ObjectId, Found)>,
    bad: u64,
    unreadable: u64,
    bad_magic: bool,
    len: u64,
}

/// Rebuilds the repository databases of the repository at `root` (its worktree
/// root). Takes the write lock itself: the repository cannot be opened normally
/// while its database is damaged.
pub fn repair(
    root: &Path,
    storage: Arc<dyn Storage>,
    lock_timeout: Option<Duration>,
) -> Result<RepairReport> {
    let dsv = root.join(crate::repo::DSV_DIR);
    let _lock = RepoLock::acquire(
        &dsv,
        Access::Write,
        lock_timeout.unwrap_or(Duration::from_secs(3)),
    )?;
    let mut report = RepairReport::default();
    let packs_dir = dsv.join("packs");
    let mut numbers: Vec<(u32, PathBuf)> = Vec::new();
    match std::fs::read_dir(&packs_dir) {
        Ok(rd) => {
            for ent in rd {
                let ent = ent.ctx("reading", &packs_dir)?;
                if let Some(n) = ent.file_name().to_str().and_then(pack::parse_pack_name) {
                    numbers.push((n, ent.path()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            storage.create_dir_all(&packs_dir)?;
        }
        Err(e) => return Err(Error::io("reading", &packs_dir, e)),
    }
    numbers.sort();
    let scans: Vec<PackScan> = numbers
        .par_iter()
        .map(|(n, path)| scan_pack(*n, path))
        .collect::<Result<_>>()?;
    // First occurrence wins: packs in number order, records in offset order.
    let mut objects: HashMap<ObjectId, Found> = HashMap::new();
    let mut pack_lens: Vec<(u32, u64)> = Vec::new();
    for ((n, path), scan) in numbers.iter().zip(scans) {
        report.packs += 1;
        report.bytes += scan.len;
        report.bad_records += scan.bad;
        report.unreadable_bytes += scan.unreadable;
        if scan.bad_magic {
            // The magic is known; rewriting it loses nothing.
            let f = storage.open_write(path)?;
            storage.write_at(&f, path, 0, pack::PACK_MAGIC)?;
            storage.sync(&f, path)?;
            report.magic_fixed.push(path.display().to_string());
        }
        pack_lens.push((*n, scan.len.max(pack::PACK_MAGIC.len() as u64)));
        for (id, f) in scan.found {
            objects.entry(id).or_insert(f);
        }
    }
    // Concatenations are indexed only once their content verifies.
    let objects_path = dsv.join("objects.redb");
    let tmp = crate::storage::temp_name(&objects_path);
    let built = build_db(&dsv, &tmp, &storage, &objects, &pack_lens, &mut report);
    let store = match built {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // The index: kept when it reads and every entry's object is present.
    let index_problem = index_problem(&dsv, &store);
    if let Some(mut reason) = index_problem {
        // Without a readable HEAD the index starts empty (every file shows as
        // untracked; `dsv add` stages them again).
        let entries = index_from_head(root, &dsv, &store, &storage).unwrap_or_else(|e| {
            reason.push_str(&format!("; HEAD cannot be read ({e}), so it is empty"));
            BTreeMap::new()
        });
        report.index_entries = entries.len() as u64;
        drop(store);
        Index::rebuild(
            &dsv,
            &entries,
            crate::worktree::index::now_ns(),
            storage.clone(),
        )?;
        report.index_rebuilt = true;
        report.index_reason = Some(reason);
    } else {
        drop(store);
    }
    storage.rename(&tmp, &objects_path)?;
    crate::storage::sync_dir(&dsv);
    // Every pack length is now committed: no record of writes is needed.
    let writes = dsv.join(crate::store::PACK_WRITES);
    if writes.exists() {
        storage.remove_file(&writes)?;
    }
    report.hooks_outbox_moved = move_damaged_outbox(&dsv, &storage)?;
    Ok(report)
}

/// Writes the tables into a new database at `tmp` and returns a store over it
/// (for verifying concatenations and reading HEAD).
fn build_db(
    dsv: &Path,
    tmp: &Path,
    storage: &Arc<dyn Storage>,
    objects: &HashMap<ObjectId, Found>,
    pack_lens: &[(u32, u64)],
    report: &mut RepairReport,
) -> Result<ObjectStore> {
    let db = Db::open_rw(tmp, storage.clone())?;
    db.guard(|| {
        let tx = db.write()?;
        {
            let mut t = tx.open_table(OBJECTS).map_err(|e| db.err(e))?;
            let mut ids: Vec<_> = objects.iter().collect();
            ids.sort_unstable_by_key(|(id, _)| **id);
            for (id, f) in ids {
                t.insert(&id.0, (f.loc.pack, f.loc.offset, f.loc.len))
                    .map_err(|e| db.err(e))?;
            }
            let mut p = tx.open_table(PACKS).map_err(|e| db.err(e))?;
            for (n, len) in pack_lens {
                p.insert(n, len).map_err(|e| db.err(e))?;
            }
            let mut c = tx.open_table(COMMITS).map_err(|e| db.err(e))?;
            for (id, f) in objects {
                if f.commit {
                    c.insert(&id.0, ()).map_err(|e| db.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| db.err(e))
    })?;
    let store = ObjectStore::open(dsv, db, storage.clone())?;
    let concats: Vec<ObjectId> = objects
        .iter()
        .filter(|(_, f)| f.concat)
        .map(|(id, _)| *id)
        .collect();
    let bad: Vec<ObjectId> = concats
        .par_iter()
        .filter(|id| store.read_into(id, &mut std::io::sink()).is_err())
        .copied()
        .collect();
    if !bad.is_empty() {
        let db = store.db();
        db.guard(|| {
            let tx = db.write()?;
            {
                let mut t = tx.open_table(OBJECTS).map_err(|e| db.err(e))?;
                for id in &bad {
                    t.remove(&id.0).map_err(|e| db.err(e))?;
                }
            }
            tx.commit().map_err(|e| db.err(e))
        })?;
        store.forget_readers();
    }
    report.bad_records += bad.len() as u64;
    report.objects = (objects.len() - bad.len()) as u64;
    report.commits = objects.values().filter(|f| f.commit).count() as u64;
    Ok(store)
}

/// Scans one pack for records that verify.
fn scan_pack(n: u32, path: &Path) -> Result<PackScan> {
    let file = std::fs::File::open(path).ctx("opening pack", path)?;
    let len = file.metadata().ctx("reading", path)?.len();
    let mut scan = PackScan {
        len,
        ..PackScan::default()
    };
    if len == 0 {
        return Ok(scan);
    }
    // SAFETY: the file is a pack under the repository's write lock, which every
    // writer takes, so nothing truncates it while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.ctx("reading", path)?;
    let bytes: &[u8] = &map;
    let magic = pack::PACK_MAGIC.len();
    scan.bad_magic = bytes.get(..magic) != Some(&pack::PACK_MAGIC[..]);
    let mut o = magic.min(bytes.len());
    let mut bad_run = false;
    while o + pack::RECORD_HEADER <= bytes.len() {
        // Record offsets are u32 in the objects table.
        let Ok(offset) = u32::try_from(o) else { break };
        match verify_record(&bytes[o..]) {
            Some((rec_len, id, concat, commit)) => {
                scan.found.push((
                    id,
                    Found {
                        loc: Location {
                            pack: n,
                            offset,
                            len: rec_len as u32,
                        },
                        concat,
                        commit,
                    },
                ));
                o += rec_len;
                bad_run = false;
            }
            None => {
                if !bad_run {
                    scan.bad += 1;
                    bad_run = true;
                }
                let next =
                    memchr(pack::RECORD_MAGIC, &bytes[o + 1..]).map_or(bytes.len(), |i| o + 1 + i);
                scan.unreadable += (next - o) as u64;
                o = next;
            }
        }
    }
    if o < bytes.len() {
        if !bad_run {
            scan.bad += 1;
        }
        scan.unreadable += (bytes.len() - o) as u64;
    }
    Ok(scan)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

/// The length, id and kind (concatenation, commit) of the record at the start
/// of `b`, if it is whole and verifies.
fn verify_record(b: &[u8]) -> Option<(usize, ObjectId, bool, bool)> {
    let h = RecordHeader::decode(b).ok()?;
    let len = pack::RECORD_HEADER.checked_add(h.stored_len as usize)?;
    let payload = b.get(pack::RECORD_HEADER..len)?;
    let raw = match h.codec {
        Codec::None => std::borrow::Cow::Borrowed(payload),
        Codec::Zstd => std::borrow::Cow::Owned(pack::decode_payload(&h, payload.to_vec()).ok()?),
    };
    match h.repr {
        Repr::Raw => {
            if ObjectId::hash(&raw) != h.id {
                return None;
            }
            Some((len, h.id, false, is_commit(&raw)))
        }
        Repr::Concat => {
            let children = pack::decode_concat(&raw).ok()?;
            (!children.is_empty()).then_some((len, h.id, true, false))
        }
    }
}

/// Whether bytes are a commit in its canonical encoding.
fn is_commit(raw: &[u8]) -> bool {
    raw.starts_with(b"{\"format\":")
        && Commit::decode(raw).is_ok_and(|c| c.encode().as_slice() == raw)
}

/// Why the index must be rebuilt, if it must.
fn index_problem(dsv: &Path, store: &ObjectStore) -> Option<String> {
    let path = dsv.join("index.redb");
    let state = Index::open(dsv, false, Arc::new(crate::storage::OsStorage)).and_then(|i| i.load());
    match state {
        Err(e) => Some(e.to_string()),
        Ok(state) => {
            let missing = state
                .entries
                .iter()
                .find(|(_, e)| !store.contains(&e.id).unwrap_or(false));
            missing.map(|(p, e)| {
                format!(
                    "{}: '{}' names object {}, which no pack holds",
                    path.display(),
                    String::from_utf8_lossy(p),
                    e.id.short()
                )
            })
        }
    }
}

/// Index entries for HEAD's tree: verified against the worktree file where it
/// matches (so status trusts it), unverified otherwise (status re-hashes it).
fn index_from_head(
    root: &Path,
    dsv: &Path,
    store: &ObjectStore,
    storage: &Arc<dyn Storage>,
) -> Result<BTreeMap<Vec<u8>, IndexEntry>> {
    use std::os::unix::ffi::OsStrExt;
    let refs = Refs::new(dsv, storage.clone());
    let Some(head) = refs.head_commit()? else {
        return Ok(BTreeMap::new());
    };
    let commit = Commit::load(store, &head)?;
    let files = crate::object::diff::flatten(store, &commit.tree)?;
    let entries = files
        .into_par_iter()
        .map(|(path, st)| {
            let full = root.join(std::ffi::OsStr::from_bytes(&path));
            let entry = match worktree_id(&full, st.mode) {
                Some((id, stat)) if id == st.id => IndexEntry {
                    mode: st.mode,
                    id,
                    stat,
                },
                _ => IndexEntry::unverified(st.mode, st.id, st.size),
            };
            (path, entry)
        })
        .collect();
    Ok(entries)
}

/// The id and stat of a worktree file, if it is the kind `mode` says.
fn worktree_id(path: &Path, mode: EntryMode) -> Option<(ObjectId, crate::store::chunk::StatStamp)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let stat = crate::store::chunk::StatStamp::of(&meta);
    let bytes = match mode {
        EntryMode::Symlink if meta.file_type().is_symlink() => std::fs::read_link(path)
            .ok()?
            .as_os_str()
            .as_bytes()
            .to_vec(),
        EntryMode::File | EntryMode::Exec if meta.is_file() => {
            let exec = meta.permissions().mode() & 0o111 != 0;
            if exec != (mode == EntryMode::Exec) {
                return None;
            }
            Vec::new()
        }
        _ => return None,
    };
    let mut h = blake3::Hasher::new();
    if meta.is_file() {
        let mut f = std::fs::File::open(path).ok()?;
        std::io::copy(&mut f, &mut h).ok()?;
    } else {
        h.update(&bytes);
    }
    let after = std::fs::symlink_metadata(path).ok()?;
    (crate::store::chunk::StatStamp::of(&after) == stat)
        .then(|| (ObjectId(*h.finalize().as_bytes()), stat))
}

/// The first damage found in the repository's databases by reading them whole
/// (read-only), as an error naming the file; for reporting a failure whose
/// cause is not known.
pub fn diagnose(dsv: &Path) -> Option<Error> {
    let objects = dsv.join("objects.redb");
    let store = Db::open_ro(&objects)
        .and_then(|db| ObjectStore::open(dsv, db, Arc::new(crate::storage::OsStorage)));
    let check = store.and_then(|s| {
        s.all_packs()?;
        s.all_commits()?;
        s.all_objects().map(|_| ())
    });
    if let Err(e) = check {
        return Some(e);
    }
    Index::open(dsv, false, Arc::new(crate::storage::OsStorage))
        .and_then(|i| i.load())
        .err()
}

/// Moves a hooks outbox that cannot be read out of the way (its deliveries
/// cannot be recovered; the next hook records into a fresh one).
fn move_damaged_outbox(dsv: &Path, storage: &Arc<dyn Storage>) -> Result<Option<PathBuf>> {
    let path = dsv.join("hooks.redb");
    if !path.exists() {
        return Ok(None);
    }
    let readable = crate::db::contain(&path, || {
        let mut db = Db::open_rw(&path, storage.clone())?;
        db.check_integrity()
    });
    if matches!(readable, Ok(true)) {
        return Ok(None);
    }
    let to = dsv.join("hooks.redb.damaged");
    storage.rename(&path, &to)?;
    Ok(Some(to))
}
