//! The binary encoding of a cached [`FrameIndex`]: length-prefixed fields in a
//! fixed order, so that reading back a million frames costs a pass over the bytes
//! (JSON took most of a warm query). Decoding checks every bound and gives `None`
//! on anything unexpected: the cache is then rebuilt, never trusted.

use std::collections::BTreeMap;

pub(crate) use crate::codec::{Reader, f64s, opt_u32, string, varint};
use crate::id::ObjectId;
use crate::labels::{AttrRef, AttrValue, BBox, Geometry, Object, Units};
use crate::meta::Prediction;

use super::check::{KIND_BOOL, KIND_NUM, KIND_STR, Schema};
use super::{FrameIndex, FrameRecord};

/// Appends one attribute value: a tag byte, then the value.
pub(crate) fn attr_value(out: &mut Vec<u8>, v: AttrRef) {
    match v {
        AttrRef::Bool(b) => out.extend_from_slice(&[0, u8::from(b)]),
        AttrRef::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        AttrRef::Float(x) => {
            out.push(2);
            f64s(out, &[x]);
        }
        AttrRef::Str(s) => {
            out.push(3);
            string(out, s);
        }
    }
}

/// Appends an attribute map (count, then each name and value in name order).
pub(crate) fn attrs<'a, I>(out: &mut Vec<u8>, a: I)
where
    I: IntoIterator<Item = (&'a String, &'a AttrValue)>,
    I::IntoIter: ExactSizeIterator,
{
    attr_pairs(out, a.into_iter().map(|(k, v)| (k.as_str(), v.as_attr())));
}

/// [`attrs`] of pairs already in name order, without repeated names.
pub(crate) fn attr_pairs<'a>(
    out: &mut Vec<u8>,
    pairs: impl ExactSizeIterator<Item = (&'a str, AttrRef<'a>)>,
) {
    varint(out, pairs.len() as u64);
    for (k, v) in pairs {
        string(out, k);
        attr_value(out, v);
    }
}

pub(crate) use crate::labels::format_tag;

/// Frames per chunk: chunks are decoded (and filtered) in parallel.
pub(crate) const CHUNK: usize = 8192;

fn encode_frame(out: &mut Vec<u8>, f: &FrameRecord) {
    string(out, &f.path);
    out.extend_from_slice(&f.id.0);
    varint(out, f.size);
    opt_u32(out, f.width);
    opt_u32(out, f.height);
    out.push(u8::from(f.units == Units::Normalized));
    attrs(out, &f.attrs);
    varint(out, f.objects.len() as u64);
    for o in &f.objects {
        object(out, o);
    }
    predictions(out, &f.predictions);
    varint(out, f.labels.len() as u64);
    for (l, fmt) in &f.labels {
        string(out, l);
        out.push(format_tag(*fmt));
    }
}

/// Appends one object (the objects section of a frame is a count, then these).
pub(crate) fn object(out: &mut Vec<u8>, o: &Object) {
    string(out, &o.class);
    match &o.bbox {
        Some(b) => {
            out.push(1);
            f64s(out, &[b.x, b.y, b.w, b.h]);
        }
        None => out.push(0),
    }
    string(out, o.id.as_deref().unwrap_or(""));
    out.push(u8::from(o.id.is_some()));
    attrs(out, &o.attributes);
    // Geometry is rare and nested: JSON is fine for it.
    let g = o
        .geometry
        .as_ref()
        .and_then(|g| serde_json::to_string(g).ok())
        .unwrap_or_default();
    string(out, &g);
}

/// The bytes [`object`] writes for an object with a box, no id, no geometry
/// and no attribute but an optional `score` (what a YOLO box line gives),
/// written without building the object.
pub(crate) fn box_object(out: &mut Vec<u8>, class: &str, b: &BBox, score: Option<f64>) {
    string(out, class);
    out.push(1);
    f64s(out, &[b.x, b.y, b.w, b.h]);
    string(out, "");
    out.push(0);
    match score {
        Some(s) => {
            varint(out, 1);
            string(out, "score");
            attr_value(out, AttrRef::Float(s));
        }
        None => varint(out, 0),
    }
    string(out, "");
}

/// Appends a frame's predictions section (count, then each).
pub(crate) fn predictions(out: &mut Vec<u8>, preds: &[Prediction]) {
    varint(out, preds.len() as u64);
    for p in preds {
        string(out, &p.class);
        match p.bbox {
            Some(b) => {
                out.push(1);
                f64s(out, &[b.x, b.y, b.w, b.h]);
            }
            None => out.push(0),
        }
        match p.score {
            Some(s) => {
                out.push(1);
                f64s(out, &[s]);
            }
            None => out.push(0),
        }
    }
}

/// Encodes an index: the frames in chunks of [`CHUNK`], each prefixed by its
/// frame count and byte length (and each frame by its own length), then the
/// sidecar name and the warnings.
pub fn encode(ix: &FrameIndex) -> Vec<u8> {
    let mut one = Vec::new();
    let chunks = ix
        .frames
        .chunks(CHUNK)
        .map(|c| {
            let mut chunk = Vec::new();
            for f in c {
                one.clear();
                encode_frame(&mut one, f);
                push_frame(&mut chunk, &one);
            }
            (c.len(), chunk)
        })
        .collect::<Vec<_>>();
    IndexParts {
        tree: [0; 32],
        chunks,
        overlay: None,
        sidecar: ix.sidecar.clone(),
        warnings: ix.warnings.clone(),
        attrs: ix.attrs.clone(),
        invalid: ix.invalid.clone(),
        // Counted from the frames by `with_schema`.
        bad_boxes: Default::default(),
    }
    .with_schema()
    .assemble()
}

/// Appends one encoded frame to a chunk: length-prefixed, so a frame can be
/// judged from its head alone and skipped without decoding the rest.
pub(crate) fn push_frame(chunk: &mut Vec<u8>, frame: &[u8]) {
    varint(chunk, frame.len() as u64);
    chunk.extend_from_slice(frame);
}

/// Records per entry of a chunk's record table: a frame is found by position
/// or path by framing at most this many records, not the whole chunk.
pub(crate) const STRIDE: usize = 16;

/// Bytes of the check that ends a record table.
const TABLE_CHECK: usize = 16;

/// The check of a chunk's record table: it covers the chunk's frame count
/// and length too, so a table moved to another chunk does not pass.
fn table_check(frames: usize, len: usize, offsets: &[u8]) -> [u8; TABLE_CHECK] {
    let mut h = blake3::Hasher::new();
    h.update(b"dsv query record table");
    h.update(&(frames as u64).to_le_bytes());
    h.update(&(len as u64).to_le_bytes());
    h.update(offsets);
    let mut out = [0; TABLE_CHECK];
    out.copy_from_slice(&h.finalize().as_bytes()[..TABLE_CHECK]);
    out
}

/// The record table of a chunk of `frames` records (see [`push_frame`]):
/// the byte offset of every [`STRIDE`]th record as a little-endian u64,
/// then a check; `None` when the chunk is not `frames` records exactly.
pub(crate) fn record_table(frames: usize, chunk: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(frames.div_ceil(STRIDE) * 8 + TABLE_CHECK);
    let mut r = Reader::new(chunk);
    for k in 0..frames {
        if k % STRIDE == 0 {
            out.extend_from_slice(&(r.pos() as u64).to_le_bytes());
        }
        let n = r.count()?;
        r.take(n)?;
    }
    if !r.done() {
        return None;
    }
    let check = table_check(frames, chunk.len(), &out);
    out.extend_from_slice(&check);
    Some(out)
}

/// Bytes of the record table of a chunk of `frames` records.
fn table_len(frames: usize) -> Option<usize> {
    frames
        .div_ceil(STRIDE)
        .checked_mul(8)?
        .checked_add(TABLE_CHECK)
}

/// The offsets of a record table read from a file, checked: the check
/// matches, the first is 0 and they rise within the chunk. `None` when the
/// table is damaged (the index is then rebuilt, never misread).
pub(crate) fn read_record_table(frames: usize, chunk: &[u8], table: &[u8]) -> Option<Vec<usize>> {
    if table.len() != table_len(frames)? {
        return None;
    }
    let (offsets, check) = table.split_at(table.len() - TABLE_CHECK);
    if table_check(frames, chunk.len(), offsets) != check {
        return None;
    }
    let mut out: Vec<usize> = Vec::with_capacity(offsets.len() / 8);
    for o in offsets.chunks_exact(8) {
        let o = usize::try_from(u64::from_le_bytes(o.try_into().ok()?)).ok()?;
        let ok = match out.last() {
            Some(&l) => o > l && o < chunk.len(),
            None => o == 0,
        };
        if !ok {
            return None;
        }
        out.push(o);
    }
    Some(out)
}

/// The records of the `w`th stretch of [`STRIDE`] records of a chunk of
/// `frames` records, by its checked table `offsets` (see
/// [`read_record_table`]): framed from the stretch's offset, they must end
/// exactly where the next begins (the chunk's end for the last); `None` if not.
pub(crate) fn stretch<'a>(
    frames: usize,
    chunk: &'a [u8],
    offsets: &[usize],
    w: usize,
) -> Option<Vec<&'a [u8]>> {
    let start = *offsets.get(w)?;
    let end = offsets.get(w + 1).copied().unwrap_or(chunk.len());
    let n = STRIDE.min(frames.checked_sub(w * STRIDE)?);
    let mut r = Reader::new(chunk.get(start..end)?);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.count()?;
        out.push(r.take(len)?);
    }
    r.done().then_some(out)
}

