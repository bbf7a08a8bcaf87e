"""Counts (every value 0 or more) without a declared y_min: the retrain and the forecast runs say that their
forecasts or intervals go below 0 and how to declare the bound; with y_min = 0 the intervals stop at 0."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from flow_helpers import TINY_OVERRIDES

from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

NOTE = "Every observed value is 0 or more, but the forecasts or intervals of"


def _counts(path: Path) -> None:
    rng = np.random.default_rng(0)  # intermittent counts, mostly 0 and 1
    rows = [{"item": f"c{s}", "day": f"{date(2024, 1, 1) + timedelta(days=i)}", "units": float(rng.poisson(0.8 + s))}
            for s in range(2) for i in range(75)]  # (the forecast run sees a new day)
    pl.DataFrame(rows).write_csv(path)


@pytest.mark.parametrize("y_min", [None, 0.0])
def test_counts_below_zero_are_said_by_retrain_and_forecast(tmp_path, y_min):
    """Regression: counts were published with 95% intervals down to -7.7, and the daily forecast of a dataset whose
    retrain was given y_min = 0 published them again when it was run without it, with no word either time."""
    from flowcast.flows import forecast_flow, retrain_flow

    _counts(tmp_path / "counts.csv")
    source = {"name": "counts", "path": str(tmp_path / "counts.csv"), "id_cols": ["item"], "time_col": "day",
              "target_col": "units", "freq": "1d", "horizon": 7, "y_min": y_min}
    kw = {"source": source, "home": str(tmp_path / "home"),
          "overrides": {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": []}}}
    as_of = datetime(2024, 3, 10)
    retrained = retrain_flow(as_of=as_of, **kw)
    forecast = forecast_flow(as_of=as_of + timedelta(days=1), **kw)
    published = EmbeddedStore(Path(kw["home"]) / "warehouse").read(dataset="counts")
    lowest = published.select(pl.min_horizontal("y_hat", "y_hat_lo80").min()).item()  # (too few points for 95%)
    if y_min is None:
        assert lowest < 0
        assert NOTE in retrained["note"] and NOTE in forecast["note"]
        assert "declare y_min = 0 (--y-min 0" in forecast["note"]
    else:
        assert lowest >= 0 and NOTE not in retrained["note"] and NOTE not in forecast["note"]
