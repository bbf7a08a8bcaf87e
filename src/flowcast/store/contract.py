"""The publishing contract: what a forecast frame (and a realized-accuracy frame) must be
before any store writes it, and the order of the published columns.

Every store (embedded Parquet + DuckDB, PostgreSQL) calls `validate_forecasts` first, so a
bad or empty forecast is refused with the same message whatever the backend, and nothing is
written. Errors are `ForecastContractError` (exit code 2, not retried by the flows).

Value columns besides `y_hat`: quantiles `y_hat_q<p>` (`flowcast.columns.quantile_col`) and
interval bounds `y_hat_lo<level>` / `y_hat_hi<level>` (e.g. y_hat_lo80, y_hat_hi95). They sit
between y_hat and run_id, ordered by the probability they stand for (lo95 = 2.5%, lo80 = 10%,
q50, hi80 = 90%, hi95 = 97.5%), so any store lays them out the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from flowcast.columns import DATASET_NAME_PATTERN, FORECAST_COLUMNS, REALIZED_COLUMNS, REALIZED_KEY
from flowcast.errors import PublishError
from flowcast.timekeys import utc_text

_DATASET_RE = re.compile(DATASET_NAME_PATTERN)
_VALUE_RE = re.compile(r"^y_hat_(?:q(?P<q>\d+(?:\.\d+)?)|(?P<side>lo|hi)(?P<level>\d+(?:\.\d+)?))$")


class ForecastContractError(PublishError):
    """The forecasts themselves break the publishing contract (empty, NaN, missing series...).

    Deterministic, so exit code 2 like other bad-input errors, and flows do not retry it;
    I/O failures (full disk, lock timeout, database) stay plain PublishError (exit 1, retried)."""

    exit_code = 2


# ---------------------------------------------------------------------- keys and columns
def storage_ts(ts: datetime) -> datetime:
    """The stored form of an instant: naive UTC (aware times are converted; naive means UTC)."""
    from flowcast.timekeys import storage_naive

    return storage_naive(ts)


def check_dataset(dataset: str) -> str:
    """A dataset name is a key and a folder name: letters, digits, '_', '.', '-' (not first)."""
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset):
        raise ForecastContractError(
            f"dataset name {dataset!r} is not usable as a store key: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return dataset


def _value_key(col: str) -> tuple[float, str]:
    m = _VALUE_RE.match(col)
    if m is None:
        return float("inf"), col
    if m.group("q") is not None:
        return round(float(m.group("q")) / 100, 9), col
    tail = (1 - float(m.group("level")) / 100) / 2
    return round(tail if m.group("side") == "lo" else 1 - tail, 9), col


def value_columns(columns: list[str]) -> list[str]:
    """Quantile and interval columns (y_hat_q*, y_hat_lo*, y_hat_hi*) in ascending probability."""
    return sorted((c for c in columns if _VALUE_RE.match(c)), key=_value_key)


quantile_columns = value_columns  # the name flowcast.publish used


def published_order(columns: list[str]) -> list[str]:
    """FORECAST_COLUMNS with the value columns of `columns` between y_hat and run_id."""
    cols = list(FORECAST_COLUMNS)
    i = cols.index("y_hat") + 1
    return cols[:i] + value_columns(columns) + cols[i:]


def empty_forecasts(vcols: Sequence[str] = ()) -> pl.DataFrame:
    schema: dict[str, Any] = {
        "dataset": pl.Utf8, "as_of": pl.Datetime("us"), "unique_id": pl.Utf8, "ds": pl.Datetime("us"),
        "step": pl.Int32, "model": pl.Utf8, "model_version": pl.Utf8, "y_hat": pl.Float64,
        **{q: pl.Float64 for q in value_columns(list(vcols))}, "run_id": pl.Utf8, "created_at": pl.Datetime("us"),
    }
    return pl.DataFrame(schema=schema)


def normalise_read(frame: pl.DataFrame, filled: set[str] | None = None) -> pl.DataFrame:
    """Types and column order of what `read` returns; value columns null in every row are left out. `filled`: where
    `frame` is the first rows of a read, the value columns with a value in any row it matched (those kept, null where
    `frame` has none): a column empty only in the first rows was left out of `--limit N` alone."""
    if frame.height == 0:
        return empty_forecasts()
    if filled is not None:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in filled - set(frame.columns))
    vcols = value_columns(frame.columns)
    frame = frame.cast({"step": pl.Int32, "as_of": pl.Datetime("us"), "ds": pl.Datetime("us"),
                        "created_at": pl.Datetime("us"), **{q: pl.Float64 for q in vcols}})
    keep = [q for q in vcols if (q in filled if filled is not None else frame[q].null_count() < frame.height)]
    return frame.select(published_order(keep)).sort("dataset", "as_of", "unique_id", "ds")


def summary_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` (distinct rows of some columns of the forecasts, and `rows`: how many published rows each stands for)
    with one row per distinct value, its columns in published order, sorted by dataset, as_of, unique_id, then the
    other columns (`read_summary`: the ids named under a table are the same ones each time, on every store)."""
    keys = [c for c in published_order(frame.columns) if c in frame.columns]
    keys += [c for c in frame.columns if c not in keys and c != "rows"]  # any other column asked for: kept, last
    order = [c for c in ("dataset", "as_of", "unique_id") if c in keys]
    return frame.group_by(keys).agg(pl.col("rows").sum()).select(*keys, "rows").sort(
        order + [c for c in keys if c not in order], nulls_last=True)


