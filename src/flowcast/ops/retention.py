"""Retention: what `flowcast gc` removes from a home, by the policy in `[retention]`.

| kind        | where                                         | goes when                                    |
| ----------- | --------------------------------------------- | -------------------------------------------- |
| model       | models/versions/<version>                     | beyond the newest `keep_versions` of its dataset |
| model       | models/versions/.tmp-deleted-<v>, .tmp-<id>   | always: what a gc or a registration stopped midway left (`ModelRegistry.leftovers`) |
| run         | runs/<run>, models/runs/<run> (checkpoints)   | last written more than `runs_days` ago       |
| cache       | cache/prefect/<key> + cache/results/<key> (+ cache/digests/<key>) | written more than `cache_days` ago           |
| quarantine  | quarantine/<source>/<as_of>/                  | written more than `quarantine_days` ago      |
| report      | reports/*.png|svg|jpg|html                    | written more than `reports_days` ago         |
| superseded  | warehouse/<table>/dataset=*/as_of=*/part-*    | a key's older Parquet file, superseded more than `store.superseded_grace_s` ago (the store's files wherever they are: home, shared, store.url folder or object store) |
| forecast    | the store's (dataset, as_of) before a date    | only when asked (`forecasts_before`), with their realized rows and publish record |
| record      | published/<dataset>/<as_of>.json before a date (and its shared home copy) | only when asked (`forecasts_before`): a publish record whose key holds nothing (a gc killed between its delete and the record's removal left it) |

Models go last (`execute`): a version whose removal rewrites the pointer cannot on a full disk, and the rest frees
room first. Never removed: a dataset's production model, its predecessor (what a rollback puts back), a
recorded champion, a version a running run chose to forecast with (its pin, `ModelRegistry.pins`)
and a version that made forecasts still published (each publish names its model
version; those `forecasts_before` removes in the same plan do not count) (those only when named
with `versions=`, and a production model never; `plan_and_kept` says which stayed and why), the
registry's pointer, and published forecasts and the realized-accuracy table unless asked for
explicitly (`forecasts_before`: every as_of of a dataset, or of all, before that date; through the
store's own `delete`, so any backend). Ages are measured from `now`, which the caller passes (the command line reads the
clock, nothing here does), against the newest modification time inside each item, so a run
folder still being written to is young. `plan` only looks; `execute` removes what a plan lists,
re-checking each model under the registry's lock (production may have moved since).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowcast.config import RetentionConfig, Settings
from flowcast.errors import ConfigError, DamagedPublishError, FlowcastError, RegistryError, StorageError
from flowcast.timekeys import utc_text
from flowcast.wording import plural

if TYPE_CHECKING:
    from flowcast.registry import ModelRegistry

REPORT_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".html")
KINDS = ("model", "run", "cache", "quarantine", "report", "superseded", "forecast", "record")


@dataclass
class Item:
    kind: str
    path: Path
    bytes: int
    age_days: float | None
    reason: str
    version: str | None = None
    key: tuple[str, datetime] | None = None  # (dataset, as_of) of a published forecast
    url: str | None = None  # a superseded file of a store at an object-store URL: removed through its file system

    def to_dict(self, home: Path | None = None) -> dict[str, Any]:
        try:
            shown = self.url or (str(self.path.relative_to(home)) if home else str(self.path))
        except ValueError:
            shown = str(self.path)
        return {"kind": self.kind, "path": shown, "bytes": self.bytes,
                "age_days": None if self.age_days is None else round(self.age_days, 2), "reason": self.reason,
                "version": self.version}


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def _walk(path: Path) -> tuple[int, float]:
    """(bytes, newest mtime) of a file or a folder tree (symlinks not followed)."""
    if path.is_symlink() or path.is_file():
        st = path.lstat()
        return st.st_size, st.st_mtime
    total, newest = 0, path.lstat().st_mtime
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            total += st.st_size
            newest = max(newest, st.st_mtime)
    return total, newest


def _age_days(mtime: float, now: datetime) -> float:
    return (now - datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)).total_seconds() / 86400


def _old(paths: Iterable[Path], kind: str, days: float, now: datetime, what: str) -> list[Item]:
    out = []
    for p in sorted(paths):
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            continue  # a file being written atomically right now
        size, newest = _walk(p)
        age = _age_days(newest, now)
        if age > days:
            out.append(Item(kind, p, size, age, f"{what} last written {age:.1f} days ago (> {days:g})"))
    return out


class PublishIndex:
    """The receipt each published (dataset, as_of) holds, each read once per gc: a gc checks every
    version it removes against the publishes as they are then (`execute`), and read every receipt of the store again
    for each (versions x keys reads, each a Parquet footer: a request on an object store); the plan's forecast items
    read the receipts of the keys they delete (their rows) through it too, where they read them a second time.
    `versions` lists the keys with a token of the publish each holds (`ForecastStore.current_publishes`, one
    listing) and reads the receipt of a key only when it holds a publish not read before (the first call; a key
    published again since)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._store: Any = None
        self._tokens: dict[tuple[str, datetime], str] | None = None  # the last listing
        self._read: dict[tuple[str, datetime], tuple[str, dict[str, str] | None, Exception | None]] = {}  # key ->
        # (token, receipt, the error its read raised: a receipt that could not be read)

    def _list(self) -> dict[tuple[str, datetime], str]:
        """One listing of the published keys; what was read of a key gone or published again since is read anew."""
        from flowcast.store import open_store

        self._store = self._store or open_store(self.settings)
        self._tokens = self._store.current_publishes()
        self._read = {k: v for k, v in self._read.items() if self._tokens.get(k) == v[0]}
        return self._tokens

    def _entry(self, key: tuple[str, datetime], token: str) -> tuple[str, dict[str, str] | None, Exception | None]:
        """The receipt of `key` (listed with `token`), read unless read already."""
        if key not in self._read:
            try:
                self._read[key] = (token, self._store.receipt_of(*key), None)
            except (FlowcastError, OSError, ValueError) as exc:  # a damaged partition: its forecasts do not read either
                self._read[key] = (token, None, exc)
        return self._read[key]

    def receipt(self, dataset: str, as_of: datetime) -> dict[str, str]:
        """The receipt of the publish `(dataset, as_of)` holds, as `ForecastStore.receipt_of` gives it (its error
        raised again where it could not be read), read once for the plan and every `versions` after it."""
        key = (dataset, as_of)
        if self._tokens is None or key not in self._tokens:
            self._list()
        assert self._tokens is not None
        if key not in self._tokens:  # not published (removed since it was listed): the store says so
            return self._store.receipt_of(dataset, as_of)
        _, receipt, exc = self._entry(key, self._tokens[key])
        if exc is not None:
            raise exc
        assert receipt is not None
        return receipt

    def versions(self, removed: set[tuple[str, datetime]]) -> tuple[dict[str, str], list[str]]:
        """version -> why it stays: it made forecasts that stay published (every (dataset, as_of) of the store now
        but those in `removed`); and a sentence for each publish whose receipt could not be read."""
        for key, token in self._list().items():
            self._entry(key, token)
        named: dict[str, list[tuple[str, datetime]]] = {}
        unread: list[str] = []
        for (ds, a), (_, receipt, exc) in sorted(self._read.items()):
            if (ds, a) in removed:
                continue
            if exc is not None:
                unread.append(f"the publish of {ds} as_of {utc_text(a)} could not be read ({exc}): the model version "
                              "it names is not known, so it protects none")
            elif version := (receipt or {}).get("model_version"):
                named.setdefault(version, []).append((ds, a))
        said = {}
        for version, keys in named.items():
            ds, newest = max(keys, key=lambda k: k[1])
            more = f" (and {plural(len(keys) - 1, 'earlier as_of')})" if len(keys) > 1 else ""
            said[version] = f"it made the published forecasts of {ds} as_of {utc_text(newest)}{more}"
        return said, unread


