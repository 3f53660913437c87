//! End-to-end tests of `dsv merge`, `resolve`, `cherry-pick` and `revert` on the
//! real samples in `fixtures/`: the frame-level and object-level merge matrices,
//! conflicts and their resolution, and `--abort` restoring the pre-merge state.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestRepo, copy_contents, pseudo_random_bytes};
use dsv::labels::{self, BBox, Format, FrameLabels, Object, ParseContext, Units};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A label file of one format inside a copied fixture dataset.
struct Sample {
    format: Format,
    /// Fixture directory copied as the dataset root.
    dir: &'static str,
    /// The label file, relative to the root.
    file: &'static str,
    /// YOLO class-names file, relative to the root.
    names: Option<&'static str>,
}

/// KITTI and CVAT, merged with the same machinery (a smaller matrix).
const MORE_SAMPLES: [Sample; 2] = [
    Sample {
        format: Format::Kitti,
        dir: "datumaro/kitti_dataset/kitti_detection",
        file: "training/label_2/000030_11.txt",
        names: None,
    },
    Sample {
        format: Format::Cvat,
        dir: "datumaro/cvat_dataset/for_images/export_task",
        file: "train.xml",
        names: None,
    },
];

const SAMPLES: [Sample; 3] = [
    Sample {
        format: Format::Coco,
        dir: "datumaro/coco_dataset/coco_instances",
        file: "annotations/instances_train.json",
        names: None,
    },
    Sample {
        format: Format::Yolo,
        dir: "datumaro/yolo_dataset/strict",
        file: "obj_train_data/1.txt",
        names: Some("obj.names"),
    },
    Sample {
        format: Format::Voc,
        dir: "datumaro/voc_dataset/voc_dataset1",
        file: "Annotations/2007_000001.xml",
        names: None,
    },
];

impl Sample {
    fn names(&self, repo: &TestRepo) -> Option<Vec<String>> {
        self.names.map(|n| {
            labels::parse_class_names(n, &repo.read(n))
                .expect("class names")
                .names
        })
    }

    fn read(&self, repo: &TestRepo) -> Vec<FrameLabels> {
        let ctx = ParseContext {
            class_names: self.names(repo).map(|n| std::sync::Arc::new(n.into())),
            stem: dsv::layout::stem(self.file).to_string(),
        };
        let mut bytes = repo.read(self.file);
        if self.format == Format::Cvat {
            // Datumaro's task sample has unlabelled shapes, an error for dsv.
            bytes = String::from_utf8(bytes)
                .expect("UTF-8")
                .replace("label=\"\"", "label=\"label1\"")
                .into_bytes();
        }
        labels::parse(self.format, &bytes, &ctx).unwrap_or_else(|e| panic!("{}: {e}", self.file))
    }

    fn write(&self, repo: &TestRepo, frames: &[FrameLabels]) {
        let bytes = match self.format {
            Format::Coco => labels::coco::write(frames),
            Format::Voc => labels::voc::write(&frames[0]),
            Format::Kitti => labels::kitti::write(&frames[0]),
            Format::Cvat => labels::cvat::write(frames),
            Format::Yolo => {
                labels::yolo::write_with_names(&frames[0], &self.names(repo).expect("names"))
            }
        }
        .expect("writing labels");
        repo.write(self.file, bytes);
    }

    /// The frame the edits work on.
    fn frame(frames: &mut [FrameLabels]) -> &mut FrameLabels {
        &mut frames[0]
    }
}

/// Box `k` of the synthetic base objects, in the frame's units, and a scale for offsets.
fn unit(units: Units) -> f64 {
    match units {
        Units::Normalized => 0.001,
        Units::Pixels => 1.0,
    }
}

fn square(units: Units, x: f64, y: f64) -> BBox {
    let s = unit(units);
    BBox {
        x: x * s,
        y: y * s,
        w: 100.0 * s,
        h: 100.0 * s,
    }
}

/// Sets up a repository whose label file's first frame holds four objects far apart
/// (classes taken from the fixture), commits it and tags it `base`.
fn base_repo(sample: &Sample) -> (TestRepo, Vec<String>) {
    let repo = TestRepo::init();
    copy_contents(&fixture(sample.dir), repo.root());
    let mut frames = sample.read(&repo);
    let f = Sample::frame(&mut frames);
    let units = f.units;
    let classes: Vec<String> = f.objects.iter().map(|o| o.class.clone()).collect();
    assert!(
        !classes.is_empty(),
        "{}: fixture frame has objects",
        sample.file
    );
    f.objects = (0..4)
        .map(|k| {
            Object::new(
                classes[k % classes.len()].clone(),
                Some(square(units, 200.0 * k as f64, 0.0)),
            )
        })
        .collect();
    sample.write(&repo, &frames);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["tag", "base"]);
    (repo, classes)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Edit {
    None,
    Add,
    Remove,
    Change,
}

