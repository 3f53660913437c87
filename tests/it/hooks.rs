//! Hooks end to end: a real HTTP receiver on loopback, crash during delivery,
//! pre-commit rejection and timeout, bad dsv.toml, post-checkout and filters.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{read_request, signature};
use common::{TestRepo, hermetic};

const SECRET: &str = "test-secret-not-real";

/// One request the receiver saw, and how it answered.
#[derive(Debug, Clone)]
struct Seen {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    /// 0 when it never answered (the test killed the sender).
    status: u16,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// What the receiver does with request number `n` (0-based).
#[derive(Clone)]
enum Behaviour {
    /// Answer 503 while the flag is set, then 200.
    DownWhile(Arc<std::sync::atomic::AtomicBool>),
    /// Answer 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Never answer the first request (tell the test, wait for the sender to go away).
    StallFirst,
}

struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stalled: mpsc::Receiver<()>,
}

impl Receiver {
    fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let url = format!("http://{}/dsv", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, stalled) = mpsc::channel();
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let Some((headers, body)) = read_request(&mut conn) else {
                    continue;
                };
                let stall = matches!(behaviour, Behaviour::StallFirst) && n == 0;
                let status = match &behaviour {
                    Behaviour::DownWhile(flag)
                        if flag.load(std::sync::atomic::Ordering::SeqCst) =>
                    {
                        503
                    }
                    Behaviour::FailFirst(k) if n < *k => 500,
                    _ if stall => 0,
                    _ => 200,
                };
                log.lock().unwrap().push(Seen {
                    headers,
                    body,
                    status,
                });
                if stall {
                    let _ = tx.send(());
                    // Hold the request open until the sender dies and the socket closes.
                    let mut sink = [0u8; 64];
                    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
                    continue;
                }
                let reason = if status == 200 { "OK" } else { "Unavailable" };
                let text = if status == 200 {
                    "accepted"
                } else {
                    "try later"
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Receiver { url, seen, stalled }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests the receiver accepted, dropping repeats of an idempotency key it
    /// already accepted (what a real receiver does), in arrival order.
    fn accepted(&self) -> Vec<Seen> {
        let mut keys = HashSet::new();
        self.seen()
            .into_iter()
            .filter(|s| s.status == 200 && keys.insert(s.header("idempotency-key").to_string()))
            .collect()
    }
}

fn head(repo: &TestRepo) -> String {
    repo.read_string(".dsv/refs/heads/main").trim().to_string()
}

/// A repository with one YOLO label file and one frame, not committed yet.
fn dataset(repo: &TestRepo) {
    repo.write("labels/f0.txt", "0 0.5 0.5 0.2 0.2\n");
    repo.write("images/f0.jpg", "not really a jpeg");
}

fn webhook_toml(url: &str, extra: &str) -> String {
    format!(
        "[[hooks]]\nid = \"train\"\nevent = \"post-commit\"\nurl = \"{url}\"\nsecret_env = \"DSV_TEST_SECRET\"\ntimeout = 5\n{extra}"
    )
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn webhook_fails_then_delivers_each_commit_once_in_order_signed() {
    let rx = Receiver::start(Behaviour::FailFirst(3));
    let repo = TestRepo::init();
    dataset(&repo);
    repo.write("dsv.toml", webhook_toml(&rx.url, "branches = [\"main\"]\n"));
    let mut commits = Vec::new();
    for i in 0..3 {
        repo.write("labels/f0.txt", format!("{i} 0.5 0.5 0.2 0.2\n"));
        repo.ok(["add", "-A"]);
        // The background worker (the default) delivers; the command must not wait for it.
        let r = repo
            .cmd()
            .args(["commit", "-m", &format!("labels round {i}")])
            .env("DSV_HOOKS_BACKOFF_MS", "50")
            .env("DSV_TEST_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        commits.push(head(&repo));
    }
    wait_until("3 accepted deliveries", Duration::from_secs(30), || {
        rx.accepted().len() == 3
    });
    wait_until("an empty outbox", Duration::from_secs(10), || {
        repo.ok(["hooks", "status"])
            .stdout
            .contains("nothing pending (3 deliveries, all done)")
    });
    let seen = rx.seen();
    assert_eq!(
        seen.iter().filter(|s| s.status == 500).count(),
        3,
        "the first 3 requests are refused"
    );
    let accepted = rx.accepted();
    assert_eq!(
        seen.iter().filter(|s| s.status == 200).count(),
        3,
        "no delivery is accepted twice: {seen:#?}"
    );
    for (s, c) in accepted.iter().zip(&commits) {
        assert_eq!(s.header("idempotency-key"), format!("train:{c}"));
        assert_eq!(s.header("x-dsv-event"), "post-commit");
        assert_eq!(s.header("x-dsv-signature-256"), signature(SECRET, &s.body));
        assert_eq!(s.header("content-type"), "application/json");
        assert_eq!(s.header("x-dsv-delivery").len(), 32);
        let j = s.json();
        assert_eq!(j["schema"], "dsv.hook/1");
        assert_eq!(j["commit"], c.as_str());
        assert_eq!(j["branch"], "main");
        assert_eq!(j["summary"]["labels_changed"], true);
    }
    // Every request of one delivery (the refused ones too) is signed and keeps its ids.
    for s in &seen {
        assert_eq!(s.header("x-dsv-signature-256"), signature(SECRET, &s.body));
    }
    let first = &accepted[0];
    let retries: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.header("idempotency-key") == first.header("idempotency-key"))
        .collect();
    assert!(retries.len() >= 2, "the first commit was retried");
    assert!(
        retries
            .iter()
            .all(|s| s.header("x-dsv-delivery") == first.header("x-dsv-delivery"))
    );
    // The second commit's class change is in the summary: class 0 -> 1.
    let j = accepted[1].json();
    assert_eq!(j["parents"][0], commits[0].as_str());
    assert_eq!(j["summary"]["objects"]["reclassified"], 1);
    let log = repo.ok(["hooks", "log"]).stdout;
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.lines().all(|l| l.contains(" done ")), "{log}");
}

#[test]
fn killed_during_delivery_then_restarted_delivers_once() {
    let rx = Receiver::start(Behaviour::StallFirst);
    let repo = TestRepo::init();
    dataset(&repo);
    repo.write("dsv.toml", webhook_toml(&rx.url, ""));
    repo.ok(["add", "-A"]);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("dsv"));
    hermetic(&mut cmd, repo.home());
    let mut child = cmd
        .current_dir(repo.root())
        .args(["commit", "-m", "first"])
        .env("DSV_HOOKS_FOREGROUND", "1")
        .env("DSV_TEST_SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    rx.stalled
        .recv_timeout(Duration::from_secs(30))
        .expect("the delivery started");
    // dsv is in the middle of the request: kill it as a crash would.
    child.kill().unwrap();
    child.wait().unwrap();
    let commit = head(&repo);
    let status = repo.ok(["hooks", "status"]).stdout;
    assert!(
        status.contains("pending") && status.contains("train"),
        "{status}"
    );
    // The next worker (here `hooks retry`, delivering in the foreground) completes it.
    let r = repo
        .cmd()
        .args(["hooks", "retry"])
        .env("DSV_HOOKS_FOREGROUND", "1")
        .env("DSV_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let seen = rx.seen();
    assert_eq!(
        seen.len(),
        2,
        "one cut-short request and one retry: {seen:#?}"
    );
    assert_eq!(seen[0].header("idempotency-key"), format!("train:{commit}"));
    assert_eq!(
        seen[0].header("idempotency-key"),
        seen[1].header("idempotency-key")
    );
    assert_eq!(
        seen[0].header("x-dsv-delivery"),
        seen[1].header("x-dsv-delivery")
    );
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(rx.accepted().len(), 1);
    assert!(
        repo.ok(["hooks", "status"])
            .stdout
            .contains("nothing pending (1 delivery, all done)")
    );
    // Nothing is doubled: a further worker has nothing to do.
    repo.cmd()
        .args(["hooks", "deliver"])
        .env("DSV_TEST_SECRET", SECRET)
        .assert()
        .success();
    assert_eq!(rx.seen().len(), 2);
}

/// The repository state a rejected commit must not change: every file of `.dsv`
/// byte for byte (refs, HEAD, reflogs, packs, config), except the lock and hook
/// bookkeeping; the two redb databases by content (redb rewrites its header on every
/// read-write open, whatever the command does): index entries, objects, packs, commits.
fn snapshot(repo: &TestRepo) -> Vec<String> {
    let dsv = repo.path(".dsv");
    let mut out = Vec::new();
    let mut stack = vec![dsv.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name == "lock" || name.starts_with("hooks") || name.ends_with(".redb") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let hash = blake3::hash(&std::fs::read(&p).unwrap()).to_hex();
                out.push(format!(
                    "{} {hash}",
                    p.strip_prefix(&dsv).unwrap().display()
                ));
            }
        }
    }
    out.sort();
    let r = dsv::Repository::discover(
        repo.root(),
        dsv::lock::Access::Read,
        &dsv::OpenOptions::default(),
    )
    .unwrap();
    let index = r.index.load().unwrap();
    out.push(format!("index {:?} {}", index.entries, index.stamp));
    out.push(format!("objects {:?}", r.store.all_objects().unwrap()));
    out.push(format!("packs {:?}", r.store.all_packs().unwrap()));
    out.push(format!("commits {:?}", r.store.all_commits().unwrap()));
    out
}

