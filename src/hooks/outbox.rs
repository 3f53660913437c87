//! The durable outbox of `post-*` deliveries: `.dsv/hooks.redb`, which also
//! holds the cursors of `dsv watch` (moved in the transaction that records the
//! deliveries of the commits they pass, so a crash neither skips nor repeats one).
//!
//! A delivery is recorded (one redb transaction, fsynced) before anything is
//! attempted: for `post-commit` staged before the branch moves and confirmed after
//! (see `deliver::reconcile` for a crash in between), for other events right after
//! the ref moved. It is marked done only after its hook succeeded. A crash during
//! an attempt therefore means the attempt is repeated: receivers drop repeats by
//! the idempotency key. Each (event, hook, commit) is recorded at most once.
//!
//! redb lets one process at a time open a file, and both the command that records
//! and the background worker that delivers use it, so every open is short and
//! taken under an exclusive `flock` on `.dsv/hooks.lock` (waited for, not failed on).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::hooks::config::{Action, Event};
use crate::storage::Storage;

/// File name of the outbox in `.dsv`.
pub const FILE: &str = "hooks.redb";
/// Lock file serializing opens of the outbox.
pub const LOCK_FILE: &str = "hooks.lock";

/// Deliveries by sequence number: JSON of [`Delivery`].
const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// `event/hook/commit` → sequence number: at most one delivery per key.
const KEYS: TableDefinition<&str, u64> = TableDefinition::new("keys");

/// `dsv watch` cursors: `REMOTE/BRANCH` → the last commit fired (64 hex). Moved in
/// the transaction that records that commit's deliveries.
const CURSORS: TableDefinition<&str, &str> = TableDefinition::new("watch_cursors");

/// The key of the `keys` table: at most one delivery per (event, hook, commit). A
/// `branch-updated` delivery has none: each move is one delivery, even a move the
/// branch made before (reset back, then forward again), and each is recorded once by
/// the command that moved the branch.
fn unique_key(event: Event, hook: &str, commit: &str) -> Option<String> {
    match event {
        Event::BranchUpdated => None,
        _ => Some(format!("{}/{hook}/{commit}", event.name())),
    }
}

/// The `Idempotency-Key` of delivery `seq`: `HOOK:COMMIT`, and for `branch-updated`
/// `HOOK:BRANCH:OLD..NEW#SEQ` (one per move).
fn idempotency_key(
    event: Event,
    hook: &str,
    commit: &str,
    branch: Option<&str>,
    previous: Option<&str>,
    seq: u64,
) -> String {
    match event {
        Event::BranchUpdated => format!(
            "{hook}:{}:{}..{commit}#{seq}",
            branch.unwrap_or(""),
            previous.unwrap_or("")
        ),
        _ => format!("{hook}:{commit}"),
    }
}

fn cursor_key(remote: &str, branch: &str) -> String {
    // Remote names have no '/', so the first one separates the two.
    format!("{remote}/{branch}")
}

/// How long to wait for another process's short hold on the outbox.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// Output kept per delivery (the end of it).
const OUTPUT_KEEP: usize = 4096;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Recorded before the ref moved; becomes pending once the move is confirmed
    /// (by the command, or by a worker that finds the ref at or past the commit).
    Staged,
    /// Not delivered yet (maybe after failed attempts; retried at `next_attempt_ms`).
    Pending,
    /// Delivered.
    Done,
    /// Gave up after the maximum number of attempts; `dsv hooks retry` revives it.
    Failed,
    /// Given up by `dsv hooks skip`: never attempted again, and no longer holds back
    /// the later deliveries of its hook (`dsv hooks retry ID` revives it).
    Skipped,
}

impl State {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            State::Staged => "staged",
            State::Pending => "pending",
            State::Done => "done",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }
}