const EDITS: [Edit; 4] = [Edit::None, Edit::Add, Edit::Remove, Edit::Change];

/// Applies an edit to the object `target` (by base position, found by its box) or
/// adds one at `add_x`.
fn apply(
    objects: &mut Vec<Object>,
    units: Units,
    edit: Edit,
    target: usize,
    add_x: f64,
    class: &str,
) {
    let pos = |objects: &Vec<Object>| {
        let want = square(units, 200.0 * target as f64, 0.0);
        objects
            .iter()
            .position(|o| o.bbox.is_some_and(|b| (b.x - want.x).abs() < 1e-9))
            .expect("target object")
    };
    match edit {
        Edit::None => {}
        Edit::Add => objects.push(Object::new(class, Some(square(units, add_x, 600.0)))),
        Edit::Remove => {
            let i = pos(objects);
            objects.remove(i);
        }
        Edit::Change => {
            let i = pos(objects);
            if let Some(b) = objects[i].bbox.as_mut() {
                b.y += 10.0 * unit(units);
            }
        }
    }
}

/// (class, box rounded to 1e-6) of every object, sorted: what a merge must produce.
fn summary(objects: &[Object]) -> Vec<(String, [i64; 4])> {
    let r = |v: f64| (v * 1e6).round() as i64;
    let mut out: Vec<(String, [i64; 4])> = objects
        .iter()
        .map(|o| {
            let b = o.bbox.expect("box");
            (o.class.clone(), [r(b.x), r(b.y), r(b.w), r(b.h)])
        })
        .collect();
    out.sort();
    out
}

fn edit_file(repo: &TestRepo, sample: &Sample, edit: Edit, target: usize, add_x: f64, class: &str) {
    let mut frames = sample.read(repo);
    let f = Sample::frame(&mut frames);
    let units = f.units;
    apply(&mut f.objects, units, edit, target, add_x, class);
    sample.write(repo, &frames);
}

fn merge_json(repo: &TestRepo, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["merge", "--json"];
    a.extend_from_slice(args);
    let r = repo.run(a);
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"));
    (r.code, v)
}

fn head_parents(repo: &TestRepo) -> usize {
    let log: serde_json::Value =
        serde_json::from_str(&repo.ok(["log", "--json", "-n", "1"]).stdout).expect("log json");
    log[0]["parents"].as_array().expect("parents").len()
}

/// Every combination of added/removed/changed objects on each side, on different
/// objects of one frame, merges cleanly and keeps both sides' edits, for COCO, YOLO and VOC.
#[test]
fn object_level_matrix_merges_cleanly() {
    for sample in &SAMPLES {
        object_matrix(sample, &EDITS);
    }
}

/// The same for KITTI and CVAT, with every edit on both sides.
#[test]
fn object_level_merge_kitti_and_cvat() {
    for sample in &MORE_SAMPLES {
        object_matrix(sample, &[Edit::Add, Edit::Remove, Edit::Change]);
    }
}

fn object_matrix(sample: &Sample, edits: &[Edit]) {
    let (repo, classes) = base_repo(sample);
    let class = classes[0].as_str();
    for (i, ours) in edits.iter().enumerate() {
        for (j, theirs) in edits.iter().enumerate() {
            let ctx = format!("{:?}: ours {ours:?}, theirs {theirs:?}", sample.format);
            let (ob, tb) = (format!("o{i}{j}"), format!("t{i}{j}"));
            repo.ok(["switch", "-c", &tb, "base"]);
            if *theirs != Edit::None {
                edit_file(&repo, sample, *theirs, 2, 400.0, class);
                repo.ok(["commit", "-a", "-m", "theirs"]);
            }
            repo.ok(["switch", "-c", &ob, "base"]);
            if *ours != Edit::None {
                edit_file(&repo, sample, *ours, 0, 0.0, class);
                repo.ok(["commit", "-a", "-m", "ours"]);
            }
            let (code, v) = merge_json(&repo, &[&tb]);
            assert_eq!(code, 0, "{ctx}: {v}");
            let expected_outcome = match (ours, theirs) {
                (_, Edit::None) => "up-to-date",
                (Edit::None, _) => "fast-forward",
                _ => "committed",
            };
            assert_eq!(v["outcome"], expected_outcome, "{ctx}: {v}");
            if expected_outcome == "committed" {
                assert_eq!(v["label_merged"][0], sample.file, "{ctx}: {v}");
                assert_eq!(head_parents(&repo), 2, "{ctx}");
            }
            let mut frames = sample.read(&repo);
            let got = summary(&Sample::frame(&mut frames).objects);
            let mut want_frames = {
                repo.ok(["switch", "-q", "--detach", "base"]);
                let f = sample.read(&repo);
                repo.ok(["switch", "-q", &ob]);
                f
            };
            let f = Sample::frame(&mut want_frames);
            let units = f.units;
            apply(&mut f.objects, units, *theirs, 2, 400.0, class);
            apply(&mut f.objects, units, *ours, 0, 0.0, class);
            assert_eq!(got, summary(&f.objects), "{ctx}");
            let st = repo.ok(["status", "--short"]);
            assert_eq!(st.stdout, "", "{ctx}: worktree clean after merge");
        }
    }
}

