"""Candidates on one leaderboard: the same rows for every candidate, weights learned on earlier
windows only, fallback where a model fails, the production model scored on fair windows."""

from __future__ import annotations

from datetime import datetime, timedelta

import float_noise
import numpy as np
import polars as pl
import pytest
from eval_helpers import build_td

from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.candidates import (
    CandidateResult,
    CandidateSpec,
    _base_rows,
    add_short_calibration,
    backtest_scales,
    evaluate_candidates,
    frozen_candidate,
    give_short,
    growth_season,
    incumbent_spec,
    paired_scores,
    plan_candidates,
    short_part,
    statistical_makeup,
)
from flowcast.evaluation.selection import candidate_board
from flowcast.models import recipes
from flowcast.models.baselines import baseline_forecast

H, W = 4, 2


def _series() -> dict[str, list[float]]:
    t = np.arange(40)
    return {f"s{i}": list(50 + 10 * i + 0.5 * t + 5 * np.sin(2 * np.pi * t / 4 + i)) for i in range(5)}


def _stat(name):
    return lambda _td: (lambda cut: baseline_forecast(name, cut, H))


def _oracle(full, shift_by_window):
    """A test-local forecaster: the true future of `full` plus a known error per window (by cutoff)."""
    truth = full.frame.select("unique_id", "ds", "y")

    def fit(_td):
        def forecast(cut):
            fut = cut.future_frame(H).select("unique_id", "ds", "step")
            n = cut.frame.group_by("unique_id").len()["len"].max()
            shift = shift_by_window(n)
            return fut.join(truth, on=["unique_id", "ds"]).select("unique_id", "ds", "step",
                                                                 (pl.col("y") + shift).alias("y_hat"))
        return forecast

    return fit


@pytest.fixture(scope="module")
def td():
    return build_td(_series(), horizon=H, season_length=4)


def _components(td, **extra):
    comps = {s: backtest(td, _stat(s), name=s, n_windows=W) for s in ("naive", "seasonal_naive", "theta", "damped")}
    for k, fit in extra.items():
        comps[k] = backtest(td, fit, name=k, n_windows=W)
    return comps


def _evaluate(specs, comps, td, **kw):
    kw = {"statistical": ["naive", "seasonal_naive", "theta", "damped"], "metric": "mae", "resolution": 10,
          "horizon": H, "n_windows": W, "step": H, **kw}
    return evaluate_candidates(specs, comps, td, **kw)


def test_constant_data_gets_full_coverage_on_the_board():
    """Regression: on constant series theta's 80% interval is zero wide and computed through floats (the value
    plus ~1e-15): its exact hits counted as misses and the board showed theta's coverage at 0.75 (0.71 / 0.67 for
    theta / comb in a run). Every forecast of constant data is exact: every candidate covers every point."""
    flat = build_td({f"s{i}": [7.3 + i] * 40 for i in range(3)}, horizon=H, season_length=4)
    stats = ["naive", "seasonal_naive", "theta", "damped"]
    comps = {s: backtest(flat, _stat(s), name=s, n_windows=3) for s in stats}
    plan = plan_candidates(cells=[], seeds=1, base_seed=0, statistical=stats, combination=["theta", "damped"])
    cands, _, _ = _evaluate(plan.specs, comps, flat, n_windows=3)
    board = candidate_board(cands, "mae").filter(pl.col("model").is_in(["theta", "comb"]))
    assert board.height == 2
    assert board.select("model", "coverage80", "coverage95").sort("model").rows() == [
        ("comb", 1.0, 1.0), ("theta", 1.0, 1.0)]


def test_plan_names_every_kind():
    plan = plan_candidates(cells=["rnn", "gru"], seeds=2, base_seed=7, statistical=["naive", "theta"],
                           combination=["theta", "damped"])
    assert [m.key for m in plan.members] == ["rnn-s7", "rnn-s8", "gru-s7", "gru-s8"]
    assert plan.statistical == ["naive", "theta", "damped"]
    assert [(s.name, s.kind, s.weighting) for s in plan.specs] == [
        ("rnn", "ensemble", "single"), ("gru", "ensemble", "single"), ("naive", "statistical", "single"),
        ("theta", "statistical", "single"), ("comb", "statistical", "learned"), ("ensemble", "ensemble", "learned"),
        ("hybrid", "hybrid", "learned")]
    hand = plan_candidates(cells=["gru"], seeds=1, base_seed=0, statistical=[], combination=[],
                           blend={"theta": 0.25, "damped": 0.25})
    hyb = hand.specs[-1]
    assert (hyb.name, hyb.weighting, hyb.fixed, hyb.note) == ("hybrid", "fixed", [0.5, 0.25, 0.25],
                                                               "hand-set (model.blend)")
    assert "naive" in hand.statistical  # every fallback chain ends with it


def test_every_candidate_is_scored_on_the_same_rows_and_the_hybrid_learns(td):
    # a "network" that is off by +3 everywhere: blended with a statistical model that errs the other way
    comps = _components(td, **{"gru-s0": _oracle(td, lambda n: 3.0)})
    specs = plan_candidates(cells=["gru"], seeds=1, base_seed=0, statistical=["naive", "seasonal_naive", "theta",
                                                                               "damped"],
                            combination=["theta", "damped"]).specs
    cands, fallback, cals = _evaluate(specs, comps, td)
    board = candidate_board(cands, "mae")
    assert {c.result.forecasts.height for c in cands} == {5 * H * W}
    assert set(board["kind"]) == {"network", "statistical", "hybrid"}
    assert board["coverage80"].null_count() == 0 and board["msis"].null_count() == 0
    assert fallback[-1] == "naive" and set(fallback) == {"naive", "seasonal_naive", "theta", "damped"}
    assert set(cals) == set(fallback) and all(c["q"]["80"] for c in cals.values())
    gru = next(c for c in cands if c.name == "gru")
    assert gru.result.summary["mae"] == pytest.approx(3.0)
    hybrid = next(c for c in cands if c.name == "hybrid")
    assert hybrid.weights_by_window[0] == pytest.approx([1 / 3] * 3)  # nothing earlier: equal
    assert sum(hybrid.weights) == pytest.approx(1.0)
    assert hybrid.result.summary["mae"] < gru.result.summary["mae"]
    assert board["rank"][0] == 1 and board["model"][0] != "naive"


