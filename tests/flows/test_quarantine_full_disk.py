"""A deployment run (no command's check before Prefect) whose quarantine file cannot be written: the flow's
validation (`flows.common.load_data`) says the refusal and why there is no file."""
from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from prefect import flow

from flowcast.atomic import atomic_file, atomic_write_parquet
from flowcast.config import load_settings
from flowcast.data import validate as validate_mod
from flowcast.errors import DataValidationError, StorageError
from flowcast.flows import tasks
from flowcast.flows.common import load_data

pytestmark = pytest.mark.usefixtures("prefect_api")


def _disk_full(frame, path):
    with atomic_file(path) as fh:
        fh.write(b"PAR1")  # some bytes out, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")


def _write_failing(error: BaseException, attempts: list[Path]):
    """An atomic_write_parquet whose write fails with `error` after some bytes, each attempt recorded."""

    def write(frame, path):
        attempts.append(Path(path))
        with atomic_file(path) as fh:
            fh.write(b"PAR1")
            raise error

    return write


def _settings(tmp_path, text: str):
    (tmp_path / "s.csv").write_text(text)
    return load_settings(home=str(tmp_path / "home"), horizon=1,
                         source={"name": "s", "path": str(tmp_path / "s.csv"), "id_cols": ["id"], "time_col": "date",
                                 "target_col": "val", "freq": "1d"})


@pytest.mark.parametrize(("text", "refusal"), [
    # every row quarantined
    ("date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n",
     "source 's': no valid rows left: all 2 rows quarantined (y_not_number=2)"),
    # above the threshold (default 5%) with valid rows left: refused too
    ("date,id,val\n2024-01-01,a,1\n2024-01-02,a,x\n", "source 's': 1 of 2 rows quarantined (50.0% > threshold"),
])
def test_a_run_refused_on_a_full_disk_says_the_refusal_and_the_unwritten_quarantine_file(tmp_path, monkeypatch, text,
                                                                                         refusal):
    """faults22's gap inside the flow: a deployment run whose quarantine file could not be written (ENOSPC) failed after
    3 retries naming the disk alone (`could not write ...: no space left on device`), never the refusal. It fails
    with the refusal first now, then why there is no file (as the command's check before Prefect says it)."""
    monkeypatch.setattr(validate_mod, "atomic_write_parquet", _disk_full)
    # the task's retries (none for a full disk, `test_a_full_disk_is_written_once`), without their backoff
    monkeypatch.setattr(tasks, "quarantine_task", tasks.quarantine_task.with_options(retry_delay_seconds=0))
    settings = _settings(tmp_path, text)

    @flow(name="full-disk-refusal")
    def read_it() -> None:
        load_data(settings, datetime(2024, 1, 5, tzinfo=UTC))

    with pytest.raises(DataValidationError) as err:
        read_it()
    error = str(err.value)
    path = tmp_path / "home" / "quarantine" / "s" / "2024-01-05T00-00-00" / "quarantine.parquet"
    assert error.startswith(refusal), error
    assert error.endswith(f"; its quarantine file (the rows and their reasons) could not be written: could not write "
                          f"{path}: no space left on device (the disk is full); the previous file, if any, is intact. "
                          "Free space there and run again to keep them (`flowcast validate` writes them too)"), error
    assert "see /" not in error  # no path of a file not there
    assert list(path.parent.iterdir()) == []  # no partial file, no temp file


def test_a_run_that_would_go_on_still_fails_on_the_disk(tmp_path, monkeypatch):
    """Below the threshold the run would publish with a row left out: without its quarantine file it fails on the
    disk (no refusal to say), naming the rows, the file, that nothing was published and what to do: it said the write's
    error alone, `could not write ...: no space left on device (the disk is full); the previous file, if any, is
    intact` (faults44: a real full tmpfs under quarantine/, 3 of 920 rows quarantined)."""
    monkeypatch.setattr(validate_mod, "atomic_write_parquet", _disk_full)
    monkeypatch.setattr(tasks, "quarantine_task", tasks.quarantine_task.with_options(retry_delay_seconds=0))
    rows = "".join(f"2023-{m:02d}-{d:02d},a,{d}\n" for m in range(1, 13) for d in range(1, 29))
    settings = _settings(tmp_path, "date,id,val\n" + rows + "2024-01-01,a,x\n")

    @flow(name="full-disk-go-on")
    def read_it() -> None:
        load_data(settings, datetime(2024, 1, 5, tzinfo=UTC))

    with pytest.raises((StorageError, OSError)) as err:
        read_it()
    assert not isinstance(err.value, DataValidationError) and "no space left on device" in str(err.value)
    path = tmp_path / "home" / "quarantine" / "s" / "2024-01-05T00-00-00" / "quarantine.parquet"
    assert str(err.value) == (
        "1 of 337 rows failed validation (y_not_number=1) and this run would leave them "
        "out, so it stopped before it published anything; its quarantine file (the rows and their reasons) could not "
        f"be written: could not write {path}: no space left on device (the disk is full); the previous file, if any, is "
        "intact. Free space there and run again to keep them (`flowcast validate` writes them too)"), str(err.value)
    assert list(path.parent.iterdir()) == []  # no partial file, no temp file


