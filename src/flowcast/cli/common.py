"""Shared pieces of the command line: source options, settings resolution, errors, JSON output."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Annotated, Any, get_type_hints, overload

import typer
from rich.console import Console
from rich.markup import escape

from flowcast.columns import DATASET_NAME_PATTERN
from flowcast.config import IMPLICIT_CONFIG_NAME, Settings, SourceConfig, load_settings, read_config_file
from flowcast.errors import ConfigError, FlowcastError, by_interrupt, earlier_said, one_line
from flowcast.redaction import HIDDEN, redact, redact_log_text
from flowcast.timekeys import as_instant, is_date_only, utc_text
from flowcast.wording import listed, noun, plural

# human output goes to stderr so that --json stdout stays clean. Text is printed as it is: rich markup
# would take any '[...]' in it for a style and drop it ('declare a variant as [sources.NAME]' lost its
# '[sources.NAME]', FLOWCAST_MODEL__CELLS='[gru]' showed as ''); a styled line passes markup=True and
# puts what it did not write itself through `said`
console = Console(stderr=True, markup=False)
out = Console(markup=False)


def said(value: object) -> str:
    """`value` as literal text inside a markup=True line: its brackets are not styles."""
    return escape(str(value))


def warn(message: str) -> None:
    """A command's warning line on stderr: `warning: <message>`, printed as it is and unfolded (`soft_wrap`, as the
    other output): folded at 80 columns, a path in it was split and could not be copied whole. A URL in it is shown
    without its password or token, a keyword DSN's password too (`redaction.redact_log_text`)."""
    console.print(f"warning: {redact_log_text(message)}", highlight=False, soft_wrap=True)

DatasetOpt = Annotated[str | None, typer.Option(
    "--dataset", "-d",
    help="bundled or configured dataset name (default: the configuration's dataset, else its one [sources.NAME], else "
         "the bundled us_employment); "
         "with --data, the name of the file's dataset (default: its file name)")]
# what is read: CSV (gzipped too; ',', ';', tab or '|' separated), Parquet, Arrow IPC / Feather; no spreadsheet
# (the help said 'CSV/Parquet': a user with a .tsv.gz or .feather export did not know it was read)
_READS = "CSV, TSV (gzipped too), Parquet or Arrow IPC/Feather; no .xlsx: save it as CSV"
DataOpt = Annotated[str | None, typer.Option("--data", help=f"path, glob or URL of your own data: {_READS}")]
PathArg = Annotated[str | None, typer.Argument(help=f"file, glob or URL (same as --data): {_READS}")]
IdColOpt = Annotated[list[str] | None, typer.Option("--id-col", help="id column (repeat for several)")]
TimeColOpt = Annotated[str | None, typer.Option("--time-col", help="time column")]
TimeFormatOpt = Annotated[str | None, typer.Option("--time-format", help="strptime format of the time column")]
TargetColOpt = Annotated[str | None, typer.Option("--target-col", help="target column")]
FreqOpt = Annotated[str | None, typer.Option("--freq", help="30m, 1h, 1d, 1b (business days), 1w, 1mo, 1q, 1y")]
TzOpt = Annotated[str | None, typer.Option("--tz", help="time zone of the time column")]
TimeLabelOpt = Annotated[str | None, typer.Option(
    "--time-label", help="start (default): a time labels the start of its interval; end: its end (hour-ending data: "
    "the value at 01:00 covers 00:00-01:00), read one step of --freq back")]
AmbiguousOpt = Annotated[str | None, typer.Option(
    "--ambiguous", help="naive local times in a --tz with daylight saving: the hour that occurs twice when it ends is "
    "quarantined (default), or read by file order (infer: of a series' two rows, the first is the earlier instant), "
    "or as the earliest or latest instant")]
DecimalOpt = Annotated[str | None, typer.Option(
    "--decimal", help="decimal mark of the file's numbers: ',' ('.' groups thousands: 2.000 is 2000) or '.' (',' "
    "groups thousands); default: decided per column from its values")]
AggregateOpt = Annotated[str | None, typer.Option(
    "--aggregate", help="several rows of a series in one period (data finer than --freq: transactions to 1d, "
    "5-minute readings to 1h): combined by sum (counts, amounts), mean (levels) or last (a stock level); "
    "default none: such rows are duplicates")]
FutureColOpt = Annotated[list[str] | None, typer.Option(
    "--future-col", help="covariate known ahead (prices, promotions, weather forecasts; repeat for several): its "
    "values for the horizon are rows dated after as_of")]
PastColOpt = Annotated[list[str] | None, typer.Option(
    "--past-col", help="covariate known up to each period only (repeat for several)")]
StaticColOpt = Annotated[list[str] | None, typer.Option(
    "--static-col", help="one value per series: region, size (repeat for several)")]
YMinOpt = Annotated[float | None, typer.Option(
    "--y-min", help="smallest valid target value (0 for counts, sales): a row below it is quarantined and "
    "intervals are cut at it; no bound is assumed from the data")]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of",
    help="run key, one instant: only rows with ds <= as_of are seen. ISO date or timestamp; without a UTC "
    "offset it means UTC (2019-06-01T09:00 is 09:00 UTC; 2019-06-01T09:00+10:00 is 23:00 UTC the day before); "
    "a date alone (2019-06-01) is that day of the source's calendar, from its midnight in the source's tz",
)]
HorizonOpt = Annotated[int | None, typer.Option("--horizon", help=(
    "periods to forecast (default: the source's horizon, else its frequency's; flowcast forecast: the production "
    "model's own)"))]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="configuration file (TOML) to read; none is read unless named here or by FLOWCAST_CONFIG",
)]
HomeOpt = Annotated[Path | None, typer.Option("--home", help="root of run outputs (default: FLOWCAST_HOME, else "
                                                               "./.flowcast)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object on the last line of stdout")]


