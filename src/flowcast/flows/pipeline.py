"""The retrain flow: ingest, validate, preprocess, backtest every candidate on the same windows,
decide, build the winner, check its forecasts, promote (compare and swap), publish.

Every decision is a pure function under `flowcast.evaluation` (candidates, combine, conformal,
selection, decision); this flow only trains, calls them and writes what they chose. Its stages:
`retrain_scoring.score_candidates` (or `nothing_to_score`) backtests and decides, `_Builder`
turns the chosen candidate into a model and checks its forecasts, `_register` registers it.

Training cost: each network member (cell x seed) is trained once for the backtest, on the data up
to the first (oldest) backtest cutoff, so no window's actuals are ever seen in training; that
model forecasts every window. Only the members of the candidate that will publish are then
retrained on all data up to as_of (a statistical winner trains nothing). `refit_all=True` also
retrains and registers every network cell.

When every series has a single observation nothing can be backtested: naive (the last resort,
the one model that forecasts from one observation) publishes without a leaderboard and without
intervals, promoted only when nothing is in production (`decision.last_resort_decision`).

The production model is scored fairly (`evaluation.incumbent`): with its frozen weights only on
windows after its training data ended, or, when no such window exists (auto) or when asked
(refit), its recipe refit on this run's windows like every challenger; its networks reuse this
run's backtest members when their configuration is the same. The decision artifact says which.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from prefect import get_run_logger

from flowcast import reporting
from flowcast.config import Cell, Settings, SourceConfig
from flowcast.errors import (
    AlreadyPublished,
    ProductionMovedError,
    RegistryError,
    SamePublished,
    TrainingError,
)
from flowcast.evaluation.metrics import metric_name
from flowcast.figures import score_or_na
from flowcast.flows import tasks
from flowcast.flows.common import (
    RUN_COUNT_KEYS,
    SlotRetrained,
    artifact_scope,
    crash_on_interrupt,
    expire_aged,
    fails_without_a_result,
    flow_fault,
    flow_settings,
    load_data,
    publish_forecasts,
    published_already,
    resolve_as_of,
    retrained_already,
    run_counts,
    run_identity,
    says_what_it_skipped,
    source_tz,
    store_label,
    withdraw_unpublished_winner,
    withdrawn_unsaid,
)
from flowcast.flows.forecast import saw_after
from flowcast.flows.naming import run_name, task_label
from flowcast.flows.parameters import DatasetChoice, RunOverrides
from flowcast.flows.retrain_scoring import (
    Bounds,
    Scored,
    backtest_data,
    nothing_to_score,
    registered_intervals,
    score_candidates,
    warm_settings,
)
from flowcast.flows.retrain_scoring import train_member as _train_member
from flowcast.ops.accuracy import realized_json, record_in_run
from flowcast.ops.hooks import on_run_failure
from flowcast.registry import PIN_TTL_HOURS, Kept, Pin
from flowcast.source_secrets import flow
from flowcast.timekeys import storage_naive, utc_text

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData
    from flowcast.evaluation.decision import ForecastCheck
    from flowcast.flows.retrain_scoring import Log
    from flowcast.models.recipes import Recipe, RecipeForecast
    from flowcast.registry import ModelRegistry, ModelVersion, Promotion

# `_Builder.build` trains through this module's `_train_member` (a seam: tests wrap the refit on all data)
_LISTED = 100  # series listed by name in a run's summary (fallbacks, excluded); the counts are complete



# the keys of the retrain flow's result (`flowcast run --json`, a deployment run's result), the same on every path it
# ends by: published, skipped as it started (its slot retrained or its date published already), skipped after it
# computed (another run of its slot or date published first: under the key's lock, or production moved to that run's
# promotion). A key a path cannot know is null: a run skipped as it started read no data. (review20: the early
# return had 8 keys, the two later skips 16 and 20 and the published result lacked `skipped`, `published_by` and
# `retrained_by`: the result changed shape with the way the run ended, as the forecast flow's did: FORECAST_KEYS)
RETRAIN_KEYS = ("as_of", "run_id", "dataset", "n_series", "rows_in", "rows_valid", "rows_quarantined", *RUN_COUNT_KEYS,
                "horizon", "leaderboard", "decision", "registered", "champion", "model_version", "kind",
                "fallback_series", "fallbacks", "excluded", "series_excluded", "spans", "published_rows", "models",
                "skipped", "retrained_by", "published_by", "realized", "store", "parquet", "duckdb", "note")


def _retrain_result(**values: Any) -> dict[str, Any]:
    """A retrain flow result with every key of RETRAIN_KEYS, in that order (null where not given; skipped false)."""
    unknown = sorted(set(values) - set(RETRAIN_KEYS))
    if unknown:  # a key added on one path only: add it to RETRAIN_KEYS, so that every path has it
        raise ValueError(f"retrain result keys not in RETRAIN_KEYS: {', '.join(unknown)}")
    return {k: values.get(k, False if k == "skipped" else None) for k in RETRAIN_KEYS}


def _board_json(board: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        for row in board.to_dicts()
    ]


BOARD_MARK = "<- to publish"  # the log's leaderboard, written before the publish: its winner is to be published


def retraining_line(cells: Sequence[str], statistical: Sequence[str], as_of: datetime, run_id: str) -> str:
    """The run log's first line: what this retrain trains, its networks and its statistical models
    (`evaluation.statistical`). A statistical-only run (`--models none`) said 'Retraining no networks as of ...', as
    if it retrained nothing."""
    networks = ", ".join(cells)
    stats = f"the statistical models {', '.join(statistical)}" if statistical else ""
    what = (f"{networks} and {stats}" if networks and stats else networks or
            (f"{stats} (no network: model.cells is empty)" if stats else "no model (no network, no statistical model)"))
    return f"Retraining {what} as of {utc_text(as_of)} (run {run_id})."


def _print_board(log, board: pl.DataFrame, metric: str, published: str | None) -> None:
    # the metrics by their display names, as the leaderboard artifacts write them ('by mase', 'smape=' read otherwise)
    # `published`: the model this run is to publish, marked BOARD_MARK (it said '<- published' before the publish, and
    # a refused publish's log then read as if it had published: `_print_board_follow_up` says what came of it)
    # an interval column blank for every candidate is left out, as the artifact and the printed table leave it (a
    # short backtest's log read `cov95=n/a MSIS=n/a` on every row, srcmsg46); figures as every figure is written
    empty = reporting.empty_interval_scores(board)
    shown = [m for m in ("smape", "mase", "rmsse", "coverage80", "coverage95", "msis")
             if m in board.columns and m not in empty]
    head = f"ranked by {reporting.metric_header(metric)}, lower is better" + (
        "; coverage on windows not used to calibrate" if {"coverage80", "coverage95"} & set(shown) else "")
    lines = [f"Leaderboard ({head}):"]
    for row in board.iter_rows(named=True):
        s = " ".join(f"{metric_name(m)}={score_or_na(row[m])}" for m in shown)
        mark = f"  {BOARD_MARK}" if row["model"] == published else ""
        lines.append(f"  {row.get('rank') or '-'}. {row['model']:<15} {row['kind']:<11} {s}{mark}")
    log.info("\n".join(lines))


def _ended_backtest_note(data: Any, scored: Scored, freq: str) -> str | None:
    """The run's note on the ended series preprocessing set aside (`freshness.ended_backtest_note`): in no backtest
    window, and how many of them a window's cut came before; None when none was set aside or nothing was backtested."""
    from flowcast.data.freshness import ended_backtest_note

    ended = (getattr(data.report, "preprocess", None) or {}).get("ended")
    if not ended or not scored.backtested or not scored.candidates:
        return None
    f = scored.candidates[0].result.forecasts
    oldest = f.filter(pl.col("window") == pl.col("window").min())["cutoff"].max() if f.height else None
    if isinstance(oldest, date) and not isinstance(oldest, datetime):  # a Date ds
        oldest = datetime.combine(oldest, datetime.min.time())
    return ended_backtest_note(ended, oldest if isinstance(oldest, datetime) else None, freq)


