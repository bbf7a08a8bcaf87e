"""The rows of a text time column that a run at as_of reads by: those that may be dated by then, whatever order its
day/month dates turn out to read in (`_dated_by`; with an ISO time's instant and a declared time_format's too,
`_written_by`), and the day/month dates after it however read (`_after_every_reading`), each read once from the
numbers of the text (`_day_month_parts`, `_earliest_reading`). What decides how the column reads (its day/month order,
`day_month`; its numbers' decimal marks, `decimals`) reads these rows alone, so that rows written after as_of do not
change how a backfill reads its history.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.schemas import valid_date
from flowcast.data.time_text import _TIME_ZONED_RE, ZONE_GROUP, _format_names_instant
from flowcast.timekeys import wall_time


def _latest_wall(as_of: datetime, tz: str | None) -> datetime:
    """The latest wall time (naive) in zone `tz` (UTC when None) of an instant by `as_of`: as_of's own, or where
    the clocks went back within the last 3 hours, the wall time just before they did (01:50 before a fall-back at
    02:00 reads 01:10 again: a row at 01:30 may be by as_of). A wall time after it is after as_of in any case."""
    return max(wall_time(as_of - timedelta(minutes=m), tz) for m in range(181))


def _written_by(lf: pl.LazyFrame, time_col: str, source: SourceConfig, as_of: datetime) -> pl.LazyFrame:
    """The rows of a CSV file (its time column `time_col` still text) that may be dated by `as_of`: all but those
    whose time is after as_of, read on its own text (the times are parsed later, in an order decided from the rows
    this keeps). An ISO time of day is compared as the instant it is: with its offset (a bracketed zone after it
    too), or as a wall time in the source's zone (UTC when none; `_latest_wall`). An ISO date ('2024-01-16',
    '2024-02', '2025') after the date as_of falls on in the source's zone, a day/month date after it however it is
    read (`_dated_by`), a declared time_format's value after as_of (its instant with %z, else its wall time) are
    left out too. Other shapes (quarters, month names, Unix seconds) and the rows of as_of's own day whose time is
    not read here stay."""
    day = wall_time(as_of, source.tz).date()
    latest = wall_time(as_of, "Etc/GMT-14").date()  # the date somewhere on earth at as_of
    wall = _latest_wall(as_of, source.tz)
    instant = as_of.replace(tzinfo=None)  # (aware UTC, `as_instant`)
    text = pl.col(time_col).cast(pl.Utf8).str.strip_chars()
    if fmt := source.time_format:  # read as the run reads it (`_read_time`)
        if _format_names_instant(fmt):
            at = text.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False).dt.replace_time_zone(None)
            return lf.filter(at.is_null() | (at <= instant))
        at = text.str.strptime(pl.Datetime("us"), fmt, strict=False)
        return lf.filter(at.is_null() | (at <= wall))
    iso = text.str.extract(r"^(\d{4}(?:-\d{2}(?:-\d{2})?)?|\d{8})(?:$|[T ])", 1)
    # '2024' and '2024-02' start their year or month: '2024-00-00' sorts before every date of 2024; '20240307' (ISO's
    # basic format) is '2024-03-07'
    size = iso.str.len_chars()
    padded = pl.when(size == 4).then(iso + "-00-00").when(size == 7).then(iso + "-00").when(size == 8).then(
        pl.concat_str([iso.str.slice(0, 4), iso.str.slice(4, 2), iso.str.slice(6, 2)], separator="-")).otherwise(iso)
    limit = pl.when(text.str.contains(_TIME_ZONED_RE)).then(pl.lit(latest.isoformat())).otherwise(
        pl.lit(day.isoformat()))
    by_date = iso.is_null() | (padded <= limit)
    # a time of day: its instant (wall time less its offset) against as_of, its wall time against as_of's (read by
    # position and one strptime of a fixed format: regex groups for each part cost 6 s per 1,000,000 rows a pass)
    seconds = pl.when(text.str.slice(16, 1) == ":").then(text.str.slice(17, 2)).otherwise(pl.lit("00"))
    # (null where the text has no ISO date and time of day at those places: '2024-01-05', '1/5/2024 13:00', '24:00')
    stamp = pl.concat_str([text.str.slice(0, 10), text.str.slice(11, 5), seconds]).str.strptime(
        pl.Datetime("us"), "%Y-%m-%d%H:%M%S", strict=False)
    # ... and in ISO's basic format ('20240307T0930', '20240307 093000Z', '2024-03-07T0930+0100': their time of day
    # was not read, so a row later on as_of's own day was kept), a basic date before an extended time of day too
    # ('20240307T09:30', '20240307 09:30:00Z'): its date's dashes and its time's colons dropped, null on every other
    # value (one regex over the column, the rest reading those rows alone: a parse of every row cost 1M rows 0.35 s a
    # pass)
    basic = pl.when(text.str.contains(r"^\d{4}-?\d{2}-?\d{2}[T ]\d{4}|^\d{8}[T ]\d{2}:\d{2}")).then(text).str.replace(
        r"^(\d{4})-?(\d{2})-?(\d{2})[T ](\d{2}):?(\d{2})(?::(\d{2}))?", "${1}${2}${3}T${4}${5}${6}")
    stamp = pl.coalesce(stamp, *(basic.str.slice(0, len(fmt) + 2).str.strptime(pl.Datetime("us"), fmt, strict=False)
                                 for fmt in ("%Y%m%dT%H%M%S", "%Y%m%dT%H%M")))
    # (each part a column of its own, computed once: used in several branches, it was computed in each)
    at_col, off_col = "__written_at", "__written_off"
    parts = lf.with_columns(stamp.alias(at_col), text.str.extract(_TIME_ZONED_RE, ZONE_GROUP).alias(off_col))
    sign = pl.when(pl.col(off_col).str.starts_with("-")).then(-1).otherwise(1)
    digits = pl.col(off_col).str.replace_all(r"[^0-9]", "")
    minutes = pl.when(pl.col(off_col).str.to_uppercase().is_in(["Z", "UTC", "GMT"])).then(0).otherwise(sign * (
        digits.str.slice(0, 2).cast(pl.Int64, strict=False) * 60
        + digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)))
    by_time = pl.when(pl.col(off_col).is_null()).then(pl.col(at_col) <= wall).otherwise(
        pl.col(at_col) - pl.duration(minutes=minutes) <= instant)
    kept = pl.when(pl.col(at_col).is_not_null()).then(by_time).otherwise(by_date)
    return _dated_by(parts.filter(kept).drop(at_col, off_col), time_col, day, year_first=False, wall=wall)


def _dated_by(raw: pl.LazyFrame, col: str, day: date, year_first: bool, wall: datetime | None = None) -> pl.LazyFrame:
    """The rows of `raw` but those whose day/month date ('13/01/2024', '01/02/2024', '24/03/01') is after `day`
    however it is read (day first, month first, a two-digit year first): written after as_of, whatever the column's
    order turns out to be. A row that the order decided from the rows by as_of reads as later stays (both numbers 12
    or below: it settles nothing), as does every row of another shape. `year_first`: the column may write a
    two-digit year first (`_time_profile`), a reading of its own. `wall`: as_of's latest wall time in the source's
    zone (`_latest_wall`): a value with a time of day ('15/01/2024 18:00', '1/15/2024 6:00 PM') is then compared as
    that instant, its earliest reading's, with it (as an ISO time without offset is): a row later on as_of's own day
    was kept by its date. One regex over the column, its numbers taken once (an expression reading them in each
    reading cost 10 s per 1,000,000 rows), and integer arithmetic: each reading as yyyymmddHHMMSS, compared with
    `wall`'s (the end of `day` without it)."""
    a, b, c, w1, w3, h, m, s = (f"__dated_{k}" for k in ("a", "b", "c", "w1", "w3", "h", "m", "s"))
    parts = _day_month_parts(col, clock=wall is not None)
    names = (a, b, c, w1, w3, h, m, s) if wall is not None else (a, b, c, w1, w3)
    numbers = raw.with_columns(e.alias(name) for e, name in zip(parts, names, strict=True))
    earliest = _earliest_reading(*(pl.col(n) for n in (a, b, c, w1, w3)), year_first=year_first)
    limit = day.year * 10_000 + day.month * 100 + day.day
    if wall is None:
        return numbers.filter(earliest.is_null() | (earliest <= limit)).drop(*names)
    at = _reading_key(earliest, pl.col(h), pl.col(m), pl.col(s))
    wall_key = int(wall.strftime("%Y%m%d%H%M%S"))
    return numbers.filter(earliest.is_null() | (at <= wall_key)).drop(*names)


