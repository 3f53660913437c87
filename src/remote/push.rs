//! `push`: upload what the remote lacks, in dependency order, then move the ref.
//!
//! Objects are collected by a post-order walk from the branch tip that stops at
//! anything the remote's indexes already list (by the closure invariant, all of
//! its dependencies are there too). Post-order means every object is emitted
//! after everything it references: file data and chunks first, then trees
//! bottom-up, then commits oldest first. The records, copied byte for byte from
//! the local packs, are cut into packs of [`pack_target`] bytes; each pack is
//! uploaded, then its index. So whatever prefix of a push reaches the remote is
//! self-contained, and a retried push skips it. The ref moves last, by CAS.

use std::collections::HashSet;

use serde::Serialize;

use super::refs::{Cas, check_remote_branch, names_conflict};
use super::{
    Remote, RemoteIndex, TransferStats, idx_name, load_index_for_push, pack_name, tracking_ref,
};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::tree::TreeObject;
use crate::object::{Commit, EntryMode, Tree};
use crate::progress::Progress;
use crate::refs::{HEADS, Head};
use crate::repo::{Repository, WritableRepo};
use crate::store::pack::{self, PACK_MAGIC, Repr};

pub use super::format::{PACK_TARGET, pack_target};

/// How a push may replace the remote branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForceMode {
    /// Fast-forward only.
    #[default]
    No,
    /// Any commit, but only if the remote still holds what the remote-tracking
    /// ref says (`--force` and `--force-with-lease` both: never overwrite unseen work).
    WithLease,
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Remote name.
    pub remote: String,
    /// Branch pushed.
    pub branch: String,
    /// Remote value before (None: branch created).
    pub old: Option<ObjectId>,
    /// Remote value after.
    pub new: ObjectId,
    /// Whether the remote already had this commit (nothing sent).
    pub up_to_date: bool,
    /// Objects uploaded.
    pub objects: u64,
    /// Packs uploaded (packs found already complete on the remote are not counted).
    pub packs: u64,
    /// Bytes and requests.
    pub transfer: TransferStats,
}

/// What a push is about to do, as its hook points see it.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// Remote name.
    pub remote: String,
    /// Remote URL, credentials removed.
    pub url: String,
    /// Branch pushed (the tag's name for a tag).
    pub branch: String,
    /// Remote value before (None: branch created).
    pub old: Option<ObjectId>,
    /// The commit the remote branch will hold (for a delete: the one it held).
    pub new: ObjectId,
    /// The remote-tracking ref the push moves after the remote ref.
    pub tracking: String,
    /// The full remote ref (`refs/heads/main`, `refs/tags/v1`).
    pub remote_ref: String,
    /// Whether the push deletes the remote ref.
    pub deleted: bool,
}

/// Hook points of a push: the hooks module fires `pre-push` and `post-push` through
/// them, so the remote module knows nothing of hooks. None is called when the remote
/// is already up to date (nothing is pushed).
pub trait PushObserver {
    /// Before anything is uploaded; an error aborts the push with nothing changed.
    fn before_upload(&mut self, plan: &PushPlan) -> Result<()>;
    /// After the upload, before the remote ref moves; an error aborts the push
    /// (uploaded packs stay, unreferenced, and a retried push reuses them).
    fn before_ref(&mut self, plan: &PushPlan) -> Result<()>;
    /// Right after the remote ref moved.
    fn after_ref(&mut self, plan: &PushPlan) -> Result<()>;
    /// The ref did not move after `before_ref` (another push won the compare-and-swap).
    fn ref_not_moved(&mut self, plan: &PushPlan);
}

/// An observer that does nothing.
pub struct NoObserver;

impl PushObserver for NoObserver {
    fn before_upload(&mut self, _: &PushPlan) -> Result<()> {
        Ok(())
    }
    fn before_ref(&mut self, _: &PushPlan) -> Result<()> {
        Ok(())
    }
    fn after_ref(&mut self, _: &PushPlan) -> Result<()> {
        Ok(())
    }
    fn ref_not_moved(&mut self, _: &PushPlan) {}
}

