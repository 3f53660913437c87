//! Building a version's frame index straight into its encoding ([`codec`]),
//! reusing what earlier builds parsed.
//!
//! Each label file's parse is kept encoded: the frame entries it holds, with
//! their objects already in the index's object encoding. These parses are
//! cached per directory (by file name, content id and the class names the file
//! was parsed with) in `.dsv/cache/query-labels.redb`, as `stats` keeps its
//! counts, so the index of a new commit re-reads only the label files that
//! changed. Frames are then written chunk by chunk in parallel, splicing in
//! the objects of the entries that describe them and the sidecar's
//! attributes; no frame record is built (a million of them, and their objects,
//! were most of a cold query).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::{
    AttrValue, ClassNames, Format, FrameLabels, LabelFormat, PlainBox, Units, format_of,
};
use crate::layout::{FileSource, Layout, NamesResult, Role, file_name, parent};
use crate::meta::sidecar_path;
use crate::object::EntryMode;
use crate::object::diff::FileState;
use crate::object::tree::{EntryRef, TreeObjectRef};
use crate::store::ObjectStore;

use super::codec::{self, IndexRead, Reader};
use super::parse_cache::ParseCache;
use super::sidecar::EncodedMeta;

/// Version of the per-file encoding; part of every group key.
const CACHE_VERSION: &[u8] = b"dsv-query-labels-5";
/// How many warnings an index keeps by name.
pub(super) const MAX_WARNINGS: usize = 20;
/// Label files per group of the parse cache, about: a large directory is
/// split into buckets by a hash of the name, so that looking up a file reads
/// a table of a few thousand names, not a million.
const BUCKET: usize = 4096;

/// What one label file holds, encoded: tag 0, not a label file; tag 1, a
/// file that did not parse (the warning); tag 2, its format and frame entries.
fn encode_parse(
    out: &mut Vec<u8>,
    parsed: Option<std::result::Result<(Format, Vec<FrameLabels>), String>>,
) {
    match parsed {
        None => out.push(0),
        Some(Err(w)) => {
            out.push(1);
            codec::string(out, &w);
        }
        Some(Ok((format, frames))) => {
            out.push(2);
            out.push(codec::format_tag(format));
            codec::varint(out, frames.len() as u64);
            let mut objects = Vec::new();
            // Each frame is dropped once encoded: the parse and its encoding
            // are then not both held whole (issue 16, item 9).
            for f in frames {
                encode_frame(out, &f, &mut objects);
            }
        }
    }
}

/// One frame entry of [`encode_parse`]; `objects` is scratch space.
fn encode_frame(out: &mut Vec<u8>, f: &FrameLabels, objects: &mut Vec<u8>) {
    codec::string(out, &f.frame);
    out.push(u8::from(f.units == Units::Normalized));
    codec::opt_u32(out, f.width);
    codec::opt_u32(out, f.height);
    codec::attrs(out, &f.attributes);
    objects.clear();
    for o in &f.objects {
        codec::object(objects, o);
    }
    codec::varint(out, f.objects.len() as u64);
    codec::varint(out, objects.len() as u64);
    out.extend_from_slice(objects);
}

/// [`encode_parse`] of a label file of `format`, encoded frame by frame as
/// the layout parses it ([`Layout::parse_each`]): a multi-frame file never
/// has all its objects parsed at once where its format streams (CVAT, and
/// COCO from compact records); where it does not, owned bytes hold the
/// encoding once parsed. The same bytes.
fn encode_label_file(
    layout: &Layout,
    src: &dyn FileSource,
    path: &str,
    format: Format,
    bytes: Cow<'_, [u8]>,
) -> Result<Vec<u8>> {
    // A format that parses a whole file before handing over its first frame
    // (COCO did, before it held compact records until each frame is handed
    // over) holds the bytes and every parsed object at once anyway; given
    // the bytes owned (a large
    // file read whole), the encoding is written into their room once parsed,
    // so it needs no memory of its own beside them and the objects. Freed
    // instead, they were not always given back to the system before the
    // encoding grew (a cold query of a 190 MB COCO file peaked 100 MiB above
    // its parse; issue 16, item 9). The room the encoding leaves unused stays
    // with it until the index is built: its pages are in memory already, and
    // shrinking would copy the encoding.
    let bytes = match bytes {
        Cow::Owned(buf) if !format_of(format).streams_frames() => {
            return match layout.parse(src, path, format, &buf)? {
                Ok(frames) => {
                    let mut out = buf;
                    out.clear();
                    encode_parse(&mut out, Some(Ok((format, frames))));
                    Ok(out)
                }
                Err((file, e)) => {
                    drop(buf);
                    let mut out = Vec::new();
                    encode_parse(&mut out, Some(Err(format!("{file}: {e}"))));
                    Ok(out)
                }
            };
        }
        bytes => bytes,
    };
    // Room for the tag, the format and the frame count (a varint of at most
    // ten bytes), which is known only at the end.
    const HEAD: usize = 12;
    let mut out = vec![0u8; HEAD];
    let mut frames = 0u64;
    let mut objects = Vec::new();
    let mut encode = |f: FrameLabels| {
        encode_frame(&mut out, &f, &mut objects);
        frames += 1;
    };
    // Owned bytes go to the format, which frees them once read where it can.
    let parsed = match bytes {
        Cow::Owned(buf) => layout.parse_each_owned(src, path, format, buf, &mut encode)?,
        Cow::Borrowed(b) => layout.parse_each(src, path, format, b, &mut encode)?,
    };
    match parsed {
        Ok(()) => {
            let mut head = vec![2, codec::format_tag(format)];
            codec::varint(&mut head, frames);
            let start = HEAD - head.len();
            out[start..HEAD].copy_from_slice(&head);
            // In place: no second copy of a large encoding.
            out.drain(..start);
        }
        Err((file, e)) => {
            out.clear();
            out.shrink_to_fit();
            encode_parse(&mut out, Some(Err(format!("{file}: {e}"))));
        }
    }
    Ok(out)
}