def _is_aware(dtype: Any) -> bool:
    """A time-zone-aware Datetime column (converted to naive UTC on the way in)."""
    return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None


# ---------------------------------------------------------------------- the forecast contract
def _schema(vcols: list[str], last_ds: pl.DataFrame | None, horizon: int | None, with_model: bool):
    import pandera.polars as pa

    finite = pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).is_finite().fill_null(False)), name="finite",
        error="must be a finite number (not NaN, inf or null)", ignore_na=False,
    )
    step_checks = [pa.Check.ge(1)]
    if horizon is not None:
        step_checks.append(pa.Check.le(horizon))
    checks = [
        pa.Check(
            lambda d: d.lazyframe.select(~pl.struct("unique_id", "ds").is_duplicated()),
            name="unique (unique_id, ds)", error="one row per (unique_id, ds)",
        )
    ]
    paired: list[str] = []  # the bounds of the levels published: a series may have neither (see below)
    for level in sorted({m.group("level") for c in vcols if (m := _VALUE_RE.match(c)) and m.group("level")}):
        lo, hi = f"y_hat_lo{level}", f"y_hat_hi{level}"
        if lo in vcols and hi in vcols:
            paired += [lo, hi]
            checks.append(pa.Check(
                lambda d, lo=lo, hi=hi: d.lazyframe.select((pl.col(lo) <= pl.col(hi)).fill_null(True)),
                name=f"{lo} <= {hi}", error=f"the lower bound {lo} must not exceed the upper bound {hi}",
            ))
            # a series without a typical change to scale the widths by, and none to borrow, has no interval beside
            # series that have one (a constant series' zero width, `recipes._whole_levels`): neither bound at any step
            checks.append(pa.Check(
                lambda d, lo=lo, hi=hi: d.lazyframe.select(
                    (pl.col(lo).is_null() == pl.col(hi).is_null())
                    & (pl.col(lo).is_null().all().over("unique_id") | pl.col(lo).is_not_null().all().over("unique_id"))),
                name=f"{lo} and {hi} of every step or of none",
                error=f"a series has both bounds {lo} and {hi} at every step, or neither at any",
            ))
    # (an interval bound's null is the check above's: a series without that interval)
    bound = pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).is_finite().fill_null(True)), name="finite",
        error="must be a finite number (not NaN or inf)", ignore_na=False,
    )
    if last_ds is not None:
        lds = pl.col("last_ds")
        lds_type = last_ds.schema.get("last_ds")
        if isinstance(lds_type, pl.Datetime) and lds_type.time_zone:
            lds = lds.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        last = last_ds.lazy().select(pl.col("unique_id").cast(pl.Utf8), lds.cast(pl.Datetime("us")))

        def after_last(d: Any) -> pl.LazyFrame:
            return (
                d.lazyframe.with_row_index("__row")
                .join(last, on="unique_id", how="left")
                .sort("__row")
                .select((pl.col("last_ds").is_null() | (pl.col("ds") > pl.col("last_ds"))).alias("ok"))
            )

        checks.append(pa.Check(after_last, name="ds after last observation",
                               error="ds must lie after the series' last observation"))
    columns = {
        "unique_id": pa.Column(pl.Utf8, nullable=False),
        "ds": pa.Column(pl.Datetime("us"), nullable=False),
        "step": pa.Column(pl.Int32, step_checks, nullable=False),
        # NaN/null are caught by the `finite` check (one message instead of two)
        "y_hat": pa.Column(pl.Float64, finite, nullable=True),
        **{q: pa.Column(pl.Float64, bound if q in paired else finite, nullable=True) for q in vcols},
    }
    if with_model:
        columns["model"] = pa.Column(pl.Utf8, pa.Check.str_length(min_value=1), nullable=False)
    return pa.DataFrameSchema(columns, checks=checks, unique=["unique_id", "step"], strict=True,
                              name="published forecasts")


