//! Help, examples, the global options, `-C`, `dsv demo`'s transcript, and
//! counts printed with the right plural (issue 21 items 5 and 6).

use crate::common;

use std::path::Path;

use common::{Run, TestRepo};

/// Snapshot with the temporary directory filtered out.
macro_rules! snap {
    ($repo:expr, $name:expr, $value:expr) => {{
        let value: String = $value;
        $repo
            .insta_settings()
            .bind(|| insta::assert_snapshot!($name, value));
    }};
}

/// `$ dsv ARGS`, then the exit code, stdout and stderr, for a transcript.
fn shown(args: &[&str], r: &Run) -> String {
    format!(
        "$ dsv {}\n[exit {}]\n{}{}",
        args.join(" "),
        r.code,
        r.stdout,
        r.stderr
    )
}

/// The subcommands `dsv --help` lists.
fn commands(repo: &TestRepo) -> Vec<String> {
    let help = repo.ok(["--help"]).stdout;
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description too long for one line goes on indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_help_has_examples_and_leaves_the_global_options_to_dsv_help() {
    let repo = TestRepo::new();
    let all = commands(&repo);
    assert!(all.len() > 40, "{all:?}");
    for c in &all {
        let long = repo.ok([c.as_str(), "--help"]).stdout;
        assert!(
            long.contains("\nExamples:\n  dsv "),
            "dsv {c} --help has no examples:\n{long}"
        );
        assert!(
            !long.contains("--color") && !long.contains("-C <DIR>"),
            "dsv {c} --help repeats the global options:\n{long}"
        );
        // The short help stays short.
        let short = repo.ok([c.as_str(), "-h"]).stdout;
        assert!(!short.contains("Examples:"), "dsv {c} -h:\n{short}");
    }
    // The nested commands too.
    for c in [
        ["meta", "set"],
        ["meta", "unset"],
        ["meta", "import"],
        ["remote", "add"],
        ["remote", "remove"],
        ["remote", "list"],
        ["hooks", "list"],
        ["hooks", "test"],
        ["hooks", "retry"],
    ] {
        let long = repo.ok([c[0], c[1], "--help"]).stdout;
        assert!(long.contains("\nExamples:\n  dsv "), "dsv {c:?}:\n{long}");
        assert!(!long.contains("--color"), "dsv {c:?}:\n{long}");
    }
    // The global options are listed once, at the top, and still work after a command.
    let top = repo.ok(["--help"]).stdout;
    assert!(top.contains("-C <DIR>") && top.contains("--color"), "{top}");
    let mut out = shown(&["blame", "--help"], &repo.ok(["blame", "--help"]));
    out.push_str(&shown(
        &["meta", "set", "--help"],
        &repo.ok(["meta", "set", "--help"]),
    ));
    snap!(repo, "help_blame_and_meta_set", out);
}

#[test]
fn global_options_work_after_the_command_and_dash_c_to_a_missing_directory_says_so() {
    let repo = TestRepo::init();
    repo.write("a.jpg", "x");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "one"]);
    repo.ok(["status", "--color", "never", "-q"]);
    repo.ok(["meta", "set", "-q", "--where", "true", "a=1"]);
    let mut out = String::new();
    for args in [
        &["-C", "/nonexistent/dir", "status"][..],
        &["status", "-C", "no-such-dir"][..],
        &["-C", ".dsv/format", "log"][..],
    ] {
        out.push_str(&shown(args, &repo.run(args)));
    }
    snap!(repo, "dash_c_missing_directory", out);
}

#[test]
fn counts_of_one_are_singular() {
    let t = TestRepo::new();
    let remote = t.path("remote");
    let a = t.path("a");
    std::fs::create_dir_all(&a).unwrap();
    t.ok_in(&a, ["init"]);
    t.ok_in(&a, ["remote", "add", "origin", remote.to_str().unwrap()]);
    std::fs::create_dir_all(a.join("labels")).unwrap();
    std::fs::write(a.join("labels/one.txt"), "0 0.5 0.5 0.2 0.2\n").unwrap();
    let mut out = String::new();
    let mut step = |dir: &Path, args: &[&str]| {
        let r = t.run_in(dir, args);
        assert_eq!(r.code, 0, "dsv {args:?}:\n{r}");
        out.push_str(&shown(args, &r));
    };
    step(&a, &["add", "-A"]);
    step(&a, &["commit", "-m", "one file"]);
    step(&a, &["labels", "--count", "labels/one.txt"]);
    step(&a, &["labels", "labels/one.txt"]);
    step(&a, &["push", "origin", "main"]);
    t.ok(["clone", remote.to_str().unwrap(), "b"]);
    std::fs::write(a.join("labels/one.txt"), "0 0.5 0.5 0.3 0.2\n").unwrap();
    step(&a, &["commit", "-am", "moved"]);
    step(&a, &["diff", "HEAD~1", "--stat"]);
    step(&a, &["push"]);
    let b = t.path("b");
    step(&b, &["fetch"]);
    step(&b, &["status"]);
    snap!(t, "counts_of_one", out);
}

#[test]
fn demo_echoes_commands_that_paste_and_says_how_to_keep_its_repository() {
    let repo = TestRepo::new();
    let r = repo.ok(["demo"]);
    let mut out: String = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("$ ") || l.starts_with("# the repository"))
        .map(|l| format!("{l}\n"))
        .collect();
    let kept = repo.path("kept demo");
    let r = repo.ok(["demo", "--keep", kept.to_str().unwrap()]);
    out.push_str(r.stdout.lines().last().unwrap_or_default());
    out.push('\n');
    snap!(repo, "demo_transcript_commands", out);
    assert!(kept.join(".dsv").is_dir());
    // Each echoed command runs as printed in a POSIX shell.
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("$ dsv commit -m "))
        .expect("a commit step");
    let words = shlex_split(&line[2..]);
    assert_eq!(words[..3], ["dsv", "commit", "-m"]);
    assert_eq!(words[3], "Initial frames and labels");
}

/// Splits a command line as `sh` would (quotes only: the demo uses no other syntax).
fn shlex_split(line: &str) -> Vec<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for w in {}; do printf '%s\\n' \"$w\"; done",
            &line
        ))
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
