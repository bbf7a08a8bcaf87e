"""The flows' shared steps that need no Prefect run (flows.common): spans fitted to the data."""

from __future__ import annotations

from pathlib import Path

from flow_helpers import source_dict, write_series

from flowcast.config import load_settings
from flowcast.data.preprocess import prepare_data
from flowcast.flows.common import fitted_spans


def test_spans_are_fitted_for_networks_only_when_there_are_networks(tmp_path: Path):
    """Regression: a retrain without networks (model.cells = []) on 40 days a series said 'lookback 36 -> 12,
    so that the networks take part in the backtest (...)' in its notes and its decision artifact."""
    source = source_dict(write_series(tmp_path / "s.csv", n_series=2, n_months=30))
    with_nets = load_settings(home=tmp_path / "home", source=source, model={"cells": ["gru"]})
    td = prepare_data(with_nets).training
    fitted, notes = fitted_spans(with_nets, td)
    assert fitted.model.lookback < with_nets.model.lookback and "so that the networks take part" in " ".join(notes)
    without = load_settings(home=tmp_path / "home", source=source, model={"cells": []})
    assert fitted_spans(without, td) == (without, [])
