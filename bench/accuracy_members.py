"""Research tool: forecast accuracy of individual members on M3 (networks by cell and seed, their
means and hand-set blends, the statistical models), trained outside the retrain flow. What the
product publishes is measured by bench/accuracy.py; this script is for exploring members on the
validation split (`--holdout`) before a recipe goes into the defaults.

One JSON line per model with keys `model`, `smape` (M3 definition: 200*|y-f|/(|y|+|f|), mean over
the horizon, then over series), `mase` (scaled by the in-sample seasonal naive MAE, m = season
length) and `train_s`: each cell (rnn, lstm, gru: the mean of its seeds), `ensemble` (the mean of
every neural model; `ensemble_median` beside it), `ensemble+theta` (the neural ensemble and Theta
averaged with equal weights), `hybrid` (the neural ensemble blended with statistical forecasts by
`--blend`, default half Theta and damped: 0.5 ensemble + 0.25 theta + 0.25 damped; the same
blend as `model.blend` in the pipeline), then the statistical benchmarks theta, damped,
seasonal_naive and naive.

`--holdout 18` scores on a validation split instead: the last 18 months of the training span,
trained on the rest; the official test is not read. The blend weights were chosen there (see the
README), not on the test.

The data go through flowcast's own pipeline (`prepare_data` with as_of = the end of the official
training span, short series padded, not excluded). Default recipe: log1p + per-series standard
scaling, forking-sequences training (first-difference inputs, MAE on the change from each
origin, every origin of the training span including the last ones with partial horizons),
600 steps of 128 series, hidden 128 x 2 layers, lr 3e-3 cosine, trained on the whole training
span (no validation hold-out, fixed budget), 2 seeds per cell (520-590 s of training on
a 2-core CPU). See --help for the knobs.
Usage: python bench/accuracy.py [--dataset m3-monthly] [--cells rnn,lstm,gru] [--steps N] ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYTHONWARNINGS", "ignore")

import polars as pl


def m3_training_data(dataset: str = "m3-monthly", *, lookback: int = 36, log1p: bool = False,
                     scaler: str = "standard", val_size: int | None = None, home: str | None = None,
                     calendar: bool = True, holdout: int = 0):
    """(TrainingData of the official training span, official test frame unique_id, ds, y).

    holdout > 0: a validation split instead. The last `holdout` periods of the training span are
    the test and the rest is trained on; the official test is not read."""
    from flowcast.config import load_settings
    from flowcast.data.datasets import M3_SUBSETS, M3_TRAIN_END, load_m3, parse_freq
    from flowcast.data.preprocess import prepare_data

    home = home or os.environ.get("FLOWCAST_HOME") or str(Path(tempfile.gettempdir()) / "flowcast_bench")
    settings = load_settings(
        dataset=dataset, home=home,
        preprocess={"short_series": "pad", "log1p": log1p, "scaler": scaler, "val_size": val_size,
                    "calendar": calendar},
        model={"lookback": lookback},
    )
    train, test, _ = load_m3(dataset, settings.cache_dir)
    end = M3_TRAIN_END[dataset]
    if holdout:
        n_unit, unit = parse_freq(M3_SUBSETS[dataset][2])
        end = pl.select(pl.lit(end).dt.offset_by(f"-{holdout * n_unit}{unit}")).item()
        test = train.filter(pl.col("ds") > end)
    prepared = prepare_data(settings, end)
    return prepared.training, test


def smape_mase(pred: pl.DataFrame, test: pl.DataFrame, train: pl.DataFrame, m: int) -> tuple[float, float]:
    """M3 sMAPE (percent) and MASE against the in-sample seasonal naive (lag m)."""
    test = test.with_columns((pl.int_range(pl.len()).over("unique_id") + 1).cast(pl.Int32).alias("step"))
    j = test.join(pred.select("unique_id", "step", "y_hat"), on=["unique_id", "step"], how="left")
    if j["y_hat"].null_count():
        raise ValueError(f"{j['y_hat'].null_count()} test points without a forecast")
    j = j.with_columns(
        (200 * (pl.col("y") - pl.col("y_hat")).abs() / (pl.col("y").abs() + pl.col("y_hat").abs())).alias("ape"),
        (pl.col("y") - pl.col("y_hat")).abs().alias("ae"),
    )
    scale = (
        train.sort("unique_id", "ds")
        .with_columns((pl.col("y") - pl.col("y").shift(m).over("unique_id")).abs().alias("d"))
        .group_by("unique_id").agg(pl.col("d").mean().alias("scale"))
    )
    per = j.group_by("unique_id").agg(pl.col("ape").mean(), pl.col("ae").mean()).join(scale, on="unique_id")
    return float(per["ape"].mean()), float((per["ae"] / per["scale"]).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="m3-monthly")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--mode", default="forking", choices=["windowed", "forking"])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128, help="windows (windowed) or series (forking) per step")
    ap.add_argument("--hidden", default="128", help="hidden size: one for every cell (128) or per cell (rnn=128,lstm=64)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lookback", type=int, default=36)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--precision", default=None, help="e.g. bf16-mixed (CPU autocast); default 32 on CPU")
    ap.add_argument("--loss", default="mae")
    ap.add_argument("--log1p", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--scaler", default="standard")
    ap.add_argument("--calendar", action=argparse.BooleanOptionalAction, default=True,
                    help="calendar features (M3's dates are synthetic, see flowcast.data.datasets)")
    ap.add_argument("--holdout", type=int, default=0,
                    help="validation split: score on the last N periods of the training span, train on the rest")
    ap.add_argument("--val-size", type=int, default=0, help="0: train on the whole training span, fixed steps")
    ap.add_argument("--seeds", type=int, default=2, help="models per cell (seed ensemble)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (robustness checks)")
    ap.add_argument("--combine", default="mean", choices=["mean", "median"], help="how the ensemble combines")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--blend", default="theta=0.25,damped=0.25",
                    help="statistical forecasts and weights blended into the ensemble for the `hybrid` line")
    ap.add_argument("--save-preds", default=None, help="directory to write each model's forecasts to (Parquet)")
    a = ap.parse_args(argv)
    cells = a.cells.split(",")
    if "=" in a.hidden:
        hidden = {c: int(v) for c, v in (kv.split("=") for kv in a.hidden.split(","))}
        if set(cells) - set(hidden):
            ap.error(f"--hidden {a.hidden} names no size for {sorted(set(cells) - set(hidden))}")
    else:
        hidden = dict.fromkeys(cells, int(a.hidden))

    import torch

    from flowcast.config import ModelConfig
    from flowcast.models.baselines import baseline_forecast
    from flowcast.models.predict import blend, ensemble, predict
    from flowcast.models.train import train_model

    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    td, test = m3_training_data(a.dataset, lookback=a.lookback, log1p=a.log1p, scaler=a.scaler, val_size=a.val_size,
                                  calendar=a.calendar, holdout=a.holdout)
    m = td.meta.season_length
    common = {"dataset": a.dataset, "n_series": td.n_series, "horizon": td.meta.horizon,
              **({"holdout": a.holdout} if a.holdout else {}), **({"first_seed": a.first_seed} if a.first_seed else {})}
    preds = []
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for cell in cells:
            cell_preds = []
            t = 0.0
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                cfg = ModelConfig(
                    lookback=a.lookback, hidden_size=hidden[cell], num_layers=a.layers, batch_size=a.batch, max_steps=a.steps,
                    lr=a.lr, loss=a.loss, mode=a.mode, seed=seed, dropout=a.dropout, precision=a.precision, launcher="inline", accelerator="cpu", devices=1,
                    early_stopping_patience=None, checkpoint_every=10_000, scheduler="cosine",
                    num_threads=a.threads,
                )
                art = train_model(td, cfg, Path(tmp) / f"{cell}_{seed}", cell=cell)
                t += art.metrics["train_seconds"]
                cell_preds.append(predict(art, td))
                if a.save_preds:
                    Path(a.save_preds).mkdir(parents=True, exist_ok=True)
                    cell_preds[-1].write_parquet(Path(a.save_preds) / f"{cell}_{seed}.parquet")
            pred = ensemble(cell_preds, how=a.combine) if len(cell_preds) > 1 else cell_preds[0]
            preds.extend(cell_preds)
            total += t
            s, ms = smape_mase(pred, test, td.frame, m)
            print(json.dumps({"bench": "accuracy", "model": cell, "smape": round(s, 3), "mase": round(ms, 3),
                              "train_s": round(t, 1), "hidden": hidden[cell], "mode": a.mode, "steps": a.steps, "seeds": a.seeds, **common}),
                  flush=True)
    def line(model: str, pred, train_s: float, **extra) -> None:
        s, ms = smape_mase(pred, test, td.frame, m)
        print(json.dumps({"bench": "accuracy", "model": model, "smape": round(s, 3), "mase": round(ms, 3),
                          "train_s": round(train_s, 1), **extra, **common}), flush=True)

    stats, fit_s = {}, {}
    weights = {k: float(v) for k, v in (kv.split("=") for kv in a.blend.split(",") if kv)}
    for name in ("theta", "damped", "seasonal_naive", "naive"):
        t0 = time.perf_counter()
        stats[name] = baseline_forecast(name, td)
        fit_s[name] = time.perf_counter() - t0
    if preds:
        neural = ensemble(preds, how=a.combine) if len(preds) > 1 else preds[0]
        if len(preds) > 1:
            line("ensemble", neural, total, members=len(preds), combine=a.combine)
            other = "median" if a.combine == "mean" else "mean"
            line(f"ensemble_{other}", ensemble(preds, how=other), total, members=len(preds))
        # the neural ensemble and Theta with equal weights (fixed in advance, not tuned on the test)
        line("ensemble+theta", ensemble([neural, stats["theta"]]), total, members=len(preds) + 1,
             combine=f"mean of the {a.combine} of {len(preds)} neural models and theta")
        line("hybrid", blend(neural, stats, weights), total, members=len(preds) + len(weights),
             blend={"ensemble": round(1 - sum(weights.values()), 6), **weights})
    for name, pred in stats.items():
        line(name, pred, 0.0, fit_s=round(fit_s[name], 2))

if __name__ == "__main__":
    sys.exit(main())
