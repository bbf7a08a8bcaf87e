"""pg43: `flowcast gc --forecasts-before` on a PostgreSQL store, killed (SIGKILL, a real process) at a fault point of
its delete: before the delete's commit (`publish:delete_before_commit`) and after it, before the publish record's
removal (`gc:before_record`). The record went before the commit: a kill in between left the key's forecasts
published and their record gone. Now a kill leaves the key and its record, or neither key nor forecasts with the
record left; the next gc removes what is left. A real PostgreSQL server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime

import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, H, publish

from flowcast.config import load_settings
from flowcast.ops.quiet import fingerprint_path, record_fingerprint
from flowcast.store import open_store

OLD = datetime(2023, 6, 1)


def _gc(home, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowcast", "gc", "--home", str(home), "--as-of", "2024-06-01",
                           "--forecasts-before", "2023-08-01", "--yes", "--json"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("point, committed", [("publish:delete_before_commit", False), ("gc:before_record", True)])
def test_gc_killed_while_it_deletes_a_key_leaves_what_its_next_run_removes(pg_url, pg_schema, tmp_path, point,
                                                                          committed):
    home = tmp_path / "home"
    settings = load_settings(home=home, store={"url": pg_url, "pg_schema": pg_schema})
    store = open_store(settings)
    for as_of in (OLD, AS_OF):  # OLD goes, AS_OF stays
        r = publish(store, make_forecast(1, 3, H, as_of), as_of=as_of)
        record_fingerprint(settings, dataset=DS, as_of=as_of, content_hash=r.content_hash, fingerprint="fp",
                           run_id=r.run_id)
    record = fingerprint_path(home, DS, OLD)
    env = {**os.environ, "FLOWCAST_STORE__URL": pg_url, "FLOWCAST_STORE__PG_SCHEMA": pg_schema}

    killed = _gc(home, {**env, "FLOWCAST_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert store.has(DS, OLD) is not committed and record.exists()  # never the forecasts without their record
    assert len(store.records(DS, OLD)) == (0 if committed else 1)  # the record's row goes with the key

    again = _gc(home, env)
    assert again.returncode == 0, again.stderr
    said = json.loads(again.stdout.strip().splitlines()[-1])
    assert [i["kind"] for i in said["items"]] == (["record"] if committed else ["forecast"])
    assert not store.has(DS, OLD) and not record.exists()
    assert store.as_ofs(DS) == [AS_OF] and fingerprint_path(home, DS, AS_OF).exists()
    assert [r["as_of"] for r in store.records(DS)] == [AS_OF.isoformat()]
    assert _gc(home, env).returncode == 0 and not record.exists()  # nothing left to list: a no-op


def test_a_delete_whose_connection_is_cut_after_its_commit_removes_no_record(pg_url, pg_schema, monkeypatch):
    """lockB44: a delete's then() (gc's removal of the key's publish record) runs after the commit under a session
    lock, which goes with the connection: one cut right after the commit (a restart, pg_terminate_backend, a network
    cut) left then() to run unguarded, beside a publish of the key landing. It fails naming the key, nothing called;
    the committed delete stays, and the next gc removes the record (`unless_published`). A real backend terminated."""
    import contextlib

    import psycopg

    from flowcast.errors import LockLostError
    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    publish(store, make_forecast(1, 3, H, OLD), as_of=OLD)
    cut: list[int] = []
    real_transaction = psycopg.Connection.transaction

    @contextlib.contextmanager
    def then_cut(con, *args, **kwargs):
        with real_transaction(con, *args, **kwargs) as tx:
            yield tx
        if not cut:  # the delete's transaction, committed: its backend is terminated (waited for, up to 10 s)
            cut.append(con.info.backend_pid)
            with psycopg.connect(pg_url, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", [cut[0]]).fetchone() == (True,)

    monkeypatch.setattr(psycopg.Connection, "transaction", then_cut)
    called: list[bool] = []
    with pytest.raises(LockLostError, match=rf"lost the lock of dataset {DS} as_of 2023-06-01 on the "
                                            rf"PostgreSQL store .*its connection was cut.*: the publish record of "
                                            rf"dataset {DS} as_of 2023-06-01 was not removed"):
        store.delete(DS, OLD, then=lambda: called.append(True))
    monkeypatch.undo()
    assert cut and called == []
    assert not store.has(DS, OLD)  # the delete committed


@pytest.mark.parametrize("call, before", [("unless_published", "SELECT 1 FROM {s}.publishes WHERE"),
                                          ("while_published", "SELECT content_hash, run_id FROM {s}.publishes"),
                                          ("while_published record", "INSERT INTO {s}.publish_records")])
def test_what_follows_a_check_under_the_keys_lock_is_not_done_once_its_connection_is_cut(pg_url, pg_schema, call,
                                                                                         before, monkeypatch):
    """lockC44: unless_published and while_published (gc's removal of a record, a publish's record) call then() in
    their transaction, under its lock of the key, which goes with the connection: one cut right before then() (a
    restart, pg_terminate_backend, a network cut) left then() to run unguarded, beside a publish (or a gc) of the key.
    It fails naming the key, nothing called, the record's row rolled back. A real backend terminated after the last
    statement before then()."""
    import psycopg

    from flowcast.errors import LockLostError
    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    r = publish(store, make_forecast(1, 3, H, AS_OF), as_of=AS_OF)
    cut: list[int] = []
    real_execute = psycopg.Connection.execute

    def then_cut(con, query, *args, **kwargs):
        out = real_execute(con, query, *args, **kwargs)
        if not cut and str(query).lstrip().startswith(before.format(s=pg_schema)):
            cut.append(con.info.backend_pid)  # its backend terminated (waited for, up to 10 s)
            with psycopg.connect(pg_url, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", [cut[0]]).fetchone() == (True,)
        return out

    monkeypatch.setattr(psycopg.Connection, "execute", then_cut)
    called: list[bool] = []
    then = lambda: called.append(True)
    key = "as_of 2023-06-01" if call == "unless_published" else "as_of 2024-03-01"
    done = "removed" if call == "unless_published" else "written"
    with pytest.raises(LockLostError, match=rf"lost the lock of dataset {DS} {key} on the PostgreSQL store .*its "
                                            rf"connection was cut.*: the publish record of dataset {DS} {key} was "
                                            rf"not {done}"):
        if call == "unless_published":
            store.unless_published(DS, OLD, then)
        else:
            store.while_published(DS, AS_OF, r.content_hash, then, run_id=r.run_id,
                                  record={"run_id": r.run_id} if call.endswith("record") else None)
    monkeypatch.undo()
    assert cut and called == []
    assert store.records(DS) == []  # the record's row, written in the transaction, rolled back with it


@pytest.mark.parametrize("session", [True, False], ids=["session", "transaction"])
@pytest.mark.parametrize("sign", ["negative", "positive"])
def test_a_keys_lock_is_seen_held_until_let_go(pg_url, pg_schema, sign, session):
    """lockB44: `_check_lock_held` finds the advisory lock of a key (pg_locks: its 64-bit key split in two 32-bit
    halves, either sign) while the connection holds it, and fails naming the key once it is let go; a session lock
    (delete) or a transaction's (unless_published, while_published: lockC44), let go as the transaction ends."""
    import contextlib

    import psycopg

    from flowcast.errors import LockLostError
    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    with psycopg.connect(pg_url, autocommit=True) as con:
        parts = next((pg_schema, "forecasts", DS, f"k{i}") for i in range(100)
                     if (con.execute("SELECT hashtextextended(%s, 0) < 0", [f"{pg_schema}|forecasts|{DS}|k{i}"])
                         .fetchone()[0]) == (sign == "negative"))
        with contextlib.nullcontext() if session else con.transaction():
            store._lock_key(con, *parts, session=session)
            store._check_lock_held(con, DS, OLD, "the removal", *parts)
            store._check_lock_held(con, DS, OLD, "the removal", *parts)  # asking does not take it again
        if session:
            con.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", ["|".join(parts)])
        with pytest.raises(LockLostError, match=f"lost the lock of dataset {DS} as_of 2023-06-01 .*no "
                                                "longer holding it.*: the removal was not written"):
            store._check_lock_held(con, DS, OLD, "the removal", *parts)
