"""flowcast.timekeys: one instant for as_of, wherever it enters (CLI, flow parameters, schedules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from flowcast.timekeys import as_instant, as_of_on_ds, storage_naive, wall_time

INSTANT = datetime(2019, 12, 31, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("value", [
    "2019-12-31T23:30", "2019-12-31 23:30:00", "2019-12-31T23:30Z", "2019-12-31T23:30:00+00:00",
    "2020-01-01T10:30+11:00", "2019-12-31T18:30-05:00", datetime(2019, 12, 31, 23, 30),
    datetime(2020, 1, 1, 10, 30, tzinfo=ZoneInfo("Australia/Melbourne")),
    datetime(2020, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
])
def test_every_spelling_of_one_instant_is_that_instant(value):
    got = as_instant(value)
    assert got == INSTANT and got.tzinfo is UTC and type(got) is datetime
    assert storage_naive(value) == datetime(2019, 12, 31, 23, 30) and storage_naive(value).tzinfo is None


def test_a_date_is_its_utc_midnight_and_none_stays_none():
    assert as_instant(date(2019, 6, 1)) == datetime(2019, 6, 1, tzinfo=UTC)
    assert as_instant("2019-06-01") == datetime(2019, 6, 1, tzinfo=UTC)
    assert as_instant(None) is None and storage_naive(None) is None


def test_text_that_is_not_a_time_names_the_value():
    with pytest.raises(ValueError, match=r"'June 1st' is not an ISO date or timestamp .*without an offset it means UTC"):
        as_instant("June 1st")


def test_the_instant_on_a_sources_axis():
    # the source's zone (Melbourne: UTC+11 in January), UTC when none is declared
    assert wall_time(INSTANT, "Australia/Melbourne") == datetime(2020, 1, 1, 10, 30)
    assert as_of_on_ds(INSTANT, freq="1d", tz="Australia/Melbourne") == datetime(2020, 1, 1, 10, 30)
    assert as_of_on_ds(INSTANT, freq="1d", tz=None) == datetime(2019, 12, 31, 23, 30)


def test_cli_as_of_is_the_instant_and_help_says_naive_means_utc():
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.cli.common import parse_as_of
    from flowcast.errors import ConfigError

    assert parse_as_of("2020-01-01T10:30+11:00") == INSTANT
    assert parse_as_of("2019-12-31T23:30") == INSTANT  # no offset: UTC, not the machine's zone
    with pytest.raises(ConfigError, match=r"--start must be an ISO date .* got 'yesterday'"):
        parse_as_of("yesterday", "--start")
    for command in ("run", "forecast", "validate", "backfill"):
        text = " ".join(CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output.split())
        assert "it means UTC" in text, (command, text)


def test_flow_parameter_descriptions_say_naive_means_utc():
    """The Prefect UI shows these descriptions beside the run form's as_of field."""
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import backfill_flow, forecast_flow, retrain_flow

    for fl, params in ((retrain_flow, ["as_of"]), (forecast_flow, ["as_of"]), (backfill_flow, ["start", "end"])):
        props = parameter_schema(fl.fn).model_dump()["properties"]
        for p in params:
            assert "it means UTC" in " ".join(props[p].get("description", "").split()), (fl.name, p)


def test_schedules_in_an_unknown_zone_are_refused(monkeypatch):
    from flowcast.errors import ConfigError
    from flowcast.flows.deploy import schedule_settings

    monkeypatch.setenv("FLOWCAST_TIMEZONE", "Australia/Melborne")
    with pytest.raises(ConfigError, match=r"FLOWCAST_TIMEZONE='Australia/Melborne' is not a time zone"):
        schedule_settings()
    monkeypatch.setenv("FLOWCAST_TIMEZONE", "Australia/Melbourne")
    assert schedule_settings()["timezone"] == "Australia/Melbourne"


def test_a_cron_that_does_not_parse_names_its_variable(monkeypatch):
    """Regression: FLOWCAST_RETRAIN_CRON='every monday' started `flowcast serve`'s Prefect server, then failed
    with "ValueError: Invalid cron string", naming neither the variable nor what a cron looks like."""
    from flowcast.errors import ConfigError
    from flowcast.flows.deploy import schedule_settings

    monkeypatch.setenv("FLOWCAST_RETRAIN_CRON", "every monday")
    with pytest.raises(ConfigError, match=r"FLOWCAST_RETRAIN_CRON='every monday' is not a cron expression: five "
                       r"fields, minute hour day-of-month month day-of-week, such as '0 3 \* \* 1'"):
        schedule_settings()
    monkeypatch.setenv("FLOWCAST_RETRAIN_CRON", "30 2 * * 0")
    assert schedule_settings()["retrain_cron"] == "30 2 * * 0"