def _describe_failures(frame: pl.DataFrame, cases: pl.DataFrame) -> str:
    msgs = []
    cases = cases.with_columns(
        pl.when(pl.col("schema_context") == "DataFrameSchema").then(pl.lit("rows")).otherwise(pl.col("column"))
        .fill_null("rows").alias("column")
    )
    for (column, check), grp in cases.group_by("column", "check", maintain_order=True):
        idx = [i for i in grp["index"].to_list() if i is not None]
        examples = []
        for i in idx[:3]:
            r = frame.row(int(i), named=True)
            val = f"={r[column]}" if column in r else ""
            examples.append(f"({r['unique_id']}, step {r['step']}){val}")
        if not examples:
            examples = [str(v) for v in grp["failure_case"].head(3).to_list()]
        check = {"multiple_fields_uniqueness": "duplicate (unique_id, step)"}.get(check, check)
        msgs.append(f"{column}: {check}: {grp.height} rows, e.g. {', '.join(examples)}")
    return "; ".join(msgs)


def validate_forecasts(
    forecasts: pl.DataFrame,
    *,
    as_of: datetime,
    last_ds: pl.DataFrame | None = None,
    expected_ids: list[str] | None = None,
    horizon: int | None = None,
) -> pl.DataFrame:
    """The publishing contract; returns unique_id, ds, step, y_hat[, value columns][, model] cast
    and sorted by (unique_id, ds).

    Raises ForecastContractError (a PublishError) naming the offending series/steps: empty input,
    missing columns, non-finite values, an interval whose lower bound exceeds its upper bound,
    duplicate (unique_id, step) or (unique_id, ds), steps outside 1..horizon, a series without
    every step 1..horizon, ds not after the series' last observation, missing or unexpected
    series, an empty per-row `model`. Other columns are ignored (and listed in the receipt), and so
    is a value column null in every row (a model without interval calibration publishes no
    intervals; `read` leaves such columns out too); one null among values is an error, except a series
    with neither bound of an interval level at any step (one without a typical change to scale the widths by, or
    one of a level its calibration had too few points for, beside a constant series' zero-width interval:
    `recipes._whole_levels`).
    """
    import pandera.polars as pa

    when = utc_text(storage_ts(as_of))
    if forecasts is None or forecasts.height == 0:
        raise ForecastContractError(f"refusing to publish an empty forecast for as_of {when}; published forecasts are unchanged")
    need = ["unique_id", "ds", "step", "y_hat"]
    missing = [c for c in need if c not in forecasts.columns]
    if missing:
        raise ForecastContractError(f"forecasts for as_of {when} lack columns {missing} (have {forecasts.columns})")
    if last_ds is not None and not {"unique_id", "last_ds"} <= set(last_ds.columns):
        raise ForecastContractError(f"last_ds needs columns unique_id and last_ds, got {last_ds.columns}")
    vcols = [q for q in value_columns(forecasts.columns) if forecasts[q].null_count() < forecasts.height]
    with_model = "model" in forecasts.columns
    try:
        ds = pl.col("ds")
        if isinstance(forecasts.schema["ds"], pl.Datetime) and forecasts.schema["ds"].time_zone:
            ds = ds.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        frame = forecasts.select(
            pl.col("unique_id").cast(pl.Utf8),
            ds.cast(pl.Datetime("us")),
            pl.col("step").cast(pl.Int32),
            pl.col("y_hat").cast(pl.Float64),
            *[pl.col(q).cast(pl.Float64) for q in vcols],
            *([pl.col("model").cast(pl.Utf8)] if with_model else []),
        )
    except pl.exceptions.PolarsError as exc:
        raise ForecastContractError(f"forecasts for as_of {when} have columns of the wrong type: {exc}") from exc
    try:
        _schema(vcols, last_ds, horizon, with_model).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise ForecastContractError(
            f"forecasts for as_of {when} failed the publishing contract: "
            f"{_describe_failures(frame, exc.failure_cases)}"
        ) from None
    except pa.errors.SchemaError as exc:
        raise ForecastContractError(f"forecasts for as_of {when} failed the publishing contract: {exc}") from None

    # completeness: every series, and every step of each series, exactly once
    ids = frame["unique_id"].unique()
    if expected_ids is not None:
        expected = pl.Series(list(expected_ids), dtype=pl.Utf8).unique()
        absent = sorted(set(expected.to_list()) - set(ids.to_list()))
        extra = sorted(set(ids.to_list()) - set(expected.to_list()))
        if absent:
            raise ForecastContractError(
                f"forecasts for as_of {when} miss {len(absent)} of {expected.len()} series: {absent[:5]}"
            )
        if extra:
            raise ForecastContractError(f"forecasts for as_of {when} hold {len(extra)} unexpected series: {extra[:5]}")
    counts = frame.group_by("unique_id").agg(pl.len().alias("n"), pl.col("step").max().alias("max_step"))
    h = horizon if horizon is not None else int(counts.get_column("n").max() or 0)  # type: ignore[arg-type]
    incomplete = counts.filter((pl.col("n") != h) | (pl.col("max_step") != h)).sort("unique_id")
    if incomplete.height:
        raise ForecastContractError(
            f"forecasts for as_of {when}: every series needs steps 1..{h} exactly once; "
            f"{incomplete.height} series do not, e.g. {incomplete.head(5).rows()} (unique_id, rows, max step)"
        )
    return frame.sort("unique_id", "ds")


