"""The three deployments (retrain weekly, forecast daily, backfill on demand) and serving them.

`serve_all()` is `make serve` / `flowcast serve`: one process that registers the deployments
with the Prefect API and runs their scheduled and triggered flow runs itself (each in a
subprocess), the embedded default that needs no work pool or worker. The same schedules are
declared for work pools in deployments/prefect.yaml (`flowcast deploy`: `prefect deploy --all`, then
`give_forms` gives those deployments the Run form that the served ones have).

Schedules can be changed without code: FLOWCAST_RETRAIN_CRON, FLOWCAST_FORECAST_CRON and
FLOWCAST_TIMEZONE (an IANA zone such as Europe/Berlin; the crons are read in that zone, daylight
saving included). A scheduled run's `as_of` is its scheduled start time, one instant: the cron's
zone decides WHEN runs start, not how as_of is read (`flows.common.resolve_as_of` carries it as
an aware UTC datetime down to ingestion).
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowcast.errors import FlowcastError
    from flowcast.ops.prefect_runs import ServeVacuum

RETRAIN_CRON = "0 3 * * 1"  # Mondays 03:00
FORECAST_CRON = "0 6 * * *"  # every day 06:00
TIMEZONE = "UTC"


def schedule_settings() -> dict[str, str]:
    """The crons and their zone; an unknown zone or a cron that does not parse is a ConfigError naming
    the variable (never a schedule in another zone than the one asked for)."""
    import zoneinfo

    from prefect.schedules import Cron

    from flowcast.errors import ConfigError

    tz = os.environ.get("FLOWCAST_TIMEZONE", TIMEZONE)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"FLOWCAST_TIMEZONE={tz!r} is not a time zone; use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None
    crons = {}
    for key, default in (("retrain_cron", RETRAIN_CRON), ("forecast_cron", FORECAST_CRON)):
        var = f"FLOWCAST_{key.upper()}"
        crons[key] = os.environ.get(var, default)
        try:  # 'every monday' failed once the server had started, with "ValueError: Invalid cron string"
            Cron(crons[key], timezone=tz)
        except ValueError:
            raise ConfigError(f"{var}={crons[key]!r} is not a cron expression: five fields, minute hour day-of-month "
                              f"month day-of-week, such as {default!r}") from None
    return {**crons, "timezone": tz}


def build_deployments(parameters: dict[str, Any] | None = None, paused: bool = False) -> list[Any]:
    """RunnerDeployments for `prefect.serve`: retrain (weekly cron), forecast (daily cron),
    backfill (no schedule). `parameters`: defaults given to every deployment (e.g. home).
    Each schedule has a slug (its flow's name): a later registration of the deployment (the next `flowcast serve`)
    updates the schedule by it in place, its id kept. Without one Prefect replaced the schedule (a new id) and deleted
    only the old one's Scheduled runs: a run a runner had picked up already (Pending) stayed, and the new schedule
    scheduled its slot again (a run is one per schedule id and slot): two runs of one slot."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType
    from prefect.utilities.callables import ParameterSchema

    from flowcast.flows import backfill_flow, forecast_flow, retrain_flow
    from flowcast.flows.naming import run_tags
    from flowcast.flows.parameters import form_schema

    s = schedule_settings()
    params = {k: v for k, v in (parameters or {}).items() if v is not None}
    say_free_text_secrets("retrain, forecast and backfill", params)
    common: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH, "parameters": params}
    tz = s["timezone"]
    deployments: list[Any] = [
        retrain_flow.to_deployment(
            "retrain", tags=run_tags("retrain"), schedules=[Cron(s["retrain_cron"], timezone=tz, slug="retrain")], paused=paused,
            description=f"On cron {s['retrain_cron']}, time zone {tz}: retrain rnn/lstm/gru, backtest every "
            "candidate, promote the winner if it beats production, publish.",
            concurrency_limit=1, **common,
        ),
        forecast_flow.to_deployment(
            "forecast", tags=run_tags("forecast"), schedules=[Cron(s["forecast_cron"], timezone=tz, slug="forecast")], paused=paused,
            description=f"On cron {s['forecast_cron']}, time zone {tz}: forecast every series with the production "
            "model (else the last retrain's champion) and publish.", **common,
        ),
        backfill_flow.to_deployment(
            "backfill", tags=run_tags("backfill"),
            description="On demand: one forecast (or retrain) run per as_of over a date range; published dates are "
            "skipped unless overwrite.", **common,
        ),
    ]
    for d in deployments:  # the Run form: optional parameters as inputs left empty, not 'Property is type "None"'
        d._parameter_openapi_schema = ParameterSchema(**form_schema(d._parameter_openapi_schema.model_dump()))
    offer_configured_datasets(deployments, params)
    return deployments


def give_forms(prefect_file: str | Path) -> list[str]:
    """Give each deployment of `prefect_file` (deployed by `prefect deploy --all`) the Run form of `flowcast serve`'s
    deployments (`parameters.form_schema`: optional parameters open on an input left empty, not on 'Property is type
    "None"'), through the Prefect API: `prefect deploy` always registers the schema Prefect makes of the flow's
    signature (no prefect.yaml field replaces it) and a field's json_schema_extra cannot drop the default that pydantic
    writes for `= None`. Each enforces its schema, as a served deployment does: the server checks a run's parameters
    against it only so, and a run whose URL shows a password (`source_secrets.VISIBLE_SECRET`) was stored whole on a
    deployment `prefect deploy` had made without (fixrev50). Entrypoints are read from the current folder, as `prefect
    deploy` reads them. The deployments given the form ('flow/deployment'); one of the file that is not on the server
    is a ConfigError naming it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.callables import parameter_schema

    from flowcast.errors import ConfigError
    from flowcast.flows.parameters import form_schema

    done: list[str] = []
    with get_client(sync_client=True) as client:
        for flow, d in _file_deployments(prefect_file):
            name = f"{flow.name}/{d['name']}"
            say_free_text_secrets(name, d.get("parameters") or {})
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                raise ConfigError(f"deployment {name!r} of {prefect_file} is not on {PREFECT_API_URL.value()}: "
                                  f"deploy it first (`prefect deploy --all --prefect-file {prefect_file}`)") from None
            client.update_deployment(deployment.id, DeploymentUpdate(
                parameter_openapi_schema=form_schema(parameter_schema(flow).model_dump()), enforce_parameter_schema=True))
            done.append(name)
    return done


def free_text_secrets_said(deployments: str, parameters: dict[str, Any]) -> str | None:
    """The warning that the `parameters` of `deployments` hold a secret's `name=value` in free text, naming each
    parameter (`source_secrets.free_text_secrets`), not its value; None where none does."""
    from flowcast.source_secrets import free_text_secrets

    places = free_text_secrets(parameters)
    if not places:
        return None
    return (f"the parameters of the deployments {deployments}: {', '.join(places)} holds a password or token by name "
            "in free text, which Prefect stores and shows as written (flowcast hides such a name's value where a "
            "parameter gives a location that is a URL or a DSN: a source's path, store.url, shared): give the secret "
            "in the worker's configuration ([sources.NAME] path in its flowcast.toml, or FLOWCAST_... settings), or "
            "in the location it belongs to")


def say_free_text_secrets(deployments: str, parameters: dict[str, Any]) -> None:
    """Say `free_text_secrets_said` of `deployments`' `parameters` as a warning, where there is one."""
    from prefect.logging import get_logger

    if (said := free_text_secrets_said(deployments, parameters)) is not None:
        get_logger("flowcast.serve").warning(said)


def _file_deployments(prefect_file: str | Path) -> list[tuple[Any, dict[str, Any]]]:
    """(flow, its entry in the file) of each deployment of `prefect_file`, the flow loaded from its entrypoint (read
    from the current folder, as `prefect deploy` reads it)."""
    import yaml  # type: ignore[import-untyped]  # (PyYAML, a dependency of Prefect)
    from prefect.flows import load_flow_from_entrypoint

    spec = yaml.safe_load(Path(prefect_file).read_text()) or {}
    return [(load_flow_from_entrypoint(d["entrypoint"]), d) for d in spec.get("deployments") or []]


def stale_pool_deployments(prefect_file: str | Path) -> list[str]:
    """The deployments ('flow/deployment') that `flowcast deploy` registered under its former names, <flow>/<flow>
    (retrain/retrain, forecast/forecast: the `-pool` names of `prefect_file` came in serve40), still on the API in the
    same work pool with an active schedule, not paused: `prefect deploy` registers the new names beside them, so each
    scheduled slot ran twice on the pool's workers, two retrains a week and two forecasts a day (review42). `flowcast
    serve`'s deployments of those names have no work pool and are not named."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    stale: list[str] = []
    with get_client(sync_client=True) as client:
        for flow, d in _file_deployments(prefect_file):
            pool = (d.get("work_pool") or {}).get("name")
            if not pool or d["name"] == flow.name:
                continue
            try:
                old = client.read_deployment_by_name(f"{flow.name}/{flow.name}")
            except ObjectNotFound:
                continue
            if old.work_pool_name == pool and not old.paused and any(s.active for s in old.schedules):
                stale.append(f"{flow.name}/{flow.name}")
    return stale


def stale_sentence(stale: list[str], api_url: str) -> str:
    """What `flowcast deploy` says of `stale_pool_deployments`."""
    from flowcast.wording import listed

    one = len(stale) == 1
    return (f"the Prefect API {api_url} still holds {listed(stale)}, {'the deployment' if one else 'deployments'} "
            f"that `flowcast deploy` registered before its work-pool deployments were named <flow>/<flow>-pool, in the "
            f"same work pool with {'its schedule' if one else 'their schedules'} active: each of "
            f"{'its' if one else 'their'} scheduled runs comes besides the new deployment's, the same slot run twice "
            f"by the pool's workers. Delete {'it' if one else 'them'}: "
            + "; ".join(f"prefect deployment delete {name}" for name in stale))


SCHEDULE_CHECK_S = 30.0
"""How long `flowcast serve` and `flowcast deploy` wait, once they registered schedules on a Prefect server, for its
scheduler service to create their first scheduled runs (it looks at recently changed deployments every 5 s:
PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS)."""


def unscheduled(names: list[str], wait_s: float, every: float = 1.0, after: datetime | None = None) -> list[str]:
    """Of the deployments `names` ('flow/deployment') that have an active schedule and are not paused, those of which
    the Prefect API holds no Scheduled flow run `wait_s` seconds from now (asked every `every` seconds; the call
    returns as soon as each has one). A server started with `--no-services` (or its scheduler service off) schedules
    nothing: its deployments' cron slots never run, without a word from Prefect. A deployment that is not on the API
    is passed over. `after`: only runs of slots at or after it count (a serve creates the runs of the slots before it
    itself, `catch_up_slots`: those say nothing of the server's scheduler)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        waiting = {}
        for name in names:
            try:
                d = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if not d.paused and any(s.active for s in d.schedules):
                waiting[name] = d.id
        while waiting:
            for name, deployment_id in list(waiting.items()):
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                        expected_start_time=FlowRunFilterExpectedStartTime(after_=after)), limit=1)
                if runs or client.read_deployment(deployment_id).paused:  # (paused: a serve stopped meanwhile)
                    del waiting[name]
            if not waiting or time.monotonic() + every > deadline:
                break
            time.sleep(every)
    return list(waiting)


