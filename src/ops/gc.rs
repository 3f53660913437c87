//! `gc`: drop objects no ref, reflog or index entry can reach, and repack.
//!
//! Reachable records are copied byte for byte into fresh packs, the index is
//! switched to them in one redb transaction, and only then are old packs
//! deleted. A crash at any point leaves either the old packs or the new ones
//! fully indexed; stray pack files are removed by the next gc.

use redb::ReadableTable;
use serde::Serialize;

use crate::error::{IoContext, Result};
use crate::id::ObjectId;
use crate::object::tree::TreeObject;
use crate::object::{Commit, EntryMode, Tree};
use crate::repo::{Repository, WritableRepo};
use crate::store::{COMMITS, IdMarks, OBJECTS, PACKS, pack};

/// What gc did.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Objects kept.
    pub kept: u64,
    /// Objects dropped.
    pub dropped: u64,
    /// Pack bytes before.
    pub bytes_before: u64,
    /// Pack bytes after.
    pub bytes_after: u64,
    /// Pack files before.
    pub packs_before: u64,
    /// Pack files after.
    pub packs_after: u64,
}

/// Largest `dsv.toml` read for its `[retention]` section (a settings file, not data).
const MAX_DSV_TOML: u64 = 16 << 20;

/// Why the `[retention]` section of `dsv.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// A revision to keep names nothing: gc would silently keep nothing of it.
    #[error(
        "dsv.toml [retention] keep: '{rev}' does not resolve to a commit ({reason}); gc stops rather than keep nothing of it (fix the entry, or use a full commit id)"
    )]
    Unresolved {
        /// The revision as written.
        rev: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// `dsv.toml` cannot be read or parsed.
    #[error("{path}: {reason}")]
    BadFile {
        /// Where it was read.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl crate::error::ModuleError for RetentionError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Configuration
    }
}

crate::error::module_error!(RetentionError);

/// A version `[retention] keep` in `dsv.toml` names, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Retained {
    /// The revision as written.
    pub rev: String,
    /// The commit it names.
    pub commit: ObjectId,
}

/// The revisions `[retention] keep` of `dsv.toml` names: the working tree's file,
/// else (a sparse working tree without it) the index's version. Empty without one.
pub fn retention(repo: &Repository) -> Result<Vec<String>> {
    let path = repo.root().join(crate::dsv_toml::FILE_NAME);
    let bad = |reason: String| RetentionError::BadFile {
        path: path.display().to_string(),
        reason,
    };
    let bytes = match crate::refs::read_capped(&path, MAX_DSV_TOML) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match repo.index.get(crate::dsv_toml::FILE_NAME.as_bytes())? {
                Some(e) if e.stat.size <= MAX_DSV_TOML => repo.store.get(&e.id)?,
                Some(_) => return Err(bad(format!("more than {MAX_DSV_TOML} bytes")).into()),
                None => return Ok(Vec::new()),
            }
        }
        Err(e) => return Err(crate::error::Error::io("reading", path, e)),
    };
    if bytes.len() as u64 > MAX_DSV_TOML {
        return Err(bad(format!("more than {MAX_DSV_TOML} bytes")).into());
    }
    let toml = crate::dsv_toml::DsvToml::parse(&bytes).map_err(|e| bad(e.0))?;
    Ok(toml.retain)
}

/// Resolves revisions to keep: each must name a commit of this repository, or be
/// a full commit id (which a remote may hold though this clone does not).
pub fn resolve_retention(repo: &Repository, revs: &[String]) -> Result<Vec<Retained>> {
    let mut out = Vec::with_capacity(revs.len());
    for rev in revs {
        let commit = match super::revparse::resolve(repo, rev) {
            Ok(id) => id,
            Err(e) => ObjectId::from_hex(rev.trim()).ok_or_else(|| RetentionError::Unresolved {
                rev: crate::quote::short(rev),
                reason: e.to_string(),
            })?,
        };
        out.push(Retained {
            rev: rev.clone(),
            commit,
        });
    }
    Ok(out)
}

