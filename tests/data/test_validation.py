"""Validation: the bad-input catalogue (each kind with its exact outcome), reconciliation, quarantine."""

from __future__ import annotations

import calendar
import gzip
import math
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from data_helpers import make_source, run_validate

from flowcast.config import ValidationConfig
from flowcast.data.validate import (
    enforce_thresholds,
    nothing_observed_by,
    write_quarantine,
)
from flowcast.errors import DataValidationError

HEADER = "date,id,val\n"
GOOD = "2020-01-01,a,1\n2020-01-02,a,2\n2020-01-03,a,3\n"


def quarantined(result) -> list[tuple[int, str, str]]:
    q = result.quarantined.sort("source_row")
    return list(zip(q["source_row"].to_list(), q["check"].to_list(), q["reason"].to_list()))


ACCOUNTING_HINT = (" (a negative number in parentheses, as accounting formats write it? export numbers with a minus "
                   "sign and no format)")

SUFFIX_HINT = " (the suffix '{}' for {}? export the full number without a suffix: {} for '{}')"
EN_DASH_HINT = " (the dash '\u2013' where a minus sign belongs? export negative numbers with '-')"
AS_TEXT_HINT = (" (a number stored as text, as a spreadsheet marks it ('123 or =\"123\")? export the number "
                "alone)")
MISSING_HINT = " (a missing value? leave the cell empty or write NA: both are read as missing)"
FORMULA_HINT = " (a spreadsheet formula's error: fix the formula, or leave the cell empty for a missing value)"
DASH_HINT = " (a dash for a missing value? leave the cell empty or write NA: both are read as missing)"

# --------------------------------------------------------------------- row-level: quarantined rows
# (body rows appended after GOOD, so the first bad row is source_row 3)
ROW_CASES = [
    ("text_in_numeric", "2020-01-04,a,abc\n", {}, [(3, "y_not_number", "val 'abc' is not a number")]),
    # '1,234' beside whole numbers could be a decimal comma with three decimals ('1,234.5' is read: see test_sources)
    ("thousands_separator", '2020-01-04,a,"1,234"\n', {},
     [(3, "y_not_number", "val '1,234' is not a number (thousands separators? export numbers without them)")]),
    # Excel's accounting format writes a negative in parentheses (session 23: no hint said so)
    ("accounting_negative", '2020-01-04,a,"(1,234.00)"\n2020-01-05,a,($12)\n', {},
     [(3, "y_not_number", "val '(1,234.00)' is not a number" + ACCOUNTING_HINT),
      (4, "y_not_number", "val '($12)' is not a number" + ACCOUNTING_HINT)]),
    # a decimal comma in a ',' file whose column also has a decimal point ('7.5'): unsettled; alone, it is read
    ("decimal_comma", '2020-01-04,a,"3,5"\n2020-01-05,a,7.5\n', {},
     [(3, "y_not_number", ("val '3,5' is not a number (decimal comma? export numbers with a '.' decimal point, or "
                          "declare the source's decimal = \",\" (--decimal ','))"))]),
    # regression (session 25): '1.5k', a lone '-' and an en dash for a minus were quarantined as 'is not a number'
    # with no hint of why or what to do
    ("magnitude_suffix", "2020-01-04,a,1.5k\n2020-01-05,a,-2.25M\n", {},
     [(3, "y_not_number", "val '1.5k' is not a number" + SUFFIX_HINT.format("k", "thousands", "1500", "1.5k")),
      (4, "y_not_number", "val '-2.25M' is not a number" + SUFFIX_HINT.format("M", "millions", "-2250000", "-2.25M"))]),
    ("dash_for_missing", "2020-01-04,a,-\n2020-01-05,a, \u2014 \n", {},
     [(3, "y_not_number", "val '-' is not a number" + DASH_HINT),
      (4, "y_not_number", "val ' \u2014 ' is not a number" + DASH_HINT)]),
    ("en_dash_for_minus", "2020-01-04,a,\u20135\n", {},
     [(3, "y_not_number", "val '\u20135' is not a number" + EN_DASH_HINT)]),
    # Swiss thousands ('1'234.5', or with the typographic apostrophe U+2019): read as 1234.5; they were quarantined
    # ('thousands separators?'), the typographic one with no hint at all
    ("swiss_apostrophe", "2020-01-04,a,1'234.5\n2020-01-05,a,-1\u2019234\u2019567.25\n2020-01-06,a,12'34\n", {},
     [(5, "y_not_number", "val '12'34' is not a number")]),
    # spaces between groups of three digits (SI's, a narrow or thin no-break space as typeset reports and French
    # exports write them) are thousands whatever the file: they were quarantined ('thousands separators?')
    ("space_grouping", "2020-01-04,a,12 345\n2020-01-05,a,1\u202f234\u2009567.5\n2020-01-06,a,-1\u00a0000\n", {}, []),
    # India's grouping ('1,23,456.78', Excel's en-IN '#,##,##0.00') was quarantined with no hint: read
    ("indian_grouping", '2020-01-04,a,"1,23,456.78"\n2020-01-05,a,"-12,34,567"\n2020-01-06,a,"1,00,000"\n', {}, []),
    # a spreadsheet's number stored as text ("'123", '="00123"'): quarantined, saying so (it had no hint)
    ("number_stored_as_text", "2020-01-04,a,'123\n2020-01-05,a,\"=\"\"00123\"\"\"\n", {},
     [(3, "y_not_number", "val ''123' is not a number" + AS_TEXT_HINT),
      (4, "y_not_number", "val '=\"00123\"' is not a number" + AS_TEXT_HINT)]),
    # a missing value in other words than NA / N/A / NULL, and a spreadsheet formula's error, were quarantined
    # as 'is not a number' with no word of what to do
    ("missing_in_words", "2020-01-04,a,n/a\n2020-01-05,a,none\n2020-01-06,a,?\n", {},
     [(3, "y_not_number", "val 'n/a' is not a number" + MISSING_HINT),
      (4, "y_not_number", "val 'none' is not a number" + MISSING_HINT),
      (5, "y_not_number", "val '?' is not a number" + MISSING_HINT)]),
    ("formula_error", "2020-01-04,a,#DIV/0!\n2020-01-05,a,#VALUE!\n", {},
     [(3, "y_not_number", "val '#DIV/0!' is not a number" + FORMULA_HINT),
      (4, "y_not_number", "val '#VALUE!' is not a number" + FORMULA_HINT)]),
    # the Unicode minus sign is a minus: read, not quarantined
    ("unicode_minus", "2020-01-04,a,\u22125\n2020-01-05,a,\u22121.5e\u22122\n", {}, []),
    # newuser54: a NaN (Spark's and Java's text of a missing double) is asked if it is a missing value, as 'n/a' is
    ("nan", "2020-01-04,a,NaN\n2020-01-05,a,nan\n", {},
     [(3, "y_not_finite", "val NaN is not finite" + MISSING_HINT),
      (4, "y_not_finite", "val NaN is not finite" + MISSING_HINT)]),
    ("inf", "2020-01-04,a,inf\n2020-01-05,a,-inf\n", {},
     [(3, "y_not_finite", "val inf is not finite"), (4, "y_not_finite", "val -inf is not finite")]),
    # beyond float64: read as inf, and the reason named 'inf', not the value written
    ("beyond_float64", "2020-01-04,a,1e309\n2020-01-05,a,-2E+400\n", {},
     [(3, "y_not_finite", "val inf is not finite ('1e309' as written: beyond the largest number, about 1.8e308)"),
      (4, "y_not_finite", "val -inf is not finite ('-2E+400' as written: beyond the largest number, about 1.8e308)")]),
    # regression: 1e300 passed; MASE became ~1e-298 and the networks diverged (train_loss=nan) naming nothing
    ("beyond_float32", "2020-01-04,a,1e300\n2020-01-05,a,-4e38\n2020-01-06,a,3e38\n", {},
     [(3, "y_too_large", ("val 1e300 is beyond the float32 range the models compute in (|y| <= 3.4e38): a unit "
                         "or entry error? (declare y_max to quarantine smaller outliers)")),
      (4, "y_too_large", ("val -4e38 is beyond the float32 range the models compute in (|y| <= 3.4e38): a unit "
                         "or entry error? (declare y_max to quarantine smaller outliers)"))]),
    ("large_but_legitimate", "2020-01-04,a,2.5e9\n2020-01-05,a,1e30\n", {}, []),
    ("unparsable_time", "2020-13-45,a,4\n", {},
     [(3, "time_unparsable", "time '2020-13-45' does not parse as ISO-8601")]),
    ("missing_time", ",a,4\n", {}, [(3, "time_missing", "time column 'date' is empty")]),
    ("null_id", "2020-01-04,,4\n", {}, [(3, "id_missing", "id column 'id' empty")]),
    # ui40: it read 'val -5.0 outside [0.0, inf]': a float's repr and a bound no one declared
    ("out_of_range", "2020-01-04,a,-5\n", {"y_min": 0.0},
     [(3, "y_out_of_range", "val -5 is below y_min 0")]),
    ("above_y_max", "2020-01-04,a,120.5\n2020-01-05,a,-1\n", {"y_min": -0.5, "y_max": 100.0},
     [(3, "y_out_of_range", "val 120.5 is above y_max 100"), (4, "y_out_of_range", "val -1 is below y_min -0.5")]),
    # an exact repeat is dropped and counted (rows_duplicate), not quarantined: it loses nothing (data43)
    ("duplicate_same_value", "2020-01-02,a,2\n", {}, []),
    ("duplicate_different_value", "2020-01-02,a,20\n", {},
     [(1, "duplicate_conflict", "2 rows for (a, 2020-01-02) with different y values (2.0 / 20.0)"),
      (3, "duplicate_conflict", "2 rows for (a, 2020-01-02) with different y values (2.0 / 20.0)")]),
    # regression: without a time_format, polars guessed day-first from the first value and read
    # '01/02/2020' as 1 February (a US file then lost rows as duplicates or shifted silently)
    # (no row settles the order here; `test_the_day_month_order_is_decided_from_all_rows`)
    # (nu42: among ISO dates it is told to be written as they are, not a --time-format for every row)
    ("day_month_ambiguous", "01/02/2020,a,4\n", {},
     [(3, "time_unparsable", ("time '01/02/2020' does not parse as ISO-8601 (day/month order is ambiguous, and other "
                              "times of the column are written like '2020-01-01': write this one as they are "
                              "(2020-02-01 day first, 2020-01-02 month first); a --time-format would apply to every "
                              "row)"))]),
    # regression: an epoch number was quarantined without saying that time_format %s reads it
    ("epoch_seconds", "1577923200,a,4\n1577923200000,b,5\n", {},
     [(3, "time_unparsable", ("time '1577923200' does not parse as ISO-8601 (Unix epoch seconds? declare its "
                             "time_format: --time-format %s)")),
      (4, "time_unparsable", ("time '1577923200000' does not parse as ISO-8601 (Unix epoch milliseconds? export "
                             "the times as ISO-8601, or as seconds with --time-format %s)"))]),
    # regression: Excel's day numbers (a date column left unformatted: 45292 is 2024-01-01) had no hint
    ("excel_serial", "45292,a,4\n45292.5,b,5\n", {},
     [(3, "time_unparsable", ("time '45292' does not parse as ISO-8601 (an Excel date serial number? format the "
                             "column as a date (yyyy-mm-dd) in Excel before saving the CSV)")),
      (4, "time_unparsable", ("time '45292.5' does not parse as ISO-8601 (an Excel date serial number? format the "
                             "column as a date (yyyy-mm-dd) in Excel before saving the CSV)"))]),
    # regression (new-user trial): Excel's long dates and RFC 2822 times were quarantined with no hint
    ("weekday_dates", ('"Monday, January 6, 2020",a,4\n"Monday, 6 January 2020",b,5\n'
     '"Mon, 06 Jan 2020 10:00:00 +0100",c,6\n'), {},
     [(3, "time_unparsable", ("time 'Monday, January 6, 2020' does not parse as ISO-8601 (a long date with its "
                             "weekday? declare its time_format: --time-format '%A, %B %d, %Y')")),
      (4, "time_unparsable", ("time 'Monday, 6 January 2020' does not parse as ISO-8601 (a long date with its "
                             "weekday? declare its time_format: --time-format '%A, %d %B %Y')")),
      (5, "time_unparsable", ("time 'Mon, 06 Jan 2020 10:00:00 +0100' does not parse as ISO-8601 (an RFC 2822 "
                             "time? declare its time_format: --time-format '%a, %d %b %Y %H:%M:%S %z')"))]),
    # regression (new-user trial): '2021/22' was told "a year and month? --time-format '%Y/%m'", which fails on it
    ("fiscal_years", "2021/22,a,4\n2019-20,b,5\nFY2023,c,6\n", {},
     [(3, "time_unparsable", ("time '2021/22' does not parse as ISO-8601 (a fiscal year? write the calendar year each "
                             "one starts in, '2021' for '2021/22', with --freq 1y)")),
      (4, "time_unparsable", ("time '2019-20' does not parse as ISO-8601 (a fiscal year? write the calendar year each "
                             "one starts in, '2021' for '2021/22', with --freq 1y)")),
      (5, "time_unparsable", ("time 'FY2023' does not parse as ISO-8601 (a fiscal year? write the calendar year it "
                             "starts in, e.g. '2022' for a FY2023 that starts in 2022, with --freq 1y)"))]),
    # regression (newuser17): a fiscal quarter was told only "does not parse as ISO-8601"
    ("fiscal_quarters", "FY2024Q1,a,4\nFY24 Q2,b,5\n", {},
     [(k, "time_unparsable", (f"time '{t}' does not parse as ISO-8601 (a fiscal quarter? write the first day of its "
                              "calendar month, e.g. '2023-07-01' for a FY2024Q1 that starts in July 2023, with --freq "
                              "1q; 3mo for quarters starting in other months)"))
      for k, t in ((3, "FY2024Q1"), (4, "FY24 Q2"))]),
    # polish30: a German quarter ('2017K1') or a French one ('2017T1') was told only "does not parse as ISO-8601"
    ("other_quarters", "2017K1,a,4\n2017-T4,b,5\n", {},
     [(k, "time_unparsable", (f"time '{t}' does not parse as ISO-8601 (a quarter? write it '{q}', which is read as "
                              "its quarter; no --time-format reads quarters)"))
      for k, t, q in ((3, "2017K1", "2017Q1"), (4, "2017-T4", "2017Q4"))]),
    # newuser48: week numbers were told only "does not parse as ISO-8601" (and, asked for --freq, that a
    # --time-format reads them, which none does)
    ("week_numbers", "1,a,4\n52,b,5\n", {},
     [(k, "time_unparsable", (f"time '{t}' does not parse as ISO-8601 (a week or period number without its year? no "
                              "--time-format reads one: write each as a date, the first day of its period (2024-01-01) "
                              "or an ISO week (2024-W01))"))
      for k, t in ((3, "1"), (4, "52"))]),
    ("format_mismatch", "04/01/2020,a,4\n", {"time_format": "%Y-%m-%d"},
     [(3, "time_unparsable", "time '04/01/2020' does not parse as %Y-%m-%d")]),
]


@pytest.mark.parametrize("body,kw,expected", [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES])
def test_row_level_failures_are_quarantined_with_reason(write_csv, body, kw, expected):
    r = run_validate(write_csv(HEADER + GOOD + body), **kw)
    assert quarantined(r) == expected
    rep = r.report
    assert rep.rows_in == rep.rows_valid + rep.rows_quarantined + rep.rows_duplicate == 3 + body.count("\n")
    assert sum(rep.checks.values()) == rep.rows_quarantined
    # original raw values are kept as text, under the raw column names
    assert {"source_row", "date", "id", "val", "check", "reason"} == set(r.quarantined.columns)


def test_the_unicode_minus_sign_is_read_as_a_minus(write_csv):
    """Regression: '\u22125' (U+2212, the minus sign of typeset tables and some locales' exports) was quarantined as
    "val '\u22125' is not a number", without a hint; it is nothing but a minus, in a target and a covariate."""
    r = run_validate(write_csv("date,id,val,promo\n2020-01-01,a,\u22125,\u22121\n2020-01-02,a,\u22121.5e\u22122,2\n"),
                     past_cols=["promo"])
    assert r.quarantined.height == 0
    assert r.valid.sort("ds")["y"].to_list() == [-5.0, -0.015]
    assert r.valid.sort("ds")["promo"].to_list() == [-1.0, 2.0]


def test_an_empty_id_column_is_named_beside_the_others(write_csv):
    """Regression: with several id columns, a row whose 'item' alone was empty said "id column(s) 'store',
    'item' empty" (every id column, whichever was empty), though its store is there: the reason names the
    empty ones and the values of the others."""
    r = run_validate(write_csv("date,store,item,val\n2020-01-01,s1,i1,1\n2020-01-01,s1,,2\n2020-01-01, ,i2,3\n"
                               "2020-01-01,,,4\n"), id_cols=["store", "item"])
    assert quarantined(r) == [(1, "id_missing", "id column 'item' empty (store 's1')"),
                              (2, "id_missing", "id column 'store' empty (item 'i2')"),
                              (3, "id_missing", "id columns 'store', 'item' empty")]


def test_quarantine_keeps_original_text(write_csv):
    r = run_validate(write_csv(HEADER + GOOD + "2020-01-04, a ,  12kg \n"))
    row = r.quarantined.row(0, named=True)
    assert row["val"] == "  12kg " and row["id"] == " a " and row["check"] == "y_not_number"


def test_empty_value_is_valid_null_not_quarantined(write_csv):
    r = run_validate(write_csv(HEADER + GOOD + "2020-01-04,a,\n"))
    assert r.report.rows_quarantined == 0 and r.report.rows_null_y == 1
    assert r.valid.filter(pl.col("y").is_null())["ds"].to_list() == [datetime(2020, 1, 4)]


def test_missing_value_markers_are_no_value_not_text(write_csv):
    """Regression: R's write.csv writes a missing number as NA (Excel #N/A, SQL exports NULL or \\N); every such
    row was quarantined as "val 'NA' is not a number" (a covariate's NA quarantined a row with a good target),
    and a few percent of them failed the run. They hold no value, as an empty field does; other text stays
    quarantined."""
    p = write_csv('"date","id","val","temp"\n"2020-01-01","a",1,NA\n"2020-01-02","a",NA,3\n"2020-01-03","a",#N/A,4\n'
                  '"2020-01-04","a",null,N/A\n"2020-01-05","a",\\N,NULL\n"2020-01-06","a",n/a,7\n')
    r = run_validate(p, past_cols=["temp"])
    assert quarantined(r) == [(5, "y_not_number", "val 'n/a' is not a number" + MISSING_HINT)]  # a typo? said
    assert r.report.rows_null_y == 4
    assert r.valid.sort("ds").select("y", "temp").rows() == [
        (1.0, None), (None, 3.0), (None, 4.0), (None, None), (None, None)]


def test_exog_text_is_quarantined(write_csv):
    p = write_csv("date,id,val,temp\n2020-01-01,a,1,20.5\n2020-01-02,a,2,warm\n")
    r = run_validate(p, future_cols=["temp"])
    reason = ("temp 'warm' is not a finite number (past and future covariates are numbers or true/false: encode a "
              "category as one 0/1 column per value)")
    assert quarantined(r) == [(1, "exog_invalid", reason)]


def test_true_false_covariates_are_flags_not_text(write_csv):
    """Regression: a promotion flag exported by Excel or R (TRUE/FALSE) or pandas (True/False) had every
    row quarantined as "promo 'TRUE' is not a finite number" (the whole source, when every row has one);
    it is 1/0, as a Boolean Parquet column is. Other words stay quarantined, with what to do instead."""
    p = write_csv("date,id,val,promo,hol\n2020-01-01,a,1,TRUE,0\n2020-01-02,a,2,False,\n2020-01-03,a,3, true ,1\n"
                  "2020-01-04,a,4,yes,0\n2020-01-05,a,5,0,easter\n")
    r = run_validate(p, future_cols=["promo"], past_cols=["hol"])
    assert r.valid.sort("ds")["promo"].to_list() == [1.0, 0.0, 1.0]
    assert [(row, check) for row, check, _ in quarantined(r)] == [(3, "exog_invalid"), (4, "exog_invalid")]
    assert "encode a category as one 0/1 column per value" in quarantined(r)[1][2]


YES_NO_HINT = (" (yes/no is read as 1/0 only in a column of yes/no and true/false alone, and this column holds other "
               "values: write the flag as 1/0 throughout)")


@pytest.mark.parametrize(("values", "expected"), [
    (["yes", "no", "yes", "no"], [1.0, 0.0, 1.0, 0.0]),
    (["Yes", "No", " YES ", "nO"], [1.0, 0.0, 1.0, 0.0]),
    (["Y", "N", "y", "n"], [1.0, 0.0, 1.0, 0.0]),
    (["yes", "", "NA", "no"], [1.0, None, None, 0.0]),  # no value is no value, in a yes/no column too
    (["Yes", "FALSE", "true", "N"], [1.0, 0.0, 1.0, 0.0]),  # flag words alike
])
def test_yes_no_covariates_are_flags(write_csv, values, expected):
    """Regression: a covariate written yes/no (Yes/No, Y/N) had every row quarantined as "promo 'yes' is not a
    finite number" (TRUE/FALSE were 1/0 already): in a column of flag words alone it is 1/0."""
    rows = "".join(f"2020-01-0{d},a,{d},{v}\n" for d, v in enumerate(values, start=1))
    r = run_validate(write_csv("date,id,val,promo\n" + rows), future_cols=["promo"])
    assert r.report.rows_quarantined == 0, quarantined(r)
    assert r.valid.sort("ds")["promo"].to_list() == expected


def test_yes_no_beside_numbers_is_quarantined_with_its_reason(write_csv):
    """A column mixing yes and 3 is not a flag: its yes/no rows are quarantined saying why (a stray 'yes' read
    as 1 among counts would be a guess), the numbers are read; the rows reconcile. Reading back only the bad rows
    (a subset of flag words) decides nothing anew: the decision is the column's, made once."""
    p = write_csv("date,id,val,promo\n2020-01-01,a,1,yes\n2020-01-02,a,2,3\n2020-01-03,a,3,No\n")
    r = run_validate(p, past_cols=["promo"])
    assert quarantined(r) == [(0, "exog_invalid", "promo 'yes' is not a finite number" + YES_NO_HINT),
                              (2, "exog_invalid", "promo 'No' is not a finite number" + YES_NO_HINT)]
    assert r.valid["promo"].to_list() == [3.0]
    assert r.report.reconciled


@pytest.mark.parametrize(("later", "cols"), [("3", "past_cols"), ("3", "future_cols"), ("maybe", "past_cols")])
def test_yes_no_is_decided_from_the_rows_observed_by_as_of(write_csv, later, cols):
    """Regression (a leak after as_of): whether a column is yes/no was decided from all its rows, so a '3' written
    after as_of quarantined the yes/no rows a backfill at that as_of had read as 1/0 (and a backtest cut there
    differed from the run it mirrors). Only the rows observed by as_of decide; without as_of, all rows do."""
    p = write_csv("date,id,val,promo\n2020-01-01,a,1,yes\n2020-01-02,a,2,no\n2020-01-03,a,3,Yes\n"
                  f"2020-01-04,a,4,{later}\n")
    r = run_validate(p, as_of=datetime(2020, 1, 3), **{cols: ["promo"]})
    assert r.report.rows_quarantined == 0, quarantined(r)
    assert r.valid.filter(pl.col("y").is_not_null()).sort("ds")["promo"].to_list() == [1.0, 0.0, 1.0]
    everything = run_validate(p, **{cols: ["promo"]})  # the later row is observed: the column is not yes/no
    assert [row for row, _, _ in quarantined(everything)] == [0, 1, 2, *([3] if later == "maybe" else [])]


