"""What the flows share: settings from flow parameters, the run's as_of and identity, loading
data (ingest, validate, quarantine, preprocess) and publishing (forecast plot, receipt).

These helpers run inside a flow run; they call tasks from `flowcast.flows.tasks` and push
artifacts through `flowcast.reporting`. Times come from the Prefect run (its scheduled start
and start time), never from the clock, so a scheduled run, a manual run and a backfill take
the same path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import polars as pl
from prefect import get_run_logger

from flowcast import events, reporting
from flowcast.columns import DATASET_NAME_PATTERN
from flowcast.config import Settings, SourceConfig, load_settings
from flowcast.data.calendar import is_subdaily
from flowcast.data.datasets import source_tz  # noqa: F401 - the flows' import of it
from flowcast.data.preprocess import fitted_spans
from flowcast.data.schemas import DS_SEEN
from flowcast.errors import (
    AlreadyPublished,
    ConfigError,
    DataValidationError,
    FlowcastError,
    RunCancelled,
    SamePublished,
    StorageError,
    by_interrupt,
    one_line,
)
from flowcast.flows import tasks
from flowcast.redaction import redact
from flowcast.store.base import PublishReceipt
from flowcast.timekeys import as_instant, storage_naive, utc_text

# ------------------------------------------------------------------------------- settings
P = ParamSpec("P")
R = TypeVar("R")


def crash_on_interrupt(fn: Callable[P, R]) -> Callable[P, R]:
    """A flow function (under @flow) whose Ctrl-C crashes its flow run, whatever it was doing. A SIGINT
    that lands while Prefect creates a task run is raised before that task run exists; Prefect's task
    engine, recording the crash, then fails with 'ValueError: Task run is not set', which reaches the
    flow as the task's error: the flow run ended Failed ('Flow run encountered an exception: ValueError:
    Task run is not set') and its failure hook sent a 'run failed' event. An error that comes of a
    KeyboardInterrupt (`by_interrupt`) is raised as the KeyboardInterrupt it is, which Prefect's flow
    engine records as Crashed ('Execution was aborted by an interrupt signal.') and the command line
    ends with 'interrupted', exit 130."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from flowcast.streams import guard

        guard()  # a flow whose worker (its console) went away goes on: flowcast.streams
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if by_interrupt(exc):
                raise KeyboardInterrupt(f"interrupted ({type(exc).__name__}: {exc})") from exc
            raise

    # the signature Prefect validates parameters against and shows: the flow's own, its annotations resolved
    # (as text they would be read in this module, which does not define the flow's parameter types)
    run.__annotations__ = typing.get_type_hints(fn)
    run.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return run


def fails_without_a_result(fn: Callable[P, R]) -> Callable[P, R]:
    """A flow function (under @flow, above `crash_on_interrupt`) whose failure that flowcast explains (a
    FlowcastError) is returned as the run's Failed state, with the message Prefect gives a raised exception
    ('Flow run encountered an exception: RegistryError: ...'), the exception its data: calling the flow raises it
    as before, `state.result()` too, and the failure hooks and alerts read the same message. Raised, Prefect's flow
    engine writes the exception to the result storage whatever the flow's `persist_result` (`FlowRunEngine.
    handle_exception`: `write_result=True`, prefect 3.9.1 flow_engine.py:853), and the server turns a state's
    stored result into a keyless artifact of no type (`server/orchestration/rules.py`:
    `core.Artifact.from_result`): the run's page listed an 'unknown' artifact holding a pickle's path, a second one
    on the task run that tracks a child flow in its parent (ui31), and every failed run left a pickle under
    ~/.prefect/storage. A returned state is stored only where the flow persists results (none does). Any other
    exception is raised as it was: a bug keeps Prefect's full report. A RunCancelled (the run's own cancel, noticed
    as it ran in-process: no worker carried it out) is returned as the run's Cancelled state, its message the
    error's, the exception its data (calling the flow raises it)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RunCancelled as exc:
            from prefect.states import Cancelled

            return typing.cast(R, Cancelled(message=str(exc), data=exc))
        except FlowcastError as exc:
            from prefect.states import Failed, format_exception

            if isinstance(exc, DataValidationError) and exc.begins:  # kept on the run, typed (`BEGINS_LABEL`)
                label_run({BEGINS_LABEL: exc.begins})

            state: Any = Failed(message=f"Flow run encountered an exception: {format_exception(exc)}", data=exc)
            state.state_details.retriable = False  # as Prefect's own state of a raised exception
            return typing.cast(R, state)

    run.__annotations__ = typing.get_type_hints(fn)
    run.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return run


def says_what_it_skipped(fn: Callable[P, dict[str, Any]]) -> Callable[P, dict[str, Any]]:
    """A flow function whose run may publish nothing by design: a run that found its slot done by another run
    (the forecast flow: published already; the retrain flow: retrained or published already; its result has
    `skipped`) and a forecast run with nothing new since the last publish (`unchanged`, publish.skip_unchanged),
    each with `note`, the sentence saying why (naming the other run). Such a run used to end `Completed()` with no
    message and its usual name, so the UI's run list showed it as one that published. It now ends Completed with
    the message `Skipped: <note>` (`Nothing published: <note>`), a State returned by the flow (calling the flow
    still returns the result), and is renamed `<name> (skipped)` (`(unchanged)`) and tagged `skipped`
    (`unchanged`): `mark_run`. A run that published ends Completed with the message saying what
    (`run_state_message`)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        out = fn(*args, **kwargs)
        said = skipped_state(out) if isinstance(out, dict) else None
        message = said[0] if said is not None else run_state_message(out) if isinstance(out, dict) else None
        if message is None:
            return out
        from prefect.states import Completed

        if said is not None and said[2]:
            mark_run(said[1], said[2])
        return typing.cast(dict[str, Any], Completed(message=message, data=out))

    return run


# how the state message of a run that published starts (`run_state_message`): a backfill's fan-out reads it to tell a
# date's run that published, then had its publish replaced by another run's, from one that published nothing
PUBLISHED_MESSAGE = "Published "


def run_state_message(result: dict[str, Any]) -> str | None:
    """The Completed state's message of a run with `result`: why it published nothing (`skipped_state`), or what it
    published ('Published 48 forecast rows from gru-v1: tiny as of 2023-12-31 00:00 UTC'; it ended Completed()
    with no message, its page's side panel reading 'State Message: None', ui42), from the fallback where every row is
    a fallback's ('... from naive, the fallback for every series (theta-v1 forecast none): ...', `all_fallback_text`);
    None where it published no rows."""
    if (said := skipped_state(result)) is not None:
        return said[0]
    rows = int(result.get("published_rows") or 0)
    if not rows or not result.get("as_of"):
        return None
    from flowcast.wording import plural

    # every row its fallback's: the fallback, as the CLI's line and the receipt say it ('from theta-v1' named a model
    # that made none of them); the pipeline's result names its model `champion`, the forecast flow's `model`
    named = result.get("model") or result.get("champion")
    fell = reporting.all_fallback_text(str(named), result.get("model_version"), result.get("models")) if named else None
    # the model as the receipt and the `Published ...` log line name it ('theta (theta-v3)': it read 'from theta-v3')
    version = result.get("model_version")
    model = fell or (reporting.model_text(str(named), version) if named else version) or "the production model"
    # the model before the dataset and as_of, which the run's name says: the side panel cuts the message at about 70
    # characters ('... as of 2023-11-30 06:00 UTC fro... See More')
    return (f"{PUBLISHED_MESSAGE}{plural(rows, 'forecast row')} from {model}: {result.get('dataset')} as of "
            f"{utc_text(result['as_of'])}")


def published_by_message(message: str | None) -> tuple[int, str] | None:
    """(rows, model) a run's Completed state `message` says it published (`run_state_message`: 'Published 1,776
    forecast rows from gru-v1: ...'), None where it says no publish: what a backfill date run on a worker published,
    read where no shared result storage holds its result and the store holds another run's publish of the date.
    Read from the message's end, which `run_state_message` writes in forms without ': ' (a dataset name, an as_of
    as `utc_text` writes it): the model is all between 'from ' and the last ': ', whatever it holds (a version with
    ': ' was cut at its first one), and one row reads ('Published 1 forecast row', which read as no publish)."""
    said = re.fullmatch(rf"{re.escape(PUBLISHED_MESSAGE)}([\d,]+) forecast rows? from (.+): "
                        rf"{DATASET_NAME_PATTERN.strip('^$')} as of {_UTC_TEXT_PATTERN}", message or "")
    if not said:
        return None
    # 'theta (theta-v3)' (`reporting.model_text`): its version, as a date's line names the model of a publish it holds
    named = re.fullmatch(r"[^\s(),]+ \((.+)\)", said[2])
    return int(said[1].replace(",", "")), named[1] if named else said[2]


# an instant as `utc_text` writes it without a zone of its own: '2019-03-01', '2019-03-01 06:00 UTC', '... 06:00:15 UTC'
_UTC_TEXT_PATTERN = r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}(?::\d{2})? UTC)?"


def skipped_state(result: dict[str, Any]) -> tuple[str, str, str] | None:
    """(state message, name suffix, tag) of a run that published nothing by design (`says_what_it_skipped`),
    None for any other result. A retried flow run (Prefect's Retry of a Crashed run reruns the same flow run) that
    finds its slot done by its own earlier attempt keeps its name and tags ('' and ''): it is the run that did it."""
    from flowcast.flows.naming import SKIPPED_SUFFIX, SKIPPED_TAG, UNCHANGED_SUFFIX, UNCHANGED_TAG

    note = result.get("note") or ""
    if result.get("skipped") is True:
        by = result.get("retrained_by") or result.get("published_by")
        if by and by == result.get("run_id"):  # this flow run again (a Crashed run retried from the UI after it had
            return f"Done by an earlier attempt of this flow run: {note}", "", ""  # published): not another run's
        return f"Skipped: {note or 'its slot was done by another run'}", SKIPPED_SUFFIX, SKIPPED_TAG
    if result.get("unchanged") is True:
        return f"Nothing published: {note or 'nothing new since the last publish'}", UNCHANGED_SUFFIX, UNCHANGED_TAG
    return None


# the label of a flow run whose as_of precedes its data: the first as_of that observes it (`DataValidationError.begins`),
# which a deployment's fan-out reads off the run (`fanout.outcome_of`): a worker's run keeps its message, not its
# exception, and the date was read out of the message's wording
BEGINS_LABEL = "flowcast.begins"


def label_run(labels: dict[str, str | int | float | bool]) -> None:
    """Add `labels` to the current flow run, through the Prefect API. A failure is a warning, never the run's."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    fr = ctx.flow_run if ctx is not None else None
    if fr is None:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run_labels(fr.id, labels)
    except Exception as exc:  # noqa: BLE001 - the run failed for its own reason: say that one
        get_run_logger().warning(f"Could not label the flow run {fr.name!r} with {labels} ({one_line(exc)})")


def mark_run(suffix: str, tag: str) -> None:
    """Rename the current flow run `<name><suffix>` and add `tag`, through the Prefect API. A courtesy of the run
    list: a failure is a warning, never the run's."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    fr = ctx.flow_run if ctx is not None else None
    if fr is None:
        return
    name = fr.name if fr.name.endswith(suffix) else fr.name + suffix
    tags = list(dict.fromkeys([*(fr.tags or []), tag]))
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(fr.id, name=name, tags=tags)
    except Exception as exc:  # noqa: BLE001 - a name is a courtesy: the run did what it says
        get_run_logger().warning(f"Could not rename the flow run {fr.name!r} to {name!r} ({one_line(exc)})")


