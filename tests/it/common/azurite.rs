//! A real Azure Blob Storage server for tests: Azurite (the npm package `azurite`,
//! pinned below) on loopback.
//!
//! `azurite-blob` is taken from `target/azurite`, where it is installed with
//! `npm install --prefix target/azurite azurite@VERSION` when missing. Without node
//! or npm the test fails saying so: an Azure test is never skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The Azurite release the tests run (also installed by `.ci/run`).
pub const AZURITE_VERSION: &str = "3.37.0";

/// Azurite's well-known development account (public, the same in every install).
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static INSTALL: Mutex<()> = Mutex::new(());

fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/azurite")
}

/// The `azurite-blob` program, installed first when missing (one install at a
/// time in this process).
pub fn find_azurite() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = install_dir();
    let bin = dir.join("node_modules/.bin/azurite-blob");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Azure tests need Azurite, which runs on Node.js: `node` is not installed (install nodejs and npm)"
    );
    if bin.exists() {
        return bin;
    }
    let st = Command::new("npm")
        .args(["install", "--silent", "--no-fund", "--no-audit", "--prefix"])
        .arg(&dir)
        .arg(format!("azurite@{AZURITE_VERSION}"))
        .status()
        .unwrap_or_else(|e| {
            panic!("Azure tests need Azurite: running npm failed ({e}); install npm, or run `npm install --prefix target/azurite azurite@{AZURITE_VERSION}`")
        });
    assert!(
        st.success() && bin.exists(),
        "Azure tests need Azurite: `npm install --prefix {} azurite@{AZURITE_VERSION}` failed",
        dir.display()
    );
    bin
}

/// A running Azurite blob service with one container; killed on drop.
pub struct Azurite {
    child: Child,
    _data: tempfile::TempDir,
    port: u16,
    /// The container created for this test.
    pub container: String,
}

impl Azurite {
    /// Starts Azurite on a free loopback port in a fresh directory and creates
    /// `container`.
    pub fn start(container: &str) -> Azurite {
        let bin = find_azurite();
        let data = tempfile::tempdir().expect("creating Azurite's data directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            // Blobs in memory (faster, nothing left behind); the working directory
            // is a fresh temporary one for anything it writes anyway.
            .args(["--silent", "--inMemoryPersistence"])
            .current_dir(data.path())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(data.path().join("stderr")).expect("creating Azurite's log"),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut az = Azurite {
            child,
            _data: data,
            port,
            container: container.to_string(),
        };
        // Ready means "the container was created"; node takes seconds to start on
        // a busy machine, so every failure before the deadline is retried.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer yet");
        loop {
            if let Some(st) = az.child.try_wait().expect("waiting for Azurite") {
                let log =
                    std::fs::read_to_string(az._data.path().join("stderr")).unwrap_or_default();
                panic!(
                    "azurite-blob exited at start-up ({st}): {}; last attempt: {last}",
                    log.trim()
                );
            }
            match create_container(port, container) {
                Ok(status) if status.contains(" 201") => break,
                Ok(status) => last = format!("creating container {container}: {status}"),
                Err(e) => last = format!("creating container {container}: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "azurite-blob was not ready within 60 s: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        az
    }

    /// The environment a dsv process needs to reach this server: `object_store`'s
    /// emulator mode (the development account and key) at this port.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            (
                "AZURITE_BLOB_STORAGE_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
        ]
    }

    /// `az://container/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("az://{}/{prefix}", self.container)
    }

    /// Names and sizes of the container's blobs under `prefix` (one signed List
    /// Blobs; up to 5000 blobs).
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        let body = list_blobs(self.port, &self.container, prefix)
            .unwrap_or_else(|e| panic!("listing {prefix} on Azurite: {e}"));
        elements(&body, "Blob")
            .iter()
            .map(|b| {
                let name = elements(b, "Name").first().cloned().unwrap_or_default();
                let size = elements(b, "Content-Length")
                    .first()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no size in listing entry {b}"));
                (name, size)
            })
            .collect()
    }
}

/// The body of a Shared Key signed List Blobs of `container` under `prefix`
/// (HTTP/1.0: no chunked encoding).
fn list_blobs(port: u16, container: &str, prefix: &str) -> std::io::Result<String> {
    let resp = signed_request(
        port,
        "GET",
        container,
        // Query parameters in the canonical resource: sorted, `name:value`, one a line.
        &format!("comp:list\nprefix:{prefix}\nrestype:container"),
        &format!("restype=container&comp=list&prefix={prefix}"),
        "HTTP/1.0",
        "",
    )?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(format!("{head}\n{body}")));
    }
    Ok(body.to_string())
}

/// The whole answer to a Shared Key signed request without a body: `verb` on
/// `container` with `query` (its canonical form `canonical`), over `http`, with
/// `headers` (each ending in CRLF) added.
#[allow(clippy::too_many_arguments)]
fn signed_request(
    port: u16,
    verb: &str,
    container: &str,
    canonical: &str,
    query: &str,
    http: &str,
    headers: &str,
) -> std::io::Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    // Verb, eleven empty standard headers, the x-ms- headers, then the resource.
    let to_sign = format!(
        "{verb}\n{}x-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{container}\n{canonical}",
        "\n".repeat(11)
    );
    let key = b64.decode(ACCOUNT_KEY).expect("account key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC key");
    mac.update(to_sign.as_bytes());
    let signature = b64.encode(mac.finalize().into_bytes());
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{verb} /{ACCOUNT}/{container}?{query} {http}\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\n{headers}\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp)
}

/// The contents of every `<tag>...</tag>` in `xml`, in order (flat: no nesting of
/// the same tag, as in a blob listing).
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

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `container` with a Shared Key signed PUT (Azurite, like Azure, refuses
/// anonymous writes) and returns the status line of the answer.
fn create_container(port: u16, container: &str) -> std::io::Result<String> {
    let resp = signed_request(
        port,
        "PUT",
        container,
        "restype:container",
        "restype=container",
        "HTTP/1.1",
        "Content-Length: 0\r\nConnection: close\r\n",
    )?;
    Ok(resp.lines().next().unwrap_or("").to_string())
}
