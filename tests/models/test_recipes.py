"""`forecast_with`: one function for every kind of model, per-series fallback with the model
named per row, calibrated intervals, a NaN refit caught before it can be published."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import float_noise
import numpy as np
import polars as pl
import pytest
import torch
from model_factories import make_td, tiny_cfg

from flowcast.columns import INTERVAL_COLUMNS
from flowcast.errors import TrainingError
from flowcast.evaluation.decision import check_forecasts
from flowcast.evaluation.metrics import mase_scale
from flowcast.models.baselines import baseline_forecast
from flowcast.models.predict import predict
from flowcast.models.recipes import (
    MIN_SEASONS,
    SEASONAL,
    SQRT,
    Recipe,
    describe_recipe,
    error_growth,
    forecast_detailed,
    forecast_with,
    load_recipe,
    min_points,
    seasons_needed,
    statistical_models,
)
from flowcast.models.rnn import CELL_NAMES
from flowcast.models.train import ModelArtifact, train_model
from flowcast.registry import ModelRegistry

CAL = {"method": "conformal", "levels": [80, 95], "mode": {"80": "residual", "95": "residual"},
       "q": {"80": [0.5] * 6, "95": [1.0] * 6}}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    td = make_td(length=[40, 30, 36], horizon=6, level=50.0)
    art = train_model(td, tiny_cfg(max_steps=5), tmp_path_factory.mktemp("net") / "gru", cell="gru")
    return td, art


def test_a_statistical_recipe_forecasts_with_intervals():
    td = make_td(horizon=6)
    r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
               weights=[1.0], intervals={"theta": CAL})
    got = forecast_with(r, td, 6)
    assert got.columns == ["unique_id", "ds", "step", "model", "y_hat", *INTERVAL_COLUMNS]
    np.testing.assert_allclose(got["y_hat"].to_numpy(), baseline_forecast("theta", td, 6)["y_hat"].to_numpy())
    assert set(got["model"]) == {"theta"}
    assert (got["y_hat_lo95"] < got["y_hat_lo80"]).all() and (got["y_hat_lo80"] < got["y_hat"]).all()
    assert (got["y_hat_hi80"] < got["y_hat_hi95"]).all()


def test_a_hybrid_is_the_weighted_sum_of_its_components(net, tmp_path):
    td, art = net
    r = Recipe(name="hybrid", kind="hybrid", weights=[0.6, 0.4], base=art.path.parent,
               components=[{"type": "network", "cell": "gru", "path": art.path.name},
                           {"type": "statistical", "model": "theta"}])
    got = forecast_with(r, td, 6)
    expected = 0.6 * predict(art, td, 6)["y_hat"].to_numpy() + 0.4 * baseline_forecast("theta", td, 6)["y_hat"].to_numpy()
    np.testing.assert_allclose(got["y_hat"].to_numpy(), expected, rtol=1e-12)
    assert got[INTERVAL_COLUMNS].null_count().row(0) == (td.n_series * 6,) * 4  # no calibration given: null
    # saved and registered, it forecasts the same through the registry
    d = tmp_path / "hyb"
    (d / "members").mkdir(parents=True)
    import shutil

    shutil.copytree(art.path, d / "members" / "gru")
    saved = Recipe(name="hybrid", kind="hybrid", weights=[0.6, 0.4], intervals={"hybrid": CAL},
                   components=[{"type": "network", "cell": "gru", "path": "members/gru"},
                               {"type": "statistical", "model": "theta"}])
    saved.save(d)
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.register(d, name="hybrid", dataset="toy", kind="hybrid",
                      recipe={k: v for k, v in saved.to_dict().items() if k != "name"}, created_at=datetime(2024, 1, 1))
    via_registry = forecast_with(mv, td, 6)
    np.testing.assert_allclose(via_registry["y_hat"].to_numpy(), expected, rtol=1e-12)
    assert via_registry["y_hat_lo80"].null_count() == 0
    assert describe_recipe(mv.recipe) == "hybrid: 0.6 x gru + 0.4 x theta; 80/95% conformal intervals"


def test_an_old_registered_network_forecasts_as_it_did(net, tmp_path):
    td, art = net
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.register(art.path, name="gru", config={}, fingerprint={"source": "toy"}, metrics={},
                      as_of=None, created_at=datetime(2024, 1, 1))  # the old call: no kind, no recipe
    got = forecast_with(mv, td, 6)
    np.testing.assert_allclose(got["y_hat"].to_numpy(), predict(art, td, 6)["y_hat"].to_numpy())
    assert load_recipe(art.path).kind == "network" and set(got["model"]) == {"gru"}


def test_a_forecast_beyond_a_declared_bound_is_cut_at_it_not_handed_to_a_flat_fallback():
    """A steep fall: damped forecasts negative values for it, below the declared y_min = 0. Regression: the whole
    series went to the next model of the fallback chain (theta fell below 0 too, so naive: a flat line at the last
    value, 6 steps of it); its forecasts are now damped's, cut at 0 (an actual at or above 0 is never further from
    the cut value), and no series falls back."""
    td = make_td(n_series=3, length=36, horizon=6, level=50.0)
    falling = td.frame.filter(pl.col("unique_id") == "s00").with_columns(
        (200.0 - 5.5 * pl.int_range(pl.len())).alias("y"))
    from dataclasses import replace

    td = replace(td, frame=pl.concat([falling, td.frame.filter(pl.col("unique_id") != "s00")]).sort("unique_id", "ds"))
    r = Recipe(name="damped", kind="statistical", components=[{"type": "statistical", "model": "damped"}],
               weights=[1.0], fallback=["theta", "naive"], intervals={"damped": CAL, "naive": CAL})
    free = forecast_detailed(r, td, 6).frame.filter(pl.col("unique_id") == "s00").sort("step")["y_hat"]
    assert free.min() < 0  # unbounded, damped goes below 0 on this series
    rf = forecast_detailed(r, td, 6, bounds=(0.0, None))
    assert rf.fallbacks.height == 0 and set(rf.frame["model"]) == {"damped"}
    got = rf.frame.filter(pl.col("unique_id") == "s00").sort("step")["y_hat"]
    assert got.to_list() == [max(v, 0.0) for v in free.to_list()]
    assert (rf.frame["y_hat"] >= 0).all() and (rf.frame["y_hat_lo95"] >= 0).all()  # intervals clipped too
    assert check_forecasts(rf.frame, expected_ids=td.ids, horizon=6, bounds=(0.0, None), fallbacks=rf.fallbacks,
                           max_fallback_share=0.5).ok


def test_a_nan_refit_never_passes_the_check(net, tmp_path):
    """A network whose refit diverged (NaN weights): every series falls back, and the check before
    promotion refuses it, naming the failure."""
    td, art = net
    bad = tmp_path / "nan-gru"
    import shutil

    shutil.copytree(art.path, bad)
    ckpt = torch.load(bad / "model.ckpt", map_location="cpu", weights_only=False)
    ckpt["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                          for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, bad / "model.ckpt")
    assert predict(ModelArtifact.load(bad), td, 6)["y_hat"].is_nan().all()
    rf = forecast_detailed(bad, td, 6)
    assert rf.fallbacks.height == td.n_series and set(rf.fallbacks["reason"]) == {"forecast not finite"}
    assert rf.frame["y_hat"].is_finite().all()  # what it would publish is the fallback's, never NaN
    check = check_forecasts(rf.frame, expected_ids=td.ids, horizon=6, fallbacks=rf.fallbacks, max_fallback_share=0.2)
    assert not check.ok and "the model failed on 3 of 3 series" in check.sentence()


def test_bad_recipes_are_refused(tmp_path):
    with pytest.raises(TrainingError, match="weights"):
        Recipe.from_dict({"components": [{"type": "statistical", "model": "theta"}], "weights": [0.5]})
    with pytest.raises(TrainingError, match="neither a network nor a statistical"):
        Recipe.from_dict({"components": [{"type": "oracle"}]})
    with pytest.raises(TrainingError, match="no model at"):
        load_recipe(tmp_path)
    (tmp_path / "recipe.json").write_text(json.dumps({"components": [{"type": "statistical", "model": "prophet"}]}))
    with pytest.raises(ValueError, match="unknown statistical model 'prophet'"):
        forecast_with(Path(tmp_path), make_td(), 6)


def test_a_short_series_gets_the_best_fallback_that_can_run_on_its_length():
    """Seasonal naive needs a season (12), theta and damped 2 points, naive 1: each short series is
    made by the first model of the fallback chain (the leaderboard's order) that runs on its length,
    its rows name it, and these by-design fallbacks do not count as failures of the model."""
    td = make_td(length=[1, 5, 13], horizon=6, level=50.0)
    r = Recipe(name="seasonal_naive", kind="statistical",
               components=[{"type": "statistical", "model": "seasonal_naive"}], weights=[1.0],
               fallback=["damped", "naive"], intervals={"seasonal_naive": CAL, "damped": CAL, "naive": CAL})
    rf = forecast_detailed(r, td, 6)
    models = dict(rf.frame.group_by("unique_id").agg(pl.col("model").unique()).select(
        "unique_id", pl.col("model").list.join(",")).rows())
    assert models == {"s00": "naive", "s01": "damped", "s02": "seasonal_naive"}
    assert rf.fallbacks.rows() == [
        ("s00", "naive", "no forecast: 1 observation, too few for seasonal_naive (it needs 12: one season)"),
        ("s01", "damped", "no forecast: 5 observations, too few for seasonal_naive (it needs 12: one season)"),
    ]
    assert rf.frame["y_hat"].is_finite().all()
    check = check_forecasts(rf.frame, expected_ids=td.ids, horizon=6, fallbacks=rf.fallbacks, max_fallback_share=0.0)
    assert check.ok and check.fallback_series == 0


def test_arima_leaves_a_single_observation_to_naive_and_says_so():
    """Regression: arima (the quarterly recipe's new member) had no minimum length, so as the champion it
    published a one-observation series' last value (no model fitted) under its own name and with its own
    calibration, where drift, theta, dotm and damped leave such a series to naive, which names it."""
    td = make_td(length=[1, 24], horizon=6, level=50.0)
    r = Recipe(name="arima", kind="statistical", components=[{"type": "statistical", "model": "arima"}],
               weights=[1.0], fallback=["naive"], intervals={"arima": CAL, "naive": CAL})
    rf = forecast_detailed(r, td, 6)
    models = dict(rf.frame.group_by("unique_id").agg(pl.col("model").unique()).select(
        "unique_id", pl.col("model").list.join(",")).rows())
    assert models == {"s00": "naive", "s01": "arima"}
    assert rf.fallbacks.rows() == [("s00", "naive", "no forecast: 1 observation, too few for arima (it needs 2)")]


def test_a_network_leaves_series_shorter_than_its_training_to_the_fallback(net, tmp_path):
    """A network trained on series of at least 20 periods (its meta's network_min_length): a
    5-point series is forecast by the fallback, the others by the network."""
    import shutil
    from dataclasses import replace

    td, art = net
    path = tmp_path / "gru"
    shutil.copytree(art.path, path)
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "network_min_length": 20}))
    short = td.frame.filter(pl.col("unique_id") == "s01").tail(5).with_columns(pl.lit("new").alias("unique_id"))
    td2 = replace(td, frame=pl.concat([td.frame, short]).sort("unique_id", "ds"),
                  scalers=pl.concat([td.scalers, td.scalers.filter(pl.col("unique_id") == "s01").with_columns(
                      pl.lit("new").alias("unique_id"))]).sort("unique_id"))
    r = load_recipe(path)
    r.fallback = ["theta", "naive"]
    rf = forecast_detailed(r, td2, 6)
    models = dict(rf.frame.group_by("unique_id").agg(pl.col("model").first()).rows())
    assert models == {"new": "theta", "s00": "gru", "s01": "gru", "s02": "gru"}


def test_a_level_the_champion_has_too_few_points_for_is_left_out_for_its_fallback_rows_too():
    """Regression: a champion calibrated on too few points for 95% (no 95% widths) with a fallback
    that has them published a 95% interval for the fallback's series only: null bounds in the other
    rows, which the forecast check rejects (a forecast run with such a production model failed).
    The level is left out for every series; the 80% interval stays."""
    td = make_td(length=[1, 24, 24], horizon=6, level=50.0)
    thin = {**CAL, "q": {"80": [0.5] * 6, "95": [None] * 6}}
    r = Recipe(name="damped", kind="statistical", components=[{"type": "statistical", "model": "damped"}],
               weights=[1.0], fallback=["naive"], intervals={"damped": thin, "naive": CAL})
    rf = forecast_detailed(r, td, 6)
    assert set(rf.frame.filter(pl.col("unique_id") == "s00")["model"]) == {"naive"}
    assert rf.frame["y_hat_lo95"].null_count() == rf.frame["y_hat_hi95"].null_count() == rf.frame.height
    assert rf.frame["y_hat_lo80"].null_count() == 0
    assert check_forecasts(rf.frame, expected_ids=td.ids, horizon=6, fallbacks=rf.fallbacks, max_fallback_share=0.5).ok


def test_a_version_whose_calibration_had_too_few_points_for_95_is_not_described_with_it(tmp_path):
    """Regression: `flowcast models list` and `models show` said '80/95% conformal intervals' of a version whose
    calibration had too few backtest points for 95% (12 of the 19 needed), whose forecasts never have a 95%
    interval."""
    from flowcast.registry import ModelRegistry

    cal = {"method": "conformal", "levels": [80, 95], "n": 12, "mode": {"80": "residual", "95": "residual"},
           "q": {"80": [1.0, 1.0], "95": [None, None]}, "too_few": {"95": {"points": 12, "need": 19}}}
    recipe = {"kind": "statistical", "components": [{"type": "statistical", "model": "damped"}], "weights": [1.0],
              "fallback": ["naive"], "intervals": {"damped": cal, "naive": {**cal, "too_few": {}}}}
    d = tmp_path / "art"
    d.mkdir()
    (d / "recipe.json").write_text(json.dumps(recipe))
    mv = ModelRegistry(tmp_path / "models").register(d, name="damped", dataset="toy", kind="statistical",
                                                    recipe=recipe, created_at=datetime(2024, 1, 1))
    # ui19: 'series it cannot forecast: naive' read as if naive were a series
    assert mv.describe() == ("statistical: damped; its fallbacks for series it cannot forecast (first that can): "
                             "naive; 80% conformal intervals "
                             "(too few backtest points for 95%)")
    both = {**recipe, "intervals": {"damped": {**cal, "too_few": {}}}}
    assert describe_recipe({"name": "damped", **both}).endswith("; 80/95% conformal intervals")


def test_a_published_model_that_uses_no_declared_covariate_says_so():
    """Regression: a source declaring future_cols = ["promo"] published damped (statistical models take no
    covariates) and nothing said the promotions were not used. The run's notes say so, and why; a model whose
    networks carry weight uses them, and a source without covariates has nothing to say."""
    from flowcast.models.recipes import covariates_note

    damped = Recipe.from_dict({"components": [{"type": "statistical", "model": "damped"}]}, name="damped")
    blend = Recipe.from_dict({"components": [{"type": "network", "cell": "gru", "path": "m"},
                                             {"type": "statistical", "model": "theta"}], "weights": [0.0, 1.0]},
                             name="hybrid")
    used = Recipe.from_dict({"components": [{"type": "network", "cell": "gru", "path": "m"},
                                            {"type": "statistical", "model": "theta"}], "weights": [0.3, 0.7]})
    assert covariates_note(damped, ["promo"], []) == (
        "The declared covariates (promo) are not used by damped, which publishes: only the networks take covariates, "
        "and no network was trained (model.cells is empty).")
    assert "the networks that do (gru) did not earn a weight in it" in covariates_note(blend, ["promo", "temp"], ["gru"])
    assert covariates_note(used, ["promo"], ["gru"]) is None and covariates_note(damped, [], ["gru"]) is None
    # ui21: the label column (us_employment's Title, the series' name) is no covariate a user declared for the model
    assert covariates_note(damped, ["Title"], ["gru"], label="Title") is None
    assert "(promo) are not used" in str(covariates_note(damped, ["Title", "promo"], ["gru"], label="Title"))


@pytest.mark.parametrize(("history", "lo80", "y_min", "said"), [
    ([0.0, 2.0, 0.0, 5.0], [-1.5, 0.5], None, "of 1 of 2 series go below 0 (lowest: b at -1.5)"),  # counts
    ([0.0, 2.0, 0.0, 5.0], [-1.5, 0.5], 0.0, None),  # declared: the intervals were cut at it
    ([-1.0, 2.0, 0.0, 5.0], [-1.5, 0.5], None, None),  # a history that went below 0 says it can
    ([0.0, 2.0, 0.0, 5.0], [0.0, 0.5], None, None),  # nothing below 0
])
def test_forecasts_below_zero_of_a_never_negative_history_name_y_min(history, lo80, y_min, said):
    """Regression: counts (every value 0 or more) were published with 80% intervals down to -4 and nothing said
    that declaring y_min = 0 cuts them at 0 (nor could a --data user declare it). The run's notes say so, naming
    the lowest series; flowcast still assumes no bound from the data."""
    from flowcast.models.recipes import below_zero_note

    hist = pl.DataFrame({"unique_id": ["a", "a", "b", "b"], "y": history})
    fc = pl.DataFrame({"unique_id": ["a", "b"], "y_hat": [2.0, 1.0], "y_hat_lo80": [lo80[1], lo80[0]],
                       "y_hat_hi80": [3.0, 4.0]})
    note = below_zero_note(hist, fc, y_min)
    if said is None:
        assert note is None
    else:
        assert note is not None and note.startswith("Every observed value is 0 or more") and said in note
        assert "declare y_min = 0 (--y-min 0, or y_min in the source's [sources.NAME])" in note


@pytest.mark.parametrize("kind", ["statistical", "combination"])
def test_a_horizon_longer_than_the_calibrated_one_widens_the_steps_beyond_it_and_says_so(kind):
    """Regression: `flowcast forecast --horizon 9` with a model calibrated on a 6-step backtest gave steps 7-9
    the 6th step's widths (the step was clipped to the calibrated ones), published as calibrated 80/95%
    intervals. Steps 1-6 keep their widths; steps 7-9 get step 6's x sqrt(h/6), and the forecast says so."""
    td = make_td(horizon=6)
    growing = {**CAL, "q": {"80": [0.5 * k for k in range(1, 7)], "95": [1.0 * k for k in range(1, 7)]}}
    if kind == "statistical":
        r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
                   weights=[1.0], intervals={"theta": growing})
    else:
        r = Recipe(name="comb", kind="statistical", components=[{"type": "statistical", "model": "theta"},
                                                             {"type": "statistical", "model": "naive"}],
                   weights=[0.5, 0.5], intervals={"comb": growing})
    six = forecast_detailed(r, td, 6)
    nine = forecast_detailed(r, td, 9)
    assert not six.interval_notes() and nine.frame[INTERVAL_COLUMNS].null_count().row(0) == (0, 0, 0, 0)
    assert nine.frame.filter(pl.col("step") <= 6).drop("ds").equals(six.frame.drop("ds"))
    half = nine.frame.with_columns((pl.col("y_hat_hi80") - pl.col("y_hat")).alias("w"))
    ratio = half.pivot(on="step", index="unique_id", values="w")
    for h in (7, 8, 9):
        np.testing.assert_allclose((ratio[str(h)] / ratio["6"]).to_numpy(), np.sqrt(h / 6), rtol=1e-9)
    assert nine.interval_notes() == [
        (f"{r.name}'s 80%/95% intervals at steps 7-9 are beyond the 6 calibrated: widened from step 6 by sqrt(h/6) "
         "(the growth of a random walk's errors), not calibrated.")]
    assert check_forecasts(nine.frame, expected_ids=td.ids, horizon=9, fallbacks=nine.fallbacks).ok


@pytest.mark.parametrize("noise", [False, True], ids=["exact", "float-noise"])
def test_series_of_a_constant_history_are_published_with_zero_width_and_said_to_be(noise):
    """Regression: a series constant at 7 was published with the 80% interval [-1.2, 15.2] and an all-zero one
    with [-1.17, 1.17] (the widths times the level, or times 1). They are the point forecast now (what
    statsforecast or fable give a model without residual variance), the others keep theirs, and the run says so;
    a declared bound still clips the rest. Values equal up to float noise ((7 + 0.1 t) - 0.1 t, 0.1 x 3 t - 0.3 t)
    are a constant history too: their MASE scale is float noise, 0."""
    import dataclasses

    td = make_td(n_series=4, length=30, horizon=3)
    flat = {"s00": 7.0, "s01": 0.0}
    t = pl.int_range(pl.len()).over("unique_id").cast(pl.Float64)
    values = {"s00": (7.0 + 0.1 * t) - 0.1 * t, "s01": 0.1 * 3 * t - 0.3 * t}
    y = pl.col("y")
    for sid, v in flat.items():
        y = pl.when(pl.col("unique_id") == sid).then(values[sid] if noise else v).otherwise(y)
    td = dataclasses.replace(td, frame=td.frame.with_columns(y.alias("y")))
    for sid, v in flat.items():
        ys = td.frame.filter(pl.col("unique_id") == sid)["y"].to_list()
        assert float_noise.differs(ys, [v] * len(ys)) == noise
    r = Recipe(name="naive", kind="statistical", components=[{"type": "statistical", "model": "naive"}],
               weights=[1.0], intervals={"naive": {**CAL, "q": {"80": [1.17] * 3, "95": [2.0] * 3}}})
    rf = forecast_detailed(r, td, 3, bounds=(0.0, None))
    got = rf.frame
    for sid, v in flat.items():
        rows = got.filter(pl.col("unique_id") == sid)
        last = td.frame.filter(pl.col("unique_id") == sid)["y"][-1]  # naive's forecast: the last value
        assert abs(last - v) < 1e-12
        assert {*rows["y_hat"], *rows["y_hat_lo80"], *rows["y_hat_hi80"], *rows["y_hat_lo95"],
                *rows["y_hat_hi95"]} == {max(last, 0.0)}
    moving = got.filter(~pl.col("unique_id").is_in(list(flat)))
    assert ((moving["y_hat_hi80"] - moving["y_hat_lo80"]) > 0).all() and (got["y_hat_lo95"] >= 0).all()
    assert rf.constant == flat
    assert rf.interval_notes() == [
        ("2 series have a constant history (s00 at 7, s01 at 0): their 80%/95% intervals have no conformal "
         "width (the point forecast, as a model without residual variance gets in statsforecast or fable): "
         "nothing in that history measures how far it may move.")]
    assert check_forecasts(got, expected_ids=td.ids, horizon=3, fallbacks=rf.fallbacks, bounds=(0.0, None)).ok


@pytest.mark.parametrize(("ys", "why"), [
    ([5.0], "1 observation"),
    ([4.0, 6.0] * 12, "repeats itself exactly every season"),
    # up to float noise: (p + 0.1 t) - 0.1 t; its MASE scale of float noise took the widths to ~1e-15
    (float_noise.detrended([4.0, 6.0], 24), "repeats itself exactly every season"),
], ids=["one", "periodic", "float-noise-periodic"])
def test_series_without_a_measured_change_are_said_to_be_scaled_by_their_level(ys, why):
    """A series whose history cannot measure its typical change (one observation; a history that repeats itself
    exactly at the season, MASE scale 0, though it moves) gets the calibrated widths times its mean |y|: a
    stand-in nothing calibrated, which the run said nothing about. It says so now."""
    import dataclasses
    from datetime import timedelta

    td = make_td(n_series=3, length=30, horizon=3, period=2)
    start = td.frame["ds"].max() - timedelta(days=31 * (len(ys) - 1))  # ends with the others
    odd = pl.DataFrame({"unique_id": "zz", "ds": pl.date_range(start, td.frame["ds"].max(), "1mo", eager=True)[-len(ys):],
                        "y": ys})
    frame = pl.concat([td.frame, odd.with_columns(pl.col("ds").cast(td.frame["ds"].dtype))], how="diagonal_relaxed")
    td = dataclasses.replace(td, frame=frame.sort("unique_id", "ds"))
    r = Recipe(name="naive", kind="statistical", components=[{"type": "statistical", "model": "naive"}],
               weights=[1.0], intervals={"naive": CAL})
    rf = forecast_detailed(r, td, 3)
    zz = rf.frame.filter(pl.col("unique_id") == "zz")
    # its level times the others' typical change relative to theirs (median of scale / mean |y|): its level alone
    # gave a one-point series at 300 beside series moving 2% a month a 95% interval of [-688, 1288]
    others = td.frame.filter(pl.col("unique_id") != "zz")
    measured = mase_scale(others.select("unique_id", "ds", "y"), td.meta.season_length).join(
        others.group_by("unique_id").agg(pl.col("y").abs().mean().alias("level")), on="unique_id")
    relative = float(np.median((measured["scale"] / measured["level"]).to_numpy()))
    assert 0 < relative < 1
    np.testing.assert_allclose((zz["y_hat_hi80"] - zz["y_hat"]).to_numpy(),
                               0.5 * float(np.mean(np.abs(ys))) * relative)
    assert rf.interval_notes() == [
        (f"1 series has no measured typical change to scale its widths by (zz: {why}): its 80%/95% widths "
         "are the calibrated multiples of its mean |y| times the other series' typical change relative to their "
         "level instead, a stand-in nothing calibrated.")]


@pytest.mark.parametrize(("ys", "why"), [([5.0], "1 observation"), ([4.0, 6.0] * 12, "repeats itself exactly")])
def test_a_calibration_in_levels_says_no_series_is_scaled_by_an_uncalibrated_stand_in(ys, why):
    """Regression: widths calibrated in levels (`calibrate`'s scale 'level': a backtest of one-point histories) are
    applied to every series in its mean |y|, the unit they were calibrated in; the notes still said of each series
    without a measured change ('{why}') that its widths were 'its mean |y| times the other series' typical change
    relative to their level instead, a stand-in nothing calibrated', which is neither what was published nor true."""
    import dataclasses
    from datetime import timedelta

    td = make_td(n_series=3, length=30, horizon=3, period=2)
    start = td.frame["ds"].max() - timedelta(days=31 * (len(ys) - 1))
    odd = pl.DataFrame({"unique_id": "zz", "ds": pl.date_range(start, td.frame["ds"].max(), "1mo", eager=True)[-len(ys):],
                        "y": ys})
    frame = pl.concat([td.frame, odd.with_columns(pl.col("ds").cast(td.frame["ds"].dtype))], how="diagonal_relaxed")
    td = dataclasses.replace(td, frame=frame.sort("unique_id", "ds"))
    r = Recipe(name="naive", kind="statistical", components=[{"type": "statistical", "model": "naive"}],
               weights=[1.0], intervals={"naive": {**CAL, "scale": "level"}})
    rf = forecast_detailed(r, td, 3)
    zz = rf.frame.filter(pl.col("unique_id") == "zz")
    np.testing.assert_allclose((zz["y_hat_hi80"] - zz["y_hat"]).to_numpy(), 0.5 * float(np.mean(np.abs(ys))))
    assert rf.interval_notes() == []


@pytest.mark.parametrize("weights", [[1.0], [0.25, 0.75]])
def test_saving_a_recipe_replaces_the_file_whole_never_rewrites_it_in_place(tmp_path, weights):
    """Regression: Recipe.save truncated recipe.json and wrote it in place, so a kill or a full disk mid-write left a
    torn recipe (and a reader holding the old file read the new half-written one). It writes a temp file and
    renames it: the old file stays whole for whoever holds it, the new one is whole, no temp file is left."""
    comps = [{"type": "statistical", "model": m} for m in ("theta", "ets")[: len(weights)]]
    Recipe(name="old", kind="statistical", components=comps, weights=weights).save(tmp_path)
    with (tmp_path / "recipe.json").open() as held:
        Recipe(name="new", kind="statistical", components=comps, weights=weights).save(tmp_path)
        assert json.loads(held.read())["name"] == "old"
    assert json.loads((tmp_path / "recipe.json").read_text())["name"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.json"]


@pytest.mark.parametrize(("fallbacks", "who", "said"), [
    ([("one", "naive")], "it",
     "1 series it cannot forecast was forecast by its fallback: 1 by naive (one: too few observations)"),
    ([("a", "naive"), ("b", "theta"), ("c", "naive")], "damped",
     ("3 series damped cannot forecast were forecast by its fallback: 2 by naive, 1 by theta (a: too few "
     "observations; b: too few observations; c: too few observations)")),
    ([("a", "naive"), ("b", "theta"), ("c", "naive"), ("d", "naive")], "it",
     ("4 series it cannot forecast were forecast by its fallback: 3 by naive, 1 by theta (e.g. a: too few "
     "observations; b: too few observations; c: too few observations)")),
    # an id holding a comma or a ';' is quoted: 'north, east' read as two series (newuser43)
    ([("north, east", "naive"), ("a;b", "naive")], "it",
     ("2 series it cannot forecast were forecast by its fallback: 2 by naive ('north, east': too few observations; "
      "'a;b': too few observations)")),
])
def test_the_fallback_note_counts_one_series_in_the_singular(fallbacks, who, said):
    """Regression (newuser21): a run of series of 1, 2, 3 and 500 points said '1 series it cannot forecast were
    forecast by its fallback: 1 by naive'. Regression (newuser22): the note named no series, so a retrain's
    summary left the user to find which one a fallback forecast, and why."""
    from flowcast.models.recipes import RecipeForecast

    recipe = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
                    weights=[1.0])
    frame = pl.DataFrame({"unique_id": [u for u, _ in fallbacks], "model": [m for _, m in fallbacks],
                          "reason": "too few observations"})
    rf = RecipeForecast(frame=pl.DataFrame(), fallbacks=frame, recipe=recipe)
    assert rf.fallback_note(who) == said


@pytest.mark.parametrize(("fallbacks", "short", "said"), [
    ([("Leipzig", "naive")], {"Leipzig": 2}, None),  # said by short_note alone
    ([("Leipzig", "naive"), ("one", "naive")], {"Leipzig": 2},
     "1 series it cannot forecast was forecast by its fallback: 1 by naive (one: too few observations)"),
    ([("a", "theta"), ("b", "naive"), ("c", "naive")], {"b": 2, "c": 2},
     "1 series it cannot forecast was forecast by its fallback: 1 by theta (a: too few observations)"),
    ([("one", "naive")], {}, ("1 series it cannot forecast was forecast by its fallback: 1 by naive (one: too few "
                             "observations)")),
    ([], {}, None),
])
def test_the_fallback_note_leaves_out_the_series_too_short_for_a_trend(fallbacks, short, said):
    """Regression (ui21): a run with a 2-point series (Leipzig) said in its decision and receipt both '1 series it
    cannot forecast was forecast by its fallback: 1 by naive' and '1 series has fewer than 3 observations (Leipzig:
    2): forecast by naive, ...': one series twice, the first as if the champion could not forecast it."""
    from flowcast.models.recipes import RecipeForecast

    recipe = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
                    weights=[1.0])
    frame = pl.DataFrame({"unique_id": [u for u, _ in fallbacks], "model": [m for _, m in fallbacks],
                          "reason": "too few observations"}, schema={"unique_id": pl.Utf8, "model": pl.Utf8,
                                                                      "reason": pl.Utf8})
    rf = RecipeForecast(frame=pl.DataFrame(), fallbacks=frame, recipe=recipe, short=short, short_history=3)
    assert rf.fallback_note() == said


def test_the_short_note_quotes_an_id_holding_a_comma():
    """Regression (newuser43): '(new shop: 2, north, east: 1)' read as three series of two."""
    from flowcast.models.recipes import RecipeForecast

    recipe = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
                    weights=[1.0])
    rf = RecipeForecast(frame=pl.DataFrame(), fallbacks=pl.DataFrame(), recipe=recipe,
                        short={"new shop": 2, "north, east": 1}, short_history=3)
    assert rf.short_note() == ("2 series have fewer than 3 observations (new shop: 2, 'north, east': 1): forecast by "
                               "naive, their last value, not by a trend read off so few points.")


