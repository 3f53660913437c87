#!/usr/bin/env python3
"""Reading a version from Python (issue 19), figures for docs/benchmarks.md.

1. Local: N frames (default 100,000) of 10 KiB with YOLO labels. Every frame's
   bytes and objects through `repo.frames("HEAD")`, against a plain Python loop
   over the checked-out files that reads each frame and parses its label file
   (centre boxes to top-left, class names from data.yaml: what dsv hands out).
2. Remote on moto (S3 protocol, loopback): M frames (default 10,000) pushed with
   dsv, and the same files stored one object per file. A 1% CEL subset read in
   place (bytes from the bucket against the subset's bytes); a full pass (frames/s
   against boto3 GETs of the per-file objects with 16 threads); a second pass
   (requests to the bucket: 0 expected).
3. Workers (part of 1): `view.torch(iterable=True)` through a real
   `torch.utils.data.DataLoader(num_workers=2, persistent_workers=True,
   batch_size=64)`, against the plain dsv iteration in the same run. As a
   training job: the transform makes each frame's bytes a uint8 tensor (a
   job's transform decodes the image into one) and the default collate stacks
   a batch in shared memory; the consumer counts frames, bytes and objects.
   With --loader-samples, the sample dicts themselves are handed over (collated
   as lists: their bytes go through the workers' pipe, 64 KiB at a time). Two epochs per run: the
   figure is the second, what a training job sees from its second epoch on;
   the first (workers started: processes, the dataset unpickled, the repository
   opened) is printed beside it. With tensors, the same DataLoader over the
   same frames already held in memory is timed too: the DataLoader's own
   floor, against which view.torch()'s share shows. Without torch (a system python3), a stand-in:
   the dataset read by 2 spawned processes of a multiprocessing pool, process
   start included and no queue to the consumer: not the figure of the issue.

Usage: bench/python_read.py [--frames N] [--remote-frames M] [--dsv BIN] [--work DIR]
                             [--compare PKGDIR]
Needs the package installed (`pip install ./python`, a release build) and, for
part 2, moto[server] and boto3. Both sides run in one process, alternately,
three times each; medians are printed, with the CPU time (user + system, all
threads) of each loop: on a loaded machine the wall-clock figures measure the
load as much as the code.
--compare PKGDIR also times the dsv loop (and the workers' epochs, unless skipped) with
another build of the package (a directory holding `dsv/`, e.g. the build before a
change) in a child process, alternately with the others: before and after in the
same invocation.
"""

import argparse
import concurrent.futures
import os
import json
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dsv

NAMES = ["car", "person", "bike", "sign"]


def sh(cmd, cwd, env=None):
    e = dict(os.environ, DSV_AUTHOR_NAME="b", DSV_AUTHOR_EMAIL="b@b", **(env or {}))
    r = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(map(str, cmd))}: {r.stderr}")
    return r.stdout


def make_dataset(root, n, dsv_bin):
    if (root / ".dsv").exists():
        return
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(f"names: {NAMES}\n")
    rnd = random.Random(1)
    for i in range(n):
        (root / "images" / f"{i:06}.jpg").write_bytes(rnd.randbytes(10240))
        lines = []
        for _ in range(rnd.randint(1, 6)):
            lines.append(f"{rnd.randrange(4)} {rnd.random():.6f} {rnd.random():.6f} "
                         f"{rnd.random() / 4:.6f} {rnd.random() / 4:.6f}")
        (root / "labels" / f"{i:06}.txt").write_text("\n".join(lines) + "\n")
    sh([dsv_bin, "init"], root)
    sh([dsv_bin, "add", "."], root)
    sh([dsv_bin, "commit", "-q", "-m", "bench"], root)


def plain_loop(root):
    """The baseline: read each checked-out frame and parse its YOLO label file."""
    n = nbytes = nobj = 0
    imgs = sorted(os.listdir(root / "images"))
    for name in imgs:
        with open(root / "images" / name, "rb") as f:
            data = f.read()
        objs = []
        with open(root / "labels" / (name[:-4] + ".txt")) as f:
            for line in f:
                p = line.split()
                if len(p) < 5:
                    continue
                cx, cy, w, h = map(float, p[1:5])
                objs.append({"class": NAMES[int(p[0])],
                             "box": {"x": cx - w / 2, "y": cy - h / 2, "w": w, "h": h}})
        n += 1
        nbytes += len(data)
        nobj += len(objs)
    return n, nbytes, nobj


