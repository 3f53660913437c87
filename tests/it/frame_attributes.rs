//! Frame attribute changes (the metadata sidecar, and frame-level attributes of
//! label files) shown per frame and per attribute value in every output that
//! reports a change: `diff` text and `--json`, the markdown and HTML reviews,
//! the hook payload and `stats A B`.

use crate::common;

use std::path::Path;

use common::{TestRepo, copy_contents};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn json(repo: &TestRepo, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&repo.ok(args).stdout).expect("output is JSON")
}

/// The demo dataset committed, then `weather` of frame 0 set to rain and
/// committed, then set to snow and committed.
fn rain_then_snow(repo: &TestRepo) {
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["meta", "set", "images/frame_000.jpg", "weather=rain"]);
    repo.ok(["commit", "-a", "-m", "rain"]);
    repo.ok(["meta", "set", "images/frame_000.jpg", "weather=snow"]);
    repo.ok(["commit", "-a", "-m", "snow"]);
}

fn rain_to_snow_totals() -> serde_json::Value {
    serde_json::json!({
        "frames": 1,
        "added": 0,
        "removed": 0,
        "changed": 1,
        "values": [
            {"attribute": "weather", "value": "rain", "before": 1, "after": 0, "delta": -1},
            {"attribute": "weather", "value": "snow", "before": 0, "after": 1, "delta": 1},
        ]
    })
}

