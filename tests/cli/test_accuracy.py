"""`flowcast accuracy`."""

from __future__ import annotations

import pytest
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


def _parts_rows(versions: list[str], rmsse: list[float | None], rmsse_snaive: list[float | None]):
    """Three monthly as_ofs of dataset 'parts', one row of 10 points each: MASE 0.9 (seasonal naive 1.1)."""
    from datetime import datetime

    import polars as pl

    months = [datetime(2024, m, 1) for m in (1, 2, 3)]
    return pl.DataFrame({"dataset": "parts", "as_of": months, "model": "croston", "model_version": versions, "step": 1,
                         "n": 10, "mae": 1.5, "mase": 0.9, "n_mase": 10, "rmsse": pl.Series(rmsse, dtype=pl.Float64),
                         "smape": 150.0, "coverage80": 0.8, "coverage95": 0.9, "mae_snaive": 2.0, "mase_snaive": 1.1,
                         "rmsse_snaive": pl.Series(rmsse_snaive, dtype=pl.Float64),
                         "lookahead": False, "scored_at": datetime(2024, 6, 1)}, schema_overrides={"step": pl.Int32})


@pytest.mark.parametrize(("versions", "promised_rmsse", "verdict", "heads", "note"), [
    # ranked on RMSSE: seasonal naive's RMSSE where its MASE was, beside the promised RMSSE
    (["croston-v1"] * 3, {"croston-v1": 0.5}, "parts: healthy on RMSSE - realized RMSSE 0.55",
     (["snaive", "promised"], ["MASE", "RMSSE", "cov80", "cov95", "RMSSE", "RMSSE"]), "snaive RMSSE: seasonal naive's forecasts from the same as_of"),
    # ranked on MASE: as before, and the verdict says it
    (["theta-v0"] * 3, {"theta-v0": None}, "parts: healthy on MASE - realized MASE 0.9",
     (["snaive", "promised"], ["MASE", "sMAPE", "cov80", "cov95", "MASE", "MASE"]), "snaive MASE: seasonal naive's forecasts from the same as_of"),
    # one as_of of a MASE-ranked version: each version on its own metric, both promises shown
    (["theta-v0", "croston-v1", "croston-v1"], {"theta-v0": None, "croston-v1": 0.5},
     "parts: healthy on MASE and RMSSE - the window mixes versions ranked on MASE (theta-v0) and on RMSSE (croston-v1)",
     (["promised", "promised"], ["MASE", "RMSSE", "cov80", "cov95", "MASE", "RMSSE"]), "judged on MASE for the versions ranked on MASE and on RMSSE for those"),
])
def test_the_table_and_the_per_step_table_say_the_metric_the_verdict_was_judged_on(_isolated_home, monkeypatch,
                                                                                   versions, promised_rmsse, verdict,
                                                                                   heads, note):
    """`flowcast accuracy` named the metric only of a verdict on RMSSE, its per-step table (`--as-of`) showed MASE
    alone, and a window of MASE- and RMSSE-ranked versions was all MASE: the verdict names its metric, the per-step
    table shows MASE and RMSSE and says which the verdict is on, in 80 columns."""
    from datetime import datetime

    from flowcast.evaluation.realized import assess_decay
    from flowcast.ops.accuracy import write_status
    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(_isolated_home.parent)
    rows = _parts_rows(versions, [0.5, 0.55, 0.6], [1.2, 1.2, 1.2])
    EmbeddedStore(_isolated_home / "warehouse").write_realized("parts", rows)
    decay = assess_decay(rows, {"croston-v1": 1.0, "theta-v0": 1.0}, dataset="parts", window=3, tolerance=0.25,
                         min_points=10, promised_rmsse=promised_rmsse)
    write_status(_isolated_home, "parts", decay, as_of=datetime(2024, 6, 1), run_id="r")
    res = runner.invoke(app, ["accuracy", "--dataset", "parts"], terminal_width=80)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert verdict in said, said
    lines = res.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("as_of (UTC)"))
    assert (lines[head - 1].split(), lines[head].split()[2:]) == (heads[0], ["points", "MAE", *heads[1]])
    assert note in said and "…" not in res.output
    res = runner.invoke(app, ["accuracy", "--dataset", "parts", "--as-of", "2024-02-01"], terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    judged_on = verdict.split(" - ")[0].split(" on ", 1)[1]
    assert f"per model and step (the verdict is on {judged_on})" in " ".join(res.output.split())
    own = versions[1] == "croston-v1"  # the as_of's rows croston's own: the version names the model
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("version" if own else "model"))
    assert lines[head].split() == [*([] if own else ["model"]), "version", "step", "points", "MAE", "MASE", "RMSSE*",
                                   "sMAPE", "cov80", "cov95"]
    assert lines[head + 2].split()[1 if own else 2:] == ["1", "10", "1.5", "0.9", "0.55", "150", "0.8", "0.9"]
    assert "…" not in res.output


