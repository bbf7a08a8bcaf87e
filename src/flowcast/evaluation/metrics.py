"""Forecast accuracy metrics as vectorised polars expressions over a long frame.

Every `*_expr` is an aggregating expression meant for `group_by(...).agg(...)` over rows of
(y, y_hat[, quantile columns]). Definitions:

- MAE   mean |y - f|
- RMSE  sqrt(mean (y - f)^2)
- sMAPE the M3 definition, in percent: mean 200 |y - f| / (|y| + |f|); a row where y = f = 0
        counts as 0 (a perfect forecast), not as 0/0
- MASE  MAE / scale, scale = mean |y_t - y_{t-m}| over the series' history up to the cutoff
        (m = season length; m = 1 when the history is not longer than m; on sub-daily data of a zone whose
        season is whole days, y_{t-m} is the same local time a season before, as seasonal naive takes it:
        `mase_scale`). A series whose
        history is constant has scale 0 and its MASE is null (undefined), never inf
- RMSSE sqrt(mean (y - f)^2 / scale2), scale2 = mean (y_t - y_{t-1})^2 over the series' history up to the
        cutoff (the M5 competition's root mean squared scaled error: one-step naive differences, whatever the
        season). It rewards forecasting the mean demand rate where MASE rewards the median (0 on mostly-zero
        demand); the same conventions as MASE: history up to each cutoff, a constant history (scale 0, float noise
        included: scale2 <= (1e-9 x max(1, mean |y|))^2) or a one-observation one (no difference) leaves it null,
        never inf, and a NaN forecast leaves it NaN
- pinball loss per quantile q: mean max(q (y - f_q), (q - 1)(y - f_q))
- coverage of the outermost interval [f_qmin, f_qmax]: share of y inside it, give or take 1e-9 x max(1, |y|)
  (`inside_interval`: float noise on a zero-width interval is no miss)

`score` applies them per (model, unique_id, window): the mean over the horizon. Averages
over series and windows are taken by `selection.leaderboard`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from flowcast.columns import quantile_col
from flowcast.data.calendar import local_season_us, periods_between, same_grid
from flowcast.timekeys import season_ago_local

METRICS = ("mae", "rmse", "smape", "mase", "rmsse")
# the coverages as every table heads them, the CLI's 80 columns included (the leaderboard artifact said 'coverage80'
# where `flowcast run` and `flowcast accuracy` said 'cov80': 'coverage80' cut the CLI's figures to '2.1…')
_NAMES = {"mase": "MASE", "rmsse": "RMSSE", "smape": "sMAPE", "mae": "MAE", "rmse": "RMSE", "msis": "MSIS",
          "coverage80": "cov80", "coverage95": "cov95"}


def metric_name(metric: str) -> str:
    """A metric as a sentence or a table's header writes it: 'mase' -> 'MASE', 'smape' -> 'sMAPE', 'coverage80' ->
    'cov80'."""
    return _NAMES.get(metric, metric)


_MEANINGS = {
    "mase": ("MASE is relative to the seasonal naive forecast (snaive, y[t-m]): each series' mean absolute error "
             "divided by snaive's in-sample mean absolute error on its history up to the window's cutoff; 1.0 is "
             "as accurate as snaive was in-sample, below 1.0 better"),
    "rmsse": ("RMSSE is the root mean squared error scaled by the naive forecast's (y[t-1]): each series' mean squared "
              "error divided by the naive forecast's in-sample mean squared error on its history up to the window's "
              "cutoff, square-rooted; 1.0 is as accurate as naive was in-sample, below 1.0 better. Mostly-zero "
              "(intermittent) data is ranked on it: its sMAPE is 200 at every point where the actual or the forecast "
              "alone is 0, so there sMAPE says little"),
    "smape": "sMAPE is the symmetric mean absolute percentage error, from 0 (exact) to 200, not relative to a baseline",
    "mae": "MAE is the mean absolute error in the target's units, not relative to a baseline",
    "rmse": "RMSE is the root mean squared error in the target's units, not relative to a baseline",
}


def metric_meaning(metric: str) -> str:
    """What a score of `metric` is measured against, for a table's header: 1.0 of MASE is seasonal naive."""
    return _MEANINGS.get(metric, f"{metric_name(metric)}: lower is better")