#[test]
fn sidecar_attribute_change_shows_per_frame_in_diff() {
    let repo = TestRepo::init();
    rain_then_snow(&repo);
    let text = repo.ok(["diff", "HEAD~1", "HEAD"]).stdout;
    insta::assert_snapshot!("sidecar_attribute_change_diff_text", text);
    let doc = json(&repo, &["diff", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([{
            "frame": "images/frame_000.jpg",
            "file": "meta.jsonl",
            "changes": [
                {"attribute": "weather", "kind": "changed", "before": "rain", "after": "snow"}
            ]
        }])
    );
    assert_eq!(doc["frame_attribute_totals"], rain_to_snow_totals());
}

#[test]
fn sidecar_attribute_added_and_removed_show_per_frame_in_diff() {
    let repo = TestRepo::init();
    rain_then_snow(&repo);
    repo.ok(["meta", "unset", "images/frame_000.jpg", "--keys", "weather"]);
    repo.ok([
        "meta",
        "set",
        "images/frame_001.jpg",
        "time=night",
        "score=0.5",
    ]);
    let doc = json(&repo, &["diff", "--json"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([
            {
                "frame": "images/frame_000.jpg",
                "file": "meta.jsonl",
                "changes": [
                    {"attribute": "weather", "kind": "removed", "before": "snow", "after": null}
                ]
            },
            {
                "frame": "images/frame_001.jpg",
                "file": "meta.jsonl",
                "changes": [
                    {"attribute": "score", "kind": "added", "before": null, "after": 0.5},
                    {"attribute": "time", "kind": "added", "before": null, "after": "night"}
                ]
            }
        ])
    );
    // Real numbers are counted under "number", as `dsv stats` counts them.
    assert_eq!(
        doc["frame_attribute_totals"],
        serde_json::json!({
            "frames": 2,
            "added": 2,
            "removed": 1,
            "changed": 0,
            "values": [
                {"attribute": "score", "value": "number", "before": 0, "after": 1, "delta": 1},
                {"attribute": "time", "value": "night", "before": 0, "after": 1, "delta": 1},
                {"attribute": "weather", "value": "snow", "before": 1, "after": 0, "delta": -1},
            ]
        })
    );
    let text = repo.ok(["diff"]).stdout;
    assert!(
        text.contains(
            "frame attributes: 2 frames with attribute changes: 2 added, 1 removed, 0 changed"
        ),
        "{text}"
    );
}

#[test]
fn sidecar_attribute_change_shows_per_frame_in_markdown_review() {
    let repo = TestRepo::init();
    rain_then_snow(&repo);
    let md = repo
        .ok(["diff", "HEAD~1", "HEAD", "--format", "markdown"])
        .stdout;
    let md = md.replace(&short(&repo, "HEAD~1"), "[A]");
    let md = md.replace(&short(&repo, "HEAD"), "[B]");
    insta::assert_snapshot!("sidecar_attribute_change_markdown", md);
}

#[test]
fn sidecar_attribute_change_shows_per_frame_in_html_review() {
    let repo = TestRepo::init();
    rain_then_snow(&repo);
    let html = repo
        .ok(["diff", "HEAD~1", "HEAD", "--format", "html"])
        .stdout;
    assert!(
        html.contains("<b>1</b> frames with attribute changes"),
        "{html}"
    );
    assert!(
        html.contains(
            "<tr><td class=\"l\">images/frame_000.jpg</td><td class=\"l\">meta.jsonl</td>\
             <td class=\"l\">weather</td><td class=\"l\">changed</td><td class=\"l\">rain</td>\
             <td class=\"l\">snow</td></tr>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<tr><td class=\"l\">weather</td><td class=\"l\">rain</td><td>1</td><td>0</td><td class=\"neg\">−1</td></tr>"),
        "{html}"
    );
}

/// The 12-digit id of HEAD (`HEAD`) or of its parent (`HEAD~1`).
fn short(repo: &TestRepo, rev: &str) -> String {
    let log = json(repo, &["log", "--json", "-n", "2"]);
    let i = usize::from(rev == "HEAD~1");
    log[i]["id"].as_str().expect("commit id")[..12].to_string()
}

#[test]
fn sidecar_attribute_change_shows_per_frame_in_hook_payload() {
    let repo = TestRepo::init();
    let dir = repo.home().join("events");
    std::fs::create_dir_all(&dir).unwrap();
    repo.write(
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"rec\"\nevent = \"post-commit\"\nrun = 'cat > \"{}/$(echo $DSV_COMMIT | cut -c1-12)\"'\n",
            dir.display()
        ),
    );
    let fg = |args: &[&str]| {
        let r = repo
            .cmd()
            .args(args)
            .env("DSV_HOOKS_FOREGROUND", "1")
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    copy_contents(&fixture("demo"), repo.root());
    fg(&["add", "-A"]);
    fg(&["commit", "-m", "base"]);
    fg(&["meta", "set", "images/frame_000.jpg", "weather=rain"]);
    fg(&["commit", "-a", "-m", "rain"]);
    fg(&["meta", "set", "images/frame_000.jpg", "weather=snow"]);
    fg(&["commit", "-a", "-m", "snow"]);
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(short(&repo, "HEAD"))).unwrap()).unwrap();
    assert_eq!(
        payload["summary"]["frame_attributes"],
        rain_to_snow_totals(),
        "{payload}"
    );
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(short(&repo, "HEAD~1"))).unwrap()).unwrap();
    assert_eq!(
        payload["summary"]["frame_attributes"]["values"],
        serde_json::json!([
            {"attribute": "weather", "value": "rain", "before": 0, "after": 1, "delta": 1}
        ]),
        "{payload}"
    );
}

