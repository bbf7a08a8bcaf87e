"""Conformal intervals: the finite-sample quantile, per-step widths, CQR, nesting, bounds,
coverage on points the calibration never saw, and the interval score."""

from __future__ import annotations

import itertools
import math

import float_noise
import numpy as np
import polars as pl
import pytest

from flowcast.evaluation.conformal import (
    apply_intervals,
    calibrate,
    calibration_notes,
    conformal_quantile,
    cross_calibrated,
    cross_calibrated_with_note,
    interval_metrics,
    min_points,
    quantile_pair,
    series_scale,
)
from flowcast.evaluation.metrics import coverage_expr, metric_name


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    s = np.arange(1.0, 10.0)  # 9 scores
    assert conformal_quantile(s, 0.8) == 8.0  # ceil(10 x 0.8) = 8th smallest
    # ceil(9.5) = 10 > 9: no finite-sample quantile (the largest score would cover less than 95%)
    assert math.isnan(conformal_quantile(s, 0.95))
    assert conformal_quantile(np.arange(1.0, 20.0), 0.95) == 19.0 and min_points(0.95) == 19 and min_points(0.8) == 4
    assert math.isnan(conformal_quantile(np.array([]), 0.8))
    assert quantile_pair(80) == (0.1, 0.9) and quantile_pair(95) == (0.025, 0.975)


def _rows(n_series: int, horizon: int, windows: int, sigma_per_step, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(windows):
        for s in range(n_series):
            scale = 1.0 + s % 3  # series of different sizes: the scaled score makes them comparable
            for h in range(1, horizon + 1):
                e = rng.normal(0, sigma_per_step[h - 1]) * scale
                rows.append({"unique_id": f"s{s}", "window": w, "step": h, "y": 100 + e, "y_hat": 100.0,
                             "scale": scale})
    return pl.DataFrame(rows)


def test_widths_grow_with_the_step_and_cover_unseen_points():
    sig = [1.0, 2.0, 4.0]
    cal = calibrate(_rows(300, 3, 1, sig, seed=1), 3)
    q80 = cal["q"]["80"]
    assert q80[0] < q80[1] < q80[2]
    np.testing.assert_allclose(q80, [1.2816 * s for s in sig], rtol=0.15)  # the normal's 90% quantile
    fresh = _rows(300, 3, 1, sig, seed=2)
    got = apply_intervals(fresh, cal)
    m = interval_metrics(got)
    assert 0.75 <= m["coverage80"] <= 0.85 and 0.92 <= m["coverage95"] <= 0.98
    assert (got["y_hat_lo95"] <= got["y_hat_lo80"]).all() and (got["y_hat_hi80"] <= got["y_hat_hi95"]).all()
    # the width follows each series' own scale
    w = got.filter(pl.col("step") == 1).with_columns((pl.col("y_hat_hi80") - pl.col("y_hat")).alias("w"))
    ratio = w.filter(pl.col("unique_id") == "s2")["w"][0] / w.filter(pl.col("unique_id") == "s0")["w"][0]
    assert ratio == pytest.approx(3.0)


def test_bounds_clip_the_intervals():
    rows = pl.DataFrame({"unique_id": ["a"] * 2, "step": [1, 2], "y_hat": [1.0, 9.5], "scale": [1.0, 1.0]})
    cal = {"levels": [80, 95], "mode": {"80": "residual", "95": "residual"}, "q": {"80": [2.0, 2.0], "95": [3.0, 3.0]}}
    got = apply_intervals(rows, cal, bounds=(0.0, 10.0))
    assert got["y_hat_lo80"].to_list() == [0.0, 7.5] and got["y_hat_hi95"].to_list() == [4.0, 10.0]


def test_conformalised_quantiles_widen_a_network_band_that_is_too_narrow():
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.normal(0, 1, n)
    frame = pl.DataFrame({"unique_id": ["a"] * n, "window": [0] * n, "step": [1] * n, "y": y, "y_hat": 0.0,
                          "scale": 1.0, "y_hat_q10": -0.5, "y_hat_q90": 0.5})  # covers ~38%, not 80%
    cal = calibrate(frame, 1, levels=(80,))
    assert cal["mode"]["80"] == "cqr" and cal["q"]["80"][0] == pytest.approx(1.2816 - 0.5, abs=0.1)
    fresh = frame.with_columns(pl.Series("y", rng.normal(0, 1, n)))
    got = apply_intervals(fresh, cal)
    assert got["y_hat_lo80"][0] == pytest.approx(-0.5 - cal["q"]["80"][0])
    assert 0.76 <= interval_metrics(got, levels=(80,))["coverage80"] <= 0.84


def test_interval_score_by_hand():
    rows = pl.DataFrame({"unique_id": ["a", "a"], "window": [1, 1], "y": [5.0, 12.0], "scale": [2.0, 2.0],
                         "y_hat_lo80": [4.0, 4.0], "y_hat_hi80": [6.0, 6.0], "y_hat_lo95": [3.0, 3.0],
                         "y_hat_hi95": [7.0, 7.0]})
    m = interval_metrics(rows)
    assert m["coverage80"] == 0.5 and m["coverage95"] == 0.5
    # width 4 each; the second point is 5 above: + 2/0.05 x 5 = 200
    assert m["msis"] == pytest.approx(((4 + 0) + (4 + 200)) / 2 / 2.0)


@pytest.mark.parametrize(("y", "noise", "inside"), [
    (7.3, 1e-15, True),  # theta's zero-width interval on constant data: 7.3 + 1e-15
    (7.3, -1e-15, True),
    (0.0, 5e-10, True),  # at 0 the tolerance is absolute (1e-9)
    (1e6, 1e-4, True),  # relative to |y|: 1e-10 of it
    (1e6, 1e-2, False),
    (7.3, 1e-6, False),  # a real miss
    (0.0, 1e-8, False),
])
def test_interval_coverage_counts_a_hit_within_float_noise_of_a_bound(y, noise, inside):
    """Regression: on constant data theta's and comb's leaderboard coverage read 0.71 / 0.67, exact hits on a
    zero-width interval computed through floats counted as misses. A point inside [lo, hi] give or take
    1e-9 x max(1, |y|) is covered, on the boards (`coverage_expr`) and in calibration's `interval_metrics` alike."""
    b = y + noise
    rows = pl.DataFrame({"unique_id": ["a"], "window": [1], "y": [y], "scale": [1.0], "y_hat_lo80": [b],
                         "y_hat_hi80": [b], "y_hat_lo95": [b], "y_hat_hi95": [b]})
    m = interval_metrics(rows)
    assert (m["coverage80"], m["coverage95"]) == ((1.0, 1.0) if inside else (0.0, 0.0))
    board = rows.rename({"y_hat_lo80": "y_hat_q10", "y_hat_hi80": "y_hat_q90"}).select(
        coverage_expr("y_hat_q10", "y_hat_q90"))
    assert board.item() == (1.0 if inside else 0.0)


def test_cross_calibration_never_uses_the_window_it_scores():
    rows = _rows(50, 2, 3, [1.0, 1.0], seed=4)
    crossed = cross_calibrated(rows, 2)
    assert sorted(crossed["window"].unique().to_list()) == [1, 2]  # window 0 has nothing earlier
    # wrecking window 2's actuals changes nothing about window 1's intervals nor window 2's own widths
    wrecked = rows.with_columns(pl.when(pl.col("window") == 2).then(pl.col("y") * 50).otherwise(pl.col("y")).alias("y"))
    again = cross_calibrated(wrecked, 2)
    cols = ["unique_id", "window", "step", "y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95"]
    assert crossed.select(cols).sort(cols[:3]).equals(again.select(cols).sort(cols[:3]))


def test_overlapping_windows_are_cross_calibrated_on_what_each_cutoff_knew():
    """Regression: windows a step apart shorter than the horizon overlap (quarterly: 4 apart, horizon 8), and
    window k's intervals were calibrated on the earlier windows' errors at its own periods. Here windows are
    1 period apart with a horizon of 2: window 0's step 2 is window 1's step 1, after window 1's cutoff."""
    from datetime import datetime, timedelta

    rows = _rows(60, 2, 2, [1.0, 1.0], seed=5)
    day = lambda n: datetime(2020, 1, 1) + timedelta(days=n)
    rows = rows.with_columns(pl.col("window").map_elements(day, return_dtype=pl.Datetime("us")).alias("cutoff"),
                             (pl.col("window") + pl.col("step")).map_elements(day, return_dtype=pl.Datetime("us"))
                             .alias("ds"))
    crossed = cross_calibrated(rows, 2)
    # wrecking window 0's step 2 (day 2: after window 1's cutoff, day 1) changes nothing about window 1's intervals
    wrecked = rows.with_columns(pl.when((pl.col("window") == 0) & (pl.col("step") == 2)).then(pl.col("y") * 50)
                                .otherwise(pl.col("y")).alias("y"))
    again = cross_calibrated(wrecked, 2)
    cols = ["unique_id", "window", "step", "y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95"]
    assert crossed.select(cols).sort(cols[:3]).equals(again.select(cols).sort(cols[:3]))


def test_series_scale_falls_back_on_constant_history():
    from datetime import datetime, timedelta

    ds = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(6)]
    hist = pl.DataFrame({"unique_id": ["c"] * 6 + ["v"] * 6, "ds": ds * 2,
                         "y": [5.0] * 6 + [1.0, 3.0, 1.0, 3.0, 1.0, 3.0]})
    got = series_scale(hist, 1)
    assert dict(got.select("unique_id", "scale").rows()) == {"c": 5.0, "v": 2.0}
    assert dict(got.select("unique_id", "history").rows()) == {"c": 6, "v": 6}


