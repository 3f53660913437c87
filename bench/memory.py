#!/usr/bin/env python3
"""Peak memory of every dsv command on one huge label file (issue 16, item 9).

Python 3.11, standard library only. For each shape of label file below, a fresh
repository gets one label file of --mb megabytes (and a frame for it); then
add, commit, status, labels (count, text, JSON), query (cold, warm, JSON),
stats, diff (worktree, JSON, between commits) and export run under
`/usr/bin/time -v`, and each peak resident set size is checked against the
budget: twice the label file plus 200 MiB. Exit status 1 when a command is over
budget or crashed (killed by a signal, or Rust's panic exit 101), 2 on a setup
error. A command may fail cleanly (a file dsv refuses to read is an error for
`dsv labels`): its exit status is shown, and only its memory is judged.

Shapes (each one line unless said):

  yolo-polygon    `0 x1 y1 x2 y2 ...`, six-decimal coordinates (valid YOLO
                  segmentation, ~22 M points at 200 MB)
  yolo-short      the same with short numbers `0.5` (4 bytes a number)
  yolo-garbage    `0` then words that are not numbers
  yolo-boxes      many lines, one box each (~5 M boxes at 200 MB)
  coco            a COCO file: frames of 10 boxes, every tenth with a polygon
  cvat            a CVAT for images XML file: frames of 10 boxes
  kitti           many lines of KITTI objects

    python3 bench/memory.py --dsv target/release/dsv --workdir /tmp/mem
    python3 bench/memory.py --dsv target/release/dsv --mb 20 --only yolo-polygon,coco
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
SHAPES = ["yolo-polygon", "yolo-short", "yolo-garbage", "yolo-boxes", "coco", "cvat", "kitti"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def env() -> dict:
    e = dict(os.environ)
    e.update({"DSV_AUTHOR_NAME": "Bench", "DSV_AUTHOR_EMAIL": "bench@example.com", "NO_COLOR": "1"})
    return e


def write_repeated(path: Path, head: bytes, unit_fn, size: int, tail: bytes) -> None:
    """Writes head, then units from unit_fn(i) until size bytes, then tail."""
    with open(path, "wb") as f:
        f.write(head)
        n = len(head) + len(tail)
        i = 0
        buf = []
        blen = 0
        while n < size:
            u = unit_fn(i)
            i += 1
            buf.append(u)
            blen += len(u)
            n += len(u)
            if blen >= 1 << 20:
                f.write(b"".join(buf))
                buf, blen = [], 0
        f.write(b"".join(buf))
        f.write(tail)


def generate(shape: str, dest: Path, size: int) -> str:
    """Writes the label file of a shape under dest; returns its path in the repository."""
    rng = random.Random(16)
    if shape == "yolo-polygon":
        pool = [(" %.6f %.6f" % (rng.random(), rng.random())).encode() for _ in range(4096)]
        write_repeated(dest / "labels/f.txt", b"0", lambda i: pool[i % 4096], size, b"\n")
        return "labels/f.txt"
    if shape == "yolo-short":
        pool = [(" 0.%d 0.%d" % (rng.randrange(10), rng.randrange(10))).encode() for _ in range(4096)]
        write_repeated(dest / "labels/f.txt", b"0", lambda i: pool[i % 4096], size, b"\n")
        return "labels/f.txt"
    if shape == "yolo-garbage":
        write_repeated(dest / "labels/f.txt", b"0", lambda i: b" abc def", size, b"\n")
        return "labels/f.txt"
    if shape == "yolo-boxes":
        pool = [
            ("%d %.6f %.6f %.6f %.6f\n" % (rng.randrange(10), rng.random(), rng.random(), rng.random() / 4, rng.random() / 4)).encode()
            for _ in range(4096)
        ]
        write_repeated(dest / "labels/f.txt", b"", lambda i: pool[i % 4096], size, b"")
        return "labels/f.txt"
    if shape == "kitti":
        line = b"Car 0.00 0 -1.57 600.00 150.00 630.00 190.00 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
        write_repeated(dest / "labels/f.txt", b"", lambda i: line, size, b"")
        return "labels/f.txt"
    if shape == "coco":
        # Frames of ten annotations; the images are listed after the annotations
        # are written, so the file is written in two passes of known counts.
        per = 10
        ann_bytes = 130
        frames = max(1, size // (per * ann_bytes + 90))
        with open(dest / "annotations.json", "w") as f:
            f.write('{"images": [')
            f.write(",".join(
                '{"id": %d, "file_name": "images/f%d.jpg", "width": 640, "height": 480}' % (i, i) for i in range(frames)
            ))
            f.write('], "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "dog"}], "annotations": [')
            first = True
            aid = 0
            for i in range(frames):
                for k in range(per):
                    aid += 1
                    seg = ', "segmentation": [[1.5, 2.5, 30.5, 2.5, 30.5, 40.5, 1.5, 40.5]]' if k == 0 else ""
                    f.write(("" if first else ",") + '{"id": %d, "image_id": %d, "category_id": %d, "bbox": [%d.5, %d.25, 30.5, 40.75], "area": 1242.9, "iscrowd": 0%s}' % (aid, i, 1 + k % 2, k * 10, k * 7, seg))
                    first = False
            f.write("]}\n")
        (dest / "images").mkdir(exist_ok=True)
        (dest / "images/f0.jpg").write_bytes(b"x")
        return "annotations.json"
    if shape == "cvat":
        per = 10
        frames = max(1, size // (per * 95 + 80))
        with open(dest / "annotations.xml", "w") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n')
            for i in range(frames):
                f.write('<image id="%d" name="f%d.jpg" width="640" height="480">\n' % (i, i))
                for k in range(per):
                    f.write('<box label="car" occluded="0" xtl="%d.5" ytl="%d.25" xbr="%d.5" ybr="%d.75" z_order="0"/>\n' % (k, k, k + 30, k + 40))
                f.write("</image>\n")
            f.write("</annotations>\n")
        (dest / "images").mkdir(exist_ok=True)
        (dest / "images/f0.jpg").write_bytes(b"x")
        return "annotations.xml"
    raise SystemExit(f"unknown shape {shape}")


def measure(cmd: list[str], cwd: Path) -> tuple[int, int, float]:
    """Runs cmd under /usr/bin/time -v: exit status, peak RSS in bytes, seconds."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    secs = time.perf_counter() - t
    err = p.stderr.decode(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    rss = int(m.group(1)) * 1024 if m else -1
    code = p.returncode
    sig = re.search(r"Command terminated by signal (\d+)", err)
    if sig:
        code = -int(sig.group(1))
    return code, rss, secs


def edit(path: Path) -> None:
    """Changes the label file so every command that compares versions sees it changed."""
    with open(path, "r+b") as f:
        head = f.read(64)
        if head.startswith(b"0 "):
            f.seek(0)
            f.write(b"1")
        elif head.startswith(b"Car "):
            f.seek(0)
            f.write(b"Van")
        else:
            # JSON and XML: flip a digit near the end (inside the last object).
            f.seek(-64, os.SEEK_END)
            tail = bytearray(f.read(64))
            for i in range(len(tail) - 1, -1, -1):
                if chr(tail[i]).isdigit():
                    tail[i] = ord("7") if tail[i] != ord("7") else ord("8")
                    break
            f.seek(-64, os.SEEK_END)
            f.write(tail)


def run_shape(dsv: str, shape: str, root: Path, size: int) -> list[tuple]:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "images").mkdir()
    (root / "images/f.jpg").write_bytes(b"x")
    log(f"{shape}: writing {size / 1e6:.0f} MB")
    label = generate(shape, root, size)
    fsize = (root / label).stat().st_size
    budget = 2 * fsize + 200 * MIB
    p = subprocess.run([dsv, "init", "-q"], cwd=root, env=env(), capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"dsv init failed: {p.stderr.decode(errors='replace')}")
    steps = [
        ["add", "-A"],
        ["commit", "-q", "-m", "one"],
        ["status"],
        ["labels", "--count", label],
        ["labels", label],
        ["labels", "--json", label],
        ["query", "true"],
        ["query", "true"],
        ["query", "--json", "true"],
        ["stats"],
        "edit",
        ["diff"],
        ["diff", "--json"],
        ["add", "-A"],
        ["commit", "-q", "-m", "two"],
        ["diff", "HEAD~1", "HEAD"],
        ["export", "--format", "yolo" if shape.startswith("yolo") else "coco", "--out", str(root.parent / f"{shape}-export")],
    ]
    out = []
    for s in steps:
        if s == "edit":
            edit(root / label)
            continue
        exp = root.parent / f"{shape}-export"
        if s[0] == "export" and exp.exists():
            shutil.rmtree(exp)
        code, rss, secs = measure([dsv] + s, root)
        ok = rss <= budget and code >= 0 and code != 101
        out.append((shape, fsize, " ".join(["dsv"] + s), code, rss, secs, budget, ok))
        log(f"{shape}: dsv {' '.join(s)}: exit {code}, {rss / MIB:.0f} MiB, {secs:.2f} s {'ok' if ok else 'OVER BUDGET' if code >= 0 else 'CRASHED'}")
    shutil.rmtree(root.parent / f"{shape}-export", ignore_errors=True)
    shutil.rmtree(root)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", default=str(Path(__file__).resolve().parent.parent / "target/release/dsv"))
    ap.add_argument("--workdir", default=None, help="default: a fresh temporary directory")
    ap.add_argument("--mb", type=int, default=200, help="size of each label file in MB (default 200)")
    ap.add_argument("--only", default=",".join(SHAPES), help="comma-separated shapes")
    args = ap.parse_args()
    if not shutil.which(args.dsv) and not Path(args.dsv).exists():
        print(f"no dsv binary at {args.dsv} (cargo build --release)", file=sys.stderr)
        return 2
    if not Path("/usr/bin/time").exists():
        print("/usr/bin/time is needed (GNU time)", file=sys.stderr)
        return 2
    dsv = str(Path(args.dsv).resolve())
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="dsv-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for shape in args.only.split(","):
        if shape not in SHAPES:
            print(f"unknown shape {shape} (one of {', '.join(SHAPES)})", file=sys.stderr)
            return 2
        rows += run_shape(dsv, shape, work / shape, args.mb * 1000 * 1000)
    print("| file | command | exit | peak RSS | budget | time | verdict |")
    print("|---|---|---|---|---|---|---|")
    for shape, fsize, cmd, code, rss, secs, budget, ok in rows:
        verdict = "ok" if ok else ("CRASHED" if code < 0 or code == 101 else "OVER")
        print(f"| {shape} ({fsize / 1e6:.0f} MB) | `{cmd}` | {code} | {rss / MIB:.0f} MiB | {budget / MIB:.0f} MiB | {secs:.2f} s | {verdict} |")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
