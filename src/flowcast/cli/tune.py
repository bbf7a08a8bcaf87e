"""`flowcast tune`: the hyperparameter search alone, as a Prefect flow run (its trials and the
optimisation history show in the UI). Prints the best settings and how to keep them."""

from __future__ import annotations

from typing import Annotated

import typer

from flowcast.cli.app import app
from flowcast.cli.common import (
    AsOfOpt,
    ConfigOpt,
    HomeOpt,
    HorizonOpt,
    JsonOpt,
    SourceOptions,
    call_flow,
    cli_errors,
    emit_json,
    flow_as_of,
    interrupted_afterwards,
    out,
    resolve_settings,
    source_options,
)

BudgetOpt = Annotated[float | None, typer.Option("--budget", help="minutes the search may take (tuning.budget_minutes)")]
TrialsOpt = Annotated[int | None, typer.Option("--trials", help="stop after this many trials")]


@app.command()
@cli_errors
@source_options
def tune(
    *,
    source: SourceOptions,
    horizon: HorizonOpt = None,
    as_of: AsOfOpt = None,
    budget: BudgetOpt = None,
    trials: TrialsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search the networks' hyperparameters within a time budget (Optuna TPE + pruning).

    Lookback, hidden size, layers, dropout, learning rate, steps, mode and loss, scored on the validation window
    before the backtest's windows."""
    from flowcast.cli.pipeline import _flow_source_args, _prefect_console, _run_tags

    settings = resolve_settings(
        **source.settings_args(), horizon=horizon, config=config, home=home, as_of=as_of,
        tuning={"budget_minutes": budget, "n_trials": trials},  # checked here, before a Prefect server starts
    )
    from flowcast import interrupts
    from flowcast.flows.tune import tune_flow

    before = interrupts.received()
    with _prefect_console(settings.home), _run_tags("tune"):
        result = call_flow(tune_flow, as_of=flow_as_of(as_of, settings), horizon=horizon, budget_minutes=budget,
                           n_trials=trials, config_file=str(config) if config else None,
                           **_flow_source_args(settings, source.data))
    # a Ctrl-C Prefect swallowed as the run completed: said after what the run did (`flowcast run` alike)
    late = (f"after the tune run completed ({result.get('run_id')}): its {result.get('trials')} trials are stored in "
            f"{result.get('trials_dir')}" if interrupts.received() > before else "")
    if json_out:
        emit_json({**result, **({"interrupted": True} if late else {})})
        interrupted_afterwards(late)
        return
    head, best = summary_lines(result)
    out.print(head, highlight=False)
    for note in result["notes"]:
        out.print(note, highlight=False)
    if best:
        out.print(best, highlight=False)
        for k, v in result["best_params"].items():
            if k != "cell":
                out.print(f"{k} = {v!r}".replace("'", '"'), highlight=False)
        out.print(f"# best cell: {result['best_params'].get('cell')}", highlight=False)
    out.print(f"Trials: {result['trials_dir']}", highlight=False)
    interrupted_afterwards(late)


def summary_lines(result: dict) -> tuple[str, str | None]:
    """The tune run's first line and its best-trial line, the metric named as the leaderboard names it ('snaive
    MASE', 'naive RMSSE'; it read 'scored by mase'); one trial is '1 trial' (newuser52: '1 trials')."""
    from flowcast.evaluation.metrics import metric_name
    from flowcast.reporting import metric_header
    from flowcast.wording import plural

    head = (f"{result['dataset']}: {plural(result['trials'], 'trial')} in {result['seconds']:.0f} s "
            f"(budget {result['budget_minutes']:g} min), scored by {metric_header(result['metric'])}")
    best = (None if result["best_value"] is None else
            f"Best {metric_name(result['metric'])} {result['best_value']:.4g}. Keep it in flowcast.toml:\n[model]")
    return head, best
