"""time_label = "end": times that label the end of their interval (hour-ending data, a daily total dated by the
next midnight) are read as the interval's start, one step of freq back (sub-daily: a fixed step in UTC, so the
days daylight saving changes are right; daily and coarser: on the calendar)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from data_helpers import make_source, run_validate

from flowcast.config import Settings
from flowcast.data.preprocess import preprocess
from flowcast.data.sources import ingest
from flowcast.data.validate import take_valid
from flowcast.data.zones import time_label_note
from flowcast.flows.tasks import preprocess_cache_key

HOUR = timedelta(hours=1)


def hour_ending_csv(zone: str, first_start_utc: datetime, hours: int) -> tuple[str, list[datetime]]:
    """Hourly values labelled by the local wall time their hour ends at (no offset written, as such exports do),
    and the UTC instants their hours start at."""
    tz = ZoneInfo(zone)
    starts = [first_start_utc + i * HOUR for i in range(hours)]
    lines = ["date,id,val"]
    for i, start in enumerate(starts):
        end_wall = (start + HOUR).replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
        lines.append(f"{end_wall:%Y-%m-%dT%H:%M},m,{100 + i}")
    return "\n".join(lines) + "\n", starts


@pytest.mark.parametrize(("zone", "first_start_utc"), [
    ("Europe/Berlin", datetime(2024, 3, 30, 23)),  # 31 March: 02:00 CET is 03:00 CEST (23 hours)
    ("Europe/Berlin", datetime(2024, 10, 26, 22)),  # 27 October: 03:00 CEST is 02:00 CET again (25 hours)
    ("Australia/Melbourne", datetime(2020, 4, 4, 13)),  # 5 April: 03:00 AEDT is 02:00 AEST again
    ("Australia/Melbourne", datetime(2020, 10, 3, 14)),  # 4 October: 02:00 AEST is 03:00 AEDT
])
def test_hour_ending_labels_across_a_daylight_saving_change_are_the_hours_they_end(write_csv, zone, first_start_utc):
    """Regression: a value labelled 01:00 (the hour 00:00-01:00) was the hour from 01:00, so its hour of day,
    weekday and holidays were those of the next hour, and its forecasts were labelled one hour early without a
    word. Each label is now its hour's start, also on the days of 23 and 25 hours (48 hours: both sides)."""
    text, starts = hour_ending_csv(zone, first_start_utc, 48)
    r = run_validate(write_csv(text), freq="1h", tz=zone, ambiguous="infer", time_label="end")
    assert r.report.rows_quarantined == 0, r.quarantined
    assert take_valid(r)["ds"].to_list() == starts
    assert r.report.time_label_note == "time labels are interval ends: ds shifted back by 1h (ds is the interval's start)"
    assert r.report.time_label_note in r.report.to_markdown()


def test_calendar_features_of_hour_ending_data_are_those_of_the_hour_it_covers(write_csv):
    """The value labelled 2024-01-01 00:00 (Berlin) is the last hour of 31 December: its features are those of
    23:00 on a Sunday, as for the same values written by their start (they were those of Monday 00:00)."""
    text, starts = hour_ending_csv("Europe/Berlin", datetime(2023, 12, 29, 23), 24 * 4)
    by_start = "date,id,val\n" + "".join(
        f"{t.replace(tzinfo=UTC).astimezone(ZoneInfo('Europe/Berlin')):%Y-%m-%dT%H:%M},m,{100 + i}\n"
        for i, t in enumerate(starts))
    settings = Settings(model={"lookback": 12}, horizon=4, preprocess={"val_size": 4})
    cals = []
    for name, body, label in (("end.csv", text, "end"), ("start.csv", by_start, "start")):
        src = make_source(write_csv(body, name), freq="1h", tz="Europe/Berlin", time_label=label)
        r = run_validate(src.path, **src.model_dump(exclude={"name", "path"}))
        td, _ = preprocess(take_valid(r), src, settings, datetime(2024, 2, 1, tzinfo=UTC))
        cals.append(td.with_calendar())
    end, start = cals
    assert end.equals(start)
    last_of_year = end.filter(pl.col("ds") == datetime(2023, 12, 31, 22))  # 23:00 CET, a Sunday
    assert last_of_year["y"].to_list() == [100.0 + 47]
    assert last_of_year["cal_day_sin"][0] == pytest.approx(math.sin(2 * math.pi * 23 * 60 / 1440))
    assert last_of_year["cal_week_sin"][0] == pytest.approx(math.sin(2 * math.pi * 6 / 7))


