"""flowcast.atomic: a failed write is one clear error and leaves the previous file and no temp file."""

from __future__ import annotations

import errno
import re

import polars as pl
import pytest

from flowcast.atomic import atomic_write_parquet, atomic_write_text
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


def _raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as raised:  # noqa: BLE001 - the chained error itself
        return raised


@pytest.mark.parametrize(("exc", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (OSError(errno.EFBIG, "File too large"), True),  # ulimit -f
    (pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)"), True),
    (RuntimeError("training failed: OSError: [Errno 28] No space left on device"), True),  # a child's log
    # review27: a quota or a file-size limit said in words alone (no errno to read) was taken for transient
    (pl.exceptions.ComputeError("failed to write: Disk quota exceeded (os error 122)"), True),
    (RuntimeError("training failed: OSError: [Errno 27] File too large"), True),
    # a wrapper naming neither (a PublishError's message without the errno), raised from the full disk
    (_raised_from(RuntimeError("could not write x"), OSError(errno.ENOSPC, "full")), True),
    # faults50: a full object store, as s3fs passes the server's code on (EIO): MinIO's threshold, a Ceph RGW quota
    (OSError(errno.EIO, "An error occurred (XMinioStorageFull) when calling the UploadPart operation: Storage "
             "backend has reached its minimum free drive threshold."), True),
    (OSError(errno.EIO, "An error occurred (QuotaExceeded) when calling the PutObject operation: Unknown"), True),
    # rev50b: a rate limit's quota is transient, not a full store
    (OSError(errno.EIO, "An error occurred (ServiceQuotaExceededException) when calling the PutObject operation: "
             "Rate exceeded"), False),
    (OSError(errno.EIO, "403 quotaExceeded (request rate limit for this bucket)"), False),
    (OSError(errno.EIO, "Input/output error"), False),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), False),
    (_raised_from(RuntimeError("could not write x"), OSError(errno.EIO, "Input/output error")), False),
    (None, False),
])
def test_no_room_is_a_full_disk_however_it_is_wrapped(exc, full):
    from flowcast.atomic import no_room

    assert no_room(exc) is full


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


WRITER = """
import sys, time
from flowcast.atomic import atomic_file
with atomic_file(sys.argv[1]) as fh:
    fh.write(b"half of the new plot")
    fh.flush()
    print("writing", flush=True)
    sys.stdin.readline()  # killed here, or told to finish
    fh.write(b" and the rest")
"""


def _writer(target):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_writer_killed_mid_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    """Regression: a run SIGKILLed while it drew its forecast plot left
    reports/.forecast_<dataset>_<as_of>.png.<random>.tmp behind, and no re-run ever removed it."""
    import signal

    from flowcast.atomic import atomic_write_text

    plot = tmp_path / "reports" / "forecast.png"
    atomic_write_text(plot, "old plot")
    proc = _writer(plot)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (left,) = _temps(plot.parent)
    assert left.startswith(".forecast.png.") and plot.read_text() == "old plot"
    atomic_write_text(plot.parent / "other.png", "another file of the folder")
    assert _temps(plot.parent) == [] and plot.read_text() == "old plot"


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    from flowcast.atomic import atomic_write_text, clean_stale_temps

    plot = tmp_path / "reports" / "forecast.png"
    atomic_write_text(plot, "old plot")
    proc = _writer(plot)
    try:
        atomic_write_text(plot.parent / "other.png", "another writer of the folder")
        assert clean_stale_temps(plot.parent, min_age_s=0) == []
        assert len(_temps(plot.parent)) == 1  # still being written
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert plot.read_bytes() == b"half of the new plot and the rest" and _temps(plot.parent) == []


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_and_registered_versions_have_the_umasks_permissions(tmp_path, umask):
    # tempfile.mkstemp / mkdtemp make 0600 / 0700, and the rename kept them: other users of a shared
    # home could read neither a quarantine file nor the registry's pointer nor a version's folder
    import os
    import stat
    from datetime import datetime

    from flowcast.registry import ModelRegistry

    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "q.txt", "x")
        art = tmp_path / "art"
        art.mkdir()
        (art / "meta.json").write_text("{}")
        reg = ModelRegistry(tmp_path / "models")
        mv = reg.register(art, name="gru", config={}, fingerprint={}, metrics={}, as_of=datetime(2024, 1, 1),
                          created_at=datetime(2024, 1, 2))
        reg.promote(mv.version)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(mv.path.parent.stat().st_mode) == 0o777 & ~umask  # the version's folder
    pointers = [p for p in (tmp_path / "models").iterdir() if p.is_file() and p.suffix == ".json"]
    assert pointers and all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in pointers)


@pytest.mark.parametrize("fails", [None, OSError(5, "Input/output error")])
def test_fsync_dir_syncs_the_folder_and_closes_what_it_opened(tmp_path, monkeypatch, fails):
    """`fsync_dir`, the folder's fsync that the registry, the Parquet dataset and the DuckDB mirror share: the
    folder's own descriptor is synced, and closed whether or not its fsync fails (whose error is raised)."""
    import os

    from flowcast.atomic import fsync_dir

    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        if fails is not None:
            raise fails
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    before = sorted(os.listdir("/proc/self/fd"))
    if fails is None:
        fsync_dir(tmp_path)
    else:
        with pytest.raises(OSError, match="Input/output error"):
            fsync_dir(tmp_path)
    assert synced == [str(tmp_path)] and sorted(os.listdir("/proc/self/fd")) == before


def test_fsync_dir_of_a_missing_folder_names_it(tmp_path):
    from flowcast.atomic import fsync_dir

    with pytest.raises(FileNotFoundError, match="gone"):
        fsync_dir(tmp_path / "gone")


def test_room_for_an_object_store_says_its_room_is_not_known(tmp_path):
    """faults50: an object store's URL has no statvfs: its room is said not known, the bytes needed as a disk's."""
    from flowcast.atomic import needed_of, room_for

    said = room_for("s3://b/wh", 40960)
    assert said == "40,960 bytes to write, the room left in s3://b/wh is not known (an object store does not report it)"
    assert needed_of(said) == 40960
    assert re.fullmatch(rf"12 bytes to write, [0-9,]+ bytes free in file://{re.escape(str(tmp_path))}",
                        room_for(f"file://{tmp_path}", 12))
