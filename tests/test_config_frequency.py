"""Per-frequency defaults (config.FREQUENCY_DEFAULTS): they fill every setting that was not given
explicitly, and never replace one that was (flowcast.toml, environment, options)."""

from __future__ import annotations

import pytest

from flowcast.config import FREQUENCY_DEFAULTS, for_frequency, load_settings, with_overrides
from flowcast.flows.common import with_frequency_defaults


def test_unset_fields_take_the_frequency_recipe(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    s = for_frequency(load_settings(empty), "1y")
    for section, values in FREQUENCY_DEFAULTS["1y"].items():
        for key, value in values.items():
            if key in type(getattr(s, section)).model_fields:
                assert getattr(getattr(s, section), key) == value, (section, key)


def test_explicit_values_win(tmp_path, monkeypatch):
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('[model]\nhidden_size = 8\n[preprocess]\nlog1p = false\n')
    monkeypatch.setenv("FLOWCAST_MODEL__MAX_STEPS", "7")
    s = for_frequency(load_settings(cfg, model={"lr": 0.5}), "1y")
    assert (s.model.hidden_size, s.model.max_steps, s.model.lr, s.preprocess.log1p) == (8, 7, 0.5, False)
    assert s.model.mode == FREQUENCY_DEFAULTS["1y"]["model"]["mode"]  # not given: the recipe's
    s2 = for_frequency(with_overrides(load_settings(cfg), model={"mode": "windowed"}), "1y")
    assert s2.model.mode == "windowed" and s2.model.hidden_size == 8


def test_other_frequencies_keep_the_plain_defaults(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    base = load_settings(empty)
    for freq in ("1d", "1b", "1w"):
        assert for_frequency(base, freq).model_dump() == base.model_dump()


@pytest.mark.parametrize("freq", ["30m", "1h", "15m", "10m"])
def test_sub_daily_data_add_the_seasonal_naive_of_a_week_and_keep_the_rest(tmp_path, freq):
    """Half-hourly and hourly data are benchmarked on the same time a day and a week earlier (vic_elecdemand: the
    week's 0.331 against the day's 0.362 mean absolute error a day ahead), and their statistical candidates'
    intervals calibrated on 28 windows (`evaluation.calibration_windows`); a list given wins."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    base = load_settings(empty)
    s = for_frequency(base, freq)
    assert s.evaluation.statistical == ["naive", "seasonal_naive", "snaive_week", "theta", "damped"]
    assert s.model_dump() == {**base.model_dump(), "evaluation": {**base.model_dump()["evaluation"],
                                                                   "statistical": s.evaluation.statistical,
                                                                   "calibration_windows": 28}}
    given = for_frequency(load_settings(empty, evaluation={"statistical": ["naive"]}), freq)
    assert given.evaluation.statistical == ["naive"]


@pytest.mark.parametrize("freq", ["1w", "2w", "1mo", "1q", "1y", "5d", "7d"])
@pytest.mark.parametrize("listed", [{"evaluation": {"statistical": ["naive", "snaive_week"]}},
                                    {"evaluation": {"combination": ["theta", "snaive_week"]}},
                                    {"model": {"blend": {"snaive_week": 0.3}}}])
def test_snaive_week_of_data_without_a_week_of_periods_is_refused_naming_both(tmp_path, freq, listed):
    """The value 7 days earlier has no lag where a week is not a whole number of periods, or fewer than two."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ValueError, match=f"lists snaive_week .* frequency '{freq}'"):
        for_frequency(load_settings(empty, **listed), freq)


@pytest.mark.parametrize(("freq", "week"), [("5h", False), ("7h", True), ("45m", True), ("1s", True)])
def test_the_sub_daily_recipe_lists_snaive_week_where_a_week_is_whole_periods(tmp_path, freq, week):
    """'5h' data have no week of periods (33.6): the recipe's candidates leave snaive_week out, and run."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert ("snaive_week" in for_frequency(load_settings(empty), freq).evaluation.statistical) is week


def test_flows_apply_the_recipe_of_the_source_frequency(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    source = {"name": "yearly", "path": str(tmp_path / "y.csv"), "time_col": "t", "target_col": "v", "freq": "1y"}
    s = with_frequency_defaults(load_settings(empty, source=source))
    assert s.model.mode == FREQUENCY_DEFAULTS["1y"]["model"]["mode"]
    daily = with_frequency_defaults(load_settings(empty, source={**source, "freq": "1d"}))
    assert daily.model.mode == load_settings(empty).model.mode
    hourly = with_frequency_defaults(load_settings(empty, source={**source, "freq": "1h"}))
    assert "snaive_week" in hourly.evaluation.statistical


def test_training_length_given_in_steps_is_the_whole_length(tmp_path, monkeypatch):
    """The monthly recipe bounds training by epochs too; a user who sets max_steps (or max_epochs)
    gets exactly that, not the recipe's other bound on top."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    s = for_frequency(load_settings(empty), "1mo")
    assert (s.model.max_steps, s.model.max_epochs) == (600, 50)
    s = for_frequency(load_settings(empty, model={"max_steps": 2000}), "1mo")
    assert (s.model.max_steps, s.model.max_epochs) == (2000, None)
    monkeypatch.setenv("FLOWCAST_MODEL__MAX_EPOCHS", "3")
    s = for_frequency(load_settings(empty), "1mo")
    assert (s.model.max_steps, s.model.max_epochs) == (300, 3)
    assert s.model.hidden_size == FREQUENCY_DEFAULTS["1mo"]["model"]["hidden_size"]  # the rest still applies


def test_quarters_and_years_written_in_months_take_their_recipe(tmp_path):
    """Regression: quarterly data declared as freq '3mo' (or yearly as '12mo', '4q') got the plain defaults, not
    the quarterly (yearly) recipe chosen on M3 for that grid, as '7d' once lost the weekly season."""
    from flowcast.config import recipe_freq

    empty = tmp_path / "empty.toml"
    empty.write_text("")
    base = load_settings(empty)
    assert for_frequency(base, "3mo").model_dump() == for_frequency(base, "1q").model_dump() != base.model_dump()
    assert for_frequency(base, "12mo").model_dump() == for_frequency(base, "1y").model_dump()
    assert [recipe_freq(f) for f in ("3mo", "12mo", "4q", "1q", "2mo", "6mo", "1d", "7d")] == [
        "1q", "1y", "1y", "1q", "2mo", "6mo", "1d", "7d"]