@dataclass(frozen=True)
class SourceOptions:
    """The options that describe the data a command reads (`flowcast run`, `forecast`, `backfill`, `train`, `tune`,
    `validate`), declared once: each field is one typer parameter (its name, its `Annotated` option and its default),
    and a command takes them all as one parameter `source: SourceOptions` (`source_options`). They were the same 17
    parameters written out in six commands and passed on in the same six lines: an option added reached the
    commands its author remembered. Adding one is a field here (and its keyword in `resolve_settings`).
    `data` is the file, given as PATH or --data (`data_given`); `path` is kept as given."""

    dataset: DatasetOpt = None
    path: PathArg = None
    data: DataOpt = None
    id_col: IdColOpt = None
    time_col: TimeColOpt = None
    time_format: TimeFormatOpt = None
    target_col: TargetColOpt = None
    freq: FreqOpt = None
    tz: TzOpt = None
    time_label: TimeLabelOpt = None
    ambiguous: AmbiguousOpt = None
    decimal: DecimalOpt = None
    aggregate: AggregateOpt = None
    y_min: YMinOpt = None
    future_col: FutureColOpt = None
    past_col: PastColOpt = None
    static_col: StaticColOpt = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", data_given(self.path, self.data))

    def settings_args(self) -> dict[str, Any]:
        """The keywords `resolve_settings` takes them as (every field but `path`, which `data` holds)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}


def source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command`, whose parameter `source: SourceOptions` typer sees as the fields of `SourceOptions`, one
    parameter each, in their order, where `source` stands (so `--help` lists them there); called with them, it gets
    them as one `SourceOptions`. Goes under `@cli_errors`, so that a PATH and a --data that differ are one red
    sentence as any other option error of the command."""
    signature = inspect.signature(command)
    if "source" not in signature.parameters:
        raise TypeError(f"{command.__name__} takes no `source: SourceOptions` parameter")
    hints = get_type_hints(command, include_extras=True)  # typer needs the Annotated objects, not their names
    shared = get_type_hints(SourceOptions, include_extras=True)
    names = [f.name for f in fields(SourceOptions)]
    if clash := sorted(set(names) & set(signature.parameters)):
        raise TypeError(f"{command.__name__} declares source options of its own: {clash}")
    params: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        if p.name != "source":
            params.append(p.replace(annotation=hints.get(p.name, p.annotation)))
            continue
        params += [inspect.Parameter(f.name, p.kind, default=f.default, annotation=shared[f.name])
                   for f in fields(SourceOptions)]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        source = SourceOptions(**{n: kwargs.pop(n) for n in names if n in kwargs})
        return command(source=source, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


@overload
def parse_as_of(value: str, option: str = ..., tz: str | None = ...) -> datetime: ...
@overload
def parse_as_of(value: None, option: str = ..., tz: str | None = ...) -> None: ...
@overload
def parse_as_of(value: str | None, option: str = ..., tz: str | None = ...) -> datetime | None: ...
def parse_as_of(value: str | None, option: str = "--as-of", tz: str | None = None) -> datetime | None:
    """'2019-06-01', '2019-06-01T12:00', '2019-06-01T12:00+10:00', '...Z' -> the instant, an aware
    UTC datetime (`timekeys.as_instant`: no offset means UTC; a date alone is the midnight that day
    starts at in zone `tz`, the source's, UTC when None); None stays None."""
    if value is None:
        return None
    try:
        return as_instant(value, tz)
    except ValueError:
        raise ConfigError(
            f"{option} must be an ISO date or timestamp such as 2019-06-01 or 2019-06-01T12:00+10:00 "
            f"(no offset means UTC; a date alone is that day in the source's tz), got {value!r}"
        ) from None


def parse_run_as_of(value: str | None, settings: Any, option: str = "--as-of") -> datetime | None:
    """`parse_as_of` for the source `settings` read: a date alone is that day of its calendar (the
    midnight it starts at in its tz), the key a flow parameter or a backfill of that date gets."""
    from flowcast.data.datasets import source_tz

    return parse_as_of(value, option, source_tz(settings) if value is not None else None)


def flow_as_of(value: str | None, settings: Any, option: str = "--as-of") -> datetime | str | None:
    """What a command hands a flow as its as_of: checked here (`parse_run_as_of`); a date alone as
    given, for the flow to read on its source's calendar (the same instant; the run is named for the
    date, as a deployment run with that parameter is), else the instant."""
    return flow_key(value, parse_run_as_of(value, settings, option))


def flow_key(value: str | None, instant: datetime | None) -> datetime | str | None:
    """`flow_as_of` of a value already parsed (`instant`: `parse_run_as_of(value, ...)`)."""
    return value.strip() if value is not None and is_date_only(value) else instant


def parse_read_as_of(value: str | None, settings: Any, dataset: str | None) -> datetime | None:
    """`--as-of` of a command that reads what `dataset` published: a date alone is that dataset's day
    (the key its run of that date got): in the tz of the source the configuration declares by that
    name, else the one its publishes recorded (a `--data` file's); without a dataset, UTC's."""
    if value is None or dataset is None or not is_date_only(value):
        return parse_as_of(value)
    from flowcast.ops.quiet import dataset_tz

    return parse_as_of(value, tz=dataset_tz(settings, dataset))


def data_given(path: str | None, data: str | None) -> str | None:
    """The file a command was given as its PATH argument or --data (`flowcast run sales.csv ...` failed with
    'Got unexpected extra argument(s)' where `flowcast validate sales.csv ...` worked)."""
    if path and data and path != data:
        raise ConfigError(f"give the file once: PATH {path!r} or --data {data!r}")
    return path or data


def _needs_hint(data: str, missing: list[str]) -> str:
    """What to give for the missing options: the file's columns, the frequencies. 'also needs --time-col,
    --target-col, --freq' left a new user to open the file and look up polars' duration strings."""
    from flowcast.data.probes import header_as_written

    said = []
    if {"--time-col", "--target-col"} & set(missing) and (header := header_as_written(data)) and header[0]:
        columns, repeated = header
        shown = ", ".join(columns[:12]) + (f", ... ({len(columns)} in all)" if len(columns) > 12 else "")
        said.append(f"its columns: {shown}")  # (a file of 971 columns printed every name)
        if repeated:  # (newuser46: 'store,date,sales,store' listed polars' 'store_duplicated_0', and no guess was made)
            twice = "; ".join(f"{c!r} is column {', '.join(map(str, p[:-1]))} and {p[-1]}" for c, p in repeated.items())
            said.append(f"its header names a column more than once ({twice}): rename the others in the file so that "
                        "each column has a name of its own")
    if "--time-col" in missing and (integers := _integer_time_hint(data)):
        said.append(integers)
    if "--freq" in missing:
        said.append("--freq is the period of its rows: 30m, 1h, 1d, 1b (business days), 1w, 1mo, 1q or 1y")
    return f" ({'; '.join(said)})" if said else ""


def _refuse_title_line(data: str) -> None:
    """Refuse a CSV file whose first line is a report's title above its header ('Sales report Q1 2024,,' above
    'store,date,sales', `header_below_title`), saying the line to remove: it was asked for --time-col and --target-col
    among the columns 'Sales report Q1 2024, column_2, column_3', and told to take column_2 for its time."""
    from flowcast.data.probes import columns_of, header_below_title

    if (below := header_below_title(data)) is None:
        return
    line, text = below
    title = (columns_of(data) or [""])[0]
    more = "" if line == 2 else f" and {plural(line - 2, 'line')} more"
    raise ConfigError(f"--data {data}: its header is line {line}, {text!r}, below a title ({title!r}{more}): remove "
                      f"{plural(line - 1, 'line')} above the header, or start each with '#' (comment lines before "
                      "the header are skipped)")


def _likely_columns(data: str, name: str, id_col: list[str] | None, time_col: str | None, target_col: str | None,
                    covariates: list[str], read_freq: Callable[[str, str], str | None] | None = None,
                    ) -> tuple[list[str], str]:
    """The time and target columns a file asked for them likely has, where no name said them (`_own_vocabulary`):
    its one column whose values read as times (`times_by_values`: 'day_of_sale' of '2024-01-01'), and, of a long file
    (its times repeat), its one number column besides the time, the series (given, or a number column that tells them
    apart, `_number_id`) and the covariates ('revenue_eur'), else its one such named as a target ('sales'); with
    the options and the keys of a `[sources.NAME]` table that declare them. A file `shop_code,day_of_sale,revenue_eur`
    was told its columns alone, and, given --time-col, asked for --target-col. Returns (the time column given or
    likely, else the columns read as times, for the --id-col hint; the sentence, '' where no column is likely). `read_freq(time column, target column)`: where --freq is not given, the frequency its rows step by
    (`_read_freq`), said with the columns (newuser49: the hint named the columns, and a new user then learned the
    frequency only from the run's note)."""
    from flowcast.data.probes import wide_probe
    from flowcast.data.sources import times_by_values

    taken = (target_col, *(id_col or []), *covariates)
    timed = times_by_values(data, taken) if time_col is None else []
    likely = time_col or (timed[0] if len(timed) == 1 else None)
    numbers, one = [], "its one number column"
    if target_col is None and likely is not None and (probe := wide_probe(data, likely, long_only=True)) is not None:
        numbers = [c for c in probe[0] if c not in taken]
        if not numbers and (written := _numbers_written_otherwise(data, [c for c, _ in probe[1] if c not in taken])):
            numbers, one = [written[0]], f"its one column of numbers written with more: {written[1]}"
        # (a number column that tells the series apart is their id, `_number_id_hint`: store numbers 007, 012; one
        # named as a target, 'sales', is the target)
        if len(numbers) > 1 and not id_col and (keyed := _number_id(data, likely, numbers)) is not None:
            numbers.remove(keyed[1])
            one = f"its one number column besides {keyed[1]!r}, the series' id"
        if len(numbers) > 1 and (named := _named_one(numbers, TARGET_NAMES, ())):
            numbers, one = [named], "its number column named as a target"
    said, keys = [], []
    if len(timed) == 1:
        said.append(f"--time-col {shlex.quote(timed[0])} (its values read as times)")
        keys.append(f"time_col = {json.dumps(timed[0])}")
    elif timed:
        said.append(f"--time-col one of {', '.join(map(repr, timed))} (their values read as times)")
    if len(numbers) == 1:
        said.append(f"--target-col {shlex.quote(numbers[0])} ({one})")
        keys.append(f"target_col = {json.dumps(numbers[0])}")
    elif numbers:
        said.append(f"--target-col one of {', '.join(map(repr, numbers))} (its number columns)")
    target = target_col or (numbers[0] if len(numbers) == 1 else None)
    if read_freq is not None and likely is not None and target is not None and (freq := read_freq(likely, target)):
        said.append(f"--freq {freq} (its dates step by {freq})")
        keys.append(f"freq = {json.dumps(freq)}")
    times = [likely] if likely is not None else timed
    if not said:
        return times, ""
    where = f"; in a configuration file, [sources.{name}] {', '.join(keys)}" if keys else ""
    return times, f"; likely {' '.join(said)}{where}"


def _numbers_written_otherwise(data: str, columns: list[str]) -> tuple[str, str] | None:
    """(column, its first value and why it is no number) of the one of text `columns` of a local file whose every
    first value is a number written with more, as the run's quarantine reason says it (`schemas._number_hint`: a
    unit, '101.64 kg'; a currency sign, a magnitude suffix, a decimal comma): the likely target. newuser51: a file
    `store,date,weight` of '101.64 kg' was asked for --target-col naming its columns alone, and told of the unit
    only once it was given. None where no column, or several, are so written."""
    import polars as pl

    from flowcast.data.probes import head_text_of
    from flowcast.data.schemas import _number_hint

    head = head_text_of(data, columns) if columns else None
    found = []
    for col, values in (head or {}).items():
        hints = pl.DataFrame({"v": values}, schema={"v": pl.Utf8}).select(_number_hint(pl.col("v"))).to_series() \
            if values else None
        if hints is not None and hints.len() and (hints != "").all():
            found.append((col, f"{values[0]!r}{hints[0]}"))
    return found[0] if len(found) == 1 else None


def _integer_time_format(values: list[str]) -> str | None:
    """The strptime format integers of a time column read as: '%Y%m%d' for dates written 20150131, '%s' for Unix
    epoch seconds (10 digits: 2001-09-09 to 2286); None for other values, or none."""
    if not values or not all(v.isdigit() for v in values):
        return None
    if all(len(v) == 8 for v in values):
        try:
            for v in values:
                datetime.strptime(v, "%Y%m%d")
        except ValueError:
            return None
        return "%Y%m%d"
    return "%s" if all(len(v) == 10 for v in values) else None


def _integer_time_hint(data: str) -> str:
    """The --time-col and --time-format to give for a file's one column named as a time (`TIME_NAMES`,
    `CALENDAR_NAMES`, 'ds') whose values are integers read as dates (20150131) or epoch seconds: such a column does
    not read as times without its format, so it was not guessed, and the format was hinted only once --time-col and
    --target-col were given (newuserB47); of one whose values read as no time, what reads them (`_unread_time_hint`);
    of a file without a column so named, its one column of such integers whatever its name
    (`_unnamed_integer_time_hint`). '' where there is no such column."""
    from flowcast.data.probes import columns_of, head_text_of

    named = [c for c in columns_of(data) or [] if c.strip().lower() in (*TIME_NAMES, *CALENDAR_NAMES, "ds")]
    head = head_text_of(data, named) if named else None
    timed = {c: f for c, values in (head or {}).items() if (f := _integer_time_format(values))}
    if not timed:
        return _unread_time_hint(data, head or {}) or ("" if named else _unnamed_integer_time_hint(data))
    return _integer_time_said(timed, head or {})


def _unnamed_integer_time_hint(data: str) -> str:
    """Of a file with no column named as a time and none whose values read as times, its one column of integers
    read as epoch seconds or dates (`_integer_time_format`) whatever its name: `id,ts,value` of Unix seconds was
    asked for --time-col and --target-col among its columns alone, and told the --time-format only once given
    --time-col ts (newuser54). '' where no column, or several, hold such integers."""
    from flowcast.data.probes import columns_of, head_text_of
    from flowcast.data.sources import times_by_values

    if times_by_values(data, ()):
        return ""
    head = head_text_of(data, list(columns_of(data) or [])) or {}
    return _integer_time_said({c: f for c, values in head.items() if (f := _integer_time_format(values))}, head)


def _integer_time_said(timed: dict[str, str], head: dict[str, list[str]]) -> str:
    """The hint for the one column of `timed` (column -> its `_integer_time_format`): its integers, what they read
    as and the options that read them; '' where `timed` holds no column or several."""
    if len(timed) != 1:
        return ""
    col, fmt = next(iter(timed.items()))
    example = head[col][0]
    return (f"{col!r} holds integers read as {'dates' if fmt == '%Y%m%d' else 'Unix epoch seconds'} (e.g. {example}): "
            f"as the time, --time-col {shlex.quote(col)} --time-format {fmt}")


def _unread_time_hint(data: str, head: dict[str, list[str]]) -> str:
    """Of the one column named as a time (`head`: its first values) whose values do not read as times, what the run
    would say of its first value (`schemas._time_hint`: 'Jan-22', Excel's mmm-yy, reads with --time-format '%b-%y';
    week numbers 1 .. 52 with none): such a file was asked for --time-col and --target-col, and the hint came once
    they were given (newuser48). '' where no column, or several, so named need one."""
    import polars as pl

    from flowcast.data.schemas import _time_hint
    from flowcast.data.sources import parses_as_times

    hinted = {c: hint for c, values in head.items()
              if values and (hint := pl.select(_time_hint(pl.lit(values[0]))).item()) and not parses_as_times(data, c)}
    if len(hinted) != 1:
        return ""
    col, hint = next(iter(hinted.items()))
    return f"{col!r} is named as a time, but its values do not read as times (e.g. {head[col][0]!r}{hint})"


def _bare_integers(data: str, col: str) -> bool:
    """Whether the first values of column `col` of file `data` are all bare integers ('1001', not '2024-01-01'):
    the row numbers pandas' to_csv writes under an empty header, which read as years where they have 4 digits."""
    from flowcast.data.probes import head_text_of

    values = (head_text_of(data, [col]) or {}).get(col) or []
    return bool(values) and all(v.isdigit() for v in values)


def _not_wide_hint(data: str, id_col: list[str] | None, time_col: str | None, target_col: str | None, *,
                   as_of: datetime | None = None, tz: str | None = None, time_format: str | None = None) -> str:
    """Why a file given --time-col alone, whose dates are each written once beside number columns (a wide file), was
    not read as one: a text column among them ('date,north,south,comment'). It was asked for --target-col, and given
    one it read that column alone, the other series ignored. A text column with a different value in each row is
    rather the series' ids of a file of one row per series: the hint names it for --id-col. With `as_of`, of the rows the layout was read off
    (`_layout_of`): a date repeated after as_of took the hint away, a text value after it was named as the example."""
    if id_col or target_col or not time_col:
        return ""
    from flowcast.data.probes import head_text_of, wide_probe

    probed = wide_probe(data, time_col, as_of=as_of, tz=tz, time_format=time_format)
    numbers, text = probed if probed is not None and probed[0] else ([], [])
    if not text:
        return ""
    heads = head_text_of(data, [c for c, _ in text], rows=200, nulls=True) or {}
    # a text column with a value of its own in every row (each store once beside one date: one row per series) names
    # the series: fixB52's `store,date,sales` was told to remove 'store' to read the file as wide, one series of sales.
    # Not one with an empty row (fixJ52: a notes column, 'holiday' and 'strike' in 30 rows, was named for --id-col)
    unique = [c for c, _ in text if len(v := heads.get(c) or []) > 1 and all(v) and len(set(v)) == len(v)]
    ids = ""
    if unique:
        examples = ", ".join(map(repr, (heads[unique[0]])[:2]))
        ids = (f"{unique[0]!r} holds a value of its own in each row ({examples}, ...: one row per series?): name "
               f"the column of series ids with --id-col and the values with --target-col (e.g. --id-col "
               f"{shlex.quote(unique[0])} --target-col {shlex.quote(numbers[0])})")
        if len(numbers) == 1:  # read as wide, its one number column would be one series
            return f"; {ids}"
    named = ", ".join(f"{c!r} (e.g. {v!r})" for c, v in text[:3])
    one = len(text) == 1
    return (f"; if each number column is a series (a wide file), it is not read as one because "
            f"{plural(len(text), 'column')} {'holds' if one else 'hold'} text: {named}: remove "
            f"{'it' if one else 'them'} from the file to read it as wide{f'; or, if {ids}' if ids else ''}")


def _id_col_hint(data: str, id_col: list[str] | None, time_col: str | None, times: tuple[str, ...] = ()) -> str:
    """Where no --id-col is given and the file's times repeat (a long file of several series), its text columns with
    a value of each: the columns that may tell its series apart, to name with --id-col, the example those that look
    most like its id (`_fewest_keying`: an M5 file was told '--id-col item_id', under which each date still repeats
    once per store; a 'weather' column before 'store' was named for it), else its first. `times`: the file's other
    columns read as times, which are no id (newuser49: a file of two time columns was given no --id-col hint). ''
    otherwise."""
    if id_col or not time_col:
        return ""
    from flowcast.data.probes import id_candidates

    text = [(c, v) for c, v in id_candidates(data, time_col) if c not in times]
    if not text:
        return _number_id_hint(data, time_col)
    named = ", ".join(f"{c!r} (e.g. {v!r})" for c, v in text[:3])
    keying = _fewest_keying(data, time_col, [c for c, _ in text]) or [text[0][0]]
    return (f"; its times repeat (several series?) and {named} hold{'s' if len(text) == 1 else ''} text: name the "
            f"column that tells the series apart (or the columns that do together) with --id-col (e.g. "
            f"{' '.join(f'--id-col {shlex.quote(c)}' for c in keying)})")


def _repeated_time_hint(data: str, id_col: list[str] | None, time_col: str | None, target_col: str | None,
                        tz: str | None, ambiguous: str | None = None) -> str:
    """Where no --id-col nor --target-col is given and no column may tell a file's series apart, the time it writes
    twice that keeps it from being read as a wide file (of one column: one series), with the daylight-saving change
    whose repeated wall hour it is in `tz` (or, without one, in the zones `validate` names). Session 50: a time+value
    file of local half hours was asked for --target-col, its repeated 02:00 named nowhere. With `ambiguous` given
    (the option that reads that hour), only that the file is then read with --target-col. '' otherwise."""
    if id_col or target_col or not time_col:
        return ""
    import polars as pl

    from flowcast.data.series_keys import repeated_times
    from flowcast.data.validate import _DST_ZONES, _dst_repeat_hint

    found = repeated_times(data, time_col)
    if found is None:
        return ""
    n, first = found
    ds = pl.Series("ds", [first]).str.to_datetime(strict=False)
    dst = "" if ds.is_null().all() else str(pl.DataFrame([ds]).select(
        _dst_repeat_hint((tz,) if tz else _DST_ZONES)).item())
    more = f" ({n} times are written twice, this the first)" if n > 1 else ""
    if dst and ambiguous not in (None, "quarantine"):  # (its advice, --ambiguous, is given: it reads a long file)
        dst = (f" (the hour that occurs twice when daylight saving ends, which --ambiguous {ambiguous} reads in a "
               "long file: give --target-col)")
    return (f"; it is not read as a wide file (its time, then a number column per series) because a time is written "
            f"twice by rows that differ: {first!r}{more}{dst}")


def _number_id_hint(data: str, time_col: str) -> str:
    """Where no --id-col is given, the file's times repeat and no text column may tell its series apart: its number
    column that does (numeric meter or store ids, `Meter ID` 0, 1, 2), the one under which no time repeats that
    makes the fewest series, each of two rows or more on average (a measured value may key the file too, as about one
    series per row). newuser45: a file `Meter ID,Timestamp,Reading kWh` was told only that it needs --target-col, and given
    it, had every row quarantined as duplicates. '' where no number column does."""
    from flowcast.data.probes import wide_probe

    probe = wide_probe(data, time_col, long_only=True)
    found = _number_id(data, time_col, probe[0] if probe is not None else [])
    if found is None:
        return ""
    keys, col = found
    return (f"; its times repeat (several series?) and {col!r} tells them apart ({keys} series, its numbers read as "
            f"ids): name it with --id-col (--id-col {shlex.quote(col)})")


def _number_id(data: str, time_col: str, numbers: list[str]) -> tuple[int, str] | None:
    """(series, column) of the one of the number columns `numbers` of a local file that may be its series' id: under
    it no time repeats where the file's times do, and it makes the fewest series, each of two rows or more on average
    (a measured value may key the file too, as about one series per row). None where none does, or where no time
    repeats (a file of one series: a column is no id because it keys it, 'WorkDay' of 0 and 1 beside each date)."""
    from flowcast.data.series_keys import keyings

    found = keyings(data, time_col, [[], *([c] for c in numbers)]) if numbers else None
    if not found:
        return None
    rows = found[0].repeated  # (under no key: the rows whose time another row holds)
    ids = [(k.keys, c) for c, k in zip(numbers, found[1:], strict=True) if not k.repeated and 2 * k.keys <= rows]
    return min(ids) if ids else None


def _fewest_keying(data: str, time_col: str, candidates: list[str], first: int = 5, most: int = 3) -> list[str] | None:
    """The columns of `candidates` that look most like the series' id, to name in the --id-col hint: of the sets under
    which no time of a local file repeats (`series_keys.keyings`: 'item_id' and 'store_id' of an M5 file), the one that
    makes the fewest series (an id is constant over a series' time: a text column varying with the dates, 'weather',
    can key a file of a few stores alone, as many short series, and was named before 'store' where it came first),
    then the fewest columns, then the file's order. The sets: those of up to `most` of the `first` candidates, each
    further candidate alone (its combinations are not tried: the sets of up to 3 of n columns grow as n cubed, 1,350
    of 20 columns, each a hash per distinct row, where these grow by one a column; the first 5 alone were looked at, and
    a 'store' sixth among text columns was never named), the first `first` together, all of them together. Where no
    set keys the file (rows of one time and key that differ), the one column under which the fewest rows repeat a
    time, then that makes the fewest series. None where the file cannot be read cheaply. One pass over the file for
    every set, for the command line's hint, never for a run."""
    from flowcast.data.series_keys import keyings

    tried, rest = candidates[:first], candidates[first:]
    sets = [list(cols) for size in range(1, min(most, len(tried) - 1) + 1) for cols in combinations(tried, size)]
    sets += [[c] for c in rest]
    sets += [tried, candidates] if rest else [tried]
    found = keyings(data, time_col, sets)
    if found is None:  # (it cannot be read)
        return None
    of = list(enumerate(zip(sets, found, strict=True)))  # (sets by size, then in the file's order)
    if of[-1][1][1].repeated:  # no set keys the file: the one column nearest to keying it
        return min((k.repeated, k.keys, i, cols) for i, (cols, k) in of if len(cols) == 1)[3]
    return min((k.keys, len(cols), i, cols) for i, (cols, k) in of if not k.repeated)[3]


def _read_freq(data: str, id_cols: list[str], time_col: str, target_col: str, time_format: str | None,
               tz: str | None, layout: str, name: str = "probe", as_of: datetime | None = None) -> Any:
    """`freq_infer.explain_freq` of a --data file read with these options (an `Inferred`, or why none is); None where
    the options make no source."""
    from flowcast.data.freq_infer import explain_freq

    try:
        # named as the run names it: its errors said "source 'probe': unknown time zone ..." (a name the store
        # cannot key is refused after this, naming it)
        name = name if re.match(DATASET_NAME_PATTERN, name) else "probe"
        probe = SourceConfig(name=name, path=data, id_cols=id_cols, time_col=time_col, target_col=target_col,
                             time_format=time_format, freq="1d", tz=tz, layout=layout)
    except Exception:  # noqa: BLE001 - the options themselves are refused by the caller, naming what is wrong
        return None
    return explain_freq(probe, as_of)


def _freq_hint(data: str, id_cols: list[str], time_format: str | None, tz: str | None, layout: str, name: str,
               as_of: datetime | None, time_col: str, target_col: str) -> str | None:
    """The frequency a --data file's rows step by, read with these columns (`_read_freq`), for the hint of a command
    that asks for its columns; None where none is read (why is the run's to say, once the columns are given)."""
    from flowcast.data.freq_infer import Inferred

    try:
        found = _read_freq(data, id_cols, time_col, target_col, time_format, tz, layout, name, as_of)
    except FlowcastError:
        return None
    return found.freq if isinstance(found, Inferred) else None


def _inferred_freq(data: str, id_cols: list[str], time_col: str, target_col: str, time_format: str | None,
                   tz: str | None, layout: str, name: str = "probe", as_of: datetime | None = None) -> str:
    """The frequency of a --data file's dates (`flowcast.data.freq_infer`), said on the console; when its dates
    do not settle one, the command asks for --freq, saying why (its times do not parse, their steps are irregular).
    With `as_of` (the run's, a backfill's first), read off the rows by then alone: a daily history whose later rows
    are hourly made a backfill at an earlier as_of read its history as hourly where its run had read it daily."""
    from flowcast.data.freq_infer import Inferred

    missing = f"--data {data} also needs --freq{_needs_hint(data, ['--freq'])}"
    found = _read_freq(data, id_cols, time_col, target_col, time_format, tz, layout, name, as_of)
    if found is None:  # the options themselves are refused below, naming what is wrong
        raise ConfigError(missing)
    by = "" if as_of is None else f" by as_of {utc_text(as_of)}"
    if not isinstance(found, Inferred):
        raise ConfigError(f"{missing}: it could not be read off the file's dates{by}: {found}")
    console.print(f"note: --freq not given: {data}'s dates step by {found.freq} ({found.share:.0%} of "
                  f"{found.steps:,} consecutive steps{by}), so --freq {found.freq} is used; pass --freq to set it",
                  highlight=False)
    return found.freq


def resolve_settings(
    *,
    dataset: str | None = None,
    data: str | None = None,
    id_col: list[str] | None = None,
    time_col: str | None = None,
    time_format: str | None = None,
    target_col: str | None = None,
    freq: str | None = None,
    tz: str | None = None,
    time_label: str | None = None,
    ambiguous: str | None = None,
    decimal: str | None = None,
    aggregate: str | None = None,
    y_min: float | None = None,
    future_col: list[str] | None = None,
    past_col: list[str] | None = None,
    static_col: list[str] | None = None,
    horizon: int | None = None,
    config: Path | None = None,
    home: Path | None = None,
    as_of: str | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from the named configuration file (--config or FLOWCAST_CONFIG; none otherwise)
    + FLOWCAST_* env + these command-line options. `as_of` (the run's --as-of, a backfill's --start): a --data file's
    layout and frequency, where the options do not give them, are read off its rows by then (`_as_of_of_file`)."""
    _note_unnamed_config(config, home)
    _note_unknown_env()
    source = None
    if data is not None and dataset and dataset in _declared_datasets(config):
        raise ConfigError(f"--dataset {dataset} and --data {data} both name the data to read: give one of them "
                          f"({dataset!r} is a bundled or configured dataset; --dataset with --data names the file's "
                          "dataset when it is neither)")
    layout = "long"
    # '--id-col store --id-col store' failed reading the file ("multiple fields with name 'store' found")
    repeated = [f"{opt} {c}" for opt, cols in (("--id-col", id_col), ("--future-col", future_col),
                                               ("--past-col", past_col), ("--static-col", static_col))
                for c in dict.fromkeys(cols or []) if (cols or []).count(c) > 1]
    if repeated:
        raise ConfigError(f"{', '.join(repeated)} given more than once: name each column once")
    if data is not None:
        from flowcast.data.csv_text import check_readable
        from flowcast.data.probes import refuse_no_rows

        check_readable(data, dataset or _name_of(data))  # a workbook or missing file, before asking for its columns
        if time_col is None or target_col is None:  # a file of no rows is told so, not asked for columns (nor read as
            refuse_no_rows(data, dataset or _name_of(data))  # a wide file: an empty one's columns hold no text)
        id_col, time_col, target_col = _own_vocabulary(data, id_col, time_col, target_col,
                                                       [*(future_col or []), *(past_col or []), *(static_col or [])])
        _refuse_periods_across(data, time_col, target_col)
        instant = _as_of_of_file(data, as_of, time_col, tz)
        layout = _layout_of(data, id_col, time_col, target_col, [*(future_col or []), *(past_col or []),
                                                                 *(static_col or [])],
                            as_of=instant, tz=tz, time_format=time_format)
        missing = [n for n, v in [("--time-col", time_col), ("--target-col", target_col or layout == "wide"),
                                  ("--freq", freq)] if not v]
        if missing == ["--freq"]:  # read it off the dates, as pandas' infer_freq does; said, so it can be set
            freq = _inferred_freq(data, list(id_col or []), str(time_col), target_col or "", time_format, tz, layout,
                                  dataset or _name_of(data), as_of=instant)
            missing = []
        if missing:
            _refuse_title_line(data)
            covariates = [*(future_col or []), *(past_col or []), *(static_col or [])]
            times, said = _likely_columns(data, dataset or _name_of(data), id_col, time_col, target_col, covariates,
                                           None if freq else functools.partial(
                                               _freq_hint, data, list(id_col or []), time_format, tz, layout,
                                               dataset or _name_of(data), instant))
            why = _not_wide_hint(data, id_col, time_col, target_col, as_of=instant, tz=tz, time_format=time_format)
            # (of several columns read as times, the first: a long file's times repeat in each of them)
            why = why or _id_col_hint(data, id_col, times[0] if times else None, tuple(times[1:]))
            why = why or _repeated_time_hint(data, id_col, times[0] if times else None, target_col, tz, ambiguous)
            # --freq is read off the dates once the columns are named: it is not needed (newuser22: 'also needs
            # --time-col, --target-col, --freq' sent a new user to look up a frequency the command reads itself)
            needed = [m for m in missing if m != "--freq"]
            read = ("; --freq, the period of its rows, is read off its dates when not given (30m, 1h, 1d, 1b, 1w, 1mo, "
                    "1q or 1y)") if "--freq" in missing else ""
            raise ConfigError(f"--data {data} also needs {', '.join(needed)}{_needs_hint(data, needed)}{said}{read}{why}")
        try:
            source = SourceConfig(
                name=dataset or _name_of(data),
                path=data,
                id_cols=list(id_col or []),
                time_col=time_col,
                time_format=time_format,
                target_col=target_col or "",
                freq=freq,
                tz=tz,
                decimal=decimal,
                **({"aggregate": aggregate} if aggregate is not None else {}),
                layout=layout,
                **({"time_label": time_label} if time_label is not None else {}),
                **({"ambiguous": ambiguous} if ambiguous is not None else {}),
                y_min=y_min,
                future_cols=list(future_col or []),
                past_cols=list(past_col or []),
                static_cols=list(static_col or []),
            )
        except Exception as exc:  # pydantic ValidationError: make it one sentence
            raise ConfigError(f"invalid source options: {one_line(exc)}") from exc
    else:
        given = [n for n, v in [("--id-col", id_col), ("--time-col", time_col), ("--time-format", time_format),
                                ("--target-col", target_col), ("--freq", freq), ("--tz", tz),
                                ("--time-label", time_label), ("--ambiguous", ambiguous), ("--decimal", decimal),
                                ("--aggregate", aggregate),
                                ("--y-min", y_min is not None), ("--future-col", future_col),
                                ("--past-col", past_col), ("--static-col", static_col)] if v]
        if given and dataset:  # they were silently ignored: a dataset declares its own columns
            raise ConfigError(
                f"{', '.join(given)} describe a file given with --data; dataset {dataset!r} declares its own "
                "(declare a variant as [sources.NAME] in a configuration file named with --config)"
            )
        if given:
            raise ConfigError(f"{', '.join(given)} describe a file: pass it with --data PATH")
    try:
        return load_settings(
            config, dataset=dataset, source=source.model_dump() if source else None, horizon=horizon,
            home=home, **overrides,
        )
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    except Exception as exc:
        if isinstance(exc, FlowcastError):
            raise
        where = config or os.environ.get("FLOWCAST_CONFIG") or "defaults"
        raise ConfigError(f"invalid configuration ({where} + FLOWCAST_* env + options): {one_line(exc)}") from exc


# names a time / series column of a user's file commonly has (compared case-insensitively, stripped): such a column is
# read as the time / series where the command names none and it is the file's only one so named (a time: of those
# whose values read as times, `parses_as_times`: an Italian or Portuguese 'Data' of other values is not taken)
TIME_NAMES = ("date", "time", "timestamp", "datetime", "period",
              # German, Dutch
              "datum", "zeit", "uhrzeit", "zeitpunkt", "zeitstempel", "tijd", "tijdstip",
              # French
              "date_heure", "heure", "horodatage",
              # Spanish, Portuguese, Italian
              "fecha", "fecha_hora", "hora", "data", "data_hora", "data_ora")
# names of a calendar part (a week, month, quarter or year; German, Dutch, French, Spanish, Portuguese, Italian): read
# as the time only where no column named in `TIME_NAMES` reads as times (an M5-style file's `year` of 2024, 2024, ...
# beside its `date` also reads as times; the `date` is its time)
CALENDAR_NAMES = ("week", "month", "quarter", "year", "monat", "maand", "mois", "mes", "mês", "mese")
ID_NAMES = ("id", "series", "series_id", "item_id", "store")
# more names of a series column, looked for only where the file has no column named in `ID_NAMES` (a file keyed
# by `store` and `region` keeps being read as before): `sku,week,units`, `region,quarter,revenue` and
# `sensor,timestamp,temp` were asked for --id-col, the error naming the very column (newuser53); so was
# `meter,time,kwh` of hourly readings (newuser54)
MORE_ID_NAMES = ("sku", "item", "product", "product_id", "region", "location", "site", "sensor",
                 "sensor_id", "station", "country", "customer", "meter", "meter_id", "device", "device_id")
UNNAMED_FIRST = "column_1"  # polars' name of a CSV's first column without a header (pandas' to_csv index)
# names a target column of a user's file commonly has (after `y`): the file's one column so named is read as the target
TARGET_NAMES = ("value", "sales", "demand", "target", "units", "qty", "quantity", "amount")
# words that name a covariate (weather, prices, calendars), not a series to forecast: a wide file's number column so
# named is read as a series unless declared a covariate, and the note says so (`_covariate_named`)
COVARIATE_WORDS = ("temp", "temperature", "weather", "rain", "rainfall", "precipitation", "humidity", "wind",
                   "price", "prices", "promo", "promotion", "discount", "holiday", "workday", "weekday", "weekend")


def _covariate_named(columns: list[str]) -> list[str]:
    """The columns of `columns` with a word of `COVARIATE_WORDS` in their name ('Temperature', 'Temp (°C)', 'price_eur'),
    case-insensitively."""
    return [c for c in columns if any(w in COVARIATE_WORDS for w in re.split(r"[^a-z]+", c.lower()))]


def _named_one(columns: list[str], names: tuple[str, ...], taken: tuple[str | None, ...]) -> str | None:
    """The one column of `columns` (not among `taken`) whose name is one of `names`, case-insensitively; None for
    none or several (which of them is meant is not guessed)."""
    found = [c for c in columns if c.strip().lower() in names and c not in taken]
    return found[0] if len(found) == 1 else None


def _named_time(data: str, columns: list[str], taken: tuple[str | None, ...]) -> str | None:
    """The one column of file `data` (not among `taken`) named as a time whose values read as times
    (`parses_as_times`), a full time name (`TIME_NAMES`: 'date') before a calendar part's (`CALENDAR_NAMES`: 'year'):
    of `date,year,store,sales` the `date`, of `year,y` the `year`. None where none reads as times, or where two of the
    first tier that has one do (`date` and `Datum`; `week` and `month` with no full name): which is meant is not
    guessed."""
    from flowcast.data.sources import parses_as_times

    for names in (TIME_NAMES, CALENDAR_NAMES):
        timed = [c for c in columns if c.strip().lower() in names and c not in taken and parses_as_times(data, c)]
        if timed:
            return _named_one(timed, names, taken)
    return None


def _own_vocabulary(data: str, id_col: list[str] | None, time_col: str | None, target_col: str | None,
                    covariates: list[str]) -> tuple[list[str] | None, str | None, str | None]:
    """The columns of a file where the command names none, guessed from their names: those written in flowcast's own
    vocabulary (Nixtla's long `unique_id, ds, y`, what `flowcast forecasts` and neuralforecast / statsforecast
    write): `ds` the time, `y` the target, `unique_id` the series; else the file's one column named as a time
    (`_named_time`: 'Date', else 'month') whose values read as times, else a Parquet or Arrow file's one column of type Date
    or Datetime whatever its name ('day'), else its first column without a header (`UNNAMED_FIRST`) where it reads
    as times (pandas' to_csv of a frame indexed by dates), and, where its times repeat (several series: a wide
    file's series column named 'store' stays a series), its one column named as a series (`ID_NAMES`: 'store',
    'item_id', else `MORE_ID_NAMES`: 'sku', 'region'); and, of a long file, its one column named as a target (`TARGET_NAMES`: 'sales', 'units') or else its
    one other number column (`_guessed_target`), and, of a file of one series (its times do not repeat), its one
    number column, its text columns of one value the series' id (`_single_series`; without a text column it is a
    wide file of one column, its series named after it); a column given as a covariate is none of them. Such a file needed `--time-col ds --target-col y` (`--time-col Date`: a new user passed it
    every time), and without `--id-col unique_id` it was read as one series whose every date repeated (99% of its
    rows quarantined as duplicates). What was guessed is said on the console with the columns read. An option given
    keeps its value; two columns so named, or none, are not guessed: the command asks for the option as before."""
    from flowcast.data.probes import columns_of, typed_time_columns, wide_probe
    from flowcast.data.series_keys import times_repeat_within
    from flowcast.data.sources import parses_as_times

    columns = columns_of(data)
    if not columns:
        return id_col, time_col, target_col
    guessed: list[str] = []
    typed = None  # the time column of a Parquet / Arrow file told by its type, not its name
    if time_col is None:
        taken = (target_col, *(id_col or []), *covariates)
        # (of the columns named as a time, those whose values read as times: an English file's 'data' of numbers
        # beside its 'date', a Spanish one's 'Hora' of hours beside its 'Fecha', is not a second time column)
        named = "ds" if "ds" in columns else _named_time(data, columns, taken)
        if named is not None:
            time_col = named
            guessed.append(f"--time-col {shlex.quote(named)}")
        elif len(dated := [c for c in typed_time_columns(data) if c not in taken]) == 1:
            time_col = dated[0]  # (newuser44: a Parquet file's Date column `day` was asked for with --time-col)
            typed = f"--time-col {shlex.quote(time_col)} as its one date column"
        elif (columns[0] == UNNAMED_FIRST and UNNAMED_FIRST not in taken and not _bare_integers(data, UNNAMED_FIRST)
              and parses_as_times(data, UNNAMED_FIRST)):
            # (newuser47: pandas' to_csv of a frame indexed by its dates, a wide table's, writes them first under an
            # empty header, polars' column_1: it was asked for --time-col and --target-col, a wide file needing neither)
            # (not an index of bare integers, which to_csv writes of row numbers: a slice's 1001..1028 read as years)
            time_col = UNNAMED_FIRST
            typed = (f"--time-col {UNNAMED_FIRST} as its first column, without a header, of times (the date index "
                     "pandas' to_csv writes)")
    if target_col is None and "y" in columns and time_col != "y":
        target_col = "y"
        guessed.append("--target-col y")
    if not id_col:
        taken = (time_col, target_col, *covariates)
        tier = next((names for names in (ID_NAMES, MORE_ID_NAMES)
                     if any(c.strip().lower() in names and c not in taken for c in columns)), ())
        named = "unique_id" if "unique_id" in columns else _named_one(columns, tier, taken)
        # (a column named as a series under which the times still repeat is not the series alone: 'store' beside
        # 'sku'; taken, each store's rows of equal values were dropped as exact duplicates, revC43)
        if named is not None and named not in (time_col, target_col) and (
                named == "unique_id" or (time_col is not None and wide_probe(data, time_col, long_only=True) is not None
                                         and times_repeat_within(data, time_col, [named]) is False)):
            id_col = [named]
            guessed.append(f"--id-col {shlex.quote(named)}")
    lone = None
    if target_col is None and time_col is not None:
        target_col, by_name = _guessed_target(data, columns, time_col, id_col or [], covariates)
        if target_col is not None and by_name:
            guessed.append(f"--target-col {shlex.quote(target_col)}")
        elif target_col is not None:
            lone = f"--target-col {shlex.quote(target_col)} as its one other number column"
        elif not id_col and (single := _single_series(data, time_col, covariates)) is not None:
            target_col, fixed = single
            id_col = list(fixed)
            # (several id columns are joined with '|' into the series' key, `sources`)
            lone = (f"--target-col {shlex.quote(target_col)} as its one number column, one series: its times do not "
                    f"repeat, {' '.join(f'--id-col {shlex.quote(c)}' for c in fixed)} as the "
                    f"{noun(len(fixed), 'column')} of one value in every row, the series {'|'.join(fixed.values())!r}")
        # (a file of one number column and no text column, `Date,sales`, stays a wide file of one column, its series
        # named after the column, `_layout_of`: as it was read before src44, which named it after the dataset, so a
        # home that had published it saw its series' id change)
    if guessed or lone or typed:
        read = [f"{role} <- {' + '.join(repr(c) for c in cols)}"
                for role, cols in (("unique_id", id_col or []), ("ds", [time_col] if time_col else []),
                                   ("y", [target_col] if target_col else [])) if cols]
        why = [f"{' '.join(guessed)} guessed from their names"] if guessed else []
        console.print(f"note: {data} is read with columns: {', '.join(read)} ({'; '.join([*why, *(s for s in (typed, lone) if s)])}"
                      "; pass the options to read other columns)", highlight=False)
    return id_col, time_col, target_col


def _guessed_target(data: str, columns: list[str], time_col: str, id_col: list[str],
                    covariates: list[str]) -> tuple[str | None, bool]:
    """The target of a long file (one with a series column, given or guessed) where the command names none and no
    column is named `y`: its one column named as a target (`TARGET_NAMES`: 'sales', 'units'), else its one number
    column besides the time, the series and the covariates; with whether it was named so. (None, False) for several
    or none (the command asks for --target-col, naming the columns), and for a file without a series column: a wide
    file's columns are each a series, and one with a text column is told what keeps it from being read as wide."""
    from flowcast.data.probes import wide_probe

    if not id_col:
        return None, False
    probe = wide_probe(data, time_col, long_only=True) or wide_probe(data, time_col)
    if probe is None:
        return None, False
    taken = (time_col, *id_col, *covariates)
    named = _named_one(columns, TARGET_NAMES, taken)
    if named is not None:
        return named, True
    numbers = [c for c in probe[0] if c not in taken]
    return (numbers[0], False) if len(numbers) == 1 else (None, False)


def _single_series(data: str, time_col: str, covariates: list[str]) -> tuple[str, dict[str, str]] | None:
    """A file of one series without an id column named (`Date,store,sales` of one store): no time written twice,
    exactly one number column besides the time and the covariates, and one text column or more, each one value in
    every row: (its number column, the target; the text columns with their value, the series' id). None otherwise:
    number columns alone (`Date,sales`; `date,north,south`) are a wide file's series, each named after its column
    (`_layout_of`), a text column of several values may tell series apart, and the command asks for the option. Of a
    folder or glob, its columns are its first file's (`wide_probe`: a glob of wide files may share their dates), the
    values and times every file's (`constant_values`): files of other series, or of one id on the same dates, are
    not one series (globs46: a folder of 40 files was named one series, 's0', off its first file)."""
    from flowcast.data.probes import constant_values, wide_probe

    probe = wide_probe(data, time_col)  # (None: its times repeat, or it cannot be read cheaply)
    if probe is None:
        return None
    numbers = [c for c in probe[0] if c not in covariates]
    texts = [c for c, _ in probe[1] if c not in covariates]
    if len(numbers) != 1 or not texts:
        return None
    named = constant_values(data, texts, time_col, tuple(numbers))
    return None if named is None else (numbers[0], named)


def _as_of_of_file(data: str, as_of: str | None, time_col: str | None, tz: str | None) -> datetime | None:
    """The instant of a command's as_of for reading a --data file's layout and frequency off its rows by then: a
    date alone is that day in the file's zone (--tz, else a Parquet time column's own zone, as `parse_run_as_of`
    reads it for the run); None without one."""
    if as_of is None:
        return None
    zone = tz
    if zone is None and time_col is not None and is_date_only(as_of):
        from flowcast.data.source_files import file_time_zone

        try:
            zone = file_time_zone(SourceConfig(name="probe", path=data, time_col=time_col, target_col="-", freq="1d"))
        except Exception:  # noqa: BLE001 - unreadable: the run's own reading says what is wrong
            zone = None
    try:
        return parse_as_of(as_of, "--as-of", zone)
    except ConfigError:  # (said by the command, naming its option: --as-of, --start)
        return None


def check_backfill_readings(data: str | None, source: SourceConfig | None, dates: list[datetime], *,
                            freq_given: bool) -> None:
    """A backfill of a --data file whose frequency (no --freq) or wide-vs-long layout were read off its rows by --start
    (`resolve_settings`): each date of it must read them so by its own rows, as a run at that date does (`flowcast
    run --as-of`), or the backfill is refused, naming the first date that reads otherwise and what it reads. A daily
    history whose rows turn hourly within the range had every date read daily, where the runs of the later dates read
    hourly; a backfill whose --start lies before the file's first row read all its rows, those after each date too.
    Dates with no row by them are left to their runs, which say so. `dates`: the backfill's as_ofs (naive UTC). The
    frequencies off one reading of the rows by the last date (`freq_infer.freq_by_dates`), a date that differs
    confirmed by a reading of its own (`explain_freq_by`); the layout off each date's rows (`probes.wide_probe`,
    a pass over the file's text). Not of a URL, which each reading would download again (its dates are read as its
    first date's rows say, as before)."""
    from flowcast.data.freq_infer import Inferred, explain_freq_by, freq_by_dates

    if data is None or source is None or len(dates) < 2 or "://" in data:
        return
    probe_layout = source.layout == "wide" or not source.id_cols  # (what `_layout_of` read: no --id-col given)
    if freq_given and not probe_layout:
        return
    covariates = [*source.future_cols, *source.past_cols, *source.static_cols]
    target = None if source.layout == "wide" else source.target_col  # (a wide file was read so without one)
    instants = [day.replace(tzinfo=UTC) for day in dates]
    try:
        readings = freq_by_dates(source, instants)  # (None: no row by that date)
    except FlowcastError:
        return  # a file its reading fails: each date's run says why
    first = f"the backfill's first date ({utc_text(dates[0])})"
    for day, when, found in zip(dates, instants, readings, strict=True):
        if found is None:
            continue  # (its run says that it has nothing to read)
        at = f"a run at {utc_text(day)}"
        advice = (f"; each date of a backfill reads its rows as its own run would: backfill the dates before "
                  f"{utc_text(day)} and those from then on apart")
        if probe_layout:
            layout = _layout_of(data, None, source.time_col, target, covariates, as_of=when, tz=source.tz,
                                time_format=source.time_format, say=False)
            if layout != source.layout:
                raise ConfigError(f"--data {data} is read as a {source.layout} file by {first}, but {at} reads it as "
                                  f"a {layout} one (by its rows then){advice}")
        # (the rows' step: the run of a --data file without --freq reads its frequency off it, `_inferred_freq`,
        # --aggregate or not; an aggregated source's inferred frequency is its freq, `Inferred.step` the rows')
        if freq_given or (isinstance(found, Inferred) and found.written == source.freq):
            continue
        try:
            found = explain_freq_by(source, when)  # (its own reading: the rows by it may read otherwise)
        except FlowcastError:
            continue  # a date whose reading fails: its run says why
        if found is None or (isinstance(found, Inferred) and found.written == source.freq):
            continue
        what = (f"at --freq {found.written} ({found.share:.0%} of {found.steps:,} consecutive steps by then)"
                if isinstance(found, Inferred) else f"at no frequency ({found})")
        if readings[0] is None:  # (`explain_freq`: all its rows then)
            first = f"all its rows (none is dated by the backfill's first date, {utc_text(dates[0])})"
        raise ConfigError(f"--data {data} without --freq: its dates step by {source.freq} by {first}, but {at} reads "
                          f"them {what}{advice}, or give --freq to read every date at one frequency")


def _layout_of(data: str, id_col: list[str] | None, time_col: str | None, target_col: str | None,
               covariates: list[str] | None = None, *, as_of: datetime | None = None, tz: str | None = None,
               time_format: str | None = None, say: bool = True) -> str:
    """A file given with --time-col alone (no --id-col, no --target-col) whose other columns all hold numbers is
    wide: a date column and one column per series, as spreadsheets export it; each column is read as a series
    (said on stderr and in the data-quality report). Given --target-col, such a file reads that one column as
    one series: say so, since its other columns are then ignored (`say`: the notes on the console)."""
    if id_col or not time_col:
        return "long"
    from flowcast.data.probes import wide_probe
    from flowcast.data.scan import wide_series_columns

    probed = wide_probe(data, time_col, 200, as_of=as_of, tz=tz, time_format=time_format)  # (its rows by as_of)
    numeric, text = probed if probed is not None else ([], [])
    if text and target_col in numeric:  # a text column kept it long: its other series were only 'undeclared'
        others = [c for c in numeric if c != target_col and c not in (covariates or [])]
        if others and say:
            console.print(f"note: {data} reads --target-col {target_col} as its one series; its other number columns "
                          f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}) are not used. If each is a "
                          f"series (a wide file), remove its {noun(len(text), 'text column')} "
                          f"({', '.join(repr(c) for c, _ in text[:3])}) and leave out --target-col", highlight=False)
        return "long"
    if not numeric or text:
        return "long"
    if target_col is None:
        series = wide_series_columns(numeric, time_col, covariates or [])  # (the run's melt: covariates are none)
        if say and len(series) == 1:  # (`Date,sales`: its series is named after the column, as before src44)
            console.print(f"note: {data} has no --target-col and no --id-col, and its one series column beside "
                          f"{time_col} holds numbers: it is read as a wide file of one column, its one series named "
                          f"{series[0]!r} after the column, as a wide file names its series; pass --target-col "
                          f"{shlex.quote(series[0])} for a long file, its series named after the dataset",
                          highlight=False)
        elif say and series:  # (none: the run's melt says that a wide file needs a column per series)
            shared = [c for c in numeric if c not in series]
            covariate = f", and {listed(shared)} {noun(len(shared), 'a covariate', 'covariates')} of each" if shared else ""
            # --id-col only where a column may be the series' id (`_number_id`): vic_elecdemand's `Demand,Temperature,
            # WorkDay`, no date written twice, was told to pass --id-col
            ids = _number_id(data, time_col, series)
            options = f"--target-col and --id-col (e.g. --id-col {shlex.quote(ids[1])})" if ids else "--target-col"
            # newuser49: a wide file's 'Temperature' beside its regions was forecast as a series of its own (and
            # scored with them in the backtest), the note naming it among the series alone
            named = _covariate_named(series)
            past = " ".join(f"--past-col {shlex.quote(c)}" for c in named)
            not_series = (f"; {listed([repr(c) for c in named])} {'is' if len(named) == 1 else 'are'} named as "
                          f"{noun(len(named), 'a covariate', 'covariates')}, not {noun(len(named), 'a series', 'series')}: give {past} (known up to each "
                          f"period; --future-col: known ahead) to use {'it' if len(named) == 1 else 'them'} as "
                          f"{noun(len(named), 'a covariate', 'covariates')} of each series rather than forecast "
                          f"{'it' if len(named) == 1 else 'them'}") if named and len(named) < len(series) else ""
            console.print(f"note: {data} has no --target-col and no --id-col, and its columns beside {time_col} "
                          f"hold numbers: it is read as a wide file, each of its {len(series)} columns a series "
                          f"({', '.join(series[:5])}{', ...' if len(series) > 5 else ''}){covariate}; pass "
                          f"{options} for a long file{not_series}", highlight=False)
        return "wide"
    others = [c for c in numeric if c != target_col and c not in (covariates or [])]  # (a --future-col is used)
    if others and target_col in numeric and say:
        console.print(f"note: {data} reads --target-col {target_col} as its one series; its other number columns "
                      f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}) are not used. If each column is "
                      f"a series (a wide file), leave out --target-col", highlight=False)
    return "long"