@pytest.mark.parametrize(("text", "as_of", "by_as_of", "everything"), [
    # a ';' file of '1.234'-like numbers (1.234 or 1234?): a later '1.230' (ends in 0: '#.##0') makes them thousands
    ("date;id;val\n2020-01-01;a;1.234\n2020-01-02;a;2.345\n2020-01-03;a;3.456\n2020-01-04;a;1.230\n",
     datetime(2020, 1, 3), [1.234, 2.345, 3.456], [1234.0, 2345.0, 3456.0, 1230.0]),
    # a ',' file's "1,234" (1234 or 1.234?) is quarantined until a later '3.5' shows '.' as the decimal point
    ('date,id,val\n2020-01-01,a,"1,234"\n2020-01-02,a,"2,345"\n2020-01-03,a,"3,456"\n2020-01-04,a,3.5\n',
     datetime(2020, 1, 3), [], [1234.0, 2345.0, 3456.0, 3.5]),
    # ... with day/month dates (told after as_of whichever way they are read) and month-level ISO dates
    ('date,id,val\n01/13/2020,a,"1,234"\n01/14/2020,a,"2,345"\n01/15/2020,a,"3,456"\n01/16/2020,a,3.5\n',
     datetime(2020, 1, 15), [], [1234.0, 2345.0, 3456.0, 3.5]),
    ("date;id;val\n2020-01;a;1.234\n2020-02;a;2.345\n2020-03;a;1.230\n", datetime(2020, 2, 15),
     [1.234, 2.345], [1234.0, 2345.0, 1230.0]),
    # a declared time_format, read as the run reads it: with an offset, and Unix seconds
    (("date;id;val\n2020-01-01 00:00:00+0000;a;1.234\n2020-01-02 00:00:00+0000;a;2.345\n"
     "2020-01-03 00:00:00+0000;a;3.456\n2020-01-05 00:00:00+0000;a;1.230\n"), datetime(2020, 1, 3),
     [1.234, 2.345, 3.456], [1234.0, 2345.0, 3456.0, 1230.0]),
    ("date;id;val\n1577836800;a;1.234\n1577923200;a;2.345\n1578009600;a;3.456\n1578096000;a;1.230\n",
     datetime(2020, 1, 3), [1.234, 2.345, 3.456], [1234.0, 2345.0, 3456.0, 1230.0]),
])
def test_decimal_marks_and_thousands_are_decided_from_the_rows_by_as_of(tmp_path, text, as_of, by_as_of, everything):
    """Regression (a leak after as_of): which columns have decimal commas or thousands was decided from all rows
    of the file, so a number written after as_of changed how a backfill at that as_of read the numbers its run had
    read (1.234 became 1234; a quarantined '1,234' became 1234). The rows that may be dated by as_of decide; without
    as_of, all rows do, as before."""
    p = tmp_path / "src.csv"
    p.write_text(text)
    kw = {"freq": "1mo" if "2020-01;" in text else "1d"}
    if "+0000;" in text or "1577836800;" in text:
        kw["time_format"] = "%Y-%m-%d %H:%M:%S%z" if "+0000;" in text else "%s"
    r = run_validate(p, as_of=as_of, **kw)
    assert r.valid.sort("ds")["y"].to_list() == by_as_of
    assert r.report.rows_valid + r.report.rows_quarantined == len(text.splitlines()) - 2
    assert run_validate(p, **kw).valid.sort("ds")["y"].to_list() == everything


def test_yes_no_text_column_of_a_parquet_file(tmp_path):
    """A Parquet file's text column of yes/no reads as a CSV's does."""
    p = tmp_path / "src.parquet"
    pl.DataFrame({"date": ["2020-01-01", "2020-01-02"], "id": ["a", "a"], "val": [1.0, 2.0],
                  "promo": ["No", "Yes"]}).write_parquet(p)
    r = run_validate(p, future_cols=["promo"])
    assert r.valid.sort("ds")["promo"].to_list() == [0.0, 1.0]


@pytest.mark.parametrize(("time", "said"), [
    ("2020-01-01T00:30:16", (" (16 s after one of its points: times a few seconds off the grid, as a logger's clock "
                             "writes them, are not moved to the nearest point; round them to the grid before export, "
                             "e.g. with polars' .dt.round('30m'))")),
    ("2020-01-01T00:59:48.5", " (11.5 s before one of its points: times a few seconds off the grid"),
    ("2020-01-01T00:31:01", ""),  # 61 s off: farther than a clock's jitter
], ids=["after", "before", "farther"])
def test_a_subdaily_time_seconds_off_its_grid_is_said_to_be_rounded(write_csv, time, said):
    """newuser47: half-hourly readings stamped a few seconds either side of the half hour (a logger's clock) were
    quarantined as 'not on the 30m grid', every one of them, with no word on why: the reason says how far the time
    is from its nearest grid point and to round the times to the grid."""
    p = write_csv(f"date,id,val\n2020-01-01T00:00,a,1\n{time},a,2\n2020-01-01T01:30,a,3\n")
    [(row, check, reason)] = quarantined(run_validate(p, freq="30m"))
    assert (row, check) == (1, "off_grid")
    assert reason.startswith(f"time '{time}' is not on the 30m grid{said}"), reason
    if not said:
        assert reason == f"time '{time}' is not on the 30m grid", reason


def test_off_grid_subdaily_is_quarantined_but_month_end_dates_align(write_csv):
    p = write_csv("date,id,val\n2020-01-01T00:00,a,1\n2020-01-01T00:15,a,2\n2020-01-01T00:30,a,3\n")
    r = run_validate(p, freq="30m")
    assert quarantined(r) == [(1, "off_grid", "time '2020-01-01T00:15' is not on the 30m grid")]  # as written
    p = write_csv("date,id,val\n2020-01-31,a,1\n2020-02-29,a,2\n", name="m.csv")
    r = run_validate(p, freq="1mo")
    assert r.report.rows_quarantined == 0
    assert r.valid["ds"].to_list() == [datetime(2020, 1, 1), datetime(2020, 2, 1)]


def test_weekly_series_keep_their_own_weekday(write_csv):
    """Regression: one store's weeks labelled on Sundays and another's on Mondays in one file: every row of the
    Monday series was quarantined (off_grid: 'not a Sunday, the weekday most of this source's weeks fall on'), so
    the run failed or that series was never forecast. Each series keeps its own weekday; a row on another weekday
    than the rest of its series is quarantined naming that series' weekday."""
    sundays = "".join(f"2024-01-{d:02d},a,{d}\n" for d in (7, 14, 21))
    p = write_csv("date,id,val\n" + sundays + "2024-01-08,b,1\n2024-01-15,b,2\n2024-01-22,b,3\n2024-01-23,b,4\n")
    r = run_validate(p, freq="1w")
    said = "time '2024-01-23' is a Tuesday, not a Monday, the weekday that most of this series' weeks fall on"
    assert quarantined(r) == [(6, "off_grid", said + " (its grid is W-MON)")]
    weekdays = r.valid.group_by("unique_id").agg(pl.col("ds").dt.weekday().unique()).sort("unique_id")
    assert weekdays.rows() == [("a", [7]), ("b", [1])]


def test_a_series_whose_latest_weeks_moved_to_another_weekday_is_told_so(write_csv):
    """Regression (new-user trial): a series labelled by Sundays, then by Mondays from 26 February (the export changed
    its convention): its latest 20 weeks were quarantined row by row as 'a Monday, not a Sunday', and the error's
    advice, to raise the threshold, forecast it from February. The reason says the series moved from that date on and
    what leaving them out costs; a series with one stray latest date is told as before (above)."""
    from datetime import date, timedelta

    weeks = [date(2023, 1, 1) + timedelta(weeks=i) for i in range(8)] + [
        date(2023, 2, 27) + timedelta(weeks=i) for i in range(3)]
    p = write_csv("date,id,val\n" + "".join(f"{d},a,{i}\n" for i, d in enumerate(weeks)))
    r = run_validate(p, freq="1w")
    got = quarantined(r)
    assert [(row, check) for row, check, _ in got] == [(8, "off_grid"), (9, "off_grid"), (10, "off_grid")]
    assert got[0][2] == (
        "time '2023-02-27' is a Monday, not a Sunday, the weekday that most of this series' weeks fall on (its grid is "
        "W-SUN); every row of this series from 2023-02-27 on is off that weekday: did the export change the weekday "
        "its weeks are labelled by? Left out, its latest weeks are lost (it is forecast from its last week before "
        "2023-02-27): re-export them on one weekday")
    assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined == 11


def test_a_series_whose_earliest_weeks_were_on_another_weekday_is_told_so(write_csv):
    """Regression (newuser53): an old export labelled by Sundays joined to a newer one labelled by Mondays, the
    Mondays most of the series' weeks (or as many): its older Sunday weeks were quarantined row by row as 'a Sunday,
    not a Monday', with no word of the switch, and the threshold's advice, to run without them, lost its history
    before the switch. The reason says every row before the first Monday is off and what leaving them out costs."""
    from datetime import date, timedelta

    weeks = [date(2023, 1, 1) + timedelta(weeks=i) for i in range(3)] + [
        date(2023, 1, 23) + timedelta(weeks=i) for i in range(8)]
    p = write_csv("date,id,val\n" + "".join(f"{d},a,{i}\n" for i, d in enumerate(weeks)))
    r = run_validate(p, freq="1w")
    got = quarantined(r)
    assert [(row, check) for row, check, _ in got] == [(0, "off_grid"), (1, "off_grid"), (2, "off_grid")]
    assert got[0][2] == (
        "time '2023-01-01' is a Sunday, not a Monday, the weekday that most of this series' weeks fall on (its grid is "
        "W-MON); every row of this series before 2023-01-23 is off that weekday: did the export change the weekday "
        "its weeks are labelled by? Left out, its earliest weeks are lost (its history starts at 2023-01-23): "
        "re-export them on one weekday")
    assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined == 11
    # as many weeks on each weekday: the grid is the newer one's, the older weeks told as above (Monday, the lower
    # weekday number, was the grid, the latest Sunday weeks left out)
    even = write_csv("date,id,val\n" + "".join(
        f"{d},a,{i}\n" for i, d in enumerate([date(2023, 1, 2) + timedelta(weeks=i) for i in range(3)]
                                              + [date(2023, 1, 29) + timedelta(weeks=i) for i in range(3)])))
    got = quarantined(run_validate(even, freq="1w"))
    assert [row for row, _, _ in got] == [0, 1, 2], got
    assert "is a Monday, not a Sunday" in got[0][2] and "every row of this series before 2023-01-29" in got[0][2], got
    # one stray early date is no switch: told as a stray row
    stray = write_csv("date,id,val\n2023-01-01,a,0\n" + "".join(f"{d},a,{i}\n" for i, d in enumerate(weeks[3:])))
    assert quarantined(run_validate(stray, freq="1w")) == [
        (0, "off_grid", ("time '2023-01-01' is a Sunday, not a Monday, the weekday that most of this series' weeks "
                         "fall on (its grid is W-MON)"))]


def test_weekend_dates_of_a_business_day_source_are_quarantined(write_csv):
    """freq '1b': Monday to Friday. A Saturday or Sunday is off the grid and named with its weekday; a
    weekday row with a time of day is that date (as at '1d'), aggregated or not."""
    p = write_csv("date,id,val\n2024-01-05,a,1\n2024-01-06,a,2\n2024-01-07T10:00,a,3\n2024-01-08T09:30,a,4\n")
    r = run_validate(p, freq="1b")
    assert quarantined(r) == [
        (1, "off_grid", "time '2024-01-06' is a Saturday, not a business day (freq 1b has the dates Monday to Friday)"),
        (2, "off_grid", "time '2024-01-07' is a Sunday, not a business day (freq 1b has the dates Monday to Friday)"),
    ]
    assert r.valid["ds"].to_list() == [datetime(2024, 1, 5), datetime(2024, 1, 8)]
    assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined == 4
    summed = run_validate(p, freq="1b", aggregate="sum")
    assert [c for _, c, _ in quarantined(summed)] == ["off_grid", "off_grid"]
    assert summed.valid["y"].to_list() == [1.0, 4.0]
    assert run_validate(p, freq="1d").report.rows_quarantined == 0  # every day is a period of '1d'


# --------------------------------------------------------------------- time zones
def test_mixed_offsets_convert_to_declared_tz(write_csv):
    p = write_csv("date,id,val\n2020-01-01T00:00+10:00,a,1\n2019-12-31T14:30Z,a,2\n2020-01-01T02:00,a,3\n")
    r = run_validate(p, freq="30m", tz="Australia/Melbourne")
    # sub-daily ds are instants in UTC: +10:00 and Z are converted, naive values are local wall time
    # in Melbourne (summer time, +11:00 on 1 January) converted too
    assert r.report.rows_quarantined == 0
    assert r.valid["ds"].to_list() == [datetime(2019, 12, 31, 14, 0), datetime(2019, 12, 31, 14, 30),
                                       datetime(2019, 12, 31, 15, 0)]


def test_mixed_naive_and_aware_without_tz_quarantines_the_naive_rows(write_csv):
    p = write_csv("date,id,val\n2020-01-01T00:00+10:00,a,1\n2020-01-01T00:30Z,a,2\n2020-01-01T01:00,a,3\n")
    r = run_validate(p, freq="30m")
    assert quarantined(r) == [
        (2, "time_zone_ambiguous", ("time '2020-01-01T01:00' has no UTC offset while other rows do, such as "
                                   "'2020-01-01T00:00+10:00'; declare the time zone of the times written without one "
                                   "(--tz UTC, --tz Europe/Berlin: the source's tz)"))
    ]
    # what the hint says works: with the zone, every row is read (the naive one as UTC)
    assert run_validate(p, freq="30m", tz="UTC").report.rows_quarantined == 0
    assert r.valid["ds"].to_list() == [datetime(2019, 12, 31, 14, 0), datetime(2020, 1, 1, 0, 30)]


def test_an_unreadable_time_and_a_time_without_an_offset_name_their_examples_from_one_pass(write_csv):
    """An unreadable day/month time names a time that read; a time without an offset beside times with one names one
    of those: both examples are read in one pass over the rows (`_time_peers`; two passes, one each, before), only
    where a row failed that check."""
    from flowcast.data.sources import ingest
    from flowcast.data.validate import _time_peers

    p = write_csv("date,id,val\n2020-01-01T01:00,a,1\n2020-01-01T00:00+10:00,a,2\n05/01/2020 01:30,a,3\n")
    r = run_validate(p, freq="30m")
    assert quarantined(r) == [
        (0, "time_zone_ambiguous", ("time '2020-01-01T01:00' has no UTC offset while other rows do, such as "
                                   "'2020-01-01T00:00+10:00'; declare the time zone of the times written without one "
                                   "(--tz UTC, --tz Europe/Berlin: the source's tz)")),
        (2, "time_unparsable", ("time '05/01/2020 01:30' does not parse as ISO-8601 (day/month order is ambiguous, and "
                                "other times of the column are written like '2020-01-01T01:00': write this one as "
                                "they are; a --time-format would apply to every row)")),
    ]
    ingested = ingest(make_source(p, freq="30m"), None)
    assert _time_peers(ingested, True, True) == ("2020-01-01T01:00", "2020-01-01T00:00+10:00")
    assert _time_peers(ingested, False, True) == (None, "2020-01-01T00:00+10:00")
    assert _time_peers(ingested, True, False) == ("2020-01-01T01:00", None)
    assert _time_peers(ingested, False, False) == (None, None)


# --------------------------------------------------------------------- as_of
def test_rows_after_as_of_are_counted_not_quarantined(write_csv):
    r = run_validate(write_csv(HEADER + GOOD + "2020-01-04,a,abc\n"), as_of=datetime(2020, 1, 2))
    rep = r.report
    assert (rep.rows_read, rep.rows_after_as_of, rep.rows_in, rep.rows_valid, rep.rows_quarantined) == (4, 2, 2, 2, 0)
    assert rep.ds_max == "2020-01-02 00:00:00"


def test_unparsable_time_stays_in_view_of_as_of(write_csv):
    r = run_validate(write_csv(HEADER + GOOD + "yesterday,a,4\n"), as_of=datetime(2020, 1, 1))
    assert (r.report.rows_in, r.report.rows_valid, r.report.rows_quarantined) == (2, 1, 1)


def test_all_rows_after_as_of_is_a_dataset_error(write_csv):
    with pytest.raises(DataValidationError, match=r"all 3 rows are after as_of=2019-01-01"):
        run_validate(write_csv(HEADER + GOOD), as_of=datetime(2019, 1, 1))


# --------------------------------------------------------------------- dataset-level failures
def test_empty_file(write_csv):
    p = write_csv("")
    with pytest.raises(DataValidationError, match=rf"{p} is empty"):
        run_validate(p)


def test_header_only_file(write_csv):
    with pytest.raises(DataValidationError, match=r"src.csv: no rows \(the file has a header but no data\)"):
        run_validate(write_csv(HEADER))


def test_binary_file(write_csv):
    p = write_csv(bytes(range(256)) * 8, name="blob.csv")
    with pytest.raises(DataValidationError, match=r"blob.csv is not a text CSV file \(binary content"):
        run_validate(p)


def test_non_utf8_bytes(write_csv):
    """Regression (new-user trial, a German Excel export): the error named the byte alone ('byte 0xfc on line 2'):
    it shows the field as Windows-1252 reads it and the command that converts the file."""
    p = write_csv(HEADER.encode() + "2020-01-01,caf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataValidationError) as err:
        run_validate(p)
    assert str(err.value) == (
        f"{p} is not valid UTF-8: byte 0xe9 on line 2 (offset 26: 'caf\xe9' if it is Windows-1252); re-export the "
        "file as UTF-8 (Excel: 'CSV UTF-8'; its plain 'CSV' is Windows-1252 on Windows), or convert it: "
        f"iconv '{p}' -f WINDOWS-1252 -t UTF-8 > '{str(p).removesuffix('.csv')}.utf8.csv'"
    )


def test_non_utf8_header_and_gzipped_file_name_the_encoding(write_csv):
    """Regression: a header that is not UTF-8 (Excel's plain 'CSV' on Windows: 'Qté' in Windows-1252) failed
    with "declared column(s) 'val' (renamed to 'Qt\ufffd'?) missing"; and in a gzipped file the bad byte was
    looked for in the compressed bytes ('byte 0x8b on line 1', the gzip magic)."""
    p = write_csv("date,id,Qt\xe9\n2020-01-01,a,1\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"src.csv is not valid UTF-8: byte 0xe9 on line 1 \(offset 10: 'Qt\xe9' if it is Windows-1252\); "
                       r"re-export the file as UTF-8 \(Excel: 'CSV UTF-8'"):
        run_validate(p, target_col="Qt\xe9")
    p = write_csv(gzip.compress(HEADER.encode() + "2020-01-01,caf\xe9,1\n".encode("latin-1")), name="src.csv.gz")
    with pytest.raises(DataValidationError, match=r"src.csv.gz is not valid UTF-8: byte 0xe9 on line 2 \(offset 26: "
                       r"'caf\xe9' if it is Windows-1252\).*convert it: zcat '.*src.csv.gz' \| iconv -f WINDOWS-1252 "
                       r"-t UTF-8 > '.*src.utf8.csv'"):
        run_validate(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        run_validate(tmp_path / "nope.csv")


def test_removed_column(write_csv):
    with pytest.raises(DataValidationError, match=r"declared column 'val' missing; the file has columns \['date', 'id'\]"):
        run_validate(write_csv("date,id\n2020-01-01,a\n"))


def test_renamed_column(write_csv):
    with pytest.raises(DataValidationError, match=r"'val' \(renamed to 'value'\?\) missing"):
        run_validate(write_csv("date,id,value\n2020-01-01,a,1\n"))


def test_added_column_is_reported_or_fails_a_strict_source(write_csv):
    p = write_csv("date,id,val,extra\n2020-01-01,a,1,x\n")
    r = run_validate(p)
    assert r.report.undeclared_columns == ["extra"] and r.report.rows_valid == 1
    with pytest.raises(DataValidationError, match=r"undeclared column \['extra'\] in strict source 't'"):
        run_validate(p, strict=True)


def test_int_to_string_drift_between_parquet_files(tmp_path):
    pl.DataFrame({"date": [datetime(2020, 1, 1)], "id": ["a"], "val": [1]}).write_parquet(tmp_path / "p1.parquet")
    pl.DataFrame({"date": [datetime(2020, 1, 2)], "id": ["a"], "val": ["2"]}).write_parquet(tmp_path / "p2.parquet")
    r = run_validate(tmp_path / "*.parquet")
    assert r.report.rows_valid == 2 and r.valid["y"].to_list() == [1.0, 2.0]


def test_column_that_cannot_be_cast(tmp_path):
    p = tmp_path / "nested.parquet"
    pl.DataFrame({"date": [datetime(2020, 1, 1)], "id": ["a"], "val": [[1, 2]]}).write_parquet(p)
    with pytest.raises(DataValidationError, match=r"column 'val' has type List\(Int64\), which cannot be cast to a number"):
        run_validate(p)


def test_one_row_series_is_valid_here(write_csv):
    r = run_validate(write_csv(HEADER + GOOD + "2020-01-01,b,7\n"))
    assert r.report.rows_quarantined == 0 and r.report.n_series == 2


# --------------------------------------------------------------------- files as people export them
def test_bom_crlf_quotes_unsorted(write_csv):
    text = '\ufeffdate,id,val,label\r\n2020-01-02,a,2,"x, y"\r\n2020-01-01,a,1,"z"\r\n2020-01-01,b,5,"q"\r\n'
    r = run_validate(write_csv(text))
    assert r.report.rows_quarantined == 0 and r.report.undeclared_columns == ["label"]
    assert r.valid.select("unique_id", "y").rows() == [("a", 1.0), ("a", 2.0), ("b", 5.0)]  # sorted


def test_several_id_columns_and_no_id_column(write_csv):
    p = write_csv("date,store,item,val\n2020-01-01,s1,i1,1\n2020-01-01,s1,i2,2\n")
    r = run_validate(p, id_cols=["store", "item"])
    assert r.valid["unique_id"].to_list() == ["s1|i1", "s1|i2"]
    p = write_csv("date,val\n2020-01-01,1\n2020-01-02,2\n", name="one.csv")
    r = run_validate(p, id_cols=[], name="demand")
    assert r.valid["unique_id"].unique().to_list() == ["demand"]


# --------------------------------------------------------------------- thresholds and the quarantine file
def test_threshold_and_quarantine_file(write_csv, tmp_path):
    r = run_validate(write_csv(HEADER + GOOD + "2020-01-04,a,abc\n"))
    path = write_quarantine(r, tmp_path / "q" / "run1")
    assert path == tmp_path / "q" / "run1" / "quarantine.parquet" and r.report.quarantine_path == str(path)
    back = pl.read_parquet(path)
    assert back.select("source_row", "val", "check").rows() == [(3, "abc", "y_not_number")]
    assert [p.name for p in path.parent.iterdir()] == ["quarantine.parquet"]  # no temp file left
    enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.25), artifact=None)  # 1/4 = 25%: allowed
    with pytest.raises(DataValidationError, match=r"1 of 4 rows quarantined \(25.0% > threshold 20.0%\): y_not_number=1"):
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.2), artifact=None)
    # regression: the error named no setting; it says which one lets the run go on, with a value that does
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact=None)
    assert str(err.value).endswith("; to run with these rows left out, raise [validation] quarantine_threshold "
                                   "(FLOWCAST_VALIDATION__QUARANTINE_THRESHOLD=0.25)")
    enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.25), artifact=None)  # the value it names is enough


