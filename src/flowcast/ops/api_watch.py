"""One line on the terminal when the Prefect API stops answering while a command runs, one when it answers again.

Prefect's client retries a request whose connection failed (once it has connected: a server restarting, an
upgrade, a crash and its supervisor) up to PREFECT_CLIENT_MAX_RETRIES times, 2, 4, 8, 16, 32 s apart: about a
minute in which it logs nothing above DEBUG, and `flowcast run` or `flowcast serve` looked hung, then went on or
failed. `watching(url)`, around a command that runs against a configured API (`reaper.temporary_api`), puts a
filter on Prefect's client logger that reads each of those retries (`RETRY_LINE`): the first whose error may be a
connection to the API that failed (`reaper.api_unreachable`) starts a thread that probes the API's health check
(`reaper.api_health`). Only where that probe fails too does it say on stderr that the Prefect API at <url> does not
answer and that the run waits for it; it then probes every second until the API answers, which it says too. A
retried request the API itself was not down for (a stale keep-alive connection's RemoteProtocolError, a slow
answer's ReadTimeout) is said nothing of: the probe finds the API answering (fix A53). Each outage is said once,
however many requests retry through it.

Before the command's flow run is created: Prefect's client retries a refused connection only on a client that has
connected before (a wrong URL fails at once), and the flow engine's client is new, so an API cut right after the
command's start-up check (`reaper.wait_for_api`) failed the command at once ('RuntimeError: Failed to reach API'),
even for an 18 s outage (note53). `created_once_answering(call)`, around a command's flow call (`cli.common.
call_flow`), waits that outage out as the watch waits one out later in the run: its two lines, for up to the same
retry window; nothing of the run had started (`while_creating_the_run`), and it is created once the API answers.

A line of its own: sys.stderr is a `streams.GuardedStream` while the watch runs (the command's own, or one the watch
puts there, `silence=False`: a closed or broken stderr raises as it did), which tells whether the last text written there ended its line (Prefect's log worker writes its error
with no newline: faults53).

The logger is lowered to DEBUG for the watch to see those records; the filter lets through only what its level let
through before (Prefect's DEBUG lines stay as hidden as they were). Lowering it lowers its child loggers (those
without a level of their own) too, whose records a logger's filter never sees: a filter on the handlers they reach
(`_Hidden`) drops what their level hid before. Both are put back when the command ends.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

# how Prefect's client (prefect.client.base, `_send_with_retry`) starts its DEBUG line for a retried request's error
RETRY_LINE = "Encountered retryable exception during request."
CLIENT_LOGGER = "prefect.client"
POLL_S = 1.0  # how often the API's health check is probed while it does not answer
RUN_TRIES = 3  # how many times `created_once_answering` calls a flow whose run the API was gone to create
T = TypeVar("T")


def _stderr(line: str) -> None:
    apart = "" if getattr(sys.stderr, "at_line_start", True) else "\n"
    print(f"{apart}{line}", file=sys.stderr, flush=True)


def retry_window_s() -> int:
    """How long Prefect's client retries a request before it gives up (2 + 4 + ... + 2^PREFECT_CLIENT_MAX_RETRIES s,
    its back-off without jitter): 62 s by default."""
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

    return 2 ** (PREFECT_CLIENT_MAX_RETRIES.value() + 1) - 2


class ApiWatch(logging.Filter):
    """The filter on Prefect's client logger (module doc). `say`: where its lines go (stderr); `shown`: the level
    the logger had before the watch (records below it are dropped, as they were)."""

    def __init__(self, url: str, shown: int, say: Callable[[str], None] = _stderr, poll_s: float = POLL_S):
        super().__init__()
        from flowcast.redaction import redact

        self.url, self.shown, self.say, self.poll_s = url, shown, say, poll_s
        self.named = redact(url)  # (a password in the URL is not shown)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._probe: threading.Thread | None = None
        self._said = False  # whether the running probe said an outage

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and str(record.msg).startswith(RETRY_LINE):
            self.lost(exc)
        return record.levelno >= self.shown

    def lost(self, exc: BaseException) -> None:
        """A request to the API failed and Prefect's client retries it: the API is probed, and an outage the probe
        confirms is said once (`waiting`)."""
        from flowcast.ops.reaper import api_unreachable

        if not api_unreachable(exc):
            return
        with self._lock:
            if (self._probe is not None and self._probe.is_alive()) or self._stop.is_set():
                return
            self._said = False
            # (the retry window read here: Prefect's settings of this context are not the probe thread's)
            self._probe = threading.Thread(target=self._until_back, args=(retry_window_s(),),
                                           name="flowcast-api-watch", daemon=True)
            self._probe.start()

    @property
    def waiting(self) -> bool:
        """Whether an outage was said and the API has not answered since."""
        return self._said and self._probe is not None and self._probe.is_alive()

    def _until_back(self, window_s: int) -> None:
        """Probe the API at once: where it answers, the retried request was no outage (nothing is said); else say it
        does not answer (Prefect's client retrying for `window_s`), and that it answers again once it does."""
        from flowcast.ops.reaper import api_health
        from flowcast.redaction import redact_log_text

        why = api_health(self.url)
        if why is None:
            return
        self._said = True
        self.say(f"the Prefect API at {self.named} does not answer ({redact_log_text(why.replace(self.url, self.named))}"
                 f"): the run waits for it (Prefect's client retries for up to about {window_s}s, then the run "
                 "fails)")
        while not self._stop.wait(self.poll_s):
            if api_health(self.url) is None:
                self.say(f"the Prefect API at {self.named} answers again: the run goes on")
                return

    def waited_out(self, exc: BaseException) -> bool:
        """A connection to the API failed where Prefect's client does not retry it (a new client's first): probe and
        say as `lost` does (a line too where the API answers at once), and wait for the API to answer again up to
        Prefect's retry window; whether it did (False for an error that is no connection never made, ConnectError or
        ConnectTimeout: a request sent may have done its work; an API still gone, a watch stopped)."""
        import httpx

        from flowcast.ops.reaper import error_chain

        # only a connection that was never made: a request that was sent (a ReadTimeout, ReadError, WriteError,
        # RemoteProtocolError as the run was being created) may have created the run, and a retry would create a
        # second; an HTTP error status is no outage
        if not any(isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)) for e in error_chain(exc)):
            return False
        window_s = retry_window_s()
        self.lost(exc)
        with self._lock:
            probe = self._probe
        if probe is None:
            return False
        probe.join(window_s)
        back = not probe.is_alive() and not self._stop.is_set()
        if back and not self._said:  # the probe found it answering at once: nothing was said of the retry yet
            self.say(f"the Prefect API at {self.named} did not answer as the run was being created and answers now: "
                     "the run is created again")
        return back

    def close(self) -> None:
        """Stops the probe (the command ends: nothing of the watch outlives it)."""
        self._stop.set()
        if self._probe is not None:
            self._probe.join(10)


