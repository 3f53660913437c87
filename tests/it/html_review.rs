//! The HTML review page as a browser shows it: render a page for a small diff,
//! screenshot it with headless Chromium, and check that the old box is drawn
//! in red and the new one in green where they belong on the frame.
//!
//! Chromium is required: without it the test fails and says how to install it,
//! so a CI machine that lacks it cannot pass by skipping the check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dsv::labels::compare::{ObjectChange, ObjectChangeKind};
use dsv::labels::{BBox, Format, Units};
use dsv::object::diff::ChangeKind;
use dsv::ops::label_diff::{
    ClassDelta, DatasetDiff, FrameChanges, FrameObjects, LabelFileDiff, SCHEMA,
};
use dsv::report::Side;

const IMAGE_W: usize = 200;
const IMAGE_H: usize = 100;
/// The removed box, on the left half of the frame (x, y, w, h in pixels).
const OLD_BOX: (f64, f64, f64, f64) = (20.0, 20.0, 60.0, 60.0);
/// The added box, on the right half.
const NEW_BOX: (f64, f64, f64, f64) = (120.0, 20.0, 60.0, 60.0);

// ---- a minimal PNG writer: stored deflate blocks, checksums by hand ----

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    out.extend(adler32(data).to_be_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// An 8-bit RGB PNG filled with one colour.
fn solid_png(w: usize, h: usize, rgb: [u8; 3]) -> Vec<u8> {
    // Each scanline starts with its filter type; 0 is "none".
    let line: Vec<u8> = std::iter::once(0)
        .chain(std::iter::repeat_n(rgb, w).flatten())
        .collect();
    let raw = line.repeat(h);
    let mut ihdr = Vec::new();
    ihdr.extend((w as u32).to_be_bytes());
    ihdr.extend((h as u32).to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // depth 8, RGB, deflate, adaptive filters, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

// ---- a PNG reader for Chromium's screenshots (8-bit, not interlaced) ----

struct Image {
    w: usize,
    h: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.w + x]
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

fn decode_png(bytes: &[u8]) -> Image {
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG"
    );
    let mut pos = 8;
    let mut idat = Vec::new();
    let mut header = None;
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => header = Some(data.to_vec()),
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    let ihdr = header.expect("screenshot has no IHDR");
    let w = u32::from_be_bytes(ihdr[0..4].try_into().unwrap()) as usize;
    let h = u32::from_be_bytes(ihdr[4..8].try_into().unwrap()) as usize;
    let (depth, color, interlace) = (ihdr[8], ihdr[9], ihdr[12]);
    assert_eq!(depth, 8, "screenshot bit depth");
    assert_eq!(interlace, 0, "screenshot is interlaced");
    let channels = match color {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        c => panic!("screenshot colour type {c} not handled"),
    };
    let stride = w * channels;
    let mut raw = vec![0u8; (stride + 1) * h];
    let n = gix::zlib::stream::inflate::read(
        &mut &idat[..],
        &mut gix::zlib::Decompress::new(),
        &mut raw,
    )
    .expect("inflating the screenshot");
    assert_eq!(n, raw.len(), "screenshot pixel data is short");

    let mut pixels = vec![0u8; stride * h];
    for y in 0..h {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for i in 0..stride {
            let left = if i >= channels {
                pixels[y * stride + i - channels]
            } else {
                0
            };
            let up = if y > 0 {
                pixels[(y - 1) * stride + i]
            } else {
                0
            };
            let up_left = if y > 0 && i >= channels {
                pixels[(y - 1) * stride + i - channels]
            } else {
                0
            };
            let predictor = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                f => panic!("unknown PNG filter {f}"),
            };
            pixels[y * stride + i] = line[i].wrapping_add(predictor);
        }
    }
    let rgb = pixels
        .chunks(channels)
        .map(|p| match channels {
            1 | 2 => [p[0]; 3],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    Image { w, h, rgb }
}

// ---- the page ----

fn bbox((x, y, w, h): (f64, f64, f64, f64)) -> Option<BBox> {
    Some(BBox { x, y, w, h })
}

fn change(kind: ObjectChangeKind, class: &str) -> ObjectChange {
    let (before, after) = match kind {
        ObjectChangeKind::Removed => (bbox(OLD_BOX), None),
        _ => (None, bbox(NEW_BOX)),
    };
    ObjectChange {
        kind,
        class: class.into(),
        old_class: None,
        before,
        after,
        iou: None,
        id: None,
        attributes: BTreeMap::new(),
        box_changed: false,
        shape: "box",
    }
}

fn synthetic_diff() -> DatasetDiff {
    let frame = FrameObjects {
        frame: "white.png".into(),
        frame_path: Some("images/white.png".into()),
        width: Some(IMAGE_W as u32),
        height: Some(IMAGE_H as u32),
        units: Units::Pixels,
        objects_before: 1,
        objects_after: 1,
        changes: vec![
            change(ObjectChangeKind::Removed, "dog"),
            change(ObjectChangeKind::Added, "cat"),
        ],
        class_counts: BTreeMap::from([("cat".into(), (0, 1)), ("dog".into(), (1, 0))]),
        unchanged: Vec::new(),
    };
    let class = |name: &str, before: u64, after: u64| ClassDelta {
        class: name.into(),
        before,
        after,
        delta: after as i64 - before as i64,
        added: after,
        removed: before,
        ..ClassDelta::default()
    };
    DatasetDiff {
        schema: SCHEMA,
        from: "1".repeat(64),
        to: "worktree".into(),
        frames: FrameChanges::default(),
        labels: vec![LabelFileDiff {
            path: "labels/white.txt".into(),
            from: None,
            format: Format::Yolo,
            kind: ChangeKind::Modified,
            frames: vec![frame],
        }],
        classes: vec![class("cat", 0, 1), class("dog", 1, 0)],
        warnings: Vec::new(),
        invalid_boxes: Vec::new(),
        frame_attributes: Vec::new(),
        frame_attribute_totals: Default::default(),
        prediction_changes: Vec::new(),
        prediction_totals: Default::default(),
        files: Vec::new(),
    }
}

fn render_page(diff: &DatasetDiff) -> String {
    let png = solid_png(IMAGE_W, IMAGE_H, [255, 255, 255]);
    let frame_bytes = |path: &str, side: Side| {
        (path == "images/white.png" && side == Side::After).then(|| png.clone())
    };
    let mut out = Vec::new();
    dsv::report::html::render(diff, &frame_bytes, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

// ---- Chromium ----

const INSTALL_HINT: &str = "Chromium is required by this test (it screenshots the HTML review page). \
     None of `chromium`, `chromium-browser`, `google-chrome`, `google-chrome-stable` is on PATH \
     (and DSV_CHROMIUM is not set). Install it, e.g. on Debian/Ubuntu: \
     `apt-get install -y chromium` (or `sudo apt-get install -y --no-install-recommends chromium`), \
     or point DSV_CHROMIUM at a Chromium/Chrome binary.";

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DSV_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

fn screenshot(chromium: &Path, page: &Path, out: &Path, profile: &Path) {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--force-device-scale-factor=1",
            "--window-size=800,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}\n{INSTALL_HINT}", chromium.display()));
    // A hung browser must fail the test, not hang CI.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish its screenshot within 120 s",
                chromium.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        out.is_file(),
        "{} wrote no screenshot (exit {:?})\nstderr:\n{}",
        chromium.display(),
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] >= 180 && p[1] <= 90 && p[2] <= 90
}

fn is_green(p: [u8; 3]) -> bool {
    p[1] >= 120 && p[0] <= 90 && p[2] <= 90
}

fn is_white(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c >= 245)
}

/// Fraction of pixels on a horizontal or vertical segment that match.
fn fraction(
    img: &Image,
    pts: impl Iterator<Item = (usize, usize)>,
    test: fn([u8; 3]) -> bool,
) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for (x, y) in pts {
        all += 1;
        hit += usize::from(test(img.at(x, y)));
    }
    hit as f64 / all.max(1) as f64
}

