"""The backfill flow: recompute forecasts as they would have been made on past dates.

One child flow run per as_of in [start, end] stepping by `every`: the forecast flow
(mode="forecast": today's production model on the data up to each date) or the retrain flow
(mode="retrain": models trained on the data up to each date; the production pointer is left
alone and each date publishes its own best model). Dates that already have published
forecasts (for this dataset) are skipped unless `overwrite`. A failing date does not stop the others: every
date's outcome is listed at the end (log, `backfill-summary` artifact, return value) and the
run fails only after all dates were tried, but for a date that found no room to write (a full disk, a quota, a
file-size limit): every later date would find none either, so the backfill stops there and lists them `not run`.

With `deployment` set (e.g. "forecast/forecast-pool") the dates fan out over the deployment's work
pool (flows/fanout.py: `run_deployment` with an idempotency key per date, `wait_for_flow_run`,
a crashed run started again), so that its workers process dates in parallel; a retried
backfill does not start a date twice. Without `overwrite`, each date's run checks again when it starts (it may
have waited in the pool's queue) and publishes nothing when another run published its date meanwhile. Every outcome names the flow run and the worker that ran
it (`in-process` without a deployment).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self, cast

from prefect import get_run_logger

from flowcast import interrupts, reporting
from flowcast.atomic import full_folder, needed_of, no_room, room_for
from flowcast.config import SourceConfig, parse_duration
from flowcast.data.calendar import grid_dates, is_subdaily
from flowcast.errors import ConfigError, DataValidationError, FlowcastError, RunCancelled
from flowcast.flows.common import (
    crash_on_interrupt,
    fails_without_a_result,
    flow_settings,
    run_identity,
    withdraw_unpublished_winner,
    withdrawn_unsaid,
)
from flowcast.flows.fanout import (
    NOT_RUN,
    FanOutCancelled,
    cancel_dates_not_started,
    not_run_outcome,
    stopped_text,
    store_receipt,
)
from flowcast.flows.naming import BACKFILL_TAG, flow_run_title, run_name, run_tags
from flowcast.flows.parameters import DatasetChoice, RunOverrides
from flowcast.ops.hooks import on_run_failure
from flowcast.reporting import IN_PROCESS
from flowcast.source_secrets import flow
from flowcast.timekeys import as_instant, is_date_only, storage_naive, utc_text
from flowcast.wording import plural

# as_of, status (published | replaced | skipped | failed | not run), rows, model, run_id, flow_run, worker, error;
# note: what a date published over (`rewritten`); begins: of a date that failed before the data, the data's first
# as_of (`DataValidationError.begins`). replaced: its run published `rows`, which another run's publish of the date has
# replaced since (`replaced_since`); `error` says what the store holds instead
Outcome = dict[str, Any]
ERRORS_SAID = 5  # the failed dates whose errors a failed backfill's error says whole (`BackfillError`)
_listeners: list[Callable[[Outcome], None]] = []


class BackfillError(FlowcastError):
    """Some dates of a backfill failed; `summary` holds every date's outcome."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None):  # a default: unpickled (a Prefect state,
        super().__init__(message)  # a worker) with its message alone, then its attributes (review42)
        self.summary = summary or {}


class BackfillCancelled(BackfillError, RunCancelled):
    """A fanned-out backfill whose own flow run was cancelled as it waited on its dates in-process (`fan_out`:
    `FanOutCancelled`); `summary` holds every date's outcome. Its run ends Cancelled (`RunCancelled`)."""


class listen:
    """`with listen(callback): backfill_flow(...)` calls back once per date as it finishes
    (the CLI's progress bar). In-process only; remote runs report through the artifact."""

    def __init__(self, callback: Callable[[Outcome], None]):
        self.callback = callback

    def __enter__(self) -> Self:
        _listeners.append(self.callback)
        return self

    def __exit__(self, *exc: object) -> None:
        _listeners.remove(self.callback)


def _done_clause(outcomes: list[Outcome], rerun: str | None = None) -> str:
    """What a failed backfill did complete, for its error (the dates whole; the failed ones hold nothing of
    this run): a full disk's error listed only the failures, and which dates were done was in the table.
    `rerun`: the failed dates a re-run can run (None: all of them; empty: none, they all precede the data)."""
    done = [o for o in outcomes if o["status"] in ("published", "replaced", "skipped")]
    if not done:
        return "; no date was published" + (f": a re-run of the backfill runs {rerun or 'them all'}"
                                            if rerun != "" else "")
    rerun = "the dates that failed" if rerun is None else rerun
    names = ", ".join(f"{utc_text(o['as_of'])} ({o['status']})" for o in done[:10])
    more = f" and {len(done) - 10} more" if len(done) > 10 else ""
    return f"; done, whole: {names}{more}; a re-run of the backfill skips those" + (f" and runs {rerun}"
                                                                                    if rerun else "")


def failed_message(outcomes: list[Outcome], n_dates: int) -> str:
    """A failed backfill's error: the failed dates' errors (the first `ERRORS_SAID` whole), what was done
    (`_done_clause`). The dates before the data's first as_of are said apart, once: one long error each said
    nothing the first did not, and 'a re-run runs the dates that failed' promised what it cannot do there: the
    failed outcomes with `begins` (`DataValidationError.begins`)."""
    failed = [o for o in outcomes if o["status"] == "failed"]
    early = [o for o in failed if o.get("begins")]
    others = [o for o in failed if o not in early]
    said = [f"{utc_text(o['as_of'])}: {o['error']}" for o in others[:ERRORS_SAID]]
    if early:
        names = ", ".join(utc_text(o["as_of"]) for o in early[:10])
        more = f" and {len(early) - 10} more" if len(early) > 10 else ""
        first = early[0]["begins"]
        said.append(f"{names}{more} {'precedes' if len(early) == 1 else 'precede'} the data's first as_of {first}: "
                    f"{'it' if len(early) == 1 else 'they'} cannot be forecast, nor on a re-run (start the backfill "
                    f"at {first} or later); e.g. {utc_text(early[0]['as_of'])}: {early[0]['error']}")
    rerun = None if not early else "the other dates that failed" if others else ""
    not_run = [o for o in outcomes if o["status"] == NOT_RUN]
    if not_run:  # after a date that found no room: its error above names the path; a re-run needs room first
        names = ", ".join(utc_text(o["as_of"]) for o in not_run[:10])
        more = f" and {len(not_run) - 10} more" if len(not_run) > 10 else ""
        said.append(f"not run: {names}{more} ({not_run[0]['error']})")
        rerun = f"{rerun or 'the dates that failed'} and those not run, once there is room"
    return (f"{len(failed)} of {plural(n_dates, 'backfill date')} failed"
            + (f", {len(not_run)} not run" if not_run else "") + ": " + "; ".join(said) + _done_clause(outcomes, rerun))


