"""Preprocessing: valid observations -> `TrainingData` (regular grid, gaps handled, scalers).

Per series, all vectorised in polars (no per-series Python loop):

1. leading and trailing rows without a value are trimmed; trailing rows that still carry declared
   future covariates become `future_exog` (known ahead, within as_of);
2. `preprocess.max_length` keeps only the last N periods;
3. the series is put on its regular grid at the source frequency (missing timestamps inserted);
4. interior gaps up to `preprocess.max_gap` periods are imputed (`linear`, `ffill`, `zero`);
   a series with a longer gap (any gap with `impute="none"`) is excluded;
5. series too short are excluded: `short_series="exclude"` needs lookback + horizon + val_size
   points, `"pad"` needs horizon + val_size + 1 (the models pad/mask short inputs);
6. calendar features (future-known) are added; past/future covariates are filled forward then
   backward within the series (then 0 where a series has none at all);
7. per-series scalers are fitted on the training span only (all but the last val_size points).
   With `log1p=True` a series holding negative values falls back to no log1p (its scaler row
   says so) and is listed in the summary: log1p stays invertible per series.

Static features: numeric static columns become Float64 (first value per series, nulls -> 0);
text statics are one-hot encoded when they have at most `MAX_STATIC_LEVELS` distinct values,
otherwise left out and reported (e.g. us_employment's Title, one distinct value per series).
Every excluded series appears in `TrainingData.excluded` and `PreprocessSummary.excluded` with
its reason; nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flowcast.config import Settings, SourceConfig
from flowcast.data.calendar import calendar_columns, calendar_exprs, parse_freq, season_length
from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers
from flowcast.errors import DataValidationError

MAX_STATIC_LEVELS = 32
_DEFAULT_HORIZON = {"mo": 12, "q": 8, "y": 6, "w": 13, "d": 14}
_MONTHS = {"mo": 1, "q": 3, "y": 12}


@dataclass
class PreprocessSummary:
    """What preprocessing did; `excluded` lists {unique_id, reason} for every excluded series."""

    n_series_in: int = 0
    n_series_out: int = 0
    rows_in: int = 0
    rows_out: int = 0
    rows_trimmed: int = 0  # leading/trailing rows without a value (and rows cut by max_length)
    rows_inserted: int = 0  # missing timestamps put on the grid
    rows_imputed: int = 0  # inserted or empty values filled by the impute method (kept series)
    excluded: list[dict] = field(default_factory=list)
    log1p_disabled: list[str] = field(default_factory=list)
    static_features: list[str] = field(default_factory=list)
    static_dropped: dict[str, str] = field(default_factory=dict)
    horizon: int = 0
    lookback: int = 0
    val_size: int = 0
    min_length: int = 0
    future_exog_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_horizon(settings: Settings, source: SourceConfig) -> int:
    """settings.horizon > source.horizon > a default by frequency (a day of sub-daily periods)."""
    if settings.horizon:
        return settings.horizon
    if source.horizon:
        return source.horizon
    _, unit = parse_freq(source.freq)
    return _DEFAULT_HORIZON.get(unit, season_length(source.freq))


def _periods_between(first: pl.Expr, last: pl.Expr, freq: str) -> pl.Expr:
    """Number of grid steps from first to last (both on the grid)."""
    n, unit = parse_freq(freq)
    if unit in _MONTHS:
        months = (last.dt.year() - first.dt.year()).cast(pl.Int64) * 12 + (
            last.dt.month().cast(pl.Int64) - first.dt.month().cast(pl.Int64)
        )
        return months // (_MONTHS[unit] * n)
    step_us = pl.duration(**{_DURATION_ARG[unit]: n}).dt.total_microseconds()
    return (last - first).dt.total_microseconds() // step_us


_DURATION_ARG = {"ns": "nanoseconds", "us": "microseconds", "ms": "milliseconds", "s": "seconds", "m": "minutes",
                 "h": "hours", "d": "days", "w": "weeks"}


def _grid_ds(first: pl.Expr, pos: pl.Expr, freq: str) -> pl.Expr:
    """The grid point `pos` periods after `first` (first on the grid, pos >= 0)."""
    n, unit = parse_freq(freq)
    if unit in _MONTHS:
        months = first.dt.year().cast(pl.Int64) * 12 + first.dt.month().cast(pl.Int64) - 1 + pos * (_MONTHS[unit] * n)
        return pl.datetime(months // 12, months % 12 + 1, 1, time_unit="us")
    step_us = pl.duration(**{_DURATION_ARG[unit]: n}).dt.total_microseconds()
    return first + pl.duration(microseconds=pos * step_us, time_unit="us")


def _offset(ds: pl.Expr, freq: str, k: pl.Expr) -> pl.Expr:
    """ds shifted by k periods (k may be negative)."""
    n, unit = parse_freq(freq)
    return ds.dt.offset_by(pl.format("{}" + unit, k * n))


def _safe_name(col: str, value: str) -> str:
    return f"{col}={re.sub(r'[^0-9A-Za-z_.-]+', '_', str(value))[:40]}"


def _static_firsts(valid: pl.DataFrame, cols: list[str]) -> pl.DataFrame | None:
    """First non-null value of each static column per series (one small row per series)."""
    if not cols:
        return None
    return valid.group_by("unique_id").agg([pl.col(c).drop_nulls().first().alias(c) for c in cols])


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
            num = text.cast(pl.Float64, strict=False)
            if num.null_count() > text.null_count():  # not numbers: categorical
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
                continue
        out = out.with_columns(num.fill_null(0.0).fill_nan(0.0).alias(c))
        names.append(c)
    if not names:
        return None, [], dropped
    return out.sort("unique_id"), names, dropped


def _drop_series(frame: pl.DataFrame, ids: pl.Series, drop: pl.Series) -> pl.DataFrame:
    """`frame` (sorted, with __sid) without the series in `drop`. Kept series are contiguous runs of
    rows: with few runs they are sliced and concatenated without copying, else filtered."""
    keep = ~ids.is_in(drop.implode())
    if not keep.any():
        return frame.clear()
    counts = frame.get_column("__sid").value_counts(sort=False).sort("__sid")
    lens = pl.Series(np.zeros(ids.len(), dtype=np.int64)).scatter(counts["__sid"], counts["count"].cast(pl.Int64))
    starts = lens.cum_sum() - lens
    runs = pl.DataFrame({"keep": keep, "start": starts, "len": lens}).with_columns(
        (pl.col("keep") != pl.col("keep").shift(1)).fill_null(True).cum_sum().alias("run")
    )
    spans = runs.filter("keep").group_by("run", maintain_order=True).agg(pl.col("start").first(), pl.col("len").sum())
    if spans.height > 64:
        return frame.filter(~pl.col("unique_id").is_in(drop.implode()))
    return pl.concat([frame.slice(a, n) for a, n in spans.select("start", "len").iter_rows()], rechunk=False)


def preprocess(
    valid: pl.DataFrame,
    source: SourceConfig,
    settings: Settings,
    as_of: datetime | None,
    fingerprint: str = "",
) -> tuple[TrainingData, PreprocessSummary]:
    """Valid canonical observations (sorted by unique_id, ds) -> TrainingData + summary."""
    cfg = settings.preprocess
    freq = source.freq
    horizon = resolve_horizon(settings, source)
    lookback = settings.model.lookback
    val_size = cfg.val_size if cfg.val_size is not None else horizon
    min_length = lookback + horizon + val_size if cfg.short_series == "exclude" else horizon + val_size + 1
    past = list(dict.fromkeys(source.past_cols))
    declared_future = list(dict.fromkeys(source.future_cols))
    covs = [*declared_future, *[c for c in past if c not in declared_future]]
    summary = PreprocessSummary(
        rows_in=valid.height, horizon=horizon, lookback=lookback, val_size=val_size, min_length=min_length
    )
    excluded: list[pl.DataFrame] = []

    uid, ds = pl.col("unique_id"), pl.col("ds")
    in_order = valid.height < 2 or valid.select(
        ((uid > uid.shift(1)) | ((uid == uid.shift(1)) & (ds > ds.shift(1)))).slice(1).all()
    ).item()
    if not in_order:  # validate() hands over sorted rows; other callers may not
        valid = valid.sort("unique_id", "ds", maintain_order=True)
    # series index per row from run lengths (valid is sorted by unique_id): integer keys, no string hashing
    rle = valid.get_column("unique_id").rle()
    ids = rle.struct.field("value")
    n_series = ids.len()
    sid = pl.Series("__sid", np.repeat(np.arange(n_series, dtype=np.uint32), rle.struct.field("len").to_numpy()))
    summary.n_series_in = n_series
    keep_cols = ["unique_id", "ds", "y", *covs]
    v = valid.select(keep_cols).with_columns(sid)
    static_cols = list(dict.fromkeys(source.static_cols))
    firsts = _static_firsts(valid, static_cols)
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

    bounds = observed_bounds(v.lazy().filter(pl.col("y").is_not_null()))
    no_obs = bounds.filter(pl.col("__first").is_null()).select("unique_id")
    if no_obs.height:
        excluded.append(no_obs.with_columns(pl.lit("no observed values (every y is empty)").alias("reason")))

    row_sid = v.get_column("__sid")

    def per_row(col: str) -> pl.Series:
        return bounds.get_column(col).gather(row_sid)

    future_exog = None
    if declared_future:
        tail = v.filter(
            (pl.col("ds") > per_row("__last")) & pl.any_horizontal(pl.col(declared_future).is_not_null())
        ).select("unique_id", "ds", *[pl.col(c).cast(pl.Float64) for c in declared_future])
        future_exog = tail if tail.height else None

    # 2. max_length: the first kept point is the first observed one inside the last N periods
    if cfg.max_length:
        cut = _offset(pl.col("__last"), freq, pl.lit(-(cfg.max_length - 1)))
        cut_row = bounds.select(cut.alias("__cut")).get_column("__cut").gather(row_sid)
        bounds = observed_bounds(v.lazy().filter(pl.col("y").is_not_null() & (pl.col("ds") >= cut_row)))

    # 3. grid: trim to the observed span, then scatter the rows onto each series' full grid
    in_span = v.select(pl.col("ds").is_between(per_row("__first"), per_row("__last")).fill_null(False).alias("m"))["m"]
    trimmed = v if in_span.all() else v.filter(in_span)  # no copy when there is nothing to trim
    del in_span
    summary.rows_trimmed = n_valid - trimmed.height
    del v
    bounds = bounds.with_columns(
        (_periods_between(pl.col("__first"), pl.col("__last"), freq) + 1).fill_null(0).cast(pl.Int64).alias("__expected")
    )
    expected = bounds.get_column("__expected")
    total = int(expected.sum())
    if total != trimmed.height:
        offsets = (expected.cum_sum() - expected).cast(pl.Int64)
        t_sid = trimmed.get_column("__sid")
        first_row = bounds.get_column("__first").gather(t_sid)
        pos = trimmed.select(_periods_between(first_row, pl.col("ds"), freq).alias("p")).get_column("p")
        out_idx = offsets.gather(t_sid) + pos
        sid_full = pl.Series("__sid", np.repeat(np.arange(n_series, dtype=np.uint32), expected.to_numpy()))
        grid = pl.DataFrame(
            {
                "unique_id": ids.gather(sid_full),
                "__first": bounds.get_column("__first").gather(sid_full),
                "__pos": pl.Series(np.arange(total, dtype=np.int64)) - offsets.gather(sid_full),
            }
        ).select("unique_id", _grid_ds(pl.col("__first"), pl.col("__pos"), freq).alias("ds"))
        cols = {}
        for c in ["y", *covs]:
            col = pl.Series(c, [None], dtype=trimmed.schema[c]).extend_constant(None, total - 1)
            cols[c] = col.scatter(out_idx, trimmed.get_column(c))
        frame = grid.with_columns(**cols, __sid=sid_full)
        del grid, cols, sid_full, out_idx, pos, first_row, t_sid, offsets
    else:
        frame = trimmed
    summary.rows_inserted = frame.height - trimmed.height
    del trimmed

    # 4. interior gaps: longest run of missing values per series
    lengths = bounds.filter(pl.col("__first").is_not_null()).select("unique_id", pl.col("__expected").alias("length"))
    if frame["y"].null_count():
        isn = pl.col("y").is_null()
        runs = frame.select(
            "__sid", "ds", isn.alias("__isn"), (isn != isn.shift(1)).fill_null(True).cum_sum().alias("__run")
        ).filter(pl.col("__isn"))
        gaps = (
            runs.group_by("__sid", "__run")
            .agg(pl.len().alias("__gap"), pl.col("ds").min().alias("__start"))
            .sort("__sid", pl.col("__gap"), descending=[False, True])
            .group_by("__sid", maintain_order=True)
            .first()
        )
        gaps = gaps.with_columns(unique_id=ids.gather(gaps.get_column("__sid")))
        limit = 0 if cfg.impute == "none" else cfg.max_gap
        too_long = gaps.filter(pl.col("__gap") > limit).select(
            "unique_id",
            pl.format(
                "interior gap of {} periods from {} > max_gap={}{}",
                pl.col("__gap"),
                pl.col("__start").dt.to_string("%Y-%m-%d %H:%M"),
                pl.lit(limit),
                pl.lit(" (impute='none')" if cfg.impute == "none" else ""),
            ).alias("reason"),
        )
        if too_long.height:
            excluded.append(too_long)

    # 5. short series
    short = lengths.filter(pl.col("length") < min_length).select(
        "unique_id",
        pl.format(
            "{} periods < {} needed ({})",
            pl.col("length"),
            pl.lit(min_length),
            pl.lit(
                f"lookback {lookback} + horizon {horizon} + val_size {val_size}"
                if cfg.short_series == "exclude"
                else f"horizon {horizon} + val_size {val_size} + 1, short_series='pad'"
            ),
        ).alias("reason"),
    )
    if short.height:
        excluded.append(short)

    excl = (
        pl.concat(excluded, how="vertical_relaxed").group_by("unique_id", maintain_order=True).agg(
            pl.col("reason").str.join("; ")
        ).sort("unique_id")
        if excluded
        else pl.DataFrame(schema={"unique_id": pl.Utf8, "reason": pl.Utf8})
    )
    if excl.height:
        frame = _drop_series(frame, ids, excl.get_column("unique_id"))
        if future_exog is not None:
            future_exog = future_exog.join(excl.select("unique_id"), on="unique_id", how="anti")
            future_exog = future_exog if future_exog.height else None
    summary.excluded = excl.to_dicts()
    if frame.height == 0:
        reasons = "; ".join(f"{e['unique_id']}: {e['reason']}" for e in summary.excluded[:5])
        hint = ""
        if short.height == len(summary.excluded) and lengths.height:  # every series is just too short
            longest, median = int(lengths["length"].max()), int(lengths["length"].median())
            hint = (f"; series have {median} periods (median), {longest} at most: lower model.lookback "
                    f"(FLOWCAST_MODEL__LOOKBACK={max(1, median - horizon - val_size)} keeps half of them) or the horizon"
                    + (", or set preprocess.short_series = 'pad'" if cfg.short_series == "exclude" else ""))
        raise DataValidationError(
            f"source {source.name!r}: no series left after preprocessing ({len(summary.excluded)} excluded: {reasons}){hint}"
        )

    # impute what is left (gaps <= max_gap); series never start or end with a gap after trimming
    n_missing = frame["y"].null_count()
    if n_missing:
        fill = {"linear": pl.col("y").interpolate(), "ffill": pl.col("y").forward_fill(), "zero": pl.col("y").fill_null(0.0)}
        frame = frame.with_columns(fill[cfg.impute] if cfg.impute in fill else pl.col("y"))
    summary.rows_imputed = n_missing

    # 6. covariates: calendar + declared future + past, Float64, no nulls
    cal_cols = calendar_columns(freq) if cfg.calendar else []
    if cal_cols:  # computed once per grid point between the first and last ds, then gathered by position
        lo, hi = frame.select(pl.col("ds").min().alias("lo"), pl.col("ds").max().alias("hi")).row(0)
        # pl.select, not frame.select: polars 2.1 evaluates a literal-only expression once per chunk of
        # the frame it is selected from (one row per chunk), which broke .item() on multi-chunk frames
        span = pl.select(_periods_between(pl.lit(lo), pl.lit(hi), freq).alias("n")).item() + 1
        if span <= frame.height:
            grid_ds = pl.select(_grid_ds(pl.lit(lo), pl.int_range(0, span, dtype=pl.Int64), freq).alias("ds"))
            cal = grid_ds.with_columns(calendar_exprs(freq))
            pos = frame.select(_periods_between(pl.lit(lo), pl.col("ds"), freq).alias("p")).get_column("p")
            frame = frame.with_columns([cal.get_column(c).gather(pos) for c in cal_cols])
            del pos
        else:  # a few points spread over a long span: compute directly
            frame = frame.with_columns(calendar_exprs(freq))
    if covs:
        frame = frame.with_columns(pl.col(covs).cast(pl.Float64))
        if any(frame[c].null_count() for c in covs):
            frame = frame.with_columns(
                pl.col(covs).forward_fill().backward_fill().over("unique_id").fill_null(0.0)
            )
    future_cols = [*cal_cols, *declared_future]
    past_cols = [c for c in past if c not in declared_future]
    frame = frame.select(
        pl.col("unique_id").set_sorted(), "ds", pl.col("y").cast(pl.Float64), *future_cols, *past_cols
    )  # sorted by (unique_id, ds): the flag lets group_by/over on unique_id use contiguous slices

    # 7. scalers on the training span (log1p per series where the data allow it)
    if cfg.log1p:
        neg = frame.group_by("unique_id").agg((pl.col("y").min() < 0).alias("neg")).filter(pl.col("neg"))
        neg_ids = neg.get_column("unique_id")
        summary.log1p_disabled = sorted(neg_ids.to_list())
        parts = [fit_scalers(frame.filter(~pl.col("unique_id").is_in(neg_ids.implode())), cfg.scaler, True, val_size)]
        if neg_ids.len():
            parts.append(fit_scalers(frame.filter(pl.col("unique_id").is_in(neg_ids.implode())), cfg.scaler, False, val_size))
        scalers = pl.concat([p for p in parts if p.height], how="vertical_relaxed").sort("unique_id")
    else:
        scalers = fit_scalers(frame, cfg.scaler, False, val_size)

    ids = scalers.get_column("unique_id")
    static, static_names, dropped = _static_features(firsts, static_cols, ids)
    summary.static_features, summary.static_dropped = static_names, dropped
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
    )
    td = TrainingData(frame=frame, scalers=scalers, meta=meta, static=static, future_exog=future_exog, excluded=excl)
    return td, summary


# ------------------------------------------------------------------------------------ one call
@dataclass
class PreparedData:
    training: TrainingData
    report: Any  # validate.DataQualityReport (with preprocessing folded in)
    source: SourceConfig
    quarantine_path: Path | None


def prepare_data(settings: Settings, as_of: datetime | None = None, run_key: str | None = None) -> PreparedData:
    """ingest + validate + quarantine write + threshold check + preprocess, in one call.

    Quarantine goes to settings.quarantine_dir / <source> / (run_key or as_of or "all"). Raises
    DataValidationError (exit 2) on dataset-level failures and above the quarantine threshold
    (the quarantine file is written first, so the rows can be inspected)."""
    import hashlib

    from flowcast.data.datasets import resolve_source
    from flowcast.data.sources import ingest, source_fingerprint
    from flowcast.data.validate import (
        as_of_label,
        enforce_thresholds,
        quarantine_folder,
        take_valid,
        validate,
        write_quarantine,
    )

    source = resolve_source(settings)
    ingested = ingest(source, as_of)
    result = validate(ingested, source, settings.validation)
    qpath = write_quarantine(
        result, quarantine_folder(settings.quarantine_dir, source.name, run_key or as_of_label(ingested.as_of))
    )
    enforce_thresholds(result, settings.validation)
    fp = hashlib.sha256(
        f"{source_fingerprint(source)}|{ingested.as_of}|{result.report.rows_valid}".encode()
    ).hexdigest()[:16]
    training, summary = preprocess(take_valid(result), source, settings, ingested.as_of, fingerprint=fp)
    result.report.add_preprocess(summary)
    return PreparedData(training=training, report=result.report, source=source, quarantine_path=qpath)
