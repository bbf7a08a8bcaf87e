"""What a command or an error's hint learns of a local file without running it: whether it can be read and holds
rows, its columns and header, its first values, whether it is wide (`wide_probe`), its constant columns; the columns
that may tell its series apart are `series_keys`'. Never what a run reads: that is `sources.ingest`.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import NamedTuple

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.csv_text import blank_line
from flowcast.data.dated_by import _written_by
from flowcast.data.headers import _DUPLICATED_RE, _NUMBER_TEXT_RE, _header_below, _header_names, _unnamed
from flowcast.data.panics import file_probe
from flowcast.data.scan import _scan_one
from flowcast.data.source_files import (
    FileState,
    ObjectState,
    _is_url,
    file_format,
    resolve_files,
    source_states,
)
from flowcast.data.value_text import MISSING_MARKERS, id_text
from flowcast.timekeys import as_instant


def header_below_title(path: str) -> tuple[int, str] | None:
    """(line number, text) of the header of a local CSV file (its first, for a glob or a folder) below a title line:
    its first line names one column, the others unnamed ('Sales report Q1 2024,,', as a spreadsheet's report exports
    it), and a later line names two or more ('store,date,sales'). Such a file was asked for --time-col and
    --target-col among the columns 'Sales report Q1 2024, column_2, column_3'. None otherwise. For a message, never
    for a run."""
    columns = columns_of(path)
    if not columns or len(columns) < 2 or any(not re.fullmatch(r"column_\d+", c) for c in columns[1:]):
        return None
    try:
        probe = SourceConfig(name="probe", path=path, time_col="-", target_col="-", freq="1d")
        file = resolve_files(probe)[0]
    except Exception:  # noqa: BLE001 - a courtesy: the command's own reading says what is wrong
        return None
    return _header_below(file, None) if file_format(probe, file) == "csv" else None


_NO_ROWS_PROBE = 1000  # lines read of each file to tell a file of a header (and blank lines) alone


@file_probe
def refuse_no_rows(path: str, name: str) -> None:
    """Refuse a local file (every file of a glob) that holds no row: empty, a header alone (blank lines after it
    counted), a Parquet file of its columns alone, said as its run says it (`validate.no_rows_error`), before a
    command asks for its columns: `flowcast validate header.csv` was told `also needs --time-col, --target-col (its
    columns: date, id, sales)`, and given them, that the file has no rows. URLs are read by the run itself, and so is
    a file whose first `_NO_ROWS_PROBE` rows are all blank (its rows may follow them)."""
    if _is_url(path):
        return
    from flowcast.data.validate import no_rows_said, overlong_row_error

    probe = SourceConfig(name=name, path=path, time_col="-", target_col="-", freq="1d")
    files = resolve_files(probe)
    blank_lines = 0
    for file in files:
        try:
            head = _scan_one(probe, file).head(_NO_ROWS_PROBE).collect()  # an empty CSV file raises, saying so
        except pl.exceptions.ComputeError as exc:  # a row longer than the header: polars' words, said as a run says it
            if "more fields than defined" in str(exc) and (overlong := overlong_row_error([file], probe)):
                raise overlong from exc
            raise
        csv = file_format(probe, file) == "csv" and bool(head.columns)
        # (blank lines as the run skips them, `blank_line`: a row of empty cells is a row, which the run quarantines)
        blank = int(head.select(blank_line(head.columns).sum()).item()) if csv else 0
        if head.height > blank or head.height == _NO_ROWS_PROBE:  # a row, or more blank ones than the probe reads:
            return  # the run reads them all (a file of 1,000 blank lines and its rows after them was refused)
        blank_lines += blank
    raise no_rows_said(path, {file_format(probe, f) for f in files}, len(files), blank_lines)


def _first_header(path: str) -> list[str] | None:
    """polars' names of the header of a local file (its first, for a glob or a folder), separator sniffed; None when
    it cannot be read cheaply (a URL, a missing or unreadable file)."""
    if "://" in path:
        return None
    try:
        probe = SourceConfig(name="probe", path=path, time_col="-", target_col="-", freq="1d")
        files = resolve_files(probe)
        return list(_scan_one(probe, files[0]).collect_schema().names())
    except Exception:  # noqa: BLE001 - a courtesy: the command's own reading says what is wrong
        return None


def columns_of(path: str) -> list[str] | None:
    """The columns of a local file (its first, for a glob or a folder) as a source would read them
    (separator sniffed, unnamed cells as `column_<n>`); None when they cannot be read cheaply (a URL,
    a missing or unreadable file). For a message, never for a run."""
    names = _first_header(path)
    if names is None:
        return None
    renames, _ = _header_names(names)
    return [renames.get(c, c) for c in names]


def header_as_written(path: str) -> tuple[list[str], dict[str, list[int]]] | None:
    """The header of a local file (its first, for a glob or a folder) as it is written (a name written twice is
    itself twice, where polars calls the second 'store_duplicated_0'; unnamed cells as `column_<n>`), and the names it
    writes more than once with their 1-based positions; None when it cannot be read cheaply. For a message, never
    for a run."""
    names = _first_header(path)
    if names is None:
        return None
    renames, repeated = _header_names(names)
    written = [renames.get(c, (m.group(1) if (m := _DUPLICATED_RE.match(c)) and m.group(1) in repeated else c))
               for c in names]
    return written, repeated


def typed_time_columns(path: str) -> list[str]:
    """The columns of a local file (its first, for a glob or a folder) whose type is Date or Datetime: a Parquet or
    Arrow IPC file's schema says which hold times (a CSV file's are text: none). [] where it cannot be read cheaply
    (a URL, a missing or unreadable file). For a command's guess of the time column, never for a run."""
    if "://" in path:
        return []
    try:
        schema = _probe_scan(path).collect_schema()
    except Exception:  # noqa: BLE001 - a courtesy: the command's own reading says what is wrong
        return []
    return [c for c, dtype in schema.items() if dtype == pl.Date or isinstance(dtype, pl.Datetime)]


