"""Periods written with an offset, across a daylight-saving change: a run at an instant observes exactly the periods
whose time (or, summed from finer rows, whose end) had come by then, in the offsets the rows were written in, and
realized accuracy, freshness and the training cut (`evaluation.realized.observed_through_series`) agree with it.

Times are written by a clock with daylight saving (New York, London), each with its offset: the spring change day
has 23 hours, the autumn one 25 (its repeated hour written twice, once in each offset). The expected periods are
computed here from the zone's rules, not by flowcast."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from data_helpers import make_source, run_validate

from flowcast.data.sources import ingest
from flowcast.evaluation.realized import observed_through_series, series_clocks, written_clock

HOUR = timedelta(hours=1)
MINUTES = timedelta(minutes=30)
# (zone, the change day): spring forward and fall back, 2024
CHANGES = [("America/New_York", date(2024, 3, 10)), ("America/New_York", date(2024, 11, 3)),
           ("Europe/London", date(2024, 3, 31)), ("Europe/London", date(2024, 10, 27))]


def _local_midnight(day: date, zone: str) -> datetime:
    """The instant (naive UTC) local `day` starts at in `zone`."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


def _hours_file(path, zone: str, change: date) -> None:
    """Series 'a': every hour from 3 days before the change day to 3 days after, by the instant, written as its wall
    time in `zone` with the offset it had (the repeated autumn hour twice, '01:30-04:00' and '01:30-05:00'); 1.0
    each, so a day's sum is its number of hours."""
    start, stop = _local_midnight(change - timedelta(days=3), zone), _local_midnight(change + timedelta(days=4), zone)
    t, lines = start, []
    while t < stop:
        lines.append(f"{t.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).isoformat()},a,1.0")
        t += HOUR
    path.write_text("t,id,y\n" + "\n".join(lines) + "\n")


def _last_day_over(at: datetime, zone: str, change: date) -> date:
    """The latest local day of the data whose end (the next local midnight, by the zone's rules) is by `at`."""
    days = [change + timedelta(days=k) for k in range(-3, 4)]
    return max(d for d in days if _local_midnight(d + timedelta(days=1), zone) <= at)


def _around_ends(zone: str, change: date) -> list[datetime]:
    """Instants half an hour before and after the ends of the day before the change, the change day and the day
    after (naive UTC)."""
    ends = [_local_midnight(change + timedelta(days=k), zone) for k in (0, 1, 2)]
    return [e + d for e in ends for d in (-MINUTES, MINUTES)]


@pytest.mark.parametrize(("zone", "change"), CHANGES)
def test_hours_summed_to_days_are_cut_by_the_instant_each_day_ends_across_a_dst_change(tmp_path, zone, change):
    """Regression: an aggregated day was over at its end plus the latest of its rows' shifts, so New York's 23-hour
    10 March (-05:00, then -04:00) was over at 05:00 UTC, an hour after it ended, and London's 31 March at midnight
    UTC, an hour late. A day is over at the instant its end names in its rows' offset at that end."""
    path = tmp_path / "hours.csv"
    _hours_file(path, zone, change)
    kw = {"freq": "1d", "aggregate": "sum", "id_cols": ["id"], "time_col": "t", "target_col": "y"}
    for at in _around_ends(zone, change):
        r = run_validate(path, at.replace(tzinfo=UTC), **kw)
        last = _last_day_over(at, zone, change)
        days = dict(r.valid.select("ds", "y").rows())
        assert max(days) == datetime.combine(last, datetime.min.time()), at
        # the change day is summed whole: 23 or 25 hours (the repeated hour in both offsets), never in part
        if change <= last:
            hours = (_local_midnight(change + timedelta(days=1), zone) - _local_midnight(change, zone)) / HOUR
            assert days[datetime.combine(change, datetime.min.time())] == hours
        assert r.report.reconciled


