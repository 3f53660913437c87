//! Remotes end to end: file:// remotes, a real S3-protocol server (moto on
//! loopback) and a real Azure Blob server (Azurite on loopback): push, fetch, pull,
//! clone, partial clone, non-fast-forward and lease rules, concurrent pushers,
//! killed pushes and pulls, hostile remotes. The round trip, the lease rules and
//! the race run on every backend ([`Backend`]).

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::azurite::Azurite;
use common::s3::Moto;
use common::{Run, TestRepo, pseudo_random_bytes, write_file};

/// Runs dsv in `dir` (relative to the test's home, or absolute) with extra environment.
fn dsv(t: &TestRepo, dir: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
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
fn ok(t: &TestRepo, dir: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
    let r = dsv(t, dir, env, args);
    assert_eq!(
        r.code,
        0,
        "dsv {} in {} failed:\n{r}",
        args.join(" "),
        dir.display()
    );
    r
}

#[track_caller]
fn fails(t: &TestRepo, dir: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
    let r = dsv(t, dir, env, args);
    assert_eq!(r.code, 1, "dsv {} should fail:\n{r}", args.join(" "));
    assert!(
        r.stderr.starts_with("error: ") && !r.stderr.contains("panicked"),
        "unclear error:\n{r}"
    );
    r
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{r}"))
}

/// Every regular file under `dir` (except `.dsv`) with its content, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let dsv = |rel: &str| Path::new(rel).file_name().is_some_and(|n| n == ".dsv");
    common::walk(dir, dsv, |rel, p, m| {
        if m.file_type().is_symlink() {
            let target = std::fs::read_link(p).unwrap();
            out.push((rel.to_string(), target.display().to_string().into_bytes()));
        } else if m.is_file() {
            out.push((rel.to_string(), std::fs::read(p).unwrap()));
        }
    });
    out.sort();
    out
}

/// A dataset: small label files, a few frames, one chunked 3 MiB file, a symlink.
fn make_dataset(root: &Path, seed: u64) {
    for i in 0..12 {
        write_file(
            root,
            &format!("labels/{i:03}.txt"),
            format!("{} 0.5 0.5 0.1 0.1\n", i % 3),
        );
        write_file(
            root,
            &format!("images/{i:03}.bin"),
            pseudo_random_bytes(20_000, seed * 100 + i),
        );
    }
    write_file(
        root,
        "big/video.bin",
        pseudo_random_bytes(3 << 20, seed + 7),
    );
    std::os::unix::fs::symlink("../labels/000.txt", root.join("images/first-label")).unwrap();
}

fn dir_size(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// A remote for the suite every backend runs, with the server behind it (stopped
/// on drop).
enum Backend {
    File(tempfile::TempDir),
    S3(Moto),
    Azure(Azurite),
}

impl Backend {
    fn file() -> Backend {
        Backend::File(tempfile::tempdir().unwrap())
    }

    fn s3(bucket: &str) -> Backend {
        Backend::S3(Moto::start(bucket))
    }

    fn azure(container: &str) -> Backend {
        Backend::Azure(Azurite::start(container))
    }

    /// The remote URL of `prefix` on this backend.
    fn url(&self, prefix: &str) -> String {
        match self {
            Backend::File(dir) => format!("file://{}", dir.path().join(prefix).display()),
            Backend::S3(moto) => moto.url(prefix),
            Backend::Azure(az) => az.url(prefix),
        }
    }

    /// The environment dsv needs to reach it.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::File(_) => Vec::new(),
            Backend::S3(moto) => moto.env(),
            Backend::Azure(az) => az.env(),
        }
    }
}

/// Push, clone, second commit, pull, fetch, status and fsck against one remote URL.
fn round_trip(t: &TestRepo, url: &str, env: &[(&str, String)]) {
    let a = Path::new("repo");
    make_dataset(t.root(), 1);
    ok(t, a, env, &["add", "-A"]);
    ok(t, a, env, &["commit", "-m", "first"]);
    ok(t, a, env, &["remote", "add", "origin", url]);
    let listed = ok(t, a, env, &["remote", "list"]);
    assert!(listed.stdout.contains("origin"), "{listed}");
    let r = json(&ok(t, a, env, &["push", "--json"]));
    assert_eq!(r["up_to_date"], false);
    let sent = r["transfer"]["bytes_up"].as_u64().unwrap();
    assert!(sent > 3 << 20, "sent {sent}");
    // Everything is in a few packs, never one request per file.
    assert!(r["transfer"]["puts"].as_u64().unwrap() <= 6, "{r}");
    let again = json(&ok(t, a, env, &["push", "--json"]));
    assert_eq!(again["up_to_date"], true);
    assert_eq!(again["transfer"]["bytes_up"].as_u64().unwrap(), 0);

    ok(t, Path::new("."), env, &["clone", url, "b"]);
    let b = Path::new("b");
    assert_eq!(snapshot(t.root()), snapshot(&t.home().join(b)));
    ok(t, b, env, &["fsck"]);
    let st = ok(t, b, env, &["status"]);
    assert!(st.stdout.contains("up to date with 'origin/main'"), "{st}");
    let br = ok(t, b, env, &["branch", "-r"]);
    assert_eq!(br.stdout.trim(), "origin/main");

    // A second commit travels with only its new data.
    write_file(t.root(), "labels/new.txt", "2 0.1 0.1 0.2 0.2\n");
    std::fs::remove_file(t.root().join("labels/001.txt")).unwrap();
    ok(t, a, env, &["add", "-A"]);
    ok(t, a, env, &["commit", "-m", "second"]);
    let st = ok(t, a, env, &["status"]);
    assert!(
        st.stdout.contains("ahead of 'origin/main' by 1 commit."),
        "{st}"
    );
    let r = json(&ok(t, a, env, &["push", "--json"]));
    assert!(r["transfer"]["bytes_up"].as_u64().unwrap() < 20_000, "{r}");
    let p = json(&ok(t, b, env, &["pull", "--json"]));
    assert!(
        p["fetch"]["transfer"]["bytes_down"].as_u64().unwrap() < 20_000,
        "{p}"
    );
    assert_eq!(snapshot(t.root()), snapshot(&t.home().join(b)));
    let log = ok(t, b, env, &["log", "--oneline"]);
    assert_eq!(log.stdout.lines().count(), 2, "{log}");
    ok(t, b, env, &["fsck"]);
    let f = ok(t, b, env, &["fsck", "--remote", "--records"]);
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    // Fetch with nothing new transfers only refs and the pack listing.
    let f = json(&ok(t, b, env, &["fetch", "--json"]));
    assert!(f["updated"].as_array().unwrap().is_empty());
    assert_eq!(f["objects"], 0);
}

