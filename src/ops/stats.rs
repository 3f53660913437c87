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
use crate::labels::layout::{Layout, NAMES_FILES, Role, stem};
use crate::labels::{AttrValue, FrameLabels};
use crate::object::tree::TreeObject;
use crate::object::{EntryMode, Tree};
use crate::ops::sources::TreeSource;
use crate::store::ObjectStore;

/// Version of the cached encoding; part of every cache key.
const CACHE_VERSION: &[u8] = b"dsv-stats-1";
const SUBTREES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("subtrees");

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
                // Look up before inserting: cloning the class name for every object
                // would be most of the cost of counting it.
                match self.classes.get_mut(&o.class) {
                    Some(n) => *n += 1,
                    None => {
                        self.classes.insert(o.class.clone(), 1);
                    }
                }
                for (k, v) in &o.attributes {
                    let bucket = attr_bucket(v);
                    let values = match self.attributes.get_mut(k) {
                        Some(m) => m,
                        None => self.attributes.entry(k.clone()).or_default(),
                    };
                    match values.get_mut(&bucket) {
                        Some(n) => *n += 1,
                        None => {
                            values.insert(bucket, 1);
                        }
                    }
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
        let db =
            std::fs::create_dir_all(&dir)
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

    fn put(&self, subtrees: &[([u8; 32], Stats)]) {
        let Some(db) = &self.db else { return };
        let write = || -> std::result::Result<(), Box<dyn std::error::Error>> {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(SUBTREES)?;
                for (k, s) in subtrees {
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
}

/// A directory object (or shard) on the way: cached counts, or what it holds.
struct Node {
    key: [u8; 32],
    cached: Option<Stats>,
    frames: u64,
    /// Label-file candidates: content id, path, the rules in effect.
    files: Vec<(ObjectId, String, Arc<Scope>)>,
    children: Vec<Node>,
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
    /// Phase 1: the directory objects below `id` that the cache does not answer,
    /// with their candidate label files (nothing is read but trees).
    fn collect(&self, id: &ObjectId, path: &str, scope: &Arc<Scope>) -> Result<Node> {
        let k = key(&[
            &id.0,
            path.as_bytes(),
            &scope.digest,
            &self.layout.toml.digest,
        ]);
        let mut node = Node {
            key: k,
            cached: self.cache.get(SUBTREES, &k),
            frames: 0,
            files: Vec::new(),
            children: Vec::new(),
        };
        if node.cached.is_some() {
            return Ok(node);
        }
        match Tree::load_object(self.store, id)? {
            TreeObject::Shards(shards) => {
                node.children = shards
                    .par_iter()
                    .map(|s| self.collect(&s.id, path, scope))
                    .collect::<Result<Vec<Node>>>()?;
            }
            TreeObject::Entries(entries) => {
                // A names file here applies to this directory and everything below it.
                let mut scope = scope.clone();
                for n in NAMES_FILES {
                    if let Some(e) = entries.iter().find(|e| e.name == n.as_bytes()) {
                        let bytes = self.store.get(&e.id)?;
                        if let Ok(names) = crate::labels::yolo::parse_class_names(n, &bytes) {
                            scope = Arc::new(Scope {
                                names: Some(Arc::new(names)),
                                digest: e.id.0,
                            });
                        }
                        break;
                    }
                }
                let mut dirs = Vec::new();
                for e in &entries {
                    let p = join(path, &e.name);
                    match e.mode {
                        EntryMode::Dir => dirs.push((e.id, p)),
                        m if m.is_blob() => match self.layout.role_by_path(&p) {
                            Some(Role::Frame) => node.frames += 1,
                            Some(Role::Other) => {}
                            _ => node.files.push((e.id, p, scope.clone())),
                        },
                        _ => {}
                    }
                }
                node.children = dirs
                    .par_iter()
                    .map(|(id, p)| self.collect(id, p, &scope))
                    .collect::<Result<Vec<Node>>>()?;
            }
        }
        Ok(node)
    }

    /// Phase 3: counts of a node from the file contents read in phase 2; records
    /// every computed subtree for the cache.
    fn total(
        &self,
        node: &Node,
        contents: &std::collections::HashMap<ObjectId, Vec<u8>>,
        out: &std::sync::Mutex<Vec<([u8; 32], Stats)>>,
    ) -> Result<Stats> {
        if let Some(s) = &node.cached {
            return Ok(s.clone());
        }
        let mut total = node
            .files
            .par_iter()
            .try_fold(Stats::default, |mut acc, (id, p, scope)| {
                // One accumulator per rayon task: a per-file Stats with its own maps
                // would cost more than parsing the file.
                let bytes = contents.get(id).map(|b| b.as_slice()).unwrap_or_default();
                self.file_into(bytes, p, scope, &mut acc)?;
                Ok::<Stats, Error>(acc)
            })
            .try_reduce(Stats::default, |mut a, b| {
                a.add(&b);
                Ok(a)
            })?;
        total.frames += node.frames;
        let subs = node
            .children
            .par_iter()
            .map(|c| self.total(c, contents, out))
            .collect::<Result<Vec<Stats>>>()?;
        for s in &subs {
            total.add(s);
        }
        if let Ok(mut v) = out.lock() {
            v.push((node.key, total.clone()));
        }
        Ok(total)
    }

    fn file_into(&self, bytes: &[u8], path: &str, scope: &Scope, s: &mut Stats) -> Result<()> {
        let Role::Label(format) = self.layout.role(path, bytes) else {
            return Ok(());
        };
        let parsed = if format == crate::labels::Format::Yolo
            && self
                .layout
                .toml
                .rule_for(path)
                .and_then(|r| r.names.as_ref())
                .is_none()
        {
            let ctx = crate::labels::ParseContext {
                class_names: scope.names.clone(),
                stem: stem(path).to_string(),
            };
            crate::labels::parse(format, bytes, &ctx).map_err(|e| (path.to_string(), e))
        } else {
            self.layout.parse(self.src, path, format, bytes)?
        };
        match parsed {
            Ok(frames) => s.add_frames(&frames),
            Err((file, e)) => {
                s.label_errors += 1;
                if s.errors.len() < MAX_ERRORS {
                    s.errors.push(format!("{file}: {e}"));
                }
            }
        }
        Ok(())
    }
}

fn all_files<'n>(node: &'n Node, out: &mut Vec<&'n ObjectId>) {
    if node.cached.is_some() {
        return;
    }
    out.extend(node.files.iter().map(|(id, _, _)| id));
    for c in &node.children {
        all_files(c, out);
    }
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
    };
    let root = Arc::new(Scope {
        names: None,
        digest: [0; 32],
    });
    let node = walk.collect(tree, "", &root)?;
    let mut ids: Vec<&ObjectId> = Vec::new();
    all_files(&node, &mut ids);
    ids.sort_unstable();
    ids.dedup();
    let ids: Vec<ObjectId> = ids.into_iter().copied().collect();
    let bytes = store.get_many(&ids)?;
    let contents: std::collections::HashMap<ObjectId, Vec<u8>> =
        ids.into_iter().zip(bytes).collect();
    let computed = std::sync::Mutex::new(Vec::new());
    let stats = walk.total(&node, &contents, &computed)?;
    let subtrees = computed.into_inner().unwrap_or_default();
    if !subtrees.is_empty() {
        cache.put(&subtrees);
    }
    Ok(stats)
}

/// Statistics of a commit, by revision.
pub fn rev_stats(
    repo: &crate::Repository,
    rev: &str,
    cache: &StatsCache,
) -> Result<(ObjectId, Stats)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
    Ok((c, tree_stats(&repo.store, &tree, cache)?))
}
