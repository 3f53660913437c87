//! Dataset statistics: frames, objects, per-class and per-attribute counts.
//!
//! Statistics add up over a tree, so they are computed per directory (and per
//! shard of a large directory) and cached by the content id of that subtree:
//! asking again for the same commit is one cache lookup, and a new commit
//! recomputes only the subtrees that changed. Inside a changed subtree, each
//! label file's counts are cached by its content id, so an unchanged label file
//! is never parsed twice. The cache (`.dsv/cache/labels.redb`) holds only
//! derived data: deleting it loses nothing, and when another process has it
//! open dsv computes without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::layout::{Layout, NAMES_FILES, Role};
use crate::labels::{AttrValue, FrameLabels};
use crate::object::tree::TreeObject;
use crate::object::{EntryMode, Tree};
use crate::ops::sources::TreeSource;
use crate::store::ObjectStore;

/// Version of the cached encoding; part of every cache key.
const CACHE_VERSION: &[u8] = b"dsv-stats-1";
const SUBTREES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("subtrees");
const FILES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("files");

/// How many parse failures a summary keeps by name.
const MAX_ERRORS: usize = 20;

/// Counts over a set of files; adds up over directories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Frame files (images, lidar sweeps).
    pub frames: u64,
    /// Label files that parsed.
    pub label_files: u64,
    /// Frame entries in label files with at least one object.
    pub labelled_frames: u64,
    /// Frame entries in label files with no objects.
    pub empty_label_frames: u64,
    /// Labelled objects.
    pub objects: u64,
    /// Objects per class.
    pub classes: BTreeMap<String, u64>,
    /// Objects per attribute and value (`score` and other real numbers count under "number").
    pub attributes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Frames per frame-level attribute and value.
    pub frame_attributes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Label files that did not parse.
    pub label_errors: u64,
    /// The first few of them, as "path: line N: message".
    pub errors: Vec<String>,
}

impl Stats {
    /// Frames that no label file gives an object: frames minus labelled frames.
    pub fn frames_without_labels(&self) -> u64 {
        self.frames.saturating_sub(self.labelled_frames)
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, o: &Stats) {
        self.frames += o.frames;
        self.label_files += o.label_files;
        self.labelled_frames += o.labelled_frames;
        self.empty_label_frames += o.empty_label_frames;
        self.objects += o.objects;
        for (k, v) in &o.classes {
            *self.classes.entry(k.clone()).or_default() += v;
        }
        for (map, other) in [
            (&mut self.attributes, &o.attributes),
            (&mut self.frame_attributes, &o.frame_attributes),
        ] {
            for (k, vals) in other {
                let e = map.entry(k.clone()).or_default();
                for (v, n) in vals {
                    *e.entry(v.clone()).or_default() += n;
                }
            }
        }
        self.label_errors += o.label_errors;
        for e in &o.errors {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(e.clone());
            }
        }
    }

    fn add_frames(&mut self, frames: &[FrameLabels]) {
        self.label_files += 1;
        for f in frames {
            if f.objects.is_empty() {
                self.empty_label_frames += 1;
            } else {
                self.labelled_frames += 1;
            }
            for (k, v) in &f.attributes {
                *self
                    .frame_attributes
                    .entry(k.clone())
                    .or_default()
                    .entry(attr_bucket(v))
                    .or_default() += 1;
            }
            for o in &f.objects {
                self.objects += 1;
                *self.classes.entry(o.class.clone()).or_default() += 1;
                for (k, v) in &o.attributes {
                    *self
                        .attributes
                        .entry(k.clone())
                        .or_default()
                        .entry(attr_bucket(v))
                        .or_default() += 1;
                }
            }
        }
    }
}

/// The value an attribute is counted under.
fn attr_bucket(v: &AttrValue) -> String {
    match v {
        AttrValue::Float(_) => "number".into(),
        other => other.to_string(),
    }
}

/// The difference between two sets of counts (`dsv stats A B`).
#[derive(Debug, Clone, Serialize)]
pub struct StatsDelta {
    /// Counts of the first revision.
    pub before: Stats,
    /// Counts of the second revision.
    pub after: Stats,
    /// Per-class (before, after, after - before), every class of either side.
    pub classes: BTreeMap<String, (u64, u64, i64)>,
}

impl StatsDelta {
    /// Pairs up two sets of counts.
    pub fn new(before: Stats, after: Stats) -> StatsDelta {
        let mut classes = BTreeMap::new();
        for k in before.classes.keys().chain(after.classes.keys()) {
            let b = before.classes.get(k).copied().unwrap_or(0);
            let a = after.classes.get(k).copied().unwrap_or(0);
            classes.insert(k.clone(), (b, a, a as i64 - b as i64));
        }
        StatsDelta {
            before,
            after,
            classes,
        }
    }
}