#[test]
fn file_remote_round_trip() {
    let t = TestRepo::init();
    let url = format!("file://{}", t.home().join("remote.dsv").display());
    round_trip(&t, &url, &[]);
    // The local backend keeps every ref value as a sequence file.
    let seq = t.home().join("remote.dsv/refs/heads/main");
    assert_eq!(std::fs::read_dir(seq).unwrap().count(), 2);
}

#[test]
fn s3_remote_round_trip() {
    let s3 = Backend::s3("roundtrip");
    round_trip(&TestRepo::init(), &s3.url("team/ds"), &s3.env());
}

#[test]
fn azure_remote_round_trip() {
    let az = Backend::azure("roundtrip");
    round_trip(&TestRepo::init(), &az.url("team/ds"), &az.env());
}

#[test]
fn credentials_never_appear_in_errors() {
    let moto = Moto::start("creds");
    let t = TestRepo::init();
    let a = Path::new("repo");
    write_file(t.root(), "a.txt", "a\n");
    ok(&t, a, &[], &["add", "-A"]);
    ok(&t, a, &[], &["commit", "-m", "a"]);
    let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN";
    let mut env: Vec<(&str, String)> = moto
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY")
        .collect();
    env.push(("AWS_SECRET_ACCESS_KEY", secret.to_string()));
    env.push(("AWS_SESSION_TOKEN", token.to_string()));
    env.push(("RUST_BACKTRACE", "1".to_string()));
    ok(
        &t,
        a,
        &env,
        &["remote", "add", "missing", "s3://no-such-bucket/x"],
    );
    ok(
        &t,
        a,
        &env,
        &[
            "remote",
            "add",
            "down",
            "s3://creds/x",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
    );
    for remote in ["missing", "down"] {
        for args in [
            vec!["push", remote],
            vec!["fetch", remote],
            vec!["fsck", "--remote", remote],
        ] {
            let r = fails(&t, a, &env, &args);
            for shown in [&r.stdout, &r.stderr] {
                assert!(
                    !shown.contains(secret) && !shown.contains(token),
                    "credential printed:\n{r}"
                );
            }
        }
    }
    let cfg = std::fs::read_to_string(t.root().join(".dsv/config.toml")).unwrap();
    assert!(!cfg.contains(secret));
}

#[test]
fn bad_remote_urls_and_names_are_clear_errors() {
    let t = TestRepo::init();
    let a = Path::new("repo");
    let r = fails(&t, a, &[], &["remote", "add", "bad name", "/tmp/x"]);
    assert!(r.stderr.contains("invalid remote name"), "{r}");
    let r = fails(&t, a, &[], &["remote", "add", "x", "ftp://host/x"]);
    assert!(r.stderr.contains("unsupported scheme"), "{r}");
    let r = fails(&t, a, &[], &["push", "nowhere"]);
    assert!(r.stderr.contains("remote 'nowhere' not found"), "{r}");
    ok(
        &t,
        a,
        &[],
        &[
            "remote",
            "add",
            "empty",
            &t.home().join("empty").display().to_string(),
        ],
    );
    std::fs::create_dir(t.home().join("empty")).unwrap();
    let r = fails(&t, a, &[], &["fetch", "empty"]);
    assert!(r.stderr.contains("not a dsv remote"), "{r}");
    // A remote written by a newer dsv is refused.
    std::fs::write(t.home().join("empty/dsv-remote"), r#"{"format":9}"#).unwrap();
    let r = fails(&t, a, &[], &["fetch", "empty"]);
    assert!(r.stderr.contains("remote format 9 is not supported"), "{r}");
    ok(&t, a, &[], &["remote", "remove", "empty"]);
    assert!(!ok(&t, a, &[], &["remote", "list"]).stdout.contains("empty"));
}

#[test]
fn non_fast_forward_and_force_with_lease() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    lease(&t, &url, &[]);
}

#[test]
fn non_fast_forward_and_force_with_lease_s3() {
    let s3 = Backend::s3("lease");
    lease(&TestRepo::init(), &s3.url("l"), &s3.env());
}

#[test]
fn non_fast_forward_and_force_with_lease_azure() {
    let az = Backend::azure("lease");
    lease(&TestRepo::init(), &az.url("l"), &az.env());
}

/// A push on a stale tip is refused, pull does not merge, and `--force` replaces
/// only what the remote-tracking branch has seen.
fn lease(t: &TestRepo, url: &str, env: &[(&str, String)]) {
    let (a, b) = (Path::new("repo"), Path::new("b"));
    write_file(t.root(), "x.txt", "1\n");
    ok(t, a, env, &["add", "-A"]);
    ok(t, a, env, &["commit", "-m", "a1"]);
    ok(t, a, env, &["remote", "add", "origin", url]);
    ok(t, a, env, &["push"]);
    ok(t, Path::new("."), env, &["clone", url, "b"]);
    // A moves the remote on.
    write_file(t.root(), "x.txt", "2\n");
    ok(t, a, env, &["add", "-A"]);
    ok(t, a, env, &["commit", "-m", "a2"]);
    ok(t, a, env, &["push"]);
    // B committed on the old tip: its push must not win.
    write_file(&t.home().join(b), "y.txt", "b\n");
    ok(t, b, env, &["add", "-A"]);
    ok(t, b, env, &["commit", "-m", "b1"]);
    let r = fails(t, b, env, &["push"]);
    assert!(r.stderr.contains("fetch first"), "{r}");
    ok(t, b, env, &["fetch"]);
    let r = fails(t, b, env, &["push"]);
    assert!(r.stderr.contains("non-fast-forward"), "{r}");
    let st = ok(t, b, env, &["status"]);
    assert!(st.stdout.contains("have diverged"), "{st}");
    // pull refuses to merge and changes nothing.
    let before = snapshot(&t.home().join(b));
    let r = fails(t, b, env, &["pull"]);
    assert!(r.stderr.contains("have diverged"), "{r}");
    assert_eq!(before, snapshot(&t.home().join(b)));
    // B has seen A's commit (fetched), so a lease-protected force is allowed.
    let r = json(&ok(t, b, env, &["push", "--force-with-lease", "--json"]));
    let b_tip = r["new"].as_str().unwrap().to_string();
    // A has not seen B's commit: --force must not overwrite it.
    write_file(t.root(), "x.txt", "3\n");
    ok(t, a, env, &["add", "-A"]);
    ok(t, a, env, &["commit", "-m", "a3"]);
    let r = fails(t, a, env, &["push", "--force"]);
    assert!(r.stderr.contains("moved since fetch"), "{r}");
    let r = fails(t, a, env, &["push"]);
    assert!(r.stderr.contains("fetch first"), "{r}");
    let heads = ok(t, b, env, &["fetch", "--json"]);
    assert!(json(&heads)["updated"].as_array().unwrap().is_empty());
    let remote_tip = ok(t, b, env, &["log", "--json", "-n", "1", "origin/main"]);
    assert_eq!(json(&remote_tip)[0]["id"], b_tip.as_str());
    ok(t, b, env, &["fsck", "--remote"]);
}

#[test]
fn partial_clone_downloads_only_what_paths_need() {
    let moto = Moto::start("partial");
    let env = moto.env();
    let t = TestRepo::init();
    let a = Path::new("repo");
    for d in 0..10 {
        for f in 0..10 {
            write_file(
                t.root(),
                &format!("d{d}/f{f}.bin"),
                pseudo_random_bytes(50_000, d * 10 + f + 1),
            );
        }
    }
    ok(&t, a, &env, &["add", "-A"]);
    ok(&t, a, &env, &["commit", "-m", "data"]);
    let url = moto.url("p");
    ok(&t, a, &env, &["remote", "add", "origin", &url]);
    ok(&t, a, &env, &["push"]);
    let c = json(&ok(
        &t,
        Path::new("."),
        &env,
        &["clone", "--no-checkout", &url, "c", "--json"],
    ));
    assert!(
        c["transfer"]["bytes_down"].as_u64().unwrap() < 50_000,
        "{c}"
    );
    let cdir = t.home().join("c");
    let before = dir_size(&cdir.join(".dsv/packs"));
    ok(&t, Path::new("c"), &env, &["checkout", "main", "--", "d3"]);
    let grown = dir_size(&cdir.join(".dsv/packs")) - before;
    // 10 files of 50,000 bytes: at most 1.5x of them is stored.
    assert!(
        (500_000..=750_000).contains(&grown),
        "stored {grown} bytes for d3"
    );
    assert_eq!(
        std::fs::read(cdir.join("d3/f4.bin")).unwrap(),
        pseudo_random_bytes(50_000, 35)
    );
    assert!(!cdir.join("d4").exists());
    ok(&t, Path::new("c"), &env, &["fsck"]);
    // pull --only on another partial clone: the subset's bytes, not the dataset's.
    ok(
        &t,
        Path::new("."),
        &env,
        &["clone", "--no-checkout", &url, "e"],
    );
    let p = json(&ok(
        &t,
        Path::new("e"),
        &env,
        &["pull", "--only", "d7", "--json"],
    ));
    let down = p["fetch"]["transfer"]["bytes_down"].as_u64().unwrap();
    assert!(
        down <= 750_000,
        "pull --only downloaded {down} bytes for 500,000"
    );
    assert!(t.home().join("e/d7/f0.bin").exists());
    assert!(!t.home().join("e/d6").exists());
}

/// Clients push to one branch at once, many rounds. A rejected client refetches,
/// redoes its commit on the new tip and tries again. Every accepted commit must
/// be in the final history.
fn race(url: &str, env: &[(&str, String)], rounds: usize) {
    let t = TestRepo::init();
    write_file(t.root(), "base.txt", "base\n");
    ok(&t, Path::new("repo"), env, &["add", "-A"]);
    ok(&t, Path::new("repo"), env, &["commit", "-m", "base"]);
    ok(
        &t,
        Path::new("repo"),
        env,
        &["remote", "add", "origin", url],
    );
    ok(&t, Path::new("repo"), env, &["push"]);
    const CLIENTS: usize = 3;
    for c in 0..CLIENTS {
        ok(&t, Path::new("."), env, &["clone", url, &format!("c{c}")]);
    }
    let accepted = std::sync::Mutex::new(Vec::<String>::new());
    let rejections = std::sync::atomic::AtomicUsize::new(0);
    // Rejections by the backend's compare-and-swap itself (the ref changed between
    // the push's read and its conditional write), as opposed to the client-side
    // ancestry checks.
    let cas_conflicts = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (t, accepted, rejections, cas_conflicts) =
                (&t, &accepted, &rejections, &cas_conflicts);
            s.spawn(move || {
                let dir = PathBuf::from(format!("c{c}"));
                for round in 0..rounds {
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        assert!(tries < 40, "client {c} never got its push in");
                        write_file(
                            &t.home().join(&dir),
                            &format!("c{c}/r{round}.txt"),
                            format!("{c} {round}\n"),
                        );
                        ok(t, &dir, env, &["add", "-A"]);
                        ok(
                            t,
                            &dir,
                            env,
                            &["commit", "-m", &format!("client {c} round {round}")],
                        );
                        let r = dsv(t, &dir, env, &["push", "--json"]);
                        if r.code == 0 {
                            accepted
                                .lock()
                                .unwrap()
                                .push(json(&r)["new"].as_str().unwrap().to_string());
                            break;
                        }
                        assert_eq!(r.code, 1, "{r}");
                        assert!(
                            r.stderr.contains("fetch first")
                                || r.stderr.contains("moved since")
                                || r.stderr.contains("non-fast-forward"),
                            "unclear rejection:\n{r}"
                        );
                        rejections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if r.stderr.contains("moved since it was read") {
                            cas_conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        ok(t, &dir, env, &["fetch"]);
                        ok(t, &dir, env, &["reset", "--hard", "origin/main"]);
                    }
                }
            });
        }
    });
    let accepted = accepted.into_inner().unwrap();
    assert_eq!(accepted.len(), CLIENTS * rounds);
    ok(&t, Path::new("."), env, &["clone", url, "final"]);
    let log = json(&ok(&t, Path::new("final"), env, &["log", "--json"]));
    let history: HashSet<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    for id in &accepted {
        assert!(history.contains(id), "accepted commit {id} was lost");
    }
    for c in 0..CLIENTS {
        for r in 0..rounds {
            assert!(t.home().join(format!("final/c{c}/r{r}.txt")).exists());
        }
    }
    let f = ok(
        &t,
        Path::new("final"),
        env,
        &["fsck", "--remote", "--records"],
    );
    assert!(f.stderr.contains(": 0 problems"), "{f}");
    eprintln!(
        "race: {} rejections, {} of them by the conditional ref update",
        rejections.into_inner(),
        cas_conflicts.into_inner()
    );
}

