//! `dsv export` (issue 18): layouts the formats' own readers import as they
//! are (Datumaro for every format, pycocotools for COCO, Ultralytics' documented
//! layout for YOLO), splits, stable class ids, lineage and file placement.

use crate::common;
use crate::differential::{
    Obj, datumaro, datumaro_python, dm_box, dm_class, dsv_box, fixtures, unpaired,
};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{TestRepo, copy_contents};
use serde_json::Value;

/// Box-only data sets in four formats (Roboflow's three hold frames of the same
/// names, so the export must tell them apart), and one image with no labels.
fn dataset() -> TestRepo {
    let t = TestRepo::init();
    for (from, to) in [
        ("demo", "demo"),
        ("datumaro/roboflow_dataset/coco", "rc"),
        ("datumaro/roboflow_dataset/voc", "rv"),
        ("datumaro/kitti_dataset/kitti_detection", "k"),
    ] {
        copy_contents(&fixtures().join(from), &t.path(to));
    }
    std::fs::create_dir_all(t.path("extra")).unwrap();
    std::fs::copy(
        fixtures().join("demo/images/frame_000.jpg"),
        t.path("extra/unlabelled.jpg"),
    )
    .unwrap();
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "data"]);
    t
}

fn frames_of(t: &TestRepo) -> BTreeMap<String, Value> {
    let q: Value = serde_json::from_str(&t.ok(["query", "true", "--json"]).stdout).unwrap();
    q["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

/// The export's record (its head and its frames file) as JSON.
fn record(dir: &Path) -> Value {
    serde_json::to_value(dsv::export::read_record(dir).expect("an export record")).unwrap()
}

/// dsv's objects of a frame as compared, boxes in pixels (`size`: the image's).
fn dsv_objects(frame: &Value, size: Option<(f64, f64)>) -> Vec<Obj> {
    let scale = (frame["units"] == "normalized").then(|| size.expect("an image size"));
    frame
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
        .unwrap_or_default()
}

fn export(t: &TestRepo, format: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = t.home().join(format!("out-{format}"));
    let mut args = vec!["export", "--format", format, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    t.ok(args);
    out
}

/// Each format's export, imported by Datumaro from its directory with no
/// options: every frame (the unlabelled one too) in its split, with every box
/// and class exact.
#[test]
fn every_export_imports_in_datumaro_with_every_box_in_its_split() {
    let t = dataset();
    let frames = frames_of(&t);
    let cases = [
        ("coco", "coco_instances"),
        ("yolo", "yolo"),
        ("voc", "voc_detection"),
        ("kitti", "kitti_detection"),
    ];
    let mut specs = Vec::new();
    let mut records = BTreeMap::new();
    for (format, dm_format) in cases {
        let out = export(&t, format, &["--split", "train=0.5,val=0.5"]);
        specs.push(format!("{format}={dm_format}:{}", out.display()));
        records.insert(format, record(&out));
    }
    let dm = datumaro(std::iter::once("import".to_string()).chain(specs));
    let mut problems = Vec::new();
    for (format, _) in cases {
        let rec = &records[format];
        let theirs = dm["datasets"][format].as_object().unwrap();
        let mut seen = BTreeSet::new();
        for f in rec["frames"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let image = f["image"].as_str().unwrap();
            seen.insert(image.to_string());
            let at = format!("{format}: {path} ({image})");
            let Some(m) = theirs.get(image) else {
                problems.push(format!("{at}: Datumaro has no such frame"));
                continue;
            };
            if m["subset"] != f["split"] {
                problems.push(format!(
                    "{at}: split {} but Datumaro's subset is {}",
                    f["split"], m["subset"]
                ));
            }
            let size = m["width"].as_f64().zip(m["height"].as_f64());
            let mine = dsv_objects(&frames[path], size);
            let dm_objs: Vec<Obj> = m["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    if a["kind"] != "bbox" {
                        problems.push(format!("{at}: Datumaro has a {} annotation", a["kind"]));
                    }
                    Obj {
                        class: dm_class(&a["class"]),
                        kind: a["kind"].as_str().unwrap().to_string(),
                        bbox: dm_box(&a["box"]),
                    }
                })
                .collect();
            let (only_dm, only_dsv) = unpaired(&dm_objs, &mine);
            for o in only_dm {
                problems.push(format!("{at}: only Datumaro has {o:?}"));
            }
            for o in only_dsv {
                problems.push(format!("{at}: only dsv has {o:?}"));
            }
        }
        for extra in theirs.keys().filter(|k| !seen.contains(*k)) {
            problems.push(format!(
                "{format}: Datumaro has {extra}, which dsv did not export"
            ));
        }
        assert_eq!(seen.len(), frames.len(), "{format}: every frame exported");
        let splits: BTreeSet<&str> = rec["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["split"].as_str().unwrap())
            .collect();
        assert_eq!(splits, BTreeSet::from(["train", "val"]), "{format}");
    }
    assert!(
        problems.is_empty(),
        "exports and Datumaro {} disagree:\n{}",
        dm["datumaro"],
        problems.join("\n")
    );
}

/// pycocotools (in the Datumaro virtualenv, pinned in
/// tests/differential/requirements.txt) loads every split's file: each image
/// has its width and height (the unlabelled one from its JPEG header), each
/// annotation its category and box.
#[test]
fn coco_export_loads_in_pycocotools_with_a_size_for_every_image() {
    let t = dataset();
    let frames = frames_of(&t);
    let out = export(&t, "coco", &["--split", "train=0.5,val=0.5"]);
    let script = r#"
import contextlib, json, sys
with contextlib.redirect_stdout(sys.stderr):
    from pycocotools.coco import COCO
out = {}
for split in ("train", "val"):
    with contextlib.redirect_stdout(sys.stderr):
        c = COCO(f"{sys.argv[1]}/annotations/instances_{split}.json")
    cats = {k: v["name"] for k, v in c.cats.items()}
    for img in c.dataset["images"]:
        anns = c.loadAnns(c.getAnnIds(imgIds=[img["id"]]))
        out[f"images/{split}/{img['file_name']}"] = {
            "width": img.get("width"), "height": img.get("height"),
            "objects": [[cats[a["category_id"]], a["bbox"]] for a in anns],
        }
json.dump(out, sys.stdout)
"#;
    let run = Command::new(datumaro_python())
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .expect("python");
    assert!(
        run.status.success(),
        "pycocotools: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let coco: Value = serde_json::from_slice(&run.stdout).unwrap();
    let rec = record(&out);
    let mut problems = Vec::new();
    for f in rec["frames"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let image = f["image"].as_str().unwrap();
        let Some(c) = coco.get(image) else {
            problems.push(format!("{path}: pycocotools has no image {image}"));
            continue;
        };
        let bytes = std::fs::read(out.join(image)).unwrap();
        let (w, h) = dsv::export::image_size(&bytes).expect("an image size");
        if c["width"] != w || c["height"] != h {
            problems.push(format!(
                "{path}: size {} x {}, not {w} x {h}",
                c["width"], c["height"]
            ));
        }
        let theirs: Vec<Obj> = c["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| Obj {
                class: o[0].as_str().unwrap().to_string(),
                kind: "bbox".into(),
                bbox: dm_box(&o[1]),
            })
            .collect();
        let mine = dsv_objects(&frames[path], Some((f64::from(w), f64::from(h))));
        let (a, b) = unpaired(&theirs, &mine);
        if !a.is_empty() || !b.is_empty() {
            problems.push(format!("{path}: only pycocotools {a:?}, only dsv {b:?}"));
        }
    }
    assert_eq!(coco.as_object().unwrap().len(), frames.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Ultralytics' dataset check needs `path`, `train`, `val` and `names`, and
/// finds each image's labels by swapping `images/` for `labels/`: the layout
/// is checked as documented (installing Ultralytics would pull in torch).
#[test]
fn yolo_export_has_the_ultralytics_layout_and_val_without_a_split() {
    let t = dataset();
    let out = export(&t, "yolo", &[]);
    let yaml: serde_json::Value = {
        let text = std::fs::read_to_string(out.join("data.yaml")).unwrap();
        // Each line is `key: JSON-or-plain value`; enough for these keys.
        let mut m = serde_json::Map::new();
        for l in text.lines().filter(|l| !l.starts_with([' ', '#'])) {
            let (k, v) = l.split_once(':').unwrap();
            let v = v.trim();
            m.insert(
                k.to_string(),
                serde_json::from_str(v).unwrap_or_else(|_| Value::from(v)),
            );
        }
        Value::Object(m)
    };
    assert_eq!(
        Path::new(yaml["path"].as_str().unwrap()),
        out.canonicalize().unwrap()
    );
    // No split asked: everything is `train`, and `val` is the same images.
    assert_eq!(yaml["train"], "images/train");
    assert_eq!(yaml["val"], "images/train");
    assert!(yaml.get("test").is_none(), "{yaml}");
    let rec = record(&out);
    for f in rec["frames"].as_array().unwrap() {
        let image = f["image"].as_str().unwrap();
        assert!(image.starts_with("images/train/"), "{image}");
        let label = f["label"].as_str().unwrap();
        let stem = image.strip_prefix("images/").unwrap();
        let stem = &stem[..stem.rfind('.').unwrap()];
        assert_eq!(label, format!("labels/{stem}.txt"));
        assert!(out.join(label).is_file(), "{label}");
    }
    // With a test split, `test` is there too.
    let out = t.home().join("yolo-3");
    t.ok([
        "export",
        "--format",
        "yolo",
        "--out",
        out.to_str().unwrap(),
        "--split",
        "train=0.6,val=0.2,test=0.2",
    ]);
    let text = std::fs::read_to_string(out.join("data.yaml")).unwrap();
    for want in [
        "\ntrain: images/train\n",
        "\nval: images/val\n",
        "\ntest: images/test\n",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

/// Frames whose file names collide after flattening get their whole path
/// (`/` as `__`); a collision that remains is an error naming both frames.
#[test]
fn frames_with_the_same_file_name_are_named_by_their_path() {
    let t = TestRepo::init();
    let jpg = std::fs::read(fixtures().join("demo/images/frame_000.jpg")).unwrap();
    t.write("cam1/0001.jpg", &jpg);
    t.write("cam2/0001.jpg", &jpg);
    t.write("cam2/0002.jpg", &jpg);
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "two cameras"]);
    let out = export(&t, "voc", &[]);
    let mut names: Vec<String> = std::fs::read_dir(out.join("JPEGImages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["0002.jpg", "cam1__0001.jpg", "cam2__0001.jpg"]);
    let xml = std::fs::read_to_string(out.join("Annotations/cam1__0001.xml")).unwrap();
    assert!(
        xml.contains("<folder>JPEGImages</folder>")
            && xml.contains("<filename>cam1__0001.jpg</filename>"),
        "{xml}"
    );
    let set = std::fs::read_to_string(out.join("ImageSets/Main/train.txt")).unwrap();
    assert_eq!(set, "cam1__0001\ncam2__0001\n0002\n");
    // `cam1__0001.jpg` as a frame of its own: the flattened name is taken.
    t.write("cam1__0001.jpg", &jpg);
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "clash"]);
    let bad = t.home().join("bad");
    let r = t.fails(["export", "--format", "yolo", "--out", bad.to_str().unwrap()]);
    assert!(
        r.stderr.contains(
            "error: frames cam1/0001.jpg and cam1__0001.jpg would both be exported as cam1__0001"
        ),
        "{r}"
    );
    assert!(!bad.exists());
}

/// A frame's split depends on its path only: frames added later do not move
/// the others, and the shares follow the fractions.
#[test]
fn split_is_by_path_and_a_frame_keeps_its_split_as_the_dataset_grows() {
    let t = TestRepo::init();
    for i in 0..200 {
        t.write(format!("img/{i:04}.jpg"), format!("frame {i}"));
    }
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "200"]);
    let splits = |out: &Path| -> BTreeMap<String, String> {
        record(out)["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["split"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let a = export(&t, "coco", &["--split", "train=0.8,val=0.1,test=0.1"]);
    let before = splits(&a);
    let n = |m: &BTreeMap<String, String>, s: &str| m.values().filter(|v| *v == s).count();
    assert!((140..=180).contains(&n(&before, "train")), "{before:?}");
    assert!(
        n(&before, "val") > 5 && n(&before, "test") > 5,
        "{before:?}"
    );
    for i in 200..400 {
        t.write(format!("img/{i:04}.jpg"), format!("frame {i}"));
    }
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "400"]);
    let b = t.home().join("b");
    t.ok([
        "export",
        "--format",
        "coco",
        "--out",
        b.to_str().unwrap(),
        "--split",
        "train=0.8,val=0.1,test=0.1",
    ]);
    let after = splits(&b);
    assert_eq!(after.len(), 400);
    for (p, s) in &before {
        assert_eq!(&after[p], s, "{p} moved");
    }
    for s in ["train", "val", "test"] {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(b.join(format!("annotations/instances_{s}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["images"].as_array().unwrap().len(), n(&after, s));
    }
    let r = t.expect_code(
        2,
        [
            "export",
            "--format",
            "coco",
            "--out",
            "x",
            "--split",
            "train=0.8,val=0.1",
        ],
    );
    assert!(r.stderr.contains("add up to"), "{r}");
}

fn coco_categories(out: &Path, split: &str) -> Vec<(u64, String)> {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(out.join(format!("annotations/instances_{split}.json"))).unwrap(),
    )
    .unwrap();
    doc["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Class ids come from the dataset's own list (here the YOLO `data.yaml`), not
/// from which classes a version happens to use or in what order they appear:
/// the same version exported twice, and a later version that drops frames and
/// adds a class, keep every id.
#[test]
fn class_ids_come_from_the_dataset_list_and_stay_across_versions() {
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), t.root());
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "demo"]);
    let names: Vec<String> = serde_json::from_str(
        &t.read_string("data.yaml")
            .lines()
            .find_map(|l| l.strip_prefix("names: "))
            .unwrap()
            .replace('\'', "\""),
    )
    .unwrap();
    let one = export(&t, "coco", &[]);
    let two = t.home().join("two");
    t.ok(["export", "--format", "coco", "--out", two.to_str().unwrap()]);
    let cats = coco_categories(&one, "train");
    assert_eq!(cats, coco_categories(&two, "train"));
    let want: Vec<(u64, String)> = (1..).zip(names.iter().cloned()).collect();
    assert_eq!(cats, want);
    // A later version: frames with `cat` gone, a VOC frame with a new class.
    let r = t.ok(["query", r#"objects.exists(o, o.class == "cat")"#]);
    for f in r.stdout.lines() {
        let label = f.replace("images/", "labels/").replace(".jpg", ".txt");
        t.ok(["rm", f, &label]);
    }
    t.write(
        "voc/a.jpg",
        std::fs::read(fixtures().join("demo/images/frame_000.jpg")).unwrap(),
    );
    t.write(
        "voc/a.xml",
        "<annotation><filename>a.jpg</filename><object><name>aardvark</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object></annotation>",
    );
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "later"]);
    let later = t.home().join("later");
    t.ok([
        "export",
        "--format",
        "yolo",
        "--out",
        later.to_str().unwrap(),
    ]);
    let yaml = std::fs::read_to_string(later.join("data.yaml")).unwrap();
    for (i, n) in names.iter().enumerate() {
        assert!(yaml.contains(&format!("\n  {i}: \"{n}\"\n")), "{n}: {yaml}");
    }
    // The class the list lacks comes after it.
    assert!(
        yaml.contains(&format!("\n  {}: \"aardvark\"\n", names.len())),
        "{yaml}"
    );
}

/// `--classes FILE` numbers classes by the file; a class of the data not in it
/// is an error naming the class and a frame, and nothing is written.
#[test]
fn classes_file_sets_the_ids_and_a_class_missing_from_it_is_an_error() {
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), t.root());
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "demo"]);
    let mut list: Vec<String> = (0..10).map(|i| format!("label_{i}")).collect();
    list.extend(["person".to_string(), "dog".to_string(), "cat".to_string()]);
    let file = t.home().join("classes.txt");
    std::fs::write(&file, list.join("\n") + "\n").unwrap();
    let out = export(&t, "coco", &["--classes", file.to_str().unwrap()]);
    let cats = coco_categories(&out, "train");
    assert_eq!(cats[10], (11, "person".to_string()));
    assert_eq!(cats[12], (13, "cat".to_string()));
    assert_eq!(cats.len(), 13);
    std::fs::write(&file, "label_0\nperson\n").unwrap();
    let bad = t.home().join("bad");
    let r = t.fails([
        "export",
        "--format",
        "yolo",
        "--out",
        bad.to_str().unwrap(),
        "--classes",
        file.to_str().unwrap(),
    ]);
    assert!(
        r.stderr.contains(
            "error: class \"cat\" of frame images/frame_004.jpg is not in the class list"
        ) && r.stderr.contains("classes.txt"),
        "{r}"
    );
    assert!(!bad.exists());
}

