//! End-to-end tests of the `dsv` command line: real repositories in temporary
//! directories, the real binary, hermetic environment (see `common`).

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Run, TestRepo, pseudo_random_bytes};

/// Snapshot with the temporary directory filtered out.
macro_rules! snap {
    ($repo:expr, $name:expr, $value:expr) => {{
        let value: String = $value;
        $repo
            .insta_settings()
            .bind(|| insta::assert_snapshot!($name, value));
    }};
}

/// Full id of a revision, via `dsv log --json -n 1 REV`.
fn rev(repo: &TestRepo, spec: &str) -> String {
    let r = repo.ok(["log", "--json", "-n", "1", spec]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("log --json is JSON");
    v[0]["id"].as_str().expect("id").to_string()
}

/// Id of the entry at `path` (a file or directory) in the tree of `spec`, via `ls-tree -r`.
fn entry_id(repo: &TestRepo, spec: &str, path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, path),
    };
    let mut args = vec!["ls-tree", spec];
    args.extend(dir);
    let r = repo.ok(args);
    for line in r.lines() {
        let (meta, p) = line.split_once('\t').expect("ls-tree line has a tab");
        if p.rsplit('/').next() == Some(name) {
            return meta
                .split_whitespace()
                .nth(1)
                .expect("id column")
                .to_string();
        }
    }
    panic!("{path} not in ls-tree {spec}:\n{r}");
}

/// Parses `N added, N modified, N removed; N new objects, ...` from `dsv add` stderr.
fn add_counts(r: &Run) -> [u64; 4] {
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(" new object"))
        .unwrap_or_else(|| panic!("no add summary:\n{r}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|s| !s.is_empty() && !s.contains('.'))
        .take(4)
        .map(|s| s.parse().expect("number"))
        .collect();
    [nums[0], nums[1], nums[2], nums[3]]
}

/// Inode and nanosecond mtime of a file.
fn ino_mtime(path: &Path) -> (u64, i64, i64) {
    let m = std::fs::symlink_metadata(path).expect("stat");
    (m.ino(), m.mtime(), m.mtime_nsec())
}

/// A small YOLO-like dataset with two commits:
/// c1: data.yaml, images/frame_001.jpg, images/frame_002.jpg, labels/frame_00{1,2}.txt;
/// c2: labels/frame_001.txt modified, images/frame_002.jpg deleted, images/frame_003.jpg added.
fn dataset_two_commits() -> TestRepo {
    let repo = TestRepo::init();
    write_dataset(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "first labels"]);
    edit_dataset(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "second"]);
    repo
}

fn write_dataset(repo: &TestRepo) {
    repo.write("data.yaml", "names: [car, person]\n");
    repo.write("images/frame_001.jpg", "\u{ff}\u{d8} jpeg frame one");
    repo.write("images/frame_002.jpg", "\u{ff}\u{d8} jpeg frame two");
    repo.write("labels/frame_001.txt", "0 0.50 0.50 0.10 0.10\n");
    repo.write("labels/frame_002.txt", "1 0.20 0.30 0.10 0.20\n");
}

fn edit_dataset(repo: &TestRepo) {
    repo.write("labels/frame_001.txt", "0 0.55 0.50 0.10 0.10\n");
    repo.remove("images/frame_002.jpg");
    repo.write("images/frame_003.jpg", "\u{ff}\u{d8} jpeg frame three");
}

// ---------------------------------------------------------------- init and discovery

#[test]
fn init_creates_a_repository_and_refuses_a_second_init() {
    let repo = TestRepo::new();
    let r = repo.ok(["init"]);
    assert_eq!(
        r.stdout,
        format!(
            "Initialized empty dsv repository in {}\n",
            repo.path(".dsv").display()
        )
    );
    assert!(repo.path(".dsv/format").is_file());

    let r = repo.fails(["init"]);
    assert_eq!(r.stdout, "");
    snap!(repo, "init_twice", r.transcript());

    let r = repo.ok(["status"]);
    assert_eq!(
        r.stdout,
        "On branch main\n\nNo commits yet\nnothing to commit, working tree clean\n"
    );

    // `init DIR` creates the directory; with -C it is relative to -C's directory.
    let r = repo.ok(["init", "nested/new"]);
    assert!(r.stdout.ends_with("/repo/nested/new/.dsv\n"), "{r}");
    assert!(repo.path("nested/new/.dsv/format").is_file());
    std::fs::create_dir(repo.path("cc")).unwrap();
    let r = repo.ok(["-C", "cc", "init"]);
    assert!(r.stdout.ends_with("/repo/cc/.dsv\n"), "{r}");
    assert!(repo.path("cc/.dsv/format").is_file());
    repo.ok(["-C", "cc", "init", "sub"]);
    assert!(repo.path("cc/sub/.dsv/format").is_file());
}

#[test]
fn commands_discover_the_repository_from_a_subdirectory() {
    let repo = TestRepo::init();
    repo.write("images/train/a.jpg", "a");
    repo.write("labels/a.txt", "l");
    // Paths are relative to the current directory.
    repo.ok_in("images", ["add", "train/a.jpg"]);
    let r = repo.ok_in("images/train", ["status", "--short"]);
    assert_eq!(r.stdout, "A  images/train/a.jpg\n?? labels/a.txt\n");
    repo.ok_in("labels", ["add", "."]);
    let r = repo.ok_in("images/train", ["commit", "-m", "from a subdirectory"]);
    assert!(r.stdout.contains("from a subdirectory"), "{r}");
    let r = repo.ok_in("labels", ["log", "--oneline"]);
    assert_eq!(r.lines().len(), 1);
    assert!(
        r.stdout.ends_with("(HEAD -> main) from a subdirectory\n"),
        "{r}"
    );
    // `-C DIR` works like running in DIR.
    let r = repo.ok_in(
        repo.home(),
        ["-C", "repo/images", "ls-tree", "-r", "--name-only", "HEAD"],
    );
    assert_eq!(r.stdout, "images/train/a.jpg\nlabels/a.txt\n");
}

#[test]
fn commands_outside_a_repository_fail_with_exit_1() {
    let repo = TestRepo::new();
    std::fs::create_dir(repo.home().join("elsewhere")).unwrap();
    for args in [
        vec!["status"],
        vec!["log"],
        vec!["add", "-A"],
        vec!["commit", "-m", "x"],
        vec!["config", "user.name"],
    ] {
        let r = repo.run_in(repo.home().join("elsewhere"), &args);
        assert_eq!(r.code, 1, "{args:?}: {r}");
        assert_eq!(r.stdout, "");
        assert_eq!(
            r.stderr,
            format!(
                "error: not a dsv repository (or any of the parent directories): {}\n",
                repo.home().join("elsewhere").display()
            ),
            "{args:?}"
        );
    }
}

// ---------------------------------------------------------------- add, status, commit, log

#[test]
fn add_status_commit_and_log() {
    let repo = TestRepo::init();
    write_dataset(&repo);

    snap!(repo, "status_untracked", repo.ok(["status"]).stdout);

    // add PATH
    let r = repo.ok(["add", "data.yaml"]);
    assert_eq!(add_counts(&r), [1, 0, 0, 1]);
    // add DIR
    let r = repo.ok(["add", "images"]);
    assert_eq!(add_counts(&r), [2, 0, 0, 2]);
    snap!(repo, "status_partly_staged", repo.ok(["status"]).stdout);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "A  data.yaml\nA  images/frame_001.jpg\nA  images/frame_002.jpg\n\
         ?? labels/frame_001.txt\n?? labels/frame_002.txt\n"
    );
    snap!(repo, "status_json", repo.ok(["status", "--json"]).stdout);
    // status limited to a path
    assert_eq!(
        repo.ok(["status", "--short", "labels"]).stdout,
        "?? labels/frame_001.txt\n?? labels/frame_002.txt\n"
    );

    // add -A
    let r = repo.ok(["add", "-A"]);
    assert_eq!(add_counts(&r), [2, 0, 0, 2]);
    let r = repo.ok(["commit", "-m", "first labels"]);
    snap!(repo, "commit_root", r.transcript());
    assert_eq!(
        repo.ok(["status"]).stdout,
        "On branch main\nnothing to commit, working tree clean\n"
    );

    edit_dataset(&repo);
    snap!(repo, "status_unstaged", repo.ok(["status"]).stdout);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " D images/frame_002.jpg\n M labels/frame_001.txt\n?? images/frame_003.jpg\n"
    );
    let r = repo.ok(["add", "-A"]);
    assert_eq!(add_counts(&r), [1, 1, 1, 2]);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "D  images/frame_002.jpg\nA  images/frame_003.jpg\nM  labels/frame_001.txt\n"
    );
    let r = repo.ok(["commit", "-m", "second", "-m", "moved a box"]);
    assert!(r.stdout.starts_with("[main "), "{r}");
    assert!(r.stdout.ends_with("] second\n 5 files, 105 B\n"), "{r}");

    // log: default, --oneline, -n, --json
    let log = repo.ok(["log"]).stdout;
    snap!(repo, "log_default", log.clone());
    assert_eq!(log.matches("\ncommit ").count() + 1, 2);
    let oneline = repo.ok(["log", "--oneline"]).stdout;
    snap!(repo, "log_oneline", oneline.clone());
    assert_eq!(
        repo.ok(["log", "--oneline", "-n", "1"]).stdout,
        oneline.lines().next().unwrap().to_string() + "\n"
    );
    let one = repo.ok(["log", "-n", "1"]).stdout;
    assert_eq!(one.matches("commit ").count(), 1);
    assert!(one.contains("    second\n    \n    moved a box\n"), "{one}");

    let json: serde_json::Value = serde_json::from_str(&repo.ok(["log", "--json"]).stdout).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["message"], "second\n\nmoved a box\n");
    assert_eq!(list[0]["parents"][0], list[1]["id"]);
    assert_eq!(list[1]["parents"].as_array().unwrap().len(), 0);
    assert_eq!(list[0]["author"]["name"], common::AUTHOR_NAME);
    assert_eq!(list[0]["author"]["email"], common::AUTHOR_EMAIL);
    assert_eq!(list[0]["time"], 1_700_000_000);
    assert_eq!(list[0]["summary"]["files"], 5);
    assert!(list[0].get("code").is_none(), "no git repository around");
    snap!(
        repo,
        "log_json_n1",
        repo.ok(["log", "--json", "-n", "1"]).stdout
    );
}

