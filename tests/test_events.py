"""flowcast.events: `flush` at a command's exit (`cli.app.FlowcastGroup`), in a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from flowcast import events

_CHILD = """
import json, time
from datetime import datetime
from flowcast import events
events.emit("flowcast.run.failed", dataset="sales", as_of=datetime(2024, 1, 1), message="refused")
start = time.monotonic()
sent = events.flush(timeout=30)
print(json.dumps({"sent": sent, "waited_s": time.monotonic() - start}))
"""


def test_flush_does_not_wait_out_its_timeout_for_a_worker_that_gave_up():
    """review24: with the Prefect API unreachable, the events worker fails at once ('Service EventsWorker failed with
    1 pending items'), its queue never empties, and `flush` waited its whole timeout (15 s): every refused command
    against a server that is down took 15 s more to exit. It stops waiting once the worker has stopped."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sent"] is False, out
    assert out["waited_s"] < 10, (out, done.stderr[-2000:])


def _events_worker_class():
    from prefect.events.worker import EventsWorker

    return EventsWorker


class _Stuck(_events_worker_class()):  # type: ignore[misc]
    """An events worker whose queue never empties: counts how often `flush` looked at it (`_stopped`)."""

    def __init__(self) -> None:  # (no service started)
        self.looked = 0
        self.release = __import__("threading").Event()

    def wait_until_empty(self) -> None:
        self.release.wait(5)

    @property
    def _stopped(self) -> bool:
        self.looked += 1
        return False


class _Empty(_events_worker_class()):  # type: ignore[misc]
    _stopped = False

    def __init__(self) -> None:  # (no service started)
        pass

    def wait_until_empty(self) -> None:
        return None


def _services(monkeypatch, *services) -> None:
    from prefect.events.worker import EventsWorker

    monkeypatch.setattr(EventsWorker, "_instances", {i: s for i, s in enumerate(services)})


def test_flush_waits_one_budget_for_all_the_events_workers(monkeypatch):
    """review24: each events worker had a timeout of its own: two stuck ones waited twice the timeout the README
    promises. One budget of polls for all."""
    from flowcast import events

    monkeypatch.setattr(events, "_FLUSH_POLL_S", 0.01)
    stuck = [_Stuck(), _Stuck()]
    _services(monkeypatch, *stuck)
    try:
        assert events.flush(timeout=0.2) is False
    finally:
        for s in stuck:
            s.release.set()
    assert sum(s.looked for s in stuck) <= 20, [s.looked for s in stuck]


def test_a_drain_that_fails_leaves_the_events_to_prefects_exit_without_raising(monkeypatch):
    """review24: `drain_all` ran from the command's `finally` outside any try: an error there (a closed event loop)
    replaced the command's own exit code or error."""
    from prefect.events.worker import EventsWorker

    from flowcast import events

    def broken(**_k):
        raise RuntimeError("Event loop is closed")

    _services(monkeypatch, _Empty())
    monkeypatch.setattr(EventsWorker, "drain_all", broken)
    assert events.flush(timeout=1) is False


class _OtherService:
    """Another of Prefect's queue services (the concurrency-lease service, the log worker): its queue may never
    report empty."""

    def __init__(self) -> None:
        self.looked = 0

    def wait_until_empty(self) -> None:
        __import__("time").sleep(5)

    @property
    def _stopped(self) -> bool:
        self.looked += 1
        return False


def test_flush_waits_for_the_events_workers_alone(monkeypatch):
    """The lead's CI: `_instances` holds every queue service of Prefect's, and the concurrency-lease service's queue
    never reports empty after a flow ran: every command (and every CLI test after a flow in the same process) waited
    the whole 15 s before it exited. flush waits for the events workers alone."""
    from flowcast import events

    monkeypatch.setattr(events, "_FLUSH_POLL_S", 0.01)
    other = _OtherService()
    _services(monkeypatch, other, _Empty())
    monkeypatch.setattr(_events_worker_class(), "drain_all", classmethod(lambda cls, **_k: None))
    assert events.flush(timeout=0.5) is True
    assert other.looked == 0


@pytest.mark.parametrize(("as_of", "iso", "text"), [
    (datetime(2019, 1, 1), "2019-01-01T00:00:00", "2019-01-01"),
    (datetime(2024, 3, 10, 1, 0, tzinfo=timezone(timedelta(hours=-5))), "2024-03-10T06:00:00", "2024-03-10 06:00 UTC"),
    (None, "", ""),  # an event sent without an as_of: neither label says 'now'
])
def test_an_events_resource_carries_its_as_of_for_triggers_and_for_people(as_of, iso, text):
    """inst43b: notifications quoted the ISO label ('as_of 2019-01-01T00:00:00'); the resource carries the as_of as
    every message writes it beside it, the ISO one kept for triggers and anything matching on it."""
    resource = events.build(events.PUBLISHED, dataset="sales", as_of=as_of, message="m")["resource"]
    assert (resource["flowcast.as_of"], resource[events.AS_OF_TEXT_LABEL]) == (iso, text)
