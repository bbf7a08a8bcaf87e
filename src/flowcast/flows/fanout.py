"""Fan backfill dates out over a Prefect work pool: one deployment run per as_of.

Each date becomes a flow run of a deployment (e.g. "forecast/forecast-pool"), started with
Prefect's `run_deployment(..., timeout=0, idempotency_key=...)` and awaited with
`wait_for_flow_run`; the workers of the deployment's pool pick the runs up, as many at once as
their `--limit` allows. Nothing here polls on its own but the backfill's own run's state (`_watch_own_run`).

- Idempotency: the key is `{deployment}:{dataset}:{as_of}:{backfill run id}` (with
  `:attempt-N` for a restart), so a retried backfill run finds the flow runs it started and
  never starts a date twice; a later backfill is a new run (published dates are skipped before
  anything is started, unless `overwrite`; without it each run is started with `overwrite=False` too, so that
  a date another run published while this one waited in the queue is left as it is: `flows.common.published_already`).
- A run that crashed (its worker or machine died: the process reported it, or the server's
  "crash silent runs" automation marked it when its heartbeats stopped) is started again, up to
  `workers.max_attempts` flow runs per date; its date is not lost. A run that failed (the flow
  raised) is not: that is an answer, and the flow's own retries already had their turn.
- What a date published is read back from the store (its receipt names the flow run that wrote
  it), so that the summary's rows and model need no shared result storage; the flow run says
  which worker ran it (Prefect's `prefect.worker.name` label).
- A cancelled backfill (the UI, `prefect flow-run cancel`) cancels its date runs that have not started
  (`cancel_dates_not_started`, its flow's `on_cancellation` hook), as a date that found no room to write does (`Halt`).
  A backfill run in-process (`flowcast backfill --deployment` in a terminal), whose cancel no worker carries out and
  whose hook none runs, reads its own run's state as it waits on its dates (`_watch_own_run`) and does the same.

The publish itself is idempotent (one (dataset, as_of) is replaced atomically; the same content
hashes the same), so even a run that was marked crashed but lived on publishes nothing twice.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flowcast.errors import ConfigError, PublishError, RunCancelled
from flowcast.timekeys import utc_text
from flowcast.wording import plural

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

Outcome = dict[str, Any]
T = TypeVar("T")
WORKER_LABEL = "prefect.worker.name"


def no_deployment_message(deployment: str, api_url: str, known: list[str]) -> str:
    """What a fan-out to a deployment the API does not have says. Without PREFECT_API_URL the command talks to
    Prefect's temporary local API, which never has one: it said 'no deployment ... on http://127.0.0.1:8872/api/:
    deploy it first', as if deploying to that throwaway server would help."""
    from prefect.settings import PREFECT_API_URL

    temporary = "" if PREFECT_API_URL.value() else (
        " (Prefect's temporary local API of this command, which has no deployments: set PREFECT_API_URL to the "
        "server you deployed to)")
    return (f"no deployment {deployment!r} on {api_url}{temporary}: deploy it first (`flowcast deploy` from the "
            f"repository root); deployments there: {', '.join(known) or 'none'}")


def same_pool_sentence(own_pool: str | None, own_worker: str | None, deployment: str, pool: str | None,
                       wait_timeout_s: float) -> str | None:
    """What a backfill run on a worker says before it starts its dates on a deployment of that worker's own pool:
    the backfill holds one of the worker's runs while its dates wait for one (newuser50b: the backfill-pool
    deployment run from the UI with `deployment` = forecast/forecast-pool, on the one worker the README starts with
    `--limit 1`, waited without a word while its dates and every scheduled run sat Late behind it). None where the
    backfill runs on no pool (the CLI, `flowcast serve`) or on another pool than the deployment's."""
    from flowcast.figures import duration_text

    if not own_pool or own_pool != pool:
        return None
    on = f" on worker {own_worker}" if own_worker else ""
    return (f"This backfill runs in work pool {own_pool!r}{on} and starts its dates on {deployment}, a deployment of "
            f"the same pool: a worker started with --limit 1 cannot start them while it runs this backfill, and they "
            f"wait (up to [workers] wait_timeout, {duration_text(wait_timeout_s)}) for another of the pool's workers. "
            f"Start one more (`prefect worker start --pool {own_pool}`), or leave `deployment` empty to run the dates "
            "in this run, one after another.")


