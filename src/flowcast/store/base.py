"""What every forecast store shares: the receipt, the interface, the fault hook and the
preparation of a publish (validate, label, hash), so that backends differ only in how they
write and read.

The interface (`ForecastStore`) is the shared contract of TEAM.md: forecasts keyed by
(dataset, as_of), atomic replace of one key, and the realized-accuracy table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

from flowcast.errors import AlreadyPublished, SamePublished
from flowcast.interrupts import fault_point
from flowcast.store.contract import (
    check_labels,
    published_frame,
    storage_ts,
    validate_forecasts,
    value_columns,
)
from flowcast.store.hashing import content_hash
from flowcast.timekeys import utc_text

META_PREFIX = "flowcast."


def fault(point: str) -> None:
    """Test-only fault injection, a no-op unless FLOWCAST_FAULT=publish:<point>.

    Embedded store points, in order: after_parquet_tmp (temp file written, not yet fsynced),
    mid_upload (object stores: part of a multipart upload sent), before_rename, after_rename
    (the partition is in place, the DuckDB views not yet checked), in_views (the views created in
    DuckDB, not committed). PostgreSQL points:
    in_transaction (after DELETE), before_commit (after INSERT), after_commit; delete_before_commit (a delete's
    rows deleted, not committed); realized_before_commit (`write_realized`'s rows written, not committed, its locks
    held). The process
    SIGKILLs itself there (a real kill -9: no cleanup, no atexit), or stops there with FLOWCAST_FAULT_SIGNAL=SIGSTOP
    (`interrupts.fault_point`)."""
    fault_point(f"publish:{point}")


@dataclass
class PublishReceipt:
    dataset: str
    as_of: datetime
    rows: int
    n_series: int
    model: str
    model_version: str | None
    run_id: str
    replaced_rows: int
    content_hash: str
    location: str  # where the rows landed: a Parquet file or URL, or the PostgreSQL table
    parquet_path: Path | str | None = None  # the partition file (embedded store)
    duckdb_path: Path | None = None  # the DuckDB file whose views read the Parquet dataset (local, views made)
    quantile_cols: list[str] = field(default_factory=list)  # every value column (quantiles, intervals)
    ignored_columns: list[str] = field(default_factory=list)
    previous_content_hash: str | None = None  # of the forecasts this publish replaced, if any
    models: list[str] = field(default_factory=list)  # distinct per-row models (fallbacks included)
    notes: list[str] = field(default_factory=list)  # things the operator should know (a busy DuckDB file)

    @property
    def unchanged(self) -> bool:
        """True when this publish replaced identical content (a re-run with the same inputs)."""
        return self.previous_content_hash == self.content_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "as_of": self.as_of.isoformat(),
            "rows": self.rows,
            "n_series": self.n_series,
            "model": self.model,
            "model_version": self.model_version,
            "run_id": self.run_id,
            "replaced_rows": self.replaced_rows,
            "content_hash": self.content_hash,
            "location": self.location,
            "parquet_path": None if self.parquet_path is None else str(self.parquet_path),
            "duckdb_path": None if self.duckdb_path is None else str(self.duckdb_path),
            "quantile_cols": list(self.quantile_cols),
            "ignored_columns": list(self.ignored_columns),
            "previous_content_hash": self.previous_content_hash,
            "unchanged": self.unchanged,
            "models": list(self.models),
            "notes": list(self.notes),
        }


@runtime_checkable
class ForecastStore(Protocol):
    """Forecasts keyed by (dataset, as_of) and the realized-accuracy table. `publish(..., if_absent=True)`
    writes only into a key that holds nothing, checked under the key's lock (in the publish transaction):
    AlreadyPublished, naming what the key holds, and nothing written otherwise. `refuse_if(held)`: the same, only
    when the key holds a publish for which it returns True (called under the key's lock with that publish's
    receipt: a scheduled retrain refuses a key another run of its slot retrained, replaces any other publish).
    `keep_same`: a key that holds these very forecasts (the same content hash, its rows read back whole where the
    store keeps them in a file) is left as it is: SamePublished, naming the run that published them, nothing
    written (a re-run, or a second run at once, of an as_of whose forecasts did not change). `delete(..., then=f)`:
    f() is called under the key's lock once something was removed (on PostgreSQL after the delete's commit), so no
    publish of the key lands before it returns (gc removes the deleted publish's record there).
    `unless_published(dataset, as_of, f)`: f() under the key's lock when the key holds no publish (gc removes a
    record a delete killed before its f left). `while_published(dataset, as_of, content_hash, f, run_id=R)`: f()
    under the same lock only while the key holds the publish of that content hash, made by the run R when given
    (False, nothing called, once it was deleted or replaced, also by another run's publish of the same forecasts):
    what belongs to that publish alone (its record) is never written after a delete removed the publish, nor over the
    record of the publish that replaced it. On an object store, where a key's lock can be broken by a waiter (its
    holder stopped past store.lock_timeout), each f() is called only while the lock is still held (LockLostError
    otherwise), as is delete's f() on PostgreSQL, whose session lock goes with a connection cut after the commit. `current_publishes()`: every published key and a token of the publish it holds now, which another
    publish of the key changes, in one listing (a reader of every receipt reads again only the keys whose token
    changed: `ops.retention.PublishIndex`)."""

    location: str

    def publish(self, forecasts: pl.DataFrame, *, dataset: str, as_of: datetime, model: str,
                model_version: str | None, run_id: str, created_at: datetime, last_ds: pl.DataFrame | None = None,
                expected_ids: list[str] | None = None, horizon: int | None = None,
                before_visible: Callable[[str], None] | None = None,
                trained_as_of: datetime | None = None, lookahead: bool | None = None, if_absent: bool = False,
                refuse_if: Callable[[dict[str, str]], bool] | None = None,
                keep_same: bool = False) -> PublishReceipt: ...

    def read(self, *, dataset: str | None = None, as_of: datetime | None = None, unique_id: str | None = None,
             model: str | None = None, rows: int | None = None) -> pl.DataFrame: ...

    def read_batches(self, *, dataset: str | None = None, as_of: datetime | None = None,
                     unique_id: str | None = None, model: str | None = None,
                     size: int = 50_000) -> Iterator[pl.DataFrame]: ...

    def read_summary(self, columns: Callable[[str], bool], *, dataset: str | None = None,
                     as_of: datetime | None = None, unique_id: str | None = None,
                     model: str | None = None) -> pl.DataFrame: ...

    def as_ofs(self, dataset: str) -> list[datetime]: ...

    def datasets(self) -> list[str]: ...

    def has(self, dataset: str, as_of: datetime) -> bool: ...

    def receipt_of(self, dataset: str, as_of: datetime) -> dict[str, str]: ...

    def current_publishes(self) -> dict[tuple[str, datetime], str]: ...

    def delete(self, dataset: str, as_of: datetime, *, then: Callable[[], None] | None = None) -> bool: ...

    def unless_published(self, dataset: str, as_of: datetime, then: Callable[[], None]) -> bool: ...

    def while_published(self, dataset: str, as_of: datetime, content_hash: str, then: Callable[[], None], *,
                        run_id: str | None = None) -> bool: ...

    def write_realized(self, dataset: str, frame: pl.DataFrame, *, scored: dict[datetime, str] | None = None) -> int: ...

    def rewrite_realized(self, dataset: str, scored: dict[datetime, str],
                         change: Callable[[pl.DataFrame], pl.DataFrame]) -> list[datetime]: ...

    def read_realized(self, dataset: str | None = None, as_of: datetime | None = None) -> pl.DataFrame: ...


@dataclass
class Prepared:
    """A validated publish, ready to write."""

    frame: pl.DataFrame
    dataset: str
    as_of: datetime
    model: str
    model_version: str | None
    run_id: str
    created_at: datetime
    digest: str
    n_series: int
    vcols: list[str]
    ignored: list[str]
    models: list[str]
    trained_as_of: datetime | None = None  # where the model's training data ended (None: unknown, a baseline)
    lookahead: bool | None = None  # that data ended after what a run at as_of observed (None: unknown, older)

    def metadata(self) -> dict[str, str]:
        """Key-value metadata stored with the partition (the embedded store's receipt)."""
        p = META_PREFIX
        return {
            f"{p}content_hash": self.digest, f"{p}run_id": self.run_id, f"{p}model": self.model,
            f"{p}model_version": self.model_version or "", f"{p}dataset": self.dataset,
            f"{p}as_of": self.as_of.isoformat(), f"{p}created_at": self.created_at.isoformat(),
            f"{p}rows": str(self.frame.height), f"{p}n_series": str(self.n_series),
            f"{p}trained_as_of": "" if self.trained_as_of is None else self.trained_as_of.isoformat(),
            f"{p}lookahead": lookahead_text(self.lookahead),
        }

    def receipt(self, **kw: Any) -> PublishReceipt:
        return PublishReceipt(
            dataset=self.dataset, as_of=self.as_of, rows=self.frame.height, n_series=self.n_series, model=self.model,
            model_version=self.model_version, run_id=self.run_id, content_hash=self.digest,
            quantile_cols=self.vcols, ignored_columns=self.ignored, models=self.models, **kw,
        )


def prepare(forecasts: pl.DataFrame, *, dataset: str, as_of: datetime, model: str, model_version: str | None,
            run_id: str, created_at: datetime, last_ds: pl.DataFrame | None = None,
            expected_ids: list[str] | None = None, horizon: int | None = None,
            trained_as_of: datetime | None = None, lookahead: bool | None = None) -> Prepared:
    """Validate (nothing is written for a bad or empty forecast), label and hash one publish. `trained_as_of`:
    where the publishing model version's training data ended, kept with the publish (its receipt), so that
    realized accuracy knows whether those forecasts saw their actuals after the version is gone. `lookahead`:
    whether that data ended after what a run at as_of observed (`flows.forecast.saw_after`), kept likewise: what
    realized accuracy's `lookahead` reads first (None: not known; a receipt of an older flowcast has none)."""
    as_of, created_at = storage_ts(as_of), storage_ts(created_at)
    check_labels(dataset=dataset, as_of=as_of, model=model, run_id=run_id)
    valid = validate_forecasts(forecasts, as_of=as_of, last_ds=last_ds, expected_ids=expected_ids, horizon=horizon)
    frame = published_frame(valid, dataset=dataset, as_of=as_of, model=model, model_version=model_version,
                            run_id=run_id, created_at=created_at)
    return Prepared(
        frame=frame, dataset=dataset, as_of=as_of, model=model, model_version=model_version, run_id=run_id,
        created_at=created_at, digest=content_hash(frame), n_series=frame["unique_id"].n_unique(),
        vcols=value_columns(valid.columns), ignored=[c for c in forecasts.columns if c not in valid.columns],
        models=sorted(frame["model"].unique().to_list()),
        trained_as_of=None if trained_as_of is None else storage_ts(trained_as_of), lookahead=lookahead,
    )


def lookahead_text(flag: bool | None) -> str:
    """A receipt's `lookahead` as text: 'true', 'false', '' where not known (`receipt_lookahead` reads it)."""
    return "" if flag is None else "true" if flag else "false"


def receipt_lookahead(receipt: dict[str, str]) -> bool | None:
    """The `lookahead` a receipt records (`lookahead_text`); None where it records none (a publish of an older
    flowcast, a baseline's, one whose model recorded no end of its data)."""
    return {"true": True, "false": False}.get(str(receipt.get("lookahead") or "").lower())


def already_published(dataset: str, as_of: datetime, held: dict[str, str]) -> AlreadyPublished:
    """The AlreadyPublished error of a publish with `if_absent` into a key that holds `held` (its receipt)."""
    return AlreadyPublished(f"dataset {dataset} as_of {utc_text(as_of)} is published already (run "
                            f"{held.get('run_id') or 'unknown'}, {held.get('model_version') or held.get('model')}): "
                            "nothing was written", held)


def same_published(dataset: str, as_of: datetime, held: dict[str, str]) -> SamePublished:
    """The SamePublished error of a publish with `keep_same` into a key that holds the same forecasts (`held`)."""
    return SamePublished(f"dataset {dataset} as_of {utc_text(as_of)} already holds these forecasts (run "
                         f"{held.get('run_id') or 'unknown'}, {held.get('model_version') or held.get('model')}, "
                         f"{held.get('rows')} rows, the same content hash): nothing was written", held)
