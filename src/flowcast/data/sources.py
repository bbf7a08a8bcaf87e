"""Ingestion: read a declared source lazily and map its raw columns to the canonical ones.

`ingest(source, as_of)` scans the file(s) (CSV, gzipped CSV or Parquet; a path, a glob or a URL)
with polars, maps id/time/target/exogenous columns onto `unique_id`, `ds`, `y` and the declared
covariate names, and keeps only rows with `ds <= as_of` (or an unparsable time, which validation
quarantines) before anything is collected, plus the planned rows: rows after as_of that carry a
value of a declared future-known covariate (`future_cols`: prices, promotions, weather forecasts)
keep those values, with their target, past covariates and statics nulled (not known at as_of), so the
forecast sees what was planned instead of the last value carried forward. Nothing is read here beyond file headers: the result
is a LazyFrame plan that validation collects once.

The steps are modules of one concern each, which `ingest` puts together: a source's files and their states
(`source_files`), URLs and fingerprints (`remote`), a CSV file's text (`csv_text`), its header (`headers`), the lazy
scan of one file and wide files (`scan`), a value's text and numbers (`value_text`, `decimals`), text times
(`time_text`, `day_month`, `time_read`), zones and time labels (`zones`), planned rows and aggregated periods
(`periods`). What a command learns of a file without a run is `probes`'; the per-file decisions a process keeps, the
column mapping, the reading of a time column's first values (`parses_as_times`) and the checks of a declaration are
here.

Dataset-level problems (missing file, binary or non-UTF-8 content, missing or renamed column,
undeclared column in a strict source, a column type that cannot be cast) raise
`DataValidationError` naming the file and the column.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeVar, cast

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.calendar import is_subdaily
from flowcast.data.csv_text import blank_line, preamble
from flowcast.data.dated_by import _after_every_reading, _dated_by, _latest_wall, _written_by
from flowcast.data.day_month import (
    DayMonth,
    TimeProfile,
    _day_month_per_file,
    _day_month_spaced_per_file,
    _orders_by_rows,
    _time_profile,
    quarter_numbers_note,
)
from flowcast.data.decimals import DecimalPoints, Notes
from flowcast.data.headers import _check_file
from flowcast.data.panics import failing_file, panics_named
from flowcast.data.periods import _within_as_of, as_of_bound, observed_at, period_not_over, planned_row
from flowcast.data.probes import _probe_scan, _text_example, columns_of
from flowcast.data.remote import _fingerprint, read_url
from flowcast.data.scan import _dictionary_text, _melt_wide, _scan_one
from flowcast.data.schemas import (
    DAY_MONTH_RE,
    DS_OFFSET,
    DS_RAW,
    DS_SEEN,
    NOT_OVER,
    RAW_PREFIX,
    ROW,
    TIME_AWARE,
    TIME_LOCAL_ISSUE,
    naive_beside_offsets,
)
from flowcast.data.source_files import (
    FILE_INDEX,
    FileState,
    _is_http,
    _is_url,
    check_file_zone,
    file_format,
    local_files,
    resolve_files,
    source_states,
)
from flowcast.data.time_read import TIME_STAGE, _parse_time
from flowcast.data.value_text import (
    MISSING_MARKERS,
    _flag_words,
    _has_value,
    _number,
    id_text,
    yes_no_columns,
)
from flowcast.data.zones import (
    _aware_midnight,
    _grid_anchor,
    _grid_start,
    _offset_midnight,
    label_to_start,
    seen_to_start,
)
from flowcast.errors import DataValidationError
from flowcast.timekeys import as_instant, wall_time
from flowcast.wording import noun, plural

_READ_BACK_ROWS = 1 << 20  # rows of a Parquet source decoded at once when quarantined rows are read back


@dataclass
class Ingested:
    """A lazily mapped source: the plan plus what is known about it without reading the data.

    `frame` holds, per raw row: `source_row`, `unique_id`, `ds` (aligned), `y` (Float64 or null),
    the declared exogenous columns (past/future as Float64, static as read), the internal
    `__ds_raw` / `__ds_aware` columns (and `__not_over`, `Ingested.not_over`) and every raw column as
    `__raw__<name>` (original values, for the quarantine). It is already filtered to `ds <= as_of` (unparsable times kept) plus the
    planned rows after as_of (declared future covariates only, y null: `_within_as_of`).
    `unfiltered` is the same plan before the as_of filter (validation counts rows after as_of on it).
    """

    frame: pl.LazyFrame
    unfiltered: pl.LazyFrame
    source: SourceConfig
    as_of: datetime | None  # the run's instant (aware UTC), None when the run sees everything
    as_of_ds: datetime | None  # the same instant on this source's ds axis (timekeys.as_of_on_ds)
    fingerprint: str  # identity of the content read (declaration + a digest per file, `_fingerprint`)
    files: list[str]
    raw_columns: list[str]
    undeclared: list[str]
    tz_mixed_possible: bool = False
    numeric_exog: list[str] = field(default_factory=list)
    raw: pl.LazyFrame | None = None  # source_row + __raw__ columns, before mapping
    # the rows of `raw` that decide how a text column of day/month dates reads (its order, a two-digit year first):
    # those that may be dated by as_of, whatever the order (`_dated_by`); `raw` itself without an as_of
    by_as_of: pl.LazyFrame | None = None
    # the profile of the text time column (`day_month._time_profile` at the source's freq) of every row of `raw`, and
    # of the rows of `by_as_of` (its order is the one read): what a reading of the same rows reuses (`freq_infer`);
    # None for a typed column or one with a time_format
    time_profile: TimeProfile | None = None
    by_as_of_profile: TimeProfile | None = None
    mapping: list[list[pl.Expr]] = field(default_factory=list)  # with_columns stages: raw -> canonical
    blank: pl.Expr | None = None  # CSV: true on empty/whitespace-only lines, which are skipped (and counted)
    wide_columns: list[str] = field(default_factory=list)  # layout "wide": the columns read as series
    preamble_lines: int = 0  # one CSV file: the lines before its header that were skipped (`preamble`)
    # how numbers were read where their column did not prove it ('1.234' alone: 1234 or 1.234?), once per column
    number_notes: list[str] = field(default_factory=list)
    # a text time column of year-numbers 1 to 4 alone ('2017-1' .. '2023-4'): read as months, maybe quarters
    # (`quarter_numbers_note`)
    quarter_note: str | None = None
    # with an as_of: true on a row whose time the column's order cannot read ('16/01/2024' where the rows by as_of
    # read month first) but whose every reading is after as_of's date (`_after_every_reading`): after as_of, as a
    # row read after it is, not quarantined
    later: pl.Expr = field(default_factory=lambda: pl.lit(False))
    # whether a row's DS_SEEN can differ from its DS_RAW (`_seen_apart`: a daily or coarser time written with an
    # offset); False: an aggregated source's cut needs no window over (series, period) (`period_not_over`'s `apart`)
    seen_apart: bool = True
    # a daily or coarser source with a tz whose times may carry an offset: `DS_OFFSET` holds, on such a row, the
    # zone's offset at its instant (its `DS_RAW` is its wall time there), which orders a period's rows by instant
    # (`validate._instant_order`: the repeated autumn hour)
    zone_offsets: bool = False

    def rows(self, source_rows: pl.Series, window_rows: int = _READ_BACK_ROWS) -> pl.DataFrame:
        """The mapped rows with these source_row numbers (read back from the source, mapped after
        filtering so that only those rows are parsed). A single Parquet file is read back one
        window of rows at a time (the reader skips the row groups outside it), so that only a
        window is decoded at once, not the whole file."""
        windows: list[tuple[pl.LazyFrame, pl.Series]] = []
        if (self.raw is not None and len(self.files) == 1 and not _is_http(self.files[0]) and not self.wide_columns
                and file_format(self.source, self.files[0]) == "parquet"):
            scan = _dictionary_text(pl.scan_parquet(self.files[0], row_index_name=ROW))  # the rows and numbers of `raw`
            scan = scan.select(ROW, *[pl.col(c).alias(RAW_PREFIX + c) for c in self.raw_columns])
            window = source_rows // window_rows
            for w in window.unique().sort().to_list():
                windows.append((scan.slice(w * window_rows, window_rows), source_rows.filter(window == w)))
        else:
            windows.append((self.raw if self.raw is not None else self.unfiltered, source_rows))
        parts = []
        for base, wanted in windows:
            picked = base.filter(pl.col(ROW).is_in(wanted.implode()))
            picked = _mapped(picked, self.mapping if self.raw is not None else [])
            with self.panics_named():
                parts.append(picked.collect(engine="streaming"))  # morsel by morsel
        return parts[0] if len(parts) == 1 else pl.concat(parts)

    @property
    def label(self) -> str:
        return self.files[0] if len(self.files) == 1 else f"{self.source.path} ({len(self.files)} files)"

    def panics_named(self) -> AbstractContextManager[None]:
        """`panics.panics_named` of the reads of this source (`label`): a glob's panic names the file of it that
        fails read whole alone, where one does (its local files only, probed only after the panic: an object store's,
        s3:// or gs:// as much as https://, would be downloaded whole again; a file:// glob's files as a local
        glob's, `local_files`: it was one URL, none of its files read again)."""
        files, read = self._files_alone()
        return panics_named(self.label, files=files, read=read)

    def failing_file(self) -> str | None:
        """After a read of this source failed with an ordinary error (`validate._collect`): the file of its glob or
        folder (a file:// one's too) that fails read whole alone, as a panic's is named (`panics.failing_file`); None
        where each reads, or it is one file."""
        files, read = self._files_alone()
        return failing_file(self.label, files, read)

    def _files_alone(self) -> tuple[Callable[[], list[str]], Callable[[str], object]]:
        """The local files of this source as it names them (`local_files`, listed when first asked: after a failure
        only) and a read of one of them whole alone."""
        local = functools.cache(lambda: local_files(self.files))
        return (lambda: list(local())), (lambda file: _scan_one(self.source, local()[file]).collect(engine="streaming"))

    def not_over(self) -> pl.Expr:
        """`period_not_over` at as_of (False without one): the column `NOT_OVER` of `frame` and `unfiltered` where
        ingest computed its window over (series, period) once, for the cut and for validate's counts of the same
        plan (each use of the expression computed the window again: validating 4.3M hourly rows with an offset
        grouped them twice, `bench/aggregate_pit.py --variant zoned`), else the expression."""
        if self.as_of_ds is None:
            return pl.lit(False)
        if NOT_OVER in self.unfiltered.collect_schema():
            return pl.col(NOT_OVER)
        return period_not_over(self.source, self.as_of_ds, self.seen_apart)


_PER_FILE_CACHED = 32  # the per-file decisions kept in a process (`_per_file_decided`)
_per_file_cache: dict[tuple[str, ...], object] = {}
_Decided = TypeVar("_Decided")


_WHOLE_HASHED = 1 << 20  # a file up to this size is hashed whole in a per-file key (`_bytes_key`) ...
_EDGE_HASHED = 1 << 16  # ... a larger one, its first and last this many bytes


def _per_file_key(source: SourceConfig, files: list[str], as_of: datetime | str | None,
                  order: str | None, *, freq: bool = True) -> tuple[str, ...] | None:
    """What the per-file day/month orders of a glob's `files` depend on: `source` as configured (but its `freq` where
    not `freq`: `_orders_by_rows`), `as_of`, the order
    its files settled together (`order`; None: none) and each file's state (`source_states`: its size, times and
    inode, so a file written again is read again) and bytes (`_bytes_key`: a filesystem of coarse times, FAT's 2 s,
    kept one state for a file rewritten within one tick, its size the same: '01/13' for '13/01'). None where a file
    has no such state (a URL) or no bytes key: not cached."""
    states = source_states(source)
    if any(_is_url(f) or states.get(f) is None for f in files):
        return None
    hashed = [_bytes_key(f, states[f]) for f in files]  # type: ignore[arg-type]
    if any(h is None for h in hashed):
        return None
    said = source.model_dump_json(exclude=None if freq else {"freq"})
    return (said, str(as_of), str(order), repr(sorted(states.items())), repr(hashed))


def _bytes_key(path: str, state: FileState) -> str | None:
    """A hash of the local file `path`'s bytes, for `_per_file_key`: all of them up to `_WHOLE_HASHED` bytes, else
    its first and last `_EDGE_HASHED` (a big file is not read whole for this). None for a file not read whole whose
    modification time is a whole second (`state`: a filesystem of coarse times, or one set so): written again
    within one tick, in its middle alone, nothing would tell; and for a file that cannot be read (ingest says why)."""
    size, mtime_ns = state[0], state[1]
    if size > _WHOLE_HASHED and mtime_ns % 1_000_000_000 == 0:
        return None
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            if size <= _WHOLE_HASHED:
                digest.update(fh.read())
            else:
                digest.update(fh.read(_EDGE_HASHED))
                fh.seek(max(size - _EDGE_HASHED, 0))
                digest.update(fh.read())
    except OSError:
        return None
    return digest.hexdigest()


def _per_file_decided(key: tuple[str, ...] | None, decide: Callable[[], _Decided]) -> _Decided:
    """`decide()`, the per-file day/month orders of a glob, read once per `key` (`_per_file_key`) in a process: a
    command ingests a folder up to 3 times (the time column's guess, the frequency's, the run), and each profiled
    every file's time column again (200 small files: ~20 s each)."""
    if key is None:
        return decide()
    if key not in _per_file_cache:
        if len(_per_file_cache) >= _PER_FILE_CACHED:
            _per_file_cache.pop(next(iter(_per_file_cache)))  # the oldest
        _per_file_cache[key] = decide()
    decided = cast(_Decided, _per_file_cache[key])
    return cast(_Decided, dict(decided)) if isinstance(decided, dict) else decided  # (a copy: the cached one is shared)


def parses_as_times(path: str, col: str, rows: int = 20) -> bool:
    """Whether column `col` of a local file reads as times as a run reads them (`ingest`): 9 in 10 of the values in
    its first `rows` rows (a typo is quarantined by the run, not a reason to refuse the column). False for a file
    with no other column, or that cannot be read cheaply. For the command line's guess of the time column ('date',
    'month' holding 'Jan 2024', not 'period' holding 'spring'), never for a run."""
    columns = columns_of(path)
    other = next((c for c in columns or [] if c != col), None)
    if other is None or col not in (columns or []):
        return False
    try:  # read as a long source whose target is another column: its times are parsed as the run parses them
        probe = SourceConfig(name="probe", path=path, time_col=col, target_col=other, freq="1d")
        files = resolve_files(probe)
        # its first file alone (a folder of 200 files was read whole for 20 rows); the whole glob only where some of
        # those rows are day/month dates it leaves unread: other files may settle the order those rows are read in; or
        # where it has fewer such rows (a header alone: a day without sales), the glob's first rows then its others'
        # (a panic of polars too, an error here: a courtesy never ends the command)
        with panics_named(path):
            head = _parsed_head(probe.model_copy(update={"path": files[0]}), col, rows)
            if len(files) > 1 and not _times_read(head) and (
                    head.height < rows or head.get_column("raw").str.contains(DAY_MONTH_RE).any()):
                head = _parsed_head(probe, col, rows)
    except Exception:  # noqa: BLE001 - a courtesy: the column is not guessed, the command asks for --time-col
        return False
    return _times_read(head)


def times_by_values(path: str, taken: tuple[str | None, ...], rows: int = 20, most: int = 20) -> list[str]:
    """The columns of a local file (not among `taken`) whose values read as times (`parses_as_times`) whatever their
    names ('day_of_sale' of '2024-01-01'): the likely time column of a file whose command named none and whose
    column names did not say it. Of its first `most` text columns: a number column is no time here (an id of 1001 or
    an amount of 2020.0 reads as a year). [] where the file cannot be read cheaply. For a message, never for a run."""
    if "://" in path:
        return []
    try:
        with panics_named(path):  # (a panic of polars too, an error here: it escaped `except Exception`)
            head = _probe_scan(path).head(rows).collect()
    except Exception:  # noqa: BLE001 - a courtesy: the command asks for --time-col, naming the columns
        return []
    texts = [c for c in head.columns if c not in taken and _text_example(head.get_column(c)) is not None]
    return [c for c in texts[:most] if parses_as_times(path, c, rows)]


FIRST_ROWS_ENGINE: Final = "in-memory"  # the engine that reads the first rows of an ingest plan (`first_rows`)


def first_rows(plan: pl.LazyFrame, rows: int) -> pl.DataFrame:
    """The first `rows` rows of `plan`, a plan over `ingest`'s frame, read by polars' in-memory engine: its streaming
    engine panicked ('assertion failed: pipe.send_state == PortState::Done', polars 2.1) when the head ended its read
    early above the times' parse, which reads the whole column (`distinct.per_distinct`), once the file had a few
    hundred thousand rows (1,000 series of 1,000 days: `flowcast run --data` crashed guessing the time column, and
    inferring the frequency). The whole column is parsed either way; the in-memory engine took 1.0 s for 20 rows of
    1,000,000, peak RSS 210 MB."""
    return plan.head(rows).collect(engine=FIRST_ROWS_ENGINE)


def _parsed_head(probe: SourceConfig, col: str, rows: int) -> pl.DataFrame:
    """The first `rows` rows of `probe` with a value in its time column `col`: that value as written ('raw') and as
    the run reads it ('t': null where it does not)."""
    raw = pl.col(RAW_PREFIX + col).cast(pl.Utf8).str.strip_chars()
    return (first_rows(ingest(probe, None).frame.select(raw.alias("raw"), pl.col(DS_RAW).alias("t")), rows)
            .filter(pl.col("raw").is_not_null() & (pl.col("raw") != "")
                              & ~pl.col("raw").is_in(MISSING_MARKERS)))


def _times_read(head: pl.DataFrame) -> bool:
    """Whether 9 in 10 of the values of `head` (`_parsed_head`) read as times (a typo is quarantined by the run)."""
    parsed = head.get_column("t").is_not_null().mean()
    return head.height > 0 and isinstance(parsed, float) and parsed >= 0.9


def _mapping(source: SourceConfig, schema: pl.Schema, label: str, text: bool,
             day_month: DayMonth = None, traits: frozenset[str] = frozenset(),
             yes_no: frozenset[str] = frozenset(), as_of: datetime | None = None
             ) -> tuple[list[list[pl.Expr]], bool, bool]:
    """Expressions (with_columns stages) computing the canonical columns from __raw__ ones (`as_of`: the run's
    instant, for the decisions that read the rows that may be dated by it, `_localize`), whether a row's
    `DS_SEEN` can differ from its `DS_RAW` (`_seen_apart`), and whether `DS_OFFSET` holds the zone's offset of a
    daily time of a tz written with one (`Ingested.zone_offsets`)."""
    raw_schema = {name.removeprefix(RAW_PREFIX): dtype for name, dtype in schema.items()}
    numeric_exog = [*source.past_cols, *source.future_cols]
    stages: list[list[pl.Expr]] = []
    if text:  # CSV: an empty quoted field ("", as csv.QUOTE_ALL writes a missing value) or blanks hold no value,
        # nor does a number written as a missing-value marker (R's write.csv writes NA, Excel #N/A, SQL NULL)
        valued = dict.fromkeys([source.time_col, source.target_col, *numeric_exog])
        stages.append([pl.when(_has_value(pl.col(RAW_PREFIX + c), marker=c != source.time_col))
                       .then(pl.col(RAW_PREFIX + c)).alias(RAW_PREFIX + c) for c in valued])
    if source.id_cols:
        parts = [id_text(pl.col(RAW_PREFIX + c), text) for c in source.id_cols]
        uid = parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="|")
    else:
        uid = pl.lit(source.name, dtype=pl.Utf8)
    ds_raw, aware, issue, seen, offset, time_stages = _parse_time(source, raw_schema[source.time_col], label, uid,
                                                                  day_month, traits, as_of)
    stages.extend(time_stages)
    apart = seen is not None and _seen_apart(source, raw_schema[source.time_col], traits)
    # (with a tz: its wall time and offset there, not the ones written)
    zoned = offset is not None and seen is None and not _no_offsets(source, raw_schema[source.time_col], traits)
    written = ds_raw
    ds_raw = label_to_start(written, source)
    seen = (label_to_start(written, source, seen=True) if seen is None
            else pl.when(ds_raw.is_not_null()).then(seen_to_start(written, seen, source)))
    y = _number(pl.col(RAW_PREFIX + source.target_col), raw_schema[source.target_col], source.target_col, label)
    offset = pl.lit(None, dtype=pl.Duration("us")) if offset is None else pl.when(ds_raw.is_not_null()).then(offset)
    mapped = [uid.alias("unique_id"), ds_raw.alias(DS_RAW), seen.alias(DS_SEEN), offset.alias(DS_OFFSET),
              aware.alias(TIME_AWARE), y.alias("y")]
    if issue is not None:
        mapped.append(issue.alias(TIME_LOCAL_ISSUE))
    for c in numeric_exog:
        mapped.append(_number(pl.col(RAW_PREFIX + c), raw_schema[c], c, label, booleans=True,
                              yes_no=c in yes_no).alias(c))
    for c in source.static_cols:
        if c not in numeric_exog:
            mapped.append(pl.col(RAW_PREFIX + c).alias(c))
    ds = _grid_start(pl.col(DS_RAW), source.freq, _grid_anchor(source), aggregate=source.aggregate != "none")
    return [*stages, mapped, [ds.alias("ds")]], apart, zoned


