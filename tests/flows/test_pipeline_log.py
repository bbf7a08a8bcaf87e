"""The retrain flow's run-log lines (flowcast.flows.pipeline), without Prefect."""

from __future__ import annotations

import polars as pl
import pytest

from flowcast import reporting
from flowcast.flows.pipeline import _print_board, _print_board_follow_up, retraining_line


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    warning = info


@pytest.mark.parametrize(("metric", "ranked"), [("mase", "snaive MASE"), ("rmsse", "naive RMSSE"),
                                                ("smape", "sMAPE")])
def test_the_leaderboard_in_the_log_names_its_metrics_as_the_artifacts_do(metric, ranked):
    """Regression: the run log's leaderboard said 'Leaderboard (by mase, ...)' and 'smape=... mase=...' where its
    artifacts say 'ranked by snaive MASE' and 'sMAPE', 'MASE': one name for a metric everywhere."""
    board = pl.DataFrame({"rank": [1, 2], "model": ["damped", "gru"], "kind": ["statistical", "network"],
                          "smape": [10.0, 12.5], "mase": [0.9, 1.1], "rmsse": [0.8, None], "coverage80": [0.8, 0.7],
                          "coverage95": [0.95, 0.9], "msis": [5.0, 6.0]})
    log = _Log()
    _print_board(log, board, metric, "damped")
    head, first, second = log.lines[0].splitlines()
    assert head.startswith(f"Leaderboard (ranked by {ranked}, lower is better;")
    assert "sMAPE=10 MASE=0.9 RMSSE=0.8 cov80=0.8 cov95=0.95 MSIS=5" in first and first.endswith("<- to publish")
    assert "RMSSE=n/a" in second and not any(f" {m}=" in log.lines[0] for m in ("smape", "mase", "rmsse", "msis"))



@pytest.mark.parametrize(("coverage95", "first_said", "second_said"), [
    # blank for every candidate: left out
    ([None, None], "sMAPE=12346 MASE=0.9 RMSSE=0.8 cov80=0.8  <- to publish", "sMAPE=12.5 MASE=1.1 RMSSE=n/a cov80=0.7"),
    # blank for one: said n/a on its row
    ([0.95, None], "sMAPE=12346 MASE=0.9 RMSSE=0.8 cov80=0.8 cov95=0.95  <- to publish",
     "sMAPE=12.5 MASE=1.1 RMSSE=n/a cov80=0.7 cov95=n/a"),
])
def test_the_logs_leaderboard_leaves_out_an_interval_column_blank_on_every_row(coverage95, first_said, second_said):
    """Regression (srcmsg46): a short backtest's log read `cov95=n/a MSIS=n/a` on every row, where the printed table
    and the artifact leave such a column out (`reporting.empty_interval_scores`); figures as every figure is
    written (`figures.score_text`: 12345.6 read '1.235e+04')."""
    board = pl.DataFrame({"rank": [1, 2], "model": ["damped", "gru"], "kind": ["statistical", "network"],
                          "smape": [12345.6, 12.5], "mase": [0.9, 1.1], "rmsse": [0.8, None],
                          "coverage80": [0.8, 0.7], "coverage95": coverage95, "msis": [None, None]},
                         schema_overrides={"coverage95": pl.Float64, "msis": pl.Float64})
    log = _Log()
    _print_board(log, board, "mase", "damped")
    _, first, second = log.lines[0].splitlines()
    assert first.endswith(first_said) and second.endswith(second_said), log.lines[0]


@pytest.mark.parametrize(("withdrawn", "mark"), [(True, reporting.WITHDRAWN_MARK),
                                                 (False, reporting.NOT_PUBLISHED_MARK)])
def test_the_logs_leaderboard_marks_its_winner_to_publish_and_a_refused_publish_says_what_came_of_it(withdrawn, mark):
    """rollback19: the log's leaderboard, written before the publish, marked its winner '<- published', and a
    retrain whose publish was then refused (another run published the as_of first) left that line standing. It is
    marked '<- to publish'; a refused publish adds a line in the leaderboard artifact's follow-up words."""
    board = pl.DataFrame({"rank": [1], "model": ["damped"], "kind": ["statistical"], "smape": [10.0], "mase": [0.9],
                          "rmsse": [0.8], "coverage80": [0.8], "coverage95": [0.95], "msis": [5.0]})
    log = _Log()
    _print_board(log, board, "mase", "damped")
    _print_board_follow_up(log, "damped", "damped-v3", withdrawn=withdrawn)
    assert "published" not in log.lines[0].replace("to publish", "")
    assert log.lines[1] == f"Leaderboard: damped (damped-v3), marked '<- to publish' above: {mark}"


