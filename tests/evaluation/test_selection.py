"""Leaderboard and the promotion decision (finite, beats seasonal naive and the incumbent by a margin)."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from eval_helpers import build_td, naive_fit, seasonal_naive_fit

from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.selection import leaderboard, select, window_board


def _board(rows: dict[str, tuple[float, bool]], metric: str = "mase") -> pl.DataFrame:
    data = [
        {"model": m, "smape": s, "mase": s, "mae": s, "rmse": s, "n_windows": 2, "n_series": 3,
         "n_nonfinite": 0 if ok else 6, "finite": ok}
        for m, (s, ok) in rows.items()
    ]
    return pl.DataFrame(data)


@pytest.mark.parametrize(
    "rows, incumbent, margin, promote, challenger, reason_part",
    [
        ({"lstm": (0.8, True), "gru": (0.9, True), "seasonal_naive": (1.0, True)}, None, 0.0, True, "lstm",
         "beats seasonal_naive"),
        ({"lstm": (1.1, True), "seasonal_naive": (1.0, True)}, None, 0.0, False, "lstm",
         "does not beat seasonal_naive"),
        ({"lstm": (0.8, True), "seasonal_naive": (1.0, True), "prod": (0.7, True)}, "prod", 0.0, False, "lstm",
         "does not beat incumbent prod"),
        ({"lstm": (0.69, True), "seasonal_naive": (1.0, True), "prod": (0.7, True)}, "prod", 0.05, False, "lstm",
         "by 5.00%"),
        ({"lstm": (0.6, True), "seasonal_naive": (1.0, True), "prod": (0.7, True)}, "prod", 0.05, True, "lstm",
         "beats incumbent prod"),
        ({"lstm": (0.6, True), "seasonal_naive": (1.0, True), "prod": (math.nan, False)}, "prod", 0.0, True, "lstm",
         "only the baseline must be beaten"),
        ({"lstm": (0.6, True), "naive": (0.5, True)}, None, 0.0, False, "lstm", "baseline seasonal_naive is missing"),
        ({"lstm": (0.6, True), "seasonal_naive": (1.0, True)}, "prod", 0.0, False, "lstm",
         "incumbent prod is missing"),
        ({"lstm": (0.7, True), "seasonal_naive": (0.7, True)}, None, 0.0, False, "lstm", "does not beat"),  # tie
    ],
)
def test_select_rules(rows, incumbent, margin, promote, challenger, reason_part):
    d = select(_board(rows), metric="mase", margin=margin, incumbent=incumbent)
    assert d.promote is promote
    assert d.challenger == challenger
    assert any(reason_part in r for r in d.reasons), d.reasons


def test_nan_challenger_blocks_promotion_with_a_clear_reason():
    board = _board({"rnn": (math.nan, False), "seasonal_naive": (1.0, True)})
    d = select(board, metric="mase", margin=0.0)
    assert d.promote is False and d.challenger is None
    assert any("rnn is not eligible: forecasts not finite (6 NaN/inf forecast values)" in r for r in d.reasons)
    # a finite but worse candidate is chosen over a NaN one, and the NaN one is still explained
    board = _board({"rnn": (math.nan, False), "gru": (0.5, True), "seasonal_naive": (1.0, True)})
    d = select(board, metric="mase", margin=0.0)
    assert d.promote and d.challenger == "gru"
    assert any(r.startswith("rnn is not eligible") for r in d.reasons)


def test_undefined_metric_is_explained_not_called_nan_forecasts():
    board = _board({"gru": (0.5, True), "seasonal_naive": (1.0, True)}).with_columns(
        pl.when(pl.col("model") == "gru").then(None).otherwise(pl.col("mase")).alias("mase"),
        pl.when(pl.col("model") == "gru").then(False).otherwise(pl.col("finite")).alias("finite"),
    )
    d = select(board, metric="mase", margin=0.0)
    assert d.promote is False
    assert "gru is not eligible: its mase is undefined (None), e.g. MASE on constant history" in d.reasons


def test_decision_is_data():
    d = select(_board({"lstm": (0.8, True), "seasonal_naive": (1.0, True)}), metric="mase", margin=0.1)
    dd = d.to_dict()
    assert json.loads(json.dumps(dd))["challenger"] == "lstm"
    assert dd["challenger_score"] == 0.8 and dd["baseline_score"] == 1.0 and dd["margin"] == 0.1
    md = d.to_markdown()
    assert "promote `lstm`" in md and "| baseline | seasonal_naive | 1 |" in md
    assert all(f"- {r}" in md for r in d.reasons)


def test_leaderboard_and_selection_from_real_backtests():
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
    d = select(board, metric="mae", margin=0.0)
    assert d.challenger == "lstm" and d.promote is False  # cannot beat an exact seasonal naive
    wb = window_board(results)
    assert wb.height == 8 and set(wb["window"].to_list()) == {0, 1}


def test_leaderboard_rejects_duplicate_names_and_unknown_metric():
    td = build_td({"a": list(range(10))}, horizon=2)
    r = backtest(td, naive_fit, name="naive", n_windows=1)
    with pytest.raises(ValueError, match="duplicate"):
        leaderboard([r, r], "mae")
    with pytest.raises(ValueError, match="unknown metric"):
        leaderboard([r], "r2")
