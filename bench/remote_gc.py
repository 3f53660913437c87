#!/usr/bin/env python3
"""Measure `dsv gc --remote` (issue 20 item 1) on a file:// remote.

Standard library only. The figures are bytes and requests (dsv's own transfer
counters and the remote directory's sizes), not times, so a debug build gives the
same answers as a release build.

    python3 bench/remote_gc.py --dsv target/debug/dsv               # 2 x 48 MiB
    python3 bench/remote_gc.py --dsv target/debug/dsv --files 500   # quicker

Scenarios (targets of issue 20 in brackets):
  A. branch deleted: `main` holds half the data, `side` the other half (pushed
     separately). `side` is deleted on the remote; a fresh clone with an empty
     index cache runs gc twice, the second run past the grace period.
     bytes freed by the run past the grace period, less the live bytes
     copied out of rewritten packs, / unreachable bytes              [>= 0.90]
     bytes downloaded by both runs, less the marker, refs and gc records,
     / (pack index bytes + rewritten packs' live bytes)               [<= 1.00]
  B. forced push: one push holds commit 1 (half the data) and commit 2 (the
     other half) in packs of 4 MiB; the branch is forced back to commit 1, so
     the pack holding both halves is mixed; it is rewritten (threshold 0.1).
     same two ratios.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

FILE_SIZE = 16 * 1024
PACK = 4 * 1024 * 1024


def run(cmd, cwd, env):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)} in {cwd}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def write_files(root, sub, files, seed):
    rng = random.Random(seed)
    d = os.path.join(root, sub)
    os.makedirs(d, exist_ok=True)
    for i in range(files):
        with open(os.path.join(d, f"f{i:06}.bin"), "wb") as f:
            f.write(rng.randbytes(FILE_SIZE))


def dir_bytes(path, suffix):
    return sum(
        os.path.getsize(os.path.join(path, n))
        for n in os.listdir(path)
        if n.endswith(suffix)
    )


def small_metadata(remote):
    """Bytes of what a collection reads besides indexes and records: the marker and
    the newest sequence file of every ref."""
    total = os.path.getsize(os.path.join(remote, "dsv-remote"))
    for d, _, files in os.walk(os.path.join(remote, "refs")):
        seqs = sorted(f for f in files if len(f) == 20 and f.isdigit())
        if seqs:
            total += os.path.getsize(os.path.join(d, seqs[-1]))
    return total


def gc_twice(dsv, work, remote, env, extra=()):
    """A fresh clone with no cached indexes runs gc, then again past the grace period."""
    client = os.path.join(work, "collector")
    shutil.rmtree(client, ignore_errors=True)
    run([dsv, "clone", f"file://{remote}", client], work, env)
    shutil.rmtree(os.path.join(client, ".dsv", "remotes", "origin", "idx"))
    packs = os.path.join(remote, "packs")
    idx_bytes = dir_bytes(packs, ".idx")
    pack_bytes = dir_bytes(packs, ".dsvpack")
    first = json.loads(run([dsv, "gc", "--remote", "--grace", "0s", "--json", *extra], client, env))
    records = os.path.join(remote, "gc", "records")
    meta = 2 * (small_metadata(remote)) + dir_bytes(records, ".json")
    second = json.loads(run([dsv, "gc", "--remote", "--grace", "0s", "--json"], client, env))
    after = dir_bytes(packs, ".dsvpack")
    down = first["transfer"]["bytes_down"] + second["transfer"]["bytes_down"]
    return {
        "pack_bytes_before": pack_bytes,
        "idx_bytes": idx_bytes,
        "recorded": first["recorded"],
        "rewritten": first["rewritten"],
        "copied": first["copied"],
        "freed": second["freed"],
        "pack_bytes_after": after,
        "bytes_down": down,
        "metadata_bytes": meta,
        "requests": {
            k: first["transfer"][k] + second["transfer"][k] for k in ("gets", "puts", "lists")
        },
    }


def check(dsv, client, env):
    out = subprocess.run([dsv, "fsck", "--remote", "--records"], cwd=client, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0 or ": 0 problems" not in out.stderr:
        sys.exit(f"fsck --remote failed:\n{out.stdout}\n{out.stderr}")


def scenario_a(dsv, work, files, env):
    repo = os.path.join(work, "a")
    remote = os.path.join(work, "a-remote")
    os.makedirs(repo)
    run([dsv, "init", "-q"], repo, env)
    write_files(repo, "main", files, 1)
    run([dsv, "add", "-A"], repo, env)
    run([dsv, "commit", "-m", "main"], repo, env)
    run([dsv, "remote", "add", "origin", f"file://{remote}"], repo, env)
    run([dsv, "push"], repo, env)
    before_side = dir_bytes(os.path.join(remote, "packs"), ".dsvpack")
    run([dsv, "switch", "-c", "side"], repo, env)
    write_files(repo, "side", files, 2)
    run([dsv, "add", "-A"], repo, env)
    run([dsv, "commit", "-m", "side"], repo, env)
    run([dsv, "push", "origin", "side"], repo, env)
    unreachable = dir_bytes(os.path.join(remote, "packs"), ".dsvpack") - before_side
    # What `dsv push origin --delete side` does to a file remote.
    shutil.rmtree(os.path.join(remote, "refs", "heads", "side"))
    r = gc_twice(dsv, work, remote, env)
    check(dsv, os.path.join(work, "collector"), env)
    r["unreachable"] = unreachable
    return r


def scenario_b(dsv, work, files, env):
    repo = os.path.join(work, "b")
    remote = os.path.join(work, "b-remote")
    os.makedirs(repo)
    run([dsv, "init", "-q"], repo, env)
    write_files(repo, "one", files, 3)
    run([dsv, "add", "-A"], repo, env)
    run([dsv, "commit", "-m", "one"], repo, env)
    one = run([dsv, "rev-parse", "HEAD"], repo, env).strip()
    write_files(repo, "two", files, 4)
    run([dsv, "add", "-A"], repo, env)
    run([dsv, "commit", "-m", "two"], repo, env)
    run([dsv, "remote", "add", "origin", f"file://{remote}"], repo, env)
    run([dsv, "push"], repo, env)
    total = dir_bytes(os.path.join(remote, "packs"), ".dsvpack")
    run([dsv, "reset", "--hard", one], repo, env)
    run([dsv, "push", "--force"], repo, env)
    # A low threshold, so the pack holding the end of one and the start of two is rewritten.
    r = gc_twice(dsv, work, remote, env, ("--rewrite-threshold", "0.1"))
    check(dsv, os.path.join(work, "collector"), env)
    # Commit 2's files are half the data; its tree and commit are a few KiB.
    r["unreachable"] = total // 2
    return r


def report(name, r):
    # Net of the live bytes copied out of rewritten packs.
    reclaimed = (r["freed"]["bytes"] - r["copied"]["bytes"]) / r["unreachable"]
    budget = r["idx_bytes"] + r["copied"]["bytes"]
    packs_read = r["bytes_down"] - r["metadata_bytes"]
    print(f"{name}:")
    print(f"  packs before {r['pack_bytes_before']:,} B, after {r['pack_bytes_after']:,} B; "
          f"unreachable {r['unreachable']:,} B")
    print(f"  run 1 recorded {r['recorded']['packs']} packs ({r['recorded']['bytes']:,} B), "
          f"{r['rewritten']['packs']} of them rewritten, copying {r['copied']['bytes']:,} B")
    print(f"  run 2 (past the grace period) freed {r['freed']['packs']} packs, "
          f"{r['freed']['bytes']:,} B; less the copies, reclaimed / unreachable = {reclaimed:.3f}  [>= 0.90]")
    print(f"  downloaded {r['bytes_down']:,} B in both runs, of which marker, refs and gc records "
          f"{r['metadata_bytes']:,} B; the rest, {packs_read:,} B / (index bytes {r['idx_bytes']:,} + "
          f"rewritten live bytes {r['copied']['bytes']:,}) = {packs_read / budget:.3f}  [<= 1.00]")
    print(f"  requests: {r['requests']}")
    return reclaimed >= 0.9 and packs_read <= budget


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv", default="target/debug/dsv")
    ap.add_argument("--files", type=int, default=3072, help="files of 16 KiB per half")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    dsv = os.path.abspath(args.dsv)
    work = tempfile.mkdtemp(prefix="dsv-bench-rgc-")
    env = dict(os.environ)
    env.update({
        "DSV_AUTHOR_NAME": "bench", "DSV_AUTHOR_EMAIL": "bench@example.com",
        "DSV_REMOTE_PACK_SIZE": str(PACK), "HOME": work,
    })
    try:
        ok_a = report("A. branch holding half the data deleted", scenario_a(dsv, work, args.files, env))
        ok_b = report("B. forced push dropping half the data (mixed pack rewritten)",
                      scenario_b(dsv, work, args.files, env))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("targets met" if ok_a and ok_b else "TARGET MISSED")
    return 0 if ok_a and ok_b else 1


if __name__ == "__main__":
    sys.exit(main())
