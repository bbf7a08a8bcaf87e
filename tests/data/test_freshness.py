"""Data freshness: the gap from the latest observation to as_of, and series that ended early."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from flowcast.data.freshness import (
    check_series_lost,
    check_staleness,
    ended_series,
    ended_set_aside,
    freshness,
    freshness_lines,
    latest_end,
    lost_series,
    periods_between,
    when_text,
)
from flowcast.errors import DataValidationError
from flowcast.mdtext import md_text


@pytest.mark.parametrize(("start", "end", "freq", "n"), [
    (datetime(2019, 9, 1), datetime(2026, 12, 3, 3, 51), "1mo", 87),
    (datetime(2026, 11, 1), datetime(2026, 12, 3), "1mo", 1),
    (datetime(2026, 12, 1), datetime(2026, 12, 3), "1mo", 0),
    (datetime(2024, 5, 3), datetime(2024, 5, 6, 3), "1b", 1),  # Friday's value, read early on Monday
    (datetime(2024, 5, 3), datetime(2024, 5, 7, 3), "1b", 2),
    # as_of over the weekend: Friday's period holds Saturday and Sunday, so Friday's value is not behind
    (datetime(2024, 5, 3), datetime(2024, 5, 4, 10), "1b", 0),
    (datetime(2024, 5, 3), datetime(2024, 5, 5, 23), "1b", 0),
    (datetime(2024, 5, 2), datetime(2024, 5, 5), "1b", 1),
    (datetime(2025, 10, 1), datetime(2026, 12, 3), "1q", 4),
    (datetime(2020, 1, 1), datetime(2026, 12, 3), "1y", 6),
    (datetime(2026, 12, 1), datetime(2026, 12, 3), "1d", 2),
    (datetime(2026, 11, 2), datetime(2026, 12, 3), "1w", 4),
    (datetime(2026, 12, 3, 0, 0), datetime(2026, 12, 3, 3, 51), "1h", 3),
    (datetime(2026, 12, 3, 0, 0), datetime(2026, 12, 3, 3, 51), "30m", 7),
    (datetime(2026, 12, 3), datetime(2026, 12, 1), "1d", -2),
])
def test_periods_between(start, end, freq, n):
    assert periods_between(start, end, freq) == n


def _lengths(last: dict[str, datetime]) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": list(last), "last_ds": list(last.values())})


def test_a_source_that_stopped_is_said_and_can_fail_the_run():
    f = freshness(_lengths({"a": datetime(2019, 9, 1), "b": datetime(2019, 8, 1)}), datetime(2026, 12, 3), "1mo", 12)
    assert f.latest_ds == datetime(2019, 9, 1) and f.periods_behind == 87 and f.all_before_as_of
    assert f.n_ended == 0
    lines = freshness_lines(f, datetime(2026, 12, 3))
    assert len(lines) == 1 and "2019-09-01" in lines[0] and "87 periods" in lines[0] and "max_staleness" in lines[0]
    check_staleness(f, None)  # unset: a warning only
    check_staleness(f, 87)
    with pytest.raises(DataValidationError, match=r"2019-09-01.*87 periods.*max_staleness = 12.*MAX_STALENESS=87"):
        check_staleness(f, 12)
    # newuser50a: half-hourly data 12 years old was said to be '209227 periods (30m) before as_of' beside the
    # data-quality report's 209,228: counts with thousands separators, as the run's other lines write them (the
    # setting that allows it stays a number to paste)
    old = freshness(_lengths({"a": datetime(2014, 12, 31, 12, 30)}), datetime(2026, 12, 7, 10, 20), "30m", 4)
    assert "is 209,227 periods (30m) before as_of" in freshness_lines(old, datetime(2026, 12, 7, 10, 20))[0]
    with pytest.raises(DataValidationError, match=r"is 209,227 periods \(30m\).*MAX_STALENESS=209227$"):
        check_staleness(old, 12)


def test_a_usual_publication_lag_is_not_stale():
    f = freshness(_lengths({"a": datetime(2026, 10, 1), "b": datetime(2026, 11, 1)}), datetime(2026, 12, 3), "1mo", 12)
    assert f.periods_behind == 1 and not f.all_before_as_of
    assert freshness_lines(f, datetime(2026, 12, 3)) == []
    check_staleness(f, 1)


def test_series_that_ended_a_horizon_before_the_others_are_named():
    last = {"live": datetime(2026, 11, 1), "closed": datetime(2024, 1, 1), "edge": datetime(2025, 11, 1),
            "older": datetime(2020, 1, 1)}
    f = freshness(_lengths(last), datetime(2026, 12, 3), "1mo", 12)
    assert f.n_ended == 2 and f.ended == ["older", "closed"]  # the longest ended first; 12 periods is not more
    line = freshness_lines(f, datetime(2026, 12, 3))[0]
    assert line.startswith("2 series ended") and "'older', 'closed'" in line
    assert "forecast from its own last observation" in line and 'ended_series = "exclude"' in line
    assert f.to_dict() == {"latest_ds": "2026-11-01T00:00:00", "periods_behind": 1, "stale": False, "series_ended": 2,
                           "series_ended_excluded": 0, "ended": ["older", "closed"],
                           "ended_last": ["2020-01-01T00:00:00", "2024-01-01T00:00:00"]}


def test_the_ended_series_line_quotes_an_id_holding_a_comma():
    """Regression (newuser43): '2 series ended ...: north, east, closed' named three series."""
    last = {"live": datetime(2026, 11, 1), "north, east": datetime(2020, 1, 1), "closed": datetime(2021, 1, 1)}
    [line] = freshness_lines(freshness(_lengths(last), datetime(2026, 12, 3), "1mo", 12), datetime(2026, 12, 3))
    assert "(2026-11-01): 'north, east', 'closed'; each is forecast" in line, line


@pytest.mark.parametrize(("n_ended", "named"), [
    (1, ("(2026-11-01): 'gone0'; it is forecast from its own last observation, its forecasts dated before the others' "
        "([validation] ended_series = \"exclude\" sets it aside)")),  # 'each is ... sets them aside' of one (polish25)
    (5, ("(2026-11-01): 'gone0', 'gone1', 'gone2', 'gone3', 'gone4'; each is forecast from its own last observation, its "
        "forecasts dated before the others' ([validation] ended_series = \"exclude\" sets them aside)")),
    (7, "(2026-11-01), e.g. 'gone0', 'gone1', 'gone2', 'gone3', 'gone4': each is forecast"),  # a sample of 5
])
def test_the_ended_series_line_says_e_g_before_a_sample_only(n_ended, named):
    """Regression (ui21): the one ended series of a run was said '1 series ended ..., e.g. Dresden', as if there
    were more."""
    last = {"live": datetime(2026, 11, 1)} | {f"gone{i}": datetime(2020, 1, 1) for i in range(n_ended)}
    f = freshness(_lengths(last), datetime(2026, 12, 3), "1mo", 12)
    [line] = freshness_lines(f, datetime(2026, 12, 3))
    assert line.startswith(f"{n_ended} series ended more than a horizon") and named in line


@pytest.mark.parametrize(("last", "horizon", "ended"), [
    ({"live": datetime(2026, 11, 1), "closed": datetime(2024, 1, 1)}, 12, ["closed"]),
    ({"live": datetime(2026, 11, 1), "edge": datetime(2025, 11, 1)}, 12, []),  # exactly a horizon: not ended
    ({"live": datetime(2026, 11, 1), "edge": datetime(2025, 10, 1)}, 12, ["edge"]),  # one more: ended
    ({"a": datetime(2019, 9, 1), "b": datetime(2019, 9, 1)}, 1, []),  # all stopped together: stale, none ended
    ({"live": datetime(2026, 11, 1), "none": None}, 1, []),  # no observation: never ended (excluded for that)
])
def test_ended_series_is_the_one_rule(last, horizon, ended):
    frame = pl.DataFrame({"unique_id": list(last), "last_ds": list(last.values())},
                         schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})
    assert ended_series(frame, "1mo", horizon)["unique_id"].to_list() == ended


def test_ended_series_set_aside_are_counted_ended_and_excluded():
    """validation.ended_series = "exclude": preprocessing set `closed` and `older` aside, so the lengths of what is
    forecast do not hold them; the run still counts them ended (its JSON, the report) and says they are excluded."""
    from flowcast.data.preprocess import PreprocessSummary
    from flowcast.data.validate import DataQualityReport

    summary = PreprocessSummary(ended=[{"unique_id": "older", "last_ds": "2020-01-01T00:00:00"},
                                       {"unique_id": "closed", "last_ds": "2024-01-01T00:00:00"}])
    aside = ended_set_aside(summary)
    assert aside is not None and aside["unique_id"].to_list() == ["older", "closed"]
    f = freshness(_lengths({"live": datetime(2026, 11, 1)}), datetime(2026, 12, 3), "1mo", 12, aside)
    assert (f.n_ended, f.n_excluded, f.ended, f.periods_behind) == (2, 2, ["older", "closed"], 1)
    assert f.to_dict()["series_ended_excluded"] == 2
    [line] = freshness_lines(f, datetime(2026, 12, 3))
    assert line.startswith("2 series ended") and "all set aside" in line and "not backtested, trained on or published" in line
    assert "forecast from" not in line
    report = DataQualityReport(source="s", as_of="2026-12-03")
    report.freshness = f.to_dict()
    assert ("| series ended more than a horizon before the latest observation | 2 (older, closed); 2 set aside, "
            "not forecast (ended_series = exclude) |") in report.to_markdown()
    assert ended_set_aside(PreprocessSummary()) is None  # none set aside: freshness as before


@pytest.mark.parametrize(("gone", "said"), [
    (["gone"], "; 1 forecast from its own last observation"),
    (["gone", "went"], "; 2 forecast from their own last observation"),
])
def test_the_ended_series_forecast_beside_those_set_aside_are_said_in_number(gone, said):
    """polish25: '1 forecast from their own last observation' of the one ended series not set aside."""
    aside = pl.DataFrame({"unique_id": ["closed"], "last_ds": [datetime(2024, 1, 1)]},
                         schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})
    last = {"live": datetime(2026, 11, 1)} | dict.fromkeys(gone, datetime(2020, 1, 1))
    f = freshness(_lengths(last), datetime(2026, 12, 3), "1mo", 12, aside)
    assert (f.n_ended, f.n_excluded) == (len(gone) + 1, 1)
    [line] = freshness_lines(f, datetime(2026, 12, 3))
    assert line.endswith(said), line


def test_no_as_of_or_no_data_measures_nothing():
    assert freshness(_lengths({"a": datetime(2020, 1, 1)}), None, "1mo", 12).periods_behind is None
    empty = pl.DataFrame(schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})
    f = freshness(empty, datetime(2026, 12, 3), "1mo", 12)
    assert f.latest_ds is None and f.periods_behind is None and freshness_lines(f, datetime(2026, 12, 3)) == []


def test_the_data_quality_report_shows_the_gap_and_the_ended_series():
    from flowcast.data.validate import DataQualityReport

    report = DataQualityReport(source="s", as_of="2026-12-03")
    report.freshness = freshness(_lengths({"live": datetime(2019, 9, 1), "closed": datetime(2010, 1, 1)}),
                                 datetime(2026, 12, 3), "1mo", 12).to_dict()
    md = report.to_markdown()
    assert "| periods from the latest observation to as_of | 87 |" in md
    assert "| series ended more than a horizon before the latest observation | 1 (closed) |" in md
    assert "periods from the latest" not in DataQualityReport(source="s", as_of="2026-12-03").to_markdown()


def test_series_of_the_last_publish_missing_from_the_data_are_named_and_can_fail_the_run():
    prev = datetime(2026, 11, 1)
    c = lost_series(["a", "b", "c", "d"], {"a", "c", "new"}, prev)
    assert c.lost == ["b", "d"] and c.previous_series == 4 and c.share == 0.5
    line = c.line()
    assert line is not None and line.startswith("2 of the 4 series of the last publish (as_of 2026-11-01)")
    assert "at all: b, d; they get no forecast" in line and "max_series_lost" in line
    check_series_lost(c, None)  # unset: a warning only
    check_series_lost(c, 0.5)
    with pytest.raises(DataValidationError, match=r"2 of the 4 series .*50.0%.*max_series_lost = 0.1: b, d\..*"
                                                  r"MAX_SERIES_LOST=0.50"):
        check_series_lost(c, 0.1)
    # newuser50a: one series said as one ('1 of the 9 series ... are not in this run's data at all, e.g. store 5: they
    # get no forecast'), ids quoted as every list of series quotes them, 'e.g.' before a sample only
    one = lost_series(["a", "north, east"], {"a"}, prev).line()
    assert one is not None and ("1 of the 2 series of the last publish (as_of 2026-11-01) is not in this run's data at "
                                "all: 'north, east'; it gets no forecast this time. Did the source lose it?") in one
    many = lost_series([f"s{i}" for i in range(8)], set(), prev).line()
    assert many is not None and "at all, e.g. s0, s1, s2, s3, s4, ...; they get no forecast" in many
    # an ended series set aside is in the data (td.excluded is part of what the run has): never lost
    assert lost_series(["a", "closed"], {"a", "closed"}, prev).lost == []
    kept = lost_series(["a", "b"], {"a", "b", "c"}, prev)
    assert kept.lost == [] and kept.line() is None
    check_series_lost(kept, 0.0)


@pytest.mark.parametrize(("as_of", "tz", "said"), [
    (datetime(2026, 12, 3, 4, 40), None, "as_of 2026-12-03 04:40 UTC: every"),  # naive: UTC
    (datetime(2026, 12, 3, 4, 40, tzinfo=UTC), "UTC", "as_of 2026-12-03 04:40 UTC: every"),
    # an aware as_of written in another zone: its instant, not its wall time there (10:10)
    (datetime(2026, 12, 3, 10, 10, tzinfo=ZoneInfo("Asia/Kolkata")), None, "as_of 2026-12-03 04:40 UTC: every"),
    # a New York source: UTC and the wall time there, with its offset
    (datetime(2026, 12, 3, 4, 40, tzinfo=UTC), "America/New_York",
     "as_of 2026-12-03 04:40 UTC (2026-12-02 23:40 -05:00 America/New_York): every"),
    # the repeated autumn hour: one wall time (01:30), two instants, told apart
    (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), "America/New_York",
     "as_of 2024-11-03 05:30 UTC (2024-11-03 01:30 -04:00 America/New_York): every"),
    (datetime(2024, 11, 3, 6, 30, tzinfo=UTC), "America/New_York",
     "as_of 2024-11-03 06:30 UTC (2024-11-03 01:30 -05:00 America/New_York): every"),
    (datetime(2024, 10, 27, 0, 30, 15, tzinfo=UTC), "Europe/London",
     "as_of 2024-10-27 00:30:15 UTC (2024-10-27 01:30:15 +01:00 Europe/London): every"),
])
def test_the_stale_data_warning_says_as_of_as_an_unambiguous_instant(as_of, tz, said):
    """Regression: the warning printed as_of's wall time without a zone ('as_of 2026-12-03 04:40'): UTC's or the
    source's, and in the repeated autumn hour which of two instants, nobody could tell (an aware as_of written in
    another zone printed its own wall time). It says the UTC instant, and where the source has a zone the wall time
    there with its offset."""
    f = freshness(_lengths({"a": datetime(2019, 9, 1)}), datetime(2024, 12, 3), "1mo", 12)
    [line] = freshness_lines(f, as_of, tz)
    assert said in line


def test_a_weekend_as_of_is_not_stale_at_1b():
    """Data through Friday read on Saturday: the next business day, Monday, is still ahead, so the
    run neither warns that every forecast period lies before as_of nor fails max_staleness = 0."""
    f = freshness(_lengths({"a": datetime(2026, 9, 25), "b": datetime(2026, 9, 25)}), datetime(2026, 9, 26, 9),
                  "1b", 1)
    assert f.periods_behind == 0 and not f.all_before_as_of
    assert freshness_lines(f, datetime(2026, 9, 26, 9)) == []
    check_staleness(f, 0)


def test_the_period_of_as_of_still_to_forecast_is_not_stale():
    """Daily data through yesterday, read today with horizon 1: the one forecast period is today,
    the period as_of falls in, not one before it (each such run warned and sent flowcast.data.stale).
    A day more, and the forecast of yesterday lies wholly before as_of."""
    fresh = freshness(_lengths({"a": datetime(2026, 12, 2)}), datetime(2026, 12, 3, 4, 40), "1d", 1)
    assert fresh.periods_behind == 1 and not fresh.all_before_as_of
    assert freshness_lines(fresh, datetime(2026, 12, 3, 4, 40)) == []
    late = freshness(_lengths({"a": datetime(2026, 12, 1)}), datetime(2026, 12, 3, 4, 40), "1d", 1)
    assert late.periods_behind == 2 and late.all_before_as_of


def test_a_sub_daily_latest_observation_is_said_as_a_utc_instant():
    f = freshness(_lengths({"a": datetime(2026, 12, 1, 6, 0)}), datetime(2026, 12, 3, 4, 40), "1h", 24)
    assert f.periods_behind == 46 and "The latest observation, 2026-12-01 06:00 UTC, is 46 periods (1h)" in \
        freshness_lines(f, datetime(2026, 12, 3, 4, 40))[0]
    # newuser52: of a source in a zone, as as_of is said beside it: its UTC instant and its wall time there
    assert freshness_lines(f, datetime(2026, 12, 3, 4, 40), "America/New_York")[0].startswith(
        "The latest observation, 2026-12-01 06:00 UTC (2026-12-01 01:00 -05:00 America/New_York), is 46 periods (1h) "
        "before as_of 2026-12-03 04:40 UTC (2026-12-02 23:40 -05:00 America/New_York)")


def test_an_ended_series_and_the_stale_line_say_a_sub_daily_time_in_the_source_s_zone_and_counts_with_commas():
    """review52: the gap cut's reason in the excluded table said its instants' wall times in the source's zone, the
    ended series' reason beside it (`ended_reason`), an ended series' panel title (`reporting.ended_when`) and the
    CLI's stale line (`_print_stale`) UTC alone; '2048 series ended' stood beside '1,500 rows' (`wording.plural`)."""
    from flowcast.cli.common import out
    from flowcast.cli.pipeline import _print_stale
    from flowcast.data.freshness import ended_reason
    from flowcast.reporting import ended_when

    local = "2024-03-06 05:00 UTC (2024-03-06 00:00 -05:00 America/New_York)"
    why = ended_reason(datetime(2024, 3, 6, 5), 1500, "1h", 24, "America/New_York")
    assert why.startswith(f"ended: its last observation, {local}, is 1,500 periods (1h) before the latest"), why
    assert ended_when(datetime(2024, 3, 6, 5), "America/New_York") == f"(last data {local})"
    assert ended_when(datetime(2024, 3, 6)) == "(last data 2024-03-06)"
    with out.capture() as shown:
        _print_stale({"stale": True, "latest_ds": "2024-03-06T05:00:00", "freq": "1h", "periods_behind": 1500},
                     "America/New_York")
    assert f"Stale data: the latest observation ({local}) is 1,500 periods (1h)" in " ".join(shown.get().split())
    last = {"live": datetime(2026, 11, 1)} | {f"gone{i:04d}": datetime(2020, 1, 1) for i in range(1500)}
    [line] = freshness_lines(freshness(_lengths(last), datetime(2026, 12, 3), "1mo", 12), datetime(2026, 12, 3))
    assert line.startswith("1,500 series ended more than a horizon"), line


