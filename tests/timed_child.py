"""A Python snippet run in a fresh interpreter (the tests' `sys.path`) within a bound of the processor's time: the tests
that a pattern reads a long text in time (`test_redaction`, `flows/test_source_secrets`) bound the snippet's own
processor time, not the interpreter's start-up nor the clock of a busy machine (a bound of 10 s of the clock that
counted the start-up and the imports was flaky on a loaded machine, fixE54); the clock's bound, generous, ends a
search that never would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_in_processor_time(what: str, setup: str, body: str, seconds: float, clock_seconds: float = 120.0) -> None:
    """Run `setup` (Python source: the imports, not timed) then `body` in a fresh interpreter; fail, naming `what`,
    where `body` took `seconds` of the processor or more (`time.process_time`), the whole over `clock_seconds` of the
    clock, or it failed (the end of what it wrote to stderr: an assertion's message)."""
    script = (f"{setup}\n"
              "import time as _timed\n"
              "_began = _timed.process_time()\n"
              f"{body}\n"
              "_spent = _timed.process_time() - _began\n"
              f"if _spent >= {seconds!r}:\n"
              f"    raise SystemExit(f'took {{_spent:.1f}} s of the processor, {seconds!r} s or more')\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                              timeout=clock_seconds, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: over {clock_seconds:.0f} s of the clock")
    assert done.returncode == 0, f"{what}: {done.stderr[-3000:]}"