def _print_board_follow_up(log, model: str, version: str, *, withdrawn: bool, published_by: str | None = None) -> None:
    """A refused publish: the log's leaderboard (`_print_board`, before the publish) marked `model` to publish; one
    line says it was not published, in the words of the leaderboard artifact's follow-up version. `published_by`
    (the run that published, '' where unknown): the as_of held these very forecasts, so this run published nothing
    (its log said nothing after '<- to publish', ops53)."""
    if published_by is not None:
        from flowcast.evaluation.decision import published_nothing_text

        log.info(f"Leaderboard: {model} ({version}), marked '{BOARD_MARK}' above: {reporting.ALREADY_PUBLISHED_MARK}. "
                 f"{published_nothing_text(published_by)}.")
        return
    mark = reporting.WITHDRAWN_MARK if withdrawn else reporting.NOT_PUBLISHED_MARK
    log.warning(f"Leaderboard: {model} ({version}), marked '{BOARD_MARK}' above: {mark}")


@dataclass
class _Builder:
    """The scored candidates as models to publish, for `decision.first_publishable` to try down
    the board: `build` makes one (its networks trained on all data up to as_of, each at most once
    a run), `attempt` forecasts every series with it, `check` says whether those forecasts are fit
    to publish."""

    settings: Settings
    scored: Scored
    td: TrainingData
    horizon: int
    bounds: Bounds
    as_of: datetime
    run_dir: Path
    scope: reporting.Scope
    production: ModelVersion | None
    log: Log
    trained: dict[str, Path] = field(default_factory=dict)  # member key -> its model trained on all data

    def build(self, name: str) -> Any:
        """The candidate as a model: a registered version (production) or a recipe whose networks
        are trained on all data, written to an artifact directory."""
        from flowcast.evaluation.candidates import PRODUCTION, give_kept_short
        from flowcast.models.recipes import Recipe, kind_of, last_resort_recipe, load_recipe

        sc, td, h, ev = self.scored, self.td, self.horizon, self.settings.evaluation
        if not sc.backtested:  # nothing was scored: the last resort, without intervals to calibrate
            return last_resort_recipe(horizon=h, season_length=td.meta.season_length,
                                      intervals_note="not calibrated: every series had a single observation, so there "
                                      "were no backtest residuals")
        by_name, fallback, fallback_cal, metric = sc.by_name, sc.fallback, sc.fallback_cal, sc.metric
        if name == PRODUCTION:  # as registered; one from before intervals gets them from this backtest
            recipe = load_recipe(self.production)
            if not registered_intervals(recipe) and by_name[PRODUCTION].calibration:
                recipe.intervals = {**fallback_cal, **recipe.intervals, recipe.name: by_name[PRODUCTION].calibration}
                recipe.fallback = recipe.fallback or list(fallback)
            # its short series take this run's short calibration, in the recipe it publishes (later forecasts too):
            # the recipe's own, the production candidate's part (its own forecasts from the short cuts, labelled
            # 'production', not the part of a candidate of the recipe's name: another comb's, or naive's); each
            # fallback model's the part on its own forecasts where this run made one, else naive's
            give_kept_short(recipe.intervals, recipe.name, by_name[PRODUCTION].calibration,
                            [c.calibration for c in sc.candidates] + list(fallback_cal.values()))
            return recipe
        cand = by_name[name]
        comps_out: list[dict[str, Any]] = []
        weights: list[float] = []
        art_dir = self.run_dir / "candidates" / name
        shutil.rmtree(art_dir, ignore_errors=True)
        for (_label, keys), w in zip(cand.spec.groups, cand.weights):
            if w <= 0:  # a member the learned weights left out is not trained for production
                continue
            for key in keys:
                member = next((m for m in sc.plan.members if m.key == key), None)
                if member is None:
                    comps_out.append({"type": "statistical", "model": key})
                else:
                    if key not in self.trained:
                        s_ = warm_settings(sc.member_settings[key], self.run_dir / f"{key}-backtest")
                        how = (f", from its backtest weights (at most {s_.model.max_steps} steps)" if s_.model.init_from
                               else "")
                        # named as its task and its 'Trained gru all data' line name it (it said 'rnn-s0', ui25)
                        self.log.info(f"Training {sc.labels[key]} on all data up to {utc_text(self.as_of)} for "
                                      f"production{how}")
                        art = _train_member(td, s_, self.run_dir / key, member.cell,
                                            task_label(sc.labels[key], final=True), self.scope)
                        sc.started.extend([art.start_note] if art.start_note else [])  # (the run's notes: read after)
                        self.trained[key] = art.path
                    dest = art_dir / "members" / key
                    dest.mkdir(parents=True, exist_ok=True)
                    for f in ("model.ckpt", "meta.json"):
                        shutil.copy2(self.trained[key] / f, dest / f)
                    comps_out.append({"type": "network", "cell": member.cell, "seed": member.seed,
                                      "path": f"members/{key}"})
                weights.append(w / len(keys))
        total = sum(weights)
        weights = [w / total for w in weights]
        intervals = {name: cand.calibration, **{s: fallback_cal[s] for s in fallback if s != name}}
        extra = {"horizon": h, "metric": metric, "season_length": td.meta.season_length}
        if len(cand.spec.groups) > 1:
            extra["weights_note"] = cand.spec.note or learned_weights_note(ev.n_windows, metric)
        recipe = Recipe(name=name, kind=kind_of(comps_out), components=comps_out, weights=weights,
                        fallback=[s for s in fallback if s != name], intervals=intervals,
                        base=art_dir if any(c["type"] == "network" for c in comps_out) else None, extra=extra)
        if recipe.base is not None:
            recipe.save(art_dir)
        return recipe

    def attempt(self, name: str) -> tuple[Any, RecipeForecast]:
        model = self.build(name)
        return model, tasks.forecast_task(model, self.td, self.horizon, self.bounds)

    def check(self, fc: Any) -> ForecastCheck:
        from flowcast.evaluation.decision import check_forecasts

        return check_forecasts(fc.frame, expected_ids=self.td.ids, horizon=self.horizon, bounds=self.bounds,
                               fallbacks=fc.fallbacks, max_fallback_share=self.settings.evaluation.max_fallback_share,
                               require_intervals=self.scored.backtested, no_interval=fc.unscaled,
                               constant=fc.constant)


def _production_model(registry: ModelRegistry, dataset: str, log: Log) -> ModelVersion | None:
    """The dataset's production model, the one this run's candidates are compared against."""
    try:
        return registry.production(dataset)
    except RegistryError as exc:  # a pointer to a version deleted by hand: say so, compare against nothing
        log.warning(f"{exc}; this run compares its candidates without a production model")
        return None