def test_learned_weights_are_never_scored_on_the_window_that_chose_them(td):
    """a is exact on the oldest window and off by 10 on the newest, b the opposite. An ensemble that
    chose its weights on the window it is scored on would be exact; this one is not."""
    # window 0 cuts 8 points off each 40-point series (32 left), window 1 cuts 4 (36 left)
    comps = _components(td, **{"a-s0": _oracle(td, lambda n: 0.0 if n == 32 else 10.0),
                               "b-s0": _oracle(td, lambda n: 10.0 if n == 32 else 0.0)})
    spec = CandidateSpec("ensemble", "ensemble", [("a", ["a-s0"]), ("b", ["b-s0"])], "learned",
                         networks=frozenset({"a", "b"}))
    (ens,), _, _ = _evaluate([spec], comps, td)
    assert ens.weights_by_window == {0: [0.5, 0.5], 1: [1.0, 0.0]}
    per_window = ens.result.metrics.group_by("window").agg(pl.col("mae").mean()).sort("window")["mae"].to_list()
    assert per_window == pytest.approx([5.0, 10.0])  # window 1 pays for weights learned on window 0
    assert ens.weights == pytest.approx([0.5, 0.5])  # published: fitted on both windows


@pytest.mark.parametrize(("b_error", "weights"), [
    # b is off on both windows: published 1 x a, but window 0 (nothing before it) was forecast with equal weights
    ((10.0, 10.0), ("1 x a as published, fitted on every backtest window; scored with 0.5 x a + 0.5 x b on window 0 "
                    "and 1 x a on window 1, each window's weights fitted on the windows before it (equal weights on "
                    "the first)")),
    # a and b err alike: equal weights everywhere, the same weights on every window, nothing more to say
    ((0.0, 0.0), "0.5 x a + 0.5 x b"),
])
def test_an_ensemble_shown_as_one_member_says_which_weights_scored_it(td, b_error, weights):
    """ui30: the sample's details listed 'ensemble: 1 x rnn' beside an MAE of 39.09 against rnn's 38.68. Not a
    bug: the published weights are fitted on every window, each backtest window's on the windows before it, and
    the oldest (none before it) is forecast with equal weights. The candidate's own line says so."""
    comps = _components(td, **{"a-s0": _oracle(td, lambda n: 0.0),
                               "b-s0": _oracle(td, lambda n: b_error[0] if n == 32 else b_error[1])})
    specs = [CandidateSpec("a", "network", [("a", ["a-s0"])], networks=frozenset({"a", "b"})),
             CandidateSpec("ensemble", "ensemble", [("a", ["a-s0"]), ("b", ["b-s0"])], "learned",
                           networks=frozenset({"a", "b"}))]
    cands, _, _ = _evaluate(specs, comps, td)
    board = candidate_board(cands, "mae")
    shown = dict(zip(board["model"], board["weights"]))
    assert shown == {"a": "", "ensemble": weights}
    mae = dict(zip(board["model"], board["mae"]))
    assert mae["a"] == pytest.approx(0.0) and mae["ensemble"] == pytest.approx(b_error[0] / 4)


def test_windows_closer_than_a_horizon_learn_weights_only_on_actuals_known_at_their_cutoff(td):
    """Regression: with windows a step apart that is shorter than the horizon (the quarterly recipe: 4 apart,
    horizon 8) an earlier window's later steps are the newer window's first periods, and the newer window's
    weights were fitted on them: chosen on its own actuals. a is exact up to day 35 and off by 10 after, b
    the opposite; windows 2 apart with a horizon of 4: window 0 holds out days 34..37, window 1 (cut at day
    35) days 36..39. Window 1 may learn on days 34 and 35 only (all on a), not on 36 and 37 (a tie)."""
    truth = td.frame.select("unique_id", "ds", "y")
    last_known = datetime(2020, 1, 1) + timedelta(days=35)

    def by_day(exact_early: bool):
        def fit(_td):
            def forecast(cut):
                fut = cut.future_frame(H).select("unique_id", "ds", "step")
                early = pl.col("ds") <= last_known
                err = pl.when(early).then(0.0 if exact_early else 10.0).otherwise(10.0 if exact_early else 0.0)
                return fut.join(truth, on=["unique_id", "ds"]).select("unique_id", "ds", "step",
                                                                     (pl.col("y") + err).alias("y_hat"))
            return forecast
        return fit

    comps = {s: backtest(td, _stat(s), name=s, n_windows=W, step=2) for s in ("naive", "theta")}
    comps["a-s0"] = backtest(td, by_day(True), name="a-s0", n_windows=W, step=2)
    comps["b-s0"] = backtest(td, by_day(False), name="b-s0", n_windows=W, step=2)
    assert comps["a-s0"].forecasts.filter(pl.col("window") == 1)["cutoff"].unique().to_list() == [last_known]
    spec = CandidateSpec("ensemble", "ensemble", [("a", ["a-s0"]), ("b", ["b-s0"])], "learned",
                         networks=frozenset({"a", "b"}))
    (ens,), _, _ = _evaluate([spec], comps, td, statistical=["naive", "theta"], step=2)
    assert ens.weights_by_window == {0: [0.5, 0.5], 1: [1.0, 0.0]}
    per_window = ens.result.metrics.group_by("window").agg(pl.col("mae").mean()).sort("window")["mae"].to_list()
    assert per_window == pytest.approx([5.0, 10.0])  # window 1 pays for weights learned on what it knew