/// Best match among rows `y-2..=y+2` (the stroke straddles the edge).
fn best_row(img: &Image, y: usize, x0: usize, x1: usize, test: fn([u8; 3]) -> bool) -> f64 {
    (y.saturating_sub(2)..=(y + 2).min(img.h - 1))
        .map(|y| fraction(img, (x0..=x1).map(|x| (x, y)), test))
        .fold(0.0, f64::max)
}

/// Best match among columns `x-2..=x+2`.
fn best_col(img: &Image, x: usize, y0: usize, y1: usize, test: fn([u8; 3]) -> bool) -> f64 {
    (x.saturating_sub(2)..=(x + 2).min(img.w - 1))
        .map(|x| fraction(img, (y0..=y1).map(|y| (x, y)), test))
        .fold(0.0, f64::max)
}

#[test]
fn review_page_draws_old_box_red_and_new_box_green_in_chromium() {
    let diff = synthetic_diff();
    let html = render_page(&diff);
    assert!(html.contains("class=\"box before\""));
    assert!(html.contains("class=\"box after\""));
    assert!(html.contains("data:image/png;base64,"));
    assert!(!html.contains("src=\"http"), "page must not load anything");

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("review.html");
    std::fs::write(&page, &html).unwrap();
    assert_boxes_drawn(&page, "html_review");
}

