"""`python -m flowcast` is the `flowcast` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_python_dash_m_flowcast_runs_the_command(tmp_path):
    """Regression: 'python -m flowcast --help' failed with "No module named flowcast.__main__; 'flowcast' is a
    package and cannot be directly executed": the usual way to run a tool with a given interpreter (a venv
    not activated, a cron line) did not work."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "flowcast", "--help"], check=False, capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "validate" in done.stdout and "backfill" in done.stdout
    assert "Usage: flowcast " in " ".join(done.stdout.split())  # the program's name, not '__main__.py'
