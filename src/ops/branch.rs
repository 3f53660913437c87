//! Branches and tags.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::refs::{HEADS, Head, TAGS, check_ref_name};
use crate::repo::{Repository, WritableRepo};

/// A branch in a listing.
#[derive(Debug, Serialize)]
pub struct BranchInfo {
    /// Name.
    pub name: String,
    /// Commit it points to.
    pub id: ObjectId,
    /// Whether HEAD is on it.
    pub current: bool,
}

/// Lists branches.
pub fn list_branches(repo: &Repository) -> Result<Vec<BranchInfo>> {
    let head = repo.refs.head()?;
    Ok(repo
        .refs
        .list(HEADS)?
        .into_iter()
        .map(|(name, id)| BranchInfo {
            current: head == Head::Branch(name.clone()),
            name,
            id,
        })
        .collect())
}

/// Creates a branch at `target` (with `force`, moves an existing one there). Returns
/// what hooks fire on: the move of an existing branch (creating one moves nothing).
pub fn create_branch(
    repo: &WritableRepo,
    name: &str,
    target: ObjectId,
    force: bool,
) -> Result<Vec<crate::ops::events::OpEvent>> {
    check_ref_name("branch", name)?;
    let full = format!("{HEADS}{name}");
    let old = repo.refs.read(&full)?;
    if old.is_some() && !force {
        return Err(Error::RefExists {
            kind: "branch",
            name: name.to_string(),
        });
    }
    let (time, _) = repo.now()?;
    repo.refs.update(
        &full,
        target,
        &repo.reflog_identity(),
        time,
        &format!("branch: created from {}", target.short()),
    )?;
    Ok(match old {
        Some(o) if o != target => vec![crate::ops::events::OpEvent::BranchMoved(
            crate::ops::events::BranchMove {
                branch: name.to_string(),
                old: Some(o),
                new: target,
            },
        )],
        _ => Vec::new(),
    })
}

/// Deletes a branch; refuses the current branch, and (unless `force`) one not merged into HEAD.
pub fn delete_branch(repo: &WritableRepo, name: &str, force: bool) -> Result<ObjectId> {
    let full = format!("{HEADS}{name}");
    let id = repo.refs.read(&full)?.ok_or_else(|| Error::RefNotFound {
        kind: "branch",
        name: name.to_string(),
    })?;
    if repo.refs.head()? == Head::Branch(name.to_string()) {
        return Err(BranchError::DeleteCurrent(name.to_string()).into());
    }
    if !force {
        let merged = match repo.refs.head_commit()? {
            Some(h) => super::log::history(repo, &[h], None, false)?
                .iter()
                .any(|(c, _)| *c == id),
            None => false,
        };
        if !merged {
            return Err(BranchError::NotMerged(name.to_string()).into());
        }
    }
    repo.refs.delete(&full)?;
    Ok(id)
}

/// Renames a branch (moving HEAD along if it is current).
pub fn rename_branch(repo: &WritableRepo, old: &str, new: &str, force: bool) -> Result<()> {
    check_ref_name("branch", new)?;
    let id = repo
        .refs
        .read(&format!("{HEADS}{old}"))?
        .ok_or_else(|| Error::RefNotFound {
            kind: "branch",
            name: old.to_string(),
        })?;
    if old == new {
        // Nothing to move; deleting `old` below would delete the branch itself.
        return Ok(());
    }
    let new_full = format!("{HEADS}{new}");
    if repo.refs.read(&new_full)?.is_some() && !force {
        return Err(Error::RefExists {
            kind: "branch",
            name: new.to_string(),
        });
    }
    let (time, _) = repo.now()?;
    let who = repo.reflog_identity();
    let was_current = repo.refs.head()? == Head::Branch(old.to_string());
    repo.refs.update(
        &new_full,
        id,
        &who,
        time,
        &format!("branch: renamed {old} to {new}"),
    )?;
    if was_current {
        repo.refs.set_head(
            &Head::Branch(new.to_string()),
            &who,
            time,
            &format!("branch: renamed {old} to {new}"),
        )?;
    }
    repo.refs.delete(&format!("{HEADS}{old}"))
}

/// Lists tags.
pub fn list_tags(repo: &Repository) -> Result<Vec<(String, ObjectId)>> {
    repo.refs.list(TAGS)
}

/// Creates a tag at `target`.
pub fn create_tag(repo: &WritableRepo, name: &str, target: ObjectId, force: bool) -> Result<()> {
    check_ref_name("tag", name)?;
    let full = format!("{TAGS}{name}");
    if repo.refs.read(&full)?.is_some() && !force {
        return Err(Error::RefExists {
            kind: "tag",
            name: name.to_string(),
        });
    }
    let (time, _) = repo.now()?;
    repo.refs
        .update(&full, target, &repo.reflog_identity(), time, "tag: created")
}

/// Deletes a tag.
pub fn delete_tag(repo: &WritableRepo, name: &str) -> Result<ObjectId> {
    let full = format!("{TAGS}{name}");
    let id = repo.refs.read(&full)?.ok_or_else(|| Error::RefNotFound {
        kind: "tag",
        name: name.to_string(),
    })?;
    repo.refs.delete(&full)?;
    Ok(id)
}

/// Why a branch operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    /// Deleting the branch HEAD is on.
    #[error("cannot delete branch '{0}': it is the current branch")]
    DeleteCurrent(String),
    /// `-d` of a branch with commits HEAD does not contain.
    #[error(
        "branch '{0}' is not merged into HEAD; use -D to delete it anyway (its commits stay reachable from the reflog)"
    )]
    NotMerged(String),
}

impl crate::error::ModuleError for BranchError {}

crate::error::module_error!(BranchError);
