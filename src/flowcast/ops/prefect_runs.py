"""The flow runs Prefect's temporary server keeps: `flowcast gc` removes the old ones.

Without PREFECT_API_URL every `flowcast run`, `forecast`, `backfill` and `flowcast serve` reports to Prefect's
temporary server, whose database is PREFECT_HOME's (`prefect.db`, the one all of them share). Prefect starts that
server "ephemeral", with only the services marked to run there, and its flow-run vacuum is not one of them
(PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED=flow_runs changes nothing there): every run's flow run, task runs,
states, logs and artifacts stayed for good, about 300 KB per forecast run of 4 tiny series (soak43: 20 runs,
prefect.db 7.7 MB to 15 MB, `flowcast gc` removing none of it). `vacuum` deletes, as that service would, the
top-level flow runs of one home (their `home` parameter; other homes sharing PREFECT_HOME, and other flows, are
left alone) in a final state that ended before a cutoff, with their subflow runs that did too (`_removable`: a subflow
under a parent that ended after the cutoff stays, with its parent; so does a run an automation's window still names,
`_watched`), task runs (cascaded), logs and artifacts, in
batches (`VACUUM_BATCH` flow runs a transaction, a stop looked at between them); artifact keys left naming a deleted
artifact are re-pointed or dropped (Prefect's own reconciliation), by a vacuum that was not stopped (a stopped one
leaves them to the next, whose reconciliation covers every key). Its dry run counts the same selection.

A server named by PREFECT_API_URL is left alone: it is the server's to vacuum (`make server` turns its vacuum on)
and it may hold other people's runs.

`flowcast serve` on the temporary server vacuums it too (`ServeVacuum`): a serve left running for months is the home
nobody runs `flowcast gc` in, and its runs were the ones that piled up. It vacuums as it starts and then once a day
(`vacuum_due`), and starts only between runs: never while a flow run of its home is Pending, Running or Cancelling
(it looks again at its next turn, every minute). A run that starts during a vacuum (Prefect's runner does not wait for
it) stops it after the batch under way, where it looks again between batches (`ServeVacuum.busy`); until then the two
share SQLite's one writer a batch's transaction at a time (the vacuum removes only runs that ended before the cutoff,
never the new one), and the rest goes at the next turn that finds no run in flight. A look between batches that fails
(the API erring, or no answer in `BUSY_TIMEOUT`) stops it the same way, with a warning naming the error. A vacuum that fails (the database locked or unreadable) is a warning: the
serve serves on and tries again a day later. A serve that stops (SIGTERM) stops its vacuum too, after the batch under
way (`ServeVacuum.stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VACUUM_EVERY = timedelta(days=1)  # how often a serve vacuums the temporary server (`ServeVacuum`)
VACUUM_BATCH = 200  # flow runs `vacuum` deletes a transaction (Prefect's vacuum's batch); a stop is seen between them
BUSY_TIMEOUT = 30.0  # seconds the vacuum's thread waits for the serve's look for a run in flight between batches


@dataclass(frozen=True)
class Vacuumed:
    """What `vacuum` removed (or, dry, would remove): flow runs, and the logs and artifacts that went with them."""

    flow_runs: int
    logs: int = 0
    artifacts: int = 0
    stopped: bool = False  # it returned between batches (the serve stopping, or a run of the home in flight)


def temporary_database(*, serving: bool = False) -> Path | None:
    """The SQLite file of Prefect's temporary server when runs report to it (no PREFECT_API_URL) and it exists;
    None when a server is configured, the database is not SQLite, or no run has created it yet. `serving`: the
    caller is the `flowcast serve` that started the temporary server itself, whose PREFECT_API_URL names that server
    (`flows.deploy.api_for_runs`)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url and not serving:
        return None
    url = settings.server.database.connection_url
    raw = url.get_secret_value() if url is not None else ""
    prefix = "sqlite+aiosqlite:///"
    if not raw.startswith(prefix):
        return None
    path = Path(raw[len(prefix):])
    return path if path.is_file() else None