def _parsed_time_of_day(unread: pl.LazyFrame, mapping: list[list[pl.Expr]], time_raw: str, lag: pl.Expr) -> bool:
    """Whether some row of `unread` (its raw columns) has a time of day as the run reads its time column `time_raw`
    (`mapping`, `_mapping`'s stages) other than its day's start (`lag`: `time_of_day_lag`): what a text column whose
    values `_time_profile`'s guess read as dates alone holds, decided from the parsed times, not from the text. One
    row per distinct time text (per file too, where a glob's files each have their day/month order) is read, its
    other columns null: a file of dates alone holds a few thousand, whatever its rows. True where it cannot be read
    (unreadable bytes: a time of day not ruled out, as `_time_profile` says of them)."""
    schema = unread.collect_schema()
    keys = [time_raw, FILE_INDEX] if FILE_INDEX in schema else [time_raw]
    times = unread.select(keys).unique().with_columns(pl.lit(None, dtype).alias(c) for c, dtype in schema.items()
                                                      if c not in keys)
    try:
        return bool(_mapped(times, mapping).select((lag != timedelta(0)).any()).collect(engine="streaming").item())
    except pl.exceptions.PolarsError:
        return True


def _seen_apart(source: SourceConfig, dtype: pl.DataType, traits: frozenset[str]) -> bool:
    """Whether a daily or coarser time column, whose rows `_parse_time` sees from the instant an offset names
    (`DS_SEEN`), can hold a row seen apart from its time as written (`DS_RAW`): not a timestamp column in the zone
    it is seen in (`source.tz`, UTC without one: its wall time is that instant's), nor a text column with no
    offset on any row (`_time_profile`'s trait 'offset', of every row of the source; a bracketed zone is taken as
    one). False lets `period_not_over` skip its window over (series, period): every row's shift is 0."""
    if isinstance(dtype, pl.Datetime):
        return dtype.time_zone != (source.tz or "UTC")
    return not _no_offsets(source, dtype, traits)


