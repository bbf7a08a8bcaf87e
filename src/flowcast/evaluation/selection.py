"""Leaderboard and the champion/challenger promotion decision.

`leaderboard` averages each model's backtest metrics over series and windows (one row per
model) and `window_board` keeps them per window. `select` turns a leaderboard into a
`PromotionDecision`: the best candidate with finite forecasts is promoted only if it beats
the seasonal-naive baseline AND the production model (when there is one) on the configured
metric by the configured relative margin: score < other * (1 - margin). Every check that
failed or passed is a line in `reasons`, so the decision is data (shown in the Prefect UI,
stored with the run), not a log line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from flowcast.evaluation.backtest import BacktestResult
from flowcast.evaluation.metrics import METRICS
from flowcast.models.baselines import BASELINES  # never promoted unless named in `candidates`


def _metric_means(res: BacktestResult) -> dict[str, float | None]:
    cols = [c for c in res.metrics.columns if c in METRICS or c == "coverage"]
    if not res.metrics.height:
        return {c: None for c in cols}
    return res.metrics.select([pl.col(c).mean() for c in cols]).row(0, named=True)


def leaderboard(results: list[BacktestResult], metric: str) -> pl.DataFrame:
    """One row per model: model, smape, mase, mae, rmse, [coverage], n_windows, n_series,
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
        for m in ("smape", "mase", "mae", "rmse"):
            row[m] = means.get(m)
        if with_cov:
            row["coverage"] = means.get("coverage")
        row["n_windows"] = int(r.forecasts["window"].n_unique()) if r.forecasts.height else 0
        row["n_series"] = int(r.forecasts["unique_id"].n_unique()) if r.forecasts.height else 0
        row["n_nonfinite"] = r.n_nonfinite
        score = row[metric]
        row["finite"] = bool(r.finite and score is not None and math.isfinite(score))
        rows.append(row)
    schema: dict[str, Any] = {"model": pl.Utf8, **{m: pl.Float64 for m in ("smape", "mase", "mae", "rmse")}}
    if with_cov:
        schema["coverage"] = pl.Float64
    schema |= {"n_windows": pl.Int64, "n_series": pl.Int64, "n_nonfinite": pl.Int64, "finite": pl.Boolean}
    board = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    ranked = board.filter(pl.col("finite")).sort(metric, "model").with_row_index("rank", offset=1)
    board = board.join(ranked.select("model", pl.col("rank").cast(pl.Int64)), on="model", how="left")
    return board.sort("rank", "model", nulls_last=True)


def window_board(results: list[BacktestResult]) -> pl.DataFrame:
    """Per-window means: model, window, cutoff (latest cutoff of the window), mae, rmse, smape, mase[, coverage]."""
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


@dataclass
class PromotionDecision:
    promote: bool
    challenger: str | None
    incumbent: str | None
    metric: str
    challenger_score: float | None
    incumbent_score: float | None
    baseline_score: float | None
    margin: float
    reasons: list[str] = field(default_factory=list)
    baseline: str = "seasonal_naive"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        fmt = lambda v: "n/a" if v is None else f"{v:.4g}"
        verdict = f"**promote `{self.challenger}`**" if self.promote else "**no promotion**"
        lines = [
            f"### Promotion decision: {verdict}",
            "",
            f"| role | model | {self.metric} |",
            "| --- | --- | --- |",
            f"| challenger | {self.challenger or '-'} | {fmt(self.challenger_score)} |",
            f"| incumbent | {self.incumbent or '-'} | {fmt(self.incumbent_score)} |",
            f"| baseline | {self.baseline} | {fmt(self.baseline_score)} |",
            "",
            f"Required relative margin: {self.margin:.2%}",
            "",
            *[f"- {r}" for r in self.reasons],
        ]
        return "\n".join(lines)


def _score(board: pl.DataFrame, model: str, metric: str) -> tuple[float | None, bool]:
    row = board.filter(pl.col("model") == model)
    if not row.height:
        return None, False
    v = row[metric][0]
    return (None if v is None else float(v)), bool(row["finite"][0])


