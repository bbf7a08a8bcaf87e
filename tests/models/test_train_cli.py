"""`flowcast train` on the bundled us_employment sample: JSON output, run directory, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcast.cli import app

runner = CliRunner()


def test_train_command_writes_an_artifact_and_resumes(_isolated_home, monkeypatch):
    monkeypatch.setenv("FLOWCAST_MODEL__NUM_THREADS", "1")
    args = ["train", "--dataset", "us_employment", "--model", "gru", "--max-steps", "4", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    run = Path(out["path"])
    assert run == _isolated_home / "models" / "runs" / "us_employment_gru_all"
    assert out["metrics"]["steps"] == 4 and out["model"] == "gru" and out["n_series"] > 100
    assert (run / "model.ckpt").exists() and json.loads((run / "meta.json").read_text())["cell"] == "gru"
    # a finished run resumes to the same step count without training again
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["metrics"]["steps"] == 4


def test_resume_without_a_checkpoint_says_it_starts_over(_isolated_home, monkeypatch):
    """A run killed before its first checkpoint (checkpoint_every=50 > --max-steps 30) cannot
    resume: --resume says so instead of silently training from step 0."""
    monkeypatch.setenv("FLOWCAST_MODEL__NUM_THREADS", "1")
    res = runner.invoke(app, ["train", "--dataset", "us_employment", "--model", "rnn", "--max-steps", "2", "--resume"])
    assert res.exit_code == 0, res.output
    assert "no checkpoint" in res.output and "training from the start" in res.output


def test_resume_from_a_damaged_checkpoint_says_it_starts_over(_isolated_home, monkeypatch):
    """Regression: a last checkpoint cut short (a disk error, a truncated copy: 5,000 of its 24,089 bytes) made
    every `flowcast train --resume` fail, 'training gru failed (exit code 1 ...)' and Lightning's traceback
    ('OSError: [Errno 22] Invalid argument'): the run could not be finished without deleting the file by hand.
    --resume names the file, says it does not load and trains from the start."""
    monkeypatch.setenv("FLOWCAST_MODEL__NUM_THREADS", "1")
    args = ["train", "--dataset", "us_employment", "--model", "gru", "--max-steps", "3", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    last = Path(json.loads(res.stdout.strip().splitlines()[-1])["path"]) / "checkpoints" / "last.ckpt"
    with last.open("r+b") as fh:
        fh.truncate(last.stat().st_size // 5)
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "does not load (damaged or cut short: OSError: [Errno 22] Invalid argument)" in said  # the loader's error
    assert "): training from the start" in said and "last.ckpt" in said
    assert json.loads(res.stdout.strip().splitlines()[-1])["metrics"]["steps"] == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "transformer"], "--model must be rnn, lstm, gru or mlp"),
        (["--devices", "zero"], "--devices must be a positive integer"),
        (["--accelerator", "tpu"], "--accelerator must be cpu, gpu or auto"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
    ],
)
def test_train_command_rejects_bad_options(extra, message):
    res = runner.invoke(app, ["train", "--max-steps", "1", *extra])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