# an error within what float64 arithmetic on the values can resolve is no error: a forecast exact up to
# rounding (damped or drift on a straight line) scored MASE 8.2e-16 and sMAPE 4.2e-15, which `flowcast models
# list` and `flowcast accuracy` printed as '8.235e-16' where 0 is meant
ROUNDING = 1e-12


def abs_error(y: str = "y", f: str = "y_hat") -> pl.Expr:
    """|y - f| per row; 0 where it is within float rounding of the values (|y - f| <= 1e-12 (|y| + |f|))."""
    err = (pl.col(y) - pl.col(f)).abs()
    rounding = err.is_finite() & (err <= ROUNDING * (pl.col(y).abs() + pl.col(f).abs()))  # polars: NaN <= NaN
    return pl.when(rounding).then(0.0).otherwise(err)


def mae_expr(y: str = "y", f: str = "y_hat") -> pl.Expr:
    return abs_error(y, f).mean().alias("mae")


def rmse_expr(y: str = "y", f: str = "y_hat") -> pl.Expr:
    return abs_error(y, f).pow(2).mean().sqrt().alias("rmse")


def smape_expr(y: str = "y", f: str = "y_hat") -> pl.Expr:
    denom = pl.col(y).abs() + pl.col(f).abs()
    row = pl.when(denom == 0).then(0.0).otherwise(200.0 * abs_error(y, f) / denom)
    return row.mean().alias("smape")


def mase_expr(y: str = "y", f: str = "y_hat", scale: str = "scale") -> pl.Expr:
    """Needs a `scale` column (constant within the group), e.g. from `mase_scale`."""
    s = pl.col(scale).first()
    return pl.when(s > 0).then(abs_error(y, f).mean() / s).otherwise(None).alias("mase")


def rmsse_expr(y: str = "y", f: str = "y_hat", scale: str = "scale_sq") -> pl.Expr:
    """Needs a `scale_sq` column (constant within the group: the mean squared one-step difference, e.g. from
    `rmsse_scale`); null where it is 0 or undefined, as MASE is."""
    s = pl.col(scale).first()
    return pl.when(s > 0).then((abs_error(y, f).pow(2).mean() / s).sqrt()).otherwise(None).alias("rmsse")


def pinball_expr(q: float, y: str = "y", f: str | None = None) -> pl.Expr:
    col = f or quantile_col(q)
    diff = pl.col(y) - pl.col(col)
    return pl.max_horizontal(q * diff, (q - 1) * diff).mean().alias(f"pinball_{col.removeprefix('y_hat_')}")


INSIDE_TOLERANCE = 1e-9  # relative to max(1, |y|): float noise, not a miss


def noise_floor(level: pl.Expr) -> pl.Expr:
    """`INSIDE_TOLERANCE` x max(1, level): a difference at most this, on values of magnitude `level`, is float
    noise (an interval's miss, a MASE scale, a constant history's spread)."""
    return pl.max_horizontal(pl.lit(1.0), level) * INSIDE_TOLERANCE


def inside_interval(y: pl.Expr, lo: pl.Expr, hi: pl.Expr) -> pl.Expr:
    """Whether `y` lies in [lo, hi], give or take `INSIDE_TOLERANCE` x max(1, |y|): on constant data a
    zero-width interval computed through floats (theta's 7.3 + 1e-15) made an exact hit a miss, and the
    leaderboard showed theta's and comb's coverage as 0.71 / 0.67. Null where any of them is null. Every
    coverage (backtest boards, interval calibration's, realized accuracy) counts a point inside with this."""
    tol = noise_floor(y.abs())
    return (y >= lo - tol) & (y <= hi + tol)


def coverage_expr(lo: str, hi: str, y: str = "y") -> pl.Expr:
    inside = inside_interval(pl.col(y), pl.col(lo), pl.col(hi))
    return inside.cast(pl.Float64).mean().alias("coverage")


