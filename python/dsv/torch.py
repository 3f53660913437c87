"""PyTorch datasets over a dsv view: `view.torch()` (map-style) and
`view.torch(iterable=True)`.

Workers and distributed ranks: the iterable dataset cuts the epoch's order into
`world_size * num_workers` consecutive shards (sizes differing by one at most),
shard `rank * num_workers + worker_id` per worker, so every frame is read
exactly once per epoch. Consecutive, not interleaved: without `shuffle` a
worker's frames are then neighbours in the packs, read with no bytes of another
worker's frames between them (interleaved, each worker read every pack whole).
The rank and world size are the `rank` and `world_size` arguments when given;
else those of `torch.distributed` when it is initialized as the dataset is made
(kept, so workers started with `spawn` know them too) or as a worker iterates;
else the `RANK` and `WORLD_SIZE` variables torchrun sets; else rank 0 of 1. The
map-style dataset leaves that to the DataLoader's sampler (`DistributedSampler`
for ranks). The order of an epoch is fixed by `(seed, epoch)`; call
`set_epoch(n)` at the start of each epoch.

The epoch is held in shared memory made with the dataset (a
`multiprocessing.RawValue`), not in the dataset's own fields: DataLoader
workers, persistent ones (`persistent_workers=True`) included, keep the copy of
the dataset made as they start, fork or spawn, and a plain field set in the
parent afterwards would never reach them: each epoch would silently repeat the
order of the epoch the workers started in. A worker reads the shared epoch at
the start of each pass (iterable) or of each sample's lookup (map-style). The
shared memory passes to a process only as it is started (inherited by a fork,
or pickled while `spawn`/`forkserver` starts one); a dataset pickled at any other
time (`pickle.dumps`, `copy.deepcopy`, a queue) carries the epoch it has then,
in new shared memory of its own: a copy that its own `set_epoch` moves, not the
original's.

Views are lazy: making one (and a dataset of it) decodes no frame's labels,
only the version's frame count (or a selection's positions) is read; frames are
decoded by blocks of 8,192 positions of the version the first time one of the
block's frames is read. A dataset holds the commit and its view's positions (a
`range` for a whole version: a few bytes to pickle), not the view. Each worker
process opens the repository again from its spec (a remote without refreshing
its mirror) the first time it reads, so the dataset pickles for the `spawn`
start method and nothing native crosses a `fork`. A worker of the iterable
dataset decodes the labels of its own shard only (`Repository.frames_at`);
a worker of the map-style dataset those of the blocks holding the samples
asked for (`__getitems__`, the DataLoader's batched fetch, reads a batch's
frames together).
"""

import bisect
import multiprocessing
import operator
import os
import random
import zlib
from array import array

try:  # torch is optional: without it these are plain Python classes.
    from torch.utils.data import Dataset as _MapBase
    from torch.utils.data import IterableDataset as _IterBase
except ImportError:  # pragma: no cover - depends on the machine
    _MapBase = object
    _IterBase = object


def get_worker_info():
    """torch.utils.data.get_worker_info(), or None without torch."""
    try:
        from torch.utils.data import get_worker_info as gwi
    except ImportError:
        return None
    return gwi()


def get_rank_world():
    """(rank, world_size) of torch.distributed when initialized, else from the
    RANK and WORLD_SIZE variables torchrun sets, else (0, 1)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def sample_of(frame, data):
    """The default sample: a dict of the frame's bytes, labels and metadata."""
    return {
        "path": frame.path,
        "id": frame.id,
        "data": data,
        "width": frame.width,
        "height": frame.height,
        "units": frame.units,
        "objects": frame.objects,
        "attributes": frame.attributes,
        "predictions": frame.predictions,
    }


