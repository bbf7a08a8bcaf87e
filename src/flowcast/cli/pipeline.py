"""`flowcast run`, `backfill`, `serve` and `reap`: the Prefect flows from the command line.

`run` and `backfill` run their flow once in this process, under the Prefect API named by
PREFECT_API_URL, or Prefect's temporary local API when none is configured. Prefect and torch
are imported inside the commands so that `flowcast --help` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, Self, TextIO, cast

import typer

from flowcast import interrupts
from flowcast.cli.app import app
from flowcast.cli.common import (
    AsOfOpt,
    ConfigOpt,
    HomeOpt,
    HorizonOpt,
    JsonOpt,
    SourceOptions,
    call_flow,
    check_backfill_readings,
    cli_errors,
    console,
    emit_json,
    flow_as_of,
    flow_key,
    interrupted_afterwards,
    note_publish_of_this_command,
    out,
    parse_run_as_of,
    resolve_settings,
    said,
    source_options,
    warn,
)
from flowcast.config import Settings
from flowcast.errors import ConfigError, FlowcastError
from flowcast.timekeys import utc_text
from flowcast.wording import listed, plural

ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--models", "-m", help="model families to train: rnn, lstm, gru, mlp (repeat or comma-separate); none: "
                                         "no network, the statistical models only"),
]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="training steps per model")]
# backfill's: they go to each date's retrain, and are refused with --mode forecast (nothing trains)
BackfillModelsOpt = Annotated[list[str] | None, typer.Option(
    "--models", "-m", help="with --mode retrain: model families each date trains: rnn, lstm, gru, mlp (repeat or "
                           "comma-separate); none: no network, the statistical models only")]
BackfillMaxStepsOpt = Annotated[int | None, typer.Option(
    "--max-steps", help="with --mode retrain: training steps per model")]
BudgetOpt = Annotated[float | None, typer.Option(
    "--budget", help="tune hyperparameters first, for up to this many minutes (sets tuning.enabled)")]


def _models(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    cells = [m.strip().lower() for v in values for m in v.split(",") if m.strip()]
    if cells == ["none"]:  # the statistical models only (it was refused: a run could not leave the networks out)
        return []
    bad = [m for m in cells if m not in ("rnn", "lstm", "gru", "mlp")]
    if bad:
        raise ConfigError(f"--models takes rnn, lstm, gru, mlp, or none (the statistical models only); got {bad}")
    return cells


def _flow_source_args(settings: Any, data: str | None) -> dict[str, Any]:
    """What the flow needs to rebuild these settings: an explicit source for --data, else the
    dataset name; home as an absolute path so the flow writes where this command resolved. A URL is given whole:
    the flow, run in this process, reads it, and Prefect stores it with its password and secret query values `***`
    (`source_secrets.SecretSafeFlow`)."""
    return {
        "dataset": None if data else settings.dataset,
        "source": settings.source if data else None,
        "home": str(Path(settings.home).resolve()),
    }


# the largest source (bytes on disk, all its files) whose time column `check_data_before_flow` reads before the flow:
# the read parses every time value (1.7 s for 100,000 rows of a 2.6 MB CSV on 2 busy cores, 21 s for 1,000,000),
# which the flow then does again; a larger source is checked in the flow only
AS_OF_CHECK_MAX_BYTES = 8 * 2**20
# the largest source that `check_data_before_flow` validates whole before the flow (every check the run makes:
# ~1 s for 1 MiB, some 40,000 rows), to say at once that it leaves nothing to run on (a header alone, every row
# quarantined), where the flow said it after Prefect's temporary server had started (~20 s)
VALIDATE_CHECK_MAX_BYTES = 2**20


def check_data_before_flow(settings: Any, as_of: datetime | None, flow_name: str = "retrain",
                           started: datetime | None = None) -> None:
    """A source that leaves a run nothing to run on, said before a Prefect server and the flow start (~20-30 s),
    in the words the flow's validation says it (`validate.nothing_to_run`): no rows (a header alone), every row
    quarantined, or (with `as_of`) an as_of before the data began (`validate.nothing_observed_by`: one pass over
    the time column, for a source too large to validate whole here). Every row quarantined writes the quarantine
    file the run would have written (`quarantine/<source>/<as_of>/`; without `as_of`, the folder of `started`), and
    the error names it. Only for a file given or configured that is
    on this machine and up to `VALIDATE_CHECK_MAX_BYTES` (validated whole) or `AS_OF_CHECK_MAX_BYTES` (its time
    column): a URL is read in the flow, with its retries, a bundled dataset (M3 builds its files on first use) is
    left to the flow, and so is a larger file, whose read here would cost more than it saves. Anything else that
    stops the reading here is the flow's to say, in its run, as it always did. `as_of`: the instant the command
    parsed (`parse_run_as_of`), once; None (no --as-of) checks every row, as a run as of now sees them. Every
    refusal sends the `flowcast.run.failed` event the run's failure would have sent (`_announce_run_refused`;
    `flow_name`: the flow the command would have run, `retrain` or `forecast`). `started`: without `as_of`, the
    instant the command started (`command_started`): the run key the run would have taken (its start), which
    labels the refusal's events and names its quarantine folder, so that they say the as_of a run's failure says
    and a later run of that key supersedes the file (it was `all/`, which no run writes, kept until gc)."""
    key = as_of if as_of is not None else started
    _check_dataset_known(settings, flow_name, key)
    said = nothing_to_run_said(settings, as_of, key=key)
    if said is not None:
        from flowcast.errors import DataValidationError

        _announce_run_refused(_dataset_of(settings), flow_name, key, said)
        raise DataValidationError(said)


def check_covariates_before_flow(settings: Any, as_of: datetime | None, started: datetime | None = None) -> None:
    """`flowcast forecast` of a source whose declared covariates are not the ones the network it would forecast with
    was trained with (`flows.forecast.run_model`: the production model, else the champion, or the older model
    promoted for data up to `as_of`): refused before a Prefect server and the flow start, in the words the flow's
    `predict` says it (`recipes.declared_covariates_refusal`: the covariates missing or extra and the --future-col /
    --past-col options), where the flow said it ~15 s after Prefect started (fcst44). Only for a source given or
    configured (a bundled dataset declares its own); a registry or model that cannot be read here is the flow's to
    say. The refusal sends the `flowcast.run.failed` event the run's failure would have sent
    (`_announce_run_refused`; `started`: the run key of a command without --as-of, `command_started`)."""
    from flowcast.errors import TrainingError

    said = _covariates_said(settings, [as_of])[0]
    if said is not None:
        _announce_run_refused(_dataset_of(settings), "forecast", as_of if as_of is not None else started, said)
        raise TrainingError(said)


def _covariates_said(settings: Any, as_ofs: list[datetime | None]) -> list[str | None]:
    """`check_covariates_before_flow`'s error of a forecast run at each of `as_ofs` (a backfill's dates: each its
    own, `run_model`), or None where the covariates match its model's or something here cannot be read. Each
    distinct model the runs would forecast with is compared once. Only for a source given or configured (a bundled
    dataset declares its own)."""
    if settings.source is None and settings.dataset not in settings.sources:
        return [None] * len(as_ofs)
    from flowcast.data.datasets import resolve_source
    from flowcast.flows.forecast import run_models
    from flowcast.models.recipes import declared_covariates_refusal, load_recipe
    from flowcast.shared import open_registry

    try:
        source = resolve_source(settings)
        run_model = run_models(open_registry(settings), source.name, source)  # the history read once
    except Exception:  # noqa: BLE001 - the flow opens the registry again and says what is wrong
        return [None] * len(as_ofs)
    of_version: dict[str, str | None] = {}
    said: list[str | None] = []
    for as_of in as_ofs:
        try:
            model = run_model(as_of)
            if model is not None and model.version not in of_version:
                of_version[model.version] = declared_covariates_refusal(
                    load_recipe(model), list(source.future_cols), list(source.past_cols))
        except Exception:  # noqa: BLE001 - the flow reads the model again and says what is wrong
            model = None
        said.append(None if model is None else of_version[model.version])  # no model: the flow says what to do
    return said


def _check_dataset_known(settings: Any, flow_name: str, key: datetime | None) -> None:
    """An unknown dataset (no --data, no [sources.NAME], not bundled) refused before a Prefect server and the flow
    start: `flowcast forecast --dataset meters` after a run of meters.parquet failed inside its flow run, ~45 s on."""
    from flowcast.data.datasets import BUNDLED_DATASETS, resolve_source

    if settings.source is not None or settings.dataset in settings.sources or settings.dataset in BUNDLED_DATASETS:
        return
    try:
        resolve_source(settings)
    except ConfigError as exc:
        _announce_run_refused(settings.dataset, flow_name, key, str(exc))
        raise


def command_started(now: datetime) -> datetime:
    """The run key a run without --as-of takes (`flows.common.resolve_as_of`: its start, UTC, to the second), of
    the instant `now` a command read off the clock as it started: what a refusal before the run names as its as_of
    (`check_data_before_flow`'s `started`, `_refusal_announced`)."""
    return now.astimezone(UTC).replace(microsecond=0)


def nothing_to_run_said(settings: Any, as_of: datetime | None, record: bool = True,
                        backfill: bool = False, key: datetime | None = None) -> str | None:
    """`check_data_before_flow`'s error, or None when the source leaves the run something (or is not checked).
    `record`: leave what the run would have left of a source whose every row is quarantined: its quarantine file
    (the error names it) and, with a Prefect API configured, the `QUALITY_FAILED` event its automations notify
    (`_announce_refusal`; `backfill`: labelled a backfill's). `key`: the run key these are recorded under (the
    quarantine folder, the event's as_of), where it is not `as_of` (a command without --as-of: its start). The source
    is read by the run's rule (`source_files.read_steadily`): a file another program writes or replaces meanwhile is read
    again, each time a `warning:` line (a header alone found mid-write was refused 'no rows', where the run read the
    whole file); one that keeps changing is the flow's to say."""
    if settings.source is None and settings.dataset not in settings.sources:
        return None
    from flowcast.data.datasets import resolve_source
    from flowcast.data.source_files import resolve_files
    from flowcast.data.validate import nothing_observed_by, nothing_to_run
    from flowcast.errors import DataValidationError

    kept: list[Any] = []
    try:
        source = resolve_source(settings)
        files = resolve_files(source)
    except DataValidationError as exc:  # a configured path not found, a folder without a data file, a pattern that
        return str(exc)  # matches none: the flow's ingest says it, unretried, after Prefect started (~30 s)
    except Exception:  # noqa: BLE001 - the flow reads the source again and says what is wrong
        return None
    try:
        size = sum(os.path.getsize(f) for f in files)
        if any("://" in f for f in files) or size > AS_OF_CHECK_MAX_BYTES:
            return None
        if size <= VALIDATE_CHECK_MAX_BYTES:
            said = nothing_to_run(source, as_of, settings.validation,
                                  keep=_quarantine_keeper(settings, source.name, kept, key) if record else None,
                                  warn=warn)
        else:
            said = nothing_observed_by(source, as_of, warn) if as_of is not None else None
    except Exception:  # noqa: BLE001 - the flow reads the source again and says what is wrong, with its retries
        # (a file that kept changing while it was read, 3 times, too: `read_steadily`, as the flow reads it)
        return None
    unwritten = [k for k in kept if isinstance(k, str)]  # the quarantine file's write failed (a full disk): said
    kept = [k for k in kept if not isinstance(k, str)]
    if said is not None and unwritten:
        from flowcast.data.validate import quarantine_unwritten

        said = quarantine_unwritten(said, unwritten[0])
    if said is not None and kept:  # every row quarantined: the event the run's validation sends of it
        _announce_refusal(source.name, as_of if key is None else key, said, kept[0].report, backfill,
                          settings.validation.quarantine_threshold)
    return said


def _announce_refusal(dataset: str, as_of: datetime | None, said: str, report: Any, backfill: bool,
                      threshold: float) -> None:
    """The `flowcast.data-quality.failed` event of a refusal before Prefect, as the run's validation sends it
    (`flows.common.load_data`), where a Prefect API is configured (PREFECT_API_URL: a server whose automations
    notify; without one the run's event went to a temporary server nobody watched, and emitting would start
    one). The refusal had sent nothing: a command on a schedule (cron) against a server alerted nobody."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return
    from flowcast import events

    events.emit(events.QUALITY_FAILED, dataset=dataset, as_of=as_of, message=said, past=backfill,
                rows_in=report.rows_in, rows_valid=report.rows_valid, rows_quarantined=report.rows_quarantined,
                threshold=threshold, checks=dict(report.checks), quarantine=report.quarantine_path,
                refused_before_run=True)


def _dataset_of(settings: Any) -> str:
    """The dataset a command's settings name (its source's name)."""
    try:
        from flowcast.data.datasets import resolve_source

        return resolve_source(settings).name
    except Exception:  # noqa: BLE001 - the source itself is what was refused: the name the command was given
        return settings.source.name if settings.source is not None else str(settings.dataset)


@contextmanager
def _refusal_announced(flow_name: str, dataset: str | None, data: str | None, as_of: str | None,
                       tz: str | None, started: datetime | None = None) -> Iterator[None]:
    """Around a command's `resolve_settings`: a --data file refused there, before its columns are asked for (not
    found, a workbook, not text: `csv_text.check_readable`), sends `flowcast.run.failed` as every other refusal
    before Prefect does (`_announce_run_refused`); a mistaken option (ConfigError) is the command line's, not the
    data's, and sends nothing. The dataset is the one the file would have been (`--dataset`, else named after
    it), the as_of the one given, read as the run reads it (no offset: UTC; a date alone: midnight in --tz), else
    `started` (`command_started`: the key a run without --as-of takes)."""
    from flowcast.errors import DataValidationError

    try:
        yield
    except DataValidationError as exc:
        if data is not None:
            from flowcast.cli.common import _name_of
            from flowcast.ops.hooks import _as_of

            try:  # (not checked yet: a --tz that names no zone failed here, and its error replaced the refusal)
                when = _as_of(as_of, started, tz)
            except Exception:  # noqa: BLE001 - the refusal is what the command says; announced without an as_of
                when = None
            _announce_run_refused(dataset or _name_of(data), flow_name, when, str(exc),
                                  backfill=flow_name == "backfill")
        raise


def _announce_run_refused(dataset: str, flow_name: str, as_of: datetime | None, said: str,
                          backfill: bool = False) -> None:
    """The `flowcast.run.failed` event of a refusal before Prefect, as the failure of the run it refused would have
    sent it (`ops.hooks.on_run_failure`), where a Prefect API is configured (PREFECT_API_URL; without one nothing is
    sent, and no temporary server is started to send it to). It refused a header alone, an empty or missing file,
    every row after as_of, every row quarantined (which sends `flowcast.data-quality.failed` too, as the run's
    validation did): nothing ran, nothing was published, and the *run failed* automation, which listens for this
    event from a flow named retrain, forecast, backfill or tune, had nothing to fire on: a command on a schedule
    (cron) against a server alerted nobody. The resource is the dataset with the as_of given (without --as-of, the
    instant the command started, `command_started`: the run would have taken the time it started, where the label
    was ''), labelled a backfill's for `flowcast backfill`
    (its run carries the `backfill` tag), the related resources the run's would have had, so far as they exist
    without a run: its flow (`prefect.flow.<id>`, role `flow`, the flow's record on the server; created there by
    name, as the run would have, when it has none) and its tags (`naming.run_tags`); no flow run. The payload says
    `refused_before_run: true` and names the flow."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return
    from flowcast import events
    from flowcast.flows.naming import run_tags

    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            flow_id = f"prefect.flow.{client.create_flow_from_name(flow_name)}"
    except Exception:  # noqa: BLE001 - an API that cannot be reached: emit says so, and the refusal is raised
        flow_id = f"flowcast.flow.{flow_name}"
    related = [{"prefect.resource.id": flow_id, "prefect.resource.role": "flow", "prefect.resource.name": flow_name},
               *({"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"}
                 for t in run_tags(flow_name))]
    events.emit(events.RUN_FAILED, dataset=dataset, as_of=as_of, related=related, past=backfill,
                message=f"{flow_name} run refused before it started: {said}", flow=flow_name,
                refused_before_run=True)