# a column named as a period: '2024-01-31', '2024-01', '2024', '2024Q1', '2024-W05', '31.01.2024', '1/31/24', 'Jan 2024',
# '1939 Jan'
_PERIOD_NAME_RE = re.compile(
    r"^(\d{4}([-/.]?(\d{1,2}|[Qq][1-4]|W\d{2})([-/.]\d{1,2})?)?([ T]\d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|[A-Za-z]{3,9}\.?[ \-/]?\d{2,4}|\d{4}[ \-/][A-Za-z]{3,9}|[Qq][1-4][ \-/]?\d{4})$"
)


def _refuse_periods_across(data: str, time_col: str | None, target_col: str | None) -> None:
    """A file with one row per series and one column per period (dates across: a planning spreadsheet,
    'product,2022-01,2022-02,...') is neither long nor wide: it was told 'also needs --time-col, --target-col',
    which it has no column for, and given --time-col product it was read as wide, each period a series, with every
    row quarantined ("time 'apples' does not parse"). Say what it is and how to melt it."""
    from flowcast.data.probes import columns_of, head_text_of

    columns = columns_of(data)
    if not columns or (target_col is not None and not _PERIOD_NAME_RE.match(target_col.strip())):
        return
    periods = [c for c in columns if _PERIOD_NAME_RE.match(c.strip())]
    if len(periods) < 3 or 2 * len(periods) < len(columns) or (time_col is not None and time_col in periods):
        return
    index = [c for c in columns if c not in periods]
    values = head_text_of(data, index) if index else {}
    if values is None or any(_PERIOD_NAME_RE.match(v) for vs in values.values() for v in vs):
        return  # a column of times beside columns named as numbers: a wide file whose series are numbered ('1001')
    keys = ", ".join(f"'{c}'" for c in index)
    ids = "".join(f"--id-col {shlex.quote(c)} " for c in index)
    # (named after the file: 'long.csv' overwrote a file of that name in the folder it was run in, newuser48)
    melted = f"{_name_of(data)}_long.csv"
    if data.lower().endswith((".parquet", ".pq", ".parq")):
        read = f"pl.read_parquet('{data}')"
    else:
        sep = _separator_of(data)
        read = f"pl.read_csv('{data}'{'' if sep == ',' else f', separator={sep!r}'})"
    raise ConfigError(
        f"{data} has its periods across: {len(periods)} of its {len(columns)} columns are named as times "
        f"({periods[0]} .. {periods[-1]}), one row per series{f' ({keys})' if index else ''}; flowcast reads a long "
        "file (one row per series and period) or a wide one (a time column, one column per series). Melt it first: "
        f"python -c \"import polars as pl; {read}.unpivot(index=[{keys}], variable_name='period', "
        f"value_name='value').write_csv('{melted}')\", then --data {shlex.quote(melted)} {ids}--time-col period "
        "--target-col value"
    )