/// A label file of the version that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invalid {
    /// The label file.
    pub file: String,
    /// The frame it would describe, found by name (single-frame formats);
    /// `None` when that cannot be told.
    pub frame: Option<String>,
    /// The parse error (file, line, column, message).
    pub message: String,
}

/// An index not yet laid out in one buffer: its chunks (frame count and
/// bytes, each at most [`CHUNK`] frames made with [`push_frame`]), sidecar
/// name and warnings, or an [`Overlay`] on another version's index. A new
/// index is judged and written from these, so its hundreds of megabytes are
/// never copied into one buffer.
pub struct IndexParts {
    /// The root tree of the version indexed (zeros when not known): a later
    /// version's index can be derived from this one by a diff of the trees.
    pub tree: [u8; 32],
    /// Frame count and bytes of each chunk (empty for an overlay).
    pub chunks: Vec<(usize, Vec<u8>)>,
    /// The frames as another version's full index with some replaced.
    pub overlay: Option<Overlay>,
    /// The metadata sidecar read, if any.
    pub sidecar: Option<String>,
    /// The first few warnings.
    pub warnings: Vec<String>,
    /// Every frame attribute name with the kinds of its values (see
    /// [`IndexParts::with_schema`]): what a query is checked against.
    pub attrs: Schema,
    /// Every label file that did not parse (not only the first few).
    pub invalid: Vec<Invalid>,
    /// Invalid boxes (see [`crate::labels::box_problem`]): how many, and the
    /// first [`MAX_BAD_BOXES`] as "FILE: frame F: object N (CLASS): problem",
    /// each with the position of its frame.
    pub bad_boxes: (u64, Vec<(u64, String)>),
}

/// A version's frames as a base version's full index with some frames
/// replaced (same paths, same positions): what a derived index writes, so a
/// new commit's index costs the frames it changed, not a copy of them all.
pub struct Overlay {
    /// The root tree of the base version; its index file holds the base.
    pub base_tree: [u8; 32],
    /// The base's full encoding (usually its mapped index file).
    pub base: Box<dyn AsRef<[u8]> + Send + Sync>,
    /// The replaced frames: position in the base and encoded record, in
    /// ascending position order.
    pub patches: Vec<(usize, Vec<u8>)>,
}

/// Invalid boxes an index names (it counts them all).
pub const MAX_BAD_BOXES: usize = 20;

/// Frames of an index as read: the chunks of a full encoding, and the
/// frames an overlay replaces (position, record; ascending).
struct View<'a> {
    chunks: Vec<(usize, &'a [u8])>,
    patches: Vec<(usize, &'a [u8])>,
}

/// One chunk with the replaced frames that fall in it.
struct ChunkRef<'a, 'p> {
    frames: usize,
    bytes: &'a [u8],
    /// Position of the chunk's first frame in the index.
    first: usize,
    patches: &'p [(usize, &'a [u8])],
}

impl<'a> View<'a> {
    fn frames(&self) -> usize {
        self.chunks.iter().map(|c| c.0).sum()
    }

    /// The chunks, each with its replaced frames.
    fn chunk_refs(&self) -> Vec<ChunkRef<'a, '_>> {
        let mut out = Vec::with_capacity(self.chunks.len());
        let mut first = 0;
        let mut p = 0;
        for &(frames, bytes) in &self.chunks {
            let end = first + frames;
            let start = p;
            while self.patches.get(p).is_some_and(|x| x.0 < end) {
                p += 1;
            }
            out.push(ChunkRef {
                frames,
                bytes,
                first,
                patches: self.patches.get(start..p).unwrap_or(&[]),
            });
            first = end;
        }
        out
    }
}

impl ChunkRef<'_, '_> {
    /// Every frame's record in order (replaced ones from the overlay), or
    /// `None` at the first malformed frame; the chunk must be consumed exactly.
    fn for_each<'s>(&'s self, mut f: impl FnMut(usize, &'s [u8]) -> Option<()>) -> Option<()> {
        let mut r = Reader::new(self.bytes);
        let mut p = self.patches;
        for k in 0..self.frames {
            let rec = r.count().and_then(|n| r.take(n))?;
            let rec = match p.split_first() {
                Some((x, rest)) if x.0 == self.first + k => {
                    p = rest;
                    x.1
                }
                _ => rec,
            };
            f(self.first + k, rec)?;
        }
        (r.pos() == self.bytes.len() && p.is_empty()).then_some(())
    }
}

impl IndexParts {
    /// These parts with [`IndexParts::attrs`] and the invalid boxes filled
    /// from their frames (one parallel pass over the attribute sections,
    /// done when an index is made, never when it is queried). For an overlay
    /// only its frames are scanned, over the base's own figures.
    pub fn with_schema(mut self) -> IndexParts {
        let scan = match &self.overlay {
            Some(o) => overlay_schema(o),
            None => {
                let view = View {
                    chunks: self
                        .chunks
                        .iter()
                        .map(|(n, c)| (*n, c.as_slice()))
                        .collect(),
                    patches: Vec::new(),
                };
                Some(view_schema(&view))
            }
        };
        let (attrs, bad) = scan.unwrap_or_default();
        self.attrs = attrs;
        self.bad_boxes = bad;
        self
    }

    /// Writes the encoding: the bytes [`IndexParts::assemble`] gives.
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(96);
        match &self.overlay {
            Some(o) => {
                let base = (*o.base).as_ref();
                head.extend_from_slice(OVERLAY_MAGIC);
                head.extend_from_slice(&self.tree);
                head.extend_from_slice(&o.base_tree);
                varint(&mut head, base.len() as u64);
                let frames = parts_full(base)
                    .map_or(0, |(_, (c, ..), ..)| c.iter().map(|x| x.0).sum::<usize>());
                varint(&mut head, frames as u64);
                varint(&mut head, o.patches.len() as u64);
                w.write_all(&head)?;
                for (at, rec) in &o.patches {
                    head.clear();
                    varint(&mut head, *at as u64);
                    varint(&mut head, rec.len() as u64);
                    w.write_all(&head)?;
                    w.write_all(rec)?;
                }
            }
            None => {
                head.extend_from_slice(MAGIC);
                head.extend_from_slice(&self.tree);
                varint(&mut head, self.chunks.len() as u64);
                w.write_all(&head)?;
                for (n, chunk) in &self.chunks {
                    head.clear();
                    varint(&mut head, *n as u64);
                    varint(&mut head, chunk.len() as u64);
                    w.write_all(&head)?;
                    w.write_all(chunk)?;
                    let table = record_table(*n, chunk).ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "a chunk of the query index is not framed",
                        )
                    })?;
                    w.write_all(&table)?;
                }
            }
        }
        let tail = Tail {
            sidecar: self.sidecar.clone(),
            warnings: self.warnings.clone(),
            attrs: self.attrs.clone(),
            invalid: self.invalid.clone(),
            bad_boxes: self.bad_boxes.clone(),
        };
        w.write_all(&tail.encode())
    }

    /// The encoding in one buffer.
    pub fn assemble(&self) -> Vec<u8> {
        let size: usize = self
            .chunks
            .iter()
            .map(|(n, c)| c.len() + 20 + table_len(*n).unwrap_or(0))
            .sum();
        let mut out = Vec::with_capacity(size + 64);
        // Writing to a Vec fails only on a chunk not made of framed records
        // (none is): the bytes are then cut short and do not decode.
        let _ = self.write_to(&mut out);
        out
    }

    /// Every frame of these parts ([`decode`] without laying them out first).
    pub fn decode(&self) -> Option<FrameIndex> {
        self.decode_filtered(|| |_: &dyn FrameAccess| Ok::<bool, std::convert::Infallible>(true))
            .unwrap_or(None)
    }

    /// The frames of these parts as read (an overlay on its base).
    fn view(&self) -> Option<View<'_>> {
        match &self.overlay {
            Some(o) => {
                let (_, (chunks, ..), ..) = parts_full((*o.base).as_ref())?;
                let patches = o.patches.iter().map(|(i, r)| (*i, r.as_slice())).collect();
                Some(View { chunks, patches })
            }
            None => Some(View {
                chunks: self
                    .chunks
                    .iter()
                    .map(|(n, c)| (*n, c.as_slice()))
                    .collect(),
                patches: Vec::new(),
            }),
        }
    }

    /// Frames in the version.
    pub fn frames(&self) -> usize {
        self.view().map_or(0, |v| v.frames())
    }

    /// [`IndexParts::decode_filtered`] using what is `known` of the
    /// matches, with the positions of the frames kept (`decode` false: only those).
    pub(super) fn select<E: Send, J>(
        &self,
        known: Known,
        decode: bool,
        judge: impl Fn() -> J + Sync,
    ) -> Result<Option<(FrameIndex, Vec<u64>)>, E>
    where
        J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
    {
        let Some(view) = self.view() else {
            return Ok(None);
        };
        let tail = Tail {
            sidecar: self.sidecar.clone(),
            warnings: self.warnings.clone(),
            attrs: self.attrs.clone(),
            invalid: self.invalid.clone(),
            bad_boxes: self.bad_boxes.clone(),
        };
        select_chunks(&view, tail, known, decode, judge, None)
    }

    /// [`decode_filtered`] of these parts, without laying them out first.
    pub fn decode_filtered<E: Send, J>(
        &self,
        judge: impl Fn() -> J + Sync,
    ) -> Result<Option<FrameIndex>, E>
    where
        J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
    {
        let Some(view) = self.view() else {
            return Ok(None);
        };
        filter_chunks(
            &view,
            Tail {
                sidecar: self.sidecar.clone(),
                warnings: self.warnings.clone(),
                attrs: self.attrs.clone(),
                invalid: self.invalid.clone(),
                bad_boxes: self.bad_boxes.clone(),
            },
            judge,
        )
    }
}