@pytest.mark.parametrize(("extra", "counted"), [
    ("", "time_missing=3 (a note line? a totals row?), y_not_number=1 (a currency or percent sign?)"),
    # a check whose reasons ask nothing is counted alone, after those that ask (the most rows first)
    (",a,5\n", "time_missing=4 (a note line? a totals row?), y_not_number=1 (a currency or percent sign?)"),
    ("2024-01-04,a,x\n2024-01-05,a,y\n2024-01-06,a,z\n2024-01-07,a,w\n",
     "y_not_number=5 (a currency or percent sign?), time_missing=3 (a note line? a totals row?)"),
], ids=["hints", "more-rows", "y-first"])
def test_the_threshold_refusal_asks_each_checks_question_and_says_what_to_do(write_csv, tmp_path, extra, counted):
    """msg42: the refusal listed 'time_missing=3, y_not_number=1' bare, where the run's summary and log ask what the
    rows look like ('a totals row?', `checks_counted`); it asks it too, and names the data-quality report that holds
    each check's rows and reasons before the setting that lets the run go on."""
    rows = ("date,id,val\n2024-01-01,a,1\n2024-01-02,a,12%\n,Total,9\n,Source: BLS,\n,Note: preliminary,\n"
            "2024-01-03,a,3\n" + extra)
    r = run_validate(write_csv(rows, name="shops.csv"), name="shops")
    path = write_quarantine(r, tmp_path / "q")
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact="data-quality-shops")
    said = str(err.value)
    assert f"rows quarantined ({r.report.quarantine_rate:.1%} > threshold 5.0%): {counted}; e.g. source_row" in said, said
    needed = math.ceil(r.report.quarantine_rate * 100) / 100
    assert said.endswith(f"; see {path}; to mend them, read each check's rows and reasons in the data-quality report "
                         "(the run's data-quality-shops artifact, or `flowcast validate` with the run's options); to "
                         "run with these rows left out, raise [validation] quarantine_threshold "
                         f"(FLOWCAST_VALIDATION__QUARANTINE_THRESHOLD={needed:g})"), said


@pytest.mark.parametrize("good", [GOOD, ""], ids=["threshold", "no-valid-rows"])
@pytest.mark.parametrize(("artifact", "report"), [
    ("backfill-data-quality-t", ("(the run's backfill-data-quality-t artifact, or `flowcast validate` with the run's "
                                 "options)")),
    ("data-quality-t", "(the run's data-quality-t artifact, or `flowcast validate` with the run's options)"),
    (None, "(`flowcast validate` with the run's options)"),  # a command, no run: no artifact to read
], ids=["backfill", "run", "command"])
def test_a_refusal_names_the_data_quality_artifact_its_caller_writes(write_csv, good, artifact, report):
    """rows42: the refusals named `data-quality-<source>` whoever made them, where a backfill's run writes
    `backfill-data-quality-<source>` and a command before Prefect (or `flowcast validate`) writes none: the caller
    names the artifact it writes, or None."""
    r = run_validate(write_csv(HEADER + good + "2020-01-04,a,abc\n"))
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact=artifact)
    said = str(err.value)
    assert f"; to mend them, read each check's rows and reasons in the data-quality report {report}" in said, said
    assert said.count("artifact") == (artifact is not None), said


@pytest.mark.parametrize(("good", "after"), [(GOOD, ";"), ("", ");")], ids=["threshold", "no-valid-rows"])
def test_the_threshold_refusal_says_how_many_checks_it_leaves_out(write_csv, good, after):
    """The refusal counts the 5 checks of the most rows; the others were left out unsaid (msg42). So does 'no valid
    rows left' (rows42: it printed every check, a dict)."""
    r = run_validate(write_csv(HEADER + good + "2020-01-04,a,abc\n"))
    r.report.checks = {f"check_{i}": 10 - i for i in range(7)}  # counts as 7 checks of a larger file would
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact=None)
    assert f"check_0=10, check_1=9, check_2=8, check_3=7, check_4=6, +2 more checks{after}" in str(err.value), str(
        err.value)


@pytest.mark.parametrize(("body", "counted"), [
    ("2024-01-01,a,12%\n2024-01-02,a,$5\n", "all 2 rows quarantined (y_not_number=2 (a currency or percent sign?))"),
    (",Total,9\n2024-01-01,a,5%\n",
     "all 2 rows quarantined (time_missing=1 (a totals row?), y_not_number=1 (a currency or percent sign?))"),
    ("2024-01-01,a,abc\n", "all 1 row quarantined (y_not_number=1)"),  # a check whose reasons ask nothing: alone
], ids=["hint", "two-checks", "no-hint"])
def test_no_valid_rows_left_asks_each_checks_question_as_the_threshold_refusal_does(write_csv, tmp_path, body,
                                                                                   counted):
    """rows42: 'no valid rows left (all 2 quarantined: {'y_not_number': 2})' printed the checks as a Python dict and
    asked nothing; it counts them as the threshold refusal does (`checks_counted`, the questions their rows' reasons
    ask) and says where to read each check's rows and reasons."""
    r = run_validate(write_csv(HEADER + body))
    path = write_quarantine(r, tmp_path / "q")
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(), artifact="data-quality-t")
    said = str(err.value)
    assert said.startswith(f"source 't': no valid rows left: {counted}; e.g. source_row 0 (line 2 of "), said
    assert said.endswith(f"; see {path}; to mend them, read each check's rows and reasons in the data-quality report "
                         "(the run's data-quality-t artifact, or `flowcast validate` with the run's options)"), said


@pytest.mark.parametrize(("extra", "said"), [
    ("", ("; raising [validation] quarantine_threshold (to 0.8) is no fix here: the run would forecast from the 1 of 5 "
         "rows left")),
    # the same duplicates among more valid rows than quarantined: leaving them out is an option the error names
    ("2020-01-02,A,9\n2020-01-03,A,9\n2020-01-04,A,9\n2020-01-05,A,9\n2020-01-06,A,9\n",
     ("; to run with these rows left out, raise [validation] quarantine_threshold "
     "(FLOWCAST_VALIDATION__QUARANTINE_THRESHOLD=0.4)")),
], ids=["most-rows", "fewer-than-half"])
def test_the_threshold_is_not_offered_for_most_rows_quarantined_by_a_named_cause(write_csv, extra, said):
    """Regression (newuser29): `--id-col item` of a file keyed by store and item quarantined 95.7% of its rows as
    duplicates, and the error, after naming the missing id column, advised raising quarantine_threshold to 0.96:
    a run on the 4% of rows left. Where the duplicate hint names the cause and most rows are quarantined, the
    error says what raising it would leave."""
    text = ("date,item,store,val\n2020-01-01,A,north,1\n2020-01-01,A,south,5\n2020-01-02,B,north,2\n"
            "2020-01-02,B,south,6\n2020-01-03,B,north,3\n" + extra)
    r = run_validate(write_csv(text), id_cols=["item"])
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact=None)
    assert "name each with --id-col (the source's id_cols), e.g. 'store'" in str(err.value)
    assert str(err.value).endswith(said), str(err.value)


def test_no_quarantine_file_when_clean(write_csv, tmp_path):
    r = run_validate(write_csv(HEADER + GOOD))
    assert write_quarantine(r, tmp_path / "q") is None and r.report.quarantine_path is None


def test_clean_rerun_removes_the_stale_quarantine_file(write_csv, tmp_path):
    """Regression: after fixing the file, a clean re-run of the same run key left the old
    quarantine.parquet in place, describing rows that no longer exist."""
    p = write_csv(HEADER + GOOD + "2020-01-04,a,abc\n")
    assert write_quarantine(run_validate(p), tmp_path / "q" / "all").exists()
    p.write_text(HEADER + GOOD)
    r = run_validate(p)
    assert write_quarantine(r, tmp_path / "q" / "all") is None and r.report.quarantine_path is None
    assert list((tmp_path / "q" / "all").iterdir()) == []


@pytest.mark.parametrize(("rerun", "left"), [("", []), ("2020-01-05,a,xyz\n", ["quarantine.parquet"])])
def test_a_rerun_removes_the_temp_file_of_a_quarantine_writer_killed_mid_write(write_csv, tmp_path, rerun, left):
    """A run killed while it wrote its quarantine file leaves `.quarantine.parquet.<x>.tmp` (written, not renamed); the
    re-run of the key removes it whether it quarantines rows or none: a clean re-run (the source mended) left it in the
    folder until gc removed the folder (faults44)."""
    p = write_csv(HEADER + GOOD + "2020-01-04,a,abc\n")
    folder = tmp_path / "q" / "2020-01-04T00-00-00"
    whole = write_quarantine(run_validate(p), folder).read_bytes()
    (folder / ".quarantine.parquet.ab12cd34.tmp").write_bytes(whole[: len(whole) // 2])  # the dead writer's, unlocked
    p.write_text(HEADER + GOOD + rerun)
    write_quarantine(run_validate(p), folder)
    assert sorted(f.name for f in folder.iterdir()) == left


def test_all_rows_quarantined_fails(write_csv):
    r = run_validate(write_csv(HEADER + "2020-01-01,a,x\n"))
    with pytest.raises(DataValidationError, match=r"no valid rows left: all 1 row quarantined \(y_not_number=1\)"):
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=1.0), artifact=None)


def test_duplicates_without_an_id_column_say_to_declare_it(write_csv):
    # regression: a unique_id,ds,y file run without --id-col failed with "no valid rows left ... 2 rows
    # for (t, 2020-01-01) with different y values", not saying that no series key was declared
    r = run_validate(write_csv("date,store,val\n2020-01-01,a,1\n2020-01-01,b,2\n"), id_cols=[])
    with pytest.raises(DataValidationError, match=r"with different y values \(1.0 / 2.0\) \(no id column is declared, so every row "
                       r"belongs to one series named 't': name the column that tells the "
                       r"series apart \(or the columns that do together\) with --id-col or the source's id_cols, "
                       r"e.g. store\)"):
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.5), artifact=None)


@pytest.mark.parametrize(("folder", "glob", "suffix"), [
    ("", "*.csv", ".csv"), ("", "", ".csv"),  # a glob, or the folder itself
    # regression (polish19): Path.stem named x.csv.gz's series 'x.csv' (the dataset name drops '.csv.gz'), and a
    # quote in the path broke the command (the glob was a '...' literal inside a "..." shell word)
    ("", "", ".csv.gz"), ("it's \"q\" $HOME", "*.csv.gz", ".csv.gz"), ("it's", "", ".CSV"),
])
def test_one_file_per_series_without_an_id_column_is_told_how_to_name_them(tmp_path, folder, glob, suffix):
    """Regression (newuser17): a folder of one file per series (a.csv, b.csv: date,val, the id in the file name)
    failed with every row a duplicate_conflict and 'name the series' id column(s) with --id-col', which the files
    do not have; the hint says that each file is one series only by its name, and the shell command that writes
    that name as a column (without its format and compression suffixes, as the dataset name), which reads the files
    back as two series. The command is run as a shell reads it (shlex), in the folder of the data."""
    import gzip
    import shlex
    import subprocess
    import sys

    data = tmp_path / folder if folder else tmp_path
    data.mkdir(exist_ok=True)
    for sid, v in (("a", 1), ("b.2", 2)):
        text = f"date,val\n2020-01-01,{v}\n2020-01-02,{v}\n".encode()
        (data / f"{sid}{suffix}").write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    r = run_validate(str(data / glob), id_cols=[])
    with pytest.raises(DataValidationError) as exc:
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.5), artifact=None)
    said = str(exc.value)
    assert "(no id column is declared, so every row of its 2 files belongs to one series named 't': if each file " \
           "is one series, named by its file name, write that name as an id column: python -c " in said
    assert ("; else name the column that tells the series apart (or the columns that do together) with --id-col or "
            "the source's id_cols); to mend them") in said, said  # it said 'id column(s)' of a count unknown
    command = said.split("write that name as an id column: ")[1].split(" and run all.csv with --id-col unique_id")[0]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"] and len(argv) == 3, argv
    subprocess.run([sys.executable, "-c", argv[2]], cwd=tmp_path, check=True)
    r = run_validate(tmp_path / "all.csv", id_cols=["unique_id"])
    assert r.report.rows_quarantined == 0 and sorted(r.valid["unique_id"].unique()) == ["a", "b.2"]


def test_duplicates_from_data_finer_than_freq_suggest_aggregate(write_csv):
    r = run_validate(write_csv(HEADER + "2020-01-01T01:00,a,1\n2020-01-01T02:00,a,2\n2020-01-02,a,3\n"))
    with pytest.raises(DataValidationError, match=r"2 of 3 rows quarantined .*with different y values \(1.0 / 2.0\) \(several rows "
                       r"per series and period: .*if the times are finer than freq '1d', combine them with --aggregate sum, "
                       r"mean or last \(the source's aggregate\)"):
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.5), artifact=None)


def test_daily_duplicates_of_end_of_day_stamps_written_two_ways_say_so(write_csv):
    """newuser49: days stamped by their end, mostly 23:59:59 and now and then at the next midnight, had the two rows of
    a day quarantined 'with different y values' and nothing more; a pair of other times of day is told nothing of it."""
    hint = ("(end-of-day stamps written two ways? '2020-01-02 23:59:59' is read as its own day and '2020-01-02 "
            "00:00:00' as the day it starts: where a midnight ends the day before, pass --time-label end, which reads "
            "a midnight as the day before it and a time inside a day (23:59:59) as that day)")
    r = run_validate(write_csv(HEADER + "2020-01-01 23:59:59,a,1\n2020-01-02 00:00:00,a,2\n"
                               "2020-01-02 23:59:59,a,3\n2020-01-03 23:59:59,a,4\n"))
    assert [(row, check) for row, check, _ in quarantined(r)] == [(1, "duplicate_conflict"), (2, "duplicate_conflict")]
    assert all(reason.endswith(hint) for _, _, reason in quarantined(r)), quarantined(r)
    r = run_validate(write_csv(HEADER + "2020-01-02 00:00:00,a,2\n2020-01-02 12:00:00,a,3\n"))
    assert quarantined(r) and not any("end-of-day" in reason for _, _, reason in quarantined(r))


def test_duplicates_of_series_keyed_by_more_columns_name_the_id_columns_first(write_csv):
    """Regression: '--id-col region' where the series are keyed by region and store (two stores a region, daily
    rows) quarantined every row as a duplicate, and the hint said only 'if the times are finer than freq '1d',
    combine them with --aggregate sum, mean or last': aggregating would have summed two stores into one series. The
    hint names the id columns first, with the file's other columns."""
    r = run_validate(write_csv("date,region,store,val\n2020-01-01,n,a,1\n2020-01-01,n,b,5\n2020-01-02,n,a,2\n"
                               "2020-01-02,n,b,6\n"), id_cols=["region"])
    assert r.report.rows_quarantined == 4
    assert r.hint == (" (several rows per series and period: if they are rows of different series, the series' id is in "
                      "more columns than 'region': name each with --id-col (the source's id_cols), e.g. 'store'; if the "
                      "times are finer than freq '1d', combine them with --aggregate sum, mean or last (the source's "
                      "aggregate); else check freq)")


@pytest.mark.parametrize(("text", "e_g"), [
    # a 0/1 holiday flag and a price equal on both rows of a key came first: the columns that differ are named
    (("date,item,holiday,price,store,region,val\n2020-01-01,A,1,2.5,north,EU,1\n2020-01-01,A,1,2.5,south,US,5\n"
      "2020-01-02,A,0,,north,EU,2\n2020-01-02,A,0,2.5,south,US,6\n"), ", e.g. 'store', 'region'"),
    # a store number is an id too; text columns come first
    ("date,item,holiday,store_no,region,val\n2020-01-01,A,1,101,EU,1\n2020-01-01,A,1,202,US,5\n",
     ", e.g. 'region', 'store_no'"),
    # no column tells them apart: none is offered
    ("date,item,holiday,val\n2020-01-01,A,1,1\n2020-01-01,A,1,5\n", ""),
], ids=["flag-and-price-first", "number-id", "none-differs"])
def test_duplicates_name_the_columns_that_tell_the_rows_apart(write_csv, text, e_g):
    """Regression (newuser29): `--id-col item` of a daily retail file keyed by store and item was told 'e.g. 'store',
    'holiday', 'region'': the file's first three other columns, a 0/1 holiday flag equal on both rows of every key
    among them. The hint names the columns whose values differ within a key, text columns first."""
    r = run_validate(write_csv(text), id_cols=["item"])
    assert r.report.rows_quarantined >= 2
    assert f"more columns than 'item': name each with --id-col (the source's id_cols){e_g}; if the times" in r.hint, \
        r.hint


def test_report_serialises(write_csv):
    import json

    r = run_validate(write_csv(HEADER + GOOD + "2020-01-04,a,abc\n"), as_of=datetime(2020, 1, 10))
    d = json.loads(json.dumps(r.report.to_dict()))
    assert d["reconciled"] is True and d["checks"] == {"y_not_number": 1} and d["as_of"] == "2020-01-10T00:00:00+00:00"
    md = r.report.to_markdown()
    assert "- **y\\_not\\_number**: 1 row, e.g. " in md and "rows in = valid + quarantined: yes" in md


@pytest.mark.parametrize("second,expected_dup", [
    ("2", []),  # an exact repeat: dropped and counted, not quarantined
    ("5", [(1, "duplicate_conflict", "2 rows for (a, 2020-01-02) with different y values (2.0 / 5.0)"),
           (3, "duplicate_conflict", "2 rows for (a, 2020-01-02) with different y values (2.0 / 5.0)")]),
])
@pytest.mark.parametrize("extra", ["", "nonsense,a,9\n"], ids=["keys-present", "unparsable-time"])
def test_duplicates_in_sorted_file_around_a_failing_row(write_csv, second, expected_dup, extra):
    # sorted rows, a NaN row between two rows of one key: both code paths (in place / copy) agree
    text = f"date,id,val\n2020-01-01,a,1\n2020-01-02,a,2\n2020-01-02,a,NaN\n2020-01-02,a,{second}\n2020-01-03,a,3\n"
    r = run_validate(write_csv(text + extra))
    expected = sorted([(2, "y_not_finite", "val NaN is not finite" + MISSING_HINT), *expected_dup])
    if extra:
        expected.append((5, "time_unparsable", "time 'nonsense' does not parse as ISO-8601"))
    assert quarantined(r) == expected
    assert r.valid["ds"].to_list() == sorted(r.valid["ds"].to_list()) and r.report.reconciled
    assert r.report.rows_duplicate == (1 if second == "2" else 0)


def test_corrupt_parquet_is_a_dataset_error(tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataValidationError, match=r"cannot read Parquet file .*broken.parquet"):
        run_validate(p)


def test_ragged_csv_is_a_dataset_error(write_csv):
    with pytest.raises(DataValidationError, match=r"src.csv: line 3 has 5 fields where the header has 3"):
        run_validate(write_csv(HEADER + "2020-01-01,a,1\n2020-01-02,a,2,extra,fields\n"))


def test_failure_message_shows_an_example_row(write_csv):
    """The run-failing message names a row and its reason, not only the check counts."""
    p = write_csv(HEADER + "".join(f'2020-01-{d:02d},a,"1,{d:03d}"\n' for d in range(1, 6)))
    r = run_validate(p)
    with pytest.raises(DataValidationError, match=r"no valid rows left: .*; e\.g\. source_row 0 \(line 2 of .*src\.csv\): "
                                                  r"val '1,001' is not a number \(thousands separators"):
        enforce_thresholds(r, ValidationConfig(), artifact=None)


def test_a_file_appended_to_itself_is_said_to_be(write_csv):
    """Every row an exact repeat of an earlier one (the file appended to itself): nothing is lost (data43: the
    repeats are dropped, not quarantined, and the run goes on), and the report says the file looks appended twice."""
    body = "2020-01-01,a,1\n2020-01-02,a,2\n2020-01-01,b,5\n2020-01-02,b,6\n"
    r = run_validate(write_csv(HEADER + body + body))
    assert (r.report.checks, r.report.rows_duplicate, r.report.rows_valid) == ({}, 4, 4)
    enforce_thresholds(r, ValidationConfig(), artifact=None)
    assert ("4 exact duplicates dropped (one copy kept; every row repeated: the file looks appended twice)"
            in r.report.summary_sentence())
    once = run_validate(write_csv(HEADER + body + "2020-01-02,a,2\n2020-01-02,b,6\n", name="once.csv"))
    assert once.report.rows_duplicate == 2  # a few repeats: not a second copy
    assert "appended twice" not in once.report.to_markdown()


def test_an_example_row_of_a_csv_file_names_its_line(write_csv, tmp_path):
    """Regression: 'e.g. source_row 90: repeat of an earlier row' sent a reader of the file to line 90, two lines
    before the row: source_row counts data rows from 0, an editor and a spreadsheet count lines from 1 with the
    header on line 1. With one CSV file the example names the line (blank lines count, as an editor counts them);
    Parquet files and several files keep source_row alone (the quarantine file has it)."""
    p = write_csv(HEADER + GOOD + "\n" + "2020-01-04,a,oops\n" + "2020-01-05,a,5\n" * 2)
    lines = p.read_text().splitlines()
    assert lines[6 - 1] == "2020-01-04,a,oops" and lines[8 - 1] == "2020-01-05,a,5"
    r = run_validate(p)
    assert r.report.check_examples == {"y_not_number": f"source_row 4 (line 6 of {p}): val 'oops' is not a number"}
    assert r.report.duplicate_example == (f"source_row 6 (line 8 of {p}): repeat of an earlier row for "
                                          "(a, 2020-01-05) with the same y")
    with pytest.raises(DataValidationError, match=rf"e\.g\. source_row 4 \(line 6 of {p}\): val 'oops'"):
        enforce_thresholds(r, ValidationConfig(), artifact=None)
    pq = tmp_path / "obs.parquet"
    pl.read_csv(p, infer_schema=False).write_parquet(pq)
    assert run_validate(pq).report.check_examples["y_not_number"] == "source_row 4: val 'oops' is not a number"


