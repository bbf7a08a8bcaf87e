"""Metrics against values computed by hand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import float_noise
import numpy as np
import polars as pl
import pytest

from flowcast.evaluation.metrics import mase_scale, rmsse_scale, score

D = lambda i: datetime(2020, 1, 1) + timedelta(days=i)


def _insample() -> pl.DataFrame:
    # a: 1, 3, 2, 4 -> lag-1 diffs 2, 1, 2 (mean 5/3); lag-2 diffs 1, 1 (mean 1)
    # b: 10, 10, 10, 10 -> constant: scale 0
    return pl.DataFrame({
        "unique_id": ["a"] * 4 + ["b"] * 4,
        "ds": [D(i) for i in range(4)] * 2,
        "y": [1.0, 3.0, 2.0, 4.0, 10.0, 10.0, 10.0, 10.0],
    })


def _forecasts() -> pl.DataFrame:
    return pl.DataFrame({
        "unique_id": ["a", "a", "b", "b"],
        "ds": [D(4), D(5), D(4), D(5)],
        "y": [5.0, 3.0, 10.0, 0.0],
        "y_hat": [4.0, 6.0, 10.0, 0.0],
        "y_hat_q10": [3.0, 2.0, 9.0, 1.0],
        "y_hat_q90": [6.0, 7.0, 11.0, 2.0],
    })


def test_point_metrics_by_hand():
    out = score(_forecasts(), _insample(), season_length=2, quantiles=[0.1, 0.9])
    a = out.filter(pl.col("unique_id") == "a").row(0, named=True)
    # errors 1, -3
    assert a["mae"] == pytest.approx(2.0)
    assert a["rmse"] == pytest.approx(math.sqrt((1 + 9) / 2))
    assert a["smape"] == pytest.approx((200 * 1 / 9 + 200 * 3 / 9) / 2)
    assert a["mase"] == pytest.approx(2.0 / 1.0)  # seasonal (m=2) scale = 1
    # pinball q=0.1: y-f = 2, 1 -> 0.1*2, 0.1*1 -> mean 0.15; q=0.9: y-f = -1, -4 -> 0.1*1, 0.1*4 -> 0.25
    assert a["pinball_q10"] == pytest.approx(0.15)
    assert a["pinball_q90"] == pytest.approx(0.25)
    assert a["coverage"] == pytest.approx(1.0)  # 5 in [3, 6], 3 in [2, 7]
    b = out.filter(pl.col("unique_id") == "b").row(0, named=True)
    assert b["mae"] == 0.0 and b["rmse"] == 0.0
    assert b["smape"] == 0.0  # y = f = 0 counts as a perfect forecast, not 0/0
    assert b["mase"] is None  # constant history: scale 0, MASE undefined (null, never inf)
    assert b["coverage"] == pytest.approx(0.5)  # 10 in [9, 11]; 0 not in [1, 2]
    assert out.columns[:3] == ["model", "unique_id", "window"]


@pytest.mark.parametrize(
    "season_length, expected_scale",
    [(1, 5 / 3), (2, 1.0), (3, 3.0), (4, 5 / 3), (12, 5 / 3)],  # m >= history length falls back to lag 1
)
def test_mase_scale_season_lengths(season_length, expected_scale):
    scale = mase_scale(_insample(), season_length).filter(pl.col("unique_id") == "a")["scale"][0]
    assert scale == pytest.approx(expected_scale)


def test_mase_scale_only_uses_history_up_to_each_cutoff():
    fc = pl.concat([
        _forecasts().with_columns(pl.lit(D(2)).alias("cutoff"), pl.lit(0).alias("window")),
        _forecasts().with_columns(pl.lit(D(3)).alias("cutoff"), pl.lit(1).alias("window")),
    ]).drop("y_hat_q10", "y_hat_q90")
    out = score(fc, _insample(), season_length=1).filter(pl.col("unique_id") == "a").sort("window")
    # cutoff D(2): history 1, 3, 2 -> diffs 2, 1 -> 1.5 ; cutoff D(3): 5/3
    assert out["mase"].to_list() == pytest.approx([2.0 / 1.5, 2.0 / (5 / 3)])
    assert out["cutoff"].to_list() == [D(2), D(3)]


def test_nan_forecast_gives_nan_metrics_not_a_silent_number():
    fc = _forecasts().with_columns(pl.when(pl.col("unique_id") == "a").then(float("nan")).otherwise(pl.col("y_hat"))
                                   .alias("y_hat"))
    out = score(fc, _insample(), season_length=1)
    a = out.filter(pl.col("unique_id") == "a").row(0, named=True)
    assert math.isnan(a["mae"]) and math.isnan(a["smape"])


def test_missing_quantile_column_is_a_clear_error():
    with pytest.raises(ValueError, match="y_hat_q50"):
        score(_forecasts(), _insample(), season_length=1, quantiles=[0.5])


def test_mase_scale_keeps_precision_across_series_of_very_different_scales():
    n = 50
    frame = pl.DataFrame({
        "unique_id": ["a"] * n + ["b"] * n + ["c"] * n,
        "ds": [D(i) for i in range(n)] * 3,
        "y": [1e12 * (i % 3) for i in range(n)] + [1e-6 * (i % 2) for i in range(n)] + [1e12 * (i % 5) for i in range(n)],
    })
    scale = dict(mase_scale(frame, 1).iter_rows())
    assert scale["b"] == pytest.approx(1e-6, rel=1e-9)  # alternating 0, 1e-6: every lag-1 difference is 1e-6


def test_a_forecast_exact_up_to_float_rounding_scores_exactly_zero():
    """Regression: damped on a straight line (0.7 a month) forecast it exactly up to float rounding; the
    backtest scored MASE 8.2e-16 and sMAPE 4.2e-15, and `flowcast models list` printed '8.235e-16' where 0 is
    meant. An error within the float rounding of the values (1e-12 of them) is no error; a real one stays."""
    y = [10.1 + 0.7 * i for i in range(24, 30)]
    noisy = [v + v * 3e-16 for v in y]  # what the arithmetic of a fitted trend leaves
    assert any(a != b for a, b in zip(y, noisy, strict=True))
    history = pl.DataFrame({"unique_id": ["a"] * 24, "ds": [D(i) for i in range(24)],
                            "y": [10.1 + 0.7 * i for i in range(24)]})
    frame = pl.DataFrame({"unique_id": ["a"] * 6, "ds": [D(i) for i in range(24, 30)], "y": y, "y_hat": noisy})
    row = score(frame, history, season_length=12).row(0, named=True)
    assert (row["mae"], row["rmse"], row["smape"], row["mase"]) == (0.0, 0.0, 0.0, 0.0)
    off = frame.with_columns(pl.col("y_hat") + 1e-6)  # a small but real error is kept
    assert score(off, history, season_length=12)["mae"].item() == pytest.approx(1e-6)


# RMSSE: a's one-step differences 2, -1, 2 -> squares 4, 1, 4 (mean 3); its errors 1, -3 -> mean square 5
@pytest.mark.parametrize("season_length", [1, 2, 3, 12])  # one-step differences whatever the season (M5)
def test_rmsse_by_hand(season_length):
    out = score(_forecasts(), _insample(), season_length=season_length)
    a = out.filter(pl.col("unique_id") == "a").row(0, named=True)
    assert a["rmsse"] == pytest.approx(math.sqrt(5 / 3))
    assert dict(rmsse_scale(_insample()).iter_rows())["a"] == pytest.approx(3.0)


def test_rmsse_scale_only_uses_history_up_to_each_cutoff():
    fc = pl.concat([
        _forecasts().with_columns(pl.lit(D(2)).alias("cutoff"), pl.lit(0).alias("window")),
        _forecasts().with_columns(pl.lit(D(3)).alias("cutoff"), pl.lit(1).alias("window")),
    ]).drop("y_hat_q10", "y_hat_q90")
    out = score(fc, _insample(), season_length=2).filter(pl.col("unique_id") == "a").sort("window")
    # cutoff D(2): history 1, 3, 2 -> squared differences 4, 1 -> 2.5 ; cutoff D(3): 3
    assert out["rmsse"].to_list() == pytest.approx([math.sqrt(5 / 2.5), math.sqrt(5 / 3)])


@pytest.mark.parametrize(
    "history, expected",
    [
        ([10.0, 10.0, 10.0], None),  # constant history: scale 0, RMSSE undefined (null, never inf), as MASE
        ([7.0], None),  # one observation: no difference, no scale, as MASE
        ([], None),  # no history at all before the window
        ([1.0, None, 2.0, 4.0], "mase"),  # a missing value in the history: scaled as MASE scales it (not dropped)
        ([1.0, float("nan"), 2.0, 4.0], "nan"),  # a NaN in the history: NaN, as MASE (never a silent number)
    ],
)
def test_rmsse_edge_cases_match_mase(history, expected):
    hist = pl.DataFrame({"unique_id": ["a"] * len(history), "ds": [D(i) for i in range(len(history))], "y": history},
                        schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "y": pl.Float64})
    fc = pl.DataFrame({"unique_id": ["a"], "ds": [D(9)], "y": [3.0], "y_hat": [2.0]})
    row = score(fc, hist, season_length=1).row(0, named=True)
    if expected is None:
        assert row["rmsse"] is None and row["mase"] is None
    elif expected == "nan":
        assert math.isnan(row["rmsse"]) and math.isnan(row["mase"])
    else:  # differences 1 - null, null - 2 count as 0 over 3 (as MASE's 2/3): squares (0 + 0 + 4) / 3
        assert row["mase"] == pytest.approx(1 / (2 / 3))
        assert row["rmsse"] == pytest.approx(math.sqrt(1 / (4 / 3)))


def test_rmsse_nan_forecast_is_nan():
    fc = _forecasts().with_columns(pl.when(pl.col("unique_id") == "a").then(float("nan")).otherwise(pl.col("y_hat"))
                                   .alias("y_hat"))
    a = score(fc, _insample(), season_length=1).filter(pl.col("unique_id") == "a").row(0, named=True)
    assert math.isnan(a["rmsse"])


def test_rmsse_rewards_the_demand_rate_where_mase_rewards_zero():
    """On mostly-zero demand MASE (a scaled MAE) prefers forecasting 0, the median; RMSSE the mean rate."""
    hist = pl.DataFrame({"unique_id": ["a"] * 6, "ds": [D(i) for i in range(6)], "y": [0.0, 0.0, 3.0, 0.0, 0.0, 3.0]})
    actual = [0.0, 0.0, 3.0]
    frames = {f: pl.DataFrame({"unique_id": ["a"] * 3, "ds": [D(i) for i in range(6, 9)], "y": actual, "y_hat": [f] * 3})
              for f in (0.0, 1.0)}
    zero, rate = (score(frames[f], hist, season_length=1).row(0, named=True) for f in (0.0, 1.0))
    assert zero["mase"] < rate["mase"]  # MAE 1 against 4/3
    # squared differences 0, 9, 9, 0, 9 -> 27/5; mean squared errors 3 (zero) and 2 (the rate)
    assert zero["rmsse"] == pytest.approx(math.sqrt(3 / 5.4))
    assert rate["rmsse"] == pytest.approx(math.sqrt(2 / 5.4))


@pytest.mark.parametrize("y_hat, expected", [(0.0, 0.0), (2.0, 200.0)])
def test_smape_on_an_all_zero_window_is_finite(y_hat, expected):
    """A window whose actuals are all 0: sMAPE 0 for a forecast of 0 (not 0/0), 200 for any other."""
    hist = pl.DataFrame({"unique_id": ["a"] * 3, "ds": [D(i) for i in range(3)], "y": [0.0, 2.0, 0.0]})
    fc = pl.DataFrame({"unique_id": ["a"] * 2, "ds": [D(3), D(4)], "y": [0.0, 0.0], "y_hat": [y_hat] * 2})
    assert score(fc, hist, season_length=1)["smape"].item() == expected


# ---------------------------------------------------------------------------------- scales of float noise
N_NOISE = 56  # eight weeks of daily data, season 7


def _history(ys: list[float], uid: str = "a") -> pl.DataFrame:
    return pl.DataFrame({"unique_id": [uid] * len(ys), "ds": [D(i) for i in range(len(ys))], "y": ys})


def _seasonal_naive_window(ys: list[float], m: int, cutoff: int) -> pl.DataFrame:
    """seasonal naive's forecast of the season after `cutoff`, scored against the history's own next season."""
    steps = range(cutoff + 1, cutoff + 1 + m)
    return pl.DataFrame({"unique_id": ["a"] * m, "ds": [D(t) for t in steps], "cutoff": [D(cutoff)] * m,
                         "y": [ys[t] for t in steps], "y_hat": [ys[t - m] for t in steps]})


@pytest.mark.parametrize(("twin", "exact_twin"), [
    (float_noise.detrended([7.0], N_NOISE), float_noise.exact([7.0], N_NOISE)),  # constant up to float noise
    (float_noise.detrended([0.0, 0.5, 2.0, 3.1, 0.2, 0.7, 9.0], N_NOISE),  # repeats every 7 up to float noise
     float_noise.exact([0.0, 0.5, 2.0, 3.1, 0.2, 0.7, 9.0], N_NOISE)),
    (float_noise.sine(N_NOISE), float_noise.exact(float_noise.sine(7), N_NOISE)),  # 100 + 10 sin(2 pi t / 7)
], ids=["constant", "periodic", "sine"])
def test_a_history_repeating_itself_up_to_float_noise_scores_as_its_exact_twin(twin, exact_twin):
    """Regression: 100 + 10 sin(2 pi t / 7), daily, season 7, repeats itself up to float noise: its seasonal scale
    was ~8e-15, not 0, and seasonal naive scored a MASE of 4.7e14 where the exact repeat scores null (undefined).
    A scale within 1e-9 x max(1, mean |y|) of the same history is 0: MASE (and RMSSE of a constant) null."""
    assert float_noise.differs(twin, exact_twin)
    hist, exact = _history(twin), _history(exact_twin)
    cuts = pl.DataFrame({"unique_id": ["a", "a"], "cutoff": [D(10), D(N_NOISE - 1)]})
    for cutoffs in (None, cuts):
        assert mase_scale(hist, 7, cutoffs)["scale"].to_list() == mase_scale(exact, 7, cutoffs)["scale"].to_list()
        assert mase_scale(hist, 7, cutoffs)["scale"].to_list()[-1] == 0.0
        got, want = rmsse_scale(hist, cutoffs)["scale_sq"].to_list(), rmsse_scale(exact, cutoffs)["scale_sq"].to_list()
        assert got == pytest.approx(want, rel=1e-12) and (got[-1] == 0.0) == (want[-1] == 0.0)
    window = _seasonal_naive_window(twin, 7, 41)
    row = score(window, hist.filter(pl.col("ds") <= D(41)), 7).row(0, named=True)
    twin_row = score(_seasonal_naive_window(exact_twin, 7, 41), exact, 7).row(0, named=True)
    assert row["mase"] is None and twin_row["mase"] is None  # not 4.7e14
    assert (row["rmsse"] is None) == (twin_row["rmsse"] is None)
    assert row["rmsse"] is None or row["rmsse"] < 1e-6


def _sequential_scales(ys: list[float], m: int) -> tuple[float, float]:
    """The scales as the running sums compute them (left to right, then one division): MASE's and RMSSE's squared."""
    y = np.asarray(ys, dtype=np.float64)
    lag = m if len(y) > m else 1
    d = np.abs(y[lag:] - y[:-lag])
    d1 = y[1:] - y[:-1]
    return float(np.cumsum(d)[-1] / len(d)), float(np.cumsum(d1 * d1)[-1] / len(d1))


_RNG = np.random.default_rng(3)


@pytest.mark.parametrize("ys", [
    [float(v) for v in _RNG.integers(1000, 9000, 60)],  # M3-like integers
    [1e5] * 100 + [1e5 + 1.0] + [1e5] * 49,  # one change of 1 at a level of 1e5: 2 / 138, far above 1e-4
    [0.0] * 80 + [1.0] + [0.0] * 19,  # intermittent counts: one demand in 100 days
    float_noise.noisy(N_NOISE),  # an ordinary noisy series
    [1e-6 * (i % 5) for i in range(50)],  # small values moving: 1e-6 is no float noise of max(1, 2e-6)
], ids=["m3-integers", "one-change-at-1e5", "intermittent", "noisy", "tiny-but-moving"])
@pytest.mark.parametrize("m", [1, 12])
def test_scales_of_integer_and_noisy_data_are_unchanged_bit_for_bit(ys, m):
    """A scale of float noise is 0, and nothing else changes: integer data (M3) and ordinary noisy series keep
    the scale the running sums always gave, bit for bit, at the last row and at a cutoff."""
    hist = _history(ys)
    scale, scale_sq = _sequential_scales(ys, m)
    assert scale > 0 and scale_sq > 0
    assert mase_scale(hist, m)["scale"].item() == scale
    assert rmsse_scale(hist)["scale_sq"].item() == scale_sq
    k = len(ys) - 7  # a cutoff before the end: only the history up to it
    cut = pl.DataFrame({"unique_id": ["a"], "cutoff": [D(k)]})
    part, part_sq = _sequential_scales(ys[: k + 1], m)
    if part > 0:
        assert mase_scale(hist, m, cut)["scale"].item() == part
    if part_sq > 0:
        assert rmsse_scale(hist, cut)["scale_sq"].item() == part_sq


_BERLIN = "Europe/Berlin"


def _berlin_days(start: datetime, end: datetime) -> pl.DataFrame:
    """Hourly UTC instants of Berlin local days [start, end) with y = 10 x the local hour + the local day's number:
    the same local time a day before is always 1 lower; 24 instants before, an hour off after a change."""
    first = pl.lit(start).dt.replace_time_zone("Europe/Berlin").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    last = pl.lit(end).dt.replace_time_zone("Europe/Berlin").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    ds = pl.select(pl.datetime_range(first, last, "1h", closed="left", time_unit="us")).to_series()
    local = pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Berlin")
    day = (local.dt.date() - pl.lit(start.date())).dt.total_days()
    return pl.DataFrame({"unique_id": "a", "ds": ds}).with_columns(
        y=(local.dt.hour() * 10 + day).cast(pl.Float64))


@pytest.mark.parametrize(("tz", "local"), [("Europe/Berlin", True), ("Etc/GMT-1", False), (None, False)])
def test_mase_scale_of_zoned_hourly_data_differs_at_the_same_local_time_a_day_before(tz, local):
    """dstB47: 3 Berlin days around the autumn change (25 October 2026, 25 hours): the scale seasonal naive is
    measured against takes the same local time a day before, as it forecasts (`timekeys.season_ago_local`), so every
    difference is 1 (scale 1), at the last cutoff and at one inside the series; 24 periods back read an hour off for
    the day after the change. A fixed offset or no tz keeps 24 periods back, as before."""
    hist = _berlin_days(datetime(2026, 10, 24), datetime(2026, 10, 27))
    cut = pl.DataFrame({"unique_id": ["a", "a"], "cutoff": [hist["ds"][40], hist["ds"][-1]]})
    got = mase_scale(hist, 24, cut, freq="1h", tz=tz)["scale"].to_list()
    positional = mase_scale(hist, 24, cut)["scale"].to_list()
    if local:
        assert got == [1.0, 1.0]
        assert positional[1] > 1.0  # (what it was)
    else:
        assert got == positional
    assert mase_scale(hist, 24, freq="1h", tz=tz)["scale"].to_list() == got[1:]


def test_mase_scale_of_zoned_hourly_data_reads_a_skipped_local_time_as_seasonal_naive_does():
    """dstB47: 3 Berlin days around the spring change (29 March 2026, 23 hours): 47 differences of the same local time
    a day before, each 1 but 02:00 on the 30th, whose 02:00 a day before was skipped: seasonal naive reads the hour
    after it, 03:00 (31 against 22: 9)."""
    hist = _berlin_days(datetime(2026, 3, 28), datetime(2026, 3, 31))
    assert hist.height == 71
    assert mase_scale(hist, 24, freq="1h", tz="Europe/Berlin")["scale"].item() == pytest.approx(55 / 47)


def _local_scale_reference(hist: pl.DataFrame, tz: str) -> dict[str, float]:
    """Per series, the mean |y - y at the same local time a day before| over the rows that have a row there (looked up
    by time, `timekeys.season_ago_local`), else the mean one-step difference: `mase_scale`'s, row by row."""
    from flowcast.timekeys import season_ago_local

    rows = hist.with_columns(season_ago_local(pl.col("ds"), pl.col("ds"), tz, 86_400_000_000).alias("src"))
    out = {}
    for (uid,), part in rows.group_by("unique_id"):
        y = dict(zip(part["ds"], part["y"], strict=True))
        diffs = [abs(v - y[s]) for s, v in zip(part["src"], part["y"], strict=True) if s in y]
        ys = part.sort("ds")["y"].to_list()
        out[uid] = float(np.mean(diffs) if diffs else np.mean(np.abs(np.diff(ys))))
    return out


