//! Garbage collection of a remote (`dsv gc --remote`) and retention pins
//! (`dsv pin`): reclaiming after the grace period, pins, dry runs, rewriting
//! mostly-dead packs, hostile gc records, and pushers, fetchers and collectors
//! racing on one remote.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::azurite::Azurite;
use common::s3::Moto;
use common::{Run, TestRepo, pseudo_random_bytes, write_file};

/// Runs dsv in `dir` (absolute, or relative to the worktree) with extra environment.
fn dsv(t: &TestRepo, dir: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
    let mut cmd = t.cmd_in(dir);
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
fn ok(t: &TestRepo, dir: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
    let r = dsv(t, dir, env, args);
    assert_eq!(r.code, 0, "dsv {} failed:\n{r}", args.join(" "));
    r
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{r}"))
}

/// `gc --remote --grace G --json`.
#[track_caller]
fn gc(t: &TestRepo, env: &[(&str, String)], grace: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["gc", "--remote", "origin", "--grace", grace, "--json"];
    args.extend_from_slice(extra);
    json(&ok(t, Path::new("."), env, &args))
}

/// Every file under `dir` with its content (the remote as a directory).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_with_bytes(dir, |_| false)
}

/// Bytes of the packs of a file remote.
fn pack_bytes(remote: &Path) -> u64 {
    std::fs::read_dir(remote.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// A repository with `main` (a small file) pushed to a file remote, and branch
/// `side` (600 KB of its own data) pushed too. Returns the remote directory.
fn two_branches(t: &TestRepo) -> PathBuf {
    let remote = t.home().join("remote");
    write_file(t.root(), "main.txt", "main\n");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "main"]);
    t.ok([
        "remote",
        "add",
        "origin",
        &format!("file://{}", remote.display()),
    ]);
    t.ok(["push"]);
    t.ok(["switch", "-c", "side"]);
    write_file(t.root(), "side.bin", pseudo_random_bytes(600_000, 1));
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "side"]);
    t.ok(["push", "origin", "side"]);
    t.ok(["switch", "main"]);
    remote
}

/// What `push --delete` does to a file remote's branch (its sequence files go).
fn delete_remote_branch(remote: &Path, branch: &str) {
    std::fs::remove_dir_all(remote.join("refs/heads").join(branch)).unwrap();
}

#[test]
fn deleted_branch_is_reclaimed_after_the_grace_period() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    let before = pack_bytes(&remote);
    delete_remote_branch(&remote, "side");
    // Packs younger than the grace period may belong to a push under way: kept.
    let r = gc(&t, &[], "1d", &[]);
    assert_eq!(r["recorded"]["packs"], 0, "{r}");
    assert!(r["kept"]["young"]["packs"].as_u64().unwrap() >= 2, "{r}");
    // Past it, the first run only records the candidates...
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["recorded"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    assert_eq!(r["freed"]["packs"], 0, "{r}");
    assert_eq!(pack_bytes(&remote), before);
    // ...and a run past the grace period of that record deletes them.
    let r = gc(&t, &[], "0s", &[]);
    let freed = r["freed"]["bytes"].as_u64().unwrap();
    assert!(freed >= 600_000, "{r}");
    assert!(pack_bytes(&remote) <= before - freed);
    assert!(pack_bytes(&remote) < 10_000, "{}", pack_bytes(&remote));
    let f = t.ok(["fsck", "--remote"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    t.ok_in(
        t.home(),
        ["clone", &format!("file://{}", remote.display()), "c"],
    );
    assert_eq!(
        std::fs::read(t.home().join("c/main.txt")).unwrap(),
        b"main\n"
    );
}

#[test]
fn pinned_version_survives_branch_deletion() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    t.ok([
        "pin",
        "add",
        "side",
        "--note",
        "model v1 was trained on this",
    ]);
    let list = t.ok(["pin", "list"]);
    assert!(
        list.stdout.contains("model v1 was trained on this"),
        "{list}"
    );
    delete_remote_branch(&remote, "side");
    let before = snapshot(&remote.join("packs"));
    for _ in 0..2 {
        let r = gc(&t, &[], "0s", &[]);
        assert_eq!(r["freed"]["packs"], 0, "{r}");
        assert_eq!(r["recorded"]["packs"], 0, "{r}");
    }
    assert!(snapshot(&remote.join("packs")) == before, "packs changed");
    // The pin is what kept it: without it the data goes.
    t.ok(["pin", "rm", "side"]);
    gc(&t, &[], "0s", &[]);
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["freed"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    // Pinning what the remote does not have is refused.
    t.ok(["switch", "-c", "local-only"]);
    write_file(t.root(), "x.txt", "x\n");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "x"]);
    let e = t.fails(["pin", "add", "HEAD"]);
    assert!(e.stderr.contains("push it before pinning it"), "{e}");
}