@pytest.mark.parametrize(("ds", "freq", "said"), [
    (datetime(2026, 12, 1), "1mo", "2026-12-01"),  # a period: its date
    (datetime(2026, 12, 1), "1d", "2026-12-01"),
    (datetime(2026, 12, 1, 13, 0), "1d", "2026-12-01 13:00 UTC"),  # daily data stamped with a clock time
    (datetime(2026, 12, 1, 6, 0), "1h", "2026-12-01 06:00 UTC"),  # an instant
    (datetime(2026, 12, 1, 6, 0, 30), "1m", "2026-12-01 06:00:30 UTC"),
    (datetime(2026, 12, 1), "1h", "2026-12-01"),  # its midnight, as utc_text writes it
    (None, "1h", "-"),
])
def test_a_ds_is_written_as_a_date_or_as_every_message_writes_an_instant(ds, freq, said):
    """inst43b: a sub-daily midnight read '2026-12-01 00:00 UTC' beside messages that write that instant '2026-12-01'
    (`timekeys.utc_text`), and a clock time of daily data '2026-12-01 13:00', without its zone."""
    assert when_text(ds, freq) == said


@pytest.mark.parametrize(("latest", "freq", "label", "end"), [
    ("2024-03-30T11:00:00", "1h", "end", "2024-03-30T12:00:00"),  # the hour from 11:00 UTC, labelled 12:00 UTC
    ("2024-03-30T23:30:00", "30m", "end", "2024-03-31T00:00:00"),
    ("2024-01-01T00:00:00", "1mo", "end", "2024-02-01T00:00:00"),  # January, dated by the next month's first day
    ("2024-06-01T00:00:00", "3mo", "end", "2024-07-01T00:00:00"),  # a fiscal quarter ending in June
    ("2024-05-03T00:00:00", "1b", "end", "2024-05-04T00:00:00"),  # Friday ends at Saturday's midnight, not Monday's
    ("2024-03-30T11:00:00", "1h", "start", None),
    (None, "1h", "end", None),
])
def test_latest_end_is_the_label_an_end_labelled_source_writes(latest, freq, label, end):
    """The run JSON's latest_ds_end: latest_ds is an interval's start (every ds is); hour-ending data write its end."""
    assert latest_end(latest, freq, label) == end


