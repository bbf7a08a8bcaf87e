"""Accuracy notifications told once: a verdict two workers reach together, a verdict whose run stopped
between storing it and sending its event (flowcast.ops.accuracy.announce). A failed backfill date told
once: tests/flows/test_backfill.py."""

from __future__ import annotations

import shutil
from datetime import datetime
from typing import Any

import pytest

from flowcast import events
from flowcast.config import load_settings
from flowcast.evaluation.realized import Decay
from flowcast.ops.accuracy import announce, read_status


class Killed(BaseException):
    """The process stopped (a SIGKILL) as the event was being sent."""


def _sent(monkeypatch) -> list[dict[str, Any]]:
    import prefect.events

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kw: sent.append(kw) or kw)
    return sent


def _verdict(degraded: bool) -> Decay:
    return Decay(dataset="tiny", degraded=degraded, reasons=["realized MASE 2.0 exceeds the backtest's 1.0"
                                                             if degraded else "healthy"], points=40)


def test_two_workers_that_both_see_the_verdict_turn_degraded_send_one_event(tmp_path, monkeypatch):
    """Regression: two backfill workers that both read the stored 'healthy' verdict, then each judged 'degraded',
    each sent flowcast.accuracy.degraded (two notifications). Both send the event keyed by the verdict they
    change: one id, one event to Prefect."""
    sent = _sent(monkeypatch)
    a, b = tmp_path / "a", tmp_path / "b"
    announce(load_settings(home=a), "tiny", _verdict(False), as_of=datetime(2019, 1, 1), run_id="r0")
    shutil.copytree(a, b)  # both workers read the same stored verdict (a shared home, read before either wrote)
    announce(load_settings(home=a), "tiny", _verdict(True), as_of=datetime(2019, 2, 1), run_id="r1")
    announce(load_settings(home=b), "tiny", _verdict(True), as_of=datetime(2019, 3, 1), run_id="r2")
    degraded = [e for e in sent if e["event"] == events.DEGRADED]
    assert len(degraded) == 2 and degraded[0]["id"] == degraded[1]["id"], degraded
    # a later change (recovered, then degraded again) is another event
    announce(load_settings(home=a), "tiny", _verdict(False), as_of=datetime(2019, 4, 1), run_id="r3")
    announce(load_settings(home=a), "tiny", _verdict(True), as_of=datetime(2019, 5, 1), run_id="r4")
    ids = [e["id"] for e in sent if e["event"] in (events.DEGRADED, events.RECOVERED)]
    assert len(ids) == 4 and len(set(ids)) == 3, ids


def test_a_run_stopped_before_its_degraded_event_was_sent_is_told_by_the_next_run(tmp_path, monkeypatch):
    """Regression: the verdict was stored first and its event sent after: a run killed in between left
    'degraded' stored and never told (the next run read 'degraded' already and sent nothing). The event goes
    first; the next run sends it (the same id: told once even when the first had gone out)."""
    import prefect.events

    settings = load_settings(home=tmp_path)
    announce(settings, "tiny", _verdict(False), as_of=datetime(2019, 1, 1), run_id="r0")

    def killed(**kw: Any) -> None:
        raise Killed

    monkeypatch.setattr(prefect.events, "emit_event", killed)
    with pytest.raises(Killed):
        announce(settings, "tiny", _verdict(True), as_of=datetime(2019, 2, 1), run_id="r1")
    stored = read_status(tmp_path, "tiny")
    assert stored is not None and not stored.degraded
    sent = _sent(monkeypatch)
    _, event = announce(settings, "tiny", _verdict(True), as_of=datetime(2019, 3, 1), run_id="r2")
    assert event == events.DEGRADED and [e["event"] for e in sent] == [events.DEGRADED]
