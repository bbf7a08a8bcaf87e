"""Time keys: one instant for `as_of`, and where each stage puts it on its own time axis.

A run is keyed by ONE instant. Wherever it enters (the `--as-of` option, a flow parameter, a
schedule's start time, a backfill date) it becomes a tz-aware UTC `datetime` through
`as_instant`; a timestamp written without an offset means UTC (never the machine's zone, never the
source's zone). A date alone (`2021-06-30`, a `date`) names a day of the source's calendar: it is
the midnight that day starts at in the source's `tz` (UTC when none is declared; `as_instant(value,
tz)`), so a daily source's run includes that date's row in any zone, as it does in UTC (read as
midnight UTC, 30 June on America/New_York data was 29 June 20:00 there and cut the run at 29 June).
The same date in the same zone is always the same instant: a rerun hits the same as_of. The stages
then express that instant on their own axis:

- `storage_naive(instant)`: naive UTC, for stores, registries and file names (stores keep naive
  UTC timestamps; two spellings of one instant give one key);
- `as_of_on_ds(instant, freq=..., tz=...)`: the instant on a source's `ds` axis, so that
  `ds <= as_of` keeps exactly what was known at that instant. Sub-daily `ds` are instants stored
  as naive UTC, so the bound is naive UTC. Daily and coarser `ds` are calendar dates (naive
  midnight): the bound is the instant's wall time in the source's declared `tz`, or in UTC when
  none is declared.
- `observed_through(instant, ..., time_label=...)`: the latest `ds` a run at that instant had
  observed. A source whose times label interval ends (`time_label = "end"`: hour-ending data) has its
  `ds` moved back to the interval's start at ingest (`label_start`), so the bound moves back with it:
  at 10:00 the hour labelled 10:00 (ds 09:00) is known, the one labelled 11:00 (ds 10:00) is not.
- `local_wall(frame_column, tz)`: naive UTC instants as local wall time (calendar features,
  plots), an expression.
- `utc_text(instant, tz)`: the instant for a person, the one way flowcast writes one: a midnight UTC as its date,
  any other as its UTC clock time with 'UTC' (seconds where not zero), plus the wall time and offset in `tz`.
- `utc_text_expr(column, tz)`: `utc_text` of a column of naive UTC instants, an expression (quarantine reasons).
- `wall_instant(wall, tz)`: a wall time of `tz` as the instant its clock first reads it (or a later time): the
  earlier of a repeated autumn time, the jump's instant for one the spring jump skips.
- `zones_keeping(examples)`: the zones whose clocks keep each (instant, UTC offset) pair given: times written with
  their offset and no tz, read on the clock that wrote them.

Nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo

import polars as pl

from flowcast.data.calendar import is_business, is_subdaily, parse_freq


def is_date_only(value: object) -> bool:
    """True for a `date` (not a datetime) and for ISO text without a time ('2021-06-30')."""
    if isinstance(value, str):
        text = value.strip()
        return len(text) == 10 and text[4:5] == "-" and text[7:8] == "-"
    return isinstance(value, date) and not isinstance(value, datetime)


@overload
def as_instant(value: None, tz: str | None = ...) -> None: ...
@overload
def as_instant(value: datetime | date | str, tz: str | None = ...) -> datetime: ...
def as_instant(value: datetime | date | str | None, tz: str | None = None) -> datetime | None:
    """The instant `value` names, as an aware UTC datetime.

    Aware datetimes are converted to UTC; naive ones (and ISO strings without an offset) mean
    UTC; a date alone (a `date`, or '2021-06-30') is the midnight that day starts at in zone `tz`
    (the source's; UTC when None); 'Z', ' UTC' (as `utc_text` writes an instant) and '+10:00' suffixes are
    understood. None stays None.
    Raises ValueError (naming the value) for text that is not an ISO date or timestamp."""
    if value is None:
        return None
    if is_date_only(value):
        try:
            day = date.fromisoformat(value.strip()) if isinstance(value, str) else value
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO date or timestamp (e.g. 2019-06-01, 2019-06-01T12:00, "
                "2019-06-01T12:00+10:00; without an offset it means UTC)"
            ) from None
        assert isinstance(day, date)
        return day_start(day, tz)
    if isinstance(value, str):
        text = value.strip()
        if text[-4:].upper() == " UTC":  # as `utc_text` writes it ('2019-06-01 06:00 UTC')
            text = text[:-4].rstrip() + "+00:00"
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
    raise TypeError(f"as_of must be a datetime, a date or an ISO string, got {type(value).__name__}: {value!r}")


def day_start(day: date, tz: str | None) -> datetime:
    """The instant (aware UTC) local day `day` starts at in zone `tz` (UTC when None): its midnight,
    the first one where midnight repeats, the first wall time of the day where a DST jump skips it."""
    return wall_instant(datetime.combine(day, time(0)), tz)


def wall_instant(wall: datetime, tz: str | None) -> datetime:
    """The instant (aware UTC) zone `tz`'s clock (UTC when None) first reads the naive wall time `wall`, or where
    its clock never reads it (the hour skipped when daylight saving starts) the instant it jumps past it: the earlier
    of a wall time repeated when daylight saving ends (zoneinfo's fold=0; the first midnight, `day_start`), the jump
    for a skipped one (pandas' nonexistent='shift_forward': New York's 2025-03-09 02:30 is 07:00 UTC, 03:00 EDT)."""
    zone = ZoneInfo(tz or "UTC")
    folds = [wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)]
    readings = [t for t in folds if t.astimezone(zone).replace(tzinfo=None) == wall]
    if readings:
        return min(readings)
    # skipped: fold=1 reads it in the offset after the jump (an instant before it), fold=0 in the one before (after
    # it); the jump lies between, at a whole second (zones change at whole seconds): found by halving
    lo, hi = min(folds).replace(microsecond=0), max(folds)
    if hi.microsecond:
        hi = hi.replace(microsecond=0) + timedelta(seconds=1)
    while hi - lo > timedelta(seconds=1):
        mid = lo + timedelta(seconds=int((hi - lo).total_seconds()) // 2)
        lo, hi = (mid, hi) if mid.astimezone(zone).replace(tzinfo=None) < wall else (lo, mid)
    return hi


@lru_cache(maxsize=1)
def _zones() -> tuple[tuple[str, ZoneInfo], ...]:
    """The IANA zones of places (Continent/City), by name, loaded once (zoneinfo keeps only a few alive): not the
    fixed offsets (Etc/) nor the legacy aliases of other zones (US/Eastern is America/New_York)."""
    import zoneinfo

    return tuple((z, ZoneInfo(z)) for z in sorted(zoneinfo.available_timezones()) if "/" in z and not z.startswith(
        ("Etc/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/")))


def zones_keeping(examples: Iterable[tuple[datetime, timedelta]], prefer: Sequence[str] = ()) -> list[str]:
    """The zones whose UTC offset at each instant of `examples` (aware, or naive UTC) is the offset paired with it
    (a time written with its offset: `wall - instant`), `prefer`'s first, then the others by name: the clocks that
    could have written them (several zones keep one clock: America/New_York, America/Toronto, ...)."""
    pairs = [(as_instant(t), offset) for t, offset in examples]
    zones = dict(_zones())
    named = [*((z, zones.get(z) or ZoneInfo(z)) for z in prefer), *zones.items()]
    return list(dict.fromkeys(z for z, zone in named if all(t.astimezone(zone).utcoffset() == offset
                                                            for t, offset in pairs)))


def old_date_key(as_of: datetime, tz: str | None) -> datetime | None:
    """The key a date alone had before it meant the source's local midnight: midnight UTC of that
    date (naive UTC, as stores keep it), when `as_of` is a local midnight of a zone other than UTC
    (a date alone's key now) and the two differ; else None."""
    if tz in (None, "UTC"):
        return None
    local = as_instant(as_of).astimezone(ZoneInfo(tz))
    if day_start(local.date(), tz) != as_instant(as_of):
        return None
    old = datetime.combine(local.date(), time(0))
    return old if old != storage_naive(as_of) else None


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


def label_start(ds: pl.Expr, freq: str, time_label: str = "start") -> pl.Expr:
    """A time of a source of one value per period (no `aggregate`) as the start of the interval it labels.
    `time_label = "start"`: as it is. `"end"` (hour-ending data: the value at 01:00 covers 00:00-01:00; a daily
    total dated by the next midnight): one step of freq back, on the instant for sub-daily data (naive UTC: a fixed
    step, so the hours around a daylight-saving change are each one hour long) and on the calendar for daily and
    weekly data (a business day ends at the next midnight). A month, quarter or year moves one day back, into the
    month it ends, which the grid reads as its period: 2024-02-01 is January, and an end written as the period's
    last day (2024-01-31) stays in it. The same move takes an as_of to the last `ds` it has observed
    (`observed_through`): the move is monotone, so label <= as_of exactly when moved label <= moved as_of."""
    if time_label == "start":
        return ds
    if parse_freq(freq)[1] in ("mo", "q", "y"):  # into the month it ends, which the grid reads as its period
        return ds.dt.offset_by("-1d")
    return ds.dt.offset_by("-1d" if is_business(freq) else f"-{freq}")


def observed_through(value: datetime | date | str, *, freq: str, tz: str | None, aggregate: str = "none",
                     time_label: str = "start") -> datetime:
    """The latest `ds` a run at `value` had observed, on the source's ds axis: `as_of_on_ds`, or for a
    source that aggregates finer rows into periods (`aggregate`), the start of a period that had ended
    by then (one period before it: the period holding as_of was not over, ingestion left it out); for
    a source labelled by interval ends, the start of the last interval that had ended (`label_start`)."""
    bound = as_of_on_ds(value, freq=freq, tz=tz)
    if aggregate == "none" and time_label == "start":
        return bound
    return pl.select(observed_through_expr(pl.lit(bound), freq=freq, aggregate=aggregate,
                                           time_label=time_label)).item()


def observed_through_expr(as_of_ds: pl.Expr, *, freq: str, aggregate: str = "none",
                          time_label: str = "start") -> pl.Expr:
    """`observed_through` of an as_of already on the ds axis, as an expression (one per published as_of).
    An aggregated source's end labels are already inside the periods they end (ingest moves them 1 us back)."""
    if aggregate == "none":
        return label_start(as_of_ds, freq, time_label)
    n, unit = parse_freq(freq)
    return as_of_ds.dt.offset_by("-1d" if unit == "b" else f"-{n}{unit}")


def local_wall(ds: pl.Expr, tz: str | None) -> pl.Expr:
    """Naive UTC instants (a Datetime expression) as naive wall time in `tz`; unchanged when tz
    is None or UTC."""
    if tz is None or tz == "UTC":
        return ds
    return ds.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None)


def season_ago_local(ds: pl.Expr, last: pl.Expr, tz: str, season_us: int) -> pl.Expr:
    """The instant at the same wall time of `tz` as `ds`, whole seasons of `season_us` microseconds of wall time
    earlier: as few as reach `last` (the last observation of the series, at least one season): seasonal naive on
    the local clock, 24 local hours back, 23 or 25 instants across a daylight-saving change. A wall time the clocks
    repeat in autumn gives its first instant; one they skip in spring is read in the offset of the instant whole
    seasons of `season_us` before `ds`, the offset before the change (the hour after the skipped one). `ds`, `last`
    and the result are naive UTC instants; where the offset does not change, `ds` less the seasons."""
    gap = (local_wall(ds, tz) - local_wall(last, tz)).dt.total_microseconds()
    seasons = pl.max_horizontal(pl.lit(1, pl.Int64), -(-gap // season_us))  # ceil, at least one
    back = pl.duration(microseconds=seasons * season_us, time_unit="us")
    wall = local_wall(ds, tz) - back
    first = wall.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone(
        "UTC").dt.replace_time_zone(None)
    before = ds - back
    return pl.coalesce(first, wall - (local_wall(before, tz) - before))


def naive_utc_expr(column: str, dtype: pl.DataType) -> pl.Expr:
    """Column `column` (of type `dtype`) as naive UTC microseconds, the stores' axis: a zoned Datetime
    converted (two spellings of one instant become one value), a naive one kept (it means UTC)."""
    expr = pl.col(column)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return expr.cast(pl.Datetime("us"))


def utc_text(value: datetime | date | str | None, tz: str | None = None, *, zone: bool = True,
             read_in: str | None = None, clock: bool = False) -> str:
    """An instant as a person reads it, the one way flowcast writes one (messages, tables, run names, artifacts):
    a midnight UTC is its date alone ('2026-12-05'); any other instant its UTC clock time, with 'UTC'
    ('2026-12-05 03:00 UTC'), and its seconds only where they are not zero ('2026-12-05 05:58:42 UTC', a registration
    time; fractions of a second are left out). Where `tz` is a zone other than UTC, its wall time there follows with
    the offset and the zone ('2026-12-03 04:40 UTC (2026-12-02 23:40 -05:00 America/New_York)': the repeated autumn
    hour reads apart by its offset), and a midnight UTC is written '00:00 UTC' so the two clocks read apart. An aware
    datetime is converted, a naive one or ISO text without an offset means UTC, a date alone is the midnight it
    starts at in `tz` (`as_instant`); None (a run without an as_of) is 'now'. `as_instant` reads the text back.
    `zone=False`: a cell of a column whose header says '(UTC)' ('as_of (UTC)'), the same text without ' UTC' (a
    table of sub-daily as_ofs did not fit 80 columns with it in every row). `read_in`: the zone a date alone is read in
    where the text is given back (`--as-of` of a dataset whose source has a `tz`): a midnight UTC that is not that
    zone's midnight keeps its clock ('2024-03-01 00:00 UTC'), its date alone read back another instant. `clock`: a
    midnight UTC keeps its clock too ('2024-03-11 00:00'), an instant among others of a day's hours (a sub-daily
    table's ds: it read '2024-03-11' between '2024-03-10 23:45' and '2024-03-11 00:15')."""
    if value is None:
        return "now"
    instant = as_instant(value, tz)
    local = tz is not None and tz != "UTC"
    if not local and not clock and (instant.hour, instant.minute, instant.second, instant.microsecond) == (0, 0, 0, 0) and (
            read_in is None or day_start(instant.date(), read_in) == instant):
        return f"{instant:%Y-%m-%d}"
    text = f"{_clock_text(instant)} UTC" if zone or local else _clock_text(instant)
    if not local:
        return text
    assert tz is not None
    return f"{text} ({zone_text(instant, tz)})"


def utc_text_expr(column: pl.Expr, tz: str | None = None, *, zone: bool = True) -> pl.Expr:
    """`utc_text` of a column of naive UTC instants, as a polars expression: a midnight its date alone, any other
    instant its clock time (seconds only where they are not zero, no fraction) with ' UTC' (without it where
    `zone=False`: a calendar's date with a time of day, a column whose header says '(UTC)'). Where `tz` is a zone
    other than UTC, its wall time there follows with the offset and the zone, and a midnight UTC keeps its clock
    (`utc_text(value, tz)`: '2023-10-29 01:00 UTC (2023-10-29 02:00 +01:00 Europe/Berlin)'). Nulls stay null."""
    clock = _clock_text_expr(column)
    if tz is None or tz == "UTC":
        return pl.when(column.dt.time() == time(0)).then(column.dt.to_string("%Y-%m-%d")).otherwise(
            clock + " UTC" if zone else clock)
    wall = column.dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
    return pl.format("{} UTC ({} {} {})", clock, _clock_text_expr(wall), wall.dt.to_string("%:z"), pl.lit(tz))


def _clock_text_expr(column: pl.Expr) -> pl.Expr:
    """`_clock_text` of a column: a date and its clock time, seconds only where they are not zero."""
    whole = (column.dt.second() == 0) & (column.dt.microsecond() == 0)
    return pl.when(whole).then(column.dt.to_string("%Y-%m-%d %H:%M")).otherwise(column.dt.to_string("%Y-%m-%d %H:%M:%S"))


def zone_text(value: datetime | date | str, tz: str) -> str:
    """An instant's wall time in zone `tz`, as `utc_text` writes it after the UTC time: its clock (seconds only where
    not zero), offset and zone ('2026-12-02 23:40 -05:00 America/New_York'). Input as `as_instant` reads it."""
    wall = as_instant(value, tz).astimezone(ZoneInfo(tz))
    return f"{_clock_text(wall)} {_offset_text(wall.utcoffset())} {tz}"


def _clock_text(t: datetime) -> str:
    """A date and its clock time, seconds only where they are not zero ('2026-12-05 03:00', '... 05:58:42')."""
    return t.strftime("%Y-%m-%d %H:%M" + (":%S" if t.second or t.microsecond else ""))


def offset_text_expr(column: pl.Expr) -> pl.Expr:
    """`_offset_text` of a column of durations (the UTC offset each time was written in), as a polars expression:
    '+01:00', '-05:00', '+05:30', with its seconds where it has them ('-04:56:02'). Nulls stay null."""
    seconds = column.dt.total_seconds()
    whole = seconds.abs()
    secs = whole % 60
    return pl.format("{}{}:{}{}", pl.when(seconds < 0).then(pl.lit("-")).otherwise(pl.lit("+")),
                     _two_digits(whole // 3600), _two_digits(whole % 3600 // 60),
                     pl.when(secs > 0).then(pl.lit(":") + _two_digits(secs)).otherwise(pl.lit("")))


def _two_digits(number: pl.Expr) -> pl.Expr:
    """A whole number under 100 as two digits: 5 -> '05'."""
    return number.cast(pl.Int64).cast(pl.Utf8).str.zfill(2)


def _offset_text(offset: timedelta | None) -> str:
    """A UTC offset in ISO 8601 extended form: '-05:00', '+05:30', '+00:00', and with its seconds where a zone's
    old local mean time had them ('-04:56:02', New York's until 1883); None (a naive time) reads as '+00:00'."""
    seconds = int((offset or timedelta(0)).total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{'-' if seconds < 0 else '+'}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def iso(value: datetime | date | str | None) -> str | None:
    """ISO text of the instant in UTC with its offset ('2019-06-01T00:00:00+00:00')."""
    instant = as_instant(value)
    return None if instant is None else instant.isoformat()