def stopped_by_no_room(failed: Outcome, rest: list[datetime], folders: list[str | Path]) -> list[Outcome]:
    """The outcomes of the dates `rest` after the date `failed`, whose run found no room to write (`atomic.no_room`:
    a full disk, a quota, a file-size limit): `not run`, each saying where the backfill stopped, the folder of
    `folders` that is full (`atomic.full_folder`: the one the date's error names, the store's before the home's)
    and the bytes the write needed (where its error says them) and left there. A backfill of many dates on a full
    disk ran every one, each failing on the same disk, its forecasts computed for nothing (faults48); the room was
    said of the home, also where the store that was full lies elsewhere (faults49)."""
    error = str(failed.get("error") or "")
    why = (f"the backfill stopped at {utc_text(failed['as_of'])}, whose run found no room to write; "
           f"{room_for(full_folder(error, folders), needed_of(error))}")
    return [not_run_outcome(d, why) for d in rest]


def stops_on_no_room(folders: list[str | Path]) -> Callable[[Outcome], Callable[[datetime], Outcome] | None]:
    """`fan_out`'s `stops`: a date that found no room to write stops a fanned-out backfill as it stops one run here;
    each date whose run had not started is `not run` (`stopped_by_no_room`, the room in `folders`)."""

    def stops(o: Outcome) -> Callable[[datetime], Outcome] | None:
        if o["status"] == "failed" and no_room(o["error"]):
            return lambda d: stopped_by_no_room(o, [d], folders)[0]
        return None

    return stops


def room_folders(settings: Any, store: Any) -> list[str | Path]:
    """Where a backfill's dates write: the store's folder (a local one: `store.url` may put it on another disk than
    the home), then the home."""
    root = getattr(getattr(store, "data", None), "root", None)
    local = bool(getattr(getattr(store, "data", None), "local", False))
    return [*([root] if root and local else []), settings.home]


def _notify(outcome: Outcome) -> None:
    for cb in _listeners:
        try:
            cb(outcome)
        except Exception:  # noqa: BLE001, S110 - a broken progress display must not stop the backfill
            pass


def default_every(freq: str) -> str:
    """A backfill's step where none is given: the data's period, but a day for sub-daily data, the step of the daily
    forecast schedule (`deploy.FORECAST_CRON`) whose publishes a backfill recomputes (session 50: two days of hourly
    data were backfilled at 49 hourly as_ofs, about 6.5 minutes, where the schedule publishes two)."""
    return "1d" if subdaily(freq) else freq


class Grid(NamedTuple):
    """A backfill's as_ofs (naive UTC), its step (`every`: a duration, or the cron whose slots they are) and, where
    they are the slots of the forecast schedule, those slots as said (`slots`: 'the slots of the forecast schedule
    (FLOWCAST_FORECAST_CRON='0 */6 * * *', UTC)'; '': they step by the duration `every`)."""

    dates: list[datetime]
    every: str
    slots: str = ""

    @property
    def said(self) -> str:
        """How the output says the dates' spacing: 'every 1d', 'at the slots of the forecast schedule (...)'."""
        return f"at {self.slots}" if self.slots else f"every {self.every}"


def default_grid(start: datetime | date | str, end: datetime | date | str, every: str | None, freq: str,
                 tz: str | None = None) -> Grid:
    """The as_ofs of a backfill from `start` to `end` (`backfill_dates`) stepping by `every`, where none is given by
    `default_every(freq)`; but of sub-daily data where a forecast cron is configured (FLOWCAST_FORECAST_CRON, read in
    FLOWCAST_TIMEZONE: `deploy.schedule_settings`), the slots of that schedule (`schedule_slots`): its publishes are
    what a backfill recomputes, and a day apart from `start` missed them (a cron of every 6 hours published 4 as_ofs a
    day, at 00:00, 06:00, ...; the backfill recomputed one, at the start's time of day, which no slot had)."""
    if not every and subdaily(freq) and "FLOWCAST_FORECAST_CRON" in os.environ:  # (a UI's empty field: '')
        from flowcast.flows.deploy import schedule_settings

        s = schedule_settings()
        dates = schedule_slots(start, end, s["forecast_cron"], s["timezone"], tz)
        slots = f"the slots of the forecast schedule (FLOWCAST_FORECAST_CRON={s['forecast_cron']!r}, {s['timezone']})"
        if not dates:
            raise ConfigError(f"backfill from {utc_text(as_instant(start, tz))} to {utc_text(as_instant(end, tz))}: no "
                              f"slot of the forecast schedule (FLOWCAST_FORECAST_CRON={s['forecast_cron']!r}, "
                              f"{s['timezone']}) falls in it; widen the range or pass --every")
        return Grid(dates, f"cron {s['forecast_cron']} ({s['timezone']})", slots)
    step = every or default_every(freq)
    return Grid(backfill_dates(start, end, step, tz), step)


def subdaily(freq: str) -> bool:
    """Whether `freq` is sub-daily; False for a duration that does not parse (`backfill_dates` names it)."""
    try:
        return is_subdaily(freq)
    except Exception:  # noqa: BLE001 - named where the dates are made
        return False


