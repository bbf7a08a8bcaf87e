"""Weekly retail-like data through the product: `flowcast run` with its defaults on synthetic weekly sales, with and
without the promotion declared as a future-known covariate, the published forecast scored on the weeks after as_of.

The data: `--series` series of `--weeks` weeks each (3 years by default) ending at as_of, plus `--horizon` weeks after
it whose promotion flag is planned (rows with the target empty, as a user would give them) and whose sales are held
back from the run (read back from the same generator to score the published forecast). Series i:

    level_i * (1 + trend_i * t / 52) * (1 + 0.25 sin(2 pi t / 52.18 + phase_i)) * (1 + lift_i * promo) + noise

with promotions on about 1 week in 8 (known ahead), noise N(0, (0.05 level_i)^2), values floored at 0; `--gaps F`
leaves out a share F of the history's weeks at random (a trial's missing weeks). Prints one JSON line per run: the
leaderboard (every candidate's backtest MASE, 80% / 95% coverage, MSIS), what was published and its MASE and 80% / 95%
coverage on the held-back weeks (scaled by each series' in-sample seasonal naive error, lag 52). `--as-ofs N` runs at N
as_ofs a horizon apart (the last the history's end), each in a home of its own on the weeks up to as_of + horizon, and
adds a last line pooling the N (with `--only`): the published forecasts' coverage over all their held-back points and each candidate's
mean backtest coverage; `--models` is `flowcast run`'s (`none`: the statistical candidates only).

    .venv/bin/python bench/weekly_retail.py --home /tmp/weekly   # both runs: 479 and 487 s at a load of 14 (2 cores)
    .venv/bin/python bench/weekly_retail.py --home /tmp/wk --only without --models none --series 100 --as-ofs 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from flowcast.evaluation.metrics import coverage_expr, mae_expr, mase_scale
from flowcast.store import EmbeddedStore

FIRST = date(2021, 1, 4)  # a Monday
YEAR = 52.18  # weeks in a year, on average


def make_frame(*, n_series: int, weeks: int, horizon: int, seed: int, gaps: float = 0.0) -> pl.DataFrame:
    """unique_id, ds, y, promo for weeks + horizon weeks of each series (the last `horizon` weeks' y are kept here
    for scoring; `write_source` leaves them out of the file), less a share `gaps` of the first `weeks` rows, drawn
    at random (the same draws as without gaps otherwise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks + horizon)  # [T]
    level = rng.uniform(50, 500, n_series)[:, None]  # [S, 1]
    trend = rng.uniform(-0.05, 0.15, n_series)[:, None]  # [S, 1] share of the level per year
    phase = rng.uniform(0, 2 * np.pi, n_series)[:, None]  # [S, 1]
    lift = rng.uniform(0.2, 0.6, n_series)[:, None]  # [S, 1]
    promo = (rng.random((n_series, t.size)) < 0.125).astype(np.int64)  # [S, T]
    season = 1 + 0.25 * np.sin(2 * np.pi * t[None, :] / YEAR + phase)  # [S, T]
    y = level * (1 + trend * t[None, :] / 52) * season * (1 + lift * promo)  # [S, T]
    y = np.maximum(y + rng.normal(0, 0.05, y.shape) * level, 0.0)  # [S, T]
    days = [FIRST + timedelta(weeks=int(k)) for k in t]
    kept = (rng.random((n_series, t.size)) >= gaps) | (t[None, :] >= weeks) if gaps else np.ones(y.shape, bool)
    return pl.DataFrame({
        "unique_id": [f"item{i:02d}" for i in range(n_series) for _ in t],
        "ds": days * n_series,
        "y": y.reshape(-1),  # [S, T] -> [S*T], series after series
        "promo": promo.reshape(-1),
    }).filter(pl.Series(kept.reshape(-1)))


def write_source(frame: pl.DataFrame, path: Path, as_of: date) -> Path:
    """The CSV a user would give: history up to as_of, and the planned promotions after it with the target empty."""
    frame.with_columns(pl.when(pl.col("ds") <= as_of).then(pl.col("y")).alias("y")).write_csv(path)
    return path


def run(data: Path, home: Path, as_of: date, covariate: bool, models: str | None = None) -> dict:
    """One `flowcast run` with the defaults (`models`: its --models where given); its wall seconds and what it
    printed as JSON."""
    cmd = [sys.executable, "-m", "flowcast", "run", str(data), "--time-col", "ds", "--id-col", "unique_id",
           "--target-col", "y", "--freq", "1w", "--y-min", "0", "--as-of", as_of.isoformat(), "--home", str(home),
           "--json"]
    if covariate:
        cmd += ["--future-col", "promo"]
    if models is not None:
        cmd += ["--models", models]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"flowcast run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return {"seconds": round(seconds, 1), "out": json.loads(done.stdout.strip().splitlines()[-1])}


