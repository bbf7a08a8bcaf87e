"""Scanning one file of a source lazily (`_scan_one`: CSV as text, its separator sniffed and its number columns'
decimal commas and thousands read; Parquet and Arrow IPC, dictionary-encoded text as text; an HTTP(S) payload's
bytes), and a wide file (one column per series) melted into long rows (`_melt_wide`).
"""

from __future__ import annotations

import io
from datetime import datetime

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.csv_text import _check_text, _first_line, _raw_head, _sniff_separator, preamble
from flowcast.data.dated_by import _written_by
from flowcast.data.decimals import (
    DecimalPoints,
    Notes,
    _comma_decimals,
    _comma_thousands,
    _read_comma_decimals,
    _read_comma_thousands,
)
from flowcast.data.headers import _header_names, _missing_column_error, _unnamed
from flowcast.data.schemas import ROW
from flowcast.data.source_files import _is_url, _one_line, file_format
from flowcast.errors import DataValidationError


def _dictionary_text(lf: pl.LazyFrame) -> pl.LazyFrame:
    """A Parquet file's dictionary-encoded text columns (Categorical, Enum: pandas' 'category' dtype, Arrow's
    dictionary<string>) as plain text: a date column stored so ('2024-01-01' as a category) failed the run with
    "time column 'day' has type Categorical, which cannot be parsed as a time"; a number stored so is a number."""
    dictionary = [n for n, t in lf.collect_schema().items() if isinstance(t, pl.Categorical | pl.Enum)]
    return lf.with_columns(pl.col(dictionary).cast(pl.Utf8)) if dictionary else lf


def _scan_one(source: SourceConfig, file: str, payload: bytes | None = None,
              notes: Notes | None = None, as_of: datetime | None = None,
              points: DecimalPoints | None = None) -> pl.LazyFrame:
    """A lazy scan of one file; `payload`: its bytes, already read (an HTTP(S) URL); `notes`: column -> what the
    run should say about how its numbers were read (`_read_comma_decimals`), filled for a CSV file. `as_of` (an
    aware instant): a CSV file's decimal marks and thousands separators are decided from its rows that may be dated
    by then (`_written_by`), so that rows written after it do not change how a backfill reads its own numbers.
    `points`: what the file shows of '.' as a decimal point, gathered over a source's files (`DecimalPoints`)."""
    target = (lambda: io.BytesIO(payload)) if payload is not None else (lambda: file)
    if file_format(source, file) == "ipc":
        try:
            lf = pl.read_ipc(target()).lazy() if payload is not None else pl.scan_ipc(file)
            lf.collect_schema()
        except Exception as exc:
            raise DataValidationError(f"cannot read Arrow IPC/Feather file {file}: {_one_line(exc)}") from exc
        return _dictionary_text(lf)
    if file_format(source, file) == "parquet":
        try:
            lf = pl.scan_parquet(target())
            lf.collect_schema()
        except Exception as exc:
            head = payload[:4096] if payload is not None else (b"" if _is_url(file) else _raw_head(file))
            if head and b"\x00" not in head and not head.startswith(b"PAR1"):  # a CSV saved under .parquet
                raise DataValidationError(
                    f"{file} is text, not a Parquet file (its first line: {_first_line(head)!r}): name it .csv, or "
                    "declare the source's format = 'csv'") from exc
            raise DataValidationError(f"cannot read Parquet file {file}: {_one_line(exc)}") from exc
        return _dictionary_text(lf)
    _check_text(file, payload)
    skip, named = preamble(file, payload)

    def scan(separator: str) -> pl.LazyFrame:
        try:
            lf = pl.scan_csv(target(), infer_schema=False, separator=separator, encoding="utf8", raise_if_empty=True,
                             skip_rows=skip)
            lf.collect_schema()
        except pl.exceptions.NoDataError as exc:
            raise DataValidationError(f"{file} is empty (no header, no rows)") from exc
        except Exception as exc:
            raise DataValidationError(f"cannot read CSV file {file}: {_one_line(exc)}") from exc
        return lf

    lf = scan(named or source.separator)
    sniffed = None if named else _sniff_separator(source, lf.collect_schema().names())
    lf = scan(sniffed) if sniffed else lf
    names = lf.collect_schema().names()
    renames, _ = _header_names(names)
    present = {renames.get(c, c): c for c in names}  # a column with no name is declared as column_<position>
    values = (wide_series_columns(list(present), source.time_col, source.exog_cols) if source.layout == "wide"
              else [source.target_col])
    # (statics too: a store's area '1.234,5' in a ';' file was a category; a text static has no such number)
    numeric = [present[c] for c in dict.fromkeys([*values, *source.past_cols, *source.future_cols,
                                                  *source.static_cols]) if c in present]
    time_col = present.get(source.time_col)
    decide = lf if as_of is None or time_col is None else _written_by(lf, time_col, source, as_of)
    try:
        if source.decimal == ",":  # declared: ',' is the decimal mark, '.' and spaces group thousands
            return lf.with_columns(_comma_decimals(pl.col(c), True) for c in numeric)
        if source.decimal == ".":  # declared: '.' is the decimal mark, ',' groups thousands
            return lf.with_columns(_comma_thousands(pl.col(c), True) for c in numeric)
        if (named or sniffed or source.separator) == ";":  # Excel's CSV where ',' is the decimal mark: '3,5' is 3.5
            return _read_comma_decimals(lf, numeric, file, {} if notes is None else notes, source.static_cols,
                                        decide, points)
        return _read_comma_thousands(lf, numeric, file, {} if notes is None else notes, source.static_cols, decide,
                                     points)
    except pl.exceptions.PolarsError:  # unreadable (bytes that are not UTF-8): said where the rows are read
        return lf


