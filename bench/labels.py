#!/usr/bin/env python3
"""Benchmark of dsv's label-aware diff, statistics and label parsing.

Python 3.11, standard library only. Targets (issue 3), all on generated data:

  D1  `dsv diff A B --stat` on a 1,000,000-frame YOLO dataset where 1% of the
      label files changed: under 1 s.
  D2  `dsv diff A B --json` with label detail on the same: under 3 s.
  S1  `dsv stats REV` on the 1M-frame commit, no cache: under 2 s.
  S2  `dsv stats REV` again (cache warm): under 0.3 s.
  C1  a 200 MB COCO JSON parses at 200 MB/s or better (`dsv labels --count`).

The machines are noisy (2 cores), so each figure is also given as a ratio against
a baseline run in the same invocation:

  D1  vs `diff -rq` of the two label directories (what finding changed label
      files costs without dsv),
  D2  vs a Python loop that only reads and splits both versions of the changed
      label files (no matching),
  S1/S2 vs `cat` of every label file to /dev/null (reading the labels at all),
  C1  vs CPython's `json.load` of the same file.

The diff's correctness is checked on the way: the edits are known (1/4 boxes
moved, 1/4 reclassified, 1/4 objects removed, 1/4 added), and the JSON must
report exactly those counts.

    python3 bench/labels.py --quick               # 20,000 frames, 20 MB COCO
    python3 bench/labels.py --write-doc           # full run, updates docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BEGIN_MARK = "<!-- labels:begin -->"
END_MARK = "<!-- labels:end -->"
# A --reuse run (statistics only) goes in its own block, leaving the full run's.
REUSE_BEGIN = "<!-- labels-stats:begin -->"
REUSE_END = "<!-- labels-stats:end -->"
CLASSES = ["car", "pedestrian", "cyclist", "truck", "bus", "traffic_light", "sign", "green_cone", "dog", "bike"]
ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path, env: dict | None = None, quiet: bool = True) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update({"DSV_AUTHOR_NAME": "Bench", "DSV_AUTHOR_EMAIL": "bench@example.com", "NO_COLOR": "1"})
    if env:
        e.update(env)
    p = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    return p


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    # Written-back before the clock starts: the kernel flushes a run's dirty
    # pages (a cold query writes ~500 MB of cache) about 30 s later, on the
    # CPUs of whichever run is going then, which swung timings by seconds.
    os.sync()
    t = time.perf_counter()
    p = run(cmd, cwd, env)
    return time.perf_counter() - t, p


def median_of(n: int, f) -> tuple[float, list[float]]:
    samples = [f() for _ in range(n)]
    return statistics.median(samples), samples


def yolo_line(rng: random.Random) -> str:
    c = rng.randrange(len(CLASSES))
    w, h = rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.3)
    cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
    return f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def generate(ds: Path, frames: int, per_dir: int) -> None:
    rng = random.Random(42)
    (ds / "data.yaml").write_text("names: [" + ", ".join(CLASSES) + "]\n")
    for i in range(frames):
        d = f"seq_{i // per_dir:05d}"
        if i % per_dir == 0:
            (ds / "images" / d).mkdir(parents=True, exist_ok=True)
            (ds / "labels" / d).mkdir(parents=True, exist_ok=True)
        # A distinct placeholder per frame so frames do not all deduplicate.
        with open(ds / "images" / d / f"f{i:07d}.jpg", "wb") as f:
            f.write(b"\xff\xd8placeholder frame %d\xff\xd9" % i)
        n = rng.randint(1, 5)
        with open(ds / "labels" / d / f"f{i:07d}.txt", "w") as f:
            f.write("".join(yolo_line(rng) for _ in range(n)))


def edit(ds: Path, frames: int, per_dir: int, count: int) -> dict:
    """Edits `count` label files; returns the expected object-change counts."""
    rng = random.Random(7)
    chosen = sorted(rng.sample(range(frames), count))
    expect = {"moved": 0, "reclassified": 0, "removed": 0, "added": 0}
    for k, i in enumerate(chosen):
        p = ds / "labels" / f"seq_{i // per_dir:05d}" / f"f{i:07d}.txt"
        lines = p.read_text().splitlines(keepends=True)
        op = k % 4
        if op == 0:  # move the first box a little (IoU stays well above 0.5)
            c, cx, cy, w, h = lines[0].split()
            lines[0] = f"{c} {min(float(cx) + float(w) * 0.05, 1.0):.6f} {cy} {w} {h}\n"
            expect["moved"] += 1
        elif op == 1:  # change the class of the first object
            parts = lines[0].split()
            parts[0] = str((int(parts[0]) + 1) % len(CLASSES))
            lines[0] = " ".join(parts) + "\n"
            expect["reclassified"] += 1
        elif op == 2:  # delete the last object
            lines.pop()
            expect["removed"] += 1
        else:  # add an object far from the others is not guaranteed; IoU < 0.5 is enough
            lines.append("7 0.990000 0.990000 0.010000 0.010000\n")
            expect["added"] += 1
        p.write_text("".join(lines))
    return expect


def make_coco(path: Path, target_mb: int) -> int:
    rng = random.Random(3)
    cats = [{"id": i + 1, "name": c, "supercategory": "thing"} for i, c in enumerate(CLASSES)]
    with open(path, "w") as f:
        f.write('{"info": {"description": "bench"}, "licenses": [], "categories": ')
        f.write(json.dumps(cats))
        f.write(', "images": [')
        # One image entry (~130 B) and its three annotations (~190 B each): ~700 B.
        n_img = max(1, target_mb * 1000 * 1000 // 700)
        for i in range(n_img):
            f.write(("," if i else "") + json.dumps({"id": i + 1, "file_name": f"img_{i:08d}.jpg", "width": 1920, "height": 1080, "weather": rng.choice(["rain", "sun"])}))
        f.write('], "annotations": [')
        aid = 0
        for i in range(n_img):
            for _ in range(3):
                aid += 1
                x, y = rng.uniform(0, 1800), rng.uniform(0, 1000)
                w, h = rng.uniform(5, 100), rng.uniform(5, 60)
                seg = [[round(v, 2) for v in (x, y, x + w, y, x + w, y + h, x, y + h)]]
                f.write(("," if aid > 1 else "") + json.dumps({"id": aid, "image_id": i + 1, "category_id": rng.randint(1, len(CLASSES)), "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": round(w * h, 2), "iscrowd": 0, "segmentation": seg}))
        f.write("]}")
    return path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", default=str(ROOT / "target/release/dsv"))
    ap.add_argument("--workdir", default="/tmp/dsv-bench-labels")
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--coco-mb", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--write-doc", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="only S1/S2, on WORKDIR/ds as an earlier run left it (tags A and B committed)")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.coco_mb = 20_000, 20
    dsv = str(Path(args.dsv).resolve())
    if not Path(dsv).exists():
        raise SystemExit(f"dsv binary not found at {dsv}: run `cargo build --release` first")
    work = Path(args.workdir)
    ds = work / "ds"
    t_start = time.time()
    load_start = os.getloadavg()[0]
    rows = []
    details = []

    def row(key, what, value, base_name, base, target_s, unit="s"):
        ratio = value / base if base else float("nan")
        ok = value <= target_s if unit == "s" else value >= target_s
        rows.append((key, what, value, base_name, base, ratio, target_s, unit, ok))
        log(f"{key}: {value:.3f} {unit} (baseline {base_name} {base:.3f} s, ratio {ratio:.2f}) target {target_s} -> {'PASS' if ok else 'FAIL'}")

    if not args.reuse:
        if work.exists():
            log(f"removing old {work}")
            shutil.rmtree(work)
        ds.mkdir(parents=True)
        log(f"generating {args.frames} frames")
        t = time.perf_counter()
        generate(ds, args.frames, args.per_dir)
        details.append(f"data set: {args.frames} frames in {args.frames // args.per_dir} directories of {args.per_dir} (placeholder images of ~40 B, YOLO labels with 1-5 objects, 10 classes in data.yaml), generated in {time.perf_counter() - t:.1f} s")
        run([dsv, "init"], ds)
        t_add, _ = timed([dsv, "add", "-A"], ds)
        t_commit, _ = timed([dsv, "commit", "-m", "A"], ds)
        run([dsv, "tag", "A"], ds)
        details.append(f"first add -A {t_add:.1f} s + commit {t_commit:.2f} s (context only)")
        log("copying labels/ for the diff -rq baseline")
        shutil.copytree(ds / "labels", work / "labels_A")
        changed = args.frames // 100
        expect = edit(ds, args.frames, args.per_dir, changed)
        t_add2, _ = timed([dsv, "add", "-A"], ds)
        t_commit2, _ = timed([dsv, "commit", "-m", "B"], ds)
        run([dsv, "tag", "B"], ds)
        details.append(f"1% edit ({changed} label files: {expect}); add -A {t_add2:.2f} s + commit {t_commit2:.2f} s (context only)")

        # D1
        def d1():
            return timed([dsv, "diff", "A", "B", "--stat"], ds)[0]
        run([dsv, "diff", "A", "B", "--stat"], ds)  # warm the page cache
        v, samples = median_of(args.reps, d1)
        p = run([dsv, "diff", "A", "B", "--stat"], ds, env={"DSV_DEBUG_READS": "1"})
        reads = p.stderr.decode().strip()
        def base_diff():
            t = time.perf_counter()
            subprocess.run(["diff", "-rq", str(work / "labels_A"), str(ds / "labels")], capture_output=True)
            return time.perf_counter() - t
        base_diff()
        b, bs = median_of(args.reps, base_diff)
        row("D1", "`dsv diff A B --stat`", v, "`diff -rq` of the label dirs", b, 1.0)
        details.append(f"D1 samples {[round(s, 3) for s in samples]}, diff -rq samples {[round(s, 3) for s in bs]}; {reads}")

        # D2 + correctness
        def d2():
            return timed([dsv, "diff", "A", "B", "--json"], ds)[0]
        p = run([dsv, "diff", "A", "B", "--json"], ds)
        doc = json.loads(p.stdout)
        got = {"moved": 0, "reclassified": 0, "removed": 0, "added": 0}
        for lf in doc["labels"]:
            for fr in lf["frames"]:
                for ch in fr["changes"]:
                    got[ch["kind"]] = got.get(ch["kind"], 0) + 1
        correct = got == expect and len(doc["labels"]) == changed
        details.append(f"D2 correctness: expected {expect}, dsv reported {got} in {len(doc['labels'])} label files: {'OK' if correct else 'MISMATCH'}")
        v, samples = median_of(args.reps, d2)
        changed_paths = [ds / lf["path"] for lf in doc["labels"]]
        def base_read():
            t = time.perf_counter()
            n = 0
            for pth in changed_paths:
                rel = pth.relative_to(ds / "labels")
                for f in (pth, work / "labels_A" / rel):
                    for line in f.read_text().splitlines():
                        n += len(line.split())
            return time.perf_counter() - t
        base_read()
        b, bs = median_of(args.reps, base_read)
        row("D2", "`dsv diff A B --json` (label detail)", v, "Python read+split of both versions of the changed files", b, 3.0)
        details.append(f"D2 samples {[round(s, 3) for s in samples]}; JSON {len(p.stdout) / 1e6:.1f} MB")
        if not correct:
            rows[-1] = rows[-1][:-1] + (False,)

    # S1 / S2
    cache = ds / ".dsv" / "cache"
    def s1():
        shutil.rmtree(cache, ignore_errors=True)
        return timed([dsv, "stats", "B"], ds)[0]
    def s2():
        return timed([dsv, "stats", "B"], ds)[0]
    def base_cat():
        t = time.perf_counter()
        subprocess.run(f"find labels -type f -print0 | xargs -0 cat > /dev/null", shell=True, cwd=ds)
        return time.perf_counter() - t
    base_cat()
    b, bs = median_of(args.reps, base_cat)
    v1, samples1 = median_of(args.reps, s1)
    v2, samples2 = median_of(args.reps, s2)
    row("S1", "`dsv stats B`, no cache", v1, "`cat` of every label file", b, 2.0)
    row("S2", "`dsv stats B`, cache warm", v2, "`cat` of every label file", b, 0.3)
    # Incremental: stats of A with B's cache (99% of label files shared).
    shutil.rmtree(cache, ignore_errors=True)
    run([dsv, "stats", "B"], ds)
    t_inc, _ = timed([dsv, "stats", "A"], ds)
    details.append(f"S1 samples {[round(s, 3) for s in samples1]}, S2 samples {[round(s, 3) for s in samples2]}, cat samples {[round(s, 3) for s in bs]}; stats A right after stats B (cache of B only; 1% of label files differ): {t_inc:.2f} s")

    if not args.reuse:
        # C1
        coco = work / "coco.json"
        log(f"writing a {args.coco_mb} MB COCO file")
        size = make_coco(coco, args.coco_mb)
        def c1():
            return timed([dsv, "labels", "--count", str(coco)], work)[0]
        def base_json():
            t = time.perf_counter()
            with open(coco) as f:
                json.load(f)
            return time.perf_counter() - t
        c1()
        v, samples = median_of(args.reps, c1)
        b, bs = median_of(args.reps, base_json)
        mbs = size / 1e6 / v
        rows.append(("C1", f"COCO parse speed, {size / 1e6:.0f} MB file (`dsv labels --count`)", mbs, "Python json.load", size / 1e6 / b, (size / 1e6 / b) / mbs if mbs else float('nan'), 200, "MB/s", mbs >= 200))
        log(f"C1: {mbs:.0f} MB/s (json.load {size / 1e6 / b:.0f} MB/s)")
        details.append(f"C1 samples {[round(s, 3) for s in samples]} s, json.load samples {[round(s, 3) for s in bs]} s")

    wall = time.time() - t_start
    lines = [BEGIN_MARK, "## Label diff, statistics and parsing (`bench/labels.py`)", ""]
    cmd = "python3 bench/labels.py " + " ".join(a for a in sys.argv[1:])
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines += [
        f"- Command: `{cmd}`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; wall time {wall / 60:.1f} min; load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        f"- dsv: commit {commit}; medians of {args.reps} runs after a warm-up; page cache warm",
        "",
        "| # | measurement | dsv | baseline | dsv / baseline | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, what, value, base_name, base, ratio, target, unit, ok in rows:
        if unit == "MB/s":
            lines.append(f"| {key} | {what} | {value:.0f} MB/s | {base_name} {base:.0f} MB/s | {1 / ratio if ratio else float('nan'):.2f}x its speed | >= {target} MB/s | {'PASS' if ok else 'FAIL'} |")
        else:
            lines.append(f"| {key} | {what} | {value:.3f} s | {base_name} {base:.3f} s | {ratio:.2f} | < {target} s | {'PASS' if ok else 'FAIL'} |")
    lines += ["", "Details:", ""] + [f"- {d}" for d in details] + ["", END_MARK]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_doc:
        doc_path = ROOT / "docs" / "benchmarks.md"
        text = doc_path.read_text()
        begin, end = (BEGIN_MARK, END_MARK) if not args.reuse else (REUSE_BEGIN, REUSE_END)
        if args.reuse:
            section = section.replace(BEGIN_MARK, REUSE_BEGIN).replace(END_MARK, REUSE_END).replace(
                "## Label diff, statistics and parsing (`bench/labels.py`)", "### Statistics only (`bench/labels.py --reuse`)")
        if begin in text and end in text:
            pre, rest = text.split(begin, 1)
            _, post = rest.split(end + "\n", 1) if end + "\n" in rest else rest.split(end, 1)
            text = pre + section + post
        else:
            text = text.rstrip("\n") + "\n\n" + section
        doc_path.write_text(text)
        log(f"updated {doc_path}")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
