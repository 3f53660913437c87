//! The frame index of a dataset version: every frame with its attributes, its
//! objects (from whichever label files describe it) and its predictions.
//!
//! Built from a commit's tree: label files are parsed in parallel and paired
//! with frames by [`Layout`], the metadata sidecar is merged in. The index is
//! cached by the root tree id (`.dsv/cache/query/`): a tree id names every
//! byte of the version, so a second query over an unchanged commit reads one
//! cache entry and no label file. The cache holds derived data only, in the
//! binary encoding of `codec.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::layout::{FileSource, Layout, Role};
use crate::labels::{AttrValue, Format, FrameLabels, Object, Units};
use crate::meta::{Prediction, Sidecar, sidecar_path};
use crate::ops::diff::{FileState, flatten};
use crate::ops::sources::MapSource;
use crate::store::ObjectStore;

/// Version of the cached encoding; part of every cache key.
const CACHE_VERSION: &[u8] = b"dsv-query-4";
/// How many warnings an index keeps by name.
const MAX_WARNINGS: usize = 20;

/// One frame as queries see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Root-relative path of the frame file.
    pub path: String,
    /// Content id of the frame file.
    pub id: ObjectId,
    /// Size in bytes.
    pub size: u64,
    /// Image width, when a label file says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height, when a label file says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Units of the object boxes.
    pub units: Units,
    /// Frame attributes: label-file frame attributes, then the sidecar's (which win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, AttrValue>,
    /// Labelled objects, from every label file describing the frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Object>,
    /// Model predictions from the sidecar.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predictions: Vec<Prediction>,
    /// Label files describing the frame, with their format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, Format)>,
}

/// Every frame of a version, in path order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FrameIndex {
    /// The frames.
    pub frames: Vec<FrameRecord>,
    /// The metadata sidecar read (root-relative), if the version has one.
    pub sidecar: Option<String>,
    /// Label files that did not parse and entries naming no frame (the first few).
    pub warnings: Vec<String>,
    /// Whether this index came from the cache (no label file was read).
    #[serde(skip)]
    pub from_cache: bool,
}

/// The query-index cache: one file per version under `.dsv/cache/query/`,
/// named by its key. A file rather than a database entry because an index is
/// hundreds of megabytes read as a whole: mapped, it is judged straight from
/// the page cache, with no copy and no fresh memory to zero.
pub struct QueryCache {
    dir: Option<PathBuf>,
}

/// Index files kept; older ones are removed when a new one is written.
const KEEP_FILES: usize = 4;

impl QueryCache {
    /// The cache of a repository; never fails (a cache that cannot be read or
    /// written only costs time).
    pub fn open(dsv_dir: &Path) -> QueryCache {
        QueryCache {
            dir: Some(dsv_dir.join("cache").join("query")),
        }
    }

    /// A cache that stores nothing.
    pub fn disabled() -> QueryCache {
        QueryCache { dir: None }
    }

    fn file(&self, key: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}.idx", crate::id::ObjectId(*key).to_hex())))
    }

    /// Runs `f` on the bytes of a cached index, if there is one.
    fn with_bytes<T>(&self, key: &[u8; 32], f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        let file = std::fs::File::open(self.file(key)?).ok()?;
        // SAFETY: index files are written under a temporary name and renamed
        // into place, never changed afterwards; removing one leaves an existing
        // mapping intact. Every byte read from the map is bounds-checked by the
        // decoder, so damaged contents give a rebuild, not undefined reads.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        Some(f(&map))
    }

    fn get(&self, key: &[u8; 32]) -> Option<FrameIndex> {
        self.with_bytes(key, super::codec::decode).flatten()
    }

    /// The cached index with only the frames `judge` keeps (`Ok(None)`: not cached).
    fn get_filtered<J>(
        &self,
        key: &[u8; 32],
        judge: impl Fn() -> J + Sync,
    ) -> Result<Option<FrameIndex>>
    where
        J: FnMut(&dyn super::FrameAccess) -> Result<bool>,
    {
        Ok(self
            .with_bytes(key, |b| super::codec::decode_filtered(b, judge))
            .transpose()?
            .flatten())
    }

    fn put(&self, key: &[u8; 32], index: &FrameIndex) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.file(key)) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &super::codec::encode(index))?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        // Not fsynced: a file lost or cut short by a crash fails to decode and
        // is rebuilt.
        if write().is_ok() {
            evict(dir, &path);
            // The index lived in a database before `dsv-query-4`.
            if let Some(cache) = dir.parent() {
                let _ = std::fs::remove_file(cache.join("query.redb"));
            }
        }
    }
}

