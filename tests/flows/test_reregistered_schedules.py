"""A second `flowcast serve` (or a serve after a `flowcast deploy`, a restart) registers the same deployments again,
on a real Prefect server (the test harness's: Prefect's server in its own process)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import pytest


async def _runs(client: Any, deployment_id: Any) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return list(await client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(
        any_=[deployment_id]))))


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("flow", ["retrain", "forecast"])
def test_registering_an_unchanged_schedule_again_keeps_it_and_schedules_no_slot_twice(tmp_path, flow):
    """Regression: each registration of a deployment (every `flowcast serve` start: Prefect's `apply`) replaced its
    cron schedule by a new one (a new id), and a scheduled run is one per (schedule id, slot). A run of the old
    schedule that a runner had picked up already (Pending: a runner takes a run some seconds before its slot, and
    Prefect deletes only the Scheduled runs of a replaced schedule) stayed, and the new schedule scheduled the same slot
    again: two runs of one slot, the second saying the slot was retrained already. Flowcast's schedules carry a slug
    ('retrain', 'forecast'), by which Prefect updates the schedule in place: its id, and so each slot's one run, stay."""
    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    from flowcast.flows.deploy import RunScheduler, build_deployments

    name = f"{flow}-{uuid.uuid4().hex[:8]}"  # this test's own deployment on the session's server

    def registration() -> Any:  # what each `flowcast serve` registers (built outside an event loop, as serve does)
        deployment = {d.name: d for d in build_deployments({"home": str(tmp_path)})}[flow]
        deployment.name = name
        return deployment

    once, again = registration(), registration()

    async def serve_twice() -> tuple[list[Any], list[Any], datetime, Counter[datetime]]:
        async with get_client() as client:
            did = await once.aapply()
            first = (await client.read_deployment(did)).schedules
            await RunScheduler([did]).schedule(client)
            slot = min(await _runs(client, did), key=lambda r: r.expected_start_time)
            await client.set_flow_run_state(slot.id, Pending(), force=True)  # the runner took it (prefetch)
            assert await again.aapply() == did  # the second serve
            second = (await client.read_deployment(did)).schedules
            await RunScheduler([did]).schedule(client)  # the scheduler's next turn
            slots = Counter(r.expected_start_time for r in await _runs(client, did))
            return first, second, slot.expected_start_time, slots

    first, second, slot, slots = asyncio.run(serve_twice())
    assert slots[slot] == 1, f"the slot {slot} has {slots[slot]} runs"
    assert [s.id for s in second] == [s.id for s in first] and [s.slug for s in second] == [flow]
    assert len(slots) >= 3 and set(slots.values()) == {1}
