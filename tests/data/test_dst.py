"""Daylight saving (issue 9.2): sub-daily ds are instants (naive UTC) through validation, the grid,
calendar features and forecasts; local time serves calendar features only.

Australia/Melbourne in 2020: on 5 April at 03:00 AEDT (+11:00) the clocks go back to 02:00 AEST
(+10:00), so 02:00-02:59 happens twice; on 4 October at 02:00 AEST they jump to 03:00 AEDT, so
02:00-02:59 never happens."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from data_helpers import make_source, run_validate

from flowcast.config import Settings
from flowcast.data.preprocess import preprocess
from flowcast.data.validate import take_valid

MELBOURNE = ZoneInfo("Australia/Melbourne")
HALF_HOUR = timedelta(minutes=30)
# two series of 4 days of half-hours around each change of 2020, as instants (UTC)
APRIL_START = datetime(2020, 4, 3, 13, 0)  # 2020-04-04T00:00+11:00
OCTOBER_START = datetime(2020, 10, 1, 14, 0)  # 2020-10-02T00:00+10:00
N = 4 * 48


def instants(start: datetime, n: int = N) -> list[datetime]:
    return [start + i * HALF_HOUR for i in range(n)]


def local_text(instant_utc: datetime, offset: bool) -> str:
    local = instant_utc.replace(tzinfo=UTC).astimezone(MELBOURNE)
    return local.isoformat(timespec="minutes") if offset else local.replace(tzinfo=None).isoformat(timespec="minutes")


def value(i: int, s: int) -> float:
    return float(100 + 10 * s + (i % 48) + (i * 7) % 5)


def write_two_changes(write_csv, offset: bool) -> str:
    lines = ["time,meter,kwh"]
    for s, start in enumerate((APRIL_START, OCTOBER_START)):
        lines += [f"{local_text(t, offset)},{'AO'[s]},{value(i, s)}" for i, t in enumerate(instants(start))]
    return write_csv("\n".join(lines) + "\n")


def source_kw(**kw) -> dict:
    return {"id_cols": ["meter"], "time_col": "time", "target_col": "kwh", "freq": "30m",
            "tz": "Australia/Melbourne", **kw}


def test_half_hours_written_with_offsets_across_both_changes_are_all_valid_instants(write_csv):
    """Regression: ds was naive local wall time, so in April two real instants (02:30+11:00 and
    02:30+10:00) collided and were quarantined as duplicate_conflict, and in October the hour
    that never existed was a gap that preprocessing inserted and imputed."""
    path = write_two_changes(write_csv, offset=True)
    r = run_validate(path, **source_kw())
    assert r.report.rows_quarantined == 0 and r.report.checks == {}
    assert r.report.rows_valid == 2 * N
    expected = instants(APRIL_START) + instants(OCTOBER_START)
    assert r.valid["ds"].to_list() == expected  # every instant, in UTC, none merged
    # the April series holds local 02:00 and 02:30 twice, as two distinct instants each
    april = r.valid.filter(pl.col("unique_id") == "A")
    local = april.select(pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone("Australia/Melbourne")
                         .dt.strftime("%Y-%m-%d %H:%M").alias("local"))["local"]
    assert local.filter(local == "2020-04-05 02:30").len() == 2

    settings = Settings(model={"lookback": 12}, horizon=4, preprocess={"val_size": 4})
    src = make_source(path, **source_kw())
    td, summary = preprocess(take_valid(r), src, settings, datetime(2020, 12, 1, tzinfo=UTC))
    assert (summary.rows_inserted, summary.rows_imputed, summary.excluded) == (0, 0, [])
    assert td.frame["ds"].to_list() == expected and td.meta.tz == "Australia/Melbourne"

    # calendar features follow LOCAL time: the two instants of local 02:30 on 5 April share the
    # time-of-day feature, and it matches 02:30 on another day
    cal = td.with_calendar().filter(pl.col("unique_id") == "A")
    twice = [datetime(2020, 4, 4, 15, 30), datetime(2020, 4, 4, 16, 30)]  # 02:30+11:00, 02:30+10:00
    day = cal.filter(pl.col("ds").is_in(twice))
    other = cal.filter(pl.col("ds") == datetime(2020, 4, 6, 16, 30))  # 02:30+10:00 the day after
    assert day.height == 2 and day["cal_day_sin"].n_unique() == 1
    assert day["cal_day_sin"][0] == pytest.approx(other["cal_day_sin"][0])

    # the horizon: fixed 30-minute steps in UTC after each series' last instant; across the October
    # change (the second series ends at local 00:00+11:00 on 6 October) local time moves on normally
    fut = td.future_frame(4)
    for uid, start in (("A", APRIL_START), ("O", OCTOBER_START)):
        got = fut.filter(pl.col("unique_id") == uid)["ds"].to_list()
        assert got == [start + (N - 1 + k) * HALF_HOUR for k in range(1, 5)]
    # and the calendar features there are the local time of day of each instant
    local_minutes = [((t.replace(tzinfo=UTC).astimezone(MELBOURNE)).hour * 60
                      + (t.replace(tzinfo=UTC).astimezone(MELBOURNE)).minute) for t in fut["ds"].to_list()]
    assert fut["cal_day_sin"].to_list() == pytest.approx([math.sin(2 * math.pi * m / 1440) for m in local_minutes])


def test_forecasts_cross_the_spring_change_on_utc_instants(write_csv):
    """A series that ends right before the October change is forecast on consecutive instants:
    local 01:30+10:00 is followed by 03:00+11:00 (30 minutes later), never by a 02:00 that does
    not exist."""
    from flowcast.models.baselines import baseline_forecast

    end = datetime(2020, 10, 3, 15, 30)  # 2020-10-04T01:30+10:00
    times = [end - k * HALF_HOUR for k in range(4 * 48)][::-1]
    text = "time,meter,kwh\n" + "".join(f"{local_text(t, True)},m,{value(i, 0)}\n" for i, t in enumerate(times))
    path = write_csv(text)
    r = run_validate(path, **source_kw())
    td, _ = preprocess(take_valid(r), make_source(path, **source_kw()),
                       Settings(model={"lookback": 12}, horizon=4, preprocess={"val_size": 4}), None)
    fc = baseline_forecast("seasonal_naive", td, 4)
    assert fc["ds"].to_list() == [end + k * HALF_HOUR for k in range(1, 5)]
    assert [local_text(t, True) for t in fc["ds"].to_list()] == [
        "2020-10-04T03:00+11:00", "2020-10-04T03:30+11:00", "2020-10-04T04:00+11:00", "2020-10-04T04:30+11:00"]


# ------------------------------------------------------------------ naive local times with a tz
def naive_april(write_csv, extra: str = "") -> str:
    """The April series written as naive local wall times, as many exports do: local 02:00 and
    02:30 on 5 April appear twice, in time order (the +11:00 rows first)."""
    lines = ["time,meter,kwh"] + [f"{local_text(t, False)},A,{value(i, 0)}" for i, t in enumerate(instants(APRIL_START))]
    return write_csv("\n".join(lines) + "\n" + extra)


def test_naive_local_times_quarantine_the_repeated_hour_and_a_skipped_one_by_default(write_csv):
    path = naive_april(write_csv, extra="2020-10-04T02:30,A,1\n")  # a time the clocks skipped
    r = run_validate(path, **source_kw())
    q = r.quarantined.sort("source_row")
    assert r.report.checks == {"time_ambiguous": 4, "time_nonexistent": 1}
    assert q.filter(pl.col("check") == "time_ambiguous")["time"].to_list() == [
        "2020-04-05T02:00", "2020-04-05T02:30", "2020-04-05T02:00", "2020-04-05T02:30"]
    reason = q.filter(pl.col("check") == "time_ambiguous")["reason"][1]
    assert reason.startswith("local time '2020-04-05T02:30' occurs twice in Australia/Melbourne")
    assert "ambiguous = 'infer'" in reason and "(--ambiguous infer)" in reason
    assert q.filter(pl.col("check") == "time_nonexistent")["reason"].to_list() == [
        ("local time '2020-10-04T02:30' does not exist in Australia/Melbourne (the clocks skip it when daylight "
         "saving starts); write times with their UTC offset, or, if the file is in standard time all year (it holds "
         "this skipped hour), declare tz = 'Etc/GMT-10' (--tz Etc/GMT-10: UTC+10:00, no daylight saving)")]
    # never two instants silently merged into one: the valid rows are distinct instants
    assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined == N + 1
    assert r.valid["ds"].is_unique().all()


def test_naive_local_times_with_ambiguous_infer_take_file_order(write_csv):
    r = run_validate(naive_april(write_csv), **source_kw(ambiguous="infer"))
    assert r.report.rows_quarantined == 0
    assert r.valid["ds"].to_list() == instants(APRIL_START)  # the same instants as the file with offsets


def test_ambiguous_infer_reads_a_file_written_newest_first(write_csv):
    """Regression (new-user trial): a series written newest first (a dashboard's export) with ambiguous = 'infer'
    took its first row of the repeated hour for the earlier instant, which is the later one there: the two values
    were swapped without a word. The order of the series in the file decides."""
    lines = naive_april(write_csv).read_text().splitlines()
    path = write_csv("\n".join([lines[0], *lines[:0:-1]]) + "\n", name="newest_first.csv")
    r = run_validate(path, **source_kw(ambiguous="infer"))
    assert r.report.rows_quarantined == 0
    oldest_first = run_validate(naive_april(write_csv), **source_kw(ambiguous="infer")).valid
    assert r.valid.sort("ds").select("ds", "y").equals(oldest_first.select("ds", "y"))


def test_infer_cannot_pair_a_lone_repeated_hour(write_csv):
    """With one of the two 02:30 rows missing, file order cannot say which instant the other is."""
    lines = naive_april(write_csv).read_text().splitlines()
    drop = [i for i, line in enumerate(lines) if line.startswith("2020-04-05T02:30")][1]
    path = write_csv("\n".join(lines[:drop] + lines[drop + 1:]) + "\n", name="lone.csv")
    r = run_validate(path, **source_kw(ambiguous="infer"))
    assert r.report.checks == {"time_ambiguous": 1}
    assert "pairs exactly two rows of a series" in r.quarantined["reason"][0]


def test_earliest_maps_both_rows_to_one_instant_and_the_conflict_is_quarantined(write_csv):
    """A declared earliest/latest fits data that holds the repeated hour once; with both rows, the
    two values meet on one instant and are quarantined as a conflict, never merged."""
    r = run_validate(naive_april(write_csv), **source_kw(ambiguous="earliest"))
    assert r.report.checks == {"duplicate_conflict": 4}


def test_hourly_grid_follows_the_zones_standard_time(write_csv):
    """Adelaide is UTC+9:30 (+10:30 in summer): its hours are half past the hour in UTC, on the grid
    (truncating the instants to whole UTC hours put every row off the grid)."""
    text = "time,meter,kwh\n" + "".join(f"2020-04-0{d}T{h:02d}:00,m,{h}\n" for d in (1, 2) for h in range(24))
    r = run_validate(write_csv(text), **source_kw(freq="1h", tz="Australia/Adelaide"))
    assert r.report.rows_quarantined == 0
    ds = r.valid["ds"]
    assert all(t.minute == 30 for t in ds.to_list()) and ds.is_unique().all()
    steps = ds.diff().drop_nulls().unique().to_list()
    assert steps == [timedelta(hours=1)] and ds[0] == datetime(2020, 3, 31, 13, 30)  # 00:00+10:30


def test_local_times_without_a_tz_name_the_hour_daylight_saving_repeats(write_csv):
    """Regression (new-user trial): hourly Berlin meter readings exported as naive local times and read without a tz
    had the two rows of 02:00 on 2023-10-29 quarantined as "2 rows for (m1, 2023-10-29 02:00:00 UTC) with different
    y values", nothing saying that this is the hour the clocks repeat there; the reason names the zones and the tz
    to declare. Another duplicate hour says nothing of it."""
    hours = ["2023-10-29 00:00", "2023-10-29 01:00", "2023-10-29 02:00", "2023-10-29 02:00", "2023-10-29 03:00",
             "2023-10-30 05:00", "2023-10-30 05:00"]
    body = "".join(f"{h},m1,{i}\n" for i, h in enumerate(hours))
    r = run_validate(write_csv("date,id,val\n" + body), freq="1h")
    reasons = dict(zip(r.quarantined["date"].to_list(), r.quarantined["reason"].to_list(), strict=True))
    assert reasons["2023-10-29 02:00"] == (
        "2 rows for (m1, 2023-10-29 02:00 UTC) with different y values (2.0 / 3.0) (the hour that occurs twice when daylight "
        "saving ends in Europe/Berlin: local times written without their UTC offset? declare the source's tz and "
        "ambiguous = 'infer' (--tz Europe/Berlin --ambiguous infer), or export the times with their offset)")
    assert reasons["2023-10-30 05:00"] == "2 rows for (m1, 2023-10-30 05:00 UTC) with different y values (5.0 / 6.0)"
    assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined == 7


def test_a_fixed_offset_zone_named_like_a_region_is_said_on_sub_daily_data(write_csv):
    """Regression (new-user trial): '--tz EST' was accepted and said nothing: IANA's EST is UTC-05:00 all year, so
    a user meaning New York's local time had every summer time read an hour off. The summary (log, data-quality
    report) says so for sub-daily data; America/New_York and daily data say nothing."""
    from flowcast.data.preprocess import fixed_zone_hint

    text = "time,meter,kwh\n" + "".join(f"2024-07-01T{h:02d}:00,m,{h}\n" for h in range(24))
    path = write_csv(text)
    src = make_source(path, time_col="time", id_cols=["meter"], target_col="kwh", freq="1h", tz="EST")
    r = run_validate(path, time_col="time", id_cols=["meter"], target_col="kwh", freq="1h", tz="EST")
    _, summary = preprocess(take_valid(r), src, Settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2}),
                            None)
    assert summary.tz_hint == (
        "tz 'EST' is UTC-05:00 all year, without daylight saving: if the times are local times of a place with summer "
        "time, declare its zone (e.g. America/New_York); keep 'EST' if the source writes standard time all year")
    assert fixed_zone_hint("America/New_York", "1h") is None and fixed_zone_hint("EST", "1d") is None


def test_the_hour_daylight_saving_skips_missing_from_naive_times_without_a_tz_is_said(write_csv):
    """Regression (new-user trial): hourly New York readings across 10 March written without their offset and read
    without a tz had the skipped 02:00 imputed, one point among the run's imputed ones, without a word (the repeated
    hour in November is quarantined naming the zone). The summary names the zone; a UTC file that has that hour, and
    the same file read with --tz America/New_York, say nothing."""
    def run(hours: list[str], tz: str | None = None) -> str | None:
        path = write_csv("time,meter,kwh\n" + "".join(f"{h},m,{i}\n" for i, h in enumerate(hours)))
        kw = {"time_col": "time", "id_cols": ["meter"], "target_col": "kwh", "freq": "1h", "tz": tz}
        r = run_validate(path, **kw)
        settings = Settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2})
        return preprocess(take_valid(r), make_source(path, **kw), settings, None)[1].tz_hint

    every = [f"2024-03-{d:02d}T{h:02d}:00" for d in (9, 10, 11) for h in range(24)]
    local = [t for t in every if t != "2024-03-10T02:00"]  # New York's clocks skip it
    said = run(local)
    assert said is not None and said.startswith(
        "the hour the clocks skip when daylight saving starts in America/New_York, America/Chicago"), said
    assert "(read as 2024-03-10 02:00 UTC) is missing from every series and was imputed" in said
    assert "(--tz America/New_York)" in said
    assert run(every) is None  # UTC times: the hour is there
    assert run(local, tz="America/New_York") is None


@pytest.mark.parametrize(("minutes", "said"), [
    (15, ("is missing from every series and is a gap longer than max_gap that every series starts after (its 208 rows "
         "before it not used)")),  # the skipped hour is 4 periods > max_gap 3: a cut, not imputed
    (30, "is missing from every series and was imputed"),  # 2 periods: imputed, as before
])
def test_the_hour_daylight_saving_skips_in_quarter_hours_without_a_tz_names_the_tz_not_max_gap(write_csv, minutes,
                                                                                               said):
    """Regression (newuser22): 15-minute Berlin meter readings written as wall times and read without --tz lost the
    skipped hour, 4 periods, more than the default max_gap of 3: every series started after it (1,160 of 1,920 rows
    not used), the reason said to raise max_gap, and no time-zone note was given (the hint looked at the imputed
    points alone). The hint now says so and each cut series' reason names the --tz that reads the hour."""
    wall = [datetime(2024, 3, 30) + timedelta(minutes=minutes * i) for i in range(3 * 24 * 60 // minutes)]
    local = [t for t in wall if not (t.date().day == 31 and t.hour == 2)]  # Europe's clocks skip 02:00-03:00
    rows = "".join(f"{t:%Y-%m-%dT%H:%M},{m},{i % 7 + 1}\n" for m in ("a", "b") for i, t in enumerate(local))
    path = write_csv("time,meter,kwh\n" + rows)
    kw = {"time_col": "time", "id_cols": ["meter"], "target_col": "kwh", "freq": f"{minutes}m", "tz": None}
    settings = Settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2})
    summary = preprocess(take_valid(run_validate(path, **kw)), make_source(path, **kw), settings, None)[1]
    assert summary.tz_hint is not None and said in summary.tz_hint, summary.tz_hint
    assert "(--tz Europe/" in summary.tz_hint, summary.tz_hint
    if minutes == 15:
        assert [g["unique_id"] for g in summary.gap_cut] == ["a", "b"]
        assert all(g["reason"].endswith("(--tz Europe/Berlin reads it (the hour its clocks skip, read as 2024-03-31 "
                                        "02:00 UTC); [preprocess] max_gap = 4 imputes it)") for g in summary.gap_cut)
    kw["tz"] = "Europe/Berlin"
    summary = preprocess(take_valid(run_validate(path, **kw)), make_source(path, **kw), settings, None)[1]
    assert summary.tz_hint is None and not summary.gap_cut and summary.rows_imputed == 0


