//! Remote ref updates other than pushing a branch: deleting a branch or tag on
//! the remote (`push --delete`) and pushing tags (`push REMOTE TAG`, `--tags`).
//!
//! Both go through the same compare-and-swap as a branch push ([`super::refs`]):
//! a delete writes the ref's tombstone only if the ref still holds the value it
//! was checked against, and a tag is created only where none exists (or, with
//! `--force`, replaced only if it still holds what was read). The push hook
//! points ([`PushObserver`]) are called for each ref as for a branch push, so a
//! `pre-push` hook sees, and can refuse, a delete or a tag.

use serde::Serialize;

use super::push::{Packer, PushObserver, PushPlan, pack_target};
use super::refs::{Cas, RefKind, RefStore, RefToken, check_remote_branch};
use super::{Remote, TransferStats, load_index_for_push, tracking_ref};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::progress::Progress;
use crate::refs::{HEADS, TAGS};
use crate::repo::{Repository, WritableRepo};

/// Why a delete or a tag push was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefUpdateError {
    /// `push --delete NAME` where the remote has neither a branch nor a tag NAME.
    #[error("remote '{remote}' has no branch or tag '{name}' to delete")]
    NothingToDelete {
        /// Remote name.
        remote: String,
        /// The name given.
        name: String,
    },
    /// `push --delete NAME` where the remote has both a branch and a tag NAME.
    #[error(
        "remote '{remote}' has both a branch and a tag '{name}'; name the one to delete (refs/heads/{name} or refs/tags/{name})"
    )]
    AmbiguousRemote {
        /// Remote name.
        remote: String,
        /// The name given.
        name: String,
    },
    /// A name that is both a local branch and a local tag.
    #[error(
        "'{name}' is both a branch and a tag here; name the one to push (refs/heads/{name} or refs/tags/{name})"
    )]
    AmbiguousLocal {
        /// The name given.
        name: String,
    },
    /// A conditional delete whose ref changed since this clone last saw it.
    #[error(
        "remote {kind} {name} is at {theirs}, not {seen} as you last saw it; fetch and look before deleting it, or push --delete --force"
    )]
    Stale {
        /// `branch` or `tag`.
        kind: &'static str,
        /// Ref name.
        name: String,
        /// What the remote holds.
        theirs: String,
        /// What this clone last saw (`nothing` when it never fetched it).
        seen: String,
    },
    /// Deleting the branch the remote's `HEAD` names (what clone checks out).
    #[error(
        "branch '{name}' is the default branch of remote '{remote}' (what clone checks out); push --delete --force to delete it anyway"
    )]
    DefaultBranch {
        /// Remote name.
        remote: String,
        /// Branch name.
        name: String,
    },
    /// A tag that exists on the remote with another commit.
    #[error(
        "remote '{remote}' already has tag '{name}' at {theirs}, not {ours}; push --force to replace it"
    )]
    TagExists {
        /// Remote name.
        remote: String,
        /// Tag name.
        name: String,
        /// The remote tag's commit.
        theirs: String,
        /// The local tag's commit.
        ours: String,
    },
    /// The compare-and-swap lost: another client changed the ref in between.
    #[error(
        "remote {kind} {name} changed since it was read (another push landed first); fetch and retry"
    )]
    Raced {
        /// `branch` or `tag`.
        kind: &'static str,
        /// Ref name.
        name: String,
    },
}

impl crate::error::ModuleError for RefUpdateError {}

crate::error::module_error!(RefUpdateError);

/// One remote ref a delete or tag push changed (or found up to date).
#[derive(Debug, Clone, Serialize)]
pub struct RefUpdate {
    /// `branch` or `tag`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Remote value before (`null`: created).
    pub old: Option<ObjectId>,
    /// Remote value after (`null`: deleted).
    pub new: Option<ObjectId>,
    /// Whether the remote already held this value (nothing was done).
    pub up_to_date: bool,
    /// Objects uploaded for it.
    pub objects: u64,
    /// Packs uploaded for it.
    pub packs: u64,
}

/// What `push --delete` or a tag push did.
#[derive(Debug, Clone, Serialize)]
pub struct RefPushReport {
    /// Remote name.
    pub remote: String,
    /// The refs, in the order handled.
    pub updates: Vec<RefUpdate>,
    /// Bytes and requests.
    pub transfer: TransferStats,
}

