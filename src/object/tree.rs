//! Trees: one object per directory, so unchanged subtrees compare by id alone.
//!
//! Encoding (format 1): magic `DSVT`, version byte 1, kind byte.
//! kind 0 (entries): varint count, then per entry `[mode u8][name len varint][name]
//! [id 32B][size varint][files varint]`, sorted by name bytes.
//! kind 1 (sharded): varint count, then per shard `[id 32B][entries varint][size varint]
//! [files varint][last name len varint][last name]`. A directory with more than
//! [`SHARD_THRESHOLD`] entries is split into shards (kind-0 objects) at names whose
//! blake3 hash starts with a u16 divisible by [`SHARD_DIVISOR`], so inserting or
//! removing a file rewrites one shard and the short shard list, not the whole directory.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::store::ObjectStore;
use crate::store::pack::{get_varint, put_varint};

/// Directories with more entries than this are sharded.
pub const SHARD_THRESHOLD: usize = 4096;
/// Shard boundary divisor (about this many entries per shard).
pub const SHARD_DIVISOR: u16 = 1024;
/// Hard cap on entries per shard.
pub const SHARD_MAX: usize = 8192;

const MAGIC: &[u8; 4] = b"DSVT";
const VERSION: u8 = 1;

/// What a tree entry is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EntryMode {
    /// Regular file.
    File,
    /// Executable file.
    Exec,
    /// Symbolic link; the object holds the target path.
    Symlink,
    /// Directory; the id names a tree.
    Dir,
}

impl EntryMode {
    fn code(self) -> u8 {
        match self {
            EntryMode::File => 1,
            EntryMode::Exec => 2,
            EntryMode::Symlink => 3,
            EntryMode::Dir => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => EntryMode::File,
            2 => EntryMode::Exec,
            3 => EntryMode::Symlink,
            4 => EntryMode::Dir,
            _ => return None,
        })
    }

    /// Short label used by `ls-tree`.
    pub fn label(self) -> &'static str {
        match self {
            EntryMode::File => "file",
            EntryMode::Exec => "exec",
            EntryMode::Symlink => "link",
            EntryMode::Dir => "tree",
        }
    }

    /// Whether the entry is file-like (not a directory).
    pub fn is_blob(self) -> bool {
        self != EntryMode::Dir
    }
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// File name bytes (no `/`, no NUL, not `.` or `..`).
    pub name: Vec<u8>,
    /// Kind of entry.
    pub mode: EntryMode,
    /// Content id (file bytes, link target, or subtree).
    pub id: ObjectId,
    /// File size, or total bytes of files below a directory.
    pub size: u64,
    /// 1 for a file, number of files below a directory.
    pub files: u64,
}

/// A decoded directory (shards already joined).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries sorted by name.
    pub entries: Vec<TreeEntry>,
}

/// A shard reference inside a sharded directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Id of the kind-0 object holding the entries.
    pub id: ObjectId,
    /// Entries in the shard.
    pub entries: u64,
    /// Bytes below the shard.
    pub size: u64,
    /// Files below the shard.
    pub files: u64,
    /// Last (greatest) name in the shard.
    pub last: Vec<u8>,
}

/// A directory object as stored: entries or shard references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeObject {
    /// A flat list of entries.
    Entries(Vec<TreeEntry>),
    /// References to shards.
    Shards(Vec<Shard>),
}

/// The most components a repository path may have (`a/b/c` has 3). Deeper trees
/// are refused when added or fetched and reported as errors by every walk over a
/// tree, so no walk can exhaust its stack: a path this deep already needs 2,048
/// bytes with one-letter names, half of Linux's `PATH_MAX`, beyond which a
/// checkout could not open the files by their path.
pub const MAX_DEPTH: usize = 1024;

/// The error for a directory deeper than [`MAX_DEPTH`], naming its path.
pub fn too_deep(path: &[u8]) -> Error {
    let shown = String::from_utf8_lossy(&path[..path.len().min(60)]).into_owned();
    TreeError::TooDeep(shown).into()
}

