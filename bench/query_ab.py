#!/usr/bin/env python3
"""Side-by-side `bench/query.py` rows for two dsv builds, alternating them.

Python 3.11, standard library only. Runs Q1 (cold), Q2 (warm), Q3 (warm, reads
boxes), Q4 (first query of B right after A) and Q5 (no index, parses cached) of
bench/query.py on its data set (WORKDIR/ds, tags A and B, made by
`bench/query.py`), one build then the other in every round, so both see the
same machine. Each build's index files are removed before its cold, Q4 and Q5
runs, so neither derives from the other's files. Prints medians, ranges and the
load average before and after.

    python3 bench/query_ab.py --a /tmp/dsv-main --b target/release/dsv \
        --workdir /tmp/qb --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labels as L  # noqa: E402
import query as Q  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the build before")
    ap.add_argument("--b", required=True, help="the build after")
    ap.add_argument("--workdir", default="/tmp/dsv-bench-query")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", default="Q1,Q2,Q3,Q4,Q5")
    a = ap.parse_args()
    ds = Path(a.workdir) / "ds"
    caches = ds / ".dsv" / "cache"
    index_dir = caches / "query"
    bins = {"a": str(Path(a.a).resolve()), "b": str(Path(a.b).resolve())}
    rows = a.rows.split(",")

    def query(dsv: str, expr: str = Q.EXPR, rev: list[str] | None = None) -> tuple[float, str]:
        t, p = L.timed([dsv, "query", expr, *(rev or []), "--count"], ds)
        return t, p.stdout.decode().strip()

    def q1(dsv: str) -> tuple[float, str]:
        for d in ("query", "query-labels", "query-sidecar"):
            shutil.rmtree(caches / d, ignore_errors=True)
        return query(dsv)

    def q2(dsv: str) -> tuple[float, str]:
        query(dsv)  # its own index of B, if the other build's run removed it
        return query(dsv)

    def q3(dsv: str) -> tuple[float, str]:
        query(dsv)
        return query(dsv, Q.BOX_EXPR)

    def q4(dsv: str) -> tuple[float, str]:
        shutil.rmtree(index_dir, ignore_errors=True)
        L.run([dsv, "query", Q.EXPR, "A", "--count"], ds)
        return query(dsv)

    def q5(dsv: str) -> tuple[float, str]:
        shutil.rmtree(index_dir, ignore_errors=True)
        query(dsv)  # parse caches of B's files
        shutil.rmtree(index_dir, ignore_errors=True)
        return query(dsv)

    fns = {"Q1": q1, "Q2": q2, "Q3": q3, "Q4": q4, "Q5": q5}
    print(f"load average before: {os.getloadavg()}")
    results: dict[tuple[str, str], list[float]] = {}
    answers: dict[tuple[str, str], set[str]] = {}
    for r in range(a.rounds):
        for row in rows:
            order = ("a", "b") if r % 2 == 0 else ("b", "a")
            for k in order:
                t, n = fns[row](bins[k])
                results.setdefault((row, k), []).append(t)
                answers.setdefault((row, k), set()).add(n)
        L.log(f"round {r + 1} done, load {os.getloadavg()[0]:.1f}")
    print(f"load average after: {os.getloadavg()}")
    print("| row | a median (range) | b median (range) | b / a |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        ta, tb = results[(row, "a")], results[(row, "b")]
        assert answers[(row, "a")] == answers[(row, "b")], (row, answers)
        ma, mb = statistics.median(ta), statistics.median(tb)
        print(
            f"| {row} | {ma:.2f} s ({min(ta):.2f}-{max(ta):.2f}) | {mb:.2f} s ({min(tb):.2f}-{max(tb):.2f}) "
            f"| {mb / ma:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
