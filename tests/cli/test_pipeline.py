"""`flowcast run` and `flowcast tune`: options that cannot work are refused before anything starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.cli import pipeline as cli_pipeline

runner = CliRunner()


@pytest.mark.parametrize(("args", "said"), [
    (["run", "--budget", "-1"], "tuning.budget_minutes: Input should be greater than 0 (got -1.0)"),
    (["run", "--budget", "0"], "tuning.budget_minutes: Input should be greater than 0 (got 0.0)"),
    (["run", "--max-steps", "-5"], "model.max_steps: Input should be greater than or equal to -1 (got -5)"),
    (["tune", "--budget", "-1"], "tuning.budget_minutes: Input should be greater than 0 (got -1.0)"),
    (["tune", "--trials", "0"], "tuning.n_trials: Input should be greater than or equal to 1 (got 0)"),
])
def test_bad_budget_or_steps_are_refused_before_prefect_starts(tmp_path, monkeypatch, args, said):
    """Regression: `flowcast run --budget -1` started Prefect's temporary server, then failed inside the flow
    with pydantic's multi-line text ('1 validation error for _FromFile ... https://errors.pydantic.dev/...');
    `--budget 0` silently ran without tuning; `flowcast tune --budget -1` read and prepared the data before
    its task failed (ERROR lines), and `--trials 0` ran a search of 0 trials."""
    monkeypatch.chdir(tmp_path)

    def no_prefect():
        raise AssertionError("Prefect was started for options that cannot work")

    monkeypatch.setattr(cli_pipeline, "_prefect_console", no_prefect)
    res = runner.invoke(app, [*args, "--dataset", "m3-yearly"], terminal_width=400)
    assert res.exit_code == 2, res.output
    assert said in res.output and "pydantic.dev" not in res.output
