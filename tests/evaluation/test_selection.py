"""The leaderboard of plain backtests (the candidates' board and the decision: test_candidates, test_decision)."""

from __future__ import annotations

import polars as pl
import pytest
from eval_helpers import build_td, naive_fit, seasonal_naive_fit

from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.selection import leaderboard, window_board


def test_leaderboard_from_real_backtests():
    # periodic series: seasonal naive is exact, naive is not, a broken model returns NaN
    pattern = [1.0, 5.0, 3.0, 8.0]
    td = build_td({"a": pattern * 5, "b": [2 * v for v in pattern] * 5}, horizon=4, season_length=4)

    def nan_fit(t):
        return lambda tt: naive_fit(tt)(tt).with_columns(pl.lit(float("nan")).alias("y_hat"))

    def half_fit(t):  # halfway between naive and the truth: beats naive, loses to seasonal naive
        return lambda tt: seasonal_naive_fit(tt)(tt).join(
            naive_fit(tt)(tt).rename({"y_hat": "n"}), on=["unique_id", "ds", "step"]
        ).with_columns(((pl.col("y_hat") + pl.col("n")) / 2).alias("y_hat")).drop("n")

    results = [backtest(td, f, name=n, n_windows=2, step=2)
               for n, f in [("seasonal_naive", seasonal_naive_fit), ("naive", naive_fit),
                            ("rnn", nan_fit), ("lstm", half_fit)]]
    board = leaderboard(results, "mae")
    assert board["model"].to_list() == ["seasonal_naive", "lstm", "naive", "rnn"]
    assert board["rank"].to_list() == [1, 2, 3, None]
    assert board.filter(pl.col("model") == "rnn")["finite"][0] is False
    assert board.filter(pl.col("model") == "seasonal_naive")["mae"][0] == 0.0
    assert board["n_windows"].to_list() == [2, 2, 2, 2] and board["n_series"].to_list() == [2, 2, 2, 2]
    wb = window_board(results)
    assert wb.height == 8 and set(wb["window"].to_list()) == {0, 1}


def test_leaderboard_rejects_duplicate_names_and_unknown_metric():
    td = build_td({"a": list(range(10))}, horizon=2)
    r = backtest(td, naive_fit, name="naive", n_windows=1)
    with pytest.raises(ValueError, match="duplicate"):
        leaderboard([r, r], "mae")
    with pytest.raises(ValueError, match="unknown metric"):
        leaderboard([r], "r2")


def test_an_undefined_metric_falls_back_to_one_that_is_defined():
    """Series that repeat exactly every season have a MASE scale of 0: MASE is undefined for every
    model, so the board ranks by sMAPE and says so (the run does not fail)."""
    from flowcast.evaluation.selection import usable_metric

    pattern = [1.0, 5.0, 3.0, 8.0]
    td = build_td({"a": pattern * 5, "b": [2 * v for v in pattern] * 5}, horizon=4, season_length=4)
    results = [backtest(td, f, name=n, n_windows=1) for n, f in [("naive", naive_fit), ("snaive", seasonal_naive_fit)]]
    assert all(r.summary["mase"] is None for r in results)
    metric, note = usable_metric(results, "mase")
    # regression: the metrics were named as configured ('mase ... ranked by smape'), and the run's notes began
    # 'Mase is undefined'
    assert metric == "smape" and note.startswith("MASE is undefined for every candidate") and "ranked by sMAPE" in note
    assert usable_metric(results, "mae") == ("mae", "")


def test_a_metric_undefined_for_some_series_is_said():
    """Regression: with a constant series, an all-zero one and one that repeats every season beside two
    linear ones, MASE was defined for the linear two only: damped ranked first with MASE 0 and the worst
    sMAPE, and nothing said that 3 of 5 series took no part in the ranking."""
    from flowcast.evaluation.selection import usable_metric

    pattern = [1.0, 5.0, 3.0, 8.0]
    td = build_td({"flat": [5.0] * 20, "zeros": [0.0] * 20, "seasonal": pattern * 5,
                   "up": [float(i) for i in range(20)], "down": [100.0 - 2 * i for i in range(20)]},
                  horizon=4, season_length=4)
    results = [backtest(td, f, name=n, n_windows=1) for n, f in [("naive", naive_fit), ("snaive", seasonal_naive_fit)]]
    metric, note = usable_metric(results, "mase")
    assert metric == "mase"
    assert note.startswith("MASE is undefined for 3 of 5 series (flat, seasonal, zeros: a history that is constant"), note
    assert "ranked on the other 2 series' MASE" in note
    assert usable_metric(results, "smape") == ("smape", "")
    # RMSSE scales by one-step differences: the seasonal series has one; the flat and all-zero ones have none, and
    # the note points at RMSE (sMAPE says little on the zeros of intermittent data, where RMSSE is the default)
    metric, note = usable_metric(results, "rmsse")
    assert metric == "rmsse"
    assert note.startswith("RMSSE is undefined for 2 of 5 series (flat, zeros: a history that is constant"), note
    assert "ranked on the other 3 series' RMSSE (evaluation.metric = \"rmse\" ranks on every series)" in note


def _constant_fit(value: float):
    def fit(td):
        return lambda t: t.future_frame().with_columns(pl.lit(value).alias("y_hat")).select("unique_id", "ds", "step",
                                                                                              "y_hat")
    return fit


@pytest.mark.parametrize("metric, best", [("mase", "zero"), ("rmsse", "rate")])
def test_rmsse_ranks_the_demand_rate_above_zero_on_intermittent_data(metric, best):
    """Mostly-zero demand (one unit in three periods): MASE ranks forecasting 0 first, RMSSE the mean rate."""
    td = build_td({"a": [0.0, 0.0, 3.0] * 8, "b": [3.0, 0.0, 0.0] * 8}, horizon=3)
    results = [backtest(td, _constant_fit(v), name=n, n_windows=2, step=3) for n, v in [("zero", 0.0), ("rate", 1.0)]]
    board = leaderboard(results, metric)
    assert board.columns[:6] == ["model", "smape", "mase", "rmsse", "mae", "rmse"]
    assert board["model"].to_list()[0] == best
    zero = board.filter(pl.col("model") == "zero").row(0, named=True)
    assert zero["rmsse"] is not None and zero["rmsse"] > board.filter(pl.col("model") == "rate")["rmsse"][0]


def test_a_metric_defined_for_one_series_alone_says_the_other_series():
    """newuser44: an all-zero series beside one other was said 'ranked on the other 1 series' MASE'."""
    from flowcast.evaluation.selection import usable_metric

    td = build_td({"zeros": [0.0] * 20, "up": [float(i) for i in range(20)]}, horizon=4, season_length=4)
    results = [backtest(td, f, name=n, n_windows=1) for n, f in [("naive", naive_fit), ("snaive", seasonal_naive_fit)]]
    _, note = usable_metric(results, "mase")
    assert "ranked on the other series' MASE (evaluation.metric" in note, note