def check_backfill_data(settings: Any, src: Any, dates: list[datetime], overwrite: bool,
                        mode: str = "forecast") -> None:
    """`check_data_before_flow` of a backfill: its source as of the last date it would run (a date published
    already is skipped without `overwrite`; the store is read only once the source is found wanting, and a store
    that cannot be read leaves every date to run). Every earlier date sees no more rows than that one: a source
    that leaves it nothing to run on (a header alone, every row quarantined, every row after it) fails every date,
    where each date failed inside Prefect one by one. The error names the dates and says the last one's error; the
    quarantine file is that date's (`quarantine/<source>/<as_of>/`), as its run would have written it. In forecast
    `mode`, then `check_backfill_covariates`. `src`: the source `settings` resolve (`resolve_source`), `dates`:
    `backfill_dates` (naive UTC)."""
    todo = list(dates)
    if not todo:
        return
    said = nothing_to_run_said(settings, todo[-1].replace(tzinfo=UTC), record=False)
    if said is not None:
        todo = _dates_to_run(settings, src.name, dates, overwrite)
        said = nothing_to_run_said(settings, todo[-1].replace(tzinfo=UTC), backfill=True) if todo else None  # recorded
    if said is not None:
        from flowcast.errors import DataValidationError

        fail = ("would all fail as the last one does (an earlier date sees no more rows)" if len(todo) > 1
                else "would fail")  # (of one date it said 'would all fail as the last one does')
        _refuse_backfill(settings, dates, DataValidationError(
            f"backfill refused before any date ran: its {plural(len(todo), 'date')} to run ({_dates_span(todo)}) "
            f"{fail}: {said}"))
    if mode == "forecast":
        check_backfill_covariates(settings, src, dates, overwrite)