/// Refuses a directory at `path` (a repository path) whose entries would have
/// more than [`MAX_DEPTH`] components: the check every walk makes before descending.
pub fn check_dir_depth(path: &[u8]) -> Result<()> {
    if !path.is_empty() && memchr::memchr_iter(b'/', path).count() + 1 >= MAX_DEPTH {
        return Err(too_deep(path));
    }
    Ok(())
}

/// Checks that a name can be a tree entry: the rules that keep checkout inside the worktree.
pub fn check_name(name: &[u8]) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name == b"." || name == b".." {
        return Err("'.' or '..' as a name");
    }
    // One pass for both bytes (every entry of every directory read is checked).
    if let Some(at) = memchr::memchr2(b'/', 0, name) {
        // The first error of the two checks in turn: '/' anywhere before NUL.
        return Err(if name[at] == b'/' || name[at..].contains(&b'/') {
            "'/' inside a name"
        } else {
            "NUL inside a name"
        });
    }
    if name == b".dsv" {
        return Err("'.dsv' is reserved");
    }
    Ok(())
}

/// The largest size a file entry may claim: no file system holds a file past
/// `off_t`'s range.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

fn add_totals(totals: &mut (u64, u64), size: u64, files: u64) -> Option<()> {
    totals.0 = totals.0.checked_add(size)?;
    totals.1 = totals.1.checked_add(files)?;
    Some(())
}

/// The checks a tree entry's size and file count get when decoded (no object is read).
fn check_counts(
    name: &[u8],
    mode: EntryMode,
    size: u64,
    files: u64,
    totals: &mut (u64, u64),
) -> std::result::Result<(), String> {
    let name = || crate::quote::bytes(name);
    if mode.is_blob() && size > MAX_FILE_SIZE {
        return Err(format!(
            "entry '{}' claims {size} bytes, more than any file can hold",
            name()
        ));
    }
    if mode.is_blob() && files != 1 {
        return Err(format!(
            "entry '{}' is a file but claims {files} files",
            name()
        ));
    }
    add_totals(totals, size, files)
        .ok_or_else(|| format!("sizes or file counts overflow at entry '{}'", name()))
}

/// Checks the size a tree entry at `path` claims against the length of its
/// object `id` (as read, or as [`ObjectStore::content_len`] gives it).
pub fn check_size(path: &[u8], claimed: u64, id: &ObjectId, real: u64) -> Result<()> {
    if claimed == real {
        return Ok(());
    }
    Err(Error::Corrupt(format!(
        "tree entry '{}' claims {claimed} bytes but its object {} has {real}",
        crate::quote::bytes(path),
        id.short()
    )))
}

/// Checks the size every file entry of `entries` (below `prefix`) claims against
/// its stored object, reading only record headers; objects not stored here (a
/// partial clone) are checked when they are fetched and read.
pub fn check_entry_sizes<'a>(
    store: &ObjectStore,
    prefix: &[u8],
    entries: impl IntoIterator<Item = (&'a [u8], EntryMode, &'a ObjectId, u64)>,
) -> Result<()> {
    for (name, mode, id, size) in entries {
        if mode.is_blob()
            && let Some(real) = store.content_len(id)?
            && real != size
        {
            let path = if prefix.is_empty() {
                name.to_vec()
            } else {
                [prefix, b"/", name].concat()
            };
            check_size(&path, size, id, real)?;
        }
    }
    Ok(())
}

fn encode_entries(entries: &[TreeEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + entries.len() * 56);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(0);
    put_varint(&mut out, entries.len() as u64);
    for e in entries {
        out.push(e.mode.code());
        put_varint(&mut out, e.name.len() as u64);
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.id.0);
        put_varint(&mut out, e.size);
        put_varint(&mut out, e.files);
    }
    out
}