/// [`encode_parse`] of a file whose objects are all plain boxes
/// ([`LabelFormat::plain_boxes`]), given the class names in effect, written
/// straight from its bytes: a million label files then cost no object,
/// string or map each. `None` for any other file (and any format without
/// the fast path), which the general path parses (and reports).
fn encode_plain_boxes(
    format: &dyn LabelFormat,
    names: Option<&ClassNames>,
    path: &str,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    thread_local! {
        static BOXES: std::cell::RefCell<Vec<PlainBox>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    BOXES.with(|cell| {
        let mut boxes = cell.borrow_mut();
        if !format.plain_boxes(bytes, names, &mut boxes) {
            return None;
        }
        let mut objects = Vec::with_capacity(boxes.len() * 64);
        for (index, b, score) in boxes.iter() {
            let number;
            let class = match names {
                Some(n) => n.get(*index)?.as_str(),
                None => {
                    number = index.to_string();
                    number.as_str()
                }
            };
            codec::box_object(&mut objects, class, b, *score);
        }
        let stem = crate::layout::stem(path);
        let mut out = Vec::with_capacity(objects.len() + stem.len() + 16);
        out.push(2);
        out.push(codec::format_tag(format.format()));
        codec::varint(&mut out, 1);
        codec::string(&mut out, stem);
        out.push(u8::from(format.units() == Units::Normalized));
        codec::opt_u32(&mut out, None);
        codec::opt_u32(&mut out, None);
        codec::varint(&mut out, 0); // no frame attributes
        codec::varint(&mut out, boxes.len() as u64);
        codec::varint(&mut out, objects.len() as u64);
        out.extend_from_slice(&objects);
        Some(out)
    })
}

/// One frame entry of an encoded parse.
pub(super) struct Entry<'a> {
    pub(super) frame: &'a str,
    units: Units,
    width: Option<u32>,
    height: Option<u32>,
    /// The attribute section (count and pairs).
    pub(super) attrs: &'a [u8],
    objects: u64,
    /// The objects, each as [`codec::object`] writes it, without the count.
    object_bytes: &'a [u8],
}

fn read_entry<'a>(r: &mut Reader<'a>) -> Option<Entry<'a>> {
    let frame = r.str()?;
    let units = if r.bool()? {
        Units::Normalized
    } else {
        Units::Pixels
    };
    let width = r.opt_u32()?;
    let height = r.opt_u32()?;
    let attrs = r.attrs_section()?;
    let objects = r.varint()?;
    let n = r.count()?;
    let object_bytes = r.take(n)?;
    Some(Entry {
        frame,
        units,
        width,
        height,
        attrs,
        objects,
        object_bytes,
    })
}

/// An encoded parse, read back.
pub(super) enum Parsed<'a> {
    NotLabel,
    Failed(&'a str),
    /// The format, and the entries with the offset of each in the encoding.
    Labels(Format, Vec<(usize, Entry<'a>)>),
}

pub(super) fn read_parse(b: &[u8]) -> Option<Parsed<'_>> {
    let mut r = Reader::new(b);
    let p = match r.u8()? {
        0 => Parsed::NotLabel,
        1 => Parsed::Failed(r.str()?),
        2 => {
            let format = crate::labels::format_from_tag(r.u8()?)?;
            let n = r.count()?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let at = b.len() - r.rest_len();
                entries.push((at, read_entry(&mut r)?));
            }
            Parsed::Labels(format, entries)
        }
        _ => return None,
    };
    r.done().then_some(p)
}

/// A string attribute of an attribute section.
fn attr_str<'a>(attrs: &'a [u8], key: &str) -> Option<&'a str> {
    let mut r = Reader::new(attrs);
    let n = r.count()?;
    for _ in 0..n {
        let k = r.str()?;
        if k == key {
            return match r.u8()? {
                3 => r.str(),
                _ => None,
            };
        }
        r.skip_attr_value()?;
    }
    None
}

/// The encoded parse ([`encode_parse`]) of a candidate label file (a file
/// whose path gave no role or a label rule's), given the class names in
/// effect for it. Owned bytes may be reused for the encoding
/// ([`encode_label_file`]).
pub(super) fn parse_candidate(
    layout: &Layout,
    src: &dyn FileSource,
    names: Option<&NamesResult>,
    path: &str,
    bytes: Cow<'_, [u8]>,
) -> Result<Vec<u8>> {
    let role = match layout.toml.rule_for(path) {
        Some(rule) => Role::Label(rule.format),
        None => layout.role_by_content(path, &bytes),
    };
    if let Role::Label(format) = role
        && let Some(Ok(names)) = names
        && let Some(out) = encode_plain_boxes(format_of(format), names.as_deref(), path, &bytes)
    {
        return Ok(out);
    }
    match role {
        Role::Label(format) => encode_label_file(layout, src, path, format, bytes),
        _ => {
            let mut out = Vec::new();
            encode_parse(&mut out, None);
            Ok(out)
        }
    }
}

/// The frame an entry of a label file describes, given the frame
/// directories of the file, whether its format names frames within a subset
/// ([`crate::labels::LabelFormat::frames_within_subset`]) and a probe of the
/// version's paths ([`Layout::frame_path_with`]).
pub(super) fn resolve_entry<T>(
    layout: &Layout,
    dirs: &[String],
    within_subset: bool,
    e: &Entry,
    mut probe: impl FnMut(&str) -> Result<Option<Option<T>>>,
) -> Result<Option<T>> {
    let mut fp = layout.frame_path_with(dirs, e.frame, &mut probe)?;
    if fp.is_none()
        && within_subset
        && let Some(sub) = attr_str(e.attrs, "subset")
    {
        let key = format!("{sub}/{}", e.frame);
        fp = layout.frame_path_with(dirs, &key, &mut probe)?;
    }
    Ok(fp.flatten())
}

/// A stable hash of a file name, to pick its bucket.
fn name_hash(name: &str) -> u64 {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One cache entry's worth of label files (a directory or a bucket of one).
struct Group {
    key: [u8; 32],
    /// Candidates (indexes into the candidate list).
    members: Vec<usize>,
}

/// A label file's cached parse: what the cache entry said of it.
type Known<'a> = HashMap<&'a str, (&'a [u8], &'a [u8], &'a [u8])>;

/// Reads a cache entry: name -> (content id, names digest, encoded parse).
fn read_group(b: &[u8]) -> Option<Known<'_>> {
    let mut r = Reader::new(b);
    let n = r.count()?;
    let mut out = HashMap::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?;
        let id = r.take(32)?;
        let ctx = r.take(16)?;
        let len = r.count()?;
        let parse = r.take(len)?;
        out.insert(name, (id, ctx, parse));
    }
    r.done().then_some(out)
}

/// Reads a group of the parse cache and every parse in it (for
/// fuzzing and tests): the number of label files, `None` if anything is
/// malformed. Never panics, whatever the bytes.
pub fn read_cache_entry(b: &[u8]) -> Option<usize> {
    let known = read_group(b)?;
    for (_, _, parse) in known.values() {
        if let Parsed::Labels(_, entries) = read_parse(parse)? {
            for (_, e) in entries {
                Reader::new(e.attrs).attrs()?;
                attr_str(e.attrs, "subset");
            }
        }
    }
    Some(known.len())
}

