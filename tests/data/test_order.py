"""Key order and repeated keys (order.py) agree with the whole-column shift expressions they replace."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flowcast.data.order import ds_steps, in_key_order, repeated_keys


def _frame(ids: list[str | None], days: list[int | None]) -> pl.DataFrame:
    d0 = datetime(2020, 1, 1)
    return pl.DataFrame(
        {"unique_id": ids, "ds": [None if d is None else d0 + timedelta(days=d) for d in days]},
        schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us")},
    )


def _shift_in_order(f: pl.DataFrame, strict: bool) -> bool:  # the expression validation used before
    uid, ds = pl.col("unique_id"), pl.col("ds")
    step = ds > ds.shift(1) if strict else ds >= ds.shift(1)
    return f.height < 2 or f.select(((uid > uid.shift(1)) | ((uid == uid.shift(1)) & step)).slice(1).all()).item()


def _shift_repeats(f: pl.DataFrame) -> list[int]:
    uid, ds = pl.col("unique_id"), pl.col("ds")
    same = ((uid == uid.shift(1)) & (ds == ds.shift(1))).fill_null(False)
    return f.select(same.arg_true()).to_series().to_list()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_order_and_repeats_match_the_shift_expressions(seed, chunk):
    # chunk=3: several chunks, so a step across a chunk boundary must count
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 30))
    ids = sorted(rng.choice(["a", "b", "c"], n).tolist()) if rng.random() < 0.7 else rng.choice(["a", "b"], n).tolist()
    days = [int(d) for d in rng.integers(0, 4, n)]
    if rng.random() < 0.5:  # sorted days within each id, with repeats
        f = _frame(ids, days).sort("unique_id", "ds")
    else:
        f = _frame(ids, days)
    for strict in (False, True):
        assert in_key_order(f, strict, chunk=chunk) == _shift_in_order(f, strict)
    if in_key_order(f, strict=False, chunk=chunk):
        assert repeated_keys(f, chunk=chunk).to_list() == _shift_repeats(f)
        assert repeated_keys(f, ds_steps(f, chunk)).to_list() == _shift_repeats(f)


def test_null_ds_is_neither_a_step_back_nor_a_repeat():
    f = _frame(["a", "a", "a", "a"], [1, None, 1, 0])
    steps = ds_steps(f)
    assert steps.back.to_list() == [3] and steps.repeat.to_list() == []


def test_every_chunk_size_finds_the_same_steps():
    """Steps back and repeats at every position, chunks of 1 row to more than the frame."""
    f = _frame(["a"] * 9, [0, 1, 1, 0, 2, 2, 2, 1, 3])
    want = ([3, 7], [2, 5, 6])
    for chunk in range(1, 12):
        steps = ds_steps(f, chunk)
        assert (steps.back.to_list(), steps.repeat.to_list()) == want, chunk
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        ds_steps(f, 0)
