"""Intermittent demand through the product: synthetic spare-parts counts (each series a Bernoulli chance of a
demand per day, its size 1 + Poisson), `flowcast run --data ... --models none --json` on them, and the backtest
MASE and RMSSE of every candidate on the leaderboard it prints, with the metric it ranked on (rmsse: the data is
classed intermittent and evaluation.metric is not given). Prints one JSON object.

    .venv/bin/python bench/intermittent.py --series 30 --days 120 --seed 0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from flowcast.store import EmbeddedStore

AS_OF_DAY = 119  # the run's as_of: the last day of a 120-day history


def write_intermittent(path: Path, *, n_series: int = 30, days: int = 120, seed: int = 0) -> Path:
    """A CSV (item, day, units) of n_series x days counts: series i has a demand on a day with probability
    p_i ~ U(0.08, 0.45) (ADI about 2 to 12), of size 1 + Poisson(lam_i), lam_i ~ U(0.5, 4)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.08, 0.45, n_series)  # [S]
    lam = rng.uniform(0.5, 4.0, n_series)  # [S]
    occurs = rng.random((n_series, days)) < p[:, None]  # [S, D]
    units = np.where(occurs, 1 + rng.poisson(lam[:, None], (n_series, days)), 0)  # [S, D]
    first = date(2024, 1, 1)
    pl.DataFrame({
        "item": [f"part{i:03d}" for i in range(n_series) for _ in range(days)],
        "day": [first + timedelta(days=d) for _ in range(n_series) for d in range(days)],
        "units": units.reshape(-1).astype(np.float64),  # [S, D] -> [S*D], series after series
    }).write_csv(path)
    return path


def run_args(csv: Path, home: Path, *, days: int = 120, horizon: int = 14) -> list[str]:
    """`flowcast run`'s arguments for the file (statistical candidates only, the 1d defaults otherwise)."""
    as_of = date(2024, 1, 1) + timedelta(days=days - 1)
    return ["run", "--data", str(csv), "--id-col", "item", "--time-col", "day", "--target-col", "units",
            "--freq", "1d", "--horizon", str(horizon), "--models", "none", "--home", str(home),
            "--as-of", as_of.isoformat(), "--json"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=30)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--horizon", type=int, default=14)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_intermittent(Path(tmp) / "parts.csv", n_series=a.series, days=a.days, seed=a.seed)
        flowcast = Path(sys.executable).with_name("flowcast")
        done = subprocess.run([str(flowcast), *run_args(csv, Path(tmp) / "home", days=a.days, horizon=a.horizon)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"flowcast run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        published = EmbeddedStore(Path(out["store"])).read(dataset=out["dataset"])
    board = out["leaderboard"]
    lows = [c for c in published.columns if c.startswith("y_hat")]
    print(json.dumps({
        "series": a.series, "days": a.days, "seed": a.seed, "horizon": a.horizon,
        "champion": out["champion"], "metric": out.get("metric"),
        "mase": {m: round(r["mase"], 4) for m, r in sorted(board.items(), key=lambda kv: kv[1]["mase"])},
        "rmsse": {m: round(r["rmsse"], 4) for m, r in sorted(board.items(), key=lambda kv: kv[1]["rmsse"])},
        "classed_intermittent": "classed intermittent" in out["note"],
        "lowest_published": float(published.select(pl.min_horizontal(lows).min()).item()),
    }))


if __name__ == "__main__":
    main()
