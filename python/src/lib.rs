//! `dsv._dsv`, the native half of the Python package: repositories, versions'
//! frames and diffs, read through the dsv library (nothing here reimplements it).
//! The pure-Python half (`python/dsv/`) adds the PyTorch adaptor.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use dsv::ObjectId;
use dsv::lock::Access;
use dsv::ops::remote_view::RemoteView;
use dsv::query::{FrameRecord, Query, QueryCache};
use dsv::repo::{OpenOptions, Repository};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PySlice, PyString};

create_exception!(
    _dsv,
    Error,
    PyException,
    "Any error dsv reports; the message is the CLI's."
);
create_exception!(
    _dsv,
    NotARepositoryError,
    Error,
    "No dsv repository at the path."
);
create_exception!(
    _dsv,
    RevisionError,
    Error,
    "A revision that names no commit (or several)."
);
create_exception!(
    _dsv,
    ObjectError,
    Error,
    "An object missing from the store or damaged; the message names it."
);
create_exception!(
    _dsv,
    QueryError,
    Error,
    "A CEL expression that does not compile or check."
);
create_exception!(
    _dsv,
    RemoteError,
    Error,
    "A remote that cannot be read, or sent damaged data."
);
create_exception!(
    _dsv,
    LockedError,
    Error,
    "Another dsv process holds the repository's lock."
);
create_exception!(
    _dsv,
    InvalidArgumentError,
    Error,
    "An argument dsv cannot act on."
);

/// The Python exception for a library error, with the message the CLI prints.
fn py_err(e: dsv::Error) -> PyErr {
    use dsv::Error as E;
    let msg = dsv::quote::text(&dsv::redact::text(&e.to_string())).into_owned();
    match e {
        E::NotARepository(_) => NotARepositoryError::new_err(msg),
        E::UnknownRevision(_) | E::AmbiguousRevision { .. } | E::RefNotFound { .. } => {
            RevisionError::new_err(msg)
        }
        E::MissingObject(_)
        | E::CorruptObject { .. }
        | E::Corrupt(_)
        | E::PackUnreadable { .. }
        | E::NeedsRepair { .. } => ObjectError::new_err(msg),
        E::Query(_) => QueryError::new_err(msg),
        E::Remote { .. } => RemoteError::new_err(msg),
        E::Locked { .. } => LockedError::new_err(msg),
        E::InvalidArgument(_) => InvalidArgumentError::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// The process the module was loaded in.
static LOADED_IN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// A thread pool of this process when it is a `fork` of the one the module was
/// loaded in (a DataLoader worker on Linux): the library's parallel loops run on
/// rayon's global pool, whose threads a forked child does not have (a loop there
/// would wait for them forever), so in a child they run on a pool of its own.
/// `None` in the process the module was loaded in.
fn fork_pool() -> Option<Arc<rayon::ThreadPool>> {
    static CHILD: std::sync::Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> =
        std::sync::Mutex::new(None);
    let pid = std::process::id();
    if LOADED_IN.get().is_none_or(|&p| p == pid) {
        return None;
    }
    let mut child = CHILD.lock().unwrap_or_else(|e| e.into_inner());
    // A fork of a fork has its own pid: a pool made by its parent has no threads here.
    if let Some((p, pool)) = child.as_ref()
        && *p == pid
    {
        return Some(pool.clone());
    }
    let pool = Arc::new(rayon::ThreadPoolBuilder::new().build().ok()?);
    *child = Some((pid, pool.clone()));
    Some(pool)
}

/// Runs `f`, turning a library error into its exception and a panic into
/// `dsv.Error` (a bug in dsv must not take the interpreter down); in a forked
/// process, on its own thread pool (see [`fork_pool`]).
fn guard<T: Send>(f: impl FnOnce() -> dsv::Result<T> + Send) -> PyResult<T> {
    let run = || match fork_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(py_err(e)),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(Error::new_err(format!(
                "internal error: {what} (please report this dsv bug)"
            )))
        }
    }
}

/// Where a repository's objects come from.
enum Source {
    /// A local repository: every object in its store.
    Local(Box<Repository>),
    /// A metadata mirror of a remote, frames read from the remote's packs.
    Remote(Box<RemoteView>),
}

impl Source {
    /// Runs `f` on the repository (a remote's mirror is opened for the call).
    fn with_repo<T>(&self, f: impl FnOnce(&Repository) -> dsv::Result<T>) -> dsv::Result<T> {
        match self {
            Source::Local(r) => f(r),
            Source::Remote(v) => f(&v.open_mirror()?),
        }
    }

    /// Verified contents of `ids`, in order.
    fn read_many(&self, ids: &[ObjectId]) -> dsv::Result<Vec<Vec<u8>>> {
        match self {
            Source::Local(r) => r.store.get_many(ids),
            Source::Remote(v) => v.read_many(ids),
        }
    }

    /// Makes the label files and sidecar of `commit` readable (a remote mirror
    /// downloads them; a local store has them).
    fn prepare(&self, commit: &ObjectId) -> dsv::Result<()> {
        match self {
            Source::Local(_) => Ok(()),
            Source::Remote(v) => v.prepare(commit),
        }
    }
}

/// A dataset repository, local (`Repository(path)`) or a remote read in place
/// (`Repository.open_remote(url, cache_dir=...)`).
#[pyclass(name = "Repository", module = "dsv", frozen)]
struct Repository_ {
    src: Arc<Source>,
    /// What the object was opened from: ("local", path) or ("remote", url, cache_dir, cache_size).
    spec: Vec<String>,
}

fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as V;
    Ok(match v {
        V::Null => py.None().into_bound(py),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::Number(n) => {
            if let Some(i) = n.as_i64() {
                PyInt::new(py, i).into_any()
            } else if let Some(u) = n.as_u64() {
                PyInt::new(py, u).into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        V::String(s) => PyString::new(py, s).into_any(),
        V::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(json_to_py(py, x)?)?;
            }
            l.into_any()
        }
        V::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn to_py<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(v)
        .map_err(|e| Error::new_err(format!("internal error: cannot convert: {e}")))?;
    json_to_py(py, &v)
}

fn open_local(path: PathBuf) -> dsv::Result<Repository> {
    Repository::discover(&path, Access::Read, &OpenOptions::default())
}

fn commit_dict<'py>(
    py: Python<'py>,
    id: &ObjectId,
    c: &dsv::object::Commit,
) -> PyResult<Bound<'py, PyAny>> {
    let v = to_py(py, c)?;
    let d = v.cast::<PyDict>()?;
    d.set_item("id", id.to_hex())?;
    let first = c.message.lines().next().unwrap_or("").to_string();
    d.set_item("subject", first)?;
    Ok(v)
}

