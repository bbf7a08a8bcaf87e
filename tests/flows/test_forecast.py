"""The forecast flow as a deployment's schedule runs it: as_of empty, the run's scheduled start time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from flowcast import reporting
from flowcast.config import load_settings

SLOT = datetime(2019, 7, 1, tzinfo=UTC)


def _said(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    """The flow run's log lines that start with `start`."""
    return [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs" and r.getMessage().startswith(start)]


@pytest.mark.usefixtures("prefect_api")
def test_a_second_run_of_one_schedule_slot_publishes_nothing(production_home, monkeypatch, caplog):
    """Regression (a `flowcast serve` restarted against a real server, ops15): the restarted serve
    re-registered its deployments, which re-created the scheduled runs, while the old process still held the
    run of the next slot: two flow runs 'forecast emp 2026-12-04 19:17' of one slot both ran, and with new
    data both would have published that as_of, one replacing the other (two publishes, two receipts). Two
    workers, or a Crashed run retried after it had published, do the same. A scheduled run (as_of empty)
    now publishes its slot once; a run given its as_of still replaces it."""
    from prefect.runtime import flow_run

    from flowcast.flows import forecast_flow
    from flowcast.store import open_store

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = forecast_flow(**production_home)
    assert first["published_rows"] > 0
    with caplog.at_level(logging.INFO):
        second = forecast_flow(**production_home)
    assert second["published_rows"] == 0 and second.get("skipped")
    assert first["run_id"] in second["note"] and "overwrite is off" in second["note"]
    # alerts21: its log line ends as a sentence, as its state message and artifact do ('... publishes nothing')
    assert _said(caplog, "tiny as of ") == [f"{second['note']}."] and second["note"].endswith("publishes nothing")
    # its page says so in an artifact that links the run that published (it had none: a Completed run, no receipt)
    from flow_helpers import artifacts_of

    said = artifacts_of(second["run_id"])
    assert [a.data for a in said[None]] == [reporting.skipped_markdown(second["note"])]
    assert f"/runs/flow-run/{first['run_id']})" in said[None][0].data and "publish-receipt-tiny" not in said
    store = open_store(load_settings(None, home=production_home["home"]))
    assert store.receipt_of("tiny", SLOT)["run_id"] == first["run_id"]  # the first run's publish stays
    # in the UI's run list: Completed with a message naming the run that published, renamed and tagged skipped
    # (ops17: it was 'forecast tiny 2019-07-01', Completed(), as the run that published)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        done, skipped = client.read_flow_run(first["run_id"]), client.read_flow_run(second["run_id"])
    assert skipped.state.is_completed() and skipped.state.message == f"Skipped: {second['note']}"
    assert skipped.name == "forecast tiny 2019-07-01 (skipped)" and "skipped" in skipped.tags
    assert done.name == "forecast tiny 2019-07-01" and "skipped" not in done.tags
    assert done.state.message == (f"Published {first['published_rows']:,} forecast rows from {first['model']} "
                                  f"({first['model_version']}): tiny as of 2019-07-01")  # ui42: it read 'State
    # Message: None'; uiB46: the model as the receipt and the log line name it (it read 'from damped-v1')
    # an as_of given (a re-run by hand, a backfill with --overwrite) is not refused by the once-per-slot rule; its
    # forecasts, the very ones the slot holds (nothing changed), are not published again (publish29)
    again = forecast_flow(as_of=SLOT, **production_home)
    assert again["published_rows"] == 0 and again["published_by"] == first["run_id"]
    assert "(same version, same rows" in again["note"] and "overwrite is off" not in again["note"]
    assert store.receipt_of("tiny", SLOT)["run_id"] == first["run_id"]


@pytest.mark.usefixtures("prefect_api")
def test_a_slot_published_by_another_run_after_the_first_check_is_not_published_again(production_home, monkeypatch,
                                                                                      caplog):
    """Regression (ops16): the once-per-slot check was made as the run started, not under the key's lock: a run
    of the slot that found it empty then, and another run (a real process here) that published it while the
    first one computed, both published, one after the other. The check is made again in the publish, under the
    key's lock: the first run publishes nothing, ends Completed and names the run that published."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from flow_helpers import task_states_of
    from prefect.runtime import flow_run

    from flowcast.flows import forecast
    from flowcast.store import open_store

    settings = load_settings(None, home=production_home["home"])
    faults = Path(__file__).resolve().parents[1] / "publish_faults"
    real_check = forecast.published_already

    def then_another_run_publishes(settings_, as_of):  # the race window: right after this run's first check
        found = real_check(settings_, as_of)
        subprocess.run([sys.executable, str(faults / "publisher.py"), str(settings.warehouse_dir), "tiny",
                        SLOT.isoformat(), "7", "4", "6"], check=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(faults.parents[1] / "src"), str(faults)])})
        return found

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    monkeypatch.setattr(forecast, "published_already", then_another_run_publishes)
    with caplog.at_level(logging.INFO):
        late = forecast.forecast_flow(**production_home)
    assert late["published_rows"] == 0 and late["skipped"] and late["published_by"] == "run-7"
    # alerts21: the refused publish's log line ends as a sentence ('... so this run publishes nothing')
    assert _said(caplog, "tiny as of ") == [f"{late['note']}."] and late["note"].endswith("publishes nothing")
    from flowcast.flows.forecast import FORECAST_KEYS

    assert list(late) == list(FORECAST_KEYS) and late["series_excluded"] == 0  # the keys of every other path
    assert "run run-7" in late["note"] and "found under the key's lock" in late["note"]
    from flow_helpers import artifacts_of

    said = artifacts_of(late["run_id"])  # the run's page says it published nothing, not only its log
    assert [a.data for a in said[None]] == [reporting.skipped_markdown(late["note"])]
    assert "publish-receipt-tiny" not in said
    store = open_store(settings)
    assert store.receipt_of("tiny", SLOT)["run_id"] == "run-7"  # the other run's publish, alone
    assert set(store.read(dataset="tiny", as_of=SLOT)["run_id"]) == {"run-7"}
    assert task_states_of(late["run_id"])["publish"] == ["Completed"]  # no failed task in the UI either
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # and its run list entry says it skipped, naming run-7
        skipped = client.read_flow_run(late["run_id"])
    assert skipped.state.message == f"Skipped: {late['note']}" and skipped.name.endswith(" (skipped)")


@pytest.mark.usefixtures("prefect_api")
def test_a_run_retried_after_it_published_its_slot_is_not_called_skipped(production_home, monkeypatch):
    """A Crashed run retried from the UI (Prefect reruns the same flow run) after it had published finds the slot
    published by itself: it publishes nothing again, and its state says its earlier attempt did it. It is the run
    that published: not renamed '(skipped)' nor tagged 'skipped' (ops17), and its result names it."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.runtime import flow_run
    from prefect.states import Scheduled

    from flowcast.flows import forecast_flow

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = forecast_flow(**production_home)
    assert first["published_rows"] > 0
    with get_client(sync_client=True) as client:  # the UI's Retry: the same flow run scheduled again
        client.set_flow_run_state(first["run_id"], Scheduled(), force=True)
        retried = client.read_flow_run(first["run_id"])
    state = run_flow(forecast_flow, flow_run=retried, parameters=production_home, return_type="state")
    again = state.result()
    assert again["run_id"] == first["run_id"] and again["skipped"] and again["published_by"] == first["run_id"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(first["run_id"])
    assert run.state.is_completed() and run.state.message == f"Done by an earlier attempt of this flow run: {again['note']}"
    assert run.name == "forecast tiny 2019-07-01" and "skipped" not in run.tags
    from flow_helpers import artifacts_of

    said = artifacts_of(first["run_id"])  # its page: the first attempt's receipt, and this attempt's word on it
    assert [a.data for a in said[None]] == [reporting.skipped_markdown(again["note"], again=True)]
    assert "an earlier attempt of this run did it" in said[None][0].data and "publish-receipt-tiny" in said


@pytest.mark.usefixtures("prefect_api")
def test_every_forecast_result_has_the_same_keys_whichever_way_it_ends(production_home, tmp_path, monkeypatch):
    """Regression: the forecast flow's early returns ('nothing new is published': unchanged; 'already published':
    skipped) carried neither `excluded` nor `series_excluded` (nor kind, fallbacks, the freshness keys of a skipped
    run), where the published result had them: `flowcast forecast --json` changed shape with the way the run ended.
    Every path now has every key of FORECAST_KEYS, null where it cannot know it (a run skipped before it read the
    data)."""
    import shutil

    from prefect.runtime import flow_run

    from flowcast.data.freshness import RUN_KEYS
    from flowcast.flows import forecast_flow
    from flowcast.flows.forecast import FORECAST_KEYS

    csv = tmp_path / "sales.csv"  # the tiny data and a series whose every row is quarantined: excluded
    shutil.copy(production_home["source"]["path"], csv)
    with csv.open("a") as f:
        f.write("S9,2019-01-01,abc\n")
    kw = {**production_home, "source": {**production_home["source"], "path": str(csv)}}
    # (dates of their own: the session's event log is shared with the other flow tests, which look up theirs by date)
    published = forecast_flow(as_of=datetime(2019, 8, 11), **kw)
    unchanged = forecast_flow(as_of=datetime(2019, 8, 12), **kw)
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: datetime(2019, 8, 11, tzinfo=UTC))
    skipped = forecast_flow(**kw)
    assert published["published_rows"] > 0 and unchanged["unchanged"] and skipped["skipped"]
    assert set(RUN_KEYS) <= set(FORECAST_KEYS)
    for result in (published, unchanged, skipped):
        assert list(result) == list(FORECAST_KEYS)
    assert published["series_excluded"] == unchanged["series_excluded"] == 1
    assert [e["unique_id"] for e in unchanged["excluded"]] == [e["unique_id"] for e in published["excluded"]] == ["S9"]
    assert skipped["excluded"] is None and skipped["series_excluded"] is None and skipped["n_series"] is None
    assert not published["skipped"] and not published["unchanged"] and not unchanged["skipped"]
