//! `add` and `rm`: record working-tree files in the store and the index.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::paths::{display_path, os_path, path_within};
use crate::progress::Progress;
use crate::repo::{Repository, WritableRepo};
use crate::worktree::delta::classify_each;
use crate::worktree::index::{IndexEdit, IndexEntry, IndexReader, IndexVersion, now_ns};
use crate::worktree::scan::{WorkFile, scan_runs};

/// What `add` did.
#[derive(Debug, Default, Serialize)]
pub struct AddReport {
    /// Paths newly tracked.
    pub added: u64,
    /// Tracked paths whose content changed.
    pub modified: u64,
    /// Tracked paths removed because they are gone from the working tree.
    pub removed: u64,
    /// New objects written to the store.
    pub new_objects: u64,
    /// Bytes appended to packs.
    pub new_bytes: u64,
    /// Paths added or whose content changed (for checks of what was staged).
    #[serde(skip)]
    pub changed: Vec<Vec<u8>>,
    /// How the file-system monitor was used.
    #[serde(skip)]
    pub monitor: crate::worktree::fsmonitor::MonitorUse,
}

/// Resolves user paths into repository paths, rejecting paths outside the worktree.
pub fn pathspecs(
    repo: &Repository,
    cwd: &Path,
    paths: &[std::path::PathBuf],
) -> Result<Vec<Vec<u8>>> {
    paths.iter().map(|p| repo.repo_path(cwd, p)).collect()
}

fn check_matches(
    repo: &Repository,
    index: &IndexReader,
    scopes: &[Vec<u8>],
    user: &[std::path::PathBuf],
) -> Result<()> {
    for (scope, orig) in scopes.iter().zip(user) {
        if scope.is_empty() {
            continue;
        }
        if let Some(link) = crate::worktree::symlink_prefix(repo.root(), scope) {
            return Err(AddError::BeyondSymlink {
                pathspec: orig.display().to_string(),
                link: display_path(&link),
            }
            .into());
        }
        let exists = std::fs::symlink_metadata(repo.worktree_path(scope)).is_ok();
        if !exists && index.get_many([scope])?[0].is_none() && !index.has_under(scope)? {
            return Err(Error::PathspecNoMatch(orig.display().to_string()));
        }
    }
    Ok(())
}