/// Class names in effect for label files, with their [`names_digest`].
type Names = (NamesResult, [u8; 16]);

/// What the parse of a YOLO file depends on besides its bytes: the class
/// names it finds (or the names file that failed), as a digest.
fn names_digest(names: &NamesResult) -> [u8; 16] {
    let cut = |h: blake3::Hash| {
        let mut d = [0u8; 16];
        d.copy_from_slice(&h.as_bytes()[..16]);
        d
    };
    match names {
        Ok(None) => [0; 16],
        Ok(Some(names)) => {
            let mut h = blake3::Hasher::new();
            for n in names.iter() {
                h.update(&(n.len() as u64).to_le_bytes());
                h.update(n.as_bytes());
            }
            if let Some(k) = names.kpt_shape {
                h.update(format!("kpt_shape {} {}", k.points, k.dims).as_bytes());
            }
            cut(h.finalize())
        }
        Err((file, e)) => cut(blake3::hash(format!("{file}\n{e}").as_bytes())),
    }
}

/// Every file below a tree with its state, in path order (the order of
/// `ops::diff::flatten`), directories read in parallel and no map built.
pub(super) fn walk(store: &ObjectStore, tree: &ObjectId) -> Result<Vec<(String, FileState)>> {
    let mut runs = Vec::new();
    walk_dir(store, tree, "", &mut runs)?;
    // Concatenated once: concatenating at every level moved each file once
    // per directory above it.
    let mut out = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    for r in runs {
        out.extend(r);
    }
    Ok(out)
}

/// Appends the files below tree `id` (at `prefix`) to `runs`, as runs of
/// files in path order.
fn walk_dir(
    store: &ObjectStore,
    id: &ObjectId,
    prefix: &str,
    runs: &mut Vec<Vec<(String, FileState)>>,
) -> Result<()> {
    crate::object::tree::check_dir_depth(prefix.as_bytes())?;
    let corrupt = |id: &ObjectId, reason: String| Error::CorruptObject { id: *id, reason };
    let bytes = store.get(id)?;
    let shards: Vec<Vec<u8>>;
    let mut entries: Vec<EntryRef> =
        match TreeObjectRef::decode(&bytes).map_err(|r| corrupt(id, r))? {
            TreeObjectRef::Entries(e) => e,
            TreeObjectRef::Shards(list) => {
                shards = list
                    .par_iter()
                    .map(|s| store.get(&s.id))
                    .collect::<Result<_>>()?;
                let mut all = Vec::new();
                for (s, b) in list.iter().zip(&shards) {
                    match TreeObjectRef::decode(b).map_err(|r| corrupt(&s.id, r))? {
                        TreeObjectRef::Entries(e) => all.extend(e),
                        TreeObjectRef::Shards(_) => {
                            return Err(corrupt(&s.id, "nested shard list".into()));
                        }
                    }
                }
                all
            }
        };
    // Full paths sort a directory's files after names that extend its name
    // with a byte below '/' ("a.txt" < "a/b"): order entries as paths do.
    fn key<'e>(e: &'e EntryRef) -> impl Iterator<Item = u8> + 'e {
        let slash: &[u8] = if e.mode == EntryMode::Dir { b"/" } else { b"" };
        e.name.iter().chain(slash).copied()
    }
    entries.sort_by(|a, b| key(a).cmp(key(b)));
    let path = |name: &[u8]| {
        let name = String::from_utf8_lossy(name);
        if prefix.is_empty() {
            return name.into_owned();
        }
        let mut p = String::with_capacity(prefix.len() + 1 + name.len());
        p.push_str(prefix);
        p.push('/');
        p.push_str(&name);
        p
    };
    let dirs: Vec<(ObjectId, String)> = entries
        .iter()
        .filter(|e| e.mode == EntryMode::Dir)
        .map(|e| (e.id, path(e.name)))
        .collect();
    let below = dirs
        .par_iter()
        .map(|(id, p)| {
            let mut runs = Vec::new();
            walk_dir(store, id, p, &mut runs).map(|()| runs)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut below = below.into_iter();
    let mut files = Vec::new();
    for e in &entries {
        if e.mode == EntryMode::Dir {
            if !files.is_empty() {
                runs.push(std::mem::take(&mut files));
            }
            runs.extend(below.next().unwrap_or_default());
        } else {
            if files.is_empty() {
                files.reserve(entries.len());
            }
            files.push((
                path(e.name),
                FileState {
                    mode: e.mode,
                    id: e.id,
                    size: e.size,
                },
            ));
        }
    }
    if !files.is_empty() {
        runs.push(files);
    }
    Ok(())
}

/// The files of a version as a sorted list, contents from the store; the
/// version's frames, once known, answer most existence checks by hash.
struct Files<'a> {
    store: &'a ObjectStore,
    files: &'a [(String, FileState)],
    frames: Option<&'a FxHashMap<&'a str, u32>>,
}

impl Files<'_> {
    fn find(&self, path: &str) -> Option<&FileState> {
        let i = self
            .files
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()?;
        self.files.get(i).map(|(_, s)| s)
    }
}

impl FileSource for Files<'_> {
    fn read_id(&self, _path: &str, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.store.get(id)?))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.find(path) {
            Some(s) => Ok(Some(self.store.get(&s.id)?)),
            None => Ok(None),
        }
    }
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.frames.is_some_and(|f| f.contains_key(path)) || self.find(path).is_some())
    }
}

/// Label files paired with their frames per parallel job.
const PAIR_RUN: usize = 2048;

/// A run of label files' entries as (frame, label file, entry offset), their
/// warnings, and the files that did not parse (file, frame it pairs with by
/// name, warning).
type Resolved = (
    Vec<(u32, u32, usize)>,
    Vec<String>,
    Vec<(u32, Option<u32>, String)>,
);

/// Where a label file's encoded parse is: a cache entry read, or a fresh parse.
enum Source {
    Cached {
        group: usize,
        start: usize,
        end: usize,
    },
    Fresh(Vec<u8>),
    Missing,
}

/// Which `dsv.toml` label rule applies to a path (the first that matches), by
/// position from 1; 0 for none.
pub(super) fn rule_at(layout: &Layout, path: &str) -> usize {
    layout
        .toml
        .labels
        .iter()
        .position(|r| r.matches(path))
        .map_or(0, |k| k + 1)
}

/// [`Layout::frame_dirs`] of the last label file asked about, reused for the
/// next when it would give the same: a single-frame format, the same
/// directory and the same `dsv.toml` rule (multi-frame formats also look at
/// the file's name).
#[derive(Default)]
struct DirsMemo {
    key: Option<(String, Format, usize)>,
    dirs: Vec<String>,
}

