"""`TrainingData`: the contract between preprocessing and the models.

One object holds what training and prediction need: the canonical frame on each series'
regular grid (gaps handled), per-series scalers fitted on the training span only, static
features, future-known covariates (calendar features and declared ones) and metadata. It
round-trips through a directory on disk, because training runs in its own process.

Frame columns: `unique_id` (Utf8), `ds` (Datetime[us]), `y` (Float64, never null), then the
declared future-known covariates `meta.declared_future_cols` and the past covariates
`meta.past_cols` (Float64), sorted by (unique_id, ds). The calendar features `meta.calendar_cols`
are not stored: they are a function of `ds` and the frequency alone (`calendar.calendar_exprs`),
so their consumers compute them where they are used (`with_calendar`, `future_frame`,
`models.windows.pack`) instead of holding six Float64 columns per row. `meta.future_cols` (the
model's future inputs, in order) is still calendar + declared future covariates. A frame saved
by an older version, which held the calendar columns, loads without them (same values).

Observations and imputed points: `imputed` lists (unique_id, ds) of the frame rows whose `y` the
preprocessing filled in (gaps); `observed()` is the per-row mark. Backtests and realized accuracy
score observed points only. Future-known covariates beyond each series' end come from
`future_exog` (the planned rows of the source); a horizon step without a planned value gets the
declared fill `meta.future_fill` (`last`: carried forward, `zero`, `error`), see `future_frame`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.atomic import storage_error
from flowcast.data.calendar import calendar_exprs, shift
from flowcast.data.freshness import when_text
from flowcast.errors import DataValidationError

SCALERS = ("standard", "robust", "minmax", "none")


@dataclass(frozen=True)
class TrainingMeta:
    freq: str
    horizon: int
    lookback: int
    val_size: int
    season_length: int
    as_of: str | None = None  # ISO timestamp of the run's as_of, None when the run saw everything
    source: str = "custom"
    fingerprint: str = ""  # of the source files + as_of + row count
    scaler: str = "standard"
    log1p: bool = False
    calendar_cols: list[str] = field(default_factory=list)
    future_cols: list[str] = field(default_factory=list)  # calendar_cols + declared future covariates
    past_cols: list[str] = field(default_factory=list)
    static_cols: list[str] = field(default_factory=list)
    declared_future_cols: list[str] = field(default_factory=list)
    tz: str | None = None  # the source's time zone: sub-daily ds are naive UTC instants, local time serves calendar features and display
    future_fill: str = "last"  # declared future covariates without a planned value: last | zero | error
    min_length: int = 0  # the shortest series a network trains on and forecasts (shorter: statistical models); 0: any
    # the source's aggregate: with one, a run observes a period once it has ended (timekeys.observed_through)
    aggregate: str = "none"
    # the source's time_label: "end" moved ds back to interval starts, and the as_of bound with them (observed_through)
    time_label: str = "start"


def fit_scalers(frame: pl.DataFrame, method: str, log1p: bool, holdout: int = 0) -> pl.DataFrame:
    """Per-series (center, scale) of f(y), f = log1p or identity, on all but the last `holdout` rows
    (on all rows of a series not longer than `holdout`; rows must be in time order per series).

    Returns unique_id, center, scale, log1p. A constant series gets scale 1: a spread that is no more than float
    rounding of the center (1e-12 of it) or below 1e-30. It used to be any spread under 1e-8, which made a series of
    probabilities at 1e-6 (spread 1e-8) 'constant': its scaled values all 0, the network forecast it about 0.05 off
    (MASE in the hundreds of millions) where it forecast one at 1e9 well.
    """
    if method not in SCALERS:
        raise ValueError(f"unknown scaler {method!r}; expected one of {SCALERS}")
    fy = pl.col("y").log1p() if log1p else pl.col("y")
    if holdout > 0:  # the first len - holdout rows of each series (all rows when it has no more than holdout)
        n = pl.len().cast(pl.Int64)
        fy = fy.head(pl.when(n > holdout).then(n - holdout).otherwise(n))
    span = frame.lazy()
    stats = {
        "standard": (fy.mean(), fy.std(ddof=0)),
        "robust": (fy.median(), fy.quantile(0.75) - fy.quantile(0.25)),
        "minmax": (fy.min(), fy.max() - fy.min()),
        "none": (pl.lit(0.0), pl.lit(1.0)),
    }[method]
    out = (
        span.group_by("unique_id")
        .agg(stats[0].cast(pl.Float64).alias("center"), stats[1].cast(pl.Float64).alias("scale"))
        .with_columns(
            pl.col("center").fill_null(0.0),
            pl.when(pl.col("scale").is_null() | ~pl.col("scale").is_finite()
                    | (pl.col("scale").abs() <= 1e-12 * pl.col("center").fill_null(0.0).abs())
                    | (pl.col("scale").abs() < 1e-30))
            .then(1.0)
            .otherwise(pl.col("scale"))
            .alias("scale"),
            pl.lit(log1p).alias("log1p"),
        )
        .collect()
    )
    # every series has rows in its span (all of them when it is not longer than holdout), so every
    # series of `frame` gets a scaler row from the group_by above
    return out.sort("unique_id")


def fit_scalers_per_series(frame: pl.DataFrame, method: str, log1p_ids: pl.Series | list[str],
                           holdout: int = 0) -> pl.DataFrame:
    """`fit_scalers` with log1p for the series in `log1p_ids` only (the others: identity)."""
    ids = pl.Series("unique_id", log1p_ids, dtype=pl.Utf8).implode()
    on = pl.col("unique_id").is_in(ids)
    parts = [fit_scalers(frame.filter(on), method, True, holdout), fit_scalers(frame.filter(~on), method, False, holdout)]
    return pl.concat([p for p in parts if p.height] or parts[:1], how="vertical_relaxed").sort("unique_id")


@dataclass
class TrainingData:
    frame: pl.DataFrame
    scalers: pl.DataFrame
    meta: TrainingMeta
    static: pl.DataFrame | None = None  # unique_id + meta.static_cols (Float64)
    future_exog: pl.DataFrame | None = None  # unique_id, ds + meta.declared_future_cols beyond each series' end
    excluded: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"unique_id": pl.Utf8, "reason": pl.Utf8})
    )
    imputed: pl.DataFrame | None = None  # unique_id, ds of the frame rows whose y was imputed (not observed)
    # unique_id + one column per static source column (`region`, not `region=north`): the ds of the row that
    # first gave the series its value (null: none did); a backtest cut before it did not know it (`holdout`)
    static_since: pl.DataFrame | None = None

    # ------------------------------------------------------------------ views
    @property
    def n_series(self) -> int:
        return self.scalers.height

    @property
    def ids(self) -> list[str]:
        return self.scalers["unique_id"].to_list()

    @property
    def n_obs(self) -> int:
        return self.frame.height

    def lengths(self) -> pl.DataFrame:
        """unique_id, length, first_ds, last_ds per series."""
        return (
            self.frame.group_by("unique_id", maintain_order=True)
            .agg(pl.len().alias("length"), pl.col("ds").min().alias("first_ds"), pl.col("ds").max().alias("last_ds"))
            .sort("unique_id")
        )

    def observed(self) -> pl.Series:
        """Per frame row: True where `y` was observed, False where preprocessing imputed it."""
        if self.imputed is None or not self.imputed.height:
            return pl.repeat(True, self.frame.height, dtype=pl.Boolean, eager=True).alias("observed")
        marked = self.imputed.select("unique_id", pl.col("ds").cast(self.frame.schema["ds"]),
                                     pl.lit(False).alias("observed"))
        return (self.frame.select("unique_id", "ds").join(marked, on=["unique_id", "ds"], how="left",
                                                          maintain_order="left")
                .get_column("observed").fill_null(True))

    def drop_imputed(self, rows: pl.DataFrame) -> pl.DataFrame:
        """`rows` (unique_id, ds, ...) without the points whose y was imputed: actuals to score."""
        if self.imputed is None or not self.imputed.height:
            return rows
        imp = self.imputed.select("unique_id", pl.col("ds").cast(rows.schema["ds"]))
        return rows.join(imp, on=["unique_id", "ds"], how="anti", maintain_order="left")

    # ------------------------------------------------------------------ scaling
    def scale(self, frame: pl.DataFrame, cols: tuple[str, ...] = ("y",)) -> pl.DataFrame:
        """(f(x) - center) / scale for each of `cols`, per series."""
        joined = frame.join(self.scalers, on="unique_id", how="left")
        exprs = []
        for c in cols:
            fx = pl.when(pl.col("log1p")).then(pl.col(c).log1p()).otherwise(pl.col(c))
            exprs.append(((fx - pl.col("center")) / pl.col("scale")).alias(c))
        return joined.with_columns(exprs).drop("center", "scale", "log1p")

    def inverse(self, frame: pl.DataFrame, cols: tuple[str, ...] = ("y_hat",)) -> pl.DataFrame:
        """Back to the original scale: f^-1(x * scale + center)."""
        joined = frame.join(self.scalers, on="unique_id", how="left")
        exprs = []
        for c in cols:
            z = pl.col(c) * pl.col("scale") + pl.col("center")
            exprs.append(pl.when(pl.col("log1p")).then(z.exp() - 1).otherwise(z).alias(c))
        return joined.with_columns(exprs).drop("center", "scale", "log1p")

    # ------------------------------------------------------------------ calendar
    def with_calendar(self, frame: pl.DataFrame | None = None) -> pl.DataFrame:
        """`frame` (default: the training frame) with the calendar features `meta.calendar_cols`
        computed from its `ds`: the values the models see (a copy; `self.frame` stays lean)."""
        frame = self.frame if frame is None else frame
        return frame.with_columns(calendar_exprs(self.meta.freq, tz=self.meta.tz)) if self.meta.calendar_cols else frame

    # ------------------------------------------------------------------ horizons
    def _future_grid(self, h: int) -> pl.DataFrame:
        """unique_id, ds, step (1..h) for the `h` periods after each series' last ds, with the
        declared future covariates the source planned for them (null where it did not)."""
        last = self.frame.group_by("unique_id").agg(pl.col("ds").max().alias("last_ds"))
        steps = pl.DataFrame({"step": pl.Series(range(1, h + 1), dtype=pl.Int32)})
        fut = (
            last.join(steps, how="cross")
            .with_columns(shift(pl.col("last_ds"), pl.col("step"), self.meta.freq).alias("ds"))
            .select("unique_id", "ds", "step")
            .sort("unique_id", "step")
        )
        declared = self.meta.declared_future_cols
        if declared:
            if self.future_exog is not None and self.future_exog.height:
                planned = self.future_exog.select("unique_id", pl.col("ds").cast(fut.schema["ds"]), *declared)
                fut = fut.join(planned, on=["unique_id", "ds"], how="left", maintain_order="left")
            else:
                fut = fut.with_columns([pl.lit(None, dtype=pl.Float64).alias(c) for c in declared])
        return fut.sort("unique_id", "step")

    def missing_future(self, horizon: int | None = None) -> dict[str, Any]:
        """How many horizon values of the declared future covariates the source did not plan:
        {"fill", "expected" (series x steps), "missing" {column: count}, "series" (with any
        missing), "examples" ['unique_id: column from its first ds missing', as `freshness.when_text` says a ds]}."""
        h = horizon or self.meta.horizon
        declared = self.meta.declared_future_cols
        fut = self._future_grid(h)
        out: dict[str, Any] = {"fill": self.meta.future_fill, "expected": fut.height if declared else 0,
                               "missing": {}, "series": 0, "examples": []}
        if not declared:
            return out
        out["missing"] = {c: int(fut[c].null_count()) for c in declared}
        gaps = fut.filter(pl.any_horizontal(pl.col(declared).is_null()))
        out["series"] = int(gaps["unique_id"].n_unique())
        for c in declared:
            first = fut.filter(pl.col(c).is_null()).group_by("unique_id", maintain_order=True).agg(pl.col("ds").min())
            out["examples"] += [f"{u}: {c} from {when_text(d, self.meta.freq)}" for u, d in first.head(3).iter_rows()]
        return out

    def future_frame(self, horizon: int | None = None) -> pl.DataFrame:
        """unique_id, ds, step (1..h) for the `h` periods after each series' last ds, with the
        future-known covariates: calendar features computed from ds, declared future covariates
        from `future_exog` (the source's planned values). A step without a planned value gets
        the declared fill `meta.future_fill`: `last` carries the last known value forward (the
        history's, then the planned rows', in time order: what preprocessing does inside the
        history, so a backtest window sees the same), `zero` puts 0, `error` raises."""
        h = horizon or self.meta.horizon
        fut = self.with_calendar(self._future_grid(h))
        declared = self.meta.declared_future_cols
        if declared and any(fut[c].null_count() for c in declared):
            fill = self.meta.future_fill
            if fill == "error":
                info = self.missing_future(h)
                raise DataValidationError(
                    f"future-known covariates without a planned value for the horizon (future_fill='error'): "
                    f"{info['missing']} of {info['expected']} (series x steps), e.g. {'; '.join(info['examples'][:3])}"
                )
            if fill == "zero":
                fut = fut.with_columns([pl.col(c).fill_null(0.0) for c in declared])
            else:
                last_vals = self.frame.group_by("unique_id").agg([pl.col(c).last().alias(f"__last_{c}") for c in declared])
                fut = (
                    fut.join(last_vals, on="unique_id", how="left")
                    .sort("unique_id", "step")
                    .with_columns([pl.col(c).fill_null(pl.col(c).forward_fill().over("unique_id"))
                                   .fill_null(pl.col(f"__last_{c}")) for c in declared])
                    .drop([f"__last_{c}" for c in declared])
                )
        return fut.select("unique_id", "ds", "step", *self.meta.future_cols).sort("unique_id", "step")

    def holdout(self, n: int) -> tuple[TrainingData, pl.DataFrame]:
        """Drop the last `n` observations of every series.

        A series whose cut falls inside an imputed gap ends at its last observation before the cut (what a
        run with as_of at the cut had: the gap's values were interpolated from the observation after it);
        its held-out rows start there.

        Returns the truncated TrainingData (scalers refitted on what is left with the same
        per-series log1p decisions as this one; the removed rows, then the planned rows beyond
        the data, become its `future_exog`, so future covariates are what a run at the cut knew)
        and the removed rows (unique_id, ds, y, step) as actuals
        for evaluation (imputed ones included: `drop_imputed` leaves the observed ones).
        """
        if n <= 0:
            raise ValueError(f"holdout needs n >= 1, got {n}")
        pos = pl.int_range(pl.len()).over("unique_id")
        cut = pl.len().over("unique_id") - n
        keep = pos < cut
        if self.imputed is not None and self.imputed.height:
            # a cut inside an imputed gap: the gap's values came from the observation after the cut (linear
            # interpolation), which a run with as_of at the cut did not have; its series ends at its last
            # observation, so the history does too, and the imputed points before the cut are held out
            last_obs = pl.when(keep & pl.col("__obs")).then(pos).max().over("unique_id")
            flags = self.frame.select("unique_id", self.observed().alias("__obs")).select(
                (pos <= last_obs).fill_null(False).alias("k"))["k"]
        else:
            flags = self.frame.select(keep.alias("k"))["k"]
        kept = self.frame.filter(flags)
        removed = self.frame.filter(~flags).with_columns(
            (pl.int_range(pl.len()).over("unique_id") + 1).cast(pl.Int32).alias("step")
        )
        short = set(self.ids) - set(kept["unique_id"].unique().to_list())
        if short:
            raise ValueError(f"series with no observations left after holding out {n}: {sorted(short)[:5]}")
        # the same per-series decisions as the full run (log1p is off for series that cannot take it)
        log1p_ids: pl.Series | list[str] = self.scalers.filter(pl.col("log1p"))["unique_id"] if self.meta.log1p else []
        scalers = fit_scalers_per_series(kept, self.meta.scaler, log1p_ids, holdout=self.meta.val_size)
        fexog = None
        if self.meta.declared_future_cols:  # what a run at the cut knew: the removed rows', then the planned rows'
            fexog = removed.select("unique_id", "ds", *self.meta.declared_future_cols)
            if self.future_exog is not None and self.future_exog.height:
                planned = self.future_exog.select(fexog.columns).cast(dict(fexog.schema))  # type: ignore[arg-type]
                fexog = pl.concat([fexog, planned]).sort("unique_id", "ds")
        td = replace(self, frame=kept, scalers=scalers, future_exog=fexog, static=self._statics_known(kept))
        return td, removed.select("unique_id", "ds", "step", "y")

    def _statics_known(self, kept: pl.DataFrame) -> pl.DataFrame | None:
        """The statics a run at each series' cut (its last row in `kept`) knew: a static first given on a row
        after the cut is unknown there (missing, a text static's unknown level), as a run with as_of at the cut has
        it (statics are the first value known at as_of); the others are as they are."""
        from flowcast.data.statics import categorical_bases, indicated, unknown_level

        if self.static is None or self.static_since is None or not self.meta.static_cols:
            return self.static
        bases = [c for c in self.static_since.columns if c != "unique_id"]
        cut = kept.group_by("unique_id").agg(pl.col("ds").max().alias("__cut"))
        late = self.static_since.join(cut, on="unique_id", how="inner").select(
            "unique_id", *[(pl.col(b) > pl.col("__cut")).fill_null(False).alias(f"__late_{b}") for b in bases])
        if not any(bool(late.get_column(f"__late_{b}").any()) for b in bases):
            return self.static
        cats = categorical_bases(self.meta.static_cols)
        exprs = []
        for col in self.meta.static_cols:
            head, sep, _ = col.rpartition("=")
            of = indicated(col) if head not in cats else None
            base = head if sep and head in cats else of if of is not None else col
            if base not in bases:
                exprs.append(pl.col(col))
                continue
            # unknown at the cut: a text static's unknown level, a numeric one missing (null, and its indicator 1)
            value = (pl.lit(1.0) if (base in cats and col == unknown_level(base)) or of is not None
                     else pl.lit(None, dtype=pl.Float64) if base not in cats else pl.lit(0.0))
            exprs.append(pl.when(pl.col(f"__late_{base}").fill_null(False)).then(value).otherwise(pl.col(col))
                         .cast(pl.Float64).alias(col))
        return (self.static.join(late, on="unique_id", how="left", maintain_order="left")
                .select("unique_id", *exprs))

    # ------------------------------------------------------------------ disk
    def save(self, path: str | Path) -> Path:
        """Write to directory `path` atomically (temp dir, then rename). A failed write (a full
        disk) is a StorageError naming `path`; the temp dir is removed and `path` is as it was."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        except OSError as exc:
            raise storage_error(path, exc) from exc
        try:
            self.frame.write_parquet(tmp / "frame.parquet")
            self.scalers.write_parquet(tmp / "scalers.parquet")
            self.excluded.write_parquet(tmp / "excluded.parquet")
            if self.static is not None:
                self.static.write_parquet(tmp / "static.parquet")
            if self.future_exog is not None:
                self.future_exog.write_parquet(tmp / "future_exog.parquet")
            if self.imputed is not None:
                self.imputed.write_parquet(tmp / "imputed.parquet")
            if self.static_since is not None:
                self.static_since.write_parquet(tmp / "static_since.parquet")
            (tmp / "meta.json").write_text(json.dumps(asdict(self.meta), indent=2))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
        except (OSError, pl.exceptions.PolarsError) as exc:  # polars wraps I/O errors in a ComputeError
            raise storage_error(path, exc) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainingData:
        path = Path(path)
        if not (path / "meta.json").exists():
            raise FileNotFoundError(f"no TrainingData at {path} (meta.json missing)")
        opt = lambda name: pl.read_parquet(path / name) if (path / name).exists() else None
        meta = TrainingMeta(**json.loads((path / "meta.json").read_text()))
        # older versions stored the calendar features in the frame: not read (computed from ds where used)
        calendar = set(meta.calendar_cols)
        columns = [c for c in pl.read_parquet_schema(path / "frame.parquet") if c not in calendar]
        return cls(
            frame=pl.read_parquet(path / "frame.parquet", columns=columns),
            scalers=pl.read_parquet(path / "scalers.parquet"),
            meta=meta,
            static=opt("static.parquet"),
            future_exog=opt("future_exog.parquet"),
            imputed=opt("imputed.parquet"),
            excluded=pl.read_parquet(path / "excluded.parquet"),
            static_since=opt("static_since.parquet"),
        )

    @property
    def as_of(self) -> datetime | None:
        return datetime.fromisoformat(self.meta.as_of) if self.meta.as_of else None

    # ------------------------------------------------------------------ short series
    def subset(self, ids: list[str] | pl.Series) -> TrainingData:
        """The series `ids` of this data (frame, scalers, statics, future covariates, same meta)."""
        keep = pl.col("unique_id").is_in(pl.Series(list(ids), dtype=pl.Utf8).implode())
        return replace(
            self, frame=self.frame.filter(keep), scalers=self.scalers.filter(keep),
            static=None if self.static is None else self.static.filter(keep),
            future_exog=None if self.future_exog is None else self.future_exog.filter(keep),
            imputed=None if self.imputed is None else self.imputed.filter(keep),
            static_since=None if self.static_since is None else self.static_since.filter(keep),
        )

    def with_lookback(self, lookback: int, short_series: str) -> TrainingData:
        """This data for a network of another `lookback` (a tuned one): the meta's lookback and the
        network's minimum length fitted as preprocessing fits them (`lengths.network_min_length`:
        with `short_series="exclude"` the minimum moves with the lookback). Nothing else changes."""
        from flowcast.data.lengths import network_min_length

        need = network_min_length(lookback=lookback, horizon=self.meta.horizon, val_size=self.meta.val_size,
                                  short_series=short_series)
        return replace(self, meta=replace(self.meta, lookback=int(lookback), min_length=need))

    def marks(self, network_min_length: int | None = None) -> pl.DataFrame:
        """unique_id, length, network: whether a network trains on and forecasts the series (at
        least `network_min_length` periods, default `meta.min_length`); the shorter series are
        forecast by the statistical models that can run on them."""
        need = self.meta.min_length if network_min_length is None else int(network_min_length)
        return self.lengths().select("unique_id", "length", (pl.col("length") >= need).alias("network"))

    def network_subset(self, network_min_length: int | None = None) -> TrainingData:
        """The series long enough for a network (see `marks`)."""
        m = self.marks(network_min_length)
        return self if bool(m["network"].all()) else self.subset(m.filter(pl.col("network"))["unique_id"])

