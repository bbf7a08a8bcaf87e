# ruff: noqa
# flowcast/publish.py as of commit 1493df0 (the forecast store before forecasts were keyed by
# dataset), kept verbatim except the FORECAST_COLUMNS import, so that tests/store/test_migration.py
# can write a store exactly as that version did. Not part of flowcast.
"""The forecast store: a Parquet dataset (the source of truth) mirrored into DuckDB.

Layout under the warehouse folder (settings.warehouse_dir):

    forecasts/as_of=<iso>/part-0.parquet   one file per as_of: every published column, sorted by
                                           (unique_id, ds); its key-value metadata holds the content
                                           hash, run id, model and model version
    forecasts.duckdb                       table `forecasts` (same columns; one row per (as_of,
                                           unique_id, ds), checked before each commit rather than by
                                           a primary-key index, which would grow with every backfill)
                                           and table `publishes` (one row per as_of: hash, run, model,
                                           rows, the Parquet file signature)
    .lock                                  fcntl lock: one writer (or reader) at a time
    .tmp/                                  temporary files being written (never inside forecasts/)

Source of truth and crash recovery. The Parquet partition is the truth; DuckDB is a
queryable mirror. `publish` validates first (nothing is written for a bad or empty forecast),
then, holding the lock: (1) writes the new partition to a temporary file in `.tmp/` beside
the dataset (same file system, so the rename is atomic; outside `forecasts/`, so no reader's
glob or directory scan ever sees it), fsyncs it and renames it over
`forecasts/as_of=<iso>/part-0.parquet` (readers see the old file or the new file, never a
mix), fsyncs the folders; (2) replaces that as_of in DuckDB in one
transaction (DELETE + INSERT + the `publishes` row). A crash before the rename leaves the old
partition and a temporary file that the next publish or read deletes; a crash after the rename but
before the DuckDB commit leaves DuckDB one publish behind: every `publish` and `read` first
reconciles, reloading into DuckDB each partition whose file signature (inode, size, mtime)
differs from the one recorded in `publishes`, and dropping as_ofs whose partition is gone.
So after any crash the store holds exactly the old or exactly the new forecasts of an as_of,
and the next run completes. While another program holds the DuckDB file open (DuckDB admits
one process), `read` serves the Parquet partitions instead and `publish` fails before writing.

Content hash: sha256 over the published content except `run_id` and `created_at` (as_of,
unique_id, ds, step, model, model_version, y_hat, quantile columns, sorted by unique_id and
ds), so re-publishing identical forecasts gives an identical hash whatever the run.

`ForecastStore` is the one implementation of the small `ForecastStoreProtocol` interface
(publish, read, as_ofs, has); a PostgreSQL store can implement the same protocol.
Nothing here reads the clock: `created_at` is passed in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl

# the one line changed from 1493df0: FORECAST_COLUMNS as flowcast.columns defined it then
FORECAST_COLUMNS = ["as_of", "unique_id", "ds", "step", "model", "model_version", "y_hat", "run_id", "created_at"]
from flowcast.errors import PublishError

PART_NAME = "part-0.parquet"
DB_NAME = "forecasts.duckdb"
_META_PREFIX = "flowcast."
_HASH_EXCLUDES = ("run_id", "created_at")


# ---------------------------------------------------------------------- test-only fault hook
def _fault(point: str) -> None:
    """Test-only fault injection, a no-op unless FLOWCAST_FAULT=publish:<point>.

    Points, in order: after_parquet_tmp (temp file written, not yet fsynced), before_rename,
    after_rename (before DuckDB), in_transaction (after DELETE), before_commit (after INSERT),
    after_commit. The process SIGKILLs itself there (a real kill -9: no cleanup, no atexit).
    """
    if os.environ.get("FLOWCAST_FAULT") == f"publish:{point}":
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------- helpers
def _norm_ts(ts: datetime) -> datetime:
    """Naive datetime; aware times are converted to UTC first."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _partition_name(as_of: datetime) -> str:
    return f"as_of={_norm_ts(as_of).isoformat()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quantile_columns(columns: list[str]) -> list[str]:
    """Quantile columns (y_hat_q*) in ascending quantile order."""
    qs = [c for c in columns if c.startswith("y_hat_q")]

    def key(c: str) -> float:
        try:
            return float(c.removeprefix("y_hat_q"))
        except ValueError:
            return float("inf")

    return sorted(qs, key=key)


