"""Benchmark: rolling-origin backtest + metrics + leaderboard on many series; prints ONE JSON line.

usage: python bench/bench_evaluation.py [N_SERIES] [LENGTH] [HORIZON] [N_WINDOWS]
(default 10000 monthly-like series of 120 points, horizon 12, 3 windows). Two test-style
forecasters (naive, seasonal naive) run through `backtest`; times are per backtest.
"""

from __future__ import annotations

import json
import math
import sys
import time

import polars as pl


def _td(n_series: int, length: int, horizon: int, season: int):
    from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers

    ids = pl.DataFrame({"unique_id": [f"s{i:06d}" for i in range(n_series)], "k": list(range(n_series))})
    t = pl.DataFrame({"t": list(range(length))})
    frame = (
        ids.join(t, how="cross")
        .with_columns(
            pl.datetime(2000, 1, 1).dt.offset_by(pl.format("{}d", pl.col("t"))).cast(pl.Datetime("us")).alias("ds"),
            (10 + pl.col("k") % 7 + (2 * math.pi * pl.col("t") / season).sin() * 3 + pl.col("t") * 0.01)
            .alias("y"),
        )
        .select("unique_id", "ds", "y")
    )
    meta = TrainingMeta(freq="1d", horizon=horizon, lookback=24, val_size=0, season_length=season, scaler="none")
    return TrainingData(frame=frame, scalers=fit_scalers(frame, "none", False), meta=meta)


def _naive(td):
    def f(t):
        last = t.frame.group_by("unique_id").agg(pl.col("y").last().alias("y_hat"))
        return t.future_frame().join(last, on="unique_id").select("unique_id", "ds", "step", "y_hat")

    return f


def _snaive(td):
    m = td.meta.season_length

    def f(t):
        tail = t.frame.group_by("unique_id").agg(pl.col("y").tail(m).alias("tail"))
        return t.future_frame().join(tail, on="unique_id").select(
            "unique_id", "ds", "step", pl.col("tail").list.get((pl.col("step") - 1) % m).alias("y_hat"))

    return f


def run(n_series: int = 10000, length: int = 120, horizon: int = 12, n_windows: int = 3) -> dict:
    from flowcast.evaluation.backtest import backtest
    from flowcast.evaluation.decision import decide
    from flowcast.evaluation.selection import leaderboard

    td = _td(n_series, length, horizon, season=7)
    times, results = {}, []
    for name, fit in (("naive", _naive), ("seasonal_naive", _snaive)):
        t0 = time.perf_counter()
        results.append(backtest(td, fit, name=name, n_windows=n_windows))
        times[name] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    board = leaderboard(results, "mase")
    decision = decide(board, metric="mase", margin=0.0, baselines=["seasonal_naive"])
    t_board = time.perf_counter() - t0
    return {
        "bench": "evaluation",
        "n_series": n_series,
        "length": length,
        "horizon": horizon,
        "n_windows": n_windows,
        "forecast_rows": results[0].forecasts.height,
        "backtest_naive_s": times["naive"],
        "backtest_seasonal_naive_s": times["seasonal_naive"],
        "leaderboard_select_s": round(t_board, 4),
        "mase_naive": round(board.filter(pl.col("model") == "naive")["mase"][0], 4),
        "mase_seasonal_naive": round(board.filter(pl.col("model") == "seasonal_naive")["mase"][0], 4),
        "champion": decision.champion,
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:5]]
    print(json.dumps(run(*args)))
