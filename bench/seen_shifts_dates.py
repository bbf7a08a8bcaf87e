"""Benchmark: a daily source with a tz whose file writes dates alone; prints ONE JSON line.

    python bench/seen_shifts_dates.py [--series 1000] [--days 1000] [--reps 3]

Writes `--series` x `--days` rows ('2021-01-01,s0001,1.5'), declared tz America/New_York, then times (best of
`--reps`) the aggregate `sources.seen_shifts_expr` adds to validation's count select, collected alone over the rows
read (`shifts_s`: none of its rows is seen apart, so a run need not build a time-of-day lag for it), and a whole
`validate(ingest(...))` at an as_of inside the data (`validate_s`). Output keys: rows, shifts_s, built, validate_s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from flowcast.config import SourceConfig, ValidationConfig
from flowcast.data.sources import ingest, seen_shifts_expr
from flowcast.data.validate import validate


def _best(reps: int, run) -> float:
    """The least wall time of `reps` calls of `run`."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--days", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    days = [f"{date(2021, 1, 1) + timedelta(days=d):%Y-%m-%d}" for d in range(args.days)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dates.csv"
        with open(path, "w") as fh:
            fh.write("date,id,val\n")
            for s in range(args.series):
                fh.writelines(f"{d},s{s:04d},1.5\n" for d in days)
        src = SourceConfig(name="bench", path=str(path), id_cols=["id"], time_col="date", target_col="val",
                           freq="1d", tz="America/New_York")
        as_of = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=args.days - 10)
        ingested = ingest(src, as_of)
        expr = seen_shifts_expr(ingested)
        shifts_s = 0.0 if expr is None else _best(args.reps, lambda: ingested.unfiltered.select(expr).collect())
        validate_s = _best(args.reps, lambda: validate(ingest(src, as_of), src, ValidationConfig()))
        print(json.dumps({"rows": args.series * args.days, "shifts_s": round(shifts_s, 3), "built": expr is not None,
                          "validate_s": round(validate_s, 3)}))


if __name__ == "__main__":
    main()