#[test]
fn pre_commit_rejection_leaves_the_repository_unchanged() {
    let repo = TestRepo::init();
    dataset(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "first"]);
    repo.write(
        "dsv.toml",
        "[[hooks]]\nid = \"validate\"\nevent = \"pre-commit\"\nrun = \"echo 'labels/f0.txt:1: class 7 is not in data.yaml'; exit 1\"\n",
    );
    repo.write("labels/f0.txt", "7 0.5 0.5 0.2 0.2\n");
    repo.ok(["add", "-A"]);
    let before = snapshot(&repo);
    let r = repo.fails(["commit", "-m", "bad labels"]);
    assert!(
        r.stderr
            .contains("labels/f0.txt:1: class 7 is not in data.yaml"),
        "the hook's output is shown: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "error: pre-commit hook 'validate' failed (exit status 1): commit aborted, nothing was changed"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        snapshot(&repo),
        before,
        "index, refs, reflogs and objects unchanged"
    );
    assert!(
        before.iter().any(|l| l.starts_with("refs/heads/main ")),
        "{before:?}"
    );
    // The same with a local executable hook.
    repo.remove("dsv.toml");
    repo.ok(["add", "-A"]);
    let before = snapshot(&repo);
    repo.write(
        ".dsv/hooks/pre-commit",
        "#!/bin/sh\necho local check failed >&2\nexit 2\n",
    );
    let p = repo.path(".dsv/hooks/pre-commit");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = repo.fails(["commit", "-m", "bad labels"]);
    assert!(r.stderr.contains("local check failed"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("pre-commit hook 'local:pre-commit' failed (exit status 2)"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&repo), before);
    // Once the hook passes, the commit goes through and its output is shown.
    repo.write(
        ".dsv/hooks/pre-commit",
        "#!/bin/sh\necho checked $DSV_EVENT\n",
    );
    let r = repo.ok(["commit", "-m", "good labels"]);
    assert!(r.stderr.contains("checked pre-commit"), "{}", r.stderr);
}

fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is dead, just not reaped yet.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn hanging_pre_commit_is_killed_at_its_timeout() {
    let repo = TestRepo::init();
    dataset(&repo);
    let pids = repo.home().join("child.pid");
    repo.write(
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"hang\"\nevent = \"pre-commit\"\ntimeout = 1\nrun = \"sleep 60 & echo $! > '{}'; echo waiting; wait\"\n",
            pids.display()
        ),
    );
    repo.ok(["add", "-A"]);
    let ref_before = repo.exists(".dsv/refs/heads/main");
    let start = Instant::now();
    let r = repo.fails(["commit", "-m", "never"]);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(
        r.stderr
            .contains("pre-commit hook 'hang' failed (timed out after 1s (killed))"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("waiting"), "{}", r.stderr);
    assert_eq!(repo.exists(".dsv/refs/heads/main"), ref_before);
    assert!(!ref_before, "no commit was made");
    let child = std::fs::read_to_string(&pids).unwrap();
    let child = child.trim();
    wait_until("the hook's child to die", Duration::from_secs(5), || {
        !alive(child)
    });
}

