//! Sync: the porcelain flows that bring a remote's history into the worktree —
//! `pull` (fetch, then fast-forward the branch and the worktree), `clone` (a new
//! repository, fetched and checked out) and `switch`/`checkout REV` in a partial
//! repository (download what the move writes, then switch). The transport under
//! them (`remote::fetch`) only moves and verifies bytes; what touches the
//! worktree, the index or a branch is here, and each flow lists what it did in
//! its result's `events` like every other operation.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::object::diff::diff_trees;
use crate::ops::checkout::{self, CheckoutReport, SwitchTarget};
use crate::ops::events::OpEvent;
use crate::progress::Progress;
use crate::refs::{HEADS, Head};
use crate::remote::fetch::{
    FetchMode, FetchReport, fetch_entries, fetch_paths, fetch_paths_with, fetch_with, open_remote,
    partial_remote,
};
use crate::remote::refs::Skipped;
use crate::remote::{TransferStats, tracking_ref};
use crate::repo::{OpenOptions, Repository, WritableRepo};

/// Downloads, in a partial repository, the file data that moving the worktree from
/// HEAD to `commit` writes (switch, checkout REV): only paths that differ, or with
/// `force` (which rewrites whatever the worktree lacks) everything `commit` has.
pub fn fetch_for_switch(
    repo: &Repository,
    commit: &ObjectId,
    force: bool,
    progress: &dyn Progress,
) -> Result<u64> {
    let Some(name) = partial_remote(repo)? else {
        return Ok(0);
    };
    // `--force` rewrites every path that differs from the target, including files
    // the two commits share but the worktree lacks (an empty `--no-checkout` mirror):
    // it needs all of the target's data, not only what changed.
    if force {
        return fetch_paths(repo, commit, &[], progress);
    }
    let target = Commit::load(&repo.store, commit)?.tree;
    let current = repo.head_tree()?;
    let changes = diff_trees(&repo.store, current.as_ref(), Some(&target), &[])?;
    let remote = open_remote(repo, &name)?;
    // A sparse working tree writes nothing outside its paths: nothing to download there.
    let sparse = crate::worktree::sparse::load(repo.dsv_dir())?;
    fetch_entries(
        repo,
        &remote,
        &target,
        changes
            .iter()
            .filter(|c| sparse.as_ref().is_none_or(|s| s.includes(&c.path)))
            .filter_map(|c| c.new.as_ref().map(|n| (c.path.as_slice(), n))),
        progress,
    )
}

/// `switch` or `checkout REV` in a repository that may be partial: downloads the
/// file data the move writes ([`fetch_for_switch`]), then switches.
pub fn switch(
    repo: &WritableRepo,
    target: SwitchTarget,
    force: bool,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let commit = match &target {
        SwitchTarget::Branch(b) => {
            repo.refs
                .read(&format!("{HEADS}{b}"))?
                .ok_or_else(|| Error::RefNotFound {
                    kind: "branch",
                    name: b.clone(),
                })?
        }
        SwitchTarget::Detached(id) => *id,
    };
    fetch_for_switch(repo, &commit, force, progress)?;
    checkout::switch(repo, target, force, progress)
}

/// Refuses when `branch`, the one a pull or clone needs, was skipped by the fetch.
fn require_fetched(remote: &str, report: &FetchReport, branch: &str) -> Result<()> {
    match report.skipped.iter().find(|s| s.branch == branch) {
        Some(s) => Err(Error::Remote {
            remote: remote.to_string(),
            message: format!("branch '{}' cannot be fetched: {}", s.branch, s.reason),
        }),
        None => Ok(()),
    }
}

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// The fetch.
    pub fetch: FetchReport,
    /// Branch updated.
    pub branch: String,
    /// Its value before.
    pub old: Option<ObjectId>,
    /// Its value after.
    pub new: Option<ObjectId>,
    /// Files written and removed in the worktree.
    pub written: u64,
    /// Files removed.
    pub removed: u64,
    /// Whether the branch was already up to date (or ahead).
    pub up_to_date: bool,
    /// What hooks fire on: a pull that moves the branch is a merge (`post-merge`)
    /// and a branch move (`branch-updated`); `--only` and an up-to-date pull list
    /// nothing.
    #[serde(skip)]
    pub events: Vec<OpEvent>,
}

