//! The frame index of a dataset version: every frame with its attributes, its
//! objects (from whichever label files describe it) and its predictions.
//!
//! Built from a commit's tree: label files are parsed in parallel and paired
//! with frames by [`Layout`], the metadata sidecar is merged in. The index is
//! cached by the root tree id (`.dsv/cache/query/`): a tree id names every
//! byte of the version, so a second query over an unchanged commit reads one
//! cache entry and no label file. The cache holds derived data only, in the
//! binary encoding of `codec.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::parse_cache::ParseCache;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::{AttrValue, Format, Object, Units};
use crate::meta::Prediction;
use crate::object::diff::FileState;
use crate::store::ObjectStore;

use super::codec::{IndexParts, Known};
use super::matches::MatchesCache;

/// Version of the cached encoding; part of every cache key.
const CACHE_VERSION: &[u8] = b"dsv-query-10";

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
    /// Every frame attribute name of the version (all frames, not only those
    /// kept) with the kinds of its values: what queries are checked against.
    #[serde(skip)]
    pub attrs: super::check::Schema,
    /// Every label file of the version that did not parse, with the frame it
    /// would describe when that can be told: those frames are not unlabelled,
    /// their labels are unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<super::codec::Invalid>,
    /// Invalid boxes of the version: how many, and the first few described.
    #[serde(skip)]
    pub bad_boxes: (u64, Vec<String>),
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
    /// The repository's `.dsv`, for the parsed-label-file cache.
    dsv_dir: Option<PathBuf>,
    /// Parsed label files (see `build.rs`), opened on first use: a query
    /// answered from an index file never needs it.
    labels: std::sync::OnceLock<ParseCache>,
    /// The sidecar's rows read, by its content id (see `sidecar.rs`).
    sidecar: std::sync::OnceLock<ParseCache>,
    /// Whether an index may be derived from another version's (see [`Self::derive`]).
    derive: bool,
    /// The frames each recent (query, version) matched (see `matches.rs`).
    matches: MatchesCache,
}

/// Index files kept; older ones are removed when a new one is written.
const KEEP_FILES: usize = 4;

impl QueryCache {
    /// The cache of a repository; never fails (a cache that cannot be read or
    /// written only costs time). `settings.query_no_derive`: always build.
    pub fn open(dsv_dir: &Path, settings: &crate::settings::Settings) -> QueryCache {
        QueryCache {
            dir: Some(dsv_dir.join("cache").join("query")),
            dsv_dir: Some(dsv_dir.to_path_buf()),
            labels: std::sync::OnceLock::new(),
            sidecar: std::sync::OnceLock::new(),
            derive: !settings.query_no_derive,
            matches: MatchesCache::open(dsv_dir),
        }
    }

    /// A cache that stores nothing.
    pub fn disabled() -> QueryCache {
        QueryCache {
            dir: None,
            dsv_dir: None,
            labels: std::sync::OnceLock::new(),
            sidecar: std::sync::OnceLock::new(),
            derive: true,
            matches: MatchesCache::disabled(),
        }
    }

    /// The parsed-label-file cache.
    fn labels(&self) -> &ParseCache {
        self.labels.get_or_init(|| match &self.dsv_dir {
            Some(d) => ParseCache::open(d),
            None => ParseCache::disabled(),
        })
    }

    /// The cache of sidecar rows.
    fn sidecar(&self) -> &ParseCache {
        self.sidecar.get_or_init(|| match &self.dsv_dir {
            Some(d) => ParseCache::open_named(d, "query-sidecar"),
            None => ParseCache::disabled(),
        })
    }