/// Whether `ancestor` is `descendant` or one of its ancestors (local history).
pub fn is_ancestor(repo: &Repository, ancestor: &ObjectId, descendant: &ObjectId) -> Result<bool> {
    let mut seen = HashSet::new();
    let mut stack = vec![*descendant];
    while let Some(c) = stack.pop() {
        if c == *ancestor {
            return Ok(true);
        }
        if !seen.insert(c) || !repo.store.contains(&c)? {
            continue;
        }
        stack.extend(Commit::load(&repo.store, &c)?.parents);
    }
    Ok(false)
}

/// The branch HEAD is on, or an error for a detached HEAD.
pub fn current_branch(repo: &Repository) -> Result<String> {
    match repo.refs.head()? {
        Head::Branch(b) => Ok(b),
        Head::Detached(_) => Err(PushError::DetachedHead.into()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Commit,
    Tree,
    Blob,
}

/// Sends what `tip` needs that the remote's settled packs do not hold (starting
/// `packer`'s progress with the totals; the caller finishes it). A collector
/// that retired packs meanwhile may have retired what the walk relied on, so the
/// walk runs again against the new gc records until they stay the same from the
/// start of a walk to its end (see `remote::gc`); only then may a ref move.
pub(super) fn send_settled(
    repo: &Repository,
    remote: &Remote,
    remote_name: &str,
    mut index: RemoteIndex,
    tip: ObjectId,
    packer: &mut Packer<'_>,
) -> Result<()> {
    packer.avoid = index.retiring_packs();
    let mut rounds = 0;
    loop {
        // Planned first, so the progress bar has the totals.
        let missing = plan_missing(repo, &index, tip)?;
        packer.progress.start_bytes(
            &format!(
                "pushing {}",
                crate::quote::count(missing.order.len(), "object")
            ),
            Some(missing.bytes),
        );
        send_missing(repo, &missing, packer)?;
        let keys = super::gc::record_keys(remote)?;
        if keys == index.gc_records {
            return Ok(());
        }
        rounds += 1;
        if rounds > super::gc::MAX_SETTLE_ROUNDS {
            return Err(super::gc::GcError::Unsettled {
                remote: remote_name.to_string(),
                rounds,
            }
            .into());
        }
        index = load_index_for_push(repo, remote)?;
        packer.avoid = index.retiring_packs();
    }
}

/// Packs being built and uploaded as the walk emits records.
pub(super) struct Packer<'a> {
    pub(super) repo: &'a Repository,
    pub(super) remote: &'a Remote,
    pub(super) target: u64,
    pub(super) pack: super::format::PackBuf,
    pub(super) objects: u64,
    pub(super) packs: u64,
    pub(super) progress: &'a dyn Progress,
    /// Names a new pack must not take (retiring packs, see [`super::format::unique_pack`]).
    pub(super) avoid: HashSet<ObjectId>,
}

impl Packer<'_> {
    fn add(&mut self, id: ObjectId, record: &[u8]) -> Result<()> {
        self.objects += 1;
        if self.pack.add(id, record, self.target) {
            self.finish()?;
        }
        Ok(())
    }

    /// Uploads the pack (unless an identical one is already there), then its index.
    fn finish(&mut self) -> Result<()> {
        let Some((buf, idx)) = self.pack.take(&self.avoid) else {
            return Ok(());
        };
        let hash = idx.pack;
        let len = buf.len() as u64;
        let pack_path = self.remote.path(&[&pack_name(&hash)]);
        // An interrupted push left this exact pack (same objects, same order, same
        // name): do not send it again.
        if self.remote.head(&pack_path)? != Some(len) {
            self.remote
                .put(&pack_path, bytes::Bytes::from(buf), false)?;
            self.packs += 1;
        }
        // The records' bytes, what the total counted (not the pack's magic).
        self.progress.inc(len - PACK_MAGIC.len() as u64);
        let idx_bytes = idx.encode();
        self.remote.put(
            &self.remote.path(&[&idx_name(&hash)]),
            bytes::Bytes::from(idx_bytes.clone()),
            false,
        )?;
        // Cache what we uploaded so the next push or fetch does not download it.
        let cache = super::cache_dir(self.repo, &self.remote.name).join("idx");
        self.repo.storage.create_dir_all(&cache)?;
        self.repo
            .storage
            .write_atomic(&cache.join(format!("{hash}.idx")), &idx_bytes)?;
        Ok(())
    }
}

