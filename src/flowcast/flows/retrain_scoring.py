"""The retrain's scoring stage: plan the candidates, backtest every network member and statistical
model on the same windows, score the production model fairly, evaluate the candidates, rank them
on a board and decide (`score_candidates`). When every series has a single observation nothing
can be scored and the last resort's decision stands in (`nothing_to_score`).

Both return a `Scored`, what the rest of `retrain_flow` (build, check, register, publish) needs.
They are plain functions called from the flow; the Prefect tasks they call (`backtest gru`,
`train gru window 2`, ...) run in the flow's context. Every decision is a pure function under
`flowcast.evaluation`; this module trains, calls them and says what happened.

The production model is scored fairly (`evaluation.incumbent`): with its frozen weights only on
windows after its training data ended, or, when no such window exists (auto) or when asked
(refit), its recipe refit on this run's windows like every challenger; its networks reuse this
run's backtest members when their configuration is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import polars as pl

from flowcast import reporting
from flowcast.config import ModelConfig, Settings
from flowcast.errors import TrainingError
from flowcast.flows import tasks
from flowcast.flows.naming import task_label
from flowcast.wording import listed, noun, plural

if TYPE_CHECKING:
    from flowcast.data.lengths import BacktestSpans
    from flowcast.data.training_data import TrainingData
    from flowcast.evaluation.backtest import BacktestResult
    from flowcast.evaluation.candidates import CandidatePlan, CandidateResult, CandidateSpec
    from flowcast.evaluation.decision import Decision
    from flowcast.models.recipes import Recipe
    from flowcast.models.train import ModelArtifact
    from flowcast.registry import ModelVersion

    Log: TypeAlias = logging.Logger | logging.LoggerAdapter[logging.Logger]  # what get_run_logger returns

Bounds = tuple[float | None, float | None]

# model settings that do not change what a network learns (where and how fast it trains)
_RUNTIME_FIELDS = {"accelerator", "devices", "strategy", "precision", "num_workers", "pin_memory", "checkpoint_every",
                   "num_threads", "launcher", "cells", "blend",
                   # nor these, in the backtest: they only shape the production refit on all data (`warm_settings`)
                   "warm_start_steps", "init_from"}


def training_config(config: dict[str, Any]) -> dict[str, Any]:
    """The model settings in `config` that shape what a network learns (seed excepted)."""
    return {k: config.get(k) for k in ModelConfig.model_fields if k not in _RUNTIME_FIELDS | {"seed"} and k in config}


def member_settings(settings: Settings, seed: int, model: dict[str, Any] | None = None) -> Settings:
    """The run's settings for training one member: its seed, no blend (combinations are candidates
    of their own), and the model configuration of a production recipe when it differs."""
    base = {**settings.model.model_dump(), **training_config(model or {})}
    mc = ModelConfig.model_validate({**base, "seed": seed, "blend": {}})
    return settings.model_copy(update={"model": mc})


def warm_settings(settings: Settings, backtest_dir: Path) -> Settings:
    """The member's settings for its production refit on all data: with model.warm_start_steps, it
    starts from the weights its backtest training wrote to `backtest_dir` and trains that many steps
    at most (max_epochs still bounds it: never longer than a refit from new weights on small data);
    unchanged without it or when that training left no model."""
    mc = settings.model
    ckpt = backtest_dir / "model.ckpt"
    if mc.warm_start_steps is None or not ckpt.exists():
        return settings
    steps = min(mc.warm_start_steps, mc.max_steps) if mc.max_steps > 0 else mc.warm_start_steps
    warm = mc.model_copy(update={"max_steps": steps, "init_from": str(ckpt)})
    return settings.model_copy(update={"model": warm})


def train_member(td: Any, settings: Settings, out_dir: Path, cell: str, label: str,
                 scope: reporting.Scope) -> ModelArtifact:
    """Train one network in a `train <label>` task, its progress artifact moving as it trains."""
    progress = reporting.TrainingProgress(label, label=label, scope=scope)
    artifact = tasks.train_task(td, settings, out_dir, cell, progress, label=label)
    progress.done(artifact.metrics)
    return artifact


def _network_fit(settings: Settings, out_dir: Path, cell: str, key: str, horizon: int, scope: reporting.Scope,
                 started: list[str]):
    """fit(td) for the backtest: train the member on td, return a forecaster for any cut of it.
    With evaluation.refit each window trains its own (`train gru window 2`). A training resumed from a killed
    run's checkpoint, or restarted because it was unreadable, is added to `started` (`ModelArtifact.start_note`)."""
    ev = settings.evaluation
    windows = iter(range(1, ev.n_windows + 1))

    def fit(td_train):
        label = task_label(key, window=next(windows, None) if ev.refit else None, n_windows=ev.n_windows)
        artifact = train_member(td_train, settings, out_dir, cell, label, scope)
        started.extend([artifact.start_note] if artifact.start_note else [])
        return lambda td_cut: tasks.component_task({"type": "network", "path": str(artifact.path)}, td_cut, horizon)

    return fit