/// The same object changed differently on both sides conflicts, is listed with
/// frame, object and both versions, and resolves for either side.
#[test]
fn same_object_changed_on_both_sides_conflicts() {
    for sample in &SAMPLES {
        for side in ["--ours", "--theirs"] {
            let (repo, classes) = base_repo(sample);
            let other = classes.last().cloned().unwrap_or_default();
            repo.ok(["switch", "-c", "theirs", "base"]);
            // They move object 1 and add one far away (a clean change in the same file).
            edit_file(&repo, sample, Edit::Change, 1, 0.0, "");
            edit_file(&repo, sample, Edit::Add, 0, 800.0, &classes[0]);
            repo.ok(["commit", "-a", "-m", "theirs"]);
            repo.ok(["switch", "-c", "ours", "base"]);
            // We move object 1 differently (and change nothing else).
            let mut frames = sample.read(&repo);
            let f = Sample::frame(&mut frames);
            if let Some(b) = f.objects[1].bbox.as_mut() {
                b.x += 15.0 * unit(f.units);
            }
            f.objects[1].class = other.clone();
            sample.write(&repo, &frames);
            repo.ok(["commit", "-a", "-m", "ours"]);

            let (code, v) = merge_json(&repo, &["theirs"]);
            assert_eq!(code, 1, "{:?}: {v}", sample.format);
            assert_eq!(v["outcome"], "conflicts");
            let c = &v["conflicts"][0];
            assert_eq!(c["path"], sample.file);
            assert_eq!(c["kind"], "labels");
            assert_eq!(c["labels"].as_array().map(Vec::len), Some(1), "{c}");
            let l = &c["labels"][0];
            assert!(l["frame"].is_string() && l["object"].is_string(), "{l}");
            assert_eq!(l["ours"]["class"], other.as_str(), "{l}");
            assert!(l["theirs"]["box"].is_object(), "{l}");

            let short = repo.ok(["status", "--short"]);
            assert_eq!(short.stdout, format!("UU {}\n", sample.file), "{short}");
            let status = repo.ok(["status"]);
            assert!(
                status.stdout.contains("labels conflict") && status.stdout.contains(sample.file),
                "{status}"
            );
            let status_json: serde_json::Value =
                serde_json::from_str(&repo.ok(["status", "--json"]).stdout).expect("json");
            assert_eq!(status_json["merge"]["conflicts"][0]["path"], sample.file);

            // Committing or continuing now is refused.
            assert!(
                repo.fails(["merge", "--continue"])
                    .stderr
                    .contains("not resolved")
            );
            assert!(
                repo.fails(["commit", "-a", "-m", "x"])
                    .stderr
                    .contains("in progress")
            );

            repo.ok(["resolve", sample.file, side]);
            repo.ok(["merge", "--continue"]);
            assert_eq!(head_parents(&repo), 2);
            assert_eq!(repo.ok(["status", "--short"]).stdout, "");
            let mut frames = sample.read(&repo);
            let objs = &Sample::frame(&mut frames).objects;
            // Their clean addition is kept whichever side won the conflict.
            assert_eq!(objs.len(), 5, "{:?} {side}: {objs:?}", sample.format);
            let has_other = objs.iter().any(|o| o.class == other && other != classes[0]);
            if side == "--ours" && other != classes[1 % classes.len()] {
                assert!(has_other, "{:?}: ours kept", sample.format);
            }
            if side == "--theirs" {
                assert!(
                    objs.iter().any(|o| o.bbox.is_some_and(|b| (b.y
                        - 10.0 * unit(Sample::frame(&mut sample.read(&repo)).units))
                    .abs()
                        < 1e-6)),
                    "{:?}: their move kept: {objs:?}",
                    sample.format
                );
            }
        }
    }
}

