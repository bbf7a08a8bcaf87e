"""`flowcast backfill --deployment` run in a terminal, its flow run cancelled from the UI (serve51): the backfill runs
in-process, so no worker stops it or runs its `on_cancellation` hook, and its dates not yet started waited and ran
later. It reads its own run's state as it waits on its dates (flowcast.flows.fanout._watch_own_run): the dates not
started are cancelled with the hook's message, a date already running ends as it ends, the backfill's run ends
Cancelled and the command exits 1 saying so. A real `prefect server` on loopback, a real `flowcast backfill` process,
a retrain deployment (no model needed) in no work pool (nothing runs its dates: the test plays the one
worker that runs one date)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from flow_helpers import tiny_toml, write_series
from prefect_server import Server, http, prefect_server

FLOWCAST = str(Path(sys.executable).parent / "flowcast")


def _runs(srv: Server, **flt: Any) -> list[dict[str, Any]]:
    r = http("POST", f"{srv.api}/flow_runs/filter", json={**flt, "limit": 200}).raise_for_status()
    return list(r.json())


def _set(srv: Server, run_id: str, state: dict[str, Any]) -> None:
    http("POST", f"{srv.api}/flow_runs/{run_id}/set_state", json={"state": state, "force": True}).raise_for_status()


@pytest.mark.timeout(900)
def test_a_cli_backfill_cancelled_from_the_ui_cancels_its_dates_not_started_and_exits(tmp_path):
    from flowcast.flows.fanout import CANCELLED_BACKFILL

    csv, cfg, home = write_series(tmp_path / "sales.csv"), tmp_path / "flowcast.toml", tmp_path / "home"
    cfg.write_text(tiny_toml(csv))
    with prefect_server(tmp_path / "server") as srv:
        flow_id = http("POST", f"{srv.api}/flows/", json={"name": "retrain"}).raise_for_status().json()["id"]
        name = f"cancel-{uuid4().hex[:8]}"
        deployment = http("POST", f"{srv.api}/deployments/",
                          json={"name": name, "flow_id": flow_id}).raise_for_status().json()["id"]
        log = tmp_path / "backfill.log"
        proc = srv.start([FLOWCAST, "backfill", "--deployment", f"retrain/{name}", "--mode", "retrain", "--dataset", "tiny", "--config",
                          str(cfg), "--home", str(home), "--start", "2012-01-01", "--end", "2012-03-01",
                          "--every", "1mo"], log)
        dates = srv.wait(lambda: len(r := _runs(srv, deployments={"id": {"any_": [deployment]}})) == 3 and r, 300,
                         "the backfill's three date runs")
        by_date = {r["parameters"]["as_of"][:10]: r["id"] for r in dates}
        parent = _runs(srv, flows={"name": {"any_": ["backfill"]}})[0]
        _set(srv, by_date["2012-02-01"], {"type": "RUNNING"})  # underway: left to end as it ends
        _set(srv, parent["id"], {"type": "CANCELLING", "message": "Cancelled by a person in the UI"})
        why = CANCELLED_BACKFILL.format(name=parent["name"], id=parent["id"])

        def state(run_id: str) -> dict[str, Any]:
            return dict(http("GET", f"{srv.api}/flow_runs/{run_id}").raise_for_status().json()["state"])

        srv.wait(lambda: all(state(by_date[d])["type"] == "CANCELLED" for d in ("2012-01-01", "2012-03-01")), 120,
                 f"the dates not started cancelled: {log.read_text()[-3000:]}")
        time.sleep(3)  # (the backfill waits on the running date meanwhile)
        assert proc.poll() is None, log.read_text()[-3000:]
        _set(srv, by_date["2012-02-01"], {"type": "COMPLETED", "message": "done by the test's worker"})
        code, said = proc.wait(timeout=120), log.read_text()
        assert code == 1, said[-3000:]
        assert {d: (state(r)["type"], state(r)["message"]) for d, r in by_date.items()} == {
            "2012-01-01": ("CANCELLED", why), "2012-02-01": ("COMPLETED", "done by the test's worker"),
            "2012-03-01": ("CANCELLED", why)}, said[-3000:]
        own = state(parent["id"])
        assert own["type"] == "CANCELLED", (own, said[-3000:])
        line = ("The backfill's flow run was cancelled as it waited on its dates: 2 dates not run, their runs cancelled "
                "before they started; it waited for the 1 date that had started to end")
        assert own["message"].startswith(line), own
        assert "error: " + line in " ".join(said.split()), said[-3000:]
