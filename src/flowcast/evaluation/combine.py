"""Learned combination weights for ensembles and hybrids, fitted on earlier backtest windows.

A combination forecasts sum_g w_g f_g over groups g (a network cell, whose seeds are averaged
equally, or a statistical model), with w on the simplex (w_g >= 0, sum 1). The weights minimise
the configured metric over backtest points, searched on a regular grid of the simplex (step
1 / resolution): transparent, deterministic and cheap for the handful of groups a candidate has.
Ties go to the weights closest to equal ones. `shrink` moves the fitted weights part of the way
towards equal ones (the "forecast combination puzzle": with few fitting points, equal weights
often forecast better than estimated ones).

The metric is the one the leaderboard ranks on, scaled as the board scales it. MASE, sMAPE, MAE and RMSE
are point means (the scale of MASE: each point's series' seasonal scale at its window's cutoff, with the
level stand-in where it is not measured). RMSSE is the board's own: each point's squared error over its
series' squared RMSSE scale at its window's cutoff (`metrics.rmsse_scale`: the mean squared one-step
difference of the history up to that cutoff, never later data), the root of the mean over each
(series, window) pair's points, averaged over the pairs (`group`); points whose RMSSE scale is 0 or
undefined are left out, as the board leaves their RMSSE out. The grid search needs no smooth objective, so
this is RMSSE itself, not a proxy.

`weights_by_window` keeps the leaderboard honest: window k is forecast with weights fitted on
the points of windows 0..k-1 observed by window k's cutoff only (windows closer than a horizon
overlap: quarterly's are 4 apart with a horizon of 8), and window 0 (no earlier window) with
equal weights, so no window is ever scored with weights chosen on its own actuals. The weights a model is published with are fitted
on every window (`fit_weights` on all points).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

_CHUNK = 512  # grid points evaluated at once: bounds the [grid, points] array


def simplex_grid(k: int, resolution: int) -> np.ndarray:
    """Every w in {0, 1/r, ..., 1}^k with sum 1: [C, k], C = binom(r + k - 1, k - 1)."""
    if k < 1 or resolution < 1:
        raise ValueError(f"need k >= 1 groups and resolution >= 1, got k={k}, resolution={resolution}")
    rows = []
    for bars in itertools.combinations(range(resolution + k - 1), k - 1):
        edges = (-1, *bars, resolution + k - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(k)])
    return np.asarray(rows, dtype=np.float64) / resolution


def loss(metric: str, pred: np.ndarray, y: np.ndarray, scale: np.ndarray,
         group: np.ndarray | None = None) -> np.ndarray:
    """Loss per row of pred [C, N] against y [N]. scale [N]: per point, MASE's scale for mase, the squared RMSSE
    scale (`metrics.rmsse_scale`'s scale_sq) for rmsse. rmsse is the board's RMSSE: the root of the mean squared
    scaled error of each group of points (group [N]: a (series, window) code; None: one group), averaged over the
    groups; the other metrics are the mean over the points."""
    e = pred - y[None, :]
    if metric == "mase":
        return (np.abs(e) / scale[None, :]).mean(axis=1)
    if metric == "rmsse":
        sq = e * e / scale[None, :]  # [C, N]
        if group is None:
            return np.sqrt(sq.mean(axis=1))
        order = np.arange(len(group)) if (group[1:] >= group[:-1]).all() else np.argsort(group, kind="stable")
        g = group[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])  # [P] first point of each group
        counts = np.diff(np.r_[starts, len(g)])  # [P]
        per_group = np.sqrt(np.add.reduceat(sq[:, order], starts, axis=1) / counts[None, :])  # [C, P]
        return per_group.mean(axis=1)
    if metric == "mae":
        return np.abs(e).mean(axis=1)
    if metric == "rmse":
        return (e * e).mean(axis=1)
    if metric == "smape":
        den = np.abs(y)[None, :] + np.abs(pred)
        return np.where(den > 0, 200 * np.abs(e) / np.where(den > 0, den, 1.0), 0.0).mean(axis=1)
    raise ValueError(f"unknown metric {metric!r}")


def fit_weights(F: np.ndarray, y: np.ndarray, scale: np.ndarray, metric: str, resolution: int = 10,
                shrink: float = 0.0, group: np.ndarray | None = None) -> np.ndarray:
    """Simplex weights [K] minimising `metric` of sum_k w_k F[k] against y over the points where
    every input is finite and the scale positive (equal weights when there is none), moved a share
    `shrink` of the way towards equal weights (0: as fitted, 1: equal). scale and group: see `loss`."""
    w = _fitted(F, y, scale, metric, resolution, group)
    return w if shrink == 0 else (1.0 - shrink) * w + shrink / len(w)


def _fitted(F: np.ndarray, y: np.ndarray, scale: np.ndarray, metric: str, resolution: int,
            group: np.ndarray | None = None) -> np.ndarray:
    K = F.shape[0]
    if K == 1:
        return np.ones(1)
    ok = np.isfinite(F).all(axis=0) & np.isfinite(y) & np.isfinite(scale) & (scale > 0)
    if not ok.any():
        return np.full(K, 1.0 / K)
    F, y, scale = F[:, ok], y[ok], scale[ok]
    if metric != "rmsse":
        group = None  # the other metrics are point means: their points stay in the order given
    if group is not None:  # sorted once here, so that `loss` finds its groups contiguous
        order = np.argsort(group[ok], kind="stable")
        F, y, scale, group = F[:, order], y[order], scale[order], group[ok][order]
    grid = simplex_grid(K, resolution)
    losses = np.concatenate([loss(metric, grid[i:i + _CHUNK] @ F, y, scale, group)
                             for i in range(0, len(grid), _CHUNK)])
    best = losses.min()
    tied = np.flatnonzero(losses <= best + 1e-12 * max(abs(best), 1.0))
    dist = ((grid[tied] - 1.0 / K) ** 2).sum(axis=1)
    return grid[tied[dist.argmin()]]


def weights_by_window(F: np.ndarray, y: np.ndarray, scale: np.ndarray, window: np.ndarray, metric: str,
                      resolution: int = 10, known: dict[int, np.ndarray] | None = None,
                      shrink: float = 0.0, group: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """window -> the weights its points are forecast with: equal for the first window, else fitted
    on the points of the earlier windows only, and of those (with `known`: window -> mask of the
    points whose actual a run at that window's cutoff had) only the ones observed by its cutoff:
    windows a step apart that is shorter than the horizon overlap, and an earlier window's later
    steps are this window's first periods. scale and group: see `loss`."""
    out: dict[int, np.ndarray] = {}
    K = F.shape[0]
    for k in sorted(int(w) for w in np.unique(window)):
        before = window < k
        if known is not None:
            before = before & known[k]
        out[k] = fit_weights(F[:, before], y[before], scale[before], metric, resolution, shrink,
                             None if group is None else group[before]) if before.any() \
            else np.full(K, 1.0 / K)
    return out


def describe_weights(names: Sequence[str], weights: Sequence[float]) -> str:
    """'0.6 x gru + 0.4 x theta' (groups with weight 0 left out)."""
    parts = [f"{w:.2g} x {n}" for n, w in zip(names, weights) if w > 0]
    return " + ".join(parts) if parts else "nothing"
