"""Migration of a store written before forecasts were keyed by dataset.

Before, the embedded store kept one partition per as_of, `forecasts/as_of=<iso>/part-0.parquet`,
without a `dataset` column, and `forecasts.duckdb` held a copy in tables. Migration moves each
such partition to `forecasts/dataset=<name>/as_of=<iso>/part-<seq>-<tag>.parquet`, adding the `dataset`
column and recomputing the content hash (which now covers the dataset; the old one is kept as
`content_hash_before_dataset`, the old location as `migrated_from`), then removes the old file.
Every row is kept; the DuckDB tables become views over the migrated files (duckdb_views).

Which dataset an old as_of belongs to (the old files do not say), in this order:
1. `store.legacy_dataset` when configured (`FLOWCAST_STORE__LEGACY_DATASET`): every old as_of;
2. the source recorded in the registry with the model version that published it (the retrain
   flow registers each version with its source name);
3. for as_ofs published by a baseline (no model version) or a version no longer in the
   registry: the one source that the others were resolved to, when they all agree (a home
   used for a single dataset, the normal case before this change);
4. otherwise `default`.

It is crash-safe and idempotent: the new file is written whole (rename) before the old one is
removed; when both exist (a crash in between) the new one wins, readers never see both, and the
next migration only removes the old file. Writers run it under the store's `migrate` lock;
readers never migrate: until a writer has migrated, they show the old partitions under the
dataset they will be migrated to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from flowcast.store.contract import published_order
from flowcast.store.hashing import content_hash
from flowcast.store.parquet import ParquetDataset
from flowcast.timekeys import utc_text

DEFAULT_DATASET = "default"
Resolver = Callable[[dict[str, str]], str | None]


@dataclass
class Migrated:
    as_of: datetime
    dataset: str
    rows: int
    source: str  # the old file
    why: str  # how the dataset was chosen


def legacy_names(ds: ParquetDataset, legacy: dict[datetime, str], *, explicit: str | None,
                 resolve: Resolver | None) -> dict[datetime, tuple[str, str]]:
    """{as_of: (dataset, why)} for the old partitions (rules in the module doc)."""
    if explicit:
        return {a: (explicit, "store.legacy_dataset") for a in legacy}
    found: dict[datetime, str | None] = {}
    for as_of, path in legacy.items():
        name = None
        if resolve is not None:
            try:
                name = resolve(ds.metadata(path))
            except Exception:  # noqa: BLE001 - an unreadable footer or registry entry: rule 3/4 decide
                name = None
        found[as_of] = name
    agreed = {n for n in found.values() if n}
    fallback = (next(iter(agreed)), "the only dataset of the other as_ofs") if len(agreed) == 1 else (
        DEFAULT_DATASET, "unknown (no model version recorded in the registry)")
    return {a: ((n, "source of its model version in the registry") if n else fallback) for a, n in found.items()}


def migrate_legacy(ds: ParquetDataset, *, explicit: str | None, resolve: Resolver | None) -> list[Migrated]:
    """Move every old partition into the dataset-keyed layout (call under the migrate lock)."""
    legacy = ds.legacy_partitions()
    if not legacy:
        return []
    names = legacy_names(ds, legacy, explicit=explicit, resolve=resolve)
    done = []
    for as_of, old in legacy.items():
        dataset, why = names[as_of]
        if ds.current("forecasts", dataset, as_of) is not None:  # a crash after the copy, or a newer publish
            ds.remove_legacy(old)
            continue
        meta = ds.metadata(old)
        frame = ds.read(old)
        frame = frame.with_columns(pl.lit(dataset, dtype=pl.Utf8).alias("dataset"))
        frame = frame.select(published_order(frame.columns))
        rel = old.removeprefix(ds.root).lstrip("/")
        new_meta = {**{f"flowcast.{k}": v for k, v in meta.items()},
                    "flowcast.dataset": dataset, "flowcast.content_hash": content_hash(frame),
                    "flowcast.content_hash_before_dataset": meta.get("content_hash", ""),
                    "flowcast.migrated_from": rel, "flowcast.rows": str(frame.height),
                    "flowcast.n_series": str(frame["unique_id"].n_unique())}
        if "as_of" not in meta:
            new_meta["flowcast.as_of"] = as_of.isoformat()
        ds.write("forecasts", dataset, as_of, frame, new_meta, what=f"migrated forecasts of as_of {utc_text(as_of)}")
        ds.remove_legacy(old)
        done.append(Migrated(as_of=as_of, dataset=dataset, rows=frame.height, source=rel, why=why))
    return done
