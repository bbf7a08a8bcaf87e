"""Child process for publish kill tests: publish one deterministic forecast (or loop publishing).

usage: publisher.py WAREHOUSE AS_OF VARIANT N_SERIES HORIZON [--loop]
VARIANT picks the values (y_hat = variant * 1e6 + series index + step / 100) so that a
reader can tell which publish it sees. --loop publishes variants VARIANT, VARIANT+1, ...
forever (the parent SIGKILLs it at a random moment). FLOWCAST_FAULT=publish:<point> makes
the store SIGKILL this process at that point.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import polars as pl

from flowcast.publish import ForecastStore


def make_forecast(variant: int, n_series: int, horizon: int, start: datetime) -> pl.DataFrame:
    ids = pl.DataFrame({"unique_id": [f"s{i:05d}" for i in range(n_series)], "idx": list(range(n_series))})
    steps = pl.DataFrame({"step": pl.Series(range(1, horizon + 1), dtype=pl.Int32)})
    return (
        ids.join(steps, how="cross")
        .with_columns(
            (pl.lit(start) + pl.duration(days=pl.col("step"))).cast(pl.Datetime("us")).alias("ds"),
            (variant * 1_000_000 + pl.col("idx") + pl.col("step") / 100).cast(pl.Float64).alias("y_hat"),
        )
        .with_columns((pl.col("y_hat") - 1).alias("y_hat_q10"), (pl.col("y_hat") + 1).alias("y_hat_q90"))
        .select("unique_id", "ds", "step", "y_hat", "y_hat_q10", "y_hat_q90")
    )


def main() -> None:
    warehouse, as_of_s, variant_s, n_s, h_s = sys.argv[1:6]
    loop = "--loop" in sys.argv[6:]
    as_of = datetime.fromisoformat(as_of_s)
    store = ForecastStore(warehouse)
    variant = int(variant_s)
    while True:
        fc = make_forecast(variant, int(n_s), int(h_s), as_of)
        r = store.publish(fc, as_of=as_of, model="lstm", model_version=f"lstm-v{variant}", run_id=f"run-{variant}",
                          created_at=as_of + timedelta(hours=1), horizon=int(h_s))
        print(f"published {variant} {r.content_hash}", flush=True)
        if not loop:
            break
        variant += 1


if __name__ == "__main__":
    main()
