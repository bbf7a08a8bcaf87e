"""The Theta and damped-trend baselines: hand-checkable cases and loop-by-loop reference
implementations (one series at a time, plain Python) that the vectorised versions must match
for series of different lengths, seasonal or not."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from model_factories import make_td

from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers
from flowcast.models.baselines import _DAMPED_GRID, BASELINES, baseline_forecast, damped_matrix, theta_matrix
from flowcast.timekeys import local_wall


def _with_y(td, values: dict[str, np.ndarray]):
    """td with each series' y replaced (same lengths)."""
    frame = td.frame.with_columns(
        pl.Series("y", np.concatenate([values[u] for u in td.frame["unique_id"].unique(maintain_order=True)]))
    )
    return dataclasses.replace(td, frame=frame)


def _reference_seasons(y: list[float], h: int, m: int) -> list[float]:
    """Classical multiplicative seasonal indices for n + h steps (all 1 unless the 90% test passes)."""
    n = len(y)
    seas = [1.0] * (n + h)
    if m > 1 and n >= 2 * m and min(y) > 0:
        mean = sum(y) / n
        den = sum((v - mean) ** 2 for v in y)
        r = [sum((y[t] - mean) * (y[t - k] - mean) for t in range(k, n)) / den for k in range(1, m + 1)]
        stat = abs(r[m - 1]) / math.sqrt((1 + 2 * sum(v * v for v in r[: m - 1])) / n)
        if stat > 1.645:
            w = [0.5] + [1.0] * (m - 1) + [0.5] if m % 2 == 0 else [1.0] * m
            w = [v / m for v in w]
            half = len(w) // 2
            ratios: dict[int, list[float]] = {p: [] for p in range(m)}
            for t in range(half, n - half):
                trend = sum(w[j] * y[t - half + j] for j in range(len(w)))
                ratios[t % m].append(y[t] / trend)
            idx = [sum(v) / len(v) if v else 1.0 for p, v in sorted(ratios.items())]
            s = sum(idx) / m
            seas = [idx[t % m] / s for t in range(n + h)]
    return seas


def _reference(y: list[float], h: int, m: int) -> list[float]:
    """forecast::thetaf, one series, in loops (alpha on the same grid, l0 searched numerically)."""
    n = len(y)
    seas = _reference_seasons(y, h, m)
    x = [y[t] / seas[t] for t in range(n)]
    best = None
    for alpha in np.linspace(0.01, 0.99, 99):
        # the best initial level: least squares over l0, errors e_t = x_t - l_t(l0), by brute force
        # on a fine grid refined twice around the minimum (the sum of squares is a parabola in l0)
        def sse_and_level(l0, alpha=alpha):
            level, sse = l0, 0.0
            for t in range(n):
                e = x[t] - level
                sse += e * e
                level += alpha * e
            return sse, level
        lo, hi = min(x) - 1, max(x) + 1
        for _ in range(3):
            grid = np.linspace(lo, hi, 201)
            k = int(np.argmin([sse_and_level(g)[0] for g in grid]))
            lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, 200)]
        sse, level = sse_and_level((lo + hi) / 2)
        if best is None or sse < best[0] - 1e-9:
            best = (sse, float(alpha), level)
    _, alpha, level = best
    tm, xm = (n - 1) / 2, sum(x) / n
    b = sum((t - tm) * (x[t] - xm) for t in range(n)) / sum((t - tm) ** 2 for t in range(n)) / 2
    return [(level + b * (k + (1 - (1 - alpha) ** n) / alpha)) * seas[n + k] for k in range(h)]


def test_theta_matches_the_loop_reference_on_ragged_series():
    # alignment matters: the padded matrix is right-aligned, the seasonal phase counts from the end
    td = make_td(length=[50, 37, 13, 60], horizon=7, period=12, noise=0.3, level=20.0)
    fc = baseline_forecast("theta", td)
    assert fc.columns == ["unique_id", "ds", "step", "y_hat"] and fc.height == 4 * 7
    for uid, part in td.frame.group_by("unique_id"):
        got = fc.filter(pl.col("unique_id") == uid[0])["y_hat"].to_numpy()
        np.testing.assert_allclose(got, _reference(part["y"].to_list(), 7, 12), rtol=1e-6)


def _damped_reference(y: list[float], h: int, m: int) -> list[float]:
    """Damped-trend exponential smoothing, one series, in loops: every (alpha, beta, phi) of the
    grid from a least-squares line through the first 10 observations; the lowest one-step SSE."""
    n = len(y)
    seas = _reference_seasons(y, h, m)
    x = [y[t] / seas[t] for t in range(n)]
    k = min(n, 10)
    km, xm = (k - 1) / 2, sum(x[:k]) / k
    var = sum((j - km) ** 2 for j in range(k))
    b0 = sum((j - km) * (x[j] - xm) for j in range(k)) / var if var else 0.0
    best = None
    for alpha, beta, phi in _DAMPED_GRID:
        level, b, sse = xm - b0 * km - phi * b0, b0, 0.0
        for t in range(n):
            pred = level + phi * b
            e = x[t] - pred
            sse += e * e
            level, b = pred + alpha * e, phi * b + alpha * beta * e
        if best is None or sse < best[0]:
            best = (sse, phi, level, b)
    _, phi, level, b = best
    return [(level + sum(phi**j for j in range(1, s + 1)) * b) * seas[n + s - 1] for s in range(1, h + 1)]