/// Every object reachable from refs, reflogs, the index and the commits in `keep`.
pub fn reachable(repo: &Repository, keep: &[ObjectId]) -> Result<IdMarks> {
    // One bit per stored object, not a hash-set entry: this set spans the store.
    let mut live = IdMarks::new(repo.store.all_object_ids()?);
    let mut commits: Vec<ObjectId> = keep.to_vec();
    commits.extend(repo.refs.head_commit()?);
    for ns in [
        crate::refs::HEADS,
        crate::refs::TAGS,
        crate::remote::REMOTES,
    ] {
        commits.extend(repo.refs.list(ns)?.into_iter().map(|(_, id)| id));
    }
    for name in repo.refs.reflog_names()? {
        for e in repo.refs.reflog(&name)? {
            commits.extend(
                [e.old, e.new]
                    .into_iter()
                    .filter(|i| *i != crate::refs::ZERO),
            );
        }
    }
    let mut trees = Vec::new();
    while let Some(c) = commits.pop() {
        if !live.insert(c) || live.position(&c).is_none() {
            continue;
        }
        let commit = Commit::load(&repo.store, &c)?;
        trees.push(commit.tree);
        commits.extend(commit.parents);
    }
    // A partial clone lacks file data it never downloaded; that is not an error.
    let partial = crate::remote::fetch::partial_remote(repo)?.is_some();
    while let Some(t) = trees.pop() {
        if !live.insert(t) {
            continue;
        }
        let entries = match Tree::load_object(&repo.store, &t)? {
            TreeObject::Entries(e) => e,
            TreeObject::Shards(shards) => {
                let mut all = Vec::new();
                for s in shards {
                    live.insert(s.id);
                    if let TreeObject::Entries(mut e) = Tree::load_object(&repo.store, &s.id)? {
                        all.append(&mut e);
                    }
                }
                all
            }
        };
        for e in entries {
            if e.mode == EntryMode::Dir {
                trees.push(e.id);
            } else {
                mark_file(repo, &mut live, e.id, partial)?;
            }
        }
    }
    // Streamed: the whole index in memory would cost more than the marks.
    repo.index
        .for_each(|_, e| mark_file(repo, &mut live, e.id, partial))?;
    Ok(live)
}

/// Marks a file's object and, for a large file, its segments and chunks.
fn mark_file(repo: &Repository, live: &mut IdMarks, id: ObjectId, partial: bool) -> Result<()> {
    let mut stack = vec![id];
    while let Some(b) = stack.pop() {
        if !live.insert(b) || (partial && live.position(&b).is_none()) {
            continue;
        }
        stack.extend(repo.store.children(&b)?.into_iter().map(|(c, _)| c));
    }
    Ok(())
}

