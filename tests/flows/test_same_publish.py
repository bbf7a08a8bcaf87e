"""A run whose publish finds its key holding the very forecasts it made (the same model version, the same rows) does
not publish them again: two `flowcast run` of one as_of at once on a home with a model in production (both keep it),
and a `flowcast forecast` of one as_of run twice with nothing changed. Checked under the key's lock in the publish."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_retrain_slot import STATISTICAL, _other_run_of_the_slot

from flowcast import reporting
from flowcast.config import load_settings
from flowcast.ops.quiet import fingerprint_path
from flowcast.registry import ModelRegistry
from flowcast.store import open_store

FIRST = datetime(2019, 6, 1)  # the as_of that puts a model in production
LATER = datetime(2019, 9, 1)  # the as_of both runs retrain at once: production stays


def _keeps(registry: ModelRegistry, at: datetime) -> list[str]:
    """The runs whose `keep` event names as_of `at`."""
    return [e["run"] for e in registry.history("tiny") if e["action"] == "keep"
            and datetime.fromisoformat(e["as_of"]).replace(tzinfo=None) == at]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_two_runs_of_one_as_of_at_once_that_keep_production_publish_once(flow_kwargs, monkeypatch):
    """Regression (publish29): both runs kept production, both published, one after the other (two `keep` events,
    two publishes of the same rows). The one that reaches the publish second (another run, a real process, published
    while it computed) finds the same version's same rows under the key's lock: it writes nothing, records no `keep`,
    ends Completed naming that run; its realized accuracy is scored as after a publish."""
    from flowcast.flows import pipeline, retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    first = retrain_flow(as_of=FIRST, **flow_kwargs, **STATISTICAL)
    assert first["decision"]["promote"]
    real_publish = pipeline.publish_forecasts
    other: dict = {}

    def another_run_publishes_first(*args, **kwargs):  # the race window: this run computed, not yet published
        other.update(_other_run_of_the_slot(LATER.replace(tzinfo=UTC), {
            **flow_kwargs, **STATISTICAL, "as_of": LATER.isoformat()}))
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(pipeline, "publish_forecasts", another_run_publishes_first)
    late = retrain_flow(as_of=LATER, **flow_kwargs, **STATISTICAL)
    assert other["published_rows"] > 0 and other["decision"]["action"] == "keep"
    assert late["decision"]["action"] == "keep" and late["model_version"] == other["model_version"]
    assert late["published_rows"] == 0 and late["skipped"] and late["published_by"] == other["run_id"]
    assert (f"was already published by run {other['run_id']} (same version, same rows: {other['published_rows']} rows "
            f"of {other['model_version']}), so this run publishes nothing again") in late["note"]
    assert _keeps(registry, LATER) == [other["run_id"]]  # one keep event: the run that published
    receipt = store.receipt_of("tiny", LATER)
    assert receipt["run_id"] == other["run_id"] and set(store.read(dataset="tiny", as_of=LATER)["run_id"]) == {
        other["run_id"]}
    assert late["realized"]["recorded"] is True  # scored as the run that published scored
    from flow_helpers import artifacts_of
    from test_retrain_slot import flow_run_of

    run = flow_run_of(late["run_id"])
    assert run.state.is_completed() and run.state.message == f"Skipped: {late['note']}"
    # its decision's forecasts are what the key holds: its newest says this run published nothing, and which run did
    # (ops trial 52: 'Published: the production model', true of the as_of, not of this run); no receipt of its own
    said = artifacts_of(late["run_id"])
    assert said["promotion-decision-tiny"][0].data.startswith(
        f"### This run published nothing: this as_of was published already, by flow run [{other['run_id']}]("
    ), said["promotion-decision-tiny"][0].data
    assert "**the production model**" in said["promotion-decision-tiny"][0].data.splitlines()[0]
    assert "publish-receipt-tiny" not in said
    # ops53: its leaderboard's newest marked the winner '✔ published', and both described what was published as if
    # this run had: each says this run published nothing, and which run did
    nothing = f"This run published nothing: this as_of was published already, by flow run [{other['run_id']}]("
    decision, board, details = (said[k][0] for k in ("promotion-decision-tiny", "leaderboard-tiny",
                                                     "leaderboard-details-tiny"))
    assert nothing in decision.description, decision.description
    marks = [r["published"] for r in json.loads(board.data) if r["published"]]
    assert marks == [reporting.ALREADY_PUBLISHED_MARK], marks
    assert nothing in board.description and "the published forecasts come from" not in board.description
    assert details.data.startswith(f"## {nothing}") and reporting.PUBLISHED_MARK + " |" not in details.data


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_forecast_of_one_as_of_run_twice_with_nothing_changed_publishes_once(flow_kwargs, tmp_path, caplog):
    """Regression (publish29): a second `flowcast forecast --as-of A` with nothing changed published the same rows
    again (a second publish, its receipt, a rewritten record). It writes nothing and names the run that published;
    a record of that publish that its run was killed before writing is written. Changed forecasts still replace.
    ui31: its log said 'Publishing: tiny as_of ... is published already and this run replaces it', then that it
    publishes nothing again: the first line says the exception too."""
    from flowcast.flows import forecast_flow, retrain_flow

    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    retrain_flow(as_of=FIRST, **flow_kwargs, **STATISTICAL)
    once = forecast_flow(as_of=LATER, **flow_kwargs)
    assert once["published_rows"] > 0 and not once["skipped"]
    path = store.data.current("forecasts", "tiny", LATER)
    record = fingerprint_path(flow_kwargs["home"], "tiny", LATER)
    record.unlink()  # as if the run that published had been killed before it recorded the data it forecast from
    caplog.clear()
    with caplog.at_level(logging.INFO):
        twice = forecast_flow(as_of=LATER, **flow_kwargs)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Publishing:")]
    assert said == [("Publishing: tiny as_of 2019-09-01 is published already: this run replaces it "
                     "unless it holds these very forecasts (the same model version and rows), checked as it "
                     "publishes")], said
    assert twice["published_rows"] == 0 and twice["skipped"] and twice["published_by"] == once["run_id"]
    assert "(same version, same rows" in twice["note"] and twice["realized"]["recorded"] is True
    assert store.data.current("forecasts", "tiny", LATER) == path  # the same file: nothing written
    assert store.receipt_of("tiny", LATER)["run_id"] == once["run_id"]
    assert '"run_id": "' + once["run_id"] in record.read_text()  # recorded, naming the run that published
    # other forecasts (the history revised) replace the key, as the overwrite rule says
    text = Path(flow_kwargs["source"]["path"]).read_text().replace("S0,2019-01-01,", "S0,2019-01-01,9")
    changed = tmp_path / "changed.csv"
    changed.write_text(text)
    kw = {**flow_kwargs, "source": {**flow_kwargs["source"], "path": str(changed)}}
    third = forecast_flow(as_of=LATER, **kw)
    assert third["published_rows"] > 0 and not third["skipped"]
    assert store.receipt_of("tiny", LATER)["run_id"] == third["run_id"]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_skipped_publish_rewrites_a_record_of_another_publish_of_its_as_of(flow_kwargs):
    """review31: the run that published these forecasts was killed before it recorded the data it forecast from,
    leaving the record of the as_of's earlier publish (other forecasts). A re-run that found its very forecasts in the
    key wrote the record only where there was none: the stale one stayed, and `publish.skip_unchanged` never took the
    as_of's publish for unchanged ('its fingerprint record ... belongs to another publish of that as_of'). A record of
    another publish is rewritten for the one the key holds; one of that publish is left as it is."""
    from flowcast.flows import forecast_flow, retrain_flow
    from flowcast.ops.quiet import recorded_fingerprint

    settings = load_settings(None, home=flow_kwargs["home"])
    store = open_store(settings)
    retrain_flow(as_of=FIRST, **flow_kwargs, **STATISTICAL)
    once = forecast_flow(as_of=LATER, **flow_kwargs)
    held = store.receipt_of("tiny", LATER)["content_hash"]
    record = fingerprint_path(flow_kwargs["home"], "tiny", LATER)
    kept = json.loads(record.read_text())
    record.write_text(json.dumps({**kept, "content_hash": "0" * 64, "run_id": "an-earlier-publish"}))
    twice = forecast_flow(as_of=LATER, **flow_kwargs)
    assert twice["skipped"] and twice["published_by"] == once["run_id"]
    rewritten = json.loads(record.read_text())
    assert rewritten["content_hash"] == held and rewritten["run_id"] == once["run_id"]
    assert recorded_fingerprint(settings, dataset="tiny", as_of=LATER, content_hash=held) == (
        kept["data_fingerprint"], "")
    before = record.stat().st_mtime_ns
    thrice = forecast_flow(as_of=LATER, **flow_kwargs)
    assert thrice["skipped"] and record.stat().st_mtime_ns == before  # that publish's own record: left


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_same_publish_on_a_shared_home_writes_the_record_its_shared_copy_lacks(s3_url, tmp_path):
    """Regression (retrain31): on a shared home (an object store here: an S3 server, the forecasts in its warehouse)
    the record of a publish is written on the machine that published, then copied to the shared home, where every
    machine reads it. A run killed between the two left it on its machine alone; a re-run there that found the key
    holding its very forecasts looked at that machine's file only, found it, and wrote nothing: the other machines
    never got the record (their next run cannot tell nothing changed). It is written, and shared."""
    from flow_helpers import TINY_OVERRIDES, source_dict, write_series

    from flowcast.flows import forecast_flow, retrain_flow
    from flowcast.ops.quiet import recorded_fingerprint
    from flowcast.shared import shared_files

    url, opts = s3_url
    csv = write_series(tmp_path / "raw" / "sales.csv")
    home_a = tmp_path / "machine-a"
    kw = {"source": source_dict(csv), "home": str(home_a),
          "overrides": {**TINY_OVERRIDES, "shared": url, "shared_options": opts}}
    retrain_flow(as_of=FIRST, **kw, **STATISTICAL)
    once = forecast_flow(as_of=LATER, **kw)
    assert once["published_rows"] > 0
    machine_b = load_settings(home=tmp_path / "machine-b", shared=url, shared_options=opts)
    held = open_store(machine_b).receipt_of("tiny", LATER)["content_hash"]
    rel = fingerprint_path(home_a, "tiny", LATER).relative_to(home_a).as_posix()
    files = shared_files(machine_b)
    assert files is not None and files.exists(rel)
    files.remove(rel)  # killed after the record was written on machine A, before its copy reached the shared home
    assert fingerprint_path(home_a, "tiny", LATER).exists()
    again = forecast_flow(as_of=LATER, **kw)
    assert again["published_by"] == once["run_id"] and again["published_rows"] == 0
    assert files.exists(rel)
    assert json.loads(files.read_bytes(rel))["run_id"] == once["run_id"]
    assert recorded_fingerprint(machine_b, dataset="tiny", as_of=LATER, content_hash=held)[0] is not None
