"""The registry index on PostgreSQL: the model registry's versions, production pointers and
promotion history mirrored into tables beside the forecasts, when `store.url` is PostgreSQL.

The registry itself (flowcast.registry: files under home/models, compare-and-swap pointers)
stays the source of truth; the index lets every machine and every SQL client see which model
produced which forecasts (join `forecasts.model_version` to `model_versions.version`) and
what is in production per dataset, without reading the registry's files.

    model_versions  version PRIMARY KEY: name, dataset, kind, recipe, metrics, fingerprint (jsonb),
                    as_of, created_at, description; index (dataset, name)
    production      dataset PRIMARY KEY: version (the production pointer of each dataset)
    promotions      (dataset, seq) PRIMARY KEY: action, version, previous, reason, at, and for a `keep` event
                    (a retrain that kept production) its as_of and run (null for the others); an index
                    made by an older flowcast gets the two columns added, only then (an ALTER TABLE waits for
                    a reader's open transaction: store.pg_wait_s, then StoreLockWaitError naming it)

`sync_registry` replaces the index with the registry's current state in one transaction
(readers see the old index or the new one), so it is idempotent and a crash between two syncs
leaves the last complete one. The flows call it after publishing (a retrain that promoted, a
forecast run) and `flowcast models promote/rollback` after moving a pointer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowcast.config import Settings
    from flowcast.store.postgres import PostgresStore


def _ddl(s: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {s}.model_versions (
            version text PRIMARY KEY, name text NOT NULL, dataset text, kind text NOT NULL,
            recipe jsonb NOT NULL, metrics jsonb NOT NULL, fingerprint jsonb NOT NULL, as_of text,
            created_at text, description text)""",
        f"CREATE INDEX IF NOT EXISTS model_versions_dataset_idx ON {s}.model_versions (dataset, name)",
        f"""CREATE TABLE IF NOT EXISTS {s}.production (
            dataset text PRIMARY KEY, version text NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.promotions (
            dataset text NOT NULL, seq integer NOT NULL, action text NOT NULL, version text,
            previous text, reason text, at text, as_of text, run text, PRIMARY KEY (dataset, seq))""",
    ]


# the columns added to the index after it was first created: an index an older flowcast made stored its keep events
# without their as_of and run. Added only where missing, waiting store.pg_wait_s (`PostgresStore._migrating`): an
# ALTER TABLE takes the table's exclusive lock even when the column exists, and run at every sync it waited for good
# behind a reader's open transaction (a dashboard `idle in transaction`), every later reader queued behind it (review21)
_LATER_COLUMNS = (("promotions", "as_of"), ("promotions", "run"))


def _missing_columns(con: Any, s: str) -> list[tuple[str, str]]:
    have = set(con.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
                           [s]).fetchall())
    return [(t, c) for t, c in _LATER_COLUMNS if (t, c) not in have]


def _dump(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)


def sync_registry(store: PostgresStore, registry: Any) -> dict[str, int]:
    """Replace the index in `store` with `registry`'s versions, pointers and history."""
    versions = registry.list()
    productions = registry.productions()
    history = {d: registry.history(dataset=d) for d in registry.datasets()}
    s = store.schema
    with store._conn("index the model registry") as con:
        with con.transaction():  # (CREATE ... IF NOT EXISTS of what exists locks no table a reader holds)
            con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{s}|registry"])
            for stmt in _ddl(s):
                con.execute(stmt)
        if missing := _missing_columns(con, s):
            with store._migrating(con, lambda: [f"{t}.{c}" for t, c in _missing_columns(con, s)],
                                  tables=tuple(dict.fromkeys(t for t, _ in missing))):
                for t, c in missing:
                    con.execute(f"ALTER TABLE {s}.{t} ADD COLUMN IF NOT EXISTS {c} text")
        _replace(con, s, versions, productions, history)
    return {"versions": len(versions), "production": len(productions),
            "promotions": sum(len(e) for e in history.values())}


def _replace(con: Any, s: str, versions: list[Any], productions: dict[str, Any],
             history: dict[str, list[dict[str, Any]]]) -> None:
    """The index's rows replaced by the registry's, in one transaction (readers see the old index or the new)."""
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{s}|registry"])
        con.execute(f"DELETE FROM {s}.model_versions")
        con.execute(f"DELETE FROM {s}.production")
        con.execute(f"DELETE FROM {s}.promotions")
        with con.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {s}.model_versions VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(v.version, v.name, getattr(v, "dataset", None), getattr(v, "kind", "network"),
                  _dump(getattr(v, "recipe", {}) or {}), _dump(v.metrics or {}), _dump(v.fingerprint or {}),
                  v.as_of, v.created_at, v.describe() if hasattr(v, "describe") else None) for v in versions],
            )
            cur.executemany(f"INSERT INTO {s}.production VALUES (%s, %s)",
                            [(d, v.version) for d, v in productions.items()])
            cur.executemany(
                f"INSERT INTO {s}.promotions (dataset, seq, action, version, previous, reason, at, as_of, run) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(d, i, e.get("action", ""), e.get("version"), e.get("previous"), e.get("reason"),
                  None if e.get("at") is None else str(e.get("at")),
                  None if e.get("as_of") is None else str(e.get("as_of")),
                  None if e.get("run") is None else str(e.get("run")))
                 for d, events in history.items() for i, e in enumerate(events)],
            )


def sync_if_postgres(settings: Settings) -> dict[str, int] | None:
    """`sync_registry` when store.url is PostgreSQL; None otherwise (nothing to mirror)."""
    from flowcast.store.factory import is_postgres

    url = settings.store.url
    if not is_postgres(url):
        return None
    from flowcast.shared import open_registry
    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(url, schema=settings.store.pg_schema, wait_s=settings.store.pg_wait_s)
    return sync_registry(store, open_registry(settings))
