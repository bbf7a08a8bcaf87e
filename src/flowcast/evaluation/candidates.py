"""The candidates of a retrain and how each is scored on the same backtest windows.

What is backtested (components): each network member (a cell trained with one seed, on the
oldest window's training data) and each statistical model. What competes (candidates), every one
scored on the same rows (series x windows x steps):

- each network cell (its seeds averaged: kind network, or ensemble with several seeds);
- each statistical model (naive, seasonal naive, theta, damped, ...);
- `comb`: the configured statistical models combined (kind statistical);
- `ensemble`: the cells combined (kind ensemble);
- `hybrid`: the cells and the configured statistical models combined (kind hybrid);
- `production`: the model in production (added by the flow, see `incumbent_spec`).

Combination weights are learned (`flowcast.evaluation.combine`): window k is forecast with
weights fitted on the windows before it (equal weights on window 0), so the score never comes
from the data that chose the weights; the published weights are fitted on every window. A
hand-set `model.blend` makes the hybrid's weights fixed instead.

A value beyond the declared bounds is cut at them (`columns.within_bounds`), as publishing does. A row a
candidate cannot forecast (a network's series that is too short, a value that is not finite) is forecast
by its fallback (the best statistical model that can), exactly as publishing does, so no candidate is
scored on fewer rows than another. Non-finite values count as failures: a candidate that fails on more series than
`max_fallback_share` of them (one series is always allowed when there are several: one bad series
never decides a run) is not eligible (`too_many_failures`).

Intervals (`flowcast.evaluation.conformal`): coverage80/95 and MSIS of each candidate come from
windows 1.. calibrated on the earlier windows (a one-window backtest: each half of the series
calibrated on the other half); the published calibration uses every window, except
for a candidate with a network trained once for the whole backtest (no `refit`): its intervals are
calibrated on the oldest window, the only one its networks forecast as freshly as the published
model does (on the M3 quarterly validation split the hybrid's 80% coverage went from 0.855 to 0.804).

More origins for the statistical candidates (`evaluation.calibration_windows`, the sub-daily recipe's 28): a
backtest of a few windows leaves a horizon of one day few errors that are alike, and every point of one window shares
that day's weather: on half-hourly vic_elecdemand the 2 windows' 96 errors put the published 80% / 95% intervals
around 0.56 / 0.73 of the next day's points. Those candidates are refit at every origin anyway, so their published
intervals are calibrated on windows a horizon apart, as many as asked (`calibration_windows`), each step on its own
errors (28 per step for one series: enough for a 95% quantile), the way statsforecast's conformal intervals take
n_windows origins of h steps; a combination with its published weights. The leaderboard's coverage stays the
cross-calibrated one of the backtest windows; candidates with a network keep the backtest's calibration, and say so
(`networks_kept_calibration`): a network is not refit per origin, and the trained backtest network cannot be
predicted at the older origins honestly (they lie in its training data), while the origins after its training are
the backtest's own windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from flowcast.columns import INTERVAL_COLUMNS, INTERVAL_LEVELS, within_bounds
from flowcast.data.freshness import when_text
from flowcast.data.lengths import _windows_that_fit, share_length
from flowcast.evaluation.backtest import BacktestResult, result_from_forecasts
from flowcast.evaluation.combine import describe_weights, fit_weights, weights_by_window
from flowcast.evaluation.conformal import (
    MIN_GROUP_POINTS,
    calibrate,
    calibrate_short,
    calibrated_steps,
    calibration_rows,
    cross_calibrated_with_note,
    interval_metrics,
    series_scale,
    short_cuts,
)
from flowcast.evaluation.metrics import rmsse_scale
from flowcast.models.recipes import LAST_RESORT, SEASONAL, error_growth
from flowcast.wording import listed, noun, plural

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData

COMB, ENSEMBLE, HYBRID, PRODUCTION = "comb", "ensemble", "hybrid", "production"


def too_many_failures(failed: int, n: int, max_share: float) -> bool:
    """A model that failed (forecasts not finite, out of bounds) on `failed` of `n` series is not
    fit to publish when that is more than `max_share` of them; one failed series is allowed when
    there are several (one bad series never fails a run), none when the data has one series."""
    if failed == 0:
        return False
    if n <= 1:
        return True
    return failed > max(max_share * n, 1)


@dataclass(frozen=True)
class Member:
    """One network of the backtest: a cell and a seed (with `config`: trained with another model
    configuration than the run's, e.g. the production model's recipe refit)."""

    cell: str
    seed: int
    tag: str = ""
    config: tuple[tuple[str, Any], ...] | None = None

    @property
    def key(self) -> str:
        return f"{self.cell}-s{self.seed}{self.tag}"

    def config_dict(self) -> dict[str, Any] | None:
        return None if self.config is None else dict(self.config)


@dataclass
class CandidateSpec:
    """A candidate: groups (label, component keys averaged equally) combined by weight."""

    name: str
    kind: str
    groups: list[tuple[str, list[str]]]
    weighting: str = "single"  # single | learned | fixed
    fixed: list[float] | None = None
    note: str = ""
    networks: frozenset[str] = frozenset()  # group labels that are networks (the others: statistical models)

    @property
    def keys(self) -> list[str]:
        return [k for _, ks in self.groups for k in ks]


@dataclass
class CandidatePlan:
    members: list[Member]
    statistical: list[str]
    specs: list[CandidateSpec]


def plan_candidates(
    *,
    cells: list[str],
    seeds: int,
    base_seed: int,
    statistical: list[str],
    combination: list[str],
    ensemble: bool = True,
    hybrid: bool = True,
    blend: dict[str, float] | None = None,
) -> CandidatePlan:
    """Members, statistical models and candidate specs from the configuration (see the module)."""
    members = [Member(c, base_seed + i) for c in cells for i in range(max(1, seeds))]
    stats = list(dict.fromkeys([*statistical, *combination, *(blend or {})]))
    if LAST_RESORT not in stats:
        stats.append(LAST_RESORT)  # every fallback chain ends with it
    specs: list[CandidateSpec] = []
    cell_groups = [(c, [m.key for m in members if m.cell == c]) for c in cells]
    nets = frozenset(cells)
    for c, keys in cell_groups:
        specs.append(CandidateSpec(c, "network" if len(keys) == 1 else "ensemble", [(c, keys)], networks=nets))
    for s in statistical:
        specs.append(CandidateSpec(s, "statistical", [(s, [s])]))
    if len(combination) >= 2:
        specs.append(CandidateSpec(COMB, "statistical", [(s, [s]) for s in combination], "learned"))
    if ensemble and len(cells) >= 2:
        specs.append(CandidateSpec(ENSEMBLE, "ensemble", cell_groups, "learned", networks=nets))
    if blend and cells:
        share = (1 - sum(blend.values())) / len(cells)
        specs.append(CandidateSpec(HYBRID, "hybrid", [*cell_groups, *[(s, [s]) for s in blend]], "fixed",
                                   [share] * len(cells) + list(blend.values()), note="hand-set (model.blend)",
                                   networks=nets))
    elif hybrid and cells and combination:
        specs.append(CandidateSpec(HYBRID, "hybrid", [*cell_groups, *[(s, [s]) for s in combination]], "learned",
                                   networks=nets))
    return CandidatePlan(members=members, statistical=stats, specs=specs)


@dataclass
class CandidateResult:
    spec: CandidateSpec
    result: BacktestResult  # scored backtest rows after fallback
    weights: list[float]  # per group, published (fitted on every window)
    weights_by_window: dict[int, list[float]] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    intervals: dict[str, float | None] = field(default_factory=dict)
    fallback_pairs: int = 0  # (series, window) pairs forecast by the fallback because of failures
    missing_pairs: int = 0  # pairs the candidate does not forecast by design (e.g. too short for a network)
    n_pairs: int = 0
    eligible: bool = True
    why_not: str = ""
    scoring: str = "backtest"  # for the production model: how it was scored
    # why `intervals` has a level's coverage (or MSIS) without a value (`conformal.blank_intervals_note`), '' if none
    intervals_note: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    def describe(self) -> str:
        """What the candidate is, in the words of `describe_recipe`."""
        from flowcast.models.recipes import describe_recipe

        comps, weights = [], []
        for (label, keys), w in zip(self.spec.groups, self.weights):
            for _ in keys:
                comps.append({"type": "network", "cell": label} if label in self.spec.networks
                             else {"type": "statistical", "model": label})
                weights.append(w / len(keys))
        note = self.spec.note or ("learned on earlier backtest windows" if self.spec.weighting == "learned" else "")
        return describe_recipe({"kind": self.kind, "components": comps, "weights": weights, "weights_note": note})

    def weights_text(self) -> str:
        """The published weights ('1 x rnn'); where learned weights scored some backtest window with other ones,
        which (ui30: 'ensemble: 1 x rnn' scored MAE 39.09 against rnn's 38.68, as if it were not rnn: its oldest
        window was forecast with equal weights, no window being before it)."""
        if len(self.spec.groups) == 1:
            return ""
        names = [g for g, _ in self.spec.groups]
        shown = describe_weights(names, self.weights)
        used = {k: describe_weights(names, w) for k, w in sorted(self.weights_by_window.items())}
        if self.spec.weighting != "learned" or all(t == shown for t in used.values()):
            return shown
        windows: dict[str, list[int]] = {}
        for k, t in used.items():
            windows.setdefault(t, []).append(k)
        scored = listed([f"{t} on {noun(len(ks), 'window')} {listed([str(k) for k in ks])}"
                         for t, ks in windows.items()])
        return (f"{shown} as published, fitted on every backtest window; scored with {scored}, each window's "
                "weights fitted on the windows before it (equal weights on the first)")


def _base_rows(components: dict[str, BacktestResult], statistical: list[str]) -> pl.DataFrame:
    for s in statistical:
        if s in components:  # the actuals and whatever describes them (e.g. which points were observed)
            f = components[s].forecasts
            return f.select([c for c in f.columns if not c.startswith("y_hat")])
    raise ValueError(f"no statistical backtest among {sorted(components)}: need one for the rows every candidate "
                     "is scored on")


# what `backtest_scales` adds to a backtest row: the scale, the rows up to the cutoff, the level stand-in,
# whether the scale is it and whether the history is constant at the cut (see `conformal.series_scale`)
SCALE_COLUMNS = ("scale", "history", "level", "level_scaled", "constant")


def backtest_scales(base: pl.DataFrame, td: TrainingData) -> pl.DataFrame:
    """unique_id, cutoff, scale, history, level, level_scaled, constant, scale_sq of every backtest window (the
    interval scale and the weight scale of every metric but RMSSE, the rows up to the cutoff, the series' mean |y| up
    to it, whether the scale is that stand-in, whether the history up to it is constant, and RMSSE's scale squared:
    the mean squared one-step difference up to the cutoff, `metrics.rmsse_scale`, null where there is none, which
    RMSSE-ranked weights are fitted on)."""
    hist = td.frame.select("unique_id", "ds", "y")
    cutoffs = base.select("unique_id", "cutoff").unique()
    return series_scale(hist, td.meta.season_length, cutoffs, freq=td.meta.freq, tz=td.meta.tz).join(
        rmsse_scale(hist, cutoffs), on=["unique_id", "cutoff"], how="left")


def _wide(base: pl.DataFrame, components: dict[str, BacktestResult], keys: list[str]) -> pl.DataFrame:
    out = base
    for k in dict.fromkeys(keys):
        f = components[k].forecasts
        cols = ["y_hat", *[c for c in f.columns if c.startswith("y_hat_q")]]
        out = out.join(f.select("unique_id", "window", "ds", *[pl.col(c).alias(f"{k}::{c}") for c in cols]),
                       on=["unique_id", "window", "ds"], how="left")
    return out


def _known_at_cutoffs(rows: pl.DataFrame) -> dict[int, np.ndarray]:
    """window k -> per row of `rows` (unique_id, window, cutoff, ds): whether its actual was observed by
    window k's cutoff of its series (what a run at that cutoff could have learned weights on)."""
    cuts = rows.select("unique_id", "window", "cutoff").unique()
    out = {}
    for k in rows["window"].unique().to_list():
        ck = cuts.filter(pl.col("window") == k).select("unique_id", pl.col("cutoff").alias("__ck"))
        known = rows.select("unique_id", "ds").join(ck, on="unique_id", how="left", maintain_order="left").select(
            (pl.col("ds") <= pl.col("__ck")).fill_null(False))
        out[int(k)] = known.to_series().to_numpy()
    return out


