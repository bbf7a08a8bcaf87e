"""The retrain flow: ingest, validate, preprocess, train each model family, backtest against
the baselines and the production model, select, register, promote, forecast, publish.

Training cost: each family is trained once for the backtest, on the data up to the first
(oldest) backtest cutoff, so no window's actuals are ever seen in training; that model scores
every window. Only the family that will publish (the promoted challenger) is then retrained on
all data up to as_of, registered and promoted: the others lost, and retraining them would
double the cost of a run for models nobody uses. `refit_all=True` retrains and registers every
family (each then trains twice), for users who want every family in the registry. Reusing
the backtest model for production would publish from a model that never saw the last
`horizon x n_windows` periods.

The incumbent is scored on the same windows by predicting them with its frozen weights. It
was trained on data up to its own as_of, which may include those windows: that favours the
incumbent, so a challenger that wins anyway is really better.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger

from flowcast import reporting
from flowcast.config import Cell, SourceConfig
from flowcast.errors import TrainingError
from flowcast.flows import tasks
from flowcast.flows.common import flow_settings, load_data, publish_forecasts, resolve_as_of, run_identity
from flowcast.models.baselines import BASELINES

INCUMBENT = "incumbent"


def _neural_fit(settings, out_root: Path, cell: str, horizon: int):
    """fit(td) for backtest: train `cell` on td, return a forecaster predicting any cut of it."""

    def fit(td_train):
        progress = reporting.TrainingProgress(f"{cell}-backtest", label=f"Training {cell} for the backtest")
        artifact = tasks.train_task(td_train, settings, out_root / f"{cell}-backtest", cell, progress)
        progress.done()
        return lambda td_cut: tasks.predict_task(artifact, td_cut, horizon)

    return fit


def _baseline_fit(name: str, horizon: int):
    def fit(_td_train):
        from flowcast.models.baselines import baseline_forecast

        return lambda td_cut: baseline_forecast(name, td_cut, horizon)

    return fit


def _frozen_fit(artifact: Any, horizon: int):
    def fit(_td_train):
        from flowcast.models.predict import predict

        return lambda td_cut: predict(artifact, td_cut, horizon=horizon)

    return fit


def _board_json(board: pl.DataFrame) -> list[dict[str, Any]]:
    keep = [c for c in ("model", "rank", "smape", "mase", "mae", "rmse", "finite") if c in board.columns]
    return [
        {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        for row in board.select(keep).to_dicts()
    ]


def _print_board(log, board: pl.DataFrame, metric: str) -> None:
    lines = [f"Leaderboard (by {metric}, lower is better):"]
    for row in board.iter_rows(named=True):
        s = " ".join(f"{m}={row[m]:.4g}" if row.get(m) is not None else f"{m}=n/a" for m in ("smape", "mase"))
        lines.append(f"  {row.get('rank') or '-'}. {row['model']:<16} {s}")
    log.info("\n".join(lines))


@flow(name="retrain", log_prints=False, validate_parameters=True)
def retrain_flow(
    as_of: datetime | None = None,
    dataset: str | None = None,
    source: SourceConfig | None = None,
    models: list[Cell] | None = None,
    horizon: int | None = None,
    max_steps: int | None = None,
    promote: bool = True,
    refit_all: bool = False,
    config_file: str | None = None,
    home: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Retrain every model family on the data up to `as_of`, backtest them against the
    baselines and the production model, promote the winner if it really is better, and
    publish the production model's forecasts for `as_of`.

    Args:
        as_of: run key, ONE instant: only observations with ds <= as_of are used. An ISO
            timestamp; without a UTC offset it means UTC (2019-06-01T09:00 is 09:00 UTC,
            2019-06-01T09:00+10:00 is 23:00 UTC the day before). Default: the run's scheduled
            start time.
        dataset: a bundled or configured dataset name to read.
        source: an explicit source to read (overrides dataset).
        models: families to train (default: config model.cells).
        promote: False keeps the production pointer untouched (backfills of past dates) and
            publishes this run's own best model or baseline instead of the production model.
        refit_all: also retrain and register the families that did not win (each family then
            trains twice); by default only the winner is retrained on all data.
        overrides: any nested settings, e.g. {"model": {"hidden_size": 32}}.
    """
    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, models=models,
        max_steps=max_steps, overrides=overrides,
    )
    as_of = resolve_as_of(as_of)
    run_id, started = run_identity()
    log.info(f"Retraining {', '.join(settings.model.cells)} as of {as_of:%Y-%m-%d %H:%M} (run {run_id})")

    data = load_data(settings, as_of)
    td, h = data.td, data.horizon
    run_dir = settings.home / "runs" / f"{as_of:%Y%m%dT%H%M%S}-{run_id[:8]}"
    if settings.tuning.enabled:  # the search's choice becomes this run's [model] settings
        from flowcast.flows.tune import tuned_settings

        settings, _ = tuned_settings(settings, td, h, run_dir)
    ev = settings.evaluation

    from flowcast.evaluation.selection import leaderboard, select
    from flowcast.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir)
    incumbent = registry.production() if promote else None

    # -- backtest: every family, both baselines and the incumbent on the same windows
    log.info(f"Backtesting on {ev.n_windows} window(s) of {h} periods per series")
    results = []
    for cell in settings.model.cells:
        results.append(tasks.backtest_task(td, _neural_fit(settings, run_dir, cell, h), cell, settings, h))
    for name in BASELINES:
        results.append(tasks.backtest_task(td, _baseline_fit(name, h), name, settings, h))
    if incumbent is not None:
        from flowcast.models.train import ModelArtifact

        log.info(f"Scoring the production model {incumbent.version} on the same windows")
        try:
            results.append(tasks.backtest_task(td, _frozen_fit(ModelArtifact.load(incumbent.path), h), INCUMBENT,
                                               settings, h))
        except TrainingError as exc:  # e.g. the data's covariates changed since it was trained
            log.warning(f"The production model {incumbent.version} cannot forecast this data ({exc}); "
                        "it is left out of the comparison, a challenger only has to beat the baseline")
            incumbent = None
    board = leaderboard(results, ev.metric)
    decision = select(
        board, metric=ev.metric, margin=ev.margin, incumbent=INCUMBENT if incumbent is not None else None,
        candidates=list(settings.model.cells),
    )

    # -- production candidates, trained on all data up to as_of and registered: the family that
    # will publish (the promoted challenger, or with promote=False this run's best if it beat the
    # baseline); every family with refit_all=True
    versions: dict[str, Any] = {}
    metrics_of = {r["model"]: r for r in board.to_dicts()}
    publishes = decision.challenger if decision.promote else None
    refit = [c for c in settings.model.cells if refit_all or c == publishes]
    skipped = [c for c in settings.model.cells if c not in refit]
    if skipped:
        log.info(f"Not retraining {', '.join(skipped)} on all data: only the winner is (refit_all=False)")
    for cell in refit:
        log.info(f"Training {cell} on all data up to {as_of:%Y-%m-%d} for production")
        progress = reporting.TrainingProgress(cell, label=f"Training {cell} on all data")
        artifact = tasks.train_task(td, settings, run_dir / cell, cell, progress)
        progress.done()
        mv = tasks.register_task(
            settings.models_dir, artifact.path, name=cell, config=settings.model.model_dump(mode="json"),
            fingerprint={"source": data.source.name, "fingerprint": data.fingerprint, "as_of": as_of.isoformat()},
            metrics={k: v for k, v in metrics_of.get(cell, {}).items() if k in ("smape", "mase", "mae", "rmse", "rank")},
            as_of=as_of, created_at=started,
        )
        versions[cell] = mv
        log.info(f"Registered {cell} as {mv.version}")

    # -- decide what publishes
    inc_label = f"{incumbent.version}" if incumbent is not None else None
    md = decision.to_markdown()
    if inc_label:
        md += f"\n\n`{INCUMBENT}` is the production model **{inc_label}**."
    note = ""
    if promote and decision.promote and decision.challenger in versions:
        winner = versions[decision.challenger]
        tasks.promote_task(settings.models_dir, winner.version, "; ".join(decision.reasons))
        log.info(f"Promoted {winner.version} to production: {decision.reasons[0] if decision.reasons else ''}")
        md += f"\n\nPromoted **{winner.version}** to production."
    elif promote:
        log.info("No promotion: " + "; ".join(decision.reasons))
        md += f"\n\nProduction stays {'**' + inc_label + '**' if inc_label else 'empty'}."
    reporting.decision_artifact(md)

    if promote:
        production = registry.production()
        chosen = None if production is None else (production.name, production.version, production.path)
    else:  # this run's own best: its best family if it beat the baseline, else handled below
        best = decision.challenger if decision.promote else None
        chosen = None if best is None else (best, versions[best].version, versions[best].path)

    if chosen is not None:
        from flowcast.models.train import ModelArtifact

        name, version, path = chosen
        forecasts = tasks.predict_task(ModelArtifact.load(path), td, h)
        champion = version
    else:
        ranked = board.filter(pl.col("model").is_in(list(BASELINES)) & pl.col("finite")).sort("rank")
        name = ranked["model"][0] if ranked.height else "seasonal_naive"
        version = None  # a baseline is not in the registry
        forecasts = tasks.baseline_task(name, td, h)
        champion = name
        note = (f"No production model exists (no trained model beat the baseline yet): "
                f"published the best baseline, {name}.")
        log.warning(note)
    reporting.leaderboard_artifact(board, ev.metric, champion=champion)
    _print_board(log, board, ev.metric)

    receipt = publish_forecasts(settings, data, forecasts, as_of=as_of, model=name, model_version=version, note=note)
    return {
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "dataset": data.source.name,
        "n_series": td.n_series,
        "rows_in": data.rows_in,
        "rows_valid": data.rows_valid,
        "rows_quarantined": data.rows_quarantined,
        "horizon": h,
        "leaderboard": _board_json(board),
        "decision": {"promote": bool(decision.promote), "challenger": decision.challenger,
                     "reasons": list(decision.reasons)},
        "registered": {c: v.version for c, v in versions.items()},
        "champion": champion,
        "published_rows": int(receipt.rows),
        "store": str(settings.warehouse_dir.resolve()),
        "parquet": str(receipt.parquet_path),
        "duckdb": str(receipt.duckdb_path),
        "note": note,
    }
