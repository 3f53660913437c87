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

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

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

/// Branch refs of one remote.
pub trait RefStore: Send + Sync {
    /// The branch's commit and the token to update it, or `None` if it does not exist.
    fn read(&self, branch: &str) -> Result<Option<(ObjectId, RefToken)>>;
    /// Sets the branch to `new` if it still is what `expected` saw (`None`: absent).
    fn cas(&self, branch: &str, expected: Option<&RefToken>, new: ObjectId) -> Result<Cas>;
    /// Every branch with its commit, sorted by name.
    fn list(&self) -> Result<Vec<(String, ObjectId)>>;
}

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

    fn parse_value(&self, branch: &str, bytes: &[u8]) -> Result<ObjectId> {
        #[derive(serde::Deserialize)]
        struct Value {
            commit: ObjectId,
        }
        serde_json::from_slice::<Value>(bytes)
            .map(|v| v.commit)
            .map_err(|e| Error::Remote {
                remote: self.name.clone(),
                message: format!("ref refs/heads/{branch} is malformed: {e}"),
            })
    }

    fn get(&self, path: &StorePath) -> Result<Option<(bytes::Bytes, object_store::ObjectMeta)>> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let r = self.rt.block_on(async {
            let res = self.store.get(path).await?;
            let meta = res.meta.clone();
            let bytes = res.bytes().await?;
            Ok::<_, object_store::Error>((bytes, meta))
        });
        match r {
            Ok(v) => {
                self.counters
                    .down
                    .fetch_add(v.0.len() as u64, Ordering::Relaxed);
                Ok(Some(v))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("reading {path}"), e)),
        }
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

/// Refs on a store with conditional update (ETag / version).
pub struct ConditionalRefs(pub Ctx);

impl RefStore for ConditionalRefs {
    fn read(&self, branch: &str) -> Result<Option<(ObjectId, RefToken)>> {
        let path = self.0.path(&["refs/heads", branch]);
        let Some((bytes, meta)) = self.0.get(&path)? else {
            return Ok(None);
        };
        let id = self.0.parse_value(branch, &bytes)?;
        Ok(Some((
            id,
            RefToken::Version(UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            }),
        )))
    }

    fn cas(&self, branch: &str, expected: Option<&RefToken>, new: ObjectId) -> Result<Cas> {
        let path = self.0.path(&["refs/heads", branch]);
        let mode = match expected {
            None => PutMode::Create,
            Some(RefToken::Version(v)) => PutMode::Update(v.clone()),
            Some(RefToken::Seq(_)) => {
                return Err(Error::Refused(
                    "internal: sequence token for a conditional ref store".into(),
                ));
            }
        };
        self.0.put(&path, value_bytes(new), mode)
    }

    fn list(&self) -> Result<Vec<(String, ObjectId)>> {
        let base = self.0.path(&["refs/heads"]);
        let mut out = Vec::new();
        for meta in self.0.list_all(&base)? {
            let Some(name) = relative(&base, &meta.location) else {
                continue;
            };
            if let Some((bytes, _)) = self.0.get(&meta.location)? {
                out.push((name.clone(), self.0.parse_value(&name, &bytes)?));
            }
        }
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
pub struct SequenceRefs(pub Ctx);

fn parse_seq(name: &str) -> Option<u64> {
    (name.len() == SEQ_DIGITS && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

impl SequenceRefs {
    /// Highest sequence file of every branch under `refs/heads`.
    fn heads(&self) -> Result<std::collections::BTreeMap<String, (u64, StorePath)>> {
        let base = self.0.path(&["refs/heads"]);
        let mut best: std::collections::BTreeMap<String, (u64, StorePath)> = Default::default();
        for meta in self.0.list_all(&base)? {
            let Some(rel) = relative(&base, &meta.location) else {
                continue;
            };
            let Some((branch, last)) = rel.rsplit_once('/') else {
                continue;
            };
            let Some(seq) = parse_seq(last) else { continue };
            let e = best
                .entry(branch.to_string())
                .or_insert((0, meta.location.clone()));
            if seq >= e.0 {
                *e = (seq, meta.location.clone());
            }
        }
        Ok(best)
    }
}

impl RefStore for SequenceRefs {
    fn read(&self, branch: &str) -> Result<Option<(ObjectId, RefToken)>> {
        let dir = self.0.path(&["refs/heads", branch]);
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
        let Some((bytes, _)) = self.0.get(&path)? else {
            return Err(Error::Remote {
                remote: self.0.name.clone(),
                message: format!("ref file {path} vanished while being read"),
            });
        };
        Ok(Some((
            self.0.parse_value(branch, &bytes)?,
            RefToken::Seq(seq),
        )))
    }

    fn cas(&self, branch: &str, expected: Option<&RefToken>, new: ObjectId) -> Result<Cas> {
        let next = match expected {
            None => 1,
            Some(RefToken::Seq(n)) => n + 1,
            Some(RefToken::Version(_)) => {
                return Err(Error::Refused(
                    "internal: version token for a sequence ref store".into(),
                ));
            }
        };
        let name = format!("{next:0width$}", width = SEQ_DIGITS);
        let path = self.0.path(&["refs/heads", branch, &name]);
        self.0.put(&path, value_bytes(new), PutMode::Create)
    }

    fn list(&self) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        for (branch, (_, path)) in self.heads()? {
            if let Some((bytes, _)) = self.0.get(&path)? {
                out.push((branch.clone(), self.0.parse_value(&branch, &bytes)?));
            }
        }
        Ok(out)
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
            refs.list().unwrap(),
            vec![("feature/x".to_string(), c), ("main".to_string(), b)]
        );
    }

    #[test]
    fn conditional_refs_in_memory() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        cas_semantics(&ConditionalRefs(ctx(store, &rt)));
    }

    #[test]
    fn sequence_refs_on_the_local_file_system() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        cas_semantics(&SequenceRefs(ctx(store, &rt)));
        // Every value is kept as its own sequence file.
        let files = std::fs::read_dir(dir.path().join("pre/fix/refs/heads/main"))
            .unwrap()
            .count();
        assert_eq!(files, 2);
    }

    #[test]
    fn twenty_digit_components_are_refused() {
        assert!(check_remote_branch("main").is_ok());
        assert!(check_remote_branch("x/00000000000000000001").is_err());
    }
}
