"""The decision: the best row wins whatever its kind, production is kept or replaced by the rules,
the published forecast is never worse than the best baseline, forecasts are checked first."""

from __future__ import annotations

import math

import polars as pl
import pytest

from flowcast.evaluation.decision import (
    check_forecasts,
    decide,
    decision_markdown,
    first_publishable,
    last_resort_decision,
)
from flowcast.evaluation.selection import candidate_board

BASE = ["naive", "seasonal_naive", "theta", "damped"]


def _board(scores: dict[str, float], kinds: dict[str, str] | None = None, eligible: dict[str, bool] | None = None,
           note: dict[str, str] | None = None) -> pl.DataFrame:
    rows = []
    for m, s in scores.items():
        ok = (eligible or {}).get(m, True) and math.isfinite(s)
        rows.append({"model": m, "kind": (kinds or {}).get(m, "statistical" if m in BASE else "network"),
                     "mase": s, "smape": s * 10, "coverage80": 0.8, "coverage95": 0.95, "finite": ok,
                     "note": (note or {}).get(m, "")})
    ranked = sorted((r for r in rows if r["finite"]), key=lambda r: (r["mase"], r["model"] != "production", r["model"]))
    rank = {r["model"]: i + 1 for i, r in enumerate(ranked)}
    return pl.DataFrame([{**r, "rank": rank.get(r["model"])} for r in rows])


def test_the_best_row_wins_whatever_its_kind():
    """us_employment today: damped leads the board and must publish, not the network."""
    board = _board({"damped": 0.583, "theta": 0.647, "rnn": 0.690, "seasonal_naive": 0.803},
                   kinds={"rnn": "network"})
    d = decide(board, metric="mase", margin=0.0, baselines=BASE)
    assert (d.action, d.champion, d.publish, d.best_baseline) == ("first", "damped", "damped", "damped")
    assert d.order == ["damped", "theta", "rnn", "seasonal_naive"]
    board = _board({"hybrid": 0.55, "damped": 0.583, "rnn": 0.69}, kinds={"hybrid": "hybrid"})
    d = decide(board, metric="mase", margin=0.0, baselines=BASE)
    assert d.publish == "hybrid" and d.best_baseline == "damped"


@pytest.mark.parametrize("scores, margin, action, publish, words", [
    ({"hybrid": 0.5, "production": 0.6, "damped": 0.7}, 0.0, "replace", "hybrid", "hybrid replaces the production"),
    ({"hybrid": 0.59, "production": 0.6, "damped": 0.7}, 0.05, "keep", "production", "production stays"),
    ({"hybrid": 0.5, "damped": 0.55, "production": 0.6}, 0.5, "demote", "hybrid", "fell behind the best statistical"),
    ({"damped": 0.6, "production": 0.6}, 0.0, "keep", "production", "still the best candidate"),  # a tie keeps it
    ({"production": 0.4, "hybrid": 0.5}, 0.0, "keep", "production", "still the best candidate"),
])
def test_production_is_kept_or_replaced(scores, margin, action, publish, words):
    d = decide(_board(scores), metric="mase", margin=margin, baselines=BASE, incumbent_version="gru-v3",
               incumbent_scoring="its recipe refit")
    assert (d.action, d.publish) == (action, publish)
    assert any(words in r for r in d.reasons), d.reasons
    assert d.promote is (action in ("replace", "demote"))
    if publish == "production":
        assert d.order[0] == "production"
    else:  # production stays a fallback: if the winner cannot publish, nothing worse replaces it
        assert d.order[0] == publish and "production" in d.order


def test_production_that_cannot_be_scored_is_replaced_and_the_reason_given():
    board = _board({"damped": 0.6, "production": math.nan}, note={"production": "its forecasts are not finite"})
    d = decide(board, metric="mase", margin=0.1, baselines=BASE, incumbent_version="gru-v3")
    assert (d.action, d.publish) == ("replace", "damped")
    assert "its forecasts are not finite" in d.reasons[0]
    d = decide(_board({"damped": 0.6}), metric="mase", margin=0.0, baselines=BASE, incumbent_version="gru-v3",
               incumbent_scoring="it could not be scored: no backtest window lies after its training data")
    assert d.action == "replace" and "no backtest window lies after" in d.reasons[0]


