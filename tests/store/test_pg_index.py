"""store54: an index missing from a PostgreSQL store's table that exists (a store made before the read index) is built
CONCURRENTLY at the next connection, outside its DDL transaction and under an advisory lock of its own: publishes go
on while it builds, a second session leaves the build to the first, and an INVALID index a killed build left is
dropped and built again. fixD54: while an unrelated session holds a snapshot (which the build would wait for) the
build is not tried and no command waits; each of the build's lock waits is short. On a real server
(tests/pg_helpers.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, OTHER, H, publish

READ_IDX = "forecasts_read_idx"


def _valid(con: Any, schema: str) -> bool | None:
    """Whether the read index is valid (None: there is none)."""
    row = con.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                      [f"{schema}.{READ_IDX}"]).fetchone()
    return None if row is None else row[0]


def _until(what: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.05)


def _holding_a_snapshot(pg_url: str) -> Any:
    """A session in a REPEATABLE READ transaction with its snapshot taken: a concurrent index build waits for it to
    end before it marks the index valid (a plain CREATE INDEX does not)."""
    import psycopg

    con = psycopg.connect(pg_url, autocommit=True)
    con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    con.execute("SELECT 1")
    return con


def _writing_the_forecasts(pg_url: str, schema: str) -> Any:
    """A READ COMMITTED transaction holding a write lock on the forecasts table, idle, with no snapshot: a concurrent
    build waits for it to end (a write it must see), and no snapshot check sees it."""
    import psycopg

    con = psycopg.connect(pg_url, autocommit=True)
    con.execute("BEGIN")
    con.execute(f"LOCK TABLE {schema}.forecasts IN ROW EXCLUSIVE MODE")
    con.execute("SELECT txid_current()")  # a transaction id, as a write's
    return con


def _store_without_index(pg_url: str, schema: str, **kw: Any) -> Any:
    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=schema, **kw)
    publish(store, make_forecast(1, 200, H, AS_OF))
    with store._connect("drop the index") as con:
        con.execute(f"DROP INDEX {schema}.{READ_IDX}")
    return store


def test_a_store_made_before_the_read_index_gets_it_built_while_publishes_go_on(pg_url, pg_schema, monkeypatch):
    """The index was made by a plain CREATE INDEX in the DDL transaction: every publish waited for it to build. Built
    CONCURRENTLY, a publish of another as_of lands while the build waits (here for a writer's transaction, each wait
    allowed 30 s); that publisher (another session) finds the build's lock held and leaves the index, INVALID until
    done, to it."""
    import psycopg

    from flowcast.store import postgres
    from flowcast.store.postgres import PostgresStore

    monkeypatch.setattr(postgres, "_INDEX_WAIT_S", 30.0)
    _store_without_index(pg_url, pg_schema)
    holder = _writing_the_forecasts(pg_url, pg_schema)
    got: dict[str, Any] = {}

    def build() -> None:
        try:
            got["rows"] = PostgresStore(pg_url, schema=pg_schema).read(dataset=DS).height
        except Exception as exc:  # noqa: BLE001 (the assertion below names it)
            got["error"] = exc

    builder = threading.Thread(target=build)
    builder.start()
    try:
        with psycopg.connect(pg_url, autocommit=True) as con:
            _until(lambda: _valid(con, pg_schema) is False)  # built, waiting for the holder's snapshot
            t0 = time.monotonic()
            publish(PostgresStore(pg_url, schema=pg_schema, wait_s=5), make_forecast(2, 50, H, OTHER), as_of=OTHER,
                    variant=2)
            assert time.monotonic() - t0 < 5
            assert _valid(con, pg_schema) is False and builder.is_alive()  # the build still waits: left to it
            holder.close()
            builder.join(60)
            assert not builder.is_alive() and got == {"rows": (200 + 50) * H}, got  # read after the build: both
            assert _valid(con, pg_schema) is True
    finally:
        holder.close()
        builder.join(60)


def test_an_invalid_read_index_left_by_a_killed_build_is_built_again(pg_url, pg_schema, caplog):
    """A concurrent build that fails (killed, cut, out of time) leaves an INVALID index, which the catalog showed as
    present: it stayed, never used by a read and kept up by every write. The next connection drops it and builds it
    again, saying so."""
    import psycopg
    from psycopg import sql

    from flowcast.store.postgres import PostgresStore, _ddl

    _store_without_index(pg_url, pg_schema)
    (stmt,) = [s for o, _, s in _ddl(pg_schema) if o == READ_IDX]
    holder = _holding_a_snapshot(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("SET lock_timeout = '500ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            con.execute(stmt.replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY ", 1))
        holder.close()
        assert _valid(con, pg_schema) is False
        store = PostgresStore(pg_url, schema=pg_schema)
        with caplog.at_level(logging.INFO, logger="flowcast.store.postgres"):
            assert store.read(dataset=DS).height == 200 * H
        assert _valid(con, pg_schema) is True
        (dropped,) = [r for r in caplog.records if f"{pg_schema}.{READ_IDX} is INVALID" in r.getMessage()]
        assert dropped.levelno == logging.INFO and not [r for r in caplog.records if r.levelno >= logging.WARNING]
        con.execute(f"ANALYZE {pg_schema}.forecasts")
        where, params = store._where(dataset=DS)
        query = sql.SQL("EXPLAIN ") + store._select(["unique_id", "y_hat"], where, sql.SQL(" LIMIT 50"))
        assert f"Index Scan using {READ_IDX}" in "\n".join(r[0] for r in con.execute(query, params))


def test_a_build_that_waits_too_long_gives_up_naming_the_sessions_and_the_command_goes_on(pg_url, pg_schema, caplog):
    """A transaction left open that writes the table holds a concurrent build for good: each of its waits is bounded
    (lock_timeout: 2 s at most, store.pg_wait_s if less), then it gives up with a warning naming that session and
    not a session the build never waited for (one in a transaction without a snapshot or a write, or one begun after
    the build); the read is answered (without the index) and the same store object does not wait again; a later one,
    once that session is gone, builds it."""
    import psycopg

    from flowcast.store.postgres import PostgresStore

    _store_without_index(pg_url, pg_schema)
    idle = psycopg.connect(pg_url, autocommit=True)
    idle.execute("BEGIN")
    idle.execute("SELECT 1")  # in a transaction, READ COMMITTED, idle: no snapshot, no write
    holder = _writing_the_forecasts(pg_url, pg_schema)
    pid = holder.info.backend_pid
    try:
        store = PostgresStore(pg_url, schema=pg_schema, wait_s=10)
        with caplog.at_level(logging.WARNING, logger="flowcast.store.postgres"):
            t0 = time.monotonic()
            assert store.read(dataset=DS).height == 200 * H
            assert time.monotonic() - t0 < 5  # one wait of 2 s, not store.pg_wait_s
            t0 = time.monotonic()
            assert store.read(dataset=DS).height == 200 * H
            assert time.monotonic() - t0 < 1  # not tried again by this object
        (gave_up,) = [r.getMessage() for r in caplog.records if "could not build the index" in r.getMessage()]
        assert f"{pg_schema}.{READ_IDX}" in gave_up and f"pid {pid} " in gave_up, gave_up
        assert f"pid {idle.info.backend_pid} " not in gave_up, gave_up
    finally:
        holder.close()
        idle.close()
    with store._connect("look") as con:
        assert _valid(con, pg_schema) is False
        assert PostgresStore(pg_url, schema=pg_schema).read(dataset=DS).height == 200 * H
        assert _valid(con, pg_schema) is True


def test_an_unrelated_snapshot_leaves_the_build_for_later_without_waiting(pg_url, pg_schema, caplog):
    """A concurrent build waits for every older snapshot of the database: one unrelated REPEATABLE READ session (a
    dashboard, a pg_dump) made every command wait store.pg_wait_s, give up and leave an INVALID index, which the next
    command dropped, waiting again. Now the command goes on at once, leaves no index, says so once at INFO and warns
    nothing; once that session ends, the next command (the same store object) builds it."""
    import psycopg

    from flowcast.store.postgres import PostgresStore

    _store_without_index(pg_url, pg_schema)
    holder = _holding_a_snapshot(pg_url)
    try:
        store = PostgresStore(pg_url, schema=pg_schema, wait_s=30)
        with caplog.at_level(logging.INFO, logger="flowcast.store.postgres"):
            for _ in range(2):
                t0 = time.monotonic()
                assert store.read(dataset=DS).height == 200 * H
                assert time.monotonic() - t0 < 5
            publish(PostgresStore(pg_url, schema=pg_schema, wait_s=30), make_forecast(2, 50, H, OTHER), as_of=OTHER,
                    variant=2)
        with psycopg.connect(pg_url, autocommit=True) as con:
            assert _valid(con, pg_schema) is None  # nothing tried: no INVALID index left
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        left = [r for r in caplog.records if "is left for a later command" in r.getMessage()]
        assert len(left) == 2, caplog.text  # once per store object: the reading one and the publishing one
        assert f"pid {holder.info.backend_pid} " in left[0].getMessage() and left[0].levelno == logging.INFO
    finally:
        holder.close()
    assert store.read(dataset=DS).height == (200 + 50) * H
    with psycopg.connect(pg_url, autocommit=True) as con:
        assert _valid(con, pg_schema) is True