def dsv_loop(root):
    repo = dsv.Repository(str(root))
    n = nbytes = nobj = 0
    for f in repo.frames("HEAD"):
        data = f.read()
        objs = f.objects
        n += 1
        nbytes += len(data)
        nobj += len(objs)
    return n, nbytes, nobj


def _collate(batch):
    """The batch as the list of its samples (module level: spawned workers
    unpickle it). PyTorch's default collate has no rule for bytes; a training
    job's transform decodes the image first, which is not dsv's time."""
    return batch


def have_torch():
    try:
        import torch.utils.data  # noqa: F401
    except ImportError:
        return False
    return True


def to_tensor(sample):
    """A training job's transform, minus the image decoding: the frame's bytes
    as a uint8 tensor and its object count. PyTorch's default collate stacks a
    batch of them into one tensor in shared memory: the bytes do not go
    through the workers' pipe, as a job's decoded images do not."""
    import torch

    return torch.frombuffer(bytearray(sample["data"]), dtype=torch.uint8), len(sample["objects"])


def loader_epochs(root, nw=2, batch_size=64, epochs=2, tensors=True):
    """view.torch(iterable=True) through a real torch DataLoader with nw
    workers (persistent, started as the platform does: fork on Linux), the
    consumer counting frames, bytes and objects as dsv_loop does. Gives the
    time of each epoch and the last epoch's counts. The first epoch pays the
    workers' start (process, unpickling the dataset, opening the repository);
    a training job pays that once, its later epochs are the steady rate."""
    from torch.utils.data import DataLoader

    repo = dsv.Repository(str(root))
    if tensors:
        ds = repo.frames("HEAD").torch(iterable=True, transform=to_tensor)
        dl = DataLoader(ds, batch_size=batch_size, num_workers=nw, persistent_workers=True)
    else:
        ds = repo.frames("HEAD").torch(iterable=True)
        dl = DataLoader(ds, batch_size=batch_size, num_workers=nw, persistent_workers=True,
                        collate_fn=_collate)
    times = []
    for e in range(epochs):
        ds.set_epoch(e)
        t = time.perf_counter()
        it = iter(dl)
        # CPU of the parent and of the workers over the epoch (Linux /proc):
        # what the DataLoader costs per frame, whatever the machine's load.
        pids = [w.pid for w in getattr(it, "_workers", [])]
        c0 = [proc_cpu(p) for p in [os.getpid()] + pids]
        n = nbytes = nobj = 0
        for batch in it:
            if tensors:
                data, objs = batch
                n += data.shape[0]
                nbytes += data.numel()
                nobj += int(objs.sum())
                continue
            for s in batch:
                n += 1
                nbytes += len(s["data"])
                nobj += len(s["objects"])
        times.append(time.perf_counter() - t)
        c1 = [proc_cpu(p) for p in [os.getpid()] + pids]
        if None not in c0 + c1:
            LOADER_CPU.append((c1[0] - c0[0], sum(c1[1:]) - sum(c0[1:])))
    del dl
    return times, (n, nbytes, nobj)


LOADER_CPU = []


