"""The tune flow: the hyperparameter search alone (`flowcast tune`), and the step the retrain
flow runs first when `[tuning] enabled` (`flowcast run --budget N`).

The search itself is `flowcast.models.tuning.tune` (plain function); here it becomes a task
with a tag shared with training (so it never fights a training run for the same devices), its
trials become two artifacts (table, and the outcome with the optimisation history plot), and
its choice becomes the run's `[model]` settings.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flowcast import reporting
from flowcast.config import Settings, SourceConfig, with_overrides
from flowcast.evaluation.metrics import metric_name
from flowcast.flows.common import (
    crash_on_interrupt,
    fails_without_a_result,
    flow_settings,
    load_data,
    resolve_as_of,
    run_identity,
    source_tz,
)
from flowcast.flows.naming import run_name
from flowcast.flows.tasks import TRAINING_TAG
from flowcast.ops.hooks import on_run_failure
from flowcast.source_secrets import flow

if TYPE_CHECKING:
    from flowcast.models.tuning import TuningResult


@task(name="tune", tags=[TRAINING_TAG], cache_policy=NO_CACHE, task_run_name="tune hyperparameters")
def tune_task(td: Any, settings: Settings, out_dir: Path, horizon: int, budget_minutes: float | None = None,
              n_trials: int | None = None) -> TuningResult:
    """The search over the validation window before the leaderboard's; trials under `out_dir`."""
    from flowcast.models.tuning import tune

    log = get_run_logger()

    def on_trial(row: dict[str, Any]) -> None:
        value = f"{row['value']:.4g}" if row["value"] is not None else f"{row['state'].lower()} ({row['stopped']})"
        log.info(f"trial {row['number']}: {value} ({row['cell']}, lookback {row['lookback']}, hidden "
                 f"{row['hidden_size']}x{row['num_layers']}, {row['mode']}, {row['loss']}, {row['max_steps']} steps, "
                 f"lr {row['lr']:.2g})")

    return tune(td, settings, out_dir, horizon=horizon, budget_minutes=budget_minutes, n_trials=n_trials,
                on_trial=on_trial)


def tuned_settings(settings: Settings, td: Any, horizon: int, run_dir: Path, budget_minutes: float | None = None,
                   n_trials: int | None = None) -> tuple[Settings, Any]:
    """Run the search and return (settings with its choice applied to [model], the TuningResult).
    When no trial completed, the settings are returned unchanged."""
    log = get_run_logger()
    budget = budget_minutes if budget_minutes is not None else settings.tuning.budget_minutes
    from flowcast.models.tuning import minutes_text

    log.info(f"Tuning hyperparameters for up to {minutes_text(budget)} on the validation window before the leaderboard's")
    result = tune_task(td, settings, run_dir / "tuning", horizon, budget, n_trials)
    reporting.tuning_artifacts(result)
    for note in result.notes:
        log.warning(note)
    if not result.best_params:
        return settings, result
    log.info(f"Best of {result.trials.height} trials: {metric_name(result.metric)}={result.best_value:.4g} with "
             + ", ".join(f"{k}={v}" for k, v in result.best_params.items()))
    return with_overrides(settings, model=result.model_overrides()), result


@flow(name="tune", flow_run_name=run_name, log_prints=False, validate_parameters=True, on_failure=[on_run_failure])
@fails_without_a_result
@crash_on_interrupt
def tune_flow(
    as_of: datetime | date | str | None = None,
    dataset: str | None = None,
    source: SourceConfig | None = None,
    horizon: int | None = None,
    budget_minutes: float | None = None,
    n_trials: int | None = None,
    config_file: str | None = None,
    home: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Search [tuning]'s space for the best [model] settings on the data up to `as_of`, within
    `budget_minutes` (default tuning.budget_minutes); nothing is trained for production, registered
    or published. The result names the settings to put under [model]."""
    settings = flow_settings(config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon,
                             overrides=overrides)
    as_of = resolve_as_of(as_of, source_tz(settings))
    run_id, _ = run_identity(settings.home)
    # the data a retrain tunes on: the lookback and validation span fitted to it (`flowcast run --budget` runs
    # this same search; without the fitting, `flowcast tune` searched other spans, and on short series none fit)
    data = load_data(settings, as_of, fit_spans=True)
    settings = data.settings or settings
    run_dir = settings.home / "runs" / f"{as_of:%Y%m%dT%H%M%S}-{run_id[:8]}"
    # scored on what a retrain would rank on: RMSSE for data classed intermittent, unless evaluation.metric is given
    from flowcast.evaluation.intermittency import classify, intermittent_settings

    settings, notes = intermittent_settings(settings, classify(data.td.frame))
    for note in notes:
        get_run_logger().info(note)
    _, result = tuned_settings(settings, data.td, data.horizon, run_dir, budget_minutes, n_trials)
    summary = result.summary()
    return {"as_of": as_of.isoformat(), "run_id": run_id, "dataset": data.source.name, "horizon": data.horizon,
            **summary, "notes": [*notes, *summary.get("notes", [])], "trials_dir": str(result.out_dir)}
