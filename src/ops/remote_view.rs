//! A remote read in place (the Python package's `Repository.open_remote`): a
//! metadata mirror of the remote (commits, trees, and the label files, sidecar
//! and `dsv.toml` of the versions read) in a local partial repository, and frame
//! contents read by byte ranges from the remote's packs into a bounded
//! content-addressed cache ([`crate::remote::blob_cache`]). No checkout, no
//! frame stored in the mirror.
//!
//! The mirror is opened for each operation rather than held: a long training
//! run reading frames holds no lock, so another process can refresh the mirror.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::lock::Access;
use crate::object::Commit;
use crate::progress::NoProgress;
use crate::remote::blob_cache::{BlobCache, CacheStats};
use crate::remote::fetch::{FetchMode, fetch, fetch_objects, open_remote};
use crate::remote::{Remote, RemoteIndex, TransferStats, load_index};
use crate::repo::{OpenOptions, Repository};
use crate::settings::Settings;

/// The remote's name in the mirror.
const ORIGIN: &str = "origin";

/// A remote opened for reading in place; see the module documentation.
pub struct RemoteView {
    mirror: PathBuf,
    opts: OpenOptions,
    remote: Remote,
    index: RemoteIndex,
    cache: BlobCache,
}

/// Transfer and cache figures of a view.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ViewStats {
    /// Requests and bytes to the remote (ranges of packs, label files, metadata).
    pub transfer: TransferStats,
    /// The frame cache.
    pub cache: CacheStats,
}

