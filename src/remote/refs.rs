//! Branch refs on a remote, updated with compare-and-swap.
//!
//! Two implementations behind [`RefStore`], chosen by what the backend can do:
//!
//! * [`ConditionalRefs`] (S3, GCS, Azure, in-memory): `refs/heads/NAME` holds
//!   `{"commit":"<hex>"}`. A read returns the object's ETag/version; an update is
//!   `PutMode::Update` with that version, a new branch is `PutMode::Create`. The
//!   store rejects the write (`Precondition` / `AlreadyExists`) if anyone changed
//!   the ref in between.
//! * [`SequenceRefs`] (local file system, which has no conditional update): every
//!   value of a branch is a new file `refs/heads/NAME/<20-digit seq>` created with
//!   `PutMode::Create` (a hard link of a staged file, which fails if the name
//!   exists, so it is atomic). The current value is the highest sequence number;
//!   a CAS from the value read at `N` creates `N+1`, which only one writer can win.
//!   Old sequence files are kept (a few bytes each): deleting them could race with
//!   a reader that just listed them.
//!
//! A delete is a compare-and-swap too: the ref gets a tombstone value,
//! `{"deleted":true}` (no backend deletes an object conditionally). Reads and
//! listings treat a tombstone as absent, and creating the ref again replaces the
//! tombstone by the same compare-and-swap. The same stores hold tags, under
//! `refs/tags/` ([`RefKind`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutMode, PutOptions, UpdateVersion};

use crate::error::{Error, Result};
use crate::id::ObjectId;

/// Digits of a sequence file name.
pub const SEQ_DIGITS: usize = 20;

/// What a read saw, to be handed back to [`RefStore::cas`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefToken {
    /// ETag / version of the ref object.
    Version(UpdateVersion),
    /// Highest sequence number.
    Seq(u64),
}

/// How a compare-and-swap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// The ref now holds the new value.
    Updated,
    /// Someone else changed the ref since it was read; nothing was written.
    Conflict,
}

/// A remote branch a listing set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The branch name (control characters escaped, cut short if very long).
    pub branch: String,
    /// Why it cannot be used.
    pub reason: String,
}

/// A remote's branches as a client can use them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Usable branches with their commits, sorted by name.
    pub branches: Vec<(String, ObjectId)>,
    /// Branches set aside: an invalid name, a value that is not a ref, or a name
    /// that clashes with another branch (`a` and `a/b`).
    pub skipped: Vec<Skipped>,
}

/// A branch's listed value: its commit, or why it cannot be read.
pub type Value = std::result::Result<ObjectId, String>;

/// The value listed for a branch whose name is invalid: it is skipped for its
/// name, so its value is never downloaded.
const NOT_READ: &str = "not read (invalid name)";

/// Which refs of a remote a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefKind {
    /// Branches, under `refs/heads/`.
    #[default]
    Branch,
    /// Tags, under `refs/tags/`.
    Tag,
}

impl RefKind {
    /// Key prefix under the remote's prefix (no trailing `/`).
    pub fn prefix(self) -> &'static str {
        match self {
            RefKind::Branch => "refs/heads",
            RefKind::Tag => "refs/tags",
        }
    }

    /// The word for messages.
    pub fn word(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }
}

/// Branch (or tag) refs of one remote.
pub trait RefStore: Send + Sync {
    /// The ref's commit and the token to update it, or `None` if it does not exist
    /// (or was deleted).
    fn read(&self, branch: &str) -> Result<Option<(ObjectId, RefToken)>>;
    /// Sets the ref to `new` if it still is what `expected` saw (`None`: absent or
    /// deleted; a tombstone is replaced by compare-and-swap on its own version).
    fn cas(&self, branch: &str, expected: Option<&RefToken>, new: ObjectId) -> Result<Cas>;
    /// Deletes the ref (writes its tombstone) if it still is what `expected` saw.
    fn delete(&self, branch: &str, expected: &RefToken) -> Result<Cas>;
    /// Every branch with its value, sorted by name; names are not checked. A value
    /// that is too large or malformed is an `Err` for that branch alone.
    fn list_values(&self) -> Result<Vec<(String, Value)>>;
    /// Every branch name, from listings alone (no value is read); not checked.
    fn names(&self) -> Result<Vec<String>>;
    /// Every branch, with those a client cannot use set aside ([`sort_out`]).
    fn list(&self) -> Result<Listing> {
        Ok(sort_out(self.list_values()?, &[]))
    }
}

