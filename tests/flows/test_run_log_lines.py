"""The flows' shared run-log lines (flowcast.flows.common), without Prefect."""

from __future__ import annotations

import polars as pl

from flowcast.flows.common import excluded_line


def test_the_series_left_out_are_named_with_e_g_before_a_sample_only():
    """newuser50a: one series of no value in any row was logged '1 series left out of training and forecasting, e.g.
    dead: no observed values (every y is empty)', a sample of one; ids are quoted as every list of series quotes them
    ('north, east' is one series), and more than 3 are a sample."""
    one = pl.DataFrame({"unique_id": ["north, east"], "reason": ["no observed values (every y is empty)"]})
    assert excluded_line(one) == ("1 series left out of training and forecasting: 'north, east': no observed values "
                                  "(every y is empty)")
    four = pl.DataFrame({"unique_id": ["a", "b", "c", "d"], "reason": ["r"] * 4})
    assert excluded_line(four) == "4 series left out of training and forecasting, e.g. a: r; b: r; c: r"