def test_frozen_production_is_compared_on_its_own_windows():
    board = _board({"hybrid": 0.5, "production": 0.55, "damped": 0.7})
    # on the windows production was scored on, hybrid is worse: production stays
    d = decide(board, metric="mase", margin=0.0, baselines=BASE, incumbent_version="gru-v3",
               paired={"hybrid": 0.58, "production": 0.55, "damped": 0.7})
    assert d.action == "keep" and "on the windows production was scored on" in d.reasons[0]
    # regression: it said 'hybrid is better than the production model gru-v3 by -5.2% only'
    assert d.reasons[0] == ("hybrid leads the leaderboard but is not better than the production model gru-v3 on the "
                            "windows production was scored on: its MASE is 0.58 against 0.55, 5.2% worse, so "
                            "production stays."), d.reasons[0]


def test_a_champion_as_good_as_production_on_its_windows_is_said_equal():
    """Regression (srcB47): equal scores read 'its MASE is 0.5 against 0.5, 0.0% worse, so production stays'."""
    d = decide(_board({"hybrid": 0.5, "production": 0.55, "damped": 0.7}), metric="mase", margin=0.0, baselines=BASE,
               incumbent_version="gru-v3", paired={"hybrid": 0.55, "production": 0.55, "damped": 0.7})
    assert (d.action, d.publish) == ("keep", "production")
    assert d.reasons == [("hybrid leads the leaderboard but is not better than the production model gru-v3 on the "
                          "windows production was scored on: its MASE is 0.55, equal to production's, so production "
                          "stays.")], d.reasons


@pytest.mark.parametrize("scores, paired, margin, said", [
    ({"hybrid": 0.86831, "production": 0.86834, "damped": 0.9}, None, 0.0,
     "its MASE is 0.86831 against 0.86834 on the same windows, less than 0.1% better."),
    ({"hybrid": 0.86831, "production": 0.86834, "damped": 0.9}, None, 0.05,
     "by less than 0.1% only (MASE 0.86831 against 0.86834 on the same windows)"),
    ({"hybrid": 0.5, "production": 0.55, "damped": 0.9}, {"hybrid": 0.86834, "production": 0.86831}, 0.0,
     "its MASE is 0.86834 against 0.86831, less than 0.1% worse"),
    ({"hybrid": 0.5, "damped": 0.86831, "production": 0.86834}, None, 0.5,
     "damped (MASE 0.86834 against 0.86831 on the same windows)"),
    ({"hybrid": 0.5, "production": 0.6, "damped": 0.7}, None, 0.0,
     "its MASE is 0.5 against 0.6 on the same windows, 16.7% better."),  # scores apart at 4 digits keep them
])
def test_two_scores_a_reason_compares_read_apart(scores, paired, margin, said):
    """Two different scores are written with the digits that tell them apart: they read '0.8683 against 0.8683'."""
    d = decide(_board(scores), metric="mase", margin=margin, baselines=BASE, incumbent_version="gru-v3",
               paired=paired)
    assert said in d.reasons[0], d.reasons