fn encode_shards(shards: &[Shard]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + shards.len() * 64);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(1);
    put_varint(&mut out, shards.len() as u64);
    for s in shards {
        out.extend_from_slice(&s.id.0);
        put_varint(&mut out, s.entries);
        put_varint(&mut out, s.size);
        put_varint(&mut out, s.files);
        put_varint(&mut out, s.last.len() as u64);
        out.extend_from_slice(&s.last);
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
    if b.len() < n {
        return Err("truncated tree".into());
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn varint(b: &mut &[u8]) -> std::result::Result<u64, String> {
    get_varint(b).ok_or_else(|| "bad varint in tree".to_string())
}

fn take_id(b: &mut &[u8]) -> std::result::Result<ObjectId, String> {
    let mut id = [0u8; 32];
    id.copy_from_slice(take(b, 32)?);
    Ok(ObjectId(id))
}

/// One entry of a directory object, its name borrowed from the object's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// File name bytes, as in [`TreeEntry::name`].
    pub name: &'a [u8],
    /// Kind of entry.
    pub mode: EntryMode,
    /// Content id.
    pub id: ObjectId,
    /// File size, or total bytes below a directory.
    pub size: u64,
    /// 1 for a file, number of files below a directory.
    pub files: u64,
}

impl EntryRef<'_> {
    /// The entry with its name copied.
    pub fn to_entry(&self) -> TreeEntry {
        TreeEntry {
            name: self.name.to_vec(),
            mode: self.mode,
            id: self.id,
            size: self.size,
            files: self.files,
        }
    }
}

/// A directory object decoded without copying its names: a walk over a million
/// files then allocates per directory, not per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeObjectRef<'a> {
    /// A flat list of entries.
    Entries(Vec<EntryRef<'a>>),
    /// References to shards.
    Shards(Vec<Shard>),
}

/// The kind byte and entry count of a tree object, and the bytes after them.
fn header(bytes: &[u8]) -> std::result::Result<(u8, u64, &[u8]), String> {
    let mut b = bytes;
    if take(&mut b, 4)? != MAGIC {
        return Err("not a tree (bad magic)".into());
    }
    let version = take(&mut b, 1)?[0];
    if version != VERSION {
        return Err(format!("unsupported tree version {version}"));
    }
    let kind = take(&mut b, 1)?[0];
    let count = varint(&mut b)?;
    if count > bytes.len() as u64 {
        return Err("entry count larger than the object".into());
    }
    Ok((kind, count, b))
}

/// Parses one entry of a kind-0 object, checking its name and, given the
/// previous entry's name, the order.
fn parse_entry<'a>(
    b: &mut &'a [u8],
    prev: Option<&[u8]>,
) -> std::result::Result<EntryRef<'a>, String> {
    let mode_code = take(b, 1)?[0];
    let mode =
        EntryMode::from_code(mode_code).ok_or_else(|| format!("unknown entry mode {mode_code}"))?;
    let len = varint(b)? as usize;
    let name = take(b, len)?;
    check_name(name).map_err(|r| {
        // Quoted short: a hostile name can be megabytes of anything.
        format!("bad entry name '{}': {r}", crate::quote::bytes(name))
    })?;
    if prev.is_some_and(|p| p >= name) {
        return Err("entries not sorted or duplicated".into());
    }
    let id = take_id(b)?;
    let size = varint(b)?;
    let files = varint(b)?;
    Ok(EntryRef {
        name,
        mode,
        id,
        size,
        files,
    })
}

/// Checks the `count` entries of a kind-0 object, `b` being the bytes after
/// its header, handing each to `f` with its offset in `bytes`; `b` is left
/// after the last.
fn walk_entries<'a>(
    bytes: &'a [u8],
    b: &mut &'a [u8],
    count: u64,
    mut f: impl FnMut(usize, EntryRef<'a>),
) -> std::result::Result<(), String> {
    // Sizes and file counts are trusted by listings and summed by every walk:
    // what no object could hold, or a sum that overflows, is refused here.
    let mut totals = (0u64, 0u64);
    let mut prev: Option<&[u8]> = None;
    for _ in 0..count {
        let at = bytes.len() - b.len();
        let e = parse_entry(b, prev)?;
        check_counts(e.name, e.mode, e.size, e.files, &mut totals)?;
        prev = Some(e.name);
        f(at, e);
    }
    Ok(())
}

