"""The dynamic optimised Theta model, the random walk with drift and the global linear model (flowcast.models.stats):
a loop-by-loop reference of DOTM written from the paper's equations (the trend line refitted by
ordinary least squares at every step, the initial level searched numerically) that the vectorised
version must match on ragged seasonal series, and hand-checkable cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from model_factories import make_td
from test_baselines import _reference_seasons, _with_y

from flowcast.models.stats import (
    ARIMA_MAX_P,
    DOTM_GRID,
    STATISTICAL_MODELS,
    arima_matrix,
    dotm_matrix,
    drift_matrix,
    glin_coefficients,
    glin_lags,
    glin_matrix,
    glin_normal_equations,
    statistical_forecast,
)


def _line(x: list[float]) -> tuple[float, float]:
    """Intercept A and slope B of the least-squares line through x_1..x_t at times 1..t."""
    t = len(x)
    if t == 1:
        return x[0], 0.0
    tm, xm = (t + 1) / 2, sum(x) / t
    b = sum((j + 1 - tm) * (v - xm) for j, v in enumerate(x)) / sum((j + 1 - tm) ** 2 for j in range(t))
    return xm - b * tm, b


def _dotm_reference(y: list[float], h: int, m: int) -> list[float]:
    n = len(y)
    seas = _reference_seasons(y, h, m)
    x = [y[t] / seas[t] for t in range(n)]
    best = None
    for alpha, theta in DOTM_GRID:
        k = 1 - 1 / theta

        def run(l0, steps=0, alpha=alpha, k=k):
            level, sse, out = alpha * x[0] + (1 - alpha) * l0, 0.0, []
            hist = [x[0]]
            for t in range(1, n + steps):
                a, b = _line(hist)  # refitted on everything seen (forecasts included beyond n)
                mu = level + k * (a * (1 - alpha) ** t + b * (1 - (1 - alpha) ** (t + 1)) / alpha)
                obs = x[t] if t < n else mu
                if t < n:
                    sse += (obs - mu) ** 2
                else:
                    out.append(mu)
                level = alpha * obs + (1 - alpha) * level
                hist.append(obs)
            return sse, out

        # the SSE is a parabola in l0: three evaluations give its minimum exactly
        s0, s1, s2 = run(-1.0)[0], run(0.0)[0], run(1.0)[0]
        curv = s0 - 2 * s1 + s2
        l0 = (s0 - s2) / (2 * curv) if curv > 1e-12 else x[0]
        sse, out = run(l0, steps=h)
        if best is None or sse < best[0] - 1e-7:
            best = (sse, out)
    return [v * seas[n + s] for s, v in enumerate(best[1])]


def test_dotm_matches_the_loop_reference_on_ragged_series():
    td = make_td(length=[30, 13, 7], horizon=6, period=4, noise=0.5, level=20.0)
    fc = statistical_forecast("dotm", td)
    assert fc.columns == ["unique_id", "ds", "step", "y_hat"] and fc.height == 3 * 6
    for uid, part in td.frame.group_by("unique_id"):
        got = fc.filter(pl.col("unique_id") == uid[0])["y_hat"].to_numpy()
        np.testing.assert_allclose(got, _dotm_reference(part["y"].to_list(), 6, 4), rtol=1e-4)


def test_dotm_follows_a_straight_line_more_than_theta():
    # on a line A_t, B_t are exact and a larger theta weighs the line more: the fit takes the
    # largest theta of the grid (6), whose forecasts rise by 5/6 of the slope (Theta's by 1/2)
    y = 5 + 3.0 * np.arange(30)
    f = dotm_matrix(y[None, :], np.array([30]), 4, 1)[0]
    assert np.all((np.diff(f) > 2.4) & (np.diff(f) < 3.0))
    assert 5 + 3.0 * 29 < f[0] < 5 + 3.0 * 30


def test_dotm_on_one_or_two_observations_and_padding():
    y = np.array([[np.nan, np.nan, np.nan, 7.0], [np.nan, np.nan, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    f = dotm_matrix(y, np.array([1, 2, 4]), 3, 1)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[0], 7.0)  # one observation: nothing else to go on
    np.testing.assert_allclose(f[2], 1.0)


def test_drift_extends_the_average_change():
    y = np.array([[np.nan, 1.0, 3.0, 4.0, 7.0], [2.0, 2.0, 2.0, 2.0, 2.0], [np.nan, np.nan, np.nan, np.nan, 5.0]])
    f = drift_matrix(y, np.array([4, 5, 1]), 3, 1)
    np.testing.assert_allclose(f, [[9.0, 11.0, 13.0], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]])


def _seasonal_rows(levels: list[float], lengths: list[int], m: int = 4, width: int = 30) -> np.ndarray:
    """Right-aligned rows: level x (1 + 0.2 x a pattern repeating every m periods)."""
    pattern = np.array([1.0, 1.3, 0.8, 0.9])[:m]
    y = np.full((len(levels), width), np.nan)
    for i, (lv, n) in enumerate(zip(levels, lengths)):
        y[i, width - n:] = lv * pattern[np.arange(n) % m]
    return y


def test_glin_learns_a_shared_pattern_and_scales_it_to_each_series():
    # every series repeats one seasonal pattern at its own level: the pooled model, fitted on
    # scaled windows, continues each series' pattern at that series' level (within a few percent:
    # the windows that reach back before a short series' start see its padding, not the pattern;
    # a flat forecast would be 20-30% off at the peaks)
    lengths = [30, 24, 20, 30, 17]
    y = _seasonal_rows([1.0, 50.0, 3.0, 1000.0, 7.0], lengths)
    f = glin_matrix(y, np.array(lengths), 6, 4)  # [S, h]
    pattern = np.array([1.0, 1.3, 0.8, 0.9])
    for i, (lv, n) in enumerate(zip([1.0, 50.0, 3.0, 1000.0, 7.0], lengths)):
        np.testing.assert_allclose(f[i], lv * pattern[np.arange(n, n + 6) % 4], rtol=0.05)


def test_glin_without_a_whole_window_forecasts_nothing_and_pads_short_series():
    assert glin_lags(4) == 8 and glin_lags(12) == 24 and glin_lags(1) == 6
    short = np.array([[np.nan, 1.0, 2.0, 3.0]])  # 3 points: no window of 8 inputs and 6 outputs
    assert np.isnan(glin_matrix(short, np.array([3]), 6, 4)).all()
    assert glin_coefficients(*glin_normal_equations(short, np.array([3]), 6, 4)) is None
    # a series shorter than the inputs (or with one point) still gets a finite forecast from the others'
    lengths = [30, 30, 30, 3, 1]
    y = _seasonal_rows([2.0, 5.0, 9.0, 4.0, 6.0], lengths)
    f = glin_matrix(y, np.array(lengths), 6, 4)
    assert np.isfinite(f).all()
    assert np.isfinite(glin_matrix(np.zeros((2, 20)), np.array([20, 20]), 3, 4)).all()  # zero scale


def test_glin_learns_from_the_latest_origins_only(monkeypatch):
    from flowcast.models import stats

    y = _seasonal_rows([2.0, 5.0], [30, 30])
    assert glin_normal_equations(y, np.array([30, 30]), 6, 4)[2] == 2 * (30 - 6 + 1 - 4)  # every origin
    monkeypatch.setattr(stats, "GLIN_ORIGINS", 3)
    assert glin_normal_equations(y, np.array([30, 30]), 6, 4)[2] == 2 * 3


def _arima_reference(y: list[float], h: int, m: int) -> list[float]:
    """ARIMA(p, 1, 0) [+ drift] one series at a time: every order and drift fitted by np.linalg.lstsq,
    the stationary fit with the smallest AICc kept, forecast by recursion on the differences."""
    n = len(y)
    seas = _reference_seasons(y, h, m)
    x = np.array([y[t] / seas[t] for t in range(n)])
    z = np.diff(x)
    best = None
    for p in range(ARIMA_MAX_P + 1):
        for drift in (False, True):
            rows = len(z) - p
            k = p + drift + 1
            if rows - k - 1 <= 0:
                continue
            X = np.array([[z[t - j] for j in range(1, p + 1)] + ([1.0] if drift else []) for t in range(p, len(z))])
            Y = z[p:]
            coef = np.linalg.lstsq(X, Y, rcond=None)[0] if X.size else np.zeros(0)
            res = Y - (X @ coef if X.size else 0.0)
            if p and np.abs(np.roots(np.r_[1.0, -coef[:p]])).max() >= 1.0:
                continue
            aicc = rows * np.log(res @ res / rows) + 2 * k + 2 * k * (k + 1) / (rows - k - 1)
            if best is None or aicc < best[0]:
                best = (aicc, p, drift, coef)
    out, level, hist = [], x[-1], list(z)
    for _ in range(h):
        if best is None:
            dz = 0.0
        else:
            _, p, drift, coef = best
            dz = sum(coef[j] * hist[-1 - j] for j in range(p)) + (coef[p] if drift else 0.0)
        level += dz
        hist.append(dz)
        out.append(level)
    return [v * seas[n + s] for s, v in enumerate(out)]


def test_arima_matches_the_loop_reference_on_ragged_series():
    rng = np.random.default_rng(3)
    lengths = [40, 23, 9, 4, 31]
    rows = []
    for i, n in enumerate(lengths):  # a random walk with some momentum, a drift and a season of 4
        d = np.zeros(n)
        for t in range(1, n):
            d[t] = 0.5 * d[t - 1] * (-1) ** i + rng.normal(0.3 * i, 1.0)
        rows.append(50 + np.cumsum(d) + 3 * np.sin(np.arange(n) * np.pi / 2))
    y = np.full((len(lengths), max(lengths)), np.nan)
    for i, r in enumerate(rows):
        y[i, -len(r):] = r
    got = arima_matrix(y, np.array(lengths), 6, 4)
    for i, r in enumerate(rows):
        np.testing.assert_allclose(got[i], _arima_reference(list(r), 6, 4), rtol=1e-7, atol=1e-7)


def test_arima_learns_momentum_in_the_changes():
    # changes that follow z_t = 0.8 z_(t-1) + noise, the last one large: the forecast's changes
    # shrink by about 0.8 a step (a random walk would repeat the last value, a drift the mean change)
    rng = np.random.default_rng(0)
    z = [0.0]
    for _ in range(300):
        z.append(0.8 * z[-1] + rng.normal(0.0, 0.2))
    z.append(5.0)
    y = np.cumsum([10.0, *z])[None, :]
    f = arima_matrix(y, np.array([y.shape[1]]), 3, 1)[0]
    steps = np.diff(np.r_[y[0, -1], f])
    np.testing.assert_allclose(steps / np.r_[5.0, steps[:-1]], 0.8, atol=0.08)


def test_arima_on_short_series_is_the_last_value():
    y = np.array([[np.nan, np.nan, 4.0, 6.0], [np.nan, np.nan, np.nan, 7.0], [np.nan] * 4])
    got = arima_matrix(y, np.array([2, 1, 0]), 2, 1)
    np.testing.assert_allclose(got[:2], [[6.0, 6.0], [7.0, 7.0]])
    assert np.isnan(got[2]).all()


@pytest.mark.parametrize("name", ["dotm", "drift", "arima", "glin", "croston", "tsb", "adida"])
def test_blocks_of_series_give_the_same_forecasts(monkeypatch, name):
    from flowcast.models import baselines

    td = make_td(length=[50, 37, 13, 60, 24], horizon=5, noise=0.3, level=20.0)
    td = _with_y(td, {u: v for u, v in zip([f"s{i:02d}" for i in range(5)],
                                          [np.linspace(1, 9, n) ** 1.3 for n in (50, 37, 13, 60, 24)])})
    whole = statistical_forecast(name, td)
    monkeypatch.setattr(baselines, "_SERIES_BLOCK", 2)
    blocked = statistical_forecast(name, td)
    assert whole.columns == ["unique_id", "ds", "step", "y_hat"] and whole.height == 5 * 5
    np.testing.assert_allclose(blocked["y_hat"].to_numpy(), whole["y_hat"].to_numpy(), rtol=1e-10)


def test_unknown_model_names_the_choices():
    assert set(STATISTICAL_MODELS) == {"dotm", "drift", "arima", "glin", "croston", "tsb", "adida"}
    with pytest.raises(ValueError, match="dotm"):
        statistical_forecast("ets", make_td())


def test_arima_edge_cases_give_finite_sane_forecasts():
    """Review of the new member (no bug found): a constant and an all-zero series stay flat, a negative line and a
    line at 1e12 keep their slope, an interior gap is skipped, five points are enough for the drift."""
    t = np.arange(32, dtype=float)
    gap = 300 + 2 * t
    gap[20:22] = np.nan
    rows = [np.full(32, 100.0), np.zeros(32), -50 + 3 * t, 1e12 + 1e9 * t, gap]
    y = np.stack(rows + [np.r_[np.full(27, np.nan), [1.0, 2.0, 3.0, 4.0, 5.0]]])
    got = arima_matrix(y, np.array([32] * 5 + [5]), 4, 4)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], 100.0)
    np.testing.assert_allclose(got[1], 0.0)
    np.testing.assert_allclose(got[2], -50 + 3 * np.arange(32, 36), rtol=1e-6)
    np.testing.assert_allclose(got[3], 1e12 + 1e9 * np.arange(32, 36), rtol=1e-9)
    np.testing.assert_allclose(got[4], 300 + 2 * np.arange(32, 36), rtol=1e-6)
    np.testing.assert_allclose(got[5], [6.0, 7.0, 8.0, 9.0], rtol=1e-6)