/// Runs gc, keeping the commits of `keep` (the `[retention]` versions) and their history too.
pub fn gc(repo: &WritableRepo, keep: &[Retained]) -> Result<GcReport> {
    let keep: Vec<ObjectId> = keep.iter().map(|r| r.commit).collect();
    let live = reachable(repo, &keep)?;
    let store = &repo.store;
    let dead_commits: Vec<ObjectId> = store
        .all_commits()?
        .into_iter()
        .filter(|id| !live.contains(id))
        .collect();
    // The locations of the live objects only, by position in the marks' id list
    // (16 bytes each), rather than every object with its id (44 bytes each) beside
    // the marks' ids.
    let (mut kept, dead) = live_locations(store, &live)?;
    let packs = store.all_packs()?;
    let mut report = GcReport {
        packs_before: packs.len() as u64,
        bytes_before: packs.iter().map(|(_, l)| l).sum(),
        ..GcReport::default()
    };
    let max_pack = packs.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let small_packs = packs
        .iter()
        .filter(|(_, l)| *l < crate::store::PACK_TARGET_SIZE / 2)
        .count();
    if dead == 0 && small_packs <= 1 {
        report.kept = live.ids().len() as u64;
        report.packs_after = report.packs_before;
        report.bytes_after = report.bytes_before;
        remove_temp_files(repo)?;
        return Ok(report);
    }
    // Copy live records into new packs numbered after every existing one, in pack
    // order, each location replaced by the new one as its record is copied.
    kept.sort_unstable_by_key(|(_, l)| (l.pack, l.offset));
    report.dropped = dead;
    report.kept = kept.len() as u64;
    store.close_writer()?;
    let mut writer = NewPacks::new(repo, max_pack + 1)?;
    let mut open: Option<(u32, std::fs::File)> = None;
    let mut buf = Vec::new();
    for (_, loc) in kept.iter_mut() {
        let path = pack::pack_path(store.packs_dir(), loc.pack);
        // In pack order: each pack is opened once, not once per record.
        let f = match &open {
            Some((n, f)) if *n == loc.pack => f,
            _ => {
                let f = std::fs::File::open(&path).ctx("opening pack", &path)?;
                &open.insert((loc.pack, f)).1
            }
        };
        buf.resize(loc.len as usize, 0);
        std::os::unix::fs::FileExt::read_exact_at(f, &mut buf, loc.offset as u64)
            .ctx("reading pack", &path)?;
        *loc = writer.append(&buf)?;
    }
    drop(open);
    let new_packs = writer.finish()?;
    // Back in id order: the table is written front to back, not at random.
    kept.sort_unstable_by_key(|(i, _)| *i);
    // Once the transaction drops them from the table, the old packs are garbage:
    // recorded first, so a crash before their deletion still proves it.
    for (n, _) in &packs {
        store.note_write(*n, 0)?;
    }
    let db = store.db();
    let tables = Tables {
        live: &live,
        kept: &kept,
        dead_commits: &dead_commits,
    };
    if let Err(e) = db.guard(|| switch_tables(repo, &tables, &packs, &new_packs)) {
        store.mark_uncertain();
        return Err(e);
    }
    store.forget_readers();
    store.settle_packs(true)?;
    remove_temp_files(repo)?;
    report.packs_after = new_packs.len() as u64;
    report.bytes_after = new_packs.iter().map(|(_, l)| l).sum();
    Ok(report)
}

/// Walks the objects table beside the marks (both in id order): the location of
/// each live object with its position in the marks' id list, and how many are dead.
fn live_locations(
    store: &crate::store::ObjectStore,
    live: &IdMarks,
) -> Result<(Vec<(u32, crate::store::Location)>, u64)> {
    let db = store.db();
    db.guard(|| {
        let tx = db.read()?;
        let table = tx.open_table(OBJECTS).map_err(|e| db.err(e))?;
        let ids = live.ids();
        // The write lock keeps the table as `reachable` read it; should it differ
        // anyway, gc stops rather than drop an object it did not walk.
        let changed = || {
            crate::error::Error::Corrupt(format!(
                "{}: the objects table changed while gc read it; nothing was removed",
                db.path().display()
            ))
        };
        let mut kept = Vec::with_capacity(live.marked());
        let mut dead = 0u64;
        let mut i = 0usize;
        for item in table.iter().map_err(|e| db.err(e))? {
            let (k, v) = item.map_err(|e| db.err(e))?;
            if ids.get(i).map(|id| id.0) != Some(k.value()) {
                return Err(changed());
            }
            if live.is_marked(i) {
                let (pack, offset, len) = v.value();
                kept.push((i as u32, crate::store::Location { pack, offset, len }));
            } else {
                dead += 1;
            }
            i += 1;
        }
        if i != ids.len() {
            return Err(changed());
        }
        Ok((kept, dead))
    })
}

/// What gc read of the store before repacking, for [`switch_tables`].
struct Tables<'a> {
    /// Every stored object, marked when reachable.
    live: &'a IdMarks,
    /// Positions in `live`'s id list of the records copied, with their new
    /// locations, in id order.
    kept: &'a [(u32, crate::store::Location)],
    /// Stored commits no longer reachable.
    dead_commits: &'a [ObjectId],
}

