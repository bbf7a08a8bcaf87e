"""Errors a user sees as one clear sentence and an exit code (the CLI prints them without a traceback)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any


class FlowcastError(Exception):
    """Base class: `exit_code` is what the CLI exits with. Its message is shown without the secrets of a URL or a
    keyword DSN in it (`redaction.redact_log_text`, as a log line: a password after the user, a `token=` or `password=`
    query value, `host=db password=***`): it names the source or store it could not read, and is printed, kept in
    Prefect's database (the run's state) and shown in its UI."""

    exit_code = 1

    def __init__(self, *args: Any) -> None:
        from flowcast.redaction import redact_log_text

        super().__init__(*(redact_log_text(a) if isinstance(a, str) else a for a in args))


class ConfigError(FlowcastError):
    """Configuration that cannot work (unknown dataset, contradicting options)."""

    exit_code = 2


class DataValidationError(FlowcastError):
    """A dataset-level failure: missing/renamed column, schema drift in a strict source, a column
    that cannot be cast, empty or unreadable input, no series left, too many quarantined rows.
    `report`: the data quality report so far, when the failure came after validation. `begins`: of a run
    whose as_of is before its source's data (no row observed by then), the first as_of that observes the data
    (its first row's time, or of an aggregated source the end of its first period, whichever is later) as
    `timekeys.utc_text` writes it ('2010-01-01'), which the message names; None otherwise. A backfill says its
    dates before it apart: they fail again on every re-run."""

    exit_code = 2
    report: Any = None
    begins: str | None = None


class SourceUnavailableError(FlowcastError):
    """The source could not be read for a reason that may pass (connection refused or reset, a
    timeout, HTTP 5xx, 429 or 408): an I/O failure, not bad data. It is retried with backoff where
    the bytes are read (and by the Prefect task); this error means the retries were spent."""

    exit_code = 3
    transient = True


class TrainingError(FlowcastError):
    """Training could not produce a usable model (diverged, the training process failed)."""


class ModelFileError(TrainingError):
    """A trained network's file (`model.ckpt`, `meta.json`) is missing or cannot be read (cut short,
    overwritten): the error names the file. A forecast with a registered version says what to do."""


class TrainingStoppedError(FlowcastError):
    """A training process was stopped from outside (a signal: killed by a person or the OOM killer,
    terminated, interrupted) before it finished. Not a TrainingError: it says nothing about the
    model, so a run stops instead of going on with the next candidate (a re-run resumes the
    training from its last checkpoint)."""


class PublishError(FlowcastError):
    """Forecasts failed their contract or could not be written; what was published stays intact."""


class NothingPublished(PublishError):
    """A store's receipt of a key (dataset, as_of) was asked for where the key holds no forecasts."""


class AlreadyPublished(PublishError):
    """A publish asked to write only into an empty key (`if_absent`: a scheduled run, overwrite off) found
    that key published, checked under the key's lock: nothing was written. `held`: the receipt of what the
    key holds (run_id, model_version, rows, ...)."""

    def __init__(self, message: str, held: dict[str, str] | None = None):  # a default: unpickled with its message
        super().__init__(message)  # alone (a Prefect state, a worker's error), then its attributes
        self.held = held or {}
        self.undone = ""  # what the publish's registry guard undid (a retrain's promotion withdrawn), said by the run
        self.said = ""  # the sentence the refused run says (naming the run that published, or retrained, the key)


class SamePublished(AlreadyPublished):
    """A publish with `keep_same` found its key holding the very forecasts it was about to write (the same
    content hash: the same model version, the same rows and values; run_id and created_at aside), checked under
    the key's lock: nothing was written, the key keeps the earlier run's publish (`held`, its receipt)."""


class DamagedPublishError(PublishError):
    """A published forecasts file cannot be read (cut short, overwritten); its message names it, why and what
    publishes it again. `path`: the file; `why`: the error reading it ('ArrowInvalid: ...'), for a caller that says
    something else of it (a gc plan about to delete that publish, where the advice to re-publish read oddly)."""

    def __init__(self, message: str, path: str = "", why: str = ""):  # defaults: unpickled with its message alone
        super().__init__(message)
        self.path, self.why = path, why