@pytest.mark.parametrize(("n_ended", "shown", "cell"), [
    (1, ["S5"], "1 (S5)"),  # ui19: it read '1 (e.g. S5)', as if there were others
    (2, ["older", "closed"], "2 (older, closed)"),
    (7, ["a", "b", "c", "d", "e"], "7 (e.g. a, b, c, d, e)"),  # a sample of them: e.g.
    (2, ["north, east", "south"], "2 ('north, east', south)"),  # one series, not two (newuser43)
])
def test_the_data_quality_report_says_e_g_only_of_a_sample_of_the_ended_series(n_ended, shown, cell):
    from flowcast.data.validate import DataQualityReport

    report = DataQualityReport(source="s", as_of="2026-12-03")
    report.freshness = {"series_ended": n_ended, "ended": shown}
    assert f"| series ended more than a horizon before the latest observation | {cell} |" in report.to_markdown()


def test_the_data_quality_report_lists_the_excluded_series_and_their_whole_reasons():
    """ui19: the excluded series were a two-column table, whose cells the Prefect UI does not wrap: an ended
    series' reason was cut off at 'not forecast ([va'. They are a list now, each reason whole."""
    from flowcast.data.validate import DataQualityReport

    reason = ("ended: its last observation, 2019-12-01, is 48 periods (1mo) before the latest of any series, more "
              "than the horizon (12): not forecast ([validation] ended_series = \"exclude\")")
    report = DataQualityReport(source="s", as_of="2026-12-03")
    report.excluded = [{"unique_id": "S5", "reason": reason}]
    md = report.to_markdown()
    assert "Excluded series (not forecast) and why:\n\n- **S5**: ended: its last observation, 2019-12-01, is 48" in md
    assert md.rstrip().endswith("ended\\_series = \"exclude\")") and "| S5 |" not in md
    report.excluded = [{"unique_id": f"s{i}", "reason": "too short"} for i in range(53)]
    assert report.to_markdown().rstrip().endswith("- **s49**: too short\n- ... and 3 more")


