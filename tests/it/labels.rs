//! End-to-end tests of the label-aware diff, stats and `dsv labels`, on the real
//! sample datasets in `fixtures/`.

use crate::common;

use std::path::Path;

use common::{TestRepo, copy_contents};
use dsv::labels::{self, BBox, FrameLabels, ParseContext, Units};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn diff_json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["diff", "--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&repo.ok(a).stdout).expect("diff --json is JSON")
}

/// (kind, class) of every object change in a diff document, sorted.
fn kinds(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for l in doc["labels"].as_array().expect("labels") {
        for f in l["frames"].as_array().expect("frames") {
            for c in f["changes"].as_array().expect("changes") {
                out.push((
                    c["kind"].as_str().unwrap_or("").to_string(),
                    c["class"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn far_box(units: Units, corner: u32) -> BBox {
    // Boxes far from anything in the fixtures, in two different corners.
    let (x, y, s) = match (units, corner) {
        (Units::Normalized, 0) => (0.95, 0.01, 0.02),
        (Units::Normalized, _) => (0.95, 0.95, 0.02),
        (Units::Pixels, 0) => (9000.0, 10.0, 20.0),
        (Units::Pixels, _) => (9000.0, 9000.0, 20.0),
    };
    BBox { x, y, w: s, h: s }
}

/// The edit every format goes through: in the first frame with objects,
/// object 0 moves by 10% of its width, object 1 changes class, the extra
/// object added for the base version is deleted, and a new one appears.
fn base_and_edited(frames: &[FrameLabels], class1: &str) -> (Vec<FrameLabels>, Vec<FrameLabels>) {
    let mut base = frames.to_vec();
    let i = base
        .iter()
        .position(|f| !f.objects.is_empty())
        .expect("a frame with objects");
    let units = base[i].units;
    let template = base[i].objects[0].clone();
    let extra = |b: BBox| {
        let mut o = template.clone();
        o.bbox = Some(b);
        o.id = None;
        o.geometry = None;
        o
    };
    if base[i].objects.len() < 2 {
        base[i].objects.push(extra(BBox {
            x: 0.5 * far_box(units, 0).x,
            y: 0.5 * far_box(units, 1).y,
            w: far_box(units, 0).w,
            h: far_box(units, 0).h,
        }));
    }
    base[i].objects.push(extra(far_box(units, 0)));
    let mut edited = base.clone();
    let objs = &mut edited[i].objects;
    if let Some(b) = objs[0].bbox.as_mut() {
        b.x += b.w * 0.1;
    }
    objs[0].geometry = None;
    objs[1].class = class1.to_string();
    objs.pop();
    let mut new = template;
    new.bbox = Some(far_box(units, 1));
    new.id = None;
    new.geometry = None;
    objs.push(new);
    // Keep the base's geometry off object 0 too, so the only change is the box.
    base[i].objects[0].geometry = None;
    (base, edited)
}

fn expected(moved: &str, reclassified: &str, removed: &str, added: &str) -> Vec<(String, String)> {
    let mut v = vec![
        ("added".to_string(), added.to_string()),
        ("moved".to_string(), moved.to_string()),
        ("reclassified".to_string(), reclassified.to_string()),
        ("removed".to_string(), removed.to_string()),
    ];
    v.sort();
    v
}

/// Commits `base` then `edited` at `path`, and checks the diff names exactly the edit.
fn check_edit(
    repo: &TestRepo,
    path: &str,
    base: Vec<u8>,
    edited: Vec<u8>,
    frames: &[FrameLabels],
    class1: &str,
) -> serde_json::Value {
    repo.write(path, base);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write(path, edited);
    let i = frames
        .iter()
        .position(|f| !f.objects.is_empty())
        .expect("a frame with objects");
    let objs = &frames[i].objects;
    let doc = diff_json(repo, &[]);
    assert_eq!(
        kinds(&doc),
        expected(&objs[0].class, class1, &objs[0].class, &objs[0].class),
        "{path}: {doc:#}"
    );
    assert_eq!(doc["warnings"].as_array().map(|w| w.len()), Some(0));
    // The same edit, committed, compared between commits and staged.
    repo.ok(["add", "-A"]);
    assert_eq!(kinds(&diff_json(repo, &["--staged"])), kinds(&doc));
    repo.ok(["commit", "-m", "edit"]);
    assert_eq!(kinds(&diff_json(repo, &["HEAD~1", "HEAD"])), kinds(&doc));
    doc
}

#[test]
fn yolo_edit_is_reported_exactly() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    let names: Vec<String> =
        labels::parse_class_names("data.yaml", &std::fs::read(repo.path("data.yaml")).unwrap())
            .unwrap()
            .names;
    let bytes = std::fs::read(repo.path("labels/frame_000.txt")).unwrap();
    let ctx = ParseContext {
        class_names: Some(std::sync::Arc::new(names.clone().into())),
        stem: "frame_000".into(),
    };
    let frame = labels::yolo::parse(&bytes, &ctx).unwrap();
    let (base, edited) = base_and_edited(std::slice::from_ref(&frame), "cat");
    let base_b = labels::yolo::write_with_names(&base[0], &names).unwrap();
    let edited_b = labels::yolo::write_with_names(&edited[0], &names).unwrap();
    let doc = check_edit(
        &repo,
        "labels/frame_000.txt",
        base_b,
        edited_b,
        &[frame],
        "cat",
    );
    let f = &doc["labels"][0]["frames"][0];
    assert_eq!(f["frame_path"], "images/frame_000.jpg");
    assert_eq!(f["units"], "normalized");
    let moved = f["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "moved")
        .unwrap();
    let iou = moved["iou"].as_f64().unwrap();
    assert!((iou - 0.9 / 1.1).abs() < 1e-3, "IoU of a 10% shift: {iou}");
}

#[test]
fn coco_edit_is_reported_exactly() {
    let repo = TestRepo::init();
    copy_contents(
        &fixture("datumaro/coco_dataset/coco_instances"),
        repo.root(),
    );
    let path = "annotations/instances_val.json";
    let frames = labels::coco::parse(&std::fs::read(repo.path(path)).unwrap()).unwrap();
    let class1 = "c";
    let (base, edited) = base_and_edited(&frames, class1);
    let doc = check_edit(
        &repo,
        path,
        labels::coco::write(&base).unwrap(),
        labels::coco::write(&edited).unwrap(),
        &frames,
        class1,
    );
    assert_eq!(doc["labels"][0]["format"], "coco");
    assert_eq!(
        doc["labels"][0]["frames"][0]["frame_path"],
        "images/val/b.jpg"
    );
}

#[test]
fn kitti_edit_is_reported_exactly() {
    let repo = TestRepo::init();
    copy_contents(
        &fixture("datumaro/kitti_dataset/kitti_detection"),
        repo.root(),
    );
    let path = "training/label_2/000030_11.txt";
    let ctx = ParseContext {
        class_names: None,
        stem: "000030_11".into(),
    };
    let frame = labels::kitti::parse(&std::fs::read(repo.path(path)).unwrap(), &ctx).unwrap();
    let (base, edited) = base_and_edited(std::slice::from_ref(&frame), "Tram");
    let doc = check_edit(
        &repo,
        path,
        labels::kitti::write(&base[0]).unwrap(),
        labels::kitti::write(&edited[0]).unwrap(),
        &[frame],
        "Tram",
    );
    assert_eq!(doc["labels"][0]["format"], "kitti");
    assert_eq!(
        doc["labels"][0]["frames"][0]["frame_path"],
        "training/image_2/000030_11.png"
    );
}

#[test]
fn voc_edit_is_reported_exactly() {
    let repo = TestRepo::init();
    copy_contents(&fixture("datumaro/voc_dataset/voc_dataset1"), repo.root());
    let path = "Annotations/2007_000001.xml";
    let ctx = ParseContext {
        class_names: None,
        stem: "2007_000001".into(),
    };
    let frame = labels::voc::parse(&std::fs::read(repo.path(path)).unwrap(), &ctx).unwrap();
    let (base, edited) = base_and_edited(std::slice::from_ref(&frame), "horse");
    let doc = check_edit(
        &repo,
        path,
        labels::voc::write(&base[0]).unwrap(),
        labels::voc::write(&edited[0]).unwrap(),
        &[frame],
        "horse",
    );
    assert_eq!(doc["labels"][0]["format"], "voc");
    assert_eq!(
        doc["labels"][0]["frames"][0]["frame_path"],
        "JPEGImages/2007_000001.jpg"
    );
}

#[test]
fn cvat_edit_is_reported_exactly() {
    let repo = TestRepo::init();
    copy_contents(
        &fixture("datumaro/cvat_dataset/for_images/export_task"),
        repo.root(),
    );
    let path = "train.xml";
    // Datumaro's sample has unlabelled shapes, an error for dsv: labelled here.
    let xml = repo
        .read_string(path)
        .replace("label=\"\"", "label=\"label1\"");
    let frames = labels::cvat::parse(xml.as_bytes()).unwrap();
    let (base, edited) = base_and_edited(&frames, "label2");
    let doc = check_edit(
        &repo,
        path,
        labels::cvat::write(&base).unwrap(),
        labels::cvat::write(&edited).unwrap(),
        &frames,
        "label2",
    );
    assert_eq!(doc["labels"][0]["format"], "cvat");
}

#[test]
fn a_broken_label_file_is_a_warning_unless_strict() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write("labels/frame_001.txt", "1 0.5 0.5 0.2\n");
    repo.write("labels/frame_002.txt", "1 0.1 0.4 0.2 0.9\n");
    let r = repo.ok(["diff"]);
    assert!(
        r.stderr.contains("warning: labels/frame_001.txt:1:"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("labels/frame_002.txt"), "{}", r.stdout);
    let doc = diff_json(&repo, &[]);
    assert_eq!(doc["warnings"][0]["file"], "labels/frame_001.txt");
    assert_eq!(doc["warnings"][0]["line"], 1);
    // The broken file is still listed at file level.
    assert!(
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "labels/frame_001.txt")
    );
    assert_eq!(kinds(&doc), vec![("moved".into(), "label_1".into())]);
    let r = repo.expect_code(1, ["diff", "--strict"]);
    assert!(
        r.stderr.starts_with("error: labels/frame_001.txt:1:") && r.stderr.lines().count() == 1,
        "{}",
        r.stderr
    );
}

#[test]
fn diff_outputs_text_markdown_json() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "v1"]);
    copy_contents(&fixture("demo-edit"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "v2"]);
    let text = repo.ok(["diff", "HEAD~1", "HEAD"]).stdout;
    insta::assert_snapshot!("label_diff_text", text);
    let md = repo
        .ok(["diff", "HEAD~1", "HEAD", "--format", "markdown"])
        .stdout;
    insta::assert_snapshot!("label_diff_markdown", md);
    let json = repo.ok(["diff", "HEAD~1", "HEAD", "--json"]).stdout;
    insta::assert_snapshot!("label_diff_json", json);
    // --format json is --json; -o writes a file.
    assert_eq!(
        repo.ok(["diff", "HEAD~1", "HEAD", "--format", "json"])
            .stdout,
        json
    );
    repo.ok([
        "diff",
        "HEAD~1",
        "HEAD",
        "--format",
        "markdown",
        "-o",
        "review.md",
    ]);
    assert_eq!(std::fs::read_to_string(repo.path("review.md")).unwrap(), md);
    // The HTML review page: every changed frame with its image and both box sets.
    repo.ok([
        "diff",
        "HEAD~1",
        "HEAD",
        "--format",
        "html",
        "-o",
        "review.html",
    ]);
    let html = std::fs::read_to_string(repo.path("review.html")).unwrap();
    let count = |needle: &str| html.matches(needle).count();
    // Moved box: old and new; removed: old; reclassified in place: new only;
    // two added boxes: new.
    assert_eq!(count("class=\"box before\""), 2, "{html}");
    assert_eq!(count("class=\"box after\""), 4, "{html}");
    assert_eq!(
        count("data:image/jpeg;base64,"),
        4,
        "one thumbnail per changed frame"
    );
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
    // Limited to one label file.
    let doc = diff_json(&repo, &["HEAD~1", "HEAD", "--", "labels/frame_001.txt"]);
    assert_eq!(kinds(&doc), vec![("reclassified".into(), "label_1".into())]);
    assert_eq!(doc["frames"]["added"].as_array().map(|a| a.len()), Some(0));
    // Bad threshold is a usage error.
    repo.expect_code(2, ["diff", "--iou-threshold", "1.5"]);
}

/// The object-read count a command printed under `DSV_DEBUG_READS`.
fn records_read(out: &std::process::Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    err.trim()
        .strip_prefix("records read: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no read count in {err:?}"))
}

#[test]
fn stat_reads_only_changed_subtrees() {
    let repo = TestRepo::init();
    for d in 0..50 {
        for f in 0..20 {
            repo.write(
                format!("labels/s{d:02}/f{f:02}.txt"),
                format!("0 0.5 0.5 0.{d:02} 0.{f:02}\n"),
            );
        }
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    repo.write("labels/s07/f03.txt", "1 0.5 0.5 0.2 0.2\n");
    repo.ok(["commit", "-a", "-m", "b"]);
    let out = repo
        .cmd()
        .args(["diff", "HEAD~1", "HEAD", "--stat"])
        .env("DSV_DEBUG_READS", "1")
        .output()
        .unwrap();
    let reads = records_read(&out);
    // The two commits (resolving HEAD~1 reads HEAD too), the two root trees (read
    // once for dsv.toml and once by the walk), `labels` and `s07` on each side:
    // about 12. The 1000 files and 49 unchanged directories are never read.
    assert!(reads <= 14, "{reads} records read");
    assert!(reads >= 8, "{reads}: the counter counts");
}

#[test]
fn stats_of_a_new_version_parses_only_the_changed_label_files() {
    let repo = TestRepo::init();
    for d in 0..5 {
        for f in 0..40 {
            repo.write(
                format!("labels/s{d}/f{f:02}.txt"),
                format!("{} 0.5 0.5 0.1 0.{f:02}\n", f % 3),
            );
        }
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let a = repo.ok(["stats", "--json"]).stdout;
    // Every directory changes, one file in each: the subtree cache answers none
    // of them, the per-file counts answer the 39 unchanged files of each.
    for d in 0..5 {
        repo.write(format!("labels/s{d}/f07.txt"), "2 0.5 0.5 0.2 0.2\n");
    }
    repo.ok(["commit", "-a", "-m", "b"]);
    let out = repo
        .cmd()
        .args(["stats", "--json"])
        .env("DSV_DEBUG_READS", "1")
        .output()
        .unwrap();
    let reads = records_read(&out);
    // Derived from the parent's statistics: the two commits, the root tree of
    // each side (the new one twice: dsv.toml, then the walk), `labels` and the five
    // directories on each side, and the five changed files on each side (counts
    // taken away and added): 28. Parsing all 200 files again would read over 200.
    assert!(reads <= 30, "{reads} records read");
    assert!(reads >= 10, "{reads}: the counter counts");
    // The counts are those of a cold run.
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cold: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json", "--no-cache"]).stdout).unwrap();
    assert_eq!(b, cold);
    let a: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(a["stats"]["classes"]["1"], 65);
    // f07 was class 1 in every directory and is class 2 now.
    assert_eq!(b["stats"]["classes"]["1"], 60);
    assert_eq!(b["stats"]["classes"]["2"], 70);
}

#[test]
fn stats_with_class_names_agree_cold_cached_and_incremental() {
    let repo = TestRepo::init();
    // Index 7 repeats "car": the two indices count as one class.
    repo.write(
        "data.yaml",
        "names: [car, dog, cone, bus, van, kid, cat, car, ox]\n",
    );
    for d in 0..3 {
        for f in 0..30 {
            // 1 to 8 objects over up to 8 classes, some with a score.
            let mut text = String::new();
            for k in 0..=(f % 8) {
                let class = (f + k * 3) % 9;
                let score = if k % 4 == 3 { " 0.9" } else { "" };
                text.push_str(&format!("{class} 0.5 0.5 0.1 0.1{score}\n"));
            }
            repo.write(format!("labels/s{d}/f{f:02}.txt"), text);
        }
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "a"]);
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&repo.ok(args).stdout).unwrap()
    };
    let cold = json(&["stats", "--json", "--no-cache"]);
    let first = repo
        .cmd()
        .args(["stats", "--json"])
        .env("DSV_TRACE_PERF", "1")
        .output()
        .unwrap();
    assert!(first.status.success());
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("perf: stats.walk "), "{stderr}");
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(first, cold);
    assert_eq!(json(&["stats", "--json"]), cold);
    assert!(cold["stats"]["classes"]["car"].as_u64().is_some());
    assert!(cold["stats"]["classes"].get("7").is_none());
    // A new version: the unchanged files' counts come from the cache.
    repo.write("labels/s1/f05.txt", "4 0.5 0.5 0.2 0.2\n");
    repo.ok(["commit", "-a", "-m", "b"]);
    assert_eq!(
        json(&["stats", "--json"]),
        json(&["stats", "--json", "--no-cache"])
    );
}

