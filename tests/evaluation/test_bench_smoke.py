"""The evaluation and publish benchmarks run (at a tiny size) and report what they claim."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def test_bench_evaluation_tiny():
    import bench_evaluation

    out = bench_evaluation.run(n_series=20, length=40, horizon=4, n_windows=2)
    assert out["forecast_rows"] == 20 * 4 * 2
    assert out["mase_seasonal_naive"] < out["mase_naive"] and out["champion"] == "seasonal_naive"


def test_bench_publish_tiny():
    import bench_publish

    out = bench_publish.run(n_series=10, horizon=3)
    assert out["rows"] == out["rows_read"] == 30 and out["series_rows"] == 3
    assert out["same_hash"] is True and out["replaced_rows"] == 30
