//! `dsv stats` of a new commit derived from its parent's cached statistics
//! (issue 23 item 4) gives the same bytes as computing them from scratch.
//!
//! A property test over random edit sequences (frames added and removed, label
//! files relabelled, renamed, removed and broken, class-names files changed, a
//! COCO file rewritten, directories added), committed one after another, with
//! `stats --json` after each commit compared with `stats --json --no-cache`;
//! and a damaged cache, which must be rebuilt rather than trusted.

use crate::common;

use common::TestRepo;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

const NAMES: [&str; 4] = ["car", "bus", "person", "dog"];

/// One edit; indexes are taken modulo what exists when it is applied.
#[derive(Debug, Clone)]
enum Edit {
    /// A new frame with a label file of these classes.
    Add(Vec<u8>),
    /// A frame and its label file deleted.
    Remove(usize),
    /// A label file's classes replaced.
    Relabel(usize, Vec<u8>),
    /// A frame and its label file renamed.
    Rename(usize),
    /// A label file deleted, its frame kept.
    Unlabel(usize),
    /// A label file that does not parse.
    Break(usize),
    /// The root class-names file rewritten (a name more, or in another order).
    Names(u8),
    /// The COCO file rewritten with this many annotations per image.
    Coco(u8),
    /// A new directory with frames and labels (and its own class names at 3).
    Dir(u8),
    /// A label file with a score on each box.
    Scored(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Class 4 is past the names: a label file that does not parse.
    let class = prop_oneof![12 => 0u8..4, 1 => Just(4u8)];
    let classes = proptest::collection::vec(class, 0..4);
    prop_oneof![
        3 => classes.clone().prop_map(Edit::Add),
        2 => any::<usize>().prop_map(Edit::Remove),
        3 => (any::<usize>(), classes).prop_map(|(i, c)| Edit::Relabel(i, c)),
        2 => any::<usize>().prop_map(Edit::Rename),
        1 => any::<usize>().prop_map(Edit::Unlabel),
        1 => any::<usize>().prop_map(Edit::Break),
        1 => any::<u8>().prop_map(Edit::Names),
        1 => (0u8..4).prop_map(Edit::Coco),
        1 => (1u8..4).prop_map(Edit::Dir),
        1 => any::<usize>().prop_map(Edit::Scored),
    ]
}

fn yolo(classes: &[u8]) -> String {
    classes
        .iter()
        .enumerate()
        .map(|(k, c)| format!("{c} 0.{} 0.5 0.1 0.1\n", 2 + k % 6))
        .collect()
}

/// The repository's frames (stems of `images/*.jpg`), kept in step with the files.
struct State {
    frames: Vec<String>,
    next: usize,
}

impl State {
    fn pick(&self, i: usize) -> Option<String> {
        (!self.frames.is_empty()).then(|| self.frames[i % self.frames.len()].clone())
    }

