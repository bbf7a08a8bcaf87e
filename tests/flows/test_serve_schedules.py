"""`flowcast serve` on Prefect's temporary server schedules its cron slots (proc32): that server runs no scheduler
service, and nothing created the runs of the served deployments' schedules: their slots never fired."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from test_deploy import _said


async def _scheduled(client: Any, deployment_id: Any) -> list[datetime]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
    return sorted(r.expected_start_time for r in runs)


def test_a_served_deployments_cron_slots_are_scheduled_on_the_temporary_server_until_serve_stops(prefect_api):
    """Regression (proc32): a `flowcast serve` without PREFECT_API_URL registered its deployments with their crons on
    Prefect's temporary server, which runs no scheduler service: no run was ever scheduled, so no slot fired (a
    deployment every 5 s: 0 runs after 30 s there, 100 within 11 s on `prefect server start`). The serve's runner
    schedules them itself (`RunScheduler`, what Prefect's scheduler service does), each cron slot one Scheduled run, and
    stops before its stop pauses the deployments (which deletes their scheduled runs): none is scheduled after that.
    The temporary server here is the test harness's (Prefect's SubprocessASGIServer, as serve's)."""
    from prefect.client.orchestration import get_client
    from prefect.schedules import Cron

    from flowcast.flows import forecast_flow
    from flowcast.flows.deploy import RunScheduler, stopping_runner

    deployment = forecast_flow.to_deployment(f"forecast-{uuid.uuid4().hex[:8]}",
                                             schedules=[Cron("* * * * *", timezone="UTC")])

    async def serve_briefly() -> tuple[list[datetime], Any, list[datetime], bool]:
        runner = stopping_runner()(pause_on_shutdown=True)
        did = await runner.aadd_deployment(deployment)
        async with get_client() as client:
            assert await _scheduled(client, did) == []  # (the temporary server schedules nothing itself)
            runner.scheduler = scheduler = RunScheduler([did], every=0.2)
            async with runner:  # (its exit pauses the deployments: StoppingRunner._pause_schedules)
                scheduler.start()
                deadline = time.monotonic() + 60
                while len(runs := await _scheduled(client, did)) < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # 5 turns of the scheduler, had it gone on after the pause
            return runs, scheduler, await _scheduled(client, did), (await client.read_deployment(did)).paused

    runs, scheduler, after, paused = asyncio.run(serve_briefly())
    assert len(runs) >= 3, runs
    assert all(t.second == 0 and t.microsecond == 0 for t in runs)  # the cron's slots, one run each
    assert all((b - a).total_seconds() == 60 for a, b in itertools.pairwise(runs))
    assert scheduler._task is None  # stopped with the serve
    assert paused and after == []  # paused, its scheduled runs deleted, and none scheduled again


def test_the_serves_scheduler_passes_a_paused_deployment_over(prefect_api):
    """A deployment paused while serve runs (in the UI) gets no run scheduled, as Prefect's scheduler service passes it
    over; resumed, its slots are scheduled again."""
    from prefect.client.orchestration import get_client
    from prefect.schedules import Cron

    from flowcast.flows import forecast_flow
    from flowcast.flows.deploy import RunScheduler

    deployment = forecast_flow.to_deployment(f"forecast-{uuid.uuid4().hex[:8]}", paused=True,
                                             schedules=[Cron("* * * * *", timezone="UTC")])

    async def schedule() -> tuple[list[datetime], list[datetime]]:
        async with get_client() as client:
            did = await deployment.aapply()
            await RunScheduler([did]).schedule(client)
            paused = await _scheduled(client, did)
            await client.resume_deployment(did)
            await RunScheduler([did]).schedule(client)
            return paused, await _scheduled(client, did)

    paused, resumed = asyncio.run(schedule())
    assert paused == [] and len(resumed) >= 3


def test_the_serves_scheduler_vacuums_the_homes_old_runs_as_it_starts(prefect_api, tmp_path):
    """gc44: the serve's scheduler turn (the temporary server's) also vacuums the home's ended flow runs
    (`ServeVacuum`, `retention.prefect_runs_days`; 0 here), where only `flowcast gc` did; another home's stay."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Completed

    from flowcast.flows.deploy import RunScheduler
    from flowcast.ops.prefect_runs import ServeVacuum

    @flow(name="forecast")
    def parent(home: str) -> None:
        pass

    home, other = str(tmp_path / "home"), str(tmp_path / "other")
    said: list[str] = []

    async def serve_briefly() -> list[str]:
        async with get_client() as client:
            ids = [(await client.create_flow_run(parent, parameters={"home": h}, state=Completed())).id
                   for h in (home, other)]
            scheduler = RunScheduler([], every=0.2, vacuum=ServeVacuum(home, 0, clock=lambda: datetime.now(UTC), say=said.append))
            scheduler.start()
            deadline = time.monotonic() + 60
            while scheduler.vacuum is not None and scheduler.vacuum.last is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await scheduler.stop()
            assert scheduler.vacuum is not None and scheduler.vacuum.stopping.is_set()  # a vacuum under way stops too
            # (by id: a page of every run, the API's default limit, can miss them once the session's API holds more)
            by_id = FlowRunFilter(id=FlowRunFilterId(any_=ids))
            left = [str(r.parameters["home"]) for r in await client.read_flow_runs(flow_run_filter=by_id)]
        return left

    assert asyncio.run(serve_briefly()) == [other]
    assert said == [("removed 1 flow run of this home that ended more than 0 days ago (retention.prefect_runs_days) "
                     "from Prefect's temporary server, with 0 logs and 0 artifacts")], said


def test_the_serves_first_turn_schedules_from_the_instant_the_missed_slot_check_covered(prefect_api):
    """Regression (soak44): serve checked for missed slots at 15:15:56 (those before it are named) and scheduled from its
    own now at 15:16:02: the 15:16 slot was neither run nor named. The first turn schedules from the check's instant
    (`since`, inclusive), so a slot between the two gets its run; the later turns schedule none of them twice."""
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.schedules import Cron

    from flowcast.flows import forecast_flow
    from flowcast.flows.deploy import RunScheduler

    deployment = forecast_flow.to_deployment(f"forecast-{uuid.uuid4().hex[:8]}",
                                             schedules=[Cron("* * * * *", timezone="UTC")])
    slot = datetime.now(UTC).replace(second=0, microsecond=0)  # a slot at or before now: between check and turn
    since = slot - timedelta(seconds=4)

    async def serve_briefly() -> list[datetime]:
        async with get_client() as client:
            did = await deployment.aapply()
            scheduler = RunScheduler([did], every=0.2, since=since)
            scheduler.start()
            deadline = time.monotonic() + 60
            while (len(await _scheduled(client, did)) < 3 or scheduler.since is not None) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # more turns, from their own now
            await scheduler.stop()
            return await _scheduled(client, did)

    runs = asyncio.run(serve_briefly())
    assert runs[0] == slot, runs  # the slot between the check and the first turn is scheduled (run, late)
    assert all((b - a).total_seconds() == 60 for a, b in itertools.pairwise(runs)), runs  # none twice


def test_the_serves_scheduler_stops_promptly_on_an_api_that_does_not_answer(prefect_api, monkeypatch):
    """serve49: the stop waited 30 s for the scheduler's request under way before the serve paused its deployments:
    on a hung API a Ctrl-C or SIGTERM paused nothing for 30 s. The request is cut off after SCHEDULER_STOP_WAIT_S,
    and said."""
    import threading

    from prefect.client.orchestration import PrefectClient

    from flowcast.flows import deploy

    asked = threading.Event()

    async def no_answer(self: Any, deployment_id: Any) -> Any:
        asked.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(PrefectClient, "read_deployment", no_answer)

    async def stop_while_asking() -> float:
        scheduler = deploy.RunScheduler([uuid.uuid4()], every=0.2)
        scheduler.start()
        deadline = time.monotonic() + 30
        while not asked.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert asked.is_set()
        t0 = time.monotonic()
        await scheduler.stop()
        return time.monotonic() - t0

    with _said("prefect") as said:
        took = asyncio.run(stop_while_asking())
    assert took < deploy.SCHEDULER_STOP_WAIT_S + 2, took
    assert any(m.startswith(f"the serve's scheduling of its runs had no answer from the Prefect API "
                            f"{deploy.SCHEDULER_STOP_WAIT_S:g} s into its stop: cut off") for m in said), said