def published_order(columns: list[str]) -> list[str]:
    """FORECAST_COLUMNS with the quantile columns between y_hat and run_id."""
    cols = list(FORECAST_COLUMNS)
    i = cols.index("y_hat") + 1
    return cols[:i] + quantile_columns(columns) + cols[i:]


def content_hash(frame: pl.DataFrame) -> str:
    """sha256 of the published content, excluding run_id and created_at (see module doc)."""
    f = frame.drop([c for c in _HASH_EXCLUDES if c in frame.columns])
    f = f.select(sorted(f.columns)).sort("unique_id", "ds")
    h = hashlib.sha256()
    h.update(str(f.height).encode())
    for name in f.columns:
        s = f[name]
        # our own type tags, not str(dtype): the hash must not change with the polars version
        tag = ("str" if s.dtype == pl.Utf8 else "ts_us" if s.dtype.is_temporal()
               else "f64" if s.dtype.is_float() else "i64")
        h.update(f"\0{name}\0{tag}\0".encode())
        if s.dtype == pl.Utf8:
            h.update(s.is_null().to_numpy().tobytes())
            s = s.fill_null("")
            h.update(s.str.len_bytes().to_numpy().tobytes())
            h.update((s.str.join("").item() or "").encode())
        elif s.dtype.is_temporal():
            h.update(s.cast(pl.Datetime("us")).dt.epoch("us").to_numpy().tobytes())
        elif s.dtype.is_float():
            h.update(s.cast(pl.Float64).to_numpy().tobytes())
        else:
            h.update(s.cast(pl.Int64).to_numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------- validation
class ForecastContractError(PublishError):
    """The forecasts themselves break the publishing contract (empty, NaN, missing series...).

    Deterministic, so exit code 2 like other bad-input errors, and flows do not retry it;
    I/O failures (full disk, lock timeout, DuckDB) stay plain PublishError (exit 1, retried)."""

    exit_code = 2


def _schema(qcols: list[str], last_ds: pl.DataFrame | None, horizon: int | None):
    import pandera.polars as pa

    finite = pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).is_finite().fill_null(False)), name="finite",
        error="must be a finite number (not NaN, inf or null)", ignore_na=False,
    )
    step_checks = [pa.Check.ge(1)]
    if horizon is not None:
        step_checks.append(pa.Check.le(horizon))
    checks = [
        pa.Check(
            lambda d: d.lazyframe.select(~pl.struct("unique_id", "ds").is_duplicated()),
            name="unique (unique_id, ds)", error="one row per (unique_id, ds)",
        )
    ]
    if last_ds is not None:
        lds = pl.col("last_ds")
        if isinstance(last_ds.schema.get("last_ds"), pl.Datetime) and last_ds.schema["last_ds"].time_zone:
            lds = lds.dt.replace_time_zone(None)
        last = last_ds.lazy().select(pl.col("unique_id").cast(pl.Utf8), lds.cast(pl.Datetime("us")))

        def after_last(d: Any) -> pl.LazyFrame:
            return (
                d.lazyframe.with_row_index("__row")
                .join(last, on="unique_id", how="left")
                .sort("__row")
                .select((pl.col("last_ds").is_null() | (pl.col("ds") > pl.col("last_ds"))).alias("ok"))
            )

        checks.append(pa.Check(after_last, name="ds after last observation",
                               error="ds must lie after the series' last observation"))
    columns = {
        "unique_id": pa.Column(pl.Utf8, nullable=False),
        "ds": pa.Column(pl.Datetime("us"), nullable=False),
        "step": pa.Column(pl.Int32, step_checks, nullable=False),
        # NaN/null are caught by the `finite` check (one message instead of two)
        "y_hat": pa.Column(pl.Float64, finite, nullable=True),
        **{q: pa.Column(pl.Float64, finite, nullable=True) for q in qcols},
    }
    return pa.DataFrameSchema(columns, checks=checks, unique=["unique_id", "step"], strict=True,
                              name="published forecasts")


