"""The retrain's scoring stage: what the production model is scored on."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import polars as pl
import pytest

from flowcast.config import SourceConfig
from flowcast.data.sources import ingest
from flowcast.flows.retrain_scoring import trained_until


@pytest.mark.parametrize(("freq", "tz", "as_of"), [
    ("1d", "Australia/Melbourne", "2020-01-10T20:00:00+00:00"),  # 07:00 on 11 January there
    ("1d", "America/New_York", "2020-01-11T03:00:00+00:00"),  # 22:00 on 10 January there
    ("1d", None, "2020-01-10T20:00:00+00:00"),
    ("1mo", "Australia/Melbourne", "2020-01-31T20:00:00+00:00"),  # already February there
    ("1h", "Australia/Melbourne", "2020-01-10T20:00:00+00:00"),  # hourly ds are UTC instants
])
def test_the_production_models_data_ended_where_its_runs_ingestion_cut_it(tmp_path, freq, tz, as_of):
    """Regression: the production model counted as trained until its as_of in naive UTC, while the
    data it trained on was cut on the source's ds axis (local dates): with a source east of UTC its
    frozen weights were scored on a day (or month) they had been trained on, and with one west of
    UTC a window they had never seen was not scored."""
    hourly = freq == "1h"
    days = pl.datetime_range(datetime(2019, 12, 1), datetime(2020, 3, 1), "1h" if hourly else "1d", eager=True)
    pl.DataFrame({"id": "a", "t": days, "y": 1.0}).write_csv(tmp_path / "d.csv")
    source = SourceConfig(name="t", path=str(tmp_path / "d.csv"), id_cols=["id"], time_col="t", target_col="y",
                          freq=freq, tz=tz)
    seen = ingest(source, as_of).frame.select(pl.col("ds").max()).collect().item()
    until = trained_until(as_of, freq, tz)
    assert until is not None and seen <= until  # nothing it trained on is after it
    later = {"1d": pl.duration(days=1), "1mo": None, "1h": pl.duration(hours=1)}[freq]
    nxt = pl.select(pl.lit(seen).dt.offset_by("1mo") if later is None else pl.lit(seen) + later).item()
    assert nxt > until  # the next period's actuals are after it
    assert trained_until(None, freq, tz) is None


@pytest.mark.parametrize(("written", "tz", "hourly", "as_of", "last"), [
    ("+09:00", None, False, "2024-03-10T14:00:00+00:00", 10),  # Tokyo days written +09:00: 11 March seen at 15:00
    ("+09:00", None, False, "2024-03-10T16:00:00+00:00", 11),
    ("-05:00", None, False, "2024-03-10T04:00:00+00:00", 9),  # New York days written -05:00: seen from 05:00
    ("-05:00", None, False, "2024-03-10T06:00:00+00:00", 10),
    ("Z", "Asia/Tokyo", False, "2024-03-09T23:30:00+00:00", 9),  # a Tokyo source's dates written as midnight UTC
    ("Z", "Asia/Tokyo", False, "2024-03-10T00:30:00+00:00", 10),
    ("-05:00", None, True, "2024-03-10T04:00:00+00:00", 8),  # hours written -05:00 summed to days: 9 March not over
    ("-05:00", None, True, "2024-03-10T06:00:00+00:00", 9),
    ("", None, True, "2024-03-09T23:00:00+00:00", 8),  # hours summed to days: 9 March not over at 23:00
    ("", None, True, "2024-03-10T00:00:00+00:00", 9),
])
def test_the_production_models_last_period_is_the_last_its_run_observed_by_the_instant(tmp_path, written, tz,
                                                                                        hourly, as_of, last):
    """Regression: the production model's training cut was as_of's wall time against the grid's dates: a -05:00
    day its run at 04:00 UTC had not seen (or an aggregated day not over, the day holding as_of) counted as trained
    on, so the window starting there was not scored; a +09:00 day it had seen counted as after its training. The
    cut is the last period its run observed, by the instant, from this run's data (`ValidationResult.shifts`)."""
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    rows = []
    for i in range(40 * (24 if hourly else 1)):
        t = datetime(2024, 2, 1) + (timedelta(hours=i) if hourly else timedelta(days=i))
        rows.append(("a", f"{t:%Y-%m-%dT%H:%M:%S}{written}", 1.0))
    pl.DataFrame(rows, schema=["id", "t", "y"], orient="row").write_csv(tmp_path / "d.csv")
    source = SourceConfig(name="t", path=str(tmp_path / "d.csv"), id_cols=["id"], time_col="t", target_col="y",
                          freq="1d", tz=tz, aggregate="sum" if hourly else "none")
    trained = ingest(source, as_of).frame.select(pl.col("ds").max()).collect().item()
    assert trained == datetime(2024, 3, last)  # what its run trained on
    shifts = validate(ingest(source, "2024-03-12T12:00:00+00:00"), source, ValidationConfig()).shifts  # this run's
    assert (shifts is None) == (written == "")
    until = trained_until(as_of, "1d", tz, aggregate=source.aggregate, shifts=shifts)
    assert until is not None and trained <= until < trained + timedelta(days=1)