/// What a push sends: the objects the remote lacks, in the order they are
/// sent, and the bytes of their records, known before the upload starts so
/// progress has totals.
struct Missing {
    order: Vec<ObjectId>,
    bytes: u64,
}

/// Walks from `tip` in post-order, skipping what the remote has (so every
/// object follows everything it references). A plain blob's record is read
/// only up to its header here; the upload reads it whole.
///
/// Only commits and trees are remembered as visited; a file reached twice (the
/// same content at two paths, or in two trees) is emitted twice and the repeats
/// are dropped at the end ([`drop_repeats`]). A set of every file id visited was
/// the largest thing a push held (~70 bytes an object at millions of files).
fn plan_missing(repo: &Repository, index: &RemoteIndex, tip: ObjectId) -> Result<Missing> {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut out = Missing {
        order: Vec::new(),
        bytes: 0,
    };
    let emit = |id: ObjectId, len: u64, out: &mut Missing| {
        out.order.push(id);
        out.bytes += len;
    };
    let stored_len = |id: &ObjectId| -> Result<u64> {
        Ok(repo
            .store
            .record_header(id)?
            .ok_or(Error::MissingObject(*id))?
            .1)
    };
    // (id, kind, children already pushed)
    let mut stack: Vec<(ObjectId, Kind, bool)> = vec![(tip, Kind::Commit, false)];
    while let Some((id, kind, expanded)) = stack.pop() {
        if expanded {
            emit(id, stored_len(&id)?, &mut out);
            continue;
        }
        // Only a settled pack vouches for what its objects reference (remote gc).
        if index.settled(&id) || (kind != Kind::Blob && !seen.insert(id)) {
            continue;
        }
        let send = !index.kept(&id);
        if send {
            stack.push((id, kind, true));
        }
        match kind {
            Kind::Commit => {
                let c = Commit::load(&repo.store, &id)?;
                // Popped first: parents, so older commits are sent first.
                stack.push((c.tree, Kind::Tree, false));
                for p in c.parents.iter().rev() {
                    stack.push((*p, Kind::Commit, false));
                }
            }
            Kind::Tree => match Tree::load_object(&repo.store, &id)? {
                TreeObject::Entries(entries) => {
                    for e in entries.iter().rev() {
                        let k = if e.mode == EntryMode::Dir {
                            Kind::Tree
                        } else {
                            Kind::Blob
                        };
                        stack.push((e.id, k, false));
                    }
                }
                TreeObject::Shards(shards) => {
                    for s in shards.iter().rev() {
                        stack.push((s.id, Kind::Tree, false));
                    }
                }
            },
            Kind::Blob => {
                let (header, len) = repo
                    .store
                    .record_header(&id)?
                    .ok_or(Error::MissingObject(id))?;
                if header.repr == Repr::Concat {
                    let record = repo.store.raw_record(&id)?;
                    let payload =
                        pack::decode_payload(&header, record[pack::RECORD_HEADER..].to_vec())
                            .map_err(|reason| Error::CorruptObject { id, reason })?;
                    let children = pack::decode_concat(&payload)
                        .map_err(|reason| Error::CorruptObject { id, reason })?;
                    for (c, _) in children.iter().rev() {
                        stack.push((*c, Kind::Blob, false));
                    }
                } else if send {
                    // A raw record has no dependencies.
                    stack.pop();
                    emit(id, len, &mut out);
                }
            }
        }
    }
    drop(seen);
    drop_repeats(repo, &mut out)?;
    Ok(out)
}