#[pymethods]
impl Repository_ {
    /// Opens the local repository at (or above) `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let repo = py.detach(|| guard(|| open_local(path)))?;
        // The root, absolute: a worker process may run elsewhere.
        let root = repo.root().to_string_lossy().into_owned();
        Ok(Repository_ {
            src: Arc::new(Source::Local(Box::new(repo))),
            spec: vec!["local".into(), root],
        })
    }

    /// Opens a remote (`s3://`, `gs://`, `az://`, `file://` or a path) for reading
    /// in place: commits, trees and label files are mirrored under `cache_dir`,
    /// frames are read by byte ranges of the remote's packs into a bounded cache.
    #[staticmethod]
    #[pyo3(signature = (url, cache_dir, cache_size=10 * 1024 * 1024 * 1024, refresh=true))]
    fn open_remote(
        py: Python<'_>,
        url: String,
        cache_dir: PathBuf,
        cache_size: u64,
        refresh: bool,
    ) -> PyResult<Self> {
        let settings = settings_from_env(py)?;
        let view = py.detach(|| {
            guard(|| RemoteView::open(&url, &cache_dir, cache_size, refresh, settings))
        })?;
        Ok(Repository_ {
            src: Arc::new(Source::Remote(Box::new(view))),
            spec: vec![
                "remote".into(),
                url,
                std::path::absolute(&cache_dir)
                    .unwrap_or(cache_dir)
                    .to_string_lossy()
                    .into_owned(),
                cache_size.to_string(),
            ],
        })
    }

    /// How to open this repository again (in another process: a DataLoader worker).
    #[getter]
    fn spec(&self) -> Vec<String> {
        self.spec.clone()
    }

    /// The worktree root (a local repository) or the mirror's (a remote).
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        guard(|| self.src.with_repo(|r| Ok(r.root().to_path_buf())))
    }

    /// The commit id (hex) a revision names.
    #[pyo3(signature = (rev="HEAD"))]
    fn resolve(&self, py: Python<'_>, rev: &str) -> PyResult<String> {
        let src = self.src.clone();
        let rev = rev.to_string();
        py.detach(|| guard(|| src.with_repo(|r| dsv::ops::revparse::resolve(r, &rev))))
            .map(|id| id.to_hex())
    }

    /// Commits reachable from `rev`, newest first: dicts with id, parents,
    /// author, time, tz_offset_min, message, subject, summary (files, bytes).
    #[pyo3(signature = (rev="HEAD", max_count=None, first_parent=false))]
    fn log<'py>(
        &self,
        py: Python<'py>,
        rev: &str,
        max_count: Option<usize>,
        first_parent: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let src = self.src.clone();
        let rev = rev.to_string();
        let commits = py.detach(|| {
            guard(|| {
                src.with_repo(|repo| {
                    let id = dsv::ops::revparse::resolve(repo, &rev)?;
                    dsv::ops::log::history(repo, &[id], max_count, first_parent)
                })
            })
        })?;
        commits
            .iter()
            .map(|(id, c)| commit_dict(py, id, c))
            .collect()
    }

    /// The frames of version `rev`, all or those a CEL expression selects
    /// (the language and schema of `dsv query`).
    #[pyo3(signature = (rev="HEAD", r#where=None))]
    fn frames(&self, py: Python<'_>, rev: &str, r#where: Option<String>) -> PyResult<FrameView> {
        let src = self.src.clone();
        let rev = rev.to_string();
        // No frame is decoded here: the view keeps the frame count (or the
        // selection's positions) and decodes blocks of frames as they are read.
        let (commit, tree, total, sel) = py.detach(|| {
            guard(|| {
                let q = r#where.as_deref().map(Query::compile).transpose()?;
                let commit = src.with_repo(|repo| dsv::ops::revparse::resolve(repo, &rev))?;
                src.prepare(&commit)?;
                src.with_repo(|repo| {
                    let cache = QueryCache::open(repo.dsv_dir(), &repo.settings);
                    let tree = dsv::object::Commit::load(&repo.store, &commit)?.tree;
                    let total = dsv::query::tree_frame_count(&repo.store, &tree, &cache)?;
                    let sel = match &q {
                        Some(q) => Some(
                            dsv::query::tree_positions(&repo.store, &tree, &cache, q)?
                                .into_iter()
                                .map(|p| p as usize)
                                .collect::<Vec<_>>(),
                        ),
                        None => None,
                    };
                    Ok((commit, tree, total, sel))
                })
            })
        })?;
        Ok(self.view(commit, tree, total, sel.map(Arc::new), None))
    }

    /// The frames at `positions` (in the version's path order, as
    /// `FrameView.positions_in_version` gives them) of version `rev`, in that
    /// order: only those frames' labels are ever decoded, block by block as
    /// they are read (a DataLoader worker's shard).
    #[pyo3(signature = (rev, positions))]
    fn frames_at(&self, py: Python<'_>, rev: &str, positions: Vec<usize>) -> PyResult<FrameView> {
        let src = self.src.clone();
        let rev = rev.to_string();
        let (commit, tree, total) = py.detach(|| {
            guard(|| {
                let commit = src.with_repo(|repo| dsv::ops::revparse::resolve(repo, &rev))?;
                src.prepare(&commit)?;
                src.with_repo(|repo| {
                    let cache = QueryCache::open(repo.dsv_dir(), &repo.settings);
                    let tree = dsv::object::Commit::load(&repo.store, &commit)?.tree;
                    let total = dsv::query::tree_frame_count(&repo.store, &tree, &cache)?;
                    Ok((commit, tree, total))
                })
            })
        })?;
        if let Some(p) = positions.iter().find(|&&p| p >= total) {
            return Err(InvalidArgumentError::new_err(format!(
                "frame position {p} out of range ({total} frames)"
            )));
        }
        let mut universe = positions.clone();
        universe.sort_unstable();
        universe.dedup();
        Ok(self.view(
            commit,
            tree,
            total,
            Some(Arc::new(universe)),
            Some(Arc::new(positions)),
        ))
    }

    /// The dataset diff from `a` to `b`: the document `dsv diff --json a b` prints.
    #[pyo3(signature = (a, b="HEAD"))]
    fn diff<'py>(&self, py: Python<'py>, a: &str, b: &str) -> PyResult<Bound<'py, PyAny>> {
        let src = self.src.clone();
        let (a, b) = (a.to_string(), b.to_string());
        let v = py.detach(|| {
            guard(|| {
                let (revs, since_fork) = dsv::ops::label_diff::split_ranges(&[a, b]);
                for r in &revs {
                    let c = src.with_repo(|repo| dsv::ops::revparse::resolve(repo, r))?;
                    src.prepare(&c)?;
                }
                let spec = dsv::ops::label_diff::DiffSpec {
                    revs,
                    since_fork,
                    labels: true,
                    ..Default::default()
                };
                let d = src.with_repo(|repo| {
                    dsv::ops::label_diff::diff_repo(repo, &spec, &dsv::progress::NoProgress)
                })?;
                serde_json::to_value(&d).map_err(|e| {
                    dsv::Error::InvalidArgument(format!("internal error: cannot convert: {e}"))
                })
            })
        })?;
        json_to_py(py, &v)
    }

    /// Bytes and requests this handle read from its remote, and cache figures
    /// (all zero for a local repository).
    fn transfer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &*self.src {
            Source::Local(_) => to_py(py, &dsv::remote::TransferStats::default()),
            Source::Remote(v) => to_py(py, &v.stats()),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "dsv.Repository({:?})",
            self.spec.get(1).cloned().unwrap_or_default()
        )
    }
}

