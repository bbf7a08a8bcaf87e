"""Hyperparameter search within a time budget: Optuna (TPE sampler, median or Hyperband pruning)
over the backtest's validation window, never the windows the leaderboard scores.

The leaderboard scores the last `horizon + (n_windows - 1) * step` periods of every series. The
search sees only the data before them (`tuning_data`): each trial trains on that data less its
last `horizon` periods (the validation window) and is scored on that window, with the run's
metric, on the original scale. While a trial trains, its validation loss on the same window is
reported to the pruner at every validation check, so poor trials stop early; a trial still
training when the budget runs out is stopped and recorded as pruned.

Searched (each one a list of choices or a [low, high] range in `[tuning]`): lookback, hidden
size, layers, dropout, learning rate (log scale), steps, training mode, loss, and the cell.
`TuningResult.model_overrides()` is what a run applies to `[model]` (the cell is not: every cell
trains with the chosen settings); `tuned_data` fits the network's minimum series length to the
chosen lookback as preprocessing fits it to a configured one (with `short_series="exclude"` a
longer lookback leaves more series to the statistical models). Trials are written to `out_dir`
(`trials.parquet`, the Optuna journal `study.log` that `optuna.load_study` reads, `best.json`,
`history.png`).

Plain functions, no Prefect: the flow `flowcast.flows.tune.tune_flow` and the retrain flow wrap
`tune`, and `flowcast.reporting.tuning_artifacts` shows the trials in the UI.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from flowcast.atomic import atomic_write_parquet, atomic_write_text
from flowcast.errors import TrainingError
from flowcast.wording import noun

if TYPE_CHECKING:
    from flowcast.config import Settings
    from flowcast.data.training_data import TrainingData

TUNED = ("cell", "lookback", "hidden_size", "num_layers", "dropout", "lr", "max_steps", "mode", "loss")


@dataclass
class TuningResult:
    best_params: dict[str, Any]  # {} when no trial completed: the configured model is kept
    best_value: float | None
    metric: str
    trials: pl.DataFrame  # number, state, value, seconds, one column per parameter
    budget_minutes: float
    seconds: float
    out_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def model_overrides(self) -> dict[str, Any]:
        """The `[model]` settings the search chose (all but the cell)."""
        return {k: v for k, v in self.best_params.items() if k != "cell"}

    @property
    def n_complete(self) -> int:
        return int((self.trials["state"] == "COMPLETE").sum()) if self.trials.height else 0

    def summary(self) -> dict[str, Any]:
        states = self.trials["state"].value_counts().rows() if self.trials.height else []
        return {"metric": self.metric, "best_value": self.best_value, "best_params": self.best_params,
                "trials": self.trials.height, "states": dict(states), "budget_minutes": self.budget_minutes,
                "seconds": round(self.seconds, 1), "notes": self.notes}


def tuning_data(td: TrainingData, settings: Settings, horizon: int) -> TrainingData:
    """The data before the leaderboard's windows: what every trial may see (its last `horizon`
    periods are the validation window). Raises TrainingError when nothing would be left."""
    ev = settings.evaluation
    step = int(ev.step or horizon)
    leaderboard_span = horizon + (ev.n_windows - 1) * step
    longest = int(cast(int, td.lengths()["length"].max()) or 0)
    if longest <= leaderboard_span + horizon + 1:
        raise TrainingError(
            f"too little history to tune: the longest series has {longest} periods, the leaderboard holds out "
            f"{leaderboard_span} and the search needs {horizon} more for its validation window plus training data"
        )
    keep = td.lengths().filter(pl.col("length") > leaderboard_span + horizon)["unique_id"]
    if keep.len() < td.n_series:  # series too short for a validation window take no part in the search
        from dataclasses import replace

        frame = td.frame.filter(pl.col("unique_id").is_in(keep.implode()))
        scalers = td.scalers.filter(pl.col("unique_id").is_in(keep.implode()))
        static = td.static.filter(pl.col("unique_id").is_in(keep.implode())) if td.static is not None else None
        td = replace(td, frame=frame, scalers=scalers, static=static)
    cut, _ = td.holdout(leaderboard_span)
    from dataclasses import replace

    return replace(cut, meta=replace(cut.meta, val_size=horizon))


def tuned_data(settings: Settings, td: TrainingData) -> tuple[TrainingData, list[str]]:
    """`td` for the tuned `[model]` settings: the network's minimum length fitted to the tuned
    lookback as preprocessing fits it to a configured one (`TrainingData.with_lookback`), and a
    note when that moves series between the network and the statistical models."""
    lookback, was = int(settings.model.lookback), int(td.meta.lookback)
    if lookback == was:
        return td, []
    fitted = td.with_lookback(lookback, settings.preprocess.short_series)
    need, before = int(fitted.meta.min_length), int(td.meta.min_length)
    if need == before:
        return fitted, []
    short = int((td.lengths()["length"] < need).sum())
    note = (f"The tuned lookback {lookback} (configured {was}) needs {need} periods a series for a network "
            f"(short_series={settings.preprocess.short_series!r}; {before} before): {short} of {td.n_series} series "
            "are shorter and forecast by the statistical models that can run on them.")
    return fitted, [note]


def _with_lookback(td: TrainingData, lookback: int, val_size: int) -> TrainingData:
    """`td` whose meta carries the trial's lookback and validation span (training reads them from
    the data's meta). The network's minimum length stays the one preprocessing fitted: a trial
    trains on the series the run's network would; the retrain refits it to the lookback the search
    chose (`tuned_data`)."""
    from dataclasses import replace

    return replace(td, meta=replace(td.meta, lookback=lookback, val_size=val_size))


def suggest(trial: Any, settings: Settings, horizon: int, longest: int) -> dict[str, Any]:
    """One point of the search space (`[tuning]`), as `[model]` settings plus the cell."""
    sp = settings.tuning
    cells = list(sp.cells or settings.model.cells)
    lookbacks = sorted({int(v) for v in (sp.lookback or [m * horizon for m in (1, 2, 3, 4, 5)])})
    fitting = [v for v in lookbacks if v <= max(longest - 2 * horizon, 1)] or lookbacks[:1]
    return {
        "cell": trial.suggest_categorical("cell", cells),
        "lookback": trial.suggest_categorical("lookback", fitting),
        "hidden_size": trial.suggest_categorical("hidden_size", list(sp.hidden_size)),
        "num_layers": trial.suggest_categorical("num_layers", list(sp.num_layers)),
        "dropout": trial.suggest_float("dropout", *sp.dropout),
        "lr": trial.suggest_float("lr", *sp.lr, log=True),
        "max_steps": trial.suggest_int("max_steps", *sp.max_steps, step=sp.steps_step),
        "mode": trial.suggest_categorical("mode", list(sp.mode)),
        "loss": trial.suggest_categorical("loss", list(sp.loss)),
    }


def _pruning_callback(trial: Any, deadline: float):
    import lightning as L

    class ReportAndPrune(L.Callback):
        """Reports val_loss after each validation; stops training when the pruner says so or the
        budget is spent (the trial is then recorded as pruned)."""

        pruned = False
        reason = ""

        def on_validation_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                return
            loss = trainer.callback_metrics.get("val_loss")
            if loss is None or not math.isfinite(float(loss)):
                return
            trial.report(float(loss), step=int(trainer.global_step))
            if trial.should_prune():
                self.pruned, self.reason, trainer.should_stop = True, "pruned", True

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if time.monotonic() > deadline:
                self.pruned, self.reason, trainer.should_stop = True, "budget", True

    return ReportAndPrune()


def _pruner(kind: str, max_steps: int):
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, max_steps // 10))
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, max_steps // 10), max_resource=max_steps)
    return optuna.pruners.NopPruner()


def tune(
    td: TrainingData, settings: Settings, out_dir: str | Path, *, horizon: int | None = None,
    budget_minutes: float | None = None, n_trials: int | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> TuningResult:
    """Search `[tuning]`'s space for the `[model]` settings with the best validation score.

    budget_minutes (default `tuning.budget_minutes`) bounds the whole search: no trial starts
    after it and a running one stops. n_trials (default `tuning.n_trials`) stops it earlier.
    `on_trial` is called with each finished trial's row (for progress reporting)."""
    import optuna

    from flowcast.evaluation.backtest import backtest
    from flowcast.models.predict import predict
    from flowcast.models.train import fit

    sp = settings.tuning
    h = int(horizon or td.meta.horizon)
    budget = float(budget_minutes if budget_minutes is not None else sp.budget_minutes)
    if budget <= 0:
        raise TrainingError(f"the tuning budget must be positive, got {budget} minutes")
    n_trials = n_trials if n_trials is not None else sp.n_trials
    metric = settings.evaluation.metric
    data = tuning_data(td, settings, h)
    longest = int(cast(int, data.lengths()["length"].max()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = out / "study.log"
    journal.unlink(missing_ok=True)
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(
        study_name="flowcast", direction="minimize", storage=storage,
        sampler=optuna.samplers.TPESampler(seed=sp.seed, n_startup_trials=sp.n_startup_trials),
        pruner=_pruner(sp.pruner, int(sp.max_steps[1])),
    )
    t0 = time.monotonic()
    deadline = t0 + budget * 60
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, settings, h, longest)
        started = time.monotonic()
        cfg = settings.model.model_copy(update={
            **{k: v for k, v in params.items() if k != "cell"}, "launcher": "inline", "seed": sp.seed,
            "early_stopping_patience": None, "blend": {},
        })
        cb = _pruning_callback(trial, deadline)
        trial_data = _with_lookback(data, int(params["lookback"]), h)
        try:
            art = fit(trial_data, cfg, out / f"trial-{trial.number:03d}", cell=params["cell"], extra_callbacks=[cb])
        except TrainingError as exc:  # e.g. diverged: a failed point of the space, not a failed search
            trial.set_user_attr("error", str(exc)[:300])
            raise optuna.TrialPruned(f"training failed: {exc}") from exc
        finally:
            trial.set_user_attr("seconds", round(time.monotonic() - started, 2))
        if cb.pruned:
            trial.set_user_attr("stopped", cb.reason)
            raise optuna.TrialPruned(cb.reason)
        assert art is not None  # fit returns None only on DDP ranks other than 0, and tuning runs on one
        res = backtest(trial_data, lambda _td: (lambda cut: predict(art, cut, h)), name="trial", n_windows=1,
                       horizon=h)
        value = res.summary.get(metric)
        if value is None or not math.isfinite(value):
            trial.set_user_attr("error", f"non-finite {metric}")
            raise optuna.TrialPruned(f"non-finite {metric}")
        return float(value)

    def after(study_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        row = _trial_row(trial)
        rows.append(row)
        if on_trial is not None:
            on_trial(row)

    remaining = max(1.0, deadline - time.monotonic())
    study.optimize(objective, n_trials=n_trials, timeout=remaining, callbacks=[after], catch=())
    seconds = time.monotonic() - t0
    trials = _trials_frame(study)
    notes: list[str] = []
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        best_params, best_value = dict(best.params), float(cast(float, best.value))
    else:
        best_params, best_value = {}, None
        failed = [str(t.user_attrs["error"]) for t in study.trials if t.user_attrs.get("error")]
        if study.trials and len(failed) == len(study.trials):  # not the budget: every trial failed, say why
            notes.append(f"no trial completed: all {len(failed)} failed (e.g. {failed[0]}); the configured [model] "
                         "settings are kept")
        else:
            notes.append(f"no trial completed within {minutes_text(budget)}: the configured [model] settings are kept")
    result = TuningResult(best_params=best_params, best_value=best_value, metric=metric, trials=trials,
                          budget_minutes=budget, seconds=seconds, out_dir=out, notes=notes)
    atomic_write_parquet(trials, out / "trials.parquet")  # a kill mid-write leaves the old file or the new
    atomic_write_text(out / "best.json", json.dumps(result.summary(), indent=2, default=str))
    plot_history(trials, out / "history.png", metric)
    return result


def minutes_text(minutes: float) -> str:
    """'1 minute', '0.5 minutes', '2 minutes': a tuning budget as the notes and log say it (newuser52: 'no trial
    completed within 1 minutes')."""
    return f"{minutes:g} {noun(minutes, 'minute')}"


def _trial_row(t: Any) -> dict[str, Any]:
    # a pruned trial's own value is its last intermediate (validation loss, scaled): not the metric
    return {"number": t.number, "state": t.state.name, "value": t.value if t.state.name == "COMPLETE" else None,
            "seconds": t.user_attrs.get("seconds"), "stopped": t.user_attrs.get("stopped") or t.user_attrs.get("error"),
            **{k: t.params.get(k) for k in TUNED}}


def _trials_frame(study: Any) -> pl.DataFrame:
    rows = [_trial_row(t) for t in study.trials]
    schema = {"number": pl.Int64, "state": pl.Utf8, "value": pl.Float64, "seconds": pl.Float64, "stopped": pl.Utf8,
              "cell": pl.Utf8, "lookback": pl.Int64, "hidden_size": pl.Int64, "num_layers": pl.Int64,
              "dropout": pl.Float64, "lr": pl.Float64, "max_steps": pl.Int64, "mode": pl.Utf8, "loss": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def plot_history(trials: pl.DataFrame, path: str | Path, metric: str) -> Path | None:
    """Optimisation history: each completed trial's score and the best so far, by trial number."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt


    done = trials.filter(pl.col("state") == "COMPLETE").sort("number")
    if done.is_empty():
        return None
    x, v = done["number"].to_list(), done["value"].to_list()
    best = [min(v[: i + 1]) for i in range(len(v))]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.scatter(x, v, s=14, color="C0", label=f"trial {metric}")
    ax.step(x, best, where="post", color="C3", label="best so far")
    pruned = trials.filter(pl.col("state") == "PRUNED")["number"].to_list()
    for p in pruned:
        ax.axvline(p, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("trial (grey: pruned)")
    ax.set_ylabel(metric)
    ax.set_title("Optimisation history", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    from flowcast.reporting import save_figure

    return save_figure(fig, path)
