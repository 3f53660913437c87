#!/usr/bin/env python3
"""Times `dsv meta set --where` and `--paths-from` tagging 10,000 frames (issue 21
item 7): one command, one rewrite of the sidecar.

    python3 bench/meta_set.py --dsv target/debug/dsv [--frames 10000]

Builds a YOLO dataset of N tiny frames (every third one holding a class-1 box),
commits it, then times, each as one command:
  1. meta set --where (query index built first: a cold query cache),
  2. meta set --where again (warm index),
  3. meta set --paths-from FILE listing every frame,
  4. dsv query | dsv meta set --paths-from - (the pipeline the guide shows).
Prints the seconds of each and the tagged counts. Standard library only.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time


def run(dsv, cwd, args, stdin=None):
    env = dict(os.environ, DSV_AUTHOR_NAME="bench", DSV_AUTHOR_EMAIL="b@example.com")
    t = time.perf_counter()
    p = subprocess.run([dsv, *args], cwd=cwd, input=stdin, capture_output=True, env=env)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"dsv {' '.join(args)} failed:\n{p.stderr.decode()}")
    return dt, p.stdout, p.stderr.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv", default="target/debug/dsv")
    ap.add_argument("--frames", type=int, default=10000)
    a = ap.parse_args()
    dsv = os.path.abspath(a.dsv)
    work = tempfile.mkdtemp(prefix="dsv-meta-bench-")
    try:
        os.makedirs(f"{work}/images")
        os.makedirs(f"{work}/labels")
        for i in range(a.frames):
            with open(f"{work}/images/f{i:05}.jpg", "wb") as f:
                f.write(b"\xff\xd8" + i.to_bytes(4, "little") + b"\xff\xd9")
            with open(f"{work}/labels/f{i:05}.txt", "w") as f:
                f.write(f"{1 if i % 3 == 0 else 0} 0.5 0.5 0.2 0.2\n")
        run(dsv, work, ["init", "-q"])
        run(dsv, work, ["add", "-A", "-q"])
        run(dsv, work, ["commit", "-q", "-m", "frames"])
        expr = 'objects.exists(o, o.class == "1")'
        rows = []
        dt, _, msg = run(dsv, work, ["meta", "set", "--where", expr, "weather=rain"])
        rows.append(("meta set --where (cold query index)", dt, msg))
        dt, _, msg = run(dsv, work, ["meta", "set", "--where", expr, "weather=snow"])
        rows.append(("meta set --where (warm query index)", dt, msg))
        with open(f"{work}/all.txt", "w") as f:
            for i in range(a.frames):
                f.write(f"images/f{i:05}.jpg\n")
        dt, _, msg = run(dsv, work, ["meta", "set", "--paths-from", "all.txt", "reviewed=true"])
        rows.append((f"meta set --paths-from FILE ({a.frames} paths)", dt, msg))
        tq, listed, _ = run(dsv, work, ["query", expr])
        dt, _, msg = run(dsv, work, ["meta", "set", "--paths-from", "-", "split=val"], stdin=listed)
        rows.append(("query | meta set --paths-from -", tq + dt, msg))
        for name, dt, msg in rows:
            print(f"{name:48} {dt:7.3f} s   {msg}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
