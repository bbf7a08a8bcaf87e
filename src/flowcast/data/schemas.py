"""The data contracts, declared once: pandera models plus the row-level checks.

Two pandera (polars) models:

- `MappedObservations`: what ingestion produces after mapping raw columns to canonical names
  (`unique_id`, `ds`, `y` may still be null or unparsed). Validated on the LazyFrame, so only
  column names and types are checked (pandera runs no value checks on a LazyFrame).
- `Observations`: canonical, valid observations. Validated on the collected valid frame with
  `lazy=True` (all failures reported at once): ids present, ds present, y null or finite.

Row-level failures are polars expressions (`ROW_CHECKS`): each names a check, a condition that
marks a failing row, and a reason built from the row's own values. They run vectorised over the
whole frame and produce the `check` / `reason` columns of the quarantine. This split is deliberate:
pandera's value checks collect failure cases per check and its `unique` check alone takes ~3 s on
10M rows, so the per-row work is done by polars and pandera guards the schema of the result.
Uniqueness of (unique_id, ds) is enforced by the duplicate checks in validate.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandera.polars as pa
import polars as pl

from flowcast.data.calendar import on_grid, parse_freq

# internal column names used between ingestion and validation
RAW_PREFIX = "__raw__"  # original values of each raw column, for the quarantine
ROW = "source_row"  # 0-based row number across the source's files
TIME_AWARE = "__ds_aware"  # the raw time carried a UTC offset / zone
DS_RAW = "__ds_raw"  # parsed time before it was aligned to the period grid
# the time a row is compared with as_of by, on the ds axis: DS_RAW, but for a daily or coarser time written with an
# offset the wall time in the source's zone of the instant it names (DS_RAW keeps the date as written)
DS_SEEN = "__ds_seen"
# the offset a row's time was written in (its wall time as written less the instant it names, a Duration); null for a
# time without one. The instant a period's end names (`periods.period_not_over`) and a series' clock at an instant
# (`periods.seen_shifts`, `evaluation.realized.observed_through_series`) are read in it
DS_OFFSET = "__ds_offset"
# an aggregated source whose rows can be seen apart from their time as written: `periods.period_not_over` at as_of,
# computed once by ingest (its window over (series, period)) for the rows kept and validate's counts both
NOT_OVER = "__not_over"
TIME_LOCAL_ISSUE = "__ds_local"  # a naive local time that is 'nonexistent' or 'ambiguous' in the source's tz


class MappedObservations(pa.DataFrameModel):
    """Mapped observations straight out of ingestion (names and types only)."""

    unique_id: str = pa.Field(nullable=True)
    ds: pl.Datetime = pa.Field(nullable=True)
    y: float = pa.Field(nullable=True)

    class Config:
        strict = False
        coerce = False


class Observations(pa.DataFrameModel):
    """Valid canonical observations: what validation hands to preprocessing."""

    unique_id: str = pa.Field(nullable=False, str_length={"min_value": 1})
    ds: pl.Datetime = pa.Field(nullable=False)
    y: float = pa.Field(nullable=True)  # null only where the source had no value

    @pa.dataframe_check(name="y_finite_or_null")
    def _y_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("y").is_null() | pl.col("y").is_finite())

    class Config:
        strict = False
        coerce = False


@dataclass(frozen=True)
class RowCheck:
    """One row-level check: rows where `fails` is true are quarantined with `reason`."""

    name: str
    fails: pl.Expr
    reason: pl.Expr
    description: str


MONTH_PHASE = "__month_phase"  # a multi-month source's usual phase per series (`usual_month_phase`), on its failing rows
WEEK_ANCHOR = "__week_anchor"  # a weekly source's weekday (1 Monday .. 7 Sunday), on its failing rows
# the first time from which every row of a weekly series falls off its weekday, none before it (else null), on its
# failing rows: the export changed the weekday its weeks are labelled by, and its latest weeks were quarantined
WEEK_SINCE = "__week_since"
# the first time of a weekly series on its weekday when every earlier row is off it (else null), on its failing rows:
# the export changed the weekday its weeks are labelled by, and the new one labels most weeks (or as many: the older
# weeks, not the latest, were quarantined)
WEEK_UNTIL = "__week_until"
# a time of the same column that read, as written, unlike a day/month date (validate joins it onto the failing rows
# of a source without a time_format): a '05/01/2023' among ISO dates is told to be written as they are, not to declare a
# time_format, which would apply to every row (it quarantined 59 of 60)
TIME_PEER = "__time_peer"
# a time of the same column written with a UTC offset, as written (validate joins it onto the failing rows of a source
# without a tz whose times may be mixed): a time without one beside it is told which rows carry one (it named its own
# row alone, the others' offsets left to be found)
OFFSET_PEER = "__offset_peer"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def month_phase(period_months: int) -> pl.Expr:
    """A date's place on a grid of `period_months` months (0 .. period_months - 1)."""
    return (pl.col("ds").dt.year().cast(pl.Int64) * 12 + pl.col("ds").dt.month().cast(pl.Int64)) % period_months


def usual_month_phase(period_months: int) -> pl.Expr:
    """A multi-month series' grid (its fiscal year's month): the most common phase among its parsed times."""
    return month_phase(period_months).drop_nulls().mode().min().over("unique_id")


def weekly_anchor() -> pl.Expr:
    """The weekday of a weekly series' grid: the most common one among its parsed times (per series: one store's
    weeks may end on Sundays and another's start on Mondays; one weekday for the whole source quarantined every
    row of the series on the other). Of two weekdays as common, the one of its latest row: an old Sunday export and a
    Monday one of as many weeks took Monday as the weekday that 'most' weeks fall on by its number alone, whichever was
    the newer (newuser53)."""
    weekday = pl.col("ds").dt.weekday()
    # (rows on the weekday, then the time: the latest row of the most common weekdays is the largest)
    key = weekday.count().over("unique_id", weekday).cast(pl.Int64) * 100_000_000 + pl.col("ds").dt.epoch("d")
    return weekday.get(key.arg_max()).over("unique_id")


def weekly_switch() -> pl.Expr:
    """`WEEK_SINCE` of each row, from the rows' `ds` and `WEEK_ANCHOR`: the series' first time off its weekday when
    every later row is off it too (a series labelled by Sundays, then by Mondays from 26 February on: its latest 20
    weeks were quarantined, each row named as 'a Monday, not a Sunday', and the threshold's advice to run without
    them forecast it from February). Null where the off rows are not the series' latest ones, or one row alone (a
    stray date, more likely than a new convention)."""
    off = pl.col("ds").dt.weekday() != pl.col(WEEK_ANCHOR)
    first_off = pl.col("ds").filter(off).min().over("unique_id")
    last_on = pl.col("ds").filter(~off).max().over("unique_id")
    return pl.when((first_off > last_on) & (off.sum().over("unique_id") >= 2)).then(first_off)


def weekly_switch_from() -> pl.Expr:
    """`WEEK_UNTIL` of each row, from the rows' `ds` and `WEEK_ANCHOR`: the series' first time on its weekday when
    every earlier row is off it, the switch `weekly_switch` tells of the other way round (labelled by Sundays, then
    by Mondays for as many weeks or more: its older Sunday weeks were quarantined, each 'a Sunday, not a Monday, the
    weekday that most of this series' weeks fall on', with no word of the switch, and the threshold's advice to run
    without them lost its history before it). Null where the off rows are not the series' earliest ones, or one row
    alone."""
    off = pl.col("ds").dt.weekday() != pl.col(WEEK_ANCHOR)
    last_off = pl.col("ds").filter(off).max().over("unique_id")
    first_on = pl.col("ds").filter(~off).min().over("unique_id")
    return pl.when((last_off < first_on) & (off.sum().over("unique_id") >= 2)).then(first_on)


