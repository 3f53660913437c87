//! How the working tree differs from the index: one walk merged with the sorted
//! index, stat first, content hashed only where the stat changed (the racy
//! timestamp rule of [`super::index::IndexState::is_clean`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::id::ObjectId;
use crate::object::EntryMode;
use crate::object::diff::FileState;
use crate::paths::{os_path, path_within};
use crate::progress::Progress;
use crate::store::chunk::StatStamp;

use super::index::{IndexEntry, IndexState};
use super::scan::{WorkFile, scan, stat_path};

/// Hashes a worktree file (or a symlink's target) without storing it.
pub fn hash_worktree_file(root: &Path, f: &WorkFile) -> Result<ObjectId> {
    let path = root.join(os_path(&f.path));
    if f.mode == EntryMode::Symlink {
        let target = std::fs::read_link(&path).ctx("reading link", &path)?;
        return Ok(ObjectId::hash(target.as_os_str().as_bytes()));
    }
    let mut file = std::fs::File::open(&path).ctx("opening", &path)?;
    let mut hasher = blake3::Hasher::new();
    if f.stat.size <= 1 << 20 {
        let mut buf = Vec::with_capacity(f.stat.size as usize);
        file.read_to_end(&mut buf).ctx("reading", &path)?;
        hasher.update(&buf);
    } else {
        hasher.update_reader(&mut file).ctx("reading", &path)?;
    }
    Ok(ObjectId(*hasher.finalize().as_bytes()))
}

/// lstat of a tracked path: `None` when it is missing, not a trackable file, or below a
/// symlinked directory (see [`super::symlink_prefix`]).
pub fn stat_tracked(root: &Path, path: &[u8]) -> Option<WorkFile> {
    if super::symlink_prefix(root, path).is_some() {
        return None;
    }
    stat_path(root, path)
}

/// How the working tree differs from the index.
#[derive(Debug, Default)]
pub struct WorktreeDelta {
    /// Tracked files whose content or mode differs: (file, its current id if hashed).
    pub modified: Vec<(WorkFile, Option<ObjectId>)>,
    /// Tracked paths missing from the working tree.
    pub deleted: Vec<Vec<u8>>,
    /// Files not in the index.
    pub untracked: Vec<WorkFile>,
    /// Clean files whose stat changed: the entries to record so the next status is fast.
    pub refreshed: Vec<(Vec<u8>, IndexEntry)>,
    /// The index entries of the modified and deleted paths (what they were).
    pub old: BTreeMap<Vec<u8>, IndexEntry>,
}

/// Compares the working tree under `scopes` with the index. When `hash` is false,
/// stat-changed files are reported as modified without reading them (for `add`,
/// which reads them anyway).
pub fn worktree_delta(
    root: &Path,
    index: &IndexState,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let files = scan(root, scopes, progress)?;
    classify(root, index, files, scopes, hash, progress)
}

/// [`worktree_delta`] for files already scanned.
pub fn classify(
    root: &Path,
    index: &IndexState,
    files: Vec<WorkFile>,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let each = |f: &mut dyn FnMut(&[u8], &IndexEntry) -> Result<()>| {
        index.entries.iter().try_for_each(|(p, e)| f(p, e))
    };
    classify_each(root, each, files, scopes, hash, progress)
}

/// [`classify`] against entries handed over in path order by `each` (e.g. straight
/// from the index table by [`super::index::IndexReader::each`], with no map built).
pub fn classify_each(
    root: &Path,
    each: impl FnOnce(&mut dyn FnMut(&[u8], &IndexEntry) -> Result<()>) -> Result<()>,
    files: impl IntoIterator<Item = WorkFile>,
    scopes: &[Vec<u8>],
    hash: bool,
    progress: &dyn Progress,
) -> Result<WorktreeDelta> {
    let whole = scopes.is_empty() || scopes.iter().any(|s| s.is_empty());
    let in_scope = |p: &[u8]| whole || scopes.iter().any(|s| path_within(p, s));
    let mut delta = WorktreeDelta::default();
    let mut suspects: Vec<(WorkFile, IndexEntry)> = Vec::new();
    let mut unseen: Vec<(Vec<u8>, IndexEntry)> = Vec::new();
    // Both lists are sorted by path: one merge pass classifies everything.
    let mut files = files.into_iter().peekable();
    each(&mut |p, e| {
        if !in_scope(p) {
            return Ok(());
        }
        while let Some(f) = files.next_if(|f| f.path.as_slice() < p) {
            delta.untracked.push(f);
        }
        match files.next_if(|f| f.path.as_slice() == p) {
            Some(f) => {
                if !(f.mode == e.mode && is_clean(e, &f.stat)) {
                    suspects.push((f, *e));
                }
            }
            None => unseen.push((p.to_vec(), *e)),
        }
        Ok(())
    })?;
    delta.untracked.extend(files);
    // Tracked paths the walk did not report: deleted, or ignored by .dsvignore but still tracked.
    for (path, e) in unseen {
        match stat_tracked(root, &path) {
            Some(f) if f.mode == e.mode && is_clean(&e, &f.stat) => {}
            Some(f) => suspects.push((f, e)),
            None => {
                delta.old.insert(path.clone(), e);
                delta.deleted.push(path);
            }
        }
    }
    suspects.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for (f, e) in &suspects {
        delta.old.insert(f.path.clone(), *e);
    }
    if !hash {
        delta.modified = suspects.into_iter().map(|(f, _)| (f, None)).collect();
        return Ok(delta);
    }
    progress.start("checking", Some(suspects.len() as u64));
    let results: Vec<Result<(WorkFile, IndexEntry, Option<ObjectId>)>> = suspects
        .into_par_iter()
        .map(|(f, e)| {
            let r = match hash_worktree_file(root, &f) {
                Ok(id) => Ok((f, e, Some(id))),
                // Vanished between the walk and the read: report as deleted.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok((f, e, None))
                }
                Err(err) => Err(err),
            };
            progress.inc(1);
            r
        })
        .collect();
    progress.finish();
    for r in results {
        let (f, e, id) = r?;
        match id {
            Some(id) if id == e.id && f.mode == e.mode => {
                delta.old.remove(&f.path);
                let entry = IndexEntry {
                    mode: f.mode,
                    id,
                    stat: f.stat,
                };
                delta.refreshed.push((f.path, entry));
            }
            Some(id) => delta.modified.push((f, Some(id))),
            None => delta.deleted.push(f.path),
        }
    }
    delta.deleted.sort();
    Ok(delta)
}

/// Whether `entry`'s stat can be trusted against `actual` (see [`IndexState::is_clean`]).
fn is_clean(entry: &IndexEntry, actual: &StatStamp) -> bool {
    entry.stat == *actual && entry.stat.mtime_ns != 0
}

/// Index entries as file states.
pub fn index_states(index: &IndexState) -> BTreeMap<Vec<u8>, FileState> {
    index
        .entries
        .iter()
        .map(|(p, e)| {
            (
                p.clone(),
                FileState {
                    mode: e.mode,
                    id: e.id,
                    size: e.stat.size,
                },
            )
        })
        .collect()
}

/// Stat of a worktree file as an index entry, for entries written by checkout.
pub fn entry_from_stat(mode: EntryMode, id: ObjectId, stat: StatStamp) -> IndexEntry {
    IndexEntry { mode, id, stat }
}