impl<'a> TreeObjectRef<'a> {
    /// Parses a tree object, validating names and order (as [`TreeObject::decode`]).
    pub fn decode(bytes: &'a [u8]) -> std::result::Result<TreeObjectRef<'a>, String> {
        let (kind, count, mut b) = header(bytes)?;
        let obj = match kind {
            0 => {
                let mut entries: Vec<EntryRef<'a>> = Vec::with_capacity(count as usize);
                walk_entries(bytes, &mut b, count, |_, e| entries.push(e))?;
                TreeObjectRef::Entries(entries)
            }
            1 => {
                let mut totals = (0u64, 0u64);
                let mut shards = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let id = take_id(&mut b)?;
                    let entries = varint(&mut b)?;
                    let size = varint(&mut b)?;
                    let files = varint(&mut b)?;
                    let len = varint(&mut b)? as usize;
                    let last = take(&mut b, len)?.to_vec();
                    add_totals(&mut totals, size, files)
                        .ok_or("shard sizes or file counts overflow")?;
                    shards.push(Shard {
                        id,
                        entries,
                        size,
                        files,
                        last,
                    });
                }
                TreeObjectRef::Shards(shards)
            }
            k => return Err(format!("unknown tree kind {k}")),
        };
        if !b.is_empty() {
            return Err("trailing bytes after tree".into());
        }
        Ok(obj)
    }
}

/// A flat directory object kept as read, with where each entry starts: two
/// versions of a directory compare entry by entry on their encoded bytes (an
/// entry that did not change is the same bytes), and a name is found by
/// parsing only the entries a binary search visits. Checked as a whole when
/// made, as [`TreeObject::decode`] checks; nothing is copied per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEntries {
    bytes: Vec<u8>,
    /// The offset of each entry, then the end of the last.
    starts: Vec<usize>,
}

impl EncodedEntries {
    /// Checks a tree object as [`TreeObject::decode`] does and keeps it;
    /// `Ok(None)` for a (valid) shard list.
    pub fn decode(bytes: Vec<u8>) -> std::result::Result<Option<EncodedEntries>, String> {
        let (kind, count, mut b) = header(&bytes)?;
        if kind != 0 {
            return TreeObjectRef::decode(&bytes).map(|_| None);
        }
        let mut starts = Vec::with_capacity(count as usize + 1);
        walk_entries(&bytes, &mut b, count, |at, _| starts.push(at))?;
        if !b.is_empty() {
            return Err("trailing bytes after tree".into());
        }
        starts.push(bytes.len());
        Ok(Some(EncodedEntries { bytes, starts }))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `k` as encoded: equal bytes are equal entries (the converse
    /// need not hold, as a varint has longer spellings).
    pub fn raw(&self, k: usize) -> &[u8] {
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&s), Some(&e)) => self.bytes.get(s..e).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Entry `k`, parsed (`None` past the end).
    pub fn entry(&self, k: usize) -> Option<EntryRef<'_>> {
        let mut b = self.bytes.get(*self.starts.get(k)?..)?;
        parse_entry(&mut b, None).ok()
    }

    /// The name of entry `k`, parsing nothing else.
    fn name(&self, k: usize) -> Option<&[u8]> {
        let mut b = self.bytes.get(*self.starts.get(k)?..)?;
        take(&mut b, 1).ok()?;
        let len = varint(&mut b).ok()? as usize;
        take(&mut b, len).ok()
    }

    /// Finds an entry by name.
    pub fn get(&self, name: &[u8]) -> Option<EntryRef<'_>> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid)?.cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.entry(mid),
            }
        }
        None
    }
}

