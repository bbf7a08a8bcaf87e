"""`flowcast run --data FILE.feather` end to end: an Arrow/Feather export whose time column carries its zone."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from flowcast.cli import app

pytestmark = pytest.mark.usefixtures("prefect_api")

TOML = """
[model]
cells = ["gru"]
lookback = 7
hidden_size = 8
num_layers = 1
batch_size = 64
max_steps = 2
launcher = "inline"
accelerator = "cpu"
[evaluation]
n_windows = 1
"""


def test_run_reads_a_zoned_feather_file_and_refuses_a_disagreeing_tz(tmp_path):
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
    ts = pl.Series([datetime(d.year, d.month, d.day) for d in days]).dt.replace_time_zone("Europe/Berlin")
    data = tmp_path / "sales.feather"
    pl.DataFrame({"date": ts, "id": ["a"] * 60, "val": [10.0 + (i % 7) for i in range(60)]}).write_ipc(data)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TOML)
    opts = ["--data", str(data), "--id-col", "id", "--time-col", "date", "--target-col", "val", "--freq", "1d",
            "--horizon", "3", "--config", str(cfg), "--home", str(tmp_path / "home"), "--as-of", "2024-02-29"]
    bad = CliRunner().invoke(app, ["run", *opts, "--tz", "America/New_York", "--json"])
    assert bad.exit_code != 0 and "America/New_York" in bad.output and "Europe/Berlin" in bad.output, bad.output
    result = CliRunner().invoke(app, ["run", *opts, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["published_rows"] == 3 and summary["rows_quarantined"] == 0