def _after_every_reading(col: str, day: date, year_first: bool, wall: datetime | None = None) -> pl.Expr:
    """True on a day/month date ('16/01/2024') after `day` however it is read (day first, month first, a two-digit
    year first where `year_first`), as `_dated_by` leaves such a row out; false on every other value. `wall`: as in
    `_dated_by`, a value with a time of day after it on as_of's own day ('15/01/2024 18:00') is after too."""
    if wall is None:
        earliest = _earliest_reading(*_day_month_parts(col), year_first=year_first)
        return (earliest > day.year * 10_000 + day.month * 100 + day.day).fill_null(False)
    a, b, c, w1, w3, h, m, s = _day_month_parts(col, clock=True)
    return (_reading_key(_earliest_reading(a, b, c, w1, w3, year_first=year_first), h, m, s)
            > int(wall.strftime("%Y%m%d%H%M%S"))).fill_null(False)


def _reading_key(earliest: pl.Expr, h: pl.Expr, m: pl.Expr, s: pl.Expr) -> pl.Expr:
    """A day/month date's earliest reading (yyyymmdd) and its time of day (null: midnight) as yyyymmddHHMMSS."""
    return (earliest.cast(pl.Int64) * 1_000_000 + h.fill_null(0).cast(pl.Int64) * 10_000
            + m.fill_null(0).cast(pl.Int64) * 100 + s.fill_null(0).cast(pl.Int64))