def _no_offsets(source: SourceConfig, dtype: pl.DataType, traits: frozenset[str]) -> bool:
    """Whether a text time column read as ISO-8601 has no value with an offset (`_time_profile`'s traits 'offset' and
    'bracket', of every row of the source)."""
    return dtype == pl.Utf8 and not source.time_format and not {"offset", "bracket"} & traits


def ingest(source: SourceConfig, as_of: datetime | str | None) -> Ingested:
    """Lazily read and map `source`, keeping rows with ds <= as_of (and unparsable ds).

    `as_of` is one instant (`timekeys.as_instant`: aware values are converted, a naive value
    means UTC); it is compared with ds on the source's own axis (`timekeys.as_of_on_ds`). The reads it makes to
    decide how the rows read (day/month order, decimal marks, zones) raise a panic of polars as an error naming
    `source`'s path (`panics.panics_named`)."""
    with panics_named(source.path):
        return _ingest(source, as_of)


def _ingest(source: SourceConfig, as_of: datetime | str | None) -> Ingested:
    """`ingest`, its panics not named."""
    _check_tz(source)
    check_file_zone(source)
    _check_roles(source)
    files = resolve_files(source)
    # an HTTP(S) URL is read whole, here, with retries: any server works (no Range requests), an
    # I/O failure is told apart from bad data, and the fingerprint is of the bytes actually read
    payloads = {f: read_url(f, source) for f in files if _is_http(f)}
    frames: list[pl.LazyFrame] = []
    undeclared: list[str] = []
    wide: list[str] = []
    aware: list[str] = []  # the files whose time column is a timestamp with a zone
    naive: list[str] = []  # ... and without one
    notes: Notes = {}  # column -> how its numbers were read, each file's note (`DecimalPoints.settled` bounds them)
    points = DecimalPoints()  # ... unless another file shows '.' as its decimal point, which settles that reading
    as_of = as_instant(as_of, source.tz)  # one instant (aware UTC; a naive value means UTC; a date alone: its tz's)
    for i, file in enumerate(files):
        # (its numbers' decimal marks and thousands separators decided from its rows written by as_of)
        scanned = _scan_one(source, file, payloads.get(file), notes, as_of, points)
        if source.layout == "wide":
            scanned, series = _melt_wide(source, file, scanned, number=len(files) == 1)
            wide += [c for c in series if c not in wide]
        raw, und = _check_file(source, file, scanned, plan_file_ok=len(files) > 1 and source.layout == "long")
        zoned = raw.collect_schema().get(RAW_PREFIX + source.time_col)
        if isinstance(zoned, pl.Datetime):
            (aware if zoned.time_zone is not None else naive).append(file)
        if len(files) > 1 and isinstance(zoned, pl.Datetime) and zoned.time_zone is not None:
            # files in different zones: each file's instants on the source's zone, so that they concatenate
            raw = raw.with_columns(pl.col(RAW_PREFIX + source.time_col)
                                   .dt.convert_time_zone(source.tz or "UTC").dt.cast_time_unit("us"))
        # several files: which one a row came from (an aggregated source sums a row that two overlapping
        # exports both hold once, `validate._overlap_repeats`)
        frames.append(raw.with_columns(pl.lit(i, pl.UInt32).alias(FILE_INDEX)) if len(files) > 1 else raw)
        undeclared += [c for c in und if c not in undeclared]
    if aware and naive:  # a zone-less timestamp beside zoned ones: its zone is not known (polars cannot combine them)
        raise DataValidationError(
            f"source {source.name!r}: the time column {source.time_col!r} has no time zone in "
            f"{plural(len(naive), 'file')} "
            f"({', '.join(naive[:5])}) while {aware[0]} carries one; write every file with its zone (or none)")
    if not any(RAW_PREFIX + source.target_col in f.collect_schema() for f in frames):  # plan files only
        raise DataValidationError(f"source {source.name!r}: declared column {source.target_col!r} (the target) is in "
                                  f"none of its {len(files)} files ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})")
    # raw columns may differ in type between files (int in one, text in another): relax to a supertype
    raw = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    if ROW not in raw.collect_schema():  # (a wide file numbers its rows by their line: `_melt_wide`)
        raw = raw.with_row_index(ROW)
    schema = raw.collect_schema()
    raw_columns = [c.removeprefix(RAW_PREFIX) for c in schema.names() if c.startswith(RAW_PREFIX)]
    text = all(file_format(source, f) == "csv" for f in files)
    label = files[0] if len(files) == 1 else f"{source.path} ({len(files)} files)"
    # an empty or whitespace-only line is not a row (editors add them at the end of files)
    blank = blank_line([RAW_PREFIX + c for c in raw_columns]) if text else None
    # day/month dates without a declared time_format: their order, decided from the rows written by as_of (one pass
    # over the column; a second one, over the rows by as_of, only for a column of day/month dates), and which shapes
    # that need more work than ISO-8601 the column holds (a 12-hour clock, a bracketed zone), from all rows
    time_dtype = schema[RAW_PREFIX + source.time_col]
    time_raw = RAW_PREFIX + source.time_col
    profile = _time_profile(raw, time_raw, source.freq) if time_dtype == pl.Utf8 and not source.time_format else None
    day_month, traits, dated, midnight_mixed = (None, frozenset[str](), "", False) if profile is None else profile[:4]
    by_as_of, by_as_of_profile = raw, profile
    later = pl.lit(False)
    if dated and as_of is not None:
        # a row dated after as_of however it is read ('16/01/2024' at a 15 January as_of) does not decide how the
        # rows before it read: a later '16/01' beside a history of '01/13' made every row contradict the others
        # (all quarantined), and a backfill read its history otherwise than its run had
        day = wall_time(as_of, source.tz).date()
        # a two-digit year may be first ('24/03/28') unless the rows by as_of put it last: a later '5/5/24' (one digit
        # first, its year last) made a backfill test its year-first history day or month first alone (24 March 2028:
        # after as_of), leave it out of the rows that decide and lose it. Decided again, on those rows, where a row of
        # them puts it last (only for a column with both shapes)
        year_first = dated != "year last"
        # (a time of day by its instant: a row later on as_of's own day, '15/01/2024 18:00', decides nothing either)
        wall = _latest_wall(as_of, source.tz)
        by_as_of = _dated_by(raw, time_raw, day, year_first, wall=wall)
        every_row, by_as_of_profile = day_month, _time_profile(by_as_of, time_raw, source.freq)
        if year_first and by_as_of_profile.dated == "year first or last":
            year_first = False
            by_as_of = _dated_by(raw, time_raw, day, year_first, wall=wall)
            by_as_of_profile = _time_profile(by_as_of, time_raw, source.freq)
        day_month = by_as_of_profile.order
    if midnight_mixed and as_of is not None and source.tz is not None and not is_subdaily(source.freq):
        # times with an offset at midnight of it, and a later one not ('2024-01-20T13:00Z' after a history of
        # '2024-01-01T00:00:00Z'): the rows that may be dated by as_of decide whether they are dates written as
        # timestamps (a daily source's backfill read each date a day early in America/New_York, its run had not).
        # A second pass, over those rows, only for such a column (the other traits are each a value's own shape)
        traits |= _offset_midnight(_written_by(raw, time_raw, source, as_of), time_raw)
    orders: DayMonth = day_month
    if day_month in (None, "day", "month") and len(files) > 1 and time_dtype == pl.Utf8 and not source.time_format:
        # (each file's order by its rows alone, at any freq: read once for a probe's freq and the run's)
        by_rows = _per_file_decided(_per_file_key(source, files, as_of, None, freq=False),
                                    lambda: _orders_by_rows(by_as_of, time_raw, len(files)))
        settled = day_month
        if settled is None:
            orders = _per_file_decided(_per_file_key(source, files, as_of, None), lambda: _day_month_per_file(
                by_as_of, time_raw, source.freq, len(files), by_rows)) or None
        else:
            orders = _per_file_decided(_per_file_key(source, files, as_of, settled), lambda: _day_month_spaced_per_file(
                by_as_of, time_raw, source.freq, len(files), settled, by_rows))
    if dated and as_of is not None and (orders is None or isinstance(orders, dict) or orders != every_row):
        # a row after as_of however it is read that the order chosen cannot read ('16/01/2024' in a month-first
        # column, or in the month-first file of a glob whose files each have their order; only where all rows would
        # have decided otherwise, or the files or rows by as_of settle no one order): after as_of, not quarantined
        # as unparsable (a planned row, with a future covariate, is read as before: its time is needed)
        later = pl.col(DS_RAW).is_null() & ~planned_row(source) & _after_every_reading(
            time_raw, wall_time(as_of, source.tz).date(), year_first, wall=_latest_wall(as_of, source.tz))
    if isinstance(time_dtype, pl.Datetime) and time_dtype.time_zone and source.tz and not is_subdaily(source.freq):
        traits |= _aware_midnight(raw, RAW_PREFIX + source.time_col, as_of)
    bound = None if as_of is None else as_of_bound(source, as_of)
    unread = raw.filter(~blank) if blank is not None else raw
    mapping, apart, zone_offsets = _mapping(source, schema, label, text, orders, traits, as_of=as_of)
    frame = _mapped(unread, mapping)
    # yes/no covariate columns, decided from the rows observed by as_of alone: a 'yes' beside a '3' written after
    # as_of changed how a backfill at that as_of read its history (and a backtest cut there from the run it mirrors).
    # One pass over the covariate columns of all rows decides every column but one holding both (the rows by as_of
    # may hold its yes/no alone); those alone are decided again on the rows by as_of, whose times that pass parses
    seen = _flag_words(raw, [*source.past_cols, *source.future_cols], text=text)
    yes_no = frozenset(c for c, (words, other) in seen.items() if words and not other)
    if bound is not None and (mixed := [c for c, (words, other) in seen.items() if words and other]):
        yes_no |= yes_no_columns(frame.filter(observed_at(source, bound, apart=apart)), mixed, text=text)
    if yes_no:
        mapping, apart, zone_offsets = _mapping(source, schema, label, text, orders, traits, yes_no, as_of)
        frame = _mapped(unread, mapping)
    if profile is not None and "time_of_day" not in profile.traits and not profile.dates_alone and not is_subdaily(
            source.freq) and (lag := time_of_day_lag(source)) is not None and _parsed_time_of_day(
            unread, mapping, time_raw, lag):
        # a shape of time of day that the text's guess (`_TIME_OF_DAY_RE`) missed, read by the parser: its lag is kept
        # (`seen_shifts_expr` built none, and the rows were seen from the start of their day, without a word). Not
        # where every value is a date alone (`TimeProfile.dates_alone`: nothing to find, and the scan cost 0.4-0.6 s
        # per 1,000,000 rows). Read over every row, as the profile's text guess is: a row after as_of with a time of
        # day keeps a lag that is 0 for the rows by as_of without one, so what a run at as_of sees does not change
        profile = profile._replace(traits=profile.traits | {"time_of_day"})
    not_over = None
    if bound is not None and source.aggregate != "none" and apart:  # the window over (series, period), once
        frame = frame.with_columns(period_not_over(source, bound, apart).alias(NOT_OVER))
        not_over = pl.col(NOT_OVER)
    filtered = frame if bound is None else _within_as_of(frame, source, bound, later, apart, not_over)
    return Ingested(
        frame=filtered,
        unfiltered=frame,
        source=source,
        as_of=as_of,
        as_of_ds=bound,
        fingerprint=_fingerprint(source, files, payloads),
        files=files,
        raw_columns=raw_columns,
        undeclared=undeclared,
        tz_mixed_possible=time_dtype == pl.Utf8 and not source.time_format,
        numeric_exog=[*source.past_cols, *source.future_cols],
        raw=raw,
        by_as_of=by_as_of,
        time_profile=profile,
        by_as_of_profile=by_as_of_profile,
        mapping=mapping,
        blank=blank,
        wide_columns=wide,
        preamble_lines=preamble(files[0], payloads.get(files[0]))[0] if len(files) == 1 and text else 0,
        number_notes=points.settled(notes),
        quarter_note=quarter_numbers_note(raw, time_raw, source.time_col) if "quarter_numbers" in traits else None,
        later=later,
        seen_apart=apart,
        zone_offsets=zone_offsets,
    )


