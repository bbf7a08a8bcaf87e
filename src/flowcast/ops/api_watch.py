"""One line on the terminal when the Prefect API stops answering while a command runs, one when it answers again.

Prefect's client retries a request whose connection failed (once it has connected: a server restarting, an
upgrade, a crash and its supervisor) up to PREFECT_CLIENT_MAX_RETRIES times, 2, 4, 8, 16, 32 s apart: about a
minute in which it logs nothing above DEBUG, and `flowcast run` or `flowcast serve` looked hung, then went on or
failed. `watching(url)`, around a command that runs against a configured API (`reaper.temporary_api`), puts a
filter on Prefect's client logger that reads each of those retries (`RETRY_LINE`): the first whose error is a
connection to the API that failed (`reaper.api_unreachable`) says on stderr that the Prefect API at <url> does not
answer and that the run waits for it, and starts a thread that probes the API's health check every second until it
answers (`reaper.api_health`), which it says too. Each outage is said once, however many requests retry through it.

The logger is lowered to DEBUG for the watch to see those records; the filter lets through only what its level let
through before (Prefect's DEBUG lines stay as hidden as they were), and both are put back when the command ends.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# how Prefect's client (prefect.client.base, `_send_with_retry`) starts its DEBUG line for a retried request's error
RETRY_LINE = "Encountered retryable exception during request."
CLIENT_LOGGER = "prefect.client"
POLL_S = 1.0  # how often the API's health check is probed while it does not answer


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and str(record.msg).startswith(RETRY_LINE):
            self.lost(exc)
        return record.levelno >= self.shown

    def lost(self, exc: BaseException) -> None:
        """A request to the API failed and Prefect's client retries it: said once per outage (`waiting`)."""
        from flowcast.ops.reaper import api_unreachable
        from flowcast.redaction import redact_log_text

        if not api_unreachable(exc):
            return
        with self._lock:
            if self.waiting or self._stop.is_set():
                return
            error = redact_log_text(str(exc).replace(self.url, self.named))
            self.say(f"the Prefect API at {self.named} does not answer ({type(exc).__name__}: {error}): the run waits "
                     f"for it (Prefect's client retries for up to about {retry_window_s()}s, then the run fails)")
            self._probe = threading.Thread(target=self._until_back, name="flowcast-api-watch", daemon=True)
            self._probe.start()

    @property
    def waiting(self) -> bool:
        """Whether an outage was said and the API has not answered since."""
        return self._probe is not None and self._probe.is_alive()

    def _until_back(self) -> None:
        from flowcast.ops.reaper import api_health

        while not self._stop.wait(self.poll_s):
            if api_health(self.url) is None:
                self.say(f"the Prefect API at {self.named} answers again: the run goes on")
                return

    def close(self) -> None:
        """Stops the probe (the command ends: nothing of the watch outlives it)."""
        self._stop.set()
        if self._probe is not None:
            self._probe.join(10)


@contextmanager
def watching(url: str, say: Callable[[str], None] = _stderr, poll_s: float = POLL_S) -> Iterator[ApiWatch]:
    """While the block runs, an outage of the Prefect API at `url` is said (module doc); the logger's level and
    filters are as they were after it."""
    logger = logging.getLogger(CLIENT_LOGGER)
    before = logger.level
    watch = ApiWatch(url, logger.getEffectiveLevel(), say=say, poll_s=poll_s)
    logger.addFilter(watch)
    logger.setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        logger.setLevel(before)
        logger.removeFilter(watch)
        watch.close()
