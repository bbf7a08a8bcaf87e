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


def test_as_ofs_forecast_by_a_model_that_saw_their_actuals_or_may_have_are_marked(_isolated_home):
    """Regression: the table of `flowcast accuracy` showed every as_of alike, one forecast by a model trained on
    data after it (lookahead: it saw the actuals it is scored on, the verdict leaves it out) and one of which no
    record says (judged as honest) beside the honest ones; they are marked '*' and '?', with a line saying what
    each mark means, in 80 columns."""
    from datetime import datetime

    import polars as pl

    from flowcast.store import EmbeddedStore

    months = [datetime(2024, m, 1) for m in (1, 2, 3)]
    rows = pl.DataFrame({"dataset": "sales", "as_of": months, "model": "theta", "model_version": "theta-v9",
                         "step": 1, "n": 4, "mae": 1.0, "mase": 0.5, "n_mase": 4, "smape": 3.0, "coverage80": 0.75,
                         "coverage95": 1.0, "mae_snaive": 2.0, "mase_snaive": 1.0,
                         "lookahead": pl.Series([False, True, None], dtype=pl.Boolean),
                         "scored_at": datetime(2024, 6, 1)}, schema_overrides={"step": pl.Int32})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("sales", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "sales"], terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    row = {d: next(line for line in lines if line.lstrip().startswith(d)) for d in ("2024-01-01", "2024-02-01",
                                                                                     "2024-03-01")}
    assert "2024-01-01 " in row["2024-01-01"] and "*" not in row["2024-01-01"] and "?" not in row["2024-01-01"]
    assert "2024-02-01 *" in row["2024-02-01"] and "2024-03-01 ?" in row["2024-03-01"]
    said = " ".join(res.output.split())  # the notes wrap at 80 columns
    assert "* forecast by a model trained on data after the as_of" in said
    assert "? no record of whether its model was trained on data after the as_of: judged as honest" in said
    assert "…" not in res.output
    # regression: the column was headed 'naive MASE', and nothing said it was seasonal naive's, on which points
    assert "snaive" in lines[next(i for i, x in enumerate(lines) if "promised" in x)]
    assert "snaive MASE: seasonal naive's forecasts from the same as_of, on the same points" in said