def mase_scale(
    insample: pl.DataFrame, season_length: int, cutoffs: pl.DataFrame | None = None, *, history: bool = False,
    freq: str | None = None, tz: str | None = None,
) -> pl.DataFrame:
    """Mean |y_t - y_{t-m}| per series (per (unique_id, cutoff) when `cutoffs` is given,
    using only history with ds <= cutoff). Falls back to m = 1 for histories of <= m points.
    `freq` and `tz` (the data's): on sub-daily data of a zone whose season is whole days (`calendar.local_season_us`)
    y_{t-m} is the value at the same local time a season before t, as seasonal naive forecasts it
    (`timekeys.season_ago_local`: 24 local hours, 23 or 25 periods across a daylight-saving change; m periods where
    that time is off the grid), and no difference where the history has no row there; otherwise m periods back.
    0 where it is float noise (<= `noise_floor` of the mean |y| of the same history: see the module).
    `history=True` adds `history`: the number of rows up to the cutoff.

    One pass over the history: running sums of the lagged differences, read at each cutoff
    with an as-of join, so several cutoffs cost no more than one.
    Returns unique_id[, cutoff], scale (null when the history has fewer than 2 points).
    """
    return _scales(insample, season_length, cutoffs, history=history, squared=False, freq=freq, tz=tz)


def rmsse_scale(insample: pl.DataFrame, cutoffs: pl.DataFrame | None = None) -> pl.DataFrame:
    """Mean (y_t - y_{t-1})^2 per series (per (unique_id, cutoff) when `cutoffs` is given, using only history
    with ds <= cutoff): RMSSE's scale, squared, 0 where its root is float noise (as `mase_scale`). Returns unique_id[, cutoff], scale_sq (null when the history has
    fewer than 2 points, as `mase_scale`'s)."""
    out = _scales(insample, 1, cutoffs, history=False, squared=True)
    return out.drop("scale")


def _scales(insample: pl.DataFrame, season_length: int, cutoffs: pl.DataFrame | None, *, history: bool,
            squared: bool, freq: str | None = None, tz: str | None = None) -> pl.DataFrame:
    """`mase_scale`; `squared` adds scale_sq, the mean squared one-step difference (`rmsse_scale`), from the
    same pass."""
    m = max(1, int(season_length))
    season_us = None if freq is None else local_season_us(freq, tz, m)
    # sorted by (unique_id, ds): positions restart at each series boundary (a linear scan) and
    # the lagged differences are only taken within a series. Running sums are per series
    # (`over`), not one global sum minus an offset, which would lose precision when series of
    # very different scales share the frame.
    boundary = (pl.col("unique_id") != pl.col("unique_id").shift(1)).fill_null(True)
    idx = pl.int_range(pl.len(), dtype=pl.Int64)
    pos = idx - pl.when(boundary).then(idx).otherwise(None).forward_fill()

    def running(lag: int, squared: bool = False) -> pl.Expr:
        diff = pl.col("y") - pl.col("y").shift(lag)
        d = pl.when(pl.col("pos") >= lag).then(diff * diff if squared else diff.abs()).otherwise(0.0)
        return d.cum_sum().over("unique_id")

    sq = [running(1, squared=True).alias("sum_sq")] if squared else []
    seasonal = [running(m).alias("sum_m"), (pl.col("pos") + 1 - m).clip(lower_bound=0).alias("cnt_m")]

    hist = insample.lazy().select("unique_id", "ds", "y").sort("unique_id", "ds").with_columns(pos.alias("pos"))
    if season_us is not None:  # the same local time a season before (one self-join, on zoned sub-daily data only)
        assert freq is not None and tz is not None
        hist, seasonal = _local_lag(hist, freq, tz, season_us, m)
    hist = (
        hist
        .with_columns(
            (pl.col("pos") + 1).alias("n"),
            *seasonal,
            running(1).alias("sum_1"),
            pl.col("pos").alias("cnt_1"),
            pl.col("y").abs().fill_null(0.0).cum_sum().over("unique_id").alias("sum_abs"),
            pl.col("y").is_not_null().cum_sum().over("unique_id").alias("cnt_abs"),
            *sq,
        )
    )
    # float noise relative to the history's level (mean |y|): a scale at most it is 0 (see the module)
    floor = noise_floor(pl.col("sum_abs") / pl.col("cnt_abs"))

    def denoised(raw: pl.Expr, tol: pl.Expr) -> pl.Expr:  # null and NaN stay as they are
        return pl.when(raw.is_finite() & tol.is_finite() & (raw <= tol)).then(0.0).otherwise(raw)

    raw = (
        pl.when(pl.col("cnt_m") > 0)  # more than m rows (by position), or a local time a season before found
        .then(pl.col("sum_m") / pl.col("cnt_m"))
        .when(pl.col("cnt_1") > 0)
        .then(pl.col("sum_1") / pl.col("cnt_1"))
        .otherwise(None)
    )
    scale = denoised(raw, floor).alias("scale")
    extra = [pl.col("n").cast(pl.Int64).alias("history")] if history else []
    if squared:  # one-step differences whatever the season (M5's RMSSE), null without any (one observation)
        raw_sq = pl.when(pl.col("cnt_1") > 0).then(pl.col("sum_sq") / pl.col("cnt_1")).otherwise(None)
        extra.append(denoised(raw_sq, floor * floor).alias("scale_sq"))
    if cutoffs is None:
        return (hist.group_by("unique_id").agg(pl.all().last()).select("unique_id", scale, *extra).sort("unique_id")
                .collect())
    keys = cutoffs.lazy().select("unique_id", "cutoff").unique()
    right = hist.select("unique_id", "ds", "n", "sum_m", "cnt_m", "sum_1", "cnt_1", "sum_abs", "cnt_abs",
                        *(["sum_sq"] if squared else []))
    return (
        keys.sort("cutoff")
        .join_asof(right.sort("ds"), left_on="cutoff", right_on="ds", by="unique_id", strategy="backward",
                   check_sortedness=False)  # both sides are sorted on the key just above
        .select("unique_id", "cutoff", scale, *extra)
        .sort("unique_id", "cutoff")
        .collect()
    )