def running() -> ApiWatch | None:
    """The watch of the command running now (`watching`'s filter on Prefect's client logger), None where none is."""
    return next((f for f in logging.getLogger(CLIENT_LOGGER).filters if isinstance(f, ApiWatch)), None)


def while_creating_the_run(exc: BaseException) -> bool:
    """Whether `exc` (or an error it was raised from) was raised while Prefect's flow engine was creating its flow
    run (its client connecting, `create_flow_run`): an engine on its traceback has no flow run yet, so nothing of
    the run started. False where no engine says so: the run may have gone on."""
    import traceback

    from prefect.flow_engine import BaseFlowRunEngine

    from flowcast.ops.reaper import error_chain

    engines = [v for e in error_chain(exc) for frame, _ in traceback.walk_tb(e.__traceback__)
               for v in (frame.f_locals.get("self"), frame.f_locals.get("engine")) if isinstance(v, BaseFlowRunEngine)]
    return bool(engines) and all(getattr(engine, "flow_run", None) is None for engine in engines)


def created_once_answering(call: Callable[[], T]) -> T:
    """`call()`, a command's flow called in process, again where the Prefect API did not answer as its flow run was
    being created and answered again within Prefect's retry window (module doc; the running watch says both), up to
    RUN_TRIES calls; its error where the API stayed gone, where the run had been created (it may have run), or
    where no watch runs (a temporary API, the command's own)."""
    tries = 1
    while True:
        try:
            return call()
        except Exception as exc:
            watch = running()
            if tries >= RUN_TRIES or watch is None or not while_creating_the_run(exc) or not watch.waited_out(exc):
                raise
            tries += 1


class _Hidden(logging.Filter):
    """On the handlers that Prefect's client logger's records reach: drops a record of a child logger (one without a
    level of its own between it and that logger) below the level the watch lowered them from (`shown`)."""

    def __init__(self, shown: int):
        super().__init__()
        self.shown = shown

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.shown or not record.name.startswith(CLIENT_LOGGER + "."):
            return True
        name = record.name
        while name != CLIENT_LOGGER:  # a logger with a level of its own on the way keeps what it shows
            if logging.getLogger(name).level != logging.NOTSET:
                return True
            name = name.rsplit(".", 1)[0]
        return False


def _handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of `logger` (and of its children) reaches."""
    out: list[logging.Handler] = []
    at: logging.Logger | None = logger
    while at is not None:
        out += [h for h in at.handlers if h not in out]
        at = at.parent if at.propagate else None
    return out


@contextmanager
def watching(url: str, say: Callable[[str], None] = _stderr, poll_s: float = POLL_S) -> Iterator[ApiWatch]:
    """While the block runs, an outage of the Prefect API at `url` is said (module doc); the logger's level and
    filters, and its handlers' filters, are as they were after it."""
    logger = logging.getLogger(CLIENT_LOGGER)
    before = logger.level
    watch = ApiWatch(url, logger.getEffectiveLevel(), say=say, poll_s=poll_s)
    hidden, handlers = _Hidden(watch.shown), _handlers(logger)
    for handler in handlers:
        handler.addFilter(hidden)
    logger.addFilter(watch)
    logger.setLevel(logging.DEBUG)
    from flowcast.streams import GuardedStream

    # (only to keep where its lines end: a stderr flowcast did not guard raises its errors as it did)
    stream = None if isinstance(sys.stderr, GuardedStream) else GuardedStream(sys.stderr, silence=False)
    if stream is not None:
        sys.stderr = stream
    try:
        yield watch
    finally:
        logger.setLevel(before)
        logger.removeFilter(watch)
        for handler in handlers:
            handler.removeFilter(hidden)
        watch.close()
        if stream is not None and sys.stderr is stream:  # (put back unless someone replaced it since)
            sys.stderr = stream.wrapped
