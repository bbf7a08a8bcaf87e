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

arima: ARIMA(p, 1, 0), with or without drift, p = 0..3, on the deseasonalised series (the same test
and classical decomposition as Theta): an autoregression of the first differences fitted by least
squares (conditional sum of squares), the order and the drift chosen per series by AICc, as
`forecast::auto.arima` chooses among its candidates (here without moving-average terms and with
d = 1 always: the differences of short business series, M3's, are what it models). A fit whose
autoregression is not stationary is not a candidate. It differs from the smoothing models in what
it keeps from the past (the last p changes, not a weighted level), which is what a combination of
Theta, damped and DOTM lacks (Petropoulos & Svetunkov 2020, "A simple combination of univariate
models", IJF: ETS, CES, ARIMA and DOTM together).

glin: a global linear autoregression (Montero-Manso & Hyndman 2021, "Principles and algorithms for
forecasting groups of time series: locality and globality", IJF): ONE ridge regression pooled over
the windows of every series maps the last L = 2 seasons (6 periods without seasonality) to the
next h periods, all h at once (direct, no recursion). Each window is divided by its inputs' mean
|y|, so series of every size share the coefficients, and a forecast is multiplied back. Local
models fit each series alone; this one learns from all of them, which is what it can add to a
combination. Alone it is weaker than Theta (M3 quarterly validation split: sMAPE 9.95 against
9.20); averaged with theta, damped and dotm it helps (8.74 instead of 8.88; monthly 13.82 instead
of 14.04), but with learned weights it did not help, and it is in no per-frequency recipe (README, "Benchmarks").

croston, tsb, adida: models of intermittent demand (mostly zeros, occasional positive counts), as
statsforecast writes them (`CrostonSBA`, `TSB`, `ADIDA`). Each simple exponential smoothing (SES) below
starts its level at its sequence's first value, as statsforecast's does.
croston: Croston's method with the Syntetos-Boylan (2005) bias correction: SES (alpha 0.1) of the
positive demand sizes z and of the intervals p between them (the first one counted from the series'
start), forecast 0.95 * z / p for every step. alpha is fixed, not optimised (statsforecast's
`CrostonSBA`, not `CrostonOptimized`): a sparse series has few demands to fit on, the one-step errors
of a handful of sizes choose an alpha by noise, and the literature's advice is a low fixed alpha
(0.05-0.2; Syntetos & Boylan 2005); the 0.95 = 1 - alpha/2 factor corrects Croston's known upward bias.
tsb: Teunter, Syntetos & Babai (2011): SES of the demand sizes (alpha_d, updated at demands only) and of
the occurrence indicator (alpha_p, every period), forecast p * z; unlike Croston's, the probability
decays while no demand comes (an item that stopped selling is forecast towards 0). (alpha_d, alpha_p)
are chosen per series on TSB_GRID by the in-sample mean squared one-step error (the periods after the
first demand). statsforecast asks the user for both.
adida: the aggregate-disaggregate intermittent demand approach (Nikolopoulos et al. 2011): the series is
summed over non-overlapping buckets of A periods (A = the mean interval between demands, rounded; the
oldest n mod A periods are dropped so the last bucket ends at the last period), SES (alpha in [0.1, 0.3],
by in-sample squared error) forecasts the next bucket, and each period gets 1/A of it. Aggregation
removes most zeros, so SES sees a smoother series.
A series whose observations hold no positive value is forecast by its last value (0 for all zeros).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from flowcast.models.baselines import Slots, _deseasonalise

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData

_DOTM_ALPHAS = np.linspace(0.02, 0.98, 25)
_DOTM_THETAS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
DOTM_GRID = np.array([(a, t) for a in _DOTM_ALPHAS for t in _DOTM_THETAS])  # [G, 2] (alpha, theta)


def dotm_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int, slots: Slots | None = None) -> np.ndarray:
    """Dynamic optimised Theta forecasts [S, h] for right-aligned, NaN-padded rows y [S, N]."""
    S, N = y.shape
    x, fseas = _deseasonalise(y, n, h, m, slots)
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
    return fseas.restore(out)


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


ARIMA_MAX_P = 3  # the largest autoregressive order tried


def _lagged(z: np.ndarray, k: int) -> np.ndarray:
    """z [S, T] shifted right by k columns (NaN in the first k): column t holds z[:, t - k]."""
    out = np.full_like(z, np.nan)
    if k < z.shape[1]:
        out[:, k:] = z[:, :z.shape[1] - k]
    return out


def _ar_fit(z: np.ndarray, p: int, drift: bool) -> tuple[np.ndarray, np.ndarray]:
    """(AICc [S] (inf where the fit is not possible or not stationary), coefficients [S, p + drift])
    of the least-squares autoregression of order p (plus a constant when `drift`) of rows z [S, T]."""
    S = z.shape[0]
    cols = [_lagged(z, k) for k in range(1, p + 1)] + ([np.ones_like(z)] if drift else [])
    q = len(cols)
    ok = np.isfinite(z)
    for c in cols:
        ok &= np.isfinite(c)
    cnt = ok.sum(axis=1).astype(np.float64)  # [S] points of the regression
    Y = np.where(ok, z, 0.0)
    if q:
        X = np.stack([np.where(ok, c, 0.0) for c in cols], axis=-1)  # [S, T, q]
        xtx = np.einsum("stq,str->sqr", X, X)  # [S, q, q]
        xty = np.einsum("stq,st->sq", X, Y)  # [S, q]
        ridge = 1e-10 * (np.trace(xtx, axis1=1, axis2=2) + 1.0)[:, None, None] * np.eye(q)
        coef = np.linalg.solve(xtx + ridge, xty[..., None])[..., 0]  # [S, q]
        rss = (Y * Y).sum(axis=1) - 2 * (coef * xty).sum(axis=1) + np.einsum("sq,sqr,sr->s", coef, xtx, coef)
    else:
        coef, rss = np.zeros((S, 0)), (Y * Y).sum(axis=1)
    k = q + 1  # the coefficients and the variance
    fits = cnt - k - 1 > 0
    s2 = np.maximum(rss, 0.0) / np.maximum(cnt, 1.0)
    s2 = np.maximum(s2, 1e-12 * ((Y * Y).sum(axis=1) / np.maximum(cnt, 1.0)) + 1e-300)
    aicc = np.where(fits, cnt * np.log(s2) + 2 * k + 2 * k * (k + 1) / np.where(fits, cnt - k - 1, 1.0), np.inf)
    if p:
        companion = np.zeros((S, p, p))
        companion[:, 0, :] = coef[:, :p]
        companion[:, np.arange(1, p), np.arange(p - 1)] = 1.0
        radius = np.abs(np.linalg.eigvals(companion)).max(axis=1)
        aicc = np.where(radius < 1.0, aicc, np.inf)
    return aicc, coef


def arima_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int, slots: Slots | None = None) -> np.ndarray:
    """ARIMA(p, 1, 0) [+ drift] forecasts [S, h], p and drift by AICc, for right-aligned, NaN-padded
    rows y [S, N]; a series too short for any fit (or with one observation) gets its last value."""
    S, N = y.shape
    x, fseas = _deseasonalise(y, n, h, m, slots)
    rows = np.arange(S)
    last_col = np.where(np.isfinite(x), np.arange(N)[None, :], -1).max(axis=1) if N else np.full(S, -1)
    last = x[rows, np.clip(last_col, 0, max(N - 1, 0))] if N else np.full(S, np.nan)
    z = np.diff(x, axis=1) if N > 1 else np.zeros((S, 0))  # [S, N - 1] first differences
    best_ic, best_p = np.full(S, np.inf), np.zeros(S, dtype=np.int64)
    best_drift, best_coef = np.zeros(S, dtype=bool), np.zeros((S, ARIMA_MAX_P + 1))
    for p in range(ARIMA_MAX_P + 1):
        for drift in (False, True):
            ic, coef = _ar_fit(z, p, drift)
            better = ic < best_ic
            best_ic = np.where(better, ic, best_ic)
            best_p = np.where(better, p, best_p)
            best_drift = np.where(better, drift, best_drift)
            full = np.zeros((S, ARIMA_MAX_P + 1))  # AR coefficients in 0..p-1, the constant in the last
            full[:, :p] = coef[:, :p]
            if drift:
                full[:, -1] = coef[:, p]
            best_coef = np.where(better[:, None], full, best_coef)
    # the last ARIMA_MAX_P differences of each series, newest first (0 where there are fewer)
    recent = np.zeros((S, ARIMA_MAX_P))
    for k in range(ARIMA_MAX_P):
        col = last_col - 1 - k  # z's column of the difference ending at x's column last_col - k
        have = col >= 0
        val = z[rows, np.clip(col, 0, max(z.shape[1] - 1, 0))] if z.shape[1] else np.zeros(S)
        recent[:, k] = np.where(have & np.isfinite(val), val, 0.0)
    out = np.empty((S, h))
    level = last.copy()
    fitted = np.isfinite(best_ic)
    for s in range(h):
        dz = (best_coef[:, :ARIMA_MAX_P] * recent).sum(axis=1) + best_coef[:, -1]  # [S]
        dz = np.where(fitted, dz, 0.0)  # no fit: the last value (naive)
        level = level + dz
        out[:, s] = level
        recent = np.concatenate([dz[:, None], recent[:, :-1]], axis=1)
    out = np.where((n > 0)[:, None], out, np.nan)
    return fseas.restore(out)


GLIN_RIDGE = 1.0  # ridge penalty on the scaled inputs' coefficients (not on the intercept)
GLIN_ORIGINS = 500  # forecast origins the model learns from, the latest ones (bounds the work on long series)


def glin_lags(m: int) -> int:
    """The inputs of the global linear model: two seasons, six periods without seasonality."""
    return 2 * m if m > 1 else 6


def _glin_inputs(y: np.ndarray, n: np.ndarray, lags: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows y [S, lags + N] left-padded by `lags` columns, every column before a series' first
    value holding that value; first real column of each row [S]). The padding makes the windows
    of a series independent of how wide the block of series it came in is."""
    S, N = y.shape
    first_col = (N - n).astype(np.int64) + lags
    x = np.concatenate([np.full((S, lags), np.nan), y], axis=1)
    first = x[np.arange(S), np.clip(first_col, 0, lags + N - 1)]
    return np.where(np.arange(lags + N)[None, :] < first_col[:, None], first[:, None], x), first_col


def _glin_scale(inputs: np.ndarray) -> np.ndarray:
    """Mean |y| of each row of inputs [W, L] -> [W, 1] (1 where it is 0 or undefined)."""
    sc = np.abs(inputs).mean(axis=1, keepdims=True)
    return np.where(np.isfinite(sc) & (sc > 0), sc, 1.0)


def glin_normal_equations(y: np.ndarray, n: np.ndarray, h: int, m: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(X'X [L+1, L+1], X'Y [L+1, h], windows) of the global linear model over the windows of
    rows y [S, N] (at the last GLIN_ORIGINS origins) whose inputs are at least half observed and
    whose outputs are all observed;
    X: scaled inputs and a 1, Y: scaled outputs. Sums over blocks of series add up."""
    lags = glin_lags(m)
    x, first_col = _glin_inputs(y, n, lags)
    N = x.shape[1]
    xtx, xty, count = np.zeros((lags + 1, lags + 1)), np.zeros((lags + 1, h)), 0
    for t in range(max(lags, N - h + 1 - GLIN_ORIGINS), N - h + 1):  # inputs x[:, t - lags:t], outputs x[:, t:t + h]
        rows = first_col <= t - (lags + 1) // 2
        if not rows.any():
            continue
        inp, out = x[rows, t - lags:t], x[rows, t:t + h]  # [W, L], [W, h]
        ok = np.isfinite(inp).all(axis=1) & np.isfinite(out).all(axis=1)
        if not ok.any():
            continue
        sc = _glin_scale(inp[ok])
        X = np.concatenate([inp[ok] / sc, np.ones((int(ok.sum()), 1))], axis=1)  # [W, L+1]
        xtx += X.T @ X
        xty += X.T @ (out[ok] / sc)
        count += int(ok.sum())
    return xtx, xty, count


def glin_coefficients(xtx: np.ndarray, xty: np.ndarray, count: int) -> np.ndarray | None:
    """Ridge coefficients [L+1, h] from the summed normal equations; None without any window."""
    if count == 0:
        return None
    penalty = GLIN_RIDGE * np.eye(xtx.shape[0])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(xtx + penalty, xty)


def glin_predict(y: np.ndarray, n: np.ndarray, h: int, m: int, coef: np.ndarray | None) -> np.ndarray:
    """Forecasts [S, h] of the global linear model with coefficients `coef` from each row's last
    L values (NaN without coefficients or for a row without observations)."""
    S = y.shape[0]
    if coef is None:
        return np.full((S, h), np.nan)
    lags = glin_lags(m)
    x, _ = _glin_inputs(y, n, lags)
    inp = x[:, -lags:]  # [S, L]
    sc = _glin_scale(inp)
    out = (np.concatenate([inp / sc, np.ones((S, 1))], axis=1) @ coef) * sc  # [S, L+1] @ [L+1, h] -> [S, h]
    return np.where((n > 0)[:, None], out, np.nan)


def glin_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int) -> np.ndarray:
    """Global linear forecasts [S, h], fitted on the rows y [S, N] themselves."""
    return glin_predict(y, n, h, m, glin_coefficients(*glin_normal_equations(y, n, h, m)))


