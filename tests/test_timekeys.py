"""flowcast.timekeys: one instant for as_of, wherever it enters (CLI, flow parameters, schedules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from flowcast.distinct import per_distinct
from flowcast.timekeys import (
    as_instant,
    as_of_on_ds,
    local_wall,
    storage_naive,
    utc_text,
    utc_text_expr,
    wall_instant,
    wall_time,
)

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


@pytest.mark.parametrize(("tz", "start"), [
    (None, datetime(2021, 6, 30, tzinfo=UTC)),
    ("America/New_York", datetime(2021, 6, 30, 4, tzinfo=UTC)),  # EDT, UTC-4
    ("Asia/Tokyo", datetime(2021, 6, 29, 15, tzinfo=UTC)),
])
def test_a_date_alone_is_the_midnight_that_day_starts_at_in_the_sources_zone(tz, start):
    """Regression: a date alone was midnight UTC whatever the source's zone: --as-of 2021-06-30 on a daily
    America/New_York source was 29 June 20:00 there, and the run's data ended on 29 June."""
    assert as_instant("2021-06-30", tz) == as_instant(date(2021, 6, 30), tz) == start
    assert as_of_on_ds(as_instant("2021-06-30", tz), freq="1d", tz=tz) == datetime(2021, 6, 30)  # the row of 30 June
    # a timestamp without an offset still means UTC, zone or not
    assert as_instant("2021-06-30T00:00", tz) == datetime(2021, 6, 30, tzinfo=UTC)


def test_a_day_that_daylight_saving_starts_or_ends_at_midnight_begins_at_its_first_instant():
    # Berlin 28 March 2021 (02:00 -> 03:00): midnight is CET; Havana 13 March 2022 and 6 November 2022: the clocks
    # jump at midnight (00:00 -> 01:00; 01:00 -> 00:00, midnight twice: the first)
    assert as_instant("2021-03-28", "Europe/Berlin") == datetime(2021, 3, 27, 23, tzinfo=UTC)
    havana = ZoneInfo("America/Havana")
    spring = as_instant("2022-03-13", "America/Havana")
    assert spring.astimezone(havana).date() == date(2022, 3, 13)
    assert (spring - timedelta(microseconds=1)).astimezone(havana).date() == date(2022, 3, 12)
    autumn = as_instant("2022-11-06", "America/Havana")
    assert autumn.astimezone(havana).date() == date(2022, 11, 6)
    assert (autumn - timedelta(microseconds=1)).astimezone(havana).date() == date(2022, 11, 5)


def test_the_cli_reads_a_date_alone_on_the_sources_calendar_and_a_flow_parameter_alike():
    from flowcast.cli.common import parse_as_of, parse_run_as_of
    from flowcast.config import load_settings
    from flowcast.errors import ConfigError
    from flowcast.flows.common import resolve_as_of, source_tz

    ny = load_settings(source={"name": "sales", "path": "unused.csv", "id_cols": ["id"], "time_col": "date",
                               "target_col": "val", "freq": "1d", "tz": "America/New_York"})
    key = datetime(2021, 6, 30, 4, tzinfo=UTC)
    assert parse_run_as_of("2021-06-30", ny) == key
    assert resolve_as_of("2021-06-30", source_tz(ny)) == resolve_as_of(date(2021, 6, 30), source_tz(ny)) == key
    assert parse_run_as_of("2021-06-30T09:00", ny) == datetime(2021, 6, 30, 9, tzinfo=UTC)
    assert parse_as_of("2021-06-30") == datetime(2021, 6, 30, tzinfo=UTC)  # not a source's day (gc ages): UTC
    # what run, forecast, tune and backfill hand their flow: the date itself (checked), read there on the same zone
    from flowcast.cli.common import flow_as_of

    assert flow_as_of(" 2021-06-30", ny) == "2021-06-30" and flow_as_of("2021-06-30T09:00", ny) == parse_as_of(
        "2021-06-30T09:00")
    with pytest.raises(ConfigError, match="--start must be an ISO date .* got '2021-06-31'"):
        flow_as_of("2021-06-31", ny, "--start")