impl DirsMemo {
    fn dirs(&mut self, layout: &Layout, label_path: &str, format: Format) -> &[String] {
        let rule = rule_at(layout, label_path);
        let dir = parent(label_path);
        let same = !format.is_multi_frame()
            && self
                .key
                .as_ref()
                .is_some_and(|(d, f, r)| d == dir && *f == format && *r == rule);
        if !same {
            self.dirs = layout.frame_dirs(label_path, format);
            self.key = Some((dir.to_string(), format, rule));
        }
        &self.dirs
    }
}

/// Label-file candidates of a version, as positions in its file list.
struct Cands<'a> {
    files: &'a [(String, FileState)],
    at: Vec<u32>,
}

impl<'a> Cands<'a> {
    fn len(&self) -> usize {
        self.at.len()
    }

    /// The path of candidate `i` (which must be one).
    fn path(&self, i: usize) -> &'a str {
        &self.files[self.at[i] as usize].0
    }

    /// The content id of candidate `i` (which must be one).
    fn id(&self, i: usize) -> ObjectId {
        self.files[self.at[i] as usize].1.id
    }

    /// The path of candidate `i`, if there is one.
    fn get(&self, i: usize) -> Option<&'a str> {
        let &f = self.at.get(i)?;
        self.files.get(f as usize).map(|(p, _)| p.as_str())
    }
}

/// A frame of the version: path, content id, size.
pub(super) struct FrameFile<'a> {
    pub(super) path: &'a str,
    pub(super) id: ObjectId,
    pub(super) size: u64,
}

/// Takes the chunks of an index being built, in order: (chunks in all,
/// frames in this one, its bytes); false stops the build's handing over
/// (a write failed).
pub(super) type ChunkSink<'s> = &'s mut dyn FnMut(usize, usize, &[u8]) -> bool;

