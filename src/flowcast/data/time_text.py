"""The shapes a text time is written in (a UTC offset or bracketed zone, a year, month, quarter or ISO week, month
names, day/month dates, a 12-hour clock) and their rewriting as ISO-8601 text.

Time values: `time_format` (strptime) or ISO-8601.
A year ('2020') or month ('2020-03', '2020-3'), ISO-8601 at reduced precision,
and a quarter ('2020Q1', '2020-Q1', '2020 Q1') mean their first day; an unpadded date ('2024-1-5') is read
as '2024-01-05'.
"""

from __future__ import annotations

import polars as pl

from flowcast.data.schemas import DAY_MONTH_RE, YEAR_FIRST_RE

# a UTC offset: 'Z', '+01:00', '+0100', and '+01' (ISO-8601's hours alone, as PostgreSQL writes a timestamptz:
# '2024-01-01 00:00:00+01'), or ' UTC' / ' GMT' (BigQuery's exports: '2024-01-01 00:00:00 UTC'); such a time was
# not stripped of its zone, and polars, inferring the column's format from it, failed the whole read ("cannot read
# FILE: `strptime` / `to_datetime` was called with no format and no time zone, but a time zone is part of the data")
_ZONE = r"(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)"
_OFFSET_RE = rf"\s*{_ZONE}$"
# a time of day, extended ('10:00', '9:30:00.5') or, after a date's last digit, ISO-8601's basic format ('T0930',
# ' 093000.5', as strftime('%Y-%m-%dT%H%M%z') writes it, with its compact offset '+0100'): such a time with an
# offset was not stripped of it, and polars, inferring the column's format from it, refused the whole file ("cannot
# read FILE: ... a time zone is part of the data")
_CLOCK = r"(?:\d:\d{2}(?::\d{2}(?:\.\d+)?)?|\d[T ]\d{4}(?:\d{2}(?:\.\d+)?)?)"
# a UTC offset follows a time of day ('...T10:00+01:00', '10:00:00.5Z', '...T0930+0100'): '31-Jan-2024' (an Oracle
# export) ends in '-2024', which _OFFSET_RE alone read as the offset -20:24, making its row offset-aware
_TIME_OFFSET_RE = rf"{_CLOCK}\s*{_ZONE}$"
ZONE_GROUP = 1  # the group of _TIME_OFFSET_RE and _TIME_ZONED_RE that is the offset ('+0100', 'Z'), for str.extract
# '...+01:00[Europe/Berlin]', '...T0930+0100[Europe/Berlin]'
_BRACKET_ZONE_RE = r"((?::\d{2}|\d{4})(?:\.\d+)?(?:Z|z|[+-]\d{2}(?::?\d{2})?))\[[A-Za-z0-9_+\-/]+\]$"
# the same two with a bracketed zone allowed after the offset ('2024-03-01T00:00:00+01:00[Europe/Paris]'), for the
# checks that look at a column's text before it is read (`_time_profile`, `_offset_midnight`, `_written_by`): such a
# time is read with its offset (the zone stripped, `_read_time`), and was left out of them
_BRACKET = r"(?:\[[A-Za-z0-9_+\-/]+\])?"
_TIME_ZONED_RE = rf"{_CLOCK}\s*{_ZONE}{_BRACKET}$"
_MIDNIGHT_ZONED_RE = rf"[T ](?:00:00(?::00(?:\.0+)?)?|0000(?:00(?:\.0+)?)?)\s*{_ZONE}{_BRACKET}$"
# a time of day in ISO-8601's basic format after an ISO date ('2024-03-07T0930', '2024-03-07 093000.5'), its
# offset stripped: polars reads it alone, but infers one format for the column from its first value, so a column
# mixing it with '09:30' had the other shape's rows quarantined; rewritten as '09:30' (`_extended_clock_text`)
_BASIC_CLOCK_RE = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2})(\d{2})(\d{2}(?:\.\d+)?)?$"
# a date in ISO-8601's basic format, alone or before a time of day ('20240307', '20240307T0930', '20240307T093000Z',
# '20240307T0930+0100' its offset stripped: as loggers and strftime('%Y%m%dT%H%M%S%z') write it), an extended one too
# ('20240307T09:30', '20240307 09:30:00Z'): every such row was quarantined as not ISO-8601; rewritten as '2024-03-07'
# before its time of day is (`_extended_clock_text`)
_BASIC_DATE_RE = r"^(\d{4})(\d{2})(\d{2})([T ]\d.*)?$"
# a value that may hold one of these (the offset not yet stripped, the date not yet ISO): a basic time of day, or a
# basic date alone or before any time of day ('20240307T09:30' was not seen, so its date was never rewritten)
_BASIC_CLOCK_SEEN_RE = r"\d[T ]\d{4}|^\s*\d{8}(?:[T ]\d|\s*$)"
_YEAR_RE = r"^\d{4}(\.0+)?$"  # ISO-8601 reduced precision: a year ('2020'); '2020.0' as pandas writes a column of
# years with a missing value (a float column): it was told "a year and month? --time-format '%Y.%m'", which reads none
_YEAR_MONTH_RE = r"^\d{4}-\d{1,2}$"  # ... and a calendar month ('2020-03'; '2020-3' as spreadsheets write it)
_UNPADDED_DATE_RE = r"^(\d{4})-(\d{1,2})-(\d{1,2})(\D.*)?$"  # '2024-1-5', '2024-01-5 08:00': zero-padded before parsing
# a day/month date's parts: first number, second number, year (2 or 4 digits), the rest (a time of day)
_DAY_MONTH_PARTS = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})\b(.*)$"
_QUARTER_RE = r"^(\d{4})[-/ ]?[Qq]([1-4])$"  # a quarter as statistics offices write it ('2020Q1', '2020-Q1', '2020 Q1',
# '2020/Q1')
_ISO_WEEK_RE = r"^(\d{4})-?W(\d{2})(?:-?([1-7]))?$"  # an ISO-8601 week ('2021-W01', '2021W01'), or a day of it ('2021-W01-3')


