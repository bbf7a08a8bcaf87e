"""`flowcast run --data FILE.feather` end to end: an Arrow/Feather export whose time column carries its zone."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

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


def test_a_run_of_a_standard_time_file_warns_with_the_zone_that_reads_it(tmp_path):
    """Regression (new-user trial): half hours written in standard time all year (as vic_elec), read with --tz
    Australia/Melbourne: the skipped hour's rows were quarantined with a reason naming Etc/GMT-10, but the run's
    one-line warning said only 'time_nonexistent=2'. The warning names the zone once; with it every row is valid."""
    aest = timezone(timedelta(hours=10))
    start = datetime(2020, 10, 1, 14, 0)  # 2020-10-02T00:00+10:00; Melbourne skips 02:00-02:59 on 4 October
    rows = [f"{(start + i * timedelta(minutes=30)).replace(tzinfo=UTC).astimezone(aest):%Y-%m-%dT%H:%M},O,"
            f"{100 + i % 48 + (i * 7) % 5}" for i in range(6 * 48)]
    data = tmp_path / "demand.csv"
    data.write_text("time,meter,kwh\n" + "\n".join(rows) + "\n")
    opts = ["--data", str(data), "--id-col", "meter", "--time-col", "time", "--target-col", "kwh", "--freq", "30m",
            "--horizon", "4", "--models", "none", "--home", str(tmp_path / "home"), "--as-of", "2020-10-08", "--json"]
    res = CliRunner().invoke(app, ["run", *opts, "--tz", "Australia/Melbourne"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["rows_quarantined"] == 2
    said = " ".join(res.stderr.split())  # log lines fold at the terminal's width
    warning = said.split("rows failed validation and were quarantined", 1)[1]
    assert ("time_nonexistent=2; 2 local times that Australia/Melbourne skips (daylight saving starts): if the file "
            "is in standard time all year (it holds the skipped hour), read it with --tz Etc/GMT-10") in warning
    assert said.count("read it with --tz Etc/GMT-10") == 1  # once, not per row
    res = CliRunner().invoke(app, ["run", *opts, "--tz", "Etc/GMT-10"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["rows_quarantined"] == 0
