"""A disk that fills while a network writes its checkpoints (checkpoint_every, the final model.ckpt) or while
the registry copies its files (faults19): on a real tmpfs of a few checkpoints' size (root only)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from model_factories import make_td, tiny_cfg
from tmpfs import resize, tmpfs

from flowcast.errors import StorageError
from flowcast.models.train import ModelArtifact, train_model
from flowcast.registry import ModelRegistry


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A tmpfs mount point (`resize(size)` remounts it with another size, its files kept)."""
    with tmpfs(tmp_path / "disk") as mnt:
        yield mnt


def _whole(ckpt: Path) -> bool:
    try:
        torch.load(ckpt, map_location="cpu", weights_only=False)
        return True
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError):
        return False


# a checkpoint is ~39 KB (tmpfs counts 4 KB pages): 88k fails the second `last.ckpt` (its temp beside the old
# one), 128k a later one with `best.ckpt` there too, 140k the training process's final files
@pytest.mark.parametrize(("launcher", "size"), [("inline", "88k"), ("inline", "128k"), ("process", "140k")])
def test_a_full_disk_while_checkpointing_names_the_file_leaves_only_whole_checkpoints_and_a_rerun_completes(
        small_disk, launcher, size):
    td, cfg = make_td(), tiny_cfg(launcher=launcher)
    out = small_disk / "runs" / "gru"
    resize(small_disk, "4m")
    os.makedirs(out.parent)
    resize(small_disk, size)
    with pytest.raises(StorageError, match="no space left on device") as caught:
        train_model(td, cfg, out, cell="gru")
    assert str(out) in str(caught.value)
    assert not (out / "meta.json").exists() and not (out / "model.ckpt").exists()  # nothing a registry would take
    left = sorted(out.rglob("*.ckpt"))
    assert left and all(_whole(c) for c in left), left  # only whole checkpoints; temp files removed
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]
    resize(small_disk, "4m")  # room again: the re-run resumes and completes
    art = train_model(td, cfg, out, cell="gru", resume=True)
    assert ModelArtifact.load(out).checkpoint == art.checkpoint and _whole(art.checkpoint)
    assert art.metrics["steps"] == cfg.max_steps


def test_a_full_disk_while_the_registry_copies_a_network_registers_nothing_and_a_rerun_registers_it(
        small_disk, tmp_path):
    art = train_model(make_td(), tiny_cfg(), tmp_path / "gru", cell="gru")
    registry = ModelRegistry(small_disk / "models")
    resize(small_disk, "60k")  # room for one checkpoint, not the version's files
    with pytest.raises(StorageError, match="no space left on device") as caught:
        registry.register(art.path, name="gru", dataset="d", created_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert str(small_disk / "models" / "versions" / "gru-v1") in str(caught.value)
    assert registry.list() == [] and os.listdir(small_disk / "models" / "versions") == []  # no torn copy
    resize(small_disk, "4m")
    version = registry.register(art.path, name="gru", dataset="d", created_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert [v.version for v in registry.list()] == [version.version]
    assert _whole(next(Path(version.path).rglob("model.ckpt")))
