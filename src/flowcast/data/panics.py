"""Polars' panics as errors naming the file: a panic of polars itself (a `PanicException`, which is no Exception:
`except Exception` lets it through) reached a user as a Rust backtrace and a traceback. Every read of a source's
file in ingest (`sources.ingest` and its decisions of day/month order, decimal marks and zones, `Ingested.rows`,
validation's collect, the frequency's inference and the file probes of the commands) runs inside `panics_named`,
which raises `panic_error` in its place."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

import polars as pl

from flowcast.errors import DataValidationError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def panic_error(label: str, exc: BaseException) -> DataValidationError:
    """The error for a panic of polars while reading `label` (polars 2.1's streaming engine asserting
    'pipe.send_state == PortState::Done' over a 1,000,000-row file, session 51): which file, what polars said, and
    what to try: its in-memory engine, which reads the same rows by another path."""
    said = " ".join(str(exc).split()) or type(exc).__name__
    return DataValidationError(
        f"cannot read {label}: polars failed inside its query engine ({said}); try again with the environment "
        "variable POLARS_ENGINE_AFFINITY=in-memory, or split the file into smaller files read as a glob")


@contextmanager
def panics_named(label: str) -> Iterator[None]:
    """Run the block's reads of `label` (a file, or a glob and its number of files), a panic of polars raised as
    `panic_error` (from it: its cause). Other errors pass unchanged."""
    try:
        yield
    except pl.exceptions.PanicException as exc:
        raise panic_error(label, exc) from exc


def file_probe(probe: Callable[Concatenate[str, _P], _R]) -> Callable[Concatenate[str, _P], _R]:
    """`probe`, a function reading the file at its first argument (`probes`), with its reads in `panics_named`."""
    @functools.wraps(probe)
    def probed(path: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with panics_named(path):
            return probe(path, *args, **kwargs)

    return probed
