//! `dsv watch` end to end (file:// remotes and a real S3-protocol server on
//! loopback): commits pushed while the watch is stopped fire once each, in order;
//! a second run fires nothing; a long-running watch picks pushes up, survives
//! `kill -9` without repeating or skipping a commit, and stops cleanly on SIGTERM;
//! a webhook receiver that fails the first requests gets each commit once, signed.
//! And `dsv push` firing `pre-push` (which can reject it) and `post-push`.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{read_request, signature};
use common::s3::Moto;
use common::{Run, TestRepo, hermetic, write_file};

const SECRET: &str = "watch-test-secret-not-real";

/// Runs dsv in `dir` (relative to the test's home) with extra environment.
fn dsv(t: &TestRepo, dir: &str, env: &[(&str, String)], args: &[&str]) -> Run {
    let mut cmd = t.cmd_in(t.home().join(dir));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("running dsv");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_bytes: out.stdout,
    }
}

#[track_caller]
fn ok(t: &TestRepo, dir: &str, env: &[(&str, String)], args: &[&str]) -> Run {
    let r = dsv(t, dir, env, args);
    assert_eq!(r.code, 0, "dsv {} in {dir} failed:\n{r}", args.join(" "));
    r
}

/// Starts `dsv ARGS` in `dir` in the background, output to `dir/../NAME.log`.
fn spawn(t: &TestRepo, dir: &str, env: &[(&str, String)], args: &[&str], log: &str) -> Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("dsv"));
    hermetic(&mut cmd, t.home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = std::fs::File::create(t.home().join(log)).expect("creating the log");
    cmd.current_dir(t.home().join(dir))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("cloning the log handle"))
        .stderr(out)
        .spawn()
        .expect("starting dsv")
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The commit `branch` points at in the repository at `dir`.
fn branch_tip(t: &TestRepo, dir: &str, branch: &str) -> String {
    std::fs::read_to_string(t.home().join(dir).join(".dsv/refs/heads").join(branch))
        .expect("reading a branch ref")
        .trim()
        .to_string()
}

/// Commits a change to `labels/f0.txt` in `repo` and returns the new commit.
fn label_commit(t: &TestRepo, n: usize, env: &[(&str, String)]) -> String {
    let mut text = String::new();
    for i in 0..=n {
        text.push_str(&format!("{} 0.5 0.5 0.1 0.{}\n", i % 2, i % 9 + 1));
    }
    write_file(t.root(), "labels/f0.txt", text);
    ok(t, "repo", env, &["add", "-A"]);
    ok(t, "repo", env, &["commit", "-m", &format!("labels {n}")]);
    branch_tip(t, "repo", "main")
}

/// A repository `repo` with one frame and one label file, pushed to `url` as origin.
fn source(t: &TestRepo, url: &str, env: &[(&str, String)]) {
    write_file(t.root(), "images/f0.jpg", "not really a jpeg");
    write_file(t.root(), "labels/f0.txt", "0 0.5 0.5 0.2 0.2\n");
    ok(t, "repo", env, &["add", "-A"]);
    ok(t, "repo", env, &["commit", "-m", "first"]);
    ok(t, "repo", env, &["remote", "add", "origin", url]);
    ok(t, "repo", env, &["push"]);
}

/// A hook command that appends `DSV_COMMIT DSV_BRANCH` to `fired.txt` and keeps
/// the payload in `payloads/COMMIT.json`, both in the test's home.
fn exec_hook(t: &TestRepo) -> String {
    std::fs::create_dir_all(t.home().join("payloads")).unwrap();
    format!(
        "echo \"$DSV_COMMIT $DSV_BRANCH\" >> {home}/fired.txt; cat > {home}/payloads/$DSV_COMMIT.json",
        home = t.home().display()
    )
}

/// The lines of `fired.txt` (commit, branch).
fn fired(t: &TestRepo) -> Vec<(String, String)> {
    std::fs::read_to_string(t.home().join("fired.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (c, b) = l.split_once(' ').unwrap_or((l, ""));
            (c.to_string(), b.to_string())
        })
        .collect()
}

fn fired_commits(t: &TestRepo) -> Vec<String> {
    fired(t).into_iter().map(|(c, _)| c).collect()
}

