//! `dsv export --format cvat|labelstudio` and `dsv import` (issue 18): a
//! selection sent to annotators and the edited file committed back; `dsv diff`
//! then shows exactly the annotator's edits.

use crate::common;
use crate::differential::fixtures;

use std::collections::BTreeMap;

use common::{TestRepo, copy_contents};
use serde_json::{Value, json};

/// The demo YOLO dataset (normalized boxes, `data.yaml` names), committed.
fn demo() -> TestRepo {
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), &t.path("demo"));
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "data"]);
    t
}

/// Every label file's bytes, by path.
fn label_files(t: &TestRepo) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(t.path("demo/labels"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// (label file, kind, class) of every object change `dsv diff --json` reports
/// between HEAD and the working tree, sorted.
fn edits(t: &TestRepo) -> Vec<(String, String, String)> {
    let doc: Value = serde_json::from_str(&t.ok(["diff", "--json"]).stdout).expect("JSON");
    let mut out = Vec::new();
    for l in doc["labels"].as_array().expect("labels") {
        let file = l["path"]
            .as_str()
            .unwrap_or("?")
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        for f in l["frames"].as_array().expect("frames") {
            for c in f["changes"].as_array().expect("changes") {
                out.push((
                    file.clone(),
                    c["kind"].as_str().unwrap_or("").to_string(),
                    c["class"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn tasks(dir: &std::path::Path) -> Vec<Value> {
    serde_json::from_slice::<Value>(&std::fs::read(dir.join("tasks.json")).expect("tasks.json"))
        .expect("JSON")
        .as_array()
        .expect("a list of tasks")
        .clone()
}

fn task<'a>(tasks: &'a mut [Value], path: &str) -> &'a mut Value {
    tasks
        .iter_mut()
        .find(|t| t["data"]["dsv_path"] == path)
        .unwrap_or_else(|| panic!("no task for {path}"))
}

fn regions<'a>(tasks: &'a mut [Value], path: &str) -> &'a mut Vec<Value> {
    task(tasks, path)["annotations"][0]["result"]
        .as_array_mut()
        .expect("result")
}

#[test]
fn export_labelstudio_tasks_hold_percent_boxes_sizes_and_dataset_paths() {
    let t = demo();
    let out = t.path("ls");
    t.ok([
        "export",
        "--format",
        "labelstudio",
        "--out",
        "ls",
        "--url-prefix",
        "/data/local-files/?d=ls/",
    ]);
    let ts = tasks(&out);
    assert_eq!(ts.len(), 6);
    let task = ts
        .iter()
        .find(|t| t["data"]["dsv_path"] == "demo/images/frame_001.jpg")
        .unwrap();
    assert_eq!(
        task["data"]["image"],
        "/data/local-files/?d=ls/images/demo/images/frame_001.jpg"
    );
    assert!(out.join("images/demo/images/frame_001.jpg").is_file());
    let r = &task["annotations"][0]["result"][0];
    assert_eq!(r["type"], "rectanglelabels");
    assert_eq!(r["from_name"], "label");
    assert_eq!(r["to_name"], "image");
    // frame_001.txt: `0 0.35 0.3 0.3 0.2` (centre, size) -> top-left 20% x 20%.
    let w = r["original_width"].as_f64().unwrap();
    assert!(w > 0.0 && r["original_height"].as_f64().unwrap() > 0.0);
    let v = &r["value"];
    for (k, want) in [("x", 20.0), ("y", 20.0), ("width", 30.0), ("height", 20.0)] {
        assert!((v[k].as_f64().unwrap() - want).abs() < 1e-6, "{k}: {v}");
    }
    assert_eq!(v["rectanglelabels"], json!(["label_0"]));
    let config = std::fs::read_to_string(out.join("label_config.xml")).unwrap();
    assert!(config.contains("<RectangleLabels name=\"label\" toName=\"image\">"));
    assert!(config.contains("<Label value=\"person\"/>"));
}

#[test]
fn export_labelstudio_edit_import_diff_shows_exactly_the_edits() {
    let t = demo();
    t.ok(["export", "--format", "labelstudio", "--out", "ls"]);
    let before = label_files(&t);
    let mut ts = tasks(&t.path("ls"));
    // As an annotator would: move a box, delete one, add one, change a class.
    regions(&mut ts, "demo/images/frame_000.jpg")[0]["value"]["x"] = json!(1.0);
    regions(&mut ts, "demo/images/frame_001.jpg").remove(0);
    let mut added = regions(&mut ts, "demo/images/frame_002.jpg")[0].clone();
    added["id"] = json!("new1");
    added["value"] = json!({"x": 70.0, "y": 70.0, "width": 10.0, "height": 10.0,
        "rotation": 0, "rectanglelabels": ["cat"]});
    regions(&mut ts, "demo/images/frame_002.jpg").push(added);
    regions(&mut ts, "demo/images/frame_003.jpg")[0]["value"]["rectanglelabels"] =
        json!(["person"]);
    std::fs::write(t.path("edited.json"), serde_json::to_vec(&ts).unwrap()).unwrap();
    let r = t.ok(["import", "edited.json"]);
    assert!(
        r.stderr.contains("6 frames read, 4 changed"),
        "{}",
        r.stderr
    );
    let got = edits(&t);
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|(f, k, _)| (f.as_str(), k.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("frame_000.txt", "moved"),
            ("frame_001.txt", "removed"),
            ("frame_002.txt", "added"),
            ("frame_003.txt", "reclassified"),
        ],
        "{got:?}"
    );
    assert_eq!(got[2].2, "cat");
    assert_eq!(got[3].2, "person");
    // Frames the annotator did not touch keep their label files byte for byte.
    let after = label_files(&t);
    for f in ["frame_004.txt", "frame_005.txt"] {
        assert_eq!(before[f], after[f], "{f}");
    }
    // Importing the same file again changes nothing more.
    let again = t.ok(["import", "edited.json"]);
    assert!(again.stderr.contains("0 changed"), "{}", again.stderr);
    assert_eq!(label_files(&t), after);
}

#[test]
fn export_cvat_edit_import_diff_shows_exactly_the_edits() {
    let t = demo();
    t.ok(["export", "--format", "cvat", "--out", "cv"]);
    let before = label_files(&t);
    let xml = std::fs::read_to_string(t.path("cv/annotations.xml")).unwrap();
    assert!(t.path("cv/images/demo/images/frame_000.jpg").is_file());
    // Each <image ...> element, by its frame name.
    let mut parts: Vec<String> = xml.split("<image ").map(str::to_string).collect();
    let find = |parts: &[String], frame: &str| {
        parts
            .iter()
            .position(|p| p.contains(&format!("name=\"{frame}\"")))
            .unwrap_or_else(|| panic!("no image {frame} in {xml}"))
    };
    // Move: the first box of frame_000 shifted right by 1 pixel.
    let i = find(&parts, "demo/images/frame_000.jpg");
    let p = &parts[i];
    let at = p.find("xtl=\"").unwrap() + 5;
    let end = at + p[at..].find('"').unwrap();
    let x: f64 = p[at..end].parse().unwrap();
    let atr = p.find("xbr=\"").unwrap() + 5;
    let endr = atr + p[atr..].find('"').unwrap();
    let xr: f64 = p[atr..endr].parse().unwrap();
    parts[i] = format!(
        "{}{}{}{}{}",
        &p[..at],
        x + 1.0,
        &p[end..atr],
        xr + 1.0,
        &p[endr..]
    );
    // Delete: frame_001's only box.
    let i = find(&parts, "demo/images/frame_001.jpg");
    let p = &parts[i];
    let s = p.find("<box ").unwrap();
    let e = s + p[s..]
        .find("</box>")
        .map(|k| k + 6)
        .or_else(|| p[s..].find("/>").map(|k| k + 2))
        .unwrap();
    parts[i] = format!("{}{}", &p[..s], &p[e..]);
    // Add: a cat in frame_002.
    let i = find(&parts, "demo/images/frame_002.jpg");
    let p = &parts[i];
    let s = p.find("<box ").unwrap();
    parts[i] = format!(
        "{}<box label=\"cat\" occluded=\"0\" xtl=\"1\" ytl=\"1\" xbr=\"3\" ybr=\"3\" z_order=\"0\"></box>{}",
        &p[..s],
        &p[s..]
    );
    // Reclassify: frame_003's first box becomes a person.
    let i = find(&parts, "demo/images/frame_003.jpg");
    let p = &parts[i];
    let s = p.find("<box label=\"").unwrap() + 12;
    let e = s + p[s..].find('"').unwrap();
    parts[i] = format!("{}person{}", &p[..s], &p[e..]);
    std::fs::write(t.path("cv/annotations.xml"), parts.join("<image ")).unwrap();
    let r = t.ok(["import", "cv/annotations.xml"]);
    assert!(r.stderr.contains("4 changed"), "{}", r.stderr);
    let got = edits(&t);
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|(f, k, _)| (f.as_str(), k.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("frame_000.txt", "moved"),
            ("frame_001.txt", "removed"),
            ("frame_002.txt", "added"),
            ("frame_003.txt", "reclassified"),
        ],
        "{got:?}"
    );
    let after = label_files(&t);
    for f in ["frame_004.txt", "frame_005.txt"] {
        assert_eq!(before[f], after[f], "{f}");
    }
}

/// Imports `tasks` edited by `edit` and expects a refusal mentioning `want`,
/// with every label file as it was.
fn refused(edit: impl FnOnce(&mut Vec<Value>), want: &str) {
    let t = demo();
    t.ok(["export", "--format", "labelstudio", "--out", "ls"]);
    let before = label_files(&t);
    let mut ts = tasks(&t.path("ls"));
    // A valid edit first, so a refusal must undo nothing: nothing was written.
    regions(&mut ts, "demo/images/frame_000.jpg").remove(0);
    edit(&mut ts);
    std::fs::write(t.path("edited.json"), serde_json::to_vec(&ts).unwrap()).unwrap();
    let r = t.fails(["import", "edited.json"]);
    assert!(r.stderr.contains(want), "{}", r.stderr);
    assert_eq!(label_files(&t), before);
}

#[test]
fn import_labelstudio_box_outside_the_image_is_refused_and_nothing_written() {
    refused(
        |ts| regions(ts, "demo/images/frame_003.jpg")[0]["value"]["x"] = json!(95.0),
        "frame_003.jpg",
    );
}

#[test]
fn import_labelstudio_class_not_in_the_names_list_is_refused() {
    refused(
        |ts| {
            regions(ts, "demo/images/frame_003.jpg")[0]["value"]["rectanglelabels"] =
                json!(["zebra"])
        },
        "class 'zebra' is not in the names list",
    );
}

#[test]
fn import_labelstudio_frame_not_in_the_dataset_is_refused() {
    refused(
        |ts| {
            task(ts, "demo/images/frame_003.jpg")["data"]["dsv_path"] =
                json!("demo/images/nope.jpg")
        },
        "frame \"demo/images/nope.jpg\" is not a frame of HEAD",
    );
}

#[test]
fn import_labelstudio_region_without_image_size_is_refused() {
    refused(
        |ts| {
            let r = &mut regions(ts, "demo/images/frame_003.jpg")[0];
            r.as_object_mut().unwrap().remove("original_width");
        },
        "no original_width/original_height",
    );
}

#[test]
fn export_labelstudio_with_split_is_refused() {
    let t = demo();
    let r = t.run([
        "export",
        "--format",
        "labelstudio",
        "--out",
        "ls",
        "--split",
        "train=0.5,val=0.5",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--split does not apply"), "{}", r.stderr);
    assert!(!t.path("ls").exists());
}

#[test]
fn export_update_in_place_leaves_unchanged_files_untouched_and_an_interrupted_one_is_rebuilt() {
    use std::os::unix::fs::MetadataExt;
    let t = demo();
    // Outside the checkout: `commit -a` would take an export inside it for frames.
    let out = t.home().join("y");
    let o = out.to_str().unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    // A hard link into a rebuilt export (or its removal) changes the ctime.
    let ctime = |p: &str| {
        let m = std::fs::metadata(out.join(p)).unwrap();
        (m.ino(), m.ctime(), m.ctime_nsec(), m.nlink())
    };
    let img = ctime("images/train/frame_000.jpg");
    let lbl = ctime("labels/train/frame_000.txt");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let text = std::fs::read_to_string(t.path("demo/labels/frame_001.txt")).unwrap();
    std::fs::write(
        t.path("demo/labels/frame_001.txt"),
        text.replacen("0 ", "1 ", 1),
    )
    .unwrap();
    t.ok(["commit", "-a", "-m", "relabel"]);
    t.ok(["export", "--format", "yolo", "--out", o]);
    assert_eq!(ctime("images/train/frame_000.jpg"), img);
    assert_eq!(ctime("labels/train/frame_000.txt"), lbl);
    assert!(
        std::fs::read_to_string(out.join("labels/train/frame_001.txt"))
            .unwrap()
            .starts_with("1 ")
    );
    // An update interrupted while moving files in leaves its record renamed:
    // the next export rebuilds the whole export.
    std::fs::rename(
        out.join("dsv-export.json"),
        out.join(".dsv-export-updating.json"),
    )
    .unwrap();
    std::fs::write(out.join("labels/train/frame_004.txt"), "garbage\n").unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    assert!(out.join("dsv-export.json").is_file());
    assert!(!out.join(".dsv-export-updating.json").exists());
    let label = std::fs::read_to_string(out.join("labels/train/frame_004.txt")).unwrap();
    assert!(label.starts_with("10 "), "{label}");
}

/// An export whose record is of version 1 (the frames inline in
/// `dsv-export.json`, no frames file) is updated in place, to the files a
/// fresh export writes, and its record is then of version 2.
#[test]
fn export_update_reads_a_version_1_record_and_writes_version_2() {
    use std::os::unix::fs::MetadataExt;
    let t = demo();
    let out = t.home().join("y");
    let o = out.to_str().unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    let rec = dsv::export::read_record(&out).expect("a record");
    let mut v1 = serde_json::to_value(&rec).unwrap();
    v1["dsv_export"] = json!(1);
    std::fs::write(out.join("dsv-export.json"), v1.to_string()).unwrap();
    std::fs::remove_file(out.join("dsv-export.frames")).unwrap();
    let ino = |p: &str| std::fs::metadata(out.join(p)).unwrap().ino();
    let img = ino("images/train/frame_000.jpg");
    let text = std::fs::read_to_string(t.path("demo/labels/frame_001.txt")).unwrap();
    std::fs::write(
        t.path("demo/labels/frame_001.txt"),
        text.replacen("0 ", "1 ", 1),
    )
    .unwrap();
    t.ok(["commit", "-a", "-m", "relabel"]);
    t.ok(["export", "--format", "yolo", "--out", o]);
    // Updated in place (an unchanged image is the same file), not rebuilt.
    assert_eq!(ino("images/train/frame_000.jpg"), img);
    let head: Value =
        serde_json::from_slice(&std::fs::read(out.join("dsv-export.json")).unwrap()).unwrap();
    assert_eq!(head["dsv_export"], 2, "{head}");
    assert!(head.get("frames").is_none(), "{head}");
    assert!(out.join("dsv-export.frames").is_file());
    let fresh = t.home().join("fresh");
    t.ok([
        "export",
        "--format",
        "yolo",
        "--out",
        fresh.to_str().unwrap(),
    ]);
    let (a, b) = (export_files(&out), export_files(&fresh));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs from a fresh export");
    }
}

/// An update that changes nothing leaves the frames file of the record as it
/// is (only the head is written); one that finds an exported image edited in
/// place writes the image and the frames file again; and a frames file that
/// is not the one the head names makes the next update rebuild the export.
#[test]
fn export_update_with_nothing_changed_keeps_the_frames_file_and_repairs_edits() {
    use std::os::unix::fs::MetadataExt;
    let t = demo();
    let out = t.home().join("y");
    let o = out.to_str().unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    let frames = out.join("dsv-export.frames");
    let stamp = || {
        let m = std::fs::metadata(&frames).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let first = stamp();
    std::thread::sleep(std::time::Duration::from_millis(20));
    t.ok(["export", "--format", "yolo", "--out", o]);
    assert_eq!(stamp(), first, "the frames file was written again");
    assert_eq!(
        dsv::export::read_record(&out).unwrap().frames.len(),
        6,
        "the record is whole"
    );
    // An exported image edited in place is written again, and recorded.
    let img = out.join("images/train/frame_002.jpg");
    let before = std::fs::read(&img).unwrap();
    let mut edited = before.clone();
    edited.push(0);
    std::fs::write(&img, &edited).unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    assert!(
        std::fs::read(&img).unwrap() == before,
        "the edited image is restored"
    );
    assert_ne!(stamp(), first, "the frames file records the new image");
    // A frames file that is not the head's: nothing of the export is
    // trusted, and a label file edited in place is written again.
    std::fs::write(&frames, b"not a frames file").unwrap();
    let lbl = out.join("labels/train/frame_004.txt");
    let want = std::fs::read(&lbl).unwrap();
    std::fs::write(&lbl, "garbage\n").unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    assert_eq!(std::fs::read(&lbl).unwrap(), want);
    assert_eq!(dsv::export::read_record(&out).unwrap().frames.len(), 6);
}

/// Every file under `dir` by relative path; the parts that differ between
/// two runs of the same export by design (the dates, data.yaml's `path`, the
/// record's file times) left out.
fn export_files(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let mut bytes = std::fs::read(&p).unwrap();
            if rel == "dsv-export.frames" {
                // Compared through the record below (it holds the file times).
                continue;
            }
            if rel == "dsv-export.json" {
                let rec = dsv::export::read_record(dir).expect("an export record");
                let mut v = serde_json::to_value(rec).unwrap();
                v["lineage"]["date"] = Value::Null;
                // An update keeps the earlier export's class ids, and says so.
                v["classes"]["from"] = Value::Null;
                for f in v["frames"].as_array_mut().unwrap() {
                    f["stat"] = Value::Null;
                    f["ctime"] = Value::Null;
                }
                bytes = serde_json::to_vec_pretty(&v).unwrap();
            } else if rel.starts_with("annotations/") && rel.ends_with(".json") {
                // COCO's `info.date_created`: two runs a second apart differ there.
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                v["info"]["date_created"] = Value::Null;
                bytes = serde_json::to_vec_pretty(&v).unwrap();
            } else if rel == "data.yaml" {
                let text = String::from_utf8(bytes).unwrap();
                bytes = text
                    .lines()
                    .filter(|l| !l.starts_with("path:") && !l.starts_with("dsv_date:"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes();
            }
            out.insert(rel, bytes);
        }
    }
    out
}

#[test]
fn export_update_in_place_equals_a_fresh_export_over_random_edits() {
    let t = TestRepo::init();
    copy_contents(&fixtures().join("demo"), &t.path("demo"));
    // More frames: copies of the demo's under new names.
    for i in 0..18 {
        let src = format!("demo/images/frame_{:03}.jpg", i % 6);
        let img = std::fs::read(t.path(&src)).unwrap();
        t.write(format!("demo/images/more_{i:03}.jpg"), img);
        let lbl = std::fs::read(t.path(format!("demo/labels/frame_{:03}.txt", i % 6))).unwrap();
        t.write(format!("demo/labels/more_{i:03}.txt"), lbl);
    }
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "data"]);
    let formats = ["yolo", "voc", "kitti", "coco"];
    let out = |f: &str| t.home().join(format!("upd-{f}"));
    for f in formats {
        t.ok(["export", "--format", f, "--out", out(f).to_str().unwrap()]);
    }
    // A fixed-seed generator: the same edits on every run.
    let mut seed: u64 = 18;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut names: Vec<String> = (0..6)
        .map(|i| format!("frame_{i:03}"))
        .chain((0..18).map(|i| format!("more_{i:03}")))
        .collect();
    let mut added = 0;
    for round in 0..5 {
        for _ in 0..4 {
            let k = next(names.len() as u64) as usize;
            let name = names[k].clone();
            match next(5) {
                // Relabelled: new boxes and classes.
                0 | 1 => {
                    let mut text = String::new();
                    for _ in 0..=next(3) {
                        let c = next(12);
                        let w = 0.05 + next(40) as f64 / 100.0;
                        text.push_str(&format!("{c} 0.500000 0.500000 {w:.6} 0.100000\n"));
                    }
                    t.write(format!("demo/labels/{name}.txt"), text);
                }
                // Removed.
                2 if names.len() > 4 => {
                    std::fs::remove_file(t.path(format!("demo/images/{name}.jpg"))).unwrap();
                    std::fs::remove_file(t.path(format!("demo/labels/{name}.txt"))).unwrap();
                    names.remove(k);
                }
                // Its image changed.
                3 => {
                    let p = t.path(format!("demo/images/{name}.jpg"));
                    let mut b = std::fs::read(&p).unwrap();
                    b.extend_from_slice(format!("round {round}").as_bytes());
                    std::fs::write(&p, b).unwrap();
                }
                // A new frame.
                _ => {
                    let new = format!("added_{added:03}");
                    added += 1;
                    let img = std::fs::read(t.path(format!("demo/images/{name}.jpg"))).unwrap();
                    t.write(format!("demo/images/{new}.jpg"), img);
                    t.write(format!("demo/labels/{new}.txt"), "11 0.4 0.4 0.2 0.2\n");
                    names.push(new);
                }
            }
        }
        if round == 3 {
            // A change to a file that is no frame's: every frame is converted again.
            t.write("demo/notes.txt", "round 3\n");
        }
        t.ok(["add", "-A"]);
        t.ok(["commit", "-m", &format!("round {round}")]);
        for f in formats {
            let fresh = t.home().join(format!("fresh-{f}-{round}"));
            t.ok(["export", "--format", f, "--out", fresh.to_str().unwrap()]);
            let r = t.ok([
                "export",
                "--format",
                f,
                "--out",
                out(f).to_str().unwrap(),
                "--json",
            ]);
            let rep: Value = serde_json::from_str(&r.stdout).unwrap();
            if f != "coco" && round != 3 {
                assert!(
                    rep["labels_unchanged"].as_u64().unwrap() > 0,
                    "{f} round {round}: {r}"
                );
            }
            let (a, b) = (export_files(&out(f)), export_files(&fresh));
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{f} round {round}"
            );
            for (k, v) in &a {
                assert!(
                    v == &b[k],
                    "{f} round {round}: {k} differs from a fresh export:\n{}\n{}",
                    String::from_utf8_lossy(v),
                    String::from_utf8_lossy(&b[k])
                );
            }
            std::fs::remove_dir_all(&fresh).unwrap();
        }
    }
}

/// An update after frames are relabelled, added, removed and renamed (to
/// either end of the path order, and to a name whose stem another frame has,
/// which renames that frame's files too), and after the splits change, gives
/// exactly the files a fresh export gives, in each format: the update checks
/// and converts only what changed, and must still see all of it.
#[test]
fn export_update_after_relabels_renames_and_split_changes_equals_a_fresh_export() {
    let t = demo();
    let formats = ["yolo", "coco", "voc"];
    let out = |f: &str| t.home().join(format!("upd-{f}"));
    let split = ["--split", "train=0.5,val=0.5"];
    for f in formats {
        let o = out(f);
        t.ok([
            "export",
            "--format",
            f,
            "--out",
            o.to_str().unwrap(),
            split[0],
            split[1],
        ]);
    }
    let same_as_fresh = |round: &str, extra: &[&str]| {
        for f in formats {
            let fresh = t.home().join(format!("fresh-{f}-{round}"));
            let mut args = vec!["export", "--format", f, "--out", fresh.to_str().unwrap()];
            args.extend_from_slice(extra);
            t.ok(&args);
            let o = out(f);
            let mut args = vec!["export", "--format", f, "--out", o.to_str().unwrap()];
            args.extend_from_slice(extra);
            t.ok(&args);
            let (a, b) = (export_files(&o), export_files(&fresh));
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{f} {round}"
            );
            for (k, v) in &a {
                assert!(
                    v == &b[k],
                    "{f} {round}: {k} differs from a fresh export:\n{}\n{}",
                    String::from_utf8_lossy(v),
                    String::from_utf8_lossy(&b[k])
                );
            }
            std::fs::remove_dir_all(&fresh).unwrap();
        }
    };
    let mv = |from: &str, to: &str| {
        for (dir, ext) in [("images", "jpg"), ("labels", "txt")] {
            let a = t.path(format!("demo/{dir}/{from}.{ext}"));
            let b = t.path(format!("demo/{dir}/{to}.{ext}"));
            std::fs::create_dir_all(b.parent().unwrap()).unwrap();
            std::fs::rename(a, b).unwrap();
        }
    };
    // Relabelled, renamed, added, removed; the same splits (updated in place).
    t.write(
        "demo/labels/frame_000.txt",
        "10 0.5 0.5 0.2 0.2\n11 0.3 0.3 0.1 0.1\n",
    );
    t.write("demo/labels/frame_003.txt", "1 0.4 0.6 0.3 0.2\n");
    mv("frame_001", "zz_001");
    mv("frame_004", "a_004");
    let img = std::fs::read(t.path("demo/images/frame_002.jpg")).unwrap();
    t.write("demo/images/sub/frame_002.jpg", img);
    t.write("demo/labels/sub/frame_002.txt", "11 0.5 0.5 0.4 0.4\n");
    std::fs::remove_file(t.path("demo/images/frame_005.jpg")).unwrap();
    std::fs::remove_file(t.path("demo/labels/frame_005.txt")).unwrap();
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "relabel, rename, add, remove"]);
    same_as_fresh("in place", &split);
    // Relabelled again, with other splits (the export rebuilt beside).
    t.write("demo/labels/zz_001.txt", "2 0.5 0.5 0.6 0.6\n");
    t.ok(["commit", "-a", "-m", "relabel"]);
    same_as_fresh("new splits", &["--split", "train=0.3,val=0.7"]);
    // The copy in sub/ renamed back out of its stem's way; no splits.
    mv("sub/frame_002", "frame_006");
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "rename back"]);
    same_as_fresh("no splits", &[]);
    same_as_fresh("nothing changed", &[]);
}