    fn coco(&self, per_image: u8) -> String {
        let images: Vec<String> = (0..3)
            .map(|i| {
                format!(r#"{{"id": {i}, "file_name": "c{i}.jpg", "width": 64, "height": 48}}"#)
            })
            .collect();
        let anns: Vec<String> = (0..3 * usize::from(per_image))
            .map(|k| {
                format!(
                    r#"{{"id": {k}, "image_id": {}, "category_id": {}, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}}"#,
                    k % 3,
                    1 + k % 2
                )
            })
            .collect();
        format!(
            r#"{{"images": [{}], "annotations": [{}], "categories": [{{"id": 1, "name": "car"}}, {{"id": 2, "name": "kite"}}]}}"#,
            images.join(", "),
            anns.join(", ")
        )
    }

    fn apply(&mut self, repo: &TestRepo, e: &Edit) {
        let label = |f: &str| format!("labels/{f}.txt");
        let image = |f: &str| format!("images/{f}.jpg");
        match e {
            Edit::Add(classes) => {
                let f = format!("f{:04}", self.next);
                self.next += 1;
                repo.write(image(&f), format!("frame {f}"));
                repo.write(label(&f), yolo(classes));
                self.frames.push(f);
            }
            Edit::Remove(i) => {
                if let Some(f) = self.pick(*i) {
                    let _ = std::fs::remove_file(repo.path(image(&f)));
                    let _ = std::fs::remove_file(repo.path(label(&f)));
                    self.frames.retain(|x| *x != f);
                }
            }
            Edit::Relabel(i, classes) => {
                if let Some(f) = self.pick(*i) {
                    repo.write(label(&f), yolo(classes));
                }
            }
            Edit::Rename(i) => {
                if let Some(f) = self.pick(*i) {
                    let g = format!("r{:04}", self.next);
                    self.next += 1;
                    let _ = std::fs::rename(repo.path(image(&f)), repo.path(image(&g)));
                    let _ = std::fs::rename(repo.path(label(&f)), repo.path(label(&g)));
                    self.frames.retain(|x| *x != f);
                    self.frames.push(g);
                }
            }
            Edit::Unlabel(i) => {
                if let Some(f) = self.pick(*i) {
                    let _ = std::fs::remove_file(repo.path(label(&f)));
                }
            }
            Edit::Break(i) => {
                if let Some(f) = self.pick(*i) {
                    repo.write(label(&f), "0 0.5 nope 0.1 0.1\n");
                }
            }
            Edit::Names(k) => {
                let mut names = NAMES.map(String::from).to_vec();
                let n = names.len();
                names.rotate_left(usize::from(*k) % n);
                if k % 2 == 1 {
                    names.push("kite".into());
                }
                repo.write("data.yaml", format!("names: [{}]\n", names.join(", ")));
            }
            Edit::Coco(n) => repo.write("annotations/instances.json", self.coco(*n)),
            Edit::Dir(n) => {
                let d = format!("extra{}", self.next);
                self.next += 1;
                // With its own class names at 3 frames (that one is computed, not derived).
                if *n == 3 {
                    repo.write(format!("{d}/classes.txt"), "kite\nboat\n");
                }
                for k in 0..*n {
                    repo.write(format!("{d}/images/e{k}.jpg"), format!("frame {d} {k}"));
                    repo.write(format!("{d}/labels/e{k}.txt"), yolo(&[k % 3, 1]));
                }
            }
            Edit::Scored(i) => {
                if let Some(f) = self.pick(*i) {
                    repo.write(label(&f), "1 0.5 0.5 0.1 0.1 0.9\n2 0.3 0.3 0.1 0.1 0.25\n");
                }
            }
        }
    }
}

/// `stats --json` with the cache as it is (and whether it was derived), and from scratch.
fn stats_both(repo: &TestRepo, rev: &str) -> (String, bool, String) {
    let out = repo
        .cmd()
        .env("DSV_TRACE_PERF", "1")
        .args(["stats", "--json", rev])
        .output()
        .expect("running dsv");
    assert!(out.status.success(), "{out:?}");
    let derived = String::from_utf8_lossy(&out.stderr).contains("stats.derive.sum");
    let fresh = repo.ok(["stats", "--json", "--no-cache", rev]);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        derived,
        fresh.stdout,
    )
}

fn initial(repo: &TestRepo) -> State {
    let mut s = State {
        frames: Vec::new(),
        next: 0,
    };
    repo.write("data.yaml", format!("names: [{}]\n", NAMES.join(", ")));
    for k in 0..6u8 {
        s.apply(repo, &Edit::Add(vec![k % 4, (k + 1) % 4]));
    }
    s.apply(repo, &Edit::Coco(2));
    s
}

fn run_case(rounds: &[Vec<Edit>]) -> Result<usize, TestCaseError> {
    let repo = TestRepo::init();
    let mut state = initial(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "0"]);
    let (warm, _, fresh) = stats_both(&repo, "HEAD");
    prop_assert_eq!(warm, fresh);
    let mut derived = 0;
    for (k, edits) in rounds.iter().enumerate() {
        for e in edits {
            state.apply(&repo, e);
        }
        repo.ok(["add", "-A"]);
        // An edit may undo another: then there is nothing to commit.
        let _ = repo.run(["commit", "-q", "-m", &format!("{}", k + 1)]);
        let (got, was_derived, fresh) = stats_both(&repo, "HEAD");
        prop_assert_eq!(&got, &fresh, "after {:?}", rounds);
        // Asked again: from what the first asking kept.
        prop_assert_eq!(&repo.ok(["stats", "--json"]).stdout, &fresh);
        derived += usize::from(was_derived);
    }
    Ok(derived)
}