def test_the_per_step_table_says_its_rmsse_is_over_all_the_steps(_isolated_home, monkeypatch):
    """polish27: `flowcast accuracy --as-of`'s per-step table showed one RMSSE on every step under a plain 'RMSSE'
    head: it is each series' over all the steps of the as_of (as the backtest's), not the step's own. The column is
    starred and a line under the table says so."""
    import polars as pl

    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(_isolated_home.parent)
    one = _parts_rows(["croston-v1"] * 3, [0.5, 0.55, 0.6], [1.2, 1.2, 1.2])
    rows = pl.concat([one.with_columns(pl.lit(step, dtype=pl.Int32).alias("step"), pl.lit(0.5 * step).alias("mase"))
                      for step in (1, 2, 3)]).sort("as_of", "step")
    EmbeddedStore(_isolated_home / "warehouse").write_realized("parts", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "parts", "--as-of", "2024-02-01"], terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("version"))
    assert lines[head].split() == ["version", "step", "points", "MAE", "MASE", "RMSSE*", "sMAPE", "cov80", "cov95"]
    body = [line.split() for line in lines[head + 2:head + 5]]
    assert [(r[1], r[4], r[5]) for r in body] == [("1", "0.5", "0.55"), ("2", "1", "0.55"), ("3", "1.5", "0.55")]
    said = " ".join(res.output.split())
    assert ("* RMSSE over all the steps of the as_of, not of the step alone: each series' over the steps scored (as "
            "the backtest's), averaged over the series scored at the step") in said, said
    assert "…" not in res.output


