"""flowcast.atomic: a failed write is one clear error and leaves the previous file and no temp file."""

from __future__ import annotations

import polars as pl
import pytest

from flowcast.atomic import atomic_write_parquet
from flowcast.errors import StorageError


def test_full_disk_is_one_clear_error_and_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "q" / "quarantine.parquet"
    atomic_write_parquet(pl.DataFrame({"a": [1]}), path)

    def full(self, file, *a, **kw):  # what polars raises when the disk fills up mid-write
        raise pl.exceptions.ComputeError("parquet: File out of specification: underlying IO error: "
                                         "No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    with pytest.raises(StorageError, match=r"could not write .*quarantine.parquet: no space left on device"):
        atomic_write_parquet(pl.DataFrame({"a": [2]}), path)
    monkeypatch.undo()
    assert pl.read_parquet(path)["a"].to_list() == [1]
    assert [p.name for p in path.parent.iterdir()] == ["quarantine.parquet"]


def test_unwritable_folder_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="could not write"):
        atomic_write_parquet(pl.DataFrame({"a": [1]}), blocker / "sub" / "x.parquet")


def test_atomic_file_keeps_the_old_content_when_the_writer_fails(tmp_path):
    from flowcast.atomic import atomic_file

    target = tmp_path / "model.ckpt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="serialisation failed"), atomic_file(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("serialisation failed")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]
    with atomic_file(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]
