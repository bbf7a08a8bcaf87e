"""The one vocabulary (Nixtla's convention) and the published forecast columns.

Prediction intervals: every published forecast carries the central 80% and 95% intervals as
`y_hat_lo80`, `y_hat_hi80`, `y_hat_lo95`, `y_hat_hi95` (`interval_cols(level)`): the bounds
the actual value falls between with that probability, calibrated by conformal prediction
(`flowcast.evaluation.conformal`). A network trained on quantiles also produces `y_hat_q<p>`
columns (`quantile_col`): its raw, uncalibrated quantiles, which the intervals are built from
(conformalised) but which are not published in their place.
"""

from __future__ import annotations

from typing import Any

ID, TIME, TARGET, PRED = "unique_id", "ds", "y", "y_hat"
DATASET = "dataset"
# a dataset name is a store key and a folder name (flowcast.store.contract.check_dataset): checked when
# the configuration is read, so that a run never trains for a name it cannot publish under
DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

# published forecasts: one row per (dataset, as_of, unique_id, ds); extra value columns (quantiles
# y_hat_q<p>, intervals y_hat_lo<level>/y_hat_hi<level>) sit after y_hat, see flowcast.store.contract
FORECAST_COLUMNS = [
    "dataset", "as_of", "unique_id", "ds", "step", "model", "model_version", "y_hat", "run_id", "created_at",
]

# realized accuracy of published forecasts: one row per (dataset, as_of, model, step) once actuals exist;
# mae_snaive/mase_snaive: the seasonal-naive forecast made at that as_of, scored on the same points;
# n_mase: the points of n that MASE covers (a series whose history then had no scale, constant or shorter than
# two seasons, has none; null in rows scored before it was recorded); rmsse: RMSSE on those points (null in rows
# scored before it was recorded); n_cov80/n_cov95: the points of n that coverage80/95 covers (a series published
# without that interval, one with no typical change to scale its widths by, has none; null in rows scored before it
# was recorded); scored_at: the as_of of the run whose
# actuals scored the row; lookahead: true when the model that published the forecasts was trained on data after
# their as_of (a backfill or `--as-of` run with no model of that date: they saw the actuals they are scored on),
# null when not known (scored before it was recorded, or the version is gone from the registry)
REALIZED_KEY = ["dataset", "as_of", "model", "step"]
REALIZED_COLUMNS = [
    "dataset", "as_of", "model", "model_version", "step", "n", "mae", "mase", "n_mase", "rmsse", "smape", "coverage80",
    "coverage95", "n_cov80", "n_cov95", "mae_snaive", "mase_snaive", "rmsse_snaive", "lookahead", "scored_at",
]


def quantile_col(q: float) -> str:
    """0.1 -> 'y_hat_q10', 0.5 -> 'y_hat_q50', 0.025 -> 'y_hat_q2.5'."""
    pct = round(q * 100, 6)
    return f"y_hat_q{int(pct) if pct == int(pct) else pct}"


def quantile_cols(quantiles: list[float]) -> list[str]:
    return [quantile_col(q) for q in quantiles]


INTERVAL_LEVELS: tuple[int, ...] = (80, 95)


def interval_cols(level: int) -> tuple[str, str]:
    """80 -> ('y_hat_lo80', 'y_hat_hi80'): the bounds of the central `level`% prediction interval."""
    return f"y_hat_lo{int(level)}", f"y_hat_hi{int(level)}"


INTERVAL_COLUMNS: list[str] = [c for lv in INTERVAL_LEVELS for c in interval_cols(lv)]


def within_bounds(col: str, bounds: tuple[float | None, float | None]) -> Any:
    """`col` (a forecast value column, a polars expression) cut at a source's declared bounds (`y_min`, `y_max`):
    a count's declining trend forecast at 0, not below it. A value within the bounds is unchanged; a value that is
    not finite is left as it is (a model failure, which the fallback replaces). Cutting a forecast at a bound the
    actual value cannot cross never makes its error larger."""
    import polars as pl

    y_min, y_max = bounds
    e = pl.col(col)
    if y_min is None and y_max is None:
        return e
    cut = e.clip(lower_bound=y_min, upper_bound=y_max)
    return pl.when(e.is_finite()).then(cut).otherwise(e).alias(col)
