//! Hooks: run a command or call a webhook when something happens in a repository,
//! so that a new labelled dataset version starts the training pipeline by itself.
//!
//! - `config`: hooks from `dsv.toml` `[[hooks]]` and `.dsv/hooks/<event>`.
//! - `payload`: the JSON document a hook gets.
//! - `outbox`: the durable record of `post-*` deliveries (`.dsv/hooks.redb`).
//! - `deliver`: running a command or POSTing, and the delivery worker.
//! - `watch`: `dsv watch`, firing `remote-commit` for each commit landing on a remote.
//!
//! `pre-*` hooks run synchronously, before the operation writes anything, and any
//! failure or timeout aborts it. `post-*` hooks never block or undo what happened:
//! their deliveries are recorded right after the ref moved and delivered by a
//! separate worker process, retried until they succeed. [`fire`] fires any event
//! for a commit; [`commit`] and [`push`] fire theirs from inside the operation (a
//! `pre-*` hook can stop it; the `post-*` deliveries are staged before the ref
//! moves), and [`fire_events`] fires those of what any other operation reports in
//! its `events`: `post-commit` for each commit it recorded, `post-merge` when
//! `dsv merge` (or `--continue`) or `dsv pull` moved HEAD by a fast-forward or a
//! merge commit (never for `cherry-pick` or `revert`), `post-checkout` when `switch`
//! or `checkout REV` moved HEAD, `branch-updated` for each branch it moved.

pub mod config;
pub mod deliver;
pub mod outbox;
pub mod payload;
pub mod watch;

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

pub use config::{Event, Hook, HookSet};

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::ops::commit::{CommitOptions, CommitResult, PendingCommit, commit_with};
use crate::ops::events::{BranchMove, OpEvent};
use crate::progress::Progress;
use crate::refs::Head;
use crate::remote::push::{ForceMode, PushObserver, PushPlan, PushReport, push_with};
use crate::remote::refupdate::RefPushReport;
use crate::repo::{Repository, WritableRepo};
use crate::storage::Storage;
use deliver::{Attempt, Request};
use outbox::{NewDelivery, Outbox, Recorded};
use payload::{ChangeSummary, Payload};

/// A hook that did not apply, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Hook id.
    pub hook: String,
    /// Which filter left it out.
    pub reason: String,
}

/// A hook that ran synchronously.
#[derive(Debug, Clone, Serialize)]
pub struct HookRun {
    /// Hook id.
    pub hook: String,
    /// What happened.
    pub attempt: Attempt,
}

/// The hooks of one event, with their payload, ready to run or record.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The event.
    pub event: Event,
    /// The payload.
    pub payload: Payload,
    /// Its JSON.
    pub json: String,
    /// The hooks that apply, in order.
    pub hooks: Vec<Hook>,
    /// The hooks left out by a filter.
    pub skipped: Vec<Skipped>,
}

impl Prepared {
    /// The id idempotency keys use: the commit, or for `pre-commit` the tree.
    pub fn subject_id(&self) -> &str {
        self.payload.commit.as_deref().unwrap_or(&self.payload.tree)
    }
}

/// What firing an event did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FireReport {
    /// `pre-*` hooks that ran (all succeeded, or the operation would have failed).
    pub ran: Vec<HookRun>,
    /// `post-*` deliveries recorded in the outbox.
    pub queued: Vec<Recorded>,
    /// Hooks left out by their filters.
    pub skipped: Vec<Skipped>,
}

/// Loads the repository's hooks (errors name the `dsv.toml` line).
pub fn load(repo: &Repository) -> Result<HookSet> {
    HookSet::load(repo.root(), repo.dsv_dir())
}

/// The branch HEAD is on, if any.
fn current_branch(repo: &Repository) -> Result<Option<String>> {
    Ok(match repo.refs.head()? {
        Head::Branch(b) => Some(b),
        Head::Detached(_) => None,
    })
}

