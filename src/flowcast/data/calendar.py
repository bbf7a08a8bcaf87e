"""Calendar features: future-known covariates derived from `ds` and the frequency alone.

Used by preprocessing for the history and by prediction for the forecast horizon, so both
sides compute exactly the same columns. Each feature is a sin/cos pair in [-1, 1].
"""

from __future__ import annotations

import math
import re

import polars as pl

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_freq(freq: str) -> tuple[int, str]:
    """'30m' -> (30, 'm'); '1mo' -> (1, 'mo')."""
    m = re.fullmatch(r"(\d+)(ns|us|ms|s|m|h|d|w|mo|q|y)", freq)
    if not m:
        raise ValueError(f"not a polars duration string: {freq!r} (use 30m, 1h, 1d, 1w, 1mo, 1q, 1y)")
    return int(m.group(1)), m.group(2)


_SUBDAILY_UNITS = frozenset({"ns", "us", "ms", "s", "m", "h"})


def multiday_period(freq: str) -> int | None:
    """Days in one period of a grid of several days ('1w' 7, '2w' 14, '3d' 3); None for other grids."""
    n, unit = parse_freq(freq)
    if unit == "w":
        return 7 * n
    if unit == "d" and n > 1:
        return n
    return None


def is_subdaily(freq: str) -> bool:
    """True for periods shorter than a day ('30m', '1h'): their `ds` are instants, not dates."""
    return parse_freq(freq)[1] in _SUBDAILY_UNITS


def season_length(freq: str) -> int:
    """The usual seasonal period for a frequency: 12 for monthly, 48 for half-hourly, 1 for yearly."""
    n, unit = parse_freq(freq)
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
    if unit in {"ns", "us", "ms", "s", "m", "h", "d", "w", "mo"}:
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