def _statistical_fit(name: str, horizon: int):
    def fit(_td_train):
        return lambda td_cut: tasks.component_task({"type": "statistical", "model": name}, td_cut, horizon)

    return fit


def _frozen_fit(version: Any, horizon: int, bounds: Bounds):
    def fit(_td_train):
        from flowcast.models.recipes import forecast_with

        return lambda td_cut: forecast_with(version, td_cut, horizon, bounds=bounds)

    return fit


def backtest_data(settings: Settings, td: Any, horizon: int) -> tuple[Settings, Any, BacktestSpans]:
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
                         given="n_windows" in settings._given.get("evaluation", frozenset()),
                         ids=lengths["unique_id"].cast(pl.Utf8).to_list())
    if spans.n_windows != ev.n_windows or (ev.step and spans.horizon < horizon):
        settings = with_overrides(settings, evaluation={"n_windows": spans.n_windows,
                                                        **({"step": spans.step} if ev.step else {})})
    long_enough = lengths.filter(pl.col("length") >= spans.need)["unique_id"]
    return settings, (td if long_enough.len() == td.n_series else td.subset(long_enough)), spans


def trained_until(as_of: str | None, freq: str, tz: str | None, time_label: str = "start", aggregate: str = "none",
                  shifts: pl.DataFrame | None = None, ids: Sequence[str] = ()) -> datetime | None:
    """The last `ds` a model registered at `as_of` (ISO, its run key) can have seen, on the `ds` axis of
    data of `freq` in zone `tz`: what ingestion kept for that run (`timekeys.observed_through`). Daily and
    coarser `ds` are local dates: a run at 20:00 UTC read the next day's row in Melbourne (UTC+11), and
    that day's actuals are not after its training data; end-labelled data's bound moves back with its ds; an
    aggregated source's period holding as_of was not over, so not trained on (`aggregate`); daily times written
    with an offset were kept from the instant they name (`shifts`, `periods.seen_shifts`: the latest period any
    series had observed, `evaluation.realized.observed_through_series`; `ids`: the series scored, those without a
    shift too, whose days were written without an offset). None without an as_of."""
    from flowcast.timekeys import observed_through, storage_naive

    if not as_of:
        return None
    if shifts is None or not shifts.height:
        return observed_through(as_of, freq=freq, tz=tz, aggregate=aggregate, time_label=time_label)
    from flowcast.evaluation.realized import observed_through_series

    # every series, not those with a shift alone: one whose days were written without an offset was observed by as_of's
    # wall date (a -05:00 series and a plain one: the cut was the -05:00 one's day before, a day the run trained on)
    every = pl.concat([shifts.select(pl.col("unique_id").cast(pl.Utf8)),
                       pl.DataFrame({"unique_id": [str(u) for u in ids]}, schema={"unique_id": pl.Utf8})])
    keys = every.unique().with_columns(pl.lit(storage_naive(as_of), pl.Datetime("us")).alias("at"))
    through = observed_through_series(keys, freq=freq, tz=tz, aggregate=aggregate, time_label=time_label,
                                      shifts=shifts).max()
    assert isinstance(through, datetime)
    return through