@pytest.mark.parametrize("sep,preamble,gzipped", [
    (",", "", False),
    (";", "", False),  # sniffed from the header
    (",", "# exported by logger v2\n", False),  # a comment line above the header
    (",", "", True),
])
def test_an_example_row_after_a_quoted_line_break_names_its_own_line(write_csv, sep, preamble, gzipped):
    """Regression: a quoted value holding a line break (a free-text note column: "late delivery\\nsee ticket")
    makes one row span two lines, so that 'line source_row + 2' named a line above the quarantined row, another
    row's. The example names the line its row starts on."""
    rows = [["date", "id", "val", "note"], ["2020-01-01", "a", "1", '"late\ndelivery"'], ["2020-01-02", "a", "2", "ok"],
            ["2020-01-03", "a", "3", '"two\nline\nbreaks"'], ["2020-01-04", "a", "oops", "ok"]]
    text = preamble + "".join(sep.join(r) + "\n" for r in rows)
    bad_line = next(i for i, line in enumerate(text.splitlines(), 1) if "oops" in line)
    assert bad_line == 8 + bool(preamble)  # source_row 3 + 2 would be line 5 (+1)
    p = write_csv(gzip.compress(text.encode()) if gzipped else text, name="notes.csv.gz" if gzipped else "notes.csv")
    r = run_validate(p)
    assert r.report.rows_quarantined == 1
    assert r.report.check_examples == {"y_not_number": f"source_row 3 (line {bad_line} of {p}): val 'oops' is not a "
                                                        "number"}


@pytest.mark.parametrize("text,blank", [
    (HEADER + GOOD + "\n\n", 2),  # editors leave empty lines at the end
    (HEADER + "2020-01-01,a,1\n   \n2020-01-02,a,2\n\n2020-01-03,a,3\n", 2),  # whitespace-only lines inside
    (HEADER.replace("\n", "\r\n") + GOOD.replace("\n", "\r\n") + "\r\n", 1),
])
def test_blank_lines_are_not_rows(write_csv, text, blank):
    """Regression: polars 2 reads an empty line as a row of nulls; they were quarantined (time_missing)
    and could fail a small file on the 5% threshold."""
    r = run_validate(write_csv(text), threshold=0.0)
    assert (r.report.rows_read, r.report.blank_lines, r.report.rows_valid, r.report.rows_quarantined) == (3, blank, 3, 0)
    assert r.report.reconciled and "blank lines (not rows, skipped)" in r.report.to_markdown()
    enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.0), artifact=None)


def test_only_blank_lines_is_a_dataset_error(write_csv):
    with pytest.raises(DataValidationError, match=r"no rows \(the file has a header but no data, only 2 blank lines\)"):
        run_validate(write_csv(HEADER + "\n \n"))


@pytest.mark.parametrize(
    ("name", "folder"), [("us_employment", "us_employment"), ("m3-monthly", "m3-monthly"), ("my sales/2020", "my_sales_2020"), ("..", "source")]
)
def test_quarantine_folder_is_per_source_and_a_safe_name(tmp_path, name, folder):
    from flowcast.data.validate import quarantine_folder

    assert quarantine_folder(tmp_path, name, "all") == tmp_path / folder / "all"


def test_quoted_empty_fields_are_missing_values_not_text(write_csv, tmp_path):
    """Regression: a file exported with every field quoted (csv.QUOTE_ALL, pandas quoting=1) writes a
    missing value as "": the target was quarantined as "val '' is not a number" and a covariate as
    "promo '' is not a finite number" (every row of a covariate with gaps: the run failed), instead of
    being a missing value like an empty field."""
    text = ('"date","id","val","promo"\n"2020-01-01","a","1","0"\n"2020-01-02","a","","1"\n'
            '"2020-01-03","a","3",""\n"2020-01-04","a"," ","  "\n"","a","5","0"\n')
    r = run_validate(write_csv(text), past_cols=["promo"])
    assert r.report.rows_valid == 4 and r.report.rows_null_y == 2
    assert r.valid.select("y", "promo").rows() == [(1.0, 0.0), (None, 1.0), (3.0, None), (None, None)]
    assert r.quarantined.select("source_row", "check").rows() == [(4, "time_missing")]


def test_a_series_with_every_row_quarantined_is_named_not_dropped_silently(write_csv):
    """Regression: a series whose every row failed validation (here its target is text) vanished: the
    report counted 5 quarantined rows and 1 series, but no run summary, log or report said that series
    'zz' existed and is not forecast. Series in = series kept + series with every row quarantined."""
    text = HEADER + GOOD + "".join(f"2020-01-0{d},zz,n/a\n" for d in range(1, 5)) + (
        "2020-01-09,,7\n")  # a row without an id names no series
    r = run_validate(write_csv(text))
    assert r.report.n_series == 1 and r.report.checks == {"id_missing": 1, "y_not_number": 4}
    assert r.report.series_quarantined == [{"unique_id": "zz", "reason": "every row quarantined (y_not_number=4)"}]
    md = r.report.to_markdown()
    assert "| series with every row quarantined (not forecast) | 1 |" in md
    assert "- **zz**: every row quarantined (y\\_not\\_number=4)" in md
    assert run_validate(write_csv(HEADER + GOOD + "2020-01-04,a,x\n")).report.series_quarantined == []


def test_the_report_of_a_source_without_a_valid_row_has_no_date_range(write_csv):
    """Regression: the data-quality report of a source whose every row was quarantined said
    '| date range | None .. None |'."""
    md = run_validate(write_csv(HEADER + "2020-01-01,a,x\n2020-01-02,a,y\n")).report.to_markdown()
    assert "| date range | - (no valid row) |" in md and "None" not in md


def test_the_reports_date_range_shows_dates_as_dates_and_says_instants_are_utc(write_csv):
    """Regression: the data-quality report's date range read '2020-01-01 00:00:00 .. 2020-01-03 00:00:00' for
    daily data, and '2024-03-25 00:00:00 .. 2024-04-07 23:00:00' for hourly times in Europe/Berlin without
    saying that these are UTC instants (01:00 .. 01:00 there)."""
    md = run_validate(write_csv(HEADER + GOOD)).report.to_markdown()
    assert "| date range | 2020-01-01 .. 2020-01-03 |" in md, md
    hourly = write_csv("date,id,val\n2024-03-25 01:00,a,1\n2024-03-25 02:00,a,2\n", name="h.csv")
    md = run_validate(hourly, freq="1h", tz="Europe/Berlin").report.to_markdown()
    assert "| date range | 2024-03-25 00:00 .. 2024-03-25 01:00 (UTC) |" in md, md


def test_an_as_of_before_the_data_says_when_the_data_begins(write_csv):
    """Regression: a backfill date (or --as-of) before a dataset's first row failed with 'all 3 rows are after
    as_of=...; nothing to validate', leaving the user to find where the data begins; it says so."""
    with pytest.raises(DataValidationError, match=r"all 3 rows are after as_of=2019-06-01 \(the first "
                                                  r"is 2020-01-01: pick an as_of from then on\); nothing to validate") as info:
        run_validate(write_csv(HEADER + GOOD), as_of=datetime(2019, 6, 1))
    # the date a backfill is sent to, a fact of the error (a backfill's dates before it said apart), as its text says
    assert info.value.begins == "2020-01-01"


@pytest.mark.parametrize("serializer", ["pickle", "cloudpickle", "prefect"])
def test_an_as_of_before_the_data_keeps_its_begins_and_message_through_a_pickle(write_csv, serializer):
    """revR48: `begins` is set on the error after it is built (not an argument of its __init__): Prefect keeps a raised
    error pickled (a task's result, a child run's state read back) and a backfill reads the date off it; it comes back
    with its message, its class and its exit code."""
    import pickle

    import cloudpickle
    from prefect.serializers import PickleSerializer

    dumps, loads = {"pickle": (pickle.dumps, pickle.loads), "cloudpickle": (cloudpickle.dumps, cloudpickle.loads),
                    "prefect": (PickleSerializer().dumps, PickleSerializer().loads)}[serializer]
    with pytest.raises(DataValidationError) as info:
        run_validate(write_csv(HEADER + GOOD), as_of=datetime(2019, 6, 1))
    back = loads(dumps(info.value))
    assert type(back) is DataValidationError and back.exit_code == 2
    assert (back.begins, str(back)) == ("2020-01-01", str(info.value)), vars(back)


@pytest.mark.parametrize(("value", "formats"), [
    ("01.02.2024", "'%d.%m.%Y' or '%m.%d.%Y'"), ("1-2-20", "'%d-%m-%y' or '%m-%d-%y'"),
    ("01.02.2024 13:00", "'%d.%m.%Y %H:%M' or '%m.%d.%Y %H:%M'"),
    ("01/02/2024 13:00:05", "'%d/%m/%Y %H:%M:%S' or '%m/%d/%Y %H:%M:%S'")])
def test_the_time_format_hint_is_written_as_the_value_is(write_csv, value, formats):
    """Regression: '01.02.2024' (a German export) was told 'declare its time_format, e.g. --time-format %d/%m/%Y',
    which does not parse it; the hint takes the value's separator, year digits and time of day."""
    p = write_csv(f"date,id,val\n{value},a,1\n")
    (row,) = quarantined(run_validate(p))
    assert row[2] == f"time '{value}' does not parse as ISO-8601 (day/month order is ambiguous: declare its " \
                     f"time_format, e.g. --time-format {formats})"


@pytest.mark.parametrize("value", ["$1.50", "12%", "3,50 €", "-$4", "7 EUR"])
def test_a_number_with_a_unit_says_so(write_csv, value):
    """Regression: '$1.50' or '12%' was quarantined as "val '$1.50' is not a number", no word on why."""
    (row,) = quarantined(run_validate(write_csv(f"date,id,val\n2020-01-01,a,\"{value}\"\n")))
    assert row[2] == f"val '{value}' is not a number (a currency or percent sign? export the numbers alone, without a unit)"


@pytest.mark.parametrize(("odd", "said"), [
    ("05/01/2023", " (2023-01-05 day first, 2023-05-01 month first)"),
    ("5.1.2023", " (2023-01-05 day first, 2023-05-01 month first)")])
def test_a_day_month_date_among_iso_dates_is_told_to_be_written_as_they_are(write_csv, odd, said):
    """Regression (nu42): one '05/01/2023' in a column of ISO dates was told 'declare its time_format, e.g.
    --time-format '%d/%m/%Y'', which applies to every row: following it quarantined the other 59 of 60. It is told
    to be written as the others are, with its two readings."""
    rows = "".join(f"a,2023-01-{d:02d},{d}\n" if d != 5 else f"a,{odd},{d}\n" for d in range(1, 11))
    r = run_validate(write_csv("id,date,val\n" + rows))
    (row,) = quarantined(r)
    assert row[2] == (f"time '{odd}' does not parse as ISO-8601 (day/month order is ambiguous, and other times of the "
                      f"column are written like '2023-01-01': write this one as they are{said}; a --time-format would "
                      "apply to every row)")


@pytest.mark.parametrize(("odd", "said"), [
    ("31/01/2023", ("(day first, and other times of the column are written like '2023-01-01': write this one as they "
                    "are (2023-01-31); a --time-format would apply to every row)")),
    ("01/29/2023", ("(month first, and other times of the column are written like '2023-01-01': write this one as they "
                    "are (2023-01-29); a --time-format would apply to every row)"))])
def test_a_day_first_or_month_first_date_among_iso_dates_is_told_to_be_written_as_they_are(write_csv, odd, said):
    """nu42's case where a number above 12 settles a row's order: '31/01/2023' and '01/29/2023' among ISO dates (no
    order reads both) were each told 'declare its time_format, --time-format '%d/%m/%Y'' ('%m/%d/%Y'), which
    applies to every row: following it quarantined every ISO date too. Each is told to be written as the others are."""
    rows = "".join(f"a,2023-01-{d:02d},{d}\n" for d in range(1, 11) if d not in (5, 6))
    r = run_validate(write_csv("id,date,val\na,31/01/2023,5\na,01/29/2023,6\n" + rows))
    assert f"time '{odd}' does not parse as ISO-8601 {said}" in [reason for _, _, reason in quarantined(r)], quarantined(r)


def test_a_day_month_date_among_day_month_dates_is_still_told_its_time_format(write_csv):
    rows = "id,date,val\na,01/02/2024,1\na,02/01/2024,2\n"  # settled by nothing: both rows quarantined
    (first, _) = quarantined(run_validate(write_csv(rows), freq="1d"))
    assert "declare its time_format, e.g. --time-format '%d/%m/%Y' or '%m/%d/%Y'" in first[2]


@pytest.mark.parametrize(("value", "unit"), [("1,234 kWh", "kWh"), ("87448kWh", "kWh"), ("18.2 °C", "°C"),
                                           ("5 pcs", "pcs"), ("2.5 m³", "m³"), ("1 234 kg", "kg")])
def test_a_number_with_its_unit_of_measure_says_to_export_the_number_alone(write_csv, value, unit):
    """Regression (nu42): a meter export's '1,234 kWh' was quarantined as "energy '1,234 kWh' is not a number", every
    row of the file, with no word on why or what to export (a currency or percent sign had one)."""
    (row,) = quarantined(run_validate(write_csv(f"date,id,val\n2020-01-01,a,\"{value}\"\n")))
    assert row[2] == (f"val '{value}' is not a number (a unit after the number? export the numbers alone, without "
                      f"their unit '{unit}'; [sources.NAME] unit = \"{unit}\" names it on the plots)")


@pytest.mark.parametrize(("value", "said"), [("1.5k", " (the suffix 'k' for thousands?"), ("2nd", "")])
def test_a_magnitude_suffix_or_an_ordinal_is_no_unit(write_csv, value, said):
    (row,) = quarantined(run_validate(write_csv(f"date,id,val\n2020-01-01,a,{value}\n")))
    assert row[2].startswith(f"val '{value}' is not a number{said}") and "unit after" not in row[2]


def test_the_reports_date_range_of_hourly_data_ending_at_utc_midnight_says_utc(write_csv):
    """Regression: the date range of sub-daily data was told from dates by its text: hourly data in Europe/Berlin
    whose first and last rows fell on 00:00 UTC (02:00 there) read '2024-03-24 .. 2024-03-25', dates, not the
    instants '2024-03-24 00:00 .. 2024-03-25 00:00 (UTC)'."""
    rows = "".join(f"2024-03-24 {h:02d}:00,a,{h}\n" for h in range(1, 24)) + "2024-03-25 00:00,a,0\n2024-03-25 01:00,a,0\n"
    md = run_validate(write_csv("date,id,val\n" + rows, name="h.csv"), freq="1h", tz="Europe/Berlin").report.to_markdown()
    assert "| date range | 2024-03-24 00:00 .. 2024-03-25 00:00 (UTC) |" in md, md


def test_the_reports_as_of_says_the_sources_zone(write_csv):
    """Regression: the report gave as_of in UTC only: a daily source in America/New_York run with --as-of
    2020-01-03 (midnight UTC, 19:00 on 2 January there) read 'as_of: 2020-01-03T00:00:00+00:00' beside a date
    range ending 2020-01-02, without saying which zone's calendar cut it."""
    rep = run_validate(write_csv(HEADER + GOOD), tz="America/New_York", as_of=datetime(2020, 1, 3)).report
    assert rep.ds_max == "2020-01-02 00:00:00" and rep.tz == "America/New_York"
    md = rep.to_markdown()
    # the wall time as every message writes one (inst43b: '2020-01-02 19:00 in America/New_York', a form of its own)
    assert "as_of (UTC): 2020-01-03 (2020-01-02 19:00 -05:00 America/New_York: the source's tz)" in md, md
    assert rep.to_dict()["tz"] == "America/New_York"


@pytest.mark.parametrize(("as_of", "said"), [
    (datetime(2020, 1, 3), "as_of (UTC): 2020-01-03; files:"),
    (datetime(2020, 1, 3, 6, 30), "as_of (UTC): 2020-01-03 06:30; files:"),
    (None, "as_of: everything; files:"),
])
def test_the_reports_as_of_is_written_as_the_other_artifacts_write_it(write_csv, as_of, said):
    """ui30: the data quality artifact read 'as_of: 2020-01-03T00:00:00+00:00', a raw ISO string beside the
    leaderboard's and realized accuracy's 'as_of (UTC)' column of '2020-01-03' (`timekeys.utc_text`)."""
    md = run_validate(write_csv(HEADER + GOOD), as_of=as_of).report.to_markdown()
    assert said in md, md


@pytest.mark.parametrize("freq,tz,body,said", [
    ("1d", None, "2020-01-01,a,1\n2020-01-01,a,2\n", "2 rows for (a, 2020-01-01) with different y values (1.0 / 2.0)"),
    # month-end and mid-month rows of one month: neither is dated 2020-01-01, the period they share starts then
    ("1mo", None, "2020-01-31,a,1\n2020-01-15,a,2\n",
     "2 rows for (a, the 1mo period from 2020-01-01) with different y values (1.0 / 2.0)"),
    ("1h", None, "2020-01-01T00:00,a,1\n2020-01-01T00:00,a,1\n",
     "repeat of an earlier row for (a, 2020-01-01) with the same y"),  # a midnight UTC: its date (utc_text)
    ("30m", None, "2020-01-01T06:30,a,1\n2020-01-01T06:30,a,2\n",
     "2 rows for (a, 2020-01-01 06:30 UTC) with different y values (1.0 / 2.0)"),  # no seconds where they are zero
    # a source with a tz: its wall time there too, as every time of it reads (it said '2023-10-29 04:00 UTC' alone)
    ("1h", "Europe/Berlin", "2023-10-29T05:00,a,1\n2023-10-29T05:00,a,2\n",
     "2 rows for (a, 2023-10-29 04:00 UTC (2023-10-29 05:00 +01:00 Europe/Berlin)) with different y values (1.0 / 2.0)"),
    # ... and a midnight UTC keeps its clock beside the zone's (its date alone read as a day there)
    ("1h", "America/New_York", "2020-01-02T19:00,a,1\n2020-01-02T19:00,a,1\n",
     "repeat of an earlier row for (a, 2020-01-03 00:00 UTC (2020-01-02 19:00 -05:00 America/New_York)) with the same y"),
    # daily times written with offsets, no tz: each with its offset (they read '09:00 / 08:00', one instant) ...
    ("1d", None, "2024-01-01T09:00:00Z,a,1\n2024-01-02T09:00:00+01:00,a,1\n2024-01-02T08:00:00+00:00,a,1\n",
     "2 rows for (a, 2024-01-02) with different time values (2024-01-02 09:00 +01:00 / 2024-01-02 08:00 +00:00)"),
    # ... two times of the day apart by their offset alone (one was dropped as a row written twice), in any order
    ("1d", None, "2024-01-01T09:00:00Z,a,1\n2024-01-02T09:00:00+01:00,a,1\n2024-01-02T09:00:00-05:00,a,1\n",
     "2 rows for (a, 2024-01-02) with different time values (2024-01-02 09:00 +01:00 / 2024-01-02 09:00 -05:00)"),
    ("1d", None, "2024-01-03T09:00:00Z,a,1\n2024-01-02T09:00:00-05:00,a,1\n2024-01-02T09:00:00+01:00,a,1\n",
     "2 rows for (a, 2024-01-02) with different time values (2024-01-02 09:00 -05:00 / 2024-01-02 09:00 +01:00)"),
    # daily times of a source with a tz: each with its offset there, as a time written with one (srcmsg46: they
    # read '09:00 / 15:00' without a zone), summer's and winter's; the zone where the wall time is no one instant
    ("1d", "Europe/Berlin", "2024-01-02T09:00,a,1\n2024-01-02T15:00,a,1\n",
     "2 rows for (a, 2024-01-02) with different time values (2024-01-02 09:00 +01:00 / 2024-01-02 15:00 +01:00)"),
    ("1d", "Europe/Berlin", "2024-07-02T09:00,a,1\n2024-07-02T15:00,a,1\n",
     "2 rows for (a, 2024-07-02) with different time values (2024-07-02 09:00 +02:00 / 2024-07-02 15:00 +02:00)"),
    ("1d", "Europe/Berlin", "2023-10-29T02:30,a,1\n2023-10-29T09:00,a,1\n",
     ("2 rows for (a, 2023-10-29) with different time values (2023-10-29 02:30 Europe/Berlin / 2023-10-29 09:00 "
     "+01:00)")),
    ("1d", "Europe/Berlin", "2024-01-02,a,1\n2024-01-02,a,1\n", ("repeat of an earlier row for (a, 2024-01-02) with "
     "the same y")),  # a date alone: no time, no offset
    # the autumn night's two 02:30, written with their offsets: two instants an hour apart, two readings of the day (a
    # repeat of one row, one dropped, where their wall time alone was compared); one instant written twice is a repeat
    ("1d", "Europe/Berlin", "2023-10-29T02:30:00+02:00,a,1\n2023-10-29T02:30:00+01:00,a,1\n",
     "2 rows for (a, 2023-10-29) with different time values (2023-10-29 02:30 +02:00 / 2023-10-29 02:30 +01:00)"),
    ("1d", "Europe/Berlin", "2023-10-29T02:30:00+01:00,a,1\n2023-10-29T01:30:00Z,a,1\n",
     "repeat of an earlier row for (a, 2023-10-29) with the same y"),
    # ... as is a time without an offset beside it written with the zone's offset there
    ("1d", "Europe/Berlin", "2024-01-02T09:00,a,1\n2024-01-02T09:00:00+01:00,a,1\n",
     "repeat of an earlier row for (a, 2024-01-02) with the same y"),
    # ... but dates written as midnight timestamps are their dates whatever the offset: one written twice
    ("1d", None, "2024-01-01T00:00:00Z,a,1\n2024-01-02T00:00:00+01:00,a,1\n2024-01-02T00:00:00-05:00,a,1\n",
     "repeat of an earlier row for (a, 2024-01-02) with the same y"),
])
def test_a_duplicate_key_is_named_as_the_source_periods_read(write_csv, freq, tz, body, said):
    """Regression: every duplicate's reason gave its key as a timestamp: '(a, 2020-01-01 00:00:00)' for daily
    data, and for monthly rows dated 2020-01-31 and 2020-01-15 the aligned '(a, 2020-01-01 00:00:00)', a date
    neither row has, without saying it is their month; sub-daily instants did not say they are UTC, then said it with
    seconds always ('2020-01-01 00:00:00 UTC') where every other instant reads by `timekeys.utc_text`, and in UTC
    alone for a source with a tz, where other messages add its wall time there (`utc_text(instant, tz)`)."""
    r = run_validate(write_csv(HEADER + body), freq=freq, **({"tz": tz} if tz else {}))
    reasons = r.quarantined["reason"].to_list() or [(r.report.duplicate_example or "").split(": ", 1)[-1]]
    assert reasons[-1] == said


def test_a_header_line_repeated_among_the_rows_is_named_and_makes_no_series(write_csv):
    """Regression: two exports joined with their headers (`cat jan.csv feb.csv`, the second with a BOM) had the
    second header quarantined as "time 'date' does not parse as ISO-8601", and its id made a series 'id' listed
    as 'every row quarantined' among the excluded series."""
    p = write_csv(HEADER + GOOD + "\ufeff" + HEADER + "2020-01-04,a,4\n")
    r = run_validate(p)
    said = "the header line again ('id, date, val'): not a row (files joined with their headers? keep the first header only)"
    assert quarantined(r) == [(3, "header_repeated", said)]
    assert r.report.series_quarantined == [] and r.report.n_series == 1 and r.report.rows_valid == 4


@pytest.mark.parametrize(("value", "said"), [
    ("05/06/2024", ("(day/month order is ambiguous: declare its time_format, e.g. --time-format '%d/%m/%Y' or "
                   "'%m/%d/%Y')")),
    # no date in either order (it was told to declare a format, which read it no more)
    ("13/13/2024", "(no date day first or month first)")])
