"""The retrain flow's choice end to end: the production model scored fairly, a NaN refit never
promoted, compare-and-swap promotion, and the forecast flow publishing what the last retrain chose."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from flow_helpers import AS_OF, artifacts_of

from flowcast.errors import ProductionMovedError, TrainingError
from flowcast.registry import ModelRegistry
from flowcast.reporting import artifact_key
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

STATS_ONLY = {"model": {"cells": []}, "evaluation": {"n_windows": 2}}


def _with(kw: dict, extra: dict) -> dict:
    ov = {k: dict(v) for k, v in kw["overrides"].items()}
    for section, values in extra.items():
        ov.setdefault(section, {}).update(values)
    return {**kw, "overrides": ov}


def test_production_is_never_scored_on_windows_it_was_trained_on(production_home):
    """gru was trained on data up to 2019-06. A retrain as of 2019-09 backtests two windows that
    both end before 2019-09 and overlap its training data: scoring it frozen there would flatter
    it (today's main did), so its recipe is refit on the windows instead, and the artifact says so.
    As of 2019-12 the newest window (2019-07..2019-12) is after its training data: frozen there."""
    from flowcast.flows import retrain_flow

    reg = ModelRegistry(Path(production_home["home"]) / "models")
    gru = reg.production("tiny").version
    kw = _with(production_home, {"evaluation": {"n_windows": 2}})
    s = retrain_flow(as_of=datetime(2019, 9, 1), **kw)
    assert s["decision"]["incumbent"] == gru
    assert s["decision"]["incumbent_scoring"].startswith("its recipe refit on this run's backtest windows")
    prod = next(r for r in s["leaderboard"] if r["model"] == "production")
    assert prod["n_windows"] == 2 and prod["kind"] == "network"
    decision_md = artifacts_of(s["run_id"])[artifact_key("decision", "tiny")][0].data
    assert "How the production model was scored: its recipe refit" in decision_md
    # its configuration is this run's: the refit reuses this run's backtest network, no extra training
    assert not list((Path(kw["home"]) / "runs").glob("*/gru-s0-production-backtest"))

    kw = _with(production_home, {"evaluation": {"n_windows": 1}})
    now = reg.production("tiny").version
    s = retrain_flow(as_of=datetime(2019, 12, 1), **kw)
    assert s["decision"]["incumbent"] == now
    if now == gru:  # still the hand-promoted network: its weights never saw 2019-07..2019-12
        assert s["decision"]["incumbent_scoring"].startswith("frozen weights, on the 1 backtest window after")
    action = s["decision"]["action"]
    assert (reg.production("tiny").version == now) is (action == "keep")


def test_a_nan_refit_never_reaches_production(flow_kwargs, monkeypatch):
    """The network trains fine for the backtest and wins (it is the only candidate), but its refit
    on all data diverges to NaN: the checks before promotion refuse it, nothing is promoted and
    nothing is published."""
    import torch

    from flowcast.flows import pipeline, retrain_flow

    real = pipeline._train_member

    def nan_refit(td, settings, out_dir, cell, label, scope):
        art = real(td, settings, out_dir, cell, label, scope)
        if label.endswith("all data"):  # the refit on all data, not the backtest's training
            ckpt = torch.load(art.checkpoint, map_location="cpu", weights_only=False)
            ckpt["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                                  for k, v in ckpt["state_dict"].items()}
            torch.save(ckpt, art.checkpoint)
        return art

    monkeypatch.setattr(pipeline, "_train_member", nan_refit)
    kw = _with(flow_kwargs, {"evaluation": {"statistical": [], "combination": []}})
    with pytest.raises(TrainingError, match=r"no candidate produced forecasts fit to publish: gru was not published: "
                                            r"its forecasts failed the checks \(the model failed on 4 of 4 series"):
        retrain_flow(as_of=AS_OF, **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    assert reg.production("tiny") is None and reg.list() == []
    assert not EmbeddedStore(Path(kw["home"]) / "warehouse").has("tiny", AS_OF)


def test_promotion_is_a_compare_and_swap(flow_kwargs, monkeypatch):
    """Another run promotes while this one is deciding: this run fails with ProductionMovedError
    before publishing, and production stays what the other run promoted."""
    from flowcast.flows import pipeline, retrain_flow

    kw = _with(flow_kwargs, STATS_ONLY)
    first = retrain_flow(as_of=datetime(2019, 3, 1), **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    assert reg.production("tiny").version == first["model_version"] and first["kind"] == "statistical"
    naive = reg.register(None, name="naive", dataset="tiny", kind="statistical",
                         recipe={"components": [{"type": "statistical", "model": "naive"}]},
                         created_at=datetime(2024, 1, 1)).version
    reg.promote(naive, reason="a worse model in production, so that the next run replaces it")
    real = pipeline.tasks.forecast_task

    def meanwhile(*a, **k):
        out = real(*a, **k)
        ModelRegistry(Path(kw["home"]) / "models").promote(first["model_version"], reason="another run, meanwhile")
        return out

    monkeypatch.setattr(pipeline.tasks, "forecast_task", meanwhile)
    with pytest.raises(ProductionMovedError, match=f"started from {naive} and is now {first['model_version']}"):
        retrain_flow(as_of=datetime(2019, 6, 1), **kw)
    assert reg.production("tiny").version == first["model_version"]
    assert not EmbeddedStore(Path(kw["home"]) / "warehouse").has("tiny", datetime(2019, 6, 1))
    # registered and promoted in one transaction: the run that lost registered nothing either
    assert sorted(v.version for v in reg.list()) == sorted([first["model_version"], naive])


def _retrained_and_another(kw: dict) -> tuple[dict, ModelRegistry, str]:
    """(a retrain's result as of 2019-03-01 (its winner in production), the registry, another
    registered version (naive) that a concurrent run can promote)."""
    from flowcast.flows import retrain_flow

    first = retrain_flow(as_of=datetime(2019, 3, 1), **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    other = reg.register(None, name="naive", dataset="tiny", kind="statistical",
                         recipe={"components": [{"type": "statistical", "model": "naive"}]},
                         created_at=datetime(2024, 1, 1)).version
    return first, reg, other


def _promote_after(monkeypatch, module, name: str, home: str, version: str) -> None:
    """Another run promotes `version` right after this run's `module.name` (its decision made)."""
    real = getattr(module, name)

    def meanwhile(*a, **k):
        out = real(*a, **k)
        ModelRegistry(Path(home) / "models").promote(version, reason="another run, meanwhile")
        return out

    monkeypatch.setattr(module, name, meanwhile)


def test_a_run_that_keeps_production_publishes_nothing_when_another_run_promoted_meanwhile(flow_kwargs, monkeypatch):
    """Regression: two runs of one as_of; the other promoted while this one decided to keep the
    production model it started from: this one published that old model's forecasts over the
    other's (the as_of then held forecasts of a model no longer in production). It stops now."""
    from flowcast.flows import pipeline, retrain_flow

    kw = _with(flow_kwargs, STATS_ONLY)
    first, reg, other = _retrained_and_another(kw)
    _promote_after(monkeypatch, pipeline.tasks, "forecast_task", kw["home"], other)
    with pytest.raises(ProductionMovedError, match=f"started from {first['model_version']} and is now {other}; this "
                                                   f"run, which left {first['model_version']} in production, "
                                                   "registers and publishes nothing"):
        retrain_flow(as_of=datetime(2019, 3, 1), **kw)
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    assert set(store.read(dataset="tiny", as_of=datetime(2019, 3, 1))["model_version"]) == {first["model_version"]}
    assert sorted(v.version for v in reg.list()) == sorted([first["model_version"], other])


@pytest.mark.parametrize("keeps", [True, False])
def test_a_run_publishes_nothing_when_production_moved_after_its_decision(flow_kwargs, monkeypatch, keeps):
    """Regression: production was checked when the run decided (kept it, or promoted its winner)
    and not again when it published; another run promoting in between (after the decision
    artifact) saw its model's forecasts for this as_of replaced by those of a model no longer in
    production. The publish is now checked under the registry's lock: this run fails, publishes nothing."""
    from flowcast.flows import pipeline, retrain_flow

    kw = _with(flow_kwargs, STATS_ONLY)
    first, reg, other = _retrained_and_another(kw)
    if not keeps:  # a worse model in production: the run promotes a new winner
        reg.promote(other, reason="so that the next run replaces it")
        other = first["model_version"]
    as_of = datetime(2019, 3, 1) if keeps else datetime(2019, 6, 1)
    _promote_after(monkeypatch, pipeline.reporting, "decision_artifact", kw["home"], other)
    with pytest.raises(ProductionMovedError, match=f"and production is now {other}; nothing was published"):
        retrain_flow(as_of=as_of, **kw)
    assert reg.production("tiny").version == other
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    if keeps:  # the first run's forecasts of that as_of stay
        assert set(store.read(dataset="tiny", as_of=as_of)["run_id"]) == {first["run_id"]}
    else:
        assert not store.has("tiny", as_of)


def test_the_forecast_flow_publishes_nothing_when_production_moved_while_it_forecast(flow_kwargs, monkeypatch):
    from flowcast.flows import forecast_flow, tasks

    kw = _with(flow_kwargs, STATS_ONLY)
    first, _reg, other = _retrained_and_another(kw)
    _promote_after(monkeypatch, tasks, "forecast_task", kw["home"], other)
    with pytest.raises(ProductionMovedError, match=f"decided on {first['model_version']} and production is now "
                                                   f"{other}; nothing was published"):
        forecast_flow(as_of=datetime(2019, 4, 1), **kw)
    assert not EmbeddedStore(Path(kw["home"]) / "warehouse").has("tiny", datetime(2019, 4, 1))


def test_the_forecast_flow_publishes_the_last_champion_when_nothing_was_promoted(flow_kwargs):
    from flowcast.flows import forecast_flow, retrain_flow

    kw = _with(flow_kwargs, STATS_ONLY)
    s = retrain_flow(as_of=datetime(2019, 3, 1), promote=False, **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    assert reg.production("tiny") is None and reg.champion("tiny").version == s["model_version"]
    f = forecast_flow(as_of=datetime(2019, 4, 1), **kw)
    assert f["model_version"] == s["model_version"] and f["kind"] == "statistical" and f["published_rows"] == 24


def test_a_series_the_champion_forecasts_below_the_bound_is_cut_at_it(tmp_path):
    """Counts (y_min = 0) with trends: a trend model wins the backtest, and on the series falling towards
    zero it forecasts negative values. Regression: that series was handed to a fallback model (a flat line
    at its last value); it is the champion's forecast cut at 0, every series from the champion."""
    import polars as pl

    from flowcast.flows import forecast_flow, retrain_flow

    rows = []
    for s, (start, slope) in enumerate([(100, 2.0), (80, 1.5), (60, 1.0), (118, -1.0)]):
        for t in range(120):
            y = max(start + slope * t + ((t * 7 + s * 3) % 5 - 2) * 0.5, 0.0)
            rows.append({"store": f"S{s}", "month": f"{2010 + t // 12}-{t % 12 + 1:02d}-01", "sales": round(y, 3)})
    csv = tmp_path / "raw" / "sales.csv"
    csv.parent.mkdir(parents=True)
    pl.DataFrame(rows).write_csv(csv)
    source = {"name": "tiny", "path": str(csv), "id_cols": ["store"], "time_col": "month", "target_col": "sales",
              "freq": "1mo", "horizon": 6, "season_length": 12, "y_min": 0.0}
    kw = {"source": source, "home": str(tmp_path / "home"), "overrides": {**STATS_ONLY, "publish": {"plot_series": 1}}}
    s = retrain_flow(as_of=datetime(2019, 9, 1), **kw)  # S3 reaches 0 in 2019-11
    assert s["kind"] == "statistical" and s["champion"] in ("damped", "theta", "comb")
    assert s["fallback_series"] == 0
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    published = store.read(dataset="tiny", as_of=datetime(2019, 9, 1))
    assert set(published["model"]) == {s["champion"]}
    assert (published["y_hat"] >= 0).all() and (published["y_hat_lo95"] >= 0).all()
    falling = published.filter(pl.col("unique_id") == "S3").sort("step")["y_hat"].to_list()
    assert falling[-1] == 0.0 and falling[0] > 0.0  # down the trend, then at the bound (not flat at the last value)
    # the forecast flow publishes the same with the registered model
    f = forecast_flow(as_of=datetime(2019, 9, 1), **kw)
    assert f["fallback_series"] == 0 and f["model_version"] == s["model_version"]


def test_a_backfill_to_single_observations_keeps_the_production_network_and_forecasts(production_home):
    """gru is in production; a backfill as of 2010-01-15, when every store had its first month
    only: nothing can be backtested, so naive publishes that as_of without a leaderboard and gru
    stays in production. The forecast flow at that as_of takes naive, the model recorded for it (gru was
    trained on later data)."""
    from flowcast.flows import forecast_flow, retrain_flow

    reg = ModelRegistry(Path(production_home["home"]) / "models")
    gru = reg.production("tiny").version
    early = datetime(2010, 1, 15)
    s = retrain_flow(as_of=early, **production_home)
    d = s["decision"]
    # gru saw the data after 2010: no incumbent of this as_of (and production is left alone)
    assert (s["champion"], s["leaderboard"], d["promote"], d["publish"], d["incumbent"]) == (
        "naive", [], False, "naive", None)
    assert "Each of the 4 series has a single observation: there is nothing to backtest" in d["reasons"][0]
    assert reg.production("tiny").version == gru
    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    pub = store.read(dataset="tiny", as_of=early)
    assert pub.height == 4 * 6 and set(pub["model"]) == {"naive"} and pub["y_hat"].is_finite().all()

    fc = forecast_flow(as_of=early, **production_home)
    # gru saw the data after 2010: the forecast of that as_of is the model recorded for it, naive (model_for_as_of)
    assert fc["model_version"] == s["model_version"] != gru and fc["fallback_series"] == 0
    # the very forecasts the retrain published (the same version, the same rows): not published again (publish29)
    assert fc["published_rows"] == 0 and fc["published_by"] == s["run_id"]
    pub = store.read(dataset="tiny", as_of=early)
    assert pub.height == 4 * 6 and pub["y_hat"].is_finite().all() and "gru" not in set(pub["model"])


def test_a_retrain_of_an_earlier_as_of_neither_publishes_nor_replaces_a_production_model_of_later_data(
        production_home):
    """Regression: `flowcast run --as-of 2019-03-01` with gru in production, trained up to 2019-06-01, scored it as
    the incumbent of 2019-03-01 (when it wins, the run publishes the registered gru, weights fitted on the actuals
    after that as_of) and promoted a challenger trained on older data over it. Such a run leaves production alone,
    as a backfill's retrain does, and publishes its own best model."""
    from flowcast.flows import retrain_flow

    reg = ModelRegistry(Path(production_home["home"]) / "models")
    gru = reg.production("tiny").version
    s = retrain_flow(as_of=datetime(2019, 3, 1), **production_home)
    assert reg.production("tiny").version == gru
    assert s["decision"]["incumbent"] is None and s["decision"]["promote"] is False
    published = reg.get(s["model_version"], fetch=False)
    assert published.version != gru and published.as_of.startswith("2019-03-01")
    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    assert store.read(dataset="tiny", as_of=datetime(2019, 3, 1))["model_version"].unique().to_list() == [
        published.version]
    assert "production" not in {r["model"] for r in s["leaderboard"]}


def test_warm_start_refits_each_network_from_its_backtest_weights(flow_kwargs, monkeypatch):
    """model.warm_start_steps: the production refit of the published network on all data starts
    from the checkpoint its backtest training wrote and trains warm_start_steps steps (max_epochs
    still bounds it); the backtest's own training is unchanged (from new weights, max_steps)."""
    import torch

    from flowcast.flows import pipeline, retrain_flow

    real = pipeline._train_member
    seen: dict[str, tuple[int, int | None, str | None]] = {}

    def spy(td, settings, out_dir, cell, label, scope):
        seen[label] = (settings.model.max_steps, settings.model.max_epochs, settings.model.init_from)
        return real(td, settings, out_dir, cell, label, scope)

    monkeypatch.setattr(pipeline, "_train_member", spy)
    kw = _with(flow_kwargs, {"evaluation": {"statistical": [], "combination": []},
                             "model": {"warm_start_steps": 3, "max_epochs": 40}})
    s = retrain_flow(as_of=AS_OF, **kw)
    ((label, (steps, epochs, init)),) = seen.items()
    assert label.endswith("all data") and (steps, epochs) == (3, 40)
    assert init is not None and init.endswith("gru-s0-backtest/model.ckpt")
    run_dir = Path(init).parent.parent
    meta = torch.load(run_dir / "gru-s0" / "model.ckpt", map_location="cpu", weights_only=False)
    assert meta["global_step"] == 3 and s["kind"] == "network"
