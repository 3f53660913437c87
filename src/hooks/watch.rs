//! `dsv watch`: the CI-side trigger. Inside a mirror of a remote (a clone, usually
//! `dsv clone --no-checkout`), poll the remote's branch refs, and for every commit
//! that lands on a watched branch fire one `remote-commit` delivery, in commit
//! order, exactly once.
//!
//! Exactly once rests on the outbox: the cursor of each (remote, branch), the last
//! commit fired, lives in `.dsv/hooks.redb` and moves in the redb transaction that
//! records the deliveries of the commits it passes. A crash before that transaction
//! leaves the cursor where it was (the commits are found again); a crash after it
//! leaves recorded deliveries, which the next run delivers. Delivery itself is
//! at least once, like every `post-*` delivery; the idempotency key (hook id and
//! commit) lets a receiver drop the repeat after a crash in the middle of one.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::hooks::config::{Action, Event, Filters};
use crate::hooks::deliver::{Attempt, DueReport, deliver_due};
use crate::hooks::outbox::{Blocked, Delivery, NewDelivery, Outbox, RetryPolicy, State, now_ms};
use crate::hooks::payload::{self, RemoteRef};
use crate::id::ObjectId;
use crate::object::Commit;
use crate::progress::Progress;
use crate::remote::fetch::{FetchMode, fetch, partial_remote};
use crate::remote::{Remote, remote_config, tracking_ref};
use crate::repo::{Repository, WritableRepo};
use crate::storage::Storage;

/// What to watch and what to do for each new commit.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// Remote name.
    pub remote: String,
    /// Branch globs (`*` stays within one `/`-separated part, `**` crosses them);
    /// empty: every branch.
    pub branches: Vec<String>,
    /// The command or webhook.
    pub action: Action,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// A branch seen for the first time fires for its whole history, not only for
    /// what lands after.
    pub from_start: bool,
    /// Which commits fire: `paths` and `labels_changed`, as in `[[hooks]]` (the
    /// default lets every commit through). A commit left out is passed by the cursor.
    pub filters: Filters,
}

impl WatchSpec {
    /// The hook id of the watch's deliveries (and of their idempotency keys).
    pub fn hook_id(&self) -> String {
        format!("watch:{}", self.remote)
    }
}

/// What one poll found for one branch.
#[derive(Debug, Clone, Serialize)]
pub struct BranchPoll {
    /// The branch.
    pub branch: String,
    /// The cursor before the poll (`None`: the branch was not watched yet).
    pub old: Option<String>,
    /// The cursor after it (the remote tip).
    pub new: String,
    /// The branch was seen for the first time and its cursor set.
    pub started: bool,
    /// Commits recorded for delivery, oldest first.
    pub fired: Vec<String>,
    /// Commits passed that were already recorded (a force-push brought them back).
    pub repeated: Vec<String>,
    /// Commits passed that `--paths` or `--labels-changed` left out.
    pub filtered: Vec<String>,
}

/// What one poll did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollReport {
    /// Branches whose cursor moved (or started).
    pub branches: Vec<BranchPoll>,
    /// Whether new commits were fetched.
    pub fetched: bool,
    /// Remote branches this poll could not use (invalid name, unreadable ref, name
    /// conflict); they are not watched until fixed on the remote.
    pub skipped: Vec<crate::remote::refs::Skipped>,
}

/// A watch of one remote, in one mirror.
pub struct Watcher {
    spec: WatchSpec,
    globs: GlobSet,
    remote: Remote,
    url: String,
}

fn branch_globs(globs: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob: Glob = GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("invalid --branch glob '{g}': {e}")))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| Error::InvalidArgument(format!("invalid --branch globs: {e}")))
}

/// Every ancestor of `start` (itself included) present in the store.
fn ancestors(repo: &Repository, start: ObjectId) -> Result<HashSet<ObjectId>> {
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        if !repo.store.contains(&c)? {
            continue;
        }
        stack.extend(Commit::load(&repo.store, &c)?.parents);
    }
    Ok(seen)
}

