"""One stamp, one period, one instant: a time written with an offset (start- or end-labelled, daily or hourly) is
read as the same period, observed from the same instant, by ingest (the rows a run at an instant keeps), freshness
(`freshness.instant_bounds`, periods behind) and realized accuracy (`score_realized`: the points scored by then).

The expected period and instant of each stamp are computed here from the stamp itself, not by flowcast: a stamp names
the instant it is written at (its wall time less its offset); start-labelled it is its period's start (daily: the
date written), end-labelled its end (the period before: daily the day before the date written, hourly the hour
before the instant), or where a daily one is strictly inside a day ('23:59:59', an export's end of day) that day,
over at the next midnight of the stamp's clock. Either way a run sees the period from that instant on (README:
"seen by a run from the instant it names on"; "A run at `as_of` sees the intervals that had ENDED by `as_of`")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from data_helpers import make_source

from flowcast.config import SourceConfig, ValidationConfig
from flowcast.data.freshness import freshness, instant_bounds
from flowcast.data.sources import ingest
from flowcast.data.validate import take_valid, validate
from flowcast.evaluation.realized import score_realized

# "": a time written without an offset, read as UTC (the source has no tz)
OFFSETS = {"+01:00": timedelta(hours=1), "-05:00": timedelta(hours=-5), "Z": timedelta(0), "": timedelta(0)}
N = 8  # stamps per file


def _stamps(freq: str, clock: str) -> list[datetime]:
    """The wall times written, consecutive periods of `freq` (daily: midnights across 29 February, or a second before
    them, 'end of day' as many exports stamp it)."""
    if freq == "1d":
        late = {"23:59:59": timedelta(seconds=-1), "09:00": timedelta(hours=9)}.get(clock, timedelta(0))
        return [datetime(2024, 2, 26) + timedelta(days=i) + late for i in range(N)]
    return [datetime(2024, 2, 29, 20) + timedelta(hours=i) for i in range(N)]


def _expected(wall: datetime, offset: timedelta, freq: str, label: str) -> tuple[datetime, datetime]:
    """(the period's ds, the naive UTC instant a run sees it from) of the stamp `wall` written in `offset`. A daily
    end-labelled stamp strictly inside a day (23:59:59) is that day, seen once it is over on the stamp's clock."""
    if freq == "1d" and label == "end" and wall.time() != datetime.min.time():
        day = datetime.combine(wall.date(), datetime.min.time())
        return day, day + timedelta(days=1) - offset
    instant = wall - offset
    step = timedelta(days=1) if freq == "1d" else timedelta(hours=1)
    # daily: the date as written (a start-labelled time of day, '09:00', labels its day); hourly: the instant (naive UTC)
    ds = datetime.combine(wall.date(), datetime.min.time()) if freq == "1d" else instant
    return (ds - step if label == "end" else ds), instant


@pytest.mark.parametrize(("freq", "label", "clock"), [
    ("1d", "start", "00:00"), ("1d", "start", "09:00"), ("1d", "end", "00:00"), ("1d", "end", "23:59:59"),
    ("1h", "start", ":00"),
    ("1h", "end", ":00")])
@pytest.mark.parametrize("written", list(OFFSETS))
def test_ingest_freshness_and_realized_accuracy_read_a_stamp_as_one_period_seen_from_one_instant(
        tmp_path, written, freq, label, clock):
    """Regression: an end-labelled daily stamp written with an offset was seen by ingest once the UTC day holding its
    instant was over ('2024-03-01T00:00:00-05:00', the end of 29 February at 05:00 UTC, from midnight UTC on 2
    March; '+01:00' an hour late), while freshness and realized accuracy read it from its instant: a run's data, its
    freshness and the points it was scored on were a day apart."""
    offset = OFFSETS[written]
    walls = _stamps(freq, clock)
    path = tmp_path / "d.csv"
    path.write_text("date,id,val\n" + "".join(f"{w:%Y-%m-%dT%H:%M:%S}{written},a,{i}\n" for i, w in enumerate(walls)))
    _assert_agree(make_source(path, freq=freq, time_label=label), [_expected(w, offset, freq, label) for w in walls],
                  (written, label, freq, clock))


@pytest.mark.parametrize(("label", "clock"), [("start", "09:00"), ("start", "00:00"), ("end", "00:00"),
                                              ("end", "23:59:59")])
@pytest.mark.parametrize("written", ["", "zone"])
def test_a_daily_stamp_of_a_tz_is_one_period_seen_from_its_instant_there(tmp_path, written, label, clock):
    """Regression: a start-labelled daily time of day in a source with a tz ('2024-03-11 09:00', or with New York's
    offset '09:00-04:00', tz America/New_York) was seen by ingest from 09:00 New York (13:00 UTC), while freshness
    and realized accuracy counted its day from midnight there: 9 hours early, a period ahead of the run's data. The
    stamps cross the zone's spring change (10 March 2024): each is read in the offset of its own day."""
    zone = ZoneInfo("America/New_York")
    walls = [w + timedelta(days=10) for w in _stamps("1d", clock)]  # 7 to 14 March 2024
    offsets = [w.replace(tzinfo=zone).utcoffset() or timedelta(0) for w in walls]
    text = {"": lambda w: f"{w:%Y-%m-%d %H:%M:%S}", "zone": lambda w: w.replace(tzinfo=zone).isoformat()}[written]
    path = tmp_path / "d.csv"
    path.write_text("date,id,val\n" + "".join(f"{text(w)},a,{i}\n" for i, w in enumerate(walls)))
    assert {offsets[0], offsets[-1]} == {timedelta(hours=-5), timedelta(hours=-4)}
    expected = [_expected(w, offset, "1d", label) for w, offset in zip(walls, offsets, strict=True)]
    _assert_agree(make_source(path, time_label=label, tz=zone.key), expected, (written, label, clock))


def _assert_agree(source: SourceConfig, expected: list[tuple[datetime, datetime]], case: tuple[str, ...]) -> None:
    """Ingest (the rows a run keeps), freshness (periods behind) and realized accuracy (the steps scored) of
    `source`, a file of one series, agree with `expected` (each stamp's period and the naive UTC instant it is seen
    from) a second before and at the instant of three of its stamps."""
    freq, label, tz = source.freq, source.time_label, source.tz
    periods = [ds for ds, _ in expected]
    full = validate(ingest(source, None), source, ValidationConfig())  # a later run's: every period, its shifts
    assert take_valid(full)["ds"].to_list() == periods
    shifts = full.shifts
    # published before any stamp: one forecast per period, each scored once a run had observed it
    forecasts = pl.DataFrame({"as_of": [periods[0] - timedelta(days=2)] * N, "unique_id": ["a"] * N,
                              "ds": periods, "step": list(range(1, N + 1)), "y_hat": [0.0] * N})
    actuals = pl.DataFrame({"unique_id": ["a"] * N, "ds": periods, "y": [float(i) for i in range(N)]})
    first = pl.DataFrame({"unique_id": ["a"], "last_ds": [periods[0]]})

    for k in (2, 3, 5):
        for at in (expected[k][1] - timedelta(seconds=1), expected[k][1]):
            seen = max(i for i, (_, since) in enumerate(expected) if since <= at)
            ing = ingest(source, at.replace(tzinfo=UTC))
            kept = take_valid(validate(ing, source, ValidationConfig()))["ds"].max()
            bounds = instant_bounds(first, at, freq=freq, tz=tz, time_label=label, shifts=shifts)
            behind = freshness(first, ing.as_of_ds, freq, 1, bounds=bounds).periods_behind
            scored = score_realized(forecasts, actuals, actuals.head(0), dataset="t", season_length=1, freq=freq,
                                    scored_at=at, time_label=label, shifts=shifts, tz=tz)["step"].max()
            assert (kept, behind, scored) == (periods[seen], seen, seen + 1), (*case, at)
