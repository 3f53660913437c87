//! A version's index derived from the index of an earlier version, so the
//! first query of a new commit costs a diff of the two trees and a copy of
//! the earlier index, not a build over every frame.
//!
//! It applies when the trees differ only in the contents of frames and of
//! label files of single-frame formats (a relabelling round, re-encoded
//! images): no path added or removed, `dsv.toml`, the sidecar and every other
//! file unchanged, every changed label file parsing before and after, and the
//! earlier index without warnings. Then the frames those files describe,
//! before and after, are encoded again from their entries (the other label
//! files describing them are read again too) with the sidecar's sections
//! taken from their old records, and every other frame's bytes are copied.
//! In any other case [`derive`] gives `None` and the caller builds the index
//! in full. The result is an overlay (`codec::Overlay`): the earlier
//! version's base index with the frames replaced (the earlier overlay's and
//! this version's), so nothing unchanged is copied or written again; past
//! one frame in [`MAX_REPLACED`] replaced, the chunks are copied into a full
//! index instead. Either way, read in full it is byte for byte the index a
//! full build gives; tests check that.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::Result;
use crate::id::ObjectId;
use crate::labels::format::names_files;
use crate::labels::{Format, format_of};
use crate::layout::{FileSource, Layout, NamesResult, Role, file_name, parent};
use crate::object::diff::FileState;
use crate::object::tree::{EncodedEntries, EntryRef};
use crate::object::{EntryMode, Tree};
use crate::store::ObjectStore;

use super::build::{
    Entry, FrameFile, Parsed, frame, parse_candidate, read_parse, resolve_entry, rule_at,
};
use super::codec::{self, IndexParts, Reader};
use super::sidecar::EncodedMeta;

/// An overlay replaces at most one frame in this many of its base (and 64
/// more, for small versions); past that a derived index is written in full.
const MAX_REPLACED: usize = 8;

/// A directory of a version as [`TreeFiles`] keeps it: a flat one as read
/// (no entry copied), a sharded one joined.
enum Dir {
    Flat(EncodedEntries),
    Joined(Tree),
}

impl Dir {
    fn load(store: &ObjectStore, id: &ObjectId) -> Result<Dir> {
        let bytes = store.get(id)?;
        match EncodedEntries::decode(bytes) {
            Ok(Some(e)) => Ok(Dir::Flat(e)),
            Ok(None) => Ok(Dir::Joined(Tree::load(store, id)?)),
            Err(reason) => Err(crate::error::Error::CorruptObject { id: *id, reason }),
        }
    }

    /// The entry named `name`: its kind, id and size.
    fn get(&self, name: &[u8]) -> Option<(EntryMode, ObjectId, u64)> {
        match self {
            Dir::Flat(e) => e.get(name).map(|e| (e.mode, e.id, e.size)),
            Dir::Joined(t) => t.get(name).map(|e| (e.mode, e.id, e.size)),
        }
    }
}

/// The files of a version found by path through its trees, each directory
/// read once.
struct TreeFiles<'a> {
    store: &'a ObjectStore,
    root: ObjectId,
    dirs: Mutex<HashMap<String, Option<Arc<Dir>>>>,
}

impl TreeFiles<'_> {
    fn dir(&self, dir: &str) -> Result<Option<Arc<Dir>>> {
        if let Ok(dirs) = self.dirs.lock()
            && let Some(t) = dirs.get(dir)
        {
            return Ok(t.clone());
        }
        let tree = if dir.is_empty() {
            Some(Arc::new(Dir::load(self.store, &self.root)?))
        } else {
            match self.dir(parent(dir))? {
                Some(up) => match up.get(file_name(dir).as_bytes()) {
                    Some((EntryMode::Dir, id, _)) => Some(Arc::new(Dir::load(self.store, &id)?)),
                    _ => None,
                },
                None => None,
            }
        };
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.insert(dir.to_string(), tree.clone());
        }
        Ok(tree)
    }

    /// The file at a path (anything but a directory), as the version's file list has it.
    fn state(&self, path: &str) -> Result<Option<FileState>> {
        Ok(self
            .dir(parent(path))?
            .and_then(|t| t.get(file_name(path).as_bytes()))
            .filter(|(mode, _, _)| *mode != EntryMode::Dir)
            .map(|(mode, id, size)| FileState { mode, id, size }))
    }
}

impl FileSource for TreeFiles<'_> {
    fn read_id(&self, _path: &str, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.store.get(id)?))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.state(path)? {
            Some(s) => Ok(Some(self.store.get(&s.id)?)),
            None => Ok(None),
        }
    }
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.state(path)?.is_some())
    }
}