@pytest.mark.parametrize(("zone", "change"), CHANGES)
@pytest.mark.parametrize("aggregate", ["sum", "none"])
def test_the_observed_bound_of_a_series_is_exact_by_the_instant_across_a_dst_change(tmp_path, zone, change,
                                                                                    aggregate):
    """Regression: `observed_through_series` took a series' shift from its period starting nearest as_of's wall
    time: around a daylight-saving change that was the next period's (the latest of its rows'), and the bound
    moved an hour: New York's 2 November (over at 04:00 UTC on 3 November) read as not observed at 04:30, London's
    26 October (over at 23:00 UTC) at 23:30. It reads the instant in the offset the series was written in at that
    instant, the one rule of ingest. Days written at midnight in their offset (aggregate none) and hours summed to
    days, each as_of half an hour around each day's start (or end)."""
    path = tmp_path / "d.csv"
    if aggregate == "sum":
        _hours_file(path, zone, change)
    else:  # one row a day, at its local midnight with its offset
        days = [change + timedelta(days=k) for k in range(-3, 4)]
        path.write_text("t,id,y\n" + "".join(
            f"{datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone)).isoformat()},a,1.0\n" for d in days))
    source = make_source(path, freq="1d", aggregate=aggregate, id_cols=["id"], time_col="t", target_col="y")
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    shifts = validate(ingest(source, None), source, ValidationConfig()).shifts  # a later run's: every period
    assert shifts is not None
    ats = _around_ends(zone, change)
    through = observed_through_series(pl.DataFrame({"unique_id": ["a"] * len(ats), "at": ats}), freq="1d", tz=None,
                                      aggregate=aggregate, shifts=shifts)
    for at, bound in zip(ats, through.to_list(), strict=True):
        # what ingest kept at that instant (the cut), and the last day by the zone's rules
        kept = ingest(source, at.replace(tzinfo=UTC)).frame.select(pl.col("ds").max()).collect().item()
        last = (_last_day_over(at, zone, change) if aggregate == "sum"
                else max(d for d in (change + timedelta(days=k) for k in range(-3, 4))
                         if _local_midnight(d, zone) <= at))
        assert kept == datetime.combine(last, datetime.min.time()), at
        assert kept <= bound < kept + timedelta(days=1), (at, bound)


@pytest.mark.parametrize(("tz", "month_end", "over"), [
    # London's March ends at 00:00 UTC on 1 April as written ('Z'), 01:00 BST there: not over at 23:30 UTC
    ("Europe/London", datetime(2024, 4, 1), [(-MINUTES, False), (MINUTES, True)]),
    # October ends at 00:00 UTC on 1 November, 00:00 GMT there: over at 00:30 UTC (its rows' BST read 01:00)
    ("Europe/London", datetime(2024, 11, 1), [(-MINUTES, False), (MINUTES, True)]),
    ("America/New_York", datetime(2024, 4, 1), [(-MINUTES, False), (MINUTES, True)]),
    ("America/New_York", datetime(2024, 11, 1), [(-MINUTES, False), (MINUTES, True)]),
])
def test_dates_written_as_midnight_utc_summed_to_months_end_by_the_zone_at_that_instant(tmp_path, tz, month_end,
                                                                                       over):
    """Regression: dates written as midnight UTC timestamps in a source with a tz, summed to months: the month's end
    was read on the ds axis with the latest of its rows' shifts (the zone's offset at its days, not at its end):
    London's March over an hour before it ended (its days were GMT, its end BST), its October an hour after. The end
    is converted by the zone's rules at the instant it names."""
    first = month_end - timedelta(days=60)
    days = [first + timedelta(days=k) for k in range(90)]
    path = tmp_path / "days.csv"
    path.write_text("t,id,y\n" + "".join(f"{d:%Y-%m-%d}T00:00:00Z,a,1.0\n" for d in days))
    source = make_source(path, freq="1mo", aggregate="sum", tz=tz, id_cols=["id"], time_col="t", target_col="y")
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    shifts = validate(ingest(source, None), source, ValidationConfig()).shifts
    month = (month_end - timedelta(days=1)).replace(day=1)
    for delta, is_over in over:
        at = month_end + delta
        kept = ingest(source, at.replace(tzinfo=UTC)).frame.filter(pl.col("y").is_not_null()) \
            .select(pl.col("ds").max()).collect().item()
        assert (kept == month) is is_over, at
        if shifts is not None:  # realized accuracy's bound agrees
            [bound] = observed_through_series(pl.DataFrame({"unique_id": ["a"], "at": [at]}), freq="1mo", tz=tz,
                                              aggregate="sum", shifts=shifts).to_list()
            assert (bound >= month) is is_over, (at, bound)


