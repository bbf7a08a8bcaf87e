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


def _rerun_over_killed(flow_kwargs: dict, home: Path, cells: list[str], refit_all: bool = False):
    """A retrain of the network `cells` alone (no statistical model: a network wins, its training on all data runs),
    its trainings then made killed ones (no model.ckpt, their last checkpoint whole), and a re-run of the same as_of
    in `home` over a copy of its runs (no production, nothing published). (its log lines, its result, the killed
    trainings' folders by their task labels)"""
    import shutil

    from flow_helpers import TINY_OVERRIDES

    from flowcast.flows import retrain_flow

    overrides = {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": cells},
                 "evaluation": {**TINY_OVERRIDES["evaluation"], "statistical": [], "combination": [],
                                "ensemble": False}}
    retrain_flow(as_of=AS_OF, refit_all=refit_all, **{**flow_kwargs, "overrides": overrides})
    shutil.copytree(Path(flow_kwargs["home"]) / "runs", home / "runs")
    folders = {}
    for cell in cells:
        [folders[f"{cell} backtest"]] = (home / "runs").glob(f"*/{cell}-s*-backtest")
        [folders[f"{cell} all data"]] = [d for d in (home / "runs").glob(f"*/{cell}-s*")
                                         if not d.name.endswith("-backtest")]
    for killed in folders.values():
        (killed / "model.ckpt").unlink()
        assert (killed / "checkpoints" / "last.ckpt").exists()

    records: list[logging.LogRecord] = []
    catch = logging.Handler(logging.INFO)
    catch.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    for lg in loggers:  # (Prefect's logging set-up replaces the root's handlers: caplog's among them)
        lg.addHandler(catch)
    try:
        again = retrain_flow(as_of=AS_OF, refit_all=refit_all,
                             **{**flow_kwargs, "overrides": overrides, "home": str(home)})
    finally:
        for lg in loggers:
            lg.removeHandler(catch)
    # the log's lines, but the flow run's final state (its message is the run's notes)
    return [r.getMessage() for r in records if not r.getMessage().startswith("Finished in state")], again, folders


def test_a_rerun_over_killed_trainings_says_each_resume_once_and_notes_the_final_training(flow_kwargs, tmp_path):
    log, again, folders = _rerun_over_killed(flow_kwargs, tmp_path / "again", ["gru"])
    for label, folder in folders.items():  # gru backtest, gru all data (the final training: _Builder's)
        said = [line for line in log if f"({folder})" in line]
        assert len(said) == 1 and said[0].startswith(f"Resuming {label} from step 5 of 5"), said  # said once
        note = f"{label} resumed from step 5 of 5 of a killed run's training ({folder})."
        assert note in again["note"], again["note"]  # and in the run's notes


def test_the_final_trainings_of_refit_all_are_in_the_notes_of_a_rerun_over_killed_ones(flow_kwargs, tmp_path):
    """Regression (ckpt40): the cells `refit_all` trains on all data besides the winner are trained after the run's
    notes were gathered: their resume (or restart) was in the task's log alone."""
    log, again, folders = _rerun_over_killed(flow_kwargs, tmp_path / "again", ["gru", "rnn"], refit_all=True)
    assert set(folders) == {"gru backtest", "gru all data", "rnn backtest", "rnn all data"}
    for label, folder in folders.items():
        assert [line for line in log if f"({folder})" in line and line.startswith(f"Resuming {label}")], log
        assert f"{label} resumed from step 5 of 5 of a killed run's training ({folder})." in again["note"], \
            (label, again["note"])
