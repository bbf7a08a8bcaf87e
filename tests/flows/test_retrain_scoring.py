"""The retrain's scoring stage: what the production model is scored on."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from flowcast.config import SourceConfig
from flowcast.data.sources import ingest
from flowcast.flows.retrain_scoring import trained_until


@pytest.mark.parametrize(("freq", "tz", "as_of"), [
    ("1d", "Australia/Melbourne", "2020-01-10T20:00:00+00:00"),  # 07:00 on 11 January there
    ("1d", "America/New_York", "2020-01-11T03:00:00+00:00"),  # 22:00 on 10 January there
    ("1d", None, "2020-01-10T20:00:00+00:00"),
    ("1mo", "Australia/Melbourne", "2020-01-31T20:00:00+00:00"),  # already February there
    ("1h", "Australia/Melbourne", "2020-01-10T20:00:00+00:00"),  # hourly ds are UTC instants
])
def test_the_production_models_data_ended_where_its_runs_ingestion_cut_it(tmp_path, freq, tz, as_of):
    """Regression: the production model counted as trained until its as_of in naive UTC, while the
    data it trained on was cut on the source's ds axis (local dates): with a source east of UTC its
    frozen weights were scored on a day (or month) they had been trained on, and with one west of
    UTC a window they had never seen was not scored."""
    hourly = freq == "1h"
    days = pl.datetime_range(datetime(2019, 12, 1), datetime(2020, 3, 1), "1h" if hourly else "1d", eager=True)
    pl.DataFrame({"id": "a", "t": days, "y": 1.0}).write_csv(tmp_path / "d.csv")
    source = SourceConfig(name="t", path=str(tmp_path / "d.csv"), id_cols=["id"], time_col="t", target_col="y",
                          freq=freq, tz=tz)
    seen = ingest(source, as_of).frame.select(pl.col("ds").max()).collect().item()
    until = trained_until(as_of, freq, tz)
    assert until is not None and seen <= until  # nothing it trained on is after it
    later = {"1d": pl.duration(days=1), "1mo": None, "1h": pl.duration(hours=1)}[freq]
    nxt = pl.select(pl.lit(seen).dt.offset_by("1mo") if later is None else pl.lit(seen) + later).item()
    assert nxt > until  # the next period's actuals are after it
    assert trained_until(None, freq, tz) is None