/// Keeps the first of each id in the plan (an object still follows everything it
/// references: its first emission came after theirs) and takes the repeats'
/// bytes off the total.
fn drop_repeats(repo: &Repository, out: &mut Missing) -> Result<()> {
    // Positions sorted by id (4 bytes each), ties by position: a repeat is any
    // position after the first of its id.
    let mut by_id: Vec<u32> = (0..out.order.len() as u32).collect();
    by_id.sort_unstable_by(|a, b| {
        out.order[*a as usize]
            .cmp(&out.order[*b as usize])
            .then(a.cmp(b))
    });
    let mut repeat = vec![false; out.order.len()];
    for w in by_id.windows(2) {
        if out.order[w[0] as usize] == out.order[w[1] as usize] {
            repeat[w[1] as usize] = true;
        }
    }
    drop(by_id);
    for (id, r) in out.order.iter().zip(&repeat) {
        if *r {
            let len = repo
                .store
                .record_header(id)?
                .ok_or(Error::MissingObject(*id))?
                .1;
            out.bytes -= len;
        }
    }
    let mut i = 0;
    out.order.retain(|_| {
        i += 1;
        !repeat[i - 1]
    });
    out.order.shrink_to_fit();
    Ok(())
}

/// Hands each planned record to the packer, in order.
fn send_missing(repo: &Repository, missing: &Missing, packer: &mut Packer) -> Result<()> {
    for id in &missing.order {
        let record = repo.store.raw_record(id)?;
        packer.add(*id, &record)?;
    }
    packer.finish()
}

/// Pushes `branch` (default: the current one) to the remote `remote_name`.
pub fn push(
    repo: &WritableRepo,
    remote_name: &str,
    branch: Option<&str>,
    force: ForceMode,
    progress: &dyn Progress,
) -> Result<PushReport> {
    push_with(repo, remote_name, branch, force, progress, &mut NoObserver)
}

/// [`push`], calling `observer` at its hook points.
pub fn push_with(
    repo: &WritableRepo,
    remote_name: &str,
    branch: Option<&str>,
    force: ForceMode,
    progress: &dyn Progress,
    observer: &mut dyn PushObserver,
) -> Result<PushReport> {
    let cfg = super::remote_config(repo, remote_name)?;
    let branch = match branch {
        Some(b) => b.to_string(),
        None => current_branch(repo)?,
    };
    check_remote_branch(&branch)?;
    let local = repo
        .refs
        .read(&format!("{HEADS}{branch}"))?
        .ok_or_else(|| Error::RefNotFound {
            kind: "branch",
            name: branch.clone(),
        })?;
    let remote = Remote::open(&cfg, true)?;
    remote.set_fault_storage(repo.storage.clone());
    remote.check_marker(true)?;
    let current = remote.refs().read(&branch)?;
    if current.is_none() {
        // As git: `a` and `a/b` cannot both be branches. The remote would take both,
        // but no clone could then hold both as remote-tracking refs.
        let mut clash = None;
        for n in remote.refs().names()? {
            // A deleted branch (a tombstone) is in the listing but no longer in the
            // way; one that cannot be read still is.
            if clash.is_none()
                && names_conflict(&n, &branch)
                && remote.refs().read(&n).map_or(true, |r| r.is_some())
            {
                clash = Some(n);
            }
        }
        if let Some(other) = clash {
            return Err(PushError::NameConflict {
                remote: remote_name.to_string(),
                existing: crate::quote::short(&other),
                branch: branch.clone(),
            }
            .into());
        }
    }
    let tracking_name = tracking_ref(remote_name, &branch);
    let tracking = repo.refs.read(&tracking_name)?;
    let old = current.as_ref().map(|(id, _)| *id);
    let mut report = PushReport {
        remote: remote_name.to_string(),
        branch: branch.clone(),
        old,
        new: local,
        up_to_date: old == Some(local),
        objects: 0,
        packs: 0,
        transfer: TransferStats::default(),
    };
    let moved = || PushError::MovedSinceFetch {
        branch: branch.clone(),
        remote_has: old.map_or("nothing".into(), |c| c.short()),
        last_seen: tracking.map_or("nothing".into(), |c| c.short()),
    };
    if !report.up_to_date {
        match (force, old) {
            (ForceMode::WithLease, _) if old != tracking => return Err(moved().into()),
            (ForceMode::WithLease, _) | (ForceMode::No, None) => {}
            (ForceMode::No, Some(cur)) => {
                if !repo.store.contains(&cur)? {
                    return Err(PushError::FetchFirst {
                        branch: branch.clone(),
                        remote_has: cur.short(),
                    }
                    .into());
                }
                if !is_ancestor(repo, &cur, &local)? {
                    return Err(PushError::NonFastForward {
                        branch: branch.clone(),
                        remote_has: cur.short(),
                        local: local.short(),
                    }
                    .into());
                }
            }
        }
        let plan = PushPlan {
            remote: remote_name.to_string(),
            url: crate::redact::url(&cfg.url),
            branch: branch.clone(),
            old,
            new: local,
            tracking: tracking_name.clone(),
            remote_ref: format!("refs/heads/{branch}"),
            deleted: false,
        };
        observer.before_upload(&plan)?;
        let index = load_index_for_push(repo, &remote)?;
        let mut packer = Packer {
            repo,
            remote: &remote,
            target: pack_target(&repo.settings),
            pack: Default::default(),
            objects: 0,
            packs: 0,
            progress,
            avoid: HashSet::new(),
        };
        let sent = send_settled(repo, &remote, remote_name, index, local, &mut packer);
        progress.finish();
        sent?;
        report.objects = packer.objects;
        report.packs = packer.packs;
        observer.before_ref(&plan)?;
        match remote
            .refs()
            .cas(&branch, current.as_ref().map(|(_, t)| t), local)
        {
            Ok(Cas::Updated) => observer.after_ref(&plan)?,
            Ok(Cas::Conflict) => {
                observer.ref_not_moved(&plan);
                return Err(PushError::LostRace {
                    branch: branch.clone(),
                }
                .into());
            }
            // The write may or may not have reached the remote: what `before_ref`
            // staged is settled later, against the remote-tracking ref.
            Err(e) => return Err(e),
        }
    }
    // The first branch pushed becomes the remote's default branch (for clone).
    remote.init_default_branch(&branch)?;
    if tracking != Some(local) {
        let (time, _) = repo.now()?;
        repo.refs.update(
            &tracking_name,
            local,
            &repo.reflog_identity(),
            time,
            &format!("push: {branch} to {remote_name}"),
        )?;
    }
    report.transfer = remote.stats();
    Ok(report)
}