def _day_month_parts(col: str, clock: bool = False) -> tuple[pl.Expr, ...]:
    """A day/month date's numbers (first, second, year: Int32) and the widths of the first and the year, each null
    where the value is not one ('13/01/2024', '01.02.24'): `_dated_by`, `_after_every_reading`. With `clock`, its
    time of day too (hour on a 24-hour clock, minute, second: null where it has none; '6:00 PM' is hour 18)."""
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    if not clock:
        parts = text.str.extract_groups(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})\b")
    else:
        parts = text.str.extract_groups(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})\b"
                                        r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(?:([AaPp])\.?[Mm]\.?)?)?")
    a, b, c = (parts.struct.field(k).cast(pl.Int32) for k in ("1", "2", "3"))
    w1, w3 = (parts.struct.field(k).str.len_chars() for k in ("1", "3"))
    if not clock:
        return a, b, c, w1, w3
    hour = parts.struct.field("4").cast(pl.Int32)
    half = parts.struct.field("7").str.to_uppercase()
    hour = pl.when(half.is_null()).then(hour).otherwise(hour % 12 + pl.when(half == "P").then(12).otherwise(0))
    return a, b, c, w1, w3, hour, parts.struct.field("5").cast(pl.Int32), parts.struct.field("6").cast(pl.Int32)


def _earliest_reading(a: pl.Expr, b: pl.Expr, c: pl.Expr, w1: pl.Expr, w3: pl.Expr, *, year_first: bool) -> pl.Expr:
    """The earliest date (yyyymmdd, an integer) a day/month date of numbers a/b/c (widths w1, w3:
    `_day_month_parts`) can be read as: day first, month first, and a two-digit year first where `year_first`
    ('24/03/01': 2024-03-01); null where no reading is a date."""

    def year(y: pl.Expr, width: pl.Expr) -> pl.Expr:  # a two-digit year is 1970..2069, as strptime's %y
        return pl.when(width != 2).then(y).when(y < 70).then(y + 2000).otherwise(y + 1900)

    def key(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:  # null where it is no date (31 February)
        return pl.when(valid_date(y, m, d)).then(y * 10_000 + m * 100 + d)

    readings = [key(year(c, w3), b, a), key(year(c, w3), a, b)]  # day first, month first
    if year_first:
        readings.append(pl.when((w1 == 2) & (w3 == 2)).then(key(year(a, w1), b, c)))
    return pl.min_horizontal(readings)