impl TreeObject {
    /// Parses a tree object, validating names and order.
    pub fn decode(bytes: &[u8]) -> std::result::Result<TreeObject, String> {
        Ok(match TreeObjectRef::decode(bytes)? {
            TreeObjectRef::Entries(e) => {
                TreeObject::Entries(e.iter().map(EntryRef::to_entry).collect())
            }
            TreeObjectRef::Shards(s) => TreeObject::Shards(s),
        })
    }
}

impl Tree {
    /// Total bytes of all files in the tree.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Total number of files in the tree.
    pub fn files(&self) -> u64 {
        self.entries.iter().map(|e| e.files).sum()
    }

    /// Finds an entry by name.
    pub fn get(&self, name: &[u8]) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Writes this directory (entries sorted, subtrees already stored) and returns its id.
    pub fn store(self, store: &ObjectStore) -> Result<ObjectId> {
        self.store_with(&mut |bytes| store.put(bytes))
    }

    /// Encodes this directory, handing every object (shards, then the directory) to `put`.
    /// With a hashing-only `put`, this computes the id a stored tree would have.
    pub fn store_with(
        mut self,
        put: &mut dyn FnMut(&[u8]) -> Result<ObjectId>,
    ) -> Result<ObjectId> {
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
        if self.entries.len() <= SHARD_THRESHOLD {
            return put(&encode_entries(&self.entries));
        }
        let mut shards = Vec::new();
        let mut start = 0;
        for i in 0..self.entries.len() {
            let h = blake3::hash(&self.entries[i].name);
            let prefix = u16::from_le_bytes([h.as_bytes()[0], h.as_bytes()[1]]);
            let last = i + 1 == self.entries.len();
            if last || prefix.is_multiple_of(SHARD_DIVISOR) || i + 1 - start >= SHARD_MAX {
                let part = &self.entries[start..=i];
                let id = put(&encode_entries(part))?;
                shards.push(Shard {
                    id,
                    entries: part.len() as u64,
                    size: part.iter().map(|e| e.size).sum(),
                    files: part.iter().map(|e| e.files).sum(),
                    last: part[part.len() - 1].name.clone(),
                });
                start = i + 1;
            }
        }
        put(&encode_shards(&shards))
    }

    /// Reads a directory, joining its shards.
    pub fn load(store: &ObjectStore, id: &ObjectId) -> Result<Tree> {
        match Self::load_object(store, id)? {
            TreeObject::Entries(entries) => Ok(Tree { entries }),
            TreeObject::Shards(shards) => {
                let mut entries = Vec::new();
                for s in shards {
                    match Self::load_object(store, &s.id)? {
                        TreeObject::Entries(mut e) => {
                            // Decoding bounded the sums, so they cannot overflow.
                            let size: u64 = e.iter().map(|e| e.size).sum();
                            let files: u64 = e.iter().map(|e| e.files).sum();
                            if (e.len() as u64, size, files) != (s.entries, s.size, s.files) {
                                return Err(Error::CorruptObject {
                                    id: *id,
                                    reason: format!(
                                        "shard {} claims {} entries, {} bytes and {} files but holds {}, {size} and {files}",
                                        s.id.short(),
                                        s.entries,
                                        s.size,
                                        s.files,
                                        e.len()
                                    ),
                                });
                            }
                            entries.append(&mut e)
                        }
                        TreeObject::Shards(_) => {
                            return Err(Error::CorruptObject {
                                id: s.id,
                                reason: "nested shard list".into(),
                            });
                        }
                    }
                }
                if entries.windows(2).any(|w| w[0].name >= w[1].name) {
                    return Err(Error::CorruptObject {
                        id: *id,
                        reason: "shards out of order".into(),
                    });
                }
                Ok(Tree { entries })
            }
        }
    }

    /// Reads one tree object without joining shards.
    pub fn load_object(store: &ObjectStore, id: &ObjectId) -> Result<TreeObject> {
        let bytes = store.get(id)?;
        TreeObject::decode(&bytes).map_err(|reason| Error::CorruptObject { id: *id, reason })
    }

