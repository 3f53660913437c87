#!/usr/bin/env python3
"""Scale: is every command linear in the number of frames? (issue 23 item 3)

Python 3.11, standard library only. For each size N (frames), the script builds a
data set of placeholder images of a few dozen bytes with labels (one YOLO file per
frame up to 1,000,000 frames; above that one COCO file per directory of 1,000
frames, as the issue asks), then runs and times, each as its own process:

    add    `add -A` + `commit` of the whole tree
    status `status`, nothing changed (warm: median of 3 after one run)
    add1   `add -A` + `commit` after 1% of the frames' labels changed
    dstat  `diff --stat A B`           djson  `diff --json A B` (to a file)
    stats0 `stats` with `.dsv/cache` removed     stats1 `stats` again
    query0 `query --count EXPR` with the query caches removed   query1 again
    switch `switch --detach A` then `switch main` (two processes, summed)
    push   `push` to a local S3-protocol server (moto), with --s3
    clone  `clone` of that remote into a new directory, with --s3
    fsck   `fsck`                      gc     `gc`

For every command it records the wall time, the time per frame and the peak
resident memory of the process (`wait4`'s ru_maxrss; for two-process rows the
larger), and prints a table per size plus the linearity checks of the issue:
time per frame at the largest size within 1.3x of the smallest; peak memory
at most 300 bytes per frame of the tree (checked from 1M frames: below that the
fixed ~30 MiB of any process outweighs it); and the commands
that touch only the change (dstat, djson, add1) within 2x from one size to the next
largest. `--svg FILE` writes the curves (time and memory per frame against frames,
log scale) as an SVG image for docs/benchmarks.md.

    python3 bench/scale.py --dsv target/release/dsv --sizes 10000       # smoke
    python3 bench/scale.py --dsv target/release/dsv --sizes 100000,1000000 --s3 \\
        --json scale.json --svg docs/img/scale.svg

The disk of the CI machines has about 16M inodes; 10M frames need 20M files with
YOLO labels, fewer with COCO (10M images + 10k JSON), still close to the limit, so
`--loop-fs SIZE_GB` makes an ext4 image with `inline_data` (files of a few dozen
bytes live in their inode) and 24M inodes on a loop device for the work directory
(needs root) and says so in the output.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CLASSES = ["car", "truck", "bus", "person", "bike", "cone", "sign", "light", "dog", "cat"]
PER_DIR = 1000
QUERY = 'objects.exists(o, o.class == "cone")'
# Rows whose work is proportional to the change, not to the tree.
CHANGE_ONLY = ("add1", "dstat", "djson")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv, cwd, env=None, out=None) -> tuple[float, int]:
    """Runs one process; returns (seconds, peak RSS in bytes). Fails loudly."""
    os.sync()  # a previous run's dirty pages are written back before the clock starts
    t = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out or subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, argv))} in {cwd}\n"
                         f"{err.decode(errors='replace')[-2000:]}")
    return dt, ru.ru_maxrss * 1024


def yolo_line(rng: random.Random) -> str:
    c = rng.randrange(len(CLASSES))
    w, h = rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.3)
    cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
    return f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def coco_doc(first: int, count: int, rng: random.Random, shift: float = 0.0) -> str:
    images, anns = [], []
    aid = first * 5
    for i in range(first, first + count):
        images.append({"id": i, "file_name": f"f{i:08d}.jpg", "width": 640, "height": 480})
        for _ in range(rng.randint(1, 5)):
            w, h = rng.uniform(10, 150), rng.uniform(10, 150)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            anns.append({"id": aid, "image_id": i, "category_id": rng.randrange(len(CLASSES)) + 1,
                         "bbox": [round(x + shift, 2), round(y, 2), round(w, 2), round(h, 2)],
                         "area": round(w * h, 2), "iscrowd": 0})
            aid += 1
    cats = [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]
    return json.dumps({"images": images, "annotations": anns, "categories": cats})


def generate(ds: Path, n: int, coco: bool) -> None:
    rng = random.Random(42)
    if not coco:
        (ds / "data.yaml").write_text("names: [" + ", ".join(CLASSES) + "]\n")
    for d0 in range(0, n, PER_DIR):
        d = f"seq_{d0 // PER_DIR:05d}"
        img = ds / d if coco else ds / "images" / d
        img.mkdir(parents=True, exist_ok=True)
        if not coco:
            (ds / "labels" / d).mkdir(parents=True, exist_ok=True)
        count = min(PER_DIR, n - d0)
        for i in range(d0, d0 + count):
            # A distinct placeholder per frame so frames do not deduplicate.
            with open(img / f"f{i:08d}.jpg", "wb") as f:
                f.write(b"\xff\xd8placeholder frame %d\xff\xd9" % i)
            if not coco:
                with open(ds / "labels" / d / f"f{i:08d}.txt", "w") as f:
                    f.write("".join(yolo_line(rng) for _ in range(rng.randint(1, 5))))
        if coco:
            (img / "annotations.json").write_text(coco_doc(d0, count, random.Random(d0)))


def edit(ds: Path, n: int, coco: bool) -> int:
    """Changes the labels of 1% of the frames; returns how many frames."""
    if coco:
        # Every 100th directory's COCO file: its boxes move (1% of frames and files).
        changed = 0
        for d0 in range(0, n, PER_DIR * 100):
            count = min(PER_DIR, n - d0)
            p = ds / f"seq_{d0 // PER_DIR:05d}" / "annotations.json"
            p.write_text(coco_doc(d0, count, random.Random(d0), shift=3.0))
            changed += count
        return changed
    rng = random.Random(7)
    chosen = rng.sample(range(n), max(1, n // 100))
    for i in chosen:
        p = ds / "labels" / f"seq_{i // PER_DIR:05d}" / f"f{i:08d}.txt"
        lines = p.read_text().splitlines(keepends=True)
        parts = lines[0].split()
        parts[0] = str((int(parts[0]) + 1) % len(CLASSES))
        lines[0] = " ".join(parts) + "\n"
        p.write_text("".join(lines))
    return len(chosen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto's S3 server in a venv under the work directory."""

    def __init__(self, work: Path):
        venv = work / "moto-venv"
        if not (venv / "bin" / "moto_server").exists():
            log("installing moto[server] into a venv")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([venv / "bin" / "pip", "install", "-q", "moto[server]>=5,<6"], check=True)
        self.port = free_port()
        self.proc = subprocess.Popen([venv / "bin" / "moto_server", "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                        AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                        AWS_ENDPOINT_URL=self.endpoint)

    def bucket(self, name: str) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")).read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def loop_fs(work: Path, gb: int) -> Path:
    """An ext4 image with inline data and many inodes, mounted at work/mnt."""
    img, mnt = work / "scale.img", work / "mnt"
    mnt.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(mnt):
        with open(img, "wb") as f:
            f.truncate(gb << 30)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "inline_data", "-N", "24000000",
                        "-I", "256", str(img)], check=True)
        subprocess.run(["mount", "-o", "loop,noatime", str(img), str(mnt)], check=True)
    return mnt