/// One recorded delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Sequence number (order of recording).
    pub seq: u64,
    /// Delivery id (`X-Dsv-Delivery`, `DSV_DELIVERY_ID`), the same for every attempt.
    pub id: String,
    /// `Idempotency-Key`: hook id and commit id.
    pub key: String,
    /// The hook.
    pub hook: String,
    /// The event.
    pub event: Event,
    /// The commit (64 hex).
    pub commit: String,
    /// The branch, if any.
    pub branch: Option<String>,
    /// For a staged delivery: the ref (`refs/heads/B` or `HEAD`) whose move to `commit`
    /// makes it real.
    #[serde(default)]
    pub awaits_ref: Option<String>,
    /// What the hook does, as declared when the event happened, with its secrets
    /// masked ([`Action::redacted`]).
    pub action: Action,
    /// Secrets of `action` were masked when it was recorded: delivery takes them
    /// from the live declaration (`deliver::live_action`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
    /// Timeout of one attempt, in milliseconds.
    pub timeout_ms: u64,
    /// The payload document.
    pub payload: String,
    /// State.
    pub state: State,
    /// Attempts made (ended ones; an attempt cut short by a crash does not count).
    pub attempts: u32,
    /// When the next attempt is due (unix ms).
    pub next_attempt_ms: i64,
    /// When it was recorded (unix ms).
    pub created_ms: i64,
    /// When it last changed (unix ms).
    pub updated_ms: i64,
    /// What the last failed attempt said.
    pub last_error: Option<String>,
    /// The end of what the last attempt printed or answered.
    pub last_output: Option<String>,
}

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Hook id.
    pub hook: String,
    /// Event.
    pub event: Event,
    /// Commit id (hex).
    pub commit: String,
    /// Branch.
    pub branch: Option<String>,
    /// `branch-updated`: the branch's commit before the move.
    pub previous: Option<String>,
    /// Record it staged, waiting for this ref to move to the commit.
    pub awaits_ref: Option<String>,
    /// Action snapshot.
    pub action: Action,
    /// Timeout.
    pub timeout: Duration,
    /// Payload.
    pub payload: String,
}

/// The result of recording one delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// Sequence number.
    pub seq: u64,
    /// Hook id.
    pub hook: String,
    /// Delivery id.
    pub id: String,
    /// False when this (event, hook, commit) was already recorded.
    pub new: bool,
}

/// When failed attempts are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubles after each further one.
    pub base: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(3600),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The default, with the settings' `hooks_backoff` and `hooks_max_attempts`
    /// (`DSV_HOOKS_BACKOFF_MS`, `DSV_HOOKS_MAX_ATTEMPTS`) applied.
    pub fn from_settings(settings: &crate::settings::Settings) -> RetryPolicy {
        let mut p = RetryPolicy::default();
        if let Some(base) = settings.hooks_backoff {
            p.base = base;
        }
        if let Some(n) = settings.hooks_max_attempts {
            p.max_attempts = n.clamp(1, 1000);
        }
        p
    }

    /// The wait after `attempts` failed attempts.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        self.base.saturating_mul(factor).min(self.max_delay)
    }
}

/// The outcome of one attempt, as stored.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// Whether the hook succeeded.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// What it printed or answered.
    pub output: String,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The outbox of one repository.
pub struct Outbox {
    dsv: PathBuf,
    storage: Arc<dyn Storage>,
}

fn decode(bytes: &[u8]) -> Result<Delivery> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("{FILE}: unreadable delivery record: {e}")))
}

fn encode(d: &Delivery) -> Vec<u8> {
    // Plain owned data always serializes.
    serde_json::to_vec(d).unwrap_or_default()
}

