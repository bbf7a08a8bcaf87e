"""Files at a URL: the small fsspec layer that lets models, checkpoints and reports live in a
shared place (a local folder, file://, s3://, gs://, az://) so that workers on several machines
share one home.

    fs = FileStore("s3://bucket/flowcast/models", storage_options={"endpoint_url": ...})
    fs.write_text("versions/gru-v3/version.json", text)    # whole or not at all
    fs.put_dir(local_artifact, "versions/gru-v3/artifact")  # a folder, visible once complete
    with fs.local_dir("versions/gru-v3/artifact") as path:  # a local copy to load from
        ...

Atomicity. A file is written whole or not at all: locally through a temporary file, fsync and
rename (flowcast.atomic); on an object store with one upload, which becomes visible only when
complete. A folder (a model artifact: checkpoint + metadata) is uploaded file by file and then
a marker `_COMPLETE` is written last; `has_dir` and `get_dir` treat a folder without its marker
as absent, so a reader never loads half an artifact, and a writer killed half-way leaves a
folder that the next `put_dir` to the same place overwrites. Locally `put_dir` copies into a
temporary folder beside the target and renames it into place, as the registry does.

Locks. `lock(rel)` serialises writers of one thing (the model registry) across machines:
locally an fcntl lock on a file; on an object store an object created with an exclusive write
(S3's conditional PUT, `If-None-Match: *`) holding the writer's token, deleted on release. The
writer reads the object back after its create, refused or not: its own token there means it
holds the lock (a create retried after its first attempt landed is refused, yet that writer
holds it). It then writes a claim `rel.claims/<its id>` and lists the claims: it holds the lock
only when its claim is the only one, else it withdraws the claim and tries again. With writes
and listings strongly consistent (S3, GCS, Azure, moto) two writers can never both list
themselves alone, so the lock holds where an exclusive create is not atomic (moto checks, then
writes: under load two creates both succeed, and two registry writers took one version name)
and where two waiters break a dead holder's lock at once. A holder that died leaves its lock
object and claim: a waiter that has seen the same lock object go unwritten for `stale_after`
seconds (its own wait, monotonic, plus how long the object had gone unwritten when it first saw it:
the server's modification times, never a clock of this machine), or a rival claim for `stale_after`
seconds of its wait, deletes it and tries again, so a writer crashed while holding the lock delays
others by `stale_after` at most, from its last renewal (a lock left long ago is broken at once: the
next writer waited the whole `stale_after` all the same, revA43), it never blocks them for ever.
A live holder renews its lease (`Lease`: the lock object rewritten every `stale_after`/4 seconds),
so a publish that holds the lock longer than `stale_after` keeps it; `Lease.check` before each
guarded write fails a holder whose lock was broken all the same.

Nothing here knows what the files mean: the registry and reporting decide the layout.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flowcast.errors import ConfigError, LockLostError, StorageError, lock_lost_outcome
from flowcast.interrupts import fault_point

log = logging.getLogger(__name__)
MARKER = "_COMPLETE"
_SAY_WAIT_AFTER_S = 2.0  # a writer waiting on an object-store lock this long says whose it is (`_waiting_words`)
CLAIMS = ".claims"  # the lock `rel` at a URL: its writers' claims live under `rel`.claims/
OBJECT_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


def _fault(point: str) -> None:
    """Test-only fault injection: FLOWCAST_FAULT=fs:<point> SIGKILLs this process there
    (mid_put_dir: one file of a folder uploaded, the others and the marker not), or stops it there
    (FLOWCAST_FAULT_SIGNAL=SIGSTOP: `interrupts.fault_point`)."""
    fault_point(f"fs:{point}")


def split_url(url: str | Path) -> tuple[str, str]:
    """(protocol, path): ('file', '/abs/or/rel') for local paths and file:// URLs."""
    text = str(url)
    if "://" not in text:
        return "file", text
    protocol, rest = text.split("://", 1)
    return protocol.lower(), rest