@dataclass(frozen=True)
class FanOut:
    """One backfill's fan-out: where the runs go and how long they may take."""

    deployment: str  # "flow-name/deployment-name"
    dataset: str
    mode: str  # forecast | retrain
    backfill_run_id: str
    max_attempts: int = 3
    wait_timeout_s: float = 6 * 3600

    def key(self, as_of: datetime, attempt: int) -> str:
        base = f"{self.deployment}:{self.dataset}:{as_of.isoformat()}:{self.backfill_run_id}"
        return base if attempt == 1 else f"{base}:attempt-{attempt}"

    def run_name(self, as_of: datetime, attempt: int) -> str:
        """`forecast us_employment 2019-01-01 (backfill)`: the name the run gives itself when it
        starts (`naming.run_name`), so the runs list reads the same before and after."""
        from flowcast.flows.naming import flow_run_title

        name = flow_run_title(self.mode, self.dataset, {"as_of": as_of}, None, backfill=True)
        return name if attempt == 1 else f"{name} (attempt {attempt})"


def mode_of(deployment: str, mode: str) -> str:
    """The backfill mode a deployment implies: its flow's name ("retrain/retrain-pool" runs the retrain
    flow, so its dates must not promote), else `mode`. A retrain backfill through a forecast
    deployment is a contradiction and fails; forecast (the default) through a retrain
    deployment becomes retrain."""
    flow_name, sep, _ = deployment.partition("/")
    if not sep or not flow_name:
        raise ConfigError(f"deployment {deployment!r} is not 'flow-name/deployment-name' (e.g. forecast/forecast-pool)")
    if flow_name == "forecast" and mode == "retrain":
        raise ConfigError(f"mode 'retrain' with deployment {deployment!r}, which runs the forecast flow: pass a "
                          "retrain deployment (e.g. retrain/retrain-pool)")
    return "retrain" if flow_name == "retrain" else mode


def outcome_of(as_of: datetime, flow_run: Any, receipt: dict[str, str] | None, attempts: int,
               crashed: tuple[str, ...] = ()) -> Outcome:
    """One date's line of the backfill summary from its last flow run and the store's receipt.

    published: the run completed and the store's rows for the date carry its id, or the id of one of the
    date's `crashed` runs (it published, then died; the run started again found the date published);
    replaced: it published (its state's message says what: its rows and model) and another run's publish of the
    date then replaced its, or its forecasts were removed: the store holds none of its rows (bf43: it was listed
    `skipped` with 0 rows; look42: 'completed without publishing ...: Published 48 forecast rows ...');
    skipped: it completed without publishing (nothing new since the last publish, or another run published
    the date first); failed: anything else, with `begins` where the date precedes the data (its run's label
    `BEGINS_LABEL`, `DataValidationError.begins`)."""
    from flowcast.flows.common import BEGINS_LABEL, published_by_message

    state = flow_run.state
    worker = (flow_run.labels or {}).get(WORKER_LABEL)
    base = {"as_of": as_of.isoformat(), "flow_run": flow_run.name, "flow_run_id": str(flow_run.id),
            "worker": worker, "attempts": attempts, "state": state.name if state else None}
    if state is not None and state.is_completed():
        if receipt is not None and receipt.get("run_id") in (str(flow_run.id), *crashed):
            return {**base, "status": "published", "rows": int(receipt.get("rows") or 0),
                    "model": receipt.get("model_version") or receipt.get("model"), "run_id": receipt["run_id"],
                    "error": None}
        if (published := published_by_message(state.message)) is not None:
            return {**base, "status": "replaced", "rows": published[0], "model": published[1],
                    "run_id": str(flow_run.id), "error": not_published_text(state.message, receipt)}
        return {**base, "status": "skipped", "rows": 0, "model": receipt.get("model_version") if receipt else None,
                "run_id": str(flow_run.id), "error": not_published_text(state.message, receipt)}
    message = (state.message or state.name) if state is not None else "no state"
    failed = {**base, "status": "failed", "rows": 0, "model": None, "run_id": str(flow_run.id),
              "error": f"{state.name if state else 'unknown'} after {plural(attempts, 'flow run')}: {message}"}
    # a date before the data: its run's label (a worker's state keeps the error's message, not the error)
    return {**failed, "begins": begins} if (begins := (flow_run.labels or {}).get(BEGINS_LABEL)) else failed


