//! Remotes on object storage: push, fetch, pull, clone (remote format 1).
//!
//! A remote is a bucket prefix (or a directory) that many clients read and write
//! at once, with no dsv server. Layout under the prefix (docs/format.md,
//! "Remote format 1"): the `dsv-remote` marker, content-named packs with their
//! indexes under `packs/`, branch refs under `refs/heads/` updated by
//! compare-and-swap ([`refs`]), and `HEAD` naming the default branch.
//!
//! The library API is synchronous: a [`Remote`] owns a small tokio runtime and
//! blocks on each request, so callers never see async code.

pub mod blob_cache;
pub mod fetch;
pub mod format;
pub mod fsck;
pub mod gc;
pub mod net;
pub mod push;
pub mod read;
pub mod refs;
pub mod refupdate;
mod spool;
pub mod url;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde::Serialize;

use crate::config::ConfigFile;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::repo::{Repository, WritableRepo};
use format::PackIndex;
use refs::{ConditionalRefs, RefStore, SequenceRefs};

/// Namespace of remote-tracking refs in the local ref store.
pub use crate::refs::REMOTES;

/// Installs rustls' ring crypto provider once per process (an already installed
/// provider is fine). Every network client needs one; without it reqwest panics.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An object_store error as one line. Its text names paths and HTTP statuses,
/// never the request's signing headers or the credentials.
pub fn safe_message(e: &object_store::Error) -> String {
    // The client's messages quote request URLs (an endpoint from AWS_ENDPOINT_URL may
    // hold userinfo, a signed URL its signature).
    let text = crate::redact::text(&e.to_string());
    let line = text.lines().next().unwrap_or("").to_string();
    if line.len() > 400 {
        let mut cut = 400;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &line[..cut])
    } else {
        line
    }
}

/// Most bytes of the small metadata objects of a remote (`dsv-remote`, `HEAD`,
/// a ref): each is a few dozen bytes of JSON, so anything larger is damage or an
/// attack, refused from its size without being read.
pub const MAX_METADATA_OBJECT: u64 = 4096;

/// Largest pack index read (about 24 million entries; a 32 MiB pack holds at
/// most 400,000 records).
pub const MAX_PACK_INDEX: u64 = 1 << 30;

/// An object read whole, or how large it turned out to be.
pub(crate) enum Capped {
    /// The bytes (at most the cap) and the object's metadata.
    Bytes(bytes::Bytes, object_store::ObjectMeta),
    /// The object is larger than the cap: its size (stated or seen); the rest of
    /// it was not read.
    TooLarge(u64),
}

/// Reads a whole object of at most `cap` bytes. An object whose stated size is
/// larger is refused before its body is read, and a body longer than stated is
/// cut off past `cap`, so memory stays bounded whatever the store answers.
pub(crate) async fn get_capped(
    store: &dyn ObjectStore,
    path: &StorePath,
    cap: u64,
) -> std::result::Result<Capped, object_store::Error> {
    let res = store.get(path).await?;
    let meta = res.meta.clone();
    if meta.size > cap {
        return Ok(Capped::TooLarge(meta.size));
    }
    let mut body = res.into_stream();
    let mut buf = Vec::with_capacity(meta.size as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if (buf.len() + chunk.len()) as u64 > cap {
            return Ok(Capped::TooLarge((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Capped::Bytes(buf.into(), meta))
}

/// Parses the remote's `HEAD` object (`{"branch":"NAME"}`) and checks the name.
pub fn parse_head_object(bytes: &[u8]) -> std::result::Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        branch: String,
    }
    let h: Head = serde_json::from_slice(bytes).map_err(|_| {
        format!(
            "HEAD object is malformed (expected {{\"branch\":\"NAME\"}}, found '{}')",
            quote_prefix(bytes)
        )
    })?;
    refs::check_remote_branch(&h.branch)
        .map_err(|e| format!("HEAD object names a branch dsv cannot use: {e}"))?;
    Ok(h.branch)
}

/// The start of untrusted bytes for an error message (escaped, a few dozen
/// characters at most).
pub fn quote_prefix(bytes: &[u8]) -> String {
    crate::quote::bytes(&bytes[..bytes.len().min(40)])
}

/// A configured remote: `[remote.NAME]` in `.dsv/config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteConfig {
    /// Name (`origin`).
    pub name: String,
    /// URL as given (never holds credentials: they come from the environment, and a
    /// URL with some is refused; shown redacted all the same).
    #[serde(serialize_with = "redacted")]
    pub url: String,
    /// Endpoint, region, allow_http.
    #[serde(skip)]
    pub settings: url::Settings,
}

fn redacted<S: serde::Serializer>(url: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::redact::url(url))
}

