"""What a person sees in the Prefect UI after real runs (the session's Prefect API): run and task
names, tags, log lines, artifact keys and descriptions of production and backfill runs, the
progress artifact moving during training, a backfill that has no model to forecast with."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import TINY_OVERRIDES, artifacts_of, source_dict, write_series

from flowcast.errors import RegistryError
from flowcast.reporting import artifact_key, progress_key

pytestmark = pytest.mark.usefixtures("prefect_api")


def _api(method: str, path: str, body: dict | None = None) -> Any:
    from prefect.client.orchestration import get_client

    async def call() -> Any:
        async with get_client() as client:
            r = await client.request(method, path, json=body) if body is not None else await client.request(method, path)
            return r.json()

    return asyncio.run(call())


def _flow_run(run_id: str) -> dict:
    return _api("GET", f"/flow_runs/{run_id}")


def _task_names(run_id: str) -> list[str]:
    body = {"flow_runs": {"id": {"any_": [run_id]}}, "limit": 200, "offset": 0}
    return [t["name"] for t in _api("POST", "/task_runs/filter", body)]


def _logs(run_id: str) -> list[dict]:
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200, "offset": 0, "sort": "TIMESTAMP_ASC"}
    return _api("POST", "/logs/filter", body)


def _runs_named(prefix: str) -> list[dict]:
    # newest first: the session's one test API holds more runs of a prefix than a page as the suite grows (the
    # API's default order put a test's own run past the first 50 'retrain ' runs: the fresh-clone CI failed so)
    body = {"flow_runs": {"name": {"like_": prefix}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 200, "offset": 0}
    return [r for r in _api("POST", "/flow_runs/filter", body) if r["name"].startswith(prefix)]


def test_a_retrain_run_is_named_for_its_dataset_and_as_of_and_its_tasks_for_their_models(trained):
    _, s = trained
    assert _flow_run(s["run_id"])["name"] == "retrain tiny 2019-06-01"
    names = _task_names(s["run_id"])
    assert {"train gru backtest", "backtest gru", "backtest theta", "forecast gru", "ingest tiny", "validate tiny",
            "publish tiny 2019-06-01", "realized accuracy tiny"} <= set(names), sorted(names)
    assert "train gru all data" in names  # refit_all: the network trained on all data up to as_of
    logs = [entry["message"] for entry in _logs(s["run_id"])]
    assert not [m for m in logs if m.startswith("Finished in state Completed()") and "task" in m.lower()]
    task_lines = [e for e in _logs(s["run_id"]) if e["task_run_id"] and e["message"].startswith("Finished in state")]
    assert task_lines == []  # flowcast's own tasks: no state noise
    assert any(m.startswith("Trained gru backtest: 5 steps in ") and "training loss" in m for m in logs), logs
    # ui25: the network trained for production is named as its task names it (it said 'Training gru-s0 ...'), and
    # a model is registered with its kind
    assert any(m.startswith("Training gru on all data up to 2019-06-01 for production") for m in logs), logs
    backtesting = [m for m in logs if m.startswith("Backtesting ")]
    assert backtesting and all(re.fullmatch(r"Backtesting \d+ candidates on \d+ windows? of \d+ periods per series", m)
                               for m in backtesting), backtesting  # it said '2 window(s)' of a count it knew
    registered = [m for m in logs if m.startswith("Registered ")]
    assert any(re.fullmatch(r"Registered gru \(network\) as gru-v\d+", m) for m in registered), registered
    # tgt43: the rows without a target value said where there are some (it said '(0 without a target value)')
    validation = [m for m in logs if m.startswith("Validation:")]
    assert validation and all(("without a target value" in m) == bool(s["rows_null_y"]) for m in validation), (
        validation, s["rows_null_y"])


def test_the_cli_runs_carry_the_deployments_tags_and_a_failure_is_said_once_without_a_traceback(tmp_path):
    """`flowcast run` on data that fails validation (half the targets are not numbers): the run is
    tagged like a deployment run, and its log holds flowcast's sentence once (the run's final
    state), no Prefect traceback, no repeated task line."""
    import polars as pl
    from typer.testing import CliRunner

    from flowcast.cli import app

    csv = write_series(tmp_path / "raw" / "broken.csv")
    raw = pl.read_csv(csv, infer_schema=False)
    raw.with_columns(pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("n/a")).otherwise(pl.col("sales"))
                     .alias("sales")).write_csv(csv)
    home = tmp_path / "home"
    args = ["run", "--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales",
            "--freq", "1mo", "--horizon", "6", "--as-of", "2019-06-01", "--home", str(home), "--max-steps", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    runs = [r for r in _runs_named("retrain ") if r["parameters"].get("home") == str(home.resolve())]
    assert len(runs) == 1, [r["name"] for r in runs]
    run = runs[0]
    assert sorted(run["tags"]) == ["flowcast", "retrain"] and run["name"].endswith(" 2019-06-01"), run["name"]
    entries = _logs(run["id"])
    messages = [e["message"] for e in entries]
    said = [m for m in messages if "rows quarantined" in m and "threshold" in m]
    assert len(said) == 1 and said[0].startswith("Finished in state Failed("), messages
    assert [e["message"] for e in entries if e["level"] >= 40] == said  # the one ERROR line of the run
    assert not [m for m in messages if "Traceback" in m]


def test_backfill_runs_write_under_their_own_keys_and_say_their_as_of(production_home):
    """A backfill's children are named `forecast tiny <as_of> (backfill)`, tagged `backfill`, and
    write `backfill-` keys whose descriptions carry the as_of; the production key's latest version
    stays the production run's, whatever ran after it."""
    from flowcast.flows import backfill_flow, forecast_flow

    prod = forecast_flow(as_of=datetime(2019, 9, 1), **production_home)
    summary = backfill_flow(start=datetime(2019, 7, 1), end=datetime(2019, 8, 1), **production_home)
    assert summary["published"] == 2
    for o in summary["outcomes"]:
        assert o["rows"] == 24 and o["model"] and o["flow_run"] == f"forecast tiny {o['as_of'][:10]} (backfill)"
        run = _flow_run(o["run_id"])
        assert run["name"] == o["flow_run"] and sorted(run["tags"]) == ["backfill", "flowcast", "forecast"]
        arts = artifacts_of(o["run_id"])
        assert artifact_key("plot", "tiny") not in arts and artifact_key("receipt", "tiny") not in arts
        plot = arts[artifact_key("plot", "tiny", backfill=True)][0]
        assert plot.description.startswith(f"Backfill as of {o['as_of'][:10]}: ")
    body = {"artifacts": {"key": {"any_": [artifact_key("plot", "tiny")]}}, "sort": "CREATED_DESC", "limit": 1}
    latest = _api("POST", "/artifacts/filter", body)[0]
    assert latest["flow_run_id"] == prod["run_id"] and latest["description"].startswith("As of 2019-09-01: ")
    assert "data:image/png;base64," in latest["data"]