@pytest.mark.parametrize(("last", "aside", "says"), [
    # forecast mode: the ended series, each with when it last had data, the count
    ({"live": datetime(2026, 11, 1), "closed": datetime(2024, 1, 1), "older": datetime(2020, 1, 1)}, None,
     ("Ended series forecast anyway: 2 series stopped more than a horizon before the latest observation (2026-11-01), "
     "and a run forecasts them all the same, from their own last observation, their forecasts dated before the "
     "others' and published beside them ([validation] ended_series = \"forecast\", the default; \"exclude\" sets them aside): "
     "'older' (last data 2020-01-01), 'closed' (last data 2024-01-01).")),
    ({"live": datetime(2026, 11, 1), "closed": datetime(2024, 1, 1)}, None, ("1 series stopped more than a horizon "
     "before the latest observation (2026-11-01), and a run forecasts it all the same, from its own last observation, "
     "its forecasts dated before the others' and published beside them ([validation] ended_series = \"forecast\", "
     "the default; \"exclude\" sets it aside): 'closed' (last data 2024-01-01).")),  # it said 'sets them aside' of one
    # more than the five named: e.g. and how many more
    ({"live": datetime(2026, 11, 1), **{f"c{i}": datetime(2020, 1 + i, 1) for i in range(7)}}, None,
     ("e.g. 'c0' (last data 2020-01-01), 'c1' (last data 2020-02-01), 'c2' (last data 2020-03-01), 'c3' (last data "
     "2020-04-01), 'c4' (last data 2020-05-01) and 2 more.")),
    ({"live": datetime(2026, 11, 1)}, None, None),  # none ended
    # exclude mode: set aside, listed among the excluded series, not said to be forecast
    ({"live": datetime(2026, 11, 1)}, {"closed": datetime(2024, 1, 1)}, None),
])
def test_the_data_quality_report_says_which_ended_series_were_forecast_anyway(last, aside, says):
    """Regression: in forecast mode (the default) the data-quality artifact counted the ended series in its table and
    never said that they were forecast and published anyway, dated years before the others, nor when each stopped."""
    from flowcast.data.validate import DataQualityReport

    set_aside = None if aside is None else pl.DataFrame({"unique_id": list(aside), "last_ds": list(aside.values())},
                                                        schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})
    f = freshness(_lengths(last), datetime(2026, 12, 3), "1mo", 12, set_aside)
    report = DataQualityReport(source="s", as_of="2026-12-03", freq="1mo")
    report.freshness = f.to_dict()
    md = report.to_markdown()
    if says is None:
        assert "forecast anyway" not in md
        return
    assert md_text(says) in md