/// Splits the hooks of `event` into those that apply and those a filter leaves out,
/// with the summary of the changes for their payload. `changes` (the label diff) is
/// computed only when some hook's filter needs it or some hook will receive it.
fn select(
    set: &HookSet,
    event: Event,
    branch: Option<&str>,
    changes: &mut dyn FnMut() -> Result<ChangeSummary>,
) -> Result<(Vec<Hook>, Vec<Skipped>, ChangeSummary)> {
    let mut hooks = Vec::new();
    let mut skipped = Vec::new();
    let mut summary: Option<ChangeSummary> = None;
    for h in set.for_event(event) {
        if !h.filters.branch_matches(branch) {
            skipped.push(Skipped {
                hook: h.id.clone(),
                reason: format!(
                    "branch {} does not match {}",
                    branch.unwrap_or("(detached HEAD)"),
                    h.filters.branches.join(", ")
                ),
            });
            continue;
        }
        if h.filters.needs_changes() {
            if summary.is_none() {
                summary = Some(changes()?);
            }
            let s = summary
                .as_ref()
                .ok_or_else(|| Error::Internal("no summary".into()))?;
            if !h.filters.paths_match(s.paths.iter().map(String::as_str)) {
                skipped.push(Skipped {
                    hook: h.id.clone(),
                    reason: format!("no changed path matches {}", h.filters.paths.join(", ")),
                });
                continue;
            }
            if h.filters.labels_changed && !s.labels_changed {
                skipped.push(Skipped {
                    hook: h.id.clone(),
                    reason: "no label file changed".into(),
                });
                continue;
            }
        }
        hooks.push(h.clone());
    }
    let summary = match (summary, hooks.is_empty()) {
        (Some(s), _) => s,
        (None, false) => changes()?,
        (None, true) => ChangeSummary::default(),
    };
    Ok((hooks, skipped, summary))
}

/// Prepares the hooks of `event` about the existing commit `commit`: filters them and
/// builds the payload. `base` is what the summary compares with (`None`: the first
/// parent); `previous` is the commit HEAD left, for `post-checkout`.
pub fn prepare(
    repo: &Repository,
    set: &HookSet,
    event: Event,
    commit: ObjectId,
    branch: Option<String>,
    base: Option<ObjectId>,
    previous: Option<ObjectId>,
) -> Result<Prepared> {
    let c = Commit::load(&repo.store, &commit)?;
    let base = base.or_else(|| c.parents.first().copied());
    let mut changes = || payload::summary_between(repo, base, &c);
    let (hooks, skipped, summary) = select(set, event, branch.as_deref(), &mut changes)?;
    let payload = payload::for_commit(repo, event, commit, &c, branch, previous, summary);
    Ok(Prepared {
        event,
        json: payload.to_json(),
        payload,
        hooks,
        skipped,
    })
}

/// Prepares the hooks of `event` about a commit not made yet (`pre-commit`).
pub fn prepare_pending(
    repo: &Repository,
    set: &HookSet,
    event: Event,
    pending: &PendingCommit,
    branch: Option<String>,
) -> Result<Prepared> {
    let mut changes =
        || payload::summary_of_index(repo, pending.summary.files, pending.summary.bytes);
    let (hooks, skipped, summary) = select(set, event, branch.as_deref(), &mut changes)?;
    let payload = payload::for_pending(repo, event, pending, branch, summary);
    Ok(Prepared {
        event,
        json: payload.to_json(),
        payload,
        hooks,
        skipped,
    })
}

/// Prepares `branch-updated` for the branch move `m`: the payload's `commit` is the
/// new commit, `previous` the old one, the summary compares the old commit (or an
/// empty dataset, for a branch that had none) with the new one, whatever lies
/// between, and `update` names the branch, both commits and the commits between.
pub fn prepare_update(repo: &Repository, set: &HookSet, m: &BranchMove) -> Result<Prepared> {
    let event = Event::BranchUpdated;
    let c = Commit::load(&repo.store, &m.new)?;
    let mut changes = || payload::summary_between(repo, m.old, &c);
    let (hooks, skipped, summary) = select(set, event, Some(&m.branch), &mut changes)?;
    let mut payload = payload::for_commit(
        repo,
        event,
        m.new,
        &c,
        Some(m.branch.clone()),
        m.old,
        summary,
    );
    if !hooks.is_empty() {
        payload.update = Some(branch_update(repo, m)?);
    }
    Ok(Prepared {
        event,
        json: payload.to_json(),
        payload,
        hooks,
        skipped,
    })
}

