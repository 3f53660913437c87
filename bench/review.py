#!/usr/bin/env python3
"""The HTML review of a large relabel: page sizes, time to write, time to a
first screenshot in headless Chromium, single page against folder review.

A YOLO dataset of N frames (small noisy PNGs, 3 boxes each) is committed, then
every label file is changed (one box moved, one added) and committed; the
review of that commit is written as one page (`-o review.html`, which draws
the first 500 frames) and as a folder (`-o review/`, every frame). Standard
library only.

    python3 bench/review.py                       # 10000 frames, target/release/dsv
    python3 bench/review.py --frames 2000 --dsv target/debug/dsv
"""

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib


def png(w, h, seed):
    """An RGB PNG of a colour gradient with noise: about 10 KB at 96x72."""
    rnd = random.Random(seed)
    base = [rnd.randrange(256) for _ in range(3)]
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            n = rnd.randrange(48)
            row += bytes(((base[0] + x + n) & 255, (base[1] + y + n) & 255, (base[2] + n) & 255))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def run(cmd, cwd, quiet=True):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    if not quiet:
        sys.stderr.write(p.stderr)
    return dt, p


def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def chromium_binary():
    for b in [os.environ.get("DSV_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]:
        if b and shutil.which(b):
            return shutil.which(b)
    return None


def screenshot_time(chromium, url, work, reps):
    """Median wall time of a headless screenshot of `url` (browser start included)."""
    times = []
    for i in range(reps):
        profile = tempfile.mkdtemp(dir=work)
        shot = os.path.join(work, "shot.png")
        t = time.perf_counter()
        subprocess.run(
            [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
             f"--user-data-dir={profile}", f"--screenshot={shot}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=True)
        times.append(time.perf_counter() - t)
        shutil.rmtree(profile, ignore_errors=True)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--dsv", default="target/release/dsv")
    ap.add_argument("--workdir")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    dsv = os.path.abspath(a.dsv)
    work = a.workdir or tempfile.mkdtemp(prefix="dsv-review-bench-")
    repo = os.path.join(work, "repo")
    if os.path.exists(repo):
        shutil.rmtree(repo)
    os.makedirs(os.path.join(repo, "images"))
    os.makedirs(os.path.join(repo, "labels"))
    names = ["car", "person", "bike", "truck", "dog"]
    with open(os.path.join(repo, "data.yaml"), "w") as f:
        f.write(f"path: .\ntrain: images\nval: images\nnc: {len(names)}\nnames: {names}\n")
    rnd = random.Random(1)
    boxes = {}
    for i in range(a.frames):
        with open(os.path.join(repo, "images", f"f{i:05}.png"), "wb") as f:
            f.write(png(96, 72, i))
        bs = [(rnd.randrange(len(names)), rnd.uniform(0.2, 0.8), rnd.uniform(0.2, 0.8), 0.1, 0.12) for _ in range(3)]
        boxes[i] = bs
        with open(os.path.join(repo, "labels", f"f{i:05}.txt"), "w") as f:
            f.writelines(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in bs)
    env_home = os.path.join(work, "home")
    os.makedirs(env_home, exist_ok=True)
    os.environ["HOME"] = env_home
    os.environ.setdefault("DSV_AUTHOR_NAME", "bench")
    os.environ.setdefault("DSV_AUTHOR_EMAIL", "bench@example.com")
    run([dsv, "init"], repo)
    run([dsv, "add", "-A"], repo)
    run([dsv, "commit", "-m", "base"], repo)
    for i, bs in boxes.items():
        c, x, y, w, h = bs[0]
        bs[0] = (c, x + 0.05, y, w, h)
        bs.append((rnd.randrange(len(names)), rnd.uniform(0.2, 0.8), rnd.uniform(0.2, 0.8), 0.1, 0.1))
        with open(os.path.join(repo, "labels", f"f{i:05}.txt"), "w") as f:
            f.writelines(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in bs)
    run([dsv, "commit", "-a", "-m", "relabel"], repo)

    out = os.path.join(work, "out")
    os.makedirs(out, exist_ok=True)
    single = os.path.join(out, "review.html")
    folder = os.path.join(out, "review")
    t_single = t_folder = None
    for _ in range(a.reps):
        dt, _ = run([dsv, "diff", "HEAD~1", "HEAD", "--format", "html", "-o", single], repo)
        t_single = dt if t_single is None else min(t_single, dt)
        shutil.rmtree(folder, ignore_errors=True)
        dt, p = run([dsv, "diff", "HEAD~1", "HEAD", "--format", "html", "-o", folder + "/"], repo)
        t_folder = dt if t_folder is None else min(t_folder, dt)
    dt_json, _ = run([dsv, "diff", "HEAD~1", "HEAD", "--json", "-o", os.path.join(out, "d.json")], repo)
    pages = sorted(os.listdir(os.path.join(folder, "pages")))
    page_sizes = [size(os.path.join(folder, "pages", p)) for p in pages]
    print(f"frames changed: {a.frames}; dsv: {dsv}")
    print(f"diff --json (no page)          : {dt_json:.2f} s")
    print(f"single page  -o review.html    : {t_single:.2f} s, {size(single) / 2**20:.1f} MiB (first 500 frames drawn)")
    print(f"folder       -o review/        : {t_folder:.2f} s; {p.stderr.strip()}")
    print(f"  index.html {size(os.path.join(folder, 'index.html')) / 1024:.1f} KiB; {len(pages)} pages, "
          f"largest {max(page_sizes) / 1024:.1f} KiB, all pages {sum(page_sizes) / 2**20:.1f} MiB; "
          f"img/ {size(os.path.join(folder, 'img')) / 2**20:.1f} MiB")
    chromium = chromium_binary()
    if chromium:
        blank = os.path.join(out, "blank.html")
        with open(blank, "w") as f:
            f.write("<!DOCTYPE html><title>blank</title><p>blank</p>")
        base = screenshot_time(chromium, "file://" + blank, work, a.reps)
        print(f"headless Chromium screenshot, median of {a.reps} (browser start included; blank page {base:.2f} s):")
        for name, path in [("single page", single), ("folder index.html", os.path.join(folder, "index.html")),
                           ("folder pages/0001.html", os.path.join(folder, "pages", pages[0]))]:
            t = screenshot_time(chromium, "file://" + path, work, a.reps)
            print(f"  {name:24}: {t:.2f} s ({t - base:+.2f} s over blank)")
    else:
        print("Chromium not found: no screenshot times")
    if not a.keep and not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