/// Whether two branch names cannot both exist as refs (one is a directory of the other).
pub fn names_conflict(a: &str, b: &str) -> bool {
    let nested = |short: &str, long: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b'/'
    };
    nested(a, b) || nested(b, a)
}

/// Splits listed branches into usable ones and skipped ones: an invalid name
/// (which could not be a local ref, or could mean a path outside it), an unreadable
/// value, or a name clashing with a branch kept before it. Names in `prefer` (the
/// branches a mirror already tracks) are kept first, then the rest in name order,
/// so of `a` and `a/b` the one already fetched, else `a`, wins.
pub fn sort_out(values: Vec<(String, Value)>, prefer: &[String]) -> Listing {
    let mut out = Listing::default();
    let mut candidates: Vec<(String, ObjectId)> = Vec::new();
    for (name, value) in values {
        if let Err(e) = check_remote_branch(&name) {
            let reason = match e {
                Error::InvalidName { reason, .. } => format!("invalid branch name: {reason}"),
                e => e.to_string(),
            };
            out.skipped.push(Skipped {
                branch: crate::quote::short(&name),
                reason,
            });
            continue;
        }
        match value {
            Ok(id) => candidates.push((name, id)),
            Err(reason) => out.skipped.push(Skipped {
                branch: name,
                reason,
            }),
        }
    }
    candidates.sort();
    let preferred: std::collections::HashSet<&str> = prefer.iter().map(String::as_str).collect();
    let (first, rest): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|(n, _)| preferred.contains(n.as_str()));
    let mut kept: std::collections::BTreeSet<String> = Default::default();
    for (name, id) in first.into_iter().chain(rest) {
        // A kept branch that is a directory above this one, or one below it.
        let above = name
            .match_indices('/')
            .map(|(i, _)| &name[..i])
            .find(|p| kept.contains(*p))
            .map(str::to_string);
        let dir = format!("{name}/");
        let below = || {
            kept.range(dir.clone()..)
                .next()
                .filter(|k| k.starts_with(&dir))
                .cloned()
        };
        let clash = above.or_else(below);
        match clash {
            Some(k) => out.skipped.push(Skipped {
                branch: name,
                reason: format!(
                    "conflicts with branch '{k}' (a branch cannot also be a directory of branches; rename one of them on the remote)"
                ),
            }),
            None => {
                kept.insert(name.clone());
                out.branches.push((name, id));
            }
        }
    }
    out.branches.sort();
    out.skipped.sort_by(|a, b| a.branch.cmp(&b.branch));
    out
}

/// Parses a remote ref object (`{"commit":"<hex>"}`); the error quotes only the
/// start of what it holds. A tombstone is an error here (see [`parse_ref_slot`]).
pub fn parse_ref_object(bytes: &[u8]) -> Value {
    match parse_ref_slot(bytes)? {
        Some(id) => Ok(id),
        None => Err("deleted (tombstone)".to_string()),
    }
}

/// The exact bytes of a deleted ref.
pub const TOMBSTONE: &[u8] = b"{\"deleted\":true}";

/// Parses a remote ref object: `Some(commit)`, or `None` for a tombstone.
pub fn parse_ref_slot(bytes: &[u8]) -> std::result::Result<Option<ObjectId>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Slot {
        Value { commit: ObjectId },
        Deleted { deleted: bool },
    }
    match serde_json::from_slice::<Slot>(bytes) {
        Ok(Slot::Value { commit }) => Ok(Some(commit)),
        Ok(Slot::Deleted { deleted: true }) => Ok(None),
        _ => Err(format!(
            "malformed ref (expected {{\"commit\":\"<64 hex digits>\"}}, found '{}')",
            super::quote_prefix(bytes)
        )),
    }
}

/// A ref object as read: its commit, a tombstone (`Ok(None)`), or why it cannot be used.
type Slot = std::result::Result<Option<ObjectId>, String>;