/// Stages files under `scopes` (empty = whole tree): new and changed files are
/// stored, vanished ones are removed from the index. All or nothing: on any
/// error the index is left as it was.
pub fn add(
    repo: &WritableRepo,
    scopes: &[Vec<u8>],
    user_paths: &[std::path::PathBuf],
    progress: &dyn Progress,
) -> Result<AddReport> {
    let stamp = now_ns();
    let reader = repo.index.reader()?;
    check_matches(repo, &reader, scopes, user_paths)?;
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    // The monitor's session takes the index as a map; without it (the default) the
    // entries stream from one read view into the comparison with the walk, and the
    // whole index is never held in memory (about 130 bytes an entry as a map).
    let (session, mut delta) = if whole && repo.fsmonitor() {
        let index = reader.load()?;
        let s = crate::worktree::fsmonitor::Session::begin(repo.dsv_dir(), &index);
        let delta = s.delta(repo.root(), &index, false, progress)?;
        (Some(s), delta)
    } else {
        let files = scan_runs(repo.root(), scopes, progress)?
            .into_iter()
            .flatten();
        let each = |f: &mut dyn FnMut(&[u8], &IndexEntry) -> Result<()>| reader.each(f);
        let delta = classify_each(repo.root(), each, files, scopes, false, progress)?;
        (None, delta)
    };
    let read_at = reader.base()?;
    let index_empty = reader.is_empty()?;
    // Outside a sparse working tree an absent file keeps its index entry (the commit's).
    super::status::keep_sparse(repo, &mut delta.deleted)?;
    let mut report = AddReport::default();
    let todo_len = delta.modified.len() + delta.untracked.len();
    progress.start("adding", Some(todo_len as u64));
    let root = repo.root();
    let (modified, untracked) = (delta.modified, delta.untracked);
    // One id per file, in the order of `modified` then `untracked`: the files stay in
    // the delta's lists and the index is written straight from them, with no list
    // of edits beside (a first add of a large tree lists every file, and each copy
    // of that list costs about 100 bytes a file).
    let failed = std::sync::Mutex::new(Vec::new());
    let store_all = || -> Vec<ObjectId> {
        let store = |i: usize, f: &WorkFile| {
            let id = match store_one(repo, root, f) {
                Ok(entry) => entry.id,
                Err(e) => {
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, e));
                    ObjectId([0; 32])
                }
            };
            progress.inc(1);
            id
        };
        let first = modified.len();
        modified
            .par_iter()
            .enumerate()
            .map(|(i, (f, _))| store(i, f))
            .chain(
                untracked
                    .par_iter()
                    .enumerate()
                    .map(|(i, f)| store(first + i, f)),
            )
            .collect()
    };
    let ids = match hashing_pool(todo_len) {
        Some(pool) => pool.install(store_all),
        None => store_all(),
    };
    progress.finish();
    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    if !failed.is_empty() {
        // In the order of the files, whichever thread failed first.
        failed.sort_by_key(|(i, _)| *i);
        return Err(first_or_multiple(
            failed.into_iter().map(|(_, e)| e).collect(),
            "add",
        ));
    }
    let (modified_ids, untracked_ids) = ids.split_at(modified.len());
    // Whether each modified path's content changed (else only its stat is refreshed).
    let mut content_changed = Vec::with_capacity(modified.len());
    for ((f, _), id) in modified.iter().zip(modified_ids) {
        // `old` holds the entries of the modified paths (what they were).
        let same = delta
            .old
            .get(&f.path)
            .is_some_and(|e| e.id == *id && e.mode == f.mode);
        if !same {
            report.modified += 1;
        }
        content_changed.push(!same);
    }
    report.added = untracked.len() as u64;
    // A tracked path has no entry above or below it (every Set removes those), so
    // only a new path can conflict. Their paths are not set by this add (a file
    // cannot be both a directory and a file), so they may go first.
    let mut conflicts = Vec::new();
    if !index_empty {
        let mut dirs = HashMap::new();
        for f in &untracked {
            conflicts.extend(conflicting_removals(&reader, &f.path, &mut dirs)?);
        }
    }
    report.removed = delta.deleted.len() as u64;
    repo.store.flush()?;
    let stats = repo.store.write_stats();
    report.new_objects = stats.objects;
    report.new_bytes = stats.bytes;
    drop(reader);
    let entry = |f: &WorkFile, id: &ObjectId| IndexEntry {
        mode: f.mode,
        id: *id,
        stat: f.stat,
    };
    let version = if conflicts.is_empty() && ids.is_empty() && delta.deleted.is_empty() {
        IndexVersion {
            generation: read_at.generation,
            stamp: read_at.stamp,
        }
    } else {
        let edits = conflicts
            .iter()
            .map(IndexEdit::as_ref)
            .chain(
                modified
                    .iter()
                    .zip(modified_ids)
                    .map(|((f, _), id)| (f.path.as_slice(), Some(entry(f, id)))),
            )
            .chain(
                untracked
                    .iter()
                    .zip(untracked_ids)
                    .map(|(f, id)| (f.path.as_slice(), Some(entry(f, id)))),
            )
            .chain(delta.deleted.iter().map(|p| (p.as_slice(), None)));
        repo.index.apply_each(edits, stamp)?
    };
    drop((ids, conflicts, delta.deleted));
    // The paths move from the file lists, not copied.
    report.changed = modified
        .into_iter()
        .zip(content_changed)
        .filter_map(|((f, _), changed)| changed.then_some(f.path))
        .chain(untracked.into_iter().map(|f| f.path))
        .collect();
    if let Some(s) = session {
        // Everything found is staged now: nothing is remembered as not clean.
        s.save(repo.dsv_dir(), version, &Default::default());
        report.monitor = s.usage;
    }
    // Staging a conflicted file is how a hand-edited resolution is recorded.
    super::merge::mark_added(repo, scopes)?;
    Ok(report)
}

/// Files to store before [`hashing_pool`] is worth a thread pool of its own.
const OWN_POOL_FILES: usize = 1000;

