"""The preprocessing cache of the flows (`flows.common._preprocess`, `flows.tasks`): the digest of a cached value is
hashed once per read of the entry and once per value computed (cache32), a damaged value is dropped and computed
again, and the cache key holds the horizon preprocessing resolves, not the one given (cache32)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, source_dict

from flowcast.config import Settings, SourceConfig, load_settings

pytestmark = pytest.mark.usefixtures("prefect_api", "prefect_logging")


def _inputs(tiny_csv: Path, home: Path, **given) -> tuple[Settings, SourceConfig, object]:
    from flowcast.data.datasets import resolve_source
    from flowcast.data.sources import ingest
    from flowcast.data.validate import validate

    settings = load_settings(source=source_dict(tiny_csv), home=str(home), **{**TINY_OVERRIDES, **given})
    source = resolve_source(settings)
    return settings, source, validate(ingest(source, AS_OF), source, settings.validation).valid


@pytest.fixture
def hashes(monkeypatch) -> list[int]:
    """The sizes of the values `check_cache_digest` hashed: the real hash function, wrapped to count its calls."""
    from flowcast.data import remote

    real, seen = remote._digest, []

    def counted(data: bytes) -> str:
        seen.append(len(data))
        return real(data)

    monkeypatch.setattr(remote, "_digest", counted)
    return seen


def _cached(tiny_csv: Path, home: Path) -> tuple[Path, Path, Callable[[], Any]]:
    """(value, digest) of the cache entry of the tiny data at AS_OF, and a flow that runs `_preprocess` on them."""
    from prefect import flow

    from flowcast.flows.common import _preprocess
    from flowcast.flows.tasks import preprocess_cache_key

    settings, source, valid = _inputs(tiny_csv, home)
    key = preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": AS_OF, "fingerprint": "fp"})
    folder = settings.cache_dir.resolve()

    @flow
    def run() -> Any:
        return _preprocess(settings, valid, source, AS_OF, "fp")

    return folder / "results" / key, folder / "digests" / key, run


def test_a_cached_value_is_hashed_once_when_written_and_once_when_read(tiny_csv, tmp_path, hashes):
    """Regression (cache32): every run hashed the cached value twice, before the task (to check it) and after it (to
    record it), whether the task computed the value or read it back: one hash per write and one per read now, and a
    read leaves the digest file as it was."""
    from flowcast.data.remote import _digest

    value, digest, run = _cached(tiny_csv, tmp_path / "home")
    first = run()
    assert hashes == [value.stat().st_size]  # computed: recorded once, nothing to check before
    assert digest.read_text() == _digest(value.read_bytes())
    written = digest.stat().st_mtime_ns
    hashes.clear()
    again = run()
    assert hashes == [value.stat().st_size]  # read back: checked once, not recorded again
    assert digest.stat().st_mtime_ns == written
    assert again[0].frame.equals(first[0].frame)
    digest.unlink()  # an entry an older flowcast wrote: no digest to check, recorded once after the read
    hashes.clear()
    run()
    assert hashes == [value.stat().st_size]
    assert digest.read_text() == _digest(value.read_bytes())


def test_a_damaged_cached_value_is_dropped_and_computed_again(tiny_csv, tmp_path, hashes, caplog):
    """A byte of the cached value changed on disk: the check before the task finds it (one hash), says so naming the
    entry, removes it, and the task computes the value again (recorded: one hash), the same data as before."""
    from flowcast.data.remote import _digest

    value, digest, run = _cached(tiny_csv, tmp_path / "home")
    first = run()
    data = bytearray(value.read_bytes())
    middle = len(data) // 2
    data[middle] = ord("A") if data[middle] != ord("A") else ord("B")  # still base64: only the digest tells
    value.write_bytes(bytes(data))
    hashes.clear()
    again = run()
    said = [r.getMessage() for r in caplog.records if "does not match the digest" in r.getMessage()]
    assert len(said) == 1 and value.name in said[0] and "removed, preprocessing again" in said[0], said
    assert hashes == [len(data), value.stat().st_size]  # the damaged value checked, the new one recorded
    assert again[0].frame.equals(first[0].frame)
    assert digest.read_text() == _digest(value.read_bytes())


def test_a_horizon_given_equal_to_the_sources_is_the_same_cache_entry(tiny_csv, tmp_path):
    """Regression (cache32): the cache key held the horizon as given, so a run given the source's own horizon (6)
    missed the entry of a run given none and preprocessed the same data again. The key holds the resolved horizon;
    another horizon is another entry. The registry's identity (`preprocessing_identity`, recorded in registered
    versions' fingerprints) keeps the horizon as given, as the versions registered before recorded it."""
    from prefect import flow

    from flowcast.flows.tasks import cached_preprocess, preprocess_cache_key, preprocessing_identity

    home = tmp_path / "home"
    runs = {h: _inputs(tiny_csv, home, horizon=h) for h in (None, 6, 3)}

    def key(h: int | None) -> str:
        settings, source, _ = runs[h]
        return preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": AS_OF,
                                           "fingerprint": "fp"})

    assert key(None) == key(6) != key(3)
    assert [preprocessing_identity(runs[h][0])["horizon"] for h in (None, 6)] == [None, 6]

    @flow
    def run(h: int | None) -> str:
        settings, source, valid = runs[h]
        return cached_preprocess(settings)(valid, source, settings, AS_OF, "fp", return_state=True).name

    assert [run(None), run(6), run(3)] == ["Completed", "Cached", "Completed"]


