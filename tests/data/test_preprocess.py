"""Preprocessing on tiny frames with known answers, and on the real samples."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flowcast.config import SourceConfig, load_settings
from flowcast.data.calendar import calendar_exprs
from flowcast.data.preprocess import prepare_data, preprocess, resolve_horizon
from flowcast.data.training_data import TrainingData
from flowcast.errors import DataValidationError

D0 = datetime(2020, 1, 1)


def settings(**pre):
    # lookback 3 + horizon 2 + val_size 2 = 7 points needed with short_series='exclude'
    return load_settings(model={"lookback": 3}, horizon=2, preprocess=pre or None)


def source(**kw) -> SourceConfig:
    base = {"name": "t", "path": "unused.csv", "id_cols": ["id"], "time_col": "date", "target_col": "val", "freq": "1d"}
    base.update(kw)
    return SourceConfig(**base)


def frame(series: dict[str, list[float | None]], days: dict[str, list[int]] | None = None, **extra) -> pl.DataFrame:
    """Canonical valid frame: series -> values on consecutive days (or on the given day offsets)."""
    rows = []
    for uid, values in series.items():
        offs = (days or {}).get(uid, list(range(len(values))))
        rows += [(uid, D0 + timedelta(days=d), v) for d, v in zip(offs, values)]
    df = pl.DataFrame(rows, schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "y": pl.Float64}, orient="row")
    return df.with_columns(**{k: pl.Series(v) for k, v in extra.items()})


def y_of(td: TrainingData, uid: str) -> list[float]:
    return td.frame.filter(pl.col("unique_id") == uid)["y"].to_list()


def test_missing_timestamps_inserted_and_linearly_imputed():
    valid = frame({"a": [1, 2, 3, 6, 7, 8, 9, 10]}, days={"a": [0, 1, 2, 5, 6, 7, 8, 9]})
    td, s = preprocess(valid, source(), settings(), None)
    assert y_of(td, "a") == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert td.frame["ds"].to_list() == [D0 + timedelta(days=i) for i in range(10)]
    assert (s.rows_inserted, s.rows_imputed, s.excluded) == (2, 2, [])


@pytest.mark.parametrize(
    "method,expected", [("linear", [1, 2, 3, 4, 5, 6, 7, 8]), ("ffill", [1, 2, 3, 3, 3, 6, 7, 8]), ("zero", [1, 2, 3, 0, 0, 6, 7, 8])]
)
def test_impute_methods_on_empty_values(method, expected):
    valid = frame({"a": [1, 2, 3, None, None, 6, 7, 8]})
    td, _ = preprocess(valid, source(), settings(impute=method), None)
    assert y_of(td, "a") == expected


@pytest.mark.parametrize(("values", "days", "kept", "reason"), [
    # a 4-day hole: the series starts after it (its 6 rows before, 4 of them empty, counted)
    ([1, 2, None, None, None, None, 7, 8, 9, 10], None, [7, 8, 9, 10],
     "interior gap of 4 periods from 2020-01-03 > max_gap=3: the 6 rows before 2020-01-07 are not used"),
    # two long holes: the latest contiguous segment, after the last one
    ([1, 2, 3, 4, 5, 6], [0, 1, 6, 7, 13, 14], [5, 6],
     "interior gap of 5 periods from 2020-01-09 > max_gap=3 (the last of 2): the 4 rows before 2020-01-14"),
    # one point after the hole: kept, forecast by the models that run on one point (naive)
    ([1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 12], [7],
     "interior gap of 6 periods from 2020-01-07 > max_gap=3: the 6 rows before 2020-01-13 are not used"),
])
def test_long_gap_starts_the_series_after_it_with_its_reason(values, days, kept, reason):
    """Regression: an interior gap longer than max_gap excluded the whole series (never published); the
    series now starts after its last such gap, and the rows before are counted and said, per series."""
    from flowcast.data.validate import DataQualityReport

    valid = frame({"a": values, "b": list(range(10))}, days={"a": days, "b": list(range(10))} if days else None)
    td, s = preprocess(valid, source(), settings(max_gap=3), None)
    assert td.ids == ["a", "b"] and s.excluded == [] and y_of(td, "a") == kept
    [cut] = s.gap_cut
    assert cut["unique_id"] == "a" and cut["reason"].startswith(reason) and "max_gap = " in cut["reason"]
    assert s.rows_before_gap == cut["rows"] == len(values) - len(kept) and s.rows_trimmed == 0
    # the counts reconcile: every row handed over is on the grid, trimmed or before a gap
    assert s.rows_in == s.rows_out - s.rows_inserted + s.rows_trimmed + s.rows_before_gap
    assert td.marks().filter(pl.col("unique_id") == "a")["network"].item() is (len(kept) >= 7)
    report = DataQualityReport(source="t", as_of=None)
    report.add_preprocess(s)
    assert f"a: {cut['reason']}" in report.to_markdown()


def test_the_rows_before_a_gap_are_counted_with_thousands_separators():
    """newuser50a: vic_elec read with --tz, its repeated autumn hour quarantined, was told 'its 4,564 rows before it
    not used' and, in the same line, 'the 4564 rows before 2014-04-05 17:00 UTC are not used': one count, two ways."""
    values = [float(i % 7) for i in range(1_200)] + [None] * 4 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    _, s = preprocess(frame({"a": values}), source(), settings(max_gap=3), None)
    [cut] = s.gap_cut
    assert ": the 1,204 rows before 2023-04-19 are not used" in cut["reason"] and s.rows_before_gap == 1_204


def test_a_gap_starts_at_a_date_or_a_utc_instant():
    """Regression: the reason gave a date as a time ('from 2001-02-01 00:00' of monthly data) and a sub-daily
    instant without its zone; dates are dates now, instants say UTC."""
    hourly = frame({"a": [1, 2, None, None, None, None, 7, 8, 9, 10], "b": list(range(10))}).with_columns(
        ds=pl.datetime(2020, 1, 1) + pl.duration(hours=pl.int_range(0, pl.len()).over("unique_id")))
    _, s = preprocess(hourly, source(freq="1h"), settings(max_gap=3), None)
    assert s.gap_cut[0]["reason"].startswith("interior gap of 4 periods from 2020-01-01 02:00 UTC > max_gap=3: the 6 "
                                             "rows before 2020-01-01 06:00 UTC are not used")


def test_a_gap_of_a_source_in_a_time_zone_names_its_wall_times_there_too():
    """newuser52: hourly New York meters read with --tz America/New_York, a whole day missing, were told 'interior gap
    of 24 periods from 2024-03-06 05:00 UTC ...: the 125 rows before 2024-03-07 05:00 UTC are not used': instants their
    file does not hold (it writes that midnight '2024-03-06 00:00'). Each instant is followed by its wall time there."""
    hourly = frame({"a": [1, 2, None, None, None, None, 7, 8, 9, 10], "b": list(range(10))}).with_columns(
        ds=pl.datetime(2024, 3, 6, 3) + pl.duration(hours=pl.int_range(0, pl.len()).over("unique_id")))
    _, s = preprocess(hourly, source(freq="1h", tz="America/New_York"), settings(max_gap=3), None)
    assert s.gap_cut[0]["reason"].startswith(
        "interior gap of 4 periods from 2024-03-06 05:00 UTC (2024-03-06 00:00 -05:00 America/New_York) > max_gap=3: "
        "the 6 rows before 2024-03-06 09:00 UTC (2024-03-06 04:00 -05:00 America/New_York) are not used")


def test_impute_none_starts_the_series_after_any_gap():
    valid = frame({"a": [1, 2, None, 4, 5, 6, 7, 8], "b": list(range(8))})
    td, s = preprocess(valid, source(), settings(impute="none"), None)
    assert td.ids == ["a", "b"] and y_of(td, "a") == [4, 5, 6, 7, 8] and s.rows_imputed == 0
    assert s.gap_cut[0]["reason"].startswith("interior gap of 1 periods from 2020-01-03 > max_gap=0 (impute='none')")


