"""One instant for as_of, from the flow parameters down to ingestion (issue 9.1), under the
session's temporary Prefect API, on a tiny hourly source declared in Australia/Melbourne."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from flow_helpers import TINY_OVERRIDES

from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

FIRST_UTC = datetime(2020, 4, 2, 13, 0)  # 2020-04-03T00:00+11:00
N_HOURS = 72  # across the end of daylight saving: 2020-04-05T03:00+11:00 -> 02:00+10:00 (16:00 UTC)
MELBOURNE = ZoneInfo("Australia/Melbourne")


def write_hourly_melbourne(path: Path, n_series: int = 2) -> Path:
    """Hourly rows written in local time with their offset (+11:00, then +10:00), two series."""
    rows = []
    for s in range(n_series):
        for t in range(N_HOURS):
            local = (FIRST_UTC + timedelta(hours=t)).replace(tzinfo=UTC).astimezone(MELBOURNE)
            # daily cycle, trend and a little deterministic noise (not exactly periodic: MASE stays defined)
            y = 50 + 10 * s + 5 * math.sin(2 * math.pi * t / 24) + 0.1 * t + (t * 7 + s) % 5
            rows.append({"meter": f"M{s}", "time": local.isoformat(), "kwh": round(y, 3)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).write_csv(path)
    return path


def hourly_source(path: Path) -> dict:
    return {"name": "meters", "path": str(path), "id_cols": ["meter"], "time_col": "time", "target_col": "kwh",
            "freq": "1h", "tz": "Australia/Melbourne", "horizon": 6, "season_length": 24}


# 2020-04-05T11:00+10:00 == 2020-04-05T01:00Z: hours 0..60 of each series are known at that instant
AS_OF_UTC = datetime(2020, 4, 5, 1, 0, tzinfo=UTC)
KNOWN_PER_SERIES = 61


@pytest.mark.parametrize("as_of", ["2020-04-05T11:00:00+10:00", "2020-04-05T01:00:00"],
                         ids=["with-offset", "naive-means-utc"])
def test_flow_run_keeps_exactly_the_rows_its_instant_allows(tmp_path, as_of):
    """Regression (issue 9.1, 9.2): the flows turned as_of into naive UTC and ingestion read a
    naive as_of as wall time in the source's zone, so a Melbourne source lost the last 10-11 hours
    (a run whose data ended in them kept nothing); and sub-daily ds were local wall times, so the
    hour repeated when daylight saving ended collided and was quarantined. Both spellings of one
    instant keep the same rows, every hour across the change is valid, the run is keyed by that
    instant, and the forecasts are the UTC instants right after the last known hour."""
    from flowcast.flows import retrain_flow

    csv = write_hourly_melbourne(tmp_path / "raw" / "meters.csv")
    home = tmp_path / "home"
    s = retrain_flow(as_of=as_of, source=hourly_source(csv), home=str(home), overrides=TINY_OVERRIDES)
    assert (s["rows_in"], s["rows_valid"], s["rows_quarantined"]) == (2 * KNOWN_PER_SERIES, 2 * KNOWN_PER_SERIES, 0)
    assert s["as_of"] == AS_OF_UTC.isoformat()
    store = EmbeddedStore(home / "warehouse")
    (dataset,) = store.datasets()
    assert store.as_ofs(dataset) == [AS_OF_UTC.replace(tzinfo=None)]  # stores keep naive UTC
    published = store.read(dataset=dataset, as_of=AS_OF_UTC)
    assert published.height == 2 * 6
    last_known = FIRST_UTC + timedelta(hours=KNOWN_PER_SERIES - 1)  # == as_of
    assert sorted(published["ds"].unique().to_list()) == [last_known + timedelta(hours=k) for k in range(1, 7)]


def test_a_scheduled_run_is_keyed_by_its_scheduled_instant_across_daylight_saving(monkeypatch):
    """The forecast deployment's cron read in Australia/Melbourne (06:00 local) is scheduled by
    Prefect's own scheduler code at 19:00 UTC in summer time and 20:00 UTC after the April
    change; a run created for that time takes exactly that instant as its as_of (aware UTC)."""
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.server.schemas.schedules import CronSchedule
    from prefect.states import Scheduled

    from flowcast.flows.common import resolve_as_of
    from flowcast.flows.deploy import build_deployments, schedule_settings

    monkeypatch.setenv("FLOWCAST_TIMEZONE", "Australia/Melbourne")
    s = schedule_settings()
    deployed = {d.name: d for d in build_deployments()}
    assert deployed["forecast"].schedules[0].schedule.timezone == "Australia/Melbourne"
    cron = CronSchedule(cron=s["forecast_cron"], timezone=s["timezone"])
    dates = asyncio.run(cron.get_dates(n=2, start=datetime(2020, 4, 3, tzinfo=UTC)))
    expected = [datetime(2020, 4, 3, 19, tzinfo=UTC), datetime(2020, 4, 4, 20, tzinfo=UTC)]
    assert [d.astimezone(UTC) for d in dates] == expected

    @flow
    def run_key() -> datetime:
        return resolve_as_of(None)

    for when, instant in zip(dates, expected):
        with get_client(sync_client=True) as client:
            fr = client.create_flow_run(run_key, state=Scheduled(scheduled_time=when))
        got = run_flow(run_key, flow_run=fr)
        assert got == instant and got.tzinfo is UTC


def test_a_date_alone_is_a_day_of_the_sources_calendar_for_runs_and_backfills(tmp_path, capsys, caplog):
    """Regression: as_of '2021-06-30' (a deployment's parameter, a backfill's date) was midnight UTC: a daily
    America/New_York source's run cut at 29 June 20:00 there and forecast 30 June, a day it had. Now the run
    includes 30 June and is keyed by its New York midnight (04:00 UTC), and a backfill of that date finds that
    key published (one partition, not a second one at midnight UTC)."""
    from datetime import date

    from flowcast.flows import backfill_flow, retrain_flow

    csv = tmp_path / "raw" / "sales.csv"
    csv.parent.mkdir(parents=True)
    days = [date(2021, 5, 1) + timedelta(days=i) for i in range(70)]
    pl.DataFrame({"store": ["s1"] * 70, "date": [str(d) for d in days],
                  "sales": [10.0 + (i % 7) + 0.1 * i for i in range(70)]}).write_csv(csv)
    source = {"name": "sales", "path": str(csv), "id_cols": ["store"], "time_col": "date", "target_col": "sales",
              "freq": "1d", "tz": "America/New_York", "horizon": 3}
    home = tmp_path / "home"
    s = retrain_flow(as_of="2021-06-30", source=source, home=str(home), models=[], overrides=TINY_OVERRIDES)
    key = datetime(2021, 6, 30, 4, 0)
    assert s["as_of"] == key.replace(tzinfo=UTC).isoformat()
    store = EmbeddedStore(home / "warehouse")
    assert store.as_ofs("sales") == [key]
    published = store.read(dataset="sales", as_of=key)
    assert sorted(published["ds"].unique().to_list()) == [datetime(2021, 7, d) for d in (1, 2, 3)]
    b = backfill_flow(start="2021-06-30", end="2021-06-30", source=source, home=str(home))
    assert [(o["as_of"], o["status"]) for o in b["outcomes"]] == [(key.isoformat(), "skipped")]
    assert store.as_ofs("sales") == [key]
    # nu41: a date's run is named by the UTC instant its day starts at, and says UTC (it said `2021-06-29 04:00`,
    # read as New York's 4 a.m.); the backfill's lines write it as that name does (dates42: `timekeys.utc_text`, one
    # form for every line of a backfill, where these added the wall time in New York and its worker lines did not)
    b = backfill_flow(start="2021-06-29", end="2021-06-29", source=source, home=str(home))
    assert [(o["status"], o["flow_run"]) for o in b["outcomes"]] == [
        ("published", "forecast sales 2021-06-29 04:00 UTC (backfill)")]
    said = " ".join((capsys.readouterr().err + caplog.text).split())
    assert "2021-06-29 04:00 UTC: published 3 rows from" in said and "America/New_York)" not in said, said
    # and reading it back by that date finds it (the file source is declared nowhere: its publish recorded its tz)
    from typer.testing import CliRunner

    from flowcast.cli import app

    r = CliRunner().invoke(app, ["forecasts", "--home", str(home), "--dataset", "sales", "--as-of", "2021-06-30",
                                 "--format", "csv"])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 1 + 3, r.output


def test_a_sub_daily_backfill_without_every_runs_the_slots_of_the_configured_forecast_cron(tmp_path, monkeypatch,
                                                                                             caplog, capsys):
    """ops52: a backfill of hourly data given no step ran one as_of a day, at the start's time of day, whatever the
    forecast schedule (FLOWCAST_FORECAST_CRON) published: every 12 hours here, at 00:00 and 12:00 UTC. Its dates are
    that schedule's slots now (a date alone as the end takes in its day), said in its log and summary; without the
    variable, a day apart as before."""
    from flowcast.flows import backfill_flow, retrain_flow

    csv = tmp_path / "raw" / "meter.csv"
    csv.parent.mkdir(parents=True)
    hours = [datetime(2021, 6, 20) + timedelta(hours=i) for i in range(24 * 12)]
    pl.DataFrame({"meter": ["m1"] * len(hours), "time": [h.isoformat() for h in hours],
                  "kwh": [10.0 + (i % 24) + 0.01 * i for i in range(len(hours))]}).write_csv(csv)
    source = {"name": "meter", "path": str(csv), "id_cols": ["meter"], "time_col": "time", "target_col": "kwh",
              "freq": "1h", "horizon": 3}
    home = str(tmp_path / "home")
    retrain_flow(as_of="2021-06-29T00:00", source=source, home=home, models=[], overrides=TINY_OVERRIDES)
    monkeypatch.setenv("FLOWCAST_FORECAST_CRON", "0 */12 * * *")
    b = backfill_flow(start="2021-06-29", end="2021-06-29", source=source, home=home)
    assert [(o["as_of"], o["status"]) for o in b["outcomes"]] == [
        ("2021-06-29T00:00:00", "skipped"), ("2021-06-29T12:00:00", "published")], b["outcomes"]
    assert b["every"] == "cron 0 */12 * * * (UTC)", b
    said = " ".join((capsys.readouterr().err + caplog.text).split())  # (caplog alone: '' where run first, review52)
    assert "over 2 dates at the slots of the forecast schedule (FLOWCAST_FORECAST_CRON='0 */12 * * *', UTC)" in said
    monkeypatch.delenv("FLOWCAST_FORECAST_CRON")
    b = backfill_flow(start="2021-06-29", end="2021-06-30", source=source, home=home)
    assert [(o["as_of"], o["status"]) for o in b["outcomes"]] == [
        ("2021-06-29T00:00:00", "skipped"), ("2021-06-30T00:00:00", "published")], b["outcomes"]
    assert b["every"] == "1d", b