@dataclass
class Scored:
    """What the scoring stage leaves the rest of the run: the plan and each network member's
    training settings and label (to train the chosen candidate's members on all data), the
    evaluated candidates and their board, the fallback chain and its calibration, how the
    production model was scored, the metric ranked on, the steps each window scored (`hb`), the
    decision, and the notes the run reports (a member that could not be trained, a metric that
    could not be used). `backtested` is False on the last resort's path (nothing was scored)."""

    plan: CandidatePlan
    member_settings: dict[str, Settings]
    labels: dict[str, str]
    candidates: list[CandidateResult]
    board: pl.DataFrame
    fallback: list[str]
    fallback_cal: dict[str, Any]
    scoring: str | None
    metric: str
    hb: int
    decision: Decision
    notes: list[str] = field(default_factory=list)
    backtested: bool = True
    # each training resumed from a killed run's checkpoint or restarted because it was unreadable
    # (`ModelArtifact.start_note`): the run's notes, but not logged again (its train task said it; ckpt40)
    started: list[str] = field(default_factory=list)

    @property
    def by_name(self) -> dict[str, CandidateResult]:
        return {c.name: c for c in self.candidates}


def nothing_to_score(settings: Settings, td: TrainingData, *, production: ModelVersion | None,
                     promote: bool) -> Scored:
    """Every series has a single observation: nothing to score, the last resort publishes
    (`decision.last_resort_decision`), without a board and without intervals."""
    from flowcast.evaluation.candidates import CandidatePlan
    from flowcast.evaluation.decision import last_resort_decision
    from flowcast.evaluation.selection import candidate_board
    from flowcast.models.recipes import LAST_RESORT

    ev = settings.evaluation
    metric = ev.metric
    decision = last_resort_decision(td.n_series, last_resort=LAST_RESORT, metric=metric, margin=ev.margin,
                                    incumbent_version=production.version if production is not None else None,
                                    promote=promote)
    note = (f"{LAST_RESORT}'s forecasts carry no 80/95% intervals: they could not be calibrated without a "
            "backtest (no residuals to calibrate on).")
    return Scored(plan=CandidatePlan(members=[], statistical=[], specs=[]), member_settings={}, labels={},
                  candidates=[], board=candidate_board([], metric), fallback=[], fallback_cal={}, scoring=None,
                  metric=metric, hb=0, decision=decision, notes=[note], backtested=False)


