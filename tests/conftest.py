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
