//! Dataset statistics: frames, objects, per-class and per-attribute counts.
//!
//! Statistics add up over a tree, so they are computed per directory (and per
//! shard of a large directory) and cached by the content id of that subtree:
//! asking again for the same commit is one cache lookup, and a new commit
//! recomputes only the subtrees that changed. Inside a changed directory, each
//! label file's counts are found by its name and content id in what the cache
//! kept for that directory, so an unchanged label file is never parsed twice.
//! The cache (`.dsv/cache/labels.redb`) holds only
//! derived data: deleting it loses nothing, and when another process has it
//! open dsv computes without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use redb::TableDefinition;

use crate::db::CacheDb;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::labels::format::names_files;
use crate::labels::{ClassNames, FileTally, FrameLabels, LabelFormat, attr_bucket, format_of};
use crate::layout::{Layout, Role, stem};
use crate::object::EntryMode;
use crate::object::tree::TreeObjectRef;
use crate::store::ObjectStore;
use crate::worktree::sources::TreeSource;

mod delta;

/// Version of the cached encoding; part of every cache key.
const CACHE_VERSION: &[u8] = b"dsv-stats-7";
const SUBTREES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("subtrees");
/// Per directory: each label file's name, content id and counts (see [`FileCounts`]).
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
    /// Label entries naming a frame that is not in the version (counted only where
    /// frames are paired with their entries, see `query::stats`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entries_without_frame: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
        self.entries_without_frame += o.entries_without_frame;
        for e in &o.errors {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(e.clone());
            }
        }
    }

    /// Adds the counts of one label file that parsed, in either form.
    fn add_parsed<'s, C, A>(&mut self, v: ParsedView<C, A>)
    where
        C: Iterator<Item = (&'s str, u64)>,
        A: Iterator<Item = (&'s str, &'s str, u64)>,
    {
        self.label_files += 1;
        self.labelled_frames += v.labelled;
        self.empty_label_frames += v.empty;
        self.objects += v.objects;
        for (k, n) in v.classes {
            // Look up before inserting: cloning the name for every file would
            // cost more than counting it.
            match self.classes.get_mut(k) {
                Some(c) => *c += n,
                None => {
                    self.classes.insert(k.to_owned(), n);
                }
            }
        }
        let [over_objects, over_frames] = v.attributes;
        for (map, list) in [
            (&mut self.attributes, over_objects),
            (&mut self.frame_attributes, over_frames),
        ] {
            for (k, val, n) in list {
                let values = match map.get_mut(k) {
                    Some(m) => m,
                    None => map.entry(k.to_owned()).or_default(),
                };
                match values.get_mut(val) {
                    Some(x) => *x += n,
                    None => {
                        values.insert(val.to_owned(), n);
                    }
                }
            }
        }
    }

    /// Adds the counts of one label file found at `path()`.
    fn add_counts(&mut self, c: &FileCounts, path: impl FnOnce() -> String) {
        match c.kind {
            FileKind::NotLabels => {}
            FileKind::Error => {
                self.label_errors += 1;
                if self.errors.len() < MAX_ERRORS {
                    self.errors.push(format!("{}: {}", path(), c.error));
                }
            }
            FileKind::Parsed => self.add_parsed(c.view()),
        }
    }
}

/// What a candidate label file turned out to be.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum FileKind {
    /// Not a label file after all (its content says otherwise).
    #[default]
    NotLabels,
    /// A label file that parsed.
    Parsed,
    /// A label file that did not parse.
    Error,
}

/// What one label file adds to its directory's [`Stats`]. Kept per directory
/// with the file's name and content id, so a new version of the directory
/// parses only the files whose content changed.
#[derive(Debug, Clone, Default, PartialEq)]
struct FileCounts {
    kind: FileKind,
    /// The parse error ("line N: message") when `kind` is `Error`.
    error: String,
    labelled: u64,
    empty: u64,
    objects: u64,
    classes: Vec<(String, u64)>,
    /// (attribute, value bucket, count) over objects.
    attributes: Vec<(String, String, u64)>,
    /// (attribute, value bucket, count) over frames.
    frame_attributes: Vec<(String, String, u64)>,
}

fn bump(list: &mut Vec<(String, u64)>, k: String) {
    match list.iter_mut().find(|e| e.0 == k) {
        Some(e) => e.1 += 1,
        None => list.push((k, 1)),
    }
}

fn bump2(list: &mut Vec<(String, String, u64)>, k: String, v: String) {
    match list.iter_mut().find(|e| e.0 == k && e.1 == v) {
        Some(e) => e.2 += 1,
        None => list.push((k, v, 1)),
    }
}

impl FileCounts {
    /// Counts parsed frames, taking their strings rather than copying them.
    fn of_frames(frames: Vec<FrameLabels>) -> FileCounts {
        let mut c = FileCounts {
            kind: FileKind::Parsed,
            ..FileCounts::default()
        };
        for f in frames {
            c.add_frame(f);
        }
        c
    }

    /// The counts of a multi-frame file from its format's counting pass
    /// ([`LabelFormat::count`]): what [`FileCounts::of_frames`] gives of
    /// the frames its parser builds.
    fn of_tally(objects: u64, classes: Vec<(usize, u64)>, tally: FileTally) -> FileCounts {
        let mut c = FileCounts {
            kind: FileKind::Parsed,
            labelled: tally.labelled,
            empty: tally.empty,
            objects,
            attributes: tally.attributes,
            frame_attributes: tally.frame_attributes,
            ..FileCounts::default()
        };
        c.classes.reserve(classes.len());
        for (index, n) in classes {
            let name = tally.names.get(index).cloned().unwrap_or_default();
            // Two categories may share a name; the parse counts them as one class.
            match c.classes.iter_mut().find(|e| e.0 == name) {
                Some(e) => e.1 += n,
                None => c.classes.push((name, n)),
            }
        }
        c
    }

