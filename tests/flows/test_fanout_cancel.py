"""A fanned-out backfill that is cancelled (the UI, `prefect flow-run cancel`) cancels its dates' flow runs that have not
started, each saying so naming the backfill (flowcast.flows.fanout.cancel_dates_not_started, the backfill flow's
`on_cancellation` hook); a date already running ends as it ends. fanout50: its dates stayed Scheduled and ran later.
Real flow runs of a deployment no worker serves, on the session's Prefect API; the hook is run as Prefect's runner runs
it once it has stopped a cancelled run's process (`prefect.runner._hook_runner.HookRunner`)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any
from uuid import uuid4

import pytest
from prefect import flow

from flowcast.flows.fanout import (
    CANCELLED_BACKFILL,
    FanOut,
    cancel_dates_not_started,
    children_filter,
    fan_out,
)

DATES = [datetime(2018, 1, 1), datetime(2018, 2, 1), datetime(2018, 3, 1)]


def _deployment() -> str:
    """A deployment of a flow named `forecast`, in no work pool: nothing picks its runs up but this test."""
    from prefect.client.orchestration import get_client

    name = f"cancel-{uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_deployment(flow_id=client.create_flow_from_name("forecast"), name=name)
    return f"forecast/{name}"


def _dates_of(parent: Any) -> dict[str, Any]:
    """The date runs the backfill run `parent` started, whatever their state, by as_of."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_run_filter=children_filter(str(parent), *StateType))
    return {r.parameters["as_of"][:10]: r for r in found}


@pytest.mark.timeout(300)
def test_a_cancelled_fanned_out_backfill_cancels_its_dates_not_started(prefect_api, monkeypatch):
    """The hook alone, as a worker runs it once it stopped the backfill's process: this backfill lives on, so its own
    reading of its run's state (`_watch_own_run`, which does the same for a backfill run in-process: serve51,
    test_backfill_cancel_cli.py) is put an hour apart, past this test."""
    from prefect.client.orchestration import get_client
    from prefect.runner._hook_runner import HookRunner
    from prefect.runtime import flow_run as current_run
    from prefect.states import Cancelling, Completed, Running
    from prefect.utilities.asyncutils import run_coro_as_sync

    from flowcast.flows import fanout

    monkeypatch.setattr(fanout, "OWN_RUN_POLL_S", 3600.0)
    deployment = _deployment()
    own: list[Any] = []
    failed: list[BaseException] = []

    @flow(name="backfill", on_cancellation=[cancel_dates_not_started])
    def backfill() -> list[dict[str, Any]]:
        own.append(current_run.id)
        plan = FanOut(deployment=deployment, dataset="tiny", mode="forecast", backfill_run_id=str(current_run.id),
                      wait_timeout_s=120)
        return fan_out(plan, DATES, {}, lambda _: None, lambda _: None)

    async def resolve(_: Any) -> Any:
        return backfill

    def cancel() -> None:  # the UI's cancel, then what the runner does once it has stopped the backfill's process
        try:
            deadline = time.monotonic() + 60
            while not own or len(found := _dates_of(own[0])) < len(DATES):
                assert time.monotonic() < deadline, "the dates' flow runs were never created"
                time.sleep(0.2)
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(found["2018-02-01"].id, Running(), force=True)  # underway: not cancelled
                client.set_flow_run_state(own[0], Cancelling(), force=True)
                parent = client.read_flow_run(own[0])
            assert parent.state is not None
            run_coro_as_sync(HookRunner(resolve_flow=resolve).run_cancellation_hooks(parent, parent.state))
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(found["2018-02-01"].id, Completed(message="done by the test"), force=True)
        except BaseException as exc:  # noqa: BLE001 - said by the test below
            failed.append(exc)

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    outcomes = backfill()
    thread.join(30)
    assert not failed, failed
    runs = _dates_of(own[0])
    with get_client(sync_client=True) as client:
        parent = client.read_flow_run(own[0])
    why = CANCELLED_BACKFILL.format(name=parent.name, id=parent.id)
    assert {d: (r.state.name, r.state.message) for d, r in runs.items()} == {
        "2018-01-01": ("Cancelled", why), "2018-02-01": ("Completed", "done by the test"),
        "2018-03-01": ("Cancelled", why)}
    assert why.startswith(f"not run: its backfill, flow run {parent.name!r} ({parent.id}), was cancelled")
    # a backfill that lives on (run in its own process) lists them with the reason
    assert [(o["as_of"][:10], o["status"], o["error"]) for o in outcomes if o["status"] == "failed"] == [
        ("2018-01-01", "failed", f"Cancelled after 1 flow run: {why}"),
        ("2018-03-01", "failed", f"Cancelled after 1 flow run: {why}")], outcomes


@pytest.mark.timeout(300)
def test_every_date_run_of_a_backfill_is_read_past_the_apis_page(prefect_api):
    """rev50b: the hook read its dates with no limit, the API's page of 200: a cancelled backfill of 230 dates left 30
    Scheduled, to run later. `children_runs` reads them page by page: 205 dates, all of them, each once."""
    from prefect import task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    from flowcast.flows.fanout import children_runs

    @task(name="fan-out")
    def fan() -> None:
        return None

    deployment = _deployment()
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        parent = client.create_flow_run(flow=flow(name="backfill")(lambda: None))
        parent_task = client.create_task_run(fan, flow_run_id=parent.id, dynamic_key="0")
        made = {client.create_flow_run_from_deployment(dep.id, parent_task_run_id=parent_task.id).id
                for _ in range(205)}
    found = children_runs(str(parent.id), StateType.SCHEDULED)
    assert len(found) == 205 and {r.id for r in found} == made