def test_a_day_month_order_no_row_settles_is_quarantined_with_the_formats(write_csv, value, said):
    (row,) = quarantined(run_validate(write_csv(f"date,id,val\n{value},a,1\n")))
    assert row[2] == f"time '{value}' does not parse as ISO-8601 {said}"


@pytest.mark.parametrize(("rows", "freq", "first", "last"), [
    # a German export: its first 12 rows could be either order, 13.01.2024 settles it (day first)
    ([f"{d:02d}.01.2024" for d in range(1, 20)], "1d", datetime(2024, 1, 1), datetime(2024, 1, 19)),
    ([f"1/{d}/24" for d in range(5, 15)], "1d", datetime(2024, 1, 5), datetime(2024, 1, 14)),  # a US one
    (["31-01-2024", "01-02-2024"], "1d", datetime(2024, 1, 31), datetime(2024, 2, 1)),  # '-2024' is no UTC offset
    (["12.13.24 08:00", "12.13.24 09:00"], "1h", datetime(2024, 12, 13, 8), datetime(2024, 12, 13, 9)),
    (["2024-1", "2024-2", "2024-10"], "1mo", datetime(2024, 1, 1), datetime(2024, 10, 1)),  # unpadded months
    (["2024-1-5", "2024-01-6", "2024-1-07"], "1d", datetime(2024, 1, 5), datetime(2024, 1, 7)),  # unpadded dates
])
def test_the_day_month_order_is_decided_from_all_rows(write_csv, rows, freq, first, last):
    """Regression: a dd.mm.yyyy file was told 'day/month order is ambiguous' from its first row (01.01.2024),
    though 13.01.2024 later in it can only be day first: every row was quarantined. The order is decided from
    all rows (a number above 12 settles it); '2024-1' (a month without its zero) did not parse either."""
    r = run_validate(write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(rows))), freq=freq)
    assert r.report.rows_quarantined == 0 and r.report.rows_valid == len(rows)
    assert (r.valid["ds"].min(), r.valid["ds"].max()) == (first, last)


def test_day_month_rows_that_contradict_each_other_are_quarantined_with_their_hints(write_csv):
    """31/01 is day first, 01/29 month first: no order reads both; each row says which format would read it, or,
    beside a time that read (2024-01-05), to be written as it is (a time_format applies to every row)."""
    r = run_validate(write_csv("date,id,val\n31/01/2024,a,1\n01/29/2024,a,2\n"))
    assert quarantined(r) == [
        (0, "time_unparsable", ("time '31/01/2024' does not parse as ISO-8601 (day first: declare its time_format, "
                               "--time-format '%d/%m/%Y')")),
        (1, "time_unparsable", ("time '01/29/2024' does not parse as ISO-8601 (month first: declare its time_format, "
                               "--time-format '%m/%d/%Y')"))]
    r = run_validate(write_csv("date,id,val\n31/01/2024,a,1\n01/29/2024,a,2\n2024-01-05,a,3\n"))
    assert quarantined(r) == [
        (0, "time_unparsable", ("time '31/01/2024' does not parse as ISO-8601 (day first, and other times of the "
                               "column are written like '2024-01-05': write this one as they are (2024-01-31); a "
                               "--time-format would apply to every row)")),
        (1, "time_unparsable", ("time '01/29/2024' does not parse as ISO-8601 (month first, and other times of the "
                               "column are written like '2024-01-05': write this one as they are (2024-01-29); a "
                               "--time-format would apply to every row)"))]


@pytest.mark.parametrize(("rows", "later", "freq", "as_of", "read"), [
    # a US history (01/13: month first) and, after as_of, a row written day first: every row contradicted another
    (["01/13/2020", "01/14/2020", "01/15/2020"], "16/01/2020", "1d", datetime(2020, 1, 15),
     [datetime(2020, 1, d) for d in (13, 14, 15)]),
    (["13/01/2020", "14/01/2020", "15/01/2020"], "01/16/2020", "1d", datetime(2020, 1, 15),
     [datetime(2020, 1, d) for d in (13, 14, 15)]),
    # monthly, month first (spaced a month apart read so); a later 13/01/2021 made them 1-3 January, one month
    (["01/01/2020", "02/01/2020", "03/01/2020"], "13/01/2021", "1mo", datetime(2020, 3, 1),
     [datetime(2020, m, 1) for m in (1, 2, 3)]),
])
def test_the_day_month_order_is_decided_from_the_rows_by_as_of(write_csv, rows, later, freq, as_of, read):
    """Regression (a leak after as_of): the day/month order was decided from all rows, so a row written after
    as_of in the other order changed how a backfill at that as_of read its history (quarantined every row, or
    read a monthly history as three days) where its run had read it. The rows by as_of decide (a row after as_of
    however it is read does not); without as_of, all rows do, as before."""
    p = write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate([*rows, later])))
    r = run_validate(p, as_of=as_of, freq=freq)
    assert r.valid.sort("ds")["ds"].to_list() == read and r.report.rows_valid == len(rows)
    everything = run_validate(p, freq=freq)
    assert everything.report.rows_valid < len(rows)


@pytest.mark.parametrize(("rows", "later", "freq", "as_of", "after"), [
    # month first by as_of; the later '16/01/2020' is no date month first, and 16 January day first: after as_of
    (["01/13/2020", "01/14/2020", "01/15/2020"], "16/01/2020", "1d", datetime(2020, 1, 15), True),
    (["01/01/2020", "02/01/2020", "03/01/2020"], "13/01/2021", "1mo", datetime(2020, 3, 1), True),
    # no reading at all ('01/32/2020'): unparsable, quarantined as before
    (["01/13/2020", "01/14/2020", "01/15/2020"], "01/32/2020", "1d", datetime(2020, 1, 15), False),
])
def test_a_row_after_as_of_however_read_that_the_order_cannot_read_is_after_as_of(write_csv, rows, later, freq,
                                                                                   as_of, after):
    """Regression: a row after as_of however it is read, written in the other order than the rows by as_of chose
    ('16/01/2020' after a history of '01/13/2020'), was quarantined as time_unparsable in a backfill at that as_of
    (a row its run never saw); it is counted after as_of, as a row read after it is. A row that no order reads is
    quarantined with its reason; the rows reconcile either way."""
    p = write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate([*rows, later])))
    r = run_validate(p, as_of=as_of, freq=freq)
    assert r.report.rows_valid == len(rows) and r.report.reconciled
    assert (r.report.rows_after_as_of, r.report.rows_quarantined) == ((1, 0) if after else (0, 1))
    if not after:
        assert [(row, check) for row, check, _ in quarantined(r)] == [(3, "time_unparsable")]


@pytest.mark.parametrize("later", ["2024-01-20 2:30 PM", "2024-01-20T10:00+01:00[Europe/Berlin]", "Jan 2025",
                                   "2024-01-20 24:00"])
def test_a_later_time_of_another_shape_changes_nothing_in_a_backfill(write_csv, later):
    """The shapes of a time column that are decided from all its rows (a 12-hour clock, a bracketed zone, a month
    name, 24:00) are each read on its own value: a later row of such a shape leaves a backfill's history as its run
    read it, and is itself read, so counted after as_of (were they decided from the rows by as_of alone, it would be
    quarantined as time_unparsable)."""
    rows = "".join(f"2024-01-{d:02d} 10:00,a,{d}\n" for d in range(1, 6))
    history, whole = write_csv("date,id,val\n" + rows, name="h.csv"), write_csv(f"date,id,val\n{rows}{later},a,9\n")
    as_of = datetime(2024, 1, 5, 12)
    run, backfill = (run_validate(p, as_of=as_of, freq="1h") for p in (history, whole))
    assert backfill.valid.sort("ds").rows() == run.valid.sort("ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 0)


def test_an_as_of_before_planned_rows_says_when_the_data_begins(write_csv):
    """Regression: with a future-known covariate planned on every row, an as_of before the data said 'all 3
    rows are after as_of=... (3 of them kept for their planned future covariates only); nothing observed to
    validate', and not where the data begin, as it does without planned rows."""
    with pytest.raises(DataValidationError, match=r"all 3 rows are after as_of=2019-06-01 \(3 of them "
                                                  r"kept for the planned values of their future covariates, not "
                                                  r"their targets; the first is "
                                                  r"2020-01-01: pick an as_of from then on\); nothing observed"):
        run_validate(write_csv("date,id,val,promo\n2020-01-01,a,1,0\n2020-01-02,a,2,1\n2020-01-03,a,3,0\n"),
                     as_of=datetime(2019, 6, 1), future_cols=["promo"])


@pytest.mark.parametrize(("as_of", "said"), [
    (datetime(2020, 2, 20), ("all 2 rows are after as_of=2020-02-20 (2 of them in the 1mo period not over at as_of, "
                             "which waits until it ends; the first is 2020-02-03, its 1mo period over at 2020-03-01: "
                             "pick an as_of from then on); nothing to validate")),
    (datetime(2020, 1, 6), ("all 2 rows are after as_of=2020-01-06 (the first is 2020-02-03, its 1mo period over at "
                            "2020-03-01: pick an as_of from then on); nothing to validate")),
])
def test_an_aggregated_source_before_its_first_period_ends_names_when_it_ends(write_csv, as_of, said):
    """Regression (revG47): an as_of before the first aggregated period is over was sent to the period's first row
    ('the first is 2020-02-03: pick an as_of from then on'), where the period still waits, so a run at that as_of
    failed alike, and a backfill said its 2020-02-20 'precedes the data's first time 2020-02-03'."""
    with pytest.raises(DataValidationError) as info:
        run_validate(write_csv("date,id,val\n2020-02-03,a,1\n2020-02-19,a,2\n"), as_of=as_of, freq="1mo",
                     aggregate="sum")
    assert str(info.value).endswith(said)
    assert info.value.begins == "2020-03-01"


def test_an_as_of_inside_the_only_period_of_an_aggregated_source_says_it_is_not_over(write_csv):
    """Days summed to months, every row in February and a run on 20 February: the month waits until it ends;
    'all rows are after as_of (the first is 2020-02-03: pick an as_of from then on)' would send the user to a
    date they already gave."""
    with pytest.raises(DataValidationError, match=r"all 2 rows are after as_of=2020-02-20 \(2 of them "
                                                  r"in the 1mo period not over at as_of, which waits until it ends; "
                                                  r"the first is 2020-02-03"):
        run_validate(write_csv("date,id,val\n2020-02-03,a,1\n2020-02-19,a,2\n"), as_of=datetime(2020, 2, 20),
                     freq="1mo", aggregate="sum")


@pytest.mark.parametrize(("text", "as_of", "kw"), [
    ("date,id,val\n2020-01-01,a,1\n2020-01-02,a,2\n", datetime(2019, 6, 1), {}),
    ("date,id,val,promo\n2020-01-01,a,1,0\n2020-01-02,a,2,1\n", datetime(2019, 6, 1), {"future_cols": ["promo"]}),
    ("date,id,val\n2020-02-03,a,1\n2020-02-19,a,2\n", datetime(2020, 2, 20), {"freq": "1mo", "aggregate": "sum"}),
    # an hour-ending row labelled 01:00 covers 00:00-01:00: not over at 00:30
    ("date,id,val\n2020-01-01T01:00,a,1\n2020-01-01T02:00,a,2\n", datetime(2020, 1, 1, 0, 30),
     {"freq": "1h", "time_label": "end"}),
    ("date,id,val\n2020-01-01,a,1\n", datetime(2020, 1, 1), {}),  # observed: the first day itself
    ("date,id,val\n2020-01-01T01:00,a,1\n", datetime(2020, 1, 1, 1), {"freq": "1h", "time_label": "end"}),
    # review23: 1 March at -05:00 begins at 05:00 UTC, after a run at midnight UTC: kept for its planned promo, as
    # validate counts it (by the instant, DS_SEEN); the pre-check counted it by its date and said '1 of them'
    ("date,id,val,promo\n2024-03-01T00:00:00-05:00,a,1,1\n2024-03-02T00:00:00-05:00,a,2,1\n",
     datetime(2024, 3, 1, tzinfo=UTC), {"future_cols": ["promo"]}),
])
def test_nothing_observed_by_says_what_validate_says(write_csv, text, as_of, kw):
    """`nothing_observed_by` (what `flowcast run`/`forecast` check before Prefect starts) reads the source by the
    reader's rules and says validate's own sentence, or None where validate finds an observed row."""
    p = write_csv(text)
    said = nothing_observed_by(make_source(p, **kw), as_of)
    try:
        run_validate(p, as_of=as_of, **kw)
    except DataValidationError as exc:
        assert said == str(exc)
    else:
        assert said is None


@pytest.mark.parametrize("bad", ["05-Mar-2024", "2024-03-05 25:00+01:00"])
def test_one_unparsable_time_does_not_quarantine_the_other_rows_as_zone_ambiguous(write_csv, bad):
    """Regression: one row dated '05-Mar-2024' (its '-2024' read as the UTC offset -20:24) among ISO dates made
    the file 'mixed': every other row was quarantined as time_zone_ambiguous ("has no UTC offset while other rows
    do"), 28 of 29 rows, and the run failed with no valid row. Only the bad row is quarantined, as unparsable;
    an offset counts when its time parsed."""
    good = "".join(f"2024-02-{d:02d},a,{d}\n" for d in range(1, 6))
    r = run_validate(write_csv("date,id,val\n" + good + f"{bad},a,9\n"))
    assert r.report.checks == {"time_unparsable": 1} and r.report.rows_valid == 5
    assert quarantined(r)[0][2].startswith(f"time '{bad}' does not parse as ISO-8601")


@pytest.mark.parametrize(("value", "fmt"), [
    # ('Mar 2024', 'March 2024': read without a format since session 24, test_sources)
    # ('20240305', ISO-8601's basic date: read without a format since ingest53c, test_sources)
    ("2024/03", "%Y/%m"), ("2024.03", "%Y.%m"), ("05-Mar-2024", "%d-%b-%Y"),
    # Excel's d-mmm-yy, English long dates: told only "does not parse as ISO-8601" (session 23)
    ("5-Mar-24", "%d-%b-%y"), ("Mar 5, 2024", "%b %d, %Y"), ("March 5, 2024", "%B %d, %Y"), ("5 Mar 2024", "%d %b %Y"),
    ("5 March 2024", "%d %B %Y"),
    # Excel's mmm-yy months: told only "does not parse as ISO-8601" (newuser17)
    ("Mar-24", "%b-%y"), ("Mar 24", "%b %y")])
def test_a_common_non_iso_time_is_told_the_format_that_parses_it(write_csv, value, fmt):
    """Regression: '2024/03', 'Mar 2024' (a spreadsheet's months), '05-Mar-2024' (Oracle's DD-MON-YYYY) or
    '20240305' were told only "does not parse as ISO-8601"; the reason gives the --time-format that reads them,
    and that format does."""
    p = write_csv(f'date,id,val\n"{value}",a,1\n')
    (row,) = quarantined(run_validate(p, freq="1mo" if "%d" not in fmt else "1d"))
    assert row[2].endswith(f"declare its time_format: --time-format '{fmt}')"), row[2]
    r = run_validate(p, freq="1mo" if "%d" not in fmt else "1d", time_format=fmt)
    assert r.report.rows_valid == 1 and r.valid["ds"][0].year == 2024



@pytest.mark.parametrize("body", [
    # unsorted: the rows are copied and sorted before the duplicates are found
    ("2020-01-01,a,1,10\n2020-01-02,a,2,11\n2020-01-03,a,,20\n2020-01-03,a,,25\n2020-01-02,a,2,99\n"
     "2020-01-04,a,,30\n2020-01-04,a,,30\n"),
    # sorted, with a failing row: the duplicates are found in place
    ("2020-01-01,a,1,10\n2020-01-02,a,2,11\n2020-01-02,a,2,99\n2020-01-02,a,NaN,1\n2020-01-03,a,,20\n"
     "2020-01-03,a,,25\n2020-01-04,a,,30\n2020-01-04,a,,30\n"),
], ids=["copied", "in-place"])
def test_duplicate_rows_whose_covariates_differ_are_a_conflict_not_a_repeat(write_csv, body):
    """Regression: duplicates were judged on y alone. Two rows of (a, 2020-01-02) with y 2 but temperature 11 and
    99 were called a 'repeat of an earlier row ... with the same y' and the first row's 11 kept; two planned rows
    of 2020-01-03 (after as_of: y ignored) with temperatures 20 and 25 (a corrected forecast appended to the file)
    kept 20, silently. Rows of one key with different covariate values are a conflict: every row of the key is
    quarantined, the reason naming the column; a true repeat (every value equal) still keeps its first row."""
    r = run_validate(write_csv("date,id,val,temp\n" + body), as_of=datetime(2020, 1, 2), future_cols=["temp"])
    rows = body.splitlines()

    def at(line: str, k: int = 0) -> int:  # the source_row of a line of the body
        return [i for i, t in enumerate(rows) if t == line][k]

    got = [q for q in quarantined(r) if q[1].startswith("duplicate")]
    assert got == sorted([
        (at("2020-01-02,a,2,11"), "duplicate_conflict", "2 rows for (a, 2020-01-02) with different temp values (temp 11.0 / 99.0)"),
        (at("2020-01-02,a,2,99"), "duplicate_conflict", "2 rows for (a, 2020-01-02) with different temp values (temp 11.0 / 99.0)"),
        (at("2020-01-03,a,,20"), "duplicate_conflict", "2 rows for (a, 2020-01-03) with different temp values (temp 20.0 / 25.0)"),
        (at("2020-01-03,a,,25"), "duplicate_conflict", "2 rows for (a, 2020-01-03) with different temp values (temp 20.0 / 25.0)"),
    ])
    assert r.report.duplicate_example == (f"source_row {at('2020-01-04,a,,30', 1)}"
                                          f" (line {at('2020-01-04,a,,30', 1) + 2} of {r.report.files[0]}): "
                                          "repeat of an earlier row for (a, 2020-01-04) with the same y and temp")
    assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined + r.report.rows_duplicate
    assert r.valid.select("ds", "temp").rows() == [(datetime(2020, 1, 1), 10.0), (datetime(2020, 1, 4), 30.0)]


def test_a_two_digit_year_first_or_last_is_not_guessed(write_csv):
    """Regression: '24-03-01' (a two-digit year first: '%y-%m-%d', ISO's order cut short) was read as 24 March
    2001 (its first number above 12 made it 'day first'), and a daily file of March 2024 became one value a year
    ('is it freq 1y?'). Nothing in such a file says whether the year is first or last, so its rows are
    quarantined naming both formats and the key to set; a first number above 31 can only be a year, a last one
    above 31 only a year, and a declared time_format reads them."""
    rows = "".join(f"24-03-{d:02d},a,{d}\n" for d in range(1, 6))
    r = run_validate(write_csv("date,id,val\n24-03-01,a,1\n", name="one.csv"))  # one date: no spacing tells
    assert r.report.rows_valid == 0 and {c for _, c, _ in quarantined(r)} == {"time_unparsable"}
    assert quarantined(r)[0][2] == ("time '24-03-01' does not parse as ISO-8601 (a two-digit year first or last? "
                                    "declare its time_format, e.g. --time-format '%y-%m-%d' or '%d-%m-%y'; "
                                    "time_format in [sources.NAME]; a four-digit year needs none)")
    r = run_validate(write_csv("date,id,val\n" + rows, name="f.csv"), time_format="%y-%m-%d")
    assert r.report.rows_quarantined == 0 and r.valid["ds"].max() == datetime(2024, 3, 5)
    r = run_validate(write_csv("date,id,val\n" + rows, name="daily.csv"))  # five days apart by a day: daily
    assert r.report.rows_quarantined == 0 and r.valid["ds"].max() == datetime(2024, 3, 5)
    r = run_validate(write_csv("date,id,val\n99-12-31,a,1\n00-01-01,a,2\n", name="y.csv"))  # 99: a year
    assert r.report.rows_quarantined == 0 and r.valid["ds"].to_list() == [datetime(1999, 12, 31), datetime(2000, 1, 1)]
    r = run_validate(write_csv("date,id,val\n31-12-99,a,1\n13-01-99,a,2\n", name="d.csv"))  # 99 last: day first
    assert r.report.rows_quarantined == 0 and sorted(r.valid["ds"].to_list()) == [datetime(1999, 1, 13),
                                                                                  datetime(1999, 12, 31)]
    r = run_validate(write_csv("date,id,val\n" + "".join(f"{m}/1/24,a,{m}\n" for m in range(1, 13)) + "3/13/24,a,13\n",
                               name="us.csv"))  # slashes: a US M/D/YY export, read as before
    assert r.report.rows_quarantined == 0 and r.valid["ds"].max() == datetime(2024, 12, 1)


@pytest.mark.parametrize(("rows", "freq", "first", "last"), [
    ([f"24/03/{d:02d}" for d in range(1, 20)], "1d", datetime(2024, 3, 1), datetime(2024, 3, 19)),  # Japan's yy/mm/dd
    ([f"{y}/{m:02d}/01" for y in (24, 25) for m in range(1, 13)], "1mo", datetime(2024, 1, 1), datetime(2025, 12, 1)),
    ([f"24/03/01 {h:02d}:00" for h in range(24)] + ["24/03/02 00:00"], "1h", datetime(2024, 3, 1),
     datetime(2024, 3, 2)),
    ([f"{d:02d}/03/24" for d in range(1, 20)], "1d", datetime(2024, 3, 1), datetime(2024, 3, 19)),  # UK's dd/mm/yy
    ([f"{d:02d}.03.24" for d in range(1, 20)], "1d", datetime(2024, 3, 1), datetime(2024, 3, 19)),  # German dd.mm.yy
    # month ends, day first: read year first they would be the 24th of months of 2028-2031, days apart
    ([f"{calendar.monthrange(2000 + y, m)[1]}/{m:02d}/{y}" for y in range(20, 25) for m in range(1, 13)], "1mo",
     datetime(2020, 1, 1), datetime(2024, 12, 1)),
    (["99/12/30", "99/12/31", "00/01/01"], "1d", datetime(1999, 12, 30), datetime(2000, 1, 1)),  # 99 first: a year
    # newuser31: monthly, every number 12 or below: year first, day first and month first are all dates; the one
    # spaced by months wins (every row was quarantined: an order was returned only where the rows settled one)
    ([f"01.{m:02d}.{y}" for y in (10, 11, 12) for m in range(1, 13)], "1mo", datetime(2010, 1, 1),
     datetime(2012, 12, 1)),  # German dd.mm.yy, each month's 1st
    ([f"{m:02d}/01/{y}" for y in (10, 11) for m in range(1, 13)], "1mo", datetime(2010, 1, 1),
     datetime(2011, 12, 1)),  # US mm/dd/yy
])
def test_a_slashed_two_digit_year_is_first_or_last_as_the_spacing_of_the_dates_says(write_csv, rows, freq, first,
                                                                                    last):
    """Regression: '24/03/01' (a two-digit year first, as Japanese and Chinese exports write yy/mm/dd) was read day
    first, 24 March 2001: a daily file of March 2024 became 19 yearly dates (the run stopped on 'is it freq 1y?'),
    a monthly one collided in 2001. Where every value could have its year first or last, the column is read both
    ways and the one whose dates are spaced as the source's freq wins (a first number above 31 is a year);
    UK and German day-first files keep their reading."""
    r = run_validate(write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(rows))), freq=freq)
    assert r.report.rows_quarantined == 0 and r.report.rows_valid == len(rows)
    assert (r.valid["ds"].min(), r.valid["ds"].max()) == (first, last)


