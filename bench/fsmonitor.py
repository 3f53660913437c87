#!/usr/bin/env python3
"""`dsv status` with the file-system monitor against a full scan and `git status`.

Builds one tree of N small files (default 100,000 in directories of 1,000),
commits it with dsv and with git (git with its own fsmonitor off and on where
`core.fsmonitor=true` is supported, plus `core.untrackedCache`), then changes
CHANGED files and times, warm, in the same run and alternating:

  - dsv status with the monitor (core.fsmonitor = true, daemon running)
  - dsv status with a full scan (DSV_FSMONITOR=0)
  - git status (git's builtin fsmonitor if it has one, untracked cache on)
  - git status with no fsmonitor

Each sample changes a fresh set of CHANGED files first (so the monitor has real
work), then runs the command once. Medians of RUNS samples are printed as a
markdown table for docs/benchmarks.md.

    python3 bench/fsmonitor.py --files 100000 --changed 100 --runs 7 --dsv target/release/dsv
    python3 bench/fsmonitor.py ... --baseline /tmp/dsv-before   # an older build, same run
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run(cmd, cwd, env=None, check=True):
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed: {r.stderr.decode(errors='replace')}")
    return r


def timed(cmd, cwd, env):
    t = time.perf_counter()
    run(cmd, cwd, env)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dsv", default=str(REPO_ROOT / "target/release/dsv"))
    ap.add_argument("--baseline", default=None,
                    help="another dsv binary (e.g. the build before a change), timed in the same rounds")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir, removed)")
    args = ap.parse_args()
    dsv = str(Path(args.dsv).resolve())
    base = str(Path(args.baseline).resolve()) if args.baseline else None

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="dsv-fsmon-bench-"))
    tree = work / "tree"
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("DSV_") or k.startswith("GIT_"):
            del env[k]
    env.update(DSV_AUTHOR_NAME="b", DSV_AUTHOR_EMAIL="b@example.com",
               GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")
    full_env = dict(env, DSV_FSMONITOR="0")
    try:
        t0 = time.perf_counter()
        tree.mkdir(parents=True)
        paths = []
        for i in range(args.files):
            d = tree / f"d{i // args.per_dir:05d}"
            if i % args.per_dir == 0:
                d.mkdir()
            p = d / f"f{i:07d}.txt"
            p.write_bytes(f"frame {i}\n".encode())
            paths.append(p)
        print(f"created {args.files} files in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        run([dsv, "init", "-q"], tree, env)
        run([dsv, "add", "-A", "-q"], tree, env)
        run([dsv, "commit", "-q", "-m", "base"], tree, env)
        run(["git", "init", "-q"], tree, env)
        (tree / ".git/info/exclude").write_text(".dsv/\n")
        run(["git", "add", "-A"], tree, env)
        run(["git", "commit", "-q", "-m", "base"], tree, env)
        run(["git", "config", "core.untrackedCache", "true"], tree, env)
        git_fsmon = run(["git", "fsmonitor--daemon", "start"], tree, env, check=False).returncode == 0
        git_fsmon_env = dict(env)
        git_plain_env = dict(env)
        if git_fsmon:
            git_fsmon_env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="core.fsmonitor",
                                 GIT_CONFIG_VALUE_0="true")
        run([dsv, "config", "core.fsmonitor", "true"], tree, env)
        t = time.perf_counter()
        run([dsv, "fsmonitor", "start", "-q"], tree, env)
        print(f"dsv fsmonitor start: {time.perf_counter() - t:.2f} s", file=sys.stderr)

        # Settle: index refreshed, tokens saved, caches warm (racy entries older than 2 s).
        time.sleep(2.5)
        for _ in range(2):
            run([dsv, "status"], tree, env)
            run([dsv, "status"], tree, full_env)
            run(["git", "status"], tree, git_fsmon_env)
            run(["git", "status"], tree, git_plain_env)

        samples = {"dsv monitored": [], "dsv full scan": [], "git status": [],
                   "git status (fsmonitor)": [], "baseline monitored": [], "baseline full scan": []}
        k = 0
        for r in range(args.runs):
            for name, cmd, e in [
                ("dsv monitored", [dsv, "status"], env),
                ("dsv full scan", [dsv, "status"], full_env),
                ("git status", ["git", "status"], git_plain_env),
                ("git status (fsmonitor)", ["git", "status"], git_fsmon_env),
                ("baseline monitored", [base, "status"], env),
                ("baseline full scan", [base, "status"], full_env),
            ]:
                if name == "git status (fsmonitor)" and not git_fsmon:
                    continue
                if name.startswith("baseline") and not base:
                    continue
                for j in range(args.changed):
                    p = paths[(k * 7919 + j * 104729) % len(paths)]
                    p.write_bytes(f"changed {r} {j}\n".encode())
                k += 1
                samples[name].append(timed(cmd, tree, e))
        trace = run([dsv, "status"], tree, dict(env, DSV_TRACE_FSMONITOR="1")).stderr.decode()
        load = os.getloadavg()[0]
        print(f"\n{args.files} files, {args.changed} changed per sample, median of {args.runs}; "
              f"load average {load:.1f}; {trace.strip()}")
        print("\n| command | median | min | max |\n|---|---|---|---|")
        for name, v in samples.items():
            if v:
                print(f"| {name} | {statistics.median(v) * 1000:.0f} ms | "
                      f"{min(v) * 1000:.0f} ms | {max(v) * 1000:.0f} ms |")
        git_med = statistics.median(samples["git status"])
        mon = statistics.median(samples["dsv monitored"])
        print(f"\ndsv monitored / git status = {mon / git_med:.2f}")
        if samples["baseline monitored"]:
            for kind in ("monitored", "full scan"):
                ratio = statistics.median(samples[f"dsv {kind}"]) / statistics.median(samples[f"baseline {kind}"])
                print(f"dsv {kind} / baseline {kind} = {ratio:.2f}")
        run([dsv, "fsmonitor", "stop", "-q"], tree, env, check=False)
        if git_fsmon:
            run(["git", "fsmonitor--daemon", "stop"], tree, env, check=False)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
