"""Preprocessing: valid observations -> `TrainingData` (regular grid, gaps handled, scalers).

Per series, all vectorised in polars (no per-series Python loop):

1. leading and trailing rows without a value are trimmed; trailing rows that still carry declared
   future covariates become `future_exog` (the planned values: ingestion keeps the rows after
   as_of for them, their target ignored);
2. `preprocess.max_length` keeps only the last N periods;
3. the series is put on its regular grid at the source frequency (missing timestamps inserted);
4. interior gaps up to `preprocess.max_gap` periods are imputed (`linear`, `ffill`, `zero`);
   a series with a longer gap (any gap with `impute="none"`) starts after its last such gap (its latest
   contiguous history; the rows before are counted, `rows_before_gap`, and said per series, `gap_cut`;
   when every series has one and the spacing says the freq is wrong, that is an error); the imputed points are
   kept in `TrainingData.imputed` (they are not observations: backtests do not score them) and
   counted (`rows_imputed`);
5. every series with an observation is kept, however short: a network trains on and forecasts
   the series of at least `meta.min_length` periods (`short_series="exclude"`: lookback + horizon
   + val_size, `"pad"`: horizon + val_size + 1, the models pad/mask short inputs); the statistical
   models that can run on them forecast the shorter ones (`TrainingData.marks`);
6. past/future covariates are filled forward within the series (0 before a series' first value:
   a backward fill gave those rows a later value, which a backtest cut before it trained on; declared future ones get 0 with `future_fill="zero"`, as on the horizon); the calendar features (future-known) are named in the meta, not
   stored: they are computed from `ds` where used (`TrainingData.with_calendar`, `windows.pack`);
7. per-series scalers are fitted on the training span only (all but the last val_size points).
   With `log1p=True` a series holding negative values falls back to no log1p (its scaler row
   says so, and every backtest window keeps that decision) and is listed in the summary;
8. the horizon's declared future covariates are checked: values the source did not plan are
   counted (`future_missing`, per column) and get `preprocess.future_fill` (`error` fails here).

Static features: numeric static columns become Float64 (first value per series; none stays null: the
training mean once packed, with a `<col>=__missing__` indicator when some series has none);
text statics are one-hot encoded when they have at most `MAX_STATIC_LEVELS` distinct values, plus
an explicit unknown level (`<col>=__unknown__`: a null here, a level never seen in training at
prediction, `flowcast.data.statics`), otherwise left out and reported (e.g. us_employment's
Title, one distinct value per series).
Every excluded series appears in `TrainingData.excluded` and `PreprocessSummary.excluded` with
its reason; nothing is dropped silently.

Memory: rows carry a series index instead of the id strings until the frame is final; the grid is
built once, for the kept series only, by scattering the rows onto null columns chunk by chunk;
gaps are found from the steps between observed rows (2b) and imputed in place. Besides the valid rows
handed over and the result, only chunk-sized temporaries are allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flowcast.config import Settings, SourceConfig, recipe_freq, with_overrides
from flowcast.data.calendar import (
    calendar_columns,
    grid_point,
    is_subdaily,
    parse_freq,
    periods_between,
    season_length,
    shift,
)
from flowcast.data.freshness import when_text
from flowcast.data.lengths import fit_network_spans_for_backtest, network_min_length
from flowcast.data.order import CHUNK as _CHUNK
from flowcast.data.order import in_key_order
from flowcast.data.panics import panics_named
from flowcast.data.source_files import unsaid
from flowcast.data.statics import level_name, missing_indicator, unknown_level
from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers, fit_scalers_per_series
from flowcast.data.value_text import MISSING_MARKERS, number_text
from flowcast.errors import DataValidationError
from flowcast.mdtext import id_text
from flowcast.timekeys import utc_text

MAX_STATIC_LEVELS = 32
_DEFAULT_HORIZON = {"mo": 12, "q": 8, "y": 6, "w": 13, "d": 14, "b": 10}


@dataclass
class PreprocessSummary:
    """What preprocessing did; `excluded` lists {unique_id, reason} for every excluded series."""

    n_series_in: int = 0
    n_series_out: int = 0
    rows_in: int = 0
    rows_out: int = 0
    rows_trimmed: int = 0  # leading/trailing rows without a value (and rows cut by max_length)
    # rows before the last interior gap longer than max_gap of their series (the series starts after it):
    # rows_in = rows_trimmed + rows_before_gap + rows_ended + (rows_out - rows_inserted)
    rows_before_gap: int = 0
    # the series cut so: {unique_id, reason, rows}; None (a class attribute) when there are none, so that a
    # summary cached by an older flowcast still reads
    gap_cut: list[dict] | None = None
    rows_inserted: int = 0  # missing timestamps put on the grid
    rows_imputed: int = 0  # inserted or empty values filled by the impute method (kept series): not observations,
    # never scored (TrainingData.imputed / observed())
    excluded: list[dict] = field(default_factory=list)
    # validation.ended_series = "exclude": the series set aside as ended ({unique_id, last_ds ISO}; each also in
    # `excluded` with its reason) and their rows, observed and in their span (not in rows_out, rows_inserted)
    ended: list[dict] = field(default_factory=list)
    rows_ended: int = 0
    log1p_disabled: list[str] = field(default_factory=list)
    static_features: list[str] = field(default_factory=list)
    static_dropped: dict[str, str] = field(default_factory=dict)
    # static columns whose value changes within a series (the first value is used): {col: {series, example}};
    # None (a class attribute) when there are none, so that a summary cached by an older flowcast still reads
    static_varying: dict[str, dict[str, Any]] | None = None
    # numeric static columns made categories by a few values that are not numbers ('n/a', '(12)', '$5'):
    # {col: {values, of, example}}; None (a class attribute) when there are none, or cached by an older flowcast
    static_as_text: dict[str, dict[str, Any]] | None = None
    horizon: int = 0
    lookback: int = 0
    val_size: int = 0
    min_length: int = 0  # the shortest series a network trains on and forecasts
    network_short: int = 0  # series shorter than that: forecast by the statistical models that can run on them
    # the first 5 of them by id, named by the run's log and the data-quality report; None (a class attribute) when
    # there are none, or cached by an older flowcast
    network_short_ids: list[str] | None = None
    future_exog_rows: int = 0  # planned rows (future-known covariates after each series' last observation)
    # the horizon's declared future covariates: series x steps expected, values the source did not plan
    # (per column), series concerned, and the declared fill applied to them (preprocess.future_fill)
    future_fill: str = "last"
    future_expected: int = 0
    future_missing: dict[str, int] = field(default_factory=dict)
    future_missing_series: int = 0
    # up to 3 of them, 'unique_id: column from its first ds missing' (None when cached by an older flowcast)
    future_missing_examples: list[str] | None = None
    # source rows of the kept series without a value in a past/future covariate, per column, filled (the
    # series' last value carried forward, 0 before its first one; 0 for future ones with future_fill='zero');
    # None (a class attribute) when there are none, so that a summary cached by an older flowcast still reads
    covariates_filled: dict[str, int] | None = None
    # at '1d', a source without a single Saturday or Sunday row: weekday-only data that freq '1b' fits (said to
    # the user: log, data-quality report, the error when no series is left); None otherwise, or cached by an older one
    freq_hint: str | None = None
    # sub-daily data in a tz that is one fixed offset all year under a name people use for a zone with summer time
    # ('EST': New York's winter offset): said to the user; None otherwise, or cached by an older flowcast
    tz_hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_horizon(settings: Settings, source: SourceConfig) -> int:
    """settings.horizon > source.horizon > a default by frequency (a day of sub-daily periods)."""
    if settings.horizon:
        return settings.horizon
    if source.horizon:
        return source.horizon
    _, unit = parse_freq(recipe_freq(source.freq))  # '12mo' (fiscal years) is yearly: 6, not a monthly 12
    return _DEFAULT_HORIZON.get(unit, season_length(source.freq))


def _safe_name(col: str, value: str) -> str:
    return level_name(col, value)


def _static_firsts(valid: pl.DataFrame, cols: list[str]) -> tuple[pl.DataFrame | None, dict[str, dict[str, Any]]]:
    """First non-null value of each static column per series (one small row per series) with the ds of
    the row that gave it (`__since_<col>`: a backtest cut before it did not know it), and the
    static columns whose value changes within a series: {col: {"series": n, "example": unique_id}}."""
    if not cols:
        return None, {}
    per = valid.group_by("unique_id").agg(
        *[pl.col(c).drop_nulls().first().alias(c) for c in cols],
        *[pl.col("ds").filter(pl.col(c).is_not_null()).min().alias(f"__since_{c}") for c in cols],
        *[pl.col(c).drop_nulls().n_unique().alias(f"__n_{c}") for c in cols],
    )
    varying: dict[str, dict[str, Any]] = {}
    for c in cols:
        changed = per.filter(pl.col(f"__n_{c}") > 1)["unique_id"].sort()
        if changed.len():
            first = per.filter(pl.col("unique_id") == changed[0])[c][0]
            # the example's first value and the first different one, with its date: what the user checks
            rows = valid.filter((pl.col("unique_id") == changed[0]) & pl.col(c).is_not_null() & (pl.col(c) != first))
            other = rows.sort("ds").head(1)
            varying[c] = {"series": changed.len(), "example": str(changed[0]), "first": str(first),
                          "then": str(other[c][0]) if other.height else None,
                          "from": str(other["ds"][0]).removesuffix(" 00:00:00") if other.height else None}
    return per.drop([f"__n_{c}" for c in cols]), varying


def _numbers_as_text(firsts: pl.DataFrame | None, cols: list[str], ids: pl.Series) -> dict[str, dict[str, Any]]:
    """The text static columns (`_static_features`: some value is no number) most of whose values are numbers:
    a store's size '100', '250', 'n/a' became three categories (one 0/1 column each), its magnitudes lost,
    without a word. {col: {"values": not numbers, "of": values, "example": the first of them}}."""
    found: dict[str, dict[str, Any]] = {}
    if firsts is None:
        return found
    kept = pl.DataFrame({"unique_id": ids}).join(firsts, on="unique_id", how="left", maintain_order="left")
    for c in cols:
        s = kept.get_column(c)
        if s.dtype != pl.Utf8:
            continue
        text = s.str.strip_chars()
        valued = text.filter(text.is_not_null() & (text != "") & ~text.is_in(MISSING_MARKERS))
        num = valued.to_frame("t").select(number_text(pl.col("t"))).to_series().cast(pl.Float64, strict=False)
        bad = valued.filter(num.is_null())
        if bad.len() and bad.len() * 2 < valued.len():
            found[c] = {"values": bad.len(), "of": valued.len(), "example": str(bad[0])}
    return found


def _static_features(
    firsts: pl.DataFrame | None, cols: list[str], ids: pl.Series
) -> tuple[pl.DataFrame | None, list[str], dict]:
    """Per-series static features (Float64) for the kept `ids`; returns (frame, names, dropped)."""
    if not cols or firsts is None:
        return None, [], {}
    firsts = pl.DataFrame({"unique_id": ids}).join(firsts, on="unique_id", how="left", maintain_order="left")
    out = firsts.select("unique_id")
    names: list[str] = []
    dropped: dict[str, str] = {}
    for c in cols:
        s = firsts.get_column(c)
        if s.dtype.is_numeric() or s.dtype == pl.Boolean:
            num = s.cast(pl.Float64)
        else:
            text = s.cast(pl.Utf8).str.strip_chars()
            # '−5' and '- 5' are numbers, as in a target: a store's '−5' was a category (one-hot, its magnitude lost)
            num = text.to_frame("t").select(number_text(pl.col("t"))).to_series().cast(pl.Float64, strict=False)
            # R's NA, SQL's NULL among numbers is a missing number, as in a covariate: a store size with one 'NA'
            # was one-hot encoded (size=10, size=20, size=NA), its magnitude lost
            absent = int((text.is_null() | text.is_in(MISSING_MARKERS)).sum())
            if num.null_count() > absent:  # not numbers: categorical
                levels = text.drop_nulls().unique().sort()
                if levels.len() > MAX_STATIC_LEVELS:
                    dropped[c] = (
                        f"text static with {levels.len()} distinct values > {MAX_STATIC_LEVELS}: not used as a feature"
                    )
                    continue
                for lv in levels.to_list():
                    name = _safe_name(c, lv)
                    out = out.with_columns((text == lv).fill_null(False).cast(pl.Float64).alias(name))
                    names.append(name)
                # the explicit unknown level, reserved at training time: a level the model never saw
                # (a new region) is this one at prediction (`flowcast.data.statics.align_statics`)
                out = out.with_columns(text.is_null().cast(pl.Float64).alias(unknown_level(c)))
                names.append(unknown_level(c))
                continue
        # missing stays missing: the training mean when the network reads it (windows.pack), with an indicator
        # where some series has none (flowcast.data.statics); it was 0, a real value, on the raw scale
        num = num.fill_nan(None)
        out = out.with_columns(num.alias(c))
        names.append(c)
        if num.null_count():
            out = out.with_columns(num.is_null().cast(pl.Float64).alias(missing_indicator(c)))
            names.append(missing_indicator(c))
    if not names:
        return None, [], dropped
    return out.sort("unique_id"), names, dropped


def _grid_rows(sid: pl.Series, ds: pl.Series, first: pl.Series, offsets: pl.Series, freq: str) -> pl.Series:
    """Grid row of data rows (series index `sid`, time `ds`): the series' offset plus the periods
    since its first point (`first`, `offsets`: per series index)."""
    part = pl.DataFrame({"o": offsets.gather(sid), "f": first.gather(sid), "d": ds})
    return part.select(pl.col("o") + periods_between(pl.col("f"), pl.col("d"), freq)).to_series()


def _last_long_gaps(rows: pl.DataFrame, first: pl.Series, limit: int, freq: str, chunk: int = _CHUNK) -> pl.DataFrame:
    """Per series whose observed span (from its `first` point, per series index) holds a run of more than
    `limit` missing periods: its last such gap. __sid, __gap (periods), __start (its first missing ds),
    __resume (the first observation after it: the series' new first point), __n (how many such gaps).
    Series without one are left out. The gaps are the steps between consecutive observed rows (rows
    sorted by __sid, ds): one chunked pass, so only chunk-sized temporaries besides the (few) gaps."""
    found = []
    carry: pl.DataFrame | None = None  # last observed row of the previous chunk
    sid, ds, y = rows.get_column("__sid"), rows.get_column("ds"), rows.get_column("y")
    for a in range(0, rows.height, chunk):
        s, d = sid.slice(a, chunk), ds.slice(a, chunk)
        part = pl.DataFrame({"__sid": s, "ds": d}).filter(y.slice(a, chunk).is_not_null() & (d >= first.gather(s)))
        if carry is not None:
            part = pl.concat([carry, part])
        if part.height:
            carry = part.tail(1)
        found.append(
            part.select("__sid", "ds", pl.col("ds").shift(1).alias("__prev"), pl.col("__sid").shift(1).alias("__psid"))
            .filter(pl.col("__psid") == pl.col("__sid"))
            .with_columns((periods_between(pl.col("__prev"), pl.col("ds"), freq) - 1).alias("__gap"))
            .filter(pl.col("__gap") > limit)
            .drop("__psid")
        )
    if not found:
        found.append(pl.DataFrame(schema={"__sid": sid.dtype, "ds": ds.dtype, "__prev": ds.dtype, "__gap": pl.Int64}))
    return (
        pl.concat(found, how="vertical_relaxed").group_by("__sid").agg(  # rows keep their order within a group:
            # the last is the latest gap
            pl.len().alias("__n"), pl.col("__gap").last(), pl.col("__prev").last(), pl.col("ds").last().alias("__resume")
        )
        .with_columns(shift(pl.col("__prev"), 1, freq).alias("__start"))
        .drop("__prev")
        .sort("__sid")
    )


def _in_span(rows: pl.DataFrame, first: pl.Series, last: pl.Series, chunk: int = _CHUNK) -> pl.Series | None:
    """Per row (sorted by __sid, ds): whether it lies inside its series' span [`first`, `last`] (per
    series index; a series without one has none). None when every row does. Chunk by chunk: besides
    the mask, only chunk-sized temporaries (not two per-row copies of the bounds)."""
    sid, ds = rows.get_column("__sid"), rows.get_column("ds")
    parts = [
        pl.DataFrame({"d": ds.slice(a, chunk), "f": first.gather(sid.slice(a, chunk)), "l": last.gather(sid.slice(a, chunk))})
        .select(pl.col("d").is_between(pl.col("f"), pl.col("l")).fill_null(False)).to_series()
        for a in range(0, rows.height, chunk)
    ]
    mask = pl.concat(parts) if parts else pl.Series("d", [], dtype=pl.Boolean)
    return None if mask.all() else mask


def _onto_grid(rows: pl.DataFrame, first: pl.Series, expected: pl.Series, keep: pl.Series, freq: str,
               chunk: int = _CHUNK, in_span: pl.Series | None = None) -> pl.DataFrame:
    """The rows (ds, y, covariates, __sid; sorted by (__sid, ds)) of the series to `keep` that lie
    inside their series' span (`in_span`, per row; None: all of them) put on each series' full grid
    (`first` point and `expected` length per series index, 0 for the others); grid points without a
    row get nulls (their ds is computed). Consumes `rows`. The rows are scattered onto null columns in
    place, chunk by chunk, so that besides the input and the output there are only chunk-sized
    temporaries (rows outside the span are skipped, never copied out first)."""
    expected = expected.cast(pl.Int64)
    offsets = expected.cum_sum() - expected  # first grid row of each series
    total = int(expected.sum())
    sid, ds = rows.drop_in_place("__sid"), rows.get_column("ds")
    cols = {c: pl.Series(c, [None], dtype=dtype).extend_constant(None, total - 1) for c, dtype in rows.schema.items()}
    every = bool(keep.all())
    for a in range(0, rows.height, chunk):
        s = sid.slice(a, chunk)
        kept = None if every else keep.gather(s)  # rows of the series kept
        if in_span is not None:  # and inside their series' span
            m = in_span.slice(a, chunk)
            kept = m if kept is None else kept & m

        def pick(x: pl.Series, kept: pl.Series | None = kept) -> pl.Series:
            return x if kept is None else x.filter(kept)

        at = _grid_rows(pick(s), pick(ds.slice(a, chunk)), first, offsets, freq)
        for c, col in cols.items():  # in place (the column's only reference)
            col.scatter(at, pick(rows.get_column(c).slice(a, chunk)))
        del s, kept, at
    del sid, ds
    for c in list(rows.columns):
        rows.drop_in_place(c)
    sid_full = pl.Series("__sid", np.repeat(np.arange(expected.len(), dtype=np.uint32), expected.to_numpy()))
    new = cols["ds"].is_null().arg_true()  # the grid points inserted: their ds from the series' first point
    s = sid_full.gather(new)
    part = pl.DataFrame({"f": first.gather(s), "p": new.cast(pl.Int64) - offsets.gather(s)})
    cols["ds"].scatter(new, part.select(grid_point(pl.col("f"), pl.col("p"), freq)).to_series())
    cols["__sid"] = sid_full
    return pl.DataFrame(cols)


def _impute(y: pl.Series, method: str) -> pl.Series:
    """`y` with its missing values filled (`linear`: interpolated, `ffill`: carried forward, `zero`),
    every gap being interior (observed values on both sides). The fill is computed on the gaps and
    their observed neighbours alone and written into `y` in place (the values the whole-column
    polars functions give), instead of a second full-length column."""
    missing = y.is_null().arg_true()
    near = pl.concat([missing - 1, missing, missing + 1]).unique().sort()  # each gap with its neighbours
    part = y.gather(near)
    fills: dict[str, Callable[[], pl.Series]] = {
        "linear": part.interpolate, "ffill": part.forward_fill, "zero": lambda: part.fill_null(0.0)}
    filled = fills[method]()
    return y.scatter(missing, filled.gather(near.search_sorted(missing)))


_UNIT_WORDS = {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second", "m": "minute",
               "h": "hour", "d": "day", "b": "business day", "w": "week", "mo": "month", "q": "quarter", "y": "year"}
_NOMINAL = {"ns": timedelta(microseconds=0.001), "us": timedelta(microseconds=1), "ms": timedelta(milliseconds=1),
            "s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
            "b": timedelta(days=1),
            "w": timedelta(weeks=1), "mo": timedelta(days=30.44), "q": timedelta(days=91.3), "y": timedelta(days=365.25)}


def _freq_for(step: timedelta) -> str | None:
    """The freq whose periods are `step` long ('1mo' for 28 to 31 days, '7d' -> '1w', 1 hour -> '1h')."""
    days = step.total_seconds() / 86400
    for lo, hi, alias in ((28, 31, "1mo"), (89, 92, "1q"), (365, 366, "1y")):
        if lo <= days <= hi:
            return alias
    seconds = int(step.total_seconds())
    if seconds <= 0 or seconds != step.total_seconds():
        return None
    for size, unit in ((7 * 86400, "w"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return None


def _spacing_hint(rows: pl.DataFrame, freq: str) -> str:
    """When the observations are typically several periods of `freq` apart, every series ends up with gaps
    too long to impute: say what freq the data has ('1m' is a minute; monthly data is '1mo') instead of
    suggesting a max_gap of 44,639 minutes."""
    diffs = (rows.filter(pl.col("y").is_not_null()).select(pl.col("ds").diff().over("__sid").alias("d"))
             .get_column("d").drop_nulls())
    median = diffs.median() if diffs.len() else None
    if not isinstance(median, timedelta):
        return ""
    n, unit = parse_freq(freq)
    if median <= 1.5 * n * _NOMINAL[unit]:
        return ""
    guess = _freq_for(median)
    seen = (f"{median.days} days" if median.days and not median.seconds else
            f"{median.total_seconds() / 3600:g} hours" if median >= timedelta(hours=1) else f"{median}")
    return (f"; the observations are {seen} apart (the median step), but freq {freq!r} is {n} {_UNIT_WORDS[unit]}"
            f"{'s' if n > 1 else ''}" + (f": is it freq {guess!r}?" if guess else ": check freq"))


BUSINESS_HINT_MIN_VALUES = 10  # observed values, and
BUSINESS_HINT_MIN_WEEKEND_DAYS = 4  # weekend days inside the series' spans (two weekends), to tell weekday-only data


# IANA names of one fixed offset all year that read like a region's local time, and the zone meant by most
_FIXED_ZONES = {"EST": ("-05:00", "America/New_York"), "MST": ("-07:00", "America/Denver")}


def fixed_zone_hint(tz: str | None, freq: str) -> str | None:
    """tz 'EST' or 'MST' on sub-daily data: IANA's fixed UTC-05:00 / -07:00, no daylight saving. A user meaning New
    York's local time had every summer wall time read an hour off, without a word ('--tz EST' was accepted)."""
    if tz not in _FIXED_ZONES or not is_subdaily(freq):
        return None
    offset, meant = _FIXED_ZONES[tz]
    return (f"tz {tz!r} is UTC{offset} all year, without daylight saving: if the times are local times of a place "
            f"with summer time, declare its zone (e.g. {meant}); keep {tz!r} if the source writes standard time all "
            "year")


