"""The PostgreSQL store waits for a server that is not up yet (a restart, a failover, a scheduled run
that starts before the database): it tries again with backoff for store.pg_wait_s seconds, then fails
naming the server and what to do. Refusals that waiting cannot change fail at once. A real server."""

from __future__ import annotations

import threading
import time

import polars as pl
import pytest
from pg_helpers import free_port

from flowcast.config import load_settings
from flowcast.errors import PublishError
from flowcast.store import open_store
from flowcast.store.postgres import PostgresStore


def test_a_server_that_comes_up_while_the_store_waits_is_used(postgres):
    """Regression: a run that started while its PostgreSQL server restarted failed at once with
    'cannot connect ... connection refused'."""
    db = postgres.create_database("pg_wait_up")
    store = PostgresStore(postgres.url(db), wait_s=60)
    assert store.datasets() == []
    postgres.stop()
    starter = threading.Timer(2.0, postgres.start)
    starter.start()
    try:
        t0 = time.monotonic()
        assert PostgresStore(postgres.url(db), wait_s=60).datasets() == []
        assert time.monotonic() - t0 >= 1.5  # it waited for the server rather than finding it up
    finally:
        starter.cancel()
        starter.join()
        if not (postgres.data_dir / "postmaster.pid").exists():  # leave the session's server running
            postgres.start()
    postgres.drop_database(db)