@pytest.mark.parametrize("days", [(datetime(2026, 10, 24), datetime(2026, 10, 27)),
                                  (datetime(2026, 3, 28), datetime(2026, 3, 31))])
def test_mase_scale_on_the_local_clock_reads_each_series_own_rows_with_or_without_a_hole(days):
    """revC47: one frame of Berlin hourly series around a change: one whole, one with holes (the day before's hour the
    change moved, a stretch of its last day), one starting inside the change's hour and one ending in it: each its own
    differences at the same local time a day before, where it has a row there (the series without a hole read by
    position, those with one by time: either way what a lookup by time gives), at every cutoff too."""
    whole = _berlin_days(*days).with_columns(y=pl.col("y") * pl.col("y") / 7)  # differences of several sizes
    change = whole.filter(pl.col("ds").dt.day() == days[0].day + 1)["ds"][1:4]  # 00:00 - 02:00 UTC of the change day
    holey = whole.filter(~pl.col("ds").is_in(change[1:2].implode()) & ~pl.col("ds").is_between(whole["ds"][52], whole["ds"][60]))
    hist = pl.concat([
        whole,
        holey.with_columns(unique_id=pl.lit("holes")),
        whole.filter(pl.col("ds") >= change[1]).with_columns(unique_id=pl.lit("starts"), y=pl.col("y") * 3),
        whole.filter(pl.col("ds") <= change[1]).with_columns(unique_id=pl.lit("ends"), y=pl.col("y") + 5),
    ])
    got = dict(mase_scale(hist, 24, freq="1h", tz=_BERLIN).iter_rows())
    assert got == pytest.approx(_local_scale_reference(hist, _BERLIN), rel=1e-12)
    cut = hist.group_by("unique_id").agg(pl.col("ds").sort().gather_every(7, offset=3).alias("cutoff")).explode("cutoff")
    at_cut = mase_scale(hist, 24, cut, freq="1h", tz=_BERLIN)
    for uid, cutoff, scale in at_cut.iter_rows():
        upto = hist.filter((pl.col("unique_id") == uid) & (pl.col("ds") <= cutoff))
        assert scale == pytest.approx(_local_scale_reference(upto, _BERLIN)[uid], rel=1e-12), (uid, cutoff)