#[test]
fn bad_dsv_toml_is_an_error_naming_the_line_before_any_hook_runs() {
    let repo = TestRepo::init();
    dataset(&repo);
    repo.ok(["add", "-A"]);
    let marker = repo.home().join("hook-ran");
    let good = format!(
        "[[hooks]]\nid = \"first\"\nevent = \"pre-commit\"\nrun = \"touch '{}'\"\n\n",
        marker.display()
    );
    let cases = [
        (
            "[[hooks]]\nid = \"x\"\nevent = \"post-comit\"\nrun = \"true\"\n",
            "dsv.toml: line 8, column 9: hook 'x': unknown event 'post-comit'",
        ),
        (
            "[[hooks]]\nid = \"x\"\nevent = \"post-commit\"\nrun = \"true\"\npaths = [\"labels/[\"]\n",
            "dsv.toml: line 10, column 10: invalid glob in paths",
        ),
        (
            "[[hooks]]\nid = \"x\"\nevent = \"post-commit\"\nsecret_env = \"S\"\n",
            "dsv.toml: line 6, column 1: hook 'x': missing run",
        ),
    ];
    for (bad, want) in cases {
        repo.write("dsv.toml", format!("{good}{bad}"));
        let r = repo.fails(["hooks", "list"]);
        assert!(
            r.stderr.contains(want),
            "hooks list: want {want:?}, got {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
        let r = repo.fails(["commit", "-m", "x"]);
        assert!(
            r.stderr.contains(want),
            "commit: want {want:?}, got {}",
            r.stderr
        );
        assert!(!marker.exists(), "a hook ran despite the bad dsv.toml");
        assert!(
            !repo.exists(".dsv/refs/heads/main"),
            "the commit was refused"
        );
    }
    repo.write("dsv.toml", &good);
    let r = repo.ok(["hooks", "list"]);
    assert!(
        r.stdout.contains("first") && r.stdout.contains("dsv.toml:2"),
        "{}",
        r.stdout
    );
    repo.ok(["commit", "-m", "x"]);
    assert!(marker.exists());
}

fn events_dir(repo: &TestRepo) -> PathBuf {
    repo.home().join("events")
}

/// Payloads written by the `record` command hooks, by file name.
fn events(repo: &TestRepo) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(events_dir(repo)) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        out.insert(p.file_name().unwrap().to_string_lossy().into_owned(), v);
    }
    out
}

fn record_hook(id: &str, event: &str, dir: &Path, extra: &str) -> String {
    format!(
        "[[hooks]]\nid = \"{id}\"\nevent = \"{event}\"\nrun = 'cat > \"{}/{id}-$DSV_EVENT-$DSV_BRANCH-$(echo $DSV_COMMIT | cut -c1-12)\"'\n{extra}\n",
        dir.display()
    )
}