/// The remote-network settings the CLI takes from the environment (endpoint,
/// region), read here through Python's `os.environ` (the library reads none).
fn settings_from_env(py: Python<'_>) -> PyResult<dsv::Settings> {
    let environ = py.import("os")?.getattr("environ")?;
    let get = |k: &str| -> PyResult<Option<String>> {
        let v = environ.call_method1("get", (k,))?;
        if v.is_none() {
            Ok(None)
        } else {
            Ok(Some(v.extract()?))
        }
    };
    let mut s = dsv::Settings {
        aws_endpoint_url: get("AWS_ENDPOINT_URL")?,
        aws_region_set: get("AWS_REGION")?.is_some() || get("AWS_DEFAULT_REGION")?.is_some(),
        ..Default::default()
    };
    // Not the repository's own fsync choice: the mirror is a cache.
    s.fsync = Some(false);
    Ok(s)
}

/// Which frames of the version a view holds.
#[derive(Clone)]
enum Sel {
    /// A half-open range of positions.
    Range(usize, usize),
    /// Listed positions.
    List(Arc<Vec<usize>>),
}

impl Sel {
    fn len(&self) -> usize {
        match self {
            Sel::Range(a, b) => b - a,
            Sel::List(l) => l.len(),
        }
    }
    fn get(&self, i: usize) -> usize {
        match self {
            Sel::Range(a, _) => a + i,
            Sel::List(l) => l[i],
        }
    }
}

impl Repository_ {
    /// A view of `commit` (whose tree is `tree`, of `total` frames): of the
    /// frames at `sel` when given, else of the positions `universe` lists,
    /// else of every frame. `universe` (ascending, distinct): the only
    /// positions the view and its slices may read, and decode.
    fn view(
        &self,
        commit: ObjectId,
        tree: ObjectId,
        total: usize,
        universe: Option<Arc<Vec<usize>>>,
        sel: Option<Arc<Vec<usize>>>,
    ) -> FrameView {
        let sel = match (sel, &universe) {
            (Some(s), _) => Sel::List(s),
            (None, Some(u)) => Sel::List(u.clone()),
            (None, None) => Sel::Range(0, total),
        };
        FrameView {
            src: self.src.clone(),
            spec: Arc::new(self.spec.clone()),
            commit,
            records: Arc::new(Records {
                src: self.src.clone(),
                tree,
                total,
                universe,
                block: BLOCK_FRAMES.load(Ordering::Relaxed).max(1),
                keep: AtomicUsize::new(KEEP_BLOCKS.load(Ordering::Relaxed)),
                blocks: Default::default(),
            }),
            sel,
        }
    }
}

/// Frames of the whole version a lazy view decodes together, unless a test
/// set another size (`_set_block_frames`): the version index's chunk (its
/// codec walks whole chunks of 8,192 frames), so a block decodes one chunk.
const DEFAULT_BLOCK_FRAMES: usize = 8192;

static BLOCK_FRAMES: AtomicUsize = AtomicUsize::new(DEFAULT_BLOCK_FRAMES);

/// Decoded blocks a view keeps, least recently used evicted beyond, unless a
/// test set another bound (`_set_keep_blocks`) or the view was told
/// (`FrameView.keep_blocks`): a pass over a million frames holds a few blocks'
/// records (tens of MiB), not every frame's. 0: every block is kept.
const DEFAULT_KEEP_BLOCKS: usize = 8;

static KEEP_BLOCKS: AtomicUsize = AtomicUsize::new(DEFAULT_KEEP_BLOCKS);

/// Decoded blocks alive in this process (kept by a view, or held by a frame
/// or a read-ahead batch): what the memory of decoded labels is made of.
static LIVE_BLOCKS: AtomicU64 = AtomicU64::new(0);

/// Blocks and frame records this process has decoded (`_decoded()`, for tests).
static DECODED: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

