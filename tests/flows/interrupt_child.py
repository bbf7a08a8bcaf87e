"""`flowcast ARGS...` that sends itself a real SIGINT (what Ctrl-C sends) while Prefect creates its
Nth task run (SIGINT_AT_TASK_RUN=N): Python raises the KeyboardInterrupt inside Prefect's task run
creation, a moment a person's Ctrl-C hits only by chance. Only the moment is chosen here; the signal,
Prefect and flowcast are the real ones."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from prefect import task_engine

# a process started with SIGINT ignored (the test suite run as a background job: `make test &`, nohup, CI
# runners) inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler; a terminal's Ctrl-C
# reaches a foreground process, which has Python's own handler: this child is given it
signal.signal(signal.SIGINT, signal.default_int_handler)
AT = int(os.environ["SIGINT_AT_TASK_RUN"])
_create = task_engine._create_task_run_locally
_calls = 0


def _creating(*args: Any, **kwargs: Any) -> Any:
    global _calls
    _calls += 1
    if _calls == AT:
        os.kill(os.getpid(), signal.SIGINT)  # raised as KeyboardInterrupt at the next line: the creation below
    return _create(*args, **kwargs)


task_engine._create_task_run_locally = _creating

if __name__ == "__main__":
    from flowcast.cli import app

    sys.argv = ["flowcast", *sys.argv[1:]]
    app()