def _distinct(values: pl.Series, where: pl.Series | None = None, chunk: int = _CHUNK) -> pl.Series:
    """The distinct `values` (those where `where` is true, when given), in no particular order, found `chunk` rows
    at a time. A whole-column `unique()` sorts a full copy of the column, and its (small) result kept that copy
    alive (an 80 MB buffer for 10M rows held by 1,000 distinct times until preprocessing returned); here the
    temporaries are chunk-sized and the result owns only its own values."""
    parts = [
        (values.slice(a, chunk) if where is None else values.slice(a, chunk).filter(where.slice(a, chunk))).unique()
        for a in range(0, values.len(), chunk)
    ]
    return pl.concat(parts).unique() if parts else values.clear()


def _dst_skipped(seen: pl.Series, grid: pl.Series) -> dict[str, pl.Series]:
    """Per daylight-saving zone whose skipped wall times are in `grid` and observed by no series (`seen`): those
    times, sorted (see `_dst_gap_hint`)."""
    from flowcast.data.validate import _DST_ZONES

    times = _distinct(grid)
    found: dict[str, pl.Series] = {}
    for zone in _DST_ZONES:
        skipped = times.filter(times.dt.replace_time_zone(zone, non_existent="null", ambiguous="earliest").is_null())
        if skipped.len() and not skipped.is_in(seen.implode()).any():
            found[zone] = skipped.sort()
    return found


