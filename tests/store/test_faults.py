"""Faults lose nothing, on every backend: a publisher killed (SIGKILL) at each point of a publish
leaves exactly the old or exactly the new forecasts of its key, never a mix, never a duplicate,
and the next publish completes; concurrent publishers all land, one whole winner per key.

Kill tests run tests/publish_faults/publisher.py in a subprocess that SIGKILLs itself at a named
point (FLOWCAST_FAULT=publish:<point>) or is SIGKILLed by the test at a random moment.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time

import polars as pl
import pytest
from publisher import make_forecast
from store_backends import make_backend
from store_helpers import AS_OF, DS, OTHER, H, child, publish, variant_of

from flowcast.store import content_hash

BIG = 4000  # series: 4000 x 6 = 24k rows, a multi-page Parquet file
SIZE = {"embedded": BIG, "postgres": 1000}  # PostgreSQL has no file to tear: fewer rows, a faster test
UPLOAD_BIG = 20000  # series, horizon 1, with --noise: a ~6 MB file, two parts of a multipart upload


def _whole(store, n: int, dataset: str = DS, as_of=AS_OF, h: int = H) -> int:
    """The key holds exactly one publish, whole, and its receipt agrees with its rows; its variant."""
    back = store.read(dataset=dataset, as_of=as_of)
    assert back.height == n * h and back.select("unique_id", "ds").n_unique() == n * h
    (variant,) = variant_of(back)
    assert back["model_version"].unique().to_list() == [f"lstm-v{variant}"]  # rows and labels agree
    assert store.receipt_of(dataset, as_of)["content_hash"] == content_hash(back)
    return variant


@pytest.mark.parametrize(
    "name, point, survivor",
    [
        ("embedded", "after_parquet_tmp", 1),  # temp file written, not fsynced: old partition
        ("embedded", "before_rename", 1),  # temp file fsynced, not renamed: old partition
        ("embedded", "after_rename", 2),  # the new file is in place, its predecessor not deleted: new
        ("postgres", "in_transaction", 1),  # old rows deleted, not committed: the server rolls back
        ("postgres", "before_commit", 1),  # new rows copied in, not committed: rolled back
        ("postgres", "after_commit", 2),  # committed: new
    ],
)
def test_sigkill_during_publish_leaves_old_or_new_and_the_next_run_completes(request, tmp_path, name, point,
                                                                            survivor):
    b = make_backend(name, request, tmp_path)
    big = SIZE[name]
    publish(b.store, make_forecast(1, big, H, AS_OF))
    other = publish(b.store, make_forecast(9, 10, H, AS_OF), dataset="other", variant=9)
    proc = child(b.spec, AS_OF, 2, big, f"publish:{point}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err

    if name == "embedded":
        store = b.store
        if point in ("after_parquet_tmp", "before_rename"):
            assert len(list(store.tmp_dir.iterdir())) == 1  # the dead publisher's temp file is there ...
        parts = sorted(re.sub(r"-[0-9a-f]{8}\.parquet$", "", p.relative_to(store.root).as_posix())
                       for p in (store.root / "forecasts").rglob("*") if p.is_file())
        mine = "forecasts/dataset=sales/as_of=2024-03-01T00:00:00/part-"
        assert parts == ["forecasts/dataset=other/as_of=2024-03-01T00:00:00/part-00000001", f"{mine}00000001",
                         *([f"{mine}00000002"] if point == "after_rename" else [])]  # ... not in the dataset
        newest = max((store.root / "forecasts" / f"dataset={DS}").rglob("*.parquet"))
        assert variant_of(pl.read_parquet(newest)) == {survivor}  # the key's newest file is whole
    assert _whole(b.reopen(), big) == survivor
    assert b.store.receipt_of("other", AS_OF)["content_hash"] == other.content_hash  # other keys untouched

    proc = child(b.spec, AS_OF, 3, big)  # the next run completes
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _whole(b.store, big) == 3 and b.store.read().height == big * H + 10 * H
    if name == "embedded":
        assert not any(b.store.tmp_dir.iterdir())  # the next publish removed the dead temp file


@pytest.mark.parametrize("name", ["embedded", "postgres"])
def test_random_sigkills_never_leave_a_mix(request, tmp_path, name):
    """A child publishes variant 10, 11, 12, ... of one key in a loop; kill it at random moments."""
    b = make_backend(name, request, tmp_path)
    big = SIZE[name]
    publish(b.store, make_forecast(1, big, H, AS_OF))
    rng = random.Random(7)
    seen = set()
    for i in range(4):
        proc = child(b.spec, AS_OF, 10 + 100 * i, big, None, "--loop")
        first = proc.stdout.readline()  # wait for one whole publish, then kill during a later one
        assert first.startswith("published"), proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.6))  # one publish of 24k rows takes a few tenths of a second
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        variant = _whole(b.reopen(), big)
        seen.add(variant)
    assert 1 not in seen  # every child completed at least one publish before it was killed


@pytest.mark.parametrize("name", ["embedded", "postgres"])
def test_concurrent_publishers_all_land_with_one_whole_winner_per_key(request, tmp_path, name):
    b = make_backend(name, request, tmp_path)
    big = SIZE[name]
    jobs = [(DS, AS_OF, 1), (DS, OTHER, 2), (DS, AS_OF, 3), ("b", AS_OF, 4), ("b", AS_OF, 5)]
    procs = [child(b.spec, a, v, big, dataset=d) for d, a, v in jobs]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    store = b.reopen()
    assert store.as_ofs(DS) == [OTHER, AS_OF] and store.as_ofs("b") == [AS_OF]  # every key landed
    assert _whole(store, big, as_of=OTHER) == 2
    assert _whole(store, big) in (1, 3)  # two publishers of one key: one wins whole, no duplicates
    assert _whole(store, big, dataset="b") in (4, 5)
    assert store.read().height == 3 * big * H  # three keys


def test_an_upload_killed_half_way_leaves_the_previous_object(request, tmp_path):
    """The Parquet dataset on an S3-compatible server: a publisher killed after the first part of a
    multipart upload, or after the last part before the upload is completed, leaves the previous
    object whole; the next publish completes (breaking the key's lock object the killed one left, after
    `store.lock_timeout`: 3 s here)."""
    b = make_backend("s3", request, tmp_path)
    spec = json.dumps({**json.loads(b.spec), "lock_timeout": 3})
    store = b.store
    first = b.reopen()
    proc = child(spec, AS_OF, 1, UPLOAD_BIG, None, "--noise", horizon=1)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    old_hash = first.receipt_of(DS, AS_OF)["content_hash"]
    for point in ("mid_upload", "before_rename"):  # one part sent; every part sent, upload not completed
        proc = child(spec, AS_OF, 2, UPLOAD_BIG, f"publish:{point}", "--noise", horizon=1)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (point, err)
        assert _whole(b.reopen(), UPLOAD_BIG, h=1) == 1, point  # the old object, whole
        assert store.receipt_of(DS, AS_OF)["content_hash"] == old_hash
        listed = [p for p in store.data.fs.find(store.location) if "/.locks/" not in p]  # its lock object: broken next
        assert [re.sub(r"-[0-9a-f]{8}\.parquet$", "", p).rsplit("/", 3)[1:] for p in listed] == [
            ["dataset=sales", "as_of=2024-03-01T00:00:00", "part-00000001"]], listed  # nothing half-made listed
    fs = store.data.fs
    bucket = store.location.split("://", 1)[1].split("/", 1)[0]
    pending = fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", [])
    assert len(pending) >= 1  # the killed multipart upload exists, invisible to every listing
    proc = child(spec, AS_OF, 3, UPLOAD_BIG, None, "--noise", horizon=1)  # the next publish completes
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _whole(b.reopen(), UPLOAD_BIG, h=1) == 3


@pytest.mark.parametrize("point", ["after_rename", "in_views"])
def test_views_a_kill_left_uncreated_on_the_first_publish_are_created_when_the_store_is_opened(tmp_path, point):
    """Regression: a publisher killed on a store's first publish, after its file landed and before the
    DuckDB views were committed, left forecasts.duckdb without a `forecasts` view (or without the
    file) until the next publish; opening the store (any flowcast command: `flowcast forecasts`)
    creates them."""
    import duckdb

    from flowcast.config import load_settings
    from flowcast.store import open_store

    home = tmp_path / "home"
    proc = child(str(home / "warehouse"), AS_OF, 1, 5, f"publish:{point}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    db = home / "warehouse" / "forecasts.duckdb"
    store = open_store(load_settings(home=home))
    assert store.read().height == 5 * H
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM forecasts").fetchall() == [(5 * H,)]
        assert con.execute("SELECT dataset, rows FROM publishes").fetchall() == [(DS, 5 * H)]


def test_an_object_upload_that_fails_half_way_is_abandoned_not_completed(monkeypatch):
    """Regression: the upload of a forecasts file to an object store was a `with fs.open(...)` block, and
    fsspec's __exit__ closes the file whatever happened, which completes the multipart upload: a part that
    failed half way (a connection reset) made the bytes written so far visible as the key's newest file, a
    truncated Parquet file that every later read of the key found damaged. The upload is abandoned instead
    (s3fs: its multipart upload aborted), and nothing of it appears."""
    from typing import Self

    import pyarrow as pa

    from flowcast.errors import PublishError
    from flowcast.store import parquet

    said: list[str] = []

    class Upload:  # what fsspec's buffered file does with each call, minus the network
        def __init__(self) -> None:
            self.parts, self.closed = 0, False

        def write(self, data: bytes) -> None:
            self.parts += 1
            if self.parts == 2:
                raise OSError(104, "Connection reset by peer")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            said.append("completed")
            self.closed = True

        def discard(self) -> None:
            said.append("aborted")

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    class Bucket:
        def open(self, path: str, mode: str, block_size: int | None = None) -> Upload:
            return Upload()

    data = object.__new__(parquet.ParquetDataset)
    data.fs = Bucket()
    monkeypatch.setattr(parquet, "_UPLOAD_CHUNK", 64)  # several parts
    with pytest.raises(PublishError, match=r"could not upload forecasts of x to s3://b/x.parquet: .*Connection reset"):
        data._write_object("s3://b/x.parquet", pa.table({"a": list(range(1000))}), "forecasts of x")
    assert said == ["aborted"]


def _minio_full() -> OSError:
    """MinIO's answer to an upload past its drives' free-space threshold, as s3fs raises it (its own translation)."""
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    return translate_boto_error(ClientError(
        {"Error": {"Code": "XMinioStorageFull", "Message": "Storage backend has reached its minimum free drive "
                   "threshold. Please delete a few objects to proceed."}}, "UploadPart"))


@pytest.mark.parametrize("full", [lambda: OSError(28, "No space left on device"), _minio_full],
                         ids=["ENOSPC", "XMinioStorageFull"])
def test_a_full_object_store_says_the_bytes_the_upload_needed(monkeypatch, full):
    """faults50: an upload to an object store that found no room said the error alone, where a full local disk
    says the bytes the file needed and those free (`atomic.room_for`): it says the bytes the object needed (the
    Parquet file it uploads, every byte) and that an object store reports no free room; the upload is abandoned,
    and the error is not taken for transient (a full store does not free itself in a task's retries)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from flowcast.atomic import needed_of, no_room
    from flowcast.errors import PublishError
    from flowcast.store import parquet

    said: list[str] = []

    class Upload:
        closed = False

        def write(self, data: bytes) -> None:
            raise full()

        def flush(self) -> None:
            pass

        def discard(self) -> None:
            said.append("aborted")

    class Bucket:
        def open(self, path: str, mode: str, block_size: int | None = None) -> Upload:
            return Upload()

    data = object.__new__(parquet.ParquetDataset)
    data.fs, data.root = Bucket(), "s3://b/wh"
    table = pa.table({"a": list(range(1000))})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
    with pytest.raises(PublishError) as exc:
        data._write_object("s3://b/wh/x.parquet", table, "forecasts of x")
    msg = str(exc.value)
    assert msg.startswith("could not upload forecasts of x to s3://b/wh/x.parquet: "), msg
    assert (f"({len(buf.getvalue()):,} bytes to write, the room left in s3://b/wh is not known (an object store "
            "does not report it)); previously published forecasts are intact") in msg, msg
    assert needed_of(msg) == len(buf.getvalue()) and no_room(exc.value) and said == ["aborted"]


def test_an_object_upload_that_fails_otherwise_says_no_room():
    """The bytes and the room are said of a write that found no room alone: a connection reset says its error."""
    import pyarrow as pa

    from flowcast.errors import PublishError
    from flowcast.store import parquet

    class Bucket:
        def open(self, path: str, mode: str, block_size: int | None = None) -> object:
            raise OSError(104, "Connection reset by peer")

    data = object.__new__(parquet.ParquetDataset)
    data.fs, data.root = Bucket(), "s3://b/wh"
    with pytest.raises(PublishError) as exc:
        data._write_object("s3://b/wh/x.parquet", pa.table({"a": [1]}), "forecasts of x")
    assert "Connection reset by peer" in str(exc.value) and "bytes to write" not in str(exc.value), str(exc.value)