/// The derived-data cache; `None` inside when it could not be opened.
pub struct StatsCache {
    db: Option<redb::Database>,
}

impl StatsCache {
    /// Opens (creating) the cache under `.dsv/cache/`; never fails: a cache that
    /// cannot be opened (another process has it, disk full) is simply not used.
    pub fn open(dsv_dir: &Path) -> StatsCache {
        let dir = dsv_dir.join("cache");
        let path = dir.join("labels.redb");
        let db = std::fs::create_dir_all(&dir)
            .ok()
            .and_then(|_| match redb::Database::create(&path) {
                Ok(db) => Some(db),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => None,
                Err(_) => {
                    // A cache that does not open is rebuilt from scratch.
                    let _ = std::fs::remove_file(&path);
                    redb::Database::create(&path).ok()
                }
            });
        StatsCache { db }
    }

    /// A cache that stores nothing.
    pub fn disabled() -> StatsCache {
        StatsCache { db: None }
    }

    fn get(&self, table: TableDefinition<[u8; 32], &[u8]>, key: &[u8; 32]) -> Option<Stats> {
        let db = self.db.as_ref()?;
        let tx = db.begin_read().ok()?;
        let t = tx.open_table(table).ok()?;
        let v = t.get(key).ok()??;
        serde_json::from_slice(v.value()).ok()
    }

    fn get_many(
        &self,
        table: TableDefinition<[u8; 32], &[u8]>,
        keys: &[[u8; 32]],
    ) -> Vec<Option<Stats>> {
        let lookup = || -> Option<Vec<Option<Stats>>> {
            let db = self.db.as_ref()?;
            let tx = db.begin_read().ok()?;
            let t = tx.open_table(table).ok()?;
            Some(
                keys.iter()
                    .map(|k| {
                        t.get(k)
                            .ok()
                            .flatten()
                            .and_then(|v| serde_json::from_slice(v.value()).ok())
                    })
                    .collect(),
            )
        };
        lookup().unwrap_or_else(|| vec![None; keys.len()])
    }