/// Gives back the memory of bytes of a mapped index once read (see
/// [`Loaded::select_releasing`]).
pub(super) type Release<'r> = &'r (dyn Fn(&[u8]) + Sync);

/// Attribute schema and invalid boxes of every frame of a view.
type Scan = (Schema, (u64, Vec<(u64, String)>));

/// Writes a full index chunk by chunk as it is built, each chunk scanned for
/// the schema and invalid boxes and then dropped: the bytes
/// [`IndexParts::write_to`] writes for the same parts, without every chunk
/// held at once (a million frames' index is a quarter of a gigabyte).
pub(super) struct ChunkWriter<W: std::io::Write> {
    w: W,
    /// Frames written so far: the position of the next chunk's first frame.
    first: usize,
    chunks_left: usize,
    scan: Scan,
}

impl<W: std::io::Write> ChunkWriter<W> {
    /// Starts the index of version `tree`, which will have `chunks` chunks.
    pub(super) fn new(mut w: W, tree: &[u8; 32], chunks: usize) -> std::io::Result<Self> {
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(tree);
        varint(&mut head, chunks as u64);
        w.write_all(&head)?;
        Ok(ChunkWriter {
            w,
            first: 0,
            chunks_left: chunks,
            scan: Scan::default(),
        })
    }

    /// Writes the next chunk, of `frames` framed records.
    pub(super) fn chunk(&mut self, frames: usize, bytes: &[u8]) -> std::io::Result<()> {
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "chunk not framed");
        self.chunks_left = self.chunks_left.checked_sub(1).ok_or_else(bad)?;
        let table = record_table(frames, bytes).ok_or_else(bad)?;
        let view = View {
            chunks: vec![(frames, bytes)],
            patches: Vec::new(),
        };
        let mut scan = Scan::default();
        // The chunk's frames sit at `first` onwards in the whole index.
        for c in view.chunk_refs() {
            let c = ChunkRef {
                first: self.first,
                ..c
            };
            scan_chunk(&c, &mut scan).ok_or_else(bad)?;
        }
        self.scan = merge_scan(std::mem::take(&mut self.scan), scan);
        self.first += frames;
        let mut head = Vec::with_capacity(20);
        varint(&mut head, frames as u64);
        varint(&mut head, bytes.len() as u64);
        self.w.write_all(&head)?;
        self.w.write_all(bytes)?;
        self.w.write_all(&table)
    }

    /// Writes the tail from `parts` (whose chunks were written here, and
    /// whose schema and invalid boxes are the ones scanned here), giving
    /// back the writer and the schema.
    pub(super) fn finish(mut self, parts: &IndexParts) -> std::io::Result<(W, Schema)> {
        if self.chunks_left != 0 {
            return Err(std::io::Error::other("index chunks missing"));
        }
        let (attrs, bad_boxes) = self.scan;
        let tail = Tail {
            sidecar: parts.sidecar.clone(),
            warnings: parts.warnings.clone(),
            attrs,
            invalid: parts.invalid.clone(),
            bad_boxes,
        };
        self.w.write_all(&tail.encode())?;
        Ok((self.w, tail.attrs))
    }
}

/// Adds a chunk's attributes and invalid boxes (the first [`MAX_BAD_BOXES`]
/// named, every one counted) to `scan`; `None` for a record that does not decode.
fn scan_chunk(c: &ChunkRef<'_, '_>, scan: &mut Scan) -> Option<()> {
    c.for_each(|at, rec| {
        let mut problems = Vec::new();
        frame_schema(rec, &mut scan.0, &mut problems)?;
        scan.1.0 += problems.len() as u64;
        for p in problems {
            if scan.1.1.len() < MAX_BAD_BOXES {
                scan.1.1.push((at as u64, p));
            }
        }
        Some(())
    })
}

/// Two scans of consecutive frames as one.
fn merge_scan(mut a: Scan, b: Scan) -> Scan {
    for (k, v) in b.0 {
        *a.0.entry(k).or_default() |= v;
    }
    a.1.0 += b.1.0;
    let room = MAX_BAD_BOXES.saturating_sub(a.1.1.len());
    a.1.1.extend(b.1.1.into_iter().take(room));
    a
}

fn view_schema(view: &View) -> Scan {
    use rayon::prelude::*;
    let merge = merge_scan;
    view.chunk_refs()
        .par_iter()
        .map(|c| {
            let mut scan = Scan::default();
            scan_chunk(c, &mut scan).map_or_else(Scan::default, |()| scan)
        })
        .reduce(Scan::default, merge)
}

/// The schema and invalid boxes of an overlay from its base's recorded
/// ones and a scan of the replaced frames only. A replaced frame keeps every
/// attribute of its base record (derivation requires it), so the schema is
/// the union; the invalid boxes are exact when the base listed all of its
/// own, else every frame is scanned.
fn overlay_schema(o: &Overlay) -> Option<Scan> {
    let base = (*o.base).as_ref();
    let (_, (chunks, ..), tail, _) = parts_full(base)?;
    let mut attrs = tail.attrs;
    let mut listed: Vec<(u64, String)> = Vec::new();
    for (at, rec) in &o.patches {
        let mut problems = Vec::new();
        frame_schema(rec, &mut attrs, &mut problems)?;
        listed.extend(problems.into_iter().map(|p| (*at as u64, p)));
    }
    let (total, base_listed) = tail.bad_boxes;
    if total != base_listed.len() as u64 {
        let patches = o.patches.iter().map(|(i, r)| (*i, r.as_slice())).collect();
        let (_, bad) = view_schema(&View { chunks, patches });
        return Some((attrs, bad));
    }
    let replaced = |at: u64| {
        o.patches
            .binary_search_by_key(&at, |(i, _)| *i as u64)
            .is_ok()
    };
    listed.extend(base_listed.into_iter().filter(|(at, _)| !replaced(*at)));
    // Stable: a frame's own problems stay in object order.
    listed.sort_by_key(|(at, _)| *at);
    let total = listed.len() as u64;
    listed.truncate(MAX_BAD_BOXES);
    Some((attrs, (total, listed)))
}

/// The index's own reads on top of the generic [`Reader`]: attribute,
/// object and prediction sections.
pub(crate) trait IndexRead<'a> {
    /// Skips one attribute value (tag and payload).
    fn skip_attr_value(&mut self) -> Option<()>;
    /// The bytes of an attribute section (count and pairs), checked but not decoded.
    fn attrs_section(&mut self) -> Option<&'a [u8]>;
    /// Skips the rest of an object after its class: box, id, attributes, geometry.
    fn skip_object_rest(&mut self) -> Option<()>;
    /// The bytes of a predictions section (count and predictions), checked but not decoded.
    fn predictions_section(&mut self) -> Option<&'a [u8]>;
    /// An attribute map.
    fn attrs(&mut self) -> Option<BTreeMap<String, AttrValue>>;
}

impl<'a> IndexRead<'a> for Reader<'a> {
    fn skip_attr_value(&mut self) -> Option<()> {
        match self.u8()? {
            0 => self.take(1).map(drop),
            1 | 2 => self.take(8).map(drop),
            3 => {
                let n = self.count()?;
                self.take(n).map(drop)
            }
            _ => None,
        }
    }
    fn attrs_section(&mut self) -> Option<&'a [u8]> {
        let start = self.pos();
        let n = self.count()?;
        for _ in 0..n {
            let k = self.count()?;
            self.take(k)?;
            self.skip_attr_value()?;
        }
        self.since(start)
    }
    fn skip_object_rest(&mut self) -> Option<()> {
        if self.bool()? {
            self.take(32)?;
        }
        let id = self.count()?;
        self.take(id)?;
        self.bool()?;
        self.attrs_section()?;
        let g = self.count()?;
        self.take(g).map(drop)
    }
    fn predictions_section(&mut self) -> Option<&'a [u8]> {
        let start = self.pos();
        let n = self.count()?;
        for _ in 0..n {
            self.str()?;
            if self.bool()? {
                self.take(32)?;
            }
            if self.bool()? {
                self.take(8)?;
            }
        }
        self.since(start)
    }
    fn attrs(&mut self) -> Option<BTreeMap<String, AttrValue>> {
        let n = self.count()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            let v = match self.u8()? {
                0 => AttrValue::Bool(self.bool()?),
                1 => AttrValue::Int(i64::from_le_bytes(self.take(8)?.try_into().ok()?)),
                2 => AttrValue::Float(self.f64()?),
                3 => AttrValue::Str(self.string()?),
                _ => return None,
            };
            m.insert(k, v);
        }
        Some(m)
    }
}

/// The parts of one encoded frame a derived index reuses.
pub(super) struct RecordParts<'a> {
    /// Path of the frame file.
    pub path: &'a str,
    /// Its content id.
    pub id: ObjectId,
    /// Its size.
    pub size: u64,
    /// Everything after the size (dimensions, units, attributes, objects...).
    pub after_size: &'a [u8],
    /// The attribute section.
    pub attrs: &'a [u8],
    /// The predictions section.
    pub predictions: &'a [u8],
    /// The label files describing the frame.
    pub labels: Vec<&'a str>,
    /// Their formats, in the same order.
    pub formats: Vec<crate::labels::Format>,
}

