"""Benchmark: validate + publish + read back forecasts of many series; prints ONE JSON line.

usage: python bench/bench_publish.py [N_SERIES] [HORIZON]   (default 20000 x 24, two quantiles)
Measures a first publish, a re-publish of the same as_of (replace), a read of one as_of and
a read of one series, and checks that the re-publish gave the same content hash.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "publish_faults"))


def run(n_series: int = 20000, horizon: int = 24) -> dict:
    from publisher import make_forecast

    from flowcast.store import EmbeddedStore

    root = Path(tempfile.mkdtemp(prefix="flowcast-bench-publish-"))
    try:
        store = EmbeddedStore(root / "warehouse")
        as_of = datetime(2024, 1, 1)
        fc = make_forecast(1, n_series, horizon, as_of)
        last_ds = fc.select("unique_id").unique().with_columns(pl.lit(as_of).alias("last_ds"))
        ids = last_ds["unique_id"].to_list()
        kw = {"dataset": "bench", "as_of": as_of, "model": "lstm", "model_version": "lstm-v1", "horizon": horizon, "last_ds": last_ds,
              "expected_ids": ids}
        t0 = time.perf_counter()
        r1 = store.publish(fc, run_id="r1", created_at=as_of + timedelta(hours=1), **kw)
        t1 = time.perf_counter()
        r2 = store.publish(fc, run_id="r2", created_at=as_of + timedelta(hours=2), **kw)
        t2 = time.perf_counter()
        back = store.read(as_of=as_of)
        t3 = time.perf_counter()
        one = store.read(unique_id="s00007")
        t4 = time.perf_counter()
        return {
            "bench": "publish",
            "n_series": n_series,
            "horizon": horizon,
            "rows": r1.rows,
            "publish_s": round(t1 - t0, 3),
            "republish_s": round(t2 - t1, 3),
            "rows_per_s": round(r1.rows / (t1 - t0)),
            "read_as_of_s": round(t3 - t2, 3),
            "read_series_s": round(t4 - t3, 3),
            "rows_read": back.height,
            "series_rows": one.height,
            "same_hash": r1.content_hash == r2.content_hash,
            "replaced_rows": r2.replaced_rows,
            "parquet_mb": round(Path(r1.parquet_path).stat().st_size / 1e6, 2),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(run(*args)))