#[test]
fn version_named_only_in_retention_survives_branch_deletion_and_remote_gc() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    let side = t.ok(["rev-parse", "side"]).stdout.trim().to_string();
    // Named by a short id only: no branch, tag or pin keeps it, here or on the remote.
    write_file(
        t.root(),
        "dsv.toml",
        format!("[retention]\nkeep = [\"{}\"]\n", &side[..12]),
    );
    t.ok(["branch", "-D", "side"]);
    delete_remote_branch(&remote, "side");
    let before = snapshot(&remote.join("packs"));
    for _ in 0..2 {
        let r = gc(&t, &[], "0s", &[]);
        assert_eq!(r["freed"]["packs"], 0, "{r}");
        assert_eq!(r["recorded"]["packs"], 0, "{r}");
        let names: Vec<&str> = r["roots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&format!("dsv.toml [retention] {}", &side[..12]).as_str()),
            "{r}"
        );
    }
    assert!(snapshot(&remote.join("packs")) == before, "packs changed");
    t.ok(["gc"]);
    t.ok(["fsck"]);
    // The version is still whole: a clone of it checks out its file.
    t.ok(["switch", "--detach", &side]);
    assert_eq!(
        std::fs::read(t.root().join("side.bin")).unwrap().len(),
        600_000
    );
    t.ok(["switch", "main"]);
    // The entry is what kept it: without it the data goes.
    write_file(t.root(), "dsv.toml", "[retention]\nkeep = []\n");
    gc(&t, &[], "0s", &[]);
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["freed"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
}

#[test]
fn retention_revision_that_does_not_resolve_stops_gc_with_the_remote_unchanged() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    write_file(
        t.root(),
        "dsv.toml",
        "[retention]\nkeep = [\"side\", \"model-v9\"]\n",
    );
    let before = snapshot(&remote);
    let e = t.fails(["gc", "--remote", "--grace", "0s"]);
    assert!(
        e.stderr
            .contains("[retention] keep: 'model-v9' does not resolve"),
        "{e}"
    );
    assert!(snapshot(&remote) == before, "the remote changed");
    let e = t.fails(["gc"]);
    assert!(e.stderr.contains("'model-v9' does not resolve"), "{e}");
    // A version this clone has but the remote lacks cannot be kept there either.
    t.ok(["switch", "-c", "local-only"]);
    write_file(t.root(), "x.txt", "x\n");
    t.ok(["add", "x.txt"]);
    t.ok(["commit", "-m", "x"]);
    write_file(
        t.root(),
        "dsv.toml",
        "[retention]\nkeep = [\"local-only\"]\n",
    );
    let e = t.fails(["gc", "--remote", "--grace", "0s"]);
    assert!(e.stderr.contains("which is not on remote 'origin'"), "{e}");
    // A typo in the section is an error naming its line, not an empty list.
    write_file(t.root(), "dsv.toml", "[retention]\nkep = [\"side\"]\n");
    let e = t.fails(["gc", "--remote", "--grace", "0s"]);
    assert!(e.stderr.contains("line 2"), "{e}");
}

