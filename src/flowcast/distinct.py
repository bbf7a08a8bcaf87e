"""Per-distinct evaluation: the one way flowcast does expensive per-row work once per distinct value.

When to use it: an elementwise computation (regexes, parsing text as times, a zone's conversion) over a column whose
values repeat, as the times of many series do (500 hourly series of 2,000 hours: 1,000,000 rows, 2,000 distinct
times). The work is done on the distinct values and gathered back to the rows: the same values as over every row, at
the cost of a sort and a binary search per row (as costly as the work itself where nearly every value is distinct).
Not for work that reads other rows (a group, a window, a shift): it would see the distinct values, not the rows.

Read it once: `per_distinct` reads `values` four times (the distinct values three, the rows once), and an expression
reading its result twice computes it twice. An eager frame (`DataFrame.select`, `with_columns`, `sort`) shares no common
subexpression; a lazy plan shares none that holds a window, and may leave it in several of those it shares. So
`values` is columns or cheap elementwise work on them, never a window (`periods.period_over_at`'s ran four times: 1M
rows 0.40 CPU s, 0.12 with it a column of an earlier stage, 0.16 converted per row), and a result read more than once
is a column of an earlier with_columns stage (`time_read._parse_time`'s wall times, read by three columns: 1.15 -> 0.78
CPU s to read 1M rows).

- `per_distinct(values, f)`: `f(values)` computed once per distinct value of the expression `values` (a column, or
  a struct of several columns), as an expression.
- `Steps`: a chain of steps that each read the steps before them several times (reading a text time: an offset cut
  off, a day/month date rewritten as ISO, a period's first day): each step a field of its own, computed once, the
  whole chain one `per_distinct` over the columns it reads, one with_columns stage holding the steps' results.
  Nested as expressions, every step ran the regexes of all the steps before it again (300k hourly day/month rows
  took 60 s to parse, ISO text well under 1 s); over every row, the 1,000,000 hourly times of 500 series took 6.5 s.
- `rewrite_distinct(series, rewrite, which)`: the batch form, for a Python function of a `map_batches` (a number's
  text, an id's NFC form): `rewrite` on a Series' distinct values, set back on the rows it changes alone (of those
  `which` marks), and the Series itself where it changes none. Where a batch's values are mostly left as they are,
  a `replace` of the few changed values (or a `scatter` on the few marked rows) costs less than `per_distinct`'s
  search of every row, and a batch nothing changes is returned as it came, without a copy.
- `_columns_distinct(lf, cols)` and `_any_distinct(rows, values, exprs)`: the checks form, for a file's checks that
  each read one column a value at a time (a regex, a comparison: the separator checks of a number column).
  `_columns_distinct` gathers each column's distinct values in one streaming pass (None where the first
  `DISTINCT_SAMPLE_ROWS` rows are mostly distinct: gathering them costs more than the checks save), and
  `_any_distinct` answers `_any` (whether a check holds on some row) over those values instead of the rows: a check
  holds on some row iff it holds on some distinct value, so its regexes run once per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl


def per_distinct(values: pl.Expr, f: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """`f(values)` for an elementwise `f` that keeps a null null, computed once per distinct value of `values` and
    gathered back to its rows: a zone's conversions (`timekeys.local_wall`) of series that share their times cost per
    time, not per row (2,000 hourly series of 1,000 rows: 1,000 conversions, not 2,000,000). The same values as
    `f(values)`. `f` sees the distinct values in the order of their first rows (a format polars infers from the first
    value is the first row's, as over the rows). `values` may be a struct (`pl.struct`) of several columns (in a lazy
    frame: a `when` of two of its fields panicked in polars 2.1's eager select). At a frame's level: in a group_by's
    agg or a window it would be per group."""
    keys = values.unique(maintain_order=True)
    order = keys.arg_sort()  # (a null sorts first: search_sorted puts a null row there, and f keeps it null)
    return f(keys).gather(order.gather(keys.gather(order).search_sorted(values)))


class Steps:
    """A chain of steps computed once per distinct value of the columns it reads (`columns`), for one with_columns
    stage named `name` (`stage`). Inside the chain a column is `read(column)` and a step's value is what `step` gives
    back; `result` marks a step whose value is read outside the chain, after the stage: the stage holds the results
    alone (a struct, one field a result), the steps in between are left behind on the distinct values."""

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name = name
        self.columns = list(columns)
        self._steps: list[pl.Expr] = []
        self._results: list[str] = []

    def read(self, column: str) -> pl.Expr:
        """Column `column` (one of `columns`) as the chain's steps read it."""
        if column not in self.columns:
            raise ValueError(f"the steps of {self.name!r} read {self.columns}, not {column!r}")
        return pl.field(column)

    def step(self, expr: pl.Expr) -> pl.Expr:
        """`expr` as a step of its own: computed once, however often the next steps read it."""
        return pl.field(self._add(expr))

    def result(self, expr: pl.Expr) -> pl.Expr:
        """`expr` as a step whose value is read after the stage: its field of the stage's column."""
        field = self._add(expr)
        self._results.append(field)
        return pl.col(self.name).struct.field(field)

    def _add(self, expr: pl.Expr) -> str:
        """The field of a new step computing `expr`."""
        field = f"{self.name}{len(self._steps)}"
        self._steps.append(expr.alias(field))
        return field

    def stage(self) -> list[pl.Expr]:
        """The with_columns stage computing the results (a struct column `name`), once per distinct value of
        `columns`: empty without a result (nothing to compute)."""
        if not self._results:
            return []
        steps, results = list(self._steps), list(self._results)

        def chain(keys: pl.Expr) -> pl.Expr:
            fields = keys if len(self.columns) > 1 else pl.struct(keys.alias(self.columns[0]))
            for step in steps:
                fields = fields.struct.with_fields(step)
            out = f"{self.name}_results"
            return fields.struct.with_fields(pl.struct([pl.field(r) for r in results]).alias(out)).struct.field(out)

        keys = pl.struct(self.columns) if len(self.columns) > 1 else pl.col(self.columns[0])
        return [per_distinct(keys, chain).alias(self.name)]


def rewrite_distinct(series: pl.Series, rewrite: Callable[[pl.Series], pl.Series],
                     which: pl.Series | None = None) -> pl.Series:
    """`series` with its values rewritten by `rewrite` (elementwise, a function of the value alone, keeping the
    dtype), each distinct value once; with `which`, only those of the rows it marks, set back on those rows alone (a
    `replace` over every row took 0.17 s of 1,000,000 rows for the 6 distinct values of 6,000 rows). `series` itself
    where nothing changes. The batch form of `per_distinct`, for a `map_batches` function (`value_text.nfc`,
    `value_text.number_text`)."""
    if which is not None and not which.any():
        return series
    rows = series if which is None else series.filter(which)
    distinct = rows.unique()
    new = rewrite(distinct)
    changed = distinct.ne_missing(new)
    if not changed.any():
        return series
    rewritten = rows.replace(distinct.filter(changed), new.filter(changed))
    return rewritten if which is None else series.clone().scatter(which.arg_true(), rewritten)


def _any(lf: pl.LazyFrame, exprs: dict[str, pl.Expr]) -> dict[str, bool]:
    """name -> whether `expr` (a Boolean per row) holds on some row: one streaming pass over the file."""
    if not exprs:
        return {}
    row = lf.select(e.any().alias(n) for n, e in exprs.items()).collect(engine="streaming").row(0, named=True)
    return {n: bool(v) for n, v in row.items()}


# the first rows whose distinct values say whether a file's checks run on the distinct values (`_columns_distinct`)
DISTINCT_SAMPLE_ROWS = 50_000


def _columns_distinct(lf: pl.LazyFrame, cols: list[str]) -> dict[str, pl.LazyFrame] | None:
    """column -> its distinct values (a frame of that column alone) over the rows of `lf`, one streaming pass, for
    `_any_distinct`; None where the file's first rows (`DISTINCT_SAMPLE_ROWS`) are mostly distinct (more distinct
    values than half their values, over `cols`): there gathering the distinct values costs more than the checks save
    (1,000,000 distinct numbers: 0.8 s of CPU, where the checks over the rows take 0.4 s)."""
    if not cols:
        return None
    head = lf.head(DISTINCT_SAMPLE_ROWS).select(pl.len(), *(pl.col(c).n_unique() for c in cols)).collect(
        engine="streaming").row(0)
    if 2 * sum(head[1:]) > head[0] * len(cols):
        return None
    got = lf.select(pl.col(c).unique().implode() for c in cols).collect(engine="streaming")
    return {c: got.get_column(c).explode().to_frame().lazy() for c in cols}


def _any_distinct(rows: pl.LazyFrame, values: dict[str, pl.LazyFrame] | None,
                  exprs: dict[str, pl.Expr]) -> dict[str, bool]:
    """`_any(rows, exprs)`, over the distinct values `values` of those rows (`_columns_distinct`; over the rows when
    None) for expressions that each read one column, a value at a time (a regex, a comparison): such an expression
    holds on some row iff it holds on some distinct value. Their regexes run once per distinct value, not per row,
    and the file is not read again for a second set of checks (the separator checks of a number column ran about 5
    regexes over every row, a second time in a file with a ',' in its numbers)."""
    if values is None:
        return _any(rows, exprs)
    by_col: dict[str, dict[str, pl.Expr]] = {}
    for name, expr in exprs.items():
        cols = set(expr.meta.root_names())
        if len(cols) != 1 or not cols <= values.keys():
            raise ValueError(f"check {name!r} reads columns {sorted(cols)}, not one of {sorted(values)}")
        by_col.setdefault(cols.pop(), {})[name] = expr
    return {n: v for c, col_exprs in by_col.items() for n, v in _any(values[c], col_exprs).items()}