    /// Calls `f` with the entries of two versions of a directory that are not in
    /// a shard both share, borrowed: flat directories (the usual case) are compared
    /// without copying a name.
    pub fn with_pair_differing<R>(
        store: &ObjectStore,
        a: &ObjectId,
        b: &ObjectId,
        f: impl FnOnce(&[EntryRef<'_>], &[EntryRef<'_>]) -> Result<R>,
    ) -> Result<R> {
        let (bytes_a, bytes_b) = (store.get(a)?, store.get(b)?);
        let corrupt = |id: &ObjectId, reason| Error::CorruptObject { id: *id, reason };
        let ra = TreeObjectRef::decode(&bytes_a).map_err(|r| corrupt(a, r))?;
        let rb = TreeObjectRef::decode(&bytes_b).map_err(|r| corrupt(b, r))?;
        if let (TreeObjectRef::Entries(ea), TreeObjectRef::Entries(eb)) = (&ra, &rb) {
            return f(ea, eb);
        }
        drop((ra, rb));
        let (ta, tb) = Self::load_pair_differing(store, a, b)?;
        f(&ta.entry_refs(), &tb.entry_refs())
    }

    /// The entries, borrowed.
    pub fn entry_refs(&self) -> Vec<EntryRef<'_>> {
        self.entries
            .iter()
            .map(|e| EntryRef {
                name: &e.name,
                mode: e.mode,
                id: e.id,
                size: e.size,
                files: e.files,
            })
            .collect()
    }

    /// Reads two versions of a directory, skipping shards they share.
    /// Returns entries of each side that are not in an identical shard on the other side.
    pub fn load_pair_differing(
        store: &ObjectStore,
        a: &ObjectId,
        b: &ObjectId,
    ) -> Result<(Tree, Tree)> {
        let oa = Self::load_object(store, a)?;
        let ob = Self::load_object(store, b)?;
        match (oa, ob) {
            (TreeObject::Shards(sa), TreeObject::Shards(sb)) => {
                let ids_a: HashSet<ObjectId> = sa.iter().map(|s| s.id).collect();
                let ids_b: HashSet<ObjectId> = sb.iter().map(|s| s.id).collect();
                let load = |shards: &[Shard], other: &HashSet<ObjectId>| -> Result<Tree> {
                    let mut entries = Vec::new();
                    for s in shards.iter().filter(|s| !other.contains(&s.id)) {
                        if let TreeObject::Entries(mut e) = Self::load_object(store, &s.id)? {
                            entries.append(&mut e);
                        }
                    }
                    Ok(Tree { entries })
                };
                Ok((load(&sa, &ids_b)?, load(&sb, &ids_a)?))
            }
            (oa, ob) => {
                let join = |o: TreeObject, id: &ObjectId| -> Result<Tree> {
                    match o {
                        TreeObject::Entries(entries) => Ok(Tree { entries }),
                        TreeObject::Shards(_) => Self::load(store, id),
                    }
                };
                Ok((join(oa, a)?, join(ob, b)?))
            }
        }
    }
}

/// A tree that dsv refuses to build or walk.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A directory nested deeper than [`MAX_DEPTH`] (its path's first 60 bytes).
    #[error("tree too deep: '{0}...' has more than {MAX_DEPTH} path components (the limit)")]
    TooDeep(String),
}

impl crate::error::ModuleError for TreeError {}