/// The frame records of one version that views (and their slices) read,
/// decoded a block of positions at a time, the first time one of the block's
/// frames is read: making a view decodes nothing, and a DataLoader worker
/// decodes the blocks of its own shard only.
struct Records {
    src: Arc<Source>,
    /// The version's root tree (its index is cached by it).
    tree: ObjectId,
    /// Frames in the version.
    total: usize,
    /// The positions (ascending, distinct) views over these records may read
    /// (a selection's, a shard's); `None`: every frame.
    universe: Option<Arc<Vec<usize>>>,
    /// Positions of the version per block.
    block: usize,
    /// Most blocks kept decoded (0: all); see [`DEFAULT_KEEP_BLOCKS`].
    keep: AtomicUsize,
    /// Decoded blocks by number, with the tick of their last use.
    blocks: std::sync::Mutex<Kept>,
}

/// The decoded blocks a [`Records`] keeps, least recently used first out.
#[derive(Default)]
struct Kept {
    tick: u64,
    map: std::collections::HashMap<usize, (Arc<Block>, u64)>,
}

impl Kept {
    /// Block `b` when kept, marked as used now.
    fn get(&mut self, b: usize) -> Option<Arc<Block>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&b).map(|(blk, t)| {
            *t = tick;
            blk.clone()
        })
    }

    /// Keeps `blk` as block `b` (unless another thread did first: that one is
    /// kept and given), evicting the least recently used beyond `keep` (0: none).
    fn put(&mut self, b: usize, blk: Arc<Block>, keep: usize) -> Arc<Block> {
        self.tick += 1;
        let tick = self.tick;
        let got = self.map.entry(b).or_insert((blk, tick)).0.clone();
        // A sequential pass evicts one block per block decoded: the scan is over
        // a few entries; a shuffled one is kept unbounded (see `keep_blocks`).
        while keep > 0 && self.map.len() > keep {
            let Some(old) = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.map.remove(&old);
        }
        got
    }
}

/// Decoded records of the frames of one block that a view may read.
struct Block {
    /// The block's first position in the version.
    first: usize,
    /// Positions of `recs` (ascending), when not every one of the block's.
    positions: Option<Vec<usize>>,
    recs: Vec<FrameRecord>,
}

