"""The retrain flow as a deployment's schedule runs it: as_of empty, the run's scheduled start time, retrained once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowcast import reporting
from flowcast.config import load_settings
from flowcast.registry import ModelRegistry

SLOT = datetime(2019, 7, 1, 3, tzinfo=UTC)
STATISTICAL = {"models": []}  # no network: the statistical candidates (fast)


@pytest.mark.usefixtures("prefect_api")
def test_a_second_run_of_one_retrain_slot_retrains_nothing(flow_kwargs, monkeypatch):
    """Regression (ops16): the same retrain schedule slot run twice (a restarted serve re-creating the
    scheduled run, a Crashed run retried after it had registered and published) retrained, registered and
    published twice. A scheduled retrain whose slot a run completed (a version registered for that as_of, its
    forecasts published) does nothing, names that run and ends Completed; a run given its as_of retrains."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert first["published_rows"] > 0
    versions = [v.version for v in registry.list()]
    second = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert second["published_rows"] == 0 and second["skipped"] and second["retrained_by"] == first["run_id"]
    assert f"run {first['run_id']} registered {first['model_version']}" in second["note"]
    from flow_helpers import artifacts_of

    said = artifacts_of(second["run_id"])  # its page: no task, no artifact; now one linking the run that retrained
    assert [a.data for a in said[None]] == [reporting.skipped_markdown(second["note"])]
    assert f"/runs/flow-run/{first['run_id']})" in said[None][0].data
    assert [v.version for v in registry.list()] == versions  # nothing registered
    assert store.receipt_of("tiny", SLOT)["run_id"] == first["run_id"]  # the first run's publish stays
    # an as_of given (by hand, `backfill --mode retrain`) retrains as before
    again = retrain_flow(as_of=SLOT, **flow_kwargs, **STATISTICAL)
    assert again["published_rows"] > 0 and again["leaderboard"]  # backtested again (production kept: no version)
    assert store.receipt_of("tiny", SLOT)["run_id"] == again["run_id"]


@pytest.mark.usefixtures("prefect_api")
def test_a_retrain_slot_registered_but_not_published_is_retrained(flow_kwargs, monkeypatch):
    """A run of the slot killed after it registered its winner, before the publish: the slot is not done, the
    next run of it retrains and publishes (here: the first run's forecasts removed, as if never published)."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert store.delete("tiny", SLOT)
    second = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert second["published_rows"] > 0 and not second.get("skipped") and second["run_id"] != first["run_id"]
    assert store.receipt_of("tiny", SLOT)["run_id"] == second["run_id"]
