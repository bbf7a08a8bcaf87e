"""flowcast.streams: a run whose console went away goes on and publishes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from flowcast.streams import GuardedStream


class _Gone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_stream_whose_reader_is_gone_is_silenced_and_other_errors_are_raised():
    s = GuardedStream(_Gone())
    assert s.write("lost") == 4 and s.silenced
    s.write("more")
    s.flush()
    ok = GuardedStream(io.StringIO())
    ok.write("kept")
    assert ok.getvalue() == "kept" and not ok.silenced  # everything else is the wrapped stream's

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        GuardedStream(Full()).write("x")


def test_a_guarded_stream_tells_whether_the_last_text_written_ended_its_line():
    """faults53: Prefect's log worker writes its error with no newline, and a line said after it was glued to it; a
    guarded stream keeps whether the last text ended its line (an empty write changes nothing), silenced or not, and
    the stream it was made of."""
    given = io.StringIO()
    s = GuardedStream(given)
    assert s.at_line_start
    s.write("--- Error logging to API ---\nAll connection attempts failed")
    assert not s.at_line_start
    s.write("")
    assert not s.at_line_start
    s.write("\n")
    assert s.at_line_start and given.getvalue().endswith("failed\n") and s.wrapped is given
    gone = _Gone()
    silenced = GuardedStream(gone)
    silenced.write("no end")
    assert silenced.silenced and not silenced.at_line_start and silenced.wrapped is gone


def test_a_run_whose_console_closes_still_publishes(tmp_path):
    """Regression: `flowcast run ... 2>&1 | head -1` (and a flow whose Prefect worker was killed, its console
    with it) died on its next write with BrokenPipeError, exit 1, nothing published. The run goes on, silent,
    publishes, and ends as a shell tool whose reader left does (141: 128 + SIGPIPE)."""
    rows = "".join(f"{date(2023, 1, 1) + timedelta(days=i)},s{j},{i % 7 + j}\n" for i in range(60) for j in (1, 2))
    (tmp_path / "sales.csv").write_text("date,store,units\n" + rows)
    env = {**os.environ, "FLOWCAST_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "flowcast", "run", "sales.csv", "--time-col", "date", "--target-col", "units",
           "--id-col", "store", "--freq", "1d", "--models", "none", "--as-of", "2023-03-01"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    proc.stdout.readline()  # the first line, then the reader goes away
    proc.stdout.close()
    assert proc.wait(timeout=600) == 141
    published = tmp_path / "home" / "warehouse" / "forecasts" / "dataset=sales"
    assert [p.name for p in published.iterdir()] == ["as_of=2023-03-01T00:00:00"]


def test_a_stream_made_not_to_silence_raises_its_readers_errors_and_guard_still_guards_it(monkeypatch):
    """fixB54: the API watch put a silencing stream on a stderr flowcast had not guarded (library and test use), and a
    closed or broken stderr went silent there. `silence=False` only keeps where the last line ended; `guard()`
    guards it still."""
    quiet = GuardedStream(_Gone(), silence=False)
    with pytest.raises(BrokenPipeError):
        quiet.write("lost\n")
    assert not quiet.silenced and quiet.at_line_start
    closed = io.StringIO()
    closed.close()
    with pytest.raises(ValueError, match="closed file"):
        GuardedStream(closed, silence=False).write("x")
    from flowcast.streams import guard

    monkeypatch.setattr(sys, "stdout", GuardedStream(io.StringIO()))
    monkeypatch.setattr(sys, "stderr", GuardedStream(_Gone(), silence=False))
    guard()
    assert isinstance(sys.stderr, GuardedStream) and sys.stderr.silences and sys.stderr.wrapped.silences is False
    assert sys.stderr.write("x") == 1 and sys.stderr.silenced
