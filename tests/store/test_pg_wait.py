"""The PostgreSQL store waits for a server that is not up yet (a restart, a failover, a scheduled run
that starts before the database): it tries again with backoff for store.pg_wait_s seconds, then fails
naming the server and what to do. Refusals that waiting cannot change fail at once. A real server."""

from __future__ import annotations

import threading
import time

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
