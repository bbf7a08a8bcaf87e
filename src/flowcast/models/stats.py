"""Statistical models beyond the classical benchmarks: the dynamic optimised Theta model and the
random walk with drift, vectorised over series like `baselines` (same `matrix` signature:
right-aligned, NaN-padded rows y [S, N] of lengths n [S] -> forecasts [S, h]).

dotm: the Dynamic Optimised Theta Model of Fiorucci, Pellegrini, Louzada, Petropoulos & Koehler
(2016, "Models for optimising the theta method and their relationship to state space models", IJF),
as in statsforecast's `DynamicOptimizedTheta`: on the deseasonalised series (the same test and
classical decomposition as Theta), the one-step forecast is
    mu_t = l_{t-1} + (1 - 1/theta) * (A_{t-1} (1 - alpha)^(t-1) + B_{t-1} (1 - (1 - alpha)^t) / alpha)
with l_t = alpha y_t + (1 - alpha) l_{t-1} and A_t, B_t the intercept and slope of the least-squares
line through y_1..y_t, updated at every step (the "dynamic" part: the trend line follows the data
instead of being fixed on the whole sample). alpha and theta are chosen on a grid by in-sample
one-step squared error; the initial level l_0 enters the errors linearly, so its best value per
grid point has a closed form (as in Theta). theta = 2 with a static line is the classical Theta
method; letting theta and the line move is what wins on short yearly and quarterly series (M3
validation split: yearly 19.32 sMAPE against Theta's 19.58, quarterly 9.09 against 9.20).

drift: the random walk with drift (the last value plus the average change per period over the
series), a strong member of combinations on short trending series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from flowcast.models.baselines import _deseasonalise

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData

_DOTM_ALPHAS = np.linspace(0.02, 0.98, 25)
_DOTM_THETAS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
DOTM_GRID = np.array([(a, t) for a in _DOTM_ALPHAS for t in _DOTM_THETAS])  # [G, 2] (alpha, theta)


def dotm_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int) -> np.ndarray:
    """Dynamic optimised Theta forecasts [S, h] for right-aligned, NaN-padded rows y [S, N]."""
    S, N = y.shape
    x, fseas = _deseasonalise(y, n, h, m)
    start = N - n  # first column of each series
    alpha, theta = DOTM_GRID[:, 0][None, :], DOTM_GRID[:, 1][None, :]  # [1, G] each
    k = 1 - 1 / theta  # [1, G]
    G = DOTM_GRID.shape[0]
    # the level is linear in l0: level = lev_a + lev_c * l0, so the one-step errors are e_a - e_c * l0
    lev_a, lev_c = np.zeros((S, G)), np.ones((S, G))
    saa, sac, scc = np.zeros((S, G)), np.zeros((S, G)), np.zeros((S, G))
    mean, a_n, b_n = np.zeros(S), np.zeros(S), np.zeros(S)  # running mean, line intercept and slope
    i = np.zeros(S)  # observations seen so far
    first = np.full(S, np.nan)  # first observation (the initial level when nothing determines l0)
    for t in range(N):
        xt = x[:, t]  # [S]
        seen = (t >= start) & np.isfinite(xt)  # [S]
        xv = np.where(seen, xt, 0.0)
        # one-step forecast of this observation (from the second one on: the first is its own start)
        p = (1 - alpha) ** i[:, None]  # [S, G]
        drift = k * (a_n[:, None] * p + b_n[:, None] * (1 - (1 - alpha) * p) / alpha)  # [S, G]
        scored = (seen & (i > 0))[:, None]  # [S, 1]
        e_a = np.where(scored, xv[:, None] - lev_a - drift, 0.0)
        e_c = np.where(scored, lev_c, 0.0)
        saa += e_a * e_a
        sac += e_a * e_c
        scc += e_c * e_c
        on = seen[:, None]
        lev_a = np.where(on, alpha * xv[:, None] + (1 - alpha) * lev_a, lev_a)
        lev_c = np.where(on, (1 - alpha) * lev_c, lev_c)
        first = np.where(seen & np.isnan(first), xv, first)
        new_mean = (i * mean + xv) / (i + 1)
        new_b = np.where(i > 0, ((i - 1) * b_n + 6 * (xv - mean) / (i + 1)) / (i + 2), 0.0)
        b_n = np.where(seen, new_b, b_n)
        a_n = np.where(seen, new_mean - b_n * (i + 2) / 2, a_n)
        mean = np.where(seen, new_mean, mean)
        i = np.where(seen, i + 1, i)
    # the best l0 per grid point; where the errors say nothing about it (one observation), the first value
    determined = scc > 1e-12
    l0 = np.where(determined, sac / np.where(determined, scc, 1.0), np.nan_to_num(first)[:, None])
    sse = np.where(determined, saa - l0 * sac, saa)
    best = sse.argmin(axis=1)  # [S]
    rows = np.arange(S)
    al, kk = alpha[0, best], k[0, best]  # [S] each
    level = lev_a[rows, best] + lev_c[rows, best] * l0[rows, best]  # [S]
    out = np.empty((S, h))
    for s in range(h):  # forecasts feed back as observations (the model's own multi-step forecast)
        p = (1 - al) ** i
        mu = level + kk * (a_n * p + b_n * (1 - (1 - al) * p) / al)
        out[:, s] = mu
        level = al * mu + (1 - al) * level
        new_mean = (i * mean + mu) / (i + 1)
        b_n = np.where(i > 0, ((i - 1) * b_n + 6 * (mu - mean) / (i + 1)) / (i + 2), 0.0)
        a_n = new_mean - b_n * (i + 2) / 2
        mean = new_mean
        i = i + 1
    out = np.where(i[:, None] > 0, out, np.nan)  # a series without observations gets no forecast
    return out * fseas


def drift_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int) -> np.ndarray:
    """Random walk with drift [S, h]: last value + step * (last - first) / (observations - 1)."""
    S, N = y.shape
    obs = np.isfinite(y)
    cols = np.arange(N)[None, :]
    first_col = np.where(obs, cols, N).min(axis=1)  # [S]
    last_col = np.where(obs, cols, -1).max(axis=1)
    rows = np.arange(S)
    last = y[rows, np.clip(last_col, 0, max(N - 1, 0))] if N else np.full(S, np.nan)
    first = y[rows, np.clip(first_col, 0, max(N - 1, 0))] if N else np.full(S, np.nan)
    span = last_col - first_col
    slope = np.divide(last - first, span, out=np.zeros(S), where=span > 0)
    return last[:, None] + slope[:, None] * np.arange(1, h + 1)[None, :]


_MATRICES = {"dotm": dotm_matrix, "drift": drift_matrix}
STATISTICAL_MODELS: tuple[str, ...] = tuple(_MATRICES)  # read by flowcast.models.recipes.statistical_models


def statistical_forecast(name: str, td: TrainingData, horizon: int | None = None) -> pl.DataFrame:
    """unique_id, ds, step (Int32 1..h), y_hat (Float64) of model `name` for every series in `td`."""
    from flowcast.models.baselines import _blockwise

    if name not in _MATRICES:
        raise ValueError(f"unknown statistical model {name!r}; this module has {list(STATISTICAL_MODELS)}")
    h = int(horizon or td.meta.horizon)
    return _blockwise(td, td.future_frame(h).select("unique_id", "ds", "step"), h, _MATRICES[name])
