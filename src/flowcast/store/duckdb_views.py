"""The DuckDB side of the embedded store: views that read the Parquet dataset directly.

`forecasts.duckdb` holds no copy of the forecasts. It holds three views over the Parquet
dataset (the source of truth):

    forecasts   SELECT * over <root>/forecasts/dataset=*/as_of=*/part-*.parquet, each key's newest
                file (union by name: value columns that only some keys have are null elsewhere)
    publishes   one row per (dataset, as_of): the receipt kept in each partition's key-value
                metadata (content_hash, model, model_version, run_id, created_at, rows, n_series)
    realized    SELECT * over <root>/realized/dataset=*/as_of=*/part-*.parquet, each key's newest file

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
short: "not a valid DuckDB database file"). It holds nothing but views, so such a file is
rebuilt: a new one is written beside it and renamed over it (and its write-ahead log removed).
Before, every later publish said the file was "held open by another program" and the views
never came back until someone deleted it by hand.

Before datasets were keyed, `forecasts.duckdb` held tables `forecasts` and `publishes`, a
copy of the Parquet files; `ensure` replaces those tables by the views (the Parquet files,
migrated first, hold every row).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from flowcast.atomic import atomic_write_text
from flowcast.errors import StorageError
from flowcast.store.base import fault
from flowcast.store.parquet import PART_GLOB

DB_NAME = "forecasts.duckdb"
TABLES = ("forecasts", "realized")
_VERSION = 3
# what DuckDB says of a file that is not a whole database (empty, or cut short by a full disk or a crash)
_DAMAGED = ("not a valid duckdb database file", "could not read enough bytes")
_LOCKED = ("could not set lock", "conflicting lock")
_STALE_TMP_S = 600.0  # a rebuild's temp file older than this is a dead writer's


def _damaged(text: str) -> bool:
    return any(k in text.lower() for k in _DAMAGED)


def _locked(text: str) -> bool:
    return any(k in text.lower() for k in _LOCKED)


def _glob(root: Path, table: str) -> str:
    return str(root.resolve() / table / "dataset=*" / "as_of=*" / PART_GLOB).replace("'", "''")


def view_sql(root: Path) -> dict[str, str]:
    """The CREATE VIEW statements for a dataset root. Each keeps, per (dataset, as_of), the rows
    of the key's newest file only: for the instant between a publish's new file appearing and
    its predecessor being deleted, a listing holds both."""
    f, r = _glob(root, "forecasts"), _glob(root, "realized")
    # dense_rank, not `QUALIFY filename = max(filename) OVER (...)`: DuckDB 2.0 drops whole keys from
    # the latter while files are being added (tests/store/test_concurrency.py saw it in 9 of 57 queries)
    rank = "dense_rank() OVER (PARTITION BY dataset, as_of ORDER BY filename DESC) AS __newest"
    def read(glob: str) -> str:
        return f"read_parquet('{glob}', union_by_name = true, hive_partitioning = false, filename = true)"

    def newest(inner: str) -> str:
        return f"SELECT * EXCLUDE (filename, __newest) FROM (SELECT *, {rank} FROM {inner}) WHERE __newest = 1"

    kv = lambda k: f"max(CASE WHEN k = '{k}' THEN v END)"
    return {
        "forecasts": f"CREATE OR REPLACE VIEW forecasts AS {newest(read(f))}",
        "publishes": (
            "CREATE OR REPLACE VIEW publishes AS " + newest("(SELECT "
            f"{kv('dataset')} AS dataset, CAST({kv('as_of')} AS TIMESTAMP) AS as_of, "
            f"{kv('content_hash')} AS content_hash, {kv('model')} AS model, "
            f"nullif({kv('model_version')}, '') AS model_version, {kv('run_id')} AS run_id, "
            f"CAST({kv('created_at')} AS TIMESTAMP) AS created_at, CAST({kv('rows')} AS BIGINT) AS rows, "
            f"CAST({kv('n_series')} AS BIGINT) AS n_series, file_name AS parquet_file, file_name AS filename "
            "FROM (SELECT file_name, replace(decode(key), 'flowcast.', '') AS k, decode(value) AS v "
            f"FROM parquet_kv_metadata('{f}') WHERE starts_with(decode(key), 'flowcast.')) "
            "GROUP BY file_name)")
        ),
        "realized": f"CREATE OR REPLACE VIEW realized AS {newest(read(r))}",
    }


class DuckDBViews:
    """Creates (when needed and possible) the views of `db_path` over the dataset at `root`."""

    def __init__(self, db_path: Path, root: Path):
        self.db_path = Path(db_path)
        self.root = Path(root)
        self.state_path = self.db_path.with_name(self.db_path.name + ".views.json")

    def _wanted(self, tables: set[str]) -> dict[str, str]:
        sql = view_sql(self.root)
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
        return state if state.get("ino") == st.st_ino and state.get("version") == _VERSION else {}

    def current(self, tables: set[str]) -> bool:
        """True when every view these tables need exists with today's SQL (no DuckDB opened)."""
        done = self._state().get("views", {})
        return all(done.get(n) == s for n, s in self._wanted(tables).items())

    def ensure(self, tables: set[str]) -> str | None:
        """Create the missing views; None when done (or nothing to do), else a sentence saying
        why not (the file is held open by another program) for the receipt."""
        wanted = self._wanted(tables)
        if not wanted or self.current(tables):
            return None
        import duckdb

        try:
            con = duckdb.connect(str(self.db_path))
        except duckdb.Error as exc:
            text = " ".join(str(exc).split())
            if _damaged(text):
                return self._rebuild(wanted, text)
            why = "the file is held open by another program" if _locked(text) else "DuckDB could not open it"
            return (f"the DuckDB views in {self.db_path} were not created because {why} ({text[:200]}); the "
                    "forecasts are published in the Parquet dataset and a later publish creates the views")
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
            return f"the DuckDB views in {self.db_path} could not be created ({exc}); the Parquet dataset is intact"
        finally:
            con.close()
        self._record(st, {**self._state().get("views", {}), **wanted})
        return None

    def _record(self, st: os.stat_result, views: dict[str, str]) -> None:
        state = {"version": _VERSION, "ino": st.st_ino, "root": str(self.root.resolve()), "views": views}
        with contextlib.suppress(StorageError):  # a full disk: the sidecar only spares later publishes a
            atomic_write_text(self.state_path, json.dumps(state, indent=1))  # look into DuckDB; the views exist

    def _rebuild(self, wanted: dict[str, str], why: str) -> str | None:
        """The DuckDB file is damaged (see the module doc): build a new one with the views beside it and
        rename it over the damaged one; None when done, else a sentence for the receipt."""
        import duckdb

        folder = self.db_path.parent
        for stale in folder.glob(f".{self.db_path.name}.*.tmp*"):  # a dead rebuilder's
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > _STALE_TMP_S:
                    stale.unlink()
        fd, name = tempfile.mkstemp(prefix=f".{self.db_path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        tmp = Path(name)
        tmp.unlink()  # DuckDB creates the file itself (an empty file is not a database)
        try:
            con = duckdb.connect(str(tmp))
            try:
                for stmt in wanted.values():
                    con.execute(stmt)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            self.db_path.with_name(self.db_path.name + ".wal").unlink(missing_ok=True)  # the damaged file's log
            os.replace(tmp, self.db_path)
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            st = os.stat(self.db_path)
        except (duckdb.Error, OSError) as exc:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            text = " ".join(str(exc).split())
            return (f"the DuckDB file {self.db_path} is damaged ({why[:200]}) and could not be rebuilt ({text[:200]}); "
                    "the forecasts are published in the Parquet dataset and a later publish rebuilds it")
        self._record(st, dict(wanted))
        return None