/// One transaction pointing the tables at the new packs and dropping the dead ids.
fn switch_tables(
    repo: &Repository,
    old: &Tables,
    packs: &[(u32, u64)],
    new_packs: &[(u32, u64)],
) -> Result<()> {
    let store = &repo.store;
    let db = store.db();
    let tx = db.write()?;
    {
        let mut t = tx.open_table(OBJECTS).map_err(|e| db.err(e))?;
        let ids = old.live.ids();
        for (i, id) in ids.iter().enumerate() {
            if !old.live.is_marked(i) {
                t.remove(&id.0).map_err(|e| db.err(e))?;
            }
        }
        for (i, l) in old.kept {
            let id = &ids[*i as usize];
            t.insert(&id.0, (l.pack, l.offset, l.len))
                .map_err(|e| db.err(e))?;
        }
        let mut p = tx.open_table(PACKS).map_err(|e| db.err(e))?;
        for (n, _) in packs {
            p.remove(n).map_err(|e| db.err(e))?;
        }
        for (n, len) in new_packs {
            p.insert(n, len).map_err(|e| db.err(e))?;
        }
        let mut c = tx.open_table(COMMITS).map_err(|e| db.err(e))?;
        for id in old.dead_commits {
            c.remove(&id.0).map_err(|e| db.err(e))?;
        }
    }
    tx.commit().map_err(|e| db.err(e))
}

/// Deletes temporary files left in the packs directory. Stray packs (left by a
/// crash, or retired by this gc) are removed by `ObjectStore::settle_packs`,
/// which deletes only what `.dsv/pack-writes` proves is garbage.
fn remove_temp_files(repo: &Repository) -> Result<()> {
    let dir = repo.store.packs_dir();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(_) => return Ok(()),
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().to_string();
        if pack::parse_pack_name(&name).is_none() && name.contains(".dsv-tmp-") {
            repo.storage.remove_file(&ent.path())?;
        }
    }
    Ok(())
}

struct NewPacks<'a> {
    repo: &'a Repository,
    n: u32,
    file: Option<(std::fs::File, std::path::PathBuf, u64)>,
    done: Vec<(u32, u64)>,
}

impl<'a> NewPacks<'a> {
    fn new(repo: &'a Repository, first: u32) -> Result<Self> {
        Ok(NewPacks {
            repo,
            n: first,
            file: None,
            done: Vec::new(),
        })
    }

    fn append(&mut self, record: &[u8]) -> Result<crate::store::Location> {
        let storage = self.repo.storage.as_ref();
        if self.file.as_ref().is_some_and(|(_, _, len)| {
            *len > 8 && *len + record.len() as u64 > crate::store::PACK_TARGET_SIZE
        }) {
            self.close()?;
        }
        if self.file.is_none() {
            let path = pack::pack_path(self.repo.store.packs_dir(), self.n);
            if path.exists() {
                return Err(crate::error::Error::Corrupt(format!(
                    "{} already exists but the database does not list it (run 'dsv repair')",
                    path.display()
                )));
            }
            self.repo.store.note_write(self.n, 0)?;
            let mut f = storage.open_append(&path)?;
            storage.append(&mut f, &path, pack::PACK_MAGIC)?;
            self.file = Some((f, path, pack::PACK_MAGIC.len() as u64));
        }
        let (f, path, len) = self.file.as_mut().expect("opened above");
        let offset = *len as u32;
        storage.append(f, path, record)?;
        *len += record.len() as u64;
        Ok(crate::store::Location {
            pack: self.n,
            offset,
            len: record.len() as u32,
        })
    }

    fn close(&mut self) -> Result<()> {
        if let Some((f, path, len)) = self.file.take() {
            self.repo.storage.sync(&f, &path)?;
            self.done.push((self.n, len));
            self.n += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<(u32, u64)>> {
        self.close()?;
        Ok(self.done)
    }
}