def _model_items(settings: Settings, policy: RetentionConfig, versions: list[str],
                 removed: set[tuple[str, datetime]] | None = None, kept_out: list[Item] | None = None,
                 now: datetime | None = None, published_index: PublishIndex | None = None) -> list[Item]:
    from flowcast.shared import open_registry

    reg = open_registry(settings)
    all_versions = reg.list()
    damaged = reg.damaged() if versions else {}
    known = {v.version for v in all_versions} | set(damaged)
    # named by a gc that removed it and was stopped before it said so, and run again: done, not a typo
    gone = [v for v in versions if v not in known and reg.removed_before(v)]
    leftovers = reg.leftovers() if gone else []
    if gone and kept_out is not None:
        kept_out += [Item("note", Path(reg.versions_dir) / v, 0, None,
                          f"{v} was removed already (no registered version carries its number; an earlier gc "
                          "removed it): " + ("the rest of its files, which that gc was stopped before removing, go now"
                                             if {f".tmp-deleted-{v}", v} & set(leftovers) else "nothing to do"))
                     for v in gone]
    versions = [v for v in versions if v not in gone]
    if unknown := [v for v in versions if v not in known]:
        raise ConfigError(f"--version names versions that are not registered: {unknown} "
                          f"(registered: {sorted(known)[-10:]})")
    protected = reg.protected()
    stacked = reg.stacked()  # under the top of a production stack: `delete` takes it out (a rollback goes past it)
    in_use = reg.pins(now)  # chosen by a running run (a backfill date, a forecast): gone, its publish would fail
    for version, why in in_use.items():
        protected.setdefault(version, why)
    published, unread = ((published_index or PublishIndex(settings)).versions(removed or set()) if all_versions
                         else ({}, []))
    for version, why in published.items():
        protected.setdefault(version, why)
    if kept_out is not None:  # said, not acted on: gc removes no version because of them
        kept_out += [Item("note", Path(settings.warehouse_dir), 0, None, sentence) for sentence in unread]
    for v in versions:
        why = protected.get(v, "")
        if why.startswith("the production model"):
            raise RegistryError(f"{v} is {why}: gc never removes a production model (promote or roll back first)")
        if v in in_use:
            raise RegistryError(f"{v} is {in_use[v]}: gc never removes a version in use"
                                + ("" if in_use[v].startswith("pinned by") else " (run gc after that run)"))
    out: list[Item] = []
    for v in versions:
        if v in damaged:  # its metadata does not read: removed when named, never by the policy
            vdir = Path(reg.versions_dir) / v
            out.append(Item("model", vdir, reg.version_size(v), None, f"named explicitly (damaged: {damaged[v]})", v))
    by_dataset: dict[str, list[Any]] = {}
    for mv in all_versions:
        by_dataset.setdefault(str(mv.dataset), []).append(mv)
    for ds, mvs in sorted(by_dataset.items()):
        newest_first = sorted(mvs, key=lambda m: (m.seq, m.version), reverse=True)
        kept = 0
        for mv in newest_first:
            vdir = mv.path.parent
            if mv.version in versions:
                size = reg.version_size(mv.version)  # at a URL, this machine may hold no copy (_walk failed)
                note = f" ({protected[mv.version]})" if mv.version in protected else ""
                if note.startswith(" (the recorded champion"):  # its record goes with it (`ModelRegistry.delete`)
                    note = note[:-1] + ": the record is withdrawn, the previous recorded champion put back)"
                if note.startswith(" (the previous production model"):  # out of the stack with it (`delete`)
                    note = note[:-1] + ": taken out of its production stack, `flowcast models rollback` will not reach it)"
                elif mv.version in stacked:  # deeper in the stack: not protected so, out of it all the same
                    note += f" {_unstacked(stacked[mv.version])}"
                out.append(Item("model", vdir, size, None, f"named explicitly{note}", mv.version))
            elif mv.version in protected:
                if kept_out is not None:
                    kept_out.append(Item("model", vdir, 0, None, protected[mv.version], mv.version))
                continue
            elif kept < policy.keep_versions:
                kept += 1
            else:
                size = reg.version_size(mv.version)
                # one deeper in a production stack goes out of it too (review21: the plan did not say so)
                deeper = f" {_unstacked(stacked[mv.version])}" if mv.version in stacked else ""
                out.append(Item("model", vdir, size, None, f"older than the newest {policy.keep_versions} "
                                f"versions of {ds} besides production and its predecessor{deeper}", mv.version))
    due = reg.removals_due()  # the removals recorded in the registry whose command stopped before the files were gone
    for name in reg.leftovers():  # never listed as versions; a gc run again after a kill left them for good
        gone_v = name.removeprefix(".tmp-deleted-")
        out.append(Item("model", Path(reg.versions_dir) / name, reg.leftover_size(name), None, (
            f"the files of {name}, whose removal (a take-back, a withdrawal or a gc, recorded in the registry) was "
            "stopped before they were gone (the version is out of the registry already)" if name in due else
            f"the rest of {gone_v}'s files: a gc stopped while it removed them (the version was out of the "
            "registry already)" if name.startswith(".tmp-deleted-") or (reg.remote is not None and reg.removed_before(name))
            else "a version a registration stopped before it completed (never listed)")))
    return out