/// Validates a remote name: letters, digits, `-` and `_` (it becomes a config
/// table name and a directory under `.dsv/remotes/`).
pub fn check_remote_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            kind: "remote",
            name: crate::quote::short(name),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad("only letters, digits, '-' and '_' are allowed");
    }
    if name.starts_with('-') {
        return bad("starts with '-'");
    }
    Ok(())
}

fn config_path(repo: &Repository) -> std::path::PathBuf {
    repo.dsv_dir().join("config.toml")
}

/// Every configured remote, sorted by name.
pub fn list_remotes(repo: &Repository) -> Result<Vec<RemoteConfig>> {
    let file = ConfigFile::load(&config_path(repo))?;
    let mut names: Vec<String> = file
        .values
        .keys()
        .filter_map(|k| k.strip_prefix("remote.")?.strip_suffix(".url"))
        .filter(|n| !n.contains('.'))
        .map(str::to_string)
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| Ok(with_overrides(repo, config_from(&file, n)?)))
        .collect()
}

/// The repository's overrides (from the environment, resolved by the caller) over a
/// remote's own network settings, and the caller's S3 defaults.
fn with_overrides(repo: &Repository, mut cfg: RemoteConfig) -> RemoteConfig {
    cfg.settings.net = repo.settings.remote_net.or(cfg.settings.net);
    cfg.settings.default_endpoint = repo.settings.aws_endpoint_url.clone();
    cfg.settings.default_region_set = repo.settings.aws_region_set;
    cfg
}

fn config_from(file: &ConfigFile, name: &str) -> Result<RemoteConfig> {
    let get = |k: &str| file.values.get(&format!("remote.{name}.{k}")).cloned();
    let url = get("url").ok_or_else(|| Error::RefNotFound {
        kind: "remote",
        name: name.to_string(),
    })?;
    let allow_http = match get("allow_http").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(Error::Config {
                path: file.path.clone(),
                message: format!("remote.{name}.allow_http must be true or false, not '{v}'"),
            });
        }
    };
    let bad = |key: &str, v: &str, want: &str| Error::Config {
        path: file.path.clone(),
        message: format!(
            "remote.{name}.{key} must be {want}, not '{}'",
            crate::quote::text(v)
        ),
    };
    let duration = |key: &str| -> Result<Option<std::time::Duration>> {
        get(key)
            .map(|v| {
                net::parse_duration(&v)
                    .ok_or_else(|| bad(key, &v, "a duration such as 5s or 500ms"))
            })
            .transpose()
    };
    let retries = get("retries")
        .map(|v| net::parse_retries(&v).ok_or_else(|| bad("retries", &v, "a number from 0 to 100")))
        .transpose()?;
    Ok(RemoteConfig {
        name: name.to_string(),
        url,
        settings: url::Settings {
            endpoint: get("endpoint"),
            region: get("region"),
            allow_http,
            net: net::Network {
                connect_timeout: duration("connect_timeout")?,
                timeout: duration("timeout")?,
                retries,
                retry_timeout: duration("retry_timeout")?,
            },
            ..url::Settings::default()
        },
    })
}

/// The configuration of remote `name`.
pub fn remote_config(repo: &Repository, name: &str) -> Result<RemoteConfig> {
    check_remote_name(name)?;
    let cfg = config_from(&ConfigFile::load(&config_path(repo))?, name)?;
    Ok(with_overrides(repo, cfg))
}