/// `xml` with `<attribute name="color">red</attribute>` on the first box of `frame`.
fn with_color(xml: &str, frame: &str) -> String {
    let at = xml
        .find(&format!("name=\"{frame}\""))
        .unwrap_or_else(|| panic!("no image {frame}"));
    let b = at + xml[at..].find("<box ").unwrap();
    let end = b + xml[b..].find('>').unwrap();
    let child = "<attribute name=\"color\">red</attribute>";
    if xml[..end].ends_with('/') {
        format!("{}>{child}</box>{}", &xml[..end - 1], &xml[end + 1..])
    } else {
        format!("{}{child}{}", &xml[..=end], &xml[end + 1..])
    }
}

#[test]
fn import_cvat_attribute_edits_are_stored_in_coco_label_files() {
    let t = demo();
    // A COCO copy of the demo in the dataset (its frames named by COCO's file).
    t.ok([
        "export",
        "--format",
        "coco",
        "--out",
        "c",
        "--where",
        "path.startsWith('demo/')",
    ]);
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "coco copy"]);
    t.ok([
        "export",
        "--format",
        "cvat",
        "--out",
        "cv",
        "--where",
        "path.startsWith('c/')",
    ]);
    let xml = std::fs::read_to_string(t.path("cv/annotations.xml")).unwrap();
    std::fs::write(
        t.path("cv/annotations.xml"),
        with_color(&xml, "c/images/train/frame_000.jpg"),
    )
    .unwrap();
    let r = t.ok(["import", "cv/annotations.xml"]);
    assert!(r.stderr.contains("1 changed"), "{}", r.stderr);
    let coco: Value = serde_json::from_slice(
        &std::fs::read(t.path("c/annotations/instances_train.json")).unwrap(),
    )
    .unwrap();
    let colored: Vec<&Value> = coco["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["attributes"]["color"] == "red")
        .collect();
    assert_eq!(colored.len(), 1, "{coco}");
    // Nothing else changed: the diff is the one attribute edit.
    let d: Value = serde_json::from_str(&t.ok(["diff", "--json"]).stdout).unwrap();
    let changes: Vec<&Value> = d["labels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["frames"].as_array().unwrap())
        .flat_map(|f| f["changes"].as_array().unwrap())
        .collect();
    assert_eq!(changes.len(), 1, "{d}");
    assert_eq!(changes[0]["attributes"]["color"]["after"], "red", "{d}");
}

#[test]
fn import_cvat_attribute_edits_yolo_cannot_hold_are_refused_unless_dropped() {
    let t = demo();
    t.ok(["export", "--format", "cvat", "--out", "cv"]);
    let before = label_files(&t);
    let xml = std::fs::read_to_string(t.path("cv/annotations.xml")).unwrap();
    let edited = with_color(&xml, "demo/images/frame_002.jpg");
    // Another edit too: a reclassified box in frame_003.
    let i = edited.find("name=\"demo/images/frame_003.jpg\"").unwrap();
    let s = i + edited[i..].find("<box label=\"").unwrap() + 12;
    let e = s + edited[s..].find('"').unwrap();
    let edited = format!("{}person{}", &edited[..s], &edited[e..]);
    std::fs::write(t.path("cv/annotations.xml"), &edited).unwrap();
    let r = t.fails(["import", "cv/annotations.xml"]);
    assert!(
        r.stderr
            .contains("cannot hold the attribute edits of 1 object")
            && r.stderr
                .contains("frame demo/images/frame_002.jpg: object 1")
            && r.stderr.contains("color=red")
            && r.stderr.contains("--drop-attributes"),
        "{}",
        r.stderr
    );
    assert_eq!(label_files(&t), before, "nothing written");
    let r = t.ok(["import", "cv/annotations.xml", "--drop-attributes"]);
    assert!(
        r.stderr
            .contains("cannot hold these attribute edits, left out")
            && r.stderr.contains("color=red"),
        "{}",
        r.stderr
    );
    let after = label_files(&t);
    assert_ne!(before["frame_003.txt"], after["frame_003.txt"]);
    assert_eq!(before["frame_002.txt"], after["frame_002.txt"]);
}

/// The names of the files under `dir` (relative, sorted), without the record.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    common::files_with_bytes(dir, |rel| rel.starts_with("dsv-export"))
        .into_keys()
        .collect()
}