def test_the_per_step_json_says_its_rmsse_is_over_all_the_steps(_isolated_home, monkeypatch):
    """removal28: `flowcast accuracy --as-of ... --json` gave each step's row an `rmsse` with no word that it is each
    series' over all the steps of the as_of (the table stars it, `RMSSE*`): the same figure on every step read as the
    step's own. Each row has it under `rmsse_all_steps` too (`rmsse` kept), and `rows_note` says so."""
    import json

    import polars as pl

    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(_isolated_home.parent)
    one = _parts_rows(["croston-v1"] * 3, [0.5, 0.55, 0.6], [1.2, 1.2, 1.2])
    rows = pl.concat([one.with_columns(pl.lit(step, dtype=pl.Int32).alias("step"), pl.lit(0.5 * step).alias("mase"))
                      for step in (1, 2, 3)]).sort("as_of", "step")
    EmbeddedStore(_isolated_home / "warehouse").write_realized("parts", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "parts", "--as-of", "2024-02-01", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["datasets"]["parts"]
    assert [(r["step"], r["rmsse"], r["rmsse_all_steps"]) for r in rep["rows"]] == [(1, 0.55, 0.55), (2, 0.55, 0.55),
                                                                                     (3, 0.55, 0.55)]
    assert rep["rows_note"]["rmsse"].startswith("RMSSE over all the steps of the as_of, not of the step alone"), rep
    assert "over all the steps of the as_of" in rep["rows_note"]["rmsse_snaive"], rep
    whole = json.loads(runner.invoke(app, ["accuracy", "--dataset", "parts", "--json"]).stdout)["datasets"]["parts"]
    assert "rows" not in whole and "rows_note" not in whole, whole  # no rows without --as-of: nothing to note


def test_realized_rows_of_an_older_flowcast_without_rmsse_are_judged_on_mase_and_shown(_isolated_home, monkeypatch):
    """A store written before realized RMSSE and seasonal naive's RMSSE were recorded (partitions without the
    columns) and a verdict stored before its metric was: read back with them null, judged on MASE even for a version
    ranked on RMSSE (its rows have no realized RMSSE), and `flowcast accuracy` (table, per-step table, JSON) shows
    them, the verdict 'on MASE'."""
    import json
    from datetime import datetime

    import polars as pl

    from flowcast.evaluation.realized import assess_decay
    from flowcast.ops.accuracy import status_path, write_status
    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(_isolated_home.parent)
    store = EmbeddedStore(_isolated_home / "warehouse")
    store.write_realized("parts", _parts_rows(["croston-v1"] * 3, [0.5, 0.55, 0.6], [1.2, 1.2, 1.2]))
    parts = list((_isolated_home / "warehouse" / "realized").rglob("*.parquet"))
    assert len(parts) == 3
    for part in parts:  # as an older flowcast wrote them
        pl.read_parquet(part).drop("rmsse", "rmsse_snaive").write_parquet(part)
    back = store.read_realized("parts")
    assert back["rmsse"].null_count() == 3 and back["rmsse_snaive"].null_count() == 3
    decay = assess_decay(back, {"croston-v1": 1.0}, dataset="parts", window=3, tolerance=0.25, min_points=10,
                         promised_rmsse={"croston-v1": 0.5})
    assert decay.metric == "mase" and decay.judged and not decay.degraded and decay.realized_rmsse is None
    write_status(_isolated_home, "parts", decay, as_of=datetime(2024, 6, 1), run_id="r")
    path = status_path(_isolated_home, "parts")
    stored = json.loads(path.read_text())
    stored["decay"] = {k: v for k, v in stored["decay"].items()
                       if k not in ("metric", "realized_rmsse", "promised_rmsse", "snaive_rmsse")}
    path.write_text(json.dumps(stored))
    res = runner.invoke(app, ["accuracy", "--dataset", "parts", "--as-of", "2024-03-01"], terminal_width=80)
    assert res.exit_code == 0, res.output
    assert "parts: healthy on MASE - realized MASE 0.9" in " ".join(res.output.split())
    step = next(line for line in res.output.splitlines() if line.lstrip().startswith("croston"))
    assert step.split()[1:] == ["1", "10", "1.5", "0.9", "-", "150", "0.8", "0.9"]  # croston-v1: no model column
    res = runner.invoke(app, ["accuracy", "--dataset", "parts", "--as-of", "2024-03-01", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["datasets"]["parts"]
    assert rep["status"]["metric"] == "mase" and rep["status"]["snaive_rmsse"] is None
    assert [r["rmsse"] for r in rep["rows"]] == [None] and [r["rmsse_snaive"] for r in rep["rows"]] == [None]
    assert [a["rmsse"] for a in rep["as_ofs"]] == [None]


@pytest.mark.parametrize(("verdict", "as_of", "title"), [
    ("judged", "2024-02-01", "(the verdict is on MASE)"),
    ("not judged", "2024-02-01", "(not judged yet)"),
    ("none", "2024-02-01", "(no verdict stored)"),
    ("judged", "2024-04-01", "(no points scored at this as_of; the verdict is on MASE)"),
    ("not judged", "2024-04-01", "(no points scored at this as_of; not judged yet)"),
])
def test_the_per_step_table_says_the_verdict_s_metric_only_where_there_is_one(_isolated_home, monkeypatch, verdict,
                                                                              as_of, title):
    """Regression (polish19): `flowcast accuracy --as-of` titled its per-step table 'the verdict is on MASE' also
    where nothing was judged (too few points), no verdict was stored, or the as_of had no point scored (an as_of
    not scored yet, of a dataset with a verdict: an empty table)."""
    from datetime import datetime

    from flowcast.evaluation.realized import assess_decay
    from flowcast.ops.accuracy import write_status
    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(_isolated_home.parent)
    rows = _parts_rows(["theta-v0"] * 3, [0.5, 0.55, 0.6], [1.2, 1.2, 1.2])
    EmbeddedStore(_isolated_home / "warehouse").write_realized("parts", rows)
    if verdict != "none":
        decay = assess_decay(rows, {"theta-v0": 1.0}, dataset="parts", window=3, tolerance=0.25,
                             min_points=10 if verdict == "judged" else 1000, promised_rmsse={"theta-v0": None})
        assert decay.judged is (verdict == "judged")
        write_status(_isolated_home, "parts", decay, as_of=datetime(2024, 6, 1), run_id="r")
    res = runner.invoke(app, ["accuracy", "--dataset", "parts", "--as-of", as_of], terminal_width=80)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert f"per model and step {title}" in said, said
    assert ("the verdict is on" in said) is (verdict == "judged")


def test_datasets_published_but_not_scored_are_named_and_a_verdict_without_rows_has_no_table(_isolated_home):
    """Regression (newuser21): in a home of seven datasets, `flowcast accuracy` listed the one with scored forecasts
    and said nothing of the other six; and `--dataset lengths`, judged before any point was scored, printed its
    verdict over an empty table and the table's legend. The unscored datasets are named in one line; a verdict
    without rows is printed alone."""
    from datetime import datetime

    import polars as pl

    from flowcast.evaluation.realized import Decay
    from flowcast.ops.accuracy import write_status
    from flowcast.store import EmbeddedStore

    store = EmbeddedStore(_isolated_home / "warehouse")
    fc = pl.DataFrame({"unique_id": ["a"], "ds": [datetime(2024, 1, 2)], "step": [1], "y_hat": [1.0]})
    for name in ("sales", "weekly", "lengths"):
        store.publish(fc, dataset=name, as_of=datetime(2024, 1, 1), model="naive", model_version="naive-v1",
                      run_id="r", created_at=datetime(2024, 1, 1))
    store.write_realized("sales", pl.DataFrame(
        {"dataset": "sales", "as_of": [datetime(2024, 1, 1)], "model": "naive", "model_version": "naive-v1", "step": 1,
         "n": 1, "mae": 1.0, "mase": 0.5, "n_mase": 1, "smape": 3.0, "coverage80": 1.0, "coverage95": 1.0,
         "mae_snaive": 2.0, "mase_snaive": 1.0, "lookahead": False, "scored_at": datetime(2024, 6, 1)},
        schema_overrides={"step": pl.Int32}))
    write_status(_isolated_home, "lengths", Decay(dataset="lengths", degraded=False, judged=False,
                                                  reasons=["no forecast has realized actuals yet"]),
                 as_of=datetime(2024, 1, 1), run_id="r")
    res = runner.invoke(app, ["accuracy"], terminal_width=80)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "sales:" in said and "not scored yet: lengths, weekly (published, but no later run has read" in said, said
    res = runner.invoke(app, ["accuracy", "--dataset", "lengths"], terminal_width=80)
    assert res.exit_code == 0, res.output
    assert "lengths: not judged yet - no forecast has realized actuals yet" in res.output, res.output
    assert "as_of (UTC)" not in res.output and "snaive MASE" not in res.output, res.output
    assert "not scored yet" not in res.output  # --dataset: that dataset alone


@pytest.mark.parametrize(("last_step", "said"), [(9, True), (28, False)])
def test_an_as_of_scored_on_fewer_steps_than_it_forecast_says_up_to_when_and_why(_isolated_home, last_step, said):
    """Regression (a new user: a forecast run at 2024-04-09 scored the 2024-03-31 as_of on 9 points where the file
    held actuals for all 28 days it forecast, the next day's run on 10, and nothing said why): a run scores the
    actuals up to its own as_of, never later ones, and `flowcast accuracy` says up to which step and by which run;
    an as_of scored on every step says nothing of it."""
    from datetime import datetime, timedelta

    import polars as pl

    from flowcast.store import EmbeddedStore

    as_of, scored_at = datetime(2024, 3, 31), datetime(2024, 3, 31) + timedelta(days=last_step)
    store = EmbeddedStore(_isolated_home / "warehouse")
    fc = pl.DataFrame({"unique_id": "s0", "ds": [as_of + timedelta(days=s) for s in range(1, 29)],
                       "step": list(range(1, 29)), "y_hat": 1.0})
    store.publish(fc, dataset="daily", as_of=as_of, model="theta", model_version="theta-v1", run_id="r",
                  created_at=as_of)
    rows = pl.DataFrame({"dataset": "daily", "as_of": as_of, "model": "theta", "model_version": "theta-v1",
                         "step": list(range(1, last_step + 1)), "n": 1, "mae": 1.0, "mase": 0.5, "n_mase": 1,
                         "smape": 3.0, "coverage80": 1.0, "coverage95": 1.0, "mae_snaive": 2.0, "mase_snaive": 1.0,
                         "lookahead": False, "scored_at": scored_at}, schema_overrides={"step": pl.Int32})
    store.write_realized("daily", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "daily"], terminal_width=80)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    line = ("2024-03-31: scored up to step 9 of 28, by the run at 2024-04-09: a run scores the actuals up to its own "
            "as_of, never later ones (in the file or not); the next runs score the later steps")
    assert (line in text) is said and ("scored up to step" in text) is said
    res = runner.invoke(app, ["accuracy", "--dataset", "daily", "--json"])
    import json

    partial = json.loads(res.stdout)["datasets"]["daily"]["partial"]
    assert partial == ([{"as_of": "2024-03-31T00:00:00", "scored_at": "2024-04-09T00:00:00", "last_step": 9,
                         "horizon": 28}] if said else [])


@pytest.mark.parametrize(("mase", "said"), [(None, True), (0.5, False)])
def test_an_as_of_whose_series_are_too_short_for_a_realized_mase_says_why_it_is_blank(_isolated_home, monkeypatch,
                                                                                       mase, said):
    """Regression (newuser22): a weekly file of two years, backfilled over three Sundays, showed '-' in every MASE and
    snaive MASE cell of `flowcast accuracy` without a word: a realized MASE's scale needs a season plus max(season,
    4) seasonal differences of history by the as_of (104 weeks), which no series had. The note says so with the
    number for the dataset's freq (recorded by its publish); an as_of with a MASE says nothing of it."""
    import json
    from datetime import datetime

    import polars as pl

    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import EmbeddedStore

    as_of = datetime(2023, 11, 26)
    monkeypatch.setenv("FLOWCAST_HOME", str(_isolated_home))
    record = fingerprint_path(_isolated_home, "weekly", as_of)  # what its publish recorded: the dataset's freq
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"dataset": "weekly", "as_of": as_of.isoformat(), "freq": "1w"}))
    rows = pl.DataFrame({"dataset": "weekly", "as_of": as_of, "model": "damped", "model_version": "damped-v1",
                         "step": [1, 2], "n": 3, "mae": 4.2, "mase": mase, "n_mase": 0 if mase is None else 3,
                         "smape": 4.4, "coverage80": 0.5, "coverage95": 0.67, "mae_snaive": 5.0,
                         "mase_snaive": None if mase is None else 1.0, "lookahead": False,
                         "scored_at": datetime(2023, 12, 10)}, schema_overrides={"step": pl.Int32, "mase": pl.Float64,
                                                                                 "mase_snaive": pl.Float64})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("weekly", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "weekly"], terminal_width=80)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    # polish25: a long constant series (or one repeating itself every season) has a scale of 0 and a blank MASE too:
    # the note blamed 'the history' alone; the stored rows tell neither apart, so it names both
    note = ("MASE '-' at 2023-11-26: no series scored there had, by its as_of, a scale to divide by: either its "
            "history was shorter than a realized MASE's scale needs (104 periods: a season of 52 and 52 seasonal "
            "differences), or its scale was 0 (a constant history, or one that repeats itself exactly every season; a "
            "change within float noise of its level counts as none), so MASE, RMSSE and seasonal naive's MASE are "
            "blank")
    assert (note in text) is said, text
    assert ("MASE '-'" in text) is said


