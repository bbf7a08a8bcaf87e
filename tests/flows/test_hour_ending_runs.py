"""Hour-ending data end to end: `flowcast run --time-label end` on a tiny hourly export (Europe/Berlin wall times,
each value labelled by the hour it ends at), then `flowcast forecasts`: the forecasts keep ds = the hour's start and
carry the end label as ds_end, the next label after the data's last one; the same dataset run again with start
labels is refused."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
FIRST_START = datetime(2024, 3, 20)  # UTC; 14 days of hours, two meters
AS_OF = "2024-03-30T12:00:00+00:00"  # 13:00 CET: the last hour over is 11:00-12:00 UTC, labelled 13:00 CET


def _write(path) -> None:
    lines = ["time,meter,kwh"]
    for m, base in (("a", 100.0), ("b", 50.0)):
        for i in range(14 * 24):
            end = (FIRST_START + (i + 1) * HOUR).replace(tzinfo=UTC).astimezone(BERLIN)
            lines.append(f"{end:%Y-%m-%d %H:%M},{m},{_value(base, i)}")
    path.write_text("\n".join(lines) + "\n")


def _value(base: float, i: int) -> float:
    """The value of the hour that starts i hours after FIRST_START."""
    return base + 10 * ((i % 24) in range(8, 20)) + i % 3 + (i % 7) / 2


def test_published_forecasts_of_hour_ending_data_carry_their_end_labels(tmp_path):
    csv = tmp_path / "meters.csv"
    _write(csv)
    home = tmp_path / "home"
    opts = ["--data", str(csv), "--id-col", "meter", "--time-col", "time", "--target-col", "kwh", "--freq", "1h",
            "--tz", "Europe/Berlin", "--horizon", "3", "--models", "none", "--home", str(home)]
    runner = CliRunner()
    res = runner.invoke(app, ["run", *opts, "--time-label", "end", "--as-of", AS_OF, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # the hour 11:00-12:00 UTC, labelled 13:00 CET in the file; the one labelled 14:00 CET was not over at as_of
    # (read as the hour starting at its label, it was: a backfill at 12:00 UTC saw the value of 12:00-13:00)
    assert out["latest_ds"] == "2024-03-30T11:00:00"
    # ... and its label as the file writes it (13:00 CET): latest_ds is the interval's start, as every ds
    assert out["latest_ds_end"] == "2024-03-30T12:00:00"

    res = runner.invoke(app, ["forecasts", "--dataset", "meters", "--home", str(home), "--format", "csv"])
    assert res.exit_code == 0, res.output
    got = pl.read_csv(io.StringIO(res.stdout), try_parse_dates=True).filter(pl.col("unique_id") == "a").sort("step")
    assert got.columns[:6] == ["dataset", "as_of", "unique_id", "ds", "ds_end", "step"]
    # ds: the forecast hours' starts (UTC), after the last observed one; ds_end: the labels the file would give them
    assert got["ds"].to_list() == [datetime(2024, 3, 30, 12), datetime(2024, 3, 30, 13), datetime(2024, 3, 30, 14)]
    assert got["ds_end"].to_list() == [datetime(2024, 3, 30, 13), datetime(2024, 3, 30, 14), datetime(2024, 3, 30, 15)]
    walls = [t.replace(tzinfo=UTC).astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") for t in got["ds_end"].to_list()]
    labels = [line.split(",")[0] for line in csv.read_text().splitlines()[1:] if line.split(",")[1] == "a"]
    i = labels.index("2024-03-30 13:00")  # the last label the run saw
    assert walls == labels[i + 1:i + 4]  # the next three labels of the file, as it writes them
    table = runner.invoke(app, ["forecasts", "--dataset", "meters", "--home", str(home)], terminal_width=200)
    assert "ds_end (UTC)" in table.stdout and "2024-03-30 13:00" in table.stdout

    # the next day's run, read with the same setting, scores them against the hours they forecast: step 1 is the
    # hour from 12:00 UTC, labelled 14:00 CET in the file (not the one labelled 13:00, its start's label)
    everyone = pl.read_csv(io.StringIO(res.stdout), try_parse_dates=True)
    res = runner.invoke(app, ["run", *opts, "--time-label", "end", "--as-of", "2024-03-31T12:00:00+00:00", "--json"])
    assert res.exit_code == 0, res.output
    realized = EmbeddedStore(home / "warehouse").read_realized("meters", datetime(2024, 3, 30, 12))
    step1 = realized.filter(pl.col("step") == 1)
    assert step1.height == 1 and step1["n"][0] == 2
    actual = {m: _value(base, 10 * 24 + 12) for m, base in (("a", 100.0), ("b", 50.0))}
    errors = [abs(r["y_hat"] - actual[r["unique_id"]]) for r in everyone.filter(pl.col("step") == 1).iter_rows(named=True)]
    assert step1["mae"][0] == pytest.approx(sum(errors) / 2)

    # the same dataset read as start labels next: refused, not mixed with the end-labelled publish
    res = runner.invoke(app, ["run", *opts, "--as-of", "2024-03-31T12:00:00+00:00", "--json"])
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert "time_label = 'end'" in error and "time_label = 'start'" in error and "meters" in error
