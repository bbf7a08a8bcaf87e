"""A `flowcast backfill` whose Prefect server (PREFECT_API_URL) restarts between two of its dates (faults42)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from flow_helpers import tiny_toml, write_series
from prefect_server import prefect_server, stop
from test_workers_server import seasonal_naive_in_production

from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_backfill_waits_for_a_prefect_server_restarted_between_two_dates(tmp_path):
    """faults42: the server SIGKILLed just after a backfill's date published and back ~20 s later: the backfill
    failed 2 s after the kill, `the Prefect API ... did not answer and the run stopped: ConnectError: All connection
    attempts failed`, the later dates not run, where a run already going waits. Prefect retries a refused
    connection only on a client that has connected before, and the next date's run is created with a new one. The
    backfill now waits for the API (saying so) and runs the date: every date published once, exit 0."""
    home = tmp_path / "home"
    csv = write_series(tmp_path / "tiny.csv")
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(csv))
    seasonal_naive_in_production(home)
    with prefect_server(tmp_path / "server") as srv:
        env = {k: v for k, v in srv.env.items() if not k.startswith("FLOWCAST_")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        log = tmp_path / "backfill.log"
        backfill = srv.start([sys.executable, "-m", "flowcast", "backfill", "--start", "2019-02-01", "--end",
                              "2019-04-01", "--every", "1mo", "--config", str(cfg), "--home", str(home)], log,
                             cwd=ROOT, env=env)
        srv.others.remove(next(o for o in srv.others if o[0] is backfill))  # (it may exit: not a server process)

        def first_date_done() -> bool:
            assert backfill.poll() is None, log.read_text(errors="replace")[-3000:]
            return "published 24 rows" in log.read_text(errors="replace")

        deadline = time.monotonic() + 600
        while not first_date_done():
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.05)
        os.killpg(backfill.pid, signal.SIGSTOP)  # held between its dates while its server goes away
        try:
            os.killpg(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait(30)
        finally:
            os.killpg(backfill.pid, signal.SIGCONT)
        time.sleep(5)  # down: the next date's run is being created
        again = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                  "--port", srv.api.split(":")[-1].split("/")[0]], env=srv.env,
                                 stdout=(tmp_path / "server2.log").open("wb"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            rc = backfill.wait(600)
            assert httpx.get(f"{srv.api}/health", timeout=5).status_code == 200
        finally:
            if backfill.poll() is None:
                os.killpg(backfill.pid, signal.SIGKILL)
            stop(again)  # (the context stops the server it started, killed above)
        said = " ".join(log.read_text(errors="replace").split())
        assert rc == 0, said[-3000:]
        assert "did not answer as its run was being created" in said and "waiting up to 90s" in said, said[-3000:]
        assert "3 published, 0 skipped" in said, said[-3000:]
    frame = EmbeddedStore(home / "warehouse").read(dataset="tiny")
    per = frame.group_by("as_of").len()
    assert per.height == 3 and set(per["len"]) == {24}, per
