"""A retrain re-run of an as_of whose forecasts the key holds already (the production model kept, the same rows) publishes
nothing again (`SamePublished`), and still says what it would have said of those forecasts: the data classed
intermittent, the counts cut at 0 (85ef93e: `*(notes if same else [])` in pipeline.py's skip path)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.store import EmbeddedStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

pytestmark = pytest.mark.usefixtures("prefect_api")


def _run(args: list[str]) -> dict:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_retrain_rerun_that_publishes_the_same_forecasts_keeps_its_notes(tmp_path):
    from flow_helpers import artifacts_of
    from intermittent import run_args, write_intermittent
    from test_retrain_slot import flow_run_of

    csv = write_intermittent(tmp_path / "parts.csv", n_series=6, days=60, seed=0)
    home = tmp_path / "home"
    args = run_args(csv, home, days=60, horizon=7)
    first = _run(args)
    assert first["published_rows"] == 6 * 7 and first["promoted"], first
    said = ("The data was classed intermittent", "cut at 0")
    assert all(s in first["note"] for s in said), first["note"]
    # the same as_of again: production (the first run's winner) is a candidate and kept, its forecasts the very rows
    again = _run(args)
    assert again["action"] == "keep" and again["model_version"] == first["model_version"], again
    assert again["published_rows"] == 0 and again["skipped"] and again["published_by"] == first["run_id"], again
    assert "(same version, same rows" in again["note"] and "so this run publishes nothing again" in again["note"]
    # what this run says of the forecasts it decided on holds for the ones the key keeps: its result, its state, and
    # the skipped run's artifact say it as the first run said it
    assert all(s in again["note"] for s in said), again["note"]
    run = flow_run_of(again["run_id"])
    assert run.state.is_completed() and all(s in run.state.message for s in said), run.state.message
    (skipped,) = artifacts_of(again["run_id"])[None]
    assert all(s in skipped.data for s in said), skipped.data
    store = EmbeddedStore(home / "warehouse")
    assert set(store.read(dataset="parts")["run_id"]) == {first["run_id"]}  # the first run's publish, alone
