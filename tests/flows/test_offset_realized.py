"""Daily data written with a UTC offset end to end: two `flowcast run`s, the second scoring the first's forecasts
(realized accuracy) by the instant each day was observed, as ingest cut the runs' data."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_later_run_scores_the_new_york_day_a_run_before_05_00_utc_had_not_seen(tmp_path):
    """Regression: days written -05:00 are seen from 05:00 UTC; a run at 04:00 UTC on 10 March had not seen 10 March
    and forecast it as step 1, but realized accuracy read the actuals after that as_of's wall time (10 March 04:00):
    10 March was never scored (steps 2 and 3 only) and was in the history of that as_of's MASE scale."""
    data = tmp_path / "sales.csv"
    lines = ["date,id,val"] + [f"{datetime(2024, 2, 1) + timedelta(days=i):%Y-%m-%dT%H:%M:%S}-05:00,a,{10.0 + i % 7 + i / 2}"
                               for i in range(45)]
    data.write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    opts = ["--data", str(data), "--id-col", "id", "--time-col", "date", "--target-col", "val", "--freq", "1d",
            "--horizon", "3", "--models", "none", "--home", str(home), "--json"]
    runner = CliRunner()
    first = runner.invoke(app, ["run", *opts, "--as-of", "2024-03-10T04:00:00+00:00"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1])["latest_ds"] == "2024-03-09T00:00:00"
    later = runner.invoke(app, ["run", *opts, "--as-of", "2024-03-12T06:00:00+00:00"])  # 10, 11, 12 March seen
    assert later.exit_code == 0, later.output
    realized = EmbeddedStore(home / "warehouse").read_realized("sales", datetime(2024, 3, 10, 4))
    assert realized.sort("step").select("step", "n").rows() == [(1, 1), (2, 1), (3, 1)]
    assert realized["mase"].is_not_null().all()
