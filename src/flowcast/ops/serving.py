"""One `flowcast serve` per home and per Prefect API: a lock held for the serve's life.

Prefect's serve pauses the deployments it served as it stops. Two serves of one server (a second one started
before the first was stopped) serve the same deployments, so the stop of the older one paused the newer one's
schedules: no scheduled run until the next restart (ops15: 9 slots). A serve now takes two fcntl locks before it
registers anything, `<home>/.serve.lock` and `<PREFECT_HOME>/flowcast-serve-<digest of the API>.lock` (the API
is PREFECT_API_URL, or Prefect's temporary server, whose database lives in PREFECT_HOME), and writes into each
who holds it (pid, host, since, home, API). A second serve of either finds it held and refuses to start, naming
that serve. The kernel releases an fcntl lock when its process dies, however it dies (SIGKILL included): a lock
file left behind holds nothing, and the next serve takes it (no pid file to clean up).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcast.errors import ServeRunningError

HOME_LOCK = ".serve.lock"


def api_lock_path(prefect_home: str | Path, api_url: str | None) -> Path:
    """The lock of the serves of one Prefect API: its URL, or Prefect's temporary server (no URL: its database
    is under `prefect_home`)."""
    key = (api_url or "temporary").rstrip("/")
    return Path(prefect_home) / f"flowcast-serve-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock"


def _holder(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        held = json.loads(path.read_text() or "{}")
        if isinstance(held, dict):
            return held
    return {}


def refusal(held: dict[str, Any], path: Path) -> str:
    """What a second serve says: which serve runs, and what to do. Its `since` is read off its machine's clock as it
    took the lock, before it asks its Prefect API anything (on Prefect's temporary server, before that server
    exists), and said so: not the server's clock, which the serve reads its slots on (`flows.deploy.server_clock`)."""
    who = (f"pid {held.get('pid', '?')} on {held.get('host', '?')}, serving since {held.get('since', '?')} by that "
           f"machine's clock (home {held.get('home', '?')}, Prefect API {held.get('api') or 'temporary'})" if held
           else "its pid is not written yet")
    return (f"another `flowcast serve` is running: {who}; lock {path}. Two serves of one home or Prefect server "
            "serve the same deployments, and the stop of either pauses the other's schedules: stop that serve "
            "first (Ctrl-C, or kill its pid), then start this one")


@contextlib.contextmanager
def serve_lock(home: str | Path, *, prefect_home: str | Path, api_url: str | None, since: datetime,
               pid: int | None = None, host: str | None = None) -> Iterator[list[Path]]:
    """Hold the serve locks of `home` and of the Prefect API (`api_lock_path`) while the block runs: the paths.
    ServeRunningError naming the serve that holds one (its pid, host, since), nothing held, when another serve
    does. `since`: when this serve started, on this machine's clock (written for the next one to name: `refusal`)."""
    paths = [Path(home) / HOME_LOCK, api_lock_path(prefect_home, api_url)]
    note = json.dumps({"pid": pid or os.getpid(), "host": host or socket.gethostname(), "since": since.isoformat(),
                       "home": str(Path(home).resolve()), "api": api_url})
    with contextlib.ExitStack() as held:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = held.enter_context(open(path, "a+"))  # closed by the stack: its lock goes with it
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ServeRunningError(refusal(_holder(path), path)) from None
            fh.seek(0)
            fh.truncate()
            fh.write(note)
            fh.flush()
        yield paths