/// Builds the encoded index of a version given as a path -> state map,
/// parsing only the label files `cache` does not already hold, and the
/// sidecar only when `sidecar_cache` does not hold its rows. With `sink`,
/// the chunks go to it as they are made and the parts come back without them.
pub(super) fn build(
    store: &ObjectStore,
    files: &[(String, FileState)],
    cache: &ParseCache,
    sidecar_cache: &ParseCache,
    sink: Option<ChunkSink<'_>>,
) -> Result<codec::IndexParts> {
    let mut t = crate::trace::Phases::start("query.build");
    let plain = Files {
        store,
        files,
        frames: None,
    };
    let layout = Layout::load(&plain)?.map_err(|e| Error::Labels(e.to_string()))?;
    // Classified in parallel: two million paths took most of a second on one core.
    let roles: Vec<Option<Option<Role>>> = files
        .par_iter()
        .with_min_len(4096)
        .map(|(path, st)| st.mode.is_blob().then(|| layout.role_by_path(path)))
        .collect();
    let n_frames = roles
        .iter()
        .filter(|r| **r == Some(Some(Role::Frame)))
        .count();
    // Frames and candidates as positions in `files`: a path and an id each
    // would be a hundred bytes a frame more at the peak.
    let mut frames: Vec<u32> = Vec::with_capacity(n_frames);
    let mut by_path: FxHashMap<&str, u32> = FxHashMap::default();
    by_path.reserve(n_frames);
    let mut cands = Cands {
        files,
        at: Vec::new(),
    };
    let Ok(_) = u32::try_from(files.len()) else {
        return Err(Error::Labels("more than 4 billion files".into()));
    };
    for (fi, ((path, _), role)) in files.iter().zip(roles).enumerate() {
        let fi = fi as u32;
        let Some(role) = role else { continue };
        match role {
            Some(Role::Frame) => {
                let Ok(i) = u32::try_from(frames.len()) else {
                    return Err(Error::Labels("more than 4 billion frames".into()));
                };
                by_path.insert(path, i);
                frames.push(fi);
            }
            Some(Role::Other) => {}
            _ => cands.at.push(fi),
        }
    }
    let src = Files {
        store,
        files,
        frames: Some(&by_path),
    };
    t.mark("roles");

    // Label files in cache entries: per directory, split into buckets when large.
    // Candidates come in path order, so a directory's files come in a few runs
    // (its subdirectories' files can split them): maps are asked once per run.
    let mut runs: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
    for (i, p) in (0..cands.len()).map(|i| (i, cands.path(i))) {
        let dir = parent(p);
        match runs.last_mut() {
            Some((d, r)) if *d == dir => r.end = i + 1,
            _ => runs.push((dir, i..i + 1)),
        }
    }
    let mut per_dir: FxHashMap<&str, usize> = FxHashMap::default();
    for (dir, r) in &runs {
        *per_dir.entry(dir).or_default() += r.len();
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_at: FxHashMap<(&str, u64), usize> = FxHashMap::default();
    for (dir, r) in runs {
        let buckets = per_dir
            .get(dir)
            .copied()
            .unwrap_or(1)
            .div_ceil(BUCKET)
            .max(1) as u64;
        // This run's group of each bucket, once asked for.
        let mut slots: Vec<Option<usize>> = vec![None; buckets as usize];
        for i in r {
            let bucket = if buckets > 1 {
                name_hash(file_name(cands.path(i))) % buckets
            } else {
                0
            };
            let Some(slot) = slots.get_mut(bucket as usize) else {
                continue;
            };
            let g = *slot.get_or_insert_with(|| {
                *group_at.entry((dir, bucket)).or_insert_with(|| {
                    groups.push(Group {
                        key: crate::db::cache_key(
                            CACHE_VERSION,
                            &[
                                dir.as_bytes(),
                                &buckets.to_le_bytes(),
                                &bucket.to_le_bytes(),
                                &layout.toml.digest,
                            ],
                        ),
                        members: Vec::new(),
                    });
                    groups.len() - 1
                })
            });
            if let Some(g) = groups.get_mut(g) {
                g.members.push(i);
            }
        }
    }
    drop(group_at);
    t.mark("groups");

    // The class names in effect for every candidate, and their digest: looked
    // up once per group and rule (a group is one directory, and the names
    // depend on the directory and the `dsv.toml` rule only).
    let per_group: Vec<(Vec<Names>, Vec<u32>)> = groups
        .par_iter()
        .map(|g| {
            let mut lists: Vec<(usize, NamesResult, [u8; 16])> = Vec::new();
            let mut of = Vec::with_capacity(g.members.len());
            for &i in &g.members {
                let path = cands.path(i);
                let rule = rule_at(&layout, path);
                let at = match lists.iter().position(|(r, _, _)| *r == rule) {
                    Some(at) => at,
                    None => {
                        let names = layout.class_names(&src, path)?;
                        let digest = names_digest(&names);
                        lists.push((rule, names, digest));
                        lists.len() - 1
                    }
                };
                of.push(at as u32);
            }
            Ok((lists.into_iter().map(|(_, n, d)| (n, d)).collect(), of))
        })
        .collect::<Result<_>>()?;
    let mut names: Vec<Names> = Vec::new();
    let mut names_of: Vec<u32> = vec![0; cands.len()];
    for (g, (lists, of)) in groups.iter().zip(per_group) {
        let base = names.len() as u32;
        for (&i, at) in g.members.iter().zip(of) {
            names_of[i] = base + at;
        }
        names.extend(lists);
    }
    let names_at = |i: usize| names_of.get(i).and_then(|&n| names.get(n as usize));
    let pack = cache.load();
    let blobs: Vec<Option<&[u8]>> = match &pack {
        Some(pack) => groups.par_iter().map(|g| pack.group(&g.key)).collect(),
        None => vec![None; groups.len()],
    };
    let mut sources: Vec<Source> = (0..cands.len()).map(|_| Source::Missing).collect();
    for (gi, g) in groups.iter().enumerate() {
        let known = blobs
            .get(gi)
            .copied()
            .flatten()
            .and_then(|b| Some((b, read_group(b)?)));
        for &i in &g.members {
            let Some((_, d)) = names_at(i) else { continue };
            let Some((blob, known)) = &known else {
                continue;
            };
            let (path, id) = (cands.path(i), &cands.id(i));
            if let Some((kid, kctx, parse)) = known.get(file_name(path))
                && *kid == id.0.as_slice()
                && *kctx == d.as_slice()
                && read_parse(parse).is_some()
            {
                let start = parse.as_ptr() as usize - blob.as_ptr() as usize;
                sources[i] = Source::Cached {
                    group: gi,
                    start,
                    end: start + parse.len(),
                };
            }
        }
    }
    // The groups this build uses none of (their files changed) leave memory.
    if let Some(pack) = &pack {
        let mut used = vec![false; groups.len()];
        for s in &sources {
            if let Source::Cached { group, .. } = s
                && let Some(u) = used.get_mut(*group)
            {
                *u = true;
            }
        }
        for (blob, used) in blobs.iter().zip(used) {
            if let (Some(blob), false) = (blob, used) {
                pack.release(blob);
            }
        }
    }
    t.mark("cache-read");

    // Every label file the cache did not know, in one bulk read, each parsed
    // (and encoded) on the thread that read it.
    let missing: Vec<usize> = (0..cands.len())
        .filter(|&i| matches!(sources[i], Source::Missing))
        .collect();
    let ids: Vec<ObjectId> = missing.iter().map(|&i| cands.id(i)).collect();
    // A large file's bytes come owned, so that their room can be reused.
    let fresh: Vec<Vec<u8>> = store.get_many_with_cow(&ids, |k, bytes| {
        let Some(path) = missing.get(k).and_then(|&i| cands.get(i)) else {
            return Ok(Vec::new());
        };
        let names = missing.get(k).and_then(|&i| names_at(i)).map(|(n, _)| n);
        parse_candidate(&layout, &src, names, path, bytes)
    })?;
    drop(ids);
    let fresh_any = !missing.is_empty();
    t.mark("read-parse");
    for (i, bytes) in missing.into_iter().zip(fresh) {
        sources[i] = Source::Fresh(bytes);
    }
    let parse_of = |i: usize| -> &[u8] {
        match sources.get(i) {
            Some(Source::Cached { group, start, end }) => blobs
                .get(*group)
                .copied()
                .flatten()
                .and_then(|b| b.get(*start..*end))
                .unwrap_or(&[]),
            Some(Source::Fresh(b)) => b,
            _ => &[],
        }
    };

    // The sidecar's rows: from the cache when it has this content id's,
    // else read and parsed (and cached, below).
    let name = sidecar_path(&layout.toml, &|p| src.exists(p))?;
    let sidecar_key = src
        .find(&name)
        .map(|st| super::sidecar::cache_key(&name, &st.id));
    let sidecar_pack = sidecar_key.and_then(|_| sidecar_cache.load());
    let cached_rows = match (&sidecar_pack, &sidecar_key) {
        (Some(pack), Some(key)) => pack.group(key).and_then(super::sidecar::decode_rows),
        _ => None,
    };
    let sidecar_fresh = cached_rows.is_none();
    let sidecar_bytes = match sidecar_fresh {
        true => src.read(&name)?,
        false => None,
    };
    t.mark("sidecar-read");
    let sidecar = match (cached_rows, &sidecar_bytes) {
        (Some(rows), _) => Some(rows),
        (None, Some(bytes)) => Some(super::sidecar::read(&name, bytes)?),
        (None, None) => None,
    };
    t.mark("sidecar-parse");

    // A new pack of every group's parses when anything was parsed now, and
    // of the sidecar's rows when they were, written while the index is
    // assembled.
    let index = std::thread::scope(|scope| {
        if sidecar_fresh && let (Some(rows), Some(key)) = (&sidecar, sidecar_key) {
            scope.spawn(move || {
                sidecar_cache.store([()], |(), out| {
                    super::sidecar::encode_rows(out, rows);
                    key
                });
            });
        }
        if fresh_any {
            let (groups, cands, names_at, parse_of) = (&groups, &cands, &names_at, &parse_of);
            scope.spawn(move || {
                cache.store(groups, |g, out| {
                    codec::varint(out, g.members.len() as u64);
                    for &i in &g.members {
                        codec::string(out, file_name(cands.path(i)));
                        out.extend_from_slice(&cands.id(i).0);
                        out.extend_from_slice(names_at(i).map_or(&[0; 16], |(_, d)| d));
                        let p = parse_of(i);
                        codec::varint(out, p.len() as u64);
                        out.extend_from_slice(p);
                    }
                    g.key
                });
            });
        }

        // A frame of the version at a path: the frame's index, `Some(None)`
        // for a file that is not a frame, `None` for no file.
        let probe = |p: &str| -> Result<Option<Option<u32>>> {
            Ok(match by_path.get(p) {
                Some(&f) => Some(Some(f)),
                None => src.find(p).map(|_| None),
            })
        };
        // Which frame each entry describes: (frame, label file, entry offset),
        // and the warnings. In runs of label files, each with the frame
        // directories of the last file it paired: the same for every file of a
        // directory with one format and rule.
        let runs: Vec<std::ops::Range<usize>> = (0..cands.len())
            .step_by(PAIR_RUN)
            .map(|s| s..(s + PAIR_RUN).min(cands.len()))
            .collect();
        let resolved: Vec<Resolved> = runs
            .into_par_iter()
            .map(|run| -> Result<_> {
                let mut memo = DirsMemo::default();
                let mut out = Vec::new();
                let mut warns = Vec::new();
                let mut invalid = Vec::new();
                for i in run {
                    let label_path: &str = cands.path(i);
                    let Some(parsed) = read_parse(parse_of(i)) else {
                        return Err(Error::Labels(format!(
                            "{label_path}: internal error: a parsed label file does not decode"
                        )));
                    };
                    match parsed {
                        Parsed::NotLabel => {}
                        Parsed::Failed(w) => {
                            warns.push(w.to_string());
                            // The frame a single-frame file would describe, by
                            // name (a multi-frame file's frames are unknown).
                            let frame = if crate::labels::format::only_multi_frame(label_path) {
                                None
                            } else {
                                let dirs = layout.frame_dirs_unknown(label_path);
                                let stem = crate::layout::stem(label_path);
                                layout.frame_path_with(&dirs, stem, probe)?.flatten()
                            };
                            invalid.push((i as u32, frame, w.to_string()));
                        }
                        Parsed::Labels(format, entries) => {
                            let dirs = memo.dirs(&layout, label_path, format);
                            let subset = format_of(format).frames_within_subset();
                            for (at, e) in entries {
                                match resolve_entry(&layout, dirs, subset, &e, probe)? {
                                    Some(f) => out.push((f, i as u32, at)),
                                    None => warns.push(format!(
                                        "{label_path}: frame '{}' is not in this version",
                                        e.frame
                                    )),
                                }
                            }
                        }
                    }
                }
                Ok((out, warns, invalid))
            })
            .collect::<Result<_>>()?;
        let mut warnings = Vec::new();
        let mut warn = |w: String| {
            if warnings.len() < MAX_WARNINGS {
                warnings.push(w);
            }
        };
        let mut contrib: Vec<(u32, u32, usize)> =
            Vec::with_capacity(resolved.iter().map(|(c, _, _)| c.len()).sum());
        let mut invalid = Vec::new();
        for (c, w, bad) in resolved {
            contrib.extend(c);
            w.into_iter().for_each(&mut warn);
            invalid.extend(bad.into_iter().map(|(l, f, w)| codec::Invalid {
                file: cands.path(l as usize).to_string(),
                frame: f.map(|f| files[frames[f as usize] as usize].0.clone()),
                message: w,
            }));
        }
        // By frame, then label file, then position in it: the order a frame's
        // entries were always merged in.
        contrib.par_sort_unstable();
        t.mark("pair");

        // The sidecar's rows, by frame.
        let mut meta: Vec<Option<&EncodedMeta>> = Vec::new();
        if let Some(rows) = &sidecar {
            meta.resize(frames.len(), None);
            let at: Vec<Option<u32>> = rows
                .par_iter()
                .with_min_len(4096)
                .map(|(path, _)| by_path.get(path.as_ref()).copied())
                .collect();
            for ((path, m), at) in rows.iter().zip(at) {
                match at.and_then(|i| meta.get_mut(i as usize)) {
                    Some(slot) => *slot = Some(m),
                    None => warn(format!("{name}: frame '{path}' is not in this version")),
                }
            }
        }

        // The frames, chunk by chunk in parallel.
        let encode_chunk = |ci: usize, chunk: &[u32]| -> (usize, Vec<u8>) {
            let first = ci * codec::CHUNK;
            let lo = contrib.partition_point(|c| (c.0 as usize) < first);
            let hi = contrib.partition_point(|c| (c.0 as usize) < first + chunk.len());
            let mut contrib = contrib.get(lo..hi).unwrap_or(&[]);
            let mut out = Vec::with_capacity(chunk.len() * 256);
            let mut one = Vec::new();
            let mut entries: Vec<(usize, Format, Entry)> = Vec::new();
            for (k, f) in chunk.iter().enumerate() {
                let fi = first + k;
                let n = contrib.iter().take_while(|c| c.0 as usize == fi).count();
                entries.clear();
                for &(_, cand, at) in contrib.get(..n).unwrap_or(&[]) {
                    let bytes = parse_of(cand as usize);
                    // Checked by `read_parse` when the entry was resolved.
                    let format = bytes
                        .get(1)
                        .and_then(|&t| crate::labels::format_from_tag(t));
                    let e = bytes
                        .get(at..)
                        .and_then(|b| read_entry(&mut Reader::new(b)));
                    if let (Some(format), Some(e)) = (format, e) {
                        entries.push((cand as usize, format, e));
                    }
                }
                contrib = contrib.get(n..).unwrap_or(&[]);
                one.clear();
                let (path, st) = &files[*f as usize];
                let f = FrameFile {
                    path,
                    id: st.id,
                    size: st.size,
                };
                frame(
                    &mut one,
                    &f,
                    &entries,
                    meta.get(fi).copied().flatten(),
                    |i| cands.path(i),
                );
                codec::push_frame(&mut out, &one);
            }
            (chunk.len(), out)
        };
        let chunks: Vec<(usize, Vec<u8>)> = match sink {
            // Handed over in order, a few at a time, each dropped once
            // written: never the whole index in memory.
            Some(sink) => {
                let total = frames.len().div_ceil(codec::CHUNK);
                let batch = codec::CHUNK * rayon::current_num_threads().max(1);
                for (bi, part) in frames.chunks(batch).enumerate() {
                    let done: Vec<(usize, Vec<u8>)> = part
                        .par_chunks(codec::CHUNK)
                        .enumerate()
                        .map(|(k, chunk)| encode_chunk(bi * batch / codec::CHUNK + k, chunk))
                        .collect();
                    if !done.iter().all(|(n, bytes)| sink(total, *n, bytes)) {
                        break;
                    }
                }
                Vec::new()
            }
            None => frames
                .par_chunks(codec::CHUNK)
                .enumerate()
                .map(|(ci, chunk)| encode_chunk(ci, chunk))
                .collect(),
        };
        t.mark("frames");
        let has_sidecar = sidecar.is_some();
        Ok(codec::IndexParts {
            tree: [0; 32],
            chunks,
            overlay: None,
            sidecar: has_sidecar.then_some(name),
            warnings,
            attrs: Default::default(),
            invalid,
            bad_boxes: Default::default(),
        })
    });
    t.mark("cache-write-wait");
    drop(blobs);
    std::thread::spawn(move || drop((sources, pack)));
    index
}

/// Encodes one frame from its file, the label entries describing it (with
/// the label file of each) and its sidecar row, merged as a frame record
/// merges them: later entries' dimensions, units and attributes win, the
/// sidecar's attributes win over all, objects in entry order.
pub(super) fn frame<'c>(
    out: &mut Vec<u8>,
    f: &FrameFile,
    entries: &[(usize, Format, Entry)],
    meta: Option<&EncodedMeta>,
    label_path: impl Fn(usize) -> &'c str,
) {
    codec::string(out, f.path);
    out.extend_from_slice(&f.id.0);
    codec::varint(out, f.size);
    let mut width = None;
    let mut height = None;
    let mut units = Units::Pixels;
    for (_, _, e) in entries {
        width = e.width.or(width);
        height = e.height.or(height);
        units = e.units;
    }
    codec::opt_u32(out, width);
    codec::opt_u32(out, height);
    out.push(u8::from(units == Units::Normalized));
    // An empty attribute section is the single byte 0.
    if entries.iter().all(|(_, _, e)| e.attrs == [0]) {
        match meta {
            Some(m) => out.extend_from_slice(m.attrs()),
            None => out.push(0),
        }
    } else {
        let mut merged: BTreeMap<String, AttrValue> = BTreeMap::new();
        for (_, _, e) in entries {
            if let Some(a) = Reader::new(e.attrs).attrs() {
                merged.extend(a);
            }
        }
        if let Some(a) = meta.and_then(|m| Reader::new(m.attrs()).attrs()) {
            merged.extend(a);
        }
        codec::attrs(out, &merged);
    }
    codec::varint(out, entries.iter().map(|(_, _, e)| e.objects).sum());
    for (_, _, e) in entries {
        out.extend_from_slice(e.object_bytes);
    }
    match meta {
        Some(m) => out.extend_from_slice(m.predictions()),
        None => codec::predictions(out, &[]),
    }
    let mut labels: Vec<(&str, Format)> = Vec::new();
    for (cand, format, _) in entries {
        let p = label_path(*cand);
        if !labels.iter().any(|(l, _)| *l == p) {
            labels.push((p, *format));
        }
    }
    codec::varint(out, labels.len() as u64);
    for (l, fmt) in labels {
        codec::string(out, l);
        out.push(codec::format_tag(fmt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{BBox, Object};

    fn entry_blob() -> Vec<u8> {
        let mut frame = FrameLabels {
            frame: "f1".into(),
            width: Some(640),
            height: None,
            units: Units::Normalized,
            attributes: BTreeMap::new(),
            objects: vec![Object::new(
                "car",
                Some(BBox::from_corners(0.1, 0.2, 0.3, 0.4)),
            )],
        };
        frame
            .attributes
            .insert("subset".into(), AttrValue::Str("train".into()));
        let mut parses = Vec::new();
        for p in [
            None,
            Some(Err("labels/b.txt: line 2: bad".to_string())),
            Some(Ok((Format::Yolo, vec![frame.clone(), frame]))),
        ] {
            let mut out = Vec::new();
            encode_parse(&mut out, p);
            parses.push(out);
        }
        let mut blob = Vec::new();
        codec::varint(&mut blob, parses.len() as u64);
        for (i, p) in parses.iter().enumerate() {
            codec::string(&mut blob, &format!("f{i}.txt"));
            blob.extend_from_slice(&[i as u8; 32]);
            blob.extend_from_slice(&[7; 16]);
            codec::varint(&mut blob, p.len() as u64);
            blob.extend_from_slice(p);
        }
        blob
    }

    #[test]
    fn cache_entries_round_trip_and_reject_truncation() {
        let blob = entry_blob();
        assert_eq!(read_cache_entry(&blob), Some(3));
        let known = read_group(&blob).expect("decodes");
        let (_, _, parse) = known["f2.txt"];
        let Some(Parsed::Labels(Format::Yolo, entries)) = read_parse(parse) else {
            panic!("a parse with entries");
        };
        assert_eq!(entries.len(), 2);
        let (_, e) = &entries[1];
        assert_eq!(
            (e.frame, e.width, e.height, e.objects),
            ("f1", Some(640), None, 1)
        );
        assert_eq!(attr_str(e.attrs, "subset"), Some("train"));
        for cut in 0..blob.len() {
            assert_eq!(read_cache_entry(&blob[..cut]), None, "cut at {cut}");
        }
    }

    proptest::proptest! {
        /// A damaged cache entry gives `None` or entries, never a panic.
        #[test]
        fn damaged_cache_entries_never_panic(
            at in 0usize..4096,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut blob = entry_blob();
            let i = at % blob.len();
            blob[i] = byte;
            let _ = read_cache_entry(&blob);
        }

        /// The direct encoding of a plain YOLO file is the general path's,
        /// byte for byte, and it is taken for every plain file.
        #[test]
        fn plain_yolo_files_encode_as_the_parser_reads_them(
            lines in proptest::collection::vec(plain_or_odd_line(), 0..7),
            crlf in proptest::prelude::any::<bool>(),
            list in 0usize..3,
        ) {
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            let names: Option<Vec<String>> = match list {
                0 => None,
                1 => Some(vec!["car".into(), "dog".into()]),
                _ => Some(["car", "dog", "cone", "bus"].map(String::from).to_vec()),
            };
            let ctx = crate::labels::ParseContext {
                class_names: names.clone().map(|n| std::sync::Arc::new(n.into())),
                stem: "f7".into(),
            };
            let parsed = crate::labels::yolo::parse(text.as_bytes(), &ctx);
            let list = names.clone().map(ClassNames::from);
            let yolo = format_of(Format::Yolo);
            let fast = encode_plain_boxes(yolo, list.as_ref(), "labels/d/f7.txt", text.as_bytes());
            let plain = lines.iter().all(|l| l.split_ascii_whitespace().count() != 1
                && !l.contains('x') && !l.contains("-0.3") && l.split_ascii_whitespace().count() <= 6)
                && parsed.is_ok();
            if let Some(fast) = &fast {
                let mut general = Vec::new();
                let frame = parsed.clone().expect("the parser accepts what the fast path took");
                encode_parse(&mut general, Some(Ok((Format::Yolo, vec![frame]))));
                proptest::prop_assert_eq!(fast, &general);
            }
            if plain {
                proptest::prop_assert!(fast.is_some(), "{text:?}");
            }
        }
    }

    #[test]
    fn frame_directories_are_reused_only_where_they_are_the_same() {
        let toml = crate::dsv_toml::DsvToml::parse(
            br#"
[[labels]]
path = "labels/*_l.txt"
format = "yolo"
frames = "left/"

[[labels]]
path = "labels/*_r.txt"
format = "yolo"
frames = "right/"
"#,
        )
        .expect("dsv.toml");
        let layout = Layout::new(toml);
        let mut memo = DirsMemo::default();
        for (path, format) in [
            ("labels/a_l.txt", Format::Yolo),
            ("labels/b_l.txt", Format::Yolo),
            ("labels/c_r.txt", Format::Yolo),
            ("labels/d.txt", Format::Yolo),
            ("other/e.txt", Format::Yolo),
            ("annotations/instances_train.json", Format::Coco),
            ("annotations/instances_val.json", Format::Coco),
        ] {
            assert_eq!(
                memo.dirs(&layout, path, format),
                layout.frame_dirs(path, format),
                "{path}"
            );
        }
    }

    #[test]
    fn label_files_encoded_frame_by_frame_encode_as_their_whole_parse() {
        struct NoFiles;
        impl FileSource for NoFiles {
            fn read(&self, _: &str) -> Result<Option<Vec<u8>>> {
                Ok(None)
            }
            fn exists(&self, _: &str) -> Result<bool> {
                Ok(false)
            }
        }
        let layout = Layout::new(crate::dsv_toml::DsvToml::default());
        let cvat = br#"<annotations><image id="0" name="a.jpg" width="9" height="9"><box label="car" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2"/><tag label="night"/></image><image id="1" name="b.jpg" width="9" height="9"/></annotations>"#;
        let tracks = br#"<annotations><image id="0" name="a.jpg" width="9" height="9"/><track id="3" label="dog"><box frame="0" outside="0" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2"/></track></annotations>"#;
        let many: Vec<u8> = {
            let mut x = b"<annotations>".to_vec();
            for i in 0..200 {
                x.extend(format!(r#"<image id="{i}" name="f{i}.jpg" width="9" height="9"><box label="c{}" occluded="1" xtl="1" ytl="1" xbr="2" ybr="2"/></image>"#, i % 3).bytes());
            }
            x.extend(b"</annotations>");
            x
        };
        let broken = &cvat[..cvat.len() - 3];
        let coco = br#"{"images":[{"id":1,"file_name":"a.jpg","width":9,"height":9}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,1,2,2]}],"categories":[{"id":1,"name":"car"}]}"#;
        for (path, format, bytes) in [
            ("a.xml", Format::Cvat, &cvat[..]),
            ("a.xml", Format::Cvat, &tracks[..]),
            ("a.xml", Format::Cvat, &many[..]),
            ("a.xml", Format::Cvat, broken),
            ("a.json", Format::Coco, &coco[..]),
        ] {
            let got =
                encode_label_file(&layout, &NoFiles, path, format, bytes.into()).expect("encodes");
            // Owned bytes (a large file read whole), which hold the encoding
            // once parsed where a format does not stream: the same encoding.
            let owned = encode_label_file(&layout, &NoFiles, path, format, bytes.to_vec().into())
                .expect("encodes");
            assert_eq!(owned, got, "{}", String::from_utf8_lossy(bytes));
            let whole = match layout.parse(&NoFiles, path, format, bytes).expect("reads") {
                Ok(frames) => Ok((format, frames)),
                Err((file, e)) => Err(format!("{file}: {e}")),
            };
            let mut expected = Vec::new();
            encode_parse(&mut expected, Some(whole));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_plain_yolo_file_takes_the_direct_encoding() {
        let names = ["car".to_string(), "dog".to_string()];
        let text = b"1 0.5 0.5 0.2 0.1\n0 0.25 0.5 0.1 0.1 0.75\n";
        let list = ClassNames::from(names.to_vec());
        let yolo = format_of(Format::Yolo);
        let fast = encode_plain_boxes(yolo, Some(&list), "labels/f.txt", text).expect("direct");
        let mut general = Vec::new();
        let ctx = crate::labels::ParseContext {
            class_names: Some(std::sync::Arc::new(names.to_vec().into())),
            stem: "f".into(),
        };
        let frame = crate::labels::yolo::parse(text, &ctx).expect("parses");
        assert_eq!(frame.objects.len(), 2);
        encode_parse(&mut general, Some(Ok((Format::Yolo, vec![frame]))));
        assert_eq!(fast, general);
        // A polygon line goes the general way.
        let poly = b"0 0.1 0.1 0.2 0.1 0.2 0.2\n";
        assert!(encode_plain_boxes(yolo, Some(&list), "labels/f.txt", poly).is_none());
        // As does a pose dataset's file, and any file of a format without the fast path.
        let pose = ClassNames {
            kpt_shape: Some(crate::labels::KptShape { points: 1, dims: 2 }),
            ..list.clone()
        };
        assert!(encode_plain_boxes(yolo, Some(&pose), "labels/f.txt", text).is_none());
        let kitti = format_of(Format::Kitti);
        assert!(encode_plain_boxes(kitti, Some(&list), "labels/f.txt", text).is_none());
    }

    proptest::proptest! {
        #[test]
        fn box_objects_encode_as_objects(
            x in -1e6f64..1e6, w in 0f64..1e3, score in proptest::option::of(0f64..1.0),
        ) {
            let b = BBox::from_center(x, x / 3.0, w, w * 2.0);
            let mut o = Object::new("cone", Some(b));
            if let Some(s) = score {
                o.attributes.insert("score".into(), AttrValue::Float(s));
            }
            let (mut a, mut direct) = (Vec::new(), Vec::new());
            codec::object(&mut a, &o);
            codec::box_object(&mut direct, "cone", &b, score);
            proptest::prop_assert_eq!(a, direct);
        }
    }

    /// A YOLO line: mostly boxes (with or without a score, odd spacing), some
    /// polygons, bad numbers, negative sizes and classes past the names.
    fn plain_or_odd_line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let num = prop_oneof![
            30 => "0\\.[0-9]{1,6}",
            1 => Just("1".to_string()),
            1 => Just("1e-3".to_string()),
            1 => Just("x".to_string()),
            1 => Just("-0.3".to_string()),
        ];
        (
            "[0-5]",
            prop_oneof![
                6 => proptest::collection::vec(num.clone(), 4..6),
                1 => proptest::collection::vec(num, 0..8),
            ],
            prop_oneof![Just(" "), Just("\t"), Just("  ")],
        )
            .prop_map(|(class, nums, sep)| {
                let mut l = class;
                for n in nums {
                    l.push_str(sep);
                    l.push_str(&n);
                }
                l
            })
    }
}