/// The `update` member of a `branch-updated` payload.
fn branch_update(repo: &Repository, m: &BranchMove) -> Result<payload::BranchUpdate> {
    // The common move, one commit on top of the old tip, needs no walk of the history.
    let one_on_top = m.old.is_some()
        && Commit::load(&repo.store, &m.new)?.parents == m.old.into_iter().collect::<Vec<_>>();
    let mut commits = if one_on_top {
        vec![m.new]
    } else {
        watch::new_commits(repo, m.old, m.new)?
    };
    let count = commits.len();
    // The newest ones matter most to a receiver; the count says how many there were.
    let cut = count.saturating_sub(payload::MAX_LISTED_COMMITS);
    commits.drain(..cut);
    let fast_forward = match m.old {
        None => true,
        Some(_) if one_on_top => true,
        Some(o) => crate::remote::push::is_ancestor(repo, &o, &m.new)?,
    };
    Ok(payload::BranchUpdate {
        branch: m.branch.clone(),
        old: m.old.map(|o| o.to_hex()),
        new: m.new.to_hex(),
        fast_forward,
        commits_count: count,
        commits: commits.iter().map(|c| c.to_hex()).collect(),
    })
}

fn delivery_id(hook: &str, subject: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{hook}/{subject}/{nanos}/{}", std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..32].to_string()
}

/// Runs the prepared hooks now, one after the other, each once. With `stop_on_failure`
/// (a `pre-*` event), the first failure ends the run. `test` marks the requests
/// (`DSV_HOOK_TEST=1`, `X-Dsv-Test: 1`, an idempotency key of its own).
pub fn run_now(
    prepared: &Prepared,
    root: &Path,
    vars: &crate::settings::Variables,
    stop_on_failure: bool,
    test: bool,
    on_attempt: &mut dyn FnMut(&Hook, &Attempt),
) -> Vec<HookRun> {
    let mut runs = Vec::new();
    let subject = prepared.subject_id().to_string();
    let branch = prepared.payload.branch.clone().unwrap_or_default();
    let commit = prepared.payload.commit.clone().unwrap_or_default();
    for h in &prepared.hooks {
        let id = delivery_id(&h.id, &subject);
        // A test must never be taken by a receiver for the real delivery of this commit.
        let key = if test {
            format!("test:{}:{subject}:{id}", h.id)
        } else {
            format!("{}:{subject}", h.id)
        };
        let a = deliver::attempt(&Request {
            event: prepared.event,
            hook: &h.id,
            delivery: &id,
            key: &key,
            commit: &commit,
            branch: &branch,
            root,
            payload: &prepared.json,
            action: &h.action,
            timeout: h.timeout,
            test,
            vars,
        });
        on_attempt(h, &a);
        let failed = !a.ok;
        runs.push(HookRun {
            hook: h.id.clone(),
            attempt: a,
        });
        if failed && stop_on_failure {
            break;
        }
    }
    runs
}

/// Records the prepared `post-*` deliveries in the outbox (before any attempt).
/// With `awaits_ref` they are staged: recorded before the ref moves, and made pending
/// by [`outbox::Outbox::confirm`] after it moved (or by a worker that finds it moved).
pub fn record(
    dsv_dir: &Path,
    storage: Arc<dyn Storage>,
    prepared: &Prepared,
    awaits_ref: Option<String>,
) -> Result<Vec<Recorded>> {
    let Some(commit) = prepared.payload.commit.clone() else {
        return Err(Error::Internal(format!(
            "{} deliveries need a commit",
            prepared.event
        )));
    };
    let items: Vec<NewDelivery> = prepared
        .hooks
        .iter()
        .map(|h| NewDelivery {
            hook: h.id.clone(),
            event: prepared.event,
            commit: commit.clone(),
            branch: prepared.payload.branch.clone(),
            previous: match prepared.event {
                Event::BranchUpdated => prepared.payload.previous.clone(),
                _ => None,
            },
            awaits_ref: awaits_ref.clone(),
            action: h.action.clone(),
            timeout: h.timeout,
            payload: prepared.json.clone(),
        })
        .collect();
    Outbox::new(dsv_dir, storage).record(&items)
}