def flow_settings(
    *,
    config_file: str | None = None,
    home: str | None = None,
    dataset: str | None = None,
    source: SourceConfig | dict | None = None,
    horizon: int | None = None,
    models: Sequence[str] | None = None,
    max_steps: int | None = None,
    overrides: Any = None,
) -> Settings:
    """defaults < the configuration file named by `config_file` or FLOWCAST_CONFIG (none is read
    otherwise) < FLOWCAST_* env < flow parameters (None means 'not given'). `overrides`: a
    `parameters.RunOverrides` (the flows' typed parameter) or the same as a nested dict."""
    from flowcast.flows.parameters import overrides_dict

    if isinstance(source, SourceConfig):
        source = source.model_dump()
    try:
        overrides = _with_secret_settings(config_file, overrides_dict(overrides))
        model: dict[str, Any] = dict((overrides or {}).get("model") or {})
        if models is not None:
            model["cells"] = list(models)
        if max_steps is not None:
            model["max_steps"] = max_steps
        extra = {k: v for k, v in (overrides or {}).items() if k != "model"}
        settings = load_settings(
            config_file, home=home, dataset=dataset, source=source, horizon=horizon, model=model or None, **extra
        )
        return with_frequency_defaults(_with_secrets(settings))
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    except FlowcastError:
        raise
    except Exception as exc:  # pydantic ValidationError: one sentence naming the values
        raise ConfigError(f"invalid configuration: {one_line(exc)}") from exc


def _with_secrets(settings: Settings) -> Settings:
    """`settings` whose source URL, as a flow run's stored parameters hold it (its password and tokens `***`: a run
    created through the API, a deployment's), is the URL itself again: the one this process's configuration declares
    (`source_secrets.secret_path`)."""
    from flowcast.source_secrets import secret_path

    src = settings.source
    if src is None or (path := secret_path(src.path, (s.path for s in settings.sources.values()))) == src.path:
        return settings
    return settings.model_copy(update={"source": src.model_copy(update={"path": path})})