def test_a_failing_series_falls_back_and_a_failing_model_is_not_eligible(td):
    one_bad = _oracle(td, lambda n: 1.0)

    def nan_on_s0(t):
        f = one_bad(t)
        return lambda cut: f(cut).with_columns(
            pl.when(pl.col("unique_id") == "s0").then(float("nan")).otherwise(pl.col("y_hat")).alias("y_hat"))

    def all_nan(t):
        f = one_bad(t)
        return lambda cut: f(cut).with_columns(pl.lit(float("nan")).alias("y_hat"))

    comps = _components(td, **{"gru-s0": nan_on_s0, "rnn-s0": all_nan})
    specs = [CandidateSpec("gru", "network", [("gru", ["gru-s0"])], networks=frozenset({"gru"})),
             CandidateSpec("rnn", "network", [("rnn", ["rnn-s0"])], networks=frozenset({"rnn"})),
             CandidateSpec("damped", "statistical", [("damped", ["damped"])])]
    cands, fallback, _ = _evaluate(specs, comps, td, max_fallback_share=0.0)
    gru, rnn, _ = cands
    assert gru.eligible and gru.fallback_pairs == W  # s0 in both windows, forecast by the best statistical model
    fb_rows = gru.result.forecasts.filter(pl.col("unique_id") == "s0")
    best_stat = comps[fallback[0]].forecasts.filter(pl.col("unique_id") == "s0")
    assert fb_rows["y_hat"].to_list() == pytest.approx(best_stat["y_hat"].to_list())
    assert not rnn.eligible and "its backtest forecasts of 5 of 5 series were not finite" in rnn.why_not
    board = candidate_board(cands, "mae")
    assert board.filter(pl.col("model") == "rnn")["rank"][0] is None
    assert board.filter(pl.col("model") == "gru")["fallback"][0] == pytest.approx(0.2)


def test_the_production_model_frozen_is_scored_only_after_its_training_data(td):
    prod = backtest(td, _oracle(td, lambda n: 2.0), name="production", n_windows=W)
    # trained on data up to the newest window's cutoff: it saw the oldest window's actuals, not the newest's
    cutoff_1 = prod.forecasts.filter(pl.col("window") == 1)["cutoff"].max()
    fz = frozen_candidate(prod, td, kind="network", trained_until=cutoff_1, horizon=H, n_windows=W, step=H)
    assert fz is not None and fz.result.forecasts["window"].unique().to_list() == [1]
    assert "1 backtest window after its training data ended" in fz.scoring
    # the decision artifact says which window(s) production was scored on, by the periods they forecast
    w1 = prod.forecasts.filter(pl.col("window") == 1)["ds"]
    assert f"(window 1: {w1.min():%Y-%m-%d} to {w1.max():%Y-%m-%d})" in fz.scoring, fz.scoring
    assert "window 0" not in fz.scoring and fz.scoring.endswith("on the same window")
    # trained before every window: both are fair, and the note counts them in the plural (it said 'window(s)')
    both = frozen_candidate(prod, td, kind="network", trained_until=prod.forecasts["cutoff"].min(), horizon=H,
                            n_windows=W, step=H)
    assert both is not None and "on the 2 backtest windows after its training data ended" in both.scoring, both.scoring
    assert both.scoring.endswith("on the same windows")
    assert frozen_candidate(prod, td, kind="network", trained_until=datetime(2100, 1, 1), horizon=H, n_windows=W,
                            step=H) is None  # trained on everything: nothing is fair
    cands, _, _ = _evaluate([CandidateSpec("damped", "statistical", [("damped", ["damped"])])], _components(td), td)
    paired = paired_scores([*cands, fz], fz, "mae")
    damped_w1 = cands[0].result.metrics.filter(pl.col("window") == 1)["mae"].mean()
    assert paired["damped"] == pytest.approx(damped_w1) and paired["production"] == pytest.approx(2.0)


def test_the_production_recipe_refit_reuses_this_runs_members():
    recipe = {"components": [{"type": "network", "cell": "gru", "seed": 0, "path": "members/gru-s0"},
                             {"type": "network", "cell": "rnn", "seed": 1, "path": "members/rnn-s1"},
                             {"type": "statistical", "model": "theta"}], "weights": [0.5, 0.25, 0.25]}
    spec, to_train = incumbent_spec(recipe, {("gru", 0): "gru-s0"}, "hybrid")
    assert spec.groups == [("gru-s0", ["gru-s0"]), ("rnn-s1-production", ["rnn-s1-production"]),
                           ("theta", ["theta"])]
    assert spec.fixed == [0.5, 0.25, 0.25] and to_train == [("rnn", 1, "rnn-s1-production")]


def test_a_network_trained_once_is_calibrated_on_the_oldest_window(td):
    """A network forecasts the later windows with weights that have not seen the periods in between
    (here: 10x its error on the oldest window); the published one is trained on all data, so its
    intervals come from the oldest window. The same forecasts as a statistical model (refit at
    every cutoff) or a network backtested with refit calibrate on every window."""
    short_cut = int(td.frame.group_by("unique_id").len()["len"].max()) - H * W
    fit = _oracle(td, lambda n: 1.0 if n == short_cut else 10.0)
    comps = _components(td, net=fit)
    comps["refitted"] = backtest(td, fit, name="refitted", n_windows=W, refit=True)
    specs = [CandidateSpec("net", "network", [("net", ["net"])], networks=frozenset({"net"})),
             CandidateSpec("same", "statistical", [("net", ["net"])]),
             CandidateSpec("refitted", "network", [("refitted", ["refitted"])], networks=frozenset({"refitted"}))]
    res, _, _ = _evaluate(specs, comps, td)
    by = {r.name: r for r in res}
    q_net, q_stat, q_refit = (by[n].calibration["q"]["80"] for n in ("net", "same", "refitted"))
    assert max(q_net) < min(q_stat)  # the oldest window's errors only
    assert q_refit == q_stat
    # the leaderboard's coverage: window 1 (errors x10) calibrated on window 0 covers nothing either way
    assert by["net"].intervals["coverage80"] == 0.0


