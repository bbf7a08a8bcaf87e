"""Several observations in one period (issue 9.8): a source's `aggregate` combines data finer than
its frequency into one row per period; bad rows are quarantined first; the counts reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from data_helpers import make_source, run_validate


def test_transactions_sum_to_days_after_bad_rows_are_quarantined(write_csv):
    """Regression: two rows in one period were both quarantined as duplicate_conflict (and an
    exact repeat silently lost one of two identical sales)."""
    p = write_csv(
        "date,id,val\n"
        "2020-01-01T09:15,a,3\n"
        "2020-01-01T17:40,a,4\n"
        "2020-01-01T17:41,a,4\n"  # the same amount twice is two sales, not a duplicate
        "2020-01-02T10:00,a,n/a\n"  # quarantined before aggregation
        "2020-01-02T11:00,a,5\n"
        "2020-01-03T08:00,a,\n"  # no value: a period without any value stays null
        "2020-01-01T12:00,b,1\n"
    )
    r = run_validate(p, freq="1d", aggregate="sum")
    rep = r.report
    assert r.valid.select("unique_id", "ds", "y").rows() == [
        ("a", datetime(2020, 1, 1), 11.0), ("a", datetime(2020, 1, 2), 5.0), ("a", datetime(2020, 1, 3), None),
        ("b", datetime(2020, 1, 1), 1.0)]
    assert (rep.rows_in, rep.rows_valid, rep.rows_quarantined) == (7, 6, 1) and rep.checks == {"y_not_number": 1}
    assert (rep.periods, rep.rows_aggregated, rep.periods_aggregated) == (4, 3, 1)
    assert rep.periods_with_quarantined_rows == 1  # 2 January lost its 'n/a' row
    assert rep.reconciled and rep.rows_valid == rep.periods - rep.periods_aggregated + rep.rows_aggregated
    md = rep.to_markdown()
    assert "| valid rows aggregated (sum) into shared periods | 3 into 1 periods |" in md
    assert "| periods (one row per series and period) | 4 |" in md
    assert rep.to_dict()["rows_aggregated"] == 3


def test_five_minute_readings_average_to_hours_in_a_local_zone(write_csv):
    """Readings between grid points are not off the grid when they are aggregated; sub-daily
    periods are instants (UTC), the hour taken in the zone's own time."""
    lines = ["date,id,val"] + [f"2020-01-01T10:{m:02d}+11:00,a,{m}" for m in range(0, 60, 5)]
    lines += ["2020-01-01T11:00+11:00,a,100"]
    r = run_validate(write_csv("\n".join(lines) + "\n"), freq="1h", tz="Australia/Melbourne", aggregate="mean")
    assert r.report.rows_quarantined == 0
    assert r.valid.select("ds", "y").rows() == [(datetime(2019, 12, 31, 23), 27.5), (datetime(2020, 1, 1, 0), 100.0)]
    assert (r.report.rows_valid, r.report.periods, r.report.rows_aggregated, r.report.periods_aggregated) == (13, 2, 12, 1)


def test_last_is_the_latest_time_not_the_last_line(write_csv):
    p = write_csv("date,id,val,temp\n2020-01-31,a,7,1\n2020-01-05,a,3,2\n2020-02-10,a,4,3\n2020-01-20,a,5,4\n")
    r = run_validate(p, freq="1mo", aggregate="last", past_cols=["temp"])
    assert r.valid.select("ds", "y", "temp").rows() == [(datetime(2020, 1, 1), 7.0, 1.0), (datetime(2020, 2, 1), 4.0, 3.0)]


