//! `status` answers from keyed lookups of the index: the tree id recorded in the
//! index says whether anything is staged, and the smudged table says which entries
//! the racy-timestamp rule re-hashes. These tests check that every change of the
//! entries (by dsv, or by an older dsv that keeps neither) is still seen.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::common::TestRepo;

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

fn committed() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("a.txt", "alpha\n");
    repo.write("b.txt", "beta\n");
    repo.write("d/c.txt", "gamma\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

fn porcelain(repo: &TestRepo, env: &[(&str, &str)]) -> String {
    let mut cmd = repo.cmd();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["status", "--porcelain"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What an older dsv does to the index: rewrites `path`'s entry with `from`'s
/// content id and sets a new stamp, keeping none of the derived tables.
fn older_dsv_restages(index: &Path, path: &str, from: &str) {
    let db = redb::Database::open(index).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut entries = tx.open_table(ENTRIES).unwrap();
        let source = entries
            .get(from.as_bytes())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let mut entry = entries
            .get(path.as_bytes())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        entry[1..9].copy_from_slice(&source[1..9]);
        entry[33..65].copy_from_slice(&source[33..65]);
        entries.insert(path.as_bytes(), entry.as_slice()).unwrap();
        let mut meta = tx.open_table(META).unwrap();
        let stamp = meta.get("stamp").unwrap().unwrap().value();
        meta.insert("stamp", stamp + 1).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn status_sees_a_staged_change_after_add_of_one_file() {
    let repo = committed();
    // The first status hashes the index and records its tree id; the second trusts it.
    assert_eq!(porcelain(&repo, &[]), "");
    assert_eq!(porcelain(&repo, &[]), "");
    repo.write("a.txt", "alpha 2\n");
    repo.ok(["add", "a.txt"]);
    assert_eq!(porcelain(&repo, &[]), "M  a.txt\n");
    repo.ok(["commit", "-m", "two"]);
    assert_eq!(porcelain(&repo, &[]), "");
    repo.ok(["rm", "--cached", "-q", "b.txt"]);
    assert_eq!(porcelain(&repo, &[]), "D  b.txt\n?? b.txt\n");
}

#[test]
fn status_with_the_monitor_sees_a_staged_change_the_monitor_does_not_report() {
    let repo = committed();
    repo.ok(["config", "core.fsmonitor", "true"]);
    repo.ok(["fsmonitor", "start"]);
    for _ in 0..3 {
        assert_eq!(porcelain(&repo, &[]), "");
    }
    // Only the index changes: the worktree is as the monitor last saw it.
    repo.ok(["rm", "--cached", "-q", "d/c.txt"]);
    assert_eq!(porcelain(&repo, &[]), "D  d/c.txt\n?? d/c.txt\n");
    assert_eq!(
        porcelain(&repo, &[]),
        porcelain(&repo, &[("DSV_FSMONITOR", "0")])
    );
    repo.ok(["fsmonitor", "stop"]);
}

#[test]
fn status_of_an_index_written_by_an_older_dsv_is_right() {
    let repo = committed();
    assert_eq!(porcelain(&repo, &[]), "");
    assert_eq!(porcelain(&repo, &[]), "");
    // The recorded tree id still names the committed tree: an older dsv staging
    // b.txt's content as a.txt must not be hidden by it.
    older_dsv_restages(&repo.path(".dsv/index.redb"), "a.txt", "b.txt");
    assert_eq!(porcelain(&repo, &[]), "MM a.txt\n");
    // That status rebuilt the derived tables; the next ones read them.
    assert_eq!(porcelain(&repo, &[]), "MM a.txt\n");
    repo.ok(["add", "a.txt"]);
    assert_eq!(porcelain(&repo, &[]), "");
}

#[test]
fn status_of_an_index_written_by_an_older_dsv_with_the_monitor_is_right() {
    let repo = committed();
    repo.ok(["config", "core.fsmonitor", "true"]);
    repo.ok(["fsmonitor", "start"]);
    for _ in 0..3 {
        assert_eq!(porcelain(&repo, &[]), "");
    }
    older_dsv_restages(&repo.path(".dsv/index.redb"), "d/c.txt", "b.txt");
    assert_eq!(porcelain(&repo, &[]), "MM d/c.txt\n");
    assert_eq!(porcelain(&repo, &[]), "MM d/c.txt\n");
    repo.ok(["fsmonitor", "stop"]);
}

const CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("cache");

/// The tree id the index records for its current state (hex), as `status` reads it:
/// only while `gen` and `stamp` are those it was recorded at and `aux` == `stamp`.
fn recorded_tree(repo: &TestRepo) -> Option<String> {
    recorded_tree_in(repo.root())
}

fn recorded_tree_in(dir: &Path) -> Option<String> {
    let db = redb::Database::open(dir.join(".dsv/index.redb")).unwrap();
    let tx = db.begin_read().unwrap();
    let meta = tx.open_table(META).unwrap();
    let get = |k: &str| meta.get(k).unwrap().map(|v| v.value());
    let (stamp, generation) = (get("stamp"), get("gen").unwrap_or(0));
    if stamp.is_none() || stamp != get("aux") {
        return None;
    }
    let cache = tx.open_table(CACHE).ok()?;
    let v = cache.get("tree").unwrap()?.value().to_vec();
    let ok = v.len() == 48
        && v[..8] == generation.to_le_bytes()
        && v[8..16] == stamp.unwrap().to_le_bytes();
    ok.then(|| v[16..].iter().map(|b| format!("{b:02x}")).collect())
}

/// Forgets the recorded tree id: the next status takes the full path.
fn forget_tree(repo: &TestRepo) {
    forget_tree_in(repo.root())
}

fn forget_tree_in(dir: &Path) {
    let db = redb::Database::open(dir.join(".dsv/index.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(CACHE).unwrap().remove("tree").unwrap();
    tx.commit().unwrap();
}

fn head_tree(repo: &TestRepo, dir: &Path) -> String {
    let id = repo
        .ok_in(dir, ["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_string();
    let commit: serde_json::Value =
        serde_json::from_str(&repo.ok_in(dir, ["cat-object", id.as_str()]).stdout).unwrap();
    commit["tree"].as_str().unwrap().to_string()
}

/// `status --porcelain`, and whether it knew what is staged without reading the
/// whole index (the phase it reports under `DSV_TRACE_PERF`).
fn traced_status(repo: &TestRepo, args: &[&str]) -> (String, bool) {
    traced_status_in(repo, repo.root(), args)
}

fn traced_status_in(repo: &TestRepo, dir: &Path, args: &[&str]) -> (String, bool) {
    let out = repo
        .cmd_in(dir)
        .env("DSV_TRACE_PERF", "1")
        .arg("status")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    let known = err.contains("perf: status.staged_known ");
    assert!(
        known || err.contains("perf: status.index_read_whole "),
        "{err}"
    );
    (String::from_utf8(out.stdout).unwrap(), known)
}

/// After `what`, the index records HEAD's tree and the first status trusts it.
fn assert_recorded(repo: &TestRepo, what: &str, porcelain: &str) {
    assert_recorded_in(repo, repo.root(), what, porcelain)
}

fn assert_recorded_in(repo: &TestRepo, dir: &Path, what: &str, porcelain: &str) {
    assert_eq!(
        recorded_tree_in(dir),
        Some(head_tree(repo, dir)),
        "after {what}, the index should record HEAD's tree"
    );
    let (out, known) = traced_status_in(repo, dir, &["--porcelain"]);
    assert!(known, "after {what}, status read the whole index");
    assert_eq!(out, porcelain, "after {what}");
    forget_tree_in(dir);
    assert_eq!(traced_status_in(repo, dir, &["--porcelain"]), (out, false));
}

#[test]
fn every_write_that_knows_the_index_tree_records_it_for_the_next_status() {
    let repo = committed();
    assert_recorded(&repo, "commit", "");
    repo.write("a.txt", "alpha 2\n");
    repo.ok(["commit", "-a", "-m", "two"]);
    assert_recorded(&repo, "commit -a", "");
    repo.ok(["switch", "-c", "side"]);
    assert_recorded(&repo, "switch -c", "");
    repo.write("d/e.txt", "epsilon\n");
    repo.ok(["add", "d/e.txt"]);
    repo.ok(["rm", "-q", "b.txt"]);
    repo.ok(["commit", "-m", "side"]);
    assert_recorded(&repo, "commit of an add and a rm", "");
    repo.ok(["switch", "main"]);
    assert_recorded(&repo, "switch", "");
    repo.write("d/c.txt", "gamma 2\n");
    repo.ok(["commit", "-a", "-m", "main"]);
    repo.ok(["merge", "side", "-m", "merge side"]);
    assert_recorded(&repo, "merge", "");
    repo.ok(["switch", "-c", "ff", "HEAD~1"]);
    repo.ok(["merge", "main"]);
    assert_recorded(&repo, "fast-forward merge", "");
    repo.ok(["reset", "--hard", "HEAD~1"]);
    assert_recorded(&repo, "reset --hard", "");
    repo.ok(["reset", "main"]);
    // The worktree stays at HEAD~1's files.
    assert_recorded(&repo, "reset --mixed", " D d/e.txt\n?? b.txt\n");
    repo.remove("b.txt");
    repo.ok(["switch", "-f", "side"]);
    assert_recorded(&repo, "switch -f", "");
    repo.ok(["cherry-pick", "main~1"]);
    assert_recorded(&repo, "cherry-pick", "");
    repo.ok(["revert", "HEAD"]);
    assert_recorded(&repo, "revert", "");
    repo.write("a.txt", "alpha 3\n");
    repo.ok(["add", "a.txt"]);
    repo.write("d/c.txt", "gamma 3\n");
    repo.ok(["stash", "-m", "aside"]);
    assert_recorded(&repo, "stash", "");
    repo.ok(["sparse", "set", "d"]);
    repo.ok(["sparse", "disable"]);
    assert_recorded(&repo, "sparse set and disable", "");
    // A switch carrying a staged change does not record the target's tree: the
    // index is not it.
    repo.write("x.txt", "staged\n");
    repo.ok(["add", "x.txt"]);
    repo.ok(["switch", "main"]);
    assert_eq!(recorded_tree(&repo), None);
    assert_eq!(
        traced_status(&repo, &["--porcelain"]),
        ("A  x.txt\n".into(), false)
    );
}

/// `status --json` twice: as it is (trusting a recorded tree id, if any), then with
/// the recorded id forgotten (the full path). Returns the first and whether it
/// took the fast path.
fn status_both_ways(repo: &TestRepo) -> (String, String, bool) {
    let out = repo
        .cmd()
        .env("DSV_TRACE_PERF", "1")
        .args(["status", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    let known = err.contains("perf: status.staged_known ");
    let fast = String::from_utf8(out.stdout).unwrap();
    forget_tree(repo);
    let full = repo.ok(["status", "--json"]).stdout;
    (fast, full, known)
}

/// A small deterministic generator (xorshift64*): the sequences are reproducible
/// from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn status_trusting_recorded_trees_equals_the_full_path_over_random_operations() {
    let (fast_steps, _) = random_operations(false);
    // The comparison means something only if the fast path was taken often.
    assert!(
        fast_steps > 20,
        "only {fast_steps} steps took the fast path"
    );
}

/// The same operations with the file-system monitor on: after each, `status` through
/// the monitor must equal a full scan, and the monitor must stay in use across the
/// commands that rewrite the index (it carries its token over them).
#[test]
fn monitored_status_equals_the_full_scan_over_random_operations() {
    let (used_steps, rewrites) = random_operations(true);
    // A sparse definition changed by `sparse` is a full scan; every other rewrite
    // of the index by dsv keeps the monitor (before, none did).
    assert!(rewrites >= 15, "only {rewrites} steps rewrote the index");
    assert!(
        used_steps * 4 >= rewrites * 3,
        "the monitor was used after only {used_steps} of {rewrites} commands that rewrote the index"
    );
}

/// Random edits and commands on three seeds, comparing after each step the fast
/// status with the full one: trusting the recorded tree or not, or (`monitor`)
/// through the monitor or not. Returns the steps that took the fast path (with the
/// monitor: among those after a command that rewrote the index), and how many steps
/// rewrote the index.
fn random_operations(monitor: bool) -> (usize, usize) {
    const PATHS: [&str; 5] = ["a.txt", "b.txt", "d/c.txt", "d/e.txt", "f/g.txt"];
    const REVS: [&str; 4] = ["main", "side", "HEAD", "HEAD~1"];
    let mut fast_steps = 0;
    let mut rewrites = 0;
    for seed in [0x9e37_79b9_7f4a_7c15u64, 0x0123_4567_89ab_cdef, 42] {
        let repo = committed();
        repo.write("f/g.txt", "g0\n");
        repo.ok(["commit", "-a", "-m", "g"]);
        repo.ok(["branch", "side"]);
        if monitor {
            repo.ok(["config", "core.fsmonitor", "true"]);
            repo.ok(["fsmonitor", "start"]);
        }
        // `rewrote`: the step was a command other than add and commit that changed
        // the index's stamp (add saves a token of its own, commit keeps the stamp).
        let after_step = |repo: &TestRepo,
                          log: &mut Vec<String>,
                          seed: u64,
                          step: usize,
                          fast_steps: &mut usize,
                          rewrote: bool| {
            if monitor {
                let used = continue_monitored(repo, log, seed, step);
                *fast_steps += usize::from(used && rewrote);
            } else {
                continue_status(repo, log, seed, step, fast_steps)
            }
        };
        let mut rng = Rng(seed);
        let mut log = Vec::new();
        for step in 0..45 {
            let p = PATHS[rng.below(PATHS.len() as u64) as usize];
            let rev = REVS[rng.below(REVS.len() as u64) as usize];
            // Few contents, so that a file often returns to a committed version.
            let content = format!("v{}\n", rng.below(3));
            let other = |repo: &TestRepo| {
                let head = repo.read_string(".dsv/HEAD");
                if head.trim_end().ends_with("heads/main") {
                    "side"
                } else {
                    "main"
                }
            };
            let args: Vec<String> = match rng.below(20) {
                0 | 1 => {
                    repo.write(p, &content);
                    log.push(format!("write {p} {content:?}"));
                    after_step(&repo, &mut log, seed, step, &mut fast_steps, false);
                    continue;
                }
                2 => vec!["add".into(), p.into()],
                3 => vec!["add".into(), "-A".into()],
                4 => vec!["rm".into(), "--cached".into(), "-q".into(), p.into()],
                5 => vec!["rm".into(), "-q".into(), p.into()],
                6 => vec!["commit".into(), "-m".into(), format!("s{step}")],
                7 => vec![
                    "commit".into(),
                    "-a".into(),
                    "-m".into(),
                    format!("s{step}"),
                ],
                8 => vec!["switch".into(), other(&repo).into()],
                9 => vec!["switch".into(), "-f".into(), other(&repo).into()],
                10 => {
                    let mode = ["--soft", "--mixed", "--hard"][rng.below(3) as usize];
                    vec!["reset".into(), mode.into(), rev.into()]
                }
                11 => vec!["restore".into(), "--staged".into(), p.into()],
                12 => match rng.below(2) {
                    0 => vec!["sparse".into(), "set".into(), "d".into()],
                    _ => vec!["sparse".into(), "disable".into()],
                },
                13 => match rng.below(2) {
                    0 => vec!["stash".into()],
                    _ => vec!["stash".into(), "pop".into()],
                },
                14 => vec!["merge".into(), other(&repo).into(), "-m".into(), "m".into()],
                15 => vec!["cherry-pick".into(), other(&repo).into()],
                16 => vec![
                    "commit".into(),
                    "--amend".into(),
                    "-m".into(),
                    "amended".into(),
                ],
                17 => vec!["checkout".into(), rev.into(), "--".into(), p.into()],
                _ => {
                    if repo.exists(p) {
                        repo.remove(p);
                    }
                    log.push(format!("delete {p}"));
                    after_step(&repo, &mut log, seed, step, &mut fast_steps, false);
                    continue;
                }
            };
            let stamp = index_stamp(&repo);
            let run = repo.run(&args);
            assert!(
                !run.stderr.contains("panicked"),
                "seed {seed:#x}, {args:?}: {}",
                run.stderr
            );
            log.push(format!("{} -> {}", args.join(" "), run.code));
            if repo.exists(".dsv/MERGE_STATE") {
                // A merge or cherry-pick stopped on conflicts: give it up.
                if repo.run(["merge", "--abort"]).code != 0 {
                    repo.ok(["cherry-pick", "--abort"]);
                }
                log.push("merge --abort".into());
            }
            let rewrote =
                index_stamp(&repo) != stamp && !matches!(args[0].as_str(), "add" | "commit");
            rewrites += usize::from(rewrote);
            after_step(&repo, &mut log, seed, step, &mut fast_steps, rewrote);
        }
        if monitor {
            repo.ok(["fsmonitor", "stop"]);
        }
    }
    (fast_steps, rewrites)
}

/// The index's stamp (meta "stamp"), which every write of its entries changes.
fn index_stamp(repo: &TestRepo) -> Option<i64> {
    let db = redb::Database::open(repo.path(".dsv/index.redb")).unwrap();
    let tx = db.begin_read().unwrap();
    let meta = tx.open_table(META).unwrap();
    meta.get("stamp").unwrap().map(|v| v.value())
}

/// After a step: `status --json` through the monitor equals a full scan. Returns
/// whether the monitor was used.
fn continue_monitored(repo: &TestRepo, log: &mut [String], seed: u64, step: usize) -> bool {
    let out = repo
        .cmd()
        .env("DSV_TRACE_FSMONITOR", "1")
        .args(["status", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    let usage = err
        .lines()
        .find_map(|l| l.strip_prefix("fsmonitor: "))
        .unwrap_or_default()
        .to_string();
    let full = repo
        .cmd()
        .env("DSV_FSMONITOR", "0")
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(full.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&full.stdout),
        "seed {seed:#x}, step {step}, a monitored status ({usage}) differs from a full \
         scan after:\n{}",
        log.join("\n")
    );
    usage.starts_with("used")
}

fn continue_status(
    repo: &TestRepo,
    log: &mut [String],
    seed: u64,
    step: usize,
    fast_steps: &mut usize,
) {
    let (fast, full, known) = status_both_ways(repo);
    assert_eq!(
        fast,
        full,
        "seed {seed:#x}, step {step}, a status trusting the recorded tree differs \
         from the full path after:\n{}",
        log.join("\n")
    );
    *fast_steps += usize::from(known);
}

#[test]
fn clone_and_pull_record_the_tree_they_check_out() {
    let t = TestRepo::new();
    let (a, b, remote) = (t.path("a"), t.path("b"), t.path("remote"));
    std::fs::create_dir_all(a.join("d")).unwrap();
    t.ok_in(&a, ["init"]);
    t.ok_in(&a, ["remote", "add", "origin", remote.to_str().unwrap()]);
    std::fs::write(a.join("d/one.txt"), "one\n").unwrap();
    std::fs::write(a.join("two.txt"), "two\n").unwrap();
    t.ok_in(&a, ["add", "-A"]);
    t.ok_in(&a, ["commit", "-m", "one"]);
    t.ok_in(&a, ["push", "origin", "main"]);
    t.ok(["clone", remote.to_str().unwrap(), "b"]);
    assert_recorded_in(&t, &b, "clone", "");
    std::fs::write(a.join("d/one.txt"), "one 2\n").unwrap();
    t.ok_in(&a, ["commit", "-am", "two"]);
    t.ok_in(&a, ["push"]);
    t.ok_in(&b, ["pull"]);
    assert_recorded_in(&t, &b, "pull (fast-forward)", "");
    assert_eq!(
        std::fs::read_to_string(b.join("d/one.txt")).unwrap(),
        "one 2\n"
    );
}

/// The status that compares each file with its entry as the walk finds it (the fast
/// path) must equal the full path on layouts where a directory's files and its
/// subdirectories' interleave in path order, a tracked file became a directory and
/// a directory a file, a tracked directory is ignored or gone, and files are new at
/// every depth.
#[test]
fn the_walk_compared_as_it_goes_equals_the_full_path_on_awkward_layouts() {
    use std::os::unix::fs::PermissionsExt;
    let repo = TestRepo::init();
    for (p, c) in [
        ("a/b.txt", "b\n"),
        ("a/c/d.txt", "d\n"),
        ("a/e.txt", "e\n"),
        ("a-b.txt", "ab\n"),
        ("a0.txt", "a0\n"),
        ("ab/x.txt", "x\n"),
        ("keep/t.txt", "t\n"),
        ("gone/y.txt", "y\n"),
        ("x/y.txt", "xy\n"),
        ("f", "file\n"),
        ("z.txt", "z\n"),
    ] {
        repo.write(p, c);
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    // Past the racy window, so that the recorded entries are trusted.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        traced_status(&repo, &["--porcelain"]),
        (String::new(), true)
    );
    repo.write(".dsvignore", "keep/\n");
    repo.write("keep/t.txt", "t changed\n");
    std::fs::remove_dir_all(repo.path("gone")).unwrap();
    std::fs::remove_dir_all(repo.path("x")).unwrap();
    repo.write("x", "now a file\n");
    repo.remove("f");
    repo.write("f/inside.txt", "now a directory\n");
    repo.write("a/c/new.txt", "n\n");
    repo.write("a/d-new.txt", "n\n");
    repo.write("new/deep/n.txt", "n\n");
    repo.write("a/e.txt", "E\n");
    let b = repo.path("a/b.txt");
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (fast, known) = traced_status(&repo, &["--porcelain", "-u"]);
    assert!(known, "the fast path was not taken");
    assert_eq!(
        fast,
        " M a/b.txt\n M a/e.txt\n D f\n D gone/y.txt\n M keep/t.txt\n D x/y.txt\n\
         ?? .dsvignore\n?? a/c/new.txt\n?? a/d-new.txt\n?? f/inside.txt\n?? new/deep/n.txt\n?? x\n"
    );
    let (fast, full, known) = status_both_ways(&repo);
    assert!(known);
    assert_eq!(fast, full);
}