def test_the_repeated_hour_quarantined_in_quarter_hours_names_ambiguous_infer_not_max_gap(write_csv):
    """Regression (newuser22): 15-minute Berlin wall times read with --tz Europe/Berlin have the hour repeated on 27
    October quarantined (time_ambiguous, by default): 8 quarter hours in UTC, a gap longer than max_gap, so every
    series started after it (960 of 1,920 rows not used) and each reason said only `[preprocess] max_gap = 8
    imputes it`. It names --ambiguous infer first; read so, nothing is quarantined or cut."""
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2024, 10, 26, tzinfo=UTC)
    wall = [(start + timedelta(minutes=15 * i)).astimezone(tz) for i in range(2 * 96)]
    rows = "".join(f"{t:%Y-%m-%dT%H:%M},{m},{i % 7 + 1}\n" for m in ("a", "b") for i, t in enumerate(wall))
    path = write_csv("time,meter,kwh\n" + rows)
    kw = {"time_col": "time", "id_cols": ["meter"], "target_col": "kwh", "freq": "15m", "tz": "Europe/Berlin"}
    settings = Settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2})
    summary = preprocess(take_valid(run_validate(path, **kw)), make_source(path, **kw), settings, None)[1]
    assert [g["unique_id"] for g in summary.gap_cut] == ["a", "b"]
    assert all(g["reason"].endswith(
        "(--ambiguous infer reads it (the hour repeated when daylight saving ends in Europe/Berlin, from 2024-10-27 "
        "00:00 UTC (2024-10-27 02:00 +02:00 Europe/Berlin): its rows were quarantined as time_ambiguous); "
        "[preprocess] max_gap = 8 imputes it)")
        for g in summary.gap_cut), summary.gap_cut
    kw["ambiguous"] = "infer"
    r = run_validate(path, **kw)
    summary = preprocess(take_valid(r), make_source(path, **kw), settings, None)[1]
    assert r.report.rows_quarantined == 0 and not summary.gap_cut