def test_a_tie_goes_to_the_simpler_candidate_not_the_first_name(td):
    # a "network" that forecasts exactly what theta does: the network, the hybrid of the two and
    # theta score the same; theta, the simplest, ranks first (by name gru and hybrid came first)
    comps = _components(td, **{"gru-s0": _stat("theta")})
    specs = plan_candidates(cells=["gru"], seeds=1, base_seed=0, statistical=["naive", "theta"],
                            combination=["theta"]).specs
    cands, _, _ = _evaluate(specs, comps, td, statistical=["naive", "theta"])
    board = candidate_board(cands, "mae")
    mae = dict(zip(board["model"], board["mae"], strict=True))
    assert mae["gru"] == mae["theta"] == pytest.approx(mae["hybrid"], rel=1e-12), board
    order = board.sort("rank")["model"].to_list()
    assert order.index("theta") < order.index("gru") < order.index("hybrid"), order


def test_tied_statistical_models_rank_the_one_with_fewer_parameters_first(td):
    """A brand-new dataset's backtest cuts every series at its first point, where damped and theta forecast as naive
    does: all tie, and damped (first by name) published a trend fitted on 3 points that nothing had scored. Naive,
    the simplest, ranks first; then seasonal naive, theta, damped."""
    comps = {s: backtest(td, _stat("naive"), name=s, n_windows=W) for s in ("damped", "naive", "seasonal_naive",
                                                                             "theta")}
    specs = [CandidateSpec(s, "statistical", [(s, [s])]) for s in ("damped", "theta", "seasonal_naive", "naive")]
    cands, _, _ = _evaluate(specs, comps, td)
    board = candidate_board(cands, "mae")
    assert board["mae"].n_unique() == 1, board
    assert board.sort("rank")["model"].to_list() == ["naive", "seasonal_naive", "theta", "damped"]


def test_tied_intermittent_models_rank_by_fitted_parameters_not_by_name(td):
    """croston (alpha fixed) fits nothing, adida one alpha, tsb two: tied (a backtest of series with no demand at
    the cuts, where each forecasts the last value), they rank in that order after naive, where they ranked by name
    (adida, croston, tsb) behind every model the tie-break knew."""
    names = ("tsb", "adida", "croston", "naive", "arima")
    comps = {s: backtest(td, _stat("naive"), name=s, n_windows=W) for s in names}
    specs = [CandidateSpec(s, "statistical", [(s, [s])]) for s in names]
    cands, _, _ = _evaluate(specs, comps, td)
    board = candidate_board(cands, "mae")
    assert board["mae"].n_unique() == 1, board
    assert board.sort("rank")["model"].to_list() == ["naive", "croston", "adida", "tsb", "arima"]


def test_backtest_forecasts_beyond_a_declared_bound_are_cut_at_it_not_fallen_back(td):
    """Regression: a network forecasting below the declared y_min on one series was scored on its fallback's
    rows for that series (a flat or trended statistical model); its rows are now cut at the bound and scored as
    its own, as the published forecasts are (`within_bounds`), and its fallback share stays 0."""
    floor = 70.0  # s0..s1 run below it over the backtest windows
    low = _oracle(td, lambda n: -40.0)  # far below the truth: under the floor on every series
    comps = _components(td, **{"gru-s0": low})
    specs = [CandidateSpec("gru", "network", [("gru", ["gru-s0"])], networks=frozenset({"gru"}))]
    (gru,), _, _ = _evaluate(specs, comps, td, bounds=(floor, None))
    assert gru.eligible and gru.fallback_pairs == 0
    raw = comps["gru-s0"].forecasts.select("unique_id", "ds", pl.col("y_hat").alias("raw"))
    got = gru.result.forecasts.join(raw, on=["unique_id", "ds"])
    assert got.height == raw.height and (got["raw"] < floor).any()
    assert got["y_hat"].to_list() == pytest.approx([max(v, floor) for v in got["raw"].to_list()])


def test_mase_ranked_learned_weights_and_scores_are_unchanged_by_the_rmsse_scale(td):
    """Pinned from the code before the one-step scale was added (main at 8a8714e): a MASE- or sMAPE-ranked
    combination's weights, per window and published, and its scores are bit-identical (M3 and us_employment
    rank on MASE)."""
    spec = CandidateSpec("comb", "statistical", [(s, [s]) for s in ("naive", "seasonal_naive", "theta", "damped")],
                         "learned")
    comps = _components(td)
    for metric in ("mase", "smape"):
        (comb,), _, _ = _evaluate([spec], comps, td, metric=metric)
        assert comb.weights == [0.1, 0.0, 0.2, 0.7]
        assert comb.weights_by_window == {0: [0.25, 0.25, 0.25, 0.25], 1: [0.1, 0.0, 0.2, 0.7]}
        assert (comb.result.summary["mase"], comb.result.summary["rmsse"], comb.result.summary["smape"]) == (
            0.3700999241115068, 0.16172971740935832, 0.9413259483089185)


def _per_series_oracle(full, shift):
    """The true future of `full` plus a known error per series."""
    truth = full.frame.select("unique_id", "ds", "y")

    def fit(_td):
        def forecast(cut):
            fut = cut.future_frame(H).select("unique_id", "ds", "step")
            return fut.join(truth, on=["unique_id", "ds"]).select(
                "unique_id", "ds", "step", (pl.col("y") + pl.col("unique_id").replace_strict(shift)).alias("y_hat"))
        return forecast

    return fit


