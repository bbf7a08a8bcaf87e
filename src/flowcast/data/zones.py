"""Zones, offsets and time labels: a parsed time as an instant or a calendar date, its grid, and the start of the
interval an end-labelled time names.

Sub-daily `ds` are instants, kept as naive UTC: values with a UTC offset ('Z', '+10:00') are
converted; values without one are wall times in the source's declared `tz` (UTC when none) and
are converted too, so a daylight-saving change loses nothing. A wall time that does not exist
(the hour skipped when daylight saving starts) is quarantined (`time_nonexistent`); one that
occurs twice (the hour repeated when it ends) is resolved as the source's `ambiguous` declares
(`infer`: of two rows of a series, the first in the file is the earlier instant, the later in a series
written newest first; `earliest`;
`latest`) or quarantined (`time_ambiguous`, the default): two instants are never merged. The
grid follows the zone's standard time ('1h' in Adelaide is on the half hour in UTC). Daily and
coarser `ds` are calendar dates: a value with an offset gives its wall date in the declared tz,
or without a tz the date as written ('2020-03-01T00:00+11:00' is 1 March, not 29 February in
UTC; an aware Parquet column gives its wall date in its own zone). `ds` is then aligned to the
start of its period (month-end dates become month starts); for sub-daily frequencies a
timestamp between grid points is quarantined instead.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.calendar import is_business, is_subdaily, month_multiple, multiday_period, parse_freq
from flowcast.data.dated_by import _latest_wall
from flowcast.data.schemas import JITTER_MAX
from flowcast.data.time_text import _MIDNIGHT_ZONED_RE, _TIME_ZONED_RE
from flowcast.distinct import per_distinct
from flowcast.timekeys import label_start, local_wall, wall_instant


def _to_wall(naive_utc: pl.Expr, tz: str) -> pl.Expr:
    """Naive UTC instants as naive wall time in `tz` (`timekeys.local_wall`), converted once per distinct instant
    (`distinct.per_distinct`): the rows of a source's series share their times, and the zone's rules read per row
    cost per row."""
    return per_distinct(naive_utc, lambda instant: local_wall(instant, tz))


def zone_offset(wall: pl.Expr, tz: str) -> pl.Expr:
    """The UTC offset of `tz` at each naive wall time of `wall` (a Duration: the wall time less the instant it is
    there, -05:00 in a New York winter), once per distinct wall time (`distinct.per_distinct`); of a wall time the
    clocks repeat, the first; of one they skip, the wall time less the instant the clocks jump past it
    (`timekeys.wall_instant`: New York's 2024-03-10 02:30 is 07:00 UTC, -04:30), as ingest reads it (its offset
    taken as 0 made that day seen from 02:30 UTC)."""
    def skipped(walls: pl.Series) -> pl.Series:  # (null but where a wall time was skipped)
        at = walls.is_not_null().arg_true()
        if not len(at):
            return walls
        jumps = [wall_instant(w, tz).replace(tzinfo=None) for w in walls.gather(at)]
        return walls.scatter(at, pl.Series(jumps, dtype=pl.Datetime("us")))

    def offset(times: pl.Expr) -> pl.Expr:
        there = times.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        instant = there.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        # (the few skipped wall times alone are read in Python: one a distinct time)
        jumped = pl.when(instant.is_null()).then(times).map_batches(skipped, return_dtype=pl.Datetime("us"))
        return times - pl.coalesce(instant, jumped)

    return per_distinct(wall.dt.cast_time_unit("us"), offset)


def _localize(source: SourceConfig, wall: pl.Expr, uid: pl.Expr,
              as_of: datetime | None = None) -> tuple[pl.Expr, pl.Expr]:
    """Naive local wall times in the source's tz -> (naive UTC instants, issue). A wall time that
    never existed (the hour skipped when daylight saving starts) is null with issue 'nonexistent';
    one that occurs twice (the hour repeated when it ends) is resolved as `source.ambiguous` says,
    else null with issue 'ambiguous': two instants are never merged into one silently. `as_of`: whether a series
    is written newest first (`infer`) is decided from its rows that may be dated by then (`_latest_wall`)."""
    tz = source.tz
    earliest = wall.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    latest = wall.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null")
    twice = earliest != latest  # null where the wall time does not exist
    if source.ambiguous == "earliest":
        chosen = earliest
    elif source.ambiguous == "latest":
        chosen = latest
    elif source.ambiguous == "infer":  # file order: of exactly two rows of a series, the first is the earlier
        key = [uid, wall]
        pos, n = pl.int_range(pl.len()).over(key), pl.len().over(key)
        # ... unless the series is written newest first (a dashboard's export): its first is then the later (the
        # two values swapped without a word); told by the rows that may be dated by as_of: rows written after it in
        # the other order (appended newest first) swapped a backfill's two values, which its run had read in order
        seen = wall if as_of is None else pl.when(wall <= _latest_wall(as_of, tz)).then(wall).forward_fill()
        newest_first = (seen.diff() < 0).sum().over(uid) > (seen.diff() > 0).sum().over(uid)
        chosen = (
            pl.when(~twice).then(earliest)
            .when(n == 2).then(pl.when((pos == 0) != newest_first).then(earliest).otherwise(latest))
            .otherwise(None)
        )
    else:
        chosen = pl.when(twice).then(None).otherwise(earliest)
    issue = (
        pl.when(wall.is_not_null() & earliest.is_null()).then(pl.lit("nonexistent"))
        .when(twice & chosen.is_null()).then(pl.lit("ambiguous"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    return chosen.dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.cast_time_unit("us"), issue


def local_times(source: SourceConfig) -> bool:
    """True when naive times of `source` are local wall times to be turned into instants:
    sub-daily data with a declared tz other than UTC."""
    return is_subdaily(source.freq) and source.tz is not None and source.tz != "UTC"


def _aware_midnight(raw: pl.LazyFrame, col: str, as_of: datetime | None = None) -> frozenset[str]:
    """{'midnight'} when every value of a zone-aware time column (a Parquet timestamp[ms, UTC] of dates, as pandas
    writes a tz-aware date index) is at midnight of the column's zone (one pass over it), else nothing. With an
    as_of, every value at an instant by it (as `_written_by` keeps a time with an offset): a later value at 13:00
    does not turn a backfill's dates into instants (a second pass, over those values, only where some are at
    midnight and some not)."""
    wall = pl.col(col).dt.replace_time_zone(None)
    off = wall != wall.dt.truncate("1d")
    try:
        some_off, some_midnight = raw.select(off.any().alias("off"), (~off).any().alias("on")).collect(
            engine="streaming").row(0)
        if some_off and some_midnight and as_of is not None:
            utc = pl.col(col).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            some_off = raw.filter(utc <= as_of.replace(tzinfo=None)).select(off.any()).collect(
                engine="streaming").item()
    except pl.exceptions.PolarsError:
        return frozenset()
    return frozenset() if some_off else frozenset({"midnight"})


def _offset_midnight(raw: pl.LazyFrame, col: str) -> frozenset[str]:
    """{'midnight'} when the text time column `col` of `raw` has times with an offset and each is at midnight of
    it ('2024-01-01T00:00:00.000Z'), as `_time_profile` decides it (one pass), else nothing."""
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    offset = text.str.contains(_TIME_ZONED_RE)
    try:
        some, off = raw.select(offset.any().alias("some"), (offset & ~text.str.contains(_MIDNIGHT_ZONED_RE)).any()
                               .alias("off")).collect(engine="streaming").row(0)
    except pl.exceptions.PolarsError:
        return frozenset()
    return frozenset({"midnight"}) if some and not off else frozenset()


def _grid_anchor(source: SourceConfig) -> int:
    """Microseconds to add to a sub-daily UTC instant before truncating it to the grid, so that
    the grid follows the zone's standard time ('1h' in Adelaide, UTC+9:30, is on the half hour
    in UTC). A fixed offset: the grid keeps fixed-duration steps across daylight-saving changes."""
    if not local_times(source):
        return 0
    from datetime import datetime as _dt
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    assert source.tz is not None  # local_times(source) says so
    zone = ZoneInfo(source.tz)
    for month in (1, 7):
        when = _dt(2001, month, 1, tzinfo=zone)
        if not when.dst():
            return int((when.utcoffset() or timedelta(0)).total_seconds() * 1_000_000)
    return int((_dt(2001, 1, 1, tzinfo=zone).utcoffset() or timedelta(0)).total_seconds() * 1_000_000)


def label_to_start(ds: pl.Expr, source: SourceConfig, seen: bool = False) -> pl.Expr:
    """A parsed time as the start of the interval it labels: `timekeys.label_start` (one step of freq back for
    `time_label = "end"`, a month, quarter or year one day back, into the month it ends). An aggregated source's
    times are finer than freq: each is moved just before its label (1 microsecond), so that the period it ends
    holds it (a 5-minute reading labelled 01:00 belongs to the hour from 00:00, one labelled 00:05 too).

    A daily or coarser time strictly inside a day ('2024-03-05 23:59:59', as many exports write the end of a day)
    names the period that holds it, as pandas' `resample(closed="right", label="right")` reads it: it is moved one
    day up, then back, so 2024-03-05 23:59:59 is 5 March, as 2024-03-06 00:00 is (one step back from the time
    itself moved every such day to the day before it, without a word). A time within `JITTER_MAX` after a
    midnight ('2024-03-07 00:00:02', an export's clock a few seconds late) is that midnight, the end of the day
    before (6 March), as 00:00:00 is: read as 7 March, it left 6 March a gap without a word; one within it before
    a midnight (23:59:59) is still its own day. Its time of day is kept (`DS_RAW`: two
    readings of one day stay two times), but where it is `seen` (`DS_SEEN`, compared with as_of's bound) it is
    the midnight that ends its day: a run sees it once its day is over, as it sees the day labelled by that
    midnight (a time written with an offset: on its own clock, `seen_to_start`). A sub-daily time off its grid is
    quarantined whatever its label (`schemas` off_grid)."""
    if source.time_label == "start":
        return ds
    if source.aggregate != "none":
        return ds - pl.duration(microseconds=1)
    if not is_subdaily(source.freq):
        day = ds.dt.truncate("1d")
        ends_day_before = ds - day <= pl.lit(JITTER_MAX, pl.Duration("us"))  # a midnight, or a clock's seconds past it
        ds = pl.when(ends_day_before).then(day if seen else ds).otherwise((day if seen else ds).dt.offset_by("1d"))
    return label_start(ds, source.freq, source.time_label)  # (sub-daily ds are naive UTC here)


def seen_to_start(written: pl.Expr, seen: pl.Expr, source: SourceConfig) -> pl.Expr:
    """A daily or coarser time written with an offset, as a run sees it (`DS_SEEN`): `label_to_start` of the time
    on the clock it was written on (`written`: its wall time as written), moved to the clock of the ds axis (`seen`:
    its instant's wall time in the source's tz, UTC without one) by the difference between the two readings. Of a
    start-labelled time that is `seen` itself. An end-labelled one ends its period where its own clock says so:
    '2024-03-01T00:00:00-05:00' ends 29 February at 05:00 UTC on 1 March, '2024-03-01T00:00:00+01:00' at 23:00 UTC
    on 29 February (`label_to_start` of `seen` rounded the instant up to the end of its UTC day: 19 hours and 1 hour
    late, and realized accuracy and freshness, which read the instant, disagreed with the run's cut)."""
    return label_to_start(written, source, seen=True) + (seen - written)


def time_label_note(source: SourceConfig) -> str | None:
    """What ingest did to an end-labelled source's times, in one sentence (the run's log and the data-quality
    report); None for start labels."""
    if source.time_label == "start":
        return None
    if source.aggregate != "none":
        return ("time labels are interval ends: each time was moved 1 microsecond back, into the "
                f"{source.freq} period it ends, before aggregating (ds is the period's start)")
    if parse_freq(source.freq)[1] in ("mo", "q", "y"):
        return ("time labels are interval ends: each date was moved back 1 day, into the month it ends "
                "(2024-02-01 is January's), and read as its period (ds is the period's start)")
    step = "1d (a business day ends at the next midnight)" if is_business(source.freq) else source.freq
    return f"time labels are interval ends: ds shifted back by {step} (ds is the interval's start)"


def _grid_start(ds: pl.Expr, freq: str, anchor_us: int = 0, aggregate: bool = False) -> pl.Expr:
    """Align to the start of the period containing ds (month-end dates -> month start).

    Weekly ('1w') data keeps the weekday it is labelled with (weeks starting on Sunday or ending on
    Friday are common): ds is only truncated to the day, and validation quarantines the rows that
    are not on the source's weekday (`off_grid`). Truncating to ISO Mondays moved a Sunday-labelled
    week to the Monday before it, outside that week. Other grids of several days ('2w', '7d', '3d')
    likewise keep their dates (truncating to polars' epoch-aligned periods moved them up to a period
    back), and validation quarantines the rows off the source's most common phase. With `aggregate` (finer data combined into
    periods) a week is an ISO week (starting on Monday). Sub-daily instants are truncated in the
    zone's standard time (`anchor_us`, see `_grid_anchor`)."""
    n, unit = parse_freq(freq)
    if unit == "y" and n == 1:
        return ds.dt.truncate("1y")
    if unit == "b":  # the date; validation quarantines Saturdays and Sundays (`calendar.on_grid`)
        return ds.dt.truncate("1d")
    if multiday_period(freq) and not aggregate:  # '1w', '2w', '7d', '3d': the dates as labelled
        return ds.dt.truncate("1d")
    if month_multiple(freq) and not aggregate:  # '3mo', '12mo', '2q': the month as labelled (fiscal periods)
        return ds.dt.truncate("1mo")
    if anchor_us:
        offset = pl.duration(microseconds=anchor_us, time_unit="us")
        return (ds + offset).dt.truncate(freq) - offset
    return ds.dt.truncate(freq)