def test_a_server_that_never_comes_up_is_named_with_what_to_do(tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    settings = load_settings(home=tmp_path, store={"url": url, "pg_wait_s": 1.5})
    t0 = time.monotonic()
    with pytest.raises(PublishError) as err:
        open_store(settings).datasets()
    said = str(err.value)
    assert time.monotonic() - t0 < 30
    assert "cannot connect to the PostgreSQL store postgresql://postgres@127.0.0.1" in said
    assert "store.pg_wait_s = 1.5" in said and "is the server running" in said and "tried " in said


@pytest.mark.parametrize("auth, params", [("nobody:s3cret@", ""), ("nobody@", ""), ("nobody@", "?password=s3cret")])
def test_the_first_refused_try_says_once_what_the_store_waits_for(tmp_path, caplog, auth, params):
    """Regression (nuB46): `flowcast forecasts` with a store.url nothing listens at tried 15 times over 58 s without
    a word. The first refused try says what it waits for, once (the password hidden); later tries say nothing."""
    port = free_port()
    url = f"postgresql://{auth}127.0.0.1:{port}/x{params}"
    settings = load_settings(home=tmp_path, store={"url": url, "pg_wait_s": 1.5})
    with caplog.at_level("WARNING", logger="flowcast.store.postgres"), pytest.raises(PublishError):
        open_store(settings).datasets()
    lines = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    shown = url.replace(":s3cret@", ":***@").replace("=s3cret", "=***")
    said = f"could not connect to {shown} (connection refused); trying again for up to 1.5 s (store.pg_wait_s)"
    assert lines == [said], lines
    assert "s3cret" not in caplog.text


def test_an_unknown_database_fails_at_once(postgres):
    t0 = time.monotonic()
    with pytest.raises(PublishError, match="does not exist"):
        PostgresStore(postgres.url("no_such_database"), wait_s=60).datasets()
    assert time.monotonic() - t0 < 20  # not the 60 s a server that is down is waited for


def test_a_publish_task_blocked_on_the_value_column_alter_fails_once_without_retries(pg_url, pg_schema, tmp_path,
                                                                                     prefect_api):
    """gc19: a publish whose ALTER TABLE (a value column the forecasts table lacks) waited store.pg_wait_s for a
    reader's open transaction failed naming the sessions holding the table, and the publish task took that for
    transient: 3 retries, each waiting store.pg_wait_s again (over 3 minutes at the default 60 s) to fail with the
    same message. It is not retried: a person must end those sessions."""
    import psycopg
    from publisher import make_forecast
    from store_helpers import AS_OF, OTHER, H, publish

    from flowcast.errors import StoreLockWaitError
    from flowcast.flows.tasks import _transient, publish_task

    publish(PostgresStore(pg_url, schema=pg_schema), make_forecast(1, 2, H, AS_OF))
    wider = make_forecast(2, 2, H, OTHER).with_columns((pl.col("y_hat") - 2).alias("y_hat_q5"))
    settings = load_settings(home=tmp_path, store={"url": pg_url, "pg_schema": pg_schema, "pg_wait_s": 1})
    reader = psycopg.connect(pg_url, application_name="a dashboard")
    pid = reader.info.backend_pid
    try:
        reader.execute(f"SELECT count(*) FROM {pg_schema}.forecasts").fetchone()  # its transaction stays open
        t0 = time.monotonic()
        state = publish_task(settings, wider, dataset="sales", as_of=OTHER, model="lstm", model_version="lstm-v2",
                             run_id="run-2", created_at=OTHER, return_state=True)
        took = time.monotonic() - t0
    finally:
        reader.rollback()
        reader.close()
    assert state.is_failed()
    with pytest.raises(StoreLockWaitError, match=f"pid {pid} \\(a dashboard, idle in transaction"):
        state.result()
    assert not _transient(None, None, state)
    # one wait of 1 s; retried, 3 more waits and backoff delays of about 2, 4 and 8 s (at least half of each)
    assert took < 7, took
    assert not PostgresStore(pg_url, schema=pg_schema).has("sales", OTHER)


@pytest.mark.parametrize("migration", ["a value column of the publish", "a later column, as the store opens"])
def test_a_server_restart_while_a_migration_waits_for_a_lock_is_waited_for_and_the_migration_done(
        postgres, pg_url, pg_schema, caplog, migration):
    """faults21: a migration (the ALTER TABLE of a value column a publish adds, or of a column an older flowcast's
    store lacks, as a command opens it) waiting for a dashboard's open transaction when the server restarts (the
    restart ends that session too). It failed the command at once, `terminating connection due to administrator
    command`, though store.pg_wait_s says a restarting server is waited for; it waits, connects again and migrates
    (nothing was changed by the cut transaction), within store.pg_wait_s. The publish lands once, whole."""
    import logging

    import psycopg
    from publisher import make_forecast
    from store_helpers import AS_OF, OTHER, H, publish

    publish(PostgresStore(pg_url, schema=pg_schema), make_forecast(1, 2, H, AS_OF))
    if migration.startswith("a later column"):
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"ALTER TABLE {pg_schema}.realized DROP COLUMN rmsse_snaive")
    reader = psycopg.connect(pg_url, application_name="a dashboard")
    reader.execute(f"SELECT count(*) FROM {pg_schema}.realized, {pg_schema}.forecasts").fetchone()  # stays open

    def restart() -> None:
        time.sleep(1.5)
        postgres.stop()
        time.sleep(1.0)
        postgres.start()

    restarter = threading.Thread(target=restart)
    restarter.start()
    store = PostgresStore(pg_url, schema=pg_schema, wait_s=40)
    try:
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="flowcast.store.postgres"):
            if migration.startswith("a value column"):
                wider = make_forecast(2, 2, H, OTHER).with_columns((pl.col("y_hat") - 2).alias("y_hat_q5"))
                publish(store, wider, as_of=OTHER, variant=2)
            else:
                assert store.datasets() == ["sales"]
        took = time.monotonic() - t0
    finally:
        restarter.join()
        reader.close()
        if not (postgres.data_dir / "postmaster.pid").exists():  # leave the session's server running
            postgres.start()
    assert took >= 1.5, took  # it waited for the lock, then for the server
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "the server closed the connection while this flowcast added the columns it records" in said, said
    assert "nothing was changed; connecting again" in said, said
    fresh = PostgresStore(pg_url, schema=pg_schema)
    if migration.startswith("a value column"):
        got = fresh.read(as_of=OTHER)
        assert got.height == 2 * H and "y_hat_q5" in got.columns and got["y_hat_q5"].null_count() == 0
    else:
        with psycopg.connect(pg_url, autocommit=True) as con:
            assert con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND "
                               "column_name = 'rmsse_snaive'", [pg_schema]).fetchone() == (1,)
    assert fresh.read(as_of=AS_OF).height == 2 * H


