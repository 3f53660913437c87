#!/usr/bin/env python3
"""Benchmark of `dsv export` (issue 18): a full export against `cp -r` of the
same frames, and an update of an earlier export after a 1% relabel against
writing the changed files alone.

Python 3.11, standard library only. Every figure is a ratio against a baseline
run in the same invocation (the machines are shared and noisy).

    python3 bench/export.py                  # N=100000 frames of 10 KiB
    python3 bench/export.py --frames 20000   # smaller
    python3 bench/export.py --dsv target/debug/dsv
    python3 bench/export.py --update-only --dsv NEW --baseline OLD   # two builds compared

Frames are minimal JPEGs (a header with the size, then random bytes), each with
a YOLO label file of 1-3 boxes over 10 classes (`data.yaml`).
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FRAME_SIZE = 10 * 1024
CHANGED = 0.01
RUNS = 3
# Relabels timed by --baseline.
AB_ROUNDS = 4
# CPU seconds (user + system) of the last `run`: on a loaded machine the wall
# time of one run is mostly waiting for a core.
LAST_CPU = [0.0]


def jpeg(w: int, h: int, n: int, rnd: random.Random) -> bytes:
    """SOI, a baseline SOF0 header giving w x h, random scan bytes, EOI."""
    sof = bytes([0xFF, 0xC0, 0x00, 0x11, 0x08]) + h.to_bytes(2, "big") + w.to_bytes(2, "big")
    sof += bytes([0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01])
    body = rnd.randbytes(max(0, n - len(sof) - 4)).replace(b"\xff", b"\x00")
    return b"\xff\xd8" + sof + body + b"\xff\xd9"


def label(rnd: random.Random) -> str:
    lines = []
    for _ in range(rnd.randint(1, 3)):
        lines.append(f"{rnd.randrange(10)} 0.5 0.5 {rnd.uniform(0.1, 0.5):.6f} {rnd.uniform(0.1, 0.5):.6f}")
    return "\n".join(lines) + "\n"


def run(dsv: str, root: Path, *args: str) -> float:
    env = dict(os.environ, DSV_AUTHOR_NAME="bench", DSV_AUTHOR_EMAIL="bench@example.com")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([dsv, *args], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--dsv", default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--formats", default="yolo,coco,voc,kitti")
    ap.add_argument("--update-only", action="store_true",
                    help="only the update after a 1%% relabel (one full YOLO export first)")
    ap.add_argument("--baseline", default=None, metavar="OLD",
                    help="with --update-only: another dsv binary whose update is timed too, "
                         "alternately with --dsv's over %d relabels, each updating its own "
                         "earlier export" % AB_ROUNDS)
    a = ap.parse_args()
    dsv = a.dsv or str(REPO_ROOT / "target/release/dsv")
    if not Path(dsv).exists():
        dsv = str(REPO_ROOT / "target/debug/dsv")
    dsv = str(Path(dsv).resolve())
    work = Path(tempfile.mkdtemp(prefix="dsv-bench-export-", dir=a.workdir))
    try:
        if a.baseline:
            if not a.update_only:
                ap.error("--baseline needs --update-only")
            return bench_ab(dsv, str(Path(a.baseline).resolve()), work, a.frames)
        return bench(dsv, work, a.frames, a.formats.split(","), a.update_only)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_repo(dsv: str, work: Path, n: int, rnd: random.Random) -> Path:
    """The repository of `n` frames, committed, its query index built."""
    root = work / "repo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text("names: [" + ", ".join(f"c{i}" for i in range(10)) + "]\n")
    for i in range(n):
        (root / "images" / f"{i:07}.jpg").write_bytes(jpeg(640, 480, FRAME_SIZE, rnd))
        (root / "labels" / f"{i:07}.txt").write_text(label(rnd))
    run(dsv, root, "init", "-q", ".")
    run(dsv, root, "add", "-A")
    run(dsv, root, "commit", "-q", "-m", "frames")
    time.sleep(1.1)
    run(dsv, root, "status")
    run(dsv, root, "query", "true", "--count")
    return root


def bench_ab(dsv: str, base: str, work: Path, n: int) -> int:
    """The update after a 1% relabel by two builds, alternately, each over its
    own earlier export of the same commit; against copying the changed files."""
    rnd = random.Random(18)
    root = make_repo(dsv, work, n, rnd)
    bins = {"new": dsv, "baseline": base}
    outs = {k: work / f"out-{k}" for k in bins}
    for k, b in bins.items():
        run(b, root, "export", "--format", "yolo", "--out", str(outs[k]), "--link", "copy")
    print(f"dsv: {dsv}\nbaseline: {base}\nframes: {n} x {FRAME_SIZE // 1024} KiB + YOLO labels")
    print("\n| round | build | update s | CPU s | changed files alone s | ratio |\n|---|---|---:|---:|---:|---:|")
    ratios: dict[str, list[float]] = {k: [] for k in bins}
    for r in range(AB_ROUNDS):
        changed = rnd.sample(range(n), max(1, int(n * CHANGED)))
        for i in changed:
            (root / "labels" / f"{i:07}.txt").write_text(label(rnd) + "0 0.25 0.25 0.1 0.1\n")
        run(dsv, root, "add", "-A")
        run(dsv, root, "commit", "-q", "-m", f"relabel 1% ({r})")
        time.sleep(1.1)
        run(dsv, root, "status")
        run(dsv, root, "query", "true", "--count")
        dest = work / f"changed-{r}"
        (dest / "images").mkdir(parents=True)
        (dest / "labels").mkdir()
        t = time.perf_counter()
        for i in changed:
            shutil.copyfile(root / "images" / f"{i:07}.jpg", dest / "images" / f"{i:07}.jpg")
            shutil.copyfile(root / "labels" / f"{i:07}.txt", dest / "labels" / f"{i:07}.txt")
        alone = time.perf_counter() - t
        shutil.rmtree(dest)
        # The order alternates: neither build always runs on a warmer cache.
        for k in (["baseline", "new"] if r % 2 == 0 else ["new", "baseline"]):
            s = run(bins[k], root, "export", "--format", "yolo", "--out", str(outs[k]), "--link", "copy")
            ratios[k].append(s / alone)
            print(f"| {r} | {k} | {s:.2f} | {LAST_CPU[0]:.2f} | {alone:.2f} | {s / alone:.1f}x |")
    for k, v in ratios.items():
        print(f"{k}: median {statistics.median(v):.1f}x the changed files alone")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


def bench(dsv: str, work: Path, n: int, formats: list[str], update_only: bool = False) -> int:
    rnd = random.Random(18)
    root = make_repo(dsv, work, n, rnd)  # the index built once, as after any commit

    print(f"dsv: {dsv}\nframes: {n} x {FRAME_SIZE // 1024} KiB + YOLO labels")
    out: dict[str, float] = {}
    cp = []
    for k in range(RUNS):
        dest = work / f"cp{k}"
        cp.append(timed(["cp", "-r", str(root / "images"), str(dest)], work))
        shutil.rmtree(dest)
    out["cp -r images/"] = statistics.median(cp)
    for fmt in ["yolo"] + [f for f in formats if f != "yolo" and not update_only]:
        for link in ("copy",) if update_only else ("copy", "reflink"):
            ts = []
            for k in range(1 if update_only else RUNS if fmt == "yolo" else 1):
                dest = work / f"out-{fmt}-{link}-{k}"
                ts.append(run(dsv, root, "export", "--format", fmt, "--out", str(dest), "--link", link))
                if not (fmt == "yolo" and link == "copy" and k == 0):
                    shutil.rmtree(dest)
            out[f"export {fmt} --link {link}"] = statistics.median(ts)

    # 1% of the frames relabelled, committed; the earlier YOLO export updated.
    changed = rnd.sample(range(n), max(1, int(n * CHANGED)))
    for i in changed:
        (root / "labels" / f"{i:07}.txt").write_text(label(rnd) + "0 0.25 0.25 0.1 0.1\n")
    run(dsv, root, "add", "-A")
    run(dsv, root, "commit", "-q", "-m", "relabel 1%")
    time.sleep(1.1)
    run(dsv, root, "status")
    run(dsv, root, "query", "true", "--count")
    earlier = work / "out-yolo-copy-0"
    out["update after a 1% relabel"] = run(dsv, root, "export", "--format", "yolo", "--out", str(earlier), "--link", "copy")
    update_cpu = LAST_CPU[0]
    # Writing the changed files alone: their images and labels copied.
    dest = work / "changed"
    (dest / "images").mkdir(parents=True)
    (dest / "labels").mkdir()
    t = time.perf_counter()
    for i in changed:
        shutil.copyfile(root / "images" / f"{i:07}.jpg", dest / "images" / f"{i:07}.jpg")
        shutil.copyfile(root / "labels" / f"{i:07}.txt", dest / "labels" / f"{i:07}.txt")
    out["copy of the changed files alone"] = time.perf_counter() - t
    dest2 = work / "fresh"
    out["full export of the new version (copy)"] = run(dsv, root, "export", "--format", "yolo", "--out", str(dest2), "--link", "copy")
    full_cpu = LAST_CPU[0]
    # An update that changes nothing: the fixed cost of an update.
    out["update again (nothing changed)"] = run(dsv, root, "export", "--format", "yolo", "--out", str(earlier), "--link", "copy")
    noop_cpu = LAST_CPU[0]

    base = out["cp -r images/"]
    print(f"\n| measurement | seconds | ratio |\n|---|---:|---:|")
    for k, v in out.items():
        if k.startswith("export"):
            ratio = f"{v / base:.2f}x cp -r"
        elif k == "update after a 1% relabel":
            ratio = (f"{v / out['copy of the changed files alone']:.1f}x the changed files alone, "
                     f"{v / out['full export of the new version (copy)']:.2f}x a full export")
        else:
            ratio = ""
        print(f"| {k} | {v:.2f} | {ratio} |")
    print(f"\nCPU (user + system) seconds: update {update_cpu:.2f}, update with nothing changed "
          f"{noop_cpu:.2f}, full export {full_cpu:.2f}; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