    /// Adds one parsed frame, taking its strings rather than copying them.
    fn add_frame(&mut self, f: FrameLabels) {
        if f.objects.is_empty() {
            self.empty += 1;
        } else {
            self.labelled += 1;
        }
        for (k, v) in f.attributes {
            bump2(&mut self.frame_attributes, k, attr_bucket(&v));
        }
        for o in f.objects {
            self.objects += 1;
            bump(&mut self.classes, o.class);
            for (k, v) in o.attributes {
                bump2(&mut self.attributes, k, attr_bucket(&v));
            }
        }
    }
}

/// Phase 2's counts of one label file. A file a format's counting pass
/// vouches for ([`LabelFormat::count`]: YOLO's, the bulk of a large
/// dataset) stays inline as class indices into its scope's names: a
/// million of them then allocate nothing and move as small values.
#[derive(Debug, Clone)]
enum Counted {
    Indexed(IndexedCounts),
    Full(Box<FileCounts>),
}

/// Classes a [`IndexedCounts`] holds inline.
const INLINE_CLASSES: usize = 6;

/// A file of a format that stores class indices that parsed, with at most
/// [`INLINE_CLASSES`] classes, each a distinct name of the names list in effect.
#[derive(Debug, Clone, Copy)]
struct IndexedCounts {
    objects: u32,
    scored: u32,
    len: u8,
    /// (index into the names, objects).
    classes: [(u16, u16); INLINE_CLASSES],
}

/// A parsed label file's counts as totals and the cache read them,
/// borrowed from either form, so both are added up and encoded by one path.
struct ParsedView<C, A> {
    labelled: u64,
    empty: u64,
    objects: u64,
    /// (class, objects).
    classes: C,
    /// (attribute, value bucket, count), over objects, then over frames.
    attributes: [A; 2],
}

/// The attribute list of an inline file: `score` or nothing.
type MaybeTriple<'n> = std::option::IntoIter<(&'n str, &'n str, u64)>;

/// An attribute triple borrowed from its owned form.
fn triple(e: &(String, String, u64)) -> (&str, &str, u64) {
    (&e.0, &e.1, e.2)
}

impl FileCounts {
    fn view(
        &self,
    ) -> ParsedView<
        impl Iterator<Item = (&str, u64)> + Clone,
        impl Iterator<Item = (&str, &str, u64)> + Clone,
    > {
        ParsedView {
            labelled: self.labelled,
            empty: self.empty,
            objects: self.objects,
            classes: self.classes.iter().map(|(k, n)| (k.as_str(), *n)),
            attributes: [
                self.attributes.iter().map(triple),
                self.frame_attributes.iter().map(triple),
            ],
        }
    }
}

impl IndexedCounts {
    /// The counts with class names from `names` (the list they were made with).
    fn view<'n>(
        &self,
        names: &'n [String],
    ) -> ParsedView<impl Iterator<Item = (&'n str, u64)> + Clone + use<'n>, MaybeTriple<'n>> {
        let list = self.classes;
        let objects = u64::from(self.objects);
        let score = (self.scored > 0).then_some(("score", "number", u64::from(self.scored)));
        ParsedView {
            labelled: u64::from(objects > 0),
            empty: u64::from(objects == 0),
            objects,
            classes: (0..usize::from(self.len)).filter_map(move |k| {
                let (i, n) = list.get(k)?;
                Some((names.get(usize::from(*i))?.as_str(), u64::from(*n)))
            }),
            attributes: [score.into_iter(), None.into_iter()],
        }
    }
}

impl Counted {
    /// The counts in full (tests compare them with the parser's).
    #[cfg(test)]
    fn to_full(&self, names: Option<&Arc<ClassNames>>) -> FileCounts {
        match self {
            Counted::Full(c) => (**c).clone(),
            Counted::Indexed(y) => {
                let v = y.view(names.map_or(&[][..], |n| n.as_slice()));
                let owned =
                    |l: MaybeTriple| l.map(|(k, v, n)| (k.to_owned(), v.to_owned(), n)).collect();
                let [attributes, frame_attributes] = v.attributes;
                FileCounts {
                    kind: FileKind::Parsed,
                    error: String::new(),
                    labelled: v.labelled,
                    empty: v.empty,
                    objects: v.objects,
                    classes: v.classes.map(|(k, n)| (k.to_owned(), n)).collect(),
                    attributes: owned(attributes),
                    frame_attributes: owned(frame_attributes),
                }
            }
        }
    }
}

/// The inline form of a counting pass's result, when it fits.
fn inline_counts(y: &crate::labels::Counts, names: &[String]) -> Option<IndexedCounts> {
    if y.classes.len() > INLINE_CLASSES {
        return None;
    }
    let mut out = IndexedCounts {
        objects: u32::try_from(y.objects).ok()?,
        scored: u32::try_from(y.scored).ok()?,
        len: 0,
        classes: [(0, 0); INLINE_CLASSES],
    };
    for (k, &(index, n)) in y.classes.iter().enumerate() {
        let name = names.get(index)?;
        // Two indices sharing a name count as one class: left to the full form.
        if y.classes[..k]
            .iter()
            .any(|&(j, _)| names.get(j) == Some(name))
        {
            return None;
        }
        *out.classes.get_mut(k)? = (u16::try_from(index).ok()?, u16::try_from(n).ok()?);
        out.len += 1;
    }
    Some(out)
}

/// The counts of one label file of a format that stores class indices: from
/// its counting pass when that vouches for the file, else from the full
/// parser (which also gives the exact error).
fn indexed_counted(
    format: &dyn LabelFormat,
    bytes: &[u8],
    path: &str,
    names: Option<&Arc<ClassNames>>,
) -> Counted {
    let counts = format.count(bytes, names.map(|n| &**n));
    if let (Some(n), Some(y)) = (names, &counts)
        && let Some(inline) = inline_counts(y, n.as_slice())
    {
        return Counted::Indexed(inline);
    }
    Counted::Full(Box::new(indexed_file_counts(
        format, bytes, path, names, counts,
    )))
}

