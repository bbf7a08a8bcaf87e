"""Statistical benchmarks with the same output as `predict`: naive, seasonal naive (of a season and of a week of
daily seasons), Theta and damped.

naive: the last observation repeated. seasonal_naive: the value one season earlier
(`td.meta.season_length`); series shorter than one season fall back to naive. Sub-daily data of a source
with a time zone and a season of whole days take the value at the same local time a season earlier
(24 local hours, 23 or 25 instants across a daylight-saving change). snaive_week: the same with a season of a
week, the data's periods in 7 days whatever its season (`recipes.week_lag`: 168 hourly, 336 half-hourly, 7 daily, 5
business days), the value at the same time a week earlier (Monday's from last Monday, where seasonal_naive on
sub-daily data takes Sunday's), the other benchmark of half-hourly and hourly demand; a candidate of the sub-daily
recipe (`config.FREQUENCY_DEFAULTS`), refused for data whose week is no such lag (weekly, monthly, '5d').
theta: the Theta method (Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah
2003 and R's `forecast::thetaf`), the M3 competition's winner: when a series passes the 90%
seasonality test at lag m (with two full seasons), it is deseasonalised by classical
multiplicative decomposition (additive when a value is 0 or below); then simple exponential smoothing (alpha on a grid and
the initial level chosen by in-sample one-step squared error, as `ets` does) plus half the
slope of the linear trend, reseasonalised.
damped: exponential smoothing with an additive damped trend (ETS(A,Ad,N), Gardner & McKenzie 1985)
on the same deseasonalised series: alpha, beta and phi on a grid (phi = 1, an undamped trend, is
one of its points), chosen by in-sample one-step squared error; level and trend start from a
straight line through the first 10 observations.
Both are vectorised over all series in numpy, in blocks of series. On sub-daily data of a time zone with a season
of whole days, their seasonal indices (and those of `stats`' dotm and arima) go by the local clock (`Slots`): each
local hour of the day its own index across a daylight-saving change, where m columns back are an hour off.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from flowcast.data.calendar import local_season_us
from flowcast.distinct import per_distinct
from flowcast.models.recipes import WEEKLY, week_lag
from flowcast.timekeys import local_wall, season_ago_local

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData

BaselineName = Literal["naive", "seasonal_naive", "snaive_week", "theta", "damped"]
BASELINES: tuple[str, ...] = ("naive", "seasonal_naive", "snaive_week", "theta", "damped")
_ALPHAS = np.linspace(0.01, 0.99, 99)
# damped trend grid: (alpha, beta, phi) with beta <= alpha
_DAMPED_GRID = np.array([
    (a, b, p) for a in np.linspace(0.05, 0.95, 10) for b in (0.0, 0.01, 0.05, 0.1, 0.2)
    for p in (0.8, 0.9, 0.95, 0.98, 1.0) if b <= a
])
_DAMPED_INIT = 10  # observations the initial level and trend are fitted to


def baseline_forecast(name: BaselineName, td: TrainingData, horizon: int | None = None) -> pl.DataFrame:
    """unique_id, ds, step (Int32 1..h), y_hat (Float64) for every series in `td`."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {list(BASELINES)}")
    h = int(horizon or td.meta.horizon)
    fut = td.future_frame(h).select("unique_id", "ds", "step")
    if name in ("theta", "damped"):
        return _blockwise(td, fut, h, theta_matrix if name == "theta" else damped_matrix, clock=True)
    m = _lag(name, td)
    out = _positional_naive(td, fut, m)
    season_us = local_season_us(td.meta.freq, td.meta.tz, m) if name != "naive" else None
    return out if season_us is None else _same_local_time(td, out, m, season_us)


def _lag(name: str, td: TrainingData) -> int:
    """The periods back a naive takes its values from: naive 1, seasonal_naive the data's season, snaive_week the
    data's periods in 7 days (`recipes.week_lag`, an error naming the frequency where there is none)."""
    if name in WEEKLY:
        return week_lag(name, td.meta.freq)
    return td.meta.season_length if name == "seasonal_naive" else 1


