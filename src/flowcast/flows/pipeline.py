"""The retrain flow: ingest, validate, preprocess, backtest every candidate on the same windows,
decide, build the winner, check its forecasts, promote (compare and swap), publish.

Every decision is a pure function under `flowcast.evaluation` (candidates, combine, conformal,
selection, decision); this flow only trains, calls them and writes what they chose.

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

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger

from flowcast import reporting
from flowcast.config import Cell, ModelConfig, Settings, SourceConfig
from flowcast.errors import RegistryError, TrainingError
from flowcast.flows import tasks
from flowcast.flows.common import (
    artifact_scope,
    flow_settings,
    load_data,
    publish_forecasts,
    resolve_as_of,
    run_counts,
    run_identity,
    store_label,
)
from flowcast.flows.naming import run_name, task_label
from flowcast.flows.parameters import DatasetChoice, RunOverrides
from flowcast.ops.accuracy import record_in_run
from flowcast.ops.hooks import on_run_failure

# model settings that do not change what a network learns (where and how fast it trains)
_RUNTIME_FIELDS = {"accelerator", "devices", "strategy", "precision", "num_workers", "pin_memory", "checkpoint_every",
                   "num_threads", "launcher", "cells", "blend"}


def _training_config(config: dict[str, Any]) -> dict[str, Any]:
    """The model settings in `config` that shape what a network learns (seed excepted)."""
    return {k: config.get(k) for k in ModelConfig.model_fields if k not in _RUNTIME_FIELDS | {"seed"} and k in config}


def _member_settings(settings: Settings, seed: int, model: dict[str, Any] | None = None) -> Settings:
    """The run's settings for training one member: its seed, no blend (combinations are candidates
    of their own), and the model configuration of a production recipe when it differs."""
    base = {**settings.model.model_dump(), **_training_config(model or {})}
    mc = ModelConfig.model_validate({**base, "seed": seed, "blend": {}})
    return settings.model_copy(update={"model": mc})


def _train_member(td: Any, settings: Settings, out_dir: Path, cell: str, label: str, scope: reporting.Scope):
    """Train one network in a `train <label>` task, its progress artifact moving as it trains."""
    progress = reporting.TrainingProgress(label, label=label, scope=scope)
    artifact = tasks.train_task(td, settings, out_dir, cell, progress, label=label)
    progress.done(artifact.metrics)
    return artifact


def _network_fit(settings: Settings, out_dir: Path, cell: str, key: str, horizon: int, scope: reporting.Scope):
    """fit(td) for the backtest: train the member on td, return a forecaster for any cut of it.
    With evaluation.refit each window trains its own (`train gru window 2`)."""
    ev = settings.evaluation
    windows = iter(range(1, ev.n_windows + 1))

    def fit(td_train):
        label = task_label(key, window=next(windows, None) if ev.refit else None, n_windows=ev.n_windows)
        artifact = _train_member(td_train, settings, out_dir, cell, label, scope)
        return lambda td_cut: tasks.component_task({"type": "network", "path": str(artifact.path)}, td_cut, horizon)

    return fit


def _statistical_fit(name: str, horizon: int):
    def fit(_td_train):
        return lambda td_cut: tasks.component_task({"type": "statistical", "model": name}, td_cut, horizon)

    return fit


def _frozen_fit(version: Any, horizon: int, bounds: tuple[float | None, float | None]):
    def fit(_td_train):
        from flowcast.models.recipes import forecast_with

        return lambda td_cut: forecast_with(version, td_cut, horizon, bounds=bounds)

    return fit


def _backtest_data(settings: Settings, td: Any, horizon: int) -> tuple[Settings, Any, Any]:
    """(settings with the backtest windows fitted to the data where not given, the series long
    enough for them, the BacktestSpans): `flowcast.data.lengths.fit_backtest`. The shorter
    series take no part in the leaderboard; each is published by the best candidate that can run
    on it. When every series has a single observation there is nothing to backtest: (settings,
    None, no windows), and the last resort publishes (`decision.last_resort_decision`)."""
    from flowcast.config import with_overrides
    from flowcast.data.lengths import BacktestSpans, fit_backtest

    ev = settings.evaluation
    lengths = td.lengths()
    if int(lengths["length"].max() or 0) < 2:  # one observation a series: not a single error to score
        return settings, None, BacktestSpans(n_windows=0, step=ev.step or horizon, need=2, horizon=0)
    spans = fit_backtest(lengths["length"].to_list(), horizon=horizon, n_windows=ev.n_windows, step=ev.step or horizon,
                         share=settings.preprocess.length_share,
                         given="n_windows" in settings._given.get("evaluation", frozenset()))
    if spans.n_windows != ev.n_windows or (ev.step and spans.horizon < horizon):
        settings = with_overrides(settings, evaluation={"n_windows": spans.n_windows,
                                                        **({"step": spans.step} if ev.step else {})})
    long_enough = lengths.filter(pl.col("length") >= spans.need)["unique_id"]
    return settings, (td if long_enough.len() == td.n_series else td.subset(long_enough)), spans


_LISTED = 100  # series listed by name in a run's summary (fallbacks, excluded); the counts are complete


def _naive_utc(iso: str | None) -> datetime | None:
    if not iso:
        return None
    ts = datetime.fromisoformat(iso)
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _board_json(board: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        for row in board.to_dicts()
    ]


def _print_board(log, board: pl.DataFrame, metric: str, published: str | None) -> None:
    lines = [f"Leaderboard (by {metric}, lower is better; coverage on windows not used to calibrate):"]
    for row in board.iter_rows(named=True):
        s = " ".join(f"{m}={row[m]:.4g}" if row.get(m) is not None else f"{m}=n/a"
                     for m in ("smape", "mase", "coverage80", "coverage95", "msis"))
        mark = "  <- published" if row["model"] == published else ""
        lines.append(f"  {row.get('rank') or '-'}. {row['model']:<15} {row['kind']:<11} {s}{mark}")
    log.info("\n".join(lines))


@flow(name="retrain", flow_run_name=run_name, log_prints=False, validate_parameters=True,
      on_failure=[on_run_failure])
def retrain_flow(
    as_of: datetime | None = None,
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
) -> dict[str, Any]:
    """Backtest every candidate (each network cell, their ensemble, hybrids with statistical
    forecasts, the statistical models, the production model) on the same windows, publish the
    best one's forecasts for `as_of` and promote it if it beats production.

    Args:
        as_of: run key, ONE instant: only observations with ds <= as_of are used. An ISO
            timestamp; without a UTC offset it means UTC (2019-06-01T09:00 is 09:00 UTC,
            2019-06-01T09:00+10:00 is 23:00 UTC the day before). Empty: the run's scheduled
            start time.
        dataset: the dataset to read: a bundled one (us_employment, vic_elecdemand, m3-*) or one declared
            as [sources.NAME] in the configuration file. Empty: the configured default (us_employment).
        source: an explicit source (path, id/time/target columns, frequency) to read instead of a dataset.
        horizon: periods to forecast after each series' last observation. Empty: the source's horizon,
            else the frequency's default.
        models: network cells to train (rnn, lstm, gru). Empty: the configured model.cells.
        max_steps: training steps of each network. Empty: the configured model.max_steps.
        promote: put the winner in production when it beats the production model. Off: the
            production pointer is left alone (backfills of past dates): this run's best candidate
            is registered, noted as the dataset's last champion and published.
        refit_all: also retrain and register every network cell on all data, not only the winner's.
        config_file: a flowcast.toml to read. Empty: FLOWCAST_CONFIG, else the defaults only.
        home: the folder every output goes under (models, warehouse, reports). Empty: FLOWCAST_HOME,
            else ./.flowcast.
        overrides: settings for this run only, by section (model, evaluation, publish, ...): what is
            left empty keeps its configured value.
    """
    from flowcast.evaluation.candidates import (
        PRODUCTION,
        CandidatePlan,
        evaluate_candidates,
        frozen_candidate,
        incumbent_spec,
        paired_scores,
        plan_candidates,
    )
    from flowcast.evaluation.decision import (
        check_forecasts,
        decide,
        decision_markdown,
        first_publishable,
        last_resort_decision,
    )
    from flowcast.evaluation.selection import candidate_board, usable_metric
    from flowcast.models.recipes import LAST_RESORT, Recipe, kind_of, last_resort_recipe, load_recipe
    from flowcast.shared import open_registry

    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, models=models,
        max_steps=max_steps, overrides=overrides,
    )
    as_of = resolve_as_of(as_of)
    run_id, started = run_identity()
    ev, mc = settings.evaluation, settings.model
    log.info(f"Retraining {', '.join(mc.cells) or 'no networks'} as of {as_of:%Y-%m-%d %H:%M} (run {run_id})")

    data = load_data(settings, as_of, fit_spans=True)
    settings = data.settings or settings  # the lookback and validation span fitted to the data
    ev, mc = settings.evaluation, settings.model
    td, h = data.td, data.horizon
    name_of_data = data.source.name
    scope = artifact_scope(name_of_data, as_of)
    bounds = (data.source.y_min, data.source.y_max)
    run_dir = settings.home / "runs" / f"{as_of:%Y%m%dT%H%M%S}-{run_id[:8]}"
    tuned_notes: list[str] = []
    if settings.tuning.enabled:  # the search's choice becomes this run's [model] settings
        from flowcast.flows.tune import tuned_settings
        from flowcast.models.tuning import tuned_data

        settings, _ = tuned_settings(settings, td, h, run_dir)
        ev, mc = settings.evaluation, settings.model
        td, tuned_notes = tuned_data(settings, td)  # which series the tuned lookback leaves to a network
    # -- the backtest: windows fitted to the data, on the series long enough for them
    settings, td_bt, bt_spans = _backtest_data(settings, td, h)
    ev = settings.evaluation
    registry = open_registry(settings)
    started_from = None
    if promote:
        try:
            started_from = registry.production(name_of_data)
        except RegistryError as exc:  # a pointer to a version deleted by hand: say so, compare against nothing
            log.warning(f"{exc}; this run compares its candidates without a production model")
    expected = started_from.version if started_from is not None else None

    dropped: list[str] = []
    if td_bt is None:  # every series has a single observation: nothing to score, the last resort publishes
        plan = CandidatePlan(members=[], statistical=[], specs=[])
        member_settings: dict[str, Settings] = {}
        label: dict[str, str] = {}
        cands: list[Any] = []
        fallback: list[str] = []
        fallback_cal: dict[str, Any] = {}
        scoring: str | None = None
        metric: str = ev.metric
        hb = 0
        board = candidate_board([], metric)
        by_name: dict[str, Any] = {}
        decision = last_resort_decision(td.n_series, last_resort=LAST_RESORT, metric=metric, margin=ev.margin,
                                        incumbent_version=expected, promote=promote)
        dropped.append(f"{LAST_RESORT}'s forecasts carry no 80/95% intervals: they could not be calibrated without a "
                       "backtest (no residuals to calibrate on).")
    else:
        # -- the candidates and what they are made of
        plan = plan_candidates(cells=list(mc.cells), seeds=ev.seeds, base_seed=mc.seed, statistical=list(ev.statistical),
                               combination=list(ev.combination), ensemble=ev.ensemble, hybrid=ev.hybrid, blend=mc.blend)
        hb = bt_spans.horizon  # steps each backtest window scores (the horizon unless every series is shorter)
        step = ev.step or hb
        log.info(f"Backtesting {len(plan.specs)} candidates on {ev.n_windows} window(s) of {hb} periods per series")
        comps: dict[str, Any] = {}
        member_settings = {m.key: _member_settings(settings, m.seed) for m in plan.members}
        label = {m.key: (m.cell if ev.seeds == 1 else m.key) for m in plan.members}  # what progress bars say
        for m in plan.members:
            try:
                comps[m.key] = tasks.backtest_task(td_bt, _network_fit(member_settings[m.key], run_dir / f"{m.key}-backtest",
                                                                       m.cell, label[m.key], h, scope), m.key, settings, hb)
            except TrainingError as exc:  # e.g. no series long enough for a network in the oldest window
                dropped.append(f"{m.key} could not be trained for the backtest ({exc}): the candidates using it are left out")
                log.warning(dropped[-1])
        for s in plan.statistical:
            comps[s] = tasks.backtest_task(td_bt, _statistical_fit(s, h), s, settings, hb)
        usable = [sp for sp in plan.specs if all(k in comps for k in sp.keys)]

        # -- the production model, scored fairly
        specs = usable
        frozen = None
        scoring = None
        cannot = ""
        if started_from is not None:
            has_network = any(c.get("type") == "network" for c in started_from.recipe.get("components") or [])
            if ev.incumbent in ("auto", "frozen") and has_network:
                log.info(f"Scoring the production model {started_from.version} with its frozen weights")
                try:
                    res = tasks.backtest_task(td_bt, _frozen_fit(started_from, h, bounds), PRODUCTION, settings, hb)
                    frozen = frozen_candidate(res, td_bt, kind=started_from.kind, trained_until=_naive_utc(started_from.as_of),
                                              horizon=hb, n_windows=ev.n_windows, step=step)
                except (TrainingError, ValueError) as exc:  # e.g. the data's covariates changed since it was trained
                    cannot = f"it cannot forecast this data ({exc})"
                    log.warning(f"The production model {started_from.version}: {cannot}")
                if frozen is not None:
                    scoring = frozen.scoring
            if frozen is None and (ev.incumbent in ("auto", "refit") or not has_network):
                theirs = _training_config(started_from.config or {})

                def same_as_theirs(key: str) -> bool:
                    mine = _training_config(member_settings[key].model.model_dump(mode="json"))
                    return bool(theirs) and all(mine.get(k) == v for k, v in theirs.items())

                same = {(m.cell, m.seed): m.key for m in plan.members if m.key in comps and same_as_theirs(m.key)}
                spec, to_train = incumbent_spec(started_from.recipe, same, started_from.kind)
                refit_error = ""
                for cell, seed, key in to_train:
                    log.info(f"Refitting the production model's {cell} (seed {seed}) on the backtest windows")
                    s_ = _member_settings(settings, seed, started_from.config)
                    try:
                        comps[key] = tasks.backtest_task(td_bt, _network_fit(s_, run_dir / f"{key}-backtest", cell, key, h,
                                                                             scope),
                                                         key, settings, hb)
                    except TrainingError as exc:
                        refit_error = f"its {cell} could not be refit on the backtest windows ({exc})"
                for c in started_from.recipe.get("components") or []:
                    if c.get("type") == "statistical" and c["model"] not in comps:
                        comps[c["model"]] = tasks.backtest_task(td_bt, _statistical_fit(c["model"], h), c["model"], settings,
                                                                hb)
                if not refit_error:
                    specs.append(spec)
                scoring = refit_error or ("its recipe refit on this run's backtest windows (its networks trained on the backtest's "
                           "training data like the challengers', its stored combination weights)" if has_network else
                           "its recipe refit on this run's backtest windows (a statistical model fits each window's history)")
            elif frozen is None:
                scoring = cannot or (f"it could not be scored: no backtest window lies after its training data "
                                     f"({started_from.as_of})")

        metric, metric_note = usable_metric([comps[s] for s in plan.statistical], ev.metric)
        if metric_note:
            log.warning(metric_note)
            dropped.append(metric_note[0].upper() + metric_note[1:] + ".")
        cands, fallback, fallback_cal = evaluate_candidates(
            specs, comps, td_bt, statistical=list(plan.statistical), metric=metric, resolution=ev.weight_resolution,
            horizon=hb, n_windows=ev.n_windows, step=step, bounds=bounds, max_fallback_share=ev.max_fallback_share,
        )
        for c in cands:
            if c.name == PRODUCTION:
                c.scoring = scoring or ""
        if frozen is not None:
            cands.append(frozen)
        board = candidate_board(cands, metric)
        by_name = {c.name: c for c in cands}
        paired = paired_scores(cands, frozen, metric) if frozen is not None else None
        decision = decide(board, metric=metric, margin=ev.margin, baselines=list(ev.statistical),
                          incumbent_version=expected, incumbent_scoring=scoring, paired=paired, promote=promote)
    log.info("Decision: " + " ".join(decision.reasons))

    # -- build the chosen candidate, check its forecasts, fall back down the board if they fail
    trained: dict[str, Path] = {}

    def build(name: str) -> Any:
        """The candidate as a model: a registered version (production) or a recipe whose networks
        are trained on all data, written to an artifact directory."""
        if td_bt is None:  # nothing was scored: the last resort, without intervals to calibrate
            return last_resort_recipe(horizon=h, season_length=td.meta.season_length,
                                      intervals_note="not calibrated: every series had a single observation, so there "
                                      "were no backtest residuals")
        if name == PRODUCTION:  # as registered; one from before intervals gets them from this backtest
            recipe = load_recipe(started_from)
            if not recipe.intervals.get(recipe.name) and by_name[PRODUCTION].calibration:
                recipe.intervals = {**fallback_cal, **recipe.intervals, recipe.name: by_name[PRODUCTION].calibration}
                recipe.fallback = recipe.fallback or list(fallback)
            return recipe
        cand = by_name[name]
        comps_out: list[dict[str, Any]] = []
        weights: list[float] = []
        art_dir = run_dir / "candidates" / name
        shutil.rmtree(art_dir, ignore_errors=True)
        for (_label, keys), w in zip(cand.spec.groups, cand.weights):
            if w <= 0:  # a member the learned weights left out is not trained for production
                continue
            for key in keys:
                member = next((m for m in plan.members if m.key == key), None)
                if member is None:
                    comps_out.append({"type": "statistical", "model": key})
                else:
                    if key not in trained:
                        log.info(f"Training {key} on all data up to {as_of:%Y-%m-%d} for production")
                        trained[key] = _train_member(td, member_settings[key], run_dir / key, member.cell,
                                                     task_label(label[key], final=True), scope).path
                    dest = art_dir / "members" / key
                    dest.mkdir(parents=True, exist_ok=True)
                    for f in ("model.ckpt", "meta.json"):
                        shutil.copy2(trained[key] / f, dest / f)
                    comps_out.append({"type": "network", "cell": member.cell, "seed": member.seed,
                                      "path": f"members/{key}"})
                weights.append(w / len(keys))
        total = sum(weights)
        weights = [w / total for w in weights]
        intervals = {name: cand.calibration, **{s: fallback_cal[s] for s in fallback if s != name}}
        extra = {"horizon": h, "metric": metric, "season_length": td.meta.season_length}
        if len(cand.spec.groups) > 1:
            extra["weights_note"] = (cand.spec.note or f"learned on {ev.n_windows} backtest window(s) ({metric})")
        recipe = Recipe(name=name, kind=kind_of(comps_out), components=comps_out, weights=weights,
                        fallback=[s for s in fallback if s != name], intervals=intervals,
                        base=art_dir if any(c["type"] == "network" for c in comps_out) else None, extra=extra)
        if recipe.base is not None:
            recipe.save(art_dir)
        return recipe

    def attempt(name: str) -> tuple[Any, Any]:
        model = build(name)
        return model, tasks.forecast_task(model, td, h, bounds)

    def check(fc: Any) -> Any:
        return check_forecasts(fc.frame, expected_ids=td.ids, horizon=h, bounds=bounds, fallbacks=fc.fallbacks,
                               max_fallback_share=ev.max_fallback_share, require_intervals=td_bt is not None)

    chosen, model_obj, rf, notes = first_publishable(decision.order, attempt, check)
    notes = [*data.notes, *tuned_notes, *bt_spans.notes] + dropped + notes
    for n in notes:
        log.warning(n)
    if chosen is None or rf is None:
        reporting.decision_artifact(decision_markdown(decision, board, published=None, published_version=None,
                                                      descriptions={}, notes=notes), scope)
        raise TrainingError("no candidate produced forecasts fit to publish: " + " ".join(notes))
    if chosen != decision.publish:
        notes.append(f"{chosen} publishes instead of {decision.publish}.")
    if rf.fallbacks.height:
        by_model = rf.fallbacks.group_by("model").len().sort("model").rows()
        notes.append(f"{rf.fallbacks.height} series it cannot forecast were forecast by its fallback: "
                     + ", ".join(f"{n} by {m}" for m, n in by_model) + ".")

    # -- register, promote (compare and swap), publish
    registered: dict[str, str] = {}
    fingerprint = {"source": name_of_data, "fingerprint": data.fingerprint, "as_of": as_of.isoformat()}

    def register(name: str, recipe: Recipe) -> Any:
        row = next((r for r in board.to_dicts() if r["model"] == name), {})  # none: nothing was scored
        metrics = {k: row.get(k) for k in ("rank", "smape", "mase", "mae", "rmse", "coverage80", "coverage95", "msis")}
        mv = tasks.register_task(
            settings, recipe.base, name=name, dataset=name_of_data, kind=recipe.kind,
            recipe={k: v for k, v in recipe.to_dict().items() if k != "name"},
            config={**mc.model_dump(mode="json"), "evaluation": ev.model_dump(mode="json")},
            fingerprint=fingerprint, metrics=metrics, as_of=as_of, created_at=started,
        )
        registered[name] = mv.version
        log.info(f"Registered {name} ({recipe.kind}) as {mv.version}")
        return mv

    if chosen == PRODUCTION:
        assert started_from is not None, "production is a candidate only when a model is in production"
        version = started_from
    else:
        version = register(chosen, model_obj)
    if refit_all:
        for cell in mc.cells:
            if cell != chosen and cell in by_name:
                register(cell, build(cell))
    promoted = False
    if promote and chosen != PRODUCTION and decision.action != "publish":  # publish: production stays
        tasks.promote_task(settings, version.version, " ".join(decision.reasons), dataset=name_of_data,
                           expected=expected, at=started)
        promoted = True
        log.info(f"Promoted {version.version} to production of {name_of_data} (it was {expected or 'empty'})")
    elif not promote:
        registry.record_champion(version.version, dataset=name_of_data, reason="retrain without promotion",
                                 at=started, as_of=as_of)

    descriptions = {c.name: c.describe() for c in cands if c.name != PRODUCTION}
    if started_from is not None:
        descriptions[PRODUCTION] = f"{started_from.version}, {started_from.describe()}"
    md = decision_markdown(decision, board, published=chosen, published_version=version.version,
                           descriptions=descriptions, notes=notes, n_windows=ev.n_windows, horizon=hb)
    reporting.decision_artifact(md, scope)
    if board.height:
        reporting.leaderboard_artifact(board, metric, scope, champion=chosen)
        _print_board(log, board, metric, chosen)

    receipt = publish_forecasts(settings, data, rf.frame, as_of=as_of, model=version.name,
                                model_version=version.version, note=" ".join(notes))
    record_in_run(settings, data, as_of=as_of, run_id=run_id)  # how earlier forecasts turned out
    return {
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "dataset": name_of_data,
        "n_series": td.n_series,
        "rows_in": data.rows_in,
        "rows_valid": data.rows_valid,
        "rows_quarantined": data.rows_quarantined,
        **run_counts(data),
        "horizon": h,
        "leaderboard": _board_json(board),
        "decision": {"promote": promoted, "action": decision.action, "challenger": decision.champion,
                     "champion": decision.champion, "publish": chosen, "reasons": list(decision.reasons),
                     "incumbent": expected, "incumbent_scoring": scoring, "notes": notes},
        "registered": registered,
        "champion": version.name,  # the published model (the production model's own name when it stays)
        "model_version": version.version,
        "kind": version.kind,
        "fallback_series": int(rf.fallbacks.height),
        "fallbacks": rf.fallbacks.head(_LISTED).to_dicts(),  # series made by a fallback: model and reason
        "excluded": td.excluded.head(_LISTED).to_dicts(),  # series not forecast, with the reason
        "spans": {"lookback": mc.lookback, "val_size": td.meta.val_size, "n_windows": bt_spans.n_windows,
                  "network_min_length": td.meta.min_length, "backtest_min_length": bt_spans.need},
        "published_rows": int(receipt.rows),
        "store": store_label(settings),
        "parquet": str(receipt.parquet_path) if receipt.parquet_path else None,
        "duckdb": str(receipt.duckdb_path) if receipt.duckdb_path else None,
        "note": " ".join(notes),
    }
