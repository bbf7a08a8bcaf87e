"""Seasonal interval widths through the product: 10-minute readings with a daily cycle (season m = 144), `flowcast
run` with the seasonal naive as the only candidate and a horizon of one day, then the published 80% / 95% intervals
scored on the day after as_of (held back from the run by as_of, read from the same file). Prints one JSON object:
the backtest's coverage (the leaderboard's), the published widths at a few steps, and the realized coverage over
the first 18 steps, the first half-day and the whole day.

With few series the backtest leaves fewer calibration points per step than a 95% interval needs, so the widths
are pooled over all steps and grown by the seasonal naive's law, sqrt(ceil(h / m)): flat within the day. With
sqrt(h) (the law every model had before) the first steps' widths were a fraction of the last's, and the first 18
steps covered about a third of their points at 80%.

    .venv/bin/python bench/interval_growth.py --series 4 --days 5 --seed 0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from flowcast.store import EmbeddedStore

SEASON = 144  # 10-minute periods in a day
FIRST = datetime(2024, 1, 1)
CONFIG = """[evaluation]
statistical = ["seasonal_naive"]
combination = []
ensemble = false
hybrid = false
"""


def write_daily_cycle(path: Path, *, n_series: int, days: int, seed: int) -> Path:
    """A CSV (unique_id, ds, y) of n_series x (days + 1) days of 10-minute readings: series i is
    50 + 10 i + 8 sin(2 pi t / 144) + N(0, 1); the last day is the one the published forecast is scored on."""
    rng = np.random.default_rng(seed)
    t = np.arange((days + 1) * SEASON)  # [T]
    cycle = 8 * np.sin(2 * np.pi * t / SEASON)  # [T]
    y = 50 + 10 * np.arange(n_series)[:, None] + cycle[None, :] + rng.normal(0, 1, (n_series, t.size))  # [S, T]
    pl.DataFrame({
        "unique_id": [f"s{i}" for i in range(n_series) for _ in t],
        "ds": [FIRST + timedelta(minutes=10 * int(k)) for _ in range(n_series) for k in t],
        "y": y.reshape(-1),  # [S, T] -> [S*T], series after series
    }).write_csv(path)
    return path


def coverage(scored: pl.DataFrame, level: int, last_step: int) -> float:
    """Share of the scored points of steps 1..last_step inside the published `level`% interval."""
    part = scored.filter(pl.col("step") <= last_step)
    inside = (pl.col("y") >= pl.col(f"y_hat_lo{level}")) & (pl.col("y") <= pl.col(f"y_hat_hi{level}"))
    return round(float(part.select(inside.mean()).item()), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument("--days", type=int, default=5, help="days of history the run sees (one more is scored)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    as_of = FIRST + timedelta(days=a.days) - timedelta(minutes=10)
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_daily_cycle(Path(tmp) / "tenmin.csv", n_series=a.series, days=a.days, seed=a.seed)
        (Path(tmp) / "flowcast.toml").write_text(CONFIG)
        flowcast = Path(sys.executable).with_name("flowcast")
        done = subprocess.run([str(flowcast), "run", "--data", str(csv), "--freq", "10m", "--horizon", str(SEASON),
                               "--models", "none", "--config", str(Path(tmp) / "flowcast.toml"),
                               "--home", str(Path(tmp) / "home"), "--as-of", as_of.isoformat(), "--json"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"flowcast run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        published = EmbeddedStore(Path(out["store"])).read(dataset=out["dataset"])
        actual = pl.read_csv(csv, try_parse_dates=True)
    scored = published.join(actual, on=["unique_id", "ds"], how="inner")
    if scored.height != published.height:
        raise SystemExit(f"{published.height - scored.height} published rows have no actual in the file")
    width = scored.group_by("step").agg((pl.col("y_hat_hi80") - pl.col("y_hat_lo80")).mean().alias("w")).sort("step")
    board = out["leaderboard"][out["champion"]]
    print(json.dumps({
        "bench": "interval_growth", "series": a.series, "days": a.days, "seed": a.seed, "season": SEASON,
        "champion": out["champion"], "pooled": "pooled" in out["note"],
        "backtest_coverage80": board["coverage80"], "backtest_coverage95": board["coverage95"],
        "width80_by_step": {str(s): round(float(width["w"][s - 1]), 3) for s in (1, 18, 72, 144)},
        "realized_coverage80": {f"1-{k}": coverage(scored, 80, k) for k in (18, 72, 144)},
        "realized_coverage95": {f"1-{k}": coverage(scored, 95, k) for k in (18, 72, 144)},
    }))


if __name__ == "__main__":
    main()
