"""`flowcast serve` against a real Prefect server (PREFECT_API_URL) loses no cron slot between its missed-slot check and
the server's first scheduling of the deployments it registered (soak45): Prefect's scheduler service schedules a
deployment from the instant it looks at it, never a slot before, and the registration deletes its future scheduled
runs (a stopped serve's pause deleted them already). The serve creates the runs of the slots from the check's instant
to SCHEDULE_CHECK_S after the registration itself (`settle_schedules`), with the service's idempotency key: a slot both
schedule has one run. Real `prefect server start` processes on loopback."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect_server import prefect_server

pytestmark = pytest.mark.timeout(600)


def _slots(client: Any, deployment_id: Any) -> Counter[datetime]:
    """The deployment's runs per slot (expected start), any state."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return Counter(r.expected_start_time for r in runs)


def _every_minute(name: str, paused: bool) -> Any:
    """A forecast deployment `name` with an every-minute cron, slugged as the serve's are (`build_deployments`)."""
    from prefect.schedules import Cron

    from flowcast.flows import forecast_flow

    return forecast_flow.to_deployment(name, schedules=[Cron("* * * * *", timezone="UTC", slug="forecast")],
                                       paused=paused)


@pytest.mark.parametrize("services", [True, False], ids=["scheduler", "no-services"])
def test_the_slots_between_the_check_and_the_servers_first_scheduling_run_once(tmp_path, monkeypatch, services):
    """A serve stopped (its deployment paused: no scheduled run left) and started again: its check covered the slots
    before `since`, then it registered the deployment. With the server's scheduler, the slots before its first look at
    the deployment got no run (checked here first: what lost them); `settle_schedules` creates them, and every slot
    from `since` on has one run, the ones both scheduled too, and nothing is said. Without the scheduler service
    (`--no-services`), the serve's own runs (slots before `until`) do not hide it: the warning is said."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows import deploy
    from flowcast.flows.deploy import settle_schedules, unscheduled

    monkeypatch.setattr(deploy, "SCHEDULE_CHECK_S", 60.0 if services else 3.0)
    name = f"every-minute-{uuid.uuid4().hex[:8]}"
    with prefect_server(tmp_path / "server", args=() if services else ("--no-services",)) as srv, \
            temporary_settings({PREFECT_API_URL: srv.api}), get_client(sync_client=True) as client:
        _every_minute(name, paused=True).apply()  # as a stopped serve left it
        since = datetime.now(UTC) - timedelta(seconds=70)  # the check's instant: 1 or 2 whole minutes before now
        did = _every_minute(name, paused=False).apply()  # the serve's registration
        registered = datetime.now(UTC)
        gap = _slots_between(since, registered)
        assert gap
        if services:
            assert unscheduled([f"forecast/{name}"], 60) == []  # the server scheduled, from its own now on ...
            assert not set(gap) & set(_slots(client, did)), _slots(client, did)  # ... none of the slots before
        until = registered + timedelta(seconds=90)  # (past the server's first scheduled slot: both schedule some)
        said: list[str] = []
        settle_schedules([(did, f"forecast/{name}")], since, until, said.append)
        slots = _slots(client, did)

    if services:
        assert said == []
        assert set(slots.values()) == {1}, slots  # none twice, the slots both scheduled included
        times = sorted(slots)
        assert times[0] == gap[0] and times[-1] > until, times  # from the check's instant on, beyond `until` ...
        assert all((b - a) == timedelta(minutes=1) for a, b in itertools.pairwise(times)), times  # ... none lost
    else:
        [sentence] = said
        assert f"the Prefect API {srv.api} created no scheduled run of forecast/{name} within 3 s" in sentence, said
        assert sorted(slots) == _slots_between(since, until) and set(slots.values()) == {1}, slots


def _slots_between(start: datetime, end: datetime) -> list[datetime]:
    """The whole minutes from `start` (inclusive) to `end` (exclusive)."""
    first = start.replace(second=0, microsecond=0) + (timedelta(minutes=1) if start.second or start.microsecond
                                                      else timedelta(0))
    return list(itertools.takewhile(lambda t: t < end, (first + timedelta(minutes=i) for i in itertools.count())))

