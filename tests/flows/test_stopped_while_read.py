"""A run SIGTERMed while it reads and validates its source (stop45): a real process (read_source_child.py, the run's
read as a flow) stopped between ingest and validation (FLOWCAST_FAULT=source:ingested, SIGSTOP), sent SIGTERM, then
continued: the signal lands as validation starts. The read's own rule is tests/data/test_read_stopped.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from flow_helpers import tiny_toml, write_series
from proc_state import stopped

HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(300)
def test_a_sigterm_during_validation_is_said_as_the_stop(tmp_path, prefect_api):
    """Regression: a run stopped (SIGTERM: a cancel, serve's stop) as it validated its source ended with Prefect's
    'Crash detected! Execution was aborted by a termination signal.' alone (or polars' PanicException where the signal
    landed in a query): nothing said where it stopped or what was left. The run's log says it now, and the process
    ends by the SIGTERM, nothing written under its home."""
    from prefect.settings import PREFECT_API_URL

    conf = tmp_path / "tiny.toml"
    conf.write_text(tiny_toml(write_series(tmp_path / "tiny.csv")))
    home = tmp_path / "home"
    env = {**os.environ, "FLOWCAST_FAULT": "source:ingested", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP",
           "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)])}
    reader = subprocess.Popen([sys.executable, str(HERE / "read_source_child.py"), str(conf), str(home),
                               "2019-06-01"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stopped(reader), reader.communicate()
        os.kill(reader.pid, signal.SIGTERM)  # pending while it is stopped: delivered as it continues
    finally:
        os.kill(reader.pid, signal.SIGCONT)
    out, err = reader.communicate(timeout=240)
    said = " ".join(err.split())
    assert reader.returncode == -signal.SIGTERM, said[-3000:]
    assert ("Stopped by SIGTERM while reading and validating source 'tiny': nothing was written from this read; run "
            "again to read it whole") in said, said[-3000:]
    assert "PanicException" not in said and out == "", said[-3000:]
    assert not home.exists() or not any(p.is_file() for p in home.rglob("*")), sorted(home.rglob("*"))