def score_candidates(settings: Settings, td_bt: TrainingData, spans: BacktestSpans, *, horizon: int, bounds: Bounds,
                     run_dir: Path, scope: reporting.Scope, production: ModelVersion | None, promote: bool,
                     log: Log, shifts: pl.DataFrame | None = None) -> Scored:
    """Backtest every candidate (each network cell, their ensemble, hybrids with statistical
    forecasts, the statistical models, the production model) on the same windows of `td_bt`,
    rank them and decide. Each network member is trained once for the backtest (`backtest_task`
    with `_network_fit`), in `run_dir/<key>-backtest`. `shifts`: `periods.seen_shifts` of the run's data (daily
    times written with an offset), for where the production model's training data ended (`trained_until`)."""
    from flowcast.evaluation.candidates import PRODUCTION, evaluate_candidates, paired_scores, plan_candidates
    from flowcast.evaluation.decision import decide
    from flowcast.evaluation.selection import candidate_board, usable_metric

    ev, mc, h = settings.evaluation, settings.model, horizon
    expected = production.version if production is not None else None
    dropped: list[str] = []
    started: list[str] = []  # (`Scored.started`)
    # -- the candidates and what they are made of
    plan = plan_candidates(cells=list(mc.cells), seeds=ev.seeds, base_seed=mc.seed, statistical=list(ev.statistical),
                           combination=list(ev.combination), ensemble=ev.ensemble, hybrid=ev.hybrid, blend=mc.blend)
    hb = spans.horizon  # steps each backtest window scores (the horizon unless every series is shorter)
    step = ev.step or hb
    log.info(f"Backtesting {len(plan.specs)} candidates on {ev.n_windows} window{'s' if ev.n_windows != 1 else ''} "
             f"of {hb} periods per series")
    comps: dict[str, Any] = {}
    members = {m.key: member_settings(settings, m.seed) for m in plan.members}
    label = {m.key: (m.cell if ev.seeds == 1 else m.key) for m in plan.members}  # what progress bars say
    # no series long enough for a network even in the newest window: say so once, instead of a failed
    # training task (an ERROR line) per member in a run that goes on without them
    longest = int(td_bt.lengths().select(pl.col("length").max()).item() or 0) - hb
    no_network = bool(plan.members) and bool(td_bt.meta.min_length) and longest < td_bt.meta.min_length
    if no_network:
        dropped.append(f"No series is long enough for a network in the backtest (one needs {td_bt.meta.min_length} "
                       f"periods before a window, the longest has {max(longest, 0)}): the network candidates are left out.")
    for m in [] if no_network else plan.members:
        try:
            comps[m.key] = tasks.backtest_task(td_bt, _network_fit(members[m.key], run_dir / f"{m.key}-backtest",
                                                                   m.cell, label[m.key], h, scope, started),
                                                      m.key, settings, hb)
        except TrainingError as exc:  # e.g. no series long enough for a network in the oldest window
            dropped.append(f"{m.key} could not be trained for the backtest ({exc}): the candidates using it are left out.")
    for s in plan.statistical:
        comps[s] = tasks.backtest_task(td_bt, _statistical_fit(s, h), s, settings, hb)
    specs = [sp for sp in plan.specs if all(k in comps for k in sp.keys)]

    # -- the production model, scored fairly
    frozen = None
    scoring = None
    if production is not None:
        refit, frozen, scoring = _score_production(production, settings, td_bt, plan, members, comps, horizon=h,
                                                   hb=hb, step=step, bounds=bounds, run_dir=run_dir, scope=scope,
                                                   log=log, started=started, shifts=shifts)
        if refit is not None:
            specs.append(refit)

    metric, metric_note = usable_metric([comps[s] for s in plan.statistical], ev.metric)
    if metric_note:  # (the retrain logs its notes once, after scoring: these were said twice)
        dropped.append(metric_note[0].upper() + metric_note[1:] + ".")
    cands, fallback, fallback_cal = evaluate_candidates(
        specs, comps, td_bt, statistical=list(plan.statistical), metric=metric, resolution=ev.weight_resolution,
        horizon=hb, n_windows=ev.n_windows, step=step, bounds=bounds, max_fallback_share=ev.max_fallback_share,
        shrink=ev.shrink,
    )
    for c in cands:
        if c.name == PRODUCTION:
            c.scoring = scoring or ""
    if frozen is not None:
        cands.append(frozen)
    board = candidate_board(cands, metric)
    paired = paired_scores(cands, frozen, metric) if frozen is not None else None
    decision = decide(board, metric=metric, margin=ev.margin, baselines=list(ev.statistical),
                      incumbent_version=expected, incumbent_scoring=scoring, paired=paired, promote=promote)
    _calibrate_published(settings, td_bt, cands, decision.publish, fallback, fallback_cal, comps,
                         statistical=list(plan.statistical), horizon=h, hb=hb, step=step, bounds=bounds, log=log,
                         production_calibrated=production is not None and registered_intervals(production))
    return Scored(plan=plan, member_settings=members, labels=label, candidates=cands, board=board, fallback=fallback,
                  fallback_cal=fallback_cal, scoring=scoring, metric=metric, hb=hb, decision=decision, notes=dropped,
                  started=started)


def registered_intervals(production: ModelVersion | Recipe) -> bool:
    """Whether the registered production model's recipe (or that recipe loaded) has intervals of its own
    (`_Builder.build` keeps them; one from before intervals takes this run's)."""
    from flowcast.models.recipes import load_recipe

    recipe = load_recipe(production)
    return bool(recipe.intervals.get(recipe.name))


