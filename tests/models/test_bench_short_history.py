"""bench/short_history.py measures what it says on tiny data: the validation target is the last horizon of the
training span, the history the k points before it, the scales and scores as its docstring defines them, and the
forecasts are the product's own (naive: the last value of the k points)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def _train() -> pl.DataFrame:
    ys = {"a": [1.0, 2.0, 4.0, 7.0, 8.0, 10.0], "b": [4.0, 6.0, 5.0, 5.0, 9.0, 12.0]}
    return pl.DataFrame({
        "unique_id": [u for u, v in ys.items() for _ in v],
        "ds": [datetime(2000 + i, 1, 1) for v in ys.values() for i in range(len(v))],
        "y": [x for v in ys.values() for x in v],
    })


def test_cut_keeps_the_k_points_before_the_validation_horizon():
    import short_history

    short, val, full = short_history.cut(_train(), h=2, k=3)
    assert short.filter(pl.col("unique_id") == "a")["y"].to_list() == [2.0, 4.0, 7.0]
    assert val.filter(pl.col("unique_id") == "a").select("step", "y").rows() == [(1, 8.0), (2, 10.0)]
    # the full scale: naive MAE of the 4 points before the validation horizon (a: 1, 2, 3; b: 2, 1, 0)
    assert dict(full.sort("unique_id").rows()) == {"a": pytest.approx(2.0), "b": pytest.approx(1.0)}
    with pytest.raises(SystemExit, match="fewer than 5 points"):
        short_history.cut(_train(), h=2, k=5)


def test_scores_of_the_products_naive_on_the_cut():
    import short_history

    short, val, full = short_history.cut(_train(), h=2, k=2)  # a: 4, 7 -> 8, 10; b: 5, 5 (flat) -> 9, 12
    fc = short_history.forecasts(short, "1y", 2, 1, ["naive"])["naive"]
    assert fc.sort("unique_id", "step")["y_hat"].to_list() == [7.0, 7.0, 5.0, 5.0]
    s = short_history.score(fc, val, short, full)
    smape_a = (200 * 1 / 15 + 200 * 3 / 17) / 2
    smape_b = (200 * 4 / 14 + 200 * 7 / 17) / 2
    assert s["smape"] == pytest.approx((smape_a + smape_b) / 2, abs=1e-3)
    assert s["mase_k"] == pytest.approx((1 + 3) / 2 / 3, abs=1e-3)  # b's k points are flat: left out, counted
    assert s["flat_k"] == 1 and s["series"] == 2
    assert s["mase_full"] == pytest.approx(((1 + 3) / 2 / 2 + (4 + 7) / 2 / 1) / 2, abs=1e-3)