fn payload(t: &TestRepo, commit: &str) -> serde_json::Value {
    let p = t.home().join("payloads").join(format!("{commit}.json"));
    serde_json::from_slice(&std::fs::read(&p).expect("reading a payload")).expect("payload JSON")
}

/// The outbox of the repository at `dir`, oldest first.
fn deliveries(t: &TestRepo, dir: &str) -> Vec<serde_json::Value> {
    let r = ok(t, dir, &[], &["hooks", "log", "--json"]);
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("hooks log JSON");
    v.reverse();
    v
}

#[test]
fn commits_pushed_while_stopped_fire_once_each_in_order() {
    let t = TestRepo::init();
    let url = format!("file://{}", t.home().join("remote.dsv").display());
    source(&t, &url, &[]);
    // A full clone as the mirror: the payload then has the label summary.
    ok(&t, ".", &[], &["clone", &url, "mirror"]);
    let exec = exec_hook(&t);
    let watch = [
        "watch", "origin", "--branch", "main", "--once", "--exec", &exec,
    ];
    let r = ok(&t, "mirror", &[], &watch);
    assert!(r.stderr.contains("origin/main: watching from"), "{r}");
    assert!(fired(&t).is_empty(), "a new watch fired for old history");

    let pushed: Vec<String> = (1..=3).map(|n| label_commit(&t, n, &[])).collect();
    ok(&t, "repo", &[], &["push"]);
    // A fetch in the mirror moves its remote-tracking refs, not the watch's cursor.
    ok(&t, "mirror", &[], &["fetch", "origin"]);
    let r = ok(&t, "mirror", &[], &watch);
    assert!(r.stderr.contains("3 new commits"), "{r}");
    assert_eq!(
        fired(&t),
        pushed
            .iter()
            .map(|c| (c.clone(), "main".to_string()))
            .collect::<Vec<_>>(),
        "each pushed commit once, oldest first"
    );
    // The payload: event, remote, the chain of previous commits, the label summary.
    let first = branch_tip(&t, "mirror", "main");
    let mut previous = first.clone();
    for c in &pushed {
        let p = payload(&t, c);
        assert_eq!(p["schema"], "dsv.hook/1");
        assert_eq!(p["event"], "remote-commit");
        assert_eq!(p["commit"], c.as_str());
        assert_eq!(p["branch"], "main");
        assert_eq!(p["remote"]["name"], "origin");
        assert_eq!(p["previous"], previous.as_str());
        assert_eq!(p["parents"][0], previous.as_str());
        assert_eq!(p["summary"]["partial"], false);
        assert_eq!(p["summary"]["labels_changed"], true, "{p}");
        assert!(
            p["summary"]["objects"]["added"].as_u64().unwrap() >= 1,
            "{p}"
        );
        previous = c.clone();
    }
    let r = ok(&t, "mirror", &[], &["hooks", "status"]);
    let tip = &pushed[2][..12];
    assert!(
        r.stdout
            .contains(&format!("watch origin/main: fired up to {tip}")),
        "{r}"
    );
    let log = deliveries(&t, "mirror");
    assert_eq!(log.len(), 3);
    for (d, c) in log.iter().zip(&pushed) {
        assert_eq!(d["state"], "done");
        assert_eq!(d["event"], "remote-commit");
        assert_eq!(d["commit"], c.as_str());
        assert_eq!(d["key"], format!("watch:origin:{c}").as_str());
    }

    // Again: nothing new, nothing fires.
    let r = ok(&t, "mirror", &[], &watch);
    assert!(!r.stderr.contains("new commit"), "{r}");
    assert_eq!(fired(&t).len(), 3);

    // A branch the globs leave out fires nothing.
    ok(&t, "repo", &[], &["branch", "scratch"]);
    ok(&t, "repo", &[], &["push", "origin", "scratch"]);
    ok(&t, "mirror", &[], &watch);
    assert_eq!(fired(&t).len(), 3);

    // A force-push that rewrites the tip fires the new commit only.
    ok(&t, "repo", &[], &["reset", "--hard", &pushed[1]]);
    let rewritten = label_commit(&t, 7, &[]);
    ok(&t, "repo", &[], &["push", "--force"]);
    let r = ok(&t, "mirror", &[], &watch);
    assert!(r.stderr.contains("1 new commit"), "{r}");
    assert_eq!(fired_commits(&t)[3..], *std::slice::from_ref(&rewritten));
    // And pushing the old tip back fires nothing again (it was fired already).
    let old_tip = pushed[2].clone();
    ok(&t, "repo", &[], &["reset", "--hard", &old_tip]);
    ok(&t, "repo", &[], &["push", "--force"]);
    let r = ok(&t, "mirror", &[], &watch);
    assert!(r.stderr.contains("already fired"), "{r}");
    assert_eq!(fired(&t).len(), 4, "{r}");
}

