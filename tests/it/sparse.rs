//! Sparse checkout (`dsv sparse set|list|disable`): a working tree holding some
//! paths of a dataset, which pull, switch, status, `add -A` and commit respect.

use crate::common;

use std::path::Path;

use common::{Run, TestRepo, pseudo_random_bytes, write_file};

fn run(t: &TestRepo, dir: &str, args: &[&str]) -> Run {
    let out = t
        .cmd_in(t.home().join(dir))
        .args(args)
        .output()
        .expect("running dsv");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_bytes: out.stdout,
    }
}

#[track_caller]
fn ok(t: &TestRepo, dir: &str, args: &[&str]) -> Run {
    let r = run(t, dir, args);
    assert_eq!(r.code, 0, "dsv {} in {dir} failed:\n{r}", args.join(" "));
    r
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{r}"))
}

fn frame(seed: u64) -> Vec<u8> {
    pseudo_random_bytes(40_000, seed)
}

#[track_caller]
fn assert_clean(t: &TestRepo, dir: &str) {
    let r = ok(t, dir, &["status"]);
    assert!(
        r.stdout.contains("nothing to commit, working tree clean"),
        "not clean:\n{r}"
    );
}

/// A dataset of night and day frames and their labels.
fn dataset(root: &Path) {
    for i in 0..6 {
        write_file(root, &format!("frames/night/{i}.bin"), frame(100 + i));
        write_file(root, &format!("frames/day/{i}.bin"), frame(200 + i));
        write_file(
            root,
            &format!("labels/{i}.txt"),
            format!("{i} 0.5 0.5 0.1 0.1\n"),
        );
    }
}

#[test]
fn training_box_follows_a_branch_holding_only_the_frames_it_needs() {
    let t = TestRepo::init();
    let url = format!("file://{}", t.home().join("remote.dsv").display());
    dataset(t.root());
    ok(&t, "repo", &["add", "-A"]);
    ok(&t, "repo", &["commit", "-m", "first"]);
    ok(&t, "repo", &["remote", "add", "origin", &url]);
    ok(&t, "repo", &["push"]);

    // The box: commits and trees only, then the paths it trains on.
    ok(&t, ".", &["clone", "--no-checkout", &url, "box"]);
    let b = t.home().join("box");
    let r = json(&ok(
        &t,
        "box",
        &["sparse", "set", "frames/night", "labels", "--json"],
    ));
    assert_eq!(r["paths"], serde_json::json!(["frames/night", "labels"]));
    assert_eq!(r["written"], 12, "{r}");
    assert_eq!(
        std::fs::read(b.join("frames/night/3.bin")).unwrap(),
        frame(103)
    );
    assert!(!b.join("frames/day").exists());
    assert_eq!(
        ok(&t, "box", &["sparse", "list"]).stdout,
        "frames/night\nlabels\n"
    );
    // The day frames are not there by design: not deleted.
    assert_clean(&t, "box");
    let st = ok(&t, "box", &["status"]);
    assert!(
        st.stdout
            .contains("You are in a sparse checkout: 2 paths held"),
        "{st}"
    );

    // Upstream changes frames inside and outside the box's paths.
    write_file(t.root(), "frames/night/0.bin", frame(300));
    write_file(t.root(), "frames/night/new.bin", frame(301));
    write_file(t.root(), "frames/day/0.bin", frame(302));
    write_file(t.root(), "frames/day/new.bin", frame(303));
    std::fs::remove_file(t.root().join("labels/5.txt")).unwrap();
    ok(&t, "repo", &["add", "-A"]);
    ok(&t, "repo", &["commit", "-m", "second"]);
    ok(&t, "repo", &["push"]);

    let p = json(&ok(&t, "box", &["pull", "--json"]));
    assert_eq!(p["up_to_date"], false, "{p}");
    // Two night frames written, one label removed; no day frame downloaded.
    assert_eq!(p["written"], 2, "{p}");
    assert_eq!(p["removed"], 1, "{p}");
    let down = p["fetch"]["transfer"]["bytes_down"].as_u64().unwrap();
    assert!(
        down < 2 * 40_000 + 30_000,
        "pulled {down} bytes for two frames"
    );
    assert_eq!(
        std::fs::read(b.join("frames/night/0.bin")).unwrap(),
        frame(300)
    );
    assert_eq!(
        std::fs::read(b.join("frames/night/new.bin")).unwrap(),
        frame(301)
    );
    assert!(!b.join("frames/day").exists());
    assert!(!b.join("labels/5.txt").exists());
    assert_clean(&t, "box");

    // A commit from the box changes its labels and keeps the day frames as they are.
    write_file(&b, "labels/0.txt", "1 0.4 0.4 0.2 0.2\n");
    ok(&t, "box", &["add", "-A"]);
    ok(&t, "box", &["commit", "-m", "relabel from the box"]);
    let d = ok(&t, "box", &["diff", "HEAD~1", "HEAD", "--stat"]);
    assert!(d.stdout.contains("labels/0.txt"), "{d}");
    assert!(!d.stdout.contains("frames/"), "{d}");
    ok(&t, "box", &["push"]);
    ok(&t, "repo", &["pull"]);
    assert_eq!(
        std::fs::read(t.path("frames/day/0.bin")).unwrap(),
        frame(302)
    );
    assert_eq!(
        std::fs::read(t.path("frames/day/new.bin")).unwrap(),
        frame(303)
    );
    assert_eq!(t.read_string("labels/0.txt"), "1 0.4 0.4 0.2 0.2\n");
    assert_clean(&t, "repo");

    // Switching versions writes only inside too.
    ok(&t, "box", &["switch", "--detach", "HEAD~2"]);
    assert_eq!(
        std::fs::read(b.join("frames/night/0.bin")).unwrap(),
        frame(100)
    );
    assert!(!b.join("frames/day").exists());
    assert_clean(&t, "box");
    ok(&t, "box", &["switch", "main"]);

    // Disabled, the box holds everything again (the day frames downloaded now).
    ok(&t, "box", &["sparse", "disable"]);
    assert_eq!(
        std::fs::read(b.join("frames/day/0.bin")).unwrap(),
        frame(302)
    );
    assert_eq!(
        std::fs::read(b.join("frames/day/5.bin")).unwrap(),
        frame(205)
    );
    assert_eq!(ok(&t, "box", &["sparse", "list"]).stdout, "");
    assert_clean(&t, "box");
    ok(&t, "box", &["fsck"]);
}