#[test]
fn post_checkout_and_filters() {
    let repo = TestRepo::init();
    let dir = events_dir(&repo);
    std::fs::create_dir_all(&dir).unwrap();
    dataset(&repo);
    let toml = [
        record_hook("any", "post-checkout", &dir, ""),
        record_hook("on-main", "post-commit", &dir, "branches = [\"main\"]"),
        record_hook("labels", "post-commit", &dir, "labels_changed = true"),
        record_hook("images", "post-commit", &dir, "paths = [\"images/**\"]"),
    ]
    .concat();
    repo.write("dsv.toml", toml);
    let fg = |args: &[&str]| {
        let r = repo
            .cmd()
            .args(args)
            .env("DSV_HOOKS_FOREGROUND", "1")
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    fg(&["add", "-A"]);
    fg(&["commit", "-m", "first"]);
    let c1 = head(&repo)[..12].to_string();
    let names: Vec<String> = events(&repo).into_keys().collect();
    assert_eq!(
        names,
        vec![
            format!("images-post-commit-main-{c1}"),
            format!("labels-post-commit-main-{c1}"),
            format!("on-main-post-commit-main-{c1}"),
        ]
    );
    // Only an image changes, on another branch: `labels` and `on-main` stay quiet.
    fg(&["switch", "-c", "dev"]);
    assert!(events(&repo).contains_key(&format!("any-post-checkout-dev-{c1}")));
    repo.write("images/f1.jpg", "another frame");
    fg(&["add", "-A"]);
    fg(&["commit", "-m", "frame"]);
    let c2 = repo.read_string(".dsv/refs/heads/dev").trim()[..12].to_string();
    let ev = events(&repo);
    assert!(
        ev.contains_key(&format!("images-post-commit-dev-{c2}")),
        "{ev:?}"
    );
    assert!(
        !ev.contains_key(&format!("labels-post-commit-dev-{c2}")),
        "{ev:?}"
    );
    assert!(
        !ev.contains_key(&format!("on-main-post-commit-dev-{c2}")),
        "{ev:?}"
    );
    let p = &ev[&format!("images-post-commit-dev-{c2}")];
    assert_eq!(p["summary"]["frames"]["added"], 1);
    assert_eq!(p["summary"]["labels_changed"], false);
    // Back to main: c1 was already delivered to `any` (one delivery per hook, commit
    // and event), so nothing new; then to dev: c2 fires, with main's c1 as `previous`.
    fg(&["switch", "main"]);
    assert_eq!(events(&repo).len(), ev.len());
    fg(&["switch", "dev"]);
    let ev = events(&repo);
    let p = &ev[&format!("any-post-checkout-dev-{c2}")];
    assert_eq!(p["previous"].as_str().unwrap()[..12], c1);
    assert_eq!(p["summary"]["base"].as_str().unwrap()[..12], c1);
    assert_eq!(p["summary"]["frames"]["added"], 1);
    // `hooks test` runs the hook now (marked as a test) without recording anything.
    let recorded = || {
        let log: serde_json::Value =
            serde_json::from_str(&repo.ok(["hooks", "log", "--json"]).stdout).unwrap();
        log.as_array().unwrap().len()
    };
    let before = recorded();
    assert_eq!(before, 6);
    repo.write(
        "dsv.toml",
        "[[hooks]]\nid = \"t\"\nevent = \"post-commit\"\nrun = 'echo \"test=$DSV_HOOK_TEST commit=$DSV_COMMIT\"'\n",
    );
    let r = repo.ok(["hooks", "test", "post-commit"]);
    let full = repo.read_string(".dsv/refs/heads/dev").trim().to_string();
    assert!(
        r.stderr.contains(&format!("test=1 commit={full}")),
        "{}",
        r.stderr
    );
    assert_eq!(recorded(), before, "hooks test records nothing");
    let r = repo.expect_code(2, ["hooks", "test", "post-comit"]);
    assert!(
        r.stderr.contains("unknown event 'post-comit'"),
        "{}",
        r.stderr
    );
}

#[test]
fn failed_delivery_shows_in_status_and_retry_delivers_it() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let rx = Receiver::start(Behaviour::DownWhile(down.clone()));
    let repo = TestRepo::init();
    dataset(&repo);
    repo.write("dsv.toml", webhook_toml(&rx.url, ""));
    repo.ok(["add", "-A"]);
    let r = repo
        .cmd()
        .args(["commit", "-m", "first"])
        .env("DSV_HOOKS_FOREGROUND", "1")
        .env("DSV_HOOKS_MAX_ATTEMPTS", "2")
        .env("DSV_HOOKS_BACKOFF_MS", "10")
        .env("DSV_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "a failed post-commit never fails the commit"
    );
    let status = repo.ok(["hooks", "status"]).stdout;
    assert!(
        status.contains("#1    failed")
            && status.contains("2 attempts")
            && status.contains("HTTP 503"),
        "{status}"
    );
    assert_eq!(rx.seen().len(), 2);
    // Without the secret nothing is sent unsigned.
    let r = repo
        .cmd()
        .args(["hooks", "test", "post-commit"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("secret_env DSV_TEST_SECRET is not set"),
        "{err}"
    );
    assert_eq!(rx.seen().len(), 2);
    // The receiver is back: retry delivers the failed one, once.
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = repo
        .cmd()
        .args(["hooks", "retry", "1"])
        .env("DSV_HOOKS_FOREGROUND", "1")
        .env("DSV_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(!err.contains(SECRET), "the secret is never printed: {err}");
    assert_eq!(rx.accepted().len(), 1);
    assert_eq!(rx.seen().len(), 3);
    assert!(
        repo.ok(["hooks", "status"])
            .stdout
            .contains("nothing pending")
    );
    let r = repo.fails(["hooks", "retry", "1"]);
    assert!(r.stderr.contains("already delivered"), "{}", r.stderr);
}

#[test]
fn example_retrain_script_materializes_the_commit_and_trains_once() {
    let repo = TestRepo::init();
    dataset(&repo);
    repo.write("labels/f1.txt", "0 0.5 0.5 0.4 0.2\n1 0.2 0.2 0.1 0.1\n");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retrain/retrain.sh");
    repo.write(
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"retrain\"\nevent = \"branch-updated\"\nrun = \"'{}'\"\n",
            script.display()
        ),
    );
    let models = repo.home().join("models");
    let run = |args: &[&str]| {
        let r = repo
            .cmd()
            .args(args)
            .env("DSV_HOOKS_FOREGROUND", "1")
            .env("DSV", assert_cmd::cargo::cargo_bin("dsv"))
            .env("RETRAIN_DIR", &models)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr).into_owned();
        assert!(r.status.success(), "{err}");
        err
    };
    run(&["add", "-A"]);
    let out = run(&["commit", "-m", "first"]);
    let commit = head(&repo);
    assert!(
        out.contains(&format!("materialized 4 files of {commit}")),
        "{out}"
    );
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models.join(&commit).join("model.json")).unwrap())
            .unwrap();
    assert_eq!(model["boxes"], 3);
    assert_eq!(model["classes"]["0"]["boxes"], 2);
    assert_eq!(model["classes"]["1"]["boxes"], 1);
    // The materialized copy is the commit's content.
    assert_eq!(
        std::fs::read(models.join(&commit).join("data/labels/f1.txt")).unwrap(),
        repo.read("labels/f1.txt")
    );
    // A second run for the same commit (a redelivery) does not train again.
    let out = run(&["hooks", "test", "branch-updated"]);
    assert!(out.contains(&format!("{commit} already trained")), "{out}");
}

/// The pid holding a `flock` on `path`, from the kernel's lock table.
fn flock_holder(path: &Path) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).ok()?.ino();
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
    table.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dev_ino = f.get(5)?;
        let pid = f.get(4)?.parse().ok()?;
        (f.get(1) == Some(&"FLOCK") && dev_ino.rsplit(':').next()? == ino.to_string())
            .then_some(pid)
    })
}

#[test]
fn killed_background_worker_is_replaced_and_nothing_is_lost_or_doubled() {
    let rx = Receiver::start(Behaviour::StallFirst);
    let repo = TestRepo::init();
    dataset(&repo);
    repo.write("dsv.toml", webhook_toml(&rx.url, ""));
    repo.ok(["add", "-A"]);
    // The default: the commit returns and a detached `dsv hooks deliver` delivers.
    let r = repo
        .cmd()
        .args(["commit", "-m", "first"])
        .env("DSV_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let commit = head(&repo);
    rx.stalled
        .recv_timeout(Duration::from_secs(30))
        .expect("the background worker started the delivery");
    let lock = repo.path(".dsv/hooks-worker.lock");
    let pid = flock_holder(&lock).expect("the worker holds its lock");
    assert_ne!(pid as u32, std::process::id());
    // SAFETY: signals the worker process found above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    wait_until("the worker to die", Duration::from_secs(10), || {
        flock_holder(&lock).is_none()
    });
    assert!(repo.ok(["hooks", "status"]).stdout.contains("pending"));
    // Any later worker finishes the job (here one run by hand, in the foreground).
    let r = repo
        .cmd()
        .args(["hooks", "deliver"])
        .env("DSV_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let seen = rx.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|s| s.header("idempotency-key") == format!("train:{commit}"))
    );
    assert_eq!(rx.accepted().len(), 1);
    let log = repo.ok(["hooks", "log"]).stdout;
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains(" done "), "{log}");
}