def measure(dsv: str, base: Path, n: int, moto: Moto | None) -> dict:
    coco = n > 1_000_000
    ds = base / f"ds-{n}"
    if ds.exists():
        shutil.rmtree(ds)
    ds.mkdir(parents=True)
    log(f"{n:,} frames: generating ({'COCO per directory' if coco else 'YOLO per frame'})")
    t = time.perf_counter()
    generate(ds, n, coco)
    gen = time.perf_counter() - t
    rows: dict[str, tuple[float, int]] = {}
    env = dict(moto.env if moto else os.environ, DSV_AUTHOR_NAME="bench",
               DSV_AUTHOR_EMAIL="bench@example.com")

    def cmd(*a, out=None):
        return run([dsv, *a], ds, env, out)

    def row(key, *parts):
        rows[key] = (sum(p[0] for p in parts), max(p[1] for p in parts))
        log(f"{n:,} {key}: {rows[key][0]:.3f} s, {rows[key][1] / 2**20:.0f} MiB")

    cmd("init")
    row("add", cmd("add", "-A"), cmd("commit", "-q", "-m", "A"))
    cmd("tag", "A")
    cmd("status")
    st = sorted((cmd("status") for _ in range(3)), key=lambda r: r[0])
    row("status", st[1])
    changed = edit(ds, n, coco)
    row("add1", cmd("add", "-A"), cmd("commit", "-q", "-m", "B"))
    cmd("tag", "B")
    row("dstat", cmd("diff", "--stat", "A", "B"))
    with open(base / "diff.json", "wb") as out:
        row("djson", cmd("diff", "--json", "A", "B", out=out))
    shutil.rmtree(ds / ".dsv" / "cache", ignore_errors=True)
    row("stats0", cmd("stats"))
    row("stats1", cmd("stats"))
    for d in ("query", "query-labels", "query-sidecar"):
        shutil.rmtree(ds / ".dsv" / "cache" / d, ignore_errors=True)
    row("query0", cmd("query", "--count", QUERY))
    row("query1", cmd("query", "--count", QUERY))
    row("switch", cmd("switch", "--detach", "A"), cmd("switch", "main"))
    if moto:
        bucket = f"scale{n}"
        moto.bucket(bucket)
        cmd("remote", "add", "s3", f"s3://{bucket}/ds", "--endpoint", moto.endpoint)
        row("push", cmd("push", "s3", "main"))
        dst = base / f"clone-{n}"
        shutil.rmtree(dst, ignore_errors=True)
        row("clone", run([dsv, "clone", f"s3://{bucket}/ds", str(dst)], base, env))
        shutil.rmtree(dst, ignore_errors=True)
    row("fsck", cmd("fsck"))
    row("gc", cmd("gc"))
    shutil.rmtree(ds)
    return {"frames": n, "labels": "coco" if coco else "yolo", "changed": changed,
            "generate_s": round(gen, 1),
            "rows": {k: {"s": round(v[0], 4), "peak_bytes": v[1]} for k, v in rows.items()}}