    fn file(&self, key: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}.idx", crate::id::ObjectId(*key).to_hex())))
    }

    /// Runs `f` on a cached index, if there is one that reads: a full index
    /// file, or an overlay with its base's file.
    pub(super) fn with_index<T>(
        &self,
        key: &[u8; 32],
        f: impl FnOnce(&super::codec::Loaded) -> T,
    ) -> Option<T> {
        self.with_index_releasing(key, |l, _| f(l))
    }

    /// [`QueryCache::with_index`], `f` also given a function that gives back
    /// the memory of bytes of the files read (see [`release_mapped`]).
    pub(super) fn with_index_releasing<T>(
        &self,
        key: &[u8; 32],
        f: impl FnOnce(&super::codec::Loaded, &(dyn Fn(&[u8]) + Sync)) -> T,
    ) -> Option<T> {
        let map = map_file(&self.file(key)?)?;
        let base = match super::codec::overlay_base(&map) {
            Some(bt) => Some(map_file(&self.file(&cache_key(&ObjectId(bt)))?)?),
            None => None,
        };
        let loaded = super::codec::load(&map, base.as_deref())?;
        let release = |b: &[u8]| {
            release_mapped(&map, b);
            if let Some(base) = &base {
                release_mapped(base, b);
            }
        };
        Some(f(&loaded, &release))
    }

    /// The cached index with only the frames `q` selects (`Ok(None)`: not
    /// cached), `q` checked against the version's attributes first; with
    /// `decode` false no frame is kept, only counted.
    fn get_filtered(
        &self,
        key: &[u8; 32],
        q: &super::Query,
        decode: bool,
    ) -> Result<Option<(FrameIndex, Vec<u64>)>> {
        Ok(self
            .with_index_releasing(key, |ix, release| {
                q.check(ix.attrs())?;
                self.select(&ix.tree, &ix.base_tree, ix.frames(), q, |known| {
                    ix.select_releasing(known, decode, || q.judge(), release)
                })
            })
            .transpose()?
            .flatten())
    }

    /// The frames of a version that match `q`, judged by `run` with what
    /// the matches cache knows: the version's own matches (nothing judged),
    /// else its overlay base's (only replaced frames judged); the version's
    /// matches are kept for next time. Gives the index and the positions of
    /// the matches; `Ok(None)`: the index does not read.
    fn select(
        &self,
        tree: &[u8; 32],
        base_tree: &[u8; 32],
        frames: usize,
        q: &super::Query,
        run: impl FnOnce(Known) -> Result<Option<(FrameIndex, Vec<u64>)>>,
    ) -> Result<Option<(FrameIndex, Vec<u64>)>> {
        let src = q.source();
        let own = self.matches.get(tree, src, frames);
        let base = match own {
            None if base_tree != tree => self.matches.get(base_tree, src, frames),
            _ => None,
        };
        let known = match (&own, &base) {
            (Some(p), _) => Known::Exact(p),
            (None, Some(p)) => Known::Base(p),
            (None, None) => Known::Nothing,
        };
        let Some((ix, positions)) = run(known)? else {
            return Ok(None);
        };
        if own.is_none() {
            self.matches.put(tree, src, frames, &positions);
        }
        Ok(Some((ix, positions)))
    }

    /// The index of `tree` derived from the newest index file (of another
    /// version), if that applies. Never fails: what cannot be derived is built.
    fn derive(&self, store: &ObjectStore, tree: &ObjectId) -> Option<IndexParts> {
        if !self.derive {
            return None;
        }
        let dir = self.dir.as_ref()?;
        let newest = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".idx")))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()?
            .1;
        let file = std::fs::File::open(newest).ok()?;
        let base = match overlay_base_of(&file) {
            Some(bt) => Some(std::fs::File::open(self.file(&cache_key(&ObjectId(bt)))?).ok()?),
            None => None,
        };
        super::derive::derive(store, &file, base.as_ref(), tree)
            .ok()
            .flatten()
    }

    pub(super) fn put(&self, key: &[u8; 32], index: &IndexParts) {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.file(key)) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            index.write_to(&mut tmp)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        // Not fsynced: a file lost or cut short by a crash fails to decode and
        // is rebuilt.
        if write().is_ok() {
            placed(dir, &path);
        }
    }

    /// Builds the index of `tree` straight into its file, chunk by chunk,
    /// so that no more than a few chunks of it are ever in memory; false
    /// when there is no cache directory or a write failed (the caller then
    /// builds it in memory). The file holds the bytes [`QueryCache::put`]
    /// would write for the same index.
    fn build_into_file(&self, store: &ObjectStore, tree: &ObjectId) -> Result<bool> {
        use std::io::BufWriter;
        type Writer = super::codec::ChunkWriter<BufWriter<tempfile::NamedTempFile>>;
        let key = cache_key(tree);
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.file(&key)) else {
            return Ok(false);
        };
        let mut t = crate::trace::Phases::start("query");
        let files = super::build::walk(store, tree)?;
        t.mark("walk");
        let Some(mut tmp) = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .ok()
            .map(Some)
        else {
            return Ok(false);
        };
        let start = |tmp: &mut Option<tempfile::NamedTempFile>, chunks: usize| {
            let file = tmp.take()?;
            Writer::new(BufWriter::with_capacity(1 << 20, file), &tree.0, chunks).ok()
        };
        // `None` inside: not started (no chunk yet); `None` outside: failed.
        let mut writer: Option<Option<Writer>> = Some(None);
        let mut sink = |chunks: usize, frames: usize, bytes: &[u8]| -> bool {
            let w = match &mut writer {
                Some(Some(w)) => w,
                Some(slot @ None) => match start(&mut tmp, chunks) {
                    Some(w) => slot.insert(w),
                    None => {
                        writer = None;
                        return false;
                    }
                },
                None => return false,
            };
            if w.chunk(frames, bytes).is_err() {
                writer = None;
                return false;
            }
            true
        };
        let parts = super::build::build(
            store,
            &files,
            self.labels(),
            self.sidecar(),
            Some(&mut sink),
        )?;
        t.mark("build");
        std::thread::spawn(move || drop(files));
        let writer = match writer {
            Some(Some(w)) => Some(w),
            Some(None) => start(&mut tmp, 0),
            None => None,
        };
        let Some((w, _)) = writer.and_then(|w| w.finish(&parts).ok()) else {
            return Ok(false);
        };
        let Ok(file) = w.into_inner() else {
            return Ok(false);
        };
        if file.persist(&path).is_err() {
            return Ok(false);
        }
        placed(dir, &path);
        t.mark("write");
        Ok(true)
    }
}