impl<'a> RecordParts<'a> {
    /// The label files describing the frame, with their formats.
    pub fn label_files(&self) -> impl Iterator<Item = (&'a str, crate::labels::Format)> + '_ {
        self.labels
            .iter()
            .copied()
            .zip(self.formats.iter().copied())
    }
}

/// Locates the parts of every frame of an encoded index, as deriving a new
/// index does (for fuzzing and tests): the frame count, `None` if anything is
/// malformed. Never panics, whatever the bytes.
pub fn read_record_parts(b: &[u8]) -> Option<usize> {
    let (_, (chunks, _, _)) = parts_of(b)?;
    let mut n = 0;
    for (frames, bytes) in chunks {
        let mut r = Reader::new(bytes);
        for _ in 0..frames {
            let len = r.count()?;
            record_parts(r.take(len)?)?;
            n += 1;
        }
    }
    Some(n)
}

/// Every record of an encoded full index found through its chunks' record
/// tables, stretch by stretch, as deriving a new index finds them (for
/// fuzzing and tests): the frame count, `None` when a table is damaged or
/// disagrees with the records. Never panics, whatever the bytes.
pub fn read_record_tables(b: &[u8]) -> Option<usize> {
    let (_, (chunks, ..), _, tables) = parts_full(b)?;
    let mut n = 0;
    for ((frames, bytes), table) in chunks.into_iter().zip(tables) {
        let offsets = read_record_table(frames, bytes, table)?;
        for w in 0..offsets.len() {
            n += stretch(frames, bytes, &offsets, w)?.len();
        }
    }
    Some(n)
}

/// Locates the parts of one encoded frame (see [`RecordParts`]); `None` if malformed.
pub(super) fn record_parts(b: &[u8]) -> Option<RecordParts<'_>> {
    let mut r = Reader::new(b);
    let path = r.str()?;
    let id = ObjectId(r.take(32)?.try_into().ok()?);
    let size = r.varint()?;
    let after_size = b.get(r.pos()..)?;
    r.opt_u32()?;
    r.opt_u32()?;
    r.bool()?;
    let attrs = r.attrs_section()?;
    let n = r.count()?;
    for _ in 0..n {
        r.str()?; // class
        r.skip_object_rest()?;
    }
    let predictions = r.predictions_section()?;
    let nl = r.count()?;
    let mut labels = Vec::with_capacity(nl);
    let mut formats = Vec::with_capacity(nl);
    for _ in 0..nl {
        labels.push(r.str()?);
        formats.push(crate::labels::format_from_tag(r.u8()?)?);
    }
    r.done().then_some(RecordParts {
        path,
        id,
        size,
        after_size,
        attrs,
        predictions,
        labels,
        formats,
    })
}

const MAGIC: &[u8; 8] = b"DSVQIX7\0";

/// Magic of an overlay file (see [`Overlay`]).
const OVERLAY_MAGIC: &[u8; 8] = b"DSVQIP7\0";

/// Adds one encoded frame's attribute names and value kinds to `out`, and
/// its invalid boxes (described) to `problems`; `None` if malformed.
fn frame_schema(rec: &[u8], out: &mut Schema, problems: &mut Vec<String>) -> Option<()> {
    let mut f = Reader::new(rec);
    let path = f.str()?;
    f.take(32)?; // id
    f.varint()?; // size
    let width = f.opt_u32()?;
    let height = f.opt_u32()?;
    let units = if f.bool()? {
        Units::Normalized
    } else {
        Units::Pixels
    };
    for _ in 0..f.count()? {
        let k = f.str()?;
        let kind = match f.peek()? {
            0 => KIND_BOOL,
            1 | 2 => KIND_NUM,
            _ => KIND_STR,
        };
        f.skip_attr_value()?;
        match out.get_mut(k) {
            Some(v) => *v |= kind,
            None => {
                out.insert(k.to_string(), kind);
            }
        }
    }
    let mut found = Vec::new();
    for i in 0..f.count()? {
        let class = f.str()?;
        if f.bool()? {
            let b = BBox {
                x: f.f64()?,
                y: f.f64()?,
                w: f.f64()?,
                h: f.f64()?,
            };
            if let Some(p) = crate::labels::box_problem(&b, units, (width, height)) {
                found.push(format!("object {} ({class}): {p}", i + 1));
            }
        }
        let id = f.count()?;
        f.take(id)?;
        f.bool()?;
        f.attrs_section()?;
        let g = f.count()?;
        f.take(g)?;
    }
    if found.is_empty() {
        return Some(());
    }
    f.predictions_section()?;
    let mut files = Vec::new();
    for _ in 0..f.count()? {
        files.push(f.str()?);
        f.u8()?;
    }
    let files = files.join(", ");
    problems.extend(
        found
            .into_iter()
            .map(|p| format!("{files}: frame {path}: {p}")),
    );
    Some(())
}

/// The attribute schema recorded in an encoded index (full or overlay);
/// `None` if malformed.
pub fn schema_of(b: &[u8]) -> Option<Schema> {
    if b.starts_with(OVERLAY_MAGIC) {
        return overlay_head(b).map(|h| h.tail.attrs);
    }
    parts_full(b).map(|(_, _, t, _)| t.attrs)
}

/// What follows the chunks of an index.
#[derive(Default, Clone)]
struct Tail {
    sidecar: Option<String>,
    warnings: Vec<String>,
    attrs: Schema,
    invalid: Vec<Invalid>,
    bad_boxes: (u64, Vec<(u64, String)>),
}

impl Tail {
    fn encode(&self) -> Vec<u8> {
        let mut tail = Vec::new();
        string(&mut tail, self.sidecar.as_deref().unwrap_or(""));
        tail.push(u8::from(self.sidecar.is_some()));
        varint(&mut tail, self.warnings.len() as u64);
        for x in &self.warnings {
            string(&mut tail, x);
        }
        varint(&mut tail, self.attrs.len() as u64);
        for (k, kinds) in &self.attrs {
            string(&mut tail, k);
            tail.push(*kinds);
        }
        varint(&mut tail, self.bad_boxes.0);
        varint(&mut tail, self.bad_boxes.1.len() as u64);
        for (at, x) in &self.bad_boxes.1 {
            varint(&mut tail, *at);
            string(&mut tail, x);
        }
        varint(&mut tail, self.invalid.len() as u64);
        for x in &self.invalid {
            string(&mut tail, &x.file);
            string(&mut tail, x.frame.as_deref().unwrap_or(""));
            tail.push(u8::from(x.frame.is_some()));
            string(&mut tail, &x.message);
        }
        tail
    }

    /// Reads a tail that must end the bytes.
    fn read(r: &mut Reader) -> Option<Tail> {
        let sidecar = r.string()?;
        let sidecar = r.bool()?.then_some(sidecar);
        let nw = r.count()?;
        let mut warnings = Vec::with_capacity(nw);
        for _ in 0..nw {
            warnings.push(r.string()?);
        }
        let na = r.count()?;
        let mut attrs = Schema::new();
        for _ in 0..na {
            let k = r.string()?;
            attrs.insert(k, r.u8()?);
        }
        let total = r.varint()?;
        let nb = r.count()?;
        let mut listed = Vec::with_capacity(nb);
        for _ in 0..nb {
            let at = r.varint()?;
            listed.push((at, r.string()?));
        }
        let ni = r.count()?;
        let mut invalid = Vec::with_capacity(ni);
        for _ in 0..ni {
            let file = r.string()?;
            let frame = r.string()?;
            let frame = r.bool()?.then_some(frame);
            let message = r.string()?;
            invalid.push(Invalid {
                file,
                frame,
                message,
            });
        }
        r.done().then_some(Tail {
            sidecar,
            warnings,
            attrs,
            invalid,
            bad_boxes: (total, listed),
        })
    }
}

/// The chunks of an encoding (frame count and bytes) and its sidecar name and
/// warnings; `None` when the framing is not well formed.
type Parts<'a> = (Vec<(usize, &'a [u8])>, Option<String>, Vec<String>);

#[cfg(test)]
fn parts(b: &[u8]) -> Option<Parts<'_>> {
    parts_of(b).map(|(_, p)| p)
}

/// A full encoded index's tree and parts (chunks, sidecar, warnings), the
/// chunks not decoded; `None` when the bytes are not a full index.
pub(super) fn parts_of(b: &[u8]) -> Option<([u8; 32], Parts<'_>)> {
    parts_full(b).map(|(t, p, ..)| (t, p))
}

/// A full index as read: tree, parts, the rest of the tail, and each
/// chunk's record table (unchecked: see [`read_record_table`]).
type Full<'a> = ([u8; 32], Parts<'a>, Tail, Vec<&'a [u8]>);

/// [`parts_of`], the rest of the tail and the record tables.
fn parts_full(b: &[u8]) -> Option<Full<'_>> {
    let mut r = Reader::new(b);
    if r.take(8)? != MAGIC {
        return None;
    }
    let tree: [u8; 32] = r.take(32)?.try_into().ok()?;
    let n = r.count()?;
    let mut chunks = Vec::with_capacity(n);
    let mut tables = Vec::with_capacity(n);
    for _ in 0..n {
        let frames = r.count()?;
        let len = r.count()?;
        chunks.push((frames, r.take(len)?));
        tables.push(r.take(table_len(frames)?)?);
    }
    let tail = Tail::read(&mut r)?;
    let (sidecar, warnings) = (tail.sidecar.clone(), tail.warnings.clone());
    Some((tree, (chunks, sidecar, warnings), tail, tables))
}

/// The head of an overlay file: its version, its base and what it replaces.
struct OverlayHead<'a> {
    tree: [u8; 32],
    base_tree: [u8; 32],
    base_len: u64,
    base_frames: u64,
    patches: Vec<(usize, &'a [u8])>,
    tail: Tail,
}