/// The commit, the query, dsv's version and the date are in COCO's `info`,
/// in `data.yaml`, in `dsv-export.json` and on the manifest's first line.
#[test]
fn lineage_is_in_every_export_and_the_manifest() {
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), t.root());
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "demo"]);
    let commit = t.ok(["rev-parse", "HEAD"]).stdout.trim().to_string();
    let q = r#"path.startsWith("images/")"#;
    let coco = export(&t, "coco", &["--where", q]);
    let info = &serde_json::from_slice::<Value>(
        &std::fs::read(coco.join("annotations/instances_train.json")).unwrap(),
    )
    .unwrap()["info"];
    assert_eq!(info["dsv_commit"], commit.as_str());
    assert_eq!(info["dsv_where"], q);
    assert_eq!(info["dsv_version"], env!("CARGO_PKG_VERSION"));
    assert!(
        info["date_created"].as_str().unwrap().starts_with("20"),
        "{info}"
    );
    let rec = record(&coco);
    assert_eq!(rec["lineage"]["commit"], commit.as_str());
    assert_eq!(rec["lineage"]["where"], q);
    assert_eq!(rec["format"], "coco");
    let yolo = export(&t, "yolo", &["--where", q]);
    let yaml = std::fs::read_to_string(yolo.join("data.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("\ndsv_commit: \"{commit}\"\n")),
        "{yaml}"
    );
    assert!(
        yaml.contains("\ndsv_where: \"path.startsWith(\\\"images/\\\")\"\n"),
        "{yaml}"
    );
    for format in ["voc", "kitti"] {
        let out = export(&t, format, &[]);
        assert_eq!(
            record(&out)["lineage"]["commit"],
            commit.as_str(),
            "{format}"
        );
    }
    let m = t.home().join("m.jsonl");
    t.ok(["export", "--manifest", m.to_str().unwrap()]);
    let first: Value =
        serde_json::from_str(std::fs::read_to_string(&m).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["lineage"]["commit"], commit.as_str());
    assert_eq!(first["lineage"]["dsv_version"], env!("CARGO_PKG_VERSION"));
}

