"""The stores a store test runs against (embedded, postgres, s3), as tests/publish_faults/publisher.py
opens them. A module of its own, not conftest.py: `from conftest import ...` in a test file took
whichever directory's conftest was imported last (tests/models' when `pytest tests/store tests/models`
was run), an ImportError that depended on the order of the paths given."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish_faults"))


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