fn store(remote: &Remote, kind: RefKind) -> &dyn RefStore {
    match kind {
        RefKind::Branch => remote.refs(),
        RefKind::Tag => remote.tags(),
    }
}

/// Whether `name` is a local branch or a local tag (refused when it is both).
pub fn local_kind(repo: &Repository, name: &str) -> Result<Option<RefKind>> {
    let branch = repo.refs.read(&format!("{HEADS}{name}"))?.is_some();
    let tag = repo.refs.read(&format!("{TAGS}{name}"))?.is_some();
    match (branch, tag) {
        (true, true) => Err(RefUpdateError::AmbiguousLocal {
            name: crate::quote::short(name),
        }
        .into()),
        (true, false) => Ok(Some(RefKind::Branch)),
        (false, true) => Ok(Some(RefKind::Tag)),
        (false, false) => Ok(None),
    }
}

/// Every local tag name, sorted.
pub fn local_tags(repo: &Repository) -> Result<Vec<String>> {
    Ok(repo.refs.list(TAGS)?.into_iter().map(|(n, _)| n).collect())
}

fn open(repo: &Repository, remote_name: &str, create: bool) -> Result<Remote> {
    let cfg = super::remote_config(repo, remote_name)?;
    let remote = Remote::open(&cfg, create)?;
    remote.set_fault_storage(repo.storage.clone());
    remote.check_marker(create)?;
    Ok(remote)
}

fn plan(remote: &Remote, url: &str, kind: RefKind, name: &str) -> PushPlan {
    PushPlan {
        remote: remote.name.clone(),
        url: url.to_string(),
        branch: name.to_string(),
        old: None,
        new: ObjectId([0; 32]),
        tracking: match kind {
            RefKind::Branch => tracking_ref(&remote.name, name),
            RefKind::Tag => format!("{TAGS}{name}"),
        },
        remote_ref: format!("{}/{name}", kind.prefix()),
        deleted: false,
    }
}

/// `push REMOTE --delete NAME`: deletes the remote branch (or, if it has no such
/// branch, the remote tag) NAME. Without `force` the remote branch must still be
/// at what the remote-tracking branch says (a tag: at the local tag of that name,
/// if there is one), and the remote's default branch is refused. The `pre-push`
/// hook sees the delete (`plan.deleted`) and can refuse it; the remote-tracking
/// branch is removed once the remote ref is.
pub fn delete_with(
    repo: &WritableRepo,
    remote_name: &str,
    name: &str,
    force: bool,
    observer: &mut dyn PushObserver,
) -> Result<RefPushReport> {
    check_remote_branch(name)?;
    let cfg = super::remote_config(repo, remote_name)?;
    let remote = open(repo, remote_name, false)?;
    let branch = remote.refs().read(name)?;
    let tag = remote.tags().read(name)?;
    let (kind, (current, token)) = match (branch, tag) {
        (Some(b), None) => (RefKind::Branch, b),
        (None, Some(t)) => (RefKind::Tag, t),
        (Some(_), Some(_)) => {
            return Err(RefUpdateError::AmbiguousRemote {
                remote: remote_name.to_string(),
                name: name.to_string(),
            }
            .into());
        }
        (None, None) => {
            return Err(RefUpdateError::NothingToDelete {
                remote: remote_name.to_string(),
                name: name.to_string(),
            }
            .into());
        }
    };
    delete_ref(
        repo, &remote, &cfg.url, kind, name, current, token, force, observer,
    )
}