@pytest.mark.parametrize(("freq", "labels", "starts"), [
    # a daily total dated by the next midnight
    ("1d", ["2024-01-02", "2024-01-03", "2024-01-04"], [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)]),
    # ... or by ISO 8601's 24:00 of its own day (read as the next day's 00:00)
    ("1d", ["2024-01-01T24:00", "2024-01-02T24:00", "2024-01-03T24:00"],
     [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)]),
    # months dated by their end instant (the next month's first day), or by their last day
    ("1mo", ["2024-02-01", "2024-03-01", "2024-04-01"], [datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)]),
    ("1mo", ["2024-01-31", "2024-02-29", "2024-03-31"], [datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)]),
    ("1q", ["2024-04-01", "2024-07-01"], [datetime(2024, 1, 1), datetime(2024, 4, 1)]),
    ("1y", ["2024-01-01", "2025-01-01"], [datetime(2023, 1, 1), datetime(2024, 1, 1)]),
    # weeks ending at Monday 00:00: the weeks from the Monday before
    ("1w", ["2024-01-08", "2024-01-15"], [datetime(2024, 1, 1), datetime(2024, 1, 8)]),
    # a business day's total dated by the next midnight (Friday's by Saturday)
    ("1b", ["2024-01-05", "2024-01-06", "2024-01-09"], [datetime(2024, 1, 4), datetime(2024, 1, 5), datetime(2024, 1, 8)]),
    # an hour-ending export's last hour written 24:00
    ("1h", ["2024-01-01T22:00", "2024-01-01T23:00", "2024-01-01T24:00", "2024-01-02T01:00"],
     [datetime(2024, 1, 1, 21), datetime(2024, 1, 1, 22), datetime(2024, 1, 1, 23), datetime(2024, 1, 2, 0)]),
    # half-hour-ending (electricity market intervals)
    ("30m", ["2024-01-01T00:30", "2024-01-01T01:00"], [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 0, 30)]),
])
def test_end_labels_are_moved_one_step_back(write_csv, freq, labels, starts):
    path = write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(labels)))
    r = run_validate(path, freq=freq, time_label="end")
    assert r.report.rows_quarantined == 0, r.quarantined
    assert take_valid(r)["ds"].to_list() == starts