def _by_history(n_short: int, n_long: int, seed: int, horizon: int = 2) -> pl.DataFrame:
    """Series with 12 rows of history forecast with errors of sd 3, series with 60 rows with sd 1."""
    rows = []
    for part, n, hist, sd in (("short", n_short, 12, 3.0), ("long", n_long, 60, 1.0)):
        part_rows = _rows(n, horizon, 1, [sd] * horizon, seed=seed + (part == "long"))
        rows.append(part_rows.with_columns(pl.lit(hist).alias("history"),
                                           (pl.lit(f"{part}-") + pl.col("unique_id")).alias("unique_id")))
    return pl.concat(rows)


def test_short_and_long_histories_are_calibrated_apart():
    """Errors are larger on short histories: each history group gets its own widths, and a fresh
    series is covered at the nominal rate in either group (pooled widths would over-cover the long
    ones and under-cover the short ones)."""
    cal = calibrate(_by_history(200, 200, seed=1), 2)
    assert 12 <= cal["history_edge"] < 60  # the median history of the pairs
    short, long = cal["q_by_history"]["80"]
    np.testing.assert_allclose(short, [1.2816 * 3.0] * 2, rtol=0.2)
    np.testing.assert_allclose(long, [1.2816 * 1.0] * 2, rtol=0.2)
    fresh = _by_history(300, 300, seed=5)
    got = apply_intervals(fresh, cal)
    for part in ("short", "long"):
        m = interval_metrics(got.filter(pl.col("unique_id").str.starts_with(part)))
        assert 0.74 <= m["coverage80"] <= 0.86, (part, m)
    pooled = apply_intervals(fresh.drop("history"), cal)  # unknown history: the pooled widths
    m = interval_metrics(pooled.filter(pl.col("unique_id").str.starts_with("long")))
    assert m["coverage80"] > 0.95
    # the forecast path: history and scale come from series_scale's frame
    sc = fresh.select("unique_id", "scale", "history").unique()
    again = apply_intervals(fresh.drop("scale", "history"), cal, scale=sc)
    assert again.columns == fresh.drop("scale", "history").columns + [c for c in got.columns if c.startswith("y_hat_")
                                                                      and c != "y_hat"]
    assert again.sort("unique_id", "window", "step")["y_hat_hi80"].equals(
        got.sort("unique_id", "window", "step")["y_hat_hi80"])


def test_a_history_group_too_small_is_not_split_off():
    cal = calibrate(_by_history(200, 10, seed=1), 2)  # 10 long series: fewer than 50 points a step
    assert "history_edge" not in cal and "q_by_history" not in cal
    cal = calibrate(_by_history(200, 200, seed=1).drop("history"), 2)  # no history: pooled as before
    assert "history_edge" not in cal


def test_widths_never_grow_with_the_history():
    """Short histories that come out with the smaller scaled errors (a scale measured on a few points
    can be far too large) do not get narrower intervals than long ones: both take the pooled widths."""
    rows = _by_history(200, 200, seed=1).with_columns(
        pl.when(pl.col("history") == 12).then(60).otherwise(12).alias("history"))  # sd 3 now on the long ones
    cal = calibrate(rows, 2)
    short, long = cal["q_by_history"]["80"]
    assert short == cal["q"]["80"] and long == cal["q"]["80"]


def test_one_window_is_cross_calibrated_by_series():
    """One backtest window (short histories): each half of the series is calibrated on the other
    half, so every row gets intervals that never saw its own actuals."""
    rows = _rows(60, 2, 1, [1.0, 2.0], seed=3)
    crossed = cross_calibrated(rows, 2)
    assert crossed.height == rows.height and crossed["y_hat_lo80"].null_count() == 0
    m = interval_metrics(crossed)
    assert 0.7 <= m["coverage80"] <= 0.9 and 0.9 <= m["coverage95"] <= 1.0
    ids = sorted(rows["unique_id"].unique().to_list())
    wrecked = rows.with_columns(pl.when(pl.col("unique_id").is_in(ids[0::2])).then(pl.col("y") * 50)
                                .otherwise(pl.col("y")).alias("y"))
    again = cross_calibrated(wrecked, 2)
    cols = ["unique_id", "step", "y_hat_lo80", "y_hat_hi80"]
    mine = pl.col("unique_id").is_in(ids[0::2])  # their own widths come from the other half only
    assert crossed.filter(mine).select(cols).sort(cols[:2]).equals(again.filter(mine).select(cols).sort(cols[:2]))
    assert not crossed.filter(~mine).select(cols).sort(cols[:2]).equals(again.filter(~mine).select(cols).sort(cols[:2]))
    one = _rows(1, 2, 1, [1.0, 1.0], seed=3)  # a single series: nothing to calibrate on
    assert cross_calibrated(one, 2).height == 0


def _order_statistic(scores: np.ndarray, level: float) -> float:
    return float(np.sort(scores)[math.ceil((len(scores) + 1) * level) - 1])


def test_a_small_backtest_gets_distinct_honest_80_and_95_intervals_and_says_how():
    """Regression: 8 series and one calibration window give 8 points per step; ceil(9 x 0.8) = 8 and
    ceil(9 x 0.95) = 10 > 8, so both levels took the largest score: lo80 == lo95 and hi80 == hi95,
    and a '95%' interval that covers at most 8/9. Such steps now take the widths pooled over all
    steps (48 points: 95% is the 47th smallest, 80% the 40th, of the scores each divided by the square
    root of its step), grown with sqrt(h), and the run's notes say so."""
    rows = _rows(8, 6, 1, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5], seed=4)
    cal = calibrate(rows, 6)
    scores = ((rows["y"] - rows["y_hat"]).abs() / rows["scale"] / rows["step"].sqrt()).to_numpy()
    for lv in (80, 95):
        np.testing.assert_allclose(cal["q"][str(lv)], [_order_statistic(scores, lv / 100) * math.sqrt(h)
                                                       for h in range(1, 7)], rtol=1e-12)
    assert all(a < b for a, b in zip(cal["q"]["80"], cal["q"]["95"]))
    got = apply_intervals(rows, cal)
    assert (got["y_hat_lo95"] < got["y_hat_lo80"]).all() and (got["y_hat_hi80"] < got["y_hat_hi95"]).all()
    assert cal["pooled_steps"] == {"80": [1, 2, 3, 4, 5, 6], "95": [1, 2, 3, 4, 5, 6]} and "too_few" not in cal
    assert calibration_notes(cal, "gru") == [
        ("gru's 80%/95% intervals at every horizon step are calibrated on the errors of all steps pooled, each "
         "divided by the square root of its step, and grow with sqrt(h) (the growth of a random walk's errors): the "
         "backtest left 8 calibration points per step, fewer than the 19 a 95% interval needs per step.")]