# ISO 8601's 24:00, the end of a day ('2024-01-01 24:00' is 2024-01-02 00:00): hour-ending data (electricity markets,
# meters) label the last hour of each day so, and every such row was quarantined as not ISO-8601, one hour a day lost
_HOUR_24_RE = r"^\d{4}-\d{2}-\d{2}[ T]24:00(:00(\.0+)?)?([ ]?(Z|UTC|[+-]\d{2}(:?\d{2})?))?$"


# a 12-hour clock: '1/29/2024 2:30 PM' (Excel's m/d/yyyy h:mm AM/PM, as an English-locale export writes it)
_CLOCK_12_RE = r"^(.*?\s)(\d{1,2}):(\d{2}(?::\d{2}(?:\.\d+)?)?)\s*([AaPp])\.?[Mm]\.?$"


def _clock_24(text: pl.Expr) -> pl.Expr:
    """A time of day on a 12-hour clock ('2:30 PM', '12:05 a.m.') as a 24-hour one ('14:30', '00:05'), which
    ISO-8601 and polars read; other values unchanged (an hour outside 1..12 stays, and is unparsable). Every such
    row was quarantined, with a hint whose format ('%m/%d/%Y %H:%M') did not parse it either."""
    hour = text.str.extract(_CLOCK_12_RE, 2).cast(pl.Int32, strict=False)
    pm = text.str.extract(_CLOCK_12_RE, 4).str.to_uppercase() == "P"
    h24 = hour % 12 + pl.when(pm).then(12).otherwise(0)
    return (pl.when((hour >= 1) & (hour <= 12))
            .then(pl.format("{}{}:{}", text.str.extract(_CLOCK_12_RE, 1), h24.cast(pl.Utf8).str.zfill(2),
                            text.str.extract(_CLOCK_12_RE, 3)))
            .otherwise(text))


def _extended_clock_text(text: pl.Expr) -> pl.Expr:
    """A date and time of day in ISO-8601's basic format ('20240307', '20240307T0930', '2024-03-07T0930',
    '...T093000.5'), or either part alone in it ('20240307T09:30'), in its extended one ('2024-03-07',
    '2024-03-07T09:30', '...T09:30:00.5'); other values unchanged (a month, day, hour or minute out of range stays, and
    is unparsable)."""
    text = text.str.replace(_BASIC_DATE_RE, "${1}-${2}-${3}${4}")
    seconds = text.str.extract(_BASIC_CLOCK_RE, 3)
    return pl.when(seconds.is_not_null()).then(text.str.replace(_BASIC_CLOCK_RE, "${1}:${2}:${3}")).otherwise(
        text.str.replace(_BASIC_CLOCK_RE, "${1}:${2}"))