def test_a_clean_run_whose_quarantine_folder_cannot_be_cleared_names_no_rows_left_out(tmp_path, monkeypatch):
    """revB44: a clean run (no row quarantined) whose earlier quarantine file could not be removed (here a folder in its
    place) failed saying `0 of 3 rows failed validation () and this run would leave them out`: no row was left out.
    It fails on the removal's own error, naming the file."""
    monkeypatch.setattr(tasks, "quarantine_task", tasks.quarantine_task.with_options(retry_delay_seconds=0))
    settings = _settings(tmp_path, "date,id,val\n2024-01-01,a,1\n2024-01-02,a,2\n2024-01-03,a,3\n")
    stale = tmp_path / "home" / "quarantine" / "s" / "2024-01-05T00-00-00" / "quarantine.parquet"
    stale.mkdir(parents=True)

    @flow(name="clean-run-stale-folder")
    def read_it() -> None:
        load_data(settings, datetime(2024, 1, 5, tzinfo=UTC))

    with pytest.raises(OSError) as err:
        read_it()
    assert str(stale) in str(err.value) and "leave them out" not in str(err.value), str(err.value)


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EFBIG, "File too large"),  # a file-size limit (ulimit -f)
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    # polars' wrapping of it: no errno, Rust's text
    pl.exceptions.ComputeError("failed to write parquet: No space left on device (os error 28)"),
], ids=["ENOSPC", "EFBIG", "EDQUOT", "polars"])
def test_a_full_disk_is_written_once(tmp_path, monkeypatch, error):
    """faults25: a refusal on a full disk waited through the task's 3 retries (~14 s with their backoff, each writing
    the file again) before it said the same: a full disk is no transient I/O error. One attempt, then the refusal."""
    attempts: list[Path] = []
    monkeypatch.setattr(validate_mod, "atomic_write_parquet", _write_failing(error, attempts))
    monkeypatch.setattr(tasks, "quarantine_task", tasks.quarantine_task.with_options(retry_delay_seconds=0))
    settings = _settings(tmp_path, "date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n")

    @flow(name="full-disk-once")
    def read_it() -> None:
        load_data(settings, datetime(2024, 1, 5, tzinfo=UTC))

    with pytest.raises(DataValidationError, match="could not be written") as err:
        read_it()
    assert len(attempts) == 1, attempts
    assert list(attempts[0].parent.iterdir()) == []  # no partial file, no temp file
    assert "Free space there and run again" in str(err.value)


def test_a_transient_write_error_is_still_retried(tmp_path, monkeypatch):
    """The retries stay for what may pass (an I/O error of a network file system): EIO once, then the file."""
    attempts: list[Path] = []
    failing = _write_failing(OSError(errno.EIO, "Input/output error"), attempts)

    def eio_once(frame, path):
        if not attempts:
            failing(frame, path)
        attempts.append(Path(path))
        return atomic_write_parquet(frame, path)

    monkeypatch.setattr(validate_mod, "atomic_write_parquet", eio_once)
    monkeypatch.setattr(tasks, "quarantine_task", tasks.quarantine_task.with_options(retry_delay_seconds=0))
    settings = _settings(tmp_path, "date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n")

    @flow(name="eio-retried")
    def read_it() -> None:
        load_data(settings, datetime(2024, 1, 5, tzinfo=UTC))

    with pytest.raises(DataValidationError) as err:  # refused (every row quarantined), with its file written
        read_it()
    assert len(attempts) == 2 and attempts[1].exists(), attempts
    assert f"; see {attempts[1]}; to mend them" in str(err.value), str(err.value)
