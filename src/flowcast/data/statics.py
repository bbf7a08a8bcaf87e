"""Static features across runs: one-hot level names, the explicit unknown level, and aligning the
statics of today's data to the columns a model was trained with.

A text static `region` becomes one column per level seen in training (`region=north`, ...) plus
`region=__unknown__`, reserved at training time (1 where the series has no value). At prediction a
series whose level the model never saw (a new region) gets `region=__unknown__ = 1` and 0 in every
known level, instead of a column set that differs from the model's (which used to fail the
prediction of every series). Numeric statics keep their own name.

A numeric static a series has no value for stays null here and is the training mean when the
network reads it (`windows.pack` fills it with the mean the model was fitted with, 0 once
standardised), with a missing indicator `size=__missing__` (1 where the value is missing) when some
series lacked it in training: sklearn's SimpleImputer(add_indicator=True), AutoGluon's mean fill of a
missing real static. It used to be 0 on the raw scale, a real value (a store of size 0), far from
every real size when sizes are in the thousands.
"""

from __future__ import annotations

import re

import polars as pl

from flowcast.errors import TrainingError

UNKNOWN = "__unknown__"
MISSING = "__missing__"


def level_name(col: str, value: str) -> str:
    """The one-hot column of level `value` of text static `col` (`region=north`)."""
    return f"{col}={re.sub(r'[^0-9A-Za-z_.-]+', '_', str(value))[:40]}"


def unknown_level(col: str) -> str:
    """The reserved column of text static `col` for a level never seen in training."""
    return f"{col}={UNKNOWN}"


def missing_indicator(col: str) -> str:
    """The column of numeric static `col` that is 1 where a series has no value (`size=__missing__`)."""
    return f"{col}={MISSING}"


def indicated(column: str) -> str | None:
    """The numeric static whose missing indicator `column` is (None: it is none)."""
    suffix = f"={MISSING}"
    return column[: -len(suffix)] if column.endswith(suffix) else None


def numeric_statics(columns: list[str]) -> set[str]:
    """The numeric statics among feature `columns` (not a text static's level, not a missing indicator)."""
    bases = categorical_bases(columns)
    return {c for c in columns if _base(c, bases) is None and indicated(c) is None}


def categorical_bases(columns: list[str]) -> set[str]:
    """Text statics among feature `columns` (those with an unknown level)."""
    suffix = f"={UNKNOWN}"
    return {c[: -len(suffix)] for c in columns if c.endswith(suffix)}


def _base(column: str, bases: set[str]) -> str | None:
    head, sep, _ = column.rpartition("=")
    return head if sep and head in bases else None


def align_statics(static: pl.DataFrame | None, data_cols: list[str], model_cols: list[str],
                  ids: list[str]) -> pl.DataFrame | None:
    """`static` (unique_id + `data_cols`, Float64) as the model's columns `model_cols`, one row per
    id of `ids`: a level the model knows keeps its column, a level it never saw sets the model's
    unknown level, a known level absent from the data is 0; a numeric static stays null where a series
    has none (the model's training mean, `windows.pack`), and its missing indicator, when the model has
    one, says so. Raises TrainingError naming a numeric static the model needs and the data lacks (or
    one the data has and the model does not know)."""
    if not model_cols:
        return None
    bases = categorical_bases(model_cols)
    frame = pl.DataFrame({"unique_id": pl.Series(ids, dtype=pl.Utf8)})
    if static is not None:
        frame = frame.join(static, on="unique_id", how="left", maintain_order="left")
    lacking = [c for c in model_cols if c not in data_cols and _base(c, bases) is None and indicated(c) is None]
    data_bases = bases | categorical_bases(data_cols)
    unknown_numeric = [c for c in data_cols if c not in model_cols and _base(c, data_bases) is None
                       and indicated(c) is None]
    if lacking or unknown_numeric:
        raise TrainingError(f"the data's static features {data_cols} do not fit the model's {model_cols}: "
                            f"missing {lacking}, not known to the model {unknown_numeric}")
    exprs = []
    for c in model_cols:
        base = _base(c, bases)
        if base is None and (of := indicated(c)) is not None:  # from the value itself: null is missing
            exprs.append(pl.col(of).is_null().cast(pl.Float64).alias(c) if of in data_cols else pl.lit(1.0).alias(c))
            continue
        if base is None:  # a numeric static: null where the series has none (the training mean, in pack)
            exprs.append(pl.col(c).cast(pl.Float64).fill_nan(None).alias(c))
            continue
        if c in data_cols and c != unknown_level(base):
            exprs.append(pl.col(c).cast(pl.Float64).fill_null(0.0).alias(c))
            continue
        if base is not None and c == unknown_level(base):
            known = [k for k in model_cols if k != c and _base(k, bases) == base and k in data_cols]
            seen = pl.sum_horizontal([pl.col(k).fill_null(0.0) for k in known]) if known else pl.lit(0.0)
            exprs.append((1.0 - seen).clip(0.0, 1.0).cast(pl.Float64).alias(c))
        else:  # a known level the data does not have
            exprs.append(pl.lit(0.0).alias(c))
    return frame.select("unique_id", *exprs)