def _mapped(raw: pl.LazyFrame, mapping: list[list[pl.Expr]]) -> pl.LazyFrame:
    """`raw` with the canonical columns of `mapping` (`_mapping`'s stages) added, each stage in turn (a text time is
    read once per distinct value of what it reads by its own stage, `distinct.Steps`), the helper columns of its
    time's reading (`TIME_STAGE` and `TIME_WALL`) dropped once read."""
    for stage in mapping:
        raw = raw.with_columns(stage)
    return raw.drop(pl.selectors.starts_with(TIME_STAGE))


def seen_shifts_expr(ingested: Ingested) -> pl.Expr | None:
    """An aggregate over the unfiltered rows of `ingested` (`validate` adds it to the select it counts rows with: no
    pass of its own): one list of structs (unique_id, ds, raw: `DS_RAW`, offset: `DS_OFFSET`, lag: `time_of_day_lag`,
    apart: whether `DS_SEEN` differs from `DS_RAW` or the time has a time of day that its period's ds does not) of
    the rows a run at its as_of observed that were written with an offset, or with a time of day, for `seen_shifts`.
    A row without an offset is on the clock of the source's tz (its offset null here, taken there by `seen_shifts` of
    the rows kept alone: '2024-03-01 09:00' in America/New_York is seen from 14:00 UTC, as ingest sees it), UTC's
    without one (offset 0). None where no time can be (sub-daily data, whose ds are instants; a typed column without
    a zone and without a time of day; a text column of dates alone without an offset)."""
    source = ingested.source
    if is_subdaily(source.freq):
        return None
    dtype = ingested.raw.collect_schema().get(RAW_PREFIX + source.time_col) if ingested.raw is not None else None
    # (with a tz too: its naive '09:00' was counted from the start of its day, 9 hours before ingest's run had it).
    # None for a text column of dates alone (`_time_profile`'s trait 'time_of_day'): no row's lag is other than 0,
    # and building it cost 0.9 s per 1,000,000 rows of such a file with a tz
    clock = ingested.time_profile is None or "time_of_day" in ingested.time_profile.traits
    lag = time_of_day_lag(source) if dtype != pl.Date and clock else None
    naive = dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None)
    if lag is None and (not ingested.seen_apart or naive):  # no row seen apart from its time as written: no shift
        return None
    written = pl.col(TIME_AWARE) if ingested.seen_apart and not naive else pl.lit(False)
    has_lag = pl.lit(False) if lag is None else (lag != timedelta(0)).fill_null(False)
    kept = (written | has_lag) & pl.col(DS_RAW).is_not_null() & pl.col("ds").is_not_null()
    within = None if ingested.as_of_ds is None else observed_at(
        source, ingested.as_of_ds, ingested.later, ingested.seen_apart, ingested.not_over())  # ingest's window
    if ingested.tz_mixed_possible and source.tz is None:
        # a time of day without an offset beside times with one, quarantined: its zone is not known (read as UTC,
        # offset 0, beside '+01:00' in summer it made the series London's clock, a zone no one declared). Beside
        # times with one by as_of alone, as validation's check reads the rows a run kept, its planned rows among them
        # (`_within_as_of`; one written after as_of dropped a backfill's lags that its run at that instant kept)
        kept = kept & ~naive_beside_offsets(
            within if within is None or not source.future_cols else within | planned_row(source))
    if within is not None:
        kept = kept & within
    # (a row without an offset of a source with a tz: its zone's offset, `periods.seen_shifts`, of the rows kept alone)
    offset = pl.col(DS_OFFSET) if source.tz is not None else pl.col(DS_OFFSET).fill_null(timedelta(0))
    return (pl.struct(pl.col("unique_id").cast(pl.Utf8), pl.col("ds").cast(pl.Datetime("us")),
                      pl.col(DS_RAW).cast(pl.Datetime("us")).alias("raw"),
                      offset.cast(pl.Duration("us")).alias("offset"),
                      (pl.lit(timedelta(0)) if lag is None else lag.fill_null(timedelta(0))).alias("lag"),
                      ((pl.col(DS_SEEN) != pl.col(DS_RAW)).fill_null(False) | has_lag).alias("apart"))
            .filter(kept).implode().alias("__seen_shifts"))


