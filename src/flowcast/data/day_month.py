"""Day/month order: how a text time column's day/month dates read, and the other shapes its values hold, decided from
its rows (per file of a glob, by the spacing of the source's freq, from the rows that may be dated by as_of).

Day/month dates ('13.01.2024', '01/29/2024') have
their order decided from all the rows of the time column (`day_month_order`; with an as_of, from the rows that may
be dated by then, `dated_by`: one dated after it however it is read does not decide how a backfill reads its history): a first
number above 12 anywhere makes them day first, a second one month first; when no row settles it (every value could be
either, '01/02/2020') or rows contradict each other, they are quarantined with a hint naming the
--time-format to pass.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import polars as pl

from flowcast.data.calendar import parse_freq
from flowcast.data.schemas import DAY_MONTH_RE, YEAR_FIRST_RE, day_month_readable, valid_date
from flowcast.data.source_files import FILE_INDEX
from flowcast.data.time_text import (
    _BASIC_CLOCK_SEEN_RE,
    _HOUR_24_RE,
    _MIDNIGHT_ZONED_RE,
    _MONTH_YEAR_RE,
    _QUARTER_FIRST_RE,
    _TIME_OFFSET_RE,
    _TIME_ZONED_RE,
    _YEAR_MONTH_NAME_RE,
    _day_month_iso,
)


def day_month_order(raw: pl.LazyFrame, col: str) -> str | None:
    """How the day/month dates of the time column `col` (raw text: '13.01.2024', '01/29/2024') are ordered,
    decided from all its rows: 'day' when a first number is above 12 and no second one is, 'month' the
    other way round; None when no value is such a date, when no row settles it (every value could be
    either) or when rows contradict each other (those values stay unparsable, each with its hint)."""
    return time_column_profile(raw, col)[0]


_PERIOD_DAYS = {"w": 7.0, "mo": 30.44, "q": 91.31, "y": 365.25}  # a freq's nominal length in days ('d', 'b': 1)


def _period_days(freq: str) -> float:
    """The nominal days between two dates of a `freq` grid (1 for daily and finer: dates, not times, are compared)."""
    n, unit = parse_freq(freq)
    return n * _PERIOD_DAYS[unit] if unit in _PERIOD_DAYS else float(n) if unit == "d" else 1.0


def _year_first_fits(raw: pl.LazyFrame, text: pl.Expr, order: str | None, freq: str) -> str | None:
    """'year' when the column's two-digit-year dates ('24/03/01') read year first are spaced as `freq` says and read
    year last (`order`: 'day' or 'month'; None: either) they are not, `order` the other way round; None when their
    spacing does not tell the two apart (each reading's median gap between its distinct dates, against freq's
    nominal one: the closer by a factor of 1.5 wins). '24/03/01'..'24/03/19' read day first are 19 yearly dates
    (24 March 2001..2019), year first 19 days; '31/01/24', '29/02/24', .. (month ends) read year first fall on the
    24th of months of 2028-2031, days apart."""
    # (a date that no reading reads, '24/13/45', ruled out every reading: it tells nothing)
    yy, mm, dd = (text.str.extract(YEAR_FIRST_RE, k).cast(pl.Int32, strict=False) for k in (1, 2, 3))
    year_first = valid_date(pl.when(yy < 70).then(yy + 2000).otherwise(yy + 1900), mm, dd)
    cand = _candidates(raw, text.filter(text.str.contains(YEAR_FIRST_RE)
                                        & (day_month_readable(text) | year_first.fill_null(False))))
    if cand is None:
        return None
    step = _period_days(freq)

    def spacing(iso: pl.Expr) -> pl.Expr:
        dates = iso.str.to_date("%Y-%m-%d", strict=False)
        gaps = dates.unique().sort().diff().dt.total_days().drop_nulls()
        # a date this reading cannot be (30 February) rules it out
        return pl.when(dates.is_null().any() | (gaps.len() == 0)).then(None).otherwise(gaps.median())

    readings = {"year": _day_month_iso(pl.col(_CANDIDATE), "year").str.slice(0, 10)}
    for o in ([order] if order else ["day", "month"]):
        readings[o] = _day_month_iso(pl.col(_CANDIDATE), o).str.slice(0, 10)
    try:
        row = cand.select(spacing(e).alias(k) for k, e in readings.items()).row(0, named=True)
    except pl.exceptions.PolarsError:
        return None
    off = {k: abs(math.log(v / step)) if v else math.inf for k, v in row.items()}
    last = min((k for k in off if k != "year"), key=lambda k: off[k])
    if off["year"] + math.log(1.5) < off[last]:
        return "year"
    # year last, day or month first (`order` None: both read): the one closer than every other reading. Monthly
    # '01.02.10' .. '01.12.12' (German dd.mm.yy, each month's 1st) read day first step by months, month first by days
    # (1-12 January) and year first by days too (the 10th-12th of each month of 2001): every row was quarantined
    # (`len(off) == 2` alone returned an order), its hint naming '%y.%m.%d' or '%m.%d.%y', neither of them day first
    if all(off[last] + math.log(1.5) < v for k, v in off.items() if k != last):
        return last
    return None


# the day/month order of a time column: one for every row ('day', 'month', 'year': `day_month_order`), or per file
# of a glob ({file index: order}, the files that settle theirs), or None
DayMonth = str | dict[int, str] | None


def _day_month_per_file(raw: pl.LazyFrame, col: str, freq: str | None, n_files: int,
                        by_rows: dict[int, str | None] | None = None) -> dict[int, str]:
    """The day/month order each file of a glob settles by its own rows, where the files together settle none: a UK
    export ('13/01/2024') beside a US one ('01/13/2024') contradicted each other, and every day/month row of both
    was quarantined with a hint to declare one time_format, which would misread one of them. A file that settles
    nothing alone is left out (its rows stay unparsable, with the hint). `by_rows`: `_orders_by_rows` of `raw`,
    where already read; `freq` then reads again only the files whose rows alone settle nothing."""
    by_rows = _orders_by_rows(raw, col, n_files) if by_rows is None else by_rows
    open_files = [i for i, o in by_rows.items() if o is None]
    spaced = {i: time_column_profile(part, col, freq)[0]
              for i, part in _day_month_files(raw, col, n_files, open_files).items()} if open_files and freq else {}
    return {i: o for i, o in sorted({**by_rows, **spaced}.items()) if o is not None}


def _orders_by_rows(raw: pl.LazyFrame, col: str, n_files: int) -> dict[int, str | None]:
    """The day/month order of each file of a glob holding a day/month date, settled by its numbers alone, whatever
    the source's freq (`time_column_profile` without one: the same order wherever it settles one); None where the
    file leaves it to the spacing of its dates (every number 12 or below, a two-digit year that may be first). What
    the per-file decisions at every freq share: a command reads a folder at a probe's freq, then at the run's.
    One query grouped by file reads the numbers `_time_profile` decides by (a query per file: ~1 s for 200 small
    files); where it cannot be read (bytes that are not UTF-8), each file's own profile, which says so."""
    parts = _day_month_files(raw, col, n_files)
    if not parts:
        return {}
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    a = text.str.extract(r"^(\d{1,2})[/.\-]", 1).cast(pl.Int32, strict=False)
    b = text.str.extract(r"^\d{1,2}[/.\-](\d{1,2})[/.\-]", 1).cast(pl.Int32, strict=False)
    readable = text.str.contains(DAY_MONTH_RE) & _day_month_fits(a, b)
    yf = text.str.contains(YEAR_FIRST_RE)
    yf_numbers = [pl.when(yf).then(text.str.extract(YEAR_FIRST_RE, k).cast(pl.Int32, strict=False)).alias(f"yf{k}")
                  for k in (1, 2, 3)]
    names = ("first", "second", "yf", "year_last", "yf1", "yf2", "yf3")
    try:
        # (the files' dates as one frame first: a query over their concatenation planned its expressions once a file)
        numbers = pl.concat(list(parts.values())).collect().lazy().select(
            FILE_INDEX, pl.when(readable).then(a).alias("first"), pl.when(readable).then(b).alias("second"),
            yf.alias("yf"), (readable & ~yf).alias("year_last"), *yf_numbers,
        ).group_by(FILE_INDEX).agg(pl.col(c).any() if c in ("yf", "year_last") else pl.col(c).max() for c in names
                                   ).select(FILE_INDEX, *names).collect(engine="streaming")
    except pl.exceptions.PolarsError:
        return {i: time_column_profile(part, col)[0] for i, part in parts.items()}
    decided = {int(row[0]): _order_of_numbers(*row[1:])[0] for row in numbers.iter_rows()}
    return {i: decided.get(i) for i in parts}  # (a file of no row: no number settles it)


