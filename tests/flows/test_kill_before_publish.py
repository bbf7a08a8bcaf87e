"""`flowcast run` SIGKILLed between its promotion and its publish (FLOWCAST_FAULT=flow:before_publish):
production points at its winner and that as_of has no forecasts. The scheduled forecast and the
re-run of the same as_of must then publish (neither skips as 'unchanged' or 'already promoted'),
once: one set of rows, the production model's, and no second promotion. Real processes under
the session's Prefect API, statistical candidates only (no training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from flow_helpers import newest_artifact, tiny_toml, write_series

from flowcast import reporting
from flowcast.registry import ModelRegistry
from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")
AS_OF = datetime(2019, 6, 1)


def _flowcast(command: str, cfg: Path, home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("FLOWCAST_FAULT", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.run([FLOWCAST, command, "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
                           "--as-of", AS_OF.date().isoformat(), "--json"],
                          env=env, capture_output=True, text=True, timeout=400, check=False)


def _summary(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_run_killed_between_its_promotion_and_its_publish_publishes_when_run_again(tmp_path):
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(write_series(tmp_path / "tiny.csv")).replace('cells = ["gru"]', "cells = []"))
    home = tmp_path / "home"
    registry, store = ModelRegistry(home / "models"), EmbeddedStore(home / "warehouse")

    killed = _flowcast("run", cfg, home, fault="flow:before_publish")
    assert killed.returncode == -9, killed.stderr[-3000:]
    winner = registry.production("tiny").version  # promoted, then killed
    assert not store.has("tiny", AS_OF)
    promotions = [e for e in registry.history("tiny") if e["action"] == "promote"]
    assert [e["version"] for e in promotions] == [winner]
    # followup21: its decision and leaderboard, written before the publish, are each key's newest: they say the
    # winner is to publish, not that it was published (they said 'Published: ...' and '✔ published')
    decision, board, details = (newest_artifact(k) for k in ("promotion-decision-tiny", "leaderboard-tiny",
                                                     "leaderboard-details-tiny"))
    assert decision.data.startswith("### To publish: **") and winner in decision.data, decision.data
    assert "Published:" not in decision.data and "not published yet" in decision.description
    assert [r["published"] for r in json.loads(board.data) if r["published"]] == [reporting.TO_PUBLISH_MARK]
    assert "published forecasts come from" not in board.description and "is to publish" in board.description
    assert reporting.TO_PUBLISH_MARK in details.data and "✔ published" not in details.data

    forecast = _summary(_flowcast("forecast", cfg, home))  # the scheduled forecast of that as_of
    assert forecast["model_version"] == winner and forecast["published_rows"] == 24

    rerun = _summary(_flowcast("run", cfg, home))  # the re-run of the killed retrain
    assert rerun["model_version"] == registry.production("tiny").version
    # the key holds the winner's forecasts already (the forecast run's, the same rows): not published again
    assert rerun["published_rows"] == 0 and rerun["published_by"] == forecast["run_id"]
    rows = store.read(dataset="tiny", as_of=AS_OF)
    assert rows.height == 24 and rows.select("unique_id", "ds").n_unique() == 24
    assert set(rows["model_version"]) == {rerun["model_version"]} and set(rows["run_id"]) == {forecast["run_id"]}
    # it compared against the killed run's winner, kept it, and promoted nothing twice
    assert not rerun["promoted"] and rerun["action"] == "keep" and rerun["model_version"] == winner
    assert len(registry.list()) == 1
    assert [e["version"] for e in registry.history("tiny") if e["action"] == "promote"] == [winner]
    # its forecasts are published (the same rows, by the forecast run): the decision key's newest (its second version)
    # says this run published nothing, and which run did (ops trial 52: it said 'Published: the production model')
    assert newest_artifact("promotion-decision-tiny").data.startswith(
        f"### This run published nothing: this as_of was published already, by flow run [{forecast['run_id']}](")
    assert f"with **the production model** ({winner})" in newest_artifact("promotion-decision-tiny").data
    # ops53: its leaderboard's newest marked the winner '✔ published' as if this run had published it
    assert [r["published"] for r in json.loads(newest_artifact("leaderboard-tiny").data) if r["published"]] == [
        reporting.ALREADY_PUBLISHED_MARK]


def _run_at(as_of: str, cfg: Path, home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("FLOWCAST_FAULT", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.run([FLOWCAST, "run", "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
                           "--as-of", as_of, "--json"], env=env, capture_output=True, text=True, timeout=400,
                          check=False)


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_gc_keeps_the_version_a_retrain_of_a_past_date_registered_until_it_publishes(tmp_path):
    """Regression: a retrain of a past date leaves production alone and records its winner as a champion of older
    data than the recorded one, so the version it registered was neither production, its predecessor nor the
    champion, and published nothing yet: a `flowcast gc --yes` between its registration and its publish removed
    it. Here the run is held there (SIGKILLed at flow:before_publish: a run still under way looks the same to gc,
    and a killed run's pin lapses only after a day); gc keeps the version and says which run uses it."""
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(write_series(tmp_path / "tiny.csv")).replace('cells = ["gru"]', "cells = []")
                   + "\n[retention]\nkeep_versions = 0\n")
    home = tmp_path / "home"
    registry = ModelRegistry(home / "models")
    production = _summary(_run_at("2019-06-01", cfg, home))["model_version"]  # promoted
    champion = _summary(_run_at("2019-04-01", cfg, home))["model_version"]  # a past date: recorded as the champion
    assert registry.production("tiny").version == production and registry.champion("tiny").version == champion
    killed = _run_at("2019-03-01", cfg, home, fault="flow:before_publish")  # older still: not the champion
    assert killed.returncode == -9, killed.stderr[-3000:]
    (in_use,) = {v.version for v in registry.list()} - {production, champion}

    gc = subprocess.run([FLOWCAST, "gc", "--config", str(cfg), "--home", str(home), "--yes"],
                        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True,
                        timeout=300, check=False)
    assert gc.returncode == 0, gc.stderr[-3000:]
    assert in_use in {v.version for v in registry.list()}
    said = " ".join(gc.stdout.split())
    assert f"kept {in_use}: in use by the running flow run " in said, said
