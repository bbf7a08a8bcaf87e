"""`flowcast forecast` SIGKILLed between its publish and the rest of it (FLOWCAST_FAULT=publish:before_record: the
forecasts stored, no record, plot, receipt or published event), then run again: the re-run finds the key holding
these very forecasts (SamePublished) and completes what the killed run left undone, from the stored rows: one png
(the one an unkilled run draws), one record, one receipt saying it completes an interrupted publish, one event.
faultsB48: it wrote the record alone (no plot, receipt or event). Real processes under the session's Prefect API,
statistical models only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from flow_helpers import events_named, newest_artifact, tiny_toml, write_series

from flowcast import events
from flowcast.flows.common import completed_sentence
from flowcast.ops.quiet import fingerprint_path
from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")
TRAINED, AS_OF = datetime(2019, 6, 1), datetime(2019, 7, 1)
PNG = "forecast_tiny_20190701T000000.png"


def _flowcast(command: str, cfg: Path, home: Path, as_of: datetime, fault: str | None = None) -> dict:
    """`flowcast COMMAND --json` of dataset tiny at `as_of`: its summary, or {} where `fault` killed it."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("FLOWCAST_FAULT", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    p = subprocess.run([FLOWCAST, command, "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
                        "--as-of", as_of.date().isoformat(), "--json"],
                       env=env, capture_output=True, text=True, timeout=400, check=False)
    if fault:
        assert p.returncode == -9, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return {}
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def _home(tmp_path: Path, cfg: Path, name: str) -> Path:
    """A home whose production model was registered by a `flowcast run` at TRAINED."""
    home = tmp_path / name
    _flowcast("run", cfg, home, TRAINED)
    return home


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_forecast_killed_between_its_publish_and_its_plot_is_completed_by_the_rerun(tmp_path):
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(write_series(tmp_path / "tiny.csv")).replace('cells = ["gru"]', "cells = []"))
    ref, home = _home(tmp_path, cfg, "ref"), _home(tmp_path, cfg, "home")
    _flowcast("forecast", cfg, ref, AS_OF)  # unkilled: what a completed publish leaves
    unkilled = (ref / "reports" / PNG).read_bytes()

    _flowcast("forecast", cfg, home, AS_OF, fault="publish:before_record")
    store = EmbeddedStore(home / "warehouse")
    stored = store.read(dataset="tiny", as_of=AS_OF)
    [killed] = set(stored["run_id"])
    record = fingerprint_path(home, "tiny", AS_OF)
    assert stored.height == 24 and not record.exists() and not (home / "reports" / PNG).exists()
    # a png left at its path by an earlier publish of the as_of (other forecasts) is not taken for theirs
    (home / "reports" / PNG).write_bytes(b"not these forecasts")

    rerun = _flowcast("forecast", cfg, home, AS_OF)
    assert rerun["published_rows"] == 0 and rerun["published_by"] == killed  # nothing written again
    assert store.read(dataset="tiny", as_of=AS_OF).equals(stored)
    assert sorted(p.name for p in (home / "reports").glob("forecast_*20190701*.png")) == [PNG]
    assert (home / "reports" / PNG).read_bytes() == unkilled  # the plot of these forecasts
    assert json.loads(record.read_text())["run_id"] == killed  # one record, of the killed run's publish
    receipt = newest_artifact("publish-receipt-tiny")
    assert f"Note: t{completed_sentence(killed)[1:]}" in receipt.description, receipt.description
    assert "Published 24 forecast rows of 4 series of tiny as of 2019-07-01" in receipt.description
    assert completed_sentence(killed) in rerun["note"]

    def ours(e: dict) -> bool:
        return e["payload"].get("run_id") == killed

    sent = events_named(events.PUBLISHED, where=ours)
    assert len(sent) == 1 and "completing run" in sent[0]["payload"]["message"], sent

    again = _flowcast("forecast", cfg, home, AS_OF)  # nothing left undone now: nothing completed again
    assert completed_sentence(killed) not in again["note"]
    assert (home / "reports" / PNG).read_bytes() == unkilled
    assert len(events_named(events.PUBLISHED, where=ours, timeout=5)) == 1