#[test]
fn commit_refusals_and_options() {
    let repo = TestRepo::init();
    // Unborn branch: nothing staged, no commits.
    let r = repo.fails(["commit", "-m", "empty"]);
    assert_eq!(
        r.stderr,
        "error: nothing to commit (stage files with `dsv add`, or use --allow-empty)\n"
    );
    let r = repo.fails(["log"]);
    assert_eq!(
        r.stderr,
        "error: your current branch 'main' does not have any commits yet\n"
    );

    repo.write("a.txt", "1");
    repo.ok(["add", "a.txt"]);
    let r = repo.fails(["commit", "-m", "  "]);
    assert_eq!(
        r.stderr,
        "error: aborting commit due to empty commit message (use -m MESSAGE)\n"
    );
    repo.ok(["commit", "-m", "one"]);
    let r = repo.fails(["commit", "-m", "again"]);
    assert_eq!(
        r.stderr,
        "error: nothing to commit (stage changes with `dsv add`, or use --allow-empty)\n"
    );
    repo.ok(["commit", "--allow-empty", "-m", "marker"]);
    // commit -a stages tracked and new files first.
    repo.write("a.txt", "2");
    repo.write("b.txt", "b");
    repo.ok(["commit", "-a", "-m", "all"]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
    assert_eq!(
        repo.ok(["log", "--oneline"])
            .lines()
            .iter()
            .map(|l| l.split_once(' ').unwrap().1)
            .collect::<Vec<_>>(),
        ["(HEAD -> main) all", "marker", "one"]
    );
    assert_eq!(
        repo.ok(["ls-tree", "--name-only", "HEAD"]).stdout,
        "a.txt\nb.txt\n"
    );
}

// ---------------------------------------------------------------- show and diff

#[test]
fn show_prints_the_commit_and_its_changes() {
    let repo = dataset_two_commits();
    snap!(repo, "show_head", repo.ok(["show"]).stdout);
    snap!(repo, "show_root", repo.ok(["show", "HEAD~1"]).stdout);
    let v: serde_json::Value = serde_json::from_str(&repo.ok(["show", "--json"]).stdout).unwrap();
    assert_eq!(v["id"], rev(&repo, "HEAD"));
    assert_eq!(v["changes"].as_array().unwrap().len(), 3);
}

#[test]
fn diff_between_commits_index_and_worktree() {
    let repo = dataset_two_commits();

    let ab = repo.ok(["diff", "--no-labels", "HEAD~1", "HEAD"]).stdout;
    assert_eq!(
        ab,
        "D\timages/frame_002.jpg\nA\timages/frame_003.jpg\nM\tlabels/frame_001.txt\n \
         3 files changed: 1 added, 1 modified, 1 deleted, 0 renamed\n"
    );
    // A..B and main~1..main are the same diff; A.. means A..HEAD.
    assert_eq!(repo.ok(["diff", "--no-labels", "HEAD~1..HEAD"]).stdout, ab);
    assert_eq!(repo.ok(["diff", "--no-labels", "main~1..main"]).stdout, ab);
    assert_eq!(repo.ok(["diff", "--no-labels", "HEAD~1.."]).stdout, ab);
    // Reverse direction.
    assert_eq!(
        repo.ok(["diff", "--no-labels", "--name-status", "HEAD", "HEAD~1"])
            .stdout,
        "A\timages/frame_002.jpg\nD\timages/frame_003.jpg\nM\tlabels/frame_001.txt\n"
    );
    snap!(
        repo,
        "diff_stat",
        repo.ok(["diff", "--no-labels", "--stat", "HEAD~1", "HEAD"])
            .stdout
    );
    // Limited to a path.
    assert_eq!(
        repo.ok([
            "diff",
            "--no-labels",
            "--name-status",
            "HEAD~1",
            "HEAD",
            "--",
            "labels"
        ])
        .stdout,
        "M\tlabels/frame_001.txt\n"
    );
    assert_eq!(
        repo.ok(["diff", "--no-labels", "HEAD~1", "HEAD", "--", "data.yaml"])
            .stdout,
        ""
    );

    // Clean worktree: no output.
    assert_eq!(repo.ok(["diff"]).stdout, "");
    assert_eq!(repo.ok(["diff", "--no-labels", "--staged"]).stdout, "");

    // Worktree vs HEAD (tracked files only).
    repo.write("data.yaml", "names: [car, person, bike]\n");
    repo.remove("labels/frame_002.txt");
    repo.write("untracked.txt", "u");
    assert_eq!(
        repo.ok(["diff", "--no-labels"]).stdout,
        "M\tdata.yaml\nD\tlabels/frame_002.txt\n \
         2 files changed: 0 added, 1 modified, 1 deleted, 0 renamed\n"
    );
    assert_eq!(
        repo.ok(["diff", "--no-labels", "--name-status", "--", "labels"])
            .stdout,
        "D\tlabels/frame_002.txt\n"
    );
    // From a subdirectory, paths are relative to it.
    assert_eq!(
        repo.ok_in(
            "labels",
            ["diff", "--no-labels", "--name-status", "--", "."]
        )
        .stdout,
        "D\tlabels/frame_002.txt\n"
    );
    assert_eq!(repo.ok(["diff", "--no-labels", "--staged"]).stdout, "");
    // Worktree vs an older commit.
    assert_eq!(
        repo.ok(["diff", "--no-labels", "--name-status", "HEAD~1"])
            .stdout,
        "M\tdata.yaml\nD\timages/frame_002.jpg\nA\timages/frame_003.jpg\n\
         M\tlabels/frame_001.txt\nD\tlabels/frame_002.txt\n"
    );

    // Staged changes: index vs HEAD.
    repo.ok(["add", "data.yaml"]);
    assert_eq!(
        repo.ok(["diff", "--no-labels", "--staged", "--name-status"])
            .stdout,
        "M\tdata.yaml\n"
    );
    assert_eq!(
        repo.ok(["diff", "--no-labels", "--cached", "--name-status"])
            .stdout,
        "M\tdata.yaml\n"
    );
    assert_eq!(
        repo.ok(["diff", "--no-labels", "--name-status"]).stdout,
        "M\tdata.yaml\nD\tlabels/frame_002.txt\n"
    );

    let v: serde_json::Value = serde_json::from_str(
        &repo
            .ok(["diff", "--no-labels", "--staged", "--json"])
            .stdout,
    )
    .unwrap();
    let ch = &v["files"][0];
    assert_eq!(ch["path"], "data.yaml");
    assert_eq!(ch["kind"], "modified");
    assert_eq!(ch["old"]["size"], 21);
    assert_eq!(ch["new"]["size"], 27);

    let r = repo.expect_code(2, ["diff", "HEAD", "HEAD~1", "HEAD~1"]);
    assert_eq!(r.stderr, "error: diff takes at most two revisions\n");
}

#[test]
fn renames_are_detected_when_the_content_is_unchanged() {
    let repo = TestRepo::init();
    repo.write("images/a.jpg", "frame a");
    repo.write("images/b.jpg", "frame b");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);

    std::fs::create_dir_all(repo.path("archive")).unwrap();
    std::fs::rename(repo.path("images/a.jpg"), repo.path("archive/a.jpg")).unwrap();
    // Moved and changed: not a rename.
    repo.remove("images/b.jpg");
    repo.write("images/b2.jpg", "frame b, edited");
    repo.ok(["add", "-A"]);
    assert_eq!(
        repo.ok(["diff", "--staged", "--name-status"]).stdout,
        "R\timages/a.jpg\tarchive/a.jpg\nD\timages/b.jpg\nA\timages/b2.jpg\n"
    );
    repo.ok(["commit", "-m", "move"]);
    let show = repo.ok(["show"]).stdout;
    assert!(
        show.ends_with(
            "R\timages/a.jpg\tarchive/a.jpg\nD\timages/b.jpg\nA\timages/b2.jpg\n \
             3 files changed: 1 added, 0 modified, 1 deleted, 1 renamed\n"
        ),
        "{show}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&repo.ok(["diff", "--json", "HEAD~1", "HEAD"]).stdout).unwrap();
    let r = &v["files"][0];
    assert_eq!(v["frames"]["renamed"][0]["to"], "archive/a.jpg");
    assert_eq!(r["kind"], "renamed");
    assert_eq!(r["from"], "images/a.jpg");
    assert_eq!(r["path"], "archive/a.jpg");
    assert_eq!(r["old"]["id"], r["new"]["id"]);
}

// ---------------------------------------------------------------- branches, switch, checkout

#[test]
fn branch_list_create_delete_and_rename() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    assert_eq!(repo.ok(["branch"]).stdout, "* main\n");

    assert_eq!(repo.ok(["branch", "feature"]).stdout, "");
    assert_eq!(repo.ok(["branch"]).stdout, "  feature\n* main\n");
    let r = repo.fails(["branch", "feature"]);
    assert_eq!(r.stderr, "error: branch 'feature' already exists\n");
    let r = repo.fails(["branch", "a..b"]);
    assert!(
        r.stderr.starts_with("error: invalid branch name 'a..b'"),
        "{r}"
    );

    // A merged branch (same commit as HEAD) can be deleted with -d.
    repo.ok(["branch", "merged"]);
    let merged = rev(&repo, "merged");
    assert_eq!(
        repo.ok(["branch", "-d", "merged"]).stdout,
        format!("Deleted branch merged (was {}).\n", &merged[..12])
    );

    // feature gets a commit main does not have.
    repo.ok(["switch", "feature"]);
    repo.write("f.txt", "f");
    repo.ok(["add", "f.txt"]);
    repo.ok(["commit", "-m", "feature work"]);
    let feature = rev(&repo, "HEAD");
    repo.ok(["switch", "main"]);
    let r = repo.fails(["branch", "-d", "feature"]);
    assert_eq!(
        r.stderr,
        "error: branch 'feature' is not merged into HEAD; use -D to delete it anyway \
         (its commits stay reachable from the reflog)\n"
    );
    assert_eq!(repo.ok(["branch"]).stdout, "  feature\n* main\n");
    let r = repo.ok(["branch", "-v"]);
    assert_eq!(
        r.stdout,
        format!(
            "  feature {} feature work\n* main    {} base\n",
            &feature[..12],
            &rev(&repo, "main")[..12]
        )
    );

    // Rename another branch, then the current one.
    repo.ok(["branch", "-m", "feature", "topic"]);
    assert_eq!(repo.ok(["branch"]).stdout, "* main\n  topic\n");
    assert_eq!(rev(&repo, "topic"), feature);
    repo.ok(["branch", "-m", "trunk"]);
    assert_eq!(repo.ok(["branch"]).stdout, "  topic\n* trunk\n");
    assert!(repo.ok(["status"]).stdout.starts_with("On branch trunk\n"));
    // Renaming a branch to its own name changes nothing (and must not delete it).
    let trunk = rev(&repo, "trunk");
    repo.ok(["branch", "-m", "trunk", "trunk"]);
    repo.ok(["branch", "-f", "-m", "trunk"]);
    assert_eq!(repo.ok(["branch"]).stdout, "  topic\n* trunk\n");
    assert_eq!(rev(&repo, "HEAD"), trunk);
    let r = repo.fails(["branch", "-m", "nosuch", "x"]);
    assert_eq!(r.stderr, "error: branch 'nosuch' not found\n");

    // The current branch cannot be deleted; -D deletes an unmerged one.
    let r = repo.fails(["branch", "-D", "trunk"]);
    assert_eq!(
        r.stderr,
        "error: cannot delete branch 'trunk': it is the current branch\n"
    );
    assert_eq!(
        repo.ok(["branch", "-D", "topic"]).stdout,
        format!("Deleted branch topic (was {}).\n", &feature[..12])
    );
    assert_eq!(repo.ok(["branch"]).stdout, "* trunk\n");

    // Branch at a start point; JSON listing.
    repo.ok(["branch", "old", "HEAD"]);
    let v: serde_json::Value = serde_json::from_str(&repo.ok(["branch", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["name"], "old");
    assert_eq!(v[0]["current"], false);
    assert_eq!(v[1]["name"], "trunk");
    assert_eq!(v[1]["current"], true);
}

#[test]
fn switch_and_checkout() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a1");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);
    let c1 = rev(&repo, "HEAD");

    let r = repo.ok(["switch", "-c", "dev"]);
    assert_eq!(
        r.stderr,
        "Switched to a new branch 'dev' (0 files written, 0 removed)\n"
    );
    assert_eq!(repo.ok(["branch"]).stdout, "* dev\n  main\n");
    repo.write("x.txt", "x");
    repo.write("a.txt", "a2");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "dev work"]);
    let dev = rev(&repo, "HEAD");

    let r = repo.ok(["switch", "main"]);
    assert_eq!(
        r.stderr,
        "Switched to branch 'main' (1 file written, 1 removed)\n"
    );
    assert!(!repo.exists("x.txt"));
    assert_eq!(repo.read_string("a.txt"), "a1");
    assert_eq!(
        repo.ok(["status"]).stdout,
        "On branch main\nnothing to commit, working tree clean\n"
    );

    let r = repo.fails(["switch", "nosuch"]);
    assert_eq!(
        r.stderr,
        "error: no branch named 'nosuch' (use --detach to check out a commit or tag, -c to create a branch)\n"
    );

    // checkout BRANCH attaches HEAD.
    let r = repo.ok(["checkout", "dev"]);
    assert_eq!(r.stderr, "Switched to branch 'dev'\n");
    assert_eq!(repo.read_string("x.txt"), "x");

    // checkout REV detaches.
    let r = repo.ok(["checkout", "HEAD~1"]);
    assert_eq!(
        r.stderr,
        format!(
            "HEAD is now at {} (detached; create a branch with `dsv switch -c NAME`)\n",
            &c1[..12]
        )
    );
    assert_eq!(
        repo.ok(["status"]).stdout,
        format!(
            "HEAD detached at {}\nnothing to commit, working tree clean\n",
            &c1[..12]
        )
    );
    assert_eq!(
        repo.ok(["branch"]).stdout,
        format!("* (HEAD detached at {})\n  dev\n  main\n", &c1[..12])
    );
    assert_eq!(
        repo.ok(["log", "--oneline"]).stdout,
        format!("{} (HEAD, main) c1\n", &c1[..12])
    );
    assert!(!repo.exists("x.txt"));
    // A commit on a detached HEAD moves HEAD only.
    repo.write("d.txt", "d");
    repo.ok(["add", "d.txt"]);
    let r = repo.ok(["commit", "-m", "detached work"]);
    assert!(r.stdout.starts_with("[detached HEAD "), "{r}");
    assert_eq!(rev(&repo, "main"), c1);
    assert_eq!(rev(&repo, "dev"), dev);
    // switch --detach REV
    let r = repo.ok(["switch", "--detach", "dev"]);
    assert!(
        r.stderr
            .starts_with(&format!("HEAD is now at {} (", &dev[..12])),
        "{r}"
    );
    assert!(!repo.exists("d.txt"));

    repo.ok(["switch", "main"]);
    // checkout REV -- PATH: writes the file and stages it.
    let r = repo.ok(["checkout", "dev", "--", "x.txt"]);
    assert_eq!(r.stderr, "Updated 1 path\n");
    assert_eq!(repo.read_string("x.txt"), "x");
    assert_eq!(repo.ok(["status", "--short"]).stdout, "A  x.txt\n");
    assert!(repo.ok(["status"]).stdout.starts_with("On branch main\n"));
    repo.ok(["checkout", "dev", "--", "a.txt"]);
    assert_eq!(repo.read_string("a.txt"), "a2");
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "M  a.txt\nA  x.txt\n"
    );
    // checkout -- PATH (no revision): from the index.
    repo.write("a.txt", "scribble");
    repo.ok(["checkout", "--", "a.txt"]);
    assert_eq!(repo.read_string("a.txt"), "a2");
    repo.ok(["reset", "--hard"]);

    // checkout -b NEW creates and switches.
    let r = repo.ok(["checkout", "-b", "topic"]);
    assert_eq!(r.stderr, "Switched to a new branch 'topic'\n");
    assert_eq!(repo.ok(["branch"]).stdout, "  dev\n  main\n* topic\n");
    assert_eq!(rev(&repo, "topic"), c1);
    let r = repo.fails(["switch", "-c", "topic"]);
    assert_eq!(r.stderr, "error: branch 'topic' already exists\n");
}