/// Shared plumbing: the store, the key prefix, and a runtime handle to block on.
#[derive(Clone)]
pub struct Ctx {
    /// The backend.
    pub store: Arc<dyn ObjectStore>,
    /// Key prefix of the remote.
    pub base: StorePath,
    /// Runtime that drives the async calls.
    pub rt: tokio::runtime::Handle,
    /// Remote name for messages.
    pub name: String,
    /// Request counters of the owning remote.
    pub(crate) counters: Arc<super::Counters>,
    /// Branches or tags.
    pub kind: RefKind,
}

impl Ctx {
    fn path(&self, parts: &[&str]) -> StorePath {
        let mut p = self.base.clone();
        for part in parts {
            for seg in part.split('/').filter(|s| !s.is_empty()) {
                p = p.clone().join(seg);
            }
        }
        p
    }

    fn err(&self, what: &str, e: object_store::Error) -> Error {
        Error::Remote {
            remote: self.name.clone(),
            message: format!("{what}: {}", super::safe_message(&e)),
        }
    }

    /// Reads and parses one ref object (`None`: absent). A value that is too large
    /// (not read) or malformed is the inner `Err`; a failed request the outer one.
    fn value(&self, path: &StorePath) -> Result<Option<(Slot, object_store::ObjectMeta)>> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let cap = super::MAX_METADATA_OBJECT;
        let r = self
            .rt
            .block_on(super::get_capped(self.store.as_ref(), path, cap));
        match r {
            Ok(super::Capped::Bytes(bytes, meta)) => {
                self.counters
                    .down
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(Some((parse_ref_slot(&bytes), meta)))
            }
            Ok(super::Capped::TooLarge(n)) => {
                let meta = object_store::ObjectMeta {
                    location: path.clone(),
                    last_modified: Default::default(),
                    size: n,
                    e_tag: None,
                    version: None,
                };
                Ok(Some((
                    Err(format!(
                        "ref object is {n} bytes, more than the {cap} a ref may have; not read"
                    )),
                    meta,
                )))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("reading {path}"), e)),
        }
    }

    /// Reads and parses a ref sequence file of a local remote (capped like [`Ctx::value`]).
    fn file_value(&self, file: &std::path::Path) -> Result<Slot> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let cap = super::MAX_METADATA_OBJECT;
        let bytes = crate::refs::read_capped(file, cap).map_err(|e| Error::Remote {
            remote: self.name.clone(),
            message: format!("reading {}: {e}", file.display()),
        })?;
        self.counters
            .down
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if bytes.len() as u64 > cap {
            let n = std::fs::metadata(file).map_or(0, |m| m.len());
            return Ok(Err(format!(
                "ref object is {n} bytes, more than the {cap} a ref may have; not read"
            )));
        }
        Ok(parse_ref_slot(&bytes))
    }

    /// [`Ctx::value`] for a read that needs the commit: a bad value is an error,
    /// a tombstone `None`.
    fn required(&self, branch: &str, value: Slot) -> Result<Option<ObjectId>> {
        value.map_err(|m| Error::Remote {
            remote: self.name.clone(),
            message: format!(
                "ref {}/{}: {m}",
                self.kind.prefix(),
                crate::quote::short(branch)
            ),
        })
    }

    fn list_all(&self, prefix: &StorePath) -> Result<Vec<object_store::ObjectMeta>> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        let r = self
            .rt
            .block_on(self.store.list(Some(prefix)).try_collect::<Vec<_>>());
        match r {
            Ok(v) => Ok(v),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(self.err(&format!("listing {prefix}"), e)),
        }
    }

    fn put(&self, path: &StorePath, bytes: Vec<u8>, mode: PutMode) -> Result<Cas> {
        self.counters.puts.fetch_add(1, Ordering::Relaxed);
        self.counters
            .up
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .rt
            .block_on(self.store.put_opts(path, bytes.into(), opts))
        {
            Ok(_) => Ok(Cas::Updated),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Cas::Conflict),
            Err(e) => Err(self.err(&format!("writing {path}"), e)),
        }
    }
}