/// [`indexed_counted`] in full, given the counting pass's result.
fn indexed_file_counts(
    format: &dyn LabelFormat,
    bytes: &[u8],
    path: &str,
    names: Option<&Arc<ClassNames>>,
    counts: Option<crate::labels::Counts>,
) -> FileCounts {
    let list = names.map(|n| n.as_slice());
    if let Some(y) = counts {
        let mut c = FileCounts {
            kind: FileKind::Parsed,
            objects: y.objects,
            ..FileCounts::default()
        };
        if y.objects == 0 {
            c.empty = 1;
        } else {
            c.labelled = 1;
        }
        c.classes.reserve(y.classes.len());
        for (index, n) in y.classes {
            let name = match list.and_then(|l| l.get(index)) {
                Some(name) => name.clone(),
                None => index.to_string(),
            };
            // Two indices may share a name; the full parse counts them as one class.
            match c.classes.iter_mut().find(|e| e.0 == name) {
                Some(e) => e.1 += n,
                None => c.classes.push((name, n)),
            }
        }
        if y.scored > 0 {
            c.attributes
                .push(("score".to_owned(), "number".to_owned(), y.scored));
        }
        return c;
    }
    let ctx = crate::labels::ParseContext {
        class_names: names.cloned(),
        stem: stem(path).to_string(),
    };
    match format.parse(bytes, &ctx) {
        Ok(frames) => FileCounts::of_frames(frames),
        Err(e) => FileCounts {
            kind: FileKind::Error,
            error: e.to_string(),
            ..FileCounts::default()
        },
    }
}

/// Strings of one encoded directory, each stored once.
#[derive(Default)]
struct Interner<'a> {
    // Fx: the keys are short names from the repository's own trees, hashed a
    // few million times per cold run, where SipHash's flooding resistance
    // costs more than it buys.
    index: rustc_hash::FxHashMap<&'a str, u64>,
    strings: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn put(&mut self, s: &'a str, body: &mut Vec<u8>) {
        let next = self.strings.len() as u64;
        let i = *self.index.entry(s).or_insert(next);
        if i == next {
            self.strings.push(s);
        }
        crate::codec::varint(body, i);
    }
}

const FILES_MAGIC: &[u8; 8] = b"DSVSF2\0\0";

