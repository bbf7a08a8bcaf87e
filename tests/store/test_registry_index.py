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


def test_a_dashboard_reading_the_index_holds_no_sync_and_an_old_index_waits_store_pg_wait_s(tmp_path, pg_url,
                                                                                            pg_schema):
    """faults21: every sync ran the index's DDL, and `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` takes its table's lock
    before it finds the column: a dashboard `idle in transaction` on `promotions` held every run that published (after
    its publish) and every `models promote`, for good, store.pg_wait_s or not. A sync whose index is whole runs no
    DDL and passes it; one whose index an older flowcast made (no `promotions.run`) waits store.pg_wait_s, then fails
    naming the dashboard (a warning in the run; nothing changed), and adds the column once it is gone."""
    import threading
    import time

    import pytest

    from flowcast.errors import StoreLockWaitError

    settings = load_settings(home=tmp_path / "home", store={"url": pg_url, "pg_schema": pg_schema, "pg_wait_s": 1})
    reg = ModelRegistry(settings.models_dir)
    at = datetime(2024, 1, 1)
    theta = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                         created_at=at)
    reg.promote(theta.version, reason="best", at=at)
    assert sync_if_postgres(settings) == {"versions": 1, "production": 1, "promotions": 1}

    def held_by_a_dashboard(run):
        reader = psycopg.connect(pg_url, application_name="a dashboard")
        reader.execute(f"SELECT count(*) FROM {pg_schema}.promotions").fetchone()  # its transaction stays open
        def end_it() -> None:  # a sync waiting for good: fail, not hang
            with psycopg.connect(pg_url, autocommit=True) as con:
                con.execute("SELECT pg_terminate_backend(%s)", [reader.info.backend_pid])

        watchdog = threading.Timer(15, end_it)
        watchdog.start()
        t0 = time.monotonic()
        try:
            return run(reader.info.backend_pid), time.monotonic() - t0
        finally:
            watchdog.cancel()
            watchdog.join()
            reader.close()

    counts, took = held_by_a_dashboard(lambda pid: sync_if_postgres(settings))
    assert counts == {"versions": 1, "production": 1, "promotions": 1} and took < 5, took

    with psycopg.connect(pg_url, autocommit=True) as con:  # an index an older flowcast made
        con.execute(f"ALTER TABLE {pg_schema}.promotions DROP COLUMN run")

    def refused(pid: int) -> str:
        with pytest.raises(StoreLockWaitError) as err:
            sync_if_postgres(settings)
        return str(err.value)

    said, took = held_by_a_dashboard(refused)
    assert took < 10, took
    assert "promotions.run" in said and "(a dashboard, idle in transaction" in said and "nothing was changed" in said
    assert sync_if_postgres(settings) == {"versions": 1, "production": 1, "promotions": 1}
    with psycopg.connect(pg_url) as con:
        assert con.execute(f"SELECT version, run FROM {pg_schema}.promotions").fetchall() == [(theta.version, None)]


def _ddl_logged(postgres, start: int) -> list[str]:
    """The first line of each DDL statement the server logged since byte `start` of its log (log_statement = 'ddl')."""
    log = postgres.log_file.read_bytes()[start:].decode(errors="replace")
    return [" ".join(line.split("statement: ", 1)[1].split()) for line in log.splitlines() if "LOG:  statement: " in line]


def test_a_promote_runs_ddl_only_for_what_the_catalog_says_is_missing(tmp_path, postgres, pg_url, pg_schema):
    """A promote on PostgreSQL (`flowcast models promote`: the registry index's sync, through a store connection)
    ran `CREATE TABLE / INDEX IF NOT EXISTS` and `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` for every object of the
    index, and every later-column ALTER of the store, whenever anything was missing: each needs CREATE on the schema
    or the table's owner and takes locks, though the object exists. The server logs every DDL statement here
    (log_statement = 'ddl', set by the URL): a first promote makes the tables, one on an up-to-date store runs no DDL,
    one on a store and an index an older flowcast made runs only the ALTERs of the columns they lack."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    url = f"{pg_url}?options=-c%20log_statement%3Dddl"
    settings = load_settings(home=tmp_path / "home", store={"url": url, "pg_schema": pg_schema})
    reg = ModelRegistry(settings.models_dir)
    versions = [reg.register(None, name=name, dataset="sales", kind="statistical", recipe={"model": name},
                             created_at=datetime(2024, 1, 1)).version for name in ("theta", "naive", "theta")]
    env = {"FLOWCAST_STORE__URL": url, "FLOWCAST_STORE__PG_SCHEMA": pg_schema, "COLUMNS": "300"}

    def promote(version: str) -> list[str]:
        start = postgres.log_file.stat().st_size
        res = CliRunner().invoke(app, ["models", "promote", version, "--home", str(tmp_path / "home")], env=env)
        assert res.exit_code == 0 and "warning" not in res.output, res.output
        with psycopg.connect(pg_url) as con:
            assert con.execute(f"SELECT version FROM {pg_schema}.production").fetchall() == [(version,)]
        return _ddl_logged(postgres, start)

    made = promote(versions[0])
    assert f"CREATE SCHEMA IF NOT EXISTS {pg_schema}" in made
    assert {f"CREATE TABLE IF NOT EXISTS {pg_schema}.{t} (" for t in ("forecasts", "model_versions", "promotions")} \
        <= set(made)
    assert promote(versions[1]) == []  # up to date: no DDL
    with psycopg.connect(pg_url, autocommit=True) as con:  # what an older flowcast made
        con.execute(f"ALTER TABLE {pg_schema}.promotions DROP COLUMN run")
        con.execute(f"ALTER TABLE {pg_schema}.realized DROP COLUMN lookahead")
    assert promote(versions[2]) == [f"ALTER TABLE {pg_schema}.realized ADD COLUMN IF NOT EXISTS lookahead boolean",
                                    f"ALTER TABLE {pg_schema}.promotions ADD COLUMN IF NOT EXISTS run text"]
    assert promote(versions[0]) == []
