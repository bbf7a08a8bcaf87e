"""The versioned model registry and the production pointer.

Layout under `root` (settings.models_dir):

    versions/<name>-v<seq>/artifact/...   an immutable copy of the trained artifact (files read-only)
    versions/<name>-v<seq>/version.json   name, config, data fingerprint, metrics, as_of, created_at
    production.json                       {"stack": [versions promoted, newest last], "events": [...]}
    .lock                                 fcntl lock serialising writers of this registry

A version is registered by copying into a dot-prefixed temporary directory, fsyncing and
renaming it into place, so a half-written version is never listed. Registering never moves
the production pointer. `promote` and `rollback` rewrite production.json atomically (temp
file, fsync, rename, fsync of the directory): a crash before the rename leaves the previous
champion in production, a crash after it leaves the new one, never a torn pointer.
`rollback` pops the newest promotion off the stack. Nothing here reads the clock: times are
passed in.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcast.errors import RegistryError

_VERSION_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*)-v(?P<seq>\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _fault(point: str) -> None:
    """Test-only fault injection: FLOWCAST_FAULT=registry:<point> SIGKILLs this process there."""
    if os.environ.get("FLOWCAST_FAULT") == f"registry:{point}":
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        _fault("before_pointer_rename")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


@dataclass
class ModelVersion:
    version: str
    name: str
    path: Path  # the artifact directory
    config: dict
    fingerprint: dict
    metrics: dict
    as_of: str | None
    created_at: str
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "path": str(self.path),
            "config": self.config,
            "fingerprint": self.fingerprint,
            "metrics": self.metrics,
            "as_of": self.as_of,
            "created_at": self.created_at,
            "seq": self.seq,
        }


class ModelRegistry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.pointer_path = self.root / "production.json"

    # ------------------------------------------------------------------ internals
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _pointer(self) -> dict[str, Any]:
        if not self.pointer_path.exists():
            return {"stack": [], "events": []}
        try:
            data = json.loads(self.pointer_path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("stack"), list):
                raise ValueError("no 'stack' list")  # noqa: TRY004  (reported as RegistryError below)
            data.setdefault("events", [])
            return data
        except (ValueError, OSError) as exc:
            raise RegistryError(f"corrupt production pointer {self.pointer_path}: {exc}") from exc

    def _read_version(self, vdir: Path) -> ModelVersion:
        meta_path = vdir / "version.json"
        try:
            meta = json.loads(meta_path.read_text())
            return ModelVersion(
                version=meta["version"], name=meta["name"], path=vdir / "artifact", config=meta.get("config", {}),
                fingerprint=meta.get("fingerprint", {}), metrics=meta.get("metrics", {}), as_of=meta.get("as_of"),
                created_at=meta["created_at"], seq=int(meta.get("seq", 0)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"corrupt registry entry {meta_path}: {exc}") from exc

    def _next_seq(self) -> int:
        """One more than any version ever seen: on disk or named in the promotion history (so a
        version deleted by hand never has its name reused for a different model)."""
        names = [d.name for d in self.versions_dir.iterdir()] if self.versions_dir.exists() else []
        with contextlib.suppress(RegistryError):
            ptr = self._pointer()
            names += [str(v) for v in ptr["stack"]]
            names += [str(e.get(k)) for e in ptr["events"] for k in ("version", "previous") if e.get(k)]
        seqs = [0]
        for n in names:
            m = _VERSION_RE.match(n)
            if m and not n.startswith("."):
                seqs.append(int(m.group("seq")))
        return max(seqs) + 1

    def _clean_stale_temps(self) -> None:
        """Called under the lock: any temporary directory left is from a writer that died."""
        if self.versions_dir.exists():
            for d in self.versions_dir.iterdir():
                if d.name.startswith(".tmp-"):
                    _make_writable(d)
                    shutil.rmtree(d, ignore_errors=True)

    # ------------------------------------------------------------------ API
    def register(
        self,
        artifact_dir: Path,
        *,
        name: str,
        config: dict,
        fingerprint: dict,
        metrics: dict,
        as_of: datetime | None,
        created_at: datetime,
    ) -> ModelVersion:
        """Copy `artifact_dir` into a new immutable version `<name>-v<seq>`; production is untouched."""
        artifact_dir = Path(artifact_dir)
        if not artifact_dir.is_dir():
            raise RegistryError(f"artifact directory not found: {artifact_dir}")
        if not _NAME_RE.match(name):
            raise RegistryError(f"model name {name!r} may only contain letters, digits, '.', '_' and '-'")
        with self._lock():
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            self._clean_stale_temps()
            seq = self._next_seq()
            version = f"{name}-v{seq}"
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.versions_dir))
            try:
                shutil.copytree(artifact_dir, tmp / "artifact")
                meta = {
                    "version": version, "name": name, "seq": seq, "config": config, "fingerprint": fingerprint,
                    "metrics": metrics, "as_of": _iso(as_of), "created_at": _iso(created_at),
                }
                (tmp / "version.json").write_text(json.dumps(meta, indent=2, default=str))
                _fsync_tree(tmp)
                _make_readonly(tmp)
                _fault("before_version_rename")
                os.rename(tmp, self.versions_dir / version)
                _fsync_dir(self.versions_dir)
            except BaseException:
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return self.get(version)

    def get(self, version: str) -> ModelVersion:
        vdir = self.versions_dir / version
        if version.startswith(".") or "/" in version or not (vdir / "version.json").exists():
            known = [v.version for v in self.list()]
            hint = f"; known: {known[-10:]}" if known else "; the registry is empty"
            raise RegistryError(f"unknown model version {version!r}{hint}")
        return self._read_version(vdir)

    def list(self, name: str | None = None) -> list[ModelVersion]:
        """Registered versions, oldest first (optionally only those of model `name`)."""
        if not self.versions_dir.exists():
            return []
        out = [
            self._read_version(d)
            for d in self.versions_dir.iterdir()
            if not d.name.startswith(".") and (d / "version.json").exists()
        ]
        if name is not None:
            out = [v for v in out if v.name == name]
        return sorted(out, key=lambda v: (v.seq, v.version))

    def production(self) -> ModelVersion | None:
        """The production version; RegistryError when the pointer names a version that is gone."""
        stack = self._pointer()["stack"]
        if not stack:
            return None
        version = stack[-1]
        if not (self.versions_dir / version / "version.json").exists():
            raise RegistryError(
                f"unknown model version {version!r} in the production pointer {self.pointer_path}: it is missing "
                f"from {self.versions_dir} (deleted by hand?); `flowcast models rollback` or "
                "`flowcast models promote VERSION` puts an existing version in production"
            )
        return self.get(version)

    def history(self) -> list[dict[str, Any]]:
        """Promotions and rollbacks, oldest first: {action, version, previous, reason, at}."""
        return list(self._pointer()["events"])

    def promote(self, version: str, *, reason: str = "", at: datetime | None = None) -> ModelVersion:
        """Make `version` the production model (atomic pointer swap)."""
        with self._lock():
            mv = self.get(version)
            ptr = self._pointer()
            previous = ptr["stack"][-1] if ptr["stack"] else None
            if previous != version:
                ptr["stack"].append(version)
            ptr["events"].append(
                {"action": "promote", "version": version, "previous": previous, "reason": reason, "at": _iso(at)}
            )
            _write_json_atomic(self.pointer_path, ptr)
        return mv

    def rollback(self, *, reason: str = "", at: datetime | None = None) -> ModelVersion:
        """Put the previous production version back; RegistryError when there is none."""
        with self._lock():
            ptr = self._pointer()
            if len(ptr["stack"]) < 2:
                current = ptr["stack"][-1] if ptr["stack"] else None
                raise RegistryError(
                    f"nothing to roll back to: production is {current or 'empty'} and there is no earlier promotion"
                )
            current = ptr["stack"].pop()
            target = ptr["stack"][-1]
            mv = self.get(target)
            ptr["events"].append(
                {"action": "rollback", "version": target, "previous": current, "reason": reason, "at": _iso(at)}
            )
            _write_json_atomic(self.pointer_path, ptr)
        return mv


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def _make_readonly(root: Path) -> None:
    """Files of a registered version are read-only (directories stay writable so it can be deleted)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) & ~0o222)


def _make_writable(root: Path) -> None:
    if not root.exists():
        return
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with contextlib.suppress(OSError):
                os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) | 0o200)