# The calibration origins refit each model of the published candidate on every older window and series they take:
# at most ORIGIN_BUDGET series-windows a model beyond the backtest's own windows (reused), the series sampled evenly
# over their sorted ids where there are more, so that the work is bounded by ORIGIN_BUDGET x a model's fit of one
# series, whatever the number of series. At 2,000 (76 of 100 hourly series x 2 years on the 26 older windows) damped
# and its fallback took 486 s at a load of 15, beside a 188 s backtest. At 300 (11 series) the origins of
# snaive_week and damped took 21 s beside a 36 s backtest (another 100 hourly series x 2 years, load 3-10, 1m18s
# in all); each step's pooled 95% quantile still has ~300 scores (vic_elecdemand, one series, takes 28).
ORIGIN_BUDGET = 300


def _calibrate_published(settings: Settings, td_bt: TrainingData, cands: list[CandidateResult], publish: str | None,
                         fallback: list[str], fallback_cal: dict[str, Any], comps: dict[str, BacktestResult], *,
                         statistical: list[str], horizon: int, hb: int, step: int, bounds: Bounds, log: Log,
                         production_calibrated: bool = False) -> None:
    """After the choice: the published candidate (`publish`) and the first model of its fallback chain, where made
    of statistical models alone, get intervals calibrated on the calibration windows (`_calibration_origins`), and so
    does every later model of the chain whose origins that took (a combination's members) or that fits nothing
    (`recipes.FIT_FREE`: the naive family, under a second where theta and damped take most of a minute); those
    later models are refit on windows of their own, so that one needing a longer history (snaive_week's week) does not
    cut the champion's. `fallback_cal` takes the recalibrated models'. The others keep their backtest's calibration,
    and a published candidate with networks records why (`candidates.networks_kept_calibration`). Nothing is refit
    where the production model publishes with its registered intervals (`production_calibrated`): `build` uses this
    run's `fallback_cal` only for one registered without them."""
    from flowcast.evaluation.candidates import PRODUCTION, calibrate_on_origins, networks_kept_calibration
    from flowcast.models.recipes import FIT_FREE

    by_name = {c.name: c for c in cands}
    chosen = by_name.get(publish or "")
    wanted = settings.evaluation.calibration_windows
    if chosen is None or not wanted or (chosen.name == PRODUCTION and production_calibrated):
        return
    if chosen.spec.networks:  # the older origins the data leave room for, that its networks cannot use
        from flowcast.models.recipes import min_points

        meta = td_bt.meta
        history = max([settings.model.lookback] + [min_points(k, meta.season_length, meta.freq)
                                                   for k in chosen.spec.keys if k in statistical])
        networks_kept_calibration(chosen, comps, wanted=wanted,
                                  origins=_origin_room(settings, td_bt, history=history, hb=hb))
    chain = [s for s in fallback if s != chosen.name]
    done: list[str] = []
    no_room: list[tuple[list[str], int, int, int]] = []
    for group, free_only in (([chosen.name, *chain[:1]], False), (chain[1:], True)):
        targets = [by_name[n] for n in dict.fromkeys(group) if n in by_name and n not in done and all(
            k in statistical and k in comps and (k in FIT_FREE or not free_only) for k in by_name[n].spec.keys)]
        models = list(dict.fromkeys(k for t in targets for k in t.spec.keys))
        found = _calibration_origins(settings, td_bt, models, comps, horizon=horizon, hb=hb, step=step, log=log,
                                     no_room=no_room) if models else None
        if found is None:
            continue
        origins, td_o = found
        # the chain's later models whose origins these are (a combination's members) come for nothing
        named = {t.name for t in targets}
        targets += [by_name[n] for n in chain if n in origins and n in by_name and n not in done and n not in named]
        done += calibrate_on_origins(targets, origins, td_o, horizon=hb, bounds=bounds, fallback=fallback)
    for name in done:
        if name in fallback_cal:
            fallback_cal[name] = by_name[name].calibration
    if no_room:  # once for the run, not once per group of models
        log.info(_no_room_line(settings, no_room, hb=hb))