def test_leading_and_trailing_empty_values_are_trimmed():
    valid = frame({"a": [None, None, 1, 2, 3, 4, 5, 6, 7, None]})
    td, s = preprocess(valid, source(), settings(), None)
    assert y_of(td, "a") == [1, 2, 3, 4, 5, 6, 7] and s.rows_trimmed == 3
    assert td.frame["ds"].min() == D0 + timedelta(days=2)


def test_short_series_are_kept_and_marked_for_the_network():
    """Every series with an observation is kept; `short_series` says which ones a network serves
    (exclude: lookback + horizon + val_size periods, pad: horizon + val_size + 1)."""
    valid = frame({"long": list(range(7)), "short": list(range(6)), "tiny": [1.0]})
    td, s = preprocess(valid, source(), settings(), None)
    assert td.ids == ["long", "short", "tiny"] and s.excluded == []
    assert td.meta.min_length == 7 and s.min_length == 7 and s.network_short == 2
    assert s.network_short_ids == ["short", "tiny"]  # named by the log and the data-quality report (ui25)
    assert td.marks().rows() == [("long", 7, True), ("short", 6, False), ("tiny", 1, False)]
    assert td.network_subset().ids == ["long"]
    td, s = preprocess(valid, source(), settings(short_series="pad"), None)
    assert td.meta.min_length == 5 and s.network_short == 1  # pad needs horizon + val_size + 1 = 5
    assert s.network_short_ids == ["tiny"]
    assert td.marks().filter(pl.col("network"))["unique_id"].to_list() == ["long", "short"]
    assert td.marks(network_min_length=1)["network"].all()


@pytest.mark.parametrize("short_series", ["exclude", "pad"])
def test_a_tuned_lookback_marks_the_series_as_preprocessing_would(short_series):
    """`with_lookback` (a lookback chosen by the search after preprocessing) fits the network's
    minimum length as preprocessing fits it for that lookback: exclude moves it with the lookback,
    pad does not depend on it."""
    from flowcast.config import with_overrides
    from flowcast.models.tuning import tuned_data

    valid = frame({"long": list(range(12)), "mid": list(range(8)), "short": list(range(6)), "tiny": [1.0]})
    base = settings(short_series=short_series)
    td, _ = preprocess(valid, source(), base, None)  # lookback 3
    direct, _ = preprocess(valid, source(), with_overrides(base, model={"lookback": 6}), None)
    tuned = td.with_lookback(6, short_series)
    assert (tuned.meta.lookback, tuned.meta.min_length) == (direct.meta.lookback, direct.meta.min_length)
    assert tuned.marks().equals(direct.marks()) and tuned.frame.equals(td.frame)
    fitted, notes = tuned_data(with_overrides(base, model={"lookback": 6}), td)
    assert fitted.meta.min_length == direct.meta.min_length
    if short_series == "exclude":  # 6 + 2 + 2 = 10: "mid" (8) now goes to the statistical models
        assert direct.meta.min_length == 10 and td.marks()["network"].sum() == 2
        assert fitted.marks()["network"].to_list() == [True, False, False, False]
        assert notes == [("The tuned lookback 6 (configured 3) needs 10 periods a series for a network "
                          "(short_series='exclude'; 7 before): 3 of 4 series are shorter and forecast by the "
                          "statistical models that can run on them.")]
    else:  # horizon 2 + val_size 2 + 1, whatever the lookback
        assert direct.meta.min_length == td.meta.min_length == 5 and notes == []


def test_series_without_any_value_is_excluded():
    valid = frame({"a": list(range(8)), "empty": [None, None]})
    td, s = preprocess(valid, source(), settings(), None)
    assert td.ids == ["a"] and s.excluded == [{"unique_id": "empty", "reason": "no observed values (every y is empty)"}]


def test_no_series_left_is_a_dataset_error():
    with pytest.raises(DataValidationError, match=r"no series left after preprocessing \(1 excluded: a: no observed"):
        preprocess(frame({"a": [None, None]}), source(), settings(), None)
    td, _ = preprocess(frame({"a": [1, 2]}), source(), settings(), None)  # short, but a series
    assert td.ids == ["a"] and not td.marks()["network"].any()

@pytest.mark.parametrize(("series", "said"), [
    # newuser48: every series empty (a blank target column beside others of numbers): the column is named
    ({"a": [None, None], "b": [None]}, ("(every y is empty)): its target column 'val' holds no value in any row; is "
                                       "the target another column? name it with --target-col (target_col in "
                                       "[sources.t])")),
    ({"a": [None, None], "b": [None]}, "wide"),
])
def test_a_target_column_of_no_value_is_named(series, said):
    """newuser48: a file whose target column was blank in every row was told 'no observed values (every y is empty)'
    of each series, its column not named nor what to do."""
    wide = said == "wide"
    src = source(layout="wide", id_cols=["unique_id"], target_col="y") if wide else source()
    with pytest.raises(DataValidationError) as err:
        preprocess(frame(series), src, settings(), None)
    assert (": none of its series' columns holds a value in any row" if wide else said) in str(err.value), err.value



def test_scalers_fitted_on_training_span_only():
    vals = [1.0, 2.0, 3.0, 4.0, 5.0, 100.0, 200.0]  # last val_size=2 points held out
    td, _ = preprocess(frame({"a": vals}), source(), settings(scaler="standard"), None)
    row = td.scalers.row(0, named=True)
    assert row["center"] == pytest.approx(3.0) and row["scale"] == pytest.approx(2.0**0.5)
    td, _ = preprocess(frame({"a": vals}), source(), settings(scaler="minmax"), None)
    assert (td.scalers["center"][0], td.scalers["scale"][0]) == (1.0, 4.0)
    back = td.inverse(td.scale(td.frame).rename({"y": "y_hat"}))["y_hat"].to_list()
    assert back == pytest.approx(vals)


def test_log1p_falls_back_per_series_with_negative_values():
    valid = frame({"pos": [1, 2, 3, 4, 5, 6, 7], "neg": [1, -2, 3, 4, 5, 6, 7]})
    td, s = preprocess(valid, source(), settings(log1p=True), None)
    assert s.log1p_disabled == ["neg"]
    assert dict(td.scalers.select("unique_id", "log1p").iter_rows()) == {"neg": False, "pos": True}
    back = td.inverse(td.scale(td.frame).rename({"y": "y_hat"}))
    assert back["y_hat"].to_list() == pytest.approx(td.frame["y"].to_list())


def test_the_series_log1p_is_turned_off_for_are_said_in_the_data_quality_report(write_csv):
    """Regression: with preprocess.log1p on, a series holding negative values is scaled without it, and nothing
    said so: not the run's log, not its JSON summary, not the data-quality report (the decision was kept in
    PreprocessSummary.log1p_disabled and read nowhere). The report names them (and run_counts, the JSON's fields)."""
    from data_helpers import run_validate

    rows = "".join(f"2020-01-{d:02d},pos,{d}\n2020-01-{d:02d},net,{d - 5}\n" for d in range(1, 15))
    result = run_validate(write_csv("date,id,val\n" + rows))
    _, s = preprocess(result.valid, source(), settings(log1p=True), None)
    result.report.add_preprocess(s)
    said = "log1p off for 1 series holding negative values (net): they are scaled without it (the others with it)"
    assert said in result.report.to_markdown().replace("\n", " ")


def test_log1p_off_for_every_series_says_no_other_series_took_it(write_csv):
    """newuser50a: a file of account balances, every series below 0 somewhere, read with log1p on was told 'they are
    scaled without it (the others with it)', of no other series: it says log1p changes nothing on such data, in the
    data-quality report, the run's log and its summary alike (`n_series` the series scaled)."""
    from data_helpers import run_validate

    from flowcast.data.validate import log1p_off_line

    rows = "".join(f"2020-01-{d:02d},x,{-d}\n2020-01-{d:02d},y,{d - 5}\n" for d in range(1, 15))
    result = run_validate(write_csv("date,id,val\n" + rows))
    _, s = preprocess(result.valid, source(), settings(log1p=True), None)
    result.report.add_preprocess(s)
    said = ("log1p off for 2 series holding negative values (x, y): they are scaled without it (every series: "
            "[preprocess] log1p changes nothing on these data)")
    assert s.log1p_disabled == ["x", "y"] and said in result.report.to_markdown().replace("\n", " ")
    assert log1p_off_line(["x", "y"], s.n_series_out) == said
    assert log1p_off_line(["x"], 2).endswith("(the others with it)")
    assert log1p_off_line(["x"]).endswith("(the others with it)")  # an older result, without the count