#[test]
fn long_running_watch_survives_kill_9_and_stops_on_sigterm() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let exec = exec_hook(&t);
    let args = ["watch", "origin", "--interval", "0.2", "--exec", &exec];
    let mut w = spawn(&t, "mirror", &[], &args, "watch1.log");
    let mut pushed: Vec<String> = (1..=2).map(|n| label_commit(&t, n, &[])).collect();
    ok(&t, "repo", &[], &["push"]);
    // Both delivered and marked done (the watch prints an attempt after recording it):
    // a kill during an attempt would run that attempt again, which is at-least-once
    // delivery, not what this test is about.
    let log1 = t.home().join("watch1.log");
    wait_until(
        "the running watch to deliver 2 commits",
        Duration::from_secs(60),
        || std::fs::read_to_string(&log1).is_ok_and(|l| l.matches("exit status 0").count() >= 2),
    );
    assert_eq!(fired(&t).len(), 2);
    // A metadata-only mirror fetches the changed label file: the full summary.
    let p = payload(&t, &pushed[0]);
    assert_eq!(p["summary"]["partial"], false, "{p}");
    assert_eq!(p["summary"]["files_changed"], 1, "{p}");
    assert_eq!(p["summary"]["labels_changed"], true, "{p}");

    // kill -9 while idle, push more while it is down, start again.
    w.kill().unwrap();
    w.wait().unwrap();
    pushed.extend((3..=4).map(|n| label_commit(&t, n, &[])));
    ok(&t, "repo", &[], &["push"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fired(&t).len(),
        2,
        "something fired while the watch was down"
    );
    let mut w = spawn(&t, "mirror", &[], &args, "watch2.log");
    wait_until(
        "the restarted watch to fire 2 more",
        Duration::from_secs(60),
        || fired(&t).len() >= 4,
    );
    // One more while it runs.
    pushed.push(label_commit(&t, 5, &[]));
    ok(&t, "repo", &[], &["push"]);
    wait_until(
        "the watch to fire the fifth",
        Duration::from_secs(60),
        || fired(&t).len() >= 5,
    );
    // SIGTERM: a clean stop.
    let pid = w.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let st = w.wait().unwrap();
    let log = std::fs::read_to_string(t.home().join("watch2.log")).unwrap();
    assert!(st.success(), "watch exited with {st} on SIGTERM:\n{log}");
    assert!(log.contains("watch stopped"), "{log}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fired_commits(&t), pushed, "nothing repeated or skipped");
    let r = ok(
        &t,
        "mirror",
        &[],
        &["watch", "origin", "--once", "--exec", &exec],
    );
    assert!(!r.stderr.contains("new commit"), "{r}");
    assert_eq!(fired_commits(&t), pushed);
    // SIGINT (Ctrl-C) stops it cleanly too.
    let mut w = spawn(&t, "mirror", &[], &args, "watch3.log");
    let log = t.home().join("watch3.log");
    wait_until("the watch to start", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Ctrl-C stops"))
    });
    let pid = w.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let st = w.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(st.success(), "watch exited with {st} on SIGINT:\n{text}");
    assert!(text.contains("watch stopped"), "{text}");
}

