//! Branches and tags on a remote, as in git: `push --delete` (a compare-and-swap
//! to a tombstone, refused when stale, seen by `pre-push`), `push TAG` and
//! `--tags`, tags fetched, and `fetch --prune`. Each case runs on a file://
//! remote and on S3 (moto on loopback).

use crate::common;

use common::s3::Moto;
use common::{Run, TestRepo, write_file};

/// A remote for these tests: a directory, or a moto server (stopped on drop).
enum Backend {
    File(tempfile::TempDir),
    S3(Moto),
}

impl Backend {
    fn url(&self, prefix: &str) -> String {
        match self {
            Backend::File(dir) => format!("file://{}", dir.path().join(prefix).display()),
            Backend::S3(moto) => moto.url(prefix),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::File(_) => Vec::new(),
            Backend::S3(moto) => moto.env(),
        }
    }
}

fn file() -> Backend {
    Backend::File(tempfile::tempdir().unwrap())
}

fn s3(bucket: &str) -> Backend {
    Backend::S3(Moto::start(bucket))
}

/// Runs dsv in `dir` (relative to the test's home) with the backend's environment.
fn dsv(t: &TestRepo, b: &Backend, dir: &str, args: &[&str]) -> Run {
    let mut cmd = t.cmd_in(t.home().join(dir));
    for (k, v) in b.env() {
        cmd.env(k, v);
    }
    cmd.env("DSV_HOOKS_FOREGROUND", "1");
    let out = cmd.args(args).output().expect("running dsv");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_bytes: out.stdout,
    }
}

#[track_caller]
fn ok(t: &TestRepo, b: &Backend, dir: &str, args: &[&str]) -> Run {
    let r = dsv(t, b, dir, args);
    assert_eq!(r.code, 0, "dsv {} in {dir} failed:\n{r}", args.join(" "));
    r
}

#[track_caller]
fn fails(t: &TestRepo, b: &Backend, dir: &str, args: &[&str]) -> Run {
    let r = dsv(t, b, dir, args);
    assert_eq!(
        r.code,
        1,
        "dsv {} in {dir} should fail:\n{r}",
        args.join(" ")
    );
    assert!(
        r.stderr.contains("error: ") && !r.stderr.contains("panicked"),
        "unclear error:\n{r}"
    );
    r
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{r}"))
}

/// `refs/heads` or `refs/tags` names and commits of the remote, as a fresh
/// fetch sees them (`ls-remote` by way of a scratch clone's refs).
fn remote_refs(t: &TestRepo, b: &Backend, url: &str, scratch: &str) -> Vec<String> {
    let _ = std::fs::remove_dir_all(t.home().join(scratch));
    ok(t, b, ".", &["clone", "--no-checkout", url, scratch]);
    let mut out: Vec<String> = ok(t, b, scratch, &["branch", "-r"])
        .stdout
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    for l in ok(t, b, scratch, &["tag"]).stdout.lines() {
        out.push(format!("tag {}", l.trim()));
    }
    out
}