def test_calendar_features_follow_the_frequency():
    monthly = pl.DataFrame(
        {"unique_id": ["a"] * 8, "ds": pl.datetime_range(D0, datetime(2020, 8, 1), "1mo", eager=True), "y": [1.0] * 8}
    )
    td, _ = preprocess(monthly, source(freq="1mo"), settings(), None)
    assert td.meta.calendar_cols == ["cal_year_sin", "cal_year_cos"] == td.meta.future_cols
    assert td.frame.columns == ["unique_id", "ds", "y"]  # calendar features: computed from ds where used
    assert td.with_calendar().columns == ["unique_id", "ds", "y", "cal_year_sin", "cal_year_cos"]
    assert td.with_calendar().equals(monthly.with_columns(calendar_exprs("1mo")))
    yearly = monthly.with_columns(pl.datetime_range(D0, datetime(2027, 1, 1), "1y", eager=True).alias("ds"))
    td, _ = preprocess(yearly, source(freq="1y"), settings(), None)
    assert td.meta.calendar_cols == [] and td.meta.season_length == 1
    td, _ = preprocess(monthly, source(freq="1mo"), settings(calendar=False), None)
    assert td.frame.columns == ["unique_id", "ds", "y"]


def test_monthly_grid_inserts_missing_months():
    ds = [datetime(2020, m, 1) for m in (1, 2, 3, 5, 6, 7, 8, 9)]
    valid = pl.DataFrame({"unique_id": ["a"] * 8, "ds": ds, "y": [1.0, 2, 3, 5, 6, 7, 8, 9]})
    td, s = preprocess(valid, source(freq="1mo"), settings(), None)
    assert td.frame["ds"].to_list() == [datetime(2020, m, 1) for m in range(1, 10)]
    assert y_of(td, "a") == [1, 2, 3, 4, 5, 6, 7, 8, 9] and s.rows_inserted == 1


def test_covariates_static_and_future_exog():
    n = 9
    valid = frame(
        {"a": [*range(1, 8), None, None], "b": [*range(1, 8), None, None]},
        temp=[20.0, None, 22, 23, 24, 25, 26, 27, 28] * 2,
        promo=[0.0] * 18,
        size=[3.0] * n + [5.0] * n,
        region=["north"] * n + ["south"] * n,
        title=["A"] * n + ["B"] * n,
    )
    src = source(future_cols=["temp"], past_cols=["promo"], static_cols=["size", "region"])
    td, _ = preprocess(valid, src, settings(), None)
    assert td.meta.future_cols == ["cal_week_sin", "cal_week_cos", "cal_year_sin", "cal_year_cos", "temp"]
    assert td.meta.past_cols == ["promo"] and td.meta.declared_future_cols == ["temp"]
    assert y_of(td, "a") == [1, 2, 3, 4, 5, 6, 7]
    assert td.frame.filter(pl.col("unique_id") == "a")["temp"].to_list() == [20, 20, 22, 23, 24, 25, 26]  # ffill
    assert td.future_exog.filter(pl.col("unique_id") == "a")["temp"].to_list() == [27, 28]
    fut = td.future_frame(2).filter(pl.col("unique_id") == "a")
    assert fut["temp"].to_list() == [27, 28] and fut["step"].to_list() == [1, 2]
    # a text static: one column per level plus the unknown level reserved for levels never seen here
    assert td.meta.static_cols == ["size", "region=north", "region=south", "region=__unknown__"]
    assert td.static.rows() == [("a", 3.0, 1.0, 0.0, 0.0), ("b", 5.0, 0.0, 1.0, 0.0)]


def test_covariate_values_the_source_left_empty_are_counted_where_they_are_filled():
    """Regression: a past or future covariate left empty on the source's own rows (a missing temperature
    reading) was filled with the series' last value without a word (only the horizon's unplanned values
    were counted); the summary, the data-quality report and the run log now say how many, per column.
    Planned rows after the last observation and the rows of an excluded series are not counted."""
    from flowcast.data.validate import DataQualityReport

    valid = frame(
        {"a": [*range(1, 8), None, None], "b": [*range(1, 8), None, None], "c": [None] * 6},
        days={"c": [0, 1, 2, 3, 4, 5]},
        temp=[20.0, None, 22, 23, None, 25, 26, 27, None] + [20.0] * 9 + [None] * 6,
        promo=[0.0, None, 0, 0, 0, 0, 0, 0, 0] + [1.0, None, None, 0, 0, 0, 0, 0, 0] + [0.0] * 6,
    )
    td, summary = preprocess(valid, source(future_cols=["temp"], past_cols=["promo"]), settings(max_gap=2), None)
    assert td.excluded["unique_id"].to_list() == ["c"]  # no value
    assert summary.covariates_filled == {"temp": 2, "promo": 3}
    report = DataQualityReport(source="t", as_of=None)
    report.add_preprocess(summary)
    assert ("covariate values missing on the source's rows, filled with the series' last value (0 before its first): "
            "temp: 2, promo: 3") in report.to_markdown()
    _, clean = preprocess(frame({"a": [1.0, 2, 3]}, temp=[1.0, 2, 3]), source(future_cols=["temp"]), settings(), None)
    assert clean.covariates_filled is None


def test_a_static_that_changes_within_a_series_is_reported():
    """Regression: a static column whose value changes within a series (a store moved region) was
    silently reduced to its first value; the data-quality report now says which column and series."""
    from flowcast.data.validate import DataQualityReport

    valid = frame({"a": [1.0] * 8, "b": [2.0] * 8}, region=["north"] * 4 + ["south"] * 4 + ["east"] * 8,
                  size=[3.0] * 16)
    td, s = preprocess(valid, source(static_cols=["region", "size"]), settings(), None)
    # the example's values and the date of the change are named (it said only 'e.g. a')
    ds_change = str(valid.filter(pl.col("region") == "south")["ds"].min()).removesuffix(" 00:00:00")
    assert s.static_varying == {"region": {"series": 1, "example": "a", "first": "north", "then": "south",
                                           "from": ds_change}}
    assert td.static.filter(pl.col("unique_id") == "a")["region=north"].item() == 1.0  # the first value
    assert preprocess(valid.with_columns(region=pl.lit("east")), source(static_cols=["region"]), settings(),
                      None)[1].static_varying is None
    report = DataQualityReport(source="t", as_of=None)
    report.add_preprocess(s)
    assert (f"static column 'region' changes within 1 series (e.g. a: 'north', then 'south' from {ds_change}): a "
            "static is one value per series, the first one is used; if it changes over time, declare it a past "
            "covariate (--past-col; text as one 0/1 column per value), or a future one when its changes are planned"
            ) in report.to_markdown()


def test_a_numeric_static_with_a_missing_marker_stays_a_number():
    """Regression: a numeric static read as text with R's 'NA' (or SQL's NULL) for one series was one-hot
    encoded (size=10, size=20, size=NA): its magnitude was lost, and a model trained on numeric sizes failed the
    prediction of every series once a new store came with 'NA' ("missing ['size']"). The marker is a missing
    number (as an empty one: missing, with its indicator), as it is in a covariate; 'NA' among words stays a level."""
    valid = frame({"a": [1.0] * 8, "b": [2.0] * 8, "c": [3.0] * 8}, size=["10"] * 8 + ["20"] * 8 + ["NA"] * 8,
                  region=["north"] * 8 + ["NA"] * 8 + ["south"] * 8)
    td, _ = preprocess(valid, source(static_cols=["size", "region"]), settings(), None)
    assert td.meta.static_cols == ["size", "size=__missing__", "region=NA", "region=north", "region=south",
                                   "region=__unknown__"]
    assert td.static["size"].to_list() == [10.0, 20.0, None]
    assert td.static["size=__missing__"].to_list() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("stray", ["n/a", "(12)", "$15"])