@pytest.mark.parametrize(("lookahead", "figure"), [(False, 3.749), (True, 3.749), (True, 0.9375)])
def test_sub_daily_as_ofs_keep_every_header_whole_in_80_columns(_isolated_home, lookahead, figure):
    """Regression (newuser27): `flowcast accuracy` of an hourly dataset backfilled at local midnights (as_ofs
    `2024-03-29 23:00 *`, 18 characters with the lookahead mark) headed its last column `promis…`: the table's
    blank edges took the 2 columns it lacked, and rich cut the header where the comment above it promised none.
    newuser46: with figures of 4 significant digits in every column (`0.9375`) it still lacked 3 and showed
    `sMA…`, `2.5…`, `0.93…`: such a table is spaced by one column, not two."""
    from datetime import datetime

    import polars as pl

    from flowcast.store import EmbeddedStore

    as_ofs = [datetime(2024, 3, 29, 23), datetime(2024, 3, 30, 23), datetime(2024, 3, 31, 22)]
    rows = pl.DataFrame({"dataset": "meters", "as_of": as_ofs, "model": "seasonal_naive",
                         "model_version": "seasonal_naive-v1", "step": 1, "n": 48, "mae": figure, "mase": figure,
                         "n_mase": 48, "smape": 3.63 if figure > 1 else 2.502, "coverage80": 0.77 if figure > 1 else figure,
                         "coverage95": 0.98 if figure > 1 else figure, "mae_snaive": 2.0, "mase_snaive": figure,
                         "lookahead": lookahead,
                         "scored_at": datetime(2024, 6, 1)}, schema_overrides={"step": pl.Int32})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("meters", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "meters"], terminal_width=80)
    assert res.exit_code == 0, res.output
    assert "…" not in res.output, res.output
    lines = res.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("as_of (UTC)"))
    assert lines[head - 1].split() == ["snaive", "promised"], res.output
    assert all(len(line) <= 80 for line in lines), res.output
    assert any(line.startswith("2024-03-31 22:00") for line in lines), res.output
    assert all(f"{figure:g}" in line for line in lines if line.startswith("2024-03-")), res.output