@pytest.mark.parametrize(("as_of", "last"), [("2024-03-10T04:00:00+00:00", 10), ("2024-03-10T06:00:00+00:00", 10)])
def test_the_production_models_cut_counts_the_series_written_without_an_offset(tmp_path, as_of, last):
    """Regression (review25): where one series' days were written with an offset (-05:00) and another's without,
    the production model's training cut was the latest period of the series with shifts alone (`seen_shifts` lists
    only rows written with an offset): 9 March at 04:00 UTC, while the run had trained on 10 March of the series
    without one, and the frozen weights were scored on a window they had been trained on."""
    from flowcast.config import ValidationConfig
    from flowcast.data.validate import validate

    rows = []
    for i in range(40):
        t = datetime(2024, 2, 1) + timedelta(days=i)
        rows += [("a", f"{t:%Y-%m-%dT%H:%M:%S}-05:00", 1.0), ("b", f"{t:%Y-%m-%d}", 2.0)]
    pl.DataFrame(rows, schema=["id", "t", "y"], orient="row").write_csv(tmp_path / "d.csv")
    source = SourceConfig(name="t", path=str(tmp_path / "d.csv"), id_cols=["id"], time_col="t", target_col="y",
                          freq="1d")
    trained = ingest(source, as_of).frame.select(pl.col("ds").max()).collect().item()
    assert trained == datetime(2024, 3, last)  # 'b' by its date: what its run trained on
    shifts = validate(ingest(source, "2024-03-12T12:00:00+00:00"), source, ValidationConfig()).shifts
    assert shifts is not None and set(shifts["unique_id"]) == {"a"}
    until = trained_until(as_of, "1d", None, shifts=shifts, ids=["a", "b"])
    assert until is not None and trained <= until < trained + timedelta(days=1)


# ------------------------------------------------------------ the calibration origins (evaluation.calibration_windows)
def _origins_case(days: list[int], wanted: int | None = 28):
    """Half-hourly series of `days` days each, the settings of the sub-daily recipe (`wanted` calibration windows),
    the seasonal naive's 2-window backtest and a logger whose records the test reads."""
    import logging

    from tests.evaluation.test_calibration_origins import DAY, _half_hourly, _td

    from flowcast.config import Settings, for_frequency, with_overrides
    from flowcast.evaluation.backtest import backtest
    from flowcast.flows.retrain_scoring import _statistical_fit

    frame = pl.concat([_half_hourly(d, seed=i).with_columns(pl.lit(f"s{i:03d}").alias("unique_id"))
                       for i, d in enumerate(days)])
    td = _td(frame)
    settings = with_overrides(for_frequency(Settings(), "30m"), evaluation={"calibration_windows": wanted})
    comps = {"seasonal_naive": backtest(td, _statistical_fit("seasonal_naive", DAY), name="seasonal_naive",
                                        n_windows=2, step=DAY, horizon=DAY)}
    records: list[str] = []
    log = logging.getLogger("test-origins")
    log.setLevel(logging.INFO)
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    return td, settings, comps, log, records, DAY