/// Turns the first failed `pre-*` run into the error that aborts `operation`.
fn rejection(event: Event, runs: &[HookRun], operation: &str) -> Result<()> {
    match runs.iter().find(|r| !r.attempt.ok) {
        None => Ok(()),
        Some(r) => Err(Error::HookRejected {
            event: event.name().to_string(),
            hook: r.hook.clone(),
            reason: r.attempt.detail.clone(),
            operation: operation.to_string(),
            output: r.attempt.output.clone(),
        }),
    }
}

/// Fires `event` for an existing commit: a `pre-*` event runs its hooks now and fails
/// (`Error::HookRejected`, naming `operation`) if one fails; a `post-*` event records
/// its deliveries in the outbox, to be delivered by [`deliver::run_worker`].
pub fn fire(
    repo: &Repository,
    set: &HookSet,
    event: Event,
    commit: ObjectId,
    branch: Option<String>,
    base: Option<ObjectId>,
    operation: &str,
) -> Result<FireReport> {
    let previous = if event == Event::PostCheckout {
        base
    } else {
        None
    };
    let prepared = prepare(repo, set, event, commit, branch, base, previous)?;
    finish_fire(repo, prepared, operation)
}

fn finish_fire(repo: &Repository, prepared: Prepared, operation: &str) -> Result<FireReport> {
    let mut report = FireReport {
        skipped: prepared.skipped.clone(),
        ..FireReport::default()
    };
    if prepared.hooks.is_empty() {
        return Ok(report);
    }
    if prepared.event.is_pre() {
        let runs = run_now(
            &prepared,
            repo.root(),
            &repo.settings.variables,
            true,
            false,
            &mut |_, _| {},
        );
        rejection(prepared.event, &runs, operation)?;
        report.ran = runs;
    } else {
        report.queued = record(repo.dsv_dir(), repo.storage.clone(), &prepared, None)?;
    }
    Ok(report)
}

/// A commit with its hooks.
#[derive(Debug)]
pub struct HookedCommit {
    /// The commit.
    pub result: CommitResult,
    /// What `pre-commit` did.
    pub pre: FireReport,
    /// What `post-commit` and `branch-updated` recorded, or why they could not be
    /// recorded (the commit stands).
    pub post: Result<Vec<(Event, FireReport)>>,
}

