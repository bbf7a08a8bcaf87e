"""The embedded forecast store (the default): the Parquet dataset + DuckDB views over it.

    <root>/forecasts/dataset=<name>/as_of=<iso>/part-<seq>-<tag>.parquet   forecasts of one key
    <root>/realized/dataset=<name>/as_of=<iso>/part-<seq>-<tag>.parquet    realized accuracy of one key
    <root>/forecasts.duckdb                        views forecasts, publishes, realized

`root` is `home/warehouse` by default, or `store.url` (a folder, file://, s3://, gs://, az://;
on an object store there is no DuckDB file: query the Parquet dataset directly).

Publishing validates first (nothing is written for a bad forecast), then writes a new file for
(dataset, as_of) and deletes the one it supersedes (parquet.py). That file is the whole truth: the
receipt lives in its key-value metadata and DuckDB reads it through views, so there is no
second copy to bring up to date and nothing to reconcile after a crash. A crash leaves the old
or the new file; the next publish of that key completes. Publishers of one key take a lock for that key
only (a file lock on one machine, a lock object on an object store: parquet.py) (publishers of other keys, and of other datasets, never wait);
readers take no lock at all and open nothing for writing: they list each key's current file and
read it whole through one handle (listing again when a newer publish deleted it meanwhile), so
a read returns complete as_of sets, never a mix of two publishes, never a duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.errors import DamagedPublishError, NothingPublished, PublishError, removal
from flowcast.store.base import PublishReceipt, already_published, prepare, same_published
from flowcast.store.contract import (
    check_dataset,
    empty_forecasts,
    empty_realized,
    normalise_read,
    normalise_realized,
    published_order,
    storage_ts,
    summary_order,
    validate_realized,
    value_columns,
)
from flowcast.store.duckdb_views import DB_NAME, TABLES, DuckDBViews
from flowcast.store.migrate import Migrated, Resolver, legacy_names, migrate_legacy
from flowcast.store.parquet import ParquetDataset, _check_leases, _io_error, partition_name
from flowcast.timekeys import utc_text

log = logging.getLogger(__name__)

_READ_TRIES = 5
_SAID_RUNS = 64  # the flow runs (None: outside one) whose warnings are remembered, the most recently warned
_SAID: OrderedDict[str | None, set[str]] = OrderedDict()  # flow run -> damaged files' sentences warned of (sync_views)
_SAID_LOCK = threading.Lock()


def _first_said(run: str | None, problem: str) -> bool:
    """Whether `problem` is new to `run` (then it is remembered). The runs are kept least recently warned first and
    only the last `_SAID_RUNS`: a long-running `flowcast serve` forgets the runs that ended long ago, where every
    run's sentences stayed in memory for the life of the process. A run evicted while still warning (64 other runs
    warned since) says its sentence once more."""
    with _SAID_LOCK:
        said = _SAID.pop(run, None)
        if said is None:
            said = set()
        _SAID[run] = said
        while len(_SAID) > _SAID_RUNS:
            _SAID.popitem(last=False)
        if problem in said:
            return False
        said.add(problem)
        return True


def _run_key() -> str | None:
    """The Prefect flow run this process is in (its tasks included), else None: a damaged file the views leave
    out is warned of once per run, not at every store opened and every write (7 times a run)."""
    import sys

    context = sys.modules.get("prefect.context")  # never imported here: a process outside Prefect has none
    run = getattr(context.FlowRunContext.get(), "flow_run", None) if context is not None else None
    return str(run.id) if run is not None else None


def damaged_text(table: str, dataset: str, as_of: datetime, path: str, why: str) -> str:
    """What a damaged partition is called, and what repairs it (the as_of as every instant reads, `utc_text`; the
    command's in ISO, which `--as-of` reads on any source's calendar)."""
    when = utc_text(as_of)
    if table == "forecasts":
        return (f"published partition {path} cannot be read ({why}); re-publish dataset {dataset} as_of {when} "
                f"(flowcast forecast --as-of {as_of.isoformat()}, or the backfill or run that made it), or remove that folder")
    what = "realized-accuracy" if table == "realized" else table
    return (f"{what} partition {path} cannot be read ({why}); the next run that scores dataset {dataset} as_of "
            f"{when} rewrites it, or remove that folder")


def _filters(unique_id: str | None, model: str | None) -> list[tuple[str, str, Any]]:
    """The row filters of a read of forecasts (pyarrow's, '=' only)."""
    return [c for c in (("unique_id", "=", unique_id), ("model", "=", model)) if c[2] is not None]


def _distinct(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame`'s distinct rows with each value column (`y_hat*`) only null or 0.0, and `rows`: how many rows of
    `frame` each stands for (`read_summary`)."""
    if not frame.columns:
        return pl.DataFrame(schema={"rows": pl.Int64})
    marks = [pl.when(pl.col(c).is_null()).then(None).otherwise(0.0).alias(c)
             for c in frame.columns if c.startswith("y_hat")]
    return frame.with_columns(marks).group_by(frame.columns).agg(pl.len().cast(pl.Int64).alias("rows"))


def _then_if_held(then: Callable[[], None], what: str) -> None:
    """Call `then()` (what follows a key's change under its lock: gc's record) only while this process still holds the
    key's lock: on an object store a LockLostError naming the lock, the key and `what` when a waiter broke it since the
    change (`parquet._check_leases`, the check before each delete), nothing called (a local lock cannot be lost)."""
    _check_leases(what)
    then()


def _key_lock(table: str, dataset: str, as_of: datetime) -> str:
    """The name of the writer lock of one key of `table` (`ParquetDataset.lock`)."""
    return f"{table}.dataset={dataset}.{partition_name(as_of)}"


class EmbeddedStore:
    """Parquet (truth) + DuckDB views, under one root (see module doc)."""

    def __init__(
        self,
        root: str | Path,
        *,
        db_path: Path | None = None,
        storage_options: dict[str, Any] | None = None,
        lock_timeout: float = 600.0,
        superseded_grace_s: float = 60.0,
        legacy_dataset: str | None = None,
        resolve_legacy: Resolver | None = None,
    ):
        self.data = ParquetDataset(root, storage_options=storage_options, lock_timeout=lock_timeout,
                                   grace_s=superseded_grace_s)
        self.location = self.data.root
        self.root = Path(self.data.root) if self.data.local else None
        self.db_path = (Path(db_path) if db_path else self.root / DB_NAME) if self.root is not None else None
        self.views = (DuckDBViews(self.db_path, self.root)
                      if self.db_path is not None and self.root is not None else None)
        self.legacy_dataset = check_dataset(legacy_dataset) if legacy_dataset else None
        self.resolve_legacy = resolve_legacy
        self._legacy_cache: tuple[tuple[str, ...], dict[datetime, tuple[str, str]]] | None = None
        self.skipped: list[str] = []  # what the last read of several as_of left out (damaged partitions)
        self.unreadable: list[tuple[str, datetime]] = []  # the (dataset, as_of) of those partitions
        self.views_left_out: list[str] = []  # damaged files the DuckDB views leave out (sync_views)
        self.views_note: str | None = None  # why open_store could not create or rebuild the views (factory)
        self.views_rebuilt: list[str] = []  # each damaged DuckDB file this store's `sync_views` rebuilt, said

    def __repr__(self) -> str:
        return f"EmbeddedStore({self.location!r})"

    @property
    def parquet_dir(self) -> Path | str:
        return self.data.display(self.data.path("forecasts"))

    @property
    def tmp_dir(self) -> Path:
        return self.data.tmp_dir

    # ------------------------------------------------------------------ migration
    def _legacy(self) -> dict[tuple[str, datetime], str]:
        """Old partitions not migrated yet, under the dataset they migrate to."""
        legacy = self.data.legacy_partitions()
        if not legacy:
            return {}
        sig = tuple(sorted(legacy.values()))
        if self._legacy_cache is None or self._legacy_cache[0] != sig:
            names = legacy_names(self.data, legacy, explicit=self.legacy_dataset, resolve=self.resolve_legacy)
            self._legacy_cache = (sig, names)
        names = self._legacy_cache[1]
        return {(names[a][0], a): p for a, p in legacy.items()}

    def migrate(self, *, blocking: bool = True) -> list[Migrated]:
        """Move forecasts published before datasets were keyed into the dataset layout
        (migrate.py); a no-op once done. Writers call it; `open_store` tries it without waiting."""
        if not self.data.legacy_partitions():
            return []
        with self.data.lock("migrate", blocking=blocking) as got:
            if not got:
                return []
            moved = migrate_legacy(self.data, explicit=self.legacy_dataset, resolve=self.resolve_legacy)
        self.sync_views()
        return moved

    def sync_views(self) -> str | None:
        """Create the DuckDB views the tables present need (duckdb_views); a sentence when the
        DuckDB file is held open elsewhere or cannot be written, else None. Damaged files the views leave out are logged
        as warnings, each once per flow run (once per process outside one), and kept in `views_left_out` (a
        publish's receipt notes them); a damaged DuckDB file rebuilt is a warning too, kept in `views_rebuilt`."""
        self.views_left_out = []
        if self.views is None:
            return None
        try:
            note = self.views.ensure(self._view_tables())
        except OSError as exc:  # e.g. a damaged file's rebuild that cannot create its temp file (a full disk):
            # raised out of a publish whose file was in place, it failed the run and the task's retry found it
            note = (f"the DuckDB views in {self.db_path} could not be brought up to date ({_io_error('', exc)}); the "
                    "Parquet dataset is intact and a later publish creates them")
        self.views_left_out = list(self.views.left_out)
        rebuilt = self.views.rebuilt
        self.views.rebuilt = None
        if rebuilt:  # a damaged file rebuilt: said once, where it happened (a publish's receipt notes it too)
            self.views_rebuilt.append(rebuilt)
            log.warning("%s", rebuilt)
        run = _run_key()
        for problem in self.views_left_out:
            if _first_said(run, problem):
                log.warning("%s", problem)
        return note

    def _view_tables(self) -> set[str]:
        """The tables whose DuckDB views are kept: all of them once any table holds a key or the file exists (a view
        without a readable file is empty, with its columns: `realized` was missing until the first scoring, and when
        its only file was damaged, so a query of it failed 'Table with name realized does not exist'); none in a store
        that holds nothing (a read creates nothing)."""
        held = (self.db_path is not None and self.db_path.exists()) or any(self._has_any(t) for t in TABLES)
        return set(TABLES) if held else set()

    def _has_any(self, table: str) -> bool:
        """Whether `table` holds a key (cheap: stops at the first one; DuckDB cannot create a view
        over a glob that matches nothing)."""
        base = Path(self.data.root) / table
        if not base.is_dir():
            return False
        for ddir in base.iterdir():
            if ddir.name.startswith("dataset=") and ddir.is_dir():
                for adir in ddir.iterdir():
                    if self.data._parts_in(str(adir)):
                        return True
        return False

    # ------------------------------------------------------------------ listing
    def _visible(self, table: str, dataset: str | None = None) -> dict[tuple[str, datetime], str]:
        parts = self.data.partitions(table, dataset)
        if table == "forecasts":
            for key, path in self._legacy().items():
                if (dataset is None or key[0] == dataset) and key not in parts:
                    parts[key] = path  # the migrated file wins when both exist
        return dict(sorted(parts.items()))

    def datasets(self) -> list[str]:
        return sorted({d for d, _ in self._visible("forecasts")})

    def as_ofs(self, dataset: str) -> list[datetime]:
        """Published as_ofs of `dataset`, oldest first."""
        return [a for _, a in self._visible("forecasts", check_dataset(dataset))]

    def current_publishes(self) -> dict[tuple[str, datetime], str]:
        """{(dataset, as_of): its current file} of every published key, one listing: a file name is never reused
        (a publish writes the next one), so another publish of the key changes it."""
        return self._visible("forecasts")

    def has(self, dataset: str, as_of: datetime) -> bool:
        return self._path_of("forecasts", check_dataset(dataset), as_of) is not None

    def _path_of(self, table: str, dataset: str, as_of: datetime) -> str | None:
        as_of = storage_ts(as_of)
        path = self.data.current(table, dataset, as_of)
        if path is not None:
            return path
        return self._legacy().get((dataset, as_of)) if table == "forecasts" else None

    def receipt_of(self, dataset: str, as_of: datetime) -> dict[str, str]:
        """The receipt stored with a key's file (content_hash, run_id, model, model_version, ...)."""
        check_dataset(dataset)
        for _ in range(_READ_TRIES):
            path = self._path_of("forecasts", dataset, as_of)
            if path is None:
                raise NothingPublished(f"nothing published for dataset {dataset} as_of "
                                   f"{utc_text(storage_ts(as_of))} in {self.location}")
            try:
                return self.data.metadata(path)
            except FileNotFoundError:
                continue  # superseded by a newer publish meanwhile
            except (OSError, ValueError) as exc:  # cut short, overwritten (pyarrow's ArrowInvalid is a ValueError)
                # a bare 'ArrowInvalid: Parquet magic bytes not found in footer' stopped a whole backfill (faults31)
                key = storage_ts(as_of).isoformat()
                why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                raise DamagedPublishError(
                    f"the published forecasts of dataset {dataset} as_of {utc_text(key)} cannot be read: {path} is damaged "
                    f"({why}); `flowcast forecast --as-of {key}` (or a backfill of that date with --overwrite) publishes "
                    "them again and removes it", path=str(path), why=why) from exc
        raise PublishError(f"dataset {dataset} as_of {utc_text(storage_ts(as_of))} kept changing while read")

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        forecasts: pl.DataFrame,
        *,
        dataset: str,
        as_of: datetime,
        model: str,
        model_version: str | None,
        run_id: str,
        created_at: datetime,
        last_ds: pl.DataFrame | None = None,
        expected_ids: list[str] | None = None,
        horizon: int | None = None,
        before_visible: Callable[[str], None] | None = None,
        trained_as_of: datetime | None = None,
        lookahead: bool | None = None,
        if_absent: bool = False,
        refuse_if: Callable[[dict[str, str]], bool] | None = None,
        keep_same: bool = False,
    ) -> PublishReceipt:
        """Validate, then atomically replace the forecasts of (dataset, as_of); nothing else is
        touched but the realized accuracy of that key when the forecasts change (it scored the ones
        replaced). model_version may be None for a model that is not in the registry (a baseline).
        `before_visible(what)` is called right before the new file becomes visible (its rename, the
        upload's completion); what it raises leaves the previous forecasts in place. `if_absent`: only into a
        key that holds nothing, checked under the key's lock (AlreadyPublished and nothing written otherwise: two
        runs of one schedule slot that both found it empty as they started publish once; on an object store too, whose
        key lock is a lock object: parquet.py).
        `refuse_if(held)`: as `if_absent`, only when the key holds a publish whose receipt it returns True for
        (called under the key's lock; a damaged one's receipt is {}). `keep_same`: a key whose file holds these very
        forecasts (its recorded content hash is this publish's, and its rows, read back whole, hash to it) is left
        as it is: SamePublished naming its run, nothing written (a damaged file is replaced)."""
        p = prepare(forecasts, dataset=dataset, as_of=as_of, model=model, model_version=model_version,
                    run_id=run_id, created_at=created_at, last_ds=last_ds, expected_ids=expected_ids,
                    horizon=horizon, trained_as_of=trained_as_of, lookahead=lookahead)
        self.migrate()
        what = f"forecasts of dataset {p.dataset} as_of {utc_text(p.as_of)}"
        with self.data.lock(_key_lock("forecasts", p.dataset, p.as_of)):
            self.data.clean_temps()
            if (if_absent or refuse_if is not None) and (held := self._path_of("forecasts", p.dataset,
                                                                               p.as_of)) is not None:
                try:
                    receipt = self.data.metadata(held)
                except (OSError, ValueError):  # damaged: still published (its repair is a publish with overwrite)
                    receipt = {}
                if if_absent or (refuse_if is not None and refuse_if(receipt)):
                    raise already_published(p.dataset, p.as_of, receipt)
            current = self.data.current("forecasts", p.dataset, p.as_of)
            if keep_same and current is not None and self._holds_same(current, p.digest):
                raise same_published(p.dataset, p.as_of, self.data.metadata(current))
            replaced, previous = self._previous(current)
            if previous != p.digest:  # the realized accuracy of the forecasts replaced goes first (a crash
                # after it leaves those forecasts unscored, rescored by the next run, never scores of others)
                with self.data.lock(_key_lock("realized", p.dataset, p.as_of)):
                    self.data.remove_key("realized", p.dataset, p.as_of)
            path = self.data.write("forecasts", p.dataset, p.as_of, p.frame, p.metadata(), what=what,
                                   before_visible=None if before_visible is None else lambda: before_visible(what))
        rebuilt = len(self.views_rebuilt)
        note = self.sync_views()
        # the DuckDB file only where its views exist: a run summary said 'DuckDB: .../forecasts.duckdb (table
        # forecasts)' of a file a full disk had kept from being created (faults48)
        made = note is None or (self.views is not None and self.views.made())
        return p.receipt(replaced_rows=replaced, previous_content_hash=previous, location=str(path),
                         parquet_path=self.data.display(path), duckdb_path=self.db_path if made else None,
                         notes=([note] if note else []) + self.views_rebuilt[rebuilt:] + self.views_left_out)

    def _holds_same(self, path: str, digest: str) -> bool:
        """Whether the file `path` (a key's current file, read under its lock) holds forecasts of content hash
        `digest`, whole: its recorded hash is `digest` and its rows read back hash to it (`ParquetDataset.verify`)."""
        try:
            return self.data.metadata(path).get("content_hash") == digest and self.data.verify(path) is None
        except (OSError, ValueError):  # damaged: replaced
            return False

    def _previous(self, path: str | None) -> tuple[int, str | None]:
        """Rows and content hash of the file about to be superseded (0, None: none or damaged)."""
        if path is None:
            return 0, None
        try:
            return self.data.num_rows(path), self.data.metadata(path).get("content_hash")
        except (OSError, ValueError):  # a damaged partition being replaced (ArrowInvalid is a ValueError)
            return 0, None

    def remove_idle_locks(self) -> int:
        """Delete the writer lock files no writer holds now (`ParquetDataset.remove_idle_locks`); how many."""
        return self.data.remove_idle_locks()

    def delete(self, dataset: str, as_of: datetime, *, then: Callable[[], None] | None = None) -> bool:
        """Remove what (dataset, as_of) published (an explicit request, e.g. `flowcast gc`); True if
        there was something. Realized accuracy of that key is removed too, first (as a publish does): a
        delete stopped in between leaves forecasts still published and unscored, which a re-run of the
        delete removes, never realized rows of an as_of whose forecasts are gone (no delete lists those).
        `then()`: called when something was removed, still under the key's lock, the one a publish takes: what
        belongs to the removed publish alone (gc's publish record) goes before another publish of the key can land
        (and write its own), on an object store too (its key lock is a lock object: parquet.py)."""
        check_dataset(dataset)
        as_of = storage_ts(as_of)
        found = False
        with self.data.lock(_key_lock("forecasts", dataset, as_of), remove=True):  # the key is gone: so are its locks
            with self.data.lock(_key_lock("realized", dataset, as_of), remove=True):
                scored = found = self.data.remove_key("realized", dataset, as_of)
            found = self.data.remove_key("forecasts", dataset, as_of) or found
            legacy = self._legacy().get((dataset, as_of))
            if legacy is not None:
                self.data.remove_legacy(legacy)
                found = True
            if found and then is not None:
                _then_if_held(then, removal(f"the publish record of dataset {dataset} as_of {utc_text(as_of)}"))
        # views listing keys: not this one now; a table left without a file: its view reads none (a glob matching
        # nothing failed every query of it: 'No files found that match the pattern')
        emptied = found and self.views is not None and (
            not self._has_any("forecasts") or (scored and not self._has_any("realized")))
        if found and self.views is not None and (self.views.left_out or emptied):
            self.sync_views()
        return found

    def unless_published(self, dataset: str, as_of: datetime, then: Callable[[], None]) -> bool:
        """Call `then()` under the key's lock when (dataset, as_of) holds no publish (gc's removal of the record
        file a delete killed before it left); whether it was called."""
        check_dataset(dataset)
        as_of = storage_ts(as_of)
        with self.data.lock(_key_lock("forecasts", dataset, as_of), remove=True):
            if self.has(dataset, as_of):
                return False
            _then_if_held(then, removal(f"the publish record of dataset {dataset} as_of {utc_text(as_of)}"))
        return True

    def while_published(self, dataset: str, as_of: datetime, content_hash: str, then: Callable[[], None], *,
                        run_id: str | None = None) -> bool:
        """Call `then()` under the key's lock (the one `publish` and `delete` take) while (dataset, as_of) holds the
        publish of `content_hash` made by the run `run_id` (when given, and a file older than run ids aside); False,
        nothing called, when it holds none (a gc deleted it since) or another (replaced since, also by another run's
        publish of these very forecasts: the first run's late record went over the second's, lock44). A publish's
        record goes there: never a record outliving the forecasts it names (a publish leaves the lock before it
        records). On an object store a LockLostError, nothing called, once a waiter broke the key's lock. A file that cannot be read is a PublishError naming it and why, nothing
        called: it was taken for a publish gone, and the run said a gc or another run had removed it."""
        check_dataset(dataset)
        as_of = storage_ts(as_of)
        with self.data.lock(_key_lock("forecasts", dataset, as_of)):
            path = self.data.current("forecasts", dataset, as_of)
            if path is None:
                return False
            try:
                held = self.data.metadata(path)
            except FileNotFoundError:  # removed outside flowcast: the key holds none of it
                return False
            except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
                raise PublishError(f"could not read {self.data.display(path)}, the file of the publish of dataset "
                                   f"{dataset} as_of {utc_text(as_of)}, to check that it still holds it: "
                                   f"{type(exc).__name__}: {exc}") from exc
            if held.get("content_hash") != content_hash or (run_id is not None and held.get("run_id", run_id) != run_id):
                return False
            _then_if_held(then, f"the publish record of dataset {dataset} as_of {utc_text(as_of)}")
        return True

    # ------------------------------------------------------------------ read
    def _read_parts(self, table: str, keys: dict[tuple[str, datetime], str],
                    filters: list[tuple[str, str, Any]], *, skip_damaged: bool = False,
                    columns: Callable[[str], bool] | None = None, rows: int | None = None,
                    each: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
                    part: Callable[[str], pl.DataFrame] | None = None) -> list[pl.DataFrame] | None:
        """The partitions `keys`; None when one went away meanwhile. A partition that cannot be read
        is a PublishError naming it, or with `skip_damaged` (a read of several as_of) left out with
        a warning naming it, noted in `self.skipped`: one damaged file must not hide every other.
        `columns`, `rows`, `each`: only those columns, only the first rows of the keys in order, a summary of each
        batch read (`ParquetDataset.read`); `part(path)`: what is read of each partition, in place of those."""
        frames: list[pl.DataFrame] = []
        for (dataset, as_of), path in keys.items():
            if rows is not None and sum(f.height for f in frames) >= rows:
                break
            try:
                f = part(path) if part is not None else self.data.read(
                    path, filters, columns=columns, each=each,
                    rows=None if rows is None else rows - sum(f.height for f in frames))
            except FileNotFoundError:
                return None  # removed since it was listed (a migration, a delete): list again
            except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
                problem = damaged_text(table, dataset, as_of, path, f"{type(exc).__name__}: {exc}")
                if not skip_damaged:
                    raise PublishError(problem) from exc
                log.warning("left out: %s", problem)
                self.skipped.append(f"left out dataset {dataset} as_of {utc_text(as_of)}: {problem}")
                self.unreadable.append((dataset, as_of))
                continue
            if part is None and "dataset" not in f.columns and (columns is None or columns("dataset")):  # an old
                # partition read before its migration
                f = f.with_columns(pl.lit(dataset, dtype=pl.Utf8).alias("dataset"))
                if table == "forecasts" and columns is None and each is None:  # whole rows: in published order
                    f = f.select(published_order(f.columns))  # (a column subset or summary has no ds, step, y_hat)
            frames.append(f)
        return frames

    def _read(self, table: str, dataset: str | None, as_of: datetime | None,
              filters: list[tuple[str, str, Any]], *, columns: Callable[[str], bool] | None = None,
              rows: int | None = None, each: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
              part: Callable[[str], pl.DataFrame] | None = None) -> pl.DataFrame | None:
        if dataset is not None:
            check_dataset(dataset)
        for _ in range(_READ_TRIES):
            self.skipped, self.unreadable = [], []
            keys = self._visible(table, dataset)
            if as_of is not None:
                keys = {k: v for k, v in keys.items() if k[1] == storage_ts(as_of)}
            frames = self._read_parts(table, keys, filters, skip_damaged=as_of is None, columns=columns, rows=rows,
                                      each=each, part=part)
            if frames is not None:
                return pl.concat(frames, how="diagonal_relaxed") if frames else None
        raise PublishError(f"the {table} of {self.location} kept changing while being read ({_READ_TRIES} tries)")

    def read(self, *, dataset: str | None = None, as_of: datetime | None = None, unique_id: str | None = None,
             model: str | None = None, rows: int | None = None) -> pl.DataFrame:
        """Published forecasts sorted by dataset, as_of, unique_id, ds; value columns null in every
        matched row are left out. Takes no lock and writes nothing. `rows`: only the first rows, read up to them
        (each file holds its rows sorted by unique_id, ds: `contract.prepare`), with the columns of a whole read
        (`read().head(rows)`: a value column empty in the first rows alone is kept, null there; whether a later row
        has one is read from the files' footers where their statistics say, else from that column alone, up to its
        first value: `ParquetDataset.filled`)."""
        frame = self._read("forecasts", dataset, as_of, _filters(unique_id, model), rows=rows)
        if frame is None or rows is None or frame.height == 0:
            return empty_forecasts() if frame is None else normalise_read(frame)
        frame = frame.head(rows)
        held = {c for c in value_columns(frame.columns) if frame[c].null_count() < frame.height}
        # a value column with none in the first rows is kept where a later matched row has one (`read().head(n)`);
        # a damaged later file, which the first rows never reached, is left out of that alone (said by a whole read)
        said = self.skipped, self.unreadable
        filters = _filters(unique_id, model)

        def filled(path: str) -> pl.DataFrame:  # a column found in a file is not looked for in the later ones
            got = self.data.filled(path, lambda c: c not in held and bool(value_columns([c])), filters)
            held.update(c for c in got.columns if got[c].any())
            return got

        self._read("forecasts", dataset, as_of, filters, part=filled)
        self.skipped, self.unreadable = said
        return normalise_read(frame, held)

    def read_batches(self, *, dataset: str | None = None, as_of: datetime | None = None,
                     unique_id: str | None = None, model: str | None = None,
                     size: int = 50_000) -> Iterator[pl.DataFrame]:
        """What `read` returns, `size` rows at a time (`flowcast forecasts --format csv|json`): read whole, then cut
        (a whole read checks each file's pages, sorts, and leaves out a damaged file, said in `skipped`)."""
        yield from self.read(dataset=dataset, as_of=as_of, unique_id=unique_id, model=model).iter_slices(size)

    def read_summary(self, columns: Callable[[str], bool], *, dataset: str | None = None,
                     as_of: datetime | None = None, unique_id: str | None = None,
                     model: str | None = None) -> pl.DataFrame:
        """Every distinct row of the columns `columns` keeps of what `read` would return, each value column
        (`y_hat*`) only null or 0.0 (whether it is there), and `rows`, how many published rows each stands for
        (sorted by dataset, as_of, unique_id, then the other columns: the ids named under a table, `series_lacking`,
        are the same ones each time; only `rows` where none is published): what `flowcast forecasts` counts and says of
        all the rows its table shows the first of, read a batch at a time, never their values (1.4M rows read whole to
        show 50)."""
        frame = self._read("forecasts", dataset, as_of, _filters(unique_id, model), columns=columns, each=_distinct)
        return _distinct(pl.DataFrame()) if frame is None else summary_order(frame)

    def verify(self, dataset: str | None = None, as_of: datetime | None = None) -> tuple[int, list[str]]:
        """Check every current forecasts file (of `dataset`, `as_of`) whole: each data page's CRC and the
        content hash its publish recorded in the footer (files written before page CRCs have only the
        hash), then every realized-accuracy file the same way (a damaged one said 'all whole'), and the DuckDB file
        (`DuckViews.repair`: a damaged one is rebuilt and named). Returns (files checked, one sentence per damaged key
        naming its table, as_of, file and remedy)."""
        problems = []
        checked = 0
        if self.views is not None and (note := self.views.repair(self._view_tables())):
            problems.append(note)
        for table in ("forecasts", "realized"):
            keys = self._visible(table, check_dataset(dataset) if dataset is not None else None)
            if as_of is not None:
                keys = {k: v for k, v in keys.items() if k[1] == storage_ts(as_of)}
            for (name, when), path in keys.items():
                try:
                    why = self.data.verify(path)
                except FileNotFoundError:  # superseded since it was listed: its successor is checked next time
                    continue
                checked += 1
                if why is not None:
                    problems.append(damaged_text(table, name, when, path, why))
        return checked, problems

    # ------------------------------------------------------------------ realized accuracy
    def write_realized(self, dataset: str, frame: pl.DataFrame, *, scored: dict[datetime, str] | None = None) -> int:
        """Replace the realized-accuracy rows of each (dataset, as_of) in `frame` (each as_of's
        file whole, so a re-run is idempotent); returns the rows written. With `scored` ({as_of:
        content hash of the forecasts the rows scored}), an as_of whose publish is no longer those
        forecasts (re-published or removed since they were read) is left out, under the key's lock."""
        valid = validate_realized(dataset, frame)
        self.migrate()
        written = 0
        for (as_of,), part in valid.group_by("as_of", maintain_order=True):
            # the forecasts' lock first, as a publish takes them: no publish or delete of the key in between
            with self.data.lock(_key_lock("forecasts", dataset, as_of)) if scored is not None else contextlib.nullcontext():
                if scored is not None and not self._still_published(dataset, as_of, scored.get(as_of)):
                    continue
                with self.data.lock(_key_lock("realized", dataset, as_of)):
                    self._write_realized_key(dataset, as_of, part)
                written += part.height
        self.sync_views()
        return written

    def _write_realized_key(self, dataset: str, as_of: datetime, part: pl.DataFrame) -> None:
        """Replace the realized-accuracy file of (dataset, as_of) by `part` (validated), under its lock."""
        meta = {"flowcast.dataset": dataset, "flowcast.as_of": as_of.isoformat(), "flowcast.rows": str(part.height)}
        self.data.clean_temps()
        self.data.write("realized", dataset, as_of, part, meta,
                        what=f"realized accuracy of dataset {dataset} as_of {utc_text(as_of)}")

    def rewrite_realized(self, dataset: str, scored: dict[datetime, str],
                         change: Callable[[pl.DataFrame], pl.DataFrame]) -> list[datetime]:
        """Replace the realized-accuracy rows of each (dataset, as_of) of `scored` ({as_of: content hash}) by
        `change(rows)`, `rows` read under the locks `write_realized` takes (the key's forecasts', then its realized
        rows'): rows another scoring wrote since the caller last read them are those changed, never overwritten by the
        older ones (`unmark_recorded_honest`). Only while the key holds the publish of its content hash; the as_ofs
        that did, oldest first (the others: nothing written). Nothing is written where `change` leaves the rows as they
        are. One as_of at a time, each file replaced atomically; the views synced once (they were for each as_of)."""
        self.migrate()
        held: list[datetime] = []
        wrote = False
        try:
            for key, digest in sorted(scored.items()):
                as_of = storage_ts(key)
                with self.data.lock(_key_lock("forecasts", dataset, as_of)):
                    if not self._still_published(dataset, as_of, digest):
                        continue
                    with self.data.lock(_key_lock("realized", dataset, as_of)):
                        rows = self.read_realized(dataset, as_of)
                        changed = change(rows) if rows.height else rows
                        if not changed.equals(rows):
                            self._write_realized_key(dataset, as_of, validate_realized(dataset, changed))
                            wrote = True
                held.append(key)
        finally:
            if wrote:
                self.sync_views()
        return held

    def _still_published(self, dataset: str, as_of: datetime, digest: str | None) -> bool:
        """True when (dataset, as_of) still holds the forecasts whose content hash is `digest`."""
        path = self.data.current("forecasts", dataset, as_of)
        return digest is not None and path is not None and self._previous(path)[1] == digest

    def read_realized(self, dataset: str | None = None, as_of: datetime | None = None) -> pl.DataFrame:
        frame = self._read("realized", dataset, as_of, [])
        return empty_realized() if frame is None else normalise_realized(frame)