_HOLDER = """
import sys, time, psycopg
con = psycopg.connect(sys.argv[1], application_name="a dashboard")
if sys.argv[3] == "key":  # another publisher of the key, stopped in its transaction
    con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [sys.argv[4]])
else:
    con.execute("SELECT count(*) FROM " + sys.argv[2] + ".forecasts").fetchone()
print("holding", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("holds", ["table", "key"])
def test_a_publish_waiting_on_a_lock_of_a_session_whose_client_is_killed_goes_on_once_the_server_releases_it(
        pg_url, pg_schema, holds):
    """faults21 (held): the client process of a session holding what a publish waits for, the forecasts table (its
    ALTER TABLE of a value column waits) or the key's lock (another publisher of the key), SIGKILLed during the wait:
    the server ends that session and releases its locks, and the publish goes on and lands once, whole."""
    import signal
    import subprocess
    import sys
    from datetime import datetime

    from publisher import make_forecast
    from store_helpers import AS_OF, OTHER, H, publish

    store = PostgresStore(pg_url, schema=pg_schema, wait_s=30)
    publish(store, make_forecast(1, 2, H, AS_OF))
    wider = make_forecast(2, 2, H, OTHER).with_columns((pl.col("y_hat") - 2).alias("y_hat_q5"))
    if holds == "key":  # the value column exists already: the publish waits on the key's lock alone
        publish(store, wider, as_of=datetime(2023, 1, 1), variant=3)
    key = f"{pg_schema}|forecasts|sales|{OTHER.isoformat()}"  # the store's key lock (_lock_key)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, pg_url, pg_schema, holds, key], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        threading.Timer(1.5, holder.send_signal, [signal.SIGKILL]).start()
        t0 = time.monotonic()
        publish(PostgresStore(pg_url, schema=pg_schema, wait_s=30), wider, as_of=OTHER, variant=2)
        took = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert 1.4 <= took < 20, took  # it waited for the killed session, not for pg_wait_s
    got = PostgresStore(pg_url, schema=pg_schema).read(as_of=OTHER)
    assert got.height == 2 * H and got["y_hat_q5"].null_count() == 0


@pytest.mark.parametrize(("url", "env", "said"), [
    ("postgresql://u:secret@db.example:5433/sales", {}, "host db.example, port 5433, database sales"),
    ("postgresql:///sales?host=/run/postgresql", {}, "host /run/postgresql, port 5432, database sales"),
    ("postgresql://u@db.example", {}, "host db.example, port 5432, database u"),
    ("postgresql://", {"PGHOST": "pg.internal", "PGPORT": "6000", "PGDATABASE": "fc"},
     "host pg.internal, port 6000, database fc"),
    ("postgresql://", {"PGUSER": "ops"}, "host the local socket, port 5432, database ops"),
])
def test_the_server_a_store_url_names_is_said_with_libpqs_defaults(url, env, said, monkeypatch):
    """The run that cannot reach its store names host, port and database (serve40), also where the URL leaves
    some to libpq's defaults; never the password."""
    from flowcast.store.postgres import server_of

    for var in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert server_of(url) == said and "secret" not in server_of(url)


@pytest.mark.parametrize("auth, params, written", [
    ("nobody:s3cr%zzet@", "", '"s3cr%zzet"'),  # libpq: invalid percent-encoded token: "s3cr%zzet"
    ("nobody:s3cr%00et@", "", '"s3cr%00et"'),  # forbidden value %00 in percent-encoded value
    ("nobody:s3cr et@", "", '"s3cr et"'),  # unexpected spaces found in "s3cr et"
    ("nobody@", "?password=s3cr%zzet", '"s3cr%zzet"'),
])
def test_a_url_libpq_cannot_read_fails_at_once_without_its_password(tmp_path, caplog, auth, params, written):
    """Regression (revA47): libpq quotes the malformed part of a URL it cannot read, the password among them
    ('invalid percent-encoded token: "s3cr%zzet"'): the error and the first try's warning showed the password, and the
    store tried that URL again for store.pg_wait_s (a URL does not mend by waiting). It fails at once, the password
    `***` in what it says, with the advice to fix store.url."""
    url = f"postgresql://{auth}127.0.0.1:{free_port()}/x{params}"
    settings = load_settings(home=tmp_path, store={"url": url, "pg_wait_s": 30})
    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger="flowcast.store.postgres"), pytest.raises(PublishError) as err:
        open_store(settings).datasets()
    said = str(err.value)
    assert time.monotonic() - t0 < 10, said  # (not the 30 s of store.pg_wait_s)
    assert "s3cr" not in said and "s3cr" not in caplog.text, (said, caplog.text)
    assert written.replace(written.strip('"'), "***") in said, said  # where libpq quoted it
    assert "Fix store.url (FLOWCAST_STORE__URL) as that error says" in said, said
