"""Local repositories: views, queries, diffs, errors."""

import pytest

import dsv
from conftest import frame_bytes, make_repo, run


def test_log_and_resolve_return_commits(repo_dir):
    r = dsv.Repository(str(repo_dir))
    head = r.resolve("HEAD")
    log = r.log("HEAD", max_count=5)
    assert [c["id"] for c in log] == [head]
    c = log[0]
    assert c["parents"] == []
    assert c["author"] == {"name": "Test", "email": "test@example.com"}
    assert c["time"] == 1700000000
    assert c["message"] == "first version\n"
    assert c["subject"] == "first version"
    assert c["summary"]["files"] == 42


def test_view_len_index_slice_iter_and_bytes(repo_dir):
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    assert len(v) == 20
    assert v[0].path == "images/f000.jpg"
    assert v[-1].path == "images/f019.jpg"
    with pytest.raises(IndexError):
        v[20]
    part = v[2:10:3]
    assert [f.path for f in part] == ["images/f002.jpg", "images/f005.jpg", "images/f008.jpg"]
    assert len(v[5:]) == 15
    got = [(f.path, f.read()) for f in v]
    assert got == [(f"images/f{i:03}.jpg", frame_bytes(i)) for i in range(20)]
    # read() of a frame not read ahead.
    assert v[3].read() == frame_bytes(3)
    assert [f.read() for f in v.read_many([1, -1])] == [frame_bytes(1), frame_bytes(19)]


def test_frames_at_gives_the_listed_frames_in_the_order_asked(repo_dir):
    r = dsv.Repository(str(repo_dir))
    whole = r.frames("HEAD")
    asked = [7, 2, 19, 2]
    v = r.frames_at(r.resolve("HEAD"), asked)
    assert len(v) == 4
    assert [f.path for f in v] == [whole[p].path for p in asked]
    assert [f.read() for f in v] == [frame_bytes(p) for p in asked]
    assert [f.objects for f in v] == [whole[p].objects for p in asked]
    assert [f.attributes for f in v] == [whole[p].attributes for p in asked]
    # Positions stay the version's, through slices and back.
    assert v.positions_in_version == asked
    assert v[1:3].positions_in_version == [2, 19]
    assert [f.path for f in v.at_version_positions([19, 7])] == [whole[19].path, whole[7].path]
    with pytest.raises(IndexError, match="not among this view's frames"):
        v.at_version_positions([3])
    assert len(r.frames_at("HEAD", [])) == 0
    with pytest.raises(dsv.InvalidArgumentError, match="frame position 20 out of range"):
        r.frames_at("HEAD", [0, 20])


def test_frame_objects_use_top_left_boxes_in_the_frames_units(repo_dir):
    f = dsv.Repository(str(repo_dir)).frames("HEAD")[0]
    assert f.units == "normalized"
    # YOLO "0 0.5 0.5 0.2 0.4" is a centre; dsv's one convention is the top-left corner.
    assert f.objects == [
        {"class": "cat", "box": {"x": 0.4, "y": 0.3, "w": 0.2, "h": 0.4}},
        {"class": "person", "box": {"x": 0.2, "y": 0.2, "w": 0.1, "h": 0.1}},
    ]
    assert f.attributes == {"weather": "rain"}
    assert f.predictions == []
    assert f.labels == [["labels/f000.txt", "yolo"]]


def test_where_selects_with_the_query_language(repo_dir):
    r = dsv.Repository(str(repo_dir))
    v = r.frames("HEAD", where='weather == "rain" && objects.exists(o, o.class == "cat")')
    assert [f.path for f in v] == ["images/f000.jpg", "images/f012.jpg"]


def test_a_misspelt_attribute_raises_the_clis_query_error(repo_dir):
    r = dsv.Repository(str(repo_dir))
    with pytest.raises(dsv.QueryError, match="did you mean `weather`"):
        r.frames("HEAD", where='wether == "rain"')
    with pytest.raises(dsv.Error):
        r.frames("HEAD", where="objects.exists(")


def test_an_unknown_revision_raises_revision_error(repo_dir):
    r = dsv.Repository(str(repo_dir))
    with pytest.raises(dsv.RevisionError, match="unknown revision 'nope'"):
        r.resolve("nope")
    with pytest.raises(dsv.RevisionError):
        r.frames("nope")