def _separator_of(data: str) -> str:
    """The separator of a plain CSV file's first line: ',' unless it has none and has ';', a tab or '|'."""
    try:
        with open(data, encoding="utf-8", errors="replace") as fh:
            line = fh.readline()
    except OSError:
        return ","
    return next((sep for sep in (";", "\t", "|") if sep in line), ",") if "," not in line else ","


def _declared_datasets(config: Path | None) -> set[str]:
    """The bundled datasets and the [sources.NAME] of the configuration file read (none when it cannot be read:
    the command's own reading of it says why)."""
    from flowcast.data.datasets import BUNDLED_DATASETS

    try:
        configured = set(load_settings(config).sources)
    except Exception:  # noqa: BLE001 - said where the settings are loaded
        configured = set()
    return set(BUNDLED_DATASETS) | configured


def _name_of(data: str) -> str:
    """The dataset name of a file given with --data: its name without its format and compression suffixes, as a
    store key ('Sales Data 2023 (v2).csv' -> 'Sales_Data_2023_v2', 'sales.csv.gz' -> 'sales', 'store.north.csv' ->
    'store.north'), a glob's folder ('sales/*.csv' -> 'sales'). A name the store cannot key ('*') failed the run at
    publish, after training; a name cut at its first dot put 'store.north.csv' and 'store.south.csv' under one
    dataset 'store': one production model and one set of published forecasts for two files' series. A URL's name is
    its path's ('https://u:pw@h/x.csv?token=t' -> 'x'): its query made it a glob, named for the folder, the user and
    password then ('u_pw_h'). An object store's '?' is a glob's ('s3://b/sales/day_?.csv' -> 'sales', as a local
    glob; 's3://b/*.csv' -> 'b'), an HTTP URL's a query's; a URL urllib cannot split ('https://[h/x.csv') is named
    all the same. A keyword DSN's password is no part of it ('host=db password=s3cret dbname=x' ->
    'host_db_password_dbname_x': the password was in the name, which logs, the store and Prefect show, secrets52). A
    file:// URL's path is percent-decoded ('file:///data/my%20sales.csv' -> 'my_sales', as '/data/my sales.csv'), as
    it is read (`source_files._file_url_path`), an escaped '*' no glob's ('file:///data/q%2A.csv' -> 'q', the file
    '/data/q*.csv')."""
    from flowcast.data.csv_text import data_file_stem
    from flowcast.data.source_files import _file_url_path, _is_glob

    pattern = True  # (a '*', '?' or '[' of the name may be a glob's: a file:// URL's escaped one is not)
    if "://" in data:  # a URL: its host's and path's, never its user, password or an HTTP query
        scheme, _, rest = redact(data).partition("://")
        if scheme.lower() in ("http", "https"):
            rest = re.split(r"[?#]", rest, maxsplit=1)[0]
        where, _, within = rest.partition("/")
        if scheme.lower() == "file" and (local := _file_url_path(f"file://{rest}")) is not None:
            # its path percent-decoded, as it is read: 'file:///my%20sales.csv' was 'my_20sales'
            pattern, within = _is_glob(within), local.removeprefix("/")
        data = f"{where.rpartition('@')[2]}/{within}".rstrip("/")
    elif (shown := redact(data)) != data:  # a keyword DSN: its words, its password left out (its `***` a glob's)
        data = shown.replace(HIDDEN, "")
    path = Path(data)
    stem = data_file_stem(path.name)
    if pattern and _is_glob(stem):
        stem = path.parent.name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-")[:128]
    return stem or "custom"


