//! End-to-end tests of recording a selection (`dsv query EXPR --branch NAME`)
//! in every label format: the branch holds the selected frames with their
//! labels in the source's own format and layout, and nothing of the others.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::TestRepo;

const CATS: &str = r#"objects.exists(o, o.class == "cat")"#;

/// A repository with `files` committed.
fn repo_with(files: &[(&str, &str)]) -> TestRepo {
    let repo = TestRepo::init();
    for (path, text) in files {
        repo.write(path, text);
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

/// The frames `expr` selects at `rev`, by path, with their labels and attributes.
fn frames(repo: &TestRepo, expr: &str, rev: &str) -> BTreeMap<String, serde_json::Value> {
    let out = repo.ok(["query", expr, rev, "--json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            let path = f["path"].as_str().expect("path").to_string();
            let labels = serde_json::json!({
                "objects": f["objects"],
                "attributes": f["attributes"],
                "width": f["width"],
                "height": f["height"],
            });
            (path, labels)
        })
        .collect()
}

/// Selects the frames with a cat as branch `cats` and checks what every
/// format must give: the branch holds `expected` (every path) and nothing
/// else, and its frames are the selected ones with the same labels. Gives
/// the label files (kept whole, rewritten).
fn select_cats(repo: &TestRepo, expected: &[&str]) -> (u64, u64) {
    let before = frames(repo, CATS, "HEAD");
    assert!(!before.is_empty());
    let out = repo.ok(["query", CATS, "--branch", "cats", "--json"]);
    let sel: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(sel["branch"], "cats");
    assert_eq!(sel["frames"].as_u64(), Some(before.len() as u64));
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(repo.tree_paths("cats"), want);
    assert_eq!(frames(repo, "true", "cats"), before);
    let n = |k: &str| sel[k].as_u64().expect("a count");
    (n("labels_kept"), n("labels_rewritten"))
}

#[test]
fn selecting_yolo_frames_keeps_their_label_files_whole_and_the_class_names() {
    let repo = repo_with(&[
        ("ds/data.yaml", "names: [cat, dog]\n"),
        ("ds/images/a.jpg", "image a"),
        ("ds/images/b.jpg", "image b"),
        ("ds/images/c.jpg", "image c"),
        ("ds/labels/a.txt", "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n"),
        ("ds/labels/b.txt", "1 0.5 0.5 0.2 0.2\n"),
        ("ds/labels/c.txt", "0 0.3 0.3 0.2 0.2 0.9\n"),
    ]);
    let files = select_cats(
        &repo,
        &[
            "ds/data.yaml",
            "ds/images/a.jpg",
            "ds/images/c.jpg",
            "ds/labels/a.txt",
            "ds/labels/c.txt",
        ],
    );
    assert_eq!(files, (2, 0));
    repo.ok(["switch", "cats"]);
    assert_eq!(
        repo.read_string("ds/labels/a.txt"),
        "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n"
    );
    assert_eq!(
        repo.read_string("ds/labels/c.txt"),
        "0 0.3 0.3 0.2 0.2 0.9\n"
    );
}

fn voc(name: &str, classes: &[&str]) -> String {
    let mut x = format!(
        "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{name}</filename>\n  <size><width>100</width><height>80</height><depth>3</depth></size>\n"
    );
    for (i, c) in classes.iter().enumerate() {
        let at = 10 * (i + 1);
        x.push_str(&format!(
            "  <object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{at}</xmin><ymin>{at}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>\n",
            at + 5,
            at + 7
        ));
    }
    x.push_str("</annotation>\n");
    x
}

#[test]
fn selecting_voc_frames_keeps_their_annotation_files_whole() {
    let a = voc("a.jpg", &["cat", "dog"]);
    let b = voc("b.jpg", &["dog"]);
    let c = voc("c.jpg", &["cat"]);
    let repo = repo_with(&[
        ("voc/JPEGImages/a.jpg", "image a"),
        ("voc/JPEGImages/b.jpg", "image b"),
        ("voc/JPEGImages/c.jpg", "image c"),
        ("voc/Annotations/a.xml", &a),
        ("voc/Annotations/b.xml", &b),
        ("voc/Annotations/c.xml", &c),
        ("voc/ImageSets/Main/train.txt", "a\nb\nc\n"),
    ]);
    let files = select_cats(
        &repo,
        &[
            "voc/Annotations/a.xml",
            "voc/Annotations/c.xml",
            "voc/ImageSets/Main/train.txt",
            "voc/JPEGImages/a.jpg",
            "voc/JPEGImages/c.jpg",
        ],
    );
    assert_eq!(files, (2, 0));
    repo.ok(["switch", "cats"]);
    assert_eq!(repo.read_string("voc/Annotations/a.xml"), a);
    assert_eq!(repo.read_string("voc/Annotations/c.xml"), c);
}

#[test]
fn selecting_kitti_frames_keeps_their_label_files_whole() {
    let line = |class: &str| {
        format!(
            "{class} 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
        )
    };
    let a = line("cat") + &line("dog");
    let repo = repo_with(&[
        ("k/training/image_2/000001.png", "image 1"),
        ("k/training/image_2/000002.png", "image 2"),
        ("k/training/label_2/000001.txt", &a),
        ("k/training/label_2/000002.txt", &line("dog")),
    ]);
    let files = select_cats(
        &repo,
        &[
            "k/training/image_2/000001.png",
            "k/training/label_2/000001.txt",
        ],
    );
    assert_eq!(files, (1, 0));
    repo.ok(["switch", "cats"]);
    assert_eq!(repo.read_string("k/training/label_2/000001.txt"), a);
}

/// A CVAT for images file with one image per entry of `images` (name, classes).
fn cvat(images: &[(&str, &[&str])]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n  <version>1.1</version>\n",
    );
    for (i, (name, classes)) in images.iter().enumerate() {
        x.push_str(&format!(
            "  <image id=\"{i}\" name=\"{name}\" width=\"100\" height=\"80\">\n"
        ));
        for (k, c) in classes.iter().enumerate() {
            let at = 10 * (k + 1);
            x.push_str(&format!(
                "    <box label=\"{c}\" occluded=\"0\" xtl=\"{at}\" ytl=\"{at}\" xbr=\"{}\" ybr=\"{}\"><attribute name=\"color\">black</attribute></box>\n",
                at + 5,
                at + 7
            ));
        }
        x.push_str("  </image>\n");
    }
    x.push_str("</annotations>\n");
    x
}

#[test]
fn selecting_cvat_frames_rewrites_the_file_to_the_selected_images() {
    let repo = repo_with(&[
        ("cv/images/a.jpg", "image a"),
        ("cv/images/b.jpg", "image b"),
        ("cv/images/c.jpg", "image c"),
        (
            "cv/annotations.xml",
            &cvat(&[
                ("a.jpg", &["cat", "dog"]),
                ("b.jpg", &["dog"]),
                ("c.jpg", &["cat"]),
            ]),
        ),
    ]);
    let files = select_cats(
        &repo,
        &["cv/annotations.xml", "cv/images/a.jpg", "cv/images/c.jpg"],
    );
    assert_eq!(files, (0, 1));
    // Not kept whole: the unselected image is not in the file.
    repo.ok(["switch", "cats"]);
    let text = repo.read_string("cv/annotations.xml");
    assert!(text.contains("name=\"a.jpg\""), "{text}");
    assert!(text.contains("name=\"c.jpg\""), "{text}");
    assert!(!text.contains("b.jpg"), "{text}");
    assert_eq!(text.matches("<box ").count(), 3, "{text}");
}

#[test]
fn selecting_coco_frames_rewrites_the_file_in_its_own_layout() {
    let coco = r#"{"info":{"description":"kept"},"licenses":[{"id":7,"name":"l"}],
"images":[{"id":10,"file_name":"a.jpg","width":100,"height":80},{"id":20,"file_name":"b.jpg","width":100,"height":80}],
"annotations":[{"id":1,"image_id":10,"category_id":3,"bbox":[1,2,3,4],"area":12,"iscrowd":0},{"id":2,"image_id":20,"category_id":4,"bbox":[1,2,3,4],"area":12,"iscrowd":0}],
"categories":[{"id":3,"name":"cat"},{"id":4,"name":"dog"}]}"#;
    let repo = repo_with(&[
        ("co/images/a.jpg", "image a"),
        ("co/images/b.jpg", "image b"),
        ("co/annotations.json", coco),
    ]);
    let files = select_cats(&repo, &["co/annotations.json", "co/images/a.jpg"]);
    assert_eq!(files, (0, 1));
    repo.ok(["switch", "cats"]);
    let v: serde_json::Value =
        serde_json::from_slice(&repo.read("co/annotations.json")).expect("JSON");
    assert_eq!(v["info"]["description"], "kept");
    assert_eq!(v["images"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["images"][0]["id"], 10);
    // Every category stays, with its id.
    assert_eq!(v["categories"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["annotations"][0]["category_id"], 3);
}
