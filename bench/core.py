#!/usr/bin/env python3
"""Benchmark of the dsv local repository core against DVC, git and cp.

Python 3.11, standard library only. DVC is pip-installed into a venv in the
work directory. Every figure is reported as a ratio against a baseline run in
the same invocation, because the 2-core machines this runs on are noisy.

    python3 bench/core.py --quick                 # smoke run (N=5000, small big files)
    python3 bench/core.py                         # full run (N=100000)
    python3 bench/core.py --write-doc             # also update docs/benchmarks.md
    python3 bench/core.py --baselines-only --quick  # no dsv: only cp/git/DVC

See bench/README.md for the list of measurements and their targets.
Exit status: 0 all measured targets pass, 1 some target FAILs, 2 some
measurement hit an ERROR (or dsv could not be built / found).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = REPO_ROOT / "docs" / "benchmarks.md"
BEGIN_MARK = "<!-- core:begin -->"
END_MARK = "<!-- core:end -->"

FILE_SIZE = 10 * KiB          # B100k: files of 10 KiB random bytes
N_DIRS = 100                  # ... in 100 directories
STATUS_RUNS = 5               # default timed `status` runs (median), after one warm-up
CP_RUNS = 3                   # minimum number of `cp -r` baseline samples (median)
REWRITE_STATUS = 100          # files rewritten before measurement 3
REWRITE_SWITCH = 1000         # files rewritten on branch `other` (measurement 7)
MAX_STORE_FILES = 500         # "at most a few hundred" files under .dsv/
SEED = 20240601

# key -> (section, what is measured, target as shown)
ROWS: dict[str, tuple[int, str, str]] = {
    "1a": (1, "init+add+commit of {B} vs `dvc init && dvc add`", "dvc/dsv >= 15x"),
    "1b": (1, "init+add+commit of {B} vs `cp -r` of the tree", "dsv/cp <= 1.00"),
    "2":  (2, "`status`, nothing changed vs `git status`", "dsv/git <= 1.00"),
    "3":  (3, "`status` after rewriting 100 files vs unchanged `status`", "changed/unchanged <= 1.20"),
    "4a": (4, "bytes under .dsv/ vs raw bytes of {B}", "<= 1.02"),
    "4b": (4, "number of files under .dsv/", f"<= {MAX_STORE_FILES}"),
    "5":  (5, "new stored bytes after committing a copy of the tree", "<= 1% of tree bytes"),
    "6":  (6, "new stored bytes after a 1-byte in-place edit of a big file", "<= 256 KiB"),
    "7a": (7, "`reset --hard` into an empty worktree vs `cp -r` of the tree", "dsv/cp <= 1.10"),
    "7b": (7, "files rewritten by `switch main` (1000 differ on `other`)", "exactly 1000"),
    "7c": (7, "`switch main` time (1000 files differ)", "info"),
    "8":  (8, "peak RSS of `dsv add` of a big file", "<= 256 MiB"),
}
# Sections that need the B100k dsv repository built by section 1.
NEEDS_REPO = {2, 3, 4, 5, 7}


# ---------------------------------------------------------------- utilities

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def fmt_s(sec: float | None) -> str:
    if sec is None:
        return "—"
    if sec < 1:
        return f"{sec * 1000:.1f} ms"
    return f"{sec:.2f} s"


def fmt_b(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def samples(xs: list[float]) -> str:
    return "[" + ", ".join(fmt_s(x) for x in xs) + "]"


class CommandFailed(Exception):
    pass


class Skip(Exception):
    pass


RSS_HELPER = (
    "import os, sys\n"
    "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
    "_, st, ru = os.wait4(pid, 0)\n"
    "print(ru.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(st))\n"
)


@dataclass
class Run:
    argv: list[str]
    seconds: float
    rc: int
    maxrss: int          # bytes, ru_maxrss of this child alone (os.wait4)
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


class Runner:
    """Runs one child at a time; time.perf_counter() around Popen + os.wait4.

    stdout/stderr go to numbered files under the log directory so that
    printing never counts in a timing.
    """

    def __init__(self, logdir: Path, timeout: float):
        self.logdir = logdir
        self.timeout = timeout
        self.n = 0

    def run(self, argv, cwd, env=None, check=True, tag="cmd", timeout=None) -> Run:
        self.n += 1
        argv = [str(a) for a in argv]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tag)[:40]
        out = self.logdir / f"{self.n:04d}-{safe}.out"
        err = self.logdir / f"{self.n:04d}-{safe}.err"
        limit = timeout or self.timeout
        with open(out, "wb") as fo, open(err, "wb") as fe:
            try:
                t0 = time.perf_counter()
                p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=fo, stderr=fe)
            except OSError as e:
                raise CommandFailed(f"cannot run {shlex.join(argv)}: {e}") from e
            timer = threading.Timer(limit, p.kill)
            timer.start()
            try:
                _, status, ru = os.wait4(p.pid, 0)
                secs = time.perf_counter() - t0
            finally:
                timer.cancel()
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc  # already reaped: keep Popen from waiting again
        r = Run(argv, secs, rc, ru.ru_maxrss * 1024, out, err)
        if check and rc != 0:
            why = f"killed after {limit:.0f} s timeout" if secs >= limit else f"exit status {rc}"
            tail = (err.read_text(errors="replace")[-1500:] or out.read_text(errors="replace")[-1500:]).strip()
            raise CommandFailed(f"`{shlex.join(argv)}` (cwd {cwd}) failed: {why}\n"
                                f"    {tail}\n    (logs: {out}, {err})")
        return r


def walk_files(root: Path, skip_top: tuple[str, ...] = ()) -> list[str]:
    """Relative paths of all regular files under root, skipping top-level names."""
    res = []
    root_s = str(root)
    for dirpath, dirnames, filenames in os.walk(root_s):
        if dirpath == root_s:
            dirnames[:] = [d for d in dirnames if d not in skip_top]
            filenames = [f for f in filenames if f not in skip_top]
        rel = os.path.relpath(dirpath, root_s)
        for f in filenames:
            res.append(f if rel == "." else os.path.join(rel, f))
    res.sort()
    return res


def tree_size(root: Path, skip_top: tuple[str, ...] = ()) -> tuple[int, int, int]:
    """(sum of st_size, number of files, allocated bytes) of regular files."""
    total = count = alloc = 0
    for rel in walk_files(root, skip_top):
        try:
            st = os.lstat(root / rel)
        except FileNotFoundError:  # removed by the tool meanwhile (e.g. a repack)
            continue
        total += st.st_size
        alloc += st.st_blocks * 512
        count += 1
    return total, count, alloc


def tree_stats(root: Path, skip_top=(".dsv",)) -> dict[str, tuple[int, int, int, int]]:
    res = {}
    for rel in walk_files(root, skip_top):
        st = os.lstat(root / rel)
        res[rel] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    return res


def manifest(root: Path, skip_top=(".dsv",)) -> dict[str, str]:
    res = {}
    for rel in walk_files(root, skip_top):
        with open(root / rel, "rb") as f:
            res[rel] = hashlib.file_digest(f, "sha1").hexdigest()
    return res


def compare_manifests(want: dict[str, str], got: dict[str, str]) -> str:
    missing = [p for p in want if p not in got]
    extra = [p for p in got if p not in want]
    wrong = [p for p in want if p in got and got[p] != want[p]]
    if not (missing or extra or wrong):
        return ""
    return (f"{len(missing)} missing, {len(extra)} unexpected, {len(wrong)} with wrong content"
            f" (e.g. {(missing + extra + wrong)[:3]})")


def warm(*roots: Path) -> None:
    """Read every file once so that all timed runs see a warm page cache."""
    buf = bytearray(4 * MiB)
    for root in roots:
        if root.is_file():
            files = [root]
        else:
            files = [root / rel for rel in walk_files(root)]
        for p in files:
            try:
                with open(p, "rb", buffering=0) as f:
                    while f.readinto(buf):
                        pass
            except FileNotFoundError:  # removed by the tool meanwhile (e.g. a repack)
                pass


def settle() -> None:
    """Flush dirty pages before a timed run so write-back of the previous step
    does not land in it (the sync itself is never timed)."""
    os.sync()


def rm_rf(path: Path) -> None:
    """rm -rf, unlinking files from 16 threads.

    On this project's machines (ext4 mounted with `discard`) one unlink takes
    ~2 ms (latency bound), so a serial `rm -rf` of a 100k-file tree takes
    minutes; in parallel it is ~10x faster."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink():
        batches = []
        for dirpath, _, filenames in os.walk(path):
            for i in range(0, len(filenames), 500):
                batches.append((dirpath, filenames[i:i + 500]))

        def unlink_all(batch):
            d, names = batch
            for n in names:
                try:
                    os.unlink(os.path.join(d, n))
                except FileNotFoundError:
                    pass

        with ThreadPoolExecutor(16) as ex:
            list(ex.map(unlink_all, batches))
    subprocess.run(["rm", "-rf", "--", str(path)], check=True)


