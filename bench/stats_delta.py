#!/usr/bin/env python3
"""`stats` of a new commit: derived from its parent's cached statistics (issue 23 item 4).

Python 3.11, standard library only. Builds the data set of bench/scale.py (N frames,
one YOLO file per frame, 1,000 per directory), commits it as A, changes the labels of
1% of the frames (scale.py's edit) and commits that as B, then times, each as its own
process and each the median of `--runs`:

    cold   `stats A` with `.dsv/cache` removed (every label file read and parsed)
    warm   `stats A` again (one cache lookup)
    new    `stats B` with the cache as `stats A` left it: B's statistics are new,
           derived from A's by the tree diff A -> B (what changed is read, the rest not)
    coldB  `stats B` with `.dsv/cache` removed (the full computation, for comparison)

It checks that `stats --json B` is the same whether derived or computed from scratch.

    python3 bench/stats_delta.py --dsv target/debug/dsv --frames 100000
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import edit, generate, log, run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsv", required=True)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", help="work directory (default: a temporary one, removed)")
    a = ap.parse_args()
    dsv = str(Path(a.dsv).resolve())
    base = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="dsv-stats-delta-"))
    ds = base / "ds"
    try:
        if ds.exists():
            shutil.rmtree(ds)
        ds.mkdir(parents=True)
        env = dict(os.environ, DSV_AUTHOR_NAME="bench", DSV_AUTHOR_EMAIL="bench@example.com")

        def cmd(*args, out=None):
            return run([dsv, *args], ds, env, out)

        log(f"{a.frames:,} frames: generating")
        generate(ds, a.frames, False)
        cmd("init")
        cmd("add", "-A")
        cmd("commit", "-q", "-m", "A")
        cmd("tag", "A")
        changed = edit(ds, a.frames, False)
        cmd("add", "-A")
        cmd("commit", "-q", "-m", "B")
        cmd("tag", "B")
        cache = ds / ".dsv" / "cache"
        saved = base / "cache-after-A"

        def fresh():
            shutil.rmtree(cache, ignore_errors=True)

        rows: dict[str, list[float]] = {k: [] for k in ("cold", "warm", "new", "coldB")}
        for _ in range(a.runs):
            fresh()
            rows["cold"].append(cmd("stats", "A")[0])
            rows["warm"].append(cmd("stats", "A")[0])
            shutil.rmtree(saved, ignore_errors=True)
            shutil.copytree(cache, saved)
            rows["new"].append(cmd("stats", "B")[0])
            fresh()
            rows["coldB"].append(cmd("stats", "B")[0])
        # Derived and computed from scratch give the same bytes.
        shutil.rmtree(cache)
        shutil.copytree(saved, cache)
        with open(base / "derived.json", "wb") as f:
            cmd("stats", "--json", "B", out=f)
        fresh()
        with open(base / "full.json", "wb") as f:
            cmd("stats", "--json", "B", out=f)
        same = (base / "derived.json").read_bytes() == (base / "full.json").read_bytes()
        load = os.getloadavg()[0]
        print(f"{a.frames:,} frames, {changed:,} label files changed (1%), median of {a.runs}, "
              f"load average {load:.1f}, {dsv}")
        print(f"{'row':<6} {'seconds':>8}  runs")
        for k, v in rows.items():
            print(f"{k:<6} {statistics.median(v):>8.3f}  {' '.join(f'{x:.3f}' for x in v)}")
        cold, new = statistics.median(rows["cold"]), statistics.median(rows["new"])
        print(f"new/cold {new / cold:.3f}; derived == from scratch: {same}")
        if not same:
            raise SystemExit("stats --json B differs between derived and from scratch")
    finally:
        if not a.work:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
