"""`flowcast serve` stopped by one SIGTERM (ops31): a real serve process, on Prefect's temporary server, with a run of
its retrain deployment under way (minutes of training on the bundled data), which reports to that server (not to one of its own)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flow_helpers import signal_and_wait, wait_for
from prefect_server import http

FLOWCAST = str(Path(sys.executable).parent / "flowcast")


@pytest.mark.timeout(900)
def test_one_sigterm_stops_serve_while_a_run_starts(tmp_path):
    """Regression (ops31): SIGTERM to `flowcast serve` as a forecast run's process was starting (here a retrain's, longer than
    the test's wait): Prefect's runner
    cancelled the run and paused the deployments, then waited for good on the run's task; serve went on until a
    second SIGTERM (2 minutes later in the fault round). One SIGTERM now ends it, exit 0, the run Cancelled (since
    serve50 once its grace, serve.grace_seconds, is over: 10 s by default) with a message naming the stop. The bound is
    generous: a failure means serve never ended."""
    from flowcast.flows.deploy import GRACE_SAID

    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), FLOWCAST_HOME=str(tmp_path / "home"))
    with open(log, "w") as out:
        proc = subprocess.Popen([FLOWCAST, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for("serving", lambda: "polling for scheduled runs" in log.read_text(), proc, log, 600)
        api = re.search(r"Starting temporary server on (http://[0-9.:]+)", log.read_text())
        assert api is not None, log.read_text()
        url = f"{api.group(1)}/api"
        deployment = http("GET", f"{url}/deployments/name/retrain/retrain").raise_for_status().json()
        run = http("POST", f"{url}/deployments/{deployment['id']}/create_flow_run", json={})
        run_id = run.raise_for_status().json()["id"]

        def state() -> str:
            return http("GET", f"{url}/flow_runs/{run_id}").raise_for_status().json()["state"]["type"]

        # the run's process under way: its flow engine reports Running to the serve's temporary server (it started
        # one of its own, the serve's not passed to it, and the run stayed Pending here: the serve's api_for_runs)
        wait_for("the run Running in the serve's API", lambda: state() == "RUNNING", proc, log, 300)
        assert log.read_text().count("Starting temporary server") == 1, log.read_text()[-3000:]
        time.sleep(2)
        code, said = signal_and_wait(proc, log, 120)
        assert code == 0, said
        assert GRACE_SAID.format(n=1, grace=10) in said and "All deployments have been paused!" in said, said
        assert re.search(r"Cancelled flow run '[^']+'", said), said  # in flight: its process stopped, its state set
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)


@pytest.mark.timeout(300)
def test_a_sigterm_while_the_temporary_server_starts_stops_serve_as_a_later_stop_does(tmp_path):
    """serve47: a SIGTERM to `flowcast serve` while Prefect's temporary server was still starting (before the serve's
    runner existed) fell to Python's default handling: exit 143. It stops the serve as a later stop does: exit 0, said
    (`EARLY_STOP_SAID`), nothing registered, and nothing left behind: the server process and the watchdog gone, the
    serve's locks free."""
    import psutil

    from flowcast.flows.deploy import EARLY_STOP_SAID
    from flowcast.ops.serving import serve_lock

    log, home, prefect_home = tmp_path / "serve.log", tmp_path / "home", tmp_path / "prefect"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(prefect_home), FLOWCAST_HOME=str(home))
    with open(log, "w") as out:
        proc = subprocess.Popen([FLOWCAST, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        me = psutil.Process(proc.pid)

        def server() -> list[psutil.Process]:  # its temporary server's process, started, not yet answering
            return [p for p in me.children() if "uvicorn" in " ".join(p.cmdline())]

        wait_for("the temporary server's process", server, proc, log, 240)
        assert "polling for scheduled runs" not in log.read_text()
        left = [p for p in me.children(recursive=True)]  # the server and the watchdog
        code, said = signal_and_wait(proc, log, 60)
        assert code == 0, said
        assert EARLY_STOP_SAID in said and "Traceback" not in said, said
        _, alive = psutil.wait_procs(left, timeout=30)
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], [p.cmdline() for p in alive]
        from datetime import UTC, datetime

        with serve_lock(home, prefect_home=prefect_home, api_url=None, since=datetime.now(UTC)):
            pass  # (free: the next serve starts)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
