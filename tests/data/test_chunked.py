"""The chunked code paths (validation's key-order pass, preprocessing's gap and grid passes, the
read-back of quarantined Parquet rows) give the same result at any chunk size: a chunk of a few
rows puts chunk boundaries between every kind of row that a 2^20-row default never splits on
these tiny inputs."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from data_helpers import make_source, run_validate

from flowcast.config import ValidationConfig, load_settings
from flowcast.data.order import CHUNK
from flowcast.data.preprocess import _distinct, preprocess
from flowcast.data.sources import ingest
from flowcast.data.validate import take_valid, validate

D0 = datetime(2021, 1, 1)


def _messy_rows(seed: int, sort: bool) -> pl.DataFrame:
    """4 series of 15 days with gaps, unparsable and negative values, exact and conflicting
    duplicates; in file order shuffled (or sorted by key)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(4):
        for d in range(15):
            if rng.random() < 0.15:
                continue  # a gap
            val = f"{10 * (s + 1) + d + rng.random():.3f}"
            if rng.random() < 0.08:
                val = "n/a"
            rows.append((f"S{s}", (D0 + timedelta(days=d)).strftime("%Y-%m-%d"), val))
            if rng.random() < 0.1:
                rows.append(rows[-1])  # exact repeat
            elif rng.random() < 0.1:
                rows.append((rows[-1][0], rows[-1][1], "999.0"))  # conflicting value
    f = pl.DataFrame(rows, schema={"id": pl.Utf8, "date": pl.Utf8, "val": pl.Utf8}, orient="row")
    return f if sort else f.sample(fraction=1.0, shuffle=True, seed=seed)


def _validate(path, chunk: int):
    src = make_source(path)
    return validate(ingest(src, None), src, ValidationConfig(quarantine_threshold=1.0), chunk=chunk), src


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("sort", [False, True])
def test_validation_and_preprocessing_agree_at_every_chunk_size(tmp_path, seed, sort):
    path = tmp_path / "src.csv"
    _messy_rows(seed, sort).write_csv(path)
    ref, src = _validate(path, CHUNK)
    assert ref.report.rows_quarantined > 0 and ref.report.rows_valid > 0  # the input exercises both paths
    settings = load_settings(model={"lookback": 3}, horizon=2, preprocess={"max_gap": 2})
    ref_td, ref_summary = preprocess(ref.valid, src, settings, None)
    for chunk in (1, 2, 3, 7):
        got, _ = _validate(path, chunk)
        assert got.valid.equals(ref.valid), chunk
        assert got.quarantined.sort("source_row").equals(ref.quarantined.sort("source_row")), chunk
        assert got.report.checks == ref.report.checks
        td, summary = preprocess(got.valid, src, settings, None, chunk=chunk)
        assert td.frame.equals(ref_td.frame), chunk
        assert td.scalers.equals(ref_td.scalers) and td.excluded.equals(ref_td.excluded)
        assert summary == ref_summary



@pytest.mark.parametrize("chunk", [1, 2, 3, 7, CHUNK])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("n", [0, 1, 10])
def test_distinct_values_chunk_by_chunk_are_those_of_a_whole_column_unique(chunk, masked, n):
    values = pl.Series("ds", [D0 + timedelta(hours=h % 4) for h in range(n)], dtype=pl.Datetime("us"))
    where = pl.Series([h % 3 != 0 for h in range(n)], dtype=pl.Boolean) if masked else None
    got = _distinct(values, where, chunk)
    want = (values if where is None else values.filter(where)).unique()
    assert got.dtype == values.dtype
    assert got.sort().to_list() == want.sort().to_list() and got.n_unique() == got.len()


@pytest.mark.parametrize(("minutes", "skipped"), [(30, True), (15, True), (30, False)])
def test_the_skipped_hour_hint_is_the_same_at_every_chunk_size(write_csv, minutes, skipped):
    """Sub-daily wall times without a tz: the hour Europe's clocks skip, missing from both series (imputed at 30
    minutes, a cut at 15) or there (no hint), said the same at any chunk size of the distinct-times passes."""
    wall = [datetime(2024, 3, 30) + timedelta(minutes=minutes * i) for i in range(3 * 24 * 60 // minutes)]
    local = [t for t in wall if not (skipped and t.date().day == 31 and t.hour == 2)]
    rows = "".join(f"{t:%Y-%m-%dT%H:%M},{m},{i % 7 + 1}\n" for m in ("a", "b") for i, t in enumerate(local)
                   if i % 50 != 7)  # a short gap in each series: imputed either way
    path = write_csv("time,meter,kwh\n" + rows)
    kw = {"time_col": "time", "id_cols": ["meter"], "target_col": "kwh", "freq": f"{minutes}m", "tz": None}
    settings = load_settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2})
    ref = preprocess(take_valid(run_validate(path, **kw)), make_source(path, **kw), settings, None)[1]
    assert (ref.tz_hint is not None) == skipped and ref.rows_imputed > 0, ref
    assert bool(ref.gap_cut) == (skipped and minutes == 15)
    for chunk in (1, 2, 3, 7):
        got = preprocess(take_valid(run_validate(path, **kw)), make_source(path, **kw), settings, None, chunk=chunk)[1]
        assert got == ref, chunk

def test_quarantined_parquet_rows_are_read_back_window_by_window(tmp_path):
    """Read-back of quarantined rows from one Parquet file: windows of 3 rows give the rows a
    single window gives, across window boundaries and in the same order."""
    path = tmp_path / "src.parquet"
    raw = _messy_rows(1, sort=False)
    raw.write_parquet(path, row_group_size=4)
    ingested = ingest(make_source(path), None)
    wanted = pl.Series("source_row", [0, 2, 3, 5, 11, raw.height - 1], dtype=pl.UInt32)
    ref = ingested.rows(wanted)
    assert ref.height == wanted.len()
    for window in (1, 3, 5):
        assert ingested.rows(wanted, window_rows=window).equals(ref), window