def test_a_digest_that_cannot_be_written_is_a_warning_and_the_next_run_writes_it(tiny_csv, tmp_path, caplog):
    """Regression (faults40): with `cache/digests/` on a full disk (the value and its record written elsewhere), the
    digest's write raised StorageError, which `except OSError` let through: `flowcast forecast` failed, nothing
    published, `could not write .../cache/digests/<key>: no space left on device`, over a 32-byte checksum. It is a
    warning naming the digest now, the run goes on, and the next run (with room) writes it."""
    from tmpfs import tmpfs

    from flowcast.data.remote import _digest

    home = tmp_path / "home"
    value, digest, run = _cached(tiny_csv, home)
    with tmpfs(digest.parent, "4k") as mnt:
        with contextlib.suppress(OSError), open(mnt / "fill", "wb") as fh:  # the disk full
            for _ in range(64):
                fh.write(b"\0" * 1024)
                fh.flush()
        first = run()
        said = [r.getMessage() for r in caplog.records if "could not be written" in r.getMessage()]
        assert len(said) == 1 and str(digest) in said[0] and "no space left" in said[0], said
        assert value.exists() and not digest.exists()
        assert [p.name for p in mnt.iterdir()] == ["fill"]  # no temp file left
    caplog.clear()
    again = run()  # room again: read back from the cache, its digest written now
    assert digest.read_text() == _digest(value.read_bytes())
    assert again[0].frame.equals(first[0].frame)
    assert not [r for r in caplog.records if "could not be written" in r.getMessage()]


@pytest.mark.parametrize("when", ["before the task", "after the check, before the task's read"])
def test_a_cached_value_that_cannot_be_read_back_leaves_no_entry_of_the_failed_attempt(tiny_csv, tmp_path, caplog,
                                                                                       monkeypatch, when):
    """A cached value cut short with no digest to check it against (an entry an older flowcast wrote) is found by the
    check before the task, which reads it back (cache45: it was found only when the task failed to read it, a Failed
    task in the UI). Cut after that check (a kill while another run rewrote it), the task fails to read it back. Either
    way the entry is removed with a warning and the value computed again, and the entry Prefect persisted for a failed
    attempt (its exception, under cache/prefect and cache/results: faults44) is removed too, so that cache/ holds the
    same files as before."""
    from flowcast.flows import tasks

    value, digest, run = _cached(tiny_csv, tmp_path / "home")
    first = run()
    cache = value.parent.parent
    held = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    digest.unlink()
    whole = value.read_bytes()
    if when == "before the task":
        value.write_bytes(whole[:100])
    else:
        real = tasks.check_cache_digest

        def then_cut(*args: Any, **kwargs: Any) -> str | None:
            said = real(*args, **kwargs)
            if not kwargs["record"] and value.read_bytes() == whole:  # the check passed it whole: cut it now, once
                value.write_bytes(whole[:100])
            return said

        monkeypatch.setattr(tasks, "check_cache_digest", then_cut)
    again = run()
    said = [r.getMessage() for r in caplog.records if "could not be read back" in r.getMessage()]
    assert len(said) == 1 and value.name in said[0] and "removed, preprocessing again" in said[0], said
    assert again[0].frame.equals(first[0].frame)
    assert sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file()) == held


