//! A generator of hostile remotes: remote format 1 (docs/format.md) in the layout
//! of a file remote, written byte by byte with no dsv code in the way, so any
//! object, tree shape, pack, index, ref or marker can be forged.
//!
//! Use: build objects with a [`Forge`] ([`Forge::node`] writes a tree of any
//! shape: deep chains, symlinks, hostile names), then [`Forge::write_pack`] the
//! records into a remote directory and set refs with [`set_ref`] (or
//! [`set_ref_raw`] for forged contents). [`write_marker`] and [`write_head`]
//! make the directory a remote. [`tamper_index`] and [`tamper_pack`] damage what
//! was written.

use std::path::{Path, PathBuf};

use dsv::ObjectId;
use dsv::remote::format::{IdxEntry, PackIndex, marker_bytes};
use dsv::store::pack::{Codec, PACK_MAGIC, RecordHeader, Repr};

/// Entry modes of format-1 trees.
pub const FILE: u8 = 1;
/// Executable file.
#[allow(dead_code)] // No attack forges one yet; kept so the table of modes is whole.
pub const EXEC: u8 = 2;
/// Symlink (the object holds the target).
pub const SYMLINK: u8 = 3;
/// Directory (the object is a tree).
pub const DIR: u8 = 4;

/// A tree of any shape, to be forged into objects.
#[derive(Debug, Clone)]
pub enum Node {
    /// A file with this content.
    File(Vec<u8>),
    /// A symlink to this target (stored as given, never checked here).
    Symlink(Vec<u8>),
    /// A directory: entries as given (names never checked, sorted when written).
    Dir(Vec<(Vec<u8>, Node)>),
}

impl Node {
    /// A directory of one entry.
    pub fn dir1(name: &[u8], child: Node) -> Node {
        Node::Dir(vec![(name.to_vec(), child)])
    }

    /// `depth` nested directories named `name`, with `leaf` at the bottom under
    /// `leaf_name`. Built without recursion, so any depth can be made.
    pub fn chain(depth: usize, name: &[u8], leaf_name: &[u8], leaf: Node) -> Node {
        let mut n = Node::dir1(leaf_name, leaf);
        for _ in 1..depth {
            n = Node::dir1(name, n);
        }
        n
    }
}

/// One entry of a forged tree, exactly as encoded.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Mode byte (see [`FILE`], [`DIR`], ...; any value may be forged).
    pub mode: u8,
    /// Name bytes (not checked).
    pub name: Vec<u8>,
    /// Object id.
    pub id: ObjectId,
    /// Size claimed.
    pub size: u64,
    /// File count claimed.
    pub files: u64,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Objects of a hostile remote, before they are packed.
#[derive(Debug, Default, Clone)]
pub struct Forge {
    /// (id, full record) in the order they will be packed.
    pub records: Vec<(ObjectId, Vec<u8>)>,
}

impl Forge {
    /// An empty forge.
    pub fn new() -> Forge {
        Forge::default()
    }

    /// Adds a raw record stored under `id` (normally the hash of `bytes`).
    pub fn raw_as(&mut self, id: ObjectId, bytes: &[u8]) -> ObjectId {
        let h = RecordHeader {
            repr: Repr::Raw,
            codec: Codec::None,
            id,
            stored_len: bytes.len() as u32,
            raw_len: bytes.len() as u32,
        };
        let mut rec = h.encode().to_vec();
        rec.extend_from_slice(bytes);
        self.records.push((id, rec));
        id
    }

    /// Adds a raw object under its true id.
    pub fn raw(&mut self, bytes: &[u8]) -> ObjectId {
        self.raw_as(ObjectId::hash(bytes), bytes)
    }

