"""Backtest, choose and publish on a real bundled dataset (us_employment, 148 monthly series)."""

from __future__ import annotations

from datetime import datetime

from flowcast.config import load_settings
from flowcast.data.preprocess import prepare_data
from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.candidates import evaluate_candidates, plan_candidates
from flowcast.evaluation.decision import decide
from flowcast.evaluation.selection import candidate_board, leaderboard
from flowcast.models.baselines import baseline_forecast
from flowcast.models.recipes import Recipe, forecast_with
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
    # every statistical candidate and their combination on one board: the best row wins
    results += [backtest(td, _fit(n), name=n, n_windows=2) for n in ("theta", "damped")]
    plan = plan_candidates(cells=[], seeds=1, base_seed=0, statistical=["naive", "seasonal_naive", "theta", "damped"],
                           combination=["theta", "damped"])
    cands, fallback, cals = evaluate_candidates(
        plan.specs, {r.name: r for r in results}, td, statistical=plan.statistical, metric="mase", resolution=10,
        horizon=td.meta.horizon, n_windows=2, step=td.meta.horizon)
    cboard = candidate_board(cands, "mase")
    d = decide(cboard, metric="mase", margin=0.0, baselines=["naive", "seasonal_naive", "theta", "damped"])
    assert d.action == "first" and d.publish == cboard["model"][0]
    assert d.scores[d.publish] <= min(d.scores[b] for b in ("naive", "seasonal_naive", "theta", "damped"))
    assert cboard["coverage80"].is_between(0.5, 1).all() and cboard["coverage95"].is_between(0.7, 1).all()
    champ = next(c for c in cands if c.name == d.publish)
    recipe = Recipe(name=champ.name, kind=champ.kind, weights=[w for w in champ.weights if w > 0],
                    components=[{"type": "statistical", "model": g} for (g, _), w in zip(champ.spec.groups,
                                                                                     champ.weights) if w > 0],
                    fallback=fallback, intervals={champ.name: champ.calibration, **cals})

    fc = forecast_with(recipe, td, td.meta.horizon, bounds=(0.0, None))
    assert fc["y_hat_lo95"].null_count() == 0 and (fc["y_hat_lo95"] <= fc["y_hat"]).all()
    store = ForecastStore(settings.warehouse_dir)
    r = store.publish(fc, as_of=as_of, model=d.publish, model_version=None, run_id="real",
                      created_at=as_of, last_ds=td.lengths().select("unique_id", "last_ds"), expected_ids=td.ids,
                      horizon=td.meta.horizon)
    assert r.rows == td.n_series * td.meta.horizon and r.n_series == td.n_series
    back = store.read(as_of=as_of)
    assert back.height == r.rows
    joined = back.join(td.lengths(), on="unique_id")
    assert (joined["ds"] > joined["last_ds"]).all() and joined["step"].max() == td.meta.horizon