def _local_lag(hist: pl.LazyFrame, freq: str, tz: str, season_us: int, m: int) -> tuple[pl.LazyFrame, list[pl.Expr]]:
    """`hist` (unique_id, ds, y, pos; sorted) with `__lag`, the value at the same local time of `tz` one season of
    `season_us` microseconds of wall time before each row (`timekeys.season_ago_local`), where that time is on the
    series' grid (else the value m rows before), and `__has_lag` (whether there is one); and the expressions of the
    running sum of |y - __lag| and its count (`sum_m`, `cnt_m`) that `_scales` reads."""
    # each distinct time's source, its periods back and whether it is on the grid, once: the series share their times,
    # and the zone's rules read per row cost more than the rest (10,000 hourly series of 30 days: 7 of 54 s)
    times = hist.select(pl.col("ds").unique()).with_columns(
        season_ago_local(pl.col("ds"), pl.col("ds"), tz, season_us).cast(pl.Datetime("us")).alias("__source"))
    times = times.with_columns(same_grid(pl.col("__source"), pl.col("ds"), freq).alias("__grid"),
                               periods_between(pl.col("__source"), pl.col("ds"), freq).alias("__back"))
    # a series' source is `__back` rows before where it has no hole since its first row (`TrainingData.frame`, every
    # caller's, has none): read by position, where a join of every row with its series' rows took 20 of those 54 s
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    at = (row - pl.col("__back")).clip(lower_bound=0)
    found = (pl.col("pos") >= pl.col("__back")) & (pl.col("ds").gather(at).cast(pl.Datetime("us")) == pl.col("__source"))
    hole = periods_between(pl.col("ds").gather(row - pl.col("pos")), pl.col("ds"), freq) != pl.col("pos")
    hist = hist.join(times, on="ds", how="left", maintain_order="left").with_columns(
        hole.alias("__hole"), pl.when(found).then(pl.col("y").gather(at)).alias("__lag"), found.alias("__found"))
    # after a hole, looked up by time: the rows of the series with one (none, or a few), joined
    values = hist.join(hist.filter(pl.col("__hole")).select("unique_id").unique(), on="unique_id", how="semi").select(
        "unique_id", pl.col("ds").cast(pl.Datetime("us")).alias("__source"), pl.col("y").alias("__lag_t"),
        pl.lit(True).alias("__found_t"))
    grid = pl.col("__grid")
    lagged = (
        hist.join(values, on=["unique_id", "__source"], how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("__hole")).then(pl.col("__lag_t")).otherwise(pl.col("__lag")).alias("__lag"),
            pl.when(pl.col("__hole")).then(pl.col("__found_t").fill_null(False)).otherwise(pl.col("__found"))
            .alias("__found"))
        .with_columns(
            pl.when(grid).then(pl.col("__lag")).otherwise(pl.col("y").shift(m).over("unique_id")).alias("__lag"),
            pl.when(grid).then(pl.col("__found").fill_null(False)).otherwise(pl.col("pos") >= m).alias("__has_lag"),
        )
    )
    d = pl.when(pl.col("__has_lag")).then((pl.col("y") - pl.col("__lag")).abs()).otherwise(0.0)
    return lagged, [d.cum_sum().over("unique_id").alias("sum_m"),
                    pl.col("__has_lag").cum_sum().over("unique_id").cast(pl.Int64).alias("cnt_m")]