def test_a_backfill_s_realized_accuracy_shows_what_was_known_at_its_date(production_home):
    """Regression: under "Backfill as of 2019-08-01" the realized artifact listed and judged 2019-09-01, which a later
    run scored. It shows the as_ofs before its date, names the later one left out and the earlier one a later run
    scored; the production run's artifact shows every as_of."""
    from flowcast.flows import backfill_flow, forecast_flow

    forecast_flow(as_of=datetime(2019, 9, 1), **production_home)
    prod = forecast_flow(as_of=datetime(2019, 10, 1), **production_home)  # scores 2019-09-01
    summary = backfill_flow(start=datetime(2019, 8, 1), end=datetime(2019, 8, 1), **production_home)
    realized = artifacts_of(summary["outcomes"][0]["run_id"])["backfill-realized-accuracy-tiny"][0]
    assert realized.description.startswith("Backfill as of 2019-08-01: ")
    table = realized.data.split("| --- ", 1)[1].split("\n\n", 1)[0]
    assert "| 2019-06-01 |" in table and "2019-09-01" not in table
    assert "1 as_of from 2019-08-01 on, scored by later runs, is left out (2019-09-01)" in realized.data
    assert "2019-06-01: scored by a later run (on actuals up to 2019-10-01), after 2019-08-01" in realized.data
    production = artifacts_of(prod["run_id"])["realized-accuracy-tiny"][0]
    assert "| 2019-09-01 |" in production.data and "left out" not in production.data