    /// A tree object of exactly these entries, in this order.
    pub fn tree(&mut self, entries: &[Entry]) -> ObjectId {
        let mut b = b"DSVT\x01\x00".to_vec();
        varint(&mut b, entries.len() as u64);
        for e in entries {
            b.push(e.mode);
            varint(&mut b, e.name.len() as u64);
            b.extend_from_slice(&e.name);
            b.extend_from_slice(&e.id.0);
            varint(&mut b, e.size);
            varint(&mut b, e.files);
        }
        self.raw(&b)
    }

    /// Forges a node and everything below it: (id, size, files). Iterative, so a
    /// chain of any depth can be written.
    pub fn node(&mut self, node: &Node) -> (ObjectId, u64, u64) {
        enum Step<'a> {
            Enter(&'a Node),
            Close(&'a [(Vec<u8>, Node)]),
        }
        let mut stack = vec![Step::Enter(node)];
        // Results of finished nodes, in visiting order.
        let mut done: Vec<(ObjectId, u64, u64, u8)> = Vec::new();
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(Node::File(data)) => {
                    let id = self.raw(data);
                    done.push((id, data.len() as u64, 1, FILE));
                }
                Step::Enter(Node::Symlink(target)) => {
                    let id = self.raw(target);
                    done.push((id, target.len() as u64, 1, SYMLINK));
                }
                Step::Enter(Node::Dir(children)) => {
                    stack.push(Step::Close(children));
                    for (_, c) in children.iter().rev() {
                        stack.push(Step::Enter(c));
                    }
                }
                Step::Close(children) => {
                    let parts = done.split_off(done.len() - children.len());
                    let mut entries: Vec<Entry> = children
                        .iter()
                        .zip(parts)
                        .map(|((name, _), (id, size, files, mode))| Entry {
                            mode,
                            name: name.clone(),
                            id,
                            size,
                            files,
                        })
                        .collect();
                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                    let size = entries.iter().map(|e| e.size).sum();
                    let files = entries.iter().map(|e| e.files).sum();
                    let id = self.tree(&entries);
                    done.push((id, size, files, DIR));
                }
            }
        }
        let (id, size, files, _) = done.pop().expect("one root");
        (id, size, files)
    }

    /// A commit of `tree` with these parents.
    pub fn commit(&mut self, tree: ObjectId, parents: &[ObjectId], message: &str) -> ObjectId {
        let parents: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
        let c = serde_json::json!({
            "format": 1, "tree": tree.to_string(), "parents": parents,
            "author": {"name": "x", "email": "x@y"}, "time": 1, "tz_offset_min": 0,
            "message": message, "summary": {"files": 1, "bytes": 1}
        });
        self.raw(c.to_string().as_bytes())
    }

    /// A commit of a whole tree shape.
    pub fn commit_node(&mut self, root: &Node, parents: &[ObjectId]) -> ObjectId {
        let (tree, _, _) = self.node(root);
        self.commit(tree, parents, "forged\n")
    }

    /// Writes the records as one pack and its index under `remote/packs/`;
    /// returns the pack's name. The forge is emptied (the next pack starts afresh).
    pub fn write_pack(&mut self, remote: &Path) -> ObjectId {
        std::fs::create_dir_all(remote.join("packs")).unwrap();
        let mut pack = PACK_MAGIC.to_vec();
        let mut entries = Vec::new();
        for (id, rec) in std::mem::take(&mut self.records) {
            entries.push(IdxEntry {
                id,
                offset: pack.len() as u64,
                len: rec.len() as u32,
            });
            pack.extend_from_slice(&rec);
        }
        entries.sort_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        let name = ObjectId::hash(&pack);
        let idx = PackIndex {
            pack: name,
            pack_len: pack.len() as u64,
            entries,
        };
        std::fs::write(pack_path(remote, &name), &pack).unwrap();
        std::fs::write(idx_path(remote, &name), idx.encode()).unwrap();
        name
    }
}

/// `remote/packs/<name>.dsvpack`.
pub fn pack_path(remote: &Path, name: &ObjectId) -> PathBuf {
    remote.join(format!("packs/{name}.dsvpack"))
}

