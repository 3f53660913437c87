//! `mv`: move or rename a tracked file or directory, in the working tree and the
//! index at once, as `git mv` does.

use serde::Serialize;

use crate::error::{IoContext, Result};
use crate::paths::{display_path, path_within};
use crate::quote;
use crate::repo::WritableRepo;
use crate::worktree::index::{IndexEdit, now_ns};

/// Why a move was refused (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum MvError {
    /// The source holds no tracked file.
    #[error("not under version control, source={0}")]
    NotTracked(String),
    /// The source is not in the working tree.
    #[error("bad source, source={0}: it is not in the working tree")]
    SourceMissing(String),
    /// The destination exists and `force` was not given (or it is a directory).
    #[error("destination exists, source={src}, destination={dst} (use -f to overwrite a file)")]
    DestinationExists {
        /// The source path.
        src: String,
        /// The destination path.
        dst: String,
    },
    /// A directory moved into itself.
    #[error("cannot move directory over itself, source={src}, destination={dst}")]
    IntoItself {
        /// The source path.
        src: String,
        /// The destination path.
        dst: String,
    },
    /// A path below a symbolic link (dsv never follows one).
    #[error("'{path}' is beyond a symbolic link ('{link}')")]
    BeyondSymlink {
        /// The path given.
        path: String,
        /// The link on its way.
        link: String,
    },
    /// The destination's directory does not exist.
    #[error("destination directory does not exist, destination={0}")]
    NoDestinationDir(String),
}

impl crate::error::ModuleError for MvError {}

crate::error::module_error!(MvError);

/// One move made: from and to (repository paths).
#[derive(Debug, Serialize)]
pub struct Moved {
    /// Old path.
    #[serde(serialize_with = "crate::paths::ser")]
    pub from: Vec<u8>,
    /// New path.
    #[serde(serialize_with = "crate::paths::ser")]
    pub to: Vec<u8>,
}

fn shown(p: &[u8]) -> String {
    quote::path(p).into_owned()
}

fn refuse_beyond_link(repo: &WritableRepo, p: &[u8]) -> Result<()> {
    match crate::worktree::symlink_prefix(repo.root(), p) {
        Some(link) => Err(MvError::BeyondSymlink {
            path: shown(p),
            link: display_path(&link),
        }
        .into()),
        None => Ok(()),
    }
}

/// Moves each of `sources` to `dest` (repository paths). With several sources, or
/// when `dest` is an existing directory, each goes inside it under its own name.
/// All sources are checked before anything moves; a file in the way is replaced only
/// with `force`. The working tree is renamed first, then the index is updated in one
/// transaction (a failure there renames the files back).
pub fn mv(
    repo: &WritableRepo,
    sources: &[Vec<u8>],
    dest: &[u8],
    force: bool,
) -> Result<Vec<Moved>> {
    let index = repo.index.load()?;
    let dest_is_dir = std::fs::symlink_metadata(repo.worktree_path(dest)).is_ok_and(|m| m.is_dir());
    if sources.len() > 1 && !dest_is_dir {
        return Err(MvError::NoDestinationDir(shown(dest)).into());
    }
    let mut plan: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for src in sources {
        refuse_beyond_link(repo, src)?;
        let name = src.rsplit(|b| *b == b'/').next().unwrap_or(src);
        let to = if dest_is_dir {
            if dest.is_empty() {
                name.to_vec()
            } else {
                [dest, b"/", name].concat()
            }
        } else {
            dest.to_vec()
        };
        refuse_beyond_link(repo, &to)?;
        let tracked = index
            .entries
            .range(src.clone()..)
            .take_while(|(p, _)| p.starts_with(src))
            .any(|(p, _)| path_within(p, src));
        if src.is_empty() || !tracked {
            return Err(MvError::NotTracked(shown(src)).into());
        }
        let src_meta = std::fs::symlink_metadata(repo.worktree_path(src))
            .map_err(|_| MvError::SourceMissing(shown(src)))?;
        if path_within(&to, src) {
            return Err(MvError::IntoItself {
                src: shown(src),
                dst: shown(&to),
            }
            .into());
        }
        if let Ok(m) = std::fs::symlink_metadata(repo.worktree_path(&to)) {
            // Only a file may be replaced, and only by a file, when forced.
            if !force || m.is_dir() || src_meta.is_dir() {
                return Err(MvError::DestinationExists {
                    src: shown(src),
                    dst: shown(&to),
                }
                .into());
            }
        }
        if let Some(cut) = to.iter().rposition(|b| *b == b'/')
            && !std::fs::symlink_metadata(repo.worktree_path(&to[..cut])).is_ok_and(|m| m.is_dir())
        {
            return Err(MvError::NoDestinationDir(shown(&to)).into());
        }
        plan.push((src.clone(), to));
    }
    let mut done: Vec<&(Vec<u8>, Vec<u8>)> = Vec::new();
    let undo = |done: &[&(Vec<u8>, Vec<u8>)]| {
        for (from, to) in done.iter().rev() {
            let _ = std::fs::rename(repo.worktree_path(to), repo.worktree_path(from));
        }
    };
    for step in &plan {
        let (from, to) = step;
        if let Err(e) = std::fs::rename(repo.worktree_path(from), repo.worktree_path(to))
            .ctx("renaming", repo.worktree_path(from))
        {
            undo(&done);
            return Err(e);
        }
        done.push(step);
    }
    let mut edits = Vec::new();
    for (from, to) in &plan {
        // A file a forced move replaced leaves the index first.
        edits.push(IndexEdit::Remove(to.clone()));
        for (p, e) in index
            .entries
            .range(from.clone()..)
            .take_while(|(p, _)| p.starts_with(from))
            .filter(|(p, _)| path_within(p, from))
        {
            let mut new = to.clone();
            new.extend_from_slice(&p[from.len()..]);
            edits.push(IndexEdit::Remove(p.clone()));
            edits.push(IndexEdit::Set(new, *e));
        }
    }
    if let Err(e) = repo.index.apply(&edits, now_ns()) {
        undo(&done);
        return Err(e);
    }
    Ok(plan
        .into_iter()
        .map(|(from, to)| Moved { from, to })
        .collect())
}
