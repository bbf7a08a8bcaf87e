"""The failed-run hook names the as_of the run itself resolved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from flowcast import events
from flowcast.ops import hooks


def _fail(monkeypatch: pytest.MonkeyPatch, parameters: dict[str, Any], message: str = "boom") -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(events, "emit", lambda event, **kw: seen.update(kw, event=event))
    flow = SimpleNamespace(name="forecast")
    run = SimpleNamespace(id=uuid.uuid4(), flow_id=uuid.uuid4(), name="forecast sales 2024-03-01",
                          parameters=parameters, expected_start_time=datetime(2024, 3, 5, tzinfo=UTC))
    hooks.on_run_failure(flow, run, SimpleNamespace(message=message, name="Failed"))
    return seen


def test_date_only_as_of_is_the_sources_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    # a date alone is that day's midnight in the source's tz (flows.common.resolve_as_of), so the failed
    # run's event names the key the run had (05:00 UTC in New York), not UTC midnight
    source = {"name": "sales", "path": "sales.csv", "time_col": "ds", "target_col": "y", "freq": "1d",
              "tz": "America/New_York"}
    seen = _fail(monkeypatch, {"as_of": "2024-03-01", "source": source})
    assert seen["event"] == events.RUN_FAILED and seen["dataset"] == "sales"
    assert events.iso(seen["as_of"]) == "2024-03-01T05:00:00"
    # a timestamp without an offset still means UTC, one with an offset is that instant
    assert events.iso(_fail(monkeypatch, {"as_of": "2024-03-01T09:00", "source": source})["as_of"]) \
        == "2024-03-01T09:00:00"
    assert events.iso(_fail(monkeypatch, {"as_of": "2024-03-01T09:00+01:00", "source": source})["as_of"]) \
        == "2024-03-01T08:00:00"
    # a backfill's start, and no tz declared: UTC midnight; nothing usable: the scheduled start
    utc = dict(source, tz=None)
    assert events.iso(_fail(monkeypatch, {"start": "2024-03-01", "source": utc})["as_of"]) == "2024-03-01T00:00:00"
    assert events.iso(_fail(monkeypatch, {"as_of": "soon", "source": source})["as_of"]) == "2024-03-05T00:00:00"


def test_the_failed_run_event_names_a_url_without_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """redact48: the event (an automation's notification, a webhook's body) carried the failed state's message, a
    library's error naming a URL with its password and token among them."""
    message = "Flow run encountered an exception: ClientError: cannot read https://u:pw1@h/x.csv?token=tok2"
    seen = _fail(monkeypatch, {"dataset": "sales"}, message)
    assert seen["message"] == ("forecast run failed: Flow run encountered an exception: ClientError: cannot read "
                               "https://u:***@h/x.csv?token=***")


def test_the_failed_run_event_names_a_keyword_dsn_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """secrets52: the event hid a URL's secrets but carried a keyword DSN's password (`password=s3cret`)."""
    message = "Flow run encountered an exception: OperationalError: connection to host=db password=s3cret failed"
    seen = _fail(monkeypatch, {"dataset": "sales"}, message)
    assert seen["message"] == ("forecast run failed: Flow run encountered an exception: OperationalError: connection to "
                               "host=db password=*** failed")
