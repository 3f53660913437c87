//! `dsv sparse set|list|disable`: which paths the working tree holds
//! ([`crate::worktree::sparse`]), and bringing the working tree in line when that
//! changes.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::object::diff::FileState;
use crate::paths::display_path;
use crate::progress::Progress;
use crate::repo::{Repository, WritableRepo};
use crate::worktree::delta::{hash_worktree_file, stat_tracked};
use crate::worktree::sparse::{self, Sparse};

/// What `sparse set` or `sparse disable` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SparseReport {
    /// The paths the working tree now holds (empty: everything).
    pub paths: Vec<String>,
    /// Files written (now inside, and absent before).
    pub written: u64,
    /// Files removed (now outside, and unchanged).
    pub removed: u64,
    /// Files now outside that were kept because they have local changes.
    pub kept: Vec<String>,
    /// Records downloaded (a partial repository).
    pub downloaded: u64,
}

/// The sparse definition, `None` when the working tree holds everything.
pub fn list(repo: &Repository) -> Result<Option<Sparse>> {
    sparse::load(repo.dsv_dir())
}

/// Makes the working tree hold only `paths` (repository paths; an empty one means
/// everything, as `disable`).
pub fn set(
    repo: &WritableRepo,
    paths: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<SparseReport> {
    if paths.is_empty() {
        return Err(Error::InvalidArgument(
            "sparse set needs at least one path".into(),
        ));
    }
    for p in paths.iter().filter(|p| !p.is_empty()) {
        sparse::check_path(p).map_err(Error::InvalidArgument)?;
    }
    let def = Sparse::new(paths.to_vec());
    if def.is_everything() {
        return disable(repo, progress);
    }
    sparse::save(repo.storage.as_ref(), repo.dsv_dir(), &def)?;
    reapply(repo, Some(&def), progress)
}

/// Makes the working tree hold everything again.
pub fn disable(repo: &WritableRepo, progress: &dyn Progress) -> Result<SparseReport> {
    sparse::remove(repo.storage.as_ref(), repo.dsv_dir())?;
    reapply(repo, None, progress)
}

/// Brings the working tree in line with `def`: index entries now inside whose
/// file is absent are written (downloaded first in a partial repository), files
/// now outside are removed if unchanged (their index entries stay). An empty index
/// (a `clone --no-checkout`) is first filled from HEAD's tree.
fn reapply(
    repo: &WritableRepo,
    def: Option<&Sparse>,
    progress: &dyn Progress,
) -> Result<SparseReport> {
    let inside = |p: &[u8]| def.is_none_or(|d| d.includes(p));
    let mut report = SparseReport {
        paths: def
            .map(|d| d.paths.iter().map(|p| display_path(p)).collect())
            .unwrap_or_default(),
        ..SparseReport::default()
    };
    let (mut index, mut base) = repo.index.load_based()?;
    let head = repo.refs.head_commit()?;
    let was_empty = index.entries.is_empty();
    if was_empty && let Some(tree) = repo.head_tree()? {
        let files = crate::object::diff::flatten(&repo.store, &tree)?;
        let outside: Vec<(Vec<u8>, FileState)> = files
            .iter()
            .filter(|(p, _)| !inside(p))
            .map(|(p, st)| (p.clone(), *st))
            .collect();
        super::checkout::record_only(repo, outside)?;
        (index, base) = repo.index.load_based()?;
    }
    let mut writes: Vec<(Vec<u8>, FileState)> = Vec::new();
    let mut removes = Vec::new();
    for (path, e) in &index.entries {
        let present = stat_tracked(repo.root(), path);
        match (inside(path), present) {
            (true, None) => writes.push((
                path.clone(),
                FileState {
                    mode: e.mode,
                    id: e.id,
                    size: e.stat.size,
                },
            )),
            (false, Some(f)) => {
                let clean = f.mode == e.mode
                    && (index.is_clean(e, &f.stat) || hash_worktree_file(repo.root(), &f)? == e.id);
                if clean {
                    removes.push(path.clone());
                } else {
                    report.kept.push(display_path(path));
                }
            }
            _ => {}
        }
    }
    // The no-checkout case: HEAD's files inside that the (empty) index lacked.
    if was_empty && let Some(tree) = repo.head_tree()? {
        let files = crate::object::diff::flatten_scoped(
            &repo.store,
            Some(&tree),
            def.map(|d| d.paths.as_slice()).unwrap_or(&[]),
        )?;
        for (p, st) in files {
            if !index.entries.contains_key(&p) && stat_tracked(repo.root(), &p).is_none() {
                writes.push((p, st));
            }
        }
    }
    if let Some(head) = head
        && !writes.is_empty()
    {
        let scopes: Vec<Vec<u8>> = def.map(|d| d.paths.clone()).unwrap_or_default();
        report.downloaded = crate::remote::fetch::fetch_paths(repo, &head, &scopes, progress)?;
    }
    for p in &removes {
        crate::worktree::write::remove_entry(repo.root(), p, repo.storage.as_ref())?;
        report.removed += 1;
    }
    // Unless HEAD's files filled an empty index, every write is of an index entry
    // as it stands: the index's content, and so its recorded tree id, do not change.
    let keeps = Some(base).filter(|_| !was_empty);
    let r = super::checkout::write_files(repo, writes, keeps, progress)?;
    report.written = r.written;
    Ok(report)
}
