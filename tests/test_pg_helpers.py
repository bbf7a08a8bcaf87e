"""The PostgreSQL test server (tests/pg_helpers.py) is real and leaves nothing behind."""

from __future__ import annotations

import socket

import pytest


def test_session_server_serves_sql_in_a_fresh_database(postgres, pg_database):
    postgres.psql("create table t (k int primary key, v text); insert into t values (1, 'a'), (2, 'b')", pg_database)
    assert postgres.psql("select count(*), string_agg(v, ',' order by k) from t", pg_database).strip() == "2|a,b"
    assert postgres.url(pg_database) == f"postgresql://postgres@127.0.0.1:{postgres.port}/{pg_database}"
    # another test's database does not see this one's tables
    assert "t" not in postgres.psql("select tablename from pg_tables where schemaname='public'", "postgres").split()


def test_a_server_of_its_own_stops_and_is_deleted():
    from pg_helpers import PostgresUnavailable, running_postgres

    try:
        ctx = running_postgres()
        pg = ctx.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        root, port = pg.root, pg.port
        assert pg.psql("show listen_addresses").strip() == "127.0.0.1"
        assert pg.psql("select current_user").strip() == "postgres"
    finally:
        ctx.__exit__(None, None, None)
    assert not root.exists()
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(2)
        s.connect(("127.0.0.1", port))
