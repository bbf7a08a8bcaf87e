"""`flowcast accuracy`."""

from __future__ import annotations

from typer.testing import CliRunner

from flowcast.cli import app

runner = CliRunner()


def test_a_dataset_without_realized_accuracy_says_so(tmp_path, monkeypatch):
    """Regression: `flowcast accuracy --dataset nope` printed 'nope: unknown' over an empty table (and the
    JSON an entry with no as_of), as if the dataset existed; it says that nothing was scored for it yet."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["accuracy", "--dataset", "nope", "--home", str(tmp_path)], terminal_width=400)
    assert res.exit_code == 0, res.output
    assert "no realized accuracy for dataset nope yet" in res.output and "unknown" not in res.output
    res = runner.invoke(app, ["accuracy", "--dataset", "nope", "--home", str(tmp_path), "--json"])
    assert res.exit_code == 0 and '"datasets": {}' in res.stdout
