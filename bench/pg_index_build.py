"""Benchmark: publish latency on a PostgreSQL store of ~1M rows while its read index (forecasts_read_idx) is built;
prints ONE JSON line.

usage: python bench/pg_index_build.py [N_SERIES] [HORIZON] [SRC ...]   (default 100000 x 10: 1,000,000 rows)
Starts a PostgreSQL server of its own (tests/pg_helpers.py), publishes one as_of of N_SERIES x HORIZON forecasts
(bench/pg_read.py's `publish`), then once per SRC (a `src` folder put first on the children's PYTHONPATH, default
this checkout's): drops the index (a store made before it), starts a child that reads the store's datasets (its
connection builds the index), and, once the build shows in pg_stat_activity, a child that publishes a small as_of
(20 series) again and again until the builder is done. Reported: the build's seconds, and the publishes' latencies.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "publish_faults"), str(ROOT / "bench")]
INDEX = "flowcast.forecasts_read_idx"


def publisher(url: str, go: str, stop: str) -> list[list[float]]:
    """Publish 20 series x 10 once (warm: imports, first connection; then `go`.ready is made), then at successive
    as_ofs from when `go` exists until `stop` does: [start, end] of each (time.time(), comparable across processes)."""
    import polars as pl
    from publisher import make_forecast

    from flowcast.store.postgres import PostgresStore

    spans: list[list[float]] = []
    i = -1
    while not os.path.exists(stop) or len(spans) < 2:
        if i == 0:
            Path(f"{go}.ready").touch()
            while not os.path.exists(go):
                time.sleep(0.005)
        as_of = datetime(2030, 1, 1) + timedelta(days=i)
        fc = make_forecast(1, 20, 10, as_of)
        last_ds = fc.select("unique_id").unique().with_columns(pl.lit(as_of).alias("last_ds"))
        t0 = time.time()
        PostgresStore(url).publish(fc, dataset="small", as_of=as_of, model="lstm", model_version="lstm-v1",
                                   run_id=f"r{i}", created_at=as_of + timedelta(hours=1), horizon=10,
                                   last_ds=last_ds, expected_ids=last_ds["unique_id"].to_list())
        spans.append([t0, time.time()])
        i += 1
    return spans[1:]


def one(url: str, src: str) -> dict:
    """Drop the index, build it from one child while another publishes: the build's span, the publishes' latencies."""
    import psycopg

    env = {**os.environ, "PYTHONPATH": f"{src}:{ROOT}"}
    with psycopg.connect(url, autocommit=True) as con, tempfile.TemporaryDirectory() as tmp:
        con.execute("DELETE FROM flowcast.forecasts WHERE dataset = 'small'")
        con.execute("DELETE FROM flowcast.publishes WHERE dataset = 'small'")
        go, stop = f"{tmp}/go", f"{tmp}/stop"
        pub = subprocess.Popen([sys.executable, __file__, "--publisher", url, go, stop], env=env,
                               stdout=subprocess.PIPE, text=True)
        while not os.path.exists(f"{go}.ready"):  # its warm-up publish done: it waits for `go`
            if pub.poll() is not None:
                raise RuntimeError(f"the publisher with {src} exited {pub.returncode}")
            time.sleep(0.01)
        con.execute(f"DROP INDEX IF EXISTS {INDEX}")
        t0 = time.time()
        build = "import sys; from flowcast.store.postgres import PostgresStore; PostgresStore(sys.argv[1]).datasets()"
        builder = subprocess.Popen([sys.executable, "-c", build, url], env=env)
        while not con.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX%%'"
                              ).fetchone()[0]:
            if builder.poll() is not None:
                raise RuntimeError(f"the builder ended ({builder.returncode}) before its CREATE INDEX was seen")
            time.sleep(0.005)
        seen = time.time()
        Path(go).touch()
        if builder.wait() != 0:
            raise RuntimeError(f"the builder with {src} exited {builder.returncode}")
        built = time.time()
        Path(stop).touch()
        out, _ = pub.communicate()
        if pub.returncode != 0:
            raise RuntimeError(f"the publisher with {src} exited {pub.returncode}")
        (valid,) = con.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                               [INDEX]).fetchone()
    spans = json.loads(out)
    during = [e - s for s, e in spans if s < built]
    return {"build_s": round(built - t0, 2), "build_seen_to_done_s": round(built - seen, 2), "index_valid": valid,
            "publishes_during_build": len(during), "max_ms": round(1000 * max(during)),
            "median_ms": round(1000 * statistics.median(during)),
            "first_ms": round(1000 * during[0])}


def run(n_series: int = 100_000, horizon: int = 10, srcs: list[str] | None = None) -> dict:
    from pg_helpers import running_postgres

    srcs = srcs or [str(ROOT / "src")]
    with running_postgres() as pg:
        url = pg.url(pg.create_database("bench"))
        rows = int(subprocess.run([sys.executable, str(ROOT / "bench" / "pg_read.py"), "--publish", url,
                                   str(n_series), str(horizon)], check=True, capture_output=True, text=True).stdout)
        return {"rows": rows, "results": {src: one(url, src) for src in srcs}}


if __name__ == "__main__" and sys.argv[1:2] == ["--publisher"]:
    print(json.dumps(publisher(*sys.argv[2:5])))
elif __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    h = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(json.dumps(run(n, h, sys.argv[3:] or None)))