def score(published: pl.DataFrame, frame: pl.DataFrame, as_of: date, season: int = 52) -> dict:
    """MASE (each series' error over its in-sample seasonal naive error at lag `season`, `metrics.mase_scale`) and
    80% / 95% coverage (`metrics.coverage_expr`) of the published forecast on the held-back weeks, over all points."""
    hist = frame.filter(pl.col("ds") <= as_of).sort("unique_id", "ds")
    scale = mase_scale(hist.select("unique_id", "ds", "y"), season)
    actual = frame.filter(pl.col("ds") > as_of).select("unique_id", pl.col("ds").cast(published.schema["ds"]), "y")
    scored = (published.join(actual, on=["unique_id", "ds"], how="inner").join(scale, on="unique_id")
              .with_columns((pl.col("y") / pl.col("scale")).alias("y_s"), (pl.col("y_hat") / pl.col("scale")).alias("f_s")))
    row = scored.select(mae_expr("y_s", "f_s").alias("mase"), coverage_expr("y_hat_lo80", "y_hat_hi80").alias("cov80"),
                        coverage_expr("y_hat_lo95", "y_hat_hi95").alias("cov95"), pl.len().alias("points"))
    return {k: round(float(v), 4) for k, v in row.row(0, named=True).items()}


def pooled(results: list[dict]) -> dict:
    """The runs' (`main`'s lines) published coverage over all their held-back points, and each candidate's
    backtest coverage averaged over the runs it ran in."""
    points = sum(r["test"]["points"] for r in results)
    test = {k: round(sum(r["test"][k] * r["test"]["points"] for r in results) / points, 4) for k in ("cov80", "cov95")}
    board: dict[str, dict] = {}
    for name in sorted({n for r in results for n in r["board"]}):
        rows = [r["board"][name] for r in results if name in r["board"]]
        board[name] = {k: round(sum(x[k] for x in rows) / len(rows), 4) if all(x.get(k) is not None for x in rows)
                       else None for k in ("coverage80", "coverage95")}
    return {"bench": "weekly_retail", "pooled": len(results), "points": points, "test": test, "board": board}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--series", type=int, default=20)
    ap.add_argument("--weeks", type=int, default=156)
    ap.add_argument("--horizon", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("with", "without"), help="one run: with or without the promo covariate")
    ap.add_argument("--gaps", type=float, default=0.0, help="share of the history's weeks left out at random")
    ap.add_argument("--as-ofs", type=int, default=1, help="as_ofs a horizon apart, the last at the history's end")
    ap.add_argument("--models", help="flowcast run's --models (e.g. none: the statistical candidates only)")
    args = ap.parse_args()
    if args.as_ofs > 1 and not args.only:
        ap.error(f"--as-ofs {args.as_ofs} pools one kind of run: add --only with or --only without")
    frame = make_frame(n_series=args.series, weeks=args.weeks, horizon=args.horizon, seed=args.seed, gaps=args.gaps)
    end = FIRST + timedelta(weeks=args.weeks - 1)
    results = []
    for k in reversed(range(args.as_ofs)):
        as_of = end - timedelta(weeks=k * args.horizon)
        seen = frame.filter(pl.col("ds") <= as_of + timedelta(weeks=args.horizon))
        folder = args.home / (as_of.isoformat() if args.as_ofs > 1 else "")
        folder.mkdir(parents=True, exist_ok=True)
        data = write_source(seen, folder / "weekly.csv", as_of)
        for covariate in (True, False):
            if args.only and (args.only == "with") != covariate:
                continue
            result = run(data, folder / ("with_promo" if covariate else "without_promo"), as_of, covariate, args.models)
            out = result["out"]
            published = EmbeddedStore(Path(out["store"])).read(dataset=out["dataset"])
            board = {name: {k: row.get(k) for k in ("mase", "coverage80", "coverage95", "msis")}
                     for name, row in out["leaderboard"].items()}
            results.append({"bench": "weekly_retail", "as_of": as_of.isoformat(), "covariate": covariate,
                            "seconds": result["seconds"], "published": out["champion"], "note": out.get("note"),
                            "board": board, "test": score(published, seen, as_of)})
            print(json.dumps(results[-1]), flush=True)
    if args.as_ofs > 1:
        print(json.dumps(pooled(results)), flush=True)


if __name__ == "__main__":
    main()