/// `remote/packs/<name>.idx`.
pub fn idx_path(remote: &Path, name: &ObjectId) -> PathBuf {
    remote.join(format!("packs/{name}.idx"))
}

/// Writes the `dsv-remote` marker of remote format 1.
pub fn write_marker(remote: &Path) {
    std::fs::create_dir_all(remote).unwrap();
    std::fs::write(remote.join("dsv-remote"), marker_bytes()).unwrap();
}

/// Writes the remote's `HEAD` object naming the default branch.
pub fn write_head(remote: &Path, branch: &str) {
    std::fs::write(
        remote.join("HEAD"),
        serde_json::json!({ "branch": branch }).to_string(),
    )
    .unwrap();
}

/// Directory of a branch's sequence files, for any name bytes (a file remote).
pub fn ref_dir(remote: &Path, branch: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    remote
        .join("refs/heads")
        .join(std::ffi::OsStr::from_bytes(branch))
}

/// Sets a branch to `commit` (a new sequence file above any existing one).
pub fn set_ref(remote: &Path, branch: &[u8], commit: ObjectId) {
    set_ref_raw(
        remote,
        branch,
        format!(r#"{{"commit":"{commit}"}}"#).as_bytes(),
    );
}

/// Sets a branch to forged bytes.
pub fn set_ref_raw(remote: &Path, branch: &[u8], contents: &[u8]) {
    let dir = ref_dir(remote, branch);
    std::fs::create_dir_all(&dir).unwrap();
    let next = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    std::fs::write(dir.join(format!("{next:020}")), contents).unwrap();
}

/// Rewrites a pack's index through `tamper` (the checksum is recomputed, so
/// only the tampered field is wrong).
pub fn tamper_index(remote: &Path, pack: &ObjectId, tamper: impl FnOnce(&mut PackIndex)) {
    let path = idx_path(remote, pack);
    let mut idx = PackIndex::decode(&std::fs::read(&path).unwrap()).unwrap();
    tamper(&mut idx);
    std::fs::write(&path, idx.encode()).unwrap();
}

/// Rewrites a pack's index bytes through `tamper` (raw: checksum not recomputed).
pub fn tamper_index_bytes(remote: &Path, pack: &ObjectId, tamper: impl FnOnce(&mut Vec<u8>)) {
    let path = idx_path(remote, pack);
    let mut bytes = std::fs::read(&path).unwrap();
    tamper(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
}

/// Rewrites a pack's bytes through `tamper` (its name stays).
pub fn tamper_pack(remote: &Path, pack: &ObjectId, tamper: impl FnOnce(&mut Vec<u8>)) {
    let path = pack_path(remote, pack);
    let mut bytes = std::fs::read(&path).unwrap();
    tamper(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
}

/// A file of `len` bytes of `byte`, written without holding it in memory.
pub fn write_huge(path: &Path, len: u64, byte: u8) {
    write_huge_after(path, b"", len, byte);
}

/// A file of `prefix` then `len` bytes of `byte` (a huge JSON string, say).
pub fn write_huge_after(path: &Path, prefix: &[u8], len: u64, byte: u8) {
    use std::io::Write;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(prefix).unwrap();
    let block = vec![byte; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// A file of `len` zero bytes that takes no disk space (sparse).
pub fn write_sparse(path: &Path, len: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Every path below `dir` (files, links and directories) with the content of
/// files and the target of links, skipping the subtrees named in `skip` (paths
/// relative to `dir`). Used to prove that nothing was written outside a target.
pub fn tree_snapshot(dir: &Path, skip: &[&str]) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    super::walk(
        dir,
        |rel| skip.contains(&rel),
        |rel, p, m| {
            if m.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(p).unwrap();
                out.push((rel.to_string(), t.as_os_str().as_bytes().to_vec()));
            } else {
                out.push((rel.to_string(), std::fs::read(p).unwrap_or_default()));
            }
        },
    );
    out.sort();
    out
}