#[test]
fn stats_on_real_samples() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    copy_contents(
        &fixture("datumaro/kitti_dataset/kitti_detection"),
        &repo.path("kitti"),
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "v1"]);
    let v: serde_json::Value = serde_json::from_str(&repo.ok(["stats", "--json"]).stdout).unwrap();
    let s = &v["stats"];
    // demo: 6 frames, 6 label files (one empty), 8 objects; kitti: 2 frames, 5 objects.
    assert_eq!(s["frames"], 8);
    assert_eq!(s["label_files"], 8);
    assert_eq!(s["objects"], 13);
    assert_eq!(v["frames_without_labels"], 1);
    assert_eq!(s["classes"]["label_1"], 2);
    assert_eq!(s["classes"]["cat"], 1);
    // Cached: the same answer again, and with --no-cache.
    let again: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json"]).stdout).unwrap();
    assert_eq!(again, v);
    let fresh: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json", "--no-cache"]).stdout).unwrap();
    assert_eq!(fresh, v);
    copy_contents(&fixture("demo-edit"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "v2"]);
    let d: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json", "HEAD~1", "HEAD"]).stdout).unwrap();
    assert_eq!(
        d["delta"]["classes"]["label_0"],
        serde_json::json!([2, 0, -2])
    );
    assert_eq!(d["delta"]["after"]["frames"], 9);
}

