"""Intervals of the statistical candidates calibrated on more origins than the backtest's windows
(`evaluation.calibration_windows`): on half-hourly data whose days differ as a whole (weather), a day's horizon
calibrated on the 2 backtest windows' 96 errors covers far less than its level; on 28 daily origins, about it."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flowcast.config import Settings, for_frequency
from flowcast.data.training_data import TrainingData, TrainingMeta, fit_scalers
from flowcast.evaluation.backtest import backtest
from flowcast.evaluation.candidates import (
    CandidateSpec,
    calibrate_on_origins,
    calibration_windows,
    evaluate_candidates,
)
from flowcast.evaluation.conformal import apply_intervals, calibration_notes, series_scale
from flowcast.models.recipes import component_forecast

DAY = 48  # half hours
START = datetime(2021, 3, 1)
MODEL = "seasonal_naive"


def _half_hourly(days: int, seed: int) -> pl.DataFrame:
    """unique_id, ds, y: one half-hourly series, a daily cycle, a level of each day's own (an AR(1) of the days:
    the weather) and noise at every half hour."""
    rng = np.random.default_rng(seed)
    level = np.zeros(days)
    for k in range(1, days):
        level[k] = 0.5 * level[k - 1] + rng.normal(0, 3.0)
    t = np.arange(days * DAY)
    y = 100 + 10 * np.sin(2 * np.pi * t / DAY) + np.repeat(level, DAY) + rng.normal(0, 1.0, t.size)
    return pl.DataFrame({"unique_id": "s", "ds": [START + timedelta(minutes=30 * int(i)) for i in t], "y": y})


def _td(frame: pl.DataFrame) -> TrainingData:
    meta = TrainingMeta(freq="30m", horizon=DAY, lookback=DAY, val_size=0, season_length=DAY, scaler="none")
    return TrainingData(frame=frame, scalers=fit_scalers(frame, "none", False), meta=meta)


def _fit(_td: TrainingData):
    return lambda cut: component_forecast({"type": "statistical", "model": MODEL}, cut, DAY)


def _published(td: TrainingData, origins: int | None) -> tuple[pl.DataFrame, dict]:
    """The next day's forecast of `MODEL` with the intervals its retrain would publish: calibrated on the 2 backtest
    windows, or on `origins` calibration windows."""
    comps = {MODEL: backtest(td, _fit, name=MODEL, n_windows=2)}
    (res,), _, _ = evaluate_candidates([CandidateSpec(MODEL, "statistical", [(MODEL, [MODEL])])], comps, td,
                                       statistical=[MODEL], metric="mase", resolution=10, horizon=DAY, n_windows=2,
                                       step=DAY)
    if origins:
        n = calibration_windows(td.lengths()["length"].to_list(), horizon=DAY, wanted=origins, history=DAY, share=0.8)
        assert calibrate_on_origins([res], {MODEL: backtest(td, _fit, name=MODEL, n_windows=n)}, td,
                                    horizon=DAY) == [MODEL]
    fc = component_forecast({"type": "statistical", "model": MODEL}, td, DAY)
    scale = series_scale(td.frame, DAY, constant=True, freq="30m")
    return apply_intervals(fc, res.calibration, scale), res.calibration


def _coverage(origins: int | None, days: int = 60, held: int = 20) -> tuple[float, float]:
    """80% and 95% coverage of the published intervals over the `held` days after as_ofs at the last `held`
    midnights of the series, each run seeing only the days before it."""
    full = _half_hourly(days, seed=7)
    hits: dict[int, list[bool]] = {80: [], 95: []}
    for k in range(days - held, days):
        cut = START + timedelta(days=k)
        fc, _ = _published(_td(full.filter(pl.col("ds") < cut)), origins)
        day = fc.join(full, on=["unique_id", "ds"], how="inner")
        assert day.height == DAY
        for lv in hits:
            hits[lv] += day.select((pl.col("y") >= pl.col(f"y_hat_lo{lv}")) & (pl.col("y") <= pl.col(f"y_hat_hi{lv}"))
                                   ).to_series().to_list()
    return float(np.mean(hits[80])), float(np.mean(hits[95]))


def test_a_days_horizon_calibrated_on_four_weeks_of_origins_covers_its_levels():
    before80, before95 = _coverage(origins=None)
    after80, after95 = _coverage(origins=28)
    # the backtest's 2 windows: two days' level shifts seen (0.73 / 0.86 with this seed)
    assert before80 < 0.76 and before95 < 0.9, (before80, before95)
    # 28 daily origins: 0.85 / 0.975 (a step's 95% width is the largest of its 28 errors: at least 28/29 expected)
    assert abs(after80 - 0.8) <= 0.08 and after95 >= 0.93, (after80, after95)


def test_calibration_windows_step_per_step_and_the_note_says_so():
    td = _td(_half_hourly(40, seed=1))
    _, cal = _published(td, origins=28)
    assert cal["windows"] == 28
    assert len(cal["q"]["95"]) == DAY and "pooled_steps" not in cal  # 28 errors a step: each step its own
    note = " ".join(calibration_notes(cal, MODEL, DAY))
    assert "at 28 origins 48 periods apart (evaluation.calibration_windows)" in note


@pytest.mark.parametrize(("lengths", "wanted", "history", "n"), [
    ([40 * DAY], 28, DAY, 28),  # room for all of them
    ([40 * DAY, 20 * DAY], 28, 7 * DAY, 13),  # the shorter series (of 2: 80% is both) leaves a week: 13 of them
    ([40 * DAY], None, DAY, 0),  # not asked for: the backtest's windows calibrate
    ([DAY], 28, 1, 0),  # no room for one
    # one 8-day series among 499 of 40 days: the 80% decide (it was min(lengths): 1 window, so none for all)
    ([8 * DAY] + [40 * DAY] * 499, 28, 7 * DAY, 28),
])
def test_calibration_windows_leave_every_model_the_history_it_needs(lengths, wanted, history, n):
    assert calibration_windows(lengths, horizon=DAY, wanted=wanted, history=history, share=0.8) == n


def test_only_sub_daily_data_takes_calibration_windows_by_default():
    assert for_frequency(Settings(), "30m").evaluation.calibration_windows == 28
    assert for_frequency(Settings(), "1h").evaluation.calibration_windows == 28
    for freq in ("1d", "1w", "1mo", "1q", "1y"):
        assert for_frequency(Settings(), freq).evaluation.calibration_windows is None


def test_a_combinations_origin_pairs_are_filled_from_a_member_in_its_fallback_as_in_its_backtest():
    """fixE53: `evaluate_candidate` drops only the candidate's own name from its fallback, `origin_calibration` dropped
    all its members: a pair the combination cannot forecast stayed unscored where the backtest filled it from the
    member first in the chain (the only fallback the origins compute beside the members)."""
    import dataclasses

    from flowcast.evaluation.candidates import origin_calibration, origin_rows

    td = _td(pl.concat([_half_hourly(12, seed=i).with_columns(pl.lit(f"s{i}").alias("unique_id")) for i in range(3)]))

    def fit(model: str):
        return lambda _td: lambda cut: component_forecast({"type": "statistical", "model": model}, cut, DAY)

    origins = {m: backtest(td, fit(m), name=m, n_windows=4) for m in (MODEL, "naive")}
    spec = CandidateSpec("pair", "combination", [(MODEL, [MODEL]), ("naive", ["naive"])])
    (single,), _, _ = evaluate_candidates([CandidateSpec(MODEL, "statistical", [(MODEL, [MODEL])])],
                                          {MODEL: origins[MODEL]}, td, statistical=[MODEL], metric="mase",
                                          resolution=10, horizon=DAY, n_windows=4, step=DAY)
    pair = dataclasses.replace(single, spec=spec, weights=[0.5, 0.5])
    rows = origin_rows(origins, td).with_columns(  # naive cannot forecast s1: the pair's s1 rows are filled
        pl.when(pl.col("unique_id") == "s1").then(float("nan")).otherwise(pl.col("naive::y_hat")).alias("naive::y_hat"))
    copy = rows.with_columns(pl.col(f"{MODEL}::y_hat").alias("copy::y_hat"))
    kw = {"horizon": DAY, "levels": (80, 95), "bounds": (None, None)}
    member = origin_calibration(pair, rows, td, fallback=[MODEL, "naive"], **kw)
    other = origin_calibration(pair, copy, td, fallback=["copy"], **kw)
    assert member is not None and other is not None
    assert member["q"] == other["q"] and member.get("n") == other.get("n")
