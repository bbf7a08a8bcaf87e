"""The DuckDB side of the embedded store: views that read the Parquet dataset directly.

`forecasts.duckdb` holds no copy of the forecasts. It holds three views over the Parquet
dataset (the source of truth):

    forecasts   SELECT * over <root>/forecasts/dataset=*/as_of=*/part-*.parquet, each key's newest
                file (union by name: value columns that only some keys have are null elsewhere)
    publishes   one row per (dataset, as_of): the receipt kept in each partition's key-value
                metadata (content_hash, model, model_version, run_id, created_at, rows, n_series)
    realized    SELECT * over <root>/realized/dataset=*/as_of=*/part-*.parquet, each key's newest file

Each exists once the file does, empty (with its files' columns and types) while its table has no readable file.

So a publish never writes the DuckDB file: a program holding it open (the README's
read-only query, a DuckDB shell) can never make a publish fail or go stale, and every query
sees whole keys: files are immutable (parquet.py), so the footer DuckDB reads when it plans a
query and the pages it reads when it runs it come from the same publish. A query that runs
while a newer publish of the same key deletes the file it planned to read fails with an I/O
error (run it again); it never returns a mix or a duplicate. The file is
opened read-write only to create the views (on the first publish into a table, after a
migration, or when the store moved to another folder; the views name the dataset by its
absolute path). If another program holds it then, the publish still succeeds, says so in
its receipt, and a later publish creates the views. A sidecar `forecasts.duckdb.views.json`
records what was created, so publishes do not open DuckDB at all once the views exist.

A full disk or a crash while the file was first written can leave it damaged (empty, or cut
short: "not a valid DuckDB database file"; bytes overwritten inside it: "Corrupt database file:
computed checksum ... does not match"). It holds nothing but views, so such a file is
rebuilt: a new one is written beside it and renamed over it (and its write-ahead log removed).
Before, every later publish said the file was "held open by another program" and the views
never came back until someone deleted it by hand. The file is first created the same way (built
beside its place, checkpointed and fsynced, then linked there), so a full disk during the first
publish leaves no file at all, and the receipt says the views were not created.

Before datasets were keyed, `forecasts.duckdb` held tables `forecasts` and `publishes`, a
copy of the Parquet files; `ensure` replaces those tables by the views (the Parquet files,
migrated first, hold every row).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.atomic import atomic_write_text, fsync_dir
from flowcast.errors import StorageError
from flowcast.store.base import fault
from flowcast.store.contract import OPTIONAL_REALIZED, empty_forecasts, empty_realized
from flowcast.store.parquet import PART_GLOB, parse_as_of
from flowcast.timekeys import utc_text
from flowcast.wording import plural

DB_NAME = "forecasts.duckdb"
TABLES = ("forecasts", "realized")
_VERSION = 4  # 4: the home guard, and views that leave damaged files out
_CHECKED_VERSION = 1
# what DuckDB says of a file that is not a whole database (empty, or cut short by a full disk or a crash; bytes
# overwritten inside it, a disk error or a bad copy: a block whose checksum fails, which was never rebuilt)
_DAMAGED = ("not a valid duckdb database file", "could not read enough bytes", "corrupt database file")
_LOCKED = ("could not set lock", "conflicting lock")
_STALE_TMP_S = 600.0  # a rebuild's temp file older than this is a dead writer's
# how long a publish waits for a DuckDB file another process holds (each creation or update of the views holds it for
# a moment: two first publishes at once) before it says the views wait for a later publish
_LOCK_WAIT_S = 2.0


def _damaged(text: str) -> bool:
    return any(k in text.lower() for k in _DAMAGED)


def _locked(text: str) -> bool:
    return any(k in text.lower() for k in _LOCKED)


def _lit(text: str) -> str:
    return text.replace("'", "''")


def _glob(root: Path, table: str) -> str:
    return _lit(str(root.resolve() / table / "dataset=*" / "as_of=*" / PART_GLOB))


def home_guard(db_path: Path) -> str:
    """A condition that is true when the database holding the view is the file `db_path` it was built
    for, and stops the query with an error naming both paths otherwise: a copied or moved home whose views
    could not be rebuilt (the file held open, read-only) would read the original home's forecasts. DuckDB
    names each attached database by its real path; the marker finds the databases holding these views."""
    real = os.path.realpath(db_path)
    marker = "flowcast_views_" + hashlib.sha256(real.encode()).hexdigest()[:16]
    msg = (f"the flowcast views of this DuckDB file were built for {real} and read that home's Parquet files; "
           "this file is a copy or was moved (opened at ")
    then = ("): run any flowcast command that opens the store in this home (flowcast forecasts --home <this home>) "
            "to rebuild them")
    return (f"(SELECT CASE WHEN count(*) = 0 THEN true ELSE error('{_lit(msg)}' || any_value(d.path) || '{_lit(then)}') END "
            "FROM duckdb_views() v JOIN duckdb_databases() d ON v.database_name = d.database_name "
            f"WHERE contains(v.sql, '{marker}') AND d.path IS DISTINCT FROM '{_lit(real)}')")


def view_sql(root: Path, db_path: Path | None = None,
             files: dict[str, list[str] | None] | None = None) -> dict[str, str]:
    """The CREATE VIEW statements for a dataset root. Each keeps, per (dataset, as_of), the rows
    of the key's newest file only: for the instant between a publish's new file appearing and
    its predecessor being deleted, a listing holds both. `files`: per table, the globs and files to
    read instead of the whole table's glob (damaged files left out, `DuckDBViews.layout`); an empty
    list: no readable file, an empty view with the table's columns. `db_path`: the file the views are built in (`home_guard`)."""
    files = files or {}

    def source(table: str) -> str | None:
        listed = files.get(table)
        if listed is None:
            return f"'{_glob(root, table)}'"
        return f"[{', '.join(repr_lit(p) for p in listed)}]" if listed else None  # None: no readable file

    f, r = source("forecasts"), source("realized")
    guard = f" AND {home_guard(db_path)}" if db_path is not None else ""
    # dense_rank, not `QUALIFY filename = max(filename) OVER (...)`: DuckDB 2.0 drops whole keys from
    # the latter while files are being added (tests/store/test_concurrency.py saw it in 9 of 57 queries)
    rank = "dense_rank() OVER (PARTITION BY dataset, as_of ORDER BY filename DESC) AS __newest"
    def read(src: str) -> str:
        return f"read_parquet({src}, union_by_name = true, hive_partitioning = false, filename = true)"

    def newest(inner: str) -> str:
        return (f"SELECT * EXCLUDE (filename, __newest) FROM (SELECT *, {rank} FROM {inner}) "
                f"WHERE __newest = 1{guard}")

    kv = lambda k: f"max(CASE WHEN k = '{k}' THEN v END)"
    # a table without a readable file (none written yet, or every one damaged) has a view all the same, empty, with
    # the columns and types its files have (the store's declared schema): a query of it failed 'Table with name
    # realized does not exist' in a home that had scored nothing yet or whose only realized file was damaged (faults32)
    no_file = f", {_nulls({'filename': pl.String()})} WHERE false)"
    metadata = (f"parquet_kv_metadata({f})" if f is not None else  # the columns parquet_kv_metadata returns
                f"(SELECT {_nulls({'file_name': pl.String(), 'key': pl.Binary(), 'value': pl.Binary()})} WHERE false)")
    out = {
        "forecasts": "CREATE OR REPLACE VIEW forecasts AS " + newest(
            read(f) if f is not None else f"(SELECT {_nulls(empty_forecasts().schema)}{no_file}"),
        "publishes": (
            "CREATE OR REPLACE VIEW publishes AS " + newest("(SELECT "
            f"{kv('dataset')} AS dataset, CAST({kv('as_of')} AS TIMESTAMP) AS as_of, "
            f"{kv('content_hash')} AS content_hash, {kv('model')} AS model, "
            f"nullif({kv('model_version')}, '') AS model_version, {kv('run_id')} AS run_id, "
            f"CAST({kv('created_at')} AS TIMESTAMP) AS created_at, CAST({kv('rows')} AS BIGINT) AS rows, "
            f"CAST({kv('n_series')} AS BIGINT) AS n_series, file_name AS parquet_file, file_name AS filename "
            "FROM (SELECT file_name, replace(decode(key), 'flowcast.', '') AS k, decode(value) AS v "
            f"FROM {metadata} WHERE starts_with(decode(key), 'flowcast.')) "
            "GROUP BY file_name)")
        ),
    }
    if r is None:
        out["realized"] = ("CREATE OR REPLACE VIEW realized AS "
                           + newest(f"(SELECT {_nulls(empty_realized().schema)}{no_file}"))
    else:
        # the columns recorded since realized accuracy was first written, null where no file has them: a store whose
        # files an older flowcast wrote had no `rmsse_snaive` column at all ('Referenced column "rmsse_snaive" not
        # found'), while flowcast reads them as null
        later = _nulls({c: t for c, t in empty_realized().schema.items() if c in OPTIONAL_REALIZED})
        out["realized"] = ("CREATE OR REPLACE VIEW realized AS "
                           + newest(f"(SELECT * FROM {read(r)} UNION ALL BY NAME SELECT {later} WHERE false)"))
    return out


