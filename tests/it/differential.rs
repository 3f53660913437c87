//! Differential tests against Datumaro (issue 17, "Keeping it true"): what dsv reads
//! from every fixture data set, and what `dsv diff --json` reports for scripted edits,
//! must be what Datumaro, an independent implementation of the same formats, reads
//! and compares.
//!
//! Datumaro (PyPI, pinned in `tests/differential/requirements.txt`) is installed by
//! `tests/differential/install-datumaro.sh` into `target/datumaro-venv` when missing,
//! as tests/it/remote.rs installs moto; `.ci/run` runs the same script first. Without
//! Python or PyPI these tests fail saying so: they are never skipped.
//!
//! Every disagreement is a dsv bug or one of the deliberate differences listed in
//! [`KNOWN`] with its reason; a listed difference that no longer occurs fails the
//! test too, so the list cannot go stale.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::{TestRepo, copy_contents};
use serde_json::Value;

/// Boxes agree when every coordinate is within this many pixels.
const BOX_TOLERANCE_PX: f64 = 0.005;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn fixtures() -> PathBuf {
    manifest().join("fixtures")
}

static INSTALL: Mutex<()> = Mutex::new(());

/// The Python of the Datumaro virtualenv, installed first when missing.
pub(crate) fn datumaro_python() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = manifest().join("target/datumaro-venv");
    let script = manifest().join("tests/differential/install-datumaro.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| panic!("Datumaro tests need `sh` to run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "Datumaro tests need Datumaro: {} failed (it needs python3 with venv and PyPI):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    venv.join("bin/python")
}

/// Runs tests/differential/datumaro_dump.py with `args`; its JSON output.
pub(crate) fn datumaro<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let python = datumaro_python();
    let out = Command::new(&python)
        .arg(manifest().join("tests/differential/datumaro_dump.py"))
        .args(args)
        .output()
        .expect("running Datumaro's Python");
    assert!(
        out.status.success(),
        "datumaro_dump.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("datumaro_dump.py printed no JSON")
}

/// One fixture data set: where it is under fixtures/ and Datumaro's name for its
/// format.
struct Case {
    name: &'static str,
    dir: &'static str,
    format: &'static str,
}

/// Every data set under fixtures/datumaro (copied from the MIT `datumaro-formats`
/// samples; their Supervisely point cloud is in no format dsv reads, and the KITTI
/// lidar scan may not be copied), and the demo's (`fixtures/demo`, Ultralytics YOLO). VOC is read as `voc_detection`: dsv reads the
/// objects of `Annotations/`, not the segmentation masks, image-level class lists or
/// person-layout parts that Datumaro's whole-`voc` import adds as annotations.
const CASES: &[Case] = &[
    Case {
        name: "coco",
        dir: "datumaro/coco_dataset/coco_instances",
        format: "coco_instances",
    },
    Case {
        name: "voc",
        dir: "datumaro/voc_dataset/voc_dataset1",
        format: "voc_detection",
    },
    Case {
        name: "yolo",
        dir: "datumaro/yolo_dataset/strict",
        format: "yolo",
    },
    Case {
        name: "kitti_detection",
        dir: "datumaro/kitti_dataset/kitti_detection",
        format: "kitti_detection",
    },
    Case {
        name: "kitti_3d",
        dir: "datumaro/kitti_dataset/kitti_3d/training",
        format: "kitti3d",
    },
    // Not the CVAT task export: it has shapes with `label=""`, which Datumaro reads as
    // unlabelled annotations and dsv refuses (see
    // `cvat_task_with_unlabelled_shapes_is_refused_where_datumaro_reads_them`).
    Case {
        name: "cvat_project",
        dir: "datumaro/cvat_dataset/for_images/export_project",
        format: "cvat",
    },
    Case {
        name: "roboflow_coco",
        dir: "datumaro/roboflow_dataset/coco",
        format: "roboflow_coco",
    },
    Case {
        name: "roboflow_voc",
        dir: "datumaro/roboflow_dataset/voc",
        format: "roboflow_voc",
    },
    Case {
        name: "roboflow_yolo",
        dir: "datumaro/roboflow_dataset/yolo",
        format: "roboflow_yolo",
    },
    Case {
        name: "demo",
        dir: "demo",
        format: "yolo",
    },
];

