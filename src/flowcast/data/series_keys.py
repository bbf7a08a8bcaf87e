"""The series key of a local file, for the command line's guesses and hints, never for a run: which columns tell
its series apart (`keyings`: each set of columns as a key by the file's time column, in one pass), whether a time is
written twice within a key (`times_repeat_within`), which times repeat (`repeated_times`), and which undeclared
columns differ between two rows of one key (`columns_telling_apart`). Read as `probes` reads a file (a row written
twice is one); a file that cannot be read cheaply answers None, one whose read makes polars panic too: each probe's
`except` takes polars' PanicException (no Exception) beside any error (a panic in a hint gave an error instead of no
hint)."""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.headers import _header_names
from flowcast.data.probes import _distinct_rows, _probe_scan, _text_example, _time_written, columns_of
from flowcast.data.scan import _scan_one
from flowcast.data.source_files import resolve_files


def columns_telling_apart(path: str, key_cols: list[str], candidates: list[str],
                          rows: int = 200) -> list[str] | None:
    """Of `candidates` (undeclared columns of a local file), those whose value differs between two rows of one key
    (`key_cols`: the declared id and time columns, as the file names them), text columns first: the columns that may
    complete the series' id, for the hint on duplicate rows (newuser29: `--id-col item` of a file keyed by store and
    item was offered 'store', 'holiday', 'region', the file's first three other columns, a 0/1 holiday flag equal
    on both rows among them); a column is text as `wide_probe` tells it, from its first `rows` rows. None when the
    file cannot be read cheaply (a URL, an unreadable file). For a message, never for a run."""
    if "://" in path:
        return None
    try:
        scan = _probe_scan(path)
        schema = scan.collect_schema()
        cols = [c for c in dict.fromkeys(candidates) if c in schema and c not in key_cols]
        if not cols or any(k not in schema for k in key_cols):
            return None
        differs = (scan.select(*key_cols, *cols).group_by(key_cols)
                   .agg([(pl.col(c).drop_nulls().n_unique() > 1).alias(c) for c in cols])
                   .select([pl.col(c).any() for c in cols]).collect(engine="streaming").row(0, named=True))
        apart = [c for c in cols if differs[c]]
        head = scan.select(apart).head(rows).collect() if apart else pl.DataFrame()
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - a courtesy: the hint uses other columns
        return None
    # text columns first (stable: the file's order within each kind)
    return sorted(apart, key=lambda c: _text_example(head.get_column(c)) is None)


def times_repeat_within(path: str, time_col: str, key_cols: list[str]) -> bool | None:
    """Whether a time of column `time_col` of a local file is written twice within one value of `key_cols` (the
    series are keyed by more columns than these: 'store' beside 'sku') by rows that differ in some column: a row
    written twice (an export appending a line again) is one row, which the run drops as an exact duplicate
    (`validate`'s rows_duplicate), and kept 'store' from being guessed. None for a file that cannot be read cheaply.
    For the command line's guess of the series column, never for a run."""
    each = times_repeat_within_each(path, time_col, [key_cols])
    return None if each is None else each[0]


def times_repeat_within_each(path: str, time_col: str, key_sets: list[list[str]]) -> list[bool] | None:
    """`times_repeat_within` of each of `key_sets`, in one pass over the file, its rows deduplicated once (a pass per
    set made the `--id-col` hint's search, `cli.common._fewest_keying`, read a file 26 times: revC44). None for a
    file that cannot be read cheaply, or one without a column named."""
    counts = keyings(path, time_col, key_sets)
    return None if counts is None else [k.repeated > 0 for k in counts]


def repeated_times(path: str, time_col: str) -> tuple[int, str] | None:
    """(how many times are written twice, the first of them as written) of column `time_col` of a local file, by
    rows that differ in some column (a row written twice is one, dropped by the run as an exact duplicate); None where
    no time repeats or the file cannot be read cheaply. For the command line's hint of why a file of one time column
    and one number column is not read as one series (session 50: a time+value file whose wall times repeat where
    daylight saving ends was asked for --target-col, the repeated time named nowhere). Never for a run."""
    columns = columns_of(path)
    if not columns or time_col not in columns or "://" in path:
        return None
    try:
        scan = _probe_scan(path)
        time = pl.col(time_col)
        time = _time_written(time) if scan.collect_schema().get(time_col) == pl.Utf8 else time.cast(pl.Utf8)
        rows = (scan.select(time.alias("__time__"), pl.struct(pl.all()).hash().alias("__row__")).with_row_index("__at__")
                .unique(["__time__", "__row__"], keep="first"))  # (a row written twice is one)
        found = (rows.drop_nulls("__time__").filter(pl.col("__time__").is_duplicated())
                 .group_by("__time__").agg(pl.col("__at__").min()).sort("__at__").collect(engine="streaming"))
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - a courtesy (a panic: no hint), the run says why
        return None
    return (found.height, str(found.item(0, "__time__"))) if found.height else None


class Keying(NamedTuple):
    """What a set of columns of a file makes of its rows as a series key (`keyings`): `repeated`, its rows whose time
    another differing row of their key holds too (0: the set keys the file); `keys`, its distinct values (the series
    it makes: an id is constant over a series' time, a column varying with the time, 'weather', splits each series
    into many)."""

    repeated: int
    keys: int


def keyings(path: str, time_col: str, key_sets: list[list[str]]) -> list[Keying] | None:
    """The `Keying` of each of `key_sets` of a local file by its time column `time_col`, in one pass over the file,
    its rows deduplicated once (a row written twice is one, as `times_repeat_within` counts). None for a file that
    cannot be read cheaply, or one without a column named. For the command line's guess of the series columns,
    never for a run."""
    columns = columns_of(path)
    named = {time_col, *(c for cols in key_sets for c in cols)}
    if not columns or any(c not in columns for c in named) or "://" in path:
        return None
    try:
        probe = SourceConfig(name="probe", path=path, time_col=time_col, target_col="-", freq="1d")
        scan = _scan_one(probe, resolve_files(probe)[0])
        renames, _ = _header_names(list(scan.collect_schema().names()))
        scan = scan.rename(renames) if renames else scan
        # each set's (time, key) and key by their hashes: 64-bit numbers, not the key's text, held per distinct row
        sets = [pl.struct(time_col, *cols).hash().alias(f"set{i}") for i, cols in enumerate(key_sets)]
        keys = [(pl.struct(*cols).hash() if cols else pl.lit(0, pl.UInt64)).alias(f"key{i}")
                for i, cols in enumerate(key_sets)]
        rows = _distinct_rows(scan.filter(pl.col(time_col).is_not_null()), [*sets, *keys])
        found = rows.select(*[pl.col(f"set{i}").is_duplicated().sum() for i in range(len(key_sets))],
                            *[pl.col(f"key{i}").n_unique() for i in range(len(key_sets))]
                            ).collect(engine="streaming").row(0)
        return [Keying(int(found[i]), int(found[len(key_sets) + i])) for i in range(len(key_sets))]
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - a courtesy (a panic: no hint), the run says why
        return None