/// Adds a remote (`dsv remote add NAME URL`).
pub fn add_remote(
    repo: &WritableRepo,
    name: &str,
    url_text: &str,
    settings: &url::Settings,
) -> Result<()> {
    check_remote_name(name)?;
    url::parse(url_text)?;
    if let Some(e) = &settings.endpoint {
        url::check_no_credentials("endpoint", e, url_text)?;
    }
    let mut file = ConfigFile::load(&config_path(repo))?;
    if file.values.contains_key(&format!("remote.{name}.url")) {
        return Err(Error::RefExists {
            kind: "remote",
            name: name.to_string(),
        });
    }
    file.values
        .insert(format!("remote.{name}.url"), url_text.to_string());
    if let Some(e) = &settings.endpoint {
        file.values
            .insert(format!("remote.{name}.endpoint"), e.clone());
    }
    if let Some(r) = &settings.region {
        file.values
            .insert(format!("remote.{name}.region"), r.clone());
    }
    if settings.allow_http {
        file.values
            .insert(format!("remote.{name}.allow_http"), "true".into());
    }
    file.save(repo.storage.as_ref())
}

/// Removes a remote, its remote-tracking refs and its cached indexes.
pub fn remove_remote(repo: &WritableRepo, name: &str) -> Result<()> {
    remote_config(repo, name)?;
    let mut file = ConfigFile::load(&config_path(repo))?;
    let prefix = format!("remote.{name}.");
    file.values.retain(|k, _| !k.starts_with(&prefix));
    file.save(repo.storage.as_ref())?;
    let ns = format!("{REMOTES}{name}/");
    for (branch, _) in repo.refs.list(&ns)? {
        repo.refs.delete(&format!("{ns}{branch}"))?;
    }
    let cache = cache_dir(repo, name);
    if cache.exists() {
        std::fs::remove_dir_all(&cache).map_err(|e| Error::io("removing", cache.clone(), e))?;
    }
    Ok(())
}

/// `.dsv/remotes/NAME`: downloaded pack indexes of that remote.
pub fn cache_dir(repo: &Repository, name: &str) -> std::path::PathBuf {
    repo.dsv_dir().join("remotes").join(name)
}

/// Bytes and requests a remote operation cost.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct TransferStats {
    /// Bytes uploaded.
    pub bytes_up: u64,
    /// Bytes downloaded.
    pub bytes_down: u64,
    /// PUT requests.
    pub puts: u64,
    /// GET requests (whole objects and ranges).
    pub gets: u64,
    /// LIST requests.
    pub lists: u64,
}

/// Request and byte counters, shared with the ref store.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) up: AtomicU64,
    pub(crate) down: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) gets: AtomicU64,
    pub(crate) lists: AtomicU64,
}

/// Whether a conditional put wrote the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Written.
    Written,
    /// The object already existed (`PutMode::Create`).
    Exists,
}

/// An open remote: backend, key prefix, runtime, ref store and transfer counters.
pub struct Remote {
    /// Name (`origin`).
    pub name: String,
    url: String,
    store: Arc<dyn ObjectStore>,
    base: StorePath,
    rt: tokio::runtime::Runtime,
    refs: Box<dyn RefStore>,
    tags: Box<dyn RefStore>,
    counters: Arc<Counters>,
    /// Fault injection (`DSV_FAULT`): every request is a fault point, so tests can
    /// kill a push or fetch between any two requests.
    fault: std::sync::OnceLock<Arc<dyn crate::storage::Storage>>,
    /// Where whole-pack downloads are kept while they arrive (a fetch of file data
    /// into a writable repository), so an interrupted run resumes them by range.
    spool: std::sync::OnceLock<spool::Spool>,
}