/// A deliberate or known difference: in data set `case`, Datumaro has annotations of
/// `kind` that dsv has no object for.
struct Known {
    case: &'static str,
    kind: &'static str,
    reason: &'static str,
}

/// Differences that are understood. Each must still occur (else remove it here).
const KNOWN: &[Known] = &[
    // Empty since CVAT polylines and points became objects (issue 17.5).
];

/// One object as compared: class and pixel box (x, y, w, h from the top-left).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Obj {
    pub(crate) class: String,
    pub(crate) kind: String,
    pub(crate) bbox: Option<[f64; 4]>,
}

impl Obj {
    fn same(&self, other: &Obj) -> bool {
        self.class == other.class
            && match (self.bbox, other.bbox) {
                (Some(a), Some(b)) => a
                    .iter()
                    .zip(b.iter())
                    .all(|(x, y)| (x - y).abs() <= BOX_TOLERANCE_PX),
                (None, None) => true,
                _ => false,
            }
    }
}

/// A dsv box as JSON: `bbox` or `box` (the name may change, issue 17.14), as a
/// `{x, y, w, h}` map or an `[x, y, w, h]` array; scaled to pixels when `scale`
/// (the image's width and height) is given.
pub(crate) fn dsv_box(object: &Value, scale: Option<(f64, f64)>) -> Option<[f64; 4]> {
    let b = object.get("bbox").or_else(|| object.get("box"))?;
    if b.is_null() {
        return None;
    }
    let v: [f64; 4] = match b {
        Value::Array(a) => {
            let n: Vec<f64> = a.iter().map(|x| x.as_f64().expect("box number")).collect();
            n.try_into().expect("a box of 4 numbers")
        }
        Value::Object(_) => ["x", "y", "w", "h"].map(|k| b[k].as_f64().expect("box field")),
        other => panic!("unexpected box {other}"),
    };
    Some(match scale {
        Some((w, h)) => [v[0] * w, v[1] * h, v[2] * w, v[3] * h],
        None => v,
    })
}

/// The box of a Datumaro object or change side.
pub(crate) fn dm_box(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    let n: Vec<f64> = a.iter().map(|x| x.as_f64().expect("box number")).collect();
    Some(n.try_into().expect("a box of 4 numbers"))
}

