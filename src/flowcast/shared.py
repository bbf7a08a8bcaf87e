"""The shared home: what a run writes that another machine must read.

With `shared` unset everything lives under `home` (one machine, the embedded default). With
`shared = "s3://bucket/flowcast"` (or gs://, az://, file://, a folder on a shared file system),
workers on several machines share one home:

    shared/models/      the model registry (flowcast.registry, versions + production pointers)
    shared/warehouse/   the forecast store's Parquet dataset (unless store.url names another store)
    shared/reports/     forecast and accuracy plots
    shared/quarantine/  quarantined rows with their reasons, per source and as_of
    shared/accuracy/    the realized-accuracy verdict of each dataset
    shared/runs/jobs/   training jobs posted for the other nodes of a multi-node training

`home` stays this machine's folder: the preprocessing cache (a miss on another machine
recomputes), the flows' training run folders (checkpoints while a model trains; the finished
model is registered into shared/models) and local copies of registered versions
(home/models-cache). `flowcast train` copies its run's checkpoints to the same place under
`shared` as it goes (`mirror_of`), so `flowcast train --resume` continues on any machine.

Files are written locally under home first (the code that draws a plot or writes quarantine
rows needs a path), then copied whole to the same place under `shared` (`share_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flowcast.registry import ModelRegistry
from flowcast.store.fs import FileStore

if TYPE_CHECKING:
    from flowcast.config import Settings


def open_registry(settings: Settings) -> ModelRegistry:
    """The model registry of `settings`: shared/models when `shared` is set, else home/models."""
    return ModelRegistry(settings.models_location, storage_options=settings.shared_options,
                         cache_dir=settings.home / "models-cache", lock_timeout=settings.store.lock_timeout)


def shared_files(settings: Settings) -> FileStore | None:
    """The shared home as files (None when `shared` is unset: everything is under home)."""
    if settings.shared is None:
        return None
    return FileStore(settings.shared, storage_options=settings.shared_options)


def _rel(settings: Settings, local: Path) -> str:
    try:
        return Path(local).resolve().relative_to(Path(settings.home).resolve()).as_posix()
    except ValueError as exc:
        raise ValueError(f"{local} is not under home {settings.home}: it has no place in the shared home") from exc


def share_file(settings: Settings, local: Path) -> str:
    """Copy `local` (a file under home) whole to the same place under `shared`; its path or URL
    there. Without `shared`, the file is already where everyone reads it: its own path."""
    files = shared_files(settings)
    if files is None:
        return str(local)
    return files.put_file(local, _rel(settings, local))


def mirror_of(settings: Settings, local: Path) -> str | None:
    """The place under `shared` of a folder under home (None without `shared`): where a training
    run's checkpoints are copied so that another machine can resume it."""
    if settings.shared is None:
        return None
    return settings.shared_path(_rel(settings, local))


def unshare(settings: Settings, local: Path) -> None:
    """Remove the shared copy of `local` (a file under home that a clean re-run removed)."""
    files = shared_files(settings)
    if files is not None:
        files.remove(_rel(settings, local))


def share_folder(settings: Settings, local: Path) -> str:
    """Mirror the files of a folder under home to the same place under `shared` (each file whole;
    the shared copy of a folder that no longer exists locally is removed)."""
    files = shared_files(settings)
    if files is None:
        return str(local)
    rel = _rel(settings, local)
    if not Path(local).is_dir():
        files.remove(rel)
        return files.url(rel)
    for path in sorted(Path(local).rglob("*")):
        if path.is_file():
            files.put_file(path, f"{rel}/{path.relative_to(local).as_posix()}")
    return files.url(rel)


def pull_file(settings: Settings, local: Path) -> Path:
    """Make the file `local` under home the shared copy of it (removed when the shared home has
    none); without `shared`, nothing to do."""
    files = shared_files(settings)
    if files is None:
        return local
    rel = _rel(settings, local)
    if files.exists(rel):
        from flowcast.atomic import atomic_file

        with atomic_file(local) as fh:
            fh.write(files.read_bytes(rel))
    else:
        Path(local).unlink(missing_ok=True)
    return local


def jobs_location(settings: Settings) -> str:
    """Where node 0 posts training jobs for the other nodes (distributed.jobs_dir, else
    shared/runs/jobs, else home/runs/jobs)."""
    return settings.distributed.jobs_dir or settings.shared_path("runs/jobs")