def _with_secret_settings(config_file: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` whose URLs, as a flow run's stored parameters hold them (a password and tokens `***`: `store.url`,
    `shared` of a backfill's date sent to a deployment, `source_secrets.stored_parameters`), are the URLs this process's
    configuration gives those settings (`source_secrets.secret_settings`), read only where one may hide a secret."""
    import json

    from flowcast.redaction import HIDDEN
    from flowcast.source_secrets import secret_settings

    if HIDDEN not in json.dumps(overrides, default=str):
        return overrides
    restored: dict[str, Any] = secret_settings(overrides, load_settings(config_file).model_dump(mode="json"))
    return restored


def with_frequency_defaults(settings: Settings) -> Settings:
    """The per-frequency recipe (config.FREQUENCY_DEFAULTS) of the source's frequency for every
    setting not given explicitly."""
    from flowcast.config import for_frequency
    from flowcast.data.datasets import resolve_source

    try:
        freq = resolve_source(settings).freq
    except FlowcastError:  # an unknown dataset: load_data says so, naming it
        return settings
    return for_frequency(settings, freq)


# ------------------------------------------------------------------------------- run identity
def naive_utc(ts: datetime) -> datetime:
    """Aware -> naive UTC; naive stays as it is (taken as UTC): `timekeys.storage_naive`."""
    return storage_naive(ts)


def resolve_as_of(as_of: datetime | date | str | None, tz: str | None = None) -> datetime:
    """The run key, ONE instant as an aware UTC datetime truncated to the second: the given as_of
    (a timestamp without an offset means UTC; a date alone is the midnight that day starts at in
    `tz`, the source's zone: `timekeys.as_instant`), else the flow run's scheduled start time (an
    aware instant; for a manual run: when it was created). Carried as is down to ingestion."""
    if as_of is None:
        from prefect.runtime import flow_run

        as_of = flow_run.scheduled_start_time
    return as_instant(as_of, tz).replace(microsecond=0)




def _preprocess(settings: Settings, valid: Any, source: SourceConfig, as_of: datetime | None,
                fingerprint: str) -> tuple[Any, Any]:
    """The cached preprocess task; a cache entry that cannot be read back (cut short, damaged)
    failed every run of that data and as_of until it expired (7 days): it is removed with a
    warning and the data preprocessed again, as is one whose value no longer matches the digest recorded with it
    (`tasks.check_cache_digest`: a byte flipped on disk) or whose value is gone (its record left: removed before the
    task, which then runs once, Completed). An entry that could not be written is a warning naming it. An entry that
    cannot be read to tell whether it is damaged after the task failed (`tasks.drop_damaged_cache`'s StorageError) is an
    error that says both, the task's error first, of the task's error's class and exit code (`_failed_unchecked`: the
    storage fault alone replaced it)."""
    if (damaged := tasks.check_cache_digest(settings, source, as_of, fingerprint, record=False)) is not None:
        get_run_logger().warning(f"The {damaged}: removed, preprocessing again")
    try:
        out, computed = _preprocess_once(settings, valid, source, as_of, fingerprint)
    except Exception as exc:
        try:
            why = tasks.drop_damaged_cache(settings, source, as_of, fingerprint)
        except StorageError as unread:
            raise _failed_unchecked(exc, unread) from exc
        if why is None:
            raise
        get_run_logger().warning(f"The {why}: removed, preprocessing again")
        out, computed = _preprocess_once(settings, valid, source, as_of, fingerprint)
    if (unwritten := tasks.cache_not_written(settings, source, as_of, fingerprint)) is not None:
        get_run_logger().warning(unwritten)  # a full disk: Prefect's one line named neither the file nor why
    if (unrecorded := tasks.check_cache_digest(settings, source, as_of, fingerprint, record=True,
                                               computed=computed)) is not None:
        get_run_logger().warning(f"The {unrecorded}")
    return out


def _failed_unchecked(exc: Exception, unread: StorageError) -> Exception:
    """The error of a preprocess task that failed with `exc` whose cache entry then could not be read to tell whether
    it is damaged (`unread`): both said, the task's first. Of the task's own class where it is a FlowcastError (a
    DataValidationError exits 2, with its report), so that the storage fault does not change the run's exit code (it
    was a StorageError, exit 1, whatever the task raised); else a StorageError. Its cause is `exc`, whole. It keeps
    nothing else of `exc`: its other attributes are its class's defaults (cache47: a copy of `exc` kept them all, an
    AlreadyPublished's `said`, the sentence a refused run says in place of its error's, a DamagedPublishError's
    `path`, a DataValidationError's `report`, the notes added to it, each then speaking for an error that says more;
    they are the cause's)."""
    message = (f"the preprocess task failed ({type(exc).__name__}: {one_line(exc)}), and its cache entry could not be "
               f"checked: {unread}")
    # of its class, built from the message alone as every FlowcastError is when it is unpickled (a Prefect state)
    said = type(exc)(message) if isinstance(exc, FlowcastError) else StorageError(message)
    said.__cause__ = exc
    return said


def _preprocess_once(settings: Settings, valid: Any, source: SourceConfig, as_of: datetime | None,
                     fingerprint: str) -> tuple[Any, bool]:
    """One call of the cached preprocess task: its (TrainingData, PreprocessSummary) and whether it computed them
    (False: its task run is Cached, the value read back from the cache); raises what the task raised, after removing
    the entry Prefect persisted for the failure (`tasks.drop_failed_attempt`)."""
    state = tasks.cached_preprocess(settings)(valid, source, settings, as_of, fingerprint, return_state=True)
    try:
        return state.result(), state.name != "Cached"
    finally:
        # its exception, persisted under cache/ as the task's results are: read by nothing; one that cannot be
        # removed is a warning, the task's own error raised
        if state.is_failed() and (left := tasks.drop_failed_attempt(settings, state)) is not None:
            get_run_logger().warning(left)


def later_published(settings: Settings, dataset: str, as_of: datetime | None) -> bool:
    """Whether `dataset` has a publish of an as_of after `as_of`: a run of this as_of recomputes a past date,
    as a backfill's does, and its events say so (`events.emit(past=...)`). A manual `flowcast forecast --as-of
    2018-01-01` re-armed the 'forecast not published' deadline as the scheduled forecast's publish does (a
    dead daily deployment was told a day late). False when it cannot be told (the store unreadable)."""
    if as_of is None:
        return False
    try:
        from flowcast.store import open_store

        at = storage_naive(as_of)
        return any(a > at for a in open_store(settings).as_ofs(dataset))
    except Exception as exc:  # noqa: BLE001 - a label of an event must not fail the run
        get_run_logger().debug(f"could not tell whether {dataset} published after {utc_text(as_of)}: {exc}")
        return False


def published_already(settings: Settings, as_of: datetime) -> tuple[str, str] | None:
    """For a run with overwrite off (a backfill's date run by a deployment's worker, `backfill --deployment`
    without --overwrite): (the run that published them, the sentence saying that the store holds forecasts of
    this as_of of the run's dataset and which run published them), None when it holds none. The backfill lists the dates to skip once, before it
    starts their runs; a run that waited in the work pool's queue starts after another run (an overlapping
    backfill, the scheduled forecast) may have published its date, which it would replace. A store that cannot
    say is a warning and the run goes on (as the in-process backfill's check of each date)."""
    dataset, at = _slot(settings, as_of)
    try:
        held = _held(settings, dataset, at)
    except (FlowcastError, OSError) as exc:
        get_run_logger().warning(f"Could not check whether {dataset} as of {utc_text(at)} is published already "
                                 f"({exc}); the run goes on")
        return None
    return None if held is None else (str(held.get("run_id") or "unknown"), held_sentence(dataset, at, held))


def _slot(settings: Settings, as_of: datetime) -> tuple[str, datetime]:
    """(the run's dataset, its as_of as stored): the key a run of this slot publishes under."""
    from flowcast.data.datasets import resolve_source

    return resolve_source(settings).name, storage_naive(as_of)


def _held(settings: Settings, dataset: str, at: datetime) -> dict[str, str] | None:
    """The receipt of what the store holds for (dataset, at), None when it holds nothing."""
    from flowcast.store import open_store

    store = open_store(settings)
    return store.receipt_of(dataset, at) if store.has(dataset, at) else None


def retrained_already(settings: Settings, as_of: datetime, *, late: str = "") -> tuple[str, str] | None:
    """For a scheduled retrain (no as_of given): (the run that completed a retrain of this slot, the sentence
    saying so) when the slot's as_of is done already, None otherwise. Done: the store holds forecasts of the run's
    dataset for this as_of, made by a version registered for that dataset and as_of (which only a retrain of this
    as_of registers and then publishes), or published by a retrain of this as_of that kept the production model (it
    registers nothing: the registry's `keep` event of that dataset, as_of and run, written in its publish,
    `registry.Kept`). A run killed between the two (registered or recorded, not published) did not complete its
    slot: its re-run retrains. Read from the store and the registry, not from Prefect's record of runs. A store or
    registry that cannot say is a warning and the run goes on. Checked again under the key's lock in the run's
    publish (`SlotRetrained`). `late`: how this run found it after it computed (`retrained_by`)."""
    from flowcast.shared import open_registry

    dataset, at = _slot(settings, as_of)
    try:
        held = _held(settings, dataset, at)
        if held is None:
            return None
        return retrained_by(open_registry(settings), dataset, at, held, late=late)
    except (FlowcastError, OSError) as exc:
        get_run_logger().warning(f"Could not check whether {dataset} as of {utc_text(at)} was retrained "
                                 f"already ({exc}); the run goes on")
        return None


def retrained_by(registry: Any, dataset: str, at: datetime, held: dict[str, str], *,
                 late: str = "") -> tuple[str, str] | None:
    """(the run that retrained slot (`dataset`, `at`), the sentence saying so) when `held`, the receipt of what the
    store holds for that key, is a retrain of it (`retrained_already`), None when it is not (a forecast run's
    publish, a baseline of an older flowcast, a damaged partition: {}). Reads the registry without its lock (the
    caller may hold it: `SlotRetrained`). `late`: how this run found it after it computed ('found under the key's
    lock' in its publish), when the slot was not done as the run started."""
    if not held.get("model_version"):  # nothing, or a baseline of an older flowcast
        return None
    version = held["model_version"]
    try:
        mv = registry.get(version, fetch=False)
    except FlowcastError:  # removed since (gc): the slot's retrain cannot be told from it
        mv = None
    kept = None if mv is not None and _trained_for(mv, dataset, at) else _kept(registry, dataset, at, held)
    once = ("A scheduled retrain runs once per slot: " + (
        f"another run retrained it while this one computed ({late}), so this run publishes nothing (a run given its "
        "as_of retrains it again)"
        if late else "this run trains, registers and publishes nothing (a run given its as_of retrains it again)"))
    if kept is not None:
        run = str(kept["run"])
        return run, (f"{dataset} as of {utc_text(at)} was retrained already: run {run} kept the production "
                     f"model {version} (no candidate beat it) and published its {reporting.rows_text(held.get('rows'))} "
                     "forecast rows. " + once)
    if mv is None or not _trained_for(mv, dataset, at):
        return None  # published by a model of another as_of: a forecast run, a retrain killed before it recorded
    run = str((mv.fingerprint or {}).get("run_id") or held.get("run_id") or "unknown")
    # the run that published named only where it is another (ui20: the same 36-character id twice in one sentence)
    by = f" by run {held['run_id']}" if held.get("run_id") and str(held["run_id"]) != run else ""
    return run, (f"{dataset} as of {utc_text(at)} was retrained already: run {run} registered {version} and its "
                 f"{reporting.rows_text(held.get('rows'))} forecast rows are published{by}. " + once)


class SlotRetrained:
    """A scheduled retrain's publish (overwrite on: it replaces the forecast flow's publish of its as_of) asks the
    store to refuse its key when another run of the slot retrained it meanwhile: called under the key's lock with
    what the key holds (`refuse_if`), True when that is a retrain of the slot (`retrained_by`, late); `found` keeps
    (that run, the sentence). The registry is read without its lock, which the run's publish guard holds. (A plain
    class: Prefect rebuilds a dataclass task argument it visits, and `found` would be set on its copy.)"""

    def __init__(self, registry: Any, dataset: str, at: datetime) -> None:
        self.registry, self.dataset, self.at = registry, dataset, at
        self.found: tuple[str, str] | None = None

    def __call__(self, held: dict[str, str]) -> bool:
        self.found = retrained_by(self.registry, self.dataset, self.at, held, late="found under the key's lock")
        return self.found is not None


def withdraw_unpublished_winner(settings: Settings, as_of: datetime, at: datetime, *,
                                alive: Callable[[str], bool | None], run: str | None = None,
                                ) -> tuple[str, Any] | None:
    """A retrain of this slot or date that skips it (another run published it): (the sentence saying so, the
    version) when the production model it found, or the dataset's recorded champion, is a winner another retrain of
    the same dataset and as_of promoted (or recorded, `promote=False`) and that never published, and no live run
    pins it; None otherwise. Such a winner is what a run with overwrite off leaves when it is killed between its
    promotion (or record) and the refusal of its publish (the key was published by another run first), or when a full
    disk stopped that withdrawal: it was never undone (`PublishGuard.refuse`, `withdraw_champion`), and no run of that
    as_of could publish its forecasts any more, so production (or the champion a forecast run takes while none is in
    production) stayed a model whose forecasts were never published. Withdrawn when it is a version registered for
    this (dataset, as_of) whose forecasts the key does not hold and no publish of this as_of or later names, and the
    latest change of the pointer (of the champion; events that move no pointer, `NO_POINTER_MOVE`, read past) is its
    promotion (record) by the run that registered it (at its registration's time: a rollback or a promotion by hand
    since is a person's choice, left alone).
    A run that still runs is not such a run: a retrain of the same as_of with overwrite on (`flowcast run --as-of`)
    promotes, then publishes, and a scheduled run of the slot in between withdrew its winner, failing it
    (ProductionMovedError). A winner pinned (`ModelRegistry.pinned_by`: the run that registered it pins it until its
    publish ends, a run forecasting with it too) by a run `alive` says runs (True), or cannot tell (None), is left
    alone, with a line in the log; a killed run's pin, which lasts PIN_TTL_HOURS, does not keep it (`alive`: False;
    `ops.reaper.run_alive` in the flows). The conditions are read again, and the winner withdrawn, in one hold of the
    registry's lock (`withdraw(check=...)`), where a promoting run's publish lands (`publishing`): a run that published
    it meanwhile keeps it. A store or registry that cannot say is a warning. `run`: this run, named in the withdrawal's
    event with the run that registered the winner (`for_run`): killed before its follow-up decision artifact, this
    run leaves the killed run's decision the key's newest, and a later run writes the follow-up (`withdrawn_unsaid`)."""
    from flowcast.errors import ProductionMovedError
    from flowcast.shared import open_registry
    from flowcast.store import open_store

    dataset, key = _slot(settings, as_of)
    log = get_run_logger()
    try:
        store = open_store(settings)
        registry = open_registry(settings)
        # a removal a killed run recorded and did not finish (the winner it withdrew: its files): finished here, where
        # this run writes nothing else to the registry (a skipping run registers and pins nothing); it stayed
        registry.finish_removal()
        found = _unpublished_winner(registry, store, dataset, key)
        if found is None:
            return None
        what, mv, held = found
        live, dead = _pinned_by_a_live_run(registry, dataset, what, mv, at, alive)
        if live is not None:
            log.info(live)
            return None

        def check() -> None:  # under the registry's lock: still that winner, unpublished, pinned by no other run
            again = _unpublished_winner(registry, store, dataset, key)
            if again is None or (again[0], again[1].version) != (what, mv.version):
                raise ProductionMovedError(f"the {what} of {dataset} changed, or {mv.version} was published, since "
                                           "this run looked: not withdrawn")
            if since := sorted(set(registry.pinned_by(mv.version, at)) - set(dead)):
                raise ProductionMovedError(f"flow run {', '.join(since)} began to use {mv.version} since this run "
                                           "looked: not withdrawn")

        reason = (f"{'promoted' if what == 'production' else 'recorded as the champion'} by a retrain of {dataset} as of "
                  f"{utc_text(key)} that stopped (killed, or out of disk) before its publish was refused and its "
                  f"{'promotion' if what == 'production' else 'record'} undone: the as_of holds forecasts of "
                  f"{held.get('model_version')} (run {held.get('run_id')}), and no publish names {mv.version}")
        owner = str((mv.fingerprint or {}).get("run_id") or "") or None  # the killed run whose winner it is
        if what == "production":
            now = registry.withdraw(mv.version, dataset=dataset, at=at, reason=reason, check=check, run=run,
                                    for_run=owner, released=dead)  # a dead run's pin kept it registered
            return (f"Production of {dataset} was {mv.version}, {reason}: it was withdrawn, production is "
                    f"{now or 'empty'} again."), mv
        now = registry.withdraw_champion(mv.version, dataset=dataset, at=at, reason=reason, check=check, run=run,
                                         for_run=owner, released=dead)
        return (f"The recorded champion of {dataset} was {mv.version}, {reason}: it was withdrawn, the champion is "
                f"{now or 'none'} again."), mv
    except ProductionMovedError:
        return None
    except (FlowcastError, OSError) as exc:
        log.warning(f"Could not check whether production or the champion of {dataset} is a winner of this as_of whose "
                    f"forecasts were never published ({exc}); `flowcast models list` shows them")
    return None


def left_by_killed_runs(registry: Any, store: Any, dataset: str, key: datetime, *, run: str,
                        alive: Callable[[str], bool | None]) -> tuple[list[tuple[Any, list[str]]], dict[str, str]]:
    """For a retrain of (`dataset`, `key`) about to register its winner: ([(version, the dead runs that pin it)],
    {version left alone: the sentence saying so}). Each version listed was registered for that dataset and as_of by another
    run that was killed before its publish ended: that run's pin of it is left, or that of a re-run that took it over
    (`reuse`) and was killed in turn (a run that ended removes its own, `pipeline.retrain_flow`'s `finally`), every run that pins it is dead (`alive` False: `ops.reaper.run_alive`), no
    publish of the dataset names it and it is no dataset's production model (a re-run compares against that one and
    keeps it). Its re-run takes it over (`ModelRegistry.reuse`) or takes it back (`ModelRegistry.delete`) before it
    registers its own: a re-run registered a second version of the same model for the same date, which stayed until
    `flowcast gc` a day later. A version pinned by a run that runs, or cannot be told dead, is left alone and said.
    The publishes read (each a receipt, one file of the store): the key's, where its own run or a re-run of it
    publishes a version registered for it; every other as_of's only for a version that was ever production or the
    champion (`chosen_ever`), which a forecast of any as_of publishes. Every receipt of the dataset was read,
    thousands on a home with years of daily as_ofs."""
    left: list[tuple[Any, list[str]]] = []
    said: dict[str, str] = {}
    here: set[str] | None = None  # what the key's publish names
    chosen: set[str] | None = None
    published: set[str] | None = None  # what any publish of the dataset names
    takers: dict[str, set[str]] | None = None  # version -> the re-runs that took it over (`reuse` events)
    tops = {mv.version for mv in registry.productions().values()}
    for mv in registry.list(dataset=dataset):
        owner = str((mv.fingerprint or {}).get("run_id") or "")
        if not owner or owner == run or not _trained_for(mv, dataset, key) or mv.version in tops:
            continue
        pins = registry.pin_runs(mv.version)
        if run in pins:  # taken over by this very run (`reuse`: its winner, an earlier refit cell): its own, and it
            continue  # was said 'left alone: flow run <this run>, which uses it, still runs'
        if owner not in pins:  # a re-run that took it over pins it in its place (killed too, its pin is left: the
            if takers is None:  # version is a killed run's still; its next re-run registered a second one)
                takers = {}
                for e in registry.history(dataset):
                    if isinstance(e, dict) and e.get("action") == "reuse" and e.get("run"):
                        takers.setdefault(str(e.get("version")), set()).add(str(e["run"]))
            if not takers.get(mv.version, set()) & set(pins):  # its run ended (or a gc-era pin is gone): not a
                continue  # killed run's registration
        if here is None:
            here = _models_published(store, dataset, [key] if store.has(dataset, key) else [])
        if mv.version in here:
            continue
        if chosen is None:
            chosen = chosen_ever(registry, dataset)
        if mv.version in chosen:  # a forecast of another as_of may have published it
            if published is None:
                published = _models_published(store, dataset, store.as_ofs(dataset))
            if mv.version in published:
                continue
        states = {r: alive(r) for r in pins}
        if not all(state is False for state in states.values()):
            busy = next(r for r, state in states.items() if state is not False)
            said[mv.version] = (f"{mv.version}, registered for this as_of by run {owner} and not published, is left "
                                f"alone: flow run {busy}, which uses it, " + ("still runs" if states[busy] else
                                                                             "may still run (that cannot be told from "
                                                                             "here)"))
            continue
        left.append((mv, pins))
    return left, said


def _models_published(store: Any, dataset: str, as_ofs: list[datetime]) -> set[str]:
    """The model versions the publishes of `dataset` at `as_ofs` name (their receipts)."""
    return {str((store.receipt_of(dataset, a) or {}).get("model_version")) for a in as_ofs}


def chosen_ever(registry: Any, dataset: str) -> set[str]:
    """The versions of `dataset` its history ever put in production or recorded as its champion (a promotion, a
    rollback to it, a repair or migration of the pointer, a champion record; a `reuse` that promoted records a
    promotion too): the only ones a run may publish at an as_of other than their own (a forecast, a retrain that
    keeps production, publishes the production model, or the champion while none is promoted). Nothing else
    publishes a version but the retrain that registered it and a re-run of that as_of (`ModelRegistry.reuse`). A
    history.jsonl that cannot be read is a warning and production.json's events are read: only `keep` events are
    moved out of it."""
    return {str(e.get("version")) for e in registry.history(dataset, recent_only_if_unreadable=True)
            if e.get("action") in ("promote", "champion", "rollback", "repair", "migrate")}


def withdrawn_unsaid(settings: Settings, scope: reporting.Scope) -> tuple[str, str] | None:
    """(the sentence saying so, the version) when the newest decision artifact of `scope`'s key is the decision of a
    run whose promotion of its winner was withdrawn (a `withdraw` event naming that run and that version: its publish
    refused, or failed), or whose record of it as the champion was (`promote=False`, a backfill's date: a
    `withdraw_champion` event naming them), or whose registration of it was taken back (a publish without promotion,
    refused: a `take_back` event naming them), or a run that skipped the slot or date withdrew it on its behalf (the
    event's `for_run`), and no follow-up says so: the run was killed right after the withdrawal
    (`registry:refused_withdrawn`, `registry:champion_withdrawn`, `registry:taken_back`,
    `registry:winner_withdrawn`), before its follow-up decision artifact, and its
    decision, which named the winner to publish, stayed the newest one shown. A retrain that skips the slot or date
    (a retrain backfill that skips the date, under its `backfill-` keys) writes that follow-up. None otherwise
    (a follow-up is the newest, the newest is of another as_of, no API answers, a registry that cannot say: a
    warning)."""
    from flowcast.registry import late_kind, stated_reason
    from flowcast.shared import open_registry

    newest = reporting.newest_artifact(scope.key("decision"))
    if (newest is None or not newest.data or str(newest.data).startswith(reporting.FOLLOW_UP_HEADS)
            or not str(newest.description or "").startswith(scope.describe(""))):  # a decision of another as_of
        return None
    run, data = str(newest.flow_run_id or ""), str(newest.data)
    try:
        history = open_registry(settings).history(scope.dataset)
    except (FlowcastError, OSError) as exc:
        get_run_logger().warning(f"Could not read the registry's history of {scope.dataset} ({exc})")
        return None
    for e in reversed(history):
        if e.get("action") not in ("withdraw", "withdraw_champion", "take_back") or not run \
                or run not in (e.get("run"), e.get("for_run")) or not _names_version(data, str(e.get("version"))):
            continue
        # recorded by the next writer of the registry (`registry._recover_one`): the run making it was killed before
        # its record, and the follow-up says so in words of its own (it said the run 'withdrew (...; recorded by the
        # next writer ...) and then stopped', the late wording in brackets); told by the event's `late` field (by
        # its reason's wording alone, an older record's)
        late, why = late_kind(e) is not None, stated_reason(e)
        record = {"take_back": "the take-back", "withdraw": "the withdrawal",
                  "withdraw_champion": "the withdrawal of the champion record"}[str(e["action"])]
        stopped = functools.partial(_stopped, late, why, record)
        if e["action"] == "take_back" and e.get("for_run") == run and e.get("run") and e.get("run") != run:
            # a killed run's version, taken back by a re-run of its as_of (`pipeline._resume_killed`) that did not
            # write its own decision: it read as a champion record withdrawn by a run killed after, the champion
            # 'none since' (a take-back's `previous`), where `delete` had put the older champion back
            put_back = next((x for x in reversed(history[:next(k for k, x in enumerate(history) if x is e)])
                             if x.get("action") == "withdraw_champion" and x.get("version") == e["version"]), None)
            now = (f"the recorded champion of {scope.dataset} is {put_back.get('previous') or 'none'} since"
                   if put_back is not None else f"production of {scope.dataset} as it was")
            return (f"The newest decision of {scope.dataset} (run {run}) chose {e['version']} and stopped (killed) "
                    f"before it published it; run {e['run']}, a re-run of that as_of, "
                    f"{stopped('taking it back', 'took it back on its behalf', 'took it back', '')}: "
                    f"{e['version']} is removed, {now}"), str(e["version"])
        if e.get("for_run") == run and (by := e.get("run")) and by != run:  # withdrawn by a run that skipped
            what = ("promotion" if e["action"] == "withdraw" else f"record as the champion of {scope.dataset}")
            now = (f"production of {scope.dataset} is {e.get('previous') or 'empty'}" if e["action"] == "withdraw"
                   else f"the recorded champion of {scope.dataset} is {e.get('previous') or 'none'}")
            did = stopped("withdrawing on its behalf", f"withdrew it for run {by}", "withdrew on its behalf")
            return (f"The newest decision of {scope.dataset} (run {run}) chose {e['version']}, whose {what} run "
                    f"{by} {did}: {now} since"), str(e["version"])
        if e["action"] == "take_back":  # published without promoting it: its registration, taken back
            return (f"The newest decision of {scope.dataset} (run {run}) chose {e['version']} to publish without "
                    f"promoting it; that run {stopped('taking it back', 'took it back on its behalf', 'took it back')}: "
                    f"{e['version']} is removed, production of {scope.dataset} as it was"), str(e["version"])
        if e["action"] == "withdraw":
            return (f"The newest decision of {scope.dataset} (run {run}) chose {e['version']}, whose promotion that run "
                    f"{stopped('withdrawing', 'withdrew it on its behalf', 'withdrew')}: production of "
                    f"{scope.dataset} is {e.get('previous') or 'empty'} since"), str(e["version"])
        # a run that does not promote (a backfill's date): its winner was recorded as the champion, then withdrawn
        return (f"The newest decision of {scope.dataset} (run {run}) chose {e['version']}, whose record as the "
                f"champion of {scope.dataset} that run {stopped('withdrawing', 'withdrew it on its behalf', 'withdrew')}"
                f": the recorded champion of {scope.dataset} is {e.get('previous') or 'none'} since"), str(e["version"])
    return None


def _stopped(late: bool, why: str, record: str, doing: str, done: str, did: str,
             then: str = " and then stopped (killed) before it could say so") -> str:
    """`withdrawn_unsaid`'s words for what a run did to its decision's version: it `did` it (`why`), then `then`; or,
    `late` (its event recorded by the next writer of the registry), it was `doing` it when it was killed, before it
    recorded it (`record`), and the next writer of the registry `done` it."""
    said = f" ({why})" if why else ""
    if late:
        return (f"was {doing}{said} when it stopped (killed), before it recorded {record}; the next writer of the "
                f"registry {done}")
    return f"{did}{said}{then}"


def _names_version(text: str, version: str) -> bool:
    """Whether `text` names `version` whole: 'theta-v1' is not named by 'theta-v12' (nor by 'auto-theta-v1')."""
    return re.search(rf"(?<![\w-]){re.escape(version)}(?!\w)", text) is not None


def _unpublished_winner(registry: Any, store: Any, dataset: str, key: datetime,
                        ) -> tuple[str, Any, dict[str, str]] | None:
    """('production' or 'champion', the version, the key's receipt) when the production model of `dataset`, else its
    recorded champion, is a winner of a retrain of (`dataset`, `key`) that never published
    (`withdraw_unpublished_winner`'s conditions, liveness aside); None otherwise (nothing published at the key)."""
    from flowcast.registry import NO_POINTER_MOVE

    held = store.receipt_of(dataset, key) if store.has(dataset, key) else None
    if held is None:
        return None
    history = registry.history(dataset)

    def unpublished(mv: Any, changes: list[dict[str, Any]], action: str) -> bool:
        last = changes[-1] if changes else {}
        return (mv.version != held.get("model_version") and _trained_for(mv, dataset, key)
                and (last.get("action"), last.get("version"), last.get("at")) == (action, mv.version, mv.created_at)
                and not any(store.receipt_of(dataset, a).get("model_version") == mv.version
                            for a in store.as_ofs(dataset) if a >= key))  # published since: it stands

    prod = registry.production(dataset)
    if prod is not None and unpublished(prod, [e for e in history if e.get("action") not in NO_POINTER_MOVE],
                                        "promote"):
        return "production", prod, held
    champion = registry.champion(dataset)
    if champion is not None and unpublished(champion, [e for e in history if e.get("action") == "champion"],
                                            "champion"):
        return "champion", champion, held
    return None


def _pinned_by_a_live_run(registry: Any, dataset: str, what: str, mv: Any, at: datetime,
                          alive: Callable[[str], bool | None]) -> tuple[str | None, list[str]]:
    """(the sentence saying why winner `mv` is left alone when a run whose pin of it has not lapsed at `at` runs
    (`alive`: True) or cannot be told dead (None), else None; the runs pinning it found dead)."""
    from flowcast.registry import PIN_TTL_HOURS

    dead: list[str] = []
    for run in registry.pinned_by(mv.version, at):
        state = alive(run)
        if state is False:
            dead.append(run)
            continue
        how = ("still runs" if state else
               f"may still run (that cannot be told from here; its pin lapses {PIN_TTL_HOURS} hours after it started, "
               "and a run of this slot or date withdraws it then)")
        return (f"The {what} of {dataset} is {mv.version}, registered for this as_of and not published, but flow run "
                f"{run}, which uses it, {how}: left alone while it runs (the run that registered it publishes it, or "
                "withdraws it itself when its publish is refused)"), dead
    return None, dead


def _trained_for(mv: Any, dataset: str, at: datetime) -> bool:
    """Whether version `mv` was registered by a retrain of `dataset` at run key `at` (stored)."""
    return bool(mv.dataset == dataset and mv.as_of and storage_naive(mv.as_of) == at)


def _kept(registry: Any, dataset: str, at: datetime, held: dict[str, str]) -> dict[str, Any] | None:
    """The registry's `keep` event of a retrain of (`dataset`, `at`) whose publish is what the store holds
    (`held`: the same run and version), None when there is none. A history.jsonl that cannot be read is a warning
    naming it and the newest `keep` events (production.json) are read: the keep event of a slot retrained now is
    among them, so a slot is not published twice, nor is every scheduled retrain's publish refused until the file
    is mended (the check under the key's lock failed the publish, the check as the run started went on)."""
    for e in reversed(registry.history(dataset, recent_only_if_unreadable=True)):
        if (e.get("action") == "keep" and e.get("run") and e.get("run") == held.get("run_id")
                and e.get("version") == held.get("model_version") and e.get("as_of")
                and storage_naive(datetime.fromisoformat(str(e["as_of"]))) == at):
            return dict(e)
    return None


def held_sentence(dataset: str, at: datetime, held: dict[str, str], *, late: bool = False) -> str:
    """`us_employment as of 2019-06-01 00:00 is published already (1,776 rows of theta-v3, run ...) and overwrite
    is off: ...`: what a run with overwrite off says of a key another run published (`late`: found under the key's
    lock as it was about to publish, when it found the key empty as it started)."""
    return (f"{dataset} as of {utc_text(at)} is published already ({reporting.rows_text(held.get('rows'))} rows of "
            f"{held.get('model_version') or held.get('model')}, run {held.get('run_id')}) and overwrite is off: "
            + ("another run published it while this one computed (found under the key's lock), so this run publishes "
               "nothing" if late else "this run computes and publishes nothing"))


def same_sentence(dataset: str, at: datetime, held: dict[str, str]) -> str:
    """`tiny as of 2019-06-01 00:00 was already published by run 5c1e... (same version, same rows: 24 rows of
    damped-v1), so this run publishes nothing again`: what a run says whose publish found its key holding the very
    forecasts it made (`SamePublished`: a second run of the as_of at once, or a re-run with nothing changed)."""
    return (f"{dataset} as of {utc_text(at)} was already published by run {held.get('run_id') or 'unknown'} "
            f"(same version, same rows: {reporting.rows_text(held.get('rows'))} rows of {held.get('model_version') or held.get('model')}), "
            "so this run publishes nothing again")


def run_identity(home: str | Path | None = None, as_of: datetime | None = None) -> tuple[str, datetime]:
    """(flow run id, the run's start time as naive UTC) from the Prefect run context. With `home`,
    the run is claimed there (which process runs it, and `as_of`, the run's resolved as_of, which a schedule
    slot's parameters do not hold: given by a run without an as_of parameter only, as adding it rewrites the
    claim), and the runs of this home that a killed process left Running are marked
    Crashed (`ops.reaper.claim_flow_run`)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        raise RuntimeError("run_identity() must be called inside a flow run")
    fr = ctx.flow_run
    started = fr.start_time or fr.expected_start_time or fr.created
    if started is None:
        raise RuntimeError(f"flow run {fr.id} has no start, expected start or creation time")
    if home is not None:
        from flowcast.ops.reaper import claim_flow_run

        claim_flow_run(home, as_of=as_of)
    return str(fr.id), naive_utc(started)


def flow_fault(point: str) -> None:
    """Test-only fault injection: FLOWCAST_FAULT=flow:<point> SIGKILLs this process there
    (`flow:started`: a retrain or forecast run is Running, its body has not begun; `flow:before_publish`: the winner is
    registered and promoted, its forecasts not yet published; `flow:before_realized`: a run's forecasts are
    published (or found published), its realized accuracy not yet scored)."""
    from flowcast.interrupts import fault_point

    fault_point(point)


def expire_aged(settings: Settings, now: datetime) -> None:
    """The retention policy's ages, applied as a run starts (`retention.in_runs`; `now`: the run's
    start): run folders, cache entries, quarantine files and report images older than their days go,
    one line says what. A home left running on a schedule grew by every run's cache entry (1.1 MB a
    run on us_employment), plot and training folder until someone ran `flowcast gc --yes`. A failure
    here is a warning: the run goes on."""
    if not settings.retention.in_runs:
        return
    from flowcast.ops.retention import expire, human, total_bytes

    log = get_run_logger()
    try:
        removed = expire(settings, now)
    except OSError as exc:
        log.warning(f"Retention: could not remove what [retention] lets go under {settings.home} "
                    f"({getattr(exc, 'strerror', None) or exc}); `flowcast gc` lists it")
        return
    if removed:
        kinds: dict[str, int] = {}
        for item in removed:
            kinds[item.kind] = kinds.get(item.kind, 0) + 1
        log.info(f"Retention: removed {human(total_bytes(removed))} older than [retention] allows ("
                 + ", ".join(f"{n} {k}{' file' if k == 'superseded' else ''}{'s' if n > 1 else ''}"
                             for k, n in sorted(kinds.items())) + ")")


def artifact_scope(dataset: str, as_of: datetime) -> reporting.Scope:
    """Whose artifacts this run writes: its dataset and as_of, under the `backfill-` keys when the
    run recomputes a past date for a backfill (`naming.in_backfill`)."""
    from flowcast.flows.naming import in_backfill

    return reporting.Scope(dataset=dataset, as_of=as_of, backfill=in_backfill())


# ------------------------------------------------------------------------------- data
@dataclass
class LoadedData:
    source: SourceConfig
    fingerprint: str
    td: Any  # TrainingData
    summary: Any  # PreprocessSummary
    report: Any  # DataQualityReport
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    horizon: int
    settings: Settings | None = None  # the settings the data was prepared with (spans fitted to it)
    notes: tuple[str, ...] = ()
    ingested: Any = None  # the Ingested source (labels of the series, actuals after as_of for the plot)
    rows_null_y: int = 0  # valid rows without a target value
    # where daily times were written with an offset: each period's shift (`ValidationResult.shifts`), for realized
    # accuracy and the production model's training cut; None where none was
    shifts: pl.DataFrame | None = None


def _refuse_unwritten(settings: Settings, dataset: str, as_of: datetime, result: Any, exc: BaseException) -> None:
    """Where the quarantine file could not be written (`exc`: a full disk, which the task does not retry) and validation
    refuses the data (every row quarantined, or more than the threshold), raise the refusal with why there is no file
    (`validate.quarantine_unwritten`, as a command's check before Prefect says it), after its data-quality artifact
    and event: the run failed naming the disk alone, never the refusal. Returns where the run would go on."""
    from flowcast.data.validate import unwritten_refusal

    report, scope = result.report, artifact_scope(dataset, as_of)
    refused = unwritten_refusal(result, settings.validation, str(exc), artifact=scope.key("quality"))
    if refused is not None:
        error = str(refused)
        reporting.quality_artifact(report, scope, refused=error)
        events.emit(events.QUALITY_FAILED, dataset=dataset, as_of=as_of, message=error, rows_in=report.rows_in,
                    rows_valid=report.rows_valid, rows_quarantined=report.rows_quarantined,
                    threshold=settings.validation.quarantine_threshold, checks=dict(report.checks), quarantine=None)
        raise DataValidationError(error) from exc


def _read_source(source: SourceConfig, as_of: datetime, settings: Settings) -> tuple[Any, Any]:
    """Ingest and validate `source` as tasks, read again where one of its files changed while it was read
    (`source_files.read_steadily`, the rule `flowcast validate` and `train` read by too), each read again a warning."""
    from flowcast.data.source_files import read_steadily

    return read_steadily(source, lambda: tasks.ingest_task(source, as_of),
                         lambda ingested: tasks.validate_task(ingested, source, settings), get_run_logger().warning)


def load_data(settings: Settings, as_of: datetime, *, fit_spans: bool = False) -> LoadedData:
    """Ingest, validate (quarantine bad rows), preprocess (cached): TrainingData for as_of. With
    `fit_spans` (a retrain) the lookback and validation span not given are fitted to the series'
    lengths first (`fitted_spans`); the returned `settings` say what the data was prepared with."""
    from flowcast.data.datasets import resolve_source

    log = get_run_logger()
    source = resolve_source(settings)
    from flowcast.ops.quiet import check_time_label

    check_time_label(settings, source)  # before any work: not beside publishes of the other time label
    # the URL redacted whole here: the run loggers' filter (`logs.RedactFilter`), its backstop, reads URLs out of a
    # line and cannot tell where a password with a space ends (`https://u:12 ab@h/x.csv` was shown)
    log.info(f"Reading {source.name!r} from {redact(str(source.path))}, observations up to {utc_text(as_of)}")
    files = [str(source.path)]
    try:
        ingested, result = _read_source(source, as_of, settings)
        files = list(ingested.files)
    except DataValidationError as exc:  # refused on the source itself (a header alone, an unreadable file, every
        # row after as_of): the data quality artifact says so, where a run that read rows leaves its report
        reporting.refusal_artifact(source.name, str(exc), artifact_scope(source.name, as_of), files)
        raise
    report = result.report
    rows_in, rows_v, rows_q = report.rows_in, report.rows_valid, report.rows_quarantined
    from flowcast.data.validate import as_of_label, quarantine_folder

    # always called: a clean re-run of an as_of removes the quarantine file an earlier run left
    folder = quarantine_folder(settings.quarantine_dir, source.name, as_of_label(ingested.as_of))
    try:
        where = tasks.quarantine_task(result, folder)
    except (StorageError, OSError) as exc:  # a full disk (not retried), or an I/O error after the task's retries
        _refuse_unwritten(settings, source.name, as_of, result, exc)
        if not rows_q:  # a clean run that could not remove an earlier file: no row left out (its error names the file)
            raise
        # the run would go on with these rows left out: it needs its quarantine file
        from flowcast.data.validate import left_out_unwritten

        raise StorageError(left_out_unwritten(report, str(exc))) from exc
    if settings.shared:  # the quarantine any machine reads: shared/quarantine/<source>/<as_of>
        from flowcast.shared import share_file, unshare

        if where is None:
            unshare(settings, folder / "quarantine.parquet")
        else:
            report.quarantine_path = share_file(settings, where)
    if rows_q:
        from flowcast.data.validate import checks_counted, standard_time_line

        hint = standard_time_line(report.checks, source.tz)  # a file in standard time all year: the zone that reads it
        log.warning(f"{rows_q:,} of {rows_in:,} rows failed validation and were quarantined with their reasons "
                    f"to {report.quarantine_path or where}: " + checks_counted(report.checks, report.check_hints)
                    + (f"; {hint}" if hint else ""))
    log.info(validation_line(report))
    if report.time_label_note:  # said once: every ds of the run is one step before the file's label
        log.info(report.time_label_note[0].upper() + report.time_label_note[1:])
    if getattr(report, "totals_series", None):
        from flowcast.data.validate import totals_series_line

        log.warning(totals_series_line(report.totals_series))
    if getattr(report, "zero_padded_ids", None):
        from flowcast.data.validate import zero_padded_ids_line

        log.warning(zero_padded_ids_line(report.zero_padded_ids))
    if getattr(report, "case_ids", None):
        from flowcast.data.validate import case_ids_line

        log.warning(case_ids_line(report.case_ids))
    for note in getattr(report, "number_notes", None) or []:  # '1.234' alone: read one way, said per file (3 a column, then how many more)
        log.warning(f"Numbers: {note}")
    if getattr(report, "quarter_note", None):  # '2017-1' .. '2023-4' read as months (a cached older report: none)
        log.warning(f"Times: {report.quarter_note}")
    if getattr(report, "empty_covariates", None):
        from flowcast.data.validate import empty_covariates_line

        line = empty_covariates_line(report.empty_covariates)
        log.warning(line[0].upper() + line[1:])
    if getattr(report, "constant_covariates", None):  # (a cached report of an older version has none)
        from flowcast.data.validate import constant_covariates_line

        line = constant_covariates_line(report.constant_covariates)
        log.warning(line[0].upper() + line[1:])
    if report.undeclared_columns:
        from flowcast.data.validate import ignored_columns_line

        line = ignored_columns_line(report.undeclared_columns, getattr(report, "not_covariates", None))
        log.warning(line[0].upper() + line[1:])
    if getattr(report, "offsets_zone", None):  # (a cached report of an older version has none)
        log.warning(f"Time zone: {report.offsets_zone}")
    if getattr(report, "zone_columns", None):  # (a cached report of an older version has none)
        from flowcast.data.validate import zone_columns_line

        if line := zone_columns_line(report.zone_columns, report.tz):
            log.warning(line[0].upper() + line[1:])
    from flowcast.data.validate import enforce_thresholds, take_valid

    scope = artifact_scope(source.name, as_of)
    try:
        enforce_thresholds(result, settings.validation, artifact=scope.key("quality"))  # the key written below
    except Exception as exc:
        reporting.quality_artifact(report, scope, refused=str(exc))
        events.emit(events.QUALITY_FAILED, dataset=source.name, as_of=as_of, message=str(exc), rows_in=rows_in,
                    rows_valid=rows_v, rows_quarantined=rows_q, threshold=settings.validation.quarantine_threshold,
                    checks=dict(report.checks), quarantine=report.quarantine_path or (str(where) if where else None))
        raise
    # the same data fingerprint as flowcast.data.preprocess.prepare_data: source content, as_of, valid rows
    fingerprint = hashlib.sha256(f"{ingested.fingerprint}|{ingested.as_of}|{rows_v}".encode()).hexdigest()[:16]
    valid = take_valid(result)
    td, summary = _preprocess(settings, valid, source, ingested.as_of, fingerprint)
    notes: list[str] = []
    if fit_spans:
        fitted, notes = fitted_spans(settings, td)
        if notes:
            log.info("Spans fitted to the data: " + " ".join(notes))
        if fitted is not settings:  # (a note alone, the spans as given: the data stay as prepared)
            settings = fitted
            td, summary = _preprocess(settings, valid, source, ingested.as_of, fingerprint)
    del valid
    report.add_preprocess(summary)
    from flowcast.data.freshness import (
        check_series_lost,
        check_staleness,
        ended_set_aside,
        freshness,
        freshness_lines,
        instant_bounds,
    )

    lengths = td.lengths()  # daily times written with an offset: each series judged by the instant (result.shifts)
    bounds = instant_bounds(lengths, ingested.as_of, freq=td.meta.freq, tz=source.tz, aggregate=source.aggregate,
                      time_label=source.time_label, shifts=result.shifts)
    fresh = freshness(lengths, ingested.as_of_ds, td.meta.freq, int(td.meta.horizon), ended_set_aside(summary), bounds)
    report.freshness = fresh.to_dict()
    continuity = series_continuity(settings, source.name, as_of, td, report)
    if continuity is not None:
        report.freshness.update(series_lost=len(continuity.lost), lost=continuity.lost[:5])
    reporting.quality_artifact(report, scope)
    for line in [*freshness_lines(fresh, ingested.as_of, source.tz), *([continuity.line()] if continuity else [])]:
        if line:
            log.warning(line)
    if fresh.all_before_as_of:
        events.emit(events.STALE, dataset=source.name, as_of=as_of, message=freshness_lines(fresh, ingested.as_of, source.tz)[0],
                    past=later_published(settings, source.name, as_of), **fresh.to_dict())
    check_staleness(fresh, settings.validation.max_staleness)
    if continuity is not None:
        check_series_lost(continuity, settings.validation.max_series_lost)
    if td.excluded.height:
        ex = td.excluded
        log.warning(excluded_line(ex))
    log.info(prepared_line(td.n_series, td.n_obs, td.meta.freq, td.meta.horizon, summary.rows_imputed))
    if getattr(summary, "freq_hint", None):
        log.warning(f"Frequency: {summary.freq_hint}")
    if getattr(summary, "tz_hint", None):
        log.warning(f"Time zone: {summary.tz_hint}")
    if getattr(summary, "gap_cut", None):
        from flowcast.data.validate import gap_cut_line

        log.warning(gap_cut_line(summary.gap_cut, summary.rows_before_gap))
    if getattr(summary, "log1p_disabled", None):
        from flowcast.data.validate import log1p_off_line

        log.warning(log1p_off_line(summary.log1p_disabled, summary.n_series_out))
    from flowcast.data.validate import static_varying_lines

    for line in [*static_varying_lines(getattr(summary, "static_varying", None)), *future_notes(summary)]:
        log.warning(line[0].upper() + line[1:])
    # said only where a network is to train (ui25: `--models none` said it of a run that trains none)
    if summary.network_short and (settings.model.cells or settings.tuning.enabled):
        log.info(network_short_line(summary.network_short, td.n_series, td.meta.min_length,
                                    getattr(summary, "network_short_ids", None)))
    return LoadedData(
        source=source, fingerprint=fingerprint, td=td, summary=summary, report=report,
        rows_in=rows_in, rows_valid=rows_v, rows_quarantined=rows_q, horizon=int(td.meta.horizon),
        settings=settings, notes=tuple(notes),
        ingested=ingested, rows_null_y=int(getattr(report, "rows_null_y", 0) or 0), shifts=result.shifts,
    )


def series_continuity(settings: Settings, dataset: str, as_of: datetime, td: Any, report: Any) -> Any:
    """The series of `dataset`'s last publish before `as_of` that this run's data do not have at all
    (`flowcast.data.freshness.Continuity`); None when there is no earlier publish or it cannot be read
    (said in the log: the check must not stop a run that can publish)."""
    from flowcast.data.freshness import lost_series
    from flowcast.ops.quiet import previous_as_of
    from flowcast.store import open_store

    try:
        store = open_store(settings)
        prev = previous_as_of(store.as_ofs(dataset), storage_naive(as_of))
        if prev is None:
            return None
        ids = store.read(dataset=dataset, as_of=prev)["unique_id"].unique().to_list()
    except FlowcastError as exc:
        get_run_logger().warning(f"Not compared with the series of the last publish of {dataset}: {exc}")
        return None
    present = set(td.ids) | set(td.excluded["unique_id"].cast(pl.Utf8).to_list() if td.excluded.height else [])
    present |= {str(e["unique_id"]) for e in (getattr(report, "series_quarantined", None) or [])}
    return lost_series(ids, present, prev)


def prepared_line(n_series: int, n_obs: int, freq: str, horizon: int, imputed: int) -> str:
    """The run's log line for what preprocessing prepared, its counts grouped as the validation line's ('72339
    observations' beside '143,412 rows in', ui25). `n_obs` counts the grid's points, the imputed ones among them (it
    said '191 observations; 1 points imputed (not observations ...)', ui42)."""
    said = ("none imputed" if not imputed else "1 of them imputed (not an observation: never scored)" if imputed == 1
            else f"{imputed:,} of them imputed (not observations: never scored)")
    return f"Prepared {n_series:,} series ({n_obs:,} points, frequency {freq}, horizon {horizon}); {said}"


def published_line(receipt: Any, as_of: datetime, model: str, model_version: str | None) -> str:
    """The run's log line for its publish: counts grouped, the model named as the receipt names it ('hybrid
    (hybrid-v1)': it read 'from hybrid hybrid-v1', and '1776 forecast rows', ui25), the fallback where every row is
    its (`reporting.all_fallback_text`: it read 'from theta (theta-v1)', a model of none of them, where the receipt,
    the state message and the command's line name naive); where it replaced what its as_of had published, what, as
    the receipt says it (`reporting.receipt_parts`: a corrected file run again for the same as_of logged the line of a
    first publish, newuser50b)."""
    where = f"{receipt.location}" + (f" (DuckDB views in {receipt.duckdb_path})" if receipt.duckdb_path else "")
    _, _, replacing = reporting.receipt_parts(receipt)
    return (f"Published {receipt.rows:,} forecast rows ({receipt.n_series:,} series) of {receipt.dataset} for as_of "
            f"{utc_text(as_of)} from {_published_by(receipt, model, model_version)} to {where}"
            + (f", replacing {replacing}" if replacing else ""))


def _published_by(receipt: Any, model: str, model_version: str | None) -> str:
    """Who made a publish's rows, as the receipt names it: 'hybrid (hybrid-v1)', 'naive' without a version (the log
    line and the event said 'naive (baseline)', the event's old wording, where the receipt and the state message say
    'naive', wordsB46), the fallback where every row is its (`reporting.all_fallback_text`)."""
    return (reporting.all_fallback_text(model, model_version, receipt.models)
            or reporting.model_text(model, model_version))


def published_event_message(receipt: Any, model: str, model_version: str | None) -> str:
    """The `flowcast.forecast.published` event's message: 'published 1,776 forecast rows (148 series) from hybrid
    (hybrid-v1)', the model named as the receipt and the `Published ...` log line name it (it read 'from hybrid
    hybrid-v1', and named the production model where every row was its fallback's)."""
    return (f"published {receipt.rows:,} forecast rows ({receipt.n_series:,} series) from "
            f"{_published_by(receipt, model, model_version)}")


def network_short_line(short: int, n_series: int, min_length: int, ids: Sequence[str] | None = None) -> str:
    """The run's log line for the series too short for a network ('1 of 6 series has ...': it said 'have' and
    'them' of one series), naming them: `ids`, the first 5 (`PreprocessSummary.network_short_ids`), then 'and K
    more' (ui25: it named none)."""
    from flowcast.data.validate import some_named

    one = short == 1
    named = f" ({some_named(short, ids)})" if ids else ""
    return (f"{short} of {n_series} series {'has' if one else 'have'} fewer than the {min_length} periods a network "
            f"needs{named}: the statistical models that can run on {'it forecast it' if one else 'them forecast them'}")


def future_notes(summary: Any) -> list[str]:
    """A sentence when the source's rows lack covariate values, and one when the horizon lacks planned
    values of declared future covariates (the fill applied is named: the run never fills them silently)."""
    from flowcast.data.validate import FUTURE_ADVICE, covariates_filled_line, future_examples, never_planned

    filled = getattr(summary, "covariates_filled", None) or {}
    line = covariates_filled_line(filled, summary.future_fill)
    said = [line[0].upper() + line[1:]] if filled else []
    missing = {k: int(v) for k, v in (getattr(summary, "future_missing", None) or {}).items() if v}
    if not missing:
        return said
    # each column's count of its own expected values (two columns said '28 of 14 values ... per column')
    per_column = ", ".join(f"{k}: {v} of {summary.future_expected}" for k, v in missing.items())
    return [*said, (f"Future-known covariates without a planned value on the horizon: {per_column} values "
             f"(series x steps; {summary.future_missing_series} series"
             f"{future_examples(getattr(summary, 'future_missing_examples', None))}), filled by preprocess.future_fill = "
             f"{summary.future_fill!r}{FUTURE_ADVICE}{never_planned(missing, int(summary.future_expected))}")]


# the keys of `run_counts`, every one of them on every path of a run's JSON (null where the run read no data)
RUN_COUNT_KEYS = ("rows_imputed", "rows_planned", "future_missing", "future_fill", "latest_ds", "latest_ds_end",
                  "periods_behind", "freq", "stale", "series_ended", "series_ended_excluded", "series_lost",
                  "columns_ignored", "columns_not_covariates", "wide_columns", "rows_before_gap", "gap_cut", "gap_cut_count",
                  "log1p_disabled", "log1p_disabled_count", "quarantine_checks", "quarantine_hints", "quarantine_path", "rows_duplicate",
                  "rows_null_y", "rows_unseen", "rows_partial_period")


def run_counts(data: LoadedData) -> dict[str, Any]:
    """What a run's JSON summary says about its data: imputed points and unplanned future values (the keys
    `RUN_COUNT_KEYS`)."""
    from flowcast.data.freshness import latest_end

    s = data.summary
    fresh = getattr(data.report, "freshness", None) or {}
    freq = data.td.meta.freq
    # the keys of freshness.RUN_KEYS, each run's JSON (`flowcast run --json` picks them from this)
    return {"rows_imputed": int(s.rows_imputed), "rows_planned": int(getattr(data.report, "rows_planned", 0)),
            "future_missing": dict(s.future_missing), "future_fill": s.future_fill,
            "latest_ds": fresh.get("latest_ds"),
            "latest_ds_end": latest_end(fresh.get("latest_ds"), freq, data.source.time_label),
            "periods_behind": fresh.get("periods_behind"), "freq": freq, "stale": bool(fresh.get("stale")),
            "series_ended": fresh.get("series_ended", 0), "series_ended_excluded": fresh.get("series_ended_excluded", 0),
            "series_lost": fresh.get("series_lost", 0),
            # exact duplicates dropped, one copy kept: not quarantined (rows in = valid + quarantined + these)
            "rows_duplicate": int(getattr(data.report, "rows_duplicate", 0) or 0),
            # valid rows without a target value: the summary says them after valid (`cli.pipeline.counts_said`)
            "rows_null_y": int(data.rows_null_y),
            # rows after as_of a run does not read (not in rows in): the summary says them (`cli.pipeline.counts_said`)
            "rows_unseen": data.report.rows_unseen,
            "rows_partial_period": int(getattr(data.report, "rows_partial_period", 0) or 0),
            "columns_ignored": list(getattr(data.report, "undeclared_columns", None) or []),
            # ... those of them that are no covariate, with what they look like (`validate._not_covariates`)
            "columns_not_covariates": dict(getattr(data.report, "not_covariates", None) or {}),
            "wide_columns": list(getattr(data.report, "wide_columns", None) or []),  # a wide file's series columns
            # series that start after an interior gap longer than max_gap: their rows before it, not used
            "rows_before_gap": int(getattr(s, "rows_before_gap", 0) or 0),
            "gap_cut": list(getattr(s, "gap_cut", None) or [])[:100],  # the first 100 of ...
            "gap_cut_count": len(getattr(s, "gap_cut", None) or []),  # ... all of them
            # preprocess.log1p on: the series holding negative values, scaled without it
            "log1p_disabled": list(getattr(s, "log1p_disabled", None) or [])[:100],  # the first 100 of ...
            "log1p_disabled_count": len(getattr(s, "log1p_disabled", None) or []),  # ... all of them
            # the checks the quarantined rows failed, with their counts, and the quarantine file: the command's
            # summary names them (`cli.pipeline.counts_said`), where it said 'quarantined 1' alone
            "quarantine_checks": dict(getattr(data.report, "checks", None) or {}),
            # ... and the questions their reasons ask ('a totals row?'), which the summary asks beside the check
            "quarantine_hints": dict(getattr(data.report, "check_hints", None) or {}),
            "quarantine_path": getattr(data.report, "quarantine_path", None)}


def excluded_line(excluded: pl.DataFrame) -> str:
    """The run log's warning for the series preprocessing left out (`TrainingData.excluded`: unique_id, reason), the
    first 3 named with their reasons, ids quoted as every list of series quotes them, 'e.g.' before a sample only
    (it read '1 series left out of training and forecasting, e.g. dead: no observed values', newuser50a)."""
    from flowcast.mdtext import id_text

    shown = "; ".join(f"{id_text(u)}: {r}" for u, r in excluded.select("unique_id", "reason").head(3).iter_rows())
    return (f"{excluded.height:,} series left out of training and forecasting"
            f"{', e.g. ' if excluded.height > 3 else ': '}{shown}")


def validation_line(report: Any) -> str:
    """`Validation: 142968 rows in, 142968 valid (1,204 without a target value), 0 quarantined, 148 series`, with
    'rows in (45 of them planned: after as_of, kept for their future covariates)' where some are (`planned_said`);
    the rows without a target value said where there are some, as `flowcast run`'s summary says them (it said
    '(0 without a target value)' of every run)."""
    from flowcast.data.validate import after_as_of_said, duplicates_said, planned_said
    from flowcast.mdtext import id_text

    null_y = int(getattr(report, "rows_null_y", 0) or 0)
    lost = list(getattr(report, "series_quarantined", None) or [])
    lost_said = (f"; {len(lost):,} series with every row quarantined, not forecast: "
                 + ", ".join(id_text(e["unique_id"]) for e in lost[:5]) + (", ..." if len(lost) > 5 else "")) if lost else ""
    # rows dated after as_of are not seen: said, so that a file of future dates (a wrong year, a zone ahead of UTC read
    # without --tz) read by a run at now is not a row count that silently disagrees with `flowcast validate`'s
    # (aggregate) rows of the period not over at as_of are counted with them: dated up to as_of, not after it; the as_of
    # as the run's other lines write it (`timekeys.utc_text`; it read 2023-06-01T00:00:00+00:00)
    after_said = after_as_of_said(report.rows_unseen, utc_text(report.as_of),
                                  bool(getattr(report, "rows_partial_period", 0)))
    # rows after as_of kept for their planned future covariates are in rows in: said, as `flowcast run` says them
    planned = planned_said(int(getattr(report, "rows_planned", 0) or 0))
    dups = duplicates_said(int(getattr(report, "rows_duplicate", 0) or 0), int(report.rows_valid))
    dups = f"{dups}, " if dups else ""
    null_said = f" ({null_y:,} without a target value)" if null_y else ""  # (as `flowcast run`'s summary says them)
    return (f"Validation: {report.rows_in:,} rows in{planned}, {report.rows_valid:,} valid{null_said}, "
            f"{report.rows_quarantined:,} quarantined, {dups}{report.n_series:,} series{lost_said}{after_said}")


# ------------------------------------------------------------------------------- publishing
def publish_forecasts(
    settings: Settings,
    data: LoadedData,
    forecasts: pl.DataFrame,
    *,
    as_of: datetime,
    model: str,
    model_version: str | None,
    note: str | Sequence[str] = "",
    guard: contextlib.AbstractContextManager[Any] | None = None,
    trained_as_of: datetime | str | None = None,
    lookahead: bool | None = None,
    if_absent: bool = False,
    slot_check: SlotRetrained | None = None,
    keep_same: bool = True,
) -> Any:
    """Publish, then draw the forecast plot and leave the receipt artifact. `guard`: held around the
    publish itself (`ModelRegistry.publishing`: only while production is what the run decided on); what it
    yields, when callable, is called right before the publish becomes visible (the guard still holds).
    `trained_as_of`: where the model version's training data ended, kept with the publish (realized accuracy's
    `lookahead` once the version is gone). `lookahead`: whether that data ended after what a run at `as_of` observed
    (`flows.forecast.saw_after`), kept with the publish for realized accuracy (None: not known). `if_absent` (overwrite off): only into a key that holds nothing,
    checked under the key's lock; when another run published it since this run's first check, nothing is
    written and the AlreadyPublished naming that run is returned (said in the log), not a receipt. `slot_check` (a
    scheduled retrain, overwrite on): the same when what the key holds is another run's retrain of the slot (its
    `found` says which and why); any other publish of the key is replaced. A key that holds these very forecasts
    (the same model version, the same rows and values, another run's or an earlier one's) is left as it is, checked
    under the key's lock (`keep_same`: a second run of the as_of at once, a re-run with nothing changed): nothing is
    written (no `keep` event, no receipt) and the SamePublished naming that run is returned. Not for a scheduled
    retrain (`slot_check`): its publish of the slot replaces a forecast run's, which is what tells the slot done;
    nor with `keep_same` off (a replace asked for explicitly: `backfill --overwrite` of forecast dates)."""
    log = get_run_logger()
    run_id, started = run_identity()
    td = data.td
    last_ds = td.lengths().select("unique_id", "last_ds")
    with guard if guard is not None else contextlib.nullcontext() as still_held:
        # checked right before the publish becomes visible: a guard's lock lost meanwhile (a lease run out)
        receipt = tasks.publish_task(
            settings, forecasts, dataset=data.source.name, as_of=as_of, model=model, model_version=model_version,
            run_id=run_id, created_at=started, last_ds=last_ds, expected_ids=td.ids, horizon=data.horizon,
            before_visible=still_held if callable(still_held) else None,
            trained_as_of=storage_naive(trained_as_of) if trained_as_of else None, lookahead=lookahead,
            if_absent=if_absent,
            refuse_if=slot_check, keep_same=keep_same and slot_check is None,
        )
        if isinstance(receipt, AlreadyPublished):
            receipt.said = (slot_check.found[1] if slot_check is not None and slot_check.found is not None else
                            same_sentence(data.source.name, storage_naive(as_of), receipt.held)
                            if isinstance(receipt, SamePublished) else
                            held_sentence(data.source.name, storage_naive(as_of), receipt.held, late=True))
            if (refuse := getattr(still_held, "refuse", None)) is not None:
                # refused under the guard's lock: a promotion of this run is withdrawn before any other run can use it
                receipt.undone = refuse(receipt.said, receipt.held.get("model_version"))
    if isinstance(receipt, AlreadyPublished):  # another run of this slot published (or retrained) it meanwhile
        if isinstance(receipt, SamePublished):  # the key's publish, made from these data: its plot, and its record,
            # receipt and event where the run that made it was killed before them (said in receipt.said)
            _complete_same(settings, data, forecasts, receipt, as_of=as_of, run_id=run_id, note=note)
        log.info(reporting.sentences(receipt.said))  # ended as the state message and the artifact end it
        return receipt
    _record_fingerprint(settings, data, as_of, receipt.content_hash, run_id)  # (saying: this run is still to ...)
    flow_fault("publish:before_plot")  # test-only: recorded; no plot, receipt or event yet
    _plot_publish(settings, data, forecasts, receipt, as_of=as_of, model=model, model_version=model_version)
    _publish_said(settings, data, receipt, as_of=as_of, model=model, model_version=model_version, note=note)
    flow_fault("publish:before_said")  # test-only: plot, receipt and event left; the record still says them undone
    _said(settings, data, as_of, receipt.content_hash, run_id, by=run_id)
    from flowcast.store.registry_index import sync_if_postgres

    try:  # the registry's production pointers and versions, mirrored beside the forecasts
        if (counts := sync_if_postgres(settings)) is not None:
            log.info(f"Registry index on PostgreSQL: {counts['versions']} versions, {counts['production']} "
                     "production pointers")
    except FlowcastError as exc:  # a mirror: the forecasts are published and the registry is intact
        log.warning(f"The registry index on PostgreSQL could not be updated: {exc}")
    return receipt


def _plot_publish(settings: Settings, data: LoadedData, forecasts: pl.DataFrame, receipt: PublishReceipt, *,
                  as_of: datetime, model: str, model_version: str | None, artifact: bool = True) -> None:
    """Draw the forecast plot of a publish (`receipt`, whose rows are `forecasts`) into its png, atomically, and
    leave its plot artifact (`artifact`); a plot that cannot be written is a warning (the forecasts are published)."""
    log = get_run_logger()
    td = data.td
    last_ds = td.lengths().select("unique_id", "last_ds")
    scope = artifact_scope(data.source.name, as_of)
    png_path = settings.reports_dir / (f"{'backfill_' if scope.backfill else ''}forecast_{data.source.name}_"
                                       f"{as_of:%Y%m%dT%H%M%S}.png")
    # sub-daily ds are UTC instants: the plot labels them in the source's local time
    local_tz = td.meta.tz if td.meta.tz not in (None, "UTC") and is_subdaily(td.meta.freq) else None
    n_plot = min(settings.publish.plot_series, td.n_series)
    try:
        labels, actuals = plot_context(data, forecasts)
    except Exception as exc:  # noqa: BLE001 - names and late actuals are a courtesy of the plot
        log.warning(f"The forecast plot shows ids and no later actuals: reading them failed ({exc})")
        labels, actuals = {}, None
    # series forecast from a last observation more than a horizon before the others' (ended_series = "forecast";
    # "exclude" left them out of td): marked in the plot, named in its caption
    from flowcast.data.freshness import ended_series

    gone = ended_series(last_ds, td.meta.freq, int(td.meta.horizon))
    gone = gone.filter(pl.col("unique_id").is_in(forecasts["unique_id"].unique().implode()))
    ended = dict(zip(gone["unique_id"].to_list(), gone["last_ds"].to_list()))
    try:
        png = reporting.plot_forecasts(
            td.frame.select("unique_id", "ds", "y"),
            forecasts,
            png_path,
            n_series=settings.publish.plot_series,
            title=reporting.forecast_plot_title(data.source.name, model, model_version, naive_utc(as_of), local_tz,
                                                receipt.models),
            tz=local_tz, labels=labels, unit=data.source.unit, actuals=actuals,
            as_of=naive_utc(as_of) if not is_subdaily(td.meta.freq) or local_tz is None else None,
            time_label=data.source.time_label,  # hour-ending data: the axis says it shows interval starts
            ended=ended,
        )
    except (OSError, StorageError) as exc:  # a full disk must not fail a run whose forecasts are published
        log.warning(f"The forecast plot could not be written to {png_path} ({getattr(exc, 'strerror', None) or exc}); "
                    "the forecasts are published")
    else:
        if settings.shared and png is not None:
            from flowcast.shared import share_file

            share_file(settings, png)
        shown = (f", and the actuals observed after {utc_text(naive_utc(as_of))}"
                 if actuals is not None and actuals.height else "")
        starts = " (times are interval starts; the data label interval ends)" if data.source.time_label == "end" else ""
        made_by = reporting.all_fallback_text(model, model_version, receipt.models) or model  # as the receipt says
        if artifact:
            reporting.plot_artifact(png, reporting.forecast_plot_caption(made_by, n_plot, td.n_series, forecasts,
                                                                         list(ended), f"{shown}{starts}"), scope,
                                    publish=(receipt.run_id, receipt.content_hash))


def _publish_said(settings: Settings, data: LoadedData, receipt: PublishReceipt, *, as_of: datetime, model: str,
                  model_version: str | None, note: str | Sequence[str] = "", completed: str = "",
                  receipt_artifact: bool = True) -> None:
    """The receipt artifact, the published event and the log lines of a publish (`receipt`). The event is keyed by
    the publish (its run and content hash): sent again by a run that completes it (`completed`, said in the artifact
    and the event), it is one event. `completed`: the sentence of a run that completes an interrupted publish.
    `receipt_artifact` False: the receipt was left already (`reporting.receipt_left`), the rest is left."""
    flow_fault("publish:before_receipt")  # test-only: plot (and its artifact) left; no receipt or event yet
    log = get_run_logger()
    scope = artifact_scope(data.source.name, as_of)
    if receipt_artifact:
        reporting.receipt_artifact(receipt, scope, note=[completed, *reporting.run_notes(note)], home=settings.home)
    message = published_event_message(receipt, model, model_version)
    events.emit(events.PUBLISHED, dataset=data.source.name, as_of=as_of,
                message=f"{message} ({completed_event_text(receipt.run_id)})" if completed else message,
                rows=receipt.rows, n_series=receipt.n_series, model=model, model_version=model_version,
                run_id=receipt.run_id, past=later_published(settings, data.source.name, as_of),
                key=f"{storage_naive(as_of).isoformat()}:{receipt.run_id}:{receipt.content_hash}")
    log.info(published_line(receipt, as_of, model, model_version))
    for warning in receipt.notes:
        log.warning(warning)
    if (old := old_key_published(settings, data.source, as_of)) is not None:
        log.warning(old)


def completed_event_text(run_id: str) -> str:
    """What the published event of a completed publish adds: 'completing run R's publish, interrupted before this
    event'."""
    return f"completing run {run_id}'s publish, interrupted before this event"


def completed_sentence(run_id: str, *, recorded: bool = False, receipt_by: str | None = None,
                       plot_by: str | None = None) -> str:
    """The receipt note (and log line) of a run that completes a publish its run left undone (`recorded`: that run
    recorded the data it forecast from before it was stopped). `receipt_by`: the run that left the publish's receipt
    before it was stopped (`run_id`, or a run that completed it): this run leaves its event, and no second receipt.
    `plot_by`: the run that left the publish's plot artifact, no receipt (killed between them): this run leaves the
    receipt and event, and no second plot artifact."""
    def by(left_by: str, what: str) -> str:
        return f"left their {what}" if left_by == run_id else f"run {left_by} left their {what}, completing that publish,"

    if receipt_by is not None:
        return (f"This run completes an interrupted publish: run {run_id} published these forecasts and "
                f"{by(receipt_by, 'receipt')} and was stopped before it recorded that; this run left their event (one "
                "event: it is keyed by the publish) and no second receipt")
    if plot_by is not None:
        return (f"This run completes an interrupted publish: run {run_id} published these forecasts and "
                f"{'drew their plot' if plot_by == run_id else f'run {plot_by} drew their plot, completing that publish,'}"
                " and was stopped before it left their receipt and event; this run left them, and no second plot "
                "artifact")
    stopped = ("recorded the data it forecast from and was stopped before it drew their plot" if recorded else
               "was stopped before it recorded them, drew their plot")
    return (f"This run completes an interrupted publish: run {run_id} published these forecasts and {stopped} "
            "and left their receipt and event; this run did that from the stored rows")


def _complete_same(settings: Settings, data: LoadedData, forecasts: pl.DataFrame, same: SamePublished, *,
                   as_of: datetime, run_id: str, note: str | Sequence[str] = "") -> None:
    """A run whose publish found the key holding these very forecasts (`same`): the plot is drawn again from the
    stored rows (a png left by an earlier publish of the as_of, or none, is never taken for theirs); where the key
    has no record of that publish (its run was killed between the publish and its record), the record is written
    and the plot and receipt artifacts and the published event its run never left are, saying that they complete
    it."""
    from flowcast.store import open_store
    from flowcast.store.contract import value_columns

    held = same.held
    publisher = held.get("run_id") or run_id
    model, version = held.get("model") or "", held.get("model_version") or None
    content_hash = held.get("content_hash") or ""
    completed, recorded = _record_fingerprint(settings, data, as_of, content_hash, publisher, taken_by=run_id)
    store = open_store(settings)
    try:
        stored = store.read(dataset=data.source.name, as_of=storage_naive(as_of))
    except (OSError, FlowcastError) as exc:  # the forecasts stay published; the plot is a courtesy
        get_run_logger().warning(f"The forecast plot was not drawn again: reading the stored forecasts of "
                                 f"{data.source.name} as_of {utc_text(as_of)} failed ({exc})")
        return
    rows = stored.select([c for c in forecasts.columns if c in stored.columns]).with_columns(
        pl.col("ds").cast(forecasts.schema["ds"]))
    receipt = PublishReceipt(
        dataset=data.source.name, as_of=storage_naive(as_of), rows=stored.height,
        n_series=stored["unique_id"].n_unique(), model=model, model_version=version, run_id=publisher,
        replaced_rows=0, content_hash=held.get("content_hash") or "", location=store.location,
        quantile_cols=value_columns(stored.columns), models=sorted(stored["model"].unique().to_list()))
    # a run killed after its receipt, before its record said so (or a run that completed it, killed there): its
    # receipt is on the API, and is left no second time (faults50); killed after its plot artifact, before its
    # receipt: its plot artifact is, and is left no second time (faults51). Both come after the record: looked for
    # only where there was one
    left_by, plot_by = (_left_before(data.source.name, as_of, publisher, content_hash) if completed and recorded else
                        (None, None))
    _plot_publish(settings, data, rows, receipt, as_of=as_of, model=model or "?", model_version=version,
                  artifact=completed and left_by is None and plot_by is None)
    if completed:
        said = completed_sentence(publisher, recorded=recorded, receipt_by=left_by, plot_by=plot_by)
        same.said = reporting.sentences(same.said, said)
        _publish_said(settings, data, receipt, as_of=as_of, model=model, model_version=version, note=note,
                      completed=said, receipt_artifact=left_by is None)
        flow_fault("publish:before_said")  # test-only: as the publisher's own
        _said(settings, data, as_of, content_hash, publisher, by=run_id)


def _left_before(dataset: str, as_of: datetime, publisher: str, content_hash: str) -> tuple[str | None, str | None]:
    """(the run that left the receipt artifact, the run that left the plot artifact) of the publish of `content_hash`
    by run `publisher` of `dataset` at `as_of`, as the Prefect API holds them (`reporting.receipt_left`,
    `reporting.plot_left`; the plot is looked for only where no receipt is: it comes first). Where the API cannot be
    read, (None, None) and a warning saying the check could not be made: this run leaves both, maybe second ones, and
    its publish stands (it said nothing, and left a receipt, faults50)."""
    scope = artifact_scope(dataset, as_of)
    try:
        if (receipt_by := reporting.receipt_left(scope, publisher, content_hash)) is not None:
            return receipt_by, None
        return None, reporting.plot_left(scope, publisher, content_hash)
    except reporting.ArtifactsUnread as exc:
        get_run_logger().warning(
            f"Whether run {publisher} left the plot and receipt artifacts of its publish of {dataset} as_of "
            f"{utc_text(as_of)} could not be checked: {exc}. This run leaves them, which may be second ones; the "
            "forecasts are published")
        return None, None


def _record_fingerprint(settings: Settings, data: LoadedData, as_of: datetime, content_hash: str, run_id: str, *,
                        taken_by: str | None = None) -> tuple[bool, bool]:
    """Record what the data of a publish were (`record_fingerprint`): a later run with the same periods but revised
    values is not "unchanged". The record names the run still to draw the publish's plot and leave its receipt and
    event (`saying`, taken off by `_said` once they are): this run (`run_id`), or `taken_by`. `taken_by` (a run
    whose publish found the key holding these very forecasts): only where the plot, receipt and event of that
    publish are left undone by a run that no longer runs, decided under the key's lock from the record every run
    reads (the shared home's copy where there is one, the store's on PostgreSQL): there is none of that publish (its
    run was killed between the publish and the record, or between the record and its copy to the shared home; one of
    another publish of the as_of, forecasts replaced since, is no record of it) or it names a run still `saying`
    them (killed between its record and its event), and that run (`reaper.still_runs`) has ended. It completed a
    publish whose run was alive and about to record it (two runs of one as_of at once), and wrote a receipt saying
    that run had been stopped, beside that run's own; and a run killed after its record left no receipt or event
    (faults49). The record then names `taken_by`, the data of a record found kept. (True where the key still holds
    that publish and its record is written now: with `taken_by`, what its run did after the record (plot, receipt,
    event) is this run's to do; whether a record of that publish was found.)"""
    from flowcast.ops.quiet import data_fingerprint, record_fingerprint
    from flowcast.ops.reaper import still_runs

    found: list[bool] = []

    def left_to_another(current: dict[str, Any] | None) -> bool:  # (under the key's lock)
        found.append(current is not None)
        sayer = run_id if current is None else current.get("saying")
        return sayer is None or sayer == taken_by or still_runs(settings.home, str(sayer))

    td = data.td
    try:
        if record_fingerprint(settings, dataset=data.source.name, as_of=as_of, content_hash=content_hash,
                              fingerprint=data_fingerprint(td), run_id=run_id, tz=td.meta.tz,
                              time_label=data.source.time_label, freq=data.source.freq,
                              saying=taken_by or run_id,
                              unless=left_to_another if taken_by is not None else None) is None:
            if taken_by is None:
                get_run_logger().warning(
                    f"The fingerprint of the data this publish forecast from was not recorded: {data.source.name} "
                    f"as_of {utc_text(as_of)} no longer holds this publish (a gc deleted it, or another run "
                    "published the as_of again, since)")
            return False, bool(found and found[-1])
    except (OSError, FlowcastError) as exc:  # the forecasts are published; the next run publishes again
        get_run_logger().warning(f"The fingerprint of the data this publish forecast from could not be recorded "
                                 f"({exc}): the next forecast run publishes even without new observations")
    return True, bool(found and found[-1])


def _said(settings: Settings, data: LoadedData, as_of: datetime, content_hash: str, run_id: str, *, by: str) -> None:
    """The plot, receipt and event of the publish of `content_hash` by run `run_id` are left (by run `by`): its
    record says so (`quiet.said`), and a re-run leaves them no second time. A record that cannot be written is a
    warning: a re-run after this run ended leaves them once more (one event: its key is the publish's)."""
    from flowcast.ops.quiet import said

    try:
        said(settings, dataset=data.source.name, as_of=as_of, content_hash=content_hash, run_id=run_id, by=by)
    except (OSError, FlowcastError) as exc:
        get_run_logger().warning(f"The record of {data.source.name} as_of {utc_text(as_of)} could not say that its "
                                 f"plot, receipt and event are left ({exc}): a re-run leaves them again")


def old_key_published(settings: Settings, source: SourceConfig, as_of: datetime) -> str | None:
    """A sentence when the store has a publish of `source` under the key its date alone had before
    it meant the source's local midnight (midnight UTC of that date): two as_of for one date."""
    from flowcast.store import open_store
    from flowcast.store.parquet import partition_name
    from flowcast.timekeys import old_date_key

    old = old_date_key(as_of, source.tz)
    try:
        if old is None or old not in open_store(settings).as_ofs(source.name):
            return None
    except (OSError, FlowcastError):  # a courtesy: the forecasts are published
        return None
    # the two instants as every message writes one, the partition by its name (they read '2021-06-30T00:00 UTC')
    return (f"{source.name} also has a publish of as_of {utc_text(old)} (midnight UTC), the key a date alone had "
            f"before it meant the midnight that day starts at in {source.tz}, as this run's does: "
            f"{utc_text(as_of, source.tz)}. Two as_of for one date: remove the old partition {partition_name(old)} "
            "(no command removes one as_of alone: `flowcast gc --forecasts-before` removes every as_of before a date)")


def plot_context(data: LoadedData, forecasts: pl.DataFrame) -> tuple[dict[str, str], pl.DataFrame | None]:
    """For the forecast plot: each series' human name (the source's label_col) and the actuals
    observed after as_of over the forecast's dates (a past as_of), read from the same source."""
    ing, src = data.ingested, data.source
    if ing is None:
        return {}, None
    labels: dict[str, str] = {}
    if src.label_col and src.label_col in ing.frame.collect_schema().names():
        pairs = (ing.frame.select("unique_id", pl.col(src.label_col).cast(pl.Utf8)).drop_nulls()
                 .unique("unique_id", keep="last").collect())
        labels = dict(pairs.iter_rows())
    if ing.as_of_ds is None or forecasts.is_empty():
        return labels, None
    first, last = forecasts["ds"].min(), forecasts["ds"].max()
    ids = forecasts["unique_id"].unique().to_list()
    # (after as_of as the run's cut tells it, `DS_SEEN`: a daily time with an offset by the instant it names)
    actuals = (ing.unfiltered.select("unique_id", "ds", "y", DS_SEEN)
               .filter(pl.col("unique_id").is_in(ids) & pl.col("y").is_not_null()
                       & (pl.col(DS_SEEN) > ing.as_of_ds) & (pl.col("ds") >= first) & (pl.col("ds") <= last))
               .drop(DS_SEEN)
               .unique(["unique_id", "ds"], keep="last").collect())
    return labels, actuals.with_columns(pl.col("ds").cast(forecasts.schema["ds"]))


def store_label(settings: Settings) -> str:
    """Where the configured store lives, for run summaries: the warehouse folder of the embedded
    default, else store.url without its password."""
    url = settings.store.url
    if not url and settings.shared:
        url = settings.shared_path("warehouse")
    if not url:
        return str(settings.warehouse_dir.resolve())
    return redact(url)  # the only guard: a run's summary is its returned result, kept by Prefect and printed as is
