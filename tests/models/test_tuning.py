"""The hyperparameter search (flowcast.models.tuning): real Optuna, real torch training on tiny
data. It sees only the data before the leaderboard's windows, scores trials on the window just
before them, stores its trials, and keeps to its budget."""

from __future__ import annotations

import optuna
import polars as pl
import pytest
from model_factories import make_td

from flowcast.config import load_settings
from flowcast.errors import StorageError, TrainingError
from flowcast.models.tuning import tune, tuning_data


def _settings(tmp_path, **tuning):
    space = {"hidden_size": [8], "num_layers": [1], "max_steps": (10, 20), "steps_step": 10, "lookback": [6, 12],
             "cells": ["rnn", "gru"], "n_startup_trials": 2, **tuning}
    return load_settings(home=tmp_path, evaluation={"n_windows": 2}, tuning=space,
                         model={"batch_size": 32, "num_threads": 1, "accelerator": "cpu"})


def test_tuning_data_ends_before_the_leaderboard_windows(tmp_path):
    td = make_td(n_series=3, length=[60, 48, 17], horizon=6)
    data = tuning_data(td, _settings(tmp_path), 6)
    # the leaderboard holds out 2 windows of 6: the search keeps what is before them; the 17-point
    # series is too short for a validation window on top and takes no part
    assert data.lengths().sort("unique_id")["length"].to_list() == [48, 36]
    last = td.frame.group_by("unique_id").agg(pl.col("ds").sort().get(pl.len() - 13).alias("edge"))
    seen = data.frame.group_by("unique_id").agg(pl.col("ds").max()).join(last, on="unique_id")
    assert (seen["ds"] <= seen["edge"]).all()
    assert data.meta.val_size == 6  # each trial's validation window: the last horizon of that data


def test_tune_runs_trials_and_stores_them(tmp_path):
    td = make_td(n_series=4, length=60, horizon=6)
    seen = []
    res = tune(td, _settings(tmp_path), tmp_path / "tuning", n_trials=4, on_trial=seen.append)
    assert res.trials.height == 4 and len(seen) == 4
    assert set(res.trials["state"].to_list()) <= {"COMPLETE", "PRUNED"} and res.n_complete >= 1
    done = res.trials.filter(pl.col("state") == "COMPLETE")
    assert res.best_value == pytest.approx(done["value"].min())
    assert set(res.best_params) == {"cell", "lookback", "hidden_size", "num_layers", "dropout", "lr", "max_steps",
                                    "mode", "loss"}
    assert res.best_params["cell"] in ("rnn", "gru") and res.best_params["lookback"] in (6, 12)
    assert "cell" not in res.model_overrides() and res.model_overrides()["hidden_size"] == 8
    for name in ("trials.parquet", "best.json", "history.png", "study.log"):
        assert (tmp_path / "tuning" / name).exists(), name
    study = optuna.load_study(study_name="flowcast", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "tuning" / "study.log"))))
    assert len(study.trials) == 4 and study.best_value == pytest.approx(res.best_value)


def test_tune_keeps_to_its_budget(tmp_path):
    td = make_td(n_series=4, length=60, horizon=6)
    settings = _settings(tmp_path, max_steps=(100_000, 100_000), steps_step=1, pruner="none")
    res = tune(td, settings, tmp_path / "tuning", budget_minutes=0.05)
    # 3 s of budget: the one trial is stopped by it (a run to 100,000 steps would not end in this test's time)
    assert res.trials["state"].to_list() == ["PRUNED"] and res.trials["stopped"].to_list() == ["budget"]
    assert res.trials["value"].to_list() == [None]  # not the scaled validation loss it was stopped at
    assert res.best_params == {} and "no trial completed within 0.05 minutes" in res.notes[0]


def test_a_budget_of_one_minute_is_said_in_the_singular():
    """newuser52: `flowcast tune --budget 1` whose trial did not finish said 'no trial completed within 1 minutes'."""
    from flowcast.models.tuning import minutes_text

    assert [minutes_text(m) for m in (1, 1.0, 0.05, 2, 90)] == ["1 minute", "1 minute", "0.05 minutes", "2 minutes",
                                                                 "90 minutes"]


def test_tune_says_when_there_is_too_little_history(tmp_path):
    td = make_td(n_series=2, length=18, horizon=6)
    with pytest.raises(TrainingError, match="too little history to tune"):
        tune(td, _settings(tmp_path), tmp_path / "tuning", n_trials=1)


def test_when_every_trial_fails_the_note_says_why_not_the_budget(tmp_path):
    """Regression: `flowcast tune` on 60 days a series (horizon 7) ran 2 trials in 5 s, each failing with 'no
    series is long enough for a network ...', then said 'no trial completed within 2 minutes', as if the
    budget had been too short. The note now says every trial failed, and why."""
    from dataclasses import replace

    td = make_td(n_series=4, length=60, horizon=6)
    td = replace(td, meta=replace(td.meta, min_length=500))  # no series is long enough for a network
    res = tune(td, _settings(tmp_path), tmp_path / "tuning", n_trials=2, budget_minutes=5)
    assert res.best_params == {} and res.trials["state"].to_list() == ["PRUNED", "PRUNED"]
    assert res.notes[0].startswith("no trial completed: all 2 failed (e.g. ") and "within" not in res.notes[0]
    assert "no series is long enough for a network" in res.notes[0]


def test_a_failure_while_writing_the_trials_leaves_the_earlier_file_whole(tmp_path, monkeypatch):
    """A full disk (or a kill) while `flowcast tune` writes trials.parquet left a torn file in place of the
    earlier search's trials; the file is written beside and renamed, so the earlier one stays readable."""
    td = make_td(n_series=4, length=60, horizon=6)
    out = tmp_path / "tuning"
    first = tune(td, _settings(tmp_path), out, n_trials=1)
    real = pl.DataFrame.write_parquet

    def torn(self, file, *args, **kwargs):  # writes half a file, then the disk is full
        if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__"):
            with open(file, "wb") as fh:
                fh.write(b"PAR1 torn")
        else:
            file.write(b"PAR1 torn")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", torn)
    with pytest.raises(StorageError, match="disk is full.*previous file, if any, is intact"):
        tune(td, _settings(tmp_path), out, n_trials=1)
    monkeypatch.setattr(pl.DataFrame, "write_parquet", real)
    assert pl.read_parquet(out / "trials.parquet").height == first.trials.height