def _day_month_files(raw: pl.LazyFrame, col: str, n_files: int,
                     only: list[int] | None = None) -> dict[int, pl.LazyFrame]:
    """The day/month dates (column `col` alone) of each file of a glob holding one ('13/01/2024', '24/03/01'), by
    file index, read in one pass: a file without one settles no order (`_time_profile`). `only`: those files alone
    (None: every one). A query per file scanned every file of the glob each time (its filter on the file index is
    not pushed into the scans): 200 files of 30 rows took 24 s per ingest, and a command ingests up to 3 times. Each
    file's distinct dates alone, in one scan: all its profile reads (maxima, any/all, distinct dates), none of which
    looks past a value's date; every row of the glob was held, read in two scans (50 files of 200,000 dd/mm/yyyy rows:
    66 s, now 20 s), and then every distinct value (an hourly glob: 24 a date). Unreadable rows (bytes that are not
    UTF-8): each file's own query, whose profile says so."""
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    date = text.str.extract(r"^(\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4})\b", 1)  # (`DAY_MONTH_RE`'s date alone)
    wanted = raw if only is None else raw.filter(pl.col(FILE_INDEX).is_in(only))
    try:
        distinct = wanted.select(FILE_INDEX, date.alias(col)).unique().collect(engine="streaming")
        dated = (distinct.group_by(FILE_INDEX).agg(pl.col(col).is_not_null().any().alias("dm"))
                 .filter(pl.col("dm")).get_column(FILE_INDEX).to_list())
        rows = distinct.filter(pl.col(FILE_INDEX).is_in(dated)).partition_by(FILE_INDEX, as_dict=True) if dated else {}
    except pl.exceptions.PolarsError:
        return {i: raw.filter(pl.col(FILE_INDEX) == i) for i in (range(n_files) if only is None else only)}
    return {i: rows[(i,)].lazy() for i in sorted(dated) if (i,) in rows}