#[test]
fn sidecar_attribute_change_shows_in_stats_delta() {
    let repo = TestRepo::init();
    rain_then_snow(&repo);
    let text = repo.ok(["stats", "HEAD~1", "HEAD"]).stdout;
    let text = text.replace(&short(&repo, "HEAD~1"), "[A]");
    let text = text.replace(&short(&repo, "HEAD"), "[B]");
    insta::assert_snapshot!("sidecar_attribute_change_stats_delta", text);
    let doc = json(&repo, &["stats", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        doc["delta"]["frame_attributes"],
        serde_json::json!({"weather": {"rain": [1, 0, -1], "snow": [0, 1, 1]}})
    );
    // The same per-value deltas as the diff's totals.
    let diff = json(&repo, &["diff", "--json", "HEAD~1", "HEAD"]);
    for v in diff["frame_attribute_totals"]["values"].as_array().unwrap() {
        let (a, val) = (
            v["attribute"].as_str().unwrap(),
            v["value"].as_str().unwrap(),
        );
        assert_eq!(doc["delta"]["frame_attributes"][a][val][2], v["delta"]);
    }
}

/// A COCO file's image-level fields are frame attributes: changing one shows
/// per frame, with the label file as where it changed.
#[test]
fn label_file_frame_attribute_change_shows_per_frame_in_diff() {
    let repo = TestRepo::init();
    let coco = |weather: &str| {
        format!(
            r#"{{"images":[{{"id":1,"file_name":"a.jpg","width":10,"height":10,"weather":"{weather}"}}],
"annotations":[{{"id":1,"image_id":1,"category_id":1,"bbox":[1,1,2,2],"area":4,"iscrowd":0}}],
"categories":[{{"id":1,"name":"car"}}]}}"#
        )
    };
    repo.write(
        "images/a.jpg",
        std::fs::read(fixture("demo/images/frame_000.jpg")).unwrap(),
    );
    repo.write("annotations.json", coco("rain"));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "rain"]);
    repo.write("annotations.json", coco("snow"));
    let doc = json(&repo, &["diff", "--json"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([{
            "frame": "images/a.jpg",
            "file": "annotations.json",
            "changes": [
                {"attribute": "weather", "kind": "changed", "before": "rain", "after": "snow"}
            ]
        }])
    );
    assert_eq!(doc["frame_attribute_totals"], rain_to_snow_totals());
}