fn tail(s: &str) -> String {
    if s.len() <= OUTPUT_KEEP {
        return s.to_string();
    }
    let mut start = s.len() - OUTPUT_KEEP;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

impl Outbox {
    /// The outbox in `dsv_dir`; writes go through `storage`.
    pub fn new(dsv_dir: &Path, storage: Arc<dyn Storage>) -> Outbox {
        Outbox {
            dsv: dsv_dir.to_path_buf(),
            storage,
        }
    }

    /// Path of the database file.
    pub fn path(&self) -> PathBuf {
        self.dsv.join(FILE)
    }

    fn lock(&self) -> Result<File> {
        let path = self.dsv.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening", &path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(OutboxError::Busy {
                        path: path.to_path_buf(),
                        secs: LOCK_WAIT.as_secs(),
                    }
                    .into());
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("locking", path, e)),
            }
        }
    }

    /// Runs `f` on the open database; `None` when it does not exist and `create` is false.
    fn with_db<T>(&self, create: bool, f: impl FnOnce(&Db) -> Result<T>) -> Result<Option<T>> {
        let path = self.path();
        // Reading a repository that never had a delivery creates nothing.
        if !create && !path.exists() {
            return Ok(None);
        }
        let _guard = self.lock()?;
        if !path.exists() {
            if !create {
                return Ok(None);
            }
            // Created under a temporary name and renamed into place, so a crash while
            // redb lays out a new file never leaves a half-made outbox behind.
            let tmp = crate::storage::temp_name(&path);
            drop(Db::open_rw(&tmp, self.storage.clone())?);
            self.storage.rename(&tmp, &path)?;
            crate::storage::sync_dir(&self.dsv);
        }
        let start = Instant::now();
        let db = loop {
            match Db::open_rw(&path, self.storage.clone()) {
                Ok(db) => break db,
                // Another program (not a dsv following the lock) has the file open.
                Err(Error::Database { message, .. })
                    if message.contains("already open") && start.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        crate::db::contain(&path, || f(&db)).map(Some)
    }

    /// Records deliveries in one transaction; one already recorded is returned with `new: false`.
    pub fn record(&self, items: &[NewDelivery]) -> Result<Vec<Recorded>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.record_with_cursor(items, None)
    }

    /// Records deliveries and, in the same transaction, moves the watch cursor of
    /// (remote, branch) to `commit`: either both happen or neither does.
    pub fn advance(
        &self,
        items: &[NewDelivery],
        remote: &str,
        branch: &str,
        commit: &str,
    ) -> Result<Vec<Recorded>> {
        self.record_with_cursor(items, Some((remote, branch, commit)))
    }

    /// The commit the watch of (remote, branch) has fired up to, if it has started.
    pub fn cursor(&self, remote: &str, branch: &str) -> Result<Option<String>> {
        let out = self.with_db(false, |db| {
            let tx = db.read()?;
            let table = match tx.open_table(CURSORS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(db.err(e)),
            };
            let key = cursor_key(remote, branch);
            Ok(table
                .get(key.as_str())
                .map_err(|e| db.err(e))?
                .map(|v| v.value().to_string()))
        })?;
        Ok(out.flatten())
    }

    /// Every watch cursor: (remote, branch, commit), sorted.
    pub fn cursors(&self) -> Result<Vec<(String, String, String)>> {
        let out = self.with_db(false, |db| {
            let tx = db.read()?;
            let table = match tx.open_table(CURSORS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(db.err(e)),
            };
            let mut out = Vec::new();
            for row in table.iter().map_err(|e| db.err(e))? {
                let (k, v) = row.map_err(|e| db.err(e))?;
                let (remote, branch) = k.value().split_once('/').unwrap_or((k.value(), ""));
                out.push((
                    remote.to_string(),
                    branch.to_string(),
                    v.value().to_string(),
                ));
            }
            Ok(out)
        })?;
        Ok(out.unwrap_or_default())
    }

    fn record_with_cursor(
        &self,
        items: &[NewDelivery],
        cursor: Option<(&str, &str, &str)>,
    ) -> Result<Vec<Recorded>> {
        let now = now_ms();
        let out = self.with_db(true, |db| {
            let tx = db.write()?;
            let mut out = Vec::new();
            if let Some((remote, branch, commit)) = cursor {
                let mut cursors = tx.open_table(CURSORS).map_err(|e| db.err(e))?;
                let key = cursor_key(remote, branch);
                cursors
                    .insert(key.as_str(), commit)
                    .map_err(|e| db.err(e))?;
            }
            {
                let mut deliveries = tx.open_table(DELIVERIES).map_err(|e| db.err(e))?;
                let mut keys = tx.open_table(KEYS).map_err(|e| db.err(e))?;
                let mut next = match deliveries.last().map_err(|e| db.err(e))? {
                    Some((k, _)) => k.value() + 1,
                    None => 1,
                };
                for it in items {
                    let unique = unique_key(it.event, &it.hook, &it.commit);
                    let existing = match &unique {
                        Some(u) => keys
                            .get(u.as_str())
                            .map_err(|e| db.err(e))?
                            .map(|v| v.value()),
                        None => None,
                    };
                    if let Some(seq) = existing {
                        let existing = match deliveries.get(seq).map_err(|e| db.err(e))? {
                            Some(v) => decode(v.value())?,
                            None => {
                                return Err(Error::Corrupt(format!(
                                    "{FILE}: key {} names missing delivery {seq}",
                                    unique.unwrap_or_default()
                                )));
                            }
                        };
                        out.push(Recorded {
                            seq,
                            hook: it.hook.clone(),
                            id: existing.id,
                            new: false,
                        });
                        continue;
                    }
                    let seq = next;
                    next += 1;
                    let seed = format!("{}/{}/{}/{seq}/{now}", it.event.name(), it.hook, it.commit);
                    let id = blake3::hash(seed.as_bytes()).to_hex()[..32].to_string();
                    let d = Delivery {
                        seq,
                        id: id.clone(),
                        key: idempotency_key(
                            it.event,
                            &it.hook,
                            &it.commit,
                            it.branch.as_deref(),
                            it.previous.as_deref(),
                            seq,
                        ),
                        hook: it.hook.clone(),
                        event: it.event,
                        commit: it.commit.clone(),
                        branch: it.branch.clone(),
                        awaits_ref: it.awaits_ref.clone(),
                        // Never a secret in clear on disk: the URL's userinfo, a token
                        // parameter or header stays where the user put it.
                        action: it.action.redacted(),
                        masked: it.action.has_secrets(),
                        timeout_ms: it.timeout.as_millis() as u64,
                        payload: it.payload.clone(),
                        state: if it.awaits_ref.is_some() {
                            State::Staged
                        } else {
                            State::Pending
                        },
                        attempts: 0,
                        next_attempt_ms: now,
                        created_ms: now,
                        updated_ms: now,
                        last_error: None,
                        last_output: None,
                    };
                    deliveries
                        .insert(seq, encode(&d).as_slice())
                        .map_err(|e| db.err(e))?;
                    if let Some(u) = &unique {
                        keys.insert(u.as_str(), seq).map_err(|e| db.err(e))?;
                    }
                    out.push(Recorded {
                        seq,
                        hook: it.hook.clone(),
                        id,
                        new: true,
                    });
                }
            }
            tx.commit().map_err(|e| db.err(e))?;
            Ok(out)
        })?;
        Ok(out.unwrap_or_default())
    }

    /// Every delivery, oldest first.
    pub fn list(&self) -> Result<Vec<Delivery>> {
        let out = self.with_db(false, |db| {
            let tx = db.read()?;
            let table = match tx.open_table(DELIVERIES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(db.err(e)),
            };
            let mut out = Vec::new();
            for row in table.iter().map_err(|e| db.err(e))? {
                let (_, v) = row.map_err(|e| db.err(e))?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })?;
        Ok(out.unwrap_or_default())
    }

    /// The deliveries to attempt now, and when the next one that is not yet due will be.
    ///
    /// Deliveries of one hook go out in order per branch: only the oldest unfinished
    /// delivery of each (hook, branch) is considered, so a later commit never overtakes
    /// an earlier one of its branch, and a failed delivery holds back the later ones
    /// of its hook and branch (not those of other branches) until it is retried.
    pub fn due(&self, now: i64) -> Result<(Vec<Delivery>, Option<i64>)> {
        let all = self.list()?;
        let mut seen = BTreeSet::new();
        let mut due = Vec::new();
        let mut next: Option<i64> = None;
        for d in all {
            // A staged delivery may belong to a commit that never happens: it must not
            // hold back the hook's later deliveries.
            if matches!(d.state, State::Done | State::Staged | State::Skipped)
                || !seen.insert((d.hook.clone(), d.branch.clone()))
            {
                continue;
            }
            if d.state == State::Pending {
                if d.next_attempt_ms <= now {
                    due.push(d);
                } else {
                    next = Some(next.map_or(d.next_attempt_ms, |n| n.min(d.next_attempt_ms)));
                }
            }
        }
        Ok((due, next))
    }

    /// Stores the outcome of an attempt: done, or pending with a later retry, or failed.
    pub fn finish(
        &self,
        seq: u64,
        result: &AttemptResult,
        policy: &RetryPolicy,
    ) -> Result<Delivery> {
        let now = now_ms();
        let out = self.with_db(true, |db| {
            let tx = db.write()?;
            let d = {
                let mut deliveries = tx.open_table(DELIVERIES).map_err(|e| db.err(e))?;
                let mut d = match deliveries.get(seq).map_err(|e| db.err(e))? {
                    Some(v) => decode(v.value())?,
                    None => return Err(OutboxError::NoDelivery(seq).into()),
                };
                d.attempts += 1;
                d.updated_ms = now;
                d.last_output = Some(tail(&result.output));
                if result.ok {
                    d.state = State::Done;
                    d.last_error = None;
                } else {
                    d.last_error = result.error.as_deref().map(crate::redact::text);
                    if d.attempts >= policy.max_attempts {
                        d.state = State::Failed;
                    } else {
                        d.next_attempt_ms =
                            now.saturating_add(policy.delay(d.attempts).as_millis() as i64);
                    }
                }
                deliveries
                    .insert(seq, encode(&d).as_slice())
                    .map_err(|e| db.err(e))?;
                d
            };
            tx.commit().map_err(|e| db.err(e))?;
            Ok(d)
        })?;
        out.ok_or_else(|| OutboxError::NoDelivery(seq).into())
    }

    /// Turns staged deliveries into pending ones (their ref moved).
    pub fn confirm(&self, seqs: &[u64]) -> Result<()> {
        self.update_staged(seqs, Some(State::Pending))
    }

    /// Deletes staged deliveries whose commit never happened.
    pub fn forget(&self, seqs: &[u64]) -> Result<()> {
        self.update_staged(seqs, None)
    }

    fn update_staged(&self, seqs: &[u64], to: Option<State>) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        self.with_db(true, |db| {
            let tx = db.write()?;
            {
                let mut deliveries = tx.open_table(DELIVERIES).map_err(|e| db.err(e))?;
                let mut keys = tx.open_table(KEYS).map_err(|e| db.err(e))?;
                for &seq in seqs {
                    let d = match deliveries.get(seq).map_err(|e| db.err(e))? {
                        Some(v) => decode(v.value())?,
                        None => continue,
                    };
                    if d.state != State::Staged {
                        continue;
                    }
                    match to {
                        Some(state) => {
                            let mut d = d;
                            d.state = state;
                            d.next_attempt_ms = now;
                            d.updated_ms = now;
                            deliveries
                                .insert(seq, encode(&d).as_slice())
                                .map_err(|e| db.err(e))?;
                        }
                        None => {
                            deliveries.remove(seq).map_err(|e| db.err(e))?;
                            if let Some(u) = unique_key(d.event, &d.hook, &d.commit) {
                                keys.remove(u.as_str()).map_err(|e| db.err(e))?;
                            }
                        }
                    }
                }
            }
            tx.commit().map_err(|e| db.err(e))
        })?;
        Ok(())
    }

    /// Makes failed deliveries (or the one named by `which`: a number or a delivery-id
    /// prefix) pending again, due now, with a fresh attempt budget. Returns their numbers.
    pub fn retry(&self, which: Option<&str>) -> Result<Vec<u64>> {
        let now = now_ms();
        let all = self.list()?;
        let chosen: Vec<Delivery> = match which {
            None => all
                .into_iter()
                .filter(|d| matches!(d.state, State::Pending | State::Failed))
                .collect(),
            Some(w) => vec![find_open(all, w)?],
        };
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        self.with_db(true, |db| {
            let tx = db.write()?;
            {
                let mut deliveries = tx.open_table(DELIVERIES).map_err(|e| db.err(e))?;
                for mut d in chosen.iter().cloned() {
                    d.state = State::Pending;
                    d.attempts = 0;
                    d.next_attempt_ms = now;
                    d.updated_ms = now;
                    deliveries
                        .insert(d.seq, encode(&d).as_slice())
                        .map_err(|e| db.err(e))?;
                }
            }
            tx.commit().map_err(|e| db.err(e))
        })?;
        Ok(chosen.iter().map(|d| d.seq).collect())
    }
}

