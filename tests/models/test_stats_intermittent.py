"""The intermittent-demand models of flowcast.models.stats (croston, tsb, adida): hand-computed forecasts
on tiny arrays (all zeros, a single demand, leading NaN padding, one observation), and per-series loop
references written from statsforecast's definitions that the vectorised versions must match on ragged
sparse series."""

from __future__ import annotations

import numpy as np
import pytest

from flowcast.models.stats import (
    ADIDA_ALPHAS,
    STATISTICAL_MODELS,
    TSB_GRID,
    adida_matrix,
    croston_matrix,
    tsb_matrix,
)

NAN = float("nan")
MATRICES = {"croston": croston_matrix, "tsb": tsb_matrix, "adida": adida_matrix}


def _rows(series: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned NaN-padded rows [S, N] and lengths [S] of ragged series."""
    N = max(len(s) for s in series)
    y = np.full((len(series), N), np.nan)
    for i, s in enumerate(series):
        if s:
            y[i, N - len(s):] = s
    return y, np.array([len(s) for s in series])


# ------------------------------------------------------------------------------ hand-computed cases
# croston: sizes 3 (interval 2), 2 (interval 3): z = 3 + 0.1 (2 - 3) = 2.9, p = 2 + 0.1 (3 - 2) = 2.1
# adida: intervals 2, 3 -> A = round(2.5) = 2: bucket sums 3, 0, 2; SES's error 9 + (3a - 1)^2 is smallest at
#   a = 1/3, the grid's nearest is 0.3: 3 -> 2.1 -> 2.07, over 2 = 1.035
# tsb single demand 3 at the third of four periods: the probability starts at 0 (the first period's indicator),
#   becomes alpha_p at the demand; the one scored period (a 0) asks for the smallest alpha_p = 0.01:
#   p = 0.01 x 0.99, z = 3; adida: one interval of 3 -> A = 3, the one bucket of the last 3 periods sums to 3
CASES = {
    "all zeros": ([0.0, 0.0, 0.0, 0.0, 0.0], {"croston": 0.0, "tsb": 0.0, "adida": 0.0}),
    "single demand": ([0.0, 0.0, 3.0, 0.0], {"croston": 0.95 * 3 / 3, "tsb": 0.01 * 0.99 * 3, "adida": 1.0}),
    "leading NaN padding": ([0.0, 3.0, 0.0, 0.0, 2.0, 0.0], {"croston": 0.95 * 2.9 / 2.1, "adida": 1.035}),
    "n=1 demand": ([5.0], {"croston": 0.95 * 5, "tsb": 5.0, "adida": 5.0}),
    "n=1 zero": ([0.0], {"croston": 0.0, "tsb": 0.0, "adida": 0.0}),
}


@pytest.mark.parametrize("name", list(MATRICES))
@pytest.mark.parametrize("case", list(CASES))
def test_hand_computed_forecasts(name, case):
    series, expected = CASES[case]
    want = expected[name] if name in expected else REFS[name](series)  # (tsb's grid search: its loop reference)
    # the series beside a longer one, so that it is padded with NaN on the left
    y, n = _rows([series, [1.0] * (len(series) + 3)])
    out = MATRICES[name](y, n, 3, 1)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[0], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(MATRICES))
def test_a_series_without_observations_gets_no_forecast_and_all_are_registered(name):
    y, n = _rows([[], [0.0, 2.0]])
    out = MATRICES[name](y, n, 2, 1)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    assert name in STATISTICAL_MODELS


# ------------------------------------------------------------------------------ loop references
def _ses(x: list[float], alpha: float) -> tuple[float, float]:
    """(level after x, one-step squared error from the second value on), the level starting at x[0]."""
    level, sse = x[0], 0.0
    for v in x[1:]:
        sse += (v - level) ** 2
        level += alpha * (v - level)
    return level, sse


def _intervals(y: list[float]) -> list[float]:
    idx = [i for i, v in enumerate(y) if v > 0]
    return [float(b - a) for a, b in zip([-1, *idx[:-1]], idx, strict=True)]


def _croston_ref(y: list[float]) -> float:
    sizes = [v for v in y if v > 0]
    if not sizes:
        return y[-1]
    return 0.95 * _ses(sizes, 0.1)[0] / _ses(_intervals(y), 0.1)[0]


def _tsb_ref(y: list[float]) -> float:
    if not any(v > 0 for v in y):
        return y[-1]
    best = None
    for ad, ap in TSB_GRID:
        p, z, sse = float(y[0] > 0), (y[0] if y[0] > 0 else None), 0.0
        for v in y[1:]:
            if z is not None:
                sse += (v - p * z) ** 2
            p += ap * (float(v > 0) - p)
            if v > 0:
                z = v if z is None else z + ad * (v - z)
        if best is None or sse < best[0]:
            best = (sse, p * z)
    assert best is not None
    return best[1]


def _adida_ref(y: list[float]) -> float:
    if not any(v > 0 for v in y):
        return y[-1]
    iv = _intervals(y)
    A = max(int(np.round(sum(iv) / len(iv))), 1)
    cut = y[len(y) % A:]
    sums = [sum(cut[i:i + A]) for i in range(0, len(cut), A)]
    fits = [_ses(sums, a) for a in ADIDA_ALPHAS]
    return min(fits, key=lambda f: f[1])[0] / A


REFS = {"croston": _croston_ref, "tsb": _tsb_ref, "adida": _adida_ref}


@pytest.mark.parametrize("name", list(MATRICES))
def test_matches_the_loop_reference_on_ragged_sparse_series(name):
    rng = np.random.default_rng(7)
    series = []
    for i in range(40):
        length = int(rng.integers(1, 60))
        occurs = rng.random(length) < rng.uniform(0.05, 0.9)
        series.append([float(v) for v in np.where(occurs, rng.poisson(3.0, length) + 1, 0)])
        if i % 7 == 0:
            series[-1] = [0.0] * length  # no demand at all
    y, n = _rows(series)
    out = MATRICES[name](y, n, 4, 7)
    expected = np.array([REFS[name](s) for s in series])
    np.testing.assert_allclose(out, np.repeat(expected[:, None], 4, axis=1), rtol=1e-9, atol=1e-12)
    assert (out >= 0).all()  # counts in, counts' rates out


def test_tsb_decays_an_item_that_stopped_selling_where_croston_does_not():
    """TSB's probability falls with every period without a demand; Croston's rate waits for the next one."""
    y, n = _rows([[4.0, 0.0, 3.0, 5.0, 0.0, 4.0] + [0.0] * 30])
    assert tsb_matrix(y, n, 1, 1)[0, 0] < 0.5 * croston_matrix(y, n, 1, 1)[0, 0]