def _unstacked(dataset: str) -> str:
    """What removing a version under the top of `dataset`'s production stack does to it (`ModelRegistry.delete`)."""
    return f"(in the production stack of {dataset}: taken out of it, `flowcast models rollback` will not reach it)"


def _drop_publish_record(settings: Settings, dataset: str, as_of: datetime) -> None:
    """Remove the publish record (`published/<dataset>/<as_of>.json`, `ops.quiet.fingerprint_path`) of a key whose
    forecasts gc deleted, and its shared copy. It stayed for good: one file per as_of ever published, each naming
    forecasts no longer there (faults31). Called by the store's delete under the key's lock (`then`; on PostgreSQL
    after the delete's commit: a kill in between leaves the record, which the next gc removes, `_stale_records`), the one a
    publish takes: a publish of the key again lands after it, and its record with it. It checked that the key was
    not published again and then removed the record without the lock: a backfill that published and recorded the key
    in between lost its record (a quiet schedule then published again what the key held). The key's lock is taken
    before the registry's nowhere: gc takes it alone, a publish under `ModelRegistry.publishing` after the
    registry's. A record that cannot be removed is a warning: the forecasts are gone, which is what gc was asked."""
    import logging

    from flowcast.interrupts import fault_point
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.shared import unshare

    record = fingerprint_path(settings.home, dataset, as_of)
    try:
        fault_point("gc:before_record")  # test-only: the key's forecasts deleted, its record not yet
        record.unlink(missing_ok=True)
        unshare(settings, record)
    except Exception as exc:  # noqa: BLE001 - a local or shared file system's error: the removal is done
        logging.getLogger(__name__).warning("the publish record %s of the removed forecasts could not be removed (%s); "
                                            "it names forecasts no longer published: remove it by hand", record, exc)