@pytest.mark.parametrize(("by", "said"), [("abc-123", "by flow run abc-123."), ("", "by another run.")])
def test_the_logs_leaderboard_of_a_run_whose_as_of_held_its_forecasts_says_it_published_nothing(by, said):
    """ops53: a retrain whose as_of held its very forecasts (another run published them) left its log's leaderboard at
    '<- to publish' and said nothing after it; a line says the winner is published already, not by this run."""
    board = pl.DataFrame({"rank": [1], "model": ["damped"], "kind": ["statistical"], "smape": [10.0], "mase": [0.9],
                          "rmsse": [0.8], "coverage80": [0.8], "coverage95": [0.95], "msis": [5.0]})
    log = _Log()
    _print_board(log, board, "mase", "damped")
    _print_board_follow_up(log, "damped", "damped-v3", withdrawn=False, published_by=by)
    assert log.lines[1] == (f"Leaderboard: damped (damped-v3), marked '<- to publish' above: "
                            f"{reporting.ALREADY_PUBLISHED_MARK}. This run published nothing: this as_of was published "
                            f"already, {said}")


@pytest.mark.parametrize(("cells", "statistical", "said"), [
    (["gru", "rnn"], ["naive", "theta"], "gru, rnn and the statistical models naive, theta"),
    ([], ["naive", "damped"], "the statistical models naive, damped (no network: model.cells is empty)"),
    (["lstm"], [], "lstm"),
    ([], [], "no model (no network, no statistical model)"),
])
def test_the_retrain_log_says_what_it_retrains(cells, statistical, said):
    """alerts21: a statistical-only retrain (`--models none`) logged 'Retraining no networks as of ...', which reads
    as if nothing were retrained; the line names the networks and the statistical models it trains."""
    from datetime import datetime

    line = retraining_line(cells, statistical, datetime(2019, 6, 1), "r-1")
    assert line == f"Retraining {said} as of 2019-06-01 (run r-1)."


@pytest.mark.parametrize(("as_of", "said"), [
    ("2019-06-01T06:00:00", "as of 2019-06-01 06:00 UTC (run r-1)."),  # it read 'as of 2019-06-01 06:00'
    ("2019-06-01T16:00:00+10:00", "as of 2019-06-01 06:00 UTC (run r-1)."),
    ("2019-06-01T00:00:00", "as of 2019-06-01 (run r-1)."),  # a midnight UTC: a date, as its run's name writes it
])
def test_the_flows_lines_say_utc_after_a_clock_time(as_of, said):
    """dates42: the flows' log lines wrote an as_of's clock time without its zone ('Retraining ... as of 2019-06-01
    06:00', 'Forecasting as of ...', 'Published ... for as_of ...'), read in the reader's or the source's zone; they
    write it as the run's name does (`timekeys.utc_text`)."""
    from datetime import datetime

    from flowcast.flows.common import published_line
    from flowcast.store.base import PublishReceipt

    at = datetime.fromisoformat(as_of)
    assert retraining_line(["gru"], [], at, "r-1") == f"Retraining gru {said}"
    receipt = PublishReceipt(dataset="d", as_of=at, rows=6, n_series=1, model="theta", model_version=None,
                             run_id="r-1", replaced_rows=0, content_hash="h", location="/h/p.parquet", duckdb_path=None)
    when = said.removeprefix("as of ").removesuffix(" (run r-1).")
    assert published_line(receipt, at, "theta", None).startswith(f"Published 6 forecast rows (1 series) of d for "
                                                                f"as_of {when} from theta")


@pytest.mark.parametrize(("short", "said"), [
    (1, ("1 of 6 series has fewer than the 7 periods a network needs: the statistical models that can run on it "
        "forecast it")),
    (2, ("2 of 6 series have fewer than the 7 periods a network needs: the statistical models that can run on them "
        "forecast them")),
])
def test_the_too_short_for_a_network_line_counts_one_series_in_the_singular(short, said):
    """Regression (ui21): a run with one short series (Leipzig, 2 points) logged '1 of 6 series have fewer than the
    7 periods a network needs: ... run on them forecast them'."""
    from flowcast.flows.common import network_short_line

    assert network_short_line(short, 6, 7) == said


@pytest.mark.parametrize(("short", "ids", "named"), [
    (1, ["Leipzig"], "(Leipzig)"),
    (5, ["a", "b", "c", "d", "e"], "(a, b, c, d, e)"),
    (1_207, ["a", "b", "c", "d", "e"], "(a, b, c, d, e and 1,202 more)"),
])
def test_the_too_short_for_a_network_line_names_the_series(short, ids, named):
    """ui25: the line counted the series without naming one: the first 5 by id, then how many more."""
    from flowcast.flows.common import network_short_line

    assert f"fewer than the 7 periods a network needs {named}: the statistical" in network_short_line(short, 5000, 7, ids)