    fn put(&self, subtrees: &[([u8; 32], Stats)], files: &[([u8; 32], Stats)]) {
        let Some(db) = &self.db else { return };
        let write = || -> std::result::Result<(), Box<dyn std::error::Error>> {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(SUBTREES)?;
                for (k, s) in subtrees {
                    t.insert(k, serde_json::to_vec(s)?.as_slice())?;
                }
                let mut t = tx.open_table(FILES)?;
                for (k, s) in files {
                    t.insert(k, serde_json::to_vec(s)?.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        // Derived data only: failing to save it costs time next run, nothing else.
        let _ = write();
    }
}

/// Rules that apply at a directory: the layout plus the YOLO class names
/// inherited from the nearest names file above.
#[derive(Clone)]
struct Scope {
    names: Option<Arc<Vec<String>>>,
    digest: [u8; 32],
}

fn key(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(CACHE_VERSION);
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

struct Walk<'a> {
    store: &'a ObjectStore,
    layout: &'a Layout,
    src: &'a TreeSource<'a>,
    cache: &'a StatsCache,
    new_subtrees: std::sync::Mutex<Vec<([u8; 32], Stats)>>,
    new_files: std::sync::Mutex<Vec<([u8; 32], Stats)>>,
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

impl Walk<'_> {
    /// Counts of the directory object `id` at `path` (a directory or one shard of it).
    fn dir(&self, id: &ObjectId, path: &str, scope: &Scope) -> Result<Stats> {
        let k = key(&[&id.0, path.as_bytes(), &scope.digest, &self.layout.toml.digest]);
        if let Some(s) = self.cache.get(SUBTREES, &k) {
            return Ok(s);
        }
        let stats = match Tree::load_object(self.store, id)? {
            TreeObject::Shards(shards) => {
                let parts: Vec<Result<Stats>> = shards
                    .par_iter()
                    .map(|s| self.dir(&s.id, path, scope))
                    .collect();
                let mut total = Stats::default();
                for p in parts {
                    total.add(&p?);
                }
                total
            }
            TreeObject::Entries(entries) => self.entries(&entries, path, scope)?,
        };
        if let Ok(mut v) = self.new_subtrees.lock() {
            v.push((k, stats.clone()));
        }
        Ok(stats)
    }

    fn entries(
        &self,
        entries: &[crate::object::TreeEntry],
        path: &str,
        scope: &Scope,
    ) -> Result<Stats> {
        // A names file here applies to this directory and everything below it.
        let mut scope = scope.clone();
        for n in NAMES_FILES {
            if let Some(e) = entries.iter().find(|e| e.name == n.as_bytes()) {
                let bytes = self.store.get(&e.id)?;
                if let Ok(names) = crate::labels::yolo::parse_class_names(n, &bytes) {
                    scope = Scope {
                        names: Some(Arc::new(names)),
                        digest: e.id.0,
                    };
                }
                break;
            }
        }
        let mut total = Stats::default();
        let mut files: Vec<(&crate::object::TreeEntry, String)> = Vec::new();
        let mut dirs: Vec<(&crate::object::TreeEntry, String)> = Vec::new();
        for e in entries {
            let p = join(path, &e.name);
            match e.mode {
                EntryMode::Dir => dirs.push((e, p)),
                m if m.is_blob() => match self.layout.role_by_path(&p) {
                    Some(Role::Frame) => total.frames += 1,
                    Some(Role::Other) => {}
                    _ => files.push((e, p)),
                },
                _ => {}
            }
        }
        let sub: Vec<Result<Stats>> = dirs
            .par_iter()
            .map(|(e, p)| self.dir(&e.id, p, &scope))
            .collect();
        for s in sub {
            total.add(&s?);
        }
        let keys: Vec<[u8; 32]> = files
            .iter()
            .map(|(e, p)| {
                let rule = self.layout.toml.rule_for(p).map(|r| r.pattern.as_bytes());
                key(&[
                    &e.id.0,
                    stem_of(p).as_bytes(),
                    &scope.digest,
                    rule.unwrap_or(b""),
                ])
            })
            .collect();
        let cached = self.cache.get_many(FILES, &keys);
        let parsed: Vec<Result<Stats>> = files
            .par_iter()
            .zip(cached.into_par_iter())
            .zip(keys.par_iter())
            .map(|(((e, p), hit), k)| {
                if let Some(s) = hit {
                    return Ok(s);
                }
                let s = self.file(&e.id, p, &scope)?;
                if let Ok(mut v) = self.new_files.lock() {
                    v.push((*k, s.clone()));
                }
                Ok(s)
            })
            .collect();
        for s in parsed {
            total.add(&s?);
        }
        Ok(total)
    }

    fn file(&self, id: &ObjectId, path: &str, scope: &Scope) -> Result<Stats> {
        let bytes = self.store.get(id)?;
        let mut s = Stats::default();
        let Role::Label(format) = self.layout.role(path, &bytes) else {
            return Ok(s);
        };
        let parsed = if format == crate::labels::Format::Yolo
            && self.layout.toml.rule_for(path).and_then(|r| r.names.as_ref()).is_none()
        {
            let ctx = crate::labels::ParseContext {
                class_names: scope.names.as_ref().map(|n| n.as_ref().clone()),
                stem: stem_of(path).to_string(),
            };
            crate::labels::parse(format, &bytes, &ctx).map_err(|e| (path.to_string(), e))
        } else {
            self.layout.parse(self.src, path, format, &bytes)?
        };
        match parsed {
            Ok(frames) => s.add_frames(&frames),
            Err((file, e)) => {
                s.label_errors += 1;
                s.errors.push(format!("{file}: {e}"));
            }
        }
        Ok(s)
    }
}

fn stem_of(path: &str) -> &str {
    let f = path.rsplit_once('/').map_or(path, |(_, f)| f);
    f.rsplit_once('.').map_or(f, |(s, _)| s)
}

/// Statistics of a stored tree (a commit's root tree).
pub fn tree_stats(store: &ObjectStore, tree: &ObjectId, cache: &StatsCache) -> Result<Stats> {
    let src = TreeSource::new(store, Some(*tree));
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let walk = Walk {
        store,
        layout: &layout,
        src: &src,
        cache,
        new_subtrees: Default::default(),
        new_files: Default::default(),
    };
    let root = Scope {
        names: None,
        digest: [0; 32],
    };
    let stats = walk.dir(tree, "", &root)?;
    let subtrees = walk.new_subtrees.into_inner().unwrap_or_default();
    let files = walk.new_files.into_inner().unwrap_or_default();
    if !subtrees.is_empty() || !files.is_empty() {
        cache.put(&subtrees, &files);
    }
    Ok(stats)
}

/// Statistics of a commit, by revision.
pub fn rev_stats(repo: &crate::Repository, rev: &str, cache: &StatsCache) -> Result<(ObjectId, Stats)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
    Ok((c, tree_stats(&repo.store, &tree, cache)?))
}