def schedule_slots(start: datetime | date | str, end: datetime | date | str, cron: str, cron_tz: str,
                   tz: str | None = None) -> list[datetime]:
    """The slots of `cron` (in zone `cron_tz`) from `start` to `end` inclusive, naive UTC, as `deploy.missed_slots`
    reads a schedule's slots; a date alone is the midnight its day starts at in `tz` (the source's), and an `end`
    given so takes in its whole day (a 06:00 cron from 2024-01-01 to 2024-01-03 has 3 slots, as one as_of a day had).
    More than MAX_SLOTS is a ConfigError. The slots of one range are read once (`_cron_slots`)."""
    from datetime import timedelta

    first = as_instant(start, tz)
    last = (as_instant(date.fromisoformat(str(end).strip()) + timedelta(days=1), tz) - timedelta(microseconds=1)
            if is_date_only(end) else as_instant(end, tz))
    if last < first:
        raise ConfigError(f"backfill end {utc_text(last)} is before start {utc_text(first)}")
    slots = _cron_slots(cron, cron_tz, first, last)
    if len(slots) > MAX_SLOTS:  # (missed_slots stops at its limit: the rest would be left out without a word)
        raise ConfigError(f"backfill from {utc_text(first)} to {utc_text(last)}: the forecast schedule ({cron!r}, "
                          f"{cron_tz}) has more than {MAX_SLOTS:,} slots in it; pass --every or a shorter range")
    return list(slots)


@lru_cache(maxsize=8)
def _cron_slots(cron: str, cron_tz: str, first: datetime, last: datetime) -> tuple[datetime, ...]:
    """The slots of `cron` (in `cron_tz`) from the instant `first` to `last` inclusive, naive UTC, MAX_SLOTS + 1 at
    most (`deploy.missed_slots`). Kept for the next call with the same range: `flowcast backfill` reads its dates
    for its note and checks, then its flow reads them again from the same --start and --end (10,001 slots took
    about 1.5 s each time)."""
    from datetime import timedelta

    from flowcast.flows.deploy import missed_slots

    tick = timedelta(microseconds=1)  # (missed_slots: strictly between)
    return tuple(storage_naive(d) for d in missed_slots(cron, cron_tz, first - tick, last + tick,
                                                        limit=MAX_SLOTS + 1))


MAX_SLOTS = 10_000
"""The most slots of a schedule a backfill runs (`schedule_slots`): a per-minute cron's week has 10,080."""


def backfill_dates(start: datetime | date | str, end: datetime | date | str, every: str,
                   tz: str | None = None) -> list[datetime]:
    """as_of values (naive UTC) from start to end inclusive, stepping by a polars duration ('1d', '1mo') or by
    business days ('1b': the weekdays from start on).

    Given as dates alone, start and end are days of the source's calendar (zone `tz`): the grid steps over
    those days and each as_of is the midnight its day starts at there (`timekeys.as_instant`), the same key
    a single run of that date gets, across daylight-saving changes too. Otherwise they are instants
    (without an offset: UTC) and the grid steps over instants."""
    local = is_date_only(start) and is_date_only(end) and not subdaily(every)  # (a day's hours step over instants)
    if local:
        start, end = storage_naive(as_instant(start)), storage_naive(as_instant(end))  # the dates, as naive midnights
    else:
        start, end = storage_naive(as_instant(start, tz)), storage_naive(as_instant(end, tz))
    if end < start:
        raise ConfigError(f"backfill end {utc_text(end)} is before start {utc_text(start)}")
    try:
        dates = grid_dates(start, end, every)
    except Exception as exc:
        raise ConfigError(f"backfill every={every!r} is not a duration such as 1d, 1b, 1w, 1mo: {exc}") from exc
    if local:
        dates = [storage_naive(as_instant(d.date(), tz)) for d in dates]
    return dates


def model_for_backfill(settings: Any, dataset: str) -> str:
    """Before a forecast backfill starts its dates: the model they will publish (the production
    model, else the champion the last retrain chose, whatever its kind), said once; none is a
    RegistryError that says what to do, instead of one failed run per date."""
    from flowcast.errors import RegistryError
    from flowcast.shared import open_registry

    registry = open_registry(settings)
    production = registry.production(dataset)
    if production is not None:
        # a date before the model's data ended takes an earlier model (`forecast.model_for_as_of`), where there is one: it
        # said 'the newest model promoted for data up to it' of a backfill whose every date had none (ui44)
        said = f"Every date is forecast by the production model {production.version} ({production.describe()})"
        last = production.last_observation()  # where its data ended (`forecast.data_end`), else its run's as_of
        if not last and not production.as_of:
            return said
        ended = (f"its training data ended (last observation {utc_text(last)})" if last else
                 f"the as_of it was trained at ({utc_text(production.as_of)})")
        return (f"{said}, except a date before {ended}: the newest "
                f"model promoted for data up to that date, else {production.version} still (that date's log and "
                "receipt then say its forecasts are not the ones a run at that date could have made)")
    champion = registry.champion(dataset)
    if champion is not None:
        return (f"No model of {dataset} was promoted: every date is forecast by the champion the last retrain chose, "
                f"{champion.version} ({champion.describe()})")
    others = sorted(registry.productions())  # a retrain of `--data sales.csv` promoted for dataset 'sales'
    what = (f"this home has production models of {', '.join(others)} only: pass the --dataset or --data options "
            "their retrain was given" if others else "run the retrain flow first")
    raise RegistryError(f"a forecast backfill of {dataset} needs a model, and {settings.models_dir} holds none for it "
                        f"(nothing promoted, no retrain chose a champion): {what}, or backfill with mode=retrain")


def _published_already(store: Any, dataset: str, as_of: datetime, why: str) -> Outcome | None:
    """The `skipped` outcome of a date the store holds forecasts of (None: nothing published), with the
    rows, model and run of that publish."""
    if not store.has(dataset, as_of):
        return None
    held = store.receipt_of(dataset, as_of)
    return {"as_of": as_of.isoformat(), "status": "skipped", "rows": int(held.get("rows") or 0),
            "model": held.get("model_version") or held.get("model"), "run_id": held.get("run_id"),
            "flow_run": None, "worker": None, "error": why}