def test_an_entry_that_cannot_be_checked_after_the_task_failed_says_the_task_s_error_too(tiny_csv, tmp_path,
                                                                                         monkeypatch):
    """fixB46: after the task failed, `drop_damaged_cache` reads its entry back to tell whether it is damaged; where
    that raised StorageError (here a folder where the digest of the value cut short should be), the storage fault
    replaced the task's own error in what the user read. The StorageError says both now, the task's error first, the
    task's error its cause; the entry is left."""
    from flowcast.errors import StorageError
    from flowcast.flows import tasks

    value, digest, run = _cached(tiny_csv, tmp_path / "home")
    run()
    record = value.parent.parent / "prefect" / value.name
    whole = value.read_bytes()
    real = tasks.check_cache_digest

    def then_damaged(*args: Any, **kwargs: Any) -> str | None:
        said = real(*args, **kwargs)
        if not kwargs["record"] and value.read_bytes() == whole:  # the check passed it whole: damage it now, once
            value.write_bytes(whole[:100])
            digest.unlink()
            digest.mkdir()
        return said

    monkeypatch.setattr(tasks, "check_cache_digest", then_damaged)
    with pytest.raises(StorageError) as raised:
        run()
    said, cause = str(raised.value), raised.value.__cause__
    assert cause is not None and not isinstance(cause, StorageError), repr(cause)
    assert said.startswith(f"the preprocess task failed ({type(cause).__name__}: "), said
    assert (f"and its cache entry could not be checked: could not read the preprocessing cache digest {digest}: "
            in said and "[EISDIR]" in said), said
    assert record.exists() and value.read_bytes() == whole[:100] and digest.is_dir()


def test_a_task_error_with_an_exit_code_keeps_it_beside_an_entry_that_cannot_be_checked(tiny_csv, tmp_path,
                                                                                         monkeypatch):
    """revB46: the task failed with a DataValidationError (exit 2: every y empty, no series left) and its entry then
    could not be checked (a folder where its record belongs, made after the check before the task passed it): the
    run's error was a StorageError, exit 1. It keeps the task's error's class and exit code now, and says both."""
    import polars as pl
    from prefect import flow

    from flowcast.errors import DataValidationError, StorageError
    from flowcast.flows import tasks
    from flowcast.flows.common import _preprocess

    settings, source, valid = _inputs(tiny_csv, tmp_path / "home")
    empty = valid.with_columns(pl.lit(None, dtype=pl.Float64).alias("y"))
    key = tasks.preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": AS_OF,
                                            "fingerprint": "fp"})
    record = settings.cache_dir.resolve() / "prefect" / key
    real = tasks.check_cache_digest

    def then_a_folder(*args: Any, **kwargs: Any) -> str | None:
        said = real(*args, **kwargs)
        if not kwargs["record"]:
            record.mkdir(parents=True)
        return said

    @flow
    def run() -> Any:
        return _preprocess(settings, empty, source, AS_OF, "fp")

    monkeypatch.setattr(tasks, "check_cache_digest", then_a_folder)
    with pytest.raises(DataValidationError) as raised:
        run()
    said, cause = str(raised.value), raised.value.__cause__
    assert not isinstance(raised.value, StorageError) and raised.value.exit_code == 2
    assert isinstance(cause, DataValidationError) and "no series left" in str(cause), repr(cause)
    assert said.startswith("the preprocess task failed (DataValidationError: "), said
    assert "no series left" in said and f"could not read the preprocessing cache record {record}: " in said, said
    assert "[EISDIR]" in said and record.is_dir()