def _check_production_unmoved(registry: ModelRegistry, dataset: str, expected: str | None) -> None:
    """A run that leaves production alone publishes only while production is still `expected`: when
    another run promoted meanwhile, this run's decision compared against a model that is no longer
    in production, and its forecasts would replace the other run's under the same as_of."""
    from flowcast.errors import ProductionMovedError

    now = registry.production(dataset)
    if (now.version if now is not None else None) != expected:
        raise ProductionMovedError(
            f"production of {dataset} moved while this run was deciding: it started from "
            f"{expected or 'no production model'} and is now {now.version if now else 'empty'}; this run, which left "
            f"{expected or 'it'} in production, registers and publishes nothing (run again to compare against the new "
            "production model)")


def _withdraw_unpublished(settings: Settings, registry: ModelRegistry, dataset: str, version: str,
                          as_of: datetime, at: datetime, exc: BaseException, log: Log, run: str | None = None) -> None:
    """The publish of a run that promoted `version` failed (a full disk, a store error): unless the
    forecasts were published all the same, the promotion is undone in one registry transaction
    (compare and swap), and the run fails with the publish's error. A run killed between its
    promotion and its publish cannot do this: its re-run for the same as_of publishes."""
    from flowcast.store import open_store

    held: dict[str, Any] | None = None
    with contextlib.suppress(Exception):
        receipt = open_store(settings).receipt_of(dataset, as_of)
        if receipt is not None and receipt.get("model_version") == version:
            return  # published: the promotion stands
        held = receipt or None
    from flowcast.errors import ProductionMovedError

    why = f"its publish for as_of {utc_text(as_of)} failed: {exc}"
    try:
        now = registry.withdraw(version, dataset=dataset, at=at, reason=why, run=run)  # (its own pin: not in use)
    except ProductionMovedError:  # another run promoted over it meanwhile: out of the stack under that promotion
        try:
            out = registry.retract(version, dataset=dataset, at=at, reason=why)
        except Exception as undo:  # noqa: BLE001 - the publish's error is the run's; this one is said
            log.error(f"{version} stays in the production stack of {dataset} under a later promotion although its "
                      f"forecasts for {utc_text(as_of)} were not published: taking it out failed ({undo}); a "
                      "rollback would put it back")
            return
        log.error(f"{version}'s forecasts for {utc_text(as_of)} could not be published and production of {dataset} "
                  "moved meanwhile: " + (f"{version} was taken out of the production stack of {dataset} (a rollback "
                                         "skips it)" if out else f"{version} is no longer in its production stack"))
        return
    except Exception as undo:  # noqa: BLE001 - the publish's error is the run's; this one is said
        if held is not None and held.get("model_version"):  # refused (overwrite off): a re-run cannot publish it
            log.error(f"{version} stays in production of {dataset} although its forecasts for {utc_text(as_of)} "
                      f"were not published (the as_of holds {held.get('model_version')}'s, run "
                      f"{held.get('run_id')}): withdrawing it failed ({undo}). Once the registry can be written, run "
                      "this date or slot again (overwrite off): it finds the as_of published and withdraws "
                      f"{version}; or `flowcast run --as-of {as_of.isoformat()}` retrains it and publishes")
            return
        log.error(f"{version} stays in production of {dataset} although its forecasts for "
                  f"{utc_text(as_of)} were not published: withdrawing it failed ({undo}); run again for this "
                  f"as_of to publish, or `flowcast models rollback --dataset {dataset}`")
        return
    log.error(f"{version} was withdrawn from production of {dataset} because its forecasts for {utc_text(as_of)} "
              f"could not be published; production is {now or 'empty'} again (run again for this as_of)")


def _undo_champion(registry: ModelRegistry, dataset: str, version: str, *, as_of: datetime, at: datetime, late: str,
                   log: Log, held_version: str | None = None, run: str | None = None) -> tuple[str, bool]:
    """A retrain that does not promote (a backfill's date), overwrite off, whose publish was refused under the key's
    lock (another run published the date while this one computed): its winner, recorded as a champion of the date
    in its registration, must not stay so with forecasts that were never published. The record is withdrawn and
    the version removed (no publish names it). (A run that promoted had its promotion withdrawn under the
    registry's lock in the publish itself: `PublishGuard.refuse`.) Unless what the key holds was made by that very
    version (`held_version`: a forecast run of this as_of, whose production model was trained after it, took the
    newest champion of data up to it, this run's, and published first): its forecasts are published, so it stands,
    as `PublishGuard.refuse` leaves a promotion whose model the other run published with. `run`: this run, named in
    the `withdraw_champion` event (a retrain that skips the date writes the follow-up decision this run, killed right
    after the withdrawal, could not: `withdrawn_unsaid`). Returns (the sentence saying what was done, whether the
    champion was withdrawn)."""
    if held_version is not None and held_version == version:
        said = (f"Its champion {version} stays: the forecasts published for as_of {utc_text(as_of)} were made by it "
                "(the other run forecast with this run's champion).")
        log.info(said)
        return said, False
    why = f"its forecasts for as_of {utc_text(as_of)} were not published: {late}"
    try:
        now = registry.withdraw_champion(version, dataset=dataset, at=at, reason=why, run=run)
    except Exception as undo:  # noqa: BLE001 - the run published nothing; what it could not undo is said
        log.error(f"{version} stays recorded as a champion of {dataset} although its forecasts for {utc_text(as_of)} "
                  f"were not published (another run published the date): withdrawing it failed ({undo}). Once the "
                  "registry can be written, run this date again (overwrite off): it finds the date published and "
                  f"withdraws {version}")
        return f"Withdrawing its champion {version} failed: {undo}.", False
    said = f"Its champion {version} was withdrawn (the recorded champion of {dataset} is {now or 'none'})."
    log.warning(said)
    return said, True


def _take_back_unpublished(registry: ModelRegistry, version: str, *, dataset: str, at: datetime, late: str,
                           run: str, log: Log) -> tuple[str, bool]:
    """A retrain that may promote but decided to publish its winner without promoting it (`decision.action`
    'publish'), whose publish was refused under the key's lock: the version it registered for that publish is
    neither production nor a champion, and no publish names it. It is removed (`delete` refuses one another run
    pins), with a `take_back` event naming `run` (a retrain that skips the date writes the follow-up decision this
    run, killed right after the removal, could not: `withdrawn_unsaid`). Returns (the sentence saying what was done,
    whether it was removed)."""
    try:
        registry.delete(version, at=at, run=run, dataset=dataset,
                        reason=f"its forecasts were not published: {late}")
    except Exception as gone:  # noqa: BLE001 - the run published nothing; what it could not undo is said
        said = f"Its version {version} stays registered: removing it failed ({gone}); `flowcast gc` removes it."
        log.warning(said)
        return said, False
    said = f"Its version {version} was removed (its forecasts were not published)."
    log.warning(said)
    return said, True