def other_settings_note(store: Any, dataset: str, skipped: list[datetime],
                        horizon_at: Callable[[datetime], int | None] | None,
                        model_at: Callable[[datetime], str | None] | None = None) -> str | None:
    """A sentence naming the dates skipped as published whose publish, as its receipt records it, was made with other
    settings that change the forecast than this backfill's run of the date would use: another horizon than
    `horizon_at(date)` (rows / series; `backfill_horizon`), or another model version than `model_at(date)` (a forecast
    backfill's: the model its run of that date forecasts with); None where all match or none can be read (None: not
    compared). The configuration changed between two runs of a backfill (one killed, then run again over the range
    with `horizon` changed, or after a new model was promoted), and the range ends with both. The re-run said only
    `2 published, 2 skipped`, and the store held 48 rows a date before and 24 after (faults43), or damped-v1's
    forecasts a date before and gru-v2's after (inst44: only the horizon was compared)."""
    from flowcast.ops.accuracy import published_horizons

    try:
        horizons = published_horizons(store, dataset, skipped) if horizon_at is not None else {}
    except (FlowcastError, OSError):  # a note: the store's failure is said where a date reads it
        horizons = {}
    swapped = _other_models(store, dataset, skipped, model_at) if model_at is not None else []
    wanted = {a: horizon_at(a) for a in horizons} if horizon_at is not None else {}
    other = sorted((a, h, wanted[a]) for a, h in horizons.items() if wanted[a] is not None and h != wanted[a])
    said = []
    if other:
        one = len({w for _, _, w in other}) == 1  # the dates' runs all take one horizon: named once
        named = ", ".join(f"{utc_text(a)} (horizon {h}{'' if one else f', not {w}'})" for a, h, w in other[:5]) + (
            ", ..." if len(other) > 5 else "")
        said.append(f"{plural(len(other), 'date')} skipped as published {'was' if len(other) == 1 else 'were'} "
                    f"published with another horizon than this backfill's {other[0][2] if one else 'runs of them'}: "
                    f"{named}")
    if swapped:
        named = ", ".join(f"{utc_text(a)} (by {was}, not {now})" for a, was, now in swapped[:5]) + (
            ", ..." if len(swapped) > 5 else "")
        said.append(f"{plural(len(swapped), 'date')} skipped as published {'was' if len(swapped) == 1 else 'were'} "
                    f"published by another model than this backfill forecasts {'it' if len(swapped) == 1 else 'them'} "
                    f"with: {named}")
    if not said:
        return None
    return ("; ".join(said) + "; the range holds both now. Run the backfill with --overwrite (overwrite=True) to "
            "recompute them with the settings of now")


def _other_models(store: Any, dataset: str, skipped: list[datetime],
                  model_at: Callable[[datetime], str | None]) -> list[tuple[datetime, str, str]]:
    """(date, the model version its receipt records, the one `model_at` says this backfill forecasts it with) of each
    skipped date where the two differ; a date whose receipt or model cannot be read is left out (a damaged publish, a
    removed version: said where they are read)."""
    out = []
    for a in sorted(skipped):
        try:
            was, now = store.receipt_of(dataset, a).get("model_version") or None, model_at(a)
        except (FlowcastError, OSError, ValueError):
            continue
        if was and now and was != now:
            out.append((a, was, now))
    return out


def _run_model_at(settings: Any, src: SourceConfig, mode: str) -> Callable[[datetime], Any] | None:
    """In forecast mode, date -> the model this backfill's run of that date forecasts with (`run_model`: the production
    model, else the champion, or the newer model promoted for data up to the date, its data's end compared on `src`'s
    ds axis: `forecast.saw_after`); None in retrain mode (each date trains its own) or where no model is there or
    the registry cannot be read (the dates say so as they run)."""
    from flowcast.flows.forecast import run_models
    from flowcast.shared import open_registry

    if mode != "forecast":
        return None
    try:
        model_at = run_models(open_registry(settings), src.name, src)
        if model_at(None) is None:
            return None
    except (FlowcastError, OSError, ValueError):
        return None
    return model_at


def backfill_model_at(settings: Any, src: SourceConfig, mode: str) -> Callable[[datetime], str | None] | None:
    """In forecast mode, date -> the model version this backfill's run of that date (of `src`) forecasts with
    (`_run_model_at`); None in retrain mode or where no model is there or the registry cannot be read."""
    return _versions(_run_model_at(settings, src, mode))


def _versions(model_at: Callable[[datetime], Any] | None) -> Callable[[datetime], str | None] | None:
    return None if model_at is None else lambda d: str(model_at(d).version)


def backfill_horizon(settings: Any, src: SourceConfig, mode: str) -> Callable[[datetime], int | None]:
    """date -> the horizon this backfill's run of that date publishes with, as the run takes it: the one given or
    declared (`resolve_horizon`), else in forecast mode the own horizon of the model that date forecasts with
    (`_run_model_at`: the production model, the champion, or an older model promoted for data up to the date), as
    `forecast_flow` takes it: a model trained for 6 months publishes 6, not the monthly default's 12. Every date was
    compared with the production model's horizon, and an early date that an older model of another horizon forecasts
    was said to differ (fcst44). None where no model is there to forecast, or its horizon cannot be read (the dates
    say so as they run)."""
    fixed = mode != "forecast" or settings.horizon is not None or src.horizon is not None
    return _horizons(settings, src, None if fixed else _run_model_at(settings, src, mode), fixed)


def backfill_models(settings: Any, src: SourceConfig, mode: str) -> tuple[Callable[[datetime], int | None],
                                                                         Callable[[datetime], str | None] | None]:
    """(`backfill_horizon`, `backfill_model_at`) of one read of the registry's history (`_run_model_at`): each read
    it again when called on its own."""
    model_at = _run_model_at(settings, src, mode)
    fixed = mode != "forecast" or settings.horizon is not None or src.horizon is not None
    return _horizons(settings, src, model_at, fixed), _versions(model_at)


