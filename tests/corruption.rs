//! Damaged data and old data: a flipped byte in a pack must be found by fsck and
//! named by every command that needs it (while everything else still works), and
//! a repository written by format version 1 (`tests/data/repo-v1`) must still be
//! read exactly.
//!
//! Helpers are local to this file (tests/common is shared with other suites).

mod common;

use common::{copy_dir, pseudo_random_bytes as pseudo_random, write_file as write};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `dsv` hermetically (fixed author and date, no colour, `HOME` = `home`).
fn run(home: &Path, dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dsv"));
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("DSV_") || k.starts_with("GIT_") {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .current_dir(dir)
        .args(args)
        .env("DSV_AUTHOR_NAME", "Corruption Tester")
        .env("DSV_AUTHOR_EMAIL", "corrupt@example.com")
        .env("DSV_AUTHOR_DATE", "1700000000")
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .expect("running dsv");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(home: &Path, dir: &Path, args: &[&str]) -> Out {
    let out = run(home, dir, args);
    assert_eq!(out.code, Some(0), "dsv {args:?} failed\n{}", out.describe());
    out
}

fn no_panic(out: &Out) {
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "dsv panicked\n{}",
        out.describe()
    );
}

/// Deletes everything in the worktree except `.dsv`.
fn clear_worktree(root: &Path) {
    for ent in std::fs::read_dir(root).unwrap() {
        let p = ent.unwrap().path();
        if p.file_name().unwrap() == ".dsv" {
            continue;
        }
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { exec: bool, data: Vec<u8> },
    Link(PathBuf),
}

fn file(data: impl AsRef<[u8]>) -> Node {
    Node::File {
        exec: false,
        data: data.as_ref().to_vec(),
    }
}

/// Every file and symlink of the worktree except `.dsv`.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for ent in std::fs::read_dir(dir).unwrap() {
            let path = ent.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if rel == ".dsv" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Node::Link(std::fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                walk(root, &path, out);
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                let data = std::fs::read(&path).unwrap();
                out.insert(rel, Node::File { exec, data });
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same_files(ctx: &str, got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>) {
    let got_names: Vec<&String> = got.keys().collect();
    let want_names: Vec<&String> = want.keys().collect();
    assert_eq!(got_names, want_names, "{ctx}: file list");
    for (p, w) in want {
        assert!(
            got[p] == *w,
            "{ctx}: '{p}' does not have the expected content"
        );
    }
}

// ---------------------------------------------------------------------------
// A flipped byte in a pack
// ---------------------------------------------------------------------------

/// A committed repository with incompressible files (stored raw, so their bytes can
/// be found in the pack). Returns the files as written.
fn committed_repo(home: &Path, root: &Path) -> BTreeMap<String, Node> {
    std::fs::create_dir_all(root).unwrap();
    ok(home, root, &["init", "-q"]);
    write(root, "a.txt", "alpha\n");
    write(root, "labels/train.csv", "id,label\n1,cat\n2,dog\n");
    write(root, "data/raw.bin", pseudo_random(300_000, 11));
    write(root, "data/other.bin", pseudo_random(50_000, 12));
    // Over 1 MiB: stored as content-defined chunks.
    write(root, "big.bin", pseudo_random(1_500_000, 13));
    ok(home, root, &["add", "-A"]);
    ok(home, root, &["commit", "-q", "-m", "data"]);
    snapshot(root)
}

/// The id of `path` in HEAD.
fn id_of(home: &Path, root: &Path, path: &str) -> String {
    let out = ok(home, root, &["ls-tree", "-r", "HEAD"]).stdout;
    out.lines()
        .find_map(|l| {
            let (meta, p) = l.split_once('\t')?;
            (p == path).then(|| meta.split_whitespace().nth(1).unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("{path} not in HEAD:\n{out}"))
}

/// Flips one byte of the pack record holding `needle` (which must occur exactly once).
fn flip_in_pack(root: &Path, needle: &[u8]) {
    let mut hits = Vec::new();
    for ent in std::fs::read_dir(root.join(".dsv/packs")).unwrap() {
        let p = ent.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        for (i, w) in bytes.windows(needle.len()).enumerate() {
            if w == needle {
                hits.push((p.clone(), i));
            }
        }
    }
    assert_eq!(
        hits.len(),
        1,
        "pattern must occur exactly once in the packs: {hits:?}"
    );
    let (pack, at) = &hits[0];
    let mut bytes = std::fs::read(pack).unwrap();
    bytes[at + needle.len() / 2] ^= 0x01;
    std::fs::write(pack, bytes).unwrap();
}

fn corrupt_one_file(damaged: &str, offset: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = tmp.path().join("repo");
    let files = committed_repo(&home, &root);
    let id = id_of(&home, &root, damaged);
    let Node::File { data, .. } = &files[damaged] else {
        unreachable!()
    };
    flip_in_pack(&root, &data[offset..offset + 64]);

    // fsck names the object and the path that uses it.
    let fsck = run(&home, &root, &["fsck"]);
    no_panic(&fsck);
    assert_eq!(fsck.code, Some(1), "{}", fsck.describe());
    assert!(
        fsck.stdout.contains(&format!("error: object {id}")),
        "fsck does not name object {id}\n{}",
        fsck.describe()
    );
    assert!(
        fsck.stdout.contains(&format!("used by {damaged}")),
        "fsck does not name '{damaged}'\n{}",
        fsck.describe()
    );
    // No other file is reported.
    for other in files.keys().filter(|p| p.as_str() != damaged) {
        assert!(
            !fsck.stdout.contains(&format!("used by {other}")),
            "fsck blames '{other}' too\n{}",
            fsck.describe()
        );
    }

    // Restoring a deleted worktree: the damaged file is refused by name, every other
    // file is written correctly.
    let mut want = files.clone();
    want.remove(damaged);
    for (i, args) in [
        &["reset", "--hard"][..],
        &["checkout", "HEAD", "--", "."][..],
        &["restore", "."][..],
    ]
    .into_iter()
    .enumerate()
    {
        let w = tmp.path().join(format!("restore-{i}"));
        copy_dir(&root, &w);
        clear_worktree(&w);
        let out = run(&home, &w, args);
        no_panic(&out);
        assert_eq!(out.code, Some(1), "dsv {args:?}\n{}", out.describe());
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(damaged) && first.contains("corrupt"),
            "dsv {args:?}: the error must name '{damaged}' and say it is corrupt\n{}",
            out.describe()
        );
        assert_same_files(&format!("dsv {args:?}"), &snapshot(&w), &want);
        // Nothing half-written is left behind.
        let leftovers: Vec<String> =
            std::fs::read_dir(w.join(Path::new(damaged).parent().unwrap()))
                .map(|rd| {
                    rd.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                        .filter(|n| n.contains(".dsv-tmp-"))
                        .collect()
                })
                .unwrap_or_default();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn flipped_byte_in_a_whole_file_is_found_and_named() {
    corrupt_one_file("data/raw.bin", 100_000);
}

#[test]
fn flipped_byte_in_a_chunk_is_found_and_named() {
    corrupt_one_file("big.bin", 700_000);
}

// ---------------------------------------------------------------------------
// Format version 1
// ---------------------------------------------------------------------------

/// `frames/video.raw` as written by tests/data/make-repo-v1.sh (`edited`: the second version).
fn video(edited: bool) -> Vec<u8> {
    let mut out = String::new();
    for i in 1u64..=120_000 {
        if edited && (60_000..60_010).contains(&i) {
            out.push_str(&format!("frame {i:06} edited\n"));
        } else {
            out.push_str(&format!("frame {i:06} pixel {}\n", (i * 7919) % 65536));
        }
    }
    out.into_bytes()
}

fn shard_file(i: usize) -> Vec<u8> {
    format!("item {i}\n").into_bytes()
}

/// The files of `main` (or of `experiment`) in the fixture.
fn fixture_files(experiment: bool) -> BTreeMap<String, Node> {
    let mut m = BTreeMap::new();
    m.insert("README.txt".into(), file("dsv format v1 fixture\n"));
    m.insert(
        "run.sh".into(),
        Node::File {
            exec: true,
            data: b"#!/bin/sh\necho train\n".to_vec(),
        },
    );
    m.insert("latest".into(), Node::Link("labels/train.csv".into()));
    for i in 0..4200 {
        m.insert(format!("shard/{i:05}.txt"), file(shard_file(i)));
    }
    if experiment {
        m.insert("frames/video.raw".into(), file(video(false)));
        m.insert(
            "labels/train.csv".into(),
            file("id,label\n1,cat\n2,dog\n3,cat\n"),
        );
        m.insert("labels/val.csv".into(), file("id,label\n4,dog\n"));
        m.insert("notes.txt".into(), file("try a new split\n"));
    } else {
        m.insert("frames/video.raw".into(), file(video(true)));
        m.insert(
            "labels/train.csv".into(),
            file("id,label\n1,cat\n2,dog\n3,cat\n5,bird\n"),
        );
        m.insert("labels/test.csv".into(), file("id,label\n6,cat\n"));
    }
    m
}

fn shard_listing() -> String {
    (0..4200)
        .map(|i| {
            let data = shard_file(i);
            format!(
                "file {} {:>10}\tshard/{i:05}.txt\n",
                dsv::ObjectId::hash(&data),
                data.len()
            )
        })
        .collect()
}

const MAIN_TREE: &str = "\
file 68ef59e340c1531601fc4f1267ac392c74516e33fab587fd6ae7fc754c7cae67         22\tREADME.txt
file 997536543c4b616097e4fb7c2caa39a5e577478af4807c02c2a8d476df14a912    2979604\tframes/video.raw
file 400c4786465e5acf5488f04a747462bdd2deb0a78830960c6e3c6d92558f31ed         15\tlabels/test.csv
file 42cbaa208d91ba58707e0373b4044f2e37d41da175ec6b4da06a51ec6086cd10         34\tlabels/train.csv
link 38b4c08b9cbc4c4584a4adfa442c5601e42ac8259364de6656a35cee10724b2c         16\tlatest
exec 8b20883c38a747a2ac9d862f1d936aead779a8b4a717836e06c3b8c4a63a223b         21\trun.sh
";

const EXPERIMENT_TREE: &str = "\
file 68ef59e340c1531601fc4f1267ac392c74516e33fab587fd6ae7fc754c7cae67         22\tREADME.txt
file bcb8075f26a8b002cebc31a73ac5e665943cb36f24d66742252476559b3cac12    2979651\tframes/video.raw
file 75bf422fdc2009c40e8f6e61951575d96e33a89fa056c9ccb72a4f288e6e0e92         27\tlabels/train.csv
file bd1d5464805675a2ed5959e558d8edbf7504df3ac1a2d18329bd64f76241db24         15\tlabels/val.csv
link 38b4c08b9cbc4c4584a4adfa442c5601e42ac8259364de6656a35cee10724b2c         16\tlatest
file 8c9422767448f59e67434f0d0a2ff439f547c7c3d7788f10f2f67f3f4b874abf         16\tnotes.txt
exec 8b20883c38a747a2ac9d862f1d936aead779a8b4a717836e06c3b8c4a63a223b         21\trun.sh
";

#[test]
fn reads_format_v1_repository() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/repo-v1");
    assert_eq!(
        std::fs::read_to_string(fixture.join(".dsv/format")).unwrap(),
        "1\n",
        "tests/data/repo-v1 must stay a format-1 repository"
    );
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = tmp.path().join("repo-v1");
    copy_dir(&fixture, &root);

    let fsck = ok(&home, &root, &["fsck"]);
    assert_eq!(fsck.stdout, "", "{}", fsck.describe());

    assert_eq!(
        ok(&home, &root, &["log", "--oneline"]).stdout,
        "ebe493d9f8b5 (HEAD -> main) edit labels and frames\n\
         0463b0b8f840 (tag: v1.0) initial dataset\n"
    );
    assert_eq!(
        ok(&home, &root, &["log", "--oneline", "--all"]).stdout,
        "b131ed45a25c (experiment) experiment notes\n\
         ebe493d9f8b5 (HEAD -> main) edit labels and frames\n\
         0463b0b8f840 (tag: v1.0) initial dataset\n"
    );
    assert_eq!(
        ok(&home, &root, &["ls-tree", "-r", "HEAD"]).stdout,
        format!("{MAIN_TREE}{}", shard_listing())
    );
    assert_eq!(
        ok(&home, &root, &["ls-tree", "-r", "experiment"]).stdout,
        format!("{EXPERIMENT_TREE}{}", shard_listing())
    );
    let show = ok(&home, &root, &["show", "--json", "HEAD"]).stdout;
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(
        show["id"],
        "ebe493d9f8b5dea729cc4b35e1b72a44db64bb765f0e59d50820c82c1e966bb2"
    );
    assert_eq!(show["commit"]["time"], 1700003600);
    assert_eq!(show["commit"]["author"]["name"], "Format Fixture");
    assert_eq!(show["commit"]["summary"]["files"], 4206);

    // Only `.dsv` is stored: the worktree comes back from the old objects.
    let out = ok(&home, &root, &["reset", "--hard"]);
    no_panic(&out);
    assert_same_files("reset --hard", &snapshot(&root), &fixture_files(false));
    let status = ok(&home, &root, &["status", "--short"]);
    assert_eq!(status.stdout, "", "not clean after reset --hard");

    ok(&home, &root, &["switch", "experiment"]);
    assert_same_files("switch experiment", &snapshot(&root), &fixture_files(true));
    ok(&home, &root, &["switch", "main"]);
    assert_same_files("switch main", &snapshot(&root), &fixture_files(false));

    // The old repository accepts new commits on top of the old ones.
    write(&root, "labels/test.csv", "id,label\n6,cat\n7,dog\n");
    ok(&home, &root, &["add", "-A"]);
    ok(&home, &root, &["commit", "-q", "-m", "new on old"]);
    assert_eq!(
        ok(&home, &root, &["log", "--oneline"])
            .stdout
            .lines()
            .count(),
        3
    );
    let fsck = ok(&home, &root, &["fsck"]);
    assert_eq!(fsck.stdout, "", "{}", fsck.describe());
}