def report(results: list[dict]) -> tuple[str, bool]:
    keys = list(results[0]["rows"])
    out = []
    ok = True
    for r in results:
        n = r["frames"]
        out.append(f"\n{n:,} frames ({r['labels']} labels; {r['changed']:,} frames changed "
                   f"for add1/diff; generated in {r['generate_s']} s)\n")
        out.append("| command | time | µs/frame | peak memory | bytes/frame | ≤ 300 B/frame |")
        out.append("|---|---:|---:|---:|---:|---|")
        for k in keys:
            v = r["rows"][k]
            bpf = v["peak_bytes"] / n
            # Below 1M frames the fixed part (~30 MiB: binary, allocator, redb
            # caches) outweighs 300 B/frame; the budget is for 1M and up.
            if n >= 1_000_000:
                good = bpf <= 300
                ok &= good
                verdict = "yes" if good else "NO"
            else:
                verdict = "(checked from 1M)"
            out.append(f"| {k} | {v['s']:.3f} s | {v['s'] / n * 1e6:.2f} | "
                       f"{v['peak_bytes'] / 2**20:.0f} MiB | {bpf:.0f} | {verdict} |")
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        out.append(f"\nLinearity, {lo['frames']:,} -> {hi['frames']:,} frames:\n")
        out.append("| command | time per frame, ratio | ≤ 1.3x | change-only: time ratio | ≤ 2x |")
        out.append("|---|---:|---|---:|---|")
        for k in keys:
            a, b = lo["rows"][k]["s"] / lo["frames"], hi["rows"][k]["s"] / hi["frames"]
            per = b / a
            if k in CHANGE_ONLY:
                # These touch 1% of the frames: compare the change's cost per changed
                # frame, and, between neighbouring sizes, the absolute time ratio too.
                t = hi["rows"][k]["s"] / lo["rows"][k]["s"] * lo["changed"] / hi["changed"]
                out.append(f"| {k} | {per:.2f} | {'yes' if per <= 1.3 else 'NO'} | "
                           f"{t:.2f} per changed frame | {'yes' if t <= 2 else 'NO'} |")
                ok &= per <= 1.3 and t <= 2
            else:
                out.append(f"| {k} | {per:.2f} | {'yes' if per <= 1.3 else 'NO'} | | |")
                ok &= per <= 1.3
    return "\n".join(out), ok