@pytest.mark.parametrize(("first", "peers", "champion"), [(3.0, 2, "theta"), (14.0, 2, "theta"), (3.0, 2, "naive"),
                                                          (3.0, 0, "theta")])
def test_a_two_point_series_widths_stand_in_for_its_one_change_and_the_run_says_so(first, peers, champion):
    """followup22: a 2-point series published by naive took widths scaled by its one change (3 -> 15: 12, where
    the series beside it move a tenth of their level), its 95% interval [-30, 60] at step 6 of a series never
    below 0. One change is no typical change: its widths are those of a series without a measured one (its mean
    |y| times the other series' median scale / mean |y|), and the interval notes name it; without another series
    to take the ratio from (`peers` 0), it keeps its own. So with naive the champion (no fallback: its own rows).
    A backtest (short_history 0) is unchanged."""
    from flowcast.evaluation.conformal import series_scale
    from flowcast.flows.tasks import forecast_task

    td = make_td(length=[2, *[36] * peers], horizon=6, level=20.0)
    td.frame = td.frame.with_columns(pl.when((pl.col("unique_id") == "s00") & (pl.col("ds") == pl.col("ds").min()))
                                     .then(first).when(pl.col("unique_id") == "s00").then(15.0)
                                     .otherwise(pl.col("y")).alias("y"))
    r = Recipe(name=champion, kind="statistical", components=[{"type": "statistical", "model": champion}],
               weights=[1.0], fallback=["naive"], intervals={m: CAL for m in ("theta", "naive")})
    rf = forecast_task.fn(r, td, 6)  # what both flows publish through
    two = rf.frame.filter(pl.col("unique_id") == "s00")
    assert set(two["model"]) == {"naive"}
    history = td.frame.select("unique_id", "ds", "y")
    own = abs(15.0 - first)
    if peers:
        long = mase_scale(history.filter(pl.col("unique_id") != "s00"), 12).join(
            history.group_by("unique_id").agg(pl.col("y").abs().mean().alias("level")), on="unique_id")
        unit = (first + 15.0) / 2 * float(np.median((long["scale"] / long["level"]).to_numpy()))
        assert unit < own / 2 or first == 14.0  # the ratio of series moving a little: narrower than 12
    else:
        unit = own
    # q 1.0 at every step, the upper side stretched by the one change carried forward (`reach_one_change`)
    reach = own * np.arange(1, 7)
    np.testing.assert_allclose((two["y_hat_hi95"] - two["y_hat"]).to_numpy(), unit + reach, rtol=1e-9)
    np.testing.assert_allclose((two["y_hat"] - two["y_hat_lo80"]).to_numpy(), 0.5 * unit, rtol=1e-9)
    if peers and first == 3.0:
        assert two["y_hat_lo95"].min() >= 0  # was 15 - 12 ... -30 under the real calibration
    said = [n for n in rf.interval_notes() if "no measured typical change" in n]
    assert said == ([("1 series has no measured typical change to scale its widths by (s00: 2 observations (one "
                      "change)): its 80%/95% widths are the calibrated multiples of its mean |y| times the other series' "
                      "typical change relative to their level instead, a stand-in nothing calibrated.")] if peers else [])
    cut = forecast_detailed(r, td, 6).frame.filter(pl.col("unique_id") == "s00")  # a backtest's: its one change
    np.testing.assert_allclose((cut["y_hat_hi95"] - cut["y_hat"]).to_numpy(), own, rtol=1e-9)
    assert series_scale(history, 12).filter(pl.col("unique_id") == "s00")["scale"].item() == pytest.approx(own)


