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
//! Helpers are local to this file (tests/common is shared with other suites).

mod common;

use common::{copy_dir, pseudo_random_bytes as pseudo_random, write_file as write};
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

/// A worktree file as seen on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { exec: bool, data: Vec<u8> },
    Link(PathBuf),
}

/// Every file and symlink of the worktree, `.dsv` and dsv's temporary files left out.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for ent in std::fs::read_dir(dir).unwrap() {
            let ent = ent.unwrap();
            let path = ent.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if rel == ".dsv" || rel.contains(".dsv-tmp-") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Node::Link(std::fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                walk(root, &path, out);
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                out.insert(
                    rel,
                    Node::File {
                        exec,
                        data: std::fs::read(&path).unwrap(),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
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