class StoreUnreachableError(PublishError):
    """A PostgreSQL store could not be connected to (the server down or refusing this client); its message names
    the URL without its password and what to do. `server`: 'host H, port P, database D' (`postgres.server_of`);
    `advice`: for a refusal waiting cannot change (a wrong password, no such role or database), what to check
    (`postgres.refusal_advice`), the end of the message; '' when the server may be down (start it)."""

    def __init__(self, message: str, server: str = "", advice: str = ""):  # defaults: unpickled (a Prefect state,
        super().__init__(message)  # a worker) with its message alone
        self.server, self.advice = server, advice


class StoreLockWaitError(PublishError):
    """A PostgreSQL store's ALTER TABLE waited `store.pg_wait_s` for the sessions holding its tables (a reader's
    open transaction) and gave up; its message names them. Never transient: a person must end those sessions (a
    retry waits as long again and fails the same way)."""


class RegistryError(FlowcastError):
    """Unknown model version, corrupt registry entry."""


class ProductionMovedError(RegistryError):
    """A compare-and-swap promotion found another version in production than the one the run
    started from (another run or a person promoted meanwhile); nothing was changed."""


class RunCancelled(FlowcastError):
    """A flow run cancelled (Cancelling: the UI, `prefect flow-run cancel`) as it ran in its own process (a CLI
    command's), where no worker stops it or runs its `on_cancellation` hook: it stopped what it could, and its run
    ends Cancelled with this message (`flows.common.fails_without_a_result`), not Failed."""


class ServeRunningError(FlowcastError):
    """Another `flowcast serve` of the same home or Prefect API is running (it holds the serve lock)."""

    exit_code = 4


class StorageError(FlowcastError):
    """A file could not be written (full disk, no permission); what was there before is intact."""


class LockLostError(StorageError):
    """A holder of an object-store lock lost it (its lease ran out and another writer took it): what it
    guarded was not written. Never transient: a retry does not get the lock back."""


_REMOVAL = "the removal of "


def removal(thing: str) -> str:
    """What a lock guards when it guards the deletion of `thing` (`lock_lost_outcome`: `thing was not removed`)."""
    return _REMOVAL + thing


def lock_lost_outcome(what: str) -> str:
    """How a LockLostError ends: `what` the lost lock guarded was not done, `... was not written`, or for a
    `removal(thing)`, `thing was not removed` (it read `the removal of thing was not written` until words44)."""
    if what.startswith(_REMOVAL):
        return f"{what.removeprefix(_REMOVAL)} was not removed"
    return f"{what} was not written"


class SettingsValueError(ValueError):
    """A configuration value that failed validation, with where each offending value was set: an
    environment variable (named with its value) or a configuration file's key. `errors()` is pydantic's
    list, each error with an `origin` ('FLOWCAST_MODEL__MAX_STEPS='abc' (model.max_steps)') where known."""

    def __init__(self, errors: list[dict[str, Any]] | None = None) -> None:  # None: unpickled, then its attributes
        self._errors = errors or []
        super().__init__()

    def errors(self) -> list[dict[str, Any]]:
        return list(self._errors)

    def __str__(self) -> str:
        return one_line(self)