/// A class as compared: an unlabelled annotation (Datumaro's label None; dsv's class
/// "" today, perhaps `null` later) is "".
pub(crate) fn dm_class(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Pairs `a` with `b` (class equal, boxes within the tolerance); what is left on each side.
pub(crate) fn unpaired(a: &[Obj], b: &[Obj]) -> (Vec<Obj>, Vec<Obj>) {
    let mut b_left: Vec<Option<&Obj>> = b.iter().map(Some).collect();
    let mut a_left = Vec::new();
    for x in a {
        match b_left.iter_mut().find(|y| y.is_some_and(|y| y.same(x))) {
            Some(slot) => *slot = None,
            None => a_left.push(x.clone()),
        }
    }
    (a_left, b_left.into_iter().flatten().cloned().collect())
}

/// The Datumaro annotations of a frame that correspond to dsv objects, for data set
/// `case` in Datumaro format `format`. Every other annotation must be accounted
/// for, or the test fails.
fn dm_objects(format: &str, frame: &Value, problems: &mut Vec<String>, at: &str) -> Vec<Obj> {
    let anns = frame["objects"].as_array().expect("objects");
    let obj = |a: &Value| Obj {
        class: dm_class(&a["class"]),
        kind: a["kind"].as_str().unwrap().to_string(),
        bbox: dm_box(&a["box"]),
    };
    let mut out = Vec::new();
    for a in anns {
        let kind = a["kind"].as_str().unwrap();
        let is_coco = format.contains("coco");
        match kind {
            "bbox" => out.push(obj(a)),
            // Datumaro splits one COCO annotation into its bbox and its segmentation
            // (polygon or mask) with the same id; dsv keeps one object with the box
            // (and the polygon as its geometry). The segmentation must belong to a box.
            "polygon" | "mask" if is_coco => {
                let has_box = anns
                    .iter()
                    .any(|b| b["kind"] == "bbox" && b["id"] == a["id"] && b["class"] == a["class"]);
                if !has_box {
                    problems.push(format!(
                        "{at}: Datumaro has a COCO {kind} with no bbox of the same id: {a}"
                    ));
                }
            }
            // CVAT shapes are each an object; dsv's box is the shape's bounds.
            "polygon" | "polyline" | "points" | "ellipse" | "cuboid_2d" | "mask"
                if format == "cvat" =>
            {
                out.push(obj(a))
            }
            _ => problems.push(format!(
                "{at}: Datumaro reports a {kind} annotation that this test does not know how to compare with dsv: {a}"
            )),
        }
    }
    out
}

/// Commits every fixture data set in one repository, and compares each frame's
/// objects from `dsv query true --json` with Datumaro's import of the data set.
#[test]
fn fixture_imports_agree_with_datumaro() {
    let specs: Vec<String> = CASES
        .iter()
        .map(|c| {
            format!(
                "{}={}:{}",
                c.name,
                c.format,
                fixtures().join(c.dir).display()
            )
        })
        .collect();
    let dm = datumaro(std::iter::once("import".to_string()).chain(specs));

    let t = TestRepo::init();
    for case in CASES {
        copy_contents(&fixtures().join(case.dir), &t.path(case.dir));
    }
    t.ok(["add", "."]);
    t.ok(["commit", "-m", "fixtures"]);
    let q: Value = serde_json::from_str(&t.ok(["query", "true", "--json"]).stdout).unwrap();
    assert_eq!(
        q["invalid"],
        Value::Array(vec![]),
        "dsv found invalid label files"
    );

    let mut problems = Vec::new();
    let mut used_known = BTreeSet::new();
    let mut dsv_frames: BTreeMap<String, &Value> = BTreeMap::new();
    for f in q["frames"].as_array().unwrap() {
        dsv_frames.insert(f["path"].as_str().unwrap().to_string(), f);
    }
    let mut claimed = BTreeSet::new();
    for case in CASES {
        let dm_frames = dm["datasets"][case.name].as_object().unwrap();
        assert!(
            !dm_frames.is_empty(),
            "{}: Datumaro imported no frame",
            case.name
        );
        let prefix = format!("{}/", case.dir);
        let mine: BTreeMap<&str, &Value> = dsv_frames
            .iter()
            .filter_map(|(p, f)| p.strip_prefix(&prefix).map(|r| (r, *f)))
            .collect();
        claimed.extend(mine.keys().map(|r| format!("{prefix}{r}")));
        let names: BTreeSet<&str> = mine
            .keys()
            .copied()
            .chain(dm_frames.keys().map(String::as_str))
            .collect();
        for name in names {
            let at = format!("{}: {name}", case.name);
            let (Some(d), Some(m)) = (mine.get(name), dm_frames.get(name)) else {
                problems.push(format!(
                    "{at}: frame only in {}",
                    if mine.contains_key(name) {
                        "dsv"
                    } else {
                        "Datumaro"
                    }
                ));
                continue;
            };
            let scale = (d["units"] == "normalized").then(|| {
                let w = m["width"].as_f64().expect("Datumaro knows the image width");
                let h = m["height"]
                    .as_f64()
                    .expect("Datumaro knows the image height");
                (w, h)
            });
            let dsv_objs: Vec<Obj> = d
                .get("objects")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|o| Obj {
                            class: dm_class(&o["class"]),
                            kind: "dsv".into(),
                            bbox: dsv_box(o, scale),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let dm_objs = dm_objects(case.format, m, &mut problems, &at);
            let (only_dm, only_dsv) = unpaired(&dm_objs, &dsv_objs);
            for o in only_dm {
                match KNOWN
                    .iter()
                    .position(|k| k.case == case.name && k.kind == o.kind)
                {
                    Some(i) => {
                        used_known.insert(i);
                    }
                    None => problems.push(format!("{at}: only Datumaro has {o:?}")),
                }
            }
            for o in only_dsv {
                problems.push(format!("{at}: only dsv has {o:?}"));
            }
        }
    }
    for p in dsv_frames.keys().filter(|p| !claimed.contains(*p)) {
        problems.push(format!("dsv frame {p} belongs to no data set of this test"));
    }
    for (i, k) in KNOWN.iter().enumerate() {
        if !used_known.contains(&i) {
            problems.push(format!(
                "listed difference no longer occurs, remove it from KNOWN: {}: {} ({})",
                k.case, k.kind, k.reason
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "dsv and Datumaro {} disagree:\n{}",
        dm["datumaro"],
        problems.join("\n")
    );
}

/// The scripted edits, in pixels on the 10x5 Roboflow images: frame `train_001`
/// deleted; `train_002`'s box reclassified (label_1 to label_0); in `val_001` the
/// label_0 box deleted and the label_1 box moved 1 px right; a new frame `val_002`
/// (a copy of `val_001.jpg`) with two boxes. Boxes are (class, [x, y, w, h]).
const TRAIN_002_AFTER: &[(&str, [f64; 4])] = &[("label_0", [0.0, 0.0, 2.0, 4.0])];
const VAL_001_AFTER: &[(&str, [f64; 4])] = &[("label_1", [1.0, 0.0, 9.0, 1.0])];
const VAL_002_NEW: &[(&str, [f64; 4])] = &[
    ("label_1", [2.0, 1.0, 3.0, 2.0]),
    ("label_0", [5.0, 2.0, 4.0, 3.0]),
];
const IMAGE_W: f64 = 10.0;
const IMAGE_H: f64 = 5.0;

/// A YOLO label file (classes label_0 and label_1 are ids 0 and 1 in data.yaml).
fn yolo_text(boxes: &[(&str, [f64; 4])]) -> String {
    boxes
        .iter()
        .map(|(c, [x, y, w, h])| {
            let id = c.strip_prefix("label_").unwrap();
            format!(
                "{id} {} {} {} {}\n",
                (x + w / 2.0) / IMAGE_W,
                (y + h / 2.0) / IMAGE_H,
                w / IMAGE_W,
                h / IMAGE_H
            )
        })
        .collect()
}

/// A Pascal VOC annotation file as Roboflow writes it.
fn voc_xml(file: &str, boxes: &[(&str, [f64; 4])]) -> String {
    let mut s = format!(
        "<annotation>\n  <folder></folder>\n  <filename>{file}</filename>\n  <path>{file}</path>\n  <source>\n    <database>roboflow.ai</database>\n  </source>\n  <size>\n    <width>{IMAGE_W}</width>\n    <height>{IMAGE_H}</height>\n    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n"
    );
    for (c, [x, y, w, h]) in boxes {
        s.push_str(&format!(
            "  <object>\n    <name>{c}</name>\n    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <occluded>0</occluded>\n    <bndbox>\n      <xmin>{x}</xmin>\n      <xmax>{}</xmax>\n      <ymin>{y}</ymin>\n      <ymax>{}</ymax>\n    </bndbox>\n  </object>\n",
            x + w,
            y + h
        ));
    }
    s.push_str("</annotation>\n");
    s
}

/// The same image with different bytes (decoders stop at the JPEG or PNG end marker): every
/// 10x5 image of the fixtures is byte-identical, and dsv pairs a deleted image with an
/// added identical one as a rename.
fn distinct_copy(image: &[u8]) -> Vec<u8> {
    let mut v = image.to_vec();
    v.extend_from_slice(b"a new frame");
    v
}

/// YOLO edits. The new frame's image is a byte-identical copy of the deleted frame's,
/// so dsv reports the pair as a renamed frame (see `edits_agree_with_datumaro`).
fn apply_yolo_edits(t: &TestRepo) {
    t.remove("train/images/train_001.jpg");
    t.remove("train/labels/train_001.txt");
    t.write("train/labels/train_002.txt", yolo_text(TRAIN_002_AFTER));
    t.write("val/labels/val_001.txt", yolo_text(VAL_001_AFTER));
    t.write("val/images/val_002.jpg", t.read("val/images/val_001.jpg"));
    t.write("val/labels/val_002.txt", yolo_text(VAL_002_NEW));
}

fn apply_voc_edits(t: &TestRepo) {
    t.remove("train/train_001.jpg");
    t.remove("train/train_001.xml");
    t.write(
        "train/train_002.xml",
        voc_xml("train_002.jpg", TRAIN_002_AFTER),
    );
    t.write("val/val_001.xml", voc_xml("val_001.jpg", VAL_001_AFTER));
    t.write("val/val_002.jpg", distinct_copy(&t.read("val/val_001.jpg")));
    t.write("val/val_002.xml", voc_xml("val_002.jpg", VAL_002_NEW));
}

/// COCO annotations of `boxes` for image `image_id`, ids from `first_id`
/// (category ids: label_0 is 1, label_1 is 2, as in the Roboflow file).
fn coco_annotations(image_id: u64, first_id: u64, boxes: &[(&str, [f64; 4])]) -> Vec<Value> {
    boxes
        .iter()
        .enumerate()
        .map(|(i, (c, b))| {
            let cat: u64 = c.strip_prefix("label_").unwrap().parse::<u64>().unwrap() + 1;
            serde_json::json!({
                "id": first_id + i as u64, "image_id": image_id, "category_id": cat,
                "segmentation": [], "area": b[2] * b[3], "bbox": b, "iscrowd": 0
            })
        })
        .collect()
}

fn apply_coco_edits(t: &TestRepo) {
    let edit = |file: &str, f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&t.read(file)).unwrap();
        f(&mut v);
        t.write(file, serde_json::to_string_pretty(&v).unwrap());
    };
    let image_id = |v: &Value, name: &str| -> u64 {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["file_name"] == name)
            .unwrap_or_else(|| panic!("{name} in the COCO file"))["id"]
            .as_u64()
            .unwrap()
    };
    edit("train/_annotations.coco.json", &|v| {
        let gone = image_id(v, "train_001.jpg");
        let kept = image_id(v, "train_002.jpg");
        v["images"]
            .as_array_mut()
            .unwrap()
            .retain(|i| i["id"] != gone);
        let anns = v["annotations"].as_array_mut().unwrap();
        anns.retain(|a| a["image_id"] != gone);
        anns.retain(|a| a["image_id"] != kept);
        let max = anns
            .iter()
            .filter_map(|a| a["id"].as_u64())
            .max()
            .unwrap_or(0);
        anns.extend(coco_annotations(kept, max + 100, TRAIN_002_AFTER));
    });
    edit("val/_annotations.coco.json", &|v| {
        let val1 = image_id(v, "val_001.jpg");
        let mut new_image = v["images"][0].clone();
        new_image["id"] = 1000.into();
        new_image["file_name"] = "val_002.jpg".into();
        v["images"].as_array_mut().unwrap().push(new_image);
        let anns = v["annotations"].as_array_mut().unwrap();
        // The label_1 box keeps its id and moves; the label_0 box is deleted.
        anns.retain(|a| !(a["image_id"] == val1 && a["category_id"] == 1));
        for a in anns.iter_mut().filter(|a| a["image_id"] == val1) {
            a["bbox"] = serde_json::json!(VAL_001_AFTER[0].1);
        }
        anns.extend(coco_annotations(1000, 1000, VAL_002_NEW));
    });
    t.remove("train/train_001.jpg");
    t.write("val/val_002.jpg", distinct_copy(&t.read("val/val_001.jpg")));
}

/// One object change as compared.
#[derive(Debug, Clone)]
struct Change {
    kind: String,
    class: String,
    old_class: String,
    before: Option<[f64; 4]>,
    after: Option<[f64; 4]>,
}

impl Change {
    fn same(&self, o: &Change) -> bool {
        let close = |a: Option<[f64; 4]>, b: Option<[f64; 4]>| match (a, b) {
            (Some(a), Some(b)) => a
                .iter()
                .zip(b.iter())
                .all(|(x, y)| (x - y).abs() <= BOX_TOLERANCE_PX),
            (None, None) => true,
            _ => false,
        };
        self.kind == o.kind
            && self.class == o.class
            && self.old_class == o.old_class
            && close(self.before, o.before)
            && close(self.after, o.after)
    }
}

/// Commits the data set `base` (under fixtures/, or an absolute path), applies `edit`, commits it, and
/// compares `dsv diff --json HEAD~1 HEAD` with Datumaro's comparison (`dm_format`)
/// of the two versions, which must count `expected` object changes.
fn edits_agree_with_datumaro(
    base: impl AsRef<Path>,
    dm_format: &str,
    edit: fn(&TestRepo),
    expected: usize,
) {
    let original = fixtures().join(base);
    let base = original.display();
    let t = TestRepo::init();
    copy_contents(&original, t.root());
    t.ok(["add", "."]);
    t.ok(["commit", "-m", "original"]);
    edit(&t);
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "edited"]);
    let diff: Value =
        serde_json::from_str(&t.ok(["diff", "HEAD~1", "HEAD", "--json"]).stdout).unwrap();

    // Datumaro reads the edited version from a copy without `.dsv/`.
    let after = t.home().join("after");
    copy_contents(t.root(), &after);
    std::fs::remove_dir_all(after.join(".dsv")).unwrap();
    let dm = datumaro([
        "compare".as_ref(),
        dm_format.as_ref(),
        original.as_os_str(),
        after.as_os_str(),
    ]);
    let sizes = dm["sizes"].as_object().unwrap();

    let mut problems = Vec::new();
    let list = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    for (what, mine, theirs) in [
        ("added", &diff["frames"]["added"], &dm["frames_added"]),
        ("removed", &diff["frames"]["removed"], &dm["frames_removed"]),
    ] {
        if list(mine) != list(theirs) {
            problems.push(format!(
                "frames {what}: dsv {:?}, Datumaro {:?}",
                list(mine),
                list(theirs)
            ));
        }
    }

    let mut mine: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for file in diff["labels"].as_array().unwrap() {
        for frame in file["frames"].as_array().unwrap() {
            let path = frame["frame_path"]
                .as_str()
                .unwrap_or_else(|| panic!("dsv names no frame_path for {frame}"))
                .to_string();
            let scale = (frame["units"] == "normalized").then(|| {
                let s = sizes
                    .get(&path)
                    .unwrap_or_else(|| panic!("Datumaro knows no size of {path}"));
                (s[0].as_f64().unwrap(), s[1].as_f64().unwrap())
            });
            for c in frame["changes"].as_array().unwrap() {
                let side = |k: &str| {
                    let mut o = serde_json::Map::new();
                    o.insert("bbox".into(), c[k].clone());
                    dsv_box(&Value::Object(o), scale)
                };
                mine.entry(path.clone()).or_default().push(Change {
                    kind: c["kind"].as_str().unwrap().to_string(),
                    class: dm_class(&c["class"]),
                    old_class: c["old_class"].as_str().unwrap_or_default().to_string(),
                    before: side("before"),
                    after: side("after"),
                });
            }
        }
    }
    let mut theirs: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for (path, changes) in dm["changes"].as_object().unwrap() {
        for c in changes.as_array().unwrap() {
            theirs.entry(path.clone()).or_default().push(Change {
                kind: c["kind"].as_str().unwrap().to_string(),
                class: dm_class(&c["class"]),
                old_class: dm_class(&c["old_class"]),
                before: dm_box(&c["before"]),
                after: dm_box(&c["after"]),
            });
        }
    }
    let paths: BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
    for path in paths {
        let a = mine.get(path).cloned().unwrap_or_default();
        let mut b_left: Vec<Option<Change>> = theirs
            .get(path)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(Some)
            .collect();
        for x in a {
            match b_left
                .iter_mut()
                .find(|y| y.as_ref().is_some_and(|y| y.same(&x)))
            {
                Some(slot) => *slot = None,
                None => problems.push(format!("{path}: only dsv reports {x:?}")),
            }
        }
        for y in b_left.into_iter().flatten() {
            problems.push(format!("{path}: only Datumaro reports {y:?}"));
        }
    }
    // The edits must have been seen at all (a diff that reports nothing on both
    // sides would agree).
    assert_eq!(
        theirs.values().map(Vec::len).sum::<usize>(),
        expected,
        "Datumaro should see {expected} object changes: {dm}"
    );
    assert!(
        problems.is_empty(),
        "dsv diff and Datumaro {} disagree on the edits of {base}:\n{}",
        dm["datumaro"],
        problems.join("\n")
    );
}

