"""A production network whose files were damaged or removed while it was in production (faults19)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowcast.config import load_settings
from flowcast.errors import ModelFileError
from flowcast.registry import ModelRegistry

AS_OF = datetime(2019, 7, 1, tzinfo=UTC)


def _inside_largest_member(ckpt: Path) -> int:
    """The offset of the middle byte of the checkpoint's largest stored member (the weights). The file's middle byte
    can fall in a zip header or in torch's alignment padding, which no CRC covers: the flip went unseen there."""
    import struct
    import zipfile

    with zipfile.ZipFile(ckpt) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    with ckpt.open("rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len + info.compress_size // 2


def _damage(artifact: Path, name: str, how: str) -> Path:
    """Make the (read-only) version's file `name` writable and cut it short, overwrite it or remove it."""
    target = next(artifact.rglob(name))
    for folder in [target.parent, *target.parents]:
        if folder == artifact.parent:
            break
        os.chmod(folder, 0o755)
    os.chmod(target, 0o644)
    data = target.read_bytes()
    if how == "cut":
        target.write_bytes(data[: len(data) // 2])
    elif how == "flip":  # one byte inside the weights: torch loaded it without a word
        at = _inside_largest_member(target)
        target.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    elif how == "zeros":
        target.write_bytes(b"\0" * len(data))
    else:
        target.unlink()
    return target


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(("name", "how"), [("model.ckpt", "cut"), ("model.ckpt", "zeros"), ("model.ckpt", "flip"), ("model.ckpt", "missing"),
                                           ("meta.json", "cut"), ("meta.json", "missing")])
def test_a_damaged_production_network_fails_the_forecast_naming_the_file_and_what_to_do(production_home, name, how):
    """A production gru whose model.ckpt was cut short failed a scheduled forecast with a bare
    `OSError: [Errno 22] Invalid argument` (torch's), naming no file; a missing one said only 'model at ... has
    meta.json but no model.ckpt', and a cut meta.json a JSONDecodeError. Each names the file, the version, and
    the way out (rollback or retrain) now, and nothing is published."""
    from flowcast.flows import forecast_flow
    from flowcast.store import open_store

    registry = ModelRegistry(Path(production_home["home"]) / "models")
    version = registry.production("tiny")
    assert version is not None
    target = _damage(Path(version.path), name, how)
    with pytest.raises(ModelFileError) as caught:
        forecast_flow(as_of=AS_OF, **production_home)
    said = str(caught.value)
    assert str(target) in said if how != "missing" or name == "model.ckpt" else str(target.parent) in said
    assert f"{version.version}, the production model of tiny, cannot forecast" in said
    assert "flowcast models rollback --dataset tiny" in said and "nothing was published" in said
    store = open_store(load_settings(None, home=production_home["home"]))
    assert AS_OF not in store.as_ofs("tiny")
