"""Prefect's temporary local API never outlives the command that started it.

Without PREFECT_API_URL, a flow run from the command line talks to a temporary Prefect server
that Prefect starts as a child process (uvicorn) and stops from an `atexit` hook. A command
killed with SIGKILL runs no hook, and SIGTERM does not either (Prefect's flow engine turns it
into a crash of the run, then re-raises it with the default handler, which exits at once): the
server stayed behind, one orphan per killed run, each holding a port, a few hundred MB and
Prefect's database open.

`watch_temporary_api()` marks this process's environment with `FLOWCAST_OWNER=<pid>:<start
time>` (every child inherits it, the temporary server included) and starts a small watchdog
process in its own session, so that a signal sent to the command's process group does not take
it along. The watchdog polls the command; once the command is gone, it stops every temporary
Prefect server that carries the mark (SIGTERM, then SIGKILL after a grace period) and exits.
A command that ends normally has stopped its server already: the watchdog finds nothing.
Processes are identified by pid and start time, so a reused pid is never signalled.

While the command runs, the temporary server gets `STARTUP_TIMEOUT_S` to start instead of
Prefect's 20 s unless PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS is set: on a loaded
machine (several runs starting at once) it took longer, and the run failed before reading any
data with 'Timed out while attempting to connect to ephemeral Prefect API server'.

Run as `python -m flowcast.ops.reaper OWNER_PID OWNER_START`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MARK = "FLOWCAST_OWNER"
STARTUP_TIMEOUT_S = 120
SERVER_ARG = b"prefect.server.api.server:create_app"  # how Prefect starts its temporary server


def start_time(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot, from /proc); None when it is
    gone or a zombie (killed and not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def marked_servers(mark: str) -> dict[int, str]:
    """{pid: start time} of the live temporary Prefect servers whose environment carries `mark`."""
    want = f"{MARK}={mark}".encode()
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if SERVER_ARG not in fh.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if want not in fh.read().split(b"\0"):
                    continue
        except OSError:  # gone meanwhile, or another user's
            continue
        if (started := start_time(pid)) is not None:
            found[pid] = started
    return found


def stop(processes: dict[int, str], grace: float = 5.0) -> None:
    """SIGTERM each process still alive (same pid and start time), then SIGKILL after `grace` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = {p: s for p, s in processes.items() if start_time(p) == s}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = {p: s for p, s in alive.items() if start_time(p) == s}
        if not alive:
            return


def watch(owner: int, owner_start: str, *, interval: float = 0.5, grace: float = 5.0) -> dict[int, str]:
    """Wait for `owner` to be gone, then stop the temporary servers it left; returns them."""
    while start_time(owner) == owner_start:
        time.sleep(interval)
    left = marked_servers(f"{owner}:{owner_start}")
    stop(left, grace)
    return left


def watch_temporary_api() -> subprocess.Popen[bytes] | None:
    """Mark this process and start its watchdog (module doc); None when a Prefect API is
    configured (no temporary server), off Linux, or when already watched."""
    from prefect.settings import PREFECT_API_URL

    me = os.getpid()
    mine = start_time(me)
    if PREFECT_API_URL.value() or mine is None or os.environ.get(MARK) == f"{me}:{mine}":
        return None
    os.environ[MARK] = f"{me}:{mine}"
    return subprocess.Popen(
        [sys.executable, "-m", "flowcast.ops.reaper", str(me), mine],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


@contextmanager
def temporary_api() -> Iterator[None]:
    """While a command runs flows: its temporary Prefect API (if any) is watched, given
    STARTUP_TIMEOUT_S to start unless its timeout was set (module doc), and sends Prefect no usage
    telemetry unless PREFECT_SERVER_ANALYTICS_ENABLED says so (offline, the server logged
    "ERROR ... Failed to send telemetry" in every run: an error that was none)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    watch_temporary_api()
    updates: dict[Any, Any] = {}
    if not PREFECT_API_URL.value():  # the server inherits these settings (as environment variables)
        if PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name not in os.environ:
            updates[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = max(
                STARTUP_TIMEOUT_S, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        if PREFECT_SERVER_ANALYTICS_ENABLED.name not in os.environ:
            updates[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    with temporary_settings(updates):
        yield


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