/// A screenshot of a page, and where the synthetic frame is on it.
struct Shot {
    img: Image,
    /// Image coordinates to screen pixels.
    left: f64,
    top: f64,
    scale: f64,
    keep: Box<dyn Fn() -> String>,
}

impl Shot {
    fn at_image(&self, ix: f64, iy: f64) -> (usize, usize) {
        let (x, y) = (
            (self.left + ix * self.scale).round() as isize,
            (self.top + iy * self.scale).round() as isize,
        );
        assert!(
            x >= 0 && y >= 0 && (x as usize) < self.img.w && (y as usize) < self.img.h,
            "expected position ({x}, {y}) is off the screenshot; {}",
            (self.keep)()
        );
        (x as usize, y as usize)
    }
}

/// Screenshots `page` (showing [`synthetic_diff`]'s frame first) in headless
/// Chromium and checks that the old box is drawn in red dashes and the new one
/// in solid green where the labels put them, and the frame between them.
fn assert_boxes_drawn(page: &Path, name: &str) -> Shot {
    let chromium = find_chromium().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let started = Instant::now();
    screenshot(&chromium, page, &shot, &dir.path().join("profile"));
    eprintln!("chromium screenshot took {:.1?}", started.elapsed());
    let img = decode_png(&std::fs::read(&shot).unwrap());
    let (page_copy, name) = (page.to_path_buf(), name.to_string());
    let shot_png = std::fs::read(&shot).unwrap();
    let keep = move || {
        // Leave the evidence somewhere a failing CI run can show it.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let _ = std::fs::write(target.join(format!("{name}_shot.png")), &shot_png);
        let _ = std::fs::copy(&page_copy, target.join(format!("{name}_page.html")));
        format!("screenshot and page kept in {}", target.display())
    };

    // The new box's top edge is the longest green horizontal run on the page
    // (the legend swatch and the class tag are much shorter).
    let (mut gy, mut gx0, mut glen) = (0, 0, 0);
    for y in 0..img.h {
        let mut run = 0;
        for x in 0..img.w {
            if is_green(img.at(x, y)) {
                run += 1;
                if run > glen {
                    (gy, gx0, glen) = (y, x + 1 - run, run);
                }
            } else {
                run = 0;
            }
        }
    }
    assert!(
        glen >= 60,
        "no green box edge found (longest green run {glen} px); {}",
        keep()
    );
    // Screen pixels per image pixel, from the new box's width: the run spans
    // the stroke (2 px, centred on the edge) past both edges.
    let stroke = 2.0;
    let scale = (glen as f64 - stroke) / NEW_BOX.2;
    let left = gx0 as f64 + stroke / 2.0;
    let to_screen = |ix: f64, iy: f64| {
        (
            (left + (ix - NEW_BOX.0) * scale).round() as isize,
            (gy as f64 + stroke / 2.0 + (iy - NEW_BOX.1) * scale).round() as isize,
        )
    };
    let inside = |(x, y): (isize, isize)| {
        assert!(
            x >= 0 && y >= 0 && (x as usize) < img.w && (y as usize) < img.h,
            "expected box position ({x}, {y}) is off the screenshot; {}",
            keep()
        );
        (x as usize, y as usize)
    };
    let margin = (6.0 * scale) as usize;

    // New box: solid green on all four edges.
    let (nx0, ny0) = inside(to_screen(NEW_BOX.0, NEW_BOX.1));
    let (nx1, ny1) = inside(to_screen(NEW_BOX.0 + NEW_BOX.2, NEW_BOX.1 + NEW_BOX.3));
    for (what, f) in [
        (
            "bottom",
            best_row(&img, ny1, nx0 + margin, nx1 - margin, is_green),
        ),
        (
            "left",
            best_col(&img, nx0, ny0 + margin, ny1 - margin, is_green),
        ),
        (
            "right",
            best_col(&img, nx1, ny0 + margin, ny1 - margin, is_green),
        ),
    ] {
        assert!(
            f > 0.9,
            "new box {what} edge is {:.0}% green; {}",
            f * 100.0,
            keep()
        );
    }

    // Old box: red dashes on all four edges, 100 image pixels to the left.
    let (ox0, oy0) = inside(to_screen(OLD_BOX.0, OLD_BOX.1));
    let (ox1, oy1) = inside(to_screen(OLD_BOX.0 + OLD_BOX.2, OLD_BOX.1 + OLD_BOX.3));
    for (what, f) in [
        (
            "top",
            best_row(&img, oy0, ox0 + margin, ox1 - margin, is_red),
        ),
        (
            "bottom",
            best_row(&img, oy1, ox0 + margin, ox1 - margin, is_red),
        ),
        (
            "left",
            best_col(&img, ox0, oy0 + margin, oy1 - margin, is_red),
        ),
        (
            "right",
            best_col(&img, ox1, oy0 + margin, oy1 - margin, is_red),
        ),
    ] {
        assert!(
            (0.3..0.95).contains(&f),
            "old box {what} edge is {:.0}% red (expected dashes); {}",
            f * 100.0,
            keep()
        );
        assert!(
            best_row(&img, oy1, ox0, ox1, is_green) == 0.0,
            "green on the old box; {}",
            keep()
        );
    }

    // The frame itself is shown: white inside the boxes and between them.
    for (ix, iy) in [
        (50.0, 50.0),
        (100.0, 50.0),
        (150.0, 50.0),
        (5.0, 95.0),
        (195.0, 5.0),
    ] {
        let (x, y) = inside(to_screen(ix, iy));
        assert!(
            is_white(img.at(x, y)),
            "frame pixel ({ix}, {iy}) at screen ({x}, {y}) is {:?}, not white; {}",
            img.at(x, y),
            keep()
        );
    }
    // No red anywhere near the new box, no green near the old one.
    let red_right = fraction(
        &img,
        (ny0..=ny1).flat_map(|y| (nx0..=nx1).map(move |x| (x, y))),
        is_red,
    );
    assert_eq!(red_right, 0.0, "red pixels on the new box; {}", keep());
    Shot {
        left: left - NEW_BOX.0 * scale,
        top: gy as f64 + stroke / 2.0 - NEW_BOX.1 * scale,
        scale,
        img,
        keep: Box::new(keep),
    }
}

