"""Readers never block writers: 4 publisher processes (each on its own as_of, publishing again and
again) and 4 reader processes reading the whole store in a loop, for 30 seconds (embedded store;
a DuckDB client holds the DuckDB file open and queries its view all along), and the same with
PostgreSQL for 10 seconds. Every publish lands, every read returns whole as_of sets (never a
partial as_of, never a mix of two publishes), nothing is duplicated, and no read goes back in time.

The counts are printed (pytest -s shows them) as one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from publisher import make_forecast
from store_backends import make_backend
from store_helpers import DS, H, child, publish, variant_of

READER = Path(__file__).resolve().parents[1] / "publish_faults" / "reader.py"
N = 300  # series per as_of: 1,800 rows
AS_OFS = [datetime(2024, m, 1) for m in (1, 2, 3, 4)]


def _reader(spec: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(READER), spec, str(N), str(H), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("name, seconds", [("embedded", 30.0), ("postgres", 10.0)])
def test_four_publishers_and_four_readers(request, tmp_path, name, seconds):
    b = make_backend(name, request, tmp_path)
    for i, a in enumerate(AS_OFS):  # every as_of exists before the readers start: each read must see 4
        publish(b.store, make_forecast(1000 * i, N, H, a), as_of=a, variant=1000 * i)
    readers = [_reader(b.spec) for _ in range(4)]
    if name == "embedded":
        readers.append(_reader(b.spec, "--duckdb"))  # holds forecasts.duckdb open all along
    for r in readers:
        assert r.stdout.readline().strip() == "ready", r.stderr.read()
    publishers = [child(b.spec, a, 1000 * i + 1, N, None, "--loop") for i, a in enumerate(AS_OFS)]
    lines: list[list[str]] = [[] for _ in publishers]
    drains = [threading.Thread(target=lambda p=p, out=out: out.extend(p.stdout), daemon=True)
              for p, out in zip(publishers, lines, strict=True)]
    for t in drains:
        t.start()
    deadline = time.monotonic() + 300
    while not all(lines) and time.monotonic() < deadline and all(p.poll() is None for p in publishers):
        time.sleep(0.1)  # the clock starts once every publisher has published once
    assert all(lines), [p.stderr.read() for p in publishers if p.poll() is not None]
    time.sleep(seconds)
    for p in publishers:
        p.send_signal(signal.SIGTERM)  # each finishes the publish under way, then stops
    published = []
    for p, t, out in zip(publishers, drains, lines, strict=True):
        p.wait(timeout=120)
        t.join(timeout=30)
        assert p.returncode == 0, p.stderr.read()  # no publish ever failed (a failure ends the loop with an error)
        published.append([int(line.split()[1]) for line in out if line.startswith("published")])
    for r in readers:
        r.send_signal(signal.SIGTERM)
    summaries = []
    for r in readers:
        out, err = r.communicate(timeout=180)
        assert r.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))

    store = b.reopen()
    final = store.read()
    assert final.select("dataset", "as_of", "unique_id", "ds").n_unique() == final.height == 4 * N * H
    for i, a in enumerate(AS_OFS):  # every publish landed: each as_of holds its publisher's last one
        assert published[i], f"publisher {i} never completed a publish"
        assert published[i] == list(range(1000 * i + 1, 1000 * i + 1 + len(published[i])))
        assert variant_of(store.read(dataset=DS, as_of=a)) == {published[i][-1]}
    for s in summaries:
        assert s["n_problems"] == 0, s["problems"]
        assert s["reads"] > 0 and s["min_keys"] == s["max_keys"] == 4, summaries  # every read: all 4 as_of
    counts = {"bench": "store-concurrency", "backend": name, "seconds": seconds,
              "publishes": [len(p) for p in published], "reads": [s["reads"] for s in summaries[:4]],
              "duckdb_reads": summaries[4]["reads"] if len(summaries) > 4 else None,
              "problems": sum(s["n_problems"] for s in summaries)}
    print(json.dumps(counts))