@pytest.mark.parametrize(("at", "last"), [
    (datetime(2024, 4, 7, 3, 40), date(2024, 4, 5)),  # 6 April (Santiago) ends at 24:00 -04:00: 04:00 UTC
    (datetime(2024, 4, 7, 4, 10), date(2024, 4, 6)),
])
def test_a_day_ending_in_a_repeated_hour_ends_in_the_offset_of_its_latest_instant(tmp_path, at, last):
    """review27: a period's end offset was read as its latest wall time less its latest instant, 'two maxima of one
    row' (`period_offset`, `seen_shifts`); where the clock goes back at midnight (Santiago: 24:00 -03:00 is 23:00
    -04:00, the repeated hour the last of the day), a sale at 23:45 -03:00 and a later one at 23:15 -04:00 are two
    rows: the offset read -03:30, neither of them, and 6 April was over (summed) at 03:30 UTC, half an hour before it
    ended; realized accuracy's bound agreed. The offset is that of the row with the latest instant."""
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    path = tmp_path / "sales.csv"
    path.write_text("t,id,y\n2024-04-05T12:00:00-03:00,a,1.0\n2024-04-06T12:00:00-03:00,a,1.0\n"
                    "2024-04-06T23:45:00-03:00,a,1.0\n2024-04-06T23:15:00-04:00,a,1.0\n2024-04-07T10:00:00-04:00,a,1.0\n")
    kw = {"freq": "1d", "aggregate": "sum", "id_cols": ["id"], "time_col": "t", "target_col": "y"}
    r = run_validate(path, at.replace(tzinfo=UTC), **kw)
    assert r.valid.select(pl.col("ds").max()).item() == datetime.combine(last, datetime.min.time())
    assert r.report.reconciled
    source = make_source(path, **kw)
    shifts = validate(ingest(source, None), source, ValidationConfig()).shifts  # a later run's: every period
    assert shifts is not None
    [bound] = observed_through_series(pl.DataFrame({"unique_id": ["a"], "at": [at]}), freq="1d", tz=None,
                                      aggregate="sum", shifts=shifts).to_list()
    assert datetime.combine(last, datetime.min.time()) <= bound < datetime.combine(last, datetime.min.time()) \
        + timedelta(days=1), bound


# spring forward and fall back, 2025 (New York: 9 March, 2 November; London: 30 March, 26 October)
CHANGES_2025 = [("America/New_York", date(2025, 3, 9)), ("America/New_York", date(2025, 11, 2)),
                ("Europe/London", date(2025, 3, 30)), ("Europe/London", date(2025, 10, 26))]


def _wall(at: datetime, zone: str) -> datetime:
    """The naive UTC instant `at` as naive wall time in `zone`."""
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _series_rows(zone: str, days: list[date], uid: str, aggregate: str) -> str:
    """CSV rows of series `uid` on local `days` of `zone`, each time with the offset it had: the day's local midnight
    (aggregate none), or every hour of the day by the instant (aggregate sum)."""
    lines = []
    for d in days:
        if aggregate == "none":
            lines.append(f"{datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone)).isoformat()},{uid},1.0")
            continue
        t, stop = _local_midnight(d, zone), _local_midnight(d + timedelta(days=1), zone)
        while t < stop:
            lines.append(f"{t.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).isoformat()},{uid},1.0")
            t += HOUR
    return "".join(line + "\n" for line in lines)


# another zone's clock and its change of the same season, for a file mixing zones
OTHER_2025 = {"America/New_York": ("Europe/Berlin", {3: date(2025, 3, 30), 11: date(2025, 10, 26)}),
              "Europe/London": ("America/New_York", {3: date(2025, 3, 9), 10: date(2025, 11, 2)})}