#[test]
fn labels_command_detects_formats() {
    let repo = TestRepo::new();
    let r = repo.ok([
        "labels".to_string(),
        "--count".to_string(),
        fixture("datumaro/voc_dataset/voc_dataset1/Annotations/2007_000001.xml")
            .display()
            .to_string(),
        fixture("datumaro/cvat_dataset/for_images/export_project/annotations.xml")
            .display()
            .to_string(),
    ]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].ends_with("\tvoc\t1 frame\t2 objects"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].ends_with("\tcvat\t6 frames\t12 objects"),
        "{}",
        r.stdout
    );
    let r = repo.expect_code(1, ["labels", fixture("demo/data.yaml").to_str().unwrap()]);
    assert!(
        r.stderr.contains("not recognized as a label file"),
        "{}",
        r.stderr
    );
}

/// `dsv rm` of a frame and its label file: the frame is counted as removed in
/// every rendering (text, JSON, markdown, HTML, the git diff driver), not
/// listed under "other files".
#[test]
fn deleted_frame_is_counted_as_removed_in_every_rendering() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["rm", "images/frame_002.jpg", "labels/frame_002.txt"]);
    let text = repo.ok(["diff", "--staged"]).stdout;
    insta::assert_snapshot!("deleted_frame_diff_staged", text);
    let doc = diff_json(&repo, &["--staged"]);
    assert_eq!(
        doc["frames"]["removed"],
        serde_json::json!(["images/frame_002.jpg"])
    );
    assert_eq!(kinds(&doc), vec![("removed".into(), "label_1".into())]);
    let md = repo.ok(["diff", "--staged", "--format", "markdown"]).stdout;
    assert!(md.contains("**Frames:** 0 added, 1 removed"), "{md}");
    assert!(md.contains("| removed | images/frame"), "{md}");
    repo.ok(["commit", "-m", "drop frame 2"]);
    let doc = diff_json(&repo, &["HEAD~1", "HEAD"]);
    assert_eq!(
        doc["frames"]["removed"],
        serde_json::json!(["images/frame_002.jpg"])
    );
    repo.ok([
        "diff",
        "HEAD~1",
        "HEAD",
        "--format",
        "html",
        "-o",
        "review.html",
    ]);
    let html = std::fs::read_to_string(repo.path("review.html")).unwrap();
    assert!(html.contains("images/frame_002.jpg"), "{html}");
    assert!(html.contains("<b>1</b> frames removed"), "{html}");
    // The git diff driver, given two lock files naming the commits.
    let log: serde_json::Value =
        serde_json::from_str(&repo.ok(["log", "--json", "-n", "2"]).stdout).unwrap();
    let ids: Vec<&str> = (0..2).map(|i| log[i]["id"].as_str().unwrap()).collect();
    let lock = |c: &str| format!("version = 1\n[[dataset]]\npath = \".\"\ncommit = \"{c}\"\n");
    repo.write("old.lock", lock(ids[1]));
    repo.write("new.lock", lock(ids[0]));
    let out = repo
        .ok([
            "diff-driver",
            "dsv.lock",
            "old.lock",
            "0",
            "100644",
            "new.lock",
            "0",
            "100644",
        ])
        .stdout;
    insta::assert_snapshot!("deleted_frame_diff_driver", out);
}

