"""Fixtures of the store tests: a real PostgreSQL 15 server and a real S3-compatible server
(moto in server mode), both on loopback, started once per session and stopped afterwards;
`backend` parametrizes a test over the stores (embedded, postgres, s3).

PostgreSQL: the session server of tests/conftest.py (tests/pg_helpers.py: initdb/pg_ctl as the
`postgres` user under root, a temporary folder, a free loopback port). Each test gets its own
schema, dropped afterwards. Skipped, saying why, only when the binaries are absent.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish_faults"))


# ---------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def pg_url(postgres):
    """postgresql:// URL of the session's own PostgreSQL server (tests/conftest.py `postgres`:
    initdb/pg_ctl in a temporary folder, as the postgres user under root; skipped, saying why,
    only where no PostgreSQL binaries exist)."""
    return postgres.url("postgres")


@pytest.fixture
def pg_schema(pg_url):
    """A schema of its own for one test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# S3 (moto server): the `s3_server` and `s3_url` fixtures live in tests/conftest.py (the flow
# tests use them too)


# ---------------------------------------------------------------------- backends
from store_backends import Backend, make_backend


@pytest.fixture(params=["embedded", "postgres", "s3"])
def backend(request, tmp_path) -> Backend:
    return make_backend(request.param, request, tmp_path)


@pytest.fixture(params=["embedded", "postgres"])
def db_backend(request, tmp_path) -> Backend:
    """The stores with several-writer fault tests of their own (the S3 path has its own test)."""
    return make_backend(request.param, request, tmp_path)
