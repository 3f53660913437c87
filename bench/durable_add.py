#!/usr/bin/env python3
"""Durable `add -A && commit` against the disk's speed (issue 23 item 5).

Target: `dsv init && dsv add -A && dsv commit` of 100,000 files of 10 KiB with
packs fsynced (the default, `core.fsync = true`) <= 1.1x the sum of two floors
measured in the same run (`examples/bench_floor.rs`):

- hash: a parallel walk of the tree, then every file read and BLAKE3-hashed on
  every core (what storing must do at least with the data);
- write: the bytes of the packs dsv wrote, written to one new file in 1 MiB
  blocks and fsynced once (what making them durable costs at least).

Standard library only.

    python3 bench/durable_add.py --dsv target/release/dsv --floor target/release/examples/bench_floor
    python3 bench/durable_add.py ... --files 20000 --runs 3 --workdir /tmp/da --keep

Each round runs dsv (a fresh `.dsv/` in the same tree), the hash floor and the
write floor in turn; the page cache holds the tree throughout (it is read once
before the first round), and `sync` runs, untimed, before each timed command.
`DSV_TRACE_PERF=1` phase timings of the last dsv run are printed when available.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

KiB = 1024
N_DIRS = 100


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(argv, cwd, env=None) -> tuple[float, bytes, bytes]:
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr.decode()[:2000]}")
    return dt, p.stdout, p.stderr


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", required=True)
    ap.add_argument("--floor", required=True, help="the bench_floor example binary")
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--size", type=int, default=10 * KiB)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the tree (and reuse a kept one)")
    args = ap.parse_args()
    dsv = str(Path(args.dsv).resolve())
    floor = str(Path(args.floor).resolve())
    work = Path(args.workdir or f"/tmp/dsv-durable-{args.files}")
    tree = work / "tree"
    sink = work / "floor.bin"
    env = dict(os.environ, DSV_AUTHOR_NAME="bench", DSV_AUTHOR_EMAIL="bench@example.com")
    env.pop("DSV_FSYNC", None)
    marker = work / f"ready-{args.files}-{args.size}"
    if not marker.exists():
        if work.exists():
            shutil.rmtree(work)
        log(f"creating {args.files} files of {args.size} random bytes under {tree}")
        for i in range(args.files):
            d = tree / "data" / f"d{i % N_DIRS:03d}"
            if i < N_DIRS:
                d.mkdir(parents=True)
            (d / f"f{i:07d}.bin").write_bytes(os.urandom(args.size))
        marker.write_text("")
    raw = args.files * args.size
    run([floor, "hash", str(tree)], tree)  # warms the page cache
    times: dict[str, list[float]] = {"dsv": [], "hash": [], "write": []}
    phases = b""
    load_before = loadavg()
    pack_bytes = None
    for r in range(args.runs):
        shutil.rmtree(tree / ".dsv", ignore_errors=True)
        subprocess.run(["sync"])
        t0, _, _ = run([dsv, "init"], tree, env)
        t1, _, ph1 = run([dsv, "add", "-A"], tree, dict(env, DSV_TRACE_PERF="1"))
        t2, _, ph2 = run([dsv, "commit", "-m", "tree"], tree, dict(env, DSV_TRACE_PERF="1"))
        phases = b"add:\n" + ph1 + b"commit:\n" + ph2
        times["dsv"].append(t0 + t1 + t2)
        log(f"round {r + 1}: dsv init {t0:.2f} + add {t1:.2f} + commit {t2:.2f} s")
        pack_bytes = dir_bytes(tree / ".dsv" / "packs")
        subprocess.run(["sync"])
        t, out, _ = run([floor, "hash", str(tree)], tree)
        times["hash"].append(t)
        subprocess.run(["sync"])
        t, _, _ = run([floor, "write", str(sink), str(pack_bytes)], tree)
        times["write"].append(t)
        sink.unlink()
        log(f"round {r + 1}: hash {times['hash'][-1]:.2f} s, write {t:.2f} s")
    load_after = loadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    floor_sum = med["hash"] + med["write"]
    ratio = med["dsv"] / floor_sum
    print(f"\n{args.files} files of {args.size} bytes ({raw / 2**20:.0f} MiB; packs {pack_bytes / 2**20:.0f} MiB); "
          f"{args.runs} rounds; load average {load_before} before, {load_after} after\n")
    print("| what | median | range |")
    print("|---|---|---|")
    names = {"dsv": "dsv init + add -A + commit (fsync on)", "hash": "floor: walk + read + BLAKE3 of every file",
             "write": "floor: pack bytes to one file + fsync"}
    for k, v in times.items():
        print(f"| {names[k]} | {med[k]:.2f} s | {min(v):.2f}-{max(v):.2f} s |")
    print(f"| floor sum (hash + write) | {floor_sum:.2f} s | |")
    print(f"\ndsv/(hash+write) {ratio:.2f} (target <= 1.10: {'PASS' if ratio <= 1.1 else 'FAIL'})")
    if phases.strip():
        print("\nphases of the last dsv run (DSV_TRACE_PERF):\n" + phases.decode().strip())
    if not args.keep:
        log(f"removing {work}")
        shutil.rmtree(work)
    return 0 if ratio <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
