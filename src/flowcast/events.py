"""Prefect events for what an operator must know, each naming the dataset and the as_of.

Every event's resource is the dataset, `flowcast.dataset.<name>`, with the labels
`flowcast.dataset`, `flowcast.as_of` (ISO, UTC: what a trigger matches), `flowcast.as_of_text` (the same instant as
a person reads it, `timekeys.utc_text`: '2019-01-01', '2024-03-10 06:00 UTC'; what notifications quote) and
`flowcast.backfill` ("true" when a backfill's
run recomputing a past date sent it, or a run of an as_of earlier than one the dataset already
published, else "false": the automations about the dataset's current date, "forecast not
published" and "data stale", leave those out); its payload carries the figures
and a one-sentence `message` that notifications quote. Inside a flow run Prefect attaches the run,
its flow, deployment and tags as related resources, so an event links back to its run in the
UI. Automations (`flowcast.ops.automations`) turn these events into notifications.

| event                          | when                                                         |
| ------------------------------ | ------------------------------------------------------------ |
| flowcast.data-quality.failed   | a run's quarantined share crossed validation.quarantine_threshold (or no valid row); also
|                                | a command's refusal of an all-quarantined file before its run (`cli.pipeline`) |
| flowcast.data.stale            | every forecast period of a run lay before its as_of: the source stopped being updated |
| flowcast.run.failed            | a retrain, forecast, backfill or tune run failed or crashed; also a command's refusal
|                                | of its run before Prefect started (`cli.pipeline._announce_run_refused`)  |
| flowcast.forecast.published    | forecasts of a (dataset, as_of) were published                 |
| flowcast.forecast.unchanged    | the forecast flow found no new observation and published nothing new |
| flowcast.accuracy.degraded     | realized accuracy turned degraded (sent on the change, not every run) |
| flowcast.accuracy.recovered    | a degraded dataset is healthy again                            |

`emit` sends nothing when no Prefect API is configured (Prefect's own rule) and never fails
the run because the event could not be sent. `emit` queues the event on Prefect's events worker, which
sends it in the background; `flush` waits until it has gone (the `flowcast` command calls it before it
exits, `cli.app.FlowcastGroup`).
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from flowcast.timekeys import utc_text

QUALITY_FAILED = "flowcast.data-quality.failed"
STALE = "flowcast.data.stale"
RUN_FAILED = "flowcast.run.failed"
PUBLISHED = "flowcast.forecast.published"
UNCHANGED = "flowcast.forecast.unchanged"
DEGRADED = "flowcast.accuracy.degraded"
RECOVERED = "flowcast.accuracy.recovered"
ALL = (QUALITY_FAILED, STALE, RUN_FAILED, PUBLISHED, UNCHANGED, DEGRADED, RECOVERED)

# event ids of keyed events (`emit(key=...)`): uuid5 in this namespace of 'event|dataset|key'
EVENT_IDS = uuid.UUID("5b0c2f4e-3f6a-4a43-9a61-0c1f6f1c2d17")
RESOURCE_PREFIX = "flowcast.dataset."
BACKFILL_LABEL = "flowcast.backfill"
AS_OF_TEXT_LABEL = "flowcast.as_of_text"

log = logging.getLogger(__name__)


def iso(as_of: datetime | None) -> str:
    """as_of as an ISO string in UTC (naive values are UTC); '' when unknown."""
    if as_of is None:
        return ""
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return as_of.isoformat()


def resource(dataset: str, as_of: datetime | None, backfill: bool = False) -> dict[str, str]:
    """The event's resource: the dataset, labelled with the run's as_of (ISO, and as a person reads it: '' for
    both when unknown) and whether a backfill sent it."""
    return {
        "prefect.resource.id": f"{RESOURCE_PREFIX}{dataset}",
        "prefect.resource.name": dataset,
        "flowcast.dataset": dataset,
        "flowcast.as_of": iso(as_of),
        AS_OF_TEXT_LABEL: "" if as_of is None else utc_text(as_of),
        BACKFILL_LABEL: "true" if backfill else "false",
    }


def in_backfill() -> bool:
    """Whether the current flow run is a backfill's (`flows.naming.in_backfill`); False outside a run."""
    try:
        from flowcast.flows.naming import in_backfill as tagged

        return tagged()
    except Exception:  # noqa: BLE001 - no Prefect context: not a backfill
        return False


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def event_id(event: str, dataset: str, key: str) -> uuid.UUID:
    """The id of the one event `event` of `dataset` that `key` names: the same whoever sends it, how often."""
    return uuid.uuid5(EVENT_IDS, f"{event}|{dataset}|{key}")


