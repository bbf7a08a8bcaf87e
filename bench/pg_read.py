"""Benchmark: `flowcast forecasts` on a PostgreSQL store of ~1M rows; prints ONE JSON line.

usage: python bench/pg_read.py [N_SERIES] [HORIZON] [SRC ...]   (default 100000 x 10: 1,000,000 rows)
Starts a PostgreSQL server of its own (tests/pg_helpers.py: initdb/pg_ctl in a temporary folder), publishes one as_of
of N_SERIES x HORIZON forecasts (two quantiles), then runs `flowcast forecasts --limit 50`, the table without
--limit, and `--format csv` (to a temporary file) as child processes, each timed with its peak RSS (wait4), once per SRC: a
`src` folder put first on the children's PYTHONPATH (default: this checkout's), so that two versions are measured
on the same store and server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "publish_faults")]

RUNS = {"limit50": ["--limit", "50"], "table": [], "csv": ["--format", "csv"]}


def measure(src: str, env: dict[str, str], args: list[str]) -> dict:
    """Seconds and peak RSS (MB) of one `flowcast forecasts` child, and the bytes it wrote to stdout."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "flowcast", "forecasts", *args], stdout=out,
                                 stderr=subprocess.PIPE, env={**env, "PYTHONPATH": f"{src}:{ROOT}",
                                                              "COLUMNS": "80"})
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - t0
        err = child.stderr.read().decode() if child.stderr else ""
        if status != 0:
            raise RuntimeError(f"{args} with {src} exited {status}: {err[-2000:]}")
        size = out.tell()
        out.seek(0)
        head = out.read(4000).decode(errors="replace")
    return {"s": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024), "stdout_bytes": size,
            "last_line": err.strip().splitlines()[-1] if err.strip() else head.splitlines()[-1]}


def publish(url: str, n_series: int, horizon: int) -> int:
    """One as_of of `n_series` x `horizon` forecasts published to the PostgreSQL store at `url`; the rows."""
    from publisher import make_forecast

    from flowcast.store.postgres import PostgresStore

    as_of = datetime(2024, 1, 1)
    fc = make_forecast(1, n_series, horizon, as_of)
    last_ds = fc.select("unique_id").unique().with_columns(pl.lit(as_of).alias("last_ds"))
    PostgresStore(url).publish(fc, dataset="bench", as_of=as_of, model="lstm", model_version="lstm-v1",
                               run_id="r1", created_at=as_of + timedelta(hours=1), horizon=horizon,
                               last_ds=last_ds, expected_ids=last_ds["unique_id"].to_list())
    return fc.height


def run(n_series: int = 100_000, horizon: int = 10, srcs: list[str] | None = None) -> dict:
    from pg_helpers import running_postgres

    srcs = srcs or [str(ROOT / "src")]
    with running_postgres() as pg, tempfile.TemporaryDirectory(prefix="flowcast-bench-pg-") as home:
        url = pg.url(pg.create_database("bench"))
        t0 = time.perf_counter()  # in a child: a child forked from a process holding the frame counts its pages
        rows = int(subprocess.run([sys.executable, __file__, "--publish", url, str(n_series), str(horizon)],
                                  check=True, capture_output=True, text=True).stdout)
        published = time.perf_counter() - t0
        env = {**os.environ, "FLOWCAST_HOME": home, "FLOWCAST_STORE__URL": url}
        env.pop("FLOWCAST_CONFIG", None)
        results = {src: {name: measure(src, env, args) for name, args in RUNS.items()} for src in srcs}
    return {"rows": rows, "publish_s": round(published, 1), "results": results}


if __name__ == "__main__" and sys.argv[1:2] == ["--publish"]:
    print(publish(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
elif __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    h = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(json.dumps(run(n, h, sys.argv[3:] or None)))