def check_backfill_covariates(settings: Any, src: Any, dates: list[datetime], overwrite: bool) -> None:
    """`check_covariates_before_flow` of a forecast backfill: each date it would run compared with the model that
    date forecasts with (`run_model`: the production model, the champion, or an older model promoted for data up
    to the date; each distinct model once). Where every date would be refused, the backfill is, before Prefect
    starts, naming its dates, the covariates and the options, with the forecast's error (TrainingError), where
    each date failed inside its own run. Where some date's model takes the covariates declared, the dates run (the
    others fail in their runs, named). The store is read only once a date is found wanting. `src`: as
    `check_backfill_data`'s."""
    said = dict(zip(dates, _covariates_said(settings, [d.replace(tzinfo=UTC) for d in dates]), strict=True))
    if all(s is None for s in said.values()):
        return
    todo = _dates_to_run(settings, src.name, dates, overwrite)
    if not todo or any(said[d] is None for d in todo):
        return
    from flowcast.errors import TrainingError

    refusals = {s: [d for d in todo if said[d] == s] for s in dict.fromkeys(said[d] for d in todo)}
    each = next(iter(refusals)) if len(refusals) == 1 else "; ".join(  # (of the models of several: each's dates)
        f"{_dates_span(ds)}: {s}" for s, ds in refusals.items())
    fail = "would all fail" if len(todo) > 1 else "would fail"
    _refuse_backfill(settings, dates, TrainingError(
        f"backfill refused before any date ran: its {plural(len(todo), 'date')} to run ({_dates_span(todo)}) "
        f"{fail}: {each}"))


def _dates_to_run(settings: Any, name: str, dates: list[datetime], overwrite: bool) -> list[datetime]:
    """The `dates` a backfill of the source `name` runs: without `overwrite`, those its store has not published yet
    (as the flow skips them); every date where the store cannot be read (the flow reads it again, and says what is
    wrong)."""
    if overwrite:
        return list(dates)
    try:
        from flowcast.store import open_store

        store = open_store(settings)
        return [d for d in dates if not store.has(name, d)]
    except Exception:  # noqa: BLE001 - the flow reads the store again, and says what is wrong
        return list(dates)


def _dates_span(dates: list[datetime]) -> str:
    """'<first> to <last>' of a backfill's dates (in order), the date alone of one."""
    return f"{utc_text(dates[0])} to {utc_text(dates[-1])}" if len(dates) > 1 else utc_text(dates[0])


def _refuse_backfill(settings: Any, dates: list[datetime], error: FlowcastError) -> NoReturn:
    """Raise a backfill's refusal before Prefect, announced as the backfill's failure would name it
    (`ops.hooks.on_run_failure`: its start, the first of `dates`), labelled a backfill's (its tag)."""
    _announce_run_refused(_dataset_of(settings), "backfill", dates[0].replace(tzinfo=UTC), str(error), backfill=True)
    raise error


def _quarantine_keeper(settings: Any, source_name: str, kept: list[Any], key: datetime | None = None) -> Any:
    """`nothing_to_run`'s `keep`: the quarantine file written where the run writes it (`flows.common.load_data`:
    quarantine/<source>/<as_of>/quarantine.parquet, and copied under `shared` when the home has one), its path in
    the report, so that a refusal before Prefect leaves the rows and their reasons as the run did; the result is
    appended to `kept` (its report: the event's figures), and before it, where the file could not be written (a full
    disk), that error (a str: `nothing_to_run_said` adds it to the refusal). `key`: the run key naming the folder,
    where it is not the as_of the rows were read by (a command without --as-of reads every row; its run is keyed by
    its start)."""
    from flowcast.data.validate import ValidationResult, as_of_label, quarantine_folder, write_quarantine
    from flowcast.errors import StorageError

    def keep(result: ValidationResult, run_key: str) -> None:
        run_key = run_key if key is None else as_of_label(key)
        try:
            where = write_quarantine(result, quarantine_folder(Path(settings.quarantine_dir).resolve(), source_name,
                                                               run_key))
            if where is not None and settings.shared:
                from flowcast.shared import share_file

                result.report.quarantine_path = share_file(settings, where)
        except (StorageError, OSError) as exc:  # a full disk: the refusal is said all the same, and why no file (the
            # error was taken for a source the check could not read: the flow started (~30 s), retried the write 3
            # times and failed naming the disk alone, never the refusal)
            result.report.quarantine_path = None
            kept.append(" ".join(str(exc).split()))
        else:
            interrupts.fault_point("cli:quarantined")  # test-only: SIGKILL with the file written, before the error, the artifact
            # and the events
        kept.append(result)

    return keep


class _NoTraceback(logging.Formatter):
    """Prefect's console lines without the traceback: the command's own error sentence says what
    failed, the full traceback still goes to the Prefect API (the UI's logs)."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class _CurrentStderr:
    """A stream that writes to whatever sys.stderr is when it is written to (Prefect binds its
    console handler to the stderr of the moment logging was set up)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stderr, name)


def _coarser_every(step: str) -> str:
    """A spacing coarser than the data's period for the backfill note's e.g.: days for sub-daily data, weeks for
    days, ... (it offered '--every 1d' to a daily file's backfill, whose dates already were a day apart)."""
    from flowcast.data.calendar import parse_freq
    from flowcast.data.preprocess import _NOMINAL

    try:
        n, unit = parse_freq(step)
    except ValueError:
        return "1d"
    coarser = {"d": "1w", "b": "1w", "w": "4w", "mo": "3mo", "q": "1y", "y": f"{2 * n}y"}.get(unit, "1d")

    def span(freq: str) -> timedelta:
        k, u = parse_freq(freq)
        return k * _NOMINAL[u]

    # a multiple of the unit may be that coarse already, or coarser (7d, 8w, 6mo, 24h were offered 1w, 4w, 3mo, 1d):
    # twice its own then (by half as much again at least: the nominal 4q and 1y differ by rounding alone)
    return coarser if span(coarser) >= 1.5 * span(step) else f"{2 * n}{unit}"


