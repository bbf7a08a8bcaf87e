"""Learned combination weights: the simplex grid, the fit, and no window scored with its own weights."""

from __future__ import annotations

import numpy as np
import pytest

from flowcast.evaluation.combine import describe_weights, fit_weights, loss, simplex_grid, weights_by_window


@pytest.mark.parametrize("k, r, n", [(1, 10, 1), (2, 10, 11), (3, 10, 66), (5, 10, 1001)])
def test_simplex_grid_is_every_point_once(k, r, n):
    g = simplex_grid(k, r)
    assert g.shape == (n, k)
    np.testing.assert_allclose(g.sum(axis=1), 1.0)
    assert (g >= 0).all() and len({tuple(row) for row in g}) == n


@pytest.mark.parametrize("metric", ["mase", "mae", "rmse", "smape", "rmsse"])
def test_fit_recovers_the_mix_that_made_the_target(metric):
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(100, 10, 500) for _ in range(3))
    y = 0.3 * a + 0.7 * b
    w = fit_weights(np.stack([a, b, c]), y, np.full(500, 2.0), metric, resolution=10)
    np.testing.assert_allclose(w, [0.3, 0.7, 0.0], atol=1e-12)


def test_points_with_a_missing_input_are_left_out_and_ties_go_to_equal_weights():
    a = np.array([1.0, 2.0, np.nan, 4.0])
    y = np.array([1.0, 2.0, 99.0, 4.0])
    np.testing.assert_allclose(fit_weights(np.stack([a, a]), y, np.ones(4), "mae"), [0.5, 0.5])
    np.testing.assert_allclose(fit_weights(np.stack([a, a + 1]), y, np.ones(4), "mae"), [1.0, 0.0])
    # nothing usable: equal weights
    np.testing.assert_allclose(fit_weights(np.full((2, 3), np.nan), np.ones(3), np.ones(3), "mae"), [0.5, 0.5])


def test_each_window_is_forecast_with_weights_fitted_on_the_earlier_windows_only():
    """Model a is exact on window 0 and wrong on window 1, b the opposite: window 1's weights come
    from window 0 (all on a), never from window 1's own actuals (which would put all on b)."""
    y = np.arange(20, dtype=float)
    window = np.repeat([0, 1], 10)
    a = np.where(window == 0, y, y + 5)
    b = np.where(window == 1, y, y - 5)
    F = np.stack([a, b])
    w = weights_by_window(F, y, np.ones(20), window, "mae")
    np.testing.assert_allclose(w[0], [0.5, 0.5])  # no earlier window: equal weights
    np.testing.assert_allclose(w[1], [1.0, 0.0])  # learned on window 0 only
    pooled = fit_weights(F, y, np.ones(20), "mae")  # the published weights see every window
    np.testing.assert_allclose(pooled, [0.5, 0.5])


@pytest.mark.parametrize("shrink, expected", [(0.0, [0.3, 0.7, 0.0]), (0.5, [0.15 + 1 / 6, 0.35 + 1 / 6, 1 / 6]),
                                              (1.0, [1 / 3, 1 / 3, 1 / 3])])
def test_shrink_moves_the_fitted_weights_towards_equal_ones(shrink, expected):
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(100, 10, 200) for _ in range(3))
    F, y = np.stack([a, b, c]), 0.3 * a + 0.7 * b
    w = fit_weights(F, y, np.ones(200), "mae", shrink=shrink)
    np.testing.assert_allclose(w, expected, atol=1e-12)
    assert w.sum() == pytest.approx(1.0)
    window = np.repeat([0, 1], 100)  # window 1's weights are shrunk too; window 0's are equal already
    by = weights_by_window(F, y, np.ones(200), window, "mae", shrink=shrink)
    np.testing.assert_allclose(by[0], [1 / 3] * 3)
    np.testing.assert_allclose(by[1], expected, atol=1e-12)


def test_describe_weights_in_words():
    assert describe_weights(["gru", "theta", "damped"], [0.6, 0.4, 0.0]) == "0.6 x gru + 0.4 x theta"


def test_rmsse_loss_is_the_mean_squared_scaled_error_by_hand():
    """Points of series scaled 1 and 2: errors 1 and 4 -> scaled 1 and 2 -> mean square (1 + 4) / 2."""
    pred = np.array([[1.0, 4.0], [0.0, 0.0]])
    got = loss("rmsse", pred, np.zeros(2), np.array([1.0, 2.0]))
    np.testing.assert_allclose(got, [2.5, 0.0])
