"""Atomic file writes: a temp file beside the target, fsync, rename.

Readers see the old file or the new one, never a part of either; a crash leaves at most a
dot-prefixed `.tmp` file that no reader globs, and the next atomic write into that folder
removes it: a writer holds an flock on its temp file from the moment it is created to the
rename, so a temp file whose lock is free and that has data (or is older than
`STALE_TEMP_AGE_S`) belongs to a writer that died. Every plain file flowcast writes goes through
`atomic_file` (quarantine, M3 cache, checkpoints, model metadata, plots). publish.py and
registry.py keep their own, longer sequences because they add directory fsyncs, locks and
fault-injection hooks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import polars as pl

from flowcast.errors import StorageError

# a full disk as other layers say it: polars' and Rust's ('os error 28'), a child process's log ('[Errno 28]'), and
# flowcast's own errors ('no space left on device (the disk is full)')
FULL_DISK_MARKS = ("no space left on device", "[errno 28]", "os error 28", "(the disk is full)")
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a full quota, a file-size limit (ulimit -f)
# the quota and the file-size limit as other layers say them (polars' 'Disk quota exceeded (os error 122)', a child's
# '[Errno 27] File too large'): with the full disk's words, what `no_room` reads where no errno is left to read
# an object store that is full, as s3fs passes its error code on (an OSError EIO with the server's words): MinIO's
# drives past their free-space threshold, a Ceph RGW bucket or user quota. Their code as botocore writes it, in
# parentheses: a rate limit's 'ServiceQuotaExceededException: Rate exceeded' or GCS's 'quotaExceeded (request rate)'
# is transient, not a full store (rev50b)
OBJECT_STORE_FULL_MARKS = ("(xminiostoragefull)", "(quotaexceeded)")
_NO_ROOM_MARKS = (*FULL_DISK_MARKS, *OBJECT_STORE_FULL_MARKS,
                  *(mark for code in _NO_ROOM[1:]
                    for mark in (f"[errno {code}]", f"os error {code}", os.strerror(code).lower())))


_NO_RIGHTS = (errno.EACCES, errno.EPERM, errno.EROFS)  # permission denied, not permitted, a read-only file system


def _said_by(exc: BaseException | str | None, codes: tuple[int, ...], marks: tuple[str, ...] = ()) -> bool:
    """Whether `exc` (an error, or an error it was raised from; or an error's text) has one of the errnos `codes`,
    by its errno or by its text: `[Errno N]`, Rust's `os error N`, the errno's words (`os.strerror`), or `marks`."""
    words = re.compile("|".join([*(rf"\[errno {c}\]|os error {c}\b|{re.escape(os.strerror(c).lower())}" for c in codes),
                                 *map(re.escape, marks)]))
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in codes or words.search(str(exc).lower()):
            return True
        exc = None if isinstance(exc, str) else (exc.__cause__ or exc.__context__)
    return False


def no_room(exc: BaseException | str | None) -> bool:
    """Whether `exc`, or an error it was raised from (or an error's text), is a write that found no room: a full disk
    (ENOSPC), a quota (EDQUOT) or a file-size limit (EFBIG), said by its errno or by a wrapper's text
    (`_NO_ROOM_MARKS`). Not transient: none frees itself in the seconds of a task's retries."""
    return _said_by(exc, _NO_ROOM, _NO_ROOM_MARKS)


def size_limited(exc: BaseException | str | None) -> bool:
    """Whether `exc`, or an error it was raised from (or an error's text), is a write past a file-size limit (EFBIG:
    `ulimit -f`), which no free space lifts: by errno or by its text (`[Errno 27] File too large`)."""
    return _said_by(exc, (errno.EFBIG,))


def over_quota(exc: BaseException | str | None) -> bool:
    """Whether `exc`, or an error it was raised from (or an error's text), is a write past this user's disk quota
    (EDQUOT), which the disk's own free space does not lift: by errno or by its text (`Disk quota exceeded`)."""
    return _said_by(exc, (errno.EDQUOT,))


def no_rights(exc: BaseException | str | None) -> bool:
    """Whether `exc`, or an error it was raised from (or an error's text), is a write the user may not make there:
    permission denied (EACCES), not permitted (EPERM) or a read-only file system (EROFS), by errno or by its text."""
    return _said_by(exc, _NO_RIGHTS)


def room_in(folder: str | Path) -> str:
    """How much room a folder's disk has left, as a person reads it: `N KB free in <folder>` (or why not known)."""
    room = _free(folder)
    return f"{folder}: {room}" if isinstance(room, OSError) else f"{room // 1024} KB free in {folder}"


_NEEDED = re.compile(r"([0-9][0-9,]*) bytes to write, ")


def room_for(folder: str | Path, needed: int | None = None) -> str:
    """What a write that found no room in `folder` needed and had: `40,960 bytes to write, 12,288 bytes free in
    <folder>` (`needed` unknown: the room alone), or why the room is not known (an object store's URL: none reports
    its room, where a statvfs of the URL said 'No such file or directory'). `needed_of` reads `needed` back."""
    if "://" in str(folder) and not str(folder).startswith("file://"):
        room = f"the room left in {folder} is not known (an object store does not report it)"
    else:
        free = _free(str(folder).removeprefix("file://"))
        room = (f"the room left in {folder} is not known ({free.strerror or free})" if isinstance(free, OSError)
                else f"{free:,} bytes free in {folder}")
    return f"{needed:,} bytes to write, {room}" if needed is not None else room


def needed_of(text: str | None) -> int | None:
    """The bytes a write needed, as `room_for` said them in `text` (an error's); None where it says none."""
    found = _NEEDED.search(text or "")
    return int(found.group(1).replace(",", "")) if found else None


def full_folder(text: str | None, folders: list[str | Path]) -> str | Path:
    """Which of `folders` a write that found no room (its error's `text`) was in: the first that `text` names, else
    the one with the least room left (a folder whose room cannot be read last)."""
    for folder in folders:
        if str(folder) and str(folder) in (text or ""):
            return folder

    def free(folder: str | Path) -> float:
        room = bytes_free(folder)
        return float("inf") if room is None else room

    return min(folders, key=free)


def bytes_free(folder: str | Path) -> int | None:
    """The bytes this user may still write on the disk of `folder`; None where its room cannot be read."""
    room = _free(folder)
    return None if isinstance(room, OSError) else room


def _free(folder: str | Path) -> int | OSError:
    """The bytes this user may still write on the disk of `folder` (statvfs), or the error that reading it raised:
    the one reading of `bytes_free`, `room_in` and `room_for`."""
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return exc
    return st.f_bavail * st.f_frsize


def storage_error(path: Path, exc: BaseException) -> StorageError:
    """A failed write of `path` as one sentence: the path, and 'no space left' for a full disk
    (errno ENOSPC, or polars' wrapping of it)."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        first = exc.args[0][0]  # copytree's list of (source, destination, why): the first says it
        text = " ".join(str(first[-1] if isinstance(first, tuple) else first).split())
    else:
        text = " ".join(str(exc).split())
    full = getattr(exc, "errno", None) == errno.ENOSPC or any(m in text.lower() for m in FULL_DISK_MARKS)
    why = "no space left on device (the disk is full)" if full else text
    return StorageError(f"could not write {path}: {why}; the previous file, if any, is intact")


STALE_TEMP_AGE_S = 10.0
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")


def clean_stale_temps(folder: str | Path, min_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the temp files that dead writers of `atomic_file` left in `folder` (module doc);
    returns them. A live writer's file (locked) and a file just created (empty, young) stay."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(folder) if _TEMP_NAME.match(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st = os.fstat(fd)
            if st.st_size > 0 or now - st.st_mtime > min_age_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # BlockingIOError: a live writer holds it; or it went away meanwhile
            continue
        finally:
            os.close(fd)
    return removed


def _umask() -> int:
    """The process's umask (read from /proc where it can be, without changing it; else set and restored)."""
    with suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_mode(directory: bool = False) -> int:
    """The permissions open() or mkdir() would give a new file (0666) or folder (0777) under the umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def temp_beside(path: Path) -> tuple[int, str]:
    """(fd, name) of a new temp file beside `path` (`.<name>.XXXXXXXX.tmp`), with the permissions a
    plain open() would give the file (0666 less the umask): tempfile.mkstemp makes it 0600, and the
    rename kept that, so other users of a shared home could not read a quarantine, a registry
    pointer or a model's metadata."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, plain_mode())
    except OSError:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def fsync_dir(path: str | Path) -> None:
    """fsync the folder `path`: a rename (or removal) in it lasts through a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield an open temp file beside `path`; on a clean exit it is fsynced and renamed over
    `path`, on any error it is removed and `path` keeps its old content. I/O failures (a full
    disk, polars wrapping one) become a StorageError naming the file. Temp files that dead
    writers left in the folder are removed first (`clean_stale_temps`)."""
    path = Path(path)
    tmp: str | None = None
    lock_fd = -1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path.parent)
        fd, tmp = temp_beside(path)
        lock_fd = os.dup(fd)  # the flock lives as long as one descriptor: this one, closed after the rename
        with suppress(OSError):  # a file system without flock: no lock, and no cleaner can take it either
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except (OSError, pl.exceptions.PolarsError) as exc:  # polars wraps I/O errors in a ComputeError
        raise storage_error(path, exc) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if lock_fd >= 0:
            os.close(lock_fd)


def atomic_write_parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write `frame` to `path` (creating its folder) so that `path` is never half-written."""
    with atomic_file(path) as fh:
        frame.write_parquet(fh)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    with atomic_file(dst) as fh, open(src, "rb") as source:
        shutil.copyfileobj(source, fh)
    return Path(dst)