def _day_month_spaced_per_file(raw: pl.LazyFrame, col: str, freq: str, n_files: int, order: str,
                               by_rows: dict[int, str | None] | None = None) -> DayMonth:
    """`order`, settled by some files of a glob, or per file where a file that settles nothing by its own rows
    (every first and second number 12 or below: a US export of 1-12 January beside a UK one) is spaced as `freq` says
    only read the other way: such a file was read in the others' order without a word (01/02/2024 .. 01/12/2024, 12
    days, became the first of 12 months). `by_rows`: `_orders_by_rows` of `raw`, where already read."""
    other = "month" if order == "day" else "day"
    by_rows = _orders_by_rows(raw, col, n_files) if by_rows is None else by_rows
    open_files = [i for i, o in by_rows.items() if o is None]
    flips = [i for i, part in _day_month_files(raw, col, n_files, open_files).items()
             if _day_month_by_spacing(part, col, freq) == other] if open_files else []
    return {i: other if i in flips else order for i in range(n_files)} if flips else order


_CANDIDATE = "__candidate"


def _candidates(raw: pl.LazyFrame, cand: pl.Expr) -> pl.DataFrame | None:
    """The values `cand` (a filter of a column of `raw`) as the column `_CANDIDATE` of a frame, read first, on their
    own, for the readings of each date that `_day_month_by_spacing` and `_year_first_fits` compare: written into each
    reading's expression, each of its regexes nested the candidates' filter again, a plan that took 2 s to run (the
    same of 10 rows as of 1,000) for every time it was asked. None where they cannot be read (not UTF-8)."""
    try:
        return raw.select(cand.alias(_CANDIDATE)).collect(engine="streaming")
    except pl.exceptions.PolarsError:
        return None


def _day_month_by_spacing(raw: pl.LazyFrame, col: str, freq: str) -> str | None:
    """'day' or 'month': the reading of the day/month dates of `col` whose distinct dates are spaced as `freq` says
    (the median gap against freq's nominal one, closer by a factor of 1.5); None when that does not tell them apart."""
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    # (a date that neither order reads, '00/01/2020', ruled out both: it tells nothing)
    cand = _candidates(raw, text.filter(text.str.contains(DAY_MONTH_RE) & ~text.str.contains(YEAR_FIRST_RE)
                                        & day_month_readable(text)))
    if cand is None:
        return None

    def spacing(iso: pl.Expr) -> pl.Expr:
        dates = iso.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        gaps = dates.unique().sort().diff().dt.total_days().drop_nulls()
        return pl.when(dates.is_null().any() | (gaps.len() == 0)).then(None).otherwise(gaps.median())

    try:
        row = cand.select(spacing(_day_month_iso(pl.col(_CANDIDATE), o)).alias(o) for o in ("day", "month")).row(
            0, named=True)
    except pl.exceptions.PolarsError:
        return None
    step = _period_days(freq)
    off = {k: abs(math.log(v / step)) if v else math.inf for k, v in row.items()}
    if off["day"] + math.log(1.5) < off["month"]:
        return "day"
    if off["month"] + math.log(1.5) < off["day"]:
        return "month"
    return None


