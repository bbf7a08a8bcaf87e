"""Fixtures of the store tests: a real PostgreSQL 15 server and a real S3-compatible server
(moto in server mode), both on loopback, started once per session and stopped afterwards;
`backend` parametrizes a test over the stores (embedded, postgres, s3).

PostgreSQL: the session server of tests/conftest.py (tests/pg_helpers.py: initdb/pg_ctl as the
`postgres` user under root, a temporary folder, a free loopback port). Each test gets its own
schema, dropped afterwards. Skipped, saying why, only when the binaries are absent.
"""

from __future__ import annotations

import json
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish_faults"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# ---------------------------------------------------------------------- S3 (moto server)
@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server (moto in server mode, its own thread) on loopback: endpoint URL."""
    pytest.importorskip("s3fs", reason="the object-store tests need s3fs (pip install 's3fs')")
    server_mod = pytest.importorskip("moto.server", reason="the object-store tests need moto[server]")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_server):
    """A fresh bucket: (url, storage_options)."""
    import boto3

    opts = {"key": "testing", "secret": "testing", "endpoint_url": s3_server,
            "client_kwargs": {"region_name": "us-east-1"}}
    bucket = f"flowcast-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/store", opts  # the server keeps buckets in memory until it stops


# ---------------------------------------------------------------------- backends
@dataclass
class Backend:
    name: str
    spec: str  # what tests/publish_faults/publisher.py takes: a folder or a JSON [store] section
    store: Any

    def reopen(self) -> Any:
        from publisher import store_from_arg

        return store_from_arg(self.spec)


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    from publisher import store_from_arg

    if name == "embedded":
        spec = str(tmp_path / "wh")
    elif name == "postgres":
        url = request.getfixturevalue("pg_url")
        spec = json.dumps({"url": url, "pg_schema": request.getfixturevalue("pg_schema")})
    elif name == "s3":
        url, opts = request.getfixturevalue("s3_url")
        spec = json.dumps({"url": url, "storage_options": opts})
    else:
        raise ValueError(name)
    return Backend(name, spec, store_from_arg(spec))


@pytest.fixture(params=["embedded", "postgres", "s3"])
def backend(request, tmp_path) -> Backend:
    return make_backend(request.param, request, tmp_path)


@pytest.fixture(params=["embedded", "postgres"])
def db_backend(request, tmp_path) -> Backend:
    """The stores with several-writer fault tests of their own (the S3 path has its own test)."""
    return make_backend(request.param, request, tmp_path)
