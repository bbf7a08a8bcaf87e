"""Rolling-origin backtesting of any forecaster (a trained model or a baseline).

Window k (0 = oldest, n_windows - 1 = newest) holds out the last
`horizon + (n_windows - 1 - k) * step` points of every series: the truncated data is the
forecast origin, the first `horizon` held-out points are the actuals. The model is fitted
once, on the oldest window's training data (so no window's actuals are ever seen in
training), and forecasts every window from that window's own history; with `refit=True`
it is fitted again per window. Baselines run through the same function, so every model is
scored on exactly the same windows.

Only observed actuals are scored: a held-out point whose value preprocessing imputed (a gap in
the source, `TrainingData.imputed`) is no actual, so it is left out of the forecasts frame and
of everything computed from it (metrics, combination weights, conformal calibration); the
summary counts them (`n_imputed_not_scored`). Each window's history is the truncated data with
the full run's per-series preprocessing decisions (`TrainingData.holdout`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from flowcast.columns import INTERVAL_COLUMNS, quantile_col
from flowcast.data.training_data import TrainingData
from flowcast.evaluation.metrics import METRICS, score

Forecaster = Callable[[TrainingData], pl.DataFrame]  # td -> unique_id, ds, step, y_hat[, quantiles]


@dataclass
class BacktestResult:
    name: str
    forecasts: pl.DataFrame  # unique_id, window, cutoff, ds, step, y, y_hat[, quantile columns]
    metrics: pl.DataFrame  # per (model, unique_id, window): mae, rmse, smape, mase[, pinball_*, coverage]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def quantile_cols(self) -> list[str]:
        return [c for c in self.forecasts.columns if c.startswith("y_hat_q")]

    @property
    def n_nonfinite(self) -> int:
        """Forecast values (y_hat and quantiles) that are NaN, inf or null."""
        cols = ["y_hat", *self.quantile_cols]
        if not self.forecasts.height:
            return 0
        return int(
            self.forecasts.select(
                pl.sum_horizontal([(~pl.col(c).is_finite()).fill_null(True).cast(pl.Int64) for c in cols])
            ).to_series().sum()
        )

    @property
    def finite(self) -> bool:
        return self.forecasts.height > 0 and self.n_nonfinite == 0


def _quantiles_of(frame: pl.DataFrame) -> list[float]:
    out = []
    for c in frame.columns:
        if c.startswith("y_hat_q"):
            q = float(c.removeprefix("y_hat_q")) / 100
            if quantile_col(q) == c:
                out.append(q)
    return sorted(out)


def _check_forecast(fc: pl.DataFrame, actuals: pl.DataFrame, name: str, window: int, horizon: int) -> pl.DataFrame:
    need = {"unique_id", "ds", "y_hat"}
    if not need <= set(fc.columns):
        raise ValueError(f"forecaster {name!r} returned columns {fc.columns}; needs {sorted(need)} (+ step)")
    fc = fc.with_columns(pl.col("ds").cast(actuals.schema["ds"]), pl.col("y_hat").cast(pl.Float64))
    dups = fc.group_by("unique_id", "ds").len().filter(pl.col("len") > 1)
    if dups.height:
        raise ValueError(
            f"forecaster {name!r} window {window}: duplicate forecasts for {dups.head(5).rows()} (unique_id, ds, count)"
        )
    missing = actuals.join(fc, on=["unique_id", "ds"], how="anti")
    if missing.height:
        raise ValueError(
            f"forecaster {name!r} window {window}: no forecast for {missing.height} of {actuals.height} "
            f"held-out points (horizon={horizon}), e.g. {missing.select('unique_id', 'ds').head(5).rows()}"
        )
    return fc


def backtest(
    td: TrainingData,
    fit: Callable[[TrainingData], Forecaster],
    *,
    name: str,
    n_windows: int,
    step: int | None = None,
    horizon: int | None = None,
    refit: bool = False,
) -> BacktestResult:
    """Rolling-origin evaluation of the forecaster that `fit(training_data)` returns.

    Raises ValueError when a series is too short for the windows (naming the series) or
    when a forecaster does not return exactly one forecast per held-out point.
    """
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    h = int(horizon or td.meta.horizon)
    s = int(step or h)
    if h < 1 or s < 1:
        raise ValueError(f"horizon and step must be >= 1, got horizon={h}, step={s}")
    total = h + (n_windows - 1) * s
    lengths = td.lengths()
    short = lengths.filter(pl.col("length") <= total)
    if short.height:
        raise ValueError(
            f"series too short for {n_windows} backtest windows of horizon {h} and step {s} "
            f"(need more than {total} points): {short.select('unique_id', 'length').head(5).rows()}"
        )

    parts, skipped = window_forecasts(td, {name: fit}, n_windows=n_windows, step=s, horizon=h, refit=refit)
    forecasts = pl.concat(parts[name], how="vertical").sort("unique_id", "window", "step")
    result = result_from_forecasts(name, forecasts, td, n_windows=n_windows, horizon=h, step=s, refit=refit)
    result.summary["n_imputed_not_scored"] = skipped
    return result


def window_forecasts(td: TrainingData, fits: dict[str, Callable[[TrainingData], Forecaster]], *, n_windows: int,
                     step: int, horizon: int, refit: bool = True, newest: int = 0
                     ) -> tuple[dict[str, list[pl.DataFrame]], int]:
    """Each model of `fits`' rows (unique_id, window, cutoff, ds, step, y, y_hat[, quantiles]) on the windows of
    `backtest`, each window's cut made once for all of them; the `newest` windows are left out (another backtest
    holds them: `window` keeps its number among the `n_windows`). Returns (rows per model, one frame a window; the
    imputed points not scored)."""
    h, s = int(horizon), int(step)
    forecasters: dict[str, Forecaster] = {}
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in fits}
    skipped = 0
    for k in range(n_windows - int(newest)):
        held = h + (n_windows - 1 - k) * s
        train_k, removed = td.holdout(held)
        horizon_rows = removed.filter(pl.col("step") <= h)
        actuals = td.drop_imputed(horizon_rows)  # observed points only: an imputed value is no actual
        skipped += horizon_rows.height - actuals.height
        cutoffs = train_k.lengths().select("unique_id", pl.col("last_ds").alias("cutoff"))
        for name, fit in fits.items():
            if name not in forecasters or refit:
                forecasters[name] = fit(train_k)
            fc = _check_forecast(forecasters[name](train_k), actuals, name, k, h)
            qcols = [c for c in fc.columns if c.startswith("y_hat_q") or c in INTERVAL_COLUMNS]
            parts[name].append(
                actuals.join(fc.select("unique_id", "ds", "y_hat", *qcols), on=["unique_id", "ds"], how="left")
                .join(cutoffs, on="unique_id", how="left")
                .with_columns(pl.lit(k, dtype=pl.Int32).alias("window"))
                .select("unique_id", "window", "cutoff", "ds", "step", "y", "y_hat", *qcols)
            )
    return parts, skipped


def result_from_forecasts(name: str, forecasts: pl.DataFrame, td: TrainingData, *, n_windows: int, horizon: int,
                          step: int, refit: bool = False) -> BacktestResult:
    """Score backtest forecasts (unique_id, window, cutoff, ds, step, y, y_hat[, quantiles]) of the
    windows of `td`: how `backtest` ends, and how a combination of backtested models is scored."""
    quantiles = _quantiles_of(forecasts)
    metrics = score(
        forecasts.with_columns(pl.lit(name).alias("model")),
        td.frame.select("unique_id", "ds", "y"),
        td.meta.season_length,
        quantiles,
        freq=td.meta.freq,
        tz=td.meta.tz,
    )
    result = BacktestResult(name=name, forecasts=forecasts, metrics=metrics)
    means = metrics.select([pl.col(c).mean() for c in metrics.columns if c in METRICS or c.startswith("pinball_")
                            or c == "coverage"]).row(0, named=True) if metrics.height else {}
    result.summary = {
        "name": name,
        "n_windows": n_windows,
        "horizon": horizon,
        "step": step,
        "refit": refit,
        "n_series": td.n_series,
        "n_forecasts": forecasts.height,
        "n_nonfinite": result.n_nonfinite,
        "finite": result.finite,
        **{k: (None if v is None else float(v)) for k, v in means.items()},
    }
    return result
