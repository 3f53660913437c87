"""The PyTorch adaptor with real PyTorch (installed by tests/python/install-venv.sh):
`torch.utils.data.DataLoader` with worker processes (fork and spawn), ranks given
as arguments, ranks of a real `torch.distributed` process group (gloo, on
loopback), and the map-style dataset under `DistributedSampler`. A few tests also
drive the shard arithmetic directly, standing in torch's documented worker API
(`get_worker_info()`, an object with `id` and `num_workers`) by patching
`dsv.torch.get_worker_info` and `dsv.torch.get_rank_world`: many worker and rank
counts in milliseconds, which real processes would take seconds each to show."""

import json
import pickle
import random
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as tmp
from torch.utils.data import DataLoader, DistributedSampler, get_worker_info

import dsv
import dsv.torch as dt
from dsv import _dsv
from conftest import frame_bytes, free_port


def path_and_worker(sample):
    """A transform (module level: workers started with spawn unpickle it)."""
    info = get_worker_info()
    return sample["path"], info.id if info is not None else None


def path_of(sample):
    return sample["path"]


def shard_paths(ds, monkeypatch, rank, world, wid, nw):
    monkeypatch.setattr(dt, "get_rank_world", lambda: (rank, world))
    monkeypatch.setattr(dt, "get_worker_info", lambda: SimpleNamespace(id=wid, num_workers=nw))
    return [s["path"] for s in ds]


def all_paths(repo_dir):
    return [f.path for f in dsv.Repository(str(repo_dir)).frames("HEAD")]


def test_real_torch_is_installed():
    # CI runs this suite with real PyTorch; the CPU is all it needs.
    assert torch.__version__ >= "2"
    assert dist.is_available()


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_read_disjoint_shards_every_frame_once_in_a_seeded_order(
    repo_dir, context
):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    every = sorted(f.path for f in v)

    def epoch(ds, e):
        ds.set_epoch(e)
        dl = DataLoader(ds, num_workers=2, batch_size=None, multiprocessing_context=context)
        return list(dl)

    ds = v.torch(transform=path_and_worker, shuffle=True, seed=7, iterable=True)
    epochs = [epoch(ds, e) for e in range(2)]
    for got in epochs:
        paths = [p for p, _ in got]
        assert sorted(paths) == every, "every frame exactly once"
        by_worker = {w: [p for p, x in got if x == w] for w in (0, 1)}
        assert len(by_worker[0]) == len(by_worker[1]) == 10
        assert not set(by_worker[0]) & set(by_worker[1])
    # The order of an epoch is fixed by the seed (the same in another dataset
    # with that seed) and differs between epochs.
    again = v.torch(transform=path_and_worker, shuffle=True, seed=7, iterable=True)
    assert epoch(again, 0) == epochs[0]
    assert epochs[1] != epochs[0]
    other = v.torch(transform=path_and_worker, shuffle=True, seed=8, iterable=True)
    assert epoch(other, 0) != epochs[0]


def loader_paths(ds, iterable, **kw):
    """The paths a DataLoader of two workers delivers, in its order."""
    if iterable:
        return list(DataLoader(ds, num_workers=2, batch_size=None, **kw))
    return [p for b in DataLoader(ds, num_workers=2, batch_size=3, **kw) for p in b]


@pytest.mark.parametrize("iterable", [True, False], ids=["iterable", "map"])
# forkserver: Python 3.14's default start method on Linux.
@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
def test_set_epoch_reaches_persistent_workers(repo_dir, context, iterable):
    # Persistent workers keep the dataset copied as they started: the epoch
    # set in the parent afterwards must still reach them, or every epoch
    # silently repeats the first one's order.
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    every = sorted(f.path for f in v)
    ds = v.torch(transform=path_of, shuffle=True, seed=7, iterable=iterable)
    dl = DataLoader(ds, num_workers=2, batch_size=None if iterable else 3,
                    persistent_workers=True, multiprocessing_context=context)
    got = []
    for e in (0, 1, 0, 2):
        ds.set_epoch(e)
        paths = list(dl) if iterable else [p for b in dl for p in b]
        assert sorted(paths) == every, f"epoch {e}: every frame exactly once"
        got.append(paths)
    # The same workers all along (not started again each epoch).
    assert dl._iterator is not None and len(dl._iterator._workers) == 2
    assert got[0] != got[1] and got[1] != got[3] and got[0] != got[3]
    assert got[2] == got[0], "an epoch's order is fixed by (seed, epoch)"
    # The same orders as workers started afresh each epoch (in another
    # dataset with that seed), which copy the epoch as they start.
    fresh = v.torch(transform=path_of, shuffle=True, seed=7, iterable=iterable)
    for e in (0, 1, 2):
        fresh.set_epoch(e)
        assert loader_paths(fresh, iterable, multiprocessing_context="fork") == got[[0, 1, 3][e]]
    if not iterable:
        # And the order of the dataset read in this process.
        ds.set_epoch(1)
        assert got[1] == [ds[i] for i in range(len(ds))]


