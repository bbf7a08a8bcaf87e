"""`flowcast models list`: the registered versions as a person reads them."""

from __future__ import annotations

from rich.console import Console

from flowcast.cli.store import _versions_tables


def test_versions_stay_whole_in_80_columns_one_table_per_dataset():
    """Regression: `flowcast models list` folded every column of one eight-column table to fit 80 columns:
    'statistic|al', 'hybrid-v1|2', an as_of cut to '2024-04-1|9 00:00:00+|00' (the offset half removed) and
    'seasonal_n|aive'. One table per dataset now (its name the title), every version, kind, as_of and score
    whole; what each is wraps by words."""
    desc = "statistical: theta; series it cannot forecast: damped, seasonal_naive, naive; 80/95% conformal intervals"
    rows = [
        {"production": True, "version": "theta-v1", "dataset": "us_employment", "kind": "statistical",
         "as_of": "2024-04-19T06:30:00+00:00", "mase": 0.71653, "smape": 30.7076, "description": desc},
        {"production": False, "version": "hybrid-v12", "dataset": "us_employment", "kind": "hybrid",
         "as_of": "2024-04-19T00:00:00+00:00", "mase": 0.7, "smape": 31.0, "description": "hybrid: gru + theta"},
        {"production": True, "version": "gru-v3", "dataset": "energy", "kind": "network",
         "as_of": None, "mase": None, "smape": None, "description": "network: gru"},
    ]
    console = Console(width=80, record=True)
    for table in _versions_tables(rows):
        console.print(table)
    text = console.export_text()
    assert "…" not in text, text
    for whole in ("dataset us_employment", "dataset energy", "statistical", "hybrid-v12", "2024-04-19 06:30",
                  "2024-04-19 ", "0.7165", "30.71", "seasonal_naive,"):
        assert whole in text, (whole, text)
    assert "+00" not in text