def test_calibration_origins_reuse_the_backtests_windows_and_leave_the_short_series_out(prefect_api):
    from flowcast.flows.retrain_scoring import _calibration_origins

    # one 8-day series among 11 of 40 days: the 80% decide the windows (min(lengths) gave 1: none for all)
    td, settings, comps, log, records, day = _origins_case([8] + [40] * 11)
    found = _calibration_origins(settings, td, ["seasonal_naive"], comps, horizon=day, hb=day, step=day, log=log)
    assert found is not None
    origins, td_o = found
    rows = origins["seasonal_naive"].forecasts
    assert rows["window"].n_unique() == 28 and "s000" not in td_o.frame["unique_id"].to_list()
    assert sorted(rows["unique_id"].unique().to_list()) == [f"s{i:03d}" for i in range(1, 12)]
    # the newest 2 are the backtest's own rows, not a refit of them
    newest = rows.filter(pl.col("window") >= 26).with_columns(pl.col("window") - 26).sort("unique_id", "window", "step")
    theirs = comps["seasonal_naive"].forecasts.filter(pl.col("unique_id") != "s000").sort("unique_id", "window", "step")
    assert newest.select(theirs.columns).equals(theirs)
    # each older window a day before the next
    cut = rows.group_by("window").agg(pl.col("cutoff").max()).sort("window")["cutoff"].diff().drop_nulls()
    assert cut.dt.total_hours().unique().to_list() == [24]
    assert any("on 28 windows of 48 periods" in r and "the newest 2 the backtest's" in r and "of 11 of 12 series" in r
               for r in records), records


def test_calibration_origins_are_bounded_and_say_why_they_are_skipped(prefect_api, monkeypatch):
    from flowcast.flows import retrain_scoring
    from flowcast.flows.retrain_scoring import _calibration_origins

    td, settings, comps, log, records, day = _origins_case([40] * 12)
    monkeypatch.setattr(retrain_scoring, "ORIGIN_BUDGET", 26 * 5)  # 5 series on the 26 older windows
    origins, td_o = _calibration_origins(settings, td, ["seasonal_naive"], comps, horizon=day, hb=day, step=day,
                                         log=log) or (None, None)
    assert origins is not None and td_o is not None and td_o.n_series == 5
    assert origins["seasonal_naive"].forecasts["unique_id"].n_unique() == 5
    # the setting given wins: 2 windows are the backtest's, nothing more to fit, and the log says why
    records.clear()
    from flowcast.config import Settings, with_overrides

    two = with_overrides(settings, evaluation={"calibration_windows": 2})
    assert _calibration_origins(two, td, ["seasonal_naive"], comps, horizon=day, hb=day, step=day, log=log) is None
    assert any("not on evaluation.calibration_windows 2" in r and "room for 2 windows" in r for r in records), records
    # not asked for (the defaults of data other than sub-daily): nothing done, nothing said
    records.clear()
    none = Settings()
    assert _calibration_origins(none, td, ["seasonal_naive"], comps, horizon=day, hb=day, step=day, log=log) is None
    assert records == []


def test_no_origins_are_refit_where_the_production_model_publishes_with_its_registered_intervals(prefect_api):
    """fixE53: with production published, its fallback's origins were refit (a minute on 100 hourly series) for a
    `fallback_cal` that `build(PRODUCTION)` reads only for a model registered without intervals."""
    import copy
    import dataclasses

    from flowcast.evaluation.candidates import PRODUCTION, CandidateSpec, evaluate_candidates
    from flowcast.flows.retrain_scoring import _calibrate_published

    td, settings, comps, log, records, day = _origins_case([40] * 12)
    spec = CandidateSpec(name="seasonal_naive", kind="statistical", groups=[("seasonal_naive", ["seasonal_naive"])])
    cands, fallback, fallback_cal = evaluate_candidates([spec], comps, td, statistical=["seasonal_naive"], metric="mae",
                                                        resolution=10, horizon=day, n_windows=2, step=day)
    kept = dataclasses.replace(cands[0], spec=dataclasses.replace(spec, name=PRODUCTION, kind="production"))
    fallback = ["seasonal_naive"]
    fallback_cal = {"seasonal_naive": cands[0].calibration}
    before = copy.deepcopy(fallback_cal)
    kw = {"statistical": ["seasonal_naive"], "horizon": day, "hb": day, "step": day, "bounds": (None, None),
          "log": log}
    _calibrate_published(settings, td, [kept, *cands], PRODUCTION, fallback, fallback_cal, comps, **kw,
                         production_calibrated=True)
    assert records == [] and fallback_cal == before
    # one registered without intervals takes this run's fallback calibration: its origins are computed
    _calibrate_published(settings, td, [kept, *cands], PRODUCTION, fallback, fallback_cal, comps, **kw,
                         production_calibrated=False)
    assert any("Calibrating the intervals of seasonal_naive" in r for r in records), records


