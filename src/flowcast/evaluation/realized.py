"""Realized accuracy: how published forecasts turned out once their periods had actuals.

Pure functions, no I/O and no clock (the stage that reads the store and the registry, writes
the `realized` table and emits events is `flowcast.ops.accuracy`).

`score_realized` scores the published forecasts of earlier as_ofs against the observed actuals
that have arrived since: one row per (as_of, model, step) with the number of points scored
(`n`), MAE, MASE, RMSSE (on MASE's points, `n_mase`: `metrics.rmsse_scale` up to the as_of; as the backtest's,
each series' over the steps of its as_of scored, then averaged over the series scored at the step), sMAPE, the
coverage of the 80% and 95% intervals (null when the forecasts carry none; over the points whose forecast has that
interval, `n_cov80` / `n_cov95`: a series with no typical change to scale its widths by is published without one
beside series that have one) and, on the same points as MAE, the MAE and MASE
of the seasonal-naive forecast that could have been made at that as_of (`mae_snaive`, `mase_snaive`), and its RMSSE on
RMSSE's points, computed the same way (`rmsse_snaive`); for sub-daily data of a source with a `tz` and a season of
whole days, the value at the same local time a season earlier, as `baseline_forecast` takes it (24 local hours
across a daylight-saving change; it was 24 periods back, an hour off the local pattern); for a history shorter than
a season at that as_of, its last value, the plain naive `baseline_forecast` published. Only observed actuals count: a period the source had no value
for (a gap the preprocessing imputed) is not scored.
The MASE scale of each series is its mean seasonal difference over the history up to that
as_of, never later data (`metrics.mase_scale` with the as_of as cutoff), and only where that
history holds `min_scale_history` rows (two seasons; at least 4 differences): early backfills
cut series to a season or less, where the scale was the mean of one seasonal difference or, with
a season or less, of the lag-1 differences, a different quantity (on monthly data with a trend of
1 a month: 1 instead of 12). Their realized MASE came out twice the backtest's and more for a
forecaster as good as ever, and the verdict flipped to degraded; such points now have no MASE
(they are still counted in `n` and scored by MAE and sMAPE), nor does seasonal naive on them.

as_of and scored_at are instants (naive UTC, the store's axis); `ds` is on the source's axis. They
are compared on the clock the publish used to cut its data (`timekeys.as_of_on_ds`): sub-daily
`ds` are naive UTC instants, compared as they are; daily and coarser `ds` are the source's local
calendar dates, compared with the instant's wall time in the source's `tz`. Comparing the UTC
instant with local dates scored a New York run's first forecast day as 'after scored_at' or left
it out, and took the MASE scale and seasonal naive from a day the run had not seen (or left out
one it had). Daily times written with an offset, or start-labelled with a time of day ('09:00'), were seen by
ingest from the instant they name (`shifts`, `periods.seen_shifts`): each series' bound moves with them (`observed_through_series`), so a point is scored by the
first run that had observed it and an as_of's history is what its run had observed.

`as_ofs_to_score` picks the as_ofs a run should (re)score: earlier than the run's as_of, and
either never scored or scored from actuals that ended before their forecasts could all have
been observed. A run never replaces rows scored from later actuals (a backfill of an old date
does not undo what a later run knew); a re-run of the same as_of reads its as_ofs again and rewrites
only those it scores on more points or corrected actuals (`newly_scored`): the first run may have
read a half-written source. Re-running on the same data gives the same table.

`flag_lookahead` marks the rows whose forecasts were made by a model trained on data after their
as_of (`lookahead`): a backfill (or `--as-of` run) of a date no model had been promoted for
forecasts it with a later model (`flows.forecast.model_for_as_of`, its receipt says "not the ones a
run at this as_of could have made"). Those forecasts saw the actuals they are scored against: they
are still scored and stored, but `assess_decay` leaves them out of its verdict (their optimistic
MASE read as 'healthy', or 'recovered'), and the report shows them apart.

`assess_decay` judges a dataset over its last N scored as_ofs (not lookahead): degraded when the
realized MASE exceeds what the backtest promised by more than a tolerance, or when the forecasts did
worse than seasonal naive on the same points. Where the models that published them were ranked on RMSSE
(data classed intermittent, `evaluation.intermittency`) it judges the realized RMSSE against the backtest's
RMSSE instead, with the same tolerance, and against seasonal naive's RMSSE on the same points, and says so; a
window of versions ranked on each judges each version on its own metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from flowcast.columns import quantile_col
from flowcast.data.calendar import is_subdaily, local_season_us, same_grid, shift
from flowcast.evaluation.metrics import abs_error, inside_interval, mase_scale, rmsse_scale
from flowcast.figures import score_pair, score_text
from flowcast.timekeys import (
    local_wall,
    naive_utc_expr,
    observed_through_expr,
    season_ago_local,
    storage_naive,
    wall_instant,
    zones_keeping,
)
from flowcast.wording import noun, plural

LEVELS = (80, 95)
METRIC_COLUMNS = ["n", "mae", "mase", "n_mase", "rmsse", "smape", "coverage80", "coverage95", "n_cov80", "n_cov95",
                  "mae_snaive", "mase_snaive", "rmsse_snaive"]
_COUNTS = ("n", "n_mase", "n_cov80", "n_cov95")
REALIZED_COLUMNS = ["dataset", "as_of", "model", "model_version", "step", *METRIC_COLUMNS, "lookahead", "scored_at"]


# ------------------------------------------------------------------------------------ intervals
def interval_columns(columns: Sequence[str], level: int) -> tuple[str, str] | None:
    """(lower, upper) column of the central `level`% interval in a forecast frame, or None.

    Named intervals (`y_hat_lo80` / `y_hat_hi80`) win; otherwise the quantile pair that bounds it
    (`y_hat_q10` / `y_hat_q90` for 80%, `y_hat_q2.5` / `y_hat_q97.5` for 95%)."""
    named = (f"y_hat_lo{level}", f"y_hat_hi{level}")
    if all(c in columns for c in named):
        return named
    tail = (1 - level / 100) / 2
    pair = (quantile_col(tail), quantile_col(1 - tail))
    return pair if all(c in columns for c in pair) else None


def _empty(dataset: str | None = None) -> pl.DataFrame:
    schema: dict[str, Any] = {
        "dataset": pl.Utf8, "as_of": pl.Datetime("us"), "model": pl.Utf8, "model_version": pl.Utf8,
        "step": pl.Int32, **{m: pl.Int64 if m in _COUNTS else pl.Float64 for m in METRIC_COLUMNS},
        "lookahead": pl.Boolean, "scored_at": pl.Datetime("us"),
    }
    return pl.DataFrame(schema=schema)


def flag_lookahead(realized: pl.DataFrame, trained: Mapping[str, datetime | None],
                   recorded: Mapping[tuple[datetime, str], bool] | None = None) -> pl.DataFrame:
    """`realized` with `lookahead`: what its publish recorded (`recorded`: (as_of, model_version) -> whether that
    version's training data ended after what the run at that as_of observed, `flows.forecast.saw_after`, the rule
    of the forecast's warning), else True where the row's model_version was trained at an as_of after the row's
    (`trained`: model_version -> the as_of its training data ended at, naive UTC; a publish of an older flowcast
    recorded no flag), False where it was not, null where neither is known (a version in neither). A row that
    already has a value keeps it: what was known when it was scored stands (a version removed since does not unflag
    it)."""
    known = {v: t for v, t in trained.items() if v and t is not None}
    if known:
        after = pl.col("model_version").replace_strict(known, default=None, return_dtype=pl.Datetime("us")) \
            > pl.col("as_of")
    else:
        after = pl.lit(None, dtype=pl.Boolean)
    if recorded:
        marks = pl.DataFrame({"as_of": [a for a, _ in recorded], "model_version": [v for _, v in recorded],
                              "__recorded": list(recorded.values())},
                             schema={"as_of": realized.schema["as_of"], "model_version": pl.Utf8,
                                     "__recorded": pl.Boolean})
        realized = realized.join(marks, on=["as_of", "model_version"], how="left", maintain_order="left")
        after = pl.coalesce(pl.col("__recorded"), after)
    flag = pl.coalesce(pl.col("lookahead").cast(pl.Boolean), after) if "lookahead" in realized.columns else after
    return realized.with_columns(flag.alias("lookahead")).drop("__recorded", strict=False)


# ------------------------------------------------------------------------------------ scoring
def observed_through_series(keys: pl.DataFrame, *, freq: str, tz: str | None, aggregate: str = "none",
                            time_label: str = "start", shifts: pl.DataFrame | None = None) -> pl.Series:
    """Per row of `keys` (unique_id, at: a naive UTC instant), the latest `ds` of that series a run at `at` had
    observed, on the source's ds axis: `timekeys.observed_through` (the instant's wall time in `tz` for daily and
    coarser data; an aggregated source's period once over; an end-labelled source's bound moved back).

    Where the series' periods are seen at another instant than their ds names (`shifts`, `periods.seen_shifts`:
    daily times written with an offset), its ds are wall times in the offsets they were written in: the instant is
    read on that clock, `at` plus the offset the series was written in at that instant, that of its period observed
    nearest it (`seen_shifts`' cut: a row's instant, an aggregated period's end), not of a period starting near its
    wall time in `tz` (on a daylight-saving change day that period's offset, or `tz`'s before the change, put the
    cut an hour off). The periods ingest kept for a run at that instant, by the rule it cut them by. Where the
    source's periods were written on one zone's clock (`written_clock`: New York's -04:00 and -05:00 across a
    change), the instant is read on that clock, the offset it had then: a series with no period near it (one that
    stopped before a change, or a gap across it) was read in the offset of its period before the change, an hour
    off. In a file mixing zones each series is read on the clock of the series written in its offsets
    (`series_clocks`); one no clock reads (one offset alone: nothing tells daylight saving from a fixed offset)
    keeps its own. A series without such periods, and every series without `shifts` (None: every time without an offset), is
    cut by `observed_through` itself."""
    at = pl.col("at").cast(pl.Datetime("us"))
    frame = keys.select(pl.col("unique_id").cast(pl.Utf8), at.alias("__at"),
                        (at if is_subdaily(freq) else local_wall(at, tz)).cast(pl.Datetime("us")).alias("__at_ds"))
    if shifts is not None and shifts.height and frame.height:
        # the instant on the axis of the cuts: an end-labelled row's was moved back with its time (`label_start`)
        key = pl.col("__at") if aggregate != "none" else observed_through_expr(pl.col("__at"), freq=freq,
                                                                              time_label=time_label)
        # (a shifts frame without `lag`: periods seen at the start of their day on their clock)
        lag = pl.col("lag") if "lag" in shifts.columns else pl.lit(timedelta(0))
        near = shifts.select(pl.col("unique_id").cast(pl.Utf8), pl.col("cut").cast(pl.Datetime("us")).alias("__key"),
                             pl.col("offset").cast(pl.Duration("us")),
                             lag.cast(pl.Duration("us")).alias("__lag")).sort("__key")
        frame = (frame.with_row_index("__row").with_columns(key.alias("__key")).sort("__key")
                 .join_asof(near, on="__key", by="unique_id", strategy="nearest", check_sortedness=False)
                 .sort("__row"))
        offset = pl.col("offset")
        clock = series_clocks(shifts, frame.select("unique_id", "__at"))
        if clock is not None:  # a series with periods written with an offset: its clock's at that instant
            frame = frame.join(clock, on=["unique_id", "__at"], how="left", maintain_order="left")
            offset = pl.when(offset.is_not_null()).then(pl.coalesce(pl.col("__clock"), offset))
        # a start-labelled time of day ('09:00'): its period is seen that long after its day starts (`lag`), as ingest
        # sees it (`DS_SEEN`), not from the start of its day
        at_ds = pl.coalesce(pl.col("__at") + offset, pl.col("__at_ds")) - pl.col("__lag").fill_null(timedelta(0))
        frame = frame.select("unique_id", at_ds.alias("__at_ds"))
    return frame.select(observed_through_expr(pl.col("__at_ds"), freq=freq, aggregate=aggregate,
                                              time_label=time_label).alias("through")).to_series()


_MAX_CLOCKS = 64  # sets of offsets a source's series are grouped by to find their clocks (a file of a few zones)


def series_clocks(shifts: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame | None:
    """unique_id, __at, __clock: for each (series, naive UTC instant) of `keys` (unique_id, __at), the UTC offset of
    the clock that series was written on at that instant (`written_clock`). Where every period of the source was
    written on one zone's clock, that clock for every series. In a file mixing zones (New York's series beside
    Berlin's: no zone keeps every offset), each series' clock is that of the series written in its offsets: the
    series of one set of offsets (-05:00 and -04:00), with those of one offset among them only (a series that
    stopped before a change) where no other set holds that offset; a series no clock reads (one offset alone, or in
    several sets) keeps its own. None where no series has a clock."""
    whole = written_clock(shifts, keys.get_column("__at"))
    pairs = keys.select(pl.col("unique_id").cast(pl.Utf8), pl.col("__at").cast(pl.Datetime("us"))).unique()
    if whole is not None:
        return pairs.join(whole, on="__at")
    written = shifts.select(pl.col("unique_id").cast(pl.Utf8), pl.col("offset").cast(pl.Duration("us"))).drop_nulls()
    sets = (written.group_by("unique_id").agg(pl.col("offset").unique().sort().alias("offsets"))
            .with_columns(pl.col("offsets").list.len().alias("n")))
    several = sets.filter(pl.col("n") > 1).group_by("offsets").agg("unique_id")
    if not 0 < several.height <= _MAX_CLOCKS:
        return None
    alone = sets.filter(pl.col("n") == 1).select("unique_id", pl.col("offsets").list.first().alias("offset"))
    holding = several.explode("offsets").group_by("offsets").len()  # how many sets hold each offset
    alone = alone.join(holding.filter(pl.col("len") == 1), left_on="offset", right_on="offsets", how="semi")
    found = []
    for offsets, ids in several.iter_rows():
        members = [*ids, *alone.filter(pl.col("offset").is_in(offsets)).get_column("unique_id")]
        mine = pairs.filter(pl.col("unique_id").is_in(members))
        clock = written_clock(shifts.filter(pl.col("unique_id").cast(pl.Utf8).is_in(members)), mine.get_column("__at"))
        if clock is None and len(members) > len(ids):  # those of one offset are not on its clock: the set's alone
            mine = pairs.filter(pl.col("unique_id").is_in(ids))
            clock = written_clock(shifts.filter(pl.col("unique_id").cast(pl.Utf8).is_in(ids)), mine.get_column("__at"))
        if clock is not None:
            found.append(mine.join(clock, on="__at"))
    return pl.concat(found) if found else None


def written_clock(shifts: pl.DataFrame, ats: pl.Series) -> pl.DataFrame | None:
    """__at, __clock: at each distinct instant of `ats` (naive UTC), the UTC offset of the clock the periods of
    `shifts` (`periods.seen_shifts`: each period's offset at the instant it became observed, `cut`) were written
    on, where the zones that keep every one of those offsets (`timekeys.zones_keeping`: New York's -04:00 and -05:00
    across a change, and the zones of the same clocks) all had one offset then. None where the periods carry one
    offset alone (no change seen: nothing tells a clock with daylight saving from a fixed offset; each series keeps
    its own) or no zone keeps them all (series written in several zones, a clock of no zone)."""
    pairs = (shifts.select(pl.col("cut").cast(pl.Datetime("us")), pl.col("offset").cast(pl.Duration("us")))
             .drop_nulls().unique().sort("cut", "offset"))
    if pairs.get_column("offset").n_unique() < 2:
        return None
    # the first and last period of each run in one offset rule out nearly every zone, cheaply; the few left are
    # checked against every period (a zone with a change of its own inside a run)
    runs = (pairs.with_columns((pl.col("offset") != pl.col("offset").shift()).fill_null(True).cum_sum().alias("run"))
            .group_by("run", maintain_order=True)
            .agg(pl.col("cut").first().alias("first"), pl.col("cut").last().alias("last"), pl.col("offset").first()))
    examples = [(t, offset) for first, last, offset in runs.select("first", "last", "offset").iter_rows()
                for t in (first, last)]
    utc = pl.col("cut").dt.replace_time_zone("UTC")

    def keeps_all(zones: list[str]) -> list[str]:
        if not zones:
            return []
        kept = [(utc.dt.convert_time_zone(z).dt.replace_time_zone(None) - pl.col("cut") == pl.col("offset")).all()
                .alias(z) for z in zones]
        try:
            return [z for z, ok in pairs.select(kept).row(0, named=True).items() if ok]
        except pl.exceptions.PolarsError:  # a zone polars' own time zone database lacks: each on its own
            return [] if len(zones) == 1 else [z for z in zones if keeps_all([z])]

    zones = keeps_all(zones_keeping(examples))
    if not zones:
        return None
    at = pl.col("__at").dt.replace_time_zone("UTC")
    offsets = [at.dt.convert_time_zone(z).dt.replace_time_zone(None) - pl.col("__at") for z in zones]
    return (pl.DataFrame({"__at": ats.cast(pl.Datetime("us"))}).drop_nulls().unique()
            .with_columns(pl.concat_list(offsets).alias("__offsets"))
            .filter(pl.col("__offsets").list.n_unique() == 1)
            .select("__at", pl.col("__offsets").list.first().cast(pl.Duration("us")).alias("__clock")))


def min_scale_history(season_length: int) -> int:
    """Rows of history a realized MASE scale needs: the season plus max(season, 4) seasonal
    differences (24 monthly, 8 quarterly, 5 yearly)."""
    m = max(1, int(season_length))
    return m + max(m, 4)


def score_realized(
    forecasts: pl.DataFrame,
    actuals: pl.DataFrame,
    history: pl.DataFrame,
    *,
    dataset: str,
    season_length: int,
    freq: str,
    scored_at: datetime,
    tz: str | None = None,
    aggregate: str = "none",
    time_label: str = "start",
    trained: Mapping[str, datetime | None] | None = None,
    shifts: pl.DataFrame | None = None,
    recorded: Mapping[tuple[datetime, str], bool] | None = None,
) -> pl.DataFrame:
    """Realized accuracy of `forecasts` (published rows: as_of, unique_id, ds, step, model,
    model_version, y_hat and optional interval or quantile columns) against `actuals` (observed
    unique_id, ds, y; null y is not an observation), for forecasts made before `scored_at` and
    periods up to `scored_at`.

    `history` (unique_id, ds, y, the series as the pipeline sees them, gaps filled) gives each
    series' MASE scale and its seasonal-naive forecast, both from rows with ds <= that as_of.
    `tz`: the source's time zone; as_of and scored_at (naive UTC instants) meet `ds` on the axis
    the publish cut its data on (`timekeys.as_of_on_ds`: local dates for daily and coarser data).
    `aggregate`: the source's; with one, a run observed a period once it had ended, so the period holding
    an as_of is an actual of that publish, and not in its history (`timekeys.observed_through`).
    `time_label`: the source's; "end" (ds moved back to interval starts) moves each as_of's bound back with them.
    `trained`: model_version -> the as_of its training data ended at, `recorded`: (as_of, model_version) -> the
    `lookahead` its publish recorded, read first; they set `lookahead` (`flag_lookahead`).
    `shifts`: where daily times were written with an offset (`periods.seen_shifts`), each series' periods as seen
    by the instant they name: a point is scored once the run at `scored_at` had observed it, and each as_of's history
    is what its run had observed (`observed_through_series`).
    Returns REALIZED_COLUMNS, one row per (as_of, model, step) with at least one point."""
    need = ["as_of", "unique_id", "ds", "step", "y_hat"]
    missing = [c for c in need if c not in forecasts.columns]
    if missing:
        raise ValueError(f"published forecasts lack columns {missing} (have {forecasts.columns})")
    if forecasts.height == 0:
        return _empty()
    m = max(1, int(season_length))
    fc = forecasts
    if "model" not in fc.columns:
        fc = fc.with_columns(pl.lit("unknown", dtype=pl.Utf8).alias("model"))
    if "model_version" not in fc.columns:
        fc = fc.with_columns(pl.lit(None, dtype=pl.Utf8).alias("model_version"))
    bounds = {lvl: interval_columns(fc.columns, lvl) for lvl in LEVELS}
    keep = ["as_of", "unique_id", "ds", "step", "model", "model_version", "y_hat"]
    keep += [c for pair in bounds.values() if pair for c in pair]
    fc = fc.select(
        pl.col("as_of").cast(pl.Datetime("us")), pl.col("unique_id").cast(pl.Utf8), pl.col("ds").cast(pl.Datetime("us")),
        pl.col("step").cast(pl.Int32), pl.col("model").cast(pl.Utf8), pl.col("model_version").cast(pl.Utf8),
        *[pl.col(c).cast(pl.Float64) for c in keep[6:]],
    )
    # the last ds each series' run had observed, at its as_of and at scored_at, on the ds axis the publish cut on
    # (local wall time for daily and coarser data; by the instant where times were written with an offset)
    def through(keys: pl.DataFrame) -> pl.Series:
        return observed_through_series(keys, freq=freq, tz=tz, aggregate=aggregate, time_label=time_label,
                                       shifts=shifts)

    fc = fc.with_columns(through(fc.select("unique_id", pl.col("as_of").alias("at"))).alias("__as_of_ds"))
    ids = fc.select("unique_id").unique()
    scored_ds = ids.with_columns(through(ids.with_columns(pl.lit(scored_at, pl.Datetime("us")).alias("at")))
                                 .alias("__scored_ds"))
    fc = (fc.join(scored_ds, on="unique_id", how="left", maintain_order="left")
          .filter((pl.col("as_of") < scored_at) & (pl.col("ds") <= pl.col("__scored_ds"))).drop("__scored_ds"))
    obs = (
        actuals.select(pl.col("unique_id").cast(pl.Utf8), pl.col("ds").cast(pl.Datetime("us")),
                       pl.col("y").cast(pl.Float64))
        .join(scored_ds, on="unique_id", how="inner", maintain_order="left")
        .filter(pl.col("y").is_not_null() & pl.col("y").is_finite() & (pl.col("ds") <= pl.col("__scored_ds")))
        .drop("__scored_ds")
        .unique(["unique_id", "ds"], keep="last")
    )
    rows = fc.join(obs, on=["unique_id", "ds"], how="inner")
    if rows.height == 0:
        return _empty()

    hist = history.select(pl.col("unique_id").cast(pl.Utf8), pl.col("ds").cast(pl.Datetime("us")),
                          pl.col("y").cast(pl.Float64))
    # each series' MASE scale from its history up to the as_of the forecast was made at
    cutoffs = rows.select("unique_id", pl.col("__as_of_ds").alias("cutoff")).unique()
    scales = mase_scale(hist, m, cutoffs, history=True, freq=freq, tz=tz).join(
        rmsse_scale(hist, cutoffs), on=["unique_id", "cutoff"], how="left").rename({"cutoff": "__as_of_ds"})
    rows = rows.join(scales, on=["unique_id", "__as_of_ds"], how="left")
    # the seasonal-naive forecast of that as_of: the value one (or more) seasons before ds,
    # from a period the run at as_of had seen (ds - m * ceil(step / m) periods <= its last ds)
    back = -(m * ((pl.col("step").cast(pl.Int64) + m - 1) // m))
    rows = rows.with_columns(shift(pl.col("ds"), back, freq).alias("__naive_ds"))
    last_ds = shift(pl.col("ds"), -pl.col("step").cast(pl.Int64), freq)  # the series' last ds at that as_of
    season_us = local_season_us(freq, tz, m)
    if season_us is not None:  # sub-daily data of a zone: the same local time, as `baseline_forecast` takes it
        assert tz is not None
        local = pl.col("__local_ds")
        # a local time on the series' grid is the source even where the history has no value there (a gap: not
        # scored, as `baseline_forecast` reads the imputed value there, not one an hour off); one off the grid (an
        # offset change that is not a whole number of periods) keeps the periods back, as `baseline_forecast` does
        rows = (rows.with_columns(season_ago_local(pl.col("ds"), last_ds, tz, season_us).alias("__local_ds"))
                .with_columns(pl.when(same_grid(local, pl.col("ds"), freq)).then(local).otherwise(pl.col("__naive_ds"))
                              .alias("__naive_ds"))
                .drop("__local_ds"))
    # a history shorter than a season at that as_of published plain naive (`baseline_forecast`: the last value for
    # every step), not the value a season before: its seasonal naive is that too (it read 24 local hours back)
    rows = rows.with_columns(pl.when(pl.col("history") < m).then(last_ds).otherwise(pl.col("__naive_ds"))
                             .alias("__naive_ds"))
    naive = hist.rename({"ds": "__naive_ds", "y": "__naive"})
    rows = rows.join(naive, on=["unique_id", "__naive_ds"], how="left").with_columns(
        pl.when(pl.col("__naive_ds") <= pl.col("__as_of_ds")).then(pl.col("__naive")).alias("__naive")
    )

    err = abs_error("y", "y_hat")
    usable = ((pl.col("scale") > 0) & (pl.col("history") >= min_scale_history(m))).fill_null(False)
    # each series' RMSSE over the steps of its as_of scored (the mean squared error over the naive forecast's
    # in-sample mean squared one-step difference up to the as_of, square-rooted), on each of its rows
    squared = pl.when(usable & (pl.col("scale_sq") > 0)).then(err * err / pl.col("scale_sq"))
    naive_err = (pl.col("y") - pl.col("__naive")).abs()
    squared_naive = pl.when(usable & (pl.col("scale_sq") > 0)).then(naive_err * naive_err / pl.col("scale_sq"))
    rows = rows.with_columns(
        pl.when(squared.is_not_null()).then(squared.mean().over("as_of", "model", "unique_id").sqrt())
        .alias("__rmsse"),
        pl.when(squared_naive.is_not_null()).then(squared_naive.mean().over("as_of", "model", "unique_id").sqrt())
        .alias("__rmsse_snaive"))
    scaled = pl.when(usable).then(err / pl.col("scale"))
    denom = pl.col("y").abs() + pl.col("y_hat").abs()
    smape_row = pl.when(denom == 0).then(0.0).otherwise(200.0 * err / denom)
    aggs = [
        pl.col("model_version").drop_nulls().first().alias("model_version"),
        pl.len().cast(pl.Int64).alias("n"),
        err.mean().alias("mae"),
        scaled.mean().alias("mase"),
        usable.sum().cast(pl.Int64).alias("n_mase"),
        # RMSSE on MASE's points (their histories have a seasonal scale > 0, so a one-step one too), as the backtest
        # computes the one it is judged against: each series' own over the steps of its as_of (`__rmsse`), averaged
        # over the series; the root of the squared errors pooled over the series of a step put the worst series'
        # weight on it (Jensen), and forecasts exactly as good as their backtest read degraded
        pl.col("__rmsse").mean().alias("rmsse"),
        smape_row.mean().alias("smape"),
    ]
    for lvl, pair in bounds.items():
        if pair is None:
            aggs += [pl.lit(None, dtype=pl.Float64).alias(f"coverage{lvl}"), pl.lit(0, pl.Int64).alias(f"n_cov{lvl}")]
        else:
            lo, hi = pair
            bounded = pl.col(lo).is_not_null() & pl.col(hi).is_not_null()
            inside = pl.when(bounded).then(inside_interval(pl.col("y"), pl.col(lo), pl.col(hi)).cast(pl.Float64))
            # (its own count: the points of a series published without the interval are in `n` only, and a
            # coverage weighted by `n` gave a step of such points the weight of their count, probe45)
            aggs += [inside.mean().alias(f"coverage{lvl}"), bounded.sum().cast(pl.Int64).alias(f"n_cov{lvl}")]
    aggs += [naive_err.mean().alias("mae_snaive"),
             pl.when(usable).then(naive_err / pl.col("scale")).mean().alias("mase_snaive"),
             # seasonal naive's RMSSE on RMSSE's points, as its MASE is on MASE's, and computed as RMSSE is (each
             # series' over the steps of its as_of, averaged): what an RMSSE verdict compares with
             pl.col("__rmsse_snaive").mean().alias("rmsse_snaive")]
    out = flag_lookahead(rows.group_by("as_of", "model", "step").agg(aggs), trained or {}, recorded)
    return (
        out.with_columns(pl.lit(dataset, dtype=pl.Utf8).alias("dataset"),
                         pl.lit(scored_at, dtype=pl.Datetime("us")).alias("scored_at"))
        .with_columns(pl.col(c).fill_nan(None) for c in METRIC_COLUMNS if c not in _COUNTS)
        .select(REALIZED_COLUMNS)
        .sort("as_of", "model", "step")
    )


def as_ofs_to_score(
    published: Sequence[datetime],
    realized: pl.DataFrame,
    *,
    scored_at: datetime,
    horizon: int,
    freq: str,
    horizons: Mapping[datetime, int] | None = None,
    tz: str | None = None,
) -> list[datetime]:
    """The published as_ofs a run at `scored_at` should (re)score, oldest first.

    An as_of qualifies when it is earlier than `scored_at` and its realized rows (if any) were
    scored from actuals that ended before `scored_at` and before the as_of was settled: two
    horizons after it, when every forecast it published has long had its period. The horizon is
    the one the as_of was published with (`horizons`: as_of -> its forecasts' steps), else
    `horizon` (this run's): a run whose horizon is shorter than a publish's (12 months then, 3 now)
    settled it after 6 months, and its steps 7..12 were never scored. Rows scored after
    `scored_at` are never replaced (a backfill of an old date must not undo what a later run knew);
    rows scored at `scored_at` (a re-run of the same as_of) are read again, and `newly_scored` writes
    them only where that run scores more points or corrected actuals: a run that read a half-written
    source scored an as_of on the rows it saw, and the re-run with the whole file kept those rows for
    good. A settled as_of is not read again by a later run.

    Every time is an instant, as everywhere (`timekeys.as_instant`): naive means UTC, aware values (and zoned
    `as_of` / `scored_at` columns of `realized`) are compared by the instant they name, so two spellings of one
    as_of are one. Two horizons of daily or coarser periods are counted on the source's calendar (`tz`: a day of
    23 or 25 hours across a daylight-saving change, a month from one local midnight to the next; a wall time reached
    twice, in the repeated autumn hour, is its first instant, and one skipped in spring the jump past it,
    `timekeys.wall_instant`), sub-daily ones on the instant. Returns the as_ofs as `published` gives them."""
    at = storage_naive(scored_at)
    by_instant: dict[datetime, datetime] = {}
    for a in published:  # the first spelling of each instant
        by_instant.setdefault(storage_naive(a), a)
    steps_of = {storage_naive(a): h for a, h in (horizons or {}).items()}
    last: dict[datetime, datetime] = {}
    if realized.height:
        rows = realized.select(naive_utc_expr("as_of", realized.schema["as_of"]),
                               naive_utc_expr("scored_at", realized.schema["scored_at"]))
        for a, s in rows.group_by("as_of").agg(pl.col("scored_at").max()).iter_rows():
            last[a] = s
    todo = [a for a in by_instant if a < at and (a not in last or last[a] <= at)]
    if not todo:
        return []
    steps = [max(1, int(steps_of.get(a) or horizon)) for a in todo]
    local = not is_subdaily(freq) and tz not in (None, "UTC")
    # on the source's calendar (its wall clock, across daylight-saving changes), back to the instant the clock first
    # reads that wall time (`wall_instant`: the earlier of a repeated one, the jump past a skipped one)
    as_of = local_wall(pl.col("as_of"), tz) if local else pl.col("as_of")
    settled = (
        pl.DataFrame({"as_of": todo, "__h": steps}, schema={"as_of": pl.Datetime("us"), "__h": pl.Int64})
        .select("as_of", shift(as_of, 2 * pl.col("__h"), freq).alias("settled"))
    )
    out = []
    for a, settle_at in settled.iter_rows():
        if local:
            settle_at = storage_naive(wall_instant(settle_at, tz))
        if a in last and settle_at <= last[a] < at:  # settled by an earlier run (this one's own rows: read again)
            continue
        out.append(a)
    return [by_instant[a] for a in sorted(out)]


def _totals(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
    """Per as_of: the points scored and the sum of their absolute errors (what a corrected actual changes)."""
    return frame.group_by("as_of").agg(pl.col("n").sum().alias(f"__n{suffix}"),
                                       (pl.col("mae").fill_null(0.0) * pl.col("n")).sum().alias(f"__e{suffix}"))


def corrected(new: pl.DataFrame, existing: pl.DataFrame) -> list[datetime]:
    """The as_ofs that `new` scores on as many points as `existing` but with other errors: actuals corrected
    since they were scored (a restated month, a fixed meter reading), oldest first."""
    if new.height == 0 or existing.height == 0 or "mae" not in new.columns or "mae" not in existing.columns:
        return []
    both = _totals(new, "new").join(_totals(existing, "old"), on="as_of", how="inner")
    changed = both.filter((pl.col("__nnew") == pl.col("__nold")) & (
        (pl.col("__enew") - pl.col("__eold")).abs() > 1e-9 * pl.max_horizontal(pl.col("__eold").abs(), pl.lit(1.0))))
    return sorted(changed["as_of"].to_list())


def newly_scored(new: pl.DataFrame, existing: pl.DataFrame) -> pl.DataFrame:
    """Rows of `new` for the as_ofs where they know more than `existing` (more points scored, or
    never scored) or know better (as many points, but actuals corrected since: `corrected`): what a run
    writes. An as_of whose count did not grow and whose actuals did not change keeps its rows; one whose
    count fell (actuals withdrawn, a partial file) keeps them too."""
    if new.height == 0:
        return new
    totals = new.group_by("as_of").agg(pl.col("n").sum().alias("__new"))
    if existing.height:
        before = existing.group_by("as_of").agg(pl.col("n").sum().alias("__old"))
        totals = totals.join(before, on="as_of", how="left")
    else:
        totals = totals.with_columns(pl.lit(None, dtype=pl.Int64).alias("__old"))
    grew = totals.filter(pl.col("__old").is_null() | (pl.col("__new") > pl.col("__old")))["as_of"].to_list()
    return new.filter(pl.col("as_of").is_in([*grew, *corrected(new, existing)]))


# ------------------------------------------------------------------------------------ decay
@dataclass
class Decay:
    """A dataset's accuracy over its last scored as_ofs, and whether it is degraded."""

    dataset: str
    degraded: bool
    reasons: list[str]
    as_ofs: list[datetime] = field(default_factory=list)
    points: int = 0
    realized_mase: float | None = None
    promised_mase: float | None = None
    snaive_mase: float | None = None
    judged: bool = True  # False: too few points to judge
    lookahead: int = 0  # as_ofs left out: forecast by a model trained on data after them
    lookahead_unknown: int = 0  # as_ofs judged although whether their model saw their actuals is not known
    # what the verdict was judged on: "mase", "rmsse" where the models were ranked on it, "mase+rmsse" where the window
    # has versions of both, each judged on its own (`assess_decay`); verdicts stored before it was recorded read as
    # "mase", what they were judged on
    metric: str = "mase"
    realized_rmsse: float | None = None
    promised_rmsse: float | None = None
    snaive_rmsse: float | None = None  # seasonal naive's RMSSE on the same points (None: not recorded for them)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_ofs"] = [a.isoformat() for a in self.as_ofs]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decay:
        d = dict(d)
        d["as_ofs"] = [datetime.fromisoformat(a) for a in d.get("as_ofs", [])]
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _points(col: str, columns: Sequence[str]) -> pl.Expr:
    """The points a realized row's `col` averages: MASE, RMSSE and seasonal naive's MASE and RMSSE only those whose
    series had a scale (`n_mase`; rows scored before it was recorded: all, `n`), a level's coverage those with that
    interval (`n_cov80`, `n_cov95`; likewise), every other metric all of them."""
    if col in ("mase", "mase_snaive", "rmsse", "rmsse_snaive") and "n_mase" in columns:
        return pl.coalesce(pl.col("n_mase"), pl.col("n"))
    if col.startswith("coverage") and (count := f"n_cov{col.removeprefix('coverage')}") in columns:
        return pl.coalesce(pl.col(count), pl.col("n"))
    return pl.col("n")


def _weighted(frame: pl.DataFrame, col: str) -> float | None:
    ok = frame.filter(pl.col(col).is_not_null()).with_columns(_points(col, frame.columns).alias("__w"))
    if ok.height == 0 or ok["__w"].sum() == 0:
        return None
    value = float((ok[col] * ok["__w"]).sum()) / float(ok["__w"].sum())
    return value if math.isfinite(value) else None



def as_of_span(as_ofs: list[datetime]) -> str:
    """'2019-01-01 .. 2019-04-01' of sorted as_ofs, each as every instant reads (`timekeys.utc_text`: a midnight UTC
    its date, '2019-04-01 06:00 UTC' otherwise): one as_of alone ('2019-04-01 00:00 .. 2019-04-01 00:00' said one
    monthly as_of)."""
    from flowcast.timekeys import utc_text

    first, last = utc_text(as_ofs[0]), utc_text(as_ofs[-1])
    return first if first == last else f"{first} .. {last}"

def _finite(promised: Mapping[str, float | None]) -> dict[str, float]:
    """model_version -> its promise, the versions without a finite one left out."""
    return {k: v for k, v in promised.items() if v is not None and math.isfinite(v)}


def _promised(rows: pl.DataFrame, promises: Mapping[str, float | None]) -> float | None:
    """The promise of the models that published `rows` (model_version -> promise; one without a finite promise left
    out, `_finite`), weighted by the points the realized MASE and RMSSE it is compared with average (`_points`:
    `n_mase`; it was weighted by `n`, all the points, while the realized figure beside it was not)."""
    weights = _points("mase", rows.columns)
    ok = rows.with_columns(pl.col("model_version").replace_strict(
        _finite(promises), default=None, return_dtype=pl.Float64).alias("__promised"), weights.alias("__w")
    ).filter(pl.col("__promised").is_not_null())
    if ok.height == 0 or not ok["__w"].sum():
        return None
    value = float((ok["__promised"] * ok["__w"]).sum()) / float(ok["__w"].sum())
    return value if math.isfinite(value) else None


def promised_by_as_of(realized: pl.DataFrame, promised: Mapping[str, float | None]) -> pl.DataFrame:
    """as_of, promised: each as_of's promise as the verdict weighs it (`_promised`), for the table and the plot of
    realized accuracy (they weighted it by `n` and let a non-finite promise through, NaN for the whole as_of)."""
    rows = [(as_of, _promised(g, promised)) for (as_of,), g in realized.group_by("as_of")] if realized.height else []
    as_of = realized.schema.get("as_of", pl.Datetime("us"))
    return pl.DataFrame(rows, schema={"as_of": as_of, "promised": pl.Float64}, orient="row").sort("as_of")


def _rmsse_versions(rows: pl.DataFrame, promised_rmsse: Mapping[str, float | None] | None) -> list[str]:
    """The model versions among `rows` judged on RMSSE: ranked on it and recorded a backtest RMSSE, with an RMSSE in
    every row of theirs that has a MASE and in one at least (rows scored before realized RMSSE was stored have none).
    A backtest RMSSE of 0 (not a single error) is no yardstick: such a version is judged against seasonal naive alone,
    on RMSSE where each of its rows with an RMSSE has seasonal naive's too, else on MASE as before (as a MASE of 0
    is). The others (ranked on MASE, recorded before RMSSE was, gone) are judged on MASE."""
    if not promised_rmsse or not rows.height or "rmsse" not in rows.columns or "model_version" not in rows.columns:
        return []
    known = _finite(promised_rmsse)
    out = []
    for (version,), g in rows.filter(pl.col("model_version").is_in(sorted(known))).group_by("model_version"):
        if g["rmsse"].null_count() == g.height or g.filter(pl.col("mase").is_not_null() & pl.col("rmsse").is_null()
                                                           ).height:
            continue
        if known[str(version)] < 1e-9 and _on_points_of(g, "rmsse", "rmsse_snaive")[0] is None:
            continue  # exact and no seasonal naive's RMSSE to judge it against
        out.append(str(version))
    return sorted(out)


def _on_points_of(rows: pl.DataFrame, col: str, baseline: str) -> tuple[float | None, list[datetime]]:
    """Seasonal naive's `baseline` over the rows that have a `col` (point-weighted), where every one of them has it;
    else None and the as_ofs of the rows without it (scored before it was recorded)."""
    have = rows.filter(pl.col(col).is_not_null())
    lacking = (have.filter(pl.col(baseline).is_null()) if baseline in have.columns else have)["as_of"].unique()
    if lacking.len():
        return None, sorted(lacking.to_list())
    return _weighted(have, baseline), []


def _judge(rows: pl.DataFrame, promised: Mapping[str, float | None], *, dataset: str, tolerance: float,
           min_points: int, promised_rmsse: Mapping[str, float | None] | None = None) -> Decay:
    """The verdict on `rows` (the window's, none left out) on MASE, or on RMSSE when `promised_rmsse` is given (every
    version of `rows` judged on it, `_rmsse_versions`). Either metric has the same two rules: (1) realized exceeds
    the backtest's promise by more than `tolerance`; (2) realized is worse than seasonal naive's on the same points
    (`mase_snaive`, `rmsse_snaive`)."""
    # the figures as the verdict's table writes them (4 significant digits: 'realized MASE 0.8683' beside the table's
    # 0.8683; it wrote 0.868, 3 decimals)
    fig = score_text
    on_rmsse = promised_rmsse is not None
    as_ofs = sorted(rows["as_of"].unique().to_list())
    points = int(rows["n"].sum())
    realized_mase = _weighted(rows, "mase")
    snaive_mase = _weighted(rows, "mase_snaive")
    promised_mase = _promised(rows, promised)
    col, name = ("rmsse", "RMSSE") if on_rmsse else ("mase", "MASE")
    decay = Decay(dataset, False, [], as_ofs, points, realized_mase, promised_mase, snaive_mase, metric=col)
    unrecorded: list[datetime] = []
    if on_rmsse:
        decay.realized_rmsse = _weighted(rows, "rmsse")
        decay.promised_rmsse = _promised(rows, promised_rmsse or {})
        decay.snaive_rmsse, unrecorded = _on_points_of(rows, "rmsse", "rmsse_snaive")
    realized_value, promised_value, snaive_value = (
        (decay.realized_rmsse, decay.promised_rmsse, decay.snaive_rmsse) if on_rmsse
        else (realized_mase, promised_mase, snaive_mase))
    metric_points = int(rows.select(_points(col, rows.columns).filter(pl.col(col).is_not_null()).sum()).item() or 0)
    # 'the last scored as_of', 'the last 3 scored as_ofs' (it said 'the last 1 scored as_of', 'the last 3 scored as_of')
    last = "the last scored as_of" if len(as_ofs) == 1 else f"the last {plural(len(as_ofs), 'scored as_of')}"
    # the 'only N points' reasons say the count once ('only 9 points scored over ... (..., 9 points)' said it twice)
    over = f"{last} ({as_of_span(as_ofs)})"
    span = f"{last} ({as_of_span(as_ofs)}, {points} points)"
    if points < min_points:
        decay.judged = False
        decay.reasons.append(f"only {points} points scored over {over}; {min_points} needed to judge")
        return decay
    if realized_value is None:
        decay.judged = False
        decay.reasons.append(f"no {name} over {span} (constant histories, or histories shorter than two seasons at "
                             "those as_of)")
        return decay
    # MASE covers only the points whose series had a scale: a verdict on a few of them said 'healthy, realized MASE
    # 0.000 over ... 12 points' of a dataset whose constant series (no scale) were forecast 50% off
    covers = "" if metric_points >= points else (
        f" ({name} covers {metric_points} of the {points} points: the other series' histories then had no scale, "
        "constant or shorter than two seasons; their errors are in MAE and sMAPE only)")
    if metric_points < min_points:
        decay.judged = False
        decay.realized_mase = decay.snaive_mase = decay.realized_rmsse = decay.snaive_rmsse = None
        decay.reasons.append(f"only {metric_points} of the {points} points scored over {over} have a {name}; "
                             f"{min_points} needed to judge (the others' series had no scale: constant, or shorter "
                             "than two seasons)")
        return decay
    # a backtest without a single error (MASE 0: forecasts exact on every window) leaves a tolerance of 0 x 25%: the
    # first realized error, however small, read 'DEGRADED'; such a promise is not a yardstick, seasonal naive is
    exact = promised_value is not None and promised_value < 1e-9  # (8e-16: float rounding of versions before that)
    if promised_value is not None and not exact and realized_value > promised_value * (1 + tolerance):
        decay.degraded = True
        said, promise = score_pair(realized_value, promised_value, against=promised_value * (1 + tolerance))
        decay.reasons.append(
            f"realized {name} {said} over {span} exceeds the backtest's {promise} by more than {tolerance:.0%}{covers}")
    # seasonal naive's forecasts from the same as_of, scored by the same metric on the same points
    if snaive_value is not None and realized_value > snaive_value:
        decay.degraded = True
        said, naive = score_pair(realized_value, snaive_value)
        decay.reasons.append(
            f"realized {name} {said} over {span} is worse than seasonal naive's {naive} on the same points{covers}")
    if not decay.degraded:
        parts = [f"realized {name} {fig(realized_value)} over {span}"]
        if exact:
            parts.append(f"the backtest's forecasts were exact ({name} 0), no yardstick: judged against seasonal naive")
        elif promised_value is not None:
            parts.append(f"backtest promised {fig(promised_value)} (tolerance {tolerance:.0%})")
        if snaive_value is not None:
            parts.append(f"seasonal naive {fig(snaive_value)}")
        decay.reasons.append("; ".join(parts) + covers)
    if on_rmsse:
        # rows scored before seasonal naive's RMSSE was stored: the rule (2) would compare other points; not applied
        naive = ("seasonal naive's RMSSE on the same points" if not unrecorded else
                 f"not against seasonal naive: its RMSSE was not recorded for {len(unrecorded)} of those as_of "
                 f"({as_of_span(unrecorded)}: scored before it was)")
        decay.reasons.append("judged on RMSSE, the metric its models were ranked on (data classed intermittent), "
                             f"against the backtest's RMSSE and {naive}"
                             + (f" (realized MASE {fig(realized_mase)}, seasonal naive's MASE {fig(snaive_mase)})"
                                if realized_mase is not None and snaive_mase is not None else ""))
    return decay


def assess_decay(
    realized: pl.DataFrame,
    promised: Mapping[str, float | None],
    *,
    dataset: str,
    window: int,
    tolerance: float,
    min_points: int,
    promised_rmsse: Mapping[str, float | None] | None = None,
) -> Decay:
    """Judge the last `window` scored as_ofs of `dataset` (realized rows of that dataset).

    promised: model_version -> the backtest MASE stored with that model (what it promised).
    Degraded when (1) the realized MASE (point-weighted) exceeds the promised MASE of the models
    that published those forecasts by more than `tolerance` (0.25 = 25%), or (2) it exceeds
    the seasonal-naive MASE on the same points. With fewer than `min_points` points, nothing
    is judged (not degraded). Rows flagged `lookahead` (forecasts by a model trained on data after
    their as_of, which saw the actuals they are scored on) are left out, and counted.

    promised_rmsse: model_version -> the backtest RMSSE of a model that was ranked on RMSSE (data classed
    intermittent), None for the others. The rows of the versions ranked on RMSSE that recorded it (`_rmsse_versions`)
    are judged on RMSSE (`Decay.metric` "rmsse"): (1) the realized RMSSE against the promised one, the same tolerance,
    (2) against seasonal naive's RMSSE on the same points (`rmsse_snaive`; not applied where rows scored before it
    was recorded lack it, and said so). The others' on MASE, as before. A window of both (a dataset whose ranking
    changed) judges each version's rows on its own metric, each part against `min_points` alone: metric
    "mase+rmsse", degraded when either part is, the MASE figures the MASE part's and the RMSSE figures the RMSSE
    part's."""
    rows = realized.filter(pl.col("n") > 0) if realized.height else realized
    ahead: list[datetime] = []
    if rows.height and "lookahead" in rows.columns:
        ahead = sorted(rows.filter(pl.col("lookahead").fill_null(False))["as_of"].unique().to_list())
        rows = rows.filter(~pl.col("as_of").is_in(ahead))
    left = (f"{plural(len(ahead), 'scored as_of')} left out ({as_of_span(ahead)}): forecast by a model trained "
            f"on data after {noun(len(ahead), 'it', 'them')}, which saw the actuals "
            f"{noun(len(ahead), 'it is', 'they are')} scored on" if ahead else "")
    if rows.height == 0:
        if ahead:
            return Decay(dataset, False, [f"no honest forecast has realized actuals yet; {left}"], judged=False,
                         lookahead=len(ahead))
        return Decay(dataset, False, ["no forecast has realized actuals yet"], judged=False)
    as_ofs = sorted(rows["as_of"].unique().to_list())[-window:]
    rows = rows.filter(pl.col("as_of").is_in(as_ofs))
    unknown = (sorted(rows.filter(pl.col("lookahead").is_null())["as_of"].unique().to_list())
               if "lookahead" in rows.columns else [])
    if unknown:  # said, not hidden: a null used to read as honest without a word
        one = len(unknown) == 1
        left = "; ".join(x for x in (left, (
            f"{plural(len(unknown), 'judged as_of')} ({as_of_span(unknown)}) {'has' if one else 'have'} no record "
            f"of whether {'its' if one else 'their'} model was trained on data after {'it' if one else 'them'} (its "
            f"version is gone and {'its' if one else 'their'} publish is older than that record): counted as "
            "honest")) if x)
    on = _rmsse_versions(rows, promised_rmsse)
    by_rmsse = pl.col("model_version").is_in(on).fill_null(False) if on else pl.lit(False)
    rmsse_rows, mase_rows = rows.filter(by_rmsse), rows.filter(~by_rmsse)
    if not rmsse_rows.height:
        decay = _judge(rows, promised, dataset=dataset, tolerance=tolerance, min_points=min_points)
    elif not mase_rows.height:
        decay = _judge(rows, promised, dataset=dataset, tolerance=tolerance, min_points=min_points,
                       promised_rmsse=promised_rmsse)
    else:  # each version on the metric it was ranked on (the whole window used to fall back to MASE)
        by_mase = _judge(mase_rows, promised, dataset=dataset, tolerance=tolerance, min_points=min_points)
        by_rmsse_ = _judge(rmsse_rows, promised, dataset=dataset, tolerance=tolerance, min_points=min_points,
                           promised_rmsse=promised_rmsse)
        mase_versions = sorted({v or "unknown" for v in mase_rows["model_version"].to_list()})
        decay = Decay(dataset, by_mase.degraded or by_rmsse_.degraded, [
            (f"the window mixes versions ranked on MASE ({', '.join(mase_versions)}) and on RMSSE ({', '.join(on)}): "
             "each version's forecasts are judged on the metric it was ranked on")],
            as_ofs, int(rows["n"].sum()), by_mase.realized_mase, by_mase.promised_mase, by_mase.snaive_mase,
            judged=by_mase.judged or by_rmsse_.judged, metric="mase+rmsse", realized_rmsse=by_rmsse_.realized_rmsse,
            promised_rmsse=by_rmsse_.promised_rmsse, snaive_rmsse=by_rmsse_.snaive_rmsse)
        decay.reasons += [f"on MASE: {r}" for r in by_mase.reasons] + [f"on RMSSE: {r}" for r in by_rmsse_.reasons]
    decay.as_ofs, decay.lookahead, decay.lookahead_unknown = as_ofs, len(ahead), len(unknown)
    return _with_left_out(decay, left)


def _with_left_out(decay: Decay, left: str) -> Decay:
    if left:
        decay.reasons.append(left)
    return decay


def summary_by_as_of(realized: pl.DataFrame) -> pl.DataFrame:
    """One row per (dataset, as_of): points and point-weighted metrics over steps and models, the points MASE and
    each coverage cover (`n_mase`, `n_cov80`, `n_cov95`; null where a row scored before it was recorded has none), and
    `lookahead`: True when any of its forecasts was made by a model trained on data after it, else null when
    that is not known for one of them (a fallback model's null beside the champion's False), else False."""
    if realized.height == 0:
        return pl.DataFrame(schema={"dataset": pl.Utf8, "as_of": pl.Datetime("us"), "n": pl.Int64, "n_mase": pl.Int64,
                                    "n_cov80": pl.Int64, "n_cov95": pl.Int64,
                                    "mae": pl.Float64, "mase": pl.Float64, "rmsse": pl.Float64, "smape": pl.Float64,
                                    "coverage80": pl.Float64, "coverage95": pl.Float64, "mase_snaive": pl.Float64,
                                    "rmsse_snaive": pl.Float64, "lookahead": pl.Boolean})

    def wmean(c: str) -> pl.Expr:
        n = _points(c, realized.columns)
        w = pl.when(pl.col(c).is_not_null()).then(n)
        return ((pl.col(c) * n).sum() / w.sum()).alias(c)

    cols = [c for c in ("mae", "mase", "rmsse", "smape", "coverage80", "coverage95", "mase_snaive", "rmsse_snaive")
            if c in realized.columns]
    # the points MASE and each coverage cover; null where a row has none (scored before it was recorded, weighted by
    # `n`): polars sums nulls to 0, and 'n_cov80: 0' stood beside a coverage over all the as_of's points
    mase_points = [pl.when(pl.col(k).null_count() == 0).then(pl.col(k).sum()).alias(k)
                   for k in ("n_mase", "n_cov80", "n_cov95") if k in realized.columns]
    flag = pl.col("lookahead")  # max() alone skipped the nulls: an unknown row beside an honest one read honest
    ahead = ([pl.when(flag.any()).then(True).when(flag.null_count() > 0).then(None).otherwise(False)
              .alias("lookahead")] if "lookahead" in realized.columns else [])
    return (realized.group_by("dataset", "as_of").agg(pl.col("n").sum(), *mase_points, *[wmean(c) for c in cols],
                                                      *ahead)
            .with_columns(pl.col(c).fill_nan(None) for c in cols).sort("dataset", "as_of"))
