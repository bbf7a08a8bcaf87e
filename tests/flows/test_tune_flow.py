"""The hyperparameter search as a flow (`flowcast tune`) and as the first step of a retrain
(`flowcast run --budget`): trials stored per run and shown as artifacts, the choice trained."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, artifacts_of

from flowcast.reporting import KEYS

pytestmark = pytest.mark.usefixtures("prefect_api")

SPACE = {"hidden_size": [4, 8], "num_layers": [1], "max_steps": (5, 10), "steps_step": 5, "lookback": [6, 12],
         "mode": ["windowed"], "n_startup_trials": 2, "cells": ["gru"]}


def test_tune_flow_stores_trials_and_shows_them(flow_kwargs):
    from flowcast.flows.tune import tune_flow

    kw = {**flow_kwargs, "overrides": {**TINY_OVERRIDES, "tuning": SPACE}}
    out = tune_flow(as_of=AS_OF, n_trials=3, **kw)
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