#[test]
fn switch_rewrites_only_the_files_that_differ() {
    let repo = TestRepo::init();
    repo.write("same.bin", "unchanged between branches");
    repo.write("differs.bin", "main version");
    repo.write("sub/also_same.txt", "s");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["switch", "-c", "other"]);
    repo.write("differs.bin", "other version");
    repo.ok(["commit", "-a", "-m", "other"]);
    repo.ok(["switch", "main"]);
    assert_eq!(repo.read_string("differs.bin"), "main version");

    let same = ino_mtime(&repo.path("same.bin"));
    let sub_same = ino_mtime(&repo.path("sub/also_same.txt"));
    let differs = ino_mtime(&repo.path("differs.bin"));
    let r = repo.ok(["switch", "other"]);
    assert_eq!(
        r.stderr,
        "Switched to branch 'other' (1 file written, 0 removed)\n"
    );
    assert_eq!(
        ino_mtime(&repo.path("same.bin")),
        same,
        "same.bin was rewritten"
    );
    assert_eq!(
        ino_mtime(&repo.path("sub/also_same.txt")),
        sub_same,
        "sub/also_same.txt was rewritten"
    );
    assert_ne!(ino_mtime(&repo.path("differs.bin")).0, differs.0);
    assert_eq!(repo.read_string("differs.bin"), "other version");
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
}

#[test]
fn switch_refuses_to_overwrite_local_changes_unless_forced() {
    let repo = TestRepo::init();
    repo.write("same.txt", "same");
    repo.write("differs.txt", "main");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["switch", "-c", "other"]);
    repo.write("differs.txt", "other");
    repo.write("new.txt", "theirs");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "other"]);
    repo.ok(["switch", "main"]);

    // A local change to a file that differs between the branches.
    repo.write("differs.txt", "local edit");
    let r = repo.fails(["switch", "other"]);
    snap!(repo, "switch_refused", r.transcript());
    assert_eq!(repo.read_string("differs.txt"), "local edit");
    assert!(!repo.exists("new.txt"));
    assert!(repo.ok(["status"]).stdout.starts_with("On branch main\n"));
    let r = repo.fails(["checkout", "other"]);
    assert!(r.stderr.contains("\n  differs.txt\n"), "{r}");
    assert_eq!(repo.read_string("differs.txt"), "local edit");

    // The same change staged is refused too.
    repo.ok(["add", "differs.txt"]);
    repo.fails(["switch", "other"]);
    assert_eq!(repo.read_string("differs.txt"), "local edit");
    repo.ok(["reset", "--hard"]);

    // An untracked file in the way of a file the target adds.
    repo.write("new.txt", "mine");
    let r = repo.fails(["switch", "other"]);
    assert!(r.stderr.contains("\n  new.txt\n"), "{r}");
    assert_eq!(repo.read_string("new.txt"), "mine");
    repo.remove("new.txt");

    // A local change to a file that is the same on both branches is carried over.
    repo.write("same.txt", "carried");
    repo.ok(["switch", "other"]);
    assert_eq!(repo.read_string("same.txt"), "carried");
    assert_eq!(repo.read_string("differs.txt"), "other");
    assert_eq!(repo.ok(["status", "--short"]).stdout, " M same.txt\n");

    // -f discards local changes.
    repo.write("differs.txt", "local again");
    repo.fails(["switch", "main"]);
    let r = repo.ok(["switch", "-f", "main"]);
    assert!(r.stderr.starts_with("Switched to branch 'main'"), "{r}");
    assert_eq!(repo.read_string("differs.txt"), "main");
    assert_eq!(repo.read_string("same.txt"), "same");
    assert!(!repo.exists("new.txt"));
    assert_eq!(
        repo.ok(["status"]).stdout,
        "On branch main\nnothing to commit, working tree clean\n"
    );
}

// ---------------------------------------------------------------- restore, tag, reset

#[test]
fn restore_worktree_and_staged() {
    let repo = TestRepo::init();
    repo.write("a.txt", "one");
    repo.write("dir/b.txt", "bee");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);

    // restore PATH: from the index.
    repo.write("a.txt", "two");
    repo.ok(["restore", "a.txt"]);
    assert_eq!(repo.read_string("a.txt"), "one");
    // A deleted file (and its directory) comes back.
    repo.remove("dir/b.txt");
    std::fs::remove_dir(repo.path("dir")).unwrap();
    repo.ok(["restore", "dir"]);
    assert_eq!(repo.read_string("dir/b.txt"), "bee");
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");

    // restore --staged: unstage, keep the worktree.
    repo.write("a.txt", "two");
    repo.write("new.txt", "n");
    repo.ok(["add", "-A"]);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "M  a.txt\nA  new.txt\n"
    );
    repo.ok(["restore", "--staged", "a.txt", "new.txt"]);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " M a.txt\n?? new.txt\n"
    );
    assert_eq!(repo.read_string("a.txt"), "two");
    assert_eq!(repo.read_string("new.txt"), "n");

    // restore --source REV
    repo.ok(["add", "a.txt"]);
    repo.ok(["commit", "-m", "c2"]);
    repo.ok(["restore", "--source", "HEAD~1", "a.txt"]);
    assert_eq!(repo.read_string("a.txt"), "one");
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " M a.txt\n?? new.txt\n"
    );
    // --staged --worktree from the source: both.
    repo.ok(["restore", "-S", "-W", "--source", "HEAD", "a.txt"]);
    assert_eq!(repo.read_string("a.txt"), "two");
    assert_eq!(repo.ok(["status", "--short"]).stdout, "?? new.txt\n");
}