/// An update after a frame is relabelled with an invalid box refuses it as a
/// fresh export does, the export left as it was; `--skip-invalid` leaves it
/// out as a fresh export does; and a frame a `--skip-invalid` export left
/// out, though unchanged since, is checked again by an update without it
/// (what an update that checks only the changed frames must keep).
#[test]
fn export_update_after_an_invalid_relabel_is_refused_as_a_fresh_export() {
    let t = TestRepo::init();
    copy_contents(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/datumaro/roboflow_dataset/voc"),
        t.root(),
    );
    t.ok(["add", "-A"]);
    t.ok(["commit", "-m", "base"]);
    let out = |name: &str| t.home().join(name).to_str().unwrap().to_string();
    for f in ["yolo", "voc", "coco"] {
        t.ok(["export", "--format", f, "--out", &out(f)]);
    }
    let xml = t
        .read_string("train/train_001.xml")
        .replace("<xmin>2</xmin>", "<xmin>7</xmin>");
    t.write("train/train_001.xml", xml);
    t.ok(["commit", "-a", "-m", "bad box"]);
    let want = "error: 1 invalid box(es) (--skip-invalid leaves their frames out); nothing written:\n  train/train_001.xml: frame train/train_001.jpg: object 1 (label_0): box has zero or negative size";
    for f in ["yolo", "voc", "coco"] {
        let fresh = t.expect_code(
            1,
            [
                "export",
                "--format",
                f,
                "--out",
                &out(&format!("{f}-fresh")),
            ],
        );
        assert!(fresh.stderr.contains(want), "{f}: {fresh}");
        let before = files_under(std::path::Path::new(&out(f)));
        let record = std::fs::read(t.home().join(f).join("dsv-export.json")).unwrap();
        let r = t.expect_code(1, ["export", "--format", f, "--out", &out(f)]);
        assert!(r.stderr.contains(want), "{f}: {r}");
        assert_eq!(files_under(std::path::Path::new(&out(f))), before, "{f}");
        assert_eq!(
            std::fs::read(t.home().join(f).join("dsv-export.json")).unwrap(),
            record,
            "{f}"
        );
        // With --skip-invalid: left out, as from a fresh export.
        let fresh = t.ok([
            "export",
            "--format",
            f,
            "--out",
            &out(&format!("{f}-fresh")),
            "--skip-invalid",
        ]);
        let r = t.ok(["export", "--format", f, "--out", &out(f), "--skip-invalid"]);
        let left = "warning: left out 1 frame(s) with invalid boxes:";
        assert!(fresh.stderr.contains(left), "{f}: {fresh}");
        assert!(r.stderr.contains(left), "{f}: {r}");
        assert_eq!(
            files_under(std::path::Path::new(&out(f))),
            files_under(std::path::Path::new(&out(&format!("{f}-fresh")))),
            "{f}"
        );
    }
    // Another frame relabelled (validly): the frame left out above is not in
    // the export, so it is checked again, and refused without --skip-invalid.
    let xml = t
        .read_string("train/train_002.xml")
        .replace("<xmin>0</xmin>", "<xmin>1</xmin>");
    t.write("train/train_002.xml", xml);
    t.ok(["commit", "-a", "-m", "another"]);
    let r = t.expect_code(1, ["export", "--format", "yolo", "--out", &out("yolo")]);
    assert!(r.stderr.contains(want), "{r}");
}

