"""How a model of any kind forecasts: one function for networks, statistical models, ensembles
and hybrids (`forecast_with`), used by the retrain flow, the forecast flow and backfills alike.

A recipe is the JSON a registered version carries (`recipe.json` in its artifact directory and
`recipe` in version.json):

    {"kind": "hybrid",
     "components": [{"type": "network", "cell": "gru", "seed": 0, "path": "members/gru-s0"},
                    {"type": "statistical", "model": "theta"}],
     "weights": [0.6, 0.4],
     "weights_note": "learned on 2 backtest windows (mase)",
     "fallback": ["damped", "theta", "seasonal_naive", "naive"],
     "intervals": {"hybrid": <calibration>, "damped": <calibration>, ...}}

The forecast is sum_i weights[i] x forecast of component i (network paths are relative to the
artifact directory; a network's quantile columns are combined too when every component has
them). Then, per series:

- bounds: forecasts beyond the source's declared bounds y_min/y_max are cut at them (a count's falling
  trend at 0, where it used to hand the whole series to a flat fallback), in the backtests as here;
- fallback: a series the recipe cannot forecast (not long enough for its networks, a forecast
  that is not finite) gets the first
  model of `fallback` that forecasts it cleanly; every row names the model that made it
  (`model` column), so one bad series never fails the run and is never published silently;
- intervals: y_hat_lo80/hi80/lo95/hi95 from the conformal calibration stored for the model that
  made the row (`flowcast.evaluation.conformal`), clipped to the declared bounds.

A registered network from an older flowcast (no recipe) and a bare training run directory
(meta.json + model.ckpt) forecast as a one-network recipe.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from flowcast.columns import INTERVAL_COLUMNS, INTERVAL_LEVELS, interval_cols, within_bounds
from flowcast.data.calendar import week_periods
from flowcast.errors import TrainingError
from flowcast.mdtext import id_text

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData

RECIPE_FILE = "recipe.json"
KINDS = ("network", "statistical", "ensemble", "hybrid")
LAST_RESORT = "naive"  # forecasts any series with one finite observation, within its observed values
# A published series with fewer observations than this gets naive (its last value), whatever the champion: a trend
# read off two points (9.92, 8.81 -> 1.05 fourteen steps on, its 95% interval down to -5.8) is not a forecast, and
# statsforecast / fable do not fit a trend to so few points either. Publishing only (`forecast_detailed(...,
# short_history=SHORT_HISTORY)`): the backtests keep MIN_POINTS (M3 yearly's 2-point cuts), and every M3 series
# has at least 14 points, so nothing M3 publishes goes through it.
SHORT_HISTORY = 3


# ----------------------------------------------------------------------------- statistical models
def statistical_models() -> tuple[str, ...]:
    """Names of the statistical models a recipe can use (the baselines, plus any that
    `flowcast.models.stats` declares in STATISTICAL_MODELS)."""
    from flowcast.models.baselines import BASELINES

    names = list(BASELINES)
    try:
        from flowcast.models import stats
    except ImportError:
        return tuple(names)
    return tuple(dict.fromkeys([*names, *getattr(stats, "STATISTICAL_MODELS", ())]))


# observations a statistical model needs to run on a series (seasonal naive: one full season).
# The trend models need two points for a slope (arima a change to model); on M3 yearly's shortest backtest cuts (2 points)
# theta and damped still beat naive (sMAPE 19.6 and 19.8 against 21.0 and 21.7 when those cuts
# went to naive), so they are not asked for more.
MIN_POINTS = {"naive": 1, "drift": 2, "theta": 2, "dotm": 2, "damped": 2, "arima": 2}
# full seasons of the data's season a statistical model needs besides (seasonal naive: one, the values it repeats)
MIN_SEASONS = {"seasonal_naive": 1}
# models that repeat the value 7 days earlier, whatever the data's season: their lag and the observations they need
# are the data's periods in a week (`calendar.week_periods`: 168 hourly, 7 daily), and data whose week is not a whole
# number of periods, or fewer than two (weekly, monthly, '5d'), cannot have them (`unusable_at`)
WEEKLY = frozenset({"snaive_week"})
# models that fit nothing (a value repeated): forecasting them at 26 more origins of a year of half hours took 0.2-0.9 s
# each, theta's and damped's 33 s and 52 s (load 10), so a retrain recalibrates every one of them in a fallback chain
# (flows.retrain_scoring._calibrate_published)
FIT_FREE = frozenset({"naive", "seasonal_naive", *WEEKLY})


def week_lag(name: str, freq: str) -> int:
    """The periods of `freq` in 7 days, the lag of weekly model `name` (`WEEKLY`); ValueError naming both where
    the frequency has no such lag."""
    periods = week_periods(freq)
    if periods is None:
        raise ValueError(no_week(name, freq))
    return periods


def no_week(name: str, freq: str) -> str:
    """Why weekly model `name` cannot forecast data of frequency `freq`, naming both."""
    return (f"{name} (the value 7 days earlier) cannot forecast data of frequency {freq!r}: 7 days are not a whole "
            "number of its periods, or fewer than two; it is for sub-daily, daily and business-day data")


def unusable_at(models: Iterable[str], freq: str) -> list[str]:
    """The models of `models` that cannot forecast data of frequency `freq` (a weekly one where `week_lag` has no
    lag), in their order."""
    return [m for m in models if m in WEEKLY and week_periods(freq) is None]


def min_points(name: str, season_length: int, freq: str) -> int:
    """The fewest observations `name` forecasts a series of frequency `freq` from: naive 1, drift, theta, dotm,
    damped and arima 2, seasonal naive one season (`MIN_SEASONS`), snaive_week a week (`week_lag`); a model not
    listed: 1. Shorter series get no forecast from it (null), so the next model of a fallback chain that can run on
    them makes theirs."""
    week = week_lag(name, freq) if name in WEEKLY else 0
    return max(MIN_POINTS.get(name, 1), MIN_SEASONS.get(name, 0) * max(int(season_length), 1), week)


def seasons_needed(name: str) -> str:
    """Why `min_points(name)` is what it is, where seasons or a week decide it ('one season', '2 seasons',
    'a week'); '' otherwise."""
    if name in WEEKLY:
        return "a week"
    k = MIN_SEASONS.get(name, 0)
    return "" if not k else "one season" if k == 1 else f"{k} seasons"


ErrorGrowth = Literal["sqrt", "seasonal"]
SQRT: ErrorGrowth = "sqrt"
SEASONAL: ErrorGrowth = "seasonal"
# How each model's h-step error grows with the step h, the law its conformal widths follow where a step is pooled
# and beyond the calibrated steps (`conformal.growth`): SEASONAL with the seasons ahead, ceil(h / m) for the data's
# season m (flat within a season, a seasonal random walk's: the seasonal naive's error one season back is the same
# at every step of a season), SQRT with h (a random walk's). A model declares it here, once, by the name that
# `statistical_forecast` (or, for a network, its cell) goes by; a model not listed grows as SQRT: naive, theta,
# damped, the models of `flowcast.models.stats` (intermittent ones included) and every network cell, whose errors
# grow within a season (damped's on a small daily file).
# snaive_week's error is flat within its week; it takes SEASONAL, flat within each of the data's seasons (a
# day) and grown with the days ahead: the widths it publishes beyond the first day are wider than its law's (a
# horizon of a day, sub-daily data's default, is one season, flat either way).
ERROR_GROWTH: dict[str, ErrorGrowth] = {"seasonal_naive": SEASONAL, "snaive_week": SEASONAL}


def error_growth(models: Iterable[str]) -> ErrorGrowth:
    """How the error of the forecast of `models` combined (one model: its own) grows with the step: SEASONAL when
    every one of them declares it (`ERROR_GROWTH`), SQRT otherwise.

    A mix follows sqrt(h) whatever its weights, rather than the law of the member with the largest weight: a
    combined error sum_i w_i e_i grows within a season as soon as one member's does, however small its weight (only
    a combination of seasonal members alone is flat within a season); and the law is the recipe's, not its fitted
    weights': each backtest window is scored with its own learned weights and the published forecast with others,
    so a law that followed the largest weight could change the widths between them, or between two runs whose
    weights moved from 0.49 to 0.51."""
    laws = [ERROR_GROWTH.get(m, SQRT) for m in models]
    return SEASONAL if laws and all(law == SEASONAL for law in laws) else SQRT


def statistical_forecast(name: str, td: TrainingData, horizon: int) -> pl.DataFrame:
    """unique_id, ds, step, y_hat of statistical model `name` for every series of `td` (y_hat null
    for a series shorter than `min_points`)."""
    from flowcast.models.baselines import BASELINES, baseline_forecast

    if name in BASELINES:
        out = baseline_forecast(name, td, horizon)  # type: ignore[arg-type]
    elif name in statistical_models():
        from flowcast.models import stats

        out = stats.statistical_forecast(name, td, horizon)
    else:
        raise ValueError(f"unknown statistical model {name!r}; expected one of {list(statistical_models())}")
    need = min_points(name, td.meta.season_length, td.meta.freq)
    if need <= 1:
        return out
    short = td.frame.group_by("unique_id").len().filter(pl.col("len") < need)["unique_id"]
    if not short.len():
        return out
    return out.with_columns(pl.when(pl.col("unique_id").is_in(short.implode())).then(None)
                            .otherwise(pl.col("y_hat")).alias("y_hat"))


def network_ids(td: TrainingData, min_length: int | None = None) -> set[str] | None:
    """Series a network may forecast (None: every series): preprocessing marks the series that are
    too short for a network (`TrainingData.marks()`, column `network`), with the minimum length
    the network was trained for (`min_length`, from its artifact) when it is known."""
    marks = getattr(td, "marks", None)
    if not callable(marks):
        return None
    try:
        m = marks(network_min_length=min_length) if min_length is not None else marks()
    except TypeError:  # an older TrainingData without that argument
        m = marks()
    if not isinstance(m, pl.DataFrame) or "network" not in m.columns:
        return None
    return set(m.filter(pl.col("network"))["unique_id"].to_list())


def statistical_models_used(name: str, td: TrainingData) -> pl.DataFrame | None:
    """unique_id, model: the method that really forecast each series when statistical model `name`
    falls back on short series (seasonal naive below one season is naive, ...); None when the
    baselines do not say."""
    from flowcast.models import baselines

    used = getattr(baselines, "baseline_models", None)
    if not callable(used) or name not in baselines.BASELINES:
        return None
    out = used(name, td)
    return out if isinstance(out, pl.DataFrame) and {"unique_id", "model"} <= set(out.columns) else None


# ----------------------------------------------------------------------------- the recipe
@dataclass
class Recipe:
    name: str
    kind: str
    components: list[dict[str, Any]]
    weights: list[float]
    fallback: list[str] = field(default_factory=list)
    intervals: dict[str, Any] = field(default_factory=dict)
    base: Path | None = None  # directory that network component paths are relative to
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, name: str | None = None, base: Path | None = None) -> Recipe:
        """The recipe `d` describes, holding a deep copy of it: a registered version's recipe, held in memory by its
        ModelVersion, is never changed through the Recipe (`build(PRODUCTION)` gives the calibrations it loads this
        run's short part; a top-level copy gave it to the version's own, fixA54)."""
        d = copy.deepcopy(d)
        comps = list(d.get("components") or [])
        if not comps:
            raise TrainingError(f"recipe of {name or d.get('name')!r} has no components")
        weights = [float(w) for w in (d.get("weights") or [1.0 / len(comps)] * len(comps))]
        if len(weights) != len(comps) or any(w < 0 or not math.isfinite(w) for w in weights) \
                or abs(sum(weights) - 1) > 1e-6:
            raise TrainingError(f"recipe of {name or d.get('name')!r}: weights {weights} must be >= 0, one per "
                                f"component ({len(comps)}) and sum to 1")
        for c in comps:
            if c.get("type") not in ("network", "statistical"):
                raise TrainingError(f"recipe component {c} is neither a network nor a statistical model")
        known = {"name", "kind", "components", "weights", "fallback", "intervals"}
        return cls(
            name=str(name or d.get("name") or _default_name(comps)), kind=str(d.get("kind") or kind_of(comps)),
            components=comps, weights=weights, fallback=[str(f) for f in d.get("fallback") or []],
            intervals=dict(d.get("intervals") or {}), base=base, extra={k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "components": self.components, "weights": self.weights,
                "fallback": self.fallback, "intervals": self.intervals, **self.extra}

    def save(self, directory: Path) -> Path:
        """Write recipe.json into `directory` atomically (temp file, fsync, rename): a kill or a full disk
        mid-write leaves the old file or the new one, never a torn one (a full disk: StorageError)."""
        from flowcast.atomic import atomic_write_text

        return atomic_write_text(directory / RECIPE_FILE, json.dumps(self.to_dict(), indent=2, allow_nan=False))


def last_resort_recipe(*, horizon: int, season_length: int, intervals_note: str) -> Recipe:
    """The last resort (naive) as a statistical recipe without interval calibration: what a retrain
    publishes when no candidate could be scored. `intervals_note` says why its interval columns are
    null (there were no backtest residuals to calibrate them on)."""
    return Recipe(name=LAST_RESORT, kind="statistical", components=[{"type": "statistical", "model": LAST_RESORT}],
                  weights=[1.0], extra={"horizon": horizon, "season_length": season_length,
                                        "intervals_note": intervals_note})


def covariates_note(recipe: Recipe, declared: list[str], cells: list[str], label: str | None = None) -> str | None:
    """A sentence when the source declares covariates (`future_cols`, `past_cols`, `static_cols`) and the published
    model uses none of them: only the networks take covariates, and a statistical winner (or a blend whose networks
    got weight 0) forecast without them while the run said nothing (a user who declared promo = ["promo"] read a
    damped forecast as one that knew the promotions). None when there is nothing to say. `label`: the source's
    `label_col`, the series' name (a static only because the plot's titles read it there), not counted: every run
    of the bundled us_employment said 'The declared covariates (Title) are not used by damped'."""
    declared = [c for c in declared if c != label]
    if not declared:
        return None
    if any(c.get("type") == "network" and w > 0 for c, w in zip(recipe.components, recipe.weights, strict=False)):
        return None
    why = ("no network was trained (model.cells is empty)" if not cells
           else f"the networks that do ({', '.join(cells)}) did not earn a weight in it on the backtest")
    return (f"The declared covariates ({', '.join(declared)}) are not used by {recipe.name}, which publishes: only the "
            f"networks take covariates, and {why}.")


def below_zero_note(history: pl.DataFrame, forecasts: pl.DataFrame, y_min: float | None) -> str | None:
    """A sentence when no `y_min` is declared, every value of the history (`y`) is 0 or more, and the forecasts
    (`y_hat` or an interval bound) go below 0: counts published with an 80% interval down to -4 while the run
    said nothing, and a `--data` user had no way to learn that `y_min = 0` cuts them at 0. flowcast guesses no
    bound (a net flow can turn negative after years above 0): it names the series and the setting. None otherwise.
    (Data classed intermittent, mostly exact zeros, is cut at 0 and passes that bound here as `y_min`:
    `flowcast.evaluation.intermittency.count_bounds`.)"""
    if y_min is not None or not history.height or not forecasts.height:
        return None
    if (low := history["y"].min()) is None or float(low) < 0:  # type: ignore[arg-type]
        return None
    cols = ["y_hat", *[c for c in INTERVAL_COLUMNS if c in forecasts.columns]]
    lowest = forecasts.select("unique_id", pl.min_horizontal(cols).alias("low")).group_by("unique_id", maintain_order=True).agg(
        pl.col("low").min()).filter(pl.col("low") < 0).sort("low")
    if not lowest.height:
        return None
    worst, value = lowest.row(0)
    n_all = forecasts["unique_id"].n_unique()
    return (f"Every observed value is 0 or more, but the forecasts or intervals of {lowest.height:,} of {n_all:,} series "
            f"go below 0 (lowest: {id_text(worst)} at {value:.4g}). If the values cannot be negative (counts, sales, demand), declare "
            "y_min = 0 (--y-min 0, or y_min in the source's [sources.NAME]): intervals are then cut at 0; flowcast "
            "assumes no bound from a history that happens to be non-negative.")


def kind_of(components: list[dict[str, Any]]) -> str:
    """network (one network), statistical (statistical models only), ensemble (networks only),
    hybrid (networks and statistical models)."""
    n_net = sum(c.get("type") == "network" for c in components)
    if n_net == 0:
        return "statistical"
    if n_net == len(components):
        return "network" if n_net == 1 else "ensemble"
    return "hybrid"


def _default_name(components: list[dict[str, Any]]) -> str:
    if len(components) == 1:
        c = components[0]
        return str(c.get("cell") or c.get("model"))
    return kind_of(components)


def _label(c: dict[str, Any]) -> str:
    return str(c.get("cell") if c.get("type") == "network" else c.get("model"))


def describe_recipe(recipe: dict[str, Any]) -> str:
    """Plain words: 'hybrid: 0.5 x gru (2 seeds) + 0.25 x theta + 0.25 x damped (weights learned on
    2 backtest windows); fallback damped, naive; 80/95% conformal intervals'."""
    comps = list(recipe.get("components") or [])
    if not comps:
        return str(recipe.get("kind") or "unknown")
    weights = list(recipe.get("weights") or [1.0 / len(comps)] * len(comps))
    groups: dict[str, list[float]] = {}
    for c, w in zip(comps, weights):
        groups.setdefault(_label(c), []).append(float(w))
    kind = recipe.get("kind") or kind_of(comps)
    if len(groups) == 1:
        label, ws = next(iter(groups.items()))
        body = label if len(ws) == 1 else f"{label} ({len(ws)} seeds averaged)"
    else:
        body = " + ".join(f"{sum(ws):.2g} x {label}" + (f" ({len(ws)} seeds)" if len(ws) > 1 else "")
                          for label, ws in groups.items() if sum(ws) > 0)
    text = f"{kind}: {body}"
    if recipe.get("weights_note") and len(groups) > 1:
        text += f" (weights {recipe['weights_note']})"
    if recipe.get("fallback"):
        # not 'series it cannot forecast: dotm, theta' (ui19: it read as if dotm and theta were series)
        text += f"; its fallbacks for series it cannot forecast (first that can): {', '.join(recipe['fallback'])}"
    if recipe.get("intervals"):
        own = recipe["intervals"].get(str(recipe.get("name"))) or {}
        levels = [int(lv) for lv in own.get("levels", INTERVAL_LEVELS)]
        few = [lv for lv in levels if str(lv) in (own.get("too_few") or {})]
        kept = [lv for lv in levels if lv not in few]
        # a level its calibration had too few points for is never published: 'no 95%', not '80/95%'
        text += (f"; {'/'.join(map(str, kept))}% conformal intervals" if kept else "; no intervals") + (
            f" (too few backtest points for {'/'.join(map(str, few))}%)" if few else "")
    elif recipe.get("intervals_note"):
        text += f"; no intervals ({recipe['intervals_note']})"
    return text


