"""The forecast plot's actuals (flows.common.plot_context): the rows observed after the run's as_of."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from flowcast.config import SourceConfig
from flowcast.data.sources import ingest
from flowcast.flows.common import LoadedData, plot_context


@pytest.mark.parametrize(("as_of", "actuals"), [
    # 1 March at -05:00 begins at 05:00 UTC: not seen by a run at midnight UTC, it is an actual after as_of
    (datetime(2024, 3, 1, tzinfo=UTC), [("m5", datetime(2024, 3, d)) for d in (1, 2, 3)]
     + [("p5", datetime(2024, 3, d)) for d in (2, 3)]),
    # 2 March at +05:00 began at 19:00 UTC on 1 March: seen by a run at 20:00, no actual after it
    (datetime(2024, 3, 1, 20, tzinfo=UTC), [("m5", datetime(2024, 3, 2)), ("m5", datetime(2024, 3, 3)),
                                            ("p5", datetime(2024, 3, 3))]),
])
def test_the_plots_actuals_are_the_rows_the_run_did_not_see(tmp_path, as_of, actuals):
    """pit21: the plot's actuals after as_of were the rows whose date was after as_of's wall time, where the run cuts a
    daily time with an offset by the instant it names: the -05:00 day of 1 March, not seen by a run at midnight UTC,
    was neither history nor actual (no point drawn), and a +05:00 day the run had seen was drawn as an actual too."""
    path = tmp_path / "x.csv"
    path.write_text("date,id,val\n" + "".join(f"2024-03-0{d}T00:00:00{o},{i},{d}\n" for d in (1, 2, 3)
                                              for o, i in (("-05:00", "m5"), ("+05:00", "p5"))))
    src = SourceConfig(name="x", path=str(path), id_cols=["id"], time_col="date", target_col="val", freq="1d")
    data = LoadedData(source=src, fingerprint="", td=None, summary=None, report=None, rows_in=0, rows_valid=0,
                      rows_quarantined=0, horizon=2, ingested=ingest(src, as_of))
    forecasts = pl.DataFrame({"unique_id": ["m5", "m5", "p5", "p5"],
                              "ds": [datetime(2024, 3, d) for d in (1, 2, 2, 3)], "y_hat": [0.0] * 4})
    _, got = plot_context(data, forecasts)
    assert got is not None and sorted(got.select("unique_id", "ds").rows()) == actuals