/// The other frame changes: a frame added with its labels, a frame renamed,
/// and a label-only change, each counted once where it belongs.
#[test]
fn added_renamed_and_label_only_frame_changes_are_classified() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    std::fs::copy(
        repo.path("images/frame_000.jpg"),
        repo.path("images/frame_100.jpg"),
    )
    .unwrap();
    repo.write("labels/frame_100.txt", "1 0.5 0.5 0.2 0.2\n");
    std::fs::rename(
        repo.path("images/frame_003.jpg"),
        repo.path("images/frame_103.jpg"),
    )
    .unwrap();
    std::fs::rename(
        repo.path("labels/frame_003.txt"),
        repo.path("labels/frame_103.txt"),
    )
    .unwrap();
    repo.write("labels/frame_001.txt", "1 0.1 0.1 0.2 0.2\n");
    repo.ok(["add", "-A"]);
    let doc = diff_json(&repo, &["--staged"]);
    assert_eq!(
        doc["frames"]["added"],
        serde_json::json!(["images/frame_100.jpg"])
    );
    assert_eq!(doc["frames"]["removed"], serde_json::json!([]));
    assert_eq!(doc["frames"]["modified"], serde_json::json!([]));
    assert_eq!(
        doc["frames"]["renamed"],
        serde_json::json!([{"from": "images/frame_003.jpg", "to": "images/frame_103.jpg"}])
    );
    repo.ok(["commit", "-m", "edit"]);
    let names = diff_json(&repo, &["HEAD~1", "HEAD"]);
    assert_eq!(names["frames"], doc["frames"]);
}

/// A frame deleted and a new frame added whose image is byte-identical (the demo's
/// frames 1 to 3 share one image): not one renamed frame, since the labels did not
/// go with the image, but a removal and an addition, as Datumaro counts them (found
/// by tests/it/differential.rs).
#[test]
fn deleted_frame_and_new_frame_with_the_same_image_are_removed_and_added() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    std::fs::rename(
        repo.path("images/frame_001.jpg"),
        repo.path("images/frame_200.jpg"),
    )
    .unwrap();
    repo.remove("labels/frame_001.txt");
    repo.write("labels/frame_200.txt", "3 0.5 0.5 0.2 0.2\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "replace frame 1"]);
    let doc = diff_json(&repo, &["HEAD~1", "HEAD"]);
    assert_eq!(
        doc["frames"]["removed"],
        serde_json::json!(["images/frame_001.jpg"])
    );
    assert_eq!(
        doc["frames"]["added"],
        serde_json::json!(["images/frame_200.jpg"])
    );
    assert_eq!(doc["frames"]["renamed"], serde_json::json!([]));
    assert_eq!(
        kinds(&doc),
        vec![
            ("added".into(), "label_3".into()),
            ("removed".into(), "label_0".into())
        ]
    );
    let text = repo.ok(["diff", "HEAD~1", "HEAD"]).stdout;
    insta::assert_snapshot!("frame_replaced_diff_text", text);
}