/// Runs `dsv commit` killed at its `n`-th write (`DSV_FAULT`), then a worker, in a copy
/// of `template`; checks the hook ran for the commit exactly when the commit happened.
/// Returns whether the commit ran to its end, and whether its branch moved.
fn commit_killed_at(template: &TestRepo, n: u32) -> (bool, bool) {
    let repo = TestRepo::new();
    common::copy_contents(template.root(), repo.root());
    let log = repo.home().join("deliveries");
    repo.write(
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"h\"\nevent = \"post-commit\"\nrun = 'echo \"$DSV_IDEMPOTENCY_KEY\" >> \"{}\"'\n",
            log.display()
        ),
    );
    let r = repo
        .cmd()
        .args(["commit", "-m", "x"])
        .env("DSV_FAULT", format!("kill:{n}"))
        .env("DSV_HOOKS_FOREGROUND", "1")
        .output()
        .unwrap();
    let finished = r.status.success();
    // Whatever the crash left, the next worker settles it.
    let r2 = repo
        .cmd()
        .args(["hooks", "retry"])
        .env("DSV_HOOKS_FOREGROUND", "1")
        .output()
        .unwrap();
    assert!(
        r2.status.success(),
        "kill:{n}: {}",
        String::from_utf8_lossy(&r2.stderr)
    );
    let committed = repo.exists(".dsv/refs/heads/main");
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    let keys: HashSet<&str> = lines.lines().collect();
    if committed {
        let want = format!("h:{}", head(&repo));
        // Delivered at least once (twice if the kill hit after the hook ran but before
        // it was marked done), always under the one key.
        assert_eq!(keys, HashSet::from([want.as_str()]), "kill:{n}: {lines}");
    } else {
        assert!(
            lines.is_empty(),
            "kill:{n}: delivered for a commit that did not happen"
        );
    }
    if finished || committed {
        let status = repo.ok(["hooks", "status"]).stdout;
        assert!(status.starts_with("nothing pending"), "kill:{n}: {status}");
    }
    assert!(!finished || committed);
    (finished, committed)
}

#[test]
fn a_crash_at_any_write_of_a_commit_delivers_iff_the_commit_happened() {
    let template = TestRepo::init();
    dataset(&template);
    // The hook file is written per copy; stage a placeholder so the commit has it.
    template.write("dsv.toml", "");
    template.ok(["add", "-A"]);
    // The number of writes of a whole commit with a hook: the first n that finishes.
    let mut hi = 16;
    while !commit_killed_at(&template, hi).0 {
        hi *= 2;
        assert!(hi < 10_000, "the commit never finished");
    }
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if commit_killed_at(&template, mid).0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let total = hi - 1;
    assert!(total > 20, "only {total} writes: was the fault injected?");
    // Every write of the end of the commit (object durability, the staged record, the
    // ref move, the confirmation), and a sample of the earlier ones.
    let tail = total.saturating_sub(40).max(1);
    let mut after_the_move = 0;
    for n in (1..tail).step_by(10).chain(tail..=total) {
        let (finished, committed) = commit_killed_at(&template, n);
        assert!(!finished, "kill:{n} did not kill");
        // Killed after the branch moved and before the delivery was confirmed: only the
        // next worker's reconciliation can have delivered it.
        after_the_move += usize::from(committed);
    }
    assert!(
        after_the_move > 0,
        "no kill fell between the ref move and the confirmation"
    );
}

#[test]
fn post_merge_fires_for_a_fast_forward_and_a_merge_commit_not_for_conflicts() {
    let repo = TestRepo::init();
    let dir = events_dir(&repo);
    std::fs::create_dir_all(&dir).unwrap();
    dataset(&repo);
    repo.write("dsv.toml", record_hook("merged", "post-merge", &dir, ""));
    let fg = |args: &[&str]| {
        repo.cmd()
            .args(args)
            .env("DSV_HOOKS_FOREGROUND", "1")
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let r = fg(args);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    };
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "base"]);
    let base = head(&repo);
    // Fast-forward: main moves to dev's commit, the hook sees it with the old HEAD.
    ok(&["switch", "-c", "dev"]);
    repo.write("images/f1.jpg", "second frame");
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "frame on dev"]);
    let dev = repo.read_string(".dsv/refs/heads/dev").trim().to_string();
    ok(&["switch", "main"]);
    assert!(events(&repo).is_empty(), "{:?}", events(&repo));
    ok(&["merge", "dev"]);
    let ev = events(&repo);
    let ff = &ev[&format!("merged-post-merge-main-{}", &dev[..12])];
    assert_eq!(ff["event"], "post-merge");
    assert_eq!(ff["summary"]["frames"]["added"], 1);
    // A true merge commit: both sides changed different files.
    repo.write("images/f2.jpg", "main's frame");
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "frame on main"]);
    ok(&["switch", "dev"]);
    repo.write("images/f3.jpg", "dev's frame");
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "another on dev"]);
    ok(&["switch", "main"]);
    ok(&["merge", "dev", "-m", "merge dev"]);
    let merged = head(&repo);
    assert_ne!(merged, base);
    assert!(
        events(&repo).contains_key(&format!("merged-post-merge-main-{}", &merged[..12])),
        "{:?}",
        events(&repo).keys()
    );
    // A merge that stops on a conflict fires nothing.
    let before = events(&repo).len();
    // The same object reclassified differently on each side.
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "main: class 1"]);
    ok(&["switch", "dev"]);
    repo.write("labels/f0.txt", "2 0.5 0.5 0.2 0.2\n");
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "dev: class 2"]);
    ok(&["switch", "main"]);
    let r = fg(&["merge", "dev"]);
    assert!(!r.status.success(), "a conflicting merge must not succeed");
    assert_eq!(events(&repo).len(), before);
}

