//! Running one hook: a command (payload on stdin, `DSV_*` variables, killed with
//! its whole process group at the timeout) or a webhook POST (signed when a
//! secret is named). And the delivery worker that drains the outbox.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::Pid;
use sha2::Sha256;
use wait_timeout::ChildExt;

use crate::dsv_toml::FILE_NAME;
use crate::error::{Error, Result};
use crate::hooks::config::{Action, BodyFormat, Event};
use crate::hooks::outbox::{AttemptResult, Delivery, Outbox, RetryPolicy, State, now_ms};
use crate::id::ObjectId;
use crate::lock::RepoLock;
use crate::refs::{HEADS, Head, Refs};
use crate::settings::{Settings, Variables};
use crate::storage::Storage;

/// Output kept from one run (the end of it).
const OUTPUT_LIMIT: usize = 64 * 1024;
/// Lock file held by the one running delivery worker.
pub const WORKER_LOCK: &str = "hooks-worker.lock";
/// Where a background worker's own errors go.
pub const WORKER_LOG: &str = "hooks-worker.log";

/// Everything one attempt needs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The event.
    pub event: Event,
    /// Hook id.
    pub hook: &'a str,
    /// Delivery id.
    pub delivery: &'a str,
    /// Idempotency key.
    pub key: &'a str,
    /// Commit id (empty for `pre-commit`).
    pub commit: &'a str,
    /// Branch (empty when detached).
    pub branch: &'a str,
    /// Worktree root (commands run there; `DSV_REPO`).
    pub root: &'a Path,
    /// The payload JSON.
    pub payload: &'a str,
    /// What to do.
    pub action: &'a Action,
    /// Time limit.
    pub timeout: Duration,
    /// Sent by `dsv hooks test` (`DSV_HOOK_TEST=1`, `X-Dsv-Test: 1`).
    pub test: bool,
    /// Where `${NAME}` and `secret_env` are looked up.
    pub vars: &'a Variables,
}

/// What one attempt did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    /// Success: exit status 0, or a 2xx answer.
    pub ok: bool,
    /// One line: "exit status 0", "HTTP 204", "timed out after 2s", ...
    pub detail: String,
    /// What the command printed (stdout and stderr interleaved) or the response body.
    pub output: String,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

impl Attempt {
    fn failed(detail: String, start: Instant) -> Attempt {
        Attempt {
            ok: false,
            detail,
            output: String::new(),
            millis: start.elapsed().as_millis() as u64,
        }
    }

    /// As stored in the outbox.
    pub fn result(&self) -> AttemptResult {
        AttemptResult {
            ok: self.ok,
            error: (!self.ok).then(|| self.detail.clone()),
            output: self.output.clone(),
        }
    }
}

/// Runs one hook once.
pub fn attempt(req: &Request) -> Attempt {
    match req.action {
        Action::Run { command } => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(command);
            run_command(cmd, req)
        }
        Action::Exec { path } => run_command(Command::new(path), req),
        Action::Webhook {
            url,
            secret_env,
            headers,
            format,
        } => post(url, secret_env.as_deref(), headers, *format, req),
    }
}

fn keep_tail(mut buf: Vec<u8>) -> String {
    if buf.len() > OUTPUT_LIMIT {
        buf.drain(..buf.len() - OUTPUT_LIMIT);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended without a status".to_string(),
    }
}