CROSTON_ALPHA = 0.1  # statsforecast's CrostonSBA
SBA_FACTOR = 1 - CROSTON_ALPHA / 2  # the Syntetos-Boylan correction, 0.95
_TSB_ALPHA_D = (0.05, 0.1, 0.2, 0.3, 0.5)
_TSB_ALPHA_P = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
TSB_GRID = np.array([(d, p) for d in _TSB_ALPHA_D for p in _TSB_ALPHA_P])  # [G, 2] (alpha_d, alpha_p)
ADIDA_ALPHAS = np.linspace(0.1, 0.3, 21)  # statsforecast's golden-section search range, as a grid


def _ses_levels(x: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(final level [S, A], in-sample one-step squared error [S, A]) of simple exponential smoothing
    of each row of x [S, T] for every alpha [A]; NaN entries are skipped (the sequence is the row's
    finite values in order), the level starts at the first of them (NaN without any)."""
    S, T = x.shape
    a = np.asarray(alphas, dtype=np.float64)[None, :]  # [1, A]
    level = np.full((S, a.shape[1]), np.nan)
    sse = np.zeros((S, a.shape[1]))
    for t in range(T):
        xt = x[:, t : t + 1]  # [S, 1]
        seen = np.isfinite(xt)
        started = np.isfinite(level)  # [S, A]
        e = np.where(seen & started, xt - level, 0.0)
        sse += e * e
        level = np.where(seen, np.where(started, level + a * e, xt), level)
    return level, sse


def _demand_parts(y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sizes [S, N]: y where it is a demand (y > 0) else NaN; intervals [S, N]: at a demand, the
    periods since the previous one (the first counted from the series' first period, as
    statsforecast's `_intervals`) else NaN; the last observed value [S], NaN without any)."""
    S, N = y.shape
    start = N - n  # first column of each series
    cols = np.arange(N)[None, :]  # [1, N]
    demand = (cols >= start[:, None]) & np.isfinite(y) & (y > 0)  # [S, N]
    pos = np.where(demand, cols, -1)
    prev = np.maximum.accumulate(np.concatenate([np.full((S, 1), -1), pos[:, :-1]], axis=1), axis=1)  # [S, N]
    prev = np.where(prev >= 0, prev, start[:, None] - 1)  # before the first demand: one period before the start
    sizes = np.where(demand, y, np.nan)
    intervals = np.where(demand, cols - prev, np.nan)
    obs = (cols >= start[:, None]) & np.isfinite(y)
    last_col = np.where(obs, cols, -1).max(axis=1) if N else np.full(S, -1)
    last = np.where(last_col >= 0, y[np.arange(S), np.clip(last_col, 0, max(N - 1, 0))] if N else np.nan, np.nan)
    return sizes, intervals, last


def _no_demand(out: np.ndarray, sizes: np.ndarray, last: np.ndarray) -> np.ndarray:
    """out [S, h] with the rows whose series had no demand replaced by their last value (0 for all
    zeros; NaN for a series without observations)."""
    none = ~np.isfinite(sizes).any(axis=1)  # [S]
    return np.where(none[:, None], last[:, None], out)


def croston_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int) -> np.ndarray:
    """Croston SBA forecasts [S, h]: 0.95 x SES(sizes) / SES(intervals), alpha 0.1, for
    right-aligned NaN-padded rows y [S, N] of lengths n [S]."""
    sizes, intervals, last = _demand_parts(y, n)
    alpha = np.array([CROSTON_ALPHA])
    z, _ = _ses_levels(sizes, alpha)  # [S, 1]
    p, _ = _ses_levels(intervals, alpha)  # [S, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = SBA_FACTOR * z[:, 0] / p[:, 0]  # [S]; p >= 1 where there is a demand
    return _no_demand(np.repeat(rate[:, None], h, axis=1), sizes, last)


