"""Time keys: one instant for `as_of`, and where each stage puts it on its own time axis.

A run is keyed by ONE instant. Wherever it enters (the `--as-of` option, a flow parameter, a
schedule's start time, a backfill date) it becomes a tz-aware UTC `datetime` through
`as_instant`; a value written without an offset means UTC (never the machine's zone, never the
source's zone). The stages then express that instant on their own axis:

- `storage_naive(instant)`: naive UTC, for stores, registries and file names (stores keep naive
  UTC timestamps; two spellings of one instant give one key);
- `as_of_on_ds(instant, freq=..., tz=...)`: the instant on a source's `ds` axis, so that
  `ds <= as_of` keeps exactly what was known at that instant. Sub-daily `ds` are instants stored
  as naive UTC, so the bound is naive UTC. Daily and coarser `ds` are calendar dates (naive
  midnight): the bound is the instant's wall time in the source's declared `tz`, or in UTC when
  none is declared.
- `local_wall(frame_column, tz)`: naive UTC instants as local wall time (calendar features,
  plots), an expression.

Nothing here reads the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import overload
from zoneinfo import ZoneInfo

import polars as pl

from flowcast.data.calendar import is_subdaily


@overload
def as_instant(value: None) -> None: ...
@overload
def as_instant(value: datetime | date | str) -> datetime: ...
def as_instant(value: datetime | date | str | None) -> datetime | None:
    """The instant `value` names, as an aware UTC datetime.

    Aware datetimes are converted to UTC; naive ones (and ISO strings without an offset) mean
    UTC; a `date` is its midnight in UTC; 'Z' and '+10:00' suffixes are understood. None stays None.
    Raises ValueError (naming the value) for text that is not an ISO date or timestamp."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO date or timestamp (e.g. 2019-06-01, 2019-06-01T12:00, "
                "2019-06-01T12:00+10:00; without an offset it means UTC)"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.tzinfo.utcoffset(value) is not None:
            value = value.astimezone(UTC)
        # a plain datetime (Prefect hands over pendulum/whenever subclasses), microseconds kept
        return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                        value.microsecond, tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    raise TypeError(f"as_of must be a datetime, a date or an ISO string, got {type(value).__name__}: {value!r}")


@overload
def storage_naive(value: None) -> None: ...
@overload
def storage_naive(value: datetime | date | str) -> datetime: ...
def storage_naive(value: datetime | date | str | None) -> datetime | None:
    """The instant as naive UTC (what stores, registries and file names keep)."""
    instant = as_instant(value)
    return None if instant is None else instant.replace(tzinfo=None)


def wall_time(value: datetime | date | str, tz: str | None) -> datetime:
    """The instant as naive wall time in zone `tz` (UTC when None)."""
    return as_instant(value).astimezone(ZoneInfo(tz or "UTC")).replace(tzinfo=None)


def as_of_on_ds(value: datetime | date | str, *, freq: str, tz: str | None) -> datetime:
    """The instant on a source's `ds` axis (see the module docstring)."""
    if is_subdaily(freq):
        return storage_naive(value)
    return wall_time(value, tz)


def local_wall(ds: pl.Expr, tz: str | None) -> pl.Expr:
    """Naive UTC instants (a Datetime expression) as naive wall time in `tz`; unchanged when tz
    is None or UTC."""
    if tz is None or tz == "UTC":
        return ds
    return ds.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None)


def iso(value: datetime | date | str | None) -> str | None:
    """ISO text of the instant in UTC with its offset ('2019-06-01T00:00:00+00:00')."""
    instant = as_instant(value)
    return None if instant is None else instant.isoformat()