def _removable(db: Any, cutoff: datetime, home: str) -> Any:
    """The flow runs `vacuum` removes, the one selection its dry run counts and its batches delete: Prefect's own rule
    (its vacuum_old_flow_runs) for the runs of `home` (resolved, as flows record it), runs in a final state that ended
    before `cutoff`, that are top-level or a subflow of a run it removes (a subflow that ended before the cutoff under
    a parent that ended after it stays, as Prefect's vacuum leaves it; the dry run counted it until vac44, though gc
    --yes never removed it). The selection holds while the batches delete: a subflow whose parent went is top-level
    (Prefect clears its parent link) and still chosen."""
    import sqlalchemy as sa
    from prefect.server.schemas.states import TERMINAL_STATES

    rule = sa.and_(sa.func.json_extract(db.FlowRun.parameters, "$.home") == home,
                   db.FlowRun.state_type.in_(TERMINAL_STATES), db.FlowRun.end_time.is_not(None),
                   db.FlowRun.end_time < cutoff, ~_watched(db))
    tree = (sa.select(db.FlowRun.id).where(db.FlowRun.parent_task_run_id.is_(None), rule)
            .cte("removable", recursive=True))
    tree = tree.union_all(sa.select(db.FlowRun.id)
                          .join(db.TaskRun, db.FlowRun.parent_task_run_id == db.TaskRun.id)
                          .join(tree, db.TaskRun.flow_run_id == tree.c.id).where(rule))
    return db.FlowRun.id.in_(sa.select(tree.c.id))


def _watched(db: Any) -> Any:
    """Whether an enabled automation still holds a window open for the flow run (a bucket of its trigger keyed by the
    run's resource, `prefect.flow-run.<id>`): the server acts on the run when that window closes, with no regard to
    the run's end. `flowcast: crash silent runs` opens one at each heartbeat and, where no final state counted in it
    (the temporary server stopped with the serve before its triggers saw the run's Cancelled), asks for the run to be
    marked Crashed as the window ends (refused for a run already final), also when that is after the next serve's
    start (a window of a stopped server is evaluated as the server starts again): a run the restarted serve's vacuum
    had just deleted made the server log `Action failed: "Unexpected status from 'change-flow-run-state' action: 404"`
    (soak44; reproduced in vac45 with the server killed just after the run was marked Cancelled; every command now drops
    the windows of final runs before its temporary server starts, `drop_final_windows`). Such a run stays until the window is
    evaluated (at most `workers.crash_after` after its last heartbeat while a server runs) and goes at a later
    vacuum."""
    import sqlalchemy as sa

    key, names_run = _run_key(db)
    return (sa.select(db.AutomationBucket.id)
            .join(db.Automation, db.Automation.id == db.AutomationBucket.automation_id)
            .join(key, names_run)
            .where(db.Automation.enabled.is_(True))
            .exists())


def _run_key(db: Any) -> tuple[Any, Any]:
    """The values of an automation bucket's key (a table-valued `json_each` of `AutomationBucket.bucketing_key`) and
    the condition that one names the flow run (`prefect.flow-run.<id>`, the resource id `for_each` keys it by)."""
    import sqlalchemy as sa

    key = sa.func.json_each(db.AutomationBucket.bucketing_key).table_valued("value")
    return key, key.c.value == sa.literal("prefect.flow-run.").op("||")(db.FlowRun.id)


async def _drop_final_windows() -> int:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.schemas.states import TERMINAL_STATES

    from flowcast.ops.automations import CRASH_SILENT

    db = provide_database_interface()
    key, names_run = _run_key(db)
    final = (sa.select(db.AutomationBucket.id)
             .join(db.Automation, db.Automation.id == db.AutomationBucket.automation_id)
             .join(key, sa.true()).join(db.FlowRun, names_run)
             .where(db.Automation.name == CRASH_SILENT, db.FlowRun.state_type.in_(TERMINAL_STATES)))
    async with db.session_context(begin_transaction=True) as session:
        result = await session.execute(sa.delete(db.AutomationBucket).where(db.AutomationBucket.id.in_(final)))
        return int(result.rowcount or 0)


def drop_final_windows() -> int | None:
    """Remove the windows `flowcast: crash silent runs` holds open for flow runs already in a final state, from the
    database of Prefect's temporary server, before a command starts that server (`ops.reaper.temporary_api`: `flowcast
    run`, `forecast`, `backfill`, `serve`, `automations`); how many went (0 at once where the database holds no
    window of a final run, `_holds_windows`), None where runs report to a configured server or no temporary server's database
    exists (`temporary_database`). The automation opens a window at each heartbeat of a run and asks for the run to be
    marked Crashed as it ends with no final state counted in it; a temporary server that stopped (with the serve:
    SIGTERM, or SIGKILL; with any command that starts one) before its triggers counted the run's final state left the
    window open with nothing counted, and the next server, evaluating it as it started, asked for Crashed on a run
    already final: it logged `Action failed: 'Failed to set state: Run is already in terminal state COMPLETED.'`
    (soak45, about 5 a soak). A final run has nothing left to mark; a run still Running (its process killed) keeps its
    window and is marked Crashed as it ends."""
    if (path := temporary_database()) is None:
        return None
    if not _holds_windows(path):
        return 0
    return asyncio.run(_drop_final_windows())


