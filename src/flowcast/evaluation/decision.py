"""What a retrain publishes and promotes, and why: pure functions over the leaderboard.

`decide` reads the candidate board (`selection.candidate_board`): the champion is the best
eligible row on the configured metric, whatever its kind. Against the production model:

- no production model: the champion is promoted (action `first`);
- production is the best row: it stays (`keep`);
- the champion beats production by the margin, on the pairs production was scored on: it
  replaces production (`replace`);
- the champion is better by less than the margin: production stays (`keep`), unless
  production is worse than the best statistical model on those pairs: then it is replaced by
  the champion all the same (`demote`), so the published forecast is never worse on the
  backtest than the best baseline;
- production could not be scored (its forecasts are not finite, it cannot forecast this data):
  it is replaced (`replace`).

When nothing can be scored (every series has a single observation: no backtest window exists),
`last_resort_decision` publishes the last resort (naive, the one model that forecasts from one
observation) without a leaderboard: promoted only when nothing is in production.

`order` lists the candidates to fall back on, best first, when the chosen one fails
`check_forecasts` (forecasts not finite, a series missing, bounds broken) before promotion.
The markdown says all of this in plain words for the Prefect UI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from flowcast.errors import FlowcastError, StorageError, TrainingStoppedError
from flowcast.evaluation.candidates import PRODUCTION, too_many_failures
from flowcast.evaluation.metrics import metric_name
from flowcast.figures import score_or_na, score_pair


@dataclass
class Decision:
    metric: str
    margin: float
    action: str  # first | keep | replace | demote | publish (without promoting) | none
    champion: str | None  # best eligible row of the board
    publish: str | None  # the candidate to publish: the champion, or `production` when it stays
    order: list[str] = field(default_factory=list)  # candidates to try, in order, if a check fails
    best_baseline: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    incumbent_version: str | None = None
    incumbent_scoring: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.action in ("first", "replace", "demote")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_fmt = score_or_na  # a score as every figure is written; 'n/a' for none or not finite


# why a run does not promote: a backfill's retrain, or a run whose as_of is before the production model's (its
# model saw that as_of's future: `pipeline.retrain`; such a `flowcast run --as-of` was told '(a backfill of a past
# date)', newuser53)
NOT_PROMOTED = "a backfill's date, or an as_of before the production model's"


def _fmt_pair(a: float | None, b: float | None) -> tuple[str, str]:
    """Two scores a sentence compares ('0.86834 against 0.86831'), with the digits that tell them apart
    (`figures.score_pair`): `_fmt` wrote both '0.8683' ('0.8683 against 0.8683'); 'n/a' for either not finite."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return _fmt(a), _fmt(b)
    return score_pair(float(a), float(b))


def _pct(better: float, worse: float) -> str:
    """How much better `better` is than `worse`, as a share of `worse` to one decimal; 'less than 0.1%' where two
    scores that differ round to none ('0.86831 against 0.86834, 0.0% better'); 'n/a' where `worse` is no yardstick."""
    if not (worse and math.isfinite(worse) and worse > 0):
        return "n/a"
    share = (worse - better) / worse
    return "less than 0.1%" if share and abs(share) < 0.0005 else f"{share:.1%}"


