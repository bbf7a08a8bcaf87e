"""The forecast flow: the production model forecasts the data up to as_of and publishes.

No training. The model is the dataset's production version, whatever its kind (network,
statistical, ensemble, hybrid), forecasting through `flowcast.models.recipes` like the retrain
flow and backfills: per-series fallback for the series it cannot forecast (named in the `model`
column of every row) and calibrated 80/95% intervals. When nothing was promoted (only retrains
without promotion ran), the champion the last retrain chose publishes. A run whose as_of lies before
that model's training data ended takes the newest model promoted for data up to it, else keeps it
and says so (`model_for_as_of`). The forecasts are checked
before they are published (every series, finite, within the source's declared bounds): a model
that fails on more than `evaluation.max_fallback_share` of the series fails the run instead of
publishing. Without any model it fails with one sentence telling the user to retrain first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from prefect import get_run_logger

from flowcast import reporting
from flowcast.config import SourceConfig
from flowcast.data.lengths import horizon_beyond_history
from flowcast.errors import AlreadyPublished, ModelFileError, RegistryError, SamePublished, TrainingError
from flowcast.flows import tasks
from flowcast.flows.common import (
    RUN_COUNT_KEYS,
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
    run_counts,
    run_identity,
    says_what_it_skipped,
    source_tz,
    store_label,
)
from flowcast.flows.naming import run_name
from flowcast.flows.parameters import DatasetChoice, RunOverrides
from flowcast.ops.accuracy import realized_json, record_in_run
from flowcast.ops.hooks import on_run_failure
from flowcast.ops.quiet import skip_if_unchanged
from flowcast.registry import PIN_TTL_HOURS
from flowcast.source_secrets import flow
from flowcast.timekeys import observed_through, storage_naive, utc_text


def _model_horizon(version: Any) -> int | None:
    """The horizon a version was built for (its recipe's, or an older network's own)."""
    import json

    h = (version.recipe or {}).get("horizon")
    if h:
        return int(h)
    for c in (version.recipe or {}).get("components") or []:
        if c.get("type") == "network":
            meta = version.path / (c.get("path") or ".") / "meta.json"
            if meta.exists():
                m = json.loads(meta.read_text())
                return m.get("horizon") or (m.get("hparams") or {}).get("horizon")
    return None


def promoted_before(registry: Any, dataset: str, model: Any) -> tuple[Any, ...]:
    """The versions a run of `dataset` at an as_of before `model`'s training data ended may take instead of `model`
    (`model_for_as_of`), read from the registry's history once: every version promoted (or recorded as champion) for
    `dataset`, but `model`, one rolled back from or withdrawn since (by its last word: one promoted again after a
    rollback from it is a choice) and one removed since (gc), in the order of their first promotion. Metadata only
    (at a URL: no download of every candidate)."""
    from flowcast.errors import RegistryError

    events = registry.history(dataset)
    dropped: set[Any] = set()
    for e in events:
        if e.get("action") == "rollback":
            dropped.add(e.get("previous"))
        elif e.get("action") in ("withdraw", "retract", "withdraw_champion"):
            dropped.add(e.get("version"))
        elif e.get("action") in ("promote", "champion"):
            dropped.discard(e.get("version"))
    out = []
    for name in dict.fromkeys(e.get("version") for e in events if e.get("action") in ("promote", "champion")):
        if not name or name in dropped or name == model.version:
            continue
        try:
            out.append(registry.get(name, fetch=False))
        except RegistryError:  # removed since (gc): not a choice
            continue
    return tuple(out)


def data_end(model: Any, source: SourceConfig | None = None) -> datetime | None:
    """The last period `model`'s training data covered, as a `ds` of `source`'s axis (naive: wall time in its tz for
    daily and coarser data, UTC for sub-daily; `source` None: naive UTC, each period labelled by its start): its
    data fingerprint's `last_observation` (the newest ds of its training data, which a retrain records), else the
    last ds its run's as_of had observed (`timekeys.observed_through`: that as_of bounds the data ingest read for it,
    an end-labelled or aggregated period once over); None where neither is recorded. Not the run's as_of itself: a
    retrain today of data that ended a year ago saw nothing of the year between."""
    last = model.last_observation()
    if last:
        return storage_naive(last)
    return _observed_through(model.as_of, source) if model.as_of else None


def _observed_through(as_of: datetime | str, source: SourceConfig | None) -> datetime:
    """The latest ds of `source` a run at `as_of` had observed (`timekeys.observed_through`, the bound ingest cut its
    rows by); `source` None: `as_of` as naive UTC."""
    if source is None:
        return storage_naive(as_of)
    return observed_through(as_of, freq=source.freq, tz=source.tz, aggregate=source.aggregate,
                            time_label=source.time_label)


def _ended_by(end: datetime | None, bound: datetime) -> bool:
    """Whether a model whose training data ended at `end` (`data_end`; None: not recorded) was trained by a run that
    observed up to `bound` (`_observed_through`): a run at that as_of may forecast with it. Data that ended exactly at
    as_of (a start-labelled period dated as_of, an end-labelled or aggregated one over at as_of) was observed by it."""
    return end is None or end <= bound


def _newest_ended_by(ends: Iterable[tuple[Any, datetime | None]], bound: datetime) -> Any | None:
    """Of (version, its `data_end`) pairs in promotion order, the version whose data ended latest at or before
    `bound` (of two that ended together, the later promoted); None where none did."""
    best, best_end = None, None
    for mv, end in ends:
        if end is not None and end <= bound and (best_end is None or end >= best_end):
            best, best_end = mv, end
    return best


def saw_after(model: Any, as_of: datetime, source: SourceConfig | None = None) -> bool | None:
    """Whether `model`'s training data ended after what a run of `source` at `as_of` observed (not `_ended_by`):
    its forecasts of that as_of saw the actuals they are scored on. None where it records no end (`data_end`). A
    publish records it (its receipt's `lookahead`), and realized accuracy reads it: one rule for the forecast's
    warning and the realized rows' `lookahead`."""
    end = data_end(model, source)
    return None if end is None else not _ended_by(end, _observed_through(as_of, source))


def model_for_as_of(registry: Any, dataset: str, model: Any, as_of: datetime,
                    source: SourceConfig | None = None) -> tuple[Any, str | None]:
    """(the model a run at `as_of` forecasts with, a sentence when it is not `model`, the dataset's
    production model or last champion). A model trained on data after `as_of` (a backfill's or a
    `--as-of` run's earlier date) saw actuals that the run must not: its weights, combination and
    calibration were fitted on them. The run takes the newest model promoted (or recorded as champion)
    for `dataset` whose training data ended at or before `as_of` (`_newest_ended_by` of `promoted_before`); when there
    is none it keeps `model` and the sentence says that its forecasts are not the ones a run at that as_of could
    have made. `source`: the dataset's source, whose ds axis the data's end is compared on (`_ended_by`)."""
    end, bound = data_end(model, source), _observed_through(as_of, source)
    if _ended_by(end, bound):
        return model, None
    # where its data ended, not when it was trained, is what the check compares: both said (a retrain today of data
    # that ended a year ago read 'trained at as_of <today>, after this as_of'), each once: `trained_text` names a
    # recorded last observation (it said '(last observation 2014-12-31); its data ended 2014-12-31'), else the end
    # its run's as_of bounds ('then' where it is that as_of)
    ended = ("" if model.last_observation() else "; its data ended then" if utc_text(end) == utc_text(model.as_of)
             else f"; its data ended {utc_text(end)}")
    after = f"{model.version} was trained at {model.trained_text()}{ended}, after this as_of"
    best = _newest_ended_by(((mv, data_end(mv, source)) for mv in promoted_before(registry, dataset, model)), bound)
    if best is not None:
        best = registry.get(best.version)  # its files, where the registry is remote
        return best, (f"{after}: {best.version}, the newest model promoted for data up to it (trained at "
                      f"{best.trained_text()}), forecasts it.")
    return model, (f"{after}, and no model of {dataset} was promoted for data up to it: these forecasts are not the "
                   "ones a run at this as_of could have made (a backfill with mode=retrain makes those).")


def run_model(registry: Any, dataset: str, as_of: datetime | None, source: SourceConfig | None = None) -> Any | None:
    """The model a forecast run of `dataset` at `as_of` forecasts with, as `forecast_flow` chooses it: the production
    model, else the last champion, or the newest model promoted for data up to `as_of` where that one was trained on
    later data (`model_for_as_of`; `source`: the dataset's, `_ended_by`); None where there is none. `as_of` None: a
    run as of now."""
    return run_models(registry, dataset, source)(as_of)


def run_models(registry: Any, dataset: str,
               source: SourceConfig | None = None) -> Callable[[datetime | None], Any | None]:
    """`run_model` of many as_ofs (a backfill's dates, checked before its runs): as_of -> the model its run forecasts
    with, of one read of the production pointer and, at the first as_of before the model's data ended (`_ended_by`
    on `source`'s ds axis), of the history (`promoted_before`; each date read both: ~2,000 reads of the registry for
    an hourly backfill of three months), each chosen version's files fetched once, each version's data end and each
    as_of's observed bound computed once (they were per version per date: the choice for 2,000 end-labelled hourly
    dates of 10 versions measured 11.5 s, 0.41 s since). An error reading the registry is raised at the as_of that
    needed it, and read again at the next."""
    model = registry.production(dataset) or registry.champion(dataset)
    model_end = None if model is None else data_end(model, source)
    ends: list[tuple[tuple[Any, datetime | None], ...]] = []  # (version, its data end) of `promoted_before`, once
    fetched: dict[str, Any] = {}

    def at(as_of: datetime | None) -> Any | None:
        if model is None or as_of is None:
            return model
        bound = _observed_through(as_of, source)  # (a `pl.select` for end-labelled or aggregated data: once a date)
        if _ended_by(model_end, bound):
            return model
        if not ends:
            ends.append(tuple((mv, data_end(mv, source)) for mv in promoted_before(registry, dataset, model)))
        best = _newest_ended_by(ends[0], bound)
        if best is None:
            return model
        if best.version not in fetched:
            fetched[best.version] = registry.get(best.version)  # its files, where the registry is remote
        return fetched[best.version]

    return at


def damaged_model_sentence(version: str, which: str, dataset: str, problem: str) -> str:
    """What a forecast run says when a file of the version it forecasts with is missing or damaged."""
    return (f"{version}, {which} of {dataset}, cannot forecast: {problem}; nothing was published. Roll production "
            f"back to the model before it (`flowcast models rollback --dataset {dataset}`) or retrain (`flowcast run`), "
            f"then run the forecast again; `flowcast gc --version {version} --yes` removes the damaged version once it "
            "is out of production")


# the keys of the forecast flow's result (`flowcast forecast --json`), the same on every path it ends by: published,
# skipped (its as_of published already, found before the run or under the publish's lock) or unchanged (nothing new
# to publish). A key a path cannot know is null: a run skipped before it read the data knows none of the data's
# (n_series, excluded, series_excluded, the freshness keys of RUN_KEYS), one that published nothing no store paths.
# The early returns lacked `excluded` and `series_excluded` (and more), where the published result had them.
FORECAST_KEYS = ("as_of", "run_id", "dataset", "n_series", "rows_in", "rows_valid", "rows_quarantined",
                 *RUN_COUNT_KEYS, "model", "model_version", "kind", "fallback_series", "fallbacks", "excluded",
                 "series_excluded", "published_rows", "models", "skipped", "published_by", "unchanged", "realized",
                 "note", "store", "parquet", "duckdb")


def _result(**values: Any) -> dict[str, Any]:
    """A forecast flow result with every key of FORECAST_KEYS (null where not given; skipped and unchanged false)."""
    unknown = sorted(set(values) - set(FORECAST_KEYS))
    if unknown:  # a key added on one path only: add it to FORECAST_KEYS, so that every path has it
        raise ValueError(f"forecast result keys not in FORECAST_KEYS: {', '.join(unknown)}")
    return {k: values.get(k, False if k in ("skipped", "unchanged") else None) for k in FORECAST_KEYS}


def _data_result(data: Any) -> dict[str, Any]:
    """What a forecast result says of the data the run read: its counts, freshness and the series not forecast."""
    return {"n_series": data.td.n_series, "rows_in": data.rows_in, "rows_valid": data.rows_valid,
            "rows_quarantined": data.rows_quarantined, **run_counts(data),
            # series not forecast, with the reason: every row quarantined, or excluded by preprocessing
            "excluded": [*data.report.series_quarantined, *data.td.excluded.to_dicts()][:100],
            # all of them (the list stops at 100): the data's series = n_series + series_excluded
            "series_excluded": len(data.report.series_quarantined) + data.td.excluded.height}


@flow(name="forecast", flow_run_name=run_name, validate_parameters=True, on_failure=[on_run_failure])
@fails_without_a_result
@crash_on_interrupt
@says_what_it_skipped
def forecast_flow(
    as_of: datetime | date | str | None = None,
    dataset: DatasetChoice = None,
    source: SourceConfig | None = None,
    horizon: int | None = None,
    config_file: str | None = None,
    home: str | None = None,
    overrides: RunOverrides | None = None,
    overwrite: bool | None = None,
) -> dict[str, Any]:
    """Forecast every series with the production model from the data up to `as_of` and publish
    the forecasts under that as_of.

    Args:
        as_of: run key, ONE instant: only observations with ds <= as_of are used. An ISO
            timestamp; without a UTC offset it means UTC. A date alone (2021-06-30) is the midnight
            that day starts at in the source's tz, so its row is included. Empty: the run's scheduled
            start time.
        dataset: the dataset to read: a bundled one (us_employment, vic_elecdemand, m3-*) or one declared
            as [sources.NAME] in the configuration file. Empty: the configuration's `dataset` (config_file,
            FLOWCAST_CONFIG or FLOWCAST_DATASET as the process running the flow sees them: a deployment
            run's, its worker's), us_employment when none names one.
        source: an explicit source (path, id/time/target columns, frequency) to read instead of a dataset.
        horizon: periods to forecast after each series' last observation. Empty: the source's horizon,
            else the frequency's default.
        config_file: a flowcast.toml to read. Empty: FLOWCAST_CONFIG of the process running the flow (a
            deployment run's worker), else the defaults only.
        home: the folder every output goes under (models, warehouse, reports). Empty: FLOWCAST_HOME, else
            the configuration file's `home`, else .flowcast in the working directory (a deployment run's:
            the folder it was deployed from).
        overrides: settings for this run only, by section (model, evaluation, publish, ...): what is
            left empty keeps its configured value.
        overwrite: on: replace the forecasts published already for this as_of. Off: if this as_of is
            published already, publish nothing and name the run that published it. Empty: on for a run
            given its as_of (forecasts identical to the ones published are not written again), off for a
            scheduled run (a schedule slot is published once).
    """
    flow_fault("flow:started")
    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, overrides=overrides
    )
    # a schedule slot is published once: a second flow run of one slot (a `flowcast serve` restarted while it held
    # the slot's run re-creates the deployment's scheduled runs; a Crashed run retried after it had published)
    # publishes nothing and names the run that published it. A run of an as_of given replaces it; off, the dates
    # of `backfill --deployment` without --overwrite (which may start long after the backfill listed the dates to
    # skip) publish nothing where a date is published already
    forced = overwrite is True  # asked for (`backfill --overwrite`): the very forecasts the as_of holds are rewritten
    scheduled = as_of is None  # a schedule slot: its as_of, which its parameters do not hold, goes to its claim
    if overwrite is None:
        overwrite = not scheduled
    as_of = resolve_as_of(as_of, source_tz(settings))
    run_id, started = run_identity(settings.home, as_of if scheduled else None)
    expire_aged(settings, started)

    from flowcast.data.datasets import resolve_source
    from flowcast.evaluation.decision import check_forecasts
    from flowcast.shared import open_registry

    src = resolve_source(settings)
    if not overwrite and (held := published_already(settings, as_of)):
        log.info(reporting.sentences(held[1]))  # ended as the state message and the artifact end it
        reporting.skipped_artifact(held[1], artifact_scope(src.name, as_of), again=held[0] == run_id)
        return _result(as_of=as_of.isoformat(), run_id=run_id, dataset=src.name, published_rows=0, skipped=True,
                       published_by=held[0], note=held[1], store=store_label(settings))
    registry = open_registry(settings)
    production = registry.production(src.name)
    which = "the production model"
    if production is None:
        production = registry.champion(src.name)
        which = "the champion of the last retrain (nothing was promoted)"
    if production is None:
        versions = [v.version for v in registry.list(dataset=src.name)]
        others = sorted(registry.productions())  # a retrain of `--data sales.csv` promoted for dataset 'sales'
        hint = (f"put a registered version in production with `flowcast models promote VERSION` (registered: "
                f"{', '.join(versions[-5:])})" if versions else
                f"this home has production models of {', '.join(others)} only: forecast one of them with the "
                "--dataset or --data options its retrain was given (a file of another name, today's export: "
                f"--data FILE --dataset {others[0]})" if others else
                "run the retrain flow first (`flowcast run`): it backtests every candidate, statistical models "
                "included, and promotes the best")
        raise RegistryError(f"no production model of {src.name} in {registry.location}: {hint}")
    # the production pointer as this run read it: the publish checks it is still that (a model chosen
    # for an earlier as_of below is published while production is unchanged too)
    read_production = production.version if which == "the production model" else None
    chosen, earlier = model_for_as_of(registry, src.name, production, as_of, src)  # never one that saw later data
    if earlier is not None:
        log.warning(earlier)
    if chosen is not production:
        production, which = chosen, "the newest model promoted for data up to this as_of"
    # pinned until this run ends: `flowcast gc` keeps the version (a backfill date's model is often
    # no longer production, its predecessor or the champion), and fails this run here if it went first
    registry.pin(production.version, run=run_id, at=started, until=started + timedelta(hours=PIN_TTL_HOURS))
    try:
        if settings.horizon is None and src.horizon is None:
            # no horizon given or declared: the production model's own, not the frequency's default
            # (a model trained with --horizon 7 cannot forecast the 14 days a daily default asks for)
            model_h = _model_horizon(production)
            if model_h:
                settings = settings.model_copy(update={"horizon": int(model_h)})
        log.info(f"Forecasting as of {utc_text(as_of)} with {which} {production.version} ({production.describe()})")
        data = load_data(settings, as_of)
        if settings.publish.skip_unchanged and (quiet := skip_if_unchanged(settings, data, as_of, production.version)):
            log.info(quiet)
            return _result(as_of=as_of.isoformat(), run_id=run_id, dataset=data.source.name, **_data_result(data),
                           model=production.name, model_version=production.version, kind=production.kind,
                           published_rows=0, unchanged=True, note=quiet, store=store_label(settings))
        from flowcast.evaluation.intermittency import RECIPE_KEY, recorded_bounds
        from flowcast.models.recipes import load_recipe

        # intermittent counts are cut at 0 as the retrain that trained the model cut them (its recorded decision;
        # this run's data decides for a model registered before it was recorded)
        bounds, bound_note = recorded_bounds((data.source.y_min, data.source.y_max),
                                             load_recipe(production).extra.get(RECIPE_KEY), data.td.frame)
        if bound_note:  # a note with the bounds as declared: the recorded cut at 0 that negative values now break
            (log.warning if bounds == (data.source.y_min, data.source.y_max) else log.info)(bound_note)
        try:
            rf = tasks.forecast_task(production, data.td, data.horizon, bounds)
        except ModelFileError as exc:  # it said the file, not whose it is nor what to do
            raise ModelFileError(damaged_model_sentence(production.version, which, src.name, str(exc))) from exc
        calibrated = bool(rf.recipe.intervals)
        if not calibrated:
            why = rf.recipe.extra.get("intervals_note") or "an older flowcast"
            log.warning(f"{production.version} was registered without interval calibration ({why}): its forecasts are "
                        "published without 80/95% intervals until the next retrain")
        check = check_forecasts(rf.frame, expected_ids=data.td.ids, horizon=data.horizon, bounds=bounds,
                                fallbacks=rf.fallbacks, max_fallback_share=settings.evaluation.max_fallback_share,
                                require_intervals=calibrated, no_interval=rf.unscaled, constant=rf.constant)
        if not check.ok:
            raise TrainingError(f"{production.version} did not produce forecasts fit to publish for {src.name} as of "
                                f"{utc_text(as_of)}: {check.sentence()}; nothing was published")
        # each note its own paragraph of the receipt (the retrain's are): joined into one, the receipt of a backfill
        # date said `notes: 1` over a paragraph of four (fallbacks, widths, below 0, trained later), ui44
        notes: list[str] = []
        if (fell := rf.fallback_note(production.name)) is not None:
            log.warning(fell)  # names the first series and why (fallback_note)
            notes.append(fell + ".")
        if (short := rf.short_note()) is not None:
            log.warning(short)
            notes.append(short)
        if (beyond := horizon_beyond_history(data.td.lengths()["length"].to_list(), data.horizon)) is not None:
            log.warning(beyond)
            notes.append(beyond)
        # a level its calibration had too few points for: said again here, as the retrain that registered it did
        missing = rf.missing_level_notes()
        for sentence in missing:
            log.warning(f"{sentence} (calibrated by the retrain that registered {production.version})")
        # a --horizon longer than the backtest's (widened), series of a constant history (zero width): not calibrated
        uncalibrated = rf.interval_notes()
        # counts forecast without the y_min their retrain declared (the bound is the source's, not the model's):
        # intervals below 0 were published without a word, where the retrain's notes said it
        from flowcast.models.recipes import below_zero_note

        if (negative := below_zero_note(data.td.frame, rf.frame, bounds[0])) is not None:
            uncalibrated.append(negative)
        for sentence in uncalibrated:
            log.warning(sentence)
        notes += [*missing, *uncalibrated, *([earlier] if earlier else []), *([bound_note] if bound_note else [])]
        note = " ".join(notes)  # the run's result and the CLI: one text
        # published only while production is still what this run read (none: it forecast with the champion)
        guard = registry.publishing(src.name, read_production)
        receipt = publish_forecasts(settings, data, rf.frame, as_of=as_of, model=production.name,
                                    model_version=production.version, note=notes, guard=guard,
                                    trained_as_of=production.as_of, lookahead=saw_after(production, as_of, src),
                                    if_absent=not overwrite, keep_same=not forced)
        if isinstance(receipt, AlreadyPublished):  # another run of this slot published it since the check above, or
            late = receipt.said  # the key holds these very forecasts (SamePublished)
            if isinstance(receipt, SamePublished):  # what this run says of them (cut at 0, widths) holds for them
                late = reporting.sentences(late, note)
            reporting.skipped_artifact(late, artifact_scope(data.source.name, as_of))
            # the same forecasts are published: earlier ones are scored as after a publish of them
            same = record_in_run(settings, data, as_of=as_of, run_id=run_id) \
                if isinstance(receipt, SamePublished) else None
            return _result(as_of=as_of.isoformat(), run_id=run_id, dataset=data.source.name, **_data_result(data),
                           model=production.name, model_version=production.version, kind=production.kind,
                           fallback_series=int(rf.fallbacks.height), fallbacks=rf.fallbacks.head(100).to_dicts(),
                           published_rows=0, skipped=True, published_by=receipt.held.get("run_id"), note=late,
                           realized=realized_json(same) if isinstance(receipt, SamePublished) else None,
                           store=store_label(settings))
        realized = record_in_run(settings, data, as_of=as_of, run_id=run_id)  # how earlier forecasts turned out
        return _result(
            as_of=as_of.isoformat(),
            run_id=run_id,
            dataset=data.source.name,
            **_data_result(data),
            model=production.name,
            model_version=production.version,
            kind=production.kind,
            fallback_series=int(rf.fallbacks.height),
            fallbacks=rf.fallbacks.head(100).to_dicts(),  # series made by a fallback: model and reason
            published_rows=int(receipt.rows),
            models=list(receipt.models),  # the rows' models, fallbacks included: naive alone where all fell back
            realized=realized_json(realized),
            note=note or None,
            store=store_label(settings),
            parquet=str(receipt.parquet_path) if receipt.parquet_path else None,
            duckdb=str(receipt.duckdb_path) if receipt.duckdb_path else None,
        )
    finally:
        registry.unpin(production.version, run=run_id)