@pytest.mark.parametrize("gap", ["2024-03-10T02:00", "2024-03-10T03:00"])
def test_one_series_missing_the_hour_daylight_saving_skips_is_no_hint_of_local_times(write_csv, gap):
    """Regression: the hint fired when ANY series had the skipped hour imputed, while it says the hour 'is missing
    from every series': a UTC file of two meters, one of which happened to miss 2024-03-10 02:00 (a gap like any
    other, the other meter has that hour), was told to declare --tz America/New_York, which would misread it. The
    hour must be missing from every series that spans it; a gap elsewhere says nothing either."""
    every = [f"2024-03-{d:02d}T{h:02d}:00" for d in (9, 10, 11) for h in range(24)]
    rows = "".join(f"{h},a,{i}\n" for i, h in enumerate(every))
    rows += "".join(f"{h},b,{i + 1}\n" for i, h in enumerate(every) if h != gap)
    path = write_csv("time,meter,kwh\n" + rows)
    kw = {"time_col": "time", "id_cols": ["meter"], "target_col": "kwh", "freq": "1h", "tz": None}
    r = run_validate(path, **kw)
    settings = Settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2})
    summary = preprocess(take_valid(r), make_source(path, **kw), settings, None)[1]
    assert summary.rows_imputed == 1  # the gap was imputed
    assert summary.tz_hint is None, summary.tz_hint