def _dst_gap_hint(seen: pl.Series, grid: pl.Series, *, cut: int = 0) -> str | None:
    """Sub-daily data read without a tz (UTC) whose times that a daylight-saving zone skips are on the grid (`grid`:
    every row's ds, imputed ones included) but observed by no series (`seen`: the ds of rows with a value): local
    wall times exported without their offset, the hour the clocks skip missing from every series. The repeated hour
    in autumn is quarantined with a reason naming the zone (`validate._dst_repeat_hint`); the skipped one in spring
    was imputed, one point among the run's imputed ones, without a word. (A skipped hour that one series misses and
    another has is a gap like any other: it said 'missing from every series' and named a --tz that misreads UTC.)
    `cut`: the rows before such a gap that were not used, where it was longer than max_gap (15-minute data: the
    skipped hour is 4 periods, more than the default max_gap of 3, so every series started after it; newuser22:
    1,160 of 1,920 rows were set aside, and the note told the user to raise max_gap, not to declare the tz)."""
    found = _dst_skipped(seen, grid)
    if not found:
        return None
    zone, skipped = next(iter(found.items()))
    more = f" and {skipped.len() - 1} more" if skipped.len() > 1 else ""
    done = (f"is a gap longer than max_gap that every series starts after (its {cut:,} rows before it not used)"
            if cut else "was imputed")
    return (f"the hour the clocks skip when daylight saving starts in {', '.join(found)} (read as "
            f"{utc_text(skipped[0])}{more}) is missing from every series and {done}: local times written without their UTC offset? "
            f"declare the source's tz (--tz {zone}), or export the times with their offset")


