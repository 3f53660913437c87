//! `fsck`: verify every stored object and that everything referenced exists.
//!
//! Every record in every pack is re-read, decompressed and re-hashed. Then the
//! history is walked from all refs, reflogs and the index; a missing or corrupt
//! object is reported with the paths (and commits) that use it, so a user knows
//! which files are affected.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::tree::TreeObject;
use crate::object::{Commit, EntryMode, Tree};
use crate::paths::display_path;
use crate::progress::Progress;
use crate::repo::Repository;

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The object involved (if any).
    pub id: Option<ObjectId>,
    /// What is wrong.
    pub message: String,
    /// Paths (with the commit they were found in) that use the object.
    pub used_by: Vec<String>,
}

/// The outcome of a check.
#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    /// Objects verified.
    pub objects: u64,
    /// Commits reachable.
    pub commits: u64,
    /// Problems found.
    pub problems: Vec<Problem>,
}

/// Runs the full check.
pub fn fsck(repo: &Repository, progress: &dyn Progress) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    // 1. Packs present and long enough.
    let packs = repo.store.all_packs()?;
    for (n, len) in &packs {
        let path = crate::store::pack::pack_path(repo.store.packs_dir(), *n);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() >= *len => {
                let mut magic = [0u8; 8];
                let read = std::fs::File::open(&path)
                    .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut magic, 0));
                if read.is_err() || &magic != crate::store::pack::PACK_MAGIC {
                    report.problems.push(Problem {
                        id: None,
                        message: format!(
                            "pack {} has a damaged header (not {:?}); run 'dsv repair'",
                            path.display(),
                            String::from_utf8_lossy(crate::store::pack::PACK_MAGIC)
                        ),
                        used_by: vec![],
                    });
                }
            }
            Ok(m) => report.problems.push(Problem {
                id: None,
                message: format!(
                    "pack {} is truncated: {} bytes, {} committed",
                    path.display(),
                    m.len(),
                    len
                ),
                used_by: vec![],
            }),
            Err(e) => report.problems.push(Problem {
                id: None,
                message: format!("pack {} is unreadable: {e}", path.display()),
                used_by: vec![],
            }),
        }
    }
    // 2. Every record decodes and hashes to its id (raw records; concatenations checked via children).
    // Ids only (sorted): locations are looked up again for a damaged record's
    // message, and lengths and marks go in arrays beside the ids, not in maps.
    let ids = repo.store.all_object_ids()?;
    report.objects = ids.len() as u64;
    progress.start("verifying objects", Some(ids.len() as u64));
    // Each object is either damaged (with why) or has a length (for checking
    // the sizes trees claim). In slices, so the results of all of them are never
    // held at once.
    let mut sizes: Vec<u64> = Vec::with_capacity(ids.len());
    let mut bad = Vec::new();
    for part in ids.chunks(1 << 16) {
        let checked: Vec<std::result::Result<u64, String>> = part
            .par_iter()
            .map(|id| {
                progress.inc(1);
                let place = || match repo.store.locate(id) {
                    Ok(Some(loc)) => format!(
                        "record at {}:{}",
                        crate::store::pack::pack_path(repo.store.packs_dir(), loc.pack).display(),
                        loc.offset
                    ),
                    _ => format!("record of {id}"),
                };
                match repo.store.read_record(id) {
                    Ok((h, bytes)) => match h.repr {
                        crate::store::pack::Repr::Raw => {
                            if ObjectId::hash(&bytes) == *id {
                                Ok(bytes.len() as u64)
                            } else {
                                Err(format!("content does not match its id ({})", place()))
                            }
                        }
                        crate::store::pack::Repr::Concat => {
                            crate::store::pack::decode_concat(&bytes)
                                .map_err(|e| format!("{e} ({})", place()))
                                .and_then(|list| {
                                    list.iter()
                                        .try_fold(0u64, |acc, (_, len)| acc.checked_add(*len))
                                        .ok_or_else(|| "concatenation lengths overflow".to_string())
                                })
                        }
                    },
                    Err(Error::CorruptObject { reason, .. }) => Err(reason),
                    Err(e) => Err(e.to_string()),
                }
            })
            .collect();
        for (id, r) in part.iter().zip(checked) {
            match r {
                Ok(n) => sizes.push(n),
                Err(reason) => {
                    sizes.push(0);
                    bad.push((*id, reason));
                }
            }
        }
    }
    progress.finish();
    let mut broken: HashMap<ObjectId, String> = bad.into_iter().collect();
    // 3. Connectivity from every root.
    let mut roots: Vec<(String, ObjectId)> = Vec::new();
    if let Some(h) = repo.refs.head_commit()? {
        roots.push(("HEAD".into(), h));
    }
    for ns in [
        crate::refs::HEADS,
        crate::refs::TAGS,
        crate::remote::REMOTES,
    ] {
        for (name, id) in repo.refs.list(ns)? {
            roots.push((format!("{ns}{name}"), id));
        }
    }
    for name in repo.refs.reflog_names()? {
        for e in repo.refs.reflog(&name)? {
            for id in [e.old, e.new] {
                if id != crate::refs::ZERO {
                    roots.push((format!("reflog of {name}"), id));
                }
            }
        }
    }
    let mut walker = Walker {
        repo,
        seen_commits: HashSet::new(),
        seen_trees: HashSet::new(),
        checked: vec![Check::Unknown; ids.len()],
        ids: &ids,
        sizes,
        broken: &mut broken,
        users: HashMap::new(),
        partial: crate::remote::fetch::partial_remote(repo)?.is_some(),
    };
    for (origin, id) in &roots {
        walker.commit(*id, origin)?;
    }
    // Streamed: the whole index in memory would cost more than the walk.
    repo.index.for_each(|path, e| {
        if !walker.blob(&e.id, e.mode)? {
            walker
                .users
                .entry(e.id)
                .or_default()
                .push(format!("{} (index)", display_path(path)));
        }
        Ok(())
    })?;
    report.commits = walker.seen_commits.len() as u64;
    let users = std::mem::take(&mut walker.users);
    let mut ids: Vec<&ObjectId> = broken.keys().collect();
    ids.sort();
    for id in ids {
        let mut used_by = users.get(id).cloned().unwrap_or_default();
        used_by.sort();
        used_by.dedup();
        report.problems.push(Problem {
            id: Some(*id),
            message: broken[id].clone(),
            used_by,
        });
    }
    // Missing objects referenced by the walk.
    for (id, u) in &users {
        if !broken.contains_key(id) {
            let mut used_by = u.clone();
            used_by.sort();
            used_by.dedup();
            report.problems.push(Problem {
                id: Some(*id),
                message: "missing".into(),
                used_by,
            });
        }
    }
    Ok(report)
}