def svg(results: list[dict], path: Path) -> None:
    """Two log-log panels: µs per frame and bytes per frame against frames."""
    import math
    keys = list(results[0]["rows"])
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aa4499", "#44aa99", "#882255",
               "#999933", "#332288"]
    W, H, PAD = 460, 320, 55
    xs = [r["frames"] for r in results]

    def panel(ox, title, val):
        vals = [val(r, k) for r in results for k in keys]
        lo, hi = math.log10(max(min(vals), 1e-3)), math.log10(max(vals))
        if hi - lo < 1:
            hi = lo + 1
        xlo, xhi = math.log10(min(xs)), math.log10(max(xs))
        if xhi == xlo:
            xhi = xlo + 1

        def px(x):
            return ox + PAD + (math.log10(x) - xlo) / (xhi - xlo) * (W - 2 * PAD)

        def py(y):
            return H - PAD - (math.log10(max(y, 1e-3)) - lo) / (hi - lo) * (H - 2 * PAD)

        s = [f'<text x="{ox + W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
             f'<rect x="{ox + PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" '
             'fill="none" stroke="#888"/>']
        for x in xs:
            s.append(f'<text x="{px(x)}" y="{H - PAD + 16}" text-anchor="middle" font-size="11">'
                     f'{x:,}</text>')
        for e in range(math.floor(lo), math.ceil(hi) + 1):
            if lo <= e <= hi:
                s.append(f'<text x="{ox + PAD - 4}" y="{py(10 ** e) + 4}" text-anchor="end" '
                         f'font-size="11">1e{e}</text>')
        for i, k in enumerate(keys):
            pts = " ".join(f"{px(r['frames']):.1f},{py(val(r, k)):.1f}" for r in results)
            s.append(f'<polyline points="{pts}" fill="none" stroke="{colours[i % len(colours)]}" '
                     'stroke-width="1.5"/>')
        return s

    body = panel(0, "time per frame (µs)", lambda r, k: r["rows"][k]["s"] / r["frames"] * 1e6)
    body += panel(W, "peak memory per frame (bytes)",
                  lambda r, k: r["rows"][k]["peak_bytes"] / r["frames"])
    for i, k in enumerate(keys):
        y = H + 14 * (i // 8)
        x = 60 + (i % 8) * 105
        body.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colours[i % len(colours)]}"/>'
                    f'<text x="{x + 14}" y="{y + 9}" font-size="11">{k}</text>')
    h = H + 14 * ((len(keys) + 7) // 8) + 6
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{h}" '
                    f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
                    + "".join(body) + "</svg>\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", default="target/release/dsv")
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated frame counts")
    ap.add_argument("--work", help="work directory (default: a temp dir)")
    ap.add_argument("--s3", action="store_true", help="also push and clone through moto")
    ap.add_argument("--loop-fs", type=int, metavar="GB",
                    help="make the work directory an ext4 image with inline_data (root)")
    ap.add_argument("--json", help="write the figures as JSON")
    ap.add_argument("--svg", help="write the curves as an SVG image")
    a = ap.parse_args()
    dsv = str(Path(a.dsv).resolve())
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="dsv-scale-"))
    base = loop_fs(work, a.loop_fs) if a.loop_fs else work
    if a.loop_fs:
        log(f"work directory: ext4 image with inline_data, {a.loop_fs} GB, mounted at {base}")
    moto = Moto(work) if a.s3 else None
    results = []
    try:
        for n in (int(s) for s in a.sizes.split(",")):
            results.append(measure(dsv, base, n, moto))
            if a.json:
                Path(a.json).write_text(json.dumps(results, indent=1))
    finally:
        if moto:
            moto.stop()
    text, ok = report(results)
    load = os.getloadavg()
    print(f"dsv {subprocess.run([dsv, '--version'], capture_output=True, text=True).stdout.strip()}; "
          f"load average at the end {load[0]:.1f}")
    print(text)
    if a.svg:
        svg(results, Path(a.svg))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
