"""The one vocabulary (Nixtla's convention) and the published forecast columns."""

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