def test_a_numeric_static_made_a_category_by_a_stray_value_is_said(stray):
    """Regression: a store's size '10', '20', '30' with one 'n/a' (or '(12)', '$15') for a fourth store became
    four categories (size=10, size=20, ...), its magnitudes lost, without a word. The data-quality report names
    the column, how many values are not numbers and one of them; a column of words is not said."""
    from flowcast.data.validate import DataQualityReport

    valid = frame({"a": [1.0] * 8, "b": [2.0] * 8, "c": [3.0] * 8, "d": [4.0] * 8},
                  size=["10"] * 8 + ["20"] * 8 + ["30"] * 8 + [stray] * 8,
                  region=["north"] * 8 + ["south"] * 8 + ["7"] * 8 + ["east"] * 8)
    td, s = preprocess(valid, source(static_cols=["size", "region"]), settings(), None)
    assert "size=10" in td.meta.static_cols  # read as before: categories
    assert s.static_as_text == {"size": {"values": 1, "of": 4, "example": stray}}
    report = DataQualityReport(source="t", as_of=None)
    report.add_preprocess(s)
    assert (f"static column 'size' is read as categories (one 0/1 column per value, its magnitudes lost): 1 of 4 "
            f"series' values are not numbers (e.g. '{stray}')") in report.to_markdown().replace("\\", "")


def test_a_missing_numeric_static_is_the_training_mean_with_an_indicator_not_zero():
    """Regression: a numeric static a series had no value for was 0 on the raw scale, in preprocessing, in a
    backtest cut before the static was known and at prediction (align_statics): 0 is a real value (a store of
    size 0), far below every real size (1,000 to 3,000 here), so the network read the store as a tiny one. As
    sklearn's SimpleImputer(add_indicator=True) and AutoGluon do, it is the training mean (0 once
    standardised) with a `size=__missing__` indicator; a column no series lacks gets no indicator."""
    from flowcast.data.statics import align_statics
    from flowcast.models.windows import fit_cov_stats, pack

    valid = frame({"a": [1.0] * 8, "b": [2.0] * 8, "c": [3.0] * 8}, size=["1000"] * 8 + ["3000"] * 8 + [None] * 8,
                  floor=[1.0] * 8 + [2.0] * 8 + [3.0] * 8)
    td, _ = preprocess(valid, source(static_cols=["size", "floor"]), settings(), None)
    assert td.meta.static_cols == ["size", "size=__missing__", "floor"]
    stats = fit_cov_stats(td)
    assert stats.static_mean[0] == pytest.approx(2000.0)  # of the series that have a size
    packed = pack(td, stats)
    size = packed.static[:, 0].tolist()
    assert size[2] == pytest.approx(0.0)  # c: the mean, standardised (0 raw would be (0 - 2000) / 1000 = -2)
    assert size[0] == pytest.approx(-1.0) and size[1] == pytest.approx(1.0)
    flag = packed.static[:, 1].tolist()  # the indicator, standardised: set for c alone
    assert flag[0] == flag[1] < 0 < flag[2]
    # at prediction: a new series without a size, the model's columns (with or without an indicator)
    model = list(td.meta.static_cols)
    new = pl.DataFrame({"unique_id": ["d"], "size": [None], "floor": [1.0]}, schema_overrides={"size": pl.Float64})
    got = align_statics(new, ["size", "floor"], model, ["d"])
    assert got.rows() == [("d", None, 1.0, 1.0)]
    assert align_statics(td.static, model, ["size", "floor"], td.ids).columns == ["unique_id", "size", "floor"]


def test_text_static_with_many_levels_is_reported_not_used():
    series = {f"s{i:02d}": list(range(7)) for i in range(33)}
    valid = frame(series).with_columns(pl.format("title {}", pl.col("unique_id")).alias("title"), size=pl.lit(1.0))
    td, s = preprocess(valid, source(static_cols=["title", "size"]), settings(), None)
    assert s.static_dropped == {"title": "text static with 33 distinct values > 32: not used as a feature"}
    assert td.meta.static_cols == ["size"] and td.static.height == 33


def test_max_length_keeps_the_last_periods():
    td, s = preprocess(frame({"a": [float(i) for i in range(20)]}), source(), settings(max_length=8), None)
    assert y_of(td, "a") == [12, 13, 14, 15, 16, 17, 18, 19] and s.rows_trimmed == 12


def test_unsorted_input_and_meta():
    valid = frame({"b": list(range(8)), "a": list(range(8))}).sample(fraction=1.0, shuffle=True, seed=1)
    td, _ = preprocess(valid, source(), settings(), datetime(2020, 2, 1), fingerprint="fp")
    assert td.frame.select("unique_id", "ds").equals(td.frame.select("unique_id", "ds").sort("unique_id", "ds"))
    m = td.meta
    assert (m.freq, m.horizon, m.lookback, m.val_size, m.season_length) == ("1d", 2, 3, 2, 7)
    assert (m.as_of, m.source, m.fingerprint, m.scaler, m.log1p) == ("2020-02-01T00:00:00", "t", "fp", "standard", False)


def test_resolve_horizon_precedence():
    assert resolve_horizon(load_settings(horizon=5), source(horizon=9)) == 5
    assert resolve_horizon(load_settings(), source(horizon=9)) == 9
    assert resolve_horizon(load_settings(), source(freq="1mo")) == 12
    assert resolve_horizon(load_settings(), source(freq="30m")) == 48


# ------------------------------------------------------------------------------- real samples
def test_prepare_data_us_employment_as_of(tmp_path):
    s = load_settings(home=tmp_path)
    p = prepare_data(s, as_of=datetime(2005, 6, 1))
    td, rep = p.training, p.report
    assert rep.reconciled and rep.rows_quarantined == 0 and rep.rows_after_as_of > 0
    assert td.frame["ds"].max() <= datetime(2005, 6, 1) and td.frame["y"].null_count() == 0
    assert td.n_series + rep.n_series_excluded == rep.n_series == 148
    assert td.meta.source == "us_employment" and td.meta.horizon == 12 and td.meta.fingerprint
    assert rep.preprocess["static_dropped"]["Title"].startswith(f"text static with {td.n_series} distinct values")
    back = TrainingData.load(td.save(tmp_path / "td"))
    assert back.frame.equals(td.frame) and back.meta == td.meta and back.scalers.equals(td.scalers)


def test_prepare_data_vic_elecdemand(tmp_path):
    p = prepare_data(load_settings(home=tmp_path, dataset="vic_elecdemand"))
    td = p.training
    assert td.ids == ["vic_elecdemand"] and td.n_obs == 17520 and td.meta.horizon == 48
    assert td.meta.declared_future_cols == ["WorkDay", "Temperature"]
    assert td.future_frame()["WorkDay"].null_count() == 0