#[test]
fn tags_create_list_delete_and_resolve() {
    let repo = dataset_two_commits();
    let c1 = rev(&repo, "HEAD~1");
    let c2 = rev(&repo, "HEAD");
    assert_eq!(repo.ok(["tag"]).stdout, "");
    repo.ok(["tag", "v1"]);
    repo.ok(["tag", "v0", "HEAD~1"]);
    assert_eq!(repo.ok(["tag"]).stdout, "v0\nv1\n");
    let v: serde_json::Value = serde_json::from_str(&repo.ok(["tag", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["name"], "v0");
    assert_eq!(v[0]["id"], c1.as_str());
    assert_eq!(v[1]["id"], c2.as_str());
    assert_eq!(rev(&repo, "v0"), c1);
    assert_eq!(rev(&repo, "v1~1"), c1);
    assert_eq!(
        repo.ok(["log", "--oneline"]).stdout,
        format!(
            "{} (HEAD -> main, tag: v1) second\n{} (tag: v0) first labels\n",
            &c2[..12],
            &c1[..12]
        )
    );

    let r = repo.fails(["tag", "v1"]);
    assert_eq!(r.stderr, "error: tag 'v1' already exists\n");
    repo.ok(["tag", "-f", "v1", "v0"]);
    assert_eq!(rev(&repo, "v1"), c1);

    // A tag is not a branch: switch refuses, switch --detach and checkout work.
    repo.fails(["switch", "v0"]);
    repo.ok(["checkout", "v0"]);
    assert!(repo.exists("images/frame_002.jpg"));
    repo.ok(["switch", "main"]);

    assert_eq!(
        repo.ok(["tag", "-d", "v0"]).stdout,
        format!("Deleted tag 'v0' (was {})\n", &c1[..12])
    );
    assert_eq!(repo.ok(["tag"]).stdout, "v1\n");
    let r = repo.fails(["tag", "-d", "v0"]);
    assert_eq!(r.stderr, "error: tag 'v0' not found\n");
    let r = repo.fails(["log", "v0"]);
    assert_eq!(r.stderr, "error: unknown revision 'v0'\n");
    let r = repo.fails(["tag", "bad name"]);
    assert!(
        r.stderr.starts_with("error: invalid tag name 'bad name'"),
        "{r}"
    );
}

#[test]
fn reset_soft_mixed_hard() {
    let repo = TestRepo::init();
    repo.write("a.txt", "1");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);
    let c1 = rev(&repo, "HEAD");
    repo.write("a.txt", "2");
    repo.write("b.txt", "b");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c2"]);
    let c2 = rev(&repo, "HEAD");
    repo.write("untracked.txt", "u");

    // --soft: branch only.
    assert_eq!(
        repo.ok(["reset", "--soft", "HEAD~1"]).transcript(),
        "exit: 0\n--- stdout\n--- stderr\n"
    );
    assert_eq!(rev(&repo, "main"), c1);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "M  a.txt\nA  b.txt\n?? untracked.txt\n"
    );
    assert_eq!(repo.read_string("a.txt"), "2");

    // --mixed (the default): branch and index.
    repo.ok(["reset", "--soft", &c2]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "?? untracked.txt\n");
    repo.ok(["reset", "HEAD~1"]);
    assert_eq!(rev(&repo, "main"), c1);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " M a.txt\n?? b.txt\n?? untracked.txt\n"
    );
    repo.ok(["reset", "--mixed", &c2]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "?? untracked.txt\n");

    // --hard: branch, index and worktree; untracked files stay.
    repo.write("a.txt", "local change");
    let r = repo.ok(["reset", "--hard", "HEAD~1"]);
    assert_eq!(
        r.stderr,
        format!(
            "HEAD is now at {} c1 (1 file written, 1 removed)\n",
            &c1[..12]
        )
    );
    assert_eq!(repo.read_string("a.txt"), "1");
    assert!(!repo.exists("b.txt"));
    assert_eq!(repo.read_string("untracked.txt"), "u");
    assert_eq!(repo.ok(["status", "--short"]).stdout, "?? untracked.txt\n");
    repo.ok(["reset", "--hard", &c2]);
    assert_eq!(repo.read_string("a.txt"), "2");
    assert_eq!(repo.read_string("b.txt"), "b");
    assert_eq!(rev(&repo, "HEAD"), c2);

    // Usage errors.
    let r = repo.expect_code(2, ["reset", "--soft", "--hard"]);
    assert!(r.stderr.contains("cannot be used with"), "{r}");
}

// ---------------------------------------------------------------- gc, fsck, plumbing, config

#[test]
fn gc_drops_only_unreachable_objects_and_fsck_stays_clean() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);
    // A commit on a branch that is then deleted: HEAD's reflog still names it.
    repo.ok(["switch", "-c", "side"]);
    repo.write("s.txt", "side data");
    repo.ok(["add", "s.txt"]);
    repo.ok(["commit", "-m", "side"]);
    let side = rev(&repo, "HEAD");
    repo.ok(["switch", "main"]);
    repo.ok(["branch", "-D", "side"]);
    // A blob staged and then replaced before any commit: nothing reaches it.
    repo.write("t.txt", "tmp1\n");
    repo.ok(["add", "t.txt"]);
    repo.write("t.txt", "tmp2\n");
    repo.ok(["add", "t.txt"]);
    let orphan = blake3::hash(b"tmp1\n").to_hex().to_string();
    let staged = blake3::hash(b"tmp2\n").to_hex().to_string();
    assert_eq!(repo.ok(["cat-object", &orphan]).stdout, "tmp1\n");

    let r = repo.ok(["fsck"]);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "checked 8 objects, 2 commits: 0 problems\n");

    let r = repo.ok(["gc"]);
    assert!(
        r.stdout
            .starts_with("kept 7 objects, dropped 1; packs 1 -> 1, "),
        "{r}"
    );
    let r = repo.fails(["cat-object", &orphan]);
    assert_eq!(
        r.stderr,
        format!("error: object {orphan} not found in the store\n")
    );
    // Everything referenced survives: the staged blob, the reflog-only commit and its data.
    assert_eq!(repo.ok(["cat-object", &staged]).stdout, "tmp2\n");
    assert_eq!(
        repo.ok(["ls-tree", "--name-only", &side]).stdout,
        "a.txt\ns.txt\n"
    );
    let s_id = entry_id(&repo, &side, "s.txt");
    assert_eq!(repo.ok(["cat-object", &s_id]).stdout, "side data");
    let r = repo.ok(["fsck"]);
    assert_eq!(r.stderr, "checked 7 objects, 2 commits: 0 problems\n");
    let r = repo.ok(["fsck", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);

    // A second gc has nothing to drop; the repository still works.
    assert!(
        repo.ok(["gc"])
            .stdout
            .starts_with("kept 7 objects, dropped 0;")
    );
    repo.ok(["commit", "-m", "after gc"]);
    repo.ok(["switch", "--detach", &side]);
    assert_eq!(repo.read_string("s.txt"), "side data");
    repo.ok(["switch", "main"]);
    assert_eq!(repo.read_string("t.txt"), "tmp2\n");
    repo.ok(["fsck"]);
}

#[test]
fn cat_object_and_ls_tree() {
    let repo = TestRepo::init();
    repo.write("data.yaml", "names: [car]\n");
    repo.write("images/a.jpg", "AAAA");
    repo.write("images/sub/b.jpg", "BB");
    repo.write("run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        repo.path("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);

    snap!(repo, "ls_tree", repo.ok(["ls-tree", "HEAD"]).stdout);
    snap!(repo, "ls_tree_r", repo.ok(["ls-tree", "-r", "HEAD"]).stdout);
    assert_eq!(
        repo.ok(["ls-tree", "-r", "--name-only", "HEAD", "images"])
            .stdout,
        "images/a.jpg\nimages/sub/b.jpg\n"
    );
    assert_eq!(
        repo.ok(["ls-tree", "--name-only", "HEAD", "images/"])
            .stdout,
        "images/a.jpg\nimages/sub\n"
    );
    let r = repo.fails(["ls-tree", "HEAD", "nope"]);
    assert_eq!(r.stderr, "error: path 'nope' does not exist in 'HEAD'\n");
    let r = repo.fails(["ls-tree", "HEAD", "data.yaml"]);
    assert_eq!(r.stderr, "error: 'data.yaml' is a file, not a directory\n");

    let head = rev(&repo, "HEAD");
    let blob = entry_id(&repo, "HEAD", "images/a.jpg");
    assert_eq!(blob, blake3::hash(b"AAAA").to_hex().as_str());
    let tree = entry_id(&repo, "HEAD", "images");

    assert_eq!(repo.ok(["cat-object", "-t", "HEAD"]).stdout, "commit\n");
    assert_eq!(repo.ok(["cat-object", "-t", &head]).stdout, "commit\n");
    assert_eq!(repo.ok(["cat-object", "-t", &tree]).stdout, "tree\n");
    assert_eq!(repo.ok(["cat-object", "-t", &blob]).stdout, "blob\n");
    assert_eq!(repo.ok(["cat-object", "-s", &blob]).stdout, "4\n");
    assert_eq!(repo.ok(["cat-object", &blob]).stdout, "AAAA");
    assert_eq!(repo.ok(["cat-object", &blob.to_uppercase()]).stdout, "AAAA");
    snap!(
        repo,
        "cat_object_tree",
        repo.ok(["cat-object", &tree]).stdout
    );

    // A commit is pretty-printed JSON; --raw gives the stored bytes.
    let pretty = repo.ok(["cat-object", &head[..10]]).stdout;
    snap!(repo, "cat_object_commit", pretty.clone());
    let v: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(v["message"], "c1\n");
    assert_eq!(v["parents"].as_array().unwrap().len(), 0);
    assert_eq!(v["summary"]["files"], 4);
    let raw = repo.ok(["cat-object", "--raw", "HEAD"]).stdout_bytes;
    assert!(
        raw.starts_with(b"{\"format\":1,"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(blake3::hash(&raw).to_hex().as_str(), head);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&raw).unwrap(),
        v
    );

    let missing = "0".repeat(64);
    let r = repo.fails(["cat-object", &missing]);
    assert_eq!(
        r.stderr,
        format!("error: object {missing} not found in the store\n")
    );
    let r = repo.expect_code(2, ["cat-object", "-t", "-s", &blob]);
    assert!(r.stderr.contains("cannot be used with"), "{r}");
}