#[test]
fn remote_gc_dry_run_changes_nothing() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    delete_remote_branch(&remote, "side");
    let before = snapshot(&remote);
    let r = gc(&t, &[], "0s", &["--dry-run"]);
    assert!(r["recorded"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    assert!(snapshot(&remote) == before, "the remote changed");
    // With a record past its grace period, a dry run reports what it would free.
    gc(&t, &[], "0s", &[]);
    let before = snapshot(&remote);
    let r = gc(&t, &[], "0s", &["--dry-run"]);
    assert!(r["freed"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    assert!(snapshot(&remote) == before, "the remote changed");
    let text = t.ok(["gc", "--remote", "--grace", "0s", "--dry-run"]);
    assert!(text.stdout.contains("dry run: nothing changed"), "{text}");
}

#[test]
fn mostly_dead_pack_is_rewritten_with_its_live_records() {
    let t = TestRepo::init();
    let remote = t.home().join("remote");
    write_file(t.root(), "keep.txt", "keep\n");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "one"]);
    let one = t.ok(["rev-parse", "HEAD"]).stdout.trim().to_string();
    write_file(t.root(), "big.bin", pseudo_random_bytes(500_000, 2));
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "two"]);
    t.ok([
        "remote",
        "add",
        "origin",
        &format!("file://{}", remote.display()),
    ]);
    t.ok(["push"]);
    // One pack holds both commits; the second becomes garbage.
    t.ok(["reset", "--hard", &one]);
    t.ok(["push", "--force"]);
    let r = gc(&t, &[], "0s", &["--rewrite-threshold", "0.5"]);
    assert_eq!(r["rewritten"]["packs"], 1, "{r}");
    assert!(r["copied"]["objects"].as_u64().unwrap() >= 3, "{r}");
    assert!(r["copied"]["bytes"].as_u64().unwrap() < 10_000, "{r}");
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["freed"]["bytes"].as_u64().unwrap() >= 500_000, "{r}");
    assert!(pack_bytes(&remote) < 10_000);
    let f = t.ok(["fsck", "--remote", "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    t.ok_in(
        t.home(),
        ["clone", &format!("file://{}", remote.display()), "c"],
    );
    assert_eq!(
        std::fs::read(t.home().join("c/keep.txt")).unwrap(),
        b"keep\n"
    );
    // Below the threshold the pack is kept whole.
    let bad = t.run(["gc", "--remote", "--rewrite-threshold", "1.5"]);
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn push_resends_objects_of_retiring_packs() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    delete_remote_branch(&remote, "side");
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["recorded"]["packs"].as_u64().unwrap() >= 1, "{r}");
    // `side` is pushed again while its packs are retiring: a push that counted on
    // them would leave the branch pointing at data about to be deleted.
    let p = json(&t.ok(["push", "origin", "side", "--json"]));
    assert!(p["objects"].as_u64().unwrap() >= 2, "{p}");
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["freed"]["packs"].as_u64().unwrap() >= 1, "{r}");
    let f = t.ok(["fsck", "--remote", "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
}

#[test]
fn garbage_gc_record_is_a_clear_error() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    let records = remote.join("gc/records");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(
        records.join("00000000000000000001-x.json"),
        b"\x1b[2Jnot json",
    )
    .unwrap();
    write_file(t.root(), "new.txt", "new\n");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "new"]);
    let before = snapshot(&remote);
    for args in [
        &["gc", "--remote", "--grace", "0s"][..],
        &["push", "origin", "main"][..],
    ] {
        let e = t.fails(args);
        assert!(
            e.stderr
                .contains("gc record gc/records/00000000000000000001-x.json is damaged")
                && e.stderr.contains("\\u{1b}[2J")
                && !e.stderr.contains('\x1b')
                && !e.stderr.contains("panicked"),
            "{e}"
        );
    }
    assert!(snapshot(&remote) == before, "the remote changed");
    // A reader does not need the records to be safe: fetch still works.
    t.ok(["fetch"]);
    let f = t.run(["fsck", "--remote"]);
    assert_eq!(f.code, 1, "{f}");
    assert!(f.stdout.contains("is damaged"), "{f}");
}