/// A VOC file cut short (`</annotation>` removed): `add` and `commit` warn
/// naming it, `[check] labels = "error"` makes commit refuse, and export
/// refuses to write its frame as an unlabelled image unless `--skip-invalid`,
/// which leaves the frame out; query and stats say so loudly.
#[test]
fn unparsable_label_file_is_never_an_unlabelled_frame() {
    let repo = TestRepo::init();
    copy_contents(&fixture("datumaro/roboflow_dataset/voc"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let cut = repo
        .read_string("train/train_001.xml")
        .replace("</annotation>", "");
    repo.write("train/train_001.xml", cut);
    let r = repo.ok(["add", "-A"]);
    assert!(
        r.stderr.contains("warning: train/train_001.xml:")
            && r.stderr.contains("labels are unknown"),
        "{r}"
    );
    // [check] labels = "error": commit refuses, naming the file.
    repo.write("dsv.toml", "[check]\nlabels = \"error\"\n");
    repo.ok(["add", "dsv.toml"]);
    let r = repo.expect_code(1, ["commit", "-m", "broken"]);
    assert!(
        r.stderr.starts_with("error: 1 label file(s) do not parse ([check] labels = \"error\" in dsv.toml); nothing committed:\n  train/train_001.xml:"),
        "{r}"
    );
    repo.write("dsv.toml", "[check]\nlabels = \"warn\"\n");
    repo.ok(["add", "dsv.toml"]);
    let r = repo.ok(["commit", "-m", "broken"]);
    assert!(r.stderr.contains("warning: train/train_001.xml:"), "{r}");
    // Export refuses, writing nothing.
    let r = repo.expect_code(1, ["export", "HEAD", "--format", "coco", "--out", "out"]);
    assert!(
        r.stderr.contains("error: 1 label file(s) do not parse; their frames would be exported without their labels (--skip-invalid leaves those frames out); nothing written:\n  train/train_001.xml:"),
        "{r}"
    );
    assert!(!repo.exists("out"));
    let r = repo.ok([
        "export",
        "HEAD",
        "--format",
        "coco",
        "--out",
        "out",
        "--skip-invalid",
    ]);
    assert!(
        r.stderr.contains(
            "warning: left out 1 frame(s) whose label files do not parse:\n  train/train_001.xml:"
        ),
        "{r}"
    );
    let coco: serde_json::Value =
        serde_json::from_slice(&repo.read("out/annotations/instances_train.json"))
            .expect("COCO JSON");
    let names: Vec<&str> = coco["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file_name"].as_str().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("train_001")), "{names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
    // Query and stats say, loudly, which frames are judged without their labels.
    let r = repo.ok(["query", "size(objects) == 0"]);
    assert!(
        r.stderr.contains("warning: 1 label file(s) do not parse; the frames they describe are judged without their labels:\n  train/train_001.xml:"),
        "{r}"
    );
    let r = repo.ok(["stats"]);
    assert!(r.stdout.contains("unreadable labels"), "{r}");
    assert!(r.stderr.contains("do not parse"), "{r}");
    let r = repo.ok(["stats", "--where", "true"]);
    assert!(r.stdout.contains("unreadable labels"), "{r}");
}

/// A VOC box with `<xmax>` < `<xmin>`: `labels`, `diff`, `query` and
/// `stats --where` warn alike (file, frame, object); every export format
/// refuses it and writes nothing (a re-run is not "not empty"), and
/// `--skip-invalid` leaves its frame out.
#[test]
fn invalid_box_is_reported_alike_and_refused_by_every_export() {
    let repo = TestRepo::init();
    copy_contents(&fixture("datumaro/roboflow_dataset/voc"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let xml = repo
        .read_string("train/train_001.xml")
        .replace("<xmin>2</xmin>", "<xmin>7</xmin>");
    repo.write("train/train_001.xml", xml);
    let want = "train/train_001.xml: frame train_001.jpg: object 1 (label_0): box has zero or negative size (w -2, h 1)";
    let r = repo.ok(["labels", "train/train_001.xml"]);
    assert!(r.stderr.contains(want), "{r}");
    let r = repo.ok(["diff"]);
    assert!(r.stderr.contains(want), "{r}");
    repo.ok(["commit", "-a", "-m", "bad box"]);
    let want = "warning: invalid box: train/train_001.xml: frame train/train_001.jpg: object 1 (label_0): box has zero or negative size (w -2, h 1)";
    let r = repo.ok(["query", "true", "--count"]);
    assert!(r.stderr.contains(want), "{r}");
    let r = repo.ok(["stats", "--where", "true"]);
    assert!(r.stderr.contains(want), "{r}");
    for format in ["coco", "yolo", "voc", "kitti"] {
        for _ in 0..2 {
            let r = repo.expect_code(1, ["export", "HEAD", "--format", format, "--out", "out"]);
            assert!(
                r.stderr.contains("error: 1 invalid box(es) (--skip-invalid leaves their frames out); nothing written:\n  train/train_001.xml: frame train/train_001.jpg: object 1 (label_0): box has zero or negative size"),
                "{format}: {r}"
            );
            assert!(!repo.exists("out"), "{format}");
        }
    }
    let r = repo.ok([
        "export",
        "HEAD",
        "--format",
        "yolo",
        "--out",
        "out",
        "--skip-invalid",
    ]);
    assert!(
        r.stderr
            .contains("warning: left out 1 frame(s) with invalid boxes:"),
        "{r}"
    );
    assert!(repo.exists("out/labels/train/train_002.txt"));
    assert!(!repo.exists("out/images/train/train_001.jpg"));
    // Nothing but the export itself is left beside it.
    let names: Vec<String> = std::fs::read_dir(repo.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dsv-export"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn huge_single_line_yolo_file_memory_is_bounded() {
    // One 20 MB line of short numbers: a YOLO polygon of 2.5 million points,
    // 4 bytes of text a number and 8 bytes parsed, the worst ratio the format allows.
    let repo = TestRepo::init();
    let mut line = String::with_capacity(20_000_100);
    line.push('0');
    let mut k = 0u32;
    while line.len() < 20_000_000 {
        line.push_str(if k.is_multiple_of(2) { " 0.5" } else { " 0.2" });
        k += 1;
    }
    if k % 2 == 1 {
        line.push_str(" 0.2");
    }
    line.push('\n');
    repo.write("labels/f.txt", &line);
    repo.write("images/f.jpg", "x");
    let budget = 2 * line.len() as u64 + (200 << 20);
    let edited = format!("1{}", &line[1..]);
    let steps: [&[&str]; 12] = [
        &["add", "-A"],
        &["commit", "-q", "-m", "one"],
        &["status"],
        &["labels", "labels/f.txt"],
        &["labels", "--json", "labels/f.txt"],
        &["query", "true"],
        &["query", "--json", "true"],
        &["stats"],
        &["diff"],
        &["diff", "--json"],
        &["diff", "HEAD~1", "HEAD"],
        &["export", "--format", "yolo", "--out", "../out"],
    ];
    for (i, args) in steps.iter().enumerate() {
        if args == &["diff"] {
            repo.write("labels/f.txt", &edited);
        }
        if args == &["diff", "HEAD~1", "HEAD"] {
            repo.ok(["commit", "-q", "-a", "-m", "two"]);
        }
        let (code, peak) = repo.exit_and_peak_rss_in(repo.root(), args);
        assert!(
            code == 0 || code == 1,
            "step {i}: dsv {} exited {code}",
            args.join(" ")
        );
        assert!(
            peak <= budget,
            "step {i}: dsv {} peaked at {} MiB, over the budget of {} MiB (2x the 20 MB label file + 200 MiB)",
            args.join(" "),
            peak >> 20,
            budget >> 20
        );
    }
    // The file is refused by name and line, not read into memory.
    let run = repo.fails(["labels", "labels/f.txt"]);
    assert!(
        run.stderr.contains("line 1") && run.stderr.contains("points per polygon"),
        "{run}"
    );
}

#[test]
fn huge_cvat_file_memory_is_bounded() {
    // A 20 MB CVAT XML file of 210,000 boxes in frames of ten, the shape of
    // bench/memory.py: every box carries an attribute (`occluded`), which cost
    // a BTreeMap node (~600 bytes) per box, and ten boxes sat in room for
    // sixteen; a parse took ~1.1 KB a box from ~95 bytes of XML.
    let repo = TestRepo::init();
    let (xml, frames) = cvat_boxes_xml(20_000_000);
    repo.write("annotations.xml", &xml);
    repo.write("images/f0.jpg", "x");
    let budget = 2 * xml.len() as u64 + (200 << 20);
    // One box of the last frame moved: a change every comparison must find.
    let cut = xml.rfind("xtl=\"9.5\"").expect("a last box");
    let edited = format!("{}xtl=\"7.5\"{}", &xml[..cut], &xml[cut + 9..]);
    let steps: [&[&str]; 13] = [
        &["add", "-A"],
        &["commit", "-q", "-m", "one"],
        &["status"],
        &["labels", "--count", "annotations.xml"],
        &["labels", "annotations.xml"],
        &["labels", "--json", "annotations.xml"],
        &["query", "true"],
        &["query", "--json", "true"],
        &["stats"],
        &["diff"],
        &["diff", "--json"],
        &["diff", "HEAD~1", "HEAD"],
        &["export", "--format", "coco", "--out", "../out"],
    ];
    for (i, args) in steps.iter().enumerate() {
        if args == &["diff"] {
            repo.write("annotations.xml", &edited);
        }
        if args == &["diff", "HEAD~1", "HEAD"] {
            repo.ok(["commit", "-q", "-a", "-m", "two"]);
        }
        let (code, peak) = repo.exit_and_peak_rss_in(repo.root(), args);
        assert_eq!(code, 0, "step {i}: dsv {} exited {code}", args.join(" "));
        assert!(
            peak <= budget,
            "step {i}: dsv {} peaked at {} MiB, over the budget of {} MiB (2x the 20 MB label file + 200 MiB)",
            args.join(" "),
            peak >> 20,
            budget >> 20
        );
    }
    // Same results as before: every box read, the moved one found.
    let run = repo.ok(["labels", "--count", "annotations.xml"]);
    assert!(
        run.stdout
            .contains(&format!("{frames} frames\t{} objects", frames * 10)),
        "{run}"
    );
    let run = repo.ok(["diff", "HEAD~1", "HEAD"]);
    assert!(
        run.stdout.contains(&format!("f{}.jpg", frames - 1)),
        "{run}"
    );
}

#[test]
fn checking_a_label_file_of_full_segments_grows_by_the_file_alone() {
    // `add` and `commit` read a changed label file back from the store to
    // check it. A chunked file lists segments of up to 1,024 chunks; the
    // store read each segment into a buffer of its own, grown by doubling,
    // several at once, beside the buffer of the whole file: a 180 MB label
    // file of repeated box lines (segments at the cap) peaked at 3.6 times
    // the file (issue 16, item 9). `kZ` repeated chunks into one 16,410-byte
    // chunk over and over whose id never ends a segment, so segments reach
    // the cap at 16.8 MB: 40 MB is two and a half of them. The file is not
    // YOLO (refused at its first line), so the parse holds nothing.
    let peaks = |size: usize| -> Vec<u64> {
        let repo = TestRepo::init();
        repo.write("labels/f.txt", "kZ".repeat(size / 2));
        repo.write("images/f.jpg", "x");
        let steps: [&[&str]; 2] = [&["add", "-A"], &["commit", "-q", "-m", "one"]];
        steps
            .iter()
            .map(|args| {
                let (code, peak) = repo.exit_and_peak_rss_in(repo.root(), args);
                assert_eq!(code, 0, "dsv {} exited {code}", args.join(" "));
                peak
            })
            .collect()
    };
    let (small, large) = (4_000_000u64, 40_000_000u64);
    let base = peaks(small as usize);
    let big = peaks(large as usize);
    for (i, name) in ["add -A", "commit"].iter().enumerate() {
        // The file read whole once, and little beside it (before: 3.2x).
        let growth = big[i].saturating_sub(base[i]);
        assert!(
            growth <= (large - small) * 3 / 2,
            "dsv {name} took {} MiB more for a {} MB label file than for a {} MB one",
            growth >> 20,
            large / 1_000_000,
            small / 1_000_000
        );
    }
}

/// A COCO file of about `size` bytes in the shape of bench/memory.py's but
/// with frames of a hundred boxes (fewer frames, so less of what the query
/// index keeps per frame), every tenth box with a polygon, categories before
/// the annotations.
fn coco_boxes_json(size: usize) -> String {
    let frames = (size / (100 * 130 + 90)).max(1);
    let mut json = String::with_capacity(size + 100_000);
    json.push_str(r#"{"images": ["#);
    for i in 0..frames {
        let sep = if i == 0 { "" } else { "," };
        json.push_str(&format!(
            r#"{sep}{{"id": {i}, "file_name": "images/f{i}.jpg", "width": 640, "height": 480}}"#
        ));
    }
    json.push_str(r#"], "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "dog"}], "annotations": ["#);
    let mut id = 0;
    for i in 0..frames {
        for k in 0..100 {
            id += 1;
            let sep = if id == 1 { "" } else { "," };
            let seg = if k % 10 == 0 {
                r#", "segmentation": [[1.5, 2.5, 30.5, 2.5, 30.5, 40.5, 1.5, 40.5]]"#
            } else {
                ""
            };
            json.push_str(&format!(
                r#"{sep}{{"id": {id}, "image_id": {i}, "category_id": {}, "bbox": [{}.5, {}.25, 30.5, 40.75], "area": 1242.9, "iscrowd": 0{seg}}}"#,
                1 + k % 2,
                k * 10,
                k * 7
            ));
        }
    }
    json.push_str("]}\n");
    json
}

#[test]
fn commands_on_a_large_coco_file_hold_its_bytes_and_compact_records_not_every_object() {
    // A COCO file hands a frame over only once both lists are read, so
    // every command that read one held its bytes and all its objects at
    // once: 2.45-2.6 times the file's growth between a 1 MB and a 60 MB file
    // (objects of ~200 bytes for ~130 bytes of JSON each), 3.0 times for the
    // diff; 3-8% over the budget at 480 MB (issue 16, item 9). Annotations
    // now wait as compact records (56 bytes for a plain box) and become
    // objects only as their frame is handed over: 1.65-2.05 times, 2.05 for
    // the diff. The bounds sit between. The cold query also grew its index
    // encoding beside the parse (3.6 times before session 19, 2.2-2.9 times
    // now, varying with how its threads overlap).
    let peaks = |size: usize| -> (u64, Vec<u64>) {
        let repo = TestRepo::init();
        let json = coco_boxes_json(size);
        repo.write("annotations.json", &json);
        repo.write("images/f0.jpg", "x");
        let cut = json.rfind("\"bbox\": [90.5").expect("a last box");
        let edited = format!("{}\"bbox\": [91.5{}", &json[..cut], &json[cut + 13..]);
        // `stats` after a query: without one it builds the parse cache as
        // the cold query does, which also holds the index encoding (2.4
        // times the file's growth at this size, within the budget at 480 MB).
        let steps: [&[&str]; 6] = [
            &["add", "-A"],
            &["commit", "-q", "-m", "one"],
            &["labels", "--count", "annotations.json"],
            &["query", "true"],
            &["stats"],
            &["diff", "HEAD~1", "HEAD"],
        ];
        let mut out = Vec::new();
        for args in steps {
            if args == ["diff", "HEAD~1", "HEAD"] {
                repo.write("annotations.json", &edited);
                repo.ok(["commit", "-q", "-a", "-m", "two"]);
            }
            let (code, peak) = repo.exit_and_peak_rss_in(repo.root(), args);
            assert_eq!(code, 0, "dsv {} exited {code}", args.join(" "));
            out.push(peak);
        }
        (json.len() as u64, out)
    };
    let (small, small_peaks) = peaks(1_000_000);
    let (large, large_peaks) = peaks(60_000_000);
    // (name, bound in tenths of the file's growth)
    let steps = [
        ("add -A", 22),
        ("commit", 22),
        ("labels --count", 23),
        ("query true", 33),
        ("stats", 22),
        ("diff HEAD~1 HEAD", 27),
    ];
    for (i, (name, bound)) in steps.iter().enumerate() {
        let growth = large_peaks[i].saturating_sub(small_peaks[i]);
        eprintln!("dsv {name}: {} MiB more", growth >> 20);
        assert!(
            growth <= (large - small) * bound / 10,
            "dsv {name} took {} MiB more for a {} MB COCO file than for a {} MB one",
            growth >> 20,
            large / 1_000_000,
            small / 1_000_000
        );
    }
}

/// A CVAT XML file of about `size` bytes in the shape of bench/memory.py:
/// frames of ten boxes, each box with an attribute (`occluded`); its frame count.
fn cvat_boxes_xml(size: usize) -> (String, u64) {
    let mut xml = String::with_capacity(size + 100_000);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n<version>1.1</version>\n",
    );
    let mut frames = 0u64;
    while xml.len() < size {
        xml.push_str(&format!(
            "<image id=\"{frames}\" name=\"f{frames}.jpg\" width=\"640\" height=\"480\">\n"
        ));
        for k in 0..10 {
            xml.push_str(&format!(
                "<box label=\"car\" occluded=\"0\" xtl=\"{k}.5\" ytl=\"{k}.25\" xbr=\"{}.5\" ybr=\"{}.75\" z_order=\"0\"/>\n",
                k + 30,
                k + 40
            ));
        }
        xml.push_str("</image>\n");
        frames += 1;
    }
    xml.push_str("</annotations>\n");
    (xml, frames)
}

/// Each step of the memory test on one CVAT file, from `add` to `diff`
/// between commits, with the edit before the second commit: each step's peak RSS.
fn cvat_step_peaks(xml: &str) -> Vec<(String, u64)> {
    let repo = TestRepo::init();
    repo.write("annotations.xml", xml);
    repo.write("images/f0.jpg", "x");
    // One box of the last frame moved: a change every comparison must find.
    let cut = xml.rfind("xtl=\"9.5\"").expect("a last box");
    let edited = format!("{}xtl=\"7.5\"{}", &xml[..cut], &xml[cut + 9..]);
    // What the other steps of huge_cvat_file_memory_is_bounded add is read
    // the same way as one of these (`labels --count` as `labels`, the
    // worktree `diff` as `diff HEAD~1 HEAD`; `query` and `stats` already
    // read frame by frame).
    // `export` is left out: its cold index build still grows by ~2.4x the
    // file (within the budget up to ~400 MB; not yet explained).
    let steps: [&[&str]; 6] = [
        &["add", "-A"],
        &["commit", "-q", "-m", "one"],
        &["labels", "annotations.xml"],
        &["labels", "--json", "annotations.xml"],
        &["commit", "-q", "-a", "-m", "two"],
        &["diff", "HEAD~1", "HEAD"],
    ];
    let mut peaks = Vec::new();
    for args in steps {
        if args[0] == "commit" && args.contains(&"-a") {
            repo.write("annotations.xml", &edited);
        }
        let (code, peak) = repo.exit_and_peak_rss_in(repo.root(), args);
        assert_eq!(code, 0, "dsv {} exited {code}", args.join(" "));
        peaks.push((args.join(" "), peak));
    }
    peaks
}

#[test]
fn huge_cvat_file_memory_grows_by_at_most_twice_the_file() {
    // The budget is twice the label file plus 200 MiB: what a command takes
    // for a large file beyond what it takes for a tiny one must stay within
    // twice the difference in size, or some file size breaks the budget. A
    // command that holds a whole parse of the file (~1 KB a box of ~95
    // bytes of XML: `labels` and `diff` until they read frame by frame) or
    // a second copy of it (the store's read of a chunked file until it
    // appended the chunks in place: `commit`'s label check, `diff` between
    // commits) grows by several times the file. 36 MB: past the
    // 32 MiB from which `diff` stops holding both versions' parses (below
    // it, those fit the 200 MiB).
    let (big, _) = cvat_boxes_xml(36_000_000);
    let (tiny, _) = cvat_boxes_xml(2_000);
    // Part of what a large file costs does not grow with it: the per-thread
    // hashing and compression buffers a tiny file never starts. `add -A`
    // grew by 84 MiB in one run and under 68 in another: 40 MiB for those.
    // What this test guards against grew by 3.4-4.5x the file (122-162 MiB
    // here), past twice the file plus 40 MiB (112 MiB).
    const FIXED: u64 = 40 << 20;
    let grown = 2 * (big.len() - tiny.len()) as u64 + FIXED;
    let peaks = cvat_step_peaks(&tiny);
    let over: Vec<String> = cvat_step_peaks(&big)
        .into_iter()
        .zip(peaks)
        .filter(|((_, b), (_, t))| b.saturating_sub(*t) > grown)
        .map(|((step, b), (_, t))| format!("dsv {step}: {} -> {} MiB", t >> 20, b >> 20))
        .collect();
    assert!(
        over.is_empty(),
        "grew by more than twice the {} MB file plus 40 MiB ({} MiB) from a tiny one: {over:?}",
        big.len() / 1_000_000,
        grown >> 20
    );
}

#[test]
fn label_files_past_the_object_and_polygon_limits_are_refused_by_line() {
    let ctx = ParseContext {
        class_names: None,
        stem: "f".into(),
    };
    let max = labels::MAX_OBJECTS_PER_FRAME;
    let yolo_line = "0 0.5 0.5 0.1 0.1\n";
    let yolo = labels::format_of(labels::Format::Yolo);
    let full = yolo_line.repeat(max);
    assert_eq!(
        labels::yolo::parse(full.as_bytes(), &ctx)
            .expect("the limit itself")
            .objects
            .len(),
        max
    );
    assert!(yolo.count(full.as_bytes(), None).is_some());
    let over = yolo_line.repeat(max + 1);
    let e = labels::yolo::parse(over.as_bytes(), &ctx).expect_err("one past the limit");
    assert_eq!(e.line, Some(max + 1));
    assert!(e.message.contains("objects in one frame"), "{e}");
    assert!(yolo.count(over.as_bytes(), None).is_none());
    let mut boxes = Vec::new();
    assert!(!yolo.plain_boxes(over.as_bytes(), None, &mut boxes));

    let kitti_line =
        "Car 0.00 0 -1.57 600.00 150.00 630.00 190.00 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n";
    let e = labels::kitti::parse(kitti_line.repeat(max + 1).as_bytes(), &ctx)
        .expect_err("KITTI past the limit");
    assert_eq!(e.line, Some(max + 1));

    let points = labels::MAX_POLYGON_POINTS;
    let polygon = |n: usize| format!("0{}\n", " 0.5 0.25".repeat(n));
    let f = labels::yolo::parse(polygon(points).as_bytes(), &ctx).expect("the limit itself");
    match &f.objects[0].geometry {
        Some(labels::Geometry::Polygon { rings }) => assert_eq!(rings[0].len(), points),
        g => panic!("a polygon expected, got {g:?}"),
    }
    let e = labels::yolo::parse(polygon(points + 1).as_bytes(), &ctx).expect_err("past the limit");
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("points per polygon"), "{e}");
    assert!(yolo.count(polygon(points + 1).as_bytes(), None).is_none());
}

#[test]
fn a_crowd_of_chained_boxes_all_moved_is_paired_without_a_huge_matrix() {
    use labels::compare::{MatchOptions, ObjectChangeKind, compare_objects};
    // 5,000 boxes chained by overlaps (one group), every one moved a little:
    // the optimal assignment's matrix would be 200 MB and its time the cube
    // (minutes); paired greedily it is a few seconds even unoptimized.
    let boxes = |shift: f64| -> Vec<labels::Object> {
        (0..5_000)
            .map(|k| {
                labels::Object::new(
                    "car",
                    Some(BBox {
                        x: f64::from(k) * 2.0 + shift,
                        y: 0.0,
                        w: 10.0,
                        h: 10.0,
                    }),
                )
            })
            .collect()
    };
    let started = std::time::Instant::now();
    let changes = compare_objects(&boxes(0.0), &boxes(0.5), &MatchOptions::default());
    assert_eq!(changes.len(), 5_000);
    assert!(changes.iter().all(|c| c.kind == ObjectChangeKind::Moved));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn voc_segmentation_masks_are_not_frames() {
    let repo = TestRepo::init();
    copy_contents(&fixture("datumaro/voc_dataset/voc_dataset1"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "voc"]);
    // Two photos in JPEGImages; the two PNG masks beside them are not frames.
    let frames = repo.ok(["query", "true"]).stdout;
    let frames: Vec<&str> = frames.lines().collect();
    assert_eq!(
        frames,
        ["JPEGImages/2007_000001.jpg", "JPEGImages/2007_000002.jpg"],
        "{frames:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json"]).stdout).expect("JSON");
    assert_eq!(v["stats"]["frames"], 2, "{v:#}");
    let out = repo.home().join("voc-export");
    repo.ok([
        "export",
        "HEAD",
        "--format",
        "coco",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let mut exported = Vec::new();
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                exported.push(p.strip_prefix(&out).expect("prefix").display().to_string());
            }
        }
    }
    assert!(
        exported.iter().all(|p| !p.contains("Segmentation")),
        "{exported:?}"
    );
    // Deleting a mask is a change of another file, not a removed frame.
    repo.ok(["rm", "SegmentationClass/2007_000001.png"]);
    let d: serde_json::Value =
        serde_json::from_str(&repo.ok(["diff", "--staged", "--json"]).stdout).expect("JSON");
    assert_eq!(
        d["frames"]["removed"].as_array().map(Vec::len),
        Some(0),
        "{d:#}"
    );
}