def test_a_network_champion_keeps_its_backtest_calibration_saying_so_and_every_fit_free_fallback_takes_the_origins(
        prefect_api, tmp_path):
    """subdaily54: a network's published intervals kept the backtest's calibration (its oldest window: one day) with no
    word of the 28 origins asked for, and only the first model of the chain was recalibrated on them; a series the
    second forecast kept that model's 2-window widths. The network (trained before the backtest's windows, where
    the older origins lie in its training data) keeps it and says so; every model of the chain that fits nothing is
    recalibrated."""
    import copy

    from tests.evaluation.test_calibration_origins import DAY, _td

    from flowcast.config import ModelConfig
    from flowcast.evaluation.backtest import backtest
    from flowcast.evaluation.candidates import evaluate_candidates, plan_candidates
    from flowcast.evaluation.conformal import calibration_notes
    from flowcast.flows.retrain_scoring import _calibrate_published, _origin_room, _statistical_fit
    from flowcast.models.predict import predict
    from flowcast.models.train import train_model

    td, settings, comps, log, records, day = _origins_case([40] * 3)
    stats = ["seasonal_naive", "snaive_week", "naive"]
    for s in stats[1:]:
        comps[s] = backtest(td, _statistical_fit(s, day), name=s, n_windows=2, step=day, horizon=day)
    cfg = ModelConfig(lookback=DAY, hidden_size=8, num_layers=1, batch_size=32, max_steps=3, launcher="inline",
                      accelerator="cpu", devices=1, early_stopping_patience=None, num_threads=1)

    def fit(train):
        art = train_model(train, cfg, tmp_path / "gru", cell="gru")
        return lambda cut: predict(art, cut, day)

    plan = plan_candidates(cells=["gru"], seeds=1, base_seed=0, statistical=stats, combination=[], ensemble=False,
                           hybrid=False)
    (member,) = plan.members
    comps[member.key] = backtest(td, fit, name=member.key, n_windows=2, step=day, horizon=day)
    cands, fallback, fallback_cal = evaluate_candidates(plan.specs, comps, td, statistical=stats, metric="mae",
                                                        resolution=10, horizon=day, n_windows=2, step=day)
    fresh = copy.deepcopy((cands, fallback_cal))
    gru = next(c for c in cands if c.name == "gru")
    widths = copy.deepcopy(gru.calibration["q"])
    assert len(fallback) == 3 and not any(c.get("windows") for c in fallback_cal.values())
    _calibrate_published(settings, td, cands, "gru", fallback, fallback_cal, comps, statistical=stats, horizon=day,
                         hb=day, step=day, bounds=(None, None), log=log)
    # the network's widths are the backtest's, and its notes say why not the origins'
    assert gru.calibration["q"] == widths and gru.calibration["origins_kept"] == {"wanted": 28, "windows": 1,
                                                                                       "origins": 28}
    said = [n for n in calibration_notes(gru.calibration, "gru") if "origins" in n]
    assert said == [("gru's 80%/95% intervals are calibrated on its errors in the backtest's oldest window, not at the "
                     "28 origins of evaluation.calibration_windows: its networks are not refit per origin, the older "
                     "origins lie in the data they were trained on, and those after it are the backtest's own "
                     "windows.")], said
    # every model of the chain, not the first alone, is calibrated on the origins (the second on windows of its own)
    assert {s: fallback_cal[s].get("windows") for s in stats} == {s: 28 for s in stats}, fallback
    assert sum("Calibrating the intervals of" in r for r in records) == 2, records

    # fixA54: data with room for fewer origins: the note says how many (it said the 28 asked for) ...
    def on_last(periods: int):
        records.clear()
        cs, cal = copy.deepcopy(fresh)
        tail = _td(td.frame.sort("unique_id", "ds").group_by("unique_id", maintain_order=True).tail(periods))
        _calibrate_published(settings, tail, cs, "gru", fallback, cal, comps, statistical=stats, horizon=day, hb=day,
                             step=day, bounds=(None, None), log=log)
        return next(c for c in cs if c.name == "gru").calibration, tail

    cal, tail = on_last(20 * day)
    room = _origin_room(settings, tail, history=settings.model.lookback, hb=day)
    assert 2 < room < 28 and cal["origins_kept"] == {"wanted": 28, "windows": 1, "origins": room}
    said = [n for n in calibration_notes(cal, "gru") if "origins" in n]
    assert len(said) == 1 and f"not at the {room} origins the data leave room for (evaluation.calibration_windows " \
        "28): its networks" in said[0], said
    # ... and with room for none older than the backtest's 2 windows, no note of origins it could not use; the log
    # says once (not once per group of models) why the intervals stay the backtest's, in words of the real counts
    cal, _ = on_last(5 * day // 2)
    assert "origins_kept" not in cal and not [n for n in calibration_notes(cal, "gru") if "origins" in n]
    kept = [r for r in records if "calibrated on the backtest's" in r]
    assert kept == [("The intervals are calibrated on the backtest's 2 windows, not on "
                     "evaluation.calibration_windows 28: 80% of the series leave room for 1 window of 48 periods after "
                     "the 48 periods seasonal_naive needs and 0 windows of 48 periods after the 336 periods "
                     "snaive_week and naive need")], records


def _production_retrain(tmp_path, intervals: bool):
    """The scoring stage as `retrain_flow` runs it (`backtest_data`, `score_candidates`, then the short series'
    calibration) on 5 half-hourly series of 40 days and one of 60 half hours (too short for the backtest), with a
    production seasonal_naive registered by an earlier run, with that run's intervals or (`intervals` False) without:
    (the scored stage, all the data, the production version, the log's records)."""
    import copy

    from tests.evaluation.test_calibration_origins import DAY, _half_hourly, _td

    from flowcast.config import with_overrides
    from flowcast.evaluation.candidates import add_short_calibration
    from flowcast.flows.retrain_scoring import backtest_data, score_candidates
    from flowcast.registry import ModelVersion
    from flowcast.reporting import Scope

    _, settings, _, log, records, _ = _origins_case([40])
    td = _td(pl.concat([_half_hourly(40, seed=i).with_columns(pl.lit(f"s{i}").alias("unique_id")) for i in range(5)]
                       + [_half_hourly(2, seed=9).head(60).with_columns(pl.lit("short").alias("unique_id"))]))
    settings = with_overrides(settings, evaluation={"statistical": ["seasonal_naive", "naive"], "combination": []},
                              model={"cells": []})
    settings, td_bt, spans = backtest_data(settings, td, DAY)
    kw = {"horizon": DAY, "bounds": (None, None), "run_dir": tmp_path, "scope": Scope("t"), "promote": True, "log": log}
    earlier = score_candidates(settings, td_bt, spans, production=None, **kw)  # the run that registered it
    # (a copy: a registered version's recipe is read from its file, not shared with a run's candidates)
    cal = copy.deepcopy(earlier.by_name["seasonal_naive"].calibration) if intervals else None
    recipe = {"name": "seasonal_naive", "kind": "statistical",
              "components": [{"type": "statistical", "model": "seasonal_naive"}], "weights": [1.0],
              "fallback": ["naive"], "intervals": {"seasonal_naive": cal} if cal else {}}
    version = ModelVersion(version="seasonal_naive-v1", name="seasonal_naive", path=tmp_path, config={},
                           fingerprint={}, metrics={}, as_of=None, created_at="", kind="statistical", recipe=recipe)
    records.clear()
    scored = score_candidates(settings, td_bt, spans, production=version, **kw)
    add_short_calibration([c.calibration for c in scored.candidates] + list(scored.fallback_cal.values()), td,
                          spans.need, scored.hb)
    return scored, td, version, records, settings


def test_a_production_model_publishing_its_registered_intervals_refits_no_origins_in_the_scoring_stage(
        prefect_api, tmp_path):
    """subdaily54: the skip of fixE53 was tested on `_calibrate_published` alone; here through `score_candidates`,
    which must tell it whether the production model has registered intervals (`registered_intervals`)."""
    from flowcast.evaluation.candidates import PRODUCTION

    scored, _, _, records, _ = _production_retrain(tmp_path, intervals=True)
    assert scored.decision.publish == PRODUCTION, scored.decision.reasons
    assert not any("Calibrating the intervals" in r for r in records), records
    # one registered without intervals takes this run's calibration: its origins are refit
    scored, _, _, records, _ = _production_retrain(tmp_path, intervals=False)
    assert scored.decision.publish == PRODUCTION, scored.decision.reasons
    assert any("Calibrating the intervals of seasonal_naive" in r for r in records), records


def test_a_kept_production_model_publishes_this_runs_short_calibration_for_its_short_series(prefect_api, tmp_path):
    """subdaily54: fixE53's `build(PRODUCTION)` giving the registered calibration the run's short part was tested on
    `give_short` alone; here `_Builder.build` of the scored stage, and the forecast of the short series it publishes:
    its widths are the short part's, the long series' the registered ones."""
    from flowcast.evaluation.candidates import PRODUCTION, short_part
    from flowcast.flows.pipeline import _Builder
    from flowcast.models.recipes import forecast_detailed, load_recipe
    from flowcast.reporting import Scope

    scored, td, version, _, settings = _production_retrain(tmp_path, intervals=True)
    assert scored.decision.publish == PRODUCTION, scored.decision.reasons
    short = short_part([c.calibration for c in scored.candidates] + list(scored.fallback_cal.values()))
    assert short is not None
    builder = _Builder(settings=settings, scored=scored, td=td, horizon=scored.hb, bounds=(None, None),
                       as_of=datetime(2021, 4, 10), run_dir=tmp_path, scope=Scope("t"), production=version,
                       log=logging.getLogger("test-build"))
    width = (pl.col("y_hat_hi80") - pl.col("y_hat_lo80")).alias("w80")
    # (the registered widths: the build changes no calibration of the version, see the test below)
    registered = forecast_detailed(load_recipe(version), td, scored.hb).frame.select("unique_id", "step", width)
    recipe = builder.build(PRODUCTION)
    assert recipe.intervals["seasonal_naive"]["short"] == short
    built = forecast_detailed(recipe, td, scored.hb).frame.select("unique_id", "step", width)
    assert built.filter(pl.col("unique_id") != "short").equals(registered.filter(pl.col("unique_id") != "short"))
    mine = built.filter(pl.col("unique_id") == "short")["w80"]
    theirs = registered.filter(pl.col("unique_id") == "short")["w80"]
    assert mine.len() == scored.hb and not mine.equals(theirs), (mine, theirs)


def test_building_the_production_model_leaves_the_registered_versions_recipe_as_it_was(prefect_api, tmp_path):
    """fixA54: `load_recipe` copied the registered recipe's top level alone, so `build(PRODUCTION)` gave the short
    part to the calibrations of the version as held in memory: a forecast of it after the build, or a second build,
    read this run's short widths as registered. The build works on its own copy; the version is unchanged."""
    import copy

    from flowcast.evaluation.candidates import PRODUCTION
    from flowcast.flows.pipeline import _Builder
    from flowcast.models.recipes import load_recipe
    from flowcast.reporting import Scope

    scored, td, version, _, settings = _production_retrain(tmp_path, intervals=True)
    assert scored.decision.publish == PRODUCTION, scored.decision.reasons
    before = copy.deepcopy(version.recipe)
    assert "short" not in before["intervals"]["seasonal_naive"]
    builder = _Builder(settings=settings, scored=scored, td=td, horizon=scored.hb, bounds=(None, None),
                       as_of=datetime(2021, 4, 10), run_dir=tmp_path, scope=Scope("t"), production=version,
                       log=logging.getLogger("test-build"))
    first = builder.build(PRODUCTION)
    assert "short" in first.intervals["seasonal_naive"]
    assert version.recipe == before and load_recipe(version).intervals == before["intervals"]
    second = builder.build(PRODUCTION)
    assert second.intervals == first.intervals and version.recipe == before
    second.intervals["seasonal_naive"]["q"].clear()  # (two builds share nothing either)
    assert first.intervals["seasonal_naive"]["q"]
