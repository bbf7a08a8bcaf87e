"""Shared fixtures: every test gets its own FLOWCAST_HOME so that no two tests share state."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "flowcast_home"
    monkeypatch.setenv("FLOWCAST_HOME", str(home))
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)
    return home


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect API (SQLite) for the whole session; request it in flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _postgres_or_skip():
    """A real PostgreSQL server (tests/pg_helpers.py) while the generator runs, stopped and deleted after. Skips,
    naming what is missing, only where no PostgreSQL binaries exist."""
    from pg_helpers import PostgresUnavailable, running_postgres

    try:
        ctx = running_postgres()
        server = ctx.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the whole session (`_postgres_or_skip`)."""
    yield from _postgres_or_skip()


@pytest.fixture
def own_postgres():
    """A real PostgreSQL server of one test's own, which it may stop (`_postgres_or_skip`)."""
    yield from _postgres_or_skip()


@pytest.fixture
def pg_database(postgres, request):
    """A fresh, empty database on the session's server for one test (dropped afterwards): its name."""
    import re
    import uuid

    base = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    name = postgres.create_database(f"t_{base}_{uuid.uuid4().hex[:8]}")
    yield name
    postgres.drop_database(name)


# ---------------------------------------------------------------------- S3 (moto server)
@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server (moto in server mode, its own thread) on loopback: endpoint URL."""
    pytest.importorskip("s3fs", reason="the object-store tests need s3fs (pip install 's3fs')")
    server_mod = pytest.importorskip("moto.server", reason="the object-store tests need moto[server]")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_server):
    """A fresh bucket: (url, storage_options)."""
    import uuid

    import boto3

    opts = {"key": "testing", "secret": "testing", "endpoint_url": s3_server,
            "client_kwargs": {"region_name": "us-east-1"}}
    bucket = f"flowcast-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/store", opts  # the server keeps buckets in memory until it stops


class _ScriptedHandler:
    """Mixed into http.server's SimpleHTTPRequestHandler by the `http_server` fixture: records
    every request and plays the server's scripted failures before serving files."""

    def _scripted(self, method: str) -> bool:
        import time

        srv = self.server
        srv.requests.append((method, self.path, self.headers.get("Range")))
        if method != "GET" or not srv.failures:
            return False
        what = srv.failures.pop(0)
        if what == "reset":  # drop the connection without an answer
            import socket

            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if isinstance(what, float):  # answer only after this many seconds (a read timeout)
            time.sleep(what)
            return False
        self.send_error(what)
        return True

    def do_GET(self):
        if not self._scripted("GET"):
            super().do_GET()

    def do_HEAD(self):
        if not self._scripted("HEAD"):
            super().do_HEAD()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def http_server(tmp_path):
    """Python's own http.server (no Range support, like many simple servers) on a free loopback
    port, serving the folder `server.root` from a thread. `server.url(name)` is a file's URL;
    `server.failures` scripts the next GETs (an HTTP status such as 503, "reset" to drop the
    connection, or a float: seconds to wait before answering); `server.requests` lists
    (method, path, Range header) of every request. Shut down after the test."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_ScriptedHandler, SimpleHTTPRequestHandler), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    server.root, server.requests, server.failures = root, [], []
    server.url = lambda name: f"http://127.0.0.1:{server.server_address[1]}/{name}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