impl Drop for Block {
    fn drop(&mut self) {
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One frame's record: its block and its index there.
#[derive(Clone)]
struct At {
    block: Arc<Block>,
    i: usize,
}

impl At {
    fn rec(&self) -> &FrameRecord {
        &self.block.recs[self.i]
    }
}

impl Records {
    /// Block `b`, decoded now unless it was before.
    fn block(&self, b: usize) -> dsv::Result<Arc<Block>> {
        let lock = || self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(blk) = lock().get(b) {
            return Ok(blk);
        }
        let first = b.saturating_mul(self.block);
        let end = first.saturating_add(self.block).min(self.total);
        let positions = self.universe.as_ref().map(|u| {
            let (lo, hi) = (
                u.partition_point(|&x| x < first),
                u.partition_point(|&x| x < end),
            );
            u[lo..hi].to_vec()
        });
        let want: Vec<usize> = positions.clone().unwrap_or_else(|| (first..end).collect());
        // Decoded without the lock: another thread may read another block meanwhile.
        let recs = self.src.with_repo(|repo| {
            let cache = QueryCache::open(repo.dsv_dir(), &repo.settings);
            Ok(dsv::query::tree_frames_at(&repo.store, &self.tree, &cache, &want)?.frames)
        })?;
        if recs.len() != want.len() {
            return Err(dsv::Error::InvalidArgument(format!(
                "internal error: {} frames decoded for {} asked for",
                recs.len(),
                want.len()
            )));
        }
        DECODED.0.fetch_add(1, Ordering::Relaxed);
        DECODED.1.fetch_add(recs.len() as u64, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        let blk = Arc::new(Block {
            first,
            positions,
            recs,
        });
        let keep = self.keep.load(Ordering::Relaxed);
        Ok(lock().put(b, blk, keep))
    }

    /// The records of the frames at version positions `ps`, in order.
    fn at_many(&self, ps: &[usize]) -> dsv::Result<Vec<At>> {
        let mut last: Option<(usize, Arc<Block>)> = None;
        ps.iter()
            .map(|&p| {
                let b = p / self.block;
                let blk = match &last {
                    Some((k, blk)) if *k == b => blk.clone(),
                    _ => {
                        let blk = self.block(b)?;
                        last = Some((b, blk.clone()));
                        blk
                    }
                };
                let i = match &blk.positions {
                    None => Some(p - blk.first).filter(|&i| i < blk.recs.len()),
                    Some(v) => v.binary_search(&p).ok(),
                };
                let i = i.ok_or_else(|| {
                    dsv::Error::InvalidArgument(format!(
                        "frame position {p} is not among this view's frames"
                    ))
                })?;
                Ok(At { block: blk, i })
            })
            .collect()
    }

    /// Whether a view over these records may hold version position `p`.
    fn holds(&self, p: usize) -> bool {
        match &self.universe {
            None => p < self.total,
            Some(u) => u.binary_search(&p).is_ok(),
        }
    }
}

/// Frames of one version: `len()`, indexing, slicing, iteration (frames read
/// ahead on threads that do not hold the GIL). Lazy: a frame's labels are
/// decoded (by blocks, see [`Records`]) when it is first read.
#[pyclass(module = "dsv", frozen)]
struct FrameView {
    src: Arc<Source>,
    spec: Arc<Vec<String>>,
    commit: ObjectId,
    records: Arc<Records>,
    /// Positions in the version of the view's frames, in the view's order.
    sel: Sel,
}

impl FrameView {
    fn frame(&self, at: At, data: Option<Vec<u8>>) -> Frame {
        Frame {
            src: self.src.clone(),
            at,
            data: std::sync::Mutex::new(data),
        }
    }

    fn positions(&self) -> Vec<usize> {
        (0..self.sel.len()).map(|i| self.sel.get(i)).collect()
    }

    /// The records of every frame of the view, in order (decoded without the GIL).
    fn all_records(&self, py: Python<'_>) -> PyResult<Vec<At>> {
        let (records, positions) = (self.records.clone(), self.positions());
        py.detach(|| guard(|| records.at_many(&positions)))
    }

    /// A view of the same frames with the selection `sel`.
    fn with_sel(&self, sel: Sel) -> FrameView {
        FrameView {
            src: self.src.clone(),
            spec: self.spec.clone(),
            commit: self.commit,
            records: self.records.clone(),
            sel,
        }
    }
}

fn norm_index(i: isize, n: usize) -> PyResult<usize> {
    let j = if i < 0 { i + n as isize } else { i };
    if j < 0 || j as usize >= n {
        return Err(PyIndexError::new_err(format!(
            "frame index {i} out of range ({n} frames)"
        )));
    }
    Ok(j as usize)
}

#[pymethods]
impl FrameView {
    fn __len__(&self) -> usize {
        self.sel.len()
    }

    /// The commit (hex) the view is of.
    #[getter]
    fn commit(&self) -> String {
        self.commit.to_hex()
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let n = self.sel.len();
        if let Ok(s) = key.cast::<PySlice>() {
            let ind = s.indices(n as isize)?;
            let mut list = Vec::with_capacity(ind.slicelength);
            let mut i = ind.start;
            for _ in 0..ind.slicelength {
                list.push(self.sel.get(i as usize));
                i += ind.step;
            }
            let view = self.with_sel(Sel::List(Arc::new(list)));
            return Ok(Py::new(py, view)?.into_any());
        }
        let Ok(i) = key.extract::<isize>() else {
            return Err(PyTypeError::new_err(
                "frame views are indexed by integers or slices",
            ));
        };
        let pos = self.sel.get(norm_index(i, n)?);
        let records = self.records.clone();
        let at = py.detach(|| guard(|| records.at_many(&[pos])))?;
        let at = at.into_iter().next().expect("one record per position");
        Ok(Py::new(py, self.frame(at, None))?.into_any())
    }

    /// The frames at the positions `indices` of this view, their bytes read
    /// together (in pack order, without the GIL).
    fn read_many(&self, py: Python<'_>, indices: Vec<isize>) -> PyResult<Vec<Frame>> {
        let n = self.sel.len();
        let pos: Vec<usize> = indices
            .iter()
            .map(|&i| norm_index(i, n).map(|j| self.sel.get(j)))
            .collect::<PyResult<_>>()?;
        let (src, records) = (self.src.clone(), self.records.clone());
        let (ats, data) = py.detach(|| {
            guard(|| {
                let ats = records.at_many(&pos)?;
                let ids: Vec<ObjectId> = ats.iter().map(|a| a.rec().id).collect();
                Ok((ats, src.read_many(&ids)?))
            })
        })?;
        Ok(ats
            .into_iter()
            .zip(data)
            .map(|(a, d)| self.frame(a, Some(d)))
            .collect())
    }

    /// Iterates over the frames, read ahead in batches of up to `prefetch`
    /// frames and 8 MiB.
    #[pyo3(signature = (prefetch=DEFAULT_PREFETCH))]
    fn iter(&self, prefetch: usize) -> FrameIter {
        FrameIter::start(self, self.positions(), prefetch.max(1), false)
    }

    /// Iterates over the frames' samples (the dicts `Frame.sample()` makes), read
    /// ahead as `iter` reads: what `view.torch(iterable=True)` hands out.
    #[pyo3(signature = (prefetch=DEFAULT_PREFETCH))]
    fn samples(&self, prefetch: usize) -> FrameIter {
        FrameIter::start(self, self.positions(), prefetch.max(1), true)
    }

    fn __iter__(&self) -> FrameIter {
        FrameIter::start(self, self.positions(), DEFAULT_PREFETCH, false)
    }

    /// One row per object: frame path, frame id, object index, class, box
    /// (x, y, w, h; top-left corner, in the frame's units), units, object id,
    /// attributes (JSON text), as a pyarrow Table.
    fn objects_table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cols = [
            "path",
            "frame_id",
            "index",
            "class",
            "x",
            "y",
            "w",
            "h",
            "units",
            "id",
            "attributes",
        ];
        let mut data: Vec<Vec<Bound<'py, PyAny>>> = cols.iter().map(|_| Vec::new()).collect();
        for at in self.all_records(py)? {
            let f = at.rec();
            for (k, o) in f.objects.iter().enumerate() {
                let b = o.bbox;
                let row: [Bound<'py, PyAny>; 11] = [
                    PyString::new(py, &f.path).into_any(),
                    PyString::new(py, &f.id.to_hex()).into_any(),
                    PyInt::new(py, k as u64).into_any(),
                    PyString::new(py, &o.class).into_any(),
                    opt_f(py, b.map(|b| b.x)),
                    opt_f(py, b.map(|b| b.y)),
                    opt_f(py, b.map(|b| b.w)),
                    opt_f(py, b.map(|b| b.h)),
                    PyString::new(py, units_name(f.units)).into_any(),
                    match &o.id {
                        Some(s) => PyString::new(py, s).into_any(),
                        None => py.None().into_bound(py),
                    },
                    PyString::new(
                        py,
                        &serde_json::to_string(&o.attributes).unwrap_or_default(),
                    )
                    .into_any(),
                ];
                for (c, v) in data.iter_mut().zip(row) {
                    c.push(v);
                }
            }
        }
        table(py, &cols, data)
    }

    /// One row per frame: path, id, size, width, height, units, objects (count),
    /// predictions (count), attributes (JSON text), as a pyarrow Table.
    fn frames_table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cols = [
            "path",
            "id",
            "size",
            "width",
            "height",
            "units",
            "objects",
            "predictions",
            "attributes",
        ];
        let mut data: Vec<Vec<Bound<'py, PyAny>>> = cols.iter().map(|_| Vec::new()).collect();
        for at in self.all_records(py)? {
            let f = at.rec();
            let row: [Bound<'py, PyAny>; 9] = [
                PyString::new(py, &f.path).into_any(),
                PyString::new(py, &f.id.to_hex()).into_any(),
                PyInt::new(py, f.size).into_any(),
                opt_i(py, f.width),
                opt_i(py, f.height),
                PyString::new(py, units_name(f.units)).into_any(),
                PyInt::new(py, f.objects.len() as u64).into_any(),
                PyInt::new(py, f.predictions.len() as u64).into_any(),
                PyString::new(py, &serde_json::to_string(&f.attrs).unwrap_or_default()).into_any(),
            ];
            for (c, v) in data.iter_mut().zip(row) {
                c.push(v);
            }
        }
        table(py, &cols, data)
    }

    /// A dataset PyTorch's DataLoader accepts: map-style (`dsv.torch.TorchDataset`)
    /// or, with `iterable`, sharded over workers and ranks (`TorchIterableDataset`;
    /// `rank` and `world_size` name this process's rank, else torch.distributed's).
    #[pyo3(signature = (transform=None, shuffle=false, seed=0, iterable=false, rank=None, world_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn torch<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        transform: Option<Bound<'py, PyAny>>,
        shuffle: bool,
        seed: u64,
        iterable: bool,
        rank: Option<usize>,
        world_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let module = py.import("dsv.torch")?;
        if !iterable {
            if rank.is_some() || world_size.is_some() {
                return Err(InvalidArgumentError::new_err(
                    "rank and world_size shard the iterable dataset (iterable=True); \
                     a map-style dataset is sharded by its sampler (DistributedSampler)",
                ));
            }
            return module
                .getattr("TorchDataset")?
                .call1((slf, transform, shuffle, seed));
        }
        let kw = PyDict::new(py);
        kw.set_item("rank", rank)?;
        kw.set_item("world_size", world_size)?;
        module
            .getattr("TorchIterableDataset")?
            .call((slf, transform, shuffle, seed), Some(&kw))
    }