/// After an index file is placed at `path`: older files evicted, and the
/// database the index lived in before `dsv-query-4` removed.
fn placed(dir: &Path, path: &Path) {
    evict(dir, path);
    if let Some(cache) = dir.parent() {
        let _ = std::fs::remove_file(cache.join("query.redb"));
    }
}

/// Gives back the memory of `bytes` if they lie in `map` (else nothing):
/// judging a whole index read every page of it, which then stayed resident
/// beside whatever the command held (a quarter of a gigabyte at a million
/// frames). They stay in the file, and are read again if looked at.
fn release_mapped(map: &memmap2::Mmap, bytes: &[u8]) {
    let offset = (bytes.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
    if bytes.is_empty()
        || offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > map.len())
    {
        return;
    }
    // SAFETY: index files are opened read-only and never changed once in
    // place (see `map_file`); dropping pages of the map only makes a later
    // read fetch the same bytes from the file again, so no reference into
    // the map sees other bytes. Pages shared with a neighbouring chunk are
    // read back the same way.
    let _ = unsafe {
        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, bytes.len())
    };
}

/// Maps an index file.
fn map_file(path: &Path) -> Option<memmap2::Mmap> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: index files are written under a temporary name and renamed
    // into place, never changed afterwards; removing one leaves an existing
    // mapping intact. Every byte read from the map is bounds-checked by the
    // decoder, so damaged contents give a rebuild, not undefined reads.
    unsafe { memmap2::Mmap::map(&file) }.ok()
}

