//! The hostile remote suite: remotes forged byte by byte (tests/it/common/hostile.rs)
//! with every attack a bucket's writer could mount, run against `clone`, `fetch`,
//! `pull` and `watch --once`. Each command must end cleanly (exit 0, or 1 with a
//! one-line error naming the remote object; never a panic, abort or signal),
//! write nothing outside its target, and leave the local repository passing
//! `fsck`. Branch-level attacks (invalid names, `a` and `a/b`, damaged refs) are
//! skipped with a warning while every other branch is still fetched.
//!
//! Adding a case: write a function `fn(&Path, ObjectId)` that damages the remote
//! (it gets the remote directory and the commit `main` already holds, which the
//! local clone has) and list it in [`attacks`] with what each command must do.
//! [`Forge::node`] writes a tree of any shape (`Node::chain` for deep trees,
//! `Node::Symlink` for links), so trees built by other suites fit in as they are.

use crate::common;

use std::path::Path;

use common::hostile::{
    self, Forge, Node, set_ref, set_ref_raw, tamper_index, tamper_index_bytes, tamper_pack,
    tree_snapshot, write_head, write_huge, write_marker,
};
use common::{Run, TestRepo};
use dsv::ObjectId;

/// What one command must do against an attacked remote.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Exit 0, no warning.
    Fine,
    /// Exit 0 with a warning containing the text (a branch set aside).
    Warned(&'static str),
    /// Exit 1 with a warning containing the text, every other branch fetched
    /// (what `fetch` does when it set a branch aside, as git does).
    Partial(&'static str),
    /// Exit 1, one `error:` line containing the text, nothing changed.
    Refused(&'static str),
}

use Outcome::{Fine, Partial, Refused, Warned};

/// What an attack does to the remote directory, given the commit `main` holds.
type Apply = Box<dyn Fn(&Path, ObjectId) + Send + Sync>;

/// One attack and what `clone`, `fetch`, `pull` and `watch --once` must do.
struct Attack {
    name: String,
    apply: Apply,
    clone: Outcome,
    fetch: Outcome,
    pull: Outcome,
    watch: Outcome,
}

fn attack(
    name: impl Into<String>,
    [clone, fetch, pull, watch]: [Outcome; 4],
    apply: impl Fn(&Path, ObjectId) + Send + Sync + 'static,
) -> Attack {
    Attack {
        name: name.into(),
        apply: Box::new(apply),
        clone,
        fetch,
        pull,
        watch,
    }
}

/// Every command refuses with `text`.
fn refused(text: &'static str) -> [Outcome; 4] {
    [Refused(text); 4]
}

/// A side branch is set aside: `text` is in the warning.
fn skipped(text: &'static str) -> [Outcome; 4] {
    [Warned(text), Partial(text), Warned(text), Warned(text)]
}

/// Moves `main` to a forged commit of `root` on top of `base`, in a new pack.
fn push_tree(remote: &Path, base: ObjectId, root: &Node) -> ObjectId {
    let mut f = Forge::new();
    let c = f.commit_node(root, &[base]);
    let pack = f.write_pack(remote);
    set_ref(remote, b"main", c);
    pack
}

/// A new commit with one small file, in its own pack; returns that pack.
fn push_file(remote: &Path, base: ObjectId) -> ObjectId {
    push_tree(
        remote,
        base,
        &Node::Dir(vec![
            (b"good.txt".to_vec(), Node::File(b"good\n".to_vec())),
            (b"new.txt".to_vec(), Node::File(b"new data\n".to_vec())),
        ]),
    )
}

/// Recomputes an index's trailing checksum after its bytes were changed.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 32;
    let sum = *blake3::hash(&bytes[..n]).as_bytes();
    bytes[n..].copy_from_slice(&sum);
}

fn attacks() -> Vec<Attack> {
    let mut out = Vec::new();
    // Tree entry names that would write outside the worktree or into `.dsv`.
    for name in [&b".."[..], b".", b"a/b", b"/etc", b"nul\0x", b".dsv", b""] {
        let owned = name.to_vec();
        out.push(attack(
            format!("tree name {:?}", String::from_utf8_lossy(name)),
            refused("bad entry name"),
            move |r, base| {
                push_tree(
                    r,
                    base,
                    &Node::Dir(vec![(owned.clone(), Node::File(b"pwned\n".to_vec()))]),
                );
            },
        ));
    }
    // The same one level down.
    out.push(attack(
        "nested tree name '..'",
        refused("bad entry name"),
        |r, base| {
            push_tree(
                r,
                base,
                &Node::dir1(
                    b"sub",
                    Node::Dir(vec![(b"..".to_vec(), Node::File(b"pwned\n".to_vec()))]),
                ),
            );
        },
    ));
    // Symlinks pointing out of the worktree.
    for target in [
        &b"../../outside"[..],
        b"/etc/passwd",
        b"a/../../x",
        b"",
        b"sub/../../..",
    ] {
        let owned = target.to_vec();
        out.push(attack(
            format!("symlink to {:?}", String::from_utf8_lossy(target)),
            refused("points outside the worktree"),
            move |r, base| {
                push_tree(r, base, &Node::dir1(b"link", Node::Symlink(owned.clone())));
            },
        ));
    }
    // A chain of links: each link alone stays inside, `t` through `s` does not.
    out.push(attack(
        "symlink chain out of the worktree",
        refused("points outside the worktree"),
        |r, base| {
            push_tree(
                r,
                base,
                &Node::Dir(vec![
                    (
                        b"a".to_vec(),
                        Node::dir1(
                            b"b",
                            Node::dir1(b"c", Node::dir1(b"s", Node::Symlink(b"../../..".to_vec()))),
                        ),
                    ),
                    (b"t".to_vec(), Node::Symlink(b"a/b/c/s/..".to_vec())),
                ]),
            );
        },
    ));
    // Past the depth limit (1,024 components): refused before anything is written.
    // (20,000 levels are cloned in tests/it/remote.rs; a Node that deep would
    // overflow this thread's stack when dropped.)
    out.push(attack(
        "a tree 1,100 levels deep",
        refused("tree too deep"),
        |r, base| {
            push_tree(
                r,
                base,
                &Node::chain(1_100, b"d", b"leaf.txt", Node::File(b"leaf\n".to_vec())),
            );
        },
    ));
    // Shapes that are not attacks must still work (the generator writes them too).
    out.push(attack("a tree 200 levels deep", [Fine; 4], |r, base| {
        push_tree(
            r,
            base,
            &Node::Dir(vec![
                (b"good.txt".to_vec(), Node::File(b"good\n".to_vec())),
                (
                    b"deep".to_vec(),
                    Node::chain(200, b"d", b"leaf.txt", Node::File(b"leaf\n".to_vec())),
                ),
            ]),
        );
    }));
    out.push(attack(
        "symlinks inside the worktree",
        [Fine; 4],
        |r, base| {
            push_tree(
                r,
                base,
                &Node::Dir(vec![
                    (b"good.txt".to_vec(), Node::File(b"good\n".to_vec())),
                    (b"link".to_vec(), Node::Symlink(b"good.txt".to_vec())),
                    (
                        b"sub".to_vec(),
                        Node::dir1(b"up", Node::Symlink(b"../good.txt".to_vec())),
                    ),
                ]),
            );
        },
    ));
    // An object whose content does not hash to its id.
    out.push(attack(
        "content under a false id",
        refused("does not match its id"),
        |r, base| {
            let mut f = Forge::new();
            let fake = f.raw_as(ObjectId::hash(b"expected"), b"something else");
            let tree = f.tree(&[hostile::Entry {
                mode: hostile::FILE,
                name: b"file".to_vec(),
                id: fake,
                size: 8,
                files: 1,
            }]);
            let c = f.commit(tree, &[base], "false id\n");
            f.write_pack(r);
            set_ref(r, b"main", c);
        },
    ));
    // Tree entries claiming sizes their objects do not have: 2^64-1 (refused when
    // the tree is decoded), or a plausible wrong one (refused once the data is in).
    for (name, size, text) in [
        (
            "tree entry size 2^64-1",
            u64::MAX,
            "more than any file can hold",
        ),
        (
            "tree entry with a wrong size",
            7,
            "claims 7 bytes but its object",
        ),
    ] {
        out.push(attack(name, refused(text), move |r, base| {
            let mut f = Forge::new();
            let data = f.raw(b"data\n");
            let tree = f.tree(&[hostile::Entry {
                mode: hostile::FILE,
                name: b"file".to_vec(),
                id: data,
                size,
                files: 1,
            }]);
            let c = f.commit(tree, &[base], "wrong size\n");
            f.write_pack(r);
            set_ref(r, b"main", c);
        }));
    }
    // Damaged packs.
    out.push(attack("truncated pack", refused("truncated"), |r, base| {
        let pack = push_file(r, base);
        tamper_pack(r, &pack, |b| b.truncate(b.len() / 2));
    }));
    out.push(attack(
        "pack with a bad magic",
        refused("does not match its name"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_pack(r, &pack, |b| b[0] = b'X');
        },
    ));
    out.push(attack(
        "pack longer than its index says",
        refused("its index says"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_pack(r, &pack, |b| b.extend_from_slice(&[0; 4096]));
        },
    ));
    out.push(attack(
        "missing pack",
        refused("reading packs/"),
        |r, base| {
            let pack = push_file(r, base);
            std::fs::remove_file(hostile::pack_path(r, &pack)).unwrap();
        },
    ));
    // Damaged pack indexes.
    out.push(attack(
        "index entries pointing at each other's records",
        refused("holds another object"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index(r, &pack, |idx| {
                let (a, b) = (idx.entries[0], idx.entries[1]);
                idx.entries[0].offset = b.offset;
                idx.entries[0].len = b.len;
                idx.entries[1].offset = a.offset;
                idx.entries[1].len = a.len;
            });
        },
    ));
    out.push(attack(
        "truncated index",
        refused("pack index"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index_bytes(r, &pack, |b| b.truncate(b.len() - 7));
        },
    ));
    out.push(attack(
        "index with a bad magic",
        refused("bad magic"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index_bytes(r, &pack, |b| {
                b[0] = b'X';
                reseal(b);
            });
        },
    ));
    out.push(attack(
        "index naming another pack",
        refused("describes pack"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index(r, &pack, |idx| idx.pack = ObjectId([7; 32]));
        },
    ));
    out.push(attack(
        "index entry outside its pack",
        refused("outside the pack"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index(r, &pack, |idx| idx.entries[0].len += 100_000);
        },
    ));
    out.push(attack(
        "index claiming a huge entry count",
        refused("entries"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index_bytes(r, &pack, |b| {
                b[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
                reseal(b);
            });
        },
    ));
    out.push(attack(
        "index missing an object the commit needs",
        refused("no pack index lists it"),
        |r, base| {
            let pack = push_file(r, base);
            tamper_index(r, &pack, |idx| {
                // Drop a file object: the commit and trees are still listed.
                let blob = ObjectId::hash(b"new data\n");
                idx.entries.retain(|e| e.id != blob);
            });
        },
    ));
    // The marker.
    out.push(attack(
        "garbage marker",
        refused("marker object 'dsv-remote' is malformed"),
        |r, _| std::fs::write(r.join("dsv-remote"), b"\x1b[2J{{{").unwrap(),
    ));
    out.push(attack(
        "marker of an unknown format",
        refused("remote format 2 is not supported"),
        |r, _| std::fs::write(r.join("dsv-remote"), br#"{"format":2}"#).unwrap(),
    ));
    out.push(attack(
        "huge marker",
        refused("more than the 4096"),
        |r, _| write_huge(&r.join("dsv-remote"), 5 << 20, b'{'),
    ));
    // The default-branch object: only clone reads it.
    out.push(attack(
        "garbage HEAD object",
        [Refused("HEAD object is malformed"), Fine, Fine, Fine],
        |r, _| std::fs::write(r.join("HEAD"), b"\x00\xffjunk").unwrap(),
    ));
    out.push(attack(
        "HEAD object naming an invalid branch",
        [Refused("HEAD object names a branch"), Fine, Fine, Fine],
        |r, _| std::fs::write(r.join("HEAD"), br#"{"branch":"../../x"}"#).unwrap(),
    ));
    out.push(attack(
        "huge HEAD object",
        [Refused("more than the 4096"), Fine, Fine, Fine],
        |r, _| write_huge(&r.join("HEAD"), 5 << 20, b'a'),
    ));
    // Refs of the default branch.
    out.push(attack(
        "garbage ref of the default branch",
        [
            Refused("malformed ref"),
            Partial("malformed ref"),
            Refused("malformed ref"),
            Warned("malformed ref"),
        ],
        |r, _| set_ref_raw(r, b"main", b"\x1b[2Jnot json"),
    ));
    out.push(attack(
        "huge ref of the default branch",
        [
            Refused("bytes, more than the 4096"),
            Partial("bytes, more than the 4096"),
            Refused("bytes, more than the 4096"),
            Warned("bytes, more than the 4096"),
        ],
        |r, _| {
            let dir = hostile::ref_dir(r, b"main");
            write_huge(&dir.join("00000000000000000009"), 5 << 20, b'a');
        },
    ));
    out.push(attack(
        "ref naming a commit that is not there",
        refused("no pack index lists it"),
        |r, _| set_ref(r, b"main", ObjectId([5; 32])),
    ));
    // Side branches a client cannot hold: set aside, the rest still fetched.
    for name in [
        &b"-x"[..],
        b"x.lock",
        b"a..b",
        b".hidden",
        b"ctl\x01x",
        b"esc\x1b[2J",
        b"sp ace",
        b"00000000000000000001x/00000000000000000042",
        b"HEAD",
        b"a.lock/b",
        b"not-utf8-\xff\xfe",
    ] {
        let owned = name.to_vec();
        out.push(attack(
            format!("branch name {:?}", String::from_utf8_lossy(name)),
            skipped("not "),
            move |r, base| set_ref(r, &owned, base),
        ));
    }
    out.push(attack(
        "branches a and a/b",
        skipped("conflicts with branch 'a'"),
        |r, base| {
            set_ref(r, b"a", base);
            set_ref(r, b"a/b", base);
        },
    ));
    out.push(attack(
        "garbage ref of a side branch",
        skipped("malformed ref"),
        |r, _| set_ref_raw(r, b"side", b"{\"commit\":\"zz\"}"),
    ));
    out.push(attack(
        "huge ref of a side branch",
        skipped("bytes, more than the 4096"),
        |r, _| {
            write_huge(
                &hostile::ref_dir(r, b"side").join("00000000000000000001"),
                5 << 20,
                b'a',
            )
        },
    ));
    out
}

/// The base remote: `main` at a commit of `good.txt`; returns that commit.
fn base_remote(remote: &Path) -> ObjectId {
    write_marker(remote);
    write_head(remote, "main");
    let mut f = Forge::new();
    let c = f.commit_node(
        &Node::Dir(vec![(b"good.txt".to_vec(), Node::File(b"good\n".to_vec()))]),
        &[],
    );
    f.write_pack(remote);
    set_ref(remote, b"main", c);
    c
}

/// Checks one command's run against its expected outcome.
#[track_caller]
fn check(what: &str, r: &Run, want: Outcome) {
    let ctx = format!("{what}: expected {want:?}:\n{r}");
    assert!(
        !r.stderr.contains("panicked") && r.code != 101 && r.code >= 0,
        "{ctx}"
    );
    // Whatever a remote holds, no line quotes more than a short part of it.
    assert!(
        r.stderr.lines().all(|l| l.len() < 600),
        "a long line: {ctx}"
    );
    match want {
        Fine => assert_eq!(r.code, 0, "{ctx}"),
        Warned(text) => {
            assert_eq!(r.code, 0, "{ctx}");
            assert!(
                r.stderr
                    .lines()
                    .any(|l| l.starts_with("warning: ") && l.contains(text)),
                "{ctx}"
            );
        }
        Partial(text) => {
            assert_eq!(r.code, 1, "{ctx}");
            assert!(
                r.stderr
                    .lines()
                    .any(|l| l.starts_with("warning: ") && l.contains(text)),
                "{ctx}"
            );
            assert!(r.stderr.contains("error: remote 'origin'"), "{ctx}");
        }
        Refused(text) => {
            assert_eq!(r.code, 1, "{ctx}");
            let errors: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| l.starts_with("error: "))
                .collect();
            assert_eq!(errors.len(), 1, "one error line: {ctx}");
            assert!(errors[0].contains(text), "{ctx}");
            assert!(
                errors[0].contains("remote 'origin'"),
                "names the remote: {ctx}"
            );
        }
    }
}

/// Runs one attack: a fresh base remote, a clone of it, the attack, then every command.
fn run_attack(a: &Attack) {
    let t = TestRepo::new();
    let home = t.home();
    let remote = home.join("remote");
    let base = base_remote(&remote);
    std::fs::create_dir(home.join("sentinel")).unwrap();
    std::fs::write(home.join("sentinel/file"), "sentinel\n").unwrap();
    let url = remote.display().to_string();
    t.ok_in(home, ["clone", &url, "local"]);
    let local = home.join("local");
    (a.apply)(&remote, base);
    let outside = |_: &str| tree_snapshot(home, &["remote", "victim", "local"]);
    let worktree = || tree_snapshot(&local, &[".dsv"]);
    let before = outside("");
    let name = &a.name;

    let r = t.run_in(home, ["clone", &url, "victim"]);
    check(&format!("{name}: clone"), &r, a.clone);
    if matches!(a.clone, Refused(_)) {
        assert!(
            !home.join("victim").exists(),
            "{name}: a failed clone left its directory"
        );
    } else {
        t.ok_in(home.join("victim"), ["fsck"]);
    }
    assert_eq!(
        before,
        outside(""),
        "{name}: clone wrote outside its target"
    );

    let tracking = t.ok_in(&local, ["branch", "-r"]).stdout;
    let r = t.run_in(&local, ["fetch"]);
    check(&format!("{name}: fetch"), &r, a.fetch);
    if matches!(a.fetch, Refused(_)) {
        let after = t.ok_in(&local, ["branch", "-r"]).stdout;
        assert_eq!(
            tracking, after,
            "{name}: a failed fetch moved a remote-tracking ref"
        );
    }
    t.ok_in(&local, ["fsck"]);
    assert_eq!(
        before,
        outside(""),
        "{name}: fetch wrote outside the repository"
    );

    let files = worktree();
    let r = t.run_in(&local, ["pull"]);
    check(&format!("{name}: pull"), &r, a.pull);
    if matches!(a.pull, Refused(_)) {
        assert_eq!(
            files,
            worktree(),
            "{name}: a failed pull changed the worktree"
        );
    }
    t.ok_in(&local, ["fsck"]);
    assert_eq!(
        before,
        outside(""),
        "{name}: pull wrote outside the repository"
    );

    let r = t.run_in(
        &local,
        [
            "watch",
            "origin",
            "--once",
            "--from-start",
            "--exec",
            "cat >/dev/null",
        ],
    );
    check(&format!("{name}: watch --once"), &r, a.watch);
    t.ok_in(&local, ["fsck"]);
    assert_eq!(
        before,
        outside(""),
        "{name}: watch wrote outside the repository"
    );
}

#[test]
fn hostile_remote_suite() {
    let attacks = attacks();
    assert!(attacks.len() >= 50, "{} attacks", attacks.len());
    // A few at a time: each has its own directories.
    let workers = 4;
    std::thread::scope(|s| {
        for w in 0..workers {
            let attacks = &attacks;
            s.spawn(move || {
                for a in attacks.iter().skip(w).step_by(workers) {
                    run_attack(a);
                }
            });
        }
    });
}

/// The base remote and the harness itself: an unattacked remote passes every command.
#[test]
fn hostile_suite_baseline_passes() {
    run_attack(&attack("no attack", [Fine; 4], |_, _| {}));
    run_attack(&attack("a good new commit", [Fine; 4], |r, base| {
        push_file(r, base);
    }));
}

// ---- regression tests named after the cases of issue 16 ---------------------------

/// Two clones, each pushing one of `a` and `a/b`.
fn two_clones(t: &TestRepo) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let home = t.home();
    let remote = home.join("remote");
    base_remote(&remote);
    let url = remote.display().to_string();
    t.ok_in(home, ["clone", &url, "one"]);
    t.ok_in(home, ["clone", &url, "two"]);
    (home.join("one"), home.join("two"), url)
}

#[test]
fn remote_branches_a_and_a_slash_b_conflict_is_refused_on_push() {
    let t = TestRepo::new();
    let (one, two, url) = two_clones(&t);
    t.ok_in(&one, ["branch", "a"]);
    t.ok_in(&one, ["push", "origin", "a"]);
    t.ok_in(&two, ["branch", "a/b"]);
    let r = t.run_in(&two, ["push", "origin", "a/b"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("remote 'origin' has branch 'a', so branch 'a/b' cannot be created"),
        "{r}"
    );
    // The other way round too.
    t.ok_in(&two, ["branch", "c/d"]);
    t.ok_in(&two, ["push", "origin", "c/d"]);
    t.ok_in(&one, ["branch", "c"]);
    let r = t.run_in(&one, ["push", "origin", "c"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("has branch 'c/d'"), "{r}");
    // The remote stays clonable.
    t.ok_in(t.home(), ["clone", &url, "three"]);
    let br = t.ok_in(t.home().join("three"), ["branch", "-r"]).stdout;
    assert_eq!(br, "  origin/a\n  origin/c/d\n  origin/main\n");
}

#[test]
fn remote_branches_a_and_a_slash_b_already_there_are_reported_on_fetch() {
    // A remote written by an older dsv (or by hand) holds both.
    let t = TestRepo::new();
    let (one, _, url) = two_clones(&t);
    let remote = t.home().join("remote");
    let mut f = Forge::new();
    let c = f.commit_node(
        &Node::Dir(vec![(b"x.txt".to_vec(), Node::File(b"x\n".to_vec()))]),
        &[],
    );
    f.write_pack(&remote);
    set_ref(&remote, b"a", c);
    set_ref(&remote, b"a/b", c);
    set_ref(&remote, b"other", c);
    let r = t.run_in(&one, ["fetch"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(
            "warning: remote 'origin': branch 'a/b' not fetched: conflicts with branch 'a'"
        ),
        "{r}"
    );
    let br = t.ok_in(&one, ["branch", "-r"]).stdout;
    assert_eq!(
        br, "  origin/a\n  origin/main\n  origin/other\n",
        "the others were fetched"
    );
    // Clone works and warns.
    let r = t.ok_in(t.home(), ["clone", &url, "fresh"]);
    assert!(r.stderr.contains("branch 'a/b' not fetched"), "{r}");
    // When `a` goes, `a/b` is fetched in its place.
    std::fs::remove_file(hostile::ref_dir(&remote, b"a").join("00000000000000000001")).unwrap();
    t.ok_in(&one, ["fetch"]);
    let br = t.ok_in(&one, ["branch", "-r"]).stdout;
    assert_eq!(br, "  origin/a/b\n  origin/main\n  origin/other\n");
    t.ok_in(&one, ["fsck"]);
}

#[test]
fn fetch_skips_invalid_remote_branch_names() {
    let t = TestRepo::new();
    let (one, _, _) = two_clones(&t);
    let remote = t.home().join("remote");
    let mut f = Forge::new();
    let c = f.commit_node(
        &Node::Dir(vec![(b"y.txt".to_vec(), Node::File(b"y\n".to_vec()))]),
        &[],
    );
    f.write_pack(&remote);
    for bad in [&b"-x"[..], b"x.lock", b"ctl\x01x"] {
        set_ref(&remote, bad, c);
    }
    set_ref(&remote, b"good", c);
    let r = t.run_in(&one, ["fetch"]);
    assert_eq!(r.code, 1, "{r}");
    for (name, why) in [
        ("-x", "starts with '-'"),
        ("x.lock", "ends with '.' or '.lock'"),
        ("ctl\\u{1}x", "control character"),
    ] {
        assert!(
            r.stderr.lines().any(|l| l.starts_with(&format!(
                "warning: remote 'origin': branch '{name}' not fetched: invalid branch name"
            )) && l.contains(why)),
            "{name}:\n{r}"
        );
    }
    assert!(
        !r.stderr.contains('\x01'),
        "a control character printed raw:\n{r}"
    );
    assert!(
        r.stderr.contains(
            "error: remote 'origin': 3 branches not fetched (see above); every other branch was"
        ),
        "{r}"
    );
    let br = t.ok_in(&one, ["branch", "-r"]).stdout;
    assert_eq!(br, "  origin/good\n  origin/main\n");
    let j = t.run_in(&one, ["fetch", "--json"]);
    assert_eq!(j.code, 1, "{j}");
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["skipped"].as_array().unwrap().len(), 3, "{j}");
    // pull of the current branch is not held back by them.
    let r = t.run_in(&one, ["pull"]);
    assert_eq!(r.code, 0, "{r}");
    t.ok_in(&one, ["fsck"]);
}

#[test]
fn huge_remote_ref_is_refused_without_echo() {
    let t = TestRepo::new();
    let remote = t.home().join("remote");
    base_remote(&remote);
    let size: u64 = 100 << 20;
    // A JSON string of 100 MB: serde quotes an invalid value whole in its error.
    hostile::write_huge_after(
        &hostile::ref_dir(&remote, b"main").join("00000000000000000002"),
        br#"{"commit":""#,
        size,
        b'a',
    );
    let url = remote.display().to_string();
    let r = t.run_in(t.home(), ["clone", &url, "victim"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.len() < 1000, "{} bytes of stderr", r.stderr.len());
    assert!(
        r.stderr
            .contains("bytes, more than the 4096 a ref may have; not read"),
        "{r}"
    );
    assert!(!t.home().join("victim").exists());
    // The same clone, measured alone (see exit_and_peak_rss_in), peaks far below
    // the ref's size: it was never read whole (before the fix: 430 MB for a 100 MB ref).
    let (code, peak) = t.exit_and_peak_rss_in(t.home(), &["clone", &url, "victim"]);
    assert_eq!(code, 1);
    let peak_kib = peak >> 10;
    assert!(peak_kib < 96 * 1024, "the clone peaked at {peak_kib} KiB");
    assert!(!t.home().join("victim").exists());
}

#[test]
fn huge_remote_marker_and_index_are_refused_without_echo() {
    let t = TestRepo::new();
    let remote = t.home().join("remote");
    let base = base_remote(&remote);
    let url = remote.display().to_string();
    t.ok_in(t.home(), ["clone", &url, "local"]);
    // A huge index: refused from its size before it is read (it is not a valid one).
    let pack = push_file(&remote, base);
    hostile::write_sparse(&hostile::idx_path(&remote, &pack), 3 << 30);
    let r = t.run_in(t.home().join("local"), ["fetch"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("more than a pack index may have"), "{r}");
    assert!(r.stderr.len() < 1000, "{r}");
    std::fs::remove_file(hostile::idx_path(&remote, &pack)).unwrap();
    // A huge marker.
    hostile::write_sparse(&remote.join("dsv-remote"), 50 << 20);
    let r = t.run_in(t.home().join("local"), ["fetch"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("dsv-remote is 52428800 bytes"), "{r}");
    assert!(r.stderr.len() < 1000, "{r}");
}
