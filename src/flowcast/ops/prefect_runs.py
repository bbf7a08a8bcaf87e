"""The flow runs Prefect's temporary server keeps: `flowcast gc` removes the old ones.

Without PREFECT_API_URL every `flowcast run`, `forecast`, `backfill` and `flowcast serve` reports to Prefect's
temporary server, whose database is PREFECT_HOME's (`prefect.db`, the one all of them share). Prefect starts that
server "ephemeral", with only the services marked to run there, and its flow-run vacuum is not one of them
(PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED=flow_runs changes nothing there): every run's flow run, task runs,
states, logs and artifacts stayed for good, about 300 KB per forecast run of 4 tiny series (soak43: 20 runs,
prefect.db 7.7 MB to 15 MB, `flowcast gc` removing none of it). `vacuum` deletes, as that service would, the
top-level flow runs of one home (their `home` parameter; other homes sharing PREFECT_HOME, and other flows, are
left alone) in a final state that ended before a cutoff, with their task runs (cascaded), logs and artifacts; a subflow whose parent went is deleted with the next batch (its parent link is cleared), and artifact
keys left naming a deleted artifact are re-pointed or dropped (Prefect's own reconciliation).

A server named by PREFECT_API_URL is left alone: it is the server's to vacuum (`make server` turns its vacuum on)
and it may hold other people's runs.

`flowcast serve` on the temporary server vacuums it too (`ServeVacuum`): a serve left running for months is the home
nobody runs `flowcast gc` in, and its runs were the ones that piled up. It vacuums as it starts and then once a day
(`vacuum_due`), only between runs: never while a flow run of its home is Pending, Running or Cancelling (it looks
again at its next turn, every minute). A vacuum that fails (the database locked or unreadable) is a warning: the
serve serves on and tries again a day later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VACUUM_EVERY = timedelta(days=1)  # how often a serve vacuums the temporary server (`ServeVacuum`)


@dataclass(frozen=True)
class Vacuumed:
    """What `vacuum` removed (or, dry, would remove): flow runs, and the logs and artifacts that went with them."""

    flow_runs: int
    logs: int = 0
    artifacts: int = 0


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


def _eligible(db: Any, cutoff: datetime, home: str, *, top_level: bool = True) -> Any:
    """Prefect's own rule (its vacuum_old_flow_runs), for the runs of `home` (resolved, as flows record it): runs in
    a final state that ended before `cutoff`; `top_level`: only those that are no subflow of a run still there."""
    import sqlalchemy as sa
    from prefect.server.schemas.states import TERMINAL_STATES

    rule = sa.and_(sa.func.json_extract(db.FlowRun.parameters, "$.home") == home,
                   db.FlowRun.state_type.in_(TERMINAL_STATES), db.FlowRun.end_time.is_not(None),
                   db.FlowRun.end_time < cutoff)
    return sa.and_(db.FlowRun.parent_task_run_id.is_(None), rule) if top_level else rule


async def _vacuum(cutoff: datetime, home: str, dry_run: bool) -> Vacuumed:
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
    condition = _eligible(db, cutoff, home)
    if dry_run:  # subflows too: each goes once its parent has gone
        async with db.session_context() as session:
            count = await session.execute(sa.select(sa.func.count()).select_from(db.FlowRun)
                                          .where(_eligible(db, cutoff, home, top_level=False)))
            return Vacuumed(int(count.scalar_one()))
    per_statement = max(1, get_max_query_parameters() - 2)
    runs = logs = artifacts = 0
    while ids := await _delete_flow_run_batch(db, condition, 200, per_statement):
        for batch in batched_iterable(ids, per_statement):
            logs += await _batch_delete(db, db.Log, db.Log.flow_run_id.in_(batch), 1000)
            artifacts += await _batch_delete(db, db.Artifact, db.Artifact.flow_run_id.in_(batch), 1000)
        runs += len(ids)
    if artifacts:
        await vacuum_stale_artifact_collections(db=db)
    return Vacuumed(runs, logs, artifacts)


def vacuum(home: str | Path, cutoff: datetime, *, dry_run: bool = False, serving: bool = False) -> Vacuumed | None:
    """Delete the flow runs of `home` that Prefect's temporary server keeps and that ended before `cutoff` (tz-aware,
    or naive UTC), with their task runs, logs and artifacts; `dry_run`: only count those runs. None where runs
    report to a configured server or no temporary server's database exists (module doc); `serving`: as
    `temporary_database`'s."""
    if temporary_database(serving=serving) is None:
        return None
    when = cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=UTC)
    return asyncio.run(_vacuum(when, str(Path(home).resolve()), dry_run))


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
    a test's instant); `say`: where what it did goes (the serve's log, `flowcast.serve`, by default)."""

    def __init__(self, home: str | Path, days: float, *, clock: Callable[[], datetime],
                 every: timedelta = VACUUM_EVERY, say: Callable[[str], None] | None = None) -> None:
        self.home = str(Path(home).resolve())  # as the serve's runs carry it (their `home` parameter)
        self.days = days
        self.every = every
        self.clock = clock
        self.say = say
        self.last: datetime | None = None

    def _say(self, level: str, text: str) -> None:
        if self.say is not None:
            self.say(text)
        else:
            from prefect.logging import get_logger

            getattr(get_logger("flowcast.serve"), level)(text)

    async def busy(self, client: Any) -> bool:
        """Whether a flow run of the home is in flight (IN_FLIGHT), asked of the API (`client`): every page of the
        runs in flight (the server's page size, PREFECT_API_DEFAULT_LIMIT: 200), of every home (the API filters no
        parameter) and flow, until one comes back empty; it read the first (in the order of their random ids), and a
        run of the home on another was missed (a vacuum during it)."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        flying = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType[n] for n in IN_FLIGHT])))
        offset = 0
        while runs := await client.read_flow_runs(flow_run_filter=flying, sort=FlowRunSort.ID_DESC, offset=offset):
            if any((r.parameters or {}).get("home") == self.home for r in runs):
                return True
            offset += len(runs)
        return False

    async def turn(self, client: Any) -> Vacuumed | None:
        """Vacuum now if it is due and no run of the home is in flight; what it removed (None: not now, nothing to
        vacuum, or it failed). Never raises: a failure is a warning, and the serve serves on."""
        now = self.clock()
        if not vacuum_due(self.last, now, self.every):
            return None
        try:
            if await self.busy(client):
                return None  # between runs only: the next turn looks again
            self.last = now
            done = await asyncio.to_thread(vacuum, self.home, now - timedelta(days=self.days), serving=True)
        except Exception as exc:  # noqa: BLE001 - Prefect's database is not flowcast's: said, the serve goes on
            self._say("warning", f"the flow runs of Prefect's temporary server were not vacuumed: {type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:300]}; the serve goes on and tries again "
                      f"{'in a day' if self.last == now else 'at its next turn'}")
            return None
        if done is not None and done.flow_runs:
            from flowcast.wording import plural

            self._say("info", f"removed {plural(done.flow_runs, 'flow run')} of this home that ended more than "
                      f"{self.days:g} days ago (retention.prefect_runs_days) from Prefect's temporary server, with "
                      f"{plural(done.logs, 'log')} and {plural(done.artifacts, 'artifact')}")
        return done
