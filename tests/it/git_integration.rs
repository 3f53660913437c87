//! End-to-end tests of the git integration in a real git repository in a temp dir:
//! `dsv lock`, `dsv checkout --locked`, the `dsv.lock` diff driver and
//! `dsv log --code` / `--code-commit`.

use crate::common;

use std::path::Path;

use common::{TestRepo, copy_contents};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Runs git in the worktree root with a fixed identity and date; panics on failure.
fn git(repo: &TestRepo, args: &[&str]) -> String {
    let out = repo
        .program_in("git", ".")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_AUTHOR_NAME", "Git Author")
        .env("GIT_AUTHOR_EMAIL", "git@example.com")
        .env("GIT_COMMITTER_NAME", "Git Author")
        .env("GIT_COMMITTER_EMAIL", "git@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A git repository with code at the root and a dsv dataset in `data/` (ignored by git),
/// with two dataset commits each locked and committed with the code.
struct Setup {
    repo: TestRepo,
    d1: String,
    d2: String,
    c1: String,
    c2: String,
}

fn setup() -> Setup {
    let repo = TestRepo::new();
    git(&repo, &["init", "-q"]);
    repo.write("train.py", "print('train')\n");
    repo.write(".gitignore", "data/\n");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "code"]);
    std::fs::create_dir(repo.path("data")).expect("mkdir data");
    repo.ok_in("data", ["init"]);
    copy_contents(&fixture("demo"), &repo.path("data"));
    repo.ok_in("data", ["add", "-A"]);
    repo.ok_in("data", ["commit", "-m", "d1"]);
    let d1 = repo.ok_in("data", ["log", "--json", "-n", "1"]).stdout;
    let d1 = serde_json::from_str::<serde_json::Value>(&d1).expect("json")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = repo.ok_in("data", ["lock"]);
    assert!(r.stdout.contains("Locked dataset 'data'"), "{r}");
    git(&repo, &["add", "dsv.lock"]);
    git(&repo, &["commit", "-q", "-m", "train on d1"]);
    let c1 = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();

    copy_contents(&fixture("demo-edit"), &repo.path("data"));
    repo.ok_in("data", ["add", "-A"]);
    repo.ok_in("data", ["commit", "-m", "d2"]);
    let d2 = repo.ok_in("data", ["log", "--json", "-n", "1"]).stdout;
    let d2 = serde_json::from_str::<serde_json::Value>(&d2).expect("json")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    repo.ok_in("data", ["lock"]);
    git(&repo, &["commit", "-q", "-a", "-m", "train on d2"]);
    let c2 = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    Setup {
        repo,
        d1,
        d2,
        c1,
        c2,
    }
}

#[test]
fn lock_names_the_dataset_commit_and_path() {
    let s = setup();
    let text = s.repo.read_string("dsv.lock");
    assert!(text.contains("path = \"data\""), "{text}");
    assert!(text.contains(&format!("commit = \"{}\"", s.d2)), "{text}");
    // Locking again changes nothing.
    let r = s.repo.ok_in("data", ["lock"]);
    assert!(r.stdout.contains("Already locked"), "{r}");
    assert_eq!(s.repo.read_string("dsv.lock"), text);
}