@pytest.mark.parametrize(("rows", "tz", "days"), [
    # 08:30 UTC is later than 09:00 +01:00 (08:00 UTC): the later reading, though its wall time is earlier
    (["2024-01-02T09:00:00+01:00,a,1", "2024-01-02T08:30:00+00:00,a,2"], None, [(datetime(2024, 1, 2), 2.0)]),
    # 23:00 -05:00 (04:00 UTC on 3 January) stays in 2 January, as written, and is its last reading
    (["2024-01-02T23:00:00-05:00,a,3", "2024-01-02T23:30:00+00:00,a,4", "2024-01-03T01:00:00+00:00,a,5"], None,
     [(datetime(2024, 1, 2), 3.0), (datetime(2024, 1, 3), 5.0)]),
    # one instant written twice: the later raw time, not the later line
    (["2024-01-02T09:00:00+01:00,a,1", "2024-01-02T08:00:00+00:00,a,2"], None, [(datetime(2024, 1, 2), 1.0)]),
    (["2024-01-02T09:00:00,a,1", "2024-01-02T08:30:00,a,2"], None, [(datetime(2024, 1, 2), 1.0)]),  # no offsets
    # a tz: times converted to its wall time, which orders them by instant too
    (["2024-01-02T09:00:00+01:00,a,1", "2024-01-02T08:30:00+00:00,a,2"], "Europe/Berlin",
     [(datetime(2024, 1, 2), 2.0)]),
])
def test_last_is_the_latest_instant_not_the_latest_wall_time(write_csv, rows, tz, days):
    """Regression (last46): 'last' took the latest wall time as written: of a day's readings at 09:00 +01:00 (08:00
    UTC) and 08:30 +00:00, the earlier one. The period a row falls in is still its date as written (no tz)."""
    lines = [f"{r},{r.rsplit(',', 1)[1]}0" for r in rows]  # temp: ten times val, taken from the same row
    r = run_validate(write_csv("date,id,val,temp\n" + "\n".join(lines) + "\n"), freq="1d", aggregate="last", tz=tz,
                     past_cols=["temp"])
    assert r.valid.select("ds", "y").rows() == days
    assert r.valid["temp"].to_list() == [y * 10 for _, y in days]
    assert r.report.rows_quarantined == 0


def test_days_sum_to_iso_weeks(write_csv):
    days = [f"2020-01-{d:02d},a,{d}" for d in range(6, 20)]  # Monday 6 .. Sunday 19 January
    r = run_validate(write_csv("date,id,val\n" + "\n".join(days) + "\n"), freq="1w", aggregate="sum")
    assert r.report.rows_quarantined == 0
    assert r.valid.select("ds", "y").rows() == [(datetime(2020, 1, 6), float(sum(range(6, 13)))),
                                                (datetime(2020, 1, 13), float(sum(range(13, 20))))]


def test_without_aggregate_two_rows_in_one_period_are_duplicates(write_csv):
    p = write_csv("date,id,val\n2020-01-01T09:00,a,3\n2020-01-01T17:00,a,4\n")
    r = run_validate(p, freq="1d")
    assert r.report.checks == {"duplicate_conflict": 2} and r.report.aggregate == "none"
    assert r.report.periods == r.report.rows_valid == 0 and r.report.reconciled


@pytest.mark.parametrize("how,expected", [("sum", 2.0), ("mean", 1.0), ("last", 1.0)])
def test_every_method_keeps_a_single_row_period_as_it_is(write_csv, how, expected):
    r = run_validate(write_csv("date,id,val\n2020-01-01,a,1\n2020-01-01,a,1\n2020-01-02,a,7\n"), aggregate=how)
    assert r.valid["y"].to_list() == [expected, 7.0]
    assert pl.Series(r.valid["ds"]).is_unique().all()