impl std::fmt::Debug for Remote {
    // Only the name and the redacted URL: the backend's own Debug could show credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("url", &crate::redact::url(&self.url))
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Opens a configured remote. `create` makes a missing local directory (push).
    pub fn open(cfg: &RemoteConfig, create: bool) -> Result<Remote> {
        install_crypto();
        let loc = url::parse(&cfg.url)?;
        let (store, base) = url::open(&cfg.url, &loc, &cfg.settings, create)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Remote {
                remote: cfg.name.clone(),
                message: format!("cannot start the I/O runtime: {e}"),
            })?;
        let counters = Arc::new(Counters::default());
        let ctx = refs::Ctx {
            store: store.clone(),
            base: base.clone(),
            rt: rt.handle().clone(),
            name: cfg.name.clone(),
            counters: counters.clone(),
            kind: refs::RefKind::Branch,
        };
        // The local file system cannot do a conditional update; every other backend can.
        let store_of = |kind| -> Result<Box<dyn RefStore>> {
            let ctx = refs::Ctx {
                kind,
                ..ctx.clone()
            };
            Ok(match loc {
                url::Location::File(ref dir) => {
                    Box::new(SequenceRefs(ctx, crate::repo::absolute(dir)?))
                }
                _ => Box::new(ConditionalRefs(ctx)),
            })
        };
        let refs = store_of(refs::RefKind::Branch)?;
        let tags = store_of(refs::RefKind::Tag)?;
        Ok(Remote {
            name: cfg.name.clone(),
            url: cfg.url.clone(),
            store,
            base,
            rt,
            refs,
            tags,
            counters,
            fault: std::sync::OnceLock::new(),
            spool: std::sync::OnceLock::new(),
        })
    }

    /// Makes every remote request a fault point of `storage` (see `DSV_FAULT`).
    pub fn set_fault_storage(&self, storage: Arc<dyn crate::storage::Storage>) {
        let _ = self.fault.set(storage);
    }

    fn fault_point(&self) -> Result<()> {
        match self.fault.get() {
            Some(s) => s.fault_point(),
            None => Ok(()),
        }
    }

    /// Keeps whole-pack downloads in `dir` while they arrive (see `spool`).
    pub(crate) fn set_spool(&self, dir: std::path::PathBuf) {
        let _ = self.spool.set(spool::Spool::new(dir));
    }

    /// Deletes the kept downloads whose records are durable now.
    pub(crate) fn release_spooled(&self) {
        if let Some(s) = self.spool.get() {
            s.release();
        }
    }

    /// Deletes every kept download (the fetch of file data is complete).
    pub(crate) fn clear_spool(&self) {
        if let Some(s) = self.spool.get() {
            s.clear();
        }
    }

    /// The ref store (branches).
    pub fn refs(&self) -> &dyn RefStore {
        self.refs.as_ref()
    }

    /// The tag store (`refs/tags/`).
    pub fn tags(&self) -> &dyn RefStore {
        self.tags.as_ref()
    }

    /// What this handle transferred so far.
    pub fn stats(&self) -> TransferStats {
        let c = &self.counters;
        TransferStats {
            bytes_up: c.up.load(Ordering::Relaxed),
            bytes_down: c.down.load(Ordering::Relaxed),
            puts: c.puts.load(Ordering::Relaxed),
            gets: c.gets.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
        }
    }

    fn err(&self, what: &str, e: object_store::Error) -> Error {
        Error::Remote {
            remote: self.name.clone(),
            message: format!("{what}: {}", safe_message(&e)),
        }
    }

    /// Key of `parts` (each may contain `/`) under the remote's prefix.
    pub fn path(&self, parts: &[&str]) -> StorePath {
        let mut p = self.base.clone();
        for part in parts {
            for seg in part.split('/').filter(|s| !s.is_empty()) {
                p = p.clone().join(seg);
            }
        }
        p
    }

    /// Reads a whole small object (`None` if absent); one larger than `cap` bytes is
    /// an error naming it, and is not read.
    pub fn get_small(&self, path: &StorePath, cap: u64) -> Result<Option<bytes::Bytes>> {
        self.fault_point()?;
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        match self.rt.block_on(get_capped(self.store.as_ref(), path, cap)) {
            Ok(Capped::Bytes(b, _)) => {
                self.counters
                    .down
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                Ok(Some(b))
            }
            Ok(Capped::TooLarge(n)) => Err(Error::Remote {
                remote: self.name.clone(),
                message: format!(
                    "object {path} is {n} bytes, more than the {cap} such an object may have (damaged or hostile remote); not read"
                ),
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("reading {path}"), e)),
        }
    }

    /// Reads byte ranges of one object (the backend coalesces nearby ranges).
    pub fn get_ranges(
        &self,
        path: &StorePath,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        self.fault_point()?;
        self.counters
            .gets
            .fetch_add(ranges.len() as u64, Ordering::Relaxed);
        let out = self
            .rt
            .block_on(self.store.get_ranges(path, ranges))
            .map_err(|e| self.err(&format!("reading {path}"), e))?;
        let n: u64 = out.iter().map(|b| b.len() as u64).sum();
        self.counters.down.fetch_add(n, Ordering::Relaxed);
        Ok(out)
    }

    /// Size of an object, `None` if absent.
    pub fn head(&self, path: &StorePath) -> Result<Option<u64>> {
        match self.rt.block_on(self.store.head(path)) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("reading {path}"), e)),
        }
    }

    /// Writes an object; with `create`, an existing object is left alone.
    pub fn put(&self, path: &StorePath, data: bytes::Bytes, create: bool) -> Result<Put> {
        let n = data.len() as u64;
        let opts = PutOptions {
            mode: if create {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..PutOptions::default()
        };
        self.fault_point()?;
        self.counters.puts.fetch_add(1, Ordering::Relaxed);
        match self
            .rt
            .block_on(self.store.put_opts(path, data.into(), opts))
        {
            Ok(_) => {
                self.counters.up.fetch_add(n, Ordering::Relaxed);
                Ok(Put::Written)
            }
            Err(object_store::Error::AlreadyExists { .. }) if create => Ok(Put::Exists),
            Err(e) => Err(self.err(&format!("writing {path}"), e)),
        }
    }

    /// Every object under `prefix` parts.
    pub fn list(&self, parts: &[&str]) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = self.path(parts);
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        match self
            .rt
            .block_on(self.store.list(Some(&prefix)).try_collect::<Vec<_>>())
        {
            Ok(v) => Ok(v),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(self.err(&format!("listing {prefix}"), e)),
        }
    }

    /// Checks the `dsv-remote` marker. A missing marker is created when `create`
    /// (first push), otherwise the remote is empty or not a dsv remote.
    pub fn check_marker(&self, create: bool) -> Result<()> {
        let path = self.path(&[format::MARKER]);
        let bytes = match self.get_small(&path, MAX_METADATA_OBJECT)? {
            Some(b) => b,
            None if create => {
                // Two first pushes may race: Create lets one win, the other reads it back.
                self.put(&path, format::marker_bytes().into(), true)?;
                self.get_small(&path, MAX_METADATA_OBJECT)?
                    .ok_or_else(|| Error::Remote {
                        remote: self.name.clone(),
                        message: "marker vanished after it was written".into(),
                    })?
            }
            None => {
                return Err(Error::Remote {
                    remote: self.name.clone(),
                    message: format!(
                        "'{}' is not a dsv remote (no '{}' object; push to it first)",
                        crate::redact::url(&self.url),
                        format::MARKER
                    ),
                });
            }
        };
        format::check_marker(&bytes).map_err(|message| Error::Remote {
            remote: self.name.clone(),
            message,
        })
    }

    /// The default branch named by the remote's `HEAD` object.
    pub fn default_branch(&self) -> Result<Option<String>> {
        let Some(bytes) = self.get_small(&self.path(&["HEAD"]), MAX_METADATA_OBJECT)? else {
            return Ok(None);
        };
        parse_head_object(&bytes)
            .map(Some)
            .map_err(|message| Error::Remote {
                remote: self.name.clone(),
                message,
            })
    }

    /// Writes `HEAD` naming `branch` unless the remote already has one.
    pub fn init_default_branch(&self, branch: &str) -> Result<()> {
        let body = serde_json::json!({ "branch": branch }).to_string();
        self.put(&self.path(&["HEAD"]), body.into_bytes().into(), true)?;
        Ok(())
    }
}