impl RemoteView {
    /// Opens `url` with its mirror and cache under `cache_dir` (made if missing;
    /// one directory serves one remote). With `refresh`, the mirror first fetches
    /// the remote's branches (skipped, keeping what the mirror has, when another
    /// process holds the mirror's lock).
    pub fn open(
        url: &str,
        cache_dir: &Path,
        cache_limit: u64,
        refresh: bool,
        settings: Settings,
    ) -> Result<RemoteView> {
        let cache_dir = crate::repo::absolute(cache_dir)?;
        // A relative local path is relative to the caller, not to the mirror.
        let url = match crate::remote::url::parse(url)? {
            crate::remote::url::Location::File(p) if p.is_relative() => {
                crate::repo::absolute(&p)?.display().to_string()
            }
            _ => url.to_string(),
        };
        let mirror = cache_dir.join("mirror");
        let opts = OpenOptions {
            settings,
            ..Default::default()
        };
        if !mirror.join(crate::repo::DSV_DIR).join("format").is_file() {
            std::fs::create_dir_all(&mirror)
                .map_err(|e| Error::io("creating", mirror.clone(), e))?;
            match Repository::init(&mirror, &opts) {
                Ok(r) => drop(r),
                // Another process made it meanwhile.
                Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if refresh {
            match Repository::open_root(&mirror, Access::Write, &opts) {
                Ok(repo) => Self::refresh(repo.into_writable()?, &url)?,
                Err(Error::Locked { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let repo = Repository::open_root(&mirror, Access::Read, &opts)?;
        let cfg = crate::remote::remote_config(&repo, ORIGIN)?;
        if cfg.url != url {
            return Err(Error::InvalidArgument(format!(
                "cache directory '{}' mirrors {}, not {}; give each remote its own cache directory",
                cache_dir.display(),
                crate::redact::url(&cfg.url),
                crate::redact::url(&url)
            )));
        }
        let remote = open_remote(&repo, ORIGIN)?;
        let index = load_index(&repo, &remote)?;
        let cache = BlobCache::open(&cache_dir.join("objects"), cache_limit)?;
        drop(repo);
        Ok(RemoteView {
            mirror,
            opts,
            remote,
            index,
            cache,
        })
    }

    /// Fetches commits and trees, then makes each remote branch a local branch of
    /// the mirror (so `main` resolves) and HEAD the remote's default branch.
    fn refresh(repo: crate::repo::WritableRepo, url: &str) -> Result<()> {
        if crate::remote::remote_config(&repo, ORIGIN).is_err() {
            crate::remote::add_remote(&repo, ORIGIN, url, &Default::default())?;
        }
        // The mirror follows the remote exactly: a branch deleted there no longer resolves.
        fetch(&repo, ORIGIN, FetchMode::Metadata, true, &NoProgress)?;
        let (time, _) = repo.now()?;
        let who = repo.reflog_identity();
        let ns = format!("{}{ORIGIN}/", crate::refs::REMOTES);
        for (branch, id) in repo.refs.list(&ns)? {
            let full = format!("{}{branch}", crate::refs::HEADS);
            if repo.refs.read(&full)? != Some(id) {
                repo.refs.update(&full, id, &who, time, "mirror")?;
            }
        }
        let remote = open_remote(&repo, ORIGIN)?;
        if let Some(b) = remote.default_branch()? {
            let head = crate::refs::Head::Branch(b);
            if repo.refs.head()? != head {
                repo.refs.set_head(&head, &who, time, "mirror")?;
            }
        }
        // The pack indexes, cached in the mirror for read-only opens.
        load_index(&repo, &remote)?;
        Ok(())
    }

    /// The mirror (commits, trees, label files; no frames), opened for reading.
    pub fn open_mirror(&self) -> Result<Repository> {
        Repository::open_root(&self.mirror, Access::Read, &self.opts)
    }

    /// Downloads into the mirror the files of `commit` that are not frames
    /// (label files, sidecar, `dsv.toml`, class names) and that it lacks, so the
    /// version's frame index and diffs can be built. Takes the mirror's write
    /// lock only when something is missing.
    pub fn prepare(&self, commit: &ObjectId) -> Result<()> {
        let missing = non_frame_files(&self.open_mirror()?, commit, true)?;
        if missing.is_empty() {
            return Ok(());
        }
        let w = Repository::open_root(&self.mirror, Access::Write, &self.opts)?;
        // dsv.toml first: it says which files are frames.
        fetch_objects(&w, &non_frame_files(&w, commit, false)?, &NoProgress)?;
        let rest = non_frame_files(&w, commit, true)?;
        fetch_objects(&w, &rest, &NoProgress)?;
        Ok(())
    }

    /// Verified contents of `ids` (in order): from the cache, else by byte
    /// ranges of the remote's packs (then cached).
    pub fn read_many(&self, ids: &[ObjectId]) -> Result<Vec<Vec<u8>>> {
        let mut out: Vec<Option<Vec<u8>>> = ids.iter().map(|id| self.cache.get(id)).collect();
        let missing: Vec<ObjectId> = ids
            .iter()
            .zip(&out)
            .filter(|(_, d)| d.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            let got = crate::remote::read::read_blobs(&self.remote, &self.index, &missing)?;
            let mut got = missing.iter().zip(got);
            for slot in out.iter_mut().filter(|d| d.is_none()) {
                if let Some((id, bytes)) = got.next() {
                    // The cache is derived data: one that cannot be written (a
                    // full disk) slows reads down, it does not fail them.
                    let _ = self.cache.put(id, &bytes);
                    *slot = Some(bytes);
                }
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Transfer and cache figures of this handle.
    pub fn stats(&self) -> ViewStats {
        ViewStats {
            transfer: self.remote.stats(),
            cache: self.cache.stats(),
        }
    }
}

/// Ids of the files of `commit` the store lacks: with `all`, every file that is
/// not a frame by its path (by the version's `dsv.toml` when the store has it),
/// else only `dsv.toml`.
fn non_frame_files(repo: &Repository, commit: &ObjectId, all: bool) -> Result<Vec<ObjectId>> {
    use crate::layout::{Layout, Role};
    use crate::worktree::sources::TreeSource;
    let tree = Commit::load(&repo.store, commit)?.tree;
    if !all {
        let toml = [crate::dsv_toml::FILE_NAME.as_bytes().to_vec()];
        let files = crate::object::diff::flatten_scoped(&repo.store, Some(&tree), &toml)?;
        let mut ids = Vec::new();
        for st in files.values() {
            if !repo.store.contains(&st.id)? {
                ids.push(st.id);
            }
        }
        return Ok(ids);
    }
    let files = crate::object::diff::flatten_scoped(&repo.store, Some(&tree), &[])?;
    let toml_id = files
        .get(crate::dsv_toml::FILE_NAME.as_bytes())
        .map(|st| st.id);
    let layout = match toml_id {
        Some(id) if !repo.store.contains(&id)? => None,
        _ => Layout::load(&TreeSource::new(&repo.store, Some(tree)))?.ok(),
    }
    .unwrap_or_else(|| Layout::new(crate::dsv_toml::DsvToml::default()));
    let mut ids = Vec::new();
    for (path, st) in &files {
        let path = crate::paths::display_path(path);
        if layout.role_by_path(&path) != Some(Role::Frame) && !repo.store.contains(&st.id)? {
            ids.push(st.id);
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}