class Runs:
    """A view's positions in the version, held as runs of consecutive
    positions: a sequence (len, indexing, iteration) that pickles in O(runs)
    bytes (the runs' starts and lengths, delta-coded and compressed), not one
    int per frame. A `where` selection of a million frames is sent to each
    DataLoader worker in bytes when its frames come in runs or regularly; a
    million frames scattered at random over ten million in about 0.7 MB (the
    information they carry is 0.59 MB), against 5 MB as a list."""

    def __init__(self, runs):
        self._starts = array("q", (s for s, _ in runs))
        ends, n = array("q"), 0
        for _, k in runs:
            n += k
            ends.append(n)
        # ends[i]: the view index just past run i.
        self._ends = ends

    @classmethod
    def _unpack(cls, gaps, lens):
        g, k = _unpack_column(*gaps), _unpack_column(*lens)
        runs, prev = [], 0
        for d, n in zip(g, k):
            start = prev + d
            runs.append((start, n))
            prev = start + n
        return cls(runs)

    def __reduce__(self):
        # Two columns, compressed apart: each start as its distance from the
        # end of the run before (small, and the same for a regular selection),
        # and the lengths; each in the narrowest machine integer that holds it.
        gaps, lens, prev = [], [], 0
        for s, n in self.runs():
            gaps.append(s - prev)
            lens.append(n)
            prev = s + n
        return (Runs._unpack, (_pack_column(gaps), _pack_column(lens)))

    def runs(self):
        """(start, length) of each run, in order."""
        last = 0
        for s, e in zip(self._starts, self._ends):
            yield s, e - last
            last = e

    def __len__(self):
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, i):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"position {i} out of range ({n})")
        r = bisect.bisect_right(self._ends, i)
        return self._starts[r] + i - (self._ends[r - 1] if r else 0)

    def __iter__(self):
        for s, k in self.runs():
            yield from range(s, s + k)

    def __eq__(self, other):
        try:
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        except TypeError:
            return NotImplemented

    __hash__ = None


def _pack_column(values):
    """(typecode, zlib-compressed bytes) of ints in the narrowest array type."""
    lo = min(values, default=0)
    for tc in ("BHIQ" if lo >= 0 else "bhiq"):
        a = array(tc)
        try:
            a.fromlist(values)
        except OverflowError:
            continue
        return tc, zlib.compress(a.tobytes(), 6)
    raise OverflowError("a position beyond 64 bits")


def _unpack_column(tc, blob):
    a = array(tc)
    a.frombytes(zlib.decompress(blob))
    return a


def view_positions(view):
    """The view's positions in the version: a range when they are one run
    (the whole version, usually: a few bytes to pickle), else `Runs`."""
    span = view.version_span
    if span is not None:
        return range(*span)
    runs = view.position_runs
    if len(runs) <= 1:
        s, k = runs[0] if runs else (0, 0)
        return range(s, s + k)
    return Runs(runs)


def _check_epoch(epoch):
    """`epoch` as an int that the shared cell holds exactly."""
    try:
        e = operator.index(epoch)
    except TypeError:
        raise TypeError(f"an epoch is an integer, not {type(epoch).__name__}") from None
    if not -(1 << 63) <= e < (1 << 63):
        raise ValueError(f"epoch {e} does not fit in 64 bits")
    return e


def _epoch_cell(epoch):
    """Shared memory holding an epoch: a worker process started with the
    dataset (fork, spawn or forkserver) sees what the parent sets later."""
    # No lock: one process writes it, between epochs; a 64-bit aligned read
    # is whole.
    return multiprocessing.RawValue("q", _check_epoch(epoch))