def _business_day_hint(rows: pl.DataFrame, bounds: pl.DataFrame, freq: str) -> str | None:
    """At '1d': when no row of any series falls on a Saturday or Sunday although the series' observed
    spans hold weekends, every weekend is a 2-day gap (imputed, or a series excluded under a small max_gap)
    and the horizon forecasts Saturdays and Sundays: say that freq '1b' fits. None otherwise, and when
    there is too little data to tell (fewer than 10 values or two weekends)."""
    if freq != "1d":
        return None
    if rows.height - rows.get_column("y").null_count() < BUSINESS_HINT_MIN_VALUES:
        return None
    spans = bounds.filter(pl.col("__first").is_not_null())
    first, last = pl.col("__first").dt.date(), pl.col("__last").dt.date()
    in_span = (last - first).dt.total_days() + 1 - pl.business_day_count(first, last.dt.offset_by("1d"))
    if rows.select((pl.col("ds").dt.weekday() >= 6).any()).item():
        return _weekday_series_hint(rows, spans.with_columns(in_span.alias("__weekend_days")))
    # a weekly series (every value a Monday) has no weekend row either: named as weekly, not told '1b' (newuser46)
    per = _series_days(rows)
    weekly = _weekly_series(spans, per)
    hints = [_weekly_series_hint(weekly, per.height)] if weekly.height else []
    weekend_days = int(spans.filter(~pl.col("__sid").is_in(weekly["__sid"].implode())).select(in_span.sum()).item()
                       or 0)
    if weekend_days >= BUSINESS_HINT_MIN_WEEKEND_DAYS and weekly.height < per.height:
        hints.insert(0, f"no row falls on a Saturday or Sunday, so at freq '1d' the series' {weekend_days:,} weekend "
                        "days are gaps (imputed up to max_gap) and the forecast includes weekends: weekday-only data "
                        "(prices, trading volumes, B2B orders) takes freq '1b' (business days, Monday to Friday; "
                        "--freq 1b)")
    return "; ".join(hints) or None


def _series_days(rows: pl.DataFrame) -> pl.DataFrame:
    """Per series index (`__sid`) with a value: whether any value falls on a weekend (`__weekend`), how many values
    (`__n`), on how many weekdays (`__weekdays`), and the first one's weekday (`__weekday`, 1 = Monday)."""
    return (rows.filter(pl.col("y").is_not_null()).group_by("__sid")
            .agg((pl.col("ds").dt.weekday() >= 6).any().alias("__weekend"), *_weekday_counts()))


def _weekly_series(spans: pl.DataFrame, per: pl.DataFrame) -> pl.DataFrame:
    """The series of `spans` whose 10 values or more all fall on one weekday (`_series_days`' `per`): weekly data,
    by id."""
    return spans.join(per, on="__sid", how="inner").filter(_weekly()).sort("unique_id")


def _weekly() -> pl.Expr:
    """Of `_weekday_counts`' columns: 10 values or more, all on one weekday (weekly data)."""
    return (pl.col("__weekdays") == 1) & (pl.col("__n") >= BUSINESS_HINT_MIN_VALUES)


def _weekday_counts() -> list[pl.Expr]:
    """Per series (a group_by's aggregations): its values `__n`, the weekdays they fall on `__weekdays`, the first's
    `__weekday` (1 Monday .. 7 Sunday): one weekday and 10 values or more is weekly data."""
    weekday = pl.col("ds").dt.weekday()
    return [pl.len().alias("__n"), weekday.n_unique().alias("__weekdays"), weekday.first().alias("__weekday")]


def _weekday_series_hint(rows: pl.DataFrame, spans: pl.DataFrame) -> str | None:
    """At '1d', in a source whose other series have weekend rows: the series without a single Saturday or Sunday
    row over at least two weekends and 10 values (stock prices beside a shop's daily sales in one file). Their
    weekends were imputed, counted among the run's imputed points, and forecast, without a word: named here. One
    freq serves a source, so the way to business days is a source of their own. A series whose 10 values or more
    all fall on one weekday is weekly data, not weekday-only (`_weekly_series_hint`): it was told to take '1b'."""
    weekend = pl.col("ds").dt.weekday() >= 6
    per = _series_days(rows)
    weekly = _weekly_series(spans, per)
    odd = (spans.join(per, on="__sid", how="inner")
           .filter(~pl.col("__weekend") & (pl.col("__n") >= BUSINESS_HINT_MIN_VALUES)
                   & (pl.col("__weekend_days") >= BUSINESS_HINT_MIN_WEEKEND_DAYS) & (pl.col("__weekdays") > 1))
           .sort("unique_id"))
    hints = [_weekly_series_hint(weekly, per.height)] if weekly.height else []
    if not odd.height:
        return "; ".join(hints) or None
    names = _series_names(odd)
    days = int(odd["__weekend_days"].sum())
    rest = int(per["__weekend"].sum())  # the series with weekend rows (a weekday-only one too short to name has none)
    # weekend rows with an empty target (the only ones, or some of the named series'): a series without a weekend
    # value may still have a weekend row, and 'while 0 other has weekend rows' was said of such data
    empty = rows.filter(weekend & pl.col("y").is_null())
    lack = "value" if empty.filter(pl.col("__sid").is_in(odd["__sid"].implode())).height else "row"
    others = (f"while {rest:,} other{'s have' if rest > 1 else ' has'} weekend rows" if rest
              else "while the source's weekend rows have no value (an empty target)")
    weekday_only = (
        f"{odd.height:,} of {per.height:,} series have no {lack} on a Saturday or Sunday ({names}), {others}: "
        f"at freq '1d' their {days:,} weekend days are gaps (imputed up to max_gap) and their forecasts include "
        "weekends. If they are weekday-only data (prices, trading volumes, B2B orders), forecast them as a source "
        "of their own with freq '1b' (business days: a file of those series with --freq 1b); one freq serves a "
        "whole source")
    return "; ".join([weekday_only, *hints])