# the DuckDB type of each polars type, as DuckDB reads it from the Parquet files polars writes (a Categorical or Enum
# is written as its strings; a Duration as its integer count; Datetime and Decimal by `sql_type`)
_SQL_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR", pl.Categorical: "VARCHAR", pl.Enum: "VARCHAR", pl.Binary: "BLOB", pl.Boolean: "BOOLEAN",
    pl.Int8: "TINYINT", pl.Int16: "SMALLINT", pl.Int32: "INTEGER", pl.Int64: "BIGINT", pl.UInt8: "UTINYINT",
    pl.UInt16: "USMALLINT", pl.UInt32: "UINTEGER", pl.UInt64: "UBIGINT", pl.Float32: "FLOAT", pl.Float64: "DOUBLE",
    pl.Date: "DATE", pl.Time: "TIME_NS", pl.Duration: "BIGINT",
}


def sql_type(column: str, dtype: Any) -> str:
    """The DuckDB type of a store column's polars type (`dtype`, a class or an instance), as DuckDB reads it from the
    Parquet files. A type with none (a List, a Struct) raises a TypeError naming the column and the type: a store
    column of a new type failed the empty views with a bare `KeyError: Datetime(time_unit='ns', ...)`."""
    if isinstance(dtype, type) and dtype in (pl.Datetime, pl.Decimal):
        dtype = dtype()  # the class: its defaults ('us', no zone; precision 38)
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP_NS" if dtype.time_unit == "ns" else "TIMESTAMP"
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision or 38},{dtype.scale})"
    base = dtype if isinstance(dtype, type) else type(dtype)
    if base in _SQL_TYPES:
        return _SQL_TYPES[base]
    raise TypeError(f"store column {column!r} has the polars type {dtype}, which has no DuckDB type for the views' "
                    f"typed nulls (duckdb_views._SQL_TYPES): add it there")