def test_benchmark_runs_at_tiny_size(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_preprocess", Path(__file__).parents[2] / "bench" / "preprocess.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.bench(30, 120, workdir=str(tmp_path))
    assert r["rows"] == r["rows_valid"] + r["rows_quarantined"] and r["rows_per_s"] > 0 and r["n_series_out"] >= 25


def test_time_order_within_series_is_restored():
    valid = frame({"a": [1.0, 2, 3, 4, 5, 6, 7]}).reverse()  # unique_id sorted, ds descending
    td, _ = preprocess(valid, source(), settings(), None)
    assert y_of(td, "a") == [1, 2, 3, 4, 5, 6, 7]


def test_prepare_data_writes_quarantine_then_enforces_threshold(tmp_path):
    lines = ["date,id,val", *[f"2020-01-{d:02d},a,{d}" for d in range(1, 29)], "2020-01-29,a,oops", "2020-01-30,a,oops"]
    (tmp_path / "obs.csv").write_text("\n".join(lines) + "\n")
    src = {"name": "obs", "path": str(tmp_path / "obs.csv"), "id_cols": ["id"], "time_col": "date", "target_col": "val",
           "freq": "1d"}
    s = load_settings(home=tmp_path / "home", source=src, model={"lookback": 3}, horizon=2)
    with pytest.raises(DataValidationError, match=r"2 of 30 rows quarantined \(6.7% > threshold 5.0%\)"):
        prepare_data(s, run_key="run-1")
    assert (tmp_path / "home" / "quarantine" / "obs" / "run-1" / "quarantine.parquet").exists()
    s = load_settings(home=tmp_path / "home", source=src, model={"lookback": 3}, horizon=2,
                      validation={"quarantine_threshold": 0.1})
    p = prepare_data(s, as_of=datetime(2020, 1, 31))
    assert p.quarantine_path == tmp_path / "home" / "quarantine" / "obs" / "2020-01-31T00-00-00" / "quarantine.parquet"
    assert p.report.rows_quarantined == 2 and p.training.n_obs == 28 and p.report.preprocess["n_series_out"] == 1


@pytest.mark.parametrize("kept_runs", [1, 26])
def test_calendar_after_excluding_interleaved_series(kept_runs):
    """Regression: excluding short series between long ones leaves a frame of many chunks (slices);
    polars 2.1 evaluated the literal grid span once per chunk and `.item()` crashed
    (`flowcast validate --dataset m3-quarterly --as-of 1999-10-01`)."""
    series = {}
    for i in range(kept_runs):
        series[f"s{i:02d}"] = [float(v) for v in range(10)]
        series[f"s{i:02d}_short"] = [None] * 6  # no value: excluded
    td, s = preprocess(frame(series), source(), settings(), None)
    assert s.n_series_out == kept_runs
    assert [e["unique_id"] for e in s.excluded] == [f"s{i:02d}_short" for i in range(kept_runs)]
    assert td.frame.height == 10 * kept_runs
    assert td.meta.future_cols  # calendar features were computed
    assert td.with_calendar().select(td.meta.future_cols).null_count().sum_horizontal().item() == 0


@pytest.mark.parametrize("first", [datetime(2020, 1, 5), datetime(2020, 1, 6), datetime(2020, 1, 10)])  # Sun, Mon, Fri
def test_weekly_data_keeps_its_weekday_end_to_end(write_csv, first):
    """Regression: weekly ds were truncated to ISO Mondays, so a Sunday-labelled week became the
    Monday before it (outside that week) and forecasts carried dates the user never had."""
    from data_helpers import run_validate

    days = [first + timedelta(weeks=i) for i in range(12)]
    text = "date,id,val\n" + "".join(f"{d:%Y-%m-%d},a,{i}\n" for i, d in enumerate(days))
    text += f"{first + timedelta(days=2):%Y-%m-%d},a,99\n"  # another weekday: off the grid
    r = run_validate(write_csv(text), freq="1w")
    assert [(c, reason.split(",")[0]) for _, c, reason in
            zip(r.quarantined["source_row"], r.quarantined["check"], r.quarantined["reason"])] == [
        ("off_grid", f"time '{first + timedelta(days=2):%Y-%m-%d}' is a {first + timedelta(days=2):%A}")]
    td, _ = preprocess(r.valid, source(freq="1w"), settings(), None)
    assert td.frame["ds"].to_list() == days
    assert td.future_frame(2)["ds"].to_list() == [days[-1] + timedelta(weeks=k) for k in (1, 2)]


@pytest.mark.parametrize("freq,first,step", [
    ("2w", datetime(2022, 1, 2), timedelta(weeks=2)),  # fortnights labelled on Sundays
    ("7d", datetime(2022, 1, 5), timedelta(days=7)),  # weeks labelled on Wednesdays, written as 7d
    ("3d", datetime(2022, 1, 2), timedelta(days=3)),
])
def test_multiday_grids_keep_their_dates_end_to_end(write_csv, freq, first, step):
    """Regression: '2w', '7d' and '3d' ds were truncated to polars' epoch-aligned periods, moving every
    date up to a period back (Sunday fortnights to the Monday 6 days before, Wednesday weeks to
    Thursdays): forecasts carried dates the user never had. A date off the source's grid is quarantined."""
    from data_helpers import run_validate

    days = [first + i * step for i in range(12)]
    text = "date,id,val\n" + "".join(f"{d:%Y-%m-%d},a,{i}\n" for i, d in enumerate(days))
    text += f"{first + timedelta(days=1):%Y-%m-%d},b,99\n"  # a day after the grid: off it
    r = run_validate(write_csv(text), freq=freq)
    assert r.quarantined.select("check", "reason").rows() == [
        ("off_grid", (f"time '{first + timedelta(days=1):%Y-%m-%d}' is not on the {freq} grid of this source (every "
                     f"{step.days} days from the day most of its times fall on)"))]
    td, _ = preprocess(r.valid, source(freq=freq), settings(), None)
    assert td.frame["ds"].to_list() == days
    assert td.future_frame(2)["ds"].to_list() == [days[-1] + k * step for k in (1, 2)]


def test_all_series_too_short_for_a_network_are_kept():
    """A bundled dataset (m3-yearly) failed with the default lookback 36 ('no series left'): every
    series is kept, none marked for a network (a retrain fits the lookback to the data first,
    flowcast.data.lengths)."""
    valid = frame({"a": [1.0] * 4, "b": [2.0] * 5, "c": [3.0] * 6})  # 7 needed: lookback 3 + 2 + 2
    td, s = preprocess(valid, source(), settings(), None)
    assert td.ids == ["a", "b", "c"] and s.network_short == 3 and not td.marks()["network"].any()


@pytest.mark.parametrize("method", ["linear", "ffill", "zero"])
@pytest.mark.parametrize("seed", range(5))
def test_impute_in_place_matches_the_whole_column_functions(method, seed):
    from flowcast.data.preprocess import _impute

    rng = np.random.default_rng(seed)
    values = rng.normal(size=500) * 100
    missing = rng.random(500) < 0.3
    missing[[0, -1]] = False  # gaps are interior
    y = pl.Series("y", values).scatter(np.flatnonzero(missing), None)
    want = {"linear": y.interpolate(), "ffill": y.forward_fill(), "zero": y.fill_null(0.0)}[method]
    got = _impute(y.clone(), method)
    assert got.null_count() == 0 and got.equals(want)  # bit for bit


def test_equal_long_gaps_cut_at_the_last_one():
    # two gaps of 2 days (days 2-3 and 6-7): the series starts after the second, on every run
    valid = frame({"a": [0.0, 1, 4, 5, 8, 9, 10]}, days={"a": [0, 1, 4, 5, 8, 9, 10]})
    for _ in range(3):
        td, s = preprocess(valid, source(), settings(max_gap=1), None)
        assert y_of(td, "a") == [8, 9, 10]
        assert s.gap_cut[0]["reason"].startswith("interior gap of 2 periods from 2020-01-07 > max_gap=1 (the last of 2)")


def test_excluded_series_between_kept_ones_leave_a_one_chunk_frame():
    series = {"a": [float(v) for v in range(10)], "b": [None, None], "c": [float(v) for v in range(10)]}
    # b: no value, excluded
    valid = frame(series, days={"a": list(range(10)), "b": [0, 1], "c": [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]})
    many = pl.concat([valid.slice(i, 1) for i in range(valid.height)], rechunk=False)  # one chunk a row
    td, s = preprocess(many, source(), settings(), None)
    assert [e["unique_id"] for e in s.excluded] == ["b"] and s.rows_inserted == 1 and s.rows_imputed == 1
    assert td.frame["unique_id"].to_list() == ["a"] * 10 + ["c"] * 11
    assert y_of(td, "c") == [0, 1, 2, 2.5, 3, 4, 5, 6, 7, 8, 9]
    assert all(td.frame[c].n_chunks() == 1 for c in td.frame.columns)


def test_training_data_saved_with_calendar_columns_loads_without_them(tmp_path):
    monthly = pl.DataFrame(
        {"unique_id": ["a"] * 8, "ds": pl.datetime_range(D0, datetime(2020, 8, 1), "1mo", eager=True), "y": [1.0] * 8}
    )
    td, _ = preprocess(monthly, source(freq="1mo"), settings(), None)
    old = TrainingData(frame=td.with_calendar(), scalers=td.scalers, meta=td.meta)  # as an older version saved it
    back = TrainingData.load(old.save(tmp_path / "td"))
    assert back.frame.equals(td.frame) and back.with_calendar().equals(old.frame)


SAVE_WITH_A_SIZE_LIMIT = """
import resource, sys
from flowcast.data.training_data import TrainingData
from flowcast.errors import StorageError
td = TrainingData.load(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))  # every file past 256 bytes fails: EFBIG, a full disk's cousin
try:
    td.save(sys.argv[2])
except StorageError as exc:
    print(exc)
"""


def test_training_data_that_cannot_be_written_is_a_storage_error_naming_the_folder(tmp_path):
    """Regression: on a full disk `flowcast run` ended with 'error: ComputeError: parquet: File out of
    specification: underlying IO error: No space left on device (os error 28)' (or a bare OSError
    28), naming no path; the training data copy for the training process failed unexplained."""
    import subprocess
    import sys

    td, _ = preprocess(frame({"a": [float(i) for i in range(40)]}), source(), settings(), None)
    good = td.save(tmp_path / "good")
    target = tmp_path / "run" / "data"
    old = TrainingData(frame=td.frame.head(10), scalers=td.scalers, meta=td.meta).save(target)
    r = subprocess.run([sys.executable, "-c", SAVE_WITH_A_SIZE_LIMIT, str(good), str(target)], check=False,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"could not write {target}: ") and "File too large" in r.stdout
    assert TrainingData.load(old).frame.height == 10  # what was there stays whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["data"]  # no temp folder left


def test_a_gap_cut_names_the_setting_that_imputes_it():
    """Regression: half-hourly data read in the wrong zone (a daylight-saving hour quarantined) lost its one
    series to 'interior gap of 4 periods > max_gap=3' and the run stopped without saying what to change; the
    series is now kept after the gap, and the reason names the max_gap that would impute it."""
    td, s = preprocess(frame({"a": [1.0, 2.0, None, None, None, None, 7.0, 8.0]}), source(), settings(), None)
    assert y_of(td, "a") == [7.0, 8.0]
    assert s.gap_cut[0]["reason"].endswith("the series starts there ([preprocess] max_gap = 4 imputes it)")


@pytest.mark.parametrize(("freq", "step", "seen", "guess"), [
    ("1m", timedelta(days=31), "31 days", "but freq '1m' is 1 minute: is it freq '1mo'?"),
    ("1d", timedelta(weeks=1), "7 days", "but freq '1d' is 1 day: is it freq '1w'?"),
    ("15m", timedelta(hours=6), "6 hours", "but freq '15m' is 15 minutes: is it freq '6h'?"),
])
def test_no_series_left_because_freq_is_finer_than_the_data_says_which_freq_it_has(freq, step, seen, guess):
    """Regression: monthly data read with --freq 1m (a minute, where '1mo' is a month) lost every series to
    'interior gap of 44639 periods' and the error advised FLOWCAST_PREPROCESS__MAX_GAP=44639; it now says how
    far apart the observations are and which freq that is, and no longer suggests the max_gap."""
    valid = pl.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4, "ds": [D0 + i * step for i in range(4)] * 2,
                          "y": [1.0, 2.0, 3.0, 4.0] * 2})
    with pytest.raises(DataValidationError) as err:
        preprocess(valid, source(freq=freq), settings(), None)
    said = f"the observations are {seen} apart (the median step), {guess}"
    assert said in str(err.value) and "MAX_GAP" not in str(err.value)