/// Appends a parsed file's counts: labelled, empty and objects, then
/// (class, count) pairs and (attribute, value, count) triples over objects
/// and over frames, each list prefixed by its length.
fn encode_parsed<'a, C, A>(body: &mut Vec<u8>, strings: &mut Interner<'a>, v: ParsedView<C, A>)
where
    C: Iterator<Item = (&'a str, u64)> + Clone,
    A: Iterator<Item = (&'a str, &'a str, u64)> + Clone,
{
    use crate::codec::varint;
    for n in [v.labelled, v.empty, v.objects] {
        varint(body, n);
    }
    varint(body, v.classes.clone().count() as u64);
    for (k, n) in v.classes {
        strings.put(k, body);
        varint(body, n);
    }
    for list in v.attributes {
        varint(body, list.clone().count() as u64);
        for (k, val, n) in list {
            strings.put(k, body);
            strings.put(val, body);
            varint(body, n);
        }
    }
}

/// Encodes a directory's per-file counts: a string table (class and
/// attribute names, which repeat), then per file its name (written out: file
/// names do not repeat), the first 16 bytes of its content id and its counts.
fn encode_files<'a>(
    files: &[(&'a str, &'a ObjectId, Option<&'a Counted>)],
    names: &'a [String],
) -> Vec<u8> {
    use crate::codec::{string, varint};
    let mut strings = Interner::default();
    let mut body = Vec::with_capacity(files.len() * 40);
    varint(&mut body, files.len() as u64);
    let none = FileCounts::default();
    for &(name, id, c) in files {
        string(&mut body, name);
        body.extend_from_slice(&id.0[..16]);
        let c: &FileCounts = match c {
            None => &none,
            Some(Counted::Full(c)) => c,
            Some(Counted::Indexed(y)) => {
                body.push(1);
                encode_parsed(&mut body, &mut strings, y.view(names));
                continue;
            }
        };
        match c.kind {
            FileKind::NotLabels => body.push(0),
            FileKind::Error => {
                body.push(2);
                string(&mut body, &c.error);
            }
            FileKind::Parsed => {
                body.push(1);
                encode_parsed(&mut body, &mut strings, c.view());
            }
        }
    }
    let mut out = Vec::with_capacity(body.len() + 16 * strings.strings.len() + 16);
    out.extend_from_slice(FILES_MAGIC);
    varint(&mut out, strings.strings.len() as u64);
    for s in &strings.strings {
        string(&mut out, s);
    }
    out.extend_from_slice(&body);
    out
}

/// Per-file counts of a directory by file name, with the id prefix they were
/// computed for; `None` when the bytes are not a well-formed encoding.
type KnownFiles = std::collections::HashMap<String, ([u8; 16], FileCounts)>;

fn decode_files(b: &[u8]) -> Option<KnownFiles> {
    let mut r = crate::codec::Reader::new(b);
    if r.take(8)? != FILES_MAGIC {
        return None;
    }
    let n = r.count()?;
    let mut strings = Vec::with_capacity(n);
    for _ in 0..n {
        strings.push(r.string()?);
    }
    let s = |r: &mut crate::codec::Reader| -> Option<String> {
        strings.get(usize::try_from(r.varint()?).ok()?).cloned()
    };
    let files = r.count()?;
    let mut out = KnownFiles::with_capacity(files);
    for _ in 0..files {
        let name = r.string()?;
        let id: [u8; 16] = r.take(16)?.try_into().ok()?;
        let mut c = FileCounts::default();
        match r.u8()? {
            0 => {}
            2 => {
                c.kind = FileKind::Error;
                c.error = r.string()?;
            }
            1 => {
                c.kind = FileKind::Parsed;
                c.labelled = r.varint()?;
                c.empty = r.varint()?;
                c.objects = r.varint()?;
                for _ in 0..r.count()? {
                    let k = s(&mut r)?;
                    c.classes.push((k, r.varint()?));
                }
                for list in [&mut c.attributes, &mut c.frame_attributes] {
                    for _ in 0..r.count()? {
                        let k = s(&mut r)?;
                        let v = s(&mut r)?;
                        list.push((k, v, r.varint()?));
                    }
                }
            }
            _ => return None,
        }
        out.insert(name, (id, c));
    }
    r.done().then_some(out)
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
    /// Frames per frame attribute and value: (before, after, after - before),
    /// every value either side has. The deltas equal the per-value totals of
    /// `dsv diff` between the same versions.
    pub frame_attributes: BTreeMap<String, BTreeMap<String, (u64, u64, i64)>>,
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
        let mut frame_attributes: BTreeMap<String, BTreeMap<String, (u64, u64, i64)>> =
            BTreeMap::new();
        let count = |s: &Stats, k: &str, v: &str| {
            s.frame_attributes
                .get(k)
                .and_then(|m| m.get(v))
                .copied()
                .unwrap_or(0)
        };
        for (k, vals) in before
            .frame_attributes
            .iter()
            .chain(&after.frame_attributes)
        {
            for v in vals.keys() {
                let (b, a) = (count(&before, k, v), count(&after, k, v));
                frame_attributes
                    .entry(k.clone())
                    .or_default()
                    .insert(v.clone(), (b, a, a as i64 - b as i64));
            }
        }
        StatsDelta {
            before,
            after,
            classes,
            frame_attributes,
        }
    }
}

/// The statistics cache (`.dsv/cache/labels.redb`).
pub struct StatsCache {
    db: CacheDb,
}

impl StatsCache {
    /// Opens (creating) the cache; never fails (see [`CacheDb`]).
    pub fn open(dsv_dir: &Path) -> StatsCache {
        StatsCache {
            db: CacheDb::open(dsv_dir, "labels.redb"),
        }
    }

    /// A cache that stores nothing.
    pub fn disabled() -> StatsCache {
        StatsCache {
            db: CacheDb::disabled(),
        }
    }

    fn get(&self, key: &[u8; 32]) -> Option<Stats> {
        self.db
            .with_value(SUBTREES, key, |b| serde_json::from_slice(b).ok())
            .flatten()
    }

    fn get_files(&self, key: &[u8; 32]) -> Option<KnownFiles> {
        self.db.with_value(FILES, key, decode_files).flatten()
    }

    /// The final statistics of a version whose frame figures came from pairing
    /// label entries with frames (see `query::stats`), kept by its tree id: the
    /// tree holds everything they depend on (frames, label files, `dsv.toml`, the
    /// sidecar), and the pairing's rules are versioned with [`CACHE_VERSION`].
    pub fn get_paired(&self, tree: &ObjectId) -> Option<Stats> {
        self.get(&paired_key(tree))
    }

    /// Keeps what [`StatsCache::get_paired`] returns.
    pub fn put_paired(&self, tree: &ObjectId, s: &Stats) {
        self.put(&[(paired_key(tree), s.clone())], &[]);
    }

    fn put(&self, subtrees: &[([u8; 32], Stats)], files: &[([u8; 32], Vec<u8>)]) {
        self.db.write(|tx| {
            let mut t = tx.open_table(SUBTREES)?;
            for (k, s) in subtrees {
                t.insert(k, serde_json::to_vec(s)?.as_slice())?;
            }
            let mut t = tx.open_table(FILES)?;
            for (k, b) in files {
                t.insert(k, b.as_slice())?;
            }
            Ok(())
        });
    }
}

/// Rules that apply at a directory: the layout plus the class names
/// inherited from the nearest names file above.
struct Scope {
    names: Option<Arc<ClassNames>>,
    digest: [u8; 32],
    /// The names file that does not parse here, with its error (as
    /// "FILE: error"): every file below of a format that uses class names
    /// fails with it, as in a full parse.
    error: Option<Arc<String>>,
}

impl Scope {
    /// The scope a names file `n` in directory `path` sets, from its content.
    fn of_names_file(path: &str, n: &str, id: &ObjectId, bytes: &[u8]) -> Scope {
        match crate::labels::parse_class_names(n, bytes) {
            Ok(names) => Scope {
                names: Some(Arc::new(names)),
                digest: id.0,
                error: None,
            },
            Err(err) => {
                let file = if path.is_empty() {
                    n.to_string()
                } else {
                    format!("{path}/{n}")
                };
                Scope {
                    names: None,
                    digest: id.0,
                    error: Some(Arc::new(format!("{file}: {err}"))),
                }
            }
        }
    }
}

fn key(parts: &[&[u8]]) -> [u8; 32] {
    crate::db::cache_key(CACHE_VERSION, parts)
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
    /// The directory's path ("" at the root).
    path: String,
    /// The rules in effect for its files.
    scope: Arc<Scope>,
    /// The names of `files`, one after the other: one allocation per directory
    /// rather than one per file.
    names: String,
    /// Label-file candidates: content id and where its name lies in `names`.
    files: Vec<(ObjectId, u32, u32)>,
    /// Counts already known for each of `files` (same name and content as when
    /// the cache last saw this directory).
    known: Vec<Option<Counted>>,
    /// Cache key of this directory's per-file counts.
    files_key: [u8; 32],
    children: Vec<Node>,
}

impl Node {
    /// The name of file `i`.
    fn name(&self, i: usize) -> &str {
        self.files
            .get(i)
            .and_then(|&(_, start, end)| self.names.get(start as usize..end as usize))
            .unwrap_or("")
    }

    /// The repository path of file `i`.
    fn file_path(&self, i: usize) -> String {
        let name = self.name(i);
        if self.path.is_empty() {
            return name.to_owned();
        }
        let mut p = String::with_capacity(self.path.len() + 1 + name.len());
        p.push_str(&self.path);
        p.push('/');
        p.push_str(name);
        p
    }
}

impl Walk<'_> {
    /// Phase 1: the directory objects below `id` that the cache does not answer,
    /// with their candidate label files (nothing is read but trees).
    fn collect(&self, id: &ObjectId, path: &str, scope: &Arc<Scope>, shard: bool) -> Result<Node> {
        let k = key(&[
            &id.0,
            path.as_bytes(),
            &scope.digest,
            &self.layout.toml.digest,
        ]);
        let mut node = Node {
            key: k,
            cached: self.cache.get(&k),
            frames: 0,
            path: path.to_owned(),
            scope: scope.clone(),
            names: String::new(),
            files: Vec::new(),
            known: Vec::new(),
            files_key: [0; 32],
            children: Vec::new(),
        };
        if node.cached.is_some() {
            return Ok(node);
        }
        let bytes = self.store.get(id)?;
        match TreeObjectRef::decode(&bytes)
            .map_err(|reason| Error::CorruptObject { id: *id, reason })?
        {
            TreeObjectRef::Shards(shards) => {
                node.children = shards
                    .par_iter()
                    .map(|s| self.collect(&s.id, path, scope, true))
                    .collect::<Result<Vec<Node>>>()?;
            }
            TreeObjectRef::Entries(entries) => {
                // A names file here applies to this directory and everything below it.
                for n in names_files() {
                    if let Ok(i) = entries.binary_search_by(|e| e.name.cmp(n.as_bytes())) {
                        let e = &entries[i];
                        let bytes = self.store.get(&e.id)?;
                        node.scope = Arc::new(Scope::of_names_file(path, n, &e.id, &bytes));
                        break;
                    }
                }
                let mut dirs = Vec::new();
                // One buffer for every path: most entries are frames, only counted.
                let mut p = String::with_capacity(path.len() + 64);
                for e in &entries {
                    p.clear();
                    if !path.is_empty() {
                        p.push_str(path);
                        p.push('/');
                    }
                    let name_at = p.len();
                    p.push_str(&String::from_utf8_lossy(e.name));
                    match e.mode {
                        EntryMode::Dir => {
                            crate::object::tree::check_dir_depth(p.as_bytes())?;
                            dirs.push((e.id, p.clone()));
                        }
                        m if m.is_blob() => match self.layout.role_by_path(&p) {
                            Some(Role::Frame) => node.frames += 1,
                            Some(Role::Other) => {}
                            _ => {
                                let start = node.names.len();
                                node.names.push_str(&p[name_at..]);
                                let (Ok(start), Ok(end)) =
                                    (u32::try_from(start), u32::try_from(node.names.len()))
                                else {
                                    return Err(Error::CorruptObject {
                                        id: *id,
                                        reason: "names of a directory exceed 4 GiB".into(),
                                    });
                                };
                                node.files.push((e.id, start, end));
                            }
                        },
                        _ => {}
                    }
                }
                let scope = node.scope.clone();
                node.children = dirs
                    .par_iter()
                    .map(|(id, p)| self.collect(id, p, &scope, false))
                    .collect::<Result<Vec<Node>>>()?;
                if !node.files.is_empty() {
                    // Shards of one directory share its path: the first name tells
                    // them apart (shard bounds move little between versions).
                    let first = match (shard, entries.first()) {
                        (true, Some(e)) => e.name,
                        _ => b"",
                    };
                    node.files_key = key(&[
                        b"files",
                        path.as_bytes(),
                        first,
                        &scope.digest,
                        &self.layout.toml.digest,
                    ]);
                    // Nothing kept (a first run): skip hashing a million names
                    // into an empty map.
                    let mut old = self.cache.get_files(&node.files_key).unwrap_or_default();
                    node.known = if old.is_empty() {
                        Vec::new()
                    } else {
                        (0..node.files.len())
                            .map(|i| {
                                old.remove(node.name(i))
                                    .filter(|(prefix, _)| prefix[..] == node.files[i].0.0[..16])
                                    .map(|(_, c)| Counted::Full(Box::new(c)))
                            })
                            .collect()
                    };
                }
            }
        }
        Ok(node)
    }

    /// Phase 3: sums the per-file counts (from the cache or phase 2) of a node;
    /// records every computed subtree and directory for the cache.
    fn total(&self, node: &mut Node, out: &Computed) -> Result<Stats> {
        if let Some(s) = &node.cached {
            return Ok(s.clone());
        }
        let counts: Vec<Option<Counted>> = std::mem::take(&mut node.known);
        let names = node.scope.names.as_ref().map_or(&[][..], |n| n.as_slice());
        let mut total = Stats {
            frames: node.frames,
            ..Stats::default()
        };
        for (i, c) in counts.iter().enumerate() {
            match c {
                Some(Counted::Full(c)) => total.add_counts(c, || node.file_path(i)),
                Some(Counted::Indexed(y)) => total.add_parsed(y.view(names)),
                None => {}
            }
        }
        if !counts.is_empty() {
            let list: Vec<(&str, &ObjectId, Option<&Counted>)> = node
                .files
                .iter()
                .zip(&counts)
                .enumerate()
                .map(|(i, ((id, _, _), c))| (node.name(i), id, c.as_ref()))
                .collect();
            let blob = encode_files(&list, names);
            if let Ok(mut v) = out.files.lock() {
                v.push((node.files_key, blob));
            }
        }
        let subs = node
            .children
            .par_iter_mut()
            .map(|c| self.total(c, out))
            .collect::<Result<Vec<Stats>>>()?;
        for s in &subs {
            total.add(s);
        }
        if let Ok(mut v) = out.subtrees.lock() {
            v.push((node.key, total.clone()));
        }
        Ok(total)
    }

    fn file_counts(&self, bytes: &[u8], path: &str, scope: &Scope) -> Result<Option<Counted>> {
        // Phase 1 kept only files whose path gave no role or a label rule's.
        let role = match self.layout.toml.rule_for(path) {
            Some(rule) => Role::Label(rule.format),
            None => self.layout.role_by_content(path, bytes),
        };
        let Role::Label(format) = role else {
            return Ok(None);
        };
        let imp = format_of(format);
        if imp.uses_class_names()
            && self
                .layout
                .toml
                .rule_for(path)
                .and_then(|r| r.names.as_ref())
                .is_none()
        {
            if let Some(error) = &scope.error {
                return Ok(Some(Counted::Full(Box::new(FileCounts {
                    kind: FileKind::Error,
                    error: error.to_string(),
                    ..FileCounts::default()
                }))));
            }
            return Ok(Some(indexed_counted(
                imp,
                bytes,
                path,
                scope.names.as_ref(),
            )));
        }
        // A multi-frame file its format's counting pass takes (COCO's) is
        // counted without building a frame or an object.
        if !imp.uses_class_names()
            && let Some(counts) = imp.count(bytes, None)
            && let Some(tally) = counts.frames
        {
            let full = FileCounts::of_tally(counts.objects, counts.classes, *tally);
            return Ok(Some(Counted::Full(Box::new(full))));
        }
        // Frame by frame: a multi-frame file is counted without holding
        // all its objects at once.
        let mut counts = FileCounts {
            kind: FileKind::Parsed,
            ..FileCounts::default()
        };
        let parsed = self
            .layout
            .parse_each(self.src, path, format, bytes, &mut |f| counts.add_frame(f))?;
        let full = match parsed {
            Ok(()) => counts,
            Err((file, e)) => FileCounts {
                kind: FileKind::Error,
                // The error names the file that failed, which may be another one
                // (a names file the label file needs).
                error: if file == path {
                    e.to_string()
                } else {
                    format!("{file}: {e}")
                },
                ..FileCounts::default()
            },
        };
        Ok(Some(Counted::Full(Box::new(full))))
    }
}

