"""The leaderboard: one row per candidate, every one scored on the same backtest windows.

`leaderboard` averages each model's backtest metrics over series and windows (one row per
model) and `window_board` keeps them per window. `candidate_board` is the retrain's board: the
candidates of every kind (`flowcast.evaluation.candidates`) with their kind, point metrics,
interval coverage (80/95) and MSIS measured on windows the calibration did not see, how often
the fallback had to forecast for them, and their combination weights. The decision it feeds
lives in `flowcast.evaluation.decision`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import polars as pl

from flowcast.evaluation.backtest import BacktestResult
from flowcast.evaluation.metrics import METRICS, metric_name

if TYPE_CHECKING:
    from flowcast.evaluation.candidates import CandidateResult


_POINT = ("smape", "mase", "rmsse", "mae", "rmse")  # the point metrics of every board, in its column order


def _metric_means(res: BacktestResult) -> dict[str, float | None]:
    cols = [c for c in res.metrics.columns if c in METRICS or c == "coverage"]
    if not res.metrics.height:
        return {c: None for c in cols}
    return res.metrics.select([pl.col(c).mean() for c in cols]).row(0, named=True)


def leaderboard(results: list[BacktestResult], metric: str) -> pl.DataFrame:
    """One row per model: model, smape, mase, rmsse, mae, rmse, [coverage], n_windows, n_series,
    n_nonfinite, finite, rank (1 = best on `metric` among finite models; null otherwise),
    sorted by rank. `finite` is false when any forecast value is NaN/inf/null or the metric
    itself is not a finite number."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    names = [r.name for r in results]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"duplicate model names in the leaderboard: {dups}")
    with_cov = any("coverage" in r.metrics.columns for r in results)
    rows = []
    for r in results:
        means = _metric_means(r)
        row: dict[str, Any] = {"model": r.name}
        for m in _POINT:
            row[m] = means.get(m)
        if with_cov:
            row["coverage"] = means.get("coverage")
        row["n_windows"] = int(r.forecasts["window"].n_unique()) if r.forecasts.height else 0
        row["n_series"] = int(r.forecasts["unique_id"].n_unique()) if r.forecasts.height else 0
        row["n_nonfinite"] = r.n_nonfinite
        score = row[metric]
        row["finite"] = bool(r.finite and score is not None and math.isfinite(score))
        rows.append(row)
    schema: dict[str, Any] = {"model": pl.Utf8, **{m: pl.Float64 for m in _POINT}}
    if with_cov:
        schema["coverage"] = pl.Float64
    schema |= {"n_windows": pl.Int64, "n_series": pl.Int64, "n_nonfinite": pl.Int64, "finite": pl.Boolean}
    board = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    ranked = board.filter(pl.col("finite")).sort(metric, "model").with_row_index("rank", offset=1)
    board = board.join(ranked.select("model", pl.col("rank").cast(pl.Int64)), on="model", how="left")
    return board.sort("rank", "model", nulls_last=True)


def window_board(results: list[BacktestResult]) -> pl.DataFrame:
    """Per-window means: model, window, cutoff (latest cutoff of the window), mae, rmse, smape, mase, rmsse[, coverage]."""
    parts = []
    for r in results:
        cols = [c for c in r.metrics.columns if c in METRICS or c == "coverage"]
        parts.append(
            r.metrics.group_by("window")
            .agg(*[pl.col(c).mean() for c in cols], *([pl.col("cutoff").max()] if "cutoff" in r.metrics.columns else []))
            .with_columns(pl.lit(r.name).alias("model"))
        )
    if not parts:
        return pl.DataFrame(schema={"model": pl.Utf8, "window": pl.Int32})
    out = pl.concat(parts, how="diagonal_relaxed")
    return out.select("model", "window", *[c for c in out.columns if c not in ("model", "window")]).sort("model", "window")


_KIND_ORDER = {"statistical": 0, "network": 1, "ensemble": 2, "hybrid": 3}
# among tied statistical models, fewer fitted parameters first: on a backtest whose histories hold one point at
# each cut (a brand-new dataset) every model forecasts as naive does, so all tie, and damped (a trend fitted on a
# series' 3 points) published, ranked by its name, where nothing had scored its trend. The intermittent models by
# the parameters they fit: croston none (alpha fixed), adida one alpha, tsb two (they ranked by name, adida first,
# behind every model named here)
_STAT_ORDER = ("naive", "seasonal_naive", "snaive_week", "croston", "drift", "adida", "theta", "tsb", "dotm", "damped",
               "glin", "arima")


def _simplicity(c: CandidateResult) -> int:
    """Sort key among exactly tied candidates: fewer kinds of machinery first (statistical, network,
    ensemble, hybrid), then fewer components, then (one statistical model) fewer parameters."""
    own = _STAT_ORDER.index(c.name) if c.kind == "statistical" and c.name in _STAT_ORDER else len(_STAT_ORDER)
    return _KIND_ORDER.get(c.kind, len(_KIND_ORDER)) * 100_000 + len(c.spec.groups) * 100 + own