/// A frame removed while its sidecar row stays: the frame's attributes are
/// gone (as `dsv stats` counts them), though the sidecar did not change.
#[test]
fn removed_frame_with_sidecar_row_shows_its_attributes_removed() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["meta", "set", "images/frame_002.jpg", "weather=rain"]);
    repo.ok(["commit", "-a", "-m", "base"]);
    repo.ok(["rm", "images/frame_002.jpg", "labels/frame_002.txt"]);
    repo.ok(["commit", "-m", "drop frame 2"]);
    let doc = json(&repo, &["diff", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([{
            "frame": "images/frame_002.jpg",
            "file": "meta.jsonl",
            "changes": [
                {"attribute": "weather", "kind": "removed", "before": "rain", "after": null}
            ]
        }])
    );
    let stats = json(&repo, &["stats", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        stats["delta"]["frame_attributes"],
        serde_json::json!({"weather": {"rain": [1, 0, -1]}})
    );
    assert_eq!(doc["frame_attribute_totals"]["values"][0]["delta"], -1);
}

/// A sidecar row naming no frame of the version is no frame's attribute: the
/// query index and `dsv stats` leave it out, and so does the diff.
#[test]
fn sidecar_row_of_a_missing_frame_is_no_attribute_change() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write(
        "meta.jsonl",
        "{\"path\":\"images/frame_000.jpg\",\"weather\":\"rain\"}\n{\"path\":\"images/nothing.jpg\",\"weather\":\"fog\"}\n",
    );
    repo.ok(["add", "meta.jsonl"]);
    let doc = json(&repo, &["diff", "--json", "--staged"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([{
            "frame": "images/frame_000.jpg",
            "file": "meta.jsonl",
            "changes": [
                {"attribute": "weather", "kind": "added", "before": null, "after": "rain"}
            ]
        }])
    );
}

/// A frame added where the unchanged sidecar already had a row for it: the
/// frame arrives with that row's attributes.
#[test]
fn added_frame_with_existing_sidecar_row_shows_its_attributes_added() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    repo.write(
        "meta.jsonl",
        "{\"path\":\"images/frame_000.jpg\",\"weather\":\"rain\"}\n{\"path\":\"images/new.jpg\",\"weather\":\"fog\"}\n",
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write("images/new.jpg", repo.read("images/frame_000.jpg"));
    repo.ok(["add", "images/new.jpg"]);
    let doc = json(&repo, &["diff", "--json", "--staged"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([{
            "frame": "images/new.jpg",
            "file": "meta.jsonl",
            "changes": [
                {"attribute": "weather", "kind": "added", "before": null, "after": "fog"}
            ]
        }])
    );
}

/// Each value's delta in a diff's attribute totals, as `stats A B --json`
/// writes its frame attribute deltas.
fn totals_as_stats(doc: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for v in doc["frame_attribute_totals"]["values"].as_array().unwrap() {
        let attr = v["attribute"].as_str().unwrap();
        let e = out
            .entry(attr.to_string())
            .or_insert_with(|| serde_json::json!({}));
        e[v["value"].as_str().unwrap()] = serde_json::json!([v["before"], v["after"], v["delta"]]);
    }
    serde_json::Value::Object(out)
}

/// A frame file removed while the COCO file describing it (with its image
/// fields) stays the same: the frame's attributes go with it in `diff`, as
/// `dsv stats` counts them, and come back when the frame file does.
#[test]
fn frame_removed_while_its_label_file_is_unchanged_agrees_with_stats() {
    let repo = TestRepo::init();
    repo.write(
        "annotations.json",
        r#"{"images":[{"id":1,"file_name":"a.jpg","width":10,"height":10,"weather":"rain"},
{"id":2,"file_name":"b.jpg","width":10,"height":10,"weather":"snow"}],
"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,1,2,2],"area":4,"iscrowd":0}],
"categories":[{"id":1,"name":"car"}]}"#,
    );
    for (name, src) in [("a", "frame_000"), ("b", "frame_001")] {
        repo.write(
            format!("images/{name}.jpg"),
            std::fs::read(fixture(&format!("demo/images/{src}.jpg"))).unwrap(),
        );
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.ok(["rm", "images/b.jpg"]);
    let removed = serde_json::json!([{
        "frame": "images/b.jpg",
        "file": "annotations.json",
        "changes": [
            {"attribute": "weather", "kind": "removed", "before": "snow", "after": null}
        ]
    }]);
    let staged = json(&repo, &["diff", "--json", "--staged"]);
    assert_eq!(staged["frame_attributes"], removed);
    repo.ok(["commit", "-m", "drop b"]);
    let doc = json(&repo, &["diff", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(doc["frame_attributes"], removed);
    let stats = json(&repo, &["stats", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        stats["delta"]["frame_attributes"],
        serde_json::json!({"weather": {"rain": [1, 1, 0], "snow": [1, 0, -1]}})
    );
    assert_eq!(
        totals_as_stats(&doc),
        serde_json::json!({"weather": {"snow": [1, 0, -1]}})
    );

    repo.write(
        "images/b.jpg",
        std::fs::read(fixture("demo/images/frame_001.jpg")).unwrap(),
    );
    repo.ok(["add", "images/b.jpg"]);
    repo.ok(["commit", "-m", "b again"]);
    let doc = json(&repo, &["diff", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        doc["frame_attributes"][0]["changes"],
        serde_json::json!([
            {"attribute": "weather", "kind": "added", "before": null, "after": "snow"}
        ])
    );
    let stats = json(&repo, &["stats", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        stats["delta"]["frame_attributes"]["weather"]["snow"],
        serde_json::json!([0, 1, 1])
    );
    assert_eq!(
        totals_as_stats(&doc),
        serde_json::json!({"weather": {"snow": [0, 1, 1]}})
    );
}

/// A sidecar whose `predictions` change: each frame's predictions are paired
/// and compared as objects are (a new score is an `attributes` change), in
/// `diff --json` and text, instead of only `M meta.jsonl`.
#[test]
fn sidecar_prediction_changes_show_per_frame_in_diff() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    let row = |frame: &str, preds: &str| {
        format!("{{\"path\":\"images/{frame}.jpg\",\"predictions\":[{preds}]}}\n")
    };
    let car = |score: f64| {
        format!(
            "{{\"class\":\"car\",\"box\":{{\"x\":0.1,\"y\":0.1,\"w\":0.2,\"h\":0.2}},\"score\":{score}}}"
        )
    };
    repo.write("meta.jsonl", row("frame_000", &car(0.5)));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write(
        "meta.jsonl",
        row("frame_000", &car(0.9)) + &row("frame_001", &car(0.7)),
    );
    let doc = json(&repo, &["diff", "--json"]);
    assert_eq!(
        doc["prediction_totals"],
        serde_json::json!({"frames": 2, "added": 1, "removed": 0, "changed": 1})
    );
    let changes = doc["prediction_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{doc}");
    assert_eq!(changes[0]["frame"], "images/frame_000.jpg");
    assert_eq!(changes[0]["file"], "meta.jsonl");
    assert_eq!(changes[0]["changes"][0]["kind"], "attributes");
    assert_eq!(
        changes[0]["changes"][0]["attributes"]["score"],
        serde_json::json!({"before": 0.5, "after": 0.9})
    );
    assert_eq!(changes[1]["frame"], "images/frame_001.jpg");
    assert_eq!(changes[1]["changes"][0]["kind"], "added");
    assert_eq!(changes[1]["predictions_before"], 0);
    assert_eq!(changes[1]["predictions_after"], 1);
    assert_eq!(doc["frame_attributes"], serde_json::json!([]));
    let text = repo.ok(["diff"]).stdout;
    assert!(
        text.contains(
            "predictions: 2 frames with prediction changes: 1 added, 0 removed, 1 changed"
        ),
        "{text}"
    );
    assert!(text.contains("meta.jsonl  images/frame_001.jpg"), "{text}");
}

/// The demo dataset with a sidecar predicting a car on frame 0 (score 0.5),
/// committed; then the score 0.9, a car predicted on frame 1 and the
/// prediction of frame 2 removed, committed.
fn predictions_rescored(repo: &TestRepo) {
    copy_contents(&fixture("demo"), repo.root());
    let row = |frame: &str, preds: &str| {
        format!("{{\"path\":\"images/{frame}.jpg\",\"predictions\":[{preds}]}}\n")
    };
    let car = |score: f64| {
        format!(
            "{{\"class\":\"car\",\"box\":{{\"x\":0.1,\"y\":0.1,\"w\":0.2,\"h\":0.2}},\"score\":{score}}}"
        )
    };
    repo.write(
        "meta.jsonl",
        row("frame_000", &car(0.5)) + &row("frame_002", &car(0.4)),
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    repo.write(
        "meta.jsonl",
        row("frame_000", &car(0.9)) + &row("frame_001", &car(0.7)) + &row("frame_002", ""),
    );
    repo.ok(["commit", "-a", "-m", "rescored"]);
}

#[test]
fn sidecar_prediction_changes_show_per_frame_in_markdown_review() {
    let repo = TestRepo::init();
    predictions_rescored(&repo);
    let md = repo
        .ok(["diff", "HEAD~1", "HEAD", "--format", "markdown"])
        .stdout;
    let md = md.replace(&short(&repo, "HEAD~1"), "[A]");
    let md = md.replace(&short(&repo, "HEAD"), "[B]");
    insta::assert_snapshot!("sidecar_prediction_changes_markdown", md);
}

#[test]
fn sidecar_prediction_changes_show_per_frame_in_html_review() {
    let repo = TestRepo::init();
    predictions_rescored(&repo);
    let html = repo
        .ok(["diff", "HEAD~1", "HEAD", "--format", "html"])
        .stdout;
    assert!(
        html.contains("<b>3</b> frames with prediction changes"),
        "{html}"
    );
    let start = html
        .find("<h2>Predictions ")
        .expect("a predictions section");
    let end = start + html[start..].find("</details>").expect("its end") + "</details>".len();
    // One row per line, for a readable snapshot.
    let section = html[start..end].replace("<tr>", "\n<tr>");
    insta::assert_snapshot!("sidecar_prediction_changes_html", section);
}

/// A sidecar change alone: frame attributes are labels of the frames and make
/// the hook payload's `labels_changed` true; predictions are counted in
/// `summary.predictions` but do not (a retraining job importing predictions
/// would otherwise fire itself again).
#[test]
fn sidecar_change_alone_sets_labels_changed_for_attributes_not_predictions() {
    let repo = TestRepo::init();
    let dir = repo.home().join("events");
    std::fs::create_dir_all(&dir).unwrap();
    repo.write(
        "dsv.toml",
        format!(
            "[[hooks]]\nid = \"rec\"\nevent = \"post-commit\"\nrun = 'cat > \"{}/$(echo $DSV_COMMIT | cut -c1-12)\"'\n",
            dir.display()
        ),
    );
    let fg = |args: &[&str]| {
        let r = repo
            .cmd()
            .args(args)
            .env("DSV_HOOKS_FOREGROUND", "1")
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    copy_contents(&fixture("demo"), repo.root());
    fg(&["add", "-A"]);
    fg(&["commit", "-m", "base"]);
    fg(&["meta", "set", "images/frame_000.jpg", "weather=rain"]);
    fg(&["commit", "-a", "-m", "rain"]);
    let payload = |rev: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(short(&repo, rev))).unwrap()).unwrap()
    };
    let p = payload("HEAD");
    assert_eq!(p["summary"]["label_files_changed"], 0, "{p}");
    assert_eq!(p["summary"]["labels_changed"], true, "{p}");
    repo.write(
        "meta.jsonl",
        "{\"path\":\"images/frame_000.jpg\",\"weather\":\"rain\",\"predictions\":[{\"class\":\"car\",\"box\":{\"x\":0.1,\"y\":0.1,\"w\":0.2,\"h\":0.2},\"score\":0.5}]}\n",
    );
    fg(&["commit", "-a", "-m", "predictions"]);
    let p = payload("HEAD");
    assert_eq!(
        p["summary"]["predictions"],
        serde_json::json!({"frames": 1, "added": 1, "removed": 0, "changed": 0}),
        "{p}"
    );
    assert_eq!(p["summary"]["labels_changed"], false, "{p}");
}

/// A label file's frame attribute that the sidecar overrides on both sides is
/// not the frame's: changing it in the label file changes nothing that
/// `dsv stats` or a query sees, and the diff does not list it.
#[test]
fn label_attribute_shadowed_by_the_sidecar_is_not_listed_as_changed() {
    let repo = TestRepo::init();
    let coco = |weather: &str| {
        format!(
            r#"{{"images":[{{"id":1,"file_name":"a.jpg","width":10,"height":10,"weather":"{weather}","time":"day"}}],
"annotations":[{{"id":1,"image_id":1,"category_id":1,"bbox":[1,1,2,2],"area":4,"iscrowd":0}}],
"categories":[{{"id":1,"name":"car"}}]}}"#
        )
    };
    repo.write(
        "images/a.jpg",
        std::fs::read(fixture("demo/images/frame_000.jpg")).unwrap(),
    );
    repo.write("annotations.json", coco("rain"));
    repo.write(
        "meta.jsonl",
        "{\"path\":\"images/a.jpg\",\"weather\":\"fog\"}\n",
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "rain"]);
    repo.write(
        "annotations.json",
        coco("snow").replace("\"day\"", "\"night\""),
    );
    repo.ok(["commit", "-a", "-m", "snow"]);
    let doc = json(&repo, &["diff", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        doc["frame_attributes"],
        serde_json::json!([{
            "frame": "images/a.jpg",
            "file": "annotations.json",
            "changes": [
                {"attribute": "time", "kind": "changed", "before": "day", "after": "night"}
            ]
        }])
    );
    let stats = json(&repo, &["stats", "--json", "HEAD~1", "HEAD"]);
    assert_eq!(
        stats["delta"]["frame_attributes"]["weather"],
        serde_json::json!({"fog": [1, 1, 0]})
    );
    assert_eq!(
        totals_as_stats(&doc),
        serde_json::json!({"time": {"day": [1, 0, -1], "night": [0, 1, 1]}})
    );
}