/// Pushers (fast-forward on their own branch, and forced pushes of a scratch
/// branch that leave garbage), a fetcher and a collector run at once, round
/// after round; after every round the remote checks clean with every record
/// read, and at the end every accepted commit is in a fresh clone's history.
fn race_with_collectors(url: &str, env: &[(&str, String)], rounds: usize) {
    let t = TestRepo::init();
    write_file(t.root(), "base.txt", "base\n");
    ok(&t, Path::new("."), env, &["add", "-A"]);
    ok(&t, Path::new("."), env, &["commit", "-m", "base"]);
    ok(&t, Path::new("."), env, &["remote", "add", "origin", url]);
    ok(&t, Path::new("."), env, &["push"]);
    const PUSHERS: usize = 2;
    let dirs: Vec<PathBuf> = (0..PUSHERS + 1)
        .map(|c| t.home().join(format!("c{c}")))
        .collect();
    for d in &dirs {
        ok(&t, t.home(), env, &["clone", url, d.to_str().unwrap()]);
    }
    for (c, d) in dirs.iter().take(PUSHERS).enumerate() {
        ok(&t, d, env, &["switch", "-c", &format!("b{c}")]);
    }
    let mut accepted: Vec<(usize, String)> = Vec::new();
    let scratch_commits: Vec<std::sync::Mutex<Vec<String>>> =
        (0..PUSHERS).map(|_| Default::default()).collect();
    for round in 0..rounds {
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for (c, d) in dirs.iter().take(PUSHERS).enumerate() {
                let (t, results, scratch_commits) = (&t, &results, &scratch_commits);
                s.spawn(move || {
                    // Garbage: a scratch branch replaced by force every round; every
                    // third round it takes back the commit of two rounds before, whose
                    // packs a collector may be retiring by then.
                    let scratch = format!("scratch{c}");
                    let mut mine = scratch_commits[c].lock().unwrap();
                    if round == 0 {
                        ok(t, d, env, &["switch", "-q", "-c", &scratch]);
                    } else {
                        ok(t, d, env, &["switch", "-q", &scratch]);
                    }
                    if round % 3 == 2 {
                        ok(t, d, env, &["reset", "--hard", &mine[round - 2]]);
                    } else {
                        ok(t, d, env, &["reset", "--hard", &format!("b{c}")]);
                        write_file(
                            d,
                            &format!("scratch{c}.bin"),
                            pseudo_random_bytes(30_000, (round * 10 + c) as u64),
                        );
                        ok(t, d, env, &["add", "-A"]);
                        ok(t, d, env, &["commit", "-m", "scratch"]);
                    }
                    mine.push(
                        ok(t, d, env, &["rev-parse", "HEAD"])
                            .stdout
                            .trim()
                            .to_string(),
                    );
                    drop(mine);
                    ok(
                        t,
                        d,
                        env,
                        &["push", "--force", "origin", &format!("scratch{c}")],
                    );
                    // Work that must survive.
                    ok(t, d, env, &["switch", "-q", &format!("b{c}")]);
                    write_file(
                        d,
                        &format!("b{c}/r{round}.bin"),
                        pseudo_random_bytes(20_000, (round * 10 + c + 5) as u64),
                    );
                    ok(t, d, env, &["add", "-A"]);
                    ok(t, d, env, &["commit", "-m", &format!("b{c} round {round}")]);
                    let r = ok(t, d, env, &["push", "origin", &format!("b{c}"), "--json"]);
                    results
                        .lock()
                        .unwrap()
                        .push((c, json(&r)["new"].as_str().unwrap().to_string()));
                });
            }
            let fetcher = &dirs[PUSHERS];
            let t = &t;
            s.spawn(move || {
                for _ in 0..2 {
                    ok(t, fetcher, env, &["fetch"]);
                }
            });
            s.spawn(move || {
                for _ in 0..2 {
                    ok(
                        t,
                        Path::new("."),
                        env,
                        &[
                            "gc",
                            "--remote",
                            "origin",
                            "--grace",
                            "1s",
                            "--rewrite-threshold",
                            "0.3",
                        ],
                    );
                    std::thread::sleep(std::time::Duration::from_millis(600));
                }
            });
        });
        accepted.extend(results.into_inner().unwrap());
        let f = ok(&t, Path::new("."), env, &["fsck", "--remote", "--records"]);
        assert!(f.stderr.contains(": 0 problems"), "round {round}: {f}");
    }
    // A last pair of collections past the grace period, then everything accepted is there.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = json(&ok(
        &t,
        Path::new("."),
        env,
        &["gc", "--remote", "--grace", "1s", "--json"],
    ));
    eprintln!("final gc: {r}");
    let f = ok(&t, Path::new("."), env, &["fsck", "--remote", "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    let fin = t.home().join("final");
    ok(&t, t.home(), env, &["clone", url, fin.to_str().unwrap()]);
    for c in 0..PUSHERS {
        ok(
            &t,
            &fin,
            env,
            &[
                "switch",
                "-q",
                "-c",
                &format!("b{c}"),
                &format!("origin/b{c}"),
            ],
        );
        let log = json(&ok(&t, &fin, env, &["log", "--json"]));
        let history: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        for (who, id) in &accepted {
            if *who == c {
                assert!(
                    history.contains(&id.as_str()),
                    "accepted commit {id} was lost"
                );
            }
        }
        for round in 0..rounds {
            let got = std::fs::read(fin.join(format!("b{c}/r{round}.bin"))).unwrap();
            assert_eq!(
                got,
                pseudo_random_bytes(20_000, (round * 10 + c + 5) as u64)
            );
        }
    }
}

#[test]
fn race_pushers_fetchers_and_collectors_file() {
    let dir = tempfile::tempdir().unwrap();
    race_with_collectors(
        &format!("file://{}", dir.path().join("r").display()),
        &[],
        6,
    );
}

#[test]
fn race_pushers_fetchers_and_collectors_s3() {
    let moto = Moto::start("gcrace");
    race_with_collectors(&moto.url("r"), &moto.env(), 4);
}

#[test]
fn race_pushers_fetchers_and_collectors_azure() {
    let az = Azurite::start("gcrace");
    race_with_collectors(&az.url("r"), &az.env(), 4);
}

#[test]
fn branch_and_tag_deleted_by_push_delete_are_reclaimed() {
    let t = TestRepo::init();
    let remote = two_branches(&t);
    t.ok(["tag", "v-side", "side"]);
    t.ok(["push", "origin", "v-side"]);
    t.ok(["push", "origin", "--delete", "side"]);
    t.ok(["push", "origin", "--delete", "v-side"]);
    // Their tombstones protect nothing, and are no damaged refs either.
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["recorded"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    let r = gc(&t, &[], "0s", &[]);
    assert!(r["freed"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    assert!(pack_bytes(&remote) < 10_000, "{}", pack_bytes(&remote));
    let f = t.ok(["fsck", "--remote"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
}

/// A push killed after a pack's PUT and before its index's, on S3: the pack is
/// complete (one PUT, never a multipart upload: nothing invisible is left), the
/// resumed push rebuilds it under the same name and does not send it again, and
/// where the push is abandoned instead, `gc --remote` collects the pack as an
/// interrupted upload.
#[test]
fn push_killed_between_pack_and_index_s3_resends_no_pack_and_gc_collects_the_orphan() {
    let moto = Moto::start("orphan");
    let mut env = moto.env();
    env.push(("DSV_REMOTE_PACK_SIZE", "300000".to_string()));
    let env = &env[..];
    let t = TestRepo::init();
    let here = Path::new(".");
    write_file(t.root(), "base.txt", "base\n");
    ok(&t, here, env, &["add", "-A"]);
    ok(&t, here, env, &["commit", "-m", "base"]);
    ok(&t, here, env, &["branch", "base"]);
    for i in 0..4 {
        write_file(
            t.root(),
            &format!("f{i}.bin"),
            pseudo_random_bytes(300_000, 70 + i),
        );
    }
    ok(&t, here, env, &["add", "-A"]);
    ok(&t, here, env, &["commit", "-m", "data"]);
    // Packs without an index under `prefix`, with their sizes.
    let orphans = |prefix: &str| -> Vec<(String, u64)> {
        let listed = moto.list(&format!("{prefix}/packs/"));
        let idx: std::collections::HashSet<String> = listed
            .iter()
            .filter_map(|(k, _)| k.strip_suffix(".idx").map(str::to_string))
            .collect();
        listed
            .into_iter()
            .filter(|(k, _)| k.strip_suffix(".dsvpack").is_some_and(|s| !idx.contains(s)))
            .collect()
    };
    // A remote holding `base`, then a push of main killed at write `n`.
    let killed_at = |name: &str, n: usize| {
        ok(&t, here, env, &["remote", "add", name, &moto.url(name)]);
        ok(&t, here, env, &["push", name, "base"]);
        let mut kill = env.to_vec();
        kill.push(("DSV_FAULT", format!("kill:{n}")));
        let r = dsv(&t, here, &kill, &["push", name, "main"]);
        assert_eq!(r.code, -1, "push {name} was not killed at {n}:\n{r}");
    };
    // The first kill point that leaves a pack without its index.
    let mut n = 1;
    let orphan = loop {
        assert!(n < 80, "no kill point left a pack without its index");
        let name = format!("k{n}");
        killed_at(&name, n);
        if let Some(o) = orphans(&name).pop() {
            break (name, o);
        }
        n += 1;
    };
    let (name, (key, size)) = orphan;
    assert_eq!(moto.pending_uploads(), Vec::<String>::new());
    let landed: u64 = moto
        .list(&format!("{name}/packs/"))
        .iter()
        .map(|(_, s)| s)
        .sum();
    let r = json(&ok(&t, here, env, &["push", &name, "main", "--json"]));
    let sent = r["transfer"]["bytes_up"].as_u64().unwrap();
    let after: u64 = moto
        .list(&format!("{name}/packs/"))
        .iter()
        .map(|(_, s)| s)
        .sum();
    assert!(
        sent < after - landed + size / 2,
        "the resumed push sent {sent} bytes; the packs grew by {} and the orphan {key} ({size} bytes) was sent again",
        after - landed
    );
    assert!(orphans(&name).is_empty(), "{:?}", orphans(&name));
    let f = ok(&t, here, env, &["fsck", "--remote", &name, "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    // (Sent again, the orphan would be an overwrite: sent, but no growth.)
    // The same kill, then the push is abandoned: gc records the pack, then deletes it.
    let abandoned = "abandoned";
    killed_at(abandoned, n);
    let (key, size) = orphans(abandoned)
        .pop()
        .expect("the same kill leaves the same orphan");
    let gc = |expect_freed: bool| {
        let r = json(&ok(
            &t,
            here,
            env,
            &["gc", "--remote", abandoned, "--grace", "0s", "--json"],
        ));
        let field = if expect_freed { "freed" } else { "recorded" };
        assert!(r[field]["bytes"].as_u64().unwrap() >= size, "{r}");
    };
    gc(false);
    assert_eq!(
        orphans(abandoned).len(),
        1,
        "deleted before its grace period"
    );
    gc(true);
    assert!(moto.list(&key).is_empty(), "{key} is still there after gc");
    let f = ok(&t, here, env, &["fsck", "--remote", abandoned]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    ok(&t, here, env, &["push", abandoned, "main"]);
    let f = ok(&t, here, env, &["fsck", "--remote", abandoned, "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
}

/// On Azure (Azurite): a branch deleted with `push --delete` (its tombstone written
/// with `If-Match`) is recorded by one collection (create-only record, the service's
/// clock) and freed by the next past the grace period; pushed again in between,
/// while its packs are retiring, it is sent again and survives.
#[test]
fn deleted_branch_is_reclaimed_and_a_push_during_retirement_survives_azure() {
    let az = Azurite::start("gcdelete");
    let env = &az.env()[..];
    let t = TestRepo::init();
    let here = Path::new(".");
    write_file(t.root(), "main.txt", "main\n");
    ok(&t, here, env, &["add", "-A"]);
    ok(&t, here, env, &["commit", "-m", "main"]);
    ok(&t, here, env, &["remote", "add", "origin", &az.url("r")]);
    ok(&t, here, env, &["push"]);
    ok(&t, here, env, &["switch", "-c", "side"]);
    write_file(t.root(), "side.bin", pseudo_random_bytes(600_000, 1));
    ok(&t, here, env, &["add", "-A"]);
    ok(&t, here, env, &["commit", "-m", "side"]);
    ok(&t, here, env, &["push", "origin", "side"]);
    ok(&t, here, env, &["switch", "main"]);
    ok(&t, here, env, &["push", "origin", "--delete", "side"]);
    let r = gc(&t, env, "0s", &[]);
    assert!(r["recorded"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    assert_eq!(r["freed"]["packs"], 0, "{r}");
    let p = json(&ok(&t, here, env, &["push", "origin", "side", "--json"]));
    assert!(p["objects"].as_u64().unwrap() >= 2, "{p}");
    let r = gc(&t, env, "0s", &[]);
    assert!(r["freed"]["bytes"].as_u64().unwrap() >= 600_000, "{r}");
    let f = ok(&t, here, env, &["fsck", "--remote", "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    let c = t.home().join("c");
    ok(
        &t,
        t.home(),
        env,
        &["clone", &az.url("r"), c.to_str().unwrap()],
    );
    ok(&t, &c, env, &["switch", "-c", "side", "origin/side"]);
    assert_eq!(
        std::fs::read(c.join("side.bin")).unwrap(),
        pseudo_random_bytes(600_000, 1)
    );
}
