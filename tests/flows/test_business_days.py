"""`flowcast run --freq 1b` end to end: weekday-only data (trading volumes, B2B orders) on a grid of
business days, Monday to Friday, under the session's Prefect API."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

TOML = """
[model]
cells = ["gru"]
lookback = 10
hidden_size = 8
num_layers = 1
batch_size = 64
max_steps = 4
launcher = "inline"
accelerator = "cpu"

[evaluation]
n_windows = 1
"""

FIRST_RUN = datetime(2024, 5, 3)  # a Friday
SECOND_RUN = datetime(2024, 5, 18)  # a Saturday: it sees the data up to Friday the 17th


def _weekdays(path: Path, n_series: int = 3) -> Path:
    """Business days from Monday 2024-01-01 to Friday 2024-05-31 with a weekly pattern (Mondays low,
    Fridays high), plus one Saturday row that validation must quarantine."""
    rows = []
    day, t = date(2024, 1, 1), 0
    while day <= date(2024, 5, 31):
        if day.weekday() < 5:
            for s in range(n_series):
                y = 200 + 20 * s + 0.3 * t + 15 * day.weekday() + 5 * math.sin(t / 7 + s) + ((t * 7 + s) % 5)
                rows.append({"ticker": f"T{s}", "date": day.isoformat(), "volume": round(y, 3)})
            t += 1
        day += timedelta(days=1)
    rows.append({"ticker": "T0", "date": "2024-03-16", "volume": 999.0})  # a Saturday
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).write_csv(path)
    return path


def _run(csv: Path, cfg: Path, home: Path, *args: str, command: str = "run") -> dict:
    result = CliRunner().invoke(app, [
        command, "--data", str(csv), "--id-col", "ticker", "--time-col", "date", "--target-col", "volume",
        "--freq", "1b", "--horizon", "7", "--config", str(cfg), "--home", str(home), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_run_on_business_days_publishes_weekdays_and_scores_them(tmp_path):
    csv = _weekdays(tmp_path / "weekdays.csv")
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TOML)
    home = tmp_path / "home"

    first = _run(csv, cfg, home, "--as-of", FIRST_RUN.isoformat())
    # the Saturday row is quarantined (off the grid); the weekends are not gaps: nothing imputed
    assert first["rows_quarantined"] == 1 and first["rows_imputed"] == 0
    assert first["n_series"] == 3 and first["published_rows"] == 3 * 7
    # a backtest of every candidate on the last 7 business days, the seasonal naive one a business week back
    assert {"gru", "naive", "seasonal_naive", "theta"} <= set(first["leaderboard"])
    assert all(math.isfinite(v["mase"]) for v in first["leaderboard"].values() if v.get("mase") is not None)
    store = EmbeddedStore(home / "warehouse")
    published = store.read(dataset="weekdays", as_of=FIRST_RUN)
    ds = published.sort("unique_id", "step")["ds"]
    assert ds.dt.weekday().max() <= 5  # no Saturday or Sunday
    # 7 business days after Friday 2024-05-03: Monday 6th .. Tuesday 14th, for every series
    want = [datetime(2024, 5, d) for d in (6, 7, 8, 9, 10, 13, 14)]
    for uid in ("T0", "T1", "T2"):
        got = published.filter(pl.col("unique_id") == uid).sort("step")
        assert got["ds"].to_list() == want and got["step"].to_list() == list(range(1, 8))
    quarantine = pl.read_parquet(next((home / "quarantine").rglob("*.parquet")))
    assert quarantine["check"].to_list() == ["off_grid"] and "is a Saturday" in quarantine["reason"][0]

    second = _run(csv, cfg, home, "--as-of", SECOND_RUN.isoformat())
    later = store.read(dataset="weekdays", as_of=SECOND_RUN)["ds"]
    assert later.min() == datetime(2024, 5, 20) and later.max() == datetime(2024, 5, 28)  # Monday .. 7 days on
    assert later.dt.weekday().max() <= 5 and second["published_rows"] == 21
    # the first run's forecasts are scored on the actuals since: all 7 steps of the 3 series
    realized = store.read_realized("weekdays", FIRST_RUN)
    assert realized.select("step", "n").sort("step").rows() == [(s, 3) for s in range(1, 8)]
    assert realized["mase"].is_finite().all() and realized["mase_snaive"].is_finite().all()
    # and the run's JSON says so: the first run had nothing to score, the second scored the first's as_of
    assert first["realized"]["recorded"] and first["realized"]["scored_as_ofs"] == []
    assert second["realized"]["recorded"] and second["realized"]["scored_as_ofs"] == [FIRST_RUN.isoformat()]
    assert second["realized"]["rows_written"] == 7

    # a backfill steps by the source's business days: Thursday, Friday, Monday (not the weekend between)
    back = _run(csv, cfg, home, "--start", "2024-05-09", "--end", "2024-05-13", command="backfill")
    assert (back["every"], back["published"], back["failed"]) == ("1b", 3, 0)
    new = set(store.as_ofs("weekdays")) - {FIRST_RUN, SECOND_RUN}
    assert new == {datetime(2024, 5, 9), datetime(2024, 5, 10), datetime(2024, 5, 13)}
    assert store.read(dataset="weekdays", as_of=datetime(2024, 5, 10))["ds"].min() == datetime(2024, 5, 13)
