"""Shared fixtures: every test gets its own FLOWCAST_HOME so that no two tests share state."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "flowcast_home"
    monkeypatch.setenv("FLOWCAST_HOME", str(home))
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)
    return home