def _series_names(series: pl.DataFrame) -> str:
    """Up to 5 of `series`' ids as a hint lists them, with how many more."""
    return ", ".join(map(id_text, series["unique_id"].head(5).to_list())) + (
        f" and {series.height - 5:,} more" if series.height > 5 else "")


_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _weekly_series_hint(weekly: pl.DataFrame, n_series: int) -> str:
    """At '1d': the series of `weekly` (each 10 values or more, all on one weekday: 'wk' on Mondays beside daily
    series) are weekly data, each week a gap of 6 days at '1d' (imputed up to max_gap; past it the series starts
    after its last such gap, most of its history unused). A new user's weekly series in a daily file was told it had
    no weekend row and to take freq '1b'; where every series is weekly the source itself is told '1w'."""
    days = sorted({_WEEKDAY_NAMES[int(d) - 1] for d in weekly["__weekday"].to_list()}, key=_WEEKDAY_NAMES.index)
    on = f"{', '.join(f'{d}s' for d in days)}"
    whole = weekly.height == n_series  # a weekly file read at '1d': the source itself takes '1w'
    which = "every series has" if whole else f"{weekly.height:,} of {n_series:,} series have"
    how = ("Forecast the source with freq '1w' (--freq 1w)" if whole else
           "Forecast them as a source of their own with freq '1w' (a file of those series with --freq 1w); one freq "
           "serves a whole source")
    return (f"{which} every value on one weekday ({_series_names(weekly)}: {on}): weekly data? At freq '1d' the 6 "
            "days between two of their weeks are gaps (imputed up to max_gap; past it a series starts after its last "
            f"such gap) and their forecasts are daily. {how}")


def _weekly_sids(rows: pl.DataFrame, sids: pl.Series, freq: str) -> dict[int, str]:
    """At '1d': those of `sids` (series cut at a gap) whose values, 10 or more, all fall on one weekday, as
    `_weekly_series_hint` tells weekly data -> that weekday's name. Their gap-cut reason advised the max_gap that
    would fill each week's 6 days as daily data (nuB46). Only the cut series' rows are read; {} at another freq."""
    if freq != "1d" or not sids.len():
        return {}
    per = (rows.lazy().filter(pl.col("__sid").is_in(sids.implode()) & pl.col("y").is_not_null())
           .group_by("__sid").agg(*_weekday_counts()).filter(_weekly()).collect())
    return {int(s): _WEEKDAY_NAMES[int(d) - 1] for s, d in per.select("__sid", "__weekday").iter_rows()}


NO_OBSERVED = "no observed values (every y is empty)"  # the reason a series of no target value is excluded


def _no_target_hint(source: SourceConfig, excluded: list[dict[str, Any]]) -> str:
    """Where every series was excluded for having no target value: that the target column holds none in any row, and
    how to name another (newuser48: a file whose guessed target 'sales' was blank beside a 'price' of numbers was told
    'no observed values (every y is empty)' of each series, its column not named). '' otherwise."""
    if not excluded or any(e["reason"] != NO_OBSERVED for e in excluded):
        return ""
    if source.layout == "wide":
        return ": none of its series' columns holds a value in any row"
    return (f": its target column {source.target_col!r} holds no value in any row; is the target another column? name "
            f"it with --target-col (target_col in [sources.{source.name}])")


def preprocess(
    valid: pl.DataFrame,
    source: SourceConfig,
    settings: Settings,
    as_of: datetime | None,
    fingerprint: str = "",
    *,
    chunk: int = _CHUNK,
    warn: Callable[[str], None] = unsaid,
) -> tuple[TrainingData, PreprocessSummary]:
    """Valid canonical observations (sorted by unique_id, ds) -> TrainingData + summary.
    `chunk`: rows per step of the chunked passes (key order, gaps, the grid).

    A stop (SIGTERM, SIGINT) ends it within a fraction of a second, said through `warn` and raised as the stop
    (`interrupts.stoppable`: its polars queries run in a worker thread), where it waited for the query in flight to
    end (3.6 to 11 s on 10M rows). It writes nothing: its callers write what it returns (the preprocess task's cache
    entry), so a stopped one leaves nothing behind."""
    from flowcast.interrupts import stoppable

    handed = [valid]  # the worker takes the one reference: `_preprocess_rows`'s early `del valid` still frees it
    del valid

    def work() -> tuple[TrainingData, PreprocessSummary]:
        # a panic of polars in any of its queries (its streaming collects, the scalers' fit) is an error naming the
        # stage and the source (`panics.panics_named`), not a Rust backtrace and a traceback
        with panics_named(f"source {source.name!r} ({source.path})", stage="preprocess"):
            return _preprocess_rows(handed.pop(), source, settings, as_of, fingerprint, chunk)

    return stoppable(work, warn, lambda name: (
        f"Stopped by {name} while preprocessing source {source.name!r}: nothing was written from it; run again to "
        "preprocess it whole"))