def _horizons(settings: Any, src: SourceConfig, model_at: Callable[[datetime], Any] | None,
              fixed: bool) -> Callable[[datetime], int | None]:
    from flowcast.data.preprocess import resolve_horizon
    from flowcast.flows.forecast import _model_horizon

    if fixed:
        given = resolve_horizon(settings, src)
        return lambda d: given
    if model_at is None:
        return lambda d: None

    def at(d: datetime) -> int | None:
        try:
            own = _model_horizon(model_at(d))
        except (FlowcastError, OSError, ValueError):
            return None
        return int(own) if own else resolve_horizon(settings, src)

    return at


def _published_since(store: Any, dataset: str, as_of: datetime, warn: Callable[[str], None]) -> Outcome | None:
    """`_published_already` of a date another run published since this backfill listed its dates; None also
    when the store cannot say (a lost connection): the date runs, and fails on its own if the store is still
    out of reach, listed with the others, where this check's error stopped the backfill and lost its summary."""
    try:
        return _published_already(store, dataset, as_of,
                                  "published by another run since this backfill started (overwrite=False)")
    except (FlowcastError, OSError) as exc:
        warn(f"{utc_text(as_of)}: could not check whether another run published it meanwhile ({exc}); "
             "it runs")
        return None


def rewritten(o: Outcome, held: dict[str, str] | None, now: dict[str, str] | None) -> Outcome:
    """The outcome of a date that held a publish (`held`, its receipt before the date ran: a backfill with overwrite)
    and whose run published: its `note` says it was rewritten, whose publish it replaced and whether the content is
    the same (`now`: the date's receipt after it ran). A forecast date's rewrite of the very same forecasts read as a
    first publish ('published 24 rows from damped-v1'), in both modes."""
    if o.get("status") != "published" or not held:
        return o
    same = now is not None and bool(held.get("content_hash")) and now.get("content_hash") == held["content_hash"]
    rows = int(held.get("rows") or 0)
    return {**o, "note": f"{reporting.REWRITTEN}it replaced the {rows:,} rows run {held.get('run_id') or 'unknown'} published "
                         f"({held.get('model_version') or held.get('model') or 'unknown model'})"
                         + (" (identical content)" if same else "")}


def _withdraw_left_winner(settings: Any, dataset: str, o: Outcome, as_of: datetime, at: datetime,
                          warn: Callable[[str], None], run: str | None = None) -> None:
    """A retrain backfill's date skipped as published: what the retrain flow's skip of it does (the same function,
    `withdraw_unpublished_winner`), which this skip, made before any date's run, never reached: a winner a killed
    retrain of that date (its publish refused: another run published first) left in production, or recorded as the
    dataset's champion, is withdrawn; the sentence saying so is added to the date's outcome, logged, and the
    date's decision artifact (under its backfill key) follows it. Else, as the retrain flow's skip does
    (`withdrawn_unsaid`): a retrain of the date killed right after its refused publish withdrew its winner (its
    champion record, or its promotion) left its decision, naming that winner, the newest under the date's
    `backfill-` key: the follow-up is written, once, and said the same way. `run`: this backfill's run, named in the
    withdrawal's event with the killed run it withdraws for (a later run writes the follow-up when it is killed)."""
    from functools import partial

    from flowcast.ops.reaper import run_alive

    scope = reporting.Scope(dataset=dataset, as_of=as_of, backfill=True)
    left = withdraw_unpublished_winner(settings, as_of, at, alive=partial(run_alive, settings.home), run=run)
    unsaid = withdrawn_unsaid(settings, scope) if left is None else None
    if left is not None:
        said, model, version = left[0], left[1].name, left[1].version
    elif unsaid is not None:
        said, model, version = unsaid[0], unsaid[1].rsplit("-v", 1)[0], unsaid[1]
    else:
        return
    warn(said)
    o["error"] = reporting.sentences(o["error"], said)
    reporting.withdrawn_decision_artifact(o["error"], model, version, scope)


def caught_up_why(recorded: datetime | None, newest: datetime) -> str:
    """Why `realized_caught_up` scores as of `newest`, from the as_of of the verdict stored last (`recorded`; None:
    none): it said 'the run of that date stopped between its publish and its scoring' where the run of `newest` had
    scored and an earlier date of this backfill, run after it, stored its verdict over it (ui43)."""
    if recorded is None:
        return "no verdict of the dataset is stored: the run of that date stopped between its publish and its scoring"
    return (f"its newest verdict is as of {utc_text(recorded)}: the run of that date stopped between its publish and "
            "its scoring, or a run of an earlier date scored after it")


def realized_caught_up(settings: Any, dataset: str, dates: list[datetime], store: Any, run_id: str) -> bool:
    """Record the realized accuracy as of the newest of `dates` that is published when no run of it (or of a
    later as_of) recorded it (`ops.accuracy.scored_by`): a backfill killed after that date's publish and before its
    scoring left it missing, and its re-run skips every date (published), so nothing recorded it. Scored as that
    date's run scores (`record_in_run`: idempotent, each write atomic), its artifacts under the backfill keys.
    True when it was recorded here; a failure is a warning (the next run of the dataset scores)."""
    from prefect import tags

    from flowcast.flows.common import load_data
    from flowcast.ops.accuracy import record_in_run, recorded_as_of, scored_by
    from flowcast.timekeys import storage_naive

    log = get_run_logger()
    published = set(store.as_ofs(dataset))
    done = [d for d in dates if storage_naive(d) in published]
    if not done or scored_by(settings, dataset, newest := max(done)):
        return False
    log.info(f"Realized accuracy of {dataset} as of {utc_text(newest)} was not recorded "
             f"({caught_up_why(recorded_as_of(settings, dataset), newest)}): scoring it now")
    try:
        with tags(BACKFILL_TAG):
            outcome = record_in_run(settings, load_data(settings, newest), as_of=newest, run_id=run_id)
    except (FlowcastError, OSError) as exc:
        log.warning(f"Realized accuracy of {dataset} as of {utc_text(newest)} could not be recorded ({exc}); "
                    "the next run of the dataset scores it")
        return False
    return outcome is not None