@pytest.mark.parametrize(("freq", "labels", "starts"), [
    # a day stamped by its last second ('2024-03-05 23:59:59', an export's end of day) is that day, as
    # pandas' resample(closed="right", label="right") reads it: one step back from the time put it on 4 March
    ("1d", ["2024-03-05 23:59:59", "2024-03-06 23:59:59"], [datetime(2024, 3, 5), datetime(2024, 3, 6)]),
    # ... and the exact midnight that ends the day, the day before it
    ("1d", ["2024-03-06 00:00:00", "2024-03-07 00:00:00"], [datetime(2024, 3, 5), datetime(2024, 3, 6)]),
    # both ways in one file: one day each
    ("1d", ["2024-03-05 23:59:59", "2024-03-07 00:00:00"], [datetime(2024, 3, 5), datetime(2024, 3, 6)]),
    # a midnight an export's clock wrote seconds late (within JITTER_MAX) is that midnight: 7 March 00:00:02 ends
    # 6 March (read as 7 March, it left 6 March a gap without a word), also beside a 23:59:59 stamp
    ("1d", ["2024-03-06 00:00:02", "2024-03-07 00:00:02"], [datetime(2024, 3, 5), datetime(2024, 3, 6)]),
    ("1d", ["2024-03-05 23:59:59", "2024-03-07 00:00:02"], [datetime(2024, 3, 5), datetime(2024, 3, 6)]),
    # ... up to a minute late; one past it is inside its day, as is one a minute before a midnight
    ("1d", ["2024-03-06 00:01:00", "2024-03-07 00:01:01"], [datetime(2024, 3, 5), datetime(2024, 3, 7)]),
    ("1d", ["2024-03-05 23:59:00", "2024-03-06 23:59:59"], [datetime(2024, 3, 5), datetime(2024, 3, 6)]),
    # a month dated by its end instant written a second late is still that month
    ("1mo", ["2024-02-01 00:00:01", "2024-03-01 00:00:01"], [datetime(2024, 1, 1), datetime(2024, 2, 1)]),
    # a week ending Saturday stamped by its last second: the week from Sunday (not the Saturday before, off its grid)
    ("1w", ["2024-03-09 23:59:59", "2024-03-16 23:59:59"], [datetime(2024, 3, 3), datetime(2024, 3, 10)]),
    # Friday's business-day total stamped by its last second is Friday's (one day back put it on Thursday)
    ("1b", ["2024-03-07 23:59:59", "2024-03-08 23:59:59"], [datetime(2024, 3, 7), datetime(2024, 3, 8)]),
])
def test_an_end_of_day_stamp_is_the_period_that_holds_it(write_csv, freq, labels, starts):
    """A daily or coarser time strictly inside a day names the period that holds it; only the midnight that ends
    a period names the period before it. Every day of an export stamped 23:59:59 was moved to the day before."""
    path = write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(labels)))
    r = run_validate(path, freq=freq, time_label="end")
    assert r.report.rows_quarantined == 0, r.quarantined
    assert take_valid(r)["ds"].to_list() == starts


def test_an_hourly_stamp_a_second_before_its_hour_is_quarantined_as_off_grid_end_labelled_or_not(write_csv):
    """A sub-daily time off its grid ('01:59:59' of hour-ending data) is no hour's label either way: quarantined,
    named with how far it is from the grid point, not moved into an hour without a word."""
    path = write_csv("date,id,val\n2024-03-05 01:59:59,a,1\n2024-03-05 03:00:00,a,2\n")
    for label in ("start", "end"):
        r = run_validate(path, freq="1h", time_label=label)
        assert take_valid(r)["ds"].to_list() == [datetime(2024, 3, 5, 2 if label == "end" else 3)]
        assert r.quarantined["check"].to_list() == ["off_grid"]
        assert r.quarantined["reason"][0].startswith(
            "time '2024-03-05 01:59:59' is not on the 1h grid (1 s before one of its points"), r.quarantined


@pytest.mark.parametrize(("as_of", "seen"), [
    (datetime(2024, 3, 6, tzinfo=UTC), 2),  # 5 March is over: its 23:59:59 stamp is seen
    (datetime(2024, 3, 5, 23, 59, 59, 500000, tzinfo=UTC), 1),  # ... not before midnight, as its day is not over
])
def test_an_end_of_day_stamp_is_seen_once_its_day_is_over(write_csv, as_of, seen):
    path = write_csv("date,id,val\n2024-03-04 23:59:59,a,0\n2024-03-05 23:59:59,a,1\n")
    r = run_validate(path, as_of=as_of, freq="1d", time_label="end")
    valid = take_valid(r)
    assert valid["ds"].to_list() == [datetime(2024, 3, 4), datetime(2024, 3, 5)][:seen]
    assert r.report.rows_after_as_of == 2 - seen


@pytest.mark.parametrize(("as_of", "seen"), [
    (datetime(2024, 3, 6, tzinfo=UTC), 2),  # 5 March is over at midnight: its stamp 2 s after it is seen then
    (datetime(2024, 3, 5, 23, 59, 59, tzinfo=UTC), 1),  # ... not before
])
def test_a_midnight_stamped_seconds_late_is_seen_once_the_day_it_ends_is_over(write_csv, as_of, seen):
    path = write_csv("date,id,val\n2024-03-05 00:00:02,a,0\n2024-03-06 00:00:02,a,1\n")
    r = run_validate(path, as_of=as_of, freq="1d", time_label="end")
    assert take_valid(r)["ds"].to_list() == [datetime(2024, 3, 4), datetime(2024, 3, 5)][:seen]
    assert r.report.rows_after_as_of == 2 - seen


