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
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Vacuumed:
    """What `vacuum` removed (or, dry, would remove): flow runs, and the logs and artifacts that went with them."""

    flow_runs: int
    logs: int = 0
    artifacts: int = 0


def temporary_database() -> Path | None:
    """The SQLite file of Prefect's temporary server when runs report to it (no PREFECT_API_URL) and it exists;
    None when a server is configured, the database is not SQLite, or no run has created it yet."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
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


def vacuum(home: str | Path, cutoff: datetime, *, dry_run: bool = False) -> Vacuumed | None:
    """Delete the flow runs of `home` that Prefect's temporary server keeps and that ended before `cutoff` (tz-aware,
    or naive UTC), with their task runs, logs and artifacts; `dry_run`: only count those runs. None where runs
    report to a configured server or no temporary server's database exists (module doc)."""
    if temporary_database() is None:
        return None
    when = cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=UTC)
    return asyncio.run(_vacuum(when, str(Path(home).resolve()), dry_run))