def test_rmsse_ranked_weights_are_fitted_on_each_series_rmsse_scale_at_its_cutoff():
    """Series A zigzags (10 a step, 1 a season of 4: MASE scale 1, RMSSE's about 10), series B climbs 1 a day
    (MASE scale 4, RMSSE's 1). a is exact on A and off by 4 on B; b exact on B and off by 2 on A. On MASE's scale
    A's errors weigh most and every weight goes to a; on RMSSE's (what the board ranks on) B's do and they go to
    b, which scores the lower RMSSE on the very windows the weights were fitted on."""
    t = np.arange(40)
    series = {"A": list(100 + 10 * (t % 2) + 0.25 * t), "B": list(50 + 1.0 * t)}
    full = build_td(series, horizon=H, season_length=4)
    comps = _components(full, **{"a-s0": _per_series_oracle(full, {"A": 0.0, "B": 4.0}),
                                 "b-s0": _per_series_oracle(full, {"A": 2.0, "B": 0.0})})
    spec = CandidateSpec("ensemble", "ensemble", [("a", ["a-s0"]), ("b", ["b-s0"])], "learned",
                         networks=frozenset({"a", "b"}))
    (by_mase,), _, _ = _evaluate([spec], comps, full, metric="mase")
    (by_rmsse,), _, _ = _evaluate([spec], comps, full, metric="rmsse")
    assert by_mase.weights == [1.0, 0.0] and by_mase.weights_by_window[1] == [1.0, 0.0]
    assert by_rmsse.weights == [0.0, 1.0] and by_rmsse.weights_by_window[1] == [0.0, 1.0]

    def fixed(w):  # the same two models with the weights held fixed on every window, scored by the board
        s = CandidateSpec("ensemble", "ensemble", spec.groups, "fixed", w, networks=spec.networks)
        (r,), _, _ = _evaluate([s], comps, full, metric="rmsse")
        return r.result.summary["rmsse"]

    assert fixed(by_rmsse.weights) < fixed(by_mase.weights)
    # A's RMSSE scale (~10) is what b's error of 2 is measured against, B's (1) a's error of 4
    assert fixed(by_rmsse.weights) == pytest.approx(fixed([0.0, 1.0])) and fixed([0.0, 1.0]) < 0.2
    assert fixed([1.0, 0.0]) == pytest.approx(2.0)
    assert by_rmsse.result.summary["rmsse"] < by_mase.result.summary["rmsse"]


def test_backtest_scales_carry_the_rmsse_scale_of_the_history_up_to_each_cutoff_only():
    """The one-step scale the RMSSE weights are fitted on is each window's own: a series calm up to the cutoffs
    and wild after them keeps its calm scale (1), and the later window's is measured on its longer history."""
    calm = list(np.arange(32, dtype=float))  # steps of 1 up to window 0's cutoff (32 points)
    series = {"x": calm + [31.0, 41.0, 31.0, 41.0, 31.0, 41.0, 31.0, 41.0]}  # then steps of 10
    full = build_td(series, horizon=H, season_length=4)
    sc = backtest_scales(_base_rows(_components(full), ["naive"]), full).sort("cutoff")
    diffs = np.diff(np.asarray(series["x"]))
    assert sc["scale_sq"].to_list() == pytest.approx([1.0, (31 * 1 + 0 + 3 * 100) / 35])  # 32 and 36 points
    assert sc["scale_sq"][1] == pytest.approx(float((diffs[:35] ** 2).mean()))


@pytest.mark.parametrize(("n_windows", "blank"), [(1, True), (W, False)])
def test_a_one_window_backtest_says_why_its_coverage95_and_msis_are_blank(td, n_windows, blank):
    """Regression: with one backtest window the leaderboard's coverage95 and msis cells were blank, nothing saying
    why. Its 5 series are cross-calibrated half on half (2 or 3 series x 4 steps: under the 19 points a 95% conformal
    quantile needs); each candidate carries the reason, and the board's blank cells are exactly the ones it names."""
    stats = ["naive", "seasonal_naive", "theta", "damped"]
    comps = {s: backtest(td, _stat(s), name=s, n_windows=n_windows) for s in stats}
    plan = plan_candidates(cells=[], seeds=1, base_seed=0, statistical=stats, combination=["theta", "damped"])
    cands, _, _ = _evaluate(plan.specs, comps, td, n_windows=n_windows)
    board = candidate_board(cands, "mae")
    if not blank:
        assert all(c.intervals_note == "" for c in cands)
        assert board["coverage95"].null_count() == 0
        return
    assert board["coverage95"].null_count() == board.height and board["msis"].null_count() == board.height
    assert board["coverage80"].null_count() == 0
    assert {c.intervals_note for c in cands} == {
        ("cov95 and MSIS are blank: the backtest has one window, so its intervals are checked by splitting its 5 "
        "series in two halves, each calibrated on the other half's points: 8 and 12 points, fewer than a 95% interval "
        "needs (a conformal interval needs 4 for 80%, 19 for 95%); more series, or histories long enough for a second "
        "backtest window ([evaluation] n_windows), fill them")}


@pytest.mark.parametrize(("ys", "twin"), [
    (float_noise.sine(49), float_noise.exact(float_noise.sine(7), 49)),  # repeats every 7 up to float noise
    (float_noise.detrended([7.0], 49), float_noise.exact([7.0], 49)),  # constant up to float noise
], ids=["sine", "constant"])
@pytest.mark.parametrize("metric", ["mase", "rmsse"])
def test_a_float_noise_repeat_weighs_and_scores_on_the_board_as_its_exact_twin(ys, twin, metric):
    """Regression: 100 + 10 sin(2 pi t / 7) repeats itself up to float noise: its MASE scale (~8e-15) made its
    backtest errors weigh ~1e14 times the others' in the learned weights and its MASE ~1e14 on the board. Its
    scales are 0 now, as its exact twin's (the level stand-in for the weights and intervals; no MASE, nor RMSSE for
    a constant): the same weights, the same board and the same backtest scales."""
    assert float_noise.differs(ys, twin)
    spec = CandidateSpec("comb", "statistical", [(s, [s]) for s in ("naive", "seasonal_naive", "theta", "damped")],
                         "learned")

    def board(p: list[float]):
        t = np.arange(49)
        series = {"s0": list(50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 7)), "s1": float_noise.noisy(49), "p": p}
        full = build_td(series, horizon=H, season_length=7)
        comps = _components(full)
        (comb,), _, _ = _evaluate([spec], comps, full, metric=metric)
        return comb, backtest_scales(_base_rows(comps, ["naive"]), full).sort("unique_id", "cutoff")

    got, got_scales = board(ys)
    want, want_scales = board(twin)
    assert got.weights == want.weights and got.weights_by_window == want.weights_by_window
    for m in ("mase", "rmsse", "smape"):
        assert got.result.summary[m] == pytest.approx(want.result.summary[m], rel=1e-9)
    assert got.result.summary["mase"] < 10  # not ~1e14
    assert got_scales["level_scaled"].to_list() == want_scales["level_scaled"].to_list()
    for c in ("scale", "scale_sq"):
        assert got_scales[c].to_list() == pytest.approx(want_scales[c].to_list(), rel=1e-9)