@pytest.mark.parametrize("freq,as_of,rows,kept,partial", [
    # transactions summed to days, a run at noon: 3 January has only its morning
    ("1d", datetime(2020, 1, 3, 12), ["2020-01-02T09:00,5", "2020-01-02T18:00,5", "2020-01-03T09:00,1"],
     [(datetime(2020, 1, 2), 10.0)], 1),
    # a date alone is the day's first instant: none of that day has happened
    ("1d", datetime(2020, 1, 3), ["2020-01-02T09:00,5", "2020-01-03T00:00,1"], [(datetime(2020, 1, 2), 5.0)], 1),
    # the end of a period is the start of the next: 2 January is whole at 3 January 00:00
    ("1d", datetime(2020, 1, 3), ["2020-01-02T09:00,5", "2020-01-02T23:59,5"], [(datetime(2020, 1, 2), 10.0)], 0),
    # days summed to months, a run on 20 February: February is not over
    ("1mo", datetime(2020, 2, 20), ["2020-01-05,5", "2020-01-25,5", "2020-02-03,1", "2020-02-19,1"],
     [(datetime(2020, 1, 1), 10.0)], 2),
    # business days: Friday's period is over on Saturday
    ("1b", datetime(2020, 1, 4, 6), ["2020-01-03T09:00,5", "2020-01-03T15:00,5"], [(datetime(2020, 1, 3), 10.0)], 0),
    # 5-minute readings to hours
    ("1h", datetime(2020, 1, 1, 10, 30), ["2020-01-01T09:00,1", "2020-01-01T09:55,3", "2020-01-01T10:05,100"],
     [(datetime(2020, 1, 1, 9), 4.0)], 1),
])
def test_a_period_not_over_at_as_of_is_left_out_not_summed_in_part(write_csv, freq, as_of, rows, kept, partial):
    """Regression: a run inside a period (the daily 06:00 schedule on transactions summed to days; as_of
    20 February on days summed to months) summed the rows of that period seen so far and took the
    part for the whole period: its last observation was a fraction of a day (tx.csv, ~48 sales a day,
    as_of 12:00: 2024-02-20 was 230 against ~480), which naive forecast, the backtest scored as an actual and
    realized accuracy later read as the period's actual. That period's rows wait until it ends: counted
    apart, as rows after as_of."""
    p = write_csv("date,id,val\n" + "\n".join(f"{r.split(',')[0]},a,{r.split(',')[1]}" for r in rows) + "\n")
    r = run_validate(p, as_of=as_of, freq=freq, aggregate="sum")
    rep = r.report
    assert r.valid.select("ds", "y").rows() == kept
    assert rep.rows_partial_period == partial
    assert rep.rows_in + rep.rows_after_as_of == rep.rows_read == len(rows) and rep.reconciled
    md = rep.to_markdown()
    assert ("| of the rows after as_of above, in a period not over at as_of (its rows wait until it ends) | "
            f"{partial} |" in md) == bool(partial)


def test_a_partial_period_keeps_its_planned_covariates_and_not_its_target(write_csv):
    """With a future-known covariate, the period not over at as_of is a period to forecast: its planned
    value is kept (as on rows after as_of), its partial target is not."""
    p = write_csv("date,id,val,promo\n2020-01-02T09:00,a,5,0\n2020-01-03T09:00,a,1,1\n2020-01-04T09:00,a,,1\n")
    r = run_validate(p, as_of=datetime(2020, 1, 3, 12), freq="1d", aggregate="sum", future_cols=["promo"])
    assert r.valid.select("ds", "y", "promo").rows() == [
        (datetime(2020, 1, 2), 5.0, 0.0), (datetime(2020, 1, 3), None, 1.0), (datetime(2020, 1, 4), None, 1.0)]
    assert (r.report.rows_planned, r.report.rows_partial_period) == (2, 1)


def test_the_report_counts_a_partial_period_with_planned_covariates_under_both_after_as_of_lines(write_csv):
    """Regression (README's [sources.my_sales] example: daily sums with a promo column): the
    report read "rows after as_of (outside this run) | 0" then "of which in a period not over at as_of | 6": the
    period's rows are kept for their planned covariates, so they are counted on the planned line, not the first;
    the partial-period line now counts of both and follows them."""
    p = write_csv("date,id,val,promo\n2020-01-02T09:00,a,5,0\n2020-01-03T09:00,a,1,1\n2020-01-03T10:00,b,2,1\n"
                  "2020-01-02T10:00,b,3,0\n")
    r = run_validate(p, as_of=datetime(2020, 1, 3, 12), freq="1d", aggregate="sum", future_cols=["promo"])
    rep = r.report
    assert (rep.rows_after_as_of, rep.rows_planned, rep.rows_partial_period) == (2, 2, 2)
    lines = [ln for ln in rep.to_markdown().splitlines() if "after as_of" in ln]
    assert lines == [
        "| rows after as_of (outside this run) | 0 |",
        "| rows after as_of kept for planned future covariates (target ignored; in rows in) | 2 |",
        "| of the rows after as_of above, in a period not over at as_of (its rows wait until it ends) | 2 |",
    ]