def candidate_board(cands: list[CandidateResult], metric: str) -> pl.DataFrame:
    """rank, model, kind, smape, mase, rmsse, mae, rmse, coverage80, coverage95, msis, n_windows, n_series,
    fallback (share of series x windows its fallback forecast), finite (eligible), weights, note;
    ranked by `metric` among eligible candidates (null rank otherwise), best first."""
    board = leaderboard([c.result for c in cands], metric).drop("rank")
    extra = pl.DataFrame(
        [{
            "model": c.name, "kind": c.kind,
            "coverage80": c.intervals.get("coverage80"), "coverage95": c.intervals.get("coverage95"),
            "msis": c.intervals.get("msis"),
            "fallback": (c.fallback_pairs + c.missing_pairs) / c.n_pairs if c.n_pairs else 0.0,
            "eligible": c.eligible, "weights": c.weights_text(),
            "note": c.why_not or (c.scoring if c.name == "production" else c.spec.note),
            "__simplicity": _simplicity(c),
        } for c in cands],
        schema={"model": pl.Utf8, "kind": pl.Utf8, "coverage80": pl.Float64, "coverage95": pl.Float64,
                "msis": pl.Float64, "fallback": pl.Float64, "eligible": pl.Boolean, "weights": pl.Utf8,
                "note": pl.Utf8, "__simplicity": pl.Int64},
    )
    board = board.join(extra, on="model", how="left").with_columns(
        (pl.col("finite") & pl.col("eligible")).alias("finite")).drop("eligible")
    # a tie goes to the production model (a challenger must be better to replace it), then to the
    # simpler candidate (a hybrid whose learned weights put everything on theta scores exactly as
    # theta does: theta is published), and only then by name; scores equal to 9 significant digits
    # are tied (weights summing to 1 leave the last bits of a blend of equal forecasts to chance)
    ranked = (board.filter(pl.col("finite")).with_columns((pl.col("model") != "production").alias("__challenger"))
              .sort(pl.col(metric).round_sig_figs(9), "__challenger", "__simplicity", "model")
              .with_row_index("rank", offset=1))
    board = board.join(ranked.select("model", pl.col("rank").cast(pl.Int64)), on="model", how="left")
    cols = ["rank", "model", "kind", *_POINT, "coverage80", "coverage95", "msis", "n_windows",
            "n_series", "fallback", "finite", "weights", "note"]
    return board.select(cols).sort("rank", "model", nulls_last=True)


def _partly_undefined(cands: list[Any], metric: str) -> str:
    """A sentence when `metric` (MASE) is undefined for some series in every window: the ranking rests on the
    others alone, which a board whose winner has MASE 0 and the worst sMAPE did not say (a constant or
    all-zero series, or one that repeats itself exactly every season, has a scale of 0)."""
    metrics = getattr(cands[0], "result", cands[0]).metrics
    if metric not in metrics.columns or not metrics.height:
        return ""
    per_series = metrics.group_by("unique_id").agg(pl.col(metric).is_not_null().any().alias("defined"))
    undefined = per_series.filter(~pl.col("defined"))["unique_id"].sort().to_list()
    if not undefined:
        return ""
    named = ", ".join(map(str, undefined[:5])) + (f" and {len(undefined) - 5} more" if len(undefined) > 5 else "")
    shown = metric_name(metric)
    # RMSSE (intermittent data): a part without any demand yet; sMAPE says little on zeros, RMSE ranks alike unscaled
    why, every = (("constant (no demand at all, say)", "rmse") if metric == "rmsse"
                  else ("constant or repeats itself exactly every season", "smape"))
    rest = "" if per_series.height - len(undefined) == 1 else f"{per_series.height - len(undefined)} "
    return (f"{shown} is undefined for {len(undefined)} of {per_series.height} series ({named}: a history that is "
            f"{why} has a scale of 0); the candidates are ranked on the "
            f"other {rest}series' {shown} (evaluation.metric = \"{every}\" ranks on "
            "every series)")


def usable_metric(cands: list[Any], metric: str) -> tuple[str, str]:
    """(the metric to rank on, a note) for backtests or candidates `cands`: `metric`, unless none has a finite value of it
    (MASE is undefined when every series repeats itself exactly each season: its scale is 0);
    then the first of smape, mae, rmse that is, and a sentence saying so."""
    def defined(m: str) -> bool:
        summaries = [getattr(c, "result", c).summary for c in cands]
        return any(x.get(m) is not None and math.isfinite(x[m]) for x in summaries)

    if not cands:
        return metric, ""
    if defined(metric):
        return metric, _partly_undefined(cands, metric)
    for m in ("smape", "mae", "rmse", "mase", "rmsse"):
        if m != metric and defined(m):
            return m, (f"{metric_name(metric)} is undefined for every candidate on this data (e.g. MASE or RMSSE when "
                       "each series repeats itself exactly every season, or when the history before the backtest window is "
                       f"too short for its scale); the candidates are ranked by {metric_name(m)} instead")
    return metric, ""