/// Removing an object that the other side changed is a conflict; `--strategy`
/// decides it without stopping.
#[test]
fn remove_versus_change_conflicts_and_strategy_decides() {
    let sample = &SAMPLES[0];
    let (repo, _) = base_repo(sample);
    repo.ok(["switch", "-c", "theirs", "base"]);
    edit_file(&repo, sample, Edit::Change, 3, 0.0, "");
    repo.ok(["commit", "-a", "-m", "theirs moves 3"]);
    repo.ok(["switch", "-c", "ours", "base"]);
    edit_file(&repo, sample, Edit::Remove, 3, 0.0, "");
    repo.ok(["commit", "-a", "-m", "ours removes 3"]);
    let (code, v) = merge_json(&repo, &["theirs"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["conflicts"][0]["labels"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("removed")),
        "{v}"
    );
    repo.ok(["merge", "--abort"]);
    let (code, v) = merge_json(&repo, &["theirs", "--strategy", "theirs"]);
    assert_eq!(
        (code, &v["outcome"]),
        (0, &serde_json::json!("committed")),
        "{v}"
    );
    let mut frames = sample.read(&repo);
    assert_eq!(
        Sample::frame(&mut frames).objects.len(),
        4,
        "their changed object is back"
    );
}

/// Two teams labelling different images of one COCO file merge with no conflict.
#[test]
fn two_teams_label_different_images_of_one_coco_file() {
    let sample = &SAMPLES[0];
    let repo = TestRepo::init();
    copy_contents(&fixture(sample.dir), repo.root());
    let mut frames = sample.read(&repo);
    let mut second = FrameLabels::new("b.jpg", Units::Pixels);
    second.width = Some(10);
    second.height = Some(5);
    frames.push(second);
    sample.write(&repo, &frames);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "two images, one labelled"]);
    repo.ok(["branch", "team-b"]);
    let mut a = frames.clone();
    a[0].objects.push(Object::new(
        "a",
        Some(BBox {
            x: 6.0,
            y: 0.0,
            w: 2.0,
            h: 2.0,
        }),
    ));
    sample.write(&repo, &a);
    repo.ok(["commit", "-a", "-m", "team A labels a.jpg"]);
    repo.ok(["switch", "team-b"]);
    let mut b = frames.clone();
    b[1].objects.push(Object::new(
        "c",
        Some(BBox {
            x: 1.0,
            y: 1.0,
            w: 3.0,
            h: 2.0,
        }),
    ));
    b[1].objects.push(Object::new(
        "a",
        Some(BBox {
            x: 5.0,
            y: 1.0,
            w: 3.0,
            h: 2.0,
        }),
    ));
    sample.write(&repo, &b);
    repo.ok(["commit", "-a", "-m", "team B labels b.jpg"]);
    repo.ok(["switch", "main"]);
    let (code, v) = merge_json(&repo, &["team-b"]);
    assert_eq!((code, v["outcome"].as_str()), (0, Some("committed")), "{v}");
    let merged = sample.read(&repo);
    assert_eq!(merged.len(), 2);
    assert_eq!(summary(&merged[0].objects), summary(&a[0].objects));
    assert_eq!(summary(&merged[1].objects), summary(&b[1].objects));
}

