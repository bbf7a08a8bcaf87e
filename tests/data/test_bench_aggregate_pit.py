"""bench/aggregate_pit.py runs (at a tiny size) and measures what it says: the cut of an aggregated source with and
without its window over (series, period), rows that reconcile."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


@pytest.mark.parametrize(("variant", "window"), [("naive", False), ("aware", False), ("zoned", True)])
def test_the_aggregate_pit_bench_runs_tiny(tmp_path, variant, window):
    import aggregate_pit

    out = aggregate_pit.bench(series=3, days=4, variant=variant, workdir=str(tmp_path))
    assert out["window"] is window and (out["infer_freq"], out["infer_step"]) == ("1d", "1h") and out["n_series_out"] == 3
    # the last day is not over at 12:00 UTC: its rows wait; the rest of it is after as_of
    assert out["rows_partial_period"] > 0 and out["rows_after_as_of"] > out["rows_partial_period"]
    assert out["rows"] == out["rows_valid"] + out["rows_quarantined"] + out["rows_after_as_of"]
    assert out["peak_rss_mb"] > out["base_rss_mb"] > 0 and not list(tmp_path.glob("*.parquet"))
