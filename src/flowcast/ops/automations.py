"""Prefect automations shipped as code: what an operator is notified of, and through what.

Five automations, all named `flowcast: ...`, each sending a notification through one Prefect
notification block (a Custom Webhook block named `alerts.block_name`, POSTing JSON
`{"text", "subject", "body"}` to `alerts.webhook_url`):

| automation                          | fires on                                                      |
| ----------------------------------- | ------------------------------------------------------------- |
| flowcast: run failed                | `flowcast.run.failed` (a flowcast run failed: its dataset, as_of and error) or Prefect's own `prefect.flow-run.Crashed` for a retrain, forecast, backfill or tune run (a crash the run could not report itself), not a backfill's date (`... (backfill)`): its backfill tells it once (it fails naming the date, or crashes with it), as `flowcast.run.failed` leaves a failed date to its backfill |
| flowcast: data quality failed       | `flowcast.data-quality.failed`                                |
| flowcast: accuracy degraded         | `flowcast.accuracy.degraded`                                  |
| flowcast: forecast not published    | proactive: after a dataset's `flowcast.forecast.published` (or `...unchanged`), none followed within `alerts.publish_deadline`; one notification per miss, re-armed by the next publish (not a backfill's, nor a run's of an as_of before the dataset's latest publish: their events, labelled `flowcast.backfill: "true"`, neither arm nor satisfy it) |
| flowcast: data stale                | `flowcast.data.stale` (every forecast period of a run lay before its as_of: the source stopped being updated; not a backfill's past date), at most once per dataset per `alerts.stale_every` (24h): every run on stale data emits the event, and a forecast run that finds nothing new emits `...unchanged`, which keeps "forecast not published" quiet |

and one that acts instead of notifying, applied with or without a webhook:

| automation                          | does                                                          |
| ----------------------------------- | ------------------------------------------------------------- |
| flowcast: crash silent runs         | marks a flow run Crashed when its `prefect.flow-run.heartbeat` events stop for `workers.crash_after` without a final state (its worker or machine died: Prefect's "detect zombie flows" recipe). Flow runs send heartbeats every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (180 by default, 30 at least); a backfill then starts the crashed date again (flows/fanout.py). Every command that starts the temporary server (`serve`, `run`, `forecast`, `backfill`) drops its windows of runs already final before that server starts (`ops.prefect_runs.drop_final_windows`) |

`apply(settings)` creates or updates them idempotently (compare, then create, update or leave
alone; a `flowcast: ` automation no longer shipped is deleted; duplicates of one name are
removed; without a webhook the five notifying ones are left as they are) and saves the block (overwritten in place, so its id and the automations' reference
stay valid). `flowcast automations apply` and `flowcast serve` call it. The Prefect server
evaluates the triggers and runs the actions: its `triggers` and `actions` services (on by
default in `prefect server start`; `PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED` and
`..._ACTIONS_ENABLED`) and, for the proactive one, `PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY`
(5 s by default) set how soon.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowcast import events
from flowcast.config import Settings, parse_duration
from flowcast.errors import ConfigError

NAME_PREFIX = "flowcast: "
FLOW_NAMES = ["retrain", "forecast", "backfill", "tune"]
RUN_FAILED = NAME_PREFIX + "run failed"
QUALITY_FAILED = NAME_PREFIX + "data quality failed"
DEGRADED = NAME_PREFIX + "accuracy degraded"
NOT_PUBLISHED = NAME_PREFIX + "forecast not published"
STALE_DATA = NAME_PREFIX + "data stale"
CRASH_SILENT = NAME_PREFIX + "crash silent runs"
NOTIFYING = (RUN_FAILED, QUALITY_FAILED, DEGRADED, NOT_PUBLISHED, STALE_DATA)
HEARTBEAT = "prefect.flow-run.heartbeat"
FINAL_EVENTS = {f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed")}

# a backfill's date is told by its backfill (`flows.naming.flow_run_title`: `forecast emp 2019-01-01 (backfill)`,
# `... (backfill) (attempt 2)`): its own Crashed event told it a second time. A negated label is the only way a
# trigger leaves a run out (match_related is met by any one related resource, so a tag cannot be excluded); the
# run's name is on the Crashed event's resource, a dataset's name on flowcast's events (never with parentheses)
NOT_A_BACKFILL_DATE: dict[str, str | list[str]] = {"prefect.resource.name": "!*(backfill)*"}
_DATASET = "{{ event.resource.get('flowcast.dataset', '') }}"
# the as_of as a person reads it ('2019-01-01', '2024-03-10 06:00 UTC': `events.AS_OF_TEXT_LABEL`); the ISO label of
# an event without it (sent by hand, or by a flowcast before it) is written as it is. Notifications read 'as_of
# 2019-01-01T00:00:00' where every other message wrote the instant by `timekeys.utc_text`
_AS_OF = ("{{ event.resource.get('" + events.AS_OF_TEXT_LABEL + "') or event.resource.get('flowcast.as_of', '') }}")
# ', as_of T' where the event has one: one without (an event sent by hand; a refusal before Prefect without --as-of had
# none until followup22, where it is now the command's start) made the notifications read 'Dataset s, as_of : ...'
_AS_OF_IF = "{% if event.resource.get('flowcast.as_of') %}, as_of " + _AS_OF + "{% endif %}"
# when the event was sent, as `timekeys.utc_text` writes a time of day (Prefect stamps it in UTC): its seconds only
# where they are not zero, no fraction ('published 2026-12-05 03:00:42 UTC'; it printed '2026-12-05
# 03:00:42.123456+00:00')
_OCCURRED = ("{{ event.occurred.strftime('%Y-%m-%d %H:%M') }}{% if event.occurred.second or event.occurred.microsecond"
             " %}{{ event.occurred.strftime(':%S') }}{% endif %} UTC")
_DATASETS: dict[str, str | list[str]] = {"prefect.resource.id": f"{events.RESOURCE_PREFIX}*"}
# the dataset's current date: a backfill's publish (or stale data) of a past date neither re-arms nor
# satisfies "forecast not published", nor tells (or spends the window of) "data stale"
_CURRENT: dict[str, str | list[str]] = {**_DATASETS, events.BACKFILL_LABEL: "false"}


@dataclass
class Applied:
    name: str
    action: str  # created | updated | unchanged | deleted
    id: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "action": self.action, "id": self.id}


def webhook_block(settings: Settings) -> Any:
    """The notification block: a Custom Webhook POSTing subject and body as JSON."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    url = settings.alerts.webhook_url
    if not url:
        raise ConfigError("no [alerts] webhook_url configured (or FLOWCAST_ALERTS__WEBHOOK_URL): nothing to notify")
    return CustomWebhookNotificationBlock(
        name="flowcast", url=url, method="POST",
        json_data={"text": "{{subject}}\n{{body}}", "subject": "{{subject}}", "body": "{{body}}"},
    )


