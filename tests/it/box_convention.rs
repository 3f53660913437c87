//! One box convention in every output (issue 17.14): the name `box`, a map
//! `{x, y, w, h}` with (x, y) the top-left corner in the frame's units, and
//! text outputs that say so.

use crate::common;

use common::TestRepo;

const CONVENTION_NORMALIZED: &str =
    "box = [x, y, w, h] (top-left corner; normalized to the image size)";

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).expect("output is JSON")
}

/// A repository with one YOLO frame whose file holds the centre (0.5, 0.5),
/// size 0.2 x 0.4: top-left corner (0.4, 0.3). Committed.
fn yolo_repo() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("labels/f0.txt", "0 0.5 0.5 0.2 0.4\n");
    repo.write("images/f0.jpg", "not really a jpeg");
    repo.write("labels/classes.txt", "car\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

fn assert_top_left_box(b: &serde_json::Value) {
    let get = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
    let got = [get("x"), get("y"), get("w"), get("h")];
    let want = [0.4, 0.3, 0.2, 0.4];
    assert!(
        got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9),
        "box {b} is not the top-left corner box {want:?}"
    );
}

#[test]
fn yolo_centre_box_is_printed_top_left_under_a_convention_header() {
    let repo = yolo_repo();
    let out = repo.ok(["labels", "labels/f0.txt"]).stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], CONVENTION_NORMALIZED, "{out}");
    assert!(
        out.contains("car              [0.4000, 0.3000, 0.2000, 0.4000]"),
        "{out}"
    );
    // Counts only: no boxes, no header.
    let count = repo.ok(["labels", "--count", "labels/f0.txt"]).stdout;
    assert!(!count.contains("box ="), "{count}");
}

#[test]
fn labels_json_names_the_box_box_with_its_units() {
    let repo = yolo_repo();
    let out = repo.ok(["labels", "--json", "labels/f0.txt"]).stdout;
    assert!(!out.contains("bbox"), "{out}");
    let v = json(&out);
    let frame = &v[0]["frames"][0];
    assert_eq!(frame["units"], "normalized", "{frame}");
    assert_top_left_box(&frame["objects"][0]["box"]);
}

#[test]
fn query_json_objects_and_predictions_share_one_box_shape() {
    let repo = yolo_repo();
    // One prediction in the list form older builds wrote, one in the map form.
    repo.write(
        "preds.jsonl",
        concat!(
            r#"{"frame": "images/f0.jpg", "class": "car", "box": [0.4, 0.3, 0.2, 0.4], "score": 0.9}"#,
            "\n",
            r#"{"frame": "images/f0.jpg", "class": "bus", "box": {"x": 0.4, "y": 0.3, "w": 0.2, "h": 0.4}}"#,
            "\n"
        ),
    );
    repo.ok(["meta", "import", "preds.jsonl"]);
    repo.remove("preds.jsonl");
    // The sidecar is written with the one shape.
    let sidecar = repo.read_string("meta.jsonl");
    assert!(
        sidecar.contains(r#""box":{"#) && !sidecar.contains(r#""box":["#),
        "{sidecar}"
    );
    repo.ok(["add", "meta.jsonl"]);
    repo.ok(["commit", "-m", "predictions"]);

    let out = repo.ok(["query", "true", "--json"]).stdout;
    assert!(!out.contains("bbox"), "{out}");
    let v = json(&out);
    let f = &v["frames"][0];
    assert_eq!(f["units"], "normalized", "{f}");
    assert_top_left_box(&f["objects"][0]["box"]);
    for p in f["predictions"].as_array().expect("predictions") {
        assert_top_left_box(&p["box"]);
    }
    // CEL reads the same fields, on objects and on both predictions.
    let hits = repo
        .ok([
            "query",
            "objects.exists(o, o.box.x > 0.39 && o.box.x < 0.41) && \
             predictions.all(p, p.box.y > 0.29 && p.box.y < 0.31)",
            "--count",
        ])
        .stdout;
    assert_eq!(hits.trim(), "1");
}

#[test]
fn cel_bbox_is_an_error_that_suggests_box() {
    let repo = yolo_repo();
    for expr in [
        "objects.exists(o, o.bbox.x > 0.1)",
        "predictions.exists(p, p.bbox.x > 0.1)",
    ] {
        let r = repo.fails(["query", expr]);
        assert!(r.stderr.contains("did you mean `box`?"), "{expr}: {r}");
    }
}

#[test]
fn diff_text_markdown_and_html_say_the_box_convention() {
    let repo = yolo_repo();
    repo.write("labels/f0.txt", "0 0.52 0.5 0.2 0.4\n0 0.1 0.1 0.1 0.1\n");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "edit"]);
    let text = repo.ok(["diff", "HEAD~1", "HEAD"]).stdout;
    assert!(text.lines().any(|l| l == CONVENTION_NORMALIZED), "{text}");
    let md = repo
        .ok(["diff", "HEAD~1", "HEAD", "--format", "markdown"])
        .stdout;
    assert!(
        md.contains(r"box = \[x, y, w, h\] (top-left corner; normalized to the image size)"),
        "{md}"
    );
    repo.ok([
        "diff",
        "HEAD~1",
        "HEAD",
        "--format",
        "html",
        "-o",
        "../review.html",
    ]);
    let html = std::fs::read_to_string(repo.home().join("review.html")).expect("review written");
    assert!(
        html.contains("(x, y) is the top-left corner, w×h the size; normalized to the image size"),
        "no convention note in the HTML review"
    );
    let d = json(&repo.ok(["diff", "HEAD~1", "HEAD", "--json"]).stdout);
    let frame = &d["labels"][0]["frames"][0];
    assert_eq!(frame["units"], "normalized", "{frame}");
    // A diff with no box to show prints no convention line.
    repo.write("notes.txt", "hello");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "notes"]);
    let text = repo.ok(["diff", "HEAD~1", "HEAD"]).stdout;
    assert!(!text.contains("box ="), "{text}");
}

