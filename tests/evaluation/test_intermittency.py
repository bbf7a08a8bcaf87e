"""The intermittent-demand rule (flowcast.evaluation.intermittency): hand-counted figures, the majority rule, the
candidates added only where the list was not given, the bound at 0 only where none is declared, and the bundled
real datasets (M3, us_employment, vic_elecdemand) never classed intermittent."""

from __future__ import annotations

import tempfile

import polars as pl
import pytest

from flowcast.config import load_settings, with_overrides
from flowcast.data.datasets import SAMPLE_DIR, load_m3
from flowcast.evaluation.intermittency import ADI_THRESHOLD, classify, count_bounds, intermittent_settings


def _frame(series: dict[str, list[float | None]]) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": [u for u, v in series.items() for _ in v],
                         "y": [x for v in series.values() for x in v]}, schema={"unique_id": pl.Utf8, "y": pl.Float64})


def test_figures_are_counted_over_the_observed_values():
    # a: 2 demands in 6 observed values (ADI 3), the null is not observed; b: 4 of 4 (ADI 1); c: no demand (ADI inf)
    info = classify(_frame({"a": [0, 3, 0, None, 0, 0, 2], "b": [1, 2, 3, 4], "c": [0, 0]}))
    assert (info.n_series, info.n_sparse, info.negative) == (3, 2, False)
    assert info.zero_share == pytest.approx(6 / 12)
    assert info.median_adi == pytest.approx(3.0)
    assert info.intermittent
    assert "2 of 3 series" in info.describe() and "median ADI 3.00" in info.describe() and "50.0%" in info.describe()


@pytest.mark.parametrize(("series", "intermittent"), [
    ({"a": [0, 0, 5, 0], "b": [1, 2, 3, 4]}, False),  # half the series, not more than half
    ({"a": [0, 0, 5, 0], "b": [0, 1, 0, 0], "c": [1, 2, 3, 4]}, True),  # two of three
    ({"a": [0, 0, 5, 0], "b": [0, -1, 0, 0], "c": [0, 0, 0, 2]}, False),  # a negative value: not a count
    ({"a": [4, 0, 5, 7], "b": [3, 1, 2, 2]}, False),  # ADI 4/3 = 1.33 > 1.32 is sparse, 1 of 2 is not a majority
    ({"a": [4, 0, 5, 7]}, True),  # ADI 4/3 just above the threshold
    ({"a": [4, 0, 5, 7, 1, 1, 1, 1, 1]}, False),  # ADI 9/8 below it
])
def test_the_majority_rule(series, intermittent):
    assert 4 / 3 > ADI_THRESHOLD > 9 / 8
    assert classify(_frame(series)).intermittent is intermittent


def test_the_bundled_real_datasets_are_not_intermittent():
    for subset in ("monthly", "quarterly", "yearly", "other"):
        train, _, _ = load_m3(subset, tempfile.mkdtemp())
        assert not classify(train).intermittent, subset
    emp = pl.read_csv(SAMPLE_DIR / "us_employment.csv.gz").select(pl.col("Series_ID").alias("unique_id"),
                                                                     pl.col("Employed").alias("y"))
    vic = pl.read_csv(SAMPLE_DIR / "vic_elecdemand_2014.csv.gz").select(pl.lit("vic").alias("unique_id"),
                                                                          pl.col("Demand").alias("y"))
    for frame in (emp, vic):
        info = classify(frame)
        assert not info.intermittent and info.n_sparse == 0


SPARSE = {"a": [0, 0, 5, 0], "b": [0, 1, 0, 0], "c": [1, 2, 3, 4]}


def test_the_intermittent_models_join_a_list_that_was_not_given(tmp_path):
    settings = load_settings(home=tmp_path)
    before = list(settings.evaluation.statistical)
    out, notes = intermittent_settings(settings, classify(_frame(SPARSE)))
    assert out.evaluation.statistical == [*before, "croston", "tsb", "adida"]
    assert out.evaluation.combination == settings.evaluation.combination
    assert len(notes) == 1 and "classed intermittent" in notes[0] and "croston, tsb, adida" in notes[0]
    # not intermittent: the very same settings, nothing said
    same, said = intermittent_settings(settings, classify(_frame({"c": [1, 2, 3, 4]})))
    assert same is settings and said == []


def test_a_given_list_is_kept(tmp_path):
    settings = with_overrides(load_settings(home=tmp_path), evaluation={"statistical": ["naive", "theta"]})
    out, notes = intermittent_settings(settings, classify(_frame(SPARSE)))
    assert out.evaluation.statistical == ["naive", "theta"]
    assert "kept as they are: croston, tsb, adida could be added" in notes[0]
    toml = tmp_path / "flowcast.toml"
    toml.write_text('[evaluation]\nstatistical = ["naive", "croston"]\n')
    out, notes = intermittent_settings(load_settings(toml, home=tmp_path), classify(_frame(SPARSE)))
    assert out.evaluation.statistical == ["naive", "croston"] and "tsb, adida could be added" in notes[0]