#[test]
fn two_teams_edit_different_rows_of_the_sidecar() {
    let repo = TestRepo::init();
    repo.write("meta.csv", "path,split\r\na.jpg,train\r\nb.jpg,val\r\n");
    repo.write("a.jpg", "a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["branch", "team-b"]);
    repo.write("meta.csv", "path,split\r\na.jpg,test\r\nb.jpg,val\r\n");
    repo.ok(["commit", "-a", "-m", "a is a test frame"]);
    repo.ok(["switch", "team-b"]);
    repo.write(
        "meta.csv",
        "path,split\nb.jpg,holdout\nc.jpg,train\na.jpg,train\n",
    );
    repo.ok(["commit", "-a", "-m", "b held out, c added"]);
    repo.ok(["switch", "main"]);
    let out = repo.ok(["merge", "team-b"]);
    assert!(
        out.stdout
            .contains("Merged metadata of meta.csv row by row"),
        "{}",
        out.stdout
    );
    // Our lines (CRLF) stay, their changed row is rewritten in place, their new
    // row appended.
    assert_eq!(
        repo.read_string("meta.csv"),
        "path,split\r\na.jpg,test\r\nb.jpg,holdout\nc.jpg,train\n"
    );

    // The same row's attribute changed differently: a metadata conflict.
    repo.ok(["switch", "team-b"]);
    repo.write(
        "meta.csv",
        "path,split\nb.jpg,holdout\nc.jpg,val\na.jpg,train\n",
    );
    repo.ok(["commit", "-a", "-m", "c is val"]);
    repo.ok(["switch", "main"]);
    repo.write(
        "meta.csv",
        "path,split\r\na.jpg,test\r\nb.jpg,holdout\nc.jpg,test\n",
    );
    repo.ok(["commit", "-a", "-m", "c is test"]);
    let (code, v) = merge_json(&repo, &["team-b"]);
    assert_eq!(code, 1, "{v}");
    let c = &v["conflicts"][0];
    assert_eq!(c["kind"], "metadata", "{v}");
    assert_eq!(c["meta"][0]["frame"], "c.jpg", "{v}");
    assert_eq!(c["meta"][0]["field"], "split", "{v}");
    assert_eq!(c["meta"][0]["ours"], "test", "{v}");
    assert_eq!(c["meta"][0]["theirs"], "val", "{v}");
    let status = repo.ok(["status"]).stdout;
    assert!(status.contains("metadata conflict: meta.csv"), "{status}");
    repo.ok(["resolve", "meta.csv", "--theirs"]);
    repo.ok(["merge", "--continue"]);
    assert_eq!(
        repo.read_string("meta.csv"),
        "path,split\r\na.jpg,test\r\nb.jpg,holdout\nc.jpg,val\n"
    );
    assert_eq!(head_parents(&repo), 2);
}

/// Files added, removed or changed on one side (every combination with the other
/// side doing the same to other files) merge cleanly at frame level.
#[test]
fn frame_level_matrix_merges_cleanly() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    for k in 0..4 {
        repo.write(format!("extra/o{k}.bin"), pseudo_random_bytes(3000, k));
        repo.write(format!("extra/t{k}.bin"), pseudo_random_bytes(3000, 10 + k));
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["tag", "base"]);
    let edit = |side: &str, e: Edit, n: u64| match e {
        Edit::None => {}
        Edit::Add => repo.write(
            format!("extra/{side}-new.bin"),
            pseudo_random_bytes(500, 99 + n),
        ),
        Edit::Remove => repo.remove(format!("extra/{side}0.bin")),
        Edit::Change => repo.write(
            format!("extra/{side}1.bin"),
            pseudo_random_bytes(700, 50 + n),
        ),
    };
    let snapshot = |repo: &TestRepo| -> BTreeMap<String, Vec<u8>> {
        let mut m = BTreeMap::new();
        for e in std::fs::read_dir(repo.path("extra")).expect("extra") {
            let e = e.expect("entry");
            m.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            );
        }
        m
    };
    for (i, ours) in EDITS.iter().enumerate() {
        for (j, theirs) in EDITS.iter().enumerate() {
            let ctx = format!("ours {ours:?}, theirs {theirs:?}");
            // The expected result: both edits applied to one worktree.
            repo.ok(["switch", "-q", "--detach", "base"]);
            edit("o", *ours, 1);
            edit("t", *theirs, 2);
            let want = snapshot(&repo);
            repo.ok(["restore", "."]);
            for p in ["extra/o-new.bin", "extra/t-new.bin"] {
                if repo.exists(p) {
                    repo.remove(p);
                }
            }
            let tb = format!("ft{i}{j}");
            repo.ok(["switch", "-c", &tb, "base"]);
            if *theirs != Edit::None {
                edit("t", *theirs, 2);
                repo.ok(["add", "-A"]);
                repo.ok(["commit", "-m", "theirs"]);
            }
            repo.ok(["switch", "-c", &format!("fo{i}{j}"), "base"]);
            if *ours != Edit::None {
                edit("o", *ours, 1);
                repo.ok(["add", "-A"]);
                repo.ok(["commit", "-m", "ours"]);
            }
            let (code, v) = merge_json(&repo, &["--no-ff", &tb]);
            assert_eq!(code, 0, "{ctx}: {v}");
            assert_eq!(snapshot(&repo), want, "{ctx}");
            assert_eq!(repo.ok(["status", "--short"]).stdout, "", "{ctx}");
            if *theirs != Edit::None {
                assert_eq!(
                    head_parents(&repo),
                    2,
                    "{ctx}: --no-ff makes a merge commit"
                );
            }
        }
    }
    repo.ok(["fsck"]);
}

