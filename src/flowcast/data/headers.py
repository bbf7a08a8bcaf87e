"""A file's header: its column names as polars reads them (a name written twice, an unnamed cell), and the errors
that name a missing, renamed or undeclared column, a header that is not UTF-8, or a header below a title line.
"""

from __future__ import annotations

import difflib
import glob
import re
from pathlib import Path

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.csv_text import _OTHER_SEPARATORS, _head_bytes, first_invalid_utf8, not_utf8_error
from flowcast.data.schemas import RAW_PREFIX, ROW
from flowcast.data.source_files import _is_url
from flowcast.errors import DataValidationError
from flowcast.wording import noun, plural


# ------------------------------------------------------------------------------------ mapping
def _declared(source: SourceConfig) -> list[str]:
    return [*source.id_cols, source.time_col, source.target_col, *source.exog_cols]


def _header_not_utf8_error(file: str, found: list[str]) -> DataValidationError:
    """A header read with replacement characters: the file is not UTF-8, which the missing column
    it causes ("'Qté' (renamed to 'Qt\ufffd'?) missing") does not say."""
    return not_utf8_error(file, None if _is_url(file) else first_invalid_utf8(file), found)


def _missing_column_error(source: SourceConfig, file: str, missing: list[str], found: list[str],
                          unnamed: list[str] | None = None) -> DataValidationError:
    parts = []
    for col in missing:
        close = difflib.get_close_matches(col, found, n=1, cutoff=0.6)
        hint = f" (renamed to {close[0]!r}?)" if close else ""
        parts.append(f"{col!r}{hint}")
    note = (f" ({', '.join(unnamed)}: header cells with no name, called by their position; declare one by that "
            "name or write a name in the header)") if unnamed else ""
    # a line before the header: Excel's 'sep=,' (read as the columns 'sep=' and column_2), a '# exported by' comment
    first = found[0].strip() if found else ""
    if re.fullmatch(r"sep=.?", first):
        note = " (its first line is Excel's separator line 'sep=...', not the header: remove it, the header must be first)"
    elif first.startswith("#"):
        note = " (its first line is a comment, not the header: remove the lines before the header)"
    elif (below := _header_below(file, [*missing, *(c for c in _declared(source) if c in found)])) is not None:
        line, text = below
        note = (f" (the declared columns are the header of line {line}, {text!r}: remove the "
                f"{plural(line - 1, 'line')} above "
                "it, a report's title, or start each with '#': comment lines before the header are skipped)")
    elif (source.time_col in missing and source.target_col in missing and source.id_cols
          and all(c in found for c in source.id_cols) and (statics := [c for c in found if c not in source.id_cols])):
        note = _statics_table_note(source, file, statics, table=True)
    elif (missing and set(missing) <= set(source.static_cols) - set(found)
          and not any(difflib.get_close_matches(c, found, n=1, cutoff=0.6) for c in missing)):  # (not a typo)
        note = _statics_table_note(source, file, missing, table=False)
    return DataValidationError(
        f"{file}: declared {noun(len(parts), 'column')} {', '.join(parts)} missing; the file has "
        f"columns {found}{note}"
    )


def _statics_table_note(source: SourceConfig, file: str, statics: list[str], *, table: bool) -> str:
    """A file of the id column(s) and other columns, without a time or a target (`stores.csv`: store, type, size), is
    a table of one row per series beside the history (`table`); a file with the time and target but without declared
    statics is the history beside such a table. flowcast reads a static from the data rows (each series' first
    value), so the table is to be joined onto them: the note gives the polars line that does it (ids read as text,
    as flowcast reads them), with the other file's name where the source has one other file (newuser22: a glob of
    history.csv and stores.csv was told only that 'date' and 'sales' were missing from stores.csv, or with --freq
    that 'type' and 'size' were missing from history.csv)."""
    import json
    import shlex

    others = [] if _is_url(source.path) else [f for f in sorted(glob.glob(source.path)) if Path(f) != Path(file)]
    other = others[0] if len(others) == 1 else None
    history, statics_file = (other or "history.csv", file) if table else (file, other or "statics.csv")

    def text(v: str) -> str:  # a Python literal in double quotes: shlex wraps the program in single ones as written
        return json.dumps(v, ensure_ascii=False)

    program = (f"import polars as pl; pl.read_csv({text(history)}, infer_schema=False).join(pl.read_csv("
               f"{text(statics_file)}, infer_schema=False), on=[{', '.join(map(text, source.id_cols))}], how=\"left\")"
               ".write_csv(\"with_statics.csv\")")
    what = (f"it holds the id {noun(len(source.id_cols), 'column')} and "
            f"{', '.join(map(repr, statics))}, without a time or a target: a table of "
            "one row per series?" if table else
            f"its rows hold no static {', '.join(map(repr, statics))}: are they in a table of one row per series?")
    return (f" ({what} statics (--static-col) are read from the data rows, each series' first value: join the table "
            f"onto the history, {'' if other else 'e.g. '}python -c {shlex.quote(program)}, and read "
            "with_statics.csv alone)")