def _positional_naive(td: TrainingData, fut: pl.DataFrame, m: int) -> pl.DataFrame:
    """Seasonal naive by position: step k of each series (rows of `fut`) takes its value at position
    n - m + ((k-1) mod m) (m periods before, as often as it takes to reach the history); naive for series
    shorter than m. unique_id, ds, step, y_hat sorted by unique_id, step."""
    hist = td.frame.select("unique_id", "y").with_columns(
        pl.int_range(pl.len()).over("unique_id").alias("pos"), pl.len().over("unique_id").alias("n")
    )
    # step k takes the value at position n - m + ((k-1) mod m); series with n < m use the last value
    tail = hist.with_columns(
        pl.when(pl.col("n") >= m).then(pl.lit(m)).otherwise(pl.lit(1)).alias("m_eff")
    ).filter(pl.col("pos") >= pl.col("n") - pl.col("m_eff")).with_columns(
        (pl.col("pos") - (pl.col("n") - pl.col("m_eff"))).alias("phase")
    )
    m_eff = tail.group_by("unique_id").agg(pl.col("m_eff").first())
    return (
        fut.join(m_eff, on="unique_id", how="left")
        .with_columns(((pl.col("step") - 1) % pl.col("m_eff")).alias("phase"))
        .join(tail.select("unique_id", "phase", "y"), on=["unique_id", "phase"], how="left")
        .select("unique_id", "ds", "step", pl.col("y").cast(pl.Float64).alias("y_hat"))
        .sort("unique_id", "step")
    )


def _same_local_time(td: TrainingData, fc: pl.DataFrame, m: int, season_us: int) -> pl.DataFrame:
    """`fc` (seasonal naive by position) with each step of a series of at least m observations taking the value
    at the same LOCAL time (`td.meta.tz`) one season (`season_us` microseconds of wall time) earlier, as many seasons
    back as it takes to reach the history (`timekeys.season_ago_local`): after a daylight-saving change the local
    hours keep their values, where m instants back are an hour off. A step whose source has no row keeps its value
    by position; a zone whose offset does not change over the span gives the same values as by position.

    Why position, not the nearest earlier row at the same local time: `td.frame` is each series on its regular
    grid without a hole (preprocessing imputes a gap or starts the series after it), so a source without a row
    is either (1) before the series' first row: a series of m rows whose first season spans fewer local hours
    (24 rows across an autumn change are 23 hours of its clock), with no earlier row at all; or (2) off the grid:
    an offset change that is not a whole number of periods (Lord Howe's half hour in hourly data), where no row
    since that change is at this local time, the nearest earlier one is from before the change before it (months
    back), and the row m periods back is within a period of that time of day."""
    tz = td.meta.tz
    assert tz is not None
    hist = td.frame.group_by("unique_id").agg(pl.col("ds").max().alias("__last"), pl.len().alias("__n"))
    source = season_ago_local(pl.col("ds"), pl.col("__last"), tz, season_us)
    # a source is within one season of wall time of the series' last ds (as few seasons back as reach it): two
    # seasons of instants hold it across any change of offset, and keep the join off the rest of a long history
    # (2,000 hourly series of 60 days: 1.5 s -> 0.5 s, revD46)
    recent = pl.col("ds") >= pl.col("ds").max().over("unique_id") - pl.duration(microseconds=2 * season_us)
    values = td.frame.filter(recent).select("unique_id", pl.col("ds").alias("__source"),
                                            pl.col("y").cast(pl.Float64).alias("__y"))
    return (
        fc.join(hist, on="unique_id", how="left")
        .with_columns(pl.when(pl.col("__n") >= m).then(source).cast(td.frame.schema["ds"]).alias("__source"))
        .join(values, on=["unique_id", "__source"], how="left")
        .select("unique_id", "ds", "step", pl.coalesce("__y", "y_hat").alias("y_hat"))
        .sort("unique_id", "step")
    )


_SERIES_BLOCK = 2048  # series per block: bounds the [series, steps] and [series, alphas or grid] arrays