crate::error::module_error!(TreeError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(name: &str, n: u8) -> TreeEntry {
        TreeEntry {
            name: name.as_bytes().to_vec(),
            mode: EntryMode::File,
            id: ObjectId([n; 32]),
            size: n as u64,
            files: 1,
        }
    }

    #[test]
    fn entries_round_trip() {
        let e = vec![entry("a", 1), entry("b.txt", 2)];
        assert_eq!(
            TreeObject::decode(&encode_entries(&e)),
            Ok(TreeObject::Entries(e))
        );
    }

    #[test]
    fn rejects_unsafe_names() {
        for bad in ["..", ".", "a/b", ".dsv", ""] {
            let e = vec![entry(bad, 1)];
            assert!(TreeObject::decode(&encode_entries(&e)).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_sizes_no_file_can_hold_and_overflowing_sums() {
        let mut huge = vec![entry("a", 1)];
        huge[0].size = u64::MAX;
        let err = TreeObject::decode(&encode_entries(&huge)).unwrap_err();
        assert!(
            err.contains("entry 'a' claims 18446744073709551615 bytes"),
            "{err}"
        );
        let mut many = vec![entry("a", 1)];
        many[0].files = 2;
        assert!(TreeObject::decode(&encode_entries(&many)).is_err());
        let mut dirs = vec![entry("a", 1), entry("b", 1)];
        for d in &mut dirs {
            d.mode = EntryMode::Dir;
            d.size = u64::MAX / 2 + 1;
        }
        let err = TreeObject::decode(&encode_entries(&dirs)).unwrap_err();
        assert!(err.contains("overflow at entry 'b'"), "{err}");
    }

    #[test]
    fn rejects_unsorted() {
        let e = vec![entry("b", 1), entry("a", 2)];
        assert!(TreeObject::decode(&encode_entries(&e)).is_err());
    }

    /// The bytes after the header of a kind-0 object of `entries`.
    fn body(entries: &[TreeEntry]) -> Vec<u8> {
        let all = encode_entries(entries);
        let mut count = Vec::new();
        put_varint(&mut count, entries.len() as u64);
        all[6 + count.len()..].to_vec()
    }

    #[test]
    fn encoded_entries_compare_on_bytes_and_find_names() {
        let mut e = vec![entry("a", 1), entry("b.txt", 2), entry("c", 3)];
        e[2].size = 1 << 40;
        let enc = EncodedEntries::decode(encode_entries(&e)).unwrap().unwrap();
        assert_eq!(enc.len(), 3);
        for (k, x) in e.iter().enumerate() {
            assert_eq!(enc.entry(k).map(|r| r.to_entry()).as_ref(), Some(x));
            assert_eq!(enc.raw(k), body(std::slice::from_ref(x)), "{k}");
            assert_eq!(enc.get(&x.name).map(|r| r.to_entry()).as_ref(), Some(x));
        }
        for absent in ["", "0", "a0", "b", "b.txu", "d"] {
            assert_eq!(enc.get(absent.as_bytes()), None, "{absent}");
        }
        assert_eq!((enc.entry(3), enc.raw(3)), (None, &[][..]));
        // Equal bytes are equal entries; an entry changed in any field is not.
        let mut other = e.clone();
        other[1].id = ObjectId([9; 32]);
        let enc2 = EncodedEntries::decode(encode_entries(&other))
            .unwrap()
            .unwrap();
        let same: Vec<bool> = (0..3).map(|k| enc.raw(k) == enc2.raw(k)).collect();
        assert_eq!(same, [true, false, true]);
        let changes: [fn(&mut TreeEntry); 3] = [
            |x: &mut TreeEntry| x.size += 1,
            |x: &mut TreeEntry| x.mode = EntryMode::Exec,
            |x: &mut TreeEntry| x.name = b"b.tx".to_vec(),
        ];
        for change in changes {
            let mut other = e.clone();
            change(&mut other[1]);
            let enc2 = EncodedEntries::decode(encode_entries(&other))
                .unwrap()
                .unwrap();
            assert_ne!(enc.raw(1), enc2.raw(1));
        }
        // A longer spelling of the same varint: other bytes, the same entry.
        let mut long = encode_entries(&e[..1]);
        let at = long.len() - 2;
        assert_eq!(long[at], 1);
        long.splice(at..=at, [0x81, 0x00]);
        let enc3 = EncodedEntries::decode(long).unwrap().unwrap();
        assert_ne!(enc3.raw(0), enc.raw(0));
        assert_eq!(enc3.entry(0), enc.entry(0));
        // A shard list is valid but not entries.
        let shards = vec![Shard {
            id: ObjectId([1; 32]),
            entries: 1,
            size: 1,
            files: 1,
            last: b"a".to_vec(),
        }];
        assert_eq!(EncodedEntries::decode(encode_shards(&shards)), Ok(None));
    }

    #[test]
    fn encoded_entries_refuse_what_decode_refuses() {
        let mut hostile: Vec<Vec<u8>> = Vec::new();
        for bad in ["..", ".", "a/b", ".dsv", "", "a\0b", "a\0/"] {
            hostile.push(encode_entries(&[entry(bad, 1)]));
        }
        hostile.push(encode_entries(&[entry("b", 1), entry("a", 2)]));
        hostile.push(encode_entries(&[entry("a", 1), entry("a", 2)]));
        let mut huge = vec![entry("a", 1)];
        huge[0].size = u64::MAX;
        hostile.push(encode_entries(&huge));
        let ok = encode_entries(&[entry("a", 1), entry("b", 2)]);
        hostile.push(ok[..ok.len() - 1].to_vec());
        hostile.push([&ok[..], &[0]].concat());
        for bytes in hostile {
            let want = TreeObject::decode(&bytes).unwrap_err();
            assert_eq!(EncodedEntries::decode(bytes), Err(want));
        }
    }

    proptest! {
        #[test]
        fn encoded_entries_agree_with_decode(bytes in proptest::collection::vec(any::<u8>(), 0..300), names in proptest::collection::btree_set("[a-c./]{1,3}", 0..12), sizes in proptest::collection::vec(any::<u64>(), 12)) {
            let mut with_magic = b"DSVT\x01\x00".to_vec();
            with_magic.extend_from_slice(&bytes);
            let entries: Vec<TreeEntry> = names.iter().zip(&sizes).enumerate().map(|(i, (n, s))| TreeEntry {
                name: n.as_bytes().to_vec(),
                mode: if i % 3 == 0 { EntryMode::Dir } else { EntryMode::File },
                id: ObjectId([i as u8; 32]),
                size: if i % 3 == 0 { *s >> 8 } else { *s >> 4 },
                files: if i % 3 == 0 { *s & 0xff } else { 1 },
            }).collect();
            for b in [bytes, with_magic, encode_entries(&entries)] {
                let got = EncodedEntries::decode(b.clone());
                match TreeObject::decode(&b) {
                    Err(e) => prop_assert_eq!(got, Err(e)),
                    Ok(TreeObject::Shards(_)) => prop_assert_eq!(got, Ok(None)),
                    Ok(TreeObject::Entries(want)) => {
                        let got = got.unwrap().unwrap();
                        prop_assert_eq!(got.len(), want.len());
                        for (k, w) in want.iter().enumerate() {
                            prop_assert_eq!(got.entry(k).map(|r| r.to_entry()), Some(w.clone()));
                            prop_assert_eq!(got.get(&w.name).map(|r| r.to_entry()), Some(w.clone()));
                        }
                        let joined: Vec<u8> = (0..got.len()).flat_map(|k| got.raw(k).to_vec()).collect();
                        prop_assert!(b.ends_with(&joined));
                    }
                }
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = TreeObject::decode(&bytes);
            let mut with_magic = b"DSVT\x01".to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = TreeObject::decode(&with_magic);
        }

        #[test]
        fn shards_round_trip(n in 0usize..20) {
            let shards: Vec<Shard> = (0..n).map(|i| Shard { id: ObjectId([i as u8; 32]), entries: i as u64, size: 7, files: 3, last: format!("n{i}").into_bytes() }).collect();
            prop_assert_eq!(TreeObject::decode(&encode_shards(&shards)), Ok(TreeObject::Shards(shards)));
        }
    }
}