def _preprocess_rows(valid: pl.DataFrame, source: SourceConfig, settings: Settings, as_of: datetime | None,
                     fingerprint: str, chunk: int) -> tuple[TrainingData, PreprocessSummary]:
    """`preprocess` itself, in the thread that `interrupts.stoppable` runs it in."""
    cfg = settings.preprocess
    freq = source.freq
    horizon = resolve_horizon(settings, source)
    lookback = settings.model.lookback
    val_size = cfg.val_size if cfg.val_size is not None else horizon
    min_length = network_min_length(lookback=lookback, horizon=horizon, val_size=val_size, short_series=cfg.short_series)
    past = list(dict.fromkeys(source.past_cols))
    declared_future = list(dict.fromkeys(source.future_cols))
    covs = [*declared_future, *[c for c in past if c not in declared_future]]
    summary = PreprocessSummary(
        rows_in=valid.height, horizon=horizon, lookback=lookback, val_size=val_size, min_length=min_length
    )
    excluded: list[pl.DataFrame] = []

    if not in_key_order(valid, strict=True, chunk=chunk):  # validate() hands over sorted rows; other callers may not
        valid = valid.sort("unique_id", "ds", maintain_order=True)
    # series index per row from run lengths (valid is sorted by unique_id): integer keys, no string hashing
    rle = valid.get_column("unique_id").rle()  # rows are sorted: one run per series
    ids = rle.struct.field("value")
    n_series = ids.len()
    sid = pl.Series("__sid", np.repeat(np.arange(n_series, dtype=np.uint32), rle.struct.field("len").to_numpy()))
    del rle
    summary.n_series_in = n_series
    # no unique_id from here on (it is 16 bytes a row, the largest column): rows carry their series
    # index `__sid`, and unique_id is put back (ids.gather(__sid)) once the frame is final
    v = valid.select("ds", "y", *covs).with_columns(sid)
    del sid
    static_cols = list(dict.fromkeys(source.static_cols))
    firsts, static_varying = _static_firsts(valid, static_cols)
    n_valid = valid.height
    del valid  # from here on only `v` (same buffers) is used: a caller that hands over its frame frees it early

    # 1. bounds of the observed span, per series index
    def observed_bounds(rows: pl.LazyFrame) -> pl.DataFrame:
        obs = rows.group_by("__sid").agg(pl.col("ds").min().alias("__first"), pl.col("ds").max().alias("__last"))
        return (
            pl.DataFrame({"__sid": pl.Series(np.arange(n_series, dtype=np.uint32)), "unique_id": ids})
            .join(obs.collect(), on="__sid", how="left")
            .sort("__sid")
        )

    all_observed = v.get_column("y").null_count() == 0
    if all_observed:  # every row counts: the first and last row of each series (rows are sorted)
        run_lengths = v.get_column("__sid").rle().struct.field("len").cast(pl.Int64)
        ends = run_lengths.cum_sum() - 1
        bounds = pl.DataFrame({
            "__sid": pl.Series(np.arange(n_series, dtype=np.uint32)), "unique_id": ids,
            "__first": v.get_column("ds").gather(ends - run_lengths + 1), "__last": v.get_column("ds").gather(ends),
        })
        del run_lengths, ends
    else:
        bounds = observed_bounds(v.lazy().filter(pl.col("y").is_not_null()))
    no_obs = bounds.filter(pl.col("__first").is_null()).select("unique_id")
    summary.freq_hint = _business_day_hint(v, bounds, freq)
    summary.tz_hint = fixed_zone_hint(source.tz, freq)
    if no_obs.height:
        excluded.append(no_obs.with_columns(pl.lit(NO_OBSERVED).alias("reason")))

    row_sid = v.get_column("__sid")

    def per_row(col: str, row_sid: pl.Series) -> pl.Series:
        return bounds.get_column(col).gather(row_sid)

    future_exog = None
    if declared_future:
        tail = v.filter(
            (pl.col("ds") > per_row("__last", row_sid)) & pl.any_horizontal(pl.col(declared_future).is_not_null())
        )
        tail = tail.select(
            ids.gather(tail.get_column("__sid")).alias("unique_id"), "ds",
            *[pl.col(c).cast(pl.Float64) for c in declared_future],
        )
        future_exog = tail if tail.height else None

    # 2. max_length: the first kept point is the first observed one inside the last N periods
    if cfg.max_length:
        cut = shift(pl.col("__last"), -(cfg.max_length - 1), freq)
        cut_row = bounds.select(cut.alias("__cut")).get_column("__cut").gather(row_sid)
        bounds = observed_bounds(v.lazy().filter(pl.col("y").is_not_null() & (pl.col("ds") >= cut_row)))
        del cut_row

    # 2b. a series with an interior gap longer than max_gap starts after its last such gap: its latest
    # contiguous history is used (the rows before are counted and said, per series, never dropped silently)
    limit = 0 if cfg.impute == "none" else cfg.max_gap
    cuts = _last_long_gaps(v, bounds.get_column("__first"), limit, freq, chunk)
    gap_rows = 0
    if cuts.height:
        n_observed = bounds.get_column("__first").is_not_null().sum()
        # every series "gapped" with a spacing that says so: the freq is wrong, not the data
        spacing = (summary.freq_hint or _spacing_hint(v, freq)) if cuts.height == n_observed else ""
        if spacing:
            shown = "; ".join(
                f"{ids[s]}: interior gap of {g} periods from {when_text(d, freq, source.tz)} > max_gap={limit}"
                for s, g, d in cuts.select("__sid", "__gap", "__start").head(5).iter_rows()
            )
            raise DataValidationError(
                f"source {source.name!r}: every series has an interior gap longer than max_gap ({shown}); "
                f"{spacing.removeprefix('; ')}"
            )
        # the rows of the cut series from their first point to the one after the gap (only theirs are read)
        spans = cuts.select("__sid", "__resume").join(bounds.select("__sid", "__first"), on="__sid", how="left")
        before = (
            v.lazy().select("__sid", "ds").filter(pl.col("__sid").is_in(spans.get_column("__sid").implode()))
            .join(spans.lazy(), on="__sid", how="left")
            .filter((pl.col("ds") >= pl.col("__first")) & (pl.col("ds") < pl.col("__resume")))
            .group_by("__sid").len("__rows").collect()
        )
        cuts = cuts.join(before, on="__sid", how="left").with_columns(pl.col("__rows").fill_null(0))
        gap_rows = int(cuts.get_column("__rows").sum())
        bounds = bounds.join(cuts.select("__sid", "__resume"), on="__sid", how="left", maintain_order="left").with_columns(
            pl.coalesce("__resume", "__first").alias("__first")
        ).drop("__resume")
        mode = " (impute='none')" if cfg.impute == "none" else ""
        # sub-daily wall times read as UTC: a gap that is the hour a daylight-saving zone skips, in every series, is
        # the clocks' and not the data's: its reason names the --tz that reads it, before max_gap (newuser22)
        local = ""
        if is_subdaily(freq):  # the gaps of at most 2 hours alone are a daylight-saving hour's: listed per period
            n_step, unit_step = parse_freq(freq)
            dst_sized = cuts.filter(pl.col("__gap") * (n_step * _NOMINAL[unit_step]) <= timedelta(hours=2))
        if source.tz is None and is_subdaily(freq):
            missing = dst_sized.select(pl.datetime_ranges("__start", "__resume", interval=freq, closed="left")
                                       .alias("ds")).explode("ds").get_column("ds")
            observed = _distinct(v.get_column("ds"), v.get_column("y").is_not_null(), chunk)
            if (found := _dst_skipped(observed, missing)):
                zone, skipped = next(iter(found.items()))
                # the rows its own cuts left out: not those of a series cut at a later gap of its own (`gap_rows`)
                here = dst_sized.filter((pl.col("__start") <= skipped[0]) & (pl.col("__resume") > skipped[0]))
                summary.tz_hint = summary.tz_hint or _dst_gap_hint(observed, missing, cut=int(here["__rows"].sum()))
                local = f"--tz {zone} reads it (the hour its clocks skip, read as {utc_text(skipped[0])}); "
        elif source.tz is not None and source.ambiguous == "quarantine" and is_subdaily(freq):
            # the hour repeated when daylight saving ends, quarantined as time_ambiguous: 8 quarter hours of a
            # 15-minute series, a gap longer than max_gap, cut every series there (newuser22: half the rows of a
            # Berlin meter file not used, the reason naming max_gap = 8 alone)
            missing = dst_sized.select(pl.datetime_ranges("__start", "__resume", interval=freq, closed="left")
                                       .alias("ds")).explode("ds").get_column("ds")
            wall = missing.dt.replace_time_zone("UTC").dt.convert_time_zone(source.tz).dt.replace_time_zone(None)
            twice = missing.filter(wall.dt.replace_time_zone(source.tz, ambiguous="null").is_null()).sort()
            if twice.len():
                skipped = twice
                local = (f"--ambiguous infer reads it (the hour repeated when daylight saving ends in {source.tz}, "
                         f"from {utc_text(twice[0], source.tz)}: its rows were quarantined as time_ambiguous); ")
        weekly = _weekly_sids(v, cuts.get_column("__sid"), freq)
        summary.gap_cut = [
            {"unique_id": str(ids[s]), "rows": int(r),
             "reason": (f"interior gap of {g} periods from {when_text(d, freq, source.tz)} > max_gap={limit}{mode}"
                        + (f" (the last of {n})" if n > 1 else "")
                        + f": the {r:,} rows before {when_text(f, freq, source.tz)} are not used, the series starts there "
                        + (f"(its every value is on a {weekly[s]}: weekly data? --freq 1w reads it, in a file or "
                           "source of its own)" if s in weekly else
                           f"({local if local and d <= skipped[0] < f else ''}[preprocess] max_gap = {g} imputes it)"))}
            for s, g, d, f, n, r in cuts.select("__sid", "__gap", "__start", "__resume", "__n", "__rows").iter_rows()
        ]
        summary.rows_before_gap = gap_rows

    # 2c. validation.ended_series = "exclude": a series whose last observation is more than a horizon before the
    # latest of any series (a closed store) is set aside with its reason, as `flowcast.data.freshness` names it
    ended_sids = None
    if settings.validation.ended_series == "exclude":
        from flowcast.data.freshness import ended_reason, ended_series

        gone = ended_series(bounds.select("unique_id", pl.col("__last").alias("last_ds")), freq, horizon)
        if gone.height:
            why = [ended_reason(d, g, freq, horizon, source.tz) for d, g in gone.select("last_ds", "gap").iter_rows()]
            excluded.append(gone.select("unique_id").with_columns(pl.Series("reason", why, dtype=pl.Utf8)))
            summary.ended = [{"unique_id": str(u), "last_ds": d.isoformat()}  # ISO text: the summary is JSON
                             for u, d in gone.select("unique_id", "last_ds").sort("unique_id").iter_rows()]
            ended_sids = bounds.filter(pl.col("unique_id").is_in(gone["unique_id"].implode())).get_column("__sid")

    # 3. grid: trim to the observed span; each series' grid runs from its first to its last observed
    # point (built below, once the excluded series are known)
    # (a mask, not a filtered copy of the rows: _onto_grid skips the rows outside, chunk by chunk)
    in_span = (None if all_observed and not cfg.max_length and not gap_rows  # every row is inside its span
               else _in_span(v, bounds.get_column("__first"), bounds.get_column("__last"), chunk))
    rows = v
    del row_sid, v
    n_rows = rows.height if in_span is None else int(in_span.sum())
    summary.rows_trimmed = n_valid - n_rows - gap_rows
    bounds = bounds.with_columns(
        (periods_between(pl.col("__first"), pl.col("__last"), freq) + 1).fill_null(0).cast(pl.Int64).alias("__expected")
    )
    expected = bounds.get_column("__expected")
    total = int(expected.sum())
    if ended_sids is not None:  # their rows leave with them: counted apart (rows_ended), not as grid points inserted
        ended_row = rows.get_column("__sid").is_in(ended_sids.implode())
        summary.rows_ended = int((ended_row if in_span is None else ended_row & in_span).sum())
        total -= int(bounds.filter(pl.col("__sid").is_in(ended_sids.implode())).get_column("__expected").sum())
        del ended_row
    summary.rows_inserted = total - (n_rows - summary.rows_ended)
    if ended_sids is not None and summary.gap_cut:
        # an ended series set aside does not "start after its gap": it is not forecast at all. It is not listed among
        # the gap-cut series (it was both, said twice, the second time wrongly), and its rows before the gap count with
        # its other rows, as rows_ended, once (rows_in still reconciles; nothing is counted twice)
        gone_ids = set(gone["unique_id"].to_list())
        theirs = [c for c in summary.gap_cut if c["unique_id"] in gone_ids]
        moved = sum(int(c["rows"]) for c in theirs)
        summary.gap_cut = [c for c in summary.gap_cut if c["unique_id"] not in gone_ids] or None
        summary.rows_before_gap -= moved
        summary.rows_ended += moved

    # 4. interior gaps: every gap left is at most max_gap periods (2b started each series after its last
    # longer one), so none excludes a series; the grid below inserts their timestamps for imputation
    lengths = bounds.filter(pl.col("__first").is_not_null()
                            & (True if ended_sids is None else ~pl.col("__sid").is_in(ended_sids.implode()))
                            ).select("unique_id", pl.col("__expected").alias("length"))

    # 5. short series are kept: a network trains on and forecasts the series of at least min_length
    # periods (`TrainingData.marks`), the statistical models that can run on them forecast the others
    short = lengths.filter(pl.col("length") < min_length)
    summary.network_short = short.height
    summary.network_short_ids = short.get_column("unique_id").cast(pl.Utf8).sort().head(5).to_list() or None

    excl = (
        pl.concat(excluded, how="vertical_relaxed").group_by("unique_id", maintain_order=True).agg(
            pl.col("reason").str.join("; ")
        ).sort("unique_id")
        if excluded
        else pl.DataFrame(schema={"unique_id": pl.Utf8, "reason": pl.Utf8})
    )
    keep = ~ids.is_in(excl.get_column("unique_id").implode())  # per series index
    if excl.height and future_exog is not None:
        future_exog = future_exog.join(excl.select("unique_id"), on="unique_id", how="anti")
        future_exog = future_exog if future_exog.height else None
    summary.excluded = excl.to_dicts()
    kept = expected * keep.cast(pl.Int64)  # grid length per series index, 0 for the excluded ones
    if int(kept.sum()) == 0:
        reasons = "; ".join(f"{e['unique_id']}: {e['reason']}" for e in summary.excluded[:5])
        raise DataValidationError(
            f"source {source.name!r}: no series left after preprocessing ({len(summary.excluded)} excluded: "
            f"{reasons}){_no_target_hint(source, summary.excluded)}"
        )
    if covs:  # covariate values the source left empty on its rows: filled below, never silently
        rows_kept = keep.gather(rows.get_column("__sid")) if excl.height else None
        if in_span is not None:
            rows_kept = in_span if rows_kept is None else rows_kept & in_span
        nulls = rows.select(
            pl.col(covs).null_count() if rows_kept is None else pl.col(covs).filter(rows_kept).null_count()
        ).row(0, named=True)
        summary.covariates_filled = {c: int(n) for c, n in nulls.items() if n} or None
        del rows_kept
    # 3. (continued) the kept series on their grid: missing timestamps inserted (with nulls), excluded
    # series left out, in one pass that writes each output column once
    if total == n_rows and not excl.height and in_span is None:  # nothing to insert, nothing to drop
        frame = rows
    else:
        frame = _onto_grid(rows, bounds.get_column("__first"), kept, keep, freq, chunk, in_span)
    del in_span
    del rows  # _onto_grid consumed it column by column

    # impute what is left (gaps <= max_gap); series never start or end with a gap after trimming. The
    # imputed points are remembered: they are not observations, and backtests never score them
    n_missing = frame["y"].null_count()
    imputed = None
    if n_missing:
        at = frame.select("__sid", "ds").filter(frame["y"].is_null())
        imputed = at.select(ids.gather(at.get_column("__sid")).alias("unique_id"), "ds")
        del at
    # the times some series observed (before imputation fills the rest): an hour a DST zone skips that one of them
    # has is no sign of local times
    seen = _distinct(frame.get_column("ds"), frame.get_column("y").is_not_null(), chunk) \
        if imputed is not None and source.tz is None and is_subdaily(freq) else None
    if n_missing and cfg.impute in ("linear", "ffill", "zero"):
        frame = frame.with_columns(_impute(frame.drop_in_place("y"), cfg.impute))
    summary.rows_imputed = n_missing
    if imputed is not None and seen is not None:
        summary.tz_hint = summary.tz_hint or _dst_gap_hint(seen, frame.get_column("ds"))

    # 6. covariates: declared future + past, Float64, no nulls. The calendar features are future-known
    # covariates too (meta.calendar_cols, first in meta.future_cols), but not stored in the frame: they
    # are a function of ds, computed where they are used (TrainingData.with_calendar / future_frame,
    # models.windows.pack)
    cal_cols = calendar_columns(freq) if cfg.calendar else []
    if covs:
        frame = frame.with_columns(pl.col(covs).cast(pl.Float64))
        if cfg.future_fill == "zero" and declared_future:  # the declared fill, as on the horizon (future_frame)
            frame = frame.with_columns(pl.col(declared_future).fill_null(0.0))
        if any(frame[c].null_count() for c in covs):
            frame = frame.with_columns(
                # forward only: a value is never filled from a later row (a backtest cut at an earlier
                # date would train on it, where a run with that as_of had none: 0, as a series without any)
                pl.col(covs).forward_fill().over("__sid").fill_null(0.0)
            )
    future_cols = [*cal_cols, *declared_future]
    past_cols = [c for c in past if c not in declared_future]
    frame = frame.select("__sid", "ds", pl.col("y").cast(pl.Float64), *declared_future, *past_cols)
    # unique_id back from the series index; every column in one chunk (rows handed over as they were
    # read come in many), moved one at a time so that at most one column is copied at once. The
    # one-chunk layout also keeps aggregations over the frame (the scalers' std) bit for bit as they were.
    sid = frame.drop_in_place("__sid")
    cols = {"unique_id": ids.gather(sid.rechunk()).alias("unique_id").set_sorted()}  # sorted by (unique_id, ds):
    del sid  # the flag lets group_by/over on unique_id use contiguous slices
    for c in list(frame.columns):
        cols[c] = frame.drop_in_place(c).rechunk()
    frame = pl.DataFrame(cols)

    # 7. scalers on the training span (log1p per series where the data allow it)
    if cfg.log1p:  # the decision per series is kept in the scalers' log1p column: backtest windows reuse it
        neg = frame.group_by("unique_id").agg((pl.col("y").min() < 0).alias("neg"))
        summary.log1p_disabled = sorted(neg.filter(pl.col("neg"))["unique_id"].to_list())
        scalers = fit_scalers_per_series(frame, cfg.scaler, neg.filter(~pl.col("neg"))["unique_id"], val_size)
    else:
        scalers = fit_scalers(frame, cfg.scaler, False, val_size)

    ids = scalers.get_column("unique_id")
    static, static_names, dropped = _static_features(firsts, static_cols, ids)
    static_since = None
    if static is not None and firsts is not None:  # when each series' statics became known (backtest cuts)
        used = [c for c in static_cols if c not in dropped]
        static_since = pl.DataFrame({"unique_id": ids}).join(
            firsts.select("unique_id", *[pl.col(f"__since_{c}").cast(frame.schema["ds"]).alias(c) for c in used]),
            on="unique_id", how="left", maintain_order="left")
    summary.static_features, summary.static_dropped = static_names, dropped
    summary.static_varying = static_varying or None
    summary.static_as_text = _numbers_as_text(firsts, static_cols, ids) or None
    summary.n_series_out = ids.len()
    summary.rows_out = frame.height
    summary.future_exog_rows = 0 if future_exog is None else future_exog.height

    meta = TrainingMeta(
        freq=freq,
        horizon=horizon,
        lookback=lookback,
        val_size=val_size,
        season_length=source.season_length or season_length(freq),
        as_of=as_of.isoformat() if as_of else None,
        source=source.name,
        fingerprint=fingerprint,
        scaler=cfg.scaler,
        log1p=cfg.log1p,
        calendar_cols=cal_cols,
        future_cols=future_cols,
        past_cols=past_cols,
        static_cols=static_names,
        declared_future_cols=declared_future,
        tz=source.tz,
        future_fill=cfg.future_fill,
        min_length=min_length,
        aggregate=source.aggregate,
        time_label=source.time_label,
    )
    td = TrainingData(frame=frame, scalers=scalers, meta=meta, static=static, future_exog=future_exog, excluded=excl,
                      imputed=imputed, static_since=static_since)
    if declared_future:
        _check_future(td, summary, source)
    return td, summary