/// By default an exported frame has bytes of its own: an augmentation script
/// appending to it in place leaves the checkout clean. `--link hard` shares
/// the inode (as documented), `--link symlink` points into the checkout.
#[test]
fn editing_an_exported_frame_in_place_leaves_the_checkout_clean() {
    use std::os::unix::fs::MetadataExt;
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), t.root());
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "demo"]);
    // A clean stat needs the index written after the files' mtime second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t.ok(["status"]);
    let out = export(&t, "yolo", &[]);
    let frame = out.join("images/train/frame_000.jpg");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&frame)
        .unwrap();
    std::io::Write::write_all(&mut f, b"X").unwrap();
    drop(f);
    let r = t.ok(["status", "--porcelain"]);
    assert_eq!(r.stdout, "", "{r}");
    assert_ne!(
        std::fs::read(&frame).unwrap(),
        std::fs::read(t.path("images/frame_000.jpg")).unwrap()
    );
    let hard = t.home().join("hard");
    let r = t.ok([
        "export",
        "--format",
        "yolo",
        "--out",
        hard.to_str().unwrap(),
        "--link",
        "hard",
    ]);
    assert!(r.stderr.contains("6 linked"), "{r}");
    assert_eq!(
        std::fs::metadata(hard.join("images/train/frame_001.jpg"))
            .unwrap()
            .ino(),
        std::fs::metadata(t.path("images/frame_001.jpg"))
            .unwrap()
            .ino()
    );
    // The hard links changed the checkout's ctimes: `status` sees them clean again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t.ok(["status"]);
    let sym = t.home().join("sym");
    t.ok([
        "export",
        "--format",
        "yolo",
        "--out",
        sym.to_str().unwrap(),
        "--link",
        "symlink",
    ]);
    let target = std::fs::read_link(sym.join("images/train/frame_001.jpg")).unwrap();
    assert!(target.is_absolute(), "{}", target.display());
    assert_eq!(
        target.canonicalize().unwrap(),
        t.path("images/frame_001.jpg").canonicalize().unwrap()
    );
}