/// Why a push was refused. Nothing on the remote changed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `push` with no branch named and no branch checked out.
    #[error("HEAD is detached: name the branch (dsv push REMOTE BRANCH)")]
    DetachedHead,
    /// A branch name that clashes with a remote branch (`a` against `a/b`).
    #[error(
        "remote '{remote}' has branch '{existing}', so branch '{branch}' cannot be created there (a branch cannot also be a directory of branches); push under another name"
    )]
    NameConflict {
        /// The remote.
        remote: String,
        /// The remote branch in the way.
        existing: String,
        /// The branch pushed.
        branch: String,
    },
    /// `--force-with-lease` and the remote branch is not what was fetched.
    #[error(
        "remote branch {branch} moved since fetch (remote has {remote_has}, you last saw {last_seen}); fetch and retry"
    )]
    MovedSinceFetch {
        /// The branch.
        branch: String,
        /// Short id on the remote.
        remote_has: String,
        /// Short id of the remote-tracking ref.
        last_seen: String,
    },
    /// The remote branch points to a commit this repository does not have.
    #[error("remote branch {branch} has commits you do not have ({remote_has}); fetch first")]
    FetchFirst {
        /// The branch.
        branch: String,
        /// Short id on the remote.
        remote_has: String,
    },
    /// The push would drop remote commits.
    #[error(
        "non-fast-forward: remote branch {branch} ({remote_has}) is not an ancestor of your {branch} ({local}); pull first, or push --force to replace it"
    )]
    NonFastForward {
        /// The branch.
        branch: String,
        /// Short id on the remote.
        remote_has: String,
        /// Short id of the local branch.
        local: String,
    },
    /// Another push moved the branch between reading and the conditional update.
    #[error(
        "remote branch {branch} moved since it was read (another push landed first); fetch and retry"
    )]
    LostRace {
        /// The branch.
        branch: String,
    },
}

impl crate::error::ModuleError for PushError {}

crate::error::module_error!(PushError);