def _nulls(schema: Mapping[str, Any]) -> str:
    """A SELECT list of typed nulls with the names and types of `schema` (polars types)."""
    return ", ".join(f"CAST(NULL AS {sql_type(c, t)}) AS {c}" for c, t in schema.items())


def repr_lit(path: str) -> str:
    return f"'{_lit(path)}'"


def footer_problem(path: str | Path) -> str | None:
    """Why a Parquet file's footer cannot be read (None: it reads). DuckDB reads every footer of the files a
    view names when it plans a query: one unreadable footer fails every query of the view."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(str(path))
    except FileNotFoundError:
        return None  # gone meanwhile: not damaged
    except (OSError, ValueError) as exc:  # ArrowInvalid (a ValueError): 'Parquet magic bytes not found'
        return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    return None


def _dirs(folder: str, prefix: str) -> list[tuple[str, str]]:
    """(name, path) of the folders in `folder` whose name starts with `prefix` (strings: a scan of
    thousands of keys per publish, where pathlib cost 40 µs a key)."""
    try:
        with os.scandir(folder) as it:
            return sorted((e.name, e.path) for e in it if e.name.startswith(prefix) and e.is_dir())
    except OSError:
        return []


class DuckDBViews:
    """Creates (when needed and possible) the views of `db_path` over the dataset at `root`."""

    def __init__(self, db_path: Path, root: Path):
        self.db_path = Path(db_path)
        self.root = Path(root)
        self.state_path = self.db_path.with_name(self.db_path.name + ".views.json")
        self.checked_path = self.db_path.with_name(self.db_path.name + ".checked.json")
        self.left_out: list[str] = []  # the damaged files the last `ensure` left out of the views, said
        self.rebuilt: str | None = None  # what the last `ensure` or `repair` that rebuilt a damaged file did, said

    def _checked(self) -> dict[str, list[int]]:
        try:
            state = json.loads(self.checked_path.read_text())
        except (OSError, ValueError):
            return {}
        ok = isinstance(state, dict) and state.get("version") == _CHECKED_VERSION and isinstance(state.get("files"), dict)
        return state["files"] if ok else {}

    def layout(self, tables: set[str]) -> dict[str, list[str] | None]:
        """Per table, what its view reads: None, the whole table's glob (no damaged file: every publish
        is seen without touching DuckDB), else the globs of the datasets and keys without a damaged file
        and the newest file of a key whose older (superseded) file is damaged; a key whose newest file is
        damaged is left out whole (its older files would show superseded forecasts). Each damaged file is
        said in `self.left_out`. A table without a file: [] (an empty view). A file's footer is read once: those that read are remembered with their
        size and modification time (`forecasts.duckdb.checked.json`), so a publish reads only its own."""
        known = self._checked()
        seen: dict[str, list[int]] = {}
        out: dict[str, list[str] | None] = {}
        self.left_out = []
        base = self.root.resolve()
        for table in sorted(tables):
            keys: dict[str, dict[str, list[tuple[str, str | None]]]] = {}
            damaged = False
            for dname, ddir in _dirs(str(base / table), "dataset="):
                for aname, adir in _dirs(ddir, "as_of="):
                    parts = []
                    with contextlib.suppress(OSError), os.scandir(adir) as it:
                        for e in it:
                            if not fnmatch.fnmatchcase(e.name, PART_GLOB) or not e.is_file():
                                continue
                            rel = f"{table}/{dname}/{aname}/{e.name}"
                            try:
                                st = e.stat()
                            except OSError:
                                continue
                            stamp = [st.st_size, st.st_mtime_ns]
                            why = None if known.get(rel) == stamp else footer_problem(e.path)
                            if why is None:
                                seen[rel] = stamp
                            damaged |= why is not None
                            parts.append((e.name, why))
                    if parts:
                        keys.setdefault(dname, {})[aname] = sorted(parts)
            if not keys:  # no file yet, or none left: an empty view (a glob matching nothing fails every query)
                out[table] = []
                continue
            if not damaged:
                out[table] = None
                continue
            listed: list[str] = []
            for dname, as_ofs in sorted(keys.items()):
                if not any(why for parts in as_ofs.values() for _, why in parts):
                    listed.append(str(base / table / dname / "as_of=*" / PART_GLOB))
                    continue
                for aname, parts in sorted(as_ofs.items()):
                    folder = base / table / dname / aname
                    bad = [(n, why) for n, why in parts if why]
                    if not bad:
                        listed.append(str(folder / PART_GLOB))
                    elif parts[-1][1] is None:
                        listed.append(str(folder / parts[-1][0]))
                    # the as_of as every message writes one; the folder, named in full, keeps its ISO key
                    key = parse_as_of(aname)
                    what = (f"dataset {dname.removeprefix('dataset=')} as_of "
                            f"{aname.removeprefix('as_of=') if key is None else utc_text(key)}"
                            + (" (a superseded file; its newest file is read)" if parts[-1][1] is None else ""))
                    self.left_out += [
                        f"the DuckDB views in {self.db_path} leave out {folder / n}, {what}, whose footer cannot be "
                        f"read ({why}); {'re-publish that dataset and as_of, or remove that file' if table == 'forecasts' else 'the next run that scores that dataset rewrites it (a re-publish of the same forecasts keeps it), or remove that file'}"
                        for n, why in bad]
            out[table] = listed
        if seen != known:
            with contextlib.suppress(StorageError, OSError):  # a cache: a read-only home reads the footers again
                atomic_write_text(self.checked_path, json.dumps({"version": _CHECKED_VERSION, "files": seen}))
        return out

    def _wanted(self, tables: set[str]) -> dict[str, str]:
        files = self.layout(tables)
        sql = view_sql(self.root, self.db_path, files)
        names = set()
        if "forecasts" in tables:
            names |= {"forecasts", "publishes"}
        if "realized" in tables:
            names.add("realized")
        return {n: sql[n] for n in sorted(names)}

    def _state(self) -> dict:
        try:
            state = json.loads(self.state_path.read_text())
            st = os.stat(self.db_path)
        except (OSError, ValueError):
            return {}
        same = state.get("ino") == st.st_ino and state.get("db") == os.path.realpath(self.db_path)
        return state if same and state.get("version") == _VERSION else {}

    def made(self) -> bool:
        """Whether the file holds the `forecasts` view, as its sidecar records (no DuckDB opened): False where a
        full disk or another program kept every creation of it from being done."""
        return "forecasts" in self._state().get("views", {})

    def current(self, tables: set[str], wanted: dict[str, str] | None = None) -> bool:
        """True when every view these tables need exists with today's SQL (no DuckDB opened)."""
        done = self._state().get("views", {})
        return all(done.get(n) == s for n, s in (wanted or self._wanted(tables)).items())

    def ensure(self, tables: set[str]) -> str | None:
        """Create the missing views; None when done (or nothing to do), else a sentence saying
        why not (the file is held open by another program) for the receipt. The damaged files the
        views leave out are said in `self.left_out`."""
        self._sweep_dead_builds()
        self.rebuilt = None
        wanted = self._wanted(tables)
        if not wanted:
            return None
        if self.current(tables, wanted):
            if self._resized():  # cut short (or written by another program) since: looked into, rebuilt if damaged
                self._check(wanted)
            return None
        if not self.db_path.exists():  # the first creation: built beside it, in place only whole (`_rebuild`)
            return self._rebuild(wanted, None)
        return self._update(wanted)

    def _sweep_dead_builds(self) -> None:
        """Remove what a killed creation or rebuild (`_rebuild`) left beside the file: its temp file and log, older
        than a live one's (`_STALE_TMP_S`). Looked for at every `ensure`, not only by the next build: a build killed
        and followed within that time by one that made the file left them for good (the views current, no build
        came again)."""
        for stale in self.db_path.parent.glob(f".{self.db_path.name}.*.tmp*"):
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > _STALE_TMP_S:
                    stale.unlink()

    def _connect(self, wanted: dict[str, str]) -> Any:
        """A read-write connection to the file; None when, while another process held it, these views were made
        (the sidecar says so: another publisher of this store, which holds it for a moment as it creates them); else
        DuckDB's error (one line). A lock held longer than `_LOCK_WAIT_S` (a DuckDB shell) is that error too. Three
        first publishes at once said in 3 of 8 trials that the views were not created and waited for a later publish,
        though the publisher that held the file had just made them (faults40)."""
        import duckdb

        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.db_path))
            except duckdb.Error as exc:
                text = " ".join(str(exc).split())
                if not _locked(text) or time.monotonic() > deadline:
                    return text
            time.sleep(0.05)
            if self.current(set(), wanted):
                return None

    def _update(self, wanted: dict[str, str]) -> str | None:
        """`ensure` in the file that exists: the views created in one transaction (a damaged file rebuilt)."""
        import duckdb

        con = self._connect(wanted)
        if con is None:  # another publisher made these very views while this one waited for the file
            return None
        if isinstance(con, str):
            text = con
            if _damaged(text):
                return self._rebuild(wanted, text)
            why = "the file is held open by another program" if _locked(text) else "DuckDB could not open it"
            return (f"the DuckDB views in {self.db_path} were not created because {why} ({text[:200]}); the "
                    f"forecasts are published in the Parquet dataset and a later publish creates the views{self._moved()}")
        try:
            con.execute("BEGIN TRANSACTION")
            kinds = dict(con.execute(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall())
            for name in ("forecasts", "publishes", "realized"):
                if kinds.get(name) == "BASE TABLE":  # the copy kept before datasets were keyed
                    con.execute(f"DROP TABLE {name}")
            for stmt in wanted.values():
                con.execute(stmt)
            fault("in_views")
            con.execute("COMMIT")
            st = os.stat(self.db_path)
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            self._drop_empty_wal()  # while this connection holds the file's lock: no other writer can be using it
            return f"the DuckDB views in {self.db_path} could not be created ({exc}); the Parquet dataset is intact"
        finally:
            con.close()
        self._record(st, {**self._state().get("views", {}), **wanted})
        return None

    def _drop_empty_wal(self) -> None:
        """Remove the file's write-ahead log when it is empty: a commit that failed on a full disk left a 0-byte
        `forecasts.duckdb.wal` beside the file for good (faults48). Called only while this process holds the file
        open read-write (DuckDB's lock: no other program can be writing the log); a log with content is kept."""
        wal = self.db_path.with_name(self.db_path.name + ".wal")
        with contextlib.suppress(OSError):
            if wal.stat().st_size == 0:
                wal.unlink()

    def repair(self, tables: set[str]) -> str | None:
        """`flowcast forecasts --verify`: open the file read-only and read its views' definitions; None when it is
        whole (or absent, or held by another program: not a damage), else a sentence naming it and what DuckDB said,
        the file rebuilt with the views these tables need. Once the views exist no command opens the file (the sidecar
        says so), so bytes overwritten inside it (a disk error: 'Corrupt database file') failed every query of them
        for good while flowcast said nothing."""
        if not self.db_path.exists():
            return None
        self.rebuilt = None
        return self._check(self._wanted(tables))

    def _resized(self) -> bool:
        """Whether the file's size is not the one recorded when its views were made (`_record`): a file cut short by
        a fault outside flowcast (faults52: cut to a third, its inode kept) was never opened again, its sidecar
        current, so every query of its views failed while publishes said nothing. A sidecar without a size: no."""
        try:
            return self._state().get("size", os.stat(self.db_path).st_size) != os.stat(self.db_path).st_size
        except OSError:
            return False

    def _check(self, wanted: dict[str, str]) -> str | None:
        """Open the file read-only and read its views' definitions: None when it is whole (its size recorded anew:
        another program's tables), or held by another program (not a damage); else a sentence naming it, what DuckDB
        said and what was done: the file rebuilt with `wanted` (`self.rebuilt` says so too), or why it could not be."""
        import duckdb

        try:
            con = duckdb.connect(str(self.db_path), read_only=True)
            try:
                con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
            finally:
                con.close()
        except duckdb.Error as exc:
            text = " ".join(str(exc).split())
            if not _damaged(text):
                return None
        else:
            with contextlib.suppress(OSError):
                self._record(os.stat(self.db_path), self._state().get("views", {}))
            return None
        try:
            failed = self._rebuild(wanted, text)
        except OSError as exc:  # its temp file not created (a full disk)
            failed = (f"the DuckDB file {self.db_path} cannot be read ({text[:200]}) and could not be rebuilt "
                      f"({' '.join(str(exc).split())[:200]}); a later publish rebuilds it")
        return failed or self.rebuilt

    def _moved(self) -> str:
        """A clause when the views in the file were built for another path (a copied or moved home)."""
        try:
            built = json.loads(self.state_path.read_text()).get("db")
        except (OSError, ValueError, AttributeError):
            return ""
        if not built or built == os.path.realpath(self.db_path):
            return ""
        return (f"; the views it holds were built for {built} (a copied or moved home): until they are rebuilt, "
                "a query of them stops with an error instead of reading that home's forecasts (DuckDB's 'No files "
                f"found that match the pattern \"{Path(built).parent}/...\"' once that home is gone); let flowcast "
                f"write {self.db_path} (make it writable, close the program holding it) and run flowcast forecasts "
                f"--home <this home> once to rebuild them")

    def _record(self, st: os.stat_result, views: dict[str, str]) -> None:
        state = {"version": _VERSION, "ino": st.st_ino, "size": st.st_size, "root": str(self.root.resolve()),
                 "db": os.path.realpath(self.db_path), "views": views}
        with contextlib.suppress(StorageError):  # a full disk: the sidecar only spares later publishes a
            atomic_write_text(self.state_path, json.dumps(state, indent=1))  # look into DuckDB; the views exist

    def _rebuild(self, wanted: dict[str, str], why: str | None) -> str | None:
        """The DuckDB file is damaged (see the module doc), or absent (`why` None): build a new one with the views
        beside it and rename it over the damaged one (link it in place of the absent one: a file another publisher
        created meanwhile is kept, and the views are brought up to date in it); None when done, else a sentence for
        the receipt. A failure leaves no file behind: DuckDB creating `forecasts.duckdb` in place on a full disk
        left an empty or cut-short one (and its log) that the next publish had to rebuild."""
        import duckdb

        folder = self.db_path.parent
        # not '.tmp' at the end: `atomic_file`'s temp files are named so, and any atomic write in this folder (another
        # publisher's views.json) removed an unlocked one with data as a dead writer's, this one mid-build (DuckDB
        # holds no flock on it)
        fd, name = tempfile.mkstemp(prefix=f".{self.db_path.name}.", suffix=".tmp.duckdb", dir=folder)
        os.close(fd)
        tmp = Path(name)
        tmp.unlink()  # DuckDB creates the file itself (an empty file is not a database)
        try:
            con = duckdb.connect(str(tmp))
            try:
                for stmt in wanted.values():
                    con.execute(stmt)
                fault("in_views")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            if why is None:
                try:
                    os.link(tmp, self.db_path)  # only where there is still no file
                except FileExistsError:  # another publisher created it meanwhile: it is kept, brought up to date
                    return self._update(wanted)
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS):
                        raise
                    os.replace(tmp, self.db_path)  # a file system without hard links (FUSE ones, sshfs: ENOSYS)
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                kept = self._keep_aside()  # the damaged file and its log, which the rebuilt file must not replay
                os.replace(tmp, self.db_path)
            fsync_dir(folder)
            st = os.stat(self.db_path)
        except (duckdb.Error, OSError) as exc:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            text = " ".join(str(exc).split())
            if why is None:
                return (f"the DuckDB views in {self.db_path} were not created because DuckDB could not create it "
                        f"({text[:400]}); nothing was left in its place, the forecasts are published in the Parquet "
                        "dataset and a later publish creates the views")
            return (f"the DuckDB file {self.db_path} is damaged ({why[:200]}) and could not be rebuilt ({text[:200]}); "
                    "the forecasts are published in the Parquet dataset and a later publish rebuilds it")
        self._record(st, dict(wanted))
        if why is not None:
            self.rebuilt = self._rebuilt_text(why, kept)
        return None

    def _keep_aside(self) -> str:
        """Link the damaged file as `forecasts.duckdb.damaged` (an earlier one replaced) before the rebuilt file takes
        its name: what a person added to it by hand (a table, a view of their own) is not in the rebuilt file. The
        clause saying where it is, or that it was not kept and why. Its log (`.wal`: what was committed since its last
        checkpoint) is moved first to `forecasts.duckdb.damaged.wal`, where DuckDB opening the kept file replays it; it
        was deleted, and what was only in it lost; never left beside the rebuilt file, which would replay it."""
        aside = self.db_path.with_name(self.db_path.name + ".damaged")
        wal, aside_wal = (p.with_name(p.name + ".wal") for p in (self.db_path, aside))
        log = ""
        try:
            aside.unlink(missing_ok=True)
            aside_wal.unlink(missing_ok=True)  # an earlier damaged file's log
            with contextlib.suppress(FileNotFoundError):
                os.replace(wal, aside_wal)
                log = f" (its log as {aside_wal})"
            os.link(self.db_path, aside)
        except OSError as exc:  # a file system without hard links, a folder that refuses it
            for left in (wal, aside_wal):  # a log without its file is nothing to open
                left.unlink(missing_ok=True)
            return (f"the damaged file was not kept ({' '.join(str(exc).split())[:200]}): anything added to it by "
                    "hand (a table or a view of your own) is lost with it")
        return (f"the damaged file is kept as {aside}{log}: anything added to it by hand (a table or a view of your "
                "own) is only there; remove it once not needed")

    def _rebuilt_text(self, why: str, kept: str) -> str:
        """The warning of a damaged file rebuilt (faults52: `forecasts.duckdb` cut to a third was rebuilt by the next
        publish without a word): the file, what DuckDB said, what it was rebuilt from and what its views show now
        (read back from the rebuilt file: the publishes' recorded rows, their Parquet footers), what they leave out
        (damaged Parquet files, each named in its own warning) and where the damaged file is (`kept`)."""
        import duckdb

        try:
            con = duckdb.connect(str(self.db_path), read_only=True)
            try:
                keys, datasets, rows = con.execute(
                    "SELECT count(*), count(DISTINCT dataset), coalesce(sum(rows), 0) FROM publishes").fetchall()[0]
            finally:
                con.close()
            shows = f"its views show {rows:,} forecast rows of {keys:,} as_of in {plural(datasets, 'dataset')}"
        except duckdb.Error as exc:  # another program opened it read-write meanwhile
            shows = f"its views could not be read back to count what they show ({' '.join(str(exc).split())[:200]})"
        bad = len(self.left_out)
        lost = (f"; they leave out {plural(bad, 'damaged Parquet file')}, each named in its own warning: what "
                f"{'they hold' if bad > 1 else 'it holds'} is not in the views until re-published" if bad else
                "; nothing published is missing from them")
        return (f"the DuckDB file {self.db_path} cannot be read ({why[:200]}) and was rebuilt from the Parquet dataset in "
                f"{self.root.resolve()}, the source of truth (the file holds only views over it, no forecast of its "
                f"own): {shows}{lost}; {kept}")