/// The commits reachable from `tip` but not from `cursor`, parents before children
/// (oldest first). A cursor this repository no longer has (collected after a
/// force-push moved the branch away) cannot bound the walk: then only `tip` counts.
pub fn new_commits(
    repo: &Repository,
    cursor: Option<ObjectId>,
    tip: ObjectId,
) -> Result<Vec<ObjectId>> {
    let exclude = match cursor {
        Some(c) if c == tip => return Ok(Vec::new()),
        Some(c) if repo.store.contains(&c)? => ancestors(repo, c)?,
        Some(_) => return Ok(vec![tip]),
        None => HashSet::new(),
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // (commit, parents already pushed): a commit is emitted after all its parents.
    let mut stack = vec![(tip, false)];
    while let Some((id, expanded)) = stack.pop() {
        if expanded {
            out.push(id);
            continue;
        }
        if exclude.contains(&id) || !seen.insert(id) || !repo.store.contains(&id)? {
            continue;
        }
        stack.push((id, true));
        let c = Commit::load(&repo.store, &id)?;
        // Reversed so the first parent's history comes out first.
        for p in c.parents.iter().rev() {
            stack.push((*p, false));
        }
    }
    Ok(out)
}

impl Watcher {
    /// Checks the spec and opens the remote (read-only).
    pub fn new(repo: &Repository, spec: WatchSpec) -> Result<Watcher> {
        let globs = branch_globs(&spec.branches)?;
        let cfg = remote_config(repo, &spec.remote)?;
        let remote = Remote::open(&cfg, false)?;
        remote.check_marker(false)?;
        Ok(Watcher {
            url: crate::redact::url(&cfg.url),
            spec,
            globs,
            remote,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &WatchSpec {
        &self.spec
    }

    fn watched(&self, branch: &str) -> bool {
        self.spec.branches.is_empty() || self.globs.is_match(branch)
    }

    /// Whether `--paths` and `--labels-changed` let a commit with this summary fire.
    /// A partial summary cannot tell whether labels changed: such a commit fires.
    fn lets_through(&self, s: &payload::ChangeSummary) -> bool {
        let f = &self.spec.filters;
        f.paths_match(s.paths.iter().map(String::as_str))
            && (!f.labels_changed || s.labels_changed || s.partial)
    }

    /// One poll: lists the remote's branch refs (nothing else is read when no
    /// watched branch moved), fetches the new commits and trees when one did, and
    /// records one delivery per new commit, moving the branch's cursor in the same
    /// transaction. Delivers nothing: see [`deliver_due`].
    pub fn poll(&self, repo: &WritableRepo, progress: &dyn Progress) -> Result<PollReport> {
        let mut report = PollReport::default();
        let outbox = Outbox::new(repo.dsv_dir(), repo.storage.clone());
        let name = &self.spec.remote;
        let mut todo: Vec<(String, ObjectId, Option<ObjectId>, bool)> = Vec::new();
        let tracked: Vec<String> = repo
            .refs
            .list(&format!("{}{name}/", crate::remote::REMOTES))?
            .into_iter()
            .map(|(b, _)| b)
            .collect();
        let listing = crate::remote::refs::sort_out(self.remote.refs().list_values()?, &tracked);
        report.skipped = listing
            .skipped
            .into_iter()
            .filter(|s| self.watched(&s.branch))
            .collect();
        for (branch, tip) in listing.branches {
            if !self.watched(&branch) {
                continue;
            }
            match outbox.cursor(name, &branch)? {
                Some(c) if c == tip.to_hex() => {}
                Some(c) => {
                    let c = ObjectId::from_hex(&c).ok_or_else(|| {
                        Error::Corrupt(format!("hooks.redb: bad watch cursor for {name}/{branch}"))
                    })?;
                    todo.push((branch, tip, Some(c), false));
                }
                None => {
                    // A branch not watched yet starts where this mirror last saw it
                    // (what the clone or the last fetch brought), else at its tip.
                    let start = if self.spec.from_start {
                        None
                    } else {
                        Some(repo.refs.read(&tracking_ref(name, &branch))?.unwrap_or(tip))
                    };
                    todo.push((branch, tip, start, true));
                }
            }
        }
        if todo.is_empty() {
            return Ok(report);
        }
        let mut missing = false;
        for (_, tip, _, _) in &todo {
            missing |= !repo.store.contains(tip)?;
        }
        if missing {
            // A metadata-only mirror stays one: commits and trees only.
            let mode = if partial_remote(repo)?.is_some() {
                FetchMode::Metadata
            } else {
                FetchMode::Full
            };
            fetch(repo, name, mode, true, progress)?;
            report.fetched = true;
        }
        let partial = partial_remote(repo)?.is_some();
        let hook = self.spec.hook_id();
        for (branch, listed, start, started) in todo {
            // The fetch may have seen a newer tip than the listing (or the branch gone):
            // its remote-tracking ref is what this mirror now has the closure of.
            let tip = if report.fetched {
                match repo.refs.read(&tracking_ref(name, &branch))? {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                listed
            };
            let commits = new_commits(repo, start, tip)?;
            let mut items = Vec::with_capacity(commits.len());
            let mut filtered = Vec::new();
            let mut previous = start;
            for id in &commits {
                let c = Commit::load(&repo.store, id)?;
                let base = c.parents.first().copied();
                let summary = if partial {
                    mirror_summary(repo, base, &c, progress)?
                } else {
                    payload::summary_between(repo, base, &c)?
                };
                if !self.lets_through(&summary) {
                    filtered.push(id.to_hex());
                    continue;
                }
                let mut p = payload::for_commit(
                    repo,
                    Event::RemoteCommit,
                    *id,
                    &c,
                    Some(branch.clone()),
                    previous,
                    summary,
                );
                p.remote = Some(RemoteRef {
                    name: name.clone(),
                    url: self.url.clone(),
                });
                items.push(NewDelivery {
                    hook: hook.clone(),
                    event: Event::RemoteCommit,
                    commit: id.to_hex(),
                    branch: Some(branch.clone()),
                    previous: None,
                    awaits_ref: None,
                    action: self.spec.action.clone(),
                    timeout: self.spec.timeout,
                    payload: p.to_json(),
                });
                previous = Some(*id);
            }
            let recorded = outbox.advance(&items, name, &branch, &tip.to_hex())?;
            let (mut fired, mut repeated) = (Vec::new(), Vec::new());
            for (it, r) in items.iter().zip(&recorded) {
                if r.new {
                    fired.push(it.commit.clone());
                } else {
                    repeated.push(it.commit.clone());
                }
            }
            report.branches.push(BranchPoll {
                branch,
                old: if started {
                    None
                } else {
                    start.map(|s| s.to_hex())
                },
                new: tip.to_hex(),
                started,
                fired,
                repeated,
                filtered,
            });
        }
        Ok(report)
    }
}

/// The summary of commit `c` against `base` in a metadata-only mirror: downloads
/// the two `dsv.toml`s (they say which files are labels), then both versions of each
/// changed file that may be a label file (never a frame), and computes the
/// label-aware summary. When that is not enough (the label diff needs a file it did
/// not download), the summary from the trees alone, marked partial, says why.
fn mirror_summary(
    repo: &Repository,
    base: Option<ObjectId>,
    c: &Commit,
    progress: &dyn Progress,
) -> Result<payload::ChangeSummary> {
    use crate::layout::{Layout, Role};
    use crate::object::diff::{diff_trees, flatten_scoped};
    use crate::remote::fetch::fetch_objects;
    use crate::worktree::sources::TreeSource;
    let old_tree = match base {
        Some(b) => Some(Commit::load(&repo.store, &b)?.tree),
        None => None,
    };
    let toml = [crate::dsv_toml::FILE_NAME.as_bytes().to_vec()];
    let mut ids = Vec::new();
    for t in [old_tree, Some(c.tree)].into_iter().flatten() {
        ids.extend(
            flatten_scoped(&repo.store, Some(&t), &toml)?
                .values()
                .map(|st| st.id),
        );
    }
    fetch_objects(repo, &ids, progress)?;
    let layout = |tree: Option<ObjectId>| -> Result<Layout> {
        Ok(Layout::load(&TreeSource::new(&repo.store, tree))?
            .unwrap_or_else(|_| Layout::new(crate::dsv_toml::DsvToml::default())))
    };
    let (lo, ln) = (layout(old_tree)?, layout(Some(c.tree))?);
    let mut ids = Vec::new();
    for ch in diff_trees(&repo.store, old_tree.as_ref(), Some(&c.tree), &[])? {
        let path = crate::paths::display_path(&ch.path);
        for (l, st) in [(&lo, ch.old), (&ln, ch.new)] {
            // A path the layout cannot place is told apart by its first bytes.
            if let Some(st) = st
                && matches!(l.role_by_path(&path), Some(Role::Label(_)) | None)
            {
                ids.push(st.id);
            }
        }
    }
    fetch_objects(repo, &ids, progress)?;
    match payload::summary_between(repo, base, c) {
        Ok(s) => Ok(s),
        Err(e) => {
            let mut s = payload::tree_summary(repo, base, c)?;
            s.warnings.push(format!("label summary not computed: {e}"));
            Ok(s)
        }
    }
}

/// How a watch runs.
#[derive(Clone)]
pub struct RunOptions {
    /// The mirror's root (hook commands run there).
    pub root: PathBuf,
    /// What the outbox is written through while delivering.
    pub storage: Arc<dyn Storage>,
    /// Time between polls.
    pub interval: Duration,
    /// Poll once, deliver everything (waiting out retries), and return.
    pub once: bool,
    /// Retry policy of the deliveries.
    pub policy: RetryPolicy,
    /// Where the hooks' `${NAME}` and `secret_env` are looked up.
    pub vars: crate::settings::Variables,
}

/// Something a running watch reports.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// A poll moved cursors.
    Polled(&'a PollReport),
    /// A poll failed (the remote unreachable, say); the watch goes on, except `--once`.
    PollFailed(&'a Error),
    /// A delivery attempt ended.
    Attempted(&'a Delivery, &'a Attempt),
    /// Failed deliveries of this watch that hold back later ones of their branch
    /// (each reported once, and again when the number waiting behind it changes).
    Blocked(&'a [Blocked]),
}

/// What a watch run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// Polls made.
    pub polls: u64,
    /// Commits recorded for delivery.
    pub fired: u64,
    /// Delivery attempts.
    pub attempts: u64,
    /// Deliveries of this watch that gave up during this run.
    pub failed: u64,
    /// With `once`: deliveries of this watch not delivered when it returned (failed
    /// ones, and the later ones a failed one holds back); `dsv hooks retry` revives them.
    pub undelivered: u64,
    /// Stopped by `stop` (a signal) rather than by `once`.
    pub stopped: bool,
}

/// Sleeps until `until` (unix ms) or `stop()`, looking every 50 ms.
fn sleep_until(until: i64, stop: &dyn Fn() -> bool) {
    let start = Instant::now();
    let total = Duration::from_millis((until - now_ms()).max(0) as u64);
    while !stop() && start.elapsed() < total {
        std::thread::sleep((total - start.elapsed()).min(Duration::from_millis(50)));
    }
}

/// Runs a watch: polls (opening the repository with `open` for each poll and
/// closing it before delivering, so hooks may run dsv in the mirror), then delivers
/// in this process with the outbox's retry and backoff, then sleeps. Returns when
/// `stop()` says so (checked between steps and while sleeping), or with `once`
/// after one poll once nothing is left to attempt. An error of the first poll is
/// returned (a wrong remote should not loop); later ones are reported and retried.
pub fn run(
    watcher: &Watcher,
    open: &mut dyn FnMut() -> Result<Repository>,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(WatchEvent),
) -> Result<RunReport> {
    let mut report = RunReport::default();
    let hook = watcher.spec.hook_id();
    let root = opts.root.as_path();
    let dsv_dir = root.join(crate::repo::DSV_DIR);
    // The recorded deliveries hold the action with its secrets masked; this watch
    // supplies them for its own (`deliver::live_action`).
    let live = [(hook.clone(), watcher.spec.action.clone())];
    // What was last said about blocked deliveries: (delivery, how many wait).
    let mut said: Vec<(u64, usize)> = Vec::new();
    loop {
        let polled = open()
            .and_then(Repository::into_writable)
            .and_then(|repo| watcher.poll(&repo, progress));
        report.polls += 1;
        match polled {
            Ok(p) => {
                report.fired += p.branches.iter().map(|b| b.fired.len() as u64).sum::<u64>();
                if !p.branches.is_empty() || !p.skipped.is_empty() {
                    on_event(WatchEvent::Polled(&p));
                }
            }
            Err(e) if report.polls == 1 || opts.once => return Err(e),
            Err(e) => on_event(WatchEvent::PollFailed(&e)),
        }
        let next_poll = now_ms() + opts.interval.as_millis() as i64;
        loop {
            if stop() {
                report.stopped = true;
                return Ok(report);
            }
            let DueReport {
                attempts,
                next,
                ran,
            } = deliver_due(
                root,
                &dsv_dir,
                opts.storage.clone(),
                &opts.policy,
                &opts.vars,
                &live,
                &mut |d, a| {
                    if d.hook == hook && d.state == State::Failed {
                        report.failed += 1;
                    }
                    on_event(WatchEvent::Attempted(d, a));
                },
                stop,
            )?;
            report.attempts += attempts as u64;
            if attempts > 0 || said.is_empty() {
                let blocked: Vec<Blocked> = Outbox::new(&dsv_dir, opts.storage.clone())
                    .blocked()?
                    .into_iter()
                    .filter(|b| b.delivery.hook == hook)
                    .collect();
                let now: Vec<(u64, usize)> = blocked
                    .iter()
                    .map(|b| (b.delivery.seq, b.waiting))
                    .collect();
                if now != said {
                    let fresh: Vec<Blocked> = blocked
                        .into_iter()
                        .filter(|b| !said.contains(&(b.delivery.seq, b.waiting)))
                        .collect();
                    if !fresh.is_empty() {
                        on_event(WatchEvent::Blocked(&fresh));
                    }
                    said = now;
                }
            }
            // Another worker holds the outbox: look again soon, it may leave some.
            let next = if ran { next } else { Some(now_ms() + 200) };
            match (opts.once, next) {
                // Nothing left to attempt: done, or held back by a failed delivery.
                (true, None) => {
                    let outbox = Outbox::new(&dsv_dir, opts.storage.clone());
                    report.undelivered = outbox
                        .list()?
                        .iter()
                        .filter(|d| {
                            d.hook == hook && !matches!(d.state, State::Done | State::Skipped)
                        })
                        .count() as u64;
                    return Ok(report);
                }
                (true, Some(at)) => sleep_until(at, stop),
                (false, Some(at)) if at < next_poll => sleep_until(at, stop),
                (false, _) => {
                    sleep_until(next_poll, stop);
                    break;
                }
            }
        }
    }
}
