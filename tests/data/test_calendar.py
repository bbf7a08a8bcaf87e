"""Calendar features and seasonal periods per frequency (flowcast.data.calendar)."""

from __future__ import annotations

import math
from datetime import date, datetime

import polars as pl
import pytest

from flowcast.data.calendar import (
    calendar_columns,
    calendar_exprs,
    grid_dates,
    grid_point,
    local_season_us,
    on_grid,
    parse_freq,
    periods_between,
    season_length,
    shift,
)


@pytest.mark.parametrize(("freq", "season"), [
    ("1mo", 12), ("1q", 4), ("1y", 1), ("1w", 52), ("2w", 26), ("1d", 7), ("1h", 24), ("30m", 48),
    ("7d", 52), ("14d", 26),  # regression: weeks written as '7d' had a season of 1 (round(7 days / 7 days))
])
def test_season_length_per_frequency(freq, season):
    """Weekly data written as '7d' (the same grid as '1w') got no season: seasonal naive was naive and
    theta's seasonal adjustment was off, where '1w' has the yearly 52."""
    assert season_length(freq) == season


_DAY_US = 86_400_000_000


@pytest.mark.parametrize(("freq", "tz", "season", "expected"), [
    ("1h", "Europe/Berlin", 24, _DAY_US), ("30m", "Europe/Berlin", 48, _DAY_US),
    ("1h", "America/New_York", 168, 7 * _DAY_US), ("15m", "Etc/GMT-1", 96, _DAY_US),
    ("1h", None, 24, None), ("1h", "UTC", 24, None),  # no local clock apart from UTC's
    ("1h", "Europe/Berlin", 12, None), ("7m", "Europe/Berlin", 206, None),  # seasons of part of a day
    ("1d", "Europe/Berlin", 7, None), ("1mo", "Europe/Berlin", 12, None),  # ds already local dates
])
def test_local_season_is_a_whole_number_of_local_days_of_sub_daily_data_in_a_zone(freq, tz, season, expected):
    assert local_season_us(freq, tz, season) == expected


# ------------------------------------------------------------------------------------ grid arithmetic
def _shifted(days: list[datetime], k: int | list[int], freq: str) -> list[datetime]:
    f = pl.DataFrame({"ds": days, "k": k if isinstance(k, list) else [k] * len(days)})
    return f.select(shift(pl.col("ds"), pl.col("k"), freq).alias("x"))["x"].to_list()


def test_shift_moves_by_calendar_months_and_fixed_durations():
    days = [datetime(2021, 3, 31), datetime(2021, 1, 1, 12)]
    assert _shifted(days, -13, "1mo") == [datetime(2020, 2, 29), datetime(2019, 12, 1, 12)]
    assert _shifted(days, 3, "30m") == [datetime(2021, 3, 31, 1, 30), datetime(2021, 1, 1, 13, 30)]
    assert _shifted(days, 2, "1q") == [datetime(2021, 9, 30), datetime(2021, 7, 1, 12)]


def test_shift_by_business_days_skips_weekends_both_ways():
    fri, mon = datetime(2024, 1, 5), datetime(2024, 1, 8)
    assert _shifted([fri], 1, "1b") == [mon]  # Friday + 1 = Monday
    assert _shifted([mon], -1, "1b") == [fri]  # Monday - 1 = Friday
    assert _shifted([fri, mon], [5, -5], "1b") == [datetime(2024, 1, 12), datetime(2024, 1, 1)]  # a business week
    assert _shifted([fri], 0, "1b") == [fri]
    # a weekend instant (an as_of on a Saturday) counts from the Friday whose period holds it
    assert _shifted([datetime(2024, 1, 6, 9)], [1], "1b") == [datetime(2024, 1, 8, 9)]
    assert _shifted([datetime(2024, 1, 7)], [-1], "1b") == [datetime(2024, 1, 4)]
    # dates stay dates
    f = pl.DataFrame({"ds": [date(2024, 1, 5)]})
    assert f.select(shift(pl.col("ds"), 1, "1b"))["ds"].to_list() == [date(2024, 1, 8)]


def test_business_grid_over_weekends():
    """The grid a series gets from its first point, and the steps between two of its points, skip
    Saturdays and Sundays (three weeks from Wednesday 2024-01-03)."""
    first = datetime(2024, 1, 3)
    f = pl.DataFrame({"pos": list(range(15))})
    grid = f.select(grid_point(pl.lit(first), pl.col("pos"), "1b").alias("ds"))["ds"]
    assert grid.dt.weekday().max() <= 5 and grid.n_unique() == 15
    assert grid.to_list()[:4] == [datetime(2024, 1, 3), datetime(2024, 1, 4), datetime(2024, 1, 5), datetime(2024, 1, 8)]
    assert grid[-1] == datetime(2024, 1, 23)
    steps = pl.DataFrame({"ds": grid}).select(periods_between(pl.lit(first), pl.col("ds"), "1b"))["literal"]
    assert steps.to_list() == list(range(15))
    assert grid_dates(datetime(2024, 1, 3), datetime(2024, 1, 23), "1b") == grid.to_list()
    # from a Saturday: the weekdays after it, at its time of day
    assert grid_dates(datetime(2024, 1, 6, 6), datetime(2024, 1, 9, 6), "1b") == [datetime(2024, 1, 8, 6),
                                                                                datetime(2024, 1, 9, 6)]
    assert grid_dates(datetime(2024, 1, 1), datetime(2024, 3, 1), "1mo") == [
        datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)]


def test_business_days_membership_season_and_features():
    days = pl.Series("ds", [datetime(2024, 1, 5), datetime(2024, 1, 6), datetime(2024, 1, 7), datetime(2024, 1, 8)])
    f = pl.DataFrame({"ds": days})
    assert f.select(on_grid(pl.col("ds"), "1b"))["ds"].to_list() == [True, False, False, True]
    assert f.select(on_grid(pl.col("ds"), "1d"))["literal"].to_list() == [True]
    assert season_length("1b") == 5  # a business week
    assert calendar_columns("1b") == ["cal_week_sin", "cal_week_cos", "cal_year_sin", "cal_year_cos"]
    week = f.filter(on_grid(pl.col("ds"), "1b")).select(calendar_exprs("1b"))
    # Monday 0 and Friday 4 of a 5-day cycle: Friday's angle is 4/5 of a turn, the week closes on Monday
    assert week["cal_week_cos"].to_list() == pytest.approx([math.cos(2 * math.pi * 4 / 5), 1.0])
    assert parse_freq("1b") == (1, "b")
    with pytest.raises(ValueError, match="'1b'"):
        parse_freq("2b")
