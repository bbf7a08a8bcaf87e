"""Naive and seasonal naive forecasts with the same output as `predict`.

naive: the last observation repeated. seasonal_naive: the value one season earlier
(`td.meta.season_length`); series shorter than one season fall back to naive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData


def baseline_forecast(name: Literal["naive", "seasonal_naive"], td: TrainingData,
                      horizon: int | None = None) -> pl.DataFrame:
    """unique_id, ds, step (Int32 1..h), y_hat (Float64) for every series in `td`."""
    if name not in ("naive", "seasonal_naive"):
        raise ValueError(f"unknown baseline {name!r}; expected naive or seasonal_naive")
    h = int(horizon or td.meta.horizon)
    m = td.meta.season_length if name == "seasonal_naive" else 1
    fut = td.future_frame(h).select("unique_id", "ds", "step")
    hist = td.frame.select("unique_id", "y").with_columns(
        pl.int_range(pl.len()).over("unique_id").alias("pos"), pl.len().over("unique_id").alias("n")
    )
    # step k takes the value at position n - m + ((k-1) mod m); series with n < m use the last value
    tail = hist.with_columns(
        pl.when(pl.col("n") >= m).then(pl.lit(m)).otherwise(pl.lit(1)).alias("m_eff")
    ).filter(pl.col("pos") >= pl.col("n") - pl.col("m_eff")).with_columns(
        (pl.col("pos") - (pl.col("n") - pl.col("m_eff"))).alias("phase")
    )
    m_eff = tail.group_by("unique_id").agg(pl.col("m_eff").first())
    out = (
        fut.join(m_eff, on="unique_id", how="left")
        .with_columns(((pl.col("step") - 1) % pl.col("m_eff")).alias("phase"))
        .join(tail.select("unique_id", "phase", "y"), on=["unique_id", "phase"], how="left")
        .select("unique_id", "ds", "step", pl.col("y").cast(pl.Float64).alias("y_hat"))
        .sort("unique_id", "step")
    )
    return out