def test_a_record_whose_value_is_gone_is_removed_before_the_task(tiny_csv, tmp_path):
    """The record left and its value file missing: the check before the task removes the record and the digest, and
    says why naming both files (the flow test runs the task after it: Completed). (A folder in the value's place is a
    fault named, the entry left: `test_a_folder_or_an_unreadable_file_in_an_entry_is_a_fault_named`.)"""
    from flowcast.flows.tasks import check_cache_digest

    settings, source, _, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    value.unlink()
    record = value.parent.parent / "prefect" / value.name
    why = check_cache_digest(settings, source, AS_OF, "fp", record=False)
    assert why is not None and f"{record} (value {value}) has lost its value" in why, why
    assert "(the file is gone; its record was left)" in why, why
    assert not record.exists() and not digest.exists()


def test_a_failed_attempt_s_entry_that_cannot_be_removed_is_a_warning_not_the_task_s_error(tmp_path):
    """fix45: `drop_failed_attempt` runs in `_preprocess_once`'s `finally`: an OSError removing the failed attempt's
    entry replaced the preprocessing task's own error. The entry left is said (naming it and why), never raised."""
    from prefect import flow, task

    from flowcast.flows.tasks import drop_failed_attempt

    settings = load_settings(source=source_dict(tmp_path / "none.csv"), home=str(tmp_path / "home"))
    results = settings.cache_dir.resolve() / "results"
    results.mkdir(parents=True)

    @task(persist_result=True, result_storage=results)
    def fails() -> None:
        raise ValueError("the real error")

    @flow
    def run() -> list[Any]:
        return [fails(return_state=True)]  # (a state returned alone is the flow's own)

    state = run()[0]
    stored = Path(state.data.metadata.storage_key)
    assert state.is_failed() and stored.parent == results, state
    record = results.parent / "prefect" / stored.name
    record.mkdir(parents=True)  # something in the way that cannot be unlinked
    (record / "x").write_text("x")
    said = drop_failed_attempt(settings, state)
    assert said is not None and str(record) in said and "IsADirectoryError" in said, said
    with pytest.raises(ValueError, match="the real error"):
        state.result()


def _written_entry(tiny_csv: Path, home: Path) -> tuple[Settings, SourceConfig, Path, Path, Path]:
    """A preprocessing cache entry one run wrote: (settings, source, its record, value and digest)."""
    value, digest, run = _cached(tiny_csv, home)
    run()
    settings, source, _ = _inputs(tiny_csv, home)
    return settings, source, value.parent.parent / "prefect" / value.name, value, digest


def _failing(monkeypatch, path: Path, method: str, code: int) -> None:
    """Make `Path.<method>` of `path` raise the OSError of errno `code`, as the system says it (a fault injected where
    the real one, a failing disk, cannot be made in a test); other paths are untouched."""
    import os

    real = getattr(Path, method)

    def failing(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise OSError(code, os.strerror(code), str(path))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, failing)


@pytest.mark.parametrize("code", ["EMFILE", "EACCES", "EIO", "ENOSPC"])
def test_a_cached_value_that_is_there_but_cannot_be_read_is_a_fault_not_a_lost_value(tiny_csv, tmp_path, monkeypatch,
                                                                                    code):
    """A cached value whose open (or read) fails with an error other than 'not there' / 'not a file' (too many open
    files, permission denied, an I/O error) was counted lost: its entry removed and the data computed again, which hid
    the fault (and met it again later, in a worse place). It raises StorageError naming the value and the errno now,
    whether its open or its read fails and whether a digest was recorded or not, and the entry is left as it was."""
    import errno

    from flowcast.errors import StorageError
    from flowcast.flows.tasks import check_cache_digest

    number = getattr(errno, code)
    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    held = {p: p.read_bytes() for p in (record, value, digest)}
    for method, keep_digest in [("open", True), ("read_bytes", True), ("read_bytes", False)]:
        if not keep_digest:
            digest.unlink()
        with monkeypatch.context() as patch:
            _failing(patch, value, method, number)
            with pytest.raises(StorageError) as raised:
                check_cache_digest(settings, source, AS_OF, "fp", record=False)
        said = str(raised.value)
        assert f"could not read the preprocessing cache value {value}" in said and f"[{code}]" in said, (method, said)
        assert {p: p.read_bytes() for p in (record, value)} == {p: held[p] for p in (record, value)}, method
        assert digest.exists() == keep_digest
    assert check_cache_digest(settings, source, AS_OF, "fp", record=False) is None  # the fault gone: read as it is


