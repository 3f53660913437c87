//! The file-system monitor (`core.fsmonitor = true`): after every batch of edits,
//! `status` with the monitor must equal `status` with a full scan
//! (`DSV_FSMONITOR=0`), whatever happened in between: random edits, renames,
//! directory moves, overflows, a killed daemon, two writers at once. Each test also
//! checks that the monitor was really used (or really fell back), so it can fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::TestRepo;

/// A small deterministic generator (xorshift), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `status --json` with the monitor (and how it was used), and with a full scan.
fn both(repo: &TestRepo) -> (String, String, String) {
    let out = repo
        .cmd()
        .env("DSV_TRACE_FSMONITOR", "1")
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let usage = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("fsmonitor: ").map(str::to_string))
        .expect("status said how it used the monitor");
    let full = repo
        .cmd()
        .env("DSV_FSMONITOR", "0")
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(full.status.success());
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&full.stdout).into_owned(),
        usage,
    )
}

/// Compares the two statuses; returns how the monitor was used.
#[track_caller]
fn check(repo: &TestRepo, what: &str) -> String {
    let (monitored, full, usage) = both(repo);
    assert_eq!(
        monitored, full,
        "monitored status ({usage}) differs after {what}"
    );
    usage
}

fn daemon(repo: &TestRepo) -> serde_json::Value {
    let r = repo.ok(["fsmonitor", "status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["daemon"].clone()
}

/// A committed tree of `dirs` x `files`, the monitor enabled and its daemon ready.
fn setup(dirs: usize, files: usize) -> TestRepo {
    let repo = TestRepo::init();
    for d in 0..dirs {
        for f in 0..files {
            repo.write(format!("d{d}/sub/f{f}.txt"), format!("{d} {f}\n"));
        }
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["config", "core.fsmonitor", "true"]);
    repo.ok(["fsmonitor", "start"]);
    repo
}

fn start_with(repo: &TestRepo, env: &[(&str, &str)]) {
    let mut cmd = repo.cmd();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["fsmonitor", "start"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file and directory of the worktree (not `.dsv`), relative.
fn listing(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    crate::common::walk(
        root,
        |rel| rel == ".dsv",
        |rel, _, m| {
            if m.is_dir() {
                dirs.push(PathBuf::from(rel))
            } else {
                files.push(PathBuf::from(rel))
            }
        },
    );
    files.sort();
    dirs.sort();
    (files, dirs)
}

/// One random change to the worktree (or the index, through dsv).
fn random_edit(repo: &TestRepo, rng: &mut Rng, n: usize) -> String {
    use std::os::unix::fs::PermissionsExt;
    let root = repo.root();
    let (files, dirs) = listing(root);
    let pick = |rng: &mut Rng, v: &[PathBuf]| v.get(rng.below(v.len())).cloned();
    let op = rng.below(14);
    match (op, pick(rng, &files), pick(rng, &dirs)) {
        (0, Some(f), _) => {
            let mut b = std::fs::read(root.join(&f)).unwrap_or_default();
            b.extend_from_slice(format!("edit {n}\n").as_bytes());
            std::fs::write(root.join(&f), b).unwrap();
            format!("append to {f:?}")
        }
        (1, Some(f), _) => {
            // Same size, other content: only the mtime (and inotify) tell.
            let b = std::fs::read(root.join(&f)).unwrap_or_default();
            let flipped: Vec<u8> = b.iter().map(|c| c ^ 1).collect();
            std::fs::write(root.join(&f), flipped).unwrap();
            format!("same-size rewrite of {f:?}")
        }
        (2, _, Some(d)) => {
            let f = d.join(format!("new{n}.txt"));
            std::fs::write(root.join(&f), format!("new {n}\n")).unwrap();
            format!("create {f:?}")
        }
        (3, Some(f), _) => {
            std::fs::remove_file(root.join(&f)).unwrap();
            format!("delete {f:?}")
        }
        (4, Some(f), Some(d)) => {
            let to = d.join(format!("moved{n}.txt"));
            std::fs::rename(root.join(&f), root.join(&to)).unwrap();
            format!("rename {f:?} to {to:?}")
        }
        (5, _, d) => {
            let base = d.unwrap_or_default().join(format!("nd{n}/deep"));
            std::fs::create_dir_all(root.join(&base)).unwrap();
            for i in 0..3 {
                std::fs::write(root.join(base.join(format!("x{i}"))), format!("{n} {i}")).unwrap();
            }
            format!("new directory {base:?}")
        }
        (6, _, Some(d)) => {
            let to = PathBuf::from(format!("mv{n}"));
            if root.join(&to).starts_with(root.join(&d)) {
                return "nothing".into();
            }
            std::fs::rename(root.join(&d), root.join(&to)).unwrap();
            // Written at once below the new name: inotify would name it by the old one.
            if let Some(f) = listing(&root.join(&to)).0.first() {
                std::fs::write(root.join(&to).join(f), format!("after move {n}")).unwrap();
            }
            format!("move directory {d:?} to {to:?}")
        }
        (7, _, Some(d)) => {
            std::fs::remove_dir_all(root.join(&d)).unwrap();
            format!("remove directory {d:?}")
        }
        (8, Some(f), _) => {
            let p = root.join(&f);
            if let Ok(m) = std::fs::symlink_metadata(&p)
                && m.is_file()
            {
                let mode = m.permissions().mode() ^ 0o100;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            format!("chmod {f:?}")
        }
        (9, _, _) => {
            repo.ok(["add", "-A"]);
            "add -A".into()
        }
        (10, Some(f), _) => {
            repo.ok(["add", f.to_str().unwrap()]);
            format!("add {f:?}")
        }
        (11, _, _) => {
            repo.ok(["commit", "-a", "-m", &format!("c{n}"), "--allow-empty"]);
            "commit -a".into()
        }
        (12, Some(f), _) => {
            std::fs::remove_file(root.join(&f)).unwrap();
            std::os::unix::fs::symlink("target", root.join(&f)).unwrap();
            format!("{f:?} replaced by a symlink")
        }
        (13, _, Some(d)) => {
            std::fs::write(root.join(d.join(".dsvignore")), "*.txt\n").unwrap();
            format!(".dsvignore in {d:?}")
        }
        _ => "nothing".into(),
    }
}

#[test]
fn monitored_status_equals_full_scan_after_random_edits() {
    let repo = setup(4, 6);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut used = 0;
    for round in 0..40 {
        let mut done = Vec::new();
        for k in 0..1 + rng.below(4) {
            done.push(random_edit(&repo, &mut rng, round * 10 + k));
        }
        let usage = check(&repo, &format!("round {round}: {}", done.join(", ")));
        used += usize::from(usage.starts_with("used"));
    }
    assert!(
        used >= 10,
        "the monitor was used in only {used} of 40 rounds"
    );
}

#[test]
fn monitored_status_sees_an_edit_made_just_before_it() {
    let repo = setup(2, 3);
    check(&repo, "start");
    for i in 0..20 {
        repo.write("d0/sub/f0.txt", format!("quick {i}\n"));
        repo.write(format!("d1/new{i}"), "x");
        let usage = check(&repo, &format!("edit {i}"));
        assert!(usage.starts_with("used"), "{usage}");
    }
}

#[test]
fn renamed_and_moved_directories_are_seen_by_the_monitor() {
    let repo = setup(3, 3);
    let outside = repo.home().join("outside");
    check(&repo, "start");
    std::fs::rename(repo.path("d0/sub"), repo.path("d0/renamed")).unwrap();
    repo.write("d0/renamed/f0.txt", "changed under the new name");
    check(&repo, "a renamed directory edited at once");
    std::fs::rename(repo.path("d1"), &outside).unwrap();
    check(&repo, "a directory moved out of the tree");
    std::fs::write(outside.join("sub/f1.txt"), "edited outside").unwrap();
    std::fs::rename(&outside, repo.path("d2/back")).unwrap();
    check(&repo, "a directory moved into the tree");
    repo.write("d2/back/sub/f2.txt", "edited after moving in");
    let usage = check(&repo, "an edit inside the moved-in directory");
    assert!(usage.starts_with("used"), "{usage}");
    std::fs::create_dir_all(repo.path("fresh/a/b")).unwrap();
    repo.write("fresh/a/b/c", "created with its directories");
    check(&repo, "new nested directories");
    repo.write("fresh/a/b/d", "created after the first look");
    let usage = check(&repo, "a file in a directory created just before");
    assert!(usage.starts_with("used"), "{usage}");
}

#[test]
fn too_many_changed_paths_is_an_overflow_and_a_full_scan() {
    let repo = setup(2, 10);
    repo.ok(["fsmonitor", "stop"]);
    start_with(&repo, &[("DSV_FSMONITOR_MAX_PATHS", "12")]);
    check(&repo, "start");
    let usage = check(&repo, "nothing");
    assert!(usage.starts_with("used"), "{usage} {}", daemon(&repo));
    // 20 paths: the daemon forgets them all at the 13th and keeps the last 8.
    for f in 0..20 {
        repo.write(format!("d0/sub/f{f}.txt"), "flood");
    }
    let usage = check(&repo, "more changes than the daemon keeps");
    assert!(usage.starts_with("full"), "{usage}");
    assert!(daemon(&repo)["overflows"].as_u64().unwrap() >= 1);
    repo.write("d1/sub/f0.txt", "after the overflow");
    let usage = check(&repo, "an edit after the overflow");
    assert!(usage.starts_with("used"), "{usage}");
}

#[test]
fn inotify_queue_overflow_falls_back_to_a_full_scan() {
    let repo = setup(1, 3);
    check(&repo, "start");
    let pid = daemon(&repo)["pid"].as_u64().unwrap() as i32;
    let queue: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    // A stopped daemon reads nothing: the kernel's queue fills up and overflows.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
    std::fs::create_dir(repo.path("flood")).unwrap();
    for i in 0..queue / 2 + 100 {
        std::fs::write(repo.path(format!("d0/sub/flood{i}")), b"x").unwrap();
    }
    repo.write("d0/sub/f0.txt", "edited during the flood");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGCONT).unwrap();
    let usage = check(&repo, "an inotify overflow");
    assert!(usage.starts_with("full"), "{usage}");
    assert!(daemon(&repo)["overflows"].as_u64().unwrap() >= 1);
    repo.write("d0/sub/f1.txt", "after the overflow");
    check(&repo, "an edit after the overflow");
}

#[test]
fn killed_monitor_is_replaced_and_nothing_is_missed() {
    let repo = setup(2, 4);
    check(&repo, "start");
    let mut rng = Rng(42);
    for round in 0..4 {
        let pid = daemon(&repo)["pid"].as_u64().unwrap() as i32;
        random_edit(&repo, &mut rng, round * 100);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        random_edit(&repo, &mut rng, round * 100 + 1);
        // The killed daemon's socket is left behind: the next status must not trust it.
        let usage = check(&repo, &format!("kill -9 of the daemon in round {round}"));
        // "not running", or the connection reset if the kill is still under way.
        assert!(usage.starts_with("full"), "{usage}");
        repo.ok(["fsmonitor", "start"]);
        repo.write(format!("d0/sub/f{round}.txt"), "with the new daemon");
        let usage = check(&repo, "edits with the new daemon");
        assert!(
            usage.starts_with("full"),
            "a new daemon cannot answer an old token: {usage}"
        );
        repo.write(format!("d1/sub/f{round}.txt"), "more with the new daemon");
        let usage = check(&repo, "more edits with the new daemon");
        assert!(usage.starts_with("used"), "{usage}");
    }
}

#[test]
fn two_worktree_writers_and_concurrent_statuses_miss_nothing() {
    let repo = setup(4, 5);
    check(&repo, "start");
    let root = repo.root().to_path_buf();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(7 + w);
                for i in 0..300 {
                    let d = root.join(format!("d{}/sub", w * 2 + rng.below(2) as u64));
                    let f = d.join(format!("w{w}-{}", rng.below(20)));
                    match rng.below(3) {
                        0 => drop(std::fs::remove_file(&f)),
                        _ => drop(std::fs::write(&f, format!("{w} {i}"))),
                    }
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    // Statuses and adds while both write: they must work, and the next look must be right.
    for _ in 0..4 {
        repo.ok(["status", "--json"]);
        // May refuse a file written while it reads it; then it stages nothing.
        let add = repo.run(["add", "-A"]);
        assert!(
            add.code == 0 || add.stderr.contains("changed while being added"),
            "{add}"
        );
    }
    for w in writers {
        w.join().unwrap();
    }
    let usage = check(&repo, "two writers and concurrent adds");
    assert!(usage.starts_with("used"), "{usage}");
}

#[test]
fn monitor_off_by_default_and_status_without_it_never_starts_a_daemon() {
    let repo = TestRepo::init();
    repo.write("a", "1");
    let out = repo
        .cmd()
        .env("DSV_TRACE_FSMONITOR", "1")
        .args(["status"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("fsmonitor: off"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(daemon(&repo), serde_json::Value::Null);
}

/// How many paths a monitored status looked at (`used (N paths)`), `None` for a full scan.
fn used_paths(usage: &str) -> Option<usize> {
    usage
        .strip_prefix("used (")?
        .strip_suffix(" paths)")?
        .parse()
        .ok()
}

/// A committed tree with a branch `other` that differs from `main` in `d0/sub/f0.txt`
/// (changed) and `d1/sub/only-main.txt` (added on main), the monitor on and used once.
fn setup_branches(dirs: usize, files: usize) -> TestRepo {
    let repo = setup(dirs, files);
    repo.ok(["branch", "other"]);
    repo.write("d0/sub/f0.txt", "main's version\n");
    repo.write("d1/sub/only-main.txt", "main only\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "main"]);
    check(&repo, "start");
    repo
}

/// Sets every worktree file's mtime an hour back and lets status record that, so no
/// index entry is smudged (too recent to trust) and a monitored status looks only at
/// what changed.
fn age_files(repo: &TestRepo) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for f in listing(repo.root()).0 {
        let file = std::fs::File::options()
            .write(true)
            .open(repo.root().join(f))
            .unwrap();
        file.set_times(std::fs::FileTimes::new().set_modified(old))
            .unwrap();
    }
    check(repo, "aged files");
    check(repo, "aged files recorded");
}

#[test]
fn the_first_status_after_dsv_writes_the_index_is_monitored() {
    let repo = setup_branches(4, 6);
    age_files(&repo);
    let files = 4 * 6 + 1;
    let steps: &[(&[&str], &str)] = &[
        (&["switch", "-q", "other"], "switch"),
        (&["switch", "-q", "main"], "switch back"),
        (&["reset", "-q", "--hard", "other"], "reset --hard"),
        (&["reset", "-q", "--mixed", "main"], "reset --mixed"),
        (
            &["checkout", "-q", "main", "--", "d0/sub/f0.txt"],
            "checkout -- path",
        ),
        (&["rm", "--cached", "-q", "d2/sub/f1.txt"], "rm --cached"),
        (&["add", "d2/sub/f1.txt"], "add of one path"),
        (
            &["restore", "--staged", "d0/sub/f0.txt"],
            "restore --staged",
        ),
        (&["switch", "-q", "-f", "other"], "switch -f"),
    ];
    for (args, what) in steps {
        repo.ok(*args);
        let usage = check(&repo, what);
        // Before, every such write changed the index's stamp: "full scan (the index changed)".
        let n = used_paths(&usage).unwrap_or_else(|| panic!("after {what}: {usage}"));
        assert!(n < files / 2, "after {what} the status looked at {n} paths");
    }
}

#[test]
fn an_edit_made_while_a_switch_runs_is_seen_by_the_next_monitored_status() {
    let repo = setup_branches(3, 40);
    let root = repo.root().to_path_buf();
    for round in 0..6 {
        let target = if round % 2 == 0 { "other" } else { "main" };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 3 {
                    // Tracked files the switch does not touch, and a new one.
                    let f = root.join(format!("d{}/sub/f{}.txt", 1 + i % 2, 1 + i % 30));
                    let _ = std::fs::write(&f, format!("outside {round} {i}\n"));
                    let _ = std::fs::write(root.join(format!("d2/during{round}")), format!("{i}"));
                    i += 1;
                }
            })
        };
        // The writer touches nothing the switch changes: it must succeed, carrying
        // the outside edits along.
        repo.ok(["switch", "-q", target]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        let usage = check(&repo, &format!("outside edits during switch {round}"));
        assert!(usage.starts_with("used"), "{usage}");
    }
}

/// One dsv command that rewrites the index (and often the worktree).
fn random_dsv_write(repo: &TestRepo, rng: &mut Rng) -> (String, bool) {
    let (files, _) = listing(repo.root());
    let f = files
        .get(rng.below(files.len()))
        .map(|p| p.to_str().unwrap().to_string())
        .unwrap_or_else(|| "d0/sub/f0.txt".into());
    let rev = ["main", "other", "HEAD", "HEAD~1"][rng.below(4)];
    let head = repo.read_string(".dsv/HEAD");
    let other = if head.trim_end().ends_with("heads/main") {
        "other"
    } else {
        "main"
    };
    let args: Vec<String> = match rng.below(11) {
        0 | 1 => vec!["switch".into(), other.into()],
        2 => vec!["switch".into(), "-f".into(), other.into()],
        3 => vec!["reset".into(), "--hard".into(), rev.into()],
        4 => vec!["reset".into(), "--mixed".into(), rev.into()],
        5 => vec!["checkout".into(), rev.into(), "--".into(), "d0".into()],
        6 => vec!["restore".into(), f],
        7 => vec!["restore".into(), "--staged".into(), f],
        8 => vec!["rm".into(), "--cached".into(), "-q".into(), f],
        9 => vec!["stash".into()],
        _ => vec!["stash".into(), "pop".into()],
    };
    let run = repo.run(&args);
    assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    if repo.exists(".dsv/MERGE_STATE") {
        // A stash pop that stopped on conflicts: give it up.
        let _ = repo.run(["merge", "--abort"]);
    }
    (format!("{} -> {}", args.join(" "), run.code), run.code == 0)
}

#[test]
fn monitored_status_equals_full_scan_over_switches_resets_and_outside_edits() {
    let repo = setup_branches(3, 5);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut after_writes = 0;
    let mut used_after_writes = 0;
    for round in 0..45 {
        let mut done = Vec::new();
        let mut wrote = false;
        for k in 0..1 + rng.below(3) {
            if rng.below(2) == 0 {
                let (what, ok) = random_dsv_write(&repo, &mut rng);
                wrote |= ok;
                done.push(what);
            } else {
                done.push(random_edit(&repo, &mut rng, round * 10 + k));
            }
        }
        let usage = check(&repo, &format!("round {round}: {}", done.join(", ")));
        if wrote {
            after_writes += 1;
            used_after_writes += usize::from(usage.starts_with("used"));
        }
    }
    // Outside edits (a .dsvignore, a moved directory) force full scans at times;
    // what dsv writes itself must not.
    assert!(
        used_after_writes * 2 > after_writes,
        "the monitor was used after only {used_after_writes} of {after_writes} rounds with dsv writes"
    );
}