def test_overlapping_files_sum_a_row_once_and_drop_the_repeat(tmp_path):
    """Regression: a glob of two exports that overlap (part1 up to 2 January 10:00, part2 from 2 January
    09:00) summed the rows both hold twice, silently: 2 January read 2+3+3 = 8 instead of 5, and rows in
    counted both copies as valid. A repeat across files is one row: an exact duplicate dropped and counted
    (data43: not quarantined, not toward the threshold), naming the file that keeps it; two equal rows within a
    file are still two observations."""
    (tmp_path / "part1.csv").write_text("date,id,val\n2020-01-01T09:00,a,1\n2020-01-01T09:00,a,1\n"
                                        "2020-01-02T08:00,a,2\n2020-01-02T09:00,a,3\n")
    (tmp_path / "part2.csv").write_text("date,id,val\n2020-01-02T09:00,a,3\n2020-01-02T11:00,a,4\n"
                                        "2020-01-03T09:00,a,5\n")
    r = run_validate(str(tmp_path / "part*.csv"), freq="1d", aggregate="sum")
    rep = r.report
    assert r.valid.select("ds", "y").rows() == [
        (datetime(2020, 1, 1), 2.0), (datetime(2020, 1, 2), 9.0), (datetime(2020, 1, 3), 5.0)]
    assert (rep.rows_in, rep.rows_valid, rep.rows_quarantined, rep.rows_duplicate) == (7, 6, 0, 1) and rep.reconciled
    assert rep.checks == {} and r.quarantined.height == 0
    # the row of part2 (source_row 4: the 5th row read), several files: no line is named
    assert rep.duplicate_example == (f"source_row 4: repeat of a row of {tmp_path / 'part1.csv'} (the same series, "
                                     "time and values): the files overlap, and aggregate = 'sum' takes a row once")


@pytest.mark.parametrize(("second", "y", "dropped"), [
    ("2024-01-02T09:00:00-05:00", 2.0, 0),  # another instant of the day: summed
    ("2024-01-02T09:00:00+01:00", 1.0, 1),  # the same time and offset: the files overlap
])
def test_a_repeat_across_files_is_told_by_its_offset_too(tmp_path, second, y, dropped):
    """Regression (revC46, as words46 did within a file): daily times written with an offset and no tz were
    compared across files by their wall time alone: 09:00 +01:00 in one export and 09:00 -05:00 in another, two
    sales six hours apart, were one row read twice, one dropped (the sum read 1, not 2)."""
    (tmp_path / "a.csv").write_text("date,id,val\n2024-01-01T09:00:00+01:00,a,1\n2024-01-02T09:00:00+01:00,a,1\n")
    (tmp_path / "b.csv").write_text(f"date,id,val\n{second},a,1\n")
    r = run_validate(str(tmp_path / "*.csv"), freq="1d", aggregate="sum")
    assert r.valid.select("ds", "y").rows() == [(datetime(2024, 1, 1), 1.0), (datetime(2024, 1, 2), y)]
    assert (r.report.rows_in, r.report.rows_duplicate, r.report.rows_quarantined) == (3, dropped, 0)
    assert r.report.reconciled


@pytest.mark.parametrize(("first", "second", "y", "dropped"), [
    # one reading, written without an offset (Berlin's wall time, CET) and with the zone's: the files overlap
    ("2026-03-10T09:00:00", "2026-03-10T09:00:00+01:00", 1.0, 1),
    ("2026-03-10T09:00:00+01:00", "2026-03-10T09:00:00", 1.0, 1),
    # the same wall time at another offset is another instant: summed
    ("2026-03-10T09:00:00", "2026-03-10T09:00:00+02:00", 2.0, 0),
    # the repeated autumn hour: 02:30 +02:00 and 02:30 +01:00 are an hour apart, two readings
    ("2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", 2.0, 0),
    # 02:30 without an offset reads as the earlier of the two (+02:00): the same reading as it, not as +01:00
    ("2026-10-25T02:30:00", "2026-10-25T02:30:00+02:00", 1.0, 1),
    ("2026-10-25T02:30:00", "2026-10-25T02:30:00+01:00", 2.0, 0),
])
def test_a_repeat_across_files_of_a_tz_is_the_same_instant(tmp_path, first, second, y, dropped):
    """Regression (ovl47): with a tz, rows two overlapping files both hold were keyed by the zone's offset written
    beside them, null for a time written without one: 09:00 in one export and 09:00 +01:00 (Berlin, the same
    instant) in another were two rows, and the sum counted the reading twice. A time without an offset is read in
    the tz (the repeated autumn hour as its earlier instant); two rows are the same when they are the same instant."""
    (tmp_path / "a.csv").write_text(f"date,id,val\n{first},a,1\n")
    (tmp_path / "b.csv").write_text(f"date,id,val\n{second},a,1\n")
    r = run_validate(str(tmp_path / "*.csv"), freq="1d", aggregate="sum", tz="Europe/Berlin")
    assert r.valid.select("y").rows() == [(y,)]
    assert (r.report.rows_in, r.report.rows_duplicate, r.report.rows_quarantined) == (2, dropped, 0)
    assert r.report.reconciled