def crash_silent_runs(settings: Settings) -> Any:
    """A running flow run whose heartbeats stop for `workers.crash_after` is marked Crashed."""
    from prefect.automations import AutomationCore, EventTrigger, Posture
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState

    after = settings.workers.crash_after
    return AutomationCore(
        name=CRASH_SILENT,
        description=f"A flow run that sent no heartbeat for {after} (its worker or machine died) is marked Crashed.",
        trigger=EventTrigger(
            after={HEARTBEAT}, expect={HEARTBEAT, *FINAL_EVENTS}, match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1, within=parse_duration(after),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"No heartbeat for {after}: its worker or machine stopped "
                                            "(marked by the 'flowcast: crash silent runs' automation)")],
    )


def desired(settings: Settings, block_document_id: Any | None) -> list[Any]:
    """The automations flowcast ships (prefect.automations.AutomationCore): the five notifying
    ones pointing at the block (none without a block), then `crash silent runs`."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    if block_document_id is None:
        return [crash_silent_runs(settings)]

    def notify(subject: str, body: str) -> list[Any]:
        return [SendNotification(block_document_id=block_document_id, subject=subject, body=body)]

    deadline = parse_duration(settings.alerts.publish_deadline)
    return [
        AutomationCore(
            name=RUN_FAILED,
            description="A flowcast run (retrain, forecast, backfill, tune) failed or crashed.",
            trigger=EventTrigger(
                expect={events.RUN_FAILED, "prefect.flow-run.Crashed"}, match=NOT_A_BACKFILL_DATE,
                match_related={"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAMES},
                posture=Posture.Reactive, threshold=1,
            ),
            actions=notify(
                "flowcast: run failed{% if event.event == 'prefect.flow-run.Crashed' %} (crashed){% endif %}",
                "{% if event.event == 'prefect.flow-run.Crashed' %}Flow run {{ flow_run.name }} of {{ flow.name }} "
                "crashed: {{ flow_run.state.message }}{% else %}Dataset " + _DATASET + _AS_OF_IF
                + ": {{ event.payload.message }}{% if flow_run %} (flow run {{ flow_run.name }}){% endif %}{% endif %}",
            ),
        ),
        AutomationCore(
            name=QUALITY_FAILED,
            description="A run's data crossed the quarantine threshold (or had no valid row).",
            trigger=EventTrigger(expect={events.QUALITY_FAILED}, match=_DATASETS, posture=Posture.Reactive,
                                 threshold=1),
            actions=notify(
                "flowcast: data quality failed for " + _DATASET,
                "Dataset " + _DATASET + _AS_OF_IF + ": {{ event.payload.message }}",
            ),
        ),
        AutomationCore(
            name=DEGRADED,
            description="Realized accuracy of a dataset's published forecasts degraded.",
            trigger=EventTrigger(expect={events.DEGRADED}, match=_DATASETS, posture=Posture.Reactive, threshold=1),
            actions=notify(
                "flowcast: accuracy degraded for " + _DATASET,
                "Dataset " + _DATASET + ", as_of " + _AS_OF + ": {{ event.payload.message }}",
            ),
        ),
        AutomationCore(
            name=NOT_PUBLISHED,
            description=f"A dataset published nothing for {settings.alerts.publish_deadline} after its last publish.",
            trigger=EventTrigger(
                after={events.PUBLISHED, events.UNCHANGED}, expect={events.PUBLISHED, events.UNCHANGED},
                match=_CURRENT, for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                within=deadline,
            ),
            actions=notify(
                "flowcast: forecast not published for " + _DATASET,
                "Dataset " + _DATASET + " has published nothing for " + settings.alerts.publish_deadline
                + " since as_of " + _AS_OF + " (published " + _OCCURRED + "): is the forecast deployment running?",
            ),
        ),
        AutomationCore(
            name=STALE_DATA,
            description=f"A dataset's source stopped being updated (notified at most once per "
                        f"{settings.alerts.stale_every} per dataset).",
            # reactive with a window: the first stale run of a dataset notifies, the others of the
            # window (every scheduled run while the source is stale) only count
            trigger=EventTrigger(expect={events.STALE}, match=_CURRENT, for_each={"prefect.resource.id"},
                                 posture=Posture.Reactive, threshold=1,
                                 within=parse_duration(settings.alerts.stale_every)),
            actions=notify(
                "flowcast: data stale for " + _DATASET,
                "Dataset " + _DATASET + ", as_of " + _AS_OF + ": {{ event.payload.message }} (flow run "
                "{{ flow_run.name }}; told at most once per " + settings.alerts.stale_every + ")",
            ),
        ),
        crash_silent_runs(settings),
    ]


def _comparable(automation: Any) -> str:
    """What decides 'unchanged': everything but ids (triggers get a fresh id when built)."""
    d = automation.model_dump(mode="json", include={"name", "description", "enabled", "trigger", "actions",
                                                    "actions_on_trigger", "actions_on_resolve"})

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "id"}
        if isinstance(x, list):
            items = [strip(v) for v in x]
            # sets (expect, after, for_each) dump in hash order, which differs between processes
            return sorted(items) if all(isinstance(v, str) for v in items) else items
        return x

    return json.dumps(strip(d), sort_keys=True, default=str)


def apply(settings: Settings, log: Callable[[str], None] | None = None) -> list[Applied]:
    """Save the notification block (when a webhook is configured) and create, update or delete
    automations until the server holds exactly the ones `desired` lists; without a webhook the
    notifying ones are neither created nor deleted. Needs a reachable Prefect API."""
    from prefect.client.orchestration import get_client

    say = log or (lambda _msg: None)
    block_id = None
    if settings.alerts.webhook_url:
        block_id = webhook_block(settings).save(settings.alerts.block_name, overwrite=True)
    want = {a.name: a for a in desired(settings, block_id)}
    left_alone = set(NOTIFYING) if block_id is None else set()
    done: list[Applied] = []
    with get_client(sync_client=True) as client:
        existing = [a for a in client.read_automations() if a.name.startswith(NAME_PREFIX)]
        by_name: dict[str, list[Any]] = {}
        for a in existing:
            by_name.setdefault(a.name, []).append(a)
        for name, spec in want.items():
            have = by_name.pop(name, [])
            for extra in have[1:]:  # duplicates of one name (two applies racing): keep one
                client.delete_automation(extra.id)
                done.append(Applied(name, "deleted", str(extra.id)))
            if not have:
                new_id = client.create_automation(spec)
                done.append(Applied(name, "created", str(new_id)))
            elif _comparable(have[0]) != _comparable(spec):
                client.update_automation(have[0].id, spec)  # unset fields (owner_resource) stay unsent
                done.append(Applied(name, "updated", str(have[0].id)))
            else:
                done.append(Applied(name, "unchanged", str(have[0].id)))
        for name, stale in by_name.items():  # ours, no longer shipped
            if name in left_alone:
                continue
            for a in stale:
                client.delete_automation(a.id)
                done.append(Applied(name, "deleted", str(a.id)))
    for d in done:
        say(f"automation {d.name!r}: {d.action}")
    return done


def ensure(settings: Settings, log: Callable[[str], None]) -> list[Applied]:
    """`apply` (for `serve`); without a webhook it says that notifications are off."""
    if not settings.alerts.webhook_url:
        log("No [alerts] webhook_url configured: no notifying automations applied (notifications are off)")
    return apply(settings, log)


def listing() -> list[dict[str, Any]]:
    """flowcast's automations on the server: name, enabled, id, trigger (one line)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        rows = [a for a in client.read_automations() if a.name.startswith(NAME_PREFIX)]
    return [{"name": a.name, "enabled": a.enabled, "id": str(a.id), "trigger": a.trigger.describe_for_cli()
             if hasattr(a.trigger, "describe_for_cli") else type(a.trigger).__name__} for a in rows]