@pytest.mark.parametrize(("zone", "change"), CHANGES_2025)
@pytest.mark.parametrize("aggregate", ["none", "sum"])
@pytest.mark.parametrize("mixed", [False, True])
def test_a_series_without_rows_across_a_change_is_read_on_the_clock_its_source_was_written_on(tmp_path, zone, change,
                                                                                            aggregate, mixed):
    """Regression: without a tz, `observed_through_series` read an as_of in the offset of a series' own period
    observed nearest it. A series that stopped before a daylight-saving change ('b'), or whose rows stop across it
    ('c': a gap), has no period there: its bound after the change was read in the offset before it, an hour off
    (New York's 3 November 00:30 UTC-04:00 for 2 November 23:30 EST: a day too late). The source's rows follow one
    zone's clock (every period of 'a', across the change): an as_of is read on that clock at that instant, for every
    series of the source, as for 'a'."""
    # mixed (tz29): beside them, a series of another zone across its own change: no zone keeps every offset of the
    # file, and each series was read in its own nearest period's offset again (b, c an hour off); each is read on
    # the clock of the series written in its offsets
    other, changes = OTHER_2025[zone]
    theirs = changes[change.month]
    days = [change + timedelta(days=k) for k in range(-5, 6)]
    path = tmp_path / "d.csv"
    path.write_text("t,id,y\n" + _series_rows(zone, days, "a", aggregate)
                    + _series_rows(zone, days[:3], "b", aggregate)
                    + _series_rows(zone, [*days[:4], *days[-2:]], "c", aggregate)
                    + (_series_rows(other, [theirs + timedelta(days=k) for k in range(-3, 4)], "e", aggregate)
                       if mixed else ""))
    source = make_source(path, freq="1d", aggregate=aggregate, id_cols=["id"], time_col="t", target_col="y")
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    shifts = validate(ingest(source, None), source, ValidationConfig()).shifts
    assert shifts is not None
    # half an hour around the ends of the change day and the two days after it
    ats = [e + d for e in (_local_midnight(change + timedelta(days=k), zone) for k in (1, 2, 3))
           for d in (-MINUTES, MINUTES)]
    ids = "abce" if mixed else "abc"
    keys = pl.DataFrame({"unique_id": [u for u in ids for _ in ats], "at": ats * len(ids)})
    through = observed_through_series(keys, freq="1d", tz=None, aggregate=aggregate, shifts=shifts).to_list()
    back = timedelta(days=1) if aggregate == "sum" else timedelta(0)  # a summed day is observed once over
    expected = [_wall(at, other if u == "e" else zone) - back for u in ids for at in ats]
    assert dict(zip(keys.rows(), through, strict=True)) == dict(zip(keys.rows(), expected, strict=True))


@pytest.mark.parametrize(("rows", "clock"), [
    # New York's clock across the autumn change: the offset of 3 November, from 2 November's -04:00
    ([("a", datetime(2025, 11, 1, 4), -4), ("a", datetime(2025, 11, 3, 5), -5), ("b", datetime(2025, 11, 1, 4), -4)],
     {datetime(2025, 11, 2, 4, 30): -4, datetime(2025, 11, 3, 4, 30): -5}),
    # one offset alone (New York in summer, or a clock without daylight saving, alike): no clock
    ([("a", datetime(2025, 10, 1, 4), -4), ("b", datetime(2025, 10, 2, 4), -4)], None),
    # New York's and Tokyo's periods in one source: no zone keeps both, each series reads its own
    ([("a", datetime(2025, 11, 1, 4), -4), ("a", datetime(2025, 11, 3, 5), -5), ("t", datetime(2025, 11, 2, 15), 9)],
     None),
])
def test_the_clock_a_source_was_written_on_is_one_zones_or_none(rows, clock):
    """`written_clock`: the offset at an instant of the one clock every period of a source was written on, where the
    zones that keep them all agree then; none where nothing tells the clock."""
    shifts = pl.DataFrame([(u, c, timedelta(hours=h)) for u, c, h in rows], schema=["unique_id", "cut", "offset"],
                          orient="row")
    ats = [datetime(2025, 11, 2, 4, 30), datetime(2025, 11, 3, 4, 30)]
    got = written_clock(shifts, pl.Series(ats))
    if clock is None:
        assert got is None
        return
    assert {at: off / HOUR for at, off in got.sort("__at").rows()} == clock