def not_published_text(message: str | None, receipt: dict[str, str] | None) -> str:
    """Why a date's completed run is not the one whose forecasts the store holds, from its state's `message` and the
    store's `receipt` of the date (None: none held): it published nothing (its message says why, naming the run that
    published: `flows.common.says_what_it_skipped`), or it published and another run's publish replaced its, or its
    publish is gone from the store. A run that published says so in its message (`flows.common.run_state_message`):
    the line read 'completed without publishing (the store holds run R's): Published 48 forecast rows ...' (look42)."""
    from flowcast.flows.common import PUBLISHED_MESSAGE

    held = f"run {receipt.get('run_id')}'s" if receipt else None
    if message and message.startswith(PUBLISHED_MESSAGE):
        then = (f"then another run's publish of the date replaced it (the store holds {held})" if held else
                "then its forecasts were removed from the store (it holds none of the date)")
        return f"{message}; {then}"
    return f"completed without publishing{f' (the store holds {held})' if held else ''}" + (
        f": {message}" if message else "")


API_TRIES = 3  # the calls of the Prefect API a fanned-out date makes once more after each restart of the API, at most


async def _through_api_restarts(call: Callable[[], Awaitable[T]], what: str, then: str,
                                log: Callable[[str], None]) -> T:
    """`call` (one request of a date to the Prefect API, PREFECT_API_URL), made again once the API answers when it did
    not (a server restarted mid-backfill: the date failed with 'ConnectError: All connection attempts failed' where
    a date run in process waits, `backfill._child_state`), up to `API_TRIES` times; said as a date run in process
    says it (`api_wait_said`). Safe to repeat: a date's flow run is created with its idempotency key, so a creation
    whose reply was lost finds the run it created, and a wait reads the run's state again."""
    from flowcast.ops.reaper import api_not_answering, api_wait_said, wait_for_api

    for attempt in range(1, API_TRIES + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == API_TRIES or (url := api_not_answering(exc, api_only=True)) is None:
                raise
            log(api_wait_said(what, url, "did not answer", exc, then))
            await asyncio.to_thread(wait_for_api, url)  # (the other dates' waits go on meanwhile)
    raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover


NOT_RUN = "not run"  # a date whose run never started: the backfill stopped before (`Halt`)
NO_ROOM_HALT = "the backfill stopped: a date before it found no room to write"


def not_run_outcome(as_of: datetime, why: str, status: str = NOT_RUN) -> Outcome:
    """The outcome of a date whose run never started, saying `why`: `not run` where the backfill stopped before it
    (`Halt`, `backfill.stopped_by_no_room`), or `status` "failed" where the date failed before its run (a damaged
    publish of it); the base of a fanned-out date's failed outcome too (`_one_date`'s wait timed out, `fan_out`'s
    error of the API), its run's keys added."""
    return {"as_of": as_of.isoformat(), "status": status, "rows": 0, "model": None, "run_id": None, "flow_run": None,
            "worker": None, "error": why}


class Halt:
    """A fan-out's stop: set by the first date whose outcome stops the backfill (`stops`: a date that found no room to
    write), or by the backfill's own run cancelled (`cancel`), after which no date starts a flow run, and a date whose
    run has not started is cancelled, saying `why`, and is `not_run` (`backfill.stopped_by_no_room`); a run already
    running ends as it ends."""

    def __init__(self, stops: Callable[[Outcome], Callable[[datetime], Outcome] | None] | None = None) -> None:
        self.stops = stops
        self.not_run: Callable[[datetime], Outcome] | None = None
        self.why = NO_ROOM_HALT
        self.cancelled: str | None = None  # why, where the backfill's own run was cancelled (`cancel`)
        self.event = asyncio.Event()

    def cancel(self, why: str) -> None:
        """Stop because the backfill's own flow run was cancelled (`_watch_own_run`): each date whose run has not
        started is cancelled saying `why` (CANCELLED_BACKFILL, as `cancel_dates_not_started` says it), `not run`.
        Recorded also where a date that found no room stopped it first (its dates keep saying that): the backfill
        ends Cancelled, as it was asked to, where it ended Failed."""
        self.cancelled = self.cancelled or why
        if self.not_run is None:
            self.why = why
            self.not_run = partial(not_run_outcome, why=why)
            self.event.set()

    def after(self, outcome: Outcome) -> None:
        """Stop after `outcome` where it stops the backfill (the first that does)."""
        if self.stops is not None and self.not_run is None and (not_run := self.stops(outcome)) is not None:
            self.not_run = not_run
            self.event.set()


async def _cancel_unstarted(flow_run_id: Any, why: str) -> bool:
    """Cancel the flow run unless it started (Running, or ended): True where the API accepted it (a worker that then
    picks it up finds it Cancelled and runs nothing)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled

    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        if run.state is not None and (run.state.is_final() or run.state.type in (StateType.RUNNING,
                                                                                 StateType.CANCELLING)):
            return False
        result: Any = await client.set_flow_run_state(flow_run_id, Cancelled(message=why))
    return bool(result.status == SetStateStatus.ACCEPT)


def children_filter(backfill_run: str, *types: Any) -> Any:
    """The Prefect filter of the flow runs backfill run `backfill_run` started (its dates: children of its task runs),
    those whose state is of one of `types`."""
    from uuid import UUID

    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    return FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(backfill_run)]),
                         state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types))))


def children_runs(backfill_run: str, *types: Any) -> list[Any]:
    """Every flow run `children_filter(backfill_run, *types)` finds, read page by page (`reporting.api_pages`; by id,
    before any is changed): a read without a limit returned the first 200 only, and a cancelled backfill of 230 dates
    left 30 of them to run later (rev50b)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    from flowcast.reporting import api_pages

    with get_client(sync_client=True) as client:
        return list(api_pages(lambda limit, offset: client.read_flow_runs(
            flow_run_filter=children_filter(backfill_run, *types), sort=FlowRunSort.ID_DESC, limit=limit,
            offset=offset)))


CANCELLED_BACKFILL = "not run: its backfill, flow run {name!r} ({id}), was cancelled before this date's run started"
OWN_RUN_POLL_S = 2.0
"""How often a fanned-out backfill reads its own flow run's state as it waits on its dates (`_watch_own_run`)."""


class FanOutCancelled(RunCancelled):
    """The backfill's own flow run was cancelled as it waited on its dates in-process (`_watch_own_run`): its
    `outcomes`, the dates not started `not run` and cancelled, those that had started ended as they ended; `why`, the
    error of each date the cancel stopped (`Halt.cancelled`: a date a full disk stopped before says that instead)."""

    def __init__(self, message: str, outcomes: list[Outcome] | None = None, why: str | None = None) -> None:
        super().__init__(message)
        self.outcomes = outcomes or []
        self.why = why


async def _watch_own_run(own_id: Any, halt: Halt, every: float | None = None) -> None:
    """Read the backfill's own flow run `own_id` every `every` s until it is cancelled (Cancelling or Cancelled), then
    stop the fan-out (`halt.cancel`): a backfill run in-process (`flowcast backfill --deployment` in a terminal) has
    no worker, so a cancel from the UI stopped nothing and ran no `on_cancellation` hook (`cancel_dates_not_started`),
    and its dates not yet started still waited and ran (serve51). A read the API fails is tried again at the next
    turn (the dates' own waits ride out an API restart); by default every OWN_RUN_POLL_S."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    every = OWN_RUN_POLL_S if every is None else every

    async with get_client() as client:
        while True:
            try:
                own = await client.read_flow_run(own_id)
            except Exception:  # noqa: BLE001 - the API restarting: read again at the next turn
                own = None
            if own is not None and own.state is not None and own.state.type in (StateType.CANCELLING,
                                                                                 StateType.CANCELLED):
                halt.cancel(CANCELLED_BACKFILL.format(name=own.name, id=own.id))
                return
            await asyncio.sleep(every)


def cancel_dates_not_started(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect `on_cancellation` hook of the backfill flow: the date runs it fanned out that have not started
    (Scheduled, Late, Pending, Paused) are cancelled, each saying so naming the backfill (`CANCELLED_BACKFILL`), as
    `Halt` cancels them for a full disk; a run already running ends as it ends. Prefect runs it where the backfill's
    run is cancelled (the UI, `prefect flow-run cancel`): its worker or `flowcast serve` stops the run's process, then
    runs the hook. Its dates stayed Scheduled and ran later (fanout50)."""
    from prefect.client.schemas.objects import StateType
    from prefect.logging.loggers import flow_run_logger
    from prefect.utilities.asyncutils import run_coro_as_sync

    logger = flow_run_logger(flow_run, flow)
    why = CANCELLED_BACKFILL.format(name=flow_run.name, id=flow_run.id)
    waiting = children_runs(str(flow_run.id), StateType.SCHEDULED, StateType.PENDING, StateType.PAUSED)

    async def cancel_all() -> tuple[list[str], list[str]]:
        cancelled: list[str] = []
        started: list[str] = []
        for run in waiting:
            (cancelled if await _cancel_unstarted(run.id, why) else started).append(f"{run.name!r} ({run.id})")
        return cancelled, started

    done = run_coro_as_sync(cancel_all())
    assert done is not None
    cancelled, started = done
    logger.info(f"The backfill was cancelled: cancelled {plural(len(cancelled), 'date run')} not started"
                + (f" ({', '.join(cancelled)})" if cancelled else "")
                + (f"; started meanwhile, so left to end as they end: {', '.join(started)}" if started else ""))


async def _one_date(plan: FanOut, as_of: datetime, parameters: dict[str, Any],
                    receipt_of: Callable[[datetime], dict[str, str] | None],
                    log: Callable[[str], None], halt: Halt | None = None) -> Outcome:
    from prefect.deployments.flow_runs import arun_deployment
    from prefect.exceptions import FlowRunWaitTimeout
    from prefect.flow_runs import wait_for_flow_run

    from flowcast.flows.naming import BACKFILL_TAG, run_tags

    halt = halt or Halt()
    crashed: list[str] = []  # the ids of this date's runs that crashed, each started again
    for attempt in range(1, plan.max_attempts + 1):
        if halt.not_run is not None:  # stopped before this date's run (or its restart) was started
            return halt.not_run(as_of)
        started = await _through_api_restarts(partial(
            arun_deployment, name=plan.deployment, parameters={**parameters, "as_of": as_of.isoformat()}, timeout=0,
            idempotency_key=plan.key(as_of, attempt), flow_run_name=plan.run_name(as_of, attempt),
            tags=[*run_tags(plan.mode), BACKFILL_TAG],  # a deployment run's tags, and `backfill`: its backfill- keys
        ), utc_text(as_of), f"starting its flow run on {plan.deployment}", log)
        log(f"{utc_text(as_of)}: flow run {started.name!r} ({started.id}) on {plan.deployment}")
        deadline = time.monotonic() + plan.wait_timeout_s  # one per flow run, kept when its wait is made again

        def wait(run_id: Any = started.id, until: float = deadline) -> Awaitable[FlowRun]:
            """The wait for the flow run, up to the time left to `until` (at least 1 s: a run that ended while the
            API was gone is read as ended); each wait made again after an API restart started wait_timeout anew."""
            return wait_for_flow_run(run_id, timeout=max(1, math.ceil(until - time.monotonic())))

        try:
            def waited(w: Callable[[], Awaitable[FlowRun]] = wait, n: str = started.name) -> Awaitable[FlowRun]:
                return _through_api_restarts(w, utc_text(as_of), f"waiting for its flow run {n!r} again", log)

            done = cast("FlowRun | None", await _wait_or_halt(waited, halt, started.id))
            if done is None:  # cancelled before it started: the backfill stopped
                assert halt.not_run is not None
                log(f"{utc_text(as_of)}: flow run {started.name!r} cancelled before it started: the backfill stopped")
                return {**halt.not_run(as_of), "flow_run": started.name, "flow_run_id": str(started.id),
                        "attempts": attempt, "state": "Cancelled"}
        except FlowRunWaitTimeout:
            why = (f"flow run {started.name!r} did not finish within {plan.wait_timeout_s:.0f}s "
                   f"(is a worker serving {plan.deployment}'s work pool?)")
            return {**not_run_outcome(as_of, why, status="failed"),
                    "run_id": str(started.id), "flow_run": started.name, "flow_run_id": str(started.id),
                    "attempts": attempt, "state": None}
        state = done.state
        if state is not None and state.is_crashed() and attempt < plan.max_attempts:
            log(f"{utc_text(as_of)}: flow run {done.name!r} crashed ({state.message}); starting it again "
                f"(attempt {attempt + 1} of {plan.max_attempts})")
            crashed.append(str(done.id))
            continue
        receipt = receipt_of(as_of) if state is not None and state.is_completed() else None
        return outcome_of(as_of, done, receipt, attempt, tuple(crashed))
    raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


async def _wait_or_halt(wait: Callable[[], Awaitable[Any]], halt: Halt, flow_run_id: Any) -> Any:
    """The flow run `wait()` waits for, or None where the fan-out stopped (`halt`) and the run, not started yet, was
    cancelled; a run that started is waited for to its end."""
    waiting = asyncio.ensure_future(wait())
    try:
        while True:
            if halt.not_run is None:
                stop = asyncio.ensure_future(halt.event.wait())
                await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
            if waiting.done():
                return waiting.result()
            if halt.not_run is not None:
                if await _cancel_unstarted(flow_run_id, halt.why):
                    return None
                return await waiting
    finally:
        if not waiting.done():
            waiting.cancel()


def fan_out(plan: FanOut, dates: list[datetime], parameters: dict[str, Any],
            receipt_of: Callable[[datetime], dict[str, str] | None], log: Callable[[str], None],
            on_outcome: Callable[[Outcome], None] | None = None,
            stops: Callable[[Outcome], Callable[[datetime], Outcome] | None] | None = None) -> list[Outcome]:
    """Start one flow run of `plan.deployment` per date, all at once, and wait for them all;
    one outcome per date (in date order). `receipt_of(as_of)` reads the store's receipt of the
    date (None when nothing is published). An unknown deployment fails at once (ConfigError,
    nothing started); an error while starting or waiting for one date (the API unreachable)
    fails that date, not the others. `stops(outcome)`: where a date's outcome stops the backfill (a date that found
    no room to write), the outcome of each date not run (`Halt`): the runs that have not started are cancelled, as
    `flowcast backfill` without a deployment stops (faults49: a fanned-out backfill ran every date on a full disk).
    Called in a flow run (the backfill's), it reads that run's state as it waits (`_watch_own_run`): once the run is
    cancelled, the dates not started are cancelled and `not run` likewise (CANCELLED_BACKFILL), those that had started
    are waited for, and it raises FanOutCancelled with every date's outcome."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.runtime import flow_run as current_run
    from prefect.utilities.asyncutils import run_coro_as_sync

    halt = Halt(stops)

    async def one(d: datetime) -> Outcome:
        try:
            o = await _one_date(plan, d, parameters, receipt_of, log, halt)
        except Exception as exc:  # noqa: BLE001 - one date's API trouble becomes that date's outcome
            o = {**not_run_outcome(d, f"{type(exc).__name__}: {exc}", status="failed"), "flow_run_id": None,
                 "attempts": 0, "state": None}
        halt.after(o)
        if on_outcome is not None:
            on_outcome(o)
        return o

    async def all_dates() -> list[Outcome]:
        async with get_client() as client:
            try:
                target = await client.read_deployment_by_name(plan.deployment)
            except ObjectNotFound:
                deployments = await client.read_deployments()
                known = sorted([f"{(await client.read_flow(d.flow_id)).name}/{d.name}" for d in deployments])
                raise ConfigError(no_deployment_message(plan.deployment, str(client.api_url), known)) from None
            if (own_id := current_run.id) is not None:  # a backfill run on a worker: its dates may wait behind it
                own = await client.read_flow_run(own_id)
                worker = (own.labels or {}).get(WORKER_LABEL)
                if said := same_pool_sentence(own.work_pool_name, None if worker is None else str(worker),
                                              plan.deployment, target.work_pool_name, plan.wait_timeout_s):
                    log(said)
        if own_id is None:
            return list(await asyncio.gather(*(one(d) for d in dates)))
        watch = asyncio.ensure_future(_watch_own_run(own_id, halt))
        try:
            return list(await asyncio.gather(*(one(d) for d in dates)))
        finally:
            watch.cancel()

    if not dates:
        return []
    outcomes = run_coro_as_sync(all_dates())
    assert outcomes is not None
    outcomes = sorted(outcomes, key=lambda o: o["as_of"])
    if halt.cancelled is not None:
        raise FanOutCancelled(cancelled_text(outcomes, halt.cancelled), outcomes, halt.cancelled)
    return outcomes


def _stopped_dates(outcomes: list[Outcome], why: str | None) -> list[Outcome]:
    """The dates of `outcomes` a stop (a date that found no room to write) left `not run`: not those a cancel of the
    backfill stopped, whose error is the cancel's `why`."""
    return [o for o in outcomes if o["status"] == NOT_RUN and o["error"] != why]


def stopped_text(outcomes: list[Outcome], why: str | None = None) -> str | None:
    """What a fanned-out backfill says of its dates a stop left `not run` (`_stopped_dates`), their runs cancelled
    before they started, with the first one's error (where it stopped, the room to free); None where there are none.
    Said also where the backfill's own run was cancelled after the stop (`why`: the cancel's error): it was dropped
    then, its 'free N GB' with it (fixC51)."""
    if not (not_run := _stopped_dates(outcomes, why)):
        return None
    return (f"The backfill stopped: {plural(len(not_run), 'date')} not run, cancelled before "
            f"{'its run' if len(not_run) == 1 else 'their runs'} started ({not_run[0]['error']})")


def cancelled_text(outcomes: list[Outcome], why: str) -> str:
    """What a fanned-out backfill whose own flow run was cancelled says (`FanOutCancelled`) of its dates' `outcomes`:
    those the cancel stopped (`not run`, their error the cancel's `why`), their runs cancelled before they started;
    those a stop before it left `not run` (`_stopped_dates`: a date that found no room to write), with their error;
    and those it waited for. Where every date had started, it read '0 dates not run, their runs cancelled before they
    started'; after a full disk's stop every date not run was said cancelled, the disk's advice dropped (fixC51)."""
    said = "The backfill's flow run was cancelled as it waited on its dates: "
    if not outcomes:
        return said + "it had no date to run"
    stopped = _stopped_dates(outcomes, why)
    cancelled = sum(o["status"] == NOT_RUN for o in outcomes) - len(stopped)
    started = len(outcomes) - cancelled - len(stopped)
    if started == len(outcomes):
        return said + f"every date had started: it waited for {'its' if started == 1 else 'all'} " + (
            f"{plural(started, 'date')} to end")
    one = cancelled == 1
    parts = [f"{plural(cancelled, 'date')} not run, {'its run' if one else 'their runs'} cancelled before "
             + f"{'it' if one else 'they'} started"] if cancelled else []
    parts += [f"{plural(n, 'date')} not run ({error})" for error, n in Counter(o["error"] for o in stopped).items()]
    if started:
        parts.append(f"it waited for the {plural(started, 'date')} that had started to end")
    return said + "; ".join(parts)


def store_receipt(store: Any, dataset: str) -> Callable[[datetime], dict[str, str] | None]:
    """`receipt_of` for `fan_out`: the store's receipt of one date, None when nothing is there."""

    def receipt_of(as_of: datetime) -> dict[str, str] | None:
        try:
            return dict(store.receipt_of(dataset, as_of))
        except PublishError:
            return None

    return receipt_of
