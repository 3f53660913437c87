"""PyTorch datasets over a dsv view: `view.torch()` (map-style) and
`view.torch(iterable=True)`.

Workers and distributed ranks: the iterable dataset splits the epoch's order
into `world_size * num_workers` interleaved shards, shard
`rank * num_workers + worker_id` per worker, so every frame is read exactly
once per epoch. The rank and world size are the `rank` and `world_size`
arguments when given; else those of `torch.distributed` when it is initialized
as the dataset is made (kept, so workers started with `spawn` know them too) or
as a worker iterates; else the `RANK` and `WORLD_SIZE` variables torchrun sets;
else rank 0 of 1. The map-style dataset leaves that to the DataLoader's sampler
(`DistributedSampler` for ranks). The order of an epoch is fixed by
`(seed, epoch)`; call `set_epoch(n)` at the start of each epoch.

Each worker process opens the repository again from its spec (a remote
without refreshing its mirror) the first time it reads, so the dataset pickles
for the `spawn` start method and nothing native crosses a `fork`. A worker of
the iterable dataset decodes the labels of its own shard only
(`Repository.frames_at`), not the whole version's.
"""

import os
import random

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


class _Base:
    def __init__(self, view, transform=None, shuffle=False, seed=0):
        self._spec = list(view.repository_spec)
        self._commit = view.commit
        positions = list(view.positions_in_version)
        # A view of the first n frames (the whole version, usually) pickles as a
        # range: each worker is sent a few bytes, not a list of every position.
        if positions == list(range(len(positions))):
            positions = range(len(positions))
        self._positions = positions
        self._transform = transform
        self._shuffle = shuffle
        self._seed = seed
        self._epoch = 0
        self._view = view
        self._repo = None
        self._pid = os.getpid()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_view"] = None
        state["_repo"] = None
        return state

    def set_epoch(self, epoch):
        """Sets the epoch whose order the next pass follows."""
        self._epoch = epoch

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
            whole = self.repository().frames(self._commit)
            if isinstance(self._positions, range):
                self._view = whole[0 : len(self._positions)]
            else:
                self._view = whole.at_version_positions(self._positions)
        return self._view

    def order(self):
        """Positions in this view, in this epoch's order."""
        order = list(range(len(self._positions)))
        if self._shuffle:
            random.Random(f"{self._seed}:{self._epoch}").shuffle(order)
        return order

    def _sample(self, frame):
        # Frame.sample() is sample_of(frame, frame.read()), built natively.
        s = frame.sample()
        return self._transform(s) if self._transform is not None else s

    def __len__(self):
        return len(self._positions)


class TorchDataset(_Base, _MapBase):
    """Map-style: `ds[i]` is the i-th sample of this epoch's order."""

    def __getitem__(self, i):
        n = len(self._positions)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample {i} out of range ({n} frames)")
        j = self.order()[i] if self._shuffle else i
        frame = self.view()[j]
        return self._sample(frame)


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

    def rank_world(self):
        """(rank, world_size) this dataset is read as (see the module's doc)."""
        return self._rank_world if self._rank_world is not None else get_rank_world()

    def shard(self):
        """Positions (in this view) this worker of this rank reads this epoch."""
        rank, world = self.rank_world()
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        k, n = rank * nw + wid, world * nw
        return self.order()[k::n]

    def __iter__(self):
        mine = self.shard()
        pos = self._positions
        # The positions of a range view are the indices themselves.
        at = mine if isinstance(pos, range) else [pos[i] for i in mine]
        if self._local():
            part = self._view.at_version_positions(at)
        else:
            # In a worker: the shard's frames alone, not the whole version.
            part = self.repository().frames_at(self._commit, at)
        for frame in part.iter(self._prefetch):
            yield self._sample(frame)

    def __len__(self):
        # The whole view: what a DataLoader reports; a shard is about len / shards.
        return len(self._positions)
