"""Run logs written for a person: flowcast's own lines say what each stage decided; this filter
takes out Prefect's lines that repeat them.

`install()` (called when `flowcast.flows` is imported, so every flow run, deployment runs
included, has it) adds `QuietFilter` to Prefect's `prefect.task_runs` and `prefect.flow_runs`
loggers, before their handlers (console and the API: what the UI shows), and to `prefect.flows` (a call's parameters as
their validation fails) and `prefect.engine` (a deployment run's process as it exits: its line about a failure flowcast
explains loses the traceback, as any other does, rev50b):

- `Finished in state Completed()` of flowcast's own tasks is dropped (one per task: ingest,
  validate, train, backtest, ... tell nothing the next flowcast line does not); their `Finished in state
  Cached(type=COMPLETED)` (preprocessing of data an earlier run prepared) is said in words (`CACHED`).
- A failure flowcast explains itself (a `FlowcastError`: ConfigError, DataValidationError,
  RegistryError, TrainingError, ...) is said ONCE, by the run's final `Finished in state
  Failed(...)` line, which carries flowcast's sentence: the failing task's own `Finished in state
  Failed` line and its ERROR `Task run failed with exception: ...` (a retry's line stays), the flow's `Encountered exception during execution` (with its traceback) and, in a
  deployment run (a worker's or `flowcast serve`'s subprocess), the engine's ERROR `Engine execution
  exited with unexpected exception` after it are dropped, and any other line about it loses the
  traceback. That final line is an ERROR (Prefect's flow engine logs every final state at INFO, so a
  Failed run's log, filtered to errors in the UI, showed nothing). Any other exception keeps Prefect's
  full report, traceback included (a bug needs it).
- A flow run cancelled by the runner that started it (a serve's stop, a cancel from the UI) ends its log with
  `CANCELLED_FINAL` where Prefect's engine, which leaves that state to the runner, said `Finished in state
  Running()`.
- The INFO lines around flowcast's own failure hook (`Running hook 'on_run_failure' ...`).
- A URL in any line is shown without its password or secret query values (`flowcast.redaction`: a library's error, a
  source's files), as flowcast's own lines and errors show it, and a keyword DSN's password (`password=...`) too
  (`redact_log_text`); in a line's traceback too (an unexpected error's message, `Encountered exception during
  execution`). This is `RedactFilter`, which `QuietFilter` extends.

Set `FLOWCAST_PREFECT_LOGS=full` to keep every Prefect line (debugging): `RedactFilter` alone is installed then, so
that a secret is hidden whatever the logs keep (it was shown). Prefect's own setting `PREFECT_LOGGING_LEVEL` still
applies on top.
"""

from __future__ import annotations

import logging
import os
import re

from flowcast.errors import FlowcastError
from flowcast.redaction import redact_log_text

# Prefect's run loggers, and those that print a call's parameters or a traceback outside a run: `prefect.flows` (a
# flow's parameter validation failing logs 'Parameters: {...}', every URL whole: rev50) and `prefect.engine`
LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "prefect.flows", "prefect.engine")
_FAILED_BY = re.compile(r"exception:? ([A-Za-z_][A-Za-z0-9_]*)(?::|\()")
_OWN_HOOKS = ("on_run_failure",)
# Prefect's lines that repeat a failure: the flow's own, and the engine's as a deployment run (a worker's or
# `flowcast serve`'s subprocess) exits: an ERROR calling flowcast's explained failure 'unexpected'
_REPEATS = ("Encountered exception during execution", "Engine execution exited with unexpected exception")
# Prefect's task engine as a task fails for good: "Task run failed with exception: TrainingError('...')"
_TASK_FAILED = "Task run failed with "
# Prefect's synchronous flow engine logs a run's final state at INFO whatever it is
_FAILED_FINAL = ("Finished in state Failed(", "Finished in state Crashed(")
# Prefect's flow engine as the runner that started the run cancels it (a serve's stop, a cancel from the UI): it leaves
# the state to that runner (Cancelled) and logs its own last one, `Finished in state Running()` (serveB46)
_CANCELLED = "Flow run was cancelled."
_RUNNING_FINAL = "Finished in state Running()"
CANCELLED_FINAL = "Finished in state Cancelled(): cancelled by the runner that started it, which set that state"
# what a flowcast task's `Finished in state Cached(type=COMPLETED)` says (preprocessing of the same data and settings)
CACHED = "Not computed again: an earlier run's result for the same input and settings was reused (cached)"