def _probe_scan(path: str) -> pl.LazyFrame:
    """A lazy scan of a local file (its first, for a glob or a folder) as a source reads it, its header cells named
    as `_header_names` names them. For a message, never for a run."""
    probe = SourceConfig(name="probe", path=path, time_col="-", target_col="-", freq="1d")
    scan = _scan_one(probe, resolve_files(probe)[0])
    renames, _ = _header_names(list(scan.collect_schema().names()))
    return scan.rename(renames) if renames else scan


def head_text_of(path: str, columns: list[str], rows: int = 20, *,
                 nulls: bool = False) -> dict[str, list[str]] | None:
    """The first `rows` values (as text, nulls left out; with `nulls`, each null read as '', an empty field, so that
    a column's values are one per row read) of `columns` of a local file, as a source would read them; None when
    they cannot be read cheaply. For a message, never for a run."""
    if "://" in path:
        return None
    try:
        head = _probe_scan(path).select(columns).head(rows).collect()
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - a courtesy (a panic: no hint), the command says why
        return None
    return {c: [str(v).strip() if v is not None else "" for v in head.get_column(c).to_list() if nulls or v is not None]
            for c in columns}


def id_candidates(path: str, time_col: str, rows: int = 200) -> list[tuple[str, str]]:
    """The text columns (name, a value) of a local long file (its times repeat: several series) besides `time_col`:
    the columns that may tell its series apart, for the command line's hint when no --id-col is given (newuser22:
    `flowcast run weekly.csv --time-col date` of a file of stores was told only its columns). [] otherwise."""
    probed = wide_probe(path, time_col, rows, long_only=True)
    return probed[1] if probed is not None else []