def published_frame(valid: pl.DataFrame, *, dataset: str, as_of: datetime, model: str, model_version: str | None,
                    run_id: str, created_at: datetime) -> pl.DataFrame:
    """The rows a store writes: the validated forecasts with their keys and labels, in published
    order. A per-row `model` column (which model made each series: fallbacks) is kept; without
    one every row gets `model`."""
    labels = [
        pl.lit(dataset, dtype=pl.Utf8).alias("dataset"),
        pl.lit(as_of, dtype=pl.Datetime("us")).alias("as_of"),
        pl.lit(model_version, dtype=pl.Utf8).alias("model_version"),
        pl.lit(run_id, dtype=pl.Utf8).alias("run_id"),
        pl.lit(created_at, dtype=pl.Datetime("us")).alias("created_at"),
    ]
    if "model" not in valid.columns:
        labels.append(pl.lit(model, dtype=pl.Utf8).alias("model"))
    return valid.with_columns(labels).select(published_order(valid.columns))


def check_labels(*, dataset: str, as_of: datetime, model: str, run_id: str) -> None:
    check_dataset(dataset)
    for label, value in (("model", model), ("run_id", run_id)):
        if not value:
            raise ForecastContractError(
                f"publishing dataset {dataset} as_of {utc_text(storage_ts(as_of))} needs a non-empty {label}"
            )


# ---------------------------------------------------------------------- realized accuracy
_REALIZED_TYPES: dict[str, Any] = {
    "dataset": pl.Utf8, "as_of": pl.Datetime("us"), "model": pl.Utf8, "model_version": pl.Utf8,
    "step": pl.Int32, "n": pl.Int64, "mae": pl.Float64, "mase": pl.Float64, "n_mase": pl.Int64, "rmsse": pl.Float64,
    "smape": pl.Float64,
    "coverage80": pl.Float64, "coverage95": pl.Float64, "n_cov80": pl.Int64, "n_cov95": pl.Int64, "mae_snaive": pl.Float64, "mase_snaive": pl.Float64,
    "rmsse_snaive": pl.Float64, "lookahead": pl.Boolean, "scored_at": pl.Datetime("us"),
}


# the columns a realized frame may lack (null): recorded since realized accuracy was first written, or not computed
OPTIONAL_REALIZED = ("model_version", "n_mase", "rmsse", "n_cov80", "n_cov95", "mae_snaive", "mase_snaive",
                     "rmsse_snaive", "lookahead")