def test_the_prepared_line_groups_its_counts():
    """ui25: 'Prepared 148 series (72339 observations, ...)' beside the validation line's '143,412 rows in'."""
    from flowcast.flows.common import prepared_line

    assert prepared_line(1_480, 72_339, "1mo", 12, 1_024) == (
        "Prepared 1,480 series (72,339 points, frequency 1mo, horizon 12); 1,024 of them imputed (not "
        "observations: never scored)")


@pytest.mark.parametrize(("imputed", "said"), [
    (0, "(192 points, frequency 1mo, horizon 12); none imputed"),
    (1, "(192 points, frequency 1mo, horizon 12); 1 of them imputed (not an observation: never scored)"),
    (2, "(192 points, frequency 1mo, horizon 12); 2 of them imputed (not observations: never scored)"),
])
def test_the_prepared_line_counts_points_and_says_one_imputed_point_in_the_singular(imputed, said):
    """ui42: a file with one quarantined row logged 'Prepared 4 series (191 observations, ...); 1 points imputed (not
    observations: never scored)': the plural for one, and the imputed point counted among the 'observations' the
    same line says it is not (the count is of the grid's points, imputed ones included)."""
    from flowcast.flows.common import prepared_line

    assert prepared_line(4, 192, "1mo", 12, imputed) == f"Prepared 4 series {said}"


@pytest.mark.parametrize(("version", "models", "named"), [
    ("hybrid-v1", ["hybrid"], "from hybrid (hybrid-v1) to"),  # it read 'from hybrid hybrid-v1'
    ("hybrid", ["hybrid", "naive"], "from hybrid to"),  # a version named as its model: once, as the receipt says it
    (None, [], "from hybrid to"),  # wordsB46: it read 'hybrid (baseline)', the receipt and state message 'hybrid'
    # review46: every row its fallback's: the fallback, as the receipt names it (it read 'from hybrid (hybrid-v1)')
    ("hybrid-v1", ["naive"], "from naive, the fallback for every series (hybrid-v1 forecast none) to"),
])
def test_the_published_line_names_the_model_as_the_receipt_does(version, models, named):
    """ui25: the log said 'Published 1776 forecast rows (148 series) ... from hybrid hybrid-v1 to ...' where the
    receipt says 'Published 1,776 forecast rows ... from hybrid (hybrid-v1)'; and where every row is a fallback's,
    the model that made none of them, where the receipt names the fallback. The `flowcast.forecast.published`
    event's message names it alike (fixB46: it read 'from hybrid hybrid-v1', the production model for a fallback's
    rows)."""
    from datetime import datetime
    from pathlib import Path

    from flowcast.flows.common import published_event_message, published_line
    from flowcast.store.base import PublishReceipt

    receipt = PublishReceipt(dataset="us_employment", as_of=datetime(2019, 7, 1), rows=1776, n_series=148,
                             model="hybrid", model_version=version, run_id="r-1", replaced_rows=0, content_hash="h",
                             location="/h/part-1.parquet", duckdb_path=Path("/h/forecasts.duckdb"), models=models)
    line = published_line(receipt, datetime(2019, 7, 1), "hybrid", version)
    assert reporting.receipt_sentence(receipt).endswith(named.removesuffix(" to") + "."), \
        reporting.receipt_sentence(receipt)
    assert line == (f"Published 1,776 forecast rows (148 series) of us_employment for as_of 2019-07-01 {named} "
                    "/h/part-1.parquet (DuckDB views in /h/forecasts.duckdb)")
    assert published_event_message(receipt, "hybrid", version) == (
        f"published 1,776 forecast rows (148 series) {named.removesuffix(' to')}")


@pytest.mark.parametrize(("replaced", "previous", "said"), [
    (0, None, ""),
    (96, "old", ", replacing the 96 rows this as_of had published"),
    (1776, "h", ", replacing the 1,776 rows this as_of had published (identical content)"),
])
def test_the_published_line_says_what_a_rerun_replaced(replaced, previous, said):
    """newuser50b: a corrected file run again for the same as_of logged 'Published 96 forecast rows ... to
    <path>', the line of a first publish, where its receipt said 'replacing the 96 rows this as_of had published':
    the line says it too."""
    from datetime import datetime

    from flowcast.flows.common import published_line
    from flowcast.store.base import PublishReceipt

    receipt = PublishReceipt(dataset="emp", as_of=datetime(2019, 6, 1), rows=96, n_series=8, model="damped",
                             model_version="damped-v2", run_id="r-2", replaced_rows=replaced, content_hash="h",
                             previous_content_hash=previous, location="/h/part-2.parquet", duckdb_path=None)
    assert published_line(receipt, datetime(2019, 6, 1), "damped", "damped-v2") == (
        "Published 96 forecast rows (8 series) of emp for as_of 2019-06-01 from damped (damped-v2) to "
        f"/h/part-2.parquet{said}")