/// A file both sides changed that is not a label file conflicts at file level;
/// `--ff-only` refuses a diverged merge; a dirty file the merge touches is refused.
#[test]
fn file_conflicts_ff_only_and_dirty_worktree() {
    let repo = TestRepo::init();
    repo.write("data/blob.bin", pseudo_random_bytes(2000, 1));
    repo.write("data/other.bin", pseudo_random_bytes(2000, 2));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["branch", "side"]);
    repo.write("data/blob.bin", pseudo_random_bytes(2000, 3));
    repo.ok(["commit", "-a", "-m", "ours"]);
    repo.ok(["switch", "side"]);
    repo.write("data/blob.bin", pseudo_random_bytes(2000, 4));
    repo.write("data/other.bin", pseudo_random_bytes(2000, 5));
    repo.ok(["commit", "-a", "-m", "theirs"]);
    repo.ok(["switch", "main"]);

    assert!(
        repo.fails(["merge", "--ff-only", "side"])
            .stderr
            .contains("fast-forward")
    );

    repo.write("data/other.bin", b"local edit");
    let r = repo.fails(["merge", "side"]);
    assert!(r.stderr.contains("data/other.bin"), "{r}");
    assert!(!repo.path(".dsv/MERGE_STATE").exists());
    assert_eq!(repo.read("data/other.bin"), b"local edit");
    repo.ok(["restore", "data/other.bin"]);

    let (code, v) = merge_json(&repo, &["side"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["conflicts"][0]["kind"], "content");
    assert_eq!(repo.read("data/other.bin"), pseudo_random_bytes(2000, 5));
    assert_eq!(
        repo.read("data/blob.bin"),
        pseudo_random_bytes(2000, 3),
        "ours kept in the worktree"
    );
    // Editing the file and adding it resolves it.
    repo.write("data/blob.bin", b"hand merged");
    repo.ok(["add", "data/blob.bin"]);
    repo.ok(["merge", "--continue"]);
    assert_eq!(head_parents(&repo), 2);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "");
    assert_eq!(repo.read("data/blob.bin"), b"hand merged");
}

/// Every file under the worktree (outside `.dsv`), by path.
fn worktree_bytes(root: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_with_bytes(root, |rel| rel == ".dsv")
}

/// The index as (path, mode, id) triples.
fn index_entries(root: &Path) -> Vec<(Vec<u8>, String, String)> {
    let repo =
        dsv::Repository::discover(root, dsv::lock::Access::Read, &dsv::OpenOptions::default())
            .expect("open repository");
    repo.index
        .load()
        .expect("load index")
        .entries
        .into_iter()
        .map(|(p, e)| (p, e.mode.label().to_string(), e.id.to_hex()))
        .collect()
}

/// A conflicting merge that also wrote clean changes, aborted, restores the worktree,
/// the index, HEAD and the branch byte for byte.
#[test]
fn abort_restores_pre_merge_state_byte_for_byte() {
    let sample = &SAMPLES[0];
    let (repo, classes) = base_repo(sample);
    repo.write("extra/keep.bin", pseudo_random_bytes(4000, 7));
    repo.write("extra/gone.bin", pseudo_random_bytes(4000, 8));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "extras"]);
    repo.ok(["branch", "theirs"]);
    edit_file(&repo, sample, Edit::Change, 1, 0.0, "");
    repo.ok(["commit", "-a", "-m", "ours moves 1"]);
    repo.ok(["switch", "theirs"]);
    let mut frames = sample.read(&repo);
    Sample::frame(&mut frames).objects[1].class = classes.last().cloned().unwrap_or_default() + "x";
    sample.write(&repo, &frames);
    edit_file(&repo, sample, Edit::Add, 0, 900.0, &classes[0]);
    repo.remove("extra/gone.bin");
    repo.write("extra/keep.bin", pseudo_random_bytes(4000, 9));
    repo.write("extra/new/deep.bin", pseudo_random_bytes(100, 10));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "theirs"]);
    repo.ok(["switch", "main"]);
    // An untracked file the merge does not touch must survive too.
    repo.write("notes.txt", "mine");

    let before_files = worktree_bytes(repo.root());
    let before_index = index_entries(repo.root());
    let head = repo.read(".dsv/HEAD");
    let branch = repo.read(".dsv/refs/heads/main");

    let (code, v) = merge_json(&repo, &["theirs"]);
    assert_eq!(code, 1, "{v}");
    assert_ne!(
        worktree_bytes(repo.root()),
        before_files,
        "the merge wrote files"
    );
    assert!(repo.path(".dsv/MERGE_HEAD").exists());
    repo.ok(["merge", "--abort"]);

    assert_eq!(worktree_bytes(repo.root()), before_files);
    assert_eq!(index_entries(repo.root()), before_index);
    assert_eq!(repo.read(".dsv/HEAD"), head);
    assert_eq!(repo.read(".dsv/refs/heads/main"), branch);
    for f in ["MERGE_STATE", "MERGE_HEAD", "MERGE_MSG"] {
        assert!(!repo.path(format!(".dsv/{f}")).exists(), "{f} removed");
    }
    let st = repo.ok(["status", "--short"]);
    assert_eq!(st.stdout, "?? notes.txt\n");
    repo.ok(["fsck"]);
}