def _matrices(td: TrainingData, extra: pl.DataFrame | None = None
              ) -> Iterator[tuple[pl.DataFrame, np.ndarray, np.ndarray]]:
    """(block's series (unique_id, y list, and the columns of `extra`, a frame by unique_id), right-aligned
    NaN-padded rows y [S, N], lengths [S]) for blocks of at most _SERIES_BLOCK series."""
    per = td.frame.group_by("unique_id", maintain_order=True).agg(pl.col("y").cast(pl.Float64))
    if extra is not None:
        per = per.join(extra, on="unique_id", how="left", maintain_order="left")
    for b in range(0, per.height, _SERIES_BLOCK):
        part = per.slice(b, _SERIES_BLOCK)
        lengths = part["y"].list.len().to_numpy().astype(np.int64)
        y = _right_aligned(part["y"], lengths, np.full((part.height, int(lengths.max())), np.nan))
        yield part, y, lengths


def _right_aligned(lists: pl.Series, lengths: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`out` [S, N] with row s's last lengths[s] columns set to the values of lists[s] (a list of that length)."""
    S, N = out.shape
    flat = lists.explode().to_numpy().astype(out.dtype)
    within = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[np.repeat(np.arange(S), lengths), N - np.repeat(lengths, lengths) + within] = flat
    return out


@dataclass(frozen=True)
class Slots:
    """Each period's place in the season on the local clock, for right-aligned rows [S, N] and the h steps after
    them [S, h]: where the clock's offset does not change, column % m and (N + step - 1) % m, as by position; a
    column before a change of offset (the history's) is one place further or back (an hour of a daily season of
    hours), so that every column at the same local time shares a place. `_deseasonalise` takes its indices by it."""

    past: np.ndarray
    ahead: np.ndarray


def _clock_step_us(td: TrainingData) -> int | None:
    """The microseconds of a period where seasonal indices go by the local clock: sub-daily data of a zone whose
    season is whole days (`local_season_us`: 24 hours, a week of hours); None otherwise (by position)."""
    m = td.meta.season_length
    season_us = local_season_us(td.meta.freq, td.meta.tz, m) if m > 1 else None
    return season_us // m if season_us is not None and season_us % m == 0 else None


def _clock_periods(td: TrainingData, fut: pl.DataFrame, step_us: int) -> pl.DataFrame:
    """unique_id, __past (each history row's periods of local wall time after the series' last ds: 0 at it, -24
    a day before on an hourly grid of Berlin's clock, whether 23, 24 or 25 instants back), __ahead (each future
    step's, in step order: 1..h where the offset does not change). An offset change that is not a whole number of
    periods puts a row off the slots' wall times: it goes with the nearest (Lord Howe's half hour in 2-hourly data:
    winter's 18:30 with summer's 19:00, not 17:00), and, between two as near (its half hour in hourly data), with
    the one nearer its place by position (periods of instants): the slots are then by position, as seasonal naive's
    values (`_same_local_time`) and as without a tz, where floored they were by position across one change and a
    period earlier across the other."""
    tz = td.meta.tz
    wall = per_distinct(pl.col("ds"), lambda ds: local_wall(ds, tz))  # the series share their times: one a time

    def periods(column: str) -> pl.Expr:
        """Of the rows of a frame with ds, __wall (its wall time), __last and __last_wall (the series' last ds and
        its wall time): plain arithmetic on the frame, no zone's conversion and no group."""
        ds, last = pl.col("ds"), pl.col("__last")
        wall_us = (pl.col("__wall") - pl.col("__last_wall")).dt.total_microseconds()
        floor, rest = wall_us // step_us, wall_us % step_us
        by_position = (ds - last).dt.total_microseconds() // step_us
        return (pl.when(2 * rest < step_us).then(floor).when(2 * rest > step_us).then(floor + 1)
                .otherwise(floor + (by_position > floor).cast(pl.Int64))).alias(column)

    hist = td.frame.select("unique_id", "ds", wall.alias("__wall"))
    last = hist.group_by("unique_id", maintain_order=True).agg(pl.col("ds").last().alias("__last"),
                                                               pl.col("__wall").last().alias("__last_wall"))
    past = (hist.join(last, on="unique_id", maintain_order="left").select("unique_id", periods("__past"))
            .group_by("unique_id", maintain_order=True).agg("__past"))
    ahead = (fut.sort("unique_id", "step").with_columns(wall.alias("__wall"))
             .join(last, on="unique_id", maintain_order="left").select("unique_id", periods("__ahead"))
             .group_by("unique_id", maintain_order=True).agg("__ahead"))
    return past.join(ahead, on="unique_id", how="left", maintain_order="left")


def _slots(part: pl.DataFrame, lengths: np.ndarray, N: int, h: int, m: int) -> Slots:
    """The `Slots` of a block of `_matrices` whose part has `_clock_periods`' columns: the series' last column
    N - 1 keeps its place by position, every other column and step its periods of local wall time from it."""
    positional = np.broadcast_to(np.arange(N) - (N - 1), (part.height, N))  # the padding: as by position
    past = _right_aligned(part["__past"], lengths, positional.astype(np.int64))
    ahead = part["__ahead"].explode().to_numpy().astype(np.int64).reshape(part.height, h)  # h steps a series
    return Slots((N - 1 + past) % m, (N - 1 + ahead) % m)


def _blockwise(td: TrainingData, fut: pl.DataFrame, h: int, method, clock: bool = False) -> pl.DataFrame:
    """Run `method(y [S, N], n [S], h, m) -> [S, h]` over blocks of series; rows of `fut`. `clock`: `method`
    takes `slots=` (`Slots`, for `_deseasonalise`), given where the season follows the local clock
    (`_clock_step_us`); without a tz, or with a season of periods, it is called without them, by position."""
    m = td.meta.season_length
    step_us = _clock_step_us(td) if clock else None
    extra = _clock_periods(td, fut, step_us) if step_us is not None else None
    blocks = []
    for part, y, lengths in _matrices(td, extra):
        S = part.height
        kw = {} if extra is None else {"slots": _slots(part, lengths, y.shape[1], h, m)}
        f = method(y, lengths, h, m, **kw)  # [S, h]
        blocks.append(pl.DataFrame({
            "unique_id": part["unique_id"].gather(np.repeat(np.arange(S), h)),
            "step": pl.Series(np.tile(np.arange(1, h + 1), S), dtype=pl.Int32),
            "y_hat": f.reshape(-1),  # [S, h] -> [S*h]
        }))
    out = pl.concat(blocks) if blocks else pl.DataFrame(schema={"unique_id": td.frame.schema["unique_id"],
                                                                "step": pl.Int32, "y_hat": pl.Float64})
    return fut.join(out, on=["unique_id", "step"], how="left").sort("unique_id", "step")


def theta_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int, slots: Slots | None = None) -> np.ndarray:
    """Theta forecasts [S, h] for right-aligned, NaN-padded rows y [S, N] of lengths n [S]."""
    S, N = y.shape
    x, fseas = _deseasonalise(y, n, h, m, slots)
    # simple exponential smoothing for every alpha at once, its initial level l0 chosen too (as ets
    # does): the one-step errors are linear in l0, e_t = a_t - c_t * l0 (a_t: the errors from l0 = 0,
    # c_t = (1 - alpha)^(updates before t)), so the best l0 per alpha has a closed form
    start = N - n  # first column of each series
    A = len(_ALPHAS)
    level, c = np.zeros((S, A)), np.ones((S, A))
    saa, sac, scc = np.zeros((S, A)), np.zeros((S, A)), np.zeros((S, A))
    for t in range(N):
        xt = x[:, t : t + 1]  # [S, 1]
        seen = (t >= start)[:, None] & np.isfinite(xt)  # [S, 1]
        a = np.where(seen, xt - level, 0.0)  # [S, A]
        cc = np.where(seen, c, 0.0)
        saa += a * a
        sac += a * cc
        scc += cc * cc
        level = level + _ALPHAS[None, :] * a
        c = np.where(seen, c * (1 - _ALPHAS[None, :]), c)
    l0 = sac / np.where(scc > 0, scc, 1.0)
    sse = saa - l0 * sac
    best = sse.argmin(axis=1)
    rows = np.arange(S)
    alpha, lvl = _ALPHAS[best], level[rows, best] + c[rows, best] * l0[rows, best]
    t = np.arange(N)[None, :] - start[:, None]  # [S, N] 0..n-1 on each series' rows
    obs = np.isfinite(x)
    k = np.maximum(obs.sum(axis=1), 1)
    tm, xm = np.where(obs, t, 0).sum(axis=1) / k, np.where(obs, x, 0).sum(axis=1) / k
    cov = np.where(obs, (t - tm[:, None]) * (x - xm[:, None]), 0).sum(axis=1)
    var = np.where(obs, (t - tm[:, None]) ** 2, 0).sum(axis=1)
    half_slope = np.divide(cov, var, out=np.zeros(S), where=var > 0) / 2
    steps = np.arange(h)[None, :]  # [1, h]
    drift = half_slope[:, None] * (steps + (1 - (1 - alpha[:, None]) ** n[:, None]) / alpha[:, None])
    return fseas.restore(lvl[:, None] + drift)