@pytest.mark.parametrize(("name", "kind", "said"), [
    ("gru", "network", "Registered gru (network) as gru-v3"),
    ("hybrid", "hybrid", "Registered hybrid as hybrid-v3"),  # it read 'Registered hybrid (hybrid) as hybrid-v1'
])
def test_the_registered_line_names_a_kind_that_is_not_the_name(name, kind, said):
    from flowcast.flows.pipeline import registered_line

    assert registered_line(name, kind, f"{name}-v3") == said


@pytest.mark.parametrize(("n", "metric", "said"), [(2, "mase", "learned on 2 backtest windows (MASE)"),
                                                   (1, "rmsse", "learned on 1 backtest window (RMSSE)")])
def test_a_combinations_weights_note_reads_as_the_decision_shows_it(n, metric, said):
    """ui25: the decision's description ('It is ...') read 'weights learned on 2 backtest window(s) (mase)'."""
    from flowcast.flows.pipeline import learned_weights_note

    assert learned_weights_note(n, metric) == said


@pytest.mark.parametrize(("result", "said"), [
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 1776, "model_version": "gru-v1"},
     "Published 1,776 forecast rows from gru-v1: tiny as of 2023-12-31"),
    ({"dataset": "tiny", "as_of": "2023-12-31T06:30:00+00:00", "published_rows": 48, "model_version": None,
      "model": "theta"}, "Published 48 forecast rows from theta: tiny as of 2023-12-31 06:30 UTC"),
    # one series, horizon 1: it read 'Published 1 forecast rows'
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 1, "model_version": "gru-v1"},
     "Published 1 forecast row from gru-v1: tiny as of 2023-12-31"),
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 0, "model_version": "gru-v1"}, None),
    # wordsC45: every row the fallback's: it said 'from theta-v1', where the CLI's line and the receipt name the fallback
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 48, "model_version": "theta-v1",
      "model": "theta", "models": ["naive"]},
     ("Published 48 forecast rows from naive, the fallback for every series (theta-v1 forecast none): tiny as of "
     "2023-12-31")),
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 48, "model_version": "gru-v1",
      "champion": "gru", "models": ["naive", "seasonal_naive"]},  # the pipeline's result names its model `champion`
     ("Published 48 forecast rows from naive and seasonal_naive, the fallbacks for every series (gru-v1 forecast "
     "none): tiny as of 2023-12-31")),
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 48, "model_version": "theta-v1",
      "model": "theta", "models": ["naive", "theta"]},
     "Published 48 forecast rows from theta (theta-v1): tiny as of 2023-12-31"),
    # uiB46: 'from theta-v3', where the log line and the receipt say 'from theta (theta-v3)'
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 6, "model_version": "theta-v3",
      "model": "theta", "models": ["theta"]}, "Published 6 forecast rows from theta (theta-v3): tiny as of 2023-12-31"),
    ({"dataset": "tiny", "as_of": "2023-12-31T00:00:00+00:00", "published_rows": 48, "skipped": True,
      "note": "done by run R"}, "Skipped: done by run R"),
])
def test_a_run_that_published_says_what_in_its_state_message(result, said):
    """ui42: a run that published ended Completed() with no message: its page's and its artifacts' side panel read
    'State Message: None', where a skipped run's says why it published nothing."""
    from flowcast.flows.common import run_state_message

    assert run_state_message(result) == said


def test_a_skipped_runs_sentences_group_the_rows_held_as_every_count_is():
    """newuser50b: a scheduled forecast whose slot the retrain had published ended `Skipped: us_employment as of
    2026-12-07 11:00 UTC is published already (1776 rows of hybrid-v1, ...`, where every other count of rows reads
    `1,776`: the receipt holds its rows as text, written as read."""
    from datetime import datetime

    from flowcast.flows.common import held_sentence, same_sentence

    held = {"rows": "1776", "model_version": "hybrid-v1", "run_id": "r-1"}
    at = datetime(2026, 12, 7, 11)
    assert held_sentence("us_employment", at, held).startswith(
        "us_employment as of 2026-12-07 11:00 UTC is published already (1,776 rows of hybrid-v1, run r-1)")
    assert "(same version, same rows: 1,776 rows of hybrid-v1)" in same_sentence("us_employment", at, held)
