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
