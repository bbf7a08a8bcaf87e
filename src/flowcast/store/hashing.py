"""The content hash of published forecasts.

sha256 over the published content except `run_id` and `created_at` (dataset, as_of, unique_id,
ds, step, model, model_version, y_hat, value columns; columns sorted by name, rows by unique_id
and ds), so re-publishing identical forecasts gives an identical hash whatever the run and
whatever the store (the PostgreSQL store computes the same value). Type tags are our own, not
str(dtype), so the hash does not change with the polars version. A change of this function
changes the hash of every published (dataset, as_of): tests/store pins one value.
"""

from __future__ import annotations

import hashlib

import polars as pl

HASH_EXCLUDES = ("run_id", "created_at")


def content_hash(frame: pl.DataFrame) -> str:
    """sha256 of the published content, excluding run_id and created_at (see module doc)."""
    f = frame.drop([c for c in HASH_EXCLUDES if c in frame.columns])
    f = f.select(sorted(f.columns)).sort("unique_id", "ds")
    h = hashlib.sha256()
    h.update(str(f.height).encode())
    for name in f.columns:
        s = f[name]
        tag = ("str" if s.dtype == pl.Utf8 else "ts_us" if s.dtype.is_temporal()
               else "f64" if s.dtype.is_float() else "i64")
        h.update(f"\0{name}\0{tag}\0".encode())
        if s.dtype == pl.Utf8:
            h.update(s.is_null().to_numpy().tobytes())
            s = s.fill_null("")
            h.update(s.str.len_bytes().to_numpy().tobytes())
            h.update((s.str.join("").item() or "").encode())
        elif s.dtype.is_temporal():
            h.update(s.cast(pl.Datetime("us")).dt.epoch("us").to_numpy().tobytes())
        elif s.dtype.is_float():
            h.update(s.cast(pl.Float64).to_numpy().tobytes())
        else:
            h.update(s.cast(pl.Int64).to_numpy().tobytes())
    return h.hexdigest()
