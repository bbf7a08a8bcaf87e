"""`flowcast ARGS...` that sends itself a real SIGINT (what Ctrl-C sends) while Prefect creates its
Nth task run (SIGINT_AT_TASK_RUN=N): Python raises the KeyboardInterrupt inside Prefect's task run
creation; or, with SIGINT_AFTER_FLOW_COMPLETED=1, just after Prefect recorded the outermost flow run
Completed, while its engine finishes (the command's last second), with SIGINT_AFTER_FLOW_COMPLETED=child
after each child flow run (a backfill's date); with SECOND_SIGINT_IN_CLEANUP=1, a second SIGINT as the engine
begins recording the first one's crash. Moments a person's Ctrl-C hits only
by chance. Only the moment is chosen here; the signal, Prefect and flowcast are the real ones."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from prefect import flow_engine, task_engine

# a process started with SIGINT ignored (the test suite run as a background job: `make test &`, nohup, CI
# runners) inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler; a terminal's Ctrl-C
# reaches a foreground process, which has Python's own handler: this child is given it
signal.signal(signal.SIGINT, signal.default_int_handler)
AT = int(os.environ.get("SIGINT_AT_TASK_RUN") or 0)
_create = task_engine._create_task_run_locally
_calls = 0


def _creating(*args: Any, **kwargs: Any) -> Any:
    global _calls
    _calls += 1
    if _calls == AT:
        os.kill(os.getpid(), signal.SIGINT)  # raised as KeyboardInterrupt at the next line: the creation below
    return _create(*args, **kwargs)


task_engine._create_task_run_locally = _creating

_succeeded = flow_engine.FlowRunEngine.handle_success


def _success(self: Any, result: Any) -> Any:
    done = _succeeded(self, result)  # the flow run is Completed (final) from here on
    which = os.environ.get("SIGINT_AFTER_FLOW_COMPLETED")  # "1": the outermost flow run, "child": the first child
    if which and (self.flow_run.parent_task_run_id is None) == (which == "1"):
        os.kill(os.getpid(), signal.SIGINT)
    return done


flow_engine.FlowRunEngine.handle_success = _success  # type: ignore[method-assign]

_crashing = flow_engine.FlowRunEngine.handle_crash


def _crash(self: Any, exc: BaseException) -> Any:
    if os.environ.get("SECOND_SIGINT_IN_CLEANUP") and isinstance(exc, KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while the engine records the first one's crash
    return _crashing(self, exc)


flow_engine.FlowRunEngine.handle_crash = _crash  # type: ignore[method-assign]

if __name__ == "__main__":
    from flowcast.cli import app

    sys.argv = ["flowcast", *sys.argv[1:]]
    app()
