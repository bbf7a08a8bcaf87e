"""A run's preprocessing (`flows.common._preprocess`: the cached preprocess task) in a process of its own, on a
generated frame big enough that its polars queries take seconds, so that a test can stop it midway (SIGTERM).

usage: preprocess_child.py HOME SERIES STEPS
The rows come shuffled, as a caller other than validation may hand them over: preprocessing sorts them first, one
polars call of seconds (9 s for 2M rows on a loaded 2-core machine) that a signal's handler waited for. Says
'preprocessing' on stderr as the task starts; prints the rows preprocessed as one JSON line when it ends."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import polars as pl
from prefect import flow

from flowcast.config import SourceConfig, load_settings
from flowcast.flows.common import _preprocess


def valid_rows(series: int, steps: int) -> pl.DataFrame:
    """`series` hourly series of `steps` periods, about 1% of their rows missing (gaps a grid fills and imputes), in
    no order: valid canonical observations."""
    i = pl.int_range(0, series * steps, dtype=pl.Int64, eager=True)
    frame = pl.DataFrame({"i": i}).with_columns(k=pl.col("i") % steps, h=pl.col("i").hash(7) % 100)
    frame = frame.filter((pl.col("k") == 0) | (pl.col("k") == steps - 1) | (pl.col("h") > 0))
    return frame.select(
        pl.format("s{}", (pl.col("i") // steps).cast(pl.Utf8).str.zfill(6)).alias("unique_id"),
        (pl.lit(datetime(2020, 1, 1)) + pl.duration(hours=pl.col("k"))).alias("ds"),
        (100.0 + pl.col("k").cast(pl.Float64).sin() * 10.0).alias("y")).sample(fraction=1.0, shuffle=True, seed=1)


@flow(name="preprocess-child")
def run(home: str, series: int, steps: int) -> int:
    settings = load_settings(None, home=home)
    source = SourceConfig(name="big", path=str(Path(home) / "unread.csv"), id_cols=["id"], time_col="t",
                          target_col="v", freq="1h", horizon=24)
    valid = valid_rows(series, steps)
    print("preprocessing", file=sys.stderr, flush=True)
    td, _ = _preprocess(settings, valid, source, datetime(2021, 1, 1), f"big-{series}-{steps}")
    return int(td.frame.height)


if __name__ == "__main__":
    print(json.dumps({"rows": run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))}), flush=True)