@pytest.mark.parametrize("fallback", [False, True])
def test_the_per_step_table_keeps_every_figure_whole_beside_long_model_names(_isolated_home, fallback):
    """Regression (newuser27): `flowcast accuracy --dataset hourly_dst --as-of 2024-03-29T23:00` showed
    `seasonal_nai…  seasonal_naive-…  st…  poin…  1.4…  0.66…  RMS…`: the model and version columns took 33 of 80
    columns and rich cut the figures. The version names its model, so the model column is shown only for a
    fallback's rows, and names fold rather than a figure being cut."""
    from datetime import datetime

    import polars as pl

    from flowcast.store import EmbeddedStore

    rows = pl.DataFrame({"dataset": "meters", "as_of": datetime(2024, 3, 29, 23),
                         "model": ["seasonal_naive", "theta" if fallback else "seasonal_naive"],
                         "model_version": "seasonal_naive-v1", "step": [1, 2], "n": 2, "mae": 1.40512,
                         "mase": 0.667123, "n_mase": 2, "rmsse": 0.598412, "smape": 1.23456, "coverage80": 0.5,
                         "coverage95": 1.0, "mae_snaive": 2.0, "mase_snaive": 1.0, "rmsse_snaive": 1.0,
                         "lookahead": True, "scored_at": datetime(2024, 6, 1)}, schema_overrides={"step": pl.Int32})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("meters", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "meters", "--as-of", "2024-03-29T23:00"], terminal_width=80)
    assert res.exit_code == 0, res.output
    assert "…" not in res.output, res.output
    lines = res.output.splitlines()
    head = next((i for i, line in enumerate(lines) if line.startswith("model" if fallback else "version")), None)
    assert head is not None, res.output
    assert lines[head].split()[-8:] == ["step", "points", "MAE", "MASE", "RMSSE*", "sMAPE", "cov80", "cov95"]
    said = " ".join(lines[head + 2:])
    assert all(f in said for f in ("1.405", "0.6671", "0.5984", "1.235")), res.output
    assert ("theta" in said) is fallback, res.output