def test_damped_matches_the_loop_reference_on_ragged_series():
    td = make_td(length=[50, 37, 13, 60, 8], horizon=7, period=12, noise=0.3, level=20.0)
    fc = baseline_forecast("damped", td)
    assert fc.columns == ["unique_id", "ds", "step", "y_hat"] and fc.height == 5 * 7
    for uid, part in td.frame.group_by("unique_id"):
        got = fc.filter(pl.col("unique_id") == uid[0])["y_hat"].to_numpy()
        np.testing.assert_allclose(got, _damped_reference(part["y"].to_list(), 7, 12), rtol=1e-6)


def test_damped_continues_a_straight_line_and_damps_a_broken_trend():
    # an exact line: only the undamped trend (phi = 1) fits it without error
    td = make_td(n_series=2, length=40, horizon=6)
    rising_then_flat = np.r_[10 + 2.0 * np.arange(20), np.full(20, 48.0) + 0.5 * np.arange(20)]
    td = _with_y(td, {"s00": 10 + 2.0 * np.arange(40), "s01": rising_then_flat})
    fc = baseline_forecast("damped", td)
    np.testing.assert_allclose(fc["y_hat"].to_numpy()[:6], 10 + 2.0 * np.arange(40, 46), rtol=1e-9)
    steps = np.diff(fc["y_hat"].to_numpy()[6:])  # near the recent slope 0.5, not the old 2, and fading
    ratio = steps[1:] / steps[:-1]  # a damped trend adds phi^k * b at step k: a constant ratio phi < 1
    assert 0.3 < steps[0] < 0.7 and np.allclose(ratio, ratio[0]) and ratio[0] < 1