NY_AUTUMN = [datetime(2025, 11, 1, 4), datetime(2025, 11, 3, 5)]  # New York's 1 and 3 November (-04:00, -05:00)
BERLIN_AUTUMN = [datetime(2025, 10, 24, 22), datetime(2025, 10, 27, 23)]  # Berlin's 25 and 28 October (+02, +01)


@pytest.mark.parametrize(("rows", "clocks"), [
    # New York's series beside Berlin's: each on its own zone's clock, 'b' (-04:00 alone, stopped before the change)
    # on the clock of the series written in -04:00
    ([("a", NY_AUTUMN[0], -4), ("a", NY_AUTUMN[1], -5), ("b", NY_AUTUMN[0], -4),
      ("g", BERLIN_AUTUMN[0], 2), ("g", BERLIN_AUTUMN[1], 1)],
     {"a": (-4, -5), "b": (-4, -5), "g": (1, 1)}),
    # a fixed +09:00 beside them: no clock reads one offset alone
    ([("a", NY_AUTUMN[0], -4), ("a", NY_AUTUMN[1], -5), ("t", NY_AUTUMN[0], 9),
      ("g", BERLIN_AUTUMN[0], 2), ("g", BERLIN_AUTUMN[1], 1)],
     {"a": (-4, -5), "g": (1, 1)}),
    # +01:00 alone, held by two sets (Berlin's +01/+02 and a +00/+01 clock): no single clock, its own
    ([("g", BERLIN_AUTUMN[0], 2), ("g", BERLIN_AUTUMN[1], 1), ("l", datetime(2025, 10, 24, 23), 1),
      ("l", datetime(2025, 10, 27, 0), 0), ("x", BERLIN_AUTUMN[0], 1)],
     {"g": (1, 1), "l": (0, 0)}),
    # one offset in the whole file: nothing tells a clock
    ([("a", NY_AUTUMN[0], -4), ("b", NY_AUTUMN[1], -4)], {}),
])
def test_each_series_of_a_file_mixing_zones_is_read_on_the_clock_of_its_offsets(rows, clocks):
    """tz29 (`series_clocks`): in a file mixing zones no zone keeps every offset, and each series was read in its own
    nearest period's offset (an hour off after a change it has no row across); each series' clock is that of the
    series written in its offsets, one of one offset alone only where one set holds it."""
    shifts = pl.DataFrame([(u, c, timedelta(hours=h)) for u, c, h in rows], schema=["unique_id", "cut", "offset"],
                          orient="row")
    ats = [datetime(2025, 11, 2, 4, 30), datetime(2025, 11, 3, 4, 30)]
    ids = sorted({u for u, _, _ in rows})
    got = series_clocks(shifts, pl.DataFrame({"unique_id": [u for u in ids for _ in ats], "__at": ats * len(ids)}))
    found: dict[str, list[float]] = {}
    for uid, _, off in ([] if got is None else got.sort("unique_id", "__at").rows()):
        found.setdefault(uid, []).append(off / HOUR)
    assert {u: tuple(v) for u, v in found.items()} == clocks


