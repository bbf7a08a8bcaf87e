"""A retrain re-run over a killed run's trainings (the same as_of, the same data and settings): each training it
resumes is said once in its log (the train task's line: not again as a note) and is in the run's notes, the
backtest's and the final training's on all data (`ModelArtifact.start_note`; ckpt40). In-process, under the
session's Prefect API."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flow_helpers import AS_OF

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_rerun_over_killed_trainings_says_each_resume_once_and_notes_the_final_training(flow_kwargs, tmp_path):
    import shutil

    from flow_helpers import TINY_OVERRIDES

    from flowcast.flows import retrain_flow

    # the network alone: it wins, and its final training on all data runs (ModelArtifact.start_note of _Builder's)
    overrides = {**TINY_OVERRIDES, "evaluation": {**TINY_OVERRIDES["evaluation"], "statistical": [],
                                                  "combination": []}}
    retrain_flow(as_of=AS_OF, **{**flow_kwargs, "overrides": overrides})
    home = tmp_path / "again"  # no production, nothing published: the re-run trains and publishes as the first did
    shutil.copytree(Path(flow_kwargs["home"]) / "runs", home / "runs")
    [backtest] = (home / "runs").glob("*/gru-s*-backtest")
    [final] = [d for d in (home / "runs").glob("*/gru-s*") if not d.name.endswith("-backtest")]  # on all data
    for killed in (backtest, final):  # killed while it trained: no model.ckpt, its last checkpoint whole
        (killed / "model.ckpt").unlink()
        assert (killed / "checkpoints" / "last.ckpt").exists()

    records: list[logging.LogRecord] = []
    catch = logging.Handler(logging.INFO)
    catch.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    for lg in loggers:  # (Prefect's logging set-up replaces the root's handlers: caplog's among them)
        lg.addHandler(catch)
    try:
        again = retrain_flow(as_of=AS_OF, **{**flow_kwargs, "overrides": overrides, "home": str(home)})
    finally:
        for lg in loggers:
            lg.removeHandler(catch)
    # the log's lines, but the flow run's final state (its message is the run's notes)
    log = [r.getMessage() for r in records if not r.getMessage().startswith("Finished in state")]
    for label, folder in (("gru backtest", backtest), ("gru all data", final)):
        said = [line for line in log if f"({folder})" in line]
        assert len(said) == 1 and said[0].startswith(f"Resuming {label} from step 5 of 5"), said  # said once
        note = f"{label} resumed from step 5 of 5 of a killed run's training ({folder})."
        assert note in again["note"], again["note"]  # and in the run's notes
