"""A fanned-out backfill (`backfill --deployment`) whose date finds no room to write stops as `flowcast backfill` does
(flowcast.flows.backfill.stops_on_no_room): the dates whose flow runs had not started are cancelled and listed `not
run`, naming the folder that is full and the room left there; a run already running ends as it ends. faults49: every
date ran on the full disk. Real flow runs of a deployment on the session's Prefect API; this test plays the worker."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from uuid import uuid4

import pytest
from prefect.settings import PREFECT_API_URL

from flowcast.flows.backfill import NOT_RUN, stops_on_no_room
from flowcast.flows.fanout import FanOut, fan_out

DATES = [datetime(2018, 1, 1), datetime(2018, 2, 1), datetime(2018, 3, 1)]
FULL = ("Flow run encountered an exception: PublishError: could not write forecasts of dataset tiny as_of 2018-01-01 "
        "to {store}/forecasts/x: No space left on device [ENOSPC] (the disk is full) (40,960 bytes to write, 0 bytes "
        "free in {store}); previously published forecasts are intact")


def _deployment() -> str:
    """A deployment of a flow named `forecast`, in no work pool: this test plays its worker."""
    from prefect.client.orchestration import get_client

    name = f"full-{uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_deployment(flow_id=client.create_flow_from_name("forecast"), name=name)
    return f"forecast/{name}"


@pytest.mark.timeout(300)
def test_a_fanned_out_date_that_finds_no_room_stops_the_dates_not_started(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.states import Completed, Failed, Running

    assert PREFECT_API_URL.value()
    deployment = _deployment()
    store, home = tmp_path / "store", tmp_path / "home"
    store.mkdir()
    home.mkdir()
    plan = FanOut(deployment=deployment, dataset="tiny", mode="forecast", backfill_run_id="full", wait_timeout_s=120)
    failed: list[BaseException] = []

    def runs() -> dict[str, object]:
        with get_client(sync_client=True) as client:
            found = client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[deployment.split("/")[1]])))
        return {r.parameters["as_of"][:10]: r for r in found}

    def worker() -> None:
        try:
            deadline = time.monotonic() + 60
            while len(found := runs()) < len(DATES):
                assert time.monotonic() < deadline, "the dates' flow runs were never created"
                time.sleep(0.2)
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(found["2018-02-01"].id, Running(), force=True)  # underway: not stopped
                client.set_flow_run_state(found["2018-01-01"].id, Running(), force=True)
                client.set_flow_run_state(found["2018-01-01"].id, Failed(message=FULL.format(store=store)),
                                          force=True)
                time.sleep(3)  # the backfill stops meanwhile; the running date ends as it ends
                client.set_flow_run_state(found["2018-02-01"].id, Completed(message="done by the test's worker"),
                                          force=True)
        except BaseException as exc:  # noqa: BLE001 - said by the test below
            failed.append(exc)

    said: list[str] = []
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    outcomes = fan_out(plan, DATES, {}, lambda _: None, said.append, stops=stops_on_no_room([store, home]))
    thread.join(30)
    assert not failed, failed
    assert [(o["as_of"][:10], o["status"]) for o in outcomes] == [
        ("2018-01-01", "failed"), ("2018-02-01", "skipped"), ("2018-03-01", NOT_RUN)], outcomes
    why = outcomes[2]["error"]
    assert why.startswith("the backfill stopped at 2018-01-01, whose run found no room to write; 40,960 bytes to "
                          "write, "), why
    assert why.endswith(f" bytes free in {store}"), why  # the store's folder that its error names, not the home
    assert runs()["2018-03-01"].state.is_cancelled()  # no worker runs it now
    assert outcomes[2]["flow_run_id"] == str(runs()["2018-03-01"].id)
    assert any("cancelled before it started: the backfill stopped" in s for s in said), said
