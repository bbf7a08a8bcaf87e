"""The publish task on a full disk: one attempt, the previous forecasts intact (a full disk is no transient I/O
error to retry); an I/O error that passes is still retried and publishes once."""
from __future__ import annotations

import errno
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from prefect import flow

from flowcast.config import load_settings
from flowcast.errors import PublishError
from flowcast.flows import tasks
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")
AS_OF, OLD = datetime(2024, 3, 1), datetime(2024, 2, 1)


def _forecasts(level: float) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": ["a", "a", "b", "b"], "ds": [datetime(2024, 3, d) for d in (2, 3, 2, 3)],
                         "step": pl.Series([1, 2, 1, 2], dtype=pl.Int32), "y_hat": [level, level + 1, level + 2, 3.0]})


def _publish(settings, level: float, as_of: datetime = AS_OF):
    @flow(name="publish-full-disk")
    def publish_it():
        return tasks.publish_task(settings, _forecasts(level), dataset="d", as_of=as_of, model="naive",
                                  model_version=None, run_id=f"run-{level}", created_at=as_of)

    return publish_it()


@pytest.mark.parametrize(("error", "attempts", "published"), [
    (OSError(errno.ENOSPC, "No space left on device"), 1, False),
    (OSError(errno.EFBIG, "File too large"), 1, False),  # ulimit -f
    (OSError(errno.EIO, "Input/output error"), 2, True),  # once, then the retry writes it
], ids=["ENOSPC", "EFBIG", "EIO-once"])
def test_a_full_disk_fails_the_publish_at_once(tmp_path, monkeypatch, error, attempts, published):
    """faults25: a publish on a full disk was written 4 times (3 retries with backoff, ~14 s) before it failed
    with the same error; it fails at once now, naming the disk, and the key's previous forecasts stay current."""
    settings = load_settings(home=str(tmp_path / "home"))
    _publish(settings, 10.0)  # the forecasts a failed publish must leave in place
    _publish(settings, 20.0, as_of=OLD)  # another key, untouched
    monkeypatch.setattr(tasks, "publish_task", tasks.publish_task.with_options(retry_delay_seconds=0))
    write, calls = pq.write_table, []

    def failing(*a, **kw):
        calls.append(1)
        if len(calls) == 1 or error.errno != errno.EIO:
            raise error
        return write(*a, **kw)

    monkeypatch.setattr(pq, "write_table", failing)
    if published:
        _publish(settings, 30.0)
    else:
        with pytest.raises(PublishError, match=r"could not write forecasts of dataset d .*\[E(NOSPC|FBIG)\]"):
            _publish(settings, 30.0)
    assert len(calls) == attempts
    store = EmbeddedStore(Path(settings.home) / "warehouse")
    assert store.read(dataset="d", as_of=AS_OF)["y_hat"].to_list()[0] == (30.0 if published else 10.0)
    assert store.read(dataset="d", as_of=OLD)["y_hat"].to_list()[0] == 20.0
    assert store.verify("d")[1] == []
    assert not [p for p in (Path(settings.home) / "warehouse").rglob("*") if p.is_file() and p.name.endswith(".tmp")]
