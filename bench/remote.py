#!/usr/bin/env python3
"""Benchmark dsv remotes against `aws s3 sync` on a local S3-protocol server (moto).

Standard library only. moto and awscli are pip-installed into a venv in the work
directory (reused across runs). Every figure is measured in the same run as its
baseline, against the same server, because the 2-core machines are noisy.

    python3 bench/remote.py --dsv target/release/dsv            # B100k: 100,000 files of 10 KiB
    python3 bench/remote.py --dsv target/release/dsv --files 10000   # a quicker run

Measurements (targets of issue 4 in brackets):
  1. push of the whole tree vs `aws s3 sync` up            [dsv >= 10x faster]
     PUT requests of that push                              [<= 1 per 16 MiB + a constant]
  2. push after adding 100 files: bytes sent / their bytes  [<= 2]
  3. clone with checkout vs `aws s3 sync` down              [dsv >= 5x faster]
  4. subset pull of 1% of the paths: bytes down / subset    [<= 1.5]
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FILE_SIZE = 10 * 1024


def run(cmd, env=None, cwd=None, capture=True):
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=capture, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    return dt, p.stdout


def venv_tool(workdir, tool, package):
    found = shutil.which(tool)
    if found:
        return found
    venv = os.path.join(workdir, "bench-venv")
    path = os.path.join(venv, "bin", tool)
    if not os.path.exists(path):
        if not os.path.exists(venv):
            run([sys.executable, "-m", "venv", venv])
        run([os.path.join(venv, "bin", "pip"), "install", "--quiet", package])
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_bucket(endpoint, name):
    req = urllib.request.Request(f"{endpoint}/{name}", method="PUT")
    urllib.request.urlopen(req).read()


def write_tree(root, files, seed, prefix="d"):
    rng = random.Random(seed)
    per_dir = 1000
    for i in range(files):
        d = os.path.join(root, f"{prefix}{i // per_dir:03}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06}.bin"), "wb") as f:
            f.write(rng.randbytes(FILE_SIZE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv", default="target/release/dsv")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    dsv = os.path.abspath(args.dsv)
    work = args.workdir or tempfile.mkdtemp(prefix="dsv-remote-bench-")
    os.makedirs(work, exist_ok=True)
    moto = venv_tool(work, "moto_server", "moto[server]")
    aws = venv_tool(work, "aws", "awscli")
    runs = os.path.join(work, "run")
    shutil.rmtree(runs, ignore_errors=True)
    os.makedirs(runs)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for b in ["dsv", "aws"]:
            make_bucket(endpoint, b)
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,
            DSV_AUTHOR_NAME="bench",
            DSV_AUTHOR_EMAIL="bench@example.com",
        )
        data = os.path.join(runs, "data")
        os.makedirs(data)
        write_tree(data, args.files, 1)
        raw = args.files * FILE_SIZE
        print(f"data: {args.files} files, {raw / 2**20:.1f} MiB; server: moto {endpoint}")
        run([dsv, "init", "-q"], env, data)
        run([dsv, "add", "-A", "-q"], env, data)
        run([dsv, "commit", "-q", "-m", "data"], env, data)
        run([dsv, "remote", "add", "origin", "s3://dsv/b"], env, data)
        t_push, out = run([dsv, "push", "--json"], env, data)
        push = json.loads(out)
        t_sync_up, _ = run(
            [aws, "s3", "sync", "--quiet", "--exclude", ".dsv/*", data, "s3://aws/b"], env
        )
        puts = push["transfer"]["puts"]
        allowed = raw / (16 * 2**20) + 8
        print(
            f"1. push {t_push:.2f} s, aws s3 sync up {t_sync_up:.2f} s: "
            f"{t_sync_up / t_push:.1f}x [>= 10x]; {puts} PUTs for {raw / 2**20:.0f} MiB "
            f"(allowed {allowed:.0f}) [{'pass' if puts <= allowed else 'FAIL'}]"
        )
        write_tree(data, 100, 2, prefix="new")
        run([dsv, "add", "-A", "-q"], env, data)
        run([dsv, "commit", "-q", "-m", "100 more"], env, data)
        _, out = run([dsv, "push", "--json"], env, data)
        sent = json.loads(out)["transfer"]["bytes_up"]
        ratio = sent / (100 * FILE_SIZE)
        print(f"2. push of 100 new files sent {sent} bytes: {ratio:.2f}x their bytes [<= 2]")
        t_clone, _ = run([dsv, "clone", "-q", "s3://dsv/b", os.path.join(runs, "clone")], env)
        t_sync_down, _ = run(
            [aws, "s3", "sync", "--quiet", "s3://aws/b", os.path.join(runs, "down")], env
        )
        print(
            f"3. clone {t_clone:.2f} s, aws s3 sync down {t_sync_down:.2f} s: "
            f"{t_sync_down / t_clone:.1f}x [>= 5x]"
        )
        sub = os.path.join(runs, "subset")
        run([dsv, "clone", "-q", "--no-checkout", "s3://dsv/b", sub], env)
        n_sub = max(1, args.files // 100)
        # 1% of the paths: the first n_sub files of directory d000 (1,000 files per directory).
        paths = [f"d000/f{i:06}.bin" for i in range(n_sub)] if n_sub < 1000 else ["d000"]
        _, out = run([dsv, "pull", "--only", *paths, "--json"], env, sub)
        down = json.loads(out)["fetch"]["transfer"]["bytes_down"]
        print(
            f"4. pull --only of {n_sub} files ({n_sub * FILE_SIZE} bytes) downloaded {down} bytes: "
            f"{down / (n_sub * FILE_SIZE):.2f}x [<= 1.5]"
        )
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
