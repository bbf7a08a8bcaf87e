"""Future-known covariates reach production (issue 9): the rows of a source dated after as_of keep
their declared `future_cols` (planned prices, promotions, weather forecasts; their target is
ignored), a backtest cut at t sees what a run at t would have seen, and horizon values without a
plan get the declared `preprocess.future_fill`, counted in the report, never silently."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowcast.config import load_settings
from flowcast.data.preprocess import prepare_data
from flowcast.errors import DataValidationError

D0 = datetime(2020, 1, 1)
H = 7


def day(t: int) -> datetime:
    return D0 + timedelta(days=t)


def write_promo(path: Path, n: int, planned: int, *, seed: int = 0) -> pl.DataFrame:
    """Three daily series whose value is set by a promotion flag: y = 20 + 5 s + 10 promo. Days
    0..n-1 are history, the next `planned` days are planned rows (their `val` is filled too, as
    an export of actuals might have it: a run must ignore it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(3):
        promo = (rng.random(n + planned) < 0.35).astype(float)
        rows += [{"id": f"s{s}", "date": f"{day(t):%Y-%m-%d}", "val": 20 + 5 * s + 10 * promo[t], "promo": promo[t]}
                 for t in range(n + planned)]
    df = pl.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_csv(path)
    return df


def settings_for(path: Path, home: Path, future_cols: tuple[str, ...] = ("promo",), **pre):
    source = {"name": "promo", "path": str(path), "id_cols": ["id"], "time_col": "date", "target_col": "val",
              "freq": "1d", "future_cols": list(future_cols)}
    model = {"cells": ["gru"], "lookback": 14, "hidden_size": 16, "num_layers": 1, "batch_size": 64, "max_steps": 120,
             "lr": 0.01, "loss": "mse", "scheduler": "none", "launcher": "inline", "accelerator": "cpu", "devices": 1,
             "early_stopping_patience": None, "num_threads": 1}
    return load_settings(home=home, source=source, horizon=H, model=model,
                         preprocess={"calendar": False, **pre})


def test_planned_rows_after_as_of_keep_their_future_covariates_and_lose_their_target(tmp_path):
    """Regression: ingestion dropped every row after as_of, so the horizon got the last promo
    value carried forward while the backtests used the true future values."""
    df = write_promo(tmp_path / "promo.csv", 40, 10)
    p = prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "home"), as_of=day(39))
    td, rep = p.training, p.report
    assert (rep.rows_read, rep.rows_after_as_of, rep.rows_planned) == (150, 30, 30)
    assert rep.rows_in == rep.rows_valid + rep.rows_quarantined == 150 and rep.rows_quarantined == 0
    assert rep.ds_max == "2020-02-09 00:00:00" and rep.rows_null_y == 0  # observations only
    assert td.frame["ds"].max() == day(39) and td.frame.height == 120  # no planned row is an observation
    fut = td.future_frame().filter(pl.col("unique_id") == "s1")
    planned = df.filter((pl.col("id") == "s1") & (pl.col("date") > "2020-02-09")).head(H)
    assert fut["promo"].to_list() == planned["promo"].to_list()
    assert rep.preprocess["future_missing"] == {"promo": 0} and rep.preprocess["future_exog_rows"] == 30
    assert "rows after as_of kept for planned future covariates" in rep.to_markdown()


def test_a_backtest_cut_sees_what_a_run_at_the_cutoff_would_have_seen(tmp_path):
    write_promo(tmp_path / "promo.csv", 40, 10)
    later = prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "a"), as_of=day(39)).training
    earlier = prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "b"), as_of=day(34)).training
    cut, _ = later.holdout(5)
    assert cut.frame.equals(earlier.frame) and cut.scalers.equals(earlier.scalers)
    assert cut.future_frame().equals(earlier.future_frame())


@pytest.mark.parametrize("fill, expected", [("last", [1.0, 1.0, 1.0, 1.0, 1.0]), ("zero", [0.0] * 5)])
def test_unplanned_horizon_values_are_counted_and_get_the_declared_fill(tmp_path, fill, expected):
    df = write_promo(tmp_path / "promo.csv", 40, 2, seed=3)
    # the last planned value of s0 is 1 (set so): 'last' carries it forward over the 5 unplanned steps
    df = df.with_columns(pl.when((pl.col("id") == "s0") & (pl.col("date") == f"{day(41):%Y-%m-%d}"))
                         .then(1.0).otherwise(pl.col("promo")).alias("promo"))
    df.write_csv(tmp_path / "promo.csv")
    p = prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "home", future_fill=fill), as_of=day(39))
    pre = p.report.preprocess
    assert (pre["future_fill"], pre["future_expected"], pre["future_missing"], pre["future_missing_series"]) == (
        fill, 3 * H, {"promo": 3 * 5}, 3)
    # the first unplanned values are named (the report said only '3 series'), with what to do
    assert (f"not planned: promo: 15 of 21 values (series x steps; 3 series; e.g. s0: promo from 2020-02-12; s1: promo from 2020-02-12; s2: promo from 2020-02-12), filled by "
            f"future_fill = '{fill}'; add their planned rows (dated after as_of, target empty) or set [preprocess] future_fill ('zero', or 'error' to fail instead)") in p.report.to_markdown()
    fut = p.training.future_frame().filter(pl.col("unique_id") == "s0")
    assert fut["promo"].to_list()[2:] == expected
    from types import SimpleNamespace

    from flowcast.flows.common import future_notes  # the run's warning line

    assert future_notes(SimpleNamespace(**pre)) == [
        ("Future-known covariates without a planned value on the horizon: promo: 15 of 21 values (series x steps; "
         f"3 series; e.g. s0: promo from 2020-02-12; s1: promo from 2020-02-12; s2: promo from 2020-02-12), filled by preprocess.future_fill = '{fill}'; add their planned rows (dated after as_of, target empty) or set [preprocess] future_fill ('zero', or 'error' to fail instead)")]