/// The delivery `which` names (a number, `#N`, or a delivery-id prefix of at least
/// four characters) among `all`, if it can still be attempted: not delivered, not
/// waiting for its commit to be confirmed.
fn find_open(all: Vec<Delivery>, which: &str) -> Result<Delivery> {
    let w = which.trim_start_matches('#');
    let mut found: Vec<Delivery> = all
        .into_iter()
        .filter(|d| w.parse::<u64>().ok() == Some(d.seq) || (w.len() >= 4 && d.id.starts_with(w)))
        .collect();
    match found.as_slice() {
        [] => Err(OutboxError::NoSuchDelivery(w.to_string()).into()),
        [d] if d.state == State::Done => Err(OutboxError::AlreadyDelivered {
            seq: d.seq,
            key: d.key.clone(),
        }
        .into()),
        [d] if d.state == State::Staged => Err(OutboxError::AwaitsCommit(d.seq).into()),
        [_] => Ok(found.remove(0)),
        _ => Err(OutboxError::Ambiguous(w.to_string()).into()),
    }
}

/// A failed delivery and how many later deliveries of its hook and branch wait
/// behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Blocked {
    /// The failed delivery.
    pub delivery: Delivery,
    /// Unfinished later deliveries of the same hook and branch.
    pub waiting: usize,
}