/// `pull`: fetch, then fast-forward the current branch to the remote branch and
/// update the worktree. Diverged histories are refused with nothing changed.
/// With `only` (repository paths), only commits, trees and the data of those
/// paths are downloaded, and only those paths are written (the branch stays).
pub fn pull(
    repo: &WritableRepo,
    remote_name: &str,
    branch: Option<&str>,
    only: &[Vec<u8>],
    progress: &dyn Progress,
) -> Result<PullReport> {
    let local_branch = crate::remote::push::current_branch(repo)?;
    let remote_branch = branch.map(str::to_string).unwrap_or(local_branch.clone());
    let remote = open_remote(repo, remote_name)?;
    // A sparse working tree downloads commits, trees and the data of its paths only.
    let sparse = crate::worktree::sparse::load(repo.dsv_dir())?;
    let mode = if only.is_empty() && partial_remote(repo)?.is_none() && sparse.is_none() {
        FetchMode::Full
    } else {
        FetchMode::Metadata
    };
    // A branch gone from the remote must not be pulled from a stale ref.
    let mut fetch = fetch_with(repo, &remote, mode, true, progress)?;
    require_fetched(remote_name, &fetch, &remote_branch)?;
    let target = repo
        .refs
        .read(&tracking_ref(remote_name, &remote_branch))?
        .ok_or_else(|| SyncError::NoRemoteBranch {
            remote: remote_name.to_string(),
            branch: remote_branch.clone(),
        })?;
    let old = repo.refs.read(&format!("{HEADS}{local_branch}"))?;
    let mut report = PullReport {
        fetch: FetchReport::default(),
        branch: local_branch.clone(),
        old,
        new: old,
        written: 0,
        removed: 0,
        up_to_date: false,
        events: Vec::new(),
    };
    if !only.is_empty() {
        fetch.objects += fetch_paths_with(repo, &remote, &target, only, progress)?;
        let user: Vec<PathBuf> = only
            .iter()
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect();
        let r = checkout::checkout_paths(repo, target, only, &user, progress)?;
        report.written = r.written;
        fetch.transfer = remote.stats();
        report.fetch = fetch;
        return Ok(report);
    }
    if mode == FetchMode::Metadata {
        // A partial repository: fetch the data the new commit's files need.
        let scopes = sparse.map(|s| s.paths).unwrap_or_default();
        fetch.objects += fetch_paths_with(repo, &remote, &target, &scopes, progress)?;
    }
    fetch.transfer = remote.stats();
    report.fetch = fetch;
    let ancestor = |a: &ObjectId, d: &ObjectId| crate::remote::push::is_ancestor(repo, a, d);
    match pull_move(old, target, ancestor)? {
        PullMove::UpToDate => {
            report.up_to_date = true;
            return Ok(report);
        }
        PullMove::Diverged(o) => {
            return Err(SyncError::Diverged {
                branch: local_branch.clone(),
                local: o.short(),
                remote: remote_name.to_string(),
                remote_branch: remote_branch.clone(),
                remote_has: target.short(),
            }
            .into());
        }
        PullMove::FastForward => {}
    }
    let r = checkout::fast_forward(
        repo,
        target,
        &format!("pull: fast-forward to {remote_name}/{remote_branch}"),
        progress,
    )?;
    report.written = r.written;
    report.removed = r.removed;
    report.new = Some(target);
    // A pull that moves the branch is a merge of the remote branch (a fast-forward,
    // the only kind dsv pulls): it fires what `dsv merge` fires for one.
    report.events.push(OpEvent::Merged {
        commit: target,
        previous: old,
    });
    report.events.extend(r.events);
    Ok(report)
}

/// Where a pull takes the current branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PullMove {
    /// The branch already has the remote's commit (or is ahead): nothing moves.
    UpToDate,
    /// The remote's commit descends from the branch's (or the branch has none yet).
    FastForward,
    /// Neither contains the other; the branch's commit is given.
    Diverged(ObjectId),
}

