"""Cold start and short histories end to end: a new series whose category was never seen in
training and a 5-point series in a forecast run after a retrain; a retrain with the defaults on
series of 3 to 40 periods publishes every series, each row naming the model that made it."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, artifacts_of

from flowcast.columns import INTERVAL_COLUMNS
from flowcast.models.recipes import min_points
from flowcast.registry import ModelRegistry
from flowcast.reporting import artifact_key
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

REGIONS = {"S0": "north", "S1": "north", "S2": "south", "S3": "south"}


def _monthly_rows(store: str, region: str | None, first: int, n: int) -> list[dict]:
    """n months of a seasonal series with trend from month `first` (0 = 2010-01)."""
    s = int(store[1:])
    out = []
    for t in range(first, first + n):
        y = 100 + 10 * s + 0.5 * t + 8 * math.sin(2 * math.pi * t / 12 + s) + ((t * 7 + s * 3) % 5 - 2)
        out.append({"store": store, "region": region, "month": f"{2010 + t // 12}-{t % 12 + 1:02d}-01",
                    "sales": round(y, 3)})
    return out


def _source(path: Path) -> dict:
    return {"name": "regions", "path": str(path), "id_cols": ["store"], "time_col": "month", "target_col": "sales",
            "freq": "1mo", "horizon": 6, "season_length": 12, "static_cols": ["region"]}


def _published(home: str, dataset: str, as_of: datetime) -> pl.DataFrame:
    frame = EmbeddedStore(Path(home) / "warehouse").read(dataset=dataset)
    return frame.filter(pl.col("as_of") == as_of)


def test_a_new_region_and_a_5_point_series_are_forecast_after_a_retrain(tmp_path):
    """gru is trained on regions north and south and put in production. The next forecast run sees a
    store in a new region (west), a store with 5 months of history and a store without any value:
    the new region is forecast by gru (its unknown level; today's main failed every series on the
    changed static columns), the 5-month store by the best statistical model of the leaderboard that
    runs on 5 points (not seasonal naive, which needs a season), the empty one is reported with its
    reason, and every published row names its model."""
    from flowcast.flows import forecast_flow, retrain_flow

    csv = tmp_path / "raw" / "sales.csv"
    csv.parent.mkdir(parents=True)
    rows = [r for store, region in REGIONS.items() for r in _monthly_rows(store, region, 0, 114)]  # .. 2019-06
    pl.DataFrame(rows).write_csv(csv)
    kw = {"source": _source(csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}
    trained = retrain_flow(as_of=AS_OF, refit_all=True, **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    gru = reg.promote(trained["registered"]["gru"], reason="the test needs a network in production")
    assert any(c.startswith("region=") for c in _static_cols(reg, gru.version))

    later = datetime(2019, 7, 1)
    rows = [r for store, region in REGIONS.items() for r in _monthly_rows(store, region, 0, 115)]
    rows += _monthly_rows("S4", "west", 0, 115)  # a region the model never saw
    rows += _monthly_rows("S5", "north", 110, 5)  # 2019-03 .. 2019-07: five points
    rows += [{"store": "S6", "region": "south", "month": "2019-07-01", "sales": None}]  # no value at all
    pl.DataFrame(rows, schema_overrides={"sales": pl.Float64}).write_csv(csv)
    header = csv.read_text().splitlines()[0].split(",")
    s7 = {"store": "S7", "region": "north", "month": "2019-07-01", "sales": "n/a"}  # every row quarantined
    with csv.open("a") as f:
        f.write(",".join(s7[c] for c in header) + "\n")
    out = forecast_flow(as_of=later, **kw)

    pub = _published(kw["home"], "regions", later)
    by_series = dict(pub.group_by("unique_id").agg(pl.col("model").unique()).select(
        "unique_id", pl.col("model").list.first()).iter_rows())
    assert pub.group_by("unique_id").agg(pl.col("model").n_unique())["model"].max() == 1
    assert sorted(by_series) == ["S0", "S1", "S2", "S3", "S4", "S5"]
    assert pub.height == 6 * 6 and pub["y_hat"].is_finite().all()
    assert {by_series[s] for s in ("S0", "S1", "S2", "S3", "S4")} == {"gru"}
    fallback = reg.get(gru.version).recipe["fallback"]
    expected = next(m for m in fallback if min_points(m, 12, "1mo") <= 5)
    assert by_series["S5"] == expected and expected != "seasonal_naive"
    assert out["fallback_series"] == 1
    assert out["fallbacks"] == [{"unique_id": "S5", "model": expected,
                                 "reason": "no forecast: 5 observations, too few for gru"}]
    # regression: S7 (its one row quarantined) vanished from the summary; now every series in is accounted for
    assert out["excluded"] == [{"unique_id": "S7", "reason": "every row quarantined (y_not_number=1)"},
                               {"unique_id": "S6", "reason": "no observed values (every y is empty)"}]
    assert out["series_excluded"] == 2 and out["n_series"] + out["series_excluded"] == 8  # S0..S7: all counted


def _static_cols(reg: ModelRegistry, version: str) -> list[str]:
    import json

    v = reg.get(version)
    comp = v.recipe["components"][0]
    meta = json.loads((Path(v.path) / comp["path"] / "meta.json").read_text())
    return list(meta["hparams"]["data"]["static_cols"])


def test_short_histories_are_all_published_with_the_defaults(tmp_path, capsys, caplog):
    """Daily series of 1, 3, 8, 14 and 40 points, horizon 3, the default lookback (36) and
    validation span: today's main stopped with 'no series left'. The lookback and validation span
    are fitted to the data, the backtest to the series long enough for it, and every series is
    published: the 1-point one by naive (the only model that runs on one point), the 3-point one
    (too short for the network and the backtest) by damped, the best statistical model on this
    trend, the others by the champion, whatever it is (gru or damped can forecast them)."""
    from flowcast.flows import retrain_flow

    rows = []
    for sid, n in (("A", 1), ("B", 3), ("C", 8), ("D", 14), ("E", 40)):
        for t in range(40 - n, 40):
            rows.append({"id": sid, "day": f"2020-01-{1 + t:02d}" if t < 31 else f"2020-02-{t - 30:02d}",
                         "v": 50 + 2.0 * t + 0.1 * (t % 3)})
    csv = tmp_path / "short.csv"
    pl.DataFrame(rows).write_csv(csv)
    source = {"name": "short", "path": str(csv), "id_cols": ["id"], "time_col": "day", "target_col": "v",
              "freq": "1d", "horizon": 3}
    overrides = {"model": {"cells": ["gru"], "hidden_size": 8, "num_layers": 1, "max_steps": 20,
                           "launcher": "inline", "accelerator": "cpu"},
                 "evaluation": {"statistical": ["damped", "naive"], "combination": [], "ensemble": False,
                                "hybrid": False},
                 "publish": {"plot_series": 2}}
    as_of = datetime(2020, 2, 9)
    out = retrain_flow(as_of=as_of, source=source, home=str(tmp_path / "home"), overrides=overrides)

    # 80% of the series (4 of 5) have 3 points, too few for a network or a backtest whatever the spans: they
    # are fitted to the shortest series that can take part (C, 8 points): lookback 3 (the horizon),
    # validation span 2, 2 windows
    assert out["spans"] == {"lookback": 3, "val_size": 2, "n_windows": 2, "network_min_length": 8,
                            "backtest_min_length": 7}
    pub = _published(str(tmp_path / "home"), "short", as_of)
    models = dict(pub.group_by("unique_id").agg(pl.col("model").unique()).select(
        "unique_id", pl.col("model").list.first()).iter_rows())
    assert pub.group_by("unique_id").agg(pl.col("model").n_unique())["model"].max() == 1
    assert sorted(models) == ["A", "B", "C", "D", "E"] and pub.height == 5 * 3
    assert out["champion"] in ("gru", "damped")
    assert models == {"A": "naive", "B": "damped", "C": out["champion"], "D": out["champion"], "E": out["champion"]}
    # A's one point measures no change: its widths are scaled by its level, which nothing calibrated, and said so
    assert "1 series has no measured typical change to scale its widths by (A: 1 observation)" in out["note"]
    board = {r["model"]: r for r in out["leaderboard"]}
    assert board["damped"]["rank"] < board["naive"]["rank"]
    # gru forecasts 2 of the 3 backtested series (C, D; B's cut has 5 points < 6): the third is made by
    # its fallback by design, which is no failure, so gru stays eligible (a share of 1/3 > 20%)
    assert board["gru"]["rank"] is not None
    quality = artifacts_of(out["run_id"])[artifact_key("quality", "short")][0].data
    # ui25: the row and the log line name them (they counted them only)
    assert "| series too short for a network (statistical models forecast them) | 2 (A, B) |" in quality
    said = " ".join((capsys.readouterr().err + caplog.text).split())
    assert "2 of 5 series have fewer than the 8 periods a network needs (A, B): the statistical models" in said, said


def _short_daily_source(tmp_path: Path) -> dict:
    """Three new series of 2, 3 and 5 days (up to 2020-03-09) with a horizon of 7: shorter than it, every one."""
    rows = [{"id": sid, "day": f"2020-03-{d:02d}", "v": 10.0 + 3 * d} for sid, n in (("a", 2), ("b", 3), ("c", 5))
            for d in range(10 - n, 10)]
    csv = tmp_path / "new.csv"
    pl.DataFrame(rows).write_csv(csv)
    return {"name": "new", "path": str(csv), "id_cols": ["id"], "time_col": "day", "target_col": "v",
            "freq": "1d", "horizon": 7}


def test_series_all_shorter_than_the_horizon_are_published(tmp_path, capsys, caplog):
    """Three new series of 2, 3 and 5 days and a horizon of 7: no series can be backtested on 7
    steps, so one window scores the first 4 (the longest series allows that), the candidates are
    ranked on it and every series is published, each by a model that runs on its length."""
    from flowcast.flows import retrain_flow

    source = _short_daily_source(tmp_path)
    overrides = {"model": {"cells": []}, "evaluation": {"statistical": ["damped", "naive"], "combination": []},
                 "publish": {"plot_series": 1}}
    as_of = datetime(2020, 3, 9)
    out = retrain_flow(as_of=as_of, source=source, home=str(tmp_path / "home"), overrides=overrides)
    assert out["spans"]["n_windows"] == 1 and out["spans"]["backtest_min_length"] == 5
    assert "one backtest window scores the first 4 steps" in out["note"]
    pub = _published(str(tmp_path / "home"), "new", as_of)
    assert pub.height == 3 * 7 and sorted(pub["unique_id"].unique()) == ["a", "b", "c"]
    # the one window cuts c, the only series it scores, at its first point, where damped forecasts as naive does: a
    # tie, which goes to naive, the simpler (damped won it by its name, its trend scored nowhere)
    board = {r["model"]: r for r in out["leaderboard"]}
    assert board["damped"]["mae"] == pytest.approx(board["naive"]["mae"], rel=1e-9)
    assert out["champion"] == "naive"
    assert set(pub["model"]) == {"naive"} and pub["y_hat_lo80"].is_finite().all()
    # 12 backtest points (3 series x 4 steps): too few for a 95% conformal interval (19), which is left
    # out and said so (it used to be the largest error: the same as the 80% one)
    assert "y_hat_lo95" not in pub.columns and "naive publishes no 95% interval" in out["note"]
    # ui25: no network is configured (cells = [], `--models none`): the log said 'fewer than the ... periods a
    # network needs' of a run that trains none
    said = " ".join((capsys.readouterr().err + caplog.text).split())
    assert "Prepared 3 series" in said and "a network needs" not in said, said
    # steps 5-7 were never scored: widened from step 4's width (they reused it, published as calibrated)
    assert ("naive's 80% intervals at steps 5-7 are beyond the 4 calibrated: widened from step 4 by sqrt(h/4)"
            in out["note"]), out["note"]
    width = pub.sort("unique_id", "step").with_columns((pl.col("y_hat_hi80") - pl.col("y_hat_lo80")).alias("w"))
    assert (width.filter(pl.col("step") >= 4).group_by("unique_id").agg(pl.col("w").diff().min())["w"] >= 0).all()


def test_series_of_a_single_observation_are_published_by_naive_without_a_backtest(tmp_path):
    """Three new stores with one month of sales each: nothing can be backtested (today's main
    stopped with 'no series is long enough for a backtest'). naive, the only model that forecasts
    from one observation, is published for every series without a leaderboard and promoted (nothing
    was in production); its intervals are null, and the run says why. A second run before a second
    month arrives leaves that production model alone; the forecast flow then forecasts with it."""
    from flowcast.flows import forecast_flow, retrain_flow

    csv = tmp_path / "raw" / "sales.csv"
    csv.parent.mkdir(parents=True)
    stores = {"S0": "north", "S1": "north", "S2": "south"}
    pl.DataFrame([r for s, region in stores.items() for r in _monthly_rows(s, region, 113, 1)]).write_csv(csv)
    kw = {"source": _source(csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}
    out = retrain_flow(as_of=AS_OF, **kw)  # 2019-06-01: each store has its 2019-06 value only

    assert (out["champion"], out["kind"], out["leaderboard"], out["registered"]) == (
        "naive", "statistical", [], {"naive": out["model_version"]})
    d = out["decision"]
    assert (d["action"], d["promote"], d["publish"], d["incumbent"]) == ("first", True, "naive", None)
    assert "Each of the 3 series has a single observation: there is nothing to backtest" in d["reasons"][0]
    assert "no 80/95% intervals: they could not be calibrated without a backtest" in out["note"]
    assert out["spans"]["n_windows"] == 0 and out["published_rows"] == 3 * 6 and out["fallback_series"] == 0
    pub = _published(kw["home"], "regions", AS_OF)
    assert pub.height == 3 * 6 and set(pub["model"]) == {"naive"} and pub["model_version"].unique().to_list() == [
        out["model_version"]]
    last = {r["store"]: r["sales"] for r in _monthly_rows("S0", "north", 113, 1) + _monthly_rows(
        "S1", "north", 113, 1) + _monthly_rows("S2", "south", 113, 1)}
    assert dict(pub.select("unique_id", "y_hat").unique().iter_rows()) == last
    assert not set(INTERVAL_COLUMNS) & set(pub.columns)  # null in every row: the store's read leaves them out
    reg = ModelRegistry(Path(kw["home"]) / "models")
    prod = reg.production("regions")
    assert prod is not None and (prod.version, prod.kind, prod.recipe["components"]) == (
        out["model_version"], "statistical", [{"type": "statistical", "model": "naive"}])
    assert "no intervals (not calibrated: every series had a single observation" in prod.describe()
    arts = artifacts_of(out["run_id"])
    decision_md = arts[artifact_key("decision", "regions")][0].data
    assert "### Published: **naive**" in decision_md and "nothing to backtest" in decision_md
    assert "could not be calibrated without a backtest" in decision_md
    assert artifact_key("leaderboard", "regions") not in arts  # no candidate was scored

    # a day later, still one month a store: production (naive, first) stays; this run's naive publishes
    again = retrain_flow(as_of=datetime(2019, 6, 2), **kw)
    assert (again["decision"]["action"], again["decision"]["promote"]) == ("publish", False)
    assert f"The production model {prod.version} stays" in again["decision"]["reasons"][1]
    assert reg.production("regions").version == prod.version != again["model_version"]
    assert _published(kw["home"], "regions", datetime(2019, 6, 2)).height == 3 * 6

    # a month later each store has two months: the forecast flow forecasts with the production naive
    rows = [r for s, region in stores.items() for r in _monthly_rows(s, region, 113, 2)]
    pl.DataFrame(rows).write_csv(csv)
    later = datetime(2019, 7, 1)
    fc = forecast_flow(as_of=later, **kw)
    assert (fc["model"], fc["model_version"], fc["kind"], fc["published_rows"]) == (
        "naive", prod.version, "statistical", 3 * 6)
    pub = _published(kw["home"], "regions", later)
    assert pub.height == 3 * 6 and set(pub["model"]) == {"naive"} and not set(INTERVAL_COLUMNS) & set(pub.columns)
    assert dict(pub.select("unique_id", "y_hat").unique().iter_rows()) == {
        r["store"]: r["sales"] for r in rows if r["month"] == "2019-07-01"}


def test_networks_no_series_can_train_on_are_left_out_once_without_failed_tasks(tmp_path):
    """Regression: with a horizon longer than every series, each network member's backtest training ran as
    a task and failed (an ERROR line per member, 6 in a default run that then succeeded). Now the run
    says once that no series is long enough for a network and trains none; the statistical models publish."""
    from flowcast.flows import retrain_flow

    source = _short_daily_source(tmp_path)
    overrides = {"model": {"cells": ["gru", "rnn"], "hidden_size": 4, "num_layers": 1, "max_steps": 2,
                           "launcher": "inline", "accelerator": "cpu"},
                 "evaluation": {"statistical": ["damped", "naive"], "combination": []}, "publish": {"plot_series": 1}}
    as_of = datetime(2020, 3, 9)
    out = retrain_flow(as_of=as_of, source=source, home=str(tmp_path / "home"), overrides=overrides)
    assert "No series is long enough for a network in the backtest (one needs " in out["note"]
    assert "could not be trained" not in out["note"]
    assert {r["kind"] for r in out["leaderboard"]} == {"statistical"}
    assert out["champion"] == "naive" and out["published_rows"] == 3 * 7  # tied with damped on 1-point cuts: simpler
    assert not list((tmp_path / "home" / "runs").glob("*/*-backtest"))  # no training was started


def test_a_forecast_run_says_why_a_level_is_missing_as_the_retrain_did(tmp_path):
    """Regression: a retrain whose backtest left too few calibration points for a 95% interval said so
    ('damped publishes no 95% interval: ...'), but the forecast runs after it published the same rows
    without the 95% bounds and said nothing: neither the log, the receipt nor `flowcast forecast --json`."""
    from flowcast.flows import forecast_flow, retrain_flow

    source = _short_daily_source(tmp_path)
    overrides = {"model": {"cells": []}, "evaluation": {"statistical": ["damped", "naive"], "combination": []},
                 "publish": {"plot_series": 1}}
    as_of = datetime(2020, 3, 9)
    home = str(tmp_path / "home")
    said = next(n for n in retrain_flow(as_of=as_of, source=source, home=home, overrides=overrides)["note"].split(". ")
                if n.startswith("naive publishes no 95% interval:"))  # tied with damped: the simpler
    out = forecast_flow(as_of=as_of, source=source, home=home, overrides=overrides)
    # the key holds these very forecasts (the retrain published them): nothing again, its notes said all the same
    assert out["published_rows"] == 0 and out["skipped"] and out["published_by"], out
    assert "so this run publishes nothing again" in out["note"]
    assert said in out["note"] and "a 95% conformal interval needs at least 19" in said, (said, out["note"])
    assert "no 80% interval" not in out["note"]
    # its steps beyond the backtest's 4 are widened, and a forecast run says so as the retrain did
    assert "naive's 80% intervals at steps 5-7 are beyond the 4 calibrated" in out["note"]


def _quarterly_rows(n_series: int = 12) -> list[dict]:
    """Seasonal quarterly series with trend, ending in 2019-Q4: 26 to 46 quarters long, and the last two
    new ones of 3 and 6 quarters (shorter than the mlp's lookback of 8: padded, or a statistical model)."""
    out = []
    for s in range(n_series):
        n = {n_series - 2: 3, n_series - 1: 6}.get(s, 26 + 2 * s)
        for t in range(40 - n, 40):
            y = 200 + 15 * s + 1.5 * t + 12 * math.sin(2 * math.pi * t / 4 + s) + ((t * 5 + s) % 7 - 3)
            out.append({"id": f"Q{s}", "quarter": f"{2010 + t // 4}-{3 * (t % 4) + 1:02d}-01", "v": round(y, 2)})
    return out


def test_quarterly_data_run_the_quarterly_recipe_end_to_end(tmp_path):
    """Quarterly data get FREQUENCY_DEFAULTS['1q'] (M3 quarterly: published 8.99 on the test): a global
    mlp retrained for every one of 4 backtest windows next to the statistical members, the hybrid and
    comb on one board, and every series published with intervals (only the steps are fewer here)."""
    from flowcast.flows import retrain_flow

    csv = tmp_path / "q.csv"
    pl.DataFrame(_quarterly_rows()).write_csv(csv)
    source = {"name": "quarters", "path": str(csv), "id_cols": ["id"], "time_col": "quarter", "target_col": "v",
              "freq": "1q", "horizon": 8, "y_min": 0}
    overrides = {"model": {"max_steps": 30, "launcher": "inline", "accelerator": "cpu"}, "publish": {"plot_series": 2}}
    as_of = datetime(2019, 12, 31)
    out = retrain_flow(as_of=as_of, source=source, home=str(tmp_path / "home"), overrides=overrides)

    board = {r["model"]: r for r in out["leaderboard"]}
    assert {"mlp", "hybrid", "comb", "arima", "dotm", "theta", "damped"} <= set(board)
    assert board["mlp"]["rank"] is not None and out["spans"]["n_windows"] == 4
    pub = _published(str(tmp_path / "home"), "quarters", as_of)
    assert pub["unique_id"].n_unique() == 12 and pub.height == 12 * 8
    assert pub.select(pl.all_horizontal(pl.col(c).is_finite() for c in INTERVAL_COLUMNS).all()).item()
    if out["champion"] in ("mlp", "hybrid"):  # a network champion's mlp is registered as one
        v = ModelRegistry(tmp_path / "home" / "models").production("quarters")
        assert v is not None
        assert any(c.get("cell") == "mlp" for c in v.recipe["components"]), v.recipe


def _one_month_stores_retrained(tmp_path: Path) -> tuple[dict, dict, ModelRegistry]:
    """Three stores of one month each (nothing to backtest: naive publishes without promoting), retrained once at
    AS_OF: the flows' keyword arguments, that run's result and the registry."""
    from flowcast.flows import retrain_flow

    csv = tmp_path / "raw" / "sales.csv"
    csv.parent.mkdir(parents=True)
    stores = {"S0": "north", "S1": "north", "S2": "south"}
    pl.DataFrame([r for s, region in stores.items() for r in _monthly_rows(s, region, 113, 1)]).write_csv(csv)
    kw = {"source": _source(csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}
    first = retrain_flow(as_of=AS_OF, **kw)
    return kw, first, ModelRegistry(Path(kw["home"]) / "models")


def test_a_refused_publish_without_promoting_takes_back_its_registered_version(tmp_path, monkeypatch):
    """A second retrain of three one-month stores (nothing to backtest, naive in production: 'publish' without
    promoting) whose date another run published while it computed (overwrite off) publishes nothing, leaves
    production alone, and takes back the version it registered for that publish, as a refused promotion or
    champion is taken back: no publish names it."""
    from flowcast.config import load_settings
    from flowcast.flows import pipeline, retrain_flow
    from flowcast.store import open_store

    kw, first, registry = _one_month_stores_retrained(tmp_path)
    assert registry.production("regions").version == first["model_version"]
    later = datetime(2019, 6, 2)
    theirs = _published(kw["home"], "regions", AS_OF).select("unique_id", "ds", "step", "y_hat")
    real_check = pipeline.published_already

    def then_another_run_publishes(settings_, as_of):  # the race window: right after this run's first check
        found = real_check(settings_, as_of)
        open_store(load_settings(None, home=kw["home"])).publish(
            theirs, dataset="regions", as_of=later, model="naive", model_version=first["model_version"],
            run_id="another-run", created_at=datetime(2019, 6, 2, 1))
        return found

    monkeypatch.setattr(pipeline, "published_already", then_another_run_publishes)
    late = retrain_flow(as_of=later, overwrite=False, **kw)
    assert (late["skipped"], late["published_rows"], late["published_by"]) == (True, 0, "another-run")
    assert (late["decision"]["action"], late["decision"]["promote"]) == ("publish", False)
    assert registry.production("regions").version == first["model_version"]  # production left alone
    assert set(_published(kw["home"], "regions", later)["run_id"]) == {"another-run"}
    assert late["model_version"] != first["model_version"]
    assert late["model_version"] not in [v.version for v in registry.list()]  # taken back: no publish names it
    assert late["registered"] == {}


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("rerun", "fault"), [("retrain", "registry:taken_back"), ("backfill", "registry:taken_back"),
                                              ("retrain", "registry:before_version_removal")])
def test_a_refused_publish_without_promoting_killed_after_its_take_back_gets_its_follow_up_decision(tmp_path, rerun,
                                                                                                   fault):
    """takeback21: a retrain that publishes its winner without promoting it (one observation a series: 'publish'),
    overwrite off, whose publish was refused (another run published its date), a real process SIGKILLed right after
    it took back the version it registered (FLOWCAST_FAULT=registry:taken_back), before its follow-up decision
    artifact: its decision ('To publish: naive'), stayed the key's newest for good, and nothing in the registry named
    the run. A `take_back` event names it now; the retrain of the date that skips it (`rerun` retrain), or a retrain
    backfill over the date (`rerun` backfill; the killed run a backfill's date, its artifacts under the `backfill-`
    keys), writes the follow-up, once. faults22: killed between the `take_back` event and the removal of the
    version's files (`registry:before_version_removal`), the version stayed registered and listed until `flowcast
    gc`: it is not listed once its event is in, and the next run of the date removes its files."""
    from test_retrain_slot import _killed_late_retrain

    from flowcast.config import load_settings
    from flowcast.flows import backfill_flow, retrain_flow
    from flowcast.store import open_store

    kw, first, registry = _one_month_stores_retrained(tmp_path)
    later = datetime(2019, 6, 2)
    theirs = _published(kw["home"], "regions", AS_OF).select("unique_id", "ds", "step", "y_hat")
    open_store(load_settings(None, home=kw["home"])).publish(
        theirs, dataset="regions", as_of=later, model="naive", model_version=first["model_version"],
        run_id="another-run", created_at=datetime(2019, 6, 2, 1))
    backfill = rerun == "backfill"
    _killed_late_retrain({**kw, "as_of": later.isoformat(), "overwrite": False}, fault, backfill=backfill)
    (taken,) = [e for e in registry.history("regions") if e["action"] == "take_back"]
    assert taken["version"] not in [v.version for v in registry.list()]  # removed (or its removal due) before the kill
    assert (registry.versions_dir / taken["version"]).is_dir() == (fault == "registry:before_version_removal")
    assert registry.production("regions").version == first["model_version"]  # left alone
    key = artifact_key("decision", "regions", backfill=backfill)
    (killed,) = artifacts_of(taken["run"])[key]  # its decision, written before its publish: the winner, to publish
    assert killed.data.startswith(f"### To publish: **naive** ({taken['version']})"), killed.data[:200]
    said = (f"The newest decision of regions (run {taken['run']}) chose {taken['version']} to publish without "
            "promoting it; that run took it back")

    def again() -> tuple[str, dict]:
        if not backfill:
            done = retrain_flow(as_of=later, overwrite=False, **kw)
            assert done["skipped"] and done["published_rows"] == 0
            return done["note"], artifacts_of(done["run_id"])
        done = backfill_flow(start=later, end=later, mode="retrain", **kw)
        (o,) = done["outcomes"]
        assert o["status"] == "skipped" and o["error"].startswith("already published (overwrite=False)")
        return o["error"], artifacts_of(done["run_id"])

    note, arts = again()
    assert said in note and "production of regions as it was" in note, note
    (decision,) = arts[key]
    assert decision.data.startswith("## Withdrawn: nothing published by this run") and taken["version"] in decision.data
    note, arts = again()  # said once: nothing more
    assert "took it back" not in note and key not in arts
    assert registry.production("regions").version == first["model_version"]
    assert not [d for d in registry.versions_dir.iterdir() if taken["version"] in d.name]  # its files gone
