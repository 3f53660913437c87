//! `dsv blame`: the commit that last changed each object of a label file,
//! through moves, reclassifications, attribute changes and renames.

use crate::common;

use std::path::Path;

use common::{TestRepo, copy_contents, pseudo_random_bytes};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Snapshot with the temporary directory filtered out.
macro_rules! snap {
    ($repo:expr, $name:expr, $value:expr) => {{
        let value: String = $value;
        $repo
            .insta_settings()
            .bind(|| insta::assert_snapshot!($name, value));
    }};
}

/// Stages everything and commits as `who` at `secs`, so each commit of a
/// history is told apart by its author and date.
fn commit_as(repo: &TestRepo, who: &str, secs: u64, message: &str) {
    repo.ok(["add", "-A"]);
    let out = repo
        .cmd()
        .env("DSV_AUTHOR_NAME", who)
        .env(
            "DSV_AUTHOR_EMAIL",
            format!("{}@example.com", who.to_lowercase()),
        )
        .env("DSV_AUTHOR_DATE", secs.to_string())
        .args(["commit", "-m", message])
        .output()
        .expect("running dsv commit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const DAY: u64 = 86_400;
const T0: u64 = 1_700_000_000;

#[test]
fn blame_follows_an_object_added_then_moved_then_reclassified() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    commit_as(&repo, "Ada", T0, "base labels");
    let base = "0 0.35 0.3 0.3 0.2\n";
    repo.write("labels/frame_001.txt", format!("{base}1 0.7 0.7 0.2 0.2\n"));
    commit_as(&repo, "Bob", T0 + DAY, "add a box");
    repo.write(
        "labels/frame_001.txt",
        format!("{base}1 0.72 0.7 0.2 0.2\n"),
    );
    commit_as(&repo, "Cy", T0 + 2 * DAY, "nudge it");
    repo.write(
        "labels/frame_001.txt",
        format!("{base}2 0.72 0.7 0.2 0.2\n"),
    );
    commit_as(&repo, "Dee", T0 + 3 * DAY, "it is a bike");
    // A later commit elsewhere changes nothing of this file's blame.
    repo.write("labels/frame_002.txt", "0 0.5 0.5 0.1 0.1\n");
    commit_as(&repo, "Eve", T0 + 4 * DAY, "other frame");
    let mut out = String::new();
    for rev in ["HEAD~3", "HEAD~2", "HEAD~1", "HEAD"] {
        out.push_str(&format!("$ dsv blame labels/frame_001.txt {rev}\n"));
        out.push_str(&repo.ok(["blame", "labels/frame_001.txt", rev]).stdout);
    }
    snap!(repo, "blame_added_moved_reclassified", out);
    // From a subdirectory, the path is relative to it.
    let r = repo.ok_in("labels", ["blame", "frame_001.txt"]);
    assert!(
        r.stdout.contains("Dee") && r.stdout.contains("reclassified"),
        "{}",
        r.stdout
    );
    // The first object goes back to the root commit: all five commits are read.
    let doc: serde_json::Value =
        serde_json::from_str(&repo.ok(["blame", "labels/frame_001.txt", "--json"]).stdout).unwrap();
    assert_eq!(doc["commits_walked"], 5);
    let doc: serde_json::Value =
        serde_json::from_str(&repo.ok(["blame", "labels/frame_002.txt", "--json"]).stdout).unwrap();
    assert_eq!(
        doc["commits_walked"], 2,
        "a file whose every object the newest commit changed needs only its parent"
    );
}

#[test]
fn blame_follows_a_renamed_label_file() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    commit_as(&repo, "Ada", T0, "base labels");
    repo.write(
        "labels/frame_001.txt",
        "0 0.35 0.3 0.3 0.2\n1 0.7 0.7 0.2 0.2\n",
    );
    commit_as(&repo, "Bob", T0 + DAY, "add a box");
    // The frame and its label file renamed, bytes unchanged: a rename as `dsv diff` sees it.
    std::fs::rename(
        repo.path("images/frame_001.jpg"),
        repo.path("images/street_001.jpg"),
    )
    .unwrap();
    std::fs::rename(
        repo.path("labels/frame_001.txt"),
        repo.path("labels/street_001.txt"),
    )
    .unwrap();
    commit_as(&repo, "Cy", T0 + 2 * DAY, "rename frame 1");
    let out = repo.ok(["blame", "labels/street_001.txt"]).stdout;
    snap!(repo, "blame_renamed_label_file", out.clone());
    // Without the rename it would all be Cy's.
    assert!(!out.contains("Cy"), "{out}");
}