/// Decides a pull from the branch's commit `old`, the remote branch's `target` and
/// `is_ancestor(a, d)` (whether `a` is `d` or one of its ancestors).
fn pull_move(
    old: Option<ObjectId>,
    target: ObjectId,
    mut is_ancestor: impl FnMut(&ObjectId, &ObjectId) -> Result<bool>,
) -> Result<PullMove> {
    Ok(match old {
        Some(o) if o == target || is_ancestor(&target, &o)? => PullMove::UpToDate,
        Some(o) if !is_ancestor(&o, &target)? => PullMove::Diverged(o),
        _ => PullMove::FastForward,
    })
}

/// Options of `clone`.
#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    /// Download commits and trees only; check nothing out.
    pub no_checkout: bool,
    /// Branch to check out (default: the remote's `HEAD`).
    pub branch: Option<String>,
}

/// What a clone did.
#[derive(Debug, Clone, Serialize)]
pub struct CloneReport {
    /// Repository root.
    pub root: PathBuf,
    /// Branch checked out (None: the remote has no branches).
    pub branch: Option<String>,
    /// Its commit.
    pub commit: Option<ObjectId>,
    /// Files written.
    pub written: u64,
    /// Remote branches not fetched (see [`FetchReport::skipped`]).
    pub skipped: Vec<Skipped>,
    /// Bytes and requests.
    pub transfer: TransferStats,
}

/// `.dsv/CLONING`: present (holding the URL) from the moment a clone's repository
/// appears until its checkout is complete. A clone killed in between is resumed by
/// running the same clone again.
pub const CLONING: &str = "CLONING";

/// Whether a name is the temporary directory a killed `init` built `.dsv` in
/// (`.dsv-tmp-PID-N`; `.dsv.dsv-tmp-PID-N` from versions before short temp names).
/// Nothing else writes into the destination before `.dsv` is renamed into place.
fn init_leftover(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with(crate::storage::TEMP_PREFIX)
        || name.starts_with(&format!("{}.dsv-tmp-", crate::repo::DSV_DIR))
}