@pytest.mark.parametrize("gap", [False, True])
def test_a_two_point_series_interval_reaches_its_one_change_carried_forward(gap):
    """acc49: a 2-observation series is published by naive with naive's widths, which covered 0.31 (80%) / 0.77
    (95%) of M3 yearly's 152 such series at the validation origin 12 years back: they went on as their one change
    went (82%), which naive's level path ignores. Its interval now spans naive's and the path carrying that change
    forward, each with its calibrated width: 9.92 -> 8.81 (a change of -1.11 a period; observed two periods
    apart, the imputed point between them no observation, -0.555) stretches its lower bounds by step x change,
    its upper ones not at all; 80% within 95%; a declared y_min still cuts them. A 3-point series (the
    champion's) and a backtest (short_history 0) are unchanged."""
    from flowcast.flows.tasks import forecast_task

    td = make_td(length=[3 if gap else 2, 3, 36, 36], horizon=6, level=50.0)
    ds = td.frame.filter(pl.col("unique_id") == "s00").sort("ds")["ds"].to_list()
    s00 = pl.col("unique_id") == "s00"
    td.frame = td.frame.with_columns(pl.when(s00 & (pl.col("ds") == ds[0])).then(9.92)
                                     .when(s00 & (pl.col("ds") == ds[-1])).then(8.81)
                                     .when(s00).then((9.92 + 8.81) / 2).otherwise(pl.col("y")).alias("y"))
    if gap:
        td.imputed = pl.DataFrame({"unique_id": ["s00"], "ds": [ds[1]]})
    change = (8.81 - 9.92) / (2 if gap else 1)
    r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
               weights=[1.0], fallback=["naive"], intervals={m: CAL for m in ("theta", "naive")})
    plain = forecast_detailed(r, td, 6, short_history=0)  # no short-series rule: naive's plain widths are theta's
    rf = forecast_task.fn(r, td, 6)
    two = rf.frame.filter(s00).sort("step")
    assert set(two["model"]) == {"naive"} and two["y_hat"].to_list() == pytest.approx([8.81] * 6)
    steps = np.arange(1, 7)
    for lv, q in ((80, 0.5), (95, 1.0)):
        half = two[f"y_hat_hi{lv}"] - two["y_hat"]  # untouched side: the calibrated width q x the stand-in scale
        np.testing.assert_allclose(half.to_numpy(), half[0], rtol=1e-9)
        np.testing.assert_allclose((two["y_hat"] - two[f"y_hat_lo{lv}"]).to_numpy(),
                                   half.to_numpy() - change * steps, rtol=1e-9)
    assert (two["y_hat_lo95"] <= two["y_hat_lo80"]).all() and (two["y_hat_hi95"] >= two["y_hat_hi80"]).all()
    assert str(rf.short_note()).endswith("; its intervals also reach its one change carried forward.")
    others = rf.frame.filter(~s00).sort("unique_id", "step")
    assert others.equals(plain.frame.filter(~s00).sort("unique_id", "step"))
    cut = forecast_detailed(r, td, 6).frame.filter(s00)  # a backtest's: the champion, plain widths
    assert set(cut["model"]) != {"naive"}
    bounded = forecast_task.fn(r, td, 6, bounds=(8.0, None)).frame.filter(s00)
    assert bounded["y_hat_lo95"].min() == pytest.approx(8.0) and bounded["y_hat_lo95"].to_list() == \
        pytest.approx(two["y_hat_lo95"].clip(lower_bound=8.0).to_list())