def test_a_directory_without_repository_raises(tmp_path):
    with pytest.raises(dsv.NotARepositoryError, match="not a dsv repository"):
        dsv.Repository(str(tmp_path))


def test_diff_is_the_cli_json_document(repo_dir):
    import json

    r = dsv.Repository(str(repo_dir))
    first = r.resolve("HEAD")
    # An open Repository holds a read lock, as a running dsv command does.
    del r
    (repo_dir / "labels" / "f001.txt").write_text("1 0.5 0.5 0.2 0.4\n2 0.1 0.1 0.1 0.1\n")
    run(repo_dir, "add", ".")
    run(repo_dir, "commit", "-m", "second")
    r = dsv.Repository(str(repo_dir))
    d = r.diff(first, "HEAD")
    cli = json.loads(run(repo_dir, "diff", "--json", first, "HEAD"))
    assert d == cli
    person = [c for c in d["classes"] if c["class"] == "person"][0]
    assert (person["before"], person["after"], person["added"]) == (0, 1, 1)


def test_objects_and_frames_tables(repo_dir):
    import pyarrow as pa  # installed by tests/python/install-venv.sh: never skipped
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    t = v.objects_table()
    assert isinstance(t, pa.Table)
    assert t.num_rows == 30
    counts = {c: t.column("class").to_pylist().count(c) for c in ["cat", "dog", "person"]}
    assert counts == {"cat": 7, "dog": 7, "person": 16}
    row = t.slice(0, 1).to_pylist()[0]
    assert (row["x"], row["y"], row["w"], row["h"]) == (0.4, 0.3, 0.2, 0.4)
    ft = v.frames_table()
    assert ft.num_rows == 20
    assert ft.column("objects").to_pylist()[:2] == [2, 1]


def test_corrupt_pack_raises_naming_the_object(tmp_path):
    root = make_repo(tmp_path / "ds", n=3)
    r = dsv.Repository(str(root))
    v = r.frames("HEAD")
    fid = v[1].id
    del r, v
    # Flip a byte of frame 1's stored content in its pack.
    packs = sorted((root / ".dsv" / "packs").glob("*.dsvpack"))
    needle = frame_bytes(1)[:40]
    for p in packs:
        b = bytearray(p.read_bytes())
        at = b.find(needle)
        if at >= 0:
            b[at + 10] ^= 0xFF
            p.write_bytes(bytes(b))
            break
    else:
        pytest.fail("frame bytes not found raw in a pack")
    v = dsv.Repository(str(root)).frames("HEAD")
    with pytest.raises(dsv.ObjectError, match=fid):
        v[1].read()
    with pytest.raises(dsv.ObjectError, match=fid):
        list(v)
    # The other frames still read.
    assert v[0].read() == frame_bytes(0)


def test_frames_carry_the_objects_and_attributes_dsv_query_json_prints(repo_dir):
    import json

    cli = json.loads(run(repo_dir, "query", "--json", "true"))["frames"]
    v = dsv.Repository(str(repo_dir)).frames("HEAD")
    assert [f.path for f in v] == [c["path"] for c in cli]
    for f, c in zip(v, cli):
        assert f.objects == c.get("objects", [])
        assert f.attributes == c.get("attrs", {})
        assert f.id == c["id"]


def test_iteration_in_batches_bounded_by_frames_and_bytes_reads_every_frame_once(tmp_path):
    # Frames 5-7 are 3 MiB: together more than a batch's 8 MiB, so a batch ends
    # inside them; prefetch=3 makes batches of 3 frames at most (the first one too).
    root = make_repo(tmp_path / "ds", n=40, big=(5, 6, 7))
    v = dsv.Repository(str(root)).frames("HEAD")
    want = [(f"images/f{i:03}.jpg", frame_bytes(i, 3 << 20 if i in (5, 6, 7) else 300))
            for i in range(40)]
    assert [(f.path, f.read()) for f in v] == want
    assert [(f.path, f.read()) for f in v.iter(prefetch=3)] == want
    assert [(f.path, f.read()) for f in v.iter(prefetch=1)] == want
    assert [(f.path, f.read()) for f in v[::-3]] == want[::-3]