#[test]
fn watch_killed_at_any_moment_records_each_commit_exactly_once() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let exec = exec_hook(&t);
    let args = ["watch", "origin", "--once", "--exec", &exec];
    ok(&t, "mirror", &[], &args);
    let mut pushed = Vec::new();
    for (round, delay_ms) in [0u64, 15, 40, 80, 150, 300].into_iter().enumerate() {
        pushed.push(label_commit(&t, round + 1, &[]));
        pushed.push(label_commit(&t, round + 101, &[]));
        ok(&t, "repo", &[], &["push"]);
        let mut w = spawn(&t, "mirror", &[], &args, "killed.log");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = w.kill();
        w.wait().unwrap();
    }
    ok(&t, "mirror", &[], &args);
    // The outbox holds exactly one delivery per commit, in commit order, all done.
    let log = deliveries(&t, "mirror");
    let recorded: Vec<&str> = log.iter().map(|d| d["commit"].as_str().unwrap()).collect();
    assert_eq!(recorded, pushed, "each commit recorded once, in order");
    assert!(log.iter().all(|d| d["state"] == "done"), "{log:?}");
    // A command cut short by the kill may have run twice (at least once, like
    // every delivery), but never out of order and never skipped.
    let mut first_seen = Vec::new();
    let mut seen = HashSet::new();
    for c in fired_commits(&t) {
        if seen.insert(c.clone()) {
            first_seen.push(c);
        }
    }
    assert_eq!(first_seen, pushed);
}

/// One request: headers (lower-case names), body, the status answered.
type Seen = (BTreeMap<String, String>, Vec<u8>, u16);

/// A loopback HTTP receiver that answers 500 to the first `fail` requests, then 200.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn start(fail: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let Some((headers, body)) = read_request(&mut conn) else {
                    continue;
                };
                let status: u16 = if n < fail { 500 } else { 200 };
                log.lock().unwrap().push((headers, body, status));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, seen }
    }
}

#[test]
fn s3_remote_webhook_that_fails_first_gets_each_commit_once_in_order_signed() {
    let moto = Moto::start("watch");
    let mut env = moto.env();
    env.push(("DSV_TEST_SECRET", SECRET.to_string()));
    env.push(("DSV_HOOKS_BACKOFF_MS", "50".to_string()));
    let t = TestRepo::init();
    let url = moto.url("team/ds");
    source(&t, &url, &env);
    ok(&t, ".", &env, &["clone", "--no-checkout", &url, "mirror"]);
    let rx = Receiver::start(2);
    let watch = [
        "watch",
        "origin",
        "--once",
        "--webhook",
        &rx.url,
        "--secret-env",
        "DSV_TEST_SECRET",
    ];
    ok(&t, "mirror", &env, &watch);
    assert!(rx.seen.lock().unwrap().is_empty());
    let pushed: Vec<String> = (1..=3).map(|n| label_commit(&t, n, &env)).collect();
    ok(&t, "repo", &env, &["push"]);
    let r = ok(&t, "mirror", &env, &watch);
    assert!(r.stderr.contains("will be retried"), "{r}");
    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "two refusals, then one request per commit");
    let mut keys = HashSet::new();
    let accepted: Vec<_> = seen
        .iter()
        .filter(|(h, _, s)| *s == 200 && keys.insert(h["idempotency-key"].clone()))
        .collect();
    assert_eq!(accepted.len(), 3);
    for ((h, body, _), c) in accepted.iter().zip(&pushed) {
        assert_eq!(h["x-dsv-event"], "remote-commit");
        assert_eq!(h["idempotency-key"], format!("watch:origin:{c}"));
        assert_eq!(
            h["x-dsv-signature-256"],
            signature(SECRET, body),
            "bad signature"
        );
        let p: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(p["commit"], c.as_str());
        assert_eq!(p["remote"]["url"], url.as_str());
    }
    // The refused requests were retries of the first commit, not skipped commits.
    assert!(
        seen[..3]
            .iter()
            .all(|(h, _, _)| h["idempotency-key"] == format!("watch:origin:{}", pushed[0]))
    );
    // Again: nothing.
    ok(&t, "mirror", &env, &watch);
    assert_eq!(rx.seen.lock().unwrap().len(), 5);
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_with_bytes(dir, |_| false)
}