@pytest.mark.parametrize(("paired", "said"), [
    ({"hybrid": None, "production": 0.55, "damped": 0.7},
     ("hybrid leads the leaderboard, but it has no MASE on the windows production was scored on (MASE n/a against "
      "0.55): the two cannot be compared, so production stays.")),
    ({"hybrid": 0.5, "production": None, "damped": 0.7},
     ("hybrid leads the leaderboard, but the production model gru-v3 has no MASE on the windows production was "
      "scored on (MASE 0.5 against n/a): the two cannot be compared, so production stays.")),
])
def test_a_champion_without_a_paired_score_is_not_called_better(paired, said):
    """Regression (revC46): a champion with no score on the windows production was scored on (`paired_scores`: None
    where it has no row there) was said 'better than the production model gru-v3 by 100.0% only (MASE n/a against
    0.55 ...)'; production stays, and the reason says the two cannot be compared."""
    d = decide(_board({"hybrid": 0.5, "production": 0.55, "damped": 0.7}), metric="mase", margin=0.05, baselines=BASE,
               incumbent_version="gru-v3", paired=paired)
    assert (d.action, d.publish) == ("keep", "production") and d.reasons == [said], d.reasons


def test_a_run_that_does_not_promote_publishes_its_best():
    d = decide(_board({"hybrid": 0.5, "damped": 0.6}), metric="mase", margin=0.0, baselines=BASE, promote=False)
    assert (d.action, d.publish, d.promote) == ("publish", "hybrid", False)
    # newuser53: `flowcast run --as-of` before the production model's as_of was told '(a backfill of a past date)'
    assert d.reasons[0].startswith("This run leaves production alone (a backfill's date, or an as_of before the "
                                   "production model's): the best candidate, hybrid, publishes"), d.reasons


def test_no_eligible_candidate_publishes_nothing():
    d = decide(_board({"rnn": math.nan}), metric="mase", margin=0.0, baselines=BASE)
    assert d.action == "none" and d.publish is None and d.order == []


@pytest.mark.parametrize("incumbent, promote, action", [
    (None, True, "first"),  # nothing in production: the last resort is promoted
    ("gru-v3", True, "publish"),  # an unscored candidate never replaces production: published for this run only
    (None, False, "publish"),  # a backfill leaves production alone
])
def test_nothing_to_score_publishes_the_last_resort_without_a_leaderboard(incumbent, promote, action):
    """Every series has a single observation: no backtest window, no score, no leaderboard; naive
    publishes, and the decision says why in plain words."""
    d = last_resort_decision(3, last_resort="naive", metric="mase", margin=0.05, incumbent_version=incumbent,
                             promote=promote)
    assert (d.action, d.champion, d.publish, d.order) == (action, "naive", "naive", ["naive"])
    assert d.promote is (action == "first") and d.scores == {} and d.best_baseline is None
    assert d.reasons[0] == ("Each of the 3 series has a single observation: there is nothing to backtest, so no "
                            "candidate is scored and there is no leaderboard; naive, the only model that forecasts "
                            "from one observation, publishes without a backtest.")
    if incumbent:
        assert "The production model gru-v3 stays: a candidate without a backtest score does not replace it" in d.reasons[1]
    md = decision_markdown(d, candidate_board([], "mase"), published="naive", published_version="naive-v1",
                           descriptions={}, notes=["naive's forecasts carry no 80/95% intervals"])
    assert md.startswith("### Published: **naive** (naive-v1)")
    assert "single observation: there is nothing to backtest" in md and "no 80/95% intervals" in md
    assert "lowest" not in md and "None" not in md


def _fc(ids, h, values=None, lo=None):
    rows = [{"unique_id": u, "step": s, "y_hat": 1.0 if values is None else values, "y_hat_lo80": 0.5 if lo is None
             else lo, "y_hat_hi80": 2.0} for u in ids for s in range(1, h + 1)]
    return pl.DataFrame(rows)


@pytest.mark.parametrize(("bounds", "lo", "problem"), [
    ((0.0, None), -0.5, "3 y_hat_lo80 values below the declared y_min=0, e.g. series ['a']"),
    ((None, 1.5), 0.5, "3 y_hat_hi80 values above the declared y_max=1.5, e.g. series ['a']"),
    ((0.0, 2.0), 0.0, None),  # on the bounds: fine
])
def test_check_forecasts_holds_the_intervals_to_the_declared_bounds(bounds, lo, problem):
    """Regression: the check said every value, 'y_hat and the interval bounds', is within the declared bounds,
    but only y_hat was held to them: an interval below y_min = 0 (a count) passed."""
    c = check_forecasts(_fc(["a"], 3, lo=lo), expected_ids=["a"], horizon=3, bounds=bounds)
    assert c.ok == (problem is None) and (problem is None or problem in c.sentence()), c.sentence()


