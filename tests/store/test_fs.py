"""flowcast.store.fs.FileStore: files and folders at a local path or an S3-compatible server
(moto on loopback), each file whole or absent, each folder visible only once complete."""

from __future__ import annotations

import pytest

from flowcast.errors import ConfigError, StorageError
from flowcast.store.fs import MARKER, FileStore


@pytest.fixture(params=["local", "s3"])
def files(request, tmp_path) -> FileStore:
    if request.param == "local":
        return FileStore(tmp_path / "shared")
    url, opts = request.getfixturevalue("s3_url")
    return FileStore(url + "/models", storage_options=opts)


def _artifact(tmp_path, payload: str):
    art = tmp_path / f"art-{payload}"
    (art / "sub").mkdir(parents=True)
    (art / "model.ckpt").write_bytes(payload.encode() * 1000)
    (art / "sub" / "meta.json").write_text(f'{{"payload": "{payload}"}}')
    return art


def test_files_and_folders_round_trip(files, tmp_path):
    assert not files.exists("versions/gru-v1/version.json") and files.list("versions") == []
    files.write_text("versions/gru-v1/version.json", '{"v": 1}')
    assert files.read_text("versions/gru-v1/version.json") == '{"v": 1}'
    files.write_text("versions/gru-v1/version.json", '{"v": 2}')  # replaced whole
    assert files.read_text("versions/gru-v1/version.json") == '{"v": 2}'
    assert not files.has_dir("versions/gru-v1/artifact")
    files.put_dir(_artifact(tmp_path, "a"), "versions/gru-v1/artifact")
    assert files.has_dir("versions/gru-v1/artifact")
    assert files.list("versions/gru-v1") == ["artifact", "version.json"]
    with files.local_dir("versions/gru-v1/artifact") as path:
        assert (path / "model.ckpt").read_bytes() == b"a" * 1000
        assert (path / "sub" / "meta.json").read_text() == '{"payload": "a"}'
    files.put_dir(_artifact(tmp_path, "b"), "versions/gru-v1/artifact")  # replaced whole
    out = files.get_dir("versions/gru-v1/artifact", tmp_path / "copy")
    assert (out / "model.ckpt").read_bytes() == b"b" * 1000 and not (out / MARKER).exists()
    with files.open("versions/gru-v1/artifact/sub/meta.json") as fh:
        assert fh.read() == b'{"payload": "b"}'
    files.put_file(tmp_path / "art-b" / "model.ckpt", "reports/x.bin")
    assert files.read_bytes("reports/x.bin") == b"b" * 1000
    files.remove("versions/gru-v1")
    assert files.list("versions") == [] and not files.exists("versions/gru-v1/version.json")


def test_a_folder_without_its_marker_is_never_loaded(files, tmp_path):
    """What a writer killed half-way through put_dir leaves: files but no marker."""
    files.write_bytes("versions/gru-v2/artifact/model.ckpt", b"half")
    assert not files.has_dir("versions/gru-v2/artifact")
    with pytest.raises(StorageError, match="absent or incomplete"):
        files.get_dir("versions/gru-v2/artifact", tmp_path / "x")
    files.put_dir(_artifact(tmp_path, "c"), "versions/gru-v2/artifact")  # the next put_dir completes it
    with files.local_dir("versions/gru-v2/artifact") as path:
        assert (path / "model.ckpt").read_bytes() == b"c" * 1000


def test_bad_urls_and_paths_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not ftp://"):
        FileStore("ftp://host/x")
    with pytest.raises(ConfigError, match="leaves the root"):
        FileStore(tmp_path).write_text("../escape.txt", "x")


def test_an_object_store_lock_is_held_once_where_its_exclusive_create_is_not_atomic(s3_url):
    """moto checks that the lock object is absent, then writes it: under load two conditional PUTs
    both succeed and two registry writers held the lock at once (both took version name gru-v3).
    Here writer B's create succeeds while A holds the lock (its object is gone, as if B's check ran
    before A's PUT landed): B must still wait for A."""
    import threading

    url, opts = s3_url
    a, b = FileStore(url + "/models", storage_options=opts), FileStore(url + "/models", storage_options=opts)
    holding = {"a": False}
    entered: dict[str, object] = {}

    def writer_b() -> None:
        with b.lock(".lock", poll=0.01):
            entered["a_holding"] = holding["a"]
            entered["a_done"] = b.exists("a-done")

    with a.lock(".lock"):
        holding["a"] = True
        own = set(a.list(".lock.claims"))  # A's claim
        a.remove(".lock")  # what B's check saw: no lock object, so B's exclusive create succeeds
        thread = threading.Thread(target=writer_b)
        thread.start()
        for _ in range(6000):  # until B is seen waiting (a claim of its own) or B got in
            if entered or set(a.list(".lock.claims")) - own:
                break
            thread.join(0.01)
        a.write_text("a-done", "")
        holding["a"] = False
    thread.join(60)
    assert entered == {"a_holding": False, "a_done": True}
    assert a.list(".lock.claims") == [] and not a.exists(".lock")  # B released what it took


