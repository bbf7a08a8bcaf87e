"""A child process's state as /proc says it: the tests that stop one at a FLOWCAST_FAULT pause point
(FLOWCAST_FAULT_SIGNAL=SIGSTOP) wait with `stopped` until it is."""
from __future__ import annotations

import subprocess
import time


def stopped(proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.1) -> bool:
    """Wait until `proc` is stopped (SIGSTOP: state T in /proc); False when it ended first or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with open(f"/proc/{proc.pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "T":
                    return True
        except OSError:
            pass
        time.sleep(poll)
    return False
