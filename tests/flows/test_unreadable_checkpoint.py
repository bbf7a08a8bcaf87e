"""`tasks.train_task` next to a killed run's training of the same key whose `last.ckpt` is cut short (cache32): the
training restarts from scratch, as before, and now says so in the run's log, naming the checkpoint and why it did not
load (it was passed over without a word). Said once (ckpt33): the checkpoint is set aside, renamed
`last.ckpt.unreadable` and kept, so that a later rerun of the same training neither loads it again nor warns again."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from flow_helpers import AS_OF, TINY_OVERRIDES, source_dict

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_cut_checkpoint_of_a_killed_run_is_said_when_training_restarts(tiny_csv, tmp_path):
    from prefect import flow

    from flowcast.config import load_settings
    from flowcast.data.datasets import resolve_source
    from flowcast.data.preprocess import preprocess
    from flowcast.data.sources import ingest
    from flowcast.data.validate import validate
    from flowcast.flows import tasks
    from flowcast.models.train import KEY_FILE, train_model, training_key

    settings = load_settings(source=source_dict(tiny_csv), home=str(tmp_path / "home"), **TINY_OVERRIDES)
    source = resolve_source(settings)
    valid = validate(ingest(source, AS_OF), source, settings.validation).valid
    td, _ = preprocess(valid, source, settings, AS_OF, "fp")
    runs = Path(settings.home) / "runs"
    killed = runs / "run-a" / "gru-backtest"  # a killed run's training of the same key: no model.ckpt
    killed.mkdir(parents=True)
    (killed / KEY_FILE).write_text(json.dumps({"key": training_key(td, settings.model, "gru"), "cell": "gru"}))
    train_model(td, settings.model, killed, cell="gru")
    (killed / "model.ckpt").unlink()
    last = killed / "checkpoints" / "last.ckpt"
    with last.open("r+b") as fh:
        fh.truncate(last.stat().st_size // 3)
    with pytest.raises(Exception) as loader:  # whatever the loader raises on it is named
        torch.load(last, map_location="cpu", weights_only=False)

    cut = last.read_bytes()

    @flow
    def retrain(run: str) -> object:
        return tasks.train_task(td, settings, runs / run / "gru-backtest", "gru", label="gru backtest")

    records: list[logging.LogRecord] = []
    catch = logging.Handler(logging.INFO)
    catch.emit = records.append  # type: ignore[method-assign]
    # on the task runs' logger itself: Prefect's first logging set-up in a process replaces the root's handlers
    # (caplog's among them), and its console handler keeps the stderr it found first
    logging.getLogger("prefect.task_runs").addHandler(catch)
    try:
        artifact = retrain("run-b")
        again = retrain("run-c")  # a rerun of the same training: the cut checkpoint is not said again
    finally:
        logging.getLogger("prefect.task_runs").removeHandler(catch)
    log = "\n".join(f"{r.levelname} {r.getMessage()}" for r in records)
    said = [line for line in log.splitlines() if "restarted from scratch" in line]
    assert len(said) == 1 and said[0].startswith("WARNING "), log[-3000:]  # one in both runs
    assert f"gru backtest: restarted from scratch: checkpoint {last} unreadable" in said[0], said
    assert f"({type(loader.value).__name__}: {str(loader.value).split('. ')[0]})" in said[0], said
    kept = last.with_name("last.ckpt.unreadable")
    assert said[0].endswith(f"; kept as {kept}, which no later run reads"), said
    assert not last.exists() and kept.read_bytes() == cut  # the damaged file, kept for inspection
    assert "Resuming" not in log and "unreadable" not in log.split(said[0])[1]
    assert artifact.metrics["steps"] == again.metrics["steps"] == settings.model.max_steps  # from the start, in full
    # for the run's notes (its summary), the first run's alone (ckpt33)
    assert artifact.start_note == f"gru backtest restarted from scratch: a killed run's checkpoint {last} was " \
        f"unreadable ({type(loader.value).__name__}: {str(loader.value).split('. ')[0]}).", artifact.start_note
    assert again.start_note == ""
