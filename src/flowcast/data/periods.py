"""Planned rows and aggregated periods: which rows a run at as_of has observed, on the source's ds axis.

A row after as_of that carries a value of a declared future-known covariate is a planned row (`planned_row`); a row of
an aggregated source (finer data combined into periods) is observed once its period is over (`period_not_over`,
`observed_at`); `as_of_bound` is the bound on the ds axis that a run at as_of cuts by.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.calendar import is_business, month_multiple, shift
from flowcast.data.schemas import DS_OFFSET, DS_RAW, DS_SEEN, RAW_PREFIX
from flowcast.data.zones import zone_offset
from flowcast.timekeys import as_of_on_ds, local_wall, observed_through


def planned_row(source: SourceConfig) -> pl.Expr:
    """True on a raw row with a value in a declared future-known covariate (a planned value when
    the row is dated after as_of); False for a source without future_cols."""
    future = list(dict.fromkeys(source.future_cols))
    if not future:
        return pl.lit(False)
    return pl.any_horizontal([pl.col(RAW_PREFIX + c).is_not_null() for c in future])


def period_not_over(source: SourceConfig, bound: datetime, apart: bool = True) -> pl.Expr:
    """True on a row of an aggregated source (`aggregate`: finer data combined into periods) whose
    period has not ended at `bound` (as_of on the ds axis): the rows seen so far are part of that
    period, not all of it (transactions summed to days, a run at 06:00; days summed to months, a run
    on the 20th). Its rows wait until it ends, as rows after as_of do. Always False without aggregate:
    a row of the source's own frequency is that period's value.

    Rows written with an offset (`DS_SEEN`, their instant on the ds axis, apart from `DS_RAW`, their time as written)
    are cut by the instant too: a period ends at the instant its end names in the offset its rows were written in at
    that end (the latest of them, `period_offset`: on a daylight-saving change day the offset after the change, the
    day of 10 March 2024 at -04:00 over at 04:00 UTC on 11 March, not at 05:00 by its first hours' -05:00), read on
    the ds axis by the zone's rules at that instant (`source.tz`; UTC without one): no period is summed in part, and
    none waits an hour past its end.

    `apart` False (`Ingested.seen_apart`: no row's DS_SEEN differs from its DS_RAW) leaves that window over (series,
    period) out: every shift is 0, the same rows, without a pass that groups every row of the source (a third
    of validating 4.3M hourly rows summed to days, `bench/aggregate_pit.py`)."""
    over = period_over_at(source, apart)
    if over is None:
        return pl.lit(False)
    return (pl.col(DS_SEEN) <= bound) & (over > bound).fill_null(False)


def period_over_at(source: SourceConfig, apart: bool = True) -> pl.Expr | None:
    """The instant (on the ds axis) from which a row's period of an aggregated source is over (`period_not_over`'s
    end: the instant its end names in its rows' offset, `apart`); None without `aggregate`."""
    if source.aggregate == "none":
        return None
    end = period_end(pl.col("ds"), source.freq)
    if not apart:
        return end
    # the instant the end names (naive UTC), on the ds axis: its wall time in the source's zone, converted per row:
    # `_to_wall` (once per distinct instant) reads its values four times, and no common subexpression holds a window,
    # so the window over (series, period) ran four times (1M hourly rows summed to days: 0.40 -> 0.16 CPU s)
    seen_end = local_wall(end - period_offset(), source.tz)
    return pl.coalesce(seen_end, end)


def period_offset() -> pl.Expr:
    """The offset a period's end is written in, per row: that of its rows' latest instant, among those written with
    an offset (`DS_OFFSET`; null where none was): on a daylight-saving change day its last hours' (the latest of its
    rows' shifts was an hour off in spring, -05:00 for New York's 10 March, which ends at -04:00). The offset of the
    row whose instant is the latest: one window, no sort. (It was read as the latest wall time less the latest instant,
    taken for two maxima of one row; where a clock goes back at midnight (Santiago) the repeated hour ends the day, and
    a row at 23:45 -03:00 before one at 23:15 -04:00 read -03:30: the day over half an hour before it ended.)"""
    written = pl.col(DS_OFFSET)
    instant = pl.when(written.is_not_null()).then(pl.col(DS_RAW) - written)
    return written.get(instant.arg_max()).over("unique_id", "ds")


def seen_shifts(rows: pl.Series | None, source: SourceConfig) -> pl.DataFrame | None:
    """unique_id, ds, offset (a Duration), cut (naive UTC), lag (a Duration) of the periods of `source` observed, from
    `seen_shifts_expr`'s list, where some period is seen at another instant than its ds names on the ds axis (daily
    or coarser times written with an offset, without a tz that reads them; dates written as midnight UTC timestamps in
    a tz source; start-labelled times of day, '09:00', in a source without a tz). Per period, those of its latest row
    by the instant (`period_offset`, as `period_not_over` cuts by): the offset the series was written in when the
    period became observed, that instant (`cut`: the row's time in its offset; an aggregated source's period end; an
    end-labelled time's moved back to its interval's start with it, `label_start`), and how long after its day's
    start on that clock a start-labelled time is (`lag`: `sources.time_of_day_lag`, 0 for the rest). A row of a
    source with a tz written without an offset is in its zone's offset at its wall time (`zones.zone_offset`, taken
    here of the rows kept: not of every row read). Sorted; None where no period is seen apart: every time as written
    is then the instant on the ds axis it is seen from, and the ds axis alone says which periods a run had observed
    (`timekeys.observed_through`).

    Realized accuracy, freshness and the production model's training cut (`evaluation.realized.
    observed_through_series`) read each series' clock at an as_of in the offset of its period observed nearest that
    instant: the periods ingest kept for a run at that instant, by the one rule it cut them by (`observed_at`)."""
    if rows is None or not len(rows):
        return None
    frame = pl.DataFrame({"s": rows}).unnest("s")
    if not frame.select(pl.col("apart").any()).item():
        return None
    if source.tz is not None:  # a row without an offset: its zone's at its wall time there (of the rows kept alone)
        frame = frame.with_columns(pl.col("offset").fill_null(zone_offset(pl.col("raw"), source.tz))
                                   .fill_null(timedelta(0)))
    # the latest row by its instant, as `period_offset` reads it (not the latest wall time as written: the repeated
    # hour that ends a day where a clock goes back at midnight repeats earlier wall times); of rows at one instant the
    # first written, by a stable sort: each period's first row once sorted (a group_by's get(arg_max) per period, then
    # a sort, took 9.6 s of 1,000,000 periods of one row each on a loaded machine; this 0.2 s)
    instant = pl.col("raw") - pl.col("offset")
    ordered = frame.sort([pl.col("unique_id"), pl.col("ds"), instant], descending=[False, False, True],
                         maintain_order=True)
    first = pl.col("unique_id").ne_missing(pl.col("unique_id").shift()) | pl.col("ds").ne_missing(pl.col("ds").shift())
    latest = ordered.filter(first)
    end = period_end(pl.col("ds"), source.freq) if source.aggregate != "none" else pl.col("raw")
    return latest.select("unique_id", "ds", "offset", (end - pl.col("offset")).alias("cut"), "lag")


def period_end(ds: pl.Expr, freq: str) -> pl.Expr:
    """The end of the period starting at `ds`: the next period's start (1b's Friday ends on Saturday
    00:00, not on Monday)."""
    return ds.dt.offset_by("1d") if is_business(freq) else shift(ds, 1, freq)


def end_label(ds: pl.Expr, freq: str) -> pl.Expr:
    """The label an end-labelled source (`time_label = "end"`) writes for the interval starting at `ds`: the next
    period's start (`period_end`), or for a fiscal grid ('12mo', '3mo': ds is the month the period ends in,
    `label_to_start`) the next month's first day."""
    return ds.dt.offset_by("1mo") if month_multiple(freq) else period_end(ds, freq)


def as_of_bound(source: SourceConfig, as_of: datetime | date | str, freq: str | None = None) -> datetime:
    """The `bound` a run at `as_of` cuts `source`'s rows by (`observed_at`, `Ingested.as_of_ds`), on its ds axis (of
    `freq`, the source's own when None): an end-labelled source's moves back as its times did (at 10:00 the hour
    labelled 11:00, ds 10:00, is not over, `timekeys.observed_through`); an aggregated source's is as_of itself on the
    ds axis (`timekeys.as_of_on_ds`), its periods not over then cut by `observed_at` (`period_not_over`): its
    `observed_through`, a period earlier, cut them a second time (a reading of one-minute rows by it lost the last
    minute of each series)."""
    freq = freq or source.freq
    if source.aggregate != "none":
        return as_of_on_ds(as_of, freq=freq, tz=source.tz)
    return observed_through(as_of, freq=freq, tz=source.tz, time_label=source.time_label)


def observed_at(source: SourceConfig, bound: datetime, later: pl.Expr | None = None, apart: bool = True,
                not_over: pl.Expr | None = None) -> pl.Expr:
    """True on a row a run at `bound` (as_of on the ds axis) has observed: ds <= bound and, for an
    aggregated source, its period over (`period_not_over`; `apart`: `Ingested.seen_apart`; `not_over`: it, already
    computed, `Ingested.not_over`); also on an unparsable ds (validation quarantines it) but one after as_of however
    it is read (`later`, `Ingested.later`)."""
    unread = pl.col(DS_RAW).is_null() if later is None else pl.col(DS_RAW).is_null() & ~later
    partial = period_not_over(source, bound, apart) if not_over is None else not_over
    return unread | ((pl.col(DS_SEEN) <= bound) & ~partial)


def _within_as_of(frame: pl.LazyFrame, source: SourceConfig, bound: datetime,
                  later: pl.Expr | None = None, apart: bool = True, not_over: pl.Expr | None = None) -> pl.LazyFrame:
    """What a run at `bound` (as_of on the ds axis) knows: rows with ds <= bound (and unparsable
    ds, which validation quarantines) whose period is over (`observed_at`), plus the planned rows
    after it, those with a value in a declared future-known covariate. A planned row keeps its
    future covariates only; its target, past-only covariates and statics are null: they are not
    known yet (a static first written on a row after as_of, or changed there, was the series' static
    of a backfill at that as_of, and only where some future covariate was declared)."""
    inside = observed_at(source, bound, later, apart, not_over)
    future = list(dict.fromkeys(source.future_cols))
    if not future:
        return frame.filter(inside)
    planned = planned_row(source)
    not_planned = [c for c in dict.fromkeys([*source.past_cols, *source.static_cols]) if c not in future]
    # the mapped values and the raw ones the row checks read (a planned row's target is not checked:
    # it is ignored); the quarantine reads original values back from the source by row number
    unknown = ["y", *not_planned, *[RAW_PREFIX + c for c in dict.fromkeys([source.target_col, *not_planned])]]
    return frame.filter(inside | planned).with_columns(
        [pl.when(inside).then(pl.col(c)).otherwise(None).alias(c) for c in unknown]
    )