/// An unchanged object of the synthetic frame, below and between the two boxes.
const SAME_BOX: (f64, f64, f64, f64) = (85.0, 65.0, 30.0, 30.0);

fn is_context_blue(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    b >= 180 && b > r + 60 && b > g + 30
}

#[test]
fn folder_review_page_draws_boxes_where_the_labels_say_in_chromium() {
    let mut diff = synthetic_diff();
    let (x, y, w, h) = SAME_BOX;
    diff.labels[0].frames[0].unchanged = vec![("tree".into(), BBox { x, y, w, h })];
    let dir = tempfile::tempdir().unwrap();
    let png = solid_png(IMAGE_W, IMAGE_H, [255, 255, 255]);
    let frame_bytes = |path: &str, side: Side| {
        (path == "images/white.png" && side == Side::After).then(|| png.clone())
    };
    let review = dsv::report::html::render_folder(&diff, &frame_bytes, dir.path()).unwrap();
    assert_eq!((review.pages, review.frames, review.images), (1, 1, 1));
    let page = dir.path().join("pages/0001.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("src=\"../img/"), "image beside the page");
    for f in [
        "index.html",
        "pages/0001.html",
        "review.css",
        "review.js",
        "classes.js",
    ] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        for remote in [
            "src=\"http",
            "href=\"http",
            "=\"//",
            "url(",
            "@import",
            "fetch(",
        ] {
            assert!(
                !text.contains(remote),
                "{f} must not load anything ({remote})"
            );
        }
    }

    let shot = assert_boxes_drawn(&page, "html_review_folder");
    // The unchanged object: faint dotted edges where its label puts them.
    let (sx0, sy0) = shot.at_image(x, y);
    let (sx1, sy1) = shot.at_image(x + w, y + h);
    let m = (4.0 * shot.scale) as usize;
    for (what, f) in [
        (
            "left",
            best_col(&shot.img, sx0, sy0 + m, sy1 - m, is_context_blue),
        ),
        (
            "right",
            best_col(&shot.img, sx1, sy0 + m, sy1 - m, is_context_blue),
        ),
        (
            "bottom",
            best_row(&shot.img, sy1, sx0 + m, sx1 - m, is_context_blue),
        ),
    ] {
        assert!(
            (0.1..0.8).contains(&f),
            "unchanged box {what} edge is {:.0}% context blue (expected dots); {}",
            f * 100.0,
            (shot.keep)()
        );
    }
}

