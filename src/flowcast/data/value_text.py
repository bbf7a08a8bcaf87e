"""A value's text as the run reads it: missing-value markers, a number's text (blanks, the Unicode minus, digit
groups, yes/no and true/false flags) and an id's text (stripped, NFC-normalized).

An empty quoted field ('""', how csv.QUOTE_ALL writes a
missing value) or a blank one in the time, target or covariate column holds no value, as an empty field.
"""

from __future__ import annotations

import polars as pl

from flowcast.data.schemas import RAW_PREFIX
from flowcast.distinct import _any, rewrite_distinct
from flowcast.errors import DataValidationError

UNICODE_MINUS = "\u2212"  # '−': read as '-' in a number


def number_text(expr: pl.Expr) -> pl.Expr:
    """A number's text as a float cast reads it: blanks around it dropped, the Unicode minus sign (U+2212, as
    typesetting and some locales' exports write '−5') as '-', and a sign set apart from its digits ('- 5',
    '− 5', '+ 5': typeset reports) joined to them. For targets, covariates and numeric statics alike. The same
    values as `_number_text_rows`, read per batch (`_number_text_batch`): its regexes ran on every row, 0.9 s of
    1,000,000 plain numbers, which a float cast reads as written."""
    return expr.map_batches(_number_text_batch, return_dtype=pl.Utf8, is_elementwise=True)


def _number_text_batch(text: pl.Series) -> pl.Series:
    """`_number_text_rows` of a batch: a value that a float cast reads as it is written ('12.5', '-3', '1e3', 'nan')
    has no blank, U+2212 or group separator to rewrite, so it stays as it is; the others ('1'234.5', ' 7', '−5',
    'abc') are rewritten once per distinct value (`distinct.rewrite_distinct`)."""
    text, _, odd = _float_cast(text)
    return rewrite_distinct(text, _number_text_distinct, odd)