def _register(settings: Settings, name: str, recipe: Recipe, *, board: pl.DataFrame, dataset: str,
              fingerprint: dict[str, Any], as_of: datetime, started: datetime, registered: dict[str, str],
              log: Log, then: Promotion | None = None, pin: Pin | None = None,
              intermittent: bool | None = None) -> ModelVersion:
    """Register `recipe` as `name` with its leaderboard row's metrics; `registered` records it.
    `then`: promote it (or record it as the champion), `pin`: pin it for this run, in the same registry
    transaction. `intermittent`: this run's classification of the data, recorded in the recipe (`flowcast
    forecast` cuts the model's forecasts at 0 as this run did: `intermittency.recorded_bounds`)."""
    mv = tasks.register_task(settings, recipe.base, **_registration(settings, name, recipe, board=board, dataset=dataset,
                                                                    fingerprint=fingerprint, as_of=as_of,
                                                                    started=started, intermittent=intermittent),
                             then=then, pin=pin)
    registered[name] = mv.version
    log.info(registered_line(name, recipe.kind, mv.version))
    return mv


def _trained_on(settings: Settings, dataset: str, fingerprint: str, as_of: datetime, run_id: str,
                last_observation: Any = None) -> dict[str, Any]:
    """The data fingerprint the versions a run registers record: its data (`fingerprint`: the source's declaration and
    files, the as_of, the valid rows; `last_observation`: the newest ds of its training data, which a run of data that
    ended long before its as_of names: `ModelVersion.trained_text`), the run, and how preprocessing prepared the data (`tasks.preprocessing_identity`:
    [preprocess], validation.ended_series, the horizon, PREPROCESS_VERSION), none of which the fingerprint or the
    recorded [model] and [evaluation] configuration said: a re-run after an upgrade or a [preprocess] change took over
    the killed run's statistical version, which holds no trained files to differ (`registry.same_registration`)."""
    return {"source": dataset, "fingerprint": fingerprint, "as_of": as_of.isoformat(), "run_id": run_id,
            **({"last_observation": last_observation.isoformat()} if last_observation is not None else {}),
            "preprocessing": tasks.preprocessing_identity(settings)}


def _registration(settings: Settings, name: str, recipe: Recipe, *, board: pl.DataFrame, dataset: str,
                  fingerprint: dict[str, Any], as_of: datetime, started: datetime,
                  intermittent: bool | None = None) -> dict[str, Any]:
    """The arguments `ModelRegistry.register` gets for `recipe` (`_register`), but its artifact directory
    (`recipe.base`) and follow-ups: what a re-run compares a killed run's version with (`_resume_killed`)."""
    from flowcast.evaluation.intermittency import RECIPE_KEY

    row = next((r for r in board.to_dicts() if r["model"] == name), {})  # none: nothing was scored
    metrics = {k: row.get(k) for k in ("rank", "smape", "mase", "rmsse", "mae", "rmse", "coverage80", "coverage95",
                                       "msis")}
    return {"name": name, "dataset": dataset, "kind": recipe.kind,
            "recipe": {**{k: v for k, v in recipe.to_dict().items() if k != "name"},
                       **({RECIPE_KEY: intermittent} if intermittent is not None else {})},
            "config": {**settings.model.model_dump(mode="json"),
                       "evaluation": settings.evaluation.model_dump(mode="json")},
            "fingerprint": fingerprint, "metrics": metrics, "as_of": as_of, "created_at": started}


def _resume_killed(settings: Settings, registry: ModelRegistry, recipe: Recipe, registration: dict[str, Any], *,
                   as_of: datetime, run: str, pin: Pin, then: Promotion | None, log: Log,
                   notes: list[str], said: set[str], which: Callable[[str], bool] = lambda name: True,
                   refit: bool = False) -> ModelVersion | None:
    """Before a retrain registers its winner: the versions a killed run of the same dataset and as_of registered and
    never published (`common.left_by_killed_runs`; a run killed between its registration and its publish, re-run,
    registered a second version of the same model for the same date, e.g. theta-v1 and theta-v2, kept until `flowcast
    gc` after the killed run's pin lapsed, a day later). The one that is provably this run's winner (the same
    training data, configuration, recipe and files, their volatile fields aside: `registry.same_registration`) is
    taken over and returned: this run publishes it instead of registering it again (`ModelRegistry.reuse`, a `reuse`
    event). Any other is taken back first (`ModelRegistry.delete`, a `take_back` event naming both runs and what differs), so the home ends with
    the versions an unkilled run leaves. Each is read again under the registry's lock (`check`): a run that began to
    use it or published it meanwhile keeps it. Returns None when there is nothing to take over (this run registers its
    winner); a registry or store that cannot say is a warning, and this run registers its own. Only the versions
    whose name `which` accepts are looked at: the winner's call leaves the cells a `refit_all` run registers after it
    to their own calls (`refit`: before such a cell is registered, pinned, no follow-up), each looking at its name
    only (a killed refit_all run's cells were neither pinned nor looked for: its re-run registered each again).
    `said`: the versions this run said were left alone (a run that may still run pins them), one set per run: each is
    said once, not again at every refit cell's look (the same lines were logged once for the winner and once per
    cell)."""
    from flowcast.errors import FlowcastError
    from flowcast.flows.common import left_by_killed_runs
    from flowcast.ops.reaper import run_alive
    from flowcast.registry import same_registration
    from flowcast.store import open_store

    dataset, key = str(registration["dataset"]), storage_naive(as_of)
    try:
        store = open_store(settings)
        left, alone = left_by_killed_runs(registry, store, dataset, key, run=run,
                                          alive=partial(run_alive, settings.home))
    except (FlowcastError, OSError) as exc:
        log.warning(f"Could not look for versions a killed run of {dataset} as of {utc_text(key)} registered and "
                    f"never published ({exc}); this run registers its own")
        return None
    for other, line in alone.items():
        if other not in said:
            said.add(other)
            log.info(line)

    def check(version: str, dead: list[str]) -> None:  # under the registry's lock: still left by dead runs only
        again, _ = left_by_killed_runs(registry, store, dataset, key, run=run,
                                       alive=lambda r: False if r in dead else None)
        if version not in {mv.version for mv, _ in again}:
            raise RegistryError(f"{version} was published, or began to be used by a run, since this run looked")

    reuse: tuple[ModelVersion, list[str]] | None = None
    ours = f"{'refit' if refit else 'winner'} {registration['name']}"
    for mv, dead in left:
        if not which(mv.name):
            continue
        owner = str((mv.fingerprint or {}).get("run_id"))
        try:
            differs = same_registration(registry.get(mv.version), recipe.base, **registration)
        except (FlowcastError, OSError) as exc:
            differs = f"it cannot be read ({exc})"
        if not differs and reuse is None:
            reuse = (mv, dead)
            continue
        why = (f"registered for as_of {utc_text(key)} by run {owner}, which was killed before it published it; "
               f"not this run's {ours} ({differs}), so taken back before this run registers its own")
        try:
            registry.delete(mv.version, at=pin.at, run=run, for_run=owner, dataset=dataset, reason=why,
                            released=dead, allow_protected=True, check=partial(check, mv.version, dead))
        except (FlowcastError, OSError) as exc:
            log.warning(f"{mv.version} stays registered: {why.replace(', so taken back', ', to be taken back')}, and "
                        f"taking it back failed ({exc}); `flowcast gc` removes it once its pin lapses")
            continue
        log.warning(f"Took back {mv.version}: {why}")
        notes.append(f"{mv.version} was taken back: {why}.")
    if reuse is None:
        return None
    mv, dead = reuse
    owner = str((mv.fingerprint or {}).get("run_id"))
    why = (f"registered for as_of {utc_text(key)} by run {owner}, which was killed before it published it; the "
           f"same model as this run's {ours} (the same training data, configuration, recipe and files), so this run "
           f"{'keeps' if refit else 'publishes'} it instead of registering it again")
    try:
        version = registry.reuse(mv.version, dataset=dataset, run=run, for_run=owner, pin=pin, reason=why, then=then,
                                 released=dead, check=partial(check, mv.version, dead))
    except ProductionMovedError:
        raise
    except (FlowcastError, OSError) as exc:
        log.warning(f"{mv.version} could not be taken over ({exc}); this run registers its own")
        return None
    log.info(f"Reusing {mv.version}: {why}")
    notes.append(f"{mv.version} is reused: {why}.")
    return version