def load_recipe(source: Any) -> Recipe:
    """A Recipe from a registered ModelVersion, an artifact directory (recipe.json, or a trained
    network's meta.json), a ModelArtifact, a recipe dict or a Recipe."""
    if isinstance(source, Recipe):
        return source
    if isinstance(source, dict):
        return Recipe.from_dict(source)
    from flowcast.registry import ModelVersion

    if isinstance(source, ModelVersion):
        recipe = dict(source.recipe)
        if not recipe.get("components"):
            recipe = {"kind": "network", "components": [{"type": "network", "cell": source.name, "path": "."}]}
        return Recipe.from_dict(recipe, name=source.name, base=Path(source.path))
    from flowcast.models.train import ModelArtifact

    if isinstance(source, ModelArtifact):
        return Recipe.from_dict({"kind": "network", "components": [{"type": "network", "cell": source.cell,
                                                                      "path": "."}]}, base=Path(source.path))
    path = Path(source)
    if (path / RECIPE_FILE).exists():
        return Recipe.from_dict(json.loads((path / RECIPE_FILE).read_text()), base=path)
    if (path / "meta.json").exists():
        cell = json.loads((path / "meta.json").read_text()).get("cell", "network")
        return Recipe.from_dict({"kind": "network", "components": [{"type": "network", "cell": cell, "path": "."}]},
                                base=path)
    raise TrainingError(f"no model at {path}: neither {RECIPE_FILE} nor a trained network's meta.json")


