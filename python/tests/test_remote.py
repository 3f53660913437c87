"""Remotes read in place: file:// and S3 (moto), range reads, the cache."""

import os

import pytest

import dsv
from conftest import NAMES, create_bucket, frame_bytes, make_repo, run


def pushed(tmp_path, url, env=None, n=20, big=(), size=300):
    root = make_repo(tmp_path / "ds", n=n, big=big, size=size)
    run(root, "remote", "add", "origin", url, env=env)
    run(root, "push", "origin", "main", env=env)
    return root


def test_file_remote_reads_frames_without_checkout(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    pushed(tmp_path, url)
    r = dsv.Repository.open_remote(url, cache_dir=str(tmp_path / "cache"))
    v = r.frames("main", where='weather == "rain"')
    assert [f.path for f in v] == [f"images/f{i:03}.jpg" for i in (0, 4, 8, 12, 16)]
    assert [f.read() for f in v] == [frame_bytes(i) for i in (0, 4, 8, 12, 16)]
    assert v[0].objects[0]["class"] == "cat"
    assert r.log("main")[0]["subject"] == "first version"
    # The mirror holds no frame: no checkout, no clone of the data.
    assert not any((tmp_path / "cache" / "mirror" / "images").glob("*"))


@pytest.fixture
def s3(moto, monkeypatch):
    env, port = moto
    for k, val in env.items():
        monkeypatch.setenv(k, val)
    return env, port


def test_s3_subset_reads_only_its_byte_ranges_and_second_pass_hits_the_cache(tmp_path, s3):
    env, port = s3
    create_bucket(port, "subset")
    url = "s3://subset/ds"
    # Frames far enough apart in the pack (20 KB, random) that each is its own range.
    pushed(tmp_path, url, env=env, n=200, size=20000)
    cache = str(tmp_path / "cache")
    r = dsv.Repository.open_remote(url, cache_dir=cache)
    before = r.transfer()["transfer"]["bytes_down"]
    v = r.frames("main", where='path.endsWith("7.jpg")')
    assert len(v) == 20
    mid = r.transfer()["transfer"]["bytes_down"]
    data = [f.read() for f in v]
    assert data == [frame_bytes(int(f.path[-7:-4]), 20000) for f in v]
    t = r.transfer()
    frame_bytes_read = t["transfer"]["bytes_down"] - mid
    subset = sum(len(d) for d in data)
    # Records have a header; nothing else of the packs is read.
    assert subset <= frame_bytes_read <= 1.5 * subset, (subset, frame_bytes_read, before)
    assert t["cache"]["misses"] == 20
    # Second pass: from the cache, no request to the bucket.
    gets = t["transfer"]["gets"]
    assert [f.read() for f in v] == data
    t2 = r.transfer()
    assert t2["transfer"]["gets"] == gets
    assert t2["cache"]["hits"] - t["cache"]["hits"] == 20, (t, t2)
    # Another handle (another process would do the same) shares the cache.
    r2 = dsv.Repository.open_remote(url, cache_dir=cache, refresh=False)
    v2 = r2.frames("main", where='path.endsWith("7.jpg")')
    g0 = r2.transfer()["transfer"]["gets"]
    assert [f.read() for f in v2] == data
    assert r2.transfer()["transfer"]["gets"] == g0


def test_s3_large_chunked_frames_are_reassembled_and_verified(tmp_path, s3):
    env, port = s3
    create_bucket(port, "big")
    url = "s3://big/ds"
    root = pushed(tmp_path, url, env=env, n=3, big=(1,))
    want = (root / "images" / "f001.jpg").read_bytes()
    r = dsv.Repository.open_remote(url, cache_dir=str(tmp_path / "cache"))
    assert r.frames("main")[1].read() == want


def path_and_data(sample):
    """A transform workers started with spawn can unpickle (module level)."""
    return sample["path"], sample["data"]


def test_az_subset_and_full_read_in_place_from_azurite(tmp_path, azurite, monkeypatch):
    # gs:// has no emulator the tests can run; az:// is Azure's own protocol
    # against Azurite, pushed with the CLI and read from Python.
    env, container = azurite
    for k, val in env.items():
        monkeypatch.setenv(k, val)
    container("pyread")
    url = "az://pyread/ds"
    # 20 KB random frames: a subset of every tenth frame is ranges far apart.
    pushed(tmp_path, url, env=env, n=200, size=20000)
    cache = str(tmp_path / "cache")
    r = dsv.Repository.open_remote(url, cache_dir=cache)
    assert r.log("main")[0]["subject"] == "first version"
    v = r.frames("main", where='path.endsWith("7.jpg")')
    mid = r.transfer()["transfer"]["bytes_down"]
    # Iterating reads the frames ahead: from here on their bytes are fetched.
    assert [f.path for f in v] == [f"images/f{i:03}.jpg" for i in range(7, 200, 10)]
    data = [f.read() for f in v]
    assert data == [frame_bytes(i, 20000) for i in range(7, 200, 10)]
    assert v[0].objects[0]["class"] == NAMES[7 % 3]
    subset = sum(len(d) for d in data)
    got = r.transfer()["transfer"]["bytes_down"] - mid
    assert subset <= got <= 1.5 * subset, (subset, got, r.transfer())
    # The full version, every byte checked, then again from the cache alone.
    whole = r.frames("main")
    assert [f.read() for f in whole] == [frame_bytes(i, 20000) for i in range(200)]
    gets = r.transfer()["transfer"]["gets"]
    assert [f.read() for f in whole][99] == frame_bytes(99, 20000)
    assert r.transfer()["transfer"]["gets"] == gets
    # DataLoader workers (spawned) reopen the remote from its spec, with a fresh cache.
    from torch.utils.data import DataLoader

    r2 = dsv.Repository.open_remote(url, cache_dir=str(tmp_path / "cache2"))
    ds = r2.frames("main")[::20].torch(transform=path_and_data, iterable=True)
    dl = DataLoader(ds, num_workers=2, batch_size=None, multiprocessing_context="spawn")
    got = sorted(tuple(x) for x in dl)
    assert got == [(f"images/f{i:03}.jpg", frame_bytes(i, 20000)) for i in range(0, 200, 20)]


def test_cache_evicts_least_recently_used_entries_beyond_its_size(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    pushed(tmp_path, url)
    cache = tmp_path / "cache"
    # 300-byte frames, room for about 10.
    r = dsv.Repository.open_remote(url, cache_dir=str(cache), cache_size=3000)
    v = r.frames("main")
    for f in v:
        f.read()
    entries = [p for p in (cache / "objects").rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in entries)
    assert total <= 3000 and len(entries) >= 5
    assert r.transfer()["cache"]["evicted"] >= 5
    # The newest frames are the ones kept.
    kept = {p.name for p in entries}
    assert v[19].id in kept and v[0].id not in kept


def test_concurrent_readers_share_one_cache(tmp_path):
    import concurrent.futures
    import subprocess
    import sys

    url = f"file://{tmp_path / 'remote'}"
    pushed(tmp_path, url, n=40)
    cache = str(tmp_path / "cache")
    dsv.Repository.open_remote(url, cache_dir=cache)  # the mirror made once
    code = (
        "import dsv,sys;"
        f"r=dsv.Repository.open_remote({url!r}, cache_dir={cache!r}, cache_size=6000, refresh=False);"
        "v=r.frames('main');"
        "[f.read() for f in v];[f.read() for f in v];"
        "print(len(v))"
    )
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: subprocess.run([sys.executable, "-c", code],
                                                     capture_output=True, text=True), range(4)))
    for o in outs:
        assert o.returncode == 0, o.stderr
        assert o.stdout.strip() == "40"
    entries = [p for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()]
    assert not [p for p in entries if p.name.startswith(".tmp-")]
    # Every entry whole (hashes checked on read): read them all once more.
    r = dsv.Repository.open_remote(url, cache_dir=cache, cache_size=6000, refresh=False)
    assert [f.read() for f in r.frames("main")] == [frame_bytes(i) for i in range(40)]