/// The page's DOM after its scripts ran, as headless Chromium dumps it.
fn dump_dom(url: &str) -> String {
    dump_dom_with(url, &[])
}

fn dump_dom_with(url: &str, flags: &[&str]) -> String {
    let chromium = find_chromium().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .args(["--disable-dev-shm-usage", "--dump-dom"])
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}\n{INSTALL_HINT}", chromium.display()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The synthetic diff with `n` frames, frame `i` changing class `dog` when
/// `i % 50 == 7`, else `cat`.
fn many_frames(n: usize) -> DatasetDiff {
    let mut diff = synthetic_diff();
    let one = diff.labels[0].frames[0].clone();
    diff.labels[0].frames = (0..n)
        .map(|i| {
            let mut f = one.clone();
            let class = if i % 50 == 7 { "dog" } else { "cat" };
            f.changes = vec![change(ObjectChangeKind::Added, class)];
            f
        })
        .collect();
    diff
}

#[test]
fn folder_review_class_filter_from_the_summary_link_hides_other_frames_in_chromium() {
    let diff = many_frames(250);
    let dir = tempfile::tempdir().unwrap();
    dsv::report::html::render_folder(&diff, &|_, _| None, dir.path()).unwrap();
    let page = dir.path().join("pages/0002.html");
    let dom = dump_dom(&format!("file://{}#class=dog", page.display()));
    // Frames 107, 157 are on page 2 (frames 100 to 199).
    let shown: Vec<&str> = dom
        .split("<section class=\"card")
        .skip(1)
        .filter(|card| !card.split('>').next().unwrap().contains(" hidden"))
        .collect();
    assert_eq!(shown.len(), 2, "{dom}");
    assert!(shown[0].contains("id=\"frame-107\"") && shown[1].contains("id=\"frame-157\""));
    assert!(dom.contains("2 of 100 frames shown"), "{dom}");
    // The neighbouring pages keep the filter.
    assert!(dom.contains("href=\"0003.html#class=dog\""), "{dom}");
    assert!(dom.contains("href=\"0001.html#class=dog\""), "{dom}");
}

/// Loads a page in a frame, sends it keys and clicks, and records after each
/// which card is current and which zoomed, and whether context is shown.
const KEYS_HARNESS: &str = r##"<!DOCTYPE html><html><body>
<iframe id="f" src="pages/0001.html" width="1000" height="800"></iframe>
<script>
var f = document.getElementById("f");
f.onload = function () {
  var d = f.contentDocument, w = f.contentWindow, out = [];
  function key(k) { d.dispatchEvent(new w.KeyboardEvent("keydown", { key: k, bubbles: true })); }
  function state(what) {
    var c = d.querySelector(".card.current"), z = d.querySelector(".card.zoom");
    out.push(what + ":" + (c ? c.id : "-") + "/" + (z ? z.id : "-") + "/"
      + (d.body.classList.contains("no-context") ? "noctx" : "ctx"));
  }
  key("j"); state("j"); key("j"); state("j"); key("k"); state("k"); key("z"); state("z");
  key("ArrowRight"); state("right"); key("Escape"); state("esc"); key("c"); state("c");
  d.querySelector("#frame-3 .stage").click(); state("click");
  d.querySelector("#frame-3 .stage").click(); state("click");
  document.body.setAttribute("data-result", out.join(" "));
};
</script></body></html>"##;

