"""Smoke test against a real `prefect server start` on a free loopback port (SQLite in a temp
PREFECT_HOME): serve the deployments from a second process, trigger `forecast` through the API,
wait for Completed, read its artifacts back, then shut both processes down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from flow_helpers import artifacts_of
from prefect_server import free_port as _free_port
from prefect_server import http as _http
from prefect_server import stop as _stop

from flowcast.reporting import artifact_key
from flowcast.store import EmbeddedStore


def _wait(predicate, timeout: float, what: str, procs: list[subprocess.Popen], logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p, log in zip(procs, logs):
            if p.poll() is not None:
                pytest.fail(f"{what}: a process exited early (rc {p.returncode}):\n{log.read_text()[-3000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")


@pytest.mark.slow
def test_served_forecast_deployment_runs_through_a_real_server(production_home, tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"}
    env.pop("PREFECT_API_KEY", None)
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    params = json.dumps(production_home)
    serve_code = ("import json, sys; from flowcast.flows.deploy import serve_all; "
                  "serve_all(json.loads(sys.argv[1]))")
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=server_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        ))

        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200  # not retried: polled
            except httpx.HTTPError:
                return False

        _wait(healthy, 120, "the Prefect server", procs, [server_log])
        procs.append(subprocess.Popen(
            [sys.executable, "-c", serve_code, params], env=env, cwd=tmp_path,
            stdout=serve_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        ))
        logs = [server_log, serve_log]

        def all_deployments() -> dict[str, str] | None:
            # `serve` registers its deployments one after another: wait for all three, not the first.
            r = _http("POST", f"{api}/deployments/filter", json={"limit": 20})
            ids = {d["name"]: d["id"] for d in r.json()} if r.status_code == 200 else {}
            return ids if {"retrain", "forecast", "backfill"} <= set(ids) else None

        dep = _wait(all_deployments, 90, "the three served deployments", procs, logs)["forecast"]
        as_of = datetime(2019, 9, 1)
        run = _http("POST", f"{api}/deployments/{dep}/create_flow_run",
                    json={"parameters": {"as_of": as_of.isoformat()}})
        assert run.status_code in (200, 201), run.text
        run_id = run.json()["id"]

        def final_state() -> dict | None:
            r = _http("GET", f"{api}/flow_runs/{run_id}")
            if r.status_code != 200:
                return None
            state = r.json()["state"]
            return state if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        state = _wait(final_state, 180, "the forecast flow run", procs, logs)
        assert state["type"] == "COMPLETED", f"{state}\n{serve_log.read_text()[-3000:]}"

        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            arts = artifacts_of(run_id)
        assert {artifact_key(k, "tiny") for k in ("quality", "plot", "receipt")} <= set(arts), sorted(arts)
        (made,) = arts[artifact_key("receipt", "tiny")]
        receipt = {r["field"]: r["value"] for r in json.loads(made.data)}
        # the run's receipt: made by this run (the artifact's own page links it; the table has no bare id row)
        assert receipt["published"].startswith("24 forecast rows of 4 series of tiny") and str(made.flow_run_id) == run_id
        assert EmbeddedStore(Path(production_home["home"]) / "warehouse").has("tiny", as_of)
    finally:
        for p in reversed(procs):
            _stop(p)