def test_a_damaged_cache_entry_is_read_again_from_the_remote(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    pushed(tmp_path, url, n=3)
    cache = tmp_path / "cache"
    r = dsv.Repository.open_remote(url, cache_dir=str(cache))
    f = r.frames("main")[1]
    f.read()
    entry = next(p for p in (cache / "objects").rglob(f.id))
    entry.write_bytes(b"garbage")
    assert r.frames("main")[1].read() == frame_bytes(1)


def test_a_damaged_remote_pack_raises_naming_the_object(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    pushed(tmp_path, url, n=3)
    r = dsv.Repository.open_remote(url, cache_dir=str(tmp_path / "cache"))
    v = r.frames("main")
    fid = v[2].id
    needle = frame_bytes(2)[:40]
    for p in (tmp_path / "remote").rglob("*.dsvpack"):
        b = bytearray(p.read_bytes())
        at = b.find(needle)
        if at >= 0:
            b[at + 5] ^= 0xFF
            p.write_bytes(bytes(b))
            break
    else:
        pytest.fail("frame bytes not found raw in a remote pack")
    with pytest.raises(dsv.RemoteError, match=fid):
        v[2].read()
    assert v[0].read() == frame_bytes(0)


def test_a_cache_directory_of_another_remote_is_refused(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    pushed(tmp_path, url, n=2)
    cache = str(tmp_path / "cache")
    dsv.Repository.open_remote(url, cache_dir=cache)
    with pytest.raises(dsv.InvalidArgumentError, match="give each remote its own cache"):
        dsv.Repository.open_remote(f"file://{tmp_path / 'other'}", cache_dir=cache, refresh=False)