#[test]
fn sparse_set_in_a_full_worktree_removes_unchanged_files_outside_and_keeps_changed_ones() {
    let t = TestRepo::init();
    dataset(t.root());
    ok(&t, "repo", &["add", "-A"]);
    ok(&t, "repo", &["commit", "-m", "first"]);
    write_file(t.root(), "frames/day/1.bin", b"edited");
    let r = ok(&t, "repo", &["sparse", "set", "labels"]);
    assert!(
        r.stderr
            .contains("'frames/day/1.bin' is outside the sparse paths but has local changes; kept"),
        "{r}"
    );
    assert!(!t.exists("frames/night/0.bin"));
    assert!(!t.exists("frames/day/0.bin"));
    assert!(t.exists("frames/day/1.bin"));
    // The kept file shows as modified; the others are not deleted.
    let st = ok(&t, "repo", &["status", "--short"]);
    assert_eq!(st.stdout.trim(), "M frames/day/1.bin", "{st}");
    write_file(t.root(), "frames/day/1.bin", frame(201));
    assert_clean(&t, "repo");
    // add -A stages nothing outside: the commit's tree is unchanged.
    write_file(t.root(), "labels/new.txt", "0 0.1 0.1 0.1 0.1\n");
    ok(&t, "repo", &["add", "-A"]);
    ok(&t, "repo", &["commit", "-m", "one label"]);
    let ls = ok(&t, "repo", &["ls-tree", "-r", "HEAD"]);
    assert!(ls.stdout.contains("frames/night/0.bin"), "{ls}");
    // Bad paths are refused before anything changes.
    let r = run(&t, "repo", &["sparse", "set", "../outside"]);
    assert_ne!(r.code, 0, "{r}");
    assert_eq!(ok(&t, "repo", &["sparse", "list"]).stdout, "labels\n");
    ok(&t, "repo", &["sparse", "disable"]);
    assert_eq!(
        std::fs::read(t.path("frames/night/0.bin")).unwrap(),
        frame(100)
    );
    assert_clean(&t, "repo");
}