#[test]
fn config_set_get_list_and_identity() {
    let repo = TestRepo::init();
    assert_eq!(repo.ok(["config", "user.name", "Repo Person"]).stdout, "");
    assert_eq!(repo.ok(["config", "user.name"]).stdout, "Repo Person\n");
    // Unset key: exit 1, no output (as git).
    let r = repo.fails(["config", "user.email"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = repo.fails(["config", "foo.bar", "x"]);
    assert_eq!(
        r.stderr,
        "error: invalid config key name 'foo.bar': unknown key (known: user.name, user.email, core.lock_timeout_ms, core.fsync, core.fsmonitor, remote.NAME.url|endpoint|region|allow_http|connect_timeout|timeout|retries|retry_timeout)\n"
    );
    repo.fails(["config", "foo.bar"]);

    // --global writes $XDG_CONFIG_HOME/dsv/config.toml.
    repo.ok(["config", "--global", "user.email", "global@example.com"]);
    assert!(repo.home().join(".config/dsv/config.toml").is_file());
    assert_eq!(
        repo.ok(["config", "--list"]).stdout,
        "user.name=Repo Person\n"
    );
    assert_eq!(
        repo.ok(["config", "--global", "--list"]).stdout,
        "user.email=global@example.com\n"
    );
    repo.ok(["config", "core.lock_timeout_ms", "500"]);
    assert_eq!(
        repo.ok(["config", "-l"]).stdout,
        "core.lock_timeout_ms=500\nuser.name=Repo Person\n"
    );

    // Without DSV_AUTHOR_*, commits use the configuration (repository over global).
    repo.write("a.txt", "a");
    repo.ok(["add", "a.txt"]);
    repo.cmd()
        .env_remove("DSV_AUTHOR_NAME")
        .env_remove("DSV_AUTHOR_EMAIL")
        .args(["commit", "-m", "configured"])
        .assert()
        .success();
    let log = repo.ok(["log", "-n", "1"]).stdout;
    assert!(
        log.contains("\nAuthor: Repo Person <global@example.com>\n"),
        "{log}"
    );

    repo.ok(["config", "--unset", "user.name"]);
    assert_eq!(
        repo.ok(["config", "--list"]).stdout,
        "core.lock_timeout_ms=500\n"
    );
    repo.write("a.txt", "b");
    repo.ok(["add", "a.txt"]);
    let out = repo
        .cmd()
        .env_remove("DSV_AUTHOR_NAME")
        .env_remove("DSV_AUTHOR_EMAIL")
        .args(["commit", "-m", "no name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: author identity unknown"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------- revisions and exit codes

#[test]
fn revision_expressions() {
    let repo = TestRepo::init();
    let mut ids = Vec::new();
    for i in 1..=3 {
        repo.write("a.txt", format!("version {i}"));
        repo.ok(["add", "a.txt"]);
        repo.ok(["commit", "-m", &format!("c{i}")]);
        ids.push(rev(&repo, "HEAD"));
    }
    let (c1, c2, c3) = (&ids[0], &ids[1], &ids[2]);
    repo.ok(["tag", "v1", c1]);
    let upper = c2[..8].to_uppercase();
    let c3_parent = format!("{}~1", &c3[..12]);
    for (spec, want) in [
        ("HEAD", c3),
        ("@", c3),
        ("main", c3),
        ("HEAD~1", c2),
        ("HEAD^", c2),
        ("HEAD^1", c2),
        ("HEAD~0", c3),
        ("HEAD~2", c1),
        ("HEAD^^", c1),
        ("HEAD~1^", c1),
        ("main~2", c1),
        ("v1", c1),
        ("refs/tags/v1", c1),
        ("refs/heads/main", c3),
        (&c2[..12], c2),
        (&c2[..6], c2),
        (upper.as_str(), c2),
        (c2.as_str(), c2),
        (c3_parent.as_str(), c2),
    ] {
        assert_eq!(&rev(&repo, spec), want, "{spec}");
    }
    let r = repo.fails(["log", "nope"]);
    assert_eq!(r.stderr, "error: unknown revision 'nope'\n");
    let r = repo.fails(["show", "HEAD~3"]);
    assert_eq!(
        r.stderr,
        format!(
            "error: revision 'HEAD~3': commit {} has no parent #1\n",
            &c1[..12]
        )
    );
    let r = repo.fails(["diff", "deadbeef", "HEAD"]);
    assert_eq!(r.stderr, "error: unknown revision 'deadbeef'\n");
    // Too short to be an id prefix.
    let r = repo.fails(["show", &c2[..3]]);
    assert_eq!(
        r.stderr,
        format!("error: unknown revision '{}'\n", &c2[..3])
    );
    let r = repo.fails(["reset", "--hard", "v2"]);
    assert_eq!(r.stderr, "error: unknown revision 'v2'\n");
    assert_eq!(rev(&repo, "HEAD"), *c3);
}

#[test]
fn exit_codes_ok_error_usage() {
    let repo = TestRepo::init();
    let r = repo.ok(["--version"]);
    assert!(r.stdout.starts_with("dsv "), "{r}");
    repo.ok(["--help"]);
    repo.ok(["status", "--help"]);
    let r = repo.expect_code(2, ["status", "--bogus-flag"]);
    assert!(
        r.stderr
            .starts_with("error: unexpected argument '--bogus-flag' found"),
        "{r}"
    );
    assert_eq!(r.stdout, "");
    let r = repo.expect_code(2, ["frobnicate"]);
    assert!(
        r.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{r}"
    );
    repo.expect_code(2, Vec::<&str>::new());
    let r = repo.expect_code(2, ["commit"]);
    assert!(r.stderr.contains("--message <MESSAGE>"), "{r}");
    repo.expect_code(2, ["log", "-n", "many"]);
    repo.expect_code(2, ["status", "--color", "sometimes"]);
    // Command lines that parse but make no sense are usage errors too.
    for (args, message) in [
        (
            vec!["add"],
            "nothing specified, nothing added (give paths, or -A for everything)",
        ),
        (
            vec!["switch"],
            "missing branch name (use -c NEW to create one)",
        ),
        (vec!["branch", "-d"], "branch name required"),
        (
            vec!["checkout"],
            "nothing to check out: give a revision, or `-- PATH...`",
        ),
        (
            vec!["diff", "a", "b", "c"],
            "diff takes at most two revisions",
        ),
    ] {
        let r = repo.expect_code(2, &args);
        assert_eq!(r.stderr, format!("error: {message}\n"), "{args:?}");
    }
    // Runtime errors exit 1.
    repo.fails(["log", "nope"]);
    repo.fails(["branch", "-d", "nope"]);
    repo.ok(["status"]);
}

#[test]
fn library_argument_errors_exit_with_the_usage_code() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "one"]);
    repo.ok(["remote", "add", "origin", "file:///nonexistent-dsv-remote"]);
    for (args, message) in [
        (
            vec!["diff", "--staged", "HEAD", "HEAD"],
            "--staged compares the index with one revision, not two",
        ),
        (
            vec!["meta", "set", "a.jpg", "a=1", "noequals"],
            "'noequals' is not key=value (e.g. weather=rain)",
        ),
        (
            vec!["meta", "set", "a.jpg", "path=1"],
            "'path' cannot be an attribute name (empty, or reserved: path, predictions)",
        ),
        (
            vec!["watch", "origin", "--branch", "a[", "--exec", "true"],
            "invalid --branch glob 'a['",
        ),
        (
            vec!["watch", "origin", "--paths", "a[", "--exec", "true"],
            "invalid --paths glob 'a['",
        ),
    ] {
        let r = repo.expect_code(2, &args);
        assert!(
            r.stderr.starts_with(&format!("error: {message}")),
            "{args:?}: {r}"
        );
    }
}

#[test]
fn a_bad_author_date_fails_only_the_commands_that_need_a_time() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    let run = |args: &[&str]| {
        let out = repo
            .cmd()
            .env("DSV_AUTHOR_DATE", "yesterday")
            .args(args)
            .output()
            .expect("running dsv");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["add", "-A"]).0, Some(0));
    assert_eq!(run(&["status"]).0, Some(0));
    let (code, stderr) = run(&["commit", "-m", "one"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: DSV_AUTHOR_DATE 'yesterday' is not unix seconds or RFC 3339: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

// ---------------------------------------------------------------- bad input

#[test]
fn add_of_a_path_outside_the_repository_is_refused() {
    let repo = TestRepo::init();
    std::fs::write(repo.home().join("outside.txt"), "outside").unwrap();
    repo.write("a.txt", "a");
    repo.write("b.txt", "b");
    repo.ok(["add", "a.txt"]);
    let before = repo.ok(["status", "--json"]).stdout;

    let r = repo.fails(["add", "b.txt", "../outside.txt"]);
    assert_eq!(
        r.stderr,
        format!(
            "error: path '../outside.txt' is outside the repository at '{}'\n",
            repo.root().display()
        )
    );
    let abs = repo.home().join("outside.txt");
    let r = repo.fails([std::ffi::OsStr::new("add"), abs.as_os_str()]);
    assert_eq!(
        r.stderr,
        format!(
            "error: path '{}' is outside the repository at '{}'\n",
            abs.display(),
            repo.root().display()
        )
    );
    let r = repo.fails(["add", ".dsv/config.toml"]);
    assert_eq!(
        r.stderr,
        "error: '.dsv/config.toml' is inside the repository's .dsv directory\n"
    );
    // The index is unchanged (b.txt was not staged either).
    assert_eq!(repo.ok(["status", "--json"]).stdout, before);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "A  a.txt\n?? b.txt\n"
    );
    // A path that leaves and re-enters the worktree is fine.
    repo.ok(["add", "../repo/b.txt"]);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "A  a.txt\nA  b.txt\n"
    );
}

#[test]
fn a_fifo_is_skipped_with_a_warning() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a");
    repo.write("sub/b.txt", "b");
    let fifo = std::ffi::CString::new(repo.path("sub/pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");

    let r = repo.ok(["add", "-A"]);
    assert_eq!(
        r.stderr,
        "warning: skipping 'sub/pipe': a FIFO (only files, directories and symlinks are tracked)\n\
         2 added, 0 modified, 0 removed; 2 new objects, 86 B stored\n"
    );
    let r = repo.ok(["status", "--short"]);
    assert_eq!(r.stdout, "A  a.txt\nA  sub/b.txt\n");
    assert!(r.stderr.contains("skipping 'sub/pipe': a FIFO"), "{r}");
    let r = repo.ok(["add", "sub"]);
    assert!(r.stderr.contains("skipping 'sub/pipe': a FIFO"), "{r}");
    repo.ok(["commit", "-m", "c1"]);
    assert_eq!(
        repo.ok(["ls-tree", "-r", "--name-only", "HEAD"]).stdout,
        "a.txt\nsub/b.txt\n"
    );
    repo.ok(["fsck"]);
}

#[test]
fn symlinks_are_stored_as_links_and_never_followed() {
    let repo = TestRepo::init();
    let outside = repo.home().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    repo.write("data/real.txt", "real");
    repo.symlink("data/real.txt", "link_file");
    repo.symlink("../outside", "link_dir");
    repo.symlink("/nonexistent/target", "dangling");

    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "links"]);
    snap!(
        repo,
        "symlinks_ls_tree",
        repo.ok(["ls-tree", "-r", "HEAD"]).stdout
    );
    let link_dir = entry_id(&repo, "HEAD", "link_dir");
    assert_eq!(repo.ok(["cat-object", &link_dir]).stdout, "../outside");
    assert_eq!(repo.ok(["cat-object", "-s", &link_dir]).stdout, "10\n");
    let link_file = entry_id(&repo, "HEAD", "link_file");
    assert_eq!(repo.ok(["cat-object", &link_file]).stdout, "data/real.txt");

    // Naming a path through the link is refused; the outside file is not added.
    let r = repo.fails(["add", "link_dir/secret.txt"]);
    assert_eq!(
        r.stderr,
        "error: pathspec 'link_dir/secret.txt' is beyond a symbolic link ('link_dir' is a symlink; dsv does not follow it)\n"
    );
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");

    // Editing the target changes the target file only, not the link.
    repo.write("data/real.txt", "real, edited");
    assert_eq!(repo.ok(["status", "--short"]).stdout, " M data/real.txt\n");
    repo.ok(["restore", "data/real.txt"]);

    // Checked out as symlinks again.
    repo.remove("link_file");
    repo.remove("link_dir");
    repo.remove("dangling");
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " D dangling\n D link_dir\n D link_file\n"
    );
    repo.ok(["reset", "--hard"]);
    for (name, target) in [
        ("link_file", "data/real.txt"),
        ("link_dir", "../outside"),
        ("dangling", "/nonexistent/target"),
    ] {
        let m = std::fs::symlink_metadata(repo.path(name)).unwrap();
        assert!(m.file_type().is_symlink(), "{name} is not a symlink");
        assert_eq!(
            std::fs::read_link(repo.path(name)).unwrap(),
            Path::new(target)
        );
    }
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret.txt"]);
}