/// The files whose contents differ between two trees, as (path, before,
/// after); `None` when any path was added or removed, changed kind, or there
/// are more than `limit` changes.
/// Directories of the new version read whole are kept in `tf`, which looks
/// up class names in them later.
fn modified(
    tf: &TreeFiles,
    a: &ObjectId,
    b: &ObjectId,
    prefix: &str,
    limit: usize,
) -> Result<Option<Vec<(String, FileState, FileState)>>> {
    if a == b {
        return Ok(Some(Vec::new()));
    }
    crate::object::tree::check_dir_depth(prefix.as_bytes())?;
    let store = tf.store;
    let (bytes_a, bytes_b) = (store.get(a)?, store.get(b)?);
    let corrupt = |id: &ObjectId, reason| crate::error::Error::CorruptObject { id: *id, reason };
    let pair = (
        EncodedEntries::decode(bytes_a).map_err(|r| corrupt(a, r))?,
        EncodedEntries::decode(bytes_b).map_err(|r| corrupt(b, r))?,
    );
    // The entries at the same place on both sides that are not the same
    // bytes (most of a directory's entries are, and cost a comparison).
    let owned;
    let (old_dir, kept);
    let mut differ: Vec<(EntryRef, EntryRef)> = Vec::new();
    match pair {
        (Some(ea), Some(eb)) => {
            if ea.len() != eb.len() {
                return Ok(None);
            }
            old_dir = ea;
            let ea = &old_dir;
            // The new version's directory is kept as read: class names are
            // looked up in it.
            kept = Arc::new(Dir::Flat(eb));
            let Dir::Flat(eb) = &*kept else {
                return Ok(None);
            };
            for k in 0..ea.len() {
                if ea.raw(k) == eb.raw(k) {
                    continue;
                }
                // Checked whole when read, so every entry parses; were one
                // not to, the full build would say why.
                let (Some(x), Some(y)) = (ea.entry(k), eb.entry(k)) else {
                    return Ok(None);
                };
                differ.push((x, y));
            }
            if let Ok(mut dirs) = tf.dirs.lock() {
                dirs.insert(prefix.to_string(), Some(kept.clone()));
            }
        }
        // Sharded (large) directories: only the shards that differ.
        _ => {
            owned = Tree::load_pair_differing(store, a, b)?;
            let (ea, eb) = (owned.0.entry_refs(), owned.1.entry_refs());
            if ea.len() != eb.len() {
                return Ok(None);
            }
            differ.extend(ea.into_iter().zip(eb));
        }
    }
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for (x, y) in &differ {
        if x.name != y.name || (x.mode == EntryMode::Dir) != (y.mode == EntryMode::Dir) {
            return Ok(None);
        }
        if x.id == y.id && x.mode == y.mode {
            continue;
        }
        let Ok(name) = std::str::from_utf8(x.name) else {
            return Ok(None);
        };
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        if x.mode == EntryMode::Dir {
            dirs.push((path, x.id, y.id));
        } else {
            let state = |e: &EntryRef| FileState {
                mode: e.mode,
                id: e.id,
                size: e.size,
            };
            files.push((path, state(x), state(y)));
        }
    }
    if files.len() > limit {
        return Ok(None);
    }
    let below = dirs
        .par_iter()
        .map(|(p, x, y)| modified(tf, x, y, p, limit))
        .collect::<Result<Vec<_>>>()?;
    for b in below {
        let Some(b) = b else { return Ok(None) };
        files.extend(b);
        if files.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(files))
}

/// The frames of an index (a base's chunks and an overlay's replaced
/// frames), found by position or path without reading every record: a
/// binary search over the chunks by their first frame's path, then over the
/// stretches of [`codec::STRIDE`] records of one chunk by their record table
/// (checked once per chunk), then through one stretch. A first query of a
/// new version touches a few records per changed file, not every record of
/// the chunks holding them.
struct Frames<'a, 'p> {
    /// Per chunk: position of its first frame, frame count, bytes.
    chunks: Vec<(usize, usize, &'a [u8])>,
    /// The path of each chunk's first frame (ascending).
    firsts: Vec<&'a str>,
    /// Each chunk's record table as stored.
    tables: &'p [&'a [u8]],
    /// The offsets of each chunk's stretches, read and checked on first use
    /// (`None`: a damaged table).
    offsets: Vec<std::sync::OnceLock<Option<Vec<usize>>>>,
    /// Replaced frames (position, record), ascending.
    patches: &'p [(usize, &'a [u8])],
}

