//! Refs read from disk are untrusted: a crafted or damaged HEAD, ref file or ref
//! name must give a one-line error naming the file, and never lead a write
//! outside `.dsv`. Also: names that need the full 255 bytes of a file name.

use crate::common;

use common::TestRepo;
use common::hostile::tree_snapshot;

/// A repository with one commit on `main`.
fn one_commit() -> TestRepo {
    let t = TestRepo::init();
    t.write("a.txt", "a\n");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "one"]);
    t
}

#[track_caller]
fn one_line_error(r: &common::Run, names: &str) {
    assert_eq!(r.code, 1, "{r}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{r}");
    assert!(lines[0].starts_with("error: "), "{r}");
    assert!(lines[0].contains(names), "names {names}:\n{r}");
    assert!(lines[0].len() < 400, "{r}");
}

#[test]
fn crafted_head_cannot_write_outside() {
    let t = one_commit();
    let before = tree_snapshot(t.home(), &["repo"]);
    for target in [
        "refs/heads/../../../../../outside/pwned",
        "refs/heads/a/../../../../x",
        "refs/heads/.hidden",
        "refs/heads/-x",
        "refs/tags/../heads/main",
        "refs/heads/ctl\u{1b}[2J",
    ] {
        std::fs::write(t.path(".dsv/HEAD"), format!("ref: {target}\n")).unwrap();
        t.write("a.txt", format!("{target}\n"));
        for args in [
            &["commit", "-a", "-m", "x"][..],
            &["status"],
            &["log"],
            &["branch", "b"],
            &["switch", "-c", "c"],
        ] {
            let r = t.run(args);
            one_line_error(&r, ".dsv/HEAD");
            assert!(!r.stderr.contains('\x1b'), "escape printed raw:\n{r}");
        }
    }
    assert_eq!(
        before,
        tree_snapshot(t.home(), &["repo"]),
        "written outside"
    );
    for leftover in ["outside", "x", "pwned"] {
        assert!(!t.exists(leftover), "{leftover} written in the worktree");
    }
    std::fs::write(t.path(".dsv/HEAD"), "ref: refs/heads/main\n").unwrap();
    t.ok(["fsck"]);
}

#[test]
fn damaged_ref_contents_are_one_line_errors_naming_the_file() {
    let t = one_commit();
    let main = t.path(".dsv/refs/heads/main");
    let good = std::fs::read(&main).unwrap();
    let huge = {
        let mut v = b"\x1b[2J".to_vec();
        v.resize(50 << 20, b'a');
        v
    };
    for (what, bytes) in [
        ("garbage", b"garbage\n".to_vec()),
        ("empty", Vec::new()),
        ("not UTF-8", b"\xff\xfe\x00".to_vec()),
        ("huge", huge),
    ] {
        std::fs::write(&main, &bytes).unwrap();
        for args in [&["log"][..], &["status"], &["branch"], &["fsck"], &["gc"]] {
            let r = t.run(args);
            one_line_error(&r, ".dsv/refs/heads/main");
            assert!(
                !r.stderr.contains('\x1b'),
                "{what}: escape printed raw:\n{r}"
            );
        }
    }
    // HEAD itself, damaged and huge.
    std::fs::write(&main, &good).unwrap();
    for bytes in [b"zzz\n".to_vec(), vec![b'r'; 10 << 20]] {
        std::fs::write(t.path(".dsv/HEAD"), &bytes).unwrap();
        let r = t.run(["status"]);
        one_line_error(&r, ".dsv/HEAD");
    }
    std::fs::write(t.path(".dsv/HEAD"), "ref: refs/heads/main\n").unwrap();
    t.ok(["fsck"]);
}