#[test]
fn tracked_files_below_a_directory_replaced_by_a_symlink_are_never_touched_through_it() {
    let repo = TestRepo::init();
    let outside = repo.home().join("outside");
    std::fs::create_dir(&outside).unwrap();
    // Same name and content as the tracked file, so it looks "clean" through the link.
    std::fs::write(outside.join("f.txt"), "f").unwrap();
    repo.write("keep.txt", "k");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["switch", "-c", "withdir"]);
    repo.write("d/f.txt", "f");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "d"]);

    let intact = || {
        assert_eq!(std::fs::read_to_string(outside.join("f.txt")).unwrap(), "f");
    };
    let replace_with_link = || {
        std::fs::remove_dir_all(repo.path("d")).unwrap();
        repo.symlink("../outside", "d");
    };

    replace_with_link();
    // The tracked file is gone from the worktree (a link is not a directory); the link is new.
    assert_eq!(repo.ok(["status", "--short"]).stdout, " D d/f.txt\n?? d\n");
    // Switching to a branch without d/f.txt must not delete outside/f.txt through the link.
    repo.ok(["switch", "main"]);
    intact();
    assert!(
        std::fs::symlink_metadata(repo.path("d"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Writing d/f.txt through the link is refused.
    let r = repo.fails(["switch", "withdir"]);
    assert!(
        r.stderr.contains("'d' is a symlink, not a directory"),
        "{r}"
    );
    intact();

    repo.remove("d");
    repo.ok(["switch", "-f", "withdir"]);
    assert_eq!(repo.read_string("d/f.txt"), "f");
    replace_with_link();
    repo.ok(["switch", "-f", "main"]);
    intact();

    repo.remove("d");
    repo.ok(["switch", "-f", "withdir"]);
    replace_with_link();
    let r = repo.ok(["rm", "d/f.txt"]);
    assert_eq!(r.stdout, "rm 'd/f.txt'\n");
    intact();
    assert_eq!(repo.ok(["status", "--short"]).stdout, "D  d/f.txt\n?? d\n");
}

#[test]
fn non_utf8_file_names_round_trip() {
    let repo = TestRepo::init();
    let name = std::ffi::OsStr::from_bytes(b"frame_\xff.bin");
    let content = b"\x00\x01binary frame\xfe";
    std::fs::write(repo.path(name), content).unwrap();
    repo.write("other.txt", "o");

    repo.ok(["add".as_ref(), name]);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "A  \"frame_\\377.bin\"\n?? other.txt\n"
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "bytes"]);
    assert_eq!(
        repo.ok(["ls-tree", "--name-only", "HEAD"]).stdout,
        "\"frame_\\377.bin\"\nother.txt\n"
    );

    // Deleted from the worktree, then restored by reset --hard.
    std::fs::remove_file(repo.path(name)).unwrap();
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " D \"frame_\\377.bin\"\n"
    );
    repo.ok(["reset", "--hard"]);
    assert_eq!(std::fs::read(repo.path(name)).unwrap(), content);

    // dsv rm refuses a modified file, rm -f removes it; reset --hard brings it back.
    std::fs::write(repo.path(name), b"changed").unwrap();
    let r = repo.fails(["rm".as_ref(), name]);
    assert_eq!(
        r.stderr,
        "error: 'frame_\\xff.bin' has local modifications; use --cached to keep the file, or -f to delete it anyway\n"
    );
    let r = repo.ok(["rm".as_ref(), "-f".as_ref(), name]);
    assert_eq!(r.stdout, "rm \"frame_\\377.bin\"\n");
    assert!(!repo.path(name).exists());
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "D  \"frame_\\377.bin\"\n"
    );
    repo.ok(["reset", "--hard"]);
    assert_eq!(std::fs::read(repo.path(name)).unwrap(), content);
    let names: Vec<Vec<u8>> = std::fs::read_dir(repo.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .filter(|n| n != b".dsv")
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, [b"frame_\xff.bin".to_vec(), b"other.txt".to_vec()]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
}

#[test]
fn dsvignore_excludes_files_from_add_and_status() {
    let repo = TestRepo::init();
    repo.write(".dsvignore", "*.tmp\ncache/\n!keep.tmp\n/rootonly.txt\n");
    repo.write("a.txt", "a");
    repo.write("x.tmp", "x");
    repo.write("keep.tmp", "k");
    repo.write("cache/c.bin", "c");
    repo.write("sub/cache/d.bin", "d");
    repo.write("sub/y.tmp", "y");
    repo.write("sub/rootonly.txt", "r");
    repo.write("rootonly.txt", "r");

    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "?? .dsvignore\n?? a.txt\n?? keep.tmp\n?? sub/rootonly.txt\n"
    );
    repo.ok(["add", "-A"]);
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        "A  .dsvignore\nA  a.txt\nA  keep.tmp\nA  sub/rootonly.txt\n"
    );
    // Naming a directory does not take the ignored files in it.
    repo.ok(["add", "sub"]);
    repo.ok(["commit", "-m", "c1"]);
    assert_eq!(
        repo.ok(["ls-tree", "-r", "--name-only", "HEAD"]).stdout,
        ".dsvignore\na.txt\nkeep.tmp\nsub/rootonly.txt\n"
    );
    // Naming an ignored file takes it (like `git add -f`); once tracked, status shows its changes.
    repo.ok(["add", "x.tmp"]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "A  x.tmp\n");
    repo.ok(["commit", "-m", "c2"]);
    repo.write("x.tmp", "x, edited");
    assert_eq!(repo.ok(["status", "--short"]).stdout, " M x.tmp\n");
    repo.ok(["add", "-A"]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "M  x.tmp\n");
    repo.ok(["commit", "-m", "c3"]);
    assert_eq!(
        repo.ok(["status"]).stdout,
        "On branch main\nnothing to commit, working tree clean\n"
    );
}

#[test]
fn status_is_clean_when_a_directorys_files_and_its_subdirectorys_files_interleave() {
    // In byte order `a/b.txt` < `a/b/x.txt` < `a/c.txt`: the files of `a` and of `a/b`
    // interleave, so the walk's per-directory lists must be merged, not laid end to end.
    let repo = TestRepo::init();
    for p in [
        "a/a.txt",
        "a/b.txt",
        "a/b/x.txt",
        "a/b/y/z.txt",
        "a/c.txt",
        "a.txt",
    ] {
        repo.write(p, p);
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
    assert_eq!(
        repo.ok(["ls-files"]).stdout,
        "a.txt\na/a.txt\na/b.txt\na/b/x.txt\na/b/y/z.txt\na/c.txt\n"
    );
    repo.write("a/b/new.txt", "n");
    repo.write("a/b.txt", "changed");
    assert_eq!(
        repo.ok(["status", "--short"]).stdout,
        " M a/b.txt\n?? a/b/new.txt\n"
    );
}

#[test]
fn pathspecs_that_match_nothing_are_errors() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "c1"]);
    for args in [
        vec!["add", "nothere"],
        vec!["add", "a.txt", "nothere"],
        vec!["rm", "nothere"],
        vec!["restore", "nothere"],
        vec!["restore", "--staged", "nothere"],
        vec!["checkout", "HEAD", "--", "nothere"],
    ] {
        let r = repo.fails(&args);
        assert_eq!(
            r.stderr, "error: pathspec 'nothere' did not match any files\n",
            "{args:?}"
        );
    }
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
}

// ---------------------------------------------------------------- large files

#[test]
fn a_large_file_is_chunked_and_each_version_restored_exactly() {
    const SIZE: usize = 3 << 20;
    let repo = TestRepo::init();
    let v1 = pseudo_random_bytes(SIZE, 0x5eed);
    repo.write("big.bin", &v1);
    let r = repo.ok(["add", "big.bin"]);
    let [added, _, _, objects] = add_counts(&r);
    assert_eq!(added, 1);
    // Content-defined chunks (16-256 KiB) plus list objects: many objects for one file.
    assert!(objects >= 12, "3 MiB should be chunked: {r}");
    repo.ok(["commit", "-m", "v1"]);

    let mut v2 = v1.clone();
    v2[SIZE / 2] ^= 0xff;
    repo.write("big.bin", &v2);
    let r = repo.ok(["add", "big.bin"]);
    let [_, modified, _, objects] = add_counts(&r);
    assert_eq!(modified, 1);
    // One changed chunk, its segment list and the top list.
    assert!(
        objects <= 4,
        "a one-byte edit should store few objects: {r}"
    );
    assert!(
        r.stderr.contains(" KiB stored"),
        "a one-byte edit should store KiB, not MiB: {r}"
    );
    repo.ok(["commit", "-m", "v2"]);

    let id1 = entry_id(&repo, "HEAD~1", "big.bin");
    let id2 = entry_id(&repo, "HEAD", "big.bin");
    assert_eq!(id1, blake3::hash(&v1).to_hex().as_str());
    assert_eq!(id2, blake3::hash(&v2).to_hex().as_str());
    assert_eq!(
        repo.ok(["cat-object", "-s", &id1]).stdout,
        format!("{SIZE}\n")
    );
    assert!(
        repo.ok(["cat-object", &id1]).stdout_bytes == v1,
        "v1 bytes differ"
    );
    assert!(
        repo.ok(["cat-object", &id2]).stdout_bytes == v2,
        "v2 bytes differ"
    );

    repo.ok(["checkout", "HEAD~1", "--", "big.bin"]);
    assert!(repo.read("big.bin") == v1, "checkout of v1 differs");
    repo.ok(["checkout", "HEAD", "--", "big.bin"]);
    assert!(repo.read("big.bin") == v2, "checkout of v2 differs");
    repo.ok(["switch", "--detach", "HEAD~1"]);
    assert!(repo.read("big.bin") == v1, "switch to v1 differs");
    repo.ok(["switch", "main"]);
    assert!(repo.read("big.bin") == v2, "switch to v2 differs");
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
    repo.ok(["fsck"]);
}

// ---------------------------------------------------------------- code version (git)