@pytest.mark.parametrize("damaged", [["2024-02-01"], ["2024-01-01", "2024-02-01", "2024-03-01"]])
def test_a_stored_verdict_whose_realized_files_are_now_unreadable_says_so(_isolated_home, monkeypatch, damaged):
    """Regression (faults32): with a realized-accuracy file the stored verdict was judged on damaged since, `flowcast
    accuracy` showed that verdict as it was, without a word (its only file damaged: 'no realized accuracy yet', as if
    nothing had been scored). A line under the verdict names the as_ofs it was judged on that cannot be read now."""
    import json
    from datetime import datetime

    from flowcast.evaluation.realized import assess_decay
    from flowcast.ops.accuracy import write_status
    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(_isolated_home.parent)
    store = EmbeddedStore(_isolated_home / "warehouse")
    store.write_realized("parts", _parts_rows(["theta-v0"] * 3, [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]))
    decay = assess_decay(store.read_realized("parts"), {"theta-v0": 1.0}, dataset="parts", window=3, tolerance=0.25,
                         min_points=10)
    write_status(_isolated_home, "parts", decay, as_of=datetime(2024, 6, 1), run_id="r")
    res = runner.invoke(app, ["accuracy"], terminal_width=80)
    assert res.exit_code == 0 and "cannot be read now" not in res.output, res.output
    for as_of in damaged:
        (part,) = (_isolated_home / "warehouse" / "realized" / "dataset=parts" / f"as_of={as_of}T00:00:00").iterdir()
        part.write_bytes(part.read_bytes()[:200])
    res = runner.invoke(app, ["accuracy"], terminal_width=80)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "parts: healthy on MASE" in text and "no realized accuracy" not in text
    said = [line for line in res.output.splitlines() if "cannot be read now" in line]
    assert len(said) == 1, res.output
    shown = ", ".join(damaged)
    assert (f"the verdict above was judged on realized accuracy of {'as_ofs' if len(damaged) > 1 else 'as_of'} "
            f"{shown}, which cannot be read now") in text
    res = runner.invoke(app, ["accuracy", "--json"])
    rep = json.loads(res.stdout)["datasets"]["parts"]
    assert rep["status"]["judged"] and rep["status_unreadable_as_ofs"] == [f"{a}T00:00:00" for a in damaged]