class _Base:
    def __init__(self, view, transform=None, shuffle=False, seed=0):
        self._spec = list(view.repository_spec)
        self._commit = view.commit
        # Runs of positions, not a list: each worker is sent a few bytes for a
        # whole version, O(runs) for a selection, and making it decodes nothing.
        self._positions = view_positions(view)
        self._transform = transform
        self._shuffle = shuffle
        self._seed = seed
        # Shared with every worker process this dataset is started in (see
        # the module's doc): made here, before any worker exists.
        self._epoch_cell = _epoch_cell(0)
        self._view = view
        self._repo = None
        self._pid = os.getpid()
        self._order = None
        self._plist = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_view"] = None
        state["_repo"] = None
        state["_order"] = None
        state["_plist"] = None
        if multiprocessing.context.get_spawning_popen() is None:
            # Not a process being started: the shared memory cannot travel
            # (multiprocessing hands it over only as it starts a process), the
            # epoch it holds does.
            state["_epoch_cell"] = self._epoch
        return state

    def __setstate__(self, state):
        cell = state["_epoch_cell"]
        if isinstance(cell, int):
            state["_epoch_cell"] = _epoch_cell(cell)
        self.__dict__.update(state)

    @property
    def _epoch(self):
        """The epoch set last, in this process or in the one that started it."""
        return self._epoch_cell.value

    @property
    def epoch(self):
        """The epoch whose order the next pass follows (`set_epoch`)."""
        return self._epoch

    def set_epoch(self, epoch):
        """Sets the epoch whose order the next pass follows, in this process
        and in the DataLoader workers started with this dataset (persistent
        ones too)."""
        self._epoch_cell.value = _check_epoch(epoch)

    def _local(self):
        """Whether the view at hand was made in this process."""
        return self._view is not None and self._pid == os.getpid()

    def repository(self):
        """The repository, opened again in this process if it was opened in another."""
        if self._repo is None or self._pid != os.getpid():
            import dsv

            self._repo = dsv.open_spec(self._spec)
            self._view = None
            self._pid = os.getpid()
        return self._repo

    def view(self):
        """The view, opened again in this process if it was made in another."""
        if not self._local():
            # Lazy, as the one made in the parent: nothing is decoded here.
            repo = self.repository()
            pos = self._positions
            view = None
            if isinstance(pos, range) and pos.step == 1 and pos.start == 0:
                whole = repo.frames(self._commit)
                if len(whole) == len(pos):
                    view = whole
            if view is None:
                # Decodes the blocks of these positions only, as they are read.
                view = repo.frames_at(self._commit, self._version_positions(range(len(pos))))
            self._view = view
        if self._keep_all():
            # Random access (a sampler's order) comes back to every block: the
            # view keeps what it decoded rather than decode blocks again.
            self._view.keep_blocks(None)
        return self._view

    def _keep_all(self):
        """Whether this dataset's views keep every decoded block."""
        return True

    def _version_positions(self, indices):
        """The version positions of the view's frames at `indices`."""
        pos = self._positions
        if isinstance(pos, range):
            return [pos[i] for i in indices] if pos.start or pos.step != 1 else list(indices)
        if self._plist is None:
            # Made once per process: indexing runs costs a search per frame.
            self._plist = list(pos)
        plist = self._plist
        return [plist[i] for i in indices]

    def order(self):
        """Positions in this view, in this epoch's order."""
        # Made once per epoch: a map-style dataset asks for it on every sample.
        # The shared epoch read once: the parent may set it meanwhile.
        epoch = self._epoch
        key = (self._seed, epoch, self._shuffle)
        if self._order is None or self._order[0] != key:
            order = list(range(len(self._positions)))
            if self._shuffle:
                random.Random(f"{self._seed}:{epoch}").shuffle(order)
            self._order = (key, order)
        return self._order[1]

    def _frames(self, indices):
        """The frames at `indices` of this view, their bytes read together (in a
        worker, the labels of the blocks holding them decoded the first time
        one of them is read)."""
        return self.view().read_many(indices)

    def _sample(self, frame):
        # Frame.sample() is sample_of(frame, frame.read()), built natively.
        s = frame.sample()
        return self._transform(s) if self._transform is not None else s

    def __len__(self):
        return len(self._positions)


class TorchDataset(_Base, _MapBase):
    """Map-style: `ds[i]` is the i-th sample of this epoch's order."""

    def _index(self, i):
        """The position in this view of sample `i` of this epoch."""
        n = len(self._positions)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample {i} out of range ({n} frames)")
        return self.order()[i] if self._shuffle else i

    def __getitem__(self, i):
        return self._sample(self._frames([self._index(i)])[0])

    def __getitems__(self, indices):
        """Samples `indices` (a DataLoader's batch), their frames read together."""
        return [self._sample(f) for f in self._frames([self._index(i) for i in indices])]


def _distributed():
    """(rank, world_size) of torch.distributed when it is initialized, else None."""
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


class TorchIterableDataset(_Base, _IterBase):
    """Iterable: each worker of each rank reads its own shard, read ahead."""

    def __init__(self, view, transform=None, shuffle=False, seed=0, prefetch=4096,
                 rank=None, world_size=None):
        super().__init__(view, transform, shuffle, seed)
        self._prefetch = prefetch
        if (rank is None) != (world_size is None):
            raise ValueError("rank and world_size are given together")
        if rank is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size}")
        self._rank_world = (rank, world_size) if rank is not None else _distributed()

    def _keep_all(self):
        # A pass in order holds a few blocks at a time; a shuffled one comes
        # back to every block of its shard.
        return self._shuffle

    def rank_world(self):
        """(rank, world_size) this dataset is read as (see the module's doc)."""
        return self._rank_world if self._rank_world is not None else get_rank_world()

    def shard(self):
        """Positions (in this view) this worker of this rank reads this epoch."""
        rank, world = self.rank_world()
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        k, n = rank * nw + wid, world * nw
        m = len(self._positions)
        return self.order()[k * m // n : (k + 1) * m // n]

    def __iter__(self):
        at = self._version_positions(self.shard())
        if self._local():
            part = self._view.at_version_positions(at)
        else:
            # In a worker: the shard's frames alone, not the whole version.
            part = self.repository().frames_at(self._commit, at)
        if self._keep_all():
            part.keep_blocks(None)
        # Samples made natively, with no Frame object per frame in between,
        # and handed out by the native iterator itself (no generator frame of
        # Python's per sample: a worker's per-sample cost).
        samples = part.samples(self._prefetch)
        if self._transform is None:
            return samples
        return map(self._transform, samples)

    def __len__(self):
        # The whole view: what a DataLoader reports; a shard is about len / shards.
        return len(self._positions)
