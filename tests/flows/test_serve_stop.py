"""flowcast.flows.deploy: the stop of `flowcast serve` (serveR48): the registration a SIGTERM cuts off, the pause of
the deployments, and the SIGTERM handler after the serve."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from typing import Any

import hung_registration_child
import pytest
from hung_registration_child import hung_registration
from test_deploy import _said


def _deployments(n: int) -> list[Any]:
    """`n` deployments of the forecast flow, each named anew, with a schedule."""
    from prefect.schedules import Cron

    from flowcast.flows import forecast_flow

    return [forecast_flow.to_deployment(f"forecast-{uuid.uuid4().hex[:8]}",
                                        schedules=[Cron("* * * * *", timezone="UTC")]) for _ in range(n)]


def _paused(*deployments: Any) -> dict[str, bool]:
    """Whether the API holds each of `deployments` paused, by name (one it does not hold is not named)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {d.name: d.paused for d in client.read_deployments() if d.name in {x.name for x in deployments}}


async def _not_cut_off(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
    raise AssertionError("not cut off")


def _serve_signalled_as(monkeypatch: Any, hung: Any, on_cancel: Any, taken: bool = False, since: Any = None,
                        signum: int = signal.SIGTERM, done: Any = None) -> None:
    """`serve` of `done` (by default `_deployments(1)`) and `hung` (their slots from `since`), this process sent
    `signum` (SIGINT: a Ctrl-C, raised) once the registration of `hung` is under way (an API that does not answer it:
    `hung_registration`; `taken`: that registered it all the same); `on_cancel(self, aapply, args, kwargs)`: what that
    registration does once the stop cuts it off (awaited, its cancel taken)."""
    from prefect.deployments.runner import RunnerDeployment

    from flowcast.flows.deploy import serve

    in_flight = threading.Event()
    monkeypatch.setattr(RunnerDeployment, "aapply", hung_registration(hung.name, in_flight.set, on_cancel, _not_cut_off,
                                                                      taken=taken))
    threading.Thread(target=lambda: in_flight.wait(60) and os.kill(os.getpid(), signum), daemon=True).start()
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    # (a suite started with SIGINT ignored gives Python no KeyboardInterrupt handler: hung_registration_child.main)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve([done or _deployments(1)[0], hung], since=since)  # returns: stopped (exit 0); raises on a Ctrl-C
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _slots_since() -> tuple[Any, Any]:
    """(`since`, now): the start of the minute 3 minutes ago (3 slots of `_deployments`' schedule due since), now."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0) - timedelta(minutes=3), now


async def _due_slots(since: Any, now: Any, *deployments: Any) -> None:
    """The runs of the slots of `deployments` (registered) from `since` to `now`, due, created (as a server's scheduler
    or the serve's catch-up leaves them)."""
    from prefect.client.orchestration import get_client

    from flowcast.flows.deploy import schedule_runs

    async with get_client() as client:
        await schedule_runs(client, [(await client.read_deployment_by_name(f"forecast/{d.name}")).id
                                     for d in deployments], since, now)


def _unstarted_cancelled(*deployments: Any) -> None:
    """Each of `deployments` has runs (its slots' from the last 3 minutes), all cancelled as unstarted by a stop."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from flowcast.flows.deploy import UNSTARTED_STOP_MESSAGE

    with get_client(sync_client=True) as client:
        for d in deployments:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[d.name])))
            assert len(runs) >= 3 and {(r.state_type.value, r.state.message) for r in runs} == {
                ("CANCELLED", UNSTARTED_STOP_MESSAGE)}, (d.name, [(r.expected_start_time, r.state_name) for r in runs])


def _until(what: str, done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f} s"
        time.sleep(0.1)


@pytest.mark.usefixtures("prefect_api")
def test_a_registration_that_outlasts_the_cut_is_named_by_the_stop_not_said_paused(monkeypatch):
    """serveR48: a registration that a SIGTERM cut off but that did not end within REGISTER_CUT_WAIT_S (its thread, a
    daemon, went on) registered its deployment, unpaused, after the stop had said 'All deployments have been paused!'
    (or was cut off by the exit, unsaid). The stop names it: its registration had not ended, and the API may register
    it after the stop, unpaused; as it then does."""
    from flowcast.flows import deploy

    monkeypatch.setattr(deploy, "REGISTER_CUT_WAIT_S", 0.5)
    hung, registered = _deployments(1)[0], threading.Event()

    async def registers_late(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        await asyncio.sleep(8)  # (a request the API answers late, its cancel not taken; after the stop)
        try:
            return await aapply(self, *args, **kwargs)
        finally:
            registered.set()

    with _said("prefect") as said:
        _serve_signalled_as(monkeypatch, hung, registers_late)
        assert not registered.is_set()
        _until("late registration", registered.is_set)
    assert any(f"forecast/{hung.name} (its registration had not ended 0.5 s after it was cut off: the Prefect API may "
               "register it after this stop, unpaused)" in m for m in said), said
    assert "All deployments have been paused!" not in said, said
    assert _paused(hung) == {hung.name: False}  # (as said)


@pytest.mark.usefixtures("prefect_api")
def test_a_cut_off_registration_the_api_took_is_paused_before_serve_returns(monkeypatch):
    """serveR48: the registration's thread paused the deployment a SIGTERM cut off (the API had registered it), with
    PAUSE_WAIT_S of its own inside the cut's REGISTER_CUT_WAIT_S: a slow pause outlasted the cut's wait, the serve's
    stop said all was paused and returned (or exited) with it unpaused. The stop pauses it, in its own pause step."""
    from prefect.client.orchestration import PrefectClient

    from flowcast.flows import deploy

    monkeypatch.setattr(deploy, "REGISTER_CUT_WAIT_S", 0.5)  # (a cancel taken at once ends well within it)
    monkeypatch.setattr(deploy, "PAUSE_WAIT_S", 10.0)
    hung = _deployments(1)[0]
    pause = PrefectClient.pause_deployment

    async def slow_pause(self: Any, deployment_id: Any) -> None:
        if (await self.read_deployment(deployment_id)).name == hung.name:
            await asyncio.sleep(6)  # (within PAUSE_WAIT_S, well beyond the cut's wait)
        await pause(self, deployment_id)

    monkeypatch.setattr(PrefectClient, "pause_deployment", slow_pause)

    async def cut_off(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        raise asyncio.CancelledError

    with _said("prefect") as said:
        _serve_signalled_as(monkeypatch, hung, cut_off, taken=True)
        assert _paused(hung) == {hung.name: True}  # (as serve returns)
    assert "All deployments have been paused!" in said, said


@pytest.mark.usefixtures("prefect_api")
def test_the_unstarted_slot_runs_of_a_cut_off_registration_the_api_took_are_cancelled(monkeypatch):
    """serve49: the stop cancelled the unstarted runs of its slots (from `since`) of the deployments it had registered,
    not of the one whose registration it cut off though the API had it: the runs of that one's slots already due stayed
    Scheduled (Late) on the paused deployment, and the next serve ran them, unasked. They are cancelled, saying why."""
    hung = _deployments(1)[0]
    since, now = _slots_since()

    async def due_slots_then_cut_off(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        await _due_slots(since, now, hung)
        raise asyncio.CancelledError

    _serve_signalled_as(monkeypatch, hung, due_slots_then_cut_off, taken=True, since=since)
    _unstarted_cancelled(hung)
    assert _paused(hung) == {hung.name: True}


@pytest.mark.usefixtures("prefect_api")
def test_a_ctrl_c_as_serve_registers_cancels_the_unstarted_slot_runs_of_those_registered_and_the_one_cut_off(
        monkeypatch):
    """serveB49: a Ctrl-C as the serve registered paused those it registered and the one it cut off (the API had it),
    but only a SIGTERM's stop cancelled the runs of their slots already due: they stayed Scheduled (Late) on the paused
    deployments, and the next serve ran them, unasked. They are cancelled, saying why, and the Ctrl-C raised."""
    done, hung = _deployments(2)
    since, now = _slots_since()

    async def due_slots_then_cut_off(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        await _due_slots(since, now, done, hung)
        raise asyncio.CancelledError

    with pytest.raises(KeyboardInterrupt):
        _serve_signalled_as(monkeypatch, hung, due_slots_then_cut_off, taken=True, since=since, signum=signal.SIGINT,
                            done=done)
    _unstarted_cancelled(done, hung)
    assert _paused(done, hung) == {done.name: True, hung.name: True}


@pytest.mark.usefixtures("prefect_api")
def test_a_registration_error_cancels_the_unstarted_slot_runs_of_those_registered_and_the_one_that_failed(
        monkeypatch):
    """serveB49: a registration that failed (no stop asked) paused those registered before it, then was raised, but
    left the runs of their slots already due Scheduled (Late) on the paused deployments (only a SIGTERM's stop
    cancelled them), and the one that failed though the API had it unpaused: the next serve ran them, unasked. Both
    are paused and their unstarted slot runs cancelled, saying why, then the error is raised."""
    from prefect.deployments.runner import RunnerDeployment

    from flowcast.flows.deploy import serve

    done, bad = _deployments(2)
    since, now = _slots_since()
    monkeypatch.setattr(hung_registration_child, "HANG_S", 0.1)  # (the API answers it at once: an error)

    async def due_slots_then_refused(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        await _due_slots(since, now, done, bad)
        raise RuntimeError("the API answered 503")

    monkeypatch.setattr(RunnerDeployment, "aapply", hung_registration(bad.name, lambda: None, _not_cut_off,
                                                                      due_slots_then_refused, taken=True))
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(RuntimeError, match="the API answered 503"):
            serve([done, bad], since=since)
    finally:
        signal.signal(signal.SIGTERM, before)
    _unstarted_cancelled(done, bad)
    assert _paused(done, bad) == {done.name: True, bad.name: True}


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("when", ["within_the_cut", "after_the_cut"])
def test_a_registration_error_after_a_sigterm_is_logged_naming_the_deployment(monkeypatch, when):
    """serveR48: a registration that failed once a SIGTERM had cut it off was dropped unsaid (the stop's error is not
    raised). It is logged, naming the deployment and the error, whether it failed within the cut's wait or after it
    (its thread went on)."""
    from flowcast.flows import deploy

    monkeypatch.setattr(deploy, "REGISTER_CUT_WAIT_S", 0.5 if when == "after_the_cut" else 5.0)
    hung, failed = _deployments(1)[0], threading.Event()

    async def fails(self: Any, aapply: Any, args: Any, kwargs: Any) -> Any:
        if when == "after_the_cut":
            await asyncio.sleep(2)
        failed.set()
        raise RuntimeError("the API answered 503")

    with _said("prefect") as said:
        _serve_signalled_as(monkeypatch, hung, fails)
        _until("registration error", failed.is_set)
        _until("its word", lambda: any(m.startswith(f"the registration of forecast/{hung.name}") for m in said), 5)
    assert ((f"the registration of forecast/{hung.name} failed as the serve stopped: RuntimeError: the API answered "
             "503; the stop pauses it where the Prefect API has it") if when == "within_the_cut" else (
            f"the registration of forecast/{hung.name}, cut off by the serve's stop, failed after the stop went on "
            "without it: RuntimeError: the API answered 503")) in said, said


@pytest.mark.usefixtures("prefect_api")
def test_a_registration_error_pauses_what_serve_registered_before_it_is_raised(monkeypatch):
    """serveR48: a registration that failed (no stop asked) was raised out of serve with the deployments registered
    before it left unpaused (a registration sends its deployment unpaused, undoing the last stop's pause): their
    schedules went on, and the next serve ran their runs late. They are paused, then the error is raised."""
    from prefect.deployments.runner import RunnerDeployment

    from flowcast.flows.deploy import serve

    done, bad = _deployments(2)
    aapply = RunnerDeployment.aapply

    async def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == bad.name:
            raise RuntimeError("the API answered 503")
        return await aapply(self, *args, **kwargs)

    monkeypatch.setattr(RunnerDeployment, "aapply", refused)
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(RuntimeError, match="the API answered 503"):
            serve([done, bad])
    finally:
        signal.signal(signal.SIGTERM, before)
    assert _paused(done, bad) == {done.name: True}


def _pause_applied_but_answered_late(monkeypatch: Any) -> None:
    """A Prefect API that applies a deployment's pause but answers it only after PAUSE_WAIT_S (here 3 s: the pause
    applied well within it)."""
    from prefect.client.orchestration import PrefectClient

    from flowcast.flows import deploy

    monkeypatch.setattr(deploy, "PAUSE_WAIT_S", 3.0)
    pause = PrefectClient.pause_deployment

    async def late(self: Any, deployment_id: Any) -> None:
        await pause(self, deployment_id)
        await asyncio.sleep(30)

    monkeypatch.setattr(PrefectClient, "pause_deployment", late)


@pytest.mark.usefixtures("prefect_api")
def test_a_stops_pause_answered_late_but_applied_is_not_said_left_unpaused(monkeypatch):
    """serveR48: a pause whose answer did not come within PAUSE_WAIT_S was said 'left unpaused' though the API had
    applied it. The stop reads the deployments again before saying so: paused, they are said paused."""
    from flowcast.flows.deploy import stopping_runner

    _pause_applied_but_answered_late(monkeypatch)
    deployments = _deployments(2)

    async def stopped() -> None:
        runner = stopping_runner()(pause_on_shutdown=True)
        for d in deployments:
            await runner.aadd_deployment(d)
        async with runner:
            pass

    before = signal.getsignal(signal.SIGTERM)
    try:
        with _said("prefect") as said:
            asyncio.run(stopped())
    finally:
        signal.signal(signal.SIGTERM, before)
    assert not any("left unpaused" in m for m in said) and "All deployments have been paused!" in said, said
    assert _paused(*deployments) == {d.name: True for d in deployments}


@pytest.mark.usefixtures("prefect_api")
def test_a_cut_off_registrations_pause_answered_late_but_applied_is_not_said_left_unpaused(monkeypatch):
    """serveR48: so too the pause by name of a registration cut off (`pause_if_registered`, a Ctrl-C's stop)."""
    from prefect.client.orchestration import get_client

    from flowcast.flows.deploy import pause_if_registered

    deployment = _deployments(1)[0]
    deployment.apply()
    _pause_applied_but_answered_late(monkeypatch)
    said: list[str] = []
    asyncio.run(pause_if_registered(f"forecast/{deployment.name}", said.append))
    assert said == []
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(f"forecast/{deployment.name}").paused


@pytest.mark.usefixtures("prefect_api")
def test_a_cut_off_registrations_pause_on_an_api_that_hangs_ends_within_its_limit(monkeypatch):
    """serve49: `pause_if_registered` opened the client that reads the deployment again, after its pause had no
    answer, outside PAUSE_WAIT_S: an API that hung there hung the serve's stop. All of it is bounded: the stop goes on
    within twice PAUSE_WAIT_S, the deployment said left unpaused."""
    from prefect.client.orchestration import PrefectClient

    from flowcast.flows import deploy

    deployment = _deployments(1)[0]
    deployment.apply()
    monkeypatch.setattr(deploy, "PAUSE_WAIT_S", 1.0)
    enter, opened = PrefectClient.__aenter__, []

    async def hangs_once_paused(self: Any) -> Any:  # (the first client opens; the API hangs from then on)
        opened.append(self)
        if len(opened) > 1:
            await asyncio.sleep(60)
        return await enter(self)

    async def no_answer(self: Any, deployment_id: Any) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(PrefectClient, "__aenter__", hangs_once_paused)
    monkeypatch.setattr(PrefectClient, "pause_deployment", no_answer)
    said: list[str] = []
    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(deploy.pause_if_registered(f"forecast/{deployment.name}", said.append), 30))
    took = time.monotonic() - t0
    assert len(opened) == 2 and took < 2 * deploy.PAUSE_WAIT_S + 2, (len(opened), took)
    assert said == [deploy.unpaused_said([f"forecast/{deployment.name}"], "no answer in 1 s")], said


@pytest.mark.parametrize("in_the_block", ["taken_over", "sigterm", "nothing"])
def test_early_sigterm_stops_gives_sigterm_its_former_handler_back(in_the_block):
    """serveR48: `early_sigterm_stops` left its handler (or the serve runner's, which took it over) installed after the
    serve returned: a SIGTERM then was raised as a serve's stop, or went to a stopped runner. SIGTERM has its former
    handler back after the block, whatever happened in it."""
    from flowcast.flows.deploy import early_sigterm_stops

    heard: list[int] = []

    def former(signum: int, frame: Any) -> None:
        heard.append(signum)

    before = signal.signal(signal.SIGTERM, former)
    try:
        with early_sigterm_stops():
            if in_the_block == "taken_over":  # (as `take_sigterm` and Prefect's runner do)
                signal.signal(signal.SIGTERM, lambda *_: None)
            elif in_the_block == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # (raised out of here)
                raise AssertionError("the SIGTERM did not stop the block")
        assert signal.getsignal(signal.SIGTERM) is former
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.parametrize("failed", [True, False])
def test_a_failed_serve_that_exits_gives_sigterm_its_former_handler_back(failed):
    """fixA49: with `exits` (the process ends with the block) SIGTERM was said and ignored after the block whatever
    ended it: after an error out of `serve_all` an exit that hung could only be SIGKILLed. A failed block gives SIGTERM
    its former handler back; a block that ended (a stop's exit) leaves it said and ignored (`said_as_exit`)."""
    from flowcast.flows.deploy import early_sigterm_stops, said_as_exit

    def former(signum: int, frame: Any) -> None:
        pass

    before = signal.signal(signal.SIGTERM, former)
    try:
        with contextlib.suppress(RuntimeError), early_sigterm_stops(exits=True):
            if failed:
                raise RuntimeError("serve_all failed")
        assert signal.getsignal(signal.SIGTERM) is (former if failed else said_as_exit)
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_sigterm_once_the_runners_stop_is_done_is_said_and_lets_the_exit_end():
    """serve49: a second SIGTERM once the runner's stop was done (its deployments paused, the serve exiting) went to
    Prefect's handler, which exits at once (sys.exit(0)) in the middle of the clean-up. It is said, and the clean-up
    goes on."""
    from flowcast.flows.deploy import EXITING_SAID, stopping_runner

    runner = stopping_runner()(pause_on_shutdown=True)
    runner.stopped_by_sigterm = runner.ending = runner.stopping = runner.stop_done = True  # (as its stop leaves it)
    with _said("prefect") as said:
        runner.handle_sigterm(signal.SIGTERM, None)  # (raised SystemExit)
    assert said == [EXITING_SAID], said


_EXITING = """
import atexit, os, signal, time
from flowcast.flows.deploy import early_sigterm_stops

def clean_up():  # (as Prefect's exit hook stops the temporary server: a SIGTERM lands in it)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)
    print("clean-up ended", flush=True)

atexit.register(clean_up)
with early_sigterm_stops(exits=True):
    pass
"""


def test_a_sigterm_as_the_serve_process_exits_is_said_and_its_clean_up_ends(tmp_path):
    """serve49: `early_sigterm_stops` gave SIGTERM back its former handler, Python's default in `flowcast serve`: a
    SIGTERM as the process exited (its exit hooks stopping Prefect's temporary server) killed it, exit 143, the
    clean-up cut off. Where the process ends with the block (`exits`), it is said and the clean-up ends: exit 0."""
    import subprocess
    import sys
    from pathlib import Path

    from flowcast.flows.deploy import EXITING_SAID

    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-c", _EXITING], check=False, env=env, capture_output=True, text=True,
                          timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "clean-up ended" in done.stdout and EXITING_SAID in out, (done.returncode, out)


@pytest.mark.parametrize("registering", [True, False])
def test_a_second_sigterm_before_the_runner_started_is_said_as_the_stop_under_way(registering):
    """serveR48: a second SIGTERM before the runner started (as the registration was cut off, or while the runner
    starts) was said 'SIGTERM received as the serve starts: it stops as soon as it has started', a start that never
    came. It is said as the stop under way, which ends as it was."""
    from prefect.exceptions import TerminationSignal

    from flowcast.flows.deploy import REGISTERING_STOP_SAID, SECOND_SIGNAL_SAID, stopping_runner

    runner = stopping_runner()(pause_on_shutdown=True)
    runner.registering = registering
    with _said("prefect") as said:
        if registering:
            with pytest.raises(TerminationSignal):
                runner.handle_sigterm(signal.SIGTERM, None)
        else:
            runner.handle_sigterm(signal.SIGTERM, None)
        runner.handle_sigterm(signal.SIGTERM, None)  # (the second: noted, nothing raised)
    first = REGISTERING_STOP_SAID if registering else "SIGTERM received as the serve starts: it stops as soon as it has started"
    assert said == [first, SECOND_SIGNAL_SAID.format(signal="SIGTERM")] and runner.stop_pending, said


@pytest.mark.usefixtures("prefect_api")
def test_a_ctrl_c_stop_names_a_registration_still_under_way_as_maybe_left_unpaused():
    """serveR48: a Ctrl-C's stop (`pause_registered`) paused the registration it cut off from that registration's own
    thread, which could still be registering it as the serve ended. The stop pauses it by its name, and where its
    registration had not ended names it: the API may register it after the stop, unpaused."""
    from flowcast.flows.deploy import Unsettled, pause_registered

    said: list[str] = []
    asyncio.run(pause_registered([], said.append, Unsettled(f"forecast/forecast-{uuid.uuid4().hex[:8]}",
                                                            threading.Event())))
    assert len(said) == 1 and said[0].startswith("the serve's stop could not pause forecast/forecast-") and (
        "(its registration had not ended 5 s after it was cut off: the Prefect API may register it after this stop, "
        "unpaused): left unpaused") in said[0], said


@pytest.mark.usefixtures("prefect_api")
def test_the_slot_runs_a_cut_off_scheduling_request_creates_after_the_stops_cancel_are_cancelled_too(monkeypatch):
    """serve50: on Prefect's temporary server the serve schedules its runs itself (`RunScheduler`), and its stop cuts
    a request the API does not answer off after SCHEDULER_STOP_WAIT_S; the API went on with it and created the runs
    of the slots from `since` after the stop had cancelled its slots' unstarted runs: they stayed Scheduled on the
    paused deployment, only a warning said so, and the next serve ran them late. The stop sweeps again for them
    (`sweep_late_runs`) and cancels them, saying why. Here the API is the real test server (as the serve's scheduler
    there); the request the scheduler cuts off is completed 1.5 s after the cut, by the real `POST
    /deployments/{id}/schedule`, as a slow server completes it."""
    from prefect.settings import PREFECT_API_URL

    from flowcast.flows import deploy

    served = _deployments(1)[0]
    since, now = _slots_since()
    asked, completed = threading.Event(), threading.Event()

    def completes_late() -> None:  # (the request the scheduler sent: the API reads no pause once it took it)
        from prefect.client.orchestration import get_client

        time.sleep(1.5)
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(f"forecast/{served.name}")
            client.request("POST", "/deployments/{id}/schedule", path_params={"id": deployment.id},
                           json={"start_time": since.isoformat(), "end_time": now.isoformat()}).raise_for_status()
        completed.set()

    async def unanswered(self: Any, client: Any, start: Any = None) -> None:
        asked.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            threading.Thread(target=completes_late, daemon=True).start()
            raise

    monkeypatch.setattr(deploy, "api_for_runs", lambda: {PREFECT_API_URL: PREFECT_API_URL.value()})  # (its scheduler)
    monkeypatch.setattr(deploy.RunScheduler, "schedule", unanswered)
    threading.Thread(target=lambda: asked.wait(120) and os.kill(os.getpid(), signal.SIGTERM), daemon=True).start()
    before = signal.getsignal(signal.SIGTERM)
    try:
        with _said("prefect") as said:
            deploy.serve([served], since=since)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert completed.wait(30)  # (without the sweep the serve returned first, and its runs stayed Scheduled)
    _unstarted_cancelled(served)
    assert any(m.startswith("the serve's scheduling of its runs had no answer from the Prefect API") for m in said)
    assert sum(m.startswith("cancelled ") and "scheduled run(s) of this serve's slots" in m for m in said) == 1, said


def test_a_sweep_the_api_fails_says_it_once_and_ends():
    """fixrev50: `cancel_unstarted_slots` said 0 after its warning where the API failed, and `sweep_late_runs` tried
    again each half second: the same warning six times in 3 s, then that it found no run. A failure ends the sweep,
    said once. Here the API is a loopback port nothing listens on."""
    from datetime import UTC, datetime

    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_server import free_port

    from flowcast.flows.deploy import sweep_late_runs

    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}), _said("prefect") as said:
        swept = asyncio.run(sweep_late_runs([uuid.uuid4()], datetime(2026, 1, 1, tzinfo=UTC), wait=3, every=0.05))
    assert swept == 0
    assert len(said) == 1 and said[0].startswith(
        "could not cancel the scheduled runs of this serve's slots from 2026-01-01 that had not started"), said