#[test]
fn pixel_boxes_say_pixels() {
    let repo = TestRepo::init();
    repo.write(
        "ann/a.xml",
        "<annotation><filename>a.jpg</filename><size><width>100</width><height>80</height><depth>3</depth></size>\
         <object><name>bus</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax><ymax>60</ymax></bndbox></object></annotation>",
    );
    let out = repo.ok(["labels", "ann/a.xml"]).stdout;
    assert_eq!(
        out.lines().next(),
        Some("box = [x, y, w, h] (top-left corner; pixels)"),
        "{out}"
    );
}

/// The header of a PNG of `w` x `h` pixels: all an image size is read from.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    out.extend(w.to_be_bytes());
    out.extend(h.to_be_bytes());
    out.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    out
}

fn assert_box(b: &serde_json::Value, want: [f64; 4]) {
    let get = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
    let got = [get("x"), get("y"), get("w"), get("h")];
    assert!(
        got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
        "box {b} is not {want:?}"
    );
}

/// A YOLO frame (0.5, 0.5) 0.2 x 0.4 on a 200 x 100 image: in pixels the
/// box is (80, 30) 40 x 40.
fn yolo_png_repo() -> TestRepo {
    let repo = TestRepo::init();
    repo.write("labels/f0.txt", "0 0.5 0.5 0.2 0.4\n");
    repo.write("images/f0.png", png_header(200, 100));
    repo.write("labels/classes.txt", "car\n");
    repo.write(
        "meta.jsonl",
        r#"{"path":"images/f0.png","predictions":[{"class":"car","box":{"x":0.1,"y":0.1,"w":0.5,"h":0.5},"score":0.9}]}"#,
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo
}

#[test]
fn units_pixels_gives_yolo_boxes_in_pixels_of_the_image_header() {
    let repo = yolo_png_repo();
    let r = repo.ok(["labels", "--units", "pixels", "labels/f0.txt"]);
    assert!(
        r.stdout.contains("(top-left corner; pixels)")
            && r.stdout.contains("[80.0, 30.0, 40.0, 40.0]"),
        "{r}"
    );
    let doc = json(
        &repo
            .ok(["labels", "--json", "--units", "pixels", "labels/f0.txt"])
            .stdout,
    );
    let f = &doc[0]["frames"][0];
    assert_eq!(
        (&f["units"], &f["width"], &f["height"]),
        (&"pixels".into(), &200.into(), &100.into()),
        "{doc:#}"
    );
    assert_box(&f["objects"][0]["box"], [80.0, 30.0, 40.0, 40.0]);
    // The file's own units stay the default.
    let doc = json(&repo.ok(["labels", "--json", "labels/f0.txt"]).stdout);
    assert_top_left_box(&doc[0]["frames"][0]["objects"][0]["box"]);

    let doc = json(
        &repo
            .ok(["query", "true", "--json", "--units", "pixels"])
            .stdout,
    );
    let f = &doc["frames"][0];
    assert_eq!(f["units"], "pixels", "{doc:#}");
    assert_box(&f["objects"][0]["box"], [80.0, 30.0, 40.0, 40.0]);
    assert_box(&f["predictions"][0]["box"], [20.0, 10.0, 100.0, 50.0]);

    repo.write("labels/f0.txt", "0 0.55 0.5 0.2 0.4\n");
    let doc = json(&repo.ok(["diff", "--json", "--units", "pixels"]).stdout);
    let f = &doc["labels"][0]["frames"][0];
    assert_eq!(f["units"], "pixels", "{doc:#}");
    let c = &f["changes"][0];
    assert_eq!(c["kind"], "moved", "{doc:#}");
    assert_box(&c["before"], [80.0, 30.0, 40.0, 40.0]);
    assert_box(&c["after"], [90.0, 30.0, 40.0, 40.0]);
}

#[test]
fn units_pixels_with_a_missing_or_unreadable_image_is_an_error_naming_it() {
    let repo = yolo_png_repo();
    repo.write("labels/f1.txt", "0 0.5 0.5 0.2 0.4\n");
    let r = repo.fails(["labels", "--units", "pixels", "labels/f1.txt"]);
    assert!(
        r.stderr
            .contains("labels/f1.txt: frame f1: no image file found for it"),
        "{r}"
    );
    repo.write("images/f1.png", "not an image");
    let r = repo.fails(["labels", "--units", "pixels", "labels/f1.txt"]);
    assert!(
        r.stderr
            .contains("images/f1.png: the image size cannot be read from its header"),
        "{r}"
    );
    repo.ok(["add", "-A"]);
    let r = repo.fails(["diff", "--staged", "--json", "--units", "pixels"]);
    assert!(r.stderr.contains("images/f1.png"), "{r}");
    assert!(r.stdout.is_empty(), "{r}");
    repo.ok(["commit", "-m", "f1"]);
    let r = repo.fails(["query", "true", "--json", "--units", "pixels"]);
    assert!(r.stderr.contains("images/f1.png"), "{r}");
    // Without --units pixels nothing needs the image.
    repo.ok(["query", "true", "--json"]);
}
