"""Forecast accuracy of what `flowcast run` publishes, on M3.

Runs the retrain flow itself (the code path of `flowcast run`, with its defaults) on the official
training split (as_of = the end of the official training span, `M3_TRAIN_END`), reads back the
forecasts it published and scores them on the official test. A recipe that exists only here
would not count: everything is chosen by the flow (its leaderboard, learned weights, conformal
intervals).

Prints one JSON line per candidate on the run's leaderboard (its backtest scores, "split":
"backtest") and one line for the published champion scored on the test ("model": "published"),
with keys model, smape (M3: 200|y - f| / (|y| + |f|), mean over the horizon then the series), mase
(scaled by the in-sample seasonal naive MAE), coverage80, coverage95 (share of test points inside
the published intervals), msis (the 95% interval score scaled like mase) and seconds (wall time of
the whole flow: data, backtest of every candidate, refit, checks, publish).

`--holdout N` runs the same flow on a validation split instead (as_of N periods earlier; the last
N periods of the training span are the test; with N larger than the horizon, an earlier origin
whose next horizon is scored): recipes are chosen there, never on the test.
`--set section.key=value` overrides a setting (as `FLOWCAST_SECTION__KEY` would), for experiments;
the figures in the README are from runs without it.

It runs without a configuration file by default (config.py's defaults and its per-frequency
recipes, FREQUENCY_DEFAULTS), exactly what `flowcast run --dataset m3-yearly` does with no
flowcast.toml; `--config FILE` runs with one.

Usage: python bench/accuracy.py --dataset m3-yearly [--holdout 6] [--set evaluation.seeds=2] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("PYTHONWARNINGS", "ignore")
# a loaded machine starts the temporary Prefect API slowly (default: 20 s)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "600")

import numpy as np
import polars as pl


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str]) -> dict:
    """['model.max_steps=200', 'evaluation.seeds=2'] -> {'model': {'max_steps': 200}, ...}"""
    out: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        if not _ or "." not in key:
            raise SystemExit(f"--set takes section.key=value, got {item!r}")
        *path, last = key.split(".")
        d = out
        for p in path:
            d = d.setdefault(p, {})
        d[last] = _value(value)
    return out


def split(dataset: str, holdout: int, cache_dir: Path) -> tuple[datetime, pl.DataFrame, pl.DataFrame, int, int]:
    """(as_of, training span, test, horizon, season length) of the official split or a validation split."""
    from flowcast.data.datasets import M3_SUBSETS, M3_TRAIN_END, load_m3, parse_freq

    train, test, h = load_m3(dataset, cache_dir)
    end = M3_TRAIN_END[dataset]
    if holdout:
        n_unit, unit = parse_freq(M3_SUBSETS[dataset][2])
        end = pl.select(pl.lit(end).dt.offset_by(f"-{holdout * n_unit}{unit}")).item()
        test = train.filter(pl.col("ds") > end)
        train = train.filter(pl.col("ds") <= end)
        # a holdout longer than the horizon is an earlier validation origin: its next h periods are scored
        # (and a series that starts after the origin is not in that split at all)
        test = test.sort("unique_id", "ds").filter(pl.int_range(pl.len()).over("unique_id") < h) \
            .join(train.select("unique_id").unique(), on="unique_id", how="semi")
    return end, train, test, h, M3_SUBSETS[dataset][3]


def score(pred: pl.DataFrame, test: pl.DataFrame, train: pl.DataFrame, m: int) -> dict:
    """sMAPE, MASE, 80/95% coverage and MSIS (95%) of `pred` (unique_id, ds, y_hat[, intervals])."""
    j = test.join(pred, on=["unique_id", "ds"], how="left")
    if j["y_hat"].null_count():
        raise SystemExit(f"{j['y_hat'].null_count()} of {j.height} test points have no published forecast")
    scale = (
        train.sort("unique_id", "ds")
        .with_columns((pl.col("y") - pl.col("y").shift(m).over("unique_id")).abs().alias("d"))
        .group_by("unique_id").agg(pl.col("d").mean().alias("scale"))
    )
    # a series shorter than one season has no seasonal naive error: its first difference scales it
    scale1 = (
        train.sort("unique_id", "ds")
        .with_columns((pl.col("y") - pl.col("y").shift(1).over("unique_id")).abs().alias("d"))
        .group_by("unique_id").agg(pl.col("d").mean().alias("scale1"))
    )
    j = j.join(scale, on="unique_id", how="left").join(scale1, on="unique_id", how="left").with_columns(
        pl.coalesce("scale", "scale1").alias("scale"))
    y, f = pl.col("y"), pl.col("y_hat")
    exprs = [(200 * (y - f).abs() / (y.abs() + f.abs())).alias("ape"), ((y - f).abs() / pl.col("scale")).alias("ase")]
    has = {c for c in ("y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95") if c in j.columns}
    if len(has) == 4:
        lo, hi, a = pl.col("y_hat_lo95"), pl.col("y_hat_hi95"), 0.05
        exprs += [
            y.is_between(pl.col("y_hat_lo80"), pl.col("y_hat_hi80")).cast(pl.Float64).alias("in80"),
            y.is_between(lo, hi).cast(pl.Float64).alias("in95"),
            (((hi - lo) + 2 / a * (lo - y).clip(lower_bound=0) + 2 / a * (y - hi).clip(lower_bound=0))
             / pl.col("scale")).alias("is95"),
        ]
    j = j.with_columns(exprs)
    per = j.group_by("unique_id").agg(pl.col("ape", "ase", *(["in80", "in95", "is95"] if len(has) == 4 else [])).mean())
    out = {"smape": float(per["ape"].mean()), "mase": float(per["ase"].mean())}
    if len(has) == 4:
        out |= {"coverage80": float(j["in80"].mean()), "coverage95": float(j["in95"].mean()),
                "msis": float(per["is95"].mean())}
    else:
        out |= {"coverage80": None, "coverage95": None, "msis": None}
    return out


def published(result: dict) -> pl.DataFrame:
    path = Path(result["parquet"])
    frame = pl.read_parquet(path if path.is_file() else str(path / "**" / "*.parquet"))
    return frame.filter(pl.col("dataset") == result["dataset"]) if "dataset" in frame.columns else frame


INTERVALS = ("y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95")


def with_intervals(pred: pl.DataFrame, result: dict, dataset: str, home: Path, as_of: datetime,
                   overrides: dict | None) -> tuple[pl.DataFrame, str]:
    """The published forecasts with their 80/95% intervals. A store that does not keep interval
    columns yet drops them on publish: they are then recomputed from the registered champion (the
    same version, on the same data) and its point forecasts must equal the published ones."""
    if set(INTERVALS) <= set(pred.columns):
        return pred, "published"
    from flowcast.data.preprocess import prepare_data
    from flowcast.flows.common import flow_settings
    from flowcast.models.recipes import forecast_with
    from flowcast.shared import open_registry

    settings = flow_settings(home=str(home), dataset=dataset, overrides=overrides)
    td = prepare_data(settings, as_of).training
    version = open_registry(settings).get(result["model_version"])
    again = forecast_with(version, td, result["horizon"])
    j = pred.select("unique_id", "ds", "y_hat").join(
        again.select("unique_id", "ds", pl.col("y_hat").alias("again"), *INTERVALS), on=["unique_id", "ds"], how="left")
    gap = float(((j["y_hat"] - j["again"]).abs() / j["y_hat"].abs().clip(lower_bound=1e-9)).max())
    if j["again"].null_count() or gap > 1e-6:
        raise SystemExit(f"the champion {result['model_version']} does not reproduce the published forecasts "
                         f"(largest relative difference {gap:.3g}); intervals not scored")
    return j.drop("again"), f"recomputed from {result['model_version']} (point forecasts equal to the published)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="m3-monthly")
    ap.add_argument("--holdout", type=int, default=0, help="validation split: as_of N periods before the training span's end (its next horizon scored)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="section.key=value (experiments)")
    ap.add_argument("--home", default=None, help="flowcast home of the run (default: a temporary directory)")
    ap.add_argument("--config", default=None,
                    help="flowcast.toml to run with (default: none, i.e. config.py's defaults and per-frequency "
                         "recipes, as `make run` and `flowcast run` without --config)")
    a = ap.parse_args(argv)

    from flowcast.config import load_settings
    from flowcast.flows import retrain_flow
    from flowcast.ops.reaper import temporary_api

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(a.home or tmp)
        if a.config is None:  # no configuration file: what `flowcast run --dataset ...` does by default
            empty = Path(tmp) / "defaults.toml"
            empty.write_text("")
            os.environ["FLOWCAST_CONFIG"] = str(empty)
        else:
            os.environ["FLOWCAST_CONFIG"] = str(Path(a.config).resolve())
        settings = load_settings(dataset=a.dataset, home=home)
        as_of, train, test, h, m = split(a.dataset, a.holdout, settings.cache_dir)
        t0 = time.perf_counter()
        with temporary_api():  # as `flowcast run`: a temporary API that is watched and sends no telemetry
            result = retrain_flow(as_of=as_of, dataset=a.dataset, home=str(home),
                                  overrides=parse_sets(a.sets) or None)
        seconds = time.perf_counter() - t0
        pub = published(result)
        pred, intervals_from = with_intervals(pub, result, a.dataset, home, as_of, parse_sets(a.sets) or None)
    common = {"dataset": a.dataset, "horizon": h, "n_series": int(test["unique_id"].n_unique()),
              **({"holdout": a.holdout} if a.holdout else {}), **({"set": a.sets} if a.sets else {})}
    for row in result["leaderboard"]:
        keep = {k: row.get(k) for k in ("smape", "mase", "coverage80", "coverage95", "msis", "rank") if k in row}
        print(json.dumps({"bench": "accuracy", "model": row["model"], "split": "backtest",
                          **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in keep.items()}, **common}))
    s = score(pred.select("unique_id", "ds", "y_hat", *[c for c in pred.columns if c.startswith("y_hat_")]), test,
              train, m)
    models = pub["model"].value_counts().sort("count", descending=True).rows() if "model" in pub.columns else []
    print(json.dumps({
        "bench": "accuracy", "model": "published", "champion": result.get("champion"), "kind": result.get("kind"),
        "split": "holdout" if a.holdout else "test",
        **{k: (None if v is None else round(v, 4)) for k, v in s.items()}, "seconds": round(seconds, 1),
        "series_by_model": dict(models), "intervals": intervals_from, **common,
    }), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