def test_check_forecasts_passes_null_bounds_of_the_series_said_to_have_no_interval():
    """probe45: a series without a typical change to scale the widths by (`RecipeForecast.unscaled`) has no
    interval beside a constant series' zero-width one; its null bounds are no gap where it is said, only there."""
    fc = _fc(["a", "b"], 3).with_columns(pl.when(pl.col("unique_id") == "b").then(None).otherwise(pl.col(c)).alias(c)
                                         for c in ("y_hat_lo80", "y_hat_hi80"))
    assert check_forecasts(fc, expected_ids=["a", "b"], horizon=3, no_interval={"b"}).ok
    c = check_forecasts(fc, expected_ids=["a", "b"], horizon=3)
    assert not c.ok and "3 y_hat_lo80 values not finite, e.g. series ['b']" in c.sentence(), c.sentence()


def test_check_forecasts_says_what_is_wrong():
    assert check_forecasts(_fc(["a", "b"], 3), expected_ids=["a", "b"], horizon=3).ok
    c = check_forecasts(_fc(["a"], 3), expected_ids=["a", "b"], horizon=3)
    assert not c.ok and "1 series without a forecast, e.g. ['b']" in c.sentence()
    c = check_forecasts(_fc(["a", "b"], 3, values=float("nan")), expected_ids=["a", "b"], horizon=3)
    assert not c.ok and "6 y_hat values not finite" in c.sentence()
    c = check_forecasts(_fc(["a"], 3, values=-1.0, lo=-2.0), expected_ids=["a"], horizon=3, bounds=(0.0, None))
    assert not c.ok and "below the declared y_min=0" in c.sentence()
    fb = pl.DataFrame({"unique_id": ["a", "b", "c"], "model": ["naive"] * 3,
                       "reason": ["forecast not finite", "forecast below y_min=0",
                                  "no forecast (series not forecastable by this model)"]})
    ids = ["a", "b", "c", "d"]
    assert check_forecasts(_fc(ids, 3), expected_ids=ids, horizon=3, fallbacks=fb,
                           max_fallback_share=0.5).ok  # two failures in four series, one by design
    c = check_forecasts(_fc(ids, 3), expected_ids=ids, horizon=3, fallbacks=fb, max_fallback_share=0.2)
    assert not c.ok and "failed on 2 of 4 series" in c.sentence()
    # one bad series never decides a run; a single series with a broken forecast does
    assert check_forecasts(_fc(ids, 3), expected_ids=ids, horizon=3, fallbacks=fb.head(1), max_fallback_share=0.0).ok
    assert not check_forecasts(_fc(["a"], 3), expected_ids=["a"], horizon=3, fallbacks=fb.head(1)).ok


def test_first_publishable_skips_a_broken_winner():
    forecasts = {"gru": _fc(["a"], 2, values=float("nan")), "damped": _fc(["a"], 2)}

    def attempt(name):
        if name == "theta":
            raise ValueError("boom")
        return name, forecasts[name]

    name, _model, fc, notes = first_publishable(["gru", "theta", "damped"], attempt,
                                               lambda f: check_forecasts(f, expected_ids=["a"], horizon=2))
    assert name == "damped" and fc.equals(forecasts["damped"])
    assert notes[0].startswith("gru was not published: its forecasts failed the checks (2 y_hat values not finite")
    assert notes[1] == "theta was not published: it could not forecast (boom)."
    assert first_publishable(["gru"], attempt, lambda f: check_forecasts(f, expected_ids=["a"], horizon=2))[0] is None