def _forecast_items(settings: Settings, before: datetime | date, dataset: str | None,
                    published: PublishIndex) -> list[Item]:
    """The published (dataset, as_of) before `before`: an instant, or a date alone, which is each
    dataset's day (the midnight it starts at in its source's tz: the key its run of that date got). Their receipts
    are read through `published`, which the plan's check of the versions they name reads next."""
    from flowcast.ops.quiet import dataset_tz
    from flowcast.shared import shared_files
    from flowcast.store import open_store
    from flowcast.store.parquet import partition_name
    from flowcast.timekeys import day_start

    store = open_store(settings)
    recorded = settings.home / "published"  # `ops.quiet.fingerprint_path`'s folders: a dataset gc emptied has one
    files = shared_files(settings)  # and the shared home's copies of them (another machine's records are there)
    names = [dataset] if dataset else sorted({*store.datasets(), *(
        p.name for p in (recorded.iterdir() if recorded.is_dir() else []) if p.is_dir() and _is_dataset(p.name)),
        *(n for n in (files.list("published") if files is not None else []) if _is_dataset(n))})
    out = []
    for ds in names:
        cut = (_naive_utc(before) if isinstance(before, datetime)
               else _naive_utc(day_start(before, dataset_tz(settings, ds))))
        held = store.as_ofs(ds)
        out += _stale_records(settings, ds, cut, set(held), before)
        for a in held:
            if a >= cut:
                continue
            try:
                rows = _rows_text(published.receipt(ds, a).get("rows"))
            except DamagedPublishError as exc:  # removed all the same (its read failed gc); not the store's advice
                rows = f"rows not known: its file {exc.path} cannot be read ({exc.why})"  # to re-publish it (fix45)
            except (FlowcastError, OSError, ValueError) as exc:
                rows = f"rows not known: its receipt cannot be read ({' '.join(str(exc).split())})"
            local = Path(settings.warehouse_dir) / "forecasts" / f"dataset={ds}" / partition_name(a)
            size = _walk(local)[0] if local.exists() else 0
            out.append(Item("forecast", local, size, None, f"published forecasts of {ds} as_of {utc_text(a)} "
                            f"({rows}) and their realized accuracy: asked for (before {before.isoformat()})",
                            key=(ds, a)))
    return out