/// Whether a path exists in a repository's working tree.
fn present(t: &TestRepo, dir: &str, path: &str) -> bool {
    t.home().join(dir).join(path).symlink_metadata().is_ok()
}

/// The files under `frames/day` in the working tree.
fn day_files(t: &TestRepo) -> usize {
    std::fs::read_dir(t.home().join("repo/frames/day")).map_or(0, |d| d.count())
}

/// A dataset committed on `main`, and `other` branched from it.
fn two_sided(t: &TestRepo) {
    dataset(t.root());
    ok(t, "repo", &["add", "-A"]);
    ok(t, "repo", &["commit", "-m", "first"]);
    ok(t, "repo", &["branch", "other"]);
}

#[test]
fn merge_in_a_sparse_worktree_records_changes_outside_in_the_index_without_writing_them() {
    let t = TestRepo::init();
    two_sided(&t);
    ok(&t, "repo", &["switch", "other"]);
    write_file(t.root(), "frames/day/0.bin", frame(900));
    write_file(t.root(), "frames/day/new.bin", frame(901));
    std::fs::remove_file(t.root().join("frames/day/5.bin")).unwrap();
    write_file(t.root(), "frames/night/0.bin", frame(902));
    ok(&t, "repo", &["add", "-A"]);
    ok(&t, "repo", &["commit", "-m", "other"]);
    ok(&t, "repo", &["switch", "main"]);
    write_file(t.root(), "labels/0.txt", "1 0.5 0.5 0.2 0.2\n");
    ok(&t, "repo", &["commit", "-a", "-m", "ours"]);
    ok(&t, "repo", &["sparse", "set", "frames/night", "labels"]);
    assert_eq!(day_files(&t), 0);

    let r = json(&ok(&t, "repo", &["merge", "other", "--json"]));
    assert_eq!(r["outcome"], "committed", "{r}");
    // Inside: written. Outside: nothing written, the commit has their version.
    assert_eq!(
        std::fs::read(t.root().join("frames/night/0.bin")).unwrap(),
        frame(902)
    );
    assert_eq!(day_files(&t), 0, "the merge wrote outside the sparse paths");
    assert_clean(&t, "repo");
    let tree = ok(&t, "repo", &["ls-tree", "-r", "HEAD", "frames/day"]).stdout;
    assert!(tree.contains("frames/day/new.bin"), "{tree}");
    assert!(!tree.contains("frames/day/5.bin"), "{tree}");
    // The whole tree, once written, is their version outside and ours inside.
    ok(&t, "repo", &["sparse", "disable"]);
    assert_eq!(
        std::fs::read(t.root().join("frames/day/0.bin")).unwrap(),
        frame(900)
    );
    assert!(present(&t, "repo", "frames/day/new.bin"));
    assert!(!present(&t, "repo", "frames/day/5.bin"));
    assert_clean(&t, "repo");
}

