"""A second `flowcast serve` or `flowcast deploy` (a restart, a serve after a deploy) registers the same deployments
again, on a real Prefect server (the test harness's: Prefect's server in its own process)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import prefect_deploy_all


async def _first_slot_picked_up(client: Any, deployment_id: Any) -> tuple[list[Any], datetime]:
    """(the deployment's schedule ids, its first slot): its runs scheduled as Prefect's scheduler does, the first one
    Pending as a runner (or a worker) leaves it once it took it, some seconds before its slot (prefetch)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Pending

    from flowcast.flows.deploy import RunScheduler

    await RunScheduler([deployment_id]).schedule(client)
    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
    slot = min(runs, key=lambda r: r.expected_start_time)
    await client.set_flow_run_state(slot.id, Pending(), force=True)
    return [s.id for s in (await client.read_deployment(deployment_id)).schedules], slot.expected_start_time


async def _slots(client: Any, deployment_id: Any) -> tuple[list[Any], list[str | None], Counter[datetime]]:
    """(schedule ids, their slugs, runs per slot) once the scheduler's next turn scheduled the deployment's runs."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from flowcast.flows.deploy import RunScheduler

    await RunScheduler([deployment_id]).schedule(client)
    runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    schedules = (await client.read_deployment(deployment_id)).schedules
    return [s.id for s in schedules], [s.slug for s in schedules], Counter(r.expected_start_time for r in runs)


def _registered_twice(first: Callable[[], Any], again: Callable[[], Any], slug: str) -> None:
    """Register (`first`: returns the deployment's id), pick its first slot up, register again (`again`), and check
    that the schedule stayed (same id, `slug`) and that no slot has two runs."""
    from prefect.client.orchestration import get_client

    async def picked_up() -> tuple[Any, list[Any], datetime]:
        did = await first()
        async with get_client() as client:
            return (did, *await _first_slot_picked_up(client, did))

    did, before, slot = asyncio.run(picked_up())
    assert again() == did

    async def scheduled() -> tuple[list[Any], list[str | None], Counter[datetime]]:
        async with get_client() as client:
            return await _slots(client, did)

    after, slugs, slots = asyncio.run(scheduled())
    assert slots[slot] == 1, f"the slot {slot}, picked up by a runner, has {slots[slot]} runs"
    assert after == before and slugs == [slug]
    assert len(slots) >= 3 and set(slots.values()) == {1}


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("flow", ["retrain", "forecast"])
def test_serving_an_unchanged_schedule_again_keeps_it_and_schedules_no_slot_twice(tmp_path, flow):
    """Regression: each registration of a deployment (every `flowcast serve` start: Prefect's `apply`) replaced its
    cron schedule by a new one (a new id), and a scheduled run is one per (schedule id, slot). A run of the old
    schedule that a runner had picked up already (Pending: Prefect deletes only the Scheduled runs of a replaced
    schedule) stayed, and the new schedule scheduled the same slot again: two runs of one slot, the second saying
    the slot was retrained already. Flowcast's schedules carry a slug (their flow's name), by which Prefect updates
    the schedule in place: its id, and so each slot's one run, stay."""
    from flowcast.flows.deploy import build_deployments

    name = f"{flow}-{uuid.uuid4().hex[:8]}"  # this test's own deployment on the session's server

    def registration() -> Any:  # what each `flowcast serve` registers (built outside an event loop, as serve does)
        deployment = {d.name: d for d in build_deployments({"home": str(tmp_path)})}[flow]
        deployment.name = name
        return deployment

    once, again = registration(), registration()
    _registered_twice(once.aapply, again.apply, flow)


@pytest.mark.usefixtures("prefect_api")
def test_deploying_an_unchanged_schedule_again_keeps_it_and_schedules_no_slot_twice(monkeypatch):
    """The same, of the work-pool deployments `flowcast deploy` deploys (`prefect deploy --all` of
    deployments/prefect.yaml, twice), whose schedules carry the same slugs."""
    from prefect.client.orchestration import get_client

    monkeypatch.chdir(Path(__file__).resolve().parents[2])

    def deployed() -> Any:
        prefect_deploy_all()
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name("forecast/forecast-pool").id

    async def first() -> Any:
        return await asyncio.to_thread(deployed)

    _registered_twice(first, deployed, "forecast")
