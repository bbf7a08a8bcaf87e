"""Tiny TrainingData built by hand (sine waves with noise, optional covariates) for model tests."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import polars as pl

from flowcast.config import ModelConfig
from flowcast.data.calendar import calendar_columns, calendar_exprs
from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers


def make_td(
    n_series: int = 4, length: int | list[int] = 60, *, horizon: int = 6, lookback: int = 12, period: int = 12,
    noise: float = 0.05, seed: int = 0, calendar: bool = True, past: bool = False, static: bool = False,
    level: float = 10.0, scaler: str = "standard", log1p: bool = False,
) -> TrainingData:
    rng = np.random.default_rng(seed)
    lengths = length if isinstance(length, list) else [length] * n_series
    rows = []
    for i, n in enumerate(lengths):
        t = np.arange(n)
        phase = rng.uniform(0, 2 * math.pi)
        amp = 1.0 + i % 3
        y = level * (i + 1) + amp * np.sin(2 * math.pi * t / period + phase) + noise * rng.standard_normal(n)
        ds = pl.date_range(datetime(2000, 1, 1), datetime(2000 + (n + 11) // 12 + 1, 1, 1), "1mo", eager=True)[:n]
        rows.append(pl.DataFrame({"unique_id": f"s{i:02d}", "ds": ds.cast(pl.Datetime("us")), "y": y}))
    frame = pl.concat(rows)
    cal = calendar_columns("1mo") if calendar else []
    if calendar:
        frame = frame.with_columns(calendar_exprs("1mo"))
    past_cols = []
    if past:
        frame = frame.with_columns((pl.col("y") * 0.1 + 3.0).shift(1).over("unique_id").fill_null(0.0).alias("px"))
        past_cols = ["px"]
    frame = frame.sort("unique_id", "ds")
    st = None
    static_cols = []
    if static:
        st = pl.DataFrame({"unique_id": [f"s{i:02d}" for i in range(len(lengths))],
                           "size": [float(i + 1) for i in range(len(lengths))]})
        static_cols = ["size"]
    meta = TrainingMeta(freq="1mo", horizon=horizon, lookback=lookback, val_size=horizon, season_length=period,
                        scaler=scaler, log1p=log1p, calendar_cols=cal, future_cols=list(cal), past_cols=past_cols,
                        static_cols=static_cols, fingerprint="test")
    return TrainingData(frame=frame, scalers=fit_scalers(frame, scaler, log1p, holdout=horizon), meta=meta, static=st)


def tiny_cfg(**kw) -> ModelConfig:
    base = {"lookback": 12, "hidden_size": 16, "num_layers": 1, "batch_size": 32, "max_steps": 20,
            "launcher": "inline", "accelerator": "cpu", "devices": 1, "early_stopping_patience": None,
            "checkpoint_every": 5, "lr": 3e-3,
            "num_threads": 1}  # one thread: the CI box has 2 cores shared by parallel jobs
    base.update(kw)
    return ModelConfig(**base)