fn run_command(mut cmd: Command, req: &Request) -> Attempt {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let (mut reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return Attempt::failed(format!("cannot create a pipe: {e}"), start),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return Attempt::failed(format!("cannot create a pipe: {e}"), start),
    };
    cmd.current_dir(req.root)
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(writer2)
        // A hook run by a fault-injected test command must not inherit the fault.
        .env_remove("DSV_FAULT")
        .env("DSV_EVENT", req.event.name())
        .env("DSV_COMMIT", req.commit)
        .env("DSV_BRANCH", req.branch)
        .env("DSV_REPO", req.root)
        .env("DSV_HOOK_ID", req.hook)
        .env("DSV_DELIVERY_ID", req.delivery)
        .env("DSV_IDEMPOTENCY_KEY", req.key)
        // Its own process group, so a timeout kills whatever the hook started too.
        .process_group(0);
    if req.test {
        cmd.env("DSV_HOOK_TEST", "1");
    }
    let spawned = cmd.spawn();
    // Our copies of the pipe's write end must go, or the reader never sees the end.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Attempt::failed(format!("cannot start: {e}"), start),
    };
    let pid = Pid::from_raw(child.id() as i32);
    if let Some(mut stdin) = child.stdin.take() {
        let payload = req.payload.as_bytes().to_vec();
        // A hook that does not read its stdin must not block us: write from a thread
        // and ignore a broken pipe.
        std::thread::spawn(move || {
            // The CLI restores SIGPIPE's default action (die) for `dsv ... | head`; a
            // hook that exits without reading must cost this write an EPIPE, not the
            // process. A blocked SIGPIPE raised by this thread's write stays pending on
            // this thread and is dropped when it ends.
            let mut pipe = SigSet::empty();
            pipe.add(Signal::SIGPIPE);
            let _ = pipe.thread_block();
            let _ = stdin.write_all(&payload);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * OUTPUT_LIMIT {
                        buf.drain(..buf.len() - OUTPUT_LIMIT);
                    }
                }
            }
        }
        let _ = tx.send(buf);
    });
    let (status, timed_out) = match child.wait_timeout(req.timeout.saturating_sub(start.elapsed()))
    {
        Ok(Some(s)) => (Some(s), false),
        Ok(None) => {
            // Not reaped yet, so the group id is still the hook's: the group we
            // created goes, with whatever the hook started in it.
            let _ = killpg(pid, Signal::SIGKILL);
            (child.wait().ok(), true)
        }
        Err(e) => return Attempt::failed(format!("waiting for it failed: {e}"), start),
    };
    // A grandchild that left the group may keep the pipe open: do not wait for it forever.
    let output = rx
        .recv_timeout(Duration::from_secs(2))
        .map(keep_tail)
        .unwrap_or_default();
    let millis = start.elapsed().as_millis() as u64;
    if timed_out {
        return Attempt {
            ok: false,
            detail: format!("timed out after {} (killed)", human_duration(req.timeout)),
            output,
            millis,
        };
    }
    match status {
        Some(s) => Attempt {
            ok: s.success(),
            detail: describe_exit(s),
            output,
            millis,
        },
        None => Attempt {
            ok: false,
            detail: "ended without a status".into(),
            output,
            millis,
        },
    }
}

/// `2s`, `1.5s`, `250ms`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body), as sent in `X-Dsv-Signature-256`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", const_hex::encode(mac.finalize().into_bytes()))
}