def test_an_object_store_lock_passes_over_a_dead_writers_claim(s3_url, caplog):
    """A writer killed between writing its claim and withdrawing it: its claim delays the next
    writer by stale_after, never for ever."""
    url, opts = s3_url
    files = FileStore(url + "/models", storage_options=opts)
    files.write_text(".lock.claims/dead0writer", "")
    with files.lock(".lock", stale_after=0.5, poll=0.05):
        assert files.list(".lock.claims") != ["dead0writer"]
    assert "dead0writer" in caplog.text and "a writer that died" in caplog.text
    assert files.list(".lock.claims") == [] and not files.exists(".lock")


def test_a_writer_waiting_on_a_killed_writers_lock_object_says_so_naming_it_and_how_to_go_on(s3_url, caplog):
    """revA43: a writer killed while it held an object-store lock (a publish's key lock, `store.lock_timeout` 600 s)
    left its lock object, and the key's next writer (a re-run of the killed run) waited out the whole timeout without
    a word. It says, while it waits, which lock object, whose, when it is broken, and that removing it goes on now;
    removing it does."""
    import logging
    import threading
    import time

    url, opts = s3_url
    files = FileStore(url + "/store", storage_options=opts)
    files.write_text(".locks/forecasts.k", "0dead0writer host-a 4242 3")  # a killed writer's (renewed 3 times)
    got = threading.Event()

    def take() -> None:
        with files.lock(".locks/forecasts.k", stale_after=120, poll=0.05):
            got.set()

    caplog.set_level(logging.WARNING, logger="flowcast.store.fs")
    taker = threading.Thread(target=take)
    taker.start()
    try:
        deadline = time.monotonic() + 10
        while "waiting for the lock" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        said = caplog.text
        assert f"waiting for the lock {url}/store/.locks/forecasts.k" in said, said
        assert "held by 0dead0writer (host host-a, pid 4242)" in said and "120s" in said and "remove" in said
        assert not got.is_set()
    finally:
        files.remove(".locks/forecasts.k")  # what the message says to do when that process is gone
    assert got.wait(30), "removing the lock object did not let the waiter go on"
    taker.join(30)
    assert said.count("waiting for the lock") == 1  # said once, not at every poll


def test_an_object_store_lock_left_long_ago_is_broken_at_once(s3_url, caplog):
    """revA43: a lock object a killed writer left long ago (yesterday's run, killed) cost the key's next writer the
    whole `stale_after` (store.lock_timeout, 600 s) all the same: a waiter counted only its own wait. One whose last
    write is `stale_after` older than the server's time now (both times the server's: no clock of this machine) is
    broken at once; a fresh one still waits (`test_an_object_store_lock_passes_over_a_dead_writers_claim`)."""
    import time

    url, opts = s3_url
    files = FileStore(url + "/store", storage_options=opts)
    files.write_text(".locks/forecasts.k", "0dead0writer host-a 4242")
    time.sleep(7)  # left 7 s ago: over stale_after (5 s) and the servers' whole seconds
    t0 = time.monotonic()
    with files.lock(".locks/forecasts.k", stale_after=5, poll=0.05):
        took = time.monotonic() - t0
    assert took < 3, f"waited {took:.1f}s on a lock left 7 s ago (stale_after 5 s)"
    assert "breaking the lock" in caplog.text and "0dead0writer" in caplog.text
    assert not files.exists(".locks/forecasts.k") and files.list(".locks") == []  # nothing of the wait left


def test_an_object_store_lock_holder_that_lost_its_lock_fails_before_it_writes(s3_url):
    """A holder whose lock was broken by a waiter (its lease ran out: the process was stopped, or the
    store unreachable) and taken by another writer must not go on writing as if it still held it."""
    url, opts = s3_url
    files = FileStore(url + "/models", storage_options=opts)
    with files.lock(".lock", stale_after=60) as lease:
        assert lease is not None
        lease.check("production.json")  # held: nothing raised
        files.remove(".lock")  # what a waiter that broke it does, then takes it
        files.write_text(".lock", "0a1b2c other-machine 42")
        with pytest.raises(StorageError, match=r"lost the lock .*/models/\.lock \(it is now held by 0a1b2c "
                                               r"other-machine 42\): production.json was not written"):
            lease.check("production.json")
    assert files.read_text(".lock") == "0a1b2c other-machine 42"  # the new holder's lock is left alone


def test_a_lost_lock_is_not_retried_by_the_io_tasks():
    """A publish refused because the registry lock's lease was lost (LockLostError) was a plain StorageError,
    which the I/O tasks take for transient: three retries, each rewriting the forecasts and refused again."""
    from types import SimpleNamespace

    from flowcast.errors import LockLostError
    from flowcast.flows.tasks import _transient

    def state(exc: Exception) -> SimpleNamespace:
        def result() -> None:
            raise exc
        return SimpleNamespace(result=result)

    assert not _transient(None, None, state(LockLostError("lost the lock s3://b/models/.lock")))
    assert _transient(None, None, state(StorageError("could not write x: Input/output error")))
    # faults25: nor is a full disk, whatever wraps it (tests/flows/test_publish_full_disk.py)
    assert not _transient(None, None, state(StorageError("could not write x: no space left on device")))