/// Where an object lives on the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteLoc {
    /// Index into [`RemoteIndex::packs`].
    pub pack: u32,
    /// Record offset in the pack.
    pub offset: u64,
    /// Record length, header included.
    pub len: u32,
}

/// What the remote has: every visible pack (one with an index) and its records.
///
/// Packs come in three classes ([`gc`]): settled (a push may stop its walk at
/// their objects), fresh (uploaded after the oldest pending gc record listed the
/// remote: present, but their closure is not vouched for) and retiring (a
/// candidate of a gc record: treated as absent by pushes, read last by fetches).
/// They are added in that order, so an object's location is in the best class
/// that holds it.
#[derive(Debug, Default)]
pub struct RemoteIndex {
    /// Pack hashes and lengths.
    pub packs: Vec<(ObjectId, u64)>,
    /// Records of every pack, pack after pack in the order they were added:
    /// (id, offset, length). One flat list, not a map: at two million objects a
    /// map of locations beside the lists of members took ~150 bytes an object.
    records: Vec<(ObjectId, u64, u32)>,
    /// Where each pack's records start in `records` (same order as `packs`).
    starts: Vec<usize>,
    /// Positions in `records` sorted by id, one per object: the first pack added
    /// that holds it (packs are added best class first). Built on the first lookup
    /// after an `add`.
    by_id: std::sync::OnceLock<Vec<u32>>,
    /// Class of each pack (same order as `packs`).
    pub class: Vec<gc::PackClass>,
    /// The gc record keys seen when the index was loaded (a push compares them
    /// again just before it moves the ref).
    pub gc_records: Vec<String>,
}

