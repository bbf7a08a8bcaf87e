"""A run's read of its source (ingest and validate, `flows.common._read_source`) in a process of its own, so that a
test can stop it at FLOWCAST_FAULT=source:ingested (SIGSTOP) and write the file in between.

usage: read_source_child.py CONFIG HOME AS_OF
Prints what it read as one JSON line: rows_in, n_series, fingerprint."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from prefect import flow

from flowcast.config import load_settings
from flowcast.data.datasets import resolve_source
from flowcast.flows.common import _read_source


@flow(name="read-source")
def read(config: str, home: str, as_of: str) -> dict:
    settings = load_settings(Path(config), home=home)
    ingested, result = _read_source(resolve_source(settings), datetime.fromisoformat(as_of), settings)
    return {"rows_in": result.report.rows_in, "n_series": result.report.n_series, "fingerprint": ingested.fingerprint}


if __name__ == "__main__":
    print(json.dumps(read(*sys.argv[1:4])), flush=True)