fn overlay_head(b: &[u8]) -> Option<OverlayHead<'_>> {
    let mut r = Reader::new(b);
    if r.take(8)? != OVERLAY_MAGIC {
        return None;
    }
    let tree: [u8; 32] = r.take(32)?.try_into().ok()?;
    let base_tree: [u8; 32] = r.take(32)?.try_into().ok()?;
    let base_len = r.varint()?;
    let base_frames = r.varint()?;
    let n = r.count()?;
    let mut patches: Vec<(usize, &[u8])> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = usize::try_from(r.varint()?).ok()?;
        if patches.last().is_some_and(|p| p.0 >= at) || at as u64 >= base_frames {
            return None;
        }
        let len = r.count()?;
        patches.push((at, r.take(len)?));
    }
    let tail = Tail::read(&mut r)?;
    Some(OverlayHead {
        tree,
        base_tree,
        base_len,
        base_frames,
        patches,
        tail,
    })
}

/// The base version (root tree) of an overlay file; `None` for anything else.
pub(super) fn overlay_base(b: &[u8]) -> Option<[u8; 32]> {
    let mut r = Reader::new(b);
    if r.take(8)? != OVERLAY_MAGIC {
        return None;
    }
    r.take(32)?;
    r.take(32)?.try_into().ok()
}

/// An encoded index as read: a full one, or an overlay on its base.
pub(super) struct Loaded<'a> {
    /// The version indexed.
    pub tree: [u8; 32],
    /// The version whose full index holds the chunks (`tree` for a full one).
    pub base_tree: [u8; 32],
    view: View<'a>,
    /// The record table of each of the base's chunks, unchecked.
    tables: Vec<&'a [u8]>,
    tail: Tail,
}

/// Reads an index file: a full one alone, an overlay with the bytes of its
/// base's file (`None` without them, or when they are not the full index
/// it was made on: another version, length or frame count).
pub(super) fn load<'a>(b: &'a [u8], base: Option<&'a [u8]>) -> Option<Loaded<'a>> {
    if b.starts_with(OVERLAY_MAGIC) {
        let h = overlay_head(b)?;
        let base = base?;
        let (bt, (chunks, ..), _, tables) = parts_full(base)?;
        let frames: usize = chunks.iter().map(|c| c.0).sum();
        if bt != h.base_tree || base.len() as u64 != h.base_len || frames as u64 != h.base_frames {
            return None;
        }
        return Some(Loaded {
            tree: h.tree,
            base_tree: h.base_tree,
            view: View {
                chunks,
                patches: h.patches,
            },
            tables,
            tail: h.tail,
        });
    }
    let (tree, (chunks, ..), tail, tables) = parts_full(b)?;
    Some(Loaded {
        tree,
        base_tree: tree,
        view: View {
            chunks,
            patches: Vec::new(),
        },
        tables,
        tail,
    })
}

