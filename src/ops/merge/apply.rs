//! Writing a merge result: the index and the working tree brought to the merged
//! states, refusing to overwrite local changes, and recognising the writes an
//! interrupted run of the same merge already made.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::diff::FileState;

use crate::repo::Repository;
use crate::worktree::delta::{hash_worktree_file, stat_tracked};
use crate::worktree::index::{Base, IndexEdit, IndexEntry, IndexState};
use crate::worktree::sparse::Sparse;
use crate::worktree::write;

/// Whether `path` lies outside a sparse working tree and is absent from it: the
/// index is then the only place its version lives (git's skip-worktree).
pub(super) fn sparse_absent(repo: &Repository, sparse: Option<&Sparse>, path: &[u8]) -> bool {
    sparse.is_some_and(|s| !s.includes(path)) && stat_tracked(repo.root(), path).is_none()
}

/// Whether `index_tree` is what applying `changes` (the staged ones) to `index` gives:
/// the index an interrupted run of the same merge already wrote.
pub(super) fn index_already_applied(
    index: &IndexState,
    changes: &[(Vec<u8>, Option<FileState>, bool)],
    index_tree: ObjectId,
) -> Result<bool> {
    let mut entries = index.entries.clone();
    for (path, st, stage) in changes {
        if !*stage {
            continue;
        }
        match st {
            Some(st) => {
                // Only mode, id and size go into a tree.
                let stat = crate::store::chunk::StatStamp {
                    size: st.size,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    ino: 0,
                };
                entries.insert(
                    path.clone(),
                    IndexEntry {
                        mode: st.mode,
                        id: st.id,
                        stat,
                    },
                );
            }
            None => {
                entries.remove(path);
            }
        }
    }
    Ok(crate::worktree::build::index_tree_id(&entries)? == index_tree)
}

/// Whether the worktree file at `path` holds `want` (`None`: no file).
pub(super) fn worktree_is(
    repo: &Repository,
    index: &IndexState,
    path: &[u8],
    want: Option<&FileState>,
) -> Result<bool> {
    let f = stat_tracked(repo.root(), path);
    Ok(match (f, want) {
        (None, None) => true,
        (Some(f), Some(w)) => {
            if f.mode != w.mode {
                false
            } else if let Some(e) = index.entries.get(path)
                && e.id == w.id
                && index.is_clean(e, &f.stat)
            {
                true
            } else {
                hash_worktree_file(repo.root(), &f)? == w.id
            }
        }
        _ => false,
    })
}

pub(super) fn local_changes_error(paths: &[Vec<u8>], what: &str) -> Error {
    super::MergeError::LocalChanges {
        command: what.to_string(),
        files: crate::paths::PathList(paths.to_vec()),
    }
    .into()
}

/// Writes and removes worktree files, then records them in the index in one transaction.
/// `stage` says which written paths get index entries (conflicted files keep ours).
/// A staged path outside a sparse working tree that is absent from it goes to the
/// index only; a conflicted one is written (materialised, as git does), since the
/// user must see it to resolve it.
///
/// With `from` (the index as read, and the state it was read at), the tree id the
/// index holds afterwards is computed from it and the edits, and recorded with them.
pub(super) fn apply_changes(
    repo: &Repository,
    changes: &[(Vec<u8>, Option<FileState>, bool)],
    stamp: i64,
    from: Option<(&IndexState, &Base)>,
) -> Result<(u64, u64)> {
    let sparse = crate::worktree::sparse::load(repo.dsv_dir())?;
    let mut edits = Vec::new();
    let (mut written, mut removed) = (0, 0);
    for (path, st, stage) in changes {
        if *stage && sparse_absent(repo, sparse.as_ref(), path) {
            edits.push(match st {
                Some(st) => IndexEdit::Set(
                    path.clone(),
                    IndexEntry::unverified(st.mode, st.id, st.size),
                ),
                None => IndexEdit::Remove(path.clone()),
            });
            continue;
        }
        match st {
            Some(st) => {
                let stat = write::write_entry(
                    repo.root(),
                    path,
                    st.mode,
                    &st.id,
                    st.size,
                    &repo.store,
                    repo.storage.as_ref(),
                )?;
                written += 1;
                if *stage {
                    edits.push(IndexEdit::Set(
                        path.clone(),
                        IndexEntry {
                            mode: st.mode,
                            id: st.id,
                            stat,
                        },
                    ));
                }
            }
            None => {
                write::remove_entry(repo.root(), path, repo.storage.as_ref())?;
                removed += 1;
                if *stage {
                    edits.push(IndexEdit::Remove(path.clone()));
                }
            }
        }
    }
    if !edits.is_empty() {
        match from {
            Some((index, base)) => {
                let mut entries = index.entries.clone();
                for edit in &edits {
                    match edit {
                        IndexEdit::Set(p, e) => entries.insert(p.clone(), *e),
                        IndexEdit::Remove(p) => entries.remove(p),
                    };
                }
                let tree = crate::worktree::build::index_tree_id(&entries)?;
                repo.index.apply_recording(&edits, stamp, base, tree)?;
            }
            None => repo.index.apply(&edits, stamp)?,
        }
    }
    Ok((written, removed))
}