@pytest.mark.parametrize(("champion", "second", "said"), [
    # naive the champion: nothing set aside by the short-history rule, yet the 2-point series' intervals reach its
    # change; the note said nothing of it
    ("naive", 20.0, ("1 series has fewer than 3 observations (s00: 2): naive forecasts its last value, and its "
                     "intervals also reach its one change carried forward.")),
    ("naive", 10.0, None),  # a change of 0: nothing stretched, nothing said
    # two short series, one of them without a change: the note names the one stretched, not both
    ("theta", 20.0, ("2 series have fewer than 3 observations (s00: 2, s01: 2): forecast by naive, their last "
                     "value, not by a trend read off so few points; the intervals of 1 of them (s00: 2) also reach "
                     "its one change carried forward.")),
])
def test_the_short_note_names_the_series_whose_intervals_reach_their_change(champion, second, said):
    """review49: the series `reach_one_change` stretches and those the short note says reached came from two
    sources: with naive the champion (`short` empty) a 2-point series' intervals were stretched without a word, and
    a short series of a change of 0 was said to reach it. Both now come from `reached`."""
    from flowcast.flows.tasks import forecast_task

    td = make_td(length=[2, 2, 36, 36], horizon=6, level=50.0)
    first = pl.col("ds") == pl.col("ds").min().over("unique_id")
    td.frame = td.frame.with_columns(
        pl.when((pl.col("unique_id") == "s00") & first).then(10.0).when(pl.col("unique_id") == "s00").then(second)
        .when((pl.col("unique_id") == "s01") & first).then(5.0).when(pl.col("unique_id") == "s01").then(5.0)
        .otherwise(pl.col("y")).alias("y"))
    r = Recipe(name=champion, kind="statistical", components=[{"type": "statistical", "model": champion}],
               weights=[1.0], fallback=["naive"], intervals={m: CAL for m in ("theta", "naive")})
    rf = forecast_task.fn(r, td, 6)
    assert rf.reached == ({"s00": 2} if second != 10.0 else {})
    for u in ("s00", "s01"):  # naive's calibrated width is the same at every step; stretched by a change up, it grows
        rows = rf.frame.filter(pl.col("unique_id") == u).sort("step")
        assert set(rows["model"]) == {"naive"}
        half = (rows["y_hat_hi95"] - rows["y_hat"]).diff().drop_nulls()
        assert (half > 0).all() if u in rf.reached else (half.abs() < 1e-9).all(), (u, half)
    assert rf.short_note() == said


