"""Reading a source's time column: a typed column as it is, a text one rewritten as ISO-8601 text (day/month order,
periods, month names, a 12-hour clock) in a stage of its own and read as times (`time_format` or ISO-8601), then
turned into `ds` (`_parse_time`: instants as naive UTC, local wall times converted from the source's zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.calendar import is_subdaily
from flowcast.data.day_month import DayMonth
from flowcast.data.schemas import DAY_MONTH_RE, RAW_PREFIX, YEAR_FIRST_RE
from flowcast.data.source_files import FILE_INDEX
from flowcast.data.time_text import (
    _HOUR_24_RE,
    _OFFSET_RE,
    _TIME_OFFSET_RE,
    ZONE_GROUP,
    _clock_24,
    _day_first,
    _day_month_iso,
    _extended_clock_text,
    _format_names_instant,
    _month_name_text,
    _period_start_text,
    _time_text,
)
from flowcast.data.zones import _localize, _to_wall, local_times
from flowcast.distinct import Steps
from flowcast.errors import DataValidationError


@dataclass
class _Time:
    """The parts of a parsed time column: `naive` (wall time of values without an offset),
    `aware_utc` (naive UTC of values with one), `aware_wall` (the wall time such values were
    written in) and `has_off` (which rows had an offset)."""

    naive: pl.Expr | None
    aware_utc: pl.Expr | None
    aware_wall: pl.Expr | None
    has_off: pl.Expr
    stages: tuple[list[pl.Expr], ...] = ()  # with_columns stages of the helper column the parts read (`distinct.Steps`)


TIME_STAGE = "__time_stage"  # the helper column of a text time column's reading (`distinct.Steps`)
TIME_WALL = TIME_STAGE + "_wall"  # a helper column: the wall time in the source's tz of a time written with an offset


def _read_time(source: SourceConfig, dtype: pl.DataType, file: str, day_month: DayMonth = None,
               traits: frozenset[str] = frozenset()) -> _Time:
    column = RAW_PREFIX + source.time_col
    raw = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return _Time(None, raw.dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.cast_time_unit("us"),
                         raw.dt.replace_time_zone(None).dt.cast_time_unit("us"), pl.lit(True))
        return _Time(raw.dt.cast_time_unit("us"), None, None, pl.lit(False))
    if dtype == pl.Date:
        return _Time(raw.cast(pl.Datetime("us")), None, None, pl.lit(False))
    if dtype.is_integer():
        if not source.time_format:
            raise DataValidationError(
                f"{file}: time column {source.time_col!r} holds integers ({dtype}); declare its time_format "
                "(--time-format, or time_format in [sources.NAME]; e.g. %Y for years, %Y%m%d for dates, %s for Unix epoch seconds)"
            )
        text = raw.cast(pl.Utf8)
    elif dtype == pl.Utf8:
        text = _time_text(raw, traits)
    else:
        raise DataValidationError(
            f"{file}: time column {source.time_col!r} has type {dtype}, which cannot be parsed as a time"
        )
    if source.time_format:
        fmt = source.time_format
        if _format_names_instant(fmt):
            utc = text.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False).dt.replace_time_zone(None)
            wall = None
            if fmt.rstrip().endswith("%z") and fmt.count("%z") == 1:  # the wall time as written
                wall = text.str.replace(_OFFSET_RE, "").str.strip_chars().str.strptime(
                    pl.Datetime("us"), fmt.rstrip().removesuffix("%z").strip(), strict=False
                )
            return _Time(None, utc, wall, pl.lit(True))
        return _Time(text.str.strptime(pl.Datetime("us"), fmt, strict=False), None, None, pl.lit(False))
    # ISO-8601: parse the wall time, then apply the offset when the value carries one; once per distinct text (the
    # times of many series repeat), each step that reads the text before it several times a step of its own
    # (orders per file: the column rewritten day first where its file settled an order, `_day_first`; day_month is
    # only decided for text without a time_format)
    steps = Steps(TIME_STAGE, [column, FILE_INDEX] if isinstance(day_month, dict) else [column])
    read = steps.read(column)  # (text: an integer column without a time_format was refused)
    if isinstance(day_month, dict):
        day_first, ordered = _day_first(read, steps.read(FILE_INDEX), day_month)
        read, ordered = steps.step(day_first), steps.step(ordered)
    text = _time_text(read, traits)
    has_off = text.str.contains(_TIME_OFFSET_RE)
    off = text.str.extract(_TIME_OFFSET_RE, ZONE_GROUP)  # null for a value without one (a date: its '-01' is no offset)
    wall_text = pl.when(has_off).then(text.str.replace(_OFFSET_RE, "")).otherwise(text)
    if "clock12" in traits:  # (only where some value has one: the conversion costs a pass of regexes per read)
        wall_text = _clock_24(steps.step(wall_text))
    # polars would infer a day-first or month-first format from the first value and misread the
    # other order ('01/02/2020'): the order is decided from all rows (`day_month_order`), and without
    # one such values are unparsable (quarantined with a hint naming the format)
    is_dm = text.str.contains(DAY_MONTH_RE)
    # a year-first order reads the dates that can have their year first alone: a '5/5/24' (one digit first) that the
    # rows by as_of did not see was read as 24 May of the year 5 (unparsable, it is after as_of however read)
    year_first = text.str.contains(YEAR_FIRST_RE)
    if isinstance(day_month, dict):  # files of a glob that each settle their own order (a UK and a US export)
        # (`text` is the column rewritten day first by `_day_first`, where its file settled an order)
        wall_text = steps.step(wall_text)
        wall_text = pl.when(is_dm & ordered).then(_day_month_iso(wall_text, "day")).otherwise(wall_text)
        is_dm = is_dm & ~ordered
    elif day_month == "year":
        wall_text = steps.step(wall_text)
        wall_text = pl.when(is_dm & year_first).then(_day_month_iso(wall_text, day_month)).otherwise(wall_text)
        is_dm = is_dm & ~year_first
    elif day_month is not None:
        wall_text = steps.step(wall_text)
        wall_text = pl.when(is_dm).then(_day_month_iso(wall_text, day_month)).otherwise(wall_text)
        is_dm = pl.lit(False)
    # (the unparsable values are left out of what is parsed: polars infers its format from the first value, and
    # '31/01/2024' first made every ISO date of the column unparsable)
    if "month_name" in traits:  # 'Jan 2024', 'January 2024', '2024-Jan' (only where some value has one)
        wall_text = _month_name_text(steps.step(wall_text))
    is24 = None
    if "hour24" in traits:  # '2024-01-01 24:00': the end of that day (hour-ending exports of energy data)
        wall_text = steps.step(wall_text)
        is24 = wall_text.str.contains(_HOUR_24_RE)
        wall_text = pl.when(is24).then(wall_text.str.replace(r"([ T])24:", "${1}00:")).otherwise(wall_text)
    period_text = steps.step(pl.when(is_dm).then(None).otherwise(wall_text))
    iso_text = _period_start_text(period_text)
    if "basic_clock" in traits:  # '2024-03-07T0930' (only where some value has one), after a date made ISO above
        iso_text = _extended_clock_text(steps.step(iso_text))
    wall = iso_text.str.to_datetime(time_unit="us", strict=False)
    if is24 is not None:
        wall = pl.when(is24).then(wall + pl.duration(days=1)).otherwise(wall)
    sign = pl.when(off.str.starts_with("-")).then(-1).otherwise(1)
    digits = off.str.replace_all(r"[^0-9]", "")
    minutes = sign * (  # '+01': an hour, no minutes
        digits.str.slice(0, 2).cast(pl.Int64, strict=False) * 60
        + digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
    )
    minutes = pl.when(off.str.to_uppercase().is_in(["Z", "UTC", "GMT"])).then(0).otherwise(minutes)
    wall, minutes, has_off = (steps.result(e) for e in (wall, minutes, has_off.fill_null(False)))
    return _Time(wall, wall - pl.duration(minutes=minutes), wall, has_off, (steps.stage(),))


def _parse_time(source: SourceConfig, dtype: pl.DataType, file: str, uid: pl.Expr,
                day_month: DayMonth = None, traits: frozenset[str] = frozenset(), as_of: datetime | None = None,
                ) -> tuple[pl.Expr, pl.Expr, pl.Expr | None, pl.Expr | None, pl.Expr | None, tuple[list[pl.Expr], ...]]:
    """(ds before grid alignment, row-had-an-offset flag, local-time issue or None, the time compared with as_of
    where it is not that ds, else None; with it, the offset each such row was written in: `DS_OFFSET`; the
    with_columns stages of the helper columns these read, `distinct.Steps` and `TIME_WALL`).

    Sub-daily data: `ds` is the instant, as naive UTC; values with an offset are converted,
    values without one are wall times in the declared tz (`_localize`) or, without a tz, UTC.
    Daily and coarser data: `ds` is a calendar date, naive; values with an offset give their
    wall date in the declared tz, or without a tz the date as written ('2020-03-01T00:00+11:00'
    is 1 March, not 29 February in UTC); a column whose every such value is at midnight of its own
    offset (traits 'midnight': dates serialized as timestamps) gives the dates as written in any case. Such a
    value is seen by a run at as_of from the instant it names on (its wall time in the declared tz, UTC without
    one, against as_of's there: `DS_SEEN`), not from its date as written: '2024-03-01T00:00:00-05:00' is after a
    run at 2024-03-01T00:00Z (it begins at 05:00 UTC), '2024-03-01T00:00:00+05:00' by one at 2024-02-29T20:00Z."""
    t = _read_time(source, dtype, file, day_month, traits)
    stages = t.stages
    issue = None
    seen = None
    offset = None
    if is_subdaily(source.freq):
        aware = t.aware_utc
        naive = t.naive
        if naive is not None and local_times(source):
            naive, issue = _localize(source, naive, uid, as_of)
    else:
        if t.aware_utc is not None:
            # every such value at midnight of its own offset: dates written as timestamps, whose date is the one
            # written ('2024-01-01T00:00:00Z' with tz America/New_York was 31 December, every day one early)
            if source.tz is not None and not ("midnight" in traits and t.aware_wall is not None):
                # a column of its own, a stage (`TIME_WALL`): ds, the offset and TIME_AWARE read it, and the lazy
                # plan's common subexpressions left the conversion in three of them (1M rows: 1.15 -> 0.78 CPU s)
                stages = (*stages, [_to_wall(t.aware_utc, source.tz).alias(TIME_WALL)])
                aware = pl.col(TIME_WALL)
                # the zone's offset at the instant (DS_RAW less it is the instant): the wall time alone made the two
                # 02:30 of an autumn night one time, which 'last' ordered by line (`validate._instant_order`)
                offset = aware - t.aware_utc
            else:
                aware = t.aware_wall if t.aware_wall is not None else t.aware_utc
                # (an aggregated source's period, too, is over from the instant its end names in its rows' offset,
                # `period_not_over`)
                seen = _to_wall(t.aware_utc, source.tz or "UTC")
                offset = (t.aware_wall - t.aware_utc) if t.aware_wall is not None else pl.lit(timedelta(0))
        else:
            aware = None
        naive = t.naive
    if aware is None:
        ds = naive
    elif naive is None:
        ds = aware
    else:
        ds = pl.when(t.has_off).then(aware).otherwise(naive)
    if issue is not None:
        issue = pl.when(t.has_off).then(None).otherwise(issue)
    elif local_times(source):  # no naive values in this column (an aware Parquet column): no issue
        issue = pl.lit(None, dtype=pl.Utf8)
    assert ds is not None  # _read_time gives naive or aware values (or both)
    ds = ds.dt.cast_time_unit("us")
    # a time beyond years 1..9999 (epoch milliseconds read with %s: 1672531200000 is the year 54970) is no time
    # a report, a plot or a store can hold (it failed the run: "ValueError: year 54970 is out of range")
    if seen is not None:
        seen = pl.when(t.has_off).then(seen.dt.cast_time_unit("us")).otherwise(ds)
    if offset is not None:
        offset = pl.when(t.has_off).then(offset.cast(pl.Duration("us")))
    return pl.when(ds.dt.year().is_between(1, 9999)).then(ds), t.has_off, issue, seen, offset, stages