def _rows_text(rows: str | int | None) -> str:
    """A receipt's row count as the gc plan says it: '1 row', '24 rows' (`wording.plural`: it read '(1 rows)'); the
    value as stored where it is no count, '? rows' where the receipt has none."""
    text = str(rows).strip() if rows is not None else "?"
    return plural(int(text), "row") if text.isdigit() else f"{text} rows"


def _stale_records(settings: Settings, dataset: str, cut: datetime, held: set[datetime],
                   before: datetime | date) -> list[Item]:
    """The publish records (`published/<dataset>/<as_of>.json`) before `cut` whose key the store holds nothing for
    (`held`: its as_ofs): a gc killed after its delete's commit, before the record's removal, left them, naming
    forecasts no longer there (pg43). This home's files and the shared home's copies (`shared`: a record another
    machine published is there alone, and it was left for good where gc read this home's files only; shown by its
    URL). Only a record whose name is before `cut` is read (a shared one is a download each). `execute` removes each
    (both copies) under the key's lock, only while the key holds nothing (`unless_published`)."""
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.shared import shared_files

    folder = fingerprint_path(settings.home, dataset, datetime(2000, 1, 1)).parent
    files = shared_files(settings)
    rel = folder.relative_to(settings.home).as_posix()
    read: dict[str, Callable[[], bytes]] = {}  # record's file name -> how to read it (this home's own file first)
    urls: dict[str, str] = {}  # the shared home's copies
    for name in files.list(rel) if files is not None else []:
        if name.endswith(".json"):
            assert files is not None
            read[name], urls[name] = functools.partial(files.read_bytes, f"{rel}/{name}"), files.url(f"{rel}/{name}")
    local = {p.name: p.read_bytes for p in folder.glob("*.json")} if folder.is_dir() else {}
    read.update(local)
    out = []
    for name in sorted(read):
        try:
            a = datetime.strptime(name.removesuffix(".json"), "%Y%m%dT%H%M%S")
        except ValueError:  # not a record's name
            continue
        if a >= cut:  # its own as_of is the name's or a fraction of a second later: not before the cut, left unread
            continue  # (each shared record was downloaded, one request each, to be passed over here)
        try:
            raw = read[name]()
        except OSError:  # removed meanwhile
            continue
        with contextlib.suppress(ValueError, TypeError, KeyError):  # its own as_of, else the name's
            own = datetime.fromisoformat(json.loads(raw)["as_of"])  # (the name drops a second's fraction)
            a = own if own.tzinfo is None and own.replace(microsecond=0) == a else a
        if a < cut and a not in held:
            out.append(Item("record", folder / name, len(raw), None, f"the publish record of {dataset} as_of "
                            f"{utc_text(a)}, whose forecasts are no longer published (a gc stopped before removing "
                            f"it): asked for (before {utc_text(before)})", key=(dataset, a),
                            url=None if name in local else urls[name]))
    return out


