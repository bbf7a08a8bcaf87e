"""The one vocabulary (Nixtla's convention) and the published forecast columns.

Prediction intervals: every published forecast carries the central 80% and 95% intervals as
`y_hat_lo80`, `y_hat_hi80`, `y_hat_lo95`, `y_hat_hi95` (`interval_cols(level)`): the bounds
the actual value falls between with that probability, calibrated by conformal prediction
(`flowcast.evaluation.conformal`). A network trained on quantiles also produces `y_hat_q<p>`
columns (`quantile_col`): its raw, uncalibrated quantiles, which the intervals are built from
(conformalised) but which are not published in their place.
"""

from __future__ import annotations

ID, TIME, TARGET, PRED = "unique_id", "ds", "y", "y_hat"

# published forecasts: one row per (as_of, unique_id, ds); quantile columns sit after y_hat
FORECAST_COLUMNS = ["as_of", "unique_id", "ds", "step", "model", "model_version", "y_hat", "run_id", "created_at"]


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