def _check_future(td: TrainingData, summary: PreprocessSummary, source: SourceConfig) -> None:
    """Count the horizon values of the declared future covariates that the source did not plan
    (summary.future_*); with future_fill='error' any such value fails the run, naming them."""
    info = td.missing_future()
    summary.future_fill = info["fill"]
    summary.future_expected = info["expected"]
    summary.future_missing = info["missing"]
    summary.future_missing_series = info["series"]
    summary.future_missing_examples = list(info["examples"][:3]) or None
    if info["fill"] == "error" and any(info["missing"].values()):
        raise DataValidationError(
            f"source {source.name!r}: future-known covariates {source.future_cols} have no planned value for "
            f"{sum(info['missing'].values())} of {info['expected']} horizon values ({info['missing']} per column, "
            f"{info['series']} series; first missing e.g. {'; '.join(info['examples'][:3])}) and preprocess.future_fill = "
            "'error': add the planned rows (dated after as_of) to the source, or declare future_fill = 'last' or 'zero'"
        )


# ------------------------------------------------------------------------------------ one call
def fitted_spans(settings: Settings, td: Any) -> tuple[Settings, list[str]]:
    """`settings` with the lookback and validation span shortened to the data where they were not
    given (`flowcast.data.lengths.fit_network_spans`), and what changed (or, with nothing changed, what its notes
    say all the same: a lookback given that no series can hold; `settings` itself is returned then)."""
    pp, mc, ev, h = settings.preprocess, settings.model, settings.evaluation, int(td.meta.horizon)
    if not mc.cells and not settings.tuning.enabled:  # no network to fit them for: the notes said it was
        return settings, []                         # shortened 'so that the networks take part in the backtest'
    val = pp.val_size if pp.val_size is not None else h
    spans = fit_network_spans_for_backtest(
        td.lengths()["length"].to_list(), horizon=h, lookback=mc.lookback, val_size=val,
        short_series=pp.short_series, share=pp.length_share, n_windows=ev.n_windows, step=ev.step or h,
        windows_given="n_windows" in settings._given.get("evaluation", frozenset()),
        lookback_given="lookback" in settings._given.get("model", frozenset()),
        val_size_given="val_size" in settings._given.get("preprocess", frozenset()),
    )
    if not spans.changed(mc.lookback, val):  # what it says all the same: a given lookback no series can hold
        return settings, list(spans.notes)  # (review21: dropped with the spans unchanged, the run said nothing)
    fitted = with_overrides(settings, model={"lookback": spans.lookback}, preprocess={"val_size": spans.val_size})
    return fitted, spans.notes


