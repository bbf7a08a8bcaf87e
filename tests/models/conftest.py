"""Fixtures of the model tests."""

from __future__ import annotations

import pytest
from model_factories import make_td


@pytest.fixture
def td():
    return make_td()