@pytest.mark.parametrize(("ended", "cut", "says", "alive"), [
    (None, datetime(2024, 3, 1), None, None),
    ([{"unique_id": "closed", "last_ds": "2020-12-01T00:00:00"}], datetime(2024, 3, 1),
     ('1 ended series set aside ([validation] ended_series = "exclude"), \'closed\', is in no backtest window either: the '
     "leaderboard scores the series this run publishes."), None),
    # one ended after the oldest cut (2024-03): a run at that cut would have forecast it; one before: in none anyway
    ([{"unique_id": "closed", "last_ds": "2020-12-01T00:00:00"}, {"unique_id": "late", "last_ds": "2024-06-01"}],
     datetime(2024, 3, 1), "2 ended series set aside", ("1 of them ('late') still had observations after the oldest "
     "backtest cut (2024-03-01), where a run would have forecast it: the scores leave out series that ended since")),
    # on the cut itself: nothing after it to score, as a run at the cut would have had none
    ([{"unique_id": "edge", "last_ds": "2024-03-01T00:00:00"}], datetime(2024, 3, 1), "1 ended series", None),
    ([{"unique_id": f"s{i}", "last_ds": "2020-01-01T00:00:00"} for i in range(7)], None, ("'s0', 's1', 's2', 's3', 's4' and 2 "
     "more, are in no backtest window"), None),
])
def test_ended_series_set_aside_say_they_are_in_no_backtest_window(ended, cut, says, alive):
    """ended_series = "exclude" leaves an ended series out of every backtest window, also one whose cut came before it
    ended (the decision uses data after that cut). That is intended (the leaderboard is for the series published; every
    window scores the same series) and said in the run's notes, with those a point-in-time backtest would have scored."""
    from flowcast.data.freshness import ended_backtest_note

    note = ended_backtest_note(ended, cut, "1mo")
    if says is None:
        assert note is None
        return
    assert note is not None and says in note
    assert ("still had observations after" in note) == (alive is not None)
    if alive:
        assert alive in note


