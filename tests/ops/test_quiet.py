"""Quiet schedules: when nothing new arrived since the last publish, nothing new is published."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from flowcast.ops.quiet import previous_as_of, unchanged_reason

PREV = datetime(2019, 9, 1)


def _published(ids=("a", "b"), first=datetime(2019, 10, 1), horizon=3, version="gru-v1") -> pl.DataFrame:
    rows = [(u, datetime(first.year, first.month + s, 1), s + 1, version) for u in ids for s in range(horizon)]
    return pl.DataFrame(rows, schema={"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "step": pl.Int32,
                                      "model_version": pl.Utf8}, orient="row")


def _last(**last) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": list(last), "last_ds": list(last.values())},
                        schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})


def _reason(previous, last, horizon=3, version="gru-v1", planned_rows=0):
    return unchanged_reason(previous, last, freq="1mo", horizon=horizon, model_version=version,
                            previous_as_of=PREV, dataset="tiny", planned_rows=planned_rows)


def test_same_next_periods_horizon_and_model_is_unchanged():
    reason = _reason(_published(), _last(a=datetime(2019, 9, 1), b=datetime(2019, 9, 1)))
    assert reason is not None and "no new observation of tiny since its last publish (as_of 2019-09-01" in reason
    assert "gru-v1" in reason and "2 series" in reason


def test_anything_new_publishes():
    same = {"a": datetime(2019, 9, 1), "b": datetime(2019, 9, 1)}
    assert _reason(_published(), _last(**{**same, "b": datetime(2019, 10, 1)})) is None  # a new observation
    assert _reason(_published(), _last(**same, c=datetime(2019, 9, 1))) is None  # a new series
    assert _reason(_published(), _last(a=same["a"])) is None  # a series gone
    assert _reason(_published(), _last(**same), version="gru-v2") is None  # another production model
    assert _reason(_published(), _last(**same), horizon=6) is None  # another horizon
    assert _reason(_published().clear(), _last(**same)) is None  # nothing was published
    assert _reason(_published(), _last(**same), planned_rows=6) is None  # planned covariates may have changed


def test_the_previous_publish_is_the_latest_strictly_before():
    published = [datetime(2019, 7, 1), datetime(2019, 9, 1), datetime(2019, 9, 5)]
    assert previous_as_of(published, datetime(2019, 9, 5)) == datetime(2019, 9, 1)  # not itself: a re-run replaces
    assert previous_as_of(published, datetime(2019, 9, 30)) == datetime(2019, 9, 5)
    assert previous_as_of(published, datetime(2019, 7, 1)) is None
