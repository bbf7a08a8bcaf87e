"""Per-series scalers (`flowcast.data.training_data.fit_scalers`)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from flowcast.data.training_data import fit_scalers


def _frame(series: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame([(u, date(2020, 1, 1) + timedelta(days=k), v) for u, ys in series.items()
                         for k, v in enumerate(ys)], schema=["unique_id", "ds", "y"], orient="row")


@pytest.mark.parametrize("log1p", [False, True])
@pytest.mark.parametrize("method", ["standard", "robust", "minmax"])
def test_a_series_of_tiny_values_keeps_its_own_spread_and_a_constant_one_gets_scale_1(method, log1p):
    """Regression (new-user trial: a level of 1e-6 beside one of 1e9 in one file): a spread under 1e-8 made a
    series 'constant' (scale 1), so its scaled values were all about 0 and the network forecast it far off. Only a
    spread at float rounding of the level (or 0) is constant now."""
    rng = np.random.default_rng(0)
    tiny = list(1e-6 + 1e-8 * rng.standard_normal(40))
    big = list(1e9 + 1e7 * rng.standard_normal(40))
    flat = [42.0] * 40
    got = {r["unique_id"]: r for r in fit_scalers(_frame({"tiny": tiny, "big": big, "flat": flat}), method,
                                                   log1p).to_dicts()}
    assert got["flat"]["scale"] == 1.0
    assert got["tiny"]["scale"] < 1e-7  # its own spread (log1p of 1e-6 is 1e-6 to 12 digits)
    scaled = (np.log1p(tiny) if log1p else np.asarray(tiny)) - got["tiny"]["center"]
    assert np.abs(scaled / got["tiny"]["scale"]).max() > 0.5  # the values are told apart after scaling