impl Outbox {
    /// Each failed delivery that holds back later ones (of its hook and branch), with
    /// their number, oldest first.
    pub fn blocked(&self) -> Result<Vec<Blocked>> {
        let mut out: Vec<Blocked> = Vec::new();
        // (hook, branch) -> its oldest unfinished delivery's index in `out` if it failed.
        let mut heads: Vec<(String, Option<String>, Option<usize>)> = Vec::new();
        for d in self.list()? {
            if matches!(d.state, State::Done | State::Staged | State::Skipped) {
                continue;
            }
            if let Some(h) = heads.iter().find(|h| h.0 == d.hook && h.1 == d.branch) {
                if let Some(i) = h.2 {
                    out[i].waiting += 1;
                }
                continue;
            }
            let failed = (d.state == State::Failed).then_some(out.len());
            heads.push((d.hook.clone(), d.branch.clone(), failed));
            if failed.is_some() {
                out.push(Blocked {
                    delivery: d,
                    waiting: 0,
                });
            }
        }
        Ok(out)
    }

    /// Gives up the delivery `which` names (see [`Outbox::retry`] for the forms): it
    /// is never attempted again and no longer holds back the later deliveries of its
    /// hook. For a delivery that cannot succeed as recorded (a command that fails, a
    /// URL that is gone). Returns its number.
    pub fn skip(&self, which: &str) -> Result<u64> {
        let d = find_open(self.list()?, which)?;
        if d.state == State::Skipped {
            return Ok(d.seq);
        }
        let now = now_ms();
        self.with_db(true, |db| {
            let tx = db.write()?;
            {
                let mut deliveries = tx.open_table(DELIVERIES).map_err(|e| db.err(e))?;
                let mut d = d.clone();
                d.state = State::Skipped;
                d.updated_ms = now;
                deliveries
                    .insert(d.seq, encode(&d).as_slice())
                    .map_err(|e| db.err(e))?;
            }
            tx.commit().map_err(|e| db.err(e))
        })?;
        Ok(d.seq)
    }
}