#[test]
fn pre_push_rejection_sends_nothing_and_post_push_is_delivered_once() {
    let t = TestRepo::init();
    let remote = t.home().join("remote.dsv");
    let url = remote.display().to_string();
    source(&t, &url, &[]);
    let old = branch_tip(&t, "repo", "main");
    let out = t.home().join("post-push.json");
    write_file(
        t.root(),
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"gate\"\nevent = \"pre-push\"\nrun = \"echo checking $DSV_COMMIT for $DSV_BRANCH; test -e {gate} || {{ echo not allowed >&2; exit 3; }}\"\n\n\
             [[hooks]]\nid = \"after\"\nevent = \"post-push\"\nrun = \"cat >> {out}\"\n",
            gate = t.home().join("allow").display(),
            out = out.display()
        ),
    );
    let new = label_commit(&t, 1, &[]);
    let fg = [("DSV_HOOKS_FOREGROUND", "1".to_string())];
    let before = tree(&remote);
    let tracking_before = std::fs::read(t.path(".dsv/refs/remotes/origin/main")).unwrap();
    let r = dsv(&t, "repo", &fg, &["push"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("pre-push hook 'gate' failed (exit status 3)"),
        "{r}"
    );
    assert!(
        r.stderr.contains(&format!("checking {new} for main")),
        "hook output not shown:\n{r}"
    );
    assert!(r.stderr.contains("not allowed"), "{r}");
    assert_eq!(tree(&remote), before, "a rejected push changed the remote");
    assert_eq!(
        std::fs::read(t.path(".dsv/refs/remotes/origin/main")).unwrap(),
        tracking_before
    );
    assert!(!out.exists(), "post-push fired for a rejected push");

    std::fs::write(t.home().join("allow"), "").unwrap();
    let r = ok(&t, "repo", &fg, &["push"]);
    assert!(
        r.stderr.contains("pre-push hook 'gate': exit status 0"),
        "{r}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 1, "post-push delivered once:\n{text}");
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["event"], "post-push");
    assert_eq!(p["commit"], new.as_str());
    assert_eq!(p["branch"], "main");
    assert_eq!(p["previous"], old.as_str());
    assert_eq!(p["remote"]["name"], "origin");
    assert_eq!(p["summary"]["base"], old.as_str());
    // Up to date: no hook runs.
    let r = ok(&t, "repo", &fg, &["push"]);
    assert!(!r.stderr.contains("pre-push hook"), "{r}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
    let log = deliveries(&t, "repo");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["state"], "done");
}

#[test]
fn watch_runs_the_example_retrain_script_in_a_metadata_only_mirror() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retrain/retrain.sh");
    let models = t.home().join("models");
    let env = [
        (
            "DSV",
            assert_cmd::cargo::cargo_bin("dsv").display().to_string(),
        ),
        ("RETRAIN_DIR", models.display().to_string()),
    ];
    let exec = format!("'{}'", script.display());
    let watch = ["watch", "origin", "--once", "--exec", &exec];
    ok(&t, "mirror", &env, &watch);
    let commit = label_commit(&t, 2, &[]);
    ok(&t, "repo", &[], &["push"]);
    let r = ok(&t, "mirror", &env, &watch);
    assert!(
        r.stderr
            .contains(&format!("materialized 2 files of {commit}")),
        "{r}"
    );
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models.join(&commit).join("model.json")).unwrap())
            .unwrap();
    assert_eq!(model["boxes"], 3, "{model}");
    assert_eq!(
        std::fs::read(models.join(&commit).join("data/labels/f0.txt")).unwrap(),
        std::fs::read(t.path("labels/f0.txt")).unwrap()
    );
}

#[test]
fn from_start_fires_the_whole_history_of_a_new_branch() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    let first = branch_tip(&t, "repo", "main");
    let second = label_commit(&t, 1, &[]);
    ok(&t, "repo", &[], &["push"]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let exec = exec_hook(&t);
    let r = ok(
        &t,
        "mirror",
        &[],
        &["watch", "origin", "--once", "--from-start", "--exec", &exec],
    );
    assert!(r.stderr.contains("2 new commits"), "{r}");
    assert_eq!(fired_commits(&t), [first.clone(), second.clone()]);
    let p = payload(&t, &first);
    assert_eq!(p["previous"], serde_json::Value::Null);
    assert_eq!(p["summary"]["base"], serde_json::Value::Null);
    // The cursor is set now: --from-start changes nothing for a branch already watched.
    ok(
        &t,
        "mirror",
        &[],
        &["watch", "origin", "--once", "--from-start", "--exec", &exec],
    );
    assert_eq!(fired_commits(&t).len(), 2);
}