def _weight_scale(g: pl.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The per-row scale the weights are fitted with and, for RMSSE, each row's (series, window) pair code
    (see `combine.loss`): RMSSE's squared one-step scale at the row's cutoff (null -> NaN: left out, as the
    board leaves such a series' RMSSE out); every other metric the interval scale, as before."""
    if metric != "rmsse":
        return g["scale"].to_numpy().astype(np.float64), None
    pair = g.select(pl.struct("unique_id", "window").rank("dense").cast(pl.Int64)).to_series().to_numpy()
    return g["scale_sq"].cast(pl.Float64).fill_null(float("nan")).to_numpy(), pair


def _group_expr(keys: list[str], col: str) -> pl.Expr:
    return pl.mean_horizontal([pl.col(f"{k}::{col}") for k in keys]).alias(col) if len(keys) > 1 \
        else pl.col(f"{keys[0]}::{col}").alias(col)


def _grouped(wide: pl.DataFrame, groups: list[tuple[str, list[str]]]) -> tuple[pl.DataFrame, list[str]]:
    """`wide` with each group's forecast (its members' mean) as `g<i>::<col>`, and the quantile columns combined:
    only those every group's members have (a quantile network)."""
    qsets = [{c.split("::", 1)[1] for c in wide.columns if c.startswith(f"{k}::y_hat_q")}
             for _, ks in groups for k in ks]
    qcols = sorted(set.intersection(*qsets)) if qsets and all(qsets) else []
    return wide.with_columns([_group_expr(ks, c).alias(f"g{i}::{c}") for i, (_, ks) in enumerate(groups)
                              for c in ["y_hat", *qcols]]), qcols


def _combined(g: pl.DataFrame, wide: pl.DataFrame, by_window: dict[int, np.ndarray], *, n_groups: int,
              keep: list[str], qcols: list[str], fallback: list[str],
              bounds: tuple[float | None, float | None]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A candidate's forecast on the rows `g` (its groups' forecasts as `g<i>::<col>`, `window`): each window's
    weights (`by_window`) over the groups, missing where an input of positive weight is, cut at the bounds, the
    (series, window) pairs not finite or missing filled from the first `fallback` model of `wide` that forecasts
    them whole. Returns (the `keep` columns with y_hat and the `qcols`; per (series, window): broken, missing)."""
    win = g["window"].to_numpy()
    Wrow = np.stack([by_window[int(k)] for k in win], axis=1) if len(win) else np.zeros((n_groups, 0))  # [G, N]
    with np.errstate(invalid="ignore"):
        combined = {c: (Wrow * np.stack([g[f"g{i}::{c}"].to_numpy().astype(np.float64)
                                         for i in range(n_groups)])).sum(axis=0, where=Wrow > 0)
                    for c in ["y_hat", *qcols]}
        # a row with a missing (null -> nan) input of positive weight is missing
        missing_in = np.zeros(len(win), dtype=bool)
        for i in range(n_groups):
            col = g[f"g{i}::y_hat"]
            missing_in |= (Wrow[i] > 0) & col.is_null().to_numpy()
    frame = g.select(*keep).with_columns(
        pl.Series("y_hat", np.where(missing_in, np.nan, combined["y_hat"])),
        pl.Series("__missing", missing_in),
        *[pl.Series(c, combined[c]) for c in qcols],
    )
    # forecasts beyond a declared bound are cut at it (a count's falling trend at 0), as the published ones are
    frame = frame.with_columns(within_bounds(c, bounds) for c in ["y_hat", *qcols])
    broken = ~pl.col("y_hat").is_finite() & ~pl.col("__missing")
    pairs = frame.group_by("unique_id", "window").agg(broken.fill_null(True).any().alias("broken"),
                                                       pl.col("__missing").any().alias("missing"))
    redo = pairs.filter(pl.col("broken") | pl.col("missing")).select("unique_id", "window")
    if redo.height:
        frame = _fill_from_fallback(frame, wide, redo, fallback, bounds, qcols)
    return frame.drop("__missing"), pairs


def evaluate_candidate(
    spec: CandidateSpec,
    components: dict[str, BacktestResult],
    td: TrainingData,
    *,
    base: pl.DataFrame,
    scales: pl.DataFrame,
    fallback: list[str],
    metric: str,
    resolution: int,
    horizon: int,
    n_windows: int,
    step: int,
    bounds: tuple[float | None, float | None] = (None, None),
    max_fallback_share: float = 0.2,
    levels: tuple[int, ...] = INTERVAL_LEVELS,
    shrink: float = 0.0,
) -> CandidateResult:
    """Backtest forecasts of `spec` from its components' (weights learned per window), filled by
    the fallback where it cannot forecast, scored, with cross-calibrated intervals."""
    wide = _wide(base, components, [*spec.keys, *fallback]).join(scales, on=["unique_id", "cutoff"], how="left")
    groups = spec.groups
    g, qcols = _grouped(wide, groups)
    F = np.stack([g[f"g{i}::y_hat"].to_numpy().astype(np.float64) for i in range(len(groups))])  # [G, N]
    y = g["y"].to_numpy().astype(np.float64)
    win = g["window"].to_numpy()
    if spec.weighting == "learned":
        sc, pair = _weight_scale(g, metric)
        by_window = weights_by_window(F, y, sc, win, metric, resolution, known=_known_at_cutoffs(g), shrink=shrink,
                                      group=pair)
        final = fit_weights(F, y, sc, metric, resolution, shrink, group=pair)
    else:
        w = np.asarray(spec.fixed if spec.fixed is not None else [1.0 / len(groups)] * len(groups), dtype=np.float64)
        by_window = {int(k): w for k in np.unique(win)}
        final = w
    frame, pairs = _combined(g, wide, by_window, n_groups=len(groups), keep=[*base.columns, *SCALE_COLUMNS],
                             qcols=qcols, fallback=fallback, bounds=bounds)
    n_pairs = pairs.height
    n_broken = int(pairs["broken"].sum())
    n_missing = int(pairs.filter(~pl.col("broken"))["missing"].sum())
    # scored on the point forecasts (a quantile network's quantiles serve the calibration only)
    result = result_from_forecasts(spec.name, frame.drop(*SCALE_COLUMNS, *qcols), td, n_windows=n_windows, horizon=horizon,
                                   step=step)
    failed_series = pairs.filter(pl.col("broken"))["unique_id"].n_unique()
    n_series = pairs["unique_id"].n_unique()
    eligible, why = True, ""
    if not np.isfinite(frame["y_hat"].to_numpy()).all():
        eligible, why = False, "some forecasts are not finite even after the fallback"
    elif too_many_failures(failed_series, n_series, max_fallback_share):
        eligible, why = False, (f"its backtest forecasts of {failed_series} of {n_series} series were not finite "
                                f"(more than {max_fallback_share:.0%})")
    cal_rows = frame.select("unique_id", "window", "step", "y", "y_hat", *SCALE_COLUMNS, *qcols)
    stale = trained_once(spec, components)
    season = growth_season(spec, td)
    calibration = calibrate(calibration_rows(cal_rows, stale), horizon, levels, season_length=season)
    crossed, blank_note = cross_calibrated_with_note(cal_rows.with_columns(frame.select("ds", "cutoff")), horizon, levels,
                                                     oldest_only=stale, season_length=season)
    return CandidateResult(
        spec=spec, result=result, weights=[float(x) for x in final],
        weights_by_window={int(k): [float(x) for x in v] for k, v in by_window.items()}, calibration=calibration,
        intervals=interval_metrics(crossed, levels), fallback_pairs=n_broken, missing_pairs=n_missing,
        n_pairs=n_pairs, eligible=eligible, why_not=why, intervals_note=blank_note,
    )


def trained_once(spec: CandidateSpec, components: dict[str, BacktestResult]) -> bool:
    """Whether a network of `spec` was trained once for the whole backtest (no `refit`): it is only as fresh as the
    published one on the oldest window, the only window that calibrates the candidate's intervals."""
    return any(not components[k].summary.get("refit", False) for k in network_keys(spec) if k in components)


def network_keys(spec: CandidateSpec) -> list[str]:
    """The component keys of `spec` that are networks (a group labelled by its cell, or a production model's key)."""
    return [k for label, ks in spec.groups for k in ks if label in spec.networks or k in spec.networks]


def networks_kept_calibration(result: CandidateResult, components: dict[str, BacktestResult], *,
                              wanted: int, origins: int | None = None) -> bool:
    """Record on the calibration of `result`, a candidate with networks, that it stays the backtest's (`windows`: how
    many of its windows, the oldest alone for networks `trained_once`) and is not made at the `wanted` calibration
    origins (`evaluation.calibration_windows`): a network is trained once, before the backtest's windows (each
    window's own data with `refit`), so the older origins lie in the data it was trained on, where its errors are
    smaller than on new data, and the origins after its training are the backtest's own windows. Predicting it there
    would calibrate on nothing more; refitting it per origin is a training per origin. `conformal.calibration_notes`
    says so. `origins`: how many of them the data leave room for (`calibration_windows`; None: `wanted`), recorded
    as those it did not use. False (nothing recorded) for a candidate without networks or without a calibration, and
    where the data leave room for no origin older than the backtest's windows (fixA54: it said 'not at the 28 origins'
    of data with room for none)."""
    cal = result.calibration
    if not result.spec.networks or not cal or not wanted:
        return False
    backtested = max((int(components[k].summary.get("n_windows") or 1) for k in network_keys(result.spec)
                      if k in components), default=1)
    room = int(wanted) if origins is None else int(origins)
    if room <= backtested:
        return False
    cal["origins_kept"] = {"wanted": int(wanted), "windows": 1 if trained_once(result.spec, components) else backtested,
                           "origins": room}
    return True


def growth_season(spec: CandidateSpec, td: TrainingData) -> int:
    """The season whose `conformal.growth` a candidate's pooled and beyond-calibration widths follow: the data's
    when its error grows by the season (`recipes.error_growth` of its groups' models, each group's label: a
    statistical model, a network's cell; SEASONAL when every one declares it, as the seasonal naive does, alone or
    combined only with seasonal models), 1 (sqrt(h)) for every other candidate, any mix included."""
    seasonal = error_growth(label for label, _ in spec.groups) == SEASONAL
    return int(td.meta.season_length) if seasonal else 1


def _fill_from_fallback(frame: pl.DataFrame, wide: pl.DataFrame, redo: pl.DataFrame, fallback: list[str],
                        bounds: tuple[float | None, float | None], qcols: list[str]) -> pl.DataFrame:
    """Rows of the (series, window) pairs in `redo` from the first fallback model that forecasts
    the whole pair finitely, cut at the bounds."""
    todo = redo
    filled = []
    for name in fallback:
        if not todo.height:
            break
        col = f"{name}::y_hat"
        if col not in wide.columns:
            continue
        ok = pl.col(col).is_finite()
        cand = wide.join(todo, on=["unique_id", "window"], how="semi")
        good = cand.group_by("unique_id", "window").agg(ok.fill_null(False).all().alias("ok")).filter(pl.col("ok"))
        filled.append(cand.join(good.select("unique_id", "window"), on=["unique_id", "window"], how="semi")
                      .select("unique_id", "window", "ds", within_bounds(col, bounds).alias("__fb")))
        todo = todo.join(good.select("unique_id", "window"), on=["unique_id", "window"], how="anti")
    if not filled:
        return frame
    fb = pl.concat(filled)
    out = frame.join(fb, on=["unique_id", "window", "ds"], how="left")
    return out.with_columns(
        pl.when(pl.col("__fb").is_not_null()).then(pl.col("__fb")).otherwise(pl.col("y_hat")).alias("y_hat"),
        *[pl.when(pl.col("__fb").is_not_null()).then(None).otherwise(pl.col(c)).alias(c) for c in qcols],
    ).drop("__fb")


def evaluate_candidates(
    specs: list[CandidateSpec],
    components: dict[str, BacktestResult],
    td: TrainingData,
    *,
    statistical: list[str],
    metric: str,
    resolution: int,
    horizon: int,
    n_windows: int,
    step: int,
    bounds: tuple[float | None, float | None] = (None, None),
    max_fallback_share: float = 0.2,
    levels: tuple[int, ...] = INTERVAL_LEVELS,
    shrink: float = 0.0,
) -> tuple[list[CandidateResult], list[str], dict[str, dict[str, Any] | None]]:
    """Every candidate scored on the same rows; returns (results, the fallback order: the
    statistical models from best to worst on `metric`, and the interval calibration
    of each of those models, which a published model's fallback rows are given)."""
    base = _base_rows(components, statistical)
    scales = backtest_scales(base, td)
    common: dict[str, Any] = {"base": base, "scales": scales, "metric": metric, "resolution": resolution,
                              "horizon": horizon, "n_windows": n_windows, "step": step, "bounds": bounds,
                              "max_fallback_share": max_fallback_share, "levels": levels, "shrink": shrink}
    singles = [s for s in statistical if s in components]
    stat_results = {s: evaluate_candidate(CandidateSpec(s, "statistical", [(s, [s])]), components, td,
                                          fallback=[x for x in singles if x != s], **common) for s in singles}

    def score(r: CandidateResult) -> float:
        v = r.result.summary.get(metric)
        return float(v) if v is not None and np.isfinite(v) and r.eligible else float("inf")


    # best first, naive included where it ranks: a short series gets the best of those that can run
    # on its length (naive runs on any, so the models ranked below it only serve failures)
    fallback = sorted(singles, key=lambda s: (score(stat_results[s]), s))
    out = []
    for spec in specs:
        if spec.weighting == "single" and spec.kind == "statistical" and spec.name in stat_results:
            out.append(stat_results[spec.name])
        else:
            out.append(evaluate_candidate(spec, components, td, fallback=[s for s in fallback if s != spec.name],
                                          **common))
    return out, fallback, {s: r.calibration for s, r in stat_results.items()}


def calibration_windows(lengths: list[int], *, horizon: int, wanted: int | None, history: int, share: float) -> int:
    """How many windows a horizon apart, the newest ending at each series' last observation, calibrate the published
    intervals of the statistical candidates: `wanted` (`evaluation.calibration_windows`; None: 0, the backtest's
    windows calibrate), fewer where the length that `share` of the series `lengths` reach (`lengths.share_length`,
    `preprocess.length_share`: one short series does not decide for all) would leave fewer than `history`
    observations (the most any statistical model needs to forecast, `recipes.min_points`) before the oldest; 0
    where not one fits. The series shorter than that are left out of the calibration windows."""
    n = share_length(lengths, share) - max(int(history), 1) + 1
    if not wanted or horizon < 1 or n <= horizon:
        return 0
    return _windows_that_fit(n, horizon=horizon, n_windows=int(wanted), step=horizon)


def calibrate_on_origins(results: list[CandidateResult], origins: dict[str, BacktestResult], td: TrainingData, *,
                         horizon: int, levels: tuple[int, ...] = INTERVAL_LEVELS,
                         bounds: tuple[float | None, float | None] = (None, None),
                         fallback: Sequence[str] = ()) -> list[str]:
    """The published calibration of each of `results` made of the models of `origins` alone (their backtests on the
    calibration windows, a `horizon` apart, of the series of `td`) is made on those windows (`origin_calibration`,
    `fallback`: the order the backtest fills failed pairs in); one whose windows calibrate no step keeps its
    backtest's. Returns the names of those recalibrated."""
    rows = origin_rows(origins, td)
    done = []
    for r in results:
        cal = origin_calibration(r, rows, td, horizon=horizon, levels=levels, bounds=bounds, fallback=fallback)
        if cal is not None and calibrated_steps(cal) > 0:
            r.calibration = cal
            done.append(r.name)
    return done


def origin_rows(origins: dict[str, BacktestResult], td: TrainingData) -> pl.DataFrame:
    """The calibration windows' rows (unique_id, window, cutoff, ds, step, y, the scale columns of each cutoff) with
    each statistical model's forecast as `<model>::y_hat`."""
    base = _base_rows(origins, list(origins))
    return _wide(base, origins, list(origins)).join(backtest_scales(base, td), on=["unique_id", "cutoff"], how="left")


def origin_calibration(result: CandidateResult, rows: pl.DataFrame | None, td: TrainingData, *, horizon: int,
                       levels: tuple[int, ...], bounds: tuple[float | None, float | None],
                       fallback: Sequence[str] = ()) -> dict[str, Any] | None:
    """The published intervals' calibration of a candidate made of statistical models alone on the calibration
    windows' `rows` (`origin_rows`): its forecast there as the backtest's is made (`_combined`: a combination with
    its published weights, cut at the bounds, a pair it cannot forecast filled from the first of `fallback` in the
    rows that can, by the backtest's rule: all but the candidate itself, its members included), calibrated per step as the backtest's would be; `windows` records how many, `spacing` the periods
    between them. None for a candidate with a network, or one of a model without such rows (the backtest's
    calibration stays). A point whose forecast is still not finite has no score: `calibrate` counts only finite ones
    (`n` says how many points the windows held)."""
    spec = result.spec
    if rows is None or spec.networks or not all(f"{k}::y_hat" in rows.columns for k in spec.keys):
        return None
    weights = np.asarray(result.weights, dtype=np.float64)
    if not (weights > 0).any():
        return None
    g, qcols = _grouped(rows, spec.groups)
    frame, _ = _combined(g, rows, {int(k): weights for k in g["window"].unique()}, n_groups=len(spec.groups),
                         keep=["unique_id", "window", "ds", "step", "y", *SCALE_COLUMNS], qcols=qcols,
                         fallback=[f for f in fallback if f != spec.name], bounds=bounds)
    cal = calibrate(frame, horizon, levels, season_length=growth_season(spec, td))
    cal["windows"] = int(rows["window"].n_unique())
    cal["spacing"] = int(horizon)  # periods between the windows' cutoffs (what the note says)
    return cal


def give_short(calibrations: Iterable[dict[str, Any] | None], short: dict[str, Any] | None) -> bool:
    """Give each calibration of `calibrations` not in levels (nor None) the `short` part (`add_short_calibration`'s):
    also a kept production model's registered ones, so its published recipe carries this run's short calibration and
    later forecasts reproduce it. Returns whether any got it."""
    given = False
    for cal in calibrations:
        if short is not None and cal is not None and cal.get("scale") != "level":
            cal["short"] = short
            given = True
    return given


def short_part(calibrations: Iterable[dict[str, Any] | None], model: str = LAST_RESORT) -> dict[str, Any] | None:
    """The `short` part this run gave `calibrations` (`add_short_calibration`) calibrated on `model`'s own forecasts
    from the short cuts, else the one on naive's (the part every calibration without its own takes); None where none
    has one."""
    parts = [c["short"] for c in calibrations if c is not None and c.get("short")]
    return next((p for p in parts if p.get("model", LAST_RESORT) == model),
                next((p for p in parts if p.get("model", LAST_RESORT) == LAST_RESORT), None))


def give_kept_short(intervals: dict[str, dict[str, Any] | None], name: str, production: dict[str, Any] | None,
                    made: Sequence[dict[str, Any] | None]) -> None:
    """Give a kept production model's registered calibrations (`intervals`, by model; `name` its recipe's own) this
    run's short parts (`give_short`): the recipe's own the production candidate's (`production`: its calibration this
    run, whose part is on its own forecasts from the short cuts, labelled PRODUCTION), not the part of a candidate
    that shares the recipe's name (this run's comb of other weights, or naive's where none does); each other model's
    the part on its own forecasts among `made` (the run's calibrations) where there is one, else naive's."""
    own = short_part([production], PRODUCTION) or short_part(made)
    for model_name, cal in intervals.items():
        give_short([cal], own if model_name == name else short_part(made, str(model_name)))


# fitted on every series at once (`models.stats` glin): refit on the short cuts alone it is another model than the one
# published, fitted on all series, so a candidate with it takes naive's short calibration (rev54b)
POOLED_MODELS = ("glin",)


def statistical_makeup(candidate: CandidateResult) -> tuple[list[str], list[float]] | None:
    """The statistical models and published weights whose combined forecast `candidate` publishes, None where a
    network (or a registered recipe, or a model pooled over every series: `POOLED_MODELS`) is part of it: what
    `add_short_calibration` forecasts its short cuts with."""
    from flowcast.models.recipes import statistical_models

    known = set(statistical_models()) - set(POOLED_MODELS)
    if any(label in candidate.spec.networks or keys != [label] or label not in known
           for label, keys in candidate.spec.groups) or len(candidate.weights) != len(candidate.spec.groups):
        return None
    return [label for label, _ in candidate.spec.groups], [float(w) for w in candidate.weights]


# A model calibrated on its own forecasts from the short cuts is refit at each cut: at most SHORT_CUT_BUDGET cuts of
# each history length (sampled evenly over the sorted ids and cutoffs: `evenly_by_history`), so that the work is bounded
# by the histories x SHORT_CUT_BUDGET fits of one short series, whatever the number of series. Every cut: 10,000 series
# of span 60, horizon 14, took damped 361 s, dotm 474 s and arima over 15 minutes (~2 GB); 300 leave each history
# 6x the `conformal.MIN_GROUP_POINTS` points at step 1 that a group needs.
SHORT_CUT_BUDGET = 300


def evenly_spaced(n: int, cap: int) -> np.ndarray:
    """The positions of at most `cap` of `n` sorted items, spread evenly from the first to the last (all of them
    where `n` <= `cap`)."""
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, max(1, cap)).round().astype(np.int64))