#[test]
fn folder_review_keys_move_between_frames_zoom_and_hide_context_in_chromium() {
    let diff = many_frames(5);
    let dir = tempfile::tempdir().unwrap();
    dsv::report::html::render_folder(&diff, &|_, _| None, dir.path()).unwrap();
    let harness = dir.path().join("harness.html");
    std::fs::write(&harness, KEYS_HARNESS).unwrap();
    let dom = dump_dom_with(
        &format!("file://{}", harness.display()),
        &["--allow-file-access-from-files"],
    );
    let result = dom
        .split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("the harness did not run: {dom}"));
    assert_eq!(
        result,
        "j:frame-0/-/ctx j:frame-1/-/ctx k:frame-0/-/ctx z:frame-0/frame-0/ctx \
         right:frame-1/frame-1/ctx esc:frame-1/-/ctx c:frame-1/-/noctx \
         click:frame-3/frame-3/noctx click:frame-3/-/noctx"
    );
}

#[test]
fn folder_review_summary_lists_classes_and_largest_changes_first() {
    let mut diff = many_frames(120);
    // Frame i has i % 5 + 1 changes, so the largest come from all over.
    for (i, f) in diff.labels[0].frames.iter_mut().enumerate() {
        let one = f.changes[0].clone();
        f.changes = vec![one; i % 5 + 1];
    }
    let dir = tempfile::tempdir().unwrap();
    dsv::report::html::render_folder(&diff, &|_, _| None, dir.path()).unwrap();
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let summary = index[index.find("<main>").unwrap()..]
        .replace("<tr>", "\n<tr>")
        .replace("<h2>", "\n<h2>")
        .replace("<li>", "\n<li>");
    insta::assert_snapshot!("folder_review_summary", summary);
}

#[test]
fn diff_format_html_into_a_directory_writes_a_folder_review() {
    let repo = crate::common::TestRepo::init();
    crate::common::copy_contents(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo"),
        repo.root(),
    );
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "base"]);
    let mut labels = repo.read_string("labels/frame_000.txt");
    labels.push_str("1 0.5 0.5 0.1 0.1\n");
    repo.write("labels/frame_000.txt", labels);
    repo.ok(["commit", "-a", "-m", "relabel"]);
    let (old, new) = (
        repo.ok(["rev-parse", "HEAD~1"]).stdout.trim().to_string(),
        repo.ok(["rev-parse", "HEAD"]).stdout.trim().to_string(),
    );
    let diff =
        |out: &str| ["diff", "HEAD~1", "HEAD", "--format", "html", "-o", out].map(String::from);

    let run = repo.ok(diff("review/"));
    assert!(run.stderr.contains("(1 frame on 1 page, 1 image;"), "{run}");
    let index = repo.read_string("review/index.html");
    assert!(
        index.contains(&old) && index.contains(&new),
        "the commit ids"
    );
    assert!(
        index.contains("<a href=\"pages/0001.html#frame-0\">"),
        "{index}"
    );
    let page = repo.read_string("review/pages/0001.html");
    assert!(page.contains("<b>new</b> label_1</span>"), "{page}");
    assert!(
        page.contains("class=\"box same\" data-class=\"label_2\""),
        "context: {page}"
    );
    let images: Vec<_> = std::fs::read_dir(repo.path("review/img"))
        .unwrap()
        .collect();
    assert_eq!(images.len(), 1);

    // Again into the same folder, named without the slash: it is a directory.
    repo.ok(diff("review"));
    assert!(repo.exists("review/pages/0001.html"));

    // A directory holding anything else is refused and left as it was.
    repo.write("notes/todo.txt", "mine");
    let run = repo.expect_code(2, diff("notes/"));
    assert!(
        run.stderr.contains("is not empty and holds no dsv review"),
        "{run}"
    );
    assert_eq!(std::fs::read_dir(repo.path("notes")).unwrap().count(), 1);

    // A file name still gets the single page, images inside.
    repo.ok(diff("review.html"));
    let single = repo.read_string("review.html");
    assert!(single.contains("data:image/jpeg;base64,") && single.contains("<script>"));
}

#[test]
fn png_writer_round_trips_through_the_reader() {
    let png = solid_png(7, 3, [10, 200, 30]);
    let img = decode_png(&png);
    assert_eq!((img.w, img.h), (7, 3));
    assert!(img.rgb.iter().all(|p| *p == [10, 200, 30]));
    // Known CRC-32 and Adler-32 check values.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
}