#[test]
fn stats_of_a_new_commit_derived_from_its_parent_equal_stats_from_scratch() {
    let cases = std::env::var("STATS_DELTA_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0x5747_5de1_7a00_0023),
        ),
        failure_persistence: None,
        ..Config::default()
    };
    let strategy = proptest::collection::vec(proptest::collection::vec(edit(), 1..4), 1..4);
    let derived = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |rounds| {
        let n = run_case(&rounds)?;
        derived.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The derivation was taken, not always left to the full computation.
    let derived = derived.into_inner();
    assert!(derived >= cases as usize / 2, "{derived} commits derived");
}

#[test]
fn stats_of_a_relabelled_and_renamed_commit_are_derived_from_the_parent() {
    let repo = TestRepo::init();
    let mut state = initial(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "A"]);
    repo.ok(["stats"]);
    for e in [
        Edit::Relabel(0, vec![3, 3, 0]),
        Edit::Rename(1),
        Edit::Remove(2),
        Edit::Add(vec![1]),
        Edit::Coco(3),
        Edit::Dir(2),
        Edit::Scored(4),
    ] {
        state.apply(&repo, &e);
    }
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "B"]);
    let (got, derived, fresh) = stats_both(&repo, "HEAD");
    assert!(derived, "not derived");
    assert_eq!(got, fresh);
    // And a grandchild from the derived statistics.
    state.apply(&repo, &Edit::Relabel(3, vec![0]));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "C"]);
    let (got, derived, fresh) = stats_both(&repo, "HEAD");
    assert!(derived, "not derived");
    assert_eq!(got, fresh);
}

#[test]
fn stats_of_a_new_commit_with_a_changed_names_file_are_computed_not_derived() {
    let repo = TestRepo::init();
    let mut state = initial(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "A"]);
    repo.ok(["stats"]);
    state.apply(&repo, &Edit::Names(1));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "B"]);
    let (got, derived, fresh) = stats_both(&repo, "HEAD");
    assert!(!derived, "derived across a names change");
    assert_eq!(got, fresh);
}

#[test]
fn stats_of_a_new_commit_with_a_damaged_cache_are_rebuilt_not_trusted() {
    let repo = TestRepo::init();
    let mut state = initial(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "A"]);
    repo.ok(["stats"]);
    let db = repo.path(".dsv/cache/labels.redb");
    let mut bytes = std::fs::read(&db).expect("the statistics cache");
    // Damage past the header: redb's checksums catch it and the file is rebuilt.
    for b in bytes.iter_mut().skip(4096).step_by(7) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, bytes).unwrap();
    state.apply(&repo, &Edit::Relabel(0, vec![2, 2]));
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "B"]);
    let (got, _, fresh) = stats_both(&repo, "HEAD");
    assert_eq!(got, fresh);
    // A cache that is not a database at all.
    std::fs::write(&db, b"not a database").unwrap();
    let (got, derived, fresh) = stats_both(&repo, "HEAD~1");
    assert!(!derived);
    assert_eq!(got, fresh);
}

#[test]
fn stats_of_a_version_whose_frames_are_paired_are_kept_and_not_paired_again() {
    // The COCO file describes several frames, so the frame figures come from
    // pairing its entries with the frames, through the version's query index.
    let repo = TestRepo::init();
    initial(&repo);
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-q", "-m", "A"]);
    let first = repo.ok(["stats", "--json"]).stdout;
    let cache = repo.path(".dsv/cache");
    let mut removed = 0;
    for e in std::fs::read_dir(&cache).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("query") {
            std::fs::remove_dir_all(e.path()).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "the first stats paired through no query index");
    let second = repo.ok(["stats", "--json"]).stdout;
    assert_eq!(first, second);
    let rebuilt: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("query"))
        .collect();
    assert!(rebuilt.is_empty(), "paired again: {rebuilt:?}");
    assert_eq!(second, repo.ok(["stats", "--json", "--no-cache"]).stdout);
}
