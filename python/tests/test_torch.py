"""The PyTorch adaptor. PyTorch itself is not installed in CI (hundreds of MB):
torch's documented worker API (`torch.utils.data.get_worker_info()`, an object
with `id` and `num_workers`) and the distributed rank are stood in by patching
`dsv.torch.get_worker_info` and `dsv.torch.get_rank_world`, which is exactly what
DataLoader workers and `torch.distributed` answer there."""

import pickle
from types import SimpleNamespace

import dsv
import dsv.torch as dt
from conftest import frame_bytes


def shard_paths(ds, monkeypatch, rank, world, wid, nw):
    monkeypatch.setattr(dt, "get_rank_world", lambda: (rank, world))
    monkeypatch.setattr(dt, "get_worker_info", lambda: SimpleNamespace(id=wid, num_workers=nw))
    return [s["path"] for s in ds]


def test_two_workers_and_two_ranks_read_disjoint_shards_covering_every_frame_once(
    repo_dir, monkeypatch
):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    ds = v.torch(shuffle=True, seed=7, iterable=True)
    for epoch in range(2):
        ds.set_epoch(epoch)
        shards = [
            shard_paths(ds, monkeypatch, rank, 2, wid, 2) for rank in range(2) for wid in range(2)
        ]
        seen = [p for s in shards for p in s]
        assert sorted(seen) == sorted(f.path for f in v), "every frame exactly once"
        assert all(len(s) == 5 for s in shards)
    # The order of an epoch is fixed by the seed, and differs between epochs.
    ds.set_epoch(0)
    a = shard_paths(ds, monkeypatch, 0, 1, 0, 1)
    b = shard_paths(v.torch(shuffle=True, seed=7, iterable=True), monkeypatch, 0, 1, 0, 1)
    assert a == b
    ds.set_epoch(1)
    assert shard_paths(ds, monkeypatch, 0, 1, 0, 1) != a
    assert sorted(a) == sorted(f.path for f in v)


def test_samples_carry_bytes_and_labels_through_the_transform(repo_dir, monkeypatch):
    v = dsv.Repository(str(repo_dir)).frames("HEAD", where='weather == "rain"')
    ds = v.torch(transform=lambda s: (s["path"], s["data"], len(s["objects"])), iterable=True)
    monkeypatch.setattr(dt, "get_worker_info", lambda: None)
    monkeypatch.setattr(dt, "get_rank_world", lambda: (0, 1))
    got = list(ds)
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


def test_a_pickled_dataset_reopens_the_repository_in_the_worker(repo_dir, monkeypatch):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")[4:9]
    ds = pickle.loads(pickle.dumps(v.torch(iterable=True)))
    monkeypatch.setattr(dt, "get_worker_info", lambda: None)
    monkeypatch.setattr(dt, "get_rank_world", lambda: (0, 1))
    assert [s["data"] for s in ds] == [frame_bytes(i) for i in range(4, 9)]


def test_example_train_script_trains_on_the_payloads_commit(repo_dir, tmp_path):
    import json
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
