"""flowcast.distinct: expensive per-row work done once per distinct value, gathered back to the rows."""

from __future__ import annotations

import polars as pl
import pytest

from flowcast.distinct import Steps, per_distinct, rewrite_distinct

_ROWS = {"t": ["b", None, "a", "b", " c", None, "a"], "ok": [True, None, False, True, True, None, True]}


def test_per_distinct_sees_the_distinct_values_in_the_order_of_their_first_rows():
    """`f` sees each distinct value once, in the order the rows first hold it (a format polars infers from the first
    value is the first row's, as over the rows), a null among them; each row gets its value's."""
    frame = pl.DataFrame(_ROWS)
    got = frame.select(per_distinct(pl.col("t"), lambda keys: pl.int_range(pl.len())).alias("at"))
    assert got.get_column("at").to_list() == [0, 1, 2, 0, 3, 1, 2]


def test_per_distinct_of_a_struct_of_columns_is_the_expression_row_by_row():
    """Several columns read together (a text and a flag): each row gets what the expression gives its row. (In a lazy
    frame, as flowcast's are: polars 2.1's eager select panicked on this `when` of two fields of the distinct struct.)"""
    frame = pl.LazyFrame(_ROWS)

    def f(keys: pl.Expr) -> pl.Expr:
        return pl.when(keys.struct.field("ok")).then(keys.struct.field("t").str.to_uppercase())

    got = frame.select(per_distinct(pl.struct("t", "ok"), f).alias("u")).collect()
    assert got.equals(frame.select(f(pl.struct("t", "ok")).alias("u")).collect())
    assert got.get_column("u").to_list() == ["B", None, None, "B", " C", None, "A"]


@pytest.mark.parametrize("columns", [["t"], ["t", "ok"]])
def test_steps_give_the_steps_row_by_row_and_keep_their_results_alone(columns):
    """Each step reads the ones before it as fields, computed once per distinct value of the columns the chain reads;
    the stage's column holds the results alone."""
    frame = pl.DataFrame(_ROWS)
    steps = Steps("__s", columns)
    text = steps.step(steps.read("t").str.strip_chars())
    upper = steps.step(text.str.to_uppercase())
    ok = steps.read("ok") if "ok" in columns else pl.lit(True)
    results = [steps.result(pl.when(ok).then(upper + text)), steps.result(upper.str.len_chars())]
    got = frame.lazy().with_columns(steps.stage()).select(r.alias(f"r{i}") for i, r in enumerate(results)).collect()
    assert got.to_dict(as_series=False) == {"r0": ["Bb", None, None if "ok" in columns else "Aa", "Bb", "Cc", None, "Aa"],
                                            "r1": [1, None, 1, 1, 1, None, 1]}
    assert frame.lazy().with_columns(steps.stage()).collect_schema()["__s"] == pl.Struct(
        {"__s2": pl.Utf8, "__s3": pl.UInt32})


def test_steps_read_the_columns_they_were_given_alone():
    """A column the chain was not given is refused, naming it and the ones it reads (it would not be a key of the
    distinct values: each row's own value would be lost)."""
    steps = Steps("__s", ["t"])
    with pytest.raises(ValueError, match=r"\['t'\], not 'ok'"):
        steps.read("ok")
    assert steps.stage() == []  # no result: nothing to compute


def test_rewrite_distinct_rewrites_each_distinct_value_once_and_the_marked_rows_alone():
    """A batch's values rewritten as row by row, `rewrite` seeing each distinct value once; with `which`, the rows it
    leaves unmarked keep their values; the batch itself where nothing changes (no copy)."""
    series = pl.Series("t", _ROWS["t"])
    seen: list[int] = []

    def upper(values: pl.Series) -> pl.Series:
        seen.append(values.len())
        return values.str.to_uppercase()

    assert rewrite_distinct(series, upper).to_list() == series.str.to_uppercase().to_list()
    assert seen == [series.n_unique()]
    which = pl.Series([True, True, False, False, True, False, True])
    assert rewrite_distinct(series, upper, which).to_list() == ["B", None, "a", "b", " C", None, "A"]
    assert series.to_list() == _ROWS["t"]  # (set back on a copy: the batch itself is not written to)
    assert rewrite_distinct(series, lambda v: v) is series
    assert rewrite_distinct(series, upper, pl.Series([False] * series.len())) is series
