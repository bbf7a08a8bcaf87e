"""`flowcast run` killed (SIGKILL) while it trains, then run again for the same as_of: the re-run
resumes the killed run's training from its last checkpoint (same data, same settings) instead of
starting from scratch, says so, and publishes once. Real processes under the session's Prefect API."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flow_helpers import tiny_toml, write_series

from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")
MAX_STEPS = 80



def _env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}


def _steps_logged(training: Path) -> list[int]:
    """The steps the Lightning CSV log of one training folder recorded."""
    with open(training / "logs" / "version_0" / "metrics.csv") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh) if r.get("step")]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_rerun_resumes_the_training_a_kill_interrupted(tmp_path):
    data = write_series(tmp_path / "tiny.csv", n_series=4)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(data, MAX_STEPS, checkpoint_every=10))
    home = tmp_path / "home"
    args = [FLOWCAST, "run", "--dataset", "tiny", "--config", str(cfg), "--home", str(home), "--as-of", "2019-06-01",
            "--json"]

    killed = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not list(home.glob("runs/*/*-backtest/checkpoints/last.ckpt")):  # a checkpoint is written
            assert killed.poll() is None, "the run ended before its first checkpoint"
            time.sleep(0.2)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.kill()
        killed.wait()
    [first] = home.glob("runs/*/*-backtest")
    assert not (first / "model.ckpt").exists()  # killed while it trained

    p = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=800, check=False)
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    said = [line for line in p.stderr.splitlines() if "Resuming gru backtest from step" in line]
    assert said and f"of {MAX_STEPS}" in said[0] and str(first) in said[0], p.stderr[-3000:]
    step = int(said[0].split("from step ")[1].split()[0])
    assert 10 <= step < MAX_STEPS

    [second] = [d for d in home.glob("runs/*/*-backtest") if d != first]
    meta = json.loads((second / "meta.json").read_text())
    assert meta["metrics"]["steps"] == MAX_STEPS
    assert min(_steps_logged(second)) >= step  # it trained only the steps after the checkpoint
    assert json.loads((first / "training.json").read_text())["resumed_by"] == str(second)
    result = json.loads(p.stdout.strip().splitlines()[-1])
    # in the run's summary too (its notes: the decision artifact, the result), not in its log alone (ckpt33)
    resumed = f"gru backtest resumed from step {step} of {MAX_STEPS} of a killed run's training ({first})."
    assert resumed in result["note"], result["note"]
    rows = EmbeddedStore(home / "warehouse").read(dataset="tiny")
    assert rows.height == result["published_rows"] == 24
    assert rows.select("unique_id", "ds").n_unique() == 24