class FileStore:
    """Files under one root, local or at an fsspec URL (see module doc)."""

    def __init__(self, root: str | Path, *, storage_options: dict[str, Any] | None = None):
        protocol, rest = split_url(root)
        if protocol in ("file", "local"):
            self.fs: Any = None
            self.root = str(Path(rest))
        elif protocol in OBJECT_PROTOCOLS:
            import fsspec

            self.fs = fsspec.filesystem(protocol, **(storage_options or {}))
            self.root = str(root).rstrip("/")
        else:
            raise ConfigError(f"{root!r}: files can live in a local folder, file://, or an object store "
                              f"({', '.join(sorted(OBJECT_PROTOCOLS))}://), not {protocol}://")

    def __repr__(self) -> str:
        return f"FileStore({self.root!r})"

    @property
    def local(self) -> bool:
        return self.fs is None

    def url(self, rel: str = "") -> str:
        """The full path or URL of `rel` (a '/'-separated path under the root)."""
        rel = rel.strip("/")
        if ".." in rel.split("/"):
            raise ConfigError(f"path {rel!r} leaves the root {self.root}")
        return f"{self.root}/{rel}" if rel else self.root

    def _fail(self, what: str, rel: str, exc: BaseException) -> StorageError:
        return StorageError(f"could not {what} {self.url(rel)}: {type(exc).__name__}: {exc}; what was there "
                            "before is intact")

    # ------------------------------------------------------------------ files
    def exists(self, rel: str) -> bool:
        if self.local:
            return os.path.exists(self.url(rel))
        self.fs.invalidate_cache()
        return bool(self.fs.exists(self.url(rel)))

    def read_bytes(self, rel: str) -> bytes:
        if self.local:
            return Path(self.url(rel)).read_bytes()
        return self.fs.cat_file(self.url(rel))

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def write_bytes(self, rel: str, data: bytes) -> str:
        """Write one file whole (temp + fsync + rename locally, one upload remotely)."""
        target = self.url(rel)
        try:
            if self.local:
                from flowcast.atomic import atomic_file

                with atomic_file(target) as fh:
                    fh.write(data)
            else:
                self.fs.pipe_file(target, bytes(data))
        except StorageError:
            raise
        except Exception as exc:
            raise self._fail("write", rel, exc) from exc
        return target

    def write_text(self, rel: str, text: str) -> str:
        return self.write_bytes(rel, text.encode())

    @contextlib.contextmanager
    def open(self, rel: str, mode: str = "rb") -> Iterator[IO[Any]]:
        """A readable file object (writing goes through write_bytes or put_file: atomic)."""
        if "r" not in mode:
            raise ValueError("FileStore.open reads; write with write_bytes, put_file or put_dir")
        if self.local:
            with open(self.url(rel), mode) as fh:
                yield fh
        else:
            with self.fs.open(self.url(rel), mode) as fh:
                yield fh

    def put_file(self, local: str | Path, rel: str) -> str:
        """Copy a local file to `rel`, whole or not at all."""
        target = self.url(rel)
        try:
            if self.local:
                from flowcast.atomic import atomic_copy

                atomic_copy(local, target)
            else:
                self.fs.put_file(str(local), target)
        except StorageError:
            raise
        except Exception as exc:
            raise self._fail("upload to", rel, exc) from exc
        return target

    def get_file(self, rel: str, local: str | Path) -> Path:
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        if self.local:
            shutil.copyfile(self.url(rel), local)
        else:
            self.fs.get_file(self.url(rel), str(local))
        return local

    def list(self, rel: str = "") -> list[str]:
        """Names directly under `rel` (files and folders), sorted; [] when it does not exist."""
        if self.local:
            try:
                return sorted(e.name for e in os.scandir(self.url(rel)))
            except FileNotFoundError:
                return []
        self.fs.invalidate_cache()
        try:
            return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.url(rel), detail=False))
        except FileNotFoundError:
            return []

    def remove(self, rel: str) -> None:
        """Delete a file or a folder (recursively); nothing when absent."""
        target = self.url(rel)
        if self.local:
            p = Path(target)
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(target, recursive=True)

    # ------------------------------------------------------------------ folders
    def has_dir(self, rel: str) -> bool:
        """True when the folder `rel` was written completely by put_dir."""
        return self.exists(f"{rel}/{MARKER}")

    def put_dir(self, local_dir: str | Path, rel: str) -> str:
        """Copy a local folder to `rel`, replacing what was there; visible (has_dir, get_dir) only
        once complete."""
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise StorageError(f"cannot copy {local_dir}: not a folder")
        target = self.url(rel)
        try:
            if self.local:
                parent = Path(target).parent
                parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{Path(target).name}.", suffix=".tmp", dir=parent))
                try:
                    shutil.copytree(local_dir, tmp, dirs_exist_ok=True)
                    (tmp / MARKER).write_text("")
                    for dirpath, _dirs, files in os.walk(tmp):
                        for f in files:
                            with open(os.path.join(dirpath, f), "rb") as fh:
                                os.fsync(fh.fileno())
                    old = None
                    if Path(target).exists():
                        old = Path(tempfile.mkdtemp(prefix=f".{Path(target).name}.", suffix=".old", dir=parent))
                        os.rename(target, old / "x")
                    os.rename(tmp, target)
                    if old is not None:
                        shutil.rmtree(old, ignore_errors=True)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            else:
                self.remove(f"{rel}/{MARKER}")  # what is there is incomplete from now on
                self.remove(rel)
                for i, path in enumerate(p for p in sorted(local_dir.rglob("*")) if p.is_file()):
                    if i == 1:
                        _fault("mid_put_dir")
                    self.fs.put_file(str(path), f"{target}/{path.relative_to(local_dir).as_posix()}")
                self.fs.pipe_file(f"{target}/{MARKER}", b"")
        except StorageError:
            raise
        except Exception as exc:
            raise self._fail("upload a folder to", rel, exc) from exc
        return target

    def get_dir(self, rel: str, local_dir: str | Path) -> Path:
        """Copy the complete folder `rel` to a local folder (StorageError when incomplete or absent)."""
        if not self.has_dir(rel):
            raise StorageError(f"{self.url(rel)} is absent or incomplete (no {MARKER} marker): it was never written "
                               "whole")
        local_dir = Path(local_dir)
        local_dir.mkdir(parents=True, exist_ok=True)
        if self.local:
            shutil.copytree(self.url(rel), local_dir, dirs_exist_ok=True)
        else:
            protocol = self.root.split("://", 1)[0]
            prefix = self.url(rel).split("://", 1)[1].rstrip("/") + "/"
            for path in self.fs.find(self.url(rel)):
                name = str(path).split("://", 1)[-1]
                dest = local_dir / name.removeprefix(prefix)
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{protocol}://{name}", str(dest))
        (local_dir / MARKER).unlink(missing_ok=True)
        return local_dir

    @contextlib.contextmanager
    def local_dir(self, rel: str) -> Iterator[Path]:
        """A local path to the complete folder `rel`: the folder itself on a local root, else a
        temporary copy removed afterwards."""
        if self.local:
            if not self.has_dir(rel) and not Path(self.url(rel)).is_dir():
                raise StorageError(f"{self.url(rel)} does not exist")
            yield Path(self.url(rel))
            return
        tmp = Path(tempfile.mkdtemp(prefix="flowcast-fs-"))
        try:
            yield self.get_dir(rel, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------ locks
    @contextlib.contextmanager
    def lock(self, rel: str, *, timeout: float = 600.0, stale_after: float = 600.0,
             poll: float = 0.2) -> Iterator[Lease | None]:
        """Hold the lock `rel` (see module doc); StorageError naming it after `timeout` seconds
        (on an object store never before a dead holder's lock could be broken). On an object store
        it yields the holder's `Lease` (renewed while held; `check` before each write), locally None."""
        deadline = time.monotonic() + (timeout if self.local else max(timeout, stale_after + 5 * poll))
        if self.local:
            path = Path(self.url(rel))
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+") as fh:
                while True:
                    try:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StorageError(f"{path} stayed locked by another writer for {timeout:g}s") from None
                        time.sleep(poll)
                try:
                    yield None
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return
        ident = uuid.uuid4().hex
        token = f"{ident} {os.uname().nodename} {os.getpid()}".encode()
        target = self.url(rel)
        claims = f"{rel}{CLAIMS}"
        mine = f"{claims}/{ident}"
        seen: tuple[bytes, float] | None = None  # (holder's token, when this waiter first saw it)
        waited: dict[bytes, float] = {}  # holder's id -> when this waiter first saw it, renewed or not
        said: set[bytes] = set()  # the holders whose lock this waiter said it waits on (`_waiting_words`)
        others: dict[str, float] = {}  # claim -> when this waiter first saw it
        try:
            while True:
                holder = self._create_lock_object(rel, token)
                if holder is None:  # released meanwhile, or a rival's create is in flight
                    if time.monotonic() > deadline:
                        raise StorageError(f"{target} could not be created for {timeout:g}s")
                    time.sleep(min(poll, 0.05))
                    continue
                try:
                    if holder == token and self._alone(rel, mine, others, stale_after):
                        break
                except Exception as exc:
                    raise self._fail("lock", rel, exc) from exc
                now = time.monotonic()
                if holder != token:
                    if now - waited.setdefault(_ident(holder), now) >= _SAY_WAIT_AFTER_S and _ident(holder) not in said:
                        said.add(_ident(holder))  # once per holder, its renewals or not
                        log.warning("%s", _waiting_words(target, holder, stale_after))
                    if seen is None or seen[0] != holder:  # unchanged since before this waiter saw it: that counts
                        seen = (holder, now - self._unchanged_for(rel, ident))
                    if now - seen[1] > stale_after:
                        log.warning("breaking the lock %s held by %s for over %gs (a writer that died)", target,
                                    holder.decode(errors="replace"), stale_after)
                        with contextlib.suppress(FileNotFoundError):
                            self.fs.rm_file(target)
                        with contextlib.suppress(FileNotFoundError):
                            self.fs.rm_file(self.url(f"{claims}/{holder.split(b' ', 1)[0].decode(errors='replace')}"))
                        seen = None
                        continue
                if now > deadline:
                    who = holder.decode(errors="replace") if holder != token else \
                        f"writers whose claims stay under {self.url(claims)}"
                    raise StorageError(f"{target} stayed locked by {who} for {timeout:g}s")
                time.sleep(poll)
        except BaseException:  # not acquired: leave nothing of this writer's behind
            with contextlib.suppress(Exception):
                if self.fs.cat_file(target) == token:
                    self.fs.rm_file(target)
            with contextlib.suppress(Exception):
                self.fs.rm_file(self.url(mine))
            raise
        lease = Lease(self, rel, token, stale_after)
        try:
            yield lease
        finally:
            lease.stop()
            with contextlib.suppress(FileNotFoundError):
                if _ident(self.fs.cat_file(target)) == _ident(token):  # not broken and retaken meanwhile
                    self.fs.rm_file(target)
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.url(mine))

    def _unchanged_for(self, rel: str, ident: str) -> float:
        """Seconds the object `rel` has gone unwritten, both times the server's (its modification time, and that of a
        probe `rel`.now/`ident` this writer writes and removes), less 1 s (whole seconds on some servers, S3's
        LastModified): a waiter counted only its own wait, so a lock object a writer killed long ago left (yesterday's
        run) cost the next writer the whole `stale_after` all the same. 0 where the store cannot say."""
        try:
            now = self.server_time(f"{rel}.now/{ident}")
            return max(0.0, (now - self.fs.modified(self.url(rel))).total_seconds() - 1)
        except Exception as exc:  # noqa: BLE001 - e.g. released meanwhile, no modification time: its wait counts alone
            log.debug("could not tell when the lock %s was last written: %s", self.url(rel), exc)
            return 0.0

    def server_time(self, probe: str) -> datetime:
        """The object store's time now: the modification time of an empty object `probe` written and removed (no
        clock of this machine; to compare with the modification times of other objects of the store)."""
        target = self.url(probe)
        self.fs.pipe_file(target, b"")
        try:
            self.fs.invalidate_cache()
            return self.fs.modified(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(target)

    def _create_lock_object(self, rel: str, token: bytes) -> bytes | None:
        """Create the lock object `rel` holding `token` with an exclusive write (If-None-Match: *);
        then, whether the write succeeded or was refused, read back who holds it (None: nobody, it
        was released meanwhile). Reading back finds this writer's own token when a create was
        retried after its first attempt had landed (the retry is refused: the object exists), and
        another writer's where a store's exclusive write is not atomic (moto checks, then writes:
        two creates can both succeed, the later one's token stays)."""
        target = self.url(rel)
        try:
            self.fs.pipe_file(target, token, mode="create")
        except TypeError as exc:  # a file system without exclusive create
            raise ConfigError(f"{self.root}: {type(self.fs).__name__} cannot create a file exclusively "
                              f"(needed for the lock {rel}): {exc}") from exc
        except Exception as exc:
            if not _refused_create(exc):
                raise self._fail("lock", rel, exc) from exc
        try:
            return bytes(self.fs.cat_file(target))
        except FileNotFoundError:
            return None

    def _alone(self, rel: str, mine: str, others: dict[str, float], stale_after: float) -> bool:
        """Called while the lock object holds this writer's token: write this writer's claim beside
        it and list the claims; the lock is held only when this claim is the only one. On a store
        where writes and listings are strongly consistent (S3, GCS, Azure, moto) two writers can
        never both see themselves alone: whichever lists second sees the other's claim. So the lock
        holds even where the exclusive create is not atomic, or where two waiters broke a dead
        holder's lock at once. A writer that is not alone withdraws its claim and tries again; a
        claim seen for over `stale_after` seconds is a dead writer's and removed."""
        claims = mine.rsplit("/", 1)[0]
        self.fs.pipe_file(self.url(mine), b"")
        names = [f"{claims}/{n}" for n in self.list(claims)]
        rivals = [n for n in names if n != mine]
        if not rivals:
            return True
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.url(mine))
        now = time.monotonic()
        for name in rivals:
            first = others.setdefault(name, now)
            if now - first > stale_after:
                log.warning("removing the claim %s on the lock %s: seen for over %gs (a writer that died)",
                            self.url(name), self.url(rel), stale_after)
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(self.url(name))
                del others[name]
        return False