def score(
    forecasts: pl.DataFrame,
    insample: pl.DataFrame,
    season_length: int,
    quantiles: Sequence[float] = (),
    *,
    freq: str | None = None,
    tz: str | None = None,
) -> pl.DataFrame:
    """Per (model, unique_id, window) metrics: mae, rmse, smape, mase, rmsse, pinball per quantile and
    the coverage of the outermost interval (when at least two quantiles are given).

    forecasts: unique_id, [model], [window], [cutoff], ds, y, y_hat, [quantile columns].
    insample: unique_id, ds, y (the history; with a `cutoff` column in forecasts only rows with
    ds <= cutoff scale that window's MASE and RMSSE). `freq`, `tz`: the data's, for MASE's seasonal differences at
    the same local time (`mase_scale`).
    Missing `model`/`window` columns are filled with null / 0 so the output schema is fixed.
    """
    missing = [c for c in ("unique_id", "ds", "y", "y_hat") if c not in forecasts.columns]
    if missing:
        raise ValueError(f"forecasts lack columns {missing}; have {forecasts.columns}")
    qs = sorted(float(q) for q in quantiles)
    absent = [quantile_col(q) for q in qs if quantile_col(q) not in forecasts.columns]
    if absent:
        raise ValueError(f"quantile columns {absent} missing from forecasts (columns: {forecasts.columns})")
    fc = forecasts
    if "model" not in fc.columns:
        fc = fc.with_columns(pl.lit(None, dtype=pl.Utf8).alias("model"))
    if "window" not in fc.columns:
        fc = fc.with_columns(pl.lit(0, dtype=pl.Int32).alias("window"))
    has_cutoff = "cutoff" in fc.columns
    if has_cutoff:
        scale = _scales(insample, season_length, fc.select("unique_id", "cutoff"), history=False, squared=True,
                        freq=freq, tz=tz)
        fc = fc.join(scale, on=["unique_id", "cutoff"], how="left")
    else:
        fc = fc.join(_scales(insample, season_length, None, history=False, squared=True, freq=freq, tz=tz),
                     on="unique_id", how="left")
    aggs = [mae_expr(), rmse_expr(), smape_expr(), mase_expr(), rmsse_expr()]
    aggs += [pinball_expr(q) for q in qs]
    if len(qs) >= 2:
        aggs.append(coverage_expr(quantile_col(qs[0]), quantile_col(qs[-1])))
    keys = ["model", "unique_id", "window"]
    if has_cutoff:
        aggs.append(pl.col("cutoff").first())
    aggs.append(pl.len().alias("n"))
    return fc.group_by(keys).agg(aggs).sort(keys, nulls_last=True)