/// An update with `--skip-invalid` that leaves a frame out keeps each later
/// frame's earlier entry and change mark its own (a shift by the frame left
/// out would keep a relabelled frame's old label file); and a version 1
/// record whose label hashes are not 64 hex digits is still updated, those
/// label files written again. Both equal a fresh export.
#[test]
fn export_update_leaving_a_frame_out_or_reading_damaged_v1_hashes_equals_a_fresh_export() {
    let t = demo();
    let out = t.home().join("y");
    let o = out.to_str().unwrap();
    let fresh = t.home().join("fresh");
    let f = fresh.to_str().unwrap();
    t.ok(["export", "--format", "yolo", "--out", o]);
    t.write("demo/labels/frame_001.txt", "0 0.5 0.5 0 0.1\n");
    for n in ["002", "003"] {
        let p = format!("demo/labels/frame_{n}.txt");
        let text = t.read_string(&p);
        t.write(&p, format!("{text}1 0.25 0.25 0.1 0.1\n"));
    }
    t.ok(["commit", "-a", "-m", "one invalid, two relabelled"]);
    let r = t.ok(["export", "--format", "yolo", "--out", o, "--skip-invalid"]);
    assert!(
        r.stderr.contains("left out 1 frame(s) with invalid boxes"),
        "{r}"
    );
    t.ok(["export", "--format", "yolo", "--out", f, "--skip-invalid"]);
    let same = |what: &str| {
        let (a, b) = (export_files(&out), export_files(&fresh));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{what}"
        );
        for (k, v) in &a {
            assert!(b[k] == *v, "{what}: {k} differs from a fresh export");
        }
    };
    same("left out");
    // A version 1 record with every label hash hand-edited, and an exported
    // label file edited in place: read (not refused as a foreign directory),
    // and the label files written again.
    let rec = dsv::export::read_record(&out).expect("a record");
    let mut v1 = serde_json::to_value(&rec).unwrap();
    v1["dsv_export"] = json!(1);
    let mut edited = 0;
    for fr in v1["frames"].as_array_mut().unwrap() {
        if fr.get("label_hash").is_some() {
            fr["label_hash"] = json!("not-a-hash");
            edited += 1;
        }
    }
    assert!(edited > 3, "{v1}");
    std::fs::write(out.join("dsv-export.json"), v1.to_string()).unwrap();
    std::fs::remove_file(out.join("dsv-export.frames")).unwrap();
    let label = rec
        .frames
        .iter()
        .find_map(|fr| fr.label.clone())
        .expect("a label file");
    std::fs::write(out.join(&label), "9 0.5 0.5 0.5 0.5\n").unwrap();
    t.ok(["export", "--format", "yolo", "--out", o, "--skip-invalid"]);
    same("version 1 record");
}
