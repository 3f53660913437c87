//! Names, messages and label contents are the committer's data: text output quotes
//! paths as git does (`core.quotePath`) and escapes terminal control characters in
//! messages, so a name holding `ESC[2J` cannot clear the reader's screen; `--json`
//! keeps the exact strings.

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::TestRepo;

/// A name with a screen-clearing escape, a tab, a newline, a quote, a backslash
/// and non-ASCII bytes.
const EVIL: &[u8] = b"evil\x1b[2J\tname\n\"q\"\\b \xc3\xa9.txt";
/// The same name in a label directory (so the dataset diff reports it too).
const EVIL_LABEL: &[u8] = b"labels/f\x1b]0;pwned\x07.txt";
/// A commit message with an escape, a bell, a carriage return and a C1 CSI.
const MESSAGE: &str = "add \x1b[2Jfiles\x07\r\n\nbody \u{9b}31m red\u{202e} end";

/// The first raw control byte (other than newline and tab), DEL or C1 control in `out`.
fn raw_control(out: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(out);
    text.char_indices()
        .find(|&(_, c)| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .map(|(i, _)| i)
}

#[test]
fn control_characters_in_paths_are_quoted() {
    let repo = TestRepo::init();
    repo.write("labels/f0.txt", "0 0.5 0.5 0.2 0.2\n");
    repo.write("images/f0.jpg", "jpeg");
    repo.ok(["add", "-A"]);
    repo.ok(["commit", "-m", "first"]);
    std::fs::write(repo.root().join(OsStr::from_bytes(EVIL)), "x").unwrap();
    std::fs::write(
        repo.root().join(OsStr::from_bytes(EVIL_LABEL)),
        "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.1 0.1\n",
    )
    .unwrap();
    let mut transcript = String::new();
    let mut run = |args: &[&OsStr], env: &[(&str, &str)], record: bool| {
        let mut cmd = repo.cmd();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().unwrap();
        let shown: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        // (JSON is checked for exact strings below, not for C1 controls serde leaves raw.)
        for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if let Some(at) = raw_control(bytes).filter(|_| record) {
                panic!(
                    "dsv {} printed a raw control character on {what} at {at}:\n{:?}",
                    shown.join(" "),
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        assert!(out.status.success(), "dsv {}: {out:?}", shown.join(" "));
        if !record {
            return out.stdout;
        }
        transcript.push_str(&format!(
            "$ dsv {}\n{}{}",
            shown.join(" ").escape_debug(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        out.stdout
    };
    let a = |s: &'static str| OsStr::new(s);
    run(&[a("status")], &[], true);
    run(&[a("status"), a("--short")], &[], true);
    run(&[a("status"), a("-u")], &[], true);
    run(&[a("add"), a("-A")], &[], true);
    run(&[a("status")], &[], true);
    let evil_author = [("DSV_AUTHOR_NAME", "Mal\x1b[2Jlory")];
    run(&[a("commit"), a("-m"), a(MESSAGE)], &evil_author, true);
    run(&[a("log")], &[], true);
    run(&[a("log"), a("--oneline")], &[], true);
    run(&[a("show")], &[], true);
    run(&[a("ls-tree"), a("-r"), a("HEAD")], &[], true);
    run(&[a("ls-tree"), a("--name-only"), a("HEAD")], &[], true);
    run(&[a("diff"), a("HEAD~1"), a("HEAD")], &[], true);
    run(
        &[a("diff"), a("--name-status"), a("HEAD~1"), a("HEAD")],
        &[],
        true,
    );
    run(&[a("diff"), a("--stat"), a("HEAD~1"), a("HEAD")], &[], true);
    run(&[a("query"), a("true")], &[], true);
    run(&[a("labels"), OsStr::from_bytes(EVIL_LABEL)], &[], true);
    run(&[a("branch"), a("-v")], &[], true);
    run(
        &[a("rm"), a("--cached"), OsStr::from_bytes(EVIL)],
        &[],
        true,
    );
    // --json keeps the exact strings.
    let evil = String::from_utf8(EVIL.to_vec()).unwrap();
    let status: serde_json::Value =
        serde_json::from_slice(&run(&[a("status"), a("--json")], &[], false)).unwrap();
    assert!(
        status
            .to_string()
            .contains(&serde_json::to_string(&evil).unwrap()),
        "{status}"
    );
    let show: serde_json::Value =
        serde_json::from_slice(&run(&[a("show"), a("--json")], &[], false)).unwrap();
    let paths: Vec<&str> = show["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&evil.as_str()), "{paths:?}");
    let log: serde_json::Value =
        serde_json::from_slice(&run(&[a("log"), a("--json"), a("-n1")], &[], false)).unwrap();
    // (A commit message's CRLF is stored as LF.)
    assert_eq!(
        log[0]["message"].as_str().unwrap().trim_end(),
        MESSAGE.replace("\r\n", "\n")
    );
    assert_eq!(log[0]["author"]["name"], "Mal\x1b[2Jlory");
    let settings = repo.insta_settings();
    settings.bind(|| insta::assert_snapshot!("control_characters_in_paths", transcript));
}