/// What phase 3 computed, for the cache.
#[derive(Default)]
struct Computed {
    subtrees: std::sync::Mutex<Vec<([u8; 32], Stats)>>,
    files: std::sync::Mutex<Vec<([u8; 32], Vec<u8>)>>,
}

/// How many files [`number_files`] will list.
fn count_files(node: &Node) -> usize {
    if node.cached.is_some() {
        return 0;
    }
    let known = node.known.iter().filter(|k| k.is_some()).count();
    node.files.len() - known + node.children.iter().map(count_files).sum::<usize>()
}

/// Lists the files phase 2 must read (those without known counts), in tree
/// order, with the directory and index of each.
fn number_files<'n>(node: &'n Node, ids: &mut Vec<ObjectId>, jobs: &mut Vec<(&'n Node, usize)>) {
    if node.cached.is_some() {
        return;
    }
    for (i, (id, _, _)) in node.files.iter().enumerate() {
        if node.known.get(i).is_none_or(Option::is_none) {
            ids.push(*id);
            jobs.push((node, i));
        }
    }
    for c in &node.children {
        number_files(c, ids, jobs);
    }
}

/// Hands the counts read in phase 2 back to their nodes, in the order
/// [`number_files`] listed them.
fn fill_known(node: &mut Node, counts: &mut std::vec::IntoIter<Option<Counted>>) {
    if node.cached.is_some() {
        return;
    }
    node.known.resize(node.files.len(), None);
    for k in node.known.iter_mut() {
        if k.is_none() {
            *k = counts.next().flatten();
        }
    }
    for c in &mut node.children {
        fill_known(c, counts);
    }
}