def build(event: str, *, dataset: str, as_of: datetime | None, message: str,
          related: list[dict[str, str]] | None = None, backfill: bool = False, key: str | None = None,
          **payload: Any) -> dict[str, Any]:
    """The keyword arguments of `prefect.events.emit_event` for one flowcast event; with `key`, its id
    (`event_id`)."""
    if event not in ALL:
        raise ValueError(f"unknown flowcast event {event!r}; known: {list(ALL)}")
    out: dict[str, Any] = {"event": event, "resource": resource(dataset, as_of, backfill),
                           "payload": {"message": message, **_jsonable(payload)}}
    if related:
        out["related"] = related
    if key is not None:
        out["id"] = event_id(event, dataset, key)
    return out


def emit(event: str, *, dataset: str, as_of: datetime | None, message: str,
         related: list[dict[str, str]] | None = None, past: bool = False, key: str | None = None,
         **payload: Any) -> Any:
    """Send one event to the Prefect API; returns the Event, or None when none was sent.
    `related`: extra related resources (inside a run, Prefect adds the run's own). Inside a backfill's
    run (its `backfill` tag), or with `past` (the run's as_of is a past date of the dataset: a later
    as_of is published, `flows.common.later_published`; a manual `flowcast forecast --as-of 2018-01-01`
    is a backfill of one date), the resource is labelled `flowcast.backfill: "true"`.
    `key`: what makes this event one of a kind (a verdict's change from the one stored, a flow run's failed
    state); its id is derived from it, so the same event sent again (by two workers that both saw the change,
    or by a re-run after a process stopped between sending it and recording that it did) is one event to
    Prefect: its messaging and triggers drop an id they have seen (30 minutes), its event store keeps one."""
    kwargs = build(event, dataset=dataset, as_of=as_of, message=message, related=related,
                   backfill=past or in_backfill(), key=key, **payload)
    try:
        from prefect.events import emit_event

        return emit_event(**kwargs)
    except Exception as exc:  # noqa: BLE001 - an unreachable event API must not fail a run
        log.warning("could not emit %s for %s: %s", event, dataset, exc)
        return None


# how long `flush` waits for queued events to be sent (an API that went away: the sending gives up sooner)
FLUSH_TIMEOUT_S = 15.0
_FLUSH_POLL_S = 0.05  # how often `flush` looks whether a worker stopped while it waits


def flush(timeout: float = FLUSH_TIMEOUT_S) -> bool:
    """Wait until every event this process queued (`emit`, Prefect's own client-side events) was sent, then stop
    Prefect's events worker; True when nothing is left unsent (or no worker ever ran). A command that exits right
    after `emit` (a refusal before Prefect) left the event to Prefect's exit hook, which stops the worker with the
    event still queued and logs `EventsWorker - Still processing items: 1 items remaining...` on stderr as it sends
    it. Waiting for the queue to empty first (`wait_until_empty`), then draining it (`drain_all`), sends the same
    event without that line. No worker is started (one exists only once an event was queued: Prefect's own check,
    `task_runners`); one whose queue does not empty within `timeout`, or whose service stopped with items left (its
    API unreachable: not waited for once it stopped), is left to Prefect's exit hook, as before, and False is
    returned."""
    try:
        from prefect.events.worker import EventsWorker

        with EventsWorker._instance_lock:  # (read as Prefect's task runner reads it: no public way to ask)
            # the events workers alone: `_instances` holds every queue service of Prefect's (its log worker, the
            # concurrency-lease service, whose queue never reports empty), and waiting on those made every command
            # that had run a flow wait out the whole timeout before it exited
            workers = [w for w in EventsWorker._instances.values() if isinstance(w, EventsWorker)]  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001 - a Prefect without them: left to its own exit, never failing the command
        log.debug("could not look for queued events: %s", exc)
        return False
    emptied = True
    polls = max(1, math.ceil(timeout / _FLUSH_POLL_S))  # one budget for all the workers (one per API client):
    # each with a `timeout` of its own, the wait added up
    for worker in workers:
        waiter = threading.Thread(target=worker.wait_until_empty, name="flowcast-events-flush", daemon=True)
        waiter.start()
        # a worker whose service stopped (it failed: 'Service EventsWorker failed with 1 pending items', its API
        # unreachable) never empties its queue: waited for, every such command took `timeout` longer to exit
        while polls > 0:
            polls -= 1
            waiter.join(_FLUSH_POLL_S)
            if not waiter.is_alive() or getattr(worker, "_stopped", False):
                break
        emptied = emptied and not waiter.is_alive()
    if not emptied:
        log.debug("events still queued after %.0f s: left to Prefect's exit", timeout)
        return False
    if workers:
        try:  # called from the command's `finally`: an error here replaced the command's own exit or error
            EventsWorker.drain_all(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - left to Prefect's exit hook, as before
            log.debug("could not drain the events worker: %s", exc)
            return False
    return True