def damped_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int, slots: Slots | None = None) -> np.ndarray:
    """Damped-trend forecasts [S, h] for right-aligned, NaN-padded rows y [S, N] of lengths n [S]."""
    S, N = y.shape
    x, fseas = _deseasonalise(y, n, h, m, slots)
    start = N - n
    # initial level and trend: least squares line through the first observations of each series
    k = np.arange(_DAMPED_INIT)[None, :]  # [1, K]
    cols = np.minimum(start[:, None] + k, max(N - 1, 0))  # [S, K]
    first = x[np.arange(S)[:, None], cols] if N else np.zeros((S, _DAMPED_INIT))
    ok = (k < n[:, None]) & np.isfinite(first)  # [S, K]
    w = ok.sum(axis=1)
    km = np.where(ok, k, 0).sum(axis=1) / np.maximum(w, 1)
    fm = np.where(ok, first, 0).sum(axis=1) / np.maximum(w, 1)
    var = np.where(ok, (k - km[:, None]) ** 2, 0).sum(axis=1)
    b0 = np.divide(np.where(ok, (k - km[:, None]) * (first - fm[:, None]), 0).sum(axis=1), var,
                   out=np.zeros(S), where=var > 0)
    alpha, beta, phi = (_DAMPED_GRID[:, i][None, :] for i in range(3))  # [1, G] each
    # states one step before the first observation, so that the first one-step forecast is the line at 0
    b = np.repeat(b0[:, None], len(_DAMPED_GRID), axis=1)  # [S, G]
    level = (fm - b0 * km)[:, None] - phi * b
    sse = np.zeros_like(b)
    for t in range(N):
        xt = x[:, t : t + 1]  # [S, 1]
        seen = (t >= start)[:, None] & np.isfinite(xt)  # [S, 1]
        pred = level + phi * b
        e = np.where(seen, xt - pred, 0.0)  # [S, G]
        sse += e * e
        level, b = np.where(seen, pred + alpha * e, level), np.where(seen, phi * b + alpha * beta * e, b)
    best = sse.argmin(axis=1)
    rows = np.arange(S)
    p = phi[0, best][:, None]  # [S, 1]
    steps = np.arange(1, h + 1)[None, :]  # [1, h]
    damp = np.where(p < 1, p * (1 - p**steps) / np.where(p < 1, 1 - p, 1.0), steps)  # phi + ... + phi^k
    return fseas.restore(level[rows, best][:, None] + damp * b[rows, best][:, None])