/// An exported image edited in place with its length and modification time
/// put back (`touch -r`, a tool that keeps times) is still seen by an update,
/// by its change time, and written again; after that update, and after one
/// rebuilt beside the earlier export (another `--split`), an update with
/// nothing changed keeps every frame (the ctime recorded is the one the file
/// has in place, not the one it had before it was moved in).
#[test]
fn export_update_restores_an_image_edited_in_place_with_its_length_and_mtime_kept() {
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), t.root());
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "demo"]);
    let out = export(&t, "yolo", &[]);
    let o = out.to_str().unwrap();
    let img = out.join("images/train/frame_003.jpg");
    let before = std::fs::read(&img).unwrap();
    let mtime = std::fs::metadata(&img).unwrap().modified().unwrap();
    // Let the clock move past the export's write, so the edit's ctime differs.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut edited = before.clone();
    let mid = edited.len() / 2;
    edited[mid] ^= 0x55;
    std::fs::write(&img, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let m = std::fs::metadata(&img).unwrap();
    assert_eq!(
        (m.len(), m.modified().unwrap()),
        (before.len() as u64, mtime)
    );
    // The same version again: nothing changed in the dataset.
    let r = t.ok(["export", "--format", "yolo", "--out", o]);
    assert!(r.stderr.contains("kept 5 frames"), "{r}");
    assert_eq!(
        std::fs::read(&img).unwrap(),
        std::fs::read(t.path("images/frame_003.jpg")).unwrap(),
        "the image edited in place is written again"
    );
    let r = t.ok(["export", "--format", "yolo", "--out", o]);
    assert!(r.stderr.contains("kept 6 frames"), "{r}");
    // Rebuilt beside the earlier export (another split), then updated again.
    let split = ["--split", "train=0.5,val=0.5"];
    let r = t.ok(["export", "--format", "yolo", "--out", o, split[0], split[1]]);
    assert!(r.stderr.contains("splits: train"), "{r}");
    let r = t.ok(["export", "--format", "yolo", "--out", o, split[0], split[1]]);
    assert!(r.stderr.contains("kept 6 frames"), "{r}");
}