def write_random_tree(root: Path, n_files: int, file_size: int) -> list[str]:
    rels = []
    per_dir = [n_files // N_DIRS + (1 if i < n_files % N_DIRS else 0) for i in range(N_DIRS)]
    k = 0
    for d, count in enumerate(per_dir):
        ddir = root / f"d{d:03d}"
        ddir.mkdir(parents=True, exist_ok=True)
        blob = os.urandom(count * file_size)
        for j in range(count):
            name = f"f{k:06d}.bin"
            with open(ddir / name, "wb") as f:
                f.write(blob[j * file_size:(j + 1) * file_size])
            rels.append(f"d{d:03d}/{name}")
            k += 1
    return rels


def rewrite_files(paths: list[Path]) -> None:
    """New random content, same size, in place (same inode)."""
    for p in paths:
        size = p.stat().st_size
        with open(p, "r+b") as f:
            f.write(os.urandom(size))


def write_urandom_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def write_varied_file(path: Path, size: int, block: int = 64 * MiB) -> None:
    """Fast incompressible, non-deduplicable data: one 64 MiB os.urandom buffer,
    and every 64 MiB block of the file is that buffer passed through its own
    random byte permutation (bytes.translate). A bijection of uniform random
    bytes is still uniform random, so nothing compresses; any two blocks differ
    in ~255/256 of their bytes at every offset, so no chunk repeats. ~400 MB/s
    here vs ~190 MB/s for os.urandom alone."""
    base = os.urandom(block)
    rng = random.Random(SEED)
    with open(path, "wb") as f:
        left = size
        while left:
            perm = list(range(256))
            rng.shuffle(perm)
            data = base.translate(bytes(perm))
            n = min(left, block)
            f.write(data[:n] if n < block else data)
            left -= n


def git_describe(root: Path) -> str:
    def q(*a):
        r = subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True)
        return r.returncode, r.stdout.strip()
    rc, head = q("rev-parse", "--short=12", "HEAD")
    if rc != 0:
        head = "(no commit yet)"
    rc2, dirty = q("status", "--porcelain")
    if rc2 == 0 and dirty:
        head += " + uncommitted changes"
    return head


# ---------------------------------------------------------------- report

@dataclass
class Row:
    key: str
    what: str
    target: str
    dsv: str = "—"
    baseline: str = "—"
    ratio: str = "—"
    result: str = "NOT RUN"
    note: str = ""


class Report:
    def __init__(self, dataset: str):
        self.rows = {k: Row(k, what.replace("{B}", dataset), target)
                     for k, (_, what, target) in ROWS.items()}
        self.info: list[str] = []
        self.recorded: set[str] = set()

    def record(self, key, dsv="—", baseline="—", ratio="—", result="INFO", note=""):
        r = self.rows[key]
        r.dsv, r.baseline, r.ratio, r.result, r.note = dsv, baseline, ratio, result, note
        self.recorded.add(key)
        line = (f"[{key}] {r.what}\n      dsv: {dsv} | baseline: {baseline} | ratio: {ratio}"
                f" | target: {r.target} | {result}")
        if note:
            line += f"\n      note: {note}"
        print("=" * 78 + "\n" + line + "\n" + "=" * 78, flush=True)

    def fill(self, keys, result, note):
        for k in keys:
            if k not in self.recorded:
                self.record(k, result=result, note=note)

    def add_info(self, text: str):
        self.info.append(text)
        log("info: " + text)

    def table(self) -> str:
        lines = ["| # | measurement | dsv | baseline | ratio | target | result |",
                 "|---|---|---|---|---|---|---|"]
        for r in self.rows.values():
            res = r.result + (f" — {r.note}" if r.note else "")
            cells = [r.key, r.what, r.dsv, r.baseline, r.ratio, r.target, res]
            lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
        return "\n".join(lines)

    def exit_code(self) -> int:
        results = [r.result for r in self.rows.values()]
        if any(x.startswith("ERROR") or x == "NOT RUN" for x in results):
            return 2
        if any(x.startswith("FAIL") for x in results):
            return 1
        return 0


def pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# ---------------------------------------------------------------- benchmark

class Bench:
    def __init__(self, args):
        self.args = args
        self.report = Report(dataset_name(args.files))
        self.load_start = loadavg()
        self.commit = git_describe(REPO_ROOT)   # taken at start: the source the binary is built from
        if float(self.load_start) > 1.0:
            log(f"WARNING: load average is {self.load_start}: something else is running on this "
                f"machine and the timings will be noisy")
        self.workdir: Path = args.workdir
        self.run_dir = self.workdir / "run"
        if self.run_dir.exists():
            log(f"removing the previous {self.run_dir}")
            rm_rf(self.run_dir)
        self.run_dir.mkdir(parents=True)
        self.logdir = self.run_dir / "logs"
        self.logdir.mkdir()
        self.r = Runner(self.logdir, args.timeout)
        self.dsv: Path | None = None
        self.dsv_version = "—"
        self.dvc: Path | None = None
        self.dvc_status = "not needed"
        self.src = self.run_dir / "src" / "data"
        self.files: list[str] = []
        self.tree_bytes = 0
        self.repo: Path | None = None       # B100k dsv repository (section 1)
        self.repo_error = "section 1 did not run"
        self.main_manifest: dict[str, str] | None = None
        self.status_unchanged: float | None = None
        self.status_unchanged_out: str | None = None
        self.trash_dir = self.run_dir / "trash"
        self.ntrash = 0
        self.grepo: Path | None = None
        self.git_status_unchanged: float | None = None

        base = dict(os.environ)
        self.env_dsv = {**base, "DSV_AUTHOR_NAME": "bench", "DSV_AUTHOR_EMAIL": "bench@example.com",
                        "NO_COLOR": "1"}
        self.env_git = {**base, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
                        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
                        # no background `git gc --auto` (it repacks 100k loose objects
                        # while the other tools are being timed)
                        "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0",
                        "GIT_CONFIG_KEY_1": "maintenance.auto", "GIT_CONFIG_VALUE_1": "false"}
        self.env_dvc = {**base, "DVC_NO_ANALYTICS": "1"}

    # -- command helpers
    def dsv_run(self, repo: Path, *args, check=True, tag=None) -> Run:
        assert self.dsv is not None
        return self.r.run([self.dsv, *args], cwd=repo, env=self.env_dsv, check=check,
                          tag=tag or "dsv-" + "-".join(args[:2]))

    def git(self, repo: Path, *args, tag=None) -> Run:
        return self.r.run(["git", *args], cwd=repo, env=self.env_git, tag=tag or "git-" + args[0])

    def cp_tree(self, dst: Path, samples: list[float], tag="cp-baseline") -> float:
        """One timed `cp -r` of the data set to dst (which must not exist).

        The copies are what the other tools then work on, and nothing is
        deleted while measuring (deleting 100k files here is slow and its
        write-back would land in later timings): see trash()."""
        dst.parent.mkdir(parents=True, exist_ok=True)
        settle()
        r = self.r.run(["cp", "-r", self.src, dst], cwd=self.run_dir, tag=tag)
        samples.append(r.seconds)
        log(f"cp -r of the tree -> {dst.relative_to(self.run_dir)}: {fmt_s(r.seconds)}")
        return r.seconds

    def trash(self, path: Path) -> None:
        """Move path out of the way (instant); it is deleted after the run."""
        self.trash_dir.mkdir(exist_ok=True)
        self.ntrash += 1
        os.rename(path, self.trash_dir / f"{self.ntrash:03d}-{path.name}")

    def dsv_store(self, repo: Path) -> tuple[int, int, int]:
        """The object store: packs plus the object index (`objects.redb`); the number of
        files counts all of `.dsv/`. The working-tree index (`index.redb`, like git's
        `.git/index`) is reported separately by `dsv_total`."""
        packs = tree_size(repo / ".dsv" / "packs")
        idx = repo / ".dsv" / "objects.redb"
        st = os.lstat(idx)
        return packs[0] + st.st_size, tree_size(repo / ".dsv")[1], packs[2] + st.st_blocks * 512

    def dsv_total(self, repo: Path) -> int:
        """Bytes of everything under `.dsv/`, working-tree index included."""
        return tree_size(repo / ".dsv")[0]

    def log_count(self, repo: Path) -> int:
        """Lines of `dsv log --oneline` (-1 if it failed): a sanity check only."""
        r = self.dsv_run(repo, "log", "--oneline", tag="dsv-log", check=False)
        if r.rc != 0:
            return -1
        return len([ln for ln in r.stdout().splitlines() if ln.strip()])

    # -- setup
    def setup_dsv(self) -> None:
        a = self.args
        if a.baselines_only:
            self.dsv_version = "not run (--baselines-only)"
            return
        if a.dsv:
            path = Path(a.dsv).resolve()
        else:
            log("building dsv: cargo build --release (a first build takes several minutes)")
            t = time.perf_counter()
            r = subprocess.run(["cargo", "build", "--release"], cwd=REPO_ROOT,
                               capture_output=True, text=True)
            if r.returncode != 0:
                tail = "\n".join((r.stderr or r.stdout).splitlines()[-40:])
                die(f"`cargo build --release` failed in {REPO_ROOT}, so dsv cannot be benchmarked.\n"
                    f"{tail}\n\nPass --dsv PATH to use an existing binary, or --baselines-only "
                    f"to measure only cp/git/DVC.")
            self.report.add_info(f"cargo build --release took {time.perf_counter() - t:.1f} s")
            target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
            path = (target if target.is_absolute() else REPO_ROOT / target) / "release" / "dsv"
        if not path.is_file() or not os.access(path, os.X_OK):
            die(f"dsv binary not found or not executable at {path}.\n"
                f"Build it with `cargo build --release`, pass --dsv PATH, or run with "
                f"--baselines-only to measure only cp/git/DVC.")
        self.dsv = path
        v = subprocess.run([str(path), "--version"], capture_output=True, text=True)
        self.dsv_version = (v.stdout.strip() or v.stderr.strip() or "?").splitlines()[-1] \
            if v.returncode == 0 else f"(--version exited {v.returncode})"
        log(f"dsv: {path} ({self.dsv_version})")

    def setup_dvc(self) -> None:
        a = self.args
        if a.no_dvc:
            self.dvc_status = "UNAVAILABLE: disabled with --no-dvc"
            return
        venv = Path(a.dvc_venv).resolve() if a.dvc_venv else self.workdir / "dvc-venv"
        dvc = venv / "bin" / "dvc"
        try:
            if not dvc.exists():
                log(f"installing DVC into {venv} (python3 -m venv + pip install {a.dvc_spec})")
                t = time.perf_counter()
                rm_rf(venv)
                self.r.run([sys.executable, "-m", "venv", venv], cwd=self.workdir, tag="venv",
                           timeout=600)
                self.r.run([venv / "bin" / "pip", "install", "--disable-pip-version-check",
                            "--no-input", a.dvc_spec], cwd=self.workdir, tag="pip-install-dvc",
                           timeout=1800)
                self.report.add_info(f"DVC venv + pip install took {time.perf_counter() - t:.0f} s")
            v = self.r.run([dvc, "--version"], cwd=self.workdir, env=self.env_dvc, tag="dvc-version")
            lines = [ln for ln in v.stdout().splitlines() if ln.strip()]
            ver = lines[-1].strip() if lines else "?"
            self.dvc = dvc
            self.dvc_status = f"DVC {ver} (venv {venv})"
            log(self.dvc_status)
        except CommandFailed as e:
            self.dvc = None
            self.dvc_status = f"UNAVAILABLE: DVC could not be installed/run: {str(e).splitlines()[0]}"
            log("WARNING: " + self.dvc_status + "\n" + str(e))

    def gen_dataset(self) -> None:
        n = self.args.files
        log(f"generating {dataset_name(n)}: {n} files x {fmt_b(FILE_SIZE)} of os.urandom in {N_DIRS} directories")
        t = time.perf_counter()
        self.files = write_random_tree(self.src, n, FILE_SIZE)
        self.tree_bytes = n * FILE_SIZE
        self.report.add_info(f"data set: {n} files x 10 KiB os.urandom in {N_DIRS} dirs = "
                             f"{fmt_b(self.tree_bytes)}, generated in {time.perf_counter() - t:.1f} s")
        settle()
        warm(self.src)

    def require_repo(self) -> Path:
        if self.repo is None:
            raise Skip(f"needs the dsv repository from section 1, which is unavailable: {self.repo_error}")
        return self.repo

    def _s1_dsv_once(self, i: int, dsv_totals: list[float], cp_samples: list[float]) -> None:
        repo = self.run_dir / ("dsvrepo" if i == 0 else f"dsvrepo{i}")
        self.cp_tree(repo / "data", cp_samples)
        settle()
        warm(repo / "data")
        ri = self.dsv_run(repo, "init")
        ra = self.dsv_run(repo, "add", "-A")
        rc = self.dsv_run(repo, "commit", "-m", "m")
        tot = ri.seconds + ra.seconds + rc.seconds
        dsv_totals.append(tot)
        self.report.add_info(
            f"[1] dsv run {i + 1}: init {fmt_s(ri.seconds)} + add -A {fmt_s(ra.seconds)} "
            f"+ commit {fmt_s(rc.seconds)} = {fmt_s(tot)}; peak RSS add {fmt_b(ra.maxrss)}, "
            f"commit {fmt_b(rc.maxrss)}")
        if i == 0:
            self.repo = repo
            n = self.log_count(repo)
            if n != 1:
                self.report.add_info(f"[1] WARNING: `dsv log --oneline` shows {n} lines after one commit")

    # -- section 1: init + add + commit vs dvc add vs cp -r
    def s1(self):
        reps = self.args.reps
        dsv_totals: list[float] = []
        cp_samples: list[float] = []
        dvc_total = None
        dsv_error = ""
        # Each timed `cp -r` makes the copy that the next tool works on.
        if self.dsv:
            try:
                for i in range(reps):
                    self._s1_dsv_once(i, dsv_totals, cp_samples)
            except CommandFailed as e:
                dsv_error = str(e).splitlines()[0]
                self.repo_error = dsv_error
                log("[1] dsv ERROR: " + str(e))
        else:
            self.cp_tree(self.run_dir / "cp1" / "data", cp_samples)
        repo = self.run_dir / "dvcrepo"
        self.cp_tree(repo / "data", cp_samples)
        if self.dvc:
            settle()
            warm(repo / "data")
            try:
                rinit = self.r.run([self.dvc, "init", "--no-scm", "-q"], cwd=repo, env=self.env_dvc,
                                   tag="dvc-init")
                for kv in (("core.check_update", "false"), ("core.analytics", "false"),
                           ("core.site_cache_dir", str(self.run_dir / "dvc-site-cache"))):
                    self.r.run([self.dvc, "config", *kv], cwd=repo, env=self.env_dvc, tag="dvc-config")
                settle()
                radd = self.r.run([self.dvc, "add", "data"], cwd=repo, env=self.env_dvc, tag="dvc-add")
                dvc_total = rinit.seconds + radd.seconds
                cache = tree_size(repo / ".dvc" / "cache")
                self.report.add_info(
                    f"[1] dvc: init {fmt_s(rinit.seconds)} + add {fmt_s(radd.seconds)} = "
                    f"{fmt_s(dvc_total)}; peak RSS {fmt_b(radd.maxrss)}; .dvc/cache {fmt_b(cache[0])} "
                    f"in {cache[1]} files")
            except CommandFailed as e:
                self.dvc_status = f"UNAVAILABLE: DVC failed during the run: {str(e).splitlines()[0]}"
                log("[1] WARNING: " + str(e))
        self.grepo = self.run_dir / "gitrepo"   # the git baseline of section 2 works on this copy
        self.cp_tree(self.grepo / "data", cp_samples)
        cp = median(cp_samples)
        self.report.add_info(f"[1] cp -r samples {samples(cp_samples)}, median {fmt_s(cp)}")
        dsv = median(dsv_totals) if dsv_totals and not dsv_error else None
        if dsv_error:
            dsv_s, why, res = "error", dsv_error, "ERROR"
        elif dsv is None:
            dsv_s, why, res = "skipped", "no dsv (--baselines-only)", "SKIP"
        else:
            dsv_s = fmt_s(dsv)
        if dvc_total is None:
            self.report.record("1a", dsv_s, "dvc unavailable", "—",
                               "ERROR" if dsv_error else "N/A (no baseline)",
                               self.dvc_status + (f"; dsv: {dsv_error}" if dsv_error else ""))
        elif dsv is None:
            self.report.record("1a", dsv_s, f"dvc {fmt_s(dvc_total)}", "—", res, why)
        else:
            ratio = dvc_total / dsv
            self.report.record("1a", dsv_s, f"dvc {fmt_s(dvc_total)}", f"{ratio:.1f}x", pf(ratio >= 15))
        if dsv is None:
            self.report.record("1b", dsv_s, f"cp -r {fmt_s(cp)}", "—", res, why)
        else:
            ratio = dsv / cp
            self.report.record("1b", dsv_s, f"cp -r {fmt_s(cp)}", f"{ratio:.2f}", pf(ratio <= 1.0))

    # -- section 4: store size and file count
    def s4(self):
        repo = self.require_repo()
        size, count, alloc = self.dsv_store(repo)
        raw = self.tree_bytes
        ratio = size / raw
        total = self.dsv_total(repo)
        self.report.record("4a", fmt_b(size), f"raw {fmt_b(raw)}", f"{ratio:.4f}", pf(ratio <= 1.02),
                           f"packs + objects.redb, allocated {fmt_b(alloc)}; all of .dsv/ incl. the "
                           f"working-tree index: {fmt_b(total)} = {total / raw:.4f}x")
        self.report.record("4b", f"{count} files", "—", "—", pf(count <= MAX_STORE_FILES),
                           f"the data set has {len(self.files)} files")

    # -- section 2: status, nothing changed, vs git status
    def s2(self):
        grepo = self.grepo
        if grepo is None:
            raise Skip("the git copy from section 1 is missing")
        settle()
        self.git(grepo, "init", "-q", "-b", "main")
        ra = self.git(grepo, "add", "-A")
        rc = self.git(grepo, "commit", "-q", "-m", "m")
        self.report.add_info(f"[2] git add -A {fmt_s(ra.seconds)} + git commit {fmt_s(rc.seconds)} "
                             f"(info only; git zlib-compresses every blob)")
        repo = self.repo if self.dsv else None
        if self.dsv and repo is None:
            self.report.add_info(f"[2] dsv part skipped: {self.repo_error}")
        settle()
        warm(grepo)
        if repo:
            warm(repo)
            self.dsv_run(repo, "status", tag="dsv-status-warmup")
        self.git(grepo, "status", tag="git-status-warmup")
        dsv_t, git_t = [], []
        out = None
        for _ in range(self.args.status_runs):
            if repo:
                r = self.dsv_run(repo, "status", tag="dsv-status")
                dsv_t.append(r.seconds)
                out = r.stdout()
            git_t.append(self.git(grepo, "status", tag="git-status").seconds)
        g = median(git_t)
        self.git_status_unchanged = g
        self.report.add_info(f"[2] git status samples {samples(git_t)}")
        if not repo:
            if self.dsv:
                self.report.record("2", "error", f"git status {fmt_s(g)}", "—", "ERROR",
                                   "no dsv repository: " + self.repo_error)
            else:
                self.report.record("2", "skipped", f"git status {fmt_s(g)}", "—", "SKIP", "no dsv")
            return
        d = median(dsv_t)
        self.status_unchanged = d
        self.status_unchanged_out = out
        self.report.add_info(f"[2] dsv status samples {samples(dsv_t)}")
        self.report.record("2", fmt_s(d), f"git status {fmt_s(g)}", f"{d / g:.2f}", pf(d <= g),
                           f"median of {self.args.status_runs} after 1 warm-up")

    # -- section 3: status after rewriting 100 files
    def s3(self):
        rng = random.Random(SEED + 3)
        chosen = rng.sample(self.files, min(REWRITE_STATUS, len(self.files)))
        grepo = self.grepo
        repo = self.repo if self.dsv else None
        if repo:
            rewrite_files([repo / "data" / rel for rel in chosen])
        if grepo:
            rewrite_files([grepo / "data" / rel for rel in chosen])
        settle()
        dsv_t, git_t = [], []
        outs = []
        for _ in range(self.args.status_runs):  # no warm-up: the first run after the change counts
            if repo:
                r = self.dsv_run(repo, "status", tag="dsv-status-changed")
                dsv_t.append(r.seconds)
                outs.append(r.stdout())
            if grepo:
                git_t.append(self.git(grepo, "status", tag="git-status-changed").seconds)
        if git_t and self.git_status_unchanged:
            g = median(git_t)
            self.report.add_info(f"[3] git status after rewriting {len(chosen)} files: samples {samples(git_t)}, "
                                 f"median {fmt_s(g)} ({g / self.git_status_unchanged:.2f}x its unchanged status)")
        if not repo:
            if self.dsv:
                self.report.record("3", "error", "—", "—", "ERROR", "no dsv repository: " + self.repo_error)
            else:
                self.report.record("3", "skipped", "—", "—", "SKIP", "no dsv")
            return
        self.report.add_info(f"[3] dsv status after rewriting {len(chosen)} files: samples {samples(dsv_t)}")
        if self.status_unchanged is None:
            raise Skip("unchanged dsv status (section 2) was not measured")
        d = median(dsv_t)
        ratio = d / self.status_unchanged
        ok = ratio <= 1.2
        note = f"median of {self.args.status_runs}, first run {fmt_s(dsv_t[0])}"
        if outs[0] == self.status_unchanged_out:
            ok = False
            note += "; status OUTPUT IS IDENTICAL to the unchanged one: change not detected?"
        self.report.record("3", fmt_s(d), f"unchanged status {fmt_s(self.status_unchanged)}",
                           f"{ratio:.2f}", pf(ok), note)
        # commit the 100 changes so the later measurements start from a clean worktree
        s0 = self.dsv_store(repo)[0]
        ra = self.dsv_run(repo, "add", "-A")
        rc = self.dsv_run(repo, "commit", "-m", "rewrite100")
        s1 = self.dsv_store(repo)[0]
        self.report.add_info(f"[3] then add -A {fmt_s(ra.seconds)} + commit {fmt_s(rc.seconds)} of the "
                             f"{len(chosen)} rewritten files; store grew {fmt_b(s1 - s0)} "
                             f"(raw changed bytes {fmt_b(len(chosen) * FILE_SIZE)})")

    # -- section 7: reset --hard into an empty worktree; switch rewriting exactly the changed files
    def s7(self):
        repo = self.repo if self.dsv else None
        if self.dsv and repo is None:
            raise Skip(self.repo_error)
        reset_t = []
        cp_samples: list[float] = []
        restored_ok = ""
        if repo:
            log("[7] hashing the worktree (main) for verification")
            self.main_manifest = manifest(repo)
            store = repo / ".dsv"
        warm(self.src)
        for i in range(self.args.reps):
            self.cp_tree(self.run_dir / f"cp7-{i}" / "data", cp_samples)
            if repo:
                for entry in list(repo.iterdir()):
                    if entry.name != ".dsv":
                        self.trash(entry)   # the worktree is now empty but for .dsv/
                settle()
                warm(store)
                r = self.dsv_run(repo, "reset", "--hard")
                reset_t.append(r.seconds)
                log(f"[7] reset --hard: {fmt_s(r.seconds)} (peak RSS {fmt_b(r.maxrss)})")
                bad = compare_manifests(self.main_manifest, manifest(repo))
                if bad:
                    restored_ok = bad
        self.cp_tree(self.run_dir / f"cp7-{self.args.reps}" / "data", cp_samples)
        cp = median(cp_samples)
        if not repo:
            self.report.record("7a", "skipped", f"cp -r {fmt_s(cp)}", "—", "SKIP", "no dsv")
            self.report.record("7b", "skipped", "—", "—", "SKIP", "no dsv")
            self.report.record("7c", "skipped", "—", "—", "SKIP", "no dsv")
            return
        d = median(reset_t)
        ratio = d / cp
        note = f"cp samples {samples(cp_samples)}"
        if restored_ok:
            note = "RESTORED TREE IS WRONG: " + restored_ok + "; " + note
        self.report.record("7a", fmt_s(d), f"cp -r {fmt_s(cp)}", f"{ratio:.2f}",
                           pf(ratio <= 1.10 and not restored_ok), note)

        # 7b/7c: switch -c other, rewrite 1000, commit, switch main
        rs = self.dsv_run(repo, "switch", "-c", "other")
        rng = random.Random(SEED + 7)
        k = min(REWRITE_SWITCH, len(self.files) // 2)
        chosen = sorted("data/" + rel for rel in rng.sample(self.files, k))
        rewrite_files([repo / rel for rel in chosen])
        ra = self.dsv_run(repo, "add", "-A")
        rc = self.dsv_run(repo, "commit", "-m", "other")
        self.report.add_info(f"[7] switch -c other {fmt_s(rs.seconds)}; add -A {fmt_s(ra.seconds)} + "
                             f"commit {fmt_s(rc.seconds)} of {k} rewritten files")
        before = tree_stats(repo)
        marker = self.run_dir / "switch.marker"
        marker.write_bytes(b"")
        time.sleep(0.05)  # file timestamps are jiffy-coarse: make "newer than marker" unambiguous
        marker_ns = marker.stat().st_mtime_ns
        settle()
        warm(repo / ".dsv")
        r = self.dsv_run(repo, "switch", "main")
        after = tree_stats(repo)
        changed = {p for p in before if p in after and after[p][:2] != before[p][:2]}
        newer = {p for p in after if after[p][1] > marker_ns}
        ctime_changed = {p for p in before if p in after and after[p][2] != before[p][2]}
        missing = [p for p in before if p not in after]
        extra = [p for p in after if p not in before]
        touched = changed | newer
        bad = compare_manifests(self.main_manifest, manifest(repo))
        ok = touched == set(chosen) and not missing and not extra and not bad
        note = (f"inode/mtime changed {len(changed)}, newer than marker {len(newer)}, "
                f"ctime changed {len(ctime_changed)}, missing {len(missing)}, new {len(extra)}")
        if touched != set(chosen):
            note += (f"; {len(touched - set(chosen))} touched that did not differ, "
                     f"{len(set(chosen) - touched)} differing not rewritten")
        if bad:
            note += "; CONTENT AFTER SWITCH IS WRONG: " + bad
        self.report.record("7b", f"{len(touched)} files", f"{k} differ", "—",
                           pf(ok) if k == REWRITE_SWITCH else pf(ok) + f" (k={k})", note)
        self.report.record("7c", fmt_s(r.seconds), "—", f"{r.seconds / k * 1000:.3f} ms/changed file",
                           "INFO", f"peak RSS {fmt_b(r.maxrss)}")

    # -- section 5: committing a copy of the tree stores almost nothing
    def s5(self):
        repo = self.require_repo()
        s0 = self.dsv_store(repo)[0]
        t0 = self.dsv_total(repo)
        settle()
        rcp = self.r.run(["cp", "-r", "data", "data_copy"], cwd=repo, tag="cp-data-copy")
        copy_bytes = tree_size(repo / "data_copy")[0]
        settle()
        ra = self.dsv_run(repo, "add", "-A")
        rc = self.dsv_run(repo, "commit", "-m", "copy")
        s1 = self.dsv_store(repo)[0]
        growth = s1 - s0
        ratio = growth / copy_bytes
        tgrowth = self.dsv_total(repo) - t0
        self.report.record("5", fmt_b(growth), f"tree {fmt_b(copy_bytes)}", f"{ratio * 100:.3f}%",
                           pf(ratio <= 0.01),
                           f"store = packs + objects.redb; all of .dsv/ grew {fmt_b(tgrowth)} "
                           f"(the working-tree index gains 100k entries); "
                           f"add -A {fmt_s(ra.seconds)} + commit {fmt_s(rc.seconds)}; "
                           f"the `cp -r data data_copy` took {fmt_s(rcp.seconds)}")

    # -- section 6: one byte changed in the middle of a big file
    def s6(self):
        size = self.args.bigfile_mib * MiB
        repo = self.run_dir / "big6"
        repo.mkdir()
        f = repo / "big.bin"
        write_urandom_file(f, size)
        settle()
        self.dsv_run(repo, "init")
        ra = self.dsv_run(repo, "add", "-A")
        rc = self.dsv_run(repo, "commit", "-m", "big")
        s1 = self.dsv_store(repo)[0]
        with open(f, "r+b") as fh:
            fh.seek(size // 2)
            b = fh.read(1)
            fh.seek(size // 2)
            fh.write(bytes([b[0] ^ 0xFF]))
        self.dsv_run(repo, "add", "-A")
        self.dsv_run(repo, "commit", "-m", "one byte")
        s2 = self.dsv_store(repo)[0]
        n = self.log_count(repo)
        growth = s2 - s1
        note = (f"{fmt_b(size)} os.urandom file; first commit stored {fmt_b(s1)} "
                f"(add {fmt_s(ra.seconds)}, commit {fmt_s(rc.seconds)})")
        ok = growth <= 256 * KiB
        if n != 2:
            ok = False
            note += f"; `dsv log --oneline` shows {n} commits, expected 2"
        self.report.record("6", fmt_b(growth), f"file {fmt_b(size)}", f"{growth / size * 100:.4f}%",
                           pf(ok), note)
        if not self.args.keep:
            rm_rf(repo)

    # -- section 8: peak memory of dsv add on a big file
    def s8(self):
        size = self.args.memfile_mib * MiB
        repo = self.run_dir / "big8"
        repo.mkdir()
        f = repo / "big.bin"
        log(f"[8] generating {fmt_b(size)} (64 MiB os.urandom buffer, per-block byte permutation)")
        t = time.perf_counter()
        write_varied_file(f, size)
        self.report.add_info(f"[8] generated {fmt_b(size)} in {time.perf_counter() - t:.1f} s")
        self.dsv_run(repo, "init")
        settle()
        warm(f)
        # ru_maxrss of a child spawned by this (large) Python process includes the parent's
        # pages from before exec (Linux keeps the vfork'd image's high-water mark). So the
        # add is started from a small interpreter that reports its child's own figure; the
        # small interpreter's ~10 MiB can only inflate the result.
        ra = self.r.run([sys.executable, "-S", "-c", RSS_HELPER, self.dsv, "add", "big.bin"], cwd=repo,
                        env=self.env_dsv, tag="dsv-add-big-rss")
        ra.maxrss = int(ra.err.read_text().strip().splitlines()[-1]) * 1024
        rc = self.dsv_run(repo, "commit", "-m", "big")
        store = self.dsv_store(repo)[0]
        self.report.record("8", fmt_b(ra.maxrss), f"file {fmt_b(size)}", "—", pf(ra.maxrss <= 256 * MiB),
                           f"add {fmt_s(ra.seconds)} ({size / MiB / ra.seconds:.0f} MiB/s); commit "
                           f"peak RSS {fmt_b(rc.maxrss)}; stored {fmt_b(store)}")
        if not self.args.keep:
            rm_rf(repo)

    # -- driver
    def run_all(self) -> None:
        sel = self.args.sections
        needs_data = bool(sel & {1, 2, 3, 4, 5, 7})
        self.setup_dsv()
        if 1 in sel:
            self.setup_dvc()
        else:
            self.dvc_status = "not run (section 1 not selected)"
        if needs_data:
            self.gen_dataset()
        plan = [(1, self.s1), (4, self.s4), (2, self.s2), (3, self.s3), (7, self.s7),
                (5, self.s5), (6, self.s6), (8, self.s8)]
        for num, fn in plan:
            keys = [k for k, (s, _, _) in ROWS.items() if s == num]
            if num not in sel:
                self.report.fill(keys, "SKIP", "not selected with --only")
                continue
            if self.dsv is None and num in (4, 5, 6, 8):
                self.report.fill(keys, "SKIP", "no dsv (--baselines-only)")
                continue
            log(f"---- section {num}")
            try:
                fn()
            except Skip as e:
                self.report.fill(keys, "ERROR", f"skipped: {e}")
            except Exception as e:  # keep going: every other section still runs
                msg = str(e).strip() or type(e).__name__
                with open(self.logdir / "errors.txt", "a") as fh:
                    fh.write(f"section {num}:\n{traceback.format_exc()}\n")
                log(f"section {num} ERROR: {msg}")
                self.report.fill(keys, "ERROR", msg.splitlines()[0])


def die(msg: str) -> None:
    print(f"\nERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def loadavg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def meminfo_total() -> str:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return fmt_b(int(line.split()[1]) * KiB)
    except OSError:
        pass
    return "?"


def dataset_name(n: int) -> str:
    return f"B{n // 1000}k" if n % 1000 == 0 else f"B{n}"


def fs_type(path: Path) -> str:
    """File system type of the mount holding path, from /proc/mounts."""
    best, kind = "", "?"
    try:
        for line in open("/proc/mounts"):
            parts = line.split()
            mnt = parts[1].replace("\\040", " ")
            if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def tool_version(argv) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def render_section(b: Bench, cmdline: str, started: str, elapsed: float) -> str:
    a = b.args
    mode = "quick" if a.quick else "full"
    if a.baselines_only:
        mode += ", baselines only (dsv not run)"
    lines = [
        BEGIN_MARK,
        "## Local repository core (`bench/core.py`)",
        "",
        f"- Command: `{cmdline}` ({mode} mode)",
        f"- Date: {started}; wall time {elapsed / 60:.1f} min",
        f"- Machine: nproc={os.cpu_count()}, memory {meminfo_total()}, {platform.system()} "
        f"{platform.release()}, work dir on {fs_type(b.workdir)}; 1-min load average "
        f"{b.load_start} at start, {loadavg()} at end",
        f"- dsv: commit {b.commit} (at start); binary {b.dsv or '—'} ({b.dsv_version})",
        f"- Baselines: {b.dvc_status}; {tool_version(['git', '--version'])}; "
        f"{tool_version(['cp', '--version'])}",
        f"- Data set {dataset_name(a.files)}: {a.files} files x 10 KiB of os.urandom in {N_DIRS} directories; "
        f"big file (6) {a.bigfile_mib} MiB os.urandom; memory file (8) {a.memfile_mib} MiB = 64 MiB "
        f"os.urandom buffer, each 64 MiB block through its own random byte permutation",
        f"- Timing: time.perf_counter() around each command, page cache warmed and `sync` before "
        f"each timed command (sync not timed); `status` = median of {a.status_runs} after a warm-up; "
        f"`cp -r` = median of its samples in the same run (each timed copy is the tree the next tool "
        f"works on); for (7) the worktree is emptied by moving everything but .dsv/ out of it; "
        f"git runs with gc.auto=0; DVC with analytics and update checks off",
        "",
        b.report.table(),
        "",
        "Details:",
        "",
    ]
    lines += [f"- {x}" for x in b.report.info]
    lines.append(END_MARK)
    return "\n".join(lines) + "\n"


DOC_HEADER = """# Benchmarks

Figures on this page are produced by the scripts in `bench/` (see
`bench/README.md`). The machines they run on have 2 cores and are noisy, so
each benchmark runs its baselines (DVC, git, `cp -r`) in the same invocation
and every target is a **ratio** against a baseline or against raw bytes;
absolute times are given only for context. A result within a few percent of
its target should be re-run before anyone draws a conclusion from it.

"""


def write_doc(section: str) -> None:
    if DOC_PATH.exists():
        text = DOC_PATH.read_text()
        if BEGIN_MARK in text and END_MARK in text:
            pre, rest = text.split(BEGIN_MARK, 1)
            _, post = rest.split(END_MARK, 1)
            text = pre + section.rstrip("\n") + post
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        text = DOC_HEADER + section
    DOC_PATH.write_text(text)
    log(f"wrote {DOC_PATH}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsv", metavar="PATH", help="use this dsv binary instead of `cargo build --release`")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="work directory (default: a fresh temp dir under /tmp); "
                        "DIR/run is wiped at start, DIR/dvc-venv is reused if present")
    p.add_argument("--files", type=int, metavar="N", help="files in the data set (default 100000)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N=5000, 32 MiB big file, 512 MiB memory file")
    p.add_argument("--bigfile-mib", type=int, help="size of the 1-byte-edit file (6); default 256, quick 32")
    p.add_argument("--memfile-mib", type=int, help="size of the peak-memory file (8); default 4096, quick 512")
    p.add_argument("--reps", type=int, default=1,
                   help="repetitions of the heavy dsv runs (1: init/add/commit, 7: reset --hard); median")
    p.add_argument("--status-runs", type=int, default=STATUS_RUNS,
                   help=f"timed runs of each `status` (median; default {STATUS_RUNS})")
    p.add_argument("--only", metavar="LIST",
                   help="comma-separated sections to run, e.g. 1,2,8 (2,3,4,5,7 pull in 1)")
    p.add_argument("--baselines-only", action="store_true", help="do not build or run dsv")
    p.add_argument("--no-dvc", action="store_true", help="do not install or run DVC")
    p.add_argument("--dvc-venv", metavar="DIR", help="venv holding DVC (default WORKDIR/dvc-venv; "
                   "created with python3 -m venv + pip install if missing)")
    p.add_argument("--dvc-spec", default="dvc", help="pip requirement for DVC (default: dvc)")
    p.add_argument("--timeout", type=float, default=1800, help="per-command timeout in seconds")
    p.add_argument("--keep", action="store_true", help="keep the work directory and all repositories")
    p.add_argument("--write-doc", action="store_true",
                   help=f"replace the core section of {DOC_PATH.relative_to(REPO_ROOT)}")
    a = p.parse_args(argv)
    a.files = a.files or (5000 if a.quick else 100000)
    a.bigfile_mib = a.bigfile_mib or (32 if a.quick else 256)
    a.memfile_mib = a.memfile_mib or (512 if a.quick else 4096)
    if a.files < N_DIRS:
        p.error(f"--files must be at least {N_DIRS}")
    if a.only:
        try:
            a.sections = {int(x) for x in a.only.split(",") if x.strip()}
        except ValueError:
            p.error("--only takes section numbers, e.g. 1,2,8")
        if a.sections - set(range(1, 9)):
            p.error("sections are 1..8")
        if a.sections & NEEDS_REPO:
            a.sections.add(1)
        if 3 in a.sections:
            a.sections.add(2)
    else:
        a.sections = set(range(1, 9))
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmdline = "python3 " + shlex.join(
        [os.path.relpath(sys.argv[0], REPO_ROOT) if sys.argv[0].endswith("core.py") else sys.argv[0],
         *(argv if argv is not None else sys.argv[1:])])
    auto_workdir = a.workdir is None
    if auto_workdir:
        a.workdir = Path(tempfile.mkdtemp(prefix="dsv-bench-", dir="/tmp"))
    a.workdir = a.workdir.resolve()
    a.workdir.mkdir(parents=True, exist_ok=True)
    need = (a.files * FILE_SIZE * 9 if a.sections & {1, 2, 3, 4, 5, 7} else 0) \
        + 3 * a.memfile_mib * MiB + 3 * a.bigfile_mib * MiB + GiB
    free = shutil.disk_usage(a.workdir).free
    log(f"work dir {a.workdir} ({fmt_b(free)} free, this run needs about {fmt_b(need)})")
    if free < need:
        log("WARNING: the work dir may run out of space")
    b = Bench(a)
    b.run_all()
    elapsed = time.perf_counter() - T0
    section = render_section(b, cmdline, started, elapsed)
    print("\n" + section, flush=True)
    if a.write_doc:
        write_doc(section)
    code = b.report.exit_code()
    log(f"benchmark done in {elapsed / 60:.1f} min, exit status {code}")
    if not a.keep:
        if code == 2:  # keep the per-command logs that the error messages point to
            keep_logs = Path(tempfile.mkdtemp(prefix="dsv-bench-logs-", dir="/tmp"))
            os.rename(b.logdir, keep_logs / "logs")
            log(f"some commands failed: their logs were moved to {keep_logs / 'logs'}")
        log(f"deleting {b.run_dir} (pass --keep to keep it)")
        t = time.perf_counter()
        rm_rf(b.run_dir)
        if auto_workdir:
            rm_rf(a.workdir)  # (the DVC venv goes with it: pass --workdir or --dvc-venv to reuse it)
        log(f"cleanup took {time.perf_counter() - t:.0f} s")
    else:
        log(f"kept {a.workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