def test_a_repeat_across_files_keeps_the_copies_of_the_file_with_most(tmp_path):
    """Two sales of the same amount in one minute, in the full export, and once in a partial one:
    the two are kept (the file with more copies of the row), the partial file's copy is the repeat."""
    (tmp_path / "a.csv").write_text("date,id,val\n2020-01-01T09:00,a,4\n")
    (tmp_path / "b.csv").write_text("date,id,val\n2020-01-01T09:00,a,4\n2020-01-01T09:00,a,4\n")
    r = run_validate(str(tmp_path / "*.csv"), freq="1d", aggregate="sum")
    assert r.valid["y"].to_list() == [8.0] and (r.report.rows_quarantined, r.report.rows_duplicate) == (0, 1)
    assert str(tmp_path / "b.csv") in (r.report.duplicate_example or "")


# transactions summed to days, written with an offset: the day of 29 February at -05:00 ends at 05:00 UTC on
# 1 March, at +05:00 at 19:00 UTC on 29 February
SALES = "date,id,val\n2024-02-28T12:00:00{o},a,10\n2024-02-29T10:00:00{o},a,1\n2024-02-29T22:00:00{o},a,2\n" \
        "2024-03-01T09:00:00{o},a,4\n"


@pytest.mark.parametrize(("offset", "tz", "as_of", "days"), [
    ("-05:00", None, "2024-03-01", [(datetime(2024, 2, 28), 10.0)]),  # midnight UTC: 29 February not over at -05:00
    ("-05:00", None, datetime(2024, 3, 1, 5, tzinfo=UTC), [(datetime(2024, 2, 28), 10.0), (datetime(2024, 2, 29), 3.0)]),
    ("+05:00", None, datetime(2024, 2, 29, 20, tzinfo=UTC),  # over at 19:00 UTC
     [(datetime(2024, 2, 28), 10.0), (datetime(2024, 2, 29), 3.0)]),
    ("+05:00", None, datetime(2024, 2, 29, 18, 59, tzinfo=UTC), [(datetime(2024, 2, 28), 10.0)]),
    ("-05:00", "America/New_York", "2024-03-01",  # (a tz: times converted to its wall time, days cut there)
     [(datetime(2024, 2, 28), 10.0), (datetime(2024, 2, 29), 3.0)]),
])
def test_periods_of_times_with_an_offset_are_cut_by_the_instant_they_end(write_csv, offset, tz, as_of, days):
    """pit22: an aggregated source's rows written with an offset were cut by the period they fall in against as_of's
    wall time (UTC without a tz): the day of 29 February at -05:00 was summed at midnight UTC, five hours before it
    ended (a sale at 22:00 -05:00, after as_of, in it), and the one at +05:00 was still not over at 20:00 UTC, an hour
    after it ended. A period is over from the instant its end names in its rows' offset, as ingest sees a row."""
    r = run_validate(write_csv(SALES.format(o=offset)), as_of=as_of, freq="1d", aggregate="sum", tz=tz)
    assert r.valid.select("ds", "y").rows() == days
    assert r.report.rows_after_as_of == 4 - r.report.rows_in