#[test]
fn race_concurrent_pushes_file() {
    let file = Backend::file();
    race(&file.url("r"), &file.env(), 10);
}

#[test]
fn race_concurrent_pushes_s3() {
    let s3 = Backend::s3("race");
    race(&s3.url("r"), &s3.env(), 6);
}

#[test]
fn race_concurrent_pushes_azure() {
    let az = Backend::azure("race");
    race(&az.url("r"), &az.env(), 6);
}

/// A seed that differs between runs (random kill points), printed for replay.
fn seed() -> u64 {
    // Fixed unless asked otherwise, so CI runs the same kill points every time;
    // `DSV_TEST_SEED=random` explores, and a seed it prints replays a failure.
    let s = match std::env::var("DSV_TEST_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        Some(v) => v
            .parse()
            .expect("DSV_TEST_SEED must be a number or 'random'"),
        None => 0x5eed_0fd5,
    };
    eprintln!("DSV_TEST_SEED={s}");
    s
}

#[test]
fn killed_push_and_pull_resume_without_resending() {
    let t = TestRepo::init();
    let url = t.home().join("remote.dsv").display().to_string();
    let packs = t.home().join("remote.dsv/packs");
    killed(&t, &url, &[], &|| {
        let n = dir_size(&packs);
        assert!(n > 0, "the killed push left nothing on the remote");
        n
    });
}

