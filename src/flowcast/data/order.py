"""Key order of canonical frames, checked without full-size temporaries.

Validation and preprocessing both need to know whether rows are sorted by (unique_id, ds) and
where a key repeats (duplicates). The obvious expressions (`uid > uid.shift(1)`, `ds == ds.shift(1)`)
copy whole columns (16 bytes a row for the id strings alone). Here `unique_id` order is checked
in place (`Series.is_sorted`), and one chunked pass over `ds` (`ds_steps`) finds the few rows where
ds steps back or repeats; only at those rows are the ids compared with the row before.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

CHUNK = 1 << 20  # rows per step of a chunked pass (bounds the temporaries to a few MB per column)


@dataclass(frozen=True)
class DsSteps:
    """Row indices i >= 1 where ds[i] < ds[i-1] (`back`) and ds[i] == ds[i-1] (`repeat`); rows with a
    null ds on either side are in neither."""

    back: pl.Series
    repeat: pl.Series


def ds_steps(frame: pl.DataFrame, chunk: int = CHUNK) -> DsSteps:
    """One pass over ds, `chunk` rows at a time (each chunk also reads the row before it)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 row, got {chunk}")
    ds = frame.get_column("ds")
    back: list[pl.Series] = []
    repeat: list[pl.Series] = []
    for a in range(1, frame.height, chunk):
        step = ds.slice(a - 1, chunk + 1).diff().to_physical().slice(1)  # rows a .. a+chunk-1
        back.append((step < 0).fill_null(False).arg_true().cast(pl.Int64) + a)
        repeat.append((step == 0).fill_null(False).arg_true().cast(pl.Int64) + a)
    empty = pl.Series([], dtype=pl.Int64)
    return DsSteps(pl.concat(back) if back else empty, pl.concat(repeat) if repeat else empty)


def new_id_at(uid: pl.Series, rows: pl.Series) -> pl.Series:
    """For row indices `rows` (each >= 1): does unique_id change from the row before? (null ids: null)"""
    return uid.gather(rows) != uid.gather(rows - 1)


def in_key_order(frame: pl.DataFrame, strict: bool, steps: DsSteps | None = None, chunk: int = CHUNK) -> bool:
    """Rows sorted by (unique_id, ds), with ds increasing (`strict`) or non-decreasing within each id:
    unique_id sorted, and ds steps back (or repeats, `strict`) only where the id changes. Pairs of
    rows with a null key count as in order. `steps`: `ds_steps(frame)` when already computed."""
    if frame.height < 2:
        return True
    uid = frame.get_column("unique_id")
    if not uid.is_sorted():
        return False
    steps = steps or ds_steps(frame, chunk)
    rows = pl.concat([steps.back, steps.repeat]) if strict else steps.back
    return rows.len() == 0 or bool(new_id_at(uid, rows).fill_null(True).all())


def repeated_keys(frame: pl.DataFrame, steps: DsSteps | None = None, chunk: int = CHUNK) -> pl.Series:
    """Row indices i >= 1 whose (unique_id, ds) equals row i-1's (keys present), in order."""
    if frame.height < 2:
        return pl.Series([], dtype=pl.Int64)
    rows = (steps or ds_steps(frame, chunk)).repeat
    return rows.filter((~new_id_at(frame.get_column("unique_id"), rows)).fill_null(False))
