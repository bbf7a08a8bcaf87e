"""Bundled datasets and source resolution."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from flowcast.config import load_settings
from flowcast.data.datasets import BUNDLED_DATASETS, M3_TRAIN_END, load_m3, resolve_source
from flowcast.errors import ConfigError


def test_bundled_names():
    assert set(BUNDLED_DATASETS) == {
        "us_employment", "vic_elecdemand", "m3-monthly", "m3-quarterly", "m3-yearly", "m3-other"
    }


def test_resolve_source_precedence(tmp_path):
    s = load_settings(home=tmp_path)
    assert resolve_source(s).name == "us_employment"
    custom = {"path": "x.csv", "id_cols": ["k"], "time_col": "t", "target_col": "v", "freq": "1d"}
    s = load_settings(home=tmp_path, dataset="mine", sources={"mine": custom})
    assert resolve_source(s).name == "mine" and resolve_source(s).path == "x.csv"
    s = load_settings(home=tmp_path, dataset="mine", sources={"mine": custom}, source={**custom, "name": "explicit"})
    assert resolve_source(s).name == "explicit"


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown dataset 'nope'; known datasets: m3-monthly, .*us_employment"):
        resolve_source(load_settings(home=tmp_path, dataset="nope"))


@pytest.mark.parametrize("subset,horizon,n_series", [("quarterly", 8, 756), ("yearly", 6, 645), ("other", 8, 174)])
def test_load_m3_official_split(tmp_path, subset, horizon, n_series):
    train, test, h = load_m3(subset, tmp_path)
    assert h == horizon and train.columns == test.columns == ["unique_id", "ds", "y"]
    assert train["unique_id"].n_unique() == test["unique_id"].n_unique() == n_series
    assert test.group_by("unique_id").len()["len"].unique().to_list() == [horizon]
    end = M3_TRAIN_END[f"m3-{subset}"]
    assert train.group_by("unique_id").agg(pl.col("ds").max())["ds"].unique().to_list() == [end]
    assert test["ds"].min() > end
    # the cached file serves the same data as a normal source; as_of = train end gives the split
    src = resolve_source(load_settings(home=tmp_path, dataset=f"m3-{subset}"))
    assert src.path.endswith(f"m3-{subset}.parquet") and src.horizon == horizon


def test_m3_monthly_first_series_values(tmp_path):
    train, _, h = load_m3("m3-monthly", tmp_path)
    assert h == 18 and train["unique_id"].n_unique() == 1428
    n1402 = train.filter(pl.col("unique_id") == "N1402")
    assert n1402["ds"].max() == datetime(1999, 12, 1) and n1402.height == 50


@pytest.mark.parametrize("damage", [b"", b"PAR1 not really parquet", "wrong_columns"])
def test_damaged_m3_cache_is_rebuilt(tmp_path, damage):
    """Regression: a damaged cache file (or one with other columns) failed every later run."""
    from flowcast.data.datasets import materialise_m3

    path = materialise_m3("m3-other", tmp_path)
    good = pl.read_parquet(path)
    if damage == "wrong_columns":
        pl.DataFrame({"a": [1]}).write_parquet(path)
    else:
        path.write_bytes(damage)
    assert materialise_m3("m3-other", tmp_path) == path
    assert pl.read_parquet(path).equals(good)


@pytest.mark.parametrize(("zone", "declared", "expected"), [
    ("Europe/Berlin", None, "Europe/Berlin"),  # the column's own zone
    ("Europe/Berlin", "Europe/Berlin", "Europe/Berlin"),  # declared as it is: agrees
    ("UTC", None, None),
    (None, None, None),  # a naive column: nothing to take
])
def test_a_parquet_time_columns_zone_is_the_sources_tz(tmp_path, zone, declared, expected):
    """Regression: a Parquet export whose timestamp column carries its zone (pandas/Spark, Europe/Berlin) was read
    as UTC: hour-of-day features and the day a date-alone as_of means were UTC's, an hour or two off the local
    day, unless the user repeated the zone with --tz."""
    ds = pl.datetime_range(datetime(2024, 3, 1), datetime(2024, 3, 3), "1h", eager=True)
    frame = pl.DataFrame({"id": "a", "date": ds, "val": 1.0})
    if zone:
        frame = frame.with_columns(pl.col("date").dt.replace_time_zone(zone))
    path = tmp_path / "x.parquet"
    frame.write_parquet(path)
    source = {"name": "x", "path": str(path), "id_cols": ["id"], "time_col": "date", "target_col": "val",
              "freq": "1h", "tz": declared}
    assert resolve_source(load_settings(home=tmp_path, source=source)).tz == expected
    frame.write_csv(tmp_path / "x.csv")  # a CSV's zone is in its values, not a schema: unchanged
    csv = {**source, "path": str(tmp_path / "x.csv")}
    assert resolve_source(load_settings(home=tmp_path, source=csv)).tz == declared