# ------------------------------------------------------------------------------------ business days
def _weekday_offsets(n_days: int) -> list[int]:
    """Day offsets from D0 (Wednesday 2020-01-01) that are Monday to Friday."""
    return [d for d in range(n_days) if (D0 + timedelta(days=d)).weekday() < 5]


def test_daily_data_without_a_weekend_row_is_told_about_freq_1b():
    """At '1d', weekday-only data (no Saturday or Sunday in any series) has every weekend imputed and would
    forecast weekends: the summary, the data-quality report and the error when no series is left say '1b'."""
    days = _weekday_offsets(25)  # 2020-01-01 .. 2020-01-24: 18 weekdays, three weekends between them
    valid = frame({"a": [float(d) for d in days], "b": [2.0 * d for d in days]}, days={"a": days, "b": days})
    _, s = preprocess(valid, source(), settings(), None)
    assert s.rows_imputed == 2 * 6  # three weekends in each of two series
    assert s.freq_hint is not None and "freq '1b' (business days" in s.freq_hint
    assert "the series' 12 weekend days are gaps" in s.freq_hint
    from flowcast.data.validate import DataQualityReport

    report = DataQualityReport(source="t", as_of=None)
    report.add_preprocess(s)
    assert f"frequency: {s.freq_hint}" in report.to_markdown()
    with pytest.raises(DataValidationError, match=r"max_gap=1\).*; no row falls on a Saturday or Sunday.*--freq 1b"):
        preprocess(valid, source(), settings(max_gap=1), None)

    # one Saturday row in one series: daily data with gaps, no hint
    sat = frame({"a": [1.0] * (len(days) + 1)}, days={"a": sorted([*days, 3])})
    assert preprocess(sat, source(), settings(), None)[1].freq_hint is None
    # too little to tell: one weekend
    short = _weekday_offsets(7)
    assert preprocess(frame({"a": [1.0] * len(short)}, days={"a": short}), source(), settings(), None)[1].freq_hint is None
    # weekly data, or already business days: nothing to say
    on_b = frame({"a": [float(d) for d in days]}, days={"a": days})
    assert preprocess(on_b, source(freq="1b"), settings(), None)[1].freq_hint is None


def test_weekday_only_series_beside_daily_ones_are_named():
    """Regression (new-user trial: three stock prices and a shop's daily sales in one file): the shop's weekends
    made the source daily, and the prices' 234 weekend days were imputed and forecast without a word (the 1b hint
    needed every series weekday-only). They are named, with the way to business days."""
    days = _weekday_offsets(25)
    every = list(range(25))
    valid = frame({"p1": [float(d) for d in days], "p2": [2.0 * d for d in days], "shop": [1.0 + d % 7 for d in every]},
                  days={"p1": days, "p2": days, "shop": every})
    _, s = preprocess(valid, source(), settings(), None)
    assert s.rows_imputed == 2 * 6
    assert s.freq_hint is not None and s.freq_hint.startswith("2 of 3 series have no row on a Saturday or Sunday "
                                                              "(p1, p2)"), s.freq_hint
    assert "their 12 weekend days are gaps" in s.freq_hint and "with --freq 1b" in s.freq_hint
    # a daily series that has a weekend row is never named; a short one neither
    short = _weekday_offsets(7)
    mixed = frame({"p1": [1.0] * len(short), "shop": [1.0] * 25}, days={"p1": short, "shop": every})
    assert preprocess(mixed, source(), settings(), None)[1].freq_hint is None


def test_weekday_only_hint_counts_as_having_weekend_rows_only_the_series_that_have_them():
    """Regression: the hint said '1 of 3 series have no row on a Saturday or Sunday (p1), while 2 others have
    weekend rows' when the third was a weekday-only series too short to be named (one weekend, 5 rows): it counted
    every series not named as one with weekend rows. Only the shop has them."""
    days = _weekday_offsets(25)
    every = list(range(25))
    short = _weekday_offsets(7)
    valid = frame({"p1": [float(d) for d in days], "p2": [1.0] * len(short), "shop": [1.0 + d % 7 for d in every]},
                  days={"p1": days, "p2": short, "shop": every})
    _, s = preprocess(valid, source(), settings(), None)
    assert s.freq_hint is not None and s.freq_hint.startswith(
        "1 of 3 series have no row on a Saturday or Sunday (p1), while 1 other has weekend rows"), s.freq_hint