def _float_cast(text: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
    """A batch as text, its float cast as written, and the rows that cast leaves null with a value (the odd rows,
    which `_number_text_rows` may read): what `_number_text_batch` and `_number_batch` both start from."""
    text = text if text.dtype == pl.Utf8 else text.cast(pl.Utf8)
    number = text.cast(pl.Float64, strict=False)
    return text, number, text.is_not_null() & number.is_null()


def _number_text_distinct(values: pl.Series) -> pl.Series:
    """`_number_text_rows` of a Series (the distinct values of a batch's odd rows)."""
    return values.to_frame("t").select(_number_text_rows(pl.col("t"))).to_series()


def _number_text_rows(expr: pl.Expr) -> pl.Expr:
    """`number_text` as regexes over every row of `expr`."""
    text = expr.str.strip_chars().str.replace_all(UNICODE_MINUS, "-", literal=True)
    text = text.str.replace(r"^([-+])\s+(\d|\.\d)", "${1}${2}")
    # thousands no locale writes as a decimal mark, '.' the decimal point: Swiss '1'234.5' (an apostrophe, or the
    # typographic U+2019 '1’234.5'), and SI's (narrow, thin, no-break) spaces '12 345.5', '1 234 567'; such values
    # were quarantined as 'thousands separators?' (the ’ with no hint)
    grouped = text.str.contains(_SURE_GROUPED_RE)
    return pl.when(grouped).then(text.str.replace_all(_SURE_GROUPS, "")).otherwise(text)


_SURE_GROUPS = "['\u2019 \u00a0\u202f\u2009]"  # apostrophes and spaces between groups of three digits
_SURE_GROUPED_RE = rf"^[-+]?\d{{1,3}}(?:{_SURE_GROUPS}\d{{3}})+(?:\.\d+)?$"  # '1'234', '1’234.5', '12 345.25'
_BOOLEAN_TEXT = {"true": 1.0, "false": 0.0}  # TRUE/FALSE (Excel, R), True/False (pandas), true/false (polars)
# yes/no (a survey's or a form's flag): 1/0 only in a column of such words alone (`yes_no_columns`), so that a
# stray 'yes' among numbers is not read as 1 without a word
_YES_NO_TEXT = {"yes": 1.0, "no": 0.0, "y": 1.0, "n": 0.0}


def _number(expr: pl.Expr, dtype: pl.DataType, col: str, file: str, *, booleans: bool = False,
            yes_no: bool = False) -> pl.Expr:
    """`expr` as Float64 (null where it is not a number); `booleans`: a covariate's 'TRUE'/'False'
    text is 1/0, as a Boolean column is (a promotion flag exported by Excel or pandas); `yes_no`
    (its column holds flag words alone, `yes_no_columns`): 'Yes'/'no'/'Y'/'N' are 1/0 as well."""
    if dtype == pl.Utf8:
        if not booleans:  # (a target: its floats per batch, `_number_batch`)
            return expr.map_batches(_number_batch, return_dtype=pl.Float64, is_elementwise=True)
        # the Unicode minus sign (U+2212, as typesetting and some locales' exports write '−5') is nothing but a minus
        text = number_text(expr)
        number = text.cast(pl.Float64, strict=False)
        words = {**_BOOLEAN_TEXT, **(_YES_NO_TEXT if yes_no else {})}
        flag = text.str.to_lowercase().replace_strict(words, default=None, return_dtype=pl.Float64)
        return pl.coalesce(number, flag)
    if dtype.is_numeric() or dtype == pl.Boolean:
        return expr.cast(pl.Float64)
    raise DataValidationError(f"{file}: column {col!r} has type {dtype}, which cannot be cast to a number")


def _number_batch(text: pl.Series) -> pl.Series:
    """`number_text(text)` as Float64 (null where it is not a number), per batch: a float cast of the batch as
    written, and the odd rows it leaves null alone rewritten (`_number_text_rows`, once per distinct value) and cast,
    their floats set back on them (not a copy of the batch's text with a few values rewritten: 30 MB more at the peak
    of 1,000,000 rows, 0.6% of them odd)."""
    text, number, odd = _float_cast(text)
    if not odd.any():
        return number
    read = rewrite_distinct(text.filter(odd), _number_text_distinct).cast(pl.Float64, strict=False)
    return number.scatter(odd.arg_true(), read)


MISSING_MARKERS = ("NA", "N/A", "#N/A", "NULL", "null", "\\N")  # R's, Excel's and SQL exports' missing number


def _has_value(raw: pl.Expr, *, marker: bool) -> pl.Expr:
    """Whether a CSV field holds a value: not empty or blank, and (`marker`: a number's column) not a
    missing-value marker as those tools write it (`MISSING_MARKERS`): R's NA was quarantined as "val 'NA' is
    not a number". Other text ('n/a', 'none', '-') is still quarantined: it may be a typo."""
    text = raw.str.strip_chars()
    has = text != ""
    return has & ~text.is_in(MISSING_MARKERS) if marker else has


def yes_no_columns(raw: pl.LazyFrame, columns: list[str], *, text: bool) -> set[str]:
    """The text covariate columns (of `columns`) whose every value is a flag word, yes/no or true/false in any
    case ('Yes', 'N', 'FALSE'), with at least one yes/no: their yes/no are read as 1/0 (`_number`). Decided once,
    from the rows of `raw` (one pass over those columns; `ingest` decides from the rows observed by as_of, so that
    rows written after it do not change how it reads its own), not on each read of the rows, whose subsets could
    decide otherwise. A column beside a number ('yes' and '3') is not one: its words are quarantined, with their
    reason. (`text`: CSV, where blanks and missing-value markers hold no value.)"""
    return {c for c, (yes_no, other) in _flag_words(raw, columns, text=text).items() if yes_no and not other}


def _flag_words(raw: pl.LazyFrame, columns: list[str], *, text: bool) -> dict[str, tuple[bool, bool]]:
    """Text column (of `columns`) -> (it holds a yes/no word, it holds a value that is no flag word): one pass."""
    schema = raw.collect_schema()
    cols = [c for c in dict.fromkeys(columns) if schema.get(RAW_PREFIX + c) == pl.Utf8]
    exprs: dict[str, pl.Expr] = {}
    flags = [*_BOOLEAN_TEXT, *_YES_NO_TEXT]
    for c in cols:
        word = number_text(pl.col(RAW_PREFIX + c)).str.to_lowercase()
        valued = _has_value(pl.col(RAW_PREFIX + c), marker=True) if text else pl.col(RAW_PREFIX + c).is_not_null()
        exprs[f"yes_no:{c}"] = word.is_in(list(_YES_NO_TEXT))
        exprs[f"other:{c}"] = valued & ~word.is_in(flags)
    seen = _any(raw, exprs)
    return {c: (seen[f"yes_no:{c}"], seen[f"other:{c}"]) for c in cols}


def _nfc_batch(text: pl.Series) -> pl.Series:
    """`text` in Unicode NFC, per batch: unchanged where every value is ASCII (which NFC leaves as it is: no byte of
    it is a character of more than one), else each distinct value normalised once and the rows it changes replaced
    (ids repeat over thousands of rows: `str.normalize` per row took 1.9 s of 4.3M all-ASCII rows)."""
    if text.str.len_bytes().sum() == text.str.len_chars().sum():
        return text
    return rewrite_distinct(text, lambda v: v.str.normalize("NFC"))


def nfc(text: pl.Expr) -> pl.Expr:
    """`text.str.normalize("NFC")`, with the same values, cheaper where values repeat or are ASCII (`_nfc_batch`)."""
    return text.map_batches(_nfc_batch, return_dtype=pl.Utf8, is_elementwise=True)


def id_text(col: pl.Expr, text: bool) -> pl.Expr:
    """An id column's values as the run reads them into `unique_id`: as text, stripped of surrounding blanks in a CSV
    file (`text`: they are formatting there; a Parquet file's ' north' is an id of its own), NFC-normalized."""
    part = col.cast(pl.Utf8)
    if text:  # CSV: surrounding blanks are formatting, not part of the id
        part = part.str.strip_chars()
    # one id, however its accents were typed: 'Café' with a composed é (NFC, most keyboards) and with an e plus
    # a combining accent (NFD, macOS file names, some exports) looked the same and were two series, each half
    # its dates with the other half imputed
    return nfc(part)