/// Replaces `${NAME}` with the variable NAME of `vars` (the environment, in the CLI;
/// in header values and urls); an unset one is an error naming the variable (never
/// its value).
pub fn expand_env(value: &str, vars: &Variables) -> std::result::Result<String, String> {
    expand_with(value, &|k| vars.get(k), &|v| v.to_string())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `${NAME}` expanded in a webhook URL. In the userinfo (`https://user:${PASS}@host`,
/// sent as HTTP basic auth) the values are percent-encoded, so a password holding
/// `@`, `:` or `/` stays one.
pub fn expand_url(url: &str, vars: &Variables) -> std::result::Result<String, String> {
    expand_url_with(url, &|k| vars.get(k))
}

fn expand_url_with(
    url: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let plain = |v: &str| expand_with(v, lookup, &|v| v.to_string());
    if let Some((scheme, rest)) = url.split_once("://") {
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some((info, host)) = rest[..auth_end].rsplit_once('@') {
            let enc = |v: &str| expand_with(v, lookup, &percent_encode);
            let info = match info.split_once(':') {
                Some((u, p)) => format!("{}:{}", enc(u)?, enc(p)?),
                None => enc(info)?,
            };
            return Ok(format!(
                "{scheme}://{info}@{}{}",
                plain(host)?,
                plain(&rest[auth_end..])?
            ));
        }
    }
    plain(url)
}

fn expand_with(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    map: &dyn Fn(&str) -> String,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err("unclosed ${ in a header value".into());
        };
        let name = &after[..end];
        match lookup(name) {
            Some(v) => out.push_str(&map(&v)),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The body a webhook sends.
pub fn body(format: BodyFormat, req: &Request) -> String {
    match format {
        BodyFormat::Dsv => req.payload.to_string(),
        BodyFormat::GithubDispatch => {
            let payload: serde_json::Value =
                serde_json::from_str(req.payload).unwrap_or(serde_json::Value::Null);
            // GitHub allows at most 10 top-level keys in client_payload: the whole
            // document goes under one of them.
            serde_json::json!({
                "event_type": format!("dsv-{}", req.event.name()),
                "client_payload": {
                    "event": req.event.name(),
                    "commit": req.commit,
                    "branch": req.branch,
                    "delivery": req.delivery,
                    "idempotency_key": req.key,
                    "dsv": payload,
                }
            })
            .to_string()
        }
    }
}

fn post(
    url: &str,
    secret_env: Option<&str>,
    headers: &std::collections::BTreeMap<String, String>,
    format: BodyFormat,
    req: &Request,
) -> Attempt {
    let start = Instant::now();
    // reqwest is built without a default crypto provider; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::blocking::Client::builder()
        .timeout(req.timeout)
        .connect_timeout(req.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("dsv/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Attempt::failed(format!("cannot build an HTTP client: {e}"), start),
    };
    // `${NAME}` in the url (a trigger token in a query string, say) comes from the
    // environment; messages below show the url as written, never the expanded one.
    let target = match expand_url(url, req.vars) {
        Ok(u) => u,
        Err(e) => return Attempt::failed(format!("url: {e}"), start),
    };
    let body = body(format, req);
    let mut rb = client
        .post(&target)
        .header("Content-Type", "application/json")
        .header("X-Dsv-Event", req.event.name())
        .header("X-Dsv-Delivery", req.delivery)
        .header("X-Dsv-Hook", req.hook)
        .header("Idempotency-Key", req.key);
    if req.test {
        rb = rb.header("X-Dsv-Test", "1");
    }
    for (name, value) in headers {
        match expand_env(value, req.vars) {
            Ok(v) => rb = rb.header(name.as_str(), v),
            Err(e) => return Attempt::failed(format!("header {name}: {e}"), start),
        }
    }
    if let Some(var) = secret_env {
        match req.vars.get(var) {
            Some(secret) if !secret.is_empty() => {
                rb = rb.header(
                    "X-Dsv-Signature-256",
                    signature(secret.as_bytes(), body.as_bytes()),
                );
            }
            // Sending unsigned would make a careful receiver reject it anyway; say why here.
            _ => {
                return Attempt::failed(
                    format!("secret_env {var} is not set (or empty): not sending unsigned"),
                    start,
                );
            }
        }
    }
    match rb.body(body).send() {
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().unwrap_or_default();
            let ok = status.is_success();
            let detail = if ok {
                format!("HTTP {}", status.as_u16())
            } else {
                let first: String = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect();
                format!(
                    "HTTP {}{}",
                    status,
                    if first.is_empty() {
                        String::new()
                    } else {
                        format!(": {first}")
                    }
                )
            };
            Attempt {
                ok,
                detail,
                output: keep_tail(text.into_bytes()),
                millis: start.elapsed().as_millis() as u64,
            }
        }
        Err(e) => {
            let what = if e.is_timeout() {
                format!("timed out after {}", human_duration(req.timeout))
            } else {
                let e = e.without_url();
                let mut msg = format!("{e} ({})", crate::redact::url(url));
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                // The causes come from hyper and rustls; a URL in them is redacted too.
                format!("request failed: {}", crate::redact::text(&msg))
            };
            Attempt::failed(what, start)
        }
    }
}

/// How `post-*` deliveries are started after they are recorded.
#[derive(Debug, Clone)]
pub enum Dispatch {
    /// Start a detached `EXE -C ROOT hooks deliver` and return at once.
    Background {
        /// The dsv executable.
        exe: PathBuf,
    },
    /// Deliver in this process and return when nothing is left to attempt.
    Foreground,
    /// Leave them in the outbox (the caller starts a worker itself).
    Manual,
}

impl Dispatch {
    /// `Foreground` when the settings say so (`DSV_HOOKS_FOREGROUND`), else
    /// `Background` with `exe`.
    pub fn from_settings(settings: &Settings, exe: PathBuf) -> Dispatch {
        if settings.hooks_foreground {
            Dispatch::Foreground
        } else {
            Dispatch::Background { exe }
        }
    }
}

/// Starts a detached delivery worker (`EXE -C ROOT hooks deliver`) and returns its pid.
pub fn spawn_worker(exe: &Path, root: &Path, dsv_dir: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let log_path = dsv_dir.join(WORKER_LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io("opening", &log_path, e))?;
    let child = Command::new(exe)
        .arg("-C")
        .arg(root)
        .args(["-q", "hooks", "deliver"])
        // Fault injection is for the command under test, not for its worker.
        .env_remove("DSV_FAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Not in the terminal's process group: Ctrl-C on the next command must not kill it.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io("starting the hook delivery worker", exe, e))?;
    Ok(child.id())
}

/// Whether the ref a staged delivery waits for is at its commit, or was (a reflog line
/// moved it away from the commit): then the event happened.
fn ref_reached(refs: &Refs, d: &Delivery) -> Result<bool> {
    let Some(name) = &d.awaits_ref else {
        return Ok(true);
    };
    let Some(commit) = ObjectId::from_hex(&d.commit) else {
        return Ok(false);
    };
    let current = if name == "HEAD" {
        match refs.head()? {
            Head::Detached(id) => Some(id),
            Head::Branch(b) => refs.read(&format!("{HEADS}{b}"))?,
        }
    } else {
        refs.read(name)?
    };
    if current == Some(commit) {
        return Ok(true);
    }
    Ok(refs.reflog(name)?.iter().any(|e| e.old == commit))
}

/// Settles staged deliveries: those whose ref reached their commit become pending
/// (the command that recorded them died before confirming); those whose ref did not
/// are forgotten, but only while no command holds the repository lock, because until
/// then their commit may still be on its way.
pub fn reconcile(outbox: &Outbox, dsv_dir: &Path, storage: Arc<dyn Storage>) -> Result<()> {
    let staged: Vec<Delivery> = outbox
        .list()?
        .into_iter()
        .filter(|d| d.state == State::Staged)
        .collect();
    if staged.is_empty() {
        return Ok(());
    }
    let refs = Refs::new(dsv_dir, storage);
    let mut reached = Vec::new();
    let mut unproven = Vec::new();
    for d in &staged {
        if ref_reached(&refs, d)? {
            reached.push(d.seq);
        } else {
            unproven.push(d);
        }
    }
    outbox.confirm(&reached)?;
    if unproven.is_empty() {
        return Ok(());
    }
    if let Some(_lock) = RepoLock::try_write(dsv_dir)? {
        let (mut late, mut never) = (Vec::new(), Vec::new());
        for d in unproven {
            if ref_reached(&refs, d)? {
                late.push(d.seq);
            } else {
                never.push(d.seq);
            }
        }
        outbox.confirm(&late)?;
        outbox.forget(&never)?;
    }
    Ok(())
}

/// What one [`deliver_due`] call did.
#[derive(Debug, Default)]
pub struct DueReport {
    /// Attempts made.
    pub attempts: usize,
    /// False when another worker held the outbox (nothing was attempted).
    pub ran: bool,
    /// When the next retry is due (unix ms); `None`: nothing is waiting for one.
    pub next: Option<i64>,
}

/// The action a recorded delivery runs. When its secrets were masked on recording
/// (`Delivery::masked`: a webhook URL with `user:password@`, a `token=` parameter, an
/// `Authorization` header in clear), they come from the live declaration of the same
/// hook, never from the outbox: `live` (what a running `dsv watch` was given) or the
/// hook of that id in the worktree's `dsv.toml`, used only if its masked form is still
/// the recorded one (the same URL, the secret perhaps rotated).
pub fn live_action(
    d: &Delivery,
    root: &Path,
    dsv_dir: &Path,
    live: &[(String, Action)],
) -> std::result::Result<Action, String> {
    if !d.masked {
        return Ok(d.action.clone());
    }
    let same = |a: &Action| a.redacted() == d.action;
    if let Some((_, a)) = live.iter().find(|(id, a)| *id == d.hook && same(a)) {
        return Ok(a.clone());
    }
    if let Some(remote) = d.hook.strip_prefix("watch:") {
        return Err(format!(
            "the credentials in this hook's URL are not stored; only a `dsv watch {remote}` given the same --webhook URL (or --exec command) can deliver it (or write the secret as ${{NAME}} and set NAME in the environment)"
        ));
    }
    let set = crate::hooks::config::HookSet::load(root, dsv_dir)
        .map_err(|e| format!("the hook's credentials are read from {FILE_NAME}: {e}"))?;
    match set
        .hooks
        .iter()
        .find(|h| h.id == d.hook && h.event == d.event)
    {
        Some(h) if same(&h.action) => Ok(h.action.clone()),
        Some(_) => Err(format!(
            "hook '{}' changed in {FILE_NAME} since this delivery was recorded; its credentials are not stored in the outbox, so it cannot be sent to the old URL",
            d.hook
        )),
        None => Err(format!(
            "hook '{}' is no longer declared in {FILE_NAME}; the credentials of its URL are not stored in the outbox, so it cannot be delivered",
            d.hook
        )),
    }
}

/// One attempt of a recorded delivery (see [`live_action`]).
fn attempt_recorded(
    d: &Delivery,
    root: &Path,
    dsv_dir: &Path,
    live: &[(String, Action)],
    vars: &Variables,
) -> Attempt {
    let start = Instant::now();
    match live_action(d, root, dsv_dir, live) {
        Ok(action) => {
            let branch = d.branch.clone().unwrap_or_default();
            attempt(&request(d, &branch, root, &action, vars))
        }
        Err(msg) => Attempt::failed(msg, start),
    }
}

fn request<'a>(
    d: &'a Delivery,
    branch: &'a str,
    root: &'a Path,
    action: &'a Action,
    vars: &'a Variables,
) -> Request<'a> {
    Request {
        event: d.event,
        hook: &d.hook,
        delivery: &d.id,
        key: &d.key,
        commit: &d.commit,
        branch,
        root,
        payload: &d.payload,
        action,
        timeout: Duration::from_millis(d.timeout_ms),
        test: false,
        vars,
    }
}

/// Attempts what is due now, in order per hook, under the worker lock, and returns
/// as soon as nothing more is due (without waiting for retries), saying when the
/// next one will be. For a process that delivers between other work (`dsv watch`).
/// `stop()` is checked before each attempt. `live`: hook id and action of the
/// deliveries this process declared itself (see [`live_action`]).
// The inputs are independent and there is one caller: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn deliver_due(
    root: &Path,
    dsv_dir: &Path,
    storage: Arc<dyn Storage>,
    policy: &RetryPolicy,
    vars: &Variables,
    live: &[(String, Action)],
    on_attempt: &mut dyn FnMut(&Delivery, &Attempt),
    stop: &dyn Fn() -> bool,
) -> Result<DueReport> {
    let outbox = Outbox::new(dsv_dir, storage.clone());
    let lock_path = dsv_dir.join(WORKER_LOCK);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::io("opening", &lock_path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(DueReport::default()),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("locking", &lock_path, e)),
    }
    let mut report = DueReport {
        ran: true,
        ..DueReport::default()
    };
    reconcile(&outbox, dsv_dir, storage)?;
    loop {
        let (due, next) = outbox.due(now_ms())?;
        if due.is_empty() {
            report.next = next;
            return Ok(report);
        }
        for d in due {
            if stop() {
                report.next = Some(now_ms());
                return Ok(report);
            }
            let a = attempt_recorded(&d, root, dsv_dir, live, vars);
            let after = outbox.finish(d.seq, &a.result(), policy)?;
            report.attempts += 1;
            on_attempt(&after, &a);
        }
    }
}