def evenly_by_history(cuts: pl.DataFrame, cap: int) -> pl.DataFrame:
    """The rows of `cuts` (`short_cuts`' with a `history` column) of at most `cap` cuts (unique_id, cutoff) of each
    history, those sampled evenly over the cuts sorted by id and cutoff (`evenly_spaced`)."""
    keys = cuts.select("unique_id", "cutoff", "history").unique().sort("history", "unique_id", "cutoff")
    kept = [g[evenly_spaced(g.height, cap)] for g in keys.partition_by("history", maintain_order=True)]
    if sum(k.height for k in kept) == keys.height:
        return cuts
    return cuts.join(pl.concat(kept).select("unique_id", "cutoff"), on=["unique_id", "cutoff"], how="semi")


def _cut_forecasts(td: TrainingData, cuts: pl.DataFrame, models: list[str], weights: list[float], horizon: int,
                   cache: dict[str, pl.DataFrame],
                   bounds: tuple[float | None, float | None] = (None, None)) -> pl.DataFrame:
    """`cuts` (`short_cuts`' rows) with y_hat the forecast of `models` combined by `weights` (`recipes.combine`) from
    the history up to each cut, refit there, cut at the source's `bounds` as published forecasts are
    (`within_bounds`); a cut none of them forecasts (too short: `recipes.MIN_POINTS`) is left out, as publishing hands
    such a history to a fallback. `cache`: each model's forecasts, by name."""
    from dataclasses import replace

    from flowcast.models.recipes import combine, statistical_forecast

    keys = (cuts.select("unique_id", "cutoff").unique().sort("unique_id", "cutoff")
            .with_columns(pl.format("{}@{}", pl.col("unique_id"), pl.int_range(pl.len())).alias("__key")))
    for name in models:
        if name in cache:
            continue
        if not keys.height:
            cache[name] = pl.DataFrame(schema={"__key": pl.Utf8, "step": pl.Int64, "y_hat": pl.Float64})
            continue
        frame = (td.frame.join(keys, on="unique_id", how="inner").filter(pl.col("ds") <= pl.col("cutoff"))
                 .with_columns(pl.col("__key").alias("unique_id")).drop("__key", "cutoff"))
        scalers = td.scalers.join(keys, on="unique_id", how="inner").with_columns(
            pl.col("__key").alias("unique_id")).drop("__key", "cutoff")
        cut_td = replace(td, frame=frame, scalers=scalers, static=None, future_exog=None, imputed=None,
                         static_since=None)
        cache[name] = statistical_forecast(name, cut_td, horizon).select(
            pl.col("unique_id").alias("__key"), pl.col("step").cast(pl.Int64), pl.col("y_hat").cast(pl.Float64))
    frames = [cache[m].rename({"__key": "unique_id"}).with_columns(pl.lit(None, dtype=pl.Date).alias("ds"))
              for m in models]
    made = combine(frames, weights).select(pl.col("unique_id").alias("__key"), "step", within_bounds("y_hat", bounds))
    return (cuts.drop("y_hat").join(keys, on=["unique_id", "cutoff"], how="left")
            .join(made, on=["__key", "step"], how="inner").drop("__key")
            .filter(pl.col("y_hat").is_finite()))