# ----------------------------------------------------------------------------- forecasting
def damaged_network_files(artifact: Path, recipe: dict[str, Any] | None = None) -> list[str]:
    """Each missing or unreadable file of the networks under a registered version's `artifact` folder, as
    '<file>: <why>' (empty: whole). The registry keeps no checksums; a checkpoint is a zip whose members carry
    CRCs, so a cut or overwritten `model.ckpt` is found without loading it (`flowcast models show`), by the check
    the forecast makes (`checkpoint_fault`). `recipe` (the version's): the folder of each network it forecasts with
    must hold both files; without it, a folder whose meta.json and model.ckpt were both gone (emptied, a blend's
    member folder removed) had nothing to check and the version read whole (review21)."""
    from flowcast.models.predict import checkpoint_fault

    problems: list[str] = []
    for c in (recipe or {}).get("components") or []:
        if not isinstance(c, dict) or c.get("type") != "network":
            continue
        folder = network_folder(c, Path(artifact))
        if not (folder / "meta.json").exists() and not (folder / "model.ckpt").exists():  # (one of them: below)
            problems += [f"{folder / 'meta.json'}: missing", f"{folder / 'model.ckpt'}: missing"]
    for meta_file in sorted(Path(artifact).rglob("meta.json")):
        folder = meta_file.parent
        try:
            meta = json.loads(meta_file.read_text())
            if not isinstance(meta, dict) or "cell" not in meta:
                raise ValueError("no 'cell' recorded")
        except (OSError, ValueError) as exc:
            problems.append(f"{meta_file}: cannot be read ({type(exc).__name__}: {exc})")
        ckpt = folder / "model.ckpt"
        if not ckpt.exists():
            problems.append(f"{ckpt}: missing")
            continue
        fault = checkpoint_fault(ckpt)
        if fault is not None:
            problems.append(f"{ckpt}: {fault}")
    for ckpt in sorted(Path(artifact).rglob("model.ckpt")):  # a checkpoint whose meta.json is gone
        if not (ckpt.parent / "meta.json").exists():
            problems.append(f"{ckpt.parent / 'meta.json'}: missing")
    return problems