/// A pool with twice as many threads as the global one, for storing many files.
///
/// Hashing is CPU work, but a thread also waits now and then for a file that is not
/// in the page cache, and while a durable add streams its packs to the disk such a
/// read queues behind the pack writes (B100k: the hashing threads spent about 40% of
/// their time blocked in `read`). Spare threads keep the cores busy meanwhile. `None`
/// for small adds and with one thread (the crash tests rely on one thread writing in
/// a fixed order).
fn hashing_pool(files: usize) -> Option<rayon::ThreadPool> {
    let n = rayon::current_num_threads();
    if files < OWN_POOL_FILES || n < 2 {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(2 * n)
        .thread_name(|i| format!("dsv-add-{i}"))
        .build()
        .ok()
}

/// Stores one file or symlink and returns its index entry.
pub(crate) fn store_one(repo: &Repository, root: &Path, f: &WorkFile) -> Result<IndexEntry> {
    let path = root.join(os_path(&f.path));
    let id = if f.mode == EntryMode::Symlink {
        use std::os::unix::ffi::OsStrExt;
        let target = std::fs::read_link(&path).ctx("reading link", &path)?;
        repo.store.put(target.as_os_str().as_bytes())?
    } else {
        repo.store.put_file(&path, &f.stat)?.id
    };
    Ok(IndexEntry {
        mode: f.mode,
        id,
        stat: f.stat,
    })
}

/// Index entries that cannot coexist with the new `path` (a file where a directory
/// now is, or the reverse), looked up in the index; `dirs` remembers which parent
/// directories of earlier paths the index has as files.
fn conflicting_removals(
    index: &IndexReader,
    path: &[u8],
    dirs: &mut HashMap<Vec<u8>, bool>,
) -> Result<Vec<IndexEdit>> {
    let mut out = Vec::new();
    for (i, b) in path.iter().enumerate() {
        if *b != b'/' {
            continue;
        }
        let dir = &path[..i];
        let tracked = match dirs.get(dir) {
            Some(t) => *t,
            None => {
                let t = index.get_many([dir])?[0].is_some();
                dirs.insert(dir.to_vec(), t);
                t
            }
        };
        if tracked {
            out.push(IndexEdit::Remove(dir.to_vec()));
        }
    }
    if index.has_under(path)? {
        let below = index.subset(&[path.to_vec()])?;
        out.extend(
            below
                .entries
                .into_keys()
                .filter(|p| p.len() > path.len())
                .map(IndexEdit::Remove),
        );
    }
    Ok(out)
}

/// Folds several errors into one, keeping the first's message in front.
pub fn first_or_multiple(mut errors: Vec<Error>, what: &str) -> Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    Error::Multiple {
        summary: format!(
            "{what} failed for {} paths; first: {}",
            errors.len(),
            errors[0]
        ),
        errors,
    }
}

/// What `rm` did.
#[derive(Debug, Default, Serialize)]
pub struct RmReport {
    /// Paths removed from the index.
    #[serde(serialize_with = "crate::paths::ser_many")]
    pub removed: Vec<Vec<u8>>,
}

/// Removes paths from the index and (unless `cached`) from the working tree.
/// Refuses to delete files with unstaged changes unless `force`.
pub fn rm(
    repo: &WritableRepo,
    scopes: &[Vec<u8>],
    user: &[std::path::PathBuf],
    cached: bool,
    force: bool,
) -> Result<RmReport> {
    let stamp = now_ns();
    let index = repo.index.load()?;
    let mut targets = Vec::new();
    for (scope, orig) in scopes.iter().zip(user) {
        let before = targets.len();
        for (p, e) in index.entries.range(scope.clone()..) {
            if !path_within(p, scope) {
                if p.as_slice() > scope.as_slice() && !p.starts_with(scope) {
                    break;
                }
                continue;
            }
            targets.push((p.clone(), *e));
        }
        if targets.len() == before {
            return Err(Error::PathspecNoMatch(orig.display().to_string()));
        }
    }
    if !cached && !force {
        for (p, e) in &targets {
            if let Some(f) = crate::worktree::delta::stat_tracked(repo.root(), p)
                && !(f.mode == e.mode && index.is_clean(e, &f.stat))
                && crate::worktree::delta::hash_worktree_file(repo.root(), &f)? != e.id
            {
                return Err(AddError::LocalModifications(display_path(p)).into());
            }
        }
    }
    let edits: Vec<IndexEdit> = targets
        .iter()
        .map(|(p, _)| IndexEdit::Remove(p.clone()))
        .collect();
    repo.index.apply(&edits, stamp)?;
    if !cached {
        for (p, _) in &targets {
            crate::worktree::write::remove_entry(repo.root(), p, repo.storage.as_ref())?;
        }
    }
    Ok(RmReport {
        removed: targets.into_iter().map(|(p, _)| p).collect(),
    })
}

/// Why `add` or `rm` refused a path.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// A pathspec that goes through a symbolic link.
    #[error(
        "pathspec '{pathspec}' is beyond a symbolic link ('{link}' is a symlink; dsv does not follow it)"
    )]
    BeyondSymlink {
        /// The pathspec as given.
        pathspec: String,
        /// The symlink on its way.
        link: String,
    },
    /// `rm` of a file whose worktree copy has unstaged edits.
    #[error(
        "'{0}' has local modifications; use --cached to keep the file, or -f to delete it anyway"
    )]
    LocalModifications(String),
}

impl crate::error::ModuleError for AddError {}

crate::error::module_error!(AddError);
