"""A run's realized accuracy reads each published as_of's receipt once (ops/accuracy.py `receipt_once`)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from tests.evaluation.eval_helpers import build_td

from flowcast.config import load_settings
from flowcast.ops.accuracy import score_and_record
from flowcast.store import EmbeddedStore

PUBLISHED = [datetime(2020, 1, 10), datetime(2020, 1, 20)]


class CountingStore:
    """A real embedded store that counts its `receipt_of` calls per as_of."""

    def __init__(self, store: EmbeddedStore):
        self.store, self.reads = store, Counter[datetime]()

    def receipt_of(self, dataset: str, as_of: datetime) -> dict[str, str]:
        self.reads[as_of] += 1
        return self.store.receipt_of(dataset, as_of)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_scoring_reads_each_receipt_once_per_run(_isolated_home):
    """fixD51: a run read each as_of's receipt up to three times (the horizon it was published with, the training
    as_of of a version the registry no longer has, the lookahead its publish recorded; again to flag the rows stored
    without one): on PostgreSQL a connection and ~4 queries each."""
    settings = load_settings(home=_isolated_home)
    td = build_td({"a": [float(i % 7) for i in range(40)], "b": [float(i % 5) for i in range(40)]}, horizon=3,
                  season_length=7)
    store = CountingStore(EmbeddedStore(settings.warehouse_dir))
    for a in PUBLISHED:  # by a version gone from the registry, whose publishes recorded no lookahead
        fc = pl.DataFrame({"unique_id": [u for u in ("a", "b") for _ in range(3)],
                           "ds": [a + timedelta(days=s) for _ in range(2) for s in (1, 2, 3)],
                           "step": [1, 2, 3] * 2, "y_hat": 1.0}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="tiny", as_of=a, model="theta", model_version="theta-v1", run_id="r",
                      created_at=a)
    for run, at in enumerate([datetime(2020, 1, 22), datetime(2020, 2, 1)]):  # the second run reads the horizons
        store.reads.clear()
        outcome = score_and_record(settings, dataset="tiny", as_of=at, td=td, run_id=f"run-{run}", store=store)
        assert outcome.realized is not None and set(outcome.realized["as_of"].to_list()) == set(PUBLISHED)
        assert store.reads == dict.fromkeys(PUBLISHED, 1), (at, store.reads)