@pytest.mark.parametrize(("n_windows", "said"), [(2, "over 2 backtest windows of 12 periods"),
                                                  (1, "over 1 backtest window of 12 periods")])
def test_the_decision_counts_its_windows_in_words(n_windows, said):
    """ui25: the decision read 'over 2 backtest window(s) of 12 periods' of a count it knew."""
    board = _board({"hybrid": 0.55, "damped": 0.583}, kinds={"hybrid": "hybrid"})
    d = decide(board, metric="mase", margin=0.0, baselines=BASE)
    md = decision_markdown(d, board, published="hybrid", published_version="hybrid-v1", descriptions={},
                           n_windows=n_windows, horizon=12)
    assert f"lowest MASE of the 2 eligible candidates {said}: 0.55" in md, md


def test_the_decision_in_plain_words():
    board = _board({"hybrid": 0.55, "damped": 0.583, "rnn": 0.69, "production": 0.6}, kinds={"hybrid": "hybrid"})
    d = decide(board, metric="mase", margin=0.0, baselines=BASE, incumbent_version="rnn-v2",
               incumbent_scoring="frozen weights, on the 1 backtest window after its training data ended")
    md = decision_markdown(d, board, published="hybrid", published_version="hybrid-v5",
                           descriptions={"hybrid": "hybrid: 0.5 x gru + 0.5 x damped"}, n_windows=2, horizon=12)
    assert "### Published: **hybrid** (hybrid-v5)" in md
    assert "\nIt is hybrid: 0.5 x gru + 0.5 x damped.\n" in md and "What it is" not in md  # it read two colons
    assert "lowest MASE of the 4 eligible candidates over 2 backtest windows of 12 periods: 0.55" in md
    assert "5.7% better than the best statistical model, damped (0.583)" in md
    assert "hybrid replaces the production model rnn-v2" in md and "frozen weights" in md
    assert "80% and 95% intervals covered 80% and 95%" in md
    assert "x (1 -" not in md and "None" not in md and "False" not in md


@pytest.mark.parametrize("scores, said", [
    ({"hybrid": 0.86831, "damped": 0.86834},
     ("candidates: 0.86831.", "less than 0.1% better than the best statistical model, damped (0.86834).")),
    ({"hybrid": 0.55, "damped": 0.583},
     ("candidates: 0.55.", "5.7% better than the best statistical model, damped (0.583).")),
])
def test_the_published_score_and_the_best_statistical_models_read_apart(scores, said):
    """It read 'the lowest MASE ...: 0.8683' and 'better than the best statistical model, damped (0.8683)'."""
    board = _board(scores, kinds={"hybrid": "hybrid"})
    d = decide(board, metric="mase", margin=0.0, baselines=BASE)
    md = decision_markdown(d, board, published="hybrid", published_version="hybrid-v1", descriptions={})
    assert all(s in md for s in said), md


def test_a_level_the_calibration_left_out_whole_is_fit_to_publish_a_missing_bound_is_not():
    """A backtest too small for a 95% interval publishes none (conformal.calibration_notes): its
    columns are null in every row, which must not reject every candidate of the run (it did: 'no
    candidate produced forecasts fit to publish'); a bound missing in some rows still does."""
    fc = _fc(["a", "b"], 3).with_columns(pl.lit(None, dtype=pl.Float64).alias("y_hat_lo95"),
                                         pl.lit(None, dtype=pl.Float64).alias("y_hat_hi95"))
    assert check_forecasts(fc, expected_ids=["a", "b"], horizon=3, require_intervals=True).ok
    some = fc.with_columns(pl.when(pl.col("unique_id") == "a").then(pl.col("y_hat_lo80")).alias("y_hat_lo80"))
    c = check_forecasts(some, expected_ids=["a", "b"], horizon=3, require_intervals=True)
    assert not c.ok and "3 y_hat_lo80 values not finite" in c.sentence()


