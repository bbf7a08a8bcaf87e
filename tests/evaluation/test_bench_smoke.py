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


def test_bench_train_throughput_runs(capsys):
    """`make bench` runs train_throughput.py; it read M3 from a helper that had moved out of
    accuracy.py (an ImportError before any line was printed)."""
    import json

    import torch
    import train_throughput

    threads = torch.get_num_threads()  # main() sets the process's torch threads
    try:
        train_throughput.main(["--cells", "rnn", "--modes", "forking", "--steps", "1", "--warmup", "0", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [(x["cell"], x["mode"]) for x in lines] == [("rnn", "forking")] and lines[0]["windows_per_s"] > 0


def test_weekly_retail_data_hold_back_the_target_after_as_of_and_score_a_forecast(tmp_path):
    """bench/weekly_retail.py: the file a run reads has no target after as_of (the promotion planned there), and
    its score of the held-back weeks is 0 for the actuals themselves and grows with an error."""
    from datetime import timedelta

    import polars as pl
    import weekly_retail

    frame = weekly_retail.make_frame(n_series=3, weeks=110, horizon=5, seed=1)
    as_of = weekly_retail.FIRST + timedelta(weeks=109)
    assert frame.height == 3 * 115 and frame["promo"].sum() > 0
    written = pl.read_csv(weekly_retail.write_source(frame, tmp_path / "w.csv", as_of), try_parse_dates=True)
    after = written.filter(pl.col("ds") > as_of)
    assert after.height == 15 and after["y"].null_count() == 15 and after["promo"].null_count() == 0
    assert written.filter(pl.col("ds") <= as_of)["y"].null_count() == 0
    actual = frame.filter(pl.col("ds") > as_of).with_columns(pl.col("ds").cast(pl.Datetime("us")))
    exact = actual.select("unique_id", "ds", y_hat=pl.col("y"), y_hat_lo80=pl.col("y"), y_hat_hi80=pl.col("y"),
                          y_hat_lo95=pl.col("y") - 1, y_hat_hi95=pl.col("y") + 1)
    assert weekly_retail.score(exact, frame, as_of) == {"mase": 0.0, "cov80": 1.0, "cov95": 1.0, "points": 15.0}
    off = exact.with_columns(y_hat=pl.col("y_hat") + 10, y_hat_lo80=pl.col("y_hat") + 5)
    scored = weekly_retail.score(off, frame, as_of)
    assert scored["mase"] > 0 and scored["cov80"] == 0.0 and scored["cov95"] == 1.0


def test_weekly_retail_gaps_leave_out_history_weeks_only_and_pooling_weights_by_points():
    """bench/weekly_retail.py: `gaps` leaves out a share of the history's weeks, never a held-back one, and the
    pooled line weights each run's coverage by its points and averages the candidates' backtest coverage."""
    from datetime import timedelta

    import polars as pl
    import weekly_retail

    whole = weekly_retail.make_frame(n_series=4, weeks=100, horizon=5, seed=2)
    gappy = weekly_retail.make_frame(n_series=4, weeks=100, horizon=5, seed=2, gaps=0.2)
    assert 4 * 105 - gappy.height > 40 and gappy.join(whole, on=["unique_id", "ds"], how="anti").height == 0
    assert gappy.filter(pl.col("ds") > weekly_retail.FIRST + timedelta(weeks=99)).height == 4 * 5
    runs = [{"test": {"cov80": 1.0, "cov95": 1.0, "points": 30.0}, "board": {"theta": {"coverage80": 0.5, "coverage95": 0.9}}},
            {"test": {"cov80": 0.5, "cov95": 0.9, "points": 10.0}, "board": {"theta": {"coverage80": 0.7, "coverage95": None}}}]
    assert weekly_retail.pooled(runs) == {"bench": "weekly_retail", "pooled": 2, "points": 40.0,
                                          "test": {"cov80": 0.875, "cov95": 0.975},
                                          "board": {"theta": {"coverage80": 0.6, "coverage95": None}}}
