"""Statics of today's data as a model's columns (flowcast.data.statics)."""

from __future__ import annotations

import polars as pl
import pytest

from flowcast.data.statics import align_statics, unknown_level
from flowcast.errors import TrainingError

MODEL = ["size", "region=north", "region=south", unknown_level("region")]


def test_an_unseen_level_is_the_unknown_level_and_a_missing_known_level_is_zero():
    data_cols = ["size", "region=north", "region=west", unknown_level("region")]
    static = pl.DataFrame({"unique_id": ["a", "b", "c"], "size": [1.0, 2.0, 3.0], "region=north": [1.0, 0.0, 0.0],
                           "region=west": [0.0, 1.0, 0.0], "region=__unknown__": [0.0, 0.0, 1.0]})
    got = align_statics(static, data_cols, MODEL, ["a", "b", "c", "d"])
    assert got.columns == ["unique_id", *MODEL]
    assert got.rows() == [
        ("a", 1.0, 1.0, 0.0, 0.0),  # north: known
        ("b", 2.0, 0.0, 0.0, 1.0),  # west: never seen -> unknown
        ("c", 3.0, 0.0, 0.0, 1.0),  # no region
        ("d", None, 0.0, 0.0, 1.0),  # no static row at all: no size (the training mean when packed)
    ]


def test_a_numeric_static_the_model_needs_must_be_there():
    static = pl.DataFrame({"unique_id": ["a"], "region=north": [1.0]})
    with pytest.raises(TrainingError, match=r"missing \['size'\]"):
        align_statics(static, ["region=north"], MODEL, ["a"])
    with pytest.raises(TrainingError, match=r"not known to the model \['weight'\]"):
        align_statics(static.with_columns(size=1.0, weight=2.0), ["size", "region=north", "weight"], MODEL, ["a"])


def test_a_static_number_written_with_a_unicode_or_detached_minus_is_a_number():
    """Regression: a store's static '−5' (U+2212) or '- 5' was not a number, so the column became a category
    (one-hot: size=−5, size=10), its magnitude lost."""
    import polars as pl

    from flowcast.data.preprocess import _static_features

    firsts = pl.DataFrame({"unique_id": ["a", "b", "c"], "size": ["\u22125", "- 2.5", "10"]})
    frame, names, dropped = _static_features(firsts, ["size"], pl.Series(["a", "b", "c"]))
    assert names == ["size"] and not dropped
    assert frame["size"].to_list() == [-5.0, -2.5, 10.0]


def test_a_static_number_with_swiss_thousands_is_a_number():
    """Regression: a store's area '1'234.5' (Swiss thousands, also with the typographic apostrophe U+2019) was
    no number, so the whole column became a category (one-hot per area), its magnitudes lost."""
    from flowcast.data.preprocess import _static_features

    firsts = pl.DataFrame({"unique_id": ["a", "b", "c"], "area": ["1'234.5", "12\u2019000", "980"]})
    frame, names, dropped = _static_features(firsts, ["area"], pl.Series(["a", "b", "c"]))
    assert names == ["area"] and not dropped
    assert frame["area"].to_list() == [1234.5, 12000.0, 980.0]