@dataclass(frozen=True)
class Seasons:
    """The seasonal indices of the next h steps [S, h] that `_deseasonalise` took out: multiplicative (1 where
    none) and additive (0 where none); `restore` puts them back into forecasts of the adjusted series."""

    mul: np.ndarray
    add: np.ndarray

    def restore(self, f: np.ndarray) -> np.ndarray:
        return f * self.mul + self.add


def _deseasonalise(y: np.ndarray, n: np.ndarray, h: int, m: int,
                   slots: Slots | None = None) -> tuple[np.ndarray, Seasons]:
    """(the seasonally adjusted y [S, N], the indices of the next h steps) for the series that pass the 90%
    seasonality test at lag m (with two full seasons): classical multiplicative decomposition when every value
    is positive, additive otherwise (as statsforecast's Theta switches); untouched for the rest. A seasonal series
    with a value at or below 0 (temperatures, net flows, losses; power that is 0 at night) was forecast without
    its seasonality: a ratio to a level that crosses 0 means nothing. Each column and step takes the index of its
    place in the season: column % m, or its place on the local clock (`slots`: sub-daily data of a zone, whose
    hours after a daylight-saving change keep their own indices, where m columns back are an hour off); the
    seasonality test and the moving average stay by position: around a change they pair one season's rows an hour
    off, which on three weeks of hourly Berlin data with a change in the last week moved the test's statistic about
    as much as dropping the first day does (a decision flips only at its threshold) and the forecast by < 0.25%."""
    S, N = y.shape
    if slots is None:
        slots = Slots(np.broadcast_to(np.arange(N) % m, (S, N)), np.broadcast_to(np.arange(N, N + h) % m, (S, h)))
    seas, fseas = np.ones((S, N)), np.ones((S, h))
    shift, fshift = np.zeros((S, N)), np.zeros((S, h))
    if m > 1 and N > 0:
        r = _acf(y, m)  # [S, m]
        stat = np.abs(r[:, m - 1]) / np.sqrt((1 + 2 * (r[:, : m - 1] ** 2).sum(axis=1)) / np.maximum(n, 1))
        positive = np.nanmin(np.where(np.isnan(y), np.inf, y), axis=1) > 0
        seasonal = (stat > 1.645) & (n >= 2 * m)
        # multiplicative indices (seas, fseas) for the positive series, additive ones (shift, fshift) for the rest
        for rows, additive, (past, ahead) in ((seasonal & positive, False, (seas, fseas)),
                                              (seasonal & ~positive, True, (shift, fshift))):
            if rows.any():
                idx = _seasonal_indices(y[rows], m, additive=additive, phase=slots.past[rows])  # [S', m]
                past[rows] = np.take_along_axis(idx, slots.past[rows], axis=1)
                ahead[rows] = np.take_along_axis(idx, slots.ahead[rows], axis=1)
    return y / seas - shift, Seasons(fseas, fshift)


