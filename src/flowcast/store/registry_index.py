"""The registry index on PostgreSQL: the model registry's versions, production pointers and
promotion history mirrored into tables beside the forecasts, when `store.url` is PostgreSQL.

The registry itself (flowcast.registry: files under home/models, compare-and-swap pointers)
stays the source of truth; the index lets every machine and every SQL client see which model
produced which forecasts (join `forecasts.model_version` to `model_versions.version`) and
what is in production per dataset, without reading the registry's files.

    model_versions  version PRIMARY KEY: name, dataset, kind, recipe, metrics, fingerprint (jsonb),
                    as_of, created_at, description; index (dataset, name)
    production      dataset PRIMARY KEY: version (the production pointer of each dataset)
    promotions      (dataset, seq) PRIMARY KEY: action, version, previous, reason, at, as_of where the event
                    has one (a `keep`: a retrain that kept production; a run's promotion) and run where it
                    names one (a `keep`; a run's withdraw, withdraw_champion, take_back), else null; an index
                    made by an older flowcast gets the two columns added (ADD COLUMN IF NOT EXISTS)

No flowcast command reads the index (`models history`, `flows.common.withdrawn_unsaid` and
`withdraw_unpublished_winner` read the registry's files), so the `for_run` of a withdrawal made on a killed
run's behalf is not mirrored: `flowcast models history --json` has it.

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
    from flowcast.store.postgres import Catalog, PostgresStore


def _ddl(s: str) -> list[tuple[str, str, str]]:
    """(object, what it is made in, statement), as the store's (`flowcast.store.postgres._ddl`, `plan`)."""
    return [
        ("model_versions", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.model_versions (
            version text PRIMARY KEY, name text NOT NULL, dataset text, kind text NOT NULL,
            recipe jsonb NOT NULL, metrics jsonb NOT NULL, fingerprint jsonb NOT NULL, as_of text,
            created_at text, description text)"""),
        ("model_versions_dataset_idx", "model_versions",
         f"CREATE INDEX IF NOT EXISTS model_versions_dataset_idx ON {s}.model_versions (dataset, name)"),
        ("production", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.production (
            dataset text PRIMARY KEY, version text NOT NULL)"""),
        ("promotions", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.promotions (
            dataset text NOT NULL, seq integer NOT NULL, action text NOT NULL, version text,
            previous text, reason text, at text, as_of text, run text, PRIMARY KEY (dataset, seq))"""),
        # an index an older flowcast made: its keep events were stored without their as_of and run
        ("promotions.as_of", "promotions", f"ALTER TABLE {s}.promotions ADD COLUMN IF NOT EXISTS as_of text"),
        ("promotions.run", "promotions", f"ALTER TABLE {s}.promotions ADD COLUMN IF NOT EXISTS run text"),
    ]


def _dump(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)


_TABLES = ("model_versions", "production", "promotions")


def _catalog(con: Any, s: str) -> Catalog:
    """What of the index's tables, index and later columns schema `s` has (one catalog query)."""
    from flowcast.store.postgres import catalog

    return catalog(con, s, [o for o, _, _ in _ddl(s) if "." not in o], ["promotions"])


def _missing(con: Any, s: str) -> list[str]:
    """What of the index's tables, index and later columns schema `s` lacks (empty: `_ddl` has nothing to do)."""
    have = _catalog(con, s).present
    return [o if "." in o else f"{s}.{o}" for o, _, _ in _ddl(s) if o not in have]


def sync_registry(store: PostgresStore, registry: Any) -> dict[str, int]:
    """Replace the index in `store` with `registry`'s versions, pointers and history. Its DDL runs only for the
    tables, index and columns the catalog (one query: `postgres.catalog`, `plan`) says are missing, none on an index
    that is whole (an index missing a column ran every CREATE ... IF NOT EXISTS too), as the store's own migrations do (`PostgresStore._migrating`: a session holding a table,
    a dashboard's open transaction, is waited for store.pg_wait_s, then a StoreLockWaitError naming it): it ran at
    every sync, and `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` takes its table's lock before it finds the column
    there, so a dashboard `idle in transaction` on `promotions` held every run that published, after its publish,
    and every `models promote`, for good (later readers of the table queued behind it). What is missing and this role
    may not make (a role with rights on the rows only) is a PublishError naming it, before any DDL is sent."""
    versions = registry.list()
    productions = registry.productions()
    history: dict[str, list[dict[str, Any]]] = {}
    for event in registry.history():  # every dataset, one whose events are all in history.jsonl included
        history.setdefault(str(event["dataset"]), []).append(event)
    s = store.schema
    from flowcast.store.postgres import plan, unmakeable

    with store._conn("index the model registry") as con:
        cat = _catalog(con, s)
        store.refuse_unmakeable(con, "index the model registry", unmakeable(_ddl(s), cat))  # before any DDL is sent
        if stmts := plan(_ddl(s), cat):  # only what is missing: on an index that is whole, no DDL
            with store._migrating(con, lambda: _missing(con, s), tables=_TABLES):
                for stmt in stmts:
                    con.execute(stmt)
        _fill(con, s, versions, productions, history)
    return {"versions": len(versions), "production": len(productions),
            "promotions": sum(len(e) for e in history.values())}


def _fill(con: Any, s: str, versions: list[Any], productions: dict[str, Any],
          history: dict[str, list[dict[str, Any]]]) -> None:
    """The index's rows replaced in one transaction (readers see the old index or the new one)."""
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
