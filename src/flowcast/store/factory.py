"""`open_store(settings)`: the forecast store that `[store] url` names.

    url unset                      the embedded store under home/warehouse (Parquet + DuckDB views),
                                   or under shared/warehouse when `shared` is set (flowcast.shared)
    a folder or file:///path       the embedded store there
    s3://, gs://, az:// URL        the embedded store's Parquet dataset in that object store
                                   (fsspec; options from `store.storage_options`), no DuckDB file
    postgresql://user@host/db      PostgreSQL (tables in schema `store.pg_schema`)

An embedded store written before forecasts were keyed by dataset is migrated on open when no
other writer is migrating it (migrate.py; writers migrate before they write in any case). Its
DuckDB views are created on open too when they are missing (a writer killed while creating them
on the store's first publish, a deleted DuckDB file): until then a query of forecasts.duckdb
found no table `forecasts` although the Parquet dataset held every row.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeGuard

from flowcast.store.base import ForecastStore
from flowcast.store.migrate import Resolver
from flowcast.timekeys import utc_text

if TYPE_CHECKING:
    from flowcast.config import Settings
    from flowcast.store.embedded import EmbeddedStore

PG_SCHEMES = ("postgresql", "postgres")
log = logging.getLogger(__name__)


def is_postgres(url: str | None) -> TypeGuard[str]:
    return url is not None and url.split("://", 1)[0].split("+", 1)[0].lower() in PG_SCHEMES


def registry_resolver(settings: Settings) -> Resolver:
    """The dataset of an old partition: the source its model version was registered with."""

    def resolve(meta: dict[str, str]) -> str | None:
        version = meta.get("model_version")
        if not version:
            return None
        from flowcast.shared import open_registry

        mv = open_registry(settings).get(version)
        name = getattr(mv, "dataset", None)
        if isinstance(name, str) and name:
            return name
        fp = getattr(mv, "fingerprint", None) or {}
        return fp.get("source") or fp.get("dataset") or None

    return resolve


def open_store(settings: Settings, *, migrate: bool = True) -> ForecastStore:
    """The configured forecast store (see module doc)."""
    cfg = settings.store
    if is_postgres(cfg.url):
        from flowcast.store.postgres import PostgresStore

        return PostgresStore(cfg.url, schema=cfg.pg_schema, wait_s=cfg.pg_wait_s)
    from flowcast.store.embedded import EmbeddedStore

    root = cfg.url or (settings.shared_path("warehouse") if settings.shared else settings.warehouse_dir)
    store = EmbeddedStore(
        root, storage_options=cfg.storage_options or settings.shared_options, lock_timeout=cfg.lock_timeout,
        superseded_grace_s=cfg.superseded_grace_s,
        legacy_dataset=cfg.legacy_dataset, resolve_legacy=registry_resolver(settings),
    )
    if migrate:
        try:
            moved = store.migrate(blocking=False)
        except Exception as exc:  # noqa: BLE001 - e.g. a read-only home: readers still see every row
            log.warning("could not migrate the forecast store %s yet (%s); writers migrate it", store.location, exc)
        else:
            for m in moved:
                log.info("migrated forecasts of as_of %s (%d rows) to dataset %s: %s", utc_text(m.as_of), m.rows,
                         m.dataset, m.why)
        repair_views(store)
    return store


def repair_views(store: EmbeddedStore) -> None:
    """Create the DuckDB views `store` lacks (no DuckDB file is opened when the sidecar says they
    exist); a file held open elsewhere, or a read-only warehouse, is logged: readers never need them."""
    try:
        note = store.sync_views()
    except Exception as exc:  # noqa: BLE001 - e.g. a read-only home: the Parquet dataset still reads
        log.warning("could not create the DuckDB views of %s yet (%s); the next publish creates them",
                    store.location, exc)
    else:
        store.views_note = note
        if note:
            log.info("%s", note)