def tsb_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int) -> np.ndarray:
    """Teunter-Syntetos-Babai forecasts [S, h]: SES(occurrence, alpha_p) x SES(sizes, alpha_d), the
    pair chosen per series on TSB_GRID by in-sample one-step MSE, for right-aligned NaN-padded rows
    y [S, N] of lengths n [S]."""
    S, N = y.shape
    sizes, _, last = _demand_parts(y, n)
    start = N - n
    ad, ap = TSB_GRID[:, 0][None, :], TSB_GRID[:, 1][None, :]  # [1, G] each
    G = TSB_GRID.shape[0]
    z, prob = np.full((S, G), np.nan), np.full((S, G), np.nan)  # demand size, probability of a demand
    sse = np.zeros((S, G))
    for t in range(N):
        yt = y[:, t : t + 1]  # [S, 1]
        seen = (t >= start)[:, None] & np.isfinite(yt)  # [S, 1]
        occ = np.where(seen, (yt > 0).astype(np.float64), np.nan)  # [S, 1]
        scored = seen & np.isfinite(z) & np.isfinite(prob)  # after the first demand: [S, G]
        e = np.where(scored, yt - prob * z, 0.0)
        sse += e * e
        prob = np.where(seen, np.where(np.isfinite(prob), prob + ap * (occ - prob), occ), prob)
        st = sizes[:, t : t + 1]  # [S, 1]
        dem = np.isfinite(st)
        z = np.where(dem, np.where(np.isfinite(z), z + ad * (st - z), st), z)
    best = sse.argmin(axis=1)  # [S]; ties (a series with one scored period or none) take the first pair
    rows = np.arange(S)
    rate = prob[rows, best] * z[rows, best]  # [S]
    return _no_demand(np.repeat(rate[:, None], h, axis=1), sizes, last)


