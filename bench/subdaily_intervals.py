"""Published intervals on half-hourly data, scored on the day after each as_of: `flowcast run --dataset
vic_elecdemand --models none` (the statistical candidates of the sub-daily recipe, horizon 48: one day) at each
as_of, each in a fresh home, then the published 80% / 95% intervals scored on the 48 half hours after it (held
back from the run by as_of, read from the bundled file); `--models gru --max-steps 30` adds network candidates (their ensemble and
hybrid with the statistical ones) to every run. Prints one JSON line: the realized coverage of each level
over all the scored points (the 48 half hours from as_of: its first one and the next day), the MSIS of the 95% interval (interval score over the series' mean |y_t - y_(t-48)| up to
as_of, averaged over the days), the champions, and the seconds the runs took.

The default as_ofs are the ends of February to November 2014 (midnight after each month's last half hour):
the scoring days are March 1 .. December 1. `--as-of` picks others (repeatable; midnights, UTC).

    .venv/bin/python bench/subdaily_intervals.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from flowcast.data.datasets import SAMPLE_DIR
from flowcast.store import EmbeddedStore

SEASON = 48  # half hours in a day
MONTH_ENDS = [f"2014-{m:02d}-01" for m in range(3, 13)]


def actuals() -> pl.DataFrame:
    """ds, y of the bundled vic_elecdemand (one series, start-labelled half hours of 2014)."""
    raw = pl.read_csv(SAMPLE_DIR / "vic_elecdemand_2014.csv.gz")
    return raw.select(pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M").alias("ds"), pl.col("Demand").alias("y"))


def seasonal_scale(history: pl.DataFrame) -> float:
    """The MASE scale of the history: its mean |y_t - y_(t-48)|."""
    return float(history.select((pl.col("y") - pl.col("y").shift(SEASON)).abs().mean()).item())


def run_one(as_of: str, home: Path, models: str = "none", max_steps: int | None = None) -> tuple[pl.DataFrame, str]:
    """The published forecast of `flowcast run` at `as_of` in `home` (`models`: its --models; `max_steps`: its
    --max-steps where given), and its champion."""
    flowcast = Path(sys.executable).with_name("flowcast")
    steps = ["--max-steps", str(max_steps)] if max_steps is not None else []
    done = subprocess.run([str(flowcast), "run", "--dataset", "vic_elecdemand", "--models", models, *steps, "--as-of",
                           as_of, "--home", str(home), "--json"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"flowcast run --as-of {as_of} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return EmbeddedStore(Path(out["store"])).read(dataset=out["dataset"]), str(out["champion"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--as-of", action="append", help="midnight (UTC) to run at; default: the month ends Feb-Nov 2014")
    ap.add_argument("--models", default="none", help="flowcast run's --models (default none: statistical only)")
    ap.add_argument("--max-steps", type=int, help="flowcast run's --max-steps (the networks' training steps)")
    a = ap.parse_args()
    data = actuals()
    days, champions = [], {}
    started = time.perf_counter()
    for as_of in a.as_of or MONTH_ENDS:
        cut = datetime.fromisoformat(as_of)
        with tempfile.TemporaryDirectory() as tmp:
            published, champion = run_one(as_of, Path(tmp) / "home", a.models, a.max_steps)
        champions[as_of] = champion
        day = published.select("ds", "y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95").with_columns(
            pl.col("ds").dt.replace_time_zone(None)).join(data, on="ds", how="inner")
        if day.height != published.height or day.filter(pl.col("ds") > cut + timedelta(days=1)).height:
            raise SystemExit(f"as_of {as_of}: {published.height} published rows, {day.height} scored the day after")
        scale = seasonal_scale(data.filter(pl.col("ds") < cut))
        a95 = 0.05
        days.append(day.select(
            ((pl.col("y") >= pl.col("y_hat_lo80")) & (pl.col("y") <= pl.col("y_hat_hi80"))).mean().alias("c80"),
            ((pl.col("y") >= pl.col("y_hat_lo95")) & (pl.col("y") <= pl.col("y_hat_hi95"))).mean().alias("c95"),
            (((pl.col("y_hat_hi95") - pl.col("y_hat_lo95"))
              + 2 / a95 * (pl.col("y_hat_lo95") - pl.col("y")).clip(lower_bound=0)
              + 2 / a95 * (pl.col("y") - pl.col("y_hat_hi95")).clip(lower_bound=0)).mean() / scale).alias("msis"),
        ).with_columns(pl.lit(as_of).alias("as_of")))
    per_day = pl.concat(days)
    print(json.dumps({
        "bench": "subdaily_intervals", "dataset": "vic_elecdemand", "models": a.models, "as_ofs": per_day.height,
        "coverage80": round(float(per_day["c80"].mean()), 3), "coverage95": round(float(per_day["c95"].mean()), 3),
        "msis": round(float(per_day["msis"].mean()), 3),
        "coverage80_by_day": [round(float(v), 2) for v in per_day["c80"]],
        "coverage95_by_day": [round(float(v), 2) for v in per_day["c95"]],
        "champions": champions, "seconds": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