impl<'a, 'p> Frames<'a, 'p> {
    /// `None` when a chunk is empty, the chunks are not in path order or
    /// there is not one record table per chunk.
    fn new(
        chunks: &[(usize, &'a [u8])],
        tables: &'p [&'a [u8]],
        patches: &'p [(usize, &'a [u8])],
    ) -> Option<Self> {
        if tables.len() != chunks.len() {
            return None;
        }
        let mut out = Vec::with_capacity(chunks.len());
        let mut firsts: Vec<&str> = Vec::with_capacity(chunks.len());
        let mut first = 0;
        for &(n, bytes) in chunks {
            let path = first_path(bytes)?;
            if n == 0 || firsts.last().is_some_and(|l| *l >= path) {
                return None;
            }
            firsts.push(path);
            out.push((first, n, bytes));
            first += n;
        }
        Some(Frames {
            offsets: (0..out.len()).map(|_| std::sync::OnceLock::new()).collect(),
            chunks: out,
            firsts,
            tables,
            patches,
        })
    }

    /// The checked stretch offsets of chunk `c`.
    fn offsets(&self, c: usize) -> Option<&[usize]> {
        let &(_, n, bytes) = self.chunks.get(c)?;
        let table = *self.tables.get(c)?;
        self.offsets
            .get(c)?
            .get_or_init(|| codec::read_record_table(n, bytes, table))
            .as_deref()
    }

    /// The records of stretch `w` of chunk `c`.
    fn stretch(&self, c: usize, w: usize) -> Option<Vec<&'a [u8]>> {
        let &(_, n, bytes) = self.chunks.get(c)?;
        codec::stretch(n, bytes, self.offsets(c)?, w)
    }

    /// The chunk holding position `i` and `i`'s place in it.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        let c = self.chunks.partition_point(|x| x.0 <= i).checked_sub(1)?;
        let (first, n, _) = self.chunks[c];
        (i < first + n).then_some((c, i - first))
    }

    /// The base's record at position `i` (not the replaced one).
    fn base(&self, i: usize) -> Option<&'a [u8]> {
        let (c, k) = self.locate(i)?;
        self.stretch(c, k / codec::STRIDE)?
            .get(k % codec::STRIDE)
            .copied()
    }

    /// The version's record at position `i`.
    fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self.patches.binary_search_by_key(&i, |p| p.0) {
            Ok(k) => Some(self.patches[k].1),
            Err(_) => self.base(i),
        }
    }

    /// The position of the frame at `path`, if there is one. Replaced
    /// frames keep their paths, so the base's records are searched.
    fn find(&self, path: &str) -> Option<usize> {
        let c = self.firsts.partition_point(|f| *f <= path).checked_sub(1)?;
        let &(first, _, bytes) = self.chunks.get(c)?;
        let offsets = self.offsets(c)?;
        // The last stretch whose first path is at most `path` (the first
        // stretch's is the chunk's, at most `path`).
        let (mut lo, mut hi) = (1, offsets.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if first_path(bytes.get(offsets[mid]..)?)? <= path {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let w = lo - 1;
        let k = self
            .stretch(c, w)?
            .iter()
            .position(|r| Reader::new(r).str() == Some(path))?;
        Some(first + w * codec::STRIDE + k)
    }
}

/// The path of the first record of some framed records (see `codec::push_frame`).
fn first_path(bytes: &[u8]) -> Option<&str> {
    let mut r = Reader::new(bytes);
    let rec = r.count().and_then(|len| r.take(len))?;
    Reader::new(rec).str()
}

/// A label file's entries with the frame (by position in the index) each describes.
type Described<'p> = Vec<(usize, usize, Entry<'p>)>;

/// The entries of an encoded parse paired with their frames; `None` unless it
/// is a single-frame format's parse whose every entry names a frame.
fn describe<'p>(
    layout: &Layout,
    path: &str,
    parse: &'p [u8],
    probe: impl Fn(&str) -> Result<Option<Option<usize>>>,
    single_only: bool,
) -> Result<Option<(Format, Described<'p>)>> {
    let Some(Parsed::Labels(format, entries)) = read_parse(parse) else {
        return Ok(None);
    };
    if single_only && format.is_multi_frame() {
        return Ok(None);
    }
    let dirs = layout.frame_dirs(path, format);
    let subset = crate::labels::format_of(format).frames_within_subset();
    let mut out = Vec::with_capacity(entries.len());
    for (at, e) in entries {
        match resolve_entry(layout, &dirs, subset, &e, &probe)? {
            Some(f) => out.push((f, at, e)),
            None => return Ok(None),
        }
    }
    Ok(Some((format, out)))
}