impl<'a> Loaded<'a> {
    /// The base's chunks (frame count, bytes).
    pub fn chunks(&self) -> &[(usize, &'a [u8])] {
        &self.view.chunks
    }
    /// The record table of each of the base's chunks, as stored (see
    /// [`read_record_table`]).
    pub fn tables(&self) -> &[&'a [u8]] {
        &self.tables
    }
    /// The frames replaced in the base (position, record), ascending.
    pub fn patches(&self) -> &[(usize, &'a [u8])] {
        &self.view.patches
    }
    /// Frames in the version.
    pub fn frames(&self) -> usize {
        self.view.frames()
    }
    /// The sidecar read, if any.
    pub fn sidecar(&self) -> Option<&str> {
        self.tail.sidecar.as_deref()
    }
    /// The first few warnings.
    pub fn warnings(&self) -> &[String] {
        &self.tail.warnings
    }
    /// The attribute schema.
    pub fn attrs(&self) -> &Schema {
        &self.tail.attrs
    }

    /// Every frame.
    pub fn decode(&self) -> Option<FrameIndex> {
        self.decode_filtered(|| |_: &dyn FrameAccess| Ok::<bool, std::convert::Infallible>(true))
            .unwrap_or(None)
    }

    /// The frames a judge accepts (see [`decode_filtered`]).
    pub fn decode_filtered<E: Send, J>(
        &self,
        judge: impl Fn() -> J + Sync,
    ) -> Result<Option<FrameIndex>, E>
    where
        J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
    {
        filter_chunks(&self.view, self.tail.clone(), judge)
    }

    /// [`Loaded::decode_filtered`] using what is `known` of the matches,
    /// with the positions of the frames kept (`decode` false: only those).
    pub fn select<E: Send, J>(
        &self,
        known: Known,
        decode: bool,
        judge: impl Fn() -> J + Sync,
    ) -> Result<Option<(FrameIndex, Vec<u64>)>, E>
    where
        J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
    {
        select_chunks(&self.view, self.tail.clone(), known, decode, judge, None)
    }

    /// [`Loaded::select`], `release` called with the bytes of each chunk
    /// once judged: a mapped file's pages can then be given back as the
    /// judging goes, rather than all of the index staying resident.
    pub fn select_releasing<E: Send, J>(
        &self,
        known: Known,
        decode: bool,
        judge: impl Fn() -> J + Sync,
        release: &(dyn Fn(&[u8]) + Sync),
    ) -> Result<Option<(FrameIndex, Vec<u64>)>, E>
    where
        J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
    {
        select_chunks(
            &self.view,
            self.tail.clone(),
            known,
            decode,
            judge,
            Some(release),
        )
    }

    /// The version's full encoding (an overlay applied to its base): the
    /// bytes a full build of the version writes.
    pub fn to_full(&self) -> Option<Vec<u8>> {
        let mut chunks = Vec::with_capacity(self.view.chunks.len());
        for c in self.view.chunk_refs() {
            let mut out = Vec::with_capacity(c.bytes.len());
            c.for_each(|_, rec| {
                push_frame(&mut out, rec);
                Some(())
            })?;
            chunks.push((c.frames, out));
        }
        let t = self.tail.clone();
        Some(
            IndexParts {
                tree: self.tree,
                chunks,
                overlay: None,
                sidecar: t.sidecar,
                warnings: t.warnings,
                attrs: t.attrs,
                invalid: t.invalid,
                bad_boxes: t.bad_boxes,
            }
            .assemble(),
        )
    }
}

/// What is known of a version's matches before its frames are judged.
#[derive(Clone, Copy)]
pub(super) enum Known<'k> {
    /// Nothing: every frame is judged.
    Nothing,
    /// The version's own matches (positions, ascending): nothing is judged.
    Exact(&'k [u64]),
    /// The matches of an overlay's base: only the replaced frames are judged.
    Base(&'k [u64]),
}

/// The frames of a chunk kept (when decoded) and their positions.
type Kept = (Vec<FrameRecord>, Vec<u64>);

/// Decodes the frames of one chunk that `keep` accepts (or that `known`
/// gives), with their positions; `None` if malformed.
fn decode_chunk<E>(
    c: &ChunkRef,
    known: Known,
    decode: bool,
    mut keep: impl FnMut(&dyn FrameAccess) -> Result<bool, E>,
) -> Result<Option<Kept>, E> {
    let mut out = Vec::new();
    let mut at_out = Vec::new();
    let mut failed = None;
    // The known matches within this chunk.
    let (given, rejudge) = match known {
        Known::Nothing => (None, false),
        Known::Exact(p) | Known::Base(p) => {
            let lo = p.partition_point(|&x| x < c.first as u64);
            let hi = p.partition_point(|&x| x < (c.first + c.frames) as u64);
            (p.get(lo..hi), matches!(known, Known::Base(_)))
        }
    };
    // A chunk none of whose frames is listed is not walked: reading a few
    // listed frames (a worker's shard) costs their chunks, not the index.
    if given.is_some_and(|g| g.is_empty()) && !rejudge {
        return Ok(Some((out, at_out)));
    }
    let mut given = given.map(|g| g.iter().peekable());
    let mut patches = c.patches.iter().peekable();
    let walked = c.for_each(|at, rec| {
        let replaced = patches.next_if(|p| p.0 == at).is_some();
        let listed = given
            .as_mut()
            .map(|g| g.next_if(|&&x| x == at as u64).is_some());
        match listed {
            // Known: decoded when it matched, not judged.
            Some(l) if !(rejudge && replaced) => {
                if l {
                    if decode {
                        out.push(FrameView::new(rec)?.into_record()?);
                    }
                    at_out.push(at as u64);
                }
            }
            _ => {
                let view = FrameView::new(rec)?;
                let kept = keep(&view);
                // Bytes that do not decode mean a damaged cache (rebuilt by the
                // caller), whatever the judge made of them.
                if view.broken() {
                    return None;
                }
                match kept {
                    Ok(true) => {
                        if decode {
                            out.push(view.into_record()?);
                        }
                        at_out.push(at as u64);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        failed = Some(e);
                        return None;
                    }
                }
            }
        }
        Some(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    // Every known match must be a frame of the chunk.
    if given.is_some_and(|mut g| g.next().is_some()) {
        return Ok(None);
    }
    Ok(walked.map(|()| (out, at_out)))
}

/// Decodes the frames of an encoding that a judge accepts, chunks in parallel,
/// in order: a frame is judged from its undecoded bytes (see [`FrameView`]) and
/// decoded only when kept, so a query over a million frames never holds them
/// all. `judge` makes a judge for each parallel job (a query context and its
/// memos are costly to set up). `Ok(None)` when the bytes are not a
/// well-formed full encoding (an overlay needs its base: see [`load`]); a
/// judge's error stops the decoding.
pub fn decode_filtered<E: Send, J>(
    b: &[u8],
    judge: impl Fn() -> J + Sync,
) -> Result<Option<FrameIndex>, E>
where
    J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
{
    match load(b, None) {
        Some(l) => l.decode_filtered(judge),
        None => Ok(None),
    }
}

/// The frames of an index's chunks that a judge accepts (see [`decode_filtered`]).
fn filter_chunks<E: Send, J>(
    view: &View,
    tail: Tail,
    judge: impl Fn() -> J + Sync,
) -> Result<Option<FrameIndex>, E>
where
    J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
{
    Ok(select_chunks(view, tail, Known::Nothing, true, judge, None)?.map(|(ix, _)| ix))
}

/// [`filter_chunks`] using what is `known` of the matches, giving the
/// positions of the frames kept too; with `decode` false the frames kept
/// are only counted (the index's `frames` left empty), and what is known
/// spares the walk of the base's chunks.
fn select_chunks<E: Send, J>(
    view: &View,
    tail: Tail,
    known: Known,
    decode: bool,
    judge: impl Fn() -> J + Sync,
    release: Option<Release>,
) -> Result<Option<(FrameIndex, Vec<u64>)>, E>
where
    J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
{
    use rayon::prelude::*;
    if !decode && !matches!(known, Known::Nothing) {
        let Some(positions) = known_positions(view, known, judge)? else {
            return Ok(None);
        };
        return Ok(Some((tail_index(tail, Vec::new()), positions)));
    }
    // One judge per rayon job rather than per chunk, so its memos serve many
    // chunks.
    let decoded = view
        .chunk_refs()
        .par_iter()
        .map_init(&judge, |j, c| {
            let kept = decode_chunk(c, known, decode, &mut *j);
            if let Some(release) = release {
                release(c.bytes);
            }
            kept
        })
        .collect::<Result<Vec<_>, E>>()?;
    let Some(decoded) = decoded.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    // A list of matches past the last frame does not fit this index.
    if let Known::Exact(p) | Known::Base(p) = known
        && p.last().is_some_and(|&x| x >= view.frames() as u64)
    {
        return Ok(None);
    }
    let n = decoded.iter().map(|c| c.0.len()).sum();
    let mut frames = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    for (c, at) in decoded {
        frames.extend(c);
        positions.extend(at);
    }
    Ok(Some((tail_index(tail, frames), positions)))
}

/// An index of the given frames with a version's tail.
fn tail_index(tail: Tail, frames: Vec<FrameRecord>) -> FrameIndex {
    FrameIndex {
        frames,
        sidecar: tail.sidecar,
        warnings: tail.warnings,
        attrs: tail.attrs,
        invalid: tail.invalid,
        bad_boxes: (
            tail.bad_boxes.0,
            tail.bad_boxes.1.into_iter().map(|(_, s)| s).collect(),
        ),
        from_cache: false,
    }
}

/// The positions of the matching frames from what is `known` (not
/// [`Known::Nothing`]): the version's own list as is, or its base's with the
/// replaced frames judged again (in parallel); no chunk of the base is read.
fn known_positions<E: Send, J>(
    view: &View,
    known: Known,
    judge: impl Fn() -> J + Sync,
) -> Result<Option<Vec<u64>>, E>
where
    J: FnMut(&dyn FrameAccess) -> Result<bool, E>,
{
    use rayon::prelude::*;
    let frames = view.frames() as u64;
    let (Known::Exact(p) | Known::Base(p)) = known else {
        return Ok(None);
    };
    if p.last().is_some_and(|&x| x >= frames) {
        return Ok(None);
    }
    if let Known::Exact(p) = known {
        return Ok(Some(p.to_vec()));
    }
    let judged = view
        .patches
        .par_chunks(1024)
        .map_init(&judge, |j, some| {
            let mut kept = Vec::new();
            for &(at, rec) in some {
                let Some(view) = FrameView::new(rec) else {
                    return Ok(None);
                };
                let k = j(&view)?;
                if view.broken() {
                    return Ok(None);
                }
                if k {
                    kept.push(at as u64);
                }
            }
            Ok(Some(kept))
        })
        .collect::<Result<Vec<_>, E>>()?;
    let Some(judged) = judged.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let replaced = |x: &u64| {
        view.patches
            .binary_search_by_key(x, |(i, _)| *i as u64)
            .is_ok()
    };
    let mut out: Vec<u64> = p.iter().copied().filter(|x| !replaced(x)).collect();
    out.extend(judged.into_iter().flatten());
    out.sort_unstable();
    Ok(Some(out))
}

/// An optional box: a flag, then x, y, w, h.
fn decode_bbox(r: &mut Reader) -> Option<Option<BBox>> {
    Some(if r.bool()? {
        Some(BBox {
            x: r.f64()?,
            y: r.f64()?,
            w: r.f64()?,
            h: r.f64()?,
        })
    } else {
        None
    })
}

fn decode_frame(r: &mut Reader) -> Option<FrameRecord> {
    let path = r.string()?;
    let id = ObjectId(r.take(32)?.try_into().ok()?);
    let size = r.varint()?;
    let width = r.opt_u32()?;
    let height = r.opt_u32()?;
    let units = if r.bool()? {
        Units::Normalized
    } else {
        Units::Pixels
    };
    let fattrs = r.attrs()?;
    let no = r.count()?;
    let mut objects = Vec::with_capacity(no);
    for _ in 0..no {
        let class = r.string()?;
        let bbox = decode_bbox(r)?;
        let id = r.string()?;
        let id = r.bool()?.then_some(id);
        let attributes = r.attrs()?;
        let g = r.string()?;
        let geometry: Option<Geometry> = if g.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&g).ok()?)
        };
        objects.push(Object {
            class,
            bbox,
            id,
            attributes: attributes.into(),
            geometry,
        });
    }
    let np = r.count()?;
    let mut predictions = Vec::with_capacity(np);
    for _ in 0..np {
        let class = r.string()?;
        let bbox = decode_bbox(r)?;
        let score = if r.bool()? { Some(r.f64()?) } else { None };
        predictions.push(Prediction { class, bbox, score });
    }
    let nl = r.count()?;
    let mut labels = Vec::with_capacity(nl);
    for _ in 0..nl {
        let l = r.string()?;
        let fmt = crate::labels::format_from_tag(r.u8()?)?;
        labels.push((l, fmt));
    }
    Some(FrameRecord {
        path,
        id,
        size,
        width,
        height,
        units,
        attrs: fattrs,
        objects,
        predictions,
        labels,
    })
}

/// What a query reads of a frame: attributes by name without decoding the
/// frame, and the whole record when an expression needs more.
pub trait FrameAccess {
    /// Appends attribute `key`'s value as [`attr_value`] encodes it, or a lone
    /// `0xff` when the frame has no such attribute.
    fn attr_key(&self, key: &str, out: &mut Vec<u8>);
    /// Appends every attribute (names and values).
    fn attrs_key(&self, out: &mut Vec<u8>);
    /// Appends the classes of the objects, in order.
    fn classes_key(&self, out: &mut Vec<u8>);
    /// The image width and height, when known.
    fn size_px(&self) -> (Option<u32>, Option<u32>);
    /// The whole frame; `None` only when stored bytes do not decode.
    fn record(&self) -> Option<&FrameRecord>;
}

impl FrameAccess for FrameRecord {
    fn attr_key(&self, key: &str, out: &mut Vec<u8>) {
        match self.attrs.get(key) {
            Some(v) => attr_value(out, v.as_attr()),
            None => out.push(0xff),
        }
    }
    fn attrs_key(&self, out: &mut Vec<u8>) {
        attrs(out, &self.attrs);
    }
    fn classes_key(&self, out: &mut Vec<u8>) {
        varint(out, self.objects.len() as u64);
        for o in &self.objects {
            string(out, &o.class);
        }
    }
    fn size_px(&self) -> (Option<u32>, Option<u32>) {
        (self.width, self.height)
    }
    fn record(&self) -> Option<&FrameRecord> {
        Some(self)
    }
}

/// One encoded frame, read no further than a query needs: its head (path, id,
/// size, dimensions) and attribute section are located up front, the rest is
/// decoded on first use.
pub struct FrameView<'a> {
    bytes: &'a [u8],
    attrs: &'a [u8],
    /// Everything after the attributes (objects first).
    rest: &'a [u8],
    width: Option<u32>,
    height: Option<u32>,
    record: std::cell::OnceCell<Option<FrameRecord>>,
}

impl<'a> FrameView<'a> {
    /// Locates the parts of one frame's bytes; `None` if the head is malformed.
    fn new(bytes: &'a [u8]) -> Option<FrameView<'a>> {
        let mut r = Reader::new(bytes);
        let n = r.count()?;
        r.take(n)?; // path
        r.take(32)?; // id
        r.varint()?; // size
        let width = r.opt_u32()?;
        let height = r.opt_u32()?;
        r.bool()?; // units
        let start = r.pos();
        let n = r.count()?;
        for _ in 0..n {
            let k = r.count()?;
            r.take(k)?;
            r.skip_attr_value()?;
        }
        Some(FrameView {
            bytes,
            attrs: bytes.get(start..r.pos())?,
            rest: bytes.get(r.pos()..)?,
            width,
            height,
            record: std::cell::OnceCell::new(),
        })
    }

    /// Appends the object classes (count, then each class), reading past the
    /// rest of each object without decoding it.
    fn scan_classes(&self, out: &mut Vec<u8>) -> Option<()> {
        let mut r = Reader::new(self.rest);
        let n = r.count()?;
        varint(out, n as u64);
        for _ in 0..n {
            let len = r.count()?;
            let class = r.take(len)?;
            varint(out, len as u64);
            out.extend_from_slice(class);
            r.skip_object_rest()?;
        }
        Some(())
    }

    /// Whether decoding the whole frame was tried and failed.
    fn broken(&self) -> bool {
        matches!(self.record.get(), Some(None))
    }

    /// The whole frame, decoded once; `None` when its bytes do not decode.
    fn decoded(&self) -> &Option<FrameRecord> {
        self.record.get_or_init(|| {
            let mut r = Reader::new(self.bytes);
            decode_frame(&mut r).filter(|_| r.done())
        })
    }

    /// The decoded frame, owned.
    fn into_record(self) -> Option<FrameRecord> {
        self.decoded();
        self.record.into_inner().flatten()
    }
}

impl FrameAccess for FrameView<'_> {
    fn attr_key(&self, key: &str, out: &mut Vec<u8>) {
        let mut r = Reader::new(self.attrs);
        let n = r.count().unwrap_or(0);
        for _ in 0..n {
            let Some(k) = r.count().and_then(|k| r.take(k)) else {
                break;
            };
            let from = r.pos();
            if r.skip_attr_value().is_none() {
                break;
            }
            if k == key.as_bytes() {
                out.extend_from_slice(&self.attrs[from..r.pos()]);
                return;
            }
        }
        out.push(0xff);
    }
    fn attrs_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.attrs);
    }
    fn classes_key(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if self.scan_classes(out).is_none() {
            // Undecodable: a key no frame shares; the judge then decodes the
            // frame, fails, and the index is rebuilt.
            out.truncate(start);
            out.extend_from_slice(&[0xff; 2]);
        }
    }
    fn size_px(&self) -> (Option<u32>, Option<u32>) {
        (self.width, self.height)
    }
    fn record(&self) -> Option<&FrameRecord> {
        self.decoded().as_ref()
    }
}

