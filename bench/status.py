#!/usr/bin/env python3
"""`dsv status` with nothing changed against `git status` and a bare parallel walk.

Issue 23 item 2: without a monitor, `dsv status` <= 0.8x `git status` on the same
tree, and within 1.3x of a parallel walk that only lstats every file (the
physical floor, `examples/bench_floor.rs walk`). Standard library only.

One tree holds both repositories: `.git` and `.dsv` side by side (git excludes
`.dsv/` through `.git/info/exclude`; dsv skips `.git` at the root), so the three
commands walk the very same directories and inodes. The tree is N files of a few
dozen distinct bytes each in directories of 1,000 (`--files`); git's objects are
packed after `git add` (`git repack -adq`) so a 1M tree does not leave a million
loose objects behind.

    python3 bench/status.py --dsv target/release/dsv --floor target/release/examples/bench_floor
    python3 bench/status.py ... --files 1000000 --runs 5
    python3 bench/status.py ... --workdir /tmp/st --keep       # reuse the tree next time
    python3 bench/status.py ... --baseline /tmp/dsv-before     # an older build, same run

Timing: every command is run once to warm up (twice for status, so the racy-
timestamp window has passed and both indexes are refreshed), then `--runs` rounds,
each running dsv, git and the walk one after another; medians and ranges are
printed as a markdown table with the load average before and after.
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

PER_DIR = 1000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


CPU: list[float] = []  # user + system seconds of the last command run


def run(argv, cwd, env=None, capture=True) -> tuple[float, bytes]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[:] = [(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)]
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr.decode()[:2000]}")
    return dt, p.stdout or b""


def make_tree(root: Path, n: int) -> None:
    data = root / "data"
    for i in range(n):
        d = data / f"d{i // PER_DIR:05d}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True, exist_ok=True)
        # Distinct contents of a few dozen bytes: a placeholder frame.
        (d / f"f{i:08d}.bin").write_bytes(b"frame %d of the status benchmark\n" % i)
        if i and i % 100000 == 0:
            log(f"  {i} files")


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", required=True)
    ap.add_argument("--baseline", default=None,
                    help="another dsv binary (e.g. the build before a change), timed in the same rounds")
    ap.add_argument("--floor", required=True, help="the bench_floor example binary")
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the tree (and reuse a kept one)")
    ap.add_argument("--git-only", action="store_true", help="only make the tree and its git repository")
    args = ap.parse_args()
    dsv = str(Path(args.dsv).resolve())
    floor = str(Path(args.floor).resolve())
    work = Path(args.workdir or f"/tmp/dsv-status-{args.files}")
    tree = work / "tree"
    env = dict(os.environ, DSV_AUTHOR_NAME="bench", DSV_AUTHOR_EMAIL="bench@example.com",
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    git_ready = work / f"git-ready-{args.files}"
    dsv_ready = work / f"dsv-ready-{args.files}"
    if not git_ready.exists():
        if work.exists():
            shutil.rmtree(work)
        tree.mkdir(parents=True)
        log(f"creating {args.files} files under {tree}")
        t = time.perf_counter()
        make_tree(tree, args.files)
        log(f"  {time.perf_counter() - t:.1f} s")
        run(["git", "init", "-q", "-b", "main"], tree)
        (tree / ".git" / "info" / "exclude").write_text(".dsv/\n")
        t, _ = run(["git", "add", "-A"], tree, env)
        log(f"git add -A {t:.1f} s")
        t, _ = run(["git", "commit", "-q", "-m", "tree"], tree, env)
        log(f"git commit {t:.1f} s")
        t, _ = run(["git", "repack", "-adq"], tree, env)
        run(["git", "prune-packed"], tree, env)
        log(f"git repack {t:.1f} s")
        git_ready.write_text("")
    if args.git_only:
        return 0
    if not dsv_ready.exists():
        shutil.rmtree(tree / ".dsv", ignore_errors=True)
        run([dsv, "init"], tree, env)
        t, _ = run([dsv, "add", "-A"], tree, env)
        log(f"dsv add -A {t:.1f} s")
        t, _ = run([dsv, "commit", "-m", "tree"], tree, env)
        log(f"dsv commit {t:.1f} s")
        dsv_ready.write_text("")
    # Past the racy-timestamp window, so both indexes end up trusted by the warm-ups.
    time.sleep(3)
    cmds = {
        "dsv status": [dsv, "status"],
        "git status": ["git", "status"],
        "walk": [floor, "walk", str(tree)],
    }
    if args.baseline:
        cmds["dsv status (baseline)"] = [str(Path(args.baseline).resolve()), "status"]
    outs = {}
    for name, argv in cmds.items():
        for _ in range(2):
            _, outs[name] = run(argv, tree, env)
    log("dsv status says: " + outs["dsv status"].decode().strip().replace("\n", " | "))
    log("git status says: " + outs["git status"].decode().strip().replace("\n", " | "))
    walked = int(outs["walk"].split()[1])
    if walked != args.files:
        raise SystemExit(f"the walk found {walked} files, expected {args.files}")
    load_before = loadavg()
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(args.runs):
        for name, argv in cmds.items():
            t, _ = run(argv, tree, env)
            times[name].append(t)
            cpu[name].append(CPU[0])
    load_after = loadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"\n{args.files} files in directories of {PER_DIR}; {args.runs} rounds (dsv, git, walk in turn); "
          f"load average {load_before} before, {load_after} after\n")
    print("| command | wall median | wall range | CPU (user+sys) median | CPU range |")
    print("|---|---|---|---|---|")
    for k, v in times.items():
        c = cpu[k]
        print(f"| {k} | {med[k] * 1000:.0f} ms | {min(v) * 1000:.0f}-{max(v) * 1000:.0f} ms "
              f"| {mcpu[k] * 1000:.0f} ms | {min(c) * 1000:.0f}-{max(c) * 1000:.0f} ms |")
    print()
    g = med["dsv status"] / med["git status"]
    w = med["dsv status"] / med["walk"]
    gc = mcpu["dsv status"] / mcpu["git status"]
    wc = mcpu["dsv status"] / mcpu["walk"]
    print(f"wall: dsv/git {g:.2f} (target <= 0.80: {'PASS' if g <= 0.8 else 'FAIL'}); "
          f"dsv/walk {w:.2f} (target <= 1.30: {'PASS' if w <= 1.3 else 'FAIL'})")
    print(f"CPU:  dsv/git {gc:.2f}; dsv/walk {wc:.2f} (on a loaded machine the wall time is mostly "
          f"waiting for a core, and CPU time is the figure that compares)")
    if args.baseline:
        b = "dsv status (baseline)"
        print(f"dsv / baseline: wall {med['dsv status'] / med[b]:.2f}, CPU {mcpu['dsv status'] / mcpu[b]:.2f}")
    if not args.keep:
        log(f"removing {work}")
        shutil.rmtree(work)
    return 0 if g <= 0.8 and w <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
