//! A real S3-protocol server for tests: moto (`moto_server` from PyPI) on loopback.
//!
//! `moto_server` is taken from PATH, else from a virtualenv under `target/moto-venv`,
//! which is created with `pip install "moto[server]"` when missing. If that fails
//! the test fails saying so: an S3 test is never skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static INSTALL: Mutex<()> = Mutex::new(());

fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv")
}

fn find_moto() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        && out.status.success()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let venv = venv_dir();
    let bin = venv.join("bin/moto_server");
    if bin.exists() {
        return bin;
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .unwrap_or_else(|| {
            panic!("S3 tests need moto_server: neither moto_server nor python3 is installed (install python3, then `pip install \"moto[server]\"`)")
        });
    let st = Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("running python3 -m venv");
    assert!(
        st.success(),
        "S3 tests need moto_server: `{python} -m venv {}` failed (install python3-venv, or `pip install \"moto[server]\"`)",
        venv.display()
    );
    let st = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "moto[server]"])
        .status()
        .expect("running pip");
    assert!(
        st.success() && bin.exists(),
        "S3 tests need moto_server: `pip install \"moto[server]\"` into {} failed",
        venv.display()
    );
    bin
}

/// A running moto server with one bucket; killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The bucket created for this test.
    pub bucket: String,
}

impl Moto {
    /// Starts moto on a free loopback port and creates `bucket`.
    pub fn start(bucket: &str) -> Moto {
        let bin = find_moto();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
        };
        // Ready means "the bucket was created": a listening socket alone is not enough,
        // since moto can accept a connection and then reset it while it is still
        // starting (seen in CI). Every failure before the deadline is retried.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer yet");
        loop {
            if let Some(st) = moto.child.try_wait().expect("waiting for moto") {
                panic!("moto_server exited at start-up ({st}); last attempt: {last}");
            }
            match create_bucket(port, bucket) {
                Ok(status) if status.contains(" 200") => break,
                Ok(status) => last = format!("creating bucket {bucket}: {status}"),
                Err(e) => last = format!("creating bucket {bucket}: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "moto_server was not ready within 60 s: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// The environment a dsv process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// Keys and sizes of the bucket's objects under `prefix` (one unsigned
    /// ListObjectsV2, which moto accepts; up to 1000 keys).
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        let body = self.get(&format!("/{}?list-type=2&prefix={prefix}", self.bucket));
        elements(&body, "Contents")
            .iter()
            .map(|c| {
                let key = elements(c, "Key").first().cloned().unwrap_or_default();
                let size = elements(c, "Size")
                    .first()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no size in listing entry {c}"));
                (key, size)
            })
            .collect()
    }

    /// Keys of the multipart uploads started in the bucket and neither completed nor
    /// aborted (ListMultipartUploads): parts a client cannot see and pays for.
    pub fn pending_uploads(&self) -> Vec<String> {
        let body = self.get(&format!("/{}?uploads", self.bucket));
        assert!(
            body.contains("ListMultipartUploadsResult"),
            "not a multipart upload listing: {body}"
        );
        elements(&body, "Upload")
            .iter()
            .map(|u| elements(u, "Key").first().cloned().unwrap_or_default())
            .collect()
    }

    /// The body of an unsigned GET of `path` (HTTP/1.0: no chunked encoding).
    fn get(&self, path: &str) -> String {
        let port = self.endpoint.rsplit(':').next().unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap()))
            .expect("connecting to moto");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("reading moto's answer");
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        assert!(head.contains(" 200"), "GET {path}: {head}");
        body.to_string()
    }
}

/// The contents of every `<tag>...</tag>` in `xml`, in order (flat: no nesting of
/// the same tag, as in S3 listings).
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

/// Creates `bucket` with a plain HTTP PUT (moto accepts unsigned requests) and
/// returns the status line of the answer.
fn create_bucket(port: u16, bucket: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp.lines().next().unwrap_or("").to_string())
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