impl RemoteIndex {
    /// Where the object lives (its best pack), if any visible pack holds it.
    pub fn get(&self, id: &ObjectId) -> Option<RemoteLoc> {
        let by_id = self.by_id.get_or_init(|| self.sorted_positions());
        let i = by_id
            .binary_search_by(|&p| self.records[p as usize].0.cmp(id))
            .ok()?;
        let p = by_id[i] as usize;
        let (_, offset, len) = self.records[p];
        // The pack whose records hold position `p`.
        let pack = self.starts.partition_point(|&s| s <= p) - 1;
        Some(RemoteLoc {
            pack: pack as u32,
            offset,
            len,
        })
    }

    fn sorted_positions(&self) -> Vec<u32> {
        let mut v: Vec<u32> = (0..self.records.len() as u32).collect();
        // Stable on position: of several copies, the first pack added comes first.
        v.sort_unstable_by(|a, b| {
            self.records[*a as usize]
                .0
                .cmp(&self.records[*b as usize].0)
                .then(a.cmp(b))
        });
        v.dedup_by_key(|p| self.records[*p as usize].0);
        v.shrink_to_fit();
        v
    }

    /// Records of pack `n` (an index into `packs`): (id, offset, length).
    pub fn members(&self, n: usize) -> &[(ObjectId, u64, u32)] {
        let end = self
            .starts
            .get(n + 1)
            .copied()
            .unwrap_or(self.records.len());
        &self.records[self.starts[n]..end]
    }

    /// Whether the remote has the object (in any visible pack).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.get(id).is_some()
    }

    /// Whether the object is in a settled pack: a push may stop its walk there
    /// (everything it references is in settled packs too).
    pub fn settled(&self, id: &ObjectId) -> bool {
        self.get(id)
            .is_some_and(|l| self.class[l.pack as usize] == gc::PackClass::Settled)
    }

    /// Whether the object is in a pack no gc record retires (a push need not send it).
    pub fn kept(&self, id: &ObjectId) -> bool {
        self.get(id)
            .is_some_and(|l| self.class[l.pack as usize] != gc::PackClass::Retiring)
    }

    /// The packs a gc record retires.
    pub fn retiring_packs(&self) -> std::collections::HashSet<ObjectId> {
        self.packs
            .iter()
            .zip(&self.class)
            .filter(|(_, c)| **c == gc::PackClass::Retiring)
            .map(|((p, _), _)| *p)
            .collect()
    }

    fn add(&mut self, idx: &PackIndex) {
        self.add_as(idx, gc::PackClass::Settled)
    }

    fn add_as(&mut self, idx: &PackIndex, class: gc::PackClass) {
        self.packs.push((idx.pack, idx.pack_len));
        self.class.push(class);
        self.starts.push(self.records.len());
        // Exact: doubling would leave up to a second list's worth unused.
        self.records.reserve_exact(idx.entries.len());
        self.records
            .extend(idx.entries.iter().map(|e| (e.id, e.offset, e.len)));
        self.by_id = std::sync::OnceLock::new();
    }
}

/// Key name of a pack's index.
pub fn idx_name(pack: &ObjectId) -> String {
    format!("packs/{pack}.idx")
}

/// Key name of a pack.
pub fn pack_name(pack: &ObjectId) -> String {
    format!("packs/{pack}.dsvpack")
}

