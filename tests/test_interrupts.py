"""`interrupts.stoppable` (stop46): work that holds its thread in a long call (a polars query) runs in a worker thread,
and a stop (a real SIGTERM or SIGINT sent to this process) is said and raised within a fraction of a second while it
goes on. A real preprocessing run stopped so is tests/flows/test_stopped_while_preprocessed.py."""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from prefect.exceptions import TerminationSignal
from proc_state import stopped

from flowcast.interrupts import stoppable


def _said(name: str) -> str:
    return f"Stopped by {name} while testing"


@pytest.fixture
def raising_stops() -> Iterator[None]:
    """SIGTERM raises TerminationSignal, as under Prefect's flow engine; SIGINT KeyboardInterrupt, as by default."""
    def term(signum: int, frame: object) -> None:
        raise TerminationSignal(signum)

    before = {signal.SIGTERM: signal.signal(signal.SIGTERM, term),
              signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.usefixtures("raising_stops")
@pytest.mark.parametrize(("sig", "raised", "name"), [(signal.SIGTERM, TerminationSignal, "SIGTERM"),
                                                     (signal.SIGINT, KeyboardInterrupt, "SIGINT (Ctrl-C)")])
def test_a_stop_during_the_work_is_said_and_raised_while_the_work_goes_on(sig, raised, name):
    """The stop comes 0.2 s into work that would take 30 s: raised within seconds, said once, the work left running in
    its daemon thread (released here, so that it ends)."""
    release = threading.Event()
    started = threading.Event()
    warned: list[str] = []

    def work() -> str:
        started.set()
        release.wait(30)
        return "done"

    threading.Timer(0.2, os.kill, (os.getpid(), sig)).start()
    begun = time.monotonic()
    try:
        with pytest.raises(raised):
            stoppable(work, warned.append, _said)
        took = time.monotonic() - begun
        left = [t for t in threading.enumerate() if t.name == "flowcast-stoppable"]
    finally:
        release.set()
    assert started.is_set() and took < 5, took
    assert warned == [_said(name)]
    assert left and all(t.daemon for t in left), left


def test_the_works_result_and_error_are_its_own():
    """No stop: the work's value is returned, its error raised as it was, nothing said; it ran in another thread."""
    warned: list[str] = []
    ran_in: list[str] = []

    def fails() -> None:
        raise ValueError("bad rows")

    assert stoppable(lambda: ran_in.append(threading.current_thread().name) or 7, warned.append, _said) == 7
    with pytest.raises(ValueError, match="bad rows"):
        stoppable(fails, warned.append, _said)
    assert warned == [] and ran_in == ["flowcast-stoppable"]


_RUN = contextvars.ContextVar("run", default="none")


def test_the_work_sees_its_callers_context():
    """Prefect's run context (the run logger's) is a context variable: the worker thread runs in a copy of the
    caller's, where a bare thread started with an empty one."""
    token = _RUN.set("run-1")
    try:
        assert stoppable(_RUN.get, print, _said) == "run-1"
    finally:
        _RUN.reset(token)


def test_outside_the_main_thread_the_work_runs_in_its_callers_thread():
    """Signals reach the main thread alone: elsewhere the work runs where it is called, as before."""
    ran_in: list[str] = []
    caller = threading.Thread(target=lambda: stoppable(lambda: ran_in.append(threading.current_thread().name),
                                                       print, _said), name="caller")
    caller.start()
    caller.join(10)
    assert ran_in == ["caller"]


_POINTS = [("flowcast.interrupts", "fault_point", "gc:before_record", "gc:before_record"),
           ("flowcast.store.base", "fault", "before_rename", "publish:before_rename"),
           ("flowcast.registry", "_fault", "before_promotion", "registry:before_promotion"),
           ("flowcast.store.fs", "_fault", "mid_put_dir", "fs:mid_put_dir")]


def _at_fault(module: str, func: str, point: str, env_point: str, signal_name: str | None) -> subprocess.Popen[str]:
    """A real process that reaches the fault point `point` of `module` with FLOWCAST_FAULT set to it."""
    env = {**os.environ, "FLOWCAST_FAULT": env_point}
    env.pop("FLOWCAST_FAULT_SIGNAL", None)
    if signal_name:
        env["FLOWCAST_FAULT_SIGNAL"] = signal_name
    code = f"from {module} import {func}; {func}({point!r}); print('went on', flush=True)"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.parametrize(("module", "func", "point", "env_point"), _POINTS)
def test_every_fault_point_stops_the_process_with_fault_signal_sigstop(module, func, point, env_point):
    """FLOWCAST_FAULT_SIGNAL=SIGSTOP pauses the process at every kind of point (publish:, registry:, fs: too: they
    SIGKILLed it whatever the variable said), and SIGCONT lets it go on."""
    proc = _at_fault(module, func, point, env_point, "SIGSTOP")
    try:
        assert stopped(proc, timeout=60), proc.communicate()
        os.kill(proc.pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "went on" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("module", "func", "point", "env_point"), _POINTS)
def test_every_fault_point_kills_the_process_by_default(module, func, point, env_point):
    proc = _at_fault(module, func, point, env_point, None)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and "went on" not in out, out