def _holds_windows(path: Path) -> bool:
    """Whether the temporary server's SQLite database at `path` holds an automation window (a row of
    `automation_bucket`; none before its first migration) keyed by a flow run already final (`_run_key`'s
    `prefect.flow-run.<id>`, the run's `state_type` one of TERMINAL_STATES), read with the standard library: the look
    every command that starts the temporary server makes costs a millisecond where there is nothing to drop, not
    Prefect's database layer. Any automation's window counts (the drop then takes those of `flowcast: crash silent
    runs` only; its name's module took about 0.5 s to import): the windows a live serve holds for its runs in flight
    made every other command pay about 1 s of a drop that found nothing (revA46)."""
    import sqlite3

    from prefect.client.schemas.objects import TERMINAL_STATES

    final = sorted(state.value for state in TERMINAL_STATES)
    query = ("SELECT EXISTS (SELECT 1 FROM automation_bucket AS b, json_each(b.bucketing_key) AS k "
             "JOIN flow_run AS r ON k.value = 'prefect.flow-run.' || r.id "
             f"WHERE r.state_type IN ({', '.join('?' * len(final))}))")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)) as con:
            return bool(con.execute(query, final).fetchone()[0])
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise


def drop_final_windows_before_start(say: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """On Prefect's temporary server, before it starts: the windows `flowcast: crash silent runs` left open for runs
    already final go (`drop_final_windows`), which the server's first evaluation acted on, logging `Action failed: ...
    already in terminal state`. Never stops the command: a failure is said (`warn`), what went too (`say`). (The
    automation's name is imported only to say something: its module, with the configuration's, took about 0.5 s of a
    command with nothing to drop.)"""
    try:
        dropped = drop_final_windows()
    except Exception as exc:  # noqa: BLE001 - the database locked or unreadable: the command goes on
        from flowcast.ops.automations import CRASH_SILENT

        warn(f"could not look for the windows {CRASH_SILENT!r} left open for flow runs already final: {exc}")
        return
    if dropped:
        from flowcast.ops.automations import CRASH_SILENT

        say(f"{CRASH_SILENT!r}: dropped {dropped} window(s) left open for flow runs already final (the temporary "
            "server stopped before it counted their final state)")


def _halted(stop: threading.Event | None, busy: Callable[[], bool] | None, started: bool) -> bool:
    """Whether a vacuum returns before its next batch: the serve is stopping (`stop` set), or, once a batch went
    (`started`: the serve looked just before the first), a flow run of the home is in flight (`busy`)."""
    return (stop is not None and stop.is_set()) or (started and busy is not None and busy())


async def _vacuum(cutoff: datetime, home: str, dry_run: bool, stop: threading.Event | None,
                  busy: Callable[[], bool] | None, batch: int) -> Vacuumed:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.services.db_vacuum import (
        _batch_delete,
        _delete_flow_run_batch,
        vacuum_stale_artifact_collections,
    )
    from prefect.server.utilities.database import get_max_query_parameters
    from prefect.utilities.collections import batched_iterable

    db = provide_database_interface()
    condition = _removable(db, cutoff, home)
    if dry_run:
        async with db.session_context() as session:
            count = await session.execute(sa.select(sa.func.count()).select_from(db.FlowRun).where(condition))
            return Vacuumed(int(count.scalar_one()))
    per_statement = max(1, get_max_query_parameters() - 2)
    runs = logs = artifacts = 0
    # one transaction per batch of flow runs, their logs and artifacts after it: what went stays gone, a stop between
    # batches leaves the rest (still chosen) to the next vacuum
    while not (stopped := _halted(stop, busy, runs > 0)) and (
            ids := await _delete_flow_run_batch(db, condition, batch, per_statement)):
        for chunk in batched_iterable(ids, per_statement):
            logs += await _batch_delete(db, db.Log, db.Log.flow_run_id.in_(chunk), 1000)
            artifacts += await _batch_delete(db, db.Artifact, db.Artifact.flow_run_id.in_(chunk), 1000)
        runs += len(ids)
    if not stopped:  # every stale key, this vacuum's and a stopped one's before it: a stopped vacuum writes no more
        await vacuum_stale_artifact_collections(db=db)
    return Vacuumed(runs, logs, artifacts, stopped)


def vacuum(home: str | Path, cutoff: datetime, *, dry_run: bool = False, serving: bool = False,
           stop: threading.Event | None = None, busy: Callable[[], bool] | None = None,
           batch: int = VACUUM_BATCH) -> Vacuumed | None:
    """Delete the flow runs of `home` that Prefect's temporary server keeps and that ended before `cutoff` (tz-aware,
    or naive UTC), with their task runs, logs and artifacts (`_removable`), `batch` flow runs a transaction; `dry_run`:
    only count those runs. `stop`: looked at before each batch; once set, the vacuum returns what it removed so far
    (a serve stopping: `ServeVacuum.stop`), `stopped`, its artifact keys left to the next vacuum; `busy`: asked before
    each batch after the first, True stops it as `stop` does (a run of the home started: `ServeVacuum.turn`). None where runs report to a configured server or no temporary server's
    database exists (module doc); `serving`: as `temporary_database`'s."""
    if temporary_database(serving=serving) is None:
        return None
    when = cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=UTC)
    return asyncio.run(_vacuum(when, str(Path(home).resolve()), dry_run, stop, busy, batch))