#[test]
fn once_exits_1_while_a_failed_delivery_holds_back_later_commits() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let down = t.home().join("down");
    std::fs::write(&down, "").unwrap();
    let exec = format!("test ! -e {} || exit 1; {}", down.display(), exec_hook(&t));
    let env = [
        ("DSV_HOOKS_MAX_ATTEMPTS", "2".to_string()),
        ("DSV_HOOKS_BACKOFF_MS", "20".to_string()),
    ];
    let watch = ["watch", "origin", "--once", "--exec", &exec];
    ok(&t, "mirror", &env, &watch);
    let pushed: Vec<String> = (1..=2).map(|n| label_commit(&t, n, &[])).collect();
    ok(&t, "repo", &[], &["push"]);
    let r = dsv(&t, "mirror", &env, &watch);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("2 deliveries not delivered"), "{r}");
    assert!(r.stderr.contains("gave up"), "{r}");
    // Only the first commit was tried: the second waits behind it.
    let log = deliveries(&t, "mirror");
    assert_eq!(log[0]["state"], "failed");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[1]["state"], "pending");
    assert_eq!(log[1]["attempts"], 0);
    let r = dsv(&t, "mirror", &env, &watch);
    assert_eq!(r.code, 1, "{r}");
    // The receiver is back: `dsv hooks retry` delivers both, in order.
    std::fs::remove_file(&down).unwrap();
    let fg = [("DSV_HOOKS_FOREGROUND", "1".to_string())];
    ok(&t, "mirror", &fg, &["hooks", "retry"]);
    assert_eq!(fired_commits(&t), pushed);
    ok(&t, "mirror", &env, &watch);
    assert_eq!(fired_commits(&t), pushed);
}

#[test]
fn a_delivery_that_cannot_succeed_is_skipped_and_no_longer_blocks_the_mirror() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let env = [
        ("DSV_HOOKS_MAX_ATTEMPTS", "1".to_string()),
        ("DSV_HOOKS_BACKOFF_MS", "20".to_string()),
    ];
    ok(
        &t,
        "mirror",
        &env,
        &["watch", "origin", "--once", "--exec", "exit 3"],
    );
    let first = label_commit(&t, 1, &[]);
    ok(&t, "repo", &[], &["push"]);
    // A broken command: its delivery fails, and retrying re-runs the same command.
    let r = dsv(
        &t,
        "mirror",
        &env,
        &["watch", "origin", "--once", "--exec", "exit 3"],
    );
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("dsv hooks skip ID"), "{r}");
    // The command is fixed, but the failed delivery holds back the next commit.
    let exec = exec_hook(&t);
    let watch = ["watch", "origin", "--once", "--exec", &exec];
    let second = label_commit(&t, 2, &[]);
    ok(&t, "repo", &[], &["push"]);
    let r = dsv(&t, "mirror", &env, &watch);
    assert_eq!(r.code, 1, "{r}");
    assert!(fired_commits(&t).is_empty());
    let status = ok(&t, "mirror", &[], &["hooks", "status"]).stdout;
    assert!(status.contains("dsv hooks skip ID"), "{status}");
    // Give up the first commit's delivery: the second goes out.
    let log = deliveries(&t, "mirror");
    assert_eq!(log[0]["commit"], first.as_str());
    let seq = log[0]["seq"].to_string();
    let fg = [("DSV_HOOKS_FOREGROUND", "1".to_string())];
    let r = ok(&t, "mirror", &fg, &["hooks", "skip", &seq]);
    assert!(r.stderr.contains(&format!("skipped #{seq}")), "{r}");
    assert_eq!(fired_commits(&t), std::slice::from_ref(&second));
    let log = deliveries(&t, "mirror");
    assert_eq!(log[0]["state"], "skipped");
    ok(&t, "mirror", &env, &watch);
    assert_eq!(fired_commits(&t), [second]);
    let status = ok(&t, "mirror", &[], &["hooks", "status"]).stdout;
    assert!(status.contains("nothing pending"), "{status}");
    // A delivered one cannot be skipped; an unknown one is named.
    let r = dsv(&t, "mirror", &[], &["hooks", "skip", "999"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("no delivery '999'"), "{r}");
}

/// Bytes under `dir`, recursively.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