#[test]
fn killed_push_and_pull_resume_without_resending_s3() {
    let moto = Moto::start("killed");
    killed(&TestRepo::init(), &moto.url("k"), &moto.env(), &|| {
        // What a killed push leaves is complete objects only: each pack goes up in
        // one PUT, never as a multipart upload whose parts nobody could list or reuse.
        assert_eq!(moto.pending_uploads(), Vec::<String>::new());
        let n: u64 = moto.list("k/packs/").iter().map(|(_, size)| size).sum();
        assert!(n > 0, "the killed push left nothing on the remote");
        n
    });
}

#[test]
fn killed_push_and_pull_resume_without_resending_azure() {
    let az = Azurite::start("killed");
    killed(&TestRepo::init(), &az.url("k"), &az.env(), &|| {
        let n: u64 = az.list("k/packs/").iter().map(|(_, size)| size).sum();
        assert!(n > 0, "the killed push left nothing on the remote");
        n
    });
}

/// A push killed at random requests, then resumed, sends only what did not land
/// (`landed`: the pack bytes on the remote; 0 where only dsv can tell, and then the
/// resumed push's own report is checked); a pull killed at a random write resumes
/// without downloading everything again.
fn killed(t: &TestRepo, url: &str, env: &[(&str, String)], landed: &dyn Fn() -> u64) {
    let mut rng = seed();
    let mut next = |lo: u64, hi: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        lo + rng % (hi - lo)
    };
    let a = Path::new("repo");
    const FILES: u64 = 24;
    for i in 0..FILES {
        write_file(
            t.root(),
            &format!("f{i:02}.bin"),
            pseudo_random_bytes(1 << 20, i + 1),
        );
    }
    let total = FILES << 20;
    let mut small = env.to_vec();
    small.push(("DSV_REMOTE_PACK_SIZE", (2u64 << 20).to_string()));
    ok(t, a, &small, &["add", "-A"]);
    ok(t, a, &small, &["commit", "-m", "data"]);
    ok(t, a, &small, &["remote", "add", "origin", url]);
    // Kill the push at a random request or write, then again (the second may finish).
    for (lo, hi, must_die) in [(30, 50, true), (5, 15, false)] {
        let n = next(lo, hi);
        let mut env = small.to_vec();
        env.push(("DSV_FAULT", format!("kill:{n}")));
        let r = dsv(t, a, &env, &["push"]);
        assert!(
            r.code == -1 || (!must_die && r.code == 0),
            "push at kill:{n}:\n{r}"
        );
    }
    let landed = landed();
    let r = json(&ok(t, a, &small, &["push", "--json"]));
    let sent = r["transfer"]["bytes_up"].as_u64().unwrap();
    eprintln!("resumed push sent {sent} bytes after {landed} had landed, of {total}");
    // Nothing that landed goes up again (a pack that landed without its index is
    // rebuilt with the same name and skipped): beyond the data, only indexes and refs.
    assert!(
        sent + landed <= total + total / 50,
        "sent {sent} after {landed} had landed"
    );
    assert!(sent < total * 3 / 4, "retry sent {sent} of {total}");
    ok(t, a, &small, &["fsck", "--remote", "--records"]);
    // Pull into a fresh repository, killed at a random write, then resumed.
    let b = Path::new("b");
    std::fs::create_dir(t.home().join(b)).unwrap();
    ok(t, b, &small, &["init"]);
    ok(t, b, &small, &["remote", "add", "origin", url]);
    // Aim at the second half of the pull's writes, where some pack data is durable
    // (the first third is set-up and the first batch; a fixed range broke whenever a
    // change added writes before the data).
    let c = Path::new("count");
    std::fs::create_dir(t.home().join(c)).unwrap();
    ok(t, c, &small, &["init"]);
    ok(t, c, &small, &["remote", "add", "origin", url]);
    let mut counting = small.to_vec();
    counting.push(("DSV_FAULT", "count".to_string()));
    let r = ok(t, c, &counting, &["pull"]);
    let writes: u64 = r
        .stderr
        .split("dsv: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no write count:\n{r}"));
    let n = next(writes / 2, writes * 9 / 10);
    let mut env = small.to_vec();
    env.push(("DSV_FAULT", format!("kill:{n}")));
    eprintln!("pull killed at write {n} of {writes}");
    let r = dsv(t, b, &env, &["pull"]);
    assert_eq!(r.code, -1, "pull was not killed at write {n}:\n{r}");
    ok(t, b, &small, &["fsck"]);
    let r = json(&ok(t, b, &small, &["pull", "--json"]));
    let got = r["fetch"]["transfer"]["bytes_down"].as_u64().unwrap();
    assert!(got < total, "resumed pull downloaded {got} of {total}");
    assert_eq!(snapshot(t.root()), snapshot(&t.home().join(b)));
    ok(t, b, &small, &["fsck"]);
}

