"""A stop (SIGTERM, SIGINT) while a source is read and validated (`source_files.read_steadily`, stop45): said as the
stop, raised as the stop, never a polars panic and never a read again. Real signals sent to this process, a real
polars panic (a Parquet file cut short under its lazy scan). The run's whole path is
tests/flows/test_stopped_while_read.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from data_helpers import make_source
from prefect.exceptions import TerminationSignal
from proc_state import written_in_place

from flowcast.data.source_files import read_steadily
from flowcast.errors import DataValidationError
from flowcast.interrupts import signals_seen


def _parquet(path: Path) -> bytes:
    """A Parquet file of 20 series x 500 days in row groups of 1,000 rows: its bytes."""
    n = 20 * 500
    pl.DataFrame({"id": [f"s{i // 500}" for i in range(n)],
                  "date": pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 5, 14), eager=True).to_list() * 20,
                  "val": [float(i) for i in range(n)]}).write_parquet(path, row_group_size=1000)
    return path.read_bytes()


def _scan(path: Path) -> pl.LazyFrame:
    """A lazy scan of `path` that has read its footer (the row groups' places), as ingest's does."""
    scan = pl.scan_parquet(path)
    scan.collect_schema()
    return scan


@pytest.fixture
def lost_stops() -> Iterator[None]:
    """SIGTERM and SIGINT handled by a Python handler whose exception is lost, as Prefect's TerminationSignal raised
    inside a polars query is: the signal arrives, nothing is raised."""
    before = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.usefixtures("lost_stops")
@pytest.mark.parametrize(("sig", "raised", "name"), [(signal.SIGTERM, TerminationSignal, "SIGTERM"),
                                                     (signal.SIGINT, KeyboardInterrupt, "SIGINT (Ctrl-C)")])
def test_a_stop_whose_query_panicked_is_raised_as_the_stop(tmp_path, sig, raised, name):
    """Regression: a stop that landed in validation's polars query ended the read with polars' PanicException (a Rust
    backtrace), or, the file changing meanwhile, with a read again, nothing saying the stop caused it. The stop is
    said and raised now (the panic its cause), the file not read again."""
    path = tmp_path / "sales.parquet"
    whole = _parquet(path)
    warned: list[str] = []

    def check(scan: pl.LazyFrame) -> pl.DataFrame:
        os.kill(os.getpid(), sig)  # the stop, its handler's exception lost
        written_in_place(path, whole[: len(whole) // 2])  # the query then fails as it will: here polars panics
        return scan.collect()

    with pytest.raises(raised) as stop:
        read_steadily(make_source(path), lambda: _scan(path), check, warned.append, sleep=lambda _: None)
    assert type(stop.value.__cause__).__name__ == "PanicException", repr(stop.value.__cause__)
    said = (f"Stopped by {name} while reading and validating source 't': nothing was written from this read; run "
            "again to read it whole")
    assert warned == [said], warned


@pytest.mark.usefixtures("lost_stops")
def test_an_error_without_a_stop_is_raised_as_it_was(tmp_path):
    """No signal came: validation's own error is raised as before, nothing said of a stop."""
    path = tmp_path / "sales.parquet"
    _parquet(path)
    warned: list[str] = []

    def check(scan: pl.LazyFrame) -> pl.DataFrame:
        raise DataValidationError("bad rows")

    with pytest.raises(DataValidationError, match="bad rows"):
        read_steadily(make_source(path), lambda: _scan(path), check, warned.append)
    assert warned == []


@pytest.mark.usefixtures("lost_stops")
def test_signals_seen_reads_each_signal_of_its_block_only():
    """The signals received in the block, each once; one received before it is not among them; the wakeup fd is
    given back as it was."""
    os.kill(os.getpid(), signal.SIGINT)
    with signals_seen() as seen:
        assert seen() == set()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen() == {signal.SIGTERM}
    assert signal.set_wakeup_fd(-1) == -1


@pytest.mark.parametrize("loop_first", [True, False], ids=["loop-before-the-block", "loop-in-the-block"])
def test_signals_seen_leaves_an_asyncio_loops_wakeup_fd_to_it(loop_first):
    """An asyncio loop of this thread that handles a signal (`add_signal_handler`: its own wakeup fd), set before the
    block or in it, still gets the signal after the block: the block's end gave back no wakeup fd that was not its own
    (it set none, stealing the loop's where the loop set its own in the block)."""
    import asyncio

    got: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        if loop_first:
            loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        with signals_seen():
            if not loop_first:
                loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        os.kill(os.getpid(), signal.SIGUSR1)
        loop.run_until_complete(asyncio.sleep(0.2))
    finally:
        loop.close()
    assert got == ["usr1"]
    assert signal.set_wakeup_fd(-1) == -1  # the loop's close gave its own back


def test_signals_seen_passes_on_to_an_asyncio_loop_a_signal_that_came_as_it_found_the_loops_wakeup_fd(monkeypatch):
    """signals_seen learns that an asyncio loop's wakeup fd is set only by setting its own (the call returns the one
    before) and gives it back at once; a signal that came in between was noted in its pipe alone, and the loop never
    ran its handler (the signal lost to it). It is passed on to the loop's. The signal is sent, for real, just as the
    block's own wakeup fd is set."""
    import asyncio

    real = signal.set_wakeup_fd
    sent: list[int] = []

    def set_then_signal(fd: int, **kwargs: bool) -> int:
        before = real(fd, **kwargs)
        if before != -1 and fd != -1 and not sent:  # the block's own set over the loop's: a signal comes now
            sent.append(fd)
            os.kill(os.getpid(), signal.SIGUSR1)
        return before

    got: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        monkeypatch.setattr(signal, "set_wakeup_fd", set_then_signal)
        with signals_seen():
            pass
        monkeypatch.undo()
        loop.run_until_complete(asyncio.sleep(0.2))
    finally:
        loop.close()
    assert sent and got == ["usr1"]