def time_of_day_lag(source: SourceConfig) -> pl.Expr | None:
    """How long after the start of its period's day a start-labelled daily or coarser time is seen (`DS_SEEN`): its
    time of day as written ('2024-03-01 09:00', '09:00+01:00': 9 hours), which ingest keeps (`DS_RAW`) and sees the
    row from, while its period's ds is the day's midnight. None where no such lag is (end labels, whose times
    `label_to_start` reads; an aggregated source, whose periods are seen once over)."""
    if source.time_label != "start" or source.aggregate != "none":
        return None
    raw = pl.col(DS_RAW).cast(pl.Datetime("us"))
    return raw - raw.dt.truncate("1d")


RESERVED_COVARIATE_NAMES = ("unique_id", "ds", "y", "step")  # series, time, target, horizon step


def _check_roles(source: SourceConfig) -> None:
    """One raw column plays one role: id, time, target or covariate(s)."""
    roles: dict[str, list[str]] = {}
    twice: list[str] = []
    for role, cols in [("id", source.id_cols), ("time", [source.time_col]), ("target", [source.target_col]),
                       ("static", source.static_cols), ("past", source.past_cols), ("future", source.future_cols)]:
        twice += [f"{role} column {c!r} is listed {cols.count(c)} times" for c in dict.fromkeys(cols)
                  if cols.count(c) > 1]
        for c in dict.fromkeys(cols):
            roles.setdefault(c, []).append(role)
    if twice:  # id_cols = ['store', 'store'] failed reading the file: "multiple fields with name 'store' found"
        raise DataValidationError(f"source {source.name!r}: {'; '.join(twice)}: name each column once")
    # a covariate declared past and future (or static and past) failed inside validation with polars' "the name
    # 'price' passed to `LazyFrame.with_columns` is duplicate"
    clashes = {c: r for c, r in roles.items() if len(r) > 1}
    if clashes:
        said = "; ".join(f"{c!r} is declared as {' and '.join(r)}" for c, r in clashes.items())
        both = [set(r) for r in clashes.values()]
        hint = (" (a future covariate is read up to each period as well, as a past one is: declare a covariate "
                "known ahead as future only, one observed as it happens as past only)"
                if any({"past", "future"} <= r for r in both) else
                " (a static is one value per series, a past or future covariate one per period: declare it once)"
                if any("static" in r and r & {"past", "future"} for r in both) else "")
        raise DataValidationError(f"source {source.name!r}: a column can play one role only: {said}{hint}")
    # the canonical columns a covariate keeps its name beside (a covariate named 'step' failed deep inside with
    # polars' "projections contained duplicate output name 'step'")
    reserved = [c for c in roles if c in RESERVED_COVARIATE_NAMES and set(roles[c]) <= {"static", "past", "future"}]
    if reserved:
        said = ", ".join(f"{c!r} ({' and '.join(roles[c])})" for c in reserved)
        raise DataValidationError(
            f"source {source.name!r}: covariate {noun(len(reserved), 'column')} {said} "
            f"{'has' if len(reserved) == 1 else 'have'} a name flowcast gives its own columns "
            f"({', '.join(RESERVED_COVARIATE_NAMES)}): rename the column in the file (e.g. {reserved[0] + '_'!r}) and "
            "declare it under that name")


def _check_tz(source: SourceConfig) -> None:
    """An unknown time zone is a declaration error, named before any data is read."""
    if source.tz is None:
        return
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(source.tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        close = difflib.get_close_matches(source.tz, sorted(zoneinfo.available_timezones()), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataValidationError(
            f"source {source.name!r}: unknown time zone tz={source.tz!r}{hint}; use an IANA name such as "
            "'UTC' or 'Australia/Melbourne'"
        ) from exc