def network_folder(component: dict[str, Any], base: Path | None) -> Path:
    """The folder of a recipe's network `component` (its path, relative to the recipe's `base`)."""
    path = Path(component.get("path") or ".")
    if not path.is_absolute():
        if base is None:
            raise TrainingError(f"network component {component} has a relative path and the recipe no directory")
        path = base / path
    return path


def declared_covariates_refusal(recipe: Recipe, future_cols: list[str], past_cols: list[str]) -> str | None:
    """The error `predict` raises when data whose covariates are not the ones a network of `recipe` was trained with
    reaches it, said from a source's declared `future_cols` and `past_cols` before any data is read
    (`predict.declared_covariates_differ`, with the network's folder as `predict` names it: absolute, resolved, where
    it named the home as given, `home/models/...`): `flowcast forecast` said it inside its flow, ~15 s after Prefect
    started (fcst44). None where every network's are the declared ones, or where a network's meta.json cannot be
    read here (the forecast reads it again and says what is wrong)."""
    from flowcast.models.predict import declared_covariates_differ

    for component in recipe.components:
        if component.get("type") != "network":
            continue
        try:
            folder = network_folder(component, recipe.base)
            said = declared_covariates_differ(future_cols, past_cols, json.loads((folder / "meta.json").read_text()))
        except Exception:  # noqa: BLE001, S112 - the forecast loads the network and says what is wrong with it
            continue
        if said is not None:
            return f"{said} ({folder.resolve()})"
    return None


def component_forecast(component: dict[str, Any], td: TrainingData, horizon: int,
                       base: Path | None = None) -> pl.DataFrame:
    """unique_id, ds, step, y_hat[, quantile columns] of one component, every series of `td`
    (a network's series that it may not forecast get null)."""
    if component["type"] == "statistical":
        return statistical_forecast(str(component["model"]), td, horizon)
    from flowcast.models.predict import predict
    from flowcast.models.train import ModelArtifact

    artifact = ModelArtifact.load(network_folder(component, base))
    frame = predict(artifact, td, horizon=horizon)
    allowed = network_ids(td, (artifact.meta or {}).get("network_min_length"))
    if allowed is not None:
        value_cols = [c for c in frame.columns if c == "y_hat" or c.startswith("y_hat_q")]
        frame = frame.with_columns([pl.when(pl.col("unique_id").is_in(list(allowed))).then(pl.col(c)).otherwise(None)
                                    .alias(c) for c in value_cols])
    return frame


def combine(frames: list[pl.DataFrame], weights: list[float]) -> pl.DataFrame:
    """sum_i weights[i] x frames[i], row by row (unique_id, step): y_hat, and the quantile columns
    that every frame has. A row missing or null in any frame with weight > 0 is null."""
    if len(frames) != len(weights) or not frames:
        raise ValueError(f"{len(frames)} frames for {len(weights)} weights")
    qcols = [c for c in frames[0].columns if c.startswith("y_hat_q") and all(c in f.columns for f in frames)]
    cols = ["y_hat", *qcols]
    out = frames[0].select("unique_id", "ds", "step")
    acc = None
    for i, (f, w) in enumerate(zip(frames, weights)):
        if w == 0:
            continue
        part = f.select("unique_id", "step", *[pl.col(c).cast(pl.Float64).alias(f"{c}__{i}") for c in cols])
        out = out.join(part, on=["unique_id", "step"], how="left")
        terms = [w * pl.col(f"{c}__{i}") for c in cols]
        acc = terms if acc is None else [a + t for a, t in zip(acc, terms)]
    assert acc is not None, "every weight is 0"
    return out.with_columns([e.alias(c) for e, c in zip(acc, cols)]).select("unique_id", "ds", "step", *cols)