fn commit(t: &TestRepo, b: &Backend, dir: &str, path: &str, text: &str) -> String {
    write_file(&t.home().join(dir), path, text);
    ok(t, b, dir, &["add", "-A"]);
    ok(t, b, dir, &["commit", "-m", text]);
    ok(t, b, dir, &["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_string()
}

/// `repo` with `main` and `feature` pushed to `url`, and `other`, a clone of it.
fn two_clones(t: &TestRepo, b: &Backend, url: &str) {
    commit(t, b, "repo", "labels/a.txt", "0 0.5 0.5 0.1 0.1\n");
    ok(t, b, "repo", &["remote", "add", "origin", url]);
    ok(t, b, "repo", &["push"]);
    ok(t, b, "repo", &["switch", "-c", "feature"]);
    commit(t, b, "repo", "labels/b.txt", "1 0.5 0.5 0.1 0.1\n");
    ok(t, b, "repo", &["push", "origin", "feature"]);
    ok(t, b, "repo", &["switch", "main"]);
    ok(t, b, ".", &["clone", url, "other"]);
}

fn deleting_a_stale_branch_is_refused_and_fetch_prune_removes_it(b: &Backend) {
    let t = TestRepo::init();
    let url = b.url("refs-delete");
    two_clones(&t, b, &url);
    // Someone else moves feature after `repo` last saw it.
    ok(
        &t,
        b,
        "other",
        &["switch", "-c", "feature", "origin/feature"],
    );
    let theirs = commit(&t, b, "other", "labels/c.txt", "2 0.5 0.5 0.1 0.1\n");
    ok(&t, b, "other", &["push", "origin", "feature"]);

    let r = fails(&t, b, "repo", &["push", "origin", "--delete", "feature"]);
    assert!(
        r.stderr
            .contains(&format!("remote branch feature is at {}", &theirs[..12]))
            && r.stderr.contains("push --delete --force"),
        "{r}"
    );
    assert!(remote_refs(&t, b, &url, "peek").contains(&"origin/feature".to_string()));
    // Deleting the remote's default branch needs --force.
    let r = fails(&t, b, "repo", &["push", "origin", "--delete", "main"]);
    assert!(r.stderr.contains("default branch"), "{r}");
    let r = fails(&t, b, "repo", &["push", "origin", "--delete", "nosuch"]);
    assert!(r.stderr.contains("has no branch or tag 'nosuch'"), "{r}");

    // Once fetched, the delete goes through and takes the remote-tracking branch along.
    ok(&t, b, "repo", &["fetch"]);
    let r = json(&ok(
        &t,
        b,
        "repo",
        &["push", "origin", "--delete", "feature", "--json"],
    ));
    assert_eq!(r["updates"][0]["name"], "feature");
    assert_eq!(r["updates"][0]["old"], theirs.as_str());
    assert!(r["updates"][0]["new"].is_null(), "{r}");
    assert!(
        !t.home()
            .join("repo/.dsv/refs/remotes/origin/feature")
            .exists()
    );
    assert_eq!(remote_refs(&t, b, &url, "peek"), ["origin/main"]);

    // The other clone keeps its remote-tracking branch until it prunes, as git.
    let r = ok(&t, b, "other", &["fetch"]);
    assert!(r.stderr.contains("dsv fetch --prune removes them"), "{r}");
    assert!(
        t.home()
            .join("other/.dsv/refs/remotes/origin/feature")
            .exists()
    );
    let r = ok(&t, b, "other", &["fetch", "--prune"]);
    assert!(
        r.stderr
            .contains(&format!("origin/feature: pruned (was {}", &theirs[..12])),
        "{r}"
    );
    assert!(
        !t.home()
            .join("other/.dsv/refs/remotes/origin/feature")
            .exists()
    );
    let r = ok(&t, b, "other", &["branch", "-r"]);
    assert_eq!(r.stdout.trim(), "origin/main");
    // Its local branch is still there, and can be pushed again over the tombstone.
    let r = json(&ok(
        &t,
        b,
        "other",
        &["push", "origin", "feature", "--json"],
    ));
    assert!(r["old"].is_null(), "{r}");
    let mut refs = remote_refs(&t, b, &url, "peek");
    refs.sort();
    assert_eq!(refs, ["origin/feature", "origin/main"]);
    ok(&t, b, "other", &["fsck", "--remote"]);
}

#[test]
fn deleting_a_stale_branch_is_refused_and_fetch_prune_removes_it_file() {
    deleting_a_stale_branch_is_refused_and_fetch_prune_removes_it(&file());
}

#[test]
fn deleting_a_stale_branch_is_refused_and_fetch_prune_removes_it_s3() {
    deleting_a_stale_branch_is_refused_and_fetch_prune_removes_it(&s3("refs-delete"));
}

fn pre_push_hook_sees_and_can_refuse_a_delete(b: &Backend) {
    let t = TestRepo::init();
    let url = b.url("refs-hook");
    two_clones(&t, b, &url);
    let payload = t.home().join("payload.json");
    let gate = t.home().join("allow");
    write_file(
        t.root(),
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"gate\"\nevent = \"pre-push\"\nrun = \"cat > {p}; test -e {g} || {{ echo deletes need approval >&2; exit 3; }}\"\n",
            p = payload.display(),
            g = gate.display()
        ),
    );
    let feature = ok(&t, b, "repo", &["rev-parse", "origin/feature"])
        .stdout
        .trim()
        .to_string();
    let r = fails(&t, b, "repo", &["push", "origin", "--delete", "feature"]);
    assert!(
        r.stderr
            .contains("pre-push hook 'gate' failed (exit status 3)")
            && r.stderr.contains("deletes need approval"),
        "{r}"
    );
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&payload).unwrap()).unwrap();
    assert_eq!(p["event"], "pre-push");
    assert_eq!(p["push"]["ref"], "refs/heads/feature");
    assert_eq!(p["push"]["deleted"], true);
    assert!(p["push"]["new"].is_null(), "{p}");
    assert_eq!(p["push"]["old"], feature.as_str());
    assert_eq!(p["branch"], "feature");
    // Refused: the remote branch and the remote-tracking branch are as they were.
    assert!(remote_refs(&t, b, &url, "peek").contains(&"origin/feature".to_string()));
    assert!(t.path(".dsv/refs/remotes/origin/feature").exists());

    std::fs::write(&gate, "").unwrap();
    ok(&t, b, "repo", &["push", "origin", "--delete", "feature"]);
    assert_eq!(remote_refs(&t, b, &url, "peek"), ["origin/main"]);
    // A branch push says what it moves, too.
    commit(&t, b, "repo", "labels/d.txt", "0 0.2 0.2 0.1 0.1\n");
    ok(&t, b, "repo", &["push"]);
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&payload).unwrap()).unwrap();
    assert_eq!(p["push"]["ref"], "refs/heads/main");
    assert_eq!(p["push"]["deleted"], false);
    assert_eq!(p["push"]["new"], p["commit"]);
}