@pytest.mark.parametrize("scores, margin, order", [
    # gru replaces production; were its forecasts unfit, theta (worse than production) was next and promoted
    ({"gru": 0.5, "production": 0.6, "theta": 0.7, "damped": 0.8}, 0.0, ["gru", "production", "theta", "damped"]),
    # lstm beats production but not by the margin: it does not replace it either
    ({"gru": 0.5, "lstm": 0.58, "production": 0.6, "damped": 0.8}, 0.1, ["gru", "production", "lstm", "damped"]),
    ({"gru": 0.5, "lstm": 0.52, "production": 0.6, "damped": 0.8}, 0.1, ["gru", "lstm", "production", "damped"]),
    # production fell behind damped: the candidates ranked above it come first, then production
    ({"hybrid": 0.5, "damped": 0.55, "production": 0.6, "theta": 0.9}, 0.5, ["hybrid", "damped", "production", "theta"]),
])
def test_when_the_winner_cannot_publish_no_candidate_worse_than_production_replaces_it(scores, margin, order):
    """Regression: a decision to replace production left production out of the fallback order, so when the winner's
    forecasts failed the checks (a NaN refit, too many fallbacks) the next candidate down the board was built,
    registered and promoted, even one the backtest scored worse than the production model: the published forecast
    was worse than one the pipeline had computed. Production now keeps its place: after the candidates that would
    replace it themselves, before the others."""
    d = decide(_board(scores), metric="mase", margin=margin, baselines=BASE, incumbent_version="gru-v3",
               incumbent_scoring="its recipe refit")
    assert d.action in ("replace", "demote") and d.order == order

    def attempt(name):
        if name == order[0]:
            raise ValueError("not finite after the refit")
        return name, pl.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "y_hat": [1.0, 2.0]})

    chosen, *_ = first_publishable(d.order, attempt, lambda f: check_forecasts(f, expected_ids=["a"], horizon=2))
    assert chosen == order[1]


@pytest.mark.parametrize("landed", [False, True])
def test_a_decision_written_before_its_publish_says_to_publish_not_published(landed):
    """followup21: a retrain writes its decision before its publish; headed 'Published', a run killed before the
    publish left a publish that never happened as the key's newest. Before the publish it is 'To publish' (and says
    the key's next version tells what came of it); once the publish landed, 'Published'."""
    d = last_resort_decision(3, last_resort="naive", metric="mase", margin=0.05, incumbent_version=None,
                             promote=True)
    md = decision_markdown(d, candidate_board([], "mase"), published="naive", published_version="naive-v1",
                           descriptions={}, landed=landed)
    head = "Published" if landed else "To publish"
    assert md.startswith(f"### {head}: **naive** (naive-v1)\n")
    assert ("Published:" in md) is landed and ("next version of this key says what came of it" in md) is not landed
    nothing = decision_markdown(d, candidate_board([], "mase"), published=None, published_version=None,
                                descriptions={}, landed=landed)
    assert nothing.startswith("### Published: **nothing**")  # a run that found nothing to publish says so


@pytest.mark.parametrize(("by", "who"), [("[r-1](/runs/flow-run/r-1)", "by flow run [r-1](/runs/flow-run/r-1)"),
                                          ("", "by another run")])
def test_a_decision_whose_as_of_another_run_published_says_this_run_published_nothing(by, who):
    """ops trial 52: a retrain whose as_of was published already (by a backfill, with the very forecasts it decided
    on) wrote its decision headed 'Published: the production model (damped-v1)': true of the as_of, not of the run,
    which published nothing. Its heading says so, and which run published (where known)."""
    d = last_resort_decision(3, last_resort="naive", metric="mase", margin=0.05, incumbent_version=None,
                             promote=True)
    md = decision_markdown(d, candidate_board([], "mase"), published="naive", published_version="naive-v1",
                           descriptions={}, published_by=by)
    assert md.startswith(f"### This run published nothing: this as_of was published already, {who}, with "
                         "**naive** (naive-v1)\n"), md
    assert "Published:" not in md