@pytest.mark.parametrize(("coverage80", "shown"), [(0.625, "0.625"), (0.66666, "0.6667"), (0.8, "0.8"), (1.0, "1")])
def test_accuracy_rounds_its_figures_as_the_realized_accuracy_artifact_does(_isolated_home, coverage80, shown):
    """look42 (ui42's notes): `flowcast accuracy` showed coverage80 as '0.62' (2 significant digits) where the
    realized-accuracy artifact said '0.625' (4, as the README says): both write `reporting.score_text`."""
    from datetime import datetime

    import polars as pl

    from flowcast.ops.accuracy import summary_rows
    from flowcast.store import EmbeddedStore

    rows = pl.DataFrame({"dataset": "sales", "as_of": [datetime(2024, 1, 1)], "model": "theta",
                         "model_version": "theta-v9", "step": 1, "n": 8, "mae": 1.0, "mase": 0.5, "n_mase": 8,
                         "smape": 3.0, "coverage80": coverage80, "coverage95": 1.0, "mae_snaive": 2.0,
                         "mase_snaive": 1.0, "lookahead": False, "scored_at": datetime(2024, 6, 1)},
                        schema_overrides={"step": pl.Int32})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("sales", rows)
    res = runner.invoke(app, ["accuracy", "--dataset", "sales"], terminal_width=80)
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.lstrip().startswith("2024-01-01"))
    assert line.split()[1:7] == ["8", "1", "0.5", "3", shown, "1"] and "…" not in res.output, res.output
    artifact = summary_rows(rows.drop("model", "model_version", "step", "scored_at"))[0]
    assert artifact["cov80"] == shown and artifact["cov95"] == "1"  # headed as the CLI heads them


def test_an_as_of_of_the_table_is_taken_back_by_as_of_on_a_zoned_source(_isolated_home, tmp_path):
    """Regression (inst43): the table's as_of column wrote a midnight UTC as its date ('2024-03-01'), which
    `--dataset sales --as-of` reads as the day of the source's tz (New York's midnight, 05:00 UTC): the as_of the
    table showed had no realized accuracy. A midnight UTC that is not the zone's keeps its clock there now."""
    from datetime import datetime

    import polars as pl

    from flowcast.store import EmbeddedStore

    conf = tmp_path / "flowcast.toml"
    conf.write_text('[sources.sales]\npath = "sales.csv"\nid_cols = ["store"]\ntime_col = "day"\ntarget_col = "y"\n'
                    'freq = "1h"\ntz = "America/New_York"\n')
    rows = pl.DataFrame({"dataset": "sales", "as_of": [datetime(2024, 3, 1)], "model": "theta", "model_version":
                         "theta-v9", "step": 1, "n": 4, "mae": 1.0, "mase": 0.5, "n_mase": 4, "smape": 3.0,
                         "coverage80": 0.75, "coverage95": 1.0, "mae_snaive": 2.0, "mase_snaive": 1.0,
                         "lookahead": False, "scored_at": datetime(2024, 6, 1)}, schema_overrides={"step": pl.Int32})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("sales", rows)
    res = runner.invoke(app, ["accuracy", "--config", str(conf), "--dataset", "sales"], terminal_width=400)
    assert res.exit_code == 0, res.output
    cell = next(line for line in res.output.splitlines() if line.lstrip().startswith("2024-03-01")).split("  ")[0]
    res = runner.invoke(app, ["accuracy", "--config", str(conf), "--dataset", "sales", "--as-of", cell.strip()],
                        terminal_width=400)
    assert res.exit_code == 0 and "no realized accuracy" not in res.output, (cell, res.output)