#[test]
fn pre_push_hook_sees_and_can_refuse_a_delete_file() {
    pre_push_hook_sees_and_can_refuse_a_delete(&file());
}

#[test]
fn pre_push_hook_sees_and_can_refuse_a_delete_s3() {
    pre_push_hook_sees_and_can_refuse_a_delete(&s3("refs-hook"));
}

fn tags_are_pushed_fetched_and_never_silently_moved(b: &Backend) {
    let t = TestRepo::init();
    let url = b.url("refs-tags");
    two_clones(&t, b, &url);
    let first = ok(&t, b, "repo", &["rev-parse", "main"])
        .stdout
        .trim()
        .to_string();
    ok(&t, b, "repo", &["tag", "v1"]);
    // `push REMOTE TAG` sends the tag (its commit is there already: no data).
    let r = json(&ok(&t, b, "repo", &["push", "origin", "v1", "--json"]));
    assert_eq!(r["updates"][0]["kind"], "tag");
    assert_eq!(r["updates"][0]["new"], first.as_str());
    assert!(r["updates"][0]["old"].is_null(), "{r}");
    // Fetch brings tags.
    let r = json(&ok(&t, b, "other", &["fetch", "--json"]));
    assert_eq!(r["tags"][0]["branch"], "v1", "{r}");
    assert_eq!(
        ok(&t, b, "other", &["rev-parse", "v1"]).stdout.trim(),
        first
    );

    // A tag on a commit the remote lacks sends the commit with it; --tags sends all.
    let second = commit(&t, b, "repo", "labels/e.txt", "2 0.3 0.3 0.1 0.1\n");
    ok(&t, b, "repo", &["tag", "v2"]);
    ok(&t, b, "repo", &["tag", "v3", "feature"]);
    let r = json(&ok(&t, b, "repo", &["push", "origin", "--tags", "--json"]));
    let names: Vec<(&str, bool)> = r["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["up_to_date"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("v1", true), ("v2", false), ("v3", false)], "{r}");
    assert!(r["transfer"]["bytes_up"].as_u64().unwrap() > 0, "{r}");
    // The branch did not move: only tags were pushed.
    let r = ok(&t, b, "repo", &["status"]);
    assert!(r.stdout.contains("ahead of 'origin/main' by 1"), "{r}");
    let mut refs = remote_refs(&t, b, &url, "peek");
    refs.sort();
    assert_eq!(
        refs,
        [
            "origin/feature",
            "origin/main",
            "tag v1",
            "tag v2",
            "tag v3"
        ]
    );
    // The scratch clone can check out a tag's commit it got with the tag.
    ok(&t, b, "peek", &["checkout", "v2", "--", "."]);
    assert!(t.home().join("peek/labels/e.txt").exists());

    // Moving a tag on the remote is refused without --force.
    ok(&t, b, "repo", &["tag", "-f", "v1", &second]);
    let r = fails(&t, b, "repo", &["push", "origin", "v1"]);
    assert!(
        r.stderr.contains(&format!(
            "remote 'origin' already has tag 'v1' at {}, not {}",
            &first[..12],
            &second[..12]
        )),
        "{r}"
    );
    ok(&t, b, "repo", &["push", "origin", "v1", "--force"]);
    // A clone whose v1 is the old one keeps it, says so, and fails as git does.
    let r = fails(&t, b, "other", &["fetch"]);
    assert!(
        r.stderr
            .contains("tag 'v1' not fetched: would clobber the local tag"),
        "{r}"
    );
    assert_eq!(
        ok(&t, b, "other", &["rev-parse", "v1"]).stdout.trim(),
        first
    );
    assert_eq!(
        ok(&t, b, "other", &["rev-parse", "v2"]).stdout.trim(),
        second
    );
    // Tags are deleted like branches.
    ok(&t, b, "repo", &["push", "origin", "--delete", "v3"]);
    let mut refs = remote_refs(&t, b, &url, "peek");
    refs.sort();
    assert_eq!(refs, ["origin/feature", "origin/main", "tag v1", "tag v2"]);
    ok(&t, b, "repo", &["fsck", "--remote"]);
}

#[test]
fn tags_are_pushed_fetched_and_never_silently_moved_file() {
    tags_are_pushed_fetched_and_never_silently_moved(&file());
}

#[test]
fn tags_are_pushed_fetched_and_never_silently_moved_s3() {
    tags_are_pushed_fetched_and_never_silently_moved(&s3("refs-tags"));
}

#[test]
fn push_delete_without_a_name_is_a_usage_error() {
    let t = TestRepo::init();
    let b = file();
    let url = b.url("x");
    commit(&t, &b, "repo", "a.txt", "a");
    ok(&t, &b, "repo", &["remote", "add", "origin", &url]);
    let r = dsv(&t, &b, "repo", &["push", "origin", "--delete"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("push --delete needs the branch or tag"),
        "{r}"
    );
}