def _is_dataset(name: str) -> bool:
    """Whether a folder's `name` is a dataset name (`store.contract.check_dataset`)."""
    from flowcast.store.contract import check_dataset

    try:
        check_dataset(name)
    except FlowcastError:
        return False
    return True


def plan(settings: Settings, now: datetime, *, versions: Iterable[str] = (),
         policy: RetentionConfig | None = None, forecasts_before: datetime | date | None = None,
         dataset: str | None = None) -> list[Item]:
    """What gc would remove from `settings.home` at `now` (nothing is touched). Published
    forecasts only with `forecasts_before` (of `dataset`, or of every dataset)."""
    return plan_and_kept(settings, now, versions=versions, policy=policy, forecasts_before=forecasts_before,
                         dataset=dataset)[0]


def plan_and_kept(settings: Settings, now: datetime, *, versions: Iterable[str] = (),
                  policy: RetentionConfig | None = None, forecasts_before: datetime | date | None = None,
                  dataset: str | None = None, published: PublishIndex | None = None) -> tuple[list[Item], list[Item]]:
    """`plan`, and the model versions that stay whatever their age, each with why: a production
    model, its predecessor, a recorded champion, or the model that made forecasts that stay
    published (a publish names its model version; those `forecasts_before` removes do not count).
    `published`: the index of the publishes' versions to read them into, the one `execute` is given after."""
    policy = policy or settings.retention
    now = _naive_utc(now)
    published = published or PublishIndex(settings)
    forecasts = (_forecast_items(settings, forecasts_before, dataset, published) if forecasts_before is not None
                 else [])
    kept: list[Item] = []
    items = _model_items(settings, policy, list(versions), {i.key for i in forecasts if i.key}, kept, now, published)
    items += _aged_items(settings, policy, now)
    return items + forecasts, kept


def expire(settings: Settings, now: datetime) -> list[Item]:
    """Remove what the policy's ages let go (run folders and checkpoints, preprocessing cache
    entries, quarantine files, report images, superseded Parquet files) and return it: what every retrain and forecast run
    does as it starts (`retention.in_runs`), so that a home left running stays bounded without
    anyone running `flowcast gc`. Model versions and published forecasts are left to `flowcast gc`, and so are
    the superseded objects of a store in an object store (listing them is one request per key: seconds to
    minutes of every run's start on a large store)."""
    return execute(settings, _aged_items(settings, settings.retention, _naive_utc(now), objects=False))


def _aged_items(settings: Settings, policy: RetentionConfig, now: datetime, *, objects: bool = True) -> list[Item]:
    """The items the policy lets go by age (every kind but models and forecasts); `objects`: the superseded
    objects of a store in an object store too."""
    home = Path(settings.home)
    items: list[Item] = []
    runs = [d for root in (home / "runs", settings.models_dir / "runs") if root.is_dir() for d in root.iterdir()]
    items += _old(runs, "run", policy.runs_days, now, "training run")

    records = settings.cache_dir / "prefect"
    results = settings.cache_dir / "results"
    cache: dict[str, list[Path]] = {}
    for folder in (records, results, settings.cache_dir / "digests"):  # `flows.tasks.check_cache_digest`'s too
        if folder.is_dir():
            for p in folder.iterdir():
                cache.setdefault(p.name, []).append(p)
    for key, paths in sorted(cache.items()):
        sizes = [_walk(p) for p in paths]
        age = _age_days(max(m for _, m in sizes), now)
        if age > policy.cache_days:
            # the record first: once it is gone nothing reads the value, which goes next
            ordered = sorted(paths, key=lambda p: p.parent != records)
            items += [Item("cache", p, _walk(p)[0], age,
                           f"cache entry {key} written {age:.1f} days ago (> {policy.cache_days:g})") for p in ordered]

    qroot = settings.quarantine_dir
    quarantines = [d for src in qroot.iterdir() if src.is_dir() for d in src.iterdir()] if qroot.is_dir() else []
    items += _old(quarantines, "quarantine", policy.quarantine_days, now, "quarantine")

    items += _superseded_items(settings, now, objects=objects)

    reports = [p for p in settings.reports_dir.rglob("*") if p.is_file() and p.suffix.lower() in REPORT_SUFFIXES] \
        if settings.reports_dir.is_dir() else []
    items += _old(reports, "report", policy.reports_days, now, "report")
    return items


