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