def _origin_room(settings: Settings, td_bt: TrainingData, *, history: int, hb: int) -> int:
    """How many calibration windows of `hb` periods (`candidates.calibration_windows`) the series of `td_bt` leave
    room for after the `history` periods a model needs (0: none, or none asked for)."""
    from flowcast.evaluation.candidates import calibration_windows

    return calibration_windows(td_bt.lengths()["length"].to_list(), horizon=hb,
                               wanted=settings.evaluation.calibration_windows, history=history,
                               share=settings.preprocess.length_share)


def _no_room_line(settings: Settings, no_room: list[tuple[list[str], int, int, int]], *, hb: int) -> str:
    """The log's sentence for the groups of models (`no_room`: each group's models, the periods they need, the
    calibration windows the data leave room for after them and the backtest's windows) whose calibration windows
    would be no more than the backtest's own: their intervals stay the backtest's."""
    share = settings.preprocess.length_share
    backtested = sorted({b for *_, b in no_room})
    windows = " / ".join(str(b) for b in backtested)
    rooms = [f"{plural(n, 'window')} of {plural(hb, 'period')} after the {history} periods {listed(models)} "
             f"{noun(len(models), 'needs', 'need')}" for models, history, n, _ in no_room]
    return (f"The intervals are calibrated on the backtest's {windows} {noun(backtested[-1], 'window')}, not on "
            f"evaluation.calibration_windows {settings.evaluation.calibration_windows}: {share:.0%} of the series "
            f"leave room for {listed(rooms)}")