def _store_files(settings: Settings) -> Any:
    """The embedded store's Parquet dataset where `open_store` opens it (home/warehouse, shared/warehouse, or
    store.url: a folder or an object-store URL), None for PostgreSQL (no files)."""
    from flowcast.store.factory import is_postgres
    from flowcast.store.parquet import ParquetDataset

    cfg = settings.store
    if is_postgres(cfg.url):
        return None
    root = cfg.url or (settings.shared_path("warehouse") if settings.shared else settings.warehouse_dir)
    return ParquetDataset(root, storage_options=cfg.storage_options or settings.shared_options,
                          grace_s=cfg.superseded_grace_s)


def _superseded_items(settings: Settings, now: datetime, *, objects: bool = True) -> list[Item]:
    """The embedded store's Parquet files that a later file of the same key superseded more than
    `store.superseded_grace_s` ago, wherever the store is (a local folder, or an object store: s3://, gs://,
    az://, where times are the objects' LastModified). A publish deletes those of its own key only, and
    only the ones superseded `grace_s` before it: the files a backfill re-scored seconds apart (each date
    rewrites the realized accuracy of every earlier as_of), or a writer killed between its rename and that
    deletion, left stayed for good, every one a full copy of its key. Never a key's current (highest) file.
    `objects` off (a run's retention): a store in an object store is left to `flowcast gc`."""
    data = _store_files(settings)
    if data is None or (not objects and not data.local):
        return []
    grace = settings.store.superseded_grace_s
    out: list[Item] = []
    for table in ("forecasts", "realized"):
        for older, successor, since in data.superseded(table, now.replace(tzinfo=UTC).timestamp()):
            with contextlib.suppress(FileNotFoundError):  # a publish of that key removed it meanwhile
                out.append(Item("superseded", Path(older), data.size(older), since / 86400,
                                f"{table} file superseded by {successor.rsplit('/', 1)[-1]} {since:.0f} s ago "
                                f"(> store.superseded_grace_s = {grace:g})", url=None if data.local else older))
    return out