@pytest.mark.parametrize("code", ["EMFILE", "EACCES", "EIO"])
def test_a_cached_value_that_cannot_be_read_to_hash_it_after_the_task_is_a_warning_naming_it(tiny_csv, tmp_path,
                                                                                           monkeypatch, code):
    """After the task, a value that is there but cannot be read to hash it was passed over (`except OSError: return
    None`): no digest written, nothing said. It is the warning of a digest not written now, in `_unreadable`'s words
    (the file and the errno): the run has its data and goes on, as with a digest that cannot be written (faults40)."""
    import errno

    from flowcast.flows.tasks import check_cache_digest

    settings, source, _, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    digest.unlink()
    with monkeypatch.context() as patch:
        _failing(patch, value, "read_bytes", getattr(errno, code))
        said = check_cache_digest(settings, source, AS_OF, "fp", record=True, computed=True)
    assert said is not None and f"digest {digest} of the preprocessing cache entry" in said, said
    assert f"could not read the preprocessing cache value {value}: " in said and f"[{code}]" in said, said
    assert "the run goes on" in said and not digest.exists()
    assert check_cache_digest(settings, source, AS_OF, "fp", record=True, computed=True) is None  # the fault gone
    assert digest.exists()


@pytest.mark.parametrize("code", ["EACCES", "EIO"])
def test_a_record_that_is_there_but_cannot_be_read_is_a_fault_not_no_entry(tiny_csv, tmp_path, monkeypatch, code):
    """The entry's record there but unreadable (permission denied, an I/O error) was taken for no entry before the
    task (`except OSError: return None`), and Prefect computed again, which hid the fault. Only 'not there' is no
    entry now: before the task (and where a failed task's entry is read back) it raises StorageError naming the
    record and the errno, the entry left; after the task it is the warning of a digest not written."""
    import errno

    from flowcast.errors import StorageError
    from flowcast.flows.tasks import check_cache_digest, drop_damaged_cache

    number = getattr(errno, code)
    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    held = {p: p.read_bytes() for p in (record, value, digest)}
    for method, check in [("open", lambda: check_cache_digest(settings, source, AS_OF, "fp", record=False)),
                          ("read_bytes", lambda: drop_damaged_cache(settings, source, AS_OF, "fp"))]:
        with monkeypatch.context() as patch:
            _failing(patch, record, method, number)
            with pytest.raises(StorageError) as raised:
                check()
        said = str(raised.value)
        assert f"could not read the preprocessing cache record {record}: " in said and f"[{code}]" in said, said
        assert {p: p.read_bytes() for p in held} == held, method
    with monkeypatch.context() as patch:
        _failing(patch, record, "open", number)
        after = check_cache_digest(settings, source, AS_OF, "fp", record=True, computed=True)
    assert after is not None and f"record {record}: " in after and f"[{code}]" in after, after
    assert check_cache_digest(settings, source, AS_OF, "fp", record=False) is None  # the fault gone: read as it is


@pytest.mark.parametrize(("error", "dropped"), [(MemoryError, False), (RecursionError, False), (ValueError, True)])
def test_an_error_of_the_process_reading_an_entry_back_leaves_it(tiny_csv, tmp_path, monkeypatch, error, dropped):
    """`drop_damaged_cache` took any exception reading an entry back for damage: out of memory unpickling a large value
    removed a whole entry as 'could not be read back'. An error of the process (out of memory or stack) is raised as it
    is now, the entry left; an error of the bytes (a ValueError of a value cut short) still removes it, saying why."""
    from prefect._internal.result_records import ResultRecord

    from flowcast.flows.tasks import drop_damaged_cache

    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error("injected")

    monkeypatch.setattr(ResultRecord, "deserialize_from_result_and_metadata", failing)
    if dropped:
        why = drop_damaged_cache(settings, source, AS_OF, "fp")
        assert why is not None and "could not be read back (ValueError: injected)" in why, why
    else:
        with pytest.raises(error, match="injected"):
            drop_damaged_cache(settings, source, AS_OF, "fp")
    assert (record.exists(), value.exists(), digest.exists()) == (not dropped,) * 3


