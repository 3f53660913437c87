//! Credentials inside URLs (webhook userinfo and token parameters, remote URLs,
//! endpoints) are never printed, never stored in `.dsv/`, and still used where the
//! user meant them to be (HTTP basic auth of a webhook).

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::http::read_request;
use common::{Run, TestRepo, write_file};

/// Every secret string of the test; none may appear in any output or file under `.dsv/`.
const HOOK_PASS: &str = "hookpass-7f3a9c";
const HOOK_TOKEN: &str = "hooktoken-1b2d4e";
const DOWN_PASS: &str = "downpass-5e6f70";
const WATCH_PASS: &str = "watchpass-8a9b0c";
const WATCH_DOWN_PASS: &str = "watchdownpass-d1e2f3";
const REMOTE_SECRET: &str = "remotesecret-a4b5c6";
const ENDPOINT_PASS: &str = "endpointpass-0d1e2f";
const ENV_ENDPOINT_PASS: &str = "envendpointpass-3a4b5c";
const HEADER_TOKEN: &str = "headertoken-6d7e8f";
const CMD_PASS: &str = "cmdpass-9e8d7c";
const ALL: [&str; 10] = [
    CMD_PASS,
    HOOK_PASS,
    HOOK_TOKEN,
    DOWN_PASS,
    WATCH_PASS,
    WATCH_DOWN_PASS,
    REMOTE_SECRET,
    ENDPOINT_PASS,
    ENV_ENDPOINT_PASS,
    HEADER_TOKEN,
];

/// The headers of each request a receiver saw.
type Seen = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