def vacuum_due(last: datetime | None, now: datetime, every: timedelta = VACUUM_EVERY, *, busy: bool = False) -> bool:
    """Whether a serve vacuums at `now`: never while a flow run of its home is in flight (`busy`: the next turn looks
    again); otherwise at its first turn (`last`: when it last tried, None before) and once `every` has passed since
    it last tried (a vacuum that failed waits as long as one that succeeded: a warning a day, not one a minute)."""
    return not busy and (last is None or now - last >= every)


IN_FLIGHT = ("PENDING", "RUNNING", "CANCELLING")  # the states of a flow run the vacuum waits for


class ServeVacuum:
    """The vacuum of a `flowcast serve` on Prefect's temporary server (module doc): at each `turn` (the serve's
    scheduler calls it every minute, `flows.deploy.RunScheduler`), `vacuum` of the runs of `home` that ended more
    than `days` before now, when `vacuum_due`. `clock`: what now is (the serve's clock, read where the serve starts;
    a test's instant); `say`: where what it did goes (the serve's log, `flowcast.serve`, by default); `busy_timeout`:
    seconds a look for a run in flight between batches waits for its answer (`_busy_between_batches`)."""

    def __init__(self, home: str | Path, days: float, *, clock: Callable[[], datetime],
                 every: timedelta = VACUUM_EVERY, say: Callable[[str], None] | None = None,
                 batch: int = VACUUM_BATCH, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.home = str(Path(home).resolve())  # as the serve's runs carry it (their `home` parameter)
        self.days = days
        self.every = every
        self.clock = clock
        self.say = say
        self.batch = batch
        self.busy_timeout = busy_timeout
        self.last: datetime | None = None
        self.stopping = threading.Event()  # set by `stop`, read by the vacuum's thread between its batches

    def stop(self) -> None:
        """The serve is stopping (`flows.deploy.RunScheduler.stop`): a vacuum under way returns after the batch it is
        deleting (a backlog of months took minutes, and its thread, which nothing interrupts, held the serve's exit
        past its scheduler's own wait); none starts after. What went stays gone; the rest goes at the next serve's start."""
        self.stopping.set()

    def _busy_between_batches(self, client: Any, loop: asyncio.AbstractEventLoop, failed: list[BaseException],
                              timeout: float = BUSY_TIMEOUT) -> bool:
        """`busy`, asked from the vacuum's thread of the serve's `loop` (where `client` lives) between batches, waiting
        at most `timeout` seconds. A look that fails (the API erring, or no answer in time: `TimeoutError`) counts as a
        run in flight, stopping the vacuum after the batch it deleted; its error goes to `failed` for `turn` to say."""
        future = asyncio.run_coroutine_threadsafe(self.busy(client), loop)
        try:
            return future.result(timeout)
        except Exception as exc:  # noqa: BLE001 - an unanswered look is no go-ahead: said by `turn`, the serve goes on
            future.cancel()
            failed.append(TimeoutError(f"no answer in {timeout:g} s") if isinstance(exc, TimeoutError) else exc)
            return True

    def _say(self, level: str, text: str) -> None:
        if self.say is not None:
            self.say(text)
        else:
            from prefect.logging import get_logger

            getattr(get_logger("flowcast.serve"), level)(text)

    async def busy(self, client: Any, page: int | None = None) -> bool:
        """Whether a flow run of the home is in flight (IN_FLIGHT), asked of the API (`client`), `page` runs a request
        (None: the server's own page size, PREFECT_SERVER_API_DEFAULT_LIMIT; a limit of 200 asked of a server whose
        limit is smaller was refused with a 422, revA44) until none is left: every in-flight run of every home is looked
        at (one request of 200 passed over the rest, a home's run among them). The requests go by expected start time
        (set by a run's first state, so every run in flight has one), each from the latest one read on, leaving out the
        runs read at that instant: a run that ends meanwhile shifts nothing past the check (as an offset would), and
        what the check holds is those runs only, not every run read (until vac45 each request sent the ids of all the
        runs read before it, every run in flight of every home sharing PREFECT_HOME). A run that comes into flight
        during the check behind where it has read is one that started just after it: the vacuum looks again between
        its batches (`turn`)."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterExpectedStartTime,
            FlowRunFilterId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        state = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType[n] for n in IN_FLIGHT]))
        since: datetime | None = None  # the latest expected start time read
        at_since: list[Any] = []  # the runs read that start at `since`: the only ones a request could return again
        while runs := await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=state, expected_start_time=FlowRunFilterExpectedStartTime(after_=since) if since else None,
                id=FlowRunFilterId(not_any_=at_since) if at_since else None),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=page):
            if any((r.parameters or {}).get("home") == self.home for r in runs):
                return True
            latest = runs[-1].expected_start_time
            at_since = [r.id for r in runs if r.expected_start_time == latest] + (at_since if latest == since else [])
            since = latest
        return False

    async def turn(self, client: Any) -> Vacuumed | None:
        """Vacuum now if it is due and no run of the home is in flight; what it removed (None: not now, nothing to
        vacuum, or it failed). Never raises: a failure is a warning, and the serve serves on."""
        now = self.clock()
        if self.stopping.is_set() or not vacuum_due(self.last, now, self.every):
            return None
        try:
            if await self.busy(client):
                return None  # it starts between runs only: the next turn looks again
            # Prefect's runner may start a run after `busy` looked: until the vacuum looks again, after the batch under
            # way, the two share SQLite's one writer, one batch's transaction at a time, which Prefect's writes wait
            # for (its database timeout) as for any other writer; the vacuum removes only runs in a final state that
            # ended before the cutoff, never one in flight (nor its task runs, logs and artifacts).
            loop, last, self.last = asyncio.get_running_loop(), self.last, now
            failed: list[BaseException] = []  # the look between batches that failed, if one did (it stopped the vacuum)
            done = await asyncio.to_thread(
                vacuum, self.home, now - timedelta(days=self.days), serving=True, stop=self.stopping,
                busy=lambda: self._busy_between_batches(client, loop, failed, self.busy_timeout), batch=self.batch)
        except Exception as exc:  # noqa: BLE001 - Prefect's database is not flowcast's: said, the serve goes on
            self._say("warning", f"the flow runs of Prefect's temporary server were not vacuumed: {_error(exc)}; the "
                      f"serve goes on and tries again {'in a day' if self.last == now else 'at its next turn'}")
            return None
        interrupted = done is not None and done.stopped and not self.stopping.is_set()  # by a run of the home, or a
        if interrupted:  # look for one that failed
            self.last = last  # the rest goes at the next turn that finds no run in flight, not a day later
        if failed:
            self._say("warning", "the vacuum of Prefect's temporary server stopped after a batch: its look for a run "
                      f"of this home in flight failed: {_error(failed[0])}; the serve goes on and tries again at its "
                      "next turn")
        if done is not None and done.flow_runs:
            from flowcast.wording import plural

            self._say("info", f"removed {plural(done.flow_runs, 'flow run')} of this home that ended more than "
                      f"{self.days:g} days ago (retention.prefect_runs_days) from Prefect's temporary server, with "
                      f"{plural(done.logs, 'log')} and {plural(done.artifacts, 'artifact')}"
                      + ("; its look for a run in flight failed, the rest goes once no run is in flight" if failed
                         else "; a run of this home started, the rest goes once no run is in flight"
                         if interrupted else ""))
        return done


def _error(exc: BaseException) -> str:
    """`exc` as a warning names it: its type and its message on one line, at most 300 characters."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