fn value_bytes(commit: ObjectId) -> Vec<u8> {
    format!("{{\"commit\":\"{commit}\"}}").into_bytes()
}

/// A listed value for [`RefStore::list_values`]: `None` for a tombstone (not listed).
fn listed(slot: Slot) -> Option<Value> {
    match slot {
        Ok(Some(id)) => Some(Ok(id)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Refs on a store with conditional update (ETag / version).
pub struct ConditionalRefs(pub Ctx);

impl ConditionalRefs {
    /// The ref's value (`None`: tombstone) and version, `None` when absent.
    fn slot(&self, branch: &str) -> Result<Option<(Option<ObjectId>, UpdateVersion)>> {
        let path = self.0.path(&[self.0.kind.prefix(), branch]);
        let Some((value, meta)) = self.0.value(&path)? else {
            return Ok(None);
        };
        let id = self.0.required(branch, value)?;
        Ok(Some((
            id,
            UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            },
        )))
    }

    fn version(token: &RefToken) -> Result<PutMode> {
        match token {
            RefToken::Version(v) => Ok(PutMode::Update(v.clone())),
            RefToken::Seq(_) => Err(Error::Internal(
                "sequence token for a conditional ref store".into(),
            )),
        }
    }
}

impl RefStore for ConditionalRefs {
    fn read(&self, branch: &str) -> Result<Option<(ObjectId, RefToken)>> {
        Ok(match self.slot(branch)? {
            Some((Some(id), v)) => Some((id, RefToken::Version(v))),
            _ => None,
        })
    }

    fn cas(&self, branch: &str, expected: Option<&RefToken>, new: ObjectId) -> Result<Cas> {
        let path = self.0.path(&[self.0.kind.prefix(), branch]);
        let mode = match expected {
            None => PutMode::Create,
            Some(t) => Self::version(t)?,
        };
        match self.0.put(&path, value_bytes(new), mode)? {
            // Absent may mean deleted: a tombstone is replaced on its own version,
            // so of two creators only one wins.
            Cas::Conflict if expected.is_none() => match self.slot(branch)? {
                Some((None, v)) => self.0.put(&path, value_bytes(new), PutMode::Update(v)),
                _ => Ok(Cas::Conflict),
            },
            c => Ok(c),
        }
    }

    fn delete(&self, branch: &str, expected: &RefToken) -> Result<Cas> {
        let path = self.0.path(&[self.0.kind.prefix(), branch]);
        self.0
            .put(&path, TOMBSTONE.to_vec(), Self::version(expected)?)
    }

    fn list_values(&self) -> Result<Vec<(String, Value)>> {
        let base = self.0.path(&[self.0.kind.prefix()]);
        let mut out = Vec::new();
        for meta in self.0.list_all(&base)? {
            let Some(name) = relative(&base, &meta.location) else {
                continue;
            };
            if check_remote_branch(&name).is_err() {
                out.push((name, Err(NOT_READ.to_string())));
            } else if let Some((value, _)) = self.0.value(&meta.location)?
                && let Some(value) = listed(value)
            {
                out.push((name, value));
            }
        }
        out.sort();
        Ok(out)
    }

    fn names(&self) -> Result<Vec<String>> {
        let base = self.0.path(&[self.0.kind.prefix()]);
        let mut out: Vec<String> = self
            .0
            .list_all(&base)?
            .iter()
            .filter_map(|m| relative(&base, &m.location))
            .collect();
        out.sort();
        Ok(out)
    }
}

/// `location` relative to `base`, `/`-joined.
fn relative(base: &StorePath, location: &StorePath) -> Option<String> {
    let parts: Vec<String> = location
        .prefix_match(base)?
        .map(|p| p.as_ref().to_string())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Refs as append-only sequences of files (for stores without conditional update).
/// The second field is the directory the remote's keys live in: listings walk it
/// directly, so one branch directory whose name the object store cannot express
/// (a control character, not UTF-8) is skipped instead of failing every listing.
pub struct SequenceRefs(pub Ctx, pub std::path::PathBuf);

fn parse_seq(name: &str) -> Option<u64> {
    (name.len() == SEQ_DIGITS && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// The newest sequence file of a branch, and whether its name is UTF-8.
struct Head {
    seq: u64,
    file: std::path::PathBuf,
    utf8: bool,
}

impl SequenceRefs {
    /// Highest sequence file of every branch under `refs/heads`.
    fn heads(&self) -> Result<std::collections::BTreeMap<String, Head>> {
        let base = self.1.join(self.0.kind.prefix());
        self.0.counters.lists.fetch_add(1, Ordering::Relaxed);
        let io = |what: &std::path::Path, e: std::io::Error| Error::Remote {
            remote: self.0.name.clone(),
            message: format!("listing {}: {e}", what.display()),
        };
        let mut best: std::collections::BTreeMap<String, Head> = Default::default();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| io(&dir, e))?;
                let ft = ent.file_type().map_err(|e| io(&ent.path(), e))?;
                if ft.is_dir() {
                    stack.push(ent.path());
                    continue;
                }
                let Some(seq) = ent.file_name().to_str().and_then(parse_seq) else {
                    continue;
                };
                if !ft.is_file() {
                    continue;
                }
                let rel = dir.strip_prefix(&base).unwrap_or(&dir);
                if rel.as_os_str().is_empty() {
                    continue;
                }
                let branch = rel.to_string_lossy().into_owned();
                let e = best.entry(branch).or_insert(Head {
                    seq: 0,
                    file: ent.path(),
                    utf8: rel.to_str().is_some(),
                });
                if seq >= e.seq {
                    e.seq = seq;
                    e.file = ent.path();
                }
            }
        }
        Ok(best)
    }
}

impl SequenceRefs {
    /// The newest value of a ref (`None`: tombstone) and its sequence number,
    /// `None` when the ref has no sequence file.
    fn slot(&self, branch: &str) -> Result<Option<(Option<ObjectId>, u64)>> {
        let dir = self.0.path(&[self.0.kind.prefix(), branch]);
        self.0.counters.lists.fetch_add(1, Ordering::Relaxed);
        let listed = self
            .0
            .rt
            .block_on(self.0.store.list_with_delimiter(Some(&dir)));
        let objects = match listed {
            Ok(l) => l.objects,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(self.0.err(&format!("listing {dir}"), e)),
        };
        let Some((seq, path)) = objects
            .iter()
            .filter_map(|m| Some((parse_seq(m.location.filename()?)?, m.location.clone())))
            .max_by_key(|(s, _)| *s)
        else {
            return Ok(None);
        };
        let Some((value, _)) = self.0.value(&path)? else {
            return Err(Error::Remote {
                remote: self.0.name.clone(),
                message: format!("ref file {path} vanished while being read"),
            });
        };
        Ok(Some((self.0.required(branch, value)?, seq)))
    }

    /// Creates sequence file `next` of the ref with `bytes`.
    fn create(&self, branch: &str, next: u64, bytes: Vec<u8>) -> Result<Cas> {
        let name = format!("{next:0width$}", width = SEQ_DIGITS);
        let path = self.0.path(&[self.0.kind.prefix(), branch, &name]);
        self.0.put(&path, bytes, PutMode::Create)
    }

    fn seq(token: &RefToken) -> Result<u64> {
        match token {
            RefToken::Seq(n) => Ok(*n),
            RefToken::Version(_) => Err(Error::Internal(
                "version token for a sequence ref store".into(),
            )),
        }
    }
}

impl RefStore for SequenceRefs {
    fn read(&self, branch: &str) -> Result<Option<(ObjectId, RefToken)>> {
        Ok(match self.slot(branch)? {
            Some((Some(id), seq)) => Some((id, RefToken::Seq(seq))),
            _ => None,
        })
    }

    fn cas(&self, branch: &str, expected: Option<&RefToken>, new: ObjectId) -> Result<Cas> {
        let next = match expected {
            // Absent or deleted: the file after the tombstone, which only one
            // creator can make.
            None => match self.slot(branch)? {
                None => 1,
                Some((None, seq)) => seq + 1,
                Some((Some(_), _)) => return Ok(Cas::Conflict),
            },
            Some(t) => Self::seq(t)? + 1,
        };
        self.create(branch, next, value_bytes(new))
    }

    fn delete(&self, branch: &str, expected: &RefToken) -> Result<Cas> {
        self.create(branch, Self::seq(expected)? + 1, TOMBSTONE.to_vec())
    }

    fn list_values(&self) -> Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        for (branch, head) in self.heads()? {
            let value = if !head.utf8 {
                Err("its name is not UTF-8".to_string())
            } else if check_remote_branch(&branch).is_err() {
                Err(NOT_READ.to_string())
            } else {
                match listed(self.0.file_value(&head.file)?) {
                    Some(v) => v,
                    None => continue,
                }
            };
            out.push((branch, value));
        }
        Ok(out)
    }

    fn names(&self) -> Result<Vec<String>> {
        Ok(self.heads()?.into_keys().collect())
    }
}

/// A branch name that the sequence layout could confuse with a sequence file.
pub fn check_remote_branch(name: &str) -> Result<()> {
    crate::refs::check_ref_name("branch", name)?;
    if name.split('/').any(|c| parse_seq(c).is_some()) {
        return Err(Error::InvalidName {
            kind: "remote branch",
            name: name.to_string(),
            reason: "a component of 20 digits would clash with ref sequence files",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(store: Arc<dyn ObjectStore>, rt: &tokio::runtime::Runtime) -> Ctx {
        Ctx {
            store,
            base: StorePath::from("pre/fix"),
            rt: rt.handle().clone(),
            name: "test".into(),
            counters: Default::default(),
            kind: RefKind::Branch,
        }
    }

    /// Two writers read the same value; only the first CAS may land.
    fn cas_semantics(refs: &dyn RefStore) {
        let (a, b, c) = (ObjectId([1; 32]), ObjectId([2; 32]), ObjectId([3; 32]));
        assert_eq!(refs.read("main").unwrap(), None);
        assert_eq!(refs.cas("main", None, a).unwrap(), Cas::Updated);
        assert_eq!(refs.cas("main", None, b).unwrap(), Cas::Conflict);
        let (v, t1) = refs.read("main").unwrap().unwrap();
        assert_eq!(v, a);
        let (_, t2) = refs.read("main").unwrap().unwrap();
        assert_eq!(refs.cas("main", Some(&t1), b).unwrap(), Cas::Updated);
        assert_eq!(refs.cas("main", Some(&t2), c).unwrap(), Cas::Conflict);
        assert_eq!(refs.read("main").unwrap().unwrap().0, b);
        assert_eq!(refs.cas("feature/x", None, c).unwrap(), Cas::Updated);
        assert_eq!(
            refs.list().unwrap().branches,
            vec![("feature/x".to_string(), c), ("main".to_string(), b)]
        );
        assert_eq!(refs.names().unwrap(), vec!["feature/x", "main"]);
        // A delete is a compare-and-swap to a tombstone, which reads as absent.
        assert_eq!(refs.delete("main", &t1).unwrap(), Cas::Conflict);
        let (_, t3) = refs.read("main").unwrap().unwrap();
        assert_eq!(refs.delete("main", &t3).unwrap(), Cas::Updated);
        assert_eq!(refs.read("main").unwrap(), None);
        assert_eq!(
            refs.list().unwrap().branches,
            vec![("feature/x".to_string(), c)]
        );
        // Creating it again replaces the tombstone; of two creators only one wins.
        assert_eq!(refs.cas("main", None, a).unwrap(), Cas::Updated);
        assert_eq!(refs.cas("main", None, c).unwrap(), Cas::Conflict);
        assert_eq!(refs.read("main").unwrap().unwrap().0, a);
    }

    #[test]
    fn conditional_refs_in_memory() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        cas_semantics(&ConditionalRefs(ctx(store, &rt)));
    }

    #[test]
    fn conditional_listing_sets_aside_what_it_cannot_use() {
        use object_store::ObjectStoreExt;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let refs = ConditionalRefs(ctx(store.clone(), &rt));
        let id = ObjectId([4; 32]);
        assert_eq!(refs.cas("main", None, id).unwrap(), Cas::Updated);
        assert_eq!(refs.cas("a", None, id).unwrap(), Cas::Updated);
        let put = |key: &str, bytes: Vec<u8>| {
            rt.block_on(store.put(
                &StorePath::from(format!("pre/fix/refs/heads/{key}")),
                bytes.into(),
            ))
            .unwrap();
        };
        put("-x", value_bytes(id));
        put("a/b", value_bytes(id));
        put("garbage", b"\x1b[2J".to_vec());
        put("huge", vec![b'a'; 1 << 20]);
        let l = refs.list().unwrap();
        assert_eq!(
            l.branches,
            vec![("a".to_string(), id), ("main".to_string(), id)]
        );
        let skipped: Vec<(&str, &str)> = l
            .skipped
            .iter()
            .map(|s| (s.branch.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert!(skipped[0].0 == "-x" && skipped[0].1.starts_with("invalid branch name"));
        assert!(skipped[1].0 == "a/b" && skipped[1].1.contains("conflicts with branch 'a'"));
        assert!(skipped[2].0 == "garbage" && skipped[2].1.contains("\\u{1b}[2J"));
        assert!(skipped[3].0 == "huge" && skipped[3].1.contains("1048576 bytes"));
        // A damaged ref read for a push is an error naming it.
        let e = refs.read("garbage").unwrap_err().to_string();
        assert!(e.contains("ref refs/heads/garbage: malformed ref"), "{e}");
    }

    #[test]
    fn sequence_refs_on_the_local_file_system() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        cas_semantics(&SequenceRefs(ctx(store, &rt), dir.path().join("pre/fix")));
        // Every value is kept as its own sequence file.
        let files = std::fs::read_dir(dir.path().join("pre/fix/refs/heads/main"))
            .unwrap()
            .count();
        assert_eq!(files, 4);
    }

    #[test]
    fn listings_set_aside_bad_names_values_and_clashes() {
        let id = ObjectId([1; 32]);
        let values = vec![
            ("a".to_string(), Ok(id)),
            ("a/b".to_string(), Ok(id)),
            ("a-b".to_string(), Ok(id)),
            ("c/d".to_string(), Ok(id)),
            ("c".to_string(), Ok(id)),
            ("-x".to_string(), Ok(id)),
            ("bad".to_string(), Err("malformed".to_string())),
        ];
        let l = sort_out(values.clone(), &[]);
        let kept: Vec<&str> = l.branches.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["a", "a-b", "c"]);
        let skipped: Vec<&str> = l.skipped.iter().map(|s| s.branch.as_str()).collect();
        assert_eq!(skipped, ["-x", "a/b", "bad", "c/d"]);
        // What a mirror already tracks wins.
        let l = sort_out(values, &["a/b".to_string()]);
        let kept: Vec<&str> = l.branches.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["a-b", "a/b", "c"]);
    }

    proptest::proptest! {
        #[test]
        fn sort_out_keeps_only_valid_names_that_never_clash(
            names in proptest::collection::vec("[a-c./-]{1,6}", 0..12),
            prefer in proptest::collection::vec("[a-c./-]{1,6}", 0..3),
        ) {
            let n = names.len();
            let values = names
                .into_iter()
                .map(|n| (n, Ok(ObjectId([2; 32]))))
                .collect();
            let l = sort_out(values, &prefer);
            proptest::prop_assert_eq!(l.branches.len() + l.skipped.len(), n);
            for (i, (a, _)) in l.branches.iter().enumerate() {
                proptest::prop_assert!(check_remote_branch(a).is_ok());
                for (b, _) in &l.branches[i + 1..] {
                    proptest::prop_assert!(!names_conflict(a, b), "{} and {}", a, b);
                }
            }
        }
    }

    #[test]
    fn ref_objects_are_parsed_with_short_errors() {
        let id = ObjectId([3; 32]);
        assert_eq!(parse_ref_object(&value_bytes(id)), Ok(id));
        let huge = format!("{{\"commit\":\"{}\"}}", "a".repeat(100_000));
        let e = parse_ref_object(huge.as_bytes()).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn twenty_digit_components_are_refused() {
        assert!(check_remote_branch("main").is_ok());
        assert!(check_remote_branch("x/00000000000000000001").is_err());
    }
}