/// A loopback receiver answering 200 to every POST; keeps the headers it saw.
fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Some((headers, _)) = read_request(&mut conn) else {
                continue;
            };
            log.lock().unwrap().push(headers);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    (addr, seen)
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The base64 of `user:pass` (HTTP basic auth), written out to need no crate.
fn basic(user: &str, pass: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// Runs dsv in `dir` with extra environment, keeping everything it printed.
fn run(t: &TestRepo, dir: &Path, env: &[(&str, &str)], args: &[&str], seen: &mut String) -> Run {
    let mut cmd = t.cmd_in(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("running dsv");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_bytes: out.stdout,
    };
    // The command line itself holds secrets: the transcript names them by a marker.
    let mut line = args.join(" ");
    for s in ALL {
        line = line.replace(s, "<secret>");
    }
    seen.push_str(&format!("$ dsv {line}\n{r}\n"));
    r
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// No secret in `text`, nor in the raw bytes of any file under `dsv_dir`.
#[track_caller]
fn assert_nowhere(text: &str, dsv_dir: &Path) {
    for s in ALL {
        assert!(!text.contains(s), "secret {s} printed:\n{text}");
    }
    let mut all = Vec::new();
    files(dsv_dir, &mut all);
    for f in all {
        let bytes = std::fs::read(&f).unwrap();
        for s in ALL {
            let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
            assert!(!found, "secret {s} stored in {}", f.display());
        }
    }
}

#[test]
fn url_credentials_never_printed_or_stored() {
    let t = TestRepo::init();
    let repo = t.root().to_path_buf();
    let mut out = String::new();
    let (addr, seen) = receiver();
    let down = closed_port();
    write_file(&repo, "labels/f0.txt", "0 0.5 0.5 0.2 0.2\n");
    // A command with a URL: its record holds it redacted, yet it runs as written (the
    // length it checks is that of the URL with the password).
    let cmd_url = format!("http://trainer:{CMD_PASS}@127.0.0.1:{down}/x");
    // A webhook with basic-auth userinfo and a token parameter, a second one whose
    // receiver is down (so errors and retries quote its URL), and a header in clear.
    let toml = format!(
        "[[hooks]]\nid = \"train\"\nevent = \"post-commit\"\n\
         url = \"http://trainer:{HOOK_PASS}@{addr}/hook?token={HOOK_TOKEN}&x=1\"\n\
         headers = {{ X-Api-Key = \"{HEADER_TOKEN}\" }}\n\n\
         [[hooks]]\nid = \"down\"\nevent = \"post-commit\"\n\
         url = \"http://trainer:{DOWN_PASS}@127.0.0.1:{down}/hook\"\ntimeout = 2\n\n\
         [[hooks]]\nid = \"cmd\"\nevent = \"post-commit\"\n\
         run = \"test $(printf %s {cmd_url} | wc -c) -eq {}\"\n",
        cmd_url.len()
    );
    write_file(&repo, "dsv.toml", &toml);
    // A dsv.toml with secrets in clear is the user's own file (`hooks list` warns that
    // it is committed): here it stays out of the commits, so `.dsv/` must hold none.
    write_file(&repo, ".dsvignore", "dsv.toml\n");
    run(&t, &repo, &[], &["add", "-A"], &mut out);
    let fg = [
        ("DSV_HOOKS_FOREGROUND", "1"),
        ("DSV_HOOKS_MAX_ATTEMPTS", "2"),
        ("DSV_HOOKS_BACKOFF_MS", "10"),
    ];
    let r = run(&t, &repo, &fg, &["commit", "-m", "first"], &mut out);
    assert_eq!(r.code, 0, "{r}");
    // Delivered with the credentials the URL named, though the outbox never had them.
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{out}");
    // The command hook ran as written, though its record holds the URL redacted.
    assert!(
        out.contains("post-commit hook 'cmd': exit status 0"),
        "{out}"
    );
    assert_eq!(got[0]["x-api-key"], HEADER_TOKEN);
    assert_eq!(got[0]["authorization"], basic("trainer", HOOK_PASS));
    // The down hook failed twice and says why, redacted.
    let st = run(&t, &repo, &[], &["hooks", "status"], &mut out);
    assert!(
        st.stdout.contains("failed") && st.stdout.contains("http://***@127.0.0.1"),
        "{st}"
    );
    for args in [
        &["hooks", "list"][..],
        &["hooks", "log"],
        &["hooks", "log", "--json"],
        &["hooks", "status", "--json"],
        &["hooks", "test", "post-commit"],
    ] {
        run(&t, &repo, &[], args, &mut out);
    }
    let list = run(&t, &repo, &[], &["hooks", "list"], &mut out);
    assert!(
        list.stdout.contains("POST http://***@") && list.stderr.contains("holds a secret in clear"),
        "{list}"
    );
    // A retry re-reads the credentials from dsv.toml and still delivers nothing to the
    // down receiver; then the hook without the header: basic auth from the userinfo.
    run(&t, &repo, &fg, &["hooks", "retry"], &mut out);
    let toml2 = format!(
        "[[hooks]]\nid = \"basic\"\nevent = \"post-commit\"\n\
         url = \"http://trainer:{HOOK_PASS}@{addr}/hook?token={HOOK_TOKEN}\"\n"
    );
    write_file(&repo, "dsv.toml", &toml2);
    write_file(&repo, "labels/f0.txt", "1 0.5 0.5 0.2 0.2\n");
    run(&t, &repo, &[], &["add", "-A"], &mut out);
    let r = run(&t, &repo, &fg, &["commit", "-m", "second"], &mut out);
    assert_eq!(r.code, 0, "{r}");
    let got = seen.lock().unwrap().clone();
    // (`hooks test` sent one too.)
    assert_eq!(got.len(), 3, "{out}");
    assert_eq!(got[2]["authorization"], basic("trainer", HOOK_PASS));
    // The recorded delivery of the "down" hook is gone from dsv.toml: retrying it says
    // its credentials are not stored, instead of sending it without them.
    run(&t, &repo, &fg, &["hooks", "retry"], &mut out);
    let st = run(&t, &repo, &[], &["hooks", "status"], &mut out);
    assert!(st.stdout.contains("no longer declared in dsv.toml"), "{st}");

    // Remotes: credentials in the URL or the endpoint are refused, naming the variables.
    let bad = format!("s3://AKIDEXAMPLE:{REMOTE_SECRET}@bucket/p");
    let r = run(&t, &repo, &[], &["remote", "add", "r", &bad], &mut out);
    assert_ne!(r.code, 0, "{r}");
    assert!(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{r}");
    let ep = format!("http://minio:{ENDPOINT_PASS}@127.0.0.1:{down}");
    let r = run(
        &t,
        &repo,
        &[],
        &["remote", "add", "r", "s3://bucket/p", "--endpoint", &ep],
        &mut out,
    );
    assert_ne!(r.code, 0, "{r}");
    let r = run(&t, t.home(), &[], &["clone", &bad, "c"], &mut out);
    assert_ne!(r.code, 0, "{r}");
    assert!(!t.home().join("c").exists());
    let r = run(
        &t,
        &repo,
        &[],
        &["remote", "add", "r", "s3://bucket/p?X-Amz-Signature=abc"],
        &mut out,
    );
    assert_ne!(r.code, 0, "{r}");
    // An endpoint from the environment is not stored, but an error quoting it is redacted.
    run(
        &t,
        &repo,
        &[],
        &["remote", "add", "s3r", "s3://bucket/p"],
        &mut out,
    );
    let env_ep = format!("http://minio:{ENV_ENDPOINT_PASS}@127.0.0.1:{down}");
    let aws = [
        ("AWS_ENDPOINT_URL", env_ep.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let r = run(&t, &repo, &aws, &["fetch", "s3r"], &mut out);
    assert_ne!(r.code, 0, "{r}");
    run(&t, &repo, &aws, &["push", "s3r"], &mut out);
    // `dsv config` edits the same settings, with the same refusal.
    let r = run(
        &t,
        &repo,
        &[],
        &["config", "remote.s3r.endpoint", &ep],
        &mut out,
    );
    assert_ne!(r.code, 0, "{r}");
    let r = run(
        &t,
        &repo,
        &[],
        &["config", "remote.s3r.url", &bad],
        &mut out,
    );
    assert_ne!(r.code, 0, "{r}");
    run(&t, &repo, &[], &["config", "--list"], &mut out);
    run(&t, &repo, &[], &["remote", "list"], &mut out);
    run(&t, &repo, &[], &["remote", "list", "--json"], &mut out);

    // dsv watch --webhook with userinfo: delivered with basic auth by the watch itself;
    // a receiver that is down leaves a failed delivery whose error is redacted.
    let origin = t.home().join("origin");
    run(
        &t,
        &repo,
        &[],
        &["remote", "add", "origin", origin.to_str().unwrap()],
        &mut out,
    );
    let r = run(&t, &repo, &[], &["push", "origin"], &mut out);
    assert_eq!(r.code, 0, "{r}");
    let r = run(
        &t,
        t.home(),
        &[],
        &["clone", "--no-checkout", origin.to_str().unwrap(), "mirror"],
        &mut out,
    );
    assert_eq!(r.code, 0, "{r}");
    let mirror = t.home().join("mirror");
    let hook = format!("http://watcher:{WATCH_PASS}@{addr}/watch");
    let r = run(
        &t,
        &mirror,
        &[],
        &[
            "watch",
            "origin",
            "--webhook",
            &hook,
            "--once",
            "--from-start",
        ],
        &mut out,
    );
    assert_eq!(r.code, 0, "{r}");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 5, "two commits watched from the start:\n{out}");
    assert_eq!(got[4]["authorization"], basic("watcher", WATCH_PASS));
    write_file(&repo, "labels/f0.txt", "2 0.5 0.5 0.2 0.2\n");
    run(&t, &repo, &[], &["commit", "-a", "-m", "third"], &mut out);
    run(&t, &repo, &[], &["push", "origin"], &mut out);
    let down_hook = format!("http://watcher:{WATCH_DOWN_PASS}@127.0.0.1:{down}/watch");
    let r = run(
        &t,
        &mirror,
        &fg,
        &[
            "watch",
            "origin",
            "--webhook",
            &down_hook,
            "--once",
            "--timeout",
            "2",
        ],
        &mut out,
    );
    assert_eq!(r.code, 1, "{r}");
    // Another process cannot deliver it: the credentials live only in that watch.
    run(&t, &mirror, &fg, &["hooks", "retry"], &mut out);
    for args in [
        &["hooks", "status"][..],
        &["hooks", "log", "--json"],
        &["hooks", "status", "--json"],
    ] {
        run(&t, &mirror, &[], args, &mut out);
    }
    assert!(out.contains("http://***@127.0.0.1"), "{out}");
    assert_nowhere(&out, &t.home().join("mirror/.dsv"));
    assert_nowhere(&out, &repo.join(".dsv"));
}
