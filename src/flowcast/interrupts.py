"""Ctrl-Cs that something swallowed: every SIGINT a command receives while its flows run is counted
before Python raises it as the KeyboardInterrupt it is.

Prefect's flow engine swallows a KeyboardInterrupt that lands after it recorded the flow run final
('BaseException was raised after user code finished executing', a debug line): a Ctrl-C in the last
second of `flowcast run` (the forecasts published, the engine finishing) ended with exit 0 as if nothing
had happened, and one that landed so in a backfill's date went on with the next dates. The count tells
the command line (and a backfill between its dates) that a person asked to stop.
"""

from __future__ import annotations

import contextvars
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

_received = 0  # SIGINTs received under `counted` in this process


def received() -> int:
    """How many SIGINTs this process received under `counted` so far (compare two readings)."""
    return _received


_in_block = 0  # SIGINTs received in the current `counted` block

CLEANING_UP = b"\nstopping: recording the run's final state (Ctrl-C again to stop at once)\n"


def _count(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C of a block raises KeyboardInterrupt; the second one, landing while the first is being
    handled (Prefect's engine recording the run Crashed, the temporary server stopping), is only counted
    and said: raised there, it cut that cleanup short and left the run Running. A third raises."""
    global _received, _in_block
    _received += 1
    _in_block += 1
    if _in_block == 2:
        try:
            os.write(2, CLEANING_UP)  # not sys.stderr: a handler may run inside its own write
        except OSError:
            pass
        return
    signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt, as without this handler


@contextmanager
def counted() -> Iterator[None]:
    """SIGINTs are counted in this block, then raised as KeyboardInterrupt as before. Only where Python's
    own handler is in place (the main thread; a process started with SIGINT ignored, a background job,
    keeps ignoring it)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(
            signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    global _in_block
    _in_block = 0
    signal.signal(signal.SIGINT, _count)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is _count:
            signal.signal(signal.SIGINT, signal.default_int_handler)


STOP_SIGNALS: dict[int, str] = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}


@contextmanager
def signals_seen() -> Iterator[Callable[[], set[int]]]:
    """A reader of the signals this process received in the block (each number once), taken from a wakeup fd
    (`signal.set_wakeup_fd`): the C-level note of every signal that has a Python handler, kept where that handler's
    exception was lost (raised inside a polars query, which then fails as it will, a panic among them). Signal
    handlers stay as they are (Prefect's cancel checks that its own is in place). Outside the main thread, or where
    another wakeup fd is set (an asyncio loop in this thread), it reads no signal (one that came as it looked is
    passed on to that fd: `_pass_on`). A wakeup fd another set in the block (an asyncio loop's `add_signal_handler`)
    is left to it."""
    seen: set[int] = set()
    try:
        read_end, write_end = os.pipe()
    except OSError:
        yield lambda: seen
        return
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    try:
        before = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        before = None
    if before is not None and before != -1:
        signal.set_wakeup_fd(before)
        _pass_on(read_end, before)
        before = None
    owned = before is not None

    def read() -> set[int]:
        while owned:
            try:
                got = os.read(read_end, 512)
            except BlockingIOError:
                break
            if not got:
                break
            seen.update(got)
        return seen

    try:
        yield read
    finally:
        if owned:
            read()
            if (current := signal.set_wakeup_fd(-1)) != write_end:  # another's, set in the block: an asyncio
                signal.set_wakeup_fd(current)  # loop's signal handler; taken from it, its signals never reached it
        os.close(read_end)
        os.close(write_end)


def _pass_on(read_end: int, to: int) -> None:
    """The signal numbers noted in the pipe `read_end` (`signals_seen`'s wakeup fd) written to the wakeup fd `to`, the
    one `signals_seen` found set (an asyncio loop's, which reads them): a signal that came in the moment its own was
    set over `to` reaches the loop's handler, not this pipe alone."""
    try:
        if got := os.read(read_end, 512):
            os.write(to, got)
    except OSError:  # none came (BlockingIOError); `to` full or closed: dropped, as Python's own handler drops it
        pass


def stop_of(error: BaseException, signals: set[int]) -> tuple[BaseException, str] | None:
    """The stop that ended what raised `error`, with the signal's name: `error` itself where it is one (a
    KeyboardInterrupt, Prefect's TerminationSignal); else, where SIGTERM or SIGINT came meanwhile (`signals`), the stop
    that `error` hid (a polars query the signal interrupted ends with a PanicException or an error of its own):
    Prefect's TerminationSignal for SIGTERM, KeyboardInterrupt for SIGINT. None: no stop."""
    from prefect.exceptions import TerminationSignal

    if isinstance(error, TerminationSignal):
        return error, STOP_SIGNALS.get(error.signal, f"signal {error.signal}")
    if isinstance(error, KeyboardInterrupt):
        return error, STOP_SIGNALS[signal.SIGINT]
    if isinstance(error, (SystemExit, GeneratorExit)):
        return None
    if signal.SIGTERM in signals:
        return TerminationSignal(signal.SIGTERM), STOP_SIGNALS[signal.SIGTERM]
    if signal.SIGINT in signals:
        return KeyboardInterrupt(), STOP_SIGNALS[signal.SIGINT]
    return None


def raise_stop(error: BaseException, signals: set[int], warn: Callable[[str], None],
               said: Callable[[str], str]) -> None:
    """Where a stop ended what raised `error` (`stop_of`), say `said(the signal's name)` through `warn` and raise the stop
    (from `error` where it hid it); else return."""
    if (found := stop_of(error, signals)) is None:
        return
    stop, name = found
    warn(said(name))
    if stop is error:
        raise error
    raise stop from error


STOP_POLL_S = 0.2  # how often `stoppable`'s wait wakes up to run a signal's handler that another thread received
_Result = TypeVar("_Result")


def stoppable(work: Callable[[], _Result], warn: Callable[[str], None], said: Callable[[str], str],
              poll: float = STOP_POLL_S) -> _Result:
    """`work()` (long polars queries) in a worker thread that this one, the main thread, waits for in `poll` s steps
    under `signals_seen`: a stop (SIGTERM, SIGINT) is handled within `poll` s, where in the query itself it waited for
    the query to end (seconds on millions of rows: Python runs a signal's handler in the main thread alone, between
    bytecodes, and polars' collect holds the main thread in Rust meanwhile). The stop is said and raised as
    `raise_stop` says it (`said`); `work`'s own error is raised as it was. The stopped work is left to end on its own in
    a daemon thread, which holds no exit: its result is dropped, so that `work` must write nothing (its caller writes
    what it returns). `work` runs in a copy of this thread's context (Prefect's run context, the run logger's).
    Outside the main thread `work()` runs in this thread, as before."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    done = threading.Event()
    outcome: list[_Result] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - raised in the waiting thread
            failed.append(exc)
        finally:
            done.set()

    with signals_seen() as signals:
        try:
            context = contextvars.copy_context()
            threading.Thread(target=context.run, args=(run,), name="flowcast-stoppable", daemon=True).start()
            while not done.wait(poll):  # a signal's handler runs here, its stop raised out of the wait
                pass
            if failed:
                raise failed[0]
        except BaseException as exc:
            raise_stop(exc, signals(), warn, said)
            raise
    return outcome[0]


def fault_point(point: str) -> None:
    """Test-only fault injection: FLOWCAST_FAULT=`point` (`flow:started`, `gc:before_models`, ...) SIGKILLs this
    process there; with FLOWCAST_FAULT_SIGNAL=SIGSTOP it is stopped there instead, still live (SIGCONT goes on), so
    that a test runs another process at exactly that point."""
    if os.environ.get("FLOWCAST_FAULT") == point:
        os.kill(os.getpid(), getattr(signal, os.environ.get("FLOWCAST_FAULT_SIGNAL", "SIGKILL")))