def _describe_failures(frame: pl.DataFrame, cases: pl.DataFrame) -> str:
    msgs = []
    cases = cases.with_columns(
        pl.when(pl.col("schema_context") == "DataFrameSchema").then(pl.lit("rows")).otherwise(pl.col("column"))
        .fill_null("rows").alias("column")
    )
    for (column, check), grp in cases.group_by("column", "check", maintain_order=True):
        idx = [i for i in grp["index"].to_list() if i is not None]
        examples = []
        for i in idx[:3]:
            r = frame.row(int(i), named=True)
            val = f"={r[column]}" if column in r else ""
            examples.append(f"({r['unique_id']}, step {r['step']}){val}")
        if not examples:
            examples = [str(v) for v in grp["failure_case"].head(3).to_list()]
        check = {"multiple_fields_uniqueness": "duplicate (unique_id, step)"}.get(check, check)
        msgs.append(f"{column}: {check}: {grp.height} rows, e.g. {', '.join(examples)}")
    return "; ".join(msgs)


def validate_forecasts(
    forecasts: pl.DataFrame,
    *,
    as_of: datetime,
    last_ds: pl.DataFrame | None = None,
    expected_ids: list[str] | None = None,
    horizon: int | None = None,
) -> pl.DataFrame:
    """The publishing contract; returns unique_id, ds, step, y_hat[, quantiles] cast and sorted.

    Raises ForecastContractError (a PublishError) naming the offending series/steps: empty input, missing columns,
    non-finite values, duplicate (unique_id, step) or (unique_id, ds), steps outside
    1..horizon, a series without every step 1..horizon, ds not after the series' last
    observation, missing or unexpected series.
    """
    import pandera.polars as pa

    when = _norm_ts(as_of).isoformat()
    if forecasts is None or forecasts.height == 0:
        raise ForecastContractError(f"refusing to publish an empty forecast for as_of {when}; published forecasts are unchanged")
    need = ["unique_id", "ds", "step", "y_hat"]
    missing = [c for c in need if c not in forecasts.columns]
    if missing:
        raise ForecastContractError(f"forecasts for as_of {when} lack columns {missing} (have {forecasts.columns})")
    if last_ds is not None and not {"unique_id", "last_ds"} <= set(last_ds.columns):
        raise ForecastContractError(f"last_ds needs columns unique_id and last_ds, got {last_ds.columns}")
    qcols = quantile_columns(forecasts.columns)
    try:
        ds = pl.col("ds")
        if isinstance(forecasts.schema["ds"], pl.Datetime) and forecasts.schema["ds"].time_zone:
            ds = ds.dt.replace_time_zone(None)
        frame = forecasts.select(
            pl.col("unique_id").cast(pl.Utf8),
            ds.cast(pl.Datetime("us")),
            pl.col("step").cast(pl.Int32),
            pl.col("y_hat").cast(pl.Float64),
            *[pl.col(q).cast(pl.Float64) for q in qcols],
        )
    except pl.exceptions.PolarsError as exc:
        raise ForecastContractError(f"forecasts for as_of {when} have columns of the wrong type: {exc}") from exc
    try:
        _schema(qcols, last_ds, horizon).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise ForecastContractError(
            f"forecasts for as_of {when} failed the publishing contract: "
            f"{_describe_failures(frame, exc.failure_cases)}"
        ) from None
    except pa.errors.SchemaError as exc:
        raise ForecastContractError(f"forecasts for as_of {when} failed the publishing contract: {exc}") from None

    # completeness: every series, and every step of each series, exactly once
    ids = frame["unique_id"].unique()
    if expected_ids is not None:
        expected = pl.Series(list(expected_ids), dtype=pl.Utf8).unique()
        absent = sorted(set(expected.to_list()) - set(ids.to_list()))
        extra = sorted(set(ids.to_list()) - set(expected.to_list()))
        if absent:
            raise ForecastContractError(
                f"forecasts for as_of {when} miss {len(absent)} of {expected.len()} series: {absent[:5]}"
            )
        if extra:
            raise ForecastContractError(f"forecasts for as_of {when} hold {len(extra)} unexpected series: {extra[:5]}")
    counts = frame.group_by("unique_id").agg(pl.len().alias("n"), pl.col("step").max().alias("max_step"))
    h = horizon if horizon is not None else int(counts["n"].max())
    incomplete = counts.filter((pl.col("n") != h) | (pl.col("max_step") != h)).sort("unique_id")
    if incomplete.height:
        raise ForecastContractError(
            f"forecasts for as_of {when}: every series needs steps 1..{h} exactly once; "
            f"{incomplete.height} series do not, e.g. {incomplete.head(5).rows()} (unique_id, rows, max step)"
        )
    return frame.sort("unique_id", "ds")


