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


def test_a_given_lookback_no_series_can_hold_is_said_when_no_span_changes(tmp_path: Path):
    """review21: `fit_network_spans` says when a lookback given explicitly leaves no series long enough for a
    network ('model.lookback = 500 is set explicitly, and no series has ...: no network can train'), but
    `fitted_spans` returned no notes whenever the spans did not change, which is the case when the validation
    span is given too (or already 0): the run trained no network and said nothing of why."""
    source = source_dict(write_series(tmp_path / "s.csv", n_series=2, n_months=30))
    given = load_settings(home=tmp_path / "home", source=source,
                          model={"cells": ["gru"], "lookback": 500}, preprocess={"val_size": 3})
    td = prepare_data(given).training
    fitted, notes = fitted_spans(given, td)
    assert (fitted.model.lookback, fitted.preprocess.val_size) == (500, 3)
    assert len(notes) == 1 and notes[0].startswith("model.lookback = 500 is set explicitly") \
        and "no network can train" in notes[0], notes
