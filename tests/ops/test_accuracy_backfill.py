"""A backfill's realized-accuracy artifact shows what was known at its date (ops/accuracy.py `as_known_at`)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from flowcast.evaluation.realized import assess_decay
from flowcast.ops.accuracy import RealizedOutcome, as_known_at, description, markdown

MONTHS = [datetime(2023, 9, 1), datetime(2023, 10, 1), datetime(2024, 3, 1), datetime(2024, 4, 1)]


def _rows(scored_at: list[datetime], mase: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"dataset": "parts", "as_of": MONTHS, "model": "theta", "model_version": "theta-v1", "step": 1,
                         "n": 10, "mae": 1.5, "mase": mase, "n_mase": 10, "rmsse": 0.9, "smape": 15.0,
                         "coverage80": 0.8, "coverage95": 0.9, "mae_snaive": 2.0, "mase_snaive": 1.1,
                         "rmsse_snaive": 1.0, "lookahead": False, "scored_at": scored_at},
                        schema_overrides={"step": pl.Int32})


def _judge(rows: pl.DataFrame):
    return assess_decay(rows, {"theta-v1": 0.9}, dataset="parts", window=4, tolerance=0.25, min_points=5)


@pytest.mark.parametrize(("as_of", "later", "scored_later"), [
    # 2024-03-01 and 2024-04-01 were scored by later retrains: left out, named; 2023-10-01 scored after the date
    (datetime(2023, 12, 1, tzinfo=UTC), ["2024-03-01", "2024-04-01"], {datetime(2023, 10, 1)}),
    # the date's own as_of had no actuals at that date: left out too
    (datetime(2024, 3, 1), ["2024-03-01", "2024-04-01"], {datetime(2023, 10, 1)}),
    # a backfill after every as_of leaves nothing out
    (datetime(2024, 6, 1), [], set()),
])
def test_a_backfill_shows_and_judges_only_the_as_ofs_before_its_date(as_of, later, scored_later):
    # the two later as_ofs were bad (MASE 3): on main the 2023-12-01 backfill's artifact said degraded from them
    rows = _rows([datetime(2023, 11, 1), datetime(2024, 5, 1), datetime(2024, 5, 1), datetime(2024, 5, 1)],
                 [0.8, 0.8, 3.0, 3.0])
    outcome = RealizedOutcome("parts", realized=rows, decay=_judge(rows))
    assert outcome.decay is not None and outcome.decay.degraded
    view = as_known_at(outcome, as_of, _judge)
    assert view.realized is not None
    shown = sorted(view.realized["as_of"].unique().to_list())
    assert [f"{a:%Y-%m-%d}" for a in view.later] == later
    assert set(view.scored_later) == scored_later
    assert outcome.realized is rows and outcome.decay.degraded  # the run's own outcome (stored verdict) is unchanged
    text = markdown(view, {"theta-v1": 0.9}, None)
    table = text.split("| --- ", 1)[1]
    if later:
        assert shown == MONTHS[:2] and view.decay is not None and not view.decay.degraded
        assert "healthy" in text.splitlines()[0]
        assert f"are left out ({', '.join(later)})" in text
        assert not any(d in table for d in later)
    else:
        assert shown == MONTHS and "left out" not in text and "**degraded**" in text
    if scored_later:
        assert "2023-10-01: scored by a later run (on actuals up to 2024-05-01)" in text
    else:
        assert "scored by a later run" not in text


def test_a_production_run_s_artifact_is_unchanged():
    rows = _rows([datetime(2024, 5, 1)] * 4, [0.8, 0.8, 3.0, 3.0])
    text = markdown(RealizedOutcome("parts", realized=rows, decay=_judge(rows)), {"theta-v1": 0.9}, None)
    assert "left out" not in text and "2024-04-01" in text and "**degraded**" in text


@pytest.mark.parametrize(("dataset", "backfill", "said"), [
    ("shops", False, "As of 2024-03-01: realized accuracy of the published forecasts for shops"),
    ("tiny", True, "Backfill as of 2024-03-01: realized accuracy of the published forecasts for tiny"),
])
def test_the_realized_artifact_names_its_dataset_without_a_possessive(dataset, backfill, said):
    """ui31: its line in the key's history read "realized accuracy of shops's published forecasts"."""
    assert description(dataset, datetime(2024, 3, 1), backfill=backfill) == said
    assert "'s" not in said


@pytest.mark.parametrize(("ahead", "said"), [
    (1, ("1 as_of (lookahead `yes` in the table, hollow dots in the plot) was forecast by a model trained on data "
        "after it (a backfill before any model of that date): it saw the actuals it is scored on, and is not judged.")),
    (2, ("2 as_ofs (lookahead `yes` in the table, hollow dots in the plot) were forecast by a model trained on data "
        "after them (a backfill before any model of that date): they saw the actuals they are scored on, and are not "
        "judged.")),
])
def test_the_lookahead_paragraph_counts_its_as_ofs_in_words(ahead, said):
    """ui42: under '2 scored as_ofs left out' the artifact said '2 as_of (lookahead `yes` ...) were forecast', and
    '1 as_of ... were forecast by a model trained on data after them' of one."""
    rows = _rows([datetime(2024, 5, 1)] * 4, [0.8, 0.8, 0.8, 0.8]).with_columns(
        pl.Series("lookahead", [True] * ahead + [False] * (4 - ahead)))
    outcome = RealizedOutcome("parts", realized=rows, decay=_judge(rows))
    assert outcome.decay is not None and outcome.decay.lookahead == ahead
    assert said in markdown(outcome, {"theta-v1": 0.9}, None)
