"""A child process's state as /proc says it: the tests that stop one at a FLOWCAST_FAULT pause point
(FLOWCAST_FAULT_SIGNAL=SIGSTOP) wait with `stopped` until it is; those that write a source file while it is stopped
between two reads (FLOWCAST_FAULT=source:ingested) write it with `write_at_each_stop`."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


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


def written_in_place(path: Path, data: bytes) -> None:
    """What `cat new > file` does: the same file truncated, then written (here, as far as `data` goes)."""
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(data)


def replaced(path: Path, data: bytes) -> None:
    """A writer that replaces the file whole (a temp file renamed into place)."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_at_each_stop(proc: subprocess.Popen, path: Path, writes: list[bytes | None],
                       write: Callable[[Path, bytes], None]) -> None:
    """At each of `proc`'s stops, `write` the next of `writes` to `path` (None: leave it), then continue `proc`;
    a process that ended instead fails the test with its output. `proc` is continued whatever happens."""
    try:
        for data in writes:
            assert stopped(proc), proc.communicate()
            if data is not None:
                write(path, data)
            os.kill(proc.pid, signal.SIGCONT)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