/// A commit that deletes a frame and its label file: the post-commit payload
/// counts the frame as removed (it used to say `frames.removed: 0`).
#[test]
fn deleted_frame_is_counted_removed_in_the_post_commit_payload() {
    let repo = TestRepo::init();
    let dir = events_dir(&repo);
    std::fs::create_dir_all(&dir).unwrap();
    dataset(&repo);
    repo.write("labels/f1.txt", "0 0.3 0.3 0.2 0.2\n");
    repo.write("images/f1.jpg", "another frame");
    repo.write("dsv.toml", record_hook("rec", "post-commit", &dir, ""));
    let fg = |args: &[&str]| {
        let r = repo
            .cmd()
            .args(args)
            .env("DSV_HOOKS_FOREGROUND", "1")
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    fg(&["add", "-A"]);
    fg(&["commit", "-m", "first"]);
    fg(&["rm", "images/f1.jpg", "labels/f1.txt"]);
    fg(&["commit", "-m", "drop f1"]);
    let c2 = head(&repo)[..12].to_string();
    let ev = events(&repo);
    let p = &ev[&format!("rec-post-commit-main-{c2}")];
    assert_eq!(p["summary"]["frames"]["removed"], 1, "{p}");
    assert_eq!(p["summary"]["frames"]["added"], 0, "{p}");
    assert_eq!(p["summary"]["objects"]["removed"], 1, "{p}");
}

/// Runs dsv in `repo` delivering hooks in the foreground; fails the test on error.
#[track_caller]
fn fg_ok(repo: &TestRepo, args: &[&str]) -> String {
    let r = repo
        .cmd()
        .args(args)
        .env("DSV_HOOKS_FOREGROUND", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "{args:?}: {err}");
    err
}

/// A committed dataset (one frame, one label file) whose `dsv.toml` records every
/// `branch-updated` and `post-commit` payload; returns the first commit.
fn updated_repo(repo: &TestRepo) -> String {
    let dir = events_dir(repo);
    std::fs::create_dir_all(&dir).unwrap();
    dataset(repo);
    repo.write(
        "dsv.toml",
        record_hook("upd", "branch-updated", &dir, "")
            + &record_hook("pc", "post-commit", &dir, ""),
    );
    fg_ok(repo, &["add", "-A"]);
    fg_ok(repo, &["commit", "-m", "base"]);
    tip(repo, "main")
}

fn tip(repo: &TestRepo, branch: &str) -> String {
    repo.read_string(format!(".dsv/refs/heads/{branch}"))
        .trim()
        .to_string()
}

/// The `branch-updated` payload of `branch` moving to `new`, checked against `old`.
#[track_caller]
fn branch_updated(repo: &TestRepo, branch: &str, old: &str, new: &str) -> serde_json::Value {
    let ev = events(repo);
    let key = format!("upd-branch-updated-{branch}-{}", &new[..12]);
    let p = ev
        .get(&key)
        .unwrap_or_else(|| panic!("no {key} among {:?}", ev.keys()))
        .clone();
    assert_eq!(p["event"], "branch-updated", "{p}");
    assert_eq!(p["branch"], branch, "{p}");
    assert_eq!(p["commit"], new, "{p}");
    assert_eq!(p["previous"], old, "{p}");
    assert_eq!(p["update"]["branch"], branch, "{p}");
    assert_eq!(p["update"]["old"], old, "{p}");
    assert_eq!(p["update"]["new"], new, "{p}");
    assert_eq!(p["summary"]["base"], old, "{p}");
    p
}

fn post_commit_fired(repo: &TestRepo, commit: &str) -> bool {
    events(repo).contains_key(&format!("pc-post-commit-main-{}", &commit[..12]))
}

fn listed_commits(p: &serde_json::Value) -> Vec<String> {
    p["update"]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn branch_updated_fires_for_a_commit_with_old_new_and_summary() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n");
    fg_ok(&repo, &["commit", "-a", "-m", "relabel"]);
    let new = tip(&repo, "main");
    let p = branch_updated(&repo, "main", &base, &new);
    assert_eq!(listed_commits(&p), vec![new.clone()]);
    assert_eq!(p["update"]["fast_forward"], true, "{p}");
    assert_eq!(p["summary"]["labels_changed"], true, "{p}");
    assert_eq!(p["summary"]["objects"]["added"], 1, "{p}");
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
    assert!(post_commit_fired(&repo, &new));
}

/// The case of issue 17.10: a team retraining on a labelled branch merged into main
/// never retrained, because `merge` fired only `post-merge`.
#[test]
fn merging_a_labelled_branch_fires_branch_updated_with_everything_between() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    fg_ok(&repo, &["switch", "-c", "labelled"]);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "relabel"]);
    let c1 = tip(&repo, "labelled");
    repo.write("images/f1.jpg", "second frame");
    repo.write("labels/f1.txt", "0 0.3 0.3 0.2 0.2\n");
    fg_ok(&repo, &["add", "-A"]);
    fg_ok(&repo, &["commit", "-m", "frame 1"]);
    let c2 = tip(&repo, "labelled");
    fg_ok(&repo, &["switch", "main"]);
    // A fast-forward: main gains both commits, summarized together.
    fg_ok(&repo, &["merge", "labelled"]);
    let p = branch_updated(&repo, "main", &base, &c2);
    assert_eq!(listed_commits(&p), vec![c1, c2.clone()]);
    assert_eq!(p["update"]["commits_count"], 2, "{p}");
    assert_eq!(p["summary"]["frames"]["added"], 1, "{p}");
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
    assert_eq!(p["summary"]["objects"]["added"], 1, "{p}");
    // A merge commit: main gains the branch's commit and the merge commit, and the
    // merge commit fires post-commit.
    repo.write("images/f2.jpg", "main's frame");
    fg_ok(&repo, &["add", "-A"]);
    fg_ok(&repo, &["commit", "-m", "frame on main"]);
    let m1 = tip(&repo, "main");
    fg_ok(&repo, &["switch", "labelled"]);
    repo.write("labels/f1.txt", "0 0.3 0.3 0.2 0.2\n1 0.7 0.7 0.1 0.1\n");
    fg_ok(&repo, &["commit", "-a", "-m", "one more box"]);
    let c3 = tip(&repo, "labelled");
    fg_ok(&repo, &["switch", "main"]);
    fg_ok(&repo, &["merge", "labelled", "-m", "merge labelled"]);
    let merged = tip(&repo, "main");
    let p = branch_updated(&repo, "main", &m1, &merged);
    assert_eq!(listed_commits(&p), vec![c3, merged.clone()]);
    assert_eq!(p["summary"]["objects"]["added"], 1, "{p}");
    assert_eq!(p["summary"]["labels_changed"], true, "{p}");
    assert!(post_commit_fired(&repo, &merged));
}

#[test]
fn cherry_pick_fires_post_commit_and_branch_updated() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    fg_ok(&repo, &["switch", "-c", "dev"]);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "relabel"]);
    let picked = tip(&repo, "dev");
    fg_ok(&repo, &["switch", "main"]);
    repo.write("images/f1.jpg", "main's frame");
    fg_ok(&repo, &["add", "-A"]);
    fg_ok(&repo, &["commit", "-m", "frame on main"]);
    let old = tip(&repo, "main");
    assert_ne!(old, base);
    fg_ok(&repo, &["cherry-pick", &picked]);
    let new = tip(&repo, "main");
    assert_ne!(new, picked);
    let p = branch_updated(&repo, "main", &old, &new);
    assert_eq!(listed_commits(&p), vec![new.clone()]);
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
    assert!(post_commit_fired(&repo, &new), "{:?}", events(&repo).keys());
}

