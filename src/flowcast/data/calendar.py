"""The frequency's grid and calendar features: everything derived from `ds` and the frequency alone.

Grid arithmetic lives here, once: `shift` (a date moved by k periods), `periods_between` (the steps
between two grid points), `grid_point` (a series' grid from its first point), `on_grid` (membership
that the source's parsing cannot give by truncation) and `grid_dates` (an eager range). Most
frequencies are polars durations; `1b` (business days) is Monday to Friday, which polars'
`offset_by` and `datetime_range` have no unit for: it steps with `dt.add_business_days`.

Calendar features are used by preprocessing for the history and by prediction for the forecast
horizon, so both sides compute exactly the same columns. Each feature is a sin/cos pair in [-1, 1].
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import polars as pl

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


FREQ_PATTERN = r"(\d+)(ns|us|ms|s|m|h|d|b|w|mo|q|y)"


def parse_freq(freq: str) -> tuple[int, str]:
    """'30m' -> (30, 'm'); '1mo' -> (1, 'mo'); '1b' -> (1, 'b') (business days: only one at a time)."""
    m = re.fullmatch(FREQ_PATTERN, freq)
    if not m:
        raise ValueError(f"not a polars duration string: {freq!r} (use 30m, 1h, 1d, 1b, 1w, 1mo, 1q, 1y)")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "b" and n != 1:
        raise ValueError(f"freq {freq!r}: business days come one period at a time, '1b' (Monday to Friday)")
    return n, unit


def is_business(freq: str) -> bool:
    """True for '1b': periods are the dates Monday to Friday (holidays are not known: a missing weekday
    is a gap like any other)."""
    return parse_freq(freq)[1] == "b"


def shift(ds: pl.Expr, k: pl.Expr | int, freq: str) -> pl.Expr:
    """`ds` moved by `k` periods of `freq` (k may be negative, an int or an integer expression):
    calendar months for 1mo/1q/1y, Monday to Friday for 1b (a Saturday or Sunday counts from the
    Friday before it, the business day whose period holds it: Saturday + 1 is Monday)."""
    n, unit = parse_freq(freq)
    steps = (k if isinstance(k, pl.Expr) else pl.lit(k)).cast(pl.Int64) * n
    if unit == "b":
        return ds.dt.add_business_days(steps, roll="backward")
    return ds.dt.offset_by(pl.format("{}" + unit, steps))


_MONTHS = {"mo": 1, "q": 3, "y": 12}
_DURATION_ARG = {"ns": "nanoseconds", "us": "microseconds", "ms": "milliseconds", "s": "seconds", "m": "minutes",
                 "h": "hours", "d": "days", "w": "weeks"}


def _step_us(unit: str, n: int) -> pl.Expr:
    """Microseconds in `n` fixed-length units (not months, not business days)."""
    kw: dict[str, Any] = {_DURATION_ARG[unit]: n}
    return pl.duration(**kw).dt.total_microseconds()


def same_grid(t: pl.Expr, ds: pl.Expr, freq: str) -> pl.Expr:
    """Whether `t` is a whole number of periods of `freq` from `ds` (on the grid of a series holding `ds`): a local
    time a season before `ds` is not where a change of offset is not a whole number of periods (Lord Howe's half
    hour on hourly data)."""
    return shift(t, periods_between(t, ds, freq), freq) == ds


def periods_between(first: pl.Expr, last: pl.Expr, freq: str) -> pl.Expr:
    """Number of grid steps from `first` to `last` (both on the grid; Int64; at 1b `last` may fall on a
    weekend: it counts from the Friday before it)."""
    n, unit = parse_freq(freq)
    if unit in _MONTHS:
        months = (last.dt.year() - first.dt.year()).cast(pl.Int64) * 12 + (
            last.dt.month().cast(pl.Int64) - first.dt.month().cast(pl.Int64)
        )
        return months // (_MONTHS[unit] * n)
    if unit == "b":  # business days in [first, last): the steps between two of them. A Saturday or
        # Sunday (an as_of read over a weekend) counts as the Friday whose period holds it, as in `shift`
        def day(x: pl.Expr) -> pl.Expr:
            return x.dt.date().dt.add_business_days(0, roll="backward")

        return pl.business_day_count(day(first), day(last)).cast(pl.Int64)
    return (last - first).dt.total_microseconds() // _step_us(unit, n)


def grid_point(first: pl.Expr, pos: pl.Expr, freq: str) -> pl.Expr:
    """The grid point `pos` periods after `first` (`first` on the grid, pos >= 0): a series' grid."""
    n, unit = parse_freq(freq)
    if unit in _MONTHS:
        months = first.dt.year().cast(pl.Int64) * 12 + first.dt.month().cast(pl.Int64) - 1 + pos * (_MONTHS[unit] * n)
        return pl.datetime(months // 12, months % 12 + 1, 1, time_unit="us")
    if unit == "b":
        return shift(first, pos, freq)
    return first + pl.duration(microseconds=pos * _step_us(unit, n), time_unit="us")


def on_grid(ds: pl.Expr, freq: str) -> pl.Expr:
    """Whether `ds` (already aligned to its period's start by the source) is a grid point: False for a
    Saturday or Sunday at 1b; True at every other frequency, whose alignment puts every time on the grid."""
    if is_business(freq):
        return ds.dt.weekday() <= 5
    return pl.lit(True)


def grid_dates(start: datetime, end: datetime, freq: str) -> list[datetime]:
    """The grid points from `start` to `end` inclusive, stepping by `freq` from `start` (at 1b: the
    weekdays among the days from `start`, at its time of day)."""
    if is_business(freq):
        days = pl.datetime_range(start, end, interval="1d", eager=True, time_unit="us")
        return days.filter(days.dt.weekday() <= 5).to_list()
    return pl.datetime_range(start, end, interval=freq, eager=True, time_unit="us").to_list()


_SUBDAILY_UNITS = frozenset({"ns", "us", "ms", "s", "m", "h"})


def multiday_period(freq: str) -> int | None:
    """Days in one period of a grid of several days ('1w' 7, '2w' 14, '3d' 3); None for other grids."""
    n, unit = parse_freq(freq)
    if unit == "w":
        return 7 * n
    if unit == "d" and n > 1:
        return n
    return None


def month_multiple(freq: str) -> int | None:
    """Months in one period of a grid of several months that keeps the month its data are labelled with
    ('3mo' 3, '12mo' 12, '2q' 6, '2y' 24: fiscal quarters and years, e.g. years ending in June); None for '1mo',
    '1q' and '1y', which are calendar periods (a date anywhere in one is read as its first day)."""
    n, unit = parse_freq(freq)
    months = {"mo": n, "q": 3 * n, "y": 12 * n}.get(unit)
    if months is None or months == 1 or freq in ("1q", "1y"):
        return None
    return months


def is_subdaily(freq: str) -> bool:
    """True for periods shorter than a day ('30m', '1h'): their `ds` are instants, not dates."""
    return parse_freq(freq)[1] in _SUBDAILY_UNITS


def season_length(freq: str) -> int:
    """The usual seasonal period for a frequency: 12 for monthly, 48 for half-hourly, 1 for yearly."""
    n, unit = parse_freq(freq)
    if unit == "b":
        return 5  # a business week
    if unit == "mo":
        return max(1, 12 // n)
    if unit == "q":
        return max(1, 4 // n)
    if unit == "y":
        return 1
    if unit == "w":
        return max(1, 52 // n)
    if unit == "d" and n % 7 == 0:  # '7d', '14d': weeks written in days, as '1w', '2w' (it was 1: no season)
        return max(1, 52 // (n // 7))
    seconds = n * _UNIT_SECONDS[unit]
    if seconds < 86400:
        return max(1, round(86400 / seconds))  # daily cycle
    return max(1, round(7 * 86400 / seconds))  # weekly cycle


_UNIT_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
            "w": 7 * 86400 * 10**9}  # exact, where `_UNIT_SECONDS` is a float


def week_periods(freq: str) -> int | None:
    """The number of periods of `freq` in 7 days: '1d' 7, '1h' 168, '30m' 336, '1b' 5 (a business week), whatever
    the data's season (`season_length`, or a `preprocess.season_length` of 168 on hourly data). None where 7 days are
    not a whole number of periods ('5d', '2d', '5h') or fewer than two ('7d', '1w', monthly and coarser)."""
    n, unit = parse_freq(freq)
    if unit == "b":
        return 5  # '1b' only (`parse_freq`)
    if unit not in _UNIT_NS:
        return None  # months, quarters, years
    week, period = 7 * _UNIT_NS["d"], n * _UNIT_NS[unit]
    return week // period if week % period == 0 and week // period >= 2 else None


def local_season_us(freq: str, tz: str | None, season: int) -> int | None:
    """The length in microseconds of a season of `season` periods that the local clock of `tz` measures: for a
    sub-daily `freq` whose season spans whole days (24 hours, a week of hours) in a zone other than UTC, where 'the
    same time a season ago' is a wall time (24 local hours, 23 or 25 instants across a daylight-saving change).
    None otherwise (no tz, UTC, daily and coarser data, whose ds are already local dates, or a season of part of a
    day): a season is then `season` periods."""
    n, unit = parse_freq(freq)
    if tz is None or tz == "UTC" or unit not in _SUBDAILY_UNITS:
        return None
    us = round(n * season * _UNIT_SECONDS[unit] * 1e6)
    return us if us > 0 and us % 86_400_000_000 == 0 else None


def _cycle(name: str, value: pl.Expr, period: float) -> list[pl.Expr]:
    angle = value.cast(pl.Float64) * (2 * math.pi / period)
    return [angle.sin().alias(f"{name}_sin"), angle.cos().alias(f"{name}_cos")]


def calendar_exprs(freq: str, ds: str = "ds", tz: str | None = None) -> list[pl.Expr]:
    """Expressions computing the calendar features that make sense at `freq`. Sub-daily `ds` are
    naive UTC instants: with the source's `tz` the features follow its LOCAL time (people's days
    and weeks, daylight saving included). Daily and coarser `ds` are already local dates."""
    _, unit = parse_freq(freq)
    col = pl.col(ds)
    if tz is not None and tz != "UTC" and unit in _SUBDAILY_UNITS:
        col = col.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None)
    exprs: list[pl.Expr] = []
    if unit in {"ns", "us", "ms", "s", "m", "h"}:
        minutes = col.dt.hour().cast(pl.Int32) * 60 + col.dt.minute().cast(pl.Int32)
        exprs += _cycle("cal_day", minutes, 1440)
    if unit in {"ns", "us", "ms", "s", "m", "h", "d"}:
        exprs += _cycle("cal_week", col.dt.weekday().cast(pl.Int32) - 1, 7)
    if unit == "b":  # the business week: Monday 0 .. Friday 4
        exprs += _cycle("cal_week", col.dt.weekday().cast(pl.Int32) - 1, 5)
    if unit in {"ns", "us", "ms", "s", "m", "h", "d", "b", "w", "mo"}:
        exprs += _cycle("cal_year", col.dt.ordinal_day().cast(pl.Int32) - 1, 366)
    if unit == "q":
        exprs += _cycle("cal_quarter", col.dt.quarter().cast(pl.Int32) - 1, 4)
    return exprs


def calendar_columns(freq: str) -> list[str]:
    """Names of the calendar features at `freq` (possibly empty, e.g. for yearly data)."""
    frame = pl.DataFrame({"ds": pl.Series([], dtype=pl.Datetime("us"))})
    return frame.select(calendar_exprs(freq)).columns


def add_calendar(frame: pl.DataFrame | pl.LazyFrame, freq: str, tz: str | None = None) -> pl.DataFrame | pl.LazyFrame:
    return frame.with_columns(calendar_exprs(freq, tz=tz))