# hourly sales of two series over 1-3 March 2024 (a bad value, a planned promo after the data), for the cut with and
# without its window over (series, period): written as text (with an offset or none) or as a Parquet timestamp
HOURS = [("a", "2024-03-01T09:00:00", "3", "0"), ("a", "2024-03-01T21:00:00", "4", "0"),
         ("a", "2024-03-02T03:00:00", "5", "0"), ("a", "2024-03-02T15:00:00", "6", "1"),
         ("a", "2024-03-03T02:00:00", "7", "1"), ("a", "2024-03-03T20:00:00", "8", "1"),
         ("b", "2024-03-01T10:00:00", "1", "0"), ("b", "2024-03-02T13:30:00", "n/a", "0"),
         ("b", "2024-03-03T01:00:00", "2", "0"), ("b", "2024-03-03T11:00:00", "9", "0"),
         ("a", "2024-03-04T10:00:00", "", "1")]


def _hours_file(tmp_path, written: str) -> str:
    """HOURS as `written`: 'text' (no offset), 'text-05:00' (each time with that offset), or a Parquet timestamp
    'naive', in 'UTC' or in 'America/New_York'."""
    if written.startswith("text"):
        path = tmp_path / "hours.csv"
        off = written.removeprefix("text")
        path.write_text("date,id,val,promo\n" + "".join(f"{t}{off},{i},{v},{p}\n" for i, t, v, p in HOURS))
        return str(path)
    zone = None if written == "naive" else written
    frame = pl.DataFrame({"date": [datetime.fromisoformat(t) for _, t, _, _ in HOURS],
                          "id": [i for i, _, _, _ in HOURS],
                          "val": [float("nan") if v == "n/a" else float(v) if v else None for _, _, v, _ in HOURS],
                          "promo": [float(p) for *_, p in HOURS]})
    path = tmp_path / "hours.parquet"
    frame.with_columns(pl.col("date").dt.replace_time_zone(zone)).write_parquet(path)
    return str(path)


@pytest.mark.parametrize("as_of", [datetime(2024, 3, 3, 12, tzinfo=UTC),  # 3 March not over (and 4 March planned)
                                   datetime(2024, 3, 6, tzinfo=UTC)])  # past every period's end
@pytest.mark.parametrize(("written", "tz", "window"), [
    ("text", None, False),  # no value with an offset (the profile of every row says so)
    ("text", "America/New_York", False),
    ("text-05:00", None, True),  # each row seen from its instant, 5 hours after its time as written
    ("text-05:00", "America/New_York", False),  # (a tz: converted to its wall time, seen there)
    ("naive", None, False),
    ("UTC", None, False),  # a timestamp in UTC: its wall time is its instant
    ("UTC", "Europe/Berlin", False),
    ("America/New_York", None, True),  # its wall time, seen from its instant in UTC
])
def test_the_cut_without_its_window_keeps_the_same_rows(tmp_path, monkeypatch, written, tz, window, as_of):
    """aggperf22: the cut of an aggregated source grouped every row by (series, period) for the latest offset of each
    period's rows (`period_not_over`), where no row can have one: a third of validating 4.3M hourly rows summed to days
    (`bench/aggregate_pit.py`). It groups them only where a row can be seen apart from its time as written
    (`Ingested.seen_apart`); the validated frame, the quarantine and the report are those of the window's cut."""
    from flowcast.data import sources
    from flowcast.data.sources import ingest

    path = _hours_file(tmp_path, written)
    kw = {"freq": "1d", "aggregate": "sum", "tz": tz, "future_cols": ["promo"]}
    src = make_source(path, **kw)
    ingested = ingest(src, as_of)
    assert ingested.seen_apart is window
    assert (".over(" in ingested.frame.explain()) is window
    fast = run_validate(path, as_of, **kw)
    mapping = sources._mapping

    def windowed(*a, **k):  # the window, always
        stages, _, zone_offsets = mapping(*a, **k)
        return stages, True, zone_offsets

    monkeypatch.setattr(sources, "_mapping", windowed)
    assert ingest(src, as_of).seen_apart and ".over(" in ingest(src, as_of).frame.explain()
    exact = run_validate(path, as_of, **kw)
    assert fast.valid.equals(exact.valid) and fast.quarantined.equals(exact.quarantined)
    assert fast.report.to_dict() == exact.report.to_dict()
    rep = fast.report
    assert rep.rows_quarantined == 1 and rep.reconciled  # ('n/a', a NaN in Parquet)
    # 12:00 UTC on 3 March: that day is not over, its rows wait (they are summed once it is over); 4 March is planned
    assert (rep.rows_partial_period > 0, rep.rows_planned > 0) == (as_of.day == 3, as_of.day == 3)
    assert fast.valid.filter(pl.col("y").is_not_null())["ds"].max() == datetime(2024, 3, 2 if as_of.day == 3 else 3)