#[test]
fn ref_files_with_invalid_names_are_reported_not_followed() {
    let t = one_commit();
    let id = std::fs::read_to_string(t.path(".dsv/refs/heads/main")).unwrap();
    std::fs::write(t.path(".dsv/refs/heads/-x"), &id).unwrap();
    for args in [&["branch"][..], &["fsck"], &["gc"], &["log", "--all"]] {
        let r = t.run(args);
        one_line_error(&r, ".dsv/refs/heads/-x");
    }
    std::fs::remove_file(t.path(".dsv/refs/heads/-x")).unwrap();
    // A revision naming a path outside refs reads nothing there.
    std::fs::write(t.home().join("secret"), &id).unwrap();
    let r = t.run(["log", "refs/../../secret"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("unknown revision"), "{r}");
    t.ok(["fsck"]);
}

#[test]
fn local_branches_a_and_a_slash_b_conflict_cleanly() {
    let t = one_commit();
    t.ok(["branch", "a"]);
    let r = t.run(["branch", "a/b"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(
            "cannot create ref refs/heads/a/b: refs/heads/a exists (a ref cannot also be a directory of refs)"
        ),
        "{r}"
    );
    t.ok(["branch", "c/d"]);
    let r = t.run(["branch", "c"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("refs/heads/c/d exists"), "{r}");
    // Once the branch in the way is gone (with its reflog), the name is free.
    t.ok(["branch", "-D", "a"]);
    t.ok(["branch", "a/b"]);
    t.ok(["branch", "-D", "a/b"]);
    t.ok(["branch", "a"]);
    assert!(!t.exists(".dsv/logs/refs/heads/a/b"));
    t.ok(["fsck"]);
}

#[test]
fn a_reflog_directory_left_by_older_versions_does_not_block_a_branch() {
    let t = one_commit();
    // Older versions removed `x/y`'s reflog but left its directory behind.
    std::fs::create_dir_all(t.path(".dsv/logs/refs/heads/x/y")).unwrap();
    t.ok(["branch", "x"]);
    t.ok(["fsck"]);
}

#[test]
fn file_names_of_255_bytes_check_out() {
    let t = TestRepo::init();
    let names: Vec<String> = [237, 240, 250, 255]
        .iter()
        .map(|n| "n".repeat(*n))
        .collect();
    for (i, n) in names.iter().enumerate() {
        t.write(format!("d/{n}"), format!("{i}\n"));
    }
    let branch = "b".repeat(255);
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "long names"]);
    t.ok(["branch", &branch]);
    std::fs::remove_dir_all(t.path("d")).unwrap();
    t.ok(["restore", "d"]);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(t.read_string(format!("d/{n}")), format!("{i}\n"));
    }
    t.ok(["switch", &branch]);
    let status = t.ok(["status", "--short"]);
    assert_eq!(status.stdout, "", "{status}");
    // Through a remote: push, and a clone checks them out.
    let remote = t.home().join("remote");
    t.ok(["remote", "add", "origin", &remote.display().to_string()]);
    t.ok(["push", "origin", "main"]);
    t.ok(["push", "origin", &branch]);
    t.ok_in(t.home(), ["clone", &remote.display().to_string(), "copy"]);
    for (i, n) in names.iter().enumerate() {
        let p = t.home().join("copy/d").join(n);
        assert_eq!(std::fs::read_to_string(p).unwrap(), format!("{i}\n"));
    }
    t.ok_in(t.home().join("copy"), ["fsck"]);
    let br = t.ok_in(t.home().join("copy"), ["branch", "-r"]).stdout;
    assert!(br.contains(&format!("origin/{branch}")), "{br}");
}

#[test]
fn temp_files_of_any_name_are_not_reported_as_untracked() {
    let t = one_commit();
    // What a crash leaves: the current form and the form of older versions.
    t.write(".dsv-tmp-123-4", "partial");
    t.write("sub/.dsv-tmp-99-0", "partial");
    t.write("sub/a.txt.dsv-tmp-99-1", "partial");
    let r = t.ok(["status", "--short"]);
    assert_eq!(r.stdout, "", "{r}");
    t.ok(["add", "-A"]);
    let r = t.ok(["status", "--short"]);
    assert_eq!(r.stdout, "", "{r}");
}