@pytest.mark.parametrize(("tz", "standard"), [("Australia/Melbourne", ("Etc/GMT-10", "UTC+10:00")),
                                              ("America/New_York", ("Etc/GMT+5", "UTC-05:00")),
                                              ("Europe/London", ("UTC", "UTC")),
                                              ("Asia/Kolkata", None), ("Australia/Adelaide", None)])
def test_standard_time_zone_of_a_zone_with_daylight_saving(tz, standard):
    from flowcast.data.schemas import standard_time_zone

    assert standard_time_zone(tz) == standard


def test_a_file_in_standard_time_all_year_is_told_the_zone_that_reads_it(write_csv):
    """Regression: vic_elec's half hours are written in standard time all year (48 every day, the skipped hour
    too); read with --tz Australia/Melbourne the skipped and repeated hours were quarantined, the 4-period hole cut
    the series there (4,564 of 17,520 rows unused), and nothing named the zone that reads it: the skipped hour's
    reason names Etc/GMT-10, which reads every row."""
    aest = timezone(timedelta(hours=10))
    lines = ["time,meter,kwh"] + [
        f"{t.replace(tzinfo=UTC).astimezone(aest).replace(tzinfo=None).isoformat(timespec='minutes')},O,{value(i, 1)}"
        for i, t in enumerate(instants(OCTOBER_START))]
    path = write_csv("\n".join(lines) + "\n")
    r = run_validate(path, **source_kw())
    reasons = r.quarantined.filter(pl.col("check") == "time_nonexistent")["reason"].to_list()
    assert len(reasons) == 2 and all("declare tz = 'Etc/GMT-10' (--tz Etc/GMT-10: UTC+10:00" in x for x in reasons)
    fixed = run_validate(path, **source_kw(tz="Etc/GMT-10"))
    assert fixed.report.rows_quarantined == 0 and fixed.report.rows_valid == N