@dataclass
class PreparedData:
    training: TrainingData
    report: Any  # validate.DataQualityReport (with preprocessing folded in)
    source: SourceConfig
    quarantine_path: Path | None
    summary: PreprocessSummary | None = None
    shifts: pl.DataFrame | None = None  # daily times written with an offset: `ValidationResult.shifts`


def prepare_data(settings: Settings, as_of: datetime | None = None, run_key: str | None = None,
                 warn: Callable[[str], None] | None = None, *, fit_spans: bool = False) -> PreparedData:
    """ingest + validate + quarantine write + threshold check + preprocess, in one call. With `fit_spans`, prepared
    with the spans a run fits to the data (`fitted_spans`), as the retrain flow prepares it: the series too short for
    a network are those its run counts (`flowcast validate` counted them with the default spans: 3 of 3 where its
    run said 1).

    A source file another program writes meanwhile is read again, as a run reads it (`source_files.read_steadily`):
    each read again said through `warn` (a command's warning line; none: not said).

    Quarantine goes to settings.quarantine_dir / <source> / (run_key or as_of or "all"). Raises
    DataValidationError (exit 2) on dataset-level failures and above the quarantine threshold
    (the quarantine file is written first, so the rows can be inspected); when the failure comes
    after validation, the error carries the data quality report as `report`."""
    import hashlib

    from flowcast.data.datasets import resolve_source
    from flowcast.data.source_files import read_steadily
    from flowcast.data.sources import ingest
    from flowcast.data.validate import (
        as_of_label,
        enforce_thresholds,
        quarantine_folder,
        take_valid,
        unwritten_refusal,
        validate,
        write_quarantine,
    )
    from flowcast.errors import StorageError

    source = resolve_source(settings)
    ingested, result = read_steadily(source, lambda: ingest(source, as_of),
                                     lambda read: validate(read, source, settings.validation), warn or unsaid)
    try:
        qpath = write_quarantine(
            result, quarantine_folder(settings.quarantine_dir, source.name, run_key or as_of_label(ingested.as_of))
        )
    except (StorageError, OSError) as exc:  # a full disk: a refusal is said as the refusal, with why no file
        if (refused := unwritten_refusal(result, settings.validation, str(exc), artifact=None)) is not None:
            raise refused from exc
        raise
    fp = hashlib.sha256(f"{ingested.fingerprint}|{ingested.as_of}|{result.report.rows_valid}".encode()).hexdigest()[:16]
    try:
        enforce_thresholds(result, settings.validation, artifact=None)  # a command's: it writes no artifact
        valid = take_valid(result)
        training, summary = preprocess(valid, source, settings, ingested.as_of, fingerprint=fp, warn=warn or unsaid)
        if fit_spans and (fitted := fitted_spans(settings, training)[0]) is not settings:
            training, summary = preprocess(valid, source, fitted, ingested.as_of, fingerprint=fp, warn=warn or unsaid)
    except DataValidationError as exc:
        exc.report = result.report  # what was found before the failure, for callers that show it
        raise
    result.report.add_preprocess(summary)
    return PreparedData(training=training, report=result.report, source=source, quarantine_path=qpath,
                        summary=summary, shifts=result.shifts)
