"""What a person reads in the Prefect UI's run lists: flow run names, task run names and tags.

- Flow runs are named `<flow> <dataset> <as_of>`: `retrain us_employment 2019-09-01`,
  `forecast us_employment 2019-09-02 06:00 UTC`, `backfill us_employment 2018-10-01..2018-12-01` (a clock time
  says UTC, `timekeys.utc_text`: a date's run of a source in Melbourne starts at 13:00 UTC the day before).
  The same name whether the run was scheduled, started from the UI, from the CLI or by a
  backfill (a backfill's children add `(backfill)`), once the run starts: a scheduled run (or one a deployment
  started from the UI) shows Prefect's generated name (`amber-fox`) until then (one a serve's stop cancels
  unstarted is named as it is cancelled, `name_unstarted`), and a backfill's children are
  created with theirs (`fanout.FanOut.run_name`). `run_name()` is the `flow_run_name`
  callable of the three flows (and of the tune flow: `tune us_employment 2019-09-01`); it reads the run's parameters and, without an as_of, its
  scheduled start (what `flows.common.resolve_as_of` uses), and never fails a run.
- Every flowcast run carries the tags of its deployment (`run_tags`): the CLI's runs as well.
  The children of a backfill also carry `backfill`: that is how a run knows it recomputes a
  past date (its artifacts go under the `backfill-` keys, `reporting.artifact_key`).
- A run that skips its slot (published or retrained already by another run) is renamed `<name> (skipped)`
  and tagged `skipped` as it ends, Completed with a message naming that run; a forecast run with nothing new
  to publish, `<name> (unchanged)`, tagged `unchanged` (`flows.common.says_what_it_skipped`).
- Task run names say which model and window: `train gru window 2`, `backtest gru`
  (`task_label` and the tasks' `task_run_name` in `flowcast.flows.tasks`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flowcast.interrupts import fault_point
from flowcast.timekeys import utc_text

FLOWCAST_TAG = "flowcast"
BACKFILL_TAG = "backfill"
SKIPPED_TAG = "skipped"  # a run that found its slot done by another run (`flows.common.says_what_it_skipped`)
SKIPPED_SUFFIX = " (skipped)"  # ... and the end of its name: `forecast tiny 2019-07-01 (skipped)`
UNCHANGED_TAG = "unchanged"  # a forecast run with nothing new to publish (publish.skip_unchanged)
UNCHANGED_SUFFIX = " (unchanged)"


def run_tags(flow_name: str) -> list[str]:
    """Tags of every run of a flow, deployment runs and CLI runs alike."""
    return [FLOWCAST_TAG, flow_name]


def flow_run_title(flow_name: str, dataset: str, parameters: dict[str, Any], scheduled: datetime | None,
                   *, backfill: bool = False) -> str:
    """The name of one flow run from its parameters (pure: the tests call it without Prefect)."""
    if flow_name == "backfill":
        start, end = parameters.get("start"), parameters.get("end")
        span = f"{utc_text(start)}..{utc_text(end)}" if start and end and start != end else utc_text(start)
        mode = parameters.get("mode") or "forecast"
        return f"backfill {dataset} {span}" + (f" ({mode})" if mode != "forecast" else "")
    as_of = parameters.get("as_of") or scheduled
    return f"{flow_name} {dataset} {utc_text(as_of)}" + (" (backfill)" if backfill else "")


def run_name() -> str:
    """`flow_run_name` of the retrain, forecast and backfill flows (evaluated by Prefect when the
    run starts). A name is a courtesy: any failure to build it falls back to the flow's name."""
    from prefect.runtime import flow_run

    flow_name = str(flow_run.flow_name or "flowcast")
    params = dict(flow_run.parameters or {})
    fault_point("flow:naming")  # test-only: SIGKILL before the run is recorded
    _claim(params)
    try:
        from flowcast.ops.hooks import run_dataset

        return flow_run_title(flow_name, run_dataset(params), params, flow_run.scheduled_start_time,
                              backfill=BACKFILL_TAG in (flow_run.tags or []))
    except Exception:  # noqa: BLE001 - never fail a run over its name
        return flow_name


async def name_unstarted(client: Any, run: Any) -> None:
    """Name `run`, cancelled before it started (a serve's stop: `deploy.cancel_unstarted_slots`), as `run_name` names
    a run as it starts (`forecast tiny 2026-12-07 19:10 UTC`, its slot's time): it kept the two words Prefect made it
    with, and the runs list read `tomato-wallaby  Cancelled` among the named runs, which flow and which slot to be
    read from its page (opstrial52). A name is a courtesy: one that cannot be built or set is said at debug level,
    the run left as it is."""
    try:
        params = dict(run.parameters or {})
        flow = await client.read_flow(run.flow_id)
        from flowcast.ops.hooks import run_dataset

        name = flow_run_title(flow.name, run_dataset(params), params, run.expected_start_time,
                              backfill=BACKFILL_TAG in (run.tags or []))
        if name != run.name:
            await client.update_flow_run(run.id, name=name)
    except Exception as exc:  # noqa: BLE001 - never fail a serve's stop over a name
        logging.getLogger(__name__).debug("could not name flow run %s: %s: %s", run.id, type(exc).__name__, exc)


def _claim(params: dict) -> None:
    """Record which process runs this flow run before Prefect sets it Running (the name is the
    first thing it asks of flowcast), so that no SIGKILL leaves a Running run without a record
    (ops.reaper). Never fails the run: its body claims it again (flows.common.run_identity)."""
    try:
        from flowcast.flows.common import flow_settings
        from flowcast.ops.reaper import claim_flow_run

        home = params.get("home") or flow_settings(config_file=params.get("config_file"),
                                                    overrides=params.get("overrides")).home
        claim_flow_run(home, reap_others=False, store=_store_of(params))  # the body reaps, once the run has its name
    except Exception as exc:  # noqa: BLE001 - a courtesy, as the name is
        logging.getLogger(__name__).debug("flow run not claimed before it ran: %s", exc)


def _store_of(params: dict) -> dict[str, str] | None:
    """Where this run publishes, for its claim (`ops.crash_publish.run_store`, from the settings its `params` name in
    this process); None where that cannot be read here (the reaper then says whether it published 'cannot be
    told')."""
    try:
        from flowcast.flows.common import flow_settings
        from flowcast.ops.crash_publish import SETTINGS_PARAMETERS, run_store

        return run_store(flow_settings(**{k: params.get(k) for k in SETTINGS_PARAMETERS}))
    except Exception as exc:  # noqa: BLE001 - a courtesy, as the claim is
        logging.getLogger(__name__).debug("the claim records no store: %s", exc)
        return None


def in_backfill() -> bool:
    """Whether the current flow run recomputes a past date for a backfill (its `backfill` tag)."""
    from prefect.context import FlowRunContext, TagsContext

    ctx = FlowRunContext.get()
    tags = set(ctx.flow_run.tags or []) if ctx is not None and ctx.flow_run is not None else set()
    return BACKFILL_TAG in tags | set(TagsContext.get().current_tags)


def task_label(cell: str, *, window: int | None = None, n_windows: int = 1, final: bool = False) -> str:
    """What a training task trains: `gru window 2` (one backtest window, refit per window),
    `gru backtest` (once for all backtest windows), `gru all data` (the model that publishes)."""
    if final:
        return f"{cell} all data"
    if window is not None and n_windows > 1:
        return f"{cell} window {window}"
    return f"{cell} backtest"
