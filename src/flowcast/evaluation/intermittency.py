"""Intermittent (sparse) demand: is a dataset mostly zeros with occasional positive counts, and what a run
does about it. Pure functions; the retrain and forecast flows call them once per run on the training data.

The rule is Syntetos & Boylan's (2005) classification, as statsforecast and its users apply it: a series'
average inter-demand interval (ADI: its observed periods over its periods with a demand, y > 0) above
1.32 makes it intermittent (or lumpy), i.e. more than 1 - 1/1.32 = 24.2% of its observed values are 0.
A dataset is classed intermittent when MORE THAN HALF of its series are, and no observed value is
negative (a demand, a count). One champion forecasts every series, so models built for zeros matter
when most series have them; a net flow or a temperature is never classed.

Classed intermittent, a run
- adds the intermittent models (`flowcast.models.stats.INTERMITTENT_MODELS`: croston, tsb, adida) to
  the leaderboard's statistical candidates, unless `evaluation.statistical` was given explicitly
  (flowcast.toml, FLOWCAST_EVALUATION__STATISTICAL, the run's overrides): a user's list is kept as is;
- ranks its candidates on RMSSE (`flowcast.evaluation.metrics`: squared errors scaled by the naive forecast's
  in-sample ones, the M5 competition's metric) instead of MASE, unless `evaluation.metric` was given explicitly:
  MASE, a scaled absolute error, is lowest for the median forecast, and the median of mostly-zero demand is 0;
- cuts its forecasts and intervals at 0 when the source declares no `y_min`: a series of counts that
  is mostly exact zeros and never negative is a count (where a history that merely happens to be
  non-negative is not taken for one: `recipes.below_zero_note`);
- says each, with the figures, in its log and its notes (the decision artifact and the summary);
- records the decision with every model it registers (its recipe's `intermittent`): `flowcast forecast`
  cuts that model's forecasts at 0 as its retrain did (`recorded_bounds`), where classifying its own, newer
  data could flip the bound (a part whose demand picked up, half the series just at the threshold) under a
  model selected and calibrated with the other one. A model registered before the decision was recorded has
  none: this run's data decides, as it did.
Data not classed intermittent is untouched: same candidates, same bounds, no note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from flowcast.mdtext import id_text

if TYPE_CHECKING:
    from flowcast.config import Settings

ADI_THRESHOLD = 1.32  # Syntetos & Boylan's cut-off between smooth/erratic and intermittent/lumpy demand


@dataclass(frozen=True)
class Intermittency:
    """The figures the classification rests on, over the series with at least one observed value."""

    n_series: int
    n_sparse: int  # series whose ADI is above ADI_THRESHOLD (a series without any demand counts: ADI infinite)
    zero_share: float  # zeros among every observed value
    median_adi: float  # inf when most series have no demand at all
    negative: bool  # some observed value is below 0

    @property
    def intermittent(self) -> bool:
        return not self.negative and 2 * self.n_sparse > self.n_series

    def describe(self) -> str:
        """One sentence: the classification and its figures."""
        verdict = "classed intermittent" if self.intermittent else "not classed intermittent"
        adi = "inf" if self.median_adi == float("inf") else f"{self.median_adi:.2f}"
        neg = "; some values are negative" if self.negative else "; no value is negative"
        return (f"The data was {verdict}: {self.n_sparse} of {self.n_series} series have an average interval "
                f"between demands (ADI) above {ADI_THRESHOLD} (median ADI {adi}; {self.zero_share:.1%} of the "
                f"observed values are 0{neg}).")


def classify(frame: pl.DataFrame) -> Intermittency:
    """The intermittency figures of a training frame (unique_id, y; null and NaN y are not observed)."""
    per = (frame.select("unique_id", pl.col("y").cast(pl.Float64))
           .filter(pl.col("y").is_not_null() & pl.col("y").is_finite())
           .group_by("unique_id")
           .agg(pl.len().alias("obs"), (pl.col("y") > 0).sum().alias("demands"), (pl.col("y") == 0).sum().alias("zeros"),
                (pl.col("y") < 0).any().alias("negative")))
    if not per.height:
        return Intermittency(n_series=0, n_sparse=0, zero_share=0.0, median_adi=float("nan"), negative=False)
    adi = per.select(pl.when(pl.col("demands") > 0).then(pl.col("obs") / pl.col("demands"))
                     .otherwise(float("inf")).alias("adi"))["adi"]
    return Intermittency(
        n_series=per.height,
        n_sparse=int((adi > ADI_THRESHOLD).sum()),
        zero_share=int(per["zeros"].sum()) / int(per["obs"].sum()),
        median_adi=float(adi.sort()[(per.height - 1) // 2]),  # the lower median: finite while half have demands
        negative=bool(per["negative"].any()),
    )


def intermittent_settings(settings: Settings, info: Intermittency) -> tuple[Settings, list[str]]:
    """(`settings` with the intermittent models added to `evaluation.statistical` and `evaluation.metric` set to
    rmsse when the data is classed intermittent and they were not given explicitly, the sentences that say what
    was done). Data not classed intermittent: `settings` unchanged and nothing to say."""
    if not info.intermittent:
        return settings, []
    out, models = _with_models(settings, info)
    out, ranked = _ranked_on(out)
    return out, [" ".join(part for part in (info.describe(), models, ranked) if part)]


def _with_models(settings: Settings, info: Intermittency) -> tuple[Settings, str]:
    from flowcast.config import with_overrides
    from flowcast.models.stats import INTERMITTENT_MODELS

    have = list(settings.evaluation.statistical)
    missing = [m for m in INTERMITTENT_MODELS if m not in have]
    if "statistical" in settings._given.get("evaluation", frozenset()):
        add = f": {', '.join(missing)} could be added to it." if missing else "."
        return settings, (f"The statistical candidates were given (evaluation.statistical = {', '.join(have)}) and are "
                          f"kept as they are{add}")
    if not missing:
        return settings, ""
    out = with_overrides(settings, evaluation={"statistical": [*have, *missing]})
    return out, f"Its statistical candidates include the intermittent-demand models {', '.join(missing)}."


METRIC = "rmsse"  # what data classed intermittent is ranked on where evaluation.metric is not given


def _ranked_on(settings: Settings) -> tuple[Settings, str]:
    """(`settings` ranking on RMSSE unless evaluation.metric was given, the sentence that says which and why)."""
    from flowcast.config import with_overrides
    from flowcast.evaluation.metrics import metric_name

    given = settings.evaluation.metric
    why = ("MASE, a scaled absolute error, rewards forecasting 0 (the median of mostly-zero demand) where RMSSE, "
           "a scaled squared error (the M5 competition's), rewards the mean demand rate")
    if "metric" in settings._given.get("evaluation", frozenset()):
        if given == METRIC:
            return settings, "The candidates are ranked on RMSSE (evaluation.metric = \"rmsse\")."
        return settings, (f"The candidates are ranked on {metric_name(given)} as evaluation.metric = \"{given}\" "
                          f"says (\"rmsse\" suits intermittent demand: {why}).")
    out = with_overrides(settings, evaluation={"metric": METRIC})
    return out, (f"The candidates are ranked on RMSSE instead of {metric_name(given)} (evaluation.metric was not "
                 f"given): {why}.")


def count_bounds(bounds: tuple[float | None, float | None],
                 info: Intermittency) -> tuple[tuple[float | None, float | None], str | None]:
    """(the bounds forecasts are cut at, a sentence when they were changed): data classed intermittent
    without a declared y_min is cut at 0 (it is classed so only when no value is negative)."""
    return _at_zero(bounds, info.intermittent, "")


RECIPE_KEY = "intermittent"  # the retrain's classification, recorded in each registered model's recipe


def recorded_bounds(bounds: tuple[float | None, float | None], recorded: object,
                    frame: pl.DataFrame) -> tuple[tuple[float | None, float | None], str | None]:
    """`count_bounds` for a forecast with a registered model: `recorded` is its retrain's classification (its
    recipe's RECIPE_KEY); a model registered before it was recorded (None) has this run's data (`frame`) classed."""
    if not isinstance(recorded, bool):
        return count_bounds(bounds, classify(frame))
    if recorded and bounds[0] is None:  # a count never goes below 0: data that now does is no count
        negative = (frame.filter(pl.col("y").cast(pl.Float64) < 0).get_column("unique_id").unique()
                    .sort().to_list())
        if negative:
            return bounds, (f"The retrain that trained this model classed the data intermittent counts (cut at 0), "
                            f"but {len(negative)} series now hold negative values (e.g. {', '.join(map(id_text, negative[:5]))}): "
                            "its forecasts are not cut at 0; retrain to class the data again, or declare y_min "
                            "(--y-min) to keep a bound.")
    return _at_zero(bounds, recorded, " (as the retrain that trained this model classed them)")


def _at_zero(bounds: tuple[float | None, float | None], intermittent: bool,
             whose: str) -> tuple[tuple[float | None, float | None], str | None]:
    """The bounds with y_min 0 and the sentence saying so, for intermittent counts without a declared y_min."""
    y_min, y_max = bounds
    if y_min is not None or not intermittent:
        return bounds, None
    return (0.0, y_max), (f"Intermittent counts without a declared y_min{whose}: forecasts and intervals are cut at 0 "
                          "(declare y_min in the source, --y-min, to set another bound).")