/// A COCO file of `n` frames, each with two boxes; `edit` changes annotations
/// (`(image index, annotation index)` → JSON fields) and `names` file names.
fn coco(
    n: usize,
    names: &dyn Fn(usize) -> String,
    edit: &dyn Fn(usize, usize) -> String,
) -> String {
    let mut images = Vec::new();
    let mut anns = Vec::new();
    for i in 0..n {
        images.push(format!(
            r#"{{"id":{},"file_name":"{}","width":640,"height":480}}"#,
            i + 1,
            names(i)
        ));
        for k in 0..2 {
            let x = 10 + 100 * k;
            let mut fields = format!(
                r#""id":{},"image_id":{},"category_id":{},"bbox":[{x},20,50,40]"#,
                i * 2 + k + 1,
                i + 1,
                k + 1
            );
            let extra = edit(i, k);
            if !extra.is_empty() {
                fields = extra;
            }
            anns.push(format!("{{{fields}}}"));
        }
    }
    format!(
        r#"{{"images":[{}],"annotations":[{}],"categories":[{{"id":1,"name":"car"}},{{"id":2,"name":"person"}}]}}"#,
        images.join(","),
        anns.join(",")
    )
}

#[test]
fn blame_of_one_frame_in_a_coco_file_of_many_frames() {
    let repo = TestRepo::init();
    let n = 60;
    for i in 0..n {
        repo.write(
            format!("images/img_{i:03}.jpg"),
            pseudo_random_bytes(64, i as u64 + 1),
        );
    }
    let plain = |i: usize| format!("img_{i:03}.jpg");
    let none = |_: usize, _: usize| String::new();
    repo.write("annotations/instances.json", coco(n, &plain, &none));
    commit_as(&repo, "Ada", T0, "60 frames");
    // Bob moves the car of frame 7.
    let moved = |i: usize, k: usize| {
        if i == 7 && k == 0 {
            r#""id":15,"image_id":8,"category_id":1,"bbox":[14,20,50,40]"#.to_string()
        } else {
            String::new()
        }
    };
    repo.write("annotations/instances.json", coco(n, &plain, &moved));
    commit_as(&repo, "Bob", T0 + DAY, "move a car");
    // Cy renames frame 3's image; the file names it by its new name.
    std::fs::rename(
        repo.path("images/img_003.jpg"),
        repo.path("images/street_003.jpg"),
    )
    .unwrap();
    let renamed = |i: usize| {
        if i == 3 {
            "street_003.jpg".to_string()
        } else {
            plain(i)
        }
    };
    repo.write("annotations/instances.json", coco(n, &renamed, &moved));
    commit_as(&repo, "Cy", T0 + 2 * DAY, "rename frame 3");
    // Dee marks frame 3's person occluded (an attribute change).
    let occluded = |i: usize, k: usize| {
        if i == 3 && k == 1 {
            r#""id":8,"image_id":4,"category_id":2,"bbox":[110,20,50,40],"attributes":{"occluded":true}"#
                .to_string()
        } else {
            moved(i, k)
        }
    };
    repo.write("annotations/instances.json", coco(n, &renamed, &occluded));
    commit_as(&repo, "Dee", T0 + 3 * DAY, "occluded person");

    let mut out = String::new();
    for frame in ["images/img_007.jpg", "images/street_003.jpg", "img_010.jpg"] {
        out.push_str(&format!(
            "$ dsv blame annotations/instances.json --frame {frame}\n"
        ));
        out.push_str(
            &repo
                .ok(["blame", "annotations/instances.json", "--frame", frame])
                .stdout,
        );
    }
    snap!(repo, "blame_coco_frame", out);

    // Every frame: 60 frames of two objects each.
    let all = repo.ok(["blame", "annotations/instances.json"]).stdout;
    assert_eq!(
        all.lines().filter(|l| l.starts_with("  ")).count(),
        120,
        "{all}"
    );

    let r = repo.expect_code(
        2,
        ["blame", "annotations/instances.json", "--frame", "nope.jpg"],
    );
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "error: no frame nope.jpg in annotations/instances.json at {}",
            &rev_of(&repo)[..12]
        )
    );
    let r = repo.expect_code(2, ["blame", "images/img_001.jpg"]);
    assert!(r.stderr.contains("is not a label file"), "{}", r.stderr);
    let r = repo.expect_code(2, ["blame", "annotations/missing.json"]);
    assert!(
        r.stderr.contains("annotations/missing.json is not in"),
        "{}",
        r.stderr
    );
}

fn rev_of(repo: &TestRepo) -> String {
    repo.ok(["rev-parse", "HEAD"]).stdout.trim().to_string()
}

#[test]
fn blame_json_names_commit_author_and_change() {
    let repo = TestRepo::init();
    copy_contents(&fixture("demo"), repo.root());
    commit_as(&repo, "Ada", T0, "base labels");
    repo.write("labels/frame_001.txt", "0 0.36 0.3 0.3 0.2\n");
    commit_as(&repo, "Bob", T0 + DAY, "nudge");
    let json = repo.ok(["blame", "labels/frame_001.txt", "--json"]).stdout;
    snap!(repo, "blame_json", json);
}