/// `clone URL DIR`: init, add remote `origin`, fetch, check out the default branch.
/// On failure the new directory is removed (or emptied, if it existed). A clone
/// that was killed (its `.dsv/CLONING` names the same URL) is resumed: what it
/// downloaded and wrote is kept, and the rest is done.
///
/// A clone lists no events and fires no hooks: the repository is new, and the
/// hooks its checkout would run come from a `dsv.toml` just downloaded, which
/// nobody here has read yet (git does not run a cloned repository's hooks either).
pub fn clone(
    url_text: &str,
    dir: &Path,
    opts: &CloneOptions,
    open: &OpenOptions,
    progress: &dyn Progress,
) -> Result<CloneReport> {
    let dir = crate::repo::absolute(dir)?;
    // A relative local path means relative to where clone runs, not to the new repository.
    let url = match crate::remote::url::parse(url_text)? {
        crate::remote::url::Location::File(p) if p.is_relative() => {
            crate::repo::absolute(&p)?.display().to_string()
        }
        _ => url_text.to_string(),
    };
    let existed = dir.exists();
    let marker = dir.join(crate::repo::DSV_DIR).join(CLONING);
    let resume = match std::fs::read(&marker) {
        Ok(bytes) if bytes == url.as_bytes() => true,
        Ok(_) => {
            return Err(SyncError::OtherClone(dir.clone()).into());
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            false
        }
        Err(e) => return Err(Error::io("reading", marker, e)),
    };
    if existed && !resume {
        let mut leftovers = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io("reading", dir.clone(), e))? {
            let e = e.map_err(|e| Error::io("reading", dir.clone(), e))?;
            if !init_leftover(&e.file_name()) {
                return Err(SyncError::NotEmpty(dir.clone()).into());
            }
            leftovers.push(e.path());
        }
        // What a killed clone's init left behind: never a repository yet.
        for p in leftovers {
            std::fs::remove_dir_all(&p).map_err(|e| Error::io("removing", p.clone(), e))?;
        }
    }
    let result = (|| -> Result<CloneReport> {
        let repo = if resume {
            Repository::open_root(&dir, crate::lock::Access::Write, open)?
        } else {
            Repository::init_with(&dir, open, &[(CLONING, url.as_bytes())])?
        }
        .into_writable()?;
        if crate::remote::remote_config(&repo, "origin").is_err() {
            crate::remote::add_remote(
                &repo,
                "origin",
                &url,
                &crate::remote::url::Settings::default(),
            )?;
        }
        let remote = open_remote(&repo, "origin")?;
        let mode = if opts.no_checkout {
            FetchMode::Metadata
        } else {
            FetchMode::Full
        };
        let fetched = fetch_with(&repo, &remote, mode, true, progress)?;
        let branch = match &opts.branch {
            Some(b) => Some(b.clone()),
            None => remote.default_branch()?,
        };
        if let Some(b) = &branch {
            require_fetched("origin", &fetched, b)?;
        }
        let mut report = CloneReport {
            root: dir.clone(),
            branch: None,
            commit: None,
            written: 0,
            skipped: fetched.skipped,
            transfer: TransferStats::default(),
        };
        if let Some(b) = branch {
            let id = repo
                .refs
                .read(&tracking_ref("origin", &b))?
                .ok_or_else(|| SyncError::CloneNoBranch(b.clone()))?;
            let (time, _) = repo.now()?;
            let who = repo.reflog_identity();
            repo.refs.update(
                &format!("{HEADS}{b}"),
                id,
                &who,
                time,
                &format!("clone: from {}", crate::redact::url(&url)),
            )?;
            repo.refs
                .set_head(&Head::Branch(b.clone()), &who, time, "clone")?;
            if !opts.no_checkout {
                let r = checkout::reset(&repo, id, checkout::ResetMode::Hard, progress)?;
                report.written = r.written;
            }
            report.branch = Some(b);
            report.commit = Some(id);
        }
        report.transfer = remote.stats();
        // Last: from here on the clone is complete.
        repo.storage.remove_file(&repo.dsv_dir().join(CLONING))?;
        Ok(report)
    })();
    if result.is_err() {
        // Like git: a failed clone removes everything it created. The directory
        // was empty before, so everything in it now is the clone's (checked-out
        // files included); a directory the user made is kept.
        if existed {
            remove_contents(&dir);
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    result
}

/// Removes every entry of `dir` (not following symlinks), keeping `dir`.
fn remove_contents(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let path = ent.path();
        let _ = match ent.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

/// Why a pull or clone was refused.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `pull` of a branch the remote does not have.
    #[error("remote '{remote}' has no branch '{branch}'")]
    NoRemoteBranch {
        /// The remote.
        remote: String,
        /// The branch asked for.
        branch: String,
    },
    /// `pull` when both sides have new commits.
    #[error(
        "branch '{branch}' ({local}) and '{remote}/{remote_branch}' ({remote_has}) have diverged; dsv cannot merge yet: reset to one of them (dsv reset --hard {remote}/{remote_branch}) or push yours with --force"
    )]
    Diverged {
        /// The local branch.
        branch: String,
        /// Its short id.
        local: String,
        /// The remote.
        remote: String,
        /// The remote branch.
        remote_branch: String,
        /// The remote branch's short id.
        remote_has: String,
    },
    /// `clone` into a directory holding an interrupted clone of another URL.
    #[error(
        "destination '{}' holds an interrupted clone of another remote; remove it first",
        .0.display()
    )]
    OtherClone(PathBuf),
    /// `clone` into a directory with files in it.
    #[error("destination '{}' exists and is not empty", .0.display())]
    NotEmpty(PathBuf),
    /// `clone --branch` of a branch the remote does not have.
    #[error("remote has no branch '{0}'")]
    CloneNoBranch(String),
}