/// Decodes an index; `None` when the bytes are not a well-formed encoding.
pub fn decode(b: &[u8]) -> Option<FrameIndex> {
    decode_filtered(b, || {
        |_: &dyn FrameAccess| Ok::<bool, std::convert::Infallible>(true)
    })
    .unwrap_or(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Format;

    #[test]
    fn round_trip_and_rejects_truncation() {
        let mut o = Object::new("car", Some(BBox::from_corners(1.0, 2.0, 3.5, 4.0)));
        o.id = Some("7".into());
        o.attributes
            .insert("occluded".into(), AttrValue::Bool(true));
        o.geometry = Some(Geometry::Polygon {
            rings: vec![vec![[0.0, 0.0], [1.0, 1.0]]],
        });
        let ix = FrameIndex {
            frames: vec![FrameRecord {
                path: "images/a.jpg".into(),
                id: ObjectId([9; 32]),
                size: 1234,
                width: Some(640),
                height: None,
                units: Units::Normalized,
                attrs: [
                    ("weather".to_string(), AttrValue::Str("rain".into())),
                    ("n".to_string(), AttrValue::Int(-3)),
                    ("s".to_string(), AttrValue::Float(0.5)),
                ]
                .into_iter()
                .collect(),
                objects: vec![o, Object::new("dog", None)],
                predictions: vec![Prediction {
                    class: "car".into(),
                    bbox: Some(BBox::from_corners(1.0, 2.0, 4.0, 6.0)),
                    score: None,
                }],
                labels: vec![("labels/a.txt".into(), Format::Kitti)],
            }],
            sidecar: Some("meta.jsonl".into()),
            warnings: vec!["w".into()],
            attrs: Default::default(),
            invalid: vec![Invalid {
                file: "labels/b.txt".into(),
                frame: None,
                message: "labels/b.txt:1:1: bad".into(),
            }],
            bad_boxes: Default::default(),
            from_cache: false,
        };
        let bytes = encode(&ix);
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.frames, ix.frames);
        assert_eq!(back.sidecar, ix.sidecar);
        assert_eq!(back.warnings, ix.warnings);
        assert_eq!(back.invalid, ix.invalid);
        // Counted from the frames when encoded: the normalized box reaches x 3.5.
        assert_eq!(
            back.bad_boxes,
            (
                1,
                vec![
                    "labels/a.txt: frame images/a.jpg: object 1 (car): box lies outside the image (x 1..3.5, y 2..4)"
                        .to_string()
                ]
            )
        );
        // The attribute names and kinds of every frame are recorded.
        let kinds: Vec<(&str, u8)> = back.attrs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            kinds,
            [("n", KIND_NUM), ("s", KIND_NUM), ("weather", KIND_STR)]
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "truncated at {cut}");
        }
        // Every record's parts are found, and agree with the decoded frame.
        assert_eq!(read_record_parts(&bytes), Some(ix.frames.len()));
        for cut in 0..bytes.len() {
            assert!(
                read_record_parts(&bytes[..cut]).is_none(),
                "truncated at {cut}"
            );
        }
        // A frame read from its bytes gives the keys of the decoded frame.
        let (chunks, ..) = parts(&bytes).expect("parts");
        let mut r = Reader::new(chunks[0].1);
        let view = r.count().and_then(|n| r.take(n)).and_then(FrameView::new);
        let view = view.expect("view");
        let f = &ix.frames[0];
        let keys = |a: &dyn FrameAccess| {
            let mut out = Vec::new();
            for k in ["weather", "n", "s", "missing"] {
                a.attr_key(k, &mut out);
            }
            a.attrs_key(&mut out);
            a.classes_key(&mut out);
            (out, a.size_px())
        };
        assert_eq!(keys(&view), keys(f));
        assert_eq!(view.into_record().as_ref(), Some(f));
        let mut r = Reader::new(chunks[0].1);
        let rec = r.count().and_then(|n| r.take(n)).expect("a record");
        let p = record_parts(rec).expect("parts of a record");
        assert_eq!((p.path, p.id, p.size), (f.path.as_str(), f.id, f.size));
        assert_eq!(Reader::new(p.attrs).attrs().as_ref(), Some(&f.attrs));
        let mut preds = Vec::new();
        predictions(&mut preds, &f.predictions);
        assert_eq!(p.predictions, preds.as_slice());
        let labels: Vec<&str> = f.labels.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(p.labels, labels);
        assert!(rec.ends_with(p.after_size));
    }

    fn frame(path: &str, class: &str, w: f64) -> FrameRecord {
        FrameRecord {
            path: path.into(),
            id: ObjectId([1; 32]),
            size: 3,
            width: Some(4),
            height: Some(5),
            units: Units::Normalized,
            attrs: [("w".to_string(), AttrValue::Str("rain".into()))]
                .into_iter()
                .collect(),
            objects: vec![Object::new(
                class,
                Some(BBox {
                    x: 0.1,
                    y: 0.1,
                    w,
                    h: 0.1,
                }),
            )],
            predictions: vec![],
            labels: vec![(path.replace(".jpg", ".txt"), Format::Yolo)],
        }
    }

    fn parts_of_index(ix: &FrameIndex, tree: u8) -> IndexParts {
        let bytes = encode(ix);
        let (_, (chunks, sidecar, warnings), ..) = parts_full(&bytes).expect("parts");
        IndexParts {
            tree: [tree; 32],
            chunks: chunks.iter().map(|(n, c)| (*n, c.to_vec())).collect(),
            overlay: None,
            sidecar,
            warnings,
            attrs: Default::default(),
            invalid: Vec::new(),
            bad_boxes: Default::default(),
        }
        .with_schema()
    }

    #[test]
    fn an_index_written_chunk_by_chunk_is_the_index_written_whole() {
        // Three chunks; bad boxes in the first and the last (their positions
        // in the tail count from the start of the whole index).
        let frames: Vec<FrameRecord> = (0..2 * CHUNK + 7)
            .map(|i| {
                let w = if i == 5 || i == 2 * CHUNK + 3 {
                    2.0
                } else {
                    0.2
                };
                frame(&format!("f{i:05}.jpg"), "car", w)
            })
            .collect();
        let mut whole = parts_of_index(
            &FrameIndex {
                frames,
                ..FrameIndex::default()
            },
            3,
        );
        whole.warnings = vec!["a warning".into()];
        whole.sidecar = Some("meta.csv".into());
        assert_eq!(whole.bad_boxes.0, 2);
        let mut w = ChunkWriter::new(Vec::new(), &[3; 32], whole.chunks.len()).expect("starts");
        for (n, c) in &whole.chunks {
            w.chunk(*n, c).expect("a chunk");
        }
        let (streamed, attrs) = w.finish(&whole).expect("finishes");
        assert_eq!(attrs, whole.attrs);
        assert_eq!(streamed, whole.assemble());
        // A chunk more than announced, or one fewer, is refused.
        let mut w = ChunkWriter::new(Vec::new(), &[3; 32], 1).expect("starts");
        for (n, c) in whole.chunks.iter().take(1) {
            w.chunk(*n, c).expect("a chunk");
        }
        assert!(w.chunk(whole.chunks[1].0, &whole.chunks[1].1).is_err());
        let w = ChunkWriter::new(Vec::new(), &[3; 32], 2).expect("starts");
        assert!(w.finish(&whole).is_err());
        // An empty index.
        let empty = parts_of_index(&FrameIndex::default(), 4);
        let w = ChunkWriter::new(Vec::new(), &[4; 32], 0).expect("starts");
        assert_eq!(w.finish(&empty).expect("finishes").0, empty.assemble());
    }

    #[test]
    fn an_overlay_reads_as_its_base_with_frames_replaced_and_never_on_another_base() {
        // Over two chunks; frame 3 has a box past the image (a bad box).
        let frames: Vec<FrameRecord> = (0..CHUNK + 10)
            .map(|i| {
                frame(
                    &format!("f{i:05}.jpg"),
                    "car",
                    if i == 3 { 2.0 } else { 0.2 },
                )
            })
            .collect();
        let base_ix = FrameIndex {
            frames: frames.clone(),
            ..FrameIndex::default()
        };
        let base = parts_of_index(&base_ix, 1).assemble();
        // Frame 3 fixed, frame CHUNK + 1 reclassified with a bad box.
        let mut after = frames.clone();
        after[3] = frame("f00003.jpg", "bus", 0.2);
        after[CHUNK + 1] = frame(&format!("f{:05}.jpg", CHUNK + 1), "dog", 3.0);
        let full = parts_of_index(
            &FrameIndex {
                frames: after.clone(),
                ..FrameIndex::default()
            },
            2,
        )
        .assemble();
        let record = |f: &FrameRecord| {
            let mut out = Vec::new();
            encode_frame(&mut out, f);
            out
        };
        let overlay = IndexParts {
            tree: [2; 32],
            chunks: Vec::new(),
            overlay: Some(Overlay {
                base_tree: [1; 32],
                base: Box::new(base.clone()),
                patches: vec![
                    (3, record(&after[3])),
                    (CHUNK + 1, record(&after[CHUNK + 1])),
                ],
            }),
            sidecar: None,
            warnings: Vec::new(),
            attrs: Default::default(),
            invalid: Vec::new(),
            bad_boxes: Default::default(),
        }
        .with_schema();
        assert_eq!(overlay.decode().expect("decodes").frames, after);
        let bytes = overlay.assemble();
        assert!(
            bytes.len() < base.len() / 10,
            "an overlay holds only its frames"
        );
        assert_eq!(overlay_base(&bytes), Some([1; 32]));
        // Alone it does not read; on its base it is the full encoding.
        assert!(decode(&bytes).is_none());
        let loaded = load(&bytes, Some(&base)).expect("loads");
        assert_eq!(loaded.to_full().as_deref(), Some(full.as_slice()));
        assert_eq!(loaded.decode().expect("decodes").frames, after);
        // Another version's index, or one cut short, is not its base.
        assert!(load(&bytes, Some(&full)).is_none());
        assert!(load(&bytes, Some(&base[..base.len() - 1])).is_none());
        for cut in 0..bytes.len() {
            assert!(
                load(&bytes[..cut], Some(&base)).is_none(),
                "truncated at {cut}"
            );
        }
        // An overlay's frames past its base's are refused.
        let mut bad = overlay;
        if let Some(o) = bad.overlay.as_mut() {
            o.patches.push((CHUNK + 10, record(&after[0])));
        }
        assert!(load(&bad.assemble(), Some(&base)).is_none());
    }

    #[test]
    fn listed_frames_are_decoded_from_their_chunks_alone() {
        let frames: Vec<FrameRecord> = (0..CHUNK + 10)
            .map(|i| frame(&format!("f{i:05}.jpg"), "car", 0.2))
            .collect();
        let ix = FrameIndex {
            frames: frames.clone(),
            ..FrameIndex::default()
        };
        let all = || |_: &dyn FrameAccess| Ok::<bool, std::convert::Infallible>(true);
        let parts = parts_of_index(&ix, 1);
        let listed = [1u64, 5, CHUNK as u64 + 2, CHUNK as u64 + 9];
        let (got, at) = parts
            .select(Known::Exact(&listed), true, all)
            .unwrap_or(None)
            .expect("selects");
        assert_eq!(at, listed);
        let want: Vec<FrameRecord> = listed.iter().map(|&p| frames[p as usize].clone()).collect();
        assert_eq!(got.frames, want);
        // A record of the first chunk damaged (its length prefix made to run
        // past the chunk): the whole index no longer decodes, frames listed
        // only in the second chunk still do, and a listed frame of the first
        // chunk is refused, never misread.
        let mut bytes = encode(&ix);
        let first = {
            let (chunks, ..) = parts_full(&bytes).expect("parts").1;
            chunks[0].1.as_ptr() as usize - bytes.as_ptr() as usize
        };
        bytes[first..first + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
        let loaded = load(&bytes, None).expect("the chunk heads still read");
        assert!(loaded.decode().is_none());
        let second = [CHUNK as u64 + 2];
        let (got, _) = loaded
            .select(Known::Exact(&second), true, all)
            .unwrap_or(None)
            .expect("the second chunk reads");
        assert_eq!(got.frames, vec![frames[CHUNK + 2].clone()]);
        assert!(
            loaded
                .select(Known::Exact(&[1]), true, all)
                .unwrap_or(None)
                .is_none()
        );
    }

    #[test]
    fn record_tables_find_every_record_and_refuse_damage() {
        // Three chunks, the last of a partial stretch; frames of various sizes.
        let n = 2 * CHUNK + STRIDE + 3;
        let frames: Vec<FrameRecord> = (0..n)
            .map(|i| frame(&format!("f{i:06}.jpg"), &"c".repeat(1 + i % 300), 0.2))
            .collect();
        let ix = FrameIndex {
            frames,
            ..FrameIndex::default()
        };
        let bytes = encode(&ix);
        assert_eq!(read_record_tables(&bytes), Some(n));
        let (_, (chunks, ..), _, tables) = parts_full(&bytes).expect("parts");
        assert_eq!(chunks.len(), 3);
        for ((frames, chunk), table) in chunks.iter().zip(&tables) {
            // Every stretch gives the records a walk of the chunk gives.
            let mut r = Reader::new(chunk);
            let walked: Vec<&[u8]> = (0..*frames)
                .map(|_| r.count().and_then(|l| r.take(l)).expect("a record"))
                .collect();
            let offsets = read_record_table(*frames, chunk, table).expect("table");
            assert_eq!(offsets.len(), frames.div_ceil(STRIDE));
            let found: Vec<&[u8]> = (0..offsets.len())
                .flat_map(|w| stretch(*frames, chunk, &offsets, w).expect("stretch"))
                .collect();
            assert_eq!(found, walked);
            assert!(stretch(*frames, chunk, &offsets, offsets.len()).is_none());
            // A table read for another frame count or chunk is refused.
            assert!(read_record_table(frames + 1, chunk, table).is_none());
            assert!(read_record_table(*frames, &chunk[1..], table).is_none());
        }
        assert_ne!(tables[0], tables[1], "tables differ by chunk");
        assert!(read_record_table(chunks[1].0, chunks[1].1, tables[0]).is_none());
        // Any byte of a table changed: refused, never another framing.
        let last = tables[2];
        let start = last.as_ptr() as usize - bytes.as_ptr() as usize;
        for i in start..start + last.len() {
            for flip in [1u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                assert_eq!(read_record_tables(&b), None, "byte {i} ^ {flip}");
            }
        }
        // Offsets that pass the check but do not fall on records (a table
        // written for other bytes, its check made to match): the stretch
        // framing refuses them.
        let (frames, chunk) = chunks[2];
        let mut offsets = read_record_table(frames, chunk, last).expect("table");
        offsets[1] += 1;
        let mut forged: Vec<u8> = offsets
            .iter()
            .flat_map(|o| (*o as u64).to_le_bytes())
            .collect();
        let check = table_check(frames, chunk.len(), &forged);
        forged.extend_from_slice(&check);
        let read = read_record_table(frames, chunk, &forged).expect("a forged table");
        assert!(stretch(frames, chunk, &read, 0).is_none());
        assert!(stretch(frames, chunk, &read, 1).is_none());
        // An index with no table where one belongs does not read at all.
        let mut b = bytes[..start].to_vec();
        b.extend_from_slice(&bytes[start + last.len()..]);
        assert!(load(&b, None).is_none());
    }

    proptest::proptest! {
        /// Damaged bytes (here: any byte of a real encoding replaced, and
        /// garbage appended) give `None` or frames, never a panic.
        #[test]
        fn damaged_encodings_never_panic(
            at in 0usize..4096,
            byte in proptest::prelude::any::<u8>(),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        ) {
            let f = FrameRecord {
                path: "a.jpg".into(),
                id: ObjectId([1; 32]),
                size: 3,
                width: Some(4),
                height: Some(5),
                units: Units::Pixels,
                attrs: [("w".to_string(), AttrValue::Str("rain".into()))].into_iter().collect(),
                objects: vec![Object::new("car", Some(BBox::from_corners(0.0, 0.0, 1.0, 1.0)))],
                predictions: vec![],
                labels: vec![("a.txt".into(), Format::Yolo)],
            };
            let ix = FrameIndex { frames: vec![f.clone(), f], ..FrameIndex::default() };
            let mut bytes = encode(&ix);
            let i = at % bytes.len();
            bytes[i] = byte;
            bytes.extend(tail);
            let _ = decode(&bytes);
            let _ = read_record_parts(&bytes);
            let _ = read_record_tables(&bytes);
            let _ = decode_filtered(&bytes, || {
                |f: &dyn FrameAccess| {
                    let mut k = Vec::new();
                    f.attr_key("w", &mut k);
                    f.classes_key(&mut k);
                    Ok::<bool, std::convert::Infallible>(f.record().is_some())
                }
            });
        }
    }
}
