"""`flowcast ARGS...` in a process of its own that stops where Prefect would start: its Prefect start
(`cli.pipeline._prefect_console`) prints PREFECT STARTED and exits 9 instead, so that a test can stop the reads
before it (FLOWCAST_FAULT=source:ingested, SIGSTOP) and write the file in between.

usage: run_before_prefect_child.py VALIDATE_MAX_BYTES ARGS...
VALIDATE_MAX_BYTES: `cli.pipeline.VALIDATE_CHECK_MAX_BYTES` (0: the time column alone is read before the flow)."""

from __future__ import annotations

import sys

from flowcast.cli import app
from flowcast.cli import pipeline as cli_pipeline


def _prefect_started(*_args: object, **_kwargs: object) -> None:
    print("PREFECT STARTED", flush=True)
    raise SystemExit(9)


if __name__ == "__main__":
    cli_pipeline.VALIDATE_CHECK_MAX_BYTES = int(sys.argv[1])
    cli_pipeline._prefect_console = _prefect_started  # type: ignore[assignment]
    app(args=sys.argv[2:], prog_name="flowcast")