impl crate::error::ModuleError for SyncError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            SyncError::NoRemoteBranch { .. } | SyncError::CloneNoBranch(_) => {
                crate::error::ErrorKind::NotFound
            }
            _ => crate::error::ErrorKind::Refused,
        }
    }
}

crate::error::module_error!(SyncError);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 32])
    }

    /// `is_ancestor` over a hand-built history: child -> parents.
    fn history(edges: &[(u8, &[u8])]) -> impl FnMut(&ObjectId, &ObjectId) -> Result<bool> {
        let parents: HashMap<ObjectId, Vec<ObjectId>> = edges
            .iter()
            .map(|(c, ps)| (id(*c), ps.iter().map(|p| id(*p)).collect()))
            .collect();
        move |a, d| {
            let mut stack = vec![*d];
            while let Some(c) = stack.pop() {
                if c == *a {
                    return Ok(true);
                }
                stack.extend(parents.get(&c).into_iter().flatten());
            }
            Ok(false)
        }
    }

    #[test]
    fn pull_fast_forwards_a_branch_behind_or_without_a_commit() {
        // 1 <- 2 <- 3
        let h = || history(&[(2, &[1]), (3, &[2])]);
        assert_eq!(
            pull_move(Some(id(1)), id(3), h()).unwrap(),
            PullMove::FastForward
        );
        assert_eq!(pull_move(None, id(3), h()).unwrap(), PullMove::FastForward);
    }

    #[test]
    fn pull_leaves_a_branch_at_or_ahead_of_the_remote() {
        let h = || history(&[(2, &[1]), (3, &[2])]);
        assert_eq!(
            pull_move(Some(id(3)), id(3), h()).unwrap(),
            PullMove::UpToDate
        );
        assert_eq!(
            pull_move(Some(id(3)), id(1), h()).unwrap(),
            PullMove::UpToDate
        );
    }

    #[test]
    fn pull_refuses_diverged_histories_naming_the_branch_commit() {
        // 1 <- 2 (local), 1 <- 3 (remote), 2 + 3 <- 4 (a merge on neither side)
        let h = || history(&[(2, &[1]), (3, &[1]), (4, &[2, 3])]);
        assert_eq!(
            pull_move(Some(id(2)), id(3), h()).unwrap(),
            PullMove::Diverged(id(2))
        );
        // Unrelated histories diverge too.
        assert_eq!(
            pull_move(Some(id(9)), id(3), h()).unwrap(),
            PullMove::Diverged(id(9))
        );
        // A remote merge that contains the branch is a fast-forward.
        assert_eq!(
            pull_move(Some(id(2)), id(4), h()).unwrap(),
            PullMove::FastForward
        );
    }

    #[test]
    fn an_ancestry_error_stops_the_pull() {
        let failing = |_: &ObjectId, _: &ObjectId| -> Result<bool> {
            Err(Error::Corrupt("commit unreadable".into()))
        };
        assert!(pull_move(Some(id(1)), id(2), failing).is_err());
    }

    #[test]
    fn a_killed_inits_temporary_directory_is_a_leftover_anything_else_is_not() {
        let leftover = |n: &str| init_leftover(std::ffi::OsStr::new(n));
        assert!(leftover(".dsv-tmp-1234-0"));
        assert!(leftover(".dsv.dsv-tmp-1234-0"));
        assert!(!leftover(".dsv"));
        assert!(!leftover("images"));
        assert!(!leftover("dsv-tmp-1234-0"));
    }

    #[test]
    fn a_pull_or_clone_of_a_skipped_branch_is_refused_with_the_reason() {
        let report = FetchReport {
            remote: "origin".into(),
            skipped: vec![Skipped {
                branch: "bad".into(),
                reason: "name conflict".into(),
            }],
            ..FetchReport::default()
        };
        let e = require_fetched("origin", &report, "bad").unwrap_err();
        assert_eq!(
            e.to_string(),
            Error::Remote {
                remote: "origin".into(),
                message: "branch 'bad' cannot be fetched: name conflict".into(),
            }
            .to_string()
        );
        assert!(require_fetched("origin", &report, "main").is_ok());
    }
}
