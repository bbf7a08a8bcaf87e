"""The registry index on PostgreSQL: versions, production pointers per dataset and promotion
history mirrored beside the forecasts, joinable to them, idempotent."""

from __future__ import annotations

from datetime import datetime

import psycopg
from publisher import make_forecast
from store_helpers import AS_OF, H

from flowcast.config import load_settings
from flowcast.registry import ModelRegistry
from flowcast.store import open_store
from flowcast.store.registry_index import sync_if_postgres


def test_the_registry_is_mirrored_into_postgres(tmp_path, pg_url, pg_schema):
    settings = load_settings(home=tmp_path / "home", store={"url": pg_url, "pg_schema": pg_schema})
    reg = ModelRegistry(settings.models_dir)
    at = datetime(2024, 1, 1)
    theta = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                         metrics={"mase": 0.9}, created_at=at)
    naive = reg.register(None, name="naive", dataset="sales", kind="statistical", recipe={"model": "naive"},
                         created_at=at)
    other = reg.register(None, name="theta", dataset="energy", kind="statistical", recipe={"model": "theta"},
                         created_at=at)
    reg.promote(theta.version, reason="best", at=at)
    reg.promote(naive.version, reason="better", at=at)
    reg.promote(other.version, reason="first", at=at)
    assert sync_if_postgres(settings) == {"versions": 3, "production": 2, "promotions": 3}
    reg.rollback(dataset="sales", reason="oops", at=at)
    assert sync_if_postgres(settings) == {"versions": 3, "production": 2, "promotions": 4}
    assert sync_if_postgres(settings) == {"versions": 3, "production": 2, "promotions": 4}  # idempotent

    store = open_store(settings)
    store.publish(make_forecast(1, 3, H, AS_OF), dataset="sales", as_of=AS_OF, model="theta",
                  model_version=theta.version, run_id="r", created_at=AS_OF)
    with psycopg.connect(pg_url) as con:
        s = pg_schema
        assert con.execute(f"SELECT dataset, version FROM {s}.production ORDER BY 1").fetchall() == [
            ("energy", other.version), ("sales", theta.version)]
        assert con.execute(f"SELECT kind, recipe->>'model', metrics->>'mase' FROM {s}.model_versions "
                           "WHERE version = %s", [theta.version]).fetchone() == ("statistical", "theta", "0.9")
        assert [r[0] for r in con.execute(f"SELECT action FROM {s}.promotions WHERE dataset = 'sales' "
                                          "ORDER BY seq").fetchall()] == ["promote", "promote", "rollback"]
        # which model made the published forecasts, in SQL
        assert con.execute(f"SELECT DISTINCT m.kind, m.name FROM {s}.forecasts f JOIN {s}.model_versions m "
                           "ON f.model_version = m.version").fetchall() == [("statistical", "theta")]


def test_nothing_is_mirrored_for_an_embedded_store(tmp_path):
    assert sync_if_postgres(load_settings(home=tmp_path)) is None


def test_keep_events_are_indexed_with_their_as_of_and_run_and_an_old_index_gets_the_columns(tmp_path, pg_url,
                                                                                            pg_schema):
    """Regression (registry19): the promotions table stored a `keep` event (a retrain that kept production)
    without its as_of and run, so SQL could not tell which slot it was. It has both now (null for other events),
    and an index an older flowcast made (no such columns, rows in it) gets them added at the next sync."""
    from flowcast.registry import Kept

    settings = load_settings(home=tmp_path / "home", store={"url": pg_url, "pg_schema": pg_schema})
    with psycopg.connect(pg_url, autocommit=True) as con:  # the table as the previous flowcast created it
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {pg_schema}")
        con.execute(f"""CREATE TABLE {pg_schema}.promotions (dataset text NOT NULL, seq integer NOT NULL,
                        action text NOT NULL, version text, previous text, reason text, at text,
                        PRIMARY KEY (dataset, seq))""")
        con.execute(f"INSERT INTO {pg_schema}.promotions VALUES ('sales', 0, 'keep', 'x', NULL, '', NULL)")
    reg = ModelRegistry(settings.models_dir)
    at = datetime(2024, 1, 1)
    theta = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                         created_at=at).version
    reg.promote(theta, reason="best", at=at)
    slot = datetime(2024, 1, 8, 3)
    with reg.publishing("sales", theta, at=slot, kept=Kept(as_of=slot, run="run-7", reason="still the best")) as check:
        check("the publish")  # the store let it through: its keep event is written
    assert sync_if_postgres(settings) == {"versions": 1, "production": 1, "promotions": 2}
    with psycopg.connect(pg_url) as con:
        assert con.execute(f"SELECT action, version, as_of, run FROM {pg_schema}.promotions ORDER BY seq").fetchall() \
            == [("promote", theta, None, None), ("keep", theta, slot.isoformat(), "run-7")]


def test_a_sync_beside_a_readers_open_transaction_neither_waits_for_good_nor_alters_a_whole_index(
        tmp_path, pg_url, pg_schema):
    """review21: every sync (after each publish, promote, rollback on a PostgreSQL store) ran `ALTER TABLE promotions
    ADD COLUMN IF NOT EXISTS as_of/run` (registry19), which takes the table's exclusive lock even when the columns
    exist, with no lock_timeout: a dashboard left `idle in transaction` after reading the index made the run's
    publish task wait in the mirror for good, and every later reader of the table queue behind it (the store's
    own ALTERs wait `store.pg_wait_s`, faults20). The columns are added only when missing, and that waits
    `store.pg_wait_s`, then fails naming the sessions (a warning of the mirror's callers)."""
    import threading
    import time

    import pytest

    from flowcast.errors import StoreLockWaitError

    settings = load_settings(home=tmp_path / "home", store={"url": pg_url, "pg_schema": pg_schema, "pg_wait_s": 1})
    reg = ModelRegistry(settings.models_dir)
    theta = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                         created_at=datetime(2024, 1, 1))
    reg.promote(theta.version, at=datetime(2024, 1, 1))
    assert sync_if_postgres(settings) == {"versions": 1, "production": 1, "promotions": 1}

    reader = psycopg.connect(pg_url, application_name="a dashboard")
    try:
        reader.execute(f"SELECT count(*) FROM {pg_schema}.promotions").fetchone()  # its transaction stays open
        done: list[object] = []
        worker = threading.Thread(target=lambda: done.append(sync_if_postgres(settings)), daemon=True)
        t0 = time.monotonic()
        worker.start()
        worker.join(20)
        assert done == [{"versions": 1, "production": 1, "promotions": 1}], "the sync waited for the reader"
        assert time.monotonic() - t0 < 20
        reader.rollback()

        # an index an older flowcast made (no as_of, run): added, waiting pg_wait_s for the reader, then named
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"ALTER TABLE {pg_schema}.promotions DROP COLUMN as_of, DROP COLUMN run")
        reader.execute(f"SELECT count(*) FROM {pg_schema}.promotions").fetchone()
        t0 = time.monotonic()
        with pytest.raises(StoreLockWaitError, match="a dashboard"):
            sync_if_postgres(settings)
        assert time.monotonic() - t0 < 20
    finally:
        reader.close()
    assert sync_if_postgres(settings) == {"versions": 1, "production": 1, "promotions": 1}  # the reader gone: added