/// The base version of an overlay index file, from its head.
fn overlay_base_of(mut file: &std::fs::File) -> Option<[u8; 32]> {
    use std::io::Read;
    let mut head = [0u8; 72];
    file.read_exact(&mut head).ok()?;
    super::codec::overlay_base(&head)
}

/// Removes all but the newest [`KEEP_FILES`] index files (and temporary files
/// left by interrupted writes), never `keep` nor the base of an overlay kept.
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
    let kept = files.iter().skip(stale).map(|(_, p)| p.as_path());
    let bases: std::collections::HashSet<PathBuf> = kept
        .chain([keep])
        .filter_map(|p| overlay_base_of(&std::fs::File::open(p).ok()?))
        .map(|bt| {
            dir.join(format!(
                "{}.idx",
                ObjectId(cache_key(&ObjectId(bt))).to_hex()
            ))
        })
        .collect();
    for (_, p) in files.into_iter().take(stale) {
        if !bases.contains(&p) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The full encoding of a cached index file under `.dsv/cache/query/` (an
/// overlay applied to its base), for tests and inspection; `None` when it
/// does not read.
pub fn full_encoding(dsv_dir: &Path, name: &str) -> Option<Vec<u8>> {
    let dir = dsv_dir.join("cache").join("query");
    let map = map_file(&dir.join(name))?;
    let base = match super::codec::overlay_base(&map) {
        Some(bt) => Some(map_file(&dir.join(format!(
            "{}.idx",
            ObjectId(cache_key(&ObjectId(bt))).to_hex()
        )))?),
        None => None,
    };
    super::codec::load(&map, base.as_deref())?.to_full()
}

pub(super) fn cache_key(tree: &ObjectId) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(CACHE_VERSION);
    h.update(&tree.0);
    *h.finalize().as_bytes()
}

/// The index of a stored tree, made now (the caller caches it): derived from
/// the newest index file of another version when that applies (see
/// `derive.rs`), else built from the tree.
pub(super) fn build_tree(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
) -> Result<IndexParts> {
    let mut t = crate::trace::Phases::start("query");
    if let Some(index) = cache.derive(store, tree) {
        t.mark("derive");
        let index = index.with_schema();
        t.mark("schema");
        return Ok(index);
    }
    t.mark("derive-none");
    build_full(store, tree, cache)
}

/// [`build_tree`], except that an index not derived is built into its file
/// when there is a cache directory: `None` then, and the caller reads it
/// from the cache (and builds it with [`build_full`] if that fails).
pub(super) fn build_tree_or_file(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
) -> Result<Option<IndexParts>> {
    let mut t = crate::trace::Phases::start("query");
    if let Some(index) = cache.derive(store, tree) {
        t.mark("derive");
        let index = index.with_schema();
        t.mark("schema");
        return Ok(Some(index));
    }
    t.mark("derive-none");
    if cache.build_into_file(store, tree)? {
        return Ok(None);
    }
    build_full(store, tree, cache).map(Some)
}

/// The index of a stored tree built from the tree (no derivation).
pub(super) fn build_full(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
) -> Result<IndexParts> {
    let mut t = crate::trace::Phases::start("query");
    let files = super::build::walk(store, tree)?;
    t.mark("walk");
    let index = super::build::build(store, &files, cache.labels(), cache.sidecar(), None)?;
    t.mark("build");
    let mut index = index.with_schema();
    index.tree = tree.0;
    t.mark("schema");
    std::thread::spawn(move || drop(files));
    Ok(index)
}

pub(super) fn undecodable() -> Error {
    Error::Labels("internal error: a query index just built does not decode".into())
}

/// The frame index of a stored tree, from the cache when it has it.
pub fn tree_index(store: &ObjectStore, tree: &ObjectId, cache: &QueryCache) -> Result<FrameIndex> {
    let key = cache_key(tree);
    if let Some(mut ix) = cache.with_index(&key, |l| l.decode()).flatten() {
        ix.from_cache = true;
        return Ok(ix);
    }
    let index = build_tree(store, tree, cache)?;
    cache.put(&key, &index);
    let ix = index.decode().ok_or_else(undecodable);
    std::thread::spawn(move || drop(index));
    ix
}

/// The frames of a stored tree that match `q`, as an index holding only them.
/// Frames are decoded and judged chunk by chunk in parallel and only the
/// matches kept, from the cached index or from one built (and cached) first.
pub fn tree_query(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
    q: &super::Query,
) -> Result<FrameIndex> {
    Ok(tree_select(store, tree, cache, q, true)?.0)
}

/// How many frames of a stored tree match `q`, with the index's warnings and
/// invalid files but no frame (see [`tree_query`]): no frame is decoded, and
/// what the matches cache knows spares judging (or reading) frames.
pub fn tree_count(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
    q: &super::Query,
) -> Result<(FrameIndex, usize)> {
    let (ix, positions) = tree_select(store, tree, cache, q, false)?;
    Ok((ix, positions.len()))
}

/// The positions (in the version's path order, ascending) of the frames of a
/// stored tree that match `q`, with no frame decoded (see [`tree_count`]): a
/// lazy view of a selection keeps these and decodes its frames when read.
pub fn tree_positions(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
    q: &super::Query,
) -> Result<Vec<u64>> {
    Ok(tree_select(store, tree, cache, q, false)?.1)
}

/// How many frames a stored tree's index holds, with none decoded: from the
/// cached index's chunk table, or from an index built (and cached) first.
pub fn tree_frame_count(store: &ObjectStore, tree: &ObjectId, cache: &QueryCache) -> Result<usize> {
    let key = cache_key(tree);
    if let Some(n) = cache.with_index(&key, |l| l.frames()) {
        return Ok(n);
    }
    let index = build_tree(store, tree, cache)?;
    cache.put(&key, &index);
    let n = index.frames();
    std::thread::spawn(move || drop(index));
    Ok(n)
}

/// [`tree_query`] (`decode`) or [`tree_count`] and [`tree_positions`].
fn tree_select(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
    q: &super::Query,
    decode: bool,
) -> Result<(FrameIndex, Vec<u64>)> {
    let key = cache_key(tree);
    if let Some((mut ix, n)) = cache.get_filtered(&key, q, decode)? {
        ix.from_cache = true;
        return Ok((ix, n));
    }
    // A version not derived from another is built into its file and then
    // judged from there, as a cached one: the index is never whole in
    // memory beside what building it holds.
    let index = match build_tree_or_file(store, tree, cache)? {
        Some(index) => index,
        None => match cache.get_filtered(&key, q, decode)? {
            Some(found) => return Ok(found),
            None => build_full(store, tree, cache)?,
        },
    };
    // Checked against the version before any frame is judged.
    q.check(&index.attrs)?;
    let mut t = crate::trace::Phases::start("query");
    // The index file is written while the frames are judged.
    let ix = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut t = crate::trace::Phases::start("query");
            cache.put(&key, &index);
            t.mark("put");
        });
        let base_tree = index.overlay.as_ref().map_or(index.tree, |o| o.base_tree);
        let judged = cache.select(&index.tree, &base_tree, index.frames(), q, |known| {
            index.select(known, decode, || q.judge())
        });
        t.mark("judge");
        judged
    })?
    .ok_or_else(undecodable);
    t.mark("put-wait");
    std::thread::spawn(move || drop(index));
    ix
}