def bad_rows() -> pl.Expr:
    """True where y_hat is missing or not finite (a value beyond the declared bounds is cut at them first:
    `within_bounds`)."""
    return (pl.col("y_hat").is_null() | ~pl.col("y_hat").is_finite()).fill_null(True)


def _reason() -> pl.Expr:
    r: Any = pl.when(pl.col("y_hat").is_null()).then(pl.lit("no forecast (series not forecastable by this model)"))
    return r.when(~pl.col("y_hat").is_finite()).then(pl.lit("forecast not finite")).otherwise(pl.lit("ok"))


@dataclass
class RecipeForecast:
    """What a recipe forecast: the frame (one row per series and step, `model` per row), the
    series that fell back (unique_id, model, reason) and the recipe itself."""

    frame: pl.DataFrame
    fallbacks: pl.DataFrame
    recipe: Recipe
    constant: dict[str, float] = field(default_factory=dict)  # series of a constant history (its value): zero width
    # series of fewer than `short_history` observations (their count), forecast by naive instead of the recipe
    short: dict[str, int] = field(default_factory=dict)
    short_history: int = 0
    # series of 2 to `short_history` - 1 observations (their count) published by naive whose intervals also reach
    # their one change carried forward (`conformal.reach_one_change`): a change not 0, and intervals published
    reached: dict[str, int] = field(default_factory=dict)
    # series whose history measures no typical change though it moves (one observation, or a history repeating
    # itself exactly at the season), with why: their widths are scaled by their mean |y| instead
    level_scaled: dict[str, str] = field(default_factory=dict)
    # series as those, where no series has a measured typical change to borrow (every series of 1 observation), with
    # why: widths calibrated in changes have no unit for them, and no interval is published (`interval_notes`)
    unscaled: dict[str, str] = field(default_factory=dict)

    def could_not(self) -> pl.DataFrame:
        """The `fallbacks` rows of the series the model could not forecast: not the `short` ones, which it was not
        asked to (`short_note` says them)."""
        return self.fallbacks.filter(~pl.col("unique_id").is_in(list(self.short)))

    def fallback_note(self, who: str = "it") -> str | None:
        """'1 series it cannot forecast was forecast by its fallback: 1 by damped (east: no forecast: 40
        observations, too few for seasonal_naive (it needs 52: one season))' ('3 series ... were ...': it said
        'were' of one series too), `who` the model that could not ('it': the run's champion); None when there is
        none (a short series, published by naive by rule, is `short_note`'s: it was counted here too, as one the
        champion cannot forecast). The first 3 series are named with their reason (newuser22: a retrain's summary
        named none, and `flowcast forecasts` showed the fallback's rows under the champion's version; only the
        forecast flow's log gave an example)."""
        rows = self.could_not()
        n = rows.height
        if not n:
            return None
        by_model = rows.group_by("model").len().sort("model").rows()
        named = "; ".join(f"{id_text(u)}: {r}" for u, _, r in rows.select("unique_id", "model", "reason").head(3).rows())
        return (f"{n} series {who} cannot forecast {'was' if n == 1 else 'were'} forecast by its fallback: "
                + ", ".join(f"{k} by {m}" for m, k in by_model)
                + (f" ({'e.g. ' if n > 3 else ''}{named})" if named else ""))

    def short_note(self) -> str | None:
        """'1 series has fewer than 3 observations (s00: 2): forecast by naive, its last value, ...' (None: none),
        and that the intervals of `reached` reach their one change carried forward (`conformal.reach_one_change`: not
        the widths naive's calibration alone gives), naming them where they are not all the short ones; with naive
        the champion (no `short`: its own rows) the note names `reached` alone (review49: their intervals were
        stretched without a word, and a series of a change of 0 was said to reach it)."""
        if not self.short and not self.reached:
            return None
        ids = self.short or self.reached
        n = len(ids)
        its = "its" if n == 1 else "their"
        head = (f"{n:,} series {'has' if n == 1 else 'have'} fewer than {self.short_history} observations "
                f"({_counted(ids)}): ")
        if not self.short:  # naive the champion: stretched, nothing set aside
            return head + f"naive forecasts {its} last value, and {its} intervals also reach {its} one change carried forward."
        head += f"forecast by naive, {its} last value, not by a trend read off so few points"
        if not self.reached:
            return head + "."
        if self.reached.keys() == self.short.keys():
            return head + f"; {its} intervals also reach {its} one change carried forward."
        k = len(self.reached)
        return (head + f"; the intervals of {k} of them ({_counted(self.reached)}) also reach "
                f"{'its' if k == 1 else 'their'} one change carried forward.")

    @property
    def moving(self) -> pl.DataFrame:
        """The rows of the series whose history moves (all but `constant`'s): the ones whose intervals a calibration
        with too few points for a level leaves out (a constant series keeps its zero width at every level)."""
        return self.frame.filter(~pl.col("unique_id").is_in(list(self.constant)))

    @property
    def fallback_share(self) -> float:
        n = self.frame["unique_id"].n_unique()
        return self.fallbacks.height / n if n else 0.0

    @property
    def made_by(self) -> list[str]:
        """The models that made this forecast's rows, the recipe's own first where it made some."""
        made = self.frame["model"].unique(maintain_order=True).to_list()
        return list(dict.fromkeys(n for n in [self.recipe.name, *made] if n in made))

    @property
    def maker(self) -> str:
        """The model the interval notes name: the recipe's, or where it made no row (every series its fallback's) the
        first fallback that made some: 'theta publishes no 95% interval ...' told of a model that made none (uiB46)."""
        made = self.made_by
        return self.recipe.name if not made or made[0] == self.recipe.name else made[0]

    def missing_level_notes(self) -> list[str]:
        """Why a level of a calibrated model has no bounds in this forecast (null in every row): the
        sentence the retrain that registered it said (`conformal.calibration_notes`), so that a
        forecast-only run, whose rows lack the 95% interval just the same, says it too. The rows of a constant
        history (`constant`) do not count: they keep their zero width at every level (`_whole_levels`)."""
        from flowcast.evaluation.conformal import calibration_notes

        moving = self.moving
        if not self.recipe.intervals or moving.height == 0:
            return []  # uncalibrated: the forecast flow says so itself (or every series constant: none is missing)
        names, who = self.made_by, self.maker  # (not the recipe's calibration where it made no row)
        notes = []
        for lv in INTERVAL_LEVELS:
            lo, _ = interval_cols(lv)
            if lo not in moving.columns or moving[lo].null_count() < moving.height:
                continue
            start = f" publishes no {lv}% interval"
            said = next(((name, n) for name in names for n in calibration_notes(self.recipe.intervals.get(name), name)
                         if n.startswith(name + start)), None)
            if said is None and self.unscaled:
                continue  # `interval_notes` says why: no typical change to scale the widths by
            bare = self._uncalibrated() if said is None else None
            if bare and who != self.recipe.name:
                notes.append(f"{bare}{start}: it has no calibration (a level is published for every series or none).")
            elif bare:  # it said the recipe's calibration had no width
                notes.append(f"{self.recipe.name}{start}: its fallback {bare} has no calibration, and forecasts "
                             "some series (a level is published for every series or none).")
            elif said is None:
                notes.append(f"{who}{start}: its calibration has no width for it.")
            elif said[0] == who or who != self.recipe.name:  # the fallback's own sentence where it made every row
                notes.append(said[1])
            else:  # a level is published for every series or none (_whole_levels)
                notes.append(f"{self.recipe.name}{start}: its fallback {said[0]} has none for the series it "
                             f"forecasts ({said[1].removeprefix(said[0] + start + ': ').rstrip('.')}).")
        return notes

    def _uncalibrated(self) -> str | None:
        """The first fallback (or the last resort) that made rows of this forecast and has no calibration in the
        recipe: its rows have no bounds, and so no series has that level (`_whole_levels`); None where there is none."""
        made = set(self.frame["model"].unique().to_list())
        return next((m for m in dict.fromkeys([*self.recipe.fallback, LAST_RESORT])
                     if m != self.recipe.name and m in made and not self.recipe.intervals.get(m)), None)

    def interval_notes(self) -> list[str]:
        """What of the published intervals no calibration made, of the levels it publishes: the steps of this
        forecast beyond those its calibration has widths for (a horizon longer than the backtest's:
        `conformal.beyond_note`), the series of a constant history (zero width) and those whose widths are
        scaled by their level (no measured change: `level_scaled`; not where the widths were calibrated in levels,
        every series' unit then, see `conformal.calibrate`)."""
        from flowcast.evaluation.conformal import beyond_note

        if not self.recipe.intervals or self.frame.height == 0:
            return []
        notes = []
        horizon = int(self.frame["step"].max())  # type: ignore[arg-type]
        levels = [lv for lv in INTERVAL_LEVELS if (lo := interval_cols(lv)[0]) in self.frame.columns
                  and self.frame[lo].null_count() < self.frame.height]
        who = self.maker
        cal = next((c for c in (self.recipe.intervals.get(n) for n in self.made_by) if c), None)
        if (note := beyond_note(cal, who, horizon, levels)) is not None:
            notes.append(note)
        if self.constant and levels:
            e_g = ", ".join(f"{id_text(u)} at {y:g}" for u, y in sorted(self.constant.items())[:3])
            n = len(self.constant)
            notes.append(f"{n} series {'has' if n == 1 else 'have'} a constant history ({'e.g. ' if n > 3 else ''}"
                         f"{e_g}): "
                         f"{'its' if n == 1 else 'their'} {'/'.join(f'{lv}%' for lv in levels)} intervals have no "
                         "conformal width (the point forecast, as a model without residual variance gets in "
                         "statsforecast or fable): nothing in that history measures how far it may move.")
        if self.unscaled:
            n = len(self.unscaled)
            e_g = ", ".join(f"{id_text(u)}: {why}" for u, why in sorted(self.unscaled.items())[:3])
            cal_levels = [str(lv) for lv in (cal or {}).get("levels", INTERVAL_LEVELS)]
            notes.append(f"{n} series {'has' if n == 1 else 'have'} no measured typical change to scale "
                         f"{'its' if n == 1 else 'their'} widths by ({'e.g. ' if n > 3 else ''}{e_g}), and no other "
                         f"series has one to borrow: {who} publishes no "
                         f"{'/'.join(f'{lv}%' for lv in cal_levels)} interval for {'it' if n == 1 else 'them'}, its "
                         "calibrated widths being multiples of a typical change (the mean |y| in its place put the "
                         "lower bound far below every value).")
        # (the levels of the series that move: a constant series' zero width is there at a level they have none of)
        moving = self.moving
        levels = [lv for lv in levels if moving[interval_cols(lv)[0]].null_count() < moving.height]
        if self.level_scaled and levels:
            n = len(self.level_scaled)
            e_g = ", ".join(f"{id_text(u)}: {why}" for u, why in sorted(self.level_scaled.items())[:3])
            notes.append(f"{n} series {'has' if n == 1 else 'have'} no measured typical change to scale "
                         f"{'its' if n == 1 else 'their'} widths by ({'e.g. ' if n > 3 else ''}{e_g}): "
                         f"{'its' if n == 1 else 'their'} "
                         f"{'/'.join(f'{lv}%' for lv in levels)} widths are the calibrated multiples of "
                         f"{'its' if n == 1 else 'their'} mean |y| times the other series' typical change relative "
                         "to their level instead, a stand-in nothing calibrated.")
        return notes