def test_a_flow_parameter_keeps_a_date_alone_for_the_source_to_read():
    """Prefect validates flow parameters: typed `datetime`, '2021-06-30' became midnight UTC before the flow could
    read it on the source's calendar (a deployment run with {"as_of": "2021-06-30"})."""
    from flowcast.flows import backfill_flow, forecast_flow, retrain_flow
    from flowcast.timekeys import is_date_only

    for fl, name in ((forecast_flow, "as_of"), (retrain_flow, "as_of"), (backfill_flow, "start")):
        params = {"start": "2021-06-01", "end": "2021-06-30"} if name == "start" else {name: "2021-06-30"}
        got = fl.validate_parameters(params)[name]
        assert is_date_only(got), (fl.name, got)
        got = fl.validate_parameters({**params, name: "2021-06-30T09:00"})[name]
        assert as_instant(got) == datetime(2021, 6, 30, 9, tzinfo=UTC), (fl.name, got)


def test_the_old_key_of_a_date_alone_is_midnight_utc_of_that_local_date():
    """A date alone used to be midnight UTC; now it is the source's local midnight: a run keyed by a
    local midnight names the old key of its date (a home may have published under it), others none."""
    from flowcast.timekeys import old_date_key

    ny = as_instant("2021-06-30", "America/New_York")
    assert old_date_key(ny, "America/New_York") == datetime(2021, 6, 30)
    tokyo = as_instant("2021-06-30", "Asia/Tokyo")  # 29 June 15:00 UTC
    assert old_date_key(tokyo, "Asia/Tokyo") == datetime(2021, 6, 30)
    assert old_date_key(as_instant("2021-06-30"), None) is None  # UTC: one key, as before
    assert old_date_key(as_instant("2021-06-30T09:00"), "America/New_York") is None  # a time: not a date alone


def test_a_publish_under_the_old_key_of_the_same_date_is_named(tmp_path):
    """A home that published a New York source for '2021-06-30' under the old key (midnight UTC) gets a
    second as_of for that date from a run keyed by its local midnight: the run's warning names both."""
    import polars as pl

    from flowcast.config import SourceConfig, load_settings
    from flowcast.flows.common import old_key_published
    from flowcast.store import open_store

    settings = load_settings(home=tmp_path / "home")
    source = SourceConfig(name="sales", path=str(tmp_path / "s.csv"), id_cols=["id"], time_col="date",
                          target_col="val", freq="1d", tz="America/New_York")
    new = as_instant("2021-06-30", source.tz)
    assert old_key_published(settings, source, new) is None  # nothing published
    fc = pl.DataFrame({"unique_id": ["a"], "ds": [datetime(2021, 7, 1)], "step": [1], "y_hat": [1.0]},
                      schema_overrides={"step": pl.Int32})
    open_store(settings).publish(fc, dataset="sales", as_of=datetime(2021, 6, 30), model="naive", model_version=None,
                                 run_id="old", created_at=datetime(2021, 6, 30, 1))
    said = old_key_published(settings, source, new)
    # both instants as every message writes one, the partition by its name (inst43b: 'keyed 2021-06-30T00:00 UTC')
    assert said is not None and "a publish of as_of 2021-06-30 (midnight UTC)" in said, said
    assert "as this run's does: 2021-06-30 04:00 UTC (2021-06-30 00:00 -04:00 America/New_York)." in said, said
    assert "remove the old partition as_of=2021-06-30T00:00:00 (" in said, said
    assert old_key_published(settings, source, as_instant("2021-07-01", source.tz)) is None  # another date


@pytest.mark.parametrize(("zone", "wall", "instant"), [
    # repeated when daylight saving ends: the first time the clock reads it (zoneinfo's fold=0)
    ("America/New_York", datetime(2025, 11, 2, 1, 30), datetime(2025, 11, 2, 5, 30)),
    ("Europe/London", datetime(2025, 10, 26, 1, 30), datetime(2025, 10, 26, 0, 30)),
    # skipped when it starts: the jump past it (02:00 EST is 03:00 EDT; London's 01:00 GMT is 02:00 BST)
    ("America/New_York", datetime(2025, 3, 9, 2, 30), datetime(2025, 3, 9, 7)),
    ("Europe/London", datetime(2025, 3, 30, 1, 0, 0, 500), datetime(2025, 3, 30, 1)),
    # any other: the one instant
    ("America/New_York", datetime(2025, 3, 9, 3, 30), datetime(2025, 3, 9, 7, 30)),
    (None, datetime(2025, 3, 9, 2, 30), datetime(2025, 3, 9, 2, 30)),
])
def test_a_wall_time_is_the_instant_the_clock_first_reads_it(zone, wall, instant):
    assert wall_instant(wall, zone) == instant.replace(tzinfo=UTC)