/// `commit` with hooks: loads them first (a bad `dsv.toml` refuses the commit), runs
/// `pre-commit` before anything is written (a failure aborts the commit and leaves
/// index and refs as they were), records the `post-commit` deliveries staged once the
/// commit object is durable and before the branch moves (an outbox that cannot be
/// written refuses the commit), and confirms them after it moved. A crash between
/// the move and the confirmation leaves them staged; the next worker finds the branch
/// at (or past) the commit and confirms them, so no delivery is lost.
pub fn commit(repo: &WritableRepo, opts: &CommitOptions) -> Result<HookedCommit> {
    let set = load(repo)?;
    let branch = current_branch(repo)?;
    let awaits = match &branch {
        Some(b) => format!("{}{b}", crate::refs::HEADS),
        None => "HEAD".to_string(),
    };
    let old_tip = repo.refs.head_commit()?;
    let mut pre = FireReport::default();
    let mut post = FireReport::default();
    let mut before = |pending: &PendingCommit| -> Result<()> {
        let prepared = prepare_pending(repo, &set, Event::PreCommit, pending, branch.clone())?;
        pre = finish_fire(repo, prepared, "commit")?;
        Ok(())
    };
    let mut updated = FireReport::default();
    let mut before_ref = |id: ObjectId, c: &Commit| -> Result<()> {
        let stage = |prepared: Prepared, report: &mut FireReport| -> Result<()> {
            report.skipped = prepared.skipped.clone();
            if !prepared.hooks.is_empty() {
                report.queued = record(
                    repo.dsv_dir(),
                    repo.storage.clone(),
                    &prepared,
                    Some(awaits.clone()),
                )?;
            }
            Ok(())
        };
        if set.for_event(Event::PostCommit).next().is_some() {
            let prepared = prepare(
                repo,
                &set,
                Event::PostCommit,
                id,
                branch.clone(),
                None,
                None,
            )?;
            stage(prepared, &mut post)?;
        }
        // A commit moves its branch from the old tip: its first parent, or for
        // `--amend` the commit it replaced, so that move is no fast-forward (a
        // detached HEAD is no branch).
        if let Some(b) = &branch
            && set.for_event(Event::BranchUpdated).next().is_some()
        {
            let m = BranchMove {
                branch: b.clone(),
                old: if opts.amend {
                    old_tip
                } else {
                    c.parents.first().copied()
                },
                new: id,
            };
            stage(prepare_update(repo, &set, &m)?, &mut updated)?;
        }
        Ok(())
    };
    let has_pre = set.for_event(Event::PreCommit).next().is_some();
    let has_post = set.for_event(Event::PostCommit).next().is_some()
        || (branch.is_some() && set.for_event(Event::BranchUpdated).next().is_some());
    let result = commit_with(
        repo,
        opts,
        if has_pre { Some(&mut before) } else { None },
        if has_post {
            Some(&mut before_ref)
        } else {
            None
        },
    )?;
    let seqs: Vec<u64> = post
        .queued
        .iter()
        .chain(&updated.queued)
        .map(|q| q.seq)
        .collect();
    let post = Outbox::new(repo.dsv_dir(), repo.storage.clone())
        .confirm(&seqs)
        .map(|()| vec![(Event::PostCommit, post), (Event::BranchUpdated, updated)]);
    Ok(HookedCommit { result, pre, post })
}

/// Fires `post-checkout` after HEAD moved from `previous` to the current HEAD.
/// The hooks come from the `dsv.toml` now checked out.
pub fn post_checkout(repo: &Repository, previous: Option<ObjectId>) -> Result<FireReport> {
    let Some(commit) = repo.refs.head_commit()? else {
        return Ok(FireReport::default());
    };
    let fired = fire_events(
        repo,
        &[OpEvent::CheckedOut { commit, previous }],
        "checkout",
    )?;
    Ok(fired.into_iter().next().map(|(_, r)| r).unwrap_or_default())
}

/// Fires the `post-*` hooks of what an operation did, as its result's `events` list
/// it (see [`OpEvent`]): `post-commit` for each commit recorded (by `merge`,
/// `cherry-pick`, `revert` and their `--continue`), `post-merge` when `dsv merge`
/// or `dsv pull` moved HEAD (a fast-forward or a merge commit; its summary compares
/// with the previous HEAD), `post-checkout` when `switch` or `checkout REV` moved
/// HEAD, and `branch-updated` for each branch moved (also by `reset`, `pull` and
/// `branch -f`). The deliveries are recorded after the refs moved (a crash in
/// between loses them). Returns what each event recorded; the hooks come from the
/// `dsv.toml` now checked out.
pub fn fire_events(
    repo: &Repository,
    events: &[OpEvent],
    operation: &str,
) -> Result<Vec<(Event, FireReport)>> {
    let mut out = Vec::new();
    if events.is_empty() {
        return Ok(out);
    }
    let set = load(repo)?;
    let branch = current_branch(repo)?;
    for e in events {
        let event = match e {
            OpEvent::Committed(_) => Event::PostCommit,
            OpEvent::Merged { .. } => Event::PostMerge,
            OpEvent::BranchMoved(_) => Event::BranchUpdated,
            OpEvent::CheckedOut { .. } => Event::PostCheckout,
        };
        if set.for_event(event).next().is_none() {
            continue;
        }
        let prepared = match e {
            OpEvent::Committed(id) => prepare(repo, &set, event, *id, branch.clone(), None, None)?,
            OpEvent::Merged { commit, previous } | OpEvent::CheckedOut { commit, previous } => {
                prepare(
                    repo,
                    &set,
                    event,
                    *commit,
                    branch.clone(),
                    *previous,
                    *previous,
                )?
            }
            OpEvent::BranchMoved(m) => prepare_update(repo, &set, m)?,
        };
        out.push((event, finish_fire(repo, prepared, operation)?));
    }
    Ok(out)
}