def test_unplanned_values_of_two_columns_are_counted_per_column(tmp_path):
    """Regression: with two declared future columns the run said '30 of 21 values (series x steps) per column
    (promo: 15, price: 15; 3 series)' (a total against one column's count), and the data-quality report '30 values of
    21 ... per column'; each column's count is of its own expected values."""
    df = write_promo(tmp_path / "promo.csv", 40, 2, seed=3)
    df.with_columns((pl.col("promo") * 2).alias("price")).write_csv(tmp_path / "promo.csv")
    p = prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "home", ("promo", "price")), as_of=day(39))
    assert p.report.preprocess["future_missing"] == {"promo": 15, "price": 15}
    assert ("not planned: promo: 15 of 21, price: 15 of 21 values (series x steps; 3 series; e.g. s0: promo from 2020-02-12; s1: promo from 2020-02-12; s2: promo from 2020-02-12), filled by "
            "future_fill = 'last'; add their planned rows (dated after as_of, target empty) or set [preprocess] future_fill ('zero', or 'error' to fail instead)") in p.report.to_markdown()
    from types import SimpleNamespace

    from flowcast.flows.common import future_notes

    assert future_notes(SimpleNamespace(**p.report.preprocess)) == [
        ("Future-known covariates without a planned value on the horizon: promo: 15 of 21, price: 15 of 21 values "
         "(series x steps; 3 series; e.g. s0: promo from 2020-02-12; s1: promo from 2020-02-12; s2: promo from 2020-02-12), filled by preprocess.future_fill = 'last'; add their planned rows (dated after as_of, target empty) or set [preprocess] future_fill ('zero', or 'error' to fail instead)")]


def test_unplanned_horizon_values_fail_the_run_when_declared_so(tmp_path):
    """(Regression: the error's examples were Python's repr of tuples with timestamps, "[('s0', 'promo', '2020-02-10
    00:00:00'), ...]"; they name each series, column and first date as the other messages do.)"""
    write_promo(tmp_path / "promo.csv", 40, 0)
    with pytest.raises(DataValidationError, match=r"no planned value for 21 of 21 horizon values .*future_fill = 'error'"
                       ) as caught:
        prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "home", future_fill="error"), as_of=day(39))
    first = f"{day(40):%Y-%m-%d}"
    assert f"first missing e.g. s0: promo from {first}; s1: promo from {first}; s2: promo from {first})" in str(caught.value)


def test_a_covariate_that_determines_y_makes_the_forecast_nearly_exact(tmp_path):
    """Through the product path (ingest, validate, preprocess, train, predict): with the planned
    promotions the forecast is nearly exact; the same history without the planned rows is not."""
    from flowcast.models.predict import predict
    from flowcast.models.train import train_model

    n = 120
    df = write_promo(tmp_path / "planned.csv", n, H)
    as_of = day(n - 1)
    df.filter(pl.col("date") <= f"{as_of:%Y-%m-%d}").write_csv(tmp_path / "history.csv")
    s_planned = settings_for(tmp_path / "planned.csv", tmp_path / "home")
    planned = prepare_data(s_planned, as_of=as_of).training
    unplanned = prepare_data(settings_for(tmp_path / "history.csv", tmp_path / "home2"), as_of=as_of)
    history = unplanned.training
    assert planned.frame.equals(history.frame)  # the same observations: only the plans differ
    assert unplanned.report.preprocess["future_missing"] == {"promo": 3 * H}  # said, and filled by 'last'
    art = train_model(planned, s_planned.model, tmp_path / "gru", cell="gru")
    truth = df.filter(pl.col("date") > f"{as_of:%Y-%m-%d}").select(
        pl.col("id").alias("unique_id"), pl.col("date").str.to_datetime("%Y-%m-%d").alias("ds"), "val")

    def mae(td) -> float:
        got = predict(art, td, H).join(truth, on=["unique_id", "ds"])
        assert got.height == 3 * H
        return float((got["y_hat"] - got["val"]).abs().mean())

    with_plans, without = mae(planned), mae(history)
    assert with_plans < 1.0, (with_plans, without)  # a promotion moves y by 10
    assert without > 2.0 and with_plans < without / 4, (with_plans, without)


