"""Several observations in one period (issue 9.8): a source's `aggregate` combines data finer than
its frequency into one row per period; bad rows are quarantined first; the counts reconcile."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from data_helpers import run_validate


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