@pytest.mark.parametrize("code", ["EMFILE", "EACCES", "EIO"])
def test_a_digest_that_is_there_but_cannot_be_read_is_a_fault_not_no_digest(tiny_csv, tmp_path, monkeypatch, code):
    """A digest file there but unreadable (permission denied, an I/O error) was taken for no digest (`except OSError:
    return None`): before the task the cached value was used unchecked, and nothing was said. Only 'not there' / 'not a
    file' is no digest now: before the task it raises StorageError naming the digest and the errno, the entry left;
    after the task it is the warning of a digest not written. (The fault is injected at `open`, which `read_text` and
    `read_bytes` go through.)"""
    import errno

    from flowcast.errors import StorageError
    from flowcast.flows.tasks import check_cache_digest

    number = getattr(errno, code)
    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    held = {p: p.read_bytes() for p in (record, value, digest)}
    with monkeypatch.context() as patch:
        _failing(patch, digest, "open", number)
        with pytest.raises(StorageError) as raised:
            check_cache_digest(settings, source, AS_OF, "fp", record=False)
        after = check_cache_digest(settings, source, AS_OF, "fp", record=True, computed=True)
    said = str(raised.value)
    assert f"could not read the preprocessing cache digest {digest}: " in said and f"[{code}]" in said, said
    assert after is not None and f"digest {digest} of the preprocessing cache entry" in after, after
    assert f"could not read the preprocessing cache digest {digest}: " in after and "the run goes on" in after, after
    assert {p: p.read_bytes() for p in held} == held
    assert check_cache_digest(settings, source, AS_OF, "fp", record=False) is None  # the fault gone: checked, matches


@pytest.mark.parametrize("where", ["record", "digest", "value"])
@pytest.mark.parametrize(("fault", "code"), [("folder", "EISDIR"), ("unreadable", "EACCES")])
def test_a_folder_or_an_unreadable_file_in_an_entry_is_a_fault_named(tiny_csv, tmp_path, monkeypatch, where, fault,
                                                                     code):
    """cachedir46: a folder standing where the entry's record, digest or value file should be was taken for a file not
    there (`_LOST`): a folder at the record for no entry (Prefect computed again, and its write of the record failed),
    at the digest for no digest (the value used unchecked), at the value for a lost value. It is a fault named now, as
    an unreadable file is: before the task (and where a failed task's entry is read back) StorageError naming the path
    and the errno, the entry left; after the task the warning of a digest not written. The fault goes, the entry reads."""
    import errno

    from flowcast.errors import StorageError
    from flowcast.flows.tasks import check_cache_digest, drop_damaged_cache

    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    path = {"record": record, "digest": digest, "value": value}[where]
    held = {p: p.read_bytes() for p in (record, value, digest)}
    if fault == "folder":
        path.unlink()
        path.mkdir()
    else:
        _failing(monkeypatch, path, "open", errno.EACCES)  # `read_bytes` goes through it
    named = f"could not read the preprocessing cache {where} {path}: "
    checks = [lambda: check_cache_digest(settings, source, AS_OF, "fp", record=False)]
    if where != "digest":  # (a failed task's entry is read back without its digest: `test_..._digest_..._folder`)
        checks.append(lambda: drop_damaged_cache(settings, source, AS_OF, "fp"))
    for check in checks:
        with pytest.raises(StorageError) as raised:
            check()
        said = str(raised.value)
        assert named in said and f"[{code}]" in said and "the entry is left as it is" in said, said
        # fixB46: what to do of the folder (it said the entry was left, not what lets the run go on)
        advice = f"; remove the folder {path} (a file of the cache belongs there) and run again"
        assert said.endswith(advice) if fault == "folder" else "remove the" not in said, said
    after = check_cache_digest(settings, source, AS_OF, "fp", record=True, computed=True)
    assert after is not None and f"digest {digest} of the preprocessing cache entry {record}" in after, after
    assert named in after and f"[{code}]" in after and "the run goes on" in after, after
    assert path.is_dir() == (fault == "folder")
    assert {p: p.read_bytes() for p in held if p != path} == {p: b for p, b in held.items() if p != path}
    monkeypatch.undo()
    if fault == "folder":
        path.rmdir()
        path.write_bytes(held[path])
    assert check_cache_digest(settings, source, AS_OF, "fp", record=False) is None  # the fault gone: read as it is
    assert {p: p.read_bytes() for p in held} == held