def decide(
    board: pl.DataFrame,
    *,
    metric: str,
    margin: float,
    baselines: list[str],
    incumbent_version: str | None = None,
    incumbent_scoring: str | None = None,
    paired: dict[str, float | None] | None = None,
    promote: bool = True,
) -> Decision:
    """The decision (see the module). `baselines`: the statistical models the champion is measured
    against; `paired`: every candidate's score on the pairs production was scored on (None: the
    board's scores)."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    rows = {r["model"]: r for r in board.to_dicts()}
    scores = {m: (None if r.get(metric) is None else float(r[metric])) for m, r in rows.items()}
    ranked = [r["model"] for r in sorted((r for r in rows.values() if r.get("rank") is not None),
                                         key=lambda r: r["rank"])]
    name = metric_name(metric)
    d = Decision(metric=metric, margin=margin, action="none", champion=None, publish=None, scores=scores,
                 incumbent_version=incumbent_version, incumbent_scoring=incumbent_scoring)
    bl = [b for b in ranked if b in baselines]
    d.best_baseline = bl[0] if bl else None
    if not ranked:
        d.reasons.append("No candidate produced finite forecasts on the backtest, so nothing can be published.")
        return d
    champ = ranked[0]
    d.champion = champ
    d.order = list(ranked)
    on_board = incumbent_version is not None and PRODUCTION in rows
    inc_ok = on_board and PRODUCTION in ranked
    if not promote:
        d.action, d.publish = "publish", champ
        d.reasons.append(f"This run leaves production alone ({NOT_PROMOTED}): the best candidate, {champ}, "
                         "publishes and is noted as the dataset's last champion.")
        return d
    if incumbent_version is None:
        d.action, d.publish = "first", champ
        d.reasons.append(f"There was no model in production, so the best candidate, {champ}, is promoted.")
        return d
    if not inc_ok:
        why = (rows.get(PRODUCTION) or {}).get("note") or incumbent_scoring or "it could not be scored on this data"
        d.action, d.publish = "replace", champ
        d.order = [m for m in ranked if m != PRODUCTION]
        d.reasons.append(f"The production model {incumbent_version} is replaced by {champ}: {why}.")
        return d
    if champ == PRODUCTION:
        d.action, d.publish = "keep", PRODUCTION
        d.reasons.append(f"The production model {incumbent_version} is still the best candidate: it stays.")
        return d
    pair = paired or scores
    ch, inc = pair.get(champ), pair.get(PRODUCTION)
    bb = pair.get(d.best_baseline) if d.best_baseline else None
    same = "on the same windows" if paired is None else "on the windows production was scored on"
    if ch is not None and inc is not None and ch < inc * (1 - margin):
        d.action, d.publish = "replace", champ
        # when the winner cannot publish, the next one replaces production only if it would have on its own score;
        # else production publishes (a candidate the backtest scored worse than production is never promoted)
        replaces = [m for m in ranked if m != PRODUCTION
                    and (m == champ or ((v := pair.get(m)) is not None and v < inc * (1 - margin)))]
        d.order = [*replaces, PRODUCTION, *[m for m in ranked if m != PRODUCTION and m not in replaces]]
        ch_text, inc_text = _fmt_pair(ch, inc)
        d.reasons.append(f"{champ} replaces the production model {incumbent_version}: its {name} is {ch_text} against "
                         f"{inc_text} {same}, {_pct(ch, inc)} better"
                         + (f" (the margin asks for {margin:.1%})." if margin else "."))
    elif bb is not None and inc is not None and inc > bb:
        d.action, d.publish = "demote", champ
        d.order = list(ranked)  # production in its place: after those ranked above it, before the worse ones
        inc_text, bb_text = _fmt_pair(inc, bb)
        d.reasons.append(f"The production model {incumbent_version} fell behind the best statistical model, "
                         f"{d.best_baseline} ({name} {inc_text} against {bb_text} {same}): it is replaced by {champ}.")
    else:
        d.action, d.publish = "keep", PRODUCTION
        d.order = [PRODUCTION, *[m for m in ranked if m != PRODUCTION]]
        ch_text, inc_text = _fmt_pair(ch, inc)
        if ch is not None and inc is not None and ch >= inc:  # first on the board, not on production's windows
            # (equal scores read 'its MASE is 0.5 against 0.5, 0.0% worse')
            compared = (f"{ch_text}, equal to production's" if ch == inc else
                        f"{ch_text} against {inc_text}, {_pct(inc, ch)} worse")
            d.reasons.append(f"{champ} leads the leaderboard but is not better than the production model "
                             f"{incumbent_version} {same}: its {name} is {compared}, so production stays.")
        elif ch is None or inc is None:  # (it said 'better ... by 100.0% only (MASE n/a against 0.55 ...)')
            lacks = "it" if ch is None else f"the production model {incumbent_version}"
            d.reasons.append(f"{champ} leads the leaderboard, but {lacks} has no {name} {same} ({name} {ch_text} "
                             f"against {inc_text}): the two cannot be compared, so production stays.")
        else:
            d.reasons.append(f"{champ} is better than the production model {incumbent_version} by "
                             f"{_pct(ch, inc)} only ({name} {ch_text} against {inc_text} {same}); the "
                             f"margin asks for {margin:.1%}, so production stays.")
    return d


def last_resort_decision(
    n_series: int,
    *,
    last_resort: str,
    metric: str,
    margin: float,
    incumbent_version: str | None = None,
    promote: bool = True,
) -> Decision:
    """The decision when no candidate can be scored: each of the `n_series` series has a single
    observation, so there is no backtest window, no leaderboard and nothing to calibrate intervals
    on. `last_resort` (naive: the one model that forecasts from one observation) publishes without
    a score. It is promoted only when nothing is in production (action `first`); an unscored
    candidate never replaces a production model, which stays while naive's forecasts are published
    for this run only (action `publish`, as when `promote` is off)."""
    d = Decision(metric=metric, margin=margin, action="publish", champion=last_resort, publish=last_resort,
                 order=[last_resort], incumbent_version=incumbent_version)
    d.reasons.append(f"Each of the {n_series} series has a single observation: there is nothing to backtest, so no "
                     f"candidate is scored and there is no leaderboard; {last_resort}, the only model that forecasts "
                     f"from one observation, publishes without a backtest.")
    if not promote:
        d.reasons.append(f"This run leaves production alone ({NOT_PROMOTED}): it is noted as the dataset's "
                         "last champion.")
    elif incumbent_version is None:
        d.action = "first"
        d.reasons.append(f"There was no model in production, so {last_resort} is promoted.")
    else:
        d.reasons.append(f"The production model {incumbent_version} stays: a candidate without a backtest score does "
                         f"not replace it; {last_resort}'s forecasts are published for this run only.")
    return d


@dataclass
class ForecastCheck:
    ok: bool
    problems: list[str]
    fallback_series: int = 0

    def sentence(self) -> str:
        return "; ".join(self.problems) if self.problems else "every series forecast, finite, within the bounds"


def check_forecasts(
    frame: pl.DataFrame,
    *,
    expected_ids: list[str],
    horizon: int,
    bounds: tuple[float | None, float | None] = (None, None),
    fallbacks: pl.DataFrame | None = None,
    max_fallback_share: float = 0.2,
    require_intervals: bool = True,
    no_interval: Collection[str] = (),
    constant: Collection[str] = (),
) -> ForecastCheck:
    """Are these forecasts fit to publish? Every expected series has `horizon` rows, every value
    (y_hat and the interval bounds) is finite and within the declared bounds (interval bounds may
    be missing only with `require_intervals=False`: a model registered before intervals; or in every
    row of a level the calibration had too few points for, which is published without that level:
    `conformal.calibration_notes`; or in the rows of the series of `no_interval`, which have no typical change
    to scale the widths by and none to borrow: `RecipeForecast.unscaled`; a level left out for every series but
    those of `constant`, a constant history's zero width at every level: `RecipeForecast.constant`), and the
    series whose model failed (not finite, out of bounds: forecast by the fallback instead) are not
    too many (`candidates.too_many_failures`). Series the model does not forecast by design are not
    failures."""
    problems: list[str] = []
    counts = frame.group_by("unique_id").len()
    missing = sorted(set(expected_ids) - set(counts["unique_id"].to_list()))
    if missing:
        problems.append(f"{len(missing)} series without a forecast, e.g. {missing[:5]}")
    short = counts.filter(pl.col("len") != horizon)
    if short.height:
        problems.append(f"{short.height} series without exactly {horizon} forecast steps, e.g. {short.head(5).rows()}")
    value_cols = [c for c in frame.columns if c == "y_hat" or c.startswith(("y_hat_lo", "y_hat_hi"))]
    widthless = pl.col("unique_id").is_in(list(no_interval))  # rows without intervals by design
    bounded = frame.filter(~widthless)
    # a level left out whole: null in every row of a series that moves (a constant series keeps its zero width)
    moving = bounded.filter(~pl.col("unique_id").is_in(list(constant)))
    moving = moving if moving.height else bounded
    for c in value_cols:
        uncalibrated = c != "y_hat" and moving[c].null_count() == moving.height
        if c == "y_hat":
            empty = pl.col(c).is_null()
        elif require_intervals and not uncalibrated:
            empty = pl.col(c).is_null() & ~widthless
        else:
            empty = pl.lit(False)
        bad = frame.filter(empty | ~pl.col(c).is_finite().fill_null(True))
        if bad.height:
            problems.append(f"{bad.height} {c} values not finite, e.g. series {bad['unique_id'].unique().sort().head(3).to_list()}")
    y_min, y_max = bounds
    if y_min is not None and frame.filter(pl.col("y_hat") < y_min).height:
        problems.append(f"forecasts below the declared y_min={y_min:g}")
    if y_max is not None and frame.filter(pl.col("y_hat") > y_max).height:
        problems.append(f"forecasts above the declared y_max={y_max:g}")
    for c in (c for c in value_cols if c != "y_hat"):  # interval bounds too (apply_intervals clips them)
        broken = [(f"below the declared y_min={y_min:g}", pl.col(c) < y_min)] if y_min is not None else []
        broken += [(f"above the declared y_max={y_max:g}", pl.col(c) > y_max)] if y_max is not None else []
        for said, expr in broken:
            bad = frame.filter(expr)
            if bad.height:
                problems.append(f"{bad.height} {c} values {said}, e.g. series "
                                f"{bad['unique_id'].unique().sort().head(3).to_list()}")
    failed = 0
    if fallbacks is not None and fallbacks.height:
        failed = fallbacks.filter(~pl.col("reason").str.starts_with("no forecast")).height
        n = max(len(expected_ids), 1)
        if too_many_failures(failed, n, max_fallback_share):
            problems.append(f"the model failed on {failed} of {n} series (forecasts not finite or out of bounds, "
                            f"more than {max_fallback_share:.0%}): its fallback would forecast them")
    return ForecastCheck(ok=not problems, problems=problems, fallback_series=failed)


def first_publishable(
    order: list[str],
    attempt: Callable[[str], tuple[Any, Any]],
    check: Callable[[Any], ForecastCheck],
) -> tuple[str | None, Any, Any, list[str]]:
    """Walk `order` (best first): `attempt(name)` builds the candidate and forecasts with it
    (model, forecast), `check(forecast)` says whether those forecasts may be published. Returns
    (name, model, forecast, notes) of the first that passes, or (None, None, None, notes): a
    candidate that fails (a NaN refit, an error) never gets further than its note. A file that
    cannot be written (a full disk: StorageError) or a training process stopped from outside (a
    signal: TrainingStoppedError) is no fault of the candidate: it is raised, so that the run fails
    instead of registering and promoting the next, worse one."""
    notes: list[str] = []
    for name in order:
        try:
            model, fc = attempt(name)
        except (StorageError, TrainingStoppedError):
            raise
        except (FlowcastError, ValueError) as exc:
            notes.append(f"{name} was not published: it could not forecast ({exc}).")
            continue
        result = check(fc)
        if result.ok:
            return name, model, fc, notes
        notes.append(f"{name} was not published: its forecasts failed the checks ({result.sentence()}).")
    return None, None, None, notes


def published_nothing_text(by: str | None) -> str:
    """'This run published nothing: this as_of was published already, by flow run <by>' (`by` '' or None: 'by
    another run'): how every artifact of a run whose as_of held its very forecasts, published by another run, starts
    (its decision's heading, its leaderboard's mark and description: ops53)."""
    return f"This run published nothing: this as_of was published already, by {f'flow run {by}' if by else 'another run'}"


# the line under a decision written before its publish ('To publish'): what the key's next version says
TO_PUBLISH_LINE = ("Its forecasts are not published yet: this run publishes them next, and the next version of this "
                   "key says what came of it ('Published', or why not).")


def decision_markdown(
    d: Decision,
    board: pl.DataFrame,
    *,
    published: str | None,
    published_version: str | None,
    descriptions: dict[str, str],
    notes: list[str] = (),  # type: ignore[assignment]
    n_windows: int | None = None,
    horizon: int | None = None,
    landed: bool = True,
    published_by: str | None = None,
) -> str:
    """The decision in plain words: what publishes and why, the production model's fate, and how
    the intervals did on windows they were not calibrated on. `landed` False: written before the publish (the
    run's first version of its decision), headed 'To publish' with a line saying the key's next version says what
    came of it; a run killed before its publish left a decision headed 'Published' as the key's newest (followup21).
    `published_by` (the run that published, '' where unknown): the as_of was published already, with the very
    forecasts this run decided on, so this run published nothing: its heading says so, and by whom (ops trial 52: it
    read 'Published: the production model', true of the as_of, not of this run)."""
    name = metric_name(d.metric)
    rows = {r["model"]: r for r in board.to_dicts()}
    shown = "the production model" if published == PRODUCTION else (published or "nothing")
    version = f" ({published_version})" if published_version else ""
    if published_by is not None:
        lines = [f"### {published_nothing_text(published_by)}, with **{shown}**{version}"]
    else:
        head = "Published" if landed or not published else "To publish"
        lines = [f"### {head}: **{shown}**{version}"]
    lines.append("")
    if not landed and published:
        lines += [TO_PUBLISH_LINE, ""]
    if published and published in rows:
        r = rows[published]
        score = r.get(d.metric)
        where = (f" over {n_windows} backtest window{'s' if n_windows != 1 else ''} of {horizon} periods"
                 if n_windows and horizon else "")  # it said 'window(s)' of a count it knew (ui25)
        n_cands = sum(1 for x in rows.values() if x.get("rank") is not None)
        # the score and the best statistical model's, which the next sentence compares it with, to the digits that
        # tell them apart ('0.8683 ... better than the best statistical model, theta (0.8683)')
        bb = d.scores.get(d.best_baseline) if d.best_baseline and published != d.best_baseline else None
        score_shown, bb_text = _fmt_pair(score, bb) if bb is not None else (_fmt(score), "")
        if r.get("rank") == 1:
            lines.append(f"It has the lowest {name} of the {n_cands} eligible candidates{where}: {score_shown}.")
        else:
            lines.append(f"It ranks {r.get('rank')} of {n_cands} on {name}{where} ({score_shown}).")
        if score is not None and bb is not None:
            rel = "better than" if score < bb else ("as good as" if score == bb else "worse than")
            lines.append(f"That is {_pct(score, bb) if score < bb else ''} {rel} the best statistical model, "
                         f"{d.best_baseline} ({bb_text}).".replace("  ", " "))
        if descriptions.get(published):
            # not 'What it is: statistical: theta.' (two colons: the description is 'kind: members')
            lines.append(f"It is {descriptions[published]}.")
        c80, c95 = r.get("coverage80"), r.get("coverage95")
        if c80 is not None and c95 is not None:
            lines.append(f"Its 80% and 95% intervals covered {c80:.0%} and {c95:.0%} of the actual values on backtest "
                         "windows that their calibration did not see.")
    lines.append("")
    lines += [f"- {r}" for r in d.reasons]
    if d.incumbent_scoring:
        fair = PRODUCTION in rows and rows[PRODUCTION].get("rank") is not None
        lines.append(f"- How the production model was scored: {d.incumbent_scoring}." if fair
                     else f"- The production model was not scored: {d.incumbent_scoring}.")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines)