#[test]
fn old_code_commit_brings_back_its_data() {
    let s = setup();
    git(&s.repo, &["checkout", "-q", &s.c1]);
    s.repo.ok_in("data", ["checkout", "--locked"]);
    let log = s.repo.ok_in("data", ["log", "--json", "-n", "1"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&log).expect("json");
    assert_eq!(v[0]["id"], s.d1.as_str());
    assert!(
        !s.repo.exists("data/images/frame_006.jpg"),
        "d2's new frame is gone"
    );
    assert_eq!(
        s.repo.read("data/labels/frame_000.txt"),
        std::fs::read(fixture("demo/labels/frame_000.txt")).expect("fixture")
    );
    git(&s.repo, &["checkout", "-q", &s.c2]);
    s.repo.ok_in("data", ["checkout", "--locked"]);
    assert!(s.repo.exists("data/images/frame_006.jpg"));
    assert_eq!(s.repo.ok_in("data", ["status", "--short"]).stdout, "");
}

#[test]
fn checkout_locked_without_a_lock_file_or_git_fails_cleanly() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let r = repo.fails(["checkout", "--locked"]);
    assert!(r.stderr.contains("not inside a git worktree"), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    let r = repo.fails(["lock"]);
    assert!(r.stderr.contains("not inside a git worktree"), "{r}");
    git(&repo, &["init", "-q"]);
    let r = repo.fails(["checkout", "--locked"]);
    assert!(r.stderr.contains("dsv.lock"), "{r}");
}

#[test]
fn git_diff_on_the_lock_file_shows_the_dataset_diff() {
    let s = setup();
    s.repo.ok_in("data", ["install-git-integration"]);
    assert_eq!(s.repo.read_string(".gitattributes"), "dsv.lock diff=dsv\n");
    // Installing twice adds nothing.
    let r = s.repo.ok_in("data", ["install-git-integration"]);
    assert!(!r.stdout.contains("Added"), "{r}");
    let config = s.repo.read_string(".git/config");
    assert_eq!(config.matches("[diff \"dsv\"]").count(), 1, "{config}");

    let out = git(&s.repo, &["diff", &s.c1, &s.c2, "--", "dsv.lock"]);
    let short = |id: &str| id[..12].to_string();
    assert!(
        out.contains(&format!(
            "dataset data: {} -> {}",
            short(&s.d1),
            short(&s.d2)
        )),
        "{out}"
    );
    assert!(out.contains("images/frame_006.jpg"), "{out}");
    assert!(out.contains("reclassified"), "{out}");
    assert!(
        !out.contains("commit = "),
        "the driver replaces the hash lines: {out}"
    );
    // git log runs external diff drivers only when asked (git's rule, not dsv's).
    let log = git(
        &s.repo,
        &["log", "-p", "--ext-diff", "--format=%s", "--", "dsv.lock"],
    );
    assert!(log.contains("dataset data: (none) ->"), "{log}");
}

#[test]
fn log_shows_and_finds_code_commits() {
    let s = setup();
    // d1 was committed on the first code commit, d2 on the commit that locked d1.
    let first = git(&s.repo, &["rev-parse", "HEAD~2"]).trim().to_string();
    let r = s.repo.ok_in("data", ["log", "--oneline", "--code"]);
    let lines = r.lines();
    assert_eq!(lines.len(), 2, "{r}");
    assert!(lines[0].contains(&format!("[git {}]", &s.c1[..12])), "{r}");
    assert!(lines[1].contains(&format!("[git {}]", &first[..12])), "{r}");
    let r = s
        .repo
        .ok_in("data", ["log", "--oneline", "--code-commit", &s.c1[..8]]);
    assert_eq!(r.lines().len(), 1, "{r}");
    assert!(r.stdout.contains(&s.d2[..12]), "{r}");
    let r = s
        .repo
        .ok_in("data", ["log", "--oneline", "--code-commit", &s.c2]);
    assert_eq!(
        r.stdout, "",
        "no dataset commit was made on the last code commit"
    );
    let r = s.repo.run_in("data", ["log", "--code-commit", "xyz"]);
    assert_eq!(r.code, 2, "{r}");
}

#[test]
fn diff_driver_survives_a_lock_file_with_conflict_markers() {
    let s = setup();
    s.repo.ok_in("data", ["install-git-integration"]);
    git(&s.repo, &["add", ".gitattributes"]);
    git(&s.repo, &["commit", "-q", "-m", "attributes"]);
    // What `git merge` leaves in a conflicted lock file, beside another changed file.
    let lock = s.repo.read_string("dsv.lock");
    s.repo.write(
        "dsv.lock",
        format!("<<<<<<< HEAD\n{lock}=======\n{lock}>>>>>>> other\n"),
    );
    s.repo.write("train.py", "print('train more')\n");
    let out = git(&s.repo, &["diff"]);
    assert!(out.contains("dsv diff-driver: "), "{out}");
    assert!(out.contains("showing the lines that differ"), "{out}");
    assert!(out.contains("+<<<<<<< HEAD"), "{out}");
    assert!(
        out.contains("+print('train more')"),
        "the other files are still shown: {out}"
    );
}

#[test]
fn first_lock_says_what_the_dataset_holds() {
    let s = setup();
    s.repo.ok_in("data", ["install-git-integration"]);
    let log = git(
        &s.repo,
        &["log", "-p", "--ext-diff", "--format=%s", "--", "dsv.lock"],
    );
    let stats = s.repo.ok_in("data", ["stats", "--json", &s.d1]).stdout;
    let v: serde_json::Value = serde_json::from_str(&stats).expect("json");
    let frames = v["stats"]["frames"].as_u64().expect("frames");
    let objects = v["stats"]["objects"].as_u64().expect("objects");
    assert!(
        log.contains(&format!("newly locked: {frames} frames,")),
        "{log}"
    );
    assert!(log.contains(&format!(", {objects} objects in ")), "{log}");
}