# ---------------------------------------------------------------------- receipts and interface
@dataclass
class PublishReceipt:
    as_of: datetime
    rows: int
    n_series: int
    model: str
    model_version: str | None
    run_id: str
    replaced_rows: int
    content_hash: str
    duckdb_path: Path
    parquet_path: Path
    quantile_cols: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    previous_content_hash: str | None = None  # of the forecasts this publish replaced, if any

    @property
    def unchanged(self) -> bool:
        """True when this publish replaced identical content (a re-run with the same inputs)."""
        return self.previous_content_hash == self.content_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "rows": self.rows,
            "n_series": self.n_series,
            "model": self.model,
            "model_version": self.model_version,
            "run_id": self.run_id,
            "replaced_rows": self.replaced_rows,
            "content_hash": self.content_hash,
            "duckdb_path": str(self.duckdb_path),
            "parquet_path": str(self.parquet_path),
            "quantile_cols": list(self.quantile_cols),
            "ignored_columns": list(self.ignored_columns),
            "previous_content_hash": self.previous_content_hash,
            "unchanged": self.unchanged,
        }


class ForecastStoreProtocol(Protocol):
    def publish(self, forecasts: pl.DataFrame, *, as_of: datetime, model: str, model_version: str | None, run_id: str,
                created_at: datetime, last_ds: pl.DataFrame | None = None, expected_ids: list[str] | None = None,
                horizon: int | None = None) -> PublishReceipt: ...

    def read(self, *, as_of: datetime | None = None, unique_id: str | None = None,
             model: str | None = None) -> pl.DataFrame: ...

    def as_ofs(self) -> list[datetime]: ...

    def has(self, as_of: datetime) -> bool: ...


_DDL = [
    """CREATE TABLE IF NOT EXISTS forecasts (
        as_of TIMESTAMP NOT NULL, unique_id VARCHAR NOT NULL, ds TIMESTAMP NOT NULL, step INTEGER NOT NULL,
        model VARCHAR NOT NULL, model_version VARCHAR, y_hat DOUBLE NOT NULL,
        run_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS publishes (
        as_of TIMESTAMP PRIMARY KEY, content_hash VARCHAR NOT NULL, model VARCHAR, model_version VARCHAR,
        run_id VARCHAR, created_at TIMESTAMP, rows BIGINT, n_series BIGINT, parquet_sig VARCHAR)""",
]


class ForecastDbBusy(PublishError):
    """The DuckDB mirror is held open by another process (its own file lock)."""


