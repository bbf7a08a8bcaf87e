"""The hyperparameter search as a flow (`flowcast tune`) and as the first step of a retrain
(`flowcast run --budget`): trials stored per run and shown as artifacts, the choice trained."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, artifacts_of

from flowcast.reporting import KEYS

pytestmark = pytest.mark.usefixtures("prefect_api")

SPACE = {"hidden_size": [4, 8], "num_layers": [1], "max_steps": (5, 10), "steps_step": 5, "lookback": [6, 12],
         "mode": ["windowed"], "n_startup_trials": 2, "cells": ["gru"]}


def test_tune_flow_stores_trials_and_shows_them(flow_kwargs, monkeypatch):
    from flowcast.flows import tune as tune_module
    from flowcast.flows.tune import tune_flow

    prepared = []  # regression: `flowcast tune` searched on spans a retrain (`run --budget`) would have fitted
    load_data = tune_module.load_data
    monkeypatch.setattr(tune_module, "load_data", lambda *a, **k: prepared.append(k) or load_data(*a, **k))
    kw = {**flow_kwargs, "overrides": {**TINY_OVERRIDES, "tuning": SPACE}}
    out = tune_flow(as_of=AS_OF, n_trials=3, **kw)
    assert prepared == [{"fit_spans": True}]
    from uuid import UUID

    from prefect.client.orchestration import get_client

    from flowcast.timekeys import utc_text

    with get_client(sync_client=True) as client:  # regression: it was Prefect's random 'foamy-kangaroo'
        assert client.read_flow_run(UUID(out["run_id"])).name == f"tune {out['dataset']} {utc_text(AS_OF)}"
    assert out["trials"] == 3 and out["metric"] == "mase" and out["best_value"] is not None
    assert out["best_params"]["hidden_size"] in (4, 8) and out["best_params"]["cell"] == "gru"
    trials = pl.read_parquet(Path(out["trials_dir"]) / "trials.parquet")
    assert trials.height == 3 and Path(out["trials_dir"]).is_relative_to(Path(kw["home"]) / "runs")
    arts = artifacts_of(out["run_id"])
    table = arts[KEYS["tuning"]][0].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == 3 and {"number", "state", "value", "hidden_size", "lookback"} <= set(rows[0])
    history = arts[KEYS["tuning_history"]][0].data
    assert "Optimisation history" in history and "data:image/png;base64," in history


def test_retrain_with_a_budget_trains_what_the_search_chose(flow_kwargs):
    from flowcast.flows import retrain_flow
    from flowcast.registry import ModelRegistry

    kw = {**flow_kwargs, "overrides": {**TINY_OVERRIDES, "tuning": {**SPACE, "enabled": True, "n_trials": 2}}}
    s = retrain_flow(as_of=AS_OF, refit_all=True, **kw)
    arts = artifacts_of(s["run_id"])
    assert KEYS["tuning"] in arts and KEYS["tuning_history"] in arts
    run = next((Path(kw["home"]) / "runs").iterdir())
    best = json.loads((run / "tuning" / "best.json").read_text())["best_params"]
    version = ModelRegistry(Path(kw["home"]) / "models").get(s["registered"]["gru"])
    config = version.config  # the [model] settings the registered network was trained with
    assert (config["hidden_size"], config["lookback"], config["max_steps"]) == (
        best["hidden_size"], best["lookback"], best["max_steps"])


def test_a_tuned_lookback_sets_which_series_the_network_forecasts(tmp_path):
    """With short_series='exclude' (the default for daily data) a network trains on and forecasts
    only the series of at least lookback + horizon + val_size periods. lookback 3 is set, the
    search picks 9: the network's minimum becomes 9 + 3 + 3 = 15 periods, as preprocessing fits it
    for an untuned lookback (main kept 3 + 3 + 3 = 9, so the network forecast a 12-day series from an
    input padded to its lookback, in exclude mode). The 12-day series is published by the fallback."""
    from flowcast.flows import forecast_flow, retrain_flow
    from flowcast.registry import ModelRegistry

    day0 = datetime(2020, 1, 1)
    rows = [{"id": sid, "day": (day0 + timedelta(days=t)).date().isoformat(), "v": 50 + 2.0 * t + 3 * (t % 4) + i}
            for i, (sid, n) in enumerate((("A", 40), ("B", 40), ("C", 12))) for t in range(40 - n, 40)]
    csv = tmp_path / "daily.csv"
    pl.DataFrame(rows).write_csv(csv)
    source = {"name": "daily", "path": str(csv), "id_cols": ["id"], "time_col": "day", "target_col": "v",
              "freq": "1d", "horizon": 3}
    overrides = {"model": {"cells": ["gru"], "lookback": 3, "hidden_size": 4, "num_layers": 1, "max_steps": 5,
                           "launcher": "inline", "accelerator": "cpu", "early_stopping_patience": None},
                 "evaluation": {"n_windows": 1, "statistical": ["damped", "naive"], "combination": [],
                                "ensemble": False, "hybrid": False},
                 "tuning": {**SPACE, "enabled": True, "n_trials": 1, "n_startup_trials": 1, "lookback": [9],
                            "hidden_size": [4], "max_steps": (5, 5), "loss": ["mae"]},
                 "publish": {"plot_series": 1, "skip_unchanged": False}}
    kw = {"source": source, "home": str(tmp_path / "home"), "overrides": overrides}
    as_of = day0 + timedelta(days=39)
    out = retrain_flow(as_of=as_of, refit_all=True, **kw)
    assert (out["spans"]["lookback"], out["spans"]["network_min_length"]) == (9, 15)
    assert "lookback 9" in out["note"] and "1 of 3 series" in out["note"]
    reg = ModelRegistry(Path(kw["home"]) / "models")
    gru = reg.get(out["registered"]["gru"])
    meta = json.loads((gru.path / gru.recipe["components"][0]["path"] / "meta.json").read_text())
    assert (gru.config["lookback"], meta["network_min_length"]) == (9, 15)
    reg.promote(gru.version, reason="the test needs the tuned network in production")
    fc = forecast_flow(as_of=as_of, **kw)
    assert fc["published_rows"] == 3 * 3 and fc["model_version"] == gru.version
    assert [(f["unique_id"], f["reason"]) for f in fc["fallbacks"]] == [
        ("C", "no forecast: 12 observations, too few for gru")]


def test_a_failed_tune_run_is_reported_as_the_other_flows_failures_are(flow_kwargs, tmp_path):
    """Regression: the tune flow had no failure hook (retrain, forecast and backfill have `on_run_failure`), and
    the 'run failed' automation matched only those three flows: a `flowcast tune` that failed (here its source
    is gone) or crashed sent no `flowcast.run.failed` and notified nobody."""
    import time

    from flow_helpers import events_named

    from flowcast import events
    from flowcast.flows.tune import tune_flow
    from flowcast.ops import automations as auto

    kw = {**flow_kwargs, "source": {**flow_kwargs["source"], "path": str(tmp_path / "gone.csv")}}
    state = tune_flow(as_of=AS_OF, n_trials=1, return_state=True, **kw)
    assert state.is_failed(), state
    run_id = str(state.state_details.flow_run_id)
    for _ in range(15):  # stored in batches
        sent = [e for e in events_named(events.RUN_FAILED, timeout=2) if e["payload"].get("flow_run_id") == run_id]
        if sent:
            break
        time.sleep(1)
    assert len(sent) == 1, sent
    assert sent[0]["payload"]["flow"] == "tune" and sent[0]["resource"]["flowcast.dataset"] == "tiny", sent[0]
    assert "tune" in auto.FLOW_NAMES  # its failure (and Prefect's Crashed event of it) notifies 'run failed'