#[test]
fn yolo_edits_diff_agrees_with_datumaro() {
    edits_agree_with_datumaro(
        "datumaro/roboflow_dataset/yolo",
        "roboflow_yolo",
        apply_yolo_edits,
        6,
    );
}

#[test]
fn voc_edits_diff_agrees_with_datumaro() {
    edits_agree_with_datumaro(
        "datumaro/roboflow_dataset/voc",
        "roboflow_voc",
        apply_voc_edits,
        6,
    );
}

#[test]
fn coco_edits_diff_agrees_with_datumaro() {
    edits_agree_with_datumaro(
        "datumaro/roboflow_dataset/coco",
        "roboflow_coco",
        apply_coco_edits,
        6,
    );
}

/// KITTI edits (pixels, 10x10 images): in `000030_10` the Truck moved half a pixel
/// right and the Van reclassified as a Car; in `000030_11` one Van deleted; a new
/// frame `000030_12` with two boxes.
fn apply_kitti_edits(t: &TestRepo) {
    let rest = "-1 -1 -1 -1 -1 -1 -1";
    t.write(
        "training/label_2/000030_10.txt",
        format!("Truck 1.0 0 -1 0.5 1 2.5 3 {rest}\nCar 0.0 0 -1 0 5 1 8 {rest}\n"),
    );
    t.write(
        "training/label_2/000030_11.txt",
        format!("Van 1.0 1 -1 0 0 2 2 {rest}\nVan 0.0 1 -1 6 6 7 9 {rest}\n"),
    );
    t.write(
        "training/image_2/000030_12.png",
        distinct_copy(&t.read("training/image_2/000030_11.png")),
    );
    t.write(
        "training/label_2/000030_12.txt",
        format!("Car 0.0 0 -1 1 1 4 4 {rest}\nPedestrian 0.0 0 -1 5 2 7 8 {rest}\n"),
    );
}

