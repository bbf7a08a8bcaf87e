"""`tasks.cache_not_written`: after the preprocess task, a cache value with no record. Prefect writes the value first
and its record next (`ResultStore._persist_result_record`), so a value with no record is either one whose write stopped
part way (a full disk: removed, faults28) or the whole value of a run of the same data and as_of that is committing it
now, whose record follows (left: removed, that run's committed record named a value gone)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.results import get_default_result_serializer

from flowcast.config import Settings, SourceConfig
from flowcast.flows.tasks import cache_not_written, preprocess_cache_key

AS_OF = datetime(2024, 3, 1, tzinfo=UTC)


def _entry(tmp_path: Path) -> tuple[Settings, SourceConfig, Path, Path]:
    settings = Settings(home=tmp_path / "home")
    source = SourceConfig(name="t", path=str(tmp_path / "t.csv"), id_cols=["id"], time_col="date", target_col="val",
                          freq="1d")
    key = preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": AS_OF, "fingerprint": "f"})
    folder = settings.cache_dir.resolve()
    (folder / "results").mkdir(parents=True)
    (folder / "prefect").mkdir(parents=True)
    return settings, source, folder / "results" / key, folder / "prefect" / key


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_value_cut_short_without_its_record_is_removed(tmp_path, cut):
    settings, source, value, _ = _entry(tmp_path)
    whole = get_default_result_serializer().dumps({"rows": list(range(2000))})
    value.write_bytes(whole[: int(len(whole) * cut)])
    said = cache_not_written(settings, source, AS_OF, "f")
    assert said is not None and "never committed, was removed" in said, said
    assert not value.exists()


def test_a_whole_value_whose_record_is_not_written_yet_is_left(tmp_path):
    """Regression: the value a concurrent run of the same data and as_of had written whole, its record not yet (or
    written meanwhile, between the record's check and the removal), was removed as 'never committed': that run's
    record then named a value gone, and the next run of that data and as_of failed to read the entry back."""
    settings, source, value, _ = _entry(tmp_path)
    whole = get_default_result_serializer().dumps({"rows": list(range(2000))})
    value.write_bytes(whole)
    said = cache_not_written(settings, source, AS_OF, "f")
    assert value.exists() and value.read_bytes() == whole
    assert said is not None and "was removed" not in said, said
    assert "whole" in said, said


def test_a_committed_entry_is_left_and_not_said(tmp_path):
    settings, source, value, record = _entry(tmp_path)
    value.write_bytes(get_default_result_serializer().dumps([1, 2, 3]))
    record.write_text("{}")
    assert cache_not_written(settings, source, AS_OF, "f") is None
    assert value.exists() and record.exists()