class _MemoryFrames:
    """The DataLoader's floor: the same samples (bytes and objects) already in
    memory, each worker taking its own contiguous half as view.torch() does.
    Whatever a DataLoader over dsv costs beyond this is dsv's share. Built
    lazily as a torch IterableDataset subclass (torch is optional here)."""

    def __new__(cls, samples):
        import torch.utils.data as tud

        class Frames(tud.IterableDataset):
            def __init__(self, samples):
                self.samples = samples

            def __iter__(self):
                info = tud.get_worker_info()
                k, i = (1, 0) if info is None else (info.num_workers, info.id)
                n = len(self.samples)
                for s in self.samples[n * i // k:n * (i + 1) // k]:
                    yield to_tensor(s)

        return Frames(samples)


def floor_epochs(root, nw=2, batch_size=64, epochs=2):
    """A DataLoader over the same frames held in memory (read once through
    dsv, not timed), with loader_epochs' settings: the time of each epoch."""
    from torch.utils.data import DataLoader

    samples = [{"data": f.read(), "objects": f.objects}
               for f in dsv.Repository(str(root)).frames("HEAD")]
    dl = DataLoader(_MemoryFrames(samples), batch_size=batch_size, num_workers=nw,
                    persistent_workers=True)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        n = 0
        for data, _objs in dl:
            n += data.shape[0]
        times.append(time.perf_counter() - t)
    assert n == len(samples), (n, len(samples))
    del dl
    return times


def proc_cpu(pid):
    """User + system CPU seconds of process `pid` (None where /proc is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(args):
    """One stand-in DataLoader worker (no torch): torch's get_worker_info()
    answers (id, nw)."""
    ds, wid, nw = args
    from types import SimpleNamespace

    import dsv.torch as dt

    dt.get_worker_info = lambda: SimpleNamespace(id=wid, num_workers=nw)
    dt.get_rank_world = lambda: (0, 1)
    n = nbytes = nobj = 0
    for s in ds:
        n += 1
        nbytes += len(s["data"])
        nobj += len(s["objects"])
    return n, nbytes, nobj


def standin_epochs(root, nw=2):
    """Without torch: view.torch(iterable=True) read by nw spawned processes
    of a pool, the samples counted in the workers (nothing sent back per
    sample). One epoch, process start included: a worse case than a
    DataLoader's later epochs, and no queue between workers and the consumer."""
    import multiprocessing as mp

    import dsv.torch  # noqa: F401

    t = time.perf_counter()
    repo = dsv.Repository(str(root))
    ds = repo.frames("HEAD").torch(iterable=True)
    del repo
    with mp.get_context("spawn").Pool(nw) as pool:
        parts = pool.map(_worker, [(ds, w, nw) for w in range(nw)])
    return [time.perf_counter() - t], tuple(map(sum, zip(*parts)))


# Whether the DataLoader's samples are made tensors (to_tensor), not sent as dicts.
TENSORS = [True]


def workers_epochs(root):
    return loader_epochs(root, tensors=TENSORS[0]) if have_torch() else standin_epochs(root)


def cpu_time():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


CPU = {}


def timed(fn, *a):
    # With the worker processes a loop starts and waits for.
    c = child_cpu_time()
    t = time.perf_counter()
    r = fn(*a)
    dt = time.perf_counter() - t
    CPU.setdefault(fn.__name__, []).append(child_cpu_time() - c)
    return dt, r


def compare_loop(root, pkg, what="dsv"):
    """dsv_loop (or, `what` "workers", workers_epochs) in a child process
    importing dsv from `pkg` (another build). For "workers": the epochs' times."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")]))
    more = [] if TENSORS[0] else ["--loader-samples"]
    out = subprocess.run([sys.executable, __file__, f"--child-{what}-loop", str(root), *more], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"--compare {pkg}: {out.stderr}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    CPU.setdefault(f"compare_{what}_loop", []).append(d["cpu"])
    return d["time"], tuple(d["result"])


def child_cpu_time():
    """CPU time of this process and its waited-for children (the workers)."""
    return cpu_time() + sum(getattr(resource.getrusage(resource.RUSAGE_CHILDREN), f)
                            for f in ("ru_utime", "ru_stime"))


def cpu_note(name, n):
    c = statistics.median(CPU[name])
    return f"CPU {c:.2f} s ({c / n * 1e6:.1f} us/frame)"


def local_part(work, n, dsv_bin, compare=None, workers=True):
    root = work / "local"
    t0 = time.perf_counter()
    make_dataset(root, n, dsv_bin)
    print(f"local: dataset of {n} frames ready ({time.perf_counter() - t0:.1f} s)")
    t, _ = timed(lambda: len(dsv.Repository(str(root)).frames("HEAD")))
    print(f"local: first frames() (query index built and cached): {t:.2f} s")
    a, b, d = [], [], []
    for _ in range(3):
        ta, ra = timed(plain_loop, root)
        tb, rb = timed(dsv_loop, root)
        assert ra == rb, (ra, rb)
        a.append(ta)
        b.append(tb)
        if compare:
            td, rd = compare_loop(root, compare)
            assert rd == ra, (rd, ra)
            d.append(td)
    # Workers: epochs of a DataLoader (or the stand-in) in this process and,
    # with --compare, with the other build in a child process, alternately.
    kind = ("torch DataLoader(num_workers=2, persistent_workers=True, batch_size=64, "
            + ("samples made uint8 tensors and collated" if TENSORS[0] else
               "sample dicts, collated as lists") +
            "), epoch 2 (epoch 1 pays the workers' start)" if have_torch() else
            "stand-in (no torch): 2 spawned processes, process start included")
    c, c1, e, e1 = [], [], [], []
    for _ in range(3 if workers else 0):
        tc, rc = workers_epochs(root)
        assert rc == ra, (rc, ra)
        c.append(tc[-1])
        c1.append(tc[0])
        if compare:
            te, re_ = compare_loop(root, compare, "workers")
            assert re_ == ra, (re_, ra)
            e.append(te[-1])
            e1.append(te[0])
    ma, mb = statistics.median(a), statistics.median(b)
    if c:
        mc = statistics.median(c)
        print(f"local: view.torch(iterable=True), {kind}: {mc:.2f} s ({n / mc:,.0f} frames/s): "
              f"{mb / mc:.2f}x the plain dsv iteration  [runs {[round(x, 2) for x in c]}; "
              f"first epochs {[round(x, 2) for x in c1]}]")
        if LOADER_CPU:
            # The last epoch of each run.
            last = LOADER_CPU[1::2] if len(LOADER_CPU) == 2 * len(c) else LOADER_CPU
            pc = statistics.median(x[0] for x in last)
            wc = statistics.median(x[1] for x in last)
            print(f"local: the DataLoader's CPU per frame (that epoch, medians): parent {pc / n * 1e6:.1f} us, "
                  f"the 2 workers together {wc / n * 1e6:.1f} us; the plain dsv iteration "
                  f"{statistics.median(CPU['dsv_loop']) / n * 1e6:.1f} us")
    if c and TENSORS[0] and have_torch():
        # The same DataLoader over the frames already in memory: its own cost.
        f = [floor_epochs(root)[-1] for _ in range(3)]
        mf = statistics.median(f)
        print(f"local: the same DataLoader over the frames held in memory (its own floor): "
              f"{mf:.2f} s ({n / mf:,.0f} frames/s); view.torch() delivers {mf / mc:.2f}x "
              f"the floor's frames per second  [runs {[round(x, 2) for x in f]}]")
    if e:
        me = statistics.median(e)
        print(f"local: the same with the package in {compare}: {me:.2f} s ({n / me:,.0f} frames/s): "
              f"{mb / me:.2f}x the plain dsv iteration (of this build); this build is "
              f"{me / mc:.2f}x as fast  [runs {[round(x, 2) for x in e]}; "
              f"first epochs {[round(x, 2) for x in e1]}]")
    print(f"local: plain loop {ma:.2f} s ({n / ma:,.0f} frames/s, {cpu_note('plain_loop', n)}), "
          f"dsv frames() {mb:.2f} s ({n / mb:,.0f} frames/s, {cpu_note('dsv_loop', n)}): {ma / mb:.2f}x  "
          f"[runs: plain {[round(x, 2) for x in a]}, dsv {[round(x, 2) for x in b]}]")
    if d:
        md = statistics.median(d)
        print(f"local: dsv frames() with the package in {compare}: {md:.2f} s ({n / md:,.0f} frames/s, "
              f"{cpu_note('compare_dsv_loop', n)}): {ma / md:.2f}x the plain loop; this build is "
              f"{md / mb:.2f}x as fast  [runs {[round(x, 2) for x in d]}]")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def remote_part(work, m, dsv_bin):
    import boto3
    from botocore.config import Config

    port = free_port()
    moto_bin = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    srv = subprocess.Popen([moto_bin, "-H", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        env = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
        os.environ.update(env)
        s3 = boto3.client("s3", endpoint_url=endpoint,
                          config=Config(max_pool_connections=32))
        for b in ("packs", "files"):
            s3.create_bucket(Bucket=b)
        root = work / "remote-src"
        make_dataset(root, m, dsv_bin)
        sh([dsv_bin, "remote", "add", "origin", "s3://packs/ds"], root, env)
        sh([dsv_bin, "push", "-q", "origin", "main"], root, env)
        names = sorted(os.listdir(root / "images"))

        def put(name):
            s3.put_object(Bucket="files", Key=f"images/{name}",
                          Body=(root / "images" / name).read_bytes())
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(put, names))
        print(f"remote: {m} frames pushed with dsv and stored one object per file")

        cache = work / "cache-subset"
        shutil.rmtree(cache, ignore_errors=True)
        r = dsv.Repository.open_remote("s3://packs/ds", cache_dir=str(cache))
        v = r.frames("main", where='path.endsWith("00.jpg")')
        before = r.transfer()["transfer"]["bytes_down"]
        got = sum(len(f.read()) for f in v)
        down = r.transfer()["transfer"]["bytes_down"] - before
        print(f"remote: 1% subset ({len(v)} frames, {got:,} bytes) read {down:,} bytes "
              f"from the bucket: {down / got:.3f}x the subset")
        del r, v

        def boto_pass():
            def get(name):
                return len(s3.get_object(Bucket="files", Key=f"images/{name}")["Body"].read())
            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                return sum(ex.map(get, names))

        def dsv_pass(cache):
            r = dsv.Repository.open_remote("s3://packs/ds", cache_dir=str(cache), refresh=False)
            total = sum(len(f.read()) for f in r.frames("main"))
            return total, r
        a, b = [], []
        for k in range(3):
            ta, na = timed(boto_pass)
            cache = work / f"cache-full-{k}"
            shutil.rmtree(cache, ignore_errors=True)
            # The mirror (metadata) is made outside the timing: a training job's first step.
            dsv.Repository.open_remote("s3://packs/ds", cache_dir=str(cache))
            tb, (nb, r) = timed(dsv_pass, cache)
            assert na == nb
            a.append(ta)
            b.append(tb)
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"remote: full pass, boto3 16 threads per-file GETs {ma:.2f} s ({m / ma:,.0f} frames/s), "
              f"dsv in place {mb:.2f} s ({m / mb:,.0f} frames/s): {ma / mb:.2f}x  "
              f"[runs: boto3 {[round(x, 2) for x in a]}, dsv {[round(x, 2) for x in b]}]")
        g0 = r.transfer()["transfer"]["gets"]
        t2, _ = timed(lambda: sum(len(f.read()) for f in r.frames("main")))
        g1 = r.transfer()["transfer"]["gets"]
        print(f"remote: second pass {t2:.2f} s ({m / t2:,.0f} frames/s), {g1 - g0} requests to the bucket, "
              f"cache {r.transfer()['cache']}")
    finally:
        srv.terminate()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--remote-frames", type=int, default=10_000)
    ap.add_argument("--dsv", default=str(Path(__file__).resolve().parents[1] / "target/release/dsv"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--skip-remote", action="store_true")
    ap.add_argument("--skip-workers", action="store_true",
                    help="do not time view.torch() in worker processes")
    ap.add_argument("--compare", type=Path, default=None,
                    help="a directory holding another build of the dsv package, timed too")
    ap.add_argument("--loader-samples", action="store_true",
                    help="the DataLoader hands over the sample dicts (bytes through the "
                         "workers' pipe), not tensors")
    ap.add_argument("--child-dsv-loop", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-workers-loop", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    TENSORS[0] = not a.loader_samples
    if a.child_dsv_loop or a.child_workers_loop:
        c, t = child_cpu_time(), time.perf_counter()
        if a.child_dsv_loop:
            r = dsv_loop(a.child_dsv_loop)
            took = time.perf_counter() - t
        else:
            took, r = workers_epochs(a.child_workers_loop)
        print(json.dumps({"time": took, "cpu": child_cpu_time() - c, "result": r}))
        return
    if os.sep in a.dsv:
        # The dataset is made with the binary run from inside it.
        a.dsv = str(Path(a.dsv).resolve())
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="dsv-pybench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir {work}")
    if not a.skip_local:
        local_part(work, a.frames, a.dsv, a.compare, not a.skip_workers)
    if not a.skip_remote:
        remote_part(work, a.remote_frames, a.dsv)


if __name__ == "__main__":
    main()