/// Removes all but the newest [`KEEP_FILES`] index files (and temporary files
/// left by interrupted writes), never `keep`.
fn evict(dir: &Path, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, e.path()))
        })
        .filter(|(_, p)| p != keep)
        .collect();
    files.sort();
    let stale = files.len().saturating_sub(KEEP_FILES - 1);
    for (_, p) in files.into_iter().take(stale) {
        let _ = std::fs::remove_file(p);
    }
}

fn cache_key(tree: &ObjectId) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(CACHE_VERSION);
    h.update(&tree.0);
    *h.finalize().as_bytes()
}

/// The frame index of a stored tree, from the cache when it has it.
pub fn tree_index(store: &ObjectStore, tree: &ObjectId, cache: &QueryCache) -> Result<FrameIndex> {
    let key = cache_key(tree);
    if let Some(mut ix) = cache.get(&key) {
        ix.from_cache = true;
        return Ok(ix);
    }
    let files = flatten(store, tree)?;
    let ix = build(store, &files)?;
    cache.put(&key, &ix);
    Ok(ix)
}

/// The frames of a stored tree that match `q`, as an index holding only them.
/// From the cache, frames are decoded and judged chunk by chunk in parallel and
/// only the matches kept; otherwise the whole index is built (and cached) first.
pub fn tree_query(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
    q: &super::Query,
) -> Result<FrameIndex> {
    let key = cache_key(tree);
    if let Some(mut ix) = cache.get_filtered(&key, || q.judge())? {
        ix.from_cache = true;
        return Ok(ix);
    }
    let files = flatten(store, tree)?;
    let mut ix = build(store, &files)?;
    cache.put(&key, &ix);
    let mut keep = q.matches(&ix.frames)?.into_iter();
    ix.frames.retain(|_| keep.next().unwrap_or(false));
    Ok(ix)
}

/// The frames of a commit that match `q` (see [`tree_query`]); returns the commit id too.
pub fn rev_query(
    repo: &crate::Repository,
    rev: &str,
    cache: &QueryCache,
    q: &super::Query,
) -> Result<(ObjectId, FrameIndex)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
    Ok((c, tree_query(&repo.store, &tree, cache, q)?))
}

/// The frame index of a commit, by revision; returns the commit id too.
pub fn rev_index(
    repo: &crate::Repository,
    rev: &str,
    cache: &QueryCache,
) -> Result<(ObjectId, FrameIndex)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
    Ok((c, tree_index(&repo.store, &tree, cache)?))
}

/// What one label file contributes: (frame path, labels) pairs, or a warning.
type Parsed = std::result::Result<(Format, Vec<(Option<String>, FrameLabels)>), String>;