#[test]
fn kitti_edits_diff_agrees_with_datumaro() {
    edits_agree_with_datumaro(
        "datumaro/kitti_dataset/kitti_detection",
        "kitti_detection",
        apply_kitti_edits,
        5,
    );
}

/// Boxes as (class, [x, y, w, h]).
type Boxes<'a> = &'a [(&'a str, [f64; 4])];

/// A CVAT for images file: frames (name, width, height, boxes).
fn cvat_xml(frames: &[(&str, u32, u32, Boxes)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n    <task>\n      <labels>\n        <label>\n          <name>label1</name>\n        </label>\n        <label>\n          <name>label2</name>\n        </label>\n      </labels>\n    </task>\n  </meta>\n",
    );
    for (i, (name, w, h, boxes)) in frames.iter().enumerate() {
        s.push_str(&format!(
            "  <image id=\"{i}\" name=\"{name}\" width=\"{w}\" height=\"{h}\">\n"
        ));
        for (c, [x, y, bw, bh]) in boxes.iter() {
            s.push_str(&format!(
                "    <box label=\"{c}\" occluded=\"0\" xtl=\"{x}\" ytl=\"{y}\" xbr=\"{}\" ybr=\"{}\" z_order=\"0\"/>\n",
                x + bw,
                y + bh
            ));
        }
        s.push_str("  </image>\n");
    }
    s.push_str("</annotations>\n");
    s
}

/// The base of the CVAT edits: the fixture's task export (fixtures/datumaro/cvat_dataset/
/// for_images/export_task) with boxes only (its other shapes are compared on import,
/// not here), and a third frame.
fn cvat_base(dir: &Path) {
    let src = fixtures().join("datumaro/cvat_dataset/for_images/export_task/images");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    for name in ["img0.jpg", "img1.jpg"] {
        std::fs::copy(src.join(name), dir.join("images").join(name)).unwrap();
    }
    let img1 = std::fs::read(src.join("img1.jpg")).unwrap();
    std::fs::write(dir.join("images/img2.jpg"), distinct_copy(&img1)).unwrap();
    let xml = cvat_xml(&[
        (
            "img0.jpg",
            8,
            8,
            &[
                ("label1", [0.0, 2.0, 4.0, 2.0]),
                ("label2", [5.0, 5.0, 2.0, 2.0]),
            ],
        ),
        ("img1.jpg", 10, 10, &[("label2", [1.0, 1.0, 4.0, 4.0])]),
        ("img2.jpg", 10, 10, &[("label1", [2.0, 2.0, 3.0, 3.0])]),
    ]);
    std::fs::write(dir.join("train.xml"), xml).unwrap();
}

/// CVAT edits: in `img0` the label1 box moved half a pixel right and the label2 box
/// deleted; `img1`'s box reclassified; frame `img2` deleted; a new frame `img3`.
fn apply_cvat_edits(t: &TestRepo) {
    t.remove("images/img2.jpg");
    let mut img3 = distinct_copy(&t.read("images/img0.jpg"));
    img3.extend_from_slice(b" (img3)");
    t.write("images/img3.jpg", img3);
    t.write(
        "train.xml",
        cvat_xml(&[
            ("img0.jpg", 8, 8, &[("label1", [0.5, 2.0, 4.0, 2.0])]),
            ("img1.jpg", 10, 10, &[("label1", [1.0, 1.0, 4.0, 4.0])]),
            ("img3.jpg", 8, 8, &[("label2", [1.0, 1.0, 3.0, 3.0])]),
        ]),
    );
}

#[test]
fn cvat_edits_diff_agrees_with_datumaro() {
    let base = tempfile::tempdir().unwrap();
    cvat_base(base.path());
    edits_agree_with_datumaro(base.path(), "cvat", apply_cvat_edits, 5);
}

/// The demo's second commit (fixtures/demo-edit over fixtures/demo: a box moved, one
/// added, one reclassified, one deleted, a new frame), in Ultralytics YOLO layout.
#[test]
fn demo_edits_diff_agrees_with_datumaro() {
    edits_agree_with_datumaro(
        "demo",
        "yolo",
        |t| copy_contents(&fixtures().join("demo-edit"), t.root()),
        5,
    );
}

/// A deliberate difference: the CVAT task sample holds shapes with `label=""`.
/// Datumaro imports them as annotations without a label; dsv refuses the file (an
/// unlabelled shape cannot mean anything to a class count or a training set), with
/// the line, so `query` lists it as invalid instead of counting a class `""`.
#[test]
fn cvat_task_with_unlabelled_shapes_is_refused_where_datumaro_reads_them() {
    let dir = "datumaro/cvat_dataset/for_images/export_task";
    let t = TestRepo::init();
    copy_contents(&fixtures().join(dir), &t.path(dir));
    t.ok(["add", "."]);
    t.ok(["commit", "-m", "task"]);
    let q: Value = serde_json::from_str(&t.ok(["query", "true", "--json"]).stdout).unwrap();
    let invalid = q["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    let message = invalid[0]["message"].as_str().unwrap();
    assert!(
        message.contains("train.xml: line 50, column 22: <polyline> has an empty label"),
        "{message}"
    );
    let dm = datumaro([
        "import".to_string(),
        format!("task=cvat:{}", fixtures().join(dir).display()),
    ]);
    let unlabelled = dm["datasets"]["task"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|f| f["objects"].as_array().unwrap())
        .filter(|o| o["class"].is_null())
        .count();
    assert!(
        unlabelled > 0,
        "Datumaro should read the unlabelled shapes (class null): {dm}"
    );
}
