#!/usr/bin/env python3
"""A clone killed halfway and resumed: bytes transferred against one clone (issue 20, item 6).

Standard library only; a file:// remote, so nothing but dsv is needed.

    python3 bench/clone_resume.py --dsv target/release/dsv            # 512 MiB, 32 MiB packs
    python3 bench/clone_resume.py --dsv target/debug/dsv --mib 256 --pack-mib 8

Steps: a data set of random files (incompressible) is pushed; one clone is timed and
its `transfer.bytes_down` taken as the reference (T). A second clone is killed
(SIGKILL) once the packs it stored reach half of T; what it had read by then is its
`rchar` from /proc (every byte it read, the remote's and its own: an upper bound on
what it downloaded). Running the same clone again resumes it (`.dsv/CLONING`); its
`bytes_down` is R. The figure is (rchar + R) / T  [target <= 1.1].
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def run(cmd, env, cwd=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def dir_bytes(d):
    n = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                n += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv", default="target/release/dsv")
    ap.add_argument("--mib", type=int, default=512, help="data set size")
    ap.add_argument("--pack-mib", type=int, default=32, help="remote pack size")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    dsv = os.path.abspath(a.dsv)
    work = a.workdir or tempfile.mkdtemp(prefix="dsv-resume-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ)
    env["HOME"] = work
    env["DSV_AUTHOR_NAME"] = "bench"
    env["DSV_AUTHOR_EMAIL"] = "bench@example.com"
    env["DSV_REMOTE_PACK_SIZE"] = str(a.pack_mib << 20)
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "frames"), exist_ok=True)
    rng = random.Random(7)
    for i in range(a.mib):
        with open(os.path.join(src, "frames", f"{i:05}.bin"), "wb") as f:
            f.write(rng.randbytes(1 << 20))
    run([dsv, "init"], env, src)
    run([dsv, "add", "-A"], env, src)
    run([dsv, "commit", "-m", "data"], env, src)
    url = "file://" + os.path.join(work, "remote.dsv")
    run([dsv, "remote", "add", "origin", url], env, src)
    run([dsv, "push"], env, src)

    t0 = time.monotonic()
    ref = json.loads(run([dsv, "clone", url, "ref", "--json"], env, work))
    t_ref = time.monotonic() - t0
    total = ref["transfer"]["bytes_down"]
    shutil.rmtree(os.path.join(work, "ref"))

    dest = os.path.join(work, "killed")
    p = subprocess.Popen([dsv, "clone", url, dest], env=env, cwd=work,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rchar = None
    stored = 0
    while p.poll() is None:
        stored = dir_bytes(os.path.join(dest, ".dsv", "packs"))
        if stored >= total // 2:
            with open(f"/proc/{p.pid}/io") as f:
                io = dict(line.split(": ") for line in f.read().splitlines())
            rchar = int(io["rchar"])
            os.kill(p.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    p.wait()
    if rchar is None:
        sys.exit("the clone finished before it could be killed at 50%: use a larger --mib")
    res = json.loads(run([dsv, "clone", url, dest, "--json"], env, work))
    resumed = res["transfer"]["bytes_down"]
    run([dsv, "fsck"], env, dest)
    ratio = (rchar + resumed) / total
    print(f"data set: {a.mib} MiB in {a.pack_mib} MiB packs; one clone: {total / 2**20:.1f} MiB down in {t_ref:.1f} s")
    print(f"killed at {stored / 2**20:.1f} MiB stored; it had read {rchar / 2**20:.1f} MiB (rchar, upper bound)")
    print(f"resumed clone: {resumed / 2**20:.1f} MiB down")
    print(f"killed + resumed / one clone: {ratio:.3f}  [target <= 1.1]")
    if not a.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
