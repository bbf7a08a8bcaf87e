"""A fanned-out backfill date (`backfill --deployment`) whose Prefect API stops answering while its flow run is created
and while it is awaited (flowcast.flows.fanout._through_api_restarts): it waits for the API, as a date run in process
does (flowcast.flows.backfill._child_state), and the date ends as its one flow run ends."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from uuid import uuid4

import pytest
from api_relay import Relay, relay_to
from prefect.settings import PREFECT_API_URL, temporary_settings

from flowcast.flows.fanout import FanOut, _one_date

AS_OF = datetime(2019, 3, 1)
# how Prefect's `wait_for_flow_run` reads the run, once its events websocket is open: when its reply has reached the
# wait, the wait listens (`Relay.replied`: it slept 1 s after the run's creation was said, ops53)
WAIT_READ = rb"GET /api/flow_runs/[0-9a-f-]{36} "


def _deployment(api: str) -> str:
    """A deployment of a flow named `forecast` on the API at `api`, in no work pool: this test plays its worker."""
    from prefect.client.orchestration import get_client

    name = f"bf43-{uuid4().hex[:8]}"
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("forecast")
        client.create_deployment(flow_id=flow_id, name=name)
    return f"forecast/{name}"


@pytest.mark.timeout(300)
def test_a_fanned_out_date_waits_for_its_api_restarted_as_its_run_is_created_and_awaited(prefect_api):
    """bf43: the API restarting while a fanned-out date's run was created, or while the backfill waited for it,
    failed the date at once ('ConnectError: All connection attempts failed'), its run left to go on unwatched,
    where a date run in process waits for the API (faults42). Here the API is out of reach when the date's run is
    created, then the reply to its creation is lost, then the API is gone again while the run is awaited: the date
    waits, saying so, and ends as its one flow run does (created again with the same idempotency key: no second
    run of the date, none left Pending)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.states import Completed

    api = PREFECT_API_URL.value()
    deployment = _deployment(api)
    plan = FanOut(deployment=deployment, dataset="tiny", mode="forecast", backfill_run_id="b1", wait_timeout_s=120)
    said: list[str] = []
    worker_failed: list[BaseException] = []

    def runs() -> list:
        with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            return client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[deployment.split("/")[1]])))

    def restarts_and_worker(relay: Relay) -> None:
        try:
            listening = relay.replied(WAIT_READ)  # (the first read of a run by id through the relay is the wait's)
            time.sleep(2)  # the date's run is being created: no API answers
            relay.lose_reply_to = b"POST /api/deployments/"  # then its creation is carried out, the reply lost
            relay.up()
            # created, the backfill waits for it: its wait listens on its events websocket once it has read the run
            # (`WAIT_READ`). Cut sooner, the API was gone while the wait read the run: a request Prefect's client
            # retries for itself, silently, 2, 4, 8... s apart, which outlasted the 20 s or not as its jitter fell,
            # and then the date said nothing (seen once the relay refused: fixC52); a 1 s sleep was not always enough
            assert listening.wait(60), f"the wait never read the date's flow run: {said}"
            assert any(s.startswith("2019-03-01: flow run ") for s in said), said
            relay.down()  # the API goes away while it waits, and is back 20 s later: longer than the events
            time.sleep(20)  # websocket of Prefect's wait reconnects for (10 tries, about 10 s)
            relay.up()
            time.sleep(2)
            (run,) = runs()  # a worker runs it
            with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
                client.set_flow_run_state(run.id, Completed(message="done by the test's worker"), force=True)
        except BaseException as exc:  # noqa: BLE001 - said by the test below
            worker_failed.append(exc)

    with relay_to(api) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        worker = threading.Thread(target=restarts_and_worker, args=(relay,), daemon=True)
        worker.start()
        outcome = asyncio.run(_one_date(plan, AS_OF, {}, lambda _: None, said.append))
        worker.join(30)
    assert not worker_failed, worker_failed
    assert relay.lost == 1
    (run,) = runs()  # created again with the date's idempotency key: the run the lost reply named, no other
    assert (outcome["status"], outcome["state"], outcome["attempts"], outcome["flow_run_id"]) == (
        "skipped", "Completed", 1, str(run.id)), (outcome, said)
    waits = [s for s in said if "waiting up to 90s for it" in s]
    assert any(f"then starting its flow run on {deployment}" in s for s in waits), said
    assert any("then waiting for its flow run" in s for s in waits), said
    assert all(s.startswith("2019-03-01: the Prefect API at ") for s in waits), said


@pytest.mark.timeout(300)
def test_a_fanned_out_date_waits_for_its_flow_run_no_longer_than_wait_timeout_across_api_restarts(prefect_api):
    """lock43: each wait made again after the API came back started `wait_timeout` anew, so a date whose API restarted
    while its run was awaited waited up to `API_TRIES` x wait_timeout (6 h each). One deadline per flow run: here the
    API is gone longer than wait_timeout while the date's run (which no worker takes) is awaited, and once it is back
    the date fails at once, as timed out, where it waited wait_timeout (30 s) again."""
    from flowcast.flows.fanout import API_TRIES

    assert API_TRIES > 1
    api = PREFECT_API_URL.value()
    deployment = _deployment(api)
    plan = FanOut(deployment=deployment, dataset="tiny", mode="forecast", backfill_run_id="b2", wait_timeout_s=30)
    said: list[str] = []
    back: list[float] = []
    listened: list[bool] = []

    def restart(relay: Relay) -> None:
        listening = relay.replied(WAIT_READ)
        relay.up()
        listened.append(listening.wait(60))  # created, and the backfill's wait listens (as above)
        relay.down()  # gone for longer than wait_timeout (Prefect's wait gives up on it after about 10 s)
        time.sleep(35)
        relay.up()
        back.append(time.monotonic())

    with relay_to(api) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        restarter = threading.Thread(target=restart, args=(relay,), daemon=True)
        restarter.start()
        outcome = asyncio.run(_one_date(plan, AS_OF, {}, lambda _: None, said.append))
        ended = time.monotonic()
        restarter.join(60)
    # Prefect's own wait usually raises while the API is gone, and the date says so and waits for it, then again; under
    # load its wait can still be retrying when wait_timeout passes (CI at 790eedc2 saw that order, nothing said): either
    # way the date fails as timed out, and no later than a few seconds after the API is back (below)
    assert listened == [True], "the wait never read the date's flow run"
    assert (outcome["status"], outcome["attempts"]) == ("failed", 1), outcome
    assert "did not finish within 30s" in outcome["error"], outcome
    assert outcome["flow_run"] and outcome["run_id"] == outcome["flow_run_id"], outcome  # (built on `not_run_outcome`)
    assert (outcome["rows"], outcome["model"], outcome["worker"], outcome["state"]) == (0, None, None, None), outcome
    assert back and ended - back[0] < 8, f"waited {ended - back[0]:.0f}s more once the API was back (wait_timeout 30 s)"
