"""The forecast flow as a deployment's schedule runs it: as_of empty, the run's scheduled start time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowcast.config import load_settings

SLOT = datetime(2019, 7, 1, tzinfo=UTC)


@pytest.mark.usefixtures("prefect_api")
def test_a_second_run_of_one_schedule_slot_publishes_nothing(production_home, monkeypatch):
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
    second = forecast_flow(**production_home)
    assert second["published_rows"] == 0 and second.get("skipped")
    assert first["run_id"] in second["note"] and "overwrite is off" in second["note"]
    store = open_store(load_settings(None, home=production_home["home"]))
    assert store.receipt_of("tiny", SLOT)["run_id"] == first["run_id"]  # the first run's publish stays
    # an as_of given (a re-run by hand, a backfill with --overwrite) still replaces what the slot published
    again = forecast_flow(as_of=SLOT, **production_home)
    assert again["published_rows"] > 0
    assert store.receipt_of("tiny", SLOT)["run_id"] == again["run_id"]
