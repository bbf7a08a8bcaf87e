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


def test_a_dataset_name_nothing_was_published_for_names_those_that_were(_isolated_home):
    """Regression: `flowcast accuracy --dataset sale` (for 'sales') said 'no realized accuracy for dataset sale
    yet: a retrain or forecast run scores ...', as if waiting would help; it names the published datasets."""
    from datetime import datetime

    import polars as pl

    from flowcast.store import EmbeddedStore

    fc = pl.DataFrame({"unique_id": ["a"], "ds": [datetime(2024, 1, 2)], "step": [1], "y_hat": [1.0]})
    EmbeddedStore(_isolated_home / "warehouse").publish(fc, dataset="sales", as_of=datetime(2024, 1, 1),
                                                        model="naive", model_version="naive-v1", run_id="r",
                                                        created_at=datetime(2024, 1, 1))
    res = runner.invoke(app, ["accuracy", "--dataset", "sale"], terminal_width=400)
    assert res.exit_code == 0, res.output
    assert "nothing of dataset sale is published in" in res.output and "published datasets: sales" in res.output