def unscheduled_sentence(names: list[str], api_url: str, waited: float) -> str:
    """What `flowcast serve` and `flowcast deploy` say when the API scheduled no run of `names` (`unscheduled`)."""
    from flowcast.wording import listed

    return (f"the Prefect API {api_url} created no scheduled run of {listed(names)} within {waited:.0f} s of their "
            "schedules being registered: its scheduler service is likely off (`prefect server start --no-services`, "
            "or PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED=false), and then no scheduled run ever starts. Restart the "
            "server with its services (`make server`, or `prefect server start` without --no-services); meanwhile "
            "runs start by hand (`prefect deployment run NAME`, `flowcast run`, `flowcast backfill`)")


def say_if_unscheduled(names: list[str], say: Callable[[str], None], wait_s: float | None = None,
                       after: datetime | None = None) -> None:
    """Say `unscheduled_sentence` when the API at PREFECT_API_URL scheduled no run of some of `names` within `wait_s`
    (default SCHEDULE_CHECK_S), of a slot at or after `after` (`unscheduled`). Nothing without PREFECT_API_URL
    (Prefect's temporary server: a serve schedules its runs itself, `RunScheduler`). Never fails: a check that cannot
    be made is said as such."""
    from prefect.settings import PREFECT_API_URL

    if not (api := PREFECT_API_URL.value()):
        return
    wait_s = SCHEDULE_CHECK_S if wait_s is None else wait_s
    try:
        if missing := unscheduled(names, wait_s, after=after):
            say(unscheduled_sentence(missing, api, wait_s))
    except Exception as exc:  # noqa: BLE001 - the schedules are registered; this is a check of the server
        say(f"could not check that {api} schedules the runs of {', '.join(names)}: {type(exc).__name__}: {exc}")


def offer_configured_datasets(deployments: list[Any], params: dict[str, Any]) -> None:
    """The Run form's dataset list: the bundled datasets plus the [sources.NAME] of the
    configuration these deployments read (`parameters.DatasetChoice` lists the bundled ones); the
    configured dataset is each deployment's default (the form then shows the choices, not `None`)."""
    from flowcast.config import load_settings
    from flowcast.errors import FlowcastError

    try:
        settings = load_settings(params.get("config_file"), home=params.get("home"))
    except (FlowcastError, OSError, ValueError):  # the runs report a broken configuration themselves
        return
    configured = list(settings.sources)
    for d in deployments:
        if "source" not in params:  # the form opens on the configured dataset, its list of choices shown
            d.parameters.setdefault("dataset", settings.dataset)
        schema = getattr(d, "_parameter_openapi_schema", None)
        prop = (getattr(schema, "properties", None) or {}).get("dataset") or {}
        added = False
        for choice in prop.get("anyOf") or [prop]:
            if "enum" in choice:
                more = [n for n in configured if n not in choice["enum"]]
                choice["enum"], added = [*choice["enum"], *more], bool(more)
                if more:  # the list holds configured ones too: 'bundled dataset' was shown over 'shops'
                    choice["title"] = "bundled or configured dataset"
        for choice in (prop.get("anyOf") or []) if added else []:
            if choice.get("type") == "string" and "enum" not in choice:
                choice["title"] = "another dataset, typed in"  # beside the list that names the configured ones


def serve_all(parameters: dict[str, Any] | None = None, limit: int | None = None) -> None:
    """Apply flowcast's automations (when [alerts] webhook_url is configured), then serve all
    deployments from this process until interrupted (Ctrl-C, or one SIGTERM, its runs in flight given
    serve.grace_seconds to end: `serve`)."""
    from prefect.logging import get_logger

    from flowcast.config import load_settings
    from flowcast.ops.automations import ensure
    from flowcast.ops.prefect_runs import ServeVacuum

    params = {k: v for k, v in (parameters or {}).items() if v is not None}
    settings = load_settings(params.get("config_file"), home=params.get("home"))
    # every deployment's runs carry the home (the one this serve reaps: `reap_submitted` knows a run of the home by
    # its `home` parameter); `make serve` gave none, so the runs a killed serve left Pending were never reaped
    params["home"] = str(Path(settings.home).resolve())
    log = get_logger("flowcast.serve")
    ensure(settings, log.info)
    reap_before_serving(settings.home, log.warning)
    clock = server_clock(log.warning, _utc_now)  # a Prefect server's slots are on its clock, not this machine's
    checked = clock()  # the missed slots are those before it; the serve's scheduling starts at it
    say_missed_slots(log.warning, now=checked)
    serve(build_deployments(params), limit=limit, since=checked, clock=clock, grace_seconds=settings.serve.grace_seconds,
          vacuum=ServeVacuum(settings.home, settings.retention.prefect_runs_days, clock=clock))


def _utc_now() -> datetime:
    """This machine's clock, which the serve reads through `server_clock` (the instant its missed-slot check covers up
    to; its catch-up's end; its vacuum's turns: `ops.prefect_runs.ServeVacuum`)."""
    from datetime import UTC

    return datetime.now(UTC)


CLOCK_SKEW_SAID_S = 5.0
"""How far apart the Prefect server's clock and the serve machine's must be for the serve to say so as it starts."""

DATE_SPAN_S = 2.0
"""How long one HTTP `Date` header stays the answer of a server: it is written in whole seconds (truncated), and
uvicorn, which Prefect's server runs on, writes it anew once a second (`Server.on_tick`): a response dated D left the
server between D and D + 2 s."""


def clock_offset(date_header: str | None, sent: datetime, received: datetime) -> timedelta | None:
    """How far the clock of the server whose response carried `date_header` (its HTTP `Date`) is ahead of this
    machine's (negative: behind), for a request sent at `sent` and answered at `received` (this machine's clock):
    the middle of the span the header stands for (DATE_SPAN_S) less the middle of the request. Zero where the two
    agree as far as the header can tell (within half that span and half the request's time). None where the header
    is missing or is no HTTP date."""
    from datetime import UTC
    from email.utils import parsedate_to_datetime

    if not date_header:
        return None
    try:
        dated = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if dated.tzinfo is None:  # ('-0000': UTC, no zone said; an HTTP date is GMT)
        dated = dated.replace(tzinfo=UTC)
    half = timedelta(seconds=DATE_SPAN_S / 2)
    offset = dated + half - (sent + (received - sent) / 2)
    return timedelta(0) if abs(offset) <= half + (received - sent) / 2 else offset