def test_a_slashed_two_digit_year_that_nothing_settles_is_quarantined_naming_both_formats(write_csv):
    """Two dates a year apart read day first, or a year and a day apart read year first: neither fits a daily
    source better, so the rows are quarantined naming the slashed formats."""
    r = run_validate(write_csv("date,id,val\n24/03/01,a,1\n25/03/02,a,2\n"))
    assert r.report.rows_valid == 0
    assert quarantined(r)[0][2] == ("time '24/03/01' does not parse as ISO-8601 (a two-digit year first or last? "
                                    "declare its time_format, e.g. --time-format '%y/%m/%d' or '%d/%m/%y'; "
                                    "time_format in [sources.NAME]; a four-digit year needs none)")


@pytest.mark.parametrize(("date", "formats"), [
    # every number 12 or below: year first, day first or month first; it named the first and last alone, so the
    # German dd.mm.yy that '01.02.10' is written in was the one format a reader was not offered
    ("01.02.10", "'%y.%m.%d', '%d.%m.%y' or '%m.%d.%y'"),
    ("01/02/10", "'%y/%m/%d', '%d/%m/%y' or '%m/%d/%y'"),
    ("24/03/01", "'%y/%m/%d' or '%d/%m/%y'"),  # a first number above 12: no month first
])
def test_a_two_digit_year_nothing_settles_is_told_every_format_that_reads_it(write_csv, date, formats):
    """newuser31: one date a day, a month or a year may each be first in is told the three formats."""
    r = run_validate(write_csv(f"date,id,val\n{date},a,1\n"))
    assert r.report.rows_valid == 0
    assert quarantined(r)[0][2] == (f"time '{date}' does not parse as ISO-8601 (a two-digit year first or last? "
                                    f"declare its time_format, e.g. --time-format {formats}; "
                                    "time_format in [sources.NAME]; a four-digit year needs none)")


def test_times_with_a_half_hour_offset_and_no_tz_are_told_to_declare_the_zone(write_csv):
    """Regression: hourly times written with India's offset ('2024-03-01T10:00+05:30') and no tz declared were all
    quarantined as "not on the 1h grid", with nothing saying why (04:30 UTC is between UTC's hours) or what to do:
    the reason now names the offset and the tz to declare; declared, every row is valid."""
    rows = "".join(f"2024-03-01T{h:02d}:00+05:30,a,{h}\n" for h in range(10, 14))
    r = run_validate(write_csv("date,id,val\n" + rows), freq="1h")
    assert r.report.rows_valid == 0
    assert quarantined(r)[0][2] == (
        "time '2024-03-01T10:00+05:30' is not on the 1h grid (its UTC offset +05:30 is not a whole hour and no time "
        "zone is declared, so the grid is UTC's: declare the source's tz, e.g. tz = \"Asia/Kolkata\" in "
        "[sources.NAME] or --tz Asia/Kolkata, and the grid follows its local time)")
    r = run_validate(write_csv("date,id,val\n" + rows, name="k.csv"), freq="1h", tz="Asia/Kolkata")
    assert r.report.rows_quarantined == 0 and r.report.rows_valid == 4


_BERLIN_6H = ("(the 6h grid keeps 6-hour steps from Europe/Berlin's standard time (+01:00) all year: in daylight "
              "saving (+02:00) the clock reads its points an hour later, so a time on the clock's own 6h grid is off "
              "it; periods of several hours do not follow daylight saving: forecast the data hourly (--freq 1h), or "
              "sum hourly rows into 6h periods of that grid (--aggregate sum))")


def _utc_6h(offset: str, zone: str) -> str:
    return (f"(its UTC offset is {offset} and no time zone is declared, so the 6h grid is UTC's, from 00:00 UTC: "
            f"declare the source's tz and the grid follows its standard time: --tz {zone} for {offset} all year, or "
            "the zone of your data)")


@pytest.mark.parametrize(("offset", "tz", "valid", "said"), [
    # +01:00 all year, no tz: UTC's 6h grid is an hour off every row; the fixed zone of the offset reads them all
    ("+01:00", None, 0, _utc_6h("+01:00", "Etc/GMT-1")),
    ("+01:00", "Etc/GMT-1", 8, None),
    ("-05:00", None, 0, _utc_6h("-05:00", "Etc/GMT+5")),
    ("+06:00", None, 8, None),  # a whole number of steps: on UTC's grid
    # Berlin's clock across the spring change, declared: its summer rows are off the standard-time grid, said why
    ("berlin", "Europe/Berlin", 8, _BERLIN_6H),
])
def test_times_off_a_grid_of_several_hours_by_their_offset_say_why(write_csv, offset, tz, valid, said):
    """tz29: 6-hourly times on the local clock (00:00, 06:00, 12:00, 18:00) written with their offset were quarantined
    as "not on the 6h grid" with nothing saying why: without a tz the grid is UTC's, which a +01:00 time is an hour
    off (the reason names the offset and its fixed zone, which reads them); with a tz of daylight saving the grid keeps
    fixed steps from its standard time, which the summer clock's 06:00 is an hour off (the reason says so and what
    works)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    if offset == "berlin":  # 27 March 2026 to 28 March 18:00 in +01:00, then 30 and 31 March in +02:00
        days = [datetime(2026, 3, d, h, tzinfo=ZoneInfo("Europe/Berlin")) for d in (27, 28, 30) for h in (0, 6, 12, 18)]
        times = [t.isoformat() for t in days[:-1]]
    else:
        times = [f"{datetime(2026, 1, 1) + timedelta(hours=6 * k):%Y-%m-%dT%H:%M:%S}{offset}" for k in range(8)]
    r = run_validate(write_csv("date,id,val\n" + "".join(f"{t},a,{k}\n" for k, t in enumerate(times))), freq="6h",
                     tz=tz)
    assert r.report.rows_valid == valid
    reasons = {reason for _, _, reason in quarantined(r)}
    if said is None:
        assert reasons == set()
    else:
        assert reasons and all(reason.endswith(" is not on the 6h grid " + said) for reason in reasons), reasons


_TOTALS_SAID = " (a totals row? it is not an observation: leave totals out of the export)"
_SUMMARY_SAID = " (a summary row? it is not an observation: leave summary rows out of the export)"
_NOTE_SAID = " (a note line? it is not an observation: leave notes and sources out of the rows)"


@pytest.mark.parametrize(("last", "said"), [
    ("Total,,1234", "time 'Total' does not parse as ISO-8601" + _TOTALS_SAID),
    (",Summe,1234", "time column 'date' is empty" + _TOTALS_SAID),
    (",Grand Total,1234", "time column 'date' is empty" + _TOTALS_SAID),
    (",a,1234", "time column 'date' is empty"),
    # newuser32: a spreadsheet's summary row of another statistic ('Average' under the time column)
    ("Average,,1234", "time 'Average' does not parse as ISO-8601" + _SUMMARY_SAID),
    ("Mittelwert,,1234", "time 'Mittelwert' does not parse as ISO-8601" + _SUMMARY_SAID),
    ("Max.,,1234", "time 'Max.' does not parse as ISO-8601" + _SUMMARY_SAID),
    (",Average,1234", "time column 'date' is empty" + _SUMMARY_SAID),
    # polish33: a footer note in the time column was said as unparsable alone
    ('"Source: Bureau of Labor Statistics, retrieved 2020-01-15",a,1234',
     "time 'Source: Bureau of Labor Statistics, retrieved 2020-01-15' does not parse as ISO-8601" + _NOTE_SAID),
    ("Note: preliminary,a,1234", "time 'Note: preliminary' does not parse as ISO-8601" + _NOTE_SAID),
    ("Data are seasonally adjusted,a,1", "time 'Data are seasonally adjusted' does not parse as ISO-8601" + _NOTE_SAID),
    # msg40: a footer note in an id column (the file's first column) was said as an empty time alone, and its text
    # counted as '1 series with every row quarantined'
    (",Source: Bureau of Labor Statistics,", "time column 'date' is empty" + _NOTE_SAID),
    ("retrieved 2020-01-15,Source: BLS,", "time 'retrieved 2020-01-15' does not parse as ISO-8601" + _NOTE_SAID),
    (",Bureau of Labor Statistics,", "time column 'date' is empty" + _NOTE_SAID),  # 4 words and no target value
    # a few words, or a colon after digits, are no note: said as before
    ("Mar-24,a,1", ("time 'Mar-24' does not parse as ISO-8601 (a month name and a two-digit year? declare its "
                   "time_format: --time-format '%b-%y')")),
    ('"Monday, January 1, 2024",a,1', ("time 'Monday, January 1, 2024' does not parse as ISO-8601 (a long date with its "
                                    "weekday? declare its time_format: --time-format '%A, %B %d, %Y')")),
    ("not a date,a,1", "time 'not a date' does not parse as ISO-8601"),
    ("Jan 5 10:30,a,1", "time 'Jan 5 10:30' does not parse as ISO-8601")])
def test_a_totals_row_is_quarantined_saying_what_it_is(write_csv, last, said):
    """Regression: a spreadsheet's totals row at the end of an export ('Total,,1234', or 'Summe' under the store
    column with no date) was quarantined as "time 'Total' does not parse" or "time column is empty", and its id
    listed as a series with every row quarantined, nothing saying it was the sheet's total; the reason says so."""
    r = run_validate(write_csv("date,id,val\n2024-01-01,a,1\n2024-01-02,a,2\n" + last + "\n"))
    assert r.report.rows_valid == 2 and quarantined(r)[0][2] == said
    assert r.report.series_quarantined == []  # 'Summe' is no series whose every row was quarantined


@pytest.mark.parametrize(("rows", "said"), [
    # wordsB46: the first row of the check named, and not the totals row below it the run's summary asks about
    ("2020-13-01,a,3\nTotal,,9\n", "- **time\\_unparsable**: 2 rows (a totals row?), e.g. source\\_row 2 (line 4 of "),
    ("Total,,9\n2020-13-01,a,3\n", "- **time\\_unparsable**: 2 rows, e.g. source\\_row 2 (line 4 of "),  # asked once
    ("2020-13-01,a,3\n", "- **time\\_unparsable**: 1 row, e.g. source\\_row 2 (line 4 of "),  # none to ask
])
def test_the_data_quality_report_asks_the_question_of_each_checks_rows(write_csv, rows, said):
    """The data-quality artifact names each failed check's first row ("time '2020-13-01' ..."); the questions its
    rows ask ('a totals row?', which the run's summary and log ask of the same data) it asks too, once."""
    r = run_validate(write_csv("date,id,val\n2020-01-01,a,1\n2020-02-01,a,2\n" + rows))
    (item,) = [line for line in r.report.to_markdown().splitlines() if line.startswith("- **time")]
    assert item.startswith(said), item


def test_the_report_keeps_the_question_each_checks_reasons_ask(write_csv):
    """msg40: the run's summary asks what the quarantined rows look like ('a totals row?'): per check, the questions
    its rows' reasons ask, the most frequent first (then the first in the file), at most 2; a reason asking none
    adds none."""
    rows = "date,id,val\n2024-01-01,a,1\n2024-01-02,a,12%\n,Total,9\n,Source: BLS,\n,Note: preliminary,\n,a,3\n"
    r = run_validate(write_csv(rows))
    assert r.report.checks["time_missing"] == 4 and len(r.report.checks) == 2, r.report.checks
    (y_check,) = set(r.report.checks) - {"time_missing"}
    assert r.report.check_hints == {"time_missing": ["a note line?", "a totals row?"],
                                    y_check: ["a currency or percent sign?"]}
    r = run_validate(write_csv(rows.replace(",Total,9", ",Total,9\n,Grand Total,8\n,Average,7"), name="c.csv"))
    assert r.report.check_hints["time_missing"] == ["a totals row?", "a note line?"]  # at most 2, the most frequent
    assert run_validate(write_csv("date,id,val\n2024-01-01,a,1\n,a,3\n", name="b.csv")).report.check_hints == {}


def test_the_runs_log_counts_each_check_with_its_question():
    """msg40: the run's log said 'time_missing=2' alone where the rows' reasons ask 'a totals row?'."""
    from flowcast.data.validate import checks_counted

    assert checks_counted({"time_missing": 2, "y_not_number": 1}, {"time_missing": ["a totals row?", "a note line?"]}) \
        == "time_missing=2 (a totals row? a note line?), y_not_number=1"
    assert checks_counted({"time_missing": 2}) == "time_missing=2"


def test_the_summary_the_log_and_the_report_ask_a_check_s_questions_in_one_wording(write_csv):
    """cache47: the run's summary (`cli.pipeline._quarantine_said`), its log (`checks_counted`) and the data-quality
    report (`_hints_said`) each joined a check's questions ('a totals row?') their own way. One function says them
    (`check_questions`), the report less one its example already asks."""
    from flowcast.cli.pipeline import _quarantine_said
    from flowcast.data.validate import check_questions, checks_counted

    assert check_questions(["a totals row?", "a note line?"]) == "a totals row? a note line?"
    assert check_questions(["a totals row?", "a note line?"], "row 3: 'Total' (a totals row? it is ...)") \
        == "a note line?"
    assert check_questions([]) == "" and check_questions(["a totals row?"], "(a totals row? ...)") == ""
    r = run_validate(write_csv("date,id,val\n2024-01-01,a,1\n,Total,9\n,Source: BLS,\n,a,3\n"))
    hints, checks = r.report.check_hints, r.report.checks
    asked = check_questions(hints["time_missing"])
    assert asked == "a totals row? a note line?" or asked == "a note line? a totals row?", asked
    assert f"time_missing=3 ({asked})" in checks_counted(checks, hints)
    assert f"3 time_missing: {asked}" in _quarantine_said({"quarantine_checks": checks, "quarantine_hints": hints})
    left = check_questions(hints["time_missing"], r.report.check_examples["time_missing"])
    assert left == "a note line?", left  # the example, a totals row, asks the other
    item = next(line for line in r.report.to_markdown().splitlines() if line.startswith("- **time\\_missing"))
    assert item.startswith(f"- **time\\_missing**: 3 rows ({left}), e.g. "), item


def test_an_id_of_four_words_on_a_row_with_a_value_is_no_note(write_csv):
    """A series named in 4 words whose row has a value and no time is a series' row, no note line (msg40)."""
    r = run_validate(write_csv("date,id,val\n2024-01-01,a,1\n,North East Region Store,5\n"))
    assert quarantined(r)[0][2] == "time column 'date' is empty"
    assert [e["unique_id"] for e in r.report.series_quarantined] == ["North East Region Store"]


@pytest.mark.parametrize("ids", [["id"], ["id", "dept"]])
def test_a_footer_note_in_an_id_column_is_no_series(write_csv, ids):
    """msg40: 'Source: Bureau of Labor Statistics' at the end of an export whose first column is the id (with no time:
    'Source: ...,,') was quarantined as an empty time, and listed as a series with every row quarantined; it is said
    as a note line, no series, and the counts reconcile. Several id columns join the key with '|'."""
    header = ",".join([*ids, "date", "val"])
    rows = "".join(f"{','.join([s] * len(ids))},2024-01-0{d},{d}\n" for s in "ab" for d in (1, 2))
    r = run_validate(write_csv(f"{header}\n{rows}Source: Bureau of Labor Statistics{',' * (len(ids) + 1)}\n"),
                     id_cols=ids)
    assert r.report.rows_valid == 4 and r.report.rows_quarantined == 1 and r.report.reconciled
    assert quarantined(r)[0][2] == "time column 'date' is empty" + _NOTE_SAID
    assert r.report.series_quarantined == [] and r.report.n_series == 2


def test_a_wide_files_series_named_as_a_total_makes_no_totals_row(write_csv):
    """newuser32: a wide file (BLS' 'Total Private' a column beside 'Mining') ending in a note line ('Source: BLS')
    had that line's row of 'Total Private' alone quarantined as "(a totals row? ...)": the series' name, the
    header, was taken for the row's totals label. A wide row's totals label is in its time column ('Total')."""
    r = run_validate(write_csv("date,Total Private,Mining\n2024-01-01,1,2\n2024-01-02,3,4\nTotal,4,6\n"
                               "Source: BLS,,\n"), layout="wide", id_cols=[], target_col="")
    reasons = sorted(r.quarantined["reason"].to_list())
    assert reasons == 2 * ["time 'Source: BLS' does not parse as ISO-8601" + _NOTE_SAID] + 2 * [
        "time 'Total' does not parse as ISO-8601" + _TOTALS_SAID], reasons


def test_a_series_named_as_a_total_is_pointed_out(write_csv):
    """Regression: a pivot export with a totals row per date ('2024-01-01,Total,3' beside the stores) was read as
    one more series, 'Total', forecast like the stores, and nothing said so (adding every series' forecasts then
    counts the stores twice). The data-quality report names such series; they are still forecast."""
    rows = "".join(f"2024-01-0{d},{s},{v}\n" for d in (1, 2) for s, v in (("a", 1), ("b", 2), ("Total", 3)))
    r = run_validate(write_csv("date,store,val\n" + rows), id_cols=["store"])
    assert r.report.totals_series == ["Total"] and r.report.n_series == 3 and r.report.rows_quarantined == 0
    assert "series named as a total ('Total'): if they are the sum of the other series" in r.report.to_markdown()
    r = run_validate(write_csv("date,store,val\n2024-01-01,Totalität,1\n2024-01-01,Sumatra,2\n", name="b.csv"),
                     id_cols=["store"])
    assert r.report.totals_series == []


def test_hours_in_a_column_of_their_own_are_named_in_the_duplicates_hint(write_csv):
    """Regression: hourly data exported as 'date,hour,id,y' (the time of day in a column of its own) had every
    row quarantined as duplicate_conflict, the hint suggesting aggregate = 'sum' (which would have summed the
    24 hours of each day into midnight) or 'check freq and the id columns'; it names the hour column and says to
    write one time column."""
    rows = "".join(f"2024-01-0{d},{h},a,{h}\n" for d in (1, 2) for h in range(24))
    r = run_validate(write_csv("date,hour,id,val\n" + rows), freq="1h")
    assert r.report.rows_valid == 0 and r.report.checks == {"duplicate_conflict": 48}
    assert r.hint == (" (the time of day in column 'hour', beside the date in 'date'? flowcast reads one time column: "
                      "write them as one, '2024-01-01 13:00')")
    # at a daily freq (read off the date column alone by a command given no --freq) it named aggregate alone
    # (newuser17): the hour column is named first, aggregate beside it
    r = run_validate(write_csv("date,hour,id,val\n" + rows), freq="1d")
    assert r.hint == (" (the time of day in column 'hour', beside the date in 'date'? flowcast reads one time column: "
                      "write them as one, '2024-01-01 13:00', with the freq of those times (--freq 1h); or, to combine "
                      "the rows of each period of freq '1d', give --aggregate sum, mean or last (the source's aggregate))")
    r = run_validate(write_csv("date,region,id,val\n" + rows), freq="1d")  # no clock column: as before
    assert r.hint.startswith(" (several rows per series and period: if they are rows of different series")


def test_epoch_milliseconds_read_with_time_format_s_are_quarantined_with_a_hint(write_csv):
    """Regression (new-user trial): epoch milliseconds (JavaScript's Date.getTime) given --time-format %s
    parsed as the year 54970 and failed the run with "ValueError: year 54970 is out of range"; they are
    quarantined, saying that %s reads seconds."""
    body = "1672531200,a,1\n1672617600,a,2\n1672704000000,a,3\n1672704000000000,a,4\n"
    r = run_validate(write_csv(HEADER + body), time_format="%s")
    assert quarantined(r) == [
        (2, "time_unparsable", ("time '1672704000000' does not parse as %s (Unix epoch milliseconds? %s reads "
                               "seconds: divide the column by 1000 or export the times as ISO-8601)")),
        (3, "time_unparsable", ("time '1672704000000000' does not parse as %s (Unix epoch microseconds? %s reads "
                               "seconds: divide the column by 1000000 or export the times as ISO-8601)")),
    ]
    assert r.report.rows_valid == 2 and r.report.rows_quarantined == 2


def test_id_columns_that_join_two_series_into_one_key_are_refused(write_csv):
    """Regression (new-user trial): store 'a|b' with item 'c' and store 'a' with item 'b|c' both joined into the key
    'a|b|c': one series, every row quarantined as "2 rows for (a/b/c, 2024-01-01) with different y values" (equal
    values: one dropped as a repeat). The error names both and the separator; ids holding '|' that do not collide
    read as before."""
    body = "".join(f"2020-01-0{d},a|b,c,{d}\n2020-01-0{d},a,b|c,{d + 10}\n" for d in (1, 2, 3))
    p = write_csv("date,store,item,val\n" + body)
    with pytest.raises(DataValidationError, match=re.escape(
            "the id columns store, item join different series into one key 'a|b|c': ('a', 'b|c') and ('a|b', 'c'); "
            "the key joins the columns with '|', which these id values contain")):
        run_validate(p, id_cols=["store", "item"])
    p = write_csv("date,store,item,val\n" + body.replace("a,b|c", "x,b|c"), name="fine.csv")
    r = run_validate(p, id_cols=["store", "item"])
    assert r.report.rows_valid == 6 and sorted(r.valid["unique_id"].unique()) == ["a|b|c", "x|b|c"]


def test_files_of_a_glob_that_each_settle_their_own_day_month_order_are_read_so(tmp_path):
    """Regression (new-user trial): a UK export ('13/01/2024') beside a US one ('01/13/2024') in one glob contradicted
    each other, and every day/month row of both was quarantined with a hint to declare one time_format, which would
    have misread one file. Each file that settles its order by its own rows is read in it; a file settling nothing
    alone stays quarantined with its hint."""
    (tmp_path / "uk.csv").write_text("date,id,val\n13/01/2024,london,1\n02/01/2024,london,2\n")
    (tmp_path / "us.csv").write_text("date,id,val\n01/13/2024,boston,3\n01/02/2024,boston,4\n")
    r = run_validate(tmp_path / "*.csv")
    assert r.report.rows_quarantined == 0
    got = {(u, d.date().isoformat()) for u, d in zip(r.valid["unique_id"], r.valid["ds"], strict=True)}
    assert got == {("london", "2024-01-13"), ("london", "2024-01-02"), ("boston", "2024-01-13"),
                   ("boston", "2024-01-02")}
    (tmp_path / "vague.csv").write_text("date,id,val\n03/04/2024,paris,5\n")
    r = run_validate(tmp_path / "*.csv")
    assert r.report.rows_valid == 4 and quarantined(r)[0][2].startswith(
        "time '03/04/2024' does not parse as ISO-8601 (day/month order is ambiguous")