#[allow(clippy::too_many_arguments)]
fn delete_ref(
    repo: &WritableRepo,
    remote: &Remote,
    url: &str,
    kind: RefKind,
    name: &str,
    current: ObjectId,
    token: RefToken,
    force: bool,
    observer: &mut dyn PushObserver,
) -> Result<RefPushReport> {
    let seen_ref = match kind {
        RefKind::Branch => tracking_ref(&remote.name, name),
        RefKind::Tag => format!("{TAGS}{name}"),
    };
    let seen = repo.refs.read(&seen_ref)?;
    if !force {
        // A tag deleted here first is not a different value: only a local tag
        // pointing elsewhere says the remote's is not what the user has in mind.
        let stale = match kind {
            RefKind::Branch => seen != Some(current),
            RefKind::Tag => seen.is_some_and(|s| s != current),
        };
        if stale {
            return Err(RefUpdateError::Stale {
                kind: kind.word(),
                name: name.to_string(),
                theirs: current.short(),
                seen: seen.map_or("nothing".into(), |s| s.short()),
            }
            .into());
        }
        if kind == RefKind::Branch && remote.default_branch()?.as_deref() == Some(name) {
            return Err(RefUpdateError::DefaultBranch {
                remote: remote.name.clone(),
                name: name.to_string(),
            }
            .into());
        }
    }
    let mut p = plan(remote, &crate::redact::url(url), kind, name);
    p.old = Some(current);
    p.new = current;
    p.deleted = true;
    observer.before_upload(&p)?;
    observer.before_ref(&p)?;
    match store(remote, kind).delete(name, &token)? {
        Cas::Updated => observer.after_ref(&p)?,
        Cas::Conflict => {
            observer.ref_not_moved(&p);
            return Err(RefUpdateError::Raced {
                kind: kind.word(),
                name: name.to_string(),
            }
            .into());
        }
    }
    if kind == RefKind::Branch && seen.is_some() {
        repo.refs.delete(&seen_ref)?;
    }
    Ok(RefPushReport {
        remote: remote.name.clone(),
        updates: vec![RefUpdate {
            kind: kind.word(),
            name: name.to_string(),
            old: Some(current),
            new: None,
            up_to_date: false,
            objects: 0,
            packs: 0,
        }],
        transfer: remote.stats(),
    })
}

/// Pushes the local tags `tags`: each is created on the remote with the data its
/// commit needs. A tag the remote already has at the same commit is up to date;
/// at another commit it is refused (before anything is sent) unless `force`,
/// which replaces it if it still holds what was read.
pub fn push_tags_with(
    repo: &WritableRepo,
    remote_name: &str,
    tags: &[String],
    force: bool,
    progress: &dyn Progress,
    observer: &mut dyn PushObserver,
) -> Result<RefPushReport> {
    let cfg = super::remote_config(repo, remote_name)?;
    let url = crate::redact::url(&cfg.url);
    let mut plans = Vec::new();
    for name in tags {
        check_remote_branch(name)?;
        let id = repo
            .refs
            .read(&format!("{TAGS}{name}"))?
            .ok_or_else(|| Error::RefNotFound {
                kind: "tag",
                name: name.clone(),
            })?;
        plans.push((name.clone(), id));
    }
    let remote = open(repo, remote_name, true)?;
    let mut reads = Vec::new();
    for (name, id) in &plans {
        let current = remote.tags().read(name)?;
        if let Some((theirs, _)) = &current
            && theirs != id
            && !force
        {
            return Err(RefUpdateError::TagExists {
                remote: remote_name.to_string(),
                name: name.clone(),
                theirs: theirs.short(),
                ours: id.short(),
            }
            .into());
        }
        reads.push(current);
    }
    let mut report = RefPushReport {
        remote: remote_name.to_string(),
        updates: Vec::new(),
        transfer: TransferStats::default(),
    };
    for ((name, id), current) in plans.into_iter().zip(reads) {
        let old = current.as_ref().map(|(c, _)| *c);
        let mut update = RefUpdate {
            kind: "tag",
            name: name.clone(),
            old,
            new: Some(id),
            up_to_date: old == Some(id),
            objects: 0,
            packs: 0,
        };
        if update.up_to_date {
            report.updates.push(update);
            continue;
        }
        let mut p = plan(&remote, &url, RefKind::Tag, &name);
        p.old = old;
        p.new = id;
        observer.before_upload(&p)?;
        // Reloaded per tag: what the previous tag sent is listed now, not sent twice.
        let index = load_index_for_push(repo, &remote)?;
        let mut packer = Packer {
            repo,
            remote: &remote,
            target: pack_target(&repo.settings),
            pack: Default::default(),
            objects: 0,
            packs: 0,
            progress,
            avoid: std::collections::HashSet::new(),
        };
        let sent = super::push::send_settled(repo, &remote, remote_name, index, id, &mut packer);
        progress.finish();
        sent?;
        update.objects = packer.objects;
        update.packs = packer.packs;
        observer.before_ref(&p)?;
        match remote
            .tags()
            .cas(&name, current.as_ref().map(|(_, t)| t), id)?
        {
            Cas::Updated => observer.after_ref(&p)?,
            Cas::Conflict => {
                observer.ref_not_moved(&p);
                return Err(RefUpdateError::Raced {
                    kind: "tag",
                    name: name.clone(),
                }
                .into());
            }
        }
        report.updates.push(update);
    }
    report.transfer = remote.stats();
    Ok(report)
}