def select(
    board: pl.DataFrame,
    *,
    metric: str,
    margin: float,
    incumbent: str | None = None,
    baseline: str = "seasonal_naive",
    candidates: list[str] | None = None,
) -> PromotionDecision:
    """Pick the best finite candidate and decide whether it replaces the incumbent.

    candidates: models that may be promoted; default every model on the board except the
    baseline, the incumbent and the plain baselines in `BASELINES`.
    A missing or non-finite baseline blocks promotion (nothing to prove the challenger
    against); so does an incumbent that is named but absent from the board. A non-finite
    incumbent does not block: the challenger then only has to beat the baseline.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    on_board = board["model"].to_list()
    if candidates is None:
        cands = [m for m in on_board if m not in {baseline, incumbent, *BASELINES}]
    else:
        unknown = [c for c in candidates if c not in on_board]
        cands = [c for c in candidates if c in on_board]
    reasons: list[str] = []
    if candidates is not None and unknown:
        reasons.append(f"candidates not on the leaderboard: {unknown}")

    finite_c, bad_c = [], []
    for c in cands:
        s, ok = _score(board, c, metric)
        (finite_c if ok else bad_c).append((c, s))
    for c, s in bad_c:
        n_bad = board.filter(pl.col("model") == c)["n_nonfinite"][0] if "n_nonfinite" in board.columns else None
        if n_bad or n_bad is None:
            reasons.append(f"{c} is not eligible: forecasts not finite ({n_bad or 'some'} NaN/inf forecast values)")
        else:
            reasons.append(f"{c} is not eligible: its {metric} is undefined ({s}), e.g. MASE on constant history")

    base_score, base_ok = _score(board, baseline, metric)
    inc_score, inc_ok = (None, False) if incumbent is None else _score(board, incumbent, metric)
    decision = PromotionDecision(
        promote=False, challenger=None, incumbent=incumbent, metric=metric, challenger_score=None,
        incumbent_score=inc_score, baseline_score=base_score, margin=margin, reasons=reasons, baseline=baseline,
    )
    if not finite_c:
        reasons.append(f"no candidate with finite forecasts among {cands}")
        return decision
    challenger, ch_score = min(finite_c, key=lambda cs: (cs[1], cs[0]))
    decision.challenger, decision.challenger_score = challenger, ch_score
    assert ch_score is not None
    need = 1.0 - margin
    ok = True

    if base_score is None and baseline not in on_board:
        reasons.append(f"baseline {baseline} is missing from the leaderboard: cannot prove {challenger} beats it")
        ok = False
    elif not base_ok:
        reasons.append(f"baseline {baseline} has no finite {metric} ({base_score}): cannot compare")
        ok = False
    elif ch_score < base_score * need:
        reasons.append(
            f"{challenger} beats {baseline} on {metric}: {ch_score:.4g} < {base_score:.4g} x (1 - {margin:g})"
        )
    else:
        reasons.append(
            f"{challenger} does not beat {baseline} on {metric} by {margin:.2%}: "
            f"{ch_score:.4g} >= {base_score * need:.4g}"
        )
        ok = False

    if incumbent is None:
        reasons.append("no model in production: the challenger only has to beat the baseline")
    elif incumbent not in on_board:
        reasons.append(f"incumbent {incumbent} is missing from the leaderboard: cannot compare, keeping it")
        ok = False
    elif not inc_ok:
        reasons.append(f"incumbent {incumbent} has no finite {metric} ({inc_score}): only the baseline must be beaten")
    elif inc_score is not None and ch_score < inc_score * need:
        reasons.append(
            f"{challenger} beats incumbent {incumbent} on {metric}: {ch_score:.4g} < {inc_score:.4g} x (1 - {margin:g})"
        )
    else:
        reasons.append(
            f"{challenger} does not beat incumbent {incumbent} on {metric} by {margin:.2%}: "
            f"{ch_score:.4g} >= {(inc_score or 0) * need:.4g}"
        )
        ok = False
    decision.promote = ok
    return decision
