"""A backfill date's run when the Prefect API stops answering (flowcast.flows.backfill._child_state)."""

from __future__ import annotations

from functools import partial

import httpx
from prefect import flow
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_server import free_port

from flowcast.flows.backfill import _child_state, _failure_of


def _refused() -> httpx.ConnectError:
    """A real refused connection (nothing listens on the port), as a Prefect API gone away gives."""
    try:
        httpx.get(f"http://127.0.0.1:{free_port()}/api/health", timeout=5)
    except httpx.ConnectError as exc:
        return exc
    raise AssertionError("a free port answered")


def test_a_date_whose_run_was_created_is_not_run_again_when_the_api_drops_after(prefect_api):
    """rev42b: the API dropped after the date's run was created (the training done, the publish made, its final
    state not recorded: the engine re-raises the ConnectError) was taken for 'nothing of the date ran', and the
    date ran again: a second child run, a second training of a retrain backfill. It is not run again: the date
    fails, saying its run may have published and that a re-run of the backfill skips the dates published."""
    ran: list[str] = []
    said: list[str] = []

    def created_then_dropped() -> None:
        ran.append("trained and published")
        raise _refused()

    state = _child_state(created_then_dropped, "2019-03-01", said.append)
    assert ran == ["trained and published"]
    assert state.is_failed()
    error = _failure_of(state)["error"]
    assert "2019-03-01" in error and "not run again" in error and "skips the dates published" in error, error
    assert "ConnectError" in error, error


def test_a_date_whose_run_could_not_be_created_runs_once_the_api_answers(prefect_api):
    """faults42's case, through a real flow: creating the date's run is refused (no API at the URL it was given),
    nothing of it ran; it runs once the API (the session's, which answers) does."""
    ran: list[int] = []

    @flow
    def child(n: int) -> int:
        ran.append(n)
        return n

    calls: list[int] = []
    said: list[str] = []

    def call() -> object:
        calls.append(1)
        if len(calls) == 1:  # the first try meets no API: its run is never created
            with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
                return child(1, return_state=True)
        return child(2, return_state=True)

    state = _child_state(partial(call), "2019-03-01", said.append)
    assert state.is_completed() and ran == [2], (ran, said)
    assert any("did not answer as its run was being created" in s for s in said), said
