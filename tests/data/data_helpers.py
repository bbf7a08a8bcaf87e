"""Helpers the data tests import: declare a tiny source and run ingest + validate on it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flowcast.config import SourceConfig, ValidationConfig
from flowcast.data.sources import ingest
from flowcast.data.validate import ValidationResult, validate


def make_source(path: Path | str, **kw) -> SourceConfig:
    base = {"name": "t", "path": str(path), "id_cols": ["id"], "time_col": "date", "target_col": "val", "freq": "1d"}
    base.update(kw)
    return SourceConfig(**base)


def run_validate(path: Path | str, as_of: datetime | None = None, threshold: float = 1.0, **kw) -> ValidationResult:
    src = make_source(path, **kw)
    return validate(ingest(src, as_of), src, ValidationConfig(quarantine_threshold=threshold))