/// Loads the remote's indexes for reading: one LIST of `packs/` (and one of the
/// gc records), then only the indexes not cached under `.dsv/remotes/NAME/` are
/// downloaded (and verified, then cached). A gc record that cannot be read only
/// costs the preference for packs that are not retiring: readers are safe either way.
pub fn load_index(repo: &Repository, remote: &Remote) -> Result<RemoteIndex> {
    load_index_with(repo, remote, false)
}

/// [`load_index`] for a push: a gc record that cannot be read is an error, since
/// the packs it retires cannot be known.
pub fn load_index_for_push(repo: &Repository, remote: &Remote) -> Result<RemoteIndex> {
    load_index_with(repo, remote, true)
}

fn load_index_with(repo: &Repository, remote: &Remote, strict: bool) -> Result<RemoteIndex> {
    let state = match gc::read_state(remote) {
        Ok(s) => s,
        Err(e) if strict => return Err(e),
        Err(_) => gc::GcState::default(),
    };
    let listed = list_packs(remote)?;
    let names: Vec<ObjectId> = listed
        .iter()
        .filter(|p| p.idx.is_some())
        .map(|p| p.pack)
        .collect();
    let idxs = read_indexes(repo, remote, &names)?;
    let mut out = RemoteIndex {
        gc_records: state.keys(),
        ..RemoteIndex::default()
    };
    let mut classed: Vec<(gc::PackClass, PackIndex)> = listed
        .iter()
        .filter_map(|p| Some((p, p.idx?)))
        .zip(idxs)
        .filter_map(|((p, mtime), idx)| Some((state.class_of(&p.pack, mtime), idx?)))
        .collect();
    classed.sort_by_key(|(c, i)| (*c, i.pack));
    // Each decoded index goes as soon as its records are copied.
    for (class, idx) in classed {
        out.add_as(&idx, class);
    }
    Ok(out)
}

/// A pack name seen in the listing of `packs/`.
#[derive(Debug, Clone)]
pub struct ListedPack {
    /// The pack's hash.
    pub pack: ObjectId,
    /// Size of `packs/<hash>.dsvpack`, if listed.
    pub pack_size: Option<u64>,
    /// When `packs/<hash>.dsvpack` was last written (ms since the epoch, the store's clock).
    pub pack_time: Option<i64>,
    /// When `packs/<hash>.idx` was last written, if listed (ms, the store's clock).
    pub idx: Option<i64>,
}

/// One LIST of `packs/`: every pack or index name, sorted by hash.
pub fn list_packs(remote: &Remote) -> Result<Vec<ListedPack>> {
    let mut by: std::collections::BTreeMap<ObjectId, ListedPack> = Default::default();
    for meta in remote.list(&["packs"])? {
        let Some(file) = meta.location.filename() else {
            continue;
        };
        let time = meta.last_modified.timestamp_millis();
        let (hex, is_idx) = if let Some(h) = file.strip_suffix(".idx") {
            (h, true)
        } else if let Some(h) = file.strip_suffix(".dsvpack") {
            (h, false)
        } else {
            continue;
        };
        let Some(id) = ObjectId::from_hex(hex) else {
            continue;
        };
        let e = by.entry(id).or_insert(ListedPack {
            pack: id,
            pack_size: None,
            pack_time: None,
            idx: None,
        });
        if is_idx {
            e.idx = Some(time);
        } else {
            e.pack_size = Some(meta.size);
            e.pack_time = Some(time);
        }
    }
    Ok(by.into_values().collect())
}