def test_times_without_an_offset_beside_times_with_one_make_no_zone_s_clock(tmp_path):
    """Regression: a daily file without a tz writing '2024-07-01T09:00:00+01:00' in summer and '2024-01-02 09:00' (no
    offset) in winter: its winter rows are quarantined (`time_zone_ambiguous`: their zone is not known), but they were
    kept among its periods seen apart (`ValidationResult.shifts`) read as UTC, offset 0: beside +01:00, the clock of
    Europe/London, a zone no one declared nor the quarantine reason named. Freshness and realized accuracy then read
    the series on London's clock after the autumn change (an as_of at 08:30 UTC on 5 November before that day's 09:00,
    a day behind). The series keeps its own offset: one offset alone says nothing of daylight saving. The reason names
    a row of each kind (it named its own alone)."""
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    days = [datetime(2024, 1, 1, 9) + timedelta(days=i) for i in range(330)]
    summer = [datetime(2024, 3, 31) <= d < datetime(2024, 10, 27) for d in days]
    path = tmp_path / "d.csv"
    path.write_text("date,id,val\n" + "".join(f"{d:%Y-%m-%dT%H:%M:%S}+01:00,a,{i}\n" if s else f"{d:%Y-%m-%d %H:%M},a,{i}\n"
                                              for i, (d, s) in enumerate(zip(days, summer, strict=True))))
    source = make_source(path)
    result = validate(ingest(source, None), source, ValidationConfig(quarantine_threshold=1.0))
    reasons = result.quarantined.get_column("reason")
    # each names its row and a row written with an offset, the first (not a zone guessed of them)
    assert reasons.len() == summer.count(False), reasons
    assert reasons[0] == ("time '2024-01-01 09:00' has no UTC offset while other rows do, such as "
                          "'2024-03-31T09:00:00+01:00'; declare the time zone of the times written without one (--tz "
                          "UTC, --tz Europe/Berlin: the source's tz)"), reasons[0]
    assert result.shifts is not None and set(result.shifts.get_column("offset")) == {timedelta(hours=1)}
    at = datetime(2024, 11, 5, 8, 30)
    assert written_clock(result.shifts, pl.Series([at])) is None
    keys = pl.DataFrame({"unique_id": ["a"], "at": [at]})
    through = observed_through_series(keys, freq="1d", tz=None, shifts=result.shifts).to_list()
    # (the latest ds seen: its 09:00 had come at 09:30 +01:00, 5 November; on London's 08:30 it had not, 4 November)
    assert [t.date() for t in through] == [date(2024, 11, 5)], through


def test_a_backfill_keeps_the_time_of_day_lags_its_run_kept_beside_offsets_written_after_its_as_of(tmp_path):
    """Regression: a daily file without a tz writing '2024-01-01 09:00' (no offset) for ten days, then
    '2024-01-11T09:00:00+01:00': a backfill at 6 January 12:00 UTC validates its six rows (no time with an offset is
    by then, `time_zone_ambiguous` quarantines none) but its periods seen apart (`ValidationResult.shifts`) were None:
    the rows without an offset were left out as beside offsets by the rows after as_of too, while the run at that
    instant, before the later rows were written, kept their 9-hour lags."""
    days = [datetime(2024, 1, 1, 9) + timedelta(days=i) for i in range(14)]
    lines = [f"{d:%Y-%m-%d %H:%M},a,{i}\n" if i < 10 else f"{d:%Y-%m-%dT%H:%M:%S}+01:00,a,{i}\n"
             for i, d in enumerate(days)]
    full, then = tmp_path / "full.csv", tmp_path / "then.csv"
    full.write_text("date,id,val\n" + "".join(lines))
    then.write_text("date,id,val\n" + "".join(lines[:6]))
    at = datetime(2024, 1, 6, 12, tzinfo=UTC)
    backfill, run = run_validate(full, at), run_validate(then, at)
    assert backfill.valid.height == run.valid.height == 6 and run.quarantined.height == 0
    assert run.shifts is not None and run.shifts.height == 6
    assert backfill.shifts is not None and backfill.shifts.equals(run.shifts), backfill.shifts


