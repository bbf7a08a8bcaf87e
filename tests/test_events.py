"""flowcast.events: `flush` at a command's exit (`cli.app.FlowcastGroup`), in a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

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
