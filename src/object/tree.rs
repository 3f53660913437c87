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
    if name.contains(&b'/') {
        return Err("'/' inside a name");
    }
    if name.contains(&0) {
        return Err("NUL inside a name");
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

impl<'a> TreeObjectRef<'a> {
    /// Parses a tree object, validating names and order (as [`TreeObject::decode`]).
    pub fn decode(bytes: &'a [u8]) -> std::result::Result<TreeObjectRef<'a>, String> {
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
        // Sizes and file counts are trusted by listings and summed by every walk:
        // what no object could hold, or a sum that overflows, is refused here.
        let mut totals = (0u64, 0u64);
        let obj = match kind {
            0 => {
                let mut entries: Vec<EntryRef<'a>> = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let mode_code = take(&mut b, 1)?[0];
                    let mode = EntryMode::from_code(mode_code)
                        .ok_or_else(|| format!("unknown entry mode {mode_code}"))?;
                    let len = varint(&mut b)? as usize;
                    let name = take(&mut b, len)?;
                    check_name(name).map_err(|r| {
                        // Quoted short: a hostile name can be megabytes of anything.
                        format!("bad entry name '{}': {r}", crate::quote::bytes(name))
                    })?;
                    if let Some(prev) = entries.last()
                        && prev.name >= name
                    {
                        return Err("entries not sorted or duplicated".into());
                    }
                    let id = take_id(&mut b)?;
                    let size = varint(&mut b)?;
                    let files = varint(&mut b)?;
                    check_counts(name, mode, size, files, &mut totals)?;
                    entries.push(EntryRef {
                        name,
                        mode,
                        id,
                        size,
                        files,
                    });
                }
                TreeObjectRef::Entries(entries)
            }
            1 => {
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

    proptest! {
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