def time_column_profile(raw: pl.LazyFrame, col: str, freq: str | None = None) -> tuple[str | None, frozenset[str]]:
    """`day_month_order`, and in the same pass over the column the shapes it holds that the parse reads only
    when some value has them: 'clock12' ('2:30 PM', `_clock_24`), 'bracket' ('+01:00[Europe/Berlin]'), 'basic_clock'
    ('T0930', `_extended_clock_text`). With the
    source's `freq`, two-digit years that could be first or last are decided by their spacing (`_year_first_fits`,
    a second pass over the column, only for such a file)."""
    profile = _time_profile(raw, col, freq)
    return profile.order, profile.traits


class TimeProfile(NamedTuple):
    """What `_time_profile` reads of a text time column in one pass over its distinct values. `sources.ingest` keeps
    the ones it read its column by (`Ingested.time_profile`, `Ingested.by_as_of_profile`), so that a reading of the
    same rows (`freq_infer`: its probe is an ingest) need not profile them again."""

    order: str | None  # the day/month order at the freq profiled ('day', 'month', 'year'; None: none settled)
    traits: frozenset[str]  # the shapes the column holds ('clock12', 'bracket', 'offset', 'midnight', ...)
    dated: str  # '' (no day/month dates), 'year first', 'year first or last' or 'year last'
    midnight_mixed: bool  # times with an offset, some at midnight of it and some not
    by_numbers: str | None  # the order the numbers settle alone, whatever the freq (`time_column_profile` without one)
    # every value a date alone ('2024-03-01', '1/3/24'): no reading of it has a time of day (`sources.ingest` skips
    # its parsed check of one, a scan of every row)
    dates_alone: bool = False