def test_a_file_of_a_glob_that_settles_no_order_is_read_as_its_spacing_says(tmp_path):
    """Regression (new-user trial): a US export of 1-12 January ('01/02/2024': no number above 12 settles its order)
    beside a UK one that settles day first was read day first too, without a word: its 12 days became the first of
    12 months (the series then cut at its 'gaps'). A file that settles nothing alone takes the order its dates'
    spacing fits at freq where the other does not."""
    (tmp_path / "uk.csv").write_text("date,id,val\n" + "".join(f"{d:02d}/01/2024,london,{d}\n" for d in range(1, 21)))
    (tmp_path / "us.csv").write_text("date,id,val\n" + "".join(f"01/{d:02d}/2024,boston,{d}\n" for d in range(1, 13)))
    r = run_validate(tmp_path / "*.csv")
    assert r.report.rows_quarantined == 0
    boston = r.valid.filter(pl.col("unique_id") == "boston")["ds"].to_list()
    assert boston == [datetime(2024, 1, d) for d in range(1, 13)]
    assert r.valid.filter(pl.col("unique_id") == "london")["ds"].to_list() == [datetime(2024, 1, d) for d in range(1, 21)]


def test_a_row_with_more_fields_than_the_header_is_named_by_its_line(write_csv):
    """Regression (new-user trial): an amount written '$1,200.00' without quotes failed the read with "cannot read
    src.csv: found more fields than defined in 'Schema'", not saying where; the error names the line and its text,
    also after an Excel 'sep=;' line and in a gzipped file."""
    p = write_csv("month,id,val\n2024-01,a,1\n2024-02,a,\"1,100\"\n2024-03,a,$1,200.00\n")
    with pytest.raises(DataValidationError) as err:
        run_validate(p, time_col="month", freq="1mo")
    assert str(err.value) == (f"{p}: line 4 has 4 fields where the header has 3 ('2024-03,a,$1,200.00'): a value "
                              "holding the separator without quotes? ('$1,200.00', 'Widget, large': quote such values, "
                              "or export without thousands separators)")
    p = write_csv(gzip.compress(b"sep=;\nmonth;id;val\n2024-01;a;1\n2024-02;a;2;x\n"), name="semi.csv.gz")
    with pytest.raises(DataValidationError, match=re.escape("semi.csv.gz: line 4 has 4 fields where the header has 3 "
                                                            "('2024-02;a;2;x')")):
        run_validate(p, time_col="month", freq="1mo")


@pytest.mark.parametrize(("sep", "said"), [("\t", "a tab"), (",", "','")], ids=["tsv", "csv"])
def test_rows_ending_with_a_separator_the_header_lacks_are_told_so(write_csv, sep, said):
    """newuser47: a file whose data lines end with a separator (a tab) and whose header does not was told of a
    value holding the separator unquoted ('$1,200.00'), which it has none of: the fields beyond the header are
    empty, and the error says what makes them."""
    lines = [["month", "id", "val"], *([f"2024-0{m}", "a", str(m), ""] for m in range(1, 4))]
    p = write_csv("".join(sep.join(line) + "\n" for line in lines), name="t.csv")
    with pytest.raises(DataValidationError) as err:
        run_validate(p, time_col="month", freq="1mo")
    assert str(err.value) == (f"{p}: line 2 has 4 fields where the header has 3 ({sep.join(lines[1])!r}): each line "
                              f"ending with {said}, a separator its header does not end with? (remove it from the "
                              "lines, or end the header with it too)")


def test_fiscal_years_at_12mo_keep_the_month_they_are_labelled_with(write_csv):
    """Regression: years ending in June ('2023-06-30') at --freq 12mo (or 1y) were moved to 1 January, so the
    published forecasts were dated 2024-01-01, 2025-01-01 and no longer named the fiscal year. At '12mo' ('3mo',
    '2q') each series keeps its labelled month (as its first day, like '1mo'); a row off that series' grid is
    quarantined saying so. '1y' stays the calendar year."""
    rows = "".join(f"{y}-06-30,a,{y}\n" for y in range(2015, 2020)) + "2019-12-31,a,9\n"
    rows += "".join(f"{y}-03-31,b,{y}\n" for y in range(2015, 2020))  # another company's year ends in March
    p = write_csv("date,id,val\n" + rows)
    r = run_validate(p, freq="12mo")
    said = ("time '2019-12' is not on the 12mo grid of its series (every 12 months from the month most of its times "
            "fall in, labelled in June: a fiscal year ending in June?: the nearest are 2019-06 and 2020-06)")
    assert quarantined(r) == [(5, "off_grid", said)]
    months = r.valid.group_by("unique_id").agg(pl.col("ds").dt.month().unique()).sort("unique_id")
    assert months.rows() == [("a", [6]), ("b", [3])]
    assert run_validate(p, freq="1y").valid["ds"].dt.month().unique().to_list() == [1]


@pytest.mark.parametrize(("freq", "dates", "said"), [
    ("3mo", ["2023-02-28", "2023-05-31", "2023-08-31", "2023-11-30", "2024-02-29", "2024-04-30"],
     ("time '2024-04' is not on the 3mo grid of its series (every 3 months from the month most of its times fall in, "
     "labelled in Feb, May, Aug and Nov: the nearest are 2024-02 and 2024-05)")),
    ("2q", ["2022-03-31", "2022-09-30", "2023-03-31", "2023-09-30", "2023-12-31"],
     ("time '2023-12' is not on the 2q grid of its series (every 6 months from the month most of its times fall in, "
     "labelled in Mar and Sep: the nearest are 2023-09 and 2024-03)")),
    ("5mo", ["2023-01-31", "2023-06-30", "2023-11-30", "2024-02-29"],
     ("time '2024-02' is not on the 5mo grid of its series (every 5 months from the month most of its times fall in: "
     "the nearest are 2023-11 and 2024-04)")),
])
def test_a_row_off_a_multi_month_grid_names_the_months_its_series_is_labelled_in(write_csv, freq, dates, said):
    """Regression: a quarter labelled in April among quarters ending in February, May, August and November was
    quarantined as 'not on the 3mo grid of its series (every 3 months from the month most of its times fall in)':
    which months those were, and the grid dates either side, the user had to work out. The reason names them."""
    p = write_csv("date,id,val\n" + "".join(f"{d},a,{i}\n" for i, d in enumerate(dates)))
    r = run_validate(p, freq=freq)
    assert quarantined(r) == [(len(dates) - 1, "off_grid", said)]


@pytest.mark.parametrize(("freq", "horizon"), [("12mo", 6), ("4q", 6), ("3mo", 8), ("1y", 6)])
def test_the_default_horizon_of_a_multi_month_grid_is_its_calendar_equivalents(tmp_path, freq, horizon):
    """'12mo' (fiscal years) took the monthly default horizon, 12 years ahead; it is yearly data: 6."""
    from data_helpers import make_source

    from flowcast.config import load_settings
    from flowcast.data.preprocess import resolve_horizon

    assert resolve_horizon(load_settings(home=tmp_path), make_source(tmp_path / "x.csv", freq=freq)) == horizon


@pytest.mark.parametrize(("freq", "dates", "expected"), [
    # read day first they are 1-5 April (daily); month first, the 4th of January .. May
    ("1d", ["01/04/2024", "02/04/2024", "03/04/2024", "04/04/2024", "05/04/2024"],
     [datetime(2024, 4, d) for d in range(1, 6)]),
    # the same text at 1mo: the 4th of each month, read as its first day
    ("1mo", ["01/04/2024", "02/04/2024", "03/04/2024", "04/04/2024", "05/04/2024"],
     [datetime(2024, m, 1) for m in range(1, 6)]),
    # month first: 3-7 March (daily)
    ("1d", ["03/03/2024", "03/04/2024", "03/05/2024", "03/06/2024", "03/07/2024"],
     [datetime(2024, 3, d) for d in range(3, 8)]),
    ("1w", ["01/01/2024", "01/08/2024", "01/15/2024"], [datetime(2024, 1, d) for d in (1, 8, 15)]),
])
def test_ambiguous_day_month_dates_take_the_reading_the_declared_freq_fits(write_csv, freq, dates, expected):
    """Regression: dates whose day and month are both 12 or below ('03/04/2024': 3 April or 4 March?) were all
    quarantined as ambiguous even when only one reading is spaced as the declared --freq says. That reading is
    taken; where both are (or neither), the rows stay quarantined with the hint to declare a time_format."""
    p = write_csv("date,id,val\n" + "".join(f"{d},a,{i}\n" for i, d in enumerate(dates)))
    r = run_validate(p, freq=freq)
    assert r.quarantined.height == 0 and r.valid["ds"].to_list() == expected


def test_day_month_dates_both_readings_fit_stay_quarantined_naming_the_formats(write_csv):
    p = write_csv("date,id,val\n03/04/2024,a,1\n04/03/2024,a,2\n")
    r = run_validate(p, freq="1d")
    assert [c for _, c, _ in quarantined(r)] == ["time_unparsable"] * 2
    assert all("declare its time_format, e.g. --time-format '%d/%m/%Y' or '%m/%d/%Y'" in why
               for _, _, why in quarantined(r))


@pytest.mark.parametrize(("uid", "shown"), [("A|B", "A\\|B"), ("*promo*", "\\*promo\\*"), ("<EU>", "&lt;EU&gt;")])
def test_the_reports_excluded_series_table_shows_any_id_as_written(write_csv, uid, shown):
    """Regression: a series id with '|' split the report's excluded-series row into three columns, '*promo*'
    rendered as an italic 'promo' and '<EU>' vanished as an HTML tag."""
    md = run_validate(write_csv(HEADER + GOOD + f'2020-01-01,"{uid}",x\n')).report.to_markdown()
    row = next(line for line in md.splitlines() if line.endswith("(y\\_not\\_number=1)"))
    assert row == f"- **{shown}**: every row quarantined (y\\_not\\_number=1)", md  # ui19: a list, not a table


@pytest.mark.parametrize(("ids", "field", "groups"), [
    (["007", "7"], "zero_padded_ids", [["007", "7"]]),
    (["007", "07", "7", "8"], "zero_padded_ids", [["007", "07", "7"]]),
    (["0", "00"], "zero_padded_ids", [["0", "00"]]),
    (["7", "70"], "zero_padded_ids", []),
    (["A7", "A07"], "zero_padded_ids", []),
    # pandas writes integer ids with a missing value as floats: '7.0' beside another export's '7' (newuser17)
    (["7.0", "7", "8"], "zero_padded_ids", [["7", "7.0"]]),
    (["0.0", "0", "007.00", "7.5", "75"], "zero_padded_ids", [["0", "0.0"]]),
    (["007.5", "7.5"], "zero_padded_ids", [["007.5", "7.5"]]),
    (["Store A", "STORE A"], "case_ids", [["STORE A", "Store A"]]),
    (["sku-1", "SKU-1", "Sku-1", "sku-2"], "case_ids", [["SKU-1", "Sku-1", "sku-1"]]),
    (["a", "b"], "case_ids", []),
    (["Café", "CAFÉ"], "case_ids", [["CAFÉ", "Café"]]),
])
def test_ids_equal_but_for_leading_zeros_or_letter_case_are_kept_and_named(write_csv, ids, field, groups):
    """Regression: '007' in some rows and '7' in others (a spreadsheet dropped the zeros), or 'Store A' and 'STORE
    A' (two systems, an export that changed), were two series of part of the dates each and nothing said so. They
    are still kept as written (read as text, never as numbers), and the report names them."""
    body = "".join(f"2020-01-0{d},{u},{d}\n" for u in ids for d in (1, 2, 3))
    r = run_validate(write_csv(HEADER + body))
    assert r.report.n_series == len(ids) and r.report.reconciled
    assert getattr(r.report, field) == groups
    md = r.report.to_markdown()
    by = ("letter case" if field == "case_ids" else "leading zeros or a trailing '.0'" if "." in "".join(ids)
          and ids != ["007.5", "7.5"] else "leading zeros")
    assert (f"differ only by {by} (" in md) == bool(groups)
    if groups:
        assert " / ".join(repr(u) for u in groups[0]) in md


@pytest.mark.parametrize(("groups", "by"), [
    ([["007", "7"]], "leading zeros"),
    ([["7", "7.0"]], "leading zeros or a trailing '.0'"),
    ([["7.00", "007"]], "leading zeros or a trailing '.0'"),
    ([["007.5", "7.5"]], "leading zeros"),  # a dot, but no '.0' between them
    ([["007.0", "7.0"]], "leading zeros"),  # both end in '.0': they differ by the zeros alone
    ([["007.5", "7.5"], ["8", "8.0"]], "leading zeros or a trailing '.0'"),
])
def test_the_zero_padded_ids_hint_mentions_a_trailing_0_only_where_it_applies(groups, by):
    """Regression (polish19): the hint said 'leading zeros or a trailing '.0'' (and explained pandas' floats)
    whenever an id held a dot: '007.5' / '7.5' differ by their leading zeros alone."""
    from flowcast.data.validate import zero_padded_ids_line

    line = zero_padded_ids_line(groups)
    assert f"differ only by {by} (" in line, line
    assert ("pandas writes" in line) is ("'.0'" in by)


def test_swiss_thousands_are_read_in_a_target_a_covariate_and_a_static(write_csv):
    """Regression: '1'234.5' (Swiss thousands: an apostrophe between groups of three digits) was quarantined in a
    target or covariate (a static: test_statics); it is 1234.5 wherever a number is read."""
    r = run_validate(write_csv("date,id,val,promo\n2020-01-01,a,1'234.5,2\u2019000\n2020-01-02,a,7,1\n"),
                     past_cols=["promo"])
    assert r.valid.select("y", "promo").rows() == [(1234.5, 2000.0), (7.0, 1.0)] and r.report.rows_quarantined == 0


def test_indian_grouping_of_a_semicolon_file_is_quarantined_with_a_hint(write_csv):
    """In a ';' file (',' its decimal mark) '1,23,456' is read by nobody: quarantined, saying it has thousands
    separators (it had no hint)."""
    r = run_validate(write_csv("date;id;val\n2020-01-01;a;1\n2020-01-02;a;1,23,456\n"))
    assert quarantined(r) == [(1, "y_not_number",
                               "val '1,23,456' is not a number (thousands separators? export numbers without them)")]


def test_ids_split_by_case_are_named_where_one_half_was_quarantined(write_csv):
    """A series written 's0' on some days and 'S0' on the others: where one spelling's every row is quarantined
    (here off the grid its days set), the report still names the pair, with the quarantined rows' ids."""
    body = "".join(f"2020-01-{d:02d},{'s0' if d % 2 else 'S0'},{d}\n" for d in range(1, 21))
    r = run_validate(write_csv(HEADER + body), freq="2d")
    assert r.report.rows_quarantined == 10 and r.report.reconciled
    assert r.report.case_ids == [["S0", "s0"]]


@pytest.mark.parametrize("role", ["static_cols", "past_cols", "future_cols"])
def test_a_declared_covariate_with_no_value_at_all_is_said(write_csv, role):
    """Regression: a declared covariate whose column is empty on every row (an export that left it unfilled) was
    filled with 0 (past, future) or missing for every series (static) and the run said only how many values it
    filled ('allnull: 180'), not that the column held nothing: the network read nothing from it. The data-quality
    report names it; a column with a value is not named."""
    p = write_csv("date,id,val,empty,price\n2020-01-01,a,1,,2.5\n2020-01-02,a,2,,\n2020-01-01,b,3,,\n")
    r = run_validate(p, **{role: ["empty", "price"]})
    assert r.report.empty_covariates == ["empty"]
    assert r.report.to_dict()["empty_covariates"] == ["empty"]
    md = " ".join(r.report.to_markdown().split())
    assert ("declared covariate 'empty' has no value on any row (the column is empty): a network reads nothing from "
            "it") in md
    assert run_validate(p, **{role: ["price"]}).report.empty_covariates == []


@pytest.mark.parametrize(("role", "column", "value", "shown"), [
    *[(role, column, value, shown) for role in ("static_cols", "past_cols", "future_cols")
      for column, value, shown in [("0,0,0", 0, "0 on every row"), ("2.5,2.5,2.5", 2.5, "2.5 on every row")]],
    ("static_cols", "north,north,north", "north", "'north' on every row"),  # past and future covariates are numbers
])
def test_a_declared_covariate_of_one_value_on_every_row_is_said(write_csv, role, column, value, shown):
    """Regression: a declared covariate of one and the same value on every valid row (a promo flag 0 everywhere, one
    region for every series) carries no information, and the run used it without a word, where an empty one was said
    (`empty_covariates`). The data-quality report names it with its value; a column that varies, or one with an empty
    cell beside its value (filled, not constant), or an empty one (said as such) is not named."""
    a, b, c = column.split(",")
    p = write_csv(f"date,id,val,flat,varies,gappy,empty\n2020-01-01,a,1,{a},1,{a},\n2020-01-02,a,2,{b},2,,\n"
                  f"2020-01-01,b,3,{c},1,{c},\n")
    if role == "static_cols" and not isinstance(value, str):  # a static keeps its text as written
        value, shown = str(value), f"{str(value)!r} on every row"
    r = run_validate(p, **{role: ["flat", "varies", "gappy", "empty"]})
    assert r.report.constant_covariates == {"flat": value}
    assert r.report.to_dict()["constant_covariates"] == {"flat": value}
    assert r.report.empty_covariates == ["empty"]
    md = " ".join(r.report.to_markdown().split())
    assert (f"declared covariate 'flat' ({shown}) is constant: it carries no information, a network learns nothing "
            "from it") in md
    assert run_validate(p, **{role: ["varies"]}).report.constant_covariates == {}


def test_a_static_of_a_single_series_is_not_called_constant(write_csv):
    """A static is one value per series: in a file of one series it is constant by definition, and saying so on every
    run of a single-series file would be noise. A past covariate of one value there still is said."""
    p = write_csv("date,id,val,region,promo\n2020-01-01,a,1,north,0\n2020-01-02,a,2,north,0\n2020-01-03,a,3,north,0\n")
    assert run_validate(p, static_cols=["region"], past_cols=["promo"]).report.constant_covariates == {"promo": 0}


@pytest.mark.parametrize(("body", "checks"), [
    ("2024-01-01,a,abc\n2024-01-02,a,x\n", {"y_not_number": 2}),
    ("2024-13-45,a,1\nfoo,a,2\n", {"time_unparsable": 2}),
    ("2024-01-01,a,1\n2024-01-01,a,2\n", {"duplicate_conflict": 2}),
])
def test_no_valid_rows_left_names_the_quarantine_file(write_csv, tmp_path, body, checks):
    """Regression: 'no valid rows left: all 2 rows quarantined ...' said where the rows and their reasons were nowhere
    (the threshold's error did: '; see PATH'): a scheduled run's failed state named no file. It ends with the path
    the run wrote them to (before where to read each check's rows and reasons), the file holds every row in with its
    reason."""
    r = run_validate(write_csv(HEADER + body))
    path = write_quarantine(r, tmp_path / "q" / "all")
    assert r.report.checks == checks and path is not None
    with pytest.raises(DataValidationError) as err:
        enforce_thresholds(r, ValidationConfig(), artifact=None)
    assert str(err.value).startswith("source 't': no valid rows left: all 2 rows quarantined")
    assert f"; see {path}; to mend them" in str(err.value), str(err.value)
    q = pl.read_parquet(path)
    assert q.height == r.report.rows_in == 2 and q["reason"].null_count() == 0


@pytest.mark.parametrize(("text", "as_of", "said"), [
    (HEADER, None, "src.csv: no rows (the file has a header but no data)"),
    (HEADER + "2024-01-01,a,abc\n", None, "no valid rows left: all 1 row quarantined (y_not_number=1)"),
    (HEADER + "2024-01-01,a,1\n", datetime(2023, 1, 1), "all 1 rows are after as_of=2023-01-01"),
    (HEADER + "2024-01-01,a,1\n", None, None),
])
def test_nothing_to_run_keeps_the_quarantine_of_a_source_with_every_row_quarantined(write_csv, tmp_path, text,
                                                                                    as_of, said):
    """`nothing_to_run(keep=...)` (the check before Prefect starts) hands the result over to be written only when
    every row is quarantined, with the run key the run's quarantine folder has (`as_of_label`); its error then
    names the file `keep` wrote. A header alone, an as_of before the data or a clean file: nothing to keep."""
    from flowcast.data.validate import nothing_to_run, quarantine_folder

    kept: list[str] = []

    def keep(result, run_key):
        kept.append(run_key)
        write_quarantine(result, quarantine_folder(tmp_path / "q", "t", run_key))

    got = nothing_to_run(make_source(write_csv(text)), as_of, ValidationConfig(), keep=keep)
    if said is None:
        assert got is None and not kept
        return
    assert said in got
    if "quarantined" not in said:
        assert not kept
        return
    assert kept == ["all"]
    assert f"; see {tmp_path / 'q' / 't' / 'all' / 'quarantine.parquet'}; to mend them" in got, got


@pytest.mark.parametrize(("zones", "tz", "said"), [
    (["Europe/Berlin", "Europe/Berlin"], None, ("column 'tz' holds the time zone Europe/Berlin: if its times are "
     "Europe/Berlin's, declare it (--tz Europe/Berlin; tz = 'Europe/Berlin' in [sources.NAME])")),
    (["Europe/Berlin", "America/New_York"], None, ("column 'tz' holds several time zones (America/New_York, "
     "Europe/Berlin): a source has one tz")),
    (["Europe/Berlin", "Europe/Berlin"], "Europe/Paris", "column 'tz' holds the time zone Europe/Berlin"),
    (["Europe/Berlin", "Europe/Berlin"], "Europe/Berlin", None),  # the zone declared: nothing to say
    (["UTC", "UTC"], None, None),  # read as UTC already
])
def test_a_column_of_time_zone_names_is_said_to_be_no_zone_of_the_times(write_csv, zones, tz, said):
    """Regression (newuser21): hourly local times beside a `tz` column of 'Europe/Berlin' were read as UTC; the
    report listed 'tz' among the undeclared columns with advice to declare it a covariate, and nothing said that a
    zone is the source's tz, never read from a column. The report names the column, its zone(s) and the --tz to
    declare; a text column of other words is not named."""
    p = write_csv("time,id,val,tz,note\n"
                  f"2024-10-20 02:00,a,1,{zones[0]},GB\n2024-10-20 03:00,a,2,{zones[1]},Japan\n")
    r = run_validate(p, time_col="time", freq="1h", tz=tz)
    md = " ".join(r.report.to_markdown().split())
    if said is None:
        assert "time zones:" not in md, md
        return
    assert r.report.zone_columns == {"tz": sorted(set(zones))}
    assert said in md, md
    assert ("A zone is never read from a column: the source's tz "
            f"({tz or 'none declared: UTC'}) is the zone of the times written without a UTC offset") in md, md
    assert "'note'" not in md.split("time zones:")[1], md  # 'GB', 'Japan': zone names too, but no zone's shape