/// Statistics of a stored tree (a commit's root tree).
pub fn tree_stats(store: &ObjectStore, tree: &ObjectId, cache: &StatsCache) -> Result<Stats> {
    tree_stats_from(store, tree, &[], cache)
}

/// The cache key of a version's paired statistics ([`StatsCache::get_paired`]).
fn paired_key(tree: &ObjectId) -> [u8; 32] {
    key(&[b"paired", &tree.0])
}

/// The cache key of a root tree's statistics.
fn root_key(tree: &ObjectId, layout: &Layout) -> [u8; 32] {
    key(&[&tree.0, b"", &[0; 32], &layout.toml.digest])
}

/// Statistics of a stored tree; when the cache has none for it but has those of
/// one of `bases` (earlier versions, nearest first), they are derived from that
/// one's by what changed between the two (see [`delta`]), else computed.
pub fn tree_stats_from(
    store: &ObjectStore,
    tree: &ObjectId,
    bases: &[ObjectId],
    cache: &StatsCache,
) -> Result<Stats> {
    let src = TreeSource::new(store, Some(*tree));
    let layout = Layout::load(&src)?.map_err(|e| Error::Labels(e.to_string()))?;
    let own = root_key(tree, &layout);
    if let Some(s) = cache.get(&own) {
        return Ok(s);
    }
    // The nearest base the cache knows; one attempt, then the full computation.
    let base = bases
        .iter()
        .filter(|b| *b != tree)
        .find_map(|b| Some((b, cache.get(&root_key(b, &layout))?)));
    if let Some((a, s)) = base
        // A base that cannot be read (objects gone, damage) is no base: the full
        // computation reports what is wrong with this tree, if anything.
        && let Ok(Some(s)) = delta::derive(store, &layout, a, tree, s)
    {
        cache.put(&[(own, s.clone())], &[]);
        return Ok(s);
    }
    computed(store, tree, &src, &layout, cache)
}