def test_only_the_seasonal_naive_calibrates_widths_that_grow_by_the_season():
    """The seasonal naive's error one season back is the same at every step of a season (10-minute data with a
    daily cycle: its pooled 80% widths grew as sqrt(h) from 0.23 to 2.7 scales over a day of steps while its
    errors stayed about 1.4): its calibration follows the data's season (`conformal.growth`, flat within a
    season); every other candidate's errors grow within a season and keep sqrt(h) (season 1)."""
    td = build_td(_series(), horizon=H, season_length=4)
    specs = [CandidateSpec(s, "statistical", [(s, [s])]) for s in ("naive", "seasonal_naive", "damped")]
    results, _, _ = _evaluate(specs, _components(td), td)
    got = {r.name: r.calibration["season_length"] for r in results}
    assert got == {"naive": 1, "seasonal_naive": 4, "damped": 1}
    sn = next(r for r in results if r.name == "seasonal_naive").calibration
    assert sn["q"]["80"] == [sn["q"]["80"][0]] * H  # 10 points a step: pooled, flat within the season of 4


@pytest.fixture
def seasonal_mean(monkeypatch):
    """A new statistical model that declares seasonal error growth (`recipes.ERROR_GROWTH`) under a name no code
    checks for."""
    monkeypatch.setitem(recipes.ERROR_GROWTH, "seasonal_mean", recipes.SEASONAL)
    return "seasonal_mean"


@pytest.mark.parametrize(("groups", "networks", "season"), [
    ([("seasonal_naive", ["seasonal_naive"])], (), 4),
    ([("seasonal_mean", ["seasonal_mean"])], (), 4),  # declared, not named seasonal_naive
    ([("seasonal_naive", ["seasonal_naive"]), ("seasonal_mean", ["seasonal_mean"])], (), 4),  # all seasonal
    ([("seasonal_naive", ["seasonal_naive"]), ("theta", ["theta"])], (), 1),  # a mix
    ([("gru", ["gru-s0"]), ("seasonal_naive", ["seasonal_naive"])], ("gru",), 1),  # a hybrid
    ([("gru", ["gru-s0", "gru-s1"])], ("gru",), 1),  # a network's seeds
    ([("croston", ["croston"])], (), 1),  # an intermittent model
    ([("naive", ["naive"])], (), 1),
])
def test_growth_season_follows_the_models_declared_growth(td, seasonal_mean, groups, networks, season):
    spec = CandidateSpec("c", "statistical", groups, "learned" if len(groups) > 1 else "single",
                         networks=frozenset(networks))
    assert growth_season(spec, td) == season


@pytest.mark.parametrize(("models", "season"), [(["seasonal_naive", "seasonal_mean"], 4),
                                                (["seasonal_mean"], 4), (["seasonal_naive", "naive"], 1)])
def test_the_production_recipe_refit_follows_its_models_growth(td, seasonal_mean, models, season):
    recipe = {"kind": "statistical", "components": [{"type": "statistical", "model": m} for m in models]}
    spec, _ = incumbent_spec(recipe, {}, "statistical")
    assert growth_season(spec, td) == season


def test_a_combination_of_seasonal_models_alone_calibrates_by_the_season(td, seasonal_mean):
    """comb of the seasonal naive and a new model declaring seasonal growth is calibrated with the data's season
    (flat within it); the same combination with theta in it, a mix, keeps sqrt(h) (season 1)."""
    comps = _components(td, seasonal_mean=_stat("seasonal_naive"))
    specs = [CandidateSpec("comb", "statistical", [(s, [s]) for s in ("seasonal_naive", "seasonal_mean")], "learned"),
             CandidateSpec("mix", "statistical", [(s, [s]) for s in ("seasonal_naive", "theta")], "learned")]
    results, _, _ = _evaluate(specs, comps, td)
    got = {r.name: r.calibration["season_length"] for r in results}
    assert got == {"comb": 4, "mix": 1}
    comb = next(r for r in results if r.name == "comb").calibration
    assert comb["q"]["80"] == [comb["q"]["80"][0]] * H  # pooled, flat within the season of 4


def test_series_too_short_for_the_backtest_are_calibrated_on_their_own_short_cuts():
    """shortiv53b: new series of 1-4 values (counts of 0-50) beside long ones take no part in the backtest, so their
    widths were the long series' (errors of a slow random walk in its MASE scale): their 80% intervals covered about
    half of the next values. Calibrated on the short series' own cuts, in levels, by history, they cover; a series
    as long as the backtest's span keeps the backtest's widths exactly."""
    from flowcast.evaluation.conformal import apply_intervals, calibrate, series_scale

    rng = np.random.default_rng(53)
    n, need = 800, 13
    draws = rng.integers(0, 51, (n, 5)).astype(float)
    lengths = 1 + np.arange(n) % 4
    series = {f"s{i:04d}": list(draws[i, :lengths[i]]) for i in range(n)}
    walk = 100 * np.exp(np.cumsum(0.05 * rng.standard_normal(40)))
    series["long"] = list(walk)
    td = build_td(series, horizon=1)
    # the backtest's calibration on the long series: a model whose one-step errors are about half a MASE scale
    steps = 0.02 * rng.standard_normal(200)
    backtest = pl.DataFrame({"step": [1] * 200, "y": steps, "y_hat": [0.0] * 200, "scale": [0.04] * 200})
    cal = calibrate(backtest, 1)
    before = dict(cal)
    note = add_short_calibration([cal, None], td, need, 1)
    assert note.startswith(f"{n} series shorter than the backtest's 13 periods take no part in it"), note
    assert cal["short"]["below"] == need and before["q"] == cal["q"]
    ids = list(series)
    scale = series_scale(td.frame.select("unique_id", "ds", "y"), 1, constant=True,
                         unmeasured=[u for u, k in zip(ids, lengths) if k == 2], borrow_only=True)
    fc = pl.DataFrame({"unique_id": ids, "step": [1] * len(ids), "y_hat": [series[u][-1] for u in ids],
                       "y": [*(draws[i, lengths[i]] for i in range(n)), walk[-1]]})
    inside = ((pl.col("y") >= pl.col("y_hat_lo80")) & (pl.col("y") <= pl.col("y_hat_hi80"))).mean()
    old = apply_intervals(fc, before, scale).filter(pl.col("unique_id") != "long").select(inside).item()
    got = apply_intervals(fc, cal, scale)
    new = got.filter(pl.col("unique_id") != "long").select(inside).item()
    assert old < 0.6 and 0.75 <= new <= 0.9, (old, new)
    assert got.filter(pl.col("unique_id") == "long").equals(
        apply_intervals(fc, before, scale).filter(pl.col("unique_id") == "long"))