/// Sets the payload's remote and pushed ref, and refreshes its JSON.
fn with_remote(
    mut prepared: Prepared,
    remote: payload::RemoteRef,
    push: payload::PushUpdate,
) -> Prepared {
    prepared.payload.remote = Some(remote);
    prepared.payload.push = Some(push);
    prepared.json = prepared.payload.to_json();
    prepared
}

/// A push with its hooks.
#[derive(Debug)]
pub struct HookedPush {
    /// The push.
    pub report: PushReport,
    /// What `pre-push` did.
    pub pre: FireReport,
    /// What `post-push` recorded, or why it could not be recorded (the push stands).
    pub post: Result<FireReport>,
}

/// Fires `pre-push` and `post-push` from inside a push.
struct PushHooks<'a> {
    repo: &'a Repository,
    set: HookSet,
    pre: FireReport,
    post: FireReport,
    /// The `post-push` deliveries of the ref being pushed, staged until it moves.
    staged: Vec<u64>,
    post_error: Option<Error>,
}

impl PushHooks<'_> {
    fn prepare(&self, event: Event, plan: &PushPlan) -> Result<Prepared> {
        // The summary says what the push brings: from the remote's previous commit
        // when this clone has it, else from the first parent.
        let base = match plan.old {
            Some(o) if self.repo.store.contains(&o)? => Some(o),
            _ => None,
        };
        // A tag is no branch: hooks filtered on branches do not see it.
        let branch = plan
            .remote_ref
            .starts_with("refs/heads/")
            .then(|| plan.branch.clone());
        let prepared = prepare(
            self.repo, &self.set, event, plan.new, branch, base, plan.old,
        )?;
        Ok(with_remote(
            prepared,
            payload::RemoteRef {
                name: plan.remote.clone(),
                url: plan.url.clone(),
            },
            payload::PushUpdate {
                remote_ref: plan.remote_ref.clone(),
                old: plan.old.map(|o| o.to_hex()),
                new: (!plan.deleted).then(|| plan.new.to_hex()),
                deleted: plan.deleted,
            },
        ))
    }
}

impl PushObserver for PushHooks<'_> {
    fn before_upload(&mut self, plan: &PushPlan) -> Result<()> {
        if self.set.for_event(Event::PrePush).next().is_none() {
            return Ok(());
        }
        let prepared = self.prepare(Event::PrePush, plan)?;
        // Several refs (tags) add up.
        let fired = finish_fire(self.repo, prepared, "push")?;
        self.pre.ran.extend(fired.ran);
        self.pre.skipped.extend(fired.skipped);
        Ok(())
    }

    fn before_ref(&mut self, plan: &PushPlan) -> Result<()> {
        if self.set.for_event(Event::PostPush).next().is_none() {
            return Ok(());
        }
        let prepared = self.prepare(Event::PostPush, plan)?;
        self.post.skipped.extend(prepared.skipped.clone());
        if !prepared.hooks.is_empty() {
            // Staged before the remote ref moves, like post-commit: a crash right after
            // the move leaves them staged, and a worker confirms them once the
            // remote-tracking ref shows the commit.
            let queued = record(
                self.repo.dsv_dir(),
                self.repo.storage.clone(),
                &prepared,
                Some(plan.tracking.clone()),
            )?;
            self.staged = queued.iter().map(|q| q.seq).collect();
            self.post.queued.extend(queued);
        }
        Ok(())
    }

    fn after_ref(&mut self, _: &PushPlan) -> Result<()> {
        let seqs = std::mem::take(&mut self.staged);
        // The remote moved: the push stands whatever happens here, so an error is
        // reported with the push, not instead of it.
        if let Err(e) = Outbox::new(self.repo.dsv_dir(), self.repo.storage.clone()).confirm(&seqs) {
            self.post_error = Some(e);
        }
        Ok(())
    }

    fn ref_not_moved(&mut self, _: &PushPlan) {
        let seqs = std::mem::take(&mut self.staged);
        self.post.queued.retain(|q| !seqs.contains(&q.seq));
        // Best effort: a staged delivery left behind is dropped by the next worker,
        // which finds that the remote-tracking ref never reached its commit.
        let _ = Outbox::new(self.repo.dsv_dir(), self.repo.storage.clone()).forget(&seqs);
    }
}