@pytest.mark.parametrize("as_of", [datetime(2024, 3, 3, 12, tzinfo=UTC), datetime(2024, 3, 3, 23, tzinfo=UTC),
                                   datetime(2024, 3, 6, tzinfo=UTC)])
@pytest.mark.parametrize(("written", "future"), [("text-05:00", True), ("text+09:00", False),
                                                 ("America/New_York", True), ("America/New_York", False)])
def test_the_window_of_the_cut_is_computed_once_with_the_same_report(tmp_path, written, future, as_of):
    """perf25: validating an aggregated source whose rows are seen apart from their time as written (an offset, a
    timestamp in another zone) computed the window over (series, period) of its cut twice: in the rows kept (ingest's
    filter) and again in the counts of rows after as_of and in a period not over. Ingest computes it once, as a column
    of the plan both read (`Ingested.not_over`); the validated frame, the quarantine and the report are those of the
    window computed at each use."""
    from dataclasses import replace

    from flowcast.config import ValidationConfig
    from flowcast.data.periods import _within_as_of
    from flowcast.data.schemas import NOT_OVER
    from flowcast.data.sources import ingest
    from flowcast.data.validate import nothing_observed_by, validate

    path = _hours_file(tmp_path, written)
    src = make_source(path, freq="1d", aggregate="sum", future_cols=["promo"] if future else [])
    ingested = ingest(src, as_of)
    assert ingested.seen_apart and ingested.as_of_ds is not None
    assert NOT_OVER in ingested.unfiltered.collect_schema() and ingested.not_over().meta.output_name() == NOT_OVER
    assert ingested.frame.explain(optimized=False).count(".over(") == 1  # (the column's, the filter reads it)
    # the window at each use: the plan without the column, cut by the expression (main before perf25)
    unfiltered = ingested.unfiltered.drop(NOT_OVER)
    each = replace(ingested, unfiltered=unfiltered,
                   frame=_within_as_of(unfiltered, src, ingested.as_of_ds, ingested.later, ingested.seen_apart))
    assert NOT_OVER not in each.frame.collect_schema() and ".over(" in str(each.not_over())
    cfg = ValidationConfig(quarantine_threshold=1.0)
    once, exact = validate(ingested, src, cfg), validate(each, src, cfg)
    assert once.valid.equals(exact.valid) and once.quarantined.equals(exact.quarantined)
    assert once.report.to_dict() == exact.report.to_dict() and once.report.reconciled
    # 3 March is over at its end in its rows' offset (-05:00 in New York then): 05:00 UTC on 4 March, 15:00 UTC on 3
    # March at +09:00; its rows wait until then
    ends = datetime(2024, 3, 4, tzinfo=UTC) - timedelta(hours=9 if written == "text+09:00" else -5)
    assert (once.report.rows_partial_period > 0) == (as_of < ends)
    assert nothing_observed_by(src, as_of) is None


