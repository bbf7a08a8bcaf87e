"""Quiet schedules: a forecast run that would publish what the last publish already holds.

A daily forecast schedule on monthly data would publish a new as_of every day with the same
forecasts. With `publish.skip_unchanged` the forecast flow first compares with the dataset's
latest publish before its as_of: when every series' next period to forecast is the one that
publish started from (no new observation arrived, no series came or went), the horizon is the
same and the production model is the one that published it, the run says so, emits
`flowcast.forecast.unchanged` and publishes nothing. A re-run of an as_of that is published
is not compared with itself (it replaces it, as before), and a retrain always publishes. Data
with planned values of future-known covariates always publishes: a plan (a price, a weather
forecast) can change without any new observation, and the forecast with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from flowcast.data.calendar import shift
from flowcast.errors import PublishError


def previous_as_of(published: list[datetime], as_of: datetime) -> datetime | None:
    """The latest published as_of strictly before `as_of` (None: nothing earlier)."""
    earlier = [a for a in published if a < as_of]
    return max(earlier) if earlier else None


def unchanged_reason(
    previous: pl.DataFrame,
    last_ds: pl.DataFrame,
    *,
    freq: str,
    horizon: int,
    model_version: str | None,
    previous_as_of: datetime,
    dataset: str,
    planned_rows: int = 0,
) -> str | None:
    """A sentence saying why nothing new would be published, or None when something changed.

    previous: the rows published at `previous_as_of` (unique_id, ds, step, model_version);
    last_ds: unique_id, last_ds of the data this run sees; planned_rows: its planned rows of
    future-known covariates (any: the plans may have changed, so it publishes)."""
    if previous.height == 0 or planned_rows:
        return None
    first = previous.filter(pl.col("step") == 1).select("unique_id", pl.col("ds").cast(pl.Datetime("us")))
    nxt = last_ds.select(
        pl.col("unique_id").cast(pl.Utf8),
        shift(pl.col("last_ds").cast(pl.Datetime("us")), 1, freq).alias("ds"),
    )
    if first.height != previous["unique_id"].n_unique() or first.height != nxt.height:
        return None
    joined = nxt.join(first, on="unique_id", how="full", coalesce=True, suffix="_prev")
    if joined.filter(pl.col("ds").is_null() | pl.col("ds_prev").is_null() | (pl.col("ds") != pl.col("ds_prev"))).height:
        return None
    if int(previous["step"].max()) != horizon:  # type: ignore[arg-type]
        return None
    versions = set(previous["model_version"].to_list()) if "model_version" in previous.columns else {None}
    if versions != {model_version}:
        return None
    return (f"no new observation of {dataset} since its last publish (as_of {previous_as_of.isoformat()}): the "
            f"{nxt.height} series' next periods, the horizon ({horizon}) and the production model "
            f"({model_version or 'none'}) are the same, so nothing new is published")


def skip_if_unchanged(settings: Any, data: Any, as_of: datetime, model_version: str | None) -> str | None:
    """For the forecast flow: the reason when this run would publish nothing new (and then emit
    `flowcast.forecast.unchanged`), else None. Reads the dataset's latest earlier publish."""
    from flowcast import events
    from flowcast.store import open_store
    from flowcast.timekeys import storage_naive

    store = open_store(settings)
    dataset = data.source.name
    prev = previous_as_of(store.as_ofs(dataset), storage_naive(as_of))
    if prev is None:
        return None
    try:
        previous = store.read(dataset=dataset, as_of=prev)
    except PublishError as exc:  # a damaged earlier partition must not stop this as_of from publishing
        from prefect import get_run_logger

        get_run_logger().warning(f"Not compared with the last publish of {dataset} (as_of {prev.isoformat()}): "
                                 f"{exc}. This as_of publishes.")
        return None
    td = data.td
    reason = unchanged_reason(previous, td.lengths().select("unique_id", "last_ds"), freq=td.meta.freq,
                              horizon=data.horizon, model_version=model_version, previous_as_of=prev,
                              dataset=data.source.name,
                              planned_rows=0 if td.future_exog is None else td.future_exog.height)
    if reason is not None:
        events.emit(events.UNCHANGED, dataset=data.source.name, as_of=as_of, message=reason,
                    previous_as_of=prev, model_version=model_version)
    return reason
