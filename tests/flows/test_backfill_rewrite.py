"""`flowcast backfill --overwrite` rewrites its dates in both modes, and says so: each date's outcome (the summary, the
`--json` object, the backfill's table artifact) names the publish it replaced, each rewrite records its own publish
record (`published/<dataset>/<as_of>.json`: its run, its content hash)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from flow_helpers import TINY_OVERRIDES, artifacts_of
from test_retrain_slot import STATISTICAL

from flowcast.config import load_settings
from flowcast.mdtext import md_text
from flowcast.ops.quiet import fingerprint_path
from flowcast.store import open_store

DATE = datetime(2018, 1, 1)


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["retrain", "forecast"])
def test_backfill_overwrite_rewrites_each_date_and_says_what_it_replaced(flow_kwargs, mode):
    from flowcast.flows import backfill_flow, retrain_flow

    kw = {**flow_kwargs, "overrides": {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": []}}}
    if mode == "forecast":  # a model to forecast with
        retrain_flow(as_of=datetime(2019, 6, 1), **flow_kwargs, **STATISTICAL)
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    record = fingerprint_path(flow_kwargs["home"], "tiny", DATE)
    first = backfill_flow(start=DATE, end=DATE, every="1mo", mode=mode, **kw)
    (once,) = first["outcomes"]
    assert once["status"] == "published" and not once.get("note"), once  # nothing was there: no rewrite to say
    held = store.receipt_of("tiny", DATE)
    redo = backfill_flow(start=DATE, end=DATE, every="1mo", mode=mode, overwrite=True, **kw)
    (again,) = redo["outcomes"]
    now = store.receipt_of("tiny", DATE)
    assert (redo["published"], again["status"]) == (1, "published"), again
    assert now["run_id"] == again["run_id"] != held["run_id"]  # rewritten by the date's new run
    # a forecast date rewrites the very same forecasts; a retrain date registers its own version of its winner
    same = mode == "forecast"
    assert (now["content_hash"] == held["content_hash"]) is same
    said = (f"rewritten: it replaced the 24 rows run {held['run_id']} published ({held['model_version']})"
            + (" (identical content)" if same else ""))
    assert again["note"] == said, again
    # its own publish record: the run that rewrote the date, its content hash
    rec = json.loads(record.read_text())
    assert (rec["run_id"], rec["content_hash"]) == (now["run_id"], now["content_hash"])
    (table,) = artifacts_of(redo["run_id"])["backfill-summary-tiny"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [r["detail"] for r in rows] == ["rewritten: what it replaced is above the table"]
    assert table.description.endswith(f"Rewritten: 2018-01-01 {md_text(said.removeprefix('rewritten: '))}")


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_fanned_out_backfill_with_overwrite_says_what_each_date_rewrote(flow_kwargs, monkeypatch):
    """`backfill --deployment retrain/retrain --overwrite`: the outcome of a date a worker rewrote names the publish
    it replaced, as the in-process backfill's does (the worker here: the date's run, in this process, with the
    parameters the backfill starts it with)."""
    from flowcast.flows import backfill_flow, fanout, retrain_flow

    kw = {**flow_kwargs, "overrides": {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": []}}}
    backfill_flow(start=DATE, end=DATE, every="1mo", mode="retrain", **kw)
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    held = store.receipt_of("tiny", DATE)

    def fan_out(plan, dates, parameters, receipt_of, log, on_outcome=None, stops=None):  # a worker runs each date's flow
        done = retrain_flow(**parameters, as_of=dates[0].isoformat())
        return [{"as_of": dates[0].isoformat(), "status": "published", "rows": done["published_rows"],
                 "model": done["model_version"], "run_id": done["run_id"], "flow_run": "worker's", "worker": "w",
                 "error": None}]

    monkeypatch.setattr(fanout, "fan_out", fan_out)
    redo = backfill_flow(start=DATE, end=DATE, every="1mo", deployment="retrain/retrain", overwrite=True, **kw)
    (again,) = redo["outcomes"]
    assert store.receipt_of("tiny", DATE)["run_id"] == again["run_id"] != held["run_id"]
    assert again["note"] == f"rewritten: it replaced the 24 rows run {held['run_id']} published ({held['model_version']})"