@flow(name="retrain", flow_run_name=run_name, log_prints=False, validate_parameters=True,
      on_failure=[on_run_failure])
@fails_without_a_result
@crash_on_interrupt
@says_what_it_skipped
def retrain_flow(
    as_of: datetime | date | str | None = None,
    dataset: DatasetChoice = None,
    source: SourceConfig | None = None,
    models: list[Cell] | None = None,
    horizon: int | None = None,
    max_steps: int | None = None,
    promote: bool = True,
    refit_all: bool = False,
    config_file: str | None = None,
    home: str | None = None,
    overrides: RunOverrides | None = None,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Backtest every candidate (each network cell, their ensemble, hybrids with statistical
    forecasts, the statistical models, the production model) on the same windows, publish the
    best one's forecasts for `as_of` and promote it if it beats production.

    Args:
        as_of: run key, ONE instant: only observations with ds <= as_of are used. An ISO
            timestamp; without a UTC offset it means UTC (2019-06-01T09:00+10:00 is 23:00 UTC the day
            before). A date alone (2021-06-30) is the midnight that day starts at in the source's tz.
            Empty: the run's scheduled start time (a second run of one slot does nothing).
        dataset: the dataset to read: a bundled one (us_employment, vic_elecdemand, m3-*) or one declared
            as [sources.NAME] in the configuration file. Empty: the configuration's `dataset` (config_file,
            FLOWCAST_CONFIG or FLOWCAST_DATASET as the process running the flow sees them: a deployment
            run's, its worker's), us_employment when none names one.
        source: an explicit source (path, id/time/target columns, frequency) to read instead of a dataset.
        horizon: periods to forecast after each series' last observation. Empty: the source's horizon,
            else the frequency's default.
        models: network cells to train (rnn, lstm, gru, mlp). Empty: the configured model.cells.
        max_steps: training steps of each network. Empty: the configured model.max_steps.
        promote: put the winner in production when it beats the production model. Off: the
            production pointer is left alone (backfills of past dates): this run's best candidate
            is registered, noted as the dataset's last champion and published. A run whose as_of lies
            before the production model's training data ended leaves it alone too.
        refit_all: also retrain and register every network cell on all data, not only the winner's.
        config_file: a flowcast.toml to read. Empty: FLOWCAST_CONFIG of the process running the flow (a
            deployment run's worker), else the defaults only.
        home: the folder every output goes under (models, warehouse, reports). Empty: FLOWCAST_HOME, else
            the configuration file's `home`, else .flowcast in the working directory (a deployment run's:
            the folder it was deployed from).
        overrides: settings for this run only, by section (model, evaluation, publish, ...): what is
            left empty keeps its configured value.
        overwrite: on: replace the forecasts published already for this as_of. Off: if this as_of is
            published already, publish nothing and name the run that published it (the dates of
            `backfill --deployment` without --overwrite).
    """
    from flowcast.evaluation.candidates import PRODUCTION, add_short_calibration, statistical_makeup
    from flowcast.evaluation.conformal import calibration_notes
    from flowcast.evaluation.decision import decision_markdown, first_publishable
    from flowcast.registry import Promotion
    from flowcast.shared import open_registry

    flow_fault("flow:started")
    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, models=models,
        max_steps=max_steps, overrides=overrides,
    )
    scheduled = as_of is None  # a schedule slot: retrained once (a second run of the slot does nothing)
    as_of = resolve_as_of(as_of, source_tz(settings))
    # (only a slot's as_of, which its parameters do not hold, is added to its claim: one claim rewrite less a run)
    run_id, started = run_identity(settings.home, as_of if scheduled else None)
    expire_aged(settings, started)
    # the slot done already: retrained by a run of it (a schedule slot), or published (overwrite off)
    done, by = ((found, "retrained_by") if scheduled and (found := retrained_already(settings, as_of)) else
                (published_already(settings, as_of) if not overwrite else None, "published_by"))
    if done:
        from flowcast.data.datasets import resolve_source

        log.info(reporting.sentences(done[1]))  # ended as the state message ends it
        # a run of this as_of killed between its promotion and its refused publish left its winner in production
        from flowcast.ops.reaper import run_alive

        # a live run (its pin, its claim or its Prefect state) keeps its winner: it is about to publish it
        left = withdraw_unpublished_winner(settings, as_of, started, alive=partial(run_alive, settings.home),
                                           run=run_id)
        scope = artifact_scope(resolve_source(settings).name, as_of)
        # a run killed right after its refused publish's withdrawal left its decision, naming its winner, the newest
        unsaid = withdrawn_unsaid(settings, scope) if left is None else None
        said = left[0] if left else unsaid[0] if unsaid else ""
        note = reporting.sentences(done[1], said)
        reporting.skipped_artifact(note, scope, again=done[0] == run_id)
        winner = ((left[1].name, left[1].version) if left else
                  (unsaid[1].rsplit("-v", 1)[0], unsaid[1]) if unsaid else None)
        if winner is not None:  # the killed run's decision (written before its publish) named it: the key's newest
            log.warning(said)   # says so
            reporting.withdrawn_decision_artifact(note, winner[0], winner[1], scope)
        return _retrain_result(as_of=as_of.isoformat(), run_id=run_id, dataset=resolve_source(settings).name,
                               registered={}, published_rows=0, skipped=True, **{by: done[0]}, note=note,
                               store=store_label(settings))
    ev, mc = settings.evaluation, settings.model
    log.info(retraining_line(mc.cells, ev.statistical, as_of, run_id))

    data = load_data(settings, as_of, fit_spans=True)
    settings = data.settings or settings  # the lookback and validation span fitted to the data
    ev, mc = settings.evaluation, settings.model
    td, h = data.td, data.horizon
    name_of_data = data.source.name
    scope = artifact_scope(name_of_data, as_of)
    bounds = (data.source.y_min, data.source.y_max)
    run_dir = settings.home / "runs" / f"{as_of:%Y%m%dT%H%M%S}-{run_id[:8]}"
    tuned_notes: list[str] = []
    # -- intermittent (sparse) demand, classed once on the training data: its models join the candidates, it is ranked
    # (and tuned) on RMSSE, counts are cut at 0 (tuning below changes the network's lookback, never the data classed)
    from flowcast.evaluation.intermittency import classify, count_bounds, intermittent_settings

    sparse = classify(td.frame)
    settings, sparse_notes = intermittent_settings(settings, sparse)
    if settings.tuning.enabled:  # the search's choice becomes this run's [model] settings
        from flowcast.flows.tune import tuned_settings
        from flowcast.models.tuning import tuned_data

        settings, _ = tuned_settings(settings, td, h, run_dir)
        ev, mc = settings.evaluation, settings.model
        td, tuned_notes = tuned_data(settings, td)  # which series the tuned lookback leaves to a network
    bounds, bound_note = count_bounds(bounds, sparse)
    sparse_notes += [bound_note] if bound_note else []
    for n in sparse_notes:
        log.info(n)
    # -- the backtest: windows fitted to the data, on the series long enough for them
    settings, td_bt, bt_spans = backtest_data(settings, td, h)
    ev = settings.evaluation
    registry = open_registry(settings)
    started_from = _production_model(registry, name_of_data, log) if promote else None
    if started_from is not None and started_from.as_of and storage_naive(started_from.as_of) > storage_naive(as_of):
        # a model that saw this as_of's future is no candidate for it (published, it would forecast from actuals after
        # as_of), and a model of older data does not replace it: production is left alone, as a backfill's retrain does
        log.warning(f"The production model {started_from.version} was trained at {started_from.trained_text()}, "
                    "after this run's as_of: it is neither a "
                    "candidate for this as_of nor replaced by this run's models; production is left alone and this "
                    "run publishes its own best model")
        started_from, promote = None, False
    expected = started_from.version if started_from is not None else None

    # -- every candidate backtested on the same windows, the production model scored fairly, the decision
    short_note = ""
    if td_bt is None:  # every series has a single observation: nothing to score, the last resort publishes
        scored = nothing_to_score(settings, td, production=started_from, promote=promote)
    else:
        # (daily times written with an offset: where the production model's training data ended, by the instant)
        scored = score_candidates(settings, td_bt, bt_spans, horizon=h, bounds=bounds, run_dir=run_dir, scope=scope,
                                  production=started_from, promote=promote, log=log, shifts=data.shifts)
        # the series too short for the backtest: widths from their own short cuts, by history (`calibrate_short`)
        short_note = add_short_calibration(
            [c.calibration for c in scored.candidates] + list(scored.fallback_cal.values()), td, bt_spans.need,
            scored.hb, makers=[(c.name, statistical_makeup(c)) for c in scored.candidates]
            + [(str(k), ([str(k)], [1.0])) for k in scored.fallback_cal], bounds=bounds)
    decision, board, metric = scored.decision, scored.board, scored.metric
    log.info("Decision: " + " ".join(decision.reasons))
    ended_note = _ended_backtest_note(data, scored, td.meta.freq)  # set aside: in no window, said (README)
    # why the leaderboard's coverage / MSIS cells are blank (one window, too few points): its artifacts and the notes
    blank = reporting.blank_intervals_text(scored.candidates) if scored.backtested else ""

    # -- build the chosen candidate, check its forecasts, fall back down the board if they fail
    builder = _Builder(settings=settings, scored=scored, td=td, horizon=h, bounds=bounds, as_of=as_of, run_dir=run_dir,
                       scope=scope, production=started_from, log=log)
    chosen, model_obj, rf, tried = first_publishable(decision.order, builder.attempt, builder.check)
    notes = ([*data.notes, *tuned_notes, *bt_spans.notes] + scored.notes + ([ended_note] if ended_note else [])
             + ([f"Leaderboard: {blank}."] if blank else []) + tried)
    for n in notes:
        log.warning(n)
    # (said above, as information; each training resumed or restarted by its train task: not logged twice, ckpt40)
    notes = [*sparse_notes, *scored.started, *notes]
    if chosen is None or rf is None:
        reporting.decision_artifact(decision_markdown(decision, board, published=None, published_version=None,
                                                      descriptions={}, notes=notes), scope)
        # why each candidate failed first, then what else the run noted (a note on blank leaderboard cells came
        # between the error's colon and its reason)
        raise TrainingError("no candidate produced forecasts fit to publish: "
                            + " ".join([*tried, *(n for n in notes if n not in tried)]))
    if chosen != decision.publish:
        notes.append(f"{chosen} publishes instead of {decision.publish}.")
    if short_note and (model_obj.intervals.get(model_obj.name) or {}).get("short"):  # only where it publishes them
        notes.append(short_note)
    # too few points; where the model made no row (every series its fallback's), the fallback's, not its (uiB46)
    notes += (calibration_notes(model_obj.intervals.get(model_obj.name), model_obj.name)
              if rf.maker == model_obj.name else rf.missing_level_notes())
    notes += rf.interval_notes()  # steps beyond the backtest's (short histories), constant series: not calibrated
    from flowcast.models.recipes import below_zero_note, covariates_note

    src = data.source
    if (negative := below_zero_note(td.frame, rf.frame, bounds[0])) is not None:
        log.warning(negative)
        notes.append(negative)
    declared = list(dict.fromkeys([*src.future_cols, *src.past_cols, *src.static_cols]))
    if (unused := covariates_note(model_obj, declared, list(settings.model.cells), src.label_col)) is not None:
        notes.append(unused)
    if (fell := rf.fallback_note()) is not None:
        notes.append(fell + ".")
    if (short := rf.short_note()) is not None:
        log.warning(short)
        notes.append(short)

    # -- register, promote (compare and swap), publish
    registered: dict[str, str] = {}
    # run_id: which run registered the version (a second run of this schedule slot names it: `retrained_already`)
    fingerprint = _trained_on(settings, name_of_data, data.fingerprint, as_of, run_id,
                              data.td.lengths()["last_ds"].max() if data.td.n_series else None)
    register = partial(_register, settings, board=board, dataset=name_of_data, fingerprint=fingerprint, as_of=as_of,
                       started=started, registered=registered, log=log, intermittent=sparse.intermittent)
    registration = partial(_registration, settings, board=board, dataset=name_of_data, fingerprint=fingerprint,
                           as_of=as_of, started=started, intermittent=sparse.intermittent)
    # `refit_all`: every other network cell, refit on all data and registered (pinned) after the winner
    refits = [c for c in mc.cells if c != chosen and c in scored.by_name] if refit_all else []
    alone_said: set[str] = set()  # a killed run's versions this run said it leaves alone (`_resume_killed`): once each
    # registered and promoted (or noted as the champion) in one registry transaction: a run killed
    # in between leaves no unpromoted version behind, and a run that lost the race registers nothing
    promoted = promote and chosen != PRODUCTION and decision.action != "publish"  # publish: production stays
    then = (Promotion("promote", expected=expected, reason=" ".join(decision.reasons), at=started, as_of=as_of)
            if promoted
            else None if promote else Promotion("champion", reason="retrain without promotion", at=started, as_of=as_of))

    def computed(*, promoted: bool) -> dict[str, Any]:
        """What every result of a run that read the data and decided says: the data's counts, the series not
        forecast, the spans, its leaderboard and decision (`promoted`: whether its promotion stands)."""
        return {
            "as_of": as_of.isoformat(), "run_id": run_id, "dataset": name_of_data, "n_series": td.n_series,
            "rows_in": data.rows_in, "rows_valid": data.rows_valid, "rows_quarantined": data.rows_quarantined,
            **run_counts(data), "horizon": h, "leaderboard": _board_json(board),
            "decision": {"promote": promoted, "action": decision.action, "metric": metric,
                         "challenger": decision.champion, "champion": decision.champion, "publish": chosen,
                         "reasons": list(decision.reasons), "incumbent": expected,
                         "incumbent_scoring": scored.scoring, "notes": notes},
            # series not forecast, with the reason: every row quarantined, or excluded by preprocessing
            "excluded": [*data.report.series_quarantined, *td.excluded.to_dicts()][:_LISTED],
            # all of them (the list stops at 100): the data's series = n_series + series_excluded
            "series_excluded": len(data.report.series_quarantined) + td.excluded.height,
            "spans": {"lookback": mc.lookback, "val_size": td.meta.val_size, "n_windows": bt_spans.n_windows,
                      "network_min_length": td.meta.min_length, "backtest_min_length": bt_spans.need},
        }

    def slot_done_meanwhile(exc: ProductionMovedError, written: ModelVersion | None = None) -> dict[str, Any] | None:
        """A scheduled retrain refused because production moved (its promotion's compare and swap, its check that
        production is unmoved, its publish's guard: nothing of it published, its promotion retracted): when what
        moved it is another run of this slot, which retrained and published it, this run ends skipped naming that
        run, as when its publish is refused under the key's lock, instead of failing. `written`: the winner its
        decision and leaderboard artifacts (written already) named: each gets its follow-up version."""
        found = retrained_already(settings, as_of, late="found when production had moved to that run's decision") \
            if scheduled else None
        if found is None:
            return None
        note = reporting.sentences(found[1], f"This run's own decision was refused: {exc}").replace(
            " (run again to compare against the new production model)", "")
        log.info(note)
        reporting.skipped_artifact(note, scope)
        if written is not None:  # `withdrawn`: its promotion was taken out of the stack; a run that kept production
            # (or published without promoting) withdrew nothing, and its follow-ups must not say so (review19's rule)
            # a kept production model is named as its leaderboard names it ('production (damped-v1)', ui20)
            reporting.withdrawn_decision_artifact(note, chosen if chosen == PRODUCTION else written.name,
                                                  written.version, scope, withdrawn=promoted)
            if board.height:
                reporting.withdrawn_leaderboard_artifact(board, metric, scope, note, champion=chosen,
                                                         version=written.version, unit=data.source.unit,
                                                         withdrawn=promoted, intervals_note=blank)
        return _retrain_result(**computed(promoted=False), registered=registered, published_rows=0, skipped=True,
                               retrained_by=found[0], note=note, store=store_label(settings))

    # pinned until its publish: a retrain that leaves production alone (a backfill of a past date) registers a
    # version that is neither production nor, behind a newer champion, the champion: `flowcast gc` keeps it. A
    # registered winner is pinned in its registration's transaction: pinned after it, gc could remove it between
    run_pin = Pin(run=run_id, at=started, until=started + timedelta(hours=PIN_TTL_HOURS))
    announced = False  # its decision says 'To publish' (`decided`): a failure after it says what came of it

    def failed(exc: BaseException) -> None:
        """The follow-up of the decision (`announced`) of a run that fails before its forecasts landed: its newest
        version said this run 'publishes them next', for good; where they landed all the same, 'Published'."""
        if not announced:
            return
        try:
            from flowcast.store import open_store

            store = open_store(settings)
            held = (store.receipt_of(name_of_data, as_of) or {}) if store.has(name_of_data, as_of) else {}
            if (held.get("model_version"), held.get("run_id")) == (version.version, run_id):
                decided(landed=True)
                return
            now = registry.production(name_of_data)  # (its promotion withdrawn, or left as it was)
            reporting.failed_decision_artifact(
                f"This run failed before its forecasts were published: {' '.join(str(exc).split())}",
                chosen if chosen == PRODUCTION else version.name, version.version,
                now.version if now is not None else None, scope)
        except Exception as said:  # noqa: BLE001 - the run's error is the one it raises; this follow-up is a courtesy
            log.warning(f"The follow-up of this run's decision artifact could not be written ({said})")

    try:
        if promote and not promoted:  # production stays: only if it is still the one this run compared against
            _check_production_unmoved(registry, name_of_data, expected)
        if chosen == PRODUCTION:
            assert started_from is not None, "production is a candidate only when a model is in production"
            version = started_from
            registry.pin(version.version, run=run_pin.run, at=run_pin.at, until=run_pin.until)
        else:  # a killed run's registration of this very winner is taken over, any other taken back first (but
            # the versions of the cells refit below: each is looked at there)
            reused = _resume_killed(settings, registry, model_obj, registration(chosen, model_obj),
                                    as_of=as_of, run=run_id, pin=run_pin, then=then, log=log, notes=notes,
                                    said=alone_said, which=lambda name: name not in refits)
            if reused is not None:  # this run's winner, as if it had registered it: the result's `registered` names
                registered[chosen] = reused.version  # it (it said {} of the version this run published)
            version = reused or register(chosen, model_obj, then=then, pin=run_pin)
    except ProductionMovedError as exc:  # another run of this slot promoted (and published) first: nothing registered
        if (skipped := slot_done_meanwhile(exc)) is not None:
            return skipped
        raise
    try:  # from its pin on: a failure before the publish (a refit's registration, an artifact) withdraws the
        # promotion and releases the pin, as a failed publish does (it left production on a model whose forecasts
        # were never published, and the pin to lapse 24 hours later)
        for cell in refits:  # pinned as the winner is: a killed run's is taken over (or back) as its winner is
            known = len(scored.started)
            refit = builder.build(cell)
            # its training resumed or restarted: in the run's notes too (gathered before: only its task said it)
            notes.extend(scored.started[known:])
            took = _resume_killed(settings, registry, refit, registration(cell, refit), as_of=as_of, run=run_id,
                                  pin=run_pin, then=None, log=log, notes=notes, said=alone_said, which=cell.__eq__,
                                  refit=True)
            if took is not None:
                registered[cell] = took.version
            else:
                register(cell, refit, pin=run_pin)
        if promoted:
            log.info(f"Promoted {version.version} to production of {name_of_data} (it was {expected or 'empty'})")

        descriptions = {c.name: c.describe() for c in scored.candidates if c.name != PRODUCTION}
        if started_from is not None:
            descriptions[PRODUCTION] = f"{started_from.version}, {started_from.describe()}"

        def decided(*, landed: bool, published_by: str | None = None) -> None:
            """The decision and leaderboard artifacts: before the publish 'To publish' (`landed` False), once it
            landed 'Published'. Each key's newest is true whenever the run is killed: written 'Published' before the
            publish, a run killed before it (or after its refusal's withdrawal) left a publish that never happened
            as the newest (followup21); killed after the publish, before the second, 'To publish' stays true.
            `published_by`: another run published these very forecasts (`decision_markdown`)."""
            md = decision_markdown(decision, board, published=chosen, published_version=version.version,
                                   descriptions=descriptions, notes=notes, n_windows=ev.n_windows, horizon=scored.hb,
                                   landed=landed, published_by=published_by)
            reporting.decision_artifact(md, scope, landed=landed, published_by=published_by)
            if board.height:
                reporting.leaderboard_artifact(board, metric, scope, champion=chosen, version=version.version,
                                               unit=data.source.unit, intervals_note=blank, landed=landed,
                                               published_by=published_by)

        decided(landed=False)
        announced = True
        if board.height:
            _print_board(log, board, metric, chosen)

        flow_fault("flow:before_publish")  # promoted (or not), nothing published
        # published only while production is what this run decided on (its winner, or the model it kept),
        # checked and published under the registry's lock: no promotion in between
        # a run that kept production registers nothing: its keep event (written here, before the forecasts land)
        # is what tells a second run of this slot that the slot is done once they are published (retrained_already)
        kept = Kept(as_of=as_of, run=run_id, reason=" ".join(decision.reasons)) if chosen == PRODUCTION else None
        guard = (registry.publishing(name_of_data, version.version if promoted else expected, promoted=promoted,
                                     at=started, kept=kept, run=run_id) if promote else None)
        # overwrite off: only into an empty key, checked again under the key's lock (another run of this date may
        # have published it since this run's first check): refused, this run's promotion or champion is undone below
        # a schedule slot (overwrite on: it replaces the forecast flow's publish of its as_of): checked again under
        # the key's lock too, refused when another run of the slot retrained it meanwhile (`retrained_already`'s
        # test, read there): this run's promotion is withdrawn in the same hold, and it ends skipped naming that run
        slot_check = (SlotRetrained(registry, name_of_data, storage_naive(as_of)) if scheduled and overwrite
                      else None)
        receipt = publish_forecasts(settings, data, rf.frame, as_of=as_of, model=version.name,
                                    model_version=version.version, note=notes, guard=guard,
                                    trained_as_of=version.as_of, lookahead=saw_after(version, as_of, data.source),
                                    if_absent=not overwrite, slot_check=slot_check)
    except ProductionMovedError as exc:  # another run moved production after this one's promotion: its model
        if (skipped := slot_done_meanwhile(exc, version)) is not None:  # publishes (a run of this slot: skipped);
            return skipped  # this run's winner stays registered, out of production (and out of the stack)
        failed(exc)
        raise
    except Exception as exc:
        if promoted:  # production must not point at a model whose forecasts were never published
            _withdraw_unpublished(settings, registry, name_of_data, version.version, as_of, started, exc, log,
                                  run=run_id)
        failed(exc)
        raise
    finally:
        for pinned in dict.fromkeys([version.version, *registered.values()]):  # its winner, its refit cells
            registry.unpin(pinned, run=run_id)
    if isinstance(receipt, AlreadyPublished):  # another run of this date published (or its slot retrained) it
        late = receipt.said  # while this one computed: found under the key's lock
        retrained = slot_check.found if slot_check is not None else None
        undone, withdrawn = receipt.undone, bool(receipt.undone)  # (the guard's: a promotion withdrawn)
        same = isinstance(receipt, SamePublished)  # the key holds this very version's forecasts (nothing undone below)
        if receipt.undone:
            log.warning(receipt.undone)
        elif promoted:  # the guard left it: the key holds forecasts of this very model (another run published them)
            undone = (f"Its promotion of the winner stands: production of {name_of_data} is {version.version}, whose "
                      "forecasts of this as_of the other run published.")
        elif not promote and chosen != PRODUCTION:
            undone, withdrawn = _undo_champion(registry, name_of_data, version.version, as_of=as_of, at=started,
                                               late=late, log=log, held_version=receipt.held.get("model_version"),
                                               run=run_id)
        elif not promoted and chosen != PRODUCTION and receipt.held.get("model_version") != version.version:
            # 'publish' without promoting: a registration no event records, named by no publish (polish19)
            undone, withdrawn = _take_back_unpublished(registry, version.version, dataset=name_of_data, at=started,
                                                       late=late, run=run_id, log=log)
        # the same forecasts: what this run would have said of them (classed intermittent, cut at 0, widths) holds
        note = reporting.sentences(late, undone, *(notes if same else []))
        reporting.skipped_artifact(note, scope)
        realized = None
        if same:  # the forecasts it decided on are what the key holds (published by the other run): each key's newest
            held_by = receipt.held.get("run_id")  # its decision says this run published nothing, and which run did; its
            decided(landed=True, published_by=reporting.run_link(str(held_by)) if held_by else "")  # earlier forecasts scored
            if board.height:
                _print_board_follow_up(log, chosen, version.version, withdrawn=False,
                                       published_by=str(held_by) if held_by else "")
            realized = record_in_run(settings, data, as_of=as_of, run_id=run_id)
        else:
            if board.height:
                _print_board_follow_up(log, chosen, version.version, withdrawn=withdrawn)
            # its decision and leaderboard (written before the publish) named a winner whose forecasts were not
            # published: each key's newest version says what came of it (withdrawn, or not published, left as it was)
            reporting.withdrawn_decision_artifact(note, chosen if chosen == PRODUCTION else version.name,
                                                  version.version, scope, withdrawn=withdrawn)  # as the board (ui20)
            if board.height:
                reporting.withdrawn_leaderboard_artifact(board, metric, scope, note, champion=chosen,
                                                         version=version.version, unit=data.source.unit,
                                                         withdrawn=withdrawn, intervals_note=blank)
        return _retrain_result(
            # its promotion stands when the key holds forecasts of that very model (another run published with it:
            # `PublishGuard.refuse` leaves it); the result said promote false of the model in production (mend21)
            **computed(promoted=promoted and not withdrawn),
            # what stays registered: the winner unless withdrawn (removed), a refit's cells
            registered={k: v for k, v in registered.items() if not (withdrawn and v == version.version)},
            champion=version.name, model_version=version.version, kind=version.kind, published_rows=0, skipped=True,
            retrained_by=retrained[0] if retrained else None, published_by=receipt.held.get("run_id"), note=note,
            **({"realized": realized_json(realized)} if same else {}), store=store_label(settings))
    decided(landed=True)  # the publish landed: each key's newest says 'Published'
    realized = record_in_run(settings, data, as_of=as_of, run_id=run_id)  # how earlier forecasts turned out
    return _retrain_result(
        **computed(promoted=promoted),
        registered=registered,
        champion=version.name,  # the published model (the production model's own name when it stays)
        model_version=version.version,
        kind=version.kind,
        fallback_series=int(rf.fallbacks.height),
        fallbacks=rf.fallbacks.head(_LISTED).to_dicts(),  # series made by a fallback: model and reason
        published_rows=int(receipt.rows),
        models=list(receipt.models),  # the rows' models, fallbacks included: naive alone where all fell back
        realized=realized_json(realized),
        store=store_label(settings),
        parquet=str(receipt.parquet_path) if receipt.parquet_path else None,
        duckdb=str(receipt.duckdb_path) if receipt.duckdb_path else None,
        note=" ".join(notes),
    )


def registered_line(name: str, kind: str, version: str) -> str:
    """The run's log line for a registered model, its kind named where that says more than its name ('Registered
    gru (network) as gru-v1'; it read 'Registered hybrid (hybrid) as hybrid-v1', ui25)."""
    return f"Registered {name}{f' ({kind})' if kind != name else ''} as {version}"


def learned_weights_note(n_windows: int, metric: str) -> str:
    """How a combination's weights were fitted, as its description says it ('weights learned on 2 backtest windows
    (MASE)'; it read 'window(s) (mase)' in the decision artifact, ui25)."""
    from flowcast.evaluation.metrics import metric_name

    return f"learned on {n_windows} backtest window{'s' if n_windows != 1 else ''} ({metric_name(metric)})"