def _acf(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelations at lags 1..max_lag of NaN-padded rows y [S, N] -> [S, max_lag]."""
    d = y - np.nanmean(y, axis=1, keepdims=True)
    d = np.where(np.isnan(d), 0.0, d)
    den = (d**2).sum(axis=1)
    den = np.where(den > 0, den, 1.0)
    return np.stack([(d[:, k:] * d[:, :-k]).sum(axis=1) / den for k in range(1, max_lag + 1)], axis=1)


def _seasonal_indices(y: np.ndarray, m: int, additive: bool = False, phase: np.ndarray | None = None) -> np.ndarray:
    """Classical seasonal indices [S, m] (column p: the columns whose column % m == p, or, given `phase` [S, N],
    whose phase is p): the mean ratio of y to its centred moving average (2 x m for even m), normalised to mean 1;
    `additive`: the mean difference from it, normalised to mean 0. A row whose phases are its columns % m gets
    the same indices as without `phase`, to the last bit."""
    S, N = y.shape
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(w) // 2
    trend = np.full((S, N), np.nan)
    for t in range(half, N - half):
        trend[:, t] = y[:, t - half : t + half + 1] @ w  # NaN where the window leaves the series
    ratio = y - trend if additive else y / trend
    by_column = np.arange(N) % m
    with warnings.catch_warnings():  # a phase without any ratio (short series) is a NaN, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        idx = np.stack([np.nanmean(ratio[:, by_column == p], axis=1) for p in range(m)], axis=1)
    moved = np.zeros(S, dtype=bool) if phase is None else (phase != by_column).any(axis=1)
    if phase is not None and moved.any():  # rows whose clock changed its offset: each phase's mean finite ratio
        r, k = ratio[moved], int(moved.sum())
        finite = np.isfinite(r)
        key = (np.arange(k)[:, None] * m + phase[moved])[finite]  # (row, phase) -> row * m + phase
        sums, counts = np.bincount(key, r[finite], k * m), np.bincount(key, minlength=k * m)
        with np.errstate(invalid="ignore", divide="ignore"):  # a phase without any ratio: NaN, handled below
            idx[moved] = (sums / counts).reshape(k, m)
    if additive:
        idx = np.where(np.isfinite(idx), idx, 0.0)
        return idx - idx.mean(axis=1, keepdims=True)
    idx = np.where(np.isfinite(idx), idx, 1.0)
    return idx / idx.mean(axis=1, keepdims=True)