/// `--out` an earlier export of the same format updates it: frames whose
/// content and place are unchanged keep their files (same inode), a relabelled
/// frame gets a new label file, a removed frame's files go, an added frame's
/// come, and an exported image edited in place since is written again.
#[test]
fn export_into_an_earlier_export_rewrites_only_what_changed() {
    use std::os::unix::fs::MetadataExt;
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), t.root());
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "demo"]);
    let out = export(&t, "yolo", &[]);
    let ino = |p: &str| std::fs::metadata(out.join(p)).unwrap().ino();
    let img0 = ino("images/train/frame_000.jpg");
    let lbl0 = ino("labels/train/frame_000.txt");
    let lbl1 = ino("labels/train/frame_001.txt");
    let first = record(&out)["lineage"]["commit"].clone();
    // An augmentation edited one exported image in place.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("images/train/frame_003.jpg"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"X").unwrap();
    drop(f);
    let text = t.read_string("labels/frame_001.txt");
    t.write("labels/frame_001.txt", text.replacen("0 ", "1 ", 1));
    t.ok(["rm", "images/frame_002.jpg", "labels/frame_002.txt"]);
    t.write(
        "images/new.jpg",
        std::fs::read(t.path("images/frame_000.jpg")).unwrap(),
    );
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "later"]);
    let r = t.ok(["export", "--format", "yolo", "--out", out.to_str().unwrap()]);
    assert!(
        r.stderr
            .contains("kept 4 frames and 4 label files of the earlier export"),
        "{r}"
    );
    assert_eq!(ino("images/train/frame_000.jpg"), img0);
    assert_eq!(ino("labels/train/frame_000.txt"), lbl0);
    assert_ne!(ino("labels/train/frame_001.txt"), lbl1);
    assert_eq!(
        std::fs::read(out.join("images/train/frame_003.jpg")).unwrap(),
        std::fs::read(t.path("images/frame_003.jpg")).unwrap(),
        "the image edited in place is written again"
    );
    assert!(!out.join("images/train/frame_002.jpg").exists());
    assert!(!out.join("labels/train/frame_002.txt").exists());
    assert!(out.join("images/train/new.jpg").is_file());
    let rec = record(&out);
    assert_ne!(rec["lineage"]["commit"], first);
    assert_eq!(rec["frames"].as_array().unwrap().len(), 6);
    assert_eq!(rec["classes"]["from"], "earlier-export");
    // Nothing is left beside the export.
    let left: Vec<String> = std::fs::read_dir(t.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dsv-export"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A directory that is not an export of this format is refused.
    let r = t.fails(["export", "--format", "coco", "--out", out.to_str().unwrap()]);
    assert!(r.stderr.contains("not empty"), "{r}");
}