def test_a_time_of_day_the_spring_change_skips_is_seen_from_the_jump_as_ingest_sees_it(tmp_path):
    """Regression: New York, daily, start-labelled '02:30' every day of 7-14 March 2024: 10 March's 02:30 is a time
    the clocks skip (02:00 EST is 03:00 EDT, 07:00 UTC). Ingest sees that day from the jump, but its zone's offset
    there was null and taken as 0: its cut was 02:30 UTC, and realized accuracy and freshness had 10 March observed
    from 03:00 to 06:59 UTC, when a run at that instant had not kept it."""
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    days = [date(2024, 3, 7) + timedelta(days=k) for k in range(8)]
    path = tmp_path / "d.csv"
    path.write_text("t,id,y\n" + "".join(f"{d} 02:30,a,1.0\n" for d in days))
    source = make_source(path, freq="1d", tz="America/New_York", id_cols=["id"], time_col="t", target_col="y")
    shifts = validate(ingest(source, None), source, ValidationConfig()).shifts
    assert shifts is not None
    cuts = dict(zip(shifts.get_column("ds").dt.date(), shifts.get_column("cut"), strict=True))
    assert cuts[date(2024, 3, 10)] == datetime(2024, 3, 10, 7), cuts
    assert cuts[date(2024, 3, 9)] == datetime(2024, 3, 9, 7, 30) and cuts[date(2024, 3, 11)] == datetime(2024, 3, 11, 6, 30)
    ats = [datetime(2024, 3, 10, h, m) for h, m in ((2, 0), (3, 0), (6, 59), (7, 0), (7, 1))]
    through = observed_through_series(pl.DataFrame({"unique_id": ["a"] * len(ats), "at": ats}), freq="1d",
                                      tz="America/New_York", shifts=shifts).to_list()
    for at, bound in zip(ats, through, strict=True):
        kept = ingest(source, at.replace(tzinfo=UTC)).frame.select(pl.col("ds").max()).collect().item()
        assert kept.date() == (date(2024, 3, 10) if at >= datetime(2024, 3, 10, 7) else date(2024, 3, 9)), at
        assert kept <= bound < kept + timedelta(days=1), (at, bound)


@pytest.mark.parametrize(("written", "lagged"), [("{d}", False), ("{d:%m/%d/%Y}", False), ("{d:%d.%m.%Y}", False),
                                                  ("{d} 09:00", True), ("{d}T09:00:00", True),
                                                  ("{d:%m/%d/%Y} 9:00 AM", True), ("{d} 00:00", True)])
def test_a_file_of_dates_alone_builds_no_time_of_day_lag(tmp_path, written, lagged):
    """Regression (performance): the aggregate of periods seen apart (`sources.seen_shifts_expr`) built a time-of-day
    lag and each row's zone offset for every daily source with a tz, a file of dates alone too, whose every row it
    then left out (0.9 s per 1,000,000 rows). A text column none of whose values may hold a time of day
    (`_time_profile`'s trait 'time_of_day') builds none; one that may, does."""
    from flowcast.data.sources import seen_shifts_expr

    days = [date(2024, 3, 7) + timedelta(days=k) for k in range(8)]
    path = tmp_path / "d.csv"
    path.write_text("t,id,y\n" + "".join(f"{written.format(d=d)},a,1.0\n" for d in days))
    source = make_source(path, freq="1d", tz="America/New_York", id_cols=["id"], time_col="t", target_col="y")
    ingested = ingest(source, datetime(2024, 3, 12, tzinfo=UTC))
    assert ("time_of_day" in ingested.time_profile.traits) == lagged
    assert (seen_shifts_expr(ingested) is not None) == lagged
    assert ingested.frame.select(pl.len()).collect().item() == 5


@pytest.mark.parametrize(("written", "lagged"), [
    ("{d}T00:30", True), ("{d:%m/%d/%Y} 12:30 PM", True), ("{d} 00:30:00+01:00", True), ("{d:%Y%m%d} 0030", True),
    ("{d} 24:00", False), ("{d}", False)])