/// The frames at `positions` of a stored tree's index (positions in the
/// version's path order; any order, repeats allowed), in that order. Only
/// those frames are decoded, and only the chunks holding them walked: a
/// DataLoader worker reading its shard does not decode the whole version
/// again. The index comes from the cache, or is built (and cached) first. A
/// position past the last frame is an error.
pub fn tree_frames_at(
    store: &ObjectStore,
    tree: &ObjectId,
    cache: &QueryCache,
    positions: &[usize],
) -> Result<FrameIndex> {
    let mut listed: Vec<u64> = positions.iter().map(|&p| p as u64).collect();
    listed.sort_unstable();
    listed.dedup();
    let out_of_range = |frames: usize| {
        listed.last().filter(|&&p| p >= frames as u64).map(|p| {
            Error::InvalidArgument(format!("frame position {p} out of range ({frames} frames)"))
        })
    };
    let all = || |_: &dyn super::FrameAccess| Ok::<bool, std::convert::Infallible>(true);
    let key = cache_key(tree);
    let cached = cache.with_index(&key, |l| match out_of_range(l.frames()) {
        Some(e) => Err(e),
        None => Ok(l.select(Known::Exact(&listed), true, all).unwrap_or(None)),
    });
    let ix = match cached.transpose()?.flatten() {
        Some((mut ix, _)) => {
            ix.from_cache = true;
            ix
        }
        // Not cached, or a cached index that does not read: built again.
        None => {
            let index = build_tree(store, tree, cache)?;
            cache.put(&key, &index);
            if let Some(e) = out_of_range(index.frames()) {
                return Err(e);
            }
            let ix = index
                .select(Known::Exact(&listed), true, all)
                .unwrap_or(None)
                .ok_or_else(undecodable)?
                .0;
            std::thread::spawn(move || drop(index));
            ix
        }
    };
    Ok(in_order(ix, &listed, positions))
}