def test_damped_matrix_skips_gaps_and_the_padding():
    y = np.array([[np.nan, np.nan, 1.0, 2.0, np.nan, 4.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    f = damped_matrix(y, np.array([4, 6]), 3, 1)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[1], [5.0, 5.0, 5.0])


def test_theta_on_a_constant_series_is_that_constant():
    td = make_td(n_series=2, length=30, horizon=5)
    td = _with_y(td, {"s00": np.full(30, 7.0), "s01": np.full(30, -3.0)})
    fc = baseline_forecast("theta", td)
    np.testing.assert_allclose(fc["y_hat"].to_numpy(), [7.0] * 5 + [-3.0] * 5)


def test_theta_continues_an_exact_multiplicative_season():
    pattern = 1 + 0.5 * np.sin(2 * np.pi * np.arange(12) / 12)
    td = make_td(n_series=1, length=48, horizon=18)
    td = _with_y(td, {"s00": 100 * np.tile(pattern, 4)})
    fc = baseline_forecast("theta", td)["y_hat"].to_numpy()
    np.testing.assert_allclose(fc, 100 * np.tile(pattern, 3)[:18], rtol=1e-6)


def test_theta_follows_half_the_slope_of_a_straight_line():
    # SES with alpha near 1 sits on the last value; Theta adds half the slope per step
    td = make_td(n_series=1, length=40, horizon=6)
    td = _with_y(td, {"s00": 10 + 2.0 * np.arange(40)})
    fc = baseline_forecast("theta", td)["y_hat"].to_numpy()
    np.testing.assert_allclose(fc, 10 + 2.0 * 39 + 1.0 * np.arange(1, 7), atol=0.05)


def test_theta_matrix_skips_gaps_and_the_padding():
    y = np.array([[np.nan, np.nan, 1.0, 2.0, np.nan, 4.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    f = theta_matrix(y, np.array([4, 6]), 3, 1)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[1], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_forecasts_every_series_and_step(name):
    td = make_td(length=[30, 5, 24], horizon=14)
    if name == "snaive_week":  # monthly data have no week of periods (refused, below): daily ones
        td = dataclasses.replace(td, meta=dataclasses.replace(td.meta, freq="1d", season_length=7))
    fc = baseline_forecast(name, td)
    assert fc.height == 3 * 14 and fc["y_hat"].null_count() == 0 and fc["y_hat"].is_finite().all()
    assert fc.select("unique_id", "step").is_unique().all()


def test_unknown_baseline_names_the_choices():
    with pytest.raises(ValueError, match="theta"):
        baseline_forecast("drift", make_td())


@pytest.mark.parametrize("name", ["theta", "damped"])
def test_blocks_of_series_give_the_same_forecasts(monkeypatch, name):
    from flowcast.models import baselines

    td = make_td(length=[50, 37, 13, 60, 24], horizon=5, noise=0.3, level=20.0)
    whole = baseline_forecast(name, td)
    monkeypatch.setattr(baselines, "_SERIES_BLOCK", 2)
    blocked = baseline_forecast(name, td)
    assert blocked.drop("y_hat").equals(whole.drop("y_hat"))
    np.testing.assert_allclose(blocked["y_hat"].to_numpy(), whole["y_hat"].to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("model", ["theta", "damped", "dotm", "arima"])
@pytest.mark.parametrize(("level", "pattern"), [
    (-100.0, 10 * np.sin(2 * np.pi * np.arange(12) / 12)),  # every value negative (temperatures below 0, losses)
    (0.0, 10 * np.sin(2 * np.pi * np.arange(12) / 12)),  # crossing 0 (net flows)
    (0.0, 50 * np.maximum(np.sin(2 * np.pi * np.arange(12) / 12), 0)),  # 0 half of every season (solar power)
])
def test_a_seasonal_series_with_values_at_or_below_zero_keeps_its_season(model, level, pattern):
    """Regression: the seasonal adjustment was multiplicative only, for positive series; a seasonal series with a
    value at or below 0 was forecast without its season (a flat line through a weekly pattern of negative values:
    MASE 5.7 where the same data negated scored 0.75). It is now adjusted additively, as statsforecast does."""
    from flowcast.models.stats import arima_matrix, dotm_matrix

    matrix = {"theta": theta_matrix, "damped": damped_matrix, "dotm": dotm_matrix, "arima": arima_matrix}[model]
    y = level + np.tile(pattern, 4)[None, :]  # [1, 48]
    f = matrix(y, np.array([48]), 18, 12)
    np.testing.assert_allclose(f[0], level + np.tile(pattern, 2)[:18], atol=1e-6 * (abs(level) + 50))


def test_a_positive_seasonal_series_keeps_its_multiplicative_season():
    """The additive adjustment is for series with a value at or below 0 only: a positive one (M3, the bundled
    samples) keeps the multiplicative indices it had, the forecasts the same to the last bit."""
    from flowcast.models.baselines import _deseasonalise, _seasonal_indices

    y = 100 * np.tile(1 + 0.5 * np.sin(2 * np.pi * np.arange(12) / 12), 4)[None, :]
    x, seasons = _deseasonalise(y, np.array([48]), 6, 12)
    idx = _seasonal_indices(y, 12)
    assert np.array_equal(x, y / idx[:, np.arange(48) % 12]) and not seasons.add.any()
    assert np.array_equal(seasons.mul, idx[:, np.arange(48, 54) % 12])


def test_a_batch_of_positive_and_non_positive_seasonal_series_is_adjusted_each_its_own_way():
    """One batch (right-aligned, NaN-padded) of a positive seasonal series, one crossing 0 and one too short for
    the test: the positive one gets exactly its multiplicative indices (M3's path, to the last bit), the one
    crossing 0 its additive ones, the short one none; each as `_seasonal_indices` computes it alone."""
    from flowcast.models.baselines import _deseasonalise, _seasonal_indices

    season = np.sin(2 * np.pi * np.arange(12) / 12)
    y = np.full((3, 60), np.nan)
    y[0] = 100 * np.tile(1 + 0.5 * season, 5) + np.linspace(0, 3, 60)
    y[1, 12:] = np.tile(10 * season, 4) + np.linspace(-1, 1, 48)
    y[2, 52:] = np.arange(8.0)
    n = np.array([60, 48, 8])
    x, seasons = _deseasonalise(y, n, 6, 12)
    mul = _seasonal_indices(y[:1], 12)[0]
    add = _seasonal_indices(y[1:2], 12, additive=True)[0]
    assert np.array_equal(x[0], y[0] / mul[np.arange(60) % 12])
    assert np.array_equal(seasons.mul[0], mul[np.arange(60, 66) % 12]) and not seasons.add[0].any()
    assert np.array_equal(x[1], y[1] - add[np.arange(60) % 12], equal_nan=True) and add.any()
    assert np.array_equal(seasons.add[1], add[np.arange(60, 66) % 12]) and (seasons.mul[1] == 1).all()
    assert np.array_equal(x[2], y[2], equal_nan=True) and (seasons.mul[2] == 1).all() and not seasons.add[2].any()


# ------------------------------------------------------------------------ seasonal naive on the local clock
_BERLIN = "Europe/Berlin"


_STEPS = {"30m": timedelta(minutes=30), "1h": timedelta(hours=1), "2h": timedelta(hours=2)}


def _hourly_td(ends: dict[str, datetime], tz: str | None, *, freq: str = "1h", days: int = 4,
               horizon: int = 48, season_days: int = 1) -> TrainingData:
    """Series of `days` days ending at `ends` (naive UTC instants), y = 10 x the hour of Berlin's clock plus
    a tenth of its minutes; the meta of a sub-daily source with `tz` and a season of `season_days` days."""
    parts = [pl.DataFrame({"unique_id": uid, "ds": pl.datetime_range(end - timedelta(days=days), end, freq, eager=True,
                                                                      time_unit="us")}) for uid, end in ends.items()]
    frame = pl.concat(parts).with_columns(y=_berlin_pattern(pl.col("ds"))).sort("unique_id", "ds")
    season = round(timedelta(days=season_days) / _STEPS[freq])
    meta = TrainingMeta(freq=freq, horizon=horizon, lookback=season, val_size=horizon, season_length=season, tz=tz)
    return TrainingData(frame=frame, scalers=fit_scalers(frame, "standard", False), meta=meta)


def _berlin_pattern(ds: pl.Expr) -> pl.Expr:
    """A daily pattern of Berlin's local clock: 10 x its hour + its minutes / 10."""
    wall = local_wall(ds, _BERLIN)
    return wall.dt.hour().cast(pl.Float64) * 10 + wall.dt.minute().cast(pl.Float64) / 10


@pytest.mark.parametrize(("end", "freq", "skipped"), [
    (datetime(2024, 3, 30, 12), "1h", []),  # the change inside the horizon: Sunday's local hours from Saturday's
    (datetime(2024, 3, 31, 0), "1h", []),  # an hour before it: 02:00 on Monday from Saturday, Sunday has none
    # after it: Sunday's 02:00 was skipped (Tuesday's comes from Sunday too: the last season repeats)
    (datetime(2024, 3, 31, 12), "1h", ["2024-04-01 02:00", "2024-04-02 02:00"]),
    (datetime(2024, 3, 31, 12), "30m", ["2024-04-01 02:00", "2024-04-01 02:30", "2024-04-02 02:00", "2024-04-02 02:30"]),
    (datetime(2024, 10, 26, 12), "1h", []),  # the autumn change inside the horizon (its 02:00 twice)
    (datetime(2024, 10, 27, 0, 30), "30m", []),  # inside the repeated hour: its first 02:30 is the last row
    (datetime(2024, 10, 27, 12), "1h", []),  # after it: 25 hours since Saturday
])
def test_seasonal_naive_of_a_zone_repeats_the_local_daily_pattern_across_a_daylight_saving_change(end, freq, skipped):
    """An hourly series of Berlin's clock: after a change 24 UTC steps back are an hour off the local pattern
    (Monday's 09:00 forecast with Sunday's 08:00); 24 local hours are not. Where yesterday's wall time was skipped in
    spring, the hour after it, in the offset before the change (03:00 for 02:00, 03:30 for 02:30)."""
    td = _hourly_td({"be": end}, _BERLIN, freq=freq, horizon=96 if freq == "30m" else 48)
    fc = baseline_forecast("seasonal_naive", td).with_columns(expected=_berlin_pattern(pl.col("ds")),
                                                                wall=local_wall(pl.col("ds"), _BERLIN))
    assert fc.height == td.meta.horizon and fc["y_hat"].null_count() == 0
    off = fc.filter(pl.col("y_hat") != pl.col("expected"))
    assert off["wall"].dt.to_string("%Y-%m-%d %H:%M").to_list() == skipped
    assert (off["y_hat"] == off["expected"] + 10).all()  # the hour after the skipped one
    positional = baseline_forecast("seasonal_naive", dataclasses.replace(
        td, meta=dataclasses.replace(td.meta, tz=None)))
    assert not positional["y_hat"].equals(fc["y_hat"])  # the case crosses a change: by position it is an hour off


def test_seasonal_naive_takes_the_first_of_an_autumn_wall_time_that_repeats():
    """Monday's 02:00 comes from Sunday's first 02:00 (CEST), not from the second (CET)."""
    td = _hourly_td({"be": datetime(2024, 10, 27, 12)}, _BERLIN)
    second = pl.col("ds") == datetime(2024, 10, 27, 1)  # 02:00 CET; 02:00 CEST is 00:00 UTC
    td = dataclasses.replace(td, frame=td.frame.with_columns(y=pl.when(second).then(-1.0).otherwise(pl.col("y"))))
    fc = baseline_forecast("seasonal_naive", td)
    monday_two = fc.filter(pl.col("ds") == datetime(2024, 10, 28, 1))  # 02:00 CET
    assert monday_two["y_hat"].to_list() == [20.0]
    assert -1.0 not in fc["y_hat"].to_list()


_NO_CHANGE = [
    ("Etc/GMT-1", datetime(2024, 3, 31, 12)),  # a fixed offset across Berlin's change: no change
    ("UTC", datetime(2024, 3, 31, 12)),
    (_BERLIN, datetime(2024, 7, 10, 5)),  # no change near the data
    ("Asia/Kolkata", datetime(2024, 3, 31, 12)),  # +05:30 all year
]


@pytest.mark.parametrize(("tz", "end"), _NO_CHANGE)
def test_seasonal_naive_of_a_zone_without_a_change_is_by_position(tz, end):
    """Ragged series, one shorter than a season (naive): the same forecasts as without a tz, value for value."""
    td = _hourly_td({"a": end, "b": end - timedelta(hours=5), "c": end}, tz, days=3)
    short = (pl.col("unique_id") != "c") | (pl.col("ds") > end - timedelta(hours=20))
    td = dataclasses.replace(td, frame=td.frame.filter(short).with_columns(
        y=pl.col("y") + pl.int_range(pl.len()).over("unique_id")))  # no two days alike
    fc = baseline_forecast("seasonal_naive", td)
    plain = baseline_forecast("seasonal_naive", dataclasses.replace(td, meta=dataclasses.replace(td.meta, tz=None)))
    assert fc.equals(plain)
    last_c = td.frame.filter(pl.col("unique_id") == "c")["y"][-1]
    assert fc.filter(pl.col("unique_id") == "c")["y_hat"].unique().to_list() == [last_c]


def test_a_series_shorter_than_a_season_stays_naive_across_a_change():
    """23 hours of Berlin's clock ending after the spring change: 24 local hours back would find a value, but
    seasonal naive needs one season of observations (`MIN_SEASONS`); it repeats the last one."""
    end = datetime(2024, 3, 31, 12)
    td = _hourly_td({"be": end}, _BERLIN)
    td = dataclasses.replace(td, frame=td.frame.filter(pl.col("ds") > end - timedelta(hours=23)))
    fc = baseline_forecast("seasonal_naive", td)
    assert fc["y_hat"].unique().to_list() == [td.frame["y"][-1]]


def test_a_local_time_before_the_first_row_keeps_its_value_by_position():
    """24 rows of Berlin's clock ending after the autumn change span 23 local hours: Sunday's 14:00 a day before
    (Saturday's) is before the first row, and no earlier row exists: 14:00 takes the value by position (the
    first row, Saturday's 15:00), every other hour its own of the day before."""
    end = datetime(2024, 10, 27, 12)  # 13:00 CET
    td = _hourly_td({"be": end}, _BERLIN)
    td = dataclasses.replace(td, frame=td.frame.filter(pl.col("ds") > end - timedelta(hours=24)))
    fc = baseline_forecast("seasonal_naive", td).with_columns(expected=_berlin_pattern(pl.col("ds")),
                                                                wall=local_wall(pl.col("ds"), _BERLIN))
    off = fc.filter(pl.col("y_hat") != pl.col("expected"))
    assert off["step"].to_list() == [1, 25] and off["wall"].dt.hour().to_list() == [14, 14]
    assert off["y_hat"].to_list() == [td.frame["y"][0]] * 2 == [150.0] * 2


def test_an_offset_change_of_part_of_a_period_keeps_the_values_by_position():
    """Lord Howe's clock moves by half an hour: hourly rows are at :00 of its summer time and :30 of its winter
    time, so after the April change no row a day before is at the same local time (the nearest earlier one is
    half a year back): every step takes its value by position, 24 periods back."""
    td = _hourly_td({"lh": datetime(2024, 4, 7, 12)}, "Australia/Lord_Howe")  # the change: 6 April 15:00 UTC
    td = dataclasses.replace(td, frame=td.frame.with_columns(y=pl.int_range(pl.len()).cast(pl.Float64)))
    fc = baseline_forecast("seasonal_naive", td)
    assert fc.equals(baseline_forecast("seasonal_naive", dataclasses.replace(
        td, meta=dataclasses.replace(td.meta, tz=None))))
    assert fc["y_hat"].null_count() == 0


def _weekly(ds: pl.Expr, tz: str | None) -> pl.Expr:
    """Berlin's daily pattern plus 1,000 x the local weekday: no two days of a week alike."""
    wall = local_wall(ds, tz) if tz else ds
    return _berlin_pattern(ds) + wall.dt.weekday().cast(pl.Float64) * 1000


@pytest.mark.parametrize(("tz", "end", "freq", "season_days"), [
    (None, datetime(2024, 7, 10, 5), "30m", 1),
    (_BERLIN, datetime(2024, 4, 2, 12), "30m", 1),  # the spring change 3 days back: a week before is CET, the forecast CEST
    # a season set to a week (preprocess.season_length = 168): still a week back, not 7 seasons (7 weeks)
    (None, datetime(2024, 7, 10, 5), "1h", 7),
    (_BERLIN, datetime(2024, 4, 2, 12), "1h", 7),
])
def test_snaive_week_repeats_the_same_local_time_a_week_before(tz, end, freq, season_days):
    """Half-hourly rows of a day's season (48), hourly ones of a week's (168): snaive_week forecasts each step with
    the value 7 days of the local clock before it (the weekday's own level), where seasonal_naive of a day's season
    repeats the last day; in a zone after a change of offset a week of periods back would be an hour off."""
    td = _hourly_td({"a": end}, tz, freq=freq, days=10, horizon=96, season_days=season_days)
    td = dataclasses.replace(td, frame=td.frame.with_columns(y=_weekly(pl.col("ds"), tz)))
    fc = baseline_forecast("snaive_week", td).with_columns(expected=_weekly(pl.col("ds"), tz))
    assert fc.height == 96 and fc["y_hat"].null_count() == 0
    assert (fc["y_hat"] == fc["expected"]).all()
    if season_days == 1:
        daily = baseline_forecast("seasonal_naive", td)
        assert not (daily["y_hat"] == fc["expected"]).any()  # a day before is another weekday
    if tz:
        positional = baseline_forecast("snaive_week", dataclasses.replace(
            td, meta=dataclasses.replace(td.meta, tz=None)))
        assert not (positional["y_hat"] == fc["expected"]).all()


def test_snaive_week_needs_a_week_of_observations():
    """6 days of half-hourly rows: too few for the value a week before; the series has no forecast of it (null), and
    the fallback chain's next model makes it."""
    from flowcast.models.recipes import min_points, statistical_forecast

    td = _hourly_td({"a": datetime(2024, 7, 10, 5), "b": datetime(2024, 7, 10, 5)}, None, freq="30m", days=10)
    td = dataclasses.replace(td, frame=td.frame.filter(
        (pl.col("unique_id") == "a") | (pl.col("ds") > datetime(2024, 7, 4, 5))))
    assert min_points("snaive_week", 48, "30m") == 336
    fc = statistical_forecast("snaive_week", td, 48)
    assert fc.filter(pl.col("unique_id") == "b")["y_hat"].null_count() == 48
    assert fc.filter(pl.col("unique_id") == "a")["y_hat"].null_count() == 0

# ------------------------------------------------------------------------ seasonal indices on the local clock
_SEASONAL_MEMBERS = ("theta", "damped", "dotm", "arima")
_PEAK_HOUR = 18  # the local hour of the daily peak of `_peaked`


def _member_forecast(name: str, td: TrainingData) -> pl.DataFrame:
    """unique_id, ds, step, y_hat of a statistical member that takes seasonal indices (baselines or stats)."""
    from flowcast.models.stats import statistical_forecast

    return baseline_forecast(name, td) if name in BASELINES else statistical_forecast(name, td)


def _peaked(td: TrainingData, level: float) -> TrainingData:
    """td with y a daily profile of Berlin's clock: level + its hour, plus 40 at 18:00 (every value is negative
    for level -100: additive indices; positive for 100: multiplicative)."""
    wall = local_wall(pl.col("ds"), _BERLIN)
    peak = (wall.dt.hour() == _PEAK_HOUR) & (wall.dt.minute() == 0)
    frame = td.frame.with_columns(y=level + wall.dt.hour().cast(pl.Float64) + pl.when(peak).then(40.0).otherwise(0.0))
    return dataclasses.replace(td, frame=frame)


def _peak_hours(fc: pl.DataFrame) -> list[int]:
    """The local time (Berlin, 'HH:MM') of the largest forecast of each local day whose forecast has 17:00 to
    19:00."""
    wall = local_wall(pl.col("ds"), _BERLIN)
    days = fc.with_columns(wall=wall, day=wall.dt.date(), hour=wall.dt.hour())
    tops = days.group_by("day").agg((pl.col("hour") == _PEAK_HOUR - 1).any() & (pl.col("hour") == _PEAK_HOUR + 1).any(),
                                    pl.col("wall").sort_by("y_hat").last().alias("top"))
    return tops.filter(pl.col("hour")).sort("day")["top"].dt.to_string("%H:%M").to_list()


@pytest.mark.parametrize("name", _SEASONAL_MEMBERS)
@pytest.mark.parametrize("level", [100.0, -100.0])
@pytest.mark.parametrize("freq", ["1h", "30m"])
@pytest.mark.parametrize("end", [
    datetime(2024, 3, 31, 12),  # a day and a half after the spring change: the history mostly CET
    datetime(2024, 3, 30, 12),  # the spring change inside the horizon
    datetime(2024, 10, 27, 12),  # after the autumn change: the history mostly CEST
    datetime(2024, 10, 26, 12),  # the autumn change inside the horizon
])
def test_seasonal_indices_follow_the_local_clock_across_a_daylight_saving_change(name, level, freq, end):
    """Ten days of an hourly (half-hourly) Berlin series peaking at 18:00 local time: after a change each forecast
    day peaks at 18:00 local time. The indices spaced 24 (48) steps apart put the peak at 19:00 (spring) or 17:00
    (autumn) local time for the rest of the series, as without a tz."""
    h = 96 if freq == "30m" else 48
    td = _peaked(_hourly_td({"be": end}, _BERLIN, freq=freq, days=10, horizon=h), level)
    fc = _member_forecast(name, td)
    assert fc.height == h and fc["y_hat"].null_count() == 0
    assert _peak_hours(fc) == ["18:00", "18:00"]
    utc = _member_forecast(name, dataclasses.replace(td, meta=dataclasses.replace(td.meta, tz=None)))
    assert _peak_hours(utc) != _peak_hours(fc)  # the case crosses a change: by position the peak is an hour off


@pytest.mark.parametrize("name", _SEASONAL_MEMBERS)
@pytest.mark.parametrize(("tz", "end"), _NO_CHANGE)
def test_seasonal_indices_of_a_zone_without_a_change_are_by_position(name, tz, end):
    """Ragged seasonal series, one too short for seasonal indices: the same forecasts as without a tz, to the
    last bit."""
    td = _hourly_td({"a": end, "b": end - timedelta(hours=5), "c": end}, tz, days=3)
    short = (pl.col("unique_id") != "c") | (pl.col("ds") > end - timedelta(hours=30))
    td = dataclasses.replace(td, frame=td.frame.filter(short).with_columns(
        y=100 + pl.col("y") + pl.int_range(pl.len()).over("unique_id") / 10))
    fc = _member_forecast(name, td)
    assert fc.equals(_member_forecast(name, dataclasses.replace(td, meta=dataclasses.replace(td.meta, tz=None))))


@pytest.mark.parametrize("name", _SEASONAL_MEMBERS)
def test_a_series_of_a_block_that_no_change_moved_keeps_its_forecast_to_the_last_bit(name):
    """One block: a series across the spring change (its indices by the local clock) and one that ended a week
    before it (horizon included): the second's forecast is the one the same block gets without a tz, value for
    value."""
    td = _peaked(_hourly_td({"moved": datetime(2024, 3, 31, 12), "still": datetime(2024, 3, 24, 12)}, _BERLIN,
                            days=10, horizon=48), 100.0)
    fc = _member_forecast(name, td)
    plain = _member_forecast(name, dataclasses.replace(td, meta=dataclasses.replace(td.meta, tz=None)))
    assert fc.filter(pl.col("unique_id") == "still").equals(plain.filter(pl.col("unique_id") == "still"))
    assert not fc.equals(plain)
    assert _peak_hours(fc.filter(pl.col("unique_id") == "moved")) == ["18:00", "18:00"]


_LORD_HOWE = "Australia/Lord_Howe"


@pytest.mark.parametrize("name", _SEASONAL_MEMBERS)
@pytest.mark.parametrize("freq", ["1h", "2h"])
@pytest.mark.parametrize("end", [
    datetime(2024, 4, 8, 12),  # after April's change (summer +11:00 to winter +10:30, 6 April 15:00 UTC)
    datetime(2024, 10, 7, 12),  # after October's (winter +10:30 to summer +11:00, 5 October 15:30 UTC)
])
def test_an_offset_change_of_part_of_a_period_puts_each_row_in_the_nearest_slot(name, freq, end):
    """Lord Howe's clock moves by half an hour: a row before the change is half an hour off the local times of the
    rows after it, half a period from two of them in hourly data, a quarter from the nearest in 2-hourly data. It
    takes the nearest's slot, of two as near the one by position: the slots are by position, so the forecast is the
    one without a tz, to the last bit (floored, October's winter 18:30 took summer 18:00's slot in hourly data, 17:00's in
    2-hourly, not 19:00's)."""
    td = _hourly_td({"lh": end}, _LORD_HOWE, freq=freq, days=10, horizon=48 if freq == "1h" else 24)
    wall = local_wall(pl.col("ds"), _LORD_HOWE)
    td = dataclasses.replace(td, frame=td.frame.with_columns(
        y=100 + wall.dt.hour().cast(pl.Float64) + pl.when(wall.dt.hour() == 18).then(40.0).otherwise(0.0)))
    fc = _member_forecast(name, td)
    assert fc["y_hat"].null_count() == 0
    assert fc.equals(_member_forecast(name, dataclasses.replace(td, meta=dataclasses.replace(td.meta, tz=None))))


_WEDNESDAY = 3  # polars' weekday: Monday 1


@pytest.mark.parametrize("name", ("seasonal_naive", *_SEASONAL_MEMBERS))
@pytest.mark.parametrize("end", [
    datetime(2024, 4, 1, 12),  # Monday after the spring change: the history mostly CET
    datetime(2024, 10, 28, 12),  # Monday after the autumn change: the history mostly CEST
])
def test_a_weekly_season_of_hourly_data_follows_the_local_clock_across_a_change(name, end):
    """A season of a week of hours (m = 168): four weeks of a Berlin series peaking on Wednesdays at 18:00 local
    time; the forecast of the week after a change peaks on Wednesday at 18:00 local time (by position, 168 steps
    back, at 19:00 after spring's change, 17:00 after autumn's)."""
    td = _hourly_td({"be": end}, _BERLIN, days=28, horizon=168, season_days=7)
    wall = local_wall(pl.col("ds"), _BERLIN)
    peak = (wall.dt.weekday() == _WEDNESDAY) & (wall.dt.hour() == _PEAK_HOUR)
    td = dataclasses.replace(td, frame=td.frame.with_columns(
        y=100 + wall.dt.hour().cast(pl.Float64) + pl.when(peak).then(80.0).otherwise(0.0)))

    def peak_wall(fc: pl.DataFrame) -> str:
        return fc.select(local_wall(pl.col("ds"), _BERLIN).sort_by(pl.col("y_hat")).last().dt.to_string("%a %H:%M")
                         ).item()

    fc = _member_forecast(name, td)
    assert fc.height == 168 and fc["y_hat"].null_count() == 0
    assert peak_wall(fc) == "Wed 18:00"
    plain = _member_forecast(name, dataclasses.replace(td, meta=dataclasses.replace(td.meta, tz=None)))
    assert peak_wall(plain) == ("Wed 19:00" if end.month == 4 else "Wed 17:00")


def _clock_periods_per_row(td: TrainingData, fut: pl.DataFrame, step_us: int) -> pl.DataFrame:
    """`_clock_periods` as it was computed before it converted each distinct time once: every row's wall time
    converted in its series' group (the reference the per-distinct path must equal)."""
    tz = td.meta.tz

    def periods(ds: pl.Expr, last: pl.Expr) -> pl.Expr:
        wall = (local_wall(ds, tz) - local_wall(last, tz)).dt.total_microseconds()
        floor, rest = wall // step_us, wall % step_us
        by_position = (ds - last).dt.total_microseconds() // step_us
        return (pl.when(2 * rest < step_us).then(floor).when(2 * rest > step_us).then(floor + 1)
                .otherwise(floor + (by_position > floor).cast(pl.Int64)))

    past = td.frame.group_by("unique_id", maintain_order=True).agg(
        periods(pl.col("ds"), pl.col("ds").last()).alias("__past"), pl.col("ds").last().alias("__last"))
    ahead = fut.sort("unique_id", "step").join(past.select("unique_id", "__last"), on="unique_id",
                                               maintain_order="left").group_by(
        "unique_id", maintain_order=True).agg(periods(pl.col("ds"), pl.col("__last")).alias("__ahead"))
    return past.drop("__last").join(ahead, on="unique_id", how="left", maintain_order="left")


@pytest.mark.parametrize(("tz", "freq", "ends"), [
    # Berlin 2024: spring 31 March 01:00 UTC, autumn 27 October 01:00 UTC; series of 7 months across both, one
    # whose horizon crosses the autumn change, one whose crosses the spring change, one inside the autumn night
    (_BERLIN, "1h", {"both": datetime(2024, 10, 28, 12), "horizon_autumn": datetime(2024, 10, 26, 20),
                     "horizon_spring": datetime(2024, 3, 30, 9), "autumn_night": datetime(2024, 10, 27, 1)}),
    # Lord Howe's half-hour changes (April, October 2024) in hourly data: rows off the slots' wall times
    (_LORD_HOWE, "1h", {"both": datetime(2024, 10, 9, 12), "horizon_october": datetime(2024, 10, 5, 3)}),
    (_BERLIN, "30m", {"both": datetime(2024, 10, 28, 12), "horizon_spring": datetime(2024, 3, 30, 9, 30)}),
])
def test_clock_periods_per_distinct_time_are_the_per_row_ones(tz, freq, ends):
    """`_clock_periods` converts each distinct time of the frame and the horizon once and joins it back to the
    rows: on series that start and end at different times (one on the half hour, one of a single row) across both
    of the zone's changes, each row's and step's periods are the per-row conversion's, value for value."""
    from flowcast.models.baselines import _clock_periods, _clock_step_us

    starts = [datetime(2024, 2, 20, 7), datetime(2024, 3, 29, 23), datetime(2024, 9, 1), datetime(2024, 10, 26, 5)]
    parts = [pl.DataFrame({"unique_id": uid, "ds": pl.datetime_range(min(starts[i % 4], end), end, freq, eager=True,
                                                                      time_unit="us")})
             for i, (uid, end) in enumerate(ends.items())]
    parts.append(pl.DataFrame({"unique_id": "half_past", "ds": pl.datetime_range(  # off the others' times
        datetime(2024, 3, 1, 0, 30), datetime(2024, 10, 27, 0, 30), "1h", eager=True, time_unit="us")}))
    parts.append(pl.DataFrame({"unique_id": "one_row", "ds": [datetime(2024, 10, 27, 0)]},
                              schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us")}))
    frame = pl.concat(parts).with_columns(y=pl.lit(1.0)).sort("unique_id", "ds")
    td = _hourly_td({"x": datetime(2024, 1, 1)}, tz, freq=freq, horizon=48)
    td = dataclasses.replace(td, frame=frame, scalers=fit_scalers(frame, "standard", False))
    fut = td.future_frame(48).select("unique_id", "ds", "step")
    step_us = _clock_step_us(td)
    assert step_us is not None
    fast, slow = _clock_periods(td, fut, step_us), _clock_periods_per_row(td, fut, step_us)
    assert fast.equals(slow)
    assert fast.height == frame["unique_id"].n_unique() and fast["__ahead"].list.len().unique().to_list() == [48]
    # Berlin's hour moves some rows' and steps' periods off their places by position (the case crosses a change);
    # Lord Howe's half hour moves none (of two slots as near, the one by position)
    by_position = fast.select((pl.col("__past").list.first() == 1 - pl.col("__past").list.len().cast(pl.Int64))
                              & (pl.col("__ahead").list.last() == 48)).to_series()
    assert by_position.all() == (tz == _LORD_HOWE)


@pytest.mark.parametrize(("freq", "dates"), [
    ("1d", pl.date_range(datetime(2024, 1, 1), datetime(2024, 2, 9), "1d", eager=True)),
    ("1b", pl.date_range(datetime(2024, 1, 1), datetime(2024, 2, 9), "1d", eager=True).filter(
        pl.date_range(datetime(2024, 1, 1), datetime(2024, 2, 9), "1d", eager=True).dt.weekday() <= 5)),
])
def test_snaive_week_of_daily_data_is_the_same_weekday_a_week_before(freq, dates):
    """Daily data (a week's season, 7) and business days (5): the value 7 days before, not 7 seasons (49 days,
    longer than these 40 days: the last value repeated)."""
    ds = dates.cast(pl.Datetime("us"))
    frame = pl.DataFrame({"unique_id": "a", "ds": ds, "y": ds.dt.weekday().cast(pl.Float64) * 1000
                          + pl.int_range(ds.len(), eager=True).cast(pl.Float64)})
    season = 7 if freq == "1d" else 5
    meta = TrainingMeta(freq=freq, horizon=10, lookback=season, val_size=10, season_length=season, tz=None)
    td = TrainingData(frame=frame, scalers=fit_scalers(frame, "standard", False), meta=meta)
    fc = baseline_forecast("snaive_week", td)
    back = [frame.filter(pl.col("ds") == d - timedelta(days=7 * w))["y"] for d in fc["ds"] for w in (1, 2)]
    expected = [b1[0] if b1.len() else b2[0] for b1, b2 in zip(back[::2], back[1::2])]
    assert fc["y_hat"].to_list() == expected and fc["y_hat"].n_unique() == season


@pytest.mark.parametrize("freq", ["1w", "1mo", "5d"])
def test_snaive_week_of_data_without_a_week_of_periods_names_the_frequency(freq):
    frame = pl.DataFrame({"unique_id": "a", "ds": pl.datetime_range(datetime(2020, 1, 1), datetime(2021, 1, 1), freq,
                                                                     eager=True, time_unit="us")}).with_columns(y=1.0)
    meta = TrainingMeta(freq=freq, horizon=4, lookback=4, val_size=4, season_length=4, tz=None)
    td = TrainingData(frame=frame, scalers=fit_scalers(frame, "standard", False), meta=meta)
    with pytest.raises(ValueError, match=f"snaive_week .* frequency '{freq}'"):
        baseline_forecast("snaive_week", td)
