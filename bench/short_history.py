"""Which statistical model forecasts a series of only k = 2..6 observations best, on M3 (validation only).

Each M3 quarterly and yearly series' official TRAINING span is split: its last horizon is the validation target
(the official test is never read), and only the last k observations before it are kept as the history. Every model
forecasts that k-point history through the product's own entry points (`baselines.baseline_forecast`,
`stats.statistical_forecast`, on a `TrainingData` of the cut series with the recipe's season length), and is
scored on the validation horizon: sMAPE (M3's, 200|y - f| / (|y| + |f|)) and MASE, each averaged over the
horizon then the series. Two MASE scales: `mase_k`, the in-sample naive MAE of the k points (what the product can
know of such a series; a flat k-point history has scale 0 and is left out of mase_k, counted in `flat_k`), and
`mase_full`, the naive MAE of the whole training span before the validation horizon (the same scale for every k,
a fair comparison across k).

`naive_theta`: the mean of the naive and Theta forecasts; `comb`: the equal-weight mean of the recipe's
combination (config.FREQUENCY_DEFAULTS; the published comb learns its weights on backtests that need longer series).

Prints one JSON line per (frequency, k, model). Usage: python bench/short_history.py [--ks 2,3,4,5,6] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl

DATASETS = {"m3-quarterly": "1q", "m3-yearly": "1y"}


def cut(train: pl.DataFrame, h: int, k: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(the last k observations before each series' validation horizon, the validation horizon with its step,
    unique_id + full_scale: the naive MAE of the training span before the validation horizon)."""
    t = train.sort("unique_id", "ds").with_columns(
        (pl.len().over("unique_id") - pl.int_range(pl.len()).over("unique_id")).alias("back"))  # 1 = the last row
    val = t.filter(pl.col("back") <= h).with_columns((h + 1 - pl.col("back")).cast(pl.Int32).alias("step"))
    before = t.filter(pl.col("back") > h)
    short = before.filter(pl.col("back") <= h + k)
    if (too := short.group_by("unique_id").len().filter(pl.col("len") < k)).height:
        raise SystemExit(f"{too.height} series have fewer than {k} points before validation, e.g. {too.row(0)}")
    full = before.with_columns(pl.col("y").diff().abs().over("unique_id").alias("d")) \
        .group_by("unique_id").agg(pl.col("d").mean().alias("full_scale"))
    return short.select("unique_id", "ds", "y"), val.select("unique_id", "step", "y"), full


def forecasts(short: pl.DataFrame, freq: str, h: int, m: int, names: list[str]) -> dict[str, pl.DataFrame]:
    """unique_id, step, y_hat of every model in `names`, by the product's own functions."""
    from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers
    from flowcast.models.baselines import BASELINES, baseline_forecast
    from flowcast.models.stats import statistical_forecast

    meta = TrainingMeta(freq=freq, horizon=h, lookback=8, val_size=0, season_length=m, scaler="none")
    td = TrainingData(frame=short, scalers=fit_scalers(short, "none", False), meta=meta)
    out = {}
    for name in names:
        f = baseline_forecast(name, td) if name in BASELINES else statistical_forecast(name, td)  # type: ignore[arg-type]
        out[name] = f.select("unique_id", "step", "y_hat")
    return out


def mean_of(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The per-(series, step) mean of several forecasts."""
    return pl.concat(parts).group_by("unique_id", "step").agg(pl.col("y_hat").mean())


def score(pred: pl.DataFrame, val: pl.DataFrame, short: pl.DataFrame, full: pl.DataFrame) -> dict:
    """sMAPE, MASE on the k points' naive scale (flat histories left out) and on the full span's."""
    k_scale = short.sort("unique_id", "ds").with_columns(pl.col("y").diff().abs().over("unique_id").alias("d")) \
        .group_by("unique_id").agg(pl.col("d").mean().alias("k_scale"))
    j = val.join(pred, on=["unique_id", "step"], how="left").join(k_scale, on="unique_id").join(full, on="unique_id")
    if j["y_hat"].null_count() or not j["y_hat"].is_finite().all():
        raise SystemExit(f"{j['y_hat'].null_count()} missing / non-finite forecasts")
    y, f = pl.col("y"), pl.col("y_hat")
    per = j.with_columns(
        (200 * (y - f).abs() / (y.abs() + f.abs())).alias("ape"),
        ((y - f).abs() / pl.col("k_scale")).alias("ase_k"),
        ((y - f).abs() / pl.col("full_scale")).alias("ase_full"),
    ).group_by("unique_id").agg(pl.col("ape", "ase_k", "ase_full").mean(), pl.col("k_scale").first())
    ok = per.filter(pl.col("k_scale") > 0)
    return {"smape": round(float(per["ape"].mean()), 3), "mase_k": round(float(ok["ase_k"].mean()), 3),
            "mase_full": round(float(per["ase_full"].mean()), 3), "series": per.height,
            "flat_k": per.height - ok.height}


def main(argv: list[str] | None = None) -> None:
    from flowcast.config import FREQUENCY_DEFAULTS
    from flowcast.data.datasets import M3_SUBSETS, load_m3

    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="2,3,4,5,6")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "flowcast_bench_cache"))
    args = ap.parse_args(argv)
    models = ["naive", "drift", "theta", "damped", "dotm", "arima"]
    for dataset, freq in DATASETS.items():
        train, _test, h = load_m3(dataset, Path(args.cache))  # the official test is not used
        m = M3_SUBSETS[dataset][3]
        combination = FREQUENCY_DEFAULTS[freq]["evaluation"]["combination"]
        for k in (int(x) for x in args.ks.split(",")):
            t0 = time.perf_counter()
            short, val, full = cut(train, h, k)
            fc = forecasts(short, freq, h, m, models)
            fc["naive_theta"] = mean_of([fc["naive"], fc["theta"]])
            fc["comb"] = mean_of([fc[c] for c in combination])
            for name, pred in fc.items():
                line = {"dataset": dataset, "k": k, "model": name, **score(pred, val, short, full),
                        "split": "validation", "seconds": round(time.perf_counter() - t0, 2)}
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