    /// How to open the view's repository again (see `Repository.spec`).
    #[getter]
    fn repository_spec(&self) -> Vec<String> {
        self.spec.as_ref().clone()
    }

    /// Positions of this view's frames in the whole version (for re-opening it elsewhere).
    #[getter]
    fn positions_in_version(&self) -> Vec<usize> {
        self.positions()
    }

    /// The span `(start, stop)` of version positions when this view holds
    /// exactly the frames `start..stop` in order (the whole version, usually),
    /// else None: a DataLoader dataset then sends workers two numbers, not
    /// one per frame.
    #[getter]
    fn version_span(&self) -> Option<(usize, usize)> {
        match (&self.sel, &self.records.universe) {
            (Sel::Range(a, b), None) => Some((*a, *b)),
            _ => None,
        }
    }

    /// Frames in the whole version (none decoded to tell).
    #[getter]
    fn version_frames(&self) -> usize {
        self.records.total
    }

    /// Bounds the decoded blocks (of 8,192 positions) this view and the views
    /// sliced from it keep: the `blocks` most recently used (evicted beyond),
    /// or every block with None. Default 8: a pass in order decodes each block
    /// once and holds a few; a pass in random order (a shuffled sampler) over
    /// more blocks than kept decodes blocks again, so `view.torch(shuffle=True)`
    /// and the map-style dataset keep all of theirs. Gives the bound it replaces.
    #[pyo3(signature = (blocks=None))]
    fn keep_blocks(&self, blocks: Option<usize>) -> PyResult<Option<usize>> {
        if blocks == Some(0) {
            return Err(InvalidArgumentError::new_err(
                "a view keeps at least one decoded block (None: all of them)",
            ));
        }
        let old = self
            .records
            .keep
            .swap(blocks.unwrap_or(0), Ordering::Relaxed);
        Ok(Some(old).filter(|&k| k > 0))
    }

    /// The view's positions in the version as runs `(start, length)` of
    /// consecutive positions, in the view's order: a selection pickled to a
    /// DataLoader worker in O(runs), not one int per frame.
    #[getter]
    fn position_runs(&self) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for i in 0..self.sel.len() {
            let p = self.sel.get(i);
            match runs.last_mut() {
                Some((s, n)) if *s + *n == p => *n += 1,
                _ => runs.push((p, 1)),
            }
        }
        runs
    }

    /// The view of the frames at the positions `positions` of the whole version
    /// (of a view made by `Repository.frames_at` or a selection: among the
    /// frames it holds). Nothing is decoded until a frame is read.
    fn at_version_positions(&self, positions: Vec<usize>) -> PyResult<FrameView> {
        if let Some(p) = positions.iter().find(|&&p| !self.records.holds(p)) {
            return Err(PyIndexError::new_err(match self.records.universe {
                None => format!(
                    "frame position {p} out of range ({} frames)",
                    self.records.total
                ),
                Some(_) => format!("frame position {p} is not among this view's frames"),
            }));
        }
        Ok(self.with_sel(Sel::List(Arc::new(positions))))
    }

    fn __repr__(&self) -> String {
        format!(
            "<dsv.FrameView of {} frames at {}>",
            self.sel.len(),
            self.commit.short()
        )
    }
}

/// A coordinate as every dsv output writes it: rounded to 10 decimals (the
/// float noise of YOLO's centre-to-corner conversion is no label tool's value).
fn coord(v: f64) -> f64 {
    let r = (v * 1e10).round() / 1e10;
    if r.is_finite() { r + 0.0 } else { v }
}

/// An object as the dict `dsv query --json` writes (built directly: the hot path
/// of iterating a version's labels; the keys are interned strings, made once).
fn object_dict<'py>(py: Python<'py>, o: &dsv::labels::Object) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "class"), &o.class)?;
    if let Some(b) = &o.bbox {
        let bd = PyDict::new(py);
        bd.set_item(intern!(py, "x"), coord(b.x))?;
        bd.set_item(intern!(py, "y"), coord(b.y))?;
        bd.set_item(intern!(py, "w"), coord(b.w))?;
        bd.set_item(intern!(py, "h"), coord(b.h))?;
        d.set_item(intern!(py, "box"), bd)?;
    }
    if let Some(id) = &o.id {
        d.set_item(intern!(py, "id"), id)?;
    }
    if !o.attributes.is_empty() {
        d.set_item(intern!(py, "attributes"), to_py(py, &o.attributes)?)?;
    }
    if let Some(g) = &o.geometry {
        d.set_item(intern!(py, "geometry"), to_py(py, g)?)?;
    }
    Ok(d)
}

/// The units as every output names them (`Units` serializes to the same words).
fn units_name(u: dsv::labels::Units) -> &'static str {
    match u {
        dsv::labels::Units::Pixels => "pixels",
        dsv::labels::Units::Normalized => "normalized",
    }
}

fn opt_f<'py>(py: Python<'py>, v: Option<f64>) -> Bound<'py, PyAny> {
    match v {
        Some(v) => PyFloat::new(py, v).into_any(),
        None => py.None().into_bound(py),
    }
}