def test_weekday_only_hint_when_the_weekend_rows_have_no_value():
    """Regression: when the only weekend rows had an empty target the hint said '2 of 2 series have no row on a
    Saturday or Sunday (p1, shop), while 0 other has weekend rows': the shop had weekend rows, none with a value.
    It says what is true: those rows have no value; and beside a series with weekend values, a named series
    that has an empty weekend row lacks a weekend value, not a row."""
    days = _weekday_offsets(25)
    every = list(range(25))
    blank = [None if (D0 + timedelta(days=d)).weekday() >= 5 else 1.0 + d % 7 for d in every]
    valid = frame({"p1": [float(d) for d in days], "shop": blank}, days={"p1": days, "shop": every})
    _, s = preprocess(valid, source(), settings(), None)
    assert s.freq_hint is not None and s.freq_hint.startswith(
        "2 of 2 series have no value on a Saturday or Sunday (p1, shop), while the source's weekend rows have no "
        "value (an empty target): at freq '1d' their 12 weekend days are gaps"), s.freq_hint
    assert "0 other" not in s.freq_hint
    full = [1.0 + d % 7 for d in every]
    valid = frame({"p1": blank, "shop": full}, days={"p1": every, "shop": every})
    _, s = preprocess(valid, source(), settings(), None)
    assert s.freq_hint is not None and s.freq_hint.startswith(
        "1 of 2 series have no value on a Saturday or Sunday (p1), while 1 other has weekend rows"), s.freq_hint


@pytest.mark.parametrize("with_weekday_only", [False, True])
def test_weekly_series_beside_daily_ones_are_told_freq_1w_not_1b(with_weekday_only):
    """Regression (newuser46: a weekly series, every row a Monday, in a daily file): the hint said '1 of 4 series
    have no row on a Saturday or Sunday (wk) ...: forecast them ... with freq '1b'', as if it were weekday-only
    data; at '1d' its weeks were 6-day gaps past max_gap, and it kept one row. A series with every value on one
    weekday is named as weekly, with '1w'; weekday-only series beside it are still told '1b'."""
    every = list(range(84))
    mondays = [5 + 7 * k for k in range(12)]  # D0 is a Wednesday: 2020-01-06 .. 2020-03-23
    series = {"shop": [1.0 + d % 7 for d in every], "wk": [float(d) for d in mondays]}
    days = {"shop": every, "wk": mondays}
    if with_weekday_only:
        series["p1"] = [float(d) for d in _weekday_offsets(84)]
        days["p1"] = _weekday_offsets(84)
    _, s = preprocess(frame(series, days=days), source(), settings(), None)
    n = len(series)
    weekly = (f"1 of {n} series have every value on one weekday (wk: Mondays): weekly data? At freq '1d' the 6 days "
              "between two of their weeks are gaps")
    assert s.freq_hint is not None and weekly in s.freq_hint and "with --freq 1w" in s.freq_hint, s.freq_hint
    assert ("1 of 3 series have no row on a Saturday or Sunday (p1)" in s.freq_hint) is with_weekday_only
    assert ("(wk)" in s.freq_hint) is False  # never among the weekday-only series
    assert s.freq_hint.count("--freq 1b") == int(with_weekday_only)
    # its gap-cut reason advises '1w' too, not a max_gap that would fill its weeks day by day (nuB46)
    reason = next(c["reason"] for c in s.gap_cut if c["unique_id"] == "wk")
    assert "max_gap = 6" not in reason and reason.endswith(
        "(its every value is on a Monday: weekly data? --freq 1w reads it, in a file or source of its own)"), reason
    assert all("max_gap = " in c["reason"] for c in s.gap_cut if c["unique_id"] != "wk")


@pytest.mark.parametrize("with_weekday_only", [False, True])
def test_weekly_series_without_a_weekend_row_are_told_freq_1w_not_1b(with_weekday_only):
    """Regression (revC46): where no row falls on a weekend (a weekly file, every row a Monday, read at '1d'; or weekly
    series beside weekday-only ones) the hint said the data was weekday-only and to take '1b'. The weekly series are
    named with '1w' (the source itself where every series is weekly); weekday-only ones beside them still '1b'."""
    mondays = [5 + 7 * k for k in range(12)]  # D0 is a Wednesday: 2020-01-06 .. 2020-03-23
    series = {"wk": [float(d) for d in mondays]}
    days = {"wk": mondays}
    if with_weekday_only:
        series["p1"] = [float(d) for d in _weekday_offsets(84)]
        days["p1"] = _weekday_offsets(84)
    if not with_weekday_only:  # every series past max_gap at every week: refused, the hint said with it
        with pytest.raises(DataValidationError) as refused:
            preprocess(frame(series, days=days), source(), settings(), None)
        assert str(refused.value).endswith(
            "; every series has every value on one weekday (wk: Mondays): weekly data? At freq '1d' the 6 days between "
            "two of their weeks are gaps (imputed up to max_gap; past it a series starts after its last such gap) and "
            "their forecasts are daily. Forecast the source with freq '1w' (--freq 1w)"), refused.value
        return
    _, s = preprocess(frame(series, days=days), source(), settings(), None)
    assert s.freq_hint is not None and s.freq_hint.count("--freq 1b") == 1, s.freq_hint
    assert s.freq_hint.startswith("no row falls on a Saturday or Sunday"), s.freq_hint
    assert "; 1 of 2 series have every value on one weekday (wk: Mondays): weekly data?" in s.freq_hint
    assert s.freq_hint.endswith("with --freq 1w); one freq serves a whole source"), s.freq_hint


def test_business_day_grid_skips_weekends_and_imputes_a_missing_weekday():
    """freq '1b': the grid runs Monday to Friday; a missing weekday (a holiday: not known to flowcast) is a
    gap like any other, imputed; the horizon starts on the Monday after a Friday."""
    days = [d for d in _weekday_offsets(16) if d != 6]  # 2020-01-01 .. 2020-01-16 without Tuesday the 7th
    valid = frame({"a": [float(d) for d in days]}, days={"a": days})
    td, s = preprocess(valid, source(freq="1b"), settings(), None)
    grid = td.frame["ds"]
    assert grid.to_list() == [D0 + timedelta(days=d) for d in _weekday_offsets(16)]
    assert (s.rows_inserted, s.rows_imputed, s.freq_hint) == (1, 1, None)
    assert y_of(td, "a")[4] == 6.0  # Tuesday 7th, between Monday (5.0) and Wednesday (7.0)
    assert (td.meta.season_length, td.meta.horizon) == (5, 2)
    assert td.future_frame(3)["ds"].to_list() == [datetime(2020, 1, 17), datetime(2020, 1, 20), datetime(2020, 1, 21)]
    assert resolve_horizon(load_settings(), source(freq="1b")) == 10  # two business weeks


def test_a_backtest_cut_sees_no_covariate_value_from_after_it():
    """Regression: covariates were filled forward then BACKWARD within the series, so the leading rows of a
    covariate first known on day 9 took day 9's value. A backtest cut at day 8 (`holdout`) then trained on it:
    values from after the cut, where a run with as_of = day 8 had none (0). Leading rows without a value get 0,
    what the series knew then; a cut's frame equals the frame of a run at the cut."""
    valid = frame({"a": [float(i) for i in range(1, 13)]}, promo=[None] * 8 + [5.0, 6, 7, 8],
                  temp=[None] * 8 + [1.0, 2, 3, 4])
    src = source(past_cols=["promo"], future_cols=["temp"])
    td, _ = preprocess(valid, src, settings(), None)
    cut, _ = td.holdout(4)
    at_cut, _ = preprocess(valid.head(8), src, settings(), None)
    assert cut.frame.select("promo", "temp").rows() == at_cut.frame.select("promo", "temp").rows()
    assert cut.frame["promo"].to_list() == [0.0] * 8
    # interior gaps are still carried forward from the series' last value
    td2, _ = preprocess(frame({"a": [1.0, 2, 3, 4]}, promo=[None, 2.0, None, 4.0]), source(past_cols=["promo"]), settings(),
                        None)
    assert td2.frame["promo"].to_list() == [0.0, 2.0, 2.0, 4.0]