def _calibration_origins(settings: Settings, td_bt: TrainingData, models: list[str], comps: dict[str, BacktestResult],
                         *, horizon: int, hb: int, step: int, log: Log,
                         no_room: list[tuple[list[str], int, int, int]] | None = None
                         ) -> tuple[dict[str, BacktestResult], TrainingData] | None:
    """The statistical `models`' forecasts on the calibration windows (`candidates.calibration_windows`: a window
    every `hb` periods) of the series long enough for them (at most `ORIGIN_BUDGET` series-windows a model beyond the
    backtest's windows, which serve as the newest where they are `hb` apart), and those series' data; None (the log
    says why, or `no_room` takes the models, the periods they need, the windows there is room for and the backtest's
    windows, for the caller to say once) where they would be no more than the backtest's own."""
    from flowcast.evaluation.backtest import BacktestResult, window_forecasts
    from flowcast.evaluation.candidates import evenly_spaced
    from flowcast.models.recipes import min_points

    ev, meta = settings.evaluation, td_bt.meta
    if not models or not ev.calibration_windows:
        return None
    history = max(min_points(s, meta.season_length, meta.freq) for s in models)
    lengths = td_bt.lengths()
    n = _origin_room(settings, td_bt, history=history, hb=hb)
    backtested = int(comps[models[0]].summary.get("n_windows") or ev.n_windows)
    if n <= backtested:
        said = (models, history, n, backtested)
        if no_room is None:
            log.info(_no_room_line(settings, [said], hb=hb))
        else:
            no_room.append(said)
        return None
    reuse = backtested if step == hb and all(comps[s].summary.get("horizon") == hb for s in models) else 0
    ids = lengths.filter(pl.col("length") >= history + n * hb)["unique_id"].sort()
    cap = max(1, ORIGIN_BUDGET // (n - reuse))
    long_enough = len(ids)
    if long_enough > cap:
        ids = ids.gather(evenly_spaced(long_enough, cap))
    td_o = td_bt.subset(ids)
    log.info(f"Calibrating the intervals of {', '.join(models)} on {n} windows of {hb} periods "
             f"(evaluation.calibration_windows; the newest {reuse} the backtest's) of {len(ids):,} of "
             f"{td_bt.n_series:,} series ({long_enough:,} long enough; at most {ORIGIN_BUDGET:,} series-windows "
             "refit a model)")
    parts, _ = window_forecasts(td_o, {s: _statistical_fit(s, horizon) for s in models}, n_windows=n, step=hb,
                                horizon=hb, newest=reuse)
    keep = pl.col("unique_id").is_in(ids.implode())
    out = {}
    for s in models:
        newest = [comps[s].forecasts.filter(keep).with_columns((pl.col("window") + (n - reuse)).cast(pl.Int32))] \
            if reuse else []
        rows = pl.concat([*parts[s], *newest], how="diagonal_relaxed").sort("unique_id", "window", "step")
        out[s] = BacktestResult(name=s, forecasts=rows, metrics=pl.DataFrame())
    return out, td_o


def _score_production(
    production: ModelVersion, settings: Settings, td_bt: TrainingData, plan: CandidatePlan,
    members: dict[str, Settings], comps: dict[str, BacktestResult], *, horizon: int, hb: int, step: int,
    bounds: Bounds, run_dir: Path, scope: reporting.Scope, log: Log, started: list[str],
    shifts: pl.DataFrame | None = None,
) -> tuple[CandidateSpec | None, CandidateResult | None, str | None]:
    """(the production model's recipe as a candidate spec, refit on this run's windows; its frozen
    candidate; how it was scored): frozen when it has networks and `evaluation.incumbent` allows
    and a window lies after its training data, else its recipe refit (auto, refit, or no network);
    the refit spec is None when it was not refit or one of its networks could not be. The backtests
    of its members that this run did not train already are added to `comps` (their trainings resumed or
    restarted from a killed run's checkpoint said in `started`)."""
    from flowcast.evaluation.candidates import PRODUCTION, frozen_candidate, incumbent_spec

    ev, h = settings.evaluation, horizon
    frozen = None
    scoring = None
    cannot = ""
    refit: CandidateSpec | None = None
    has_network = any(c.get("type") == "network" for c in production.recipe.get("components") or [])
    if ev.incumbent in ("auto", "frozen") and has_network:
        log.info(f"Scoring the production model {production.version} with its frozen weights")
        try:
            res = tasks.backtest_task(td_bt, _frozen_fit(production, h, bounds), PRODUCTION, settings, hb)
            saw = trained_until(production.as_of, td_bt.meta.freq, td_bt.meta.tz, td_bt.meta.time_label,
                                getattr(td_bt.meta, "aggregate", "none"), shifts, td_bt.ids)
            frozen = frozen_candidate(res, td_bt, kind=production.kind, trained_until=saw,
                                      horizon=hb, n_windows=ev.n_windows, step=step)
        except (TrainingError, ValueError) as exc:  # e.g. the data's covariates changed since it was trained
            cannot = f"it cannot forecast this data ({exc})"
            log.warning(f"The production model {production.version}: {cannot}")
        if frozen is not None:
            scoring = frozen.scoring
    if frozen is None and (ev.incumbent in ("auto", "refit") or not has_network):
        theirs = training_config(production.config or {})

        def same_as_theirs(key: str) -> bool:
            mine = training_config(members[key].model.model_dump(mode="json"))
            return bool(theirs) and all(mine.get(k) == v for k, v in theirs.items())

        same = {(m.cell, m.seed): m.key for m in plan.members if m.key in comps and same_as_theirs(m.key)}
        spec, to_train = incumbent_spec(production.recipe, same, production.kind)
        refit_error = ""
        for cell, seed, key in to_train:
            log.info(f"Refitting the production model's {cell} (seed {seed}) on the backtest windows")
            s_ = member_settings(settings, seed, production.config)
            try:
                comps[key] = tasks.backtest_task(
                    td_bt, _network_fit(s_, run_dir / f"{key}-backtest", cell, key, h, scope, started), key, settings,
                    hb)
            except TrainingError as exc:
                refit_error = f"its {cell} could not be refit on the backtest windows ({exc})"
        for c in production.recipe.get("components") or []:
            if c.get("type") == "statistical" and c["model"] not in comps:
                comps[c["model"]] = tasks.backtest_task(td_bt, _statistical_fit(c["model"], h), c["model"], settings, hb)
        if not refit_error:
            refit = spec
        scoring = refit_error or ("its recipe refit on this run's backtest windows (its networks trained on the backtest's "
                   "training data like the challengers', its stored combination weights)" if has_network else
                   "its recipe refit on this run's backtest windows (a statistical model fits each window's history)")
    elif frozen is None:
        scoring = cannot or (f"it could not be scored: no backtest window lies after its training data "
                             f"({production.as_of})")
    return refit, frozen, scoring
