//! Every shape kind of the label formats dsv reads (issue 17, item 5): CVAT
//! box, polygon, polyline, points, ellipse, cuboid, mask; COCO bbox, polygon
//! and RLE segmentation, keypoints. Each is parsed, diffed, merged and
//! exported, or reported loudly where a target format cannot hold it.

use crate::common;

use common::TestRepo;

/// One CVAT image with one shape of every kind dsv reads.
const CVAT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="a.jpg" width="100" height="100">
    <box label="car" occluded="0" xtl="1" ytl="1" xbr="9" ybr="9" z_order="0"/>
    <polygon label="roof" occluded="0" points="10,10;20,10;20,20" z_order="0"/>
    <polyline label="road" occluded="0" points="0,50;50,50;99,60" z_order="0"/>
    <points label="kp" occluded="0" points="30,30;35,35;40,30" z_order="0"/>
    <ellipse label="wheel" occluded="0" cx="70" cy="70" rx="5" ry="3" z_order="0"/>
    <cuboid label="truck" occluded="0" xtl1="60" ytl1="10" xbl1="60" ybl1="30" xtr1="80" ytr1="10" xbr1="80" ybr1="30" xtl2="65" ytl2="5" xbl2="65" ybl2="25" xtr2="85" ytr2="5" xbr2="85" ybr2="25" z_order="0"/>
    <mask label="sky" occluded="0" rle="2,3,1,4,2" left="40" top="80" width="4" height="3" z_order="0"/>
  </image>
</annotations>
"#;

fn diff_json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["diff", "--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&repo.ok(a).stdout).expect("diff --json is JSON")
}

