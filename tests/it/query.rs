//! End-to-end tests of curation: frame metadata (`dsv meta`), CEL queries
//! (`dsv query`, `dsv stats --where`) and export for training (`dsv export`),
//! on the real sample datasets in `fixtures/`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{TestRepo, copy_contents};
use dsv::labels::{self, FrameLabels, ParseContext, Units};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A repository holding `fixtures/demo` (YOLO, 6 frames) at `demo/` and the
/// Roboflow COCO export at `coco/`, committed.
fn demo_repo() -> TestRepo {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), &repo.path("demo"));
    copy_contents(
        &fixture("datumaro/roboflow_dataset/coco"),
        &repo.path("coco"),
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn query(repo: &TestRepo, expr: &str) -> Vec<String> {
    lines(&repo.ok(["query", expr]).stdout)
}

#[test]
fn queries_on_sample_datasets_give_known_answers() {
    let repo = demo_repo();
    // demo/data.yaml: class 0 is label_0; frames 001 and 003 have one each, and
    // so do the Roboflow COCO train_001 and val_001.
    assert_eq!(
        query(&repo, r#"objects.exists(o, o.class == "label_0")"#),
        [
            "coco/train/train_001.jpg",
            "coco/val/val_001.jpg",
            "demo/images/frame_001.jpg",
            "demo/images/frame_003.jpg"
        ]
    );
    // frame_005.txt is empty: the only demo frame without objects.
    assert_eq!(
        query(&repo, r#"path.startsWith("demo/") && objects.size() == 0"#),
        ["demo/images/frame_005.jpg"]
    );
    // Classes 10 and 11 are cat and person (frame_004).
    assert_eq!(
        query(
            &repo,
            r#"objects.exists(o, o.class == "cat") && objects.exists(o, o.class == "person")"#
        ),
        ["demo/images/frame_004.jpg"]
    );
    // Roboflow COCO train: two frames of 10x5 pixels; the label_1 box is 2x4 (area 8).
    assert_eq!(
        query(
            &repo,
            r#"objects.filter(o, o.class == "label_1" && o.area == 8.0).size() == 1 && width == 10"#
        ),
        ["coco/train/train_002.jpg"]
    );
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "9");
    let doc: serde_json::Value =
        serde_json::from_str(&repo.ok(["query", "objects.size() >= 2", "--json"]).stdout)
            .expect("JSON");
    assert_eq!(doc["count"], 4);
    let paths: Vec<&str> = doc["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "coco/val/val_001.jpg",
            "demo/images/frame_000.jpg",
            "demo/images/frame_003.jpg",
            "demo/images/frame_004.jpg"
        ]
    );
    assert_eq!(
        repo.ok(["query", "objects.size() >= 3", "--paths"]).stdout,
        ""
    );
}

#[test]
fn coco_image_extra_fields_are_frame_attributes() {
    let repo = TestRepo::init();
    copy_contents(
        &fixture("datumaro/coco_dataset/coco_instances"),
        repo.root(),
    );
    let p = "annotations/instances_train.json";
    let mut doc: serde_json::Value =
        serde_json::from_slice(&repo.read(p)).expect("fixture is JSON");
    doc["images"][0]["weather"] = "rain".into();
    doc["images"][0]["night"] = true.into();
    repo.write(p, serde_json::to_vec(&doc).expect("JSON"));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    assert_eq!(
        query(
            &repo,
            r#"has(attrs.weather) && weather == "rain" && attrs.night"#
        ),
        ["images/train/a.jpg"]
    );
    assert!(query(&repo, r#"has(attrs.weather) && weather == "sun""#).is_empty());
}

#[test]
fn sidecar_attributes_and_predictions_are_queried_at_their_revision() {
    let repo = demo_repo();
    repo.ok([
        "meta",
        "set",
        "demo/images/frame_000.jpg",
        "demo/images/frame_002.jpg",
        "weather=rain",
        "lux=3",
    ]);
    repo.ok(["meta", "set", "demo/images/frame_002.jpg", "time=night"]);
    repo.write(
        "preds.jsonl",
        concat!(
            r#"{"frame": "demo/images/frame_001.jpg", "class": "label_0", "box": [0.2, 0.2, 0.3, 0.2], "score": 0.91}"#,
            "\n",
            r#"{"frame": "demo/images/frame_002.jpg", "class": "cat", "box": [0.1, 0.1, 0.2, 0.2], "score": 0.3}"#,
            "\n"
        ),
    );
    repo.ok(["meta", "import", "preds.jsonl"]);
    repo.remove("preds.jsonl");
    repo.ok(["add", "meta.jsonl"]);
    repo.ok(["commit", "-m", "metadata"]);
    assert_eq!(
        query(
            &repo,
            r#"has(attrs.weather) && weather == "rain" && lux > 2"#
        ),
        ["demo/images/frame_000.jpg", "demo/images/frame_002.jpg"]
    );
    assert_eq!(
        query(
            &repo,
            r#"has(attrs.time) && weather == "rain" && time == "night""#
        ),
        ["demo/images/frame_002.jpg"]
    );
    // Low confidence, and predictions that disagree with the labels.
    assert_eq!(
        query(&repo, "predictions.exists(p, p.score < 0.5)"),
        ["demo/images/frame_002.jpg"]
    );
    assert_eq!(
        query(
            &repo,
            "predictions.exists(p, !objects.exists(o, o.class == p.class))"
        ),
        ["demo/images/frame_002.jpg"]
    );
    // The previous commit has no sidecar: metadata is versioned, and an
    // attribute no frame of that version has is an error, not "no match".
    let r = repo.fails(["query", r#"weather == "rain""#, "HEAD~1", "--count"]);
    assert_eq!(
        r.stderr,
        "error: query: column 1: unknown attribute `weather`; this version has no frame attributes\n"
    );
    assert_eq!(
        repo.ok([
            "query",
            r#"has(attrs.weather) && weather == "rain""#,
            "HEAD~1",
            "--count"
        ])
        .stdout
        .trim(),
        "0"
    );
    let st: serde_json::Value = serde_json::from_str(
        &repo
            .ok([
                "stats",
                "--where",
                r#"has(attrs.weather) && weather == "rain""#,
                "--json",
            ])
            .stdout,
    )
    .expect("JSON");
    assert_eq!(st["stats"]["frames"], 2);
    // frame_000 has label_2 and label_4, frame_002 has label_1.
    assert_eq!(st["stats"]["objects"], 3);
    assert_eq!(st["stats"]["classes"]["label_1"], 1);
    assert_eq!(st["stats"]["frame_attributes"]["weather"]["rain"], 2);
}

#[test]
fn meta_set_and_unset_round_trip() {
    let repo = demo_repo();
    repo.ok([
        "meta",
        "set",
        "demo/images/frame_003.jpg",
        "flagged=true",
        "reviewer=ana",
    ]);
    let after_set = repo.read_string("meta.jsonl");
    assert_eq!(
        after_set,
        "{\"flagged\":true,\"path\":\"demo/images/frame_003.jpg\",\"reviewer\":\"ana\"}\n"
    );
    // Relative paths are taken from the current directory.
    repo.ok_in(
        repo.path("demo/images"),
        ["meta", "unset", "frame_003.jpg", "--keys", "reviewer"],
    );
    assert_eq!(
        repo.read_string("meta.jsonl"),
        "{\"flagged\":true,\"path\":\"demo/images/frame_003.jpg\"}\n"
    );
    repo.ok([
        "meta",
        "unset",
        "demo/images/frame_003.jpg",
        "--keys",
        "flagged",
    ]);
    assert_eq!(repo.read_string("meta.jsonl"), "");
    // A CSV sidecar declared in dsv.toml is edited the same way.
    repo.write("dsv.toml", "[metadata]\npath = \"meta/frames.csv\"\n");
    repo.ok(["meta", "set", "demo/images/frame_001.jpg", "split=val"]);
    repo.ok([
        "meta",
        "set",
        "demo/images/frame_000.jpg",
        "split=train, old",
    ]);
    assert_eq!(
        repo.read_string("meta/frames.csv"),
        "path,split\ndemo/images/frame_000.jpg,\"train, old\"\ndemo/images/frame_001.jpg,val\n"
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "csv"]);
    assert_eq!(
        query(&repo, r#"has(attrs.split) && split == "train, old""#),
        ["demo/images/frame_000.jpg"]
    );
    // A frame that is not there is refused.
    let r = repo.fails(["meta", "set", "demo/images/nope.jpg", "a=1"]);
    assert!(
        r.stderr.contains("demo/images/nope.jpg: no such file"),
        "{}",
        r.stderr
    );
}

#[test]
fn sidecar_errors_name_file_and_line_and_change_nothing() {
    let repo = demo_repo();
    let bad = "{\"path\": \"demo/images/frame_000.jpg\", \"a\": 1}\n{\"path\": \"demo/images/frame_001.jpg\", \"b\": [1]}\n";
    repo.write("meta.jsonl", bad);
    let r = repo.fails(["meta", "set", "demo/images/frame_002.jpg", "a=2"]);
    assert_eq!(
        r.stderr.trim(),
        "error: meta.jsonl: line 2: attribute \"b\" must be text, a number or true/false"
    );
    assert_eq!(repo.read_string("meta.jsonl"), bad);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "bad sidecar"]);
    let r = repo.fails(["query", "true"]);
    assert!(r.stderr.contains("meta.jsonl: line 2:"), "{}", r.stderr);
    // CSV: a short row, and an unclosed quote with its column.
    repo.write("dsv.toml", "[metadata]\npath = \"meta.csv\"\n");
    repo.write(
        "meta.csv",
        "path,a,b\ndemo/images/frame_000.jpg,1,2\ndemo/images/frame_001.jpg,1\n",
    );
    let r = repo.fails(["meta", "set", "demo/images/frame_002.jpg", "a=2"]);
    assert_eq!(
        r.stderr.trim(),
        "error: meta.csv: line 3: 2 cells, the header has 3"
    );
    repo.write("meta.csv", "path,a\n\"demo/images/frame_000.jpg,1\n");
    let r = repo.fails(["meta", "unset", "demo/images/frame_000.jpg", "--keys", "a"]);
    assert_eq!(
        r.stderr.trim(),
        "error: meta.csv: line 2, column 1: unclosed quote"
    );
    // A predictions file with a bad line.
    repo.write("p.jsonl", "{\"frame\": \"demo/images/frame_000.jpg\", \"class\": \"x\", \"score\": 0.5}\n{\"frame\": 3}\n");
    repo.write("dsv.toml", "");
    repo.remove("meta.jsonl");
    let r = repo.fails(["meta", "import", "p.jsonl"]);
    assert!(
        r.stderr.starts_with("error: p.jsonl: line 2, column "),
        "{}",
        r.stderr
    );
    assert!(!repo.exists("meta.jsonl"));
}

#[test]
fn meta_value_with_newline_round_trips() {
    // A value holding a newline is written as a quoted cell over two lines; the
    // sidecar must read it back (it was refused as an "unclosed quote").
    let repo = demo_repo();
    repo.write("dsv.toml", "[metadata]\npath = \"meta.csv\"\n");
    repo.ok([
        "meta",
        "set",
        "demo/images/frame_000.jpg",
        "note=two\nlines, \"quoted\"",
    ]);
    assert_eq!(
        repo.read_string("meta.csv"),
        "path,note\ndemo/images/frame_000.jpg,\"two\nlines, \"\"quoted\"\"\"\n"
    );
    repo.ok(["meta", "set", "demo/images/frame_001.jpg", "a=1"]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "note"]);
    assert_eq!(
        query(
            &repo,
            r#"has(attrs.note) && note == "two\nlines, \"quoted\"""#
        ),
        ["demo/images/frame_000.jpg"]
    );
    assert_eq!(
        query(&repo, "has(attrs.a) && a == 1"),
        ["demo/images/frame_001.jpg"]
    );
}

#[test]
fn malformed_expression_error_points_at_the_column() {
    let repo = demo_repo();
    let r = repo.fails(["query", "path == 'a' &&& objects.size() > 1"]);
    assert!(
        r.stderr.starts_with("error: query: column 15: "),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    // A truncated expression (the parser panics inside on this one) is an error too.
    let r = repo.fails(["query", "objects.size() >"]);
    assert!(
        r.stderr.starts_with("error: query: column 17: "),
        "{}",
        r.stderr
    );
    let r = repo.fails(["stats", "--where", "a b"]);
    assert!(
        r.stderr.starts_with("error: query: column 3: "),
        "{}",
        r.stderr
    );
    // Not a boolean: an error, not an empty answer.
    let r = repo.fails(["query", "objects.size()"]);
    assert!(r.stderr.contains("not true or false"), "{}", r.stderr);
}

#[test]
fn an_expression_the_cel_parser_panics_on_is_one_error_line_and_no_internal_error() {
    let repo = demo_repo();
    for expr in ["objects.size() >", "size(path) >", "path == 'a' &&"] {
        let r = repo.fails(["query", expr]);
        assert!(r.stderr.starts_with("error: query: column "), "{expr}: {r}");
        assert!(!r.stderr.contains("internal error"), "{expr}: {r}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{expr}: {r}");
    }
}

#[test]
fn a_damaged_or_cut_index_file_is_rebuilt_and_only_a_few_are_kept() {
    let repo = demo_repo();
    let expr = r#"objects.exists(o, o.class == "label_1")"#;
    let run = || -> serde_json::Value {
        serde_json::from_str(&repo.ok(["query", expr, "--json"]).stdout).expect("JSON")
    };
    let first = run();
    let dir = repo.path(".dsv/cache/query");
    let files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&dir)
            .expect("cache dir")
            .map(|e| e.expect("entry").path())
            .collect()
    };
    let [file] = files().try_into().expect("one index file");
    let bytes = std::fs::read(&file).expect("read");
    // Cut short, then every byte of a frame's head overwritten.
    for damaged in [bytes[..bytes.len() / 2].to_vec(), {
        let mut b = bytes.clone();
        b[20..60].fill(0xff);
        b
    }] {
        std::fs::write(&file, &damaged).expect("write");
        let again = run();
        assert_eq!(again["index"], "built");
        assert_eq!(again["frames"], first["frames"]);
        assert_eq!(std::fs::read(&file).expect("read"), bytes, "rewritten");
    }
    // One file per version, the newest few kept.
    for i in 0..6 {
        std::fs::write(repo.path(format!("demo/extra{i}.txt")), "x").expect("write");
        repo.ok(["add", "-A"]);
        repo.ok(["commit", "-m", "more"]);
        run();
    }
    assert_eq!(files().len(), 4, "{:?}", files());
}

#[test]
fn second_query_over_an_unchanged_commit_is_answered_from_the_index_cache() {
    let repo = demo_repo();
    let expr = r#"objects.exists(o, o.class == "label_1")"#;
    let run = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["query", expr, "--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&repo.ok(a).stdout).expect("JSON")
    };
    let first = run(&[]);
    assert_eq!(first["index"], "built");
    let second = run(&[]);
    assert_eq!(second["index"], "cached");
    assert_eq!(second["frames"], first["frames"]);
    assert_eq!(run(&["--no-cache"])["index"], "built");
    let paths: Vec<&str> = first["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "coco/train/train_002.jpg",
            "coco/val/val_001.jpg",
            "demo/images/frame_002.jpg",
            "demo/images/frame_003.jpg"
        ]
    );
    // A new commit is a new tree: its index is built, and sees the change.
    repo.write("demo/labels/frame_005.txt", "1 0.5 0.5 0.1 0.1\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "label frame 5"]);
    let third = run(&[]);
    assert_eq!(third["index"], "built");
    assert_eq!(third["count"], 5);
}

#[test]
fn query_branch_holds_exactly_the_matching_frames_and_their_labels() {
    let repo = demo_repo();
    repo.ok([
        "meta",
        "set",
        "demo/images/frame_003.jpg",
        "coco/train/train_001.jpg",
        "review=yes",
    ]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "meta"]);
    let out = repo.ok([
        "query",
        r#"objects.exists(o, o.class == "label_0")"#,
        "--branch",
        "label0",
    ]);
    assert!(
        out.stdout.starts_with("branch label0 at "),
        "{}",
        out.stdout
    );
    let files = repo.tree_paths("label0");
    let expected: BTreeSet<String> = [
        "coco/train/_annotations.coco.json",
        "coco/train/train_001.jpg",
        "coco/val/_annotations.coco.json",
        "coco/val/val_001.jpg",
        "demo/data.yaml",
        "demo/images/frame_001.jpg",
        "demo/images/frame_003.jpg",
        "demo/labels/frame_001.txt",
        "demo/labels/frame_003.txt",
        "meta.jsonl",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(files, expected);
    // The branch answers the same query with the same frames, and nothing else.
    assert_eq!(
        query(&repo, "true")
            .into_iter()
            .filter(|p| files.contains(p))
            .count(),
        4
    );
    assert_eq!(
        repo.ok(["query", "true", "label0", "--count"])
            .stdout
            .trim(),
        "4"
    );
    // The COCO file was rewritten to the selected image only; per-frame files are whole.
    repo.ok(["switch", "label0"]);
    let coco: serde_json::Value =
        serde_json::from_slice(&repo.read("coco/train/_annotations.coco.json")).expect("JSON");
    let names: Vec<&str> = coco["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["file_name"].as_str())
        .collect();
    assert_eq!(names, ["train_001.jpg"]);
    assert_eq!(coco["annotations"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        repo.read("demo/labels/frame_003.txt"),
        std::fs::read(fixture("demo/labels/frame_003.txt")).expect("fixture")
    );
    assert_eq!(
        repo.read_string("meta.jsonl"),
        "{\"path\":\"coco/train/train_001.jpg\",\"review\":\"yes\"}\n{\"path\":\"demo/images/frame_003.jpg\",\"review\":\"yes\"}\n"
    );
    // Labelling happens on the branch: edit a label and commit (merging it back
    // is tested below).
    repo.write(
        "demo/labels/frame_003.txt",
        "0 0.05 0.2 0.1 0.4\n1 0.5 0.1 0.8 0.2\n",
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "relabel frame 3"]);
    let diff: serde_json::Value =
        serde_json::from_str(&repo.ok(["diff", "--json", "HEAD~1", "HEAD"]).stdout).expect("JSON");
    assert_eq!(diff["labels"].as_array().map(Vec::len), Some(1));
    // The selection's parent is the queried commit.
    let log = repo.ok(["log", "--oneline", "label0"]).stdout;
    assert_eq!(log.lines().count(), 4, "{log}");
    // --commit records the same kind of commit without a branch, and prints its id
    // (HEAD is label0 here: two demo frames).
    let branches = repo.ok(["branch"]).stdout;
    let id = repo
        .ok(["query", r#"path.startsWith("demo/")"#, "--commit"])
        .stdout;
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(repo.ok(["branch"]).stdout, branches);
    assert_eq!(
        repo.ok(["query", "true", id.trim(), "--count"])
            .stdout
            .trim(),
        "2"
    );
    // An existing branch is refused and nothing changes.
    let r = repo.fails(["query", "true", "--branch", "label0"]);
    assert!(
        r.stderr.contains("branch 'label0' already exists"),
        "{}",
        r.stderr
    );
}

/// Objects of a frame as (class, x, y, w, h) in pixels.
/// Every tracked file of `rev` with its bytes, read from the working tree
/// (which must be checked out at `rev`).
fn snapshot(repo: &TestRepo, rev: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    repo.tree_paths(rev)
        .into_iter()
        .map(|p| {
            let bytes = repo.read(&p);
            (p, bytes)
        })
        .collect()
}

/// The paths `dsv diff --json A B` lists as changed, with their kind.
fn changed_files(repo: &TestRepo, a: &str, b: &str) -> Vec<(String, String)> {
    let diff: serde_json::Value =
        serde_json::from_str(&repo.ok(["diff", "--json", a, b]).stdout).expect("JSON");
    diff["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_string(),
                f["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The full commit id a revision names.
fn rev_id(repo: &TestRepo, rev: &str) -> String {
    let log = repo.ok(["log", "-n", "1", rev]).stdout;
    log.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn parents(repo: &TestRepo, rev: &str) -> usize {
    let c: serde_json::Value =
        serde_json::from_str(&repo.ok(["cat-object", rev]).stdout).expect("commit JSON");
    c["parents"].as_array().map_or(0, Vec::len)
}

fn json_file(repo: &TestRepo, rel: &str) -> serde_json::Value {
    serde_json::from_slice(&repo.read(rel)).expect("JSON")
}

const LABEL0: &str = r#"objects.exists(o, o.class == "label_0")"#;
const TRAIN_COCO: &str = "coco/train/_annotations.coco.json";

/// `demo_repo` with sidecar rows for two selected frames and one other, and the
/// selection `label0` (demo frames 001 and 003, COCO train_001 and val_001).
fn selection_repo() -> TestRepo {
    let repo = demo_repo();
    repo.ok([
        "meta",
        "set",
        "demo/images/frame_003.jpg",
        "coco/train/train_001.jpg",
        "review=yes",
    ]);
    repo.ok(["meta", "set", "demo/images/frame_000.jpg", "review=no"]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "meta"]);
    repo.ok(["query", LABEL0, "--branch", "label0"]);
    repo
}

/// Sets the box of the first annotation of `rel` (a COCO file).
fn set_coco_box(repo: &TestRepo, rel: &str, bbox: [f64; 4]) {
    let mut doc = json_file(repo, rel);
    doc["annotations"][0]["bbox"] = serde_json::json!(bbox);
    repo.write(rel, serde_json::to_vec_pretty(&doc).expect("JSON"));
}

#[test]
fn selection_branch_merges_back_into_the_full_dataset() {
    let repo = selection_repo();
    let fixture_coco: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture(
            "datumaro/roboflow_dataset/coco/train/_annotations.coco.json",
        ))
        .expect("fixture"),
    )
    .expect("JSON");
    // The selection commit says what it was cut from.
    let show = repo.ok(["show", "label0"]).stdout;
    let main = rev_id(&repo, "main");
    assert!(
        show.contains(&format!("Selection of {} by {LABEL0}", &main[..12])),
        "{show}"
    );
    // The selection's COCO file keeps the original's info, licenses and categories.
    let sel_coco = {
        repo.ok(["switch", "label0"]);
        json_file(&repo, TRAIN_COCO)
    };
    for key in ["info", "licenses", "categories"] {
        assert_eq!(sel_coco[key], fixture_coco[key], "{key}");
    }
    assert_eq!(sel_coco["images"].as_array().map(Vec::len), Some(1));

    // Label on the branch: a YOLO box, a COCO box, a sidecar row; drop a frame.
    let yolo = "0 0.05 0.2 0.1 0.4\n1 0.5 0.1 0.8 0.2\n";
    repo.write("demo/labels/frame_003.txt", yolo);
    set_coco_box(&repo, TRAIN_COCO, [2.0, 1.0, 4.0, 2.0]);
    repo.ok(["meta", "set", "demo/images/frame_003.jpg", "review=done"]);
    repo.ok([
        "rm",
        "demo/images/frame_001.jpg",
        "demo/labels/frame_001.txt",
    ]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "relabel"]);

    // Meanwhile main moves: an unrelated label and sidecar row.
    repo.ok(["switch", "main"]);
    repo.write("demo/labels/frame_000.txt", "2 0.1 0.3 0.2 0.2\n");
    repo.ok(["meta", "set", "demo/images/frame_005.jpg", "weather=sun"]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "unrelated"]);
    let before = snapshot(&repo, "HEAD");
    let meta_before = repo.read_string("meta.jsonl");

    let out = repo.ok(["merge", "label0"]);
    assert!(
        out.stdout.contains("Merging a selection back"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Committed"), "{}", out.stdout);
    assert_eq!(parents(&repo, "HEAD"), 2);

    // Every file outside the edits is still there, byte for byte.
    let edited = [
        "demo/labels/frame_003.txt",
        TRAIN_COCO,
        "meta.jsonl",
        "demo/images/frame_001.jpg",
        "demo/labels/frame_001.txt",
    ];
    let after = snapshot(&repo, "HEAD");
    for (p, bytes) in &before {
        if edited.contains(&p.as_str()) {
            continue;
        }
        assert_eq!(after.get(p), Some(bytes), "{p} changed");
    }
    assert_eq!(after.len(), before.len() - 2);
    assert!(!after.contains_key("demo/images/frame_001.jpg"));
    assert!(!after.contains_key("demo/labels/frame_001.txt"));
    assert_eq!(repo.read_string("demo/labels/frame_003.txt"), yolo);
    assert_eq!(
        repo.read_string("demo/labels/frame_000.txt"),
        "2 0.1 0.3 0.2 0.2\n"
    );

    // The COCO file holds both images again, with the edited box, and the
    // original's other fields.
    let coco = json_file(&repo, TRAIN_COCO);
    let names: Vec<&str> = coco["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["file_name"].as_str())
        .collect();
    assert_eq!(names, ["train_001.jpg", "train_002.jpg"]);
    assert_eq!(coco["images"], fixture_coco["images"]);
    for key in ["info", "licenses", "categories"] {
        assert_eq!(coco[key], fixture_coco[key], "{key}");
    }
    let anns = coco["annotations"].as_array().expect("annotations");
    assert_eq!(anns.len(), 2);
    assert_eq!(anns[0]["bbox"], serde_json::json!([2.0, 1.0, 4.0, 2.0]));
    assert_eq!(anns[0]["image_id"], 1);
    // train_002's annotation is the original's, untouched.
    assert_eq!(anns[1], fixture_coco["annotations"][1]);

    // The sidecar: our rows where they were, their edit in place.
    assert_eq!(
        repo.read_string("meta.jsonl"),
        meta_before.replace(
            "{\"path\":\"demo/images/frame_003.jpg\",\"review\":\"yes\"}",
            "{\"path\":\"demo/images/frame_003.jpg\",\"review\":\"done\"}"
        )
    );
    assert!(meta_before.contains("frame_005"), "{meta_before}");

    // Against the first parent the merge is exactly the branch's edits.
    let mut changed = changed_files(&repo, "HEAD~1", "HEAD");
    changed.sort();
    assert_eq!(
        changed,
        [
            (TRAIN_COCO.to_string(), "modified".to_string()),
            ("demo/images/frame_001.jpg".into(), "deleted".into()),
            ("demo/labels/frame_001.txt".into(), "deleted".into()),
            ("demo/labels/frame_003.txt".into(), "modified".into()),
            ("meta.jsonl".into(), "modified".into()),
        ]
    );
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "8");
    repo.ok(["fsck"]);
    assert!(repo.ok(["status", "--short"]).stdout.is_empty());
}

#[test]
fn merging_a_selection_into_an_unmoved_branch_is_a_merge_commit_not_a_fast_forward() {
    let repo = selection_repo();
    repo.ok(["switch", "label0"]);
    repo.write("demo/labels/frame_003.txt", "0 0.05 0.2 0.1 0.4\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "drop a box"]);
    repo.ok(["switch", "main"]);
    // A commit made on the selection picks onto the whole dataset as it is
    // (its parent, the base, is a subset too).
    repo.ok(["switch", "-c", "pick", "main"]);
    repo.ok(["cherry-pick", "label0"]);
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "9");
    assert_eq!(
        changed_files(&repo, "HEAD~1", "HEAD"),
        [(
            "demo/labels/frame_003.txt".to_string(),
            "modified".to_string()
        )]
    );
    repo.ok(["switch", "main"]);
    let main_before = rev_id(&repo, "main");
    let before = snapshot(&repo, "HEAD");
    // main is an ancestor of label0, yet moving main to the subset would lose frames.
    let r = repo.fails(["merge", "--ff-only", "label0"]);
    assert!(r.stderr.contains("selection"), "{}", r.stderr);
    assert_eq!(rev_id(&repo, "main"), main_before);
    let doc: serde_json::Value =
        serde_json::from_str(&repo.ok(["merge", "label0", "--json"]).stdout).expect("JSON");
    assert_eq!(doc["outcome"], "committed");
    assert_eq!(doc["base"], doc["selection"]);
    assert_eq!(parents(&repo, "HEAD"), 2);
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "9");
    assert_eq!(
        changed_files(&repo, "HEAD~1", "HEAD"),
        [(
            "demo/labels/frame_003.txt".to_string(),
            "modified".to_string()
        )]
    );
    let after = snapshot(&repo, "HEAD");
    assert_eq!(after.len(), before.len());
    assert_eq!(
        repo.ok(["merge", "label0"]).stdout.trim(),
        "Already up to date."
    );
    // Picking or reverting the selection commit itself would delete (or bring
    // back) every frame it left out: refused.
    for cmd in ["cherry-pick", "revert"] {
        let r = repo.fails([cmd, "label0~1"]);
        assert!(r.stderr.contains("is a selection of"), "{}", r.stderr);
    }

    // A second round on the same branch merges against the tip merged last (the
    // selection is in main's history now): the frames left out still stay.
    repo.ok(["switch", "label0"]);
    set_coco_box(&repo, TRAIN_COCO, [1.0, 1.0, 2.0, 2.0]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "second round"]);
    repo.ok(["switch", "main"]);
    let out = repo.ok(["merge", "label0"]);
    assert!(
        !out.stdout.contains("Merging a selection back"),
        "{}",
        out.stdout
    );
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "9");
    let coco = json_file(&repo, TRAIN_COCO);
    assert_eq!(coco["images"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        coco["annotations"][0]["bbox"],
        serde_json::json!([1.0, 1.0, 2.0, 2.0])
    );
    assert_eq!(
        changed_files(&repo, "HEAD~1", "HEAD"),
        [(TRAIN_COCO.to_string(), "modified".to_string())]
    );
    repo.ok(["fsck"]);
}

#[test]
fn a_full_branch_that_merged_a_selection_is_merged_the_ordinary_way() {
    let repo = selection_repo();
    repo.ok(["switch", "label0"]);
    repo.write("demo/labels/frame_003.txt", "0 0.05 0.2 0.1 0.4\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "relabel"]);
    // A team branch off main folds the selection in, and edits a frame the
    // selection left out.
    repo.ok(["switch", "-c", "team", "main"]);
    let out = repo.ok(["merge", "label0"]);
    assert!(
        out.stdout.contains("Merging a selection back"),
        "{}",
        out.stdout
    );
    repo.write("demo/labels/frame_002.txt", "1 0.1 0.4 0.2 0.7\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "team edit"]);
    // main moved meanwhile; merging team (first parents: whole dataset) is an
    // ordinary merge that brings both edits.
    repo.ok(["switch", "main"]);
    repo.write("demo/labels/frame_004.txt", "10 0.1 0.3 0.1 0.2\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "main edit"]);
    let out = repo.ok(["merge", "team"]);
    assert!(
        !out.stdout.contains("Merging a selection back"),
        "{}",
        out.stdout
    );
    let mut changed = changed_files(&repo, "HEAD~1", "HEAD");
    changed.sort();
    assert_eq!(
        changed,
        [
            (
                "demo/labels/frame_002.txt".to_string(),
                "modified".to_string()
            ),
            ("demo/labels/frame_003.txt".into(), "modified".into()),
        ]
    );
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "9");
    repo.ok(["fsck"]);
}

#[test]
fn selection_merge_back_conflicts_on_labels_and_rows_edited_on_both_sides() {
    let repo = selection_repo();
    repo.ok(["switch", "label0"]);
    repo.write(
        "demo/labels/frame_003.txt",
        "0 0.05 0.2 0.1 0.4\n1 0.5 0.1 0.8 0.2\n",
    );
    repo.ok(["meta", "set", "demo/images/frame_003.jpg", "review=done"]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "theirs"]);
    repo.ok(["switch", "main"]);
    // The same box and the same attribute, changed differently; and an unrelated edit.
    repo.write(
        "demo/labels/frame_003.txt",
        "0 0.05 0.2 0.1 0.4\n1 0.4 0.1 0.8 0.2\n",
    );
    repo.ok(["meta", "set", "demo/images/frame_003.jpg", "review=redo"]);
    repo.write("demo/labels/frame_002.txt", "1 0.1 0.4 0.2 0.7\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "ours"]);
    let before = snapshot(&repo, "HEAD");

    let r = repo.expect_code(1, ["merge", "label0"]);
    assert!(
        r.stdout
            .contains("labels conflict: demo/labels/frame_003.txt"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("metadata conflict: meta.jsonl"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("row demo/images/frame_003.jpg: review: both sides changed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\"redo\"") && r.stdout.contains("\"done\""),
        "{}",
        r.stdout
    );
    // Nothing outside the selection was touched while the merge waits.
    let status = repo.ok(["status", "--short"]).stdout;
    assert!(status.contains("UU demo/labels/frame_003.txt"), "{status}");
    assert!(status.contains("UU meta.jsonl"), "{status}");
    assert_eq!(snapshot(&repo, "HEAD"), before);

    repo.ok([
        "resolve",
        "demo/labels/frame_003.txt",
        "meta.jsonl",
        "--theirs",
    ]);
    repo.ok(["merge", "--continue"]);
    assert_eq!(parents(&repo, "HEAD"), 2);
    assert_eq!(
        repo.read_string("demo/labels/frame_003.txt"),
        "0 0.05 0.2 0.1 0.4\n1 0.5 0.1 0.8 0.2\n"
    );
    assert!(
        repo.read_string("meta.jsonl")
            .contains("{\"path\":\"demo/images/frame_003.jpg\",\"review\":\"done\"}"),
        "{}",
        repo.read_string("meta.jsonl")
    );
    assert_eq!(
        repo.read_string("demo/labels/frame_002.txt"),
        "1 0.1 0.4 0.2 0.7\n"
    );
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "9");
    let mut changed = changed_files(&repo, "HEAD~1", "HEAD");
    changed.sort();
    assert_eq!(
        changed,
        [
            (
                "demo/labels/frame_003.txt".to_string(),
                "modified".to_string()
            ),
            ("meta.jsonl".into(), "modified".into()),
        ]
    );
    repo.ok(["fsck"]);
}

fn pixel_boxes(f: &FrameLabels, w: f64, h: f64) -> Vec<(String, [f64; 4])> {
    let (sx, sy) = match f.units {
        Units::Pixels => (1.0, 1.0),
        Units::Normalized => (w, h),
    };
    let mut v: Vec<(String, [f64; 4])> = f
        .objects
        .iter()
        .filter_map(|o| {
            o.bbox
                .map(|b| (o.class.clone(), [b.x * sx, b.y * sy, b.w * sx, b.h * sy]))
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v
}

fn assert_close(a: &[(String, [f64; 4])], b: &[(String, [f64; 4])], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0, "{what}");
        for i in 0..4 {
            assert!((x.1[i] - y.1[i]).abs() <= tol, "{what}: {x:?} vs {y:?}");
        }
    }
}

fn demo_frames() -> Vec<(String, FrameLabels)> {
    let names = labels::parse_class_names(
        "data.yaml",
        &std::fs::read(fixture("demo/data.yaml")).expect("fixture"),
    )
    .expect("names");
    let names = std::sync::Arc::new(names);
    (0..6)
        .map(|i| {
            let stem = format!("frame_{i:03}");
            let bytes =
                std::fs::read(fixture(&format!("demo/labels/{stem}.txt"))).expect("fixture");
            let ctx = ParseContext {
                class_names: Some(names.clone()),
                stem: stem.clone(),
            };
            (
                stem.clone(),
                labels::yolo::parse(&bytes, &ctx).expect("parses"),
            )
        })
        .collect()
}

#[test]
fn export_yolo_then_reimport_equals_the_original_objects() {
    let repo = demo_repo();
    let out = repo.home().join("yolo-out");
    repo.ok([
        "export",
        "HEAD",
        "--format",
        "yolo",
        "--out",
        out.to_str().expect("utf-8"),
        "--where",
        r#"path.startsWith("demo/")"#,
    ]);
    let names_bytes = std::fs::read(out.join("data.yaml")).expect("data.yaml");
    let names = std::sync::Arc::new(
        labels::parse_class_names("data.yaml", &names_bytes).expect("names parse"),
    );
    for (stem, orig) in demo_frames() {
        let bytes =
            std::fs::read(out.join(format!("labels/train/{stem}.txt"))).expect("label written");
        let ctx = ParseContext {
            class_names: Some(names.clone()),
            stem: stem.clone(),
        };
        let back = labels::yolo::parse(&bytes, &ctx).expect("exported YOLO parses");
        // YOLO keeps 6 decimals of normalized coordinates.
        assert_close(
            &pixel_boxes(&back, 1.0, 1.0),
            &pixel_boxes(&orig, 1.0, 1.0),
            1e-6,
            &stem,
        );
        assert!(out.join(format!("images/train/{stem}.jpg")).is_file());
    }
    assert!(
        !out.join("images/train/val_001.jpg").exists(),
        "--where left out the COCO frames"
    );
    // The exported directory is itself a dataset dsv reads with the same answers.
    let repo2 = TestRepo::init();
    copy_contents(&out, repo2.root());
    repo2.ok(["add", "-A"]);
    repo2.ok(["commit", "-m", "exported"]);
    assert_eq!(
        query(&repo2, r#"objects.exists(o, o.class == "label_0")"#),
        ["images/train/frame_001.jpg", "images/train/frame_003.jpg"]
    );
}

#[test]
fn export_coco_round_trips_and_converts_yolo_boxes_to_pixels() {
    let repo = demo_repo();
    let out = repo.home().join("coco-out");
    repo.ok([
        "export",
        "--format",
        "coco",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let parsed = labels::coco::parse(
        &std::fs::read(out.join("annotations/instances_train.json")).expect("written"),
    )
    .expect("exported COCO parses");
    assert_eq!(parsed.len(), 9);
    // Roboflow COCO frames come back exactly.
    let orig = labels::coco::parse(
        &std::fs::read(fixture(
            "datumaro/roboflow_dataset/coco/train/_annotations.coco.json",
        ))
        .expect("fixture"),
    )
    .expect("fixture parses");
    for o in &orig {
        let back = parsed
            .iter()
            .find(|f| f.frame == o.frame)
            .expect("frame exported");
        assert_close(
            &pixel_boxes(back, 1.0, 1.0),
            &pixel_boxes(o, 1.0, 1.0),
            1e-9,
            &o.frame,
        );
    }
    // Demo YOLO frames get their size from the JPEG header (`file` says frame_000 is 15x10).
    let sizes: Vec<(u32, u32)> = (0..6)
        .map(|i| {
            let b =
                std::fs::read(fixture(&format!("demo/images/frame_{i:03}.jpg"))).expect("fixture");
            dsv::export::image_size(&b).expect("a JPEG size")
        })
        .collect();
    assert_eq!(sizes[0], (15, 10));
    for ((stem, orig), (w, h)) in demo_frames().into_iter().zip(sizes) {
        let back = parsed
            .iter()
            .find(|f| f.frame == format!("{stem}.jpg"))
            .expect("frame exported");
        assert_eq!((back.width, back.height), (Some(w), Some(h)));
        let (w, h) = (f64::from(w), f64::from(h));
        assert_close(
            &pixel_boxes(back, w, h),
            &pixel_boxes(&orig, w, h),
            1e-6,
            &stem,
        );
    }
}

/// A JPEG whose frame header gives height 0 ("given later by a DNL marker"):
/// the export used to take 16x0 as its size, writing `"height":0` and boxes
/// squashed to nothing; a size it cannot read must stop the conversion instead.
#[test]
fn export_of_a_frame_whose_jpeg_header_gives_height_0_writes_no_height_0() {
    let repo = TestRepo::init();
    // SOI, APP0 (JFIF), SOF0 with height 0 and width 16, EOI.
    let mut jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    jpeg.extend(b"\xff\xc0\x00\x0b\x08\x00\x00\x00\x10\x01\x01\x11\x00\xff\xd9");
    repo.write("images/f.jpg", &jpeg);
    repo.write("labels/f.txt", "0 0.5 0.5 0.25 0.25\n");
    repo.write("data.yaml", "names: ['cat']\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a frame of unknown height"]);
    let out = repo.home().join("coco-out");
    let r = repo.fails([
        "export",
        "--format",
        "coco",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(
        r.stderr
            .contains("\"images/f.jpg\" has normalized boxes but no image size"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "a failed export leaves nothing behind");
    // The YOLO export needs no size, and keeps the boxes as they are.
    let yolo = repo.home().join("yolo-out");
    repo.ok([
        "export",
        "--format",
        "yolo",
        "--out",
        yolo.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        std::fs::read_to_string(yolo.join("labels/train/f.txt")).expect("label written"),
        "0 0.5 0.5 0.25 0.25\n"
    );
}

#[test]
fn export_links_clean_frames_and_writes_a_manifest() {
    use std::os::unix::fs::MetadataExt;
    let repo = demo_repo();
    // A modified worktree frame must not be linked: the export is of the commit.
    repo.write("demo/images/frame_001.jpg", b"changed in the worktree");
    let out = repo.home().join("voc-out");
    let r = repo.ok([
        "export",
        "--format",
        "voc",
        "--out",
        out.to_str().expect("utf-8"),
        "--where",
        r#"path.startsWith("demo/")"#,
        "--link",
        "hard",
    ]);
    assert!(
        r.stderr
            .contains("6 frames (0 reflinked, 0 copied, 5 linked, 1 written)"),
        "{}",
        r.stderr
    );
    let linked = std::fs::metadata(out.join("JPEGImages/frame_000.jpg")).expect("frame");
    assert_eq!(
        linked.ino(),
        std::fs::metadata(repo.path("demo/images/frame_000.jpg"))
            .expect("frame")
            .ino()
    );
    assert_eq!(
        std::fs::read(out.join("JPEGImages/frame_001.jpg")).expect("frame"),
        std::fs::read(fixture("demo/images/frame_001.jpg")).expect("fixture")
    );
    let voc = labels::voc::parse(
        &std::fs::read(out.join("Annotations/frame_004.xml")).expect("voc"),
        &ParseContext::default(),
    )
    .expect("exported VOC parses");
    let classes: Vec<&str> = voc.objects.iter().map(|o| o.class.as_str()).collect();
    assert_eq!(classes, ["cat", "person"]);
    // A non-empty output directory is refused.
    let r = repo.fails([
        "export",
        "--format",
        "kitti",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
    // Manifest: a lineage line, then one line per frame with id, size, labels
    // and attributes.
    repo.ok(["meta", "set", "coco/val/val_001.jpg", "split=val"]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "meta"]);
    let m = repo.home().join("manifest.jsonl");
    repo.ok(["export", "--manifest", m.to_str().expect("utf-8")]);
    let text = std::fs::read_to_string(&m).expect("manifest");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 1 + 9);
    assert!(rows[0]["lineage"]["commit"].is_string(), "{}", rows[0]);
    let val = rows
        .iter()
        .find(|r| r["path"] == "coco/val/val_001.jpg")
        .expect("val frame");
    assert_eq!(val["attributes"]["split"], "val");
    assert_eq!(
        val["size"],
        std::fs::metadata(fixture("datumaro/roboflow_dataset/coco/val/val_001.jpg"))
            .expect("fixture")
            .len()
    );
    assert_eq!(val["id"].as_str().map(str::len), Some(64));
    let f4 = rows
        .iter()
        .find(|r| r["path"] == "demo/images/frame_004.jpg")
        .expect("frame 4");
    assert_eq!(f4["labels"].as_array().map(Vec::len), Some(2));
}

fn records_read(out: &std::process::Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.trim().strip_prefix("records read: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no read count in {err:?}"))
}

/// Runs `dsv query ARGS` with no index file to start from (so the index is
/// built, from whatever the parse caches hold): its output and the number of
/// object-store records it read.
fn query_reads(repo: &TestRepo, args: &[&str]) -> (String, u64) {
    std::fs::remove_dir_all(repo.path(".dsv/cache/query")).ok();
    let out = repo
        .cmd()
        .arg("query")
        .args(args)
        .env("DSV_DEBUG_READS", "1")
        .env("DSV_QUERY_NO_DERIVE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout.clone()).unwrap(),
        records_read(&out),
    )
}

#[test]
fn label_files_split_by_a_subdirectory_are_cached_as_one_group() {
    // In path order labels/s/b/... sorts between labels/s/a... and labels/s/c...,
    // so the files of labels/s come in two runs: they must still make one
    // group of the parse cache, or the pack would hold a key twice and be refused.
    let repo = TestRepo::init();
    for (dir, names) in [
        ("s", ["a0", "a1", "c0", "c1"]),
        ("s/b", ["x0", "x1", "x2", "x3"]),
    ] {
        for n in names {
            repo.write(format!("images/{dir}/{n}.jpg"), format!("jpg {dir} {n}"));
            repo.write(format!("labels/{dir}/{n}.txt"), "0 0.5 0.5 0.1 0.1\n");
        }
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let reads = || {
        let (out, reads) = query_reads(&repo, &["true", "--count"]);
        assert_eq!(out.trim(), "8");
        reads
    };
    let first = reads();
    let second = reads();
    // The second build takes all eight label files from the pack.
    assert!(first >= second + 8, "{first} then {second} records read");
}

#[test]
fn a_new_version_parses_only_its_changed_label_files() {
    let repo = TestRepo::init();
    let mut meta = String::new();
    for d in 0..5 {
        for f in 0..40 {
            repo.write(format!("images/s{d}/f{f:02}.jpg"), format!("jpg {d} {f}"));
            repo.write(
                format!("labels/s{d}/f{f:02}.txt"),
                format!("{} 0.5 0.5 0.1 0.{f:02}\n", f % 3),
            );
            let w = if f % 2 == 0 { "rain" } else { "sun" };
            meta.push_str(&format!(
                "{{\"path\":\"images/s{d}/f{f:02}.jpg\",\"weather\":\"{w}\"}}\n"
            ));
        }
    }
    repo.write("meta.jsonl", meta);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let q = r#"weather == "sun" && objects.exists(o, o.class == "2")"#;
    let a = repo.ok(["query", q, "--paths"]).stdout;
    // f07 (sun, class 1) becomes class 2 in every directory.
    for d in 0..5 {
        repo.write(format!("labels/s{d}/f07.txt"), "2 0.5 0.5 0.2 0.2\n");
    }
    repo.ok(["commit", "-a", "-m", "b"]);
    // The matching paths, and how many records the query read.
    let counted_query = || query_reads(&repo, &[q, "--paths"]);
    let (b, reads) = counted_query();
    // Built in full (not derived from a's index): the commit, trees (root,
    // images, labels, ten directories) and the five changed label files
    // (the sidecar's rows are cached): about 20. Parsing all 200 label files
    // again would read over 200.
    assert!(reads <= 30, "{reads} records read");
    assert!(reads >= 10, "{reads}: the counter counts");
    assert_eq!(b, repo.ok(["query", q, "--paths", "--no-cache"]).stdout);
    let count = |s: &str| s.lines().count();
    // Sun frames with class 2: f05, f11, ..., f35 (f % 6 == 5) in each
    // directory; f07 joins them.
    assert_eq!(count(&a), 5 * 6);
    assert_eq!(count(&b), 5 * 7);
    assert!(b.contains("images/s3/f07.jpg") && !a.contains("images/s3/f07.jpg"));

    // One pack of parses is kept. A byte changed in it loses the group of
    // label files it falls in (one directory): those are parsed again, with
    // the same answer.
    let packs: Vec<_> = std::fs::read_dir(repo.path(".dsv/cache/query-labels"))
        .expect("pack dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let mut bytes = std::fs::read(&packs[0]).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x20;
    std::fs::write(&packs[0], bytes).unwrap();
    let (again, reads) = counted_query();
    assert!((50..=100).contains(&reads), "{reads} records read");
    assert_eq!(again, b);
}

#[test]
fn an_unchanged_sidecar_is_read_once_and_a_changed_one_again() {
    let repo = TestRepo::init();
    let mut meta = String::new();
    for f in 0..6 {
        repo.write(format!("images/f{f}.jpg"), format!("jpg {f}"));
        repo.write(format!("labels/f{f}.txt"), "0 0.5 0.5 0.1 0.1\n");
        let w = if f % 2 == 0 { "rain" } else { "sun" };
        meta.push_str(&format!(
            "{{\"path\":\"images/f{f}.jpg\",\"weather\":\"{w}\"}}\n"
        ));
    }
    repo.write("meta.jsonl", meta);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let q = r#"weather == "rain""#;
    let run = || query_reads(&repo, &[q, "--paths"]);
    let (first, _) = run();
    assert_eq!(
        lines(&first),
        ["images/f0.jpg", "images/f2.jpg", "images/f4.jpg"]
    );
    let (cached, with_rows) = run();
    assert_eq!(cached, first);
    // Without the cached rows the sidecar (one record) is read again.
    std::fs::remove_dir_all(repo.path(".dsv/cache/query-sidecar")).unwrap();
    let (again, without_rows) = run();
    assert_eq!(again, first);
    assert_eq!(without_rows, with_rows + 1);

    // Rows damaged in the cache are not used: the sidecar is read again.
    let packs: Vec<_> = std::fs::read_dir(repo.path(".dsv/cache/query-sidecar"))
        .expect("sidecar cache")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let mut bytes = std::fs::read(&packs[0]).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"rain")
        .expect("a row in the pack");
    bytes[at..at + 4].copy_from_slice(b"sun!");
    std::fs::write(&packs[0], bytes).unwrap();
    let (damaged, reads) = run();
    assert_eq!(damaged, first);
    assert_eq!(reads, without_rows);

    // A new sidecar (another content id) is read, not the old rows.
    repo.ok(["meta", "set", "images/f1.jpg", "weather=rain"]);
    repo.ok(["commit", "-a", "-m", "b"]);
    let (b, _) = run();
    assert_eq!(
        lines(&b),
        [
            "images/f0.jpg",
            "images/f1.jpg",
            "images/f2.jpg",
            "images/f4.jpg"
        ]
    );
    assert_eq!(b, repo.ok(["query", q, "--paths", "--no-cache"]).stdout);
    // Back at the first version its rows are read once more, then cached again.
    std::fs::remove_dir_all(repo.path(".dsv/cache/query")).ok();
    assert_eq!(repo.ok(["query", q, "--paths", "HEAD~1"]).stdout, first);
}

/// The index files of the repository, by name.
fn index_files(repo: &TestRepo) -> BTreeMap<String, Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(repo.path(".dsv/cache/query")) else {
        return BTreeMap::new();
    };
    rd.map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Commits an edit, queries the new commit, and checks whether its index was
/// derived from the last one and that it is the index a full build gives,
/// byte for byte; returns the matching paths.
fn step(repo: &TestRepo, q: &str, what: &str, edit: &dyn Fn(), derived: bool) -> String {
    edit();
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", what]);
    let before = index_files(repo);
    let out = repo
        .cmd()
        .args(["query", q, "--paths"])
        .env("DSV_TRACE_PERF", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{what}: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.contains("perf: query.derive "),
        derived,
        "{what}: {err}"
    );
    let paths = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        paths,
        repo.ok(["query", q, "--paths", "--no-cache"]).stdout,
        "{what}"
    );
    let mut made: Vec<(String, Vec<u8>)> = index_files(repo)
        .into_iter()
        .filter(|(n, _)| !before.contains_key(n))
        .collect();
    assert_eq!(made.len(), 1, "{what}");
    let (name, _) = made.pop().unwrap();
    // A derived index may be an overlay on an earlier version's: compared as
    // the version's full encoding.
    let bytes = dsv::query::index::full_encoding(&repo.path(".dsv"), &name)
        .unwrap_or_else(|| panic!("{what}: the new index file does not read"));
    std::fs::remove_file(repo.path(format!(".dsv/cache/query/{name}"))).unwrap();
    let full = repo
        .cmd()
        .args(["query", q, "--count"])
        .env("DSV_QUERY_NO_DERIVE", "1")
        .output()
        .unwrap();
    assert!(full.status.success(), "{what}: {full:?}");
    let rebuilt = index_files(repo)
        .remove(&name)
        .expect("the same index file");
    assert!(
        bytes == rebuilt,
        "{what}: the derived index differs from a full build"
    );
    paths
}

#[test]
fn a_new_versions_index_is_derived_from_the_last_one_and_equals_a_full_build() {
    let repo = TestRepo::init();
    repo.write("data.yaml", "names: [car, person, cone]\n");
    let mut meta = String::new();
    for d in 0..3 {
        for f in 0..12 {
            repo.write(format!("images/s{d}/f{f:02}.jpg"), format!("jpg {d} {f}"));
            let mut label = String::new();
            for k in 0..f % 3 {
                label.push_str(&format!("{k} 0.5 0.5 0.1 0.{f:02}\n"));
            }
            repo.write(format!("labels/s{d}/f{f:02}.txt"), label);
            let w = if f % 2 == 0 { "rain" } else { "sun" };
            let preds = if f == 1 {
                r#","predictions":[{"class":"car","box":[1,2,3,4],"score":0.25}]"#
            } else {
                ""
            };
            meta.push_str(&format!(
                "{{\"path\":\"images/s{d}/f{f:02}.jpg\",\"weather\":\"{w}\"{preds}}}\n"
            ));
        }
    }
    repo.write("meta.jsonl", meta);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let q = r#"has(attrs.weather) && weather == "rain" || objects.exists(o, o.class == "cone")"#;
    repo.ok(["query", q, "--count"]);

    let relabelled = step(
        &repo,
        q,
        "relabel",
        &|| {
            repo.write("labels/s0/f01.txt", "0 0.25 0.5 0.1 0.01\n"); // moved
            repo.write(
                "labels/s1/f02.txt",
                "2 0.5 0.5 0.1 0.02\n1 0.5 0.5 0.1 0.02\n",
            ); // class
            repo.write("labels/s2/f02.txt", ""); // emptied
            repo.write(
                "labels/s0/f04.txt",
                "0 0.5 0.5 0.1 0.04\n2 0.1 0.1 0.1 0.1\n",
            ); // added
            repo.write("images/s1/f05.jpg", "new pixels");
            repo.write("images/s2/f07.jpg", "new pixels 7");
            repo.write("labels/s2/f07.txt", "2 0.3 0.3 0.1 0.1\n");
        },
        true,
    );
    // f07 is a sun frame: it matches by its new cone only.
    assert!(relabelled.contains("images/s2/f07.jpg"), "{relabelled}");
    step(
        &repo,
        q,
        "pixels",
        &|| repo.write("images/s0/f03.jpg", "other pixels"),
        true,
    );
    step(
        &repo,
        q,
        "new frame",
        &|| {
            repo.write("images/s0/f99.jpg", "jpg 99");
            repo.write("labels/s0/f99.txt", "2 0.5 0.5 0.1 0.1\n");
        },
        false,
    );
    step(
        &repo,
        q,
        "relabel again",
        &|| repo.write("labels/s0/f99.txt", "1 0.5 0.5 0.1 0.1\n"),
        true,
    );
    step(
        &repo,
        q,
        "sidecar",
        &|| {
            repo.ok(["meta", "set", "images/s0/f05.jpg", "weather=rain"]);
        },
        false,
    );
    step(
        &repo,
        q,
        "names",
        &|| repo.write("data.yaml", "names: [car, person, cone, bus]\n"),
        false,
    );
    step(
        &repo,
        q,
        "unparsable",
        &|| repo.write("labels/s1/f01.txt", "not a box\n"),
        false,
    );
    // The last index has a warning: the next one is built in full too.
    step(
        &repo,
        q,
        "after a warning",
        &|| repo.write("labels/s1/f03.txt", "2 0.5 0.5 0.2 0.2\n"),
        false,
    );
}

#[test]
fn a_derived_index_merges_every_label_file_of_a_frame_as_a_full_build_does() {
    let repo = TestRepo::init();
    repo.write(
        "dsv.toml",
        concat!(
            "[[labels]]\npath = \"labels/*.txt\"\nformat = \"yolo\"\nframes = \"images\"\n\n",
            "[[labels]]\npath = \"kitti/*.txt\"\nformat = \"kitti\"\nframes = \"images\"\n",
        ),
    );
    let kitti = |class: &str, x: u32| {
        format!(
            "{class} 0.00 0 -1.58 {x}.00 173.33 {}.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n",
            x + 30
        )
    };
    for f in 0..6 {
        repo.write(format!("images/f{f}.png"), format!("png {f}"));
        repo.write(
            format!("labels/f{f}.txt"),
            format!("{} 0.5 0.5 0.1 0.1\n", f % 2),
        );
        repo.write(format!("kitti/f{f}.txt"), kitti("Car", 100 + f));
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let q = r#"objects.filter(o, o.class == "Pedestrian").size() > 0 && objects.exists(o, o.class == "1")"#;
    assert_eq!(repo.ok(["query", "true", "--count"]).stdout.trim(), "6");
    let both = repo.ok(["query", "objects.size() == 2", "--count"]).stdout;
    assert_eq!(both.trim(), "6", "each frame has a YOLO and a KITTI object");
    let paths = step(
        &repo,
        q,
        "kitti class",
        &|| {
            repo.write("kitti/f1.txt", kitti("Pedestrian", 7));
            repo.write("kitti/f2.txt", kitti("Pedestrian", 9));
        },
        true,
    );
    assert_eq!(lines(&paths), ["images/f1.png"]);
    step(
        &repo,
        q,
        "both files",
        &|| {
            repo.write("kitti/f3.txt", kitti("Pedestrian", 3));
            repo.write("labels/f3.txt", "1 0.2 0.2 0.1 0.1\n0 0.6 0.6 0.1 0.1\n");
        },
        true,
    );
}

/// A committed repository of three directories of twelve frames, each with
/// a YOLO label file.
fn relabel_repo() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("data.yaml", "names: [car, person, cone]\n");
    for d in 0..3 {
        for f in 0..12 {
            repo.write(format!("images/s{d}/f{f:02}.jpg"), format!("jpg {d} {f}"));
            repo.write(
                format!("labels/s{d}/f{f:02}.txt"),
                format!("{} 0.5 0.5 0.1 0.1\n", f % 3),
            );
        }
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    repo
}

/// The magic of each index file, by name.
fn index_magics(repo: &TestRepo) -> BTreeMap<String, Vec<u8>> {
    index_files(repo)
        .into_iter()
        .map(|(n, b)| (n, b.get(..8).unwrap_or_default().to_vec()))
        .collect()
}

/// Relabels one file, commits, and checks the query of the new commit
/// against one without caches; returns the index file made.
fn relabel(repo: &TestRepo, file: &str, class: u32) -> String {
    repo.write(file, format!("{class} 0.25 0.5 0.1 0.1\n"));
    repo.ok(["commit", "-a", "-m", file]);
    let before = index_files(repo);
    let q = r#"objects.exists(o, o.class == "cone")"#;
    assert_eq!(
        repo.ok(["query", q, "--paths"]).stdout,
        repo.ok(["query", q, "--paths", "--no-cache"]).stdout,
        "{file}"
    );
    let made: Vec<String> = index_files(repo)
        .into_keys()
        .filter(|n| !before.contains_key(n))
        .collect();
    assert_eq!(made.len(), 1, "{file}: {made:?}");
    made.into_iter().next().unwrap_or_default()
}

#[test]
fn a_new_versions_index_is_an_overlay_on_an_earlier_one_whose_file_is_kept_while_needed() {
    let repo = relabel_repo();
    repo.ok(["query", "true", "--count"]);
    let base = index_files(&repo)
        .into_keys()
        .next()
        .expect("an index file");
    assert_eq!(index_magics(&repo)[&base], b"DSVQIX7\0");
    // Six relabels: each index holds only its changed frames over the base,
    // which outlives the four files otherwise kept.
    for k in 0..6 {
        let made = relabel(&repo, &format!("labels/s{}/f0{k}.txt", k % 3), 2);
        let files = index_files(&repo);
        assert_eq!(files[&made].get(..8), Some(&b"DSVQIP7\0"[..]), "{k}");
        assert!(files[&made].len() * 4 < files[&base].len(), "{k}");
        assert!(files.contains_key(&base), "{k}: the base was removed");
        assert!(files.len() <= 5, "{k}: {:?}", files.keys());
    }
    // A new frame: built in full; the overlays after it lie on that one, and
    // once no kept file needs the first base it goes.
    repo.write("images/s0/f99.jpg", "jpg 99");
    repo.write("labels/s0/f99.txt", "2 0.5 0.5 0.1 0.1\n");
    let full = relabel(&repo, "labels/s1/f07.txt", 0);
    assert_eq!(index_magics(&repo)[&full], b"DSVQIX7\0");
    for k in 0..4 {
        let made = relabel(&repo, &format!("labels/s2/f0{k}.txt"), 1);
        assert_eq!(index_magics(&repo)[&made], b"DSVQIP7\0", "{k}");
    }
    let files = index_files(&repo);
    assert!(!files.contains_key(&base), "{:?}", files.keys());
    assert!(files.contains_key(&full), "{:?}", files.keys());
}

#[test]
fn an_overlay_whose_base_is_gone_or_another_versions_is_rebuilt_not_misread() {
    let repo = relabel_repo();
    let q = r#"objects.exists(o, o.class == "cone")"#;
    repo.ok(["query", q, "--count"]);
    let a = index_files(&repo)
        .into_keys()
        .next()
        .expect("an index file");
    relabel(&repo, "labels/s0/f02.txt", 0);
    let c = relabel(&repo, "labels/s1/f05.txt", 1);
    assert_eq!(index_magics(&repo)[&c], b"DSVQIP7\0");
    let want = repo.ok(["query", q, "--paths", "--no-cache"]).stdout;
    // A later version with one more cone, its index built in full.
    repo.write("labels/s2/f00.txt", "2 0.5 0.5 0.1 0.1\n");
    repo.ok(["commit", "-a", "-m", "e"]);
    let before = index_files(&repo);
    let out = repo
        .cmd()
        .args(["query", q, "--count"])
        .env("DSV_QUERY_NO_DERIVE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let e = index_files(&repo)
        .into_keys()
        .find(|n| !before.contains_key(n))
        .expect("e's index");
    let dir = repo.path(".dsv/cache/query");
    // That version's index where the base's was: not read as the base.
    std::fs::copy(dir.join(&e), dir.join(&a)).unwrap();
    assert_eq!(repo.ok(["query", q, "--paths", "HEAD~1"]).stdout, want);
    // The base gone: the overlay is not read either.
    let base_of_c = index_magics(&repo);
    assert_eq!(base_of_c[&c], b"DSVQIP7\0", "c derived again");
    for (name, m) in &base_of_c {
        if m == b"DSVQIX7\0" {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }
    assert_eq!(repo.ok(["query", q, "--paths", "HEAD~1"]).stdout, want);
    assert_eq!(index_magics(&repo)[&c], b"DSVQIX7\0", "c built in full");
}

#[test]
fn an_index_file_of_the_previous_format_is_rebuilt_not_read() {
    let repo = relabel_repo();
    let q = r#"objects.exists(o, o.class == "cone")"#;
    let want = repo.ok(["query", q, "--paths", "--no-cache"]).stdout;
    repo.ok(["query", q, "--count"]);
    let name = index_files(&repo)
        .into_keys()
        .next()
        .expect("an index file");
    // The head of a `dsv-query-9` file (magic `DSVQIX6`, no record tables)
    // where this version's file is: not read, rebuilt.
    let path = repo.path(format!(".dsv/cache/query/{name}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..8].copy_from_slice(b"DSVQIX6\0");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(repo.ok(["query", q, "--paths"]).stdout, want);
    assert_eq!(index_magics(&repo)[&name], b"DSVQIX7\0");
    // As the newest file it is not derived from either.
    std::fs::write(&path, &bytes).unwrap();
    repo.write("labels/s0/f00.txt", "2 0.5 0.5 0.1 0.1\n");
    repo.ok(["commit", "-a", "-m", "b"]);
    let out = repo
        .cmd()
        .args(["query", q, "--paths"])
        .env("DSV_TRACE_PERF", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("perf: query.derive "), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        repo.ok(["query", q, "--paths", "--no-cache"]).stdout
    );
}

/// A LEB128 varint of `b` at `*at`, moving past it.
fn read_varint(b: &[u8], at: &mut usize) -> usize {
    let mut v = 0usize;
    for shift in (0..64).step_by(7) {
        let x = b[*at];
        *at += 1;
        v |= usize::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            break;
        }
    }
    v
}

#[test]
fn a_damaged_record_table_makes_the_next_index_built_in_full_not_misread() {
    let repo = relabel_repo();
    let q = r#"objects.exists(o, o.class == "cone")"#;
    repo.ok(["query", q, "--count"]);
    let a = rev_id(&repo, "HEAD");
    let name = index_files(&repo)
        .into_keys()
        .next()
        .expect("an index file");
    // One chunk: magic, tree, chunk count, frame count, byte length, the
    // records, then the record table (an offset per 16 records and a check).
    let path = repo.path(format!(".dsv/cache/query/{name}"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"DSVQIX7\0");
    let mut at = 40;
    assert_eq!(read_varint(&bytes, &mut at), 1, "one chunk");
    assert_eq!(read_varint(&bytes, &mut at), 36, "36 frames");
    let len = read_varint(&bytes, &mut at);
    let table = at + len;
    // 36 frames: offsets of records 0, 16 and 32, then 16 bytes of check.
    for (k, what) in [(8, "an offset"), (3 * 8 + 3, "the check")] {
        let mut damaged = bytes.clone();
        damaged[table + k] ^= 0x04;
        std::fs::write(&path, &damaged).unwrap();
        // The version itself still reads (its table is only for deriving).
        assert_eq!(
            repo.ok(["query", q, "--paths", &a]).stdout,
            repo.ok(["query", q, "--paths", "--no-cache", &a]).stdout,
            "{what}"
        );
        assert_eq!(index_files(&repo).len(), 1, "{what}: read, not rebuilt");
        // The next version is not derived from it, and answers right.
        repo.write("labels/s1/f04.txt", format!("2 0.{k} 0.5 0.1 0.1\n"));
        repo.ok(["commit", "-a", "-m", what]);
        let out = repo
            .cmd()
            .args(["query", q, "--paths"])
            .env("DSV_TRACE_PERF", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("perf: query.derive "), "{what}: {err}");
        assert!(err.contains("perf: query.derive-none"), "{what}: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            repo.ok(["query", q, "--paths", "--no-cache"]).stdout,
            "{what}"
        );
        // Only the damaged file is the newest to derive from.
        for (n, _) in index_files(&repo) {
            if n != name {
                std::fs::remove_file(repo.path(format!(".dsv/cache/query/{n}"))).unwrap();
            }
        }
    }
    // Intact, it is derived from.
    std::fs::write(&path, &bytes).unwrap();
    repo.write("labels/s1/f05.txt", "0 0.5 0.5 0.1 0.1\n");
    repo.ok(["commit", "-a", "-m", "intact"]);
    let out = repo
        .cmd()
        .args(["query", q, "--paths"])
        .env("DSV_TRACE_PERF", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("perf: query.derive "), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        repo.ok(["query", q, "--paths", "--no-cache"]).stdout
    );
}

#[test]
fn a_selection_branch_is_reviewed_with_three_dots_showing_only_its_changes() {
    let repo = selection_repo();
    repo.ok(["switch", "label0"]);
    repo.write("demo/labels/frame_003.txt", "0 0.05 0.2 0.1 0.4\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "relabel"]);
    repo.ok(["switch", "main"]);
    // main moves on meanwhile; `...` leaves that out, as in git.
    repo.write("demo/labels/frame_000.txt", "2 0.1 0.3 0.2 0.2\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "main moves"]);

    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["diff", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&repo.ok(all).stdout).expect("JSON")
    };
    let d = json(&["main...label0"]);
    let files: Vec<&str> = d["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(files, ["demo/labels/frame_003.txt"], "{d:#}");
    assert_eq!(d["frames"]["removed"].as_array().map(Vec::len), Some(0));
    // The base is the selection commit, the label0 branch's first commit.
    assert_eq!(d["from"].as_str(), Some(rev_id(&repo, "label0~1").as_str()));

    // Two revisions compare the trees, and say how to review the branch instead.
    let r = repo.ok(["diff", "--stat", "main", "label0"]);
    assert!(r.stderr.contains("dsv diff main...label0"), "{r}");
    assert!(r.stdout.contains("demo/images/frame_000.jpg"), "{r}");

    // Ordinary branches: `...` compares with the merge base.
    repo.ok(["branch", "side", "main~1"]);
    repo.ok(["switch", "side"]);
    repo.write("demo/labels/frame_005.txt", "1 0.5 0.5 0.2 0.2\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "side"]);
    let d = json(&["main...side"]);
    assert_eq!(d["from"].as_str(), Some(rev_id(&repo, "main~1").as_str()));
    // An empty side is HEAD (side, here), as in git.
    assert_eq!(json(&["main..."])["from"], d["from"]);
    let r = repo.run(["diff", "--staged", "main...side"]);
    assert_eq!(r.code, 2, "{r}");
}

/// `stats --json`'s counts, without the commit id.
fn stats_json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["stats", "--json"];
    all.extend_from_slice(args);
    let v: serde_json::Value = serde_json::from_str(&repo.ok(all).stdout).expect("JSON");
    v["stats"].clone()
}

#[test]
fn stats_counts_sidecar_frame_attributes_as_stats_where_true_does() {
    let repo = demo_repo();
    repo.ok(["meta", "set", "demo/images/frame_000.jpg", "weather=rain"]);
    repo.ok(["meta", "set", "demo/images/frame_001.jpg", "weather=snow"]);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "meta"]);
    let all = stats_json(&repo, &[]);
    assert_eq!(all["frame_attributes"]["weather"]["rain"], 1, "{all:#}");
    assert_eq!(all["frame_attributes"]["weather"]["snow"], 1, "{all:#}");
    let slice = stats_json(&repo, &["--where", "true"]);
    for key in [
        "frames",
        "labelled_frames",
        "empty_label_frames",
        "objects",
        "classes",
        "attributes",
        "frame_attributes",
    ] {
        assert_eq!(all[key], slice[key], "{key}");
    }
    // The same figures when the statistics cache answers.
    assert_eq!(stats_json(&repo, &[]), all);
}

#[test]
fn stats_frames_without_labels_ignores_coco_images_not_in_the_tree() {
    let repo = TestRepo::init();
    // One COCO file describes three images; only one of them is in the dataset,
    // which also holds two frames no label file describes.
    let coco = serde_json::json!({
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
            {"id": 2, "file_name": "gone1.jpg", "width": 10, "height": 10},
            {"id": 3, "file_name": "gone2.jpg", "width": 10, "height": 10}
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "bus"}]
    });
    repo.write("annotations.json", serde_json::to_vec(&coco).expect("JSON"));
    for f in ["a.jpg", "b.jpg", "c.jpg"] {
        repo.write(f, "not really a jpeg");
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "coco"]);
    let v: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json"]).stdout).expect("JSON");
    let unlabelled = lines(&repo.ok(["query", "size(objects) == 0"]).stdout);
    assert_eq!(unlabelled.len(), 2, "{unlabelled:?}");
    assert_eq!(v["frames_without_labels"], 2, "{v:#}");
    assert_eq!(v["stats"]["labelled_frames"], 1, "{v:#}");
    // Objects are counted over label files; the two entries naming no frame are
    // counted apart.
    assert_eq!(v["stats"]["objects"], 3, "{v:#}");
    assert_eq!(v["stats"]["entries_without_frame"], 2, "{v:#}");
    let text = repo.ok(["stats"]).stdout;
    assert!(text.contains("unpaired labels"), "{text}");
}

/// An expression that cannot mean anything in the version queried is an
/// error naming the column and the nearest known name, never "no match":
/// unknown functions, macros, object fields and attributes, on `query`,
/// `query --branch` (which then records nothing), `stats --where` and
/// `export --where` (which then writes nothing).
#[test]
fn an_expression_naming_unknown_functions_fields_or_attributes_is_an_error() {
    let repo = demo_repo();
    repo.ok(["meta", "set", "demo/images/frame_000.jpg", "weather=rain"]);
    repo.ok(["add", "meta.jsonl"]);
    repo.ok(["commit", "-m", "weather"]);
    let err = |args: &[&str]| {
        let r = repo.expect_code(1, args);
        assert!(r.stdout.is_empty(), "{r}");
        r.stderr
    };
    assert_eq!(
        err(&["query", "nosuchfn(1)"]),
        "error: query: column 1: unknown function `nosuchfn` (functions: contains, size, max, \
         min, startsWith, endsWith, string, bytes, double, int, uint, matches; macros: has, all, \
         exists, exists_one, map, filter)\n"
    );
    assert!(
        err(&["query", r#"objects.exist(o, o.class=="bus")"#]).starts_with(
            "error: query: column 9: unknown function `exist`; did you mean `exists`?"
        )
    );
    assert_eq!(
        err(&["query", "weather == rain"]),
        "error: query: column 12: unknown attribute `rain` (for a string, write \"rain\") \
         (attributes in this version: weather)\n"
    );
    assert_eq!(
        err(&["query", r#"objects.exists(o, o.klass=="bus")"#]),
        "error: query: column 21: objects have no field `klass`; did you mean `class`? \
         (fields: class, box, area, id, attributes, kind)\n"
    );
    let weathr = "error: query: column 1: unknown attribute `weathr`; did you mean `weather`? \
                  (attributes in this version: weather)\n";
    assert_eq!(
        err(&["query", r#"weathr == "rain""#, "--branch", "x"]),
        weathr
    );
    assert!(!repo.exists(".dsv/refs/heads/x"), "no branch recorded");
    assert_eq!(err(&["stats", "--where", r#"weathr == "rain""#]), weathr);
    assert!(
        err(&[
            "export",
            "HEAD",
            "--format",
            "coco",
            "--out",
            "out",
            "--where",
            "weather == rain",
        ])
        .starts_with("error: query: column 12: unknown attribute `rain`")
    );
    assert!(!repo.exists("out"), "nothing exported");
    // The same answers from a cached index as from a new one.
    assert_eq!(err(&["query", r#"weathr == "rain""#, "--no-cache"]), weathr);
    assert_eq!(err(&["query", r#"weathr == "rain""#]), weathr);
}

/// A frame the expression cannot be evaluated on is an error naming the frame
/// (here: an attribute only one frame has, read without `has()`), not a
/// non-match; guarded by `has()` the query answers.
#[test]
fn an_unguarded_optional_attribute_is_an_error_naming_the_frame() {
    let repo = demo_repo();
    repo.ok(["meta", "set", "demo/images/frame_000.jpg", "weather=rain"]);
    repo.ok(["add", "meta.jsonl"]);
    repo.ok(["commit", "-m", "weather"]);
    for args in [
        vec!["query", r#"weather == "rain""#],
        vec!["query", r#"weather == "rain""#, "--branch", "rain"],
        vec!["stats", "--where", r#"weather == "rain""#],
    ] {
        let r = repo.expect_code(1, &args);
        assert!(
            r.stderr.starts_with("error: query: frame ")
                && r.stderr.contains(
                    "has no attribute `weather`; an optional attribute is read after testing it with has(attrs.weather)"
                ),
            "{args:?}: {r}"
        );
    }
    assert!(!repo.exists(".dsv/refs/heads/rain"), "no branch recorded");
    // Comparing a string attribute with a number is never true: an error.
    let r = repo.expect_code(1, ["query", "has(attrs.weather) && weather == 3"]);
    assert_eq!(
        r.stderr,
        "error: query: column 23: `weather` is a string in this version, never equal to 3\n"
    );
    assert_eq!(
        query(&repo, r#"has(attrs.weather) && weather == "rain""#),
        ["demo/images/frame_000.jpg"]
    );
    repo.ok([
        "query",
        r#"has(attrs.weather) && weather == "rain""#,
        "--branch",
        "rain",
    ]);
    assert_eq!(
        repo.ok(["query", "true", "rain", "--count"]).stdout.trim(),
        "1"
    );
}

/// Exit code, stderr and the sidecar after a command, for snapshots.
fn outcome(repo: &TestRepo, r: &common::Run) -> String {
    let sidecar = if repo.exists("meta.jsonl") {
        repo.read_string("meta.jsonl")
    } else {
        "(no sidecar)\n".to_string()
    };
    format!(
        "exit {}\n--- stderr\n{}--- meta.jsonl\n{sidecar}",
        r.code, r.stderr
    )
}

#[test]
fn meta_set_where_tags_every_frame_the_query_selects() {
    let repo = demo_repo();
    let expr = r#"path.startsWith("demo/") && objects.exists(o, o.class == "label_0")"#;
    let selected = query(&repo, expr);
    assert!(selected.len() >= 2, "{selected:?}");
    let r = repo.ok(["meta", "set", "--where", expr, "weather=rain"]);
    repo.insta_settings().bind(|| {
        insta::assert_snapshot!("meta_set_where", outcome(&repo, &r));
    });
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "rain"]);
    assert_eq!(
        query(&repo, r#"has(attrs.weather) && weather == "rain""#),
        selected
    );
    // Paths given as well are tagged too; a query selecting nothing writes nothing.
    let r = repo.ok(["meta", "set", "--where", "size(objects) > 1000", "x=1"]);
    assert_eq!(r.stderr, "no frames selected; nothing changed\n");
    // A malformed expression fails before anything is read or written.
    let r = repo.fails(["meta", "set", "--where", "weather ==", "x=1"]);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    let r = repo.expect_code(2, ["meta", "set", "--where", expr]);
    assert!(r.stderr.contains("KEY=VALUE"), "{}", r.stderr);
    let r = repo.expect_code(
        2,
        ["meta", "set", "--where", expr, "demo/images/frame_001.jpg"],
    );
    assert!(r.stderr.contains("key=value"), "{}", r.stderr);
}

#[test]
fn meta_set_paths_from_a_file_or_stdin_and_an_unknown_path_names_its_line() {
    let repo = demo_repo();
    repo.write(
        "flags.txt",
        "demo/images/frame_001.jpg\r\n\ndemo/images/frame_004.jpg\ndemo/images/frame_001.jpg\n",
    );
    let r = repo.ok(["meta", "set", "--paths-from", "flags.txt", "review=true"]);
    repo.insta_settings().bind(|| {
        insta::assert_snapshot!("meta_set_paths_from_file", outcome(&repo, &r));
    });
    // `-` reads the list from standard input, here straight from `dsv query`.
    let listed = repo
        .ok(["query", r#"path.endsWith("frame_002.jpg")"#])
        .stdout;
    let out = repo
        .cmd()
        .args(["meta", "set", "--paths-from", "-", "review=false"])
        .write_stdin(listed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        repo.read_string("meta.jsonl")
            .contains(r#"{"path":"demo/images/frame_002.jpg","review":false}"#),
        "{}",
        repo.read_string("meta.jsonl")
    );
    // An unknown path is an error naming the list and line; the sidecar stays as it was.
    let before = repo.read_string("meta.jsonl");
    repo.write(
        "bad.txt",
        "demo/images/frame_003.jpg\ndemo/images/missing.jpg\n",
    );
    let r = repo.fails(["meta", "set", "--paths-from", "bad.txt", "review=true"]);
    repo.insta_settings().bind(|| {
        insta::assert_snapshot!("meta_set_paths_from_unknown", outcome(&repo, &r));
    });
    assert_eq!(repo.read_string("meta.jsonl"), before);
    repo.write("bad.txt", "../outside.jpg\n");
    let r = repo.fails(["meta", "set", "--paths-from", "bad.txt", "review=true"]);
    assert!(r.stderr.starts_with("error: bad.txt:1: "), "{}", r.stderr);
}

/// The matches files of `.dsv/cache/query-matches/`, by name.
fn matches_files(repo: &TestRepo) -> BTreeMap<String, Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(repo.path(".dsv/cache/query-matches")) else {
        return BTreeMap::new();
    };
    rd.map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// A matches file (docs/format.md) with another list of positions, its
/// hash made again: what a file of the same version and query could hold.
fn forge_matches(file: &[u8], positions: &[u64]) -> Vec<u8> {
    let varint = |out: &mut Vec<u8>, mut v: u64| loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    };
    let mut out = file[..72].to_vec();
    // The frame count, as it was.
    let mut at = 72;
    while file[at] & 0x80 != 0 {
        at += 1;
    }
    out.extend_from_slice(&file[72..=at]);
    varint(&mut out, positions.len() as u64);
    let mut last = 0;
    for (k, &p) in positions.iter().enumerate() {
        varint(&mut out, if k == 0 { p } else { p - last - 1 });
        last = p;
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

#[test]
fn a_repeated_query_reads_its_kept_matches_and_another_query_or_version_has_its_own() {
    let repo = relabel_repo();
    let cone = r#"objects.exists(o, o.class == "cone")"#;
    let want = repo.ok(["query", cone, "--paths", "--no-cache"]).stdout;
    assert!(matches_files(&repo).is_empty(), "--no-cache keeps nothing");
    assert_eq!(repo.ok(["query", cone, "--paths"]).stdout, want);
    let files = matches_files(&repo);
    assert_eq!(files.len(), 1, "{:?}", files.keys());
    assert_eq!(repo.ok(["query", cone, "--paths"]).stdout, want);
    // Read, not judged again: a list naming the first frame only is what
    // the next query of this version and expression answers.
    let (name, bytes) = files.into_iter().next().unwrap();
    let path = repo.path(format!(".dsv/cache/query-matches/{name}"));
    std::fs::write(&path, forge_matches(&bytes, &[0])).unwrap();
    assert_eq!(
        repo.ok(["query", cone, "--paths"]).stdout,
        "images/s0/f00.jpg\n"
    );
    assert_eq!(repo.ok(["query", cone, "--count"]).stdout, "1\n");
    std::fs::write(&path, &bytes).unwrap();
    // Another expression, another version: files of their own.
    let car = r#"objects.exists(o, o.class == "car")"#;
    let want_car = repo.ok(["query", car, "--paths", "--no-cache"]).stdout;
    assert_eq!(repo.ok(["query", car, "--paths"]).stdout, want_car);
    assert_eq!(matches_files(&repo).len(), 2);
    assert_eq!(repo.ok(["query", cone, "--paths"]).stdout, want);
    relabel(&repo, "labels/s1/f03.txt", 2);
    assert_eq!(matches_files(&repo).len(), 3);
}

#[test]
fn a_damaged_matches_file_is_judged_again_and_rewritten_not_trusted() {
    let repo = relabel_repo();
    let cone = r#"objects.exists(o, o.class == "cone")"#;
    let want = repo.ok(["query", cone, "--paths", "--no-cache"]).stdout;
    assert_eq!(repo.ok(["query", cone, "--paths"]).stdout, want);
    let (name, good) = matches_files(&repo).into_iter().next().expect("a file");
    let path = repo.path(format!(".dsv/cache/query-matches/{name}"));
    // Every byte flipped in turn, the file cut short, emptied: each time the
    // frames are judged and the file written again as it was.
    let mut damaged: Vec<Vec<u8>> = (0..good.len())
        .map(|i| {
            let mut d = good.clone();
            d[i] ^= 0x01;
            d
        })
        .collect();
    damaged.push(good[..good.len() / 2].to_vec());
    damaged.push(Vec::new());
    for (k, d) in damaged.iter().enumerate() {
        std::fs::write(&path, d).unwrap();
        assert_eq!(repo.ok(["query", cone, "--paths"]).stdout, want, "{k}");
        assert_eq!(std::fs::read(&path).unwrap(), good, "{k}: not rewritten");
    }
}

#[test]
fn a_new_versions_first_query_judges_only_the_frames_its_overlay_replaced() {
    let repo = relabel_repo();
    let cone = r#"objects.exists(o, o.class == "cone")"#;
    assert_eq!(
        repo.ok(["query", cone, "--paths"]).stdout,
        repo.ok(["query", cone, "--paths", "--no-cache"]).stdout
    );
    let (name, bytes) = matches_files(&repo).into_iter().next().expect("a file");
    // The base's list made to name frame 0 only (images/s0/f00.jpg, not a
    // cone): a new version's unreplaced frames take their answers from it,
    // its replaced frames are judged.
    std::fs::write(
        repo.path(format!(".dsv/cache/query-matches/{name}")),
        forge_matches(&bytes, &[0]),
    )
    .unwrap();
    repo.write("labels/s1/f03.txt", "2 0.25 0.5 0.1 0.1\n");
    repo.ok(["commit", "-a", "-m", "a cone"]);
    assert_eq!(
        repo.ok(["query", cone, "--paths"]).stdout,
        "images/s0/f00.jpg\nimages/s1/f03.jpg\n"
    );
    assert_eq!(
        index_magics(&repo)
            .values()
            .filter(|m| *m == b"DSVQIP7\0")
            .count(),
        1
    );
}

#[test]
fn overlay_queries_from_kept_matches_equal_a_full_judgement_through_a_chain_of_relabels() {
    let repo = relabel_repo();
    let queries = [
        r#"objects.exists(o, o.class == "cone")"#,
        r#"objects.size() == 1 && objects.exists(o, o.class == "car")"#,
        "true",
    ];
    for q in queries {
        repo.ok(["query", q, "--count"]);
    }
    // Frames starting and stopping to match, the same frame twice, each
    // version's first query (over its overlay's base) and a second one.
    let edits = [
        ("labels/s0/f02.txt", 0),
        ("labels/s1/f05.txt", 2),
        ("labels/s0/f02.txt", 2),
        ("labels/s2/f11.txt", 1),
    ];
    for (file, class) in edits {
        repo.write(file, format!("{class} 0.25 0.5 0.1 0.1\n"));
        repo.ok(["commit", "-a", "-m", file]);
        for q in queries {
            let want = repo.ok(["query", q, "--paths", "--no-cache"]).stdout;
            let count = repo.ok(["query", q, "--count", "--no-cache"]).stdout;
            assert_eq!(
                repo.ok(["query", q, "--count"]).stdout,
                count,
                "{file} {q} count"
            );
            assert_eq!(repo.ok(["query", q, "--paths"]).stdout, want, "{file} {q}");
            assert_eq!(
                repo.ok(["query", q, "--paths"]).stdout,
                want,
                "{file} {q} again"
            );
            assert_eq!(
                repo.ok(["query", q, "--paths", "HEAD~1"]).stdout,
                repo.ok(["query", q, "--paths", "HEAD~1", "--no-cache"])
                    .stdout,
                "{file} {q} before"
            );
        }
    }
}

#[test]
fn frames_at_listed_positions_are_the_versions_frames_there_in_the_order_asked() {
    use dsv::query::{QueryCache, rev_frames_at, rev_index};
    let repo = relabel_repo();
    // The second version's index is an overlay on the first's.
    repo.ok(["query", "true", "--count"]);
    repo.write("labels/s1/f04.txt", "2 0.25 0.5 0.1 0.1\n");
    repo.ok(["commit", "-a", "-m", "relabel"]);
    let open = || {
        dsv::Repository::discover(
            repo.root(),
            dsv::lock::Access::Read,
            &dsv::OpenOptions::default(),
        )
        .unwrap()
    };
    let r = open();
    let cache = QueryCache::open(r.dsv_dir(), &r.settings);
    // Asked before any index of the version is made (built and cached), then
    // from the cached overlay.
    let asked = [16usize, 3, 35, 3, 0, 16];
    let (c1, first) = rev_frames_at(&r, "HEAD", &cache, &asked).unwrap();
    assert!(!first.from_cache);
    let (c2, whole) = rev_index(&r, "HEAD", &cache).unwrap();
    assert_eq!(c1, c2);
    assert_eq!(whole.frames[16].path, "images/s1/f04.jpg");
    assert_eq!(whole.frames[16].objects[0].class, "cone");
    let want: Vec<_> = asked.iter().map(|&p| whole.frames[p].clone()).collect();
    assert_eq!(first.frames, want);
    let (_, again) = rev_frames_at(&r, "HEAD", &cache, &asked).unwrap();
    assert!(again.from_cache);
    assert_eq!(again.frames, want);
    let (_, none) = rev_frames_at(&r, "HEAD", &cache, &[]).unwrap();
    assert!(none.frames.is_empty());
    let (_, older) = rev_frames_at(&r, "HEAD~1", &cache, &[16]).unwrap();
    assert_eq!(older.frames[0].objects[0].class, "person");
    // A position past the last frame is an error naming it, cached or not.
    for cache in [cache, QueryCache::disabled()] {
        let e = rev_frames_at(&r, "HEAD", &cache, &[2, 36]).unwrap_err();
        assert_eq!(e.to_string(), "frame position 36 out of range (36 frames)");
    }
}

#[test]
fn a_versions_frame_count_and_a_querys_positions_are_those_of_its_decoded_index() {
    use dsv::query::{Query, QueryCache, rev_index, rev_query, tree_frame_count, tree_positions};
    let repo = relabel_repo();
    repo.ok(["query", "true", "--count"]);
    repo.write("labels/s1/f04.txt", "2 0.25 0.5 0.1 0.1\n");
    repo.ok(["commit", "-a", "-m", "relabel"]);
    let r = dsv::Repository::discover(
        repo.root(),
        dsv::lock::Access::Read,
        &dsv::OpenOptions::default(),
    )
    .unwrap();
    let q = Query::compile(r#"objects.exists(o, o.class == "cone")"#).unwrap();
    for rev in ["HEAD", "HEAD~1"] {
        let c = dsv::ops::revparse::resolve(&r, rev).unwrap();
        let tree = dsv::object::Commit::load(&r.store, &c).unwrap().tree;
        // Not cached (built), then from the cache (the overlay for HEAD).
        for cache in [
            QueryCache::disabled(),
            QueryCache::open(r.dsv_dir(), &r.settings),
            QueryCache::open(r.dsv_dir(), &r.settings),
        ] {
            let whole = rev_index(&r, rev, &QueryCache::disabled()).unwrap().1;
            assert_eq!(tree_frame_count(&r.store, &tree, &cache).unwrap(), 36);
            assert_eq!(whole.frames.len(), 36);
            let at = tree_positions(&r.store, &tree, &cache, &q).unwrap();
            let want: Vec<String> = rev_query(&r, rev, &QueryCache::disabled(), &q)
                .unwrap()
                .1
                .frames
                .into_iter()
                .map(|f| f.path)
                .collect();
            let got: Vec<String> = at
                .iter()
                .map(|&p| whole.frames[p as usize].path.clone())
                .collect();
            assert!(!want.is_empty(), "{rev}");
            assert_eq!(got, want, "{rev}");
        }
    }
}

/// A CVAT project export names each frame without its subset directory
/// (`images/<subset>/<name>`); the query index finds it there by its `subset`
/// frame attribute, for COCO images carrying one too, when the index is built
/// and when it is derived from the previous version's.
#[test]
fn frames_named_within_their_subset_are_found_for_cvat_and_coco() {
    let repo = TestRepo::init();
    let cvat = |b_objects: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="a.jpg" subset="train" width="4" height="3">
    <box label="car" occluded="0" xtl="0" ytl="0" xbr="2" ybr="2"></box>
  </image>
  <image id="1" name="b.jpg" subset="val" width="4" height="3">{b_objects}</image>
</annotations>
"#
        )
    };
    repo.write("cvat/annotations.xml", cvat(""));
    repo.write("cvat/images/train/a.jpg", b"a");
    repo.write("cvat/images/val/b.jpg", b"b");
    repo.write(
        "coco/annotations.json",
        r#"{"images":[{"id":1,"file_name":"c.jpg","width":4,"height":3,"subset":"train"}],
"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,2,2]}],
"categories":[{"id":1,"name":"car"}]}"#,
    );
    repo.write("coco/images/train/c.jpg", b"c");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    // Every frame of both files found, none reported missing from the version.
    let all_found = |expr: &str| {
        let run = repo.ok(["query", expr]);
        assert!(
            !run.stderr.contains("not in this version"),
            "{}",
            run.stderr
        );
        assert_eq!(
            lines(&run.stdout),
            [
                "coco/images/train/c.jpg",
                "cvat/images/train/a.jpg",
                "cvat/images/val/b.jpg"
            ]
        );
    };
    all_found("true");
    assert_eq!(
        query(&repo, r#"objects.size() > 0 && subset == "train""#),
        ["coco/images/train/c.jpg", "cvat/images/train/a.jpg"]
    );
    // The next version's index (derived from this one's) finds them too.
    repo.write(
        "cvat/annotations.xml",
        cvat(r#"<box label="car" occluded="0" xtl="1" ytl="1" xbr="3" ybr="2"></box>"#),
    );
    repo.ok(["commit", "-a", "-m", "a box on b"]);
    all_found("objects.size() > 0");
}

#[test]
fn an_index_built_into_its_file_is_the_index_built_in_memory() {
    let repo = demo_repo();
    // A query builds the index straight into its file, chunk by chunk.
    let out = repo
        .cmd()
        .args(["query", "true", "--count"])
        .env("DSV_TRACE_PERF", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("perf: query.write "), "{err}");
    let streamed = index_files(&repo);
    assert_eq!(streamed.len(), 1);
    // Writing a selection branch builds the index whole in memory and stores it.
    std::fs::remove_dir_all(repo.path(".dsv/cache")).unwrap();
    let out = repo
        .cmd()
        .args(["query", "true", "--branch", "everything"])
        .env("DSV_TRACE_PERF", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("perf: query.write "), "{err}");
    let whole = index_files(&repo);
    for (name, bytes) in &streamed {
        assert!(
            whole.get(name) == Some(bytes),
            "{name}: the index built into its file differs from the one built in memory"
        );
    }
    // Both answer the same.
    assert_eq!(
        repo.ok(["query", "true", "--paths"]).stdout,
        repo.ok(["query", "true", "--paths", "--no-cache"]).stdout
    );
}