/// A repository of four 1 MiB random files pushed to a file remote as one pack, and
/// an empty repository `name` with that remote; returns the pack's name and length.
fn one_pack_remote(t: &TestRepo, name: &str) -> (String, u64) {
    let remote = t.home().join("remote.dsv");
    let url = format!("file://{}", remote.display());
    if !remote.exists() {
        for i in 0..4 {
            write_file(
                t.root(),
                &format!("f{i}.bin"),
                pseudo_random_bytes(1 << 20, 40 + i),
            );
        }
        t.ok(["add", "-A"]);
        t.ok(["commit", "-m", "data"]);
        t.ok(["remote", "add", "origin", &url]);
        t.ok(["push"]);
    }
    let b = Path::new(name);
    std::fs::create_dir(t.home().join(b)).unwrap();
    ok(t, b, &[], &["init"]);
    ok(t, b, &[], &["remote", "add", "origin", &url]);
    let mut packs: Vec<(String, u64)> = std::fs::read_dir(remote.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dsvpack"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, p.metadata().unwrap().len())
        })
        .collect();
    packs.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    packs.swap_remove(0)
}

/// Where a pull keeps a download of pack `hex` of `len` bytes while it arrives.
fn part_file(t: &TestRepo, name: &str, hex: &str, len: u64) -> PathBuf {
    let dir = t.home().join(name).join(".dsv/remotes/origin/download");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{hex}-{len}.part"))
}

