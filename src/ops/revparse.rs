//! Revision expressions: ids, short ids, branch and tag names, `HEAD`, `~N`, `^`, `^N`.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::refs::{HEADS, TAGS};
use crate::repo::Repository;

/// Shortest accepted short id.
pub const MIN_SHORT: usize = 4;

fn resolve_base(repo: &Repository, base: &str) -> Result<ObjectId> {
    if base == "HEAD" || base == "@" {
        return repo
            .refs
            .head_commit()?
            .ok_or_else(|| RevError::NoCommitYet.into());
    }
    if let Some(full) = base.strip_prefix("refs/") {
        return repo
            .refs
            .read(&format!("refs/{full}"))?
            .ok_or_else(|| Error::UnknownRevision(base.to_string()));
    }
    if crate::refs::check_ref_name("branch", base).is_ok() {
        if let Some(id) = repo.refs.read(&format!("{HEADS}{base}"))? {
            return Ok(id);
        }
        if let Some(id) = repo.refs.read(&format!("{TAGS}{base}"))? {
            return Ok(id);
        }
        // `origin/main`: a remote-tracking branch.
        if let Some(id) = repo
            .refs
            .read(&format!("{}{base}", crate::remote::REMOTES))?
        {
            return Ok(id);
        }
    }
    if base.len() >= MIN_SHORT && base.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Some(id) = ObjectId::from_hex(&base.to_ascii_lowercase()) {
            return Ok(id);
        }
        let matches = repo.store.commits_with_prefix(base)?;
        return match matches.len() {
            0 => Err(Error::UnknownRevision(base.to_string())),
            1 => Ok(matches[0]),
            _ => Err(Error::AmbiguousRevision {
                prefix: base.to_string(),
                candidates: matches
                    .iter()
                    .map(|m| m.short())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        };
    }
    Err(Error::UnknownRevision(base.to_string()))
}

/// Resolves a revision expression to a commit id.
pub fn resolve(repo: &Repository, spec: &str) -> Result<ObjectId> {
    let cut = spec.find(['~', '^']).unwrap_or(spec.len());
    let (base, mut rest) = spec.split_at(cut);
    let mut id = resolve_base(repo, if base.is_empty() { "HEAD" } else { base })?;
    while !rest.is_empty() {
        let op = rest.as_bytes()[0];
        rest = &rest[1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = if digits == 0 {
            1
        } else {
            rest[..digits]
                .parse()
                .map_err(|_| Error::UnknownRevision(spec.to_string()))?
        };
        rest = &rest[digits..];
        match op {
            b'~' => {
                for _ in 0..n {
                    id = parent(repo, &id, 1, spec)?;
                }
            }
            b'^' => {
                if n > 0 {
                    id = parent(repo, &id, n, spec)?;
                }
            }
            _ => return Err(Error::UnknownRevision(spec.to_string())),
        }
    }
    Ok(id)
}

fn parent(repo: &Repository, id: &ObjectId, n: usize, spec: &str) -> Result<ObjectId> {
    let c = Commit::load(&repo.store, id)?;
    c.parents.get(n - 1).copied().ok_or_else(|| {
        RevError::NoParent {
            spec: spec.to_string(),
            commit: id.short(),
            n,
        }
        .into()
    })
}

/// A revision that names nothing for a reason more specific than an unknown name.
#[derive(Debug, thiserror::Error)]
pub enum RevError {
    /// `HEAD` on a branch with no commit.
    #[error("HEAD does not point to a commit yet (no commits on this branch)")]
    NoCommitYet,
    /// `X^n` or `X~n` past the parents a commit has.
    #[error("revision '{spec}': commit {commit} has no parent #{n}")]
    NoParent {
        /// The revision as given.
        spec: String,
        /// Short id of the commit.
        commit: String,
        /// The parent asked for.
        n: usize,
    },
    /// `A...B` of two unrelated histories.
    #[error(
        "{a} and {b} have no common history, so `A...B` has no base (use `A B` to compare the two versions)"
    )]
    NoCommonHistory {
        /// Short id of A.
        a: String,
        /// Short id of B.
        b: String,
    },
}

impl crate::error::ModuleError for RevError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::NotFound
    }
}

crate::error::module_error!(RevError);

/// Why a `REV:PATH` names nothing.
#[derive(Debug, thiserror::Error)]
pub enum RevPathError {
    /// The path is not in the revision's tree.
    #[error("path '{path}' does not exist in '{rev}'")]
    NotInRevision {
        /// The path, as shown.
        path: String,
        /// The revision given.
        rev: String,
    },
    /// `:PATH` names a path the index does not hold.
    #[error("path '{0}' is not in the index")]
    NotInIndex(String),
}

impl crate::error::ModuleError for RevPathError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::NotFound
    }
}

crate::error::module_error!(RevPathError);

/// git's `REV:PATH` split: the revision and the path, or `None` when `spec` has no
/// `:` (ref names cannot hold one). An empty revision (`:PATH`) means the index.
pub fn split_rev_path(spec: &str) -> Option<(&str, &str)> {
    spec.split_once(':')
}

/// The entry (mode, id) `path` names in revision `rev`'s tree, or in the index when
/// `rev` is empty; the empty path is the revision's root directory.
pub fn resolve_entry(
    repo: &Repository,
    rev: &str,
    path: &[u8],
) -> Result<(crate::object::tree::EntryMode, ObjectId)> {
    let shown = crate::quote::path(path).into_owned();
    if rev.is_empty() {
        let index = repo.index.load()?;
        return index
            .entries
            .get(path)
            .map(|e| (e.mode, e.id))
            .ok_or_else(|| RevPathError::NotInIndex(shown).into());
    }
    let id = resolve(repo, rev)?;
    let c = Commit::load(&repo.store, &id)?;
    match crate::object::diff::lookup(&repo.store, &c.tree, path)? {
        Some((mode, id, _)) => Ok((mode, id)),
        None => Err(RevPathError::NotInRevision {
            path: shown,
            rev: rev.to_string(),
        }
        .into()),
    }
}