@pytest.mark.parametrize(("times", "tz", "zone"), [
    (["2024-10-27T01:00:00+02:00", "2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"], None, "Europe/Berlin"),
    (["2024-11-03 00:00-0400", "2024-11-03 01:00-0400", "2024-11-03 01:00-0500"], None, "America/New_York"),
    (["2024-10-27T01:00:00+02:00", "2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"], "Europe/Berlin", None),
    (["2024-10-27T01:00:00+01:00", "2024-10-27T02:00:00+01:00", "2024-10-27T03:00:00+01:00"], None, None),  # one
    (["2024-10-27T01:00:00+05:30", "2024-10-27T02:00:00+00:00", "2024-10-27T03:00:00+00:00"], None, None),  # no zone's
])
def test_times_with_the_offsets_of_a_zones_daylight_saving_and_no_tz_name_the_zone(write_csv, times, tz, zone):
    """Regression (newuser21): hourly local times exported with their offsets (+02:00 in summer, +01:00 in winter) and
    no tz declared were read as the right instants, but their calendar features (hour of day, weekday) were UTC's,
    which the local clock moves an hour against twice a year, and nothing said so. The report names the offsets, the
    zone they follow and the --tz to declare; a tz declared, one offset, or offsets of no zone say nothing."""
    p = write_csv("time,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(times)))
    r = run_validate(p, time_col="time", freq="1h", tz=tz)
    md = " ".join(r.report.to_markdown().split())
    if zone is None:
        assert r.report.offsets_zone is None and "time zone:" not in md, md
        return
    assert f"which follow the daylight saving of {zone}" in md, md
    assert f"declare it (--tz {zone}; tz = '{zone}' in [sources.NAME])" in md, md
    assert "calendar features (hour of day, weekday) are UTC's" in md, md


_BERLIN_AUTUMN = ["2024-10-27T01:00:00+02:00", "2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]
_NEW_YORK_AUTUMN = ["2024-11-03T00:00:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00"]


@pytest.mark.parametrize(("series", "zones"), [
    # Berlin's series beside New York's: both zones, a source of each
    ({"be": _BERLIN_AUTUMN, "ny": _NEW_YORK_AUTUMN}, ["Europe/Berlin", "America/New_York"]),
    # and a Tokyo series of one offset (no daylight saving to tell): the two zones still
    ({"be": _BERLIN_AUTUMN, "ny": _NEW_YORK_AUTUMN, "tk": ["2024-10-27T09:00:00+09:00", "2024-10-27T10:00:00+09:00"]},
     ["Europe/Berlin", "America/New_York"]),
    # Berlin's series beside series of one offset each: one zone is no file of several (nothing said, as before)
    ({"be": _BERLIN_AUTUMN, "tk": ["2024-10-27T09:00:00+09:00", "2024-10-27T10:00:00+09:00"]}, None),
    # every series in one offset: nothing tells a clock
    ({"a": ["2024-10-27T01:00:00+01:00"], "b": ["2024-10-27T01:00:00-05:00"]}, None),
])
def test_times_of_several_zones_daylight_saving_in_one_file_name_the_zones(write_csv, series, zones):
    """tz29: a file mixing zones (Berlin's series, +02:00 then +01:00, beside New York's, -04:00 then -05:00) and no
    tz: no one zone keeps every offset, and nothing was said, though every series' calendar features are UTC's hours.
    The report names the zones (a series of each) and a source per zone, each with its tz."""
    p = write_csv("time,id,val\n" + "".join(f"{t},{uid},{i}\n" for uid, ts in series.items()
                                             for i, t in enumerate(ts)))
    r = run_validate(p, time_col="time", freq="1h")
    md = " ".join(r.report.to_markdown().split())
    if zones is None:
        assert r.report.offsets_zone is None and "time zone:" not in md, md
        return
    named = ", ".join(f"{z} (series {uid!r})" for z, uid in zip(zones, series, strict=False))
    assert f"which follow the daylight saving of several zones: {named}" in md, md
    assert ("make a source of each zone's series, each with its tz (" + "; ".join(f"--tz {z}" for z in zones) + ")"
            in md), md


@pytest.mark.parametrize(("offset", "tz", "as_of", "last", "planned"), [
    # 1 March at -05:00 begins at 05:00 UTC: planned at midnight UTC (a date alone), though its date is as_of's
    ("-05:00", None, "2024-03-01", "2024-02-29", 2),
    # 1 March at +05:00 began at 19:00 UTC the day before: observed at 20:00 UTC, though its date is after as_of's
    ("+05:00", None, datetime(2024, 2, 29, 20, tzinfo=UTC), "2024-03-01", 1),
    ("+05:00", "America/New_York", datetime(2024, 2, 29, 20, tzinfo=UTC), "2024-03-01", 1),  # 15:00 in New York
    ("-05:00", "Asia/Tokyo", "2024-03-01", "2024-02-29", 2),  # 1 March -05:00 is 14:00 in Tokyo, after its midnight
    ("", None, "2024-03-01", "2024-03-01", 1),  # dates alone: by date, as before
])
def test_report_counts_planned_rows_by_the_instant_ingest_cut_them_by(write_csv, offset, tz, as_of, last, planned):
    """pit22: the report told a planned row (after as_of, kept for its future covariate) from an observation by its
    date against as_of's wall time, not by the rule ingest cut it by (`observed_at`, a daily time with an offset seen
    from the instant it names): '2024-03-01T00:00:00-05:00', planned at a run at midnight UTC, was counted a missing
    value (its target is ignored) and the data's last date; '2024-03-01T00:00:00+05:00', observed at 20:00 UTC the
    day before, was left out of the dates observed."""
    time = "T00:00:00" if offset else ""
    rows = "".join(f"2024-{d}{time}{offset},a,{i},{i % 2}\n"
                   for i, d in enumerate(["02-27", "02-28", "02-29", "03-01", "03-02"], start=1))
    report = run_validate(write_csv("date,id,val,promo\n" + rows), as_of, tz=tz, future_cols=["promo"]).report
    assert (report.rows_planned, report.rows_valid) == (planned, 5)
    assert (report.ds_min, report.ds_max) == ("2024-02-27 00:00:00", f"{last} 00:00:00")
    assert report.rows_null_y == 0  # a planned row's target is ignored, not missing


@pytest.mark.parametrize(("zone", "first", "as_of", "counts", "dates"), [
    # New York, the hours of 31 October to 3 November 2025, across the autumn change; as_of 07:00 EST on 2 November
    # (12:00 UTC): 2 November (25 hours) is not over, its 9 hours by as_of without a promo are cut with it; its other
    # 16 hours and 3 November's 24 are planned
    ("America/New_York", date(2025, 10, 31), datetime(2025, 11, 2, 12, tzinfo=UTC), (40, 88, 9),
     ("2025-10-31", "2025-11-01")),
    # London, 28 to 31 March 2025, across the spring change (30 March, 23 hours); as_of 00:30 BST on 31 March (23:30
    # UTC on 30 March): 30 March is over (at 23:00 UTC), 31 March has begun: its first hour, by as_of and without a
    # promo, is cut; its other 23 are planned
    ("Europe/London", date(2025, 3, 28), datetime(2025, 3, 30, 23, 30, tzinfo=UTC), (23, 94, 1),
     ("2025-03-28", "2025-03-30")),
])
def test_planned_rows_of_an_aggregated_source_are_the_ones_ingest_cut_by_its_window(write_csv, zone, first, as_of,
                                                                                    counts, dates):
    """The report's observations leave out the (series, period) keys of the planned rows by the window ingest cut the
    periods by (`Ingested.not_over`, the column `__not_over`), not by a second window over the rows it kept: hours
    written with their offset across a daylight-saving change, summed to days, with a planned promo on every hour
    but those by as_of of the period not over then. Planned, valid and partial-period rows and the dates observed
    are the same as with the window computed again."""
    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    lines, t = [], midnight(first)
    while t < midnight(first + timedelta(days=4)):
        day_open = t.astimezone(ZoneInfo(zone)).date() == as_of.astimezone(ZoneInfo(zone)).date() and t <= as_of
        lines.append(f"{t.astimezone(ZoneInfo(zone)).isoformat()},a,1.0,{'' if day_open else 1}\n")
        t += timedelta(hours=1)
    report = run_validate(write_csv("time,id,val,promo\n" + "".join(lines)), as_of, time_col="time",
                          aggregate="sum", future_cols=["promo"]).report
    assert (report.rows_planned, report.rows_valid, report.rows_partial_period) == counts, report
    assert (report.ds_min, report.ds_max) == tuple(f"{d} 00:00:00" for d in dates)
    assert report.rows_null_y == 0  # a planned row's target is ignored, not missing


@pytest.mark.parametrize(("short", "ids", "cell"), [
    (2, ["A|B", "*promo*"], "2 (A\\|B, \\*promo\\*)"),  # ids as written, escaped (md_text)
    (7, ["a", "b", "c", "d", "e"], "7 (a, b, c, d, e and 2 more)"),
    (3, None, "3"),  # a summary cached by an older flowcast: counted only
])
def test_the_quality_report_names_the_series_too_short_for_a_network(short, ids, cell):
    """ui25: the data-quality row 'series too short for a network' counted them without naming one."""
    from flowcast.data.validate import DataQualityReport

    report = DataQualityReport(source="s", as_of="2026-12-03")
    report.preprocess = {"network_short": short, "network_short_ids": ids}
    assert f"| series too short for a network (statistical models forecast them) | {cell} |" in report.to_markdown()


@pytest.mark.parametrize(("n", "groups", "times", "blanks", "keys"), [
    (1, "1 group of series ids differ only by letter case (", "1 local time that", "only 1 blank line)", ";"),
    (2, "2 groups of series ids differ only by letter case (", "2 local times that", "only 2 blank lines)",
     " (and 1 other key);"),
    (3, "3 groups of series ids differ only by letter case (", "3 local times that", "only 3 blank lines)",
     " (and 2 other keys);"),
])
def test_validate_says_the_counts_it_knows_in_words(write_csv, n, groups, times, blanks, keys):
    """plurals27: validate's lines said '1 group(s) of series ids', '1 local time(s)', 'only 1 blank line(s)'
    and '(and 1 other key(s))' of counts they knew."""
    from flowcast.data.validate import case_ids_line, standard_time_line

    assert case_ids_line([[f"s{k}", f"S{k}"] for k in range(n)]).startswith(groups)
    assert (standard_time_line({"time_nonexistent": n}, "Australia/Melbourne") or "").startswith(times)
    with pytest.raises(DataValidationError, match=re.escape(f"but no data, {blanks}")):
        run_validate(write_csv(HEADER + " \n" * n))
    body = "".join(f"2020-01-0{d},{a}|{b},c,{d}\n2020-01-0{d},{a},{b}|c,{d}\n" for d in (1, 2)
                   for a, b in ("ab", "de", "gh")[:n])  # n keys ('a|b|c', ...) that two series each join into
    with pytest.raises(DataValidationError) as err:
        run_validate(write_csv("date,store,item,val\n" + body, name="joined.csv"), id_cols=["store", "item"])
    assert f"('a|b', 'c'){keys} the key joins" in str(err.value), str(err.value)


@pytest.mark.parametrize(("times", "said"), [
    # polish30: a quarterly file written year-number was read as January to April of each year without a word
    ([f"{y}-{q}" for y in (2017, 2018, 2019) for q in range(1, 5)],
     ("every value of the time column 'date' is a year and a number 1 to 4 ('2017-1' .. '2019-4'), read as a month: "
     "'2017-1' is 2017-01-01, and no month after April is written. If they are quarters, write them '2017Q1'")),
    ([f"{y}-0{q}" for y in (2017, 2018) for q in range(1, 5)],
     "('2017-01' .. '2018-04'), read as a month: '2017-01' is 2017-01-01"),
    ([f"2017-{q}" for q in range(1, 5)], None),  # one year: four months as likely as four quarters
    ([f"{y}-{m}" for y in (2017, 2018) for m in range(1, 6)], None),  # a May: months
    ([f"{y}-{q}-01" for y in (2017, 2018) for q in range(1, 5)], None),  # with a day: dates
])
def test_times_of_a_year_and_a_number_1_to_4_alone_are_said_to_be_maybe_quarters(write_csv, times, said):
    body = "".join(f"{t},{uid},{i}\n" for uid in ("a", "b") for i, t in enumerate(times))
    report = run_validate(write_csv(HEADER + body), freq="1mo").report
    assert report.rows_valid == 2 * len(times)  # read as months all the same: said, not refused
    md = " ".join(report.to_markdown().split())
    if said is None:
        assert report.quarter_note is None and "times:" not in md
    else:
        assert report.quarter_note is not None and said in report.quarter_note
        assert "times: " in md and "(--freq 1q); no --time-format reads a quarter" in report.quarter_note
    # a declared time_format is the file's word on its times: nothing to say
    assert run_validate(write_csv(HEADER + body), freq="1mo", time_format="%Y-%m").report.quarter_note is None


@pytest.mark.parametrize("repeats", [1, 3, 10])
def test_exact_duplicates_are_dropped_and_counted_not_quarantined(write_csv, repeats):
    """data43: an exact repeat of a row (same series, time, target and covariates) loses nothing: one copy is kept,
    the others are counted as exact duplicates dropped, apart from the quarantine, and never toward the threshold
    (3 repeats of 20 rows, 15 % > 5 %, failed the run). rows in = valid + quarantined + exact duplicates dropped."""
    body = "".join(f"2020-01-{d:02d},a,{d}\n" for d in range(1, 21))
    p = write_csv(HEADER + body + "2020-01-05,a,5\n" * repeats)
    r = run_validate(p, threshold=0.05)
    rep = r.report
    assert (rep.rows_in, rep.rows_valid, rep.rows_quarantined, rep.rows_duplicate) == (20 + repeats, 20, 0, repeats)
    assert rep.reconciled and rep.checks == {} and r.quarantined.height == 0 and rep.quarantine_rate == 0
    assert r.valid["y"].to_list() == [float(d) for d in range(1, 21)]
    enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact=None)  # does not raise
    assert rep.duplicate_example == (f"source_row 20 (line 22 of {p}): repeat of an earlier row for (a, 2020-01-05) "
                                     "with the same y")
    md = rep.to_markdown()
    assert f"| exact duplicate rows dropped (one copy kept) | {repeats:,} |" in md
    assert "rows in = valid + quarantined + exact duplicates dropped: yes" in md
    assert f"{repeats:,} exact {'duplicate' if repeats == 1 else 'duplicates'} dropped" in rep.summary_sentence()
    assert rep.to_dict()["rows_duplicate"] == repeats


def test_two_observations_in_one_period_with_equal_y_are_no_exact_duplicate(write_csv):
    """revC43: two rows read into one daily period from different times of day (09:00 and 15:00: data finer than the
    freq, no aggregate) are two observations, not one row written twice: equal in y they were dropped as an exact
    duplicate (the sum of the day silently halved, 'the file looks appended twice'); they conflict like rows whose
    y differs, every row quarantined, the reason naming the times."""
    p = write_csv(HEADER + "2020-01-01 09:00,a,1\n2020-01-02 09:00,a,5\n2020-01-02 15:00,a,5\n")
    r = run_validate(p, freq="1d")
    rep = r.report
    assert (rep.rows_in, rep.rows_valid, rep.rows_quarantined, rep.rows_duplicate) == (3, 1, 2, 0) and rep.reconciled
    assert rep.checks == {"duplicate_conflict": 2}
    assert quarantined(r)[0][2] == ("2 rows for (a, 2020-01-02) with different time values (2020-01-02 09:00 / "
                                    "2020-01-02 15:00)")


@pytest.mark.parametrize(("freq", "valid", "duplicate", "said"), [
    # sub-daily: the time between two grid points is off the grid, and a key's valid rows share their time (validate
    # holds no raw time beside ds for them): the same instant written two ways is one row written twice
    ("1h", 2, 1, [(3, "off_grid", "time '2020-01-02 09:30' is not on the 1h grid")]),
    # daily: the three times of day are observations of one period, the reason naming them
    ("1d", 1, 0, [(i, "duplicate_conflict", ("3 rows for (a, 2020-01-02) with different time values (2020-01-02 "
                                             "09:00 / 2020-01-02 09:30)")) for i in (1, 2, 3)]),
])
def test_a_time_written_twice_is_told_from_times_of_one_period(write_csv, freq, valid, duplicate, said):
    """A key's rows whose raw times differ are no exact duplicate where the period holds several times (mem45)."""
    p = write_csv(HEADER + "2020-01-01 09:00,a,1\n2020-01-02 09:00,a,5\n2020-01-02T09:00:00,a,5\n"
                  "2020-01-02 09:30,a,5\n")
    r = run_validate(p, freq=freq)
    rep = r.report
    assert (rep.rows_valid, rep.rows_duplicate, rep.rows_quarantined) == (valid, duplicate, len(said)) and rep.reconciled
    assert quarantined(r) == said


def test_rows_of_one_key_that_differ_in_an_undeclared_column_are_no_exact_duplicate(write_csv):
    """revC43: rows of one (series, time) equal in y but not in a column the source does not declare (two skus of one
    store read with --id-col store) were dropped as exact duplicates: a sku's row lost without a word. They
    conflict, every row quarantined, the reason naming the column that differs."""
    p = write_csv("date,store,sku,val\n2020-01-01,a,s1,1\n2020-01-02,a,s1,0\n2020-01-02,a,s2,0\n2020-01-03,a,s1,3\n")
    r = run_validate(p, id_cols=["store"])
    rep = r.report
    assert (rep.rows_in, rep.rows_valid, rep.rows_quarantined, rep.rows_duplicate) == (4, 2, 2, 0) and rep.reconciled
    assert quarantined(r)[0][1:] == ("duplicate_conflict", "2 rows for (a, 2020-01-02) with different sku values (s1 / s2)")


def test_a_conflicting_duplicate_beside_exact_ones_stays_quarantined(write_csv):
    """An exact repeat is dropped; a key whose rows differ in y loses every row, counted toward the threshold."""
    p = write_csv(HEADER + GOOD + "2020-01-02,a,2\n2020-01-03,a,30\n")
    r = run_validate(p, threshold=0.05)
    rep = r.report
    assert (rep.rows_in, rep.rows_valid, rep.rows_quarantined, rep.rows_duplicate) == (5, 2, 2, 1) and rep.reconciled
    assert rep.checks == {"duplicate_conflict": 2}
    with pytest.raises(DataValidationError, match=r"2 of 5 rows quarantined .*duplicate_conflict=2"):
        enforce_thresholds(r, ValidationConfig(quarantine_threshold=0.05), artifact=None)


@pytest.mark.parametrize(("n", "said"), [
    (1, "series starting after an interior gap longer than max_gap (its 40 rows before it not used): 1: s0: why"),
    (2, ("series starting after an interior gap longer than max_gap (their 40 rows before it not used): 2: s0: why; "
         "s1: why")),
    (6, "(their 40 rows before it not used): 6, e.g. s0: why; s1: why; s2: why; s3: why; s4: why; ..."),
])
def test_the_gap_cut_line_says_e_g_before_a_sample_only(n, said):
    """Regression (newuser43): the one series of vic_elec cut after its daylight-saving gap was said '1, e.g.
    vic_elecdemand_2014: ...', as if there were more, and its rows 'their'."""
    from flowcast.data.validate import gap_cut_line

    line = gap_cut_line([{"unique_id": f"s{i}", "reason": "why"} for i in range(n)], 40)
    assert said in line, line


def test_the_gap_cut_and_log1p_lines_count_every_series_of_a_sample():
    """A run's JSON keeps the first 100 series cut after a gap or scaled without log1p (`run_counts`); the summary
    said '100 series' of a run with 250 (newuser50a). With their count, the lines say all of them."""
    from flowcast.data.validate import gap_cut_line, log1p_off_line

    sample = [f"s{i}" for i in range(100)]
    assert log1p_off_line(sample, 300, 250).startswith("log1p off for 250 series holding negative values (s0, ")
    assert log1p_off_line(sample, 250, 250).endswith("(every series: [preprocess] log1p changes nothing on these data)")
    assert log1p_off_line(sample, 300).startswith("log1p off for 100 series")  # no count: the list is all of them
    cut = [{"unique_id": s, "reason": "why"} for s in sample]
    assert "not used): 250, e.g. s0: why;" in gap_cut_line(cut, 40, 250)


@pytest.mark.parametrize(("series", "said"), [
    (["sales"], "wide file: its column sales was read as one series, named after it"),
    (["north", "south", "east"],
     "wide file: 3 of its columns were read as one series each (north, south, east), named after their headers"),
])
def test_the_wide_file_line_counts_its_series_columns(write_csv, series, said):
    """wide44: the report of a wide file of one column said 'its 1 columns beside the time column were read as one
    series each'; its declared covariate ('promo') is a column beside the time column but no series."""
    rows = "".join(f"2024-01-0{d},{d % 2}," + ",".join(str(d * (i + 1)) for i in range(len(series))) + "\n"
                   for d in range(1, 4))
    p = write_csv(f"date,promo,{','.join(series)}\n{rows}")
    r = run_validate(p, layout="wide", id_cols=[], target_col="", future_cols=["promo"])
    assert r.report.wide_columns == series
    text = " ".join(r.report.to_markdown().split())
    assert said in text and "columns beside the time column" not in text, text


@pytest.mark.parametrize(("exc", "fix"), [
    (OSError(28, "No space left on device"), "Free space there and run again"),
    (OSError(122, "Disk quota exceeded"), "Free space there and run again"),
    (OSError(27, "File too large"), "Free space there and run again"),
    (PermissionError(13, "Permission denied"), "Give the user that runs flowcast the right to write there"),
    (PermissionError(1, "Operation not permitted"), "Give the user that runs flowcast the right to write there"),
    (OSError(30, "Read-only file system"), "(or a disk that is not read-only) and run again"),
    (OSError(5, "Input/output error"), "[Errno 5] Input/output error"),
    (OSError(113, "No route to host"), "[Errno 113] No route to host"),
])
def test_a_quarantine_file_that_could_not_be_written_is_told_the_fix_of_its_error(tmp_path, exc, fix):
    """It said 'Free space there' of any error (a permission denied, an I/O error): the fix matches the errno,
    said through the write's own wording (`atomic.storage_error`, as the flow and the commands pass it)."""
    from pathlib import Path

    from flowcast.atomic import storage_error
    from flowcast.data.validate import quarantine_unwritten

    exc.filename = str(tmp_path / "quarantine.parquet")
    why = str(storage_error(Path(exc.filename), exc))
    said = quarantine_unwritten("3 of 920 rows failed validation", why)
    assert said.startswith("3 of 920 rows failed validation; its quarantine file") and fix in said, said
    assert said.endswith("run again to keep them (`flowcast validate` writes them too)"), said
    assert said.count("Free space") == ("Free space" in fix), said
    assert ("Mend that error and run again" in said) == fix.startswith("[Errno"), said  # the error said is the one


@pytest.mark.parametrize(("path", "shown"), [
    ("/data/my password=1 x.csv", "/data/my password=1 x.csv"),  # a file's name, not a keyword DSN: it read 'password=***'
    ("/data/user@host/sales.csv", "/data/user@host/sales.csv"), ("C:\\data\\x.csv", "C:\\data\\x.csv"),
    ("https://u:pw1@h/x.csv?token=tok2", "https://u:***@h/x.csv?token=***"),
])
def test_the_quality_report_names_a_local_file_as_written_and_a_url_without_its_secrets(path, shown):
    """revR48: a local file's path was redacted as a keyword DSN (`password=` after a space hidden to the next)."""
    from flowcast.data.validate import DataQualityReport
    from flowcast.mdtext import md_text
    from flowcast.reporting import refusal_markdown

    report = DataQualityReport(source="s", as_of="2026-12-03", files=[path])
    assert report.to_dict()["files"] == [shown]
    assert f"; files: {shown}" in report.to_markdown()
    assert f"files: {md_text(shown)}" in refusal_markdown("s", "no rows", [path])