@pytest.mark.parametrize(("folder", "what"), [("results", "value"), ("prefect", "record"), ("digests", "digest")])
def test_a_file_where_a_folder_of_the_cache_belongs_is_a_fault_named(tiny_csv, tmp_path, folder, what):
    """fixB46: a file standing where the cache's `results` folder should be (NotADirectoryError opening the value) was
    taken for a lost value: the record was removed before the task, and Prefect's write of the value then failed. It is
    a fault named now, as a folder in a file's place is: before the task (and where a failed task's entry is read back)
    StorageError naming the path, the errno and the file to remove, the entry left; after the task the warning of a
    digest not written. So for `prefect` (the record's folder) and `digests`. The file gone, the entry reads."""
    from flowcast.errors import StorageError
    from flowcast.flows.tasks import check_cache_digest, drop_damaged_cache

    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    path = {"record": record, "digest": digest, "value": value}[what]
    assert path.parent.name == folder
    held = {p: p.read_bytes() for p in (record, value, digest)}
    moved = path.parent.rename(path.parent.with_name(f"{folder}.held"))
    path.parent.write_text("in the way")
    named = f"could not read the preprocessing cache {what} {path}: Not a directory [ENOTDIR]; the entry is left"
    advice = f"; remove the file {path.parent} (a folder of the cache belongs there) and run again"
    checks = [lambda: check_cache_digest(settings, source, AS_OF, "fp", record=False)]
    if what != "digest":  # (a failed task's entry is read back without its digest)
        checks.append(lambda: drop_damaged_cache(settings, source, AS_OF, "fp"))
    for check in checks:
        with pytest.raises(StorageError) as raised:
            check()
        said = str(raised.value)
        assert named in said and said.endswith(advice), said
    after = check_cache_digest(settings, source, AS_OF, "fp", record=True, computed=True)
    assert after is not None and named in after and "the run goes on" in after, after
    path.parent.unlink()
    moved.rename(path.parent)
    assert {p: p.read_bytes() for p in held} == held  # nothing of the entry removed
    assert check_cache_digest(settings, source, AS_OF, "fp", record=False) is None  # the file gone: read as it is


@pytest.mark.parametrize(("blocker", "code"), [("folder at the digest", "EISDIR"), ("file at digests", "ENOTDIR")])
@pytest.mark.parametrize("damage", ["value cut short", "value deleted"])
def test_a_folder_at_the_digest_of_a_damaged_entry_is_a_fault_named_the_entry_left(tiny_csv, tmp_path, damage,
                                                                                  blocker, code):
    """cachedir46: removing a damaged entry (its value cut short: `drop_damaged_cache`, after the task failed on it; its
    value deleted: `_value_gone`, before the task) with a folder where its digest should be removed the record, then
    raised IsADirectoryError at the digest's `unlink`, which named no cache entry. It is `_unreadable`'s StorageError
    naming the digest now, raised before anything is removed: the entry is left whole. So is a file where the
    `digests` folder should be (fixB46: NotADirectoryError at the `unlink`, the record and value removed)."""
    from flowcast.errors import StorageError
    from flowcast.flows.tasks import check_cache_digest, drop_damaged_cache

    settings, source, record, value, digest = _written_entry(tiny_csv, tmp_path / "home")
    digest.unlink()
    if blocker == "folder at the digest":
        digest.mkdir()
    else:
        digest.parent.rmdir()
        digest.parent.write_text("in the way")
    if damage == "value cut short":
        value.write_bytes(value.read_bytes()[:40])
    else:
        value.unlink()
    held = {p: p.read_bytes() for p in (record, value) if p.exists()}
    with pytest.raises(StorageError) as raised:
        if damage == "value cut short":
            drop_damaged_cache(settings, source, AS_OF, "fp")
        else:
            check_cache_digest(settings, source, AS_OF, "fp", record=False)
    said = str(raised.value)
    assert f"could not read the preprocessing cache digest {digest}: " in said and f"[{code}]" in said, said
    assert {p: p.read_bytes() for p in held} == held
    if blocker == "folder at the digest":  # the folder gone: the damaged entry is removed, saying why
        digest.rmdir()
    else:
        digest.parent.unlink()
    why = (drop_damaged_cache(settings, source, AS_OF, "fp") if damage == "value cut short"
           else check_cache_digest(settings, source, AS_OF, "fp", record=False))
    assert why is not None and str(record) in why, why
    assert not record.exists() and not value.exists() and not digest.exists()