@pytest.mark.parametrize(("n_cov80", "n_cov95", "said"), [
    (8, 8, None),  # every point has both intervals: nothing to say
    (None, None, None),  # scored before the counts were recorded: weighted by n, nothing to say
    (6, 6, "6 of the 8 points of 2024-01-01"),
    (6, 8, "6 (cov80) and 8 (cov95) of the 8 points of 2024-01-01"),
    (None, 5, "8 (cov80) and 5 (cov95) of the 8 points of 2024-01-01"),
    # no 95% interval published (a level with too few calibration points): no cov95, nothing said of it (revB47: '8
    # (cov80) and 0 (cov95)', said of a series with no typical change to scale its widths by)
    (8, 0, None),
    (6, 0, "6 (cov80) of the 8 points of 2024-01-01"),
])
def test_a_coverage_over_fewer_points_than_the_table_s_says_on_how_many(_isolated_home, n_cov80, n_cov95, said):
    """probe45's counts: `points` (n) stood beside a coverage computed on the points forecast with that interval
    alone (`n_cov80`, `n_cov95`); the table and the per-step table say those counts where they differ from n."""
    from datetime import datetime

    import polars as pl

    from flowcast.store import EmbeddedStore

    rows = pl.DataFrame({"dataset": "sales", "as_of": [datetime(2024, 1, 1)], "model": "theta",
                         "model_version": "theta-v9", "step": 1, "n": 8, "mae": 1.0, "mase": 0.5, "n_mase": 8,
                         "smape": 3.0, "coverage80": 0.5, "coverage95": None if n_cov95 == 0 else 1.0,
                         "n_cov80": n_cov80, "n_cov95": n_cov95,
                         "mae_snaive": 2.0, "mase_snaive": 1.0, "lookahead": False,
                         "scored_at": datetime(2024, 6, 1)},
                        schema_overrides={"step": pl.Int32, "n_cov80": pl.Int64, "n_cov95": pl.Int64,
                                          "coverage95": pl.Float64})
    EmbeddedStore(_isolated_home / "warehouse").write_realized("sales", rows)
    for args, where in ((["--dataset", "sales"], "2024-01-01"),
                        (["--dataset", "sales", "--as-of", "2024-01-01"], "theta-v9 step 1")):
        res = runner.invoke(app, ["accuracy", *args], terminal_width=80)
        assert res.exit_code == 0, res.output
        text = " ".join(res.output.split())  # the notes wrap at 80 columns
        assert ("cov80/cov95: on the points forecast with that interval" in text) is (said is not None), res.output
        if said is not None:
            assert said.replace("2024-01-01", where) in text, res.output
        assert all(len(line) <= 80 for line in res.output.splitlines()), res.output


def test_the_accuracy_command_reads_each_as_of_s_receipt_once(_isolated_home, monkeypatch):
    """fixD51: `flowcast accuracy` read each scored as_of's receipt three times (the lookahead a publish recorded,
    the training as_of of a version the registry no longer has, the horizon it was published with): on PostgreSQL
    a connection and ~4 queries each. The steps share one map of the receipts read."""
    from collections import Counter
    from datetime import datetime, timedelta

    import polars as pl

    from flowcast.store import EmbeddedStore

    store = EmbeddedStore(_isolated_home / "warehouse")
    as_ofs = [datetime(2024, 3, 1), datetime(2024, 4, 1)]
    for a in as_ofs:  # by a version gone from the registry, whose publish recorded no lookahead
        fc = pl.DataFrame({"unique_id": "s0", "ds": [a + timedelta(days=s) for s in (1, 2)], "step": [1, 2],
                           "y_hat": 1.0}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="daily", as_of=a, model="theta", model_version="theta-v1", run_id="r",
                      created_at=a)
    rows = pl.DataFrame({"dataset": "daily", "as_of": as_ofs, "model": "theta", "model_version": "theta-v1",
                         "step": 1, "n": 1, "mae": 1.0, "mase": 0.5, "n_mase": 1, "smape": 3.0, "coverage80": 1.0,
                         "coverage95": 1.0, "mae_snaive": 2.0, "mase_snaive": 1.0,
                         "lookahead": pl.Series([None, None], dtype=pl.Boolean), "scored_at": datetime(2024, 4, 2)},
                        schema_overrides={"step": pl.Int32})
    store.write_realized("daily", rows)
    reads: Counter[datetime] = Counter()
    real = EmbeddedStore.receipt_of

    def counted(self, dataset, as_of):
        reads[as_of] += 1
        return real(self, dataset, as_of)

    monkeypatch.setattr(EmbeddedStore, "receipt_of", counted)
    res = runner.invoke(app, ["accuracy", "--dataset", "daily"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "scored up to step 1 of 2" in " ".join(res.output.split())  # the horizons were read from the receipts
    assert reads == dict.fromkeys(as_ofs, 1), reads
