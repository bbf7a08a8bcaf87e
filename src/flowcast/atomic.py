"""Atomic file writes: a temp file beside the target, fsync, rename.

Readers see the old file or the new one, never a part of either; a crash leaves at most a
dot-prefixed `.tmp` file that no reader globs. (publish.py and registry.py keep their own,
longer sequences because they add directory fsyncs, locks and fault hooks.)
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import polars as pl

from flowcast.errors import StorageError


def atomic_write_parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write `frame` to `path` (creating its folder) so that `path` is never half-written."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        frame.write_parquet(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, pl.exceptions.PolarsError) as exc:  # polars wraps I/O errors in a ComputeError
        text = " ".join(str(exc).split())
        full = getattr(exc, "errno", None) == errno.ENOSPC or "os error 28" in text or "No space left" in text
        why = "no space left on device (the disk is full)" if full else text
        raise StorageError(f"could not write {path}: {why}; the previous file, if any, is intact") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path
