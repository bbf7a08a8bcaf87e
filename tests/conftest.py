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


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server (tests/pg_helpers.py) for the whole session, stopped and deleted
    at the end. Skips, naming what is missing, only where no PostgreSQL binaries exist."""
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


@pytest.fixture
def pg_database(postgres, request):
    """A fresh, empty database on the session's server for one test (dropped afterwards): its name."""
    import re
    import uuid

    base = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    name = postgres.create_database(f"t_{base}_{uuid.uuid4().hex[:8]}")
    yield name
    postgres.drop_database(name)