def _note_new_dataset(settings: Settings, data: str) -> None:
    """Say when a --data file's dataset (named after the file) is new in a home whose registry has production
    models of other datasets: a renamed export ('sales_2024-06.csv' after 'sales_2024-05.csv', 'daily_v2.csv')
    started a dataset of its own, with no production model, its own forecasts and no realized accuracy to go on
    from, and only 'There was no model in production' said so, after training."""
    from flowcast.shared import open_registry

    name = settings.source.name if settings.source is not None else None
    if name is None or (settings.shared is None and not (settings.home / "models").exists()):
        return
    try:
        held = open_registry(settings).datasets()
    except (FlowcastError, OSError, ValueError):  # an unreadable registry fails the run itself, saying why
        return
    from flowcast.data.datasets import BUNDLED_DATASETS

    if name in held and name in BUNDLED_DATASETS:  # us_employment.csv: your file, the bundled sample's models
        console.print(f"note: {data} is dataset {name!r} (named after the file), the name of a bundled dataset "
                      f"whose production model this home has: this run's candidates are scored against it, and "
                      f"its forecasts are published under that name; pass --dataset NAME to keep them apart",
                      highlight=False)
    elif held and name not in held:
        import difflib

        # the e.g. is a dataset whose name is like the file's (sales_v2.csv: sales), none where none is: a home of
        # eleven datasets told euro.csv '--dataset autumn_dst', the first by name (newuser22), and listed them all
        close = difflib.get_close_matches(name, held, n=1, cutoff=0.6)
        shown = ", ".join(held[:8]) + (f" and {len(held) - 8} more" if len(held) > 8 else "")
        console.print(f"note: {data} is dataset {name!r} (named after the file), new in this home, which has "
                      f"production models of {shown}: this run starts {name!r} afresh (no production "
                      f"model, forecasts of its own); to go on with one of those (a renamed or newer export), pass "
                      f"--dataset NAME" + (f", e.g. --dataset {close[0]}" if close else ""), highlight=False)


@contextmanager
def _prefect_console(home: str | Path | None = None) -> Iterator[None]:
    """While a flow runs from the command line: Prefect's console log lines go to the current
    stderr, without tracebacks unless FLOWCAST_DEBUG=1; Prefect's temporary API, when no API is
    configured, is stopped even if this process is killed, and the flow runs a killed command
    leaves Running in `home` are marked Crashed (ops.reaper). A Ctrl-C is counted
    (`flowcast.interrupts`) before it is raised: one Prefect swallows is still seen."""
    from prefect.logging import configuration
    from prefect.logging.handlers import PrefectConsoleHandler

    from flowcast.interrupts import counted
    from flowcast.ops.reaper import temporary_api

    if not configuration.PROCESS_LOGGING_CONFIG:
        configuration.setup_logging()
    patched = []
    for h in logging.getLogger().handlers:
        if isinstance(h, PrefectConsoleHandler):
            patched.append((h, h.formatter))
            h.stream = h.console.file = cast(TextIO, _CurrentStderr())
            if not os.environ.get("FLOWCAST_DEBUG"):
                h.setFormatter(_NoTraceback(h.formatter))
    try:
        with counted(), temporary_api(home):
            yield
    finally:
        for h, fmt in patched:
            h.setFormatter(fmt)


def _late_interrupt(before: int, result: dict[str, Any]) -> str:
    """What a run had done when a Ctrl-C that Prefect swallowed came (its flow run had completed), said
    with 'interrupted'; '' when none came since `before`."""
    if interrupts.received() <= before:
        return ""
    if result.get("unchanged"):
        return (f"after the run completed ({result.get('run_id')}): it published nothing new for {result.get('dataset')} "
                f"as of {utc_text(result.get('as_of'))} (unchanged since its last publish)")
    from flowcast.reporting import rows_text

    return (f"after the run completed ({result.get('run_id')}): its {rows_text(result.get('published_rows'))} "
            f"forecast rows of {result.get('dataset')} for as_of {utc_text(result.get('as_of'))} were published and "
            "stay published; nothing needs running again")


def _run_tags(flow_name: str) -> Any:
    """The tags a deployment run of this flow carries (`naming.run_tags`), for a run from the CLI."""
    from prefect import tags

    from flowcast.flows.naming import run_tags

    return tags(*run_tags(flow_name))