/// Why the delivery outbox refused.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Another process holds the outbox lock for too long.
    #[error("{} has been locked by another dsv process for {secs}s", .path.display())]
    Busy {
        /// The lock file.
        path: std::path::PathBuf,
        /// How long dsv waited.
        secs: u64,
    },
    /// A delivery number that is not in the outbox.
    #[error("no delivery #{0}")]
    NoDelivery(u64),
    /// A delivery named by number or id prefix that matches none.
    #[error("no delivery '{0}' (see `dsv hooks log`)")]
    NoSuchDelivery(String),
    /// A retry of a delivery that succeeded.
    #[error("delivery #{seq} was already delivered; a receiver would drop a repeat (key {key})")]
    AlreadyDelivered {
        /// The delivery number.
        seq: u64,
        /// Its idempotency key.
        key: String,
    },
    /// A retry of a delivery whose commit is not confirmed yet.
    #[error("delivery #{0} waits for its commit to be confirmed (a worker does that)")]
    AwaitsCommit(u64),
    /// An id prefix that matches several deliveries.
    #[error("'{0}' names several deliveries; give its number")]
    Ambiguous(String),
}

impl crate::error::ModuleError for OutboxError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            OutboxError::Busy { .. } => crate::error::ErrorKind::Environment,
            OutboxError::NoDelivery(_) | OutboxError::NoSuchDelivery(_) => {
                crate::error::ErrorKind::NotFound
            }
            _ => crate::error::ErrorKind::Refused,
        }
    }
}

