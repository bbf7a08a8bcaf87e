"""The Parquet dataset: the source of truth of the embedded store, one file per key.

Layout under the store root (a local folder, or an fsspec URL such as s3://bucket/prefix):

    <table>/dataset=<name>/as_of=<iso>/part-<seq>-<tag>.parquet   the forecasts (<table> = forecasts)
                                         or realized accuracy (realized) of one (dataset, as_of)
    .tmp/                                local only: temporary files being written
    .locks/                              writers' locks (one per key): locally fcntl lock files, on an object
                                         store lock objects (`lock`); `flowcast gc --yes` removes the idle ones

Files are immutable: a publish writes a NEW file (the next sequence number); the files it
supersedes are deleted once they have been superseded for `grace_s` seconds (store.superseded_grace_s,
default 60, so that a DuckDB query planned on an older file can still read it), by a later
publish of the key. A key's current content is its file with the highest name; views and
readers never show the others. Readers list a
key's folder and read that one file through one open handle; if it was deleted meanwhile (a
newer publish), they list again. Why not replace one file in place by rename: a reader that
opens a path twice (DuckDB reads a file's footer when it plans a query and its pages when it
runs it) would pair one publish's footer with another's pages (tests/store/test_concurrency.py
caught exactly that); an immutable name always means the same bytes.

Locally, the new file is written in `.tmp/` (same file system, so the rename is atomic;
outside the dataset, so no glob sees it), fsynced, renamed to its final name, the folders
fsynced, and only then the predecessor is deleted: a crash leaves the old file, or both (the
newer wins), never a part of either. On an object store
(s3://, gs://, az://) the new object is written with one upload (a single PUT, or a multipart
upload completed at the end): an object is visible only once complete, so an upload killed
half-way leaves the previous object, and at most an incomplete multipart upload that no listing
shows (a bucket lifecycle rule, AbortIncompleteMultipartUpload, removes those).

Nothing here takes a lock on behalf of readers; `lock()` serialises writers of one key: locally an fcntl lock
under `.locks/`, on an object store a lock object `.locks/<name>` created with a conditional PUT (`If-None-Match: *`,
`flowcast.store.fs.FileStore.lock`, the model registry's lock at a URL), renewed while held and checked before
an upload completes and before each delete (it was not before deletes: lock43). Without it (gc43) two writers of one key raced there: a publish's `if_absent` check, gc's delete
of a key and its publish record, and a publish's record were unguarded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.atomic import fsync_dir as _fsync_dir  # (the name the fault tests patch)
from flowcast.errors import FlowcastError, PublishError, removal
from flowcast.store.base import META_PREFIX, fault
from flowcast.store.contract import storage_ts
from flowcast.store.fs import CLAIMS, FileStore, refused_condition, unsupported_condition
from flowcast.timekeys import utc_text

log = logging.getLogger(__name__)

PART_GLOB = "part-*.parquet"
LEGACY_PART = "part-0.parquet"  # the one file per as_of before datasets were keyed
OBJECT_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
_UPLOAD_CHUNK = 5 * 2**20  # the smallest S3 multipart part
_HELD = threading.local()  # .leases: the object-store locks this thread holds (`ParquetDataset.lock`)


def partition_name(as_of: datetime) -> str:
    return f"as_of={storage_ts(as_of).isoformat()}"


def is_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet") and name != LEGACY_PART


def part_seq(name: str) -> int:
    try:
        return int(name.split("-")[1].split(".")[0])
    except (IndexError, ValueError):
        return 0


def parse_as_of(name: str) -> datetime | None:
    if not name.startswith("as_of="):
        return None
    try:
        return datetime.fromisoformat(name.removeprefix("as_of="))
    except ValueError:
        return None  # not ours: ignored, never deleted


def _abandon(fh: Any) -> None:
    """Give up an upload in progress without completing it (s3fs: its multipart upload is aborted), so
    that nothing of it becomes visible; the file object is closed without its close, which completes."""
    with contextlib.suppress(Exception):
        fh.discard()
    fh.closed = True


def _io_error(what: str, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        why = errno.errorcode.get(exc.errno or 0, "")
        hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        return f"{exc.strerror or exc}{f' [{why}]' if why else ''}{hint}"
    return f"{type(exc).__name__}: {exc}"


Key = tuple[str, datetime]  # (dataset, as_of)


def expired(times: dict[str, float], now: float, grace_s: float) -> list[tuple[str, str, float]]:
    """(file, its successor, seconds since the successor was written) of one key's files `times` ({file:
    modification time}) that a later file superseded `grace_s` or more before `now`; never the newest."""
    names = sorted(times)
    return [(older, successor, now - times[successor]) for older, successor in itertools.pairwise(names)
            if now - times[successor] >= grace_s]


def _check_leases(what: str) -> None:
    """LockLostError (naming `what`, which is then not done) when one of the object-store locks this thread holds
    (`ParquetDataset._object_lock`) is no longer its own: checked before each upload completes and each delete."""
    for lease in getattr(_HELD, "leases", []):
        lease.check(what)


def _version(info: dict[str, Any]) -> Any:
    """What tells one write of an object from another in an fsspec listing or `info`: its ETag (S3, Azure) or
    generation (GCS), else its modification time (every write of a lock object writes new content: a renewal count,
    another holder's token)."""
    for key in ("ETag", "etag", "generation", "LastModified", "mtime", "updated"):
        if info.get(key) is not None:
            return info[key]
    return None


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path` (not removed, not replaced)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _null_count(rg: Any, i: int) -> int | None:
    """The nulls of column `i` of the row group `rg` its footer records (None: not recorded)."""
    st = rg.column(i).statistics
    return st.null_count if st is not None and st.has_null_count else None


def _every_row_matches(rg: Any, at: dict[str, int], filters: list[tuple[str, str, Any]]) -> bool | None:
    """Whether every row of the row group `rg` matches `filters` ('=' only): True where each filter column's
    statistics are that value alone and no null, False where one's min and max leave it out, None where they cannot
    say (none recorded, a range that holds the value)."""
    every: bool | None = True
    for c, _, v in filters:
        st = rg.column(at[c]).statistics
        if st is None or not st.has_min_max:
            every = None
            continue
        if v < st.min or v > st.max:
            return False
        if not (st.min == st.max == v and _null_count(rg, at[c]) == 0):
            every = None
    return every


class ParquetDataset:
    """The partition files of one store root (local folder or fsspec URL)."""

    def __init__(self, root: str | Path, *, storage_options: dict[str, Any] | None = None,
                 lock_timeout: float = 600.0, grace_s: float = 60.0):
        url = str(root)
        protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        if protocol in ("file", "local"):
            self.fs: Any = None
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
        self.storage_options = storage_options
        self.lock_timeout = lock_timeout
        self.grace_s = grace_s
        self.conditional_deletes = True  # False once the object store refused DeleteObject If-Match itself

    # ------------------------------------------------------------------ paths
    @property
    def local(self) -> bool:
        return self.fs is None

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def key_dir(self, table: str, dataset: str, as_of: datetime) -> str:
        return self.path(table, f"dataset={dataset}", partition_name(as_of))

    def legacy_path(self, as_of: datetime) -> str:
        """Where flowcast wrote the forecasts of an as_of before they were keyed by dataset."""
        return self.path("forecasts", partition_name(as_of), LEGACY_PART)

    def display(self, path: str) -> Path | str:
        return Path(path) if self.local else path

    @property
    def tmp_dir(self) -> Path:
        return Path(self.root) / ".tmp"

    @property
    def locks_dir(self) -> Path:
        return Path(self.root) / ".locks"

    # ------------------------------------------------------------------ listing
    def _parts_in(self, key_dir: str) -> list[str]:
        """The part files of one key folder, oldest first (by name: the sequence number)."""
        if self.local:
            try:
                names = [e.name for e in os.scandir(key_dir) if e.is_file() and is_part(e.name)]
            except (FileNotFoundError, NotADirectoryError):
                return []
            return [f"{key_dir}/{n}" for n in sorted(names)]
        self.fs.invalidate_cache(key_dir)
        try:
            found = self.fs.ls(key_dir, detail=False)
        except FileNotFoundError:
            return []
        return sorted(self._full(str(p)) for p in found if is_part(str(p).rsplit("/", 1)[-1]))

    def current(self, table: str, dataset: str, as_of: datetime) -> str | None:
        """The file holding (dataset, as_of) now, or None."""
        parts = self._parts_in(self.key_dir(table, dataset, as_of))
        return parts[-1] if parts else None

    def partitions(self, table: str, dataset: str | None = None) -> dict[Key, str]:
        """{(dataset, as_of): current file} of every key, sorted by key."""
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
                    parts = self._parts_in(str(adir)) if as_of is not None else []
                    if as_of is not None and parts:
                        out[(name, as_of)] = parts[-1]
        else:
            self.fs.invalidate_cache()
            pattern = self.path(table, f"dataset={dataset if dataset is not None else '*'}", "as_of=*", PART_GLOB)
            for p in sorted(self.fs.glob(pattern)):  # sorted: the last file of a key is its current one
                _, dname, aname, fname = str(p).rsplit("/", 3)
                when = parse_as_of(aname)
                if when is not None and dname.startswith("dataset=") and is_part(fname):
                    out[(dname.removeprefix("dataset="), when)] = self._full(str(p))
        return dict(sorted(out.items()))

    def legacy_partitions(self) -> dict[datetime, str]:
        """{as_of: file} of forecasts in the layout before datasets (forecasts/as_of=<iso>/)."""
        out: dict[datetime, str] = {}
        if self.local:
            base = Path(self.root) / "forecasts"
            if base.is_dir():
                for adir in base.iterdir():
                    as_of = parse_as_of(adir.name)
                    if as_of is not None and (adir / LEGACY_PART).is_file():
                        out[as_of] = str(adir / LEGACY_PART)
        else:
            self.fs.invalidate_cache()
            for p in self.fs.glob(self.path("forecasts", "as_of=*", LEGACY_PART)):
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
    def _open(self, path: str) -> Any:
        """One open handle on a part file (immutable: the same bytes for as long as it exists;
        locally the handle keeps them even if the file is deleted while it is read)."""
        if self.local:
            return open(path, "rb")
        return self.fs.open(path, "rb")

    def read(self, path: str, filters: list[tuple[str, str, Any]] | None = None, *,
             columns: Callable[[str], bool] | None = None, rows: int | None = None,
             each: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> pl.DataFrame:
        """One partition, whole (FileNotFoundError when it went away since it was listed). Each data page's
        CRC (written since page checksums were added) is checked: bytes damaged inside a page under an intact footer
        are an OSError ('CRC checksum verification failed'), where they were read as other forecast values.
        `columns`: only the columns it keeps; `rows`: only the first rows (after `filters`), read a batch at a
        time until that many (`flowcast forecasts`' table: 50 rows of 1.4M read every row only to show them);
        `each`: what is kept of each batch read (a summary of it), in place of its rows."""
        import pyarrow.parquet as pq

        with self._open(path) as fh:
            if columns is None and rows is None and each is None:
                out = pl.from_arrow(pq.read_table(fh, filters=filters or None, page_checksum_verification=True))
            else:
                f = pq.ParquetFile(fh, page_checksum_verification=True)
                names = [c for c in f.schema_arrow.names if columns is None or columns(c)]
                need = names + [c for c, _, _ in filters or [] if c not in names and c in f.schema_arrow.names]
                parts: list[pl.DataFrame] = []
                got = 0
                # decoded a batch at a time; none where a summary asks for no column the file has (the value columns
                # a read of the first rows looks for in the later files: `EmbeddedStore.read(rows=)`)
                for batch in f.iter_batches(batch_size=65_536, columns=need) if names or each is None else ():
                    part = pl.from_arrow(batch)
                    assert isinstance(part, pl.DataFrame)
                    for c, _, v in filters or []:  # '=' only, as `EmbeddedStore.read` gives them
                        part = part.filter(pl.col(c) == v) if c in part.columns else part.clear()
                    got += part.height
                    parts.append(part.select(names) if each is None else each(part.select(names)))
                    if rows is not None and got >= rows:
                        break
                empty = pl.from_arrow(f.schema_arrow.empty_table().select(names))
                assert isinstance(empty, pl.DataFrame)
                out = pl.concat(parts) if parts else empty if each is None else each(empty)
                out = out.head(rows) if rows is not None else out
        assert isinstance(out, pl.DataFrame)  # a Table gives a frame (a Series only from an Array)
        return out

    def filled(self, path: str, columns: Callable[[str], bool],
               filters: list[tuple[str, str, Any]] | None = None) -> pl.DataFrame:
        """One row: whether each column of the partition `columns` keeps holds a value in a row matching `filters`
        ('=' only; `EmbeddedStore.read(rows=)`: the value columns its first rows lack). Decided from each row group's
        statistics in the footer where they can (the column's null count; the filter columns' min and max, all the
        value asked or none of it), read (those columns of that row group) only where they cannot, and no further
        than the first value of each: the check read each such column whole, a batch at a time."""
        import pyarrow.parquet as pq

        with self._open(path) as fh:
            f = pq.ParquetFile(fh, page_checksum_verification=True)
            have = f.schema_arrow.names
            found = dict.fromkeys((c for c in have if columns(c)), False)
            meta = f.metadata
            at = {meta.row_group(0).column(i).path_in_schema: i for i in range(meta.num_columns)} \
                if meta.num_row_groups else {}
            # a filter on a column the file lacks matches no row (as `read`)
            groups = range(meta.num_row_groups) if all(c in have for c, _, _ in filters or []) else range(0)
            for g in groups:
                rg = meta.row_group(g)
                todo = [c for c, got in found.items() if not got]
                if not todo:
                    break
                every = _every_row_matches(rg, at, filters or [])
                if every is False or rg.num_rows == 0:
                    continue
                unknown = []
                for c in todo:
                    nulls = _null_count(rg, at[c])
                    if nulls == rg.num_rows:  # none in this group
                        continue
                    if nulls is not None and every:
                        found[c] = True
                    else:
                        unknown.append(c)
                if unknown:
                    part = pl.from_arrow(f.read_row_group(g, columns=unknown + [
                        c for c, _, _ in filters or [] if c not in unknown]))
                    assert isinstance(part, pl.DataFrame)
                    for c, _, v in filters or []:
                        part = part.filter(pl.col(c) == v)
                    found.update({c: True for c in unknown if part[c].is_not_null().any()})
        return pl.DataFrame({c: [got] for c, got in found.items()}, schema=dict.fromkeys(found, pl.Boolean))

    def verify(self, path: str) -> str | None:
        """Why a forecasts or realized-accuracy file is damaged (a page whose CRC fails, a footer that cannot be read, content
        whose hash is not the one its publish recorded), or None when it is whole. Reads it whole."""
        from flowcast.store.hashing import content_hash

        try:
            recorded = self.metadata(path).get("content_hash")
            frame = self.read(path)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:  # ArrowInvalid is a ValueError
            return f"{type(exc).__name__}: {exc}"
        if recorded is not None and "dataset" in frame.columns and content_hash(frame) != recorded:
            return f"its content hash is not the {recorded[:12]}... its publish recorded"
        return None

    def metadata(self, path: str) -> dict[str, str]:
        """flowcast's key-value metadata of a partition (content_hash, run_id, model, ...)."""
        import pyarrow.parquet as pq

        with self._open(path) as fh:
            meta = pq.read_schema(fh).metadata or {}
        return {k.decode().removeprefix(META_PREFIX): v.decode() for k, v in meta.items()
                if k.decode().startswith(META_PREFIX)}

    def num_rows(self, path: str) -> int:
        import pyarrow.parquet as pq

        with self._open(path) as fh:
            return pq.ParquetFile(fh).metadata.num_rows

    # ------------------------------------------------------------------ locks (writers only)
    @contextlib.contextmanager
    def lock(self, name: str, *, blocking: bool = True, remove: bool = False) -> Iterator[bool]:
        """An fcntl lock `name` under .locks/; on an object store the lock object `.locks/<name>` (module doc), which
        always waits (`blocking` is for local locks alone) and is gone once released. Yields False when `blocking`
        is False and another process holds it. `remove`: the lock file is deleted before the
        lock is released (its key was deleted: one empty file per as_of ever published stayed behind).
        A lock is held only on the file the name still points at: a waiter whose file was removed (or
        replaced) while it waited opens the name again, so removing a lock file never lets two writers in."""
        if not self.local:
            with self._object_lock(name):
                yield True
            return
        path = self.locks_dir / f"{name}.lock"
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                self.locks_dir.mkdir(parents=True, exist_ok=True)
                handle = open(path, "a+")  # noqa: SIM115 - closed below
            except OSError as exc:  # a read-only or full disk: say which file, keep it retryable
                raise PublishError(f"could not open the writer lock {path} of the forecast store: "
                                   f"{_io_error(name, exc)}; previously published forecasts are intact") from exc
            with handle as fh:
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
                if not _same_file(fh.fileno(), path):  # removed while this process waited: take the new one
                    continue
                try:
                    yield True
                finally:
                    if remove:
                        with contextlib.suppress(OSError):
                            path.unlink()
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                return

    @contextlib.contextmanager
    def _object_lock(self, name: str) -> Iterator[None]:
        """Hold the lock object `.locks/<name>` of a store in an object store (`FileStore.lock`: a dead holder's is
        broken after `lock_timeout` seconds, a live one's renewed); its lease is checked before an upload of this
        thread completes (`_write_object`) and before its deletes (`remove_key`), so a holder that lost it writes and
        deletes nothing."""
        files = FileStore(self.root, storage_options=self.storage_options)
        with files.lock(f".locks/{name}", timeout=self.lock_timeout, stale_after=self.lock_timeout) as lease:
            held = _HELD.__dict__.setdefault("leases", [])
            held.append(lease)
            try:
                yield
            finally:
                held.remove(lease)

    def remove_idle_locks(self) -> int:
        """Delete the lock files no writer holds now; how many. One empty file per key ever
        written stayed under .locks/ for good; `lock` makes removing one safe (module doc). On an object store the
        lock objects no writer renews (`_remove_stale_lock_objects`)."""
        if not self.local:
            return self._remove_stale_lock_objects()
        if not self.locks_dir.is_dir():
            return 0
        removed = 0
        for f in self.locks_dir.glob("*.lock"):
            with self.lock(f.name.removesuffix(".lock"), blocking=False, remove=True) as got:
                removed += bool(got)
        return removed

    def _remove_stale_lock_objects(self) -> int:
        """Delete the lock objects under `.locks/` last written more than `lock_timeout` ago, the server's times (a
        holder renews its own every lock_timeout/4: `fs.Lease`; a waiter would break it), with what else of each lock
        is as old (its holder's claim, a waiter's probe), and the claims and probes as old whose lock object is gone;
        how many lock objects. A writer killed while it held a key's lock left them, and on a key nobody writes again
        (no waiter breaks it) they stayed for good. A live holder's claim (written once, never rewritten) stays."""
        files = FileStore(self.root, storage_options=self.storage_options)
        base = f"{self.path('.locks')}/"
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return 0
        if not found:
            return 0
        now = files.server_time(f".locks.now/{os.urandom(8).hex()}")  # outside .locks/: never taken for a lock's
        ages = {}  # the path under .locks/ -> seconds since it was last written (less 1 s: whole seconds on S3)
        listed = {}  # the path under .locks/ -> its listing
        for name, info in found.items():
            rel = self._full(str(name)).removeprefix(base)
            when = info.get("LastModified") or info.get("mtime") or info.get("updated")
            if rel and when is not None and hasattr(when, "timestamp"):
                ages[rel] = (now - when).total_seconds() - 1
                listed[rel] = info
        stale = {rel for rel, age in ages.items() if age > self.lock_timeout}
        removed = 0
        kept: set[str] = set()  # stale lock objects written again since the listing: live locks now
        for rel in sorted(stale, key=lambda r: "/" in r):  # lock objects first, then what is left of them
            lock = rel.split("/", 1)[0].removesuffix(CLAIMS).removesuffix(".now")
            if "/" in rel and lock in ages and (lock not in stale or lock in kept):
                continue  # the claim of a live holder (its lock object renewed) or a waiter's, of a live lock
            if self._remove_if_unchanged(f"{base}{rel}", listed[rel]):
                removed += "/" not in rel
            else:
                kept.add(rel)
        return removed

    def _remove_if_unchanged(self, path: str, listed: dict[str, Any]) -> bool:
        """Delete the object `path` only while it is the one its listing `listed` described (the same `_version`,
        read again just before the delete); whether it went. A lock object listed as stale and renewed since by its
        holder, or broken and taken since by another writer, is that writer's lock now: it was deleted all the same,
        and a third writer went in beside the holder (lock44). On S3 (s3fs) the delete itself is conditional on that
        ETag (`_delete_if_match`): a change landing between this read and the delete, one request's window, deleted
        the new object all the same (lockB44). fsspec has no conditional delete elsewhere: that window stays there."""
        self.fs.invalidate_cache(path.rsplit("/", 1)[0])
        try:
            now = self.fs.info(path)
        except FileNotFoundError:
            return False
        if _version(now) != _version(listed):
            log.info("left the lock object %s: written again since gc listed it as stale", path)
            return False
        try:
            if callable(getattr(self.fs, "call_s3", None)) and now.get("ETag"):
                return self._delete_if_match(path, now["ETag"])
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def _delete_if_match(self, path: str, etag: str) -> bool:
        """Delete the S3 object `path` only while its ETag is `etag`, the condition in the delete itself (DeleteObject
        `If-Match`, which s3fs's rm_file does not send); whether it went. Written again since (412 PreconditionFailed,
        or 409: a conditional write of it in flight): left, False. Gone: FileNotFoundError. A server that refuses the
        header itself (501 NotImplemented, 400 InvalidArgument: `unsupported_condition`) made gc's sweep fail there:
        the plain delete instead, the re-read just before (`_remove_if_unchanged`) its guard, said once and not asked
        again of this dataset (`conditional_deletes`). A server that ignores the header without an error, and a
        botocore too old to know DeleteObject's IfMatch (s3fs drops arguments its operation lacks, silently), delete
        unconditionally: there only that re-read guards it, unsaid (README, `flowcast gc`)."""
        bucket, key, _ = self.fs.split_path(path)
        self.fs.invalidate_cache(path)
        if self.conditional_deletes:
            try:
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=etag)
                return True
            except Exception as exc:
                if refused_condition(exc):
                    log.info("left the lock object %s: written again since gc read it (ETag %s) as stale", path, etag)
                    return False
                if isinstance(exc, FileNotFoundError) or not unsupported_condition(exc):
                    raise
                self.conditional_deletes = False
                log.warning("the object store %s does not support conditional deletes (DeleteObject If-Match: %s): "
                            "gc deletes its stale lock objects read again just before, unconditionally; one written "
                            "in between is deleted all the same", self.root, " ".join(str(exc).split()))
        self.fs.rm_file(path)
        return True

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
    def _next_name(self, existing: list[str]) -> str:
        seq = max((part_seq(p.rsplit("/", 1)[-1]) for p in existing), default=0) + 1
        return f"part-{seq:08d}-{os.urandom(4).hex()}.parquet"

    def write(self, table: str, dataset: str, as_of: datetime, frame: pl.DataFrame, metadata: dict[str, str], *,
              what: str, before_visible: Callable[[], None] | None = None) -> str:
        """Write `frame` (+ key-value metadata) as the new current file of (dataset, as_of), then
        delete the files it supersedes. Raises PublishError naming `what`; the previous file stays
        on any failure. Returns the new file. Local callers hold the key's lock. `before_visible` is
        called once every byte is written, right before the file becomes visible (the rename; at a URL
        the upload's completion): what it raises is raised as it is, and the new file never appears."""
        key_dir = self.key_dir(table, dataset, as_of)
        before = self._parts_in(key_dir)
        final = f"{key_dir}/{self._next_name(before)}"
        table_ = frame.to_arrow()
        table_ = table_.replace_schema_metadata({**(table_.schema.metadata or {}), **metadata})
        if self.local:
            self._write_local(Path(final), table_, what, before_visible)
        else:
            self._write_object(final, table_, what, before_visible)
        fault("after_rename")
        try:
            self._drop_superseded(key_dir, final)
        except OSError as exc:  # the new file is current (published): the old ones are only left over; it used to
            # fail the publish ('could not write' while it was written), and the task's retry found its own file
            log.warning("the files %s superseded in %s stay until the next publish of the key or flowcast gc: %s",
                        Path(final).name, key_dir, _io_error(what, exc))
        if self.local:
            with contextlib.suppress(OSError):
                _fsync_dir(Path(key_dir))
        return final

    def _write_local(self, final: Path, table: Any, what: str, before_visible: Callable[[], None] | None = None,
                     ) -> None:
        import pyarrow.parquet as pq

        part_dir = final.parent
        tmp = self.tmp_dir / f"{part_dir.parent.name}.{part_dir.name}.{final.name}.tmp"
        fd = -1
        renamed = False
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the rename: clean_temps leaves a live writer's file
            with os.fdopen(os.dup(fd), "wb") as fh:
                pq.write_table(table, fh, compression="zstd", write_page_checksum=True)
                fh.flush()
                fault("after_parquet_tmp")
                os.fsync(fh.fileno())
            fault("before_rename")
            part_dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(part_dir.parent)
            if before_visible is not None:
                before_visible()
            os.rename(tmp, final)  # a new name: nothing is replaced in place
            renamed = True
            _fsync_dir(part_dir)
            _fsync_dir(self.tmp_dir)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if renamed:  # visible, but its rename may not last (the folder's fsync failed): taken back, so
                # the previous file is current again, as the error says (it stood beside it: nothing was
                # superseded yet), and a retry (the publish task's) writes once, where it found its own file
                with contextlib.suppress(OSError):
                    final.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                if part_dir.exists() and not any(part_dir.iterdir()):
                    part_dir.rmdir()
            if isinstance(exc, FlowcastError):  # before_visible's refusal, said as it is
                raise
            if isinstance(exc, OSError):
                raise PublishError(f"could not write {what} to {part_dir}: {_io_error(what, exc)}"
                                   f"{self._room(table, exc)}; previously published forecasts are intact") from exc
            if isinstance(exc, Exception):
                raise PublishError(f"could not serialise {what}: {_io_error(what, exc)}; "
                                   "previously published forecasts are intact") from exc
            raise
        finally:
            if fd >= 0:
                os.close(fd)

    def _room(self, table: Any, exc: BaseException, needed: int | None = None) -> str:
        """` (40,960 bytes to write, 12,288 bytes free in <root>)` where `exc` is a write that found no room
        (`atomic.no_room`): the file's size (`needed`, else the table written again, in memory) and the room left in
        the store's folder, whose disk is full (an object store's: not known, `atomic.room_for`); '' for any other
        error. A backfill that stops on it names the same folder."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from flowcast.atomic import no_room, room_for

        if not no_room(exc):
            return ""
        if needed is None:
            try:
                sink = pa.BufferOutputStream()
                with pq.ParquetWriter(sink, table.schema, compression="zstd", write_page_checksum=True) as writer:
                    writer.write_table(table)  # (as `_write_local` writes it)
                needed = sink.getvalue().size
            except Exception:  # noqa: BLE001 - the size is a courtesy of the error
                needed = None
        return f" ({room_for(self.root, needed)})"

    def _write_object(self, path: str, table: Any, what: str, before_visible: Callable[[], None] | None = None,
                      ) -> None:
        import pyarrow.parquet as pq

        fh = None
        data: memoryview | None = None
        try:
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
            data = buf.getbuffer()
            fault("after_parquet_tmp")
            fh = self.fs.open(path, "wb", block_size=_UPLOAD_CHUNK)
            for i in range(0, len(data), _UPLOAD_CHUNK):
                fh.write(data[i:i + _UPLOAD_CHUNK])
                if i == 0 and len(data) > _UPLOAD_CHUNK:
                    fh.flush()  # the first part is uploaded; the object is not visible yet
                    fault("mid_upload")
            fault("before_rename")  # every byte sent, the upload not completed
            _check_leases(what)
            if before_visible is not None:
                before_visible()
            fh.close()  # completes the upload: the object appears whole
        except Exception as exc:
            # not `with`: its exit closes the file, which completes the upload of what was written so far
            # (a failed part, a refused before_visible); the upload is abandoned instead
            if fh is not None and not fh.closed:
                _abandon(fh)
            if isinstance(exc, FlowcastError):
                raise
            # a full object store (a quota, MinIO's free-space threshold) says the bytes the object needed, as a full
            # local disk does (it said the server's words alone)
            room = self._room(table, exc, None if data is None else len(data))
            raise PublishError(f"could not upload {what} to {path}: {_io_error(what, exc)}{room}; "
                               "previously published forecasts are intact") from exc

    def _mtimes(self, key_dir: str) -> dict[str, float]:
        """{part file: modification time (s)} of one key folder."""
        out: dict[str, float] = {}
        if self.local:
            for p in self._parts_in(key_dir):
                with contextlib.suppress(FileNotFoundError):
                    out[p] = os.stat(p).st_mtime
            return out
        self.fs.invalidate_cache(key_dir)
        for info in self.fs.ls(key_dir, detail=True):
            name = self._full(str(info["name"]))
            when = info.get("LastModified") or info.get("mtime") or info.get("updated")
            if is_part(name.rsplit("/", 1)[-1]) and when is not None:
                out[name] = when.timestamp() if hasattr(when, "timestamp") else float(when)
        return out

    def _drop_superseded(self, key_dir: str, newest: str) -> None:
        """Delete the files that `newest` and its predecessors superseded more than `grace_s` ago:
        a file goes once its successor is `grace_s` older than `newest` (times from the file
        system, not this machine's clock). A DuckDB query plans on a file's footer and reads its
        pages later; the grace lets every query shorter than it finish on the files it planned on."""
        times = self._mtimes(key_dir)
        if newest not in times:
            return
        for older, _, _ in expired({p: t for p, t in times.items() if p <= newest}, times[newest], self.grace_s):
            self._unlink(older)
        for older in sorted(p for p in times if p < newest):
            if not self._footer_readable(older):  # damaged (cut short outside flowcast): no query can use it,
                self._unlink(older)  # and the DuckDB views, which glob every file, failed on it until its grace ended

    def _footer_readable(self, path: str) -> bool:
        """Whether a part file's footer can be read (True when it is gone already: nothing to remove)."""
        try:
            self.num_rows(path)
        except FileNotFoundError:
            return True
        except (OSError, ValueError):  # ArrowInvalid (a ValueError: 'Parquet magic bytes not found'): damaged
            return False
        return True

    def superseded(self, table: str, now: float) -> list[tuple[str, str, float]]:
        """(file, its successor, seconds since the successor was written) of every key of `table`: the files
        a later one superseded `grace_s` or more before `now` (a time of the file system's clock), which a
        publish removes only for its own key (`_drop_superseded`); never a key's current file."""
        out: list[tuple[str, str, float]] = []
        for current in self.partitions(table).values():
            out += expired(self._mtimes(current.rsplit("/", 1)[0]), now, self.grace_s)
        return out

    def size(self, path: str) -> int:
        """Bytes of one file (FileNotFoundError when it is gone)."""
        return os.stat(path).st_size if self.local else int(self.fs.size(path))

    def delete_file(self, path: str) -> bool:
        """Delete one file of the dataset (retention: a superseded one); False when it was gone already."""
        if self.local:
            if not os.path.isfile(path):
                return False
        else:
            self.fs.invalidate_cache(path.rsplit("/", 1)[0])
            if not self.fs.exists(path):
                return False
        self._unlink(path)
        return True

    def _unlink(self, path: str) -> None:
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)

    def remove_key(self, table: str, dataset: str, as_of: datetime) -> bool:
        """Delete every file of one key and its folder (explicit deletes); True if there was one. On an object store
        nothing goes once the key's lock is lost (LockLostError: a waiter broke it and may write the key now)."""
        key_dir = self.key_dir(table, dataset, as_of)
        parts = self._parts_in(key_dir)
        if parts:
            what = "realized accuracy" if table == "realized" else table
            _check_leases(removal(f"{what} of dataset {dataset} as_of {utc_text(as_of)}"))
        for p in parts:
            self._unlink(p)
        if self.local:
            with contextlib.suppress(OSError):
                os.rmdir(key_dir)
                _fsync_dir(Path(key_dir).parent)
        return bool(parts)

    def remove_legacy(self, path: str) -> None:
        """Delete one old-layout file and its folder (after its migration; not once the lock is lost: `remove_key`)."""
        _check_leases(removal(path))
        self._unlink(path)
        if self.local:
            with contextlib.suppress(OSError):
                os.rmdir(Path(path).parent)
                _fsync_dir(Path(path).parent.parent)