/// Staged changes made during a conflicted merge are undone by `--abort` too.
#[test]
fn abort_undoes_files_staged_during_the_merge() {
    let repo = TestRepo::init();
    repo.write("a.bin", pseudo_random_bytes(100, 1));
    repo.write("b.bin", pseudo_random_bytes(100, 2));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["branch", "x"]);
    repo.write("a.bin", pseudo_random_bytes(100, 3));
    repo.ok(["commit", "-a", "-m", "ours"]);
    repo.ok(["switch", "x"]);
    repo.write("a.bin", pseudo_random_bytes(100, 4));
    repo.ok(["commit", "-a", "-m", "theirs"]);
    repo.ok(["switch", "main"]);
    let before_index = index_entries(repo.root());
    repo.write("untracked.txt", "mine, before the merge");
    let before = worktree_bytes(repo.root());
    assert_eq!(repo.run(["merge", "x"]).code, 1);
    repo.write("b.bin", b"edited during the merge");
    repo.ok(["add", "-A"]);
    repo.ok(["merge", "--abort"]);
    assert_eq!(worktree_bytes(repo.root()), before, "untracked file kept");
    assert_eq!(index_entries(repo.root()), before_index);
    assert_eq!(repo.ok(["status", "--short"]).stdout, "?? untracked.txt\n");
}