#[test]
fn revert_fires_post_commit_and_branch_updated() {
    let repo = TestRepo::init();
    updated_repo(&repo);
    repo.write("labels/f0.txt", "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n");
    fg_ok(&repo, &["commit", "-a", "-m", "add a box"]);
    let added = tip(&repo, "main");
    fg_ok(&repo, &["revert", &added]);
    let new = tip(&repo, "main");
    let p = branch_updated(&repo, "main", &added, &new);
    assert_eq!(p["summary"]["objects"]["removed"], 1, "{p}");
    assert!(post_commit_fired(&repo, &new), "{:?}", events(&repo).keys());
}

#[test]
fn reset_fires_branch_updated_backwards_with_no_commits_between() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    repo.write("images/f1.jpg", "second frame");
    repo.write("labels/f1.txt", "0 0.3 0.3 0.2 0.2\n");
    fg_ok(&repo, &["add", "-A"]);
    fg_ok(&repo, &["commit", "-m", "frame 1"]);
    let head = tip(&repo, "main");
    std::fs::remove_dir_all(events_dir(&repo)).unwrap();
    std::fs::create_dir_all(events_dir(&repo)).unwrap();
    fg_ok(&repo, &["reset", "--hard", &base]);
    let p = branch_updated(&repo, "main", &head, &base);
    assert_eq!(p["update"]["fast_forward"], false, "{p}");
    assert_eq!(p["update"]["commits_count"], 0, "{p}");
    assert_eq!(p["summary"]["frames"]["removed"], 1, "{p}");
    assert_eq!(p["summary"]["objects"]["removed"], 1, "{p}");
    // Forward again: a second move, a second delivery.
    fg_ok(&repo, &["reset", "--soft", &head]);
    let p = branch_updated(&repo, "main", &base, &head);
    assert_eq!(p["update"]["fast_forward"], true, "{p}");
    assert_eq!(events(&repo).len(), 2, "{:?}", events(&repo).keys());
}

#[test]
fn pull_fires_branch_updated_in_the_clone() {
    let repo = TestRepo::init();
    dataset(&repo);
    let ok = |args: &[&str]| fg_ok(&repo, args);
    ok(&["add", "-A"]);
    ok(&["commit", "-m", "base"]);
    let base = tip(&repo, "main");
    let url = repo.home().join("remote.dsv").display().to_string();
    ok(&["remote", "add", "origin", &url]);
    ok(&["push"]);
    let clone = repo.home().join("clone");
    let r = repo
        .cmd_in(repo.home())
        .args(["clone", &url, "clone"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let dir = events_dir(&repo);
    std::fs::create_dir_all(&dir).unwrap();
    // Only the clone has the hook (an untracked dsv.toml of its own).
    std::fs::write(
        clone.join("dsv.toml"),
        record_hook("upd", "branch-updated", &dir, ""),
    )
    .unwrap();
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    ok(&["commit", "-a", "-m", "relabel"]);
    let new = tip(&repo, "main");
    ok(&["push"]);
    let r = repo
        .cmd_in(&clone)
        .args(["pull"])
        .env("DSV_HOOKS_FOREGROUND", "1")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let p = branch_updated(&repo, "main", &base, &new);
    assert_eq!(p["repository"]["root"], clone.display().to_string(), "{p}");
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
}

#[test]
fn branch_force_fires_branch_updated_for_the_moved_branch() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "relabel"]);
    let new = tip(&repo, "main");
    // A new branch at an existing commit is no new version: nothing fires.
    fg_ok(&repo, &["branch", "release", &base]);
    assert!(!events(&repo).keys().any(|k| k.contains("-release-")));
    fg_ok(&repo, &["branch", "-f", "release", &new]);
    let p = branch_updated(&repo, "release", &base, &new);
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
}

#[test]
fn merge_continue_after_a_conflict_fires_branch_updated_once_committed() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    fg_ok(&repo, &["switch", "-c", "dev"]);
    repo.write("labels/f0.txt", "2 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "dev: class 2"]);
    fg_ok(&repo, &["switch", "main"]);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "main: class 1"]);
    let main = tip(&repo, "main");
    assert_ne!(main, base);
    let before = events(&repo).len();
    let r = repo.cmd().args(["merge", "dev"]).output().unwrap();
    assert!(!r.status.success(), "a conflicting merge must stop");
    assert_eq!(
        events(&repo).len(),
        before,
        "a stopped merge fired something"
    );
    fg_ok(&repo, &["resolve", "labels/f0.txt", "--theirs"]);
    fg_ok(&repo, &["merge", "--continue"]);
    let merged = tip(&repo, "main");
    let p = branch_updated(&repo, "main", &main, &merged);
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
    assert!(post_commit_fired(&repo, &merged));
}