def _day_month_iso(text: pl.Expr, order: str) -> pl.Expr:
    """A day/month date ('13.01.2024 08:00', '1/2/24') as ISO-8601 text ('2024-01-13 08:00') in the
    given order (a two-digit year is 1970..2069, as strptime's %y); null for other values."""
    a = text.str.extract(_DAY_MONTH_PARTS, 1)
    b = text.str.extract(_DAY_MONTH_PARTS, 2)
    year = text.str.extract(_DAY_MONTH_PARTS, 3)
    rest = text.str.extract(_DAY_MONTH_PARTS, 4)
    if order == "year":  # '24-03-01': year, month, day
        a, year = year, a
    yy = year.cast(pl.Int32, strict=False)
    full = pl.when(year.str.len_chars() == 2).then(pl.when(yy < 70).then(yy + 2000).otherwise(yy + 1900)).otherwise(yy)
    day, month = (a, b) if order in ("day", "year") else (b, a)
    return pl.format("{}-{}-{}{}", full.cast(pl.Utf8).str.zfill(4), month.str.zfill(2), day.str.zfill(2),
                     rest.fill_null(""))


# `_DAY_MONTH_PARTS` rewritten day first ('01/13/2024 08:00' month first: '13/01/2024 08:00'), by order
_DAY_FIRST = {"day": "${1}/${2}/${3}${4}", "month": "${2}/${1}/${3}${4}", "year": "${3}/${2}/${1}${4}"}
def _day_first(raw: pl.Expr, file: pl.Expr, day_month: dict[int, str]) -> tuple[pl.Expr, pl.Expr]:
    """For a glob whose files each settle their own day/month order (`day_month`: file index -> 'day', 'month' or
    'year'): the text time `raw` (of the file `file`) with each such date rewritten day first, and whether it was (a
    two-digit year first only where the date can have one), which `_read_time` then reads as one day-first column. A
    reading per order in the parse, each nesting the text read before it, made the plan 9x one order's: a folder of
    200 day-first and month-first files took 30 s to validate where one order's took 2 s (the optimizer's time, not
    the rows')."""
    text = raw.str.strip_chars()
    order = file.replace_strict(list(day_month), list(day_month.values()), default=None, return_dtype=pl.Utf8)
    # (a file without an order is read in none: its null order made `order != "year"` null, and `null | True` a
    # year-first-shaped date of it, '01/02/24', read day first without a word)
    read = (text.str.contains(DAY_MONTH_RE) & order.is_not_null()
            & ((order != "year") | text.str.contains(YEAR_FIRST_RE))).fill_null(False)
    rewritten = text.str.replace(_DAY_MONTH_PARTS, order.replace_strict(_DAY_FIRST, default="${0}"))
    return pl.when(read).then(rewritten).otherwise(raw), read


def _format_names_instant(fmt: str) -> bool:
    """Whether a strptime format reads instants rather than wall times: with an offset or zone (%z, %Z) or Unix epoch
    seconds (%s, seconds since 1970-01-01 UTC in every zone; with a `tz` they were read as its wall times, every
    time shifted by its offset)."""
    return any(code in fmt for code in ("%z", "%Z", "%#z", "%s"))


def _time_text(raw: pl.Expr, traits: frozenset[str]) -> pl.Expr:
    """A text time column's values as read: blanks around them cut off, and a bracketed zone after an offset."""
    # '2024-01-01T10:00+01:00[Europe/Berlin]' (Java's ZonedDateTime, RFC 9557): the offset is the instant's,
    # the bracketed zone a note on it (such a time was quarantined as not ISO-8601)
    text = raw.str.strip_chars()
    return text.str.replace(_BRACKET_ZONE_RE, "${1}") if "bracket" in traits else text


# English month names, written out (calendar.month_name follows the process' LC_TIME locale)
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december")
_MONTHS = {n: f"{i:02d}" for i, full in enumerate(_MONTH_NAMES, start=1) for n in (full, full[:3])} | {"sept": "09"}
_MONTH_YEAR_RE = r"^([A-Za-z]{3,9})\.?[ \-/]?(\d{4})$"  # 'Jan 2024', 'January 2024', 'Jan-2024', 'Sept. 2024'
_YEAR_MONTH_NAME_RE = r"^(\d{4})[ \-/]([A-Za-z]{3,9})$"  # '2024-Jan', '2024 January'
# 'Q1 2024', 'Q1-2024' (spreadsheets' order; ISO's is '2024-Q1'), and as finance writes it, '1Q2024', '1Q24', 'Q1-24'
# (a two-digit year is 1970..2069, as strptime's %y)
_QUARTER_FIRST_RE = r"^(?:[Qq]([1-4])|([1-4])[Qq])[ \-/]?(\d{4}|\d{2})$"


