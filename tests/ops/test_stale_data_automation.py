"""flowcast's automations evaluated by a real `prefect server start` on loopback, notifying a local
HTTP receiver (the whole round of them through real runs: tests/flows/test_alerts_server.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prefect_server import http_receiver, prefect_server

from flowcast.config import load_settings, with_overrides
from flowcast.ops import automations as auto

SRC = str(Path(__file__).resolve().parents[2] / "src")

EMIT = """
import sys
from datetime import datetime
from flowcast import events
for spec in sys.argv[1:]:
    kind, dataset, as_of = spec.split(",")
    events.emit(getattr(events, kind), dataset=dataset, as_of=datetime.fromisoformat(as_of),
                message=f"{kind} {dataset} {as_of}")
"""


def _emit(srv, *specs: str) -> None:
    """Send flowcast events from another process, as runs do (Prefect drains its events at exit)."""
    p = subprocess.run([sys.executable, "-c", EMIT, *specs], env={**srv.env, "PYTHONPATH": SRC},
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.slow
def test_stale_data_is_notified_once_per_dataset_not_once_per_run(tmp_path):
    """A source that stops being updated makes every scheduled run emit flowcast.data.stale, and a
    forecast run that finds nothing new emits flowcast.forecast.unchanged, which keeps "forecast not
    published" quiet: left running on a dead feed (a day of 2-minute forecast runs on a server), nobody
    was ever told. "flowcast: data stale" notifies the first stale run of each dataset, then stays quiet
    for alerts.stale_every."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with http_receiver() as rx, prefect_server(tmp_path / "server") as srv:
        settings = with_overrides(load_settings(None, home=str(tmp_path / "home")), alerts={"webhook_url": rx.url})
        with temporary_settings({PREFECT_API_URL: srv.api}):
            applied = {a.name: a.action for a in auto.apply(settings)}
        assert applied[auto.STALE_DATA] == "created"

        def got(subject: str) -> list[dict]:
            return [r for r in rx.received if r.get("subject", "") == subject]

        # three scheduled runs of `tiny` on stale data, one of `other`
        _emit(srv, "STALE,tiny,2019-07-01", "STALE,tiny,2019-08-01", "STALE,other,2019-08-01", "STALE,tiny,2019-09-01")
        srv.wait(lambda: got("flowcast: data stale for tiny") and got("flowcast: data stale for other"), 180,
                 f"a stale-data notification per dataset; got {rx.received}")
        # a later event of another automation: once it is notified, the stale events before it were evaluated
        _emit(srv, "QUALITY_FAILED,tiny,2019-10-01T06:30:00")
        srv.wait(lambda: got("flowcast: data quality failed for tiny"), 180, f"the data-quality notification; "
                 f"got {rx.received}")
        [tiny] = got("flowcast: data stale for tiny")
        # the server may evaluate the three events of one emitter in any order: the notified one is one of them
        # the as_of as every other message writes it (inst43b: 'as_of 2019-07-01T00:00:00', the event's ISO label)
        assert any(f"Dataset tiny, as_of {d}: STALE tiny {d}" in tiny["body"]
                   for d in ("2019-07-01", "2019-08-01", "2019-09-01")), tiny["body"]
        [quality] = got("flowcast: data quality failed for tiny")
        assert quality["body"] == "Dataset tiny, as_of 2019-10-01 06:30 UTC: QUALITY_FAILED tiny 2019-10-01T06:30:00", \
            quality["body"]
        assert "at most once per 24h" in tiny["body"]
        assert len(got("flowcast: data stale for other")) == 1