def _empty_frame(qcols: list[str] = ()) -> pl.DataFrame:
    schema = {
        "as_of": pl.Datetime("us"), "unique_id": pl.Utf8, "ds": pl.Datetime("us"), "step": pl.Int32,
        "model": pl.Utf8, "model_version": pl.Utf8, "y_hat": pl.Float64,
        **{q: pl.Float64 for q in qcols}, "run_id": pl.Utf8, "created_at": pl.Datetime("us"),
    }
    return pl.DataFrame(schema=schema)


class ForecastStore:
    """Parquet (truth) + DuckDB (mirror) forecast store under one warehouse folder."""

    def __init__(self, warehouse_dir: Path, *, lock_timeout: float = 600.0):
        self.root = Path(warehouse_dir)
        self.parquet_dir = self.root / "forecasts"
        self.db_path = self.root / DB_NAME
        self.lock_path = self.root / ".lock"
        self.tmp_dir = self.root / ".tmp"
        self.lock_timeout = lock_timeout

    # ------------------------------------------------------------------ locking and DuckDB
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as fh:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise PublishError(
                            f"the forecast store {self.root} stayed locked by another publisher for "
                            f"{self.lock_timeout:g}s (lock file {self.lock_path})"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        import duckdb

        hint = ("; if it is damaged, delete it: it is only a mirror and is rebuilt from the Parquet dataset "
                f"{self.parquet_dir} on the next publish or read")
        try:
            con = duckdb.connect(str(self.db_path))
        except duckdb.Error as exc:
            text = " ".join(str(exc).split())
            if "could not set lock" in text.lower() or "conflicting lock" in text.lower():
                raise ForecastDbBusy(
                    f"the forecast database {self.db_path} is held open by another program (DuckDB admits one "
                    f"process at a time): {text}; close that program (readers fall back to the Parquet dataset)"
                ) from exc
            raise PublishError(f"cannot open the forecast database {self.db_path}: {text}{hint}") from exc
        try:
            try:
                for ddl in _DDL:
                    con.execute(ddl).fetchall()
            except duckdb.Error as exc:
                raise PublishError(f"the forecast database {self.db_path} is not usable: {exc}{hint}") from exc
            yield con
        finally:
            con.close()

    @staticmethod
    def _ensure_columns(con: Any, qcols: list[str]) -> None:
        for q in qcols:
            con.execute(f'ALTER TABLE forecasts ADD COLUMN IF NOT EXISTS "{q}" DOUBLE').fetchall()

    # ------------------------------------------------------------------ Parquet side
    def _partitions(self) -> dict[datetime, Path]:
        out: dict[datetime, Path] = {}
        if not self.parquet_dir.exists():
            return out
        for p in self.parquet_dir.glob(f"as_of=*/{PART_NAME}"):
            try:
                out[datetime.fromisoformat(p.parent.name.removeprefix("as_of="))] = p
            except ValueError:
                continue  # not ours: ignored, never deleted
        return dict(sorted(out.items()))

    @staticmethod
    def _sig(path: Path) -> str:
        st = os.stat(path)
        return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def _clean_temps(self) -> list[Path]:
        """Under the lock: temporary files of dead publishers, and partition folders left empty."""
        removed: list[Path] = []
        if self.tmp_dir.exists():
            for f in self.tmp_dir.iterdir():
                f.unlink(missing_ok=True)
                removed.append(f)
        if not self.parquet_dir.exists():
            return removed
        for d in self.parquet_dir.iterdir():
            if not d.is_dir() or not d.name.startswith("as_of="):
                continue
            for f in d.iterdir():
                if f.name.startswith(".") and f.name.endswith(".tmp"):
                    f.unlink(missing_ok=True)
                    removed.append(f)
            with contextlib.suppress(OSError):
                if not any(d.iterdir()):
                    d.rmdir()
                    removed.append(d)
        return removed

    def _write_partition(self, frame: pl.DataFrame, as_of: datetime, metadata: dict[str, str]) -> Path:
        """Temp file + fsync + rename + fsync(dir). Raises PublishError; the old partition stays."""
        import pyarrow.parquet as pq

        part_dir = self.parquet_dir / _partition_name(as_of)
        final = part_dir / PART_NAME
        tmp = self.tmp_dir / f"{_partition_name(as_of)}.{os.getpid()}.parquet.tmp"
        when = _norm_ts(as_of).isoformat()
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            table = frame.to_arrow()
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                _fault("after_parquet_tmp")
                os.fsync(fh.fileno())
            _fault("before_rename")
            part_dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.parquet_dir)
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
                why = errno.errorcode.get(exc.errno or 0, "")
                hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
                raise PublishError(
                    f"could not write forecasts for as_of {when} to {part_dir}: {exc.strerror or exc}"
                    f"{f' [{why}]' if why else ''}{hint}; previously published forecasts are intact"
                ) from exc
            if isinstance(exc, Exception):
                raise PublishError(
                    f"could not serialise forecasts for as_of {when}: {type(exc).__name__}: {exc}; "
                    "previously published forecasts are intact"
                ) from exc
            raise
        return final

    # ------------------------------------------------------------------ DuckDB mirror
    def _load_into_db(self, con: Any, frame: pl.DataFrame, as_of: datetime, info: dict[str, Any]) -> None:
        """Replace one as_of in DuckDB: one transaction (DELETE + INSERT + the publishes row)."""
        qcols = quantile_columns(frame.columns)
        self._ensure_columns(con, qcols)
        con.register("__new_rows", frame.to_arrow())
        try:
            con.execute("BEGIN TRANSACTION").fetchall()
            try:
                con.execute("DELETE FROM forecasts WHERE as_of = ?", [as_of]).fetchall()
                _fault("in_transaction")
                con.execute("INSERT INTO forecasts BY NAME SELECT * FROM __new_rows").fetchall()
                (n,) = con.execute("SELECT count(*) FROM forecasts WHERE as_of = ?", [as_of]).fetchone()
                if n != frame.height:  # cannot happen under the lock; checked, not assumed
                    raise PublishError(f"as_of {as_of.isoformat()} would hold {n} rows in DuckDB, expected "
                                       f"{frame.height}: rolled back")
                con.execute("DELETE FROM publishes WHERE as_of = ?", [as_of]).fetchall()
                con.execute(
                    "INSERT INTO publishes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [as_of, info["content_hash"], info["model"], info["model_version"], info["run_id"],
                     info["created_at"], frame.height, info["n_series"], info["parquet_sig"]],
                ).fetchall()
                _fault("before_commit")
                con.execute("COMMIT").fetchall()
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK").fetchall()
                raise
        finally:
            con.unregister("__new_rows")
        _fault("after_commit")

    def _reconcile(self, con: Any, replacing: datetime | None = None) -> list[datetime]:
        """Bring DuckDB in line with the Parquet partitions; returns the as_ofs it reloaded or dropped.

        An unreadable partition (never written by this store: ours are renamed into place whole)
        is a PublishError naming it, except the one `replacing`, which is about to be overwritten.
        """
        parts = self._partitions()
        recorded = {r[0]: r[1] for r in con.execute("SELECT as_of, parquet_sig FROM publishes").fetchall()}
        changed = []
        for as_of, path in parts.items():
            sig = self._sig(path)
            if recorded.get(as_of) == sig:
                continue
            try:
                meta = _parquet_meta(path)
                frame = pl.read_parquet(path)
            except (OSError, ValueError, pl.exceptions.PolarsError) as exc:  # a damaged file
                if as_of == replacing:
                    continue
                raise PublishError(
                    f"published partition {path} cannot be read ({type(exc).__name__}: {exc}); re-publish "
                    f"as_of {as_of.isoformat()} or remove that folder"
                ) from exc
            info = {
                "content_hash": meta.get("content_hash") or content_hash(frame),
                "model": frame["model"][0] if frame.height else None,
                "model_version": frame["model_version"][0] if frame.height else None,
                "run_id": frame["run_id"][0] if frame.height else None,
                "created_at": frame["created_at"][0] if frame.height else None,
                "n_series": frame["unique_id"].n_unique(),
                "parquet_sig": sig,
            }
            self._load_into_db(con, frame, as_of, info)
            changed.append(as_of)
        for as_of in sorted(set(recorded) - set(parts)):
            con.execute("BEGIN TRANSACTION").fetchall()
            con.execute("DELETE FROM forecasts WHERE as_of = ?", [as_of]).fetchall()
            con.execute("DELETE FROM publishes WHERE as_of = ?", [as_of]).fetchall()
            con.execute("COMMIT").fetchall()
            changed.append(as_of)
        return changed

    def reconcile(self) -> list[datetime]:
        """Repair after a crash (see module doc); publish and read call it themselves."""
        with self._locked():
            self._clean_temps()
            with self._db() as con:
                return self._reconcile(con)

    # ------------------------------------------------------------------ API
    def publish(
        self,
        forecasts: pl.DataFrame,
        *,
        as_of: datetime,
        model: str,
        model_version: str | None,
        run_id: str,
        created_at: datetime,
        last_ds: pl.DataFrame | None = None,
        expected_ids: list[str] | None = None,
        horizon: int | None = None,
    ) -> PublishReceipt:
        """Validate, then atomically replace the forecasts of `as_of` (see module doc).

        model_version may be None for a model that is not in the registry (a baseline);
        it is then null in the store.
        """
        as_of = _norm_ts(as_of)
        created_at = _norm_ts(created_at)
        for label, value in (("model", model), ("run_id", run_id)):
            if not value:
                raise ForecastContractError(f"publishing as_of {as_of.isoformat()} needs a non-empty {label}")
        valid = validate_forecasts(forecasts, as_of=as_of, last_ds=last_ds, expected_ids=expected_ids,
                                   horizon=horizon)
        qcols = quantile_columns(valid.columns)
        ignored = [c for c in forecasts.columns if c not in valid.columns]
        frame = valid.with_columns(
            pl.lit(as_of, dtype=pl.Datetime("us")).alias("as_of"),
            pl.lit(model, dtype=pl.Utf8).alias("model"),
            pl.lit(model_version, dtype=pl.Utf8).alias("model_version"),
            pl.lit(run_id, dtype=pl.Utf8).alias("run_id"),
            pl.lit(created_at, dtype=pl.Datetime("us")).alias("created_at"),
        ).select(published_order(valid.columns))
        digest = content_hash(frame)
        n_series = frame["unique_id"].n_unique()
        meta = {
            f"{_META_PREFIX}content_hash": digest, f"{_META_PREFIX}run_id": run_id,
            f"{_META_PREFIX}model": model, f"{_META_PREFIX}model_version": model_version or "",
            f"{_META_PREFIX}as_of": as_of.isoformat(), f"{_META_PREFIX}created_at": created_at.isoformat(),
        }
        import duckdb

        with self._locked():
            self._clean_temps()
            with self._db() as con:
                try:
                    self._reconcile(con, replacing=as_of)
                except duckdb.Error as exc:
                    raise PublishError(f"cannot reconcile the forecast database {self.db_path}: {exc}") from exc
                old = self._partitions().get(as_of)
                try:
                    replaced = _parquet_rows(old) if old is not None else 0
                    previous_hash = _parquet_meta(old).get("content_hash") if old is not None else None
                except (OSError, ValueError):  # a damaged partition being replaced (ArrowInvalid is a ValueError)
                    replaced, previous_hash = 0, None
                path = self._write_partition(frame, as_of, meta)
                _fault("after_rename")
                info = {"content_hash": digest, "model": model, "model_version": model_version, "run_id": run_id,
                        "created_at": created_at, "n_series": n_series, "parquet_sig": self._sig(path)}
                try:
                    self._load_into_db(con, frame, as_of, info)
                except (duckdb.Error, OSError) as exc:
                    raise PublishError(
                        f"forecasts for as_of {as_of.isoformat()} were written to {path} (the source of truth) but "
                        f"the DuckDB mirror {self.db_path} could not be updated: {exc}; it is reconciled on the next "
                        "publish or read"
                    ) from exc
        return PublishReceipt(
            as_of=as_of, rows=frame.height, n_series=n_series, model=model, model_version=model_version,
            run_id=run_id, replaced_rows=replaced, content_hash=digest, duckdb_path=self.db_path,
            parquet_path=path, quantile_cols=qcols, ignored_columns=ignored, previous_content_hash=previous_hash,
        )

    def read(self, *, as_of: datetime | None = None, unique_id: str | None = None,
             model: str | None = None) -> pl.DataFrame:
        """Published forecasts (from DuckDB, reconciled with Parquet first), sorted by as_of,
        unique_id, ds. Quantile columns that are null for every returned row are left out."""
        if not self.root.exists():
            return _empty_frame()
        where, params = [], []
        if as_of is not None:
            where.append("as_of = ?")
            params.append(_norm_ts(as_of))
        if unique_id is not None:
            where.append("unique_id = ?")
            params.append(unique_id)
        if model is not None:
            where.append("model = ?")
            params.append(model)
        sql = "SELECT * FROM forecasts" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY as_of, unique_id, ds"
        with self._locked():
            self._clean_temps()
            try:
                with self._db() as con:
                    self._reconcile(con)
                    frame = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
            except ForecastDbBusy:  # the mirror is open elsewhere (a duckdb shell): read the truth itself
                frame = self._read_parquet(as_of=as_of, unique_id=unique_id, model=model)
        qcols = quantile_columns(frame.columns)
        frame = frame.cast({"step": pl.Int32, "as_of": pl.Datetime("us"), "ds": pl.Datetime("us"),
                            "created_at": pl.Datetime("us"), **{q: pl.Float64 for q in qcols}})
        keep = [q for q in qcols if frame.height and frame[q].null_count() < frame.height]
        return frame.select(published_order(keep))

    def _read_parquet(self, *, as_of: datetime | None, unique_id: str | None, model: str | None) -> pl.DataFrame:
        """`read` from the Parquet partitions (called under the lock, so each file is whole)."""
        parts = self._partitions()
        if as_of is not None:
            parts = {k: v for k, v in parts.items() if k == _norm_ts(as_of)}
        frames = []
        for path in parts.values():
            try:
                frames.append(pl.read_parquet(path))
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise PublishError(f"published partition {path} cannot be read ({type(exc).__name__}: {exc})") from exc
        if not frames:
            return _empty_frame()
        frame = pl.concat(frames, how="diagonal_relaxed")
        if unique_id is not None:
            frame = frame.filter(pl.col("unique_id") == unique_id)
        if model is not None:
            frame = frame.filter(pl.col("model") == model)
        return frame.sort("as_of", "unique_id", "ds")

    def as_ofs(self) -> list[datetime]:
        """Published as_ofs (from the Parquet partitions, the source of truth), oldest first."""
        return list(self._partitions())

    def has(self, as_of: datetime) -> bool:
        return (self.parquet_dir / _partition_name(as_of) / PART_NAME).exists()

    def receipt_of(self, as_of: datetime) -> dict[str, str]:
        """The flowcast metadata stored with a partition (content_hash, run_id, model, ...)."""
        path = self.parquet_dir / _partition_name(as_of) / PART_NAME
        if not path.exists():
            raise PublishError(f"nothing published for as_of {_norm_ts(as_of).isoformat()} in {self.parquet_dir}")
        return _parquet_meta(path)

def _parquet_meta(path: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return {k.decode().removeprefix(_META_PREFIX): v.decode() for k, v in meta.items()
            if k.decode().startswith(_META_PREFIX)}


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
