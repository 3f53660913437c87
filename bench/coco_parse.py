#!/usr/bin/env python3
"""C1 side by side: `dsv labels --count` on one generated COCO file, two builds.

Python 3.11, standard library only. The file is `bench/labels.py`'s C1 file
(images, then three polygon annotations each). Each repetition runs every
build once, in turn, so that the machine's load (2 shared cores) falls on all
of them alike; the medians and their ratio are printed with the load average
before and after. Also timed: the same file cut short by 100 bytes (a
truncated file: the error path), whose message must be the same for every
build.

    python3 bench/coco_parse.py --dsv target/release/dsv --base /tmp/dsv-base
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labels import make_coco  # noqa: E402


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - t, p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", required=True, help="the build under test")
    ap.add_argument("--base", required=True, help="the build before the change")
    ap.add_argument("--workdir", default="/tmp/dsv-bench-coco")
    ap.add_argument("--coco-mb", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    coco = work / "coco.json"
    if not coco.exists():
        make_coco(coco, args.coco_mb)
    size = coco.stat().st_size
    cut = work / "cut.json"
    data = coco.read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    del data

    builds = {"base": args.base, "new": args.dsv}
    print(f"load average before: {os.getloadavg()}")
    for name, (path, ok) in {"valid": (coco, True), "truncated": (cut, False)}.items():
        samples: dict[str, list[float]] = {k: [] for k in builds}
        outputs: dict[str, set[bytes]] = {k: set() for k in builds}
        for _ in range(args.reps):
            for k, exe in builds.items():
                t, p = timed([exe, "labels", "--count", str(path)])
                if (p.returncode == 0) != ok:
                    raise SystemExit(f"{k} on {name}: exit {p.returncode}\n{p.stderr.decode(errors='replace')}")
                samples[k].append(t)
                outputs[k].add(p.stdout + p.stderr)
        if outputs["base"] != outputs["new"]:
            raise SystemExit(f"{name}: the builds print different things:\n{outputs}")
        med = {k: statistics.median(v) for k, v in samples.items()}
        for k in builds:
            print(f"{name} {k}: median {med[k]:.3f} s ({size / 1e6 / med[k]:.0f} MB/s), samples {[round(s, 3) for s in samples[k]]}")
        print(f"{name}: new/base time ratio {med['new'] / med['base']:.3f}")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