def wide_series_columns(columns: list[str], time_col: str, covariates: list[str]) -> list[str]:
    """The series of a wide file: every column of `columns` but its time column and the declared covariates (a
    source's `exog_cols`; the command line's --future-col, --past-col and --static-col), which every series shares."""
    return [c for c in columns if c not in (time_col, *covariates)]


def _melt_wide(source: SourceConfig, file: str, lf: pl.LazyFrame,
               number: bool = False) -> tuple[pl.LazyFrame, list[str]]:
    """A wide file (a time column and one column per series: a spreadsheet's export) as long rows: one per time
    and series column, the column's header in `id_cols[0]` and its value in `target_col` (`layout = "wide"`).
    Declared covariates (future_cols, past_cols) are shared by every series of the row. With `number` (the
    source's only file) the rows carry their source_row: row x series columns + the column's position, so
    that a row's line is source_row // series columns + 2 (`validate._check_examples`), as a long file's is
    source_row + 2; otherwise ingest numbers them in their order (column after column)."""
    names = list(lf.collect_schema().names())
    renames, repeated = _header_names(names)
    found = [renames.get(c, c) for c in names]
    if source.time_col not in found:
        raise _missing_column_error(source, file, [source.time_col], found, _unnamed(renames))
    # a series header written twice: which column is the series? (polars named the second 'north_duplicated_0',
    # which became a series of that name); a declared column written twice is said by _check_file
    twice = {n: p for n, p in repeated.items() if n not in (source.time_col, *source.exog_cols)}
    if twice:
        said = "; ".join(f"{n!r} is column {', '.join(map(str, p[:-1]))} and {p[-1]}" for n, p in twice.items())
        raise DataValidationError(f"{file}: the header names a series more than once ({said}): a wide file's series "
                                  "is named by its column's header, so rename the others in the file")
    # a header cell without a name is not a series: the index pandas writes, an Excel export's empty trailing column
    unnamed = set(_unnamed(renames))
    series = [c for c in wide_series_columns(found, source.time_col, source.exog_cols) if c not in unnamed]
    if not series:
        raise DataValidationError(f"{file}: a wide source needs a column per series beside its time column "
                                  f"{source.time_col!r}; its columns: {', '.join(found)}")
    clash = [c for c in (source.id_cols[0], source.target_col) if c in found]
    if clash:
        raise DataValidationError(
            f"{file}: a wide source melts its series columns into {source.id_cols[0]!r} (the series) and "
            f"{source.target_col!r} (the value), but the file has a column named {clash[0]!r}: name them otherwise "
            "(id_cols = [\"series\"], target_col = \"value\" in [sources.NAME])")
    keep = [c for c in found if c not in series]
    lf = lf.rename({k: v for k, v in renames.items()}) if renames else lf
    schema = lf.collect_schema()
    # one type for the melted values: a Parquet file's numbers stay numbers, text (a CSV) stays text
    numeric = all(schema[c].is_numeric() for c in series)  # (the schema of the renamed frame)
    same = {c: pl.col(c).cast(pl.Float64 if numeric else pl.Utf8) for c in series}
    melted = lf.with_columns(**same)
    if number:
        melted = melted.with_row_index(_WIDE_LINE)
        keep = [*keep, _WIDE_LINE]
    if file_format(source, file) == "csv":
        # an empty line (or ',,') is no row of any series: it stays one melted row with no series name, which
        # ingest's blank-line test skips and counts once, as in a long file (it was one row per series column,
        # each quarantined as time_missing: 2 blank lines of a 2-series file were 4 quarantined rows)
        first, rest = pl.col(found[0]), [pl.col(c) for c in found[1:]]
        text = first.cast(pl.Utf8).str.strip_chars()
        blank = pl.all_horizontal([first.is_null() | (text == ""), *[c.is_null() for c in rest]])
        melted = melted.with_columns(blank.alias(_WIDE_BLANK))
        keep = [*keep, _WIDE_BLANK]
    out = melted.unpivot(index=keep, on=series, variable_name=source.id_cols[0], value_name=source.target_col)
    if file_format(source, file) == "csv":
        out = out.filter(~pl.col(_WIDE_BLANK) | (pl.col(source.id_cols[0]) == series[0]))
    if number:
        position = pl.col(source.id_cols[0]).replace_strict({c: i for i, c in enumerate(series)}, return_dtype=pl.UInt64)
        out = out.select((pl.col(_WIDE_LINE).cast(pl.UInt64) * len(series) + position).cast(pl.UInt32).alias(ROW),
                         pl.exclude(_WIDE_LINE))
    if file_format(source, file) == "csv":
        out = (out.with_columns(pl.when(pl.col(_WIDE_BLANK)).then(None).otherwise(pl.col(source.id_cols[0]))
                                .alias(source.id_cols[0]))
               .drop(_WIDE_BLANK))
    return out, series


_WIDE_BLANK = "__wide_blank_line"
_WIDE_LINE = "__wide_line"
