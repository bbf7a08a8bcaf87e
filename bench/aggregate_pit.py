"""Benchmark: the point-in-time cut of an aggregated source (hourly rows summed to days); prints ONE JSON line.

    python bench/aggregate_pit.py --series 2000 --days 90 [--variant naive|aware|zoned] [--keep]

The data is `bench/preprocess.py`'s generator (the same gaps, NaN targets and duplicate rows) at 1h: series x days
x 24 rows as one Parquet file, its time column written as
  naive  a timestamp without a zone (no tz declared),
  aware  a timestamp in UTC (pandas' tz-aware index; no tz declared),
  zoned  a timestamp in America/New_York (no tz declared: each row is seen from its instant, apart from its wall
         time, so the cut keeps its window over (series, period), `periods.period_not_over`).
The source declares `freq = "1d"`, `aggregate = "sum"`, and the run's as_of is 12:00 UTC of the last day, so the last
period is not over (its rows wait) and the rows after 12:00 are after as_of. The timed part runs in a fresh child
process, the stage functions `flowcast run` calls (`flows.common.load_data`: ingest, validate, enforce_thresholds,
take_valid, preprocess), so `peak_rss_mb` is the peak resident memory of the whole data stage (`base_rss_mb`: after
the imports). `infer_seconds`: then, in the same child, the frequency of the rows by as_of read off the aggregated
source (`freq_infer.explain_freq_by`, what `flowcast backfill --aggregate` without --freq reads at each date):
`infer_freq` the period the rows are aggregated to ('1d'), `infer_step` their own step ('1h').

Output keys: bench, variant, rows, series, days, as_of, seconds (ingest+validate+preprocess), rows_per_s,
peak_rss_mb, base_rss_mb, stage_seconds {ingest, validate, preprocess}, window (whether the cut grouped rows by
(series, period)), rows_valid, rows_quarantined, rows_after_as_of, rows_partial_period, n_series_out, rows_out,
infer_seconds, infer_freq, infer_step, gen_seconds, load (1-minute load average before the timed part), cpus.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _child import (  # the benchmarks' shared module, beside this one
    bench_cli,
    in_child,
    peak_rss_mb,
    work_folder,
)

START = datetime(2000, 1, 1)  # the generator's first time (`preprocess._time`)
ZONES = {"naive": None, "aware": "UTC", "zoned": "America/New_York"}


def generate(series: int, days: int, variant: str, path: str | Path) -> None:
    """`preprocess.generate` at 1h, its time column then given the variant's zone (the wall times as generated)."""
    import polars as pl
    import preprocess

    preprocess.generate(series, days * 24, path, "1h")
    zone = ZONES[variant]
    if zone is not None:
        frame = pl.read_parquet(path).with_columns(pl.col("timestamp").dt.replace_time_zone(zone, ambiguous="earliest",
                                                                                           non_existent="null"))
        frame.write_parquet(path, row_group_size=1 << 20)


def run_stage(path: str, as_of: str) -> dict:
    """The timed part (runs in the child): the stages of `flows.common.load_data`, then the frequency inference."""
    import polars as pl  # noqa: F401  imports before the baseline

    from flowcast.config import SourceConfig, load_settings
    from flowcast.data.freq_infer import Inferred, explain_freq_by
    from flowcast.data.preprocess import preprocess
    from flowcast.data.sources import ingest
    from flowcast.data.validate import enforce_thresholds, take_valid, validate

    base = peak_rss_mb()
    when = datetime.fromisoformat(as_of)
    settings = load_settings(config_file=None, model={"lookback": 14}, horizon=7)
    src = SourceConfig(name="bench", path=path, id_cols=["store_item"], time_col="timestamp", target_col="sales",
                       freq="1d", aggregate="sum")
    t0 = time.perf_counter()
    ingested = ingest(src, when)
    t1 = time.perf_counter()
    result = validate(ingested, src, settings.validation)
    enforce_thresholds(result, settings.validation, artifact=None)
    t2 = time.perf_counter()
    td, _ = preprocess(take_valid(result), src, settings, ingested.as_of)
    t3 = time.perf_counter()
    peak = peak_rss_mb()
    found = explain_freq_by(src, when)
    t4 = time.perf_counter()
    report = result.report
    return {
        "seconds": t3 - t0,
        "stage_seconds": {"ingest": round(t1 - t0, 3), "validate": round(t2 - t1, 3), "preprocess": round(t3 - t2, 3)},
        "window": getattr(ingested, "seen_apart", True),  # (main before aggperf22: always)
        "rows_read": report.rows_read,
        "rows_valid": report.rows_valid,
        "rows_quarantined": report.rows_quarantined,
        "rows_after_as_of": report.rows_after_as_of,
        "rows_partial_period": report.rows_partial_period,
        "n_series_out": td.n_series,
        "rows_out": td.n_obs,
        "peak_rss_mb": peak,
        "base_rss_mb": base,
        "infer_seconds": round(t4 - t3, 3),
        "infer_freq": found.freq if isinstance(found, Inferred) else str(found),
        "infer_step": found.step if isinstance(found, Inferred) else None,
    }


def bench(series: int, days: int, variant: str, workdir: str | None = None, keep: bool = False) -> dict:
    as_of = (START + timedelta(days=days - 1, hours=12)).isoformat()
    with work_folder(workdir, keep) as tmp:
        path = tmp / f"aggregate_{variant}_{series}x{days}.parquet"
        t = time.perf_counter()
        if not (keep and path.exists()):  # (--keep: a file already generated is read again)
            in_child("aggregate_pit", "generate", series, days, variant, str(path), workdir=tmp)
        gen = time.perf_counter() - t
        load = os.getloadavg()[0]
        stage = in_child("aggregate_pit", "run_stage", str(path), as_of, workdir=tmp)
        if not keep:
            path.unlink(missing_ok=True)
    rows = stage.pop("rows_read")
    seconds = stage.pop("seconds")
    return {
        "bench": "aggregate_pit", "variant": variant, "rows": rows, "series": series, "days": days, "as_of": as_of,
        "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds),
        **{k: round(v, 1) if k.endswith("_mb") else v for k, v in stage.items()},
        "gen_seconds": round(gen, 2), "load": round(load, 2), "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--variant", choices=sorted(ZONES), default="naive")
    bench_cli(ap, bench, keep="keep the generated file (and read it again when it exists)")


if __name__ == "__main__":
    main()