HEADER_REPEATED = "header_repeated"  # a row check whose rows belong to no series (`validate._quarantine_rows`)


def _fiscal_pattern(usual: pl.Expr, period_months: int) -> pl.Expr:
    """', labelled in June: a fiscal year ending in June?' (or the months of a shorter period, 'Feb, May, Aug and
    Nov') for a series whose usual phase on a grid of `period_months` months is `usual`; '' for a grid that does not
    divide the year (its months change from year to year)."""
    if 12 % period_months:
        return pl.lit("")
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    full = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
            "November", "December"]
    said = pl.lit("")
    for phase in range(period_months):
        months = list(range(phase or period_months, 13, period_months))
        if len(months) == 1:
            text = f", labelled in {full[months[0] - 1]}: a fiscal year ending in {full[months[0] - 1]}?"
        else:
            text = f", labelled in {', '.join(names[m - 1] for m in months[:-1])} and {names[months[-1] - 1]}"
        said = pl.when(usual == phase).then(pl.lit(text)).otherwise(said)
    return said


def _grid_months_around(phase: pl.Expr, usual: pl.Expr, period_months: int) -> tuple[pl.Expr, pl.Expr]:
    """The months of a series' grid either side of a row off it ('2019-06' and '2020-06')."""
    back = (phase - usual) % period_months
    before = pl.col("ds").dt.offset_by(pl.format("-{}mo", back))
    after = before.dt.offset_by(f"{period_months}mo")
    return before.dt.to_string("%Y-%m"), after.dt.to_string("%Y-%m")


def _raw(col: str) -> pl.Expr:
    return pl.col(RAW_PREFIX + col)


# the largest |y| a row may hold: float32's range (the networks' dtype); larger values are quarantined (y_too_large)
Y_ABS_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max


UNSETTLED = "\u2063"  # sources.UNSETTLED: marks a number whose decimal mark its column leaves unsettled; never shown


def standard_and_saving(tz: str) -> tuple[timedelta, timedelta] | None:
    """`tz`'s UTC offsets in standard time and in daylight saving; None when it has no daylight saving (or is no
    zone). Read off the two halves of a fixed year (src never reads the clock): the one without daylight saving is
    standard time."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        return None
    moments = [datetime(2021, 1, 15, 12, tzinfo=zone), datetime(2021, 7, 15, 12, tzinfo=zone)]
    standard = next((m.utcoffset() for m in moments if not m.dst()), None)
    saving = next((m.utcoffset() for m in moments if m.dst()), None)
    return None if standard is None or saving is None else (standard, saving)


def standard_time_zone(tz: str) -> tuple[str, str] | None:
    """The IANA zone of `tz`'s standard time all year and its offset (('Etc/GMT-10', 'UTC+10:00') for
    Australia/Melbourne: no daylight saving), for a file written in standard time that was declared in its place's
    zone; None when `tz` has no daylight saving or its standard offset is not a whole number of hours (no Etc zone
    holds it)."""
    from datetime import timedelta

    offsets = standard_and_saving(tz)
    if offsets is None or offsets[0] % timedelta(hours=1):
        return None
    standard = offsets[0]
    hours = int(standard / timedelta(hours=1))
    return (f"Etc/GMT{-hours:+d}", f"UTC{hours:+03d}:00") if hours else ("UTC", "UTC")


def _bound_text(bound: float | None) -> str:
    """A declared y_min / y_max as written in a configuration: 0, 2.5, 1e+20 (not 0.0)."""
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e15 else repr(float(bound))


def _show(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Utf8).str.replace_all(UNSETTLED, "", literal=True).fill_null("<null>")


DAY_MONTH_RE = r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b"  # 31/01/2020, 01-31-2020, 1.2.20
# ... of which those that may have a two-digit year first instead ('24-03-01': ISO's order, '%y-%m-%d')
YEAR_FIRST_RE = r"^\s*(\d{2})[/.\-](\d{1,2})[/.\-](\d{2})\b"  # ... and '24/03/01' (Japanese, Chinese exports)


def valid_date(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """True where (year, month, day) is a calendar date (no 30 February, no 29 February but in a leap year)."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = (pl.when(month == 2).then(pl.when(leap).then(29).otherwise(28))
            .when(month.is_in([4, 6, 9, 11])).then(30).otherwise(31))
    return (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)


def day_month_readable(text: pl.Expr) -> pl.Expr:
    """True on a day/month date ('13/01/2020', '1.2.20') that day first or month first reads as a calendar date
    (its year last; a two-digit year is 1970..2069, as strptime's %y); false on one that neither reads ('01/32/2020',
    '31/02/2020': a typo) and on every other value. Such a date decides nothing about the column's order."""
    parts = text.str.extract_groups(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})\b")
    a, b, y = (parts.struct.field(k).cast(pl.Int32, strict=False) for k in ("1", "2", "3"))
    year = pl.when(parts.struct.field("3").str.len_chars() != 2).then(y).when(y < 70).then(y + 2000).otherwise(
        y + 1900)
    return (valid_date(year, b, a) | valid_date(year, a, b)).fill_null(False)


# the label of a spreadsheet's totals row, in the languages of the exports seen: Total, Grand Total, Subtotal,
# Sum, Totals, Summe, Gesamt(summe), Totaal, Totale, Total général
_TOTALS_RE = r"(?i)^(grand |sub-?)?totals?\b|^(sum|summe|gesamt|gesamtsumme|totaal|totale|somme)$"
# the label of a spreadsheet's summary row of another statistic (an average, a maximum), the whole value
SUMMARY_RE = (r"(?i)^(average|avg|mean|median|min|max|minimum|maximum|durchschnitt|mittelwert|moyenne|promedio|media)"
              r"\.?:?$")
# a note's first word and its colon ('Source:', 'Note:', 'Quelle:'): letters and spaces alone before the ':'
_NOTE_RE = r"^\p{L}[\p{L} ]*:(\s|$)"
# what the reason of a row without a readable time says of a note line (`row_checks`); validate keeps such a row's key
# out of the series with every row quarantined
NOTE_HINT = " (a note line? it is not an observation: leave notes and sources out of the rows)"
# ... as a series key (several id columns are joined with '|': 'Total|2024', 'north|Subtotal')
TOTALS_ID_RE = (r"(?i)(^|\|)\s*((grand |sub-?)?totals?\b[^|]*|sum|summe|gesamt|gesamtsumme|totaal|totale|somme)\s*"
                r"(\||$)")


# what to do with times written as bare numbers of up to 3 digits (week numbers 1 .. 52, a period index)
PERIOD_NUMBER_HINT = ("a week or period number without its year? no --time-format reads one: write each as a date, "
                      "the first day of its period (2024-01-01) or an ISO week (2024-W01)")