/// Statistics of a stored tree, computed over the subtrees the cache does not answer.
fn computed(
    store: &ObjectStore,
    tree: &ObjectId,
    src: &TreeSource,
    layout: &Layout,
    cache: &StatsCache,
) -> Result<Stats> {
    let mut t = crate::trace::Phases::start("stats");
    let walk = Walk {
        store,
        layout,
        src,
        cache,
    };
    let root = Arc::new(Scope {
        names: None,
        digest: [0; 32],
        error: None,
    });
    let mut node = walk.collect(tree, "", &root, false)?;
    t.mark("walk");
    // Sized up front: growing a million-entry list by doubling costs more than the walk.
    let n = count_files(&node);
    let mut ids = Vec::with_capacity(n);
    let mut jobs = Vec::with_capacity(n);
    number_files(&node, &mut ids, &mut jobs);
    // Each file is parsed on the thread that read it, straight from the pack read.
    let counts = store.get_many_with(&ids, |i, bytes| match jobs.get(i) {
        Some(&(node, f)) => walk.file_counts(bytes, &node.file_path(f), &node.scope),
        None => Ok(None),
    })?;
    // Not needed to hand out and encode the counts for the cache.
    drop(jobs);
    drop(ids);
    t.mark("read-parse");
    fill_known(&mut node, &mut counts.into_iter());
    let computed = Computed::default();
    let stats = walk.total(&mut node, &computed)?;
    // The walk's lists of label files are not needed to write the cache.
    drop(node);
    t.mark("total");
    let subtrees = computed.subtrees.into_inner().unwrap_or_default();
    let files = computed.files.into_inner().unwrap_or_default();
    if !subtrees.is_empty() {
        cache.put(&subtrees, &files);
    }
    t.mark("cache-write");
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-z_]{0,6}"
    }

    fn counts() -> impl Strategy<Value = FileCounts> {
        prop_oneof![
            Just(FileCounts::default()),
            name().prop_map(|error| FileCounts {
                kind: FileKind::Error,
                error,
                ..FileCounts::default()
            }),
            (
                (0u64..5, 0u64..5, 0u64..1 << 40),
                proptest::collection::vec((name(), 0u64..1000), 0..4),
                proptest::collection::vec((name(), name(), 0u64..9), 0..3),
                proptest::collection::vec((name(), name(), 0u64..9), 0..3),
            )
                .prop_map(|((labelled, empty, objects), classes, a, f)| FileCounts {
                    kind: FileKind::Parsed,
                    labelled,
                    empty,
                    objects,
                    classes,
                    attributes: a,
                    frame_attributes: f,
                    ..FileCounts::default()
                }),
        ]
    }

    /// YOLO, the format with a counting pass.
    fn yolo() -> &'static dyn LabelFormat {
        format_of(crate::labels::Format::Yolo)
    }

    /// The stats path of a YOLO file (a format that stores class indices).
    fn yolo_counted(bytes: &[u8], path: &str, names: Option<&Arc<ClassNames>>) -> Counted {
        indexed_counted(yolo(), bytes, path, names)
    }

    /// Counts from the full YOLO parser, the reference for the counting pass.
    fn parsed_counts(bytes: &[u8], names: Option<&Arc<ClassNames>>) -> FileCounts {
        let ctx = crate::labels::ParseContext {
            class_names: names.cloned(),
            stem: "f".into(),
        };
        match yolo().parse(bytes, &ctx) {
            Ok(frames) => FileCounts::of_frames(frames),
            Err(e) => FileCounts {
                kind: FileKind::Error,
                error: e.to_string(),
                ..FileCounts::default()
            },
        }
    }

    fn names_lists() -> Vec<Option<Arc<ClassNames>>> {
        vec![
            None,
            // Two indices with one name: counted as one class, like the parser does.
            Some(Arc::new(
                vec!["car".into(), "dog".into(), "car".into()].into(),
            )),
            Some(Arc::new(
                ["car", "dog", "cone", "bus", "van", "kid", "cat", "ox"]
                    .map(String::from)
                    .to_vec()
                    .into(),
            )),
        ]
    }

    fn txt_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                txt_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "txt") {
                out.push(p);
            }
        }
    }

    #[test]
    fn yolo_counting_pass_matches_the_parser_on_sample_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        txt_files(&root.join("fixtures"), &mut files);
        // The shared sample datasets next to the repository, when they are there.
        txt_files(&root.join("../shared/datasets"), &mut files);
        assert!(files.len() >= 20, "{} sample files", files.len());
        let mut fast = 0;
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            for names in names_lists() {
                let got =
                    yolo_counted(&bytes, "labels/f.txt", names.as_ref()).to_full(names.as_ref());
                assert_eq!(
                    got,
                    parsed_counts(&bytes, names.as_ref()),
                    "{}",
                    f.display()
                );
                fast += usize::from(yolo().count(&bytes, names.as_deref()).is_some());
            }
        }
        // The YOLO samples take the counting pass (KITTI files and names lists do not).
        assert!(fast >= 10, "{fast} files counted without the parser");
    }

    fn yolo_field() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "(0|0\\.[0-9]{1,6}|1|0\\.5)",
            1 => prop_oneof![
                Just("-0.25"), Just("-0"), Just("-0.0"), Just("1."), Just(".5"), Just("1e-3"),
                Just("nan"), Just("inf"), Just("abc"), Just("0x1"), Just("+1"),
                Just("1234567890123456"), Just("123456789012345"), Just("9e999"),
                Just("\u{e9}"), Just("\u{a0}"),
            ]
            .prop_map(str::to_owned),
        ]
    }

    fn yolo_line() -> impl Strategy<Value = String> {
        let class = prop_oneof![
            6 => "[0-7]",
            1 => prop_oneof![
                Just("007"), Just("+1"), Just("-1"), Just("x"), Just("12345678901234567890"),
                Just("1.0"),
            ]
            .prop_map(str::to_owned),
        ];
        let sep = prop_oneof![Just(" "), Just("\t"), Just("  "), Just(" \r ")];
        (
            class,
            proptest::collection::vec((sep, yolo_field()), 0..9),
            "( |\t|\r)?",
        )
            .prop_map(|(class, fields, end)| {
                let mut line = class;
                for (sep, f) in fields {
                    line.push_str(sep);
                    line.push_str(&f);
                }
                line.push_str(&end);
                line
            })
    }

    #[test]
    fn plain_yolo_files_stay_inline_and_others_do_not() {
        let names = names_lists();
        let text = b"0 0.5 0.5 0.1 0.1\n3 0.2 0.2 0.1 0.1 0.9\n0 0.1 0.1 0.1 0.1\n";
        let distinct = names[2].as_ref();
        match yolo_counted(text, "labels/f.txt", distinct) {
            Counted::Indexed(y) => {
                let ns = distinct.map_or(&[][..], |n| n.as_slice());
                let got: Vec<(&str, u64)> = y.view(ns).classes.collect();
                assert_eq!(got, [("car", 2), ("bus", 1)]);
                assert_eq!((y.objects, y.scored), (3, 1));
            }
            other => panic!("not inline: {other:?}"),
        }
        // No names, a name shared by two indices, an index past the names,
        // more classes than fit inline: the full form.
        let shared = b"0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n";
        let many: Vec<u8> = (0..=INLINE_CLASSES)
            .flat_map(|i| format!("{i} .5 .5 .1 .1\n").into_bytes())
            .collect();
        for (text, names) in [
            (&text[..], None),
            (&shared[..], names[1].as_ref()),
            (&b"9 0.5 0.5 0.1 0.1\n"[..], distinct),
            (&many[..], distinct),
        ] {
            assert!(matches!(
                yolo_counted(text, "labels/f.txt", names),
                Counted::Full(_)
            ));
        }
    }

    proptest! {
        #[test]
        fn yolo_counting_pass_matches_the_parser(
            lines in proptest::collection::vec(prop_oneof![8 => yolo_line(), 1 => "[ \t]{0,2}"], 0..8),
            crlf in any::<bool>(),
            bom in any::<bool>(),
            last_newline in any::<bool>(),
            named in any::<bool>(),
        ) {
            let mut text = if bom { "\u{feff}".to_owned() } else { String::new() };
            text.push_str(&lines.join(if crlf { "\r\n" } else { "\n" }));
            if last_newline {
                text.push('\n');
            }
            let names = names_lists().into_iter().nth(usize::from(named)).flatten();
            let fast = yolo_counted(text.as_bytes(), "labels/f.txt", names.as_ref()).to_full(names.as_ref());
            // Same counts, and for a malformed file the same error (line, column, message).
            prop_assert_eq!(fast, parsed_counts(text.as_bytes(), names.as_ref()));
        }

        #[test]
        fn inline_yolo_counts_encode_and_add_up_as_their_full_form(
            lines in proptest::collection::vec(yolo_line(), 0..6),
            list in 0usize..3,
        ) {
            let text = lines.join("\n");
            let names = names_lists().into_iter().nth(list).flatten();
            let got = yolo_counted(text.as_bytes(), "labels/f.txt", names.as_ref());
            let full = Counted::Full(Box::new(got.to_full(names.as_ref())));
            let ns = names.as_ref().map_or(&[][..], |n| n.as_slice());
            let id = ObjectId::hash(text.as_bytes());
            // The cache holds the same bytes whichever form phase 2 kept...
            prop_assert_eq!(
                encode_files(&[("f.txt", &id, Some(&got))], ns),
                encode_files(&[("f.txt", &id, Some(&full))], ns)
            );
            // ...and the totals are the same.
            let total = |c: &Counted| {
                let mut s = Stats::default();
                match c {
                    Counted::Indexed(y) => s.add_parsed(y.view(ns)),
                    Counted::Full(c) => s.add_counts(c, || "labels/f.txt".into()),
                }
                s
            };
            prop_assert_eq!(total(&got), total(&full));
        }

        #[test]
        fn yolo_counting_pass_takes_plain_files(
            lines in proptest::collection::vec(("[0-2]", proptest::collection::vec("0\\.[0-9]{1,6}", 4..9)), 0..6),
        ) {
            let text: String = lines
                .iter()
                .map(|(c, nums)| format!("{c} {}\n", nums.join(" ")))
                .collect();
            let names = names_lists().pop().flatten();
            let counts = yolo().count(text.as_bytes(), names.as_deref());
            prop_assert!(counts.is_some(), "{text}");
            prop_assert_eq!(counts.map_or(0, |c| c.objects), lines.len() as u64);
        }

        #[test]
        fn per_file_counts_round_trip(files in proptest::collection::btree_map(name(), counts(), 0..6), cut in 0usize..64) {
            let ids: Vec<ObjectId> = files.keys().map(|n| ObjectId::hash(n.as_bytes())).collect();
            let full: Vec<Counted> = files.values().map(|c| Counted::Full(Box::new(c.clone()))).collect();
            let list: Vec<(&str, &ObjectId, Option<&Counted>)> = files
                .keys()
                .zip(&ids)
                .zip(&full)
                .map(|((n, id), c)| (n.as_str(), id, Some(c)))
                .collect();
            let bytes = encode_files(&list, &[]);
            let back = decode_files(&bytes).expect("decodes");
            prop_assert_eq!(back.len(), files.len());
            for ((n, c), id) in files.iter().zip(&ids) {
                let (prefix, got) = &back[n];
                prop_assert_eq!(&prefix[..], &id.0[..16]);
                prop_assert_eq!(got, c);
            }
            // A cut-off value is rejected, never misread.
            if cut < bytes.len() {
                prop_assert!(decode_files(&bytes[..cut]).is_none());
            }
        }
    }
}