/// What a worker run did.
#[derive(Debug, Default)]
pub struct WorkerReport {
    /// Attempts made, with the delivery as it stood after each.
    pub attempts: usize,
    /// False when another worker was already running (it will deliver).
    pub ran: bool,
}

/// Drains the outbox: attempts every due delivery (oldest first, in order per hook),
/// sleeps until the next retry is due, and returns when nothing is left to attempt
/// (everything done or failed). Only one worker runs per repository; a second one
/// returns at once with `ran: false`. `on_attempt` sees each attempt as it ends.
pub fn run_worker(
    root: &Path,
    dsv_dir: &Path,
    storage: Arc<dyn Storage>,
    policy: &RetryPolicy,
    vars: &Variables,
    on_attempt: &mut dyn FnMut(&Delivery, &Attempt),
) -> Result<WorkerReport> {
    let outbox = Outbox::new(dsv_dir, storage.clone());
    let lock_path = dsv_dir.join(WORKER_LOCK);
    let mut report = WorkerReport::default();
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io("opening", &lock_path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(report),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io("locking", &lock_path, e));
            }
        }
        report.ran = true;
        reconcile(&outbox, dsv_dir, storage.clone())?;
        loop {
            let (due, next) = outbox.due(now_ms())?;
            if due.is_empty() {
                match next {
                    Some(at) => {
                        // Look again at least every second: `dsv hooks retry` may have
                        // made something due sooner than the backoff said.
                        let wait = (at - now_ms()).clamp(1, 1000) as u64;
                        std::thread::sleep(Duration::from_millis(wait));
                        continue;
                    }
                    None => break,
                }
            }
            for d in due {
                let a = attempt_recorded(&d, root, dsv_dir, &[], vars);
                let after = outbox.finish(d.seq, &a.result(), policy)?;
                report.attempts += 1;
                on_attempt(&after, &a);
            }
        }
        drop(file);
        // A delivery recorded while we were finishing found the lock taken and left it
        // to us: look once more after letting go.
        let (due, next) = outbox.due(now_ms())?;
        if due.is_empty() && next.is_none() {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_VARS: Variables = Variables::NONE;

    fn req<'a>(action: &'a Action, root: &'a Path, timeout: Duration) -> Request<'a> {
        Request {
            event: Event::PostCommit,
            hook: "h",
            delivery: "d",
            key: "h:c",
            commit: "c",
            branch: "main",
            root,
            payload: "{\"x\":1}",
            action,
            timeout,
            test: false,
            vars: &NO_VARS,
        }
    }

    #[test]
    fn command_gets_payload_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let action = Action::Run {
            command: "cat; echo \" $DSV_EVENT $DSV_BRANCH $DSV_HOOK_ID\"; echo err >&2; exit 3"
                .into(),
        };
        let a = attempt(&req(&action, dir.path(), Duration::from_secs(10)));
        assert!(!a.ok);
        assert_eq!(a.detail, "exit status 3");
        assert!(
            a.output.contains("{\"x\":1} post-commit main h"),
            "{}",
            a.output
        );
        assert!(a.output.contains("err"), "{}", a.output);
    }

    #[test]
    fn timeout_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let action = Action::Run {
            command: format!("(sleep 2; touch {}) & sleep 30", marker.display()),
        };
        let start = Instant::now();
        let a = attempt(&req(&action, dir.path(), Duration::from_millis(300)));
        assert!(!a.ok);
        assert!(a.detail.contains("timed out after 300ms"), "{}", a.detail);
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "the hook's background child outlived the timeout"
        );
    }

    #[test]
    fn signature_matches_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn github_dispatch_body_fits_githubs_limits() {
        let dir = tempfile::tempdir().unwrap();
        let action = Action::Run {
            command: "true".into(),
        };
        let r = req(&action, dir.path(), Duration::from_secs(1));
        let v: serde_json::Value =
            serde_json::from_str(&body(BodyFormat::GithubDispatch, &r)).unwrap();
        assert_eq!(v["event_type"], "dsv-post-commit");
        let cp = v["client_payload"].as_object().unwrap();
        assert!(
            cp.len() <= 10,
            "GitHub allows 10 top-level client_payload keys"
        );
        assert_eq!(cp["commit"], "c");
        assert_eq!(cp["idempotency_key"], "h:c");
        assert_eq!(cp["dsv"]["x"], 1);
        assert_eq!(body(BodyFormat::Dsv, &r), r.payload);
    }

    #[test]
    fn expands_env_in_headers() {
        assert_eq!(expand_env("plain", &NO_VARS).unwrap(), "plain");
        let e = expand_env("Bearer ${DSV_TEST_SURELY_UNSET_VAR}", &NO_VARS).unwrap_err();
        assert!(e.contains("DSV_TEST_SURELY_UNSET_VAR"));
        assert!(expand_env("x ${A", &NO_VARS).is_err());
        let vars = Variables::new(|n| (n == "TOKEN").then(|| "t0k".to_string()));
        assert_eq!(expand_env("Bearer ${TOKEN}", &vars).unwrap(), "Bearer t0k");
        let lookup = |n: &str| (n == "PASS").then(|| "p@ss:w/rd".to_string());
        assert_eq!(
            expand_url_with("https://u:${PASS}@h/x?q=${PASS}", &lookup).unwrap(),
            "https://u:p%40ss%3Aw%2Frd@h/x?q=p@ss:w/rd"
        );
        assert_eq!(
            expand_url_with("https://u:lit%40@h/${PASS}", &lookup).unwrap(),
            "https://u:lit%40@h/p@ss:w/rd"
        );
    }
}