def _month_name_text(text: pl.Expr) -> pl.Expr:
    """A month written with its English name and a four-digit year ('Jan 2024', 'January 2024', '2024-Jan', as
    spreadsheets and statistics tables write a monthly period) as its ISO month ('2024-01'); other values, and
    names that are no month, unchanged (unparsable, with the hint naming '%b %Y'). Such a column needed
    --time-format '%b %Y', and one mixing 'Sep 2024' with 'Sept 2024' or 'September 2024' no format read.
    A quarter written first ('Q1 2024', 'Q1-2024', '1Q24') becomes '2024Q1' (`_period_start_text` reads it)."""
    def iso(year: pl.Expr, name: pl.Expr) -> pl.Expr:
        month = name.str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Utf8)
        return pl.when(month.is_not_null()).then(pl.format("{}-{}", year, month))

    year = text.str.extract(_QUARTER_FIRST_RE, 3)
    yy = year.cast(pl.Int32, strict=False)
    year = pl.when(year.str.len_chars() == 2).then(
        pl.when(yy < 70).then(yy + 2000).otherwise(yy + 1900).cast(pl.Utf8)).otherwise(year)
    quarter = pl.format("{}Q{}", year, pl.coalesce(text.str.extract(_QUARTER_FIRST_RE, 1),
                                                   text.str.extract(_QUARTER_FIRST_RE, 2)))
    return pl.coalesce(iso(text.str.extract(_MONTH_YEAR_RE, 2), text.str.extract(_MONTH_YEAR_RE, 1)),
                       iso(text.str.extract(_YEAR_MONTH_NAME_RE, 1), text.str.extract(_YEAR_MONTH_NAME_RE, 2)),
                       quarter, text)


def _period_start_text(text: pl.Expr) -> pl.Expr:
    """A year ('2020', '2020.0'), a month ('2020-03', both ISO-8601 at reduced precision), a quarter ('2020Q1',
    '2020-Q1') or an ISO week ('2021-W01': its Monday) as the ISO date of its first day, which
    `str.to_datetime` parses; other values unchanged."""
    quarter = text.str.extract(_QUARTER_RE, 2).replace({"1": "01", "2": "04", "3": "07", "4": "10"})
    return (
        pl.when(text.str.contains(_YEAR_RE)).then(text.str.slice(0, 4) + "-01-01")
        .when(text.str.contains(_YEAR_MONTH_RE)).then(pl.format("{}-{}-01", text.str.slice(0, 4),
                                                                 text.str.slice(5).str.zfill(2)))
        .when(text.str.contains(_UNPADDED_DATE_RE)).then(pl.format(
            "{}-{}-{}{}", text.str.extract(_UNPADDED_DATE_RE, 1), text.str.extract(_UNPADDED_DATE_RE, 2).str.zfill(2),
            text.str.extract(_UNPADDED_DATE_RE, 3).str.zfill(2), text.str.extract(_UNPADDED_DATE_RE, 4).fill_null("")))
        .when(text.str.contains(_QUARTER_RE)).then(pl.format("{}-{}-01", text.str.extract(_QUARTER_RE, 1), quarter))
        .when(text.str.contains(_ISO_WEEK_RE)).then(_iso_week_day(text).dt.to_string("%Y-%m-%d"))
        .otherwise(text)
    )


def _iso_week_day(text: pl.Expr) -> pl.Expr:
    """'2021-W01' -> 2021-01-04 (the Monday of ISO week 1 of 2021; '2021-W01-3' its Wednesday); a week the
    year does not have ('2021-W53') is null, so unparsable, never the next year's first week."""
    year = text.str.extract(_ISO_WEEK_RE, 1).cast(pl.Int32, strict=False)
    week = text.str.extract(_ISO_WEEK_RE, 2).cast(pl.Int32, strict=False)
    day = text.str.extract(_ISO_WEEK_RE, 3).cast(pl.Int32, strict=False).fill_null(1)
    jan4 = pl.date(year, 1, 4)  # always in week 1
    date = jan4 - pl.duration(days=jan4.dt.weekday() - 1) + pl.duration(days=(week - 1) * 7 + day - 1)
    return pl.when((date.dt.iso_year() == year) & (date.dt.week() == week)).then(date)