#[test]
fn half_downloaded_pack_resumes_with_a_range_request() {
    let t = TestRepo::init();
    let (hex, len) = one_pack_remote(&t, "b");
    let pack = std::fs::read(t.home().join(format!("remote.dsv/packs/{hex}.dsvpack"))).unwrap();
    // What a pull killed halfway through the pack left.
    let part = part_file(&t, "b", &hex, len);
    std::fs::write(&part, &pack[..pack.len() / 2]).unwrap();
    let r = json(&ok(&t, Path::new("b"), &[], &["pull", "--json"]));
    let down = r["fetch"]["transfer"]["bytes_down"].as_u64().unwrap();
    assert!(
        down < len / 2 + len / 8,
        "resumed pull downloaded {down} of a {len}-byte pack, half of it already here"
    );
    assert_eq!(snapshot(t.root()), snapshot(&t.home().join("b")));
    ok(&t, Path::new("b"), &[], &["fsck"]);
    assert!(
        !part.exists(),
        "the download stayed after its records were stored"
    );
}

#[test]
fn corrupt_partial_pack_download_is_discarded_never_trusted() {
    let t = TestRepo::init();
    let (hex, len) = one_pack_remote(&t, "b");
    let pack = std::fs::read(t.home().join(format!("remote.dsv/packs/{hex}.dsvpack"))).unwrap();
    // Half the pack with one byte changed in a record's payload: the records'
    // headers still parse, only the hash of the whole pack can tell.
    let mut half = pack[..pack.len() / 2].to_vec();
    let at = half.len() - 1000;
    half[at] ^= 0x55;
    let part = part_file(&t, "b", &hex, len);
    std::fs::write(&part, &half).unwrap();
    let r = json(&ok(&t, Path::new("b"), &[], &["pull", "--json"]));
    let down = r["fetch"]["transfer"]["bytes_down"].as_u64().unwrap();
    assert!(
        down >= len,
        "only {down} of {len} downloaded: the damaged half was used"
    );
    assert_eq!(snapshot(t.root()), snapshot(&t.home().join("b")));
    ok(&t, Path::new("b"), &[], &["fsck"]);
    assert!(!part.exists());
    // A leftover longer than the pack, or of garbage, is dropped the same way.
    for (name, bytes) in [
        ("c", [pack.clone(), b"more".to_vec()].concat()),
        ("d", pseudo_random_bytes(len as usize, 9)),
    ] {
        one_pack_remote(&t, name);
        let part = part_file(&t, name, &hex, len);
        std::fs::write(&part, &bytes).unwrap();
        ok(&t, Path::new(name), &[], &["pull"]);
        assert_eq!(snapshot(t.root()), snapshot(&t.home().join(name)));
        ok(&t, Path::new(name), &[], &["fsck"]);
        assert!(!part.exists());
    }
}

// ---- hostile remotes, built by hand ------------------------------------------------

use dsv::ObjectId;
use dsv::remote::format::{IdxEntry, PackIndex, marker_bytes};
use dsv::store::pack::{Codec, PACK_MAGIC, RecordHeader, Repr};

/// Objects to put in one pack of a hand-made remote.
struct Forge {
    records: Vec<(ObjectId, Vec<u8>)>,
}

impl Forge {
    fn new() -> Forge {
        Forge {
            records: Vec::new(),
        }
    }

    /// Adds a raw object stored under `id` (normally its hash).
    fn raw_as(&mut self, id: ObjectId, bytes: &[u8]) -> ObjectId {
        let h = RecordHeader {
            repr: Repr::Raw,
            codec: Codec::None,
            id,
            stored_len: bytes.len() as u32,
            raw_len: bytes.len() as u32,
        };
        let mut rec = h.encode().to_vec();
        rec.extend_from_slice(bytes);
        self.records.push((id, rec));
        id
    }

    fn raw(&mut self, bytes: &[u8]) -> ObjectId {
        self.raw_as(ObjectId::hash(bytes), bytes)
    }

    /// A tree object (entries taken as given: names are not checked here).
    fn tree(&mut self, entries: &[(u8, &[u8], ObjectId, u64)]) -> ObjectId {
        let mut b = b"DSVT\x01\x00".to_vec();
        b.push(entries.len() as u8);
        for (mode, name, id, size) in entries {
            b.push(*mode);
            b.push(name.len() as u8);
            b.extend_from_slice(name);
            b.extend_from_slice(&id.0);
            b.push(*size as u8);
            b.push(1);
        }
        self.raw(&b)
    }

    fn commit(&mut self, tree: ObjectId) -> ObjectId {
        let c = serde_json::json!({
            "format": 1, "tree": tree.to_string(), "parents": [],
            "author": {"name": "x", "email": "x@y"}, "time": 1, "tz_offset_min": 0,
            "message": "hostile\n", "summary": {"files": 1, "bytes": 1}
        });
        self.raw(c.to_string().as_bytes())
    }