class _TrainingBars:
    """A rich progress bar per training, fed by reporting's progress listeners."""

    def __init__(self, enabled: bool):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self.bars = Progress(TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                             TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __call__(self, key: str, label: str, fraction: float) -> None:
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(label, total=100)
        self.bars.update(self.tasks[key], completed=round(fraction * 100))

    def __enter__(self) -> Self:
        from flowcast import reporting

        if self.enabled:
            self.bars.start()
            reporting.progress_listeners.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        from flowcast import reporting

        if self.enabled:
            reporting.progress_listeners.remove(self)
            self.bars.stop()


def _leaderboard_table(board: dict[str, dict[str, Any]], published: str | None, metric: str = "mase") -> Any:
    """The backtest leaderboard, every figure whole in 80 columns: with rich's default padding the eight
    columns of a board whose MASE read 0.07161 and MSIS 2.134 were 81 wide, and the MSIS column was cut to
    '2.1…' (a figure cut short says nothing). Two point scores fit: sMAPE and MASE, or MASE and the metric the
    board is ranked on when it is another (RMSSE on intermittent data, where sMAPE says little; `--json` has
    them all). An interval column blank on every row is left out (`reporting.empty_interval_scores`)."""
    from rich import box
    from rich.table import Table

    from flowcast.evaluation.metrics import metric_name
    from flowcast.figures import score_or_na
    from flowcast.reporting import BOARD_INTERVALS, empty_interval_scores

    point = ("smape", "mase") if metric in ("smape", "mase") else ("mase", metric)
    # an interval column no candidate has a value in is left out, as the leaderboard artifact leaves it (a short
    # backtest's cov95 and MSIS read 'n/a' on every row under the note that said they were blank: newuser46)
    empty = empty_interval_scores(list(board.values()))
    intervals = [c for c in BOARD_INTERVALS if c not in empty]
    covs = "/".join(metric_name(c) for c in intervals if c.startswith("coverage"))
    table = Table(title=f"Backtest leaderboard (ranked on {metric_name(metric)}, lower is better"
                        + (f"; {covs}: interval coverage on windows not used to calibrate)" if covs else ")"),
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    cols = ("rank", "model", "kind", *point, *intervals)
    # headed as the leaderboard artifact heads them: sMAPE, MASE, cov80, MSIS (they read 'smape', 'mase', 'msis',
    # ui32); the coverages short to fit 80 columns (the title says what they are)
    for col in cols:  # no column shrinks to an ellipsis in 80 columns (a figure cut to "0.48…" says nothing)
        table.add_column(metric_name(col), justify="left" if col in ("model", "kind") else "right", no_wrap=True)
    for model, r in board.items():  # figures as every figure is written (`figures.score_text`), 'n/a' for none
        table.add_row(str(r["rank"] or "-"), model + (" *" if model == published else ""), r.get("kind") or "",
                      *[score_or_na(r.get(c)) for c in cols[3:]])
    return table


def _stored_where(result: dict[str, Any]) -> str:
    """Where a publish's rows are, what exists only: the Parquet file, and the DuckDB file where its views were made
    (a full disk or another program holding the file kept them from being created: the summary named the file all
    the same, faults48), else the store (PostgreSQL: it read 'Parquet: None' and 'DuckDB: None (table forecasts)')."""
    lines = [f"  Parquet: {result['parquet']}"] if result.get("parquet") else []
    if result.get("duckdb"):
        lines.append(f"  DuckDB:  {result['duckdb']} (table forecasts)")
    elif result.get("parquet"):
        lines.append("  DuckDB:  no views (not created: a warning in the run's log says why; a later publish creates them)")
    else:
        lines.append(f"  Store:   {result.get('store')} (table forecasts)")
    return "\n".join(lines)


def _read_them(result: dict[str, Any], settings: Any, config: Path | None, home: Path | None) -> str:
    """The command that reads what this run published: its dataset and as_of, and the --config and --home the
    run was given (without them it read the default home: 'no published forecasts' right after a publish). The
    as_of in the shortest text `flowcast forecasts --as-of` reads back as that instant (`utc_text` with `read_in`
    the dataset's tz: '2024-04-15' for its midnight, else '2024-04-15 06:00 UTC', quoted), not the ISO
    '2024-04-15T00:00:00+00:00' it wrote."""
    import shlex

    from flowcast.ops.quiet import dataset_tz

    dataset = str(result["dataset"])
    as_of = utc_text(result["as_of"], read_in=dataset_tz(settings, dataset))
    args = ["flowcast", "forecasts", "--dataset", dataset, "--as-of", as_of]
    args += [*(["--config", str(config)] if config else []), *(["--home", str(home)] if home else [])]
    return shlex.join(args)


@app.command()
@cli_errors
@source_options
def run(
    *,
    source: SourceOptions,
    horizon: HorizonOpt = None,
    as_of: AsOfOpt = None,
    models: ModelsOpt = None,
    max_steps: MaxStepsOpt = None,
    budget: BudgetOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run the retrain pipeline once: validate, train, backtest, promote, forecast, publish.

    Without --as-of the run sees all data (as_of = now). Prints the leaderboard and where the
    forecasts went."""
    data = source.data
    cells = _models(models)
    tuning = {"enabled": True, "budget_minutes": budget} if budget is not None else None
    started = command_started(datetime.now(UTC))  # the key of a run without --as-of, for a refusal before it
    with _refusal_announced("retrain", source.dataset, data, as_of, source.tz, started):
        settings = resolve_settings(  # the options are checked here, before a Prefect server starts
            **source.settings_args(), horizon=horizon, config=config, home=home, as_of=as_of,
            model={"max_steps": max_steps, **({"cells": []} if cells == [] else {})}, tuning=tuning,
        )
    instant = parse_run_as_of(as_of, settings)  # checked here, before the Prefect server starts
    when = flow_key(as_of, instant)
    check_data_before_flow(settings, instant, started=started)
    if data is not None and source.dataset is None:
        _note_new_dataset(settings, data)
    from flowcast.data.datasets import source_tz
    from flowcast.flows import retrain_flow

    overrides = {**({"tuning": tuning} if tuning else {}), **({"model": {"cells": []}} if cells == [] else {})}

    before = interrupts.received()
    with _prefect_console(settings.home), _run_tags("retrain"), _TrainingBars(enabled=not json_out and console.is_terminal):
        try:
            result = call_flow(retrain_flow,
                as_of=when, models=cells or None, horizon=horizon, max_steps=max_steps,
                config_file=str(config) if config else None, **_flow_source_args(settings, data),
                **({"overrides": overrides} if overrides else {}),
            )
        except Exception as exc:
            note_publish_of_this_command(exc, settings, when)  # the API went away after the publish: say so
            raise
    late = _late_interrupt(before, result)
    # a run skipped as it started (its slot retrained, its date published) read no data: its leaderboard and decision
    # are null (RETRAIN_KEYS), where reading them failed "'NoneType' object is not iterable" (review21)
    decided = result.get("decision") or {}
    board = {r["model"]: {k: r.get(k) for k in ("rank", "kind", "smape", "mase", "rmsse", "mae", "rmse", "coverage80",
                                                 "coverage95", "msis")}
             for r in result.get("leaderboard") or []}
    metric = decided.get("metric") or "mase"  # what the board is ranked on
    if json_out:
        from flowcast.data.freshness import RUN_KEYS  # the freshness keys of `flowcast forecast --json` too

        emit_json({
            "as_of": result["as_of"], "run_id": result["run_id"], "dataset": result["dataset"],
            "n_series": result["n_series"], "rows_in": result["rows_in"], "rows_valid": result["rows_valid"],
            "rows_quarantined": result["rows_quarantined"], "rows_duplicate": result.get("rows_duplicate"),
            **{k: result.get(k) for k in ("rows_null_y", "rows_imputed", "rows_planned", "rows_unseen", "future_missing",
                                          "future_fill", *RUN_KEYS,
                                          "columns_ignored", "columns_not_covariates", "wide_columns",
                                          "rows_before_gap", "gap_cut", "gap_cut_count",
                                          "log1p_disabled", "log1p_disabled_count", "quarantine_checks", "quarantine_hints",
                                          "quarantine_path")},
            "horizon": result["horizon"], "metric": metric, "leaderboard": board,
            "champion": result["champion"], "model_version": result.get("model_version"),
            "kind": result.get("kind"), "promoted": bool(decided.get("promote")),
            "action": decided.get("action"), "reasons": decided.get("reasons"),
            "note": result.get("note"), "skipped": bool(result.get("skipped")),
            "retrained_by": result.get("retrained_by"), "published_by": result.get("published_by"),
            "published_rows": result["published_rows"], "store": result["store"], "parquet": result["parquet"],
            "duckdb": result["duckdb"], "spans": result.get("spans"),
            "fallback_series": result.get("fallback_series"), "fallbacks": result.get("fallbacks"),
            "excluded": result.get("excluded"), "series_excluded": result.get("series_excluded"),
            "realized": result.get("realized"),
            **({"interrupted": True} if late else {}),
        })
        interrupted_afterwards(late)
        return
    if result.get("skipped") and not decided:  # skipped as it started: the note names the run that did it
        out.print(_dataset_note(result), highlight=False)
        interrupted_afterwards(late)
        return
    out.print(f"{result['dataset']}: {result['n_series']:,} series, as of {utc_text(result['as_of'])}; {counts_said(result)}, "
              f"imputed {_count(result.get('rows_imputed', 0))} (not scored){unseen_said(result)}", highlight=False)
    _print_data_lines(result, source_tz(settings))
    published = result["decision"].get("publish")
    if board:  # none when nothing could be scored (the decision says why)
        out.print(_leaderboard_table(board, None if result.get("skipped") else published, metric))
    if result.get("skipped"):  # computed, then refused under the key's lock: it published nothing, the note says
        # why; it printed 'Decision: ... published, not promoted' and 'Published 0 forecast rows ... Parquet: None'
        out.print(_dataset_note(result), highlight=False)
        interrupted_afterwards(late)
        return
    d = result["decision"]
    verdict = "promoted" if d["promote"] else ("kept in production" if d.get("action") == "keep"
                                               else "published, not promoted")
    out.print(f"Decision: {published} ({result.get('model_version')}, {result.get('kind')}) {verdict}. "
              + " ".join(d["reasons"][:3]), highlight=False)
    if result.get("note"):
        out.print(result["note"], highlight=False)
    from flowcast.reporting import all_fallback_text, rows_text

    made_by = all_fallback_text(result["champion"], result.get("model_version"), result.get("models"))
    out.print(
        f"Published {rows_text(result['published_rows'])} forecast rows ({result['n_series']:,} series, horizon "
        f"{result['horizon']}) from {made_by or result['champion']}\n{_stored_where(result)}"
        f"\n  Read them: {_read_them(result, settings, config, home)}",
        highlight=False, soft_wrap=True,  # a path folded at 80 columns cannot be copied whole
    )
    interrupted_afterwards(late)


def counts_said(result: dict[str, Any]) -> str:
    """'rows in 270 (45 of them planned: after as_of, kept for their future covariates), valid 270 (3 without a target
    value), quarantined 0':
    the rows a run or forecast read, saying the planned ones (newuser27: a run at 2024-03-15 with `--future-col
    promo` said 'rows in 270, valid 270' of a file with 225 observations by then; the data-quality report alone
    said that 45 were planned rows, whose target is ignored)."""
    from flowcast.data.validate import duplicates_said, planned_said

    said = planned_said(int(result.get("rows_planned") or 0))
    valid = result["rows_valid"]
    dups = duplicates_said(int(result.get("rows_duplicate") or 0), valid if isinstance(valid, int) else 0)
    null_y = int(result.get("rows_null_y") or 0)
    return (f"rows in {_count(result['rows_in'])}{said}, valid {_count(valid)}"
            f"{f' ({null_y:,} without a target value)' if null_y else ''}, "
            f"quarantined {_count(result['rows_quarantined'])}{_quarantine_said(result)}{f', {dups}' if dups else ''}")


def unseen_said(result: dict[str, Any]) -> str:
    """'; 156 rows dated after as_of 2024-03-01 not seen by this run' after the counts of a run or forecast whose data
    hold rows after its as_of (not among its rows in), as the run log's 'Validation:' line says them; '' where none."""
    from flowcast.data.validate import after_as_of_said

    return after_as_of_said(int(result.get("rows_unseen") or 0), utc_text(result["as_of"]),
                            bool(result.get("rows_partial_period")))


def _count(value: Any) -> str:
    """A count as the run's log writes it, with thousands separators ('143,412'); a value that is no count (null
    in an older result) as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _quarantine_said(result: dict[str, Any]) -> str:
    """' (2 time_unparsable: a totals row?, 1 y_not_numeric)': the checks the quarantined rows failed with their counts
    (the data-quality report's) and the questions their reasons ask, the 3 most frequent, then '+K more; see the
    data-quality report and <quarantine file>' (polish33: a run said 'quarantined 1' alone). '' where none was
    quarantined or the result predates the keys."""
    checks = sorted((result.get("quarantine_checks") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    if not checks:
        return ""
    # with the questions the rows' reasons ask ('2 time_missing: a totals row? a note line?'; msg40: the check alone
    # named nothing a person could act on)
    from flowcast.data.validate import check_questions

    hints = result.get("quarantine_hints") or {}
    shown = ", ".join(f"{n:,} {check}" + (f": {asked}" if (asked := check_questions(hints.get(check) or [])) else "")
                      for check, n in checks[:3])
    if len(checks) > 3:
        where = f" and {path}" if (path := result.get("quarantine_path")) else ""
        shown += f", +{len(checks) - 3} more; see the data-quality report{where}"
    return f" ({shown})"


def _print_data_lines(result: dict[str, Any], tz: str | None = None) -> None:
    """What a run's data left out or changed, the lines after its summary's first: the series not forecast, the
    columns ignored, a wide file's series columns, the series starting after an interior gap, those scaled without
    log1p, stale data (`tz`: the source's, `_print_stale`). `flowcast run` and `flowcast forecast` print them alike
    (fcst44: the forecast's summary left out the interior-gap line, said only in its log)."""
    from flowcast.data.validate import gap_cut_line, ignored_columns_line, log1p_off_line, wide_columns_line

    _print_excluded(result)  # (review21: '5 series' of a file of 6, none named)
    lines = [
        # a covariate the user expected to be used was not
        ignored_columns_line(result["columns_ignored"], result.get("columns_not_covariates"))
        if result.get("columns_ignored") else "",
        wide_columns_line(result["wide_columns"]) if result.get("wide_columns") else "",  # which columns became series
        # series that start after a gap longer than max_gap (the rows before, not used)
        gap_cut_line(result["gap_cut"], int(result.get("rows_before_gap") or 0), result.get("gap_cut_count"))
        if result.get("gap_cut") else "",
        # preprocess.log1p on: which series it could not be applied to
        log1p_off_line(result["log1p_disabled"], result.get("n_series"), result.get("log1p_disabled_count"))
        if result.get("log1p_disabled") else "",
    ]
    for line in filter(None, lines):
        out.print(line[0].upper() + line[1:], highlight=False)
    _print_stale(result, tz)


def _print_excluded(result: dict[str, Any]) -> None:
    """The series of the data that the run did not forecast, with the reason of each (every row quarantined, an
    ended series set aside, too short): the summary said '5 series' of a file of 6 and named none (ui19), the
    reason only in a warning scrolled past and the data-quality artifact."""
    n = int(result.get("series_excluded") or 0)
    listed = list(result.get("excluded") or [])
    if not n or not listed:
        return
    shown = "; ".join(f"{e['unique_id']} ({e['reason']})" for e in listed[:3])
    more = f"; and {n - 3:,} more (--json: excluded)" if n > 3 else ""
    out.print(f"{n:,} series excluded, not forecast: {shown}{more}", highlight=False)


def _print_stale(result: dict[str, Any], tz: str | None = None) -> None:
    """The 'Stale data' line of a run whose every forecast period lies before its as_of (`Freshness.all_before_as_of`,
    decided once by the flow): `flowcast run` and `flowcast forecast` alike. A sub-daily latest observation is said
    with its wall time in the source's `tz` too (`freshness.when_text`), as the run's log says it."""
    if not result.get("stale"):
        return
    from datetime import datetime

    from flowcast.data.freshness import when_text  # '2024-04-29', not '2024-04-29T00:00:00'

    latest = result.get("latest_ds")
    latest = when_text(datetime.fromisoformat(latest), result.get("freq") or "1d", tz) if latest else "-"
    out.print(f"Stale data: the latest observation ({latest}) is {_count(result.get('periods_behind'))} periods "
              f"({result.get('freq')}) before as_of, so every forecast period lies before as_of", highlight=False)


@app.command()
@cli_errors
@source_options
def forecast(
    *,
    source: SourceOptions,
    horizon: HorizonOpt = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Forecast every series with the production model and publish (the forecast flow once, no training)."""
    data = source.data
    started = command_started(datetime.now(UTC))  # the key of a run without --as-of, for a refusal before it
    with _refusal_announced("forecast", source.dataset, data, as_of, source.tz, started):
        settings = resolve_settings(
            **source.settings_args(), horizon=horizon, config=config, home=home, as_of=as_of,
        )
    instant = parse_run_as_of(as_of, settings)  # checked here, before the Prefect server starts
    when = flow_key(as_of, instant)
    check_data_before_flow(settings, instant, "forecast", started)
    check_covariates_before_flow(settings, instant, started)
    from flowcast.data.datasets import source_tz
    from flowcast.flows import forecast_flow

    before = interrupts.received()
    with _prefect_console(settings.home), _run_tags("forecast"):
        try:
            result = call_flow(forecast_flow,
                as_of=when, horizon=horizon, config_file=str(config) if config else None,
                **_flow_source_args(settings, data),
            )
        except Exception as exc:
            note_publish_of_this_command(exc, settings, when)  # the API went away after the publish: say so
            raise
    late = _late_interrupt(before, result)
    if json_out:
        emit_json({**result, **({"interrupted": True} if late else {})})
        interrupted_afterwards(late)
        return
    if result.get("unchanged") or result.get("skipped"):  # skipped: its slot was published by another run
        out.print(_dataset_note(result), highlight=False)
        _print_stale(result, source_tz(settings))  # nothing new arrived: all the more the question whether the source is still updated
        interrupted_afterwards(late)
        return
    from flowcast.reporting import all_fallback_text, rows_text

    made_by = all_fallback_text(result["model"], result.get("model_version"), result.get("models"))
    out.print(
        f"{result['dataset']}: {result['n_series']:,} series, as of {utc_text(result['as_of'])}; {counts_said(result)}{unseen_said(result)}\n"
        f"Published {rows_text(result['published_rows'])} forecast rows from {made_by or result['model_version']}\n"
        f"{_stored_where(result)}\n"
        f"  Read them: {_read_them(result, settings, config, home)}",
        highlight=False, soft_wrap=True,  # a path folded at 80 columns cannot be copied whole
    )
    _print_data_lines(result, source_tz(settings))  # as `flowcast run` says them: the forecast flow only logged them
    if result.get("note"):  # fallbacks, an interval level its calibration had too few points for
        out.print(result["note"], highlight=False)
    interrupted_afterwards(late)


def _dataset_note(result: dict[str, Any]) -> str:
    """A run's note after its dataset's name, said once: a note that starts with it (`tiny as of 2019-03-01 00:00 was
    already published ...`, `common.held_sentence`) alone, where it printed `tiny: tiny as of ...` (cli41)."""
    dataset, note = str(result["dataset"]), str(result["note"])
    return note if note.startswith(f"{dataset} ") else f"{dataset}: {note}"


def _backfill_table(summary: dict[str, Any], mode: str, stepping: str) -> Any:
    """The backfill's outcomes, every as_of, status, row count and model whole in 80 columns (rich cut
    them to 'theta-…' and '2024-0…'); the worker column only when dates ran on workers, the flow run never cut,
    every row one line. The detail is cut at the width with an ellipsis, and a line under the table says where it is
    whole (`DETAILS_CUT`: --json, the artifact): wrapped, a skipped date's detail took 9 lines at 80 columns, a run id
    broken mid-word. A failed date whose error the backfill's error, printed below the table, says whole (the first
    `ERRORS_SAID`) reads `FAILED_BELOW` (ui40; the backfill-summary artifact's cell points above its table alike). A
    date an --overwrite rewrote reads `REWRITTEN_BELOW`; `_rewritten_below` says what it replaced whole after the
    table (cli41). Where the flow-run column does not fit one line beside the others (80 columns: each row took 3
    lines, 'forecast sales' / '2024-04-10' / '(backfill)', look42), the table goes without it and the runs' names
    follow it (`_runs_below`). `stepping`: how the title says the dates' spacing (`backfill.Grid.said`: 'every 1d',
    'at the slots of the forecast schedule (...)')."""
    return _BackfillTable(summary, mode, stepping)


# the room the detail column keeps beside the others before the flow-run column goes below the table
DETAIL_ROOM = 12


@dataclass(frozen=True)
class _BackfillTable:
    """`_backfill_table`'s renderable: rich gives it the width to fit at print time."""

    summary: dict[str, Any]
    mode: str
    stepping: str

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement
        from rich.text import Text

        def measured(runs: bool) -> int:
            return Measurement.get(console, options, _outcomes_table(self.summary, self.mode, self.stepping, runs=runs,
                                                                     detail=None)).maximum

        # no flow-run column where no date ran one (a re-run that skips every date): its room goes to the detail
        named = any(o.get("flow_run") for o in self.summary["outcomes"])
        runs = named and measured(True) + 1 + DETAIL_ROOM <= options.max_width
        room = max(options.max_width - measured(runs) - 1, DETAIL_ROOM)  # (1: the space between two columns)
        table = _outcomes_table(self.summary, self.mode, self.stepping, runs=runs, detail=room)
        yield table
        shown = "\n".join("".join(segment.text for segment in line) for line in console.render_lines(table, options))
        if _details_cut(self.summary["outcomes"], shown):
            yield Text(DETAILS_CUT)  # a detail cut at the width: said where it is whole
        if named and not runs and (below := _runs_below(self.summary["outcomes"])):
            yield Text(below)


DETAILS_CUT = "(details cut to fit: --json and the backfill-summary artifact say them whole)"


def _details_cut(outcomes: list[dict[str, Any]], shown: str) -> bool:
    """Whether the table as rendered (`shown`, its lines) cut a detail this output says nowhere else: a date's error or
    note that no line holds whole. A cell pointing below the table (`FAILED_BELOW`, `REWRITTEN_BELOW`: what it points
    to follows whole), an ellipsis of another column (a flow run, a model) or one a note itself holds is none: the
    line under the table said the details were cut wherever any cell of it had an ellipsis."""
    said_below = _said_below(outcomes)
    shown = " ".join(shown.split())
    details = {_detail_cell(o, said_below) for o in outcomes}
    return any(" ".join(d.split()) not in shown for d in details - {"", FAILED_BELOW, REWRITTEN_BELOW})


def _said_below(outcomes: list[dict[str, Any]]) -> set[int]:
    """The ids of the failed dates whose errors the backfill's error, printed below the table, says whole (the first
    `ERRORS_SAID`)."""
    from flowcast.flows.backfill import ERRORS_SAID

    return {id(o) for o in [o for o in outcomes if o["status"] == "failed" and o.get("error")][:ERRORS_SAID]}


def _detail_cell(o: dict[str, Any], said_below: set[int]) -> str:
    """A date's detail cell: `FAILED_BELOW` for an error said below the table, `REWRITTEN_BELOW` for a date an
    --overwrite rewrote, else its error or note."""
    from flowcast.reporting import rewrote

    return (FAILED_BELOW if id(o) in said_below else REWRITTEN_BELOW if rewrote(o)
            else o["error"] or o.get("note") or "")


def _runs_below(outcomes: list[dict[str, Any]]) -> str:
    """The flow runs' names under a table too narrow for their column: one line for the name the dates' runs share
    but for their as_of ('flow runs: forecast sales <as_of> (backfill), each named with its row's as_of'), then one per run named
    otherwise ('2024-04-11: forecast sales 2024-04-11 (backfill) (attempt 2)'); '' when no date has a run."""
    from collections import Counter

    named = [(utc_text(o["as_of"]), str(o["flow_run"])) for o in outcomes if o.get("flow_run")]
    if not named:
        return ""
    forms = Counter(name.replace(when, "<as_of>") for when, name in named)
    form, _ = forms.most_common(1)[0]
    lines = [f"flow runs: {form}" + (", each named with its row's as_of" if "<as_of>" in form else "")]
    lines += [f"{when}: {name}" for when, name in named if name.replace(when, "<as_of>") != form]
    return "\n".join(lines)


def _outcomes_table(summary: dict[str, Any], mode: str, stepping: str, *, runs: bool = True,
                    detail: int | None = None) -> Any:
    """The table of `_backfill_table`: with the flow-run column (`runs`) or not, the detail column `detail` characters
    wide at most, or none (None: the table measured without it, to give it the room left). `stepping`: how the title
    says the dates' spacing (`backfill.Grid.said`)."""
    from rich import box
    from rich.table import Table

    from flowcast.reporting import backfill_counts, on_workers, rows_text, worker_cells

    outcomes = summary["outcomes"]
    said_below = _said_below(outcomes)
    workers = on_workers(outcomes)
    worker_cell = worker_cells(outcomes)
    table = Table(title=f"Backfill ({mode}) {stepping}: {backfill_counts(outcomes)}",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("as_of (UTC)", no_wrap=True)
    for col in ("status", "rows", "model", *(["worker"] if workers else [])):
        table.add_column(col, no_wrap=True, justify="right" if col == "rows" else "left")
    if runs:  # measured to fit (`_BackfillTable`): one line, the detail cut beside it
        table.add_column("flow run", no_wrap=True)
    if detail is not None:  # one line: cut with an ellipsis (`DETAILS_CUT`), whole in --json and the artifact
        table.add_column("detail", no_wrap=True, overflow="ellipsis", max_width=detail)
    for o in outcomes:
        table.add_row(utc_text(o["as_of"], zone=False), o["status"], rows_text(o["rows"]), o["model"] or "",
                      *([worker_cell.get(str(o.get("worker")), "")] if workers else []), *([o.get("flow_run") or ""] if runs else []),
                      *([_detail_cell(o, said_below)] if detail is not None else []))
    return table


REWRITTEN_BELOW = "rewritten: see below"  # a rewritten date's cell (`_backfill_table`): what it replaced, below
FAILED_BELOW = "failed: see below"  # a failed date's cell whose error the backfill's error says whole, below


def _rewritten_below(summary: dict[str, Any]) -> str:
    """After the backfill's table, what each date its --overwrite rewrote replaced, one line each, ids whole
    (`2019-03-01: it replaced the 24 rows run 5c1e... published (gru-v2)`); '' when it rewrote none."""
    from flowcast.reporting import rewrites

    return "\n".join(f"{when}: {note}" for when, note in rewrites(summary["outcomes"]))


@app.command()
@cli_errors
@source_options
def backfill(
    start: Annotated[str, typer.Option("--start", help="first as_of (ISO date or timestamp; without a UTC offset it means UTC; a date alone: that day in the source's tz)")],
    end: Annotated[str, typer.Option("--end", help="last as_of (inclusive; without a UTC offset it means UTC; a date alone: that day in the source's tz)")],
    every: Annotated[str | None, typer.Option("--every", help="step between as_ofs: 1d, 1w, 1mo ... "
                                                  "(default: the data's frequency; for sub-daily data the slots of "
                                                  "FLOWCAST_FORECAST_CRON where it is set, else 1d, the daily "
                                                  "forecast's step)")] = None,
    mode: Annotated[str, typer.Option("--mode", help="forecast (production model) or retrain (train per date)")] = "forecast",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="recompute dates that are already published")] = False,
    deployment: Annotated[str | None, typer.Option(
        "--deployment", help="fan out through this deployment to its work pool: forecast/forecast-pool, or "
                             "retrain/retrain-pool (implies --mode retrain)")] = None,
    *,
    source: SourceOptions,
    horizon: HorizonOpt = None,
    models: BackfillModelsOpt = None,
    max_steps: BackfillMaxStepsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Recompute forecasts as they would have been made on each as_of from --start to --end."""
    data = source.data
    if mode not in ("forecast", "retrain"):
        raise ConfigError(f"--mode must be forecast or retrain, got {mode!r}")
    # `--mode retrain` trains on every date, as `flowcast run` does: the same options choose and bound the networks
    # (they were 'No such option: --models'; only FLOWCAST_MODEL__* variables could)
    cells = _models(models)
    if (cells is not None or max_steps is not None) and mode != "retrain" and not (deployment or "").startswith("retrain/"):
        given = " and ".join(o for o, v in (("--models", cells), ("--max-steps", max_steps)) if v is not None)
        raise ConfigError(f"{given} only go with --mode retrain, where each date trains its models (--mode forecast "
                          "publishes the production model as it was trained)")
    model = {**({"cells": cells} if cells is not None else {}), **({"max_steps": max_steps} if max_steps is not None else {})}
    given_model: dict[str, Any] = {"model": model} if model else {}
    with _refusal_announced("backfill", source.dataset, data, start, source.tz):
        settings = resolve_settings(
            **source.settings_args(), horizon=horizon, config=config, home=home, as_of=start, **given_model)
    # checked here; dates alone go to the flow as they are: the days of the source's calendar
    first, last = flow_as_of(start, settings, "--start"), flow_as_of(end, settings, "--end")
    assert first is not None and last is not None  # (both options are required)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flowcast.data.datasets import resolve_source
    from flowcast.errors import RunCancelled
    from flowcast.flows import backfill_flow
    from flowcast.flows.backfill import BackfillError, backfill_dates, default_grid, listen

    src = resolve_source(settings)
    freq = src.freq
    grid = default_grid(first, last, every, freq, src.tz)
    dates, step = grid.dates, grid.every
    # a frequency or layout read off the rows by --start: each date reads its rows so by then, or none runs
    check_backfill_readings(data, src if data else None, dates, freq_given=source.freq is not None)
    if deployment is None:  # (a deployment's workers read the source where they run: the flow checks it there)
        check_backfill_data(settings, src, dates, overwrite, mode)
    if every is None and dates and (len(dates) > 1 or step != freq) and not json_out:
        # a backfill of two days of hourly data ran 25 dates (one per hour) and said so only as the bar filled; one
        # of half a day of hourly data ran 1 date where it ran 13, without a word (review 51)
        if step == freq:
            why, other = "the data's frequency", f"e.g. --every {_coarser_every(step)}"
        else:  # (sub-daily data: as the forecast schedule publishes; newuser51: 49 hourly runs for 2 days)
            finer = len(backfill_dates(first, last, freq, src.tz))
            why = f"the daily forecast's step; the data's frequency is {freq}"
            other = f"--every {freq}: one per period of the data, {finer} runs"
        span = f"from {utc_text(dates[0])} to {utc_text(dates[-1])}" if len(dates) > 1 else f"at {utc_text(dates[0])}"
        spaced = grid.slots or f"one every {step} ({why})"
        console.print(f"note: --every not given: {plural(len(dates), 'as_of')}, {spaced} {span}; "
                      f"pass --every ({other}) to space them otherwise", highlight=False)
    counts = {"published": 0, "replaced": 0, "skipped": 0, "failed": 0, "not run": 0}
    bar = Progress(TextColumn("backfill {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=json_out)
    task_id = bar.add_task("", total=len(dates))

    def on_date(o: dict[str, Any]) -> None:
        counts[o["status"]] += 1
        bar.update(task_id, advance=1, description=f"{utc_text(o['as_of'])} {o['status']}")

    summary: dict[str, Any]
    failed: BackfillError | None = None
    before = interrupts.received()
    with _prefect_console(settings.home), _run_tags("backfill"), bar, listen(on_date):
        try:
            summary = call_flow(backfill_flow,
                start=first, end=last, every=every, mode=mode, overwrite=overwrite, deployment=deployment, horizon=horizon,
                config_file=str(config) if config else None, **_flow_source_args(settings, data),
                **({"overrides": {"model": model}} if model else {}),
            )
        except BackfillError as exc:
            failed, summary = exc, exc.summary
    n_published = int(summary.get("published") or 0)
    late = (f"after the backfill completed ({summary.get('run_id')}): its {plural(n_published, 'date')} "
            f"published {'stays' if n_published == 1 else 'stay'} published" if interrupts.received() > before else "")
    if json_out:  # the same keys as any failed command's object (cli_errors), beside every date's outcome
        # a backfill whose own run was cancelled from the UI as it waited on its dates is 'cancelled', not 'failed'
        emit_json({"status": "cancelled" if isinstance(failed, RunCancelled) else "failed", "error": str(failed),
                   "exit_code": failed.exit_code, **summary}
                  if failed is not None else {"status": "completed", **summary, **({"interrupted": True} if late else {})})
    else:
        out.print(_backfill_table(summary, mode, grid.said))
        if rewrote := _rewritten_below(summary):
            out.print(rewrote, highlight=False)
    if failed is not None:
        console.print(f"[bold red]error:[/] {said(failed)}", highlight=False, markup=True)
        raise typer.Exit(failed.exit_code)
    interrupted_afterwards(late)


@app.command()
@cli_errors
def serve(
    config: ConfigOpt = None,
    home: HomeOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", help="most flow runs at once")] = None,
) -> None:
    """Serve the retrain (Mondays 03:00), forecast (daily 06:00) and backfill deployments from this process.

    Runs until Ctrl-C or one SIGTERM (exit 0; a SIGTERM takes no new run and gives those in flight [serve] grace_seconds, 10 s, to end, then cancels them; a second one cancels them at once). One serve per home and Prefect API: a second one refuses to start (exit 4), naming the
    running one. FLOWCAST_RETRAIN_CRON and FLOWCAST_FORECAST_CRON change the schedules, FLOWCAST_TIMEZONE
    their zone (default: UTC). Point PREFECT_API_URL at a server (`make server`) to see them in the UI."""
    settings = resolve_settings(config=config, home=home)
    from flowcast.flows.deploy import early_sigterm_stops, schedule_settings, serve_all, serving

    schedule_settings()  # a bad FLOWCAST_TIMEZONE or *_CRON is said before a Prefect server starts
    from flowcast.ops.reaper import temporary_api

    # one serve per home and Prefect API (a second one refuses to start, naming this one), before any server starts;
    # a SIGTERM before its runner takes the signal stops it as a later one does (exit 0), the locks and server let go;
    # one as it exits is said and ignored, its clean-up ended (exit 0); no PREFECT_API_URL: the temporary server
    with early_sigterm_stops(exits=True), serving(settings.home), temporary_api():
        serve_all(
            {"home": str(Path(settings.home).resolve()), "config_file": str(Path(config).resolve()) if config else None},
            limit=limit,
        )


@app.command()
@cli_errors
def deploy(
    prefect_file: Annotated[Path, typer.Option("--prefect-file", help="the deployments to deploy")] = Path(
        "deployments/prefect.yaml"),
) -> None:
    """Deploy deployments/prefect.yaml to the Prefect API for work pools (`prefect deploy --all`), with the Run forms
    of `flowcast serve`'s deployments.

    Run it from the repository root (runs start there). `prefect deploy --all` alone registers the schema Prefect
    makes of each flow, whose Run form opens every optional parameter on 'Property is type "None"'; this then gives
    each deployment the form where they are inputs left empty (flowcast.flows.deploy.give_forms)."""
    import subprocess

    from prefect.settings import PREFECT_API_URL

    from flowcast.flows.deploy import give_forms, say_if_unscheduled, stale_pool_deployments, stale_sentence

    if not prefect_file.is_file():
        raise ConfigError(f"--prefect-file {prefect_file}: no such file (run `flowcast deploy` from the repository "
                          "root, or name the file)")
    env = {**os.environ, **({"PREFECT_API_URL": api} if (api := PREFECT_API_URL.value()) else {})}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file",
                           str(prefect_file)], env=env, check=False)
    if done.returncode != 0:
        raise FlowcastError(f"`prefect deploy --all --prefect-file {prefect_file}` exited {done.returncode} (its "
                            "output is above); the Run forms were not changed")
    names = give_forms(prefect_file)
    out.print(f"Run forms given to {listed(names)}: optional parameters open on an input left empty.",
              highlight=False)
    say_if_unscheduled(names, lambda said: console.print(f"warning: {said}", highlight=False))
    if stale := stale_pool_deployments(prefect_file):
        console.print(f"warning: {stale_sentence(stale, PREFECT_API_URL.value() or 'this process talks to')}",
                      highlight=False)


@app.command()
@cli_errors
def reap(
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Mark Crashed the flow runs of this home left Running by a killed flowcast process.

    Each flow run records which process runs it (.flow-runs/ in the home); a run whose process is gone
    from this machine while the Prefect API still has it Running (or Pending) is marked Crashed
    with a message naming the process, its running task runs too. The command's watchdog and
    every later run in the same home do the same on their own; this is for doing it now."""
    settings = resolve_settings(config=config, home=home)
    from flowcast.ops.reaper import reap as reap_home

    with _prefect_console(settings.home):
        done = reap_home(settings.home, by="flowcast reap")
    if json_out:
        emit_json({"home": str(Path(settings.home).resolve()), "flow_runs": [r.to_dict() for r in done]})
        return
    crashed = [r for r in done if r.action == "crashed"]
    for r in crashed:
        out.print(f"Marked flow run '{r.name}' ({r.flow_run_id}) Crashed: it was {r.state}.", highlight=False)
    ended = len(done) - len(crashed)
    out.print(f"{plural(len(crashed), 'flow run')} marked Crashed"
              + (f"; {plural(ended, 'record')} of runs that had ended dropped" if ended else ""), highlight=False)