#[test]
fn cherry_pick_and_revert_in_a_sparse_worktree_change_outside_paths_in_the_index_only() {
    let t = TestRepo::init();
    two_sided(&t);
    ok(&t, "repo", &["switch", "other"]);
    write_file(t.root(), "frames/day/1.bin", frame(910));
    write_file(t.root(), "labels/1.txt", "2 0.5 0.5 0.1 0.1\n");
    ok(&t, "repo", &["commit", "-a", "-m", "relabel day 1"]);
    let picked = ok(&t, "repo", &["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_string();
    ok(&t, "repo", &["switch", "main"]);
    ok(&t, "repo", &["sparse", "set", "frames/night", "labels"]);

    ok(&t, "repo", &["cherry-pick", &picked]);
    assert_eq!(
        std::fs::read_to_string(t.root().join("labels/1.txt")).unwrap(),
        "2 0.5 0.5 0.1 0.1\n"
    );
    assert_eq!(
        day_files(&t),
        0,
        "cherry-pick wrote outside the sparse paths"
    );
    assert_clean(&t, "repo");
    let picked_tree = ok(&t, "repo", &["ls-tree", "HEAD", "frames/day"]).stdout;
    let their_tree = ok(&t, "repo", &["ls-tree", &picked, "frames/day"]).stdout;
    assert_eq!(picked_tree, their_tree);

    ok(&t, "repo", &["revert", "HEAD"]);
    assert_eq!(day_files(&t), 0, "revert wrote outside the sparse paths");
    assert_clean(&t, "repo");
    let reverted = ok(&t, "repo", &["ls-tree", "HEAD", "frames/day"]).stdout;
    let first = ok(&t, "repo", &["ls-tree", "HEAD~2", "frames/day"]).stdout;
    assert_eq!(reverted, first);
}

#[test]
fn merge_conflict_outside_a_sparse_worktree_is_written_there_to_be_resolved() {
    let t = TestRepo::init();
    two_sided(&t);
    ok(&t, "repo", &["switch", "other"]);
    write_file(t.root(), "frames/day/2.bin", frame(920));
    ok(&t, "repo", &["commit", "-a", "-m", "theirs"]);
    ok(&t, "repo", &["switch", "main"]);
    write_file(t.root(), "frames/day/2.bin", frame(921));
    ok(&t, "repo", &["commit", "-a", "-m", "ours"]);
    ok(&t, "repo", &["sparse", "set", "frames/night", "labels"]);
    assert_eq!(day_files(&t), 0);

    let r = run(&t, "repo", &["merge", "other"]);
    assert_ne!(r.code, 0, "{r}");
    // As git does: the conflicted path is materialised (ours), the others are not.
    assert_eq!(
        std::fs::read(t.root().join("frames/day/2.bin")).unwrap(),
        frame(921)
    );
    assert_eq!(day_files(&t), 1);
    ok(&t, "repo", &["resolve", "frames/day/2.bin", "--theirs"]);
    ok(&t, "repo", &["merge", "--continue"]);
    assert_clean(&t, "repo");
    // `sparse set` again takes the resolved file out of the working tree.
    ok(&t, "repo", &["sparse", "set", "frames/night", "labels"]);
    assert_eq!(day_files(&t), 0);
    ok(&t, "repo", &["sparse", "disable"]);
    assert_eq!(
        std::fs::read(t.root().join("frames/day/2.bin")).unwrap(),
        frame(920)
    );
}

#[test]
fn stash_pop_in_a_sparse_worktree_stages_changes_outside_instead_of_writing_them() {
    let t = TestRepo::init();
    two_sided(&t);
    write_file(t.root(), "frames/day/3.bin", frame(930));
    write_file(t.root(), "labels/3.txt", "3 0.4 0.4 0.1 0.1\n");
    ok(&t, "repo", &["stash"]);
    ok(&t, "repo", &["sparse", "set", "frames/night", "labels"]);
    assert_eq!(day_files(&t), 0);

    ok(&t, "repo", &["stash", "pop"]);
    assert_eq!(
        std::fs::read_to_string(t.root().join("labels/3.txt")).unwrap(),
        "3 0.4 0.4 0.1 0.1\n"
    );
    assert_eq!(day_files(&t), 0, "stash pop wrote outside the sparse paths");
    let st = json(&ok(&t, "repo", &["status", "--json"]));
    let text = st.to_string();
    assert!(text.contains("frames/day/3.bin"), "{st}");
    ok(&t, "repo", &["commit", "-a", "-m", "stashed work"]);
    assert_clean(&t, "repo");
    ok(&t, "repo", &["sparse", "disable"]);
    assert_eq!(
        std::fs::read(t.root().join("frames/day/3.bin")).unwrap(),
        frame(930)
    );
    // A stash made in the sparse worktree comes back the same way.
    write_file(t.root(), "labels/4.txt", "4 0.4 0.4 0.1 0.1\n");
    ok(&t, "repo", &["sparse", "set", "frames/night", "labels"]);
    ok(&t, "repo", &["stash"]);
    assert_eq!(day_files(&t), 0, "stash wrote outside the sparse paths");
    ok(&t, "repo", &["stash", "pop"]);
    assert_eq!(day_files(&t), 0);
    assert_eq!(
        std::fs::read_to_string(t.root().join("labels/4.txt")).unwrap(),
        "4 0.4 0.4 0.1 0.1\n"
    );
}
