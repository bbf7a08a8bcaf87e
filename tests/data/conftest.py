"""Fixtures for the data tests (helpers that tests import live in data_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(text, name='src.csv') -> path; text is written as UTF-8 bytes exactly."""

    def _write(text: str | bytes, name: str = "src.csv") -> Path:
        p = tmp_path / name
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        return p

    return _write
