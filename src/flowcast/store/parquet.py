"""The Parquet dataset: the source of truth of the embedded store, one file per key.

Layout under the store root (a local folder, or an fsspec URL such as s3://bucket/prefix):

    <table>/dataset=<name>/as_of=<iso>/part-0.parquet   one file per (dataset, as_of); <table> is
                                                         `forecasts` or `realized`
    .tmp/                                                local only: temporary files being written
    .locks/                                              local only: fcntl locks of writers

A partition is replaced whole: on a local file system a temporary file in `.tmp/` (beside the
dataset, so the rename is atomic, outside it, so no reader's glob sees it) is fsynced and
renamed over the partition file, then the folders are fsynced; readers see the old file or
the new one, never a part of either. On an object store (s3://, gs://, az://) the partition is
written with one object upload (a single PUT, or a multipart upload completed at the end):
object stores make an object visible only once it is complete, so a publish killed half-way
leaves the previous object, and at most an incomplete multipart upload that no listing shows
(an `AbortIncompleteMultipartUpload` lifecycle rule on the bucket removes those).

Nothing here takes a lock on behalf of readers; `lock()` serialises local writers of one key.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.errors import PublishError
from flowcast.store.base import META_PREFIX, fault
from flowcast.store.contract import storage_ts

PART_NAME = "part-0.parquet"
OBJECT_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
_UPLOAD_CHUNK = 5 * 2**20  # the smallest S3 multipart part


def partition_name(as_of: datetime) -> str:
    return f"as_of={storage_ts(as_of).isoformat()}"


def parse_as_of(name: str) -> datetime | None:
    if not name.startswith("as_of="):
        return None
    try:
        return datetime.fromisoformat(name.removeprefix("as_of="))
    except ValueError:
        return None  # not ours: ignored, never deleted


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _io_error(what: str, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        why = errno.errorcode.get(exc.errno or 0, "")
        hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        return f"{exc.strerror or exc}{f' [{why}]' if why else ''}{hint}"
    return f"{type(exc).__name__}: {exc}"


Key = tuple[str, datetime]  # (dataset, as_of)


class ParquetDataset:
    """The partition files of one store root (local folder or fsspec URL)."""

    def __init__(self, root: str | Path, *, storage_options: dict[str, Any] | None = None,
                 lock_timeout: float = 600.0):
        url = str(root)
        protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        if protocol in ("file", "local"):
            self.fs = None
            self.root: str = str(Path(url.split("://", 1)[1] if "://" in url else url))
        elif protocol in OBJECT_PROTOCOLS:
            import fsspec

            self.fs = fsspec.filesystem(protocol, **(storage_options or {}))
            self.root = url.rstrip("/")
        else:
            from flowcast.errors import ConfigError

            raise ConfigError(
                f"store url {url!r}: the Parquet dataset can live in a local folder, file://, or an object store "
                f"({', '.join(sorted(OBJECT_PROTOCOLS))}://); {protocol}:// cannot replace a file atomically"
            )
        self.lock_timeout = lock_timeout

    # ------------------------------------------------------------------ paths
    @property
    def local(self) -> bool:
        return self.fs is None

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def part_path(self, table: str, dataset: str, as_of: datetime) -> str:
        return self.path(table, f"dataset={dataset}", partition_name(as_of), PART_NAME)

    def legacy_path(self, as_of: datetime) -> str:
        """Where flowcast wrote the forecasts of an as_of before they were keyed by dataset."""
        return self.path("forecasts", partition_name(as_of), PART_NAME)

    def display(self, path: str) -> Path | str:
        return Path(path) if self.local else path

    @property
    def tmp_dir(self) -> Path:
        return Path(self.root) / ".tmp"

    @property
    def locks_dir(self) -> Path:
        return Path(self.root) / ".locks"

    # ------------------------------------------------------------------ listing
    def partitions(self, table: str, dataset: str | None = None) -> dict[Key, str]:
        """{(dataset, as_of): file} of every complete partition, sorted by key."""
        out: dict[Key, str] = {}
        if self.local:
            base = Path(self.root) / table
            dirs = [base / f"dataset={dataset}"] if dataset is not None else (
                [d for d in base.iterdir() if d.name.startswith("dataset=")] if base.is_dir() else [])
            for ddir in dirs:
                if not ddir.is_dir():
                    continue
                name = ddir.name.removeprefix("dataset=")
                for adir in ddir.iterdir():
                    as_of = parse_as_of(adir.name)
                    if as_of is not None and (adir / PART_NAME).is_file():
                        out[(name, as_of)] = str(adir / PART_NAME)
        else:
            self.fs.invalidate_cache()
            pattern = self.path(table, f"dataset={dataset if dataset is not None else '*'}", "as_of=*", PART_NAME)
            for p in self.fs.glob(pattern):
                _, ddir, adir, _ = str(p).rsplit("/", 3)
                as_of = parse_as_of(adir)
                if as_of is not None and ddir.startswith("dataset="):
                    out[(ddir.removeprefix("dataset="), as_of)] = self._full(str(p))
        return dict(sorted(out.items()))

    def legacy_partitions(self) -> dict[datetime, str]:
        """{as_of: file} of forecasts in the layout before datasets (forecasts/as_of=<iso>/)."""
        out: dict[datetime, str] = {}
        if self.local:
            base = Path(self.root) / "forecasts"
            if base.is_dir():
                for adir in base.iterdir():
                    as_of = parse_as_of(adir.name)
                    if as_of is not None and (adir / PART_NAME).is_file():
                        out[as_of] = str(adir / PART_NAME)
        else:
            self.fs.invalidate_cache()
            for p in self.fs.glob(self.path("forecasts", "as_of=*", PART_NAME)):
                as_of = parse_as_of(str(p).rsplit("/", 2)[1])
                if as_of is not None:
                    out[as_of] = self._full(str(p))
        return dict(sorted(out.items()))

    def _full(self, p: str) -> str:
        """fsspec listings drop the protocol; put it back so that paths are URLs like the root."""
        proto = self.root.split("://", 1)[0]
        return p if "://" in p else f"{proto}://{p}"

    def exists(self, path: str) -> bool:
        if self.local:
            return os.path.isfile(path)
        self.fs.invalidate_cache()
        return bool(self.fs.exists(path))

    # ------------------------------------------------------------------ reading
    def read(self, path: str, filters: list[tuple[str, str, Any]] | None = None) -> pl.DataFrame:
        """One partition (FileNotFoundError when it went away since it was listed)."""
        import pyarrow.parquet as pq

        if self.local:
            table = pq.read_table(path, filters=filters or None)
        else:
            with self.fs.open(path, "rb") as fh:
                table = pq.read_table(fh, filters=filters or None)
        return pl.from_arrow(table)

    def metadata(self, path: str) -> dict[str, str]:
        """flowcast's key-value metadata of a partition (content_hash, run_id, model, ...)."""
        import pyarrow.parquet as pq

        if self.local:
            meta = pq.read_schema(path).metadata or {}
        else:
            with self.fs.open(path, "rb") as fh:
                meta = pq.read_schema(fh).metadata or {}
        return {k.decode().removeprefix(META_PREFIX): v.decode() for k, v in meta.items()
                if k.decode().startswith(META_PREFIX)}

    def num_rows(self, path: str) -> int:
        import pyarrow.parquet as pq

        if self.local:
            return pq.ParquetFile(path).metadata.num_rows
        with self.fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).metadata.num_rows

    # ------------------------------------------------------------------ locks (local writers only)
    @contextlib.contextmanager
    def lock(self, name: str, *, blocking: bool = True) -> Iterator[bool]:
        """An fcntl lock `name` under .locks/ (a no-op yielding True on object stores: there,
        writers of one key race and the last complete upload wins, whole). Yields False when
        `blocking` is False and another process holds it."""
        if not self.local:
            yield True
            return
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        path = self.locks_dir / f"{name}.lock"
        with open(path, "a+") as fh:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking:
                        yield False
                        return
                    if time.monotonic() > deadline:
                        raise PublishError(
                            f"the forecast store {self.root} stayed locked by another writer for "
                            f"{self.lock_timeout:g}s (lock file {path})"
                        ) from None
                    time.sleep(0.05)
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def clean_temps(self, min_age_s: float = 10.0) -> list[Path]:
        """Temporary files of dead writers (local only). A writer holds an flock on its temp file
        from creation to rename; a file whose lock is free and that has data (or is older than
        `min_age_s`) belongs to a writer that died."""
        removed: list[Path] = []
        if not self.local or not self.tmp_dir.is_dir():
            return removed
        now = time.time()
        for f in self.tmp_dir.iterdir():
            try:
                fd = os.open(f, os.O_RDONLY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer
                st = os.fstat(fd)
                if st.st_size > 0 or now - st.st_mtime > min_age_s:
                    f.unlink(missing_ok=True)
                    removed.append(f)
            finally:
                os.close(fd)
        return removed

    # ------------------------------------------------------------------ writing
    def write(self, path: str, frame: pl.DataFrame, metadata: dict[str, str], *, what: str) -> None:
        """Replace the partition file `path` whole with `frame` (+ key-value metadata). Raises
        PublishError naming `what`; the previous file stays on any failure."""
        table = frame.to_arrow()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        if self.local:
            self._write_local(Path(path), table, what)
        else:
            self._write_object(path, table, what)

    def _write_local(self, final: Path, table: Any, what: str) -> None:
        import pyarrow.parquet as pq

        part_dir = final.parent
        tmp = self.tmp_dir / f"{part_dir.parent.name}.{part_dir.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        fd = -1
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the rename: clean_temps leaves a live writer's file
            with os.fdopen(os.dup(fd), "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                fault("after_parquet_tmp")
                os.fsync(fh.fileno())
            fault("before_rename")
            part_dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(part_dir.parent)
            os.replace(tmp, final)
            _fsync_dir(part_dir)
            _fsync_dir(self.tmp_dir)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                if part_dir.exists() and not any(part_dir.iterdir()):
                    part_dir.rmdir()
            if isinstance(exc, OSError):
                raise PublishError(f"could not write {what} to {part_dir}: {_io_error(what, exc)}; "
                                   "previously published forecasts are intact") from exc
            if isinstance(exc, Exception):
                raise PublishError(f"could not serialise {what}: {_io_error(what, exc)}; "
                                   "previously published forecasts are intact") from exc
            raise
        finally:
            if fd >= 0:
                os.close(fd)

    def _write_object(self, path: str, table: Any, what: str) -> None:
        import pyarrow.parquet as pq

        try:
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            data = buf.getbuffer()
            fault("after_parquet_tmp")
            with self.fs.open(path, "wb", block_size=_UPLOAD_CHUNK) as fh:
                for i in range(0, len(data), _UPLOAD_CHUNK):
                    fh.write(data[i:i + _UPLOAD_CHUNK])
                    if i == 0 and len(data) > _UPLOAD_CHUNK:
                        fh.flush()  # the first part is uploaded; the object is not visible yet
                        fault("mid_upload")
                fault("before_rename")
        except Exception as exc:
            raise PublishError(f"could not upload {what} to {path}: {_io_error(what, exc)}; "
                               "previously published forecasts are intact") from exc

    def remove(self, path: str) -> None:
        """Delete one partition file and its folder if empty (migration, explicit deletes)."""
        if self.local:
            p = Path(path)
            p.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                p.parent.rmdir()
                _fsync_dir(p.parent.parent)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(path)
