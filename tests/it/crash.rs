//! Crash safety, full disks and concurrent writers, driven through the real `dsv`
//! binary.
//!
//! `DSV_FAULT=kill:N` makes dsv SIGKILL itself at its N-th write operation and
//! `DSV_FAULT=fail:N` makes that write fail with ENOSPC (see `src/storage.rs`).
//! For every N until the command completes, a fresh copy of a prepared repository
//! is crashed (or filled up) at write N and then checked: fsck is clean, HEAD and
//! the index are the old or the new state, and re-running the command gives
//! exactly the result of a run that was never interrupted.
//!
//! Helpers are local to this file (tests/it/common is shared with other suites).

use crate::common;

use common::{Node, copy_dir, pseudo_random_bytes as pseudo_random, write_file as write};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Running dsv
// ---------------------------------------------------------------------------

thread_local! {
    /// Variables every dsv run of this thread gets (an S3 endpoint's credentials).
    static EXTRA_ENV: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn set_thread_env(env: &[(String, String)]) {
    EXTRA_ENV.with(|e| *e.borrow_mut() = env.to_vec());
}

/// The outcome of one dsv run.
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
    fn killed(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }
    fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A `dsv` command with a hermetic environment (fixed author and date, no colour,
/// `HOME` inside the test's temporary directory, no inherited DSV_*/GIT_* variables).
fn dsv_cmd(home: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dsv"));
    EXTRA_ENV.with(|e| {
        for (k, v) in e.borrow().iter() {
            cmd.env(k, v);
        }
    });
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("DSV_") || k.starts_with("GIT_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .args(args)
        .env("DSV_AUTHOR_NAME", "Crash Tester")
        .env("DSV_AUTHOR_EMAIL", "crash@example.com")
        .env("DSV_AUTHOR_DATE", "1700000000")
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

fn run_env(home: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = dsv_cmd(home, dir, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running dsv");
    Out {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(home: &Path, dir: &Path, args: &[&str]) -> Out {
    run_env(home, dir, args, &[])
}

/// Runs dsv and insists on exit code 0.
fn ok(home: &Path, dir: &Path, args: &[&str]) -> Out {
    let out = run(home, dir, args);
    assert_eq!(
        out.code(),
        Some(0),
        "dsv {args:?} in {} failed\n{}",
        dir.display(),
        out.describe()
    );
    out
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// Every file and symlink of the worktree, `.dsv` and dsv's temporary files left out.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    common::nodes(root, |rel| rel == ".dsv" || rel.contains(".dsv-tmp-"))
}

// ---------------------------------------------------------------------------
// Repository state
// ---------------------------------------------------------------------------

/// HEAD, its tree and the index, read with commands that never write.
#[derive(Debug, Clone, PartialEq)]
struct RepoState {
    head: Option<String>,
    tree: String,
    /// path -> (mode, id), reconstructed as HEAD's tree plus the staged changes.
    index: BTreeMap<String, (String, String)>,
}

fn capture(home: &Path, dir: &Path) -> RepoState {
    let log = ok(home, dir, &["log", "--json", "-n", "1"]);
    let log: serde_json::Value = serde_json::from_str(&log.stdout).expect("log --json");
    let head = log[0]["id"].as_str().map(str::to_string);
    let tree = ok(home, dir, &["ls-tree", "-r", "HEAD"]).stdout;
    let mut index = BTreeMap::new();
    for line in tree.lines() {
        let (meta, path) = line.split_once('\t').expect("ls-tree line");
        let mut it = meta.split_whitespace();
        let mode = it.next().unwrap().to_string();
        let id = it.next().unwrap().to_string();
        index.insert(path.to_string(), (mode, id));
    }
    let staged = ok(home, dir, &["diff", "--staged", "--json", "--no-labels"]).stdout;
    let staged: serde_json::Value = serde_json::from_str(&staged).expect("diff --json");
    for ch in staged["files"].as_array().expect("files") {
        let path = ch["path"].as_str().unwrap().to_string();
        if let Some(from) = ch["from"].as_str() {
            index.remove(from);
        }
        match ch["new"].as_object() {
            Some(new) => {
                let mode = new["mode"].as_str().unwrap().to_string();
                let id = new["id"].as_str().unwrap().to_string();
                index.insert(path, (mode, id));
            }
            None => {
                index.remove(&path);
            }
        }
    }
    RepoState { head, tree, index }
}

/// `dsv status --json` (which may also refresh the index: it opens the repository for writing).
fn status_json(home: &Path, dir: &Path) -> serde_json::Value {
    let out = ok(home, dir, &["status", "--json"]).stdout;
    serde_json::from_str(&out).expect("status --json")
}

fn fsck_clean(home: &Path, dir: &Path, what: &str) {
    let out = run(home, dir, &["fsck"]);
    assert_eq!(
        out.code(),
        Some(0),
        "{what}: fsck is not clean\n{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Changes the index only.
    Add,
    /// Writes objects and moves the branch.
    Commit,
    /// Rewrites the worktree and the index, then moves HEAD (switch, reset --hard).
    Checkout,
    /// Repacks; nothing a user sees changes.
    Gc,
}

struct Scenario {
    name: &'static str,
    repo: PathBuf,
    args: Vec<&'static str>,
    kind: Kind,
}

/// Builds the prepared repositories under `base`:
/// `add` (unstaged edits on top of a first commit), `commit` (the edits staged),
/// `two` (a second commit, branch `b` at the first), and `gc` (a separate small
/// repository with an unreachable object).
fn prepare(home: &Path, base: &Path) -> Vec<Scenario> {
    let r = base.join("add");
    std::fs::create_dir_all(&r).unwrap();
    ok(home, &r, &["init", "-q"]);
    for i in 0..8 {
        write(&r, &format!("labels/f{i}.txt"), format!("label file {i}\n"));
    }
    write(&r, "frames/a.raw", pseudo_random(40_000, 1));
    write(&r, "frames/b.raw", pseudo_random(30_000, 2));
    // Over 1 MiB: stored as content-defined chunks.
    write(&r, "big.bin", pseudo_random(1_500_000, 3));
    write(&r, "run.sh", "#!/bin/sh\necho run\n");
    std::fs::set_permissions(r.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("labels/f0.txt", r.join("latest")).unwrap();
    ok(home, &r, &["add", "-A"]);
    ok(home, &r, &["commit", "-q", "-m", "first"]);
    // Unstaged edits: modify, delete, add, a new directory, an edit inside the big file.
    write(&r, "labels/f1.txt", "label file 1, relabelled\n");
    std::fs::remove_file(r.join("labels/f2.txt")).unwrap();
    write(&r, "labels/new.txt", "a new label\n");
    write(&r, "extra/n.raw", pseudo_random(20_000, 4));
    let mut big = std::fs::read(r.join("big.bin")).unwrap();
    big[700_000..700_100].copy_from_slice(&pseudo_random(100, 5));
    big.extend_from_slice(&pseudo_random(200_000, 6));
    write(&r, "big.bin", &big);

    let c = base.join("commit");
    copy_dir(&r, &c);
    ok(home, &c, &["add", "-A"]);

    let two = base.join("two");
    copy_dir(&c, &two);
    ok(home, &two, &["commit", "-q", "-m", "second"]);
    ok(home, &two, &["branch", "b", "HEAD~1"]);

    // gc copies every live record: a smaller repository keeps the number of writes moderate.
    let g = base.join("gc");
    std::fs::create_dir_all(&g).unwrap();
    ok(home, &g, &["init", "-q"]);
    for i in 0..4 {
        write(&g, &format!("labels/f{i}.txt"), format!("label file {i}\n"));
    }
    write(&g, "big.bin", pseudo_random(1_100_000, 9));
    ok(home, &g, &["add", "-A"]);
    ok(home, &g, &["commit", "-q", "-m", "first"]);
    write(&g, "junk.bin", pseudo_random(300_000, 7));
    ok(home, &g, &["add", "-A"]);
    // The first junk.bin is now referenced by nothing: garbage for gc.
    write(&g, "junk.bin", pseudo_random(300_000, 8));
    ok(home, &g, &["add", "-A"]);
    ok(home, &g, &["commit", "-q", "-m", "third"]);

    vec![
        Scenario {
            name: "add -A",
            repo: r,
            args: vec!["add", "-A"],
            kind: Kind::Add,
        },
        Scenario {
            name: "commit",
            repo: c,
            args: vec!["commit", "-m", "second"],
            kind: Kind::Commit,
        },
        Scenario {
            name: "switch",
            repo: two.clone(),
            args: vec!["switch", "b"],
            kind: Kind::Checkout,
        },
        Scenario {
            name: "reset --hard",
            repo: two,
            args: vec!["reset", "--hard", "b"],
            kind: Kind::Checkout,
        },
        Scenario {
            name: "gc",
            repo: g,
            args: vec!["gc"],
            kind: Kind::Gc,
        },
    ]
}

/// The state before and after an uninterrupted run of a scenario.
struct Expect {
    before: RepoState,
    before_files: BTreeMap<String, Node>,
    after: RepoState,
    after_files: BTreeMap<String, Node>,
    before_status: serde_json::Value,
    after_status: serde_json::Value,
}

fn expectations(home: &Path, scratch: &Path, sc: &Scenario) -> Expect {
    let w = scratch.join("reference");
    copy_dir(&sc.repo, &w);
    let before = capture(home, &w);
    let before_files = snapshot(&w);
    let before_status = status_json(home, &w);
    ok(home, &w, &sc.args);
    let after = capture(home, &w);
    let after_files = snapshot(&w);
    let after_status = status_json(home, &w);
    fsck_clean(home, &w, sc.name);
    std::fs::remove_dir_all(&w).unwrap();
    match sc.kind {
        Kind::Add => assert_ne!(before.index, after.index, "{}: no-op scenario", sc.name),
        Kind::Commit | Kind::Checkout => {
            assert_ne!(before.head, after.head, "{}: no-op scenario", sc.name)
        }
        Kind::Gc => {
            assert_eq!(before, after, "gc changed what users see");
            assert_eq!(before_status, after_status, "gc changed status");
        }
    }
    Expect {
        before,
        before_files,
        after,
        after_files,
        before_status,
        after_status,
    }
}

/// Every worktree file is either its old or its new version (files are replaced by rename).
fn assert_files_old_or_new(ctx: &str, exp: &Expect, files: &BTreeMap<String, Node>) {
    let paths: BTreeSet<&String> = exp
        .before_files
        .keys()
        .chain(exp.after_files.keys())
        .chain(files.keys())
        .collect();
    for p in paths {
        let now = files.get(p);
        assert!(
            now == exp.before_files.get(p) || now == exp.after_files.get(p),
            "{ctx}: '{p}' is neither its old nor its new version"
        );
    }
}

/// After an interrupted run and a re-run: exactly the uninterrupted result.
fn assert_final(ctx: &str, home: &Path, w: &Path, exp: &Expect) {
    let fin = capture(home, w);
    assert_eq!(
        fin, exp.after,
        "{ctx}: final state differs from an uninterrupted run"
    );
    assert!(
        snapshot(w) == exp.after_files,
        "{ctx}: final worktree differs from an uninterrupted run"
    );
    assert_eq!(
        status_json(home, w),
        exp.after_status,
        "{ctx}: final status differs from an uninterrupted run"
    );
    fsck_clean(home, w, ctx);
}

fn rerun(ctx: &str, home: &Path, w: &Path, sc: &Scenario, exp: &Expect, state: &RepoState) {
    if sc.kind == Kind::Commit && state.head == exp.after.head {
        // The commit landed before the crash: there is nothing left to commit.
        let out = run(home, w, &sc.args);
        assert!(
            out.code() == Some(1) && out.stderr.contains("nothing to commit"),
            "{ctx}: re-run after a completed commit\n{}",
            out.describe()
        );
    } else {
        let out = run(home, w, &sc.args);
        assert_eq!(
            out.code(),
            Some(0),
            "{ctx}: re-running after the interruption failed\n{}",
            out.describe()
        );
    }
}

/// Kills the command at every write; returns how many kill points there were.
fn kill_every_write(home: &Path, scratch: &Path, sc: &Scenario) -> u64 {
    let exp = expectations(home, scratch, sc);
    let mut kills = 0;
    for n in 1u64.. {
        assert!(n < 5000, "{}: never completed", sc.name);
        let ctx = format!("{} killed at write {n}", sc.name);
        let w = scratch.join(format!("kill-{n}"));
        copy_dir(&sc.repo, &w);
        let spec = format!("kill:{n}");
        let out = run_env(home, &w, &sc.args, &[("DSV_FAULT", &spec)]);
        if !out.killed() {
            assert_eq!(
                out.code(),
                Some(0),
                "{}: run with {spec} neither died nor succeeded\n{}",
                sc.name,
                out.describe()
            );
            assert_final(
                &format!("{} with {spec} (completed)", sc.name),
                home,
                &w,
                &exp,
            );
            std::fs::remove_dir_all(&w).unwrap();
            break;
        }
        kills += 1;
        fsck_clean(home, &w, &ctx);
        let st = capture(home, &w);
        assert!(
            st.head == exp.before.head || st.head == exp.after.head,
            "{ctx}: HEAD is {:?}, neither old {:?} nor new {:?}",
            st.head,
            exp.before.head,
            exp.after.head
        );
        assert!(
            st.index == exp.before.index || st.index == exp.after.index,
            "{ctx}: the index is neither the old nor the new one: {:#?}",
            st.index
        );
        let files = snapshot(&w);
        match sc.kind {
            // The worktree is not touched, so with HEAD and the index each old or new,
            // so is everything status reports.
            Kind::Add | Kind::Commit => {
                assert!(files == exp.before_files, "{ctx}: the worktree changed");
                let status = status_json(home, &w);
                assert!(
                    status == exp.before_status || status == exp.after_status,
                    "{ctx}: status is neither the old nor the new one: {status:#}"
                );
            }
            Kind::Gc => {
                assert_eq!(st, exp.before, "{ctx}: gc changed what users see");
                assert!(files == exp.before_files, "{ctx}: the worktree changed");
            }
            Kind::Checkout => assert_files_old_or_new(&ctx, &exp, &files),
        }
        rerun(&ctx, home, &w, sc, &exp, &st);
        assert_final(&ctx, home, &w, &exp);
        std::fs::remove_dir_all(&w).unwrap();
    }
    kills
}

/// Fails the command's N-th write with ENOSPC for every N; returns how many
/// write points failed the command.
fn fail_every_write(home: &Path, scratch: &Path, sc: &Scenario) -> u64 {
    let exp = expectations(home, scratch, sc);
    let mut failures = 0;
    // A write point after which the new state was visible although the command
    // reported an error (see below); allowed only for the very last one.
    let mut changed_at: Option<u64> = None;
    for n in 1u64.. {
        assert!(n < 5000, "{}: never completed", sc.name);
        let ctx = format!("{} with write {n} failing", sc.name);
        let w = scratch.join(format!("fail-{n}"));
        copy_dir(&sc.repo, &w);
        let spec = format!("fail:{n}");
        // One worker thread makes the sequence of writes the same in every run, so
        // "write N was the last one" means the same thing from one run to the next.
        // (The kill test keeps all threads: it does not compare runs.)
        let out = run_env(
            home,
            &w,
            &sc.args,
            &[("DSV_FAULT", &spec), ("RAYON_NUM_THREADS", "1")],
        );
        assert!(
            !out.stderr.contains("panicked"),
            "{ctx}: panic\n{}",
            out.describe()
        );
        if out.code() == Some(0) {
            if let Some(m) = changed_at {
                assert_eq!(
                    m + 1,
                    n,
                    "{}: state changed at failing write {m}, which was not the last",
                    sc.name
                );
            }
            assert_final(
                &format!("{} with {spec} (completed)", sc.name),
                home,
                &w,
                &exp,
            );
            std::fs::remove_dir_all(&w).unwrap();
            break;
        }
        failures += 1;
        assert_eq!(
            out.code(),
            Some(1),
            "{ctx}: exit status\n{}",
            out.describe()
        );
        let err = out.stderr.trim_end();
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{ctx}: expected a one-line error\n{}",
            out.describe()
        );
        if let Some(m) = changed_at {
            panic!(
                "{}: the repository changed although the command failed at write {m}, and write {n} still failed",
                sc.name
            );
        }
        fsck_clean(home, &w, &ctx);
        let st = capture(home, &w);
        match sc.kind {
            Kind::Add | Kind::Commit | Kind::Gc => {
                let status = status_json(home, &w);
                if st != exp.before || status != exp.before_status {
                    // The one ambiguous point of any transaction: the final fsync of
                    // the last database commit. Its data is already written, so the
                    // new state is visible although the error is reported. Anything
                    // earlier must leave the repository exactly as it was.
                    assert_eq!(
                        st, exp.after,
                        "{ctx}: repository is neither unchanged nor the completed result"
                    );
                    assert_eq!(status, exp.after_status, "{ctx}: status");
                    eprintln!("{ctx}: error reported after the last commit was written");
                    changed_at = Some(n);
                }
                assert!(
                    snapshot(&w) == exp.before_files,
                    "{ctx}: the worktree changed"
                );
            }
            Kind::Checkout => {
                // Files are written one by one (each atomically): a full disk can stop
                // a checkout halfway, but HEAD only moves once everything is in place.
                assert_eq!(st.head, exp.before.head, "{ctx}: HEAD moved");
                assert_files_old_or_new(&ctx, &exp, &snapshot(&w));
            }
        }
        rerun(&ctx, home, &w, sc, &exp, &st);
        assert_final(&ctx, home, &w, &exp);
        std::fs::remove_dir_all(&w).unwrap();
    }
    failures
}

type Runner = fn(&Path, &Path, &Scenario) -> u64;

/// Runs every scenario in its own thread; returns (name, count) pairs.
fn run_scenarios(runner: Runner) -> Vec<(&'static str, u64)> {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let scenarios = prepare(&home, &tmp.path().join("prepared"));
    let counts: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (i, sc) in scenarios.iter().enumerate() {
            let scratch = tmp.path().join(format!("scratch-{i}"));
            std::fs::create_dir_all(&scratch).unwrap();
            let home = &home;
            let counts = &counts;
            s.spawn(move || {
                let n = runner(home, &scratch, sc);
                counts.lock().unwrap().push((sc.name, n));
            });
        }
    });
    let mut counts = counts.into_inner().unwrap();
    counts.sort();
    counts
}

fn count_of(counts: &[(&str, u64)], name: &str) -> u64 {
    counts
        .iter()
        .find(|(n, _)| *n == name)
        .map(|c| c.1)
        .unwrap()
}

#[test]
fn killed_at_every_write_point_recovers() {
    let counts = run_scenarios(kill_every_write);
    eprintln!("kill points: {counts:?}");
    for (name, n) in &counts {
        assert!(*n >= 10, "{name}: only {n} kill points");
    }
    let core = count_of(&counts, "add -A") + count_of(&counts, "commit");
    assert!(core >= 100, "add + commit have only {core} kill points");
}

#[test]
fn full_disk_at_every_write_point_changes_nothing() {
    let counts = run_scenarios(fail_every_write);
    eprintln!("failing write points: {counts:?}");
    for (name, n) in &counts {
        assert!(*n >= 5, "{name}: only {n} failing write points");
    }
}

// ---------------------------------------------------------------------------
// Concurrent writers
// ---------------------------------------------------------------------------

/// A repository with one commit and `mib` MiB of new, incompressible data to add.
fn big_tree(home: &Path, root: &Path, mib: usize) {
    std::fs::create_dir_all(root).unwrap();
    ok(home, root, &["init", "-q"]);
    write(root, "small.txt", "small\n");
    ok(home, root, &["add", "-A"]);
    ok(home, root, &["commit", "-q", "-m", "base"]);
    let block = pseudo_random(1 << 20, mib as u64);
    let mut data = Vec::with_capacity(mib << 20);
    for i in 0..mib {
        let mut b = block.clone();
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        // Shift blocks so chunks do not repeat.
        b.rotate_left(i * 4099 % (1 << 20));
        data.extend_from_slice(&b);
    }
    write(root, "data/big.bin", &data);
    for i in 0..300 {
        write(
            root,
            &format!("data/many/{i:04}.bin"),
            pseudo_random(3000, i + 100),
        );
    }
}

/// Waits until `child` has taken the repository lock (its pid is in `.dsv/lock`).
/// False if it exited first.
fn wait_for_lock(root: &Path, child: &mut std::process::Child) -> bool {
    let want = child.id().to_string();
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(root.join(".dsv/lock")).unwrap_or_default() == want {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "writer never took the lock"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn second_writer_fails_fast_naming_the_lock_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // If the first add finishes before the second writer even looks, retry bigger.
    for (attempt, mib) in [64usize, 160, 320].into_iter().enumerate() {
        let root = tmp.path().join(format!("repo-{attempt}"));
        big_tree(&home, &root, mib);
        let mut first = dsv_cmd(&home, &root, &["add", "-A"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = first.id();
        if !wait_for_lock(&root, &mut first) {
            continue;
        }
        let fast = [("DSV_LOCK_TIMEOUT_MS", "100")];
        let t = Instant::now();
        let commit = run_env(&home, &root, &["commit", "-m", "x"], &fast);
        let branch = run_env(&home, &root, &["branch", "b"], &fast);
        let elapsed = t.elapsed();
        let first_still_running = first.try_wait().unwrap().is_none();
        let first_out = first.wait_with_output().unwrap();
        assert!(
            first_out.status.success(),
            "first add failed: {}",
            String::from_utf8_lossy(&first_out.stderr)
        );
        if !first_still_running && (commit.code() == Some(0) || branch.code() == Some(0)) {
            // The first writer finished too early: inconclusive, try a bigger tree.
            continue;
        }
        let want = format!("repository is locked by pid {pid}");
        for (what, out) in [("commit", &commit), ("branch", &branch)] {
            assert_eq!(out.code(), Some(1), "{what}: {}", out.describe());
            assert!(
                out.stderr.contains(&want),
                "{what}: expected '{want}'\n{}",
                out.describe()
            );
            assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        }
        assert!(
            elapsed < Duration::from_secs(20),
            "the lock timeout was not honoured: {elapsed:?}"
        );
        fsck_clean(&home, &root, "after two writers");
        // Neither refused command left anything behind; the add is complete.
        let branches = ok(&home, &root, &["branch"]).stdout;
        assert!(!branches.lines().any(|l| l.trim() == "b"), "{branches}");
        assert_eq!(
            ok(&home, &root, &["log", "--oneline"])
                .stdout
                .lines()
                .count(),
            1
        );
        let st = capture(&home, &root);
        assert!(st.index.contains_key("data/big.bin"));
        assert_eq!(st.index.len(), 302);
        assert_eq!(
            status_json(&home, &root)["untracked"],
            serde_json::json!([])
        );
        return;
    }
    panic!("the first writer always finished before the second one tried");
}

#[test]
fn two_adds_of_different_files_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = tmp.path().join("repo");
    big_tree(&home, &root, 48);
    write(&root, "other.txt", "added by the second writer\n");
    let mut first = dsv_cmd(&home, &root, &["add", "data"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let held = wait_for_lock(&root, &mut first);
    let second = run_env(
        &home,
        &root,
        &["add", "other.txt"],
        &[("DSV_LOCK_TIMEOUT_MS", "120000")],
    );
    if held {
        // The second add could only get the lock once the first released it.
        assert!(
            first.try_wait().unwrap().is_some(),
            "second add finished while the first still held the lock"
        );
    }
    let first_out = first.wait_with_output().unwrap();
    assert!(
        first_out.status.success(),
        "first add failed: {}",
        String::from_utf8_lossy(&first_out.stderr)
    );
    assert_eq!(second.code(), Some(0), "{}", second.describe());
    fsck_clean(&home, &root, "after two adds");
    let st = capture(&home, &root);
    assert!(st.index.contains_key("data/big.bin"), "first add lost");
    assert!(st.index.contains_key("other.txt"), "second add lost");
    assert_eq!(st.index.len(), 303);
    assert_eq!(
        status_json(&home, &root)["untracked"],
        serde_json::json!([])
    );
}

// ---------------------------------------------------------------------------
// A file written to while it is added
// ---------------------------------------------------------------------------

#[test]
fn file_growing_during_add_is_refused_or_stored_as_one_version() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    ok(&home, &root, &["init", "-q"]);
    write(&root, "small.txt", "small\n");
    ok(&home, &root, &["add", "-A"]);
    ok(&home, &root, &["commit", "-q", "-m", "base"]);
    let before = capture(&home, &root);

    let big = root.join("growing.bin");
    let block = pseudo_random(1 << 20, 42);
    let mut data = Vec::with_capacity(50 << 20);
    for i in 0..50u64 {
        let mut b = block.clone();
        b[..8].copy_from_slice(&i.to_le_bytes());
        data.extend_from_slice(&b);
    }
    std::fs::write(&big, &data).unwrap();
    drop(data);

    let stop = AtomicBool::new(false);
    let lengths = Mutex::new(vec![50u64 << 20]);
    let out = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let chunk = pseudo_random(4096, 1000 + i);
                f.write_all(&chunk).unwrap();
                let len = f.metadata().unwrap().len();
                lengths.lock().unwrap().push(len);
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // Make sure the file is already being written when the add starts.
        while lengths.lock().unwrap().len() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let out = run(&home, &root, &["add", "-A"]);
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        out
    });
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    fsck_clean(&home, &root, "after adding a growing file");
    let lengths = lengths.into_inner().unwrap();
    let final_bytes = std::fs::read(&big).unwrap();
    let st = capture(&home, &root);
    match out.code() {
        Some(1) => {
            assert!(
                out.stderr.contains("changed while being added")
                    && out.stderr.contains("growing.bin"),
                "{}",
                out.describe()
            );
            // All or nothing: the index is untouched.
            assert_eq!(st.index, before.index);
            let status = status_json(&home, &root);
            assert_eq!(status["staged"], serde_json::json!([]));
            assert_eq!(status["untracked"], serde_json::json!(["growing.bin"]));
        }
        Some(0) => {
            // The add slipped in between two appends: what it stored must be exactly
            // one version of the file (a prefix the writer actually produced).
            let (_, id) = st
                .index
                .get("growing.bin")
                .expect("growing.bin staged")
                .clone();
            let stored = dsv_cmd(&home, &root, &["cat-object", "--raw", &id])
                .output()
                .unwrap();
            assert!(stored.status.success());
            let stored = stored.stdout;
            assert!(
                lengths.contains(&(stored.len() as u64)),
                "stored {} bytes, which the file never had",
                stored.len()
            );
            assert!(
                final_bytes.starts_with(&stored),
                "stored content is not a version of the file"
            );
        }
        _ => panic!("unexpected outcome\n{}", out.describe()),
    }
}

// ---------------------------------------------------------------------------
// Remotes, merges and gc: killed or failed at write points
// ---------------------------------------------------------------------------
//
// A *world* is a prepared directory: repositories side by side and, for the
// remote scenarios, a file remote (`remote.dsv`). Every run works on a fresh copy
// (remote URLs in `config.toml` are rewritten to the copy). After a kill or a
// failure at write N: `fsck` is clean in the repository the command ran in, `fsck
// --remote` is clean, HEAD, the index, the merge state and every remote branch are
// the old or the new ones, nothing blocks the next command, and re-running the
// command gives exactly the uninterrupted result (for remotes: a fresh clone of the
// remote is byte for byte what an uninterrupted run left).

/// A command run against a world.
struct NetScenario {
    name: &'static str,
    world: PathBuf,
    /// Where it runs, relative to the world.
    dir: &'static str,
    /// The repository whose state is checked (the clone's destination for clone).
    repo: &'static str,
    /// Arguments; `{W}` is replaced by the world copy's path.
    args: Vec<&'static str>,
}

/// Everything a user could observe of a world, read without writing.
#[derive(Debug, Clone, PartialEq)]
struct WorldState {
    /// HEAD, tree and index of the repository (None: no repository there).
    repo: Option<RepoState>,
    files: BTreeMap<String, Node>,
    /// `status --json`.
    status: Option<serde_json::Value>,
    /// The merge in progress (`status --json`'s `merge`).
    merge: Option<serde_json::Value>,
    /// Remote-tracking branches (`branch -r --json`).
    tracking: Option<serde_json::Value>,
    /// Every branch of the world's remote (branch -> commit).
    remote: BTreeMap<String, String>,
}

/// Branches of a file remote: the highest sequence file of each `refs/heads/NAME/`.
fn remote_refs(remote: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut best: Option<(String, PathBuf)> = None;
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                walk(base, &p, out);
            } else if name.len() == 20
                && name.bytes().all(|b| b.is_ascii_digit())
                && best.as_ref().is_none_or(|(b, _)| name > *b)
            {
                best = Some((name, p));
            }
        }
        if let Some((_, p)) = best {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).expect("remote ref value");
            let branch = dir
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.insert(branch, v["commit"].as_str().unwrap().to_string());
        }
    }
    let mut out = BTreeMap::new();
    let base = remote.join("refs/heads");
    walk(&base, &base, &mut out);
    out
}

/// Copies a world and points every repository's remote URLs at the copy.
fn copy_world(world: &Path, to: &Path) {
    copy_dir(world, to);
    let from = world.display().to_string();
    let dest = to.display().to_string();
    for e in std::fs::read_dir(to).unwrap().flatten() {
        let cfg = e.path().join(".dsv/config.toml");
        if let Ok(text) = std::fs::read_to_string(&cfg) {
            std::fs::write(&cfg, text.replace(&from, &dest)).unwrap();
        }
    }
}

fn world_state(home: &Path, w: &Path, sc: &NetScenario) -> WorldState {
    let repo = w.join(sc.repo);
    let present = repo.join(".dsv/format").exists();
    let has_commit = present && {
        let log = run(home, &repo, &["log", "-n", "1", "--json"]);
        log.code() == Some(0) && log.stdout.trim() != "[]"
    };
    // The merge state as dsv sees it (a stale one, whose commit HEAD already is, is none).
    let status = present.then(|| status_json(home, &repo));
    WorldState {
        repo: has_commit.then(|| capture(home, &repo)),
        files: if repo.exists() {
            snapshot(&repo)
        } else {
            BTreeMap::new()
        },
        merge: status.as_ref().and_then(|s| s.get("merge").cloned()),
        status,
        tracking: present.then(|| {
            let out = ok(home, &repo, &["branch", "-r", "--json"]).stdout;
            serde_json::from_str(&out).expect("branch -r --json")
        }),
        remote: remote_refs(&w.join("remote.dsv")),
    }
}

/// `fsck` in the scenario's repository (if there is one) and `fsck --remote` of
/// the world's remote (if there is one), both clean.
/// The remote is checked only when the command changes it (`remote_changes`).
fn world_fsck(home: &Path, w: &Path, sc: &NetScenario, remote_changes: bool, ctx: &str) {
    let repo = w.join(sc.repo);
    if repo.join(".dsv/format").exists() {
        fsck_clean(home, &repo, ctx);
    }
    if w.join("remote.dsv").exists() && remote_changes {
        let out = run(home, &w.join("a"), &["fsck", "--remote", "--records"]);
        assert!(
            out.code() == Some(0) && out.stderr.contains(": 0 problems"),
            "{ctx}: fsck --remote is not clean\n{}",
            out.describe()
        );
    }
}

/// A fresh clone of the world's remote: every branch's files, byte for byte.
fn remote_contents(home: &Path, w: &Path) -> BTreeMap<String, BTreeMap<String, Node>> {
    let mut out = BTreeMap::new();
    let remote = w.join("remote.dsv");
    if !remote.exists() {
        return out;
    }
    for (branch, commit) in remote_refs(&remote) {
        let dir = w.join(format!("verify-{}", branch.replace('/', "-")));
        let url = remote.display().to_string();
        ok(
            home,
            w,
            &["clone", "-q", "-b", &branch, &url, dir.to_str().unwrap()],
        );
        let head = ok(home, &dir, &["log", "--json", "-n", "1"]).stdout;
        assert!(
            head.contains(&commit),
            "clone of {branch} is not at {commit}"
        );
        fsck_clean(home, &dir, "clone of the remote");
        out.insert(branch, snapshot(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    out
}

/// The uninterrupted run: exit code and the world it leaves.
struct NetExpect {
    code: i32,
    before: WorldState,
    after: WorldState,
    after_remote: BTreeMap<String, BTreeMap<String, Node>>,
    /// How many write points the command has (`kill:N` with N above it completes).
    points: u64,
}

fn net_args(sc: &NetScenario, w: &Path) -> Vec<String> {
    let ws = w.display().to_string();
    sc.args.iter().map(|a| a.replace("{W}", &ws)).collect()
}

fn net_run(home: &Path, w: &Path, sc: &NetScenario, env: &[(&str, &str)]) -> Out {
    let args = net_args(sc, w);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_env(home, &w.join(sc.dir), &args, env)
}

fn net_expectations(home: &Path, scratch: &Path, sc: &NetScenario) -> NetExpect {
    let w = scratch.join("reference");
    copy_world(&sc.world, &w);
    let before = world_state(home, &w, sc);
    let out = net_run(home, &w, sc, &[]);
    let code = out.code().expect("reference run exit code");
    assert!(
        code == 0 || code == 1 && out.stdout.contains("Conflicts in"),
        "{}: reference run\n{}",
        sc.name,
        out.describe()
    );
    let after = world_state(home, &w, sc);
    if sc.args[0] == "gc" {
        // Nothing a user sees changes, but data is really deleted.
        assert_eq!(before, after, "{}: gc changed what users see", sc.name);
        assert!(
            !out.stderr.contains("dropped 0") && !out.stdout.contains("dropped 0"),
            "{}: gc dropped nothing\n{}",
            sc.name,
            out.describe()
        );
    } else {
        assert_ne!(before, after, "{}: no-op scenario", sc.name);
    }
    world_fsck(home, &w, sc, before.remote != after.remote, sc.name);
    let after_remote = remote_contents(home, &w);
    std::fs::remove_dir_all(&w).unwrap();
    // The number of write points (`DSV_FAULT=count` prints it).
    let w = scratch.join("count");
    copy_world(&sc.world, &w);
    let out = net_run(home, &w, sc, &[("DSV_FAULT", "count")]);
    std::fs::remove_dir_all(&w).unwrap();
    let points: u64 = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("dsv: ")?.strip_suffix(" write points"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}: no write count\n{}", sc.name, out.describe()));
    NetExpect {
        code,
        before,
        after,
        after_remote,
        points,
    }
}

impl NetExpect {
    /// Whether the command changes the remote (then it is checked and cloned).
    fn changes_remote(&self) -> bool {
        self.before.remote != self.after.remote
    }
}

/// xorshift64: the fixed-seed PRNG of the sampled sweeps and the kill rounds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Which of the write points 1..=total to hit: all of them when few (or with
/// `DSV_KILL_ALL=1`), else the first one and a fixed-seed sample of the others.
fn sample_points(total: u64, budget: u64, seed: u64) -> Vec<u64> {
    let all = std::env::var("DSV_KILL_ALL").is_ok_and(|v| v == "1");
    if all || total <= budget {
        return (1..=total).collect();
    }
    let mut set: BTreeSet<u64> = [1].into_iter().collect();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    while (set.len() as u64) < budget {
        set.insert(1 + rng.below(total));
    }
    set.into_iter().collect()
}

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The old or the new value, field by field (a kill may land between the updates of
/// different parts, but never leaves one part half-written).
fn assert_old_or_new(ctx: &str, exp: &NetExpect, st: &WorldState) {
    let (b, a) = (&exp.before, &exp.after);
    // A clone's repository passes through states of its own (checked by the caller).
    if let Some(r) = st.repo.as_ref().filter(|_| b.repo.is_some()) {
        let heads = [
            b.repo.as_ref().map(|r| &r.head),
            a.repo.as_ref().map(|r| &r.head),
        ];
        assert!(
            heads.contains(&Some(&r.head)),
            "{ctx}: HEAD {:?} is neither the old nor the new one",
            r.head
        );
        let indexes = [
            b.repo.as_ref().map(|r| &r.index),
            a.repo.as_ref().map(|r| &r.index),
        ];
        assert!(
            indexes.contains(&Some(&r.index)),
            "{ctx}: the index is neither the old nor the new one: {:#?}",
            r.index
        );
    }
    // Or one that running the command again finishes: not yet applied, or applied
    // without conflicts (only the commit was left to make).
    let resumable =
        |m: &serde_json::Value| m["applied"] == false || m["conflicts"] == serde_json::json!([]);
    assert!(
        st.merge == b.merge || st.merge == a.merge || st.merge.as_ref().is_some_and(resumable),
        "{ctx}: the merge state is neither the old nor the new one: {:#?}",
        st.merge
    );
    for (branch, v) in &st.remote {
        assert!(
            b.remote.get(branch) == Some(v) || a.remote.get(branch) == Some(v),
            "{ctx}: remote branch {branch} is at {v}, neither old nor new"
        );
    }
    for branch in b.remote.keys() {
        assert!(
            st.remote.contains_key(branch),
            "{ctx}: remote branch {branch} lost"
        );
    }
    for (path, node) in &st.files {
        assert!(
            b.files.get(path) == Some(node) || a.files.get(path) == Some(node),
            "{ctx}: '{path}' is neither its old nor its new version"
        );
    }
}

/// Re-runs the command after an interruption and checks the final world.
fn net_rerun_and_check(
    home: &Path,
    w: &Path,
    sc: &NetScenario,
    exp: &NetExpect,
    st: &WorldState,
    ctx: &str,
) {
    let out = net_run(home, w, sc, &[]);
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("locked by"),
        "{ctx}: re-run\n{}",
        out.describe()
    );
    if *st != exp.after {
        assert_eq!(
            out.code(),
            Some(exp.code),
            "{ctx}: re-running after the interruption\n{}",
            out.describe()
        );
    } else {
        // Already complete: a re-run may say there is nothing to do.
        assert!(
            matches!(out.code(), Some(0 | 1)),
            "{ctx}: {}",
            out.describe()
        );
    }
    net_final(home, w, sc, exp, ctx);
}

fn net_final(home: &Path, w: &Path, sc: &NetScenario, exp: &NetExpect, ctx: &str) {
    let fin = world_state(home, w, sc);
    if fin != exp.after {
        let (a, f) = (&exp.after, &fin);
        assert_eq!(f.repo, a.repo, "{ctx}: final HEAD/index differ");
        assert!(f.files == a.files, "{ctx}: final worktree differs");
        assert_eq!(f.status, a.status, "{ctx}: final status differs");
        assert_eq!(f.merge, a.merge, "{ctx}: final merge state differs");
        assert_eq!(f.tracking, a.tracking, "{ctx}: final tracking refs differ");
        assert_eq!(f.remote, a.remote, "{ctx}: final remote refs differ");
    }
    world_fsck(home, w, sc, exp.changes_remote(), ctx);
    assert!(
        !exp.changes_remote() || remote_contents(home, w) == exp.after_remote,
        "{ctx}: a clone of the remote differs from an uninterrupted run's"
    );
}

/// Kill points tried per scenario in a default run.
const NET_KILLS: u64 = 6;
/// Failing write points tried per scenario in a default run.
const NET_FAILS: u64 = 3;

/// Kills the command at sampled write points; returns (points, total).
fn net_kill_sweep(home: &Path, scratch: &Path, sc: &NetScenario) -> (u64, u64) {
    let exp = net_expectations(home, scratch, sc);
    let points = sample_points(exp.points, NET_KILLS, seed_of(sc.name));
    for &n in &points {
        let ctx = format!("{} killed at write {n} of {}", sc.name, exp.points);
        let w = scratch.join(format!("kill-{n}"));
        copy_world(&sc.world, &w);
        let spec = format!("kill:{n}");
        let out = net_run(home, &w, sc, &[("DSV_FAULT", &spec)]);
        if !out.killed() {
            // The count may differ by a write or two between runs (threads).
            assert_eq!(
                out.code(),
                Some(exp.code),
                "{ctx}: neither killed nor complete\n{}",
                out.describe()
            );
            net_final(home, &w, sc, &exp, &ctx);
            std::fs::remove_dir_all(&w).unwrap();
            continue;
        }
        world_fsck(home, &w, sc, exp.changes_remote(), &ctx);
        let st = world_state(home, &w, sc);
        assert_old_or_new(&ctx, &exp, &st);
        let dsv = w.join(sc.repo).join(".dsv");
        assert!(
            exp.before.repo.is_some()
                || st == exp.after
                || !dsv.exists()
                || dsv.join("CLONING").exists(),
            "{ctx}: an unfinished clone without its CLONING marker"
        );
        net_rerun_and_check(home, &w, sc, &exp, &st, &ctx);
        std::fs::remove_dir_all(&w).unwrap();
    }
    (points.len() as u64, exp.points)
}

/// Fails the command's write N with ENOSPC at sampled points; returns (points, total).
fn net_fail_sweep(home: &Path, scratch: &Path, sc: &NetScenario) -> (u64, u64) {
    let exp = net_expectations(home, scratch, sc);
    let points = sample_points(exp.points, NET_FAILS, seed_of(sc.name) ^ 1);
    for &n in &points {
        let ctx = format!("{} with write {n} of {} failing", sc.name, exp.points);
        let w = scratch.join(format!("fail-{n}"));
        copy_world(&sc.world, &w);
        let spec = format!("fail:{n}");
        let out = net_run(home, &w, sc, &[("DSV_FAULT", &spec)]);
        assert!(
            !out.stderr.contains("panicked"),
            "{ctx}: panic\n{}",
            out.describe()
        );
        if out.code() == Some(exp.code) && !out.stderr.starts_with("error: ") {
            // The last writes are redb's on closing a database, after the command is
            // complete: a failure there is redb's to recover from at the next open.
            net_final(home, &w, sc, &exp, &ctx);
            std::fs::remove_dir_all(&w).unwrap();
            continue;
        }
        let err = out.stderr.trim_end();
        assert!(
            out.code() == Some(1) && err.starts_with("error: ") && err.lines().count() == 1,
            "{ctx}: expected a one-line error\n{}",
            out.describe()
        );
        world_fsck(home, &w, sc, exp.changes_remote(), &ctx);
        let st = world_state(home, &w, sc);
        assert_old_or_new(&ctx, &exp, &st);
        net_rerun_and_check(home, &w, sc, &exp, &st, &ctx);
        std::fs::remove_dir_all(&w).unwrap();
    }
    (points.len() as u64, exp.points)
}

/// A small dataset: label files, frames, a chunked file (over 1 MiB), a symlink.
fn small_dataset(root: &Path, seed: u64) {
    for i in 0..6 {
        write(
            root,
            &format!("labels/f{i}.txt"),
            format!("{} 0.5 0.5 0.1 0.1\n", i % 3),
        );
    }
    write(root, "frames/a.raw", pseudo_random(30_000, seed));
    write(root, "frames/b.raw", pseudo_random(20_000, seed + 1));
    write(root, "big.bin", pseudo_random(1_200_000, seed + 2));
    std::os::unix::fs::symlink("labels/f0.txt", root.join("latest")).unwrap();
}

/// The remote worlds under `base`: `push` (remote at C1, `a` has C2 unpushed, `b`
/// cloned at C1) and `pulled` (the same after `a` pushed C2: `b` has something to
/// fetch and pull, and the remote something to clone).
fn prepare_net(home: &Path, base: &Path) -> (PathBuf, PathBuf) {
    let w = base.join("push");
    std::fs::create_dir_all(&w).unwrap();
    let a = w.join("a");
    std::fs::create_dir_all(&a).unwrap();
    ok(home, &a, &["init", "-q"]);
    small_dataset(&a, 10);
    ok(home, &a, &["add", "-A"]);
    ok(home, &a, &["commit", "-q", "-m", "C1"]);
    let url = w.join("remote.dsv").display().to_string();
    ok(home, &a, &["remote", "add", "origin", &url]);
    ok(home, &a, &["push", "-q"]);
    ok(home, &w, &["clone", "-q", &url, "b"]);
    write(&a, "labels/f1.txt", "2 0.25 0.25 0.1 0.1\n");
    std::fs::remove_file(a.join("labels/f2.txt")).unwrap();
    write(&a, "frames/c.raw", pseudo_random(25_000, 20));
    let mut big = std::fs::read(a.join("big.bin")).unwrap();
    big[600_000..600_100].copy_from_slice(&pseudo_random(100, 21));
    write(&a, "big.bin", &big);
    write(&a, "big2.bin", pseudo_random(1_100_000, 22));
    ok(home, &a, &["add", "-A"]);
    ok(home, &a, &["commit", "-q", "-m", "C2"]);
    let pulled = base.join("pulled");
    copy_world(&w, &pulled);
    ok(home, &pulled.join("a"), &["push", "-q"]);
    (w, pulled)
}

/// A YOLO label file of one frame with four objects far apart; `classes` are theirs.
fn yolo(classes: [u8; 4]) -> String {
    let at = [(0.1, 0.1), (0.4, 0.4), (0.7, 0.7), (0.9, 0.2)];
    classes
        .iter()
        .zip(at)
        .map(|(c, (x, y))| format!("{c} {x:.6} {y:.6} 0.050000 0.050000\n"))
        .collect()
}

const LABELS: &str = "obj_train_data/1.txt";

/// The merge worlds: `m` (branch main with `side`, `lab`, `conf` and `ff` beside
/// it), `conflicted` (m stopped on the conflict with `conf`), `resolved` (that
/// conflict resolved for theirs), and `gc` (a branch's data orphaned by deleting
/// the branch and its remote).
fn prepare_merge(home: &Path, base: &Path) -> [PathBuf; 4] {
    let w = base.join("merge");
    let m = w.join("a");
    std::fs::create_dir_all(&m).unwrap();
    ok(home, &m, &["init", "-q"]);
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/datumaro/yolo_dataset/strict");
    common::copy_contents(&fixture, &m);
    write(&m, LABELS, yolo([0, 1, 2, 3]));
    for i in 0..5 {
        write(&m, &format!("data/x{i}.bin"), pseudo_random(20_000, 30 + i));
    }
    ok(home, &m, &["add", "-A"]);
    ok(home, &m, &["commit", "-q", "-m", "base"]);
    for b in ["side", "lab", "conf"] {
        ok(home, &m, &["branch", b]);
    }
    let commit_on = |branch: &str, edit: &dyn Fn()| {
        ok(home, &m, &["switch", "-q", branch]);
        edit();
        ok(home, &m, &["add", "-A"]);
        ok(home, &m, &["commit", "-q", "-m", &format!("on {branch}")]);
    };
    commit_on("side", &|| {
        write(&m, "data/side.bin", pseudo_random(1_100_000, 40));
        write(&m, "data/x1.bin", pseudo_random(20_000, 41));
        std::fs::remove_file(m.join("data/x2.bin")).unwrap();
    });
    commit_on("lab", &|| write(&m, LABELS, yolo([5, 1, 2, 3])));
    commit_on("conf", &|| write(&m, LABELS, yolo([0, 7, 2, 3])));
    commit_on("main", &|| {
        write(&m, LABELS, yolo([0, 8, 2, 3]));
        write(&m, "data/main.bin", pseudo_random(50_000, 42));
    });
    ok(home, &m, &["branch", "ff"]);
    commit_on("ff", &|| {
        write(&m, "data/ff.bin", pseudo_random(60_000, 43))
    });
    ok(home, &m, &["switch", "-q", "main"]);
    ok(home, &m, &["tag", "rv"]);

    let conflicted = base.join("conflicted");
    copy_world(&w, &conflicted);
    let out = run(home, &conflicted.join("a"), &["merge", "conf"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    let resolved = base.join("resolved");
    copy_world(&conflicted, &resolved);
    ok(home, &resolved.join("a"), &["resolve", LABELS, "--theirs"]);

    // gc: `junk`'s data came from a remote; deleting the branch and the remote
    // leaves it to nothing (no reflog names it), so gc really drops it.
    let g = base.join("gc");
    let ga = g.join("a");
    std::fs::create_dir_all(&ga).unwrap();
    ok(home, &ga, &["init", "-q"]);
    small_dataset(&ga, 50);
    ok(home, &ga, &["add", "-A"]);
    ok(home, &ga, &["commit", "-q", "-m", "kept"]);
    let src = base.join("gc-src");
    std::fs::create_dir_all(&src).unwrap();
    ok(home, &src, &["init", "-q"]);
    write(&src, "junk.bin", pseudo_random(1_300_000, 51));
    write(&src, "junk.txt", "junk\n");
    ok(home, &src, &["add", "-A"]);
    ok(home, &src, &["commit", "-q", "-m", "junk"]);
    let url = base.join("gc-remote").display().to_string();
    ok(home, &src, &["remote", "add", "origin", &url]);
    ok(home, &src, &["push", "-q", "origin", "main"]);
    ok(home, &ga, &["remote", "add", "junk", &url]);
    ok(home, &ga, &["fetch", "-q", "junk"]);
    ok(home, &ga, &["branch", "junk", "junk/main"]);
    ok(home, &ga, &["branch", "-D", "junk"]);
    ok(home, &ga, &["remote", "remove", "junk"]);
    [w, conflicted, resolved, g]
}

fn net_scenarios(home: &Path, base: &Path) -> Vec<NetScenario> {
    let (push, pulled) = prepare_net(home, base);
    let [m, conflicted, resolved, g] = prepare_merge(home, base);
    let sc = |name, world: &PathBuf, dir, repo, args: &[&'static str]| NetScenario {
        name,
        world: world.clone(),
        dir,
        repo,
        args: args.to_vec(),
    };
    vec![
        sc("push", &push, "a", "a", &["push"]),
        sc("fetch", &pulled, "b", "b", &["fetch"]),
        sc("pull", &pulled, "b", "b", &["pull"]),
        sc(
            "clone",
            &pulled,
            ".",
            "c",
            &["clone", "{W}/remote.dsv", "c"],
        ),
        sc("merge", &m, "a", "a", &["merge", "side"]),
        sc("merge labels", &m, "a", "a", &["merge", "lab"]),
        sc("merge fast-forward", &m, "a", "a", &["merge", "ff"]),
        sc("merge conflicted", &m, "a", "a", &["merge", "conf"]),
        sc(
            "resolve",
            &conflicted,
            "a",
            "a",
            &["resolve", LABELS, "--theirs"],
        ),
        sc(
            "merge --continue",
            &resolved,
            "a",
            "a",
            &["merge", "--continue"],
        ),
        sc("cherry-pick", &m, "a", "a", &["cherry-pick", "side"]),
        sc("revert", &m, "a", "a", &["revert", "rv"]),
        sc("gc after branch deletion", &g, "a", "a", &["gc"]),
    ]
}

type NetRunner = fn(&Path, &Path, &NetScenario) -> (u64, u64);

/// Runs every remote and merge scenario, two at a time; returns (name, (points, total)).
fn run_net_scenarios(runner: NetRunner, only: &[&str]) -> Vec<(&'static str, (u64, u64))> {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let scenarios: Vec<NetScenario> = net_scenarios(&home, &tmp.path().join("prepared"))
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(&s.name))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let counts = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(sc) = scenarios.get(i) else { break };
                    let scratch = tmp.path().join(format!("scratch-{i}"));
                    std::fs::create_dir_all(&scratch).unwrap();
                    // One failing scenario does not hide the others' results.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        runner(&home, &scratch, sc)
                    }));
                    match r {
                        Ok(n) => counts.lock().unwrap().push((sc.name, n)),
                        Err(_) => failed.lock().unwrap().push(sc.name),
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    assert!(failed.is_empty(), "scenarios failed: {failed:?}");
    let mut counts = counts.into_inner().unwrap();
    counts.sort();
    counts
}

/// Scenarios named in `DSV_KILL_ONLY` (comma-separated), for a local rerun of one.
fn only_scenarios() -> Vec<&'static str> {
    let v = std::env::var("DSV_KILL_ONLY").unwrap_or_default();
    let names: Vec<String> = v
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    names.into_iter().map(|s| &*s.leak()).collect()
}

#[test]
fn remote_merge_and_gc_killed_at_write_points_recover() {
    let counts = run_net_scenarios(net_kill_sweep, &only_scenarios());
    eprintln!("kill points (tried, total): {counts:?}");
    for (name, (tried, total)) in &counts {
        assert!(
            *total >= 5 && *tried >= 5.min(*total),
            "{name}: only {tried} of {total}"
        );
    }
}

#[test]
fn remote_merge_and_gc_full_disk_at_write_points_recover() {
    let mut only = only_scenarios();
    if only.is_empty() {
        only = vec!["push", "clone", "merge", "merge labels", "merge conflicted"];
    }
    let counts = run_net_scenarios(net_fail_sweep, &only);
    eprintln!("failing write points (tried, total): {counts:?}");
}

// ---------------------------------------------------------------------------
// Random SIGKILLs of concurrent push, fetch, pull and merge
// ---------------------------------------------------------------------------

/// A dsv process one client runs; the killer may SIGKILL it while it runs.
struct Running {
    child: Mutex<Option<std::process::Child>>,
}

impl Running {
    /// Runs `args` in `dir`, pollable by the killer; returns the outcome.
    fn run(&self, home: &Path, dir: &Path, args: &[&str]) -> Out {
        let child = dsv_cmd(home, dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning dsv");
        *self.child.lock().unwrap() = Some(child);
        // Reaped only under the lock, so the killer never signals a recycled pid.
        loop {
            {
                let mut g = self.child.lock().unwrap();
                if g.as_mut().unwrap().try_wait().unwrap().is_some() {
                    let out = g.take().unwrap().wait_with_output().unwrap();
                    return Out {
                        status: out.status,
                        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    };
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILLs the running command, if any; whether one was running.
    fn kill(&self) -> bool {
        let mut g = self.child.lock().unwrap();
        if let Some(c) = g.as_mut()
            && c.try_wait().unwrap().is_none()
        {
            // SAFETY: the child is not reaped yet (we hold the lock), so the pid is its own.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            return true;
        }
        false
    }
}

/// Rounds per seed: `DSV_KILL_ROUNDS`, else 3 (the CI default).
fn kill_rounds() -> usize {
    std::env::var("DSV_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// A rejected push or pull must say why in one line; anything else is a defect.
fn is_clean_rejection(out: &Out) -> bool {
    out.code() == Some(1)
        && !out.stderr.contains("panicked")
        && [
            "fetch first",
            "moved since",
            "non-fast-forward",
            "have diverged",
            "fetch and retry",
        ]
        .iter()
        .any(|m| out.stderr.contains(m))
}

/// One client's step of a round: commit a new file, then bring in the others' work
/// (fetch + merge, or pull) and push. Every command may be SIGKILLed by the killer;
/// a killed command leaves a clean fsck and is run again. Returns the commits
/// pushed with exit 0.
fn client_step(
    home: &Path,
    dir: &Path,
    c: usize,
    round: usize,
    pull: bool,
    proc: &Running,
) -> Vec<String> {
    let mut accepted = Vec::new();
    let ctx = |what: &str| format!("client {c} round {round}: {what}");
    // Runs a command, and again while it gets killed.
    let step = |args: &[&str]| -> Out {
        for attempt in 0.. {
            let out = proc.run(home, dir, args);
            if !out.killed() {
                assert!(
                    !out.stderr.contains("panicked") && !out.stderr.contains("locked by"),
                    "{}\n{}",
                    ctx(&args.join(" ")),
                    out.describe()
                );
                return out;
            }
            assert!(attempt < 50, "{}: killed 50 times", ctx(&args.join(" ")));
            // After a SIGKILL at a random moment: nothing broken, nothing locked.
            fsck_clean(home, dir, &ctx(&format!("{} killed", args.join(" "))));
        }
        unreachable!()
    };
    write(
        dir,
        &format!("c{c}/r{round}.txt"),
        format!("client {c} round {round}\n"),
    );
    write(
        dir,
        &format!("c{c}/r{round}.bin"),
        pseudo_random(40_000, (c * 1000 + round) as u64),
    );
    let out = step(&["add", "-A"]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let out = step(&["commit", "-m", &format!("client {c} round {round}")]);
    // A commit killed after its ref moved is complete: the re-run has nothing to commit.
    assert!(
        out.code() == Some(0) || out.stderr.contains("nothing to commit"),
        "{}\n{}",
        ctx("commit"),
        out.describe()
    );
    if pull {
        let out = step(&["pull"]);
        assert!(
            out.code() == Some(0) || is_clean_rejection(&out),
            "{}\n{}",
            ctx("pull"),
            out.describe()
        );
    }
    let out = step(&["fetch"]);
    assert_eq!(out.code(), Some(0), "{}\n{}", ctx("fetch"), out.describe());
    let out = step(&[
        "merge",
        "origin/main",
        "-m",
        &format!("merge by {c} in round {round}"),
    ]);
    assert_eq!(out.code(), Some(0), "{}\n{}", ctx("merge"), out.describe());
    let out = step(&["push", "--json"]);
    if out.code() == Some(0) {
        let r: serde_json::Value = serde_json::from_str(&out.stdout).expect("push --json");
        accepted.push(r["new"].as_str().unwrap().to_string());
    } else {
        assert!(
            is_clean_rejection(&out),
            "{}\n{}",
            ctx("push"),
            out.describe()
        );
    }
    accepted
}

/// Several clones push, fetch, pull and merge against one file remote at once while
/// one of them is SIGKILLed at a random moment, many rounds, fixed seeds. After
/// every kill fsck is clean and the command is run again; at the end every commit
/// a push accepted (exit 0) is in a fresh clone, whose files are byte for byte the
/// clients' (once each has pulled), and `fsck --remote --records` is clean.
#[test]
fn random_kills_of_concurrent_push_fetch_pull_and_merge_lose_nothing() {
    random_kill_rounds(
        &[7, 1009, 65_537],
        &|tmp: &Path| tmp.join("remote.dsv").display().to_string(),
        &[],
    );
}

/// The same against an S3 remote (moto), whose branches move by conditional update.
#[test]
fn random_kills_of_concurrent_clients_on_s3_lose_nothing() {
    let moto = common::s3::Moto::start("kills");
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let n = std::sync::atomic::AtomicU64::new(0);
    random_kill_rounds(
        &[4242],
        &|_: &Path| moto.url(&format!("r{}", n.fetch_add(1, Ordering::SeqCst))),
        &env,
    );
}

fn random_kill_rounds(
    seeds: &[u64],
    remote_url: &dyn Fn(&Path) -> String,
    env: &[(String, String)],
) {
    const CLIENTS: usize = 3;
    let rounds = kill_rounds();
    set_thread_env(env);
    for &seed in seeds {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let origin = tmp.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        ok(&home, &origin, &["init", "-q"]);
        small_dataset(&origin, seed);
        ok(&home, &origin, &["add", "-A"]);
        ok(&home, &origin, &["commit", "-q", "-m", "base"]);
        let url = remote_url(tmp.path());
        ok(&home, &origin, &["remote", "add", "origin", &url]);
        ok(&home, &origin, &["push", "-q"]);
        let dirs: Vec<PathBuf> = (0..CLIENTS)
            .map(|c| tmp.path().join(format!("c{c}")))
            .collect();
        for d in &dirs {
            ok(
                &home,
                tmp.path(),
                &["clone", "-q", &url, d.to_str().unwrap()],
            );
        }
        let mut rng = Rng(seed);
        let accepted = Mutex::new(Vec::<String>::new());
        let mut kills = 0;
        for round in 0..rounds {
            let procs: Vec<Running> = (0..CLIENTS)
                .map(|_| Running {
                    child: Mutex::new(None),
                })
                .collect();
            let pulls: Vec<bool> = (0..CLIENTS).map(|_| rng.below(3) == 0).collect();
            // Kill times: a few per round, at random moments of random clients.
            let mut plan: Vec<(u64, usize)> = (0..1 + rng.below(3))
                .map(|_| (rng.below(1500), rng.below(CLIENTS as u64) as usize))
                .collect();
            plan.sort();
            let done = AtomicBool::new(false);
            let killed = std::thread::scope(|s| {
                let handles: Vec<_> = (0..CLIENTS)
                    .map(|c| {
                        let (home, dir, proc, accepted) = (&home, &dirs[c], &procs[c], &accepted);
                        let pull = pulls[c];
                        s.spawn(move || {
                            set_thread_env(env);
                            let got = client_step(home, dir, c, round, pull, proc);
                            accepted.lock().unwrap().extend(got);
                        })
                    })
                    .collect();
                let start = Instant::now();
                let mut killed = 0;
                for (at, c) in &plan {
                    let at = Duration::from_millis(*at);
                    while start.elapsed() < at && !done.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                        if handles.iter().all(|h| h.is_finished()) {
                            done.store(true, Ordering::SeqCst);
                        }
                    }
                    if procs[*c].kill() {
                        killed += 1;
                    }
                }
                for h in handles {
                    if let Err(e) = h.join() {
                        std::panic::resume_unwind(e);
                    }
                }
                killed
            });
            kills += killed;
            let out = run(&home, &dirs[0], &["fsck", "--remote", "--records"]);
            assert!(
                out.code() == Some(0) && out.stderr.contains(": 0 problems"),
                "seed {seed} round {round}: fsck --remote\n{}",
                out.describe()
            );
        }
        // Every client gets its last work in, one after the other, then all pull.
        for d in &dirs {
            for attempt in 0.. {
                assert!(attempt < 5, "a client never got its push in");
                ok(&home, d, &["fetch"]);
                ok(&home, d, &["merge", "origin/main", "-m", "final merge"]);
                let out = run(&home, d, &["push", "--json"]);
                if out.code() == Some(0) {
                    let r: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                    accepted
                        .lock()
                        .unwrap()
                        .push(r["new"].as_str().unwrap().to_string());
                    break;
                }
            }
        }
        for d in &dirs {
            ok(&home, d, &["pull"]);
        }
        let fin = tmp.path().join("final");
        ok(
            &home,
            tmp.path(),
            &["clone", "-q", &url, fin.to_str().unwrap()],
        );
        fsck_clean(&home, &fin, "final clone");
        let log: serde_json::Value =
            serde_json::from_str(&ok(&home, &fin, &["log", "--json"]).stdout).unwrap();
        let history: BTreeSet<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        let accepted = accepted.into_inner().unwrap();
        for id in &accepted {
            assert!(
                history.contains(id.as_str()),
                "seed {seed}: accepted commit {id} was lost"
            );
        }
        let want = snapshot(&fin);
        for (c, d) in dirs.iter().enumerate() {
            assert!(
                snapshot(d) == want,
                "seed {seed}: client {c} differs from a fresh clone"
            );
            fsck_clean(&home, d, "client at the end");
            for r in 0..rounds {
                assert!(
                    want.contains_key(&format!("c{c}/r{r}.bin")),
                    "seed {seed}: c{c}/r{r} lost"
                );
            }
        }
        let out = run(&home, &fin, &["fsck", "--remote", "--records"]);
        assert!(out.stderr.contains(": 0 problems"), "{}", out.describe());
        eprintln!(
            "seed {seed}: {rounds} rounds, {kills} SIGKILLs, {} accepted pushes",
            accepted.len()
        );
    }
}

// ---------------------------------------------------------------------------
// Regressions found by the suites above
// ---------------------------------------------------------------------------

/// The number of write points of `args` run in a copy of `world`'s `a`.
fn count_points(home: &Path, world: &Path, scratch: &Path, args: &[&str]) -> u64 {
    let w = scratch.join("count");
    copy_world(world, &w);
    let out = run_env(home, &w.join("a"), args, &[("DSV_FAULT", "count")]);
    std::fs::remove_dir_all(&w).unwrap();
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("dsv: ")?.strip_suffix(" write points"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no write count\n{}", out.describe()))
}

/// Kills `args` (run in `a`) at each write point of `points` in a fresh copy of
/// `world` until `pred` holds for the copy; returns it (the caller removes it).
fn kill_until(
    home: &Path,
    world: &Path,
    scratch: &Path,
    args: &[&str],
    points: impl Iterator<Item = u64>,
    pred: &dyn Fn(&Path) -> bool,
) -> PathBuf {
    for n in points {
        let w = scratch.join(format!("k{n}"));
        copy_world(world, &w);
        let out = run_env(
            home,
            &w.join("a"),
            args,
            &[("DSV_FAULT", &format!("kill:{n}"))],
        );
        assert!(
            out.killed(),
            "{args:?} not killed at {n}\n{}",
            out.describe()
        );
        if pred(&w.join("a")) {
            return w;
        }
        std::fs::remove_dir_all(&w).unwrap();
    }
    panic!("{args:?}: no kill point gives the state looked for");
}

fn head_of(home: &Path, dir: &Path) -> String {
    let log: serde_json::Value =
        serde_json::from_str(&ok(home, dir, &["log", "--json", "-n", "1"]).stdout).unwrap();
    log[0]["id"].as_str().unwrap().to_string()
}

/// Before the fix, `merge --continue` after a merge killed between writing its state
/// and its index committed the old index: a "merge" commit without their changes.
#[test]
fn merge_killed_while_writing_its_files_is_finished_by_running_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let [m, ..] = prepare_merge(&home, &tmp.path().join("prepared"));
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let reference = scratch.join("reference");
    copy_world(&m, &reference);
    ok(&home, &reference.join("a"), &["merge", "side"]);
    let want_tree = ok(&home, &reference.join("a"), &["ls-tree", "-r", "HEAD"]).stdout;
    let want_files = snapshot(&reference.join("a"));
    let before = head_of(&home, &m.join("a"));
    let total = count_points(&home, &m, &scratch, &["merge", "side"]);
    // The state is written, the index is not: HEAD's tree is still the index's.
    let w = kill_until(&home, &m, &scratch, &["merge", "side"], 1..=total, &|a| {
        let st = status_json(&home, a);
        st.get("merge").is_some() && st["staged"] == serde_json::json!([])
    });
    let a = w.join("a");
    fsck_clean(&home, &a, "killed merge");
    let out = run(&home, &a, &["merge", "--continue"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("run `dsv merge side` again"),
        "{}",
        out.describe()
    );
    assert_eq!(
        head_of(&home, &a),
        before,
        "--continue committed a half-written merge"
    );
    ok(&home, &a, &["merge", "side"]);
    assert_eq!(ok(&home, &a, &["ls-tree", "-r", "HEAD"]).stdout, want_tree);
    assert!(snapshot(&a) == want_files);
    fsck_clean(&home, &a, "merge run again");
}

/// Before the fix, a merge killed after its index was written but before its
/// commit could only be finished with `--continue`, and a fast-forward killed
/// before HEAD moved refused to run again ("you have staged changes").
#[test]
fn merge_killed_before_its_commit_or_head_move_is_finished_by_running_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let [m, ..] = prepare_merge(&home, &tmp.path().join("prepared"));
    for (i, target) in ["side", "ff"].into_iter().enumerate() {
        let scratch = tmp.path().join(format!("scratch-{i}"));
        std::fs::create_dir_all(&scratch).unwrap();
        let reference = scratch.join("reference");
        copy_world(&m, &reference);
        ok(&home, &reference.join("a"), &["merge", target]);
        let want = capture(&home, &reference.join("a"));
        let before = head_of(&home, &m.join("a"));
        let args = ["merge", target];
        let total = count_points(&home, &m, &scratch, &args);
        // The index is the merge's, HEAD has not moved yet.
        let w = kill_until(&home, &m, &scratch, &args, (1..=total).rev(), &|a| {
            head_of(&home, a) == before && status_json(&home, a)["staged"] != serde_json::json!([])
        });
        let a = w.join("a");
        fsck_clean(&home, &a, "killed merge");
        let out = run(&home, &a, &args);
        assert_eq!(
            out.code(),
            Some(0),
            "merge {target} again\n{}",
            out.describe()
        );
        assert_eq!(capture(&home, &a), want, "merge {target}");
        fsck_clean(&home, &a, "merge run again");
    }
}

/// Before the fix, a killed clone left a directory that every later clone refused
/// ("exists and is not empty"), and a failed clone into an existing empty directory
/// left the files it had written.
#[test]
fn killed_clone_is_resumed_and_failed_clone_leaves_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (_, pulled) = prepare_net(&home, &tmp.path().join("prepared"));
    let url = pulled.join("remote.dsv").display().to_string();
    let want = snapshot(&pulled.join("a"));
    let w = tmp.path().join("w");
    std::fs::create_dir_all(&w).unwrap();
    let total = {
        let out = run_env(
            &home,
            &w,
            &["clone", &url, "probe"],
            &[("DSV_FAULT", "count")],
        );
        std::fs::remove_dir_all(w.join("probe")).unwrap();
        out.stderr
            .lines()
            .find_map(|l| l.strip_prefix("dsv: ")?.strip_suffix(" write points"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap()
    };
    let kill = |n: u64| {
        let dest = w.join(format!("k{n}"));
        let out = run_env(
            &home,
            &w,
            &["clone", &url, dest.to_str().unwrap()],
            &[("DSV_FAULT", &format!("kill:{n}"))],
        );
        assert!(out.killed(), "{}", out.describe());
        dest
    };
    // The last kill point before the clone is complete (later writes are redb's
    // closing ones, after the clone returned).
    let last = (1..=total)
        .rev()
        .find(|&n| {
            let dest = kill(n);
            let interrupted = dest.join(".dsv/CLONING").exists();
            std::fs::remove_dir_all(&dest).unwrap();
            interrupted
        })
        .unwrap();
    // Killed in init, in the fetch, and at the end of the checkout.
    for n in [1, total / 2, last] {
        let dest = kill(n);
        let out = run(&home, &w, &["clone", &url, dest.to_str().unwrap()]);
        assert_eq!(
            out.code(),
            Some(0),
            "clone again after a kill at {n}\n{}",
            out.describe()
        );
        assert!(snapshot(&dest) == want, "clone killed at {n}, then resumed");
        assert!(!dest.join(".dsv/CLONING").exists());
        fsck_clean(&home, &dest, "resumed clone");
        // Complete now: a third clone into it is refused.
        let out = run(&home, &w, &["clone", &url, dest.to_str().unwrap()]);
        assert!(out.stderr.contains("not empty"), "{}", out.describe());
    }
    // A full disk late in the checkout, into an existing empty directory.
    let dest = w.join("empty");
    std::fs::create_dir_all(&dest).unwrap();
    let out = run_env(
        &home,
        &w,
        &["clone", &url, "empty"],
        &[("DSV_FAULT", &format!("fail:{last}"))],
    );
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        0,
        "the failed clone left files"
    );
    ok(&home, &w, &["clone", "-q", &url, "empty"]);
    assert!(snapshot(&dest) == want);
}