def test_a_calibration_in_levels_keeps_no_short_part():
    """Widths already in levels (the backtest's own points short: `conformal.calibrate`) are left alone."""
    td = build_td({f"s{i}": [float(i % 7), float(i % 5)] for i in range(120)}, horizon=1)
    cal = {"scale": "level", "q": {"80": [1.0]}}
    assert add_short_calibration([cal], td, 13, 1) == ""
    assert "short" not in cal


def test_a_kept_production_models_registered_calibrations_take_this_runs_short_part():
    """fixE53: `build(PRODUCTION)` kept the registered intervals, so its short series got the backtest's widths while the
    note said they had their own. The run's short part goes to each registered calibration not in levels."""
    from flowcast.evaluation.conformal import calibrate

    td = build_td({f"s{i}": [float(i % 7), float(i % 5)] for i in range(120)}
                  | {"long": [float(v % 9) for v in range(40)]}, horizon=1)
    rng = np.random.default_rng(3)
    cal = calibrate(pl.DataFrame({"step": [1] * 200, "y": 0.02 * rng.standard_normal(200), "y_hat": [0.0] * 200,
                                  "scale": [0.04] * 200}), 1)
    assert add_short_calibration([cal], td, 13, 1)
    short = short_part([None, {"scale": "level", "q": {}}, cal])
    assert short is cal["short"]
    registered = {"theta": {"q": {"80": [1.0]}}, "naive": {"scale": "level", "q": {"80": [2.0]}}}
    assert give_short(registered.values(), short)
    assert registered["theta"]["short"] is short and "short" not in registered["naive"]
    assert not give_short([{"q": {}}], None) and short_part([None, {"q": {}}]) is None


def test_short_series_of_a_trend_model_are_calibrated_on_its_own_forecasts_from_the_cuts():
    """short54: a 3-4 point series published by theta took naive's short-cut widths around theta's forecast. Where
    the model forecasts enough cuts of `SHORT_HISTORY` values or more, its calibration's short part is made from its
    own forecasts there; a maker without enough (or a network's, None) takes naive's, and the note says which."""
    rng = np.random.default_rng(54)
    series = {}
    for i in range(120):  # steady trends of 20% of the level a day, 1% noise: naive misses by the trend, theta less
        level = 10.0 * (1 + i % 7)
        series[f"s{i:03d}"] = list(level * (1 + 0.2 * np.arange(5)) * (1 + 0.01 * rng.standard_normal(5)))
    td = build_td(series, horizon=2)
    theta, naive, net = ({"q": {"80": [1.0, 1.5], "95": [2.0, 3.0]}} for _ in range(3))
    note = add_short_calibration([theta, naive, net], td, 13, 2,
                                 makers=[("theta", (["theta"], [1.0])), ("naive", (["naive"], [1.0])), ("rnn", None)])
    assert theta["short"]["model"] == "theta" and naive["short"]["model"] == "naive" and net["short"] is naive["short"]
    assert theta["short"]["groups"][0]["history"] == 3  # (shorter ones are published by naive)

    def step1(part: dict, lv: str) -> float:
        return float(part["groups"][-1]["calibration"]["q"][lv][0])

    assert step1(theta["short"], "80") < 0.7 * step1(naive["short"], "80")  # theta's errors (0.10 levels), not naive's (0.17)
    assert "theta calibrates them on its own forecasts from those cuts instead" in note, note
    assert short_part([naive, theta], "theta") is theta["short"]
    assert short_part([theta, naive], "damped") is naive["short"]  # no part of its own: naive's
    # 3-point series: no cut of 3 values has a later one, so theta has none of its own and takes naive's
    few = build_td({k: v[:3] for k, v in series.items()}, horizon=2)
    theta3, naive3 = ({"q": {"80": [1.0, 1.5], "95": [2.0, 3.0]}} for _ in range(2))
    note = add_short_calibration([theta3, naive3], few, 13, 2, makers=[("theta", (["theta"], [1.0])), ("naive", None)])
    assert theta3["short"] is naive3["short"] and naive3["short"]["model"] == "naive"
    assert "theta takes naive's: its own forecasts from the cuts of 3 values or more were fewer than 50" in note, note


def _trends(n: int = 120, length: int = 5) -> dict[str, list[float]]:
    """`n` short series of steady trends (20% of the level a step, 1% noise): theta's forecasts beat naive's."""
    rng = np.random.default_rng(54)
    return {f"s{i:03d}": list(10.0 * (1 + i % 7) * (1 + 0.2 * np.arange(length))
                              * (1 + 0.01 * rng.standard_normal(length))) for i in range(n)}


@pytest.mark.parametrize("weights", [[0.0, 1.0], [0.5, 0.5]])
def test_a_combination_with_naive_in_it_is_calibrated_on_its_own_forecasts_from_the_short_cuts(weights):
    """fixF54: naive's forecasts from the cuts were seeded as an empty frame, so a candidate with naive in its makeup
    (evaluation.combination = ["naive", "theta"]) raised ColumnNotFoundError "__key", at weight 0 too: a retrain with
    short series died. naive is refit at the cuts as every model is."""
    td = build_td(_trends(), horizon=2)
    comb, theta = ({"q": {"80": [1.0, 1.5], "95": [2.0, 3.0]}} for _ in range(2))
    note = add_short_calibration([comb, theta], td, 13, 2, makers=[("comb", (["naive", "theta"], weights)),
                                                                     ("theta", (["theta"], [1.0]))])
    assert comb["short"]["model"] == "comb" and theta["short"]["model"] == "theta", note
    q = [float(c["short"]["groups"][-1]["calibration"]["q"]["80"][0]) for c in (comb, theta)]
    assert (q[0] == q[1]) if weights[0] == 0 else (q[0] != q[1]), q  # weight 0: theta's own forecasts exactly


