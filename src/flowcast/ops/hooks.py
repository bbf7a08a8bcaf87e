"""Flow-run state hooks: a failed flowcast run emits `flowcast.run.failed` naming its dataset,
as_of and error (the `flowcast: run failed` automation notifies on it).

The dataset and as_of come from the run's parameters: `dataset`, else the explicit `source`'s
name, else the configured default; `as_of`, else the run's scheduled start (what
`resolve_as_of` uses), read as the run reads it: a date alone is the midnight that day starts at
in the source's tz. A hook never raises: a failing hook must not hide the run's own error.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flowcast import events
from flowcast.redaction import redact_log_text
from flowcast.timekeys import as_instant

log = logging.getLogger(__name__)


def _as_of(value: Any, fallback: datetime | None, tz: str | None = None) -> datetime | None:
    """The instant the run's as_of parameter names, as the run resolves it (`flows.common.resolve_as_of`:
    no offset means UTC, a date alone is that day's midnight in `tz`, the source's); `fallback` when
    it is empty or not a date."""
    if isinstance(value, (datetime, date)) or (isinstance(value, str) and value.strip()):
        try:
            return as_instant(value, tz)
        except ValueError:
            return fallback
    return fallback


def run_tz(parameters: dict[str, Any]) -> str | None:
    """The tz of the source a run's parameters read (where a date alone given as its as_of is read, as
    the run itself reads it); None (UTC) when it is undeclared or cannot be known."""
    try:
        from flowcast.data.datasets import source_tz
        from flowcast.flows.common import flow_settings

        settings = flow_settings(config_file=parameters.get("config_file"), home=parameters.get("home"),
                                 dataset=parameters.get("dataset"), source=parameters.get("source"),
                                 overrides=parameters.get("overrides"))
        return source_tz(settings)
    except Exception:  # noqa: BLE001 - e.g. the configuration itself is what failed
        return None


def run_dataset(parameters: dict[str, Any]) -> str:
    """The dataset a run's parameters name (its configured default when they name none)."""
    if parameters.get("dataset"):
        return str(parameters["dataset"])
    source = parameters.get("source")
    name = source.get("name") if isinstance(source, dict) else getattr(source, "name", None)
    if name:
        return str(name)
    try:
        from flowcast.data.datasets import resolve_source
        from flowcast.flows.common import flow_settings

        settings = flow_settings(config_file=parameters.get("config_file"), home=parameters.get("home"),
                                 overrides=parameters.get("overrides"))
        return resolve_source(settings).name
    except Exception:  # noqa: BLE001 - e.g. the configuration itself is what failed
        return "unknown"


def on_run_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect `on_failure` hook of the retrain, forecast, backfill and tune flows. A backfill's date (a child
    run tagged `backfill`, in its process or on a worker) sends nothing: its backfill fails naming it, once
    for all its failed dates (each failed date was told twice: by its own run and by the backfill's failure).
    The event's id is keyed by the failed state: a hook run twice for one failure sends one event."""
    from flowcast.flows.naming import BACKFILL_TAG

    if flow.name != "backfill" and BACKFILL_TAG in (getattr(flow_run, "tags", None) or []):
        log.info("%s failed: told by its backfill's failure, which names every failed date", flow_run.name)
        return
    try:
        params = dict(flow_run.parameters or {})
        dataset = run_dataset(params)
        as_of = _as_of(params.get("as_of") or params.get("start"), flow_run.expected_start_time, run_tz(params))
        # a library's error (Prefect's state message is its text) may name a URL with its password or token, or a
        # keyword DSN's password
        message = redact_log_text((state.message or state.name or "failed").strip())
        related = [
            {"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.role": "flow-run",
             "prefect.resource.name": str(flow_run.name)},
            {"prefect.resource.id": f"prefect.flow.{flow_run.flow_id}", "prefect.resource.role": "flow",
             "prefect.resource.name": str(flow.name)},
        ]
        events.emit(events.RUN_FAILED, dataset=dataset, as_of=as_of, message=f"{flow.name} run failed: {message}",
                    related=related, flow=flow.name, flow_run=str(flow_run.name), flow_run_id=str(flow_run.id),
                    state=state.name, key=f"flow-run {flow_run.id} state {getattr(state, 'id', None) or message}")
    except Exception as exc:  # noqa: BLE001 - never hide the run's own error
        log.warning("could not report the failed run: %s", exc)
