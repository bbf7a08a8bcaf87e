"""The retrain flow's run-log lines (flowcast.flows.pipeline), without Prefect."""

from __future__ import annotations

import polars as pl
import pytest

from flowcast.flows.pipeline import _print_board


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.parametrize(("metric", "ranked"), [("mase", "snaive MASE"), ("rmsse", "naive RMSSE"),
                                                ("smape", "sMAPE")])
def test_the_leaderboard_in_the_log_names_its_metrics_as_the_artifacts_do(metric, ranked):
    """Regression: the run log's leaderboard said 'Leaderboard (by mase, ...)' and 'smape=... mase=...' where its
    artifacts say 'ranked by snaive MASE' and 'sMAPE', 'MASE': one name for a metric everywhere."""
    board = pl.DataFrame({"rank": [1, 2], "model": ["damped", "gru"], "kind": ["statistical", "network"],
                          "smape": [10.0, 12.5], "mase": [0.9, 1.1], "rmsse": [0.8, None], "coverage80": [0.8, 0.7],
                          "coverage95": [0.95, 0.9], "msis": [5.0, 6.0]})
    log = _Log()
    _print_board(log, board, metric, "damped")
    head, first, second = log.lines[0].splitlines()
    assert head.startswith(f"Leaderboard (ranked by {ranked}, lower is better;")
    assert "sMAPE=10 MASE=0.9 RMSSE=0.8 coverage80=0.8 coverage95=0.95 MSIS=5" in first and "<- published" in first
    assert "RMSSE=n/a" in second and not any(f" {m}=" in log.lines[0] for m in ("smape", "mase", "rmsse", "msis"))

