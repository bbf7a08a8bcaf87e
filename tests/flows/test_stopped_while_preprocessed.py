"""A run SIGTERMed while it preprocesses (stop46): a real process (preprocess_child.py, the run's cached preprocess
task in a flow) on a frame whose preprocessing is one polars call of seconds (its sort), sent SIGTERM in that call.
The rule itself (`interrupts.stoppable`) is tests/test_interrupts.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(300)
def test_a_sigterm_during_preprocessing_ends_the_run_at_once_and_says_so(tmp_path, prefect_api):
    """Regression: a run stopped (SIGTERM: a cancel, serve's stop) as it preprocessed waited for the polars query in
    flight to end (the sort of 2M rows: 9 s here; 60 to 79 s on bench's 10M rows handed over unsorted) and said
    nothing of where it stopped. It ends within seconds now, its log saying so, by the SIGTERM, and writes nothing:
    no cache entry, no result under its home."""
    from prefect.settings import PREFECT_API_URL

    home = tmp_path / "home"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)])}
    child = subprocess.Popen([sys.executable, str(HERE / "preprocess_child.py"), str(home), "2000", "1000"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = ""
        while (line := child.stderr.readline()) and line.strip() != "preprocessing":
            before += line
        assert line, f"the child ended before preprocessing: {before[-3000:]}"
        time.sleep(1.0)  # inside the sort, which takes seconds
        stopped_at = time.monotonic()
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
        took = time.monotonic() - stopped_at
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    said = " ".join(err.split())
    assert child.returncode == -signal.SIGTERM, said[-3000:]
    assert took < 5, f"{took:.1f} s from SIGTERM to exit: {said[-3000:]}"
    assert ("Stopped by SIGTERM while preprocessing source 'big': nothing was written from it; run again to "
            "preprocess it whole") in said, said[-3000:]
    assert "PanicException" not in said and out == "", said[-3000:]
    assert not home.exists() or not any(p.is_file() for p in home.rglob("*")), sorted(home.rglob("*"))