def test_a_level_with_too_few_points_even_pooled_publishes_no_interval_and_says_why():
    rows = _rows(2, 3, 1, [1.0, 1.0, 1.0], seed=5)  # 6 points: enough for 80% pooled, not for 95%
    cal = calibrate(rows, 3)
    assert cal["q"]["95"] == [None, None, None] and all(v is not None for v in cal["q"]["80"])
    got = apply_intervals(rows, cal)
    assert got["y_hat_lo95"].null_count() == got.height and got["y_hat_lo80"].null_count() == 0
    assert calibration_notes(cal, "naive") == [
        ("naive publishes no 95% interval: its backtest left 6 calibration points, and a 95% conformal interval "
        "needs at least 19 (more series or backtest windows give it one)."),
        # regression: it said 'fewer than the 19 a 95% interval needs' of the 80% level, beside a note that there
        # is no 95% interval
        ("naive's 80% intervals at every horizon step are calibrated on the errors of all steps pooled, each "
         "divided by the square root of its step, and grow with sqrt(h) (the growth of a random walk's errors): the "
         "backtest left 2 calibration points per step, fewer than the 4 an 80% interval needs per step.")]


def test_a_level_pooled_for_another_levels_sake_does_not_say_it_had_too_few_points():
    """Regression: 6 series x 3 steps (one window) give 6 points a step, enough for 80% (4), but a step is calibrated
    apart only when every level can be (19 for 95%), and the 18 points pooled publish no 95% interval. The note said
    'the backtest left 6 calibration points per step, fewer than the 4 an 80% interval needs per step' (a flowcast
    run of 3 shops said so): false, and no reason at all."""
    rows = _rows(6, 3, 1, [1.0, 1.0, 1.0], seed=5)
    cal = calibrate(rows, 3)
    assert cal["q"]["95"] == [None, None, None] and cal["pooled_steps"]["80"] == [1, 2, 3]
    notes = calibration_notes(cal, "theta")
    assert notes[0].startswith("theta publishes no 95% interval: its backtest left 18 calibration points")
    assert notes[1].endswith("the backtest left 6 calibration points per step, enough for an 80% interval, but a step "
                             "is calibrated on its own only with enough for every level, and a 95% interval needs 19 "
                             "per step.")


def test_pooled_widths_grow_with_the_step_and_cover_the_first_and_last_step_nearer_the_level():
    """Regression: a backtest with too few points per step (8 series, one window, 12 steps) gave every step the
    widths pooled over all steps: the same width at step 1 as at step 12, while errors grow with the step (here as
    a random walk's, sd sqrt(h)), so step 1 over-covered and step 12 under-covered (a small daily file: damped's
    80% intervals covered 0.67). The pooled scores are divided by sqrt(step) and step h's width is the pooled one
    x sqrt(h); fresh points drawn the same way are covered nearer 80% / 95% at both ends than flat widths do."""
    sig = [math.sqrt(h) for h in range(1, 13)]
    rows = _rows(8, 12, 1, sig, seed=11)
    cal = calibrate(rows, 12)
    assert cal["pooled_steps"]["95"] == list(range(1, 13))
    scores = ((rows["y"] - rows["y_hat"]).abs() / rows["scale"]).to_numpy()
    fresh = _rows(1000, 12, 1, sig, seed=12)
    got = apply_intervals(fresh, cal)
    for lv in (80, 95):
        q = cal["q"][str(lv)]
        assert all(a < b for a, b in itertools.pairwise(q))
        np.testing.assert_allclose(q, [q[0] * math.sqrt(h) for h in range(1, 13)], rtol=1e-12)
        flat = {**cal, "q": {**cal["q"], str(lv): [_order_statistic(scores, lv / 100)] * 12}}  # as it was
        before = apply_intervals(fresh, flat)
        for step in (1, 12):
            now = interval_metrics(got.filter(pl.col("step") == step), levels=(lv,))[f"coverage{lv}"]
            was = interval_metrics(before.filter(pl.col("step") == step), levels=(lv,))[f"coverage{lv}"]
            assert now is not None and was is not None
            assert abs(now - lv / 100) < abs(was - lv / 100), (lv, step, now, was)
    # the leaderboard's cross-calibration (one window: by halves of the series, 4 points a step) grows them alike
    crossed = cross_calibrated(rows, 12).with_columns(((pl.col("y_hat_hi80") - pl.col("y_hat")) / pl.col("scale")
                                                       / pl.col("step").sqrt()).alias("w"))
    for _, g in crossed.group_by("unique_id"):
        np.testing.assert_allclose(g["w"].to_numpy(), g["w"][0], rtol=1e-12)


def test_a_normal_sized_backtest_keeps_its_per_step_widths():
    """19 points per step and up (every M3 set by far): each step's own order statistic, as before."""
    rows = _rows(19, 4, 1, [1.0, 2.0, 3.0, 4.0], seed=6)
    cal = calibrate(rows, 4)
    for lv in (80, 95):
        want = [_order_statistic((g["y"] - g["y_hat"]).abs().to_numpy() / g["scale"].to_numpy(), lv / 100)
                for _, g in sorted(rows.group_by("step"), key=lambda kv: kv[0])]
        assert cal["q"][str(lv)] == want
    assert "pooled_steps" not in cal and calibration_notes(cal, "gru") == []


def test_series_scale_at_a_cutoff_falls_back_on_the_level_up_to_that_cutoff():
    """A history constant up to a backtest cutoff has MASE scale 0 there: its fallback, the mean |y|,
    is the history's up to the cutoff, never the level of points after it (which weights and interval
    calibration of that window must not see)."""
    from datetime import datetime, timedelta

    ds = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(8)]
    hist = pl.DataFrame({"unique_id": ["c"] * 8, "ds": ds, "y": [5.0] * 4 + [1000.0] * 4})
    cutoffs = pl.DataFrame({"unique_id": ["c"], "cutoff": [ds[3]]})
    got = series_scale(hist, 1, cutoffs)
    assert got.select("unique_id", "cutoff", "scale", "history").rows() == [("c", ds[3], 5.0, 4)]
    zeros = hist.with_columns(pl.when(pl.col("ds") <= ds[3]).then(0.0).otherwise(pl.col("y")).alias("y"))
    assert series_scale(zeros, 1, cutoffs)["scale"].to_list() == [1.0]  # all zeros up to the cutoff: 1