def add_short_calibration(calibrations: list[dict[str, Any] | None], td: TrainingData, need: int, horizon: int,
                          levels: tuple[int, ...] = INTERVAL_LEVELS,
                          makers: Sequence[tuple[str, tuple[list[str], list[float]] | None]] = (),
                          bounds: tuple[float | None, float | None] = (None, None)) -> str:
    """Give `calibrations` (the candidates' and the fallbacks', in MASE scales) a `short` part (`conformal.calibrate_short`)
    for the series of `td` shorter than the backtest's span `need`: they take no part in the backtest, and widths
    calibrated on long histories' errors in their MASE scales covered 0.42-0.63 of 80% intervals of new series beside
    random walks (see the module of `flowcast.evaluation.conformal`). Calibrations in levels (the backtest's own
    points short: `calibrate`) and None are left alone. `makers` (aligned with `calibrations`): the name of each and
    the statistical models and weights it forecasts with (`statistical_makeup`; None: a network's); such a calibration
    is calibrated on its own forecasts from the cuts of `recipes.SHORT_HISTORY` values or more (shorter ones are
    published by naive) where they have `conformal.MIN_GROUP_POINTS` at step 1, else on naive's, as a calibration
    without a maker is (theta's 3-point series took naive's widths around theta's trend: see the module of
    `flowcast.evaluation.conformal`); those forecasts are cut at the source's `bounds`, as published ones are. Returns
    the run's note on it ('' where nothing was added)."""
    from flowcast.models.recipes import SHORT_HISTORY

    hist = td.frame.select("unique_id", "ds", "y")
    cuts = short_cuts(hist, need, horizon)
    if not cuts.height or not any(c is not None and c.get("scale") != "level" for c in calibrations):
        return ""
    scales = series_scale(hist.join(cuts.select("unique_id").unique(), on="unique_id", how="semi"),
                          td.meta.season_length, cuts.select("unique_id", "cutoff").unique(), freq=td.meta.freq,
                          tz=td.meta.tz)
    cuts = cuts.join(scales, on=["unique_id", "cutoff"], how="left")
    short = calibrate_short(cuts, need, horizon, levels)
    if short is None:
        return ""
    short["model"] = LAST_RESORT
    # each model refit on at most SHORT_CUT_BUDGET cuts of each history (naive, a combination's member too, as the rest)
    refit = evenly_by_history(cuts, SHORT_CUT_BUDGET)
    cache: dict[str, pl.DataFrame] = {}
    parts: dict[tuple[tuple[str, ...], tuple[float, ...]], dict[str, Any] | None] = {}
    own: list[str] = []
    borrowed: list[str] = []
    for i, cal in enumerate(calibrations):
        if cal is None or cal.get("scale") == "level":
            continue
        name, made = makers[i] if i < len(makers) else ("", None)
        if made is None or made[0] == [LAST_RESORT]:
            give_short([cal], short)
            continue
        key = (tuple(made[0]), tuple(made[1]))
        if key not in parts:
            mine_all = _cut_forecasts(td, refit, made[0], made[1], horizon, cache, bounds)
            # published from SHORT_HISTORY values up (shorter: naive), its growth measured on every cut it forecasts
            mine = calibrate_short(mine_all.filter(pl.col("history") >= SHORT_HISTORY), need, horizon, levels,
                                   growth_from=mine_all)
            parts[key] = mine
        # labelled with each candidate's own name (a part shared by makeup said the first one's: `short_part`)
        shared = parts[key]
        part = None if shared is None else {**shared, "model": name}
        give_short([cal], part or short)
        if name not in own + borrowed:
            (own if part else borrowed).append(name)
    n_short = int(hist.group_by("unique_id").len().filter(pl.col("len") < need).height)
    groups = [int(g["history"]) for g in short["groups"]]
    steps = max(calibrated_steps(g["calibration"]) for g in short["groups"])
    by = (f"one group of histories ({plural(cuts.height, 'point')})" if len(groups) == 1 else
          f"{len(groups)} groups of histories from {listed([str(k) for k in groups])} values, "
          f"{plural(cuts.height, 'point')}")
    beyond = f"; their steps after {steps} are widened from it by {_short_law(short)}, not calibrated" \
        if steps < horizon else ""
    n_cuts, n_refit = (int(c.select("unique_id", "cutoff").n_unique()) for c in (cuts, refit))
    sampled = (f" ({n_refit:,} of the {n_cuts:,} cuts, at most {SHORT_CUT_BUDGET:,} of each history, sampled evenly "
               "by id)" if n_refit < n_cuts else "")
    whose = (f"; {listed(own)} {noun(len(own), 'calibrates', 'calibrate')} them on {noun(len(own), 'its', 'their')} "
             f"own forecasts from those cuts instead{sampled}" if own else "")
    few = (f"; {listed(borrowed)} {noun(len(borrowed), 'takes', 'take')} naive's: "
           f"{noun(len(borrowed), 'its', 'their')} own forecasts from the cuts of {SHORT_HISTORY} values or more "
           f"were fewer than {MIN_GROUP_POINTS} at step 1" if borrowed else "")
    return (f"{n_short:,} series shorter than the backtest's {need} periods take no part in it: their intervals are "
            f"calibrated on their own values instead (the last value as the forecast from each of them, scored on the "
            f"later ones in units of the mean |y|, {by}){beyond}{whose}{few}.")


