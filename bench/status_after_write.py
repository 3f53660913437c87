#!/usr/bin/env python3
"""The first `dsv status` after a write of the index, against a baseline build.

Issue 23: status in time proportional to the changes. A status that finds the
index recorded as hashing to HEAD's tree reads neither HEAD's trees nor the whole
index; commands that write the index and know that tree (commit, switch, reset,
merge, ...) record it. Before that, the first status after each of them read and
hashed the whole index.

One tree of N files (`--files`, directories of 1,000), one repository. Each round
changes one file and, for each build in turn (baseline, then `--dsv`), runs
`commit -a` then times the first `status` after it and a second one (which the
baseline also answers from the record its first status left). Medians and ranges
(wall and CPU) are printed as a markdown table with the load average before and
after. `--fsmonitor` turns the file-system monitor on for both builds.
Standard library only.

    python3 bench/status_after_write.py --dsv target/debug/dsv --baseline /tmp/dsv-before
    python3 bench/status_after_write.py ... --files 100000 --runs 5 --workdir /tmp/saw --keep
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENV = dict(os.environ, DSV_AUTHOR_NAME="bench", DSV_AUTHOR_EMAIL="bench@example.com")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one command."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def build_tree(root: Path, n: int, dsv: str) -> None:
    for i in range(n):
        d = root / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:07d}.txt").write_text(f"file {i}\n")
    run([dsv, "init", "-q", "."], root)
    log(f"add -A of {n} files ...")
    run([dsv, "add", "-A"], root)
    run([dsv, "commit", "-q", "-m", "base"], root)


def span(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.0f} ms ({min(xs) * 1000:.0f}–{max(xs) * 1000:.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsv", required=True)
    ap.add_argument("--baseline", required=True, help="an older dsv build, measured in the same run")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/dsv-status-after-write")
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the tree")
    ap.add_argument("--op", choices=["commit", "switch", "reset"], default="commit",
                    help="the write before the status: `commit -a` of one changed file, "
                         "a switch between two branches that differ in one file, or a "
                         "`reset --hard` between those two commits")
    ap.add_argument("--fsmonitor", action="store_true",
                    help="with core.fsmonitor on (the daemon started by --dsv)")
    a = ap.parse_args()
    root = Path(a.workdir)
    builds = {"baseline": os.path.abspath(a.baseline), "dsv": os.path.abspath(a.dsv)}
    if not (root / ".dsv").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        build_tree(root, a.files, builds["baseline"])
    if a.fsmonitor:
        run([builds["dsv"], "config", "core.fsmonitor", "true"], root)
        run([builds["dsv"], "fsmonitor", "start"], root)
        run([builds["dsv"], "status"], root)
    ids = {}
    if a.op in ("switch", "reset"):
        dsv = builds["dsv"]
        # A reused tree may be on either branch from an earlier run.
        run([dsv, "switch", "-q", "-f", "main"], root)
        subprocess.run([dsv, "branch", "-D", "other"], cwd=root, env=ENV, capture_output=True)
        run([dsv, "branch", "other"], root)
        (root / "d0000" / "f0000000.txt").write_text(f"main {time.time_ns()}\n")
        run([dsv, "commit", "-q", "-a", "-m", "main"], root)
        for b in ("main", "other"):
            ids[b] = subprocess.run([dsv, "rev-parse", b], cwd=root, env=ENV, check=True,
                                    capture_output=True, text=True).stdout.strip()
    load_before = loadavg()
    times = {b: {"commit": [], "first": [], "second": []} for b in builds}
    n = 0
    for r in range(a.runs):
        for name, dsv in builds.items():
            if a.op in ("switch", "reset"):
                n += 1
                target = "other" if n % 2 else "main"
                if a.op == "switch":
                    argv = [dsv, "switch", "-q", target]
                else:
                    # Moves main between the two commits.
                    argv = [dsv, "reset", "-q", "--hard", ids[target]]
                times[name]["commit"].append(run(argv, root))
                times[name]["first"].append(run([dsv, "status"], root))
                times[name]["second"].append(run([dsv, "status"], root))
                continue
            (root / "d0000" / "f0000000.txt").write_text(f"round {r} {name}\n")
            times[name]["commit"].append(run([dsv, "commit", "-q", "-a", "-m", f"{name} {r}"], root))
            times[name]["first"].append(run([dsv, "status"], root))
            times[name]["second"].append(run([dsv, "status"], root))
            log(f"round {r} {name}: " + ", ".join(f"{k} {v[-1][0]:.3f}" for k, v in times[name].items()))
    load_after = loadavg()
    if a.op == "reset":
        run([builds["dsv"], "reset", "-q", "--hard", ids["main"]], root)
    if a.fsmonitor:
        run([builds["dsv"], "fsmonitor", "stop"], root)
        run([builds["dsv"], "config", "core.fsmonitor", "false"], root)
    monitor = ", monitor on" if a.fsmonitor else ""
    print(f"{a.files} files{monitor}, {a.runs} rounds, load average {load_before} before, "
          f"{load_after} after; medians (ranges)\n")
    print("| | wall, baseline | wall, this build | wall ratio | CPU, baseline | CPU, this build | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    write = {"switch": "`switch` (one file differs)",
             "reset": "`reset --hard` (one file differs)",
             "commit": "`commit -a` (one file changed)"}[a.op]
    for k, label in [("commit", write),
                     ("first", "first `status` after it"),
                     ("second", "second `status`")]:
        cells = []
        for i in (0, 1):
            b = [x[i] for x in times["baseline"][k]]
            d = [x[i] for x in times["dsv"][k]]
            ratio = statistics.median(d) / statistics.median(b)
            cells.append(f"{span(b)} | {span(d)} | {ratio:.2f}x")
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