/// The index of `tree` derived from an earlier version's index file `old`
/// (with its base's file when it is an overlay; see the module doc);
/// `Ok(None)` when that does not apply.
pub(super) fn derive(
    store: &ObjectStore,
    old: &std::fs::File,
    base: Option<&std::fs::File>,
    tree: &ObjectId,
) -> Result<Option<IndexParts>> {
    let mut t = crate::trace::Phases::start("query.derive");
    // SAFETY: index files are written under a temporary name and renamed into
    // place, never changed afterwards; removing one leaves a mapping intact.
    // Every byte read is bounds-checked by the decoder.
    let map = |f: &std::fs::File| unsafe { memmap2::Mmap::map(f) }.ok();
    let Some(lazy) = map(old) else {
        return Ok(None);
    };
    let lazy_base = match base {
        Some(b) => match map(b) {
            Some(m) => Some(m),
            None => return Ok(None),
        },
        None => None,
    };
    // The head only (tree, chunk table, warnings): a version this one cannot
    // be derived from costs no more than that and the start of a diff.
    let Some(head) = codec::load(&lazy, lazy_base.as_deref()) else {
        return Ok(None);
    };
    let old_tree = head.tree;
    if !head.warnings().is_empty()
        || old_tree == [0; 32]
        || old_tree == tree.0
        || head.base_tree == tree.0
    {
        return Ok(None);
    }
    let frames = head.frames();
    drop(head);
    drop(lazy_base);
    let src = TreeFiles {
        store,
        root: *tree,
        dirs: Mutex::new(HashMap::new()),
    };
    // Past a few percent of the frames, a full build costs about as much.
    let limit = frames / 8 + 64;
    let Some(changes) = modified(&src, &ObjectId(old_tree), tree, "", limit)? else {
        return Ok(None);
    };
    t.mark("diff");

    let Ok(layout) = Layout::load(&src)? else {
        return Ok(None);
    };
    let sidecar_name = crate::meta::sidecar_path(&layout.toml, &|p| src.exists(p))?;
    // Which changes are frames and which label files, and whether any is a
    // file the index cannot be derived past (checked before the old index is
    // read in full).
    let mut frame_changes: Vec<(&str, FileState)> = Vec::new();
    let mut labels: Vec<(&str, FileState, FileState)> = Vec::new();
    for (path, before, after) in &changes {
        // Files other files' meaning depends on: settings, metadata, class
        // names (even where a rule makes them look like label files).
        let names_file = names_files()
            .iter()
            .any(|n| file_name(path).eq_ignore_ascii_case(n))
            || layout
                .toml
                .labels
                .iter()
                .any(|r| r.names.as_deref() == Some(path.as_str()));
        if path == crate::dsv_toml::FILE_NAME || *path == sidecar_name || names_file {
            return Ok(None);
        }
        if !before.mode.is_blob() || !after.mode.is_blob() {
            return Ok(None);
        }
        match layout.role_by_path(path) {
            Some(Role::Frame) => frame_changes.push((path, *after)),
            // Class names, configs: what they change is not known here.
            Some(Role::Other) => return Ok(None),
            _ => labels.push((path, *before, *after)),
        }
    }

    // Not populated: the records are found through the record tables, so
    // only the pages of the frames looked up are read (all of them only when
    // the chunks are copied into a full index, below).
    let (Some(over), Some(full)) = (map(old), map(base.unwrap_or(old))) else {
        return Ok(None);
    };
    let Some(old_ix) = codec::load(&over, base.map(|_| &full[..])) else {
        return Ok(None);
    };
    let base_tree = old_ix.base_tree;
    let sidecar = old_ix.sidecar().map(str::to_string);
    let chunks = old_ix.chunks().to_vec();
    // The frames of the earlier index, found by path as needed (not all read).
    let Some(recs) = Frames::new(&chunks, old_ix.tables(), old_ix.patches()) else {
        return Ok(None);
    };
    // The frames the earlier overlay replaced, at the same paths.
    for &(at, rec) in old_ix.patches() {
        match recs.base(at).and_then(|b| Reader::new(b).str()) {
            Some(p) if Reader::new(rec).str() == Some(p) => {}
            _ => return Ok(None),
        }
    }
    t.mark("frames");
    let frame_at = |p: &str| recs.find(p);
    // Both versions have the same paths, so the same frames and files.
    let probe = |p: &str| -> Result<Option<Option<usize>>> {
        Ok(match frame_at(p) {
            Some(i) => Some(Some(i)),
            None => src.exists(p)?.then_some(None),
        })
    };
    let mut frame_files: BTreeMap<usize, FileState> = BTreeMap::new();
    for (path, after) in frame_changes {
        match frame_at(path) {
            Some(i) => frame_files.insert(i, after),
            None => return Ok(None),
        };
    }

    // Each changed label file parsed before and after, with the class names
    // in effect (looked up once per directory and `dsv.toml` rule, as a
    // build does).
    let mut names_memo: HashMap<(String, usize), Arc<NamesResult>> = HashMap::new();
    let mut names_of = |path: &str| -> Result<Arc<NamesResult>> {
        let key = (parent(path).to_string(), rule_at(&layout, path));
        if let Some(n) = names_memo.get(&key) {
            return Ok(n.clone());
        }
        let n = Arc::new(layout.class_names(&src, path)?);
        names_memo.insert(key, n.clone());
        Ok(n)
    };
    let label_names = labels
        .iter()
        .map(|(p, _, _)| names_of(p))
        .collect::<Result<Vec<_>>>()?;
    // One by one: a bulk read locates its ids by a scan of the whole store,
    // which costs more than a few thousand lookups.
    let parse = |path: &str, names: &NamesResult, id: &ObjectId| -> Result<Vec<u8>> {
        parse_candidate(&layout, &src, Some(names), path, store.get(id)?.into())
    };
    t.mark("names");
    let new_parses: Vec<Vec<u8>> = labels
        .par_iter()
        .zip(&label_names)
        .map(|((path, _, after), names)| parse(path, names, &after.id))
        .collect::<Result<_>>()?;
    t.mark("read-new");
    let changed: HashSet<&str> = labels.iter().map(|(p, _, _)| *p).collect();
    // Frame -> attribute sections of the entries of changed files describing
    // it before, and entries describing it after.
    let mut before: BTreeMap<usize, Vec<&[u8]>> = BTreeMap::new();
    let mut after: BTreeMap<usize, Vec<(&str, Format, usize, Entry)>> = BTreeMap::new();
    // The changed files whose earlier parse is needed: all but files of a
    // format whose file describes the one frame its name gives (the same
    // paths in both versions, so the same frame) with no frame attributes
    // (`LabelFormat::one_named_frame`) that described the same frame before:
    // the frame's earlier record naming the file in that format shows it
    // parsed so then, so its earlier parse would say nothing new.
    // In parallel: each file's frames are looked up in the base's records.
    let described = labels
        .par_iter()
        .zip(&new_parses)
        .map(|((path, _, _), new_parse)| {
            let Some((format, is)) = describe(&layout, path, new_parse, probe, true)? else {
                return Ok(None);
            };
            let same_frame = match is.as_slice() {
                [(f, _, _)] if format_of(format).one_named_frame() => recs
                    .get(*f)
                    .and_then(codec::record_parts)
                    .is_some_and(|p| p.label_files().any(|l| l == (*path, format)))
                    .then_some(*f),
                _ => None,
            };
            Ok(Some((format, is, same_frame)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut old_needed = Vec::new();
    for (k, ((path, _, _), d)) in labels.iter().zip(described).enumerate() {
        let Some((format, is, same_frame)) = d else {
            return Ok(None);
        };
        match same_frame {
            Some(f) => before.entry(f).or_default().push(&[0]),
            None => old_needed.push(k),
        }
        for (f, at, e) in is {
            after.entry(f).or_default().push((path, format, at, e));
        }
    }
    t.mark("describe-new");
    let old_parses: Vec<(usize, Vec<u8>)> = old_needed
        .par_iter()
        .map(|&k| {
            let (path, before, _) = &labels[k];
            Ok((k, parse(path, &label_names[k], &before.id)?))
        })
        .collect::<Result<_>>()?;
    t.mark("parse");
    for (k, old_parse) in &old_parses {
        let path = labels[*k].0;
        let Some((_, was)) = describe(&layout, path, old_parse, probe, true)? else {
            return Ok(None);
        };
        for (f, _, e) in was {
            before.entry(f).or_default().push(e.attrs);
        }
    }
    let relabelled: BTreeSet<usize> = before.keys().chain(after.keys()).copied().collect();

    // Unchanged label files describing a relabelled frame, parsed again.
    let mut others: BTreeSet<&str> = BTreeSet::new();
    let mut parts: BTreeMap<usize, codec::RecordParts> = BTreeMap::new();
    for &i in relabelled.iter().chain(frame_files.keys()) {
        let Some(p) = recs.get(i).and_then(codec::record_parts) else {
            return Ok(None);
        };
        if relabelled.contains(&i) {
            others.extend(p.labels.iter().filter(|l| !changed.contains(*l)));
        }
        parts.insert(i, p);
    }
    let others: Vec<&str> = others.into_iter().collect();
    let other_parses: Vec<Vec<u8>> = others
        .iter()
        .map(|path| match src.state(path)? {
            Some(st) => parse(path, &*names_of(path)?, &st.id),
            None => Ok(vec![0]),
        })
        .collect::<Result<_>>()?;
    let mut unchanged: BTreeMap<usize, Vec<(&str, Format, usize, Entry)>> = BTreeMap::new();
    for (path, parse) in others.iter().zip(&other_parses) {
        let Some((format, entries)) = describe(&layout, path, parse, probe, false)? else {
            return Ok(None);
        };
        for (f, at, e) in entries {
            if relabelled.contains(&f) {
                unchanged.entry(f).or_default().push((path, format, at, e));
            }
        }
    }

    t.mark("others");
    // The new bytes of every frame that changed.
    let mut new: HashMap<usize, Vec<u8>> = HashMap::new();
    for (&i, p) in &parts {
        let (id, size) = match frame_files.get(&i) {
            Some(st) => (st.id, st.size),
            None => (p.id, p.size),
        };
        let mut out = Vec::with_capacity(recs.get(i).map_or(0, |r| r.len()) + 64);
        if !relabelled.contains(&i) {
            codec::string(&mut out, p.path);
            out.extend_from_slice(&id.0);
            codec::varint(&mut out, size);
            out.extend_from_slice(p.after_size);
            new.insert(i, out);
            continue;
        }
        let kept = unchanged.remove(&i).unwrap_or_default();
        // The record's attribute section is the sidecar's only if no entry
        // describing the frame had attributes of its own.
        let mut old_attrs = kept
            .iter()
            .map(|(_, _, _, e)| e.attrs)
            .chain(before.get(&i).into_iter().flatten().copied());
        if old_attrs.any(|a| a != [0]) {
            return Ok(None);
        }
        let mut entries: Vec<(&str, Format, usize, Entry)> = kept;
        entries.extend(after.remove(&i).unwrap_or_default());
        // As a full build merges them: by label file (path order), then position.
        entries.sort_by(|a, b| a.0.cmp(b.0).then(a.2.cmp(&b.2)));
        let names: Vec<&str> = entries.iter().map(|e| e.0).collect();
        let entries: Vec<(usize, Format, Entry)> = entries
            .into_iter()
            .enumerate()
            .map(|(k, (_, format, _, e))| (k, format, e))
            .collect();
        let meta = EncodedMeta::from_sections(p.attrs, p.predictions);
        let file = FrameFile {
            path: p.path,
            id,
            size,
        };
        frame(&mut out, &file, &entries, Some(&meta), |k| {
            names.get(k).copied().unwrap_or("")
        });
        new.insert(i, out);
    }

    t.mark("encode");
    // Every frame replaced in the base: the earlier overlay's, then this
    // version's (which win).
    let mut patches: BTreeMap<usize, Vec<u8>> = old_ix
        .patches()
        .iter()
        .filter(|(at, _)| !new.contains_key(at))
        .map(|(at, rec)| (*at, rec.to_vec()))
        .collect();
    patches.extend(new);
    let tail = |chunks: Vec<(usize, Vec<u8>)>, overlay: Option<codec::Overlay>| IndexParts {
        tree: tree.0,
        chunks,
        overlay,
        sidecar: sidecar.clone(),
        warnings: Vec::new(),
        attrs: Default::default(),
        // Derived only from an index without warnings, for files that parse.
        invalid: Vec::new(),
        bad_boxes: Default::default(),
    };
    // An overlay while it replaces few frames (judging it costs what judging
    // the base does); past that, a full index, so chains of versions do not
    // carry ever larger overlays.
    if patches.len() <= frames / MAX_REPLACED + 64 {
        let patches: Vec<(usize, Vec<u8>)> = patches.into_iter().collect();
        t.mark("overlay");
        return Ok(Some(tail(
            Vec::new(),
            Some(codec::Overlay {
                base_tree,
                base: Box::new(full),
                patches,
            }),
        )));
    }
    // Chunks copied, with the replaced frames spliced in.
    let mut starts = Vec::with_capacity(chunks.len());
    let mut first = 0;
    for (n, _) in &chunks {
        starts.push(first);
        first += n;
    }
    let out_chunks: Option<Vec<(usize, Vec<u8>)>> = chunks
        .par_iter()
        .zip(starts)
        .map(|((n, bytes), first)| {
            if patches.range(first..first + n).next().is_none() {
                return Some((*n, bytes.to_vec()));
            }
            let mut out = Vec::with_capacity(bytes.len() + 1024);
            for i in first..first + n {
                let b: &[u8] = match patches.get(&i) {
                    Some(b) => b,
                    None => recs.get(i)?,
                };
                codec::push_frame(&mut out, b);
            }
            Some((*n, out))
        })
        .collect();
    let Some(out_chunks) = out_chunks else {
        return Ok(None);
    };
    t.mark("copy");
    Ok(Some(tail(out_chunks, None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Units;
    use crate::query::{FrameIndex, FrameRecord};

    fn record(path: String) -> FrameRecord {
        FrameRecord {
            path,
            id: ObjectId([7; 32]),
            size: 1,
            width: None,
            height: None,
            units: Units::Normalized,
            attrs: Default::default(),
            objects: Vec::new(),
            predictions: Vec::new(),
            labels: Vec::new(),
        }
    }

    #[test]
    fn changed_files_are_found_on_the_entries_bytes_and_hostile_trees_refused() {
        use crate::object::TreeEntry;
        use crate::repo::{OpenOptions, Repository};
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &OpenOptions::default()).unwrap();
        let store = &repo.store;
        let file = |name: &str, byte: u8| TreeEntry {
            name: name.into(),
            mode: EntryMode::File,
            id: ObjectId([byte; 32]),
            size: 5,
            files: 1,
        };
        let state = |byte: u8| FileState {
            mode: EntryMode::File,
            id: ObjectId([byte; 32]),
            size: 5,
        };
        // A directory's object as stored.
        let encode = |entries: Vec<TreeEntry>| {
            let mut out = Vec::new();
            Tree { entries }
                .store_with(&mut |b| {
                    out = b.to_vec();
                    Ok(ObjectId([0; 32]))
                })
                .unwrap();
            out
        };
        let put = |bytes: &[u8]| store.put(bytes).unwrap();
        let root = |sub: ObjectId, z: u8| {
            let d = TreeEntry {
                name: "d".into(),
                mode: EntryMode::Dir,
                id: sub,
                size: 10,
                files: 2,
            };
            encode(vec![d, file("z.txt", z)])
        };
        let tf = |root: ObjectId| TreeFiles {
            store,
            root,
            dirs: Mutex::new(HashMap::new()),
        };
        let sub_a = put(&encode(vec![file("x.txt", 1), file("y.txt", 2)]));
        let a = put(&root(sub_a, 4));

        // One file changed below, the rest the same bytes.
        let sub_b = put(&encode(vec![file("x.txt", 1), file("y.txt", 3)]));
        let b = put(&root(sub_b, 4));
        let t = tf(b);
        let got = modified(&t, &a, &b, "", 100).unwrap().unwrap();
        assert_eq!(got, vec![("d/y.txt".to_string(), state(2), state(3))]);
        // The new version's directories, kept as read, are looked up by name.
        assert_eq!(t.state("d/y.txt").unwrap(), Some(state(3)));
        assert_eq!(t.state("z.txt").unwrap(), Some(state(4)));
        assert_eq!(t.state("d/w.txt").unwrap(), None);
        assert_eq!(t.state("d").unwrap(), None);
        assert!(t.exists("d/x.txt").unwrap());

        // An unchanged entry spelled with a longer varint (other bytes, the
        // same entry) is no change.
        let mut long = root(sub_b, 4);
        let at = long.len() - 2;
        assert_eq!(long[at], 5, "z.txt's size");
        long.splice(at..=at, [0x85, 0x00]);
        let b2 = put(&long);
        assert_eq!(modified(&tf(b2), &a, &b2, "", 100).unwrap().unwrap(), got);
        // A file at the top changed; past the limit, nothing derived.
        let b3 = put(&root(sub_a, 9));
        let top = vec![("z.txt".to_string(), state(4), state(9))];
        assert_eq!(modified(&tf(b3), &a, &b3, "", 100).unwrap().unwrap(), top);
        assert_eq!(modified(&tf(b3), &a, &b3, "", 0).unwrap(), None);

        // A file renamed, added or removed, or a directory where a file was:
        // not a relabelling, so nothing derived.
        for other in [
            vec![file("x.txt", 1), file("y2.txt", 2)],
            vec![file("x.txt", 1), file("y.txt", 2), file("z", 1)],
            vec![file("x.txt", 1)],
            vec![
                file("x.txt", 1),
                TreeEntry {
                    mode: EntryMode::Dir,
                    ..file("y.txt", 2)
                },
            ],
        ] {
            let b4 = put(&root(put(&encode(other.clone())), 4));
            assert_eq!(
                modified(&tf(b4), &a, &b4, "", 100).unwrap(),
                None,
                "{other:?}"
            );
        }

        // Hostile objects are refused whichever side they are on, even where
        // the entries' bytes agree: names out of order (same length, so the
        // other entries are the same bytes), or a name with '/'.
        let swap = |bytes: Vec<u8>, from: &[u8], to: &[u8]| {
            let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
            let mut out = bytes;
            out[at..at + to.len()].copy_from_slice(to);
            out
        };
        let ab = encode(vec![file("x.txt", 1), file("y.txt", 3)]);
        for (bad, reason) in [
            (swap(ab.clone(), b"y.txt", b"a.txt"), "not sorted"),
            (swap(ab, b"x.txt", b"x/txt"), "'/' inside a name"),
        ] {
            let bad_root = put(&root(put(&bad), 4));
            for (x, y) in [(a, bad_root), (bad_root, a)] {
                let err = modified(&tf(y), &x, &y, "", 100).unwrap_err().to_string();
                assert!(err.contains(reason), "{err}");
            }
        }
    }

    #[test]
    fn frames_are_found_by_path_and_position_through_the_record_tables() {
        // Three chunks, the last with a partial stretch; paths of varied length.
        let n = 2 * codec::CHUNK + codec::STRIDE + 5;
        let paths: Vec<String> = (0..n)
            .map(|i| format!("d{:03}/{}{i:06}.jpg", i / 1000, "x".repeat(i % 7)))
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        let ix = FrameIndex {
            frames: sorted.iter().cloned().map(record).collect(),
            ..FrameIndex::default()
        };
        let bytes = codec::encode(&ix);
        let loaded = codec::load(&bytes, None).expect("loads");
        let chunks = loaded.chunks().to_vec();
        let frames = Frames::new(&chunks, loaded.tables(), &[]).expect("frames");
        for (i, p) in sorted.iter().enumerate() {
            assert_eq!(frames.find(p), Some(i), "{p}");
            let rec = frames.get(i).expect("a record");
            assert_eq!(Reader::new(rec).str(), Some(p.as_str()));
        }
        assert_eq!(frames.get(n), None);
        for missing in ["", "a", "d000/", "d000/0000005.jpg", "zzz"] {
            assert_eq!(frames.find(missing), None, "{missing}");
        }
        // An empty chunk (which no build writes) is refused, with its table.
        let empty = codec::record_table(0, &[]).expect("a table of no records");
        assert_eq!(codec::read_record_table(0, &[], &empty), Some(Vec::new()));
        let mut with_empty = chunks.clone();
        with_empty.push((0, &[]));
        let mut tables = loaded.tables().to_vec();
        tables.push(&empty);
        assert!(Frames::new(&with_empty, &tables, &[]).is_none());
        // So is a table missing.
        assert!(Frames::new(&chunks, &loaded.tables()[1..], &[]).is_none());

        // A damaged table: frames in that chunk are not found (the index is
        // then built in full), never found at another position.
        let mut bad = bytes.clone();
        let table = loaded.tables()[1];
        let at = table.as_ptr() as usize - bytes.as_ptr() as usize + 8;
        bad[at] ^= 1;
        let loaded = codec::load(&bad, None).expect("the heads still read");
        let chunks = loaded.chunks().to_vec();
        let frames = Frames::new(&chunks, loaded.tables(), &[]).expect("frames");
        for (i, p) in sorted.iter().enumerate() {
            let found = frames.find(p);
            if (codec::CHUNK..2 * codec::CHUNK).contains(&i) {
                assert_eq!(found, None, "{p}");
                assert_eq!(frames.get(i), None, "{i}");
            } else {
                assert_eq!(found, Some(i), "{p}");
            }
        }
    }
}