def _short_law(short: dict[str, Any]) -> str:
    """How a `short` part's widths grow beyond its scored steps, for the run's note: 'sqrt(h)', or the powers of h
    its cuts measured (`conformal.short_growth`): 'h^0.05 (80%) / h^0.12 (95%), as their errors grew with the step'."""
    powers = short["groups"][0]["calibration"].get("growth_power") or {}
    if not powers:
        return "sqrt(h)"
    return " / ".join(f"h^{float(b):.2f} ({lv}%)" for lv, b in powers.items()) + ", as their errors grew with the step"


# ----------------------------------------------------------------------------- the production model
def frozen_candidate(
    result: BacktestResult,
    td: TrainingData,
    *,
    kind: str,
    trained_until: Any,
    horizon: int,
    n_windows: int,
    step: int,
    levels: tuple[int, ...] = INTERVAL_LEVELS,
) -> CandidateResult | None:
    """The production model scored with its frozen weights on the (series, window) pairs whose
    actuals all come after its training data ended (`trained_until`, naive UTC); None when no
    window is after it for every series."""
    f = result.forecasts
    if trained_until is None or not f.height:
        return None
    fair = f.group_by("unique_id", "window").agg((pl.col("ds").min() > pl.lit(trained_until)).alias("fair"))
    per_window = fair.group_by("window").agg(pl.col("fair").all().alias("all_fair"))
    if not per_window["all_fair"].any():
        return None
    fair_pairs = fair.filter(pl.col("fair")).select("unique_id", "window")
    rows = f.join(fair_pairs, on=["unique_id", "window"], how="semi")
    scored = result_from_forecasts(PRODUCTION, rows, td, n_windows=n_windows, horizon=horizon, step=step)
    scales = backtest_scales(rows, td)
    with_scale = rows.join(scales, on=["unique_id", "cutoff"], how="left")
    have = [c for c in INTERVAL_COLUMNS if c in with_scale.columns]
    iv = interval_metrics(with_scale, levels) if have else {}
    # for a model registered without intervals: its own errors on these windows calibrate them
    calibration = calibrate(with_scale.select("unique_id", "window", "step", "y", "y_hat", *SCALE_COLUMNS), horizon,
                            levels)
    n_pairs = fair_pairs.height
    windows = sorted(fair_pairs["window"].unique().to_list())
    spans = rows.group_by("window").agg(pl.col("ds").min().alias("first"), pl.col("ds").max().alias("last"))
    span = {int(r["window"]): (r["first"], r["last"]) for r in spans.to_dicts()}
    # a period as a date, an instant (sub-daily data) with its 'UTC' (it read '2024-03-10 06:00', no zone)
    freq = td.meta.freq
    named = "; ".join(f"window {w}: {when_text(span[w][0], freq)} to {when_text(span[w][1], freq)}"
                      for w in windows if w in span)
    return CandidateResult(
        spec=CandidateSpec(PRODUCTION, kind, [(PRODUCTION, [PRODUCTION])]), result=scored, weights=[1.0],
        calibration=calibration, intervals=iv, n_pairs=n_pairs, eligible=scored.finite,
        why_not="" if scored.finite else "its forecasts are not finite",
        scoring=f"frozen weights, on the {len(windows)} backtest window{'s' if len(windows) != 1 else ''} after its "
                f"training data ended ({named}); every other candidate is compared with it on the same "
                f"window{'s' if len(windows) != 1 else ''}",
    )


