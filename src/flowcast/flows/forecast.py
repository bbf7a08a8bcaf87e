"""The forecast flow: the production model forecasts the data up to as_of and publishes.

No training. When no model is in production yet it fails with one sentence telling the user
to run the retrain flow first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger

from flowcast.config import SourceConfig
from flowcast.errors import RegistryError
from flowcast.flows import tasks
from flowcast.flows.common import flow_settings, load_data, publish_forecasts, resolve_as_of, run_identity


@flow(name="forecast", validate_parameters=True)
def forecast_flow(
    as_of: datetime | None = None,
    dataset: str | None = None,
    source: SourceConfig | None = None,
    horizon: int | None = None,
    config_file: str | None = None,
    home: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Forecast every series with the production model from the data up to `as_of` and publish
    the forecasts under that as_of.

    Args:
        as_of: run key, ONE instant: only observations with ds <= as_of are used. An ISO
            timestamp; without a UTC offset it means UTC. Default: the run's scheduled start time.
        dataset: a bundled or configured dataset name to read.
        source: an explicit source to read (overrides dataset).
        overrides: any nested settings, e.g. {"publish": {"plot_series": 2}}.
    """
    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, overrides=overrides
    )
    as_of = resolve_as_of(as_of)
    run_id, _ = run_identity()

    from flowcast.data.datasets import resolve_source
    from flowcast.models.train import ModelArtifact
    from flowcast.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    production = registry.production()
    if production is None:
        versions = [v.version for v in registry.list()]
        hint = (f"put a registered version in production with `flowcast models promote VERSION` (registered: "
                f"{', '.join(versions[-5:])})" if versions else
                "run the retrain flow first (`flowcast run`); it promotes a model only when one beats the "
                "seasonal-naive baseline, and `flowcast backfill --mode retrain` needs no production model")
        raise RegistryError(f"no production model in {settings.models_dir}: {hint}")
    artifact = ModelArtifact.load(production.path)
    if settings.horizon is None and resolve_source(settings).horizon is None:
        # no horizon given or declared: the production model's own, not the frequency's default
        # (a model trained with --horizon 7 cannot forecast the 14 days a daily default asks for)
        model_h = artifact.meta.get("horizon") or artifact.hparams.get("horizon")
        if model_h:
            settings = settings.model_copy(update={"horizon": int(model_h)})
    log.info(f"Forecasting as of {as_of:%Y-%m-%d %H:%M} with the production model {production.version}")
    data = load_data(settings, as_of)
    forecasts = tasks.predict_task(artifact, data.td, data.horizon)
    receipt = publish_forecasts(
        settings, data, forecasts, as_of=as_of, model=production.name, model_version=production.version
    )
    return {
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "dataset": data.source.name,
        "n_series": data.td.n_series,
        "rows_in": data.rows_in,
        "rows_valid": data.rows_valid,
        "rows_quarantined": data.rows_quarantined,
        "model": production.name,
        "model_version": production.version,
        "published_rows": int(receipt.rows),
        "store": str(settings.warehouse_dir.resolve()),
        "parquet": str(receipt.parquet_path),
        "duckdb": str(receipt.duckdb_path),
    }
