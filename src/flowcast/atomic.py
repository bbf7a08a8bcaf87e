"""Atomic file writes: a temp file beside the target, fsync, rename.

Readers see the old file or the new one, never a part of either; a crash leaves at most a
dot-prefixed `.tmp` file that no reader globs. (publish.py and registry.py keep their own,
longer sequences because they add directory fsyncs, locks and fault hooks.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl


def atomic_write_parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write `frame` to `path` (creating its folder) so that `path` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
