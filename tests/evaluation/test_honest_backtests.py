"""Backtests are honest about what preprocessing did (issue 9): every window keeps the full run's
per-series decisions (log1p off for series that cannot take it), and only observed actuals are
scored (a gap the preprocessing imputed is no actual)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flowcast.config import ModelConfig, SourceConfig, load_settings
from flowcast.data.preprocess import preprocess
from flowcast.data.training_data import TrainingData
from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.candidates import evaluate_candidates, plan_candidates
from flowcast.models.baselines import baseline_forecast
from flowcast.models.predict import predict
from flowcast.models.train import train_model

D0 = datetime(2020, 1, 1)


def _source() -> SourceConfig:
    return SourceConfig(name="t", path="unused.csv", id_cols=["id"], time_col="date", target_col="val", freq="1d")


def _valid(series: dict[str, list[float | None]]) -> pl.DataFrame:
    rows = [(uid, D0 + timedelta(days=i), v) for uid, ys in series.items() for i, v in enumerate(ys)]
    return pl.DataFrame(rows, schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "y": pl.Float64}, orient="row")


def _wave(n: int, level: float, amp: float = 3.0) -> list[float]:
    t = np.arange(n)
    return [float(v) for v in level + amp * np.sin(2 * np.pi * t / 7)]


# ----------------------------------------------------------------------------------- item 4: per-series log1p
def test_every_backtest_window_keeps_the_full_runs_log1p_decision_per_series(tmp_path):
    """Regression: holdout refitted the scalers with the global log1p flag, so a series with
    values <= -1 got log1p(y) = NaN scalers in every backtest window: NaN network forecasts, and
    the network was not eligible."""
    valid = _valid({"pos": _wave(60, 20.0), "neg": _wave(60, -5.0)})  # 'neg' lies in [-8, -2]
    settings = load_settings(model={"lookback": 7}, horizon=3, preprocess={"log1p": True})
    td, summary = preprocess(valid, _source(), settings, None)
    assert summary.log1p_disabled == ["neg"]
    assert dict(td.scalers.select("unique_id", "log1p").iter_rows()) == {"neg": False, "pos": True}

    cut, _ = td.holdout(9)
    assert dict(cut.scalers.select("unique_id", "log1p").iter_rows()) == {"neg": False, "pos": True}
    assert cut.scalers.select(pl.col("center").is_finite().all() & pl.col("scale").is_finite().all()).item()
    scaled = cut.scale(cut.frame)
    assert scaled["y"].is_finite().all()

    cfg = ModelConfig(lookback=7, hidden_size=8, num_layers=1, batch_size=32, max_steps=5, launcher="inline",
                      accelerator="cpu", devices=1, early_stopping_patience=None, num_threads=1)

    def fit(train: TrainingData):
        art = train_model(train, cfg, tmp_path / "gru", cell="gru")
        return lambda window: predict(art, window, 3)

    res = backtest(td, fit, name="gru", n_windows=2, step=3)
    assert res.finite and res.n_nonfinite == 0
    assert res.forecasts.filter(pl.col("unique_id") == "neg").height == 6


# ----------------------------------------------------------------------------------- item 5: observed only
def _gappy_td() -> tuple[TrainingData, object]:
    """Two daily series of 40 points; 'a' has no value on days 35 and 36 (imputed linearly)."""
    a: list[float | None] = [float(i) for i in range(40)]
    a[35] = a[36] = None
    valid = _valid({"a": a, "b": [float(2 * i) for i in range(40)]})
    settings = load_settings(model={"lookback": 5}, horizon=4, preprocess={"impute": "linear"})
    return preprocess(valid, _source(), settings, None)


def test_imputed_points_are_marked_and_round_trip(tmp_path):
    td, summary = _gappy_td()
    assert summary.rows_imputed == 2
    assert td.imputed.rows() == [("a", D0 + timedelta(days=35)), ("a", D0 + timedelta(days=36))]
    marks = td.frame.with_columns(td.observed().alias("obs")).filter(~pl.col("obs"))
    assert marks.select("unique_id", "ds").rows() == td.imputed.rows()
    assert marks["y"].to_list() == [35.0, 36.0]  # the values are there (linear), but not observations
    back = TrainingData.load(td.save(tmp_path / "td"))
    assert back.imputed.equals(td.imputed) and back.observed().equals(td.observed())
    assert int((~td.holdout(2)[0].observed()).sum()) == 2  # the cut keeps the marks of its rows
    # a cut inside the gap (day 36 or 35) ends the history at the last observation before it (day 34)
    for n in (3, 4):
        cut = td.holdout(n)[0]
        assert int((~cut.observed()).sum()) == 0
        assert cut.lengths()["last_ds"].to_list() == [D0 + timedelta(days=34), D0 + timedelta(days=39 - n)]


def naive(t: TrainingData) -> pl.DataFrame:
    return baseline_forecast("naive", t)


def test_backtests_score_observed_points_only():
    """Regression: gaps were imputed before any cut, and the backtest scored the interpolated
    points as if they had been observed."""
    td, _ = _gappy_td()
    # windows: cutoffs at day 31 (actuals 32..35) and 35 (actuals 36..39); days 35, 36 of 'a' were imputed, so
    # its second cutoff is day 34, its last observation before day 35 (actuals 35..38)
    res = backtest(td, lambda _t: naive, name="naive", n_windows=2, step=4)
    a = res.forecasts.filter(pl.col("unique_id") == "a")
    assert a["ds"].to_list() == [D0 + timedelta(days=d) for d in (32, 33, 34, 37, 38)]
    assert a["step"].to_list() == [1, 2, 3, 3, 4]
    assert res.summary["n_imputed_not_scored"] == 3
    assert res.forecasts.filter(pl.col("unique_id") == "b").height == 8
    # naive from cutoff 31 (y=31): errors 1, 2, 3 on the observed days only -> MAE 2, not 2.5
    m = res.metrics.filter(pl.col("unique_id") == "a").sort("window")
    assert m["mae"].to_list() == pytest.approx([2.0, (3 + 4) / 2])


def test_candidates_and_their_interval_calibration_see_observed_points_only():
    td, _ = _gappy_td()
    plan = plan_candidates(cells=[], seeds=1, base_seed=0, statistical=["naive", "seasonal_naive"],
                           combination=["naive", "seasonal_naive"], ensemble=False, hybrid=False)
    comps = {s: backtest(td, lambda _t, s=s: (lambda w: baseline_forecast(s, w)), name=s, n_windows=3, step=4)
             for s in plan.statistical}
    results, _, calibrations = evaluate_candidates(plan.specs, comps, td, statistical=plan.statistical,
                                                   metric="mae", resolution=10, horizon=4, n_windows=3, step=4)
    imputed = td.imputed.select("unique_id", "ds")
    for r in results:
        scored = r.result.forecasts
        assert scored.join(imputed, on=["unique_id", "ds"], how="semi").height == 0, r.name
        # every observed held-out point, none of the imputed (the newest window of 'a' ends at day 38: cut at 34)
        assert scored.height == 3 * 4 * 2 - 3, r.name
        assert r.calibration is not None and r.calibration["n"] == scored.height, r.name
    assert all(c is not None and c["n"] == 21 for c in calibrations.values())


def test_realized_accuracy_reads_observed_actuals_only():
    from flowcast.ops.accuracy import observed_actuals

    td, _ = _gappy_td()
    got = observed_actuals(td, D0 + timedelta(days=30))  # days 31..39 of both series
    assert got.height == 2 * 9 - 2
    assert D0 + timedelta(days=35) not in got.filter(pl.col("unique_id") == "a")["ds"].to_list()


def test_realized_accuracy_reads_a_daily_sources_actuals_after_as_of_on_its_own_calendar():
    """as_of = day 30 02:00 UTC is day 29 22:00 in New York: that run saw days up to 29 and forecast from
    day 30. Compared with the UTC instant, the actuals began at day 31, and step 1 was never scored."""
    from flowcast.ops.accuracy import observed_actuals

    source = _source().model_copy(update={"tz": "America/New_York"})
    td, _ = preprocess(_valid({"a": [float(i) for i in range(40)]}), source,
                       load_settings(model={"lookback": 5}, horizon=4), None)
    assert td.meta.tz == "America/New_York"
    got = observed_actuals(td, D0 + timedelta(days=30, hours=2))
    assert got["ds"].min() == D0 + timedelta(days=30) and got.height == 10


def test_a_window_cut_inside_an_imputed_gap_does_not_see_the_value_after_the_cut():
    """Regression: a gap is imputed (linearly) from the observations on both sides of it, so a backtest cut
    inside the gap kept interpolated values that came from the first observation after the cut (leakage): a
    run with as_of at that cut has the series up to its last observation, and forecasts from there."""
    a: list[float | None] = [0.0] * 20 + [None, None] + [90.0] * 4  # days 20, 21 imputed: 30, 60 (from day 22's 90)
    td, summary = preprocess(_valid({"a": a}), _source(), load_settings(model={"lookback": 5}, horizon=4), None)
    assert summary.rows_imputed == 2 and td.frame["y"].to_list()[20:22] == [30.0, 60.0]

    cut, removed = td.holdout(4)  # the cut at day 21, inside the gap: the history ends at day 19 (observed)
    assert cut.frame["y"].max() == 0.0 and cut.lengths()["last_ds"].to_list() == [D0 + timedelta(days=19)]
    assert removed["ds"].min() == D0 + timedelta(days=20) and removed["step"].to_list() == list(range(1, 7))
    res = backtest(td, lambda _t: naive, name="naive", n_windows=1, horizon=4)
    f = res.forecasts
    assert f["cutoff"].to_list() == [D0 + timedelta(days=19)] * 2  # days 22, 23 (steps 3, 4) scored
    assert f["y_hat"].to_list() == [0.0, 0.0] and f["step"].to_list() == [3, 4]
    assert res.summary["n_imputed_not_scored"] == 2


def test_realized_accuracy_of_an_aggregated_source_reads_the_period_that_held_as_of():
    """Transactions summed to days, a publish at day 30 06:00: its run left day 30 out (not over) and forecast it
    as step 1; observed_actuals began at day 31, so step 1 was never scored."""
    from flowcast.ops.accuracy import observed_actuals

    source = _source().model_copy(update={"aggregate": "sum"})
    td, _ = preprocess(_valid({"a": [float(i) for i in range(40)]}), source,
                       load_settings(model={"lookback": 5}, horizon=4), None)
    assert td.meta.aggregate == "sum"
    got = observed_actuals(td, D0 + timedelta(days=30, hours=6))
    assert got["ds"].min() == D0 + timedelta(days=30) and got.height == 10


def test_a_backtest_cut_does_not_see_a_static_first_given_after_it(tmp_path):
    """Regression: statics are each series' first value known at as_of (a run at as_of c has a series' static
    only when a row up to c gives it), but a backtest window cut at c reused the statics of the full run: a
    static first written on a row after the cut (a region assigned later, a size filled in late) was a feature
    of the windows cut before it. A window now has the statics a run with as_of at its cut had (0, or a text
    static's unknown level, where none was known yet: missing, a numeric one, with its indicator); statics
    known before the cut are as they are."""
    n = 30
    valid = _valid({"a": _wave(n, 10.0), "b": _wave(n, 20.0)}).with_columns(
        # a: region from day 0 and size from day 25; b: region from day 25 only
        region=pl.when((pl.col("unique_id") == "a") | (pl.col("ds") >= D0 + timedelta(days=25)))
        .then(pl.when(pl.col("unique_id") == "a").then(pl.lit("north")).otherwise(pl.lit("south"))),
        size=pl.when((pl.col("unique_id") == "a") & (pl.col("ds") >= D0 + timedelta(days=25))).then(pl.lit(7.0)),
    )
    source = _source().model_copy(update={"static_cols": ["region", "size"]})
    td, _ = preprocess(valid, source, load_settings(model={"lookback": 5}, horizon=4), None)
    full = {r["unique_id"]: r for r in td.static.iter_rows(named=True)}
    assert full["a"]["region=north"] == 1.0 and full["a"]["size"] == 7.0 and full["b"]["region=south"] == 1.0

    def statics(t: TrainingData) -> dict[str, dict]:
        return {r.pop("unique_id"): r for r in t.static.iter_rows(named=True)}

    cut, _ = td.holdout(8)  # cut at day 21: a's size and b's region came later
    assert statics(cut) == {
        "a": {"region=north": 1.0, "region=south": 0.0, "region=__unknown__": 0.0, "size": None,
              "size=__missing__": 1.0},
        "b": {"region=north": 0.0, "region=south": 0.0, "region=__unknown__": 1.0, "size": None,
              "size=__missing__": 1.0},
    }
    late, _ = td.holdout(3)  # cut at day 26: both known, as in the full run
    assert statics(late) == statics(td)
    # the backtest hands each window's fit the statics known at its cut, and they survive a save (the training
    # process reads its data from disk)
    seen: list[dict] = []
    backtest(td, lambda t: seen.append(statics(t)) or naive, name="naive", n_windows=2, step=5, horizon=3)
    assert seen[0]["b"]["region=__unknown__"] == 1.0 and seen[0]["a"]["size"] is None
    back = TrainingData.load(td.save(tmp_path / "td"))
    assert statics(back.holdout(8)[0]) == statics(cut)