fn git(repo: &TestRepo, args: &[&str]) -> String {
    let out = repo
        .program_in("git", ".")
        .args([
            "-c",
            "user.name=Git Author",
            "-c",
            "user.email=git@example.com",
            "-c",
            "init.defaultBranch=master",
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
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn commit_records_the_git_code_version() {
    let repo = TestRepo::new();
    repo.write("train.py", "print('train')\n");
    write_dataset(&repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "train.py", "data.yaml", "images", "labels"]);
    git(&repo, &["commit", "-q", "-m", "code and data"]);
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(head.len(), 40);

    repo.ok(["init"]);
    repo.ok(["add", "-A"]);
    // .git is never tracked.
    assert!(!repo.ok(["status", "--short"]).stdout.contains(".git"));
    repo.ok(["commit", "-m", "data"]);
    let log = repo.ok(["log", "-n", "1"]).stdout;
    assert!(log.contains(&format!("\nCode:   git {head}\n")), "{log}");

    // A modified tracked file in the code repository.
    repo.write("train.py", "print('train harder')\n");
    repo.ok(["commit", "--allow-empty", "-m", "dirty code"]);
    let log = repo.ok(["log", "-n", "1"]).stdout;
    assert!(
        log.contains(&format!("\nCode:   git {head} (worktree dirty)\n")),
        "{log}"
    );
    let v: serde_json::Value = serde_json::from_str(&repo.ok(["log", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["code"]["git_commit"], head.as_str());
    assert_eq!(v[0]["code"]["dirty"], true);
    assert_eq!(v[1]["code"]["dirty"], false);
    // The code version is shown by `show` too.
    assert!(repo.ok(["show"]).stdout.contains(" (worktree dirty)\n"));
}

/// Every file (recursively) under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    common::walk(dir, |_| false, |rel, _, _| out.push(rel.to_string()));
    out
}

#[test]
fn symlink_swapped_in_during_switch_is_not_written_through() {
    let t = TestRepo::init();
    t.write("keep", "x\n");
    t.ok(["add", "keep"]);
    t.ok(["commit", "-m", "base"]);
    t.ok(["branch", "empty"]);
    for i in 0..3000 {
        t.write(format!("sub/f{i:04}.txt"), format!("{i}\n"));
    }
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "many"]);
    let outside = t.home().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let sub = t.path("sub");
    let aside = t.path("sub-aside");
    for round in 0..6 {
        t.ok(["switch", "--force", "empty"]);
        let _ = std::fs::remove_dir_all(&sub);
        let _ = std::fs::remove_file(&sub);
        let _ = std::fs::remove_dir_all(&aside);
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("dsv"));
        common::hermetic(&mut cmd, t.home());
        cmd.current_dir(t.root())
            .args(["switch", "--force", "main"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        // Swap `sub` between the directory dsv writes into and a symlink to `outside`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            if std::fs::symlink_metadata(&sub).is_ok_and(|m| m.is_dir())
                && std::fs::rename(&sub, &aside).is_ok()
            {
                let _ = std::os::unix::fs::symlink(&outside, &sub);
                std::thread::yield_now();
                let _ = std::fs::remove_file(&sub);
                let _ = std::fs::rename(&aside, &sub);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let leaked = files_under(&outside);
        assert!(
            leaked.is_empty(),
            "round {round}: {} files written outside the worktree, e.g. {:?}",
            leaked.len(),
            &leaked[..leaked.len().min(5)]
        );
    }
    // After the attack, a plain switch still writes everything in place.
    let _ = std::fs::remove_file(&sub);
    let _ = std::fs::rename(&aside, &sub);
    t.ok(["switch", "--force", "main"]);
    assert_eq!(t.read_string("sub/f2999.txt"), "2999\n");
}

#[test]
fn deep_tree_is_refused_at_add() {
    let t = TestRepo::init();
    // 1,023 directories and a file: 1,024 components, the most a path may have.
    let ok_dir = vec!["a"; 1023].join("/");
    t.write(format!("{ok_dir}/f"), "fine\n");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "at the limit"]);
    t.ok(["stats"]);
    t.ok(["fsck"]);
    // One more level is refused, naming the limit, and nothing is staged.
    t.write(format!("{ok_dir}/b/g"), "too deep\n");
    let r = t.fails(["add", "-A"]);
    assert!(
        r.stderr.contains("tree too deep") && r.stderr.contains("1024 path components"),
        "{r}"
    );
    // `status` says the same (it cannot list what it will not track).
    let r = t.fails(["status"]);
    assert!(r.stderr.contains("tree too deep"), "{r}");
    std::fs::remove_dir_all(t.path(format!("{ok_dir}/b"))).unwrap();
    let r = t.ok(["status"]);
    assert!(r.stdout.contains("nothing to commit"), "{r}");
}

/// Stores a commit whose tree is a chain of `depth` directories and points `main` at it.
fn craft_deep_commit(root: &Path, depth: usize) {
    use dsv::object::{EntryMode, Tree, TreeEntry};
    let repo =
        dsv::Repository::discover(root, dsv::lock::Access::Write, &dsv::OpenOptions::default())
            .unwrap();
    let blob = repo.store.put(b"deep\n").unwrap();
    let entry = |name: &[u8], mode, id| TreeEntry {
        name: name.to_vec(),
        mode,
        id,
        size: 5,
        files: 1,
    };
    let mut id = Tree {
        entries: vec![entry(b"f", EntryMode::File, blob)],
    }
    .store(&repo.store)
    .unwrap();
    for _ in 0..depth {
        id = Tree {
            entries: vec![entry(b"d", EntryMode::Dir, id)],
        }
        .store(&repo.store)
        .unwrap();
    }
    let commit = serde_json::json!({
        "format": 1, "tree": id.to_string(), "parents": [],
        "author": {"name": "x", "email": "x@y"}, "time": 1, "tz_offset_min": 0,
        "message": "deep\n", "summary": {"files": 1, "bytes": 5}
    });
    let c = repo
        .store
        .put_commit(commit.to_string().as_bytes())
        .unwrap();
    repo.store.flush().unwrap();
    repo.refs
        .update("refs/heads/main", c, &repo.reflog_identity(), 1, "crafted")
        .unwrap();
}

#[test]
fn deep_tree_in_store_fails_cleanly_in_stats_fsck_query() {
    let t = TestRepo::init();
    craft_deep_commit(t.root(), 20_000);
    for args in [
        &["stats"][..],
        &["query", "true"],
        &["status"],
        &["ls-tree", "-r", "HEAD"],
        &["diff", "HEAD"],
        &["reset", "--hard"],
    ] {
        let r = t.fails(args);
        assert!(r.stderr.contains("tree too deep"), "dsv {args:?}:\n{r}");
    }
    // fsck reports the deep directory as a problem (exit 1), it does not abort.
    let r = t.fails(["fsck"]);
    assert!(
        r.stdout.contains("too deep") || r.stderr.contains("too deep"),
        "{r}"
    );
    // Nothing was written by the failed checkout; the log still reads.
    assert!(!t.exists("d"));
    t.ok(["log"]);
}

// Shell completions and manual pages (issue 21.1).

/// A repository with branches `main` and `feature`, tag `v1`, remote `origin` and
/// the remote-tracking branch `origin/main`, and a directory `images/`.
fn repo_with_names() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("images/a.jpg", b"a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "one"]);
    repo.ok(["branch", "feature"]);
    repo.ok(["tag", "v1"]);
    let url = format!("file://{}", repo.home().join("remote.dsv").display());
    repo.ok(["remote", "add", "origin", &url]);
    repo.ok(["push", "-q", "origin", "main"]);
    repo.ok(["fetch", "-q", "origin"]);
    repo
}

/// Completes the last of `words` (`dsv switch ma`) as bash does on TAB: the script
/// of `dsv completions bash` sourced in a real bash started in `dir` (relative to
/// the worktree), its completion function called; returns COMPREPLY.
fn bash_complete(repo: &TestRepo, dir: impl AsRef<Path>, words: &[&str]) -> Vec<String> {
    let script = repo.ok(["completions", "bash"]).stdout;
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let program = format!(
        "{script}\nCOMP_WORDS=({}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; \
         COMP_POINT=${{#COMP_LINE}}; COMP_TYPE=9\n\
         _clap_complete_dsv dsv \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1
    );
    let out = repo
        .program_in("bash", dir)
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("running bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "bash: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn completion_scripts_for_every_shell_call_dsv_back() {
    let repo = TestRepo::new();
    let bin = assert_cmd::cargo::cargo_bin("dsv");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = repo.ok(["completions", shell]);
        assert!(
            r.stdout.contains("DSV_COMPLETE") && r.stdout.contains(&*bin.to_string_lossy()),
            "dsv completions {shell}:\n{r}"
        );
    }
    let r = repo.expect_code(2, ["completions", "tcsh"]);
    assert!(r.stderr.contains("invalid value 'tcsh'"), "{r}");
}

#[test]
fn static_completion_scripts_name_every_command() {
    let repo = TestRepo::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = repo.ok(["completions", "--static", shell]);
        for command in [
            "cherry-pick",
            "install-git-integration",
            "switch",
            "completions",
            "man",
        ] {
            assert!(
                r.stdout.contains(command),
                "dsv completions --static {shell} lacks {command}"
            );
        }
        assert!(
            !r.stdout.contains("DSV_COMPLETE"),
            "{shell}: calls dsv back"
        );
    }
}

#[test]
fn bash_parses_the_dynamic_and_static_completion_scripts() {
    let repo = TestRepo::new();
    for args in [
        &["completions", "bash"][..],
        &["completions", "--static", "bash"],
    ] {
        let script = repo.home().join("script.bash");
        std::fs::write(&script, repo.ok(args).stdout).unwrap();
        let out = repo
            .program_in("bash", ".")
            .arg("-n")
            .arg(&script)
            .output()
            .expect("running bash");
        assert!(
            out.status.success(),
            "bash -n on dsv {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bash_completes_branch_tag_remote_and_revision_names_of_the_repository() {
    let repo = repo_with_names();
    let has = |got: &[String], want: &[&str], not: &[&str]| {
        for w in want {
            assert!(got.iter().any(|g| g == w), "{w} missing from {got:?}");
        }
        for n in not {
            assert!(!got.iter().any(|g| g == n), "{n} offered in {got:?}");
        }
    };
    // Branches only where only a branch makes sense.
    let got = bash_complete(&repo, ".", &["dsv", "switch", ""]);
    has(&got, &["main", "feature"], &["v1", "origin/main", "origin"]);
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "switch", "fe"]),
        ["feature"]
    );
    has(
        &bash_complete(&repo, ".", &["dsv", "tag", "-d", ""]),
        &["v1"],
        &["main"],
    );
    // Remotes, then the local branch or tag to push.
    has(
        &bash_complete(&repo, ".", &["dsv", "push", ""]),
        &["origin"],
        &["main"],
    );
    let got = bash_complete(&repo, ".", &["dsv", "push", "origin", ""]);
    has(&got, &["main", "feature", "v1"], &["origin", "origin/main"]);
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "fetch", "o"]),
        ["origin"]
    );
    // Revisions: every kind of name, and either end of a range.
    let got = bash_complete(&repo, ".", &["dsv", "log", ""]);
    has(
        &got,
        &["HEAD", "main", "feature", "v1", "origin/main"],
        &["origin"],
    );
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "diff", "v1..fe"]),
        ["v1..feature"]
    );
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "diff", "v1...origin/"]),
        ["v1...origin/main"]
    );
    // Commands, options and paths.
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "cherry"]),
        ["cherry-pick"]
    );
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "switch", "--det"]),
        ["--detach"]
    );
    assert_eq!(
        bash_complete(&repo, ".", &["dsv", "add", "ima"]),
        ["images/"]
    );
    // Names come from the repository `-C` names, from a directory outside it.
    let got = bash_complete(&repo, "..", &["dsv", "-C", "repo", "switch", ""]);
    has(&got, &["main", "feature"], &[]);
    // A `-C` value being typed completes from the current directory.
    assert_eq!(bash_complete(&repo, "..", &["dsv", "-C", "rep"]), ["repo/"]);
    let got = bash_complete(&repo, "..", &["dsv", "-C", "repo", "add", "ima"]);
    assert_eq!(got, ["images/"]);
    // Outside any repository: no names and no error (bash checks stderr is empty).
    let got = bash_complete(&repo, "..", &["dsv", "switch", ""]);
    has(&got, &["--detach"], &["main"]);
}

