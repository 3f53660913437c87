"""Fixtures: real repositories made with the dsv binary in temp dirs, and a
real S3-protocol server (moto) on loopback, as the Rust tests use."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dsv_bin():
    b = os.environ.get("DSV_BIN") or str(ROOT / "target" / "debug" / "dsv")
    if not Path(b).exists():
        pytest.fail(f"the dsv binary is needed at {b} (cargo build, or set DSV_BIN)")
    return b


def run(repo, *args, env=None):
    e = dict(os.environ)
    e.update(
        {
            "DSV_AUTHOR_NAME": "Test",
            "DSV_AUTHOR_EMAIL": "test@example.com",
            "DSV_AUTHOR_DATE": "1700000000",
            "DSV_HOOKS_FOREGROUND": "1",
        }
    )
    if env:
        e.update(env)
    r = subprocess.run([dsv_bin(), *args], cwd=repo, env=e, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"dsv {' '.join(args)} failed: {r.stderr}")
    return r.stdout


NAMES = ["cat", "dog", "person"]


def frame_bytes(i, size=300):
    """Frame i's content: text for small frames, random (incompressible, like
    JPEG) bytes of `size` for larger ones."""
    if size > 1000:
        import random

        return random.Random(i).randbytes(size)
    b = f"frame {i} ".encode() * (size // 8 + 1)
    return b[:size]


def make_repo(root, n=20, big=(), size=300):
    """n frames images/f{i:03}.jpg with YOLO labels, data.yaml, meta.jsonl
    (weather); frames listed in `big` are 3 MiB (stored in chunks)."""
    root.mkdir(parents=True, exist_ok=True)
    run(root, "init")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    (root / "data.yaml").write_text("names: ['cat', 'dog', 'person']\n")
    meta = []
    for i in range(n):
        data = frame_bytes(i, 3 << 20 if i in big else size)
        (root / "images" / f"f{i:03}.jpg").write_bytes(data)
        lines = [f"{i % 3} 0.5 0.5 0.2 0.4"]
        if i % 2 == 0:
            lines.append("2 0.25 0.25 0.1 0.1")
        (root / "labels" / f"f{i:03}.txt").write_text("\n".join(lines) + "\n")
        meta.append({"path": f"images/f{i:03}.jpg", "weather": "rain" if i % 4 == 0 else "sun"})
    (root / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    run(root, "add", ".")
    run(root, "commit", "-m", "first version")
    return root


@pytest.fixture
def repo_dir(tmp_path):
    return make_repo(tmp_path / "ds")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def moto_bin():
    for c in [shutil.which("moto_server"), str(Path(sys.executable).parent / "moto_server"),
              str(ROOT / "target" / "moto-venv" / "bin" / "moto_server")]:
        if c and Path(c).exists():
            return c
    pytest.fail("the S3 tests need moto_server (pip install 'moto[server]')")


@pytest.fixture(scope="session")
def moto():
    port = free_port()
    p = subprocess.Popen([moto_bin(), "-H", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except Exception:
            if p.poll() is not None or time.time() > deadline:
                p.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    yield env, port
    p.terminate()
    p.wait()


def create_bucket(port, name):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{name}", method="PUT")
    urllib.request.urlopen(req).read()


# Azurite's well-known development account (public, the same in every install).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_bin():
    """azurite-blob: DSV_AZURITE_BLOB (tests/it/python.rs installs it as the Rust
    tests do), else the Rust tests' install under target/azurite."""
    for c in [os.environ.get("DSV_AZURITE_BLOB"),
              str(ROOT / "target" / "azurite" / "node_modules" / ".bin" / "azurite-blob")]:
        if c and Path(c).exists():
            return c
    pytest.fail("the az:// tests need Azurite: run them through `cargo test --test it python`, "
                "or `npm install --prefix target/azurite azurite@VERSION` (see tests/it/common/azurite.rs)")


def az_create_container(port, name):
    """Creates a container with a Shared Key signed PUT (Azurite refuses anonymous
    writes); returns the HTTP status."""
    import base64
    import email.utils
    import hashlib
    import hmac

    date = email.utils.formatdate(usegmt=True)
    version = "2021-08-06"
    to_sign = ("PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
               f"/{AZ_ACCOUNT}/{AZ_ACCOUNT}/{name}\nrestype:container")
    sig = base64.b64encode(hmac.new(base64.b64decode(AZ_KEY), to_sign.encode(),
                                    hashlib.sha256).digest()).decode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/{AZ_ACCOUNT}/{name}?restype=container", method="PUT",
        # No body given: urllib would add a Content-Type, which the signature covers.
        headers={"Content-Length": "0", "x-ms-date": date, "x-ms-version": version,
                 "Authorization": f"SharedKey {AZ_ACCOUNT}:{sig}"})
    try:
        return urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A real Azure Blob server (Azurite) on loopback, blobs in memory; yields the
    environment the CLI and `open_remote` need, and a function creating a container."""
    port = free_port()
    data = tmp_path_factory.mktemp("azurite")
    p = subprocess.Popen([azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                          "--silent", "--inMemoryPersistence"], cwd=data,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    # Ready means a container can be created (node takes seconds to start when busy).
    while True:
        try:
            if az_create_container(port, "ready") == 201:
                break
        except OSError:
            pass
        if p.poll() is not None or time.time() > deadline:
            p.kill()
            pytest.fail("azurite-blob did not start")
        time.sleep(0.2)
    env = {
        "AZURE_STORAGE_USE_EMULATOR": "true",
        "AZURITE_BLOB_STORAGE_URL": f"http://127.0.0.1:{port}",
    }

    def container(name):
        assert az_create_container(port, name) == 201, f"creating container {name}"

    yield env, container
    p.terminate()
    p.wait()
