"""Backtest, select and publish on a real bundled dataset (us_employment, 148 monthly series)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from flowcast.config import load_settings
from flowcast.data.preprocess import prepare_data
from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.selection import leaderboard, select
from flowcast.models.baselines import baseline_forecast
from flowcast.publish import ForecastStore


def _fit(name: str):
    return lambda td: (lambda t: baseline_forecast(name, t, t.meta.horizon))


def test_us_employment_backtest_select_publish(tmp_path):
    settings = load_settings(home=tmp_path)
    as_of = datetime(2005, 6, 1)
    td = prepare_data(settings, as_of=as_of).training
    results = [backtest(td, _fit(n), name=n, n_windows=2) for n in ("naive", "seasonal_naive")]
    for r in results:
        assert r.finite and r.forecasts.height == td.n_series * 2 * td.meta.horizon
        assert r.forecasts["cutoff"].max() < td.frame["ds"].max()
    board = leaderboard(results, "mase")
    assert board["finite"].all() and board["mase"].is_between(0, 10).all()
    # baselines are never promoted: the decision says why, as data
    d = select(board, metric="mase", margin=0.0)
    assert d.promote is False and d.challenger is None and d.baseline_score == board.filter(
        pl.col("model") == "seasonal_naive")["mase"][0]

    fc = baseline_forecast("seasonal_naive", td, td.meta.horizon)
    store = ForecastStore(settings.warehouse_dir)
    r = store.publish(fc, as_of=as_of, model="seasonal_naive", model_version=None, run_id="real",
                      created_at=as_of, last_ds=td.lengths().select("unique_id", "last_ds"), expected_ids=td.ids,
                      horizon=td.meta.horizon)
    assert r.rows == td.n_series * td.meta.horizon and r.n_series == td.n_series
    back = store.read(as_of=as_of)
    assert back.height == r.rows
    joined = back.join(td.lengths(), on="unique_id")
    assert (joined["ds"] > joined["last_ds"]).all() and joined["step"].max() == td.meta.horizon