@pytest.mark.parametrize("blocker", ["file at results", "folder at the value"])
def test_no_entry_and_no_place_for_its_value_is_a_fault_named_before_the_task(tiny_csv, tmp_path, blocker):
    """cache47: with no entry yet, a file standing where the cache's `results` folder belongs (or a folder where the
    value belongs) let the task run, and Prefect's write of its result then failed after it, in words that named
    neither. The check before the task raises StorageError naming the path, the errno and what to remove; nothing
    is written. The blocker gone, the run computes and writes the entry."""
    from flowcast.errors import StorageError

    value, digest, run = _cached(tiny_csv, tmp_path / "home")
    if blocker == "file at results":
        value.parent.parent.mkdir(parents=True)
        value.parent.write_text("in the way")
        path, code = value.parent, "ENOTDIR"
        advice = f"; remove the file {path} (a folder of the cache belongs there) and run again"
    else:
        value.mkdir(parents=True)
        path, code = value, "EISDIR"
        advice = f"; remove the folder {path} (a file of the cache belongs there) and run again"
    with pytest.raises(StorageError) as raised:
        run()
    said = str(raised.value)
    assert said.startswith(f"cannot write the preprocessing cache value {value}: "), said
    assert f"[{code}]" in said and said.endswith(advice), said
    assert not (value.parent.parent / "prefect" / value.name).exists() and not digest.exists()
    path.unlink() if path.is_file() else path.rmdir()
    run()
    assert value.is_file() and digest.is_file()


@pytest.mark.parametrize("task_error", ["already published", "damaged publish", "data validation", "not flowcast's"])
def test_the_error_of_a_failed_task_and_an_unchecked_entry_keeps_only_the_task_error_s_class_and_exit_code(task_error):
    """cache47: `_failed_unchecked` copied the task's error whole (`copy.copy`): its class and exit code, and with them
    every attribute it carried (an AlreadyPublished's `said`, the sentence a refused run says instead of the error's;
    a DamagedPublishError's `path`; a DataValidationError's `report`; the notes added to it), which then spoke for an
    error that says more. It keeps the message (both errors), the class, the exit code and the cause (the task's
    error, whole) now; the other attributes are the class's defaults."""
    from flowcast.errors import AlreadyPublished, DamagedPublishError, DataValidationError, StorageError
    from flowcast.flows.common import _failed_unchecked

    exc: Exception = {"already published": lambda: AlreadyPublished("published", {"run_id": "r1"}),
                      "damaged publish": lambda: DamagedPublishError("damaged", path="/f.parquet", why="ArrowInvalid"),
                      "data validation": lambda: DataValidationError("no series left"),
                      "not flowcast's": lambda: ValueError("bad padding")}[task_error]()
    defaults = dict(vars(type(exc)(str(exc))))  # what the class gives an error of its message alone
    for name in ("said", "undone", "path", "why", "report"):
        if name in defaults or hasattr(type(exc), name):
            setattr(exc, name, f"the task's {name}")
    exc.add_note("a note of the task's error")
    unread = StorageError("could not read the preprocessing cache digest /d: Is a directory [EISDIR]")
    said = _failed_unchecked(exc, unread)
    expected = StorageError if task_error == "not flowcast's" else type(exc)
    assert type(said) is expected and said.exit_code == expected.exit_code
    assert str(said) == (f"the preprocess task failed ({type(exc).__name__}: {exc}), and its cache entry could not be "
                         f"checked: {unread}")
    assert said.__cause__ is exc
    assert vars(said) == (defaults if task_error != "not flowcast's" else {}), vars(said)
    assert getattr(said, "report", None) is None
