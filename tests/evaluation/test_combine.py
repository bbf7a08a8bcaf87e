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


@pytest.mark.parametrize("group, expected", [
    (None, [np.sqrt(2.5), 0.0]),  # one group: the root of the mean squared scaled error
    (np.array([0, 1]), [1.5, 0.0]),  # two (series, window) pairs: each one's root, averaged, as the board does
    (np.array([1, 0]), [1.5, 0.0]),  # the codes' order does not matter
])
def test_rmsse_loss_is_the_boards_rmsse_by_hand(group, expected):
    """Points of series whose squared RMSSE scales are 1 and 4: errors 1 and 4 -> scaled squares 1 and 4."""
    pred = np.array([[1.0, 4.0], [0.0, 0.0]])
    got = loss("rmsse", pred, np.zeros(2), np.array([1.0, 4.0]), group)
    np.testing.assert_allclose(got, expected)


def test_rmsse_loss_groups_need_not_be_contiguous():
    """Pairs 0, 1, 0, 1 with scaled squares 1, 4, 9, 16: pair 0's root mean sqrt(5), pair 1's sqrt(10)."""
    pred = np.array([[1.0, 2.0, 3.0, 4.0]])
    got = loss("rmsse", pred, np.zeros(4), np.ones(4), np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(got, [(np.sqrt(5) + np.sqrt(10)) / 2])


def test_rmsse_fit_weighs_each_series_by_its_rmsse_scale_not_the_mase_one():
    """Series A (pair 0) moves 10 a step but 1 a season: MASE scale 1, RMSSE scale 10 (squared 100); series B
    (pair 1) the opposite-ish: MASE scale 4, RMSSE scale 1. Model a is exact on A and off by 4 on B, b exact on B
    and off by 2 on A. Scaled by MASE's scale A's errors count most (all weight on a); by RMSSE's, B's do (all on
    b), and those weights score the lower RMSSE on the points they were fitted on."""
    y = np.zeros(4)
    pair = np.array([0, 0, 1, 1])
    a = np.array([0.0, 0.0, 4.0, 4.0])
    b = np.array([2.0, 2.0, 0.0, 0.0])
    F = np.stack([a, b])
    mase_scale, scale_sq = np.array([1.0, 1.0, 4.0, 4.0]), np.array([100.0, 100.0, 1.0, 1.0])
    w_mase = fit_weights(F, y, mase_scale, "mase")
    w_rmsse = fit_weights(F, y, scale_sq, "rmsse", group=pair)
    np.testing.assert_allclose(w_mase, [1.0, 0.0])
    np.testing.assert_allclose(w_rmsse, [0.0, 1.0])

    def rmsse(w):  # the board's: per pair sqrt(mean e^2 / scale_sq), averaged over the pairs
        e2 = (w @ F - y) ** 2 / scale_sq
        return np.mean([np.sqrt(e2[pair == p].mean()) for p in (0, 1)])

    assert rmsse(w_rmsse) == pytest.approx(0.1) and rmsse(w_mase) == pytest.approx(2.0)  # (0.2 + 0) / 2, (0 + 4) / 2
    by = weights_by_window(F, y, scale_sq, np.array([0, 0, 1, 1]), "rmsse", group=pair)
    np.testing.assert_allclose(by[1], [1.0, 0.0])  # window 1 learns on pair 0 (series A) alone: a is exact there


def test_a_zero_or_undefined_rmsse_scale_leaves_its_points_out_of_the_fit():
    """The board leaves a series whose RMSSE scale is 0 (a constant history) or undefined out; so does the fit."""
    F = np.stack([np.array([0.0, 0.0, 5.0]), np.array([1.0, 1.0, 0.0])])
    y = np.zeros(3)
    for bad in (0.0, np.nan):
        np.testing.assert_allclose(fit_weights(F, y, np.array([1.0, 1.0, bad]), "rmsse", group=np.array([0, 0, 1])),
                                   [1.0, 0.0])


@pytest.mark.parametrize("metric", ["mase", "mae", "rmse", "smape"])
def test_the_pair_codes_change_nothing_for_the_point_mean_metrics(metric):
    """Only RMSSE groups its points: every other metric's weights are bit-identical with or without codes."""
    rng = np.random.default_rng(3)
    F = rng.normal(10, 3, (3, 60))
    y = rng.normal(10, 3, 60)
    scale = rng.uniform(0.5, 2.0, 60)
    pair = rng.integers(0, 7, 60)
    window = np.repeat([0, 1, 2], 20)
    assert fit_weights(F, y, scale, metric).tolist() == fit_weights(F, y, scale, metric, group=pair).tolist()
    plain = weights_by_window(F, y, scale, window, metric)
    coded = weights_by_window(F, y, scale, window, metric, group=pair)
    assert {k: v.tolist() for k, v in plain.items()} == {k: v.tolist() for k, v in coded.items()}