def replaced_since(o: Outcome, dataset: str, receipt_of: Callable[[datetime], dict[str, str] | None],
                   warn: Callable[[str], None]) -> Outcome:
    """A `published` date as the store holds it once every date ran: `replaced` where the store's receipt of the date
    names another run, or none (another run's publish of the date replaced its since: the daily forecast, a
    `flowcast forecast --as-of`, a second backfill with --overwrite), its rows and model what it published and its
    `error` what the store holds instead (`fanout.not_published_text`, as a date run on a worker says it). Such a
    date was counted `published`, the store holding none of its rows (bf43). A receipt that cannot be read leaves
    the outcome as it is (a warning)."""
    from flowcast.flows.common import run_state_message
    from flowcast.flows.fanout import not_published_text

    if o.get("status") != "published":
        return o
    try:
        now = receipt_of(datetime.fromisoformat(o["as_of"]))
    except (FlowcastError, OSError) as exc:
        warn(f"{utc_text(o['as_of'])}: what the store holds could not be read ({exc}); the summary does not say "
             "whether another run's publish replaced the date's since")
        return o
    if now is not None and now.get("run_id") == o.get("run_id"):
        return o
    published = run_state_message({"dataset": dataset, "as_of": o["as_of"], "published_rows": o.get("rows"),
                                   "model_version": o.get("model")})
    return {**o, "status": "replaced", "error": not_published_text(published, now)}


def _child_state(call: Callable[[], Any], date_text: str, warn: Callable[[str], None]) -> Any:
    """A date's run (`call`, the child flow with return_state=True), once more after the Prefect API (PREFECT_API_URL)
    answers again when it did not answer as the run was being created. A server restarted between two dates failed
    the whole backfill 2 s later ('ConnectError: All connection attempts failed', faults42): Prefect retries a
    refused connection only on a client that has connected before, and creating a child run takes a new one, while
    a run already going waits. Nothing of the date ran; it is tried once more (its publish skips a date published).
    Only then: where the run was created and the API dropped after (its training done, its publish made, its final
    state not recorded: the engine re-raises the error), running the date again started a second run and a second
    training (rev42b). That date fails, saying so, once the API answers; the backfill goes on with the next."""
    from prefect.states import Failed

    from flowcast.errors import FlowcastError
    from flowcast.ops.api_watch import while_creating_the_run
    from flowcast.ops.reaper import api_not_answering, api_wait_said, wait_for_api

    try:
        return call()
    except Exception as exc:
        if (url := api_not_answering(exc)) is None:
            raise
        if not while_creating_the_run(exc):
            warn(api_wait_said(date_text, url, "stopped answering during its run", exc, "going on with the next date"))
            wait_for_api(url)
            return Failed(message="the Prefect API dropped during the date's run", data=FlowcastError(
                f"{date_text}: the Prefect API at {url} stopped answering during the date's run, after it was "
                f"created ({type(exc).__name__}: {exc}); not run again (its run may have trained and published): a "
                "re-run of the backfill skips the dates published"))
        warn(api_wait_said(date_text, url, "did not answer as its run was being created", exc, "running the date"))
        wait_for_api(url)
        return call()


LOST_RUN = ("never ran: created by a request of backfill run {run} whose reply was lost (the Prefect API restarting, a "
            "connection cut); the date ran as another flow run, or failed, listed in the backfill's summary")


