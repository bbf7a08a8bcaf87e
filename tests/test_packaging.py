"""`pip install .` (not editable) into a fresh virtual environment, then a run on the bundled data
from another directory (issue 9.12): the samples ship as package data, not as repository files.

The fresh environment reuses the installed dependencies (torch, polars, prefect ...) through a
.pth line to this interpreter's site-packages, so nothing is downloaded; flowcast itself is built
and installed from a copy of the source tree by pip, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_pip_install_then_run_on_the_bundled_data_from_another_directory(tmp_path):
    """Regression: the bundled data were found through parents[3] of the module, which is outside
    the package after `pip install .`: the default run failed with 'file not found'."""
    from prefect.settings import PREFECT_API_URL

    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the working tree
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([_python_of(venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(_python_of(venv)), "install", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-q", str(src)], check=True)
    installed = Path(site) / "flowcast" / "data" / "sample"
    assert sorted(p.name for p in installed.iterdir()) == ["us_employment.csv.gz", "vic_elecdemand_2014.csv.gz"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "FLOWCAST_", "PREFECT_"))}
    env.update(FLOWCAST_HOME=str(elsewhere / ".flowcast"), PREFECT_API_URL=PREFECT_API_URL.value(), COLUMNS="200",
               # lighter than the defaults, the same path: training in this process, one backtest window
               FLOWCAST_MODEL__LAUNCHER="inline", FLOWCAST_EVALUATION__N_WINDOWS="1")
    where = subprocess.run([_python_of(venv), "-c", "import flowcast; print(flowcast.__file__)"], cwd=elsewhere,
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert where.startswith(site)  # the installed copy, not the source tree
    done = subprocess.run([venv / "bin" / "flowcast", "run", "--models", "gru", "--max-steps", "20", "--json"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # a clean run logs no ERROR (offline, Prefect's temporary server logged "Failed to send telemetry")
    assert "| ERROR" not in done.stderr, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["dataset"] == "us_employment" and out["n_series"] > 100 and out["published_rows"] > 0
    assert Path(out["store"]).is_relative_to(elsewhere)


def test_test_modules_have_unique_basenames():
    """The test folders have no __init__.py, so pytest imports each test file by its basename: two
    files of one name in different folders make the second fail to collect ('import file mismatch')
    and its tests silently never run in that session."""
    from collections import Counter

    root = Path(__file__).resolve().parent
    names = Counter(p.name for p in root.rglob("*.py") if "__pycache__" not in p.parts and p.name != "conftest.py")
    assert not [n for n, c in names.items() if c > 1], sorted(n for n, c in names.items() if c > 1)