@pytest.mark.parametrize(("value", "tz", "expected"), [
    # New York kept local mean time (-4:56:02) until 1883: the offset's seconds are written, ISO 8601 extended
    (datetime(1880, 6, 1, 12, tzinfo=UTC), "America/New_York", "1880-06-01 12:00 UTC (1880-06-01 07:03:58 -04:56:02 America/New_York)"),
    (datetime(2026, 12, 3, 4, 40, tzinfo=UTC), "America/New_York", "2026-12-03 04:40 UTC (2026-12-02 23:40 -05:00 America/New_York)"),
    (datetime(2026, 12, 3, 4, 40, tzinfo=UTC), "Asia/Kolkata", "2026-12-03 04:40 UTC (2026-12-03 10:10 +05:30 Asia/Kolkata)"),
    (datetime(2026, 12, 3, 4, 40, tzinfo=UTC), "UTC", "2026-12-03 04:40 UTC"),
    (datetime(2026, 12, 3, 4, 40, tzinfo=UTC), "Europe/London", "2026-12-03 04:40 UTC (2026-12-03 04:40 +00:00 Europe/London)"),
])
def test_utc_text_writes_the_offset_with_colons_and_its_seconds_only_when_it_has_them(value, tz, expected):
    assert utc_text(value, tz) == expected


@pytest.mark.parametrize(("value", "said"), [
    (datetime(2026, 12, 5), "2026-12-05"),  # a midnight UTC: its date alone
    (datetime(2026, 12, 5, 3), "2026-12-05 03:00 UTC"),  # a clock time says its zone
    (datetime(2026, 12, 5, 5, 58, 42, 123456), "2026-12-05 05:58:42 UTC"),  # seconds where not zero, no fraction
    (datetime(2026, 12, 5, 0, 0, 0, 500), "2026-12-05 00:00:00 UTC"),  # not quite midnight: not a date
    (datetime(2026, 12, 5, 10, tzinfo=ZoneInfo("Australia/Melbourne")), "2026-12-04 23:00 UTC"),  # aware: in UTC
    (datetime(2026, 12, 5, 10, tzinfo=timezone(timedelta(hours=10))), "2026-12-05"),  # midnight UTC, written +10
    ("2026-12-05T05:58:42.123456", "2026-12-05 05:58:42 UTC"),  # ISO text without an offset: UTC
    ("2026-12-05T03:00:00+00:00", "2026-12-05 03:00 UTC"),
    ("2026-12-05", "2026-12-05"),
    (date(2026, 12, 5), "2026-12-05"),
    (None, "now"),  # a run without an as_of
])
def test_utc_text_is_the_one_way_an_instant_reads(value, said):
    """inst43: an instant read '2026-12-05 00:00 UTC' (`timekeys.instant_text`), '2026-12-05' (`reporting.utc_text`),
    '2026-12-05T05:58:42' (`registry.seconds_text`) or '2026-12-05 03:00' without a zone (`reporting.as_of_text`),
    by where it was written. One rule now, and what it writes reads back as the instant it names (to the second)."""
    assert utc_text(value) == said
    if value is not None:
        assert as_instant(said) == as_instant(value).replace(microsecond=0)


def test_utc_text_writes_a_midnight_with_its_clock_beside_a_local_time():
    """Beside a wall time of another zone a midnight UTC keeps its clock: '2026-12-05 (2026-12-04 19:00 ...)'
    would read as a date of that zone."""
    assert utc_text(datetime(2026, 12, 5), "America/New_York") == \
        "2026-12-05 00:00 UTC (2026-12-04 19:00 -05:00 America/New_York)"
    assert utc_text(date(2026, 12, 5), "America/New_York") == \
        "2026-12-05 05:00 UTC (2026-12-05 00:00 -05:00 America/New_York)"  # a date: its midnight there


@pytest.mark.parametrize(("value", "zone", "said"), [
    (datetime(2024, 3, 11), True, "2024-03-11 00:00 UTC"),
    (datetime(2024, 3, 11), False, "2024-03-11 00:00"),
    (date(2024, 3, 11), False, "2024-03-11 00:00"),
    (datetime(2024, 3, 11, 0, 15), False, "2024-03-11 00:15"),
    (datetime(2024, 3, 11, 0, 0, 30), False, "2024-03-11 00:00:30"),
])
def test_utc_text_with_its_clock_writes_a_midnight_as_any_other_time(value, zone, said):
    """`clock`: a sub-daily table's midnight read '2024-03-11' among '2024-03-11 00:15' (wordsC45)."""
    assert utc_text(value, zone=zone, clock=True) == said
    assert as_instant(said) == as_instant(value)