def server_offset(clock: Callable[[], datetime] = _utc_now) -> timedelta | None:
    """How far the clock of the Prefect API at PREFECT_API_URL is ahead of `clock` (this machine's; negative: behind),
    read once from the `Date` header of its answer to `GET /hello` (`clock_offset`); None where it has no such
    header."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        sent = clock()
        answer = client.hello()
        received = clock()
    return clock_offset(answer.headers.get("date"), sent, received)


def skew_sentence(offset: timedelta) -> str | None:
    """What a serve says as it starts of a Prefect server's clock `offset` from its machine's (`server_offset`), when
    it is more than CLOCK_SKEW_SAID_S either way."""
    seconds = offset.total_seconds()
    if abs(seconds) <= CLOCK_SKEW_SAID_S:
        return None
    return (f"the Prefect server's clock is {abs(seconds):.0f} s {'ahead of' if seconds > 0 else 'behind'} this "
            "machine's: the serve reads the schedules' slots (missed, overdue, caught up) on the server's clock")


def server_clock(say: Callable[[str], None], clock: Callable[[], datetime] = _utc_now) -> Callable[[], datetime]:
    """The serve's now on the Prefect server's clock: `clock` (this machine's) plus the server's offset from it, read
    once (`server_offset`) and said when large (`skew_sentence`). A serve more than about 30 s behind its server lost
    a slot (its check and catch-up ended before the server's scheduler began), one ahead named future slots missed.
    `clock` itself without PREFECT_API_URL (Prefect's temporary server runs on this machine), and where the server
    says no time (no `Date` header) or cannot be asked, with one debug line."""
    from prefect.logging import get_logger
    from prefect.settings import PREFECT_API_URL

    if not (api := PREFECT_API_URL.value()):
        return clock
    try:
        offset = server_offset(clock)
    except Exception as exc:  # noqa: BLE001 - the serve's own calls say what is wrong with the API
        offset, why = None, f"{type(exc).__name__}: {exc}"
    else:
        why = "its answer carried no readable HTTP Date header"
    if offset is None:
        get_logger("flowcast.serve").debug("could not read the time of the Prefect API %s (%s); the serve reads "
                                           "this machine's clock", api, why)
        return clock
    if sentence := skew_sentence(offset):
        say(sentence)

    def now() -> datetime:
        return clock() + offset

    return now


def serve(deployments: list[Any], *, limit: int | None = None, vacuum: ServeVacuum | None = None,
          since: datetime | None = None, clock: Callable[[], datetime] = _utc_now, grace_seconds: float = 0.0) -> None:
    """`prefect.serve(*deployments, limit=limit)` with a runner that one SIGTERM stops (`stopping_runner`). Serving,
    a SIGTERM ends it with exit 0: no new flow run is taken, those in flight (those taken whose process has not
    started included) get up to `grace_seconds` to end (a second SIGTERM or a Ctrl-C ends that grace), then those
    still running are cancelled (Cancelled, IN_FLIGHT_STOP_MESSAGE, NO_GRACE_STOP_MESSAGE where `grace_seconds` is 0;
    Prefect's runner cancels them at once, 'Runner is shutting down.'), those still not started too
    (`cancel_taken_unstarted`), and the deployments
    paused (their schedules stop until the next serve). On Prefect's
    temporary server (no PREFECT_API_URL), which runs no scheduler, the serve schedules its deployments' runs itself
    (`RunScheduler`): without it their cron slots never fired; and vacuums its old flow runs there (`vacuum`, at the
    scheduler's turns: `ops.prefect_runs.ServeVacuum`), which nothing but `flowcast gc` did. `since`: the instant the
    missed-slot check covered up to (`say_missed_slots`); the scheduler's first turn schedules from it, so that a slot
    between the check and that turn is run, not lost. On a Prefect server (PREFECT_API_URL), whose scheduler service
    schedules the deployments from the instant it looks at them, after their registration, the serve creates the runs
    of the slots from `since` to SCHEDULE_CHECK_S after the registration (`clock`: `serve_all` gives the server's,
    `server_clock`) itself, then checks that the server schedules the later ones (`settle_schedules`). Its stop
    cancels the runs of its slots from `since` that had not started (`cancel_unstarted_slots`), which the pause of its
    deployments leaves. A SIGTERM as it registers its deployments stops it at once (`register`), those it registered
    paused."""
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.flows import _display_serve_start_message
    from prefect.logging import get_logger
    from prefect.settings import temporary_settings

    catch_up: CatchUp | None = None
    with temporary_settings(temporary := api_for_runs()):
        runner = stopping_runner()(pause_on_shutdown=True, limit=limit)
        runner.grace_seconds = grace_seconds
        take_sigterm(runner)  # a SIGTERM while it registers stops it once started, what it registered paused
        ids = register(runner, deployments, since)
        if not runner.stop_pending:
            _display_serve_start_message(*deployments)
        if since is not None:  # the runs of its slots from `since` not started as it stops are cancelled (tempapi46)
            runner.slots = ([i for i, schedules in ids if schedules], since)
        if temporary:  # stopped before the runner pauses the deployments (StoppingRunner._pause_schedules)
            runner.scheduler = RunScheduler([i for i, schedules in ids if schedules], vacuum=vacuum, since=since)
        elif not runner.stop_pending:  # the slots since the check (soak45), a server that never runs a schedule (serve40)
            import threading

            scheduled = [(i, f"{d.flow_name}/{d.name}") for (i, schedules), d in zip(ids, deployments, strict=True)
                         if schedules]
            until = clock() + timedelta(seconds=SCHEDULE_CHECK_S)
            runner.catch_up = catch_up = CatchUp()  # stopped before the runner pauses the deployments (revB45)
            threading.Thread(target=settle_schedules, args=(scheduled, since, until, get_logger("flowcast.serve").warning),
                             kwargs={"catch_up": catch_up}, name="flowcast-schedule-check", daemon=True).start()
        try:
            asyncio.run(_serving(runner))
        except (KeyboardInterrupt, TerminationSignal) as exc:
            get_logger("flowcast.serve").info("Received %s, shutting down...", type(exc).__name__)
        finally:
            end_catch_up(catch_up, get_logger("flowcast.serve").warning)
            spare_exit_collection()


REGISTERING_STOP_SAID = ("SIGTERM received as the serve registers its deployments: it stops now, those it registered "
                         "paused, the others not registered")
REGISTER_CUT_WAIT_S = 5.0
"""How long a serve stopped as it registers waits for the registration under way to end once cut off (`register`)."""


SIGNAL_POLL_S = 0.2
"""How often the serve's main thread, waiting for a thread of its own (`wait_awake`), wakes to run its signal handlers."""
SECOND_SIGNAL_SAID = "{signal} received as the serve stops: the stop under way ends as it was"
GRACE_SAID = ("SIGTERM received: the serve takes no new flow run and gives its {n} in flight up to {grace:g} s "
              "(serve.grace_seconds) to end, then cancels those still running, pauses its deployments and exits; a "
              "second SIGTERM or Ctrl-C cancels them now")
GRACE_ENDED_SAID = "the serve's flow runs in flight have ended within its grace period: it stops"
GRACE_OVER_SAID = ("{n} flow run(s) still running at the end of the serve's grace period ({grace:g} s, "
                   "serve.grace_seconds): cancelled now")
GRACE_CUT_SAID = "{signal} received during the serve's grace period: its flow runs in flight are cancelled now"
EXITING_SAID = ("SIGTERM received as the serve exits: its clean-up (its temporary server's stop, seconds at most) ends "
                "first, then it exits")


def wait_awake(event: Any, timeout: float | None = None) -> bool:
    """`event` (a threading.Event) waited for, `timeout` s at most (None: no limit), waking every SIGNAL_POLL_S; whether
    it was set. Linux hands a process's signal to any of its threads: one handed to another thread runs its Python
    handler only once the main thread runs Python again, and a plain `event.wait()` in the main thread slept through
    it (a Ctrl-C or SIGTERM during a hung registration took effect only once the registration ended, 40 s on, revF47)."""
    waits = None if timeout is None else max(1, math.ceil(timeout / SIGNAL_POLL_S))
    while not event.wait(SIGNAL_POLL_S):
        if waits is not None and (waits := waits - 1) <= 0:
            return False
    return True


class Unsettled:
    """The deployment whose registration was under way as a stop cut it off, or failed (`register`): the Prefect API
    may hold it all the same, unpaused, and, while the registration's thread has not ended (`ended`, a threading.Event),
    may yet get it (a registration sends the deployment unpaused: it would undo a pause). The stop pauses it by its name
    (`pause_deployments`, `pause_registered`) and names it where the registration still had not ended; its id, once
    that pause found it (`held`), has the stop cancel its slots' unstarted runs with the others' (they stayed Scheduled,
    for the next serve to run late, serve49)."""

    def __init__(self, name: str, ended: Any) -> None:
        self.name = name  # 'flow/deployment'
        self.ended = ended
        self.held: list[Any] = []  # its id, once the stop's pause read it (`pause_by_name`)

    def still_under_way(self) -> str | None:
        """Why the deployment may be left unpaused whatever the stop paused: its registration had not ended."""
        if self.ended.is_set():
            return None
        return (f"its registration had not ended {REGISTER_CUT_WAIT_S:g} s after it was cut off: the Prefect API "
                "may register it after this stop, unpaused")


def register(runner: Any, deployments: list[Any], since: datetime | None = None) -> list[tuple[Any, Any]]:
    """Each of `deployments` registered with `runner` (`StoppingRunner`), in turn: (its id, its schedules). The
    registration runs in a thread of its own while this one waits, so that a SIGTERM (`runner.handle_sigterm`, which
    raises Prefect's TerminationSignal while `runner.registering`) ends the wait at once: the registration under way
    is cancelled (waited for REGISTER_CUT_WAIT_S at most) and the rest not begun, and those registered are returned,
    for the runner to stop at once and pause them (`runner.stop_pending`), the one cut off with them where the API has
    it (`runner.unsettled`, `Unsettled`: one pause step, the stop's, whose word is the last; the registration's thread
    paused it itself, and past the cut's wait it could still be pausing, or registering, after the stop said that all
    was paused, or be cut off by the exit, unsaid). A SIGTERM during a slow or hung registration was noted only: the
    serve stopped once the registration ended, and exited 1 where it failed (revD47). A Ctrl-C cuts it off so too,
    pauses those registered and the one cut off (`pause_registered`: it left them unpaused, serveC47) and is raised.
    An error of the registration is raised, those registered before it and the one that failed (where the API has it)
    paused first (`pause_registered`: the serve ends, and a registration sends its deployment unpaused: those a stopped
    serve had paused went on being scheduled, for the next serve to run late), unless a SIGTERM stopped the serve: then
    it is logged, naming the deployment (it went unsaid), as is one that comes after the cut's wait. Where the serve
    ends so (a Ctrl-C, an error), the runs of their slots from `since` (`serve`) that had not started are cancelled once
    they are paused (`cancel_unstarted_slots`), as a SIGTERM's stop cancels them: they stayed Scheduled on the paused
    deployments, and the next serve ran them late (serveB49)."""
    import asyncio
    import threading

    from prefect.exceptions import TerminationSignal
    from prefect.logging import get_logger

    log = get_logger("flowcast.serve")
    ids: list[tuple[Any, Any]] = []
    cut, ended, under_way = threading.Event(), threading.Event(), []
    pending: list[str] = []  # the deployment whose registration is under way (or failed, or was cut off)
    failed: list[tuple[str, BaseException]] = []
    told = threading.Lock()  # (a failure is the serve thread's to raise or say, or, once it went on, this thread's)
    went_on: list[bool] = []

    async def each() -> None:
        under_way.append((asyncio.get_running_loop(), asyncio.current_task()))
        for deployment in deployments:
            if cut.is_set():
                return
            pending[:] = [f"{deployment.flow_name}/{deployment.name}"]
            ids.append((await runner.aadd_deployment(deployment), deployment.schedules))
            pending.clear()

    def run() -> None:
        try:
            asyncio.run(each())
        except asyncio.CancelledError:  # (cut off: the stop pauses it where the API has it)
            pass
        except BaseException as exc:  # noqa: BLE001 - raised or said in the serve's thread, or said here
            with told:
                if not went_on:
                    failed.append((under_way_name(), exc))
                else:
                    log.warning(registration_failed_said(under_way_name(), exc, late=True))
        finally:
            ended.set()

    def under_way_name() -> str:
        return pending[0] if pending else "its deployments"

    def cut_off() -> None:
        cut.set()
        for loop, task in under_way:
            if task is not None:
                with suppress(RuntimeError):  # (its loop closed: the registration ended as the signal came)
                    loop.call_soon_threadsafe(task.cancel)
        wait_awake(ended, REGISTER_CUT_WAIT_S)

    def unsettled() -> Unsettled | None:
        return Unsettled(pending[0], ended) if pending else None

    async def pause_then_cancel(cut: Unsettled | None) -> None:  # (the serve ends: a Ctrl-C, or an error)
        await pause_registered([f"{d.flow_name}/{d.name}" for d in deployments[:len(ids)]], log.warning, cut)
        if since is not None:
            await cancel_unstarted_slots(slot_deployments([i for i, schedules in ids if schedules], cut), since)

    try:
        runner.registering = True  # (in the try: a SIGTERM once it is set raises here)
        threading.Thread(target=run, name="flowcast-register", daemon=True).start()
        wait_awake(ended)
    except TerminationSignal:
        try:
            cut_off()
        except KeyboardInterrupt:  # (a Ctrl-C as it ends: the SIGTERM's stop goes on, what was registered paused)
            log.info(SECOND_SIGNAL_SAID.format(signal="Ctrl-C"))
    except KeyboardInterrupt:  # Ctrl-C: those registered paused here (a SIGTERM's runner pauses them), then it ends
        log.info(REGISTERING_CTRL_C_SAID)
        runner.registering, runner.ending = False, True  # (a SIGTERM now lets this stop end: `handle_sigterm`)
        cut_off()
        with told:
            went_on.append(True)
            errors = list(failed)
        for name, exc in errors:
            log.warning(registration_failed_said(name, exc))
        asyncio.run(pause_then_cancel(unsettled()))
        raise
    finally:
        runner.registering = False
    with told:
        went_on.append(True)
        errors = list(failed)
    if errors and not runner.stop_pending:  # those registered paused: the serve ends (a registration unpauses them)
        asyncio.run(pause_then_cancel(unsettled()))
        raise errors[0][1]
    for name, exc in errors:
        log.warning(registration_failed_said(name, exc))
    if runner.stop_pending:
        runner.unsettled = unsettled()
    return list(ids)


def registration_failed_said(name: str, exc: BaseException, late: bool = False) -> str:
    """The warning that the registration of the deployment `name` failed (`exc`) as the serve stopped, or, `late`,
    once the stop had gone on without it (`register`'s wait for it ended: the stop named it, `Unsettled`)."""
    if late:
        return (f"the registration of {name}, cut off by the serve's stop, failed after the stop went on without it: "
                f"{type(exc).__name__}: {exc}")
    return (f"the registration of {name} failed as the serve stopped: {type(exc).__name__}: {exc}; the stop pauses it "
            "where the Prefect API has it")


async def pause_if_registered(name: str, log: Callable[[str], Any] | None = None, held: list[Any] | None = None) -> None:
    """The deployment `name` ('flow/deployment') paused, where the Prefect API has it, within PAUSE_WAIT_S, its client's
    opening and closing included: where that fails or the API does not answer in time, and the deployment, read again
    (within PAUSE_WAIT_S too, the client that reads it included), is not paused (a pause whose answer timed out may have
    been applied: it was said left unpaused), said on `log` (the serve's warning) and the stop goes on. The client of
    that second read was opened outside the limit: an API that hung there hung the stop (serve49). Its id is appended
    to `held`, where given, as its pause is asked (`pause_by_name`)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.logging import get_logger

    sent: list[Any] = [] if held is None else held  # (its id, once its pause is asked)

    async def pause() -> None:
        async with get_client() as client:
            await pause_by_name(client, name, sent)

    async def still_unpaused() -> bool:
        async with get_client() as client:
            return bool(await unpaused(client, {sent[0]: name}))

    try:
        await asyncio.wait_for(pause(), PAUSE_WAIT_S)
    except Exception as exc:  # noqa: BLE001 - the stop goes on; what is left unpaused is said
        if sent:
            with suppress(Exception):  # (no answer, or an error: it cannot tell, and says it left unpaused)
                if not await asyncio.wait_for(still_unpaused(), PAUSE_WAIT_S):
                    return
        (log or get_logger("flowcast.serve").warning)(unpaused_said([name], pause_failure(exc)))


async def pause_by_name(client: Any, name: str, held: list[Any]) -> None:
    """The deployment `name` ('flow/deployment') paused by `client`, where the Prefect API has it; its id appended to
    `held` as its pause is asked (a pause that then fails is read again: `unpaused`)."""
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = await client.read_deployment_by_name(name)
    except ObjectNotFound:
        return
    held.append(deployment.id)
    await client.pause_deployment(deployment.id)


async def unpaused(client: Any, names: dict[Any, str]) -> dict[Any, str]:
    """Of the deployments `names` (id: 'flow/deployment') whose pause failed or had no answer in time, those the Prefect
    API, read again (within PAUSE_WAIT_S, all in one request), does not hold paused: a pause the API applied but
    answered late is not left unpaused. All of them where the read fails."""
    import asyncio

    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    if not names:  # (nothing asked of an API that may hang)
        return {}
    try:
        read = await asyncio.wait_for(client.read_deployments(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(names)))), PAUSE_WAIT_S)
    except Exception:  # noqa: BLE001 - it cannot tell: they are said left unpaused
        return dict(names)
    paused = {d.id for d in read if d.paused}
    return {i: name for i, name in names.items() if i not in paused}


async def pause_deployments(client: Any, names: dict[Any, str], unsettled: Unsettled | None = None) -> None:
    """Each of the deployments `names` (id: 'flow/deployment') paused by `client`, then `unsettled` (a registration
    the stop cut off) by its name where the API has it (`pause_by_name`), within PAUSE_WAIT_S each, every one tried
    though one before it failed; those left unpaused raised, each named with why (DeploymentsLeftUnpaused): those whose
    pause failed and that the API, read again (`unpaused`), does not hold paused (a pause applied but answered late was
    said left unpaused), and `unsettled` where its registration had not ended (`Unsettled.still_under_way`). The stop's
    pause (Prefect's Runner._pause_schedules) had no limit beyond the client's own on a hung API, and gave up at the
    first that failed, naming none."""
    import asyncio
    from functools import partial

    async def failure(step: Awaitable[None]) -> str | None:
        try:
            await asyncio.wait_for(step, PAUSE_WAIT_S)
        except Exception as exc:  # noqa: BLE001 - the others are paused all the same; this one is named
            return pause_failure(exc)
        return None

    each: list[tuple[str, list[Any], Callable[[], Awaitable[None]]]] = []  # (name, [its id] once known, its pause)
    for deployment_id, name in names.items():
        each.append((name, [deployment_id], partial(client.pause_deployment, deployment_id)))
    if unsettled is not None:
        each.append((unsettled.name, unsettled.held, partial(pause_by_name, client, unsettled.name, unsettled.held)))
    whys = [await failure(start()) for _, _, start in each]
    still = await unpaused(client, {held[0]: name for (name, held, _), why in zip(each, whys, strict=True)
                                    if why is not None and held})
    left = {k: why for k, ((_, held, _), why) in enumerate(zip(each, whys, strict=True))
            if why is not None and (not held or held[0] in still)}
    if unsettled is not None and len(each) - 1 not in left and (why := unsettled.still_under_way()):
        left[len(each) - 1] = why
    if left:
        named = "; ".join(f"{each[k][0]} ({why})" for k, why in left.items())
        raise DeploymentsLeftUnpaused(f"{len(left)} of {len(each)} left unpaused: {named}")


def slot_deployments(ids: list[Any], unsettled: Unsettled | None) -> list[Any]:
    """The deployments whose unstarted slot runs a serve's stop cancels (`cancel_unstarted_slots`): those it
    registered with schedules (`ids`), and the one whose registration it cut off or that failed (`unsettled`) where its
    pause found it on the Prefect API (`Unsettled.held`)."""
    return [*ids, *(unsettled.held if unsettled is not None else [])]


class DeploymentsLeftUnpaused(RuntimeError):
    """The serve's stop could not pause these deployments (`pause_deployments`)."""


def pause_failure(exc: BaseException) -> str:
    """Why a deployment's pause failed: no answer in PAUSE_WAIT_S, or the error."""
    return f"no answer in {PAUSE_WAIT_S:g} s" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"


async def pause_registered(names: list[str], log: Callable[[str], Any], unsettled: Unsettled | None = None) -> None:
    """Each of the deployments `names`, and `unsettled` (the registration cut off), paused (`pause_if_registered`:
    within PAUSE_WAIT_S each; one left unpaused said on `log`, as is `unsettled` where its registration had not
    ended: `Unsettled.still_under_way`); the id of `unsettled`, where the API has it, put in its `held`."""
    for name in names:
        await pause_if_registered(name, log)
    if unsettled is not None:
        await pause_if_registered(unsettled.name, log, unsettled.held)
    if unsettled is not None and (why := unsettled.still_under_way()):
        log(unpaused_said([unsettled.name], why))


PAUSE_WAIT_S = 5.0
"""How long a serve's stop waits for the Prefect API to pause one deployment (`pause_if_registered`)."""
REGISTERING_CTRL_C_SAID = ("Ctrl-C received as the serve registers its deployments: it stops now, those it "
                           "registered paused, the others not registered")


def unpaused_said(names: list[str], why: str) -> str:
    """The warning that the serve's stop left the deployments `names` unpaused (`why`), and what to do."""
    return (f"the serve's stop could not pause {', '.join(names)} ({why}): left unpaused, it goes on being "
            "scheduled and the next serve runs its runs late: pause it in the UI")


EARLY_STOP_SAID = ("SIGTERM received as the serve starts, before it registered its deployments: it stops now, "
                   "nothing registered")


@contextmanager
def early_sigterm_stops(exits: bool = False) -> Iterator[None]:
    """A SIGTERM in the block before the serve's runner takes the signal over (`take_sigterm`: while the serve takes
    its lock, starts Prefect's temporary server, reaps and checks its slots) stops the serve as a later one does: it
    is raised (Prefect's TerminationSignal) out of whatever it landed in, so that the locks, the command's claim and
    the temporary server are let go on the way out (Prefect's atexit hook stops the server), then said
    (EARLY_STOP_SAID) and the block ends without error: exit 0. Python's default handling killed the serve there,
    exit 143 (serve47). Later SIGTERMs of that stop are ignored (its cleanup finishes). The handler SIGTERM had before
    the block is its handler again after it, whoever handled it meanwhile (the serve's runner: `take_sigterm`); it was
    left installed, and a SIGTERM after a serve returned (a caller's, a test's) was raised as the serve's stop or sent
    to a stopped runner. `exits`: the process ends with the block (`flowcast serve`, deployments/serve.py): SIGTERM is
    then said and ignored until it has exited (`said_as_exit`), rather than given back its former handler: a second
    SIGTERM as the serve exited (Prefect's temporary server stopping, in Python's exit hooks) fell to Python's default
    handling, exit 143, the clean-up cut off (serve49). That is a stop's exit (the block ended, or a SIGTERM or Ctrl-C
    stopped it): where the block failed (an error out of `serve_all`), SIGTERM has its former handler back, as
    without `exits`, rather than being ignored in an exit that may hang on what failed (only a SIGKILL ended it).
    Only the main thread may set a handler: elsewhere the block runs as it is."""
    import signal
    import threading

    from prefect.exceptions import TerminationSignal
    from prefect.logging import get_logger

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if not raised:
            raised.append(signum)
            raise TerminationSignal(signum)

    before = signal.signal(signal.SIGTERM, stop)
    failed = False
    try:
        yield
    except TerminationSignal:
        if not raised:  # (not ours: the runner's, a run's)
            raise
        get_logger("flowcast.serve").info(EARLY_STOP_SAID)
    except Exception:
        failed = True
        raise
    finally:
        # (None: not set from Python)
        signal.signal(signal.SIGTERM, said_as_exit if exits and not failed else signal.SIG_DFL if before is None
                      else before)


def said_as_exit(*_: Any) -> None:
    """SIGTERM's handler once a serve has stopped and its process exits (`early_sigterm_stops(exits=True)`,
    `StoppingRunner.handle_sigterm` once its stop is done): said (EXITING_SAID) and ignored, so that the clean-up under
    way, bounded (the temporary server's stop: 5 s, then killed; the wait for a catch-up: CATCH_UP_EXIT_WAIT_S), ends
    and the process exits 0, its server stopped; a supervisor's SIGKILL (systemd's TimeoutStopSec, Kubernetes'
    grace period) still ends it at once. Prefect's handler exited in the middle of the clean-up (sys.exit(0)), and
    once the serve's block had ended, Python's default handling killed it, exit 143 (serve49)."""
    from prefect.logging import get_logger

    get_logger("flowcast.serve").info(EXITING_SAID)


def take_sigterm(runner: Any) -> None:
    """SIGTERM handled by `runner`'s handler (`stopping_runner`) from now on, before the serve registers its
    deployments, rather than from `runner.start` on: a SIGTERM while the serve registered them (seconds on a loaded
    machine) killed it (exit 143), its deployments registered and not paused, and the next serve ran their slots late
    as a killed serve's (serveB46). The runner, not yet started, now stops as soon as it has started, as a SIGTERM
    while it starts stops it: exit 0, its deployments paused. Only the main thread may set a handler (Runner.start
    sets it there only too)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, runner.handle_sigterm)


def spare_exit_collection() -> None:
    """The serve is ending: its objects (about 650,000 once Prefect, torch and polars are imported) are moved out of the
    garbage collector's sight (`gc.freeze`), so that the collection Python runs as the process exits does not walk
    them. That walk held a stopped serve 4 to 8 s after its server had stopped (soak44: SIGTERM to exit 11 to 14 s, a
    faulthandler dump in those seconds showing 'Garbage-collecting'; Docker's stop kills at 10 s); frozen, the exit
    takes under 1 s. Nothing is lost: the objects go as the interpreter ends, as they did."""
    import gc

    gc.freeze()


async def _serving(runner: Any) -> None:
    """The runner started, and its `scheduler` (if any) beside it until the runner stops."""
    if runner.scheduler is not None:
        runner.scheduler.start()
    try:
        await runner.start()
    finally:
        if runner.scheduler is not None:
            await runner.scheduler.stop()


async def schedule_runs(client: Any, deployment_ids: list[Any], start: datetime | None = None,
                        end: datetime | None = None, stopped: Callable[[], bool] | None = None) -> None:
    """Have the API schedule each deployment's runs once (`POST /deployments/{id}/schedule`: the runs Prefect's
    scheduler service creates, its idempotency key 'scheduled <deployment> <schedule> <slot>' included, so a slot that
    service or an earlier call scheduled already gets no second run), from `start` on (inclusive; default the API's
    now) to `end` (inclusive; default Prefect's scheduler settings: the next hour, 3 runs at least, 100 at most); not a
    paused deployment's (paused in the UI: Prefect's scheduler skips it). None posted once `stopped()` (the serve's stop,
    `CatchUp`), which is asked before each post."""
    body = {k: v.isoformat() for k, v in (("start_time", start), ("end_time", end)) if v is not None}
    for deployment_id in deployment_ids:
        if (await client.read_deployment(deployment_id)).paused:
            continue
        if stopped is not None and stopped():
            return
        made = await client.request("POST", "/deployments/{id}/schedule", path_params={"id": deployment_id},
                                    json=body)
        made.raise_for_status()


def catch_up_slots(deployment_ids: list[Any], since: datetime, until: datetime,
                   stopped: Callable[[], bool] | None = None) -> None:
    """Create, on the Prefect API at PREFECT_API_URL, the runs of the deployments' cron slots from `since` (inclusive)
    to `until` (exclusive), as Prefect's scheduler service creates them (`schedule_runs`: a slot it schedules too has
    one run). That service schedules a deployment from the instant it looks at it (every 5 s the deployments changed
    in the last 6 s, every 60 s those short of runs), never a slot before; a registration deletes the deployment's
    future scheduled runs, and a stopped serve's pause deleted them already: a slot between a serve's missed-slot check
    and the service's first look after the serve registered its deployments was neither run nor named (soak45). No post
    once `stopped()` (`schedule_runs`)."""
    import asyncio

    from prefect.client.orchestration import get_client

    async def scheduled() -> None:
        async with get_client() as client:  # (the API's `end_time` is inclusive: a slot at `until` is the server's)
            await schedule_runs(client, deployment_ids, since, until - timedelta(microseconds=1), stopped)

    asyncio.run(scheduled())


class CatchUp:
    """The catch-up of a serve on a Prefect server (`settle_schedules`, in a thread of its own) and that serve's stop,
    one after the other, never both at once: the stop (`StoppingRunner._pause_schedules`, before it pauses the
    deployments) waits for a catch-up under way to end, and a catch-up after the stop creates nothing. Without it a
    catch-up that read a deployment not yet paused posted its slots after the pause (Prefect's `POST
    /deployments/{id}/schedule` schedules a paused deployment too): Scheduled runs left on paused deployments, which
    the next serve's runner ran, unasked, however late. The catch-up asks before each post whether the serve stopped
    (`schedule_runs`); a stop that gave up waiting (`timeout`: its requests hang) has the catch-up's end cancel again
    what it posted late (`then`): a post in flight as the stop cancelled stayed Scheduled (revA46)."""

    def __init__(self, timeout: float = 3.0) -> None:
        import threading

        self._lock = threading.Lock()
        self._guard = threading.Lock()  # (its busy flag and what its end runs: `then`)
        self._busy = False
        self._late: Callable[[], object] | None = None
        self.stopped = False
        self.timeout = timeout

    def run(self, work: Callable[[], None]) -> bool:
        """`work()` unless the serve stopped, then what a stop left for its end (`then`); whether it ran."""
        with self._lock:
            if self.stopped:
                return False
            with self._guard:
                self._busy = True
            try:
                work()
            finally:
                with self._guard:
                    self._busy, late, self._late = False, self._late, None
                if late is not None:
                    late()
            return True

    def stop(self, timeout: float | None = None) -> bool:
        """No catch-up from now on; returns once the one under way ended (its requests take well under a second on a
        reachable server), or after `timeout` seconds (default `self.timeout`; its requests hang: the serve stops all
        the same; the rest of a stop takes 6-8 s with a run in flight, and Docker's stop kills at 10 s: 10 s here left
        the pause none); whether none is under way now."""
        self.stopped = True
        if self._lock.acquire(timeout=self.timeout if timeout is None else timeout):
            self._lock.release()
            return True
        return False

    def then(self, work: Callable[[], object]) -> bool:
        """`work()` run, in the catch-up's thread, as the catch-up under way ends; False (and not run) where none is."""
        with self._guard:
            if not self._busy:
                return False
            self._late = work
            return True


CATCH_UP_EXIT_WAIT_S = 5.0
"""How long a serve's exit waits for a catch-up whose request outlasted its stop's wait (`CatchUp.timeout`), so that
the catch-up's own cancel of what it posted late (`CatchUp.then`) is done before the process ends."""


def end_catch_up(catch_up: CatchUp | None, say: Callable[[str], None], timeout: float = CATCH_UP_EXIT_WAIT_S) -> bool:
    """As a serve exits: wait up to `timeout` s for its catch-up under way (none: at once) to end, its late cancel
    included (`CatchUp.then`); its thread is a daemon, and the process's exit during a hung post cut that cancel off,
    leaving what the post created Scheduled on the paused deployments for the next serve to run unasked (serve47).
    One still under way then is said (what it posts later stays Scheduled: the next serve runs it late); whether none
    is."""
    if catch_up is None or catch_up.stop(timeout):
        return True
    say(f"the catch-up of this serve's slots still waited for the Prefect API {timeout:.0f} s after the serve stopped: "
        "runs it creates after this exit stay Scheduled on the paused deployments, and the next serve runs them late")
    return False


async def cancel_unstarted_slots(deployment_ids: list[Any], since: datetime, limit: int | None = None) -> int | None:
    """As a serve stops, once its deployments are paused: the runs of their slots from `since` (the instant its
    scheduling started from, `serve`) that had not started (still Scheduled, Late or AwaitingConcurrencySlot;
    auto-scheduled: not a run someone asked for) are cancelled, saying so (UNSTARTED_STOP_MESSAGE: they carried the
    message of the runs its stop cancelled in flight, Prefect's 'Runner is shutting down.', serve47), and said in one
    line of its log; how many, None where the API failed before any was cancelled (said: `sweep_late_runs` stops on
    it). The pause deletes only their future runs:
    a serve stopped within seconds of its start (before its runner's first poll, every 10 s) left the catch-up's runs
    of the slots already due Scheduled on the paused deployments, and the next serve ran them, unasked and late,
    saying that a killed serve had left them. Cancelled so, the next serve names their slots missed, with the
    backfill that publishes them (`last_slot_run`), as it names the slots of runs cancelled in flight. The runs of
    slots before `since` (overdue: an earlier, killed serve left them) stay for the runner to run. Read `limit` at a
    time (by default the server's page size), by key as `slot_run_pages` reads (`slot_run_filter`, `next_slot_key`):
    by offset, a run posted late while it read shifted the pages, and one was skipped or read, and counted, twice.
    Never fails the stop: what cannot be done is said; a cancel that fails partway says how many it cancelled, and
    the slots of those it did not (it said 0 though some were, revD47)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.logging import get_logger
    from prefect.states import Cancelled

    from flowcast.flows.naming import name_unstarted
    from flowcast.timekeys import utc_text

    log = get_logger("flowcast.serve")
    left: list[Any] = []
    before: datetime | None = None  # the keyset (`next_slot_key`): none yet
    read_at_before: list[Any] = []
    runs: list[Any] = []
    done: list[Any] = []
    refused: list[Any] = []  # (the API would not: one that started meanwhile)
    failed = False
    try:
        async with get_client() as client:
            while page := await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)),
                    flow_run_filter=slot_run_filter(True, before, since, read_at_before),
                    sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit):
                left += page
                before, read_at_before = next_slot_key(page, before, read_at_before)
            runs = sorted((r for r in left if r.auto_scheduled), key=lambda r: r.expected_start_time)
            for r in runs:
                set_to: Any = await client.set_flow_run_state(r.id, Cancelled(message=UNSTARTED_STOP_MESSAGE))
                (done if set_to.status == SetStateStatus.ACCEPT else refused).append(r)
                if set_to.status == SetStateStatus.ACCEPT:
                    await name_unstarted(client, r)
    except Exception as exc:  # noqa: BLE001 - the serve stops all the same; the next serve runs what is left, late
        if not runs:  # (it failed reading them)
            log.warning("could not cancel the scheduled runs of this serve's slots from %s that had not started: "
                        "%s: %s", utc_text(since), type(exc).__name__, exc)
        else:  # (one cancel failed: those before it were cancelled, it and those after it were not)
            kept = runs[len(done) + len(refused):]
            log.warning("could not cancel %d of the %d scheduled runs of this serve's slots from %s that had not "
                        "started (%s; %d cancelled): %s: %s; they stay Scheduled on the paused deployments, and the "
                        "next serve runs them late", len(kept), len(runs), utc_text(since), _slot_span(kept),
                        len(done), type(exc).__name__, exc)
        failed = True
    if done:
        log.info("cancelled %d scheduled run(s) of this serve's slots (%s) that had not started as it stopped: the "
                 "next serve names them missed, with the backfill that publishes them", len(done), _slot_span(done))
    return len(done) or (None if failed else 0)


def _slot_span(runs: list[Any]) -> str:
    """The slots of `runs` (by expected start, earliest first) as a UTC span: 'first to last', or the one."""
    from flowcast.timekeys import utc_text

    span = utc_text(runs[0].expected_start_time)
    return span + (f" to {utc_text(runs[-1].expected_start_time)}" if len(runs) > 1 else "")


def settle_schedules(deployments: list[tuple[Any, str]], since: datetime | None, until: datetime,
                     say: Callable[[str], None], catch_up: CatchUp | None = None) -> None:
    """After a serve registered `deployments` ((id, 'flow/deployment') of those with a schedule) on the Prefect server
    at PREFECT_API_URL: the runs of their slots from `since` (the instant its missed-slot check covered up to; none
    when None) to `until` created (`catch_up_slots`; through `catch_up`, the serve's: nothing once it stops), then
    `say_if_unscheduled` of the runs of the slots from `until` on, which only the server's scheduler service creates.
    Never fails: what cannot be done is said."""
    names = [name for _, name in deployments]
    if since is not None:
        try:
            ours = catch_up or CatchUp()
            ours.run(lambda: catch_up_slots([i for i, _ in deployments], since, until, lambda: ours.stopped))
        except Exception as exc:  # noqa: BLE001 - the serve serves on; its later slots are the server's
            from flowcast.timekeys import utc_text

            say(f"could not schedule the slots of {', '.join(names)} from {utc_text(since)} to {utc_text(until)} on "
                f"the Prefect API: {type(exc).__name__}: {exc}; a slot among them that the server's scheduler did "
                "not schedule does not run (`flowcast backfill` publishes it)")
    say_if_unscheduled(names, say, after=until if since is not None else None)


class RunScheduler:
    """What Prefect's scheduler service does, for the deployments of a serve on Prefect's temporary server: that server
    runs no scheduler (Prefect starts it 'ephemeral', with only the services marked to run there; the scheduler is
    not), so nothing created the runs of a cron's slots and a `flowcast serve` without PREFECT_API_URL never ran one
    (proc32: a deployment every 5 s had 0 runs after 30 s on the temporary server, 100 within 11 s on `prefect server
    start`). Every PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS (60) it asks the API to schedule each deployment's
    runs (`POST /deployments/{id}/schedule`, with Prefect's scheduler settings: the next hour, 3 runs at least, 100 at
    most; a slot scheduled already is not scheduled again; a paused deployment is passed over, as that service passes
    it), and the runner runs them as it runs a server's. It stops
    (its request under way ended) before the serve pauses the deployments, whose pause deletes their scheduled runs: no
    run is scheduled after that. A request that fails is said and tried again at the next turn. `vacuum`: after
    each turn's scheduling, the serve's vacuum of the server's old flow runs looks whether it is due
    (`ServeVacuum.turn`, which never raises). `since`: where its first (successful) turn starts scheduling, the instant
    the serve's missed-slot check covered up to (`say_missed_slots` names the slots before it): scheduled from the
    turn's own now, a slot between the two was neither run nor named (soak44: checked at 15:15:56, scheduled at
    15:16:02, the 15:16 slot lost); scheduled from `since`, it is run (late). A slot is scheduled once per schedule,
    so none runs twice."""

    def __init__(self, deployment_ids: list[Any], every: float | None = None, vacuum: ServeVacuum | None = None,
                 since: datetime | None = None) -> None:
        import asyncio

        from prefect.settings import get_current_settings

        self.deployment_ids = deployment_ids
        self.vacuum = vacuum
        self.since = since
        self.every = every if every is not None else get_current_settings().server.services.scheduler.loop_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def schedule(self, client: Any, start: datetime | None = None) -> None:
        """Schedule each deployment's runs once, from `start` on (`schedule_runs`)."""
        await schedule_runs(client, self.deployment_ids, start)

    async def _run(self) -> None:
        import asyncio
        import contextlib

        from prefect.client.orchestration import get_client
        from prefect.logging import get_logger

        async with get_client() as client:
            while not self._stop.is_set():
                try:
                    await self.schedule(client, self.since)
                    self.since = None  # (later turns schedule from their own now)
                except Exception as exc:  # noqa: BLE001 - an API that does not answer now: the next turn tries again
                    get_logger("flowcast.serve").warning(
                        "could not schedule the runs of the served deployments on Prefect's temporary server (%s: "
                        "%s); trying again in %.0f s", type(exc).__name__, exc, self.every)
                if self.vacuum is not None:
                    await self.vacuum.turn(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.every)

    def start(self) -> None:
        import asyncio

        self._task = asyncio.create_task(self._run(), name="flowcast-run-scheduler")

    async def stop(self, timeout: float | None = None) -> bool:
        """Stop, once the request under way has ended, cancelled after `timeout` s (default SCHEDULER_STOP_WAIT_S) and
        then said, and the vacuum under way has been told to end after its batch (`ServeVacuum.stop`: its thread, which
        a cancel does not reach, held the serve's exit until the whole vacuum was done). The stop waited 30 s on a
        request the API did not answer before it paused the deployments: a Ctrl-C or SIGTERM paused them only then.
        Whether no request was cut off: one that was may still create runs on the API (`sweep_late_runs`)."""
        import asyncio

        from prefect.logging import get_logger

        wait = SCHEDULER_STOP_WAIT_S if timeout is None else timeout
        self._stop.set()
        if self.vacuum is not None:
            self.vacuum.stop()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, wait)
            except TimeoutError:  # (wait_for cancelled it)
                get_logger("flowcast.serve").warning(
                    "the serve's scheduling of its runs had no answer from the Prefect API %g s into its stop: cut off "
                    "(the stop looks for the runs the API may still create by it for %g s after it cancelled its "
                    "slots' unstarted runs, and cancels them too)", wait, LATE_SWEEP_S)
                return False
        return True


SCHEDULER_STOP_WAIT_S = 2.0
"""How long a serve's stop waits for its scheduler's request under way (`RunScheduler.stop`) before it cuts it off and
pauses the deployments: a reachable API answers within a second."""
LATE_SWEEP_S = 3.0
"""How long a serve's stop looks for the runs a scheduling request it cut off (`RunScheduler.stop`) still creates on
the Prefect API after the stop cancelled its slots' unstarted runs (`sweep_late_runs`)."""
LATE_SWEEP_EVERY_S = 0.5


async def sweep_late_runs(deployment_ids: list[Any], since: datetime, wait: float = LATE_SWEEP_S,
                          every: float = LATE_SWEEP_EVERY_S) -> int:
    """The stop's final sweep, where it cut off a scheduling request (`RunScheduler.stop`), once it cancelled the
    unstarted runs of its slots (`cancel_unstarted_slots`): that request, which the API completes after the cut (a
    server that answers slowly goes on with it), creates the runs of the deployments' slots from `since` on
    (auto-scheduled, Scheduled: `schedule_runs`) after that cancel, where they stayed Scheduled on the paused
    deployments and the next serve ran them late. They are looked for every `every` s, `wait` s at most, and
    cancelled as the others were (the request creates its runs at once, so the sweep ends at the first that finds
    some); how many. None found is said: a run the API creates later still stays Scheduled. A sweep the API fails
    (`cancel_unstarted_slots` says it, None) ends there: it said the failure in a warning each half second, then that
    it found no run (fixrev50)."""
    import asyncio

    from prefect.logging import get_logger

    async def sweep() -> int | None:
        while (swept := await cancel_unstarted_slots(deployment_ids, since)) == 0:
            await asyncio.sleep(every)
        return swept

    with suppress(TimeoutError):  # (the whole sweep bounded: the API that was slow may hang)
        return await asyncio.wait_for(sweep(), wait) or 0  # (None: the API failed, said)
    get_logger("flowcast.serve").warning(
        "the serve's stop found no run created by the scheduling request it cut off within %g s after it cancelled "
        "its slots' unstarted runs: a run the Prefect API still creates by that request later stays Scheduled on the "
        "paused deployments, and the next serve runs it late", wait)
    return 0


def api_for_runs() -> dict[Any, Any]:
    """The settings that send the flow runs a serve starts to its Prefect API. Without PREFECT_API_URL a serve talks
    to Prefect's temporary server, which the run processes were not told of: each started a temporary server of its
    own and reported its run there, never to the serve's (the run stayed Pending in the serve's API, a retrain was
    Cancelled with 'Deployment concurrency slot lost during provisioning', and a run stopped with serve left its
    server behind). The temporary server is started here (the one the serve's client uses: Prefect keeps one per
    process) and named in PREFECT_API_URL, which the runner passes on to every run process."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return {}
    server = SubprocessASGIServer()
    server.start()
    return {PREFECT_API_URL: server.api_url}


RUNNER_OVERRIDES = ("handle_sigterm", "_pause_schedules", "__aenter__", "astop", "cancel_all")
RUNNER_STATE = ("started", "stopping", "_loop", "_deployment_registry")
RUNNER_RUN_STATE = ("_runs_task_group", "_client", "_process_manager", "_scheduled_run_poller", "_cancellation_manager")
"""What `stopping_runner` relies on of Prefect's Runner, private API all but `handle_sigterm`'s name: the methods it
overrides (a Prefect that renamed one would never call the override: one SIGTERM half done again, ops31), the state
Runner.__init__ sets that handle_sigterm reads (and its deployment registry, which `_pause_schedules` pauses), and the
task group of the runs' tasks and its client, which Runner sets as it starts and `_pause_schedules` cancels and uses,
and its process manager and poller, which a SIGTERM's grace reads and stops (`StoppingRunner._drain_then_stop`), and
its cancellation manager, which cancels the runs in flight with the serve's message (`StoppingRunner.cancel_all`). `runner_gaps` checks them before a serve registers anything."""
POLLER_STATE = ("_submitting_flow_run_ids",)
"""What `stopping_runner` reads of Prefect's ScheduledRunPoller (private): the ids of the runs it took, from their
Pending on to their process's end, which a SIGTERM's grace counts as in flight (`StoppingRunner._in_flight`)."""


def runner_gaps(runner: type[Any], poller: type[Any] | None = None) -> list[str]:
    """What `runner` (Prefect's Runner class) lacks of what `stopping_runner` relies on, as `Runner.<name>`: a method
    of RUNNER_OVERRIDES it has not, a name of RUNNER_STATE or RUNNER_RUN_STATE that none of its code sets or reads
    (those are instance attributes: the names its functions use, nested ones too, are what can be checked before an
    instance starts); and a name of POLLER_STATE that none of `poller`'s code uses (by default Prefect's
    ScheduledRunPoller), as `ScheduledRunPoller.<name>`."""
    if poller is None:
        from prefect.runner._scheduled_run_poller import ScheduledRunPoller

        poller = ScheduledRunPoller
    names, polled = _code_names(runner), _code_names(poller)
    return ([f"Runner.{n}()" for n in RUNNER_OVERRIDES if not callable(getattr(runner, n, None))]
            + [f"Runner.{n}" for n in (*RUNNER_STATE, *RUNNER_RUN_STATE) if n not in names]
            + [f"ScheduledRunPoller.{n}" for n in POLLER_STATE if n not in polled])


def _code_names(cls: type[Any]) -> set[str]:
    """The names the code of `cls` (and of its bases, not object) uses: its functions', properties' and nested
    functions'."""
    import inspect
    import types

    codes: list[types.CodeType] = []
    for klass in cls.__mro__[:-1]:  # (not object)
        for value in vars(klass).values():
            for fn in (getattr(value, "__func__", value), getattr(value, "fget", None), getattr(value, "fset", None)):
                code = getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None
                if isinstance(code, types.CodeType):
                    codes.append(code)
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


def runner_api_error(missing: list[str]) -> FlowcastError:
    """The error a serve fails with, as it starts, where the installed Prefect's Runner lacks what `stopping_runner`
    relies on (rather than an AttributeError as it stops, or a SIGTERM half handled)."""
    import prefect

    from flowcast.errors import FlowcastError

    return FlowcastError(
        f"flowcast serve cannot run on the installed Prefect {prefect.__version__}: its Runner has no "
        f"{', '.join(missing)}, which flowcast's serve relies on (private Runner API: one SIGTERM stops serve, the "
        "runs in flight cancelled, flowcast.flows.deploy.stopping_runner); install the Prefect version "
        "requirements.lock pins (`make install`)")


def stopping_runner(base: type[Any] | None = None) -> type[Any]:
    """Prefect's Runner (or `base`, a Runner class), whose first SIGTERM stops it. Prefect's own handler cancels the
    flow runs in flight and stops polling, then waits for every run's task to end; a run whose process the SIGTERM
    stopped as it was starting left its task waiting for good (ops31: `flowcast serve`, SIGTERMed 2 s after a forecast
    run's process started, cancelled the run, paused the deployments and served on until a second SIGTERM, 2 minutes
    later). Once the runs in flight are cancelled (their processes killed, their states Cancelled), what is left of
    their tasks is cancelled too. A SIGTERM after the serve gave it the signal (`take_sigterm`, before it registers its
    deployments) and before it started (its `__aenter__`: seconds on a loaded machine) stops it as soon as it has started, its deployments paused: Prefect's
    handler exited at once (exit 0), nothing paused, and on a server its slots' runs stayed Scheduled for the next
    serve to run late (soak46). What it relies on of Runner's private API is checked here (`runner_gaps`) and as
    it is constructed (RUNNER_STATE): a Prefect without it fails the serve as it starts, naming what is missing and
    the version (`runner_api_error`)."""
    if base is None:
        from prefect.runner import Runner

        base = Runner
    if missing := runner_gaps(base):
        raise runner_api_error(missing)

    class StoppingRunner(base):  # type: ignore[valid-type, misc]
        stopped_by_sigterm = False
        scheduler: RunScheduler | None = None  # on Prefect's temporary server: the serve's own (`serve`)
        catch_up: CatchUp | None = None  # on a Prefect server: the serve's catch-up of its slots (`serve`)
        slots: tuple[list[Any], datetime] | None = None  # its scheduled deployments, the instant its slots start at
        stop_pending = False  # a SIGTERM came before the runner started (`handle_sigterm`)
        ending = False  # its stop began (`_pause_schedules`)
        stop_done = False  # its stop's steps were done (`_pause_schedules`): a SIGTERM now is said, ignored (`said_as_exit`)
        registering = False  # the serve registers its deployments (`register`)
        unsettled: Unsettled | None = None  # the registration a SIGTERM cut off (`register`): paused by its name
        grace_seconds = 0.0  # a SIGTERM's grace for the runs in flight (`serve`: serve.grace_seconds)
        grace: Any = None  # a threading.Event, while a SIGTERM's grace is under way; set once it ended

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if missing := [f"Runner.{n}" for n in RUNNER_STATE if not hasattr(self, n)]:
                raise runner_api_error(missing)

        def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
            if self.grace is not None and not self.grace.is_set():  # a second SIGTERM during the grace: no more of it
                self._logger.info(GRACE_CUT_SAID.format(signal="SIGTERM"))
                self.grace.set()
                return
            if (self.stopped_by_sigterm or self.ending) and not self.stop_done:  # (Prefect's exit cut its pause off)
                self._logger.info(SECOND_SIGNAL_SAID.format(signal="SIGTERM"))
                return
            if not self.started and not self.stopping and self.ending:  # a stop not a SIGTERM's (Ctrl-C) under way
                self._logger.info(SECOND_SIGNAL_SAID.format(signal="SIGTERM"))
                return
            if self.stop_done:  # a SIGTERM's stop done, the serve exits: its clean-up ends (Prefect's exit cut it off)
                said_as_exit()
                return
            if not self.started and not self.stopping:  # its handler installed, the runner not yet started (soak46)
                first, self.stop_pending = not self.stop_pending, True
                if self.registering and first:  # (`register`: the registration under way cut off; the serve stops)
                    import signal

                    from prefect.exceptions import TerminationSignal

                    self._logger.info(REGISTERING_STOP_SAID)
                    raise TerminationSignal(signal.SIGTERM)
                self._logger.info("SIGTERM received as the serve starts: it stops as soon as it has started" if first
                                  else SECOND_SIGNAL_SAID.format(signal="SIGTERM"))  # (a second said as the start: serveR48)
                return
            if self.started and not self.stopping and self._loop is not None:
                self.stopped_by_sigterm = True
                if self.grace_seconds > 0 and (n := len(self._in_flight())):
                    import threading

                    self._scheduled_run_poller.stopping = True  # no new run taken from now on
                    self.grace = threading.Event()
                    self._logger.info(GRACE_SAID.format(n=n, grace=self.grace_seconds))
                    self.execute_in_background(self._drain_then_stop)
                    return
            super().handle_sigterm(*args, **kwargs)  # the runs in flight cancelled, polling stopped

        def _in_flight(self) -> set[Any]:
            """The ids of this runner's flow runs in flight: those with a process, and those its poller took (Pending)
            whose process has not started yet. Counted by their processes alone, a run taken as the SIGTERM came had
            no grace: with no other run in flight the stop cancelled at once, and it was left Pending (serve51)."""
            return self._process_manager.flow_run_ids() | set(self._scheduled_run_poller._submitting_flow_run_ids)

        async def _drain_then_stop(self) -> None:
            """A SIGTERM's grace (`grace_seconds`): wait until no flow run of this runner is in flight (`_in_flight`),
            or the grace is over, or a second SIGTERM or a Ctrl-C ended it (`grace`), then stop as Prefect's handler does
            (`astop`: those still running cancelled, `cancel_all`), saying which."""
            import asyncio
            import time

            assert self.grace is not None
            deadline = time.monotonic() + self.grace_seconds
            while (left := len(self._in_flight())) and not self.grace.is_set() \
                    and time.monotonic() < deadline:
                await asyncio.sleep(SIGNAL_POLL_S)
            if not left:
                self._logger.info(GRACE_ENDED_SAID)
            elif not self.grace.is_set():
                self._logger.info(GRACE_OVER_SAID.format(n=left, grace=self.grace_seconds))
            self.grace.set()
            self.stopping = True
            await self.astop()

        async def astop(self) -> None:
            """Prefect's stop, once: a Ctrl-C during a SIGTERM's grace (`_pause_schedules`) and the grace's end
            (`_drain_then_stop`) may both ask for it."""
            if self.started:
                await super().astop()

        async def cancel_all(self) -> None:
            """The flow runs in flight cancelled (Prefect's `cancel_all`), each with IN_FLIGHT_STOP_MESSAGE, which
            names the serve's stop, rather than Prefect's 'Runner is shutting down.' (NO_GRACE_STOP_MESSAGE where
            serve.grace_seconds is 0: no grace period to name). Those its runner took whose process has not started
            (Pending) are cancelled first (`cancel_taken_unstarted`): Prefect's cancel reaches only runs with a
            process, and the stop's end left them Pending (serve51)."""
            await cancel_taken_unstarted(self._client, self._in_flight() - self._process_manager.flow_run_ids(),
                                         self._logger)
            await self._cancellation_manager.cancel_all(
                state_msg=IN_FLIGHT_STOP_MESSAGE if self.grace_seconds > 0 else NO_GRACE_STOP_MESSAGE)

        async def __aenter__(self) -> Any:
            entered = await super().__aenter__()
            if self.stop_pending:  # a SIGTERM while it started: the stop it asked for, now that there is a loop
                self.handle_sigterm()
            return entered

        async def _pause_schedules(self) -> None:  # (called as the runner stops, before it waits for the runs' tasks)
            """Each step of the stop, every one done though one before it failed (a pause the API refused skipped
            the cancel of the slots' runs and of the runs' tasks, revD47); a failed step is said (`stop_step`)."""
            import asyncio

            self.ending = True
            ended = True  # (no catch-up under way now)
            scheduled = True  # (no scheduling request of `scheduler` cut off)
            try:
                if self.grace is not None and not self.grace.is_set():  # a Ctrl-C during a SIGTERM's grace
                    self._logger.info(GRACE_CUT_SAID.format(signal="Ctrl-C"))
                    self.grace.set()
                    await stop_step(self._logger, "cancel its flow runs in flight", self.astop())
                if self.scheduler is not None:  # no run scheduled once the deployments are paused (deletes theirs)
                    scheduled = await stop_step(self._logger, "stop its scheduling of their runs",
                                                self.scheduler.stop(), failed=False)
                if self.catch_up is not None:  # likewise on a server (`CatchUp`)
                    ended = await stop_step(self._logger, "stop its catch-up of their slots",
                                            asyncio.to_thread(self.catch_up.stop), failed=False)
                registry = self._deployment_registry  # (Prefect's pause, each bounded: `pause_deployments`)
                names = {i: registry.get_deployment_name(i) or str(i) for i in registry.get_deployment_ids()}
                self._logger.info("Pausing all deployments...")
                if await stop_step(self._logger, "pause its deployments (one not paused goes on being scheduled, and "
                                   "the next serve runs its runs late: pause it in the UI)",
                                   pause_deployments(self._client, names, self.unsettled),
                                   failed=False) is not False:
                    self._logger.info("All deployments have been paused!")
                if self.slots is not None:  # what the pause left of them: the runs of its slots already due, the
                    ids, since = self.slots  # registration cut off included where the pause found it (`Unsettled`)
                    slots = (slot_deployments(ids, self.unsettled), since)
                    await cancel_unstarted_slots(*slots)
                    if not scheduled:  # a request it cut off may still create runs (`sweep_late_runs`)
                        await sweep_late_runs(*slots)
                    if not ended and self.catch_up is not None and not self.catch_up.then(
                            lambda: asyncio.run(cancel_unstarted_slots(*slots))):  # it hung, then posted: cancelled
                        await cancel_unstarted_slots(*slots)  # (it ended meanwhile)
            finally:
                self.stop_done = True
                if self.stopped_by_sigterm:
                    self._runs_task_group.cancel_scope.cancel()  # none of the runs' tasks left waiting

    return StoppingRunner


async def cancel_taken_unstarted(client: Any, ids: set[Any], log: Any) -> list[Any]:
    """As a serve's stop cancels its runs in flight: the runs of `ids` (its runner took them, no process started yet)
    still Scheduled or Pending cancelled, a slot of the schedule with UNSTARTED_STOP_MESSAGE (the next serve names it
    missed, as the slots the stop cancels Scheduled: `cancel_unstarted_slots`), a run someone asked for with
    UNSTARTED_ASKED_STOP_MESSAGE; one that started meanwhile is left to Prefect's cancel. Said in one line of `log`;
    one the API would not read or cancel is said as a warning, the others cancelled all the same. The runs cancelled."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled

    from flowcast.flows.naming import name_unstarted

    done: list[Any] = []
    for run_id in sorted(ids, key=str):
        try:
            run = await client.read_flow_run(run_id)
            if run.state is None or not (run.state.is_pending() or run.state.is_scheduled()):
                continue
            message = UNSTARTED_STOP_MESSAGE if run.auto_scheduled else UNSTARTED_ASKED_STOP_MESSAGE
            if (await client.set_flow_run_state(run.id, Cancelled(message=message))).status == SetStateStatus.ACCEPT:
                await name_unstarted(client, run)
                done.append(run)
        except Exception as exc:  # noqa: BLE001 - the stop goes on; the next serve reaps what is left Pending
            log.warning("the serve's stop could not cancel flow run %s, taken by its runner and not started: %s: %s",
                        run_id, type(exc).__name__, exc)
    if done:
        log.info("cancelled %d flow run(s) taken by the serve's runner whose process had not started as it stopped: "
                 "%s", len(done), ", ".join(f"{r.name!r} ({r.id})" for r in done))
    return done


async def stop_step(log: Any, what: str, step: Awaitable[Any], failed: Any = None) -> Any:
    """What `step` (one step of a serve's stop: `what` it does) returns; where it fails, that said as a warning on
    `log`, naming the error (the stop goes on with its other steps: `StoppingRunner._pause_schedules`), and `failed`."""
    try:
        return await step
    except Exception as exc:  # noqa: BLE001 - the stop's other steps are done all the same
        log.warning("the serve's stop could not %s: %s: %s; its other steps are done", what, type(exc).__name__, exc)
        return failed


def serving(home: Any) -> Any:
    """The serve lock of `home` and of the Prefect API this process talks to (`ops.serving.serve_lock`), taken as
    a serve starts, before anything is registered: a second serve refuses to start, naming the running one. Its
    "serving since" is this machine's clock (`_utc_now`), said so (`ops.serving.refusal`): the lock is taken before the
    Prefect API is asked anything (the temporary server does not exist yet), and only a serve on this machine reads it
    (an fcntl lock), on the same clock."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    from flowcast.ops.serving import serve_lock

    return serve_lock(home, prefect_home=PREFECT_HOME.value(), api_url=PREFECT_API_URL.value() or None,
                      since=_utc_now().replace(microsecond=0))


def reap_before_serving(home: Any, say: Callable[[str], None]) -> None:
    """Mark Crashed the flow runs of `home` that a killed server process left Running (ops.reaper), before
    serving again. A `flowcast serve` killed (SIGKILL, its machine stopped) during a retrain left that run
    Running, holding the retrain deployment's one concurrency slot: the restarted serve's next retrain waited
    in AwaitingConcurrencySlot for good, and the next run in the home, which would have reaped it, was that
    one. So are the deployment runs of `home` a serve killed as it submitted them left Pending, before their own
    process began (`reap_submitted`): they stayed Pending for good, each holding its deployment's slot until Prefect's
    lease on it lapsed. Never stops the serving: a
    failure is said."""
    from flowcast.ops.reaper import reap, reap_submitted

    by = "flowcast serve, as it started"
    try:
        for r in [*reap(home, by=by), *reap_submitted(home, by=by)]:
            if r.action == "crashed":
                say(f"Marked flow run '{r.name}' ({r.flow_run_id}) Crashed: {r.message}")
    except Exception as exc:  # noqa: BLE001 - an unreachable API: the runs say so themselves
        say(f"could not check the flow runs left in {home}: {exc}")


def missed_slots(cron: str, tz: str, last: datetime, now: datetime, limit: int = 10_000) -> list[datetime]:
    """The slots of `cron` (in zone `tz`) strictly after `last` (the latest slot that ran) and strictly before
    `now`: the scheduled runs that never happened, as UTC instants (the cron's zone yields local times, which
    `missed_sentence` printed as UTC and handed to a backfill whose --start without an offset means UTC)."""
    from datetime import UTC

    from prefect.server.schemas.schedules import CronSchedule

    schedule = CronSchedule(cron=cron, timezone=tz)
    out: list[datetime] = []
    start = last
    while len(out) < limit:  # Prefect yields about 1,000 dates a call (a per-minute cron: 16.7 hours)
        batch = [d for d in schedule._get_dates_generator(n=limit - len(out) + 1, start=start, end=now)  # (+1: `start`)
                 if start < d < now]
        if not batch:
            break
        out += [datetime.fromtimestamp(d.timestamp(), UTC) for d in batch]
        start = batch[-1]
    return out[:limit]


def missed_sentence(name: str, slots: list[datetime]) -> str | None:
    """What `flowcast serve` says as it starts when the `name` deployment's schedule fell behind: the slots (UTC
    instants, as `missed_slots` gives them), and the backfill(s) that publish exactly their as_ofs (`--every` the
    schedule's step: without it a backfill steps by the data's frequency, so 4 missed per-minute slots on monthly
    data backfilled the first one only)."""
    if not slots:
        return None
    from flowcast.timekeys import utc_text

    first, last = slots[0], slots[-1]
    span = utc_text(first) if len(slots) == 1 else f"{utc_text(first)} to {utc_text(last)}"
    mode = " --mode retrain" if name == "retrain" else ""
    runs = _even_runs(slots)
    commands = [f"flowcast backfill --start {r[0]:%Y-%m-%dT%H:%M} --end {r[-1]:%Y-%m-%dT%H:%M}"
                + (f" --every {_duration(r[1] - r[0])}" if len(r) > 1 else "") + mode for r in runs]
    more = len(commands) - _COMMANDS_SHOWN
    shown = "; ".join(commands[:_COMMANDS_SHOWN]) + (
        f"; and {more} more backfill{'s' if more != 1 else ''} of the later slots" if more > 0 else "")
    return (f"{len(slots)} scheduled {name} run{'s' if len(slots) != 1 else ''} did not happen while no "
            f"`flowcast serve` ran or as one stopped ({span}): a stopped "
            "serve pauses its schedules and Prefect drops their runs, so they are not caught up; the next scheduled "
            f"run uses all data up to its own as_of. To publish the missed as_ofs"
            f"{' (their spacing varies: one backfill per evenly spaced run of them)' if len(runs) > 1 else ''}: "
            f"{shown}")


_COMMANDS_SHOWN = 6


def _even_runs(times: list[datetime]) -> list[list[datetime]]:
    """`times` (sorted) cut into runs of one spacing each: a backfill's grid steps evenly (a weekday schedule is 1 and
    3 days apart; a daily one in a zone with daylight saving is 23 or 25 hours apart once a year)."""
    runs: list[list[datetime]] = []
    for t in times:
        if runs and (len(runs[-1]) == 1 or t - runs[-1][-1] == runs[-1][1] - runs[-1][0]):
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _duration(step: Any) -> str:
    """A timedelta as a backfill's --every (a polars duration: 1w, 1d, 1h, 1m, 1s)."""
    seconds = int(step.total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


SERVE_STOP_MESSAGE = "Runner is shutting down."  # the message of a run in flight a serve's stop cancelled (Prefect's)
IN_FLIGHT_STOP_MESSAGE = ("Cancelled in flight by the stop of flowcast serve (SIGTERM): still running when the stop's "
                          "grace period (serve.grace_seconds) ended or a second SIGTERM or Ctrl-C cut it short; re-run "
                          "it (a scheduled slot: the next serve names it missed, with the backfill that publishes it)")
"""The message of a flow run in flight that a serve's stop cancelled (`StoppingRunner.cancel_all`), since serve50."""
NO_GRACE_STOP_MESSAGE = ("Cancelled in flight by the stop of flowcast serve (SIGTERM), at once: serve.grace_seconds is "
                         "0, no grace period; re-run it (a scheduled slot: the next serve names it missed, with the "
                         "backfill that publishes it)")
"""IN_FLIGHT_STOP_MESSAGE where serve.grace_seconds is 0: that one named a grace period that no run had (serve51)."""
UNSTARTED_STOP_MESSAGE = ("Cancelled before it started: flowcast serve stopped and paused its deployments; the next "
                          "serve names this slot missed, with the backfill that publishes it")
"""The message of a run of a serve's slots that its stop cancelled before it started (`cancel_unstarted_slots`, and
`StoppingRunner.cancel_all`: handed to its runner, no process yet)."""
UNSTARTED_ASKED_STOP_MESSAGE = ("Cancelled before it started: flowcast serve stopped (SIGTERM) as its runner was "
                                "starting this run's process; re-run it")
"""The message of a run someone asked for (not a slot of the schedule) that a serve's runner had taken but not yet
started when its stop cancelled it (`StoppingRunner.cancel_all`)."""
SERVE_STOP_MESSAGES = (SERVE_STOP_MESSAGE, IN_FLIGHT_STOP_MESSAGE, NO_GRACE_STOP_MESSAGE, UNSTARTED_STOP_MESSAGE)


def last_slot_run(runs: list[Any], now: datetime) -> datetime | None:
    """The latest schedule slot (expected start, at or before `now`) of `runs` (a deployment's flow runs, none
    Scheduled) that ran: not one the stop of a serve cancelled (Cancelled, SERVE_STOP_MESSAGES), whose slot published
    nothing, as a slot while no serve ran. It counted as run: a serve SIGTERMed during a forecast run (soak44: slot
    15:03 Cancelled) was restarted without a word of that slot, its as_of missing from the store for good. Nor one
    that Crashed (soak45: a serve SIGKILLed during the 18:12 run, which the restarted serve marked Crashed, naming no
    backfill): a crash before the publish published nothing, and the backfill said skips an as_of published already.
    Nor one left Cancelling by a serve's stop (SERVE_STOP_MESSAGES: the serve killed mid-cancel, serveC47): it never
    ended, nothing published. None: no slot ran."""
    from prefect.client.schemas.objects import StateType

    ran = [r.expected_start_time for r in runs if r.expected_start_time is not None
           and r.expected_start_time <= now and r.auto_scheduled
           and not (r.state is not None and (r.state.type == StateType.CRASHED or (
               r.state.type in (StateType.CANCELLED, StateType.CANCELLING)
               and (r.state.message or "") in SERVE_STOP_MESSAGES)))]
    return max(ran) if ran else None


def slot_run_filter(scheduled: bool, before: datetime | None, since: datetime | None,
                    read_at_before: list[Any]) -> Any:
    """The flow-run filter of one page of `slot_run_pages` (and `cancel_unstarted_slots`): the Scheduled runs (Late
    and AwaitingConcurrencySlot too) when `scheduled`, else all the others, whose slot (expected start) is at or before
    `before` (any, when None) and at or after `since` (when given), less `read_at_before` (the ids of the runs of
    the slot `before` read already: `next_slot_key`)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    types = FlowRunFilterStateType(**{"any_" if scheduled else "not_any_": [StateType.SCHEDULED]})
    return FlowRunFilter(state=FlowRunFilterState(type=types),
                         expected_start_time=FlowRunFilterExpectedStartTime(before_=before, after_=since),
                         **({"id": FlowRunFilterId(not_any_=read_at_before)} if read_at_before else {}))


def next_slot_key(page: list[Any], before: datetime | None,
                  read_at_before: list[Any]) -> tuple[datetime, list[Any]]:
    """The keyset of the page after `page` (a non-empty page read, latest slot first, with the key `before`,
    `read_at_before`): its earliest slot, and the ids of the runs of that slot read (on this page, and on the pages
    before where they share it: the server breaks no tie between equal slots)."""
    last = page[-1].expected_start_time
    return last, [r.id for r in page if r.expected_start_time == last] + (read_at_before if last == before else [])


def slot_run_pages(client: Any, name: str, now: datetime, scheduled: bool, since: datetime | None = None,
                   limit: int | None = None) -> Iterator[list[Any]]:
    """The flow runs of the deployments named `name` whose slot (expected start) is at or before `now` (and at or
    after `since`, when given), latest first, a page at a time until one comes back empty: the Scheduled ones (Late
    and AwaitingConcurrencySlot too) when `scheduled`, else all the others. A page is `limit` runs, by default the
    server's own size (PREFECT_SERVER_API_DEFAULT_LIMIT): a limit of 200 asked of a server whose page is smaller was
    refused with a 422 (revC45; revA44 for the vacuum). The API marks a schedule's runs (`auto_scheduled`) but filters
    on no such field, so a caller reads on until it has what it looks for (the check read the latest 50 only: with
    more than 50 manual runs after the last slot that ran, it found no slot and named none missed). Each next page is
    read by key, not offset (`slot_run_filter`, `next_slot_key`): the runs at or before the last page's earliest
    slot, less those of that slot read already (the server breaks no tie between equal slots); by offset, a run
    leaving or entering the state read between two pages shifted the rest, and a run was skipped or read twice. None
    is read twice; one that enters the state after the reading passed its slot is not read."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    before: datetime | None = now  # the keyset: the last slot read, and the ids of its runs read
    read_at_before: list[Any] = []
    while page := client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
            flow_run_filter=slot_run_filter(scheduled, before, since, read_at_before),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit):
        yield page
        before, read_at_before = next_slot_key(page, before, read_at_before)


def overdue_sentence(name: str, slots: list[datetime]) -> str | None:
    """What `flowcast serve` says as it starts of the `name` deployment's overdue slots (UTC instants): their runs are
    still Scheduled (a serve killed, SIGKILL or its machine stopped, never paused its deployments, and the server's
    scheduler went on creating them), so this serve's runner runs them now, late, each with its own slot as as_of."""
    if not slots:
        return None
    from flowcast.timekeys import utc_text

    one = len(slots) == 1
    span = utc_text(slots[0]) if one else f"{utc_text(slots[0])} to {utc_text(slots[-1])}"
    return (f"{len(slots)} scheduled {name} run{'' if one else 's'} ({span}) did not run while no `flowcast serve` "
            f"ran and {'is' if one else 'are'} still scheduled (a serve that was killed did not pause its schedules): "
            f"{'it runs' if one else 'they run'} now, late, each with its own slot as as_of; nothing to backfill")


def say_missed_slots(say: Callable[[str], None], now: datetime) -> None:
    """Before serving again: for the retrain and forecast deployments, the slots of their schedule after the
    latest run that started (any state but Scheduled; not one the stop of a serve cancelled: `last_slot_run`; read
    page by page until found, `slot_run_pages`; the Scheduled ones only from that slot on, not every old one) and
    before `now` (`serve_all` passes the instant its serve's scheduling then starts from, on the server's clock:
    `RunScheduler`), said as a warning naming the backfill that publishes them. A slot whose run is still Scheduled
    (overdue: a killed serve left it) is not missed: this serve's runner runs it, late, and it is said as such
    (`overdue_sentence`). Never stops the serving: an unreachable API or a first serve says nothing."""
    from datetime import UTC

    from prefect.client.orchestration import get_client

    try:
        s = schedule_settings()
        with get_client(sync_client=True) as client:
            for name in ("retrain", "forecast"):
                last = next((t for page in slot_run_pages(client, name, now, scheduled=False)
                             if (t := last_slot_run(page, now)) is not None), None)
                if last is None:
                    continue
                overdue = sorted({datetime.fromtimestamp(r.expected_start_time.timestamp(), UTC)
                                  for page in slot_run_pages(client, name, now, scheduled=True, since=last)
                                  for r in page
                                  if r.auto_scheduled and r.expected_start_time is not None
                                  and r.expected_start_time > last})
                missed = [t for t in missed_slots(s[f"{name}_cron"], s["timezone"], last, now)
                          if t not in set(overdue)]
                for sentence in (missed_sentence(name, missed), overdue_sentence(name, overdue)):
                    if sentence:
                        say(sentence)
    except Exception as exc:  # noqa: BLE001 - the runs and the UI still work; this is a note
        say(f"could not check for scheduled runs missed while no serve ran: {exc}")
