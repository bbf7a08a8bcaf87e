"""The zone conversions computed once per distinct time (`distinct.per_distinct`) give what the straightforward
per-row computation gives, across daylight-saving changes: `zones._to_wall` and `validate._written_offset`
against Python's zoneinfo row by row. Each frame holds every quarter hour of 2024 (each change of the four zones: London's and
New York's hour, Lord Howe's half hour, none in a fixed-offset zone), each time on several rows, in shuffled
order, with nulls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from flowcast.data.validate import DS_OFFSET, DS_RAW, _written_offset
from flowcast.data.zones import _to_wall

ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Etc/GMT-5"]
QUARTER = timedelta(minutes=15)
TIMES = [datetime(2024, 1, 1) + i * QUARTER for i in range(366 * 96)]


def _shared(values: list[datetime | None], copies: int = 2, seed: int = 49) -> pl.Series:
    """Each value on `copies` rows, and 50 nulls, shuffled: rows that share their times, in no order."""
    return pl.Series("t", [*values * copies, *[None] * 50], dtype=pl.Datetime("us")).shuffle(seed=seed)


def _wall(instant: datetime, tz: str) -> datetime:
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def _zone_offset(wall: datetime, tz: str) -> timedelta | None:
    """The zone's UTC offset at a wall time, None where the wall time is two instants (the repeated autumn times)
    or none (the skipped spring ones)."""
    zone = ZoneInfo(tz)
    early, late = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        return None
    return early.utcoffset()


def _changes(values: pl.Series, tz: str) -> int:
    """How many times the zone's offset changes over the sorted distinct instants `values`."""
    zone = ZoneInfo(tz)
    offsets = [t.replace(tzinfo=UTC).astimezone(zone).utcoffset() for t in values.drop_nulls().unique().sort()]
    return sum(a != b for a, b in pairwise(offsets))


@pytest.mark.parametrize("tz", ZONES)
def test_to_wall_is_each_rows_wall_time(tz: str) -> None:
    frame = _shared(TIMES).to_frame()
    got = frame.select(_to_wall(pl.col("t"), tz).alias("wall"))["wall"].to_list()
    want = [None if t is None else _wall(t, tz) for t in frame["t"].to_list()]
    assert got == want
    assert _changes(frame["t"], tz) == (0 if tz.startswith("Etc/") else 2)


@pytest.mark.parametrize("tz", ZONES)
def test_written_offset_is_each_rows_offset_in_the_zone(tz: str) -> None:
    walls = _shared(TIMES, seed=7)
    # every 5th row written with an offset of its own (kept as written), the rest read in the zone
    written = pl.Series([timedelta(hours=i % 3 - 1) if i % 5 == 0 else None for i in range(walls.len())],
                        dtype=pl.Duration("us"))
    frame = pl.DataFrame({DS_RAW: walls, DS_OFFSET: written})
    offset = _written_offset(frame, "1d", tz)
    assert offset is not None
    got = frame.select(offset)["__offset"].to_list()
    want = [None if wall is None or wall.time() == datetime.min.time() else
            off if off is not None else _zone_offset(wall, tz)
            for wall, off in zip(frame[DS_RAW].to_list(), written.to_list(), strict=True)]
    assert got == want
    # the repeated and skipped wall times of the zones with daylight saving are among the rows (null there)
    unwritten = [w for w, off in zip(frame[DS_RAW].to_list(), written.to_list(), strict=True)
                 if w is not None and off is None and w.time() != datetime.min.time()]
    assert any(_zone_offset(w, tz) is None for w in unwritten) == (not tz.startswith("Etc/"))
