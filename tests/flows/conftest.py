"""Fixtures of the flow tests (helpers in flow_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import TINY_OVERRIDES, source_dict, write_series


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_series(tmp_path / "raw" / "sales.csv")


@pytest.fixture
def flow_kwargs(tiny_csv, tmp_path) -> dict:
    """Keyword arguments every flow accepts: the tiny source, a fresh home, tiny settings."""
    return {"source": source_dict(tiny_csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}