def _waiting_words(target: str, holder: bytes, stale_after: float) -> str:
    """What a writer waiting on the lock object `target` says: whose it is (its token: id, host, pid) and how the wait
    ends. A writer killed while holding it (kill -9, a lost machine) left it, and the next writer of it (a re-run of
    the killed run) waited out `stale_after` (store.lock_timeout, 600 s) without a word."""
    ident, host, pid = (holder.decode(errors="replace").split(" ") + ["?", "?"])[:3]
    return (f"waiting for the lock {target}, held by {ident} (host {host}, pid {pid}): another writer holds it, or one "
            f"that was killed left it, which is broken once it has gone {stale_after:g}s without a renewal "
            f"(store.lock_timeout); if no flowcast process {pid} runs on {host}, remove {target} to go on now")


def _ident(token: bytes) -> bytes:
    """The writer's id that a lock object's content starts with (its token, then a renewal count)."""
    return bytes(token).split(b" ", 1)[0]


class Lease:
    """A held object-store lock kept alive. A waiter breaks a lock whose object it has seen unchanged
    for `stale_after` seconds (a dead writer's), so a holder that simply held it longer (a registry
    write or a publish under `ModelRegistry.publishing` that outlasts the lease) lost it without a
    word and a second writer went in beside it. A thread rewrites the lock object every
    `stale_after`/4 seconds (its token and a renewal count: new content, which restarts every waiter's
    count) while this holder holds it; it stops when the object is no longer this holder's (broken
    meanwhile). `check` raises StorageError when the lease is lost or was last renewed more than
    `stale_after`/2 ago (renewals failing, or this process stopped): call it before each write the
    lock guards, so a holder that lost its lock fails instead of writing unguarded."""

    def __init__(self, files: FileStore, rel: str, token: bytes, stale_after: float):
        self.files, self.rel, self.token, self.stale_after = files, rel, token, stale_after
        self.renewed = time.monotonic()  # before the last write of the object that landed
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"flowcast lease {files.url(rel)}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        target = self.files.url(self.rel)
        beat = 0
        while not self._stop.wait(self.stale_after / 4):
            started = time.monotonic()
            try:
                holder = bytes(self.files.fs.cat_file(target))
            except FileNotFoundError:
                holder = b""
            except Exception as exc:  # noqa: BLE001 - a transient error: the next beat tries again, `check` times out
                log.warning("could not renew the lock %s: %s", target, exc)
                continue
            if _ident(holder) != _ident(self.token):
                self.lost = (f"it is now held by {holder.decode(errors='replace')}" if holder else
                             "its object was removed")
                return
            beat += 1
            try:
                self.files.fs.pipe_file(target, self.token + f" {beat}".encode())
            except Exception as exc:  # noqa: BLE001 - as above
                log.warning("could not renew the lock %s: %s", target, exc)
                continue
            self.renewed = started

    def check(self, what: str) -> None:
        """StorageError when this holder may no longer hold the lock (the object is not its own, or
        its lease is about to run out): `what` is not written."""
        age = time.monotonic() - self.renewed
        why = self.lost or (f"its lease was last renewed {age:.0f}s ago (a waiter breaks it after "
                            f"{self.stale_after:g}s)" if age > self.stale_after / 2 else None)
        if why is None:
            try:
                holder = bytes(self.files.fs.cat_file(self.files.url(self.rel)))
            except FileNotFoundError:
                holder = b""
            except Exception as exc:
                raise self.files._fail("lock", self.rel, exc) from exc
            if _ident(holder) != _ident(self.token):
                why = (f"it is now held by {holder.decode(errors='replace')}" if holder else
                       "its object was removed")
        if why:
            raise LockLostError(f"lost the lock {self.files.url(self.rel)} ({why}): {lock_lost_outcome(what)}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _refused_create(exc: BaseException) -> bool:
    """An exclusive create refused because the object exists or another conditional write to it is
    in flight: S3's 412 PreconditionFailed (s3fs makes it FileExistsError when the answer names the
    If-None-Match condition, an OSError otherwise) or 409 ConditionalRequestConflict."""
    return isinstance(exc, FileExistsError) or refused_condition(exc)


def refused_condition(exc: BaseException) -> bool:
    """A conditional request refused: S3's 412 PreconditionFailed (the object is not the one the condition names) or
    409 ConditionalRequestConflict (another conditional write to it is in flight), read from the botocore answer s3fs
    keeps as the cause of the error it raises."""
    cause = exc.__cause__
    answer = getattr(cause, "response", None)
    if not isinstance(answer, dict):
        return False
    code = str(answer.get("Error", {}).get("Code", ""))
    status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409") or status in (409, 412)


def unsupported_condition(exc: BaseException) -> bool:
    """A conditional request's header refused itself, not its condition: an S3-compatible server without the
    condition answers 501 NotImplemented or 400 InvalidArgument / InvalidRequest where S3 answers 412 or 409
    (`refused_condition`), read from the botocore answer s3fs keeps as the cause of the error it raises; or botocore
    refused the parameter before sending it (ParamValidationError, which s3fs raises as it is). A 400 is such a refusal
    by its code alone (or an answer without a body, whose code botocore sets to '400'): a 400 of another code
    (RequestTimeout, ExpiredToken) turned the store's conditional deletes off and deleted unconditionally (revB44)."""
    try:
        from botocore.exceptions import ParamValidationError
    except ImportError:  # no botocore: no s3fs, no S3 request
        return False
    if isinstance(exc, ParamValidationError):
        return True
    answer = getattr(exc.__cause__, "response", None)
    if not isinstance(answer, dict) or refused_condition(exc):
        return False
    code = str(answer.get("Error", {}).get("Code", ""))
    status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("NotImplemented", "InvalidArgument", "InvalidRequest", "400", "501") or status == 501