def _counted(ids: dict[str, int]) -> str:
    """'s00: 2, s01: 2' of series and their observations, the first 3 ('e.g. ' before them where there are more)."""
    return ("e.g. " if len(ids) > 3 else "") + ", ".join(f"{id_text(u)}: {k}" for u, k in sorted(ids.items())[:3])


def _whole_levels(frame: pl.DataFrame, widthless: Iterable[str] = (), constant: Iterable[str] = ()) -> pl.DataFrame:
    """An interval level is published for every series or for none: when the calibration of one
    part's model had too few points for a level (conformal.calibration_notes: e.g. the champion's, fitted
    on the oldest backtest window only, while its fallback's has every window), the level's bounds
    are left out for all rows, not published for some series only (which no forecast check passes).
    The series of `widthless` (no typical change to scale the widths by, none to borrow: `RecipeForecast.unscaled`)
    have no bounds whatever the calibration, and do not count: a constant series beside them keeps its zero-width
    interval, its value (probe45: it lost it, the level left out for all rows). Nor do the series of `constant`
    (a constant history: `RecipeForecast.constant`), whose zero width is true at every level whatever the calibration
    (`conformal.apply_intervals`): they keep it where the level is left out for the others (cachedir46), and count
    where they have none (their rows' model has no calibration: naive's of a short series), as every series did
    before (revB46: the moving series kept their bounds beside its null ones, which the forecast check failed)."""
    flat = pl.col("unique_id").is_in(list(constant))
    for lv in INTERVAL_LEVELS:
        cols = list(interval_cols(lv))
        if not all(c in frame.columns for c in cols):
            continue
        kept = flat & pl.all_horizontal(pl.col(c).is_not_null() for c in cols)  # a constant series' zero width
        checked = frame.filter(~pl.col("unique_id").is_in(list(widthless)) & ~kept)
        if any(0 < checked[c].null_count() < checked.height for c in cols):
            frame = frame.with_columns(pl.when(flat).then(pl.col(c)).alias(c) for c in cols)
    return frame