def test_a_time_of_day_the_texts_guess_misses_keeps_its_lag(tmp_path, monkeypatch, written, lagged):
    """Regression (ingest53): whether a text column holds a time of day was a guess from its text alone
    (`_TIME_OF_DAY_RE`), and a shape it missed built no lag: the rows were seen from the start of their day, without
    a word. The parsed times decide where the guess says none: with a guess that matches nothing, each shape keeps the
    lags the run reads ('20240101 0030', ISO-8601's basic format, is read since ingest53c: its lag is kept; '24:00' is
    the next midnight: none)."""
    from flowcast.data import day_month
    from flowcast.data.sources import seen_shifts_expr

    days = [date(2024, 3, 7) + timedelta(days=k) for k in range(8)]
    path = tmp_path / "d.csv"
    path.write_text("t,id,y\n" + "".join(f"{written.format(d=d)},a,1.0\n" for d in days))
    source = make_source(path, freq="1d", tz="America/New_York", id_cols=["id"], time_col="t", target_col="y")

    def lags() -> list:  # the rows seen after the start of their day (none: no aggregate built)
        ingested = ingest(source, datetime(2024, 3, 20, tzinfo=UTC))
        expr = seen_shifts_expr(ingested)
        seen = [] if expr is None else ingested.unfiltered.select(expr).collect().item().to_list()
        return [s for s in seen if s["lag"] != timedelta(0)]

    guessed = lags()
    monkeypatch.setattr(day_month, "_TIME_OF_DAY_RE", r"^no shape of time$")
    missed = lags()
    assert missed == guessed, (missed, guessed)
    assert (len(missed) == len(days)) if lagged else not missed, missed


@pytest.mark.parametrize(("written", "alone"), [("{d}", True), ("{d:%m/%d/%Y}", True), ("{d:%d.%m.%y}", True),
                                                 ("{d:%Y/%m/%d}", True), ("{d:%Y%m%d} 0030", False),
                                                 ("{d}T00:30", False)])
def test_a_file_of_dates_alone_is_not_scanned_for_a_time_of_day(tmp_path, monkeypatch, written, alone):
    """fixA53 (performance): where the text's guess found no time of day, every ingest read the parsed time of every
    row (`_parsed_time_of_day`: 0.4-0.6 s per 1,000,000 date-only rows). A column whose every value is a date alone
    (`TimeProfile.dates_alone`, of the profile's pass over its distinct values) has none to find: not scanned. Any
    other shape still is (the guess made to match nothing here, as where it misses a shape)."""
    from flowcast.data import day_month, sources

    calls: list[bool] = []
    scan = sources._parsed_time_of_day
    monkeypatch.setattr(sources, "_parsed_time_of_day", lambda *a: calls.append(scan(*a)) or calls[-1])
    monkeypatch.setattr(day_month, "_TIME_OF_DAY_RE", r"^no shape of time$")
    days = [date(2024, 3, 7) + timedelta(days=k) for k in range(8)]
    path = tmp_path / "d.csv"
    path.write_text("t,id,y\n" + "".join(f"{written.format(d=d)},a,1.0\n" for d in days))
    source = make_source(path, freq="1d", tz="America/New_York", id_cols=["id"], time_col="t", target_col="y")
    ingested = ingest(source, datetime(2024, 3, 20, tzinfo=UTC))
    assert ingested.time_profile.dates_alone is alone
    assert len(calls) == (0 if alone else 1), calls


def test_planned_rows_with_an_offset_leave_out_the_times_without_one_as_validation_quarantines_them(tmp_path):
    """The rows that tell whether a time without an offset is beside times with one are those validation reads: a
    backfill's rows by its as_of and its planned rows after it (a future covariate's value). The same file as above
    with 'promo' declared future: the planned '+01:00' rows quarantine the rows without an offset
    (`time_zone_ambiguous`), which then make no period seen apart (their lags were kept, read as UTC)."""
    days = [datetime(2024, 1, 1, 9) + timedelta(days=i) for i in range(14)]
    path = tmp_path / "full.csv"
    path.write_text("date,id,val,promo\n" + "".join(
        f"{d:%Y-%m-%d %H:%M},a,{i},1\n" if i < 10 else f"{d:%Y-%m-%dT%H:%M:%S}+01:00,a,{i},1\n"
        for i, d in enumerate(days)))
    result = run_validate(path, datetime(2024, 1, 6, 12, tzinfo=UTC), future_cols=["promo"])
    assert set(result.quarantined.get_column("check")) == {"time_zone_ambiguous"} and result.quarantined.height == 10
    assert result.shifts is None