def adida_matrix(y: np.ndarray, n: np.ndarray, h: int, m: int) -> np.ndarray:
    """ADIDA forecasts [S, h] for right-aligned NaN-padded rows y [S, N] of lengths n [S]: SES of
    sums over buckets of A periods (A = round(mean interval between demands), per series), over A."""
    S, N = y.shape
    sizes, intervals, last = _demand_parts(y, n)
    count = np.isfinite(intervals).sum(axis=1)  # [S] demands
    mean_interval = np.nansum(intervals, axis=1) / np.maximum(count, 1)
    level_of = np.where(count > 0, np.maximum(np.round(mean_interval), 1), 1).astype(np.int64)  # [S] A
    rate = np.full(S, np.nan)
    start = N - n
    for A in np.unique(level_of):
        rows = np.flatnonzero(level_of == A)
        C = N // A  # buckets that fit in the block; the newest ends at the last column
        off = N - C * A
        block = y[rows, off:].reshape(len(rows), C, A)  # [S_A, N - off] -> [S_A, C, A]
        whole = (off + np.arange(C) * A)[None, :] >= start[rows][:, None]  # [S_A, C] buckets inside the series
        sums = np.where(whole, np.nansum(block, axis=2), np.nan)  # [S_A, C]
        level, sse = _ses_levels(sums, ADIDA_ALPHAS)  # [S_A, G]
        best = sse.argmin(axis=1)
        rate[rows] = level[np.arange(len(rows)), best] / A
    return _no_demand(np.repeat(rate[:, None], h, axis=1), sizes, last)