def wide_probe(path: str, time_col: str, rows: int = 200, as_of: datetime | None = None, tz: str | None = None,
               time_format: str | None = None, *,
               long_only: bool = False) -> tuple[list[str], list[tuple[str, str]]] | None:
    """(number columns, text columns with a value of each) of a local file besides `time_col`, when no time value is
    written twice (a long file repeats each time once per series): the file is wide (a spreadsheet's export: a date
    column, then one column per series) when there is no text column. A column counts as numbers when 9 in 10 of its
    values in the first `rows` rows are (a typo is quarantined by the run, not taken for an id). None for a file
    whose times repeat (two rows of a time that differ in some column: a row written twice is one), or that cannot
    be read cheaply. For the command line's choice of layout, never for a run.
    With `as_of` (a run's or backfill's), from the rows that may be dated by then (`_written_by`, their times read in
    zone `tz` or by `time_format`): a later row repeating a date, or a later text column, made a backfill read its
    history in another layout than its run had. `long_only`: the columns of a file whose times repeat alone, None for
    one whose do not (`id_candidates`: 'its times repeat' was said of a file of one series).
    Read once per state of the file in a process (`_wide_probed`): a command asked it up to 5 times of one file (its
    layout, the hints of its columns), each a pass over the whole file."""
    if "://" in path:
        return None
    try:
        probe = SourceConfig(name="probe", path=path, time_col=time_col, target_col="-", freq="1d", tz=tz,
                             time_format=time_format)
    except Exception:  # noqa: BLE001 - a courtesy: the run's own reading says what is wrong
        return None
    state = tuple(sorted(source_states(probe).items()))  # (each file's size, times and inode: read again once written)
    probed = _wide_probed(path, state, time_col, rows, as_of, tz, time_format)
    if probed is None or probed.repeated != long_only:
        return None
    return list(probed.numeric), list(probed.text)  # (copies: the cached reading is shared)


class _WideProbed(NamedTuple):
    """What `wide_probe` reads of a file, long or not: whether a time repeats, its number and text columns."""

    repeated: bool
    numeric: tuple[str, ...]
    text: tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=32)
def _wide_probed(path: str, state: tuple[tuple[str, FileState | ObjectState | None], ...], time_col: str, rows: int,
                 as_of: datetime | None, tz: str | None, time_format: str | None) -> _WideProbed | None:
    """`wide_probe`'s reading of `path` in the `state` its files are in (`source_states`: a key of the cache, never
    read here), whatever `long_only` asks; None for a file that cannot be read cheaply."""
    columns = columns_of(path)
    if not columns or time_col not in columns:
        return None
    try:
        probe = SourceConfig(name="probe", path=path, time_col=time_col, target_col="-", freq="1d", tz=tz,
                             time_format=time_format)
        scan = _scan_one(probe, resolve_files(probe)[0])
        renames, _ = _header_names(list(scan.collect_schema().names()))
        scan = scan.rename(renames) if renames else scan
        if as_of is not None:
            scan = _written_by(scan, time_col, probe, as_instant(as_of))
        # (a row written twice is one row, which the run drops as an exact duplicate: no time repeated, as in
        # `series_keys.times_repeat_within`; `date,sales` of a line appended again was asked for --target-col. Nor are two
        # rows of no time, 'NA', which the run quarantines: `_time_written`)
        time = pl.col(time_col)
        time = _time_written(time) if scan.collect_schema().get(time_col) == pl.Utf8 else time
        repeated = (_distinct_rows(scan, [time]).select(pl.col(time_col).drop_nulls().is_duplicated().any())
                    .collect(engine="streaming").item())
        head = scan.head(rows).collect()
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - a courtesy (a panic: no hint), the run says why
        return None
    others = [c for c in head.columns if c != time_col and c not in _unnamed(renames)]  # unnamed: no series
    numeric: list[str] = []
    text_cols: list[tuple[str, str]] = []
    for c in others:
        example = _text_example(head.get_column(c))
        if example is None:
            numeric.append(c)
        else:
            text_cols.append((c, example))
    return _WideProbed(bool(repeated), tuple(numeric), tuple(text_cols))


