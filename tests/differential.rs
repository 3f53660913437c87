//! Differential tests against Datumaro (issue 17, "Keeping it true"): what dsv reads
//! from every fixture data set, and what `dsv diff --json` reports for scripted edits,
//! must be what Datumaro, an independent implementation of the same formats, reads
//! and compares.
//!
//! Datumaro (PyPI, pinned in `tests/differential/requirements.txt`) is installed by
//! `tests/differential/install-datumaro.sh` into `target/datumaro-venv` when missing,
//! as tests/remote.rs installs moto; `.ci/run` runs the same script first. Without
//! Python or PyPI these tests fail saying so: they are never skipped.
//!
//! Every disagreement is a dsv bug or one of the deliberate differences listed in
//! [`KNOWN`] with its reason; a listed difference that no longer occurs fails the
//! test too, so the list cannot go stale.

mod common;

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

fn fixtures() -> PathBuf {
    manifest().join("fixtures/datumaro")
}

static INSTALL: Mutex<()> = Mutex::new(());

/// The Python of the Datumaro virtualenv, installed first when missing.
fn datumaro_python() -> PathBuf {
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
fn datumaro<I, S>(args: I) -> Value
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

/// One fixture data set: where it is under fixtures/datumaro and Datumaro's name for
/// its format.
struct Case {
    name: &'static str,
    dir: &'static str,
    format: &'static str,
}

/// Every data set under fixtures/datumaro (copied from the MIT `datumaro-formats`
/// samples; their Supervisely point cloud is in no format dsv reads, and the KITTI
/// lidar scan may not be copied). VOC is read as `voc_detection`: dsv reads the
/// objects of `Annotations/`, not the segmentation masks, image-level class lists or
/// person-layout parts that Datumaro's whole-`voc` import adds as annotations.
const CASES: &[Case] = &[
    Case {
        name: "coco",
        dir: "coco_dataset/coco_instances",
        format: "coco_instances",
    },
    Case {
        name: "voc",
        dir: "voc_dataset/voc_dataset1",
        format: "voc_detection",
    },
    Case {
        name: "yolo",
        dir: "yolo_dataset/strict",
        format: "yolo",
    },
    Case {
        name: "kitti_detection",
        dir: "kitti_dataset/kitti_detection",
        format: "kitti_detection",
    },
    Case {
        name: "kitti_3d",
        dir: "kitti_dataset/kitti_3d/training",
        format: "kitti3d",
    },
    Case {
        name: "cvat_task",
        dir: "cvat_dataset/for_images/export_task",
        format: "cvat",
    },
    Case {
        name: "cvat_project",
        dir: "cvat_dataset/for_images/export_project",
        format: "cvat",
    },
    Case {
        name: "roboflow_coco",
        dir: "roboflow_dataset/coco",
        format: "roboflow_coco",
    },
    Case {
        name: "roboflow_voc",
        dir: "roboflow_dataset/voc",
        format: "roboflow_voc",
    },
    Case {
        name: "roboflow_yolo",
        dir: "roboflow_dataset/yolo",
        format: "roboflow_yolo",
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
    Known {
        case: "cvat_task",
        kind: "polyline",
        reason: "dsv drops CVAT polylines (issue 17.5, being fixed on branch shapes)",
    },
    Known {
        case: "cvat_task",
        kind: "points",
        reason: "dsv drops CVAT points (issue 17.5, being fixed on branch shapes)",
    },
    Known {
        case: "cvat_project",
        kind: "polyline",
        reason: "dsv drops CVAT polylines (issue 17.5, being fixed on branch shapes)",
    },
    Known {
        case: "cvat_project",
        kind: "points",
        reason: "dsv drops CVAT points (issue 17.5, being fixed on branch shapes)",
    },
];

/// One object as compared: class and pixel box (x, y, w, h from the top-left).
#[derive(Debug, Clone, PartialEq)]
struct Obj {
    class: String,
    kind: String,
    bbox: Option<[f64; 4]>,
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
fn dsv_box(object: &Value, scale: Option<(f64, f64)>) -> Option<[f64; 4]> {
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
fn dm_box(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    let n: Vec<f64> = a.iter().map(|x| x.as_f64().expect("box number")).collect();
    Some(n.try_into().expect("a box of 4 numbers"))
}

/// Datumaro's class: an unlabelled annotation (label None) is dsv's class "", the
/// model having no optional class.
fn dm_class(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Pairs `a` with `b` (class equal, boxes within the tolerance); what is left on each side.
fn unpaired(a: &[Obj], b: &[Obj]) -> (Vec<Obj>, Vec<Obj>) {
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
    copy_contents(&fixtures(), t.root());
    t.ok(["add", "."]);
    t.ok(["commit", "-m", "fixtures"]);
    let q: Value = serde_json::from_str(&t.ok(["query", "true", "--json"]).stdout).unwrap();
    assert_eq!(q["invalid"], Value::Array(vec![]), "dsv found invalid label files");

    let mut problems = Vec::new();
    let mut used_known = BTreeSet::new();
    let mut dsv_frames: BTreeMap<String, &Value> = BTreeMap::new();
    for f in q["frames"].as_array().unwrap() {
        dsv_frames.insert(f["path"].as_str().unwrap().to_string(), f);
    }
    let mut claimed = BTreeSet::new();
    for case in CASES {
        let dm_frames = dm["datasets"][case.name].as_object().unwrap();
        assert!(!dm_frames.is_empty(), "{}: Datumaro imported no frame", case.name);
        let prefix = format!("{}/", case.dir);
        let mine: BTreeMap<&str, &Value> = dsv_frames
            .iter()
            .filter_map(|(p, f)| p.strip_prefix(&prefix).map(|r| (r, *f)))
            .collect();
        claimed.extend(mine.keys().map(|r| format!("{prefix}{r}")));
        let names: BTreeSet<&str> = mine.keys().copied().chain(dm_frames.keys().map(String::as_str)).collect();
        for name in names {
            let at = format!("{}: {name}", case.name);
            let (Some(d), Some(m)) = (mine.get(name), dm_frames.get(name)) else {
                problems.push(format!(
                    "{at}: frame only in {}",
                    if mine.contains_key(name) { "dsv" } else { "Datumaro" }
                ));
                continue;
            };
            let scale = (d["units"] == "normalized").then(|| {
                let w = m["width"].as_f64().expect("Datumaro knows the image width");
                let h = m["height"].as_f64().expect("Datumaro knows the image height");
                (w, h)
            });
            let dsv_objs: Vec<Obj> = d
                .get("objects")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|o| Obj {
                            class: o["class"].as_str().unwrap().to_string(),
                            kind: "dsv".into(),
                            bbox: dsv_box(o, scale),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let dm_objs = dm_objects(case.format, m, &mut problems, &at);
            let (only_dm, only_dsv) = unpaired(&dm_objs, &dsv_objs);
            for o in only_dm {
                match KNOWN.iter().position(|k| k.case == case.name && k.kind == o.kind) {
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