@pytest.mark.parametrize(("value", "cell"), [
    (datetime(2026, 12, 5, 3), "2026-12-05 03:00"),
    (datetime(2026, 12, 5, 5, 58, 42), "2026-12-05 05:58:42"),
    (datetime(2026, 12, 5), "2026-12-05"),
])
def test_utc_text_in_a_column_headed_utc_leaves_the_zone_to_the_header(value, cell):
    """A table's `as_of (UTC)` column: 'UTC' in every row of sub-daily as_ofs cut an 80-column table's headers."""
    assert utc_text(value, zone=False) == cell
    assert utc_text(value, "America/New_York", zone=False) == utc_text(value, "America/New_York")  # two zones: both


@pytest.mark.parametrize("value", [
    datetime(2026, 12, 5), datetime(2026, 12, 5, 3), datetime(2026, 12, 5, 5, 58, 42, 123456),
    datetime(2026, 12, 5, 0, 0, 0, 500), datetime(2026, 12, 5, 0, 30), None,
    datetime(2023, 10, 29, 0, 30), datetime(2023, 10, 29, 1, 15), datetime(2024, 3, 10, 7)])  # autumn, spring
@pytest.mark.parametrize("zone", [True, False])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_utc_text_expr_writes_a_column_as_utc_text_writes_each_value(value, zone, tz):
    """Quarantine reasons wrote a sub-daily key '2020-01-01 00:00:00 UTC' (seconds always) by a format of their own,
    and a key of a source with a tz in UTC alone where every other time of it read with its wall time there."""
    got = pl.DataFrame({"t": [value]}, schema={"t": pl.Datetime("us")}).select(
        utc_text_expr(pl.col("t"), tz, zone=zone))
    assert got.item() == (None if value is None else utc_text(value, tz, zone=zone))


@pytest.mark.parametrize("text", ["2026-12-05 03:00 UTC", "2026-12-05T03:00 utc", " 2026-12-05 03:00:00 UTC "])
def test_as_instant_reads_what_utc_text_writes(text):
    assert as_instant(text) == datetime(2026, 12, 5, 3, tzinfo=UTC)


@pytest.mark.parametrize(("value", "read_in", "said"), [
    (datetime(2024, 3, 1), "America/New_York", "2024-03-01 00:00 UTC"),  # '2024-03-01' there: 05:00 UTC
    (datetime(2024, 3, 1), "Europe/London", "2024-03-01"),  # its midnight too in winter
    (datetime(2024, 7, 1), "Europe/London", "2024-07-01 00:00 UTC"),  # 01:00 there in summer
    (datetime(2024, 3, 1), None, "2024-03-01"),
    (datetime(2024, 3, 1, 5), "America/New_York", "2024-03-01 05:00 UTC"),
])
def test_utc_text_read_in_a_zone_is_taken_back_as_the_same_instant(value, read_in, said):
    """inst43: a midnight UTC written as its date alone, given back to `--dataset NAME --as-of` of a zoned source,
    read as that zone's midnight: another instant."""
    assert utc_text(value, read_in=read_in) == said
    assert as_instant(said, read_in) == as_instant(value)


_ACROSS_CHANGES = [datetime(2024, 10, 27, 1), None, datetime(2024, 3, 31, 0, 30), datetime(2024, 10, 27, 0, 30),
                   datetime(2024, 3, 31, 0, 30), datetime(2024, 3, 31, 1), datetime(2024, 10, 27, 1), None,
                   datetime(2024, 1, 5, 12), datetime(2024, 10, 27, 0)]  # unsorted, repeated, nulls: Berlin's changes


@pytest.mark.parametrize("values", [_ACROSS_CHANGES, list(reversed(_ACROSS_CHANGES)), [None, None], [],
                                    [datetime(2024, 10, 27, 1)] * 3])
@pytest.mark.parametrize("distinct", [lambda e: local_wall(e, "Europe/Berlin"),  # the zone's, of a repeated hour too
                                      lambda e: e.dt.replace_time_zone("Europe/Berlin", ambiguous="earliest",
                                                                       non_existent="null")])  # a skipped one null
def test_per_distinct_is_the_elementwise_expression_row_by_row(values, distinct):
    """`per_distinct` converts each distinct value once and gathers it back: each row gets what converting the rows
    one by one gives, a null row null, whatever the values' order."""
    frame = pl.DataFrame({"t": values}, schema={"t": pl.Datetime("us")})
    got = frame.select(per_distinct(pl.col("t"), distinct).alias("t"))
    assert got.equals(frame.select(distinct(pl.col("t")).alias("t")))