/// (kind, class, shape) of every object change, sorted.
fn changes(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for l in doc["labels"].as_array().expect("labels") {
        for f in l["frames"].as_array().expect("frames") {
            for c in f["changes"].as_array().expect("changes") {
                out.push((
                    c["kind"].as_str().unwrap_or("").to_string(),
                    c["class"].as_str().unwrap_or("").to_string(),
                    c["shape"].as_str().unwrap_or("box").to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|n| n.as_f64().expect("a number"))
        .collect()
}

fn one(kind: &str, class: &str, shape: &str) -> Vec<(String, String, String)> {
    vec![(kind.into(), class.into(), shape.into())]
}

/// A repository with [`CVAT`] committed, then `edit` applied to the file.
fn cvat_edited(from: &str, to: &str) -> TestRepo {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("annotations.xml", CVAT);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let edited = CVAT.replacen(from, to, 1);
    assert_ne!(edited, CVAT, "{from}");
    repo.write("annotations.xml", edited);
    repo
}

#[test]
fn cvat_points_moved_is_an_object_change() {
    let repo = cvat_edited(
        r#"points="30,30;35,35;40,30""#,
        r#"points="31,30;36,35;41,30""#,
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(changes(&doc), one("moved", "kp", "points"), "{doc:#}");
    let r = repo.ok(["diff"]);
    insta::assert_snapshot!("cvat_points_moved_diff", r.stdout);
}

#[test]
fn cvat_polyline_deleted_is_removed() {
    let repo = cvat_edited(
        "    <polyline label=\"road\" occluded=\"0\" points=\"0,50;50,50;99,60\" z_order=\"0\"/>\n",
        "",
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(changes(&doc), one("removed", "road", "polyline"), "{doc:#}");
    repo.ok(["commit", "-a", "-m", "no road"]);
    assert_eq!(
        changes(&diff_json(&repo, &["HEAD~1", "HEAD"])),
        one("removed", "road", "polyline")
    );
}

#[test]
fn cvat_polyline_vertex_moved_inside_its_box_is_an_object_change() {
    // The middle vertex moves; the bounding box stays the same.
    let repo = cvat_edited(
        r#"points="0,50;50,50;99,60""#,
        r#"points="0,50;50,55;99,60""#,
    );
    assert_eq!(
        changes(&diff_json(&repo, &[])),
        one("attributes", "road", "polyline")
    );
    let r = repo.ok(["diff"]);
    assert!(r.stdout.contains("polyline  shape changed"), "{r}");
}

#[test]
fn cvat_polygon_turned_polyline_is_an_object_change() {
    let repo = cvat_edited(
        r#"<polygon label="roof" occluded="0" points="10,10;20,10;20,20" z_order="0"/>"#,
        r#"<polyline label="roof" occluded="0" points="10,10;20,10;20,20" z_order="0"/>"#,
    );
    assert_eq!(
        changes(&diff_json(&repo, &[])),
        one("attributes", "roof", "polyline")
    );
}

#[test]
fn cvat_ellipse_cuboid_and_mask_edits_are_object_changes() {
    for (from, to, class, shape) in [
        (r#"rx="5""#, r#"rx="6""#, "wheel", "ellipse"),
        (r#"xtl2="65""#, r#"xtl2="66""#, "truck", "cuboid"),
        (r#"rle="2,3,1,4,2""#, r#"rle="2,3,2,3,2""#, "sky", "mask"),
    ] {
        let repo = cvat_edited(from, to);
        let got = changes(&diff_json(&repo, &[]));
        assert_eq!(got.len(), 1, "{shape}: {got:?}");
        assert_eq!((&got[0].1[..], &got[0].2[..]), (class, shape), "{got:?}");
    }
}

#[test]
fn cvat_every_shape_kind_is_counted() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("annotations.xml", CVAT);
    let r = repo.ok(["labels", "--count", "annotations.xml"]);
    assert!(r.stdout.contains("1 frame\t7 objects"), "{r}");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let r = repo.ok(["stats", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["stats"]["objects"], 7, "{doc:#}");
    for class in ["road", "kp", "wheel", "truck", "sky"] {
        assert_eq!(doc["stats"]["classes"][class], 1, "{class}: {doc:#}");
    }
    let r = repo.ok([
        "query",
        "objects.exists(o, o.kind == \"polyline\")",
        "--count",
    ]);
    assert_eq!(r.stdout.trim(), "1", "{r}");
    let r = repo.ok([
        "query",
        "objects.exists(o, o.kind == \"hexagon\")",
        "--count",
    ]);
    assert_eq!(r.stdout.trim(), "0", "{r}");
}

#[test]
fn cvat_unlabelled_polygon_is_an_error() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    let text = CVAT.replacen(r#"<polygon label="roof""#, r#"<polygon label="""#, 1);
    repo.write("annotations.xml", &text);
    let r = repo.expect_code(1, ["labels", "annotations.xml"]);
    assert!(
        r.stderr.contains("annotations.xml: line 6, column ")
            && r.stderr.contains("<polygon> has an empty label"),
        "{r}"
    );
    let r = repo.ok(["add", "-A"]);
    assert!(
        r.stderr.contains("warning: annotations.xml:6:") && r.stderr.contains("empty label"),
        "{r}"
    );
    repo.ok(["commit", "-m", "unlabelled"]);
    let r = repo.expect_code(1, ["export", "HEAD", "--format", "coco", "--out", "out"]);
    assert!(r.stderr.contains("do not parse"), "{r}");
    // No label attribute at all is the same error.
    let text = CVAT.replacen(r#"<polyline label="road" "#, "<polyline ", 1);
    repo.write("annotations.xml", text);
    let r = repo.expect_code(1, ["labels", "annotations.xml"]);
    assert!(r.stderr.contains("<polyline> has no label"), "{r}");
}

#[test]
fn cvat_shapes_a_format_cannot_hold_are_reported_by_export() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("annotations.xml", CVAT);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let r = repo.ok(["export", "HEAD", "--format", "yolo", "--out", "y"]);
    for kind in ["polyline", "points", "ellipse", "cuboid", "mask"] {
        assert!(
            r.stderr.contains(&format!(
                "1 shapes of kind {kind} in annotations.xml are not exported"
            )),
            "{kind}: {r}"
        );
    }
    assert!(!r.stderr.contains("kind polygon"), "{r}");
    let txt = repo.read_string("y/labels/train/a.txt");
    // box and polygon (a segment); the area kinds as their boxes.
    assert_eq!(txt.lines().count(), 2 + 3, "{txt}");
    let r = repo.ok(["export", "HEAD", "--format", "coco", "--out", "c", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let lost = doc["not_exported"].as_array().expect("not_exported");
    let kinds: Vec<&str> = lost.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["cuboid", "ellipse", "mask", "polyline"], "{doc:#}");
    let coco: serde_json::Value =
        serde_json::from_slice(&repo.read("c/annotations/instances_train.json")).expect("COCO");
    // CVAT points are COCO keypoints.
    let kp = coco["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["keypoints"].is_array())
        .expect("keypoints");
    assert_eq!(
        numbers(&kp["keypoints"]),
        [30.0, 30.0, 2.0, 35.0, 35.0, 2.0, 40.0, 30.0, 2.0]
    );
}

#[test]
fn cvat_merge_keeps_every_shape_kind() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("annotations.xml", CVAT);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["branch", "b"]);
    repo.write(
        "annotations.xml",
        CVAT.replacen(
            r#"points="30,30;35,35;40,30""#,
            r#"points="31,30;36,35;41,30""#,
            1,
        ),
    );
    repo.ok(["commit", "-a", "-m", "points moved"]);
    repo.ok(["checkout", "b"]);
    repo.write(
        "annotations.xml",
        CVAT.replacen(r#"rx="5""#, r#"rx="6""#, 1),
    );
    repo.ok(["commit", "-a", "-m", "wheel wider"]);
    repo.ok(["merge", "main"]);
    let merged = repo.read_string("annotations.xml");
    for want in [
        r#"points="31,30;36,35;41,30""#,
        r#"rx="6""#,
        "<polyline label=\"road\"",
        "<cuboid label=\"truck\"",
        r#"rle="2,3,1,4,2""#,
    ] {
        assert!(merged.contains(want), "{want}:\n{merged}");
    }
}

/// A COCO file with an RLE mask (compressed and uncompressed) and keypoints.
const COCO: &str = r#"{
  "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],
  "categories": [{"id": 1, "name": "blob"}, {"id": 2, "name": "person", "keypoints": ["nose", "eye"]}],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 0, 2, 3], "iscrowd": 1,
     "segmentation": {"counts": [3, 6, 3], "size": [3, 4]}},
    {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 4, 3], "num_keypoints": 2,
     "keypoints": [1, 1, 2, 3, 2, 1], "segmentation": [[0, 0, 4, 0, 4, 3]]},
    {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 0, 2, 3],
     "segmentation": {"counts": "32", "size": [3, 4]}}
  ]
}"#;

#[test]
fn coco_rle_segmentation_round_trips_through_export() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("instances.json", COCO);
    let r = repo.ok(["labels", "--json", "instances.json"]);
    assert!(r.stdout.contains("\"type\": \"mask\""), "{r}");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let r = repo.ok(["export", "HEAD", "--format", "coco", "--out", "c"]);
    assert!(!r.stderr.contains("not exported"), "{r}");
    let out: serde_json::Value =
        serde_json::from_slice(&repo.read("c/annotations/instances_train.json")).expect("COCO");
    let anns = out["annotations"].as_array().unwrap();
    assert_eq!(
        anns[0]["segmentation"],
        serde_json::json!({"counts": [3, 6, 3], "size": [3, 4]})
    );
    // The compressed string "32" is the runs [3, 2].
    assert_eq!(
        anns[2]["segmentation"],
        serde_json::json!({"counts": [3, 2], "size": [3, 4]})
    );
    assert_eq!(
        numbers(&anns[1]["keypoints"]),
        [1.0, 1.0, 2.0, 3.0, 2.0, 1.0]
    );
    assert_eq!(anns[1]["num_keypoints"], 2);
    assert_eq!(
        numbers(&anns[1]["segmentation"][0]),
        [0.0, 0.0, 4.0, 0.0, 4.0, 3.0]
    );
    // Exported and read again: the same objects.
    let again = repo.ok(["labels", "--json", "c/annotations/instances_train.json"]);
    let before: serde_json::Value =
        serde_json::from_str(&repo.ok(["labels", "--json", "instances.json"]).stdout).unwrap();
    let after: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    let objects = |d: &serde_json::Value| {
        let mut o = d[0]["frames"][0]["objects"].clone();
        for x in o.as_array_mut().unwrap() {
            x.as_object_mut().unwrap().remove("id");
        }
        o
    };
    assert_eq!(objects(&before), objects(&after), "{again}");
    // YOLO cannot hold masks or keypoints: said, not silent.
    let r = repo.ok(["export", "HEAD", "--format", "yolo", "--out", "y"]);
    assert!(
        r.stderr
            .contains("2 shapes of kind mask in instances.json are not exported")
            && r.stderr
                .contains("1 shapes of kind keypoints in instances.json are not exported"),
        "{r}"
    );
}

#[test]
fn coco_keypoints_moved_is_an_object_change() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("instances.json", COCO);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write(
        "instances.json",
        COCO.replace("[1, 1, 2, 3, 2, 1]", "[1, 1, 2, 3, 2, 2]"),
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(
        changes(&doc),
        one("attributes", "person", "keypoints"),
        "{doc:#}"
    );
    repo.write(
        "instances.json",
        COCO.replace("\"counts\": [3, 6, 3]", "\"counts\": [3, 5, 4]"),
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(changes(&doc), one("attributes", "blob", "mask"), "{doc:#}");
}

/// One CVAT image with a skeleton of three points (visible, occluded,
/// outside) whose second point has an attribute, as CVAT 2.x exports it.
const SKELETON: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="a.jpg" width="200" height="200">
    <box label="car" occluded="0" xtl="1" ytl="1" xbr="9" ybr="9" z_order="0"/>
    <skeleton label="person" source="manual" z_order="0">
      <points label="nose" occluded="0" source="manual" outside="0" points="54.5,94.8">
      </points>
      <points label="hand" occluded="1" source="manual" outside="0" points="68,162">
        <attribute name="side">left</attribute>
      </points>
      <points label="foot" occluded="0" source="manual" outside="1" points="125,62">
      </points>
    </skeleton>
  </image>
</annotations>
"#;

fn skeleton_repo() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("annotations.xml", SKELETON);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

#[test]
fn cvat_skeleton_point_moved_is_an_object_change() {
    let repo = skeleton_repo();
    repo.write(
        "annotations.xml",
        SKELETON.replacen(r#"points="68,162""#, r#"points="70,165""#, 1),
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(
        changes(&doc),
        one("moved", "person", "keypoints"),
        "{doc:#}"
    );
    // An outside point's coordinates are not a position: moving it changes
    // the shape, not the box.
    repo.ok(["commit", "-a", "-m", "hand moved"]);
    repo.write(
        "annotations.xml",
        SKELETON
            .replacen(r#"points="68,162""#, r#"points="70,165""#, 1)
            .replacen(r#"points="125,62""#, r#"points="1,1""#, 1),
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(
        changes(&doc),
        one("attributes", "person", "keypoints"),
        "{doc:#}"
    );
}

#[test]
fn cvat_skeleton_is_counted_and_round_trips_through_merge() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.write("annotations.xml", SKELETON);
    let r = repo.ok(["labels", "--count", "annotations.xml"]);
    assert!(r.stdout.contains("1 frame\t2 objects"), "{r}");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let r = repo.ok([
        "query",
        "objects.exists(o, o.kind == \"keypoints\")",
        "--count",
    ]);
    assert_eq!(r.stdout.trim(), "1", "{r}");
    repo.ok(["branch", "b"]);
    repo.write(
        "annotations.xml",
        SKELETON.replacen(r#"points="54.5,94.8""#, r#"points="55,95""#, 1),
    );
    repo.ok(["commit", "-a", "-m", "nose moved"]);
    repo.ok(["checkout", "b"]);
    repo.write(
        "annotations.xml",
        SKELETON.replacen(r#"xbr="9""#, r#"xbr="10""#, 1),
    );
    repo.ok(["commit", "-a", "-m", "car wider"]);
    repo.ok(["merge", "main"]);
    let merged = repo.read_string("annotations.xml");
    for want in [
        r#"<skeleton label="person""#,
        r#"<points label="nose" occluded="0" outside="0" points="55,95""#,
        r#"<points label="hand" occluded="1" outside="0" points="68,162""#,
        r#"<attribute name="side">left</attribute>"#,
        r#"<points label="foot" occluded="0" outside="1" points="125,62""#,
        r#"xbr="10""#,
    ] {
        assert!(merged.contains(want), "{want}:\n{merged}");
    }
    // What was written reads back as what was merged: no change left.
    let doc = diff_json(&repo, &[]);
    assert_eq!(changes(&doc), vec![], "{doc:#}");
}

/// A YOLO pose file: two people, a box and two (x, y, visibility) keypoints each.
const POSE: &str =
    "0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n0 0.2 0.2 0.1 0.1 0.18 0.2 2 0.22 0.2 0\n";

fn pose_repo(kpt_shape: &str, labels: &str) -> TestRepo {
    let repo = TestRepo::init();
    repo.write("images/a.jpg", "x");
    repo.write(
        "data.yaml",
        format!("names: [person]\nkpt_shape: {kpt_shape}\n"),
    );
    repo.write("labels/a.txt", labels);
    repo
}

#[test]
fn yolo_pose_file_with_kpt_shape_is_read_as_box_and_keypoints() {
    let repo = pose_repo("[2, 3]", POSE);
    let r = repo.ok(["add", "-A"]);
    assert!(!r.stderr.contains("warning"), "{r}");
    repo.ok(["commit", "-m", "pose"]);
    let doc: serde_json::Value =
        serde_json::from_str(&repo.ok(["labels", "--json", "labels/a.txt"]).stdout).expect("JSON");
    let o = &doc[0]["frames"][0]["objects"][0];
    assert_eq!(o["class"], "person", "{doc:#}");
    assert_eq!(o["geometry"]["type"], "keypoints", "{doc:#}");
    assert_eq!(
        o["geometry"]["points"],
        serde_json::json!([[0.45, 0.4, 2.0], [0.55, 0.4, 1.0]]),
        "{doc:#}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json"]).stdout).expect("JSON");
    assert_eq!(stats["stats"]["objects"], 2, "{stats:#}");
    assert_eq!(stats["stats"]["label_errors"], 0, "{stats:#}");
    let r = repo.ok([
        "query",
        "objects.exists(o, o.kind == \"keypoints\")",
        "--count",
    ]);
    assert_eq!(r.stdout.trim(), "1", "{r}");
    let r = repo.ok([
        "query",
        "objects.exists(o, o.kind == \"polygon\")",
        "--count",
    ]);
    assert_eq!(r.stdout.trim(), "0", "{r}");
}

#[test]
fn yolo_pose_keypoint_moved_is_an_object_change() {
    let repo = pose_repo("[2, 3]", POSE);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "pose"]);
    // The first person's second keypoint moves inside the same box.
    repo.write(
        "labels/a.txt",
        POSE.replacen("0.55 0.4 1", "0.56 0.42 2", 1),
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(
        changes(&doc),
        one("attributes", "person", "keypoints"),
        "{doc:#}"
    );
    // The box moves with its keypoints: moved.
    repo.write(
        "labels/a.txt",
        POSE.replacen("0.2 0.2 0.1 0.1", "0.21 0.2 0.1 0.1", 1),
    );
    let doc = diff_json(&repo, &[]);
    assert_eq!(
        changes(&doc),
        one("moved", "person", "keypoints"),
        "{doc:#}"
    );
}

#[test]
fn yolo_pose_line_that_does_not_fit_kpt_shape_is_an_error_naming_file_and_line() {
    // The second line has one keypoint too few for kpt_shape [2, 3].
    let repo = pose_repo(
        "[2, 3]",
        "0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n0 0.2 0.2 0.1 0.1 0.18 0.2 2\n",
    );
    let r = repo.expect_code(1, ["labels", "--count", "labels/a.txt"]);
    assert!(
        r.stderr.contains("labels/a.txt")
            && r.stderr.contains("line 2")
            && r.stderr
                .contains("kpt_shape [2, 3] says a pose line has 10"),
        "{r}"
    );
    let r = repo.ok(["add", "-A"]);
    assert!(
        r.stderr
            .contains("labels/a.txt:2: 7 numbers after the class"),
        "{r}"
    );
    repo.ok(["commit", "-m", "pose"]);
    let stats: serde_json::Value =
        serde_json::from_str(&repo.ok(["stats", "--json"]).stdout).expect("JSON");
    assert_eq!(stats["stats"]["objects"], 0, "{stats:#}");
    assert_eq!(stats["stats"]["label_errors"], 1, "{stats:#}");
    // A bad kpt_shape is an error of the names file, for every file it covers.
    repo.write("data.yaml", "names: [person]\nkpt_shape: [2, 4]\n");
    let r = repo.expect_code(1, ["labels", "--count", "labels/a.txt"]);
    assert!(
        r.stderr.contains("data.yaml") && r.stderr.contains("kpt_shape is not"),
        "{r}"
    );
}

#[test]
fn yolo_pose_merge_keeps_keypoints_without_visibilities() {
    // kpt_shape [2, 2]: x y per keypoint, no visibility.
    let base = "0 0.5 0.5 0.2 0.4 0.45 0.4 0.55 0.4\n0 0.2 0.2 0.1 0.1 0.18 0.2 0.22 0.2\n";
    let repo = pose_repo("[2, 2]", base);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["branch", "b"]);
    repo.write("labels/a.txt", base.replacen("0.45 0.4", "0.46 0.41", 1));
    repo.ok(["commit", "-a", "-m", "first keypoint moved"]);
    repo.ok(["checkout", "b"]);
    repo.write(
        "labels/a.txt",
        base.replacen("0.22 0.2\n", "0.23 0.21\n", 1),
    );
    repo.ok(["commit", "-a", "-m", "last keypoint moved"]);
    repo.ok(["merge", "main"]);
    let merged = repo.read_string("labels/a.txt");
    assert_eq!(
        merged,
        "0 0.5 0.5 0.2 0.4 0.46 0.41 0.55 0.4\n0 0.2 0.2 0.1 0.1 0.18 0.2 0.23 0.21\n"
    );
    // What was written reads back as what was merged: no change left.
    let doc = diff_json(&repo, &[]);
    assert_eq!(changes(&doc), vec![], "{doc:#}");
}

#[test]
fn yolo_pose_exports_to_coco_keypoints_in_pixels() {
    let repo = TestRepo::init();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(200u32.to_be_bytes());
    png.extend(100u32.to_be_bytes());
    png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    repo.write("images/a.png", png);
    repo.write("data.yaml", "names: [person]\nkpt_shape: [2, 3]\n");
    repo.write("labels/a.txt", "0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "pose"]);
    repo.ok(["export", "HEAD", "--format", "coco", "--out", "c"]);
    let file = std::fs::read_dir(repo.path("c/annotations"))
        .expect("annotations")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    let out: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    let a = &out["annotations"][0];
    assert_eq!(numbers(&a["bbox"]), [80.0, 30.0, 40.0, 40.0], "{out:#}");
    assert_eq!(
        numbers(&a["keypoints"]),
        [90.0, 40.0, 2.0, 110.0, 40.0, 1.0],
        "{out:#}"
    );
}

/// A YOLO pose file with no `data.yaml` saying `kpt_shape`: a line shaped as a
/// box then keypoints `x y v` (every third number a visibility, some 2) is an
/// error naming the file and line, not a polygon read silently.
#[test]
fn yolo_pose_file_without_kpt_shape_is_refused_not_read_as_a_polygon() {
    let repo = TestRepo::init();
    repo.write("images/a.jpg", "x");
    repo.write("images/b.jpg", "y");
    repo.write("data.yaml", "names: [person]\n");
    // Box, then three (x, y, visibility) keypoints: 13 numbers after the
    // class, which read as a polygon of six points and a score.
    repo.write(
        "labels/a.txt",
        "0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.4 1 0.5 0.6 0\n",
    );
    // A polygon of five points whose every third number happens to be 0 or 1
    // (on the image border) is still a polygon: no visibility 2.
    repo.write("labels/b.txt", "0 0.1 0.2 0.3 1 0 0.5 0.6 0 0.2 1\n");
    let r = repo.ok(["add", "-A"]);
    assert!(
        r.stderr.contains("labels/a.txt") && r.stderr.contains("looks like a YOLO pose line"),
        "{r}"
    );
    let r = repo.expect_code(1, ["labels", "--count", "labels/a.txt"]);
    assert!(
        r.stderr.contains("labels/a.txt")
            && r.stderr.contains("line 1")
            && r.stderr.contains("3 keypoints"),
        "{r}"
    );
    let r = repo.ok(["labels", "--json", "labels/b.txt"]);
    assert!(r.stdout.contains("\"polygon\""), "{r}");
}