def _day_month_fits(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """True where a day/month date's first and second numbers (`a`, `b`) are a day and a month in some order (day
    first or month first; 29 February in any year): '01/32/2020', '31/02/2020', '13/13/2024' are no date either way
    (the calendar check by its year is `schemas.day_month_readable`'s, for the few rows that need it)."""
    def fits(day: pl.Expr, month: pl.Expr) -> pl.Expr:
        days = pl.when(month == 2).then(29).when(month.is_in([4, 6, 9, 11])).then(30).otherwise(31)
        return (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)

    return (fits(a, b) | fits(b, a)).fill_null(False)


_QUARTER_NUMBER_RE = r"^\d{4}-0?[1-4]$"  # '2017-1', '2017-04': a month, or a quarter written year-number
# a value that may hold a time of day ('09:00', '2024-03-01 09', '20240301T0900', '1/29/2024 2 PM'; of a date alone,
# 'Mar 1 2024' too: a time of day not ruled out): a daily source's start-labelled time of day is seen from then
# (`sources.time_of_day_lag`); a file of dates alone has none. A guess from the text, a quick 'yes' alone: where no
# value matches, ingest reads the times as the run parses them (`sources._parsed_time_of_day`), which decides
_TIME_OF_DAY_RE = r"\d:\d|\d[ T]\d|\d\s*[AaPp]\.?[Mm]\.?$"
# a date and nothing else: a four-digit year first, or a year of two or four digits last (or first: '24-03-01')
_DATE_ALONE_RE = r"^(?:\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{2}|\d{4}))$"


def quarter_numbers_note(raw: pl.LazyFrame, col: str, time_col: str) -> str:
    """What the report and the run log say of a time column whose values are all a year and a number 1 to 4
    (`_time_profile`'s trait 'quarter_numbers'): read as months, January to April, where a quarterly file written
    '2017-1' .. '2017-4' means quarters (its last 8 of 28 rows per series were kept, and max_gap = 8 suggested,
    which imputes months that never existed). A second pass over the column, for such a column alone."""
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    first, last = raw.select(text.min().alias("a"), text.max().alias("b")).collect(engine="streaming").row(0)
    year, number = str(first).split("-")
    return (f"every value of the time column {time_col!r} is a year and a number 1 to 4 ({first!r} .. {last!r}), read "
            f"as a month: {first!r} is {int(year):04d}-{int(number):02d}-01, and no month after April is written. If "
            f"they are quarters, write them '{year}Q{int(number)}' (year, Q, quarter; '{year}-Q{int(number)}' too), "
            "which are read as quarters (--freq 1q); no --time-format reads a quarter")


def distinct_text(raw: pl.LazyFrame, col: str) -> pl.LazyFrame:
    """The distinct values of column `col` of `raw` as text, in the order of their first row: the one column (`col`)
    of a frame, all of `raw` that a time column's profile reads (`_time_profile`, `distinct._columns_distinct`)."""
    return raw.select(pl.col(col).cast(pl.Utf8).unique(maintain_order=True))


def _time_profile(raw: pl.LazyFrame, col: str, freq: str | None = None) -> TimeProfile:
    """`time_column_profile`, whether the column holds day/month dates (their order is to decide): '' for
    none, 'year first' where a two-digit year may come first ('24/03/01'), 'year first or last' where some may and
    another date puts it last ('1/5/24'), 'year last' otherwise; and whether its
    times with an offset are some at midnight of it and some not (the rows by as_of may be all at midnight: 'midnight'
    is a trait of every such row, which a later one can take away; the other traits are each a value's own shape)."""
    text = pl.col(col).cast(pl.Utf8).str.strip_chars()
    # each trait is of the set of values (any, all, max, n_unique of them), not of their rows: read off the distinct
    # values once (the regexes over every row of 1,000,000 hourly times, 2,000 distinct, took 3.6 s); so are the
    # spacings of the distinct dates that settle an order the numbers leave open (`_year_first_fits`,
    # `_day_month_by_spacing`)
    raw = distinct_text(raw, col)
    is_dm = text.str.contains(DAY_MONTH_RE)
    # a date that no order reads ('01/32/2020', '31/02/2020': a typo) decides nothing: its 32 made a day-first column
    # contradict itself, every row quarantined (a row no reading dates is kept by `_dated_by`: a later typo did too)
    # (told by its two numbers alone, `_day_month_fits`: a calendar check of each row cost 2 s per 1,000,000 rows)
    # (each number a column of its own, extracted once: `_day_month_fits` reads each several times)
    a, b = pl.col("__profile_a"), pl.col("__profile_b")
    numbers = raw.with_columns(
        text.str.extract(r"^(\d{1,2})[/.\-]", 1).cast(pl.Int32, strict=False).alias("__profile_a"),
        text.str.extract(r"^\d{1,2}[/.\-](\d{1,2})[/.\-]", 1).cast(pl.Int32, strict=False).alias("__profile_b"))
    readable = is_dm & _day_month_fits(a, b)
    first, second = a.filter(readable), b.filter(readable)
    # '24-03-01': a two-digit year first (ISO's order, '%y-%m-%d') or last ('%d-%m-%y'), the file decides
    yf = text.str.contains(YEAR_FIRST_RE)
    # a day/month date that cannot have its year first ('1/5/24', '05/01/2024'): the file writes its year last
    year_last = (readable & ~yf).any()
    yf_first = text.str.extract(YEAR_FIRST_RE, 1).cast(pl.Int32, strict=False).filter(yf)
    yf_second = text.str.extract(YEAR_FIRST_RE, 2).cast(pl.Int32, strict=False).filter(yf)
    yf_third = text.str.extract(YEAR_FIRST_RE, 3).cast(pl.Int32, strict=False).filter(yf)
    # every time with an offset written at midnight of that offset ('2024-01-01T00:00:00.000Z': dates serialized as
    # timestamps, JavaScript's toISOString, a DATE exported as a TIMESTAMP): 'midnight', read by a daily grid
    offset = text.str.contains(_TIME_ZONED_RE)
    at_midnight = offset & text.str.contains(_MIDNIGHT_ZONED_RE)
    not_midnight = (offset & ~at_midnight).any()
    # '2017-1' .. '2023-4': months 1 to 4 alone over several years, as quarters are written year-number
    quarter_like = text.str.contains(_QUARTER_NUMBER_RE)
    try:
        row = numbers.select(first.max().alias("first"), second.max().alias("second"), yf.any().alias("yf"),
                         yf_first.max().alias("yf1"), yf_second.max().alias("yf2"), yf_third.max().alias("yf3"),
                         text.str.contains(r"[AaPp]\.?[Mm]\.?$").any().alias("clock12"),
                         text.str.contains("]", literal=True).any().alias("bracket"), year_last.alias("year_last"),
                         (offset.any() & ~not_midnight).alias("midnight"),
                         text.str.contains(f"{_MONTH_YEAR_RE}|{_YEAR_MONTH_NAME_RE}|{_QUARTER_FIRST_RE}").any()
                         .alias("month_name"),
                         text.str.contains(_HOUR_24_RE).any().alias("hour24"),
                         (at_midnight.any() & not_midnight).alias("midnight_mixed"),
                         text.str.contains(_TIME_OFFSET_RE).any().alias("offset"),
                         (quarter_like.any() & quarter_like.all() & (text.str.slice(0, 4).n_unique() > 1))
                         .alias("quarter_numbers"),
                         text.str.contains(_TIME_OF_DAY_RE).any().alias("time_of_day"),
                         text.str.contains(_BASIC_CLOCK_SEEN_RE).any().alias("basic_clock"),
                         text.str.contains(_DATE_ALONE_RE).all().alias("dates_alone"),
                         ).collect(engine="streaming").row(0)
    except pl.exceptions.PolarsError:  # unreadable (bytes that are not UTF-8): said where the rows are read
        # (offsets and times of day not ruled out: `_seen_apart`, `sources.seen_shifts_expr`)
        return TimeProfile(None, frozenset({"offset", "time_of_day"}), "", False, None)
    traits = frozenset(name for name, on in (("clock12", row[6]), ("bracket", row[7]), ("midnight", row[9]),
                                                       ("month_name", row[10]), ("hour24", row[11]),
                                                       ("offset", row[13]), ("quarter_numbers", row[14]),
                                                       ("time_of_day", row[15]), ("basic_clock", row[16])) if on)
    dated = ("year first" if row[2] and not row[8] else "year first or last" if row[2] else "year last"
             if row[0] is not None else "")
    mixed, alone = bool(row[12]), bool(row[17])
    order, left = _order_of_numbers(row[0], row[1], row[2], row[8], row[3], row[4], row[5])
    if left == "year first":
        # every value could be year first; a first number above 31 is a year (no day is: settled); otherwise nothing
        # tells a year first from a day or month first: the values stay unparsable, each naming both formats
        # ('24-03-01' was read as 24 March 2001, '24/03/01' too: a daily file of March 2024 became one value a year),
        # unless the spacing of the dates read each way tells which one the source's freq has. Slashed and dotted as
        # dashed
        return TimeProfile(_year_first_fits(raw, text, "day" if (row[0] or 0) > 12 else None, freq) if freq else None,
                           traits, dated, mixed, order, alone)
    if left == "day month" and freq:
        # every first and second number 12 or below ('03/04/2024'): the reading whose dates are spaced as the
        # declared freq says, when only one is ('01/04/2024'..'05/04/2024' at 1d: 1-5 April, not the 4th of five
        # months); both or neither: the values stay unparsable, each with the hint to declare a time_format
        return TimeProfile(_day_month_by_spacing(raw, col, freq), traits, dated, mixed, order, alone)
    return TimeProfile(order, traits, dated, mixed, order, alone)


def _order_of_numbers(first: int | None, second: int | None, year_first: bool, year_last: bool, yf1: int | None,
                      yf2: int | None, yf3: int | None) -> tuple[str | None, str | None]:
    """The day/month order a time column's numbers settle alone, whatever its freq, and what they leave to the spacing
    of its dates where they settle none; one rule for a column (`_time_profile`) and each file of a glob
    (`_orders_by_rows`). The numbers: the largest first and second number of its day/month dates that some order reads
    (`first`, `second`; None: none), whether a date may have a two-digit year first (`year_first`: '24/03/01') and
    whether one cannot (`year_last`: '1/5/24'), and the largest first, second and third number of the year-first ones
    (`yf1`..`yf3`). Returns (order: 'day', 'month', 'year' or None; left: 'year first' where every value could be
    year first, 'day month' where every first and second number is 12 or below, else None)."""
    if year_first and not year_last and (yf2 or 0) <= 12 and (yf3 or 0) <= 31:  # every value could be year first
        return ("year", None) if (yf1 or 0) > 31 else (None, "year first")
    day, month = (first or 0) > 12, (second or 0) > 12
    if not day and not month:
        return None, "day month" if first is not None else None
    return ("day" if day and not month else "month" if month and not day else None), None