def forecast_detailed(
    source: Any,
    td: TrainingData,
    horizon: int | None = None,
    *,
    bounds: tuple[float | None, float | None] = (None, None),
    season_length: int | None = None,
    short_history: int = 0,
) -> RecipeForecast:
    """Forecast every series of `td` with the model `source` (see `load_recipe`), falling back per
    series, with calibrated intervals; see the module docstring. A series of fewer than `short_history`
    finite observations (publishing passes SHORT_HISTORY; backtests 0) is forecast by naive, whatever the recipe."""
    from flowcast.evaluation.conformal import apply_intervals, reach_one_change, series_scale

    recipe = load_recipe(source)
    h = int(horizon or td.meta.horizon)
    frames = [component_forecast(c, td, h, recipe.base) for c in recipe.components]
    main = combine(frames, recipe.weights).with_columns(pl.lit(recipe.name).alias("model"),
                                                        pl.lit(recipe.name).alias("__nominal"))
    main = main.with_columns(within_bounds(c, bounds) for c in main.columns if c.startswith("y_hat"))  # at y_min/y_max
    judged = main.with_columns(_reason().alias("__reason"))
    bad_ids = judged.filter(pl.col("__reason") != "ok").group_by("unique_id").agg(
        pl.col("__reason").first().alias("reason"))
    if bad_ids.height:  # say how short a series the model does not forecast by design is
        n_obs = td.frame.group_by("unique_id").len().rename({"len": "__n"})
        # a statistical champion says how many it needs (newuser22: 'too few for seasonal_naive' of a weekly
        # series of 40 points left the user to guess the 52 of one season)
        single = recipe.components[0] if len(recipe.components) == 1 else {}
        needs = (min_points(str(single["model"]), td.meta.season_length, td.meta.freq)
                 if single.get("type") == "statistical" else 0)
        seasons = seasons_needed(str(single["model"])) if needs else ""
        need = (f" (it needs {needs}" + (f": {seasons})" if seasons else ")") if needs else "")
        # 'too few' only of a series shorter than that: one long enough without a forecast (a missing value where
        # impute = "none", a fit that failed) read '24 observation(s), too few for seasonal_naive (it needs 12)'
        short_of = pl.col("__n").fill_null(0) < needs if needs else pl.lit(True)
        bad_ids = bad_ids.join(n_obs, on="unique_id", how="left").with_columns(
            pl.when(pl.col("reason").str.starts_with("no forecast") & short_of)
            .then(pl.format("no forecast: {} {}, too few for {}{}", pl.col("__n").fill_null(0),
                            pl.when(pl.col("__n") == 1).then(pl.lit("observation")).otherwise(pl.lit("observations")),
                            pl.lit(recipe.name), pl.lit(need)))
            .otherwise(pl.col("reason")).alias("reason")).drop("__n").sort("unique_id")
    few: dict[str, int] = {}  # series of 2 to short_history - 1 observations (publishing): naive's, one change
    change = pl.DataFrame(schema={"unique_id": pl.Utf8, "change": pl.Float64})
    if short_history > 1:
        # observations: the points preprocessing imputed (`TrainingData.imputed`) are none (2 observed with an
        # imputed gap between them counted 3, and the champion's trend was read off the 2)
        n_fin = (td.frame.select("unique_id", "y").with_columns(td.observed())
                 .filter(pl.col("y").is_finite() & pl.col("observed")).group_by("unique_id").len())
        # one observation: no model but naive forecasts it already (MIN_POINTS), and the fallback says so
        few = {str(u): int(k) for u, k in n_fin.filter(pl.col("len").is_between(2, short_history - 1)).iter_rows()}
        # their change per period from the first observation to the last (a gap between them counts its periods)
        change = (td.frame.select("unique_id", "ds", "y").sort("unique_id", "ds").with_columns(
            td.observed(), pl.int_range(pl.len()).over("unique_id").alias("__i"))
            .filter(pl.col("unique_id").is_in(list(few)) & pl.col("y").is_finite() & pl.col("observed"))
            .group_by("unique_id").agg(((pl.col("y").last() - pl.col("y").first())
                                        / (pl.col("__i").last() - pl.col("__i").first())).alias("change"))
            .filter(pl.col("change") != 0))  # (no change: nothing to reach, nothing to say)
    short = few if recipe.name != LAST_RESORT else {}  # (naive the champion: its own rows, no fallback)
    if short:
        why = pl.DataFrame({"unique_id": list(short), "reason": [  # `few` holds 2 or more: 'observations'
            f"no forecast: {k} observations, fewer than {short_history}: too few to read a trend from, "
            f"forecast by {LAST_RESORT}" for k in short.values()]}, schema={"unique_id": pl.Utf8, "reason": pl.Utf8})
        bad_ids = pl.concat([bad_ids.filter(~pl.col("unique_id").is_in(list(short))), why],
                            how="vertical_relaxed").sort("unique_id")
    main = main.filter(~pl.col("unique_id").is_in(bad_ids["unique_id"].implode()))
    if len(recipe.components) == 1 and recipe.components[0]["type"] == "statistical":
        main = _true_method(main, str(recipe.components[0]["model"]), td)
    parts = [main]
    fallen = []
    todo = bad_ids
    chain = [m for m in dict.fromkeys([*recipe.fallback, LAST_RESORT]) if m != recipe.name]
    for name in chain:
        if not todo.height:
            break
        asked = todo if name == LAST_RESORT else todo.filter(~pl.col("unique_id").is_in(list(short)))
        if not asked.height:
            continue
        sub = _subset(td, asked["unique_id"].to_list())
        fc = statistical_forecast(name, sub, h).with_columns(pl.lit(name).alias("model"), pl.lit(name).alias("__nominal"))
        fc = fc.with_columns(within_bounds(c, bounds) for c in fc.columns if c.startswith("y_hat"))
        ok_ids = fc.with_columns(bad_rows().alias("__bad")).group_by("unique_id").agg(
            (~pl.col("__bad").any()).alias("ok")).filter(pl.col("ok"))["unique_id"]
        took = asked.filter(pl.col("unique_id").is_in(ok_ids.implode()))
        parts.append(_true_method(fc.filter(pl.col("unique_id").is_in(ok_ids.implode())), name, sub))
        fallen.append(took.with_columns(pl.lit(name).alias("model")))
        todo = todo.filter(~pl.col("unique_id").is_in(ok_ids.implode()))
    if todo.height:  # even the last resort failed (its own values are not finite): never silent
        raise TrainingError(
            f"{todo.height} series cannot be forecast (not finite) by {recipe.name} or any fallback "
            f"({', '.join(chain)}), e.g. {todo.head(5).rows()}"
        )
    frame = pl.concat(parts, how="diagonal_relaxed")
    m = int(season_length or td.meta.season_length)
    # a constant history has no change to scale the widths by: zero width (see flowcast.evaluation.conformal)
    # a short series (published by naive) has one change: no typical one to scale its widths by (3 -> 15 published
    # [-30, 60] at step 6 beside series moving a quarter of their level): the others' relative change, as one point's
    # none of them with a change to borrow (a backfill date of one observation each): no width, no interval (iv44)
    scale = series_scale(td.frame.select("unique_id", "ds", "y"), m, constant=True, unmeasured=list(few),
                         borrow_only=True, freq=td.meta.freq, tz=td.meta.tz)
    out = []
    in_levels: set[str] = set()  # series whose widths were calibrated in levels: every series' mean |y| is its unit
    for (model_name, nominal), part in frame.group_by("model", "__nominal", maintain_order=True):
        # the calibration of the method that made the rows, else of the model they were asked of
        cal = recipe.intervals.get(str(model_name)) or recipe.intervals.get(str(nominal))
        out.append(apply_intervals(part, cal, scale, bounds))
        if (cal or {}).get("scale") == "level":
            in_levels |= set(part["unique_id"].to_list())
        elif (short_cal := (cal or {}).get("short")) and short_cal.get("groups"):  # in levels, on short cuts
            in_levels |= set(scale.filter(pl.col("unique_id").is_in(part["unique_id"].implode())
                                          & (pl.col("history") < int(short_cal["below"])))["unique_id"].to_list())
    result = pl.concat(out, how="diagonal_relaxed") if out else frame
    for c in INTERVAL_COLUMNS:
        if c not in result.columns:
            result = result.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    # naive does not carry their one change forward, and they went on as it went more often than not: their
    # intervals reach that path too (`conformal.reach_one_change`)
    result = reach_one_change(result, change, bounds)
    fallbacks = (pl.concat(fallen) if fallen else pl.DataFrame(
        schema={"unique_id": pl.Utf8, "reason": pl.Utf8, "model": pl.Utf8})).select("unique_id", "model", "reason")
    flat = dict(td.frame.join(scale.filter(pl.col("scale") == 0), on="unique_id", how="semi")
                .filter(pl.col("unique_id").is_in(result["unique_id"].implode()) & pl.col("y").is_finite())
                .group_by("unique_id").agg(pl.col("y").first()).iter_rows())
    published = set(result["unique_id"].to_list()) - set(flat) - in_levels
    stood_in = set(scale.filter(pl.col("level_scaled"))["unique_id"].to_list())
    widthless = published & set(scale.filter(pl.col("scale").is_null())["unique_id"].to_list())
    result = _whole_levels(result, widthless, flat)
    result = result.select("unique_id", "ds", "step", "model", "y_hat", *INTERVAL_COLUMNS).sort("unique_id", "step")
    bounded = [c for c in INTERVAL_COLUMNS if c in result.columns]
    # the series `reach_one_change` stretched whose intervals are published: what `short_note` says
    reached = {u: few[u] for u in result.filter(pl.col("unique_id").is_in(change["unique_id"].implode())
                                                & pl.any_horizontal(pl.col(c).is_not_null() for c in bounded))
               ["unique_id"].unique().to_list()} if bounded and change.height else {}
    level_scaled = {**_level_scaled(td, m, published),
                    **{u: f"{k} observations (one change)" for u, k in few.items() if u in published and u in stood_in}}
    return RecipeForecast(frame=result, fallbacks=fallbacks.sort("unique_id"), recipe=recipe, constant=flat,
                          short=short, short_history=short_history, reached=reached,
                          level_scaled={u: why for u, why in level_scaled.items() if u not in widthless},
                          unscaled={u: why for u, why in level_scaled.items() if u in widthless})


