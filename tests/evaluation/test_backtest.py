"""Rolling-origin backtests with test-local forecasters on series whose answers are known."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from eval_helpers import build_td, naive_fit, seasonal_naive_fit

from flowcast.evaluation.backtest import backtest

D = lambda i: datetime(2020, 1, 1) + timedelta(days=i)


def test_windows_cutoffs_and_naive_errors_on_a_line():
    # y = t on 0..9; h=2, step=1, 3 windows hold out 4, 3, 2 points: cutoffs t=5, 6, 7
    td = build_td({"a": list(range(10)), "b": [2 * t for t in range(10)]}, horizon=2)
    res = backtest(td, naive_fit, name="naive", n_windows=3, step=1)
    fc = res.forecasts
    assert fc.columns == ["unique_id", "window", "cutoff", "ds", "step", "y", "y_hat"]
    a = fc.filter(pl.col("unique_id") == "a")
    assert a["window"].to_list() == [0, 0, 1, 1, 2, 2]
    assert a["cutoff"].to_list() == [D(5), D(5), D(6), D(6), D(7), D(7)]
    assert a["ds"].to_list() == [D(6), D(7), D(7), D(8), D(8), D(9)]
    assert a["y"].to_list() == [6, 7, 7, 8, 8, 9]
    assert a["y_hat"].to_list() == [5, 5, 6, 6, 7, 7]
    # naive on a line of slope s: errors s, 2s -> MAE 1.5 s; MASE scale (lag 1) = s -> 1.5
    m = res.metrics.sort("unique_id", "window")
    assert m.filter(pl.col("unique_id") == "a")["mae"].to_list() == pytest.approx([1.5] * 3)
    assert m.filter(pl.col("unique_id") == "b")["mae"].to_list() == pytest.approx([3.0] * 3)
    assert m["mase"].to_list() == pytest.approx([1.5] * 6)
    assert res.summary["mae"] == pytest.approx(2.25)
    assert res.summary["finite"] is True and res.finite


@pytest.mark.parametrize("refit, expected_fits", [(False, 1), (True, 3)])
def test_fit_once_on_the_oldest_window_unless_refit(refit, expected_fits):
    td = build_td({"a": list(range(12))}, horizon=2)
    seen: list[int] = []

    def fit(train_td):
        seen.append(train_td.n_obs)
        return naive_fit(train_td)

    backtest(td, fit, name="naive", n_windows=3, step=2, refit=refit)
    assert len(seen) == expected_fits
    # oldest window holds out 2 + 2*2 = 6 points: the single fit never sees any window's actuals
    assert seen[0] == 6
    if refit:
        assert seen == [6, 8, 10]


def test_seasonal_naive_is_exact_on_a_periodic_series():
    pattern = [1.0, 5.0, 3.0]
    td = build_td({"p": pattern * 6}, horizon=3, season_length=3)
    res = backtest(td, seasonal_naive_fit, name="seasonal_naive", n_windows=2, step=3)
    assert res.metrics["mae"].to_list() == [0.0, 0.0]
    # the seasonal-naive in-sample scale of an exactly periodic series is 0: MASE is undefined (null)
    assert res.metrics["mase"].to_list() == [None, None]


def test_nan_forecasts_are_counted_not_hidden():
    td = build_td({"a": list(range(10)), "b": list(range(10))}, horizon=2)

    def nan_fit(train_td):
        base = naive_fit(train_td)
        return lambda t: base(t).with_columns(
            pl.when(pl.col("unique_id") == "b").then(float("nan")).otherwise(pl.col("y_hat")).alias("y_hat"))

    res = backtest(td, nan_fit, name="broken", n_windows=2)
    assert res.n_nonfinite == 4 and not res.finite
    assert res.summary["finite"] is False and res.summary["n_nonfinite"] == 4


def test_too_short_series_named():
    td = build_td({"long": list(range(20)), "tiny": [1.0, 2.0, 3.0]}, horizon=2)
    with pytest.raises(ValueError, match="tiny"):
        backtest(td, naive_fit, name="naive", n_windows=2)


def test_forecaster_missing_rows_is_a_clear_error():
    td = build_td({"a": list(range(10)), "b": list(range(10))}, horizon=2)

    def partial_fit(train_td):
        return lambda t: naive_fit(t)(t).filter(pl.col("unique_id") == "a")

    with pytest.raises(ValueError, match=r"no forecast for 2 of 4 held-out points"):
        backtest(td, partial_fit, name="partial", n_windows=1)


def test_quantile_forecasts_are_scored():
    td = build_td({"a": list(range(10))}, horizon=2)

    def q_fit(train_td):
        return lambda t: naive_fit(t)(t).with_columns(
            (pl.col("y_hat") - 1).alias("y_hat_q10"), (pl.col("y_hat") + 1.5).alias("y_hat_q90"))

    res = backtest(td, q_fit, name="q", n_windows=1)
    assert {"pinball_q10", "pinball_q90", "coverage"} <= set(res.metrics.columns)
    # actuals 8, 9 from last 7: intervals [6, 8.5] -> 8 inside, 9 outside
    assert res.metrics["coverage"][0] == pytest.approx(0.5)
