"""dsv: read dataset versions (frames, labels, queries, diffs) from Python.

Everything is read through the dsv library (the Rust crate in this repository);
see docs/python.md.
"""

from ._dsv import (  # noqa: F401
    Error,
    Frame,
    FrameView,
    InvalidArgumentError,
    LockedError,
    NotARepositoryError,
    ObjectError,
    QueryError,
    RemoteError,
    Repository,
    RevisionError,
)


def open_spec(spec, refresh=False):
    """Opens the repository a `Repository.spec` describes (another process's)."""
    if spec[0] == "local":
        return Repository(spec[1])
    if spec[0] == "remote":
        return Repository.open_remote(
            spec[1], cache_dir=spec[2], cache_size=int(spec[3]), refresh=refresh
        )
    raise InvalidArgumentError(f"unknown repository spec {spec!r}")


__all__ = [
    "Error",
    "Frame",
    "FrameView",
    "InvalidArgumentError",
    "LockedError",
    "NotARepositoryError",
    "ObjectError",
    "QueryError",
    "RemoteError",
    "Repository",
    "RevisionError",
    "open_spec",
]
