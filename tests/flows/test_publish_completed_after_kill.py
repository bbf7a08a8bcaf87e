"""`flowcast forecast` SIGKILLed between its publish and the rest of it (FLOWCAST_FAULT=publish:before_record: the
forecasts stored, no record, plot, receipt or published event), then run again: the re-run finds the key holding
these very forecasts (SamePublished) and completes what the killed run left undone, from the stored rows: one png
(the one an unkilled run draws), one record, one receipt saying it completes an interrupted publish, one event.
faultsB48: it wrote the record alone (no plot, receipt or event). Real processes under the session's Prefect API,
statistical models only. faults49: killed between its record and its plot (FLOWCAST_FAULT=publish:before_plot), the
re-run completes the plot, receipt and event once; a run of the as_of alive between its publish and its record (stopped
there) is left to finish its publish: the second run writes no receipt saying it completed an interrupted publish.
faults51: killed between its plot artifact and its receipt (FLOWCAST_FAULT=publish:before_receipt), the re-run leaves
the receipt and event, and no second plot artifact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from flow_helpers import events_named, newest_artifact, tiny_toml, write_series
from proc_state import stopped

from flowcast import events
from flowcast.flows.common import completed_sentence
from flowcast.ops.quiet import fingerprint_path
from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")
TRAINED, AS_OF = datetime(2019, 6, 1), datetime(2019, 7, 1)
PNG = "forecast_tiny_20190701T000000.png"
PLOT_KEY = "forecast-plot-tiny"


def _args(command: str, cfg: Path, home: Path, as_of: datetime, fault: str | None = None,
          signal_name: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `flowcast COMMAND --json` of dataset tiny at `as_of`."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("FLOWCAST_FAULT", None)
    env.pop("FLOWCAST_FAULT_SIGNAL", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    if signal_name:
        env["FLOWCAST_FAULT_SIGNAL"] = signal_name
    return [FLOWCAST, command, "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
            "--as-of", as_of.date().isoformat(), "--json"], env


def _flowcast(command: str, cfg: Path, home: Path, as_of: datetime, fault: str | None = None) -> dict:
    """`flowcast COMMAND --json` of dataset tiny at `as_of`: its summary, or {} where `fault` killed it."""
    args, env = _args(command, cfg, home, as_of, fault)
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=400, check=False)
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


def _cfg(tmp_path: Path) -> Path:
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(write_series(tmp_path / "tiny.csv")).replace('cells = ["gru"]', "cells = []"))
    return cfg


def _receipts(key: str = "publish-receipt-tiny") -> list:
    """Every publish receipt artifact of dataset tiny on the API (each version of its key), or every artifact under
    `key`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_forecast_killed_between_its_record_and_its_plot_is_completed_once_by_the_rerun(tmp_path):
    """faults49: killed with its publish recorded, the re-run found a record and took the publish for done: no plot,
    receipt or event, ever. The record says the run is still to leave them (`saying`); the re-run, that run gone,
    draws the plot and leaves one receipt, saying what it completes, and the event of that publish (keyed by the
    publish); a third run leaves nothing again."""
    cfg = _cfg(tmp_path)
    home = _home(tmp_path, cfg, "home")
    _flowcast("forecast", cfg, home, AS_OF, fault="publish:before_plot")
    [killed] = set(EmbeddedStore(home / "warehouse").read(dataset="tiny", as_of=AS_OF)["run_id"])
    record = fingerprint_path(home, "tiny", AS_OF)
    assert json.loads(record.read_text())["saying"] == killed and not (home / "reports" / PNG).exists()
    receipts = [a.id for a in _receipts()]

    def ours(e: dict) -> bool:
        return e["payload"].get("run_id") == killed

    rerun = _flowcast("forecast", cfg, home, AS_OF)
    assert rerun["published_rows"] == 0 and rerun["published_by"] == killed
    said = completed_sentence(killed, recorded=True)
    assert "recorded the data it forecast from and was stopped before it drew their plot" in said
    assert said in rerun["note"] and (home / "reports" / PNG).exists()
    new = [a for a in _receipts() if a.id not in receipts]
    assert len(new) == 1 and f"Note: t{said[1:]}" in new[0].description, [a.description for a in new]
    assert "saying" not in json.loads(record.read_text()) and json.loads(record.read_text())["run_id"] == killed
    sent = events_named(events.PUBLISHED, where=ours)
    assert len(sent) == 1 and "completing run" in sent[0]["payload"]["message"], sent

    again = _flowcast("forecast", cfg, home, AS_OF)  # done now: no second receipt, no second event
    assert again["published_by"] == killed and said not in again["note"]
    assert len([a for a in _receipts() if a.id not in receipts]) == 1
    assert len(events_named(events.PUBLISHED, where=ours, timeout=5)) == 1


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_run_alive_between_its_publish_and_its_record_is_not_completed_by_another(tmp_path):
    """faults49: two runs of one as_of at once. The first, alive between its publish and its record (stopped there),
    was taken for killed by the second, which found the same forecasts and no record, and wrote a receipt saying it
    completed an interrupted publish of a run that then left its own. Deciding under the key's lock, the second sees
    that run alive and leaves it the rest: one receipt (the first run's, completing nothing), one event."""
    cfg = _cfg(tmp_path)
    home = _home(tmp_path, cfg, "home")
    receipts = [a.id for a in _receipts()]
    args, env = _args("forecast", cfg, home, AS_OF, fault="publish:before_record", signal_name="SIGSTOP")
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stopped(first, timeout=400), first.communicate()
        [publisher] = set(EmbeddedStore(home / "warehouse").read(dataset="tiny", as_of=AS_OF)["run_id"])
        second = _flowcast("forecast", cfg, home, AS_OF)
        assert second["published_rows"] == 0 and second["published_by"] == publisher
        assert "completes an interrupted publish" not in second["note"], second["note"]
        assert not fingerprint_path(home, "tiny", AS_OF).exists()  # left to the first run
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=400)
    assert first.returncode == 0, f"{out[-3000:]}\n{err[-3000:]}"
    assert json.loads(out.strip().splitlines()[-1])["run_id"] == publisher
    new = [a for a in _receipts() if a.id not in receipts]
    assert len(new) == 1 and "completes an interrupted publish" not in new[0].description, [
        a.description for a in new]
    assert "saying" not in json.loads(fingerprint_path(home, "tiny", AS_OF).read_text())
    sent = events_named(events.PUBLISHED, where=lambda e: e["payload"].get("run_id") == publisher)
    assert len(sent) == 1 and "completing run" not in sent[0]["payload"]["message"], sent


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_forecast_killed_after_its_receipt_before_its_record_said_so_gets_no_second_receipt(tmp_path):
    """faults50: killed after its receipt (and event) were left, before its record said so
    (FLOWCAST_FAULT=publish:before_said), the re-run took the publish for one whose receipt was never left and wrote a
    second receipt of it (the event, keyed by the publish, stayed one). It finds the first (that run's, with this
    publish's content hash) and leaves none: one receipt, one event, one record saying nothing is left undone, the
    key's rows those of the one publish; a third run leaves nothing again."""
    cfg = _cfg(tmp_path)
    home = _home(tmp_path, cfg, "home")
    receipts = [a.id for a in _receipts()]
    _flowcast("forecast", cfg, home, AS_OF, fault="publish:before_said")
    store = EmbeddedStore(home / "warehouse")
    stored = store.read(dataset="tiny", as_of=AS_OF)
    [killed] = set(stored["run_id"])
    record = fingerprint_path(home, "tiny", AS_OF)
    assert json.loads(record.read_text())["saying"] == killed and (home / "reports" / PNG).exists()
    [first] = [a for a in _receipts() if a.id not in receipts]
    assert str(first.flow_run_id) == killed and store.receipt_of("tiny", AS_OF)["content_hash"] in str(first.data)

    def ours(e: dict) -> bool:
        return e["payload"].get("run_id") == killed

    # (its event may be lost with the kill: the events client sends it after the emit, in the background)
    rerun = _flowcast("forecast", cfg, home, AS_OF)
    assert rerun["published_rows"] == 0 and rerun["published_by"] == killed
    assert [a.id for a in _receipts() if a.id not in receipts] == [first.id]  # no second receipt
    assert completed_sentence(killed, recorded=True, receipt_by=killed) in rerun["note"], rerun["note"]
    assert "saying" not in json.loads(record.read_text()) and json.loads(record.read_text())["run_id"] == killed
    assert store.read(dataset="tiny", as_of=AS_OF).equals(stored) and stored.height == 24  # one publish, whole
    assert len(events_named(events.PUBLISHED, where=ours, timeout=5)) == 1

    again = _flowcast("forecast", cfg, home, AS_OF)  # done now: nothing completed again
    assert again["published_by"] == killed and "completes an interrupted publish" not in again["note"]
    assert [a.id for a in _receipts() if a.id not in receipts] == [first.id]
    assert len(events_named(events.PUBLISHED, where=ours, timeout=5)) == 1


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_forecast_killed_between_its_plot_and_its_receipt_gets_no_second_plot_artifact(tmp_path):
    """faults51: killed after its plot artifact, before its receipt (FLOWCAST_FAULT=publish:before_receipt), the re-run
    completed the publish and drew a second plot artifact of the as_of beside the first (the key's history in the UI
    listed the as_of twice). The plot artifact names its publish (the run and the content hash); the re-run finds it
    and leaves the receipt and event alone, saying so: one plot artifact, one receipt, one event; a third run leaves
    nothing again."""
    cfg = _cfg(tmp_path)
    home = _home(tmp_path, cfg, "home")
    plots, receipts = [a.id for a in _receipts(PLOT_KEY)], [a.id for a in _receipts()]
    _flowcast("forecast", cfg, home, AS_OF, fault="publish:before_receipt")
    store = EmbeddedStore(home / "warehouse")
    [killed] = set(store.read(dataset="tiny", as_of=AS_OF)["run_id"])
    content_hash = store.receipt_of("tiny", AS_OF)["content_hash"]
    record = fingerprint_path(home, "tiny", AS_OF)
    assert json.loads(record.read_text())["saying"] == killed and (home / "reports" / PNG).exists()
    [plot] = [a for a in _receipts(PLOT_KEY) if a.id not in plots]
    assert str(plot.flow_run_id) == killed and content_hash in str(plot.data) and killed in str(plot.data)
    assert [a for a in _receipts() if a.id not in receipts] == []  # killed before its receipt

    def ours(e: dict) -> bool:
        return e["payload"].get("run_id") == killed

    rerun = _flowcast("forecast", cfg, home, AS_OF)
    assert rerun["published_rows"] == 0 and rerun["published_by"] == killed
    said = completed_sentence(killed, recorded=True, plot_by=killed)
    assert "drew their plot and was stopped before it left their receipt and event" in said
    assert said in rerun["note"], rerun["note"]
    assert [a.id for a in _receipts(PLOT_KEY) if a.id not in plots] == [plot.id]  # no second plot artifact
    new = [a for a in _receipts() if a.id not in receipts]
    assert len(new) == 1 and f"Note: t{said[1:]}" in new[0].description, [a.description for a in new]
    assert content_hash in str(new[0].data)
    assert "saying" not in json.loads(record.read_text()) and json.loads(record.read_text())["run_id"] == killed
    assert len(events_named(events.PUBLISHED, where=ours)) == 1

    again = _flowcast("forecast", cfg, home, AS_OF)  # done now: nothing completed again
    assert again["published_by"] == killed and "completes an interrupted publish" not in again["note"]
    assert [a.id for a in _receipts(PLOT_KEY) if a.id not in plots] == [plot.id]
    assert len([a for a in _receipts() if a.id not in receipts]) == 1
    assert len(events_named(events.PUBLISHED, where=ours, timeout=5)) == 1
