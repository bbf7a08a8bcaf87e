"""Accuracy notifications told once: a verdict two workers reach together, a verdict whose run stopped
between storing it and sending its event (flowcast.ops.accuracy.announce). A failed backfill date told
once: tests/flows/test_backfill.py."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
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


@pytest.mark.parametrize(("metric", "extra"), [
    ("mase", {}),  # MASE-ranked data: the payload of before, and the metric it was judged on
    # ranked on RMSSE (data classed intermittent): with seasonal naive's RMSSE, what the verdict also compares with
    ("rmsse", {"realized_rmsse": 1.3, "promised_rmsse": 0.9, "snaive_rmsse": 1.1}),
    # a window of MASE- and RMSSE-ranked versions, each judged on its own: the RMSSE part's figures too
    ("mase+rmsse", {"realized_rmsse": 1.3, "promised_rmsse": 0.9, "snaive_rmsse": 1.1}),
])
def test_the_accuracy_events_name_the_metric_the_verdict_was_judged_on(tmp_path, monkeypatch, metric, extra):
    sent = _sent(monkeypatch)
    settings = load_settings(home=tmp_path)
    judged = {"metric": metric, **extra}
    for degraded in (True, False):  # degraded, then recovered
        announce(settings, "tiny", Decay(dataset="tiny", degraded=degraded, reasons=["r"], points=40,
                                         realized_mase=1.2, promised_mase=1.0, **judged),
                 as_of=datetime(2019, 1 + int(not degraded), 1), run_id="r")
    assert [e["event"] for e in sent] == [events.DEGRADED, events.RECOVERED]
    for e in sent:
        payload = e["payload"]
        assert payload["realized_mase"] == 1.2 and payload["promised_mase"] == 1.0
        assert {k: payload.get(k) for k in ("metric", "realized_rmsse", "promised_rmsse", "snaive_rmsse")} == {
            "metric": metric, **{k: extra.get(k) for k in ("realized_rmsse", "promised_rmsse", "snaive_rmsse")}}
        assert ("realized_rmsse" in payload) is ("rmsse" in metric)
    stored = read_status(tmp_path, "tiny")
    assert stored is not None and stored.metric == metric and stored.promised_rmsse == extra.get("promised_rmsse")


def test_a_crashed_backfill_date_is_told_by_its_backfill_not_by_its_own_crash():
    """Regression: a backfill date that crashed (its worker's process killed, its machine gone) was told twice:
    'flowcast: run failed' fired on Prefect's own prefect.flow-run.Crashed of the date's run, then on the
    backfill's flowcast.run.failed naming the date (or, in one process, on the backfill's own crash). A failed
    date's run already left it to its backfill (on_run_failure); the automation now leaves a backfill date's
    crash to it too, and still fires on any other run's crash and on flowcast's failure events."""
    from uuid import uuid4

    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    from flowcast.ops import automations as auto

    [run_failed] = [a for a in auto.desired(load_settings(), uuid4()) if a.name == auto.RUN_FAILED]
    trigger = EventTrigger.model_validate(run_failed.trigger.model_dump(mode="json"))

    def crashed(run_name: str, flow: str, tags: tuple[str, ...] = ("flowcast",)) -> ReceivedEvent:
        return ReceivedEvent(
            event="prefect.flow-run.Crashed", occurred=datetime(2026, 1, 1), id=uuid4(),
            resource={"prefect.resource.id": f"prefect.flow-run.{uuid4()}", "prefect.resource.name": run_name,
                      "prefect.state-name": "Crashed", "prefect.state-type": "CRASHED"},
            related=[{"prefect.resource.id": f"prefect.flow.{uuid4()}", "prefect.resource.role": "flow",
                      "prefect.resource.name": flow},
                     *[{"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"} for t in tags]])

    assert not trigger.covers(crashed("forecast emp 2019-01-01 (backfill)", "forecast", ("flowcast", "backfill")))
    assert not trigger.covers(crashed("retrain emp 2019-01-01 (backfill) (attempt 2)", "retrain",
                                      ("flowcast", "backfill")))
    assert trigger.covers(crashed("forecast emp 2019-01-01", "forecast"))  # a scheduled run's crash
    assert trigger.covers(crashed("backfill emp 2019-01-01..2019-06-01", "backfill"))  # the backfill's own
    assert not trigger.covers(crashed("some other flow", "etl"))  # not flowcast's
    failed = events.build(events.RUN_FAILED, dataset="emp", as_of=datetime(2019, 1, 1),
                          message="backfill run failed: 1 of 5 backfill dates failed",
                          related=[{"prefect.resource.id": f"prefect.flow.{uuid4()}",
                                    "prefect.resource.role": "flow", "prefect.resource.name": "backfill"}])
    assert trigger.covers(ReceivedEvent(occurred=datetime(2026, 1, 1), id=uuid4(), **failed))


@pytest.mark.parametrize(("run_name", "said"), [
    ("forecast emp 2019-01-01", ("Dataset emp, as_of 2019-01-01: forecast run failed: boom "
                                 "(flow run forecast emp 2019-01-01)")),
    (None, "Dataset emp, as_of 2019-01-01: forecast run refused before it started: emp.csv: no rows"),
    (None, "Dataset emp: retrain run refused before it started: emp.csv: no rows"),  # no --as-of given
])
def test_the_run_failed_notification_names_a_flow_run_only_where_there_was_one(run_name, said):
    """alerts21: a refusal before Prefect sends `flowcast.run.failed` with no flow run (none started); the *run
    failed* notification's body ended '(flow run )' for it, and 'as_of : ' without an --as-of. It names the flow run
    and the as_of where the event has them; the data-quality notification the as_of alike."""
    from types import SimpleNamespace
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.user_templates import render_user_template_sync

    from flowcast.ops import automations as auto

    shipped = {a.name: a for a in auto.desired(load_settings(), uuid4())}
    run_failed, quality_failed = shipped[auto.RUN_FAILED], shipped[auto.QUALITY_FAILED]
    as_of = datetime(2019, 1, 1) if "as_of" in said else None
    message = said.split(": ", 1)[1].split(" (flow run ")[0]
    for event_name, automation in ((events.RUN_FAILED, run_failed), (events.QUALITY_FAILED, quality_failed)):
        event = ReceivedEvent(occurred=datetime(2026, 1, 1), id=uuid4(), **events.build(
            event_name, dataset="emp", as_of=as_of, message=message))
        context = {"event": event, "flow_run": SimpleNamespace(name=run_name) if run_name else None}
        body = render_user_template_sync(automation.actions[0].body, context)
        assert body == (said if event_name == events.RUN_FAILED else said.split(" (flow run ")[0]), body


@pytest.mark.parametrize(("as_of", "occurred", "said"), [
    (datetime(2019, 1, 1), datetime(2026, 12, 5, 3, 0, 42, 123456, tzinfo=UTC),
     "since as_of 2019-01-01 (published 2026-12-05 03:00:42 UTC)"),
    (datetime(2024, 3, 10, 6), datetime(2026, 12, 5, 3, 0, tzinfo=UTC),
     "since as_of 2024-03-10 06:00 UTC (published 2026-12-05 03:00 UTC)"),
])
def test_the_not_published_notification_writes_its_times_as_every_message_does(as_of, occurred, said):
    """inst43b: the *forecast not published* notification read 'since as_of 2019-01-01T00:00:00 (published
    2026-12-05 03:00:42.123456+00:00)', the event's ISO label and Prefect's datetime, where every other message
    writes an instant by `timekeys.utc_text`; the other notifications' as_of alike (the ISO label stays, for
    triggers)."""
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.user_templates import render_user_template_sync

    from flowcast.ops import automations as auto

    shipped = {a.name: a for a in auto.desired(load_settings(), uuid4())}
    event = ReceivedEvent(occurred=occurred, id=uuid4(), **events.build(
        events.PUBLISHED, dataset="emp", as_of=as_of, message="published"))
    assert event.resource["flowcast.as_of"] == as_of.isoformat()
    body = render_user_template_sync(shipped[auto.NOT_PUBLISHED].actions[0].body, {"event": event})
    assert said in body, body
    degraded = ReceivedEvent(occurred=occurred, id=uuid4(), **events.build(
        events.DEGRADED, dataset="emp", as_of=as_of, message="realized MASE 2.0"))
    body = render_user_template_sync(shipped[auto.DEGRADED].actions[0].body, {"event": degraded})
    assert body == f"Dataset emp, as_of {said.split('as_of ')[1].split(' (')[0]}: realized MASE 2.0", body


@pytest.mark.parametrize("damage", [b'{"dataset": "tiny", "decay": {"data', b"", b'{"dataset": "tiny"}'])
def test_a_stored_verdict_that_cannot_be_read_is_named(tmp_path, monkeypatch, damage):
    """Regression (faults17): a verdict file cut short (a full disk, a bad copy) was taken for none stored
    without a word: the run took the dataset for never judged (a recovery from 'degraded' never told) and
    `flowcast accuracy` showed the verdict 'unknown'. Both name the file now."""
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.ops.accuracy import status_path

    _sent(monkeypatch)
    settings = load_settings(home=tmp_path)
    announce(settings, "tiny", _verdict(True), as_of=datetime(2019, 1, 1), run_id="r0")
    path = status_path(tmp_path, "tiny")
    path.write_bytes(damage)
    said: list[str] = []
    previous, _ = announce(settings, "tiny", _verdict(False), as_of=datetime(2019, 2, 1), run_id="r1",
                           warn=said.append)
    assert previous is None and len(said) == 1 and str(path) in said[0] and "writes it again" in said[0]
    assert read_status(tmp_path, "tiny") is not None  # written again, whole
    path.write_bytes(damage)
    res = CliRunner().invoke(app, ["accuracy", "--dataset", "tiny", "--home", str(tmp_path)], terminal_width=400)
    flat = "".join(res.output.split())  # the console wraps at 80 columns, in the path too
    assert res.exit_code == 0 and f"warning:theaccuracyverdict{path}cannotberead" in flat, res.output


def test_a_backfill_of_an_older_date_leaves_the_newer_run_s_verdict(tmp_path, monkeypatch):
    """Regression (faults43): `flowcast backfill` of 2019-03..05 run after the forecast of 2019-07-01 stored its
    verdict with checked_as_of 2019-05-01 over the newer one (a verdict going back in time, and `scored_by` then
    took the 2019-07-01 run for one that never scored). A run of an earlier as_of leaves it and sends no event; a
    re-run of the same as_of, or a later one, replaces it."""
    sent = _sent(monkeypatch)
    settings = load_settings(home=tmp_path)
    announce(settings, "tiny", _verdict(False), as_of=datetime(2019, 7, 1), run_id="r0")
    previous, event = announce(settings, "tiny", _verdict(True), as_of=datetime(2019, 5, 1), run_id="r1")
    assert previous is not None and not previous.degraded and event is None and sent == []
    stored = json.loads((tmp_path / "accuracy" / "tiny.json").read_text())
    assert stored["checked_as_of"] == "2019-07-01T00:00:00" and stored["run_id"] == "r0"
    _, event = announce(settings, "tiny", _verdict(True), as_of=datetime(2019, 7, 1), run_id="r2")
    assert event == events.DEGRADED and json.loads((tmp_path / "accuracy" / "tiny.json").read_text())["run_id"] == "r2"