def empty_realized() -> pl.DataFrame:
    return pl.DataFrame(schema={c: _REALIZED_TYPES[c] for c in REALIZED_COLUMNS})


def validate_realized(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Realized accuracy rows, cast to their types and in REALIZED_COLUMNS order.

    One row per (as_of, model, step) of `dataset`; n >= 1 points scored; mae, mase, rmsse, smape,
    mae_snaive, mase_snaive, rmsse_snaive >= 0 (finite or null: a metric that cannot be computed is null, never
    NaN); coverage in [0, 1] or null. A `dataset` column, if given, must name `dataset`.
    model_version, n_mase, rmsse, n_cov80, n_cov95, mae_snaive, mase_snaive, rmsse_snaive and lookahead may be absent
    (null); n_mase, n_cov80 and n_cov95 are in [0, n]."""
    check_dataset(dataset)
    if frame is None or frame.height == 0:
        raise ForecastContractError(f"refusing to write an empty realized-accuracy frame for dataset {dataset}")
    if "dataset" in frame.columns:
        others = sorted({d for d in frame["dataset"].unique().to_list() if d != dataset}, key=str)
        if others:
            raise ForecastContractError(f"realized rows for dataset {dataset} name other datasets: {others[:5]}")
    frame = frame.with_columns(pl.lit(dataset, dtype=pl.Utf8).alias("dataset"))
    frame = _optional_realized(frame)
    missing = [c for c in REALIZED_COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in REALIZED_COLUMNS]
    if missing or extra:
        raise ForecastContractError(
            f"realized rows for dataset {dataset}: missing columns {missing}, unknown columns {extra} "
            f"(expected {REALIZED_COLUMNS})"
        )
    try:
        out = frame.select(
            (pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
             if _is_aware(frame.schema[c]) else pl.col(c))
            .cast(_REALIZED_TYPES[c]) for c in REALIZED_COLUMNS
        )
    except pl.exceptions.PolarsError as exc:
        raise ForecastContractError(f"realized rows for dataset {dataset} have columns of the wrong type: {exc}") from exc
    problems = []
    for col in ("dataset", "as_of", "model", "step", "n", "scored_at"):
        if (k := out[col].null_count()):
            problems.append(f"{col} is null in {k} rows")
    dup = out.filter(pl.struct(REALIZED_KEY).is_duplicated())
    if dup.height:
        ex = dup.select("as_of", "model", "step").unique().sort("as_of", "model", "step").head(3).rows()
        problems.append(f"{dup.height} rows repeat a (as_of, model, step), e.g. {ex}")
    rules = {
        "step": pl.col("step") >= 1, "n": pl.col("n") >= 1,
        **{k: pl.col(k).is_null() | ((pl.col(k) >= 0) & (pl.col(k) <= pl.col("n"))) for k in ("n_mase", "n_cov80", "n_cov95")},
        **{m: pl.col(m).is_null() | (pl.col(m).is_finite() & (pl.col(m) >= 0))
           for m in ("mae", "mase", "rmsse", "smape", "mae_snaive", "mase_snaive", "rmsse_snaive")},
        **{c: pl.col(c).is_null() | ((pl.col(c) >= 0) & (pl.col(c) <= 1)) for c in ("coverage80", "coverage95")},
    }
    for col, ok in rules.items():
        bad = out.filter(~ok.fill_null(False)) if col in ("step", "n") else out.filter(~ok)
        if bad.height:
            ex = bad.select("as_of", "model", "step", col).head(3).rows()
            problems.append(f"{col} out of range in {bad.height} rows, e.g. {ex} (as_of, model, step, {col})")
    if problems:
        raise ForecastContractError(f"realized rows for dataset {dataset} are invalid: " + "; ".join(problems))
    return out.sort("as_of", "model", "step")


def _optional_realized(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns a realized frame may lack, null: written by an older flowcast (n_mase,
    rmsse, n_cov80, n_cov95, rmsse_snaive, lookahead) or not computed."""
    for col in OPTIONAL_REALIZED:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=_REALIZED_TYPES[col]).alias(col))
    return frame


def normalise_realized(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.height == 0:
        return empty_realized()
    frame = _optional_realized(frame)
    return frame.select(pl.col(c).cast(_REALIZED_TYPES[c]) for c in REALIZED_COLUMNS).sort(
        "dataset", "as_of", "model", "step")