/// `ix`, holding the frames at `listed` (ascending, distinct), with its frames
/// put in the order of `positions` (each one of `listed`, repeats allowed).
fn in_order(mut ix: FrameIndex, listed: &[u64], positions: &[usize]) -> FrameIndex {
    if positions.len() == listed.len() && positions.iter().zip(listed).all(|(&p, &l)| p as u64 == l)
    {
        return ix;
    }
    let slot = |p: usize| listed.binary_search(&(p as u64)).unwrap_or(0);
    // A frame is moved at its last use and cloned before.
    let mut uses = vec![0usize; listed.len()];
    for &p in positions {
        uses[slot(p)] += 1;
    }
    let mut frames: Vec<Option<FrameRecord>> = std::mem::take(&mut ix.frames)
        .into_iter()
        .map(Some)
        .collect();
    ix.frames = positions
        .iter()
        .filter_map(|&p| {
            let k = slot(p);
            uses[k] -= 1;
            if uses[k] == 0 {
                frames[k].take()
            } else {
                frames[k].clone()
            }
        })
        .collect();
    ix
}

/// The frames at `positions` of a commit's index (see [`tree_frames_at`]);
/// returns the commit id too.
pub fn rev_frames_at(
    repo: &crate::Repository,
    rev: &str,
    cache: &QueryCache,
    positions: &[usize],
) -> Result<(ObjectId, FrameIndex)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
    Ok((c, tree_frames_at(&repo.store, &tree, cache, positions)?))
}

/// The count of frames of a commit that match `q` (see [`tree_count`]);
/// returns the commit id too.
pub fn rev_count(
    repo: &crate::Repository,
    rev: &str,
    cache: &QueryCache,
    q: &super::Query,
) -> Result<(ObjectId, FrameIndex, usize)> {
    let c = crate::ops::revparse::resolve(repo, rev)?;
    let tree = crate::object::Commit::load(&repo.store, &c)?.tree;
    let (ix, n) = tree_count(&repo.store, &tree, cache, q)?;
    Ok((c, ix, n))
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

/// Builds the index of a version given as a path -> state map (no cache).
pub fn build(store: &ObjectStore, files: &BTreeMap<Vec<u8>, FileState>) -> Result<FrameIndex> {
    let files: Vec<(String, FileState)> = files
        .iter()
        .map(|(p, s)| (String::from_utf8_lossy(p).into_owned(), *s))
        .collect();
    let off = ParseCache::disabled();
    let index = super::build::build(store, &files, &off, &off, None)?.with_schema();
    index.decode().ok_or_else(undecodable)
}