/// The case of issue 17.12: a retraining trigger wants only the commits that change
/// labels (or paths under a prefix), and a `--no-checkout` mirror gave it a payload
/// with `partial: true` and every object count 0.
#[test]
fn watch_filters_by_labels_changed_and_paths_with_the_label_summary_in_a_no_checkout_mirror() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let exec = exec_hook(&t);
    let labels = [
        "watch",
        "origin",
        "--once",
        "--labels-changed",
        "--exec",
        &exec,
    ];
    ok(&t, "mirror", &[], &labels);
    // A frame only (2 MB that do not compress), a relabel, a document.
    write_file(
        t.root(),
        "images/f1.jpg",
        common::pseudo_random_bytes(2 << 20, 7),
    );
    ok(&t, "repo", &[], &["add", "-A"]);
    ok(&t, "repo", &[], &["commit", "-m", "a frame"]);
    let relabel = label_commit(&t, 1, &[]);
    write_file(t.root(), "docs/notes.txt", "how the labels were made");
    ok(&t, "repo", &[], &["add", "-A"]);
    ok(&t, "repo", &[], &["commit", "-m", "notes"]);
    let notes = branch_tip(&t, "repo", "main");
    ok(&t, "repo", &[], &["push"]);
    let r = ok(&t, "mirror", &[], &labels);
    assert_eq!(fired_commits(&t), std::slice::from_ref(&relabel), "{r}");
    assert!(
        r.stderr.contains("2 left out by --paths/--labels-changed"),
        "{r}"
    );
    let p = payload(&t, &relabel);
    assert_eq!(p["summary"]["partial"], false, "{p}");
    assert_eq!(p["summary"]["labels_changed"], true, "{p}");
    assert_eq!(p["summary"]["label_files_changed"], 1, "{p}");
    assert!(
        p["summary"]["objects"]["added"].as_u64().unwrap() >= 1,
        "{p}"
    );
    // The label files came, the frame did not.
    let size = du(&t.home().join("mirror/.dsv"));
    assert!(size < 1 << 20, "the mirror holds {size} bytes");
    // --paths, in a second mirror, over the whole history.
    std::fs::remove_file(t.home().join("fired.txt")).unwrap();
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror2"]);
    let docs = [
        "watch",
        "origin",
        "--once",
        "--from-start",
        "--paths",
        "docs/**",
        "--exec",
        &exec,
    ];
    let r = ok(&t, "mirror2", &[], &docs);
    assert_eq!(fired_commits(&t), [notes], "{r}");
}

/// The case of issue 16 (watch): a delivery that failed for a bad commit on one
/// branch held back the deliveries of every other branch, and the watch did not
/// say that deliveries were blocked.
#[test]
fn a_failed_delivery_on_one_branch_does_not_hold_back_other_branches() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    source(&t, &url, &[]);
    ok(&t, "repo", &[], &["branch", "bad"]);
    ok(&t, "repo", &[], &["push", "origin", "bad"]);
    ok(&t, ".", &[], &["clone", "--no-checkout", &url, "mirror"]);
    let env = [
        ("DSV_HOOKS_MAX_ATTEMPTS", "1".to_string()),
        ("DSV_HOOKS_BACKOFF_MS", "20".to_string()),
    ];
    let exec = format!("[ \"$DSV_BRANCH\" != bad ] || exit 3; {}", exec_hook(&t));
    let watch = ["watch", "origin", "--once", "--exec", &exec];
    ok(&t, "mirror", &env, &watch);
    // A commit on `bad` (its delivery fails), then two on `main`.
    ok(&t, "repo", &[], &["switch", "bad"]);
    write_file(t.root(), "labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    ok(&t, "repo", &[], &["commit", "-a", "-m", "bad labels"]);
    ok(&t, "repo", &[], &["push", "origin", "bad"]);
    ok(&t, "repo", &[], &["switch", "main"]);
    let good: Vec<String> = (1..=2).map(|n| label_commit(&t, n, &[])).collect();
    ok(&t, "repo", &[], &["push"]);
    let r = dsv(&t, "mirror", &env, &watch);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(fired_commits(&t), good, "{r}");
    assert!(
        r.stderr.contains("deliveries for origin/bad are blocked"),
        "{r}"
    );
    assert!(r.stderr.contains("exit status 3"), "{r}");
    assert!(r.stderr.contains("other branches are not held back"), "{r}");
    // The next commit on main goes out too, while bad's still waits.
    let third = label_commit(&t, 3, &[]);
    ok(&t, "repo", &[], &["push"]);
    let r = dsv(&t, "mirror", &env, &watch);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(fired_commits(&t).last(), Some(&third), "{r}");
    let log = deliveries(&t, "mirror");
    let bad: Vec<_> = log.iter().filter(|d| d["branch"] == "bad").collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["state"], "failed");
}