    /// Writes the remote: marker, one pack and its index, HEAD and `main`.
    fn write(&self, dir: &Path, main: ObjectId, tamper_idx: impl Fn(&mut PackIndex)) {
        std::fs::create_dir_all(dir.join("packs")).unwrap();
        std::fs::create_dir_all(dir.join("refs/heads/main")).unwrap();
        std::fs::write(dir.join("dsv-remote"), marker_bytes()).unwrap();
        std::fs::write(dir.join("HEAD"), r#"{"branch":"main"}"#).unwrap();
        let mut pack = PACK_MAGIC.to_vec();
        let mut entries = Vec::new();
        for (id, rec) in &self.records {
            entries.push(IdxEntry {
                id: *id,
                offset: pack.len() as u64,
                len: rec.len() as u32,
            });
            pack.extend_from_slice(rec);
        }
        entries.sort_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        let name = ObjectId::hash(&pack);
        let mut idx = PackIndex {
            pack: name,
            pack_len: pack.len() as u64,
            entries,
        };
        tamper_idx(&mut idx);
        std::fs::write(dir.join(format!("packs/{name}.dsvpack")), &pack).unwrap();
        std::fs::write(dir.join(format!("packs/{name}.idx")), idx.encode()).unwrap();
        std::fs::write(
            dir.join("refs/heads/main/00000000000000000001"),
            format!(r#"{{"commit":"{main}"}}"#),
        )
        .unwrap();
    }
}

/// Clones a hostile remote: must fail clearly, leave no directory, write nothing outside.
#[track_caller]
fn clone_refused(t: &TestRepo, remote: &Path, expect: &str) {
    let before: Vec<_> = std::fs::read_dir(t.home())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let r = fails(
        t,
        Path::new("."),
        &[],
        &["clone", &remote.display().to_string(), "victim"],
    );
    assert!(r.stderr.contains(expect), "expected '{expect}':\n{r}");
    assert!(
        !t.home().join("victim").exists(),
        "a failed clone left its directory"
    );
    let after: Vec<_> = std::fs::read_dir(t.home())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "files appeared outside the clone");
}

#[test]
fn hostile_tree_names_are_refused() {
    let t = TestRepo::new();
    let names: [&[u8]; 6] = [b"..", b".", b"a/b", b"/etc", b"nul\0x", b".dsv"];
    for (i, name) in names.iter().enumerate() {
        let mut f = Forge::new();
        let blob = f.raw(b"pwned\n");
        let tree = f.tree(&[(1, name, blob, 6)]);
        let commit = f.commit(tree);
        let dir = t.home().join(format!("hostile{i}"));
        f.write(&dir, commit, |_| {});
        clone_refused(&t, &dir, "tree");
    }
    assert!(!t.home().join("pwned").exists());
}

#[test]
fn hostile_symlink_out_of_the_worktree_is_refused() {
    let t = TestRepo::new();
    for (i, target) in [&b"../../outside"[..], b"/etc/passwd", b"a/../../x"]
        .iter()
        .enumerate()
    {
        let mut f = Forge::new();
        let link = f.raw(target);
        let tree = f.tree(&[(3, b"link", link, target.len() as u64)]);
        let commit = f.commit(tree);
        let dir = t.home().join(format!("links{i}"));
        f.write(&dir, commit, |_| {});
        clone_refused(&t, &dir, "points outside the worktree");
    }
}

#[test]
fn hostile_content_truncation_and_bad_index_are_refused() {
    let t = TestRepo::init();
    // An object stored under an id its content does not have.
    let mut f = Forge::new();
    let fake = f.raw_as(ObjectId::hash(b"expected"), b"something else");
    let tree = f.tree(&[(1, b"file", fake, 8)]);
    let commit = f.commit(tree);
    f.write(&t.home().join("mismatch"), commit, |_| {});
    clone_refused(&t, &t.home().join("mismatch"), "does not match its id");
    // An index entry past the end of its pack.
    let mut f = Forge::new();
    let blob = f.raw(b"data\n");
    let tree = f.tree(&[(1, b"file", blob, 5)]);
    let commit = f.commit(tree);
    f.write(&t.home().join("bounds"), commit, |idx| {
        idx.entries[0].len += 1000
    });
    clone_refused(&t, &t.home().join("bounds"), "outside the pack");
    // A truncated pack, fetched into an existing repository: nothing changes.
    let a = Path::new("repo");
    write_file(t.root(), "x.bin", pseudo_random_bytes(300_000, 3));
    ok(&t, a, &[], &["add", "-A"]);
    ok(&t, a, &[], &["commit", "-m", "x"]);
    let good = t.home().join("good");
    ok(
        &t,
        a,
        &[],
        &["remote", "add", "origin", &good.display().to_string()],
    );
    ok(&t, a, &[], &["push"]);
    let pack = std::fs::read_dir(good.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dsvpack"))
        .unwrap();
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::create_dir(t.home().join("c")).unwrap();
    ok(&t, Path::new("c"), &[], &["init"]);
    ok(
        &t,
        Path::new("c"),
        &[],
        &["remote", "add", "origin", &good.display().to_string()],
    );
    let r = fails(&t, Path::new("c"), &[], &["fetch"]);
    assert!(r.stderr.contains("truncated"), "{r}");
    let br = ok(&t, Path::new("c"), &[], &["branch", "-r"]);
    assert_eq!(
        br.stdout, "",
        "a failed fetch moved a remote-tracking branch"
    );
    ok(&t, Path::new("c"), &[], &["fsck"]);
    let f = dsv(&t, a, &[], &["fsck", "--remote"]);
    assert_eq!(f.code, 1, "{f}");
    assert!(f.stdout.contains("truncated"), "{f}");
}

#[test]
fn symlink_chain_escaping_worktree_is_refused() {
    let t = TestRepo::new();
    // `a/b/c/s -> ../../..` resolves to the worktree root (allowed alone), so
    // `t -> a/b/c/s/..` resolves to the worktree's parent, though its text does not.
    let mut f = Forge::new();
    let s = f.raw(b"../../..");
    let c = f.tree(&[(3, b"s", s, 8)]);
    let b = f.tree(&[(4, b"c", c, 8)]);
    let a = f.tree(&[(4, b"b", b, 8)]);
    let link = f.raw(b"a/b/c/s/..");
    let root = f.tree(&[(4, b"a", a, 8), (3, b"t", link, 10)]);
    let commit = f.commit(root);
    let dir = t.home().join("chain");
    f.write(&dir, commit, |_| {});
    clone_refused(&t, &dir, "symlink 't' points outside the worktree");
    // The same chain without `t` clones.
    let mut f = Forge::new();
    let s = f.raw(b"../../..");
    let c = f.tree(&[(3, b"s", s, 8)]);
    let b = f.tree(&[(4, b"c", c, 8)]);
    let a = f.tree(&[(4, b"b", b, 8)]);
    let root = f.tree(&[(4, b"a", a, 8)]);
    let commit = f.commit(root);
    let dir = t.home().join("fine");
    f.write(&dir, commit, |_| {});
    ok(
        &t,
        Path::new("."),
        &[],
        &["clone", &dir.display().to_string(), "fine-clone"],
    );
    assert!(
        std::fs::symlink_metadata(t.home().join("fine-clone/a/b/c/s"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// A remote whose `main` holds a chain of `depth` directories above one file.
fn deep_remote(dir: &Path, depth: usize) {
    let mut f = Forge::new();
    let blob = f.raw(b"deep\n");
    let mut id = f.tree(&[(1, b"f", blob, 5)]);
    for _ in 0..depth {
        id = f.tree(&[(4, b"d", id, 5)]);
    }
    let commit = f.commit(id);
    f.write(dir, commit, |_| {});
}

#[test]
fn clone_of_deep_remote_tree_fails_cleanly() {
    let t = TestRepo::new();
    let dir = t.home().join("deep");
    deep_remote(&dir, 20_000);
    clone_refused(&t, &dir, "tree too deep");
    // Fetched into an existing repository: refused before anything is stored,
    // and the repository still works.
    let a = Path::new("repo");
    ok(&t, a, &[], &["init"]);
    write_file(t.root(), "x.txt", "x\n");
    ok(&t, a, &[], &["add", "-A"]);
    ok(&t, a, &[], &["commit", "-m", "x"]);
    ok(
        &t,
        a,
        &[],
        &["remote", "add", "deep", &dir.display().to_string()],
    );
    let r = fails(&t, a, &[], &["fetch", "deep"]);
    assert!(r.stderr.contains("tree too deep"), "{r}");
    ok(&t, a, &[], &["fsck"]);
    ok(&t, a, &[], &["status"]);
    ok(&t, a, &[], &["gc"]);
    ok(&t, a, &[], &["fsck"]);
}

/// Credentials for a server that never checks them (without any, the S3 client
/// would first ask the instance metadata service).
fn fake_credentials() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ]
}

/// A remote on a loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn refused_endpoint_fails_fast() {
    let t = TestRepo::init();
    let a = Path::new("repo");
    let port = closed_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    write_file(t.root(), "a.txt", "a\n");
    ok(&t, a, &[], &["add", "-A"]);
    ok(&t, a, &[], &["commit", "-m", "a"]);
    ok(
        &t,
        a,
        &[],
        &["remote", "add", "down", "s3://b/p", "--endpoint", &endpoint],
    );
    for args in [vec!["fetch", "down"], vec!["push", "down"]] {
        let start = std::time::Instant::now();
        let r = fails(&t, a, &fake_credentials(), &args);
        let took = start.elapsed();
        // object_store's own policy retried a refused connection ten times with
        // backoff (about 27 s); a generous bound keeps a loaded CI machine green.
        assert!(took.as_secs() < 10, "took {took:?}:\n{r}");
        assert!(r.stderr.contains("never answered (2 attempts)"), "{r}");
    }
}

#[test]
fn silent_endpoint_is_given_up_after_the_configured_timeout() {
    // Accepts connections (the kernel completes the handshake) and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let t = TestRepo::init();
    let a = Path::new("repo");
    ok(
        &t,
        a,
        &[],
        &["remote", "add", "mute", "s3://b/p", "--endpoint", &endpoint],
    );
    ok(&t, a, &[], &["config", "remote.mute.timeout", "1s"]);
    let start = std::time::Instant::now();
    let r = fails(&t, a, &fake_credentials(), &["fetch", "mute"]);
    assert!(start.elapsed().as_secs() < 10, "{r}");
    assert!(r.stderr.contains("never answered"), "{r}");
    // The environment overrides the remote's own setting.
    let mut env = fake_credentials();
    env.push(("DSV_REMOTE_TIMEOUT", "300ms".to_string()));
    let start = std::time::Instant::now();
    fails(&t, a, &env, &["fetch", "mute"]);
    assert!(start.elapsed().as_secs() < 5);
    drop(l);
}

#[test]
fn bad_remote_network_settings_are_clear_errors() {
    let t = TestRepo::init();
    let a = Path::new("repo");
    ok(&t, a, &[], &["remote", "add", "r", "s3://b/p"]);
    let env = [("DSV_REMOTE_CONNECT_TIMEOUT", "soon".to_string())];
    let r = dsv(&t, a, &env, &["fetch", "r"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("DSV_REMOTE_CONNECT_TIMEOUT must be a duration such as 5s"),
        "{r}"
    );
    ok(&t, a, &[], &["config", "remote.r.retries", "many"]);
    let r = fails(&t, a, &[], &["fetch", "r"]);
    assert!(
        r.stderr
            .contains("remote.r.retries must be a number from 0 to 100, not 'many'"),
        "{r}"
    );
}