def test_a_dataset_pickled_outside_worker_start_carries_its_epoch(repo_dir):
    import copy

    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    for iterable in (True, False):
        ds = v.torch(shuffle=True, seed=4, iterable=iterable)
        ds.set_epoch(3)
        for c in (pickle.loads(pickle.dumps(ds)), copy.deepcopy(ds)):
            # A copy of its own: the epoch it had, moved by its own set_epoch.
            assert c.epoch == 3
            assert c.order() == ds.order()
            ds.set_epoch(4)
            assert c.epoch == 3
            c.set_epoch(5)
            assert ds.epoch == 4 and c.epoch == 5
            ds.set_epoch(3)


def test_set_epoch_takes_integers_only(repo_dir):
    ds = dsv.Repository(str(repo_dir)).frames("HEAD").torch(shuffle=True)
    ds.set_epoch(torch.tensor(2))
    assert ds.epoch == 2 and isinstance(ds.epoch, int)
    with pytest.raises(TypeError, match="integer"):
        ds.set_epoch("1")
    with pytest.raises(TypeError, match="integer"):
        ds.set_epoch(1.5)
    with pytest.raises(ValueError, match="64 bits"):
        ds.set_epoch(1 << 63)
    assert ds.epoch == 2


def test_ranks_given_as_arguments_with_two_workers_each_cover_every_frame_once(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    seen = []
    for rank in range(2):
        ds = v.torch(transform=path_of, shuffle=True, seed=5, iterable=True, rank=rank, world_size=2)
        ds.set_epoch(3)
        got = [p for batch in DataLoader(ds, num_workers=2, batch_size=4) for p in batch]
        assert len(got) == 10
        seen.append(got)
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(all_paths(repo_dir))


def test_rank_arguments_are_checked(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    with pytest.raises(ValueError, match="together"):
        v.torch(iterable=True, rank=1)
    with pytest.raises(ValueError, match="rank 2 is not in 0..2"):
        v.torch(iterable=True, rank=2, world_size=2)
    with pytest.raises(dsv.InvalidArgumentError, match="DistributedSampler"):
        v.torch(rank=0, world_size=2)


def distributed_rank(rank, world, port, repo, out):
    """One rank of a gloo process group: the dataset is made after the group is
    initialized, and read by two workers started with spawn (which have no
    process group of their own)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        ds = dsv.Repository(repo).frames("HEAD").torch(
            transform=path_and_worker, shuffle=True, seed=11, iterable=True
        )
        got = list(DataLoader(ds, num_workers=2, batch_size=None, multiprocessing_context="spawn"))
        with open(f"{out}.{rank}", "w") as f:
            json.dump(got, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_torch_distributed_ranks_read_disjoint_shards_covering_every_frame_once(
    repo_dir, tmp_path
):
    out = tmp_path / "rank"
    tmp.spawn(distributed_rank, args=(2, free_port(), str(repo_dir), str(out)), nprocs=2)
    shards = []
    for rank in range(2):
        got = json.loads(out.with_suffix(f".{rank}").read_text())
        for w in (0, 1):
            shards.append([p for p, x in got if x == w])
    assert [len(s) for s in shards] == [5, 5, 5, 5]
    seen = [p for s in shards for p in s]
    assert sorted(seen) == sorted(all_paths(repo_dir)), "every frame exactly once"


def test_map_style_dataset_under_distributed_sampler_and_workers(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    ds = v.torch(transform=path_of)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        seen.append([p for b in DataLoader(ds, sampler=sampler, num_workers=2, batch_size=3)
                     for p in b])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(all_paths(repo_dir))


def test_shard_arithmetic_for_many_worker_and_rank_counts(repo_dir, monkeypatch):
    # Stand-in worker API (see the module's doc): shards for counts real
    # processes would take long to show, each epoch covering the view once.
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    ds = v.torch(shuffle=True, seed=7, iterable=True)
    for world, nw in ((1, 1), (2, 2), (3, 2), (1, 7), (4, 5)):
        for epoch in range(2):
            ds.set_epoch(epoch)
            shards = [
                shard_paths(ds, monkeypatch, rank, world, wid, nw)
                for rank in range(world)
                for wid in range(nw)
            ]
            seen = [p for s in shards for p in s]
            assert sorted(seen) == sorted(f.path for f in v), (world, nw)
            sizes = [len(s) for s in shards]
            assert max(sizes) - min(sizes) <= 1, (world, nw, sizes)


def test_samples_carry_bytes_and_labels_through_the_transform(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD", where='weather == "rain"')
    ds = v.torch(transform=lambda s: (s["path"], s["data"], len(s["objects"])), iterable=True)
    # The DataLoader's default conversion makes the tuples lists.
    got = [tuple(x) for x in DataLoader(ds, batch_size=None)]
    assert got == [(f"images/f{i:03}.jpg", frame_bytes(i), 2) for i in (0, 4, 8, 12, 16)]


def test_map_style_dataset_indexes_this_epochs_order(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    ds = v.torch()
    assert len(ds) == 20
    assert ds[3]["data"] == frame_bytes(3)
    assert ds[-1]["path"] == "images/f019.jpg"
    sh = v.torch(shuffle=True, seed=1)
    paths = [sh[i]["path"] for i in range(len(sh))]
    assert sorted(paths) == [f.path for f in v] and paths != [f.path for f in v]


def test_a_pickled_dataset_reopens_the_repository_and_reads_a_slice(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")[4:9]
    ds = pickle.loads(pickle.dumps(v.torch(iterable=True)))
    assert [s["data"] for s in ds] == [frame_bytes(i) for i in range(4, 9)]
    # The same read by spawned workers.
    dl = DataLoader(v.torch(transform=path_of, iterable=True), num_workers=2, batch_size=None,
                    multiprocessing_context="spawn")
    assert sorted(dl) == [f"images/f{i:03}.jpg" for i in range(4, 9)]


def test_example_train_script_trains_on_the_payloads_commit(repo_dir, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    commit = dsv.Repository(str(repo_dir)).resolve("HEAD")
    env = dict(os.environ, DSV_REPO=str(repo_dir), RETRAIN_DIR=str(tmp_path / "models"))
    payload = json.dumps({"schema": "dsv.hook/1", "commit": commit})
    script = str(ROOT / "examples" / "retrain" / "train.py")
    r = subprocess.run([sys.executable, script], input=payload, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    model = json.loads((tmp_path / "models" / commit / "model.json").read_text())
    assert model["frames"] == 20
    assert model["classes"]["person"]["boxes"] == 16
    r = subprocess.run([sys.executable, script], input=payload, env=env,
                       capture_output=True, text=True)
    assert "already trained" in r.stdout


def test_a_whole_version_dataset_pickles_small_and_shards_like_a_listed_view(
    repo_dir, monkeypatch
):
    repo = dsv.Repository(str(repo_dir))
    whole = repo.frames("HEAD")
    ds = whole.torch(shuffle=True, seed=3, iterable=True)
    # The positions of a whole version travel as a range, not one int per frame.
    assert isinstance(ds._positions, range) and len(ds._positions) == 20
    assert len(pickle.dumps(ds)) < 1000
    # A view whose positions are not a prefix keeps its list; shards of both
    # kinds, read in "worker processes" (unpickled copies), are disjoint and
    # cover the view once.
    odd = repo.frames("HEAD")[1::2]
    dsl = odd.torch(iterable=True)
    assert dsl._positions == list(range(1, 20, 2))
    for d, view in ((ds, whole), (dsl, odd)):
        shards = [
            shard_paths(pickle.loads(pickle.dumps(d)), monkeypatch, 0, 1, wid, 3)
            for wid in range(3)
        ]
        seen = [p for s in shards for p in s]
        assert len(seen) == len(set(seen)) == len(view)
        assert sorted(seen) == sorted(f.path for f in view)


def test_frame_sample_is_the_documented_dict(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD", where='weather == "rain"')
    for f, g in zip(v, v):
        assert f.sample() == dt.sample_of(g, g.read())
    s = v[0].sample()
    assert s["data"] == frame_bytes(0) and s["path"] == "images/f000.jpg"
    assert set(s) == {"path", "id", "data", "width", "height", "units", "objects",
                      "attributes", "predictions"}


def test_iterable_shards_without_shuffle_are_consecutive_runs_of_the_view(
    repo_dir, monkeypatch
):
    # Consecutive shards: a worker's frames are neighbours in the packs (with
    # interleaved shards every worker read every pack whole).
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    paths = [f.path for f in v]
    ds = pickle.loads(pickle.dumps(v.torch(iterable=True)))
    for nw in (2, 3, 7):
        shards = [shard_paths(ds, monkeypatch, 0, 1, wid, nw) for wid in range(nw)]
        assert [p for s in shards for p in s] == paths, nw
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1, (nw, sizes)


def test_view_samples_are_the_frames_samples(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")[3:17:2]
    got = list(v.samples(prefetch=2))
    assert got == [f.sample() for f in v]
    assert [s["data"] for s in got] == [frame_bytes(i) for i in range(3, 17, 2)]


@pytest.fixture
def blocks_of_4():
    """Views made meanwhile decode blocks of 4 positions (standing in for the
    index chunk's 8,192 frames: the fixture repository has 20)."""
    old = _dsv._set_block_frames(4)
    yield 4
    _dsv._set_block_frames(old)


def decoded():
    """(blocks, frame records) this process has decoded for views so far."""
    return _dsv._decoded()


def decoded_by(fn):
    """fn's result and the (blocks, frames) decoded while it ran."""
    b0, f0 = decoded()
    r = fn()
    b1, f1 = decoded()
    return r, (b1 - b0, f1 - f0)


def test_a_map_style_worker_decodes_only_the_blocks_it_is_asked_for(repo_dir, blocks_of_4):
    repo = dsv.Repository(str(repo_dir))
    for view in (repo.frames("HEAD"), repo.frames("HEAD")[1::2]):
        pos = view.positions_in_version
        local = view.torch(shuffle=True, seed=4)
        local.set_epoch(2)
        # As a worker started with spawn has it: unpickled, no view.
        worker = pickle.loads(pickle.dumps(local))
        worker.set_epoch(2)

        def cost(indices):
            # The blocks of the samples' positions, each holding the view's
            # frames in it (a worker of a sliced view decodes no others).
            blocks = {pos[local.order()[i]] // 4 for i in indices}
            return len(blocks), sum(1 for p in pos if p // 4 in blocks)

        got, spent = decoded_by(lambda: worker[5])
        assert spent == cost([5])
        assert got == local[5]
        idx = [0, 7, len(local) - 1, 3, 7]
        batch, spent = decoded_by(lambda: worker.__getitems__(idx))
        # Blocks decoded before are not decoded again.
        b, f = cost(idx + [5])
        b5, f5 = cost([5])
        assert spent == (b - b5, f - f5)
        assert batch == [local[i] for i in idx] == local.__getitems__(idx)
        # Every sample once, in the seeded order of the epoch.
        assert [worker[i]["path"] for i in range(len(worker))] == [
            view[j].path for j in local.order()
        ]
        with pytest.raises(IndexError):
            worker[len(worker)]


def test_making_a_view_and_its_datasets_decodes_no_frame(repo_dir, blocks_of_4):
    # The parent of a DataLoader's workers reads the frame count (or a
    # selection's positions), never a frame's labels: len() needs no decoding.
    repo = dsv.Repository(str(repo_dir))

    def make():
        whole = repo.frames("HEAD")
        rain = repo.frames("HEAD", where='weather == "rain"')
        part = whole[3:17:2]
        dss = [v.torch(shuffle=True, seed=2, iterable=it) for v in (whole, rain, part)
               for it in (False, True)]
        sizes = [len(whole), len(rain), len(part)] + [len(d) for d in dss]
        return whole, rain, sizes, [pickle.dumps(d) for d in dss]

    (whole, rain, sizes, pickled), spent = decoded_by(make)
    assert spent == (0, 0)
    assert sizes == [20, 5, 7] + [20, 20, 5, 5, 7, 7]
    assert whole.version_frames == rain.version_frames == 20
    assert rain.positions_in_version == [0, 4, 8, 12, 16]
    # A whole version's dataset pickles as a range: small, whatever its size.
    assert all(len(p) < 1000 for p in pickled[:2])
    # Reading one frame decodes its block alone; a selection's block holds the
    # selected frames only.
    _, spent = decoded_by(lambda: whole[9].objects)
    assert spent == (1, 4)
    _, spent = decoded_by(lambda: rain[2].objects)
    assert spent == (1, 1)
    _, spent = decoded_by(lambda: whole[10].objects)
    assert spent == (0, 0), "a block is decoded once per view"


@pytest.mark.parametrize("shuffle", [False, True])
def test_iterable_workers_decode_their_own_shards_only(repo_dir, monkeypatch, blocks_of_4,
                                                        shuffle):
    # Three stand-in workers, each an unpickled copy as a spawned worker has
    # it: together every frame once, disjoint, each decoding the labels of its
    # own shard's frames and no other's.
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    ds = v.torch(shuffle=shuffle, seed=6, iterable=True)
    ds.set_epoch(1)
    blob = pickle.dumps(ds)
    shards = []
    for wid in range(3):
        w = pickle.loads(blob)
        w.set_epoch(1)
        got, (blocks, frames) = decoded_by(
            lambda: shard_paths(w, monkeypatch, 0, 1, wid, 3))
        assert frames == len(got), (wid, frames, len(got))
        shards.append(got)
    seen = [p for s in shards for p in s]
    assert sorted(seen) == sorted(f.path for f in v) and len(seen) == len(set(seen))
    # The same seed and epoch give the same order in another copy; another
    # epoch another one (shuffled).
    again = pickle.loads(blob)
    again.set_epoch(1)
    assert [p for wid in range(3)
            for p in shard_paths(again, monkeypatch, 0, 1, wid, 3)] == seen
    if shuffle:
        again.set_epoch(2)
        assert [p for wid in range(3)
                for p in shard_paths(again, monkeypatch, 0, 1, wid, 3)] != seen


def test_the_epochs_order_is_made_once_per_epoch_and_follows_set_epoch(repo_dir):
    # A map-style dataset asks for it on every sample: made again each time, a
    # shuffled 100,000-frame view cost 40 ms a sample.
    ds = dsv.Repository(str(repo_dir)).frames("HEAD").torch(shuffle=True, seed=9)
    first = ds.order()
    assert ds.order() is first
    ds.set_epoch(1)
    second = ds.order()
    assert second is not first and sorted(second) == sorted(first) and second != first
    assert [ds[i]["path"] for i in range(3)] == [ds.view()[j].path for j in second[:3]]
    ds.set_epoch(0)
    assert ds.order() == first


def test_a_selections_positions_pickle_in_runs_not_one_int_per_frame(repo_dir, monkeypatch):
    # A million selected positions: in runs (a `where` on a slice of the
    # version, as data sets are laid out by directory), and scattered one in
    # two (the worst case of runs: every run one frame long).
    runs = [(k * 20_000, 10_000) for k in range(100)]
    every_other = [(2 * k, 1) for k in range(1_000_000)]
    # And a million scattered at random over ten million: 0.59 MB of information.
    scattered = []
    for p in sorted(random.Random(5).sample(range(10_000_000), 1_000_000)):
        if scattered and sum(scattered[-1]) == p:
            scattered[-1] = (scattered[-1][0], scattered[-1][1] + 1)
        else:
            scattered.append((p, 1))
    for rs, bound in ((runs, 4_000), (every_other, 100_000), (scattered, 800_000)):
        pos = dt.Runs(rs)
        assert len(pos) == 1_000_000
        blob = pickle.dumps(pos)
        assert len(blob) < bound, (len(rs), len(blob))
        back = pickle.loads(blob)
        assert list(back.runs()) == rs
        assert back[0] == rs[0][0] and back[-1] == rs[-1][0] + rs[-1][1] - 1
        assert len(back) == 1_000_000
        flat = list(back)
        assert flat == [s + i for s, n in rs for i in range(n)]
        assert [back[i] for i in (0, 1, 10_000, 999_999)] == [flat[i] for i in (0, 1, 10_000, 999_999)]
    # What a list of the same positions costs (the encoding before runs).
    assert len(pickle.dumps(list(dt.Runs(every_other)))) > 4_000_000
    # A real selection: its dataset carries runs; unpickled copies (workers)
    # read the selection's frames, every one once.
    repo = dsv.Repository(str(repo_dir))
    rain = repo.frames("HEAD", where='weather == "rain"')
    assert rain.position_runs == [(p, 1) for p in range(0, 20, 4)]
    ds = rain.torch(iterable=True)
    assert isinstance(ds._positions, dt.Runs) and list(ds._positions) == [0, 4, 8, 12, 16]
    blob = pickle.dumps(ds)
    got = [p for wid in range(2)
           for p in shard_paths(pickle.loads(blob), monkeypatch, 0, 1, wid, 2)]
    assert got == [f.path for f in rain]
    # One run pickles as a range.
    assert isinstance(repo.frames("HEAD")[3:9].torch()._positions, range)
    m = pickle.loads(pickle.dumps(rain.torch()))
    assert [m[i]["path"] for i in range(len(m))] == [f.path for f in rain]


@pytest.fixture
def blocks_of_1():
    """Views made meanwhile decode blocks of one position: the fixture's 20
    frames are 20 blocks."""
    old = _dsv._set_block_frames(1)
    yield 1
    _dsv._set_block_frames(old)


def live_blocks_during(it):
    """The most decoded blocks alive in this process while `it` is consumed
    (as a training loop holds one sample at a time), and the items."""
    import gc

    gc.collect()
    base, most, items = _dsv._live_blocks(), 0, []
    for x in it:
        most = max(most, _dsv._live_blocks() - base)
        items.append(x.path if hasattr(x, "path") else x["path"])
    return most, items


def test_a_long_pass_keeps_a_bounded_number_of_decoded_blocks(repo_dir, blocks_of_1):
    repo = dsv.Repository(str(repo_dir))
    paths = all_paths(repo_dir)
    v = repo.frames("HEAD")
    assert v.keep_blocks(2) == 8, "the default bound"
    (most, got), (blocks, frames) = decoded_by(lambda: live_blocks_during(v.iter(prefetch=1)))
    assert got == paths and (blocks, frames) == (20, 20), "each block decoded once"
    # Two kept, plus those the read-ahead holds: the batch being read, the one
    # waiting, the one handed out and the frame in hand (one frame each).
    assert most <= 2 + 4, most
    # Samples of a slice (sharing the view's blocks) alike.
    most, got = live_blocks_during(v[2:18].samples(prefetch=1))
    assert got == paths[2:18] and most <= 2 + 4, most
    # Unbounded, the same pass holds every block: the bound is what kept it low.
    w = repo.frames("HEAD")
    assert w.keep_blocks(None) == 8
    most, got = live_blocks_during(w.iter(prefetch=1))
    assert got == paths and most >= 15, most
    assert w.keep_blocks(3) is None
    with pytest.raises(dsv.InvalidArgumentError, match="at least one"):
        w.keep_blocks(0)


def test_random_access_datasets_keep_their_blocks_whatever_the_bound(repo_dir, blocks_of_4,
                                                                      monkeypatch):
    # A shuffled pass comes back to every block of its shard: with one block
    # kept it would decode blocks again and again; the dataset keeps them all.
    old = _dsv._set_keep_blocks(1)
    try:
        v = dsv.Repository(str(repo_dir)).frames("HEAD")
        ds = v.torch(shuffle=True, seed=1, iterable=True)
        blob = pickle.dumps(ds)
        got, (blocks, frames) = decoded_by(
            lambda: shard_paths(pickle.loads(blob), monkeypatch, 0, 1, 0, 1))
        assert sorted(got) == sorted(all_paths(repo_dir))
        assert (blocks, frames) == (5, 20), "each block once"
        m = pickle.loads(pickle.dumps(v.torch(shuffle=True, seed=2)))
        got, (blocks, frames) = decoded_by(lambda: [m[i]["path"] for i in range(len(m))])
        assert sorted(got) == sorted(all_paths(repo_dir)) and (blocks, frames) == (5, 20)
        # In order, one block kept is enough: each decoded once all the same.
        plain = v.torch(iterable=True)
        got, (blocks, frames) = decoded_by(
            lambda: shard_paths(pickle.loads(pickle.dumps(plain)), monkeypatch, 0, 1, 0, 1))
        assert got == all_paths(repo_dir) and (blocks, frames) == (5, 20)
    finally:
        _dsv._set_keep_blocks(old)