def test_two_readings_of_one_end_labelled_day_are_two_times_not_a_repeat(write_csv):
    """09:00 and 15:00 of one day, the same value: two observations of the day, both quarantined naming their
    times, not one dropped as a repeat of the other."""
    r = run_validate(write_csv("date,id,val\n2024-03-05 09:00,a,1\n2024-03-05 15:00,a,1\n"), freq="1d",
                     time_label="end")
    assert r.quarantined["check"].to_list() == ["duplicate_conflict"] * 2
    assert "with different time values (2024-03-05 09:00 / 2024-03-05 15:00)" in r.quarantined["reason"][0]


@pytest.mark.parametrize(("freq", "rows", "check", "said"), [
    # a week dated by its Sunday end written twice, with different sales: the date the user wrote, then its period
    ("1w", ["2024-01-07,a,1", "2024-01-14,a,2", "2024-01-14,a,3"], "duplicate_conflict",
     "2 rows for (a, 2024-01-14: the 1w period from 2024-01-07) with different y values (2.0 / 3.0)"),
    ("1w", ["2024-01-07,a,1", "2024-01-14,a,2", "2024-01-14,a,2"], "duplicate_row",
     "repeat of an earlier row for (a, 2024-01-14: the 1w period from 2024-01-07) with the same y"),
    # a month's last day and the next month's first both end January: both dates, as written
    ("1mo", ["2024-01-31,a,1", "2024-02-01,a,2"], "duplicate_conflict",
     "2 rows for (a, 2024-01-31 / 2024-02-01: the 1mo period from 2024-01-01) with different y values (1.0 / 2.0)"),
    ("1h", ["2024-01-01T01:00,a,1", " 2024-01-01T01:00 ,a,2"], "duplicate_conflict",
     "2 rows for (a, 2024-01-01T01:00: the 1h period from 2024-01-01) with different y values (1.0 / 2.0)"),
])
def test_a_duplicate_of_end_labels_is_named_by_the_time_as_written(write_csv, freq, rows, check, said):
    """newuser31: with --time-label end a duplicate's reason named the period start ingest shifted the time to
    ('(a, 2024-01-07)' for two rows the user wrote 2024-01-14): a time nowhere in the file. It names the time as
    written, and the period it is read as."""
    r = run_validate(write_csv("date,id,val\n" + "".join(f"{row}\n" for row in rows)), freq=freq, time_label="end")
    reasons = r.quarantined.filter(pl.col("check") == check)["reason"].unique().to_list()
    if check == "duplicate_row":  # an exact repeat is dropped and counted, not quarantined: its first one is said
        reasons = [(r.report.duplicate_example or "").split("): ", 1)[-1]]
    assert reasons == [said]


@pytest.mark.parametrize(("freq", "times", "said"), [
    ("1h", [datetime(2024, 1, 1, 1)] * 2, "2024-01-01 01:00: the 1h period from 2024-01-01"),  # it read '01:00:00'
    ("1w", [datetime(2024, 1, 14)] * 2, "2024-01-14: the 1w period from 2024-01-07"),
])
def test_a_duplicate_of_end_labels_in_a_timestamp_column_names_its_clock_as_times_read(tmp_path, freq, times, said):
    """A Parquet timestamp column's end label was named with its seconds always ('2024-01-01 01:00:00'), where every
    other time of a reason reads without seconds that are zero (`timekeys.utc_text_expr`)."""
    path = tmp_path / "s.parquet"
    pl.DataFrame({"date": times, "id": ["a", "a"], "val": [1.0, 2.0]}).write_parquet(path)
    r = run_validate(path, freq=freq, time_label="end")
    conflicts = r.quarantined.filter(pl.col("check") == "duplicate_conflict")["reason"].unique().to_list()
    assert conflicts == [f"2 rows for (a, {said}) with different y values (1.0 / 2.0)"]


