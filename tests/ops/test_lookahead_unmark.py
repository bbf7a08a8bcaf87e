"""A run's realized accuracy clears the `lookahead` mark of stored rows that their publish's receipt contradicts
(ops/accuracy.py `unmark_recorded_honest`); the store backends each: tests/store/test_backends.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from tests.evaluation.eval_helpers import build_td

from flowcast.config import load_settings
from flowcast.ops.accuracy import score_and_record
from flowcast.store import EmbeddedStore

HONEST, AHEAD = datetime(2020, 1, 10), datetime(2020, 1, 20)  # published without lookahead, and with it


class Said:
    """A run logger that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    warning = info


def test_rows_marked_lookahead_before_their_receipt_was_read_are_unmarked_by_the_next_scoring(_isolated_home):
    """fixC52: rows stored marked `lookahead` (a flowcast before lookahead51 marked them from the training run's
    as_of) kept that mark once their publish's receipt said the model did not see past the as_of: a re-scoring that
    found no more points left the rows as they were, and the verdict left that as_of out. The next scoring clears
    the mark (said), once; a mark the receipt confirms stays."""
    settings = load_settings(home=_isolated_home)
    td = build_td({"a": [float(i % 7) for i in range(40)], "b": [float(i % 5) for i in range(40)]}, horizon=3,
                  season_length=7)
    store = EmbeddedStore(settings.warehouse_dir)
    for a in (HONEST, AHEAD):  # by a version trained on data to 2020-02-01 (the registry no longer has it)
        fc = pl.DataFrame({"unique_id": [u for u in ("a", "b") for _ in range(3)],
                           "ds": [a + timedelta(days=s) for _ in range(2) for s in (1, 2, 3)],
                           "step": [1, 2, 3] * 2, "y_hat": 1.0}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="tiny", as_of=a, model="theta", model_version="theta-v1", run_id="r",
                      created_at=a, trained_as_of=datetime(2020, 2, 1), lookahead=a == AHEAD)
    at = datetime(2020, 1, 25)
    first = score_and_record(settings, dataset="tiny", as_of=at, td=td, run_id="run-0", store=store)
    assert first.realized is not None
    assert first.realized.group_by("as_of").agg(pl.col("lookahead").unique()).sort("as_of").rows() == [
        (HONEST, [False]), (AHEAD, [True])]  # what each receipt records
    stored = store.read_realized("tiny")
    store.write_realized("tiny", stored.with_columns(lookahead=pl.lit(True)))  # as an older flowcast marked them

    said = Said()
    second = score_and_record(settings, dataset="tiny", as_of=at, td=td, run_id="run-1", store=store, log=said)
    assert second.rows_written == 0  # nothing rescored: the rows are the ones stored
    back = store.read_realized("tiny")
    assert back.group_by("as_of").agg(pl.col("lookahead").unique()).sort("as_of").rows() == [
        (HONEST, [False]), (AHEAD, [True])]
    assert back.drop("lookahead").equals(stored.drop("lookahead"))
    assert second.decay is not None and second.decay.lookahead == 1  # AHEAD alone left out of the verdict
    assert any("tiny: as_of 2020-01-10 no longer marked lookahead: its publish records that the model did not see "
               "past it" in line for line in said.lines), said.lines

    again = Said()
    score_and_record(settings, dataset="tiny", as_of=at, td=td, run_id="run-2", store=store, log=again)
    assert store.read_realized("tiny").equals(back)
    assert not any("no longer marked lookahead" in line for line in again.lines), again.lines