def _ended_settings(mode: str):
    return load_settings(model={"lookback": 3}, horizon=2, validation={"ended_series": mode})


# a: days 0..19; b: days 0..16 but day 2 (one point to impute), its last 3 days before a's last: ended at horizon 2;
# c: days 0..17, exactly a horizon before: not ended; d: every y empty (excluded for that, never "ended")
_B_DAYS = [0, 1, *range(3, 17)]


@pytest.mark.parametrize(("mode", "b_back", "ids", "ended"), [
    ("forecast", False, ["a", "b", "c"], []),  # the default: forecast from its own last observation
    ("exclude", False, ["a", "c"], ["b"]),
    ("exclude", True, ["a", "b", "c"], []),  # b's observations resumed (day 19): forecast again
])
def test_ended_series_are_set_aside_with_their_reason_when_asked(mode, b_back, ids, ended):
    b_days = [*_B_DAYS, 19] if b_back else _B_DAYS
    valid = frame({"a": list(range(20)), "b": [1.0] * len(b_days), "c": list(range(18)), "d": [None]},
                  days={"a": list(range(20)), "b": b_days, "c": list(range(18)), "d": [0]})
    td, s = preprocess(valid, source(), _ended_settings(mode), None)
    assert td.ids == ids
    assert [e["unique_id"] for e in s.excluded] == sorted([*ended, "d"]) == td.excluded["unique_id"].to_list()
    reasons = dict(td.excluded.iter_rows())
    assert not reasons["d"].startswith("ended")
    if ended:
        assert reasons["b"] == ("ended: its last observation, 2020-01-17, is 3 periods (1d) before the latest of any "
                                'series, more than the horizon (2): not forecast ([validation] ended_series = "exclude")')
        assert s.ended == [{"unique_id": "b", "last_ds": "2020-01-17T00:00:00"}]
        assert (s.rows_ended, s.rows_inserted, s.rows_imputed) == (len(b_days), 0, 0)  # b's missing day is not theirs
    else:
        assert (s.ended, s.rows_ended, s.rows_inserted) == ([], 0, 3 if b_back else 1)  # day 2 (and 17, 18) of b
    # the counts reconcile: every row handed over is on the grid, trimmed, before a gap or in an ended series
    assert s.rows_in == s.rows_out - s.rows_inserted + s.rows_trimmed + s.rows_before_gap + s.rows_ended
    assert s.rows_out == td.frame.height and set(td.frame["unique_id"].unique()) == set(ids)


def test_an_ended_sub_daily_series_of_a_source_in_a_time_zone_is_said_with_its_wall_time_there_too():
    """review52: the gap cut's reason named each instant's wall time in the source's tz, the ended series' reason
    beside it in the same excluded table UTC alone ('its last observation, 2020-01-01 13:00 UTC')."""
    hourly = frame({"a": list(range(20)), "b": [1.0] * 15}).with_columns(
        ds=pl.datetime(2020, 1, 1) + pl.duration(hours=pl.int_range(0, pl.len()).over("unique_id")))
    td, _ = preprocess(hourly, source(freq="1h", tz="America/New_York"), _ended_settings("exclude"), None)
    assert dict(td.excluded.iter_rows())["b"].startswith(
        "ended: its last observation, 2020-01-01 14:00 UTC (2020-01-01 09:00 -05:00 America/New_York), is 5 periods "
        "(1h) before the latest of any series")


@pytest.mark.parametrize(("mode", "b_days", "ids", "cut", "before_gap", "ended_rows"), [
    # b: days 0..3, a 5-day hole, days 9..14 (5 days before a's last, horizon 2): gap-cut and ended
    ("exclude", [0, 1, 2, 3, *range(9, 15)], ["a"], [], 0, 10),  # set aside whole: its 4 rows before the gap too
    ("forecast", [0, 1, 2, 3, *range(9, 15)], ["a", "b"], ["b"], 4, 0),  # forecast: it starts after its gap
    # b resumes on day 17 (2 days before a's last: not ended), so forecast from after its long gap in either mode
    ("exclude", [0, 1, 2, 3, *range(9, 15), 17], ["a", "b"], ["b"], 4, 0),
])
def test_an_ended_series_with_a_long_gap_is_set_aside_once_not_also_said_to_start_after_it(mode, b_days, ids, cut,
                                                                                           before_gap, ended_rows):
    """Regression: a series both cut at an interior gap longer than max_gap and set aside as ended was listed among
    the gap-cut series ('the 4 rows before 2020-01-10 are not used, the series starts there') and among the excluded
    ones: it starts nowhere, it is not forecast. It is set aside once; its rows before the gap count with its other
    rows (rows_ended), and the counts still reconcile."""
    st = load_settings(model={"lookback": 3}, horizon=2, validation={"ended_series": mode}, preprocess={"max_gap": 3})
    valid = frame({"a": list(range(20)), "b": [1.0] * len(b_days)}, days={"a": list(range(20)), "b": b_days})
    td, s = preprocess(valid, source(), st, None)
    assert td.ids == ids
    assert [c["unique_id"] for c in s.gap_cut or []] == cut
    assert (s.rows_before_gap, s.rows_ended) == (before_gap, ended_rows)
    assert [e["unique_id"] for e in s.excluded] == ([] if "b" in ids else ["b"])
    assert s.rows_in == s.rows_out - s.rows_inserted + s.rows_trimmed + s.rows_before_gap + s.rows_ended


def test_ended_series_take_no_planned_covariates_along():
    """An ended series set aside leaves no future covariate rows behind (the horizon of a series not forecast)."""
    valid = frame({"a": [1.0] * 10 + [None], "b": [1.0] * 4 + [None]}, days={"a": [*range(10), 10], "b": [0, 1, 2, 3, 10]},
                  temp=[float(i) for i in range(16)])
    td, s = preprocess(valid, source(future_cols=["temp"]), _ended_settings("exclude"), None)
    assert td.ids == ["a"] and [e["unique_id"] for e in s.excluded] == ["b"]
    assert td.future_exog is not None and td.future_exog["unique_id"].unique().to_list() == ["a"]


def test_ended_series_is_forecast_by_default():
    assert load_settings().validation.ended_series == "forecast"


def test_ended_series_mode_is_part_of_the_preprocess_cache_key():
    """The cached TrainingData of one mode is never handed to a run of the other (the ended series forecast, or not)."""
    from flowcast.flows.tasks import preprocess_cache_key

    keys = {preprocess_cache_key(None, {"settings": _ended_settings(mode), "source": source(), "as_of": None,
                                        "fingerprint": "f"}) for mode in ("forecast", "exclude")}
    assert len(keys) == 2


def test_the_preprocess_cache_key_follows_what_preprocessing_reads():
    """Backtest windows are not read by preprocessing: more of them reuse the cached TrainingData; a lookback (the
    networks' minimum length, which decides the short series) does not."""
    from flowcast.flows.tasks import preprocess_cache_key

    def key(**over: int) -> str:
        s = _ended_settings("forecast")
        s = s.model_copy(update={"evaluation": s.evaluation.model_copy(update={"n_windows": over.get("n_windows", 2)}),
                                 "model": s.model.model_copy(update={"lookback": over.get("lookback", s.model.lookback)})})
        return preprocess_cache_key(None, {"settings": s, "source": source(), "as_of": None, "fingerprint": "f"})

    assert key(n_windows=2) == key(n_windows=5)
    assert key(lookback=12) != key(lookback=24)