/// cherry-pick applies one commit's object edits onto another branch; revert undoes them.
#[test]
fn cherry_pick_and_revert_use_the_label_merge() {
    let sample = &SAMPLES[1];
    let (repo, classes) = base_repo(sample);
    repo.ok(["branch", "other"]);
    // On main: object 0 moves (so the file differs from the picked commit's parent).
    edit_file(&repo, sample, Edit::Change, 0, 0.0, "");
    repo.ok(["commit", "-a", "-m", "move 0"]);
    repo.ok(["switch", "other"]);
    edit_file(&repo, sample, Edit::Remove, 3, 0.0, "");
    repo.ok(["commit", "-a", "-m", "remove 3"]);
    edit_file(&repo, sample, Edit::Add, 0, 500.0, &classes[0]);
    repo.ok(["commit", "-a", "-m", "add one"]);
    repo.ok(["switch", "main"]);

    let r = repo.ok(["cherry-pick", "--json", "other"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["outcome"], "committed", "{v}");
    assert_eq!(head_parents(&repo), 1);
    let log = repo.ok(["log", "--oneline", "-n", "1"]);
    assert!(log.stdout.contains("add one"), "{log}");
    let mut frames = sample.read(&repo);
    let objs = Sample::frame(&mut frames).objects.clone();
    // Move of 0 kept, 3 still there (only "add one" was picked), the new object added.
    assert_eq!(objs.len(), 5, "{objs:?}");

    let r = repo.ok(["revert", "--json", "HEAD"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["outcome"], "committed", "{v}");
    let mut frames = sample.read(&repo);
    assert_eq!(Sample::frame(&mut frames).objects.len(), 4);
    let log = repo.ok(["log", "--oneline", "-n", "1"]);
    assert!(log.stdout.contains("Revert \"add one\""), "{log}");

    // Reverting the move of object 0 on top of everything else.
    let r = repo.ok(["revert", "HEAD~2"]);
    assert!(r.code == 0, "{r}");
    let mut frames = sample.read(&repo);
    let units = Sample::frame(&mut frames).units;
    assert!(
        Sample::frame(&mut frames).objects.iter().all(|o| o
            .bbox
            .is_some_and(|b| b.y.abs() < 1e-6 * unit(units).max(1e-3))),
        "object 0 back at y=0"
    );
}

/// Bad input: unknown branch, --continue without a merge, resolve of a non-conflicted path.
#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let repo = TestRepo::init();
    repo.write("a.txt", "a");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let r = repo.fails(["merge", "nope"]);
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert!(
        repo.fails(["merge", "--continue"])
            .stderr
            .contains("no merge")
    );
    assert!(repo.fails(["merge", "--abort"]).stderr.contains("no merge"));
    assert!(
        repo.fails(["resolve", "a.txt", "--ours"])
            .stderr
            .contains("no merge")
    );
    assert_eq!(repo.expect_code(2, ["merge"]).code, 2);
    assert!(repo.ok(["merge", "main"]).stdout.contains("up to date"));
}

/// A merge killed at each of its writes in turn (`DSV_FAULT=kill:N`) leaves either the
/// pre-merge state, a merge in progress that `--abort` takes back to it byte for byte,
/// or the finished merge; fsck is clean every time.
#[test]
fn merge_killed_at_every_write_recovers() {
    let sample = &SAMPLES[0];
    let (repo, classes) = base_repo(sample);
    repo.write("extra/keep.bin", pseudo_random_bytes(3000, 1));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "extras"]);
    repo.ok(["branch", "theirs"]);
    edit_file(&repo, sample, Edit::Change, 0, 0.0, "");
    repo.ok(["commit", "-a", "-m", "ours"]);
    repo.ok(["switch", "theirs"]);
    edit_file(&repo, sample, Edit::Add, 0, 900.0, &classes[0]);
    repo.write("extra/keep.bin", pseudo_random_bytes(3000, 2));
    repo.write("extra/new.bin", pseudo_random_bytes(3000, 3));
    repo.ok(["commit", "-a", "-m", "theirs"]);
    repo.ok(["switch", "main"]);
    let before_files = worktree_bytes(repo.root());
    let before_index = index_entries(repo.root());
    let before_head = repo.read(".dsv/refs/heads/main");
    let mut finished = false;
    for n in 1..400 {
        let out = repo
            .cmd()
            .args(["merge", "theirs"])
            .env("DSV_FAULT", format!("kill:{n}"))
            .output()
            .expect("running dsv");
        let killed = out.status.code().is_none();
        let moved = repo.read(".dsv/refs/heads/main") != before_head;
        let status: serde_json::Value =
            serde_json::from_str(&repo.ok(["status", "--json"]).stdout).expect("status json");
        repo.ok(["fsck"]);
        if moved {
            // The merge commit exists: the merge is complete, whatever was left behind.
            assert!(
                status.get("merge").is_none(),
                "kill:{n}: stale state hidden: {status}"
            );
            assert!(
                status["staged"].as_array().is_some_and(Vec::is_empty),
                "kill:{n}: {status}"
            );
            assert_eq!(head_parents(&repo), 2, "kill:{n}");
            assert_eq!(
                repo.read("extra/new.bin"),
                pseudo_random_bytes(3000, 3),
                "kill:{n}"
            );
            if !killed {
                finished = true;
                break;
            }
            // A write command clears a state the crash left behind the merge commit.
            assert!(repo.ok(["merge", "theirs"]).stdout.contains("up to date"));
            assert!(!repo.path(".dsv/MERGE_STATE").exists(), "kill:{n}");
            repo.ok(["reset", "--hard", "HEAD~1"]);
        } else if status.get("merge").is_some() {
            repo.ok(["merge", "--abort"]);
        }
        assert_eq!(worktree_bytes(repo.root()), before_files, "kill:{n}");
        assert_eq!(index_entries(repo.root()), before_index, "kill:{n}");
        assert!(
            killed,
            "kill:{n}: the merge neither finished nor was killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(finished, "the merge never ran to the end");
}

/// The merge base is decided by the history, not by commit times: a commit made
/// with a clock behind its parent's is still the base when it is the newest
/// common ancestor.
#[test]
fn merge_base_follows_history_not_a_skewed_clock() {
    let repo = TestRepo::init();
    let at = |time: &str, args: &[&str]| {
        let r = repo
            .cmd()
            .args(args)
            .env("DSV_AUTHOR_DATE", time)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    };
    repo.write("notes.bin", b"\x00\x01 version 1");
    at("1700000300", &["add", "-A"]);
    at("1700000300", &["commit", "-m", "B"]);
    // X: made on a machine whose clock is behind, after B.
    repo.write("notes.bin", b"\x00\x01 version 2");
    at("1700000100", &["add", "-A"]);
    at("1700000100", &["commit", "-m", "X"]);
    at("1700000100", &["switch", "-c", "dev"]);
    repo.write("other.bin", b"\x00\x02 dev");
    at("1700000500", &["add", "-A"]);
    at("1700000500", &["commit", "-m", "D"]);
    at("1700000500", &["switch", "main"]);
    repo.write("notes.bin", b"\x00\x01 version 3");
    at("1700000400", &["add", "-A"]);
    at("1700000400", &["commit", "-m", "M"]);
    // Against X, only main changed notes.bin: clean. Against B both sides would have.
    let (code, report) = merge_json(&repo, &["dev", "-m", "merge dev"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(head_parents(&repo), 2);
    assert_eq!(repo.read("notes.bin"), b"\x00\x01 version 3".to_vec());
    assert_eq!(repo.read("other.bin"), b"\x00\x02 dev".to_vec());
}
