"""Fixtures of the store tests: a real PostgreSQL 15 server and a real S3-compatible server
(moto in server mode), both on loopback, started once per session and stopped afterwards;
`backend` parametrizes a test over the stores (embedded, postgres, s3).

PostgreSQL: initdb/pg_ctl from FLOWCAST_PG_BIN (default /usr/lib/postgresql/15/bin, else
the ones on PATH). They refuse to run as root, so as root (CI) they run as the `postgres`
user via runuser, in a temporary folder that user owns. Each test gets its own schema,
dropped afterwards. The tests are skipped, saying why, only when the binaries are absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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
def _pg_bin() -> Path | None:
    for cand in (os.environ.get("FLOWCAST_PG_BIN"), "/usr/lib/postgresql/15/bin"):
        if cand and (Path(cand) / "initdb").exists():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def pg_url():
    """postgresql:// URL of a PostgreSQL server of our own (session-scoped)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/15/bin or on "
                    "PATH; set FLOWCAST_PG_BIN to their folder")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="flowcast-pg-"))
    if as_root:
        shutil.chown(base, "postgres", "postgres")
    data, log = base / "data", base / "server.log"

    def run(*cmd: str) -> None:
        r = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}{tail}")

    port = free_port()
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "120", "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(base, ignore_errors=True)


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
