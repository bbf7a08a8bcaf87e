"""Prediction intervals by split conformal prediction on backtest errors, per horizon step.

Every model kind gets its intervals the same way, from how wrong it was on the backtest:

- residual (any model): the nonconformity score of a backtest point is |y - y_hat| / scale,
  where `scale` is the series' own MASE scale (mean |y_t - y_{t-m}| of its history up to the
  window's cutoff), so one calibration serves series of every size. For each horizon step the
  calibrated width q is the ceil((n + 1) L)-th smallest of its n scores (the finite-sample
  conformal quantile at level L); the interval is y_hat -/+ q x scale.
- cqr (a network trained on quantiles, Romano et al. 2019): the score is
  max(lo - y, y - hi) / scale for the network's own quantiles (lo, hi) = (q_(1-L)/2, q_(1+L)/2);
  the interval is [lo - q x scale, hi + q x scale], which widens (or narrows) the network's band
  until it covers L of the calibration points.

Widths depend on how long a series' history is (Mondrian conformal prediction, Vovk et al. 2005,
with the history length as the category): a model's errors, relative to the series' scale, are
larger on short histories, and the oldest backtest cuts leave most series short, while the
published forecast starts from every series' whole history. So when the calibration points carry
`history` (rows up to the window's cutoff), they are split at the median history of their
(series, window) pairs into a short and a long group, each calibrated on its own, and a forecast
takes the widths of its series' group (a group with fewer than `MIN_GROUP_POINTS` points per step
is not split off: everything is calibrated pooled). Widths never grow with the history: a short
history's widths are at least the pooled ones, a long history's at most (where a few points make
the scale itself unreliable, the short group's scaled errors can come out smaller). On the M3 validation splits (the last horizon
of each training span) this took the 80% / 95% coverage of the published forecasts from 0.854 /
0.974 to 0.828 / 0.965 on quarterly data and from 0.790 / 0.961 to 0.790 / 0.943 on yearly data.

`cross_calibrated` measures this honestly: the intervals of backtest window k are calibrated on
the windows before k only (their points observed by k's cutoff: windows may overlap), so the coverage and the interval score (MSIS) the leaderboard shows
come from windows the calibration never saw. The published intervals are calibrated on every
window (`calibrate`). A step with no calibration point borrows the widths pooled over all steps (grown
with sqrt(h): "Few points" below); the
calibration ends at the last step with one (later steps are beyond it, below).

Steps beyond the calibrated ones. A forecast can be longer than the steps its backtest scored (`flowcast
forecast --horizon 9` after a 6-step backtest; a retrain whose short histories let one window score 4 steps of
7). Steps 1..H keep their calibrated widths; a step h > H gets q_H x sqrt(h / H) (`_width_expr`), never
narrower than q_H. sqrt(h) is how a random walk's h-step error grows (its variance is h times the one-step
one): the model the MASE scale measures errors against, and the middle ground between models whose errors level
off (stationary ones: slower) and those whose trend error compounds (linear in h: faster). The seasonal naive
of season m > 1 is a seasonal random walk: its
h-step error grows with the seasons ahead, ceil(h / m), not with h (`growth`), so step h > H gets
q_H x sqrt(ceil(h / m) / ceil(H / m)), step H's width within its season (sqrt(h / H) widened steps whose errors
do not grow). A model declares this growth (`recipes.ERROR_GROWTH`: the seasonal naive does), and a candidate
whose models all declare it (the seasonal naive alone, or combined only with seasonal models) is calibrated with
the data's `season_length` (`candidates.growth_season`). Other models, and any mix, keep sqrt(h): their errors grow
within a season. It is a convention,
not a calibration: `calibration_notes` (given the forecast's horizon) and `beyond_note` say so in the run's
notes. Those steps used to reuse q_H silently, published as calibrated.

Few points. The conformal quantile at level L exists only with n >= `min_points(L)` scores (4 at
80%, 19 at 95%): with fewer, ceil((n + 1) L) > n and the level's conformal interval is unbounded.
Taking the largest score instead (as flowcast did) published a "95%" interval that covers less
than 95%, and on a small backtest (8 series, one calibration window: 8 points per step) the 80%
and 95% intervals were both the largest score, identical. So the widths of a step are its own
only when the step has enough points for every level calibrated (19 for 95%); otherwise that step
takes the widths pooled over all steps, and a level whose pooled points are too few too gets no
interval (its columns stay null), but in the rows of a published constant history: its zero width is true at
every level (`apply_intervals`). The pooled widths grow with the step: errors grow with the
horizon, and one width for every step (as flowcast had) under-covered the long steps and
over-covered the short ones (a small daily file: damped's 80% intervals covered 0.67 of its
points). Each score is divided by sqrt(its step) before pooling, and step h gets the pooled
quantile x sqrt(h): the random walk's growth that widens the steps beyond a calibration (below),
so a pooled calibration and its widening beyond follow one law; for the seasonal naive of season m > 1 (and any
model that declares seasonal growth, above), the
seasonal random walk's, sqrt(ceil(h / m)), flat within a season (`growth`). 10-minute data with a daily cycle (m = horizon =
144) and 8 points a step gave seasonal_naive 80% widths of 0.23 scales at step 1 growing to 2.7 at step 144,
where its errors' 80% quantile was about 1.4 at every step; through `flowcast run` (`bench/interval_growth.py`,
scored on the day after as_of) its steps 1-18 covered 0.49 at 80% with sqrt(h), 0.92 flat. The finite-sample guarantee is
the pooled one either way: a point of a step drawn as the calibration's steps are is covered with
probability >= L (the normalised score is a fixed function of a point and its step, so the pooled
scores stay exchangeable); no step is guaranteed its own L. Dividing by sqrt(h) makes the steps'
normalised scores nearer alike (equal where errors grow as a random walk's), so each step's
coverage nearer L than with flat widths; errors that level off or compound leave the short or the
long steps off L, less than flat widths did. `calibrate` records both (`points`, `pooled_steps`,
`too_few`) and `calibration_notes` says so in a run's notes. Normal-sized backtests (a few dozen
series and up) have far more points per step: their widths are their own, unchanged.
Scales that are zero or undefined (a constant history) fall back to the series' mean |y| up to the cutoff (1 if
that is 0 too, or float noise), times how much the series with a measured scale typically change relative to their level (the
median of their scale / mean |y|; 1 when none has one): so the calibration keeps such backtest points, except
those of a history constant at its cut (`series_scale`'s `constant` at a cutoff): such a series is published with
zero width whatever the widths are, and its errors (0 where a model forecasts it exactly) pulled the pooled
quantiles of the series that move towards 0 (a series beside two constant ones: its 95% widths a third narrower).
A backtest of constant histories alone keeps them (zero widths). The backtest scores such a point with the width it
is published with, 0 (`apply_intervals` of rows whose `constant` is true: the coverage and MSIS of the leaderboard),
not its stand-in scale's.

Widths in levels, by band of level sizes. Where most backtest points' histories measure no typical change (series
of 1-4 points: the cuts leave one value), `calibrate` scores them in levels (mean |y| at the cut) and every series
takes the widths in its level. One value is a poor unit for small counts: a cut at 1 before a 50 scores 49 levels,
and such heavy-tailed scores, pooled with those of large series moving a tenth of their level, gave every series
95% widths 11-15 times its level (2,700 monthly series of 1-4 points, counts of 0-50 beside sales of 1e3-1e5:
a series at 25 got [-731, 785] in a 100k-series run; the sales' intervals were 15 levels wide where 0.6 covers 95%).
Noise relative to the level shrinks as the level grows (counts: as 1 / sqrt(level)), so the points are calibrated
apart by the size of their level (Mondrian again, the category the level's quarter-decade at the cut, known there
as at publish time: `level_bands`), consecutive quarter-decades merged from the smallest up until a band has
`MIN_GROUP_POINTS` points at every step, and a published series takes its level's band's widths. On that file
(scored on the 6 held-back months) the 95% widths went from a median of 14.8 levels to 2.5 (the sales' 0.6-0.9,
covering 0.97; the counts' 3-6), pooled coverage 0.85 / 0.99 -> 0.84 / 0.96, each length 1-4 covering 0.82-0.85 /
0.95-0.97 (another draw of the file: 11.3 -> 2.3 levels, 0.83 / 0.99 -> 0.83 / 0.95; its counts of 2-4 points
covered 0.90-0.91 at 95%: their last value is farther from their level than a one-value cut's). Calibrations in
MASE scales (any series with a history of its own) have no bands: unchanged.

Short series beside long ones. A series shorter than the backtest's span (`lengths.fit_backtest`'s `need`, chosen
for the long series) takes no part in it, and took the backtest's widths in its MASE scale: errors of long histories
in the scale of 2-3 changes, or of a level times the long series' typical change (300 random walks of 36 months
beside 2,700 new series of 1-4 points: their 80% / 95% intervals covered 0.54 / 0.72). They are calibrated on their
own values instead (`short_cuts`: each value but the last the naive forecast of the later ones, scored in levels,
the mean |y| at the cut, as "Widths in levels" above, with its bands), grouped by the history at the cut
(`calibrate_short`: consecutive lengths merged from the shortest up until a group has `MIN_GROUP_POINTS` points at
step 1), and a published series shorter than the span takes its history's group's widths (`apply_intervals`):
calibrated on histories like its own, a 1-point series on 1-point cuts; never narrower than the backtest's (their
union), as a short history's never are above: at M3 yearly's validation origin 12 years back (318 of 645 series
shorter than its 7 periods) the short cuts alone took its 2-point series from 0.73 / 0.91 to 0.64 / 0.84 (all
series: 0.785 / 0.934 -> 0.761 / 0.916). Series of the span or longer keep the backtest's widths exactly. A
calibration in levels (the backtest's own points short) has no such part.
Cuts of 1-4 points score 3 steps at most, and sqrt(h) from there widened the later steps of new series whose values
are noise around a level (errors that do not grow) to twice what covered them (on the file above, beside the random
walks: 0.886 / 0.982 covered, step 1 0.77 and step 6 0.95 at 80%). Their steps grow instead as the cuts' errors grew
with the step (`short_growth`: h to the power fitted to the step-k / step-1 quantiles of the same cuts, from 0, flat,
up to sqrt(h), never faster). A short series is published by the champion from `recipes.SHORT_HISTORY` values up (theta,
damped, a combination), and naive's widths around its forecast let theta's trend errors, which grow with the step, fall
to 0.49 at step 6: each statistical candidate's calibration takes a short part made from its own forecasts from the
cuts of that many values or more (refit at each cut; its growth measured on every cut it forecasts), naive's where
those are too few (`candidates.add_short_calibration`, which names them in the run's notes). Two draws of the file,
the short series at 80% / 95% (median 95% width in levels): 0.886 / 0.982 (3.13) -> 0.853 / 0.960 (2.99) and
0.894 / 0.983 (3.10) -> 0.885 / 0.975 (2.93); their zero and constant series (7% of the rows) are covered whatever the
widths, so about 0.81 / 0.95 is nominal there. M3 yearly 12 years back (`bench/accuracy.py --holdout 12`): 0.806 /
0.943, MSIS 49.9 -> 0.804 / 0.943, MSIS 49.3.

Constant histories at publish time. The widths are multiples of a series' typical change; a history of
values all equal (constant at 7, all zeros) has none, and the level (or 1) in its place published
nonsense: [-1.2, 15.2] for a series at 7 (below 0 for a series never below 7), +-1.17 for zeros in whatever
units the data has. Its published scale is 0 (`series_scale(constant=True)`): the interval is the point
forecast (a quantile network's own band under CQR), as statsforecast and fable give a model without residual
variance. Values equal up to float noise (0.1 + 0.2 beside 0.3: a spread within `metrics.noise_floor` of their
mean |y|) are a constant history too: their MASE scale is 0 (`metrics.mase_scale`), and the level stand-in would
publish the nonsense above for them. Nothing calibrated that either, so the run's notes name such series
(`RecipeForecast.interval_notes`).
One observation is no constant history (it says nothing about how a series moves): it keeps the fallback, as
a history that moves but repeats itself exactly at the season does; nothing calibrated a width scaled by the
level either, so the notes name those series too. Two observations, a short series published by naive
(`recipes.SHORT_HISTORY`), measure one change, no typical one (3 -> 15: widths 12 times the multiples, beside
series moving a quarter of their level): they take the same stand-in (`series_scale(unmeasured=...)`) where another
series has a measured scale, and the notes name them. Where no series has one to borrow (every series of one
observation), a series without one publishes no interval (`series_scale(borrow_only=True)`): its mean |y| is no
typical change, and the widths' multiples of it put a 95% lower bound of -762 under values near 100.
Naive forecasts such a series flat, but its one change is no noise to ignore either: at M3 yearly's validation
origin 12 years back, 152 series of two observations (all starting the year before) went on in its direction at
82-85% of their points, and naive's widths covered 0.31 (80%) / 0.77 (95%) of them. Its interval spans naive's and
the path that carries that change forward, each with its width (`reach_one_change`: stretched by step x change,
on the change's side only): 0.73 / 0.91 there (the published 80% / 95% coverage of all 645 series 0.687 / 0.900 ->
0.785 / 0.934). Chosen on validation origins, never on the test (where every M3 yearly series has 14 points or more:
nothing changes there). At 13 years back (40 such series, about half going on in their change's direction) and 15
(103, 82-87%) naive's widths already covered 0.97 / 1.00 and 0.95 / 0.99; stretched, 0.98 / 1.00 and 0.95 / 0.99.
Scaling the widths by the one change where it is larger than the stand-in too reached 0.91 / 0.97 at 12 years back,
but undoes the stand-in (3 -> 15 above) for the rest.
A declared bound (`y_min`, `y_max`) clips every interval; no bound is guessed from a non-negative history, except
0 for data classed intermittent (mostly zeros, never negative: `flowcast.evaluation.intermittency`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import polars as pl

from flowcast.columns import INTERVAL_LEVELS, interval_cols, quantile_col
from flowcast.evaluation.metrics import inside_interval, mase_scale, metric_name, noise_floor
from flowcast.wording import listed, plural


def quantile_pair(level: int) -> tuple[float, float]:
    """80 -> (0.1, 0.9): the quantiles bounding the central `level`% interval."""
    a = (1 - level / 100) / 2
    return round(a, 6), round(1 - a, 6)


def series_scale(insample: pl.DataFrame, season_length: int, cutoffs: pl.DataFrame | None = None, *,
                 constant: bool = False, unmeasured: Sequence[str] = (), borrow_only: bool = False,
                 freq: str | None = None, tz: str | None = None) -> pl.DataFrame:
    """unique_id[, cutoff], scale > 0, history: the MASE scale of each series (at each cutoff),
    falling back to the series' mean |y| times the median scale / mean |y| of the series whose scale is
    measured (the mean |y| itself when none is), then to 1 (where the mean |y| is 0 or float noise,
    `metrics.noise_floor`), where it is zero or undefined; `history` is
    the number of rows up to the cutoff (what the interval widths depend on). A MASE scale of float noise is
    0 (`metrics.mase_scale`): a history repeating itself up to float rounding takes the stand-in, as an exact
    repeat does. `constant` (the published forecast's scales): a history of at least
    `min_constant_history(season_length)` values all equal (up to `metrics.noise_floor` of their mean |y|:
    0.1 + 0.2 beside 0.3) has scale 0 instead (its intervals are the point forecast: see the module). With
    `cutoffs`, the column `constant` says whether the history up to each cutoff is such a one (its scale keeps the
    stand-in, and it is not `level_scaled`; `calibrate` leaves its points out). `unmeasured` (the published forecast's scales, no
    `cutoffs`): series whose one or two changes measure no typical change (a 2-point history's scale is its one
    difference, 9.92 -> 8.81 a tenth of 3 -> 15): they take the stand-in of a series without a measured scale (their
    mean |y| times the others' median scale / mean |y|), where some other series has a measured scale; else their
    own. `borrow_only` (the published forecast's scales, no `cutoffs`): where no series has a measured scale to
    borrow a ratio from, a series without one gets a null scale (widths calibrated in changes then publish no
    interval for it) instead of its mean |y|: a typical change as large as the level itself put a 95% lower bound
    of -762 under one-observation series near 100 (iv44). `freq`, `tz`: the data's, for the seasonal differences at
    the same local time on zoned sub-daily data (`metrics.mase_scale`)."""
    scale = mase_scale(insample, season_length, cutoffs, history=True, freq=freq, tz=tz).with_columns(
        pl.col("history").fill_null(0))
    if unmeasured:
        if cutoffs is not None:
            raise ValueError("series_scale(unmeasured=...) is for the published forecast's scales: pass no cutoffs")
        one = pl.col("unique_id").is_in(list(unmeasured))
        peers = scale.filter(~one & pl.col("scale").is_not_null() & (pl.col("scale") > 0) & pl.col("scale").is_finite())
        if peers.height:  # a ratio to stand in with: theirs set aside (one change is no typical one)
            scale = scale.with_columns(pl.when(one).then(None).otherwise(pl.col("scale")).alias("scale"))
    if cutoffs is None:
        level = insample.group_by("unique_id").agg(pl.col("y").abs().mean().alias("__level"))
        keys = ["unique_id"]
    else:  # the level of the history up to each cutoff, never of the points after it (a running mean, as-of joined)
        running = (insample.lazy().select("unique_id", "ds", pl.col("y").abs().alias("__a")).sort("unique_id", "ds")
                   .with_columns((pl.col("__a").fill_null(0.0).cum_sum().over("unique_id")
                                  / pl.col("__a").is_not_null().cum_sum().over("unique_id")).alias("__level"))
                   .select("unique_id", "ds", "__level"))
        level = (scale.lazy().select("unique_id", "cutoff").sort("cutoff")
                 .join_asof(running.sort("ds"), left_on="cutoff", right_on="ds", by="unique_id", strategy="backward",
                            check_sortedness=False)
                 .select("unique_id", "cutoff", "__level").collect())
        keys = ["unique_id", "cutoff"]
    if (constant or borrow_only) and cutoffs is not None:
        raise ValueError("series_scale(constant=True, borrow_only=True) is for the published forecast's scales: "
                         "pass no cutoffs")
    if constant:
        flat = insample.filter(pl.col("y").is_finite()).group_by("unique_id").agg(
            ((pl.len() >= min_constant_history(season_length))  # all equal up to float noise (0.1 + 0.2 and 0.3)
             & (pl.col("y").max() - pl.col("y").min() <= noise_floor(pl.col("y").abs().mean())))
            .alias("__flat"))
        level = level.join(flat, on="unique_id", how="left")
    elif cutoffs is not None:  # a history constant at the cut: `constant`, left out of the calibration (`calibrate`)
        level = level.join(_flat_at_cutoffs(insample, season_length, level.select("unique_id", "cutoff")),
                           on=keys, how="left")
    else:
        level = level.with_columns(pl.lit(False).alias("__flat"))
    measured = pl.col("scale").is_not_null() & (pl.col("scale") > 0) & pl.col("scale").is_finite()
    # a level of float noise (values all 0 up to it: 0.1 * 3 - 0.3) is 0, as the scale of such a history is: a
    # stand-in of 3e-17 scored a backtest error of 0.5 as 1.6e16 where exact zeros' stand-in of 1 scores 0.5
    has_level = (pl.col("__level").is_not_null() & pl.col("__level").is_finite()
                 & (pl.col("__level") > noise_floor(pl.col("__level"))))
    stand_in = pl.when(has_level).then(pl.col("__level")).otherwise(1.0)
    joined = scale.join(level, on=keys, how="left")
    # a series without a measured typical change moves, relative to its level, as the others typically do: its
    # level times their median scale / level (a one-point series at 300 beside monthly series moving 2% a month:
    # a scale of about 7, where its level, 300, published a 95% interval of [-688, 1288])
    borrowed = True  # (at cutoffs: each cutoff's own ratio, else 1)
    if cutoffs is None:
        ratio = joined.select((pl.col("scale") / pl.col("__level")).filter(measured & has_level).median()).item()
        borrowed = ratio is not None and math.isfinite(ratio) and ratio > 0
        relative: pl.Expr = pl.lit(float(ratio) if borrowed else (None if borrow_only else 1.0), dtype=pl.Float64)
    else:  # at each cutoff, of what was known then: the series' ratios at that cutoff and the earlier ones
        joined = joined.join(_relative_by_cutoff(joined.filter(measured & has_level),
                                                 joined.filter(~measured & has_level)), on="cutoff", how="left")
        relative = pl.when(pl.col("__relative").is_finite() & (pl.col("__relative") > 0)) \
            .then(pl.col("__relative")).otherwise(1.0)
    flat_at_cut = pl.col("__flat").fill_null(False) & pl.lit(cutoffs is not None)
    return joined.with_columns(
        pl.when(measured).then(pl.col("scale"))
        .when(pl.col("__flat").fill_null(False) & pl.lit(cutoffs is None)).then(0.0)
        .when(has_level).then(pl.col("__level") * relative)
        .otherwise(pl.lit(None, dtype=pl.Float64) if borrow_only and not borrowed else 1.0)
        .alias("scale"),
        # the stand-in of every series, and whether it is its scale: a calibration whose points are mostly
        # level-scaled is expressed in levels, and applied to every series in levels (see `calibrate`)
        stand_in.alias("level"),
        (~measured & ~pl.col("__flat").fill_null(False)).alias("level_scaled"),
        # at a cutoff: the history up to it is constant (the published forecast of it has zero width)
        *([flat_at_cut.alias("constant")] if cutoffs is not None else []),
    ).drop("__level", "__flat", "__relative", strict=False)


def _flat_at_cutoffs(insample: pl.DataFrame, season_length: int, cutoffs: pl.DataFrame) -> pl.DataFrame:
    """unique_id, cutoff, __flat: whether the series' finite values up to each cutoff are a constant history, as
    `series_scale(constant=True)` reads one at publish time (at least `min_constant_history` values, all equal up
    to `metrics.noise_floor` of their mean |y|): running extremes, as-of joined."""
    fin = (insample.lazy().filter(pl.col("y").is_finite()).select("unique_id", "ds", "y").sort("unique_id", "ds")
           .with_columns((pl.int_range(pl.len()).over("unique_id") + 1).alias("__n"))
           .with_columns(pl.col("y").cum_max().over("unique_id").alias("__hi"),
                         pl.col("y").cum_min().over("unique_id").alias("__lo"),
                         (pl.col("y").abs().cum_sum().over("unique_id") / pl.col("__n")).alias("__m")))
    return (cutoffs.lazy().sort("cutoff")
            .join_asof(fin.sort("ds"), left_on="cutoff", right_on="ds", by="unique_id", strategy="backward",
                       check_sortedness=False)
            .select("unique_id", "cutoff",
                    ((pl.col("__n") >= min_constant_history(season_length))
                     & (pl.col("__hi") - pl.col("__lo") <= noise_floor(pl.col("__m")))).fill_null(False).alias("__flat"))
            .collect())


def _relative_by_cutoff(rated: pl.DataFrame, needed: pl.DataFrame) -> pl.DataFrame:
    """cutoff, __relative: for each cutoff of `needed` (the rows scaled by their level), the median scale / level of
    the `rated` rows (measured scale and level) with a cutoff no later than it: the ratio a run at that cutoff had,
    never one of points after it (a pooled ratio widened a backtest point for another series' later jump)."""
    times = needed.get_column("cutoff").unique().sort()
    if not times.len():
        return pl.DataFrame({"cutoff": times, "__relative": pl.Series([], dtype=pl.Float64)})
    rated = rated.select("cutoff", (pl.col("scale") / pl.col("__level")).alias("__r")).sort("cutoff")
    ratios = rated.get_column("__r").to_numpy()
    upto = rated.get_column("cutoff").search_sorted(times, side="right").to_list()
    return pl.DataFrame({"cutoff": times, "__relative": [float(np.median(ratios[:n])) if n else None for n in upto]},
                        schema={"cutoff": times.dtype, "__relative": pl.Float64})


def min_constant_history(season_length: int) -> int:
    """The fewest equal values that make a constant history (zero published width): two full seasons and
    at least 4. Fewer say little about whether a series moves (two equal months of a new product): they keep
    the level-scaled widths, and the run's notes name them."""
    return max(4, 2 * max(int(season_length), 1))


MIN_GROUP_POINTS = 50  # calibration points per horizon step a history group needs to be calibrated alone
BANDS_PER_DECADE = 4  # level bands (`level_bands`) are this many to a decade of level sizes, or wider


def min_points(level: float) -> int:
    """The fewest scores whose conformal quantile at `level` (a fraction) exists: the smallest n with
    ceil((n + 1) level) <= n (4 at 0.8, 19 at 0.95)."""
    n = 1
    while math.ceil((n + 1) * level) > n:
        n += 1
    return n


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest of the n finite scores; nan when that exceeds n (fewer
    than `min_points(level)` scores: the conformal interval is unbounded, the largest score would
    cover less than `level`)."""
    s = np.sort(scores[np.isfinite(scores)])
    n = len(s)
    k = math.ceil((n + 1) * level)
    if n == 0 or k > n:
        return math.nan
    return float(s[max(k, 1) - 1])


def _mode(frame: pl.DataFrame, level: int) -> str:
    lo, hi = (quantile_col(q) for q in quantile_pair(level))
    return "cqr" if lo in frame.columns and hi in frame.columns else "residual"


def _scores(frame: pl.DataFrame, level: int, mode: str) -> pl.Expr:
    if mode == "cqr":
        lo, hi = (quantile_col(q) for q in quantile_pair(level))
        return pl.max_horizontal(pl.col(lo) - pl.col("y"), pl.col("y") - pl.col(hi)) / pl.col("scale")
    return (pl.col("y") - pl.col("y_hat")).abs() / pl.col("scale")


def growth(step: np.ndarray | int, season_length: int = 1, power: float = 0.5) -> np.ndarray:
    """sqrt(ceil(h / m)): how the h-step error of a (seasonal) random walk grows, the model the MASE scale of
    season m measures errors against (its error one season ahead); sqrt(h) where m = 1. Flat within a season:
    a seasonal naive's error is the same at every step of the first season (see the module). `power`: ceil(h / m)
    to that power instead of 0.5 (the growth the short cuts measured: `short_growth`)."""
    # Seasons counted in steps, not on the local clock, also on zoned sub-daily data whose seasonal naive and MASE
    # scale take the same local time a day before (`timekeys.season_ago_local`, `metrics.mase_scale`): across a
    # daylight-saving change the local clock moves the season boundary by one step (in autumn step 25 is still 24
    # local hours ahead, one season, not ceil(25 / 24) = 2; in spring step 24 is 25 local hours ahead, two), at the
    # one step per change where a season ends. Kept so: a calibrated step's width is its backtest errors' quantile,
    # whatever dates its windows crossed, and growth only shapes the pooled widths and those beyond the calibrated
    # steps, a convention (see the module), which are a table by step, the same for every as_of; a width by the
    # local clock would need each row's dates through `calibrate` and `apply_intervals` to move one step's width by
    # sqrt(2) twice a year.
    m = max(1, int(season_length))
    return np.ceil(np.maximum(np.asarray(step, dtype=np.float64), 1.0) / m) ** float(power)


def _widths(s: pl.DataFrame, horizon: int, level: float, need: int = 1, season_length: int = 1,
            power: float = 0.5) -> list[float]:
    """Per-step conformal quantiles of scores `s` (step, s); a step h with fewer than `need` points
    (none, or too few for the strictest level calibrated) takes the pooled one x `growth(h)` (to `power`): the
    conformal quantile of all steps' scores each divided by the growth of its step (nan: too few too; see
    the module's "Few points")."""
    pooled = conformal_quantile(s["s"].to_numpy() / growth(s["step"].to_numpy(), season_length, power), level)
    by_step = {k: g["s"].to_numpy() for (k,), g in s.group_by("step")}
    out = []
    for step in range(1, horizon + 1):
        scores = by_step.get(step, np.array([]))
        q = conformal_quantile(scores, level) if len(scores) >= need else math.nan
        out.append(q if math.isfinite(q) else pooled * float(growth(step, season_length, power)))
    return out


def _points(s: pl.DataFrame, horizon: int) -> list[int]:
    """Finite scores per horizon step 1..horizon."""
    counts = dict(s.group_by("step").len().iter_rows())
    return [int(counts.get(step, 0)) for step in range(1, horizon + 1)]


def history_edge(scored: pl.DataFrame, horizon: int) -> int | None:
    """The history length that splits calibration points `scored` (unique_id, window, step,
    history) into a short and a long group: the median over their (series, window) pairs; None
    when there is no `history`, or either group would have fewer than MIN_GROUP_POINTS per step."""
    if "history" not in scored.columns or not scored.height:
        return None
    keys = [k for k in ("unique_id", "window") if k in scored.columns]
    pairs = scored.group_by(keys).agg(pl.col("history").first()) if keys else scored.select("history")
    edge = int(cast(float, pairs["history"].median()))
    per_step = scored.group_by("step").agg((pl.col("history") <= edge).sum().alias("short"),
                                           (pl.col("history") > edge).sum().alias("long"))
    fewest = min(cast(int, per_step["short"].min()), cast(int, per_step["long"].min())) if per_step.height else 0
    if len(per_step) < horizon or fewest < MIN_GROUP_POINTS:
        return None
    return edge


def _size_step(level: pl.Expr) -> pl.Expr:
    """The size step of a level, floor(BANDS_PER_DECADE x log10): with 4, 0 for 1-1.77, 4 for 10-17.7, 12 for
    1000-1778, -1 for 0.56-0.99."""
    return (level.log10() * BANDS_PER_DECADE).floor().cast(pl.Int64)


def _band_expr(bands: Sequence[int]) -> pl.Expr:
    """The index of each row's level band: the last band whose lowest size step (`_size_step`) is at most the
    level's (a level below the first band's takes the first band)."""
    size = _size_step(pl.col("level"))
    expr: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for i, low in enumerate(bands[1:], 1):
        expr = pl.when(size >= int(low)).then(pl.lit(i, dtype=pl.Int64)).otherwise(expr)
    return expr


def level_bands(scored: pl.DataFrame, horizon: int) -> list[int] | None:
    """The lowest size step (`_size_step`) of each band of level sizes that widths in levels are calibrated apart on,
    ascending (see the module's "Widths in levels"): consecutive size steps of the points' `level`, merged from the
    smallest up until a band has `MIN_GROUP_POINTS` points at every scored step (what's left at the top, or a band
    short of points that a gap in sizes follows, joins the band below). None when fewer than two bands have that many (everything is calibrated pooled)."""
    if "level" not in scored.columns or not scored.height:
        return None
    steps = min(horizon, int(cast(int, scored["step"].max())))
    counts = (scored.filter(pl.col("level").is_finite() & (pl.col("level") > 0))
              .group_by(_size_step(pl.col("level")).alias("size"), "step").len())
    per: dict[int, dict[int, int]] = {}
    for size, step, n in counts.iter_rows():
        per.setdefault(int(size), {})[int(step)] = int(n)
    bands: list[int] = []
    have: dict[int, int] = {}
    last = None
    for size in sorted(per):
        # a band still short of points followed by a gap in sizes joins the band below (its sizes are nearer those
        # than the next ones: 3 counts at 30 between 50 at 2 and 50 at 5e4 took the 5e4 series' narrow widths)
        if have and len(bands) > 1 and last is not None and size > last + 1:
            bands.pop()
            have = {}
        if not have:
            bands.append(size)
        last = size
        for step, n in per[size].items():
            have[step] = have.get(step, 0) + n
        if all(have.get(step, 0) >= MIN_GROUP_POINTS for step in range(1, steps + 1)):
            have = {}
    if have and len(bands) > 1:  # the top sizes' points too few for a band of their own: the band below takes them
        bands.pop()
    return bands if len(bands) > 1 else None


def calibrate(scored: pl.DataFrame, horizon: int, levels: Sequence[int] = INTERVAL_LEVELS, *,
              season_length: int = 1, in_levels: bool = False,
              growth_power: dict[str, float] | None = None) -> dict[str, Any]:
    """Widths per level and horizon step from backtest points `scored` (step, y, y_hat, scale
    [, history][, the quantile columns of a quantile network]). JSON-able, stored in a model's
    recipe: `q` the widths of all points pooled; with a history split (see the module) also
    `history_edge` and `q_by_history` (level -> [short group's widths, long group's widths]); widths in levels
    (`scale` 'level') with bands of level sizes (`level_bands`) instead: `level_bands` (each band's lowest
    quarter-decade) and `q_by_level` (level -> each band's widths);
    `season_length`, the season of the scale (m of the MASE scale), whose `growth` the pooled widths and the
    steps beyond the calibrated ones follow (a calibration without it: 1, sqrt(h)). `in_levels`: the widths are in
    levels whatever share of the points is level-scaled (the short cuts of `calibrate_short`). `growth_power`
    (level -> power, stored as `growth_power`): the pooled widths and the steps beyond grow with ceil(h / m) to that
    power instead of its square root (`short_growth`'s, measured on the short cuts)."""
    m = max(1, int(season_length))
    out: dict[str, Any] = {"method": "conformal", "levels": [int(lv) for lv in levels], "n": int(scored.height),
                           "mode": {}, "q": {}, "season_length": m}
    if growth_power:
        out["growth_power"] = {str(k): float(v) for k, v in growth_power.items()}
    if "constant" in scored.columns and not scored["constant"].fill_null(False).all():
        # a history constant at its cut is published with zero width whatever the widths: its errors (0 where the
        # model forecasts it exactly) calibrate nothing, and pulled every pooled quantile of the series that move
        # towards 0 (one series beside two constant ones: its 95% widths a third narrower)
        scored = scored.filter(~pl.col("constant").fill_null(False))
    if {"level", "level_scaled"} <= set(scored.columns) and scored.height \
            and (in_levels or 2 * int(scored["level_scaled"].sum()) > scored.height):
        # most points' histories measure no typical change (one observation at the cut: a brand-new dataset's
        # backtest), so their scores are in units of the level (mean |y|): all are, and so are the widths, which
        # every published series then takes in its level, not in its MASE scale (widths in levels applied to a
        # 3-point series' mean |diff| were 10 to 50 times too narrow)
        scored = scored.with_columns(pl.col("level").alias("scale"))
        out["scale"] = "level"
    # widths in levels: calibrated apart per band of level sizes (see `level_bands`), not split by history too
    bands = level_bands(scored, horizon) if out.get("scale") == "level" else None
    edge = history_edge(scored, horizon) if bands is None else None
    if bands is not None:
        out["level_bands"] = bands
        out["q_by_level"] = {}
    if edge is not None:
        out["history_edge"] = edge
        out["q_by_history"] = {}
    need = max((min_points(lv / 100) for lv in levels), default=1)  # per step, for every level alike
    cols = [pl.col("step"), *([pl.col("history")] if edge is not None else []),
            *([_band_expr(bands).alias("band")] if bands is not None else [])]
    by_level = {lv: scored.select(*cols, _scores(scored, lv, _mode(scored, lv)).alias("s"))
                .filter(pl.col("s").is_finite()) for lv in levels}
    # the calibration ends at the last step with a point: the steps after it were never scored, so they are
    # beyond it (widened from it when applied), not given the widths pooled over the earlier steps
    scored_steps = [int(cast(int, s["step"].max())) for s in by_level.values() if s.height]
    if scored_steps and max(scored_steps) < horizon:
        horizon = max(scored_steps)
    for lv in levels:
        mode = _mode(scored, lv)
        s = by_level[lv]
        power = _power(out, lv)
        per_step = _widths(s, horizon, lv / 100, need, m, power)
        points = _points(s, horizon)
        out["mode"][str(lv)] = mode
        out["q"][str(lv)] = [None if not math.isfinite(v) else float(v) for v in per_step]
        pooled = [step for step, n in enumerate(points, 1) if n < need]
        if pooled and s.height:  # too few points for every level: recorded, for the run's notes
            out.setdefault("points", {})[str(lv)] = points
            out.setdefault("pooled_steps", {})[str(lv)] = pooled
            if s.height < min_points(lv / 100):
                out.setdefault("too_few", {})[str(lv)] = {"points": int(s.height), "need": min_points(lv / 100)}
        if bands is not None:
            # a band's step with too few points takes its band's pooled widths (`_widths`), else all bands' (None:
            # none, as in `q`)
            out["q_by_level"][str(lv)] = [
                [float(v) if math.isfinite(v) else (float(p) if math.isfinite(p) else None) for v, p in
                 zip(_widths(s.filter(pl.col("band") == b), horizon, lv / 100, need, m, power), per_step)]
                for b in range(len(bands))]
        if edge is not None:
            short, long = (_widths(s.filter(cond), horizon, lv / 100, season_length=m, power=power)
                           for cond in (pl.col("history") <= edge, pl.col("history") > edge))
            # never narrower for a shorter history: where the short group's scaled errors are the
            # smaller ones (a scale measured on a few points can be far too large), pooled widths
            out["q_by_history"][str(lv)] = [
                [max(v, p) if math.isfinite(v) else p for v, p in zip(short, per_step)],
                [min(v, p) if math.isfinite(v) else p for v, p in zip(long, per_step)],
            ]
    return out


def short_cuts(history: pl.DataFrame, below: int, horizon: int) -> pl.DataFrame:
    """unique_id, cutoff, step, y, y_hat: the naive forecasts (the last value) of the series of `history` (unique_id,
    ds, y; a regular frame) with fewer than `below` rows, the series a backtest of that span leaves out, cut at each
    of their finite values and scored on their later finite values up to `horizon` rows ahead (see the module's
    "Short series beside long ones")."""
    rows = (history.select("unique_id", "ds", "y").sort("unique_id", "ds")
            .filter(pl.len().over("unique_id") < int(below)))
    parts = [rows.select("unique_id", pl.col("ds").alias("cutoff"), pl.lit(k, dtype=pl.Int64).alias("step"),
                         pl.col("y").shift(-k).over("unique_id").alias("y"), pl.col("y").alias("y_hat"))
             for k in range(1, int(horizon) + 1)]
    return pl.concat(parts).filter(pl.col("y").is_finite() & pl.col("y_hat").is_finite()).sort("unique_id", "cutoff",
                                                                                                 "step")


MAX_SHORT_POWER = 0.5  # the short cuts' widths grow no faster than a random walk's, sqrt(h), however they measure


def short_growth(cuts: pl.DataFrame, levels: Sequence[int] = INTERVAL_LEVELS) -> dict[str, float]:
    """level -> the power b of h that the short cuts' widths grow with (`calibrate_short`'s `growth_power`): for each
    step k > 1 that `MIN_GROUP_POINTS` cuts or more score, the ratio r_k of the conformal quantile of their step-k
    scores (in levels, as `calibrate_short`'s) to that of the same cuts' step-1 scores, and b the least-squares fit
    of log r_k = b log k, within [0, `MAX_SHORT_POWER`]; a level no such step measures is left out (sqrt(h)). Cuts of
    1-4 points score 3 steps at most, and sqrt(h) from them widened the later steps of noise around a level (errors
    that do not grow) to twice what covered them (see the module's "Short series beside long ones")."""
    if not cuts.height or not {"level", "unique_id", "cutoff"} <= set(cuts.columns):  # (no cut to pair steps by)
        return {}
    ok = cuts.filter(~pl.col("constant").fill_null(False)) if "constant" in cuts.columns else cuts
    ok = ok.filter(pl.col("level").is_finite() & (pl.col("level") > 0)).select(
        "unique_id", "cutoff", "step", ((pl.col("y") - pl.col("y_hat")).abs() / pl.col("level")).alias("s"))
    first = ok.filter(pl.col("step") == 1).select("unique_id", "cutoff", pl.col("s").alias("s1"))
    paired = ok.filter(pl.col("step") > 1).join(first, on=["unique_id", "cutoff"], how="inner")
    steps = [int(k) for k, n in paired.group_by("step").len().iter_rows() if n >= MIN_GROUP_POINTS]
    out: dict[str, float] = {}
    for lv in levels:
        xs, ys = [], []
        for k in sorted(steps):
            at = paired.filter(pl.col("step") == k)
            qk, q1 = (conformal_quantile(at[c].to_numpy(), lv / 100) for c in ("s", "s1"))
            if math.isfinite(qk) and math.isfinite(q1) and qk > 0 and q1 > 0:
                xs.append(math.log(k))
                ys.append(math.log(qk / q1))
        if xs:
            b = sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)
            out[str(int(lv))] = min(max(b, 0.0), MAX_SHORT_POWER)
    return out


def calibrate_short(cuts: pl.DataFrame, below: int, horizon: int, levels: Sequence[int] = INTERVAL_LEVELS, *,
                    season_length: int = 1, growth_from: pl.DataFrame | None = None) -> dict[str, Any] | None:
    """The calibration of the series shorter than `below` (the backtest's span) from `cuts` (`short_cuts`' rows with
    `series_scale`'s columns at each cutoff: history, level, level_scaled, constant), in levels, grouped by the
    history at the cut: consecutive history lengths merged from the shortest up until a group has `MIN_GROUP_POINTS`
    points at step 1 (what's left at the top joins the group below). {"below", "groups": [{"history": the group's
    shortest history, "calibration": `calibrate`'s, in levels}]}; None when the cuts have fewer than
    `MIN_GROUP_POINTS` points at step 1 (the series keep the backtest's widths). The steps a group pools, and those
    beyond its last scored step, grow as all the cuts' errors grew with the step (`short_growth`), not by sqrt(h);
    `growth_from`: the cuts to measure that on instead (a model's from every history it forecasts, where it publishes
    only the longer ones: `candidates.add_short_calibration`)."""
    if not cuts.height or "history" not in cuts.columns:
        return None
    first = dict(cuts.filter(pl.col("step") == 1).group_by("history").len().iter_rows())
    starts: list[int] = []
    have = MIN_GROUP_POINTS
    for k in sorted(int(x) for x in first):
        if have >= MIN_GROUP_POINTS:
            starts.append(k)
            have = 0
        have += int(first[k])
    if have < MIN_GROUP_POINTS:
        starts.pop()  # the longest histories' points too few for a group: the one below takes them
    if not starts:
        return None
    groups = []
    power = short_growth(cuts if growth_from is None else growth_from, levels)
    for i, low in enumerate(starts):
        high = starts[i + 1] if i + 1 < len(starts) else None
        # (the shortest group takes any shorter history too)
        mine = (pl.col("history") >= low if i else pl.lit(True)) & (pl.col("history") < high if high else pl.lit(True))
        groups.append({"history": int(low), "calibration": calibrate(cuts.filter(mine), horizon, levels,
                                                                     season_length=season_length, in_levels=True,
                                                                     growth_power=power)})
    return {"below": int(below), "groups": groups}


def calibration_notes(calibration: dict[str, Any] | None, name: str, horizon: int | None = None) -> list[str]:
    """Sentences for a run's notes when `name`'s calibration had too few points (see the module), when it was made
    on the calibration windows (`candidates.origin_calibration`) or, having networks, was not
    (`candidates.networks_kept_calibration`), and when a forecast of `horizon` steps has steps
    beyond the calibrated ones (widened: see `_width_expr`)."""
    cal = calibration or {}
    notes = []
    levels = [int(lv) for lv in cal.get("levels", [])]
    missing = [lv for lv in levels if str(lv) in cal.get("too_few", {})]
    for lv in missing:
        few = cal["too_few"][str(lv)]
        notes.append(f"{name} publishes no {lv}% interval: its backtest left {plural(few['points'], 'calibration point')}, "
                     f"and {_a(lv)} {lv}% conformal interval needs at least {few['need']} (more series or backtest "
                     "windows give it one).")
    pooled = [lv for lv in levels if lv not in missing and cal.get("pooled_steps", {}).get(str(lv))]
    if pooled:
        lv = pooled[-1]
        steps, points = cal["pooled_steps"][str(lv)], cal["points"][str(lv)]
        fewest = min(points[step - 1] for step in steps)
        top = max(pooled)  # the level pooled for (it said 'the 19 a 95% interval needs' of a run with no 95% one)
        need = min_points(top / 100)
        label = "/".join(f"{x}%" for x in pooled)
        which = "every horizon step" if len(steps) == len(points) else f"horizon steps {_steps_label(steps)}"
        m = int(cal.get("season_length", 1))
        law = ("each divided by the square root of its step, and grow with sqrt(h) (the growth of a random walk's "
               "errors)" if m == 1 else
               f"each divided by the square root of the seasons ahead, ceil(h/{m}), and grow with it (the growth of a "
               f"seasonal random walk's errors: flat within each season of {m} steps)")
        said = (f"{name}'s {label} intervals at {which} are calibrated on the errors of all steps pooled, "
                f"{law}: the backtest left {plural(fewest, 'calibration point')} per step, ")
        if fewest < need:
            said += f"fewer than the {need} {_a(top)} {top}% interval needs per step."
        else:  # enough for its own level: a step is calibrated apart only with enough for every level (`calibrate`)
            strict = max(levels, key=lambda lv: min_points(lv / 100))
            said += (f"enough for {_a(top)} {top}% interval, but a step is calibrated on its own only with enough for "
                     f"every level, and {_a(strict)} {strict}% interval needs {min_points(strict / 100)} per step.")
        notes.append(said)
    if cal.get("windows") and (shown := [lv for lv in levels if lv not in missing]):
        spacing = int(cal.get("spacing") or calibrated_steps(cal))  # (stored since; a horizon apart before)
        notes.append(f"{name}'s {'/'.join(f'{lv}%' for lv in shown)} intervals are calibrated on its errors at "
                     f"{cal['windows']} origins {plural(spacing, 'period')} apart (evaluation.calibration_windows), "
                     "refit at each; the leaderboard's coverage is that of the backtest windows.")
    if (kept := cal.get("origins_kept")) and (shown := [lv for lv in levels if lv not in missing]):
        w = int(kept.get("windows") or 1)
        where = "the backtest's oldest window" if w == 1 else f"the backtest's {w} windows"
        room = int(kept.get("origins") or kept["wanted"])  # (the origins the data left room for; before: wanted)
        at = (f"the {room} origins of evaluation.calibration_windows" if room == int(kept["wanted"]) else
              f"the {room} origins the data leave room for (evaluation.calibration_windows {kept['wanted']})")
        notes.append(f"{name}'s {'/'.join(f'{lv}%' for lv in shown)} intervals are calibrated on its errors in {where}, "
                     f"not at {at}: its networks are not "
                     "refit per origin, the older origins lie in the data they were trained on, and those after it are "
                     "the backtest's own windows.")
    if horizon is not None and (beyond := beyond_note(cal, name, horizon)) is not None:
        notes.append(beyond)
    return notes


def _a(level: int) -> str:
    """The article of a level read aloud: 'an' 80% / 11% / 18%, 'a' 95%."""
    return "an" if str(level).startswith(("8", "11", "18")) else "a"


def beyond_note(calibration: dict[str, Any] | None, name: str, horizon: int,
                levels: Sequence[int] | None = None) -> str | None:
    """The sentence for a forecast of `horizon` steps longer than `name`'s calibration (of the `levels` published,
    default every level it has widths for): which steps were widened from which (see `_width_expr`)."""
    cal = calibration or {}
    steps = calibrated_steps(cal)
    widened = [int(lv) for lv in cal.get("levels", []) if (levels is None or int(lv) in levels)
               and len(cal.get("q", {}).get(str(lv)) or []) == steps and all(v is not None for v in cal["q"][str(lv)])]
    if not (0 < steps < horizon and widened):
        return None
    label = "/".join(f"{x}%" for x in widened)
    at = f"steps {steps + 1}-{horizon}" if horizon > steps + 1 else f"step {horizon}"
    m = int(cal.get("season_length", 1))
    law = (f"sqrt(h/{steps}) (the growth of a random walk's errors)" if m == 1 else
           f"sqrt(ceil(h/{m}) / {math.ceil(steps / m)}) (the growth of a seasonal random walk's errors: flat within "
           f"each season of {m} steps)")
    return (f"{name}'s {label} intervals at {at} are beyond the {steps} calibrated: widened from step {steps} by "
            f"{law}, not calibrated.")


def _steps_label(steps: list[int]) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][-1] + 1:
            runs[-1].append(step)
        else:
            runs.append([step])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def calibration_rows(scored: pl.DataFrame, oldest_only: bool) -> pl.DataFrame:
    """The backtest points that calibrate: all of them, or (`oldest_only`) those of the oldest
    window. A network is trained once, up to the oldest window's cutoff, and forecasts the later
    windows with weights that have not seen the periods in between, while the published model is
    trained up to the last observation: only the oldest window's errors are made the way the
    published forecast is, and the later windows' (larger) errors would widen its intervals."""
    if not oldest_only or "window" not in scored.columns or not scored.height:
        return scored
    return scored.filter(pl.col("window") == pl.col("window").min())


def calibrated_steps(calibration: dict[str, Any] | None) -> int:
    """The horizon steps the calibration has widths for (0: none)."""
    qs = [q for q in (calibration or {}).get("q", {}).values() if q and all(v is not None for v in q)]
    return max((len(q) for q in qs), default=0)


def _power(calibration: dict[str, Any] | None, level: int) -> float:
    """The power of ceil(h / m) that `calibration`'s widths grow with at `level` (`calibrate`'s `growth_power`):
    0.5, a random walk's sqrt, unless the calibration measured its own (`short_growth`)."""
    return float(((calibration or {}).get("growth_power") or {}).get(str(level), 0.5))


def _width_expr(q: list[Any], season_length: int = 1, power: float = 0.5) -> pl.Expr:
    """The calibrated width of each row's step; a step h beyond the calibrated ones (a forecast longer than the
    backtest's horizon) gets the last calibrated width x growth(h) / growth(last calibrated step) (`growth`:
    sqrt(h / last) where the season is 1, (h / last) ** `power` where a calibration measured its growth), never less
    than it (the module docstring says why)."""
    n, last = len(q), float(q[-1])
    m = max(1, int(season_length))
    step = pl.col("step").cast(pl.Int64).clip(lower_bound=1)
    own = step.clip(upper_bound=n).replace_strict(list(range(1, n + 1)), [float(v) for v in q],
                                                  return_dtype=pl.Float64)
    grown = pl.lit(last) * ((step.cast(pl.Float64) / m).ceil() / math.ceil(n / m)).pow(float(power))
    return pl.when(step > n).then(pl.max_horizontal(grown, pl.lit(last))).otherwise(own)


def apply_intervals(
    frame: pl.DataFrame,
    calibration: dict[str, Any] | None,
    scale: pl.DataFrame | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
) -> pl.DataFrame:
    """`frame` (unique_id, step, y_hat[, quantile columns][, scale][, history][, constant]) with
    y_hat_lo<L>/y_hat_hi<L> for each calibrated level: nested (the 95% interval contains the 80%
    one), containing y_hat, clipped to the declared bounds. `scale`: unique_id, scale[, history]
    (None: `frame` has those columns). A calibration split by history gives each row the widths
    of its series' history group; one in levels with bands (`level_bands`), the widths of its level's band. Without a calibration the interval columns are null, and so are a level's where
    the calibration has no widths for it (too few points: `min_points`), except in the rows of a published constant
    history (scale 0: `series_scale(constant=True)`): its zero width is true at every level, whatever the points
    (cachedir46: it lost its 95% interval with the other series'). Backtest rows (whose `constant` marks such a
    history at the cut, their scale the stand-in) keep null there: a coverage of the constant points alone was no
    coverage of the level."""
    short = (calibration or {}).get("short")
    if short and short.get("groups"):
        return _apply_short(frame, cast(dict[str, Any], calibration), scale, bounds)
    levels = [int(lv) for lv in (calibration or {}).get("levels", INTERVAL_LEVELS)]
    added = [] if scale is None else [c for c in ("scale", "history", "level") if c in scale.columns
                                      and c not in frame.columns]
    out = frame if scale is None else frame.join(scale.select("unique_id", *added), on="unique_id", how="left")
    # widths calibrated in levels (see `calibrate`) scale every series by its level; a constant history keeps 0
    unit = pl.when(pl.col("scale") == 0).then(0.0).otherwise(pl.col("level")) \
        if (calibration or {}).get("scale") == "level" and "level" in out.columns else pl.col("scale")
    if "constant" in out.columns:  # backtest rows of a history constant at its cut (`series_scale`'s `constant`):
        # the zero width it is published with (data43: the leaderboard's coverage and MSIS gave it the stand-in's)
        unit = pl.when(pl.col("constant").fill_null(False)).then(0.0).otherwise(unit)
    made: list[tuple[str, str]] = []
    for lv in levels:
        lo_c, hi_c = interval_cols(lv)
        q = (calibration or {}).get("q", {}).get(str(lv))
        widths = bool(q) and all(v is not None for v in q)
        if calibration is None or (not widths and "scale" not in out.columns):
            out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias(lo_c), pl.lit(None, dtype=pl.Float64).alias(hi_c))
            continue
        season = int((calibration or {}).get("season_length", 1))
        power = _power(calibration, lv)
        # too few points for the level: a published constant history's zero width alone (its every residual is 0),
        # the other rows' bounds null
        width = _width_expr(q, season, power) if widths else pl.when(pl.col("scale") == 0).then(pl.lit(0.0))
        by_level = (calibration or {}).get("q_by_level", {}).get(str(lv))
        bands = (calibration or {}).get("level_bands")
        if widths and by_level and bands and (calibration or {}).get("scale") == "level" and "level" in out.columns \
                and all(v is not None for g in by_level for v in g):
            # each row the widths of its level's band (`level_bands`)
            band = _band_expr(bands)
            banded = _width_expr(by_level[0], season, power)
            for i, g in enumerate(by_level[1:], 1):
                banded = pl.when(band == i).then(_width_expr(g, season, power)).otherwise(banded)
            width = pl.when(pl.col("level").is_finite() & (pl.col("level") > 0)).then(banded).otherwise(width)
        by_history = (calibration or {}).get("q_by_history", {}).get(str(lv))
        edge = (calibration or {}).get("history_edge")
        if widths and by_history and edge is not None and "history" in out.columns \
                and all(v is not None for g in by_history for v in g):
            short, long = (_width_expr(g, season, power) for g in by_history)
            # a series of unknown history takes the pooled widths
            width = pl.when(pl.col("history").is_null()).then(width) \
                .when(pl.col("history") <= int(edge)).then(short).otherwise(long)
        width = width * unit
        mode = (calibration or {}).get("mode", {}).get(str(lv), "residual")
        ql, qh = (quantile_col(x) for x in quantile_pair(lv))
        if mode == "cqr" and ql in out.columns and qh in out.columns:
            lo, hi = pl.col(ql) - width, pl.col(qh) + width
        else:
            lo, hi = pl.col("y_hat") - width, pl.col("y_hat") + width
        # (min/max_horizontal skip nulls: a row without what its bound is made from, such as a quantile network's
        # quantiles, keeps a null bound, never the zero-width [y_hat, y_hat])
        out = out.with_columns(pl.when(lo.is_not_null()).then(pl.min_horizontal(lo, pl.col("y_hat"))).alias(lo_c),
                               pl.when(hi.is_not_null()).then(pl.max_horizontal(hi, pl.col("y_hat"))).alias(hi_c))
        made.append((lo_c, hi_c))
    # nested: a wider level's interval contains every narrower one
    for (lo_a, hi_a), (lo_b, hi_b) in itertools.pairwise(made):
        out = out.with_columns(pl.when(pl.col(lo_b).is_not_null()).then(pl.min_horizontal(lo_a, lo_b)).alias(lo_b),
                               pl.when(pl.col(hi_b).is_not_null()).then(pl.max_horizontal(hi_a, hi_b)).alias(hi_b))
    y_min, y_max = bounds
    for cols in made:
        exprs = []
        for c in cols:
            e = pl.col(c)
            if y_min is not None:
                e = e.clip(lower_bound=y_min)
            if y_max is not None:
                e = e.clip(upper_bound=y_max)
            exprs.append(e.alias(c))
        out = out.with_columns(exprs)
    return out if scale is None else out.drop(added)


def _apply_short(frame: pl.DataFrame, calibration: dict[str, Any], scale: pl.DataFrame | None,
                 bounds: tuple[float | None, float | None]) -> pl.DataFrame:
    """`apply_intervals` of a calibration with a `short` part (`calibrate_short`): the rows of a series whose history
    is shorter than its `below` take the widths of their history's group, the others the backtest's; rows in order.
    Routed by the published history (`scale`'s) only: a frame's own `history` (a backtest's or scored rows', the
    history at their cut) put long series' backtest rows in the short groups ([-490, 510] for [9, 11])."""
    short = calibration["short"]
    rest = {k: v for k, v in calibration.items() if k != "short"}
    keyed = frame.with_row_index("__row")
    if scale is None or "history" not in scale.columns:  # no published history to group by: the backtest's widths
        return apply_intervals(frame, rest, scale, bounds)
    history = keyed.select("unique_id", "__row").join(scale.select("unique_id", "history"), on="unique_id", how="left")
    starts = [int(g["history"]) for g in short["groups"]]
    group: pl.Expr = pl.lit(0)  # the last group whose shortest history is at most the series' (-1: not short)
    for i, low in enumerate(starts[1:], 1):
        group = pl.when(pl.col("history") >= low).then(pl.lit(i)).otherwise(group)
    group = pl.when(pl.col("history").is_null() | (pl.col("history") >= int(short["below"]))).then(pl.lit(-1)) \
        .otherwise(group)
    which = history.select("__row", group.alias("__group"))
    keyed = keyed.join(which, on="__row", how="left")
    parts = []
    for (i,), part in keyed.group_by("__group"):
        part = part.drop("__group")
        backtest = apply_intervals(part, rest, scale, bounds)
        if int(cast(int, i)) < 0:
            parts.append(backtest)
            continue
        # never narrower than the backtest's widths (as a short history's never are: `calibrate`): on M3 yearly 12
        # years back the 2-point series' short cuts alone covered 0.64 / 0.84 where the backtest's gave 0.73 / 0.91
        own = apply_intervals(part, short["groups"][int(cast(int, i))]["calibration"], scale, bounds)
        union = []
        for lv in INTERVAL_LEVELS:
            for c, wider in zip(interval_cols(lv), (pl.min_horizontal, pl.max_horizontal), strict=True):
                if c in own.columns and c in backtest.columns:
                    union.append(wider(own[c], backtest[c]).alias(c))
        parts.append(own.with_columns(union))
    return pl.concat(parts, how="diagonal_relaxed").sort("__row").drop("__row")


def reach_one_change(frame: pl.DataFrame, change: pl.DataFrame,
                     bounds: tuple[float | None, float | None] = (None, None)) -> pl.DataFrame:
    """`frame` (unique_id, step, the interval columns) with the intervals of the series of `change` (unique_id,
    change: a 2-observation history's one change per period, published by naive) stretched, in that change's
    direction, by the change carried forward (step x change): each interval spans naive's and the path that goes
    on as the two points went, each with its calibrated width, cut at the declared bounds. Naive's widths alone
    covered 0.31 (80%) / 0.77 (95%) of such series at M3 yearly's validation origin 12 years back; so
    stretched, 0.73 / 0.91 (see the module). Other series' rows, and null bounds (no interval), are unchanged."""
    if not change.height:
        return frame
    out = frame.join(change.select("unique_id", pl.col("change").alias("__change")), on="unique_id", how="left",
                     maintain_order="left")
    moved = pl.col("step").cast(pl.Float64) * pl.col("__change").fill_null(0.0)
    y_min, y_max = bounds
    for lv in INTERVAL_LEVELS:
        lo_c, hi_c = interval_cols(lv)
        if lo_c not in out.columns or hi_c not in out.columns:
            continue
        lo, hi = pl.col(lo_c) + pl.min_horizontal(moved, pl.lit(0.0)), pl.col(hi_c) + pl.max_horizontal(moved, pl.lit(0.0))
        out = out.with_columns(lo.clip(lower_bound=y_min, upper_bound=y_max).alias(lo_c),
                               hi.clip(lower_bound=y_min, upper_bound=y_max).alias(hi_c))
    return out.drop("__change")


def interval_metrics(frame: pl.DataFrame, levels: Sequence[int] = INTERVAL_LEVELS) -> dict[str, float | None]:
    """coverage<L> (share of actuals inside the L% interval) per level and msis: the mean scaled
    interval score of the widest level (Gneiting & Raftery 2007; the M4 competition's MSIS at 95%):
    mean over (series, window) of mean_steps[(hi - lo) + 2/a (lo - y)+ + 2/a (y - hi)+] / scale.
    `frame`: unique_id, window, y, scale and the interval columns. None where there are no rows."""
    out: dict[str, float | None] = {}
    ok = frame.filter(pl.col("y").is_not_null())
    for lv in levels:
        lo, hi = interval_cols(lv)
        rows = ok.filter(pl.col(lo).is_not_null() & pl.col(hi).is_not_null())
        out[f"coverage{lv}"] = (
            float(rows.select(inside_interval(pl.col("y"), pl.col(lo), pl.col(hi)).mean()).item())
            if rows.height else None
        )
    lv = max(levels)
    lo, hi = interval_cols(lv)
    a = 1 - lv / 100
    rows = ok.filter(pl.col(lo).is_not_null() & pl.col(hi).is_not_null())
    if rows.height:
        score = ((pl.col(hi) - pl.col(lo)) + 2 / a * (pl.col(lo) - pl.col("y")).clip(lower_bound=0)
                 + 2 / a * (pl.col("y") - pl.col(hi)).clip(lower_bound=0)) / pl.col("scale")
        keys = [k for k in ("unique_id", "window") if k in rows.columns]
        out["msis"] = float(cast(float, rows.group_by(keys).agg(score.mean().alias("s"))["s"].mean()))
    else:
        out["msis"] = None
    return out


def cross_calibrated(scored: pl.DataFrame, horizon: int, levels: Sequence[int] = INTERVAL_LEVELS, *,
                     oldest_only: bool = False, season_length: int = 1) -> pl.DataFrame:
    """Backtest rows (unique_id, window, step, y, y_hat, scale[, quantiles][, ds, cutoff]) of windows 1..
    with intervals calibrated on the earlier windows only (window 0 has no earlier window: left out),
    and with `ds` and `cutoff` on their points observed by window k's cutoff only (windows a step apart
    shorter than the horizon overlap: an earlier window's later steps are window k's own periods);
    `oldest_only`: on the oldest window only (see `calibration_rows`). A backtest of one window
    (short histories) is split by series instead: every other series in sorted order is
    calibrated on the rest (the same period, never the same points), so the leaderboard still
    shows a coverage."""
    return cross_calibrated_with_note(scored, horizon, levels, oldest_only=oldest_only, season_length=season_length)[0]


def cross_calibrated_with_note(scored: pl.DataFrame, horizon: int, levels: Sequence[int] = INTERVAL_LEVELS, *,
                               oldest_only: bool = False, season_length: int = 1) -> tuple[pl.DataFrame, str]:
    """`cross_calibrated`'s rows and, when they leave a level's coverage (or MSIS, scored on the widest level)
    without a value, why (`blank_intervals_note`): a leaderboard whose coverage95 and MSIS cells were blank on a
    one-window backtest said nothing of it."""
    windows = sorted(scored["window"].unique().to_list())
    parts, cals = [], []
    ids = sorted(scored["unique_id"].unique().to_list()) if len(windows) == 1 else []
    if len(ids) >= 2:
        halves = [ids[0::2], ids[1::2]]
        for mine, other in (halves, halves[::-1]):
            cal = calibrate(scored.filter(pl.col("unique_id").is_in(other)), horizon, levels, season_length=season_length)
            cals.append(cal)
            parts.append(apply_intervals(scored.filter(pl.col("unique_id").is_in(mine)), cal))
        return pl.concat(parts, how="vertical_relaxed"), blank_intervals_note(cals, levels, windows, len(ids))
    for k in windows[1:]:
        earlier = scored.filter(pl.col("window") < k)
        if {"ds", "cutoff"} <= set(scored.columns):  # windows closer than a horizon overlap: only what k's cutoff knew
            ck = scored.filter(pl.col("window") == k).select("unique_id", pl.col("cutoff").alias("__ck")).unique()
            earlier = earlier.join(ck, on="unique_id", how="inner").filter(pl.col("ds") <= pl.col("__ck")).drop("__ck")
        cal = calibrate(calibration_rows(earlier, oldest_only), horizon, levels, season_length=season_length)
        cals.append(cal)
        parts.append(apply_intervals(scored.filter(pl.col("window") == k), cal))
    note = blank_intervals_note(cals, levels, windows, len(scored["unique_id"].unique()))
    if not parts:
        return scored.clear().with_columns([pl.lit(None, dtype=pl.Float64).alias(c) for lv in levels
                                            for c in interval_cols(lv)]), note
    return pl.concat(parts, how="vertical_relaxed"), note


def blank_intervals_note(cals: Sequence[dict[str, Any]], levels: Sequence[int], windows: Sequence[int],
                         n_series: int) -> str:
    """Why the cross-calibrated coverage of some levels (and MSIS, scored on the widest) has no value, '' when every
    level has one. `cals`: the calibrations of the checked parts (a half of the series of a one-window backtest, or
    window k on the windows before it: a window's widths learn only from points observed by its cutoff); a level is
    blank when no part had the points its conformal quantile needs (`min_points`). Honest as it is: borrowing the
    checked points' own errors, or the widest score, would show a coverage the calibration was not held out from."""
    levels = sorted(int(lv) for lv in levels)
    if not levels or not windows:
        return ""

    def has(cal: dict[str, Any], lv: int) -> bool:
        return any(v is not None for v in cal.get("q", {}).get(str(lv), []))

    blank = [lv for lv in levels if not any(has(c, lv) for c in cals)]
    if not blank:
        return ""
    widest = max(levels)
    cells = [metric_name(f"coverage{lv}") for lv in blank] + (["MSIS"] if widest in blank else [])
    shown = listed(cells)
    need = ", ".join(f"{min_points(lv / 100)} for {lv}%" for lv in levels)
    top = max(blank)
    # the finite scores each part's calibration had at that level (`calibrate`'s too_few; its rows where none were)
    points = [int(c.get("too_few", {}).get(str(top), {}).get("points", c.get("n", 0))) for c in cals]
    if len(windows) == 1 and n_series < 2:
        how = ("the backtest has one window and one series, so no point is left to check an interval on that its "
               "calibration did not see")
    elif len(windows) == 1:
        how = (f"the backtest has one window, so its intervals are checked by splitting its {n_series:,} series in two "
               f"halves, each calibrated on the other half's points: {points[0]:,} and {points[1]:,} points, fewer "
               f"than {_a(top)} {top}% interval needs")
    else:
        how = (f"each backtest window's intervals are calibrated on the points of the windows before it observed by "
               f"its cutoff: at most {max(points, default=0):,} points, fewer than {_a(top)} {top}% interval needs")
    more = ("more series, or histories long enough for a second backtest window ([evaluation] n_windows), fill them"
            if len(windows) == 1 else "more series or backtest windows fill them")
    return f"{shown} are blank: {how} (a conformal interval needs {need}); {more}"