def cancel_lost_runs(backfill_run: str, warn: Callable[[str], None]) -> list[str]:
    """Cancel the child flow runs an in-process backfill (flow run `backfill_run`) left Pending once its dates ran, and
    return their ids. A child run whose creation the API carried out but whose reply was lost was created again (by
    Prefect's client, which retries the request, or by `_child_state`), the date ran as that one, and the first stayed
    Pending in the UI's runs list for ever (bf43); every date's own run has ended by then, so a Pending child never
    ran. Each is set Cancelled, its message saying so (`LOST_RUN`); an API that cannot say is a warning."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    from flowcast.flows.fanout import children_runs

    cancelled: list[str] = []
    try:
        with get_client(sync_client=True) as client:
            for lost in children_runs(backfill_run, StateType.PENDING):
                client.set_flow_run_state(lost.id, Cancelled(message=LOST_RUN.format(run=backfill_run)), force=True)
                cancelled.append(f"{lost.name} ({lost.id})")
    except Exception as exc:  # noqa: BLE001 - a courtesy to the runs list: the dates' outcomes stand
        warn(f"The flow runs this backfill may have left Pending (a creation whose reply was lost) could not be "
             f"read or cancelled ({type(exc).__name__}: {exc})")
    if cancelled:
        warn(f"Cancelled {plural(len(cancelled), 'flow run')} this backfill left Pending, created by a request whose "
             f"reply was lost (each date ran as another run, or failed): {', '.join(cancelled)}")
    return cancelled


def _failure_of(state: Any) -> Outcome:
    """A failed date's `error` from its run's `state` (its exception's message, the class named where it is not a
    FlowcastError), with `begins` where its as_of precedes the data (`DataValidationError.begins`)."""
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # noqa: BLE001 - any child failure becomes one line of the summary
        said: Outcome = {"error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, FlowcastError) else str(exc)}
        if isinstance(exc, DataValidationError) and exc.begins:
            said["begins"] = exc.begins
        return said
    return {"error": state.message or state.name}


@flow(name="backfill", flow_run_name=run_name, validate_parameters=True, on_failure=[on_run_failure],
      on_cancellation=[cancel_dates_not_started])
@fails_without_a_result
@crash_on_interrupt
def backfill_flow(
    start: datetime | date | str,
    end: datetime | date | str,
    every: str | None = None,
    mode: Literal["forecast", "retrain"] = "forecast",
    overwrite: bool = False,
    deployment: str | None = None,
    dataset: DatasetChoice = None,
    source: SourceConfig | None = None,
    horizon: int | None = None,
    config_file: str | None = None,
    home: str | None = None,
    overrides: RunOverrides | None = None,
) -> dict[str, Any]:
    """Run the forecast (or retrain) flow once per as_of from `start` to `end` every `every`
    (default: the data's frequency, a day for sub-daily data or the slots of FLOWCAST_FORECAST_CRON: `default_grid`). Already published dates are skipped unless `overwrite`.

    Args:
        start: first as_of, an instant (ISO timestamp; without a UTC offset it means UTC), or a date
            alone: the days from start to end of the source's calendar, each as_of the midnight its
            day starts at in the source's tz (the key a run of that date gets).
        end: last as_of (inclusive), an instant (without a UTC offset it means UTC) or a date.
        every: step between as_ofs, a duration such as 1d, 1w, 1mo. Empty: the data's frequency, a day for
            sub-daily data (the daily forecast's step: one as_of an hour ran 49 for two days of hourly data), or
            for sub-daily data the slots of the forecast schedule where FLOWCAST_FORECAST_CRON is set.
        mode: forecast: the production model (else the last retrain's champion) forecasts each
            date; retrain: models are trained on the data up to each date, production is left alone.
        overwrite: recompute dates that already have published forecasts (otherwise they are skipped).
        deployment: fan out through this deployment ("flow-name/deployment-name", e.g.
            "forecast/forecast-pool") so that a work pool's workers run the dates in parallel; a retrain
            deployment implies mode retrain. Dates sent to this backfill's own pool wait behind it on
            workers of one slot (`--limit 1`): use another pool's. Empty: the dates run here, one after another.
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
    """
    from flowcast.data.datasets import resolve_source
    from flowcast.store import open_store

    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, overrides=overrides
    )
    run_id, started = run_identity(settings.home)
    if deployment:
        from flowcast.flows.fanout import mode_of

        if (implied := mode_of(deployment, mode)) != mode:
            log.info(f"Deployment {deployment} runs the {implied} flow: backfill mode {implied} (each date trains "
                     "its own models; production is left alone)")
            mode = cast(Literal["forecast", "retrain"], implied)
    src = resolve_source(settings)
    grid = default_grid(start, end, every, src.freq, src.tz)
    dates, step = grid.dates, grid.every
    store = open_store(settings)
    read_receipt = store_receipt(store, src.name)

    def receipt_of(d: datetime) -> dict[str, str] | None:
        """The store's receipt of date `d` (None: nothing published there, or the store cannot say: a warning)."""
        try:
            return read_receipt(d)
        except (FlowcastError, OSError) as exc:
            log.warning(f"{utc_text(d)}: what the store holds could not be read ({exc}); the summary does not say "
                        "whether its run rewrote a publish")
            return None

    todo: list[datetime] = []
    outcomes: list[Outcome] = []
    held: dict[str, dict[str, str]] = {}  # overwrite: what each date held before its run, which its outcome names
    skipped: list[datetime] = []  # the dates published already
    for d in dates:
        try:
            done = None if overwrite else _published_already(store, src.name, d, "already published (overwrite=False)")
        except FlowcastError as exc:  # a damaged publish of the date (its file cut short): it fails, named; the rest run
            damaged = not_run_outcome(d, str(exc), status="failed")
            log.error(f"{utc_text(d)}: failed: {exc}")
            outcomes.append(damaged)
            _notify(damaged)
            continue
        if (o := done) is not None:
            if mode == "retrain":
                _withdraw_left_winner(settings, src.name, o, d, started, log.warning, run_id)
            skipped.append(d)
            outcomes.append(o)
            _notify(o)
        else:
            todo.append(d)
            if overwrite and (before := receipt_of(d)):
                held[d.isoformat()] = before
    log.info(f"Backfill ({mode}) over {plural(len(dates), 'date')} {grid.said}: {len(todo)} to run, "
             f"{sum(o['status'] == 'skipped' for o in outcomes)} already published"
             + "".join(f", {utc_text(o['as_of'])} failed" for o in outcomes if o["status"] == "failed"))
    if skipped and (note := other_settings_note(store, src.name, skipped, *backfill_models(settings, src, mode))):
        log.warning(note)
    if mode == "forecast" and todo:
        log.info(model_for_backfill(settings, src.name))
    cancelled: FanOutCancelled | None = None

    common = {"dataset": dataset, "source": source, "horizon": horizon, "config_file": config_file, "home": home,
              "overrides": overrides}
    if deployment:
        from pydantic import BaseModel

        from flowcast.flows.fanout import FanOut, fan_out
        from flowcast.source_secrets import stored_parameters

        # each URL with its secrets `***`: the server stores a deployment run's parameters as sent, and its worker
        # reads the URL its configuration declares (source_secrets)
        params = stored_parameters({
            k: (v.model_dump(mode="json", exclude_unset=k == "overrides") if isinstance(v, BaseModel) else v)
            for k, v in common.items() if v is not None})
        if mode == "retrain":
            params["promote"] = False
        if not overwrite:  # each date's run checks again when it starts: it may wait in the pool's queue for hours
            params["overwrite"] = False
        elif mode == "forecast":  # asked for: a date's forecasts are rewritten even where they are the same
            params["overwrite"] = True
        plan = FanOut(deployment=deployment, dataset=src.name, mode=mode, backfill_run_id=run_id,
                      max_attempts=settings.workers.max_attempts,
                      wait_timeout_s=parse_duration(settings.workers.wait_timeout).total_seconds())
        try:
            fanned = fan_out(plan, todo, params, read_receipt, log.info, on_outcome=_notify,
                             stops=stops_on_no_room(room_folders(settings, store)))
        except FanOutCancelled as exc:  # (its dates' outcomes said and summed up as any's, then it ends Cancelled)
            log.error(str(exc))
            cancelled, fanned = exc, exc.outcomes
        if said := stopped_text(fanned, None if cancelled is None else cancelled.why):  # (also after a cancel)
            log.error(said)
        fanned = [rewritten(f, held[f["as_of"]], receipt_of(datetime.fromisoformat(f["as_of"])))
                  if f["as_of"] in held and f["status"] == "published" else f for f in fanned]
        for f in fanned:
            if f["status"] == "published":
                log.info(f"{utc_text(f['as_of'])}: published {reporting.rows_text(f['rows'])} rows of {f['model']} on worker {f['worker']} "
                         f"({f['flow_run']}){'; ' + f['note'] if f.get('note') else ''}")
            elif f["status"] != NOT_RUN:  # (said once, above)
                (log.error if f["status"] == "failed" else log.info)(
                    f"{utc_text(f['as_of'])}: {f['status']} on worker {f['worker']} ({f['flow_run']}): {f['error']}")
        outcomes += fanned
    else:
        from prefect import tags

        from flowcast.flows.forecast import forecast_flow
        from flowcast.flows.pipeline import retrain_flow

        asked = interrupts.received()
        for i, d in enumerate(todo):
            if not overwrite and (o := _published_since(store, src.name, d, log.warning)):
                if mode == "retrain":
                    _withdraw_left_winner(settings, src.name, o, d, started, log.warning, run_id)
                log.info(f"{utc_text(d)}: skipped: {o['error']}")
                outcomes.append(o)
                _notify(o)
                continue
            child = forecast_flow if mode == "forecast" else retrain_flow
            kw = dict(common) if mode == "forecast" else dict(common, promote=False)
            if not overwrite:  # the check above made again under the key's lock as it publishes: another backfill
                kw["overwrite"] = False  # (or run) may publish the date meanwhile (a retrain's date: its winner withdrawn)
            elif mode == "forecast":  # asked for: a date's forecasts are rewritten even where they are the same
                kw["overwrite"] = True
            # tagged `backfill`: the child names itself `forecast <dataset> <as_of> (backfill)` and writes
            # its artifacts under the backfill- keys
            name = flow_run_title(child.name, src.name, {"as_of": d}, None, backfill=True)
            with tags(*run_tags(child.name), BACKFILL_TAG):
                state = _child_state(partial(child, as_of=d, return_state=True, **kw), utc_text(d), log.warning)
            if state.is_completed() and state.result().get("unchanged"):  # nothing new since the last publish
                res = state.result()
                o = {"as_of": d.isoformat(), "status": "skipped", "rows": 0, "model": res.get("model_version"),
                     "run_id": res.get("run_id"), "error": f"unchanged: {res.get('note')}"}
                log.info(f"{utc_text(d)}: {res.get('note')}")
            elif state.is_completed() and state.result().get("skipped"):  # published by another run meanwhile
                res = state.result()
                o = {"as_of": d.isoformat(), "status": "skipped", "rows": 0, "model": res.get("model_version"),
                     "run_id": res.get("published_by") or res.get("run_id"), "error": res.get("note")}
                log.info(f"{utc_text(d)}: skipped: {res.get('note')}")
            elif state.is_completed():
                res = state.result()
                o = {"as_of": d.isoformat(), "status": "published", "rows": res.get("published_rows", 0),
                     "model": res.get("model_version") or res.get("champion"), "run_id": res.get("run_id"),
                     "error": None}
                if d.isoformat() in held:  # a date published before, rewritten: said so, in both modes
                    o = rewritten(o, held[d.isoformat()], receipt_of(d))
                log.info(f"{utc_text(d)}: published {reporting.rows_text(o['rows'])} rows from {o['model']}"
                         f"{'; ' + o['note'] if o.get('note') else ''}")
            else:
                o = {"as_of": d.isoformat(), "status": "failed", "rows": 0, "model": None, "run_id": None,
                     **_failure_of(state)}
                log.error(f"{utc_text(d)}: failed: {o['error']}")
            o.update(flow_run=name, worker=IN_PROCESS)
            outcomes.append(o)
            _notify(o)
            if interrupts.received() > asked:  # a Ctrl-C the child's engine swallowed (its run had completed)
                raise KeyboardInterrupt(f"interrupted after the backfill's date {utc_text(d)} ({o['status']}); "
                                        "a re-run of the backfill skips the dates published")
            if o["status"] == "failed" and no_room(o["error"]) and (rest := todo[i + 1:]):
                stopped = stopped_by_no_room(o, rest, room_folders(settings, store))
                log.error(f"The backfill stops: {plural(len(rest), 'later date')} not run ({stopped[0]['error']})")
                for later in stopped:
                    outcomes.append(later)
                    _notify(later)
                break
        if todo:
            cancel_lost_runs(run_id, log.warning)

    # what the store holds now: a date another run's publish replaced since its run published it is `replaced`
    for i, o in enumerate(outcomes):
        if (now := replaced_since(o, src.name, read_receipt, log.warning)) is not o:
            log.warning(f"{utc_text(o['as_of'])}: replaced: {now['error']}")
            outcomes[i] = now
    realized_caught_up(settings, src.name, dates, store, run_id)
    outcomes.sort(key=lambda o: str(o["as_of"]))
    reporting.backfill_artifact(outcomes, reporting.Scope(dataset=src.name, backfill=True),
                                title=flow_run_title("backfill", src.name, {"start": start, "end": end, "mode": mode},
                                                     None))
    failed = [o for o in outcomes if o["status"] == "failed"]
    summary = {
        "run_id": run_id, "mode": mode, "every": step, "dates": len(dates),
        "published": sum(o["status"] == "published" for o in outcomes),
        "replaced": sum(o["status"] == "replaced" for o in outcomes),
        "skipped": sum(o["status"] == "skipped" for o in outcomes),
        "failed": len(failed), "not_run": sum(o["status"] == NOT_RUN for o in outcomes), "outcomes": outcomes,
    }
    if cancelled is not None:  # said once: by the run's cancelled state
        raise BackfillCancelled(f"{cancelled} ({reporting.backfill_counts(outcomes, failed=bool(failed))})", summary)
    if failed:
        msg = failed_message(outcomes, len(dates))
        raise BackfillError(msg, summary)  # said once: by the run's failed state
    log.info(f"Backfill done: {reporting.backfill_counts(outcomes, failed=False)}")
    from prefect.states import Completed

    # its page's side panel read 'State Message: None' where every other run's says what it did (newuser50b); calling
    # the flow still returns the summary
    return cast(dict[str, Any], Completed(message=done_message(outcomes), data=summary))


def done_message(outcomes: list[dict[str, Any]]) -> str:
    """A backfill's Completed state's message: its dates and what came of them ('3 dates: 3 published, 0 skipped'),
    the dataset and range being the run's name."""
    return f"{plural(len(outcomes), 'date')}: {reporting.backfill_counts(outcomes, failed=False)}"