@pytest.mark.parametrize(("q80", "q95"), [
    ([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),  # widths growing with the step
    ([1.0] * 6, [2.0] * 6),  # flat widths: the same growth from step 6
    ([-0.2] * 6, [0.3] * 6),  # a CQR correction that narrows a network's band is never narrowed further
])
def test_steps_beyond_the_calibrated_ones_are_widened_from_the_last_by_the_square_root_of_the_step(q80, q95):
    """Regression: a forecast of 9 steps with widths calibrated on 6 gave steps 7-9 the 6th step's widths (the
    step was clipped to the calibrated ones), published as calibrated. Steps 1-6 keep their own widths; step h > 6
    gets step 6's width x sqrt(h / 6) (never narrower than step 6's), and the notes say so."""
    cal = {"levels": [80, 95], "mode": {"80": "residual", "95": "residual"}, "q": {"80": q80, "95": q95}}
    rows = pl.DataFrame({"unique_id": ["a"] * 9, "step": list(range(1, 10)), "y_hat": [100.0] * 9, "scale": [2.0] * 9})
    got = apply_intervals(rows, cal)
    for lv, q in ((80, q80), (95, q95)):
        want = [*q, *(max(q[-1], q[-1] * math.sqrt(h / 6)) for h in (7, 8, 9))]
        np.testing.assert_allclose((got[f"y_hat_hi{lv}"] - 100.0).to_numpy(), [max(w, 0.0) * 2.0 for w in want],
                                   rtol=1e-12)
    assert calibration_notes(cal, "theta") == []  # the forecast's horizon unknown: nothing to say
    assert calibration_notes(cal, "theta", horizon=6) == []
    assert calibration_notes(cal, "theta", horizon=9) == [
        ("theta's 80%/95% intervals at steps 7-9 are beyond the 6 calibrated: widened from step 6 by sqrt(h/6) "
         "(the growth of a random walk's errors), not calibrated.")]
    assert calibration_notes(cal, "theta", horizon=7)[0].startswith(
        "theta's 80%/95% intervals at step 7 are beyond the 6 calibrated: widened from step 6 by sqrt(h/6)")


def test_a_level_without_an_interval_is_not_said_to_be_widened():
    rows = _rows(2, 3, 1, [1.0, 1.0, 1.0], seed=5)  # 6 points: an 80% interval, no 95% one
    cal = calibrate(rows, 3)
    notes = calibration_notes(cal, "naive", horizon=5)
    assert notes[-1].startswith("naive's 80% intervals at steps 4-5 are beyond the 3 calibrated")


@pytest.mark.parametrize("scored_steps", [2, 4])
def test_steps_without_a_calibration_point_after_the_last_scored_one_are_widened_not_pooled(scored_steps):
    """Regression: steps with no calibration point took the widths pooled over the scored steps (calibrated on
    steps 1-4 of an 8-step horizon, as the cross-calibration of a window whose only earlier window had observed
    4 of its steps, steps 5-8 got the pooled width of steps 1-4: narrower than step 4's). The calibration ends
    at the last scored step, and the steps after it are widened from it like any step beyond a calibration."""
    sig = [1.0, 2.0, 3.0, 4.0][:scored_steps]
    rows = _rows(40, scored_steps, 1, sig, seed=7)
    cal = calibrate(rows, 8)
    alone = calibrate(rows, scored_steps)
    assert cal["q"] == alone["q"] and all(len(q) == scored_steps for q in cal["q"].values())
    fresh = pl.DataFrame({"unique_id": ["a"] * 8, "step": list(range(1, 9)), "y_hat": [0.0] * 8, "scale": [1.0] * 8})
    got = apply_intervals(fresh, cal)
    q80 = cal["q"]["80"]
    np.testing.assert_allclose(got["y_hat_hi80"].to_numpy(),
                               [*q80, *(q80[-1] * math.sqrt(h / scored_steps) for h in range(scored_steps + 1, 9))])
    assert calibration_notes(cal, "gru", horizon=8) == [
        (f"gru's 80%/95% intervals at steps {scored_steps + 1}-8 are beyond the {scored_steps} calibrated: widened "
         f"from step {scored_steps} by sqrt(h/{scored_steps}) (the growth of a random walk's errors), not calibrated.")]


@pytest.mark.parametrize(("ys", "scale"), [
    ([7.0] * 6, 0.0),  # constant: no change to scale an error by (it was the level, 7: the interval [-1.2, 15.2])
    ([0.0] * 6, 0.0),  # all zeros (it was 1, in the data's units whatever they are: +-1.17)
    ([3.0, 3.0, 3.0, 3.0], 0.0),  # two full seasons (m = 2) and 4 points: the shortest constant history
    ([3.0, 3.0, 3.0], 3.0),  # shorter: too little to say the series never moves, the level as before
    ([7.0], 7.0),  # one point says nothing about how a series moves: the level, as before
    ([1.0, 2.0, 1.0, 2.0], 1.5),  # repeats itself at the season (m = 2) but moves: the level, as before
    ([1.0, 2.0, 4.0], 3.0),  # its MASE scale (|4 - 1|), as before
])
def test_a_constant_history_has_no_scale_to_publish_widths_with(ys, scale):
    """Regression: a series constant at 7 was published with the interval [-1.2, 15.2] (the widths, multiples of
    a series' typical change, times its level) and an all-zero series with +-1.17 (times 1). A history that never
    moved gets zero width at publish time (`constant=True`), as a model with no residual variance gets in
    statsforecast or fable; the calibration's scales (at backtest cutoffs) keep the fallback."""
    from datetime import datetime, timedelta

    hist = pl.DataFrame({"unique_id": ["c"] * len(ys), "ds": [datetime(2020, 1, 1) + timedelta(days=i)
                                                             for i in range(len(ys))], "y": ys})
    got = series_scale(hist, 2, constant=True)
    assert got["scale"].to_list() == [scale]
    before = series_scale(hist, 2)["scale"][0]
    assert before > 0 and (scale == 0 or before == scale)
    cal = {"levels": [80, 95], "mode": {"80": "residual", "95": "residual"}, "q": {"80": [1.17], "95": [2.0]}}
    rows = pl.DataFrame({"unique_id": ["c"], "step": [1], "y_hat": [ys[-1]]})
    out = apply_intervals(rows, cal, got)
    assert (out["y_hat_hi95"][0] - out["y_hat_lo95"][0] == 0.0) == (scale == 0.0)


def test_a_row_without_what_its_interval_is_made_from_gets_no_interval_not_a_zero_width_one():
    """Regression: a CQR interval is the network's own quantiles widened; a row whose quantiles were missing got
    min/max(null, y_hat) = y_hat: the zero-width interval [y_hat, y_hat], published as a calibrated 80% one (and
    the 95% one, nested around it, took the 80% bounds). Such a row's bounds are null (the check then finds them)."""
    rows = pl.DataFrame({"unique_id": ["a", "a"], "step": [1, 2], "y_hat": [0.0, 0.0], "scale": [1.0, 1.0],
                         "y_hat_q10": [-1.0, None], "y_hat_q90": [1.0, None],
                         "y_hat_q2.5": [-2.0, None], "y_hat_q97.5": [2.0, None]})
    cal = {"levels": [80, 95], "mode": {"80": "cqr", "95": "cqr"}, "q": {"80": [0.5, 0.5], "95": [0.5, 0.5]}}
    got = apply_intervals(rows, cal)
    assert got["y_hat_lo80"].to_list() == [-1.5, None] and got["y_hat_hi80"].to_list() == [1.5, None]
    assert got["y_hat_lo95"].to_list() == [-2.5, None] and got["y_hat_hi95"].to_list() == [2.5, None]


def test_widths_calibrated_on_one_point_histories_are_applied_in_levels_not_in_the_mase_scale():
    """A brand-new dataset's backtest cuts every series at its first point: no history measures a typical change,
    so each point's score is its error over the series' level (mean |y|). Those widths were multiplied by the
    published series' MASE scale (mean |diff| of its 3 points, a tenth of its level here): 95% intervals covering
    about a fifth of the next values. They are applied in levels, as calibrated."""
    from datetime import datetime, timedelta

    rng = np.random.default_rng(3)
    n = 400
    level = rng.uniform(5, 50, n)
    ids = [f"s{i}" for i in range(n)]
    t0 = datetime(2024, 1, 1)
    draws = level[:, None] * (1 + 0.1 * rng.standard_normal((n, 5)))  # 5 values a series: noise a tenth of its level
    # the backtest: cut after the first value, step 1 forecast by naive
    hist = pl.DataFrame({"unique_id": ids, "ds": [t0] * n, "y": draws[:, 0]})
    cut = series_scale(hist, 7, pl.DataFrame({"unique_id": ids, "cutoff": [t0] * n}))
    assert cut["level_scaled"].all()
    scored = pl.DataFrame({"unique_id": ids, "window": [0] * n, "step": [1] * n, "y": draws[:, 1],
                           "y_hat": draws[:, 0]}).join(cut.drop("cutoff"), on="unique_id")
    cal = calibrate(scored, 1)
    assert cal["scale"] == "level"
    # published from 3 values (a MASE scale exists), scored on the 4th
    three = pl.DataFrame({"unique_id": [u for u in ids for _ in range(3)],
                          "ds": [t0 + timedelta(days=k) for _ in ids for k in range(3)],
                          "y": draws[:, 1:4].ravel()})
    published = series_scale(three, 7, constant=True)
    assert not published["level_scaled"].any()
    fc = pl.DataFrame({"unique_id": ids, "step": [1] * n, "y_hat": draws[:, 3], "y": draws[:, 4]})
    got = apply_intervals(fc, cal, published)
    covered = got.select(((pl.col("y") >= pl.col("y_hat_lo95")) & (pl.col("y") <= pl.col("y_hat_hi95"))).mean()).item()
    assert covered > 0.85, covered
    # mostly measured scales: calibrated and applied in them, as before
    measured = scored.with_columns(pl.lit(False).alias("level_scaled"))
    assert "scale" not in calibrate(measured, 1) and "level_bands" not in calibrate(measured, 1)


def _one_point_cuts(levels: np.ndarray, draws: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A backtest of series cut at their first value (step 1 forecast by naive: that value), scored on the second,
    and the published scales of the same series from their values 2-4 (scored on the 5th)."""
    from datetime import datetime, timedelta

    n = len(levels)
    ids = [f"s{i:04d}" for i in range(n)]
    t0 = datetime(2024, 1, 1)
    hist = pl.DataFrame({"unique_id": ids, "ds": [t0] * n, "y": draws[:, 0]})
    cut = series_scale(hist, 1, pl.DataFrame({"unique_id": ids, "cutoff": [t0] * n}))
    scored = pl.DataFrame({"unique_id": ids, "window": [0] * n, "step": [1] * n, "y": draws[:, 1],
                           "y_hat": draws[:, 0]}).join(cut.drop("cutoff"), on="unique_id")
    three = pl.DataFrame({"unique_id": [u for u in ids for _ in range(3)],
                          "ds": [t0 + timedelta(days=k) for _ in ids for k in range(3)],
                          "y": draws[:, 1:4].ravel()})
    return scored, series_scale(three, 1, constant=True)


def test_widths_in_levels_are_calibrated_apart_for_small_and_large_levels():
    """shortiv53: series of a few points, counts of 0-50 beside sales of 1e3-1e5 moving a tenth of their level. One
    value's level is a poor unit for the counts (a cut at 1 before a 50 scores 49 levels), and their heavy-tailed
    scores, pooled, gave every series 95% widths of about 11 times its level here (the sales needed about 0.6; a
    series at 25 in a 100k-series run: [-731, 785]). Calibrated per band of level sizes, each kind gets widths of its
    own, and both cover."""
    rng = np.random.default_rng(53)
    n = 600
    small = np.arange(n) % 2 == 0
    levels = np.where(small, 25.0, 10 ** rng.uniform(3, 5, n))
    draws = np.where(small[:, None], rng.integers(0, 51, (n, 5)).astype(float),
                     levels[:, None] * (1 + 0.1 * rng.standard_normal((n, 5))))
    scored, published = _one_point_cuts(levels, draws)
    cal = calibrate(scored, 1)
    assert cal["scale"] == "level" and len(cal["level_bands"]) >= 2
    ids = scored["unique_id"].to_list()
    fc = pl.DataFrame({"unique_id": ids, "step": [1] * n, "y_hat": draws[:, 3], "y": draws[:, 4],
                       "small": small, "mean": draws[:, 1:4].mean(axis=1)})
    got = apply_intervals(fc, cal, published).with_columns(
        ((pl.col("y") >= pl.col("y_hat_lo95")) & (pl.col("y") <= pl.col("y_hat_hi95"))).alias("in95"),
        ((pl.col("y_hat_hi95") - pl.col("y_hat_lo95")) / pl.col("mean")).alias("relative"))
    for kind in (True, False):
        part = got.filter(pl.col("small") == kind)
        assert part["in95"].mean() >= 0.88, (kind, part["in95"].mean())
    big = got.filter(~pl.col("small"))
    # 10% noise: naive's 95% interval is about 2 x 1.96 x 0.14 = 0.55 of the level wide
    assert cast_float(big["relative"].median()) < 1.0, big["relative"].median()
    # the counts' widths near their own range (naive's 95% width: about 80, 3 levels of 25), not 13 levels
    assert cast_float(got.filter(pl.col("small"))["relative"].median()) < 6.0
    assert got["in95"].mean() >= 0.92


def cast_float(v: object) -> float:
    assert isinstance(v, float)
    return v


def test_level_bands_merge_sparse_decades_and_are_not_split_without_enough_points():
    from flowcast.evaluation.conformal import MIN_GROUP_POINTS, _band_expr, level_bands

    def rows(levels: list[float]) -> pl.DataFrame:
        return pl.DataFrame({"step": [1] * len(levels), "level": levels})

    many = MIN_GROUP_POINTS
    # two well-filled sizes: two bands; a few points of a size between them join the band below them
    sizes = rows([2.0] * many + [30.0] * 3 + [5e4] * many)
    bands = level_bands(sizes, 1)
    assert bands is not None and len(bands) == 2
    band = dict(sizes.select("level", _band_expr(bands).alias("band")).unique().iter_rows())
    assert band == {2.0: 0, 30.0: 0, 5e4: 1}  # (30 took the 5e4 band: small counts with large series' widths)
    # one size alone, or a second with too few points: pooled (None)
    assert level_bands(rows([2.0] * (2 * many)), 1) is None
    assert level_bands(rows([2.0] * many + [5e4] * (many - 1)), 1) is None
    # every step needs its points: a band with points at step 1 only is no band of a 2-step calibration
    two = pl.concat([rows([2.0] * many + [5e4] * many), rows([2.0] * many).with_columns(pl.lit(2, dtype=pl.Int64).alias("step"))])
    assert level_bands(two, 2) is None


def test_a_level_scaled_backtest_point_takes_the_relative_change_known_at_its_cutoff_only():
    """A series without a measured change at a cutoff is scaled by its level times the others' typical change
    relative to their level: as a run at that cutoff would have had it (DESIGN: a backtest cut at t sees what a run
    with as_of = t saw). The ratio pooled every cutoff, so a jump in another series after the cutoff widened it."""
    from datetime import datetime, timedelta

    t = [datetime(2024, 1, 1) + timedelta(days=k) for k in range(6)]
    cutoffs = pl.DataFrame({"unique_id": ["a", "a", "b", "b"], "cutoff": [t[2], t[5], t[2], t[5]]})

    def scales(a_after: list[float]) -> pl.DataFrame:
        insample = pl.DataFrame({"unique_id": ["a"] * 6 + ["b"] * 4, "ds": t + t[2:],
                                 "y": [10.0, 11.0, 10.0, *a_after, 50.0, 52.0, 49.0, 51.0]})
        return series_scale(insample, 1, cutoffs).sort("unique_id", "cutoff")

    calm, jump = scales([11.0, 10.0, 11.0]), scales([100.0, 10.0, 100.0])
    b_first = pl.col("unique_id").eq("b") & pl.col("cutoff").eq(t[2])  # b: one point at its first cutoff
    assert calm.filter(b_first)["level_scaled"].item() and jump.filter(b_first)["level_scaled"].item()
    # a at t2: mean |diff| 1 over a level of 31/3; b's one point, 50, moves as a did up to then
    assert calm.filter(b_first)["scale"].item() == pytest.approx(50 * 1 / (31 / 3))
    assert jump.filter(b_first)["scale"].item() == pytest.approx(calm.filter(b_first)["scale"].item())


@pytest.mark.parametrize(("n_series", "windows", "blank", "says"), [
    # one window of 8 series x 3 steps: each half calibrated on the other's 12 points, 4 enough for 80%, not 19 for 95%
    (8, 1, ["coverage95", "msis"], "its 8 series in two halves, each calibrated on the other half's points: 12 and 12"),
    (2, 1, ["coverage80", "coverage95", "msis"], "1 and 1"),  # one point per step per half: no level at all
    (1, 1, ["coverage80", "coverage95", "msis"], "one window and one series"),
    (3, 2, ["coverage95", "msis"], "at most 6 points"),  # window 1 on window 0's 3 series x 2 steps
    (30, 1, [], ""),  # 15 series x 3 steps a half: 45 points, enough for both levels
])
def test_blank_interval_cells_say_why(n_series, windows, blank, says):
    """Regression: the leaderboard's coverage95 and MSIS cells were blank on a one-window backtest of a few series,
    with nothing saying why. The cross-calibration (a window's widths learn only from points observed by its
    cutoff; one window: each half of the series on the other) had too few points for a 95% conformal quantile;
    the note says so, with the points it had, and names only the blank cells."""
    horizon = 3 if windows == 1 and n_series != 2 else (1 if n_series == 2 else 2)
    rows = _rows(n_series, horizon, windows, [1.0] * horizon, seed=7)
    crossed, note = cross_calibrated_with_note(rows, horizon)
    m = interval_metrics(crossed)
    assert sorted(k for k, v in m.items() if v is None) == sorted(blank)
    if not blank:
        assert note == ""
        return
    # named as the leaderboard heads them ('cov95 and MSIS'; it said 'coverage95' under a column headed 'cov95')
    assert note.startswith(" and ".join([", ".join(metric_name(c) for c in blank[:-1]), "MSIS"]) + " are blank: ")
    assert says in note and "19 for 95%" in note and "4 for 80%" in note


@pytest.mark.parametrize(("ys", "twin", "flat"), [
    (float_noise.detrended([7.0], 56), float_noise.exact([7.0], 56), True),  # constant at 7 up to float noise
    ([0.1 * 3 * t - 0.3 * t for t in range(56)], float_noise.exact([0.0], 56), True),  # zeros up to float noise
    (float_noise.sine(56), float_noise.exact(float_noise.sine(7), 56), False),  # repeats every 7 up to float noise
    (float_noise.noisy(56), None, False),  # an ordinary series: its measured scale, unchanged
], ids=["constant", "zeros", "sine", "noisy"])
def test_a_history_equal_to_its_exact_twin_up_to_float_noise_gets_the_twins_scale_and_widths(ys, twin, flat):
    """Regression: a history repeating itself up to float noise (100 + 10 sin(2 pi t / 7)) had a MASE scale of
    ~8e-15, taken as measured: zero-width intervals at publish time and backtest scores of ~1e14 in the calibration.
    Its scale is 0 now, so it takes the level stand-in its exact twin takes; values equal up to float noise (0.1 +
    0.2 beside 0.3) are a constant history, published with zero width as the exact constant is."""
    from datetime import datetime, timedelta

    from flowcast.evaluation.metrics import mase_scale

    day = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(56)]

    def frame(values: list[float]) -> pl.DataFrame:  # the series beside a peer whose scale is measured
        return pl.DataFrame({"unique_id": ["a"] * 56 + ["p"] * 56, "ds": day * 2,
                             "y": values + float_noise.noisy(56, seed=1)})

    cutoffs = pl.DataFrame({"unique_id": ["a", "a", "p", "p"], "cutoff": [day[20], day[55]] * 2})
    cal = {"levels": [80, 95], "mode": {"80": "residual", "95": "residual"}, "q": {"80": [1.0], "95": [2.0]}}
    rows = pl.DataFrame({"unique_id": ["a"], "step": [1], "y_hat": [ys[-7]]})

    def got(values: list[float]) -> tuple[pl.DataFrame, pl.DataFrame, float]:
        published = series_scale(frame(values), 7, constant=True).filter(pl.col("unique_id") == "a")
        at_cutoffs = series_scale(frame(values), 7, cutoffs).filter(pl.col("unique_id") == "a")
        out = apply_intervals(rows, cal, published)
        return published, at_cutoffs, out["y_hat_hi95"][0] - out["y_hat_lo95"][0]

    published, at_cutoffs, width = got(ys)
    if twin is None:  # measured: the scale mase_scale gives, bit for bit, and widths of it
        assert float_noise.differs(ys, float_noise.exact(ys[:7], 56))
        own = mase_scale(frame(ys), 7).filter(pl.col("unique_id") == "a")["scale"].item()
        assert published["scale"].item() == own and not published["level_scaled"].item()
        assert width == pytest.approx(4.0 * own)
        return
    assert float_noise.differs(ys, twin)
    twin_published, twin_at_cutoffs, twin_width = got(twin)
    assert published["scale"].item() == pytest.approx(twin_published["scale"].item(), rel=1e-9)
    assert published["level_scaled"].item() == twin_published["level_scaled"].item() == (not flat)
    assert at_cutoffs["scale"].to_list() == pytest.approx(twin_at_cutoffs["scale"].to_list(), rel=1e-9)
    # at the cuts too: a constant history is `constant` there (left out of the calibration), not level-scaled
    assert at_cutoffs["level_scaled"].to_list() == twin_at_cutoffs["level_scaled"].to_list() == [not flat] * 2
    assert at_cutoffs["constant"].to_list() == twin_at_cutoffs["constant"].to_list() == [flat] * 2
    assert width == pytest.approx(twin_width, rel=1e-9, abs=1e-12)
    assert (width == 0.0) == flat and (not flat or published["scale"].item() == 0.0)


def test_a_level_with_too_few_points_is_read_aloud_with_its_article():
    """Regression (newuser27): a weekly file of three series of 1-3 points (one window scoring 2 points) was told
    'naive publishes no 80% interval: its backtest left 2 calibration points, and a 80% conformal interval needs
    at least 4': 'an 80%', as the pooled-steps note beside it already said."""
    cal = calibrate(_rows(1, 2, 1, [1.0, 1.0]), 2)
    assert cal["q"]["80"] == [None, None]
    notes = calibration_notes(cal, "naive")
    assert notes[0] == ("naive publishes no 80% interval: its backtest left 2 calibration points, and an 80% "
                        "conformal interval needs at least 4 (more series or backtest windows give it one).")
    assert notes[1].startswith("naive publishes no 95% interval:") and "and a 95% conformal" in notes[1]


def test_one_calibration_point_is_said_in_the_singular():
    """data43: two points of one series (one window scoring one step) were told 'its backtest left 1 calibration
    points'."""
    notes = calibration_notes(calibrate(_rows(1, 1, 1, [1.0]), 1), "naive")
    assert notes[0].startswith("naive publishes no 80% interval: its backtest left 1 calibration point, and an 80% ")


@pytest.mark.parametrize("season", [4, 12])
def test_pooled_widths_of_a_seasonal_calibration_grow_by_the_season_not_by_the_step(season):
    """Regression: 10-minute data with a daily cycle (season 144, horizon 144, 4 series and 2 windows: 8 points a
    step, pooled) published seasonal_naive's 80% intervals growing as sqrt(h) from 0.23 scales at step 1 to 2.7 at
    step 144, while its errors (one season back) do not grow within the season: 80% quantile 1.4 at step 1.
    The cross-calibrated coverage over all steps was 0.79, but the first steps, the ones observed first, covered
    0.35 (a user's realized coverage: 0.25 and 0). The MASE scale measures errors against the seasonal naive, whose
    h-step error grows with the seasons ahead, ceil(h / m), not with h: the pooled scores are divided by
    sqrt(ceil(h / m)) and step h gets the pooled width x sqrt(ceil(h / m)), flat within a season."""
    horizon = season
    rows = _rows(18, horizon, 1, [1.0] * horizon, seed=21)  # errors that do not grow within the season; 18 < 19 a step
    cal = calibrate(rows, horizon, season_length=season)
    assert cal["pooled_steps"]["95"] == list(range(1, horizon + 1)) and cal["season_length"] == season
    fresh = _rows(1000, horizon, 1, [1.0] * horizon, seed=22)
    got = apply_intervals(fresh, cal)
    was = apply_intervals(fresh, calibrate(rows, horizon))  # season 1: sqrt(h), as it was
    for lv in (80, 95):
        assert cal["q"][str(lv)] == [cal["q"][str(lv)][0]] * horizon  # flat within the season
        for step in (1, horizon):
            now = interval_metrics(got.filter(pl.col("step") == step), levels=(lv,))[f"coverage{lv}"]
            old = interval_metrics(was.filter(pl.col("step") == step), levels=(lv,))[f"coverage{lv}"]
            assert now is not None and old is not None
            assert abs(now - lv / 100) < abs(old - lv / 100), (lv, step, now, old)
            assert abs(now - lv / 100) < 0.1, (lv, step, now)  # 72 or 216 pooled points: conservative, noisy
    assert "square root of the seasons ahead" in calibration_notes(cal, "seasonal_naive")[0]
    # the next season's steps are a season further: sqrt(2) wider
    two = calibrate(_rows(8, 2 * horizon, 1, [1.0] * (2 * horizon), seed=23), 2 * horizon, season_length=season)
    q = two["q"]["80"]
    np.testing.assert_allclose(q, [q[0]] * horizon + [q[0] * math.sqrt(2)] * horizon, rtol=1e-12)
    # the leaderboard's cross-calibration (by halves of the series) grows them alike
    crossed = cross_calibrated(rows, horizon, season_length=season)
    for _, g in crossed.group_by("unique_id"):
        np.testing.assert_allclose(g["y_hat_hi80"].to_numpy(), g["y_hat_hi80"][0], rtol=1e-12)


@pytest.mark.parametrize(("horizon", "factor"), [
    (9, [1.0, 1.0, 1.0]),  # steps 7-9 are in step 6's season (m = 12): its width, not sqrt(h/6) wider
    (15, [1.0] * 6 + [math.sqrt(2)] * 3),  # steps 13-15 are a season further
])
def test_steps_beyond_a_seasonal_calibration_are_widened_by_the_seasons_ahead(horizon, factor):
    """Steps beyond the calibrated ones of a calibration with season m keep the last calibrated width within its
    season and grow by sqrt(ceil(h / m) / ceil(H / m)) after it: the seasonal random walk's growth, the same law
    as the pooled widths (a seasonal naive's errors do not grow within a season, and sqrt(h / 6) widened them)."""
    q80, q95 = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5], [2.0] * 6
    cal = {"levels": [80, 95], "mode": {"80": "residual", "95": "residual"}, "q": {"80": q80, "95": q95},
           "season_length": 12}
    rows = pl.DataFrame({"unique_id": ["a"] * horizon, "step": list(range(1, horizon + 1)),
                         "y_hat": [0.0] * horizon, "scale": [1.0] * horizon})
    got = apply_intervals(rows, cal)
    for lv, q in ((80, q80), (95, q95)):
        np.testing.assert_allclose(got[f"y_hat_hi{lv}"].to_numpy(), [*q, *(q[-1] * f for f in factor)], rtol=1e-12)
    assert calibration_notes(cal, "seasonal_naive", horizon=horizon) == [
        (f"seasonal_naive's 80%/95% intervals at steps 7-{horizon} are beyond the 6 calibrated: widened from step 6 "
         "by sqrt(ceil(h/12) / 1) (the growth of a seasonal random walk's errors: flat within each season of 12 "
         "steps), not calibrated.")]


@pytest.mark.parametrize("flat", [[42.0], [0.0], [42.0, 0.0], [7.0, 7.0, 0.0]], ids=["one-at-42", "zeros", "both", "three"])
def test_constant_histories_beside_a_moving_series_leave_its_calibrated_widths_unchanged(flat):
    """Regression (nu42): a monthly file of one moving series beside a series all 42 and one all zeros published the
    moving series' 95% interval at step 12 35% narrower (+-2,480 against +-3,840 alone). Each constant series'
    backtest errors are 0 (every model forecasts it exactly), so they pulled every pooled quantile towards 0; two of
    three series being level-scaled also turned the whole calibration into levels. A history constant at the cut is
    published with zero width whatever the widths are: its points calibrate nothing now."""
    from datetime import datetime, timedelta

    rng = np.random.default_rng(7)
    n, h, season = 60, 6, 12
    days = [datetime(2020, 1, 1) + timedelta(days=31 * i) for i in range(n)]
    moving = list(1000 + np.cumsum(rng.normal(0, 20, n)))
    ids = {"m": moving, **{f"c{k}": [v] * n for k, v in enumerate(flat)}}
    hist = pl.DataFrame({"unique_id": [u for u in ids for _ in days], "ds": days * len(ids),
                         "y": [v for ys in ids.values() for v in ys]})
    cuts = [days[n - 1 - h * (w + 1)] for w in range(4)]  # 4 windows of h steps, naive from each cut
    rows = pl.DataFrame([{"unique_id": u, "window": w, "step": s, "cutoff": c, "y": ys[days.index(c) + s],
                          "y_hat": ys[days.index(c)]}
                         for u, ys in ids.items() for w, c in enumerate(cuts) for s in range(1, h + 1)])
    scored = rows.join(series_scale(hist, season, rows.select("unique_id", "cutoff").unique()),
                       on=["unique_id", "cutoff"]).drop("cutoff")
    alone = calibrate(scored.filter(pl.col("unique_id") == "m"), h, season_length=season)
    beside = calibrate(scored, h, season_length=season)
    assert "scale" not in beside  # in MASE scales, as the moving series' alone
    assert beside["q"] == alone["q"]
    # a dataset of constant series alone keeps their points: zero widths, as before (not an uncalibrated model)
    only = calibrate(scored.filter(pl.col("unique_id") != "m"), h, season_length=season)
    assert only["q"]["80"] and all(q == 0.0 for q in only["q"]["80"])


def test_a_history_constant_at_its_cut_is_scored_with_the_zero_width_it_is_published_with():
    """data43: a history constant at its cut is published with zero width (`series_scale(constant=True)`), and
    session 42 left its points out of the calibration; but the backtest's cross-calibrated intervals, whose coverage
    and MSIS the leaderboard shows, gave it the level stand-in's width (42 x the others' relative change): a
    coverage the published intervals never have. It is scored with the width it is published with: 0."""
    from datetime import datetime, timedelta

    rng = np.random.default_rng(3)
    n, h, season = 60, 6, 12
    days = [datetime(2020, 1, 1) + timedelta(days=31 * i) for i in range(n)]
    ids = {"m": list(1000 + np.cumsum(rng.normal(0, 20, n))), "c": [42.0] * (n - 3) + [50.0] * 3}
    hist = pl.DataFrame({"unique_id": [u for u in ids for _ in days], "ds": days * len(ids),
                         "y": [v for ys in ids.values() for v in ys]})
    cuts = [days[n - 1 - h * (4 - w)] for w in range(4)]  # window 0 the oldest; the last one's steps 4-6 are 50
    rows = pl.DataFrame([{"unique_id": u, "window": w, "step": s, "cutoff": c, "y": ys[days.index(c) + s],
                          "y_hat": ys[days.index(c)]}
                         for u, ys in ids.items() for w, c in enumerate(cuts) for s in range(1, h + 1)])
    scored = rows.join(series_scale(hist, season, rows.select("unique_id", "cutoff").unique()),
                       on=["unique_id", "cutoff"]).drop("cutoff")
    assert scored.filter(pl.col("unique_id") == "c")["constant"].all()
    crossed = cross_calibrated(scored, h, season_length=season)
    c, m = (crossed.filter(pl.col("unique_id") == u) for u in ("c", "m"))
    # (the 80% interval alone: the windows are calibrated on 6 to 18 points of the moving series, a 95% one needs 19)
    cw, mw = ((f["y_hat_hi80"] - f["y_hat_lo80"]) for f in (c, m))
    assert cw.to_list() == [0.0] * 3 * h
    assert mw.len() == 3 * h and (mw > 0).all()  # the moving series keeps its widths
    # as published: the same series' history up to the last cut, with the calibration of every window
    published = apply_intervals(pl.DataFrame({"unique_id": ["c"] * h, "step": list(range(1, h + 1)),
                                              "y_hat": [42.0] * h}),
                                calibrate(scored, h, season_length=season),
                                series_scale(hist.filter(pl.col("ds") <= cuts[-1]), season, constant=True))
    assert (published["y_hat_hi95"] - published["y_hat_lo95"]).to_list() == [0.0] * h
    # its last window's 50s are misses, as they would be of the published interval [42, 42]
    assert interval_metrics(c)["coverage80"] == pytest.approx(15 / 18)


@pytest.mark.parametrize(("q80", "mode"), [([0.5, 0.5], "residual"), ([None, None], "residual"),
                                           ([0.5, 0.5], "cqr")])
def test_a_constant_series_keeps_its_zero_width_at_a_level_with_too_few_points(q80, mode):
    """cachedir46: a calibration with too few points for 95% (or for 80% too) left the level's bounds null in every row,
    a constant history's too, though its zero residuals make a zero width true at every level. A published constant
    history (scale 0) gets its zero width at such a level; a moving series' bounds stay null there, and its widths at
    a calibrated level are unchanged; backtest rows of a history constant at the cut (`constant`, a stand-in scale)
    keep null there (a coverage of those points alone); without a calibration every bound stays null."""
    cal = {"method": "conformal", "levels": [80, 95], "mode": {"80": mode, "95": mode},
           "q": {"80": q80, "95": [None, None]}}
    rows = pl.DataFrame({"unique_id": ["c", "c", "m", "m"], "step": [1, 2, 1, 2], "y_hat": [7.0, 7.0, 10.0, 11.0],
                         "y_hat_q10": [6.0, 6.0, 9.0, 9.5], "y_hat_q90": [8.0, 8.0, 11.0, 12.5],
                         "y_hat_q2.5": [5.0, 5.0, 8.0, 8.0], "y_hat_q97.5": [9.0, 9.0, 12.0, 14.0]})
    scale = pl.DataFrame({"unique_id": ["c", "m"], "scale": [0.0, 2.0]})
    got = apply_intervals(rows, cal, scale)
    c, m = (got.filter(pl.col("unique_id") == u) for u in ("c", "m"))
    # the zero width: the point forecast, or the quantile network's own band under CQR (as at a calibrated level)
    band = {80: ("y_hat_q10", "y_hat_q90"), 95: ("y_hat_q2.5", "y_hat_q97.5")}
    for lv in (80, 95):
        lo, hi = band[lv] if mode == "cqr" else ("y_hat", "y_hat")
        assert c[f"y_hat_lo{lv}"].to_list() == c[lo].to_list() and c[f"y_hat_hi{lv}"].to_list() == c[hi].to_list()
    assert m["y_hat_lo95"].null_count() == m["y_hat_hi95"].null_count() == 2
    alone = apply_intervals(rows.filter(pl.col("unique_id") == "m"), cal, scale)
    assert m.select("y_hat_lo80", "y_hat_hi80").equals(alone.select("y_hat_lo80", "y_hat_hi80"))
    assert (m["y_hat_lo80"].null_count() == 2) == (q80[0] is None)
    backtest = rows.with_columns(pl.lit(3.0).alias("scale"), (pl.col("unique_id") == "c").alias("constant"))
    scored = apply_intervals(backtest, cal)
    assert scored["y_hat_lo95"].null_count() == scored["y_hat_hi95"].null_count() == scored.height
    unc = apply_intervals(rows, None, scale)
    assert all(unc[c].null_count() == unc.height for c in ("y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95"))


def test_a_single_calibration_point_per_step_is_said_in_the_singular():
    """Regression: one series cut once (a 10-month file) left 1 point a step, and the note said '1 calibration points
    per step'."""
    rows = _rows(1, 9, 1, [1.0] * 9, seed=5)  # 9 points pooled: enough for 80%, not 95%
    notes = calibration_notes(calibrate(rows, 9), "naive")
    assert any("the backtest left 1 calibration point per step, fewer than the 4 an 80% interval needs" in n
               for n in notes), notes


def test_short_cuts_are_naive_from_each_value_of_the_series_shorter_than_the_span():
    """shortiv53b: the series a backtest of span `below` leaves out are cut at each of their values, naive (the last
    value) scored on the later ones up to the horizon; a series of the span or longer gives none."""
    from datetime import datetime, timedelta

    from flowcast.evaluation.conformal import short_cuts

    t0 = datetime(2024, 1, 1)
    hist = pl.DataFrame({"unique_id": ["a"] * 3 + ["b"] * 5 + ["c"],
                         "ds": [t0 + timedelta(days=k) for k in (*range(3), *range(5), 0)],
                         "y": [1.0, 4.0, 9.0, *range(5), 7.0]})
    got = short_cuts(hist, 5, 2)
    assert got.select("unique_id", "step", "y", "y_hat").rows() == [
        ("a", 1, 4.0, 1.0), ("a", 2, 9.0, 1.0), ("a", 1, 9.0, 4.0)]
    assert got["cutoff"].to_list() == [t0, t0, t0 + timedelta(days=1)]


def test_calibrate_short_groups_histories_until_each_has_enough_points_and_routes_by_history():
    """shortiv53b: short cuts are calibrated in levels per group of history lengths (merged from the shortest up until
    a group has MIN_GROUP_POINTS points at step 1); a published series shorter than `below` takes its history's
    group's widths (the backtest's where they are wider), one of `below` or more the backtest's, exactly."""
    from flowcast.evaluation.conformal import MIN_GROUP_POINTS, calibrate_short

    many = MIN_GROUP_POINTS

    def cuts(history: int, n: int, error: float) -> pl.DataFrame:
        return pl.DataFrame({"step": [1] * n, "y": [10.0 + error] * n, "y_hat": [10.0] * n, "history": [history] * n,
                             "level": [10.0] * n, "level_scaled": [history == 1] * n, "constant": [False] * n})

    # history 1: errors of 5 levels (0.5 of 10); histories 2 and 3 (too few alone): 1
    rows = pl.concat([cuts(1, many, 5.0), cuts(2, many // 2, 1.0), cuts(3, many // 2, 1.0)])
    short = calibrate_short(rows, 13, 1, season_length=1)
    assert short is not None and short["below"] == 13
    assert [g["history"] for g in short["groups"]] == [1, 2]
    assert all(g["calibration"]["scale"] == "level" for g in short["groups"])
    assert calibrate_short(cuts(1, many - 1, 5.0), 13, 1) is None  # too few: the backtest's widths stay
    main = calibrate(pl.DataFrame({"step": [1] * 40, "y": [2.0] * 40, "y_hat": [0.0] * 40, "scale": [1.0] * 40}), 1)
    ids = ["one", "four", "wide", "long"]
    published = pl.DataFrame({"unique_id": ids, "step": [1] * 4, "y_hat": [10.0] * 4})
    scale = pl.DataFrame({"unique_id": ids, "scale": [0.1, 0.1, 4.0, 0.1], "history": [1, 4, 1, 40],
                          "level": [10.0] * 4})
    got = apply_intervals(published, {**main, "short": short}, scale)
    width = dict(zip(got["unique_id"], got["y_hat_hi80"] - got["y_hat"]))
    assert width["one"] == pytest.approx(5.0) and width["four"] == pytest.approx(1.0)
    assert width["wide"] == pytest.approx(8.0)  # the backtest's 2 scales of 4: wider than its group's 5
    assert got["unique_id"].to_list() == ids  # in order
    assert got.filter(pl.col("unique_id") == "long").equals(
        apply_intervals(published, main, scale).filter(pl.col("unique_id") == "long"))
    # fixE53: rows with their own `history` (a backtest's, at its cut) route by the published history alone: the long
    # series' early-cut row keeps the backtest's widths, and without a published history every row does
    cut = published.with_columns(pl.lit(1).alias("history"))
    routed = apply_intervals(cut, {**main, "short": short}, scale)
    assert routed.drop("history").equals(got)
    no_history = scale.drop("history")
    assert apply_intervals(cut, {**main, "short": short}, no_history).equals(apply_intervals(cut, main, no_history))


def test_short_cuts_widths_grow_with_the_step_as_their_errors_grew():
    """short54: cuts of 1-4 points score 3 steps at most, and sqrt(h) from them widened later steps of noise around a
    level (errors that do not grow) to twice what covered them. The growth is measured on the cuts (step-k against
    the same cuts' step-1 quantiles), capped at sqrt(h): flat errors keep flat widths beyond the scored steps, errors
    growing with the step grow them by sqrt(h) at most."""
    from flowcast.evaluation.conformal import MAX_SHORT_POWER, MIN_GROUP_POINTS, calibrate_short, short_growth

    rng = np.random.default_rng(54)
    n = 4 * MIN_GROUP_POINTS

    def cuts(grow: float) -> pl.DataFrame:
        rows = []
        for i in range(n):  # cuts at 1 value scoring steps 1-3, at 3 values scoring step 1 alone
            for history, steps in ((1, (1, 2, 3)), (3, (1,))):
                for k in steps:
                    rows.append((f"s{i}", history * 10 + i % 7, k, 10.0 + rng.standard_normal() * k ** grow, 10.0,
                                 history, 10.0))
        return pl.DataFrame(rows, schema=["unique_id", "cutoff", "step", "y", "y_hat", "history", "level"],
                            orient="row").with_columns(pl.col("level").alias("scale"), pl.lit(True).alias("level_scaled"),
                                                       pl.lit(False).alias("constant"))

    flat, walk = short_growth(cuts(0.0)), short_growth(cuts(1.0))
    assert flat.keys() == walk.keys() == {"80", "95"}
    assert all(0 <= b <= 0.15 for b in flat.values()), flat
    assert all(b == MAX_SHORT_POWER for b in walk.values()), walk  # linear growth: capped at sqrt(h)
    published = pl.DataFrame({"unique_id": ["x"] * 6, "step": list(range(1, 7)), "y_hat": [10.0] * 6})
    scale = pl.DataFrame({"unique_id": ["x"], "scale": [1e-9], "history": [3], "level": [10.0]})
    tiny = calibrate(pl.DataFrame({"step": [1] * 40, "y": [0.0] * 40, "y_hat": [0.0] * 40, "scale": [1.0] * 40}), 1)
    for grown, most in ((cuts(0.0), 1.35), (cuts(1.0), 6 ** 0.5 + 1e-9)):
        short = calibrate_short(grown, 13, 6)
        assert short is not None
        got = apply_intervals(published, {**tiny, "short": short}, scale)
        width = (got["y_hat_hi80"] - got["y_hat"]).to_list()
        assert width == sorted(width) and width[5] / width[0] <= most, width  # the history-3 group: step 1 alone
    assert width[5] / width[0] == pytest.approx(6 ** 0.5)
    assert short_growth(cuts(0.0).filter(pl.col("step") == 1)) == {}  # no later step measured: sqrt(h) stays