#[test]
fn completion_engine_writes_fish_and_zsh_candidates_with_their_kind() {
    let repo = repo_with_names();
    let complete = |shell: &str, index: &str, words: &[&str]| {
        let out = repo
            .cmd()
            .env("DSV_COMPLETE", shell)
            .env("_CLAP_COMPLETE_INDEX", index)
            .arg("--")
            .args(words)
            .output()
            .expect("running dsv");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fish = complete("fish", "", &["dsv", "tag", "x", ""]);
    assert!(
        fish.lines()
            .any(|l| l == "origin/main\tremote-tracking branch"),
        "{fish}"
    );
    // zsh passes no empty last word for the one being completed; value:help pairs.
    let zsh = complete("zsh", "2", &["dsv", "merge"]);
    assert!(zsh.lines().any(|l| l == "feature:branch"), "{zsh}");
    let r = repo
        .cmd()
        .env("DSV_COMPLETE", "tcsh")
        .args(["--", "dsv", ""])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("unknown shell"));
}

#[test]
fn man_prints_the_page_of_a_command_and_refuses_an_unknown_one() {
    let repo = TestRepo::new();
    let r = repo.ok(["man"]);
    assert!(r.stdout.contains(".TH dsv 1"), "{r}");
    assert!(r.stdout.contains("cherry\\-pick"), "{r}");
    let r = repo.ok(["man", "remote", "add"]);
    assert!(r.stdout.contains(".TH dsv-remote-add 1"), "{r}");
    let r = repo.expect_code(2, ["man", "remote", "nosuch"]);
    assert_eq!(
        r.stderr,
        "error: no command 'dsv remote nosuch'; see 'dsv --help'\n"
    );
}

/// docs/man/ holds the pages `dsv man --out` writes: regenerated here, so a change
/// to the command line without new pages fails.
#[test]
fn docs_man_pages_match_the_command_line() {
    let repo = TestRepo::new();
    let out = repo.home().join("man");
    let r = repo.ok([OsStr::new("man"), OsStr::new("--out"), out.as_os_str()]);
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let list = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let fix = "docs/man/ is out of date with the command line: run \
               `cargo run -- man --out docs/man` and commit (deleting pages of removed commands)";
    let (generated, docs) = (list(&out), list(&committed));
    assert!(
        r.stderr
            .contains(&format!("wrote {} manual pages", generated.len()))
    );
    assert_eq!(generated, docs, "{fix}");
    for name in generated {
        let a = std::fs::read(out.join(&name)).unwrap();
        let b = std::fs::read(committed.join(&name)).unwrap();
        assert!(a == b, "{name} differs; {fix}");
    }
}

/// git's everyday verbs and options that scripts and fingers reach for: `log -N`,
/// `rev-parse`, `reflog`, `switch -`, `diff --name-only`, `remote -v`, `commit -F`.
#[test]
fn git_habits_log_count_rev_parse_reflog_switch_back_name_only_remote_v_commit_file() {
    let t = TestRepo::init();
    std::fs::write(t.root().join("a.txt"), "a\n").unwrap();
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "one"]);
    std::fs::write(t.root().join("b.txt"), "b\n").unwrap();
    t.ok(["add", "-A"]);
    let out = t
        .cmd()
        .args(["commit", "-F", "-"])
        .write_stdin("two\n\nfrom standard input\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(t.root().join("msg"), "three\n").unwrap();
    t.ok(["switch", "-c", "feat"]);
    std::fs::write(t.root().join("c.txt"), "c\n").unwrap();
    t.ok(["add", "c.txt"]);
    t.ok(["commit", "-F", "msg"]);
    t.ok(["switch", "main"]);
    t.ok(["switch", "-"]);
    t.ok(["remote", "add", "origin", "s3://bucket/data"]);
    let mut out = String::new();
    for args in [
        vec!["log", "-2", "--oneline"],
        vec!["rev-parse", "--short", "HEAD", "HEAD~1", "main"],
        vec!["rev-parse", "--abbrev-ref", "HEAD"],
        vec!["reflog", "-3"],
        vec!["reflog", "main"],
        vec!["diff", "--name-only", "HEAD~2", "HEAD"],
        vec!["remote", "-v"],
    ] {
        out.push_str(&format!("$ dsv {}\n{}", args.join(" "), t.ok(&args).stdout));
    }
    let r = t.ok(["log", "--json", "-n", "1", "HEAD~1"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    out.push_str(&format!(
        "$ dsv log --json -n 1 HEAD~1 (message)\n{}\n",
        v[0]["message"].as_str().unwrap()
    ));
    snap!(t, "git_habits", out);
    // What cannot mean anything is an error, not a guess.
    let r = t.run(["rev-parse", "--verify", "HEAD", "main"]);
    assert_eq!(r.code, 2, "{r}");
    let r = t.fails(["rev-parse", "nosuch"]);
    assert!(r.stderr.contains("nosuch"), "{r}");
    std::fs::write(t.root().join("empty"), "\n\n").unwrap();
    let r = t.fails(["commit", "-F", "empty"]);
    assert!(r.stderr.contains("is empty; nothing committed"), "{r}");
    let r = t.run(["commit", "-m", "x", "-F", "msg"]);
    assert_eq!(r.code, 2, "{r}");
    let fresh = TestRepo::init();
    let r = fresh.fails(["switch", "-"]);
    assert!(r.stderr.contains("no previous branch"), "{r}");
}

/// `status --porcelain` is the short format for scripts: no colour even when asked,
/// paths from the repository root wherever dsv runs, `-z` for raw NUL-ended paths.
#[test]
fn status_porcelain_v1_is_stable_for_scripts() {
    let t = TestRepo::init();
    std::fs::create_dir_all(t.root().join("sub")).unwrap();
    std::fs::write(t.root().join("a.txt"), "a\n").unwrap();
    std::fs::write(t.root().join("sub/m.txt"), "m\n").unwrap();
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "one"]);
    std::fs::write(t.root().join("a.txt"), "a2\n").unwrap();
    std::fs::write(t.root().join("sub/n.txt"), "n\n").unwrap();
    t.ok(["add", "sub/n.txt"]);
    std::fs::write(t.root().join("sub/new\tline"), "x\n").unwrap();
    let r = t.ok_in("sub", ["--color", "always", "status", "--porcelain"]);
    assert_eq!(
        r.stdout, " M a.txt\nA  sub/n.txt\n?? \"sub/new\\tline\"\n",
        "{r}"
    );
    let r = t.ok(["status", "--porcelain=v1", "-z"]);
    assert_eq!(
        r.stdout_bytes,
        b" M a.txt\0A  sub/n.txt\0?? sub/new\tline\0".to_vec(),
        "{r}"
    );
    let r = t.run(["status", "--porcelain=v3"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("the versions are v1 and v2"), "{r}");
    assert_eq!(t.run(["status", "-z"]).code, 2);
}

/// Every file of `spec` as path -> id, from `ls-tree -r`.
fn listing(repo: &TestRepo, spec: &str) -> std::collections::BTreeMap<String, String> {
    let r = repo.ok(["ls-tree", "-r", spec]);
    r.lines()
        .into_iter()
        .map(|line| {
            let (meta, p) = line.split_once('\t').expect("ls-tree line has a tab");
            let id = meta.split_whitespace().nth(1).expect("id column");
            (p.to_string(), id.to_string())
        })
        .collect()
}

/// The tree diff (which skips equal subtrees, compares sibling directories in
/// parallel and reads a sharded directory's differing shards only) against the
/// plain comparison of the two versions' full listings, over random edits that
/// also turn files into directories and back.
#[test]
fn diff_of_random_versions_names_exactly_the_files_whose_listings_differ() {
    let repo = TestRepo::init();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    };
    let mut files: Vec<String> = Vec::new();
    // One directory past the shard threshold (4,096 entries), nested ones, siblings.
    for i in 0..4500 {
        files.push(format!("big/f{i:05}.txt"));
    }
    for d in 0..12 {
        for i in 0..20 {
            files.push(format!("dirs/d{d:02}/sub{}/f{i:02}.txt", i % 3));
        }
    }
    files.push("top.txt".into());
    for f in &files {
        repo.write(f, format!("{f} v0\n"));
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "a"]);
    for round in 1..=3 {
        let before = listing(&repo, "HEAD");
        let paths: Vec<String> = before.keys().cloned().collect();
        for _ in 0..40 {
            let p = &paths[next(paths.len() as u64) as usize];
            let full = repo.path(p);
            if !full.is_file() {
                continue;
            }
            match next(4) {
                0 => repo.write(p, format!("{p} v{round}\n")),
                1 => std::fs::remove_file(&full).unwrap(),
                2 => {
                    std::fs::remove_file(&full).unwrap();
                    repo.write(format!("{p}/inner.txt"), format!("{p} dir v{round}\n"));
                }
                _ => repo.write(format!("{p}.new{round}"), format!("{p} added v{round}\n")),
            }
        }
        // A whole subdirectory replaced by a file.
        let d = format!("dirs/d{:02}", next(12));
        if repo.path(&d).is_dir() {
            std::fs::remove_dir_all(repo.path(&d)).unwrap();
            repo.write(&d, format!("{d} file v{round}\n"));
        }
        repo.ok(["add", "-A"]);
        repo.ok(["commit", "-q", "-m", &format!("round {round}")]);
        let after = listing(&repo, "HEAD");
        let mut want: Vec<String> = Vec::new();
        for p in before.keys().chain(after.keys()) {
            let line = match (before.get(p), after.get(p)) {
                (Some(_), None) => format!("D\t{p}"),
                (None, Some(_)) => format!("A\t{p}"),
                (Some(x), Some(y)) if x != y => format!("M\t{p}"),
                _ => continue,
            };
            want.push(line);
        }
        want.sort();
        want.dedup();
        let r = repo.ok(["diff", "--name-status", "HEAD~1", "HEAD"]);
        let mut got: Vec<String> = r.lines().into_iter().map(str::to_string).collect();
        got.sort();
        assert!(
            want.len() > 20,
            "round {round}: too few changes to test: {want:?}"
        );
        assert_eq!(got, want, "round {round}");
    }
}