/// `push` with hooks: loads them first (a bad `dsv.toml` refuses the push), runs
/// `pre-push` before anything is uploaded (a failure aborts the push: nothing sent,
/// no ref moved), stages the `post-push` deliveries before the remote ref moves and
/// confirms them right after. Nothing fires when the remote is already up to date.
pub fn push(
    repo: &WritableRepo,
    remote_name: &str,
    branch: Option<&str>,
    force: ForceMode,
    progress: &dyn Progress,
) -> Result<HookedPush> {
    let mut hooks = PushHooks {
        repo,
        set: load(repo)?,
        pre: FireReport::default(),
        post: FireReport::default(),
        staged: Vec::new(),
        post_error: None,
    };
    let report = push_with(repo, remote_name, branch, force, progress, &mut hooks)?;
    let post = match hooks.post_error {
        Some(e) => Err(e),
        None => Ok(hooks.post),
    };
    Ok(HookedPush {
        report,
        pre: hooks.pre,
        post,
    })
}

/// A delete or tag push with its hooks.
#[derive(Debug)]
pub struct HookedRefPush {
    /// The refs changed.
    pub report: RefPushReport,
    /// What `pre-push` did (every ref's runs).
    pub pre: FireReport,
    /// What `post-push` recorded, or why it could not be recorded (the push stands).
    pub post: Result<FireReport>,
}

/// Runs `op` with the push hooks, which collect every ref's `pre-push` runs and
/// `post-push` deliveries.
fn with_push_hooks(
    repo: &WritableRepo,
    op: impl FnOnce(&mut PushHooks) -> Result<RefPushReport>,
) -> Result<HookedRefPush> {
    let mut hooks = PushHooks {
        repo,
        set: load(repo)?,
        pre: FireReport::default(),
        post: FireReport::default(),
        staged: Vec::new(),
        post_error: None,
    };
    let report = op(&mut hooks)?;
    let post = match hooks.post_error {
        Some(e) => Err(e),
        None => Ok(hooks.post),
    };
    Ok(HookedRefPush {
        report,
        pre: hooks.pre,
        post,
    })
}

/// `push --delete` with hooks: `pre-push` sees the delete (`push.deleted`,
/// `push.new` null; `commit` is the commit the remote ref held) and can refuse it.
pub fn push_delete(
    repo: &WritableRepo,
    remote_name: &str,
    name: &str,
    force: bool,
) -> Result<HookedRefPush> {
    with_push_hooks(repo, |obs| {
        crate::remote::refupdate::delete_with(repo, remote_name, name, force, obs)
    })
}

/// Pushing tags with hooks: `pre-push` and `post-push` fire once per tag sent
/// (`push.ref` is `refs/tags/NAME`, `branch` is null).
pub fn push_tags(
    repo: &WritableRepo,
    remote_name: &str,
    tags: &[String],
    force: bool,
    progress: &dyn Progress,
) -> Result<HookedRefPush> {
    with_push_hooks(repo, |obs| {
        crate::remote::refupdate::push_tags_with(repo, remote_name, tags, force, progress, obs)
    })
}