def test_a_static_written_only_after_as_of_is_not_known_at_as_of(tmp_path):
    """Regression: planned rows (after as_of, kept for their future covariates) kept their statics too, and the
    first static value of a series was taken from them: s0, whose `size` is first written on a row after as_of,
    got that size, and s1, whose size changes after as_of, was said to have a changing static, where the same
    data without a declared future covariate (no planned rows) had neither: a backfill saw a later export's
    static. Only what was known at as_of counts: the statics are those of the rows up to it."""
    rows = [{"id": f"s{s}", "date": f"{day(t):%Y-%m-%d}", "val": 20.0 + 5 * s + t % 3, "promo": float(t % 2),
             "size": None if s == 0 and t < 40 else (3.0 if t < 40 else 9.0)} for s in range(2) for t in range(50)]
    pl.DataFrame(rows).write_csv(tmp_path / "p.csv")

    def statics(future: list[str], home: str) -> tuple[list[tuple], object]:
        source = {"name": "promo", "path": str(tmp_path / "p.csv"), "id_cols": ["id"], "time_col": "date",
                  "target_col": "val", "freq": "1d", "static_cols": ["size"], "future_cols": future}
        p = prepare_data(load_settings(home=tmp_path / home, source=source, horizon=H,
                                       preprocess={"calendar": False}), as_of=day(39))
        return p.training.static.sort("unique_id").rows(), p.report.preprocess.get("static_varying")

    planned = statics(["promo"], "a")
    assert planned == statics([], "b")
    assert planned == ([("s0", None, 1.0), ("s1", 3.0, 0.0)], None)  # s0: no size known at as_of (missing)


def test_planned_covariates_in_their_own_file_beside_the_history(tmp_path):
    """Regression: a source of two files, the history (id, date, val, promo) and the plan of the next days (id, date,
    promo: no target, as a weather forecast or a promotion calendar is kept) failed with "declared column(s) 'val'
    missing". A file without the target that holds a declared future covariate is a plan: its rows' target is
    empty, and the horizon gets its values as if they were rows of one file."""
    df = write_promo(tmp_path / "all.csv", 40, H)
    (tmp_path / "all.csv").unlink()
    (tmp_path / "src").mkdir()
    df.filter(pl.col("date") <= f"{day(39):%Y-%m-%d}").write_csv(tmp_path / "src" / "history.csv")
    df.filter(pl.col("date") > f"{day(39):%Y-%m-%d}").drop("val").write_csv(tmp_path / "src" / "plan.csv")
    p = prepare_data(settings_for(tmp_path / "src" / "*.csv", tmp_path / "home"), as_of=day(39))
    assert p.report.preprocess["future_missing"] == {"promo": 0} and p.report.rows_planned == 3 * H
    fut = p.training.future_frame().filter(pl.col("unique_id") == "s1")
    planned = df.filter((pl.col("id") == "s1") & (pl.col("date") > f"{day(39):%Y-%m-%d}"))
    assert fut["promo"].to_list() == planned["promo"].to_list()
    later = df.filter(pl.col("date") > f"{day(39):%Y-%m-%d}")
    later.rename({"val": "VAL"}).write_csv(tmp_path / "src" / "plan.csv")  # the target misspelled: not a plan
    with pytest.raises(DataValidationError, match=r"plan.csv: declared column 'val' missing"):
        prepare_data(settings_for(tmp_path / "src" / "*.csv", tmp_path / "home3"), as_of=day(39))
    later.drop("val").write_csv(tmp_path / "src" / "plan.csv")
    (tmp_path / "src" / "history.csv").unlink()  # a plan alone is no source: the target is in none of its files
    (tmp_path / "src" / "plan2.csv").write_bytes((tmp_path / "src" / "plan.csv").read_bytes())
    with pytest.raises(DataValidationError, match=r"declared column 'val' \(the target\) is in none of its 2 files"):
        prepare_data(settings_for(tmp_path / "src" / "*.csv", tmp_path / "home2"), as_of=day(39))


def test_a_future_covariate_never_planned_is_pointed_out_as_a_possible_leak(tmp_path):
    """A covariate observed only up to as_of, declared as future by mistake, has no planned value at all: the
    backtest read its actual values after each cutoff (a leak) while the forecast got filled ones, and the run
    said only 'promo: 21 of 21 values ... filled'. It now says to declare it a past covariate if not known ahead."""
    write_promo(tmp_path / "promo.csv", 40, 0)
    p = prepare_data(settings_for(tmp_path / "promo.csv", tmp_path / "home"), as_of=day(39))
    leak = ("'promo' has no planned value for any series: if it is not known ahead, declare it a past covariate "
            "(--past-col, past_cols)")
    assert leak in " ".join(p.report.to_markdown().split())
    from types import SimpleNamespace

    from flowcast.flows.common import future_notes

    assert leak in future_notes(SimpleNamespace(**p.report.preprocess))[-1]
    partly = write_promo(tmp_path / "partly.csv", 40, 2, seed=3)  # planned for 2 of 7 steps: no such warning
    partly.write_csv(tmp_path / "partly.csv")
    q = prepare_data(settings_for(tmp_path / "partly.csv", tmp_path / "home2"), as_of=day(39))
    assert "no planned value for any series" not in q.report.to_markdown()