@pytest.mark.parametrize(("written", "as_of", "behind", "stale"), [
    # New York days written -05:00: at 04:00 UTC on 10 March it is 9 March there (begun at 05:00 UTC): data through
    # 8 March is 1 period behind, not stale at horizon 1 (the wall date, 10 March, read 2: stale)
    ("-05:00", "2024-03-10T04:00:00+00:00", 1, False),
    # Tokyo days written +09:00: at 16:00 UTC on 9 March it is 10 March there (begun at 15:00 UTC): 2 behind, stale
    # (the wall date, 9 March, read 1: fresh)
    ("+09:00", "2024-03-09T16:00:00+00:00", 2, True),
    # times without an offset: measured on the wall date as before
    ("", "2024-03-10T04:00:00+00:00", 2, True),
    ("", "2024-03-09T16:00:00+00:00", 1, False),
])
def test_daily_times_written_with_an_offset_are_judged_stale_by_the_instant(tmp_path, written, as_of, behind, stale):
    """Regression: freshness compared each series' last ds with as_of's wall time, while ingest observes a day written
    with an offset from the instant it begins there (`periods.seen_shifts`): a day off, stale or fresh wrongly. It
    now takes the one rule of realized accuracy (`evaluation.realized.observed_through_series`)."""
    from flowcast.config import SourceConfig, load_settings
    from flowcast.data.freshness import instant_bounds
    from flowcast.data.preprocess import preprocess
    from flowcast.data.sources import ingest
    from flowcast.data.validate import take_valid, validate

    rows = [f"{datetime(2024, 2, 1) + timedelta(days=i):%Y-%m-%dT%H:%M:%S}{written},a,{10.0 + i % 7}" for i in range(37)]
    (tmp_path / "d.csv").write_text("t,id,y\n" + "\n".join(rows) + "\n")  # 1 February .. 8 March
    source = SourceConfig(name="t", path=str(tmp_path / "d.csv"), id_cols=["id"], time_col="t", target_col="y",
                          freq="1d")
    settings = load_settings(model={"lookback": 3}, horizon=1)
    ing = ingest(source, as_of)
    result = validate(ing, source, settings.validation)
    td, _ = preprocess(take_valid(result), source, settings, ing.as_of)
    assert (result.shifts is None) == (written == "")
    lengths = td.lengths()
    assert lengths["last_ds"].max() == datetime(2024, 3, 8)
    bounds = instant_bounds(lengths, ing.as_of, freq="1d", tz=None, shifts=result.shifts)
    assert (bounds is None) == (written == "")
    f = freshness(lengths, ing.as_of_ds, "1d", 1, bounds=bounds)
    assert (f.periods_behind, f.all_before_as_of) == (behind, stale)