@pytest.mark.parametrize(("given", "metric", "said"), [
    (None, "rmsse", "ranked on RMSSE instead of MASE (evaluation.metric was not given)"),
    ("mase", "mase", 'ranked on MASE as evaluation.metric = "mase" says'),
    ("smape", "smape", 'ranked on sMAPE as evaluation.metric = "smape" says'),
    ("rmsse", "rmsse", 'ranked on RMSSE (evaluation.metric = "rmsse")'),
])
def test_intermittent_data_ranks_on_rmsse_unless_a_metric_was_given(tmp_path, given, metric, said):
    settings = load_settings(home=tmp_path)
    if given is not None:
        settings = with_overrides(settings, evaluation={"metric": given})
    out, notes = intermittent_settings(settings, classify(_frame(SPARSE)))
    assert out.evaluation.metric == metric
    assert len(notes) == 1 and said in notes[0] and "  " not in notes[0]
    assert ("mean demand rate" in notes[0]) is (given != "rmsse")  # why, where it is not what was asked for
    # not intermittent: the metric stays what it was (MASE by default), nothing said
    same, nothing = intermittent_settings(settings, classify(_frame({"c": [1, 2, 3, 4]})))
    assert same.evaluation.metric == (given or "mase") and nothing == []


def test_a_metric_given_in_the_toml_file_is_kept(tmp_path):
    toml = tmp_path / "flowcast.toml"
    toml.write_text('[evaluation]\nmetric = "mae"\n')
    out, notes = intermittent_settings(load_settings(toml, home=tmp_path), classify(_frame(SPARSE)))
    assert out.evaluation.metric == "mae" and 'evaluation.metric = "mae" says' in notes[0]


def test_counts_are_cut_at_zero_only_without_a_declared_bound():
    sparse, smooth = classify(_frame(SPARSE)), classify(_frame({"c": [1, 2, 3, 4]}))
    assert count_bounds((None, None), sparse) == ((0.0, None), count_bounds((None, None), sparse)[1])
    assert "cut at 0" in (count_bounds((None, 10.0), sparse)[1] or "")
    assert count_bounds((None, 10.0), sparse)[0] == (0.0, 10.0)
    assert count_bounds((-5.0, None), sparse) == ((-5.0, None), None)  # declared: kept
    assert count_bounds((None, None), smooth) == ((None, None), None)  # not intermittent: untouched


def test_a_registered_models_recorded_decision_sets_the_forecasts_bound_not_this_runs_data():
    from flowcast.evaluation.intermittency import recorded_bounds

    sparse = _frame({"a": [0, 0, 5, 0], "b": [0, 1, 0, 0]})
    smooth = _frame({"a": [4, 3, 5, 7], "b": [3, 1, 2, 2]})
    # the retrain classed its data intermittent and cut at 0: newer, denser data does not lift the bound
    assert recorded_bounds((None, None), True, smooth)[0] == (0.0, None)
    # ... nor does newer, sparser data add one to a model selected and calibrated without it
    assert recorded_bounds((None, None), False, sparse) == ((None, None), None)
    # a declared y_min is the user's, whatever was recorded
    assert recorded_bounds((-2.0, 9.0), True, sparse) == ((-2.0, 9.0), None)
    # a model registered before the decision was recorded: this run's data decides, as it did
    assert recorded_bounds((None, None), None, sparse)[0] == (0.0, None)
    assert recorded_bounds((None, None), None, smooth) == ((None, None), None)


@pytest.mark.parametrize(("values", "cut"), [({"a": [0, 0, 5, -1], "b": [0, 1, 0, 0]}, False),
                                             ({"a": [0, 0, 5, 0], "b": [0, 1, 0, 0]}, True)])
def test_a_recorded_cut_at_0_is_not_applied_to_data_that_now_goes_below_it(values, cut):
    """Regression (review16): a model whose retrain classed the data intermittent counts kept cutting its forecasts
    at 0 after the data turned negative (a return booked as -1), with no word: the forecasts of a series with
    negative values were raised to 0. The recorded cut holds only while the data is still never below 0; the
    note names the series and says to retrain or declare y_min."""
    from flowcast.evaluation.intermittency import recorded_bounds

    bounds, note = recorded_bounds((None, None), True, _frame(values))
    assert bounds == ((0.0, None) if cut else (None, None))
    assert ("now hold negative values (e.g. a)" in (note or "")) is not cut and "retrain" in (note or ""), note