@pytest.mark.parametrize(("rows", "freq", "periods"), [
    # the repeated autumn hour of Berlin: 02:30 +01:00 (01:30 UTC) is an hour after 02:30 +02:00, written on the line
    # before it; both are 02:30 of 25 October on Berlin's clock
    (["2026-10-25T02:30:00+01:00,a,1", "2026-10-25T02:30:00+02:00,a,2"], "1d", [(datetime(2026, 10, 25), 1.0)]),
    (["2026-10-25T02:30:00+02:00,a,2", "2026-10-25T02:30:00+01:00,a,1"], "1d", [(datetime(2026, 10, 25), 1.0)]),
    # 02:10 +01:00 (01:10 UTC) is after 02:50 +02:00 (00:50 UTC), though its wall time is earlier
    (["2026-10-25T02:10:00+01:00,a,3", "2026-10-25T02:50:00+02:00,a,4"], "1d", [(datetime(2026, 10, 25), 3.0)]),
    # a time without an offset beside them, 03:00 (CET, 02:00 UTC), is the latest
    (["2026-10-25T03:00:00,a,5", "2026-10-25T02:10:00+01:00,a,3"], "1d", [(datetime(2026, 10, 25), 5.0)]),
    # the spring change skips 02:30 (02:00 CET is 03:00 CEST, 01:00 UTC): written without an offset it is that jump,
    # before 03:15 +02:00 (01:15 UTC); read as its wall time, 02:30, it was taken as the last
    (["2026-03-29T03:15:00+02:00,a,6", "2026-03-29T02:30:00,a,7"], "1d", [(datetime(2026, 3, 29), 6.0)]),
    # hourly: the two 02:30 are two hours of UTC, each its own period's last reading
    (["2026-10-25T02:30:00+01:00,a,1", "2026-10-25T02:40:00+02:00,a,2", "2026-10-25T02:10:00+02:00,a,3"], "1h",
     [(datetime(2026, 10, 25, 0), 2.0), (datetime(2026, 10, 25, 1), 1.0)]),
])
def test_last_of_the_repeated_autumn_hour_is_the_later_instant_whatever_the_line_order(write_csv, rows, freq,
                                                                                      periods):
    """dstB47: with a tz, a daily time written with an offset was kept as its wall time there alone: the two 02:30 of
    the autumn night were one time, ordered by line, and 'last' took the one written last. Its instant orders them."""
    lines = [f"{r},{r.rsplit(',', 1)[1]}0" for r in rows]  # temp: ten times val, taken from the same row
    r = run_validate(write_csv("date,id,val,temp\n" + "\n".join(lines) + "\n"), freq=freq, aggregate="last",
                     tz="Europe/Berlin", past_cols=["temp"])
    assert r.valid.select("ds", "y").rows() == periods
    assert r.valid["temp"].to_list() == [y * 10 for _, y in periods]
    assert r.report.rows_quarantined == 0


def test_the_instant_order_of_a_zone_converts_each_time_once_as_row_by_row():
    """`_instant_order` reads a time without an offset in the tz once per distinct time (`per_distinct`): on the rows
    of three series that share their times around both of Berlin's changes of 2026 (the skipped spring 02:30, the
    instant the clocks jump past it, `timekeys.wall_instant`; the repeated autumn 02:30, its earlier instant), written
    with the zone's offset or without one, and a null time, each row's instant is the one converting the rows one by
    one gives."""
    from flowcast.data.schemas import DS_OFFSET, DS_RAW
    from flowcast.data.validate import _instant_order
    from flowcast.timekeys import wall_instant

    times = [datetime(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 3, 30),
             datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 3, 30), datetime(2026, 10, 25, 1, 30), None]
    offsets = [timedelta(hours=1), None, timedelta(hours=2), timedelta(hours=1), None, None, None]
    frame = pl.DataFrame({DS_RAW: times * 3, DS_OFFSET: offsets[3:] + offsets[:3] + offsets + [None] * 7},
                         schema={DS_RAW: pl.Datetime("us"), DS_OFFSET: pl.Duration("us")})
    per_row = pl.DataFrame({"__instant": [None if t is None else t - o if o is not None else
                                          wall_instant(t, "Europe/Berlin").replace(tzinfo=None)
                                          for t, o in frame.select(DS_RAW, DS_OFFSET).rows()],
                            DS_RAW: frame[DS_RAW]}, schema={"__instant": pl.Datetime("us"), DS_RAW: pl.Datetime("us")})
    got = frame.select(_instant_order(frame.columns, "Europe/Berlin"))
    assert got.equals(per_row)
    # written without an offset: the skipped 02:30 the jump (01:00 UTC), the repeated 02:30 +02:00's instant (00:30 UTC)
    assert got["__instant"][-7:].to_list() == [datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 1, 0),
                                               datetime(2026, 3, 29, 1, 30), datetime(2026, 10, 25, 0, 30),
                                               datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 24, 23, 30), None]