crate::error::module_error!(OutboxError);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsStorage;

    fn item(hook: &str, commit: &str) -> NewDelivery {
        NewDelivery {
            hook: hook.into(),
            event: Event::PostCommit,
            commit: commit.into(),
            branch: Some("main".into()),
            previous: None,
            awaits_ref: None,
            action: Action::Run {
                command: "true".into(),
            },
            timeout: Duration::from_secs(1),
            payload: "{}".into(),
        }
    }

    #[test]
    fn records_once_orders_per_hook_and_backs_off() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path(), Arc::new(OsStorage));
        assert!(ob.list().unwrap().is_empty());
        let r = ob.record(&[item("a", "c1"), item("b", "c1")]).unwrap();
        assert!(r.iter().all(|r| r.new));
        let again = ob.record(&[item("a", "c1"), item("a", "c2")]).unwrap();
        assert!(!again[0].new && again[0].seq == r[0].seq && again[1].new);
        assert_eq!(ob.list().unwrap().len(), 3);
        let policy = RetryPolicy {
            base: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            max_attempts: 2,
        };
        let (due, _) = ob.due(now_ms()).unwrap();
        // a/c2 waits behind a/c1.
        assert_eq!(due.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![1, 2]);
        let fail = AttemptResult {
            ok: false,
            error: Some("HTTP 500".into()),
            output: String::new(),
        };
        let d = ob.finish(1, &fail, &policy).unwrap();
        assert_eq!(d.state, State::Pending);
        let (due, next) = ob.due(now_ms()).unwrap();
        assert_eq!(due.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![2]);
        assert!(next.is_some_and(|n| n > now_ms() + 50_000));
        assert_eq!(ob.finish(1, &fail, &policy).unwrap().state, State::Failed);
        let (due, next) = ob.due(now_ms()).unwrap();
        assert_eq!(due.len(), 1);
        assert!(next.is_none());
        assert_eq!(ob.retry(Some("1")).unwrap(), vec![1]);
        let (due, _) = ob.due(now_ms()).unwrap();
        assert_eq!(due.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![1, 2]);
        let ok = AttemptResult {
            ok: true,
            error: None,
            output: "fine".into(),
        };
        assert_eq!(ob.finish(1, &ok, &policy).unwrap().state, State::Done);
        let (due, _) = ob.due(now_ms()).unwrap();
        assert_eq!(due.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert!(ob.retry(Some("1")).is_err());
    }

    #[test]
    fn staged_deliveries_wait_for_confirmation_and_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path(), Arc::new(OsStorage));
        let mut staged = item("a", "c1");
        staged.awaits_ref = Some("refs/heads/main".into());
        ob.record(&[staged.clone()]).unwrap();
        ob.record(&[item("a", "c2")]).unwrap();
        let (due, next) = ob.due(now_ms()).unwrap();
        assert_eq!(due.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![2]);
        assert!(next.is_none());
        assert!(ob.retry(Some("1")).is_err());
        ob.confirm(&[1]).unwrap();
        let (due, _) = ob.due(now_ms()).unwrap();
        assert_eq!(due.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![1]);
        // Forgetting only touches staged deliveries; a forgotten key can be recorded again.
        ob.forget(&[1]).unwrap();
        assert_eq!(ob.list().unwrap().len(), 2);
        let mut s3 = item("b", "c3");
        s3.awaits_ref = Some("HEAD".into());
        let r = ob.record(&[s3.clone()]).unwrap();
        ob.forget(&[r[0].seq]).unwrap();
        assert_eq!(ob.list().unwrap().len(), 2);
        assert!(ob.record(&[s3]).unwrap()[0].new);
    }

    #[test]
    fn advance_records_and_moves_the_cursor_together() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path(), Arc::new(OsStorage));
        assert_eq!(ob.cursor("origin", "main").unwrap(), None);
        // Starting a watch: a cursor and no delivery.
        ob.advance(&[], "origin", "main", "c0").unwrap();
        assert_eq!(ob.cursor("origin", "main").unwrap().as_deref(), Some("c0"));
        assert!(ob.list().unwrap().is_empty());
        let r = ob
            .advance(&[item("w", "c1"), item("w", "c2")], "origin", "main", "c2")
            .unwrap();
        assert!(r.iter().all(|r| r.new));
        assert_eq!(ob.cursor("origin", "main").unwrap().as_deref(), Some("c2"));
        // Passing c2 again (a force-push brought it back) records nothing new.
        let r = ob
            .advance(
                &[item("w", "c2"), item("w", "c3")],
                "origin",
                "release/1",
                "c3",
            )
            .unwrap();
        assert!(!r[0].new && r[1].new);
        assert_eq!(ob.list().unwrap().len(), 3);
        assert_eq!(
            ob.cursors().unwrap(),
            vec![
                ("origin".to_string(), "main".to_string(), "c2".to_string()),
                (
                    "origin".to_string(),
                    "release/1".to_string(),
                    "c3".to_string()
                ),
            ]
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_secs(2));
        assert_eq!(p.delay(3), Duration::from_secs(8));
        assert_eq!(p.delay(40), Duration::from_secs(3600));
    }
}