def test_reach_one_change_leaves_null_bounds_and_other_series_alone():
    """A series without an interval (null bounds: nothing to scale its widths by) keeps none; a series not in
    `change` keeps its own bounds."""
    from flowcast.evaluation.conformal import reach_one_change

    frame = pl.DataFrame({"unique_id": ["a", "a", "b", "c"], "step": [1, 2, 1, 1], "y_hat": [5.0, 5.0, 1.0, 2.0],
                          "y_hat_lo80": [4.0, 4.0, None, 1.0], "y_hat_hi80": [6.0, 6.0, None, 3.0],
                          "y_hat_lo95": [3.0, 3.0, None, 0.0], "y_hat_hi95": [7.0, 7.0, None, 4.0]})
    change = pl.DataFrame({"unique_id": ["a", "b"], "change": [2.0, -1.0]})
    out = reach_one_change(frame, change)
    assert out["y_hat_hi80"].to_list() == [8.0, 10.0, None, 3.0]
    assert out["y_hat_hi95"].to_list() == [9.0, 11.0, None, 4.0]
    assert out["y_hat_lo80"].to_list() == [4.0, 4.0, None, 1.0] and out["y_hat_lo95"].to_list() == [3.0, 3.0, None, 0.0]
    assert out.columns == frame.columns


