"""Polars' panics as errors naming the file: a panic of polars itself (a `PanicException`, which is no Exception:
`except Exception` lets it through) reached a user as a Rust backtrace and a traceback. Every read of a source's
file in ingest (`sources.ingest` and its decisions of day/month order, decimal marks and zones, `Ingested.rows`,
validation's collect, the frequency's inference and the file probes of the commands) runs inside `panics_named`,
which raises `panic_error` in its place; so does preprocessing, whose error names its stage and source. A glob's
panic names the file that fails alone where one does (`failing_file`, probed only after the panic), as does an
ordinary error reading a glob or folder (`validate._collect`: polars reads a file:// glob's cut Parquet file with a
ComputeError that names no file)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

import polars as pl

from flowcast.errors import DataValidationError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def panic_error(label: str, exc: BaseException, *, stage: str = "read", culprit: str | None = None
                ) -> DataValidationError:
    """The error for a panic of polars while `stage` ('read', 'preprocess') works on `label` (polars 2.1's streaming
    engine asserting 'pipe.send_state == PortState::Done' over a 1,000,000-row file, session 51): which file or
    source, what polars said, the file of a glob that fails alone (`culprit`), and what to try: its in-memory
    engine, which runs the same query by another path (and, for a read, smaller files)."""
    said = " ".join(str(exc).split()) or type(exc).__name__
    alone = alone_said(culprit)
    split = ", or split the file into smaller files read as a glob" if stage == "read" else ""
    return DataValidationError(
        f"cannot {stage} {label}: polars failed inside its query engine ({said}){alone}; try again with the "
        f"environment variable POLARS_ENGINE_AFFINITY=in-memory{split}")


@contextmanager
def panics_named(label: str, *, stage: str = "read", files: Sequence[str] | Callable[[], Sequence[str]] = (),
                 read: Callable[[str], object] | None = None) -> Iterator[None]:
    """Run the block's work of `stage` on `label` (reads of a file, or of a glob and its number of files; the
    preprocessing of a source), a panic of polars raised as `panic_error` (from it: its cause), naming the first of
    `files` (a glob's; or the function listing them, called after a panic only) that `read` fails on alone where one
    does. Other errors pass unchanged."""
    try:
        yield
    except pl.exceptions.PanicException as exc:
        raise panic_error(label, exc, stage=stage, culprit=failing_file(label, files, read)) from exc


def alone_said(culprit: str | None) -> str:
    """What an error reading a source says of its file that fails read alone (`failing_file`): '; of its files,
    FILE fails to read alone', '' for none."""
    return f"; of its files, {culprit} fails to read alone" if culprit else ""


def failing_file(label: str, files: Sequence[str] | Callable[[], Sequence[str]],
                 read: Callable[[str], object] | None) -> str | None:
    """The first of `files` (of the source `label`; or the function listing them, called here) that `read` fails on
    alone (an error or a panic), None where each reads, without `read`, or where the files are `label` itself (one
    file, named already). After a failed read only, never on the happy path: each file read alone in turn (the files
    read whole once more, on the way to an error)."""
    if read is None:
        return None
    listed = list(files() if callable(files) else files)
    if listed == [label]:
        return None
    for file in listed:
        try:
            read(file)
        except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - any failure of its own names the file
            return file
    return None


def file_probe(probe: Callable[Concatenate[str, _P], _R]) -> Callable[Concatenate[str, _P], _R]:
    """`probe`, a function reading the file at its first argument (`probes`), with its reads in `panics_named`."""
    @functools.wraps(probe)
    def probed(path: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with panics_named(path):
            return probe(path, *args, **kwargs)

    return probed