def paired_scores(results: list[CandidateResult], reference: CandidateResult, metric: str) -> dict[str, float | None]:
    """Each candidate's mean `metric` on the (series, window) pairs that `reference` was scored
    on (the production model frozen may cover fewer windows than the challengers)."""
    keys = reference.result.metrics.select("unique_id", "window").unique()
    out: dict[str, float | None] = {}
    for r in results:
        m = r.result.metrics.join(keys, on=["unique_id", "window"], how="semi")
        v = m[metric].mean() if m.height else None
        out[r.name] = None if v is None or not np.isfinite(v) else float(v)  # type: ignore[arg-type]
    return out


def incumbent_spec(recipe: dict[str, Any], members: dict[tuple[str, int], str], kind: str) -> tuple[
        CandidateSpec, list[tuple[str, int, str]]]:
    """The production model's recipe as a candidate refit on this run's windows: its statistical
    components by name, each network by (cell, seed) -> this run's member key when given in
    `members` (same cell, seed and configuration), else a new member to train. Returns the spec
    and the networks to train: (cell, seed, key)."""
    groups: list[tuple[str, list[str]]] = []
    weights: list[float] = []
    to_train: list[tuple[str, int, str]] = []
    nets: set[str] = set()
    comps = recipe.get("components") or []
    ws = recipe.get("weights") or [1.0 / max(len(comps), 1)] * len(comps)
    for c, w in zip(comps, ws):
        if c.get("type") == "statistical":
            key = str(c["model"])
        else:
            cell, seed = str(c.get("cell")), int(c.get("seed", 0) or 0)
            key = members.get((cell, seed)) or f"{cell}-s{seed}-production"
            if (cell, seed) not in members:
                to_train.append((cell, seed, key))
            nets.add(key)
        groups.append((key, [key]))
        weights.append(float(w))
    return CandidateSpec(PRODUCTION, kind, groups, "fixed", weights, note="its recipe refit",
                         networks=frozenset(nets)), to_train