/// The indexes of `names` (in that order): from the cache under
/// `.dsv/remotes/NAME/idx/`, else downloaded (at most once each), verified and cached.
/// `None` for an index that vanished since the listing (a collector deleted its pack).
pub fn read_indexes(
    repo: &Repository,
    remote: &Remote,
    names: &[ObjectId],
) -> Result<Vec<Option<PackIndex>>> {
    let cache = cache_dir(repo, &remote.name).join("idx");
    let mut out: Vec<Option<PackIndex>> = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for (i, pack) in names.iter().enumerate() {
        let path = cache.join(format!("{pack}.idx"));
        match std::fs::read(&path)
            .ok()
            .and_then(|b| PackIndex::decode(&b).ok())
        {
            Some(idx) if idx.pack == *pack => out.push(Some(idx)),
            _ => {
                out.push(None);
                missing.push((i, *pack));
            }
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let paths: Vec<StorePath> = missing
        .iter()
        .map(|(_, p)| remote.path(&[&idx_name(p)]))
        .collect();
    remote
        .counters
        .gets
        .fetch_add(paths.len() as u64, Ordering::Relaxed);
    let fetched: Vec<std::result::Result<Capped, object_store::Error>> = remote.rt.block_on(
        futures::stream::iter(
            paths
                .iter()
                .map(|p| get_capped(remote.store.as_ref(), p, MAX_PACK_INDEX)),
        )
        .buffered(8)
        .collect(),
    );
    if repo.writable() {
        repo.storage.create_dir_all(&cache)?;
    }
    for (((i, pack), path), r) in missing.iter().zip(&paths).zip(fetched) {
        let bytes = match r {
            Err(object_store::Error::NotFound { .. }) => continue,
            r => r.map_err(|e| remote.err(&format!("reading {path}"), e))?,
        };
        let bytes = match bytes {
            Capped::Bytes(b, _) => b,
            Capped::TooLarge(n) => {
                return Err(Error::Remote {
                    remote: remote.name.clone(),
                    message: format!(
                        "pack index {path} is {n} bytes, more than a pack index may have ({MAX_PACK_INDEX}); not read"
                    ),
                });
            }
        };
        remote
            .counters
            .down
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let idx = PackIndex::decode(&bytes).map_err(|m| Error::Remote {
            remote: remote.name.clone(),
            message: format!("pack index {path}: {m}"),
        })?;
        if idx.pack != *pack {
            return Err(Error::Remote {
                remote: remote.name.clone(),
                message: format!("pack index {path} describes pack {}", idx.pack),
            });
        }
        if repo.writable() {
            repo.storage
                .write_atomic(&cache.join(format!("{pack}.idx")), &bytes)?;
        }
        out[*i] = Some(idx);
    }
    Ok(out)
}

/// Remote-tracking ref name of `branch` on `remote`.
pub fn tracking_ref(remote: &str, branch: &str) -> String {
    format!("{REMOTES}{remote}/{branch}")
}

/// A branch compared with its remote-tracking branch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Upstream {
    /// Remote name.
    pub remote: String,
    /// Branch name on the remote.
    pub branch: String,
    /// Local commits the remote-tracking branch lacks.
    pub ahead: u64,
    /// Remote-tracking commits the local branch lacks.
    pub behind: u64,
}

fn reachable_commits(
    repo: &Repository,
    tip: ObjectId,
) -> Result<std::collections::HashSet<ObjectId>> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![tip];
    while let Some(c) = stack.pop() {
        if !seen.insert(c) || !repo.store.contains(&c)? {
            continue;
        }
        stack.extend(crate::object::Commit::load(&repo.store, &c)?.parents);
    }
    Ok(seen)
}

/// Ahead/behind of `branch` against `REMOTE/branch` (origin first, then other
/// remotes in name order); `None` when no remote-tracking branch of that name exists.
pub fn upstream_status(repo: &Repository, branch: &str) -> Result<Option<Upstream>> {
    let Some(local) = repo.refs.read(&format!("{}{branch}", crate::refs::HEADS))? else {
        return Ok(None);
    };
    let mut remotes = list_remotes(repo)?;
    remotes.sort_by_key(|r| r.name != "origin");
    for r in remotes {
        let Some(theirs) = repo.refs.read(&tracking_ref(&r.name, branch))? else {
            continue;
        };
        let a = reachable_commits(repo, local)?;
        let b = reachable_commits(repo, theirs)?;
        return Ok(Some(Upstream {
            remote: r.name,
            branch: branch.to_string(),
            ahead: a.difference(&b).count() as u64,
            behind: b.difference(&a).count() as u64,
        }));
    }
    Ok(None)
}

/// Every remote-tracking branch as (`REMOTE/BRANCH`, commit).
pub fn list_tracking(repo: &Repository) -> Result<Vec<(String, ObjectId)>> {
    repo.refs.list(REMOTES)
}