def _flowcast_error_names() -> set[str]:
    names, todo = set(), [FlowcastError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def flowcast_task_names() -> set[str]:
    """The names of flowcast's tasks (`flowcast.flows.tasks`, and the tune flow's `tune`, whose
    `Finished in state Completed()` was the one left in a `flowcast tune` log)."""
    from prefect import Task

    from flowcast.flows import tasks, tune

    return {t.name for mod in (tasks, tune) for t in vars(mod).values() if isinstance(t, Task)}


class RedactFilter(logging.Filter):
    """Hides a URL's password and secret query values, and a keyword DSN's password, in a line and its traceback
    (`redact_log_text`); drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage() if record.args else str(record.msg)
        if (shown := redact_log_text(msg)) != msg:  # a URL's password or token, a DSN's password, in any line
            record.msg, record.args = shown, ()
        if record.exc_info and not record.exc_text:
            _redact_traceback(record)
        return True


class QuietFilter(RedactFilter):
    """Drops Prefect's repetitions of what flowcast says (see the module docstring), its lines redacted as
    `RedactFilter` does."""

    def __init__(self, task_names: set[str] | None = None) -> None:
        super().__init__()
        self.task_names = task_names
        self.cancelled: set[str] = set()  # the flow runs whose engine said they were cancelled (`_CANCELLED`)

    def _own_task(self, record: logging.LogRecord) -> bool:
        if self.task_names is None:
            self.task_names = flowcast_task_names()
        return getattr(record, "task_name", None) in self.task_names

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether `record` is kept; a kept one redacted as `RedactFilter` does, after the checks: a dropped line's
        traceback was formatted and redacted for nothing."""
        return self._keeps(record) and super().filter(record)

    def _keeps(self, record: logging.LogRecord) -> bool:
        """Whether `record` is kept, its message, level or traceback changed where the module docstring says (the
        checks read Prefect's wording, which no URL's secret changes)."""
        exc = record.exc_info[1] if record.exc_info else None
        msg = record.getMessage() if record.args else str(record.msg)
        if record.name == "prefect.task_runs" and msg.startswith("Finished in state"):
            if msg.startswith("Finished in state Completed(") and self._own_task(record):
                return False
            if msg.startswith("Finished in state Cached(") and self._own_task(record):
                record.msg, record.args = CACHED, ()  # 'Cached(type=COMPLETED)' is Prefect's vocabulary
            m = _FAILED_BY.search(msg)
            if m and m.group(1) in _flowcast_error_names() and self._own_task(record):
                return False  # the flow's final state says it
        if record.name == "prefect.task_runs" and msg.startswith(_TASK_FAILED) and " - Retry " not in msg:
            # Prefect 3's task engine says a task's final failure once more, as an ERROR (a retry's line stays)
            m = _FAILED_BY.search(msg)
            if m and m.group(1) in _flowcast_error_names() and self._own_task(record):
                return False  # the flow's final state says it
        if isinstance(exc, FlowcastError):
            if msg.startswith(_REPEATS):
                return False  # the flow's final `Finished in state Failed(...)` says it, without a traceback
            record.exc_info, record.exc_text = None, None
        if record.name == "prefect.flow_runs" and (run := str(getattr(record, "flow_run_id", ""))):
            if msg == _CANCELLED:
                self.cancelled.add(run)
            elif msg == _RUNNING_FINAL and run in self.cancelled:
                self.cancelled.discard(run)
                record.msg, record.args = CANCELLED_FINAL, ()  # not Running: the runner's Cancelled is its state
        own_hook = any(msg.startswith((f"Running hook {h!r}", f"Hook {h!r} finished")) for h in _OWN_HOOKS)
        if record.name == "prefect.flow_runs" and msg.startswith(_FAILED_FINAL) and record.levelno < logging.ERROR:
            record.levelno, record.levelname = logging.ERROR, logging.getLevelName(logging.ERROR)
        return not (record.name == "prefect.flow_runs" and own_hook)


def _redact_traceback(record: logging.LogRecord) -> None:
    """`record`'s traceback, formatted as a handler's formatter formats it, kept without a URL's secrets where it names
    one (an unexpected error's message: a library's that named the URL it could not read, whose password and token the
    terminal and the UI showed): a formatter uses the text kept (`exc_text`) and formats no other."""
    text = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
    if (shown := redact_log_text(text)) != text:
        record.exc_text = shown


def install() -> RedactFilter:
    """Add the filter to Prefect's run loggers once: `QuietFilter`, or `RedactFilter` alone with
    FLOWCAST_PREFECT_LOGS=full (every line kept, its secrets hidden still)."""
    kind = RedactFilter if os.environ.get("FLOWCAST_PREFECT_LOGS", "").lower() == "full" else QuietFilter
    found: list[RedactFilter] = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, RedactFilter)), None)
        if existing is None:
            existing = found[0] if found else kind()
            logger.addFilter(existing)
        found.append(existing)
    return found[0]
