"""Helpers for evaluation tests: tiny hand-built TrainingData and test-local naive forecasters."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers


def build_td(series: dict[str, list[float]], *, horizon: int, season_length: int = 1,
             start: datetime = datetime(2020, 1, 1)) -> TrainingData:
    """Daily series, one per key, each starting at `start`."""
    rows = [
        (uid, start + timedelta(days=i), float(v)) for uid, ys in series.items() for i, v in enumerate(ys)
    ]
    frame = pl.DataFrame(rows, schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "y": pl.Float64},
                         orient="row").sort("unique_id", "ds")
    meta = TrainingMeta(freq="1d", horizon=horizon, lookback=2, val_size=0, season_length=season_length,
                        scaler="none", calendar_cols=[], future_cols=[])
    return TrainingData(frame=frame, scalers=fit_scalers(frame, "none", False), meta=meta)


def naive_fit(td: TrainingData):
    """A test-local naive forecaster: the last observation repeated over the horizon."""

    def forecast(t: TrainingData) -> pl.DataFrame:
        last = t.frame.group_by("unique_id").agg(pl.col("y").last().alias("y_hat"))
        return t.future_frame().join(last, on="unique_id").select("unique_id", "ds", "step", "y_hat")

    return forecast


def seasonal_naive_fit(td: TrainingData):
    m = td.meta.season_length

    def forecast(t: TrainingData) -> pl.DataFrame:
        tail = t.frame.group_by("unique_id", maintain_order=True).agg(pl.col("y").tail(m).alias("tail"))
        fut = t.future_frame().join(tail, on="unique_id")
        return fut.select(
            "unique_id", "ds", "step",
            pl.col("tail").list.get((pl.col("step") - 1) % m).alias("y_hat"),
        )

    return forecast