def one_line(exc: Exception) -> str:
    """A pydantic ValidationError (or TOML error) as one line: 'model.lookback: Input should be a
    valid integer (got 'abc'); freq: ...' instead of pydantic's multi-line text with URLs."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = []
            listed = list(errors())
            # [source.mine] (singular) for [sources.mine]: 'source.path: Field required; ... source.mine: unknown
            # setting (did you mean 'y_min'?)' named neither the table nor the section it belongs in
            tables = [str(e["loc"][1]) for e in listed if e.get("type") == "extra_forbidden"
                      and len(e.get("loc", ())) == 2 and e["loc"][0] == "source" and isinstance(e.get("input"), dict)]
            if tables:
                listed = [e for e in listed if tuple(e.get("loc", ()))[:1] != ("source",)]
                parts += [f"source.{t}: a named source is a [sources.{t}] table ('sources', plural; [source] holds "
                          f"the settings of one unnamed source), read with dataset = {t!r} or --dataset {t}"
                          for t in tables]
            for e in listed:
                loc = ".".join(str(x) for x in e.get("loc", ())) or "value"
                msg = str(e.get("msg", "")).removeprefix("Value error, ")
                value = e.get("input")
                value = str(value) if isinstance(value, PurePath) else value  # 'x.csv', not PosixPath('x.csv')
                # where the value was set (FLOWCAST_MODEL__MAX_STEPS='abc' (model.max_steps, from the environment),
                # a file's key = value): it names the value, so 'got' does not repeat it
                shown = ("input" in e and not isinstance(value, dict) and repr(value) not in msg
                         and not e.get("origin"))
                got = [f"got {value!r}"] if shown else []
                if e.get("type") == "extra_forbidden":  # a misspelled key: say so, and name the one it may be
                    msg = "unknown setting"
                    close = _close_setting(tuple(e.get("loc", ())))
                    got += [f"did you mean {close!r}?"] if close else []
                parts.append(f"{e.get('origin') or loc}: {msg}" + (f" ({'; '.join(got)})" if got else ""))
            if parts:
                return "; ".join(parts)
        except Exception:  # noqa: BLE001, S110 - not pydantic's shape: fall back to the plain text below
            pass
    return " ".join(str(exc).split())


def _close_setting(loc: tuple[Any, ...]) -> str | None:
    """The configuration key nearest to the unknown last part of `loc` among its siblings (model.max_step
    -> 'max_steps', sources.NAME.futur_cols -> 'future_cols'); None when nothing is close."""
    import difflib
    import types
    import typing

    from flowcast.config import Settings

    model: Any = Settings
    parts = [str(p) for p in loc]
    i = 0
    while i < len(parts) - 1:
        fields = getattr(model, "model_fields", None)
        if not fields or parts[i] not in fields:
            return None
        ann = fields[parts[i]].annotation
        if typing.get_origin(ann) in (typing.Union, types.UnionType):  # X | None
            ann = next((a for a in typing.get_args(ann) if a is not type(None)), ann)
        if typing.get_origin(ann) is dict:  # [sources.NAME]: the next part is a name, then its fields
            ann = typing.get_args(ann)[1]
            i += 1
        model = ann
        i += 1
    fields = getattr(model, "model_fields", None)
    if not fields:
        return None
    close = difflib.get_close_matches(parts[-1], list(fields), n=1, cutoff=0.6)
    return close[0] if close else None


def by_interrupt(exc: BaseException) -> bool:
    """Whether `exc` comes of a KeyboardInterrupt (Ctrl-C): raised while handling one or caused by one,
    or pydantic's error for one raised in a serializer, which names it only in its message when the
    serializer was a nested model's (Prefect's settings: a Ctrl-C while Prefect serialized them for its
    temporary server's environment ended 'error: PydanticSerializationError: Error calling function
    `_ser_model`: KeyboardInterrupt' with exit 1, not 'interrupted' and 130)."""
    from pydantic_core import PydanticSerializationError

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt) or (
                isinstance(cause, PydanticSerializationError) and ": KeyboardInterrupt" in str(cause)):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def earlier_errors(exc: BaseException) -> list[BaseException]:
    """The errors `exc` was raised while handling that its message does not say, nearest first: each implicit context
    (a raise inside an `except` without `from`; none past an explicit cause or `from None`, whose message says what it
    means to) that is a FlowcastError (an explained error that a later one hid: a refusal, then a failed write) or,
    after an error flowcast does not explain, any but a Ctrl-C's; one whose text the message holds left out."""
    said = str(exc)
    found: list[BaseException] = []
    seen = {id(exc)}
    current = exc
    while (current.__cause__ is None and not current.__suppress_context__
           and (context := current.__context__) is not None and id(context) not in seen):
        seen.add(id(context))
        if ((isinstance(context, FlowcastError) or not isinstance(exc, FlowcastError))
                and not isinstance(context, KeyboardInterrupt) and not (str(context) and str(context) in said)):
            found.append(context)
        current = context
    return found


def earlier_said(exc: BaseException) -> str:
    """`exc`'s `earlier_errors` as the end of its sentence, '' where none: '; raised while handling an earlier error:
    DataValidationError: no rows' (a URL's or a DSN's secrets hidden, as in a FlowcastError's message). The CLI says it: the
    error alone hid the first one, often the one to mend (an error raised while handling another kept that one only
    as its `__context__`, which nothing showed without FLOWCAST_DEBUG=1)."""
    from flowcast.redaction import redact_log_text

    parts = []
    for e in earlier_errors(exc):
        text = one_line(e) if isinstance(e, Exception) else str(e)
        parts.append(f"; raised while handling an earlier error: {type(e).__name__}{': ' + text if text else ''}")
    return redact_log_text("".join(parts))