/// What the file check of one stored object found.
#[derive(Clone, Copy)]
enum Check {
    Unknown,
    Good,
    Bad,
}

struct Walker<'a> {
    repo: &'a Repository,
    seen_commits: HashSet<ObjectId>,
    seen_trees: HashSet<ObjectId>,
    /// Every stored object id, sorted: positions into `checked` and `sizes`.
    ids: &'a [ObjectId],
    /// Each stored object's file check, by position in `ids`.
    checked: Vec<Check>,
    /// Length of every stored object (see `real_size`), by position in `ids`.
    sizes: Vec<u64>,
    broken: &'a mut HashMap<ObjectId, String>,
    /// Problem object -> paths using it.
    users: HashMap<ObjectId, Vec<String>>,
    /// Partial clone: missing file data is expected.
    partial: bool,
}

impl Walker<'_> {
    fn note(&mut self, id: ObjectId, reason: String) {
        self.broken.entry(id).or_insert(reason);
    }

    fn commit(&mut self, id: ObjectId, origin: &str) -> Result<()> {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if !self.seen_commits.insert(id) {
                continue;
            }
            let c = match Commit::load(&self.repo.store, &id) {
                Ok(c) => c,
                Err(e) => {
                    self.note(id, e.to_string());
                    self.users
                        .entry(id)
                        .or_default()
                        .push(format!("commit referenced by {origin}"));
                    continue;
                }
            };
            let label = format!("commit {}", id.short());
            self.tree(&c.tree, b"", &label)?;
            stack.extend(c.parents);
        }
        Ok(())
    }

    fn tree(&mut self, id: &ObjectId, prefix: &[u8], commit: &str) -> Result<()> {
        if !self.seen_trees.insert(*id) {
            return Ok(());
        }
        let where_ = || format!("{}/ ({commit})", display_path(prefix));
        let obj = match Tree::load_object(&self.repo.store, id) {
            Ok(o) => o,
            Err(e) => {
                self.note(*id, e.to_string());
                let w = where_();
                self.users.entry(*id).or_default().push(w);
                return Ok(());
            }
        };
        let entries = match obj {
            TreeObject::Entries(e) => e,
            TreeObject::Shards(shards) => {
                let mut all = Vec::new();
                for s in shards {
                    match Tree::load_object(&self.repo.store, &s.id) {
                        Ok(TreeObject::Entries(mut e)) => all.append(&mut e),
                        Ok(_) => self.note(s.id, "nested shard list".into()),
                        Err(e) => {
                            self.note(s.id, e.to_string());
                            let w = where_();
                            self.users.entry(s.id).or_default().push(w);
                        }
                    }
                }
                all
            }
        };
        for e in entries {
            let mut path = prefix.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            if e.mode == EntryMode::Dir {
                // Deeper than any walk may go: a problem, not a descent.
                if let Err(err) = crate::object::tree::check_dir_depth(&path) {
                    self.note(e.id, err.to_string());
                    let w = where_();
                    self.users.entry(e.id).or_default().push(w);
                    continue;
                }
                self.tree(&e.id, &path, commit)?;
            } else if !self.blob(&e.id, e.mode)? {
                self.users
                    .entry(e.id)
                    .or_default()
                    .push(format!("{} ({commit})", display_path(&path)));
            } else if let Some(real) = self.real_size(&e.id)
                && real != e.size
            {
                // A tree is trusted for sizes (ls-tree, stats); a wrong one is damage.
                self.note(
                    *id,
                    format!(
                        "entry '{}' claims {} bytes but its object {} has {real}",
                        display_path(&path),
                        e.size,
                        e.id.short()
                    ),
                );
                let w = where_();
                self.users.entry(*id).or_default().push(w);
            }
        }
        Ok(())
    }

    /// The length of a (present, verified) file object: a raw record's length, or
    /// the sum of a concatenation's list.
    fn real_size(&self, id: &ObjectId) -> Option<u64> {
        if self.broken.contains_key(id) {
            return None;
        }
        self.ids.binary_search(id).ok().map(|i| self.sizes[i])
    }

    /// Checks a file's object and its chunks; false if anything is missing or corrupt.
    fn blob(&mut self, id: &ObjectId, _mode: EntryMode) -> Result<bool> {
        let Ok(i) = self.ids.binary_search(id) else {
            // Not stored: missing (noted once, then found in `broken`), or a
            // partial clone's file data.
            return Ok(self.blob_inner(id, 0));
        };
        match self.checked[i] {
            Check::Good => return Ok(true),
            Check::Bad => return Ok(false),
            Check::Unknown => {}
        }
        let ok = self.blob_inner(id, 0);
        self.checked[i] = if ok { Check::Good } else { Check::Bad };
        Ok(ok)
    }

    fn blob_inner(&mut self, id: &ObjectId, depth: u32) -> bool {
        if self.broken.contains_key(id) {
            return false;
        }
        if depth > 4 {
            self.note(*id, "concatenation nested too deeply".into());
            return false;
        }
        match self.ids.binary_search(id) {
            Ok(_) => {}
            // A partial clone lacks, by design, the file data it never downloaded.
            Err(_) if self.partial => return true,
            Err(_) => {
                self.note(*id, "missing".into());
                return false;
            }
        }
        match self.repo.store.children(id) {
            Ok(children) => {
                let mut ok = true;
                let mut total = 0u64;
                for (c, len) in &children {
                    total += len;
                    if !self.blob_inner(c, depth + 1) {
                        // Report the chunk's damage against the file that uses it.
                        let reason = self.broken.get(c).cloned().unwrap_or_default();
                        self.note(*id, format!("chunk {} is damaged: {reason}", c.short()));
                        ok = false;
                    }
                }
                let _ = total;
                ok
            }
            Err(e) => {
                self.note(*id, e.to_string());
                false
            }
        }
    }
}
