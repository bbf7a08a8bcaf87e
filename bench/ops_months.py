"""A team running flowcast for months, measured on the product itself.

Simulates `--dates` consecutive monthly as_ofs (default 40) on the bundled us_employment data (148 monthly
series, copied to a CSV source so that it can be corrected): a scheduled forecast run on every as_of, a
retrain every `--retrain-every` as_ofs (the first as_of retrains: it puts a model in production), one
backfill of `--backfill` past as_ofs before the first one, one data correction (a past month of 5 series
x1.05, written into the source file) half way, and `flowcast gc --yes --as-of <as_of>` after each retrain.
Every run is a real flow on a real Prefect API (a temporary SQLite one, as the tests use) and real DuckDB
and Parquet files in a temporary home.

Prints one JSON line: seconds per forecast run, per retrain and per backfill date (median and max), the
home's size after the last gc, forecasts.duckdb's size after the first and the last runs (it must stay flat:
the forecasts live in Parquet, the DuckDB file holds views), and how many realized-accuracy as_ofs the run
after the correction rescored.

Network settings are small (`--max-steps`, one gru, inline) so that 40 dates fit in minutes on 2 cores;
the statistical candidates, backtest, publish, realized accuracy and gc are the defaults.

Usage: python bench/ops_months.py [--dates 40] [--retrain-every 6] [--backfill 3] [--max-steps 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("PYTHONWARNINGS", "ignore")

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "flowcast" / "data" / "sample" / "us_employment.csv.gz"
FIRST = datetime(2014, 1, 1)


def _month(start: datetime, k: int) -> datetime:
    m = start.month - 1 + k
    return datetime(start.year + m // 12, m % 12 + 1, 1)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    frame.write_csv(tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


def _stats(xs: list[float]) -> dict[str, float | int]:
    return {"n": len(xs), "median": round(statistics.median(xs), 2) if xs else 0.0,
            "max": round(max(xs), 2) if xs else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dates", type=int, default=40)
    ap.add_argument("--retrain-every", type=int, default=6)
    ap.add_argument("--backfill", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--home", default=None, help="keep the home here (default: a temporary folder, removed)")
    a = ap.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from flowcast.flows import backfill_flow, forecast_flow, retrain_flow

    root = Path(a.home) if a.home else Path(tempfile.mkdtemp(prefix="flowcast-ops-"))
    home, csv = root / "home", root / "raw" / "us_employment.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(SAMPLE, "rb") as src, open(csv, "wb") as dst:
        shutil.copyfileobj(src, dst)
    source = {"name": "usemp", "path": str(csv), "format": "csv", "id_cols": ["Series_ID"], "time_col": "Month",
              "time_format": "%Y %b", "target_col": "Employed", "freq": "1mo", "static_cols": ["Title"],
              "label_col": "Title", "y_min": 0.0, "horizon": 12, "season_length": 12}
    overrides = {"model": {"cells": ["gru"], "max_steps": a.max_steps, "launcher": "inline", "accelerator": "cpu"},
                 "evaluation": {"n_windows": 1}}
    kw = {"source": source, "home": str(home), "overrides": overrides}
    fc_s: list[float] = []
    rt_s: list[float] = []
    bf_s: list[float] = []
    duck: list[int] = []
    corrected_at = a.dates // 2
    gc_runs = 0

    def duck_size() -> int:
        return sum(p.stat().st_size for p in home.rglob("*.duckdb"))

    try:
        with prefect_test_harness(server_startup_timeout=120):
            for k in range(a.dates):
                as_of = _month(FIRST, k)
                if k == corrected_at:  # a corrected upload: 5 series' values of 3 months ago change
                    df = pl.read_csv(csv, infer_schema_length=0)
                    ids = df["Series_ID"].unique(maintain_order=True).to_list()[:5]
                    past = _month(as_of, -3).strftime("%Y %b")
                    df = df.with_columns(pl.when(pl.col("Series_ID").is_in(ids) & (pl.col("Month") == past))
                                         .then((pl.col("Employed").cast(pl.Float64) * 1.05).round(1).cast(pl.Utf8))
                                         .otherwise(pl.col("Employed")).alias("Employed"))
                    _write_atomic(df, csv)
                t = time.perf_counter()
                if k % a.retrain_every == 0:
                    retrain_flow(as_of=as_of, **kw)
                    rt_s.append(time.perf_counter() - t)
                    subprocess.run([sys.executable, "-m", "flowcast", "gc", "--yes", "--home", str(home),
                                    "--as-of", as_of.isoformat(), "--json"], check=True, capture_output=True)
                    gc_runs += 1
                else:
                    forecast_flow(as_of=as_of, **kw)
                    fc_s.append(time.perf_counter() - t)
                if k == 1 and a.backfill:  # a backfill of the months before the first as_of
                    t = time.perf_counter()
                    backfill_flow(start=_month(FIRST, -a.backfill), end=_month(FIRST, -1), **kw)
                    bf_s.append((time.perf_counter() - t) / a.backfill)
                duck.append(duck_size())
            last = _month(FIRST, a.dates - 1)
            subprocess.run([sys.executable, "-m", "flowcast", "gc", "--yes", "--home", str(home),
                            "--as-of", last.isoformat(), "--json"], check=True, capture_output=True)
            gc_runs += 1
        print(json.dumps({
            "bench": "ops_months", "dates": a.dates, "retrain_every": a.retrain_every, "max_steps": a.max_steps,
            "forecast_run_s": _stats(fc_s), "retrain_s": _stats(rt_s), "backfill_date_s": _stats(bf_s),
            "gc_runs": gc_runs, "home_bytes_after_gc": _size(home),
            "forecasts_duckdb_bytes": {"first": duck[0] if duck else 0, "last": duck[-1] if duck else 0,
                                       "max": max(duck) if duck else 0},
            "corrected_at": _month(FIRST, corrected_at).isoformat(),
        }))
    finally:
        if not a.home:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