fn opt_i<'py>(py: Python<'py>, v: Option<u32>) -> Bound<'py, PyAny> {
    match v {
        Some(v) => PyInt::new(py, v).into_any(),
        None => py.None().into_bound(py),
    }
}

fn objects_list<'py>(py: Python<'py>, r: &FrameRecord) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for o in &r.objects {
        list.append(object_dict(py, o)?)?;
    }
    Ok(list)
}

fn attributes_dict<'py>(py: Python<'py>, r: &FrameRecord) -> PyResult<Bound<'py, PyDict>> {
    use dsv::labels::AttrValue as A;
    let d = PyDict::new(py);
    for (k, v) in &r.attrs {
        match v {
            A::Bool(b) => d.set_item(k, *b)?,
            A::Int(i) => d.set_item(k, *i)?,
            A::Float(f) => d.set_item(k, *f)?,
            A::Str(s) => d.set_item(k, s)?,
        }
    }
    Ok(d)
}

fn predictions_list<'py>(py: Python<'py>, r: &FrameRecord) -> PyResult<Bound<'py, PyAny>> {
    if r.predictions.is_empty() {
        return Ok(PyList::empty(py).into_any());
    }
    to_py(py, &r.predictions)
}

/// The sample dict of a frame whose bytes are `data` (see `Frame.sample`).
fn sample_dict<'py>(
    py: Python<'py>,
    r: &FrameRecord,
    data: Bound<'py, PyBytes>,
) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "path"), &r.path)?;
    d.set_item(intern!(py, "id"), r.id.to_hex())?;
    d.set_item(intern!(py, "data"), data)?;
    d.set_item(intern!(py, "width"), r.width)?;
    d.set_item(intern!(py, "height"), r.height)?;
    d.set_item(intern!(py, "units"), units_name(r.units))?;
    d.set_item(intern!(py, "objects"), objects_list(py, r)?)?;
    d.set_item(intern!(py, "attributes"), attributes_dict(py, r)?)?;
    d.set_item(intern!(py, "predictions"), predictions_list(py, r)?)?;
    Ok(d)
}

/// A pyarrow Table of named columns (pyarrow imported only here: it is optional).
fn table<'py>(
    py: Python<'py>,
    cols: &[&str],
    data: Vec<Vec<Bound<'py, PyAny>>>,
) -> PyResult<Bound<'py, PyAny>> {
    let pa = py.import("pyarrow").map_err(|e| {
        pyo3::exceptions::PyImportError::new_err(format!(
            "objects_table/frames_table need pyarrow (pip install pyarrow): {e}"
        ))
    })?;
    let d = PyDict::new(py);
    for (name, col) in cols.iter().zip(data) {
        d.set_item(name, PyList::new(py, col)?)?;
    }
    pa.getattr("table")?.call1((d,))
}

/// One frame of a version.
#[pyclass(module = "dsv", frozen)]
struct Frame {
    src: Arc<Source>,
    at: At,
    /// Bytes read ahead (already verified), handed out once.
    data: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Frame {
    fn rec(&self) -> &FrameRecord {
        self.at.rec()
    }
}

#[pymethods]
impl Frame {
    /// Root-relative path of the frame file.
    #[getter]
    fn path(&self) -> &str {
        &self.rec().path
    }

    /// Content id (BLAKE3, hex).
    #[getter]
    fn id(&self) -> String {
        self.rec().id.to_hex()
    }

    /// Size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.rec().size
    }

    /// Image width, when a label file says.
    #[getter]
    fn width(&self) -> Option<u32> {
        self.rec().width
    }

    /// Image height, when a label file says.
    #[getter]
    fn height(&self) -> Option<u32> {
        self.rec().height
    }

    /// Units of the boxes: "pixels" or "normalized" (fractions of the image size).
    #[getter]
    fn units(&self) -> &'static str {
        units_name(self.rec().units)
    }

    /// Labelled objects: dicts with class, box ({x, y, w, h}: top-left corner
    /// and size, in `units`; absent without a box), id, attributes, geometry.
    #[getter]
    fn objects<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        objects_list(py, self.rec())
    }

    /// Frame attributes: label-file frame attributes, then the sidecar's.
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        attributes_dict(py, self.rec())
    }

    /// Model predictions from the sidecar (class, box, score).
    #[getter]
    fn predictions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        predictions_list(py, self.rec())
    }

    /// Label files describing the frame: (path, format) pairs.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.rec().labels)
    }

    /// The frame's bytes, checked against its id.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let ahead = self.data.lock().ok().and_then(|mut d| d.take());
        let data = match ahead {
            Some(d) => d,
            None => {
                let src = self.src.clone();
                let id = self.rec().id;
                py.detach(|| guard(|| src.read_many(&[id])))?
                    .pop()
                    .unwrap_or_default()
            }
        };
        Ok(PyBytes::new(py, &data))
    }

    /// The sample `view.torch()` hands out: a dict of path, id, data (the
    /// bytes, as `read()`), width, height, units, objects, attributes and
    /// predictions. Built here rather than attribute by attribute in Python:
    /// it is the per-frame cost of every DataLoader worker.
    fn sample<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        sample_dict(py, self.rec(), self.read(py)?)
    }

    fn __repr__(&self) -> String {
        format!("<dsv.Frame {}>", self.rec().path)
    }
}

/// The records of a batch of frames and their bytes, read ahead.
type Batch = dsv::Result<(Vec<At>, Vec<Vec<u8>>)>;

/// Most bytes of frames one read-ahead batch holds. Batches of small frames are
/// long runs of pack reads (a batch of 64 10 KiB frames paid the per-call costs
/// 64 times more often per byte); the bound keeps the batches in flight (the one
/// handed out, one waiting, one being read) a few tens of MiB whatever the frames' size.
const BATCH_BYTES: u64 = 8 << 20;

/// Most frames of one read-ahead batch, unless the iterator is given another.
const DEFAULT_PREFETCH: usize = 4096;

/// Frames of the first batch: the first frame is not kept waiting for a whole
/// batch; later batches double up to the iterator's `prefetch`.
const FIRST_BATCH: usize = 32;