/// Builds the index of a version given as a path -> state map.
pub fn build(store: &ObjectStore, files: &BTreeMap<Vec<u8>, FileState>) -> Result<FrameIndex> {
    let src = MapSource::new(store, files);
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    // Frames in path order (the order of `files`), found by path through a
    // hash map: a million lookups in a B-tree of paths sharing long prefixes
    // were a tenth of a cold build.
    let mut frames: Vec<FrameRecord> = Vec::new();
    let mut by_path: HashMap<std::borrow::Cow<'_, str>, usize> = HashMap::new();
    let mut candidates: Vec<(String, ObjectId)> = Vec::new();
    for (p, st) in files {
        if !st.mode.is_blob() {
            continue;
        }
        // Borrowed from `files` when the name is UTF-8 (nearly always).
        let path = String::from_utf8_lossy(p);
        match layout.role_by_path(&path) {
            Some(Role::Frame) => {
                by_path.insert(path.clone(), frames.len());
                frames.push(FrameRecord {
                    path: path.into_owned(),
                    id: st.id,
                    size: st.size,
                    width: None,
                    height: None,
                    units: Units::Pixels,
                    attrs: BTreeMap::new(),
                    objects: Vec::new(),
                    predictions: Vec::new(),
                    labels: Vec::new(),
                });
            }
            Some(Role::Other) => {}
            _ => candidates.push((path.into_owned(), st.id)),
        }
    }
    let ids: Vec<ObjectId> = candidates.iter().map(|(_, id)| *id).collect();
    // Every label file in one bulk read, each parsed on the thread that read it.
    let parsed: Vec<Option<Parsed>> = store.get_many_with(&ids, |i, bytes| {
        let Some((path, _)) = candidates.get(i) else {
            return Ok(None);
        };
        let Role::Label(format) = layout.role(path, bytes) else {
            return Ok(None);
        };
        let out = match layout.parse(&src, path, format, bytes)? {
            Ok(fl) => {
                let mut v = Vec::with_capacity(fl.len());
                for f in fl {
                    let mut fp = layout.frame_path(&src, path, format, &f.frame)?;
                    // A CVAT project export names frames within their subset
                    // (images/<subset>/<name>).
                    if fp.is_none()
                        && let Some(AttrValue::Str(sub)) = f.attributes.get("subset")
                    {
                        let key = format!("{sub}/{}", f.frame);
                        fp = layout.frame_path(&src, path, format, &key)?;
                    }
                    v.push((fp, f));
                }
                Ok((format, v))
            }
            Err((file, e)) => Err(format!("{file}: {e}")),
        };
        Ok(Some(out))
    })?;
    let mut warnings = Vec::new();
    let mut warn = |w: String| {
        if warnings.len() < MAX_WARNINGS {
            warnings.push(w);
        }
    };
    for ((label_path, _), p) in candidates.into_iter().zip(parsed) {
        match p {
            None => {}
            Some(Err(w)) => warn(w),
            Some(Ok((format, entries))) => {
                for (fp, fl) in entries {
                    let Some(rec) =
                        fp.and_then(|fp| by_path.get(fp.as_str()).and_then(|&i| frames.get_mut(i)))
                    else {
                        warn(format!(
                            "{label_path}: frame '{}' is not in this version",
                            fl.frame
                        ));
                        continue;
                    };
                    rec.units = fl.units;
                    rec.width = fl.width.or(rec.width);
                    rec.height = fl.height.or(rec.height);
                    rec.attrs.extend(fl.attributes);
                    rec.objects.extend(fl.objects);
                    if !rec.labels.iter().any(|(l, _)| *l == label_path) {
                        rec.labels.push((label_path.clone(), format));
                    }
                }
            }
        }
    }
    let name = sidecar_path(&layout.toml, &|p| src.exists(p))?;
    let sidecar = match src.read(&name)? {
        Some(bytes) => {
            let sc = Sidecar::parse(&name, &bytes)?;
            for (path, m) in sc.rows {
                match by_path.get(path.as_str()).and_then(|&i| frames.get_mut(i)) {
                    Some(rec) => {
                        rec.attrs.extend(m.attrs);
                        rec.predictions = m.predictions;
                    }
                    None => warn(format!("{name}: frame '{path}' is not in this version")),
                }
            }
            Some(name)
        }
        None => None,
    };
    Ok(FrameIndex {
        frames,
        sidecar,
        warnings,
        from_cache: false,
    })
}