def _level_scaled(td: TrainingData, season_length: int, ids: set[str]) -> dict[str, str]:
    """The series of `ids` whose MASE scale is undefined or zero (`conformal.series_scale` scales them by their
    mean |y|), with why: '1 observation' or 'repeats itself exactly every season'."""
    from flowcast.evaluation.metrics import mase_scale

    raw = mase_scale(td.frame.select("unique_id", "ds", "y"), season_length, freq=td.meta.freq,
                     tz=td.meta.tz)  # what series_scale starts from
    odd = raw.filter(pl.col("unique_id").is_in(list(ids)) & (pl.col("scale").is_null() | (pl.col("scale") <= 0)))
    n_obs = dict(td.frame.filter(pl.col("y").is_finite()).group_by("unique_id").len().iter_rows())
    return {str(u): (f"{n_obs.get(u, 0)} observation" if n_obs.get(u, 0) < 2 else "repeats itself exactly every season")
            for u in odd["unique_id"].to_list()}


def _true_method(part: pl.DataFrame, name: str, td: TrainingData) -> pl.DataFrame:
    """Rows of statistical model `name` named by the method that made them (see
    `statistical_models_used`)."""
    used = statistical_models_used(name, td)
    if used is None:
        return part
    return part.join(used.select("unique_id", pl.col("model").alias("__used")), on="unique_id", how="left").with_columns(
        pl.coalesce("__used", "model").alias("model")).drop("__used")


def forecast_with(source: Any, td: TrainingData, horizon: int | None = None, **kw: Any) -> pl.DataFrame:
    """unique_id, ds, step, model, y_hat, y_hat_lo80, y_hat_hi80, y_hat_lo95, y_hat_hi95 for every
    series of `td`, from a model of any kind (`forecast_detailed` without the fallback report)."""
    return forecast_detailed(source, td, horizon, **kw).frame


def _subset(td: TrainingData, ids: list[str]) -> TrainingData:
    """The series `ids` of `td` (statistical models need only the frame)."""
    from dataclasses import replace

    keep = pl.col("unique_id").is_in(ids)
    return replace(
        td, frame=td.frame.filter(keep), scalers=td.scalers.filter(keep),
        static=None if td.static is None else td.static.filter(keep),
        future_exog=None if td.future_exog is None else td.future_exog.filter(keep),
    )


__all__ = ["INTERVAL_LEVELS", "KINDS", "SHORT_HISTORY", "Recipe", "RecipeForecast", "combine", "describe_recipe", "forecast_detailed",
           "forecast_with", "kind_of", "last_resort_recipe", "load_recipe", "statistical_forecast", "statistical_models"]