def test_end_labels_finer_than_an_aggregated_freq_fall_in_the_period_they_end(write_csv):
    """Half-hour-ending readings summed to hours: 00:30 and 01:00 are the hour from 00:00 (one step of 1h back
    put 00:30 in the hour before)."""
    path = write_csv("date,id,val\n2024-01-01T00:30,a,1\n2024-01-01T01:00,a,2\n2024-01-01T01:30,a,4\n"
                     "2024-01-01T02:00,a,8\n")
    r = run_validate(path, freq="1h", aggregate="sum", time_label="end")
    valid = take_valid(r)
    assert valid["ds"].to_list() == [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 1)]
    assert valid["y"].to_list() == [3.0, 12.0]
    note = time_label_note(make_source(path, freq="1h", aggregate="sum", time_label="end"))
    assert note is not None and "1 microsecond" in note


def test_time_label_is_part_of_the_source_identity(write_csv):
    """A change of time_label is new data to preprocessing: another fingerprint and another cache key (a cached
    TrainingData of the other reading was served); a start-labelled source keeps the identity it had."""
    path = write_csv("date,id,val\n2024-01-02,a,1\n2024-01-03,a,2\n")
    start, end = make_source(path), make_source(path, time_label="end")
    fp_start, fp_end = ingest(start, None).fingerprint, ingest(end, None).fingerprint
    assert fp_start != fp_end
    import hashlib

    from flowcast.data.remote import _file_digest

    old = hashlib.sha256(start.model_dump_json(exclude={"time_label", "decimal"}).encode())  # before the settings
    old.update(str(path).encode() + b"|" + _file_digest(str(path)).encode())
    assert fp_start == old.hexdigest()[:16]
    s = Settings()
    keys = {preprocess_cache_key(None, {"settings": s, "source": src, "as_of": None, "fingerprint": "f"})
            for src in (start, end)}
    assert len(keys) == 2
    assert time_label_note(start) is None


@pytest.mark.parametrize(("freq", "labels", "as_of", "seen"), [
    # at 12:00 UTC the hour labelled 12:00 (11:00-12:00) is over, the one labelled 13:00 is not
    ("1h", ["2024-03-30T11:00", "2024-03-30T12:00", "2024-03-30T13:00"], datetime(2024, 3, 30, 12, tzinfo=UTC), 2),
    ("1h", ["2024-03-30T11:00", "2024-03-30T12:00", "2024-03-30T13:00"], datetime(2024, 3, 30, 12, 30, tzinfo=UTC), 2),
    # a daily total dated by the next midnight: on 3 January the total labelled 3 January (2 January's) is known
    ("1d", ["2024-01-02", "2024-01-03", "2024-01-04"], datetime(2024, 1, 3, tzinfo=UTC), 2),
    # months labelled by their end's first day: on 1 March, February's (labelled 2024-03-01) is known, not March's
    ("1mo", ["2024-02-01", "2024-03-01", "2024-04-01"], datetime(2024, 3, 1, tzinfo=UTC), 2),
    ("1mo", ["2024-01-31", "2024-02-29", "2024-03-31"], datetime(2024, 3, 30, tzinfo=UTC), 2),
])
def test_a_run_sees_the_end_labelled_intervals_over_by_its_as_of_only(write_csv, freq, labels, as_of, seen):
    """Regression: the as_of bound was not moved back with the end labels, so a run (a backfill) at 12:00 read the
    value labelled 13:00, one interval it could not have known. The bound moves as the labels do; rows after it
    are counted as after as_of (counts reconcile), and observed_through says the same on its own."""
    from flowcast.timekeys import observed_through

    path = write_csv("date,id,val\n" + "".join(f"{t},m,{i}\n" for i, t in enumerate(labels)))
    r = run_validate(path, as_of=as_of, freq=freq, time_label="end")
    valid = take_valid(r)
    assert valid.height == seen and valid["y"].to_list() == [float(i) for i in range(seen)]
    assert r.report.rows_in == seen and r.report.rows_after_as_of == len(labels) - seen
    bound = observed_through(as_of, freq=freq, tz=None, time_label="end")
    assert valid["ds"].max() <= bound
    assert observed_through(as_of, freq=freq, tz=None) > bound  # start labels: the bound is the as_of itself