@pytest.mark.parametrize("champion", ["theta", "damped", "seasonal_naive"])
def test_a_published_series_of_two_points_gets_naive_not_a_trend_and_the_run_says_so(champion):
    """Regression (a new user's 2-point series 9.92, 8.81: theta published 1.05 at step 14, its 95% interval
    down to -5.8): a series of fewer than 3 observations is published by naive, its last value, whatever the
    champion or its fallback chain (seasonal naive's next was damped, a trend too), and the run says so; 3
    points keep the champion. The backtests (short_history 0) keep running the trend models from 2 points."""
    from flowcast.flows.tasks import forecast_task

    td = make_td(length=[1, 2, 3, 24], horizon=14, level=50.0)
    td.frame = td.frame.with_columns(pl.when((pl.col("unique_id") == "s01") & (pl.col("ds") == pl.col("ds").min()))
                                     .then(9.92).when(pl.col("unique_id") == "s01").then(8.81)
                                     .otherwise(pl.col("y")).alias("y"))
    cal = {m: CAL for m in ("theta", "damped", "seasonal_naive", "naive")}
    r = Recipe(name=champion, kind="statistical", components=[{"type": "statistical", "model": champion}],
               weights=[1.0], fallback=["damped", "theta", "naive"], intervals=cal)
    rf = forecast_task.fn(r, td, 14)  # what both flows publish through
    two = rf.frame.filter(pl.col("unique_id") == "s01")
    assert set(two["model"]) == {"naive"} and two["y_hat"].to_list() == pytest.approx([8.81] * 14)
    assert set(rf.frame.filter(pl.col("unique_id") == "s02")["model"]) != {"naive"}  # 3 points: a trend model
    said = "no forecast: 2 observations, fewer than 3: too few to read a trend from, forecast by naive"
    assert ("s01", "naive", said) in rf.fallbacks.rows()
    need = " (it needs 12: one season)" if champion == "seasonal_naive" else " (it needs 2)"
    assert ("s00", "naive", f"no forecast: 1 observation, too few for {champion}{need}") in rf.fallbacks.rows()
    assert rf.short_note() == ("1 series has fewer than 3 observations (s01: 2): forecast by naive, its last value, "
                               "not by a trend read off so few points; its intervals also reach its one change "
                               "carried forward.")
    others = [u for u, _, _ in rf.fallbacks.rows() if u != "s01"]  # s00 (seasonal_naive: s02 too), said once
    assert str(rf.fallback_note()).startswith(f"{len(others)} series it cannot forecast")
    check = check_forecasts(rf.frame, expected_ids=td.ids, horizon=14, fallbacks=rf.fallbacks, max_fallback_share=0.0)
    assert check.ok and check.fallback_series == 0  # by design, not a failure
    cut = forecast_detailed(r, td, 14)  # a backtest's: unchanged, the 2-point series by a trend model
    assert set(cut.frame.filter(pl.col("unique_id") == "s01")["model"]) != {"naive"} and cut.short_note() is None


def test_a_series_of_two_observations_and_an_imputed_gap_between_them_still_gets_naive():
    """Regression (review23): the short-history rule counted the prepared frame's finite values, the points
    preprocessing imputed included (`TrainingData.imputed`): a series observed twice with a one-period gap between
    (imputed under max_gap) counted 3 and was published by the champion's trend, read off its 2 observations, where
    the README says a series of 2 observations is published by naive."""
    from flowcast.flows.tasks import forecast_task

    td = make_td(length=[3, 24], horizon=14, level=50.0)
    s00 = td.frame.filter(pl.col("unique_id") == "s00").sort("ds")["ds"].to_list()
    # observed 9.92 and 8.81, the period between them imputed (linear) by preprocessing
    td.frame = td.frame.with_columns(
        pl.when((pl.col("unique_id") == "s00") & (pl.col("ds") == s00[0])).then(9.92)
        .when((pl.col("unique_id") == "s00") & (pl.col("ds") == s00[1])).then((9.92 + 8.81) / 2)
        .when(pl.col("unique_id") == "s00").then(8.81).otherwise(pl.col("y")).alias("y"))
    td.imputed = pl.DataFrame({"unique_id": ["s00"], "ds": [s00[1]]})
    cal = {m: CAL for m in ("theta", "damped", "naive")}
    r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
               weights=[1.0], fallback=["damped", "naive"], intervals=cal)
    rf = forecast_task.fn(r, td, 14)
    two = rf.frame.filter(pl.col("unique_id") == "s00")
    assert set(two["model"]) == {"naive"} and two["y_hat"].to_list() == pytest.approx([8.81] * 14)
    said = "no forecast: 2 observations, fewer than 3: too few to read a trend from, forecast by naive"
    assert ("s00", "naive", said) in rf.fallbacks.rows()
    assert rf.short == {"s00": 2}
    assert set(rf.frame.filter(pl.col("unique_id") == "s01")["model"]) == {"theta"}


def test_the_fallback_note_leaves_the_short_series_to_their_own_note():
    """Regression (review23): a series of 2 observations published by naive by the short-history rule is in the
    fallbacks (its row says why), and the run's fallback note counted it among the series the champion 'cannot
    forecast' (theta forecasts 2 points; the rule sets it aside), beside the short note that says it again: 'series
    of 1, 2, 3 and 24 points' read '2 series it cannot forecast were forecast by its fallback: 2 by naive' and '1
    series has fewer than 3 observations'. The fallback note counts the series the champion could not forecast;
    None when the short ones are all."""
    from flowcast.flows.tasks import forecast_task

    cal = {m: CAL for m in ("theta", "damped", "naive")}
    r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
               weights=[1.0], fallback=["damped", "naive"], intervals=cal)
    rf = forecast_task.fn(r, make_td(length=[1, 2, 3, 24], horizon=14, level=50.0), 14)
    assert sorted(rf.fallbacks["unique_id"]) == ["s00", "s01"]  # (the rows: each with its reason)
    assert rf.fallback_note() == ("1 series it cannot forecast was forecast by its fallback: 1 by naive (s00: no "
                                  "forecast: 1 observation, too few for theta (it needs 2))")  # s01 is short's
    assert rf.short_note() is not None and rf.short_note().startswith("1 series has fewer than 3 observations (s01: 2)")
    only_short = forecast_task.fn(r, make_td(length=[2, 24], horizon=14, level=50.0), 14)
    assert only_short.fallbacks.height == 1 and only_short.fallback_note() is None


def test_a_series_long_enough_that_gets_no_forecast_is_not_said_too_short():
    """Regression (review25): a statistical champion's series without a forecast was said 'N observation(s), too few
    for X (it needs K)' whatever its length: 24 points of which a season-ago value is missing (impute = "none") left
    seasonal naive a null step, and the reason read '24 observation(s), too few for seasonal_naive (it needs 12:
    one season)'. A series of at least K points keeps the model's own reason."""
    from dataclasses import replace

    td = make_td(length=[24, 24], horizon=6, level=50.0)
    gap = (pl.col("unique_id") == "s01") & (pl.int_range(pl.len()).over("unique_id") == 14)
    td = replace(td, frame=td.frame.with_columns(pl.when(gap).then(None).otherwise(pl.col("y")).alias("y")))
    r = Recipe(name="seasonal_naive", kind="statistical",
               components=[{"type": "statistical", "model": "seasonal_naive"}], weights=[1.0],
               fallback=["damped", "naive"], intervals={"seasonal_naive": CAL, "damped": CAL, "naive": CAL})
    rf = forecast_detailed(r, td, 6)
    [(uid, model, reason)] = rf.fallbacks.rows()
    assert (uid, model) == ("s01", "damped")
    assert "too few" not in reason and reason.startswith("no forecast (series not forecastable by this model"), reason