/// How many of `ats` (at most `max`) the batch starting with the first holds:
/// at most [`BATCH_BYTES`] of frames (always one frame, however large).
fn batch_len(ats: &[At], max: usize) -> usize {
    let mut end = 0;
    let mut bytes = 0u64;
    while end < ats.len() && end < max {
        bytes = bytes.saturating_add(ats[end].rec().size);
        if end > 0 && bytes > BATCH_BYTES {
            break;
        }
        end += 1;
    }
    end
}

/// One read-ahead batch: the records of up to `max` frames of `positions` from
/// `at` (decoded here, on the read-ahead thread, when not yet) and their bytes.
fn read_batch(
    src: &Source,
    records: &Records,
    positions: &[usize],
    at: usize,
    max: usize,
) -> dsv::Result<(Vec<At>, Vec<Vec<u8>>)> {
    let end = positions.len().min(at.saturating_add(max));
    let mut ats = records.at_many(&positions[at..end])?;
    ats.truncate(batch_len(&ats, max));
    let ids: Vec<ObjectId> = ats.iter().map(|a| a.rec().id).collect();
    Ok((ats, src.read_many(&ids)?))
}

/// Iterator over a view; a thread decodes the frames' records and reads their
/// bytes ahead in batches.
#[pyclass(module = "dsv")]
struct FrameIter {
    src: Arc<Source>,
    rx: Option<std::sync::Mutex<Receiver<Batch>>>,
    batch: std::collections::VecDeque<(At, Vec<u8>)>,
    /// Hands out sample dicts (`FrameView.samples`) instead of `Frame`s.
    samples: bool,
}

impl FrameIter {
    /// Starts the read-ahead thread (it holds no GIL): batches of up to
    /// `prefetch` frames and [`BATCH_BYTES`], one waiting while the next is read.
    fn start(view: &FrameView, positions: Vec<usize>, prefetch: usize, samples: bool) -> FrameIter {
        let max = prefetch.max(1);
        let (tx, rx) = sync_channel(1);
        let src = view.src.clone();
        let records = view.records.clone();
        std::thread::spawn(move || {
            let mut at = 0;
            let mut want = FIRST_BATCH.min(max);
            while at < positions.len() {
                let read = || match fork_pool() {
                    Some(pool) => pool.install(|| read_batch(&src, &records, &positions, at, want)),
                    None => read_batch(&src, &records, &positions, at, want),
                };
                let r = catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
                    Err(dsv::Error::InvalidArgument(
                        "internal error: a read-ahead thread panicked (please report this dsv bug)"
                            .into(),
                    ))
                });
                let got = r.as_ref().map_or(0, |(ats, _)| ats.len());
                // The iterator was dropped: stop reading.
                if tx.send(r).is_err() || got == 0 {
                    return;
                }
                at += got;
                want = want.saturating_mul(2).min(max);
            }
        });
        FrameIter {
            src: view.src.clone(),
            rx: Some(std::sync::Mutex::new(rx)),
            batch: Default::default(),
            samples,
        }
    }
}

#[pymethods]
impl FrameIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.batch.is_empty() {
            let Some(rx) = &self.rx else { return Ok(None) };
            let got = py.detach(|| rx.lock().ok().and_then(|r| r.recv().ok()));
            match got {
                None => {
                    self.rx = None;
                    return Ok(None);
                }
                Some(Ok((ats, data))) => self.batch.extend(ats.into_iter().zip(data)),
                Some(Err(e)) => {
                    self.rx = None;
                    return Err(py_err(e));
                }
            }
        }
        let Some((at, data)) = self.batch.pop_front() else {
            return Ok(None);
        };
        if self.samples {
            // No Frame object in between: a DataLoader worker's per-frame cost.
            let d = sample_dict(py, at.rec(), PyBytes::new(py, &data))?;
            return Ok(Some(d.into_any()));
        }
        let f = Frame {
            src: self.src.clone(),
            at,
            data: std::sync::Mutex::new(Some(data)),
        };
        Ok(Some(Bound::new(py, f)?.into_any()))
    }
}

/// Blocks and frame records this process has decoded for views so far: a
/// view is lazy, and tests check what reading it decoded.
#[pyfunction]
fn _decoded() -> (u64, u64) {
    (
        DECODED.0.load(Ordering::Relaxed),
        DECODED.1.load(Ordering::Relaxed),
    )
}

/// Sets the frames per block of views made from now on (a test's small
/// blocks stand in for 8,192 frames); gives the size it replaces.
#[pyfunction]
fn _set_block_frames(frames: usize) -> PyResult<usize> {
    if frames == 0 {
        return Err(InvalidArgumentError::new_err(
            "a block holds at least one frame",
        ));
    }
    Ok(BLOCK_FRAMES.swap(frames, Ordering::Relaxed))
}

/// Decoded blocks alive in this process now (kept by views, or held by frames
/// and read-ahead batches): tests check that a long pass holds a bounded number.
#[pyfunction]
fn _live_blocks() -> u64 {
    LIVE_BLOCKS.load(Ordering::Relaxed)
}

/// Sets the decoded blocks views made from now on keep (0: all); gives the
/// bound it replaces.
#[pyfunction]
fn _set_keep_blocks(blocks: usize) -> usize {
    KEEP_BLOCKS.swap(blocks, Ordering::Relaxed)
}

/// The native module `dsv._dsv`.
#[pymodule]
fn _dsv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    LOADED_IN.get_or_init(std::process::id);
    m.add_class::<Repository_>()?;
    m.add_class::<FrameView>()?;
    m.add_class::<Frame>()?;
    m.add_class::<FrameIter>()?;
    m.add_function(wrap_pyfunction!(_decoded, m)?)?;
    m.add_function(wrap_pyfunction!(_set_block_frames, m)?)?;
    m.add_function(wrap_pyfunction!(_live_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(_set_keep_blocks, m)?)?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("NotARepositoryError", py.get_type::<NotARepositoryError>())?;
    m.add("RevisionError", py.get_type::<RevisionError>())?;
    m.add("ObjectError", py.get_type::<ObjectError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    m.add("RemoteError", py.get_type::<RemoteError>())?;
    m.add("LockedError", py.get_type::<LockedError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    Ok(())
}
