"""Standard streams that outlive whoever reads them.

A run whose console went away (the Prefect worker that started it killed while its flow-run process lives
on, an ssh session dropped, `flowcast run ... 2>&1 | head`) died on its next write with BrokenPipeError,
without publishing what it had computed: `flowcast run ... 2>&1 | head -1` ended with exit 1 before it read
any data, and a flow whose worker was killed ended at its next log line or progress print. `guard()` wraps
sys.stdout and sys.stderr so that a write or flush that fails because the reader is gone (EPIPE, EIO, a
closed file) silences that stream for the rest of the process and the run goes on; its logs still reach
the Prefect API. A command whose stdout went so ends, its work done, with 141 (128 + SIGPIPE), as a shell tool
whose reader left does (`cli.common.cli_errors`).

A guarded stream also keeps whether the last text written through it ended its line (`at_line_start`), so that a
line flowcast says there starts a line of its own: Prefect's log worker, failing to send a batch to an API gone,
writes '--- Error logging to API ---' and then its error with no newline ('All connection attempts failed'), and
the API watch's line was glued to it (faults53). `ops.api_watch`, where sys.stderr is not guarded (flowcast as a
library, tests), puts there one made with `silence=False`, which only keeps `at_line_start`: its errors are raised
as the wrapped stream's are, and `guard()` still guards it.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any, TextIO

_GONE = (errno.EPIPE, errno.EIO, errno.EBADF, errno.ECONNRESET)


class GuardedStream:
    """A text stream that turns into a sink once its reader is gone (module doc); everything else is the
    wrapped stream's. `silence=False`: it never does (the reader gone raises as it did), it only keeps
    `at_line_start`."""

    def __init__(self, stream: TextIO, silence: bool = True):
        self._given = self._stream = stream
        self.silences = silence
        self._silenced = False
        self.at_line_start = True  # whether the last text written ended its line (module doc)

    @property
    def silenced(self) -> bool:
        return self._silenced

    @property
    def wrapped(self) -> TextIO:
        """The stream this one was made of (even once silenced)."""
        return self._given

    def _gone(self, exc: BaseException) -> bool:
        if not self.silences:
            return False
        if isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno in _GONE):
            return True
        return isinstance(exc, ValueError) and "closed file" in str(exc)

    def _silence(self) -> None:
        self._silenced = True
        try:
            self._stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        except OSError:
            pass

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        if self._silenced:
            return len(text)
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as exc:
            if not self._gone(exc):
                raise
            self._silence()
            return len(text)

    def flush(self) -> None:
        if self._silenced:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            if not self._gone(exc):
                raise
            self._silence()

    def isatty(self) -> bool:
        try:
            return False if self._silenced else self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer, ...: the wrapped stream's
        return getattr(self._stream, name)


def guard() -> None:
    """Wrap sys.stdout and sys.stderr (once per process; module doc)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not (isinstance(stream, GuardedStream) and stream.silences):
            setattr(sys, name, GuardedStream(stream))