def execute(settings: Settings, items: Iterable[Item], now: datetime | None = None, *,
            published: PublishIndex | None = None) -> list[Item]:
    """Remove what `plan` listed; returns what was removed. A model that became protected since
    the plan is skipped (RegistryError from the registry's own check: a run that chose it since
    pinned it, its pin not lapsed at `now`), and so is one that made
    forecasts published since (read again under the registry's lock before each model goes, after its pin
    check: a backfill date that published with an old version and unpinned it after gc's one read of the
    published versions lost its model), the store read as it is then: a key this gc deleted and a backfill published
    again since with that version keeps it too (counted as gone, it lost its model); everything else goes.
    Published forecasts go first: a plan lets a version go because the forecasts naming it go too,
    so a failed forecast deletion (its error raised) stops gc before any version is removed. `published`: the index
    the plan read the publishes into (`PublishIndex`: only the keys published since are read again), else a new one."""
    from flowcast.interrupts import fault_point
    from flowcast.shared import open_registry

    # stable: forecasts first, models last, the rest in the plan's order. A model version may need the pointer
    # rewritten (a previous production model, a recorded champion): on a full disk that write failed and stopped
    # gc before the run folders, cache entries and files it would have freed room with
    items = sorted(items, key=lambda i: (i.kind not in ("forecast", "record")) + (i.kind == "model"))
    reg = open_registry(settings) if any(i.kind == "model" for i in items) else None
    index = published or PublishIndex(settings)
    store = None
    files = None
    done: list[Item] = []
    for n, item in enumerate(items):
        if item.kind == "model" and (n == 0 or items[n - 1].kind != "model"):
            fault_point("gc:before_models")  # test-only: the forecasts and files removed, no version yet
        if item.kind == "forecast":
            from flowcast.store import open_store

            assert item.key is not None
            store = store or open_store(settings)
            if not store.delete(*item.key, then=functools.partial(_drop_publish_record, settings, *item.key)):
                continue
        elif item.kind == "record":  # the key holds nothing: its record goes, unless a publish of the key landed since
            from flowcast.store import open_store

            assert item.key is not None
            store = store or open_store(settings)
            if not store.unless_published(*item.key, functools.partial(_drop_publish_record, settings, *item.key)):
                continue
        elif item.kind == "model" and item.version is None:  # a folder a stopped writer left (`leftovers`)
            assert reg is not None
            if not reg.remove_leftover(item.path.name):
                continue
        elif item.kind == "model":
            assert item.version is not None and reg is not None
            explicit = item.reason.startswith("named explicitly")

            # the store as it is now: the keys deleted above are no longer in it, unless a run published one of them
            # again since (a backfill of that date with this version): those forecasts name it, so it stays
            def published_with(version: str) -> str | None:  # a run published with it since
                return index.versions(set())[0].get(version)

            try:
                reg.delete(item.version, allow_protected=explicit, at=None if now is None else _naive_utc(now),
                           keep=None if explicit else published_with)
            except RegistryError:
                continue
            except StorageError as exc:  # a full disk: the pointer's rewrite, or the backup copy's sync
                raise StorageError(f"{exc}; {_stopped_at(reg, item.version)}; it removed "
                                   f"{plural(len(done), 'item')} before it, {human(total_bytes(done))}: run it again "
                                   "once there is room") from exc
        elif item.url is not None:  # a superseded object of a store at a URL
            files = files or _store_files(settings)
            if files is None or not files.delete_file(item.url):
                continue
        else:
            try:
                if item.path.is_dir() and not item.path.is_symlink():
                    shutil.rmtree(item.path)
                else:
                    item.path.unlink(missing_ok=True)
            except FileNotFoundError:  # another run's retention removed it first
                continue
        done.append(item)
    # folders emptied by the removals (a source's quarantine folder with no as_of left)
    qroot = settings.quarantine_dir
    if qroot.is_dir():
        for src in qroot.iterdir():
            if src.is_dir() and not any(src.iterdir()):
                src.rmdir()
    return done


def _stopped_at(reg: ModelRegistry, version: str) -> str:
    """What became of `version`, whose removal by gc failed on a write: its removal noted and committed (a plain
    removal's note written before the pointer's backup copy failed to sync, or a pointer write whose folder sync
    failed after its rename) leaves it out of the list, and the registry's next writer removes its files
    (`ModelRegistry._recover_removal`); otherwise it stays registered (the note dropped, or never written)."""
    from flowcast.registry import REMOVING

    if version in reg.removals_due():
        return (f"gc stopped at {version}: its removal is noted ({reg.location}/{REMOVING}) and it is no longer "
                "listed, but its files are left; the next command that writes the registry removes its files")
    return (f"gc stopped before removing {version}, which stays registered (its removal needs that write: taking it "
            "out of the production records, or bringing their backup copy up to date)")


def total_bytes(items: Iterable[Item]) -> int:
    return sum(i.bytes for i in items)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