def test_ambiguous_infer_reads_a_backfills_history_as_its_run_did(tmp_path):
    """Regression (a leak after as_of): whether a series is written newest first (ambiguous = 'infer') was decided
    from all its rows, so rows written after as_of in the other order (appended newest first) swapped the two values
    of the hour a backfill's history repeats, which its run had read in file order. The rows by as_of decide."""
    history = "time,meter,kwh\n" + "".join(f"2023-10-29 {h},m,{v}\n" for h, v in (
        ("00:00", 0), ("01:00", 1), ("02:00", 2), ("02:00", 3), ("03:00", 4), ("04:00", 5)))
    later = "".join(f"2023-10-29 {h:02d}:00,m,{h + 1}\n" for h in range(12, 4, -1))
    kw = {"id_cols": ["meter"], "time_col": "time", "target_col": "kwh", "freq": "1h", "tz": "Europe/Berlin",
          "ambiguous": "infer"}
    as_of = datetime(2023, 10, 29, 3, 30, tzinfo=UTC)  # 04:30 in Berlin
    out = []
    for name, text in (("run.csv", history), ("backfill.csv", history + later)):
        (tmp_path / name).write_text(text)
        out.append(run_validate(tmp_path / name, as_of=as_of, **kw))
    run, backfill = out
    assert run.valid.sort("ds").filter(pl.col("ds") == datetime(2023, 10, 29, 0))["y"].to_list() == [2.0]
    assert backfill.valid.sort("ds").rows() == run.valid.sort("ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (8, 0)


def test_the_skipped_hour_hint_counts_the_rows_its_own_cut_left_out_alone(write_csv):
    """Regression (review25): the hint of the skipped daylight-saving hour cut in 15-minute data said 'its N rows
    before it not used' with N every cut series' rows (`rows_before_gap`), those of a meter cut at a later outage of
    its own too: 208 + 228 for the 208 rows the hour left out (meters a and b, 26 hours of quarter hours each)."""
    wall = [datetime(2024, 3, 30) + timedelta(minutes=15 * i) for i in range(3 * 24 * 4)]
    local = [t for t in wall if not (t.date().day == 31 and t.hour == 2)]  # Europe's clocks skip 02:00-03:00
    outage = [t for t in local if not (t.date().day == 1 and 10 <= t.hour < 13)]  # meter c: 3 hours missing too
    rows = "".join(f"{t:%Y-%m-%dT%H:%M},{m},{i % 7 + 1}\n" for m, times in (("a", local), ("b", local), ("c", outage))
                   for i, t in enumerate(times))
    path = write_csv("time,meter,kwh\n" + rows)
    kw = {"time_col": "time", "id_cols": ["meter"], "target_col": "kwh", "freq": "15m", "tz": None}
    settings = Settings(model={"lookback": 4}, horizon=2, preprocess={"val_size": 2})
    summary = preprocess(take_valid(run_validate(path, **kw)), make_source(path, **kw), settings, None)[1]
    cut = {g["unique_id"]: g["rows"] for g in summary.gap_cut}
    assert cut == {"a": 104, "b": 104, "c": 228}, summary.gap_cut  # c starts after its outage
    assert summary.tz_hint is not None and "(its 208 rows before it not used)" in summary.tz_hint, summary.tz_hint


# (zone, its 2026 change day, the local hours a forecast from that day's 00:00 reads: the spring jump skips 02:00
# (Berlin, New York), the autumn one repeats Berlin's 02:00 and New York's 01:00, each once in each offset)
CHANGES_2026 = [
    ("Europe/Berlin", datetime(2026, 3, 29), ["01:00+01:00", "03:00+02:00", "04:00+02:00", "05:00+02:00"]),
    ("Europe/Berlin", datetime(2026, 10, 25), ["01:00+02:00", "02:00+02:00", "02:00+01:00", "03:00+01:00"]),
    ("America/New_York", datetime(2026, 3, 8), ["01:00-05:00", "03:00-04:00", "04:00-04:00", "05:00-04:00"]),
    ("America/New_York", datetime(2026, 11, 1), ["01:00-04:00", "01:00-05:00", "02:00-05:00", "03:00-05:00"]),
]


@pytest.mark.parametrize(("zone", "change", "hours"), CHANGES_2026)
@pytest.mark.parametrize("offset", [True, False])
def test_an_hourly_series_with_a_tz_is_forecast_on_the_hours_its_clock_reads_across_each_change(write_csv, zone, change,
                                                                                               hours, offset):
    """tz29: hourly rows of a declared tz (written with their offset, or as naive local times with the repeated hour
    read by `ambiguous = "infer"`), ending at the change day's local midnight (autumn's with the spring change in
    their history), are forecast on consecutive instants: the hour the spring jump skips is in no key, the
    hour repeated in autumn is two keys (one per offset), and the history keeps every hour of its 23- and 25-hour
    days once, no hour inserted."""
    from flowcast.models.baselines import baseline_forecast

    clock = ZoneInfo(zone)
    end = change.replace(tzinfo=clock).astimezone(UTC).replace(tzinfo=None)
    # autumn's from 1 March: the spring change of the same year in their history too
    first = datetime(change.year, 3, 1) if change.month > 3 else end - timedelta(days=4)
    times = [first + k * timedelta(hours=1) for k in range(int((end - first) / timedelta(hours=1)) + 1)]

    def written(t: datetime) -> str:
        local = t.replace(tzinfo=UTC).astimezone(clock)
        return local.isoformat() if offset else local.replace(tzinfo=None).isoformat()

    path = write_csv("time,meter,kwh\n" + "".join(f"{written(t)},m,{i % 24}\n" for i, t in enumerate(times)))
    kw = source_kw(freq="1h", tz=zone, **({} if offset else {"ambiguous": "infer"}))
    r = run_validate(path, **kw)
    assert r.report.rows_quarantined == 0 and r.report.rows_valid == len(times)
    td, summary = preprocess(take_valid(r), make_source(path, **kw),
                             Settings(model={"lookback": 24}, horizon=4, preprocess={"val_size": 4}), None)
    assert (summary.rows_inserted, summary.rows_imputed) == (0, 0)
    assert td.frame["ds"].to_list() == times  # every instant once, on the grid
    fc = baseline_forecast("seasonal_naive", td, 4)
    assert fc["ds"].to_list() == [end + k * timedelta(hours=1) for k in range(1, 5)]
    local = [t.replace(tzinfo=UTC).astimezone(clock) for t in fc["ds"].to_list()]
    assert [f"{t:%H:%M}{t.isoformat()[-6:]}" for t in local] == hours
    assert all(t.date() == change.date() for t in local)