def test_candidates_of_one_makeup_each_take_a_short_part_of_their_own_name():
    """fixF54: a part shared by makeup was labelled with the first candidate's name, so the production refit of a
    theta recipe said 'production' and `short_part(..., "theta")` found none for theta: naive's. And a kept
    production model took the part of the candidate of its recipe's name (another comb's, or naive's where this run
    had none): its own is the production candidate's (`give_kept_short`)."""
    from flowcast.evaluation.candidates import give_kept_short

    td = build_td(_trends(), horizon=2)
    prod, theta, naive = ({"q": {"80": [1.0, 1.5], "95": [2.0, 3.0]}} for _ in range(3))
    add_short_calibration([prod, theta, naive], td, 13, 2, makers=[
        ("production", (["theta"], [1.0])), ("theta", (["theta"], [1.0])), ("naive", (["naive"], [1.0]))])
    assert prod["short"]["model"] == "production" and theta["short"]["model"] == "theta"
    assert short_part([prod, theta, naive], "theta") is theta["short"]
    assert prod["short"]["groups"] == theta["short"]["groups"]  # (one refit of theta at the cuts serves both)
    # a kept theta recipe (named so), this run with no theta candidate: its own is the production candidate's part
    registered = {"theta": {"q": {"80": [1.0, 1.5]}}, "naive": {"q": {"80": [2.0, 3.0]}}}
    give_kept_short(registered, "theta", prod, [prod, naive])
    assert registered["theta"]["short"] is prod["short"] and registered["naive"]["short"] is naive["short"]
    assert naive["short"]["model"] == "naive"
    # a production candidate without a part of its own (a network's): naive's
    registered = {"theta": {"q": {"80": [1.0, 1.5]}}}
    give_kept_short(registered, "theta", None, [theta, naive])
    assert registered["theta"]["short"] is naive["short"]


def test_the_models_are_refit_on_at_most_a_budget_of_cuts_of_each_history(monkeypatch):
    """fixF54: each model was refit at every short cut (10,000 series of span 60: damped 361 s, arima over 15
    minutes); at most `SHORT_CUT_BUDGET` of each history are, sampled evenly by id, and the note says how many."""
    from flowcast.evaluation import candidates
    from flowcast.evaluation.candidates import evenly_by_history, evenly_spaced

    assert evenly_spaced(5, 10).tolist() == [0, 1, 2, 3, 4] and evenly_spaced(10, 3).tolist() == [0, 4, 9]
    cuts = pl.DataFrame({"unique_id": [f"s{i}" for i in range(10)] * 2, "cutoff": [1] * 10 + [2] * 10,
                         "history": [1] * 10 + [2] * 10, "step": [1] * 20})
    kept = evenly_by_history(cuts, 3)
    assert kept.group_by("history").len().sort("history")["len"].to_list() == [3, 3]
    assert kept.filter(pl.col("history") == 1)["unique_id"].sort().to_list() == ["s0", "s4", "s9"]
    assert evenly_by_history(cuts, 10).equals(cuts)
    td = build_td(_trends(), horizon=2)
    monkeypatch.setattr(candidates, "SHORT_CUT_BUDGET", 60)
    theta = {"q": {"80": [1.0, 1.5], "95": [2.0, 3.0]}}
    note = add_short_calibration([theta], td, 13, 2, makers=[("theta", (["theta"], [1.0]))])
    assert theta["short"]["model"] == "theta", note
    # 120 series x 4 cuts (histories 1-4): 60 of each history
    assert "own forecasts from those cuts instead (240 of the 480 cuts, at most 60 of each history, sampled evenly " \
           "by id)" in note, note


def test_the_forecasts_from_the_short_cuts_are_cut_at_the_bounds_as_published_ones_are():
    """fixF54: a count falling fast was calibrated on theta's forecasts below 0 from its cuts, which publishing cuts
    at y_min 0 (`within_bounds`): the cuts' forecasts are cut there too."""
    from flowcast.evaluation.candidates import _cut_forecasts
    from flowcast.evaluation.conformal import short_cuts

    td = build_td({f"s{i}": [100.0, 60.0, 30.0, 8.0, 1.0] for i in range(3)}, horizon=2)
    cuts = short_cuts(td.frame.select("unique_id", "ds", "y"), 13, 2)
    free = _cut_forecasts(td, cuts, ["theta"], [1.0], 2, {})
    cut = _cut_forecasts(td, cuts, ["theta"], [1.0], 2, {}, (0.0, None))
    assert free["y_hat"].min() < 0 and cut["y_hat"].min() == 0.0, (free, cut)
    assert cut.height == free.height


def test_statistical_makeup_names_the_models_and_weights_a_candidate_forecasts_with():
    spec = CandidateSpec("comb", "statistical", [("theta", ["theta"]), ("damped", ["damped"])], "learned")
    assert statistical_makeup(CandidateResult(spec=spec, result=None, weights=[0.25, 0.75])) == (  # type: ignore[arg-type]
        ["theta", "damped"], [0.25, 0.75])
    net = CandidateSpec("hybrid", "hybrid", [("rnn", ["rnn-s0"]), ("theta", ["theta"])], "learned",
                        networks=frozenset({"rnn"}))
    assert statistical_makeup(CandidateResult(spec=net, result=None, weights=[0.5, 0.5])) is None  # type: ignore[arg-type]
    # glin is fitted on every series at once: refit on the short cuts alone it is another model (rev54b)
    pooled = CandidateSpec("comb", "statistical", [("glin", ["glin"]), ("theta", ["theta"])], "learned")
    assert statistical_makeup(CandidateResult(spec=pooled, result=None, weights=[0.5, 0.5])) is None  # type: ignore[arg-type]
