#!/usr/bin/env python3
"""A map-style DataLoader worker's costs (issue 19), figures for docs/benchmarks.md.

Reads the repository bench/python_read.py made (`--work DIR` there: DIR/local) as a
worker of `view.torch(shuffle=True)` does: the dataset pickled and unpickled (a
worker started with spawn, or a fork: either reopens the repository), then
1. its first sample (CPU: labels decoded to hand it out),
2. the first --samples (default 640) of a worker's half of a shuffled epoch, in
   batches of 64, as the DataLoader asks for them (`__getitems__` when the dataset
   has it, else one `ds[i]` per sample).
Run it once per build, alternately (PYTHONPATH=PKGDIR for another build's package);
medians of --runs runs.

Usage: bench/python_map.py ROOT [--runs N] [--batch B] [--samples S]
"""

import argparse
import json
import pickle
import resource
import statistics
import time

import dsv


def cpu_time():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=640)
    a = ap.parse_args()
    made = dsv.Repository(a.root).frames("HEAD").torch(shuffle=True, seed=0)
    blob = pickle.dumps(made)
    n = len(made)
    del made
    first, epoch, walls = [], [], []
    mine = []
    for _ in range(a.runs):
        ds = pickle.loads(blob)
        c = cpu_time()
        ds[0]
        first.append(cpu_time() - c)
        ds = pickle.loads(blob)
        # A worker's half of the sampler's indices, the first --samples of them.
        mine = list(range(0, n, 2))[: a.samples]
        batches = [mine[i : i + a.batch] for i in range(0, len(mine), a.batch)]
        get = getattr(ds, "__getitems__", None)
        c, t = cpu_time(), time.perf_counter()
        got = 0
        for b in batches:
            samples = get(b) if get else [ds[i] for i in b]
            got += sum(len(s["data"]) for s in samples)
        epoch.append(cpu_time() - c)
        walls.append(time.perf_counter() - t)
    print(json.dumps({
        "frames": n,
        "first_sample_cpu": statistics.median(first),
        "samples": len(mine),
        "samples_cpu": statistics.median(epoch),
        "samples_wall": statistics.median(walls),
        "batched": get is not None,
    }))


if __name__ == "__main__":
    main()
