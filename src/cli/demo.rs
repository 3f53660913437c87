//! `dsv demo`: builds a repository from the bundled fixtures in a temporary
//! directory and runs the everyday commands on it, printing each one.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Ctx;

/// The demo data set, embedded so the demo runs from any directory.
const V1: &[(&str, &[u8])] = &[
    ("data.yaml", include_bytes!("../../fixtures/demo/data.yaml")),
    (
        "images/frame_000.jpg",
        include_bytes!("../../fixtures/demo/images/frame_000.jpg"),
    ),
    (
        "images/frame_001.jpg",
        include_bytes!("../../fixtures/demo/images/frame_001.jpg"),
    ),
    (
        "images/frame_002.jpg",
        include_bytes!("../../fixtures/demo/images/frame_002.jpg"),
    ),
    (
        "images/frame_003.jpg",
        include_bytes!("../../fixtures/demo/images/frame_003.jpg"),
    ),
    (
        "images/frame_004.jpg",
        include_bytes!("../../fixtures/demo/images/frame_004.jpg"),
    ),
    (
        "images/frame_005.jpg",
        include_bytes!("../../fixtures/demo/images/frame_005.jpg"),
    ),
    (
        "labels/frame_000.txt",
        include_bytes!("../../fixtures/demo/labels/frame_000.txt"),
    ),
    (
        "labels/frame_001.txt",
        include_bytes!("../../fixtures/demo/labels/frame_001.txt"),
    ),
    (
        "labels/frame_002.txt",
        include_bytes!("../../fixtures/demo/labels/frame_002.txt"),
    ),
    (
        "labels/frame_003.txt",
        include_bytes!("../../fixtures/demo/labels/frame_003.txt"),
    ),
    (
        "labels/frame_004.txt",
        include_bytes!("../../fixtures/demo/labels/frame_004.txt"),
    ),
    (
        "labels/frame_005.txt",
        include_bytes!("../../fixtures/demo/labels/frame_005.txt"),
    ),
];

/// The labelling round: edited labels and one new frame.
const V2: &[(&str, &[u8])] = &[
    (
        "images/frame_006.jpg",
        include_bytes!("../../fixtures/demo-edit/images/frame_006.jpg"),
    ),
    (
        "labels/frame_000.txt",
        include_bytes!("../../fixtures/demo-edit/labels/frame_000.txt"),
    ),
    (
        "labels/frame_001.txt",
        include_bytes!("../../fixtures/demo-edit/labels/frame_001.txt"),
    ),
    (
        "labels/frame_003.txt",
        include_bytes!("../../fixtures/demo-edit/labels/frame_003.txt"),
    ),
    (
        "labels/frame_006.txt",
        include_bytes!("../../fixtures/demo-edit/labels/frame_006.txt"),
    ),
];

/// The hook the demo declares: it prints from the payload it gets on stdin.
const HOOK_TOML: &str = r#"# Start "training" whenever the labels of a branch change, by a commit, a merge,
# a cherry-pick, a revert, a reset or a pull (docs/hooks.md).
[[hooks]]
id = "retrain"
event = "branch-updated"
labels_changed = true
run = '''echo "retrain: $DSV_EVENT on $DSV_BRANCH, commit $(echo $DSV_COMMIT | cut -c1-12)"; grep -o -e '"frames":{[^}]*}' -e '"objects":{[^}]*}' '''
"#;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Build the demo repository here (must not exist) and keep it, instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    for (name, bytes) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes)?;
    }
    Ok(())
}

fn step(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    // Quoted as a shell would need it, so a line can be pasted to run it again.
    let shown = shlex::try_join(args.iter().copied()).unwrap_or_else(|_| args.join(" "));
    println!("\n$ dsv {shown}");
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("DSV_AUTHOR_NAME", "Demo Labeller")
        .env("DSV_AUTHOR_EMAIL", "labeller@example.com")
        // Hook deliveries run inline, so their output shows in the demo.
        .env("DSV_HOOKS_FOREGROUND", "1")
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(
        out.status.success(),
        "demo step `dsv {}` failed",
        args.join(" ")
    );
    Ok(())
}

/// Runs the demo.
pub fn run(_ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let tmp;
    let kept = args.keep.is_some();
    let dir = match args.keep {
        Some(d) => {
            anyhow::ensure!(!d.exists(), "{} already exists", d.display());
            std::fs::create_dir_all(&d)?;
            d
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("dataset")
        }
    };
    std::fs::create_dir_all(&dir)?;
    println!(
        "# dsv demo: a YOLO dataset from fixtures/ in {}",
        dir.display()
    );
    write_files(&dir, V1)?;
    step(&dir, &["init"])?;
    step(&dir, &["status", "--short"])?;
    step(&dir, &["add", "-A"])?;
    step(&dir, &["commit", "-m", "Initial frames and labels"])?;
    step(&dir, &["tag", "v1"])?;
    println!(
        "\n# a branch-updated hook in dsv.toml, shared with the dataset; it runs when a branch's labels change"
    );
    std::fs::write(dir.join("dsv.toml"), HOOK_TOML)?;
    step(&dir, &["hooks", "list"])?;
    println!("\n# a labelling round: move a box, change a class, delete a box, add a frame");
    write_files(&dir, V2)?;
    step(&dir, &["status"])?;
    step(&dir, &["diff"])?;
    step(&dir, &["add", "-A"])?;
    step(
        &dir,
        &["commit", "-m", "Relabel frames 0, 1, 3; add frame 6"],
    )?;
    step(&dir, &["hooks", "log"])?;
    step(&dir, &["log", "--oneline"])?;
    step(&dir, &["diff", "v1", "HEAD", "--stat"])?;
    step(&dir, &["diff", "v1", "HEAD"])?;
    step(&dir, &["stats", "v1", "HEAD"])?;
    step(&dir, &["show", "HEAD"])?;
    step(&dir, &["checkout", "v1"])?;
    step(&dir, &["switch", "main"])?;
    step(&dir, &["fsck"])?;
    if kept {
        let shown = shlex::try_quote(&dir.to_string_lossy())
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| dir.display().to_string());
        println!("\n# the repository is kept: cd {shown} && dsv log");
    } else {
        println!(
            "\n# the repository was in a temporary directory and is removed now; `dsv demo --keep DIR` builds it in DIR and keeps it"
        );
    }
    Ok(0)
}

/// Examples shown by `dsv demo --help`.
const EXAMPLES: &str = "\
Examples:
  dsv demo                           run the tour in a temporary directory
  dsv demo --keep ~/dsv-demo         keep the repository to explore it afterwards";