def _distinct_rows(scan: pl.LazyFrame, keys: list[pl.Expr]) -> pl.LazyFrame:
    """`keys` of the distinct rows of `scan` (a row written twice is one), beside one 64-bit hash of each whole
    row: deduplicating on these, not on every column, kept the probes of a 3-million-row file of text columns from
    holding each row's text (`wide_probe`: 1.6 s and 1.4 GB before, 1.2 s and 0.55 GB). Two differing rows of one
    hash (odds of 1 in 2**64 a pair) would count as one: a courtesy's guess, never a run's reading."""
    named = {key.meta.output_name() for key in keys}
    row = "__row__"
    while row in named:  # a key of that name (a file's own column)
        row += "_"
    return scan.select(*keys, pl.struct(pl.all()).hash().alias(row)).unique()


def _time_key(col: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    """A time of `constant_values`'s files as one text for one instant, however a file writes it: a Parquet
    timestamp and a CSV's ISO text alike ('2024-01-02' for midnight, else '2024-01-02T09:00', seconds where not
    zero). A CSV of dates beside a Parquet file of midnight timestamps (pandas' datetime64) read '2024-01-02' and
    '2024-01-02 00:00:00.000000': a day both wrote with other sales was not seen as written twice, one series said.
    A time with an offset is its UTC instant ('Z', '+00:00', '+0000' alike; '10:00+01:00' is '09:00'), a fraction
    without its trailing zeros ('.000Z' and 'Z', '.50' and '.5'): compared as written, an instant written twice
    was missed (srcB47). No time (null, empty, blank, a missing-value marker: `MISSING_MARKERS`) is null: the
    run quarantines its rows (time_missing), they are no time written twice."""
    day = r"^(\d{4}-\d{2}-\d{2})"
    if isinstance(dtype, (pl.Date, pl.Datetime)):
        text = col.cast(pl.Datetime("us")) if isinstance(dtype, pl.Date) else col
        text = text.dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
    else:
        text = _utc_text(_time_written(col).str.replace(day + " ", "${1}T"))
    return (text.str.replace(day + r"(T\d{2}:\d{2}:\d{2}(?:\.\d*[1-9])?)\.?0*$", "${1}${2}")
            .str.replace(day + r"(T\d{2}:\d{2}):00$", "${1}${2}").str.replace(day + "T00:00$", "${1}"))


def _time_written(col: pl.Expr) -> pl.Expr:
    """A time column's text, stripped; null where it holds no time (empty, blank, a missing-value marker:
    `MISSING_MARKERS`): the run quarantines such a row (time_missing), so two of them are no time written twice
    for the command line's guesses (srcB47: two rows of 'NA' kept a file of one series from being guessed so)."""
    text = col.cast(pl.Utf8).str.strip_chars()
    return pl.when((text != "") & ~text.is_in(MISSING_MARKERS)).then(text)


_OFFSET_TIME_RE = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*([Zz]|[+-]\d{2}(?::?\d{2})?)$"


def _utc_text(text: pl.Expr) -> pl.Expr:
    """An ISO time written with an offset ('2024-01-02T10:00:00+01:00', '...Z', '...+0000') as its UTC instant's
    text ('2024-01-02T09:00:00.000000000'), for `_time_key`; any other text as it is."""
    wall, offset = text.str.extract(_OFFSET_TIME_RE, 1), text.str.extract(_OFFSET_TIME_RE, 2)
    digits = offset.str.replace_all(r"\D", "")
    minutes = (digits.str.slice(0, 2).cast(pl.Int64, strict=False).fill_null(0) * 60
               + digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0))
    signed = pl.when(offset.str.starts_with("-")).then(-minutes).otherwise(minutes)
    instant = pl.coalesce(*(wall.str.to_datetime(f, time_unit="ns", strict=False)
                            for f in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"))) - pl.duration(minutes=signed)
    return pl.coalesce(instant.dt.strftime("%Y-%m-%dT%H:%M:%S%.f"), text)


def _value_key(col: pl.Expr) -> pl.Expr:
    """A value of `constant_values`'s files as one text for one number, however a file writes it: a CSV's '2' and a
    Parquet file's 2.0 alike ('2.0'); text that is no number as written, stripped. Compared as written, the same row
    in a CSV file and a Parquet one ('2' and '2.0') was two rows of one day, which the run reads as one written
    twice (an exact duplicate, dropped): no series was guessed."""
    text = col.cast(pl.Utf8).str.strip_chars()
    return pl.coalesce(text.cast(pl.Float64, strict=False).cast(pl.Utf8), text)


def constant_values(path: str, cols: list[str], time_col: str | None = None,
                    value_cols: tuple[str, ...] = ()) -> dict[str, str] | None:
    """The one value each of `cols` holds in every row of a local file, of every file of a folder or glob
    (`{'store': 'north'}`), None where one of them holds two or an empty or blank cell (an id the run quarantines), or
    a file cannot be read cheaply or lacks a column; each value as the run reads an id (`id_text`). With `time_col`,
    None too where a time is written twice by rows that differ in `time_col`, `cols` or `value_cols` (a row written
    twice is one, which the run drops as an exact duplicate): files of one id whose dates overlap. One lazy scan of
    these columns alone over all the files: a folder of 40 files was named one series, 's0', off its first file's
    rows, and the run read 5 (globs46). For the command line's guess of a file of one series (`Date,store,sales`,
    one store), never for a run."""
    columns = columns_of(path)
    if not cols or not columns or any(c not in columns for c in cols) or "://" in path:
        return None
    others = [c for c in dict.fromkeys([*([time_col] if time_col else []), *value_cols]) if c not in cols]
    try:
        probe = SourceConfig(name="probe", path=path, time_col=cols[0], target_col="-", freq="1d")
        parts = []
        for file in resolve_files(probe):
            scan = _scan_one(probe, file)
            renames, _ = _header_names(list(scan.collect_schema().names()))
            scan = scan.rename(renames) if renames else scan
            # each value as the run reads an id (a Parquet file's ' north' beside 'north' is two series: it was one
            # here); the other columns as text, so that a CSV file and a Parquet one concatenate
            text = file_format(probe, file) == "csv"
            dtypes = scan.collect_schema()
            parts.append(scan.select(*(id_text(pl.col(c), text) for c in cols),
                                     *(_time_key(pl.col(c), dtypes.get(c)) if c == time_col else _value_key(pl.col(c))
                                       for c in others)))
        rows = pl.concat(parts, how="vertical")  # (a file without a column: not found when collected, None)
        # the ids first, alone (their distinct values, a few): a folder of many series is no guess without holding
        # its rows; the times written twice only where one id is in every row (2,000,000 rows of 20 stores held
        # every distinct row, 676 MB, to say None)
        found = rows.select(pl.col(c).unique().head(2).implode().alias(c) for c in cols).collect(
            engine="streaming").row(0, named=True)
        # an empty or blank value is no id: the run quarantines its rows (`id_missing`: empty once stripped, of a
        # Parquet file too, whose blanks it keeps in an id that has other text); a Parquet column of '  ' alone was
        # named the series
        if any(len(values) != 1 or values[0] is None or not values[0].strip() for values in found.values()):
            return None
        # (a row without a time, null here (`_time_key`), is quarantined by the run: no time written twice)
        if time_col is not None and _distinct_rows(rows, [pl.col(c) for c in dict.fromkeys([*cols, time_col])]).select(
                pl.col(time_col).drop_nulls().is_duplicated().any()).collect(engine="streaming").item():
            return None
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - a courtesy (a panic: no hint), the run says why
        return None
    return {c: str(values[0]) for c, values in found.items()}


def _text_example(col: pl.Series) -> str | None:
    """A value of a column that holds text (one of its values that is not a number), None for a column of numbers:
    9 in 10 of its values are (a typo is quarantined by the run, not taken for an id)."""
    if col.dtype.is_numeric():
        return None
    text = col.cast(pl.Utf8).str.strip_chars()
    valued = text.filter(text.is_not_null() & (text != "") & ~text.is_in(MISSING_MARKERS))
    if valued.len() and valued.str.contains(_NUMBER_TEXT_RE).mean() < 0.9:  # type: ignore[operator]
        return str(valued.filter(~valued.str.contains(_NUMBER_TEXT_RE))[0])
    return None