def _note_unknown_env() -> None:
    """A FLOWCAST_* variable that no setting reads changes nothing: say so, naming the one it may be."""
    from flowcast.config import unknown_env

    for var, close in unknown_env(os.environ):
        console.print(f"[yellow]note:[/] {said(var)} is not a flowcast setting and is ignored"
                      + (f" (did you mean {said(close)}?)" if close else ""), highlight=False, markup=True)


def _sets_anything(path: Path) -> bool:
    """Whether the TOML file at `path` sets any value: a file of comments only (the repository's example
    flowcast.toml, which `make run` passes by) changes nothing when named either. A file that cannot be read or parsed
    counts as setting something (the note then tells its owner it was not read). Read as `load_settings` reads it
    (`read_config_file`: a byte-order mark at its start read past)."""
    import tomllib

    try:
        return bool(read_config_file(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True


def _note_unnamed_config(config: Path | None, home: Path | None = None) -> None:
    """A flowcast.toml in the working directory, or in the home (--home, FLOWCAST_HOME), is not read unless named:
    say so once, so that nobody wonders why their edits there change nothing. (One in the home, where a new user put
    it beside what the runs write, gave `unknown dataset 'mine'` for the source it declared, and nothing more.)"""
    if config is not None or os.environ.get("FLOWCAST_CONFIG"):
        return
    if Path(IMPLICIT_CONFIG_NAME).is_file():
        if not _sets_anything(Path(IMPLICIT_CONFIG_NAME)):  # the repository's example (all comments): nothing to miss
            return
        console.print(
            f"[yellow]note:[/] ./{IMPLICIT_CONFIG_NAME} is not read unless named: pass --config "
            f"{IMPLICIT_CONFIG_NAME} or set FLOWCAST_CONFIG={IMPLICIT_CONFIG_NAME} (the defaults are in effect)",
            highlight=False, markup=True,
        )
        return
    where = home if home is not None else (os.environ.get("FLOWCAST_HOME") or "").strip() or None
    if where is None or "://" in str(where):
        return
    in_home = Path(where).expanduser() / IMPLICIT_CONFIG_NAME
    if in_home.is_file() and _sets_anything(in_home):
        shown = shlex.quote(str(in_home))
        console.print(
            f"[yellow]note:[/] {said(str(in_home))} (in the home) is not read unless named: pass --config {said(shown)} "
            f"or set FLOWCAST_CONFIG={said(shown)} (the defaults are in effect)", highlight=False, markup=True,
        )


class InterruptedAfterwards(KeyboardInterrupt):
    """A Ctrl-C that came when the command's flow run had completed (`flowcast.interrupts`): its results
    stand, and the command still ends 'interrupted', exit 130. The message says what was done."""


def interrupted_afterwards(done: str) -> None:
    """After a command printed what its flow did: raise InterruptedAfterwards saying `done`, what the run had
    done when a Ctrl-C came that Prefect's flow engine swallowed (its flow run had completed: the command
    exited 0); nothing when `done` is empty (no such Ctrl-C)."""
    if done:
        raise InterruptedAfterwards(done)


def redacted_excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """`sys.excepthook` of a command that fails with FLOWCAST_DEBUG=1 (`cli_errors` raises the error): the traceback
    Python prints as the error ends the process, a URL's password and secret query values and a keyword DSN's password
    `***` in it (an error's message, a chained one's: a library's naming the URL it could not read showed them)."""
    import traceback

    sys.stderr.write(redact_log_text("".join(traceback.format_exception(kind, exc, tb))))


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; a FlowcastError becomes one red sentence and its exit code, no traceback.
    Set FLOWCAST_DEBUG=1 to see tracebacks. With --json, a command that fails before printing its
    JSON object still ends stdout with one: {"status": "failed", "error": ..., "exit_code": ...}, and "advice": the
    words the console shows after the error on what to do (a full disk, a file-size limit, a read-only home)
    (`flowcast run --json` printed nothing at all, so a script reading its last line had no object);
    so does `flowcast forecasts --format json`. Errors in the options themselves, raised before any
    command runs, are `app.FlowcastGroup`'s."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        emitted = _json_emitted
        json_out = bool(kwargs.get("json_out")) or kwargs.get("fmt") == "json"  # --json, forecasts' --format json

        def failed(error: str, code: int, advice: str = "") -> None:
            if json_out and _json_emitted == emitted:  # the advice the console shows, as its own field (a --json
                # caller of a failed RuntimeError write got no word of the room left or the file-size limit)
                emit_json({"status": "failed", "error": error, "exit_code": code,
                           **({"advice": advice.removeprefix("; ")} if advice else {})})

        def interrupted(after: str = "") -> typer.Exit:
            console.print("[yellow]interrupted[/]" + (f" {said(after)}" if after else ""), markup=True,
                          highlight=False)
            failed(f"interrupted {after}".strip(), 130)
            return typer.Exit(130)

        try:
            result = fn(*args, **kwargs)
            if getattr(sys.stdout, "silenced", False):  # its reader went away (flowcast.streams): the command
                raise typer.Exit(141)  # did its work all the same; it ends as one the signal ended (128 + SIGPIPE)
            return result
        except typer.Exit:
            raise
        except InterruptedAfterwards as exc:
            raise interrupted(str(exc)) from None
        except KeyboardInterrupt:
            raise interrupted() from None
        except BrokenPipeError:  # `flowcast models show V | head`: the reader has what it wanted
            _stdout_to_devnull()
            raise typer.Exit(141) from None  # 128 + SIGPIPE, as a process the signal ended
        except Exception as exc:
            if by_interrupt(exc):  # a Ctrl-C that a library turned into an error of its own
                raise interrupted() from None
            from flowcast.ops.reaper import note_unreported

            note_unreported(exc)  # a run left non-final (its API did not answer) is marked Crashed naming it
            if os.environ.get("FLOWCAST_DEBUG"):
                sys.excepthook = redacted_excepthook  # the traceback Python prints as the error ends the command
                raise
            if isinstance(exc, FlowcastError):  # a write a read-only home refused (the command's claim in .flow-runs,
                # faults31: `could not write ...: [Errno 30] Read-only file system` said nothing of what to do)
                advice = "" if "under its home" in str(exc) else _write_advice(exc)
                earlier = earlier_said(exc)  # an error it was raised while handling (a refusal, then a failed write)
                console.print(f"[bold red]error:[/] {said(exc)}{said(earlier)}{said(advice)}", highlight=False,
                              markup=True)
                failed(str(exc) + earlier, exc.exit_code, advice)
                raise typer.Exit(exc.exit_code) from None
            # anything unexpected: still one sentence, exit 1; a URL in it without its secrets (a library's error
            # naming the URL it could not read, a token in its query; a keyword DSN's `password=...`: it was shown,
            # secrets52), as a FlowcastError's message is
            text = redact_log_text(str(exc)) + earlier_said(exc)
            advice = _write_advice(exc) + _server_not_started(exc)  # the console's and --json's (fixJ52: not the
            # server's, to a --json caller)
            console.print(f"[bold red]error:[/] {_unreachable_api(exc)}{type(exc).__name__}: {said(text)} "
                          f"(FLOWCAST_DEBUG=1 shows the traceback){said(getattr(exc, 'flowcast_published', ''))}"
                          f"{said(advice)}", markup=True)
            failed(f"{type(exc).__name__}: {text}", 1, advice)
            raise typer.Exit(1) from None

    return wrapper


def _unwritable_advice(exc: BaseException) -> str:
    """What to do about a folder flowcast may not write (a read-only mount, another user's files): the bare
    `OSError: [Errno 30] Read-only file system: '<home>/cache'` named the path but not that every run writes
    under its home."""
    import errno

    seen: BaseException | None = exc
    for _ in range(8):  # the error or what it was raised from
        if seen is None:
            return ""
        if isinstance(seen, OSError) and seen.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return ("; flowcast writes its cache, models, runs and forecasts under its home (--home, FLOWCAST_HOME or "
                    "flowcast.toml's home): point it at a folder this user can write, or make that one writable, "
                    "and run the same command again")
        seen = seen.__cause__ or seen.__context__
    return ""


def _write_advice(exc: BaseException) -> str:
    """What to do about a write that failed: one flowcast may not make (`_unwritable_advice`) or one that found no
    room (`_no_room_advice`); '' for any other error."""
    return _unwritable_advice(exc) or _no_room_advice(exc)


_GC = ("(`flowcast gc` lists what the [retention] policy lets go, old run folders, cache entries and models, and "
       "`flowcast gc --yes` removes it)")


def _no_room_advice(exc: BaseException) -> str:
    """What to do about a write that found no room, where the error does not say it (faults52: a full home stopped
    `flowcast backfill` at its claim in `.flow-runs/` with `could not write ...: no space left on device (the disk is
    full); the previous file, if any, is intact`, neither the room left nor what to free): the room left in the folder
    written (`atomic.room_for`) and to free space there (`flowcast gc`) or point --home elsewhere. A full quota (EDQUOT)
    is this user's, whatever room the disk has (fixJ52: '75,831,631,872 bytes free ... free space on that disk'). A
    file too large (EFBIG), which no free space lifts: the `ulimit -f` set, and to raise it; with none set, the file
    system's largest file. '' for other errors and for errors that say what to do (a quarantine's `Free space
    there`, a backfill's `once there is room`)."""
    from flowcast.atomic import no_room, over_quota, room_for, size_limited

    text = str(exc)
    if not no_room(exc) or any(done in text.lower() for done in ("free space", "there is room", "ulimit")):
        return ""
    if size_limited(exc):
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit == resource.RLIM_INFINITY:
            return ("; the file grew past the largest file its file system takes (no file-size limit, `ulimit -f`, "
                    "is set; FAT32 takes 4 GiB at most), which no free space lifts: point --home at a disk of "
                    "another file system (ext4, XFS, APFS, NTFS) and run the same command again")
        return (f"; a file-size limit stopped the write (ulimit -f: {limit:,} bytes for this command, `ulimit -f "
                f"{limit // 1024}` in the shell that started it), which no free space lifts: raise it (`ulimit -f "
                "unlimited`) and run the same command again")
    folder = _written_folder(exc)
    room = room_for(folder) if folder is not None and "bytes free in" not in text else ""
    if over_quota(exc):
        return (f"; this user's disk quota is full{f', whatever room the disk has ({room})' if room else ''}: free "
                f"some of this user's files there {_GC}, ask for a larger quota, or point --home at a disk where this "
                "user has room, and run the same command again")
    return (f"; {f'{room}: ' if room else ''}free space on that disk {_GC} or point --home at a disk with room, and "
            "run the same command again")


def _written_folder(exc: BaseException) -> Path | None:
    """The folder of the file a failed write wrote (an OSError's file name, else a flowcast error's `could not write
    <path>: `), or the folder above it (a temp folder the failure left none of); None where neither exists or none is
    said (the room of a folder far above it, `/`, would say nothing of the disk written)."""
    seen: BaseException | None = exc
    path: str | None = None
    for _ in range(8):  # the error or what it was raised from
        if seen is None:
            break
        if isinstance(seen, OSError) and isinstance(seen.filename, str):
            path = seen.filename
            break
        seen = seen.__cause__ or seen.__context__
    if path is None and (found := re.search(r"could not write (/.+?): ", str(exc))):
        path = found.group(1)
    if path is None:
        return None
    folder = Path(path).parent
    return next((f for f in (folder, folder.parent) if f.is_dir()), None)


# Prefect's words when its temporary server did not answer within its start-up time
SERVER_NOT_STARTED = "Timed out while attempting to connect to ephemeral Prefect API server"


# the room below which a temporary server's database (a SQLite file) may well not have been written
_SERVER_DB_LOW_ROOM = 64 * 1024 * 1024


def _server_not_started(exc: BaseException) -> str:
    """Why Prefect's temporary server may not have started and what to do, where it did not (faults52: with `ulimit -f
    64` its database could not be written, `disk I/O error`; uvicorn started it 5 times, 840 lines of tracebacks, and
    the command ended with `error: RuntimeError: Timed out while attempting to connect to ephemeral Prefect API
    server.` alone): where its database's disk has little room (under `_SERVER_DB_LOW_ROOM`) or this command has a
    file-size limit, which the server inherits, that a write to its database (a SQLite file: the room left in its
    folder) may have failed, and the limit; otherwise (fixJ52: it said a write failed on a disk with room and no
    limit) that it did not start in time and how to see why. '' for other errors."""
    import resource

    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from flowcast.atomic import bytes_free, room_for
    from flowcast.ops.reaper import error_chain

    if not any(SERVER_NOT_STARTED in str(e) for e in error_chain(exc)):
        return ""
    url = str(PREFECT_API_DATABASE_CONNECTION_URL.value() or "")
    db = url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url else None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    limited = limit != resource.RLIM_INFINITY
    room = bytes_free(Path(db).parent) if db else None
    if not limited and (room is None or room >= _SERVER_DB_LOW_ROOM):
        return ("; Prefect's temporary server did not start in time and no flow ran: its log above says why "
                "(PREFECT_LOGGING_LEVEL=DEBUG says more; `prefect server start` in a shell of its own shows a server's "
                "errors as it starts). Run the same command again, or set PREFECT_API_URL to a running Prefect server")
    where = f"its database {db} ({room_for(Path(db).parent)})" if db else "its database"
    lim = f", under this command's file-size limit (`ulimit -f {limit // 1024}`), which the server inherits" if limited else ""
    return (f"; Prefect's temporary server did not start and no flow ran: its log above says why (`disk I/O error` or "
            f"`database or disk is full`: a write to {where} failed{lim}). Free space there"
            f"{' or raise the limit (`ulimit -f unlimited`)' if limited else ''}, or set PREFECT_API_URL to a running "
            "Prefect server, and run the same command again")


def _unreachable_api(exc: BaseException) -> str:
    """Where a connection error came from: the Prefect API it could not reach ('error: ConnectError: [Errno
    111] Connection refused' named no server), and what became of the run; '' for other errors."""
    from flowcast.ops.reaper import api_unreachable

    if not api_unreachable(exc):
        return ""
    from prefect.settings import PREFECT_API_URL

    url = redact(PREFECT_API_URL.value() or "")  # the only guard: printed before the error's redacted text
    return (f"the Prefect API{f' at {url}' if url else ''} did not answer and the run stopped (its log above says "
            "how far it got; if it could not report its final state there either, it is marked Crashed, naming "
            "this error, once the API answers again: `flowcast reap` does it at once); start that server again, "
            "or unset PREFECT_API_URL to run on a temporary one, and run the same command again: an as_of it "
            "published is not published twice: ")


def _stdout_to_devnull() -> None:
    """After the reader of stdout went away: later writes and the interpreter's last flush go nowhere
    (without this, Python ends with 'Exception ignored ... BrokenPipeError')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass


_json_emitted = 0  # JSON objects printed so far: a command that printed its own is not given a second


def emit_json(obj: Any) -> None:
    """One JSON object on the last line of stdout."""
    global _json_emitted
    sys.stdout.flush()
    print(json.dumps(obj, default=str), flush=True)
    _json_emitted += 1


def call_flow(flow: Any, **params: Any) -> dict[str, Any]:
    """A flow called in-process with keyword parameters; its return value (Prefect's overloads of
    `Flow.__call__` cannot type a call with **params). A Prefect API gone as its flow run was being created
    is waited out as one gone later in the run is (`api_watch.created_once_answering`)."""
    from flowcast.ops.api_watch import created_once_answering

    result: dict[str, Any] = created_once_answering(lambda: flow(**params))
    return result


def missing_home_hint(settings: Any, folder: Any) -> str:
    """A clause for a reader that found nothing in `folder` because it does not exist: the home was moved or
    copied elsewhere and the original is gone, or --home / FLOWCAST_HOME point at the wrong place."""
    if not isinstance(folder, (str, os.PathLike)) or "://" in str(folder) or os.path.exists(folder):
        return ""
    home = Path(settings.home).resolve()
    where = ("" if os.path.isdir(home) else f": the home {home} does not exist either")
    return (f" (that folder does not exist{where}; if the home was moved or copied, point --home or FLOWCAST_HOME "
            "at its new place, or `home` / `[store] url` of your --config file)")


def _undone_text(settings: Any, dataset: str, as_of: Any, content_hash: str | None, run: str) -> str:
    """What `note_publish_of_this_command` adds where the record of that publish says its run is still to leave its
    plot, receipt artifact and published event (`saying`): the API went away before it did (ops52: the error said
    the forecasts were published, nothing of the receipt the run never left, which its log never said either)."""
    from flowcast.ops.quiet import publish_record

    record, _ = publish_record(settings, dataset=dataset, as_of=as_of, content_hash=content_hash)
    if record is None or record.get("saying") != run:
        return ""
    return ("; the API went away before that run left their receipt artifact and published event (its plot may be "
            "left): the same command run again leaves them, once")


def note_publish_of_this_command(exc: BaseException, settings: Any, as_of: Any) -> None:
    """After a run or forecast command failed because its Prefect API stopped answering: when a flow run of
    this command had published `as_of` before (its publish task wrote the forecasts, then could not report
    it), say so on the error (`flowcast_published`): the run's log never reached 'Published', and the error
    alone read as if nothing had been (the forecasts and the promotion were in place)."""
    if not _unreachable_api(exc):
        return
    try:
        from flowcast.data.datasets import source_tz
        from flowcast.ops.reaper import CLAIMS, start_time
        from flowcast.store import open_store
        from flowcast.timekeys import as_instant, storage_naive

        me, mine = os.getpid(), start_time(os.getpid())
        runs = set()
        for path in (Path(settings.home) / CLAIMS).glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                claim = json.loads(path.read_text())
                if claim.get("pid") == me and str(claim.get("pid_start")) == str(mine) and claim.get("flow_run_id"):
                    runs.add(str(claim["flow_run_id"]))
        if not runs:
            return
        store = open_store(settings)
        # a date alone (what `flow_as_of` hands the flow) is that day on the source's calendar, as the run read it
        key = storage_naive(as_instant(as_of, source_tz(settings))) if as_of is not None else None
        for dataset in store.datasets():
            published = store.as_ofs(dataset)  # without --as-of (now): the run's publish is the newest
            when = key if key is not None else (published[-1] if published else None)
            if when is not None and store.has(dataset, when) and (
                    run := (receipt := store.receipt_of(dataset, when)).get("run_id")) in runs:
                exc.flowcast_published = (  # type: ignore[attr-defined]
                    f"; its forecasts of {dataset} as_of {utc_text(when)} were published before the API went "
                    f"away (flow run {run}): they are whole, and the same command run again publishes them once"
                    + _undone_text(settings, dataset, when, receipt.get("content_hash"), str(run)))
                return
    except Exception:  # noqa: BLE001 - a note on an error: never a second error
        return