def _time_hint(raw: pl.Expr, peer: pl.Expr | None = None) -> pl.Expr:
    """Why a time did not parse as ISO-8601: a day/month order that only a time_format settles (or, `peer` a time
    of the column that read as written otherwise, that this one be written as it is), or a Unix epoch number
    (seconds parse with time_format %s)."""
    text = raw.cast(pl.Utf8).str.strip_chars()
    # the formats of the value as written: '01.01.2024' was told '--time-format %d/%m/%Y', which does not parse it
    sep = text.str.extract(r"^(\d{1,2})([/.\-])", 2)
    year = pl.when(text.str.contains(r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}")).then(pl.lit("%Y")).otherwise(pl.lit("%y"))
    clock = (pl.when(text.str.contains(r"^\S+\s+\d{1,2}:\d{2}:\d{2}\s*[AaPp][Mm]$")).then(pl.lit(" %I:%M:%S %p"))
             .when(text.str.contains(r"^\S+\s+\d{1,2}:\d{2}\s*[AaPp][Mm]$")).then(pl.lit(" %I:%M %p"))  # '2:30 PM'
             .when(text.str.contains(r"^\S+\s+\d{1,2}:\d{2}:\d{2}")).then(pl.lit(" %H:%M:%S"))
             .when(text.str.contains(r"^\S+\s+\d{1,2}:\d{2}")).then(pl.lit(" %H:%M")).otherwise(pl.lit("")))
    day_first = pl.concat_str([pl.lit("%d"), sep, pl.lit("%m"), sep, year, clock])
    month_first = pl.concat_str([pl.lit("%m"), sep, pl.lit("%d"), sep, year, clock])
    day_month = pl.concat_str([
        pl.lit(" (day/month order is ambiguous: declare its time_format, e.g. --time-format '"), day_first,
        pl.lit("' or '"), month_first, pl.lit("')")])
    day_said = pl.concat_str([pl.lit(" (day first: declare its time_format, --time-format '"), day_first, pl.lit("')")])
    month_said = pl.concat_str([pl.lit(" (month first: declare its time_format, --time-format '"), month_first,
                                pl.lit("')")])
    if peer is not None:  # among times that read: this one written as they are, its order settled or not
        parts = text.str.extract_groups(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
        a, b, y4 = (parts.struct.field(k) for k in ("1", "2", "3"))
        as_day, as_month = (pl.format("{}-{}-{}", y4, m.str.zfill(2), d.str.zfill(2)) for d, m in ((a, b), (b, a)))

        def as_peers(order: str, readings: pl.Expr, otherwise: pl.Expr) -> pl.Expr:
            return pl.when(peer.is_not_null()).then(pl.format(
                " ({}, and other times of the column are written like '{}': write this one as they are{}; a "
                "--time-format would apply to every row)", pl.lit(order), peer,
                pl.when(y4.is_not_null()).then(readings).otherwise(pl.lit("")))).otherwise(otherwise)

        day_month = as_peers("day/month order is ambiguous",
                             pl.format(" ({} day first, {} month first)", as_day, as_month), day_month)
        # '31/01/2023' among them too (a number above 12 settles its order): a time_format for it quarantined them
        day_said = as_peers("day first", pl.format(" ({})", as_day), day_said)
        month_said = as_peers("month first", pl.format(" ({})", as_month), month_said)
    # a first or second number above 12 settles the order: '31/01/2020' was told 'ambiguous' and given both
    first = text.str.extract(r"^(\d{1,2})[/.\-]", 1).cast(pl.Int32, strict=False)
    second = text.str.extract(r"^\d{1,2}[/.\-](\d{1,2})[/.\-]", 1).cast(pl.Int32, strict=False)
    yf_third = text.str.extract(YEAR_FIRST_RE, 3).cast(pl.Int32, strict=False)
    return (
        # '24-03-01': the year may be first ('%y-%m-%d') or last; nothing in the file said which
        pl.when(text.str.contains(YEAR_FIRST_RE) & (second <= 12) & (yf_third <= 31))
        # (every number 12 or below: day first too, which a German '01.02.10' is; it was left out of the formats)
        .then(pl.concat_str([pl.lit(" (a two-digit year first or last? declare its time_format, e.g. --time-format "
                                    "'%y"), sep, pl.lit("%m"), sep, pl.lit("%d'"),
                             pl.when(first > 12).then(pl.concat_str([pl.lit(" or '"), day_first]))
                             .otherwise(pl.concat_str([pl.lit(", '"), day_first, pl.lit("' or '"), month_first])),
                             pl.lit("'; time_format in [sources.NAME]; a four-digit year needs none)")]))
        # '01/32/2020', '31/02/2020': no date whichever number is the day (a typo; it settles no order)
        .when(text.str.contains(DAY_MONTH_RE) & ~text.str.contains(YEAR_FIRST_RE) & ~day_month_readable(text))
        .then(pl.lit(" (no date day first or month first)"))
        .when(text.str.contains(DAY_MONTH_RE) & (first > 12) & (second <= 12))
        .then(day_said)
        .when(text.str.contains(DAY_MONTH_RE) & (second > 12) & (first <= 12))
        .then(month_said)
        .when(text.str.contains(DAY_MONTH_RE))
        .then(day_month)
        # other shapes a spreadsheet or a database writes, given the format that parses them
        # a fiscal year ('2021/22', '2019-20', 'FY2023'): its label is no calendar period ('2021/22' was told
        # "a year and month? --time-format '%Y/%m'", which does not parse it)
        .when(text.str.contains(r"^\d{4}[-/.]\d{2}$") & (
            text.str.slice(5, 2).cast(pl.Int32, strict=False)
            == (text.str.slice(0, 4).cast(pl.Int32, strict=False) + 1) % 100))
        .then(pl.lit(" (a fiscal year? write the calendar year each one starts in, '2021' for '2021/22', with "
                     "--freq 1y)"))
        .when(text.str.contains(r"^(?i:FY) ?'?\d{2}(\d{2})?$"))
        .then(pl.lit(" (a fiscal year? write the calendar year it starts in, e.g. '2022' for a FY2023 that starts in "
                     "2022, with --freq 1y)"))
        # 'FY2024Q1', 'FY24 Q1': a fiscal quarter, told nothing ("does not parse as ISO-8601")
        .when(text.str.contains(r"^(?i:FY) ?'?\d{2}(\d{2})?[ \-/]?(?i:Q)[1-4]$"))
        .then(pl.lit(" (a fiscal quarter? write the first day of its calendar month, e.g. '2023-07-01' for a FY2024Q1 "
                     "that starts in July 2023, with --freq 1q; 3mo for quarters starting in other months)"))
        # '2017K1' (German Kalenderquartal), '2017T1' (trimestre): a quarter, told '--time-format gives the format
        # that reads them', where no strptime format reads a quarter
        .when(text.str.contains(r"^\d{4}[ \-/]?[KkTt][1-4]$"))
        .then(pl.format(" (a quarter? write it '{}Q{}', which is read as its quarter; no --time-format reads quarters)",
                        text.str.slice(0, 4), text.str.slice(-1)))
        .when(text.str.contains(r"^\d{4}[/.]\d{1,2}$"))  # 2024/03, 2024.03
        .then(pl.concat_str([pl.lit(" (a year and month? declare its time_format: --time-format '%Y"),
                             text.str.slice(4, 1), pl.lit("%m')")]))
        .when(text.str.contains(r"^[A-Za-z]{3}[ \-]\d{4}$"))  # Mar 2024, Mar-2024
        .then(pl.concat_str([pl.lit(" (a month name? declare its time_format: --time-format '%b"),
                             text.str.slice(3, 1), pl.lit("%Y')")]))
        .when(text.str.contains(r"^[A-Za-z]{3}[ \-]\d{2}$"))  # Mar-24 (Excel's mmm-yy), told nothing
        .then(pl.concat_str([pl.lit(" (a month name and a two-digit year? declare its time_format: --time-format '%b"),
                             text.str.slice(3, 1), pl.lit("%y')")]))
        .when(text.str.contains(r"^[A-Za-z]{4,9} \d{4}$"))  # March 2024
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%B %Y')"))
        .when(text.str.contains(r"^\d{1,2}-[A-Za-z]{3}-\d{4}$"))  # 05-Mar-2024 (Oracle's DD-MON-YYYY)
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%d-%b-%Y')"))
        .when(text.str.contains(r"^\d{1,2}-[A-Za-z]{3}-\d{2}$"))  # 5-Mar-24 (Excel's d-mmm-yy)
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%d-%b-%y')"))
        .when(text.str.contains(r"^[A-Za-z]{3} \d{1,2}, \d{4}$"))  # Mar 5, 2024
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%b %d, %Y')"))
        .when(text.str.contains(r"^[A-Za-z]{4,9} \d{1,2}, \d{4}$"))  # March 5, 2024
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%B %d, %Y')"))
        # a date with its weekday: Excel's long date formats, RFC 2822 (e-mail, HTTP, RSS exports)
        .when(text.str.contains(r"^[A-Za-z]{6,9}, [A-Za-z]{3,9} \d{1,2}, \d{4}$"))  # Monday, January 1, 2024
        .then(pl.lit(" (a long date with its weekday? declare its time_format: --time-format '%A, %B %d, %Y')"))
        .when(text.str.contains(r"^[A-Za-z]{6,9}, \d{1,2} [A-Za-z]{3,9} \d{4}$"))  # Monday, 1 January 2024
        .then(pl.lit(" (a long date with its weekday? declare its time_format: --time-format '%A, %d %B %Y')"))
        .when(text.str.contains(r"^[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"))
        .then(pl.lit(" (an RFC 2822 time? declare its time_format: --time-format '%a, %d %b %Y %H:%M:%S %z')"))
        .when(text.str.contains(r"^\d{1,2} [A-Za-z]{3} \d{4}$"))  # 5 Mar 2024
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%d %b %Y')"))
        .when(text.str.contains(r"^\d{1,2} [A-Za-z]{4,9} \d{4}$"))  # 5 March 2024
        .then(pl.lit(" (a month name? declare its time_format: --time-format '%d %B %Y')"))
        .when(text.str.contains(r"\d:\d{2}(:\d{2}(\.\d+)?)?\s*[A-Z]{3,5}$"))  # '... 10:00 CET': no single offset
        .then(pl.format(" (a time zone abbreviation? '{}' is not a UTC offset: export the times with their offset "
                        "(+01:00), or without a zone and declare the source's tz (--tz))",
                        text.str.extract(r"([A-Z]{3,5})$", 1)))
        .when(text.str.contains(r"^\d{9,10}$"))
        .then(pl.lit(" (Unix epoch seconds? declare its time_format: --time-format %s)"))
        .when(text.str.contains(r"^\d{12,13}$"))
        .then(pl.lit(" (Unix epoch milliseconds? export the times as ISO-8601, or as seconds with --time-format %s)"))
        # '1' .. '52' (week numbers, a period index): told '--time-format gives the format that reads them', where
        # no strptime format reads a number without its year
        .when(text.str.contains(r"^\d{1,3}$"))
        .then(pl.lit(f" ({PERIOD_NUMBER_HINT})"))
        .when(text.str.contains(r"^[1-7]\d{4}(\.\d+)?$"))  # 10000..79999: 1927..2118 as Excel day numbers
        .then(pl.lit(" (an Excel date serial number? format the column as a date (yyyy-mm-dd) in Excel before "
                     "saving the CSV)"))
        .otherwise(pl.lit(""))
    )


def _format_hint(raw: pl.Expr, time_format: str) -> pl.Expr:
    """Why a time did not parse with the declared time_format: %s reads Unix epoch seconds, and epoch
    milliseconds (JavaScript's Date.getTime, pandas' to_json) or microseconds read as seconds are years past
    9999 (such a value failed the run with "ValueError: year 54970 is out of range")."""
    text = raw.cast(pl.Utf8).str.strip_chars()
    if "%s" not in time_format:
        return pl.lit("")
    return (
        pl.when(text.str.contains(r"^-?\d{12,13}(\.\d+)?$"))
        .then(pl.lit(" (Unix epoch milliseconds? %s reads seconds: divide the column by 1000 or export the "
                     "times as ISO-8601)"))
        .when(text.str.contains(r"^-?\d{15,16}(\.\d+)?$"))
        .then(pl.lit(" (Unix epoch microseconds? %s reads seconds: divide the column by 1000000 or export the "
                     "times as ISO-8601)"))
        .otherwise(pl.lit(""))
    )


# a zone of each UTC offset that is not a whole hour, to name in a hint (the offset alone does not say the zone)
_HALF_HOUR_ZONES = {"+03:30": "Asia/Tehran", "+04:30": "Asia/Kabul", "+05:30": "Asia/Kolkata", "+05:45": "Asia/Kathmandu",
                    "+06:30": "Asia/Yangon", "+08:45": "Australia/Eucla", "+09:30": "Australia/Darwin",
                    "+10:30": "Australia/Adelaide", "+12:45": "Pacific/Chatham", "+13:45": "Pacific/Chatham",
                    "-02:30": "America/St_Johns", "-03:30": "America/St_Johns", "-09:30": "Pacific/Marquesas"}


def _offset_hint(raw: pl.Expr, freq: str = "1h") -> pl.Expr:
    """Why a sub-daily time written with a UTC offset that is not a whole hour ('2024-03-01T10:00+05:30') is off
    an hourly grid when the source declares no tz: its instant is 04:30 UTC, and without a zone the grid is UTC's.
    Declaring the zone puts the grid on its local time ("1h in Adelaide is on the half hour in UTC"). On a grid of
    several hours ('6h') a whole-hour offset is off it too (06:00+01:00 is 05:00 UTC, between UTC's 00:00 and
    06:00): its reason said only 'is not on the 6h grid'; it names the offset and the fixed zone of it (Etc/GMT-1)."""
    text = raw.cast(pl.Utf8).str.strip_chars()
    off = text.str.extract(r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*([+-]\d{2}:?\d{2})$", 1)
    norm = pl.concat_str([off.str.slice(0, 3), pl.lit(":"), off.str.slice(-2, 2)])
    zone = norm.replace_strict(_HALF_HOUR_ZONES, default="the zone of your data", return_dtype=pl.Utf8)
    n, unit = parse_freq(freq)
    hours = off.str.slice(0, 3).cast(pl.Int32, strict=False)
    # the fixed zone of a whole-hour offset: POSIX signs, Etc/GMT-1 is UTC+01:00
    fixed = pl.format("Etc/GMT{}", pl.when(hours > 0).then(pl.format("-{}", hours)).otherwise(
        pl.format("+{}", -hours)))
    several = (unit == "h" and n > 1)
    return (
        pl.when(off.is_not_null() & (off.str.slice(-2, 2) != "00"))
        .then(pl.format(" (its UTC offset {} is not a whole hour and no time zone is declared, so the grid is UTC's: "
                        "declare the source's tz, e.g. tz = \"{}\" in [sources.NAME] or --tz {}, and the grid follows "
                        "its local time)", norm, zone, zone))
        .when(pl.lit(several) & off.is_not_null() & (hours % max(n, 1) != 0))
        .then(pl.format(" (its UTC offset is {} and no time zone is declared, so the {} grid is UTC's, from 00:00 "
                        "UTC: declare the source's tz and the grid follows its standard time: --tz {} for {} all "
                        "year, or the zone of your data)", norm, pl.lit(freq), fixed, norm))
        .otherwise(pl.lit(""))
    )


def _daylight_grid_hint(freq: str, tz: str | None) -> pl.Expr:
    """Why a sub-daily time of a declared `tz` with daylight saving is off a grid of several hours ('6h'): the grid
    keeps fixed steps from the zone's standard time (`zones._grid_anchor`), so in daylight saving the clock reads
    its points an hour later, and a row at the clock's 06:00 falls between them (its reason said only 'is not on the
    6h grid'). Said on the rows whose offset is not the standard one; '' otherwise."""
    n, unit = parse_freq(freq)
    offsets = None if tz is None or unit != "h" or n < 2 else standard_and_saving(tz)
    if tz is None or offsets is None:
        return pl.lit("")
    standard, saving = offsets

    def text(offset: timedelta) -> str:
        minutes = int(offset / timedelta(minutes=1))
        return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    shift = abs(saving - standard)
    later = ("an hour" if shift == timedelta(hours=1) else f"{int(shift / timedelta(minutes=1))} minutes") + (
        " later" if saving > standard else " earlier")
    instant = pl.col(DS_RAW)
    offset = instant.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None) - instant
    return (pl.when(offset.cast(pl.Duration("us")) != pl.lit(standard, pl.Duration("us")))
            .then(pl.lit(f" (the {freq} grid keeps {n}-hour steps from {tz}'s standard time ({text(standard)}) all "
                         f"year: in daylight saving ({text(saving)}) the clock reads its points {later}, so a "
                         f"time on the clock's own {freq} grid is off it; periods of several hours do not follow "
                         f"daylight saving: forecast the data hourly (--freq 1h), or sum hourly rows into {freq} "
                         f"periods of that grid (--aggregate sum))"))
            .otherwise(pl.lit("")))


# a sub-daily time this close to a point of its grid (and within a tenth of a period) is a clock's jitter
JITTER_MAX = timedelta(minutes=1)
_FIXED_UNITS = {"s": "seconds", "m": "minutes", "h": "hours"}


def _jitter_hint(freq: str) -> pl.Expr:
    """Why a sub-daily time is off its grid when it is seconds from a grid point ('2014-01-01T00:30:16' or
    '2013-12-31T23:59:48' of 30m data: a logger's clock): how far, and that the times are not read to the nearest
    point, so rounding them to the grid before export reads them (newuser47: the reason said only 'is not on the
    30m grid' of 934 of 960 such rows, and freq inference 'its dates step irregularly'). '' for a time farther off.
    Built on the failing rows (`ds`, the grid point at or before the time, and `DS_RAW`, the time)."""
    n, unit = parse_freq(freq)
    if unit not in _FIXED_UNITS:
        return pl.lit("")
    step = timedelta(**{_FIXED_UNITS[unit]: n})
    after = pl.col(DS_RAW) - pl.col("ds")  # since the grid point before
    before = pl.col("ds") + step - pl.col(DS_RAW)  # to the grid point after
    near_next = before < after
    off_ms = pl.when(near_next).then(before).otherwise(after).dt.total_milliseconds()
    seconds = (pl.when(off_ms % 1000 == 0).then((off_ms // 1000).cast(pl.Utf8))
               .otherwise((off_ms / 1000).round(3).cast(pl.Utf8)))
    return (pl.when(off_ms <= int(min(JITTER_MAX, step / 10) / timedelta(milliseconds=1)))
            .then(pl.format(" ({} s {} one of its points: times a few seconds off the grid, as a logger's clock "
                            "writes them, are not moved to the nearest point; round them to the grid before export, "
                            "e.g. with polars' .dt.round('{}'))", seconds,
                            pl.when(near_next).then(pl.lit("before")).otherwise(pl.lit("after")), pl.lit(freq)))
            .otherwise(pl.lit("")))


def day_end_hint(freq: str | None, keys: list[str]) -> pl.Expr:
    """Why two rows of a daily key differ where the file stamps days by their end two ways: one a few seconds before
    midnight ('2024-01-02 23:59:59', the end of its own day, read as that day) and one at midnight ('2024-01-02
    00:00:00', the end of the day before, read as the day it starts): newuser49, a file of end-of-day stamps with a
    midnight now and then had both quarantined as 'with different y values' and nothing more. Built on the rows of
    repeated `keys` (`DS_RAW`, the time as read, naive); '' for any other pair, or freq."""
    if freq is None or parse_freq(freq) != (1, "d"):
        return pl.lit("")
    raw = pl.col(DS_RAW)
    of_day = raw - raw.dt.truncate("1d")
    late, midnight = of_day >= timedelta(days=1) - JITTER_MAX, of_day == timedelta(0)
    shown = "%Y-%m-%d %H:%M:%S"
    return (pl.when(late.any().over(keys) & midnight.any().over(keys))
            .then(pl.format(" (end-of-day stamps written two ways? '{}' is read as its own day and '{}' as the day it "
                            "starts: where a midnight ends the day before, pass --time-label end, which reads a "
                            "midnight as the day before it and a time inside a day (23:59:59) as that day)",
                            raw.filter(late).first().over(keys).dt.to_string(shown),
                            raw.filter(midnight).first().over(keys).dt.to_string(shown)))
            .otherwise(pl.lit("")))


# a magnitude suffix after a number ('1.5k', '2M', '3bn') and what it stands for ('m' alone: milli or million?)
_SUFFIXES = {"k": (1e3, "thousands"), "K": (1e3, "thousands"), "M": (1e6, "millions"), "MM": (1e6, "millions"),
             "mn": (1e6, "millions"), "Mn": (1e6, "millions"), "B": (1e9, "billions"), "bn": (1e9, "billions"),
             "Bn": (1e9, "billions")}
_SUFFIX_RE = r"^([-+]?\d+(?:\.\d+)?)\s*(" + "|".join(sorted(_SUFFIXES, key=len, reverse=True)) + r")$"
# what a value that stands for a missing one ('n/a', 'none', NaN) is told: the markers read as missing
MISSING_HINT = " (a missing value? leave the cell empty or write NA: both are read as missing)"
# dashes that are not the minus sign ('–5': a word processor's en dash); the Unicode minus '−' is read as '-'
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d"


def _number_hint(raw: pl.Expr) -> pl.Expr:
    """Why a text value that looks numeric did not parse: a magnitude suffix ('1.5k', with the full number), a
    dash for a missing value ('-'), a dash where the minus sign belongs ('–5'), thousands separators, a decimal
    comma, accounting parentheses, a currency or percent sign, a unit of measure ('1,234 kWh')."""
    text = raw.cast(pl.Utf8).str.strip_chars().str.replace_all("\u2212", "-", literal=True)
    suffix = text.str.extract(_SUFFIX_RE, 2)
    factor = suffix.replace_strict({k: f for k, (f, _) in _SUFFIXES.items()}, default=None, return_dtype=pl.Float64)
    full = (text.str.extract(_SUFFIX_RE, 1).cast(pl.Float64, strict=False) * factor).round(6)
    unsettled = text.str.ends_with(UNSETTLED)
    written = text.str.replace_all(UNSETTLED, "", literal=True)
    whole = written.str.replace(r"\..*$", "")
    unit = text.str.extract(r"^[-+]?\d[\d.,' \u00a0\u202f\u2009]*?\s*([\p{L}°µ][\p{L}\d°µ²³/.]{0,11})$", 1)
    unit = pl.when(unit.str.contains(r"(?i)^(st|nd|rd|th)$")).then(None).otherwise(unit)  # '2nd': an ordinal
    return (
        # '2.000' in a column written with decimal commas ('2,5') and decimal points ('7.5') alike (sources)
        pl.when(unsettled)
        .then(pl.format(" ({}{} with '.' grouping thousands, or {} with '.' as the decimal point? its column has "
                        "decimal commas and decimal points: declare the source's decimal = \",\" or \".\" "
                        "(--decimal), or export every number alike)", whole, written.str.replace(r"^[-+]?\d+\.", ""),
                        written.cast(pl.Float64, strict=False).cast(pl.Utf8)))
        .when(suffix.is_not_null())
        .then(pl.format(" (the suffix '{}' for {}? export the full number without a suffix: {} for '{}')", suffix,
                        suffix.replace_strict({k: w for k, (_, w) in _SUFFIXES.items()}, default=None,
                                              return_dtype=pl.Utf8), _plain(full), text))
        .when(text.str.contains(f"^[-{_DASHES}]+$"))
        .then(pl.lit(" (a dash for a missing value? leave the cell empty or write NA: both are read as missing)"))
        .when(text.str.contains(f"^[{_DASHES}]\\s*\\d"))
        .then(pl.format(" (the dash '{}' where a minus sign belongs? export negative numbers with '-')",
                        text.str.slice(0, 1)))
        .when(text.str.contains(r"^\d+(\.\d+)?\s*-$"))  # '5-': SAP and some ERP exports put the minus last
        .then(pl.format(" (a minus sign after the number, as SAP exports write negatives? export them with a leading "
                        "minus: '-{}')", text.str.replace(r"\s*-$", "")))
        .when(text.str.contains(r"^[-+]?\d{1,3}([,.' ]\d{3})+([.,]\d+)?$|^[-+]?\d{1,2}(,\d{2})+,\d{3}(\.\d+)?$"))
        .then(pl.lit(" (thousands separators? export numbers without them)"))
        .when(text.str.contains(r"^[-+]?\d+,\d+$"))
        .then(pl.lit(" (decimal comma? export numbers with a '.' decimal point, or declare the source's decimal = "
                     "\",\" (--decimal ','))"))
        .when(text.str.contains(r"^\(\s*[$€£¥]?\s*\d[\d.,]*\s*\)$"))  # '(1,234.00)': Excel's accounting format
        .then(pl.lit(" (a negative number in parentheses, as accounting formats write it? export numbers with a "
                     "minus sign and no format)"))
        .when(text.str.contains(r"^[-+]?\s*[$€£¥]\s*[-+]?[\d.,]+$|^[-+]?[\d.,]+\s*(%|[$€£¥]|EUR|USD)$"))
        .then(pl.lit(" (a currency or percent sign? export the numbers alone, without a unit)"))
        # '1,234 kWh', '18.2 °C', '5 pcs': a unit of measure after the number (nu42: said 'is not a number' alone)
        .when(unit.is_not_null())
        .then(pl.format(" (a unit after the number? export the numbers alone, without their unit '{}'; "
                        "[sources.NAME] unit = \"{}\" names it on the plots)", unit, unit))
        # '#DIV/0!', '#VALUE!': a formula's error, exported as text (Excel's '#N/A' is a missing value)
        .when(text.str.contains(r"^#(DIV/0!|VALUE!|REF!|NAME\?|NUM!|NULL!|SPILL!|CALC!|GETTING_DATA)$"))
        .then(pl.lit(" (a spreadsheet formula's error: fix the formula, or leave the cell empty for a missing value)"))
        # "'123" (a spreadsheet's mark of a number stored as text) and '="00123"' (a formula that keeps its zeros)
        .when(text.str.contains(r"^'[-+]?[\d.,]+$|^=\s*\"[-+]?[\d.,]+\"$"))
        .then(pl.lit(" (a number stored as text, as a spreadsheet marks it ('123 or =\"123\")? export the number "
                     "alone)"))
        # 'n/a', 'none', '?': a missing value written in words other than the markers read as missing (NA, N/A, NULL)
        .when(text.str.contains(r"(?i)^(n/a|na|n\.a\.?|none|nil|missing|unknown|empty|\?+|\.)$"))
        .then(pl.lit(MISSING_HINT))
        .otherwise(pl.lit(""))
    )


def _plain(number: pl.Expr) -> pl.Expr:
    """A float as a person writes it: 1500 for 1500.0, 1250.5 as it is."""
    return (pl.when((number == number.round(0)) & (number.abs() < 1e15))
            .then(number.cast(pl.Int64, strict=False).cast(pl.Utf8)).otherwise(number.cast(pl.Utf8)))


def _covariate_hint(raw: pl.Expr) -> pl.Expr:
    """Why a covariate did not parse: a number's formatting (`_number_hint`), or text (a category such
    as a holiday's name), which a past/future covariate cannot hold."""
    text = raw.cast(pl.Utf8).str.strip_chars()
    words = text.str.contains(r"[A-Za-z]") & ~text.str.contains(r"(?i)^[-+]?(nan|inf|infinity)$")
    number = _number_hint(raw)  # '1.5k' has a letter, and is a number's formatting all the same
    return (
        # a yes/no not read as 1/0: its column holds other values too (`value_text.yes_no_columns`)
        pl.when(text.str.contains(r"(?i)^(yes|no|y|n)$"))
        .then(pl.lit(" (yes/no is read as 1/0 only in a column of yes/no and true/false alone, and this column holds "
                     "other values: write the flag as 1/0 throughout)"))
        .when(words & (number == ""))
        .then(pl.lit(" (past and future covariates are numbers or true/false: encode a category as one 0/1 "
                     "column per value)"))
        .otherwise(number)
    )


def naive_beside_offsets(within: pl.Expr | None = None) -> pl.Expr:
    """True on a row of a source without a tz whose time has no UTC offset while some row's parsed with one (the
    check `time_zone_ambiguous` quarantines it: which zone it is written in is not known). Against the rows whose
    time parsed with an offset: one unparsable value that looked like it had one ('05-Mar-2024') quarantined every
    other row of the file as 'no UTC offset while other rows do'. `within`: the rows that count (a run's, where
    the frame read holds rows after its as_of: `periods.observed_at`); all of the frame when None (validation's
    check reads the rows a run kept alone)."""
    aware = pl.col(TIME_AWARE) & pl.col(DS_RAW).is_not_null()
    return ~pl.col(TIME_AWARE) & (aware if within is None else aware & within).any()


def row_checks(
    *,
    time_col: str,
    target_col: str,
    id_cols: list[str],
    numeric_exog: list[str],
    time_format: str | None,
    freq: str,
    subdaily: bool,
    weekly: bool = False,
    period_days: int | None = None,
    period_months: int | None = None,
    business: bool = False,
    tz_ambiguous: bool,
    y_min: float | None,
    y_max: float | None,
    local_tz: str | None = None,
    ambiguous: str = "quarantine",
    tz_declared: bool = False,
    wide: bool = False,
    tz: str | None = None,
) -> list[RowCheck]:
    """The row-level checks of one source, in priority order (a row reports its first failure).

    Expects the mapped frame of `sources.ingest`: canonical `unique_id`, `ds`, `y`, exogenous
    columns cast to Float64, `__raw__<col>` originals, `__ds_aware`, `__ds_raw` (and `__ds_local`
    when `local_tz` is given: naive sub-daily times are wall times in that zone).
    """
    fmt = time_format or "ISO-8601"
    # a row that is the header again, column for column (files joined with their headers: `cat a.csv b.csv`):
    # it failed as "time 'date' does not parse" and its ids made a series named 'store', "every row quarantined"
    header = pl.all_horizontal([_raw(c).cast(pl.Utf8).str.strip_chars().str.strip_chars_start("\ufeff") == c
                                for c in (time_col, target_col, *id_cols)])
    # a spreadsheet's totals row ('Total,,123456'; ';Summe;123.456,78' under the store column) has no time: say so.
    # A wide file's series id (id_cols[0]) is its column's header, no value of the row (newuser32: 'Total Private')
    # ... nor has a summary row of another statistic ('Average', 'Max.': newuser32, said as unparsable alone)
    labels = [_raw(c).cast(pl.Utf8).str.strip_chars() for c in (time_col, *(id_cols[1:] if wide else id_cols))]
    no_target = _raw(target_col).cast(pl.Utf8).str.strip_chars().replace("", None).is_null() if target_col else pl.lit(True)
    totals = (pl.when(pl.any_horizontal([t.str.contains(_TOTALS_RE) for t in labels]).fill_null(False))
              .then(pl.lit(" (a totals row? it is not an observation: leave totals out of the export)"))
              .when(pl.any_horizontal([t.str.contains(SUMMARY_RE) for t in labels]).fill_null(False))
              .then(pl.lit(" (a summary row? it is not an observation: leave summary rows out of the export)"))
              # a footer note in the time column ('Source: Bureau of Labor Statistics, retrieved 2020-01-15'; polish33:
              # said as unparsable alone): a word and ':' first, or more than 3 words (a month name and a weekday
              # make two). A missing time is null: never one. In an id column (the file's first: 'Source: ...,,';
              # msg40: said as an empty time, and counted as a series) a word and ':' first, or more than 3 words on
              # a row without a target value: an id of 4 words on a row with a value is a series' name
              .when(pl.any_horizontal(labels[0].str.contains(_NOTE_RE),
                                      labels[0].str.count_matches(r"\p{L}{2,}") > 3,
                                      *[t.str.contains(_NOTE_RE) for t in labels[1:]],
                                      *[(t.str.count_matches(r"\p{L}{2,}") > 3) & no_target for t in labels[1:]])
                    .fill_null(False))
              .then(pl.lit(NOTE_HINT))
              .otherwise(pl.lit("")))
    checks = [
        RowCheck(
            HEADER_REPEATED,
            header.fill_null(False),
            pl.format("the header line again ('{}'): not a row (files joined with their headers? keep the first "
                      "header only)", pl.lit(", ".join(dict.fromkeys((*id_cols, time_col, target_col))))),
            "the file's header line repeated among its rows",
        ),
        RowCheck(
            "time_missing",
            _raw(time_col).is_null(),
            pl.format("time column '{}' is empty{}", pl.lit(time_col), totals),
            "the time value is missing",
        ),
    ]
    if local_tz is not None:
        how = ("ambiguous = 'infer' pairs exactly two rows of a series with this wall time (the first in the file "
               "is the earlier instant)" if ambiguous == "infer" else
               "declare the source's ambiguous = 'infer' (file order), 'earliest' or 'latest' (--ambiguous infer)")
        # a file written in standard time all year (vic_elec: 48 half hours every day) holds the skipped hour: read
        # in its place's zone, those rows and the repeated hour's were quarantined and the 4-period hole cut the
        # series there (4,564 of 17,520 rows not used), with no word on the zone that fits
        also = ""
        if (standard := standard_time_zone(local_tz)) is not None:
            zone, utc = standard
            also = (f", or, if the file is in standard time all year (it holds this skipped hour), declare tz = "
                    f"'{zone}' (--tz {zone}: {utc}, no daylight saving)")
        checks += [
            RowCheck(
                "time_nonexistent",
                pl.col(TIME_LOCAL_ISSUE) == "nonexistent",
                pl.format("local time '{}' does not exist in {} (the clocks skip it when daylight saving starts); "
                          "write times with their UTC offset{}", _show(_raw(time_col)), pl.lit(local_tz), pl.lit(also)),
                "a local wall time that the declared time zone skips (daylight saving starts)",
            ),
            RowCheck(
                "time_ambiguous",
                pl.col(TIME_LOCAL_ISSUE) == "ambiguous",
                pl.format("local time '{}' occurs twice in {} (daylight saving ends: two instants); "
                          "write times with their UTC offset, or {}", _show(_raw(time_col)), pl.lit(local_tz),
                          pl.lit(how)),
                "a local wall time that occurs twice in the declared time zone (daylight saving ends)",
            ),
        ]
    checks += [
        RowCheck(
            "time_unparsable",
            pl.col(DS_RAW).is_null(),
            pl.format("time '{}' does not parse as {}{}{}", _show(_raw(time_col)), pl.lit(fmt),
                      _time_hint(_raw(time_col), pl.col(TIME_PEER)) if time_format is None
                      else _format_hint(_raw(time_col), time_format),
                      totals),
            "the time value does not parse with the declared format",
        ),
    ]
    if tz_ambiguous:
        checks.append(
            RowCheck(
                "time_zone_ambiguous",
                naive_beside_offsets(),
                pl.format(
                    "time '{}' has no UTC offset while other rows do{}; declare the time zone of the times written "
                    "without one (--tz UTC, --tz Europe/Berlin: the source's tz)",
                    _show(_raw(time_col)),
                    pl.when(pl.col(OFFSET_PEER).is_not_null()).then(pl.format(", such as '{}'", pl.col(OFFSET_PEER)))
                    .otherwise(pl.lit("")),
                ),
                "naive timestamp mixed with offset-aware ones and no tz declared",
            )
        )
    if weekly:  # one weekday per series: the most common one among its parsed times
        anchor = pl.col(WEEK_ANCHOR)  # reasons are built on the failing rows alone: validate joins it onto them
        checks.append(
            RowCheck(
                "off_grid",
                pl.col("ds").dt.weekday() != weekly_anchor(),
                pl.format(
                    "time '{}' is a {}, not a {}, the weekday that most of this series' weeks fall on (its grid "
                    "is W-{}){}", pl.col("ds").dt.to_string("%Y-%m-%d"), pl.col("ds").dt.to_string("%A"),
                    anchor.replace_strict(dict(enumerate(_WEEKDAYS, start=1)), return_dtype=pl.Utf8),
                    anchor.replace_strict({i: d[:3].upper() for i, d in enumerate(_WEEKDAYS, start=1)},
                                          return_dtype=pl.Utf8),
                    pl.when(pl.col(WEEK_SINCE).is_not_null()).then(pl.format(
                        "; every row of this series from {} on is off that weekday: did the export change the "
                        "weekday its weeks are labelled by? Left out, its latest weeks are lost (it is forecast from "
                        "its last week before {}): re-export them on one weekday",
                        pl.col(WEEK_SINCE).dt.to_string("%Y-%m-%d"), pl.col(WEEK_SINCE).dt.to_string("%Y-%m-%d"),
                    )).when(pl.col(WEEK_UNTIL).is_not_null()).then(pl.format(
                        "; every row of this series before {} is off that weekday: did the export change the "
                        "weekday its weeks are labelled by? Left out, its earliest weeks are lost (its history starts "
                        "at {}): re-export them on one weekday",
                        pl.col(WEEK_UNTIL).dt.to_string("%Y-%m-%d"), pl.col(WEEK_UNTIL).dt.to_string("%Y-%m-%d"),
                    )).otherwise(pl.lit("")),
                ),
                "a weekly timestamp on another weekday than the rest of its series",
            )
        )
    if period_days:  # a grid of several days ('2w', '7d', '3d'): one phase for the whole source, the most common
        phase = pl.col("ds").dt.epoch("d") % period_days
        checks.append(
            RowCheck(
                "off_grid",
                phase != phase.drop_nulls().mode().min(),
                pl.format("time '{}' is not on the {} grid of this source (every {} days from the day most of its "
                          "times fall on)", pl.col("ds").dt.to_string("%Y-%m-%d"), pl.lit(freq), pl.lit(period_days)),
                "a timestamp between the grid points of a source whose periods span several days",
            )
        )
    if period_months:  # a grid of several months ('3mo', '12mo', '2q'): each series keeps its own phase (its
        # fiscal year's month), the most common one among its rows
        phase = month_phase(period_months)
        usual = pl.col(MONTH_PHASE)  # reasons are built on the failing rows alone: validate joins it onto them
        checks.append(
            RowCheck(
                "off_grid",
                phase != usual_month_phase(period_months),
                pl.format("time '{}' is not on the {} grid of its series (every {} months from the month most of its "
                          "times fall in{}: the nearest are {} and {})", pl.col("ds").dt.to_string("%Y-%m"),
                          pl.lit(freq), pl.lit(period_months), _fiscal_pattern(usual, period_months),
                          *_grid_months_around(phase, usual, period_months)),
                "a time between the grid points of a series whose periods span several months",
            )
        )
    if business:  # '1b': Monday to Friday (holidays are not known: a missing weekday is a gap)
        checks.append(
            RowCheck(
                "off_grid",
                ~on_grid(pl.col("ds"), freq),
                pl.format("time '{}' is a {}, not a business day (freq {} has the dates Monday to Friday)",
                          pl.col("ds").dt.to_string("%Y-%m-%d"), pl.col("ds").dt.to_string("%A"), pl.lit(freq)),
                "a Saturday or Sunday in a source of business days (freq 1b)",
            )
        )
    if subdaily:
        checks.append(
            RowCheck(
                "off_grid",
                pl.col("ds") != pl.col(DS_RAW),
                pl.format("time '{}' is not on the {} grid{}{}", _show(_raw(time_col)), pl.lit(freq),
                          _daylight_grid_hint(freq, tz) if tz_declared else _offset_hint(_raw(time_col), freq),
                          _jitter_hint(freq)),
                "a sub-daily timestamp between two grid points",
            )
        )
    if id_cols:
        empty = {c: _raw(c).is_null() | (_raw(c).cast(pl.Utf8).str.strip_chars() == "") for c in id_cols}
        # the empty ones by name, beside the values of the others: 'store', 'item' read as if both were empty
        names = pl.concat_str([pl.when(e).then(pl.lit(repr(c))) for c, e in empty.items()], separator=", ",
                              ignore_nulls=True)
        known = pl.concat_str([pl.when(~e).then(pl.format("{} '{}'", pl.lit(c), _raw(c).cast(pl.Utf8)))
                               for c, e in empty.items()], separator=", ", ignore_nulls=True)
        checks.append(
            RowCheck(
                "id_missing",
                pl.any_horizontal(list(empty.values())),
                pl.format("{} {} empty{}",  # 'id column' of one empty, 'id columns' of several
                          pl.when(pl.sum_horizontal([e.cast(pl.Int32) for e in empty.values()]) == 1)
                          .then(pl.lit("id column")).otherwise(pl.lit("id columns")), names,
                          pl.when(known != "").then(pl.format(" ({})", known)).otherwise(pl.lit(""))),
                "an id column is empty",
            )
        )
    # the target as the file names it: a wide file's value sits in the column of its series ('north'), not in 'y'
    target = (pl.format("{} (on {})", _raw(id_cols[0]).cast(pl.Utf8), _show(_raw(time_col))) if wide
              else pl.lit(target_col))
    checks += [
        RowCheck(
            "y_not_number",
            _raw(target_col).is_not_null() & pl.col("y").is_null(),
            pl.format("{} '{}' is not a number{}", target, _show(_raw(target_col)), _number_hint(_raw(target_col))),
            "the target is text, not a number",
        ),
        RowCheck(
            "y_not_finite",
            pl.col("y").is_not_null() & ~pl.col("y").is_finite(),
            # a number beyond float64 ('1e309') is read as inf: the reason named 'inf', not the value written; a NaN
            # (Spark's and Java's text of a missing double) is asked if it is one, as 'n/a' is (newuser54: 'sales NaN
            # is not finite' said nothing a person could act on)
            pl.format("{} {} is not finite{}", target, _show(pl.col("y")),
                      pl.when(pl.col("y").is_nan()).then(pl.lit(MISSING_HINT))
                      .when(_raw(target_col).cast(pl.Utf8).str.strip_chars()
                            .str.contains(r"(?i)^[-+]?(nan|inf|infinity)$").fill_null(True))
                      .then(pl.lit(""))
                      .otherwise(pl.format(" ('{}' as written: beyond the largest number, about 1.8e308)",
                                           _show(_raw(target_col))))),
            "the target is NaN or infinite",
        ),
        # a value beyond float32 (the networks' dtype) cannot be trained on or scored: its square overflows a
        # scaler's variance and the networks diverge with train_loss=nan, naming nothing. Legitimate large
        # series (billions, 1e30) pass; declare y_max to quarantine smaller outliers
        RowCheck(
            "y_too_large",
            pl.col("y").is_not_null() & pl.col("y").is_finite() & (pl.col("y").abs() > Y_ABS_MAX),
            pl.format("{} {} is beyond the float32 range the models compute in (|y| <= {}): a unit or entry error? "
                      "(declare y_max to quarantine smaller outliers)", target, _show(_raw(target_col)),
                      pl.lit("3.4e38")),
            "the target's magnitude exceeds float32's range (3.4e38)",
        ),
    ]
    if y_min is not None or y_max is not None:
        lo = pl.col("y") < y_min if y_min is not None else pl.lit(False)
        hi = pl.col("y") > y_max if y_max is not None else pl.lit(False)
        checks.append(
            RowCheck(
                "y_out_of_range",
                pl.col("y").is_not_null() & (lo | hi),
                # the value as written and the bound it crosses, named ('sales -5 is below y_min 0'): it read
                # 'sales -5.0 outside [0.0, inf]', a float's repr and an 'inf' no one had declared (ui40)
                pl.when(lo).then(pl.format("{} {} is below y_min {}", target, _show(_raw(target_col)),
                                           pl.lit(_bound_text(y_min))))
                .otherwise(pl.format("{} {} is above y_max {}", target, _show(_raw(target_col)),
                                     pl.lit(_bound_text(y_max)))),
                "the target is outside the declared [y_min, y_max]",
            )
        )
    for c in numeric_exog:
        checks.append(
            RowCheck(
                "exog_invalid",
                (_raw(c).is_not_null() & pl.col(c).is_null()) | (pl.col(c).is_not_null() & ~pl.col(c).is_finite()),
                pl.format("{} '{}' is not a finite number{}", pl.lit(c), _show(_raw(c)), _covariate_hint(_raw(c))),
                "a past/future covariate is text, NaN or infinite",
            )
        )
    return checks


# the duplicate checks run after the row checks, on rows that passed them
DUPLICATE_CHECKS = {
    "duplicate_row": ("an exact repeat of an earlier row with the same (unique_id, ds), y, covariates, time as "
                      "written and undeclared columns: the first is kept, the repeats dropped and counted "
                      "(rows_duplicate), not quarantined"),
    "duplicate_conflict": "several rows share (unique_id, ds) with different y or covariate values: all are quarantined",
}
