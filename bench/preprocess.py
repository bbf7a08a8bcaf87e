"""Benchmark: scan + validate + preprocess N series x T steps from Parquet; prints ONE JSON line.

    python bench/preprocess.py --series 10000 --steps 1000 [--freq 1h] [--keep]

The data is generated first (vectorised polars) as a Parquet file with raw column names:
about 1% of rows missing (gaps of a few periods, imputed), 0.1% with a NaN target (quarantined),
0.01% exact duplicate rows (quarantined as duplicate_row). The timed part then runs in a fresh
child process, so `peak_rss_mb` is the peak resident memory of the whole data stage (Python,
polars and pandera included); `base_rss_mb` is that process's footprint after the imports,
before reading any data. `raw_mb` is the in-memory (polars estimated) size of the raw frame.

Output keys: rows, series, steps, seconds (scan+validate+preprocess), rows_per_s, peak_rss_mb,
base_rss_mb, raw_mb, rss_over_raw, gen_seconds, rows_valid, rows_quarantined, n_series_out,
stage_seconds {ingest_validate, preprocess}.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import (  # the benchmarks' shared module, beside this one
    bench_cli,
    in_child,
    peak_rss_mb,
    work_folder,
)


def _time(k, n: int, unit: str):
    import polars as pl

    start = pl.lit(datetime(2000, 1, 1), dtype=pl.Datetime("us"))
    fixed = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks", "s": "seconds"}
    if unit in fixed:
        return start + pl.duration(**{fixed[unit]: k * n}, time_unit="us")
    return start.dt.offset_by(pl.format("{}" + unit, k * n))


def _chunk(first_series: int, n_series: int, steps: int, n: int, unit: str, seed: int):
    import polars as pl

    rows = n_series * steps
    df = pl.DataFrame(pl.int_range(0, rows, dtype=pl.Int64, eager=True).alias("i"))
    sid = pl.col("i") // steps + first_series
    k = pl.col("i") % steps
    h = (pl.col("i") + first_series * steps).hash(seed) % 10_000
    df = df.with_columns(
        pl.format("s{}", sid.cast(pl.Utf8).str.zfill(6)).alias("store_item"),
        _time(k, n, unit).alias("timestamp"),
        (
            100.0
            + 10.0 * (k.cast(pl.Float64) * 6.283185307 / 24.0).sin()
            + (sid % 7).cast(pl.Float64)
            + (h.cast(pl.Float64) / 10_000.0)
        ).alias("sales"),
        h.alias("h"),
        k.alias("k"),
    )
    interior = (pl.col("k") > 0) & (pl.col("k") < steps - 1)
    df = df.filter(~(interior & (pl.col("h") < 100)))  # ~1% missing timestamps (gaps)
    df = df.with_columns(
        pl.when(interior & (pl.col("h") >= 100) & (pl.col("h") < 110))
        .then(float("nan"))
        .otherwise(pl.col("sales"))
        .alias("sales")
    )
    dups = df.filter(pl.col("h") == 200)  # ~0.01% exact duplicates
    return pl.concat([df, dups]).sort("i").select("store_item", "timestamp", "sales")


def generate(series: int, steps: int, path: str | Path, freq: str = "1h", seed: int = 0) -> float:
    """Write the synthetic source in chunks of series (one Parquet file, bounded memory); returns
    the in-memory size in MB of the raw frame (sum of the chunks' polars estimated sizes)."""
    import pyarrow.parquet as pq

    from flowcast.data.calendar import parse_freq

    n, unit = parse_freq(freq)
    per_chunk = max(1, 2_000_000 // max(steps, 1))
    size = 0
    writer = None
    try:
        for first in range(0, series, per_chunk):
            chunk = _chunk(first, min(per_chunk, series - first), steps, n, unit, seed)
            size += chunk.estimated_size()
            table = chunk.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=1 << 20)
    finally:
        if writer is not None:
            writer.close()
    return size / 2**20


def run_stage(path: str, freq: str) -> dict:
    """The timed part (runs in the child): ingest + validate + preprocess."""
    import polars as pl  # noqa: F401  imports before the baseline

    from flowcast.config import SourceConfig, load_settings
    from flowcast.data.preprocess import preprocess
    from flowcast.data.sources import ingest
    from flowcast.data.validate import take_valid, validate

    base = peak_rss_mb()
    settings = load_settings(config_file=None, model={"lookback": 48}, horizon=24)
    src = SourceConfig(
        name="bench", path=path, id_cols=["store_item"], time_col="timestamp", target_col="sales", freq=freq
    )
    t0 = time.perf_counter()
    result = validate(ingest(src, None), src, settings.validation)
    t1 = time.perf_counter()
    td, summary = preprocess(take_valid(result), src, settings, None)
    t2 = time.perf_counter()
    return {
        "peak_rss_mb": peak_rss_mb(),
        "seconds": t2 - t0,
        "stage_seconds": {"ingest_validate": round(t1 - t0, 3), "preprocess": round(t2 - t1, 3)},
        "rows_read": result.report.rows_read,
        "rows_valid": result.report.rows_valid,
        "rows_quarantined": result.report.rows_quarantined,
        "checks": result.report.checks,
        "n_series_out": td.n_series,
        "rows_out": td.n_obs,
        "rows_inserted": summary.rows_inserted,
        "base_rss_mb": base,
    }


def bench(series: int, steps: int, freq: str = "1h", workdir: str | None = None, keep: bool = False) -> dict:
    with work_folder(workdir, keep) as tmp:
        path = tmp / f"bench_{series}x{steps}.parquet"
        t = time.perf_counter()
        raw_mb = in_child("preprocess", "generate", series, steps, str(path), freq, workdir=tmp)
        gen = time.perf_counter() - t
        stage = in_child("preprocess", "run_stage", str(path), freq, workdir=tmp)
        if not keep:
            path.unlink(missing_ok=True)
    rows = stage["rows_read"]
    return {
        "rows": rows,
        "series": series,
        "steps": steps,
        "freq": freq,
        "seconds": round(stage["seconds"], 3),
        "rows_per_s": round(rows / stage["seconds"]),
        "peak_rss_mb": round(stage["peak_rss_mb"], 1),
        "base_rss_mb": round(stage["base_rss_mb"], 1),
        "raw_mb": round(raw_mb, 1),
        "rss_over_raw": round(stage["peak_rss_mb"] / raw_mb, 2),
        "gen_seconds": round(gen, 2),
        "rows_valid": stage["rows_valid"],
        "rows_quarantined": stage["rows_quarantined"],
        "checks": stage["checks"],
        "n_series_out": stage["n_series_out"],
        "rows_out": stage["rows_out"],
        "rows_inserted": stage["rows_inserted"],
        "stage_seconds": stage["stage_seconds"],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1_000)
    ap.add_argument("--freq", default="1h")
    bench_cli(ap, bench, keep="keep the generated file")


if __name__ == "__main__":
    main()