def test_a_forecast_backfill_without_any_model_says_so_once_and_starts_no_date(tmp_path):
    from flowcast.flows import backfill_flow

    csv = write_series(tmp_path / "raw" / "sales.csv")
    src = dict(source_dict(csv), name="unmodelled")
    with pytest.raises(RegistryError, match="a forecast backfill of unmodelled needs a model"):
        backfill_flow(start=datetime(2019, 7, 1), end=datetime(2019, 9, 1), source=src, home=str(tmp_path / "h"),
                      overrides=TINY_OVERRIDES)
    assert _runs_named("forecast unmodelled") == []
    assert [r["name"] for r in _runs_named("backfill unmodelled")] == ["backfill unmodelled 2019-07-01..2019-09-01"]


def test_the_progress_artifact_moves_during_training_and_ends_with_the_final_figures(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from model_factories import make_td, tiny_cfg
    from prefect import flow

    from flowcast import reporting
    from flowcast.models.train import train_model

    td = make_td()
    seen: list[dict] = []

    @flow(name="progress-check")
    def train_with_progress() -> tuple[Any, Any]:
        scope = reporting.Scope("tiny", datetime(2019, 6, 1))
        progress = reporting.TrainingProgress("gru backtest", label="gru backtest", scope=scope)

        def on_progress(event: dict) -> None:
            seen.append(event)
            progress(event)

        art = train_model(td, tiny_cfg(max_steps=40), tmp_path / "run", cell="gru", on_progress=on_progress)
        progress.done(art.metrics)
        return progress, art

    progress, art = train_with_progress()
    steps = [e["step"] for e in seen]
    assert steps == sorted(set(steps)) and len([s for s in steps if s < 40]) >= 5, steps  # moves every few steps
    assert all(e["elapsed"] is not None and e["max_steps"] == 40 for e in seen)
    assert any(e["train_loss"] is not None for e in seen) and seen[-1]["step"] == 40
    assert progress.updates == len(seen) + 1  # every event, and the end
    assert progress.key == progress_key("gru backtest", "tiny") == "training-progress-tiny-gru-backtest"
    stored = _api("GET", f"/artifacts/{progress._id}")
    assert stored["data"] == 100.0
    assert stored["description"].startswith("As of 2019-06-01: gru backtest finished: 40 steps, ")
    assert f"training loss {art.metrics['train_loss']:.4g}" in stored["description"]  # the log's words


def test_a_scoring_note_is_logged_once(tmp_path):
    """Regression: the backtest's notes (MASE undefined for some series, no series long enough for a network,
    a member that could not be trained) were logged as a WARNING when they arose and again with the run's
    other notes: every such line twice in the run's log."""
    import polars as pl

    from flowcast.flows import retrain_flow

    rows = [{"store": s, "day": f"2024-01-{d:02d}", "units": v(d)} for s, v in
            (("flat", lambda d: 5.0), ("up", lambda d: float(d)), ("wave", lambda d: float((d * d) % 11)))
            for d in range(1, 29)]
    pl.DataFrame(rows).write_csv(tmp_path / "s.csv")
    source = {"name": "few", "path": str(tmp_path / "s.csv"), "id_cols": ["store"], "time_col": "day",
              "target_col": "units", "freq": "1d", "horizon": 3}
    out = retrain_flow(as_of=datetime(2024, 1, 28), source=source, home=str(tmp_path / "home"),
                       overrides={"model": {"cells": []}, "publish": {"plot_series": 1}})
    assert "MASE is undefined for 1 of 3 series (flat:" in out["note"]
    said = [e["message"] for e in _logs(out["run_id"]) if "MASE is undefined for" in e["message"]]
    assert len(said) == 1, said