@pytest.mark.parametrize("name", [*statistical_models(), *CELL_NAMES])
def test_every_model_grows_its_error_as_it_declares(name):
    """Every statistical model (the intermittent ones included) and network cell has a growth law; only the
    seasonal naives' (of a season and of a week) grow by the season, every other as sqrt(h)."""
    want = SEASONAL if name in ("seasonal_naive", "snaive_week") else SQRT
    assert error_growth([name]) == want


@pytest.mark.parametrize(("models", "want"), [
    (["seasonal_naive", "seasonal_naive"], SEASONAL),  # seasonal members alone
    (["seasonal_naive", "theta"], SQRT),  # any mix
    (["gru", "seasonal_naive"], SQRT),
    ([], SQRT),  # nothing declares anything
])
def test_a_combination_grows_by_the_season_only_when_every_member_does(models, want):
    assert error_growth(models) == want


@pytest.mark.parametrize(("name", "seasons", "season_length", "freq", "points", "why"), [
    ("seasonal_naive", None, 12, "1mo", 12, "one season"),
    ("seasonal_naive", None, 1, "1y", 1, "one season"),
    ("theta", None, 12, "1mo", 2, ""),
    ("snaive_week", None, 48, "30m", 336, "a week"),  # a week of half-hourly data, whatever its season
    ("snaive_week", None, 168, "1h", 168, "a week"),  # preprocess.season_length = 168: a week, not 7 of them
    ("snaive_week", None, 7, "1d", 7, "a week"),
    ("snaive_week", None, 5, "1b", 5, "a week"),
    ("seasonal_mean", 2, 12, "1mo", 24, "2 seasons"),  # a new model declaring two seasons, no name check
    ("seasonal_mean", 1, 1, "1y", 1, "one season"),
])
def test_a_model_needs_the_seasons_it_declares(monkeypatch, name, seasons, season_length, freq, points, why):
    if seasons is not None:
        monkeypatch.setitem(MIN_SEASONS, name, seasons)
    assert min_points(name, season_length, freq) == points
    assert seasons_needed(name) == why


@pytest.mark.parametrize("long", [0, 2])
def test_one_observation_series_publish_no_interval_unless_another_series_has_a_change_to_borrow(long):
    """iv44: a backfill date where every series had 1 observation near 100 published a 95% lower bound of -762.3:
    with no series' typical change to borrow, the stand-in was the mean |y| itself, and the calibrated widths
    (multiples of a typical change) multiplied it. No series with a change to borrow: no interval, and the notes say
    why (not that the calibration has no width). Beside long series (`long` 2) they borrow the long series'
    relative change: an interval near the value, never far below it."""
    from flowcast.flows.tasks import forecast_task

    td = make_td(length=[1, 1, 1, *[36] * long], horizon=6, level=100.0)
    td.frame = td.frame.with_columns(pl.when(pl.col("unique_id").is_in(["s00", "s01", "s02"]))
                                     .then(pl.lit(99.0) + pl.col("unique_id").str.slice(2).cast(pl.Float64))
                                     .otherwise(pl.col("y")).alias("y"))
    cal = {"method": "conformal", "levels": [80, 95], "mode": {"80": "residual", "95": "residual"},
           "q": {"80": [4.0] * 6, "95": [8.6] * 6}}  # a real calibration's multiples: ~8.6 typical changes at 95%
    r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
               weights=[1.0], fallback=["naive"], intervals={m: cal for m in ("theta", "naive")})
    rf = forecast_task.fn(r, td, 6)  # what both flows publish through
    ones = rf.frame.filter(pl.col("unique_id").is_in(["s00", "s01", "s02"]))
    assert set(ones["model"]) == {"naive"} and ones["y_hat"].to_list() == pytest.approx([99.0] * 6 + [100.0] * 6
                                                                                       + [101.0] * 6)
    if long:
        assert ones["y_hat_lo95"].min() > 50 and ones["y_hat_hi95"].max() < 150  # was [-762.3, ...] near 100
        assert not rf.unscaled and set(rf.level_scaled) == {"s00", "s01", "s02"}
        assert rf.frame["y_hat_lo95"].null_count() == 0
        return
    assert all(rf.frame[c].null_count() == rf.frame.height for c in INTERVAL_COLUMNS)
    assert rf.unscaled == {u: "1 observation" for u in ("s00", "s01", "s02")} and not rf.level_scaled
    assert rf.missing_level_notes() == []  # not 'its calibration has no width for it': it has
    # naive made every row: the note named theta, which made none (uiB46)
    assert rf.interval_notes() == [
        ("3 series have no measured typical change to scale their widths by (s00: 1 observation, s01: 1 observation, "
        "s02: 1 observation), and no other series has one to borrow: naive publishes no 80%/95% interval for them, "
        "its calibrated widths being multiples of a typical change (the mean |y| in its place put the lower bound "
         "far below every value).")]
    assert check_forecasts(rf.frame, expected_ids=td.ids, horizon=6, fallbacks=rf.fallbacks).ok


def test_a_constant_series_keeps_its_zero_width_interval_beside_series_without_one():
    """probe45: a constant series (24 months at 42) beside one-observation series with no typical change to borrow
    lost its interval: theirs are null (iv44), and a level published for some series only was left out for every
    series. Its interval is its value, whatever the others get; theirs stay null, the notes say both, and the
    check and the publishing contract pass the frame."""
    import dataclasses

    from flowcast.flows.tasks import forecast_task
    from flowcast.store.contract import validate_forecasts

    td = make_td(length=[1, 1, 24], horizon=3, level=100.0)  # s02: a constant history (24 >= two seasons of 12)
    td = dataclasses.replace(td, frame=td.frame.with_columns(
        pl.when(pl.col("unique_id") == "s02").then(42.0).otherwise(pl.col("y")).alias("y")))
    cal = {"method": "conformal", "levels": [80, 95], "mode": {"80": "residual", "95": "residual"},
           "q": {"80": [4.0] * 3, "95": [8.6] * 3}}
    r = Recipe(name="theta", kind="statistical", components=[{"type": "statistical", "model": "theta"}],
               weights=[1.0], fallback=["naive"], intervals={m: cal for m in ("theta", "naive")})
    rf = forecast_task.fn(r, td, 3)  # what both flows publish through
    flat = rf.frame.filter(pl.col("unique_id") == "s02")
    assert all(flat[c].to_list() == pytest.approx([42.0] * 3) for c in ("y_hat", *INTERVAL_COLUMNS))
    ones = rf.frame.filter(pl.col("unique_id") != "s02")
    assert all(ones[c].null_count() == ones.height == 6 for c in INTERVAL_COLUMNS)
    assert rf.constant == {"s02": 42.0} and rf.unscaled == {"s00": "1 observation", "s01": "1 observation"}
    assert rf.missing_level_notes() == []
    assert rf.interval_notes() == [
        ("1 series has a constant history (s02 at 42): its 80%/95% intervals have no conformal width (the point "
         "forecast, as a model without residual variance gets in statsforecast or fable): nothing in that history "
         "measures how far it may move."),
        ("2 series have no measured typical change to scale their widths by (s00: 1 observation, s01: 1 observation), "
         "and no other series has one to borrow: theta publishes no 80%/95% interval for them, its calibrated widths "
         "being multiples of a typical change (the mean |y| in its place put the lower bound far below every value).")]
    check = {"expected_ids": td.ids, "horizon": 3, "fallbacks": rf.fallbacks}
    assert check_forecasts(rf.frame, **check, no_interval=rf.unscaled).ok
    assert not check_forecasts(rf.frame, **check).ok  # their null bounds are no gap only where said to be
    published = validate_forecasts(rf.frame, as_of=datetime(2002, 1, 1), expected_ids=td.ids, horizon=3)
    assert published.filter(pl.col("unique_id") == "s02")["y_hat_lo95"].to_list() == pytest.approx([42.0] * 3)


