"""Benchmark: rows decoded and seconds of `EmbeddedStore.read(rows=50)` (`flowcast forecasts --limit 50`) on an
embedded store of one as_of of N_SERIES x HORIZON forecasts whose first 5 series lack the 80% interval, so that the
read must find out whether a later row has one; prints ONE JSON line.

usage: python bench/embedded_first_rows.py [N_SERIES] [HORIZON]   (default 100000 x 10: 1,000,000 rows)
Seconds: the best of 5 reads. Rows decoded are counted at pyarrow's readers (ParquetFile.iter_batches, read_row_group), wrapped for the count.
Run it with PYTHONPATH=<src>:<checkout> to measure one version of the store.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "publish_faults")]


def run(n_series: int = 100_000, horizon: int = 10) -> dict:
    from publisher import make_forecast

    from flowcast.store import EmbeddedStore

    as_of = datetime(2024, 1, 1)
    gap = pl.when(pl.col("unique_id") < "s00005").then(None).otherwise(pl.col("y_hat"))
    fc = make_forecast(1, n_series, horizon, as_of).with_columns((gap - 1).alias("y_hat_lo80"),
                                                                 (gap + 1).alias("y_hat_hi80"))
    last_ds = fc.select("unique_id").unique().with_columns(pl.lit(as_of).alias("last_ds"))
    decoded: list[int] = []
    batches, group = pq.ParquetFile.iter_batches, pq.ParquetFile.read_row_group

    def iter_batches(self: Any, *args: Any, **kwargs: Any) -> Any:
        for batch in batches(self, *args, **kwargs):
            decoded.append(batch.num_rows)
            yield batch

    def read_row_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        table = group(self, *args, **kwargs)
        decoded.append(table.num_rows)
        return table

    with tempfile.TemporaryDirectory(prefix="flowcast-bench-first-") as tmp:
        store = EmbeddedStore(Path(tmp) / "wh")
        store.publish(fc, dataset="bench", as_of=as_of, model="lstm", model_version="lstm-v1", run_id="r1",
                      created_at=as_of + timedelta(hours=1), horizon=horizon, last_ds=last_ds,
                      expected_ids=last_ds["unique_id"].to_list())
        pq.ParquetFile.iter_batches, pq.ParquetFile.read_row_group = iter_batches, read_row_group  # type: ignore
        got = store.read(rows=50)
        pq.ParquetFile.iter_batches, pq.ParquetFile.read_row_group = batches, group  # type: ignore
        seconds = []
        for _ in range(5):  # the best of 5, uncounted
            t0 = time.perf_counter()
            store.read(rows=50)
            seconds.append(time.perf_counter() - t0)
    assert got["y_hat_lo80"].null_count() == 50
    return {"rows": fc.height, "rows_decoded": sum(decoded), "reads": decoded, "best_s": round(min(seconds), 3)}


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:3]))))