def _header_below(file: str, declared: list[str] | None, lines: int = 30) -> tuple[int, str] | None:
    """(line number, text) of the first of a CSV file's first `lines` lines, after the first, whose fields hold
    every declared column: the header, below a report's title lines ('Sales report Q1 2024', 'Generated ...'),
    which were read as the header ("declared column(s) ... missing; the file has columns ['Sales report Q1
    2024']", and the header the reader had to find). `declared` None: the first line of two fields or more, each
    a name (not empty, not a number). None when no such line (or the file cannot be read)."""
    import csv

    try:
        head = _head_bytes(file).removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").splitlines()
    except DataValidationError:
        return None
    want = set(declared or [])
    for n, text in enumerate(head[1:lines], start=2):
        for sep in (",", *_OTHER_SEPARATORS):
            fields = [f.strip() for f in next(csv.reader([text], delimiter=sep), [])]
            if want <= set(fields) if declared is not None else (
                    len(fields) > 1 and all(f and not re.match(_NUMBER_TEXT_RE, f) for f in fields)):
                return n, text.strip()
    return None


_DUPLICATED_RE = re.compile(r"^(.*)_duplicated_(\d+)$")  # polars' name for a header cell seen before


def _header_names(found: list[str]) -> tuple[dict[str, str], dict[str, list[int]]]:
    """The header as the file wrote it, from polars' names: a cell with no name ('' and polars'
    '_duplicated_N' for the next ones: an index column pandas wrote, the empty cells of an Excel export)
    -> `column_<position>` (1-based, as a spreadsheet counts), a name with blanks around it (' store' of
    'date, store, sales') -> the name without them, and the names written more than once ->
    their positions (polars reads the second 'units' as 'units_duplicated_0')."""
    renames: dict[str, str] = {}
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(found, start=1):
        dup = _DUPLICATED_RE.match(name)
        written = dup.group(1) if dup and dup.group(1) in found[: i - 1] else name
        positions.setdefault(written, []).append(i)
        if written == "" or not written.strip():
            taken = set(found) | set(renames.values())
            renames[name] = next(n for n in (f"column_{i}", f"unnamed_{i}", f"column_{i}_unnamed") if n not in taken)
        elif written != written.strip() and not dup and written.strip() not in [*found, *renames.values()]:
            # 'date, store, sales' (a space after each comma): the blanks are formatting, as they are in values
            renames[name] = written.strip()
    return renames, {n: p for n, p in positions.items() if len(p) > 1 and n.strip()}


def _unnamed(renames: dict[str, str]) -> list[str]:
    """The names `_header_names` gave header cells with no name (`column_<position>`), not the names it only
    stripped of blanks (' north' -> 'north': a series of a wide file, a declared column)."""
    return [new for old, new in renames.items() if old.strip() != new]


_NUMBER_TEXT_RE = r"^[-+]?(\d[\d.,\u00a0\u202f ]*|[.,]\d+)([eE][-+]?\d+)?$"  # '3.5', '3,5', '1.234,56', '1e3'


def _check_file(source: SourceConfig, file: str, lf: pl.LazyFrame,
                plan_file_ok: bool = False) -> tuple[pl.LazyFrame, list[str]]:
    """Declared columns present (strict: nothing else); returns the raw columns as __raw__<name>. With
    `plan_file_ok` (a source of several files) a file without the target that holds a declared future covariate is
    a file of planned values (a weather forecast beside the history): its target is empty."""
    schema = lf.collect_schema()
    renames, repeated = _header_names(list(schema.names()))
    found = [renames.get(c, c) for c in schema.names()]
    declared = _declared(source)
    twice = {c: repeated[c] for c in dict.fromkeys(declared) if c in repeated}
    if twice:  # which one would the run read? polars' first, silently
        said = "; ".join(f"{c!r} is column {', '.join(map(str, p[:-1]))} and {p[-1]}" for c, p in twice.items())
        raise DataValidationError(
            f"{file}: the header names a declared column more than once ({said}): rename the others in the file "
            "so that it is clear which one to read"
        )
    missing = [c for c in dict.fromkeys(declared) if c not in found]
    if (plan_file_ok and missing == [source.target_col] and any(c in found for c in source.future_cols)
            and not any(c.strip().lower() == source.target_col.strip().lower() for c in found)):  # ('Demand': a typo)
        # planned covariates kept in their own file ('weather_forecast.csv': date, tmax) were refused as "declared
        # column 'demand' missing"; the files are concatenated diagonally, so its target is null (not observed)
        missing = []
    if missing and any("\ufffd" in c for c in found):  # a header that is not UTF-8 ('Qté' in Windows-1252)
        raise _header_not_utf8_error(file, found)
    if missing:
        unnamed = _unnamed(renames)
        raise _missing_column_error(source, file, missing, found, unnamed)
    undeclared = [c for c in found if c not in declared and c != ROW]
    if source.strict and undeclared:
        raise DataValidationError(
            f"{file}: undeclared {noun(len(undeclared), 'column')} {undeclared} in strict source "
            f"{source.name!r} (schema drift); "
            f"declared: {declared}"
        )
    return lf.select([pl.col(c) if c == ROW else pl.col(c).alias(RAW_PREFIX + renames.get(c, c))
                      for c in schema.names()]), undeclared