@pytest.mark.parametrize("fallback_has_95", [False, True])
def test_a_constant_series_keeps_its_95_interval_where_the_calibration_has_too_few_points_for_it(fallback_has_95):
    """cachedir46: a calibration with too few points for 95% left a constant series (24 months at 42) without its 95%
    interval, though its zero width is true at every level. It keeps [42, 42] at 80% and 95%; the moving series get
    no 95% interval (for every one of them: with a fallback that has 95% widths too), their 80% unchanged; the notes
    say why theirs is missing, and the check and the publishing contract pass the frame (the check told of the
    constant series, which it is not without)."""
    import dataclasses

    from flowcast.store.contract import validate_forecasts

    td = make_td(length=[1, 24, 24], horizon=3, level=50.0)  # s00 one point: forecast by the fallback
    td = dataclasses.replace(td, frame=td.frame.with_columns(
        pl.when(pl.col("unique_id") == "s02").then(42.0).otherwise(pl.col("y")).alias("y")))
    thin = {**CAL, "q": {"80": [0.5] * 3, "95": [None] * 3}, "too_few": {"95": {"points": 12, "need": 19}}}
    full = {**CAL, "q": {"80": [0.5] * 3, "95": [1.0] * 3}}
    r = Recipe(name="damped", kind="statistical", components=[{"type": "statistical", "model": "damped"}],
               weights=[1.0], fallback=["naive"], intervals={"damped": thin, "naive": full if fallback_has_95 else thin})
    rf = forecast_detailed(r, td, 3)
    flat, moving = rf.frame.filter(pl.col("unique_id") == "s02"), rf.frame.filter(pl.col("unique_id") != "s02")
    assert rf.constant == {"s02": 42.0}
    assert all(flat[c].to_list() == pytest.approx([42.0] * 3) for c in ("y_hat", *INTERVAL_COLUMNS))
    assert moving["y_hat_lo95"].null_count() == moving["y_hat_hi95"].null_count() == moving.height == 6
    assert moving["y_hat_lo80"].null_count() == 0
    before = forecast_detailed(dataclasses.replace(r), dataclasses.replace(td, frame=td.frame.filter(
        pl.col("unique_id") != "s02")), 3).frame  # the moving series alone: their 80% widths as they were
    assert moving.select("unique_id", "y_hat_lo80", "y_hat_hi80").equals(
        before.select("unique_id", "y_hat_lo80", "y_hat_hi80"))
    missing, said = rf.missing_level_notes(), rf.interval_notes()
    assert len(missing) == 1 and missing[0].startswith("damped publishes no 95% interval: "), missing
    assert len(said) == 2 and said[0].startswith("1 series has a constant history (s02 at 42): its 80%/95% intervals "
                                                 "have no conformal width"), said
    # s00 (one point) has no 95% interval: its stand-in widths are said of the 80% alone (not of the constant's levels)
    assert said[1].startswith("1 series has no measured typical change to scale its widths by (s00: 1 observation): "
                              "its 80% widths are"), said
    check = {"expected_ids": td.ids, "horizon": 3, "fallbacks": rf.fallbacks, "max_fallback_share": 0.5}
    assert check_forecasts(rf.frame, **check, constant=rf.constant).ok
    assert not check_forecasts(rf.frame, **check).ok  # the moving series' null bounds are a gap unless told why
    published = validate_forecasts(rf.frame, as_of=datetime(2002, 1, 1), expected_ids=td.ids, horizon=3)
    assert published.filter(pl.col("unique_id") == "s02")["y_hat_lo95"].to_list() == pytest.approx([42.0] * 3)


def test_a_constant_series_without_bounds_leaves_the_level_out_for_every_series():
    """revB46: a constant series forecast by a model without a calibration (a short one, published by naive, which the
    recipe has none for) has no bounds. cachedir46 set the constant series aside when asking whether a level is
    published for every series, so the moving series kept theirs beside its null ones, and the forecast check failed
    the run ('y_hat_lo80 values not finite, e.g. series ['s02']'); the level is left out for every series as before
    it. A constant series that has its zero width keeps it (`test_a_constant_series_keeps_its_95_interval_...`)."""
    import dataclasses

    td = make_td(length=[40, 40, 24], horizon=3, level=50.0)  # s02: 24 months at 42, shorter than short_history
    td = dataclasses.replace(td, frame=td.frame.with_columns(
        pl.when(pl.col("unique_id") == "s02").then(42.0).otherwise(pl.col("y")).alias("y")))
    cal = {**CAL, "q": {"80": [0.5] * 3, "95": [1.0] * 3}}
    r = Recipe(name="damped", kind="statistical", components=[{"type": "statistical", "model": "damped"}],
               weights=[1.0], fallback=["naive"], intervals={"damped": cal})
    rf = forecast_detailed(r, td, 3, short_history=30)
    assert rf.constant == {"s02": 42.0} and rf.short == {"s02": 24}
    assert rf.frame.filter(pl.col("unique_id") == "s02")["model"].unique().to_list() == ["naive"]
    assert all(rf.frame[c].null_count() == rf.frame.height for c in INTERVAL_COLUMNS), rf.frame
    check = {"expected_ids": td.ids, "horizon": 3, "fallbacks": rf.fallbacks, "max_fallback_share": 0.5}
    assert check_forecasts(rf.frame, **check, constant=rf.constant).ok
    # the notes name the fallback without a calibration (they said damped's calibration had no width for the level)
    assert rf.missing_level_notes() == [f"damped publishes no {lv}% interval: its fallback naive has no calibration, "
                                        "and forecasts some series (a level is published for every series or none)."
                                        for lv in (80, 95)]


@pytest.mark.parametrize(("intervals", "said"), [
    # naive's own too-few sentence: it said "damped publishes no 95% interval: its backtest left 12 ..."
    ({"naive": "thin"}, ["naive publishes no 95% interval: its backtest left 12 calibration points, "]),
    # naive without a calibration: it said "damped publishes no 80% interval: its fallback naive has no calibration ..."
    ({}, [f"naive publishes no {lv}% interval: it has no calibration (a level is published for every series or none)."
          for lv in (80, 95)]),
])
def test_a_forecast_made_by_the_fallback_alone_names_it_in_its_interval_notes(intervals, said):
    """uiB46: a forecast whose every row is the fallback's said 'damped publishes no 95% interval ...' of the
    production model, which made none of its rows: the notes name the model that made them."""
    thin = {**CAL, "q": {"80": [0.5] * 3, "95": [None] * 3}, "too_few": {"95": {"points": 12, "need": 19}}}
    td = make_td(length=[24, 24], horizon=3, level=50.0)  # every series shorter than short_history: naive's
    r = Recipe(name="damped", kind="statistical", components=[{"type": "statistical", "model": "damped"}],
               weights=[1.0], fallback=["naive"],
               intervals={"damped": thin, **{k: thin for k in intervals}})
    rf = forecast_detailed(r, td, 3, short_history=30)
    assert rf.made_by == ["naive"] and rf.maker == "naive"
    missing = rf.missing_level_notes()
    assert len(missing) == len(said) and all(n.startswith(s) for n, s in zip(missing, said, strict=True)), missing
    assert not any("damped" in n for n in [*missing, *rf.interval_notes()])


def test_notes_of_thousands_of_series_write_their_counts_with_thousands_separators():
    """newuser52: 100,000 series of 2 or 3 days were told 'the forecasts or intervals of 100000 of 100000 series go
    below 0 (lowest: s001358 at -1334)' and '49027 series have fewer than 3 observations', where the log and the
    summary write '100,000 series'; the lowest series is written as every note writes an id (quoted where a comma in
    it would split the sentence)."""
    from flowcast.models.recipes import RecipeForecast, below_zero_note

    ids = [f"s{k:04d}" for k in range(1_200)] + ["north, east"]
    hist = pl.DataFrame({"unique_id": ids, "y": [1.0] * len(ids)})
    fc = pl.DataFrame({"unique_id": ids, "y_hat": [1.0] * len(ids), "y_hat_lo80": [-1.0] * 1_200 + [-9.0],
                       "y_hat_hi80": [3.0] * len(ids)})
    note = below_zero_note(hist, fc, None)
    assert note is not None and note.startswith(
        "Every observed value is 0 or more, but the forecasts or intervals of 1,201 of 1,201 series go below 0 "
        "(lowest: 'north, east' at -9).")
    naive = Recipe(name="naive", kind="statistical", components=[{"type": "statistical", "model": "naive"}],
                   weights=[1.0])
    rf = RecipeForecast(frame=fc, fallbacks=pl.DataFrame(), recipe=naive, short_history=3,
                        reached={u: 2 for u in ids})
    assert rf.short_note() == ("1,201 series have fewer than 3 observations (e.g. 'north, east': 2, s0000: 2, s0001: 2): "
                               "naive forecasts their last value, and their intervals also reach their one change "
                               "carried forward.")