/// A clone of a pushed dataset whose untracked `dsv.toml` records `hooks`, with
/// `main` then moved on the remote by a relabel; returns (clone, base, new).
fn clone_behind(repo: &TestRepo, hooks: &str) -> (PathBuf, String, String) {
    dataset(repo);
    fg_ok(repo, &["add", "-A"]);
    fg_ok(repo, &["commit", "-m", "base"]);
    let base = tip(repo, "main");
    let url = repo.home().join("remote.dsv").display().to_string();
    fg_ok(repo, &["remote", "add", "origin", &url]);
    fg_ok(repo, &["push"]);
    let clone = repo.home().join("clone");
    let r = repo
        .cmd_in(repo.home())
        .args(["clone", &url, "clone"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::create_dir_all(events_dir(repo)).unwrap();
    std::fs::write(clone.join("dsv.toml"), hooks).unwrap();
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(repo, &["commit", "-a", "-m", "relabel"]);
    let new = tip(repo, "main");
    fg_ok(repo, &["push"]);
    (clone, base, new)
}

/// Runs dsv in `dir` delivering hooks in the foreground; fails the test on error.
#[track_caller]
fn fg_in(repo: &TestRepo, dir: &Path, args: &[&str]) {
    let r = repo
        .cmd_in(dir)
        .args(args)
        .env("DSV_HOOKS_FOREGROUND", "1")
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A pull that fast-forwards the branch is a merge of the remote branch, as in git:
/// it fires `post-merge` (the summary against the previous HEAD) and
/// `branch-updated`, and no `post-checkout` (HEAD stays on its branch, as in a
/// fast-forward `dsv merge`).
#[test]
fn pull_fires_post_merge_and_branch_updated() {
    let repo = TestRepo::init();
    let dir = events_dir(&repo);
    let hooks = record_hook("merged", "post-merge", &dir, "")
        + &record_hook("upd", "branch-updated", &dir, "")
        + &record_hook("co", "post-checkout", &dir, "");
    let (clone, base, new) = clone_behind(&repo, &hooks);
    fg_in(&repo, &clone, &["pull"]);
    let ev = events(&repo);
    let key = format!("merged-post-merge-main-{}", &new[..12]);
    let p = ev
        .get(&key)
        .unwrap_or_else(|| panic!("no {key} among {:?}", ev.keys()));
    assert_eq!(p["event"], "post-merge", "{p}");
    assert_eq!(p["commit"], new, "{p}");
    assert_eq!(p["previous"], base, "{p}");
    assert_eq!(p["summary"]["base"], base, "{p}");
    assert_eq!(p["summary"]["objects"]["reclassified"], 1, "{p}");
    assert_eq!(p["repository"]["root"], clone.display().to_string(), "{p}");
    branch_updated(&repo, "main", &base, &new);
    assert_eq!(ev.len(), 2, "{:?}", ev.keys());
}

/// An up-to-date pull moves nothing and `pull --only` writes paths without moving
/// the branch (like `checkout -- PATHS`): neither fires anything.
#[test]
fn pull_fires_nothing_when_up_to_date_or_with_only() {
    let repo = TestRepo::init();
    let dir = events_dir(&repo);
    let hooks = record_hook("merged", "post-merge", &dir, "")
        + &record_hook("upd", "branch-updated", &dir, "")
        + &record_hook("co", "post-checkout", &dir, "");
    let (clone, base, _) = clone_behind(&repo, &hooks);
    fg_in(&repo, &clone, &["pull", "--only", "labels"]);
    assert!(events(&repo).is_empty(), "{:?}", events(&repo).keys());
    assert_eq!(
        std::fs::read_to_string(clone.join(".dsv/refs/heads/main"))
            .unwrap()
            .trim(),
        base
    );
    fg_in(&repo, &clone, &["pull"]);
    let fired = events(&repo).len();
    assert_eq!(fired, 2, "{:?}", events(&repo).keys());
    fg_in(&repo, &clone, &["pull"]);
    assert_eq!(events(&repo).len(), fired, "{:?}", events(&repo).keys());
}

/// A clone fires nothing, even when the dataset it checks out declares hooks for
/// every event it does (a checkout, a branch): they come from a `dsv.toml` just
/// downloaded, which nobody has read yet.
#[test]
fn clone_fires_no_hooks_from_the_cloned_dsv_toml() {
    let repo = TestRepo::init();
    let dir = events_dir(&repo);
    std::fs::create_dir_all(&dir).unwrap();
    dataset(&repo);
    fg_ok(&repo, &["add", "-A"]);
    fg_ok(&repo, &["commit", "-m", "base"]);
    let url = repo.home().join("remote.dsv").display().to_string();
    fg_ok(&repo, &["remote", "add", "origin", &url]);
    fg_ok(&repo, &["push"]);
    repo.write(
        "dsv.toml",
        record_hook("co", "post-checkout", &dir, "")
            + &record_hook("upd", "branch-updated", &dir, "")
            + &record_hook("merged", "post-merge", &dir, ""),
    );
    fg_ok(&repo, &["add", "dsv.toml"]);
    fg_ok(&repo, &["commit", "-m", "hooks"]);
    fg_ok(&repo, &["push"]);
    // What committing the hooks fired here, delivered in the foreground.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    fg_in(&repo, repo.home(), &["clone", &url, "clone"]);
    assert!(repo.home().join("clone/dsv.toml").exists());
    assert!(events(&repo).is_empty(), "{:?}", events(&repo).keys());
}

/// `merge --abort` puts the branch back where the merge began; when something moved
/// it during the stop (a reset), going back is a branch move and fires
/// `branch-updated` like any other.
#[test]
fn merge_abort_after_a_reset_fires_branch_updated_moving_the_branch_back() {
    let repo = TestRepo::init();
    let base = updated_repo(&repo);
    fg_ok(&repo, &["switch", "-c", "dev"]);
    repo.write("labels/f0.txt", "2 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "dev: class 2"]);
    fg_ok(&repo, &["switch", "main"]);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "main: class 1"]);
    let main = tip(&repo, "main");
    let r = repo.cmd().args(["merge", "dev"]).output().unwrap();
    assert!(!r.status.success(), "a conflicting merge must stop");
    fg_ok(&repo, &["reset", "--soft", &base]);
    branch_updated(&repo, "main", &main, &base);
    std::fs::remove_dir_all(events_dir(&repo)).unwrap();
    std::fs::create_dir_all(events_dir(&repo)).unwrap();
    fg_ok(&repo, &["merge", "--abort"]);
    assert_eq!(tip(&repo, "main"), main);
    branch_updated(&repo, "main", &base, &main);
    assert_eq!(events(&repo).len(), 1, "{:?}", events(&repo).keys());
}

/// `commit --amend` fires what a commit fires; its `branch-updated` moves the branch
/// from the replaced commit and says it is not a fast-forward.
#[test]
fn commit_amend_fires_branch_updated_not_fast_forward() {
    let repo = TestRepo::init();
    updated_repo(&repo);
    repo.write("labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    fg_ok(&repo, &["commit", "-a", "-m", "relabel"]);
    let replaced = tip(&repo, "main");
    repo.write("labels/f0.txt", "1 0.5 0.5 0.3 0.3\n");
    fg_ok(&repo, &["commit", "-a", "--amend"]);
    let new = tip(&repo, "main");
    assert_ne!(new, replaced);
    let p = branch_updated(&repo, "main", &replaced, &new);
    assert_eq!(p["update"]["fast_forward"], false, "{p}");
    assert!(post_commit_fired(&repo, &new));
}