INTERMITTENT_MODELS: tuple[str, ...] = ("croston", "tsb", "adida")  # added to intermittent data's candidates


_MATRICES = {"dotm": dotm_matrix, "drift": drift_matrix, "arima": arima_matrix, "glin": glin_matrix,
             "croston": croston_matrix, "tsb": tsb_matrix, "adida": adida_matrix}
_SEASONAL_INDICES = frozenset({"dotm", "arima"})  # those that `_deseasonalise`: their `slots` follow the local clock
STATISTICAL_MODELS: tuple[str, ...] = tuple(_MATRICES)  # read by flowcast.models.recipes.statistical_models


def statistical_forecast(name: str, td: TrainingData, horizon: int | None = None) -> pl.DataFrame:
    """unique_id, ds, step (Int32 1..h), y_hat (Float64) of model `name` for every series in `td`."""
    from flowcast.models.baselines import _blockwise, _matrices

    if name not in _MATRICES:
        raise ValueError(f"unknown statistical model {name!r}; this module has {list(STATISTICAL_MODELS)}")
    h = int(horizon or td.meta.horizon)
    fut = td.future_frame(h).select("unique_id", "ds", "step")
    if name == "glin":  # one model for all series: its normal equations add up over the blocks
        m = td.meta.season_length
        lags = glin_lags(m)
        xtx, xty, count = np.zeros((lags + 1, lags + 1)), np.zeros((lags + 1, h)), 0
        for _, y, n in _matrices(td):
            a, b, c = glin_normal_equations(y, n, h, m)
            xtx, xty, count = xtx + a, xty + b, count + c
        coef = glin_coefficients(xtx, xty, count)
        return _blockwise(td, fut, h, lambda y, n, h_, m_: glin_predict(y, n, h_, m_, coef))
    return _blockwise(td, fut, h, _MATRICES[name], clock=name in _SEASONAL_INDICES)
