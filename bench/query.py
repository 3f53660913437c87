#!/usr/bin/env python3
"""Benchmark of `dsv query` over every frame of a large dataset.

Python 3.11, standard library only. Targets (issue 6), on generated data: the
1,000,000-frame YOLO dataset of bench/labels.py (same generator), plus a
metadata sidecar giving every frame `weather`, `time` and `scene` attributes.

  Q1  `dsv query EXPR --count` touching every frame, cold (no query index yet):
      under 5 s.
  Q2  the same query again (index cached for the unchanged commit): under 1 s.
      Since session 17 the matches of each recent (query, version) are kept
      too (.dsv/cache/query-matches/), so Q2 and Q3 (medians of warm runs)
      read them and judge no frame; the first warm run judges.
  Q2p Q2 printing the matching paths; Q3 a warm query reading object boxes
      (nothing to reuse between frames). Both for information, no target.
  Q4  the first query of a new commit B in which 1% of the label files
      changed, right after its parent A was queried with the same expression:
      under 0.3 s (issue 23 item 4). B's index is derived from A's (an overlay)
      and its matches from A's (only the replaced frames judged).
  Q5  B's first query with no index of any version but every label file and
      the sidecar parsed before (caches of parsed files kept): a full build
      from cached parts. For information, no target.

The data set has two commits, tagged A (as generated) and B (1% of the label
files edited as bench/labels.py edits them); Q1-Q3 and Q5 query B.

EXPR is `weather == "rain" && objects.exists(o, o.class == "green_cone")`: it
reads an attribute and the objects of every frame. The answer is checked
against a count made here while generating the data.

    python3 bench/query.py --quick                 # 20,000 frames
    python3 bench/query.py --dsv target/release/dsv --write-doc   # full run
    python3 bench/query.py --frames 100000 --dsv target/debug/dsv --compare /tmp/dsv-before
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labels as L  # noqa: E402  (the generator and helpers of bench/labels.py)

BEGIN_MARK = "<!-- query:begin -->"
END_MARK = "<!-- query:end -->"
EXPR = 'weather == "rain" && objects.exists(o, o.class == "green_cone")'
GREEN_CONE = L.CLASSES.index("green_cone")
BOX_EXPR = 'objects.exists(o, o.class == "pedestrian" && o.box.w < 0.06)'


def write_sidecar(ds: Path, frames: int, per_dir: int) -> int:
    """Writes meta.jsonl; returns how many frames the query must match."""
    rng = random.Random(11)
    expected = 0
    with open(ds / "meta.jsonl", "w") as f:
        for i in range(frames):
            d = f"seq_{i // per_dir:05d}"
            weather = rng.choice(["rain", "sun", "fog"])
            row = {
                "path": f"images/{d}/f{i:07d}.jpg",
                "weather": weather,
                "time": rng.choice(["day", "night"]),
                "scene": i // per_dir,
            }
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
            if weather == "rain":
                lines = (ds / "labels" / d / f"f{i:07d}.txt").read_text().split("\n")
                if any(l.split()[:1] == [str(GREEN_CONE)] for l in lines if l):
                    expected += 1
    return expected


def count_expected(ds: Path) -> int:
    """The matches of EXPR from the files on disk (the tree must be clean)."""
    expected = 0
    with open(ds / "meta.jsonl") as f:
        for line in f:
            row = json.loads(line)
            if row.get("weather") != "rain":
                continue
            label = ds / "labels" / Path(row["path"]).relative_to("images").with_suffix(".txt")
            if label.exists() and any(l.split()[:1] == [str(GREEN_CONE)] for l in label.read_text().split("\n") if l):
                expected += 1
    return expected


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsv", default=str(L.ROOT / "target/release/dsv"))
    ap.add_argument("--workdir", default="/tmp/dsv-bench-query")
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--compare", metavar="BEFORE",
                    help="another dsv binary (e.g. one built from an earlier commit) measured in the same run, "
                         "each measure with it first, then with --dsv; the table gives both and their ratio")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--write-doc", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="measure on WORKDIR/ds as it is (a committed, clean tree from an earlier run or from "
                         "bench/labels.py's generator plus this sidecar); the expected count is recomputed from the files")
    a = ap.parse_args()
    if a.quick:
        a.frames = 20_000
    dsv = str(Path(a.dsv).resolve())
    work = Path(a.workdir)
    ds = work / "ds"
    if a.reuse:
        L.log(f"reusing {ds}; counting the expected matches from its files")
        expected = count_expected(ds)
    else:
        if work.exists():
            shutil.rmtree(work)
        ds.mkdir(parents=True)
        L.log(f"generating {a.frames} frames")
        L.generate(ds, a.frames, a.per_dir)
        expected = write_sidecar(ds, a.frames, a.per_dir)
        L.log("dsv init/add/commit")
        L.run([dsv, "init", "-q", "."], ds)
        L.run([dsv, "add", "-A", "-q"], ds)
        L.run([dsv, "commit", "-q", "-m", "base"], ds)
    if subprocess.run([dsv, "show", "B"], cwd=ds, capture_output=True).returncode != 0:
        L.log("tagging A, editing 1% of the label files, committing B")
        n = sum(1 for _ in open(ds / "meta.jsonl"))
        L.run([dsv, "tag", "A"], ds)
        L.edit(ds, n, a.per_dir, n // 100)
        L.run([dsv, "add", "-A", "-q"], ds)
        L.run([dsv, "commit", "-q", "-m", "B"], ds)
        L.run([dsv, "tag", "B"], ds)
        expected = count_expected(ds)
    frames = sum(1 for _ in open(ds / "meta.jsonl"))
    cache = ds / ".dsv" / "cache" / "query"
    legacy = ds / ".dsv" / "cache" / "query.redb"  # before dsv-query-4
    labels_cache = ds / ".dsv" / "cache" / "query-labels.redb"  # parsed label files, before packs
    packs = ds / ".dsv" / "cache" / "query-labels"  # parsed label files
    sidecar_rows = ds / ".dsv" / "cache" / "query-sidecar"  # the sidecar's rows, read
    matches = ds / ".dsv" / "cache" / "query-matches"  # each recent (query, version)'s matches

    cpu_of: dict[str, dict[str, list[float]]] = {}
    current: list[str] = ["", ""]  # the binary and measure being timed

    def timed(cmd: list[str]):
        # CPU seconds (user + system) of the command too: on a shared,
        # loaded machine they move less than the wall clock.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t, p = L.timed(cmd, ds)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu_of.setdefault(current[0], {}).setdefault(current[1], []).append(cpu)
        return t, p

    def query(dsv: str, expr: str = EXPR) -> tuple[float, int]:
        t, p = timed([dsv, "query", expr, "--count"])
        return t, int(p.stdout.decode().strip())

    def cold(dsv: str) -> float:
        for d in (cache, packs, sidecar_rows, matches):
            shutil.rmtree(d, ignore_errors=True)
        for f in (legacy, labels_cache):
            if f.exists():
                f.unlink()
        t, n = query(dsv)
        assert n == expected, f"query matched {n}, expected {expected}"
        return t

    def warm(dsv: str) -> float:
        t, n = query(dsv)
        assert n == expected, f"query matched {n}, expected {expected}"
        return t

    def base_cat() -> float:
        # Baseline: reading every label file and the sidecar at all, no parsing.
        os.sync()  # as L.timed does
        t = time.perf_counter()
        subprocess.run("find labels -type f -print0 | xargs -0 cat meta.jsonl > /dev/null", shell=True, cwd=ds)
        return time.perf_counter() - t

    def listing(dsv: str) -> float:
        # The same query printing every matching path: every match decoded.
        t, p = timed([dsv, "query", EXPR])
        n = p.stdout.count(b"\n")
        assert n == expected, f"query listed {n}, expected {expected}"
        return t

    box_counts: list[int] = []

    def boxes(dsv: str) -> float:
        # Reads object boxes, so no result can be reused between frames.
        t, n = query(dsv, BOX_EXPR)
        box_counts.append(n)
        return t

    def new_commit(dsv: str) -> float:
        # B's index derived from A's, its matches from A's (both just made).
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(matches, ignore_errors=True)
        L.run([dsv, "query", EXPR, "A", "--count"], ds)  # the parent's index
        t, n = query(dsv)
        assert n == expected, f"query matched {n}, expected {expected}"
        return t

    def from_parts(dsv: str) -> float:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(matches, ignore_errors=True)
        t, n = query(dsv)
        assert n == expected, f"query matched {n}, expected {expected}"
        return t

    base_cat()
    base_s, base_all = L.median_of(a.reps, base_cat)
    # Each measure runs with every binary in turn (the before binary first),
    # so a comparison sees the same data, load and page cache.
    binaries = [dsv] + ([str(Path(a.compare).resolve())] if a.compare else [])
    if a.compare:
        binaries.reverse()
    results: dict[str, dict[str, tuple[float, list[float]]]] = {b: {} for b in binaries}

    def measure(key: str, f, prepare=None) -> None:
        for b in binaries:
            current[:] = ["", ""]
            if prepare:
                prepare(b)
            L.log(f"{key} with {b}")
            current[:] = [b, key]
            results[b][key] = L.median_of(a.reps, lambda: f(b))
            current[:] = ["", ""]

    measure("Q1", cold)
    measure("Q2", warm, prepare=warm)  # the index (and matches) of B made first
    measure("Q2p", listing, prepare=warm)
    measure("Q3", boxes, prepare=lambda b: boxes(b))
    measure("Q4", new_commit)
    measure("Q5", from_parts)
    what = {
        "Q1": (f"`dsv query` cold, {frames:,} frames", 5.0),
        "Q2": (f"`dsv query` warm (index cached), {frames:,} frames", 1.0),
        "Q2p": ("Q2 printing every matching path (`--count` dropped)", None),
        "Q3": (f"warm, `{BOX_EXPR}` ({box_counts[-1]:,} matches)", None),
        "Q4": ("first query of B (1% of label files changed) after querying A", 0.3),
        "Q5": ("no index of any version, every label file parsed before (caches of parsed files)", None),
    }
    cmd = "python3 bench/query.py " + " ".join(sys.argv[1:])
    out = [
        f"- Command: `{cmd}`; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
        f"- Query: `{EXPR}` ({expected:,} matches in B, checked)",
        f"- Baseline: `cat` of every label file and the sidecar, median {base_s:.2f} s ({', '.join(f'{r:.2f}' for r in base_all)})",
        "",
    ]
    if a.compare:
        before, after = binaries
        out += [
            f"Before: `{before}`; after: `{after}` (medians of {a.reps}, measured in turn).",
            "",
            "| | what | before | after | after / before | target | runs before | runs after | CPU s before | CPU s after |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    else:
        out += [
            "| | what | median | dsv / cat | target | runs |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
    def cpu(b: str, key: str) -> str:
        xs = cpu_of.get(b, {}).get(key, [])
        return f"{statistics.median(xs):.3f}" if xs else "-"

    for key, (desc, target) in what.items():
        med, runs = results[binaries[-1]][key]
        goal = "(no target)" if target is None else f"<= {target:g} s ({'ok' if med <= target else 'MISSED'})"
        if a.compare:
            bmed, bruns = results[binaries[0]][key]
            out.append(
                f"| {key} | {desc} | {bmed:.3f} s | {med:.3f} s | {med / bmed:.2f} | {goal} | "
                f"{', '.join(f'{r:.3f}' for r in bruns)} | {', '.join(f'{r:.3f}' for r in runs)} | "
                f"{cpu(binaries[0], key)} | {cpu(binaries[-1], key)} |"
            )
        else:
            out.append(f"| {key} | {desc} | {med:.2f} s | {med / base_s:.2f} | {goal} | {', '.join(f'{r:.2f}' for r in runs)} |")
    text = "\n".join(out)
    print(text)
    if a.write_doc:
        if frames < 1_000_000 or a.compare:
            L.log("not writing docs/benchmarks.md: figures go there only from a full-size run")
        else:
            doc = L.ROOT / "docs" / "benchmarks.md"
            body = doc.read_text()
            block = f"{BEGIN_MARK}\n{text}\n{END_MARK}"
            if BEGIN_MARK in body:
                pre, rest = body.split(BEGIN_MARK, 1)
                _, post = rest.split(END_MARK, 1)
                body = pre + block + post
            else:
                body += f"\n## Queries (`bench/query.py`)\n\n{block}\n"
            doc.write_text(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
