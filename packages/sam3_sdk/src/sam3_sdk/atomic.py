"""Atomic file writes: every export goes to a temporary file beside its target and is renamed
into place when complete, so a failure (or a reader racing the writer) never sees half a file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_atomically"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that needs a file name (zip, PyAV); renamed to
    `path` when the block succeeds, removed otherwise. Parent folders are created.

    The temporary name keeps the suffix, since writers such as PyAV pick the format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`); returns `path` as a `Path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
