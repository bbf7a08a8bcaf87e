"""Decimal commas and thousands separators: which number columns of a file have them, and those numbers read.

Which columns have decimal commas
or thousands is decided from the rows that may be dated by as_of (`_written_by`), as the day/month order is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from flowcast.data.schemas import UNSETTLED
from flowcast.data.value_text import MISSING_MARKERS
from flowcast.distinct import _any_distinct, _columns_distinct
from flowcast.wording import plural

NOTES_PER_COLUMN = 3  # the notes of how a column's numbers were read said in full (one per file), then how many more
Notes = dict[str, list[str]]  # column -> what the run says of how its numbers were read, every distinct line (`_note`)


def _note(notes: Notes, col: str, line: str) -> None:
    """`line` added to the notes of `col` unless it is said already (each file's names that file)."""
    if line not in (said := notes.setdefault(col, [])):
        said.append(line)


@dataclass
class DecimalPoints:
    """Across the files of a source (a glob, a folder): the number columns some file shows '.' as its decimal point
    in ('7.5', `_decimal_point`: `shown`), and the notes files of '1.234'-like values alone were given, read that way
    (`guessed`: the lines). Each file is judged alone, so a folder's part001.csv of '56.244'-like values was said to
    be 56244 or 56.244 beside files that show the decimal point (nuB46): `ingest` drops such a note."""

    shown: set[str] = field(default_factory=set)
    guessed: set[str] = field(default_factory=set)

    def say(self, notes: Notes, col: str, line: str, *, point: bool) -> None:
        """`line` said of `col` in `notes` beside every other file's (cache47: only the first file's was kept, so a
        second file of the column read another way went unsaid); kept in `guessed` too where it reads '.' as the
        decimal point (`point`)."""
        _note(notes, col, line)
        if point:
            self.guessed.add(line)

    def settled(self, notes: Notes) -> list[str]:
        """The lines of `notes`, column by column, without the guessed decimal-point readings that another file
        settles: the first NOTES_PER_COLUMN of a column, then "column 'val': and N more notes like these"."""
        out: list[str] = []
        for col, lines in notes.items():
            kept = [line for line in lines if not (col in self.shown and line in self.guessed)]
            out += kept[:NOTES_PER_COLUMN]
            if (more := len(kept) - NOTES_PER_COLUMN) > 0:
                out.append(f"column {col!r}: and {plural(more, 'more note')} like these (other files of the source)")
        return out


def _read_comma_decimals(lf: pl.LazyFrame, numeric: list[str], file: str, notes: Notes,
                         statics: list[str], decide: pl.LazyFrame | None = None,
                         points: DecimalPoints | None = None) -> pl.LazyFrame:
    """A ';' file's number columns read with ',' as their decimal mark (`_comma_decimals`), which columns have a
    decimal comma decided once, here (one pass), not on every read of the rows: the plan held a whole-column
    .any() per column, which re-scanned the file each time the rows were read (validation reads them more than
    once). A column of '1.234'-like values alone (1234 or 1.234?) is read as `_point_thousands` settles it and
    said in `notes` (column -> its lines, `ambiguous_points_line`): it was read one way without a word. `decide`:
    the rows that decide (those that may be dated by as_of, `_written_by`); all rows when None. `points`: the
    columns this file shows a decimal point in, and its decimal-point readings said, added (`DecimalPoints`)."""
    points = DecimalPoints() if points is None else points
    rows = lf if decide is None else decide
    values = _columns_distinct(rows, numeric)  # (each check below runs once per distinct value: `_any_distinct`)
    has = _any_distinct(rows, values, {c: pl.col(c).str.strip_chars().str.contains(_HAS_DECIMAL_COMMA_RE)
                                       for c in numeric})
    file_comma = any(has.values())
    exprs: dict[str, pl.Expr] = {}
    for c in numeric:
        text = pl.col(c).str.strip_chars()
        exprs[f"point:{c}"] = _decimal_point(text)  # '7.5', '0.250': a decimal point
        if has[c]:
            continue
        grouped = text.str.contains(_POINT_GROUPED_RE)
        exprs[f"grouped:{c}"] = grouped
        exprs[f"sure:{c}"] = text.str.contains(r"^[-+]?[1-9]\d{0,2}(?:\.\d{3}){2,}$")  # '1.234.567'
        exprs[f"settles:{c}"] = (grouped & text.str.contains(r"0$")) | text.str.contains(r"^[-+]?\d+$")
        # a value of another shape than '1.234' (blanks and missing-value markers aside): the column is not all
        # '1.234'-like values, whose reading nothing proves
        valued = (text != "") & ~text.is_in(MISSING_MARKERS)
        exprs[f"other:{c}"] = valued & ~text.str.contains(_ONE_POINT_GROUP_RE)
        exprs[f"example:{c}"] = text.str.contains(_ONE_POINT_GROUP_RE)
    seen = _any_distinct(rows, values, exprs)
    points.shown |= {c for c in numeric if not has[c] and seen[f"point:{c}"]}
    grouped_thousands = [c for c in numeric if not has[c] and seen[f"grouped:{c}"] and not seen[f"point:{c}"] and (
        seen[f"sure:{c}"] or file_comma or seen[f"settles:{c}"])]
    # a column of '1.234'-like values alone: thousands or decimals? read one way (`_point_thousands`), and said
    for c in numeric:
        if not has[c] and not file_comma and seen[f"example:{c}"] and not seen[f"other:{c}"]:
            example = _first(rows, c, pl.col(c).str.strip_chars().str.contains(_ONE_POINT_GROUP_RE))
            points.say(notes, c, ambiguous_points_line(c, file, example, c in grouped_thousands),
                       point=c not in grouped_thousands)
    # a column with decimal commas ('2,5') and decimal points ('7.5'): a '2.000' there is 2000 or 2.0, unsettled
    mixed = [c for c in numeric if has[c] and seen[f"point:{c}"]]
    _say_mixed_statics(rows, [c for c in mixed if c in statics], file, notes, "2000")
    mixed = [c for c in mixed if c not in statics]
    return lf.with_columns(_unsettled_points(_comma_decimals(pl.col(c), True), pl.col(c)) if c in mixed
                           else _point_thousands(pl.col(c)) if c in grouped_thousands
                           else _comma_decimals(pl.col(c), has[c]) for c in numeric)


_ONE_POINT_GROUP_RE = r"^[-+]?[1-9]\d{0,2}\.\d{3}$"  # '1.234', '12.500': 1234 / 12500, or 1.234 / 12.5?
# a decimal point no thousands separator can be: '7.5', '0.250', '1.2E+03', and ',' thousands before it ('1,234.5')
_DECIMAL_POINT_RE = (r"^[-+]?(\d*\.\d+([eE][-+]?\d+)?|\d{1,3}(,\d{3})+\.\d+|\d{1,2}(,\d{2})+,\d{3}\.\d+"
                     r"|\d{1,3}(['\u2019 \u00a0\u202f\u2009]\d{3})+\.\d+)$")  # ... Swiss and SI: '1'234.5', '12 345.5'


def _decimal_point(text: pl.Expr) -> pl.Expr:
    """True on a number that can only have '.' as its decimal point ('7.5', '0.250', '1,234.5', '1.5E+03'), not
    on one that may be '.'-grouped thousands ('1.234', '12.345.678')."""
    return text.str.contains(_DECIMAL_POINT_RE) & ~text.str.contains(_POINT_GROUPED_RE)


def _unsettled_points(read: pl.Expr, col: pl.Expr) -> pl.Expr:
    """A column written with decimal commas ('2,5') and decimal points ('7.5') alike: its '2.000' or '1.234' is
    2000 with '.' grouping thousands, or 2.0 with '.' as the decimal point, and nothing tells which; it was read
    as 2.0 or as 2000, silently. Such a value is left as written, marked (`UNSETTLED`) so that it is no number
    and its row is quarantined, the reason naming it (`schemas._number_hint`); the rest is read as `read`."""
    text = col.str.strip_chars()
    return pl.when(text.str.contains(_ONE_POINT_GROUP_RE)).then(text + UNSETTLED).otherwise(read)


def _say_mixed_statics(lf: pl.LazyFrame, cols: list[str], file: str, notes: Notes, read: str) -> None:
    """A static column written with decimal commas and decimal points alike: a static has no row to quarantine
    (it is one value per series), so its '2.000'-like values are read as before (`read`: 2000 or 2.0) and said."""
    for c in cols:
        example = _first(lf, c, pl.col(c).str.strip_chars().str.contains(_ONE_POINT_GROUP_RE))
        if example:
            _note(notes, c, f"static column {c!r} of {file} has decimal commas and decimal points, so a value "
                            f"such as {example!r} may be thousands or a decimal; read as if '2.000' were {read}. "
                            "Declare the source's decimal mark: decimal = \",\" or \".\" in [sources.NAME] "
                            "(--decimal), or export every number alike")


def _first(lf: pl.LazyFrame, col: str, where: pl.Expr) -> str:
    """The first value of `col` where `where` holds (an example to name), stripped."""
    found = lf.select(pl.col(col).filter(where).first()).collect(engine="streaming").item()
    return str(found).strip() if found is not None else ""


def ambiguous_points_line(col: str, file: str, example: str, thousands: bool) -> str:
    """What the run says of a number column all of whose values are '1.234'-like: 1234 or 1.234 (a ';' file)."""
    whole, frac = example.lstrip("+-").split(".")
    sign = "-" if example.startswith("-") else ""
    as_thousands = f"{sign}{whole}{frac}"
    as_decimal = f"{sign}{whole}.{frac.rstrip('0') or '0'}"
    how = (f"read as {as_thousands} ('.' grouping thousands: one of them ends in 0, as '#.##0' writes whole numbers)"
           if thousands else f"read as {as_decimal} ('.' as the decimal point)")
    other = "," if not thousands else "."
    return (f"column {col!r} of {file}: every number is written like {example!r} (one '.' and three digits after it), "
            f"which is {as_thousands} with '.' grouping thousands or {as_decimal} with '.' as the decimal point; "
            f"{how}. If that is wrong, declare the source's decimal mark: decimal = \"{other}\" in [sources.NAME] "
            f"(--decimal '{other}'); declaring decimal = \"{',' if thousands else '.'}\" keeps this reading and "
            "silences this note")


# '1.234', '-12.345.678': digits grouped by '.' as a ','-decimal locale writes thousands (no group starts with a lone 0)
_POINT_GROUPED_RE = r"^[-+]?[1-9]\d{0,2}(?:\.\d{3})+$"


def _point_thousands(col: pl.Expr) -> pl.Expr:
    """A ';' file's number column without decimal commas whose '.' groups thousands: '1.037' is 1037 (Excel's
    '#.##0' format in a ','-decimal locale), where it was read as 1.037, a thousandth of its value. Only where
    the column settles it (`_read_comma_decimals`): no value reads as a decimal point ('7.5', '0.250'), and a
    '1.234.567', a decimal comma elsewhere in the file, a grouped value ending in 0 ('12.340': a decimal would
    not be written with its trailing zero) or a whole number beside them shows the format. A column of
    '1.234'-like values alone, none ending in 0, stays as written (1.234)."""
    text = col.str.strip_chars()
    return pl.when(text.str.contains(_POINT_GROUPED_RE)).then(text.str.replace_all(".", "", literal=True)).otherwise(col)


def _read_comma_thousands(lf: pl.LazyFrame, numeric: list[str], file: str, notes: Notes,
                          statics: list[str], decide: pl.LazyFrame | None = None,
                          points: DecimalPoints | None = None) -> pl.LazyFrame:
    """A ',' (tab, '|') file's number columns read with ',' as their thousands separator (`_comma_thousands`) in
    the columns where some value has a ',' (a cheap pass over them; a second one, only for a file that has such
    columns, finds what settles a '1,234': the reading is a handful of regexes over every row, each time the rows
    are read, so it is planned only where needed and with what the whole file says decided here). `decide`: the rows
    that decide (those that may be dated by as_of, `_written_by`), read only where the cheap pass over all rows found
    a ',' or a '1.234'-like value; all rows when None. `points`: as `_read_comma_decimals`."""
    points = DecimalPoints() if points is None else points
    first: dict[str, pl.Expr] = {}
    for c in numeric:
        text = pl.col(c).str.strip_chars()
        first[c] = pl.col(c).str.contains(",", literal=True)
        # (the same pass) a column of '1.234'-like values alone: 1.234, or 1234 grouped by a ','-decimal locale?
        first[f"other:{c}"] = (text != "") & ~text.is_in(MISSING_MARKERS) & ~text.str.contains(_ONE_POINT_GROUP_RE)
        first[f"example:{c}"] = text.str.contains(_ONE_POINT_GROUP_RE)
        first[f"point:{c}"] = _decimal_point(text)  # '7.5': settles the '1.234' of another file of the source
    values = _columns_distinct(lf, numeric)  # (each check below runs once per distinct value: `_any_distinct`)
    has = _any_distinct(lf, values, first)
    rows = lf
    if decide is not None and any(has[c] or has[f"example:{c}"] for c in numeric):  # the rows by as_of decide
        rows, values = decide, _columns_distinct(decide, numeric)
        has = _any_distinct(decide, values, first)
    points.shown |= {c for c in numeric if has[f"point:{c}"]}
    for c in numeric:  # read with '.' as the decimal point, as before, and said
        if has[f"example:{c}"] and not has[f"other:{c}"]:
            example = _first(rows, c, pl.col(c).str.strip_chars().str.contains(_ONE_POINT_GROUP_RE))
            points.say(notes, c, ambiguous_points_line(c, file, example, False), point=True)
    commas = [c for c in numeric if has[c]]
    if not commas:
        return lf
    exprs: dict[str, pl.Expr] = {}
    for c in numeric:
        text = pl.col(c).str.strip_chars()
        grouped = text.str.contains(_COMMA_GROUPED_RE)
        exprs[f"point:{c}"] = text.str.contains(_COMMA_SURE_RE) | text.str.contains(r"^[-+]?\d*\.\d+$")
        # '3,5', '0,250' (no thousands group starts with a lone 0), '1.234,5', '1,5E+03'; not '1,234'
        exprs[f"comma:{c}"] = ((text.str.contains(r"^[-+]?\d*,\d+$") & ~grouped) | text.str.contains(r"^[-+]?0,\d+$")
                               | text.str.contains(_SURE_DECIMAL_COMMA_RE))
        if c in commas:
            exprs[f"whole:{c}"] = text.str.contains(r"^[-+]?\d+$")
            exprs[f"zero:{c}"] = grouped & text.str.contains(r"0$")
            exprs[f"decimal:{c}"] = _decimal_point(text)  # '7.5', '0.250': '.' is a decimal point there
    seen = _any_distinct(rows, values, exprs)
    file_comma = any(seen[f"comma:{c}"] for c in numeric)
    file_point = any(seen[f"point:{c}"] for c in numeric)
    # a column of decimal commas ('"2,5"', '"3,75"': a ','-decimal locale's export, quoted) and no decimal point:
    # ',' is its decimal mark and '.' groups its thousands ('"2.000"' is 2000, where it was read as 2.0, silently);
    # with decimal points as well ('7.5') a '2.000' is unsettled (2000 or 2.0?) and quarantined, naming it
    comma_decimal = {c: seen[f"comma:{c}"] and not seen[f"decimal:{c}"] for c in commas}
    mixed = {c: seen[f"comma:{c}"] and seen[f"decimal:{c}"] for c in commas}
    _say_mixed_statics(rows, [c for c in commas if mixed[c] and c in statics], file, notes, "2.0")
    mixed = {c: m and c not in statics for c, m in mixed.items()}
    return lf.with_columns(
        _comma_decimals_keeping_groups(pl.col(c)) if comma_decimal[c]
        else _unsettled_points(_comma_thousands(pl.col(c), False), pl.col(c)) if mixed[c]
        else _comma_thousands(pl.col(c), not seen[f"comma:{c}"] and (seen[f"point:{c}"] or (
            not file_comma and (file_point or (seen[f"whole:{c}"] and seen[f"zero:{c}"]))))) for c in commas)


def _comma_decimals_keeping_groups(col: pl.Expr) -> pl.Expr:
    """A ',' file's column settled as decimal commas (`_read_comma_thousands`) read as a ';' file's
    (`_comma_decimals`), but for its ','-grouped whole numbers ('1,234', '12,340'): in a ',' file they are
    thousands as often as three decimals, so they stay unread (quarantined, as before), never guessed."""
    text = col.str.strip_chars()
    return pl.when(text.str.contains(r"^[-+]?[1-9]\d{0,2}(,\d{3})+$")).then(col).otherwise(_comma_decimals(col, True))


# a decimal comma no thousands separator can be: after '.' or space groups ('1.234,5'), or before an exponent ('1,5E+03')
_SURE_DECIMAL_COMMA_RE = r"^[-+]?(\d{1,3}([.\u00a0\u202f ]\d{3})+,\d+|\d*,\d+[eE][-+]?\d+)$"


# '3,5', '-0,25', ',5', '1,5E+03' (Excel's scientific format in a ','-decimal locale); no thousands separators
_DECIMAL_COMMA_RE = r"^\s*([-+]?\d*),(\d+)([eE][-+]?\d+)?\s*$"
_GROUPS = "[.\u00a0\u202f ]"  # the thousands separators of ','-decimal locales: '.', (narrow) no-break space, space
_GROUPED_RE = rf"^[-+]?\d{{1,3}}(?:{_GROUPS}\d{{3}})+(?:,\d+)?$"  # '1.234,56', '12 345', '1.234.567'


_HAS_DECIMAL_COMMA_RE = r"^[-+]?[\d.\u00a0\u202f ]*,\d+([eE][-+]?\d+)?$"  # a value with a decimal comma


def _comma_decimals(col: pl.Expr, commas: bool) -> pl.Expr:
    """A ';' file's number column with ',' as its decimal mark: '3,5' is 3.5, and in a column that has decimal
    commas (`commas`: some value matches _HAS_DECIMAL_COMMA_RE), digits grouped by '.' or spaces are thousands
    ('1.234,56' is 1234.56, '1.234' is 1234: Excel's '#.##0,00' format). '1.234,56' was quarantined ('thousands
    separators? export numbers without them') and, worse, '1.234' beside it read as 1.234. A column without any
    decimal comma keeps '.' as its decimal point."""
    if not commas:  # nothing to read (a number is stripped of its blanks where it is parsed: `_number`)
        return col
    text = col.str.strip_chars()
    grouped = pl.when(text.str.contains(_GROUPED_RE)).then(text.str.replace_all(_GROUPS, "")).otherwise(text)
    return grouped.str.replace(_DECIMAL_COMMA_RE, "${1}.${2}${3}")


_COMMA_GROUPED_RE = r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"  # '1,234', '1,234.56', '-12,345,678'
# grouped numbers no decimal-comma locale writes: a '.' decimal after the groups, or two groups and more
# ... and India's grouping (lakh, crore: '1,23,456.78', '12,34,567', Excel's en-IN '#,##,##0.00'), which no
# decimal-comma locale writes either: it was quarantined with no hint
_COMMA_SURE_RE = r"^[-+]?(?:\d{1,3}(?:(?:,\d{3})+\.\d+|(?:,\d{3}){2,})|\d{1,2}(?:,\d{2})+,\d{3}(?:\.\d+)?)$"


def _comma_thousands(col: pl.Expr, settled: bool) -> pl.Expr:
    """A number column of a ',' (tab, '|') file with ',' as its thousands separator (Excel's '#,##0.00' format as
    an English-locale export writes it, quoted: "1,234.56") is read without them. '1,234.56' and '1,234,567' are
    thousands whatever the column holds; '1,234' alone could be a decimal comma with three decimals, so it is
    read as 1234 only where the file settles it (`settled`, `_read_comma_thousands`): the column has no decimal
    comma ('3,5', '0,250') and shows '.' as the decimal mark (a '1,234.56' or a '7.5'), or no number of the file
    has a decimal comma and either another number column shows that '.', or the column also holds whole numbers
    written without a ',' and a grouped one ends in 0 ('12,340': '#,##0' writes whole numbers below 1000
    plainly; a decimal comma with three decimals would not end in 0 beside them, its 'General' format drops the
    zero). Every such row was
    quarantined ('thousands separators? export numbers without them'); where nothing settles it, it still is."""
    text = col.str.strip_chars()
    thousands = text.str.contains(_COMMA_SURE_RE)
    if settled:
        thousands = thousands | text.str.contains(_COMMA_GROUPED_RE)
    return pl.when(thousands).then(text.str.replace_all(",", "", literal=True)).otherwise(col)
