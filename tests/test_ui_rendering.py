"""What the Prefect UI shows, rendered without Prefect: run and task names, artifact keys and
descriptions, the leaderboard and receipt tables, the forecast plot, progress texts, the run form's
parameter schema, the log filter's decisions, the quality summary."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
from datetime import datetime, timedelta

import polars as pl
import pytest

from flowcast import reporting
from flowcast.flows.naming import flow_run_title, task_label
from flowcast.mdtext import md_text
from flowcast.timekeys import utc_text


# ----------------------------------------------------------------------------------------- names
def test_flow_run_names_say_flow_dataset_and_as_of():
    assert flow_run_title("retrain", "us_employment", {"as_of": datetime(2019, 9, 1)}, None) == \
        "retrain us_employment 2019-09-01"
    # a scheduled run without an as_of parameter: its scheduled start (an aware instant)
    sched = datetime.fromisoformat("2019-09-02T06:00:00+00:00")
    assert flow_run_title("forecast", "us_employment", {}, sched) == "forecast us_employment 2019-09-02 06:00 UTC"
    # a deployment run's parameters arrive as JSON strings; an offset is read as the instant it is
    assert flow_run_title("forecast", "tiny", {"as_of": "2019-09-01T10:00:00+10:00"}, None) == "forecast tiny 2019-09-01"
    assert flow_run_title("forecast", "tiny", {"as_of": datetime(2018, 10, 1)}, None, backfill=True) == \
        "forecast tiny 2018-10-01 (backfill)"
    assert flow_run_title("backfill", "tiny", {"start": "2018-10-01", "end": "2018-12-01"}, None) == \
        "backfill tiny 2018-10-01..2018-12-01"
    assert flow_run_title("backfill", "tiny", {"start": "2018-10-01", "end": "2018-12-01", "mode": "retrain"},
                          None) == "backfill tiny 2018-10-01..2018-12-01 (retrain)"
    assert utc_text(datetime(2019, 9, 1, 0, 30)) == "2019-09-01 00:30 UTC"


@pytest.mark.parametrize("as_of, said", [
    (datetime(2019, 9, 1), "2019-09-01"),
    (datetime(2019, 9, 1, 6, 0), "2019-09-01 06:00 UTC"),
    (datetime.fromisoformat("2019-09-01T10:00:00+10:00"), "2019-09-01"),  # aware: said in UTC
    ("2019-09-02T06:00:00+00:00", "2019-09-02 06:00 UTC"),  # a deployment's JSON parameter
    (None, "now"),
])
def test_one_as_of_text_for_run_names_tables_and_messages(as_of, said):
    """polish30: `reporting.as_of_text` and `naming.as_of_label` were two copies of one format; the first took
    only a datetime (and wrote an aware one in its own zone). Now the one definition takes what run names get, and
    (inst43) writes what they write: a clock time says its zone (nu41), in a table as in a name."""
    from flowcast.flows import naming

    assert utc_text(as_of) == said
    assert not hasattr(naming, "as_of_label") and not hasattr(reporting, "as_of_text")
    assert flow_run_title("retrain", "tiny", {"as_of": as_of}, None) == f"retrain tiny {said}"


@pytest.mark.parametrize(("flow", "params", "tz", "named"), [
    # Melbourne's 5 April 2014 (AEDT, +11:00) starts at 13:00 UTC on 4 April: the date's run read as 13:00 there
    ("forecast", {"as_of": ("2014-04-05",)}, "Australia/Melbourne", "forecast vic_local8 2014-04-04 13:00 UTC (backfill)"),
    ("retrain", {"as_of": ("2014-04-05",)}, "Australia/Melbourne", "retrain vic_local8 2014-04-04 13:00 UTC (backfill)"),
    ("forecast", {"as_of": ("2014-04-05",)}, None, "forecast vic_local8 2014-04-05 (backfill)"),  # midnight UTC: a date
    ("backfill", {"start": "2014-04-05T10:00+10:00", "end": "2014-04-06T10:00+10:00"}, None,
     "backfill vic_local8 2014-04-05..2014-04-06"),
    ("backfill", {"start": "2014-04-05T09:00+10:00", "end": "2014-04-05T12:00+10:00"}, None,
     "backfill vic_local8 2014-04-04 23:00 UTC..2014-04-05 02:00 UTC"),
])
def test_a_run_named_by_a_clock_time_says_it_is_utc(flow, params, tz, named):
    """Regression (nu41): a backfill of Melbourne's 5 April 2014 named its date's run `forecast vic_local8 2014-04-04
    13:00 (backfill)`, the UTC instant the day starts at, without a zone: read as a Melbourne time, or as the wrong day.
    A name with a clock time says UTC, as `timekeys.utc_text` writes every instant; a midnight UTC stays a date."""
    from flowcast.flows.backfill import backfill_dates
    from flowcast.flows.fanout import FanOut

    if isinstance(params.get("as_of"), tuple):
        (as_of,) = backfill_dates(params["as_of"][0], params["as_of"][0], "1d", tz)
        assert flow_run_title(flow, "vic_local8", {"as_of": as_of}, None, backfill=True) == named
        plan = FanOut(deployment=f"{flow}/{flow}", dataset="vic_local8", mode=flow, backfill_run_id="b")
        assert plan.run_name(as_of, 1) == named  # created with the name it gives itself as it starts
    else:
        assert flow_run_title(flow, "vic_local8", params, None) == named


def test_task_labels_say_model_and_window():
    assert task_label("gru") == "gru backtest"
    assert task_label("rnn", window=2, n_windows=3) == "rnn window 2"
    assert task_label("rnn", window=1, n_windows=1) == "rnn backtest"  # one window: nothing to number
    assert task_label("lstm", final=True) == "lstm all data"


def test_task_run_names_are_templates_of_the_tasks_parameters():
    from flowcast.flows import tasks

    assert tasks.train_task.task_run_name == "train {label}"
    assert tasks.backtest_task.task_run_name(parameters={"name": "gru-s0"}) == "backtest gru"
    assert tasks.backtest_task.task_run_name(parameters={"name": "theta"}) == "backtest theta"
    assert tasks.ingest_task.task_run_name == tasks.validate_task.task_run_name.replace("validate", "ingest")
    publish = tasks.publish_task.task_run_name
    assert publish(parameters={"kwargs": {"dataset": "tiny", "as_of": datetime(2019, 6, 1)}}) == "publish tiny 2019-06-01"
    name = tasks.component_task.task_run_name
    assert name(parameters={"component": {"type": "statistical", "model": "theta"}}) == "forecast theta"
    assert name(parameters={"component": {"type": "network", "path": "/x/runs/a/gru-s0-backtest"}}) == "forecast gru"
    line = tasks.training_line("gru backtest", {"steps": 20, "train_seconds": 3.25, "val_loss": 0.1234567,
                                                "train_loss": 0.2})
    assert line == "Trained gru backtest: 20 steps in 3.2 s, validation loss 0.1235, training loss 0.2"


# ----------------------------------------------------------------------------------------- keys
def test_artifact_keys_carry_the_dataset_and_keep_backfills_apart():
    prod = reporting.Scope("us_employment", datetime(2019, 9, 1))
    back = reporting.Scope("us_employment", datetime(2018, 10, 1), backfill=True)
    assert prod.key("plot") == "forecast-plot-us-employment"
    assert back.key("plot") == "backfill-forecast-plot-us-employment"
    assert back.key("backfill") == "backfill-summary-us-employment"  # not backfill-backfill-...
    assert prod.key("progress", "gru all data") == "training-progress-us-employment-gru-all-data"
    for key in (prod.key("plot"), back.key("receipt"), reporting.progress_key("gru backtest", "M3 Monthly", True)):
        assert re.fullmatch(r"[a-z0-9-]+", key), key  # what Prefect accepts
    assert prod.describe("forecast plot") == "As of 2019-09-01: forecast plot"
    assert back.describe("forecast plot") == "Backfill as of 2018-10-01: forecast plot"
    assert reporting.Scope("x", datetime(2019, 9, 1, 6)).describe("y") == "As of 2019-09-01 06:00 UTC: y"


# ----------------------------------------------------------------------------------------- tables
def test_leaderboard_rank_first_published_marked_no_python_values():
    board = pl.DataFrame({"rank": [1, None], "model": ["theta", "gru"], "kind": ["statistical", "network"],
                          "mase": [0.81234, None], "finite": [True, False], "note": [None, "diverged"]})
    rows = reporting.leaderboard_rows(board, published="theta")
    assert list(rows[0])[:3] == ["rank", "model", "published"]
    assert rows[0]["published"] == "✔ published" and rows[1]["published"] == ""
    assert rows[1]["rank"] == "not ranked" and rows[1]["MASE"] == ""
    assert "None" not in str(rows) and "False" not in str(rows) and "True" not in str(rows)
    assert "finite" not in rows[0] and "note" not in rows[0]  # the details' (rank says it; a note does not wrap)
    details = reporting.leaderboard_details_markdown(board, "mase", published="theta")
    assert "- **gru**: not ranked; diverged" in details and "None" not in details


@pytest.mark.parametrize(("metric", "scores"), [
    ("rmsse", ["RMSSE", "sMAPE", "MASE"]),  # intermittent data: ranked on RMSSE, which came third
    ("mase", ["MASE", "sMAPE", "RMSSE"]),
    ("mae", ["MAE", "sMAPE", "MASE", "RMSSE"]),  # MAE is the details', but a board ranked on it shows it
])
def test_leaderboard_shows_the_score_it_is_ranked_by_first(metric, scores):
    # ranked on RMSSE, the table read smape, mase, rmsse: mase first and out of order (croston 0.95 above adida
    # 0.93), the ranking's column third of eight scores, past the page's edge on narrower screens
    board = pl.DataFrame({"rank": [1, 2], "model": ["croston", "adida"], "kind": ["statistical", "statistical"],
                          "smape": [169.77, 170.96], "mase": [0.9543, 0.9313], "rmsse": [0.6735, 0.678],
                          "mae": [1.2248, 1.2065]})
    rows = reporting.leaderboard_rows(board, published="croston", metric=metric)
    assert list(rows[0]) == ["rank", "model", "published", "kind", *scores]
    assert rows[0][scores[0]] == reporting._sig(board[metric][0]) and rows[1]["RMSSE"] == 0.678  # moved, not changed
    assert list(reporting.leaderboard_rows(board, published="croston")[0])[4:] == ["sMAPE", "MASE", "RMSSE"]


# a board as `candidate_board` makes it: 18 columns with the published mark, past the page's edge in the UI
FULL_BOARD = pl.DataFrame({
    "rank": [1, 2, None], "model": ["damped", "comb", "gru"], "kind": ["statistical", "statistical", "network"],
    "smape": [1.41312, 1.44543, None], "mase": [0.518734, 0.519412, None], "rmsse": [1.31181, 1.38891, None],
    "mae": [47.2576, 47.8331, None], "rmse": [57.1744, 12345.6, None], "coverage80": [0.78493, 0.799, None],
    "coverage95": [0.95381, 0.95381, None], "msis": [5.82781, 12.6601, None], "n_windows": [2, 2, 2],
    "n_series": [148, 148, 140], "fallback": [0.0, 0.0, 0.0], "finite": [True, True, False],
    "weights": ["", "0.7 x damped + 0.3 x dotm", ""], "note": [None, None, "training diverged: loss nan at step 12"],
})


def test_the_leaderboard_table_is_one_screen_wide_and_the_details_hold_the_rest():
    """Regression (ui17): the leaderboard's 18 columns needed a horizontal scroll; MSIS, windows, fallback, weights
    and notes were out of sight, MAE and RMSE read 47.2576 and 104.1454. The table keeps the ranked score, the other
    relative scores and the intervals', to 4 significant digits as the log prints them; the details the rest."""
    rows = reporting.leaderboard_rows(FULL_BOARD, published="damped", metric="mase")
    # ui25: headed as the details and realized accuracy write them (they read 'mase', 'smape', 'msis')
    assert list(rows[0]) == ["rank", "model", "published", "kind", "MASE", "sMAPE", "RMSSE",
                             "cov80", "cov95", "MSIS"]
    assert [r["MSIS"] for r in rows] == [5.828, 12.66, ""] and rows[0]["sMAPE"] == 1.413 and rows[0]["MASE"] == 0.5187
    md = reporting.leaderboard_details_markdown(FULL_BOARD, "mase", published="damped", unit="thousands of persons",
                                                table_link="[leaderboard-x](/artifacts/key/leaderboard-x)")
    assert md.startswith("## Leaderboard details, ranked by snaive MASE") and "[leaderboard-x](" in md
    # the same for every candidate: said once; the series differ (gru scored fewer): a column
    assert "Every candidate was scored on 2 backtest windows; none needed its fallback." in md
    assert "| rank | model | published | MAE | RMSE | series |" in md
    assert "| 1 | damped | ✔ published | 47.26 | 57.17 | 148 |" in md and "| 2 | comb |  | 47.83 | 12346 | 148 |" in md
    assert "| not ranked | gru |  |  |  | 140 |" in md
    assert "MAE and RMSE are in the target's units (thousands of persons)." in md
    assert "- **comb**: 0.7 x damped + 0.3 x dotm" in md and "- **gru**: not ranked; training diverged" in md
    assert "- **damped**" not in md  # nothing to say
    for score in ("MASE:", "RMSSE:", "sMAPE:", "cov80, cov95:", "MSIS:"):
        assert f"- {score}" in md, score
    every = {"n_windows": 2, "n_series": 148, "fallback": 0.25}
    varied = FULL_BOARD.with_columns(pl.Series("n_windows", [2, 1, 2]), pl.Series("fallback", [0.0, 0.25, 0.0]))
    md = reporting.leaderboard_details_markdown(varied.with_columns(pl.lit(every["n_series"]).alias("n_series")), "mase")
    assert "Every candidate was scored over 148 series." in md and "backtest windows | fallback share |" in md


@pytest.mark.parametrize(("empty", "kept", "said"), [
    (("coverage95", "msis"), ["cov80"],
     ("No candidate has a cov95 or MSIS score: none had 95% intervals on the backtest windows it was scored on, so "
     "those columns are left out.")),
    (("coverage80", "coverage95", "msis"), [],
     ("No candidate has a cov80 or cov95 or MSIS score: none had 80% or 95% intervals on the backtest windows "
     "it was scored on, so those columns are left out.")),
    ((), ["cov80", "cov95", "MSIS"], ""),
])
def test_an_interval_score_no_candidate_has_is_left_out_and_said(empty, kept, said):
    """ui20: a one-window backtest of a short history left no candidate 95% intervals to score; the leaderboard showed
    coverage95 and MSIS as two columns empty on every row, nothing saying why. A column no candidate has a value in
    is left out and the description says so; a column some candidate has stays, empty where one has none."""
    board = FULL_BOARD.with_columns(*(pl.lit(None, dtype=pl.Float64).alias(c) for c in empty))
    rows = reporting.leaderboard_rows(board, published="damped", metric="mase")
    assert list(rows[0]) == ["rank", "model", "published", "kind", "MASE", "sMAPE", "RMSSE", *kept]
    assert reporting.empty_intervals_sentence(board) == said
    # cache47: the console's table (`cli.pipeline._leaderboard_table`, its rows) leaves out the same columns, by the
    # same rule: it kept one of its own
    assert reporting.empty_interval_scores(board.to_dicts()) == reporting.empty_interval_scores(board) == list(empty)
    text = reporting.withdrawn_leaderboard_description("tiny as of 2019-07-08 03:00 is published already.", "mase",
                                                       "damped", "damped-v2", empty=said)
    assert (said in text) if said else text.endswith(f"{reporting._meaning('mase')}.")
    # where the run's note says why they are blank (ended20), the description says it once: only that they are out
    note = "cov95 and MSIS are blank: the backtest has one window"
    assert reporting.empty_intervals_sentence(board, note) == (
        ("Those columns are left out of the table." if len(empty) > 1 else "That column is left out of the table.")
        if empty else "")


@pytest.mark.parametrize(("weights", "said"), [(["", "1 x damped", ""], True), (["", "", ""], False)])
def test_the_details_say_which_weights_a_combination_shows_and_which_it_was_scored_with(weights, said):
    """ui20: a refused retrain's details read 'comb: 1 x damped' above a comb scored MAE 2.01 against damped's 1.762,
    as if one of the two were wrong: the weights shown are the ones it would publish, fitted on every window, and its
    scores come from weights fitted on the windows before each (equal on the first). How to read the scores says so
    wherever a candidate shows weights."""
    md = reporting.leaderboard_details_markdown(FULL_BOARD.with_columns(pl.Series("weights", weights)), "mase")
    reading = md.split("### How to read the scores")[1]
    assert ("- weights: a combination's learned weights are the ones it would publish, fitted on every backtest "
            "window; each window's score comes from weights fitted on the windows before it (equal weights on the "
            "first)" in reading) is said, reading


@pytest.mark.parametrize(("value", "shown"), [
    (47.2576, 47.26), (104.1454, 104.1), (0.518734, 0.5187), (12345.6, 12346), (0.0, 0.0), (-2.34567, -2.346),
    (1e-05, 1e-05), (3, 3), ("x", "x"), (None, None),
])
def test_scores_show_4_significant_digits(value, shown):
    assert reporting._sig(value) == shown


@pytest.mark.parametrize(("value", "shown"), [
    (1 / 12, 0.08333), (0.00123456, 0.001235), (1e-05, 1e-05), (0.518734, 0.5187), (12345.6, 12346), (None, ""),
])
def test_the_leaderboard_cells_keep_4_significant_digits_below_0_1(value, shown):
    """ui43: the leaderboard artifact showed a coverage of 1/12 as 0.0833 where `flowcast run` and the log print
    0.08333 (its 4 significant digits went on to the cell's 4-decimal rounding); 1e-05 read 0.0. The table and the
    details keep them as the CLI writes them."""
    board = FULL_BOARD.with_columns(pl.Series("coverage80", [value, 0.799, None], dtype=pl.Float64),
                                    pl.Series("mae", [value, 47.8331, None], dtype=pl.Float64))
    assert reporting.leaderboard_rows(board, metric="mase")[0]["cov80"] == shown
    details = reporting.leaderboard_details_markdown(board, "mase")
    assert f"| {shown} |" in details if shown != "" else True, details
    if value is not None:
        assert f"{value:.4g}" == f"{shown:.4g}"  # as the CLI's board prints it

def test_a_details_cell_shows_an_id_as_written():
    board = FULL_BOARD.with_columns(pl.Series("model", ["a|b", "*c*", "gru"]))
    md = reporting.leaderboard_details_markdown(board, "rmsse")
    assert "| 1 | a\\|b |" in md and "- **\\*c\\***: 0.7 x damped" in md and "naive RMSSE" in md


RUN_A, RUN_B = "5110a02d-9213-4f97-b92d-33a90326d77d", "297acef4-6abe-45e5-bb61-ec51b2558760"


@pytest.mark.parametrize(("sentence", "linked"), [
    # a scheduled retrain whose slot was retrained: two runs named, and no closing period
    ((f"us_employment as of 2019-06-01 00:00 was retrained already: run {RUN_A} registered damped-v2 and its 1,776 "
     f"forecast rows are published by run {RUN_B}. A scheduled retrain runs once per slot: this run trains, registers "
     "and publishes nothing (a run given its as_of retrains it again)"), [RUN_A, RUN_B]),
    # a scheduled forecast that lost its slot to another run
    ((f"us_employment as of 2019-08-01 00:00 is published already (1,776 rows of damped-v2, run {RUN_B}) and overwrite "
     "is off: another run published it while this one computed (found under the key's lock), so this run publishes "
     "nothing"), [RUN_B]),
    (("tiny as of 2019-07-01 00:00 is published already (6 rows of m-v1, run run-7) and overwrite is off: this run "
     "computes and publishes nothing."), []),  # not a flow run's id: no link
])
def test_a_run_that_published_nothing_says_so_and_links_the_run_that_did(sentence, linked):
    md = reporting.skipped_markdown(sentence)
    assert md.startswith("## Nothing published by this run\n\n") and md.endswith(".\n") and not md.endswith("..\n")
    assert "us\\_employment" in md or "tiny" in md  # the sentence's text as written, not markdown's
    assert re.findall(r"\[([0-9a-f-]{36})\]\([^)]*/runs/flow-run/([0-9a-f-]{36})\)", md) == [(r, r) for r in linked]
    assert "run run-7" in md or linked


def test_receipt_key_sentence_first_without_python_values():
    receipt = {"dataset": "us_employment", "as_of": "2019-09-01T00:00:00", "rows": 1776, "n_series": 148,
               "model": "theta", "model_version": "theta-v3", "run_id": "abc", "replaced_rows": 0,
               "content_hash": "f00", "location": "/w/forecasts", "parquet_path": None, "duckdb_path": None,
               "quantile_cols": [], "ignored_columns": [], "previous_content_hash": None, "models": ["theta"],
               "notes": [], "unchanged": False}
    rows = reporting.receipt_table(receipt)
    assert rows[:2] == [{"field": "published", "value": "1,776 forecast rows of 148 series of us_employment as of "
                                                         "2019-09-01"},
                        {"field": "from", "value": "theta (theta-v3)"}]
    text = str(rows)
    assert "None" not in text and "False" not in text and "[]" not in text
    # a note is a paragraph of the description too: a table cell does not wrap in the UI, and a backfill's
    # 'not the forecasts a run at this as_of could have made' was cut at the page's edge
    scope = reporting.Scope(dataset="us_employment", as_of=datetime(2019, 3, 1), backfill=True)
    assert reporting.receipt_description(receipt, scope) == (
        "Backfill as of 2019-03-01: Published 1,776 forecast rows of 148 series of us_employment as of 2019-09-01 "
        "from theta (theta-v3).")
    noted = {**receipt, "notes": ["steps 7-9 are beyond the 6 calibrated"]}
    described = reporting.receipt_description(noted, scope, note="theta-v3 was trained on data up to 2019-08-01")
    assert described.split("\n\n")[1:] == ["Note: steps 7-9 are beyond the 6 calibrated",
                                           "Note: theta-v3 was trained on data up to 2019-08-01"]


@pytest.mark.parametrize(("model", "version", "named"), [("damped", "damped-v2", "damped (damped-v2)"),
                                                         ("naive", "naive", "naive"), ("snaive", None, "snaive")])
def test_a_withdrawn_decision_says_so_and_links_the_run_that_published(model, version, named):
    """artifacts19: a retrain refused under the key's lock had written its decision before its publish; the
    key's newest version named its winner as if published. The follow-up says what came of it."""
    sentence = (f"tiny as of 2019-07-01 00:00 is published already (6 rows of m-v1, run {RUN_B}) and overwrite is "
                f"off: another run published it while this one computed (found under the key's lock). {version} "
                "withdrawn from production.")
    md = reporting.withdrawn_decision_markdown(sentence, model, version)
    assert md.startswith("## Withdrawn: nothing published by this run\n\n")
    assert re.findall(r"\[([0-9a-f-]{36})\]\([^)]*/runs/flow-run/([0-9a-f-]{36})\)", md) == [(RUN_B, RUN_B)]
    assert f"chose {named}: its forecasts were not published" in md and "..\n" not in md


RECEIPT = {"dataset": "us_employment", "as_of": "2019-09-01T00:00:00", "rows": 1776, "n_series": 148, "model": "theta",
           "model_version": "theta-v3", "run_id": "3f2a9c1e-1111-4222-8333-444455556666", "content_hash": "f00",
           "location": "/srv/fc/home/warehouse/forecasts/dataset=us_employment/as_of=2019-09-01/part-3f2a.parquet",
           "duckdb_path": "/srv/fc/home/warehouse/forecasts.duckdb", "models": ["theta"], "notes": []}


@pytest.mark.parametrize(("extra", "rows"), [
    ({}, [("published", "1,776 forecast rows of 148 series of us_employment as of 2019-09-01"),
          ("from", "theta (theta-v3)")]),
    # every row the fallback's: as one cell, '... from naive, the fallback for every series (theta-v3 forecast none).'
    # was cut at the page's edge (a table cell does not wrap in the UI), repeating the description's first line
    ({"models": ["naive"]}, [("published", "1,776 forecast rows of 148 series of us_employment as of 2019-09-01"),
                             ("from", "naive, the fallback for every series (theta-v3 forecast none)")]),
    ({"replaced_rows": 1776, "previous_content_hash": "f00"},
     [("published", "1,776 forecast rows of 148 series of us_employment as of 2019-09-01"),
      ("from", "theta (theta-v3)"), ("replacing", "the 1,776 rows this as_of had published (identical content)")]),
])
def test_the_receipt_table_splits_its_sentence_into_rows_short_enough_to_read(extra, rows):
    """ui46: the receipt table's first row was the whole sentence of the description above it; a fallback's was cut
    at the page's edge. Its parts are rows of their own, and they say what the sentence says."""
    receipt = {**RECEIPT, **extra}
    table = reporting.receipt_table(receipt)
    assert [(r["field"], r["value"]) for r in table[:len(rows)]] == rows
    parts = dict(rows)
    said = f"Published {parts['published']} from {parts['from']}"
    assert reporting.receipt_sentence(receipt) == said + (f", replacing {parts['replacing']}." if "replacing" in parts
                                                          else ".")
    assert max(len(v) for _, v in rows) <= 70  # fits a cell at the UI's 1600 px beside the field column


@pytest.mark.parametrize(("ignored", "expected"), [
    (["y_hat_lo95", "y_hat_hi95"], [("not published", "no 95% interval (y_hat_lo95, y_hat_hi95 empty)")]),
    (["y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95"],
     [("not published", "no 80%/95% intervals (y_hat_lo95, y_hat_lo80, y_hat_hi80, y_hat_hi95 empty)")]),
    (["y_hat_lo95", "y_hat_hi95", "extra"], [("not published", "no 95% interval (y_hat_lo95, y_hat_hi95 empty)"),
                                             ("ignored columns", "extra")]),
    (["extra"], [("ignored columns", "extra")]),
    ([], []),
])
def test_the_receipt_says_which_interval_it_did_not_publish(ignored, expected):
    """uiB46: the receipt's 'ignored columns: y_hat_lo95, y_hat_hi95' did not tell a user that these are the interval
    columns this model left empty (null in every row, not published); it says so, other columns as before."""
    table = reporting.receipt_table({**RECEIPT, "ignored_columns": ignored})
    assert [(r["field"], r["value"]) for r in table if r["field"] in ("not published", "ignored columns")] == expected


@pytest.mark.parametrize(("home", "location", "duckdb_path", "expected"), [
    # under the home: the home a row of its own, the paths relative to it (the cell does not wrap in the UI)
    ("/srv/fc/home", RECEIPT["location"], RECEIPT["duckdb_path"],
     [("home", "/srv/fc/home"),
      ("stored in (under home)", "warehouse/forecasts/dataset=us_employment/as_of=2019-09-01/part-3f2a.parquet"),
      ("DuckDB views (under home)", "warehouse/forecasts.duckdb")]),
    ("/srv/fc/home/", RECEIPT["location"], None,  # a trailing slash: the same home
     [("home", "/srv/fc/home"),
      ("stored in (under home)", "warehouse/forecasts/dataset=us_employment/as_of=2019-09-01/part-3f2a.parquet")]),
    # not under it (a shared folder, a URL, a PostgreSQL table): shown as it is, no home row
    ("/srv/fc/other", RECEIPT["location"], None, [("stored in", RECEIPT["location"])]),
    ("/srv/fc/home", "s3://bucket/fc/forecasts/x.parquet", None, [("stored in", "s3://bucket/fc/forecasts/x.parquet")]),
    ("/srv/fc/home", "postgresql://fc@db/fc (schema fc) table fc.forecasts", None,
     [("stored in", "postgresql://fc@db/fc (schema fc) table fc.forecasts")]),
    (None, RECEIPT["location"], None, [("stored in", RECEIPT["location"])]),  # no home given
    ("/srv/fc/home/warehouse/forecasts/dataset=us_employment", "/srv/fc/home", None, [("stored in", "/srv/fc/home")]),
])
def test_the_receipt_shows_paths_under_the_home_relative_to_it_and_no_bare_run_id(home, location, duckdb_path,
                                                                                    expected):
    """artifacts19: the receipt's 'flow run' row was the bare id of the run whose page shows it, and its 'stored in'
    path was cut at the page's edge in the UI."""
    receipt = {**RECEIPT, "location": location, "duckdb_path": duckdb_path}
    rows = reporting.receipt_table(receipt, home=home)
    assert [(r["field"], r["value"]) for r in rows[2:-2]] == expected
    assert [r["field"] for r in rows[-2:]] == ["models (fallbacks included)", "content hash"]
    assert "flow run" not in [r["field"] for r in rows] and RECEIPT["run_id"] not in str(rows)


@pytest.mark.parametrize(("sentence", "said"), [
    ("The declared covariates (promo) are not used by damped.", "the declared covariates (promo) are not used by damped."),
    ("Intermittent counts without a declared y_min", "intermittent counts without a declared y_min"),
    ("theta-v3 was trained on data up to 2019-08-01", "theta-v3 was trained on data up to 2019-08-01"),
    ("4 series fell back to damped", "4 series fell back to damped"),
    ("DuckDB could not be written", "DuckDB could not be written"),
    ("Gru-v1 was trained", "Gru-v1 was trained"),  # a name that leads keeps its spelling
    # proper nouns keep their case (a capitalized one read as an ordinary word: 'Note: prefect could not be reached')
    ("Prefect could not be reached: the run's artifacts were not written",
     "Prefect could not be reached: the run's artifacts were not written"),
    ("Prefect's API answered 503", "Prefect's API answered 503"),
    ("Parquet files of 2019-06-01 were kept", "Parquet files of 2019-06-01 were kept"),
    ("PostgreSQL refused the connection", "PostgreSQL refused the connection"),
    ("S3 was not reachable", "S3 was not reachable"),
    ("December has no actuals yet", "December has no actuals yet"),
    ("Prefecture data was dropped", "prefecture data was dropped"),  # a word that only starts like a name
    ("", ""),
])
def test_a_note_reads_on_after_its_colon(sentence, said):
    """The receipt read 'Note: The declared covariates (promo) are not used by damped', and 'Note: prefect ...' of a
    note led by a proper noun."""
    assert reporting.after_colon(sentence) == said


INTERMITTENT = "The data was classed intermittent: 30 of 30 series have an average interval between demands above 1.32."
CUT = "Intermittent counts without a declared y_min: forecasts and intervals are cut at 0."


@pytest.mark.parametrize(("note", "paragraphs"), [
    ([INTERMITTENT, CUT], [INTERMITTENT, CUT]),  # a retrain's notes: ran on as one paragraph and one table row
    ([INTERMITTENT, "", CUT], [INTERMITTENT, CUT]),
    (f"{INTERMITTENT} {CUT}", [f"{INTERMITTENT} {CUT}"]),  # one string stays one note
    ([], []),
    ("", []),
])
def test_each_note_of_a_run_is_its_own_paragraph_of_the_receipt_and_the_table_counts_them(note, paragraphs):
    """Regression (ui21): each note was a paragraph of the description and a row of the table too, the row cut at
    the page's edge (a 4-note retrain's receipt said each note twice); the table's last row counts them."""
    receipt = {"dataset": "parts", "as_of": "2024-04-29T00:00:00", "rows": 420, "n_series": 30, "model": "croston",
               "model_version": "croston-v1", "notes": []}
    scope = reporting.Scope(dataset="parts", as_of=datetime(2024, 4, 29))
    described = reporting.receipt_description(receipt, scope, note=note)
    assert described.split("\n\n")[1:] == [f"Note: {p[0].lower()}{p[1:]}" for p in paragraphs]  # not 'Note: The'
    rows = reporting.receipt_table(receipt, note)
    assert not any(p in str(r["value"]) for p in paragraphs for r in rows)
    counted = [r["value"] for r in rows if r["field"] == "notes"]
    assert counted == ([f"{len(paragraphs)}, above the table"] if paragraphs else [])


def test_worker_cells_shorten_the_names_prefect_generates_alone():
    """newuser50b: a worker started without --name is `ProcessWorker <uuid4>`, 50 characters in a table cell that
    does not wrap: the backfill tables write its id short, as many characters as tell the workers apart; a name
    given with --name stays whole."""
    a, b = "ProcessWorker ae940fa3-1ab6-4e72-aa68-0791f4fd740a", "ProcessWorker ae940fa3-9999-4e72-aa68-0791f4fd740a"
    outcomes = [{"worker": a}, {"worker": b}, {"worker": "gpu-box-1"}, {"worker": "DockerWorker x"}, {"worker": None}]
    assert reporting.worker_cells(outcomes) == {a: "ProcessWorker ae940fa3-1", b: "ProcessWorker ae940fa3-9",
                                                "gpu-box-1": "gpu-box-1", "DockerWorker x": "DockerWorker x"}
    rows = reporting.backfill_rows([
        {"as_of": "2018-10-01T00:00:00", "status": "published", "rows": 1776, "model": "hybrid-v1", "run_id": "r1",
         "flow_run": "forecast us_employment 2018-10-01 (backfill)", "worker": a, "error": None},
        {"as_of": "2018-11-01T00:00:00", "status": "skipped", "rows": 0, "model": None, "run_id": None,
         "flow_run": None, "worker": None, "error": "already published (overwrite=False)"},
    ])
    assert [r["worker"] for r in rows] == ["ProcessWorker ae940fa3", "—"]


def test_backfill_rows_fill_every_column():
    rows = reporting.backfill_rows([
        {"as_of": "2018-10-01T00:00:00", "status": "published", "rows": 24, "model": "gru-v1", "run_id": "r1",
         "flow_run": "forecast tiny 2018-10-01 (backfill)", "worker": "in-process", "error": None},
        {"as_of": "2018-11-01T00:00:00", "status": "skipped", "rows": 0, "model": None, "run_id": None,
         "flow_run": None, "worker": None, "error": "already published (overwrite=False)"},
    ])
    # ui43: no worker column where every date ran here (the CLI's table has none; the artifact's read 'in-process'
    # on every row and cut the detail at the page's edge)
    assert [list(r) for r in rows] == [[c for c in reporting.BACKFILL_COLUMNS if c != "worker"]] * 2
    assert rows[0] == {"as_of (UTC)": "2018-10-01", "status": "published", "rows": "24", "model": "gru-v1",
                       "flow run": "forecast tiny 2018-10-01 (backfill)", "detail": "—"}
    assert all(v not in (None, "") for r in rows for v in r.values())
    on_worker = reporting.backfill_rows([
        {"as_of": "2018-10-01T00:00:00", "status": "published", "rows": 24, "model": "gru-v1", "run_id": "r1",
         "flow_run": "forecast tiny 2018-10-01 (backfill)", "worker": "node-a", "error": None},
        {"as_of": "2018-11-01T00:00:00", "status": "skipped", "rows": 0, "model": None, "run_id": None,
         "flow_run": None, "worker": None, "error": "already published (overwrite=False)"},
    ])
    assert [list(r) for r in on_worker] == [list(reporting.BACKFILL_COLUMNS)] * 2
    assert [r["worker"] for r in on_worker] == ["node-a", "—"]
    # a skipped date ran no flow run here: the run that published it earlier is named in its detail, not as
    # a bare id under 'flow run' beside the names of this backfill's runs
    skipped = reporting.backfill_rows([{"as_of": "2019-01-01T00:00:00", "status": "skipped", "rows": 48,
                                        "model": "damped-v1", "run_id": "9a61bbeb", "flow_run": None, "worker": None,
                                        "error": "already published (overwrite=False)"}])[0]
    assert skipped["flow run"] == "—"
    assert skipped["detail"] == "published by flow run 9a61bbeb: already published (overwrite=False)"
    # each version of the key says its range and outcome (the UI's history lists descriptions)
    outcomes = [{"status": "published"}, {"status": "skipped"}, {"status": "skipped"}]
    assert reporting.backfill_description("backfill emp 2019-01-01..2019-03-01", outcomes) == \
        "Backfill emp 2019-01-01..2019-03-01: 1 published, 2 skipped, 0 failed"
    # bf43: a date whose publish another run's replaced since is counted apart, not as published nor skipped
    assert reporting.backfill_description("backfill emp 2019-01-01..2019-03-01", [*outcomes, {"status": "replaced"}]) \
        == "Backfill emp 2019-01-01..2019-03-01: 1 published, 1 replaced, 2 skipped, 0 failed"


RUN = "0b8f2a1c-5d3e-4f0a-9d7e-1b2c3d4e5f60"


@pytest.mark.parametrize(("outcome", "detail"), [
    # this backfill ran nothing for the date: the run that published it first, short, before the reason
    ({"run_id": RUN, "flow_run": None, "error": "already published (overwrite=False)"},
     "published by flow run 0b8f2a1c: already published (overwrite=False)"),
    ({"run_id": RUN, "flow_run": None,
      "error": "published by another run since this backfill started (overwrite=False)"},
     "published by flow run 0b8f2a1c: published by another run since this backfill started (overwrite=False)"),
    ({"run_id": None, "flow_run": None, "error": "already published (overwrite=False)"},
     "already published (overwrite=False)"),
    # the date ran its own flow run (named in its column): its id is not said to be a publisher's
    ({"run_id": RUN, "flow_run": "forecast tiny 2019-02-01 (backfill)",
      "error": "unchanged: tiny's 3 series' next periods ... are the same, so nothing new is published"},
     "unchanged: tiny's 3 series' next periods ... are the same, so nothing new is published"),
], ids=["published-before", "published-meanwhile", "publisher-unknown", "ran-its-own-run"])
def test_a_skipped_backfill_date_names_its_publisher(outcome, detail):
    """ui31: a skipped date's detail ended ', by flow run 0b8f2a1c-5d3e-4f…', its id cut at the page's edge (a
    table cell does not wrap in the UI; ui32 saw about 40 characters of it at 1600 pixels), and a date that ran its
    own flow run (nothing new to publish, a worker's run) named that run as the one that had published it. The
    publisher comes first, short; the description says each one whole."""
    row = reporting.backfill_rows([{"as_of": "2019-02-01T00:00:00", "status": "skipped", "rows": 0,
                                    "model": "damped-v1", "worker": None, **outcome}])[0]
    assert row["detail"] == detail


def test_skipped_dates_publishers_are_told_apart_and_said_whole_above_the_table():
    """Two publishers sharing their first 8 characters get as many as tell them apart; the description says each
    date's publisher whole, up to 10 dates."""
    twin = RUN[:9] + "ffff" + RUN[13:]
    outcomes = [{"as_of": f"2019-{m:02d}-01T00:00:00", "status": "skipped", "rows": 24, "model": "damped-v1",
                 "run_id": run, "flow_run": None, "worker": None, "error": "already published (overwrite=False)"}
                for m, run in ((1, RUN), (2, twin), (3, None))]
    rows = reporting.backfill_rows(outcomes)
    assert [r["detail"].split(":")[0] for r in rows] == [
        "published by flow run 0b8f2a1c-5", "published by flow run 0b8f2a1c-f", "already published (overwrite=False)"]
    described = reporting.backfill_description("backfill tiny 2019-01-01..2019-03-01", outcomes).split("\n\n")
    assert described == ["Backfill tiny 2019-01-01..2019-03-01: 0 published, 3 skipped, 0 failed",
                         f"Skipped, published before by the flow runs: 2019-01-01 {RUN}, 2019-02-01 {twin}"]
    many = [dict(outcomes[0], as_of=f"2019-01-{d:02d}T00:00:00") for d in range(1, 13)]
    said = reporting.backfill_description("backfill tiny 2019-01-01..2019-01-12", many).split("\n\n")[1]
    assert said.count(RUN) == 10 and said.endswith(f"2019-01-10 {RUN} and 2 more"), said


ERROR = ("source 'shops': 12 of 183 rows quarantined (6.6% > threshold 5.0%): y_not_number=12; e.g. source_row 35 "
         "(line 37 of shops.csv): y 'n/a' is not a number; see /home/q/shops/2024-03-01T00-00-00/quarantine.parquet; "
         "to run with these rows left out, raise [validation] quarantine_threshold "
         "(FLOWCAST_VALIDATION__QUARANTINE_THRESHOLD=0.07)")


@pytest.mark.parametrize("failed", [0, 1, 2])
def test_a_failed_backfill_date_says_its_error_above_the_table(failed):
    """ui31: a failed date's error sat in the table's detail cell, which does not wrap in the UI: the page showed
    "source 'shops': 12 of 183 rows quarantined (6.6% >" and neither the cause's end nor its fix. Each failed
    date's error is a paragraph of the description, whole, and its cell points there."""
    outcomes = [{"as_of": f"2024-0{3 + i}-01T00:00:00", "status": "failed", "rows": 0, "model": None,
                 "flow_run": f"forecast shops 2024-0{3 + i}-01 (backfill)", "worker": "in-process",
                 "error": ERROR.replace("12 of", f"{12 + i} of")} for i in range(failed)]
    outcomes.append({"as_of": "2024-06-01T00:00:00", "status": "published", "rows": 21, "model": "theta-v1",
                     "flow_run": "forecast shops 2024-06-01 (backfill)", "worker": "in-process", "error": None})
    described = reporting.backfill_description("backfill shops 2024-03-01..2024-06-01", outcomes)
    paragraphs = described.split("\n\n")
    assert paragraphs[0] == f"Backfill shops 2024-03-01..2024-06-01: 1 published, 0 skipped, {failed} failed"
    assert paragraphs[1:] == [f"2024-0{3 + i}-01 failed: " + md_text(ERROR.replace("12 of", f"{12 + i} of"))
                              for i in range(failed)]
    rows = reporting.backfill_rows(outcomes)
    assert [r["detail"] for r in rows] == ["failed: the error is above the table"] * failed + ["—"]
    assert not any("quarantine_threshold" in str(v) for r in rows for v in r.values())


@pytest.mark.parametrize("n", [1, 12])
def test_a_rewritten_backfill_date_says_what_it_replaced_above_the_table(n):
    """ui40: a date an --overwrite backfill rewrote showed 'rewritten: it replaced the 48 rows run 369eb2a9-8fa' in
    its detail cell, which does not wrap in the UI: the rest of the run's id, its model and '(identical content)'
    were cut at the page's edge. The description says each date's note whole, up to 10; the cell points there."""
    note = f"rewritten: it replaced the 48 rows run {RUN} published (theta-v2) (identical content)"
    outcomes = [{"as_of": f"2021-01-{d:02d}T00:00:00", "status": "published", "rows": 48, "model": "theta-v2",
                 "run_id": "new", "flow_run": f"forecast shops 2021-01-{d:02d} (backfill)", "worker": "in-process",
                 "error": None, "note": note} for d in range(1, n + 1)]
    rows = reporting.backfill_rows(outcomes)
    assert [r["detail"] for r in rows] == ["rewritten: what it replaced is above the table"] * n
    said = reporting.backfill_description("backfill shops 2021-01-01..2021-01-12", outcomes).split("\n\n")
    whole = md_text(f"it replaced the 48 rows run {RUN} published (theta-v2) (identical content)")
    assert said[1].startswith(f"Rewritten: 2021-01-01 {whole}"), said
    assert said[1].count(RUN) == min(n, 10) and said[1].endswith(whole if n == 1 else "; and 2 more"), said


@pytest.mark.parametrize(("as_of", "rows", "shown"), [
    ("2019-09-01T00:00:00", 1776, ("2019-09-01", "1,776")),  # ui30: the sample's backfill showed '1776'
    ("2019-09-01T06:30:00", 0, ("2019-09-01 06:30", "0")),  # the header says UTC (`utc_text(zone=False)`)
    ("2019-09-01T08:30:00+02:00", 1234567, ("2019-09-01 06:30", "1,234,567")),  # an offset: the UTC instant
])
def test_backfill_rows_read_like_the_other_tables(as_of, rows, shown):
    """ui30: the backfill summary showed '1776' and a bare 'as_of' beside the leaderboard's and realized
    accuracy's 'as_of (UTC)' and thousands separators; its as_ofs are UTC instants (`backfill_dates`)."""
    row = reporting.backfill_rows([{"as_of": as_of, "status": "published", "rows": rows, "model": "rnn-v1"}])[0]
    assert (row["as_of (UTC)"], row["rows"]) == shown


# ----------------------------------------------------------------------------------------- plot
def _plot_frames():
    hist = pl.DataFrame({"unique_id": ["a"] * 24 + ["b"] * 24,
                         "ds": [datetime(2017 + t // 12, t % 12 + 1, 1) for t in range(24)] * 2,
                         "y": [float(t) for t in range(24)] * 2})
    fc = pl.DataFrame({"unique_id": ["a"] * 3 + ["b"] * 3, "ds": [datetime(2019, m, 1) for m in (1, 2, 3)] * 2,
                       "y_hat": [24.0, 25.0, 26.0] * 2})
    fc = fc.with_columns(y_hat_lo80=pl.col("y_hat") - 1, y_hat_hi80=pl.col("y_hat") + 1,
                         y_hat_lo95=pl.col("y_hat") - 2, y_hat_hi95=pl.col("y_hat") + 2)
    actuals = pl.DataFrame({"unique_id": ["a", "a"], "ds": [datetime(2019, 1, 1), datetime(2019, 2, 1)],
                            "y": [23.5, 26.0]})
    return hist, fc, actuals


def test_forecast_plot_is_large_titled_with_names_and_units_with_both_bands_and_late_actuals(tmp_path):
    import matplotlib.pyplot as plt

    hist, fc, actuals = _plot_frames()
    fig = reporting.forecast_figure(hist, fc, title="t", labels={"a": "Retail Trade"}, unit="thousands of persons",
                                    actuals=actuals, as_of=datetime(2018, 12, 1))
    try:
        w, h = fig.get_size_inches() * reporting.PLOT_DPI
        assert w >= 1100 and h >= 350  # large, yet shown by the UI near its own size (labels stay readable)
        ax_a, ax_b = fig.axes[:2]
        assert ax_a.get_title(loc="left") == "Retail Trade (a)" and ax_b.get_title(loc="left") == "b"
        assert reporting.panel_title("CEU4348800001", "Transportation and Warehousing: Support Activities for "
                                     "Transportation") == "Transportation and Warehousing: Sup… (CEU4348800001)"
        assert ax_a.get_ylabel() == "thousands of persons"
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert {"observed", "95% interval", "80% interval", "forecast", "actual (after as_of)"} <= set(legend)
        assert "as_of" in legend  # ui19: the dashed line where the run's knowledge ends was in no legend
        assert "actual (after as_of)" not in [line.get_label() for line in ax_b.get_lines()]  # b has none
        px = lambda pt: pt * reporting.PLOT_DPI / 72
        sizes = [t.get_fontsize() for t in ax_a.get_xticklabels() + ax_a.get_yticklabels()]
        sizes += [ax_a.title.get_fontsize(), ax_a.yaxis.label.get_fontsize()]
        sizes += [t.get_fontsize() for t in fig.legends[0].get_texts()]
        assert min(px(s) for s in sizes) >= 12  # >= 10 px even when the UI shows it at 85 %
    finally:
        plt.close(fig)
    png = reporting.plot_forecasts(hist, fc, tmp_path / "p.png", labels={"a": "Retail Trade"})
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("every", "n", "horizon"), [("1mo", 48, 6), ("1mo", 48, 18), ("1d", 48, 14),
                                                    ("1h", 48, 24), ("1q", 48, 8), ("1y", 40, 6)])
def test_forecast_plot_time_labels_never_overlap(every, n, horizon):
    """The time axis of a panel (about 5 inches wide) named every tick in full: the monthly panels of a
    retrain on us_employment data read '2015-072016-012016-072017-01...' (9 'YYYY-MM' labels run
    together). Each panel's labels are drawn apart, whatever the frequency."""
    import matplotlib.pyplot as plt

    ds = pl.datetime_range(datetime(2015, 1, 1), datetime(2100 if every == "1y" else 2030, 1, 1), every,
                           eager=True)[: n + horizon]
    hist = pl.DataFrame({"unique_id": "a", "ds": ds[:n], "y": [float(i % 12) for i in range(n)]})
    fc = pl.DataFrame({"unique_id": "a", "ds": ds[n:], "y_hat": 1.0})
    for frames in ((hist, fc), (pl.concat([hist, hist.with_columns(unique_id=pl.lit("b"))]),
                                pl.concat([fc, fc.with_columns(unique_id=pl.lit("b"))]))):
        fig = reporting.forecast_figure(*frames, as_of=ds[n - 1])
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            for ax in fig.axes:
                labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
                assert len(labels) >= 2, [t.get_text() for t in labels]
                boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
                gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(boxes)]
                assert min(gaps) > 2, ([t.get_text() for t in labels], gaps)
        finally:
            plt.close(fig)


def test_realized_accuracy_plot_is_as_large_and_readable_as_the_forecast_plot(tmp_path, monkeypatch):
    """The realized-accuracy artifact's plot was 7 x 3 inches at 80 dpi (560 px) with a 7 pt legend and a
    9 pt title: 8 and 10 px high on screen, where the forecast plot keeps every label >= 12 px."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from flowcast.ops import accuracy

    months = [datetime(2019, m, 1) for m in range(1, 9)]
    realized = pl.DataFrame({"dataset": "emp", "as_of": months, "model": "damped", "model_version": "damped-v1",
                             "step": 1, "n": 8, "n_mase": 8, "mae": 10.0, "mase": [0.3 - 0.02 * i for i in range(8)],
                             "mase_snaive": 0.7})
    drawn = []  # the figure and dpi it is saved at
    real_save = reporting.save_figure
    monkeypatch.setattr(reporting, "save_figure", lambda fig, path, dpi=80: drawn.append((fig, dpi)) or real_save(
        fig, path, dpi=dpi))
    png = accuracy.plot_realized(realized, {"damped-v1": 0.14}, tmp_path / "r.png", title="emp: realized vs promised")
    assert png is not None
    fig, dpi = drawn[0]
    try:
        px = lambda pt: pt * dpi / 72
        ax = fig.axes[0]
        texts = ax.get_xticklabels() + ax.get_yticklabels() + ax.get_legend().get_texts()
        sizes = [t.get_fontsize() for t in texts] + [ax.title.get_fontsize(), ax.yaxis.label.get_fontsize()]
        assert min(px(s) for s in sizes) >= 12, sizes
    finally:
        plt.close(fig)
    with Image.open(png) as im:
        assert im.width >= 1100, im.size


@pytest.mark.parametrize("as_ofs", [[datetime(2019, 3, 1)], [datetime(2019, 3, 1, 10)] * 2,
                                    [datetime(2019, 3, 1), datetime(2019, 6, 1)]])
def test_realized_accuracy_plot_of_one_scored_as_of_spans_days_not_years(tmp_path, monkeypatch, as_ofs):
    """Regression: with a single scored as_of (the first run after one publish) the plot's x-axis ran from 2016 to
    2021, one dot in the middle of five years of ticks. One as_of (of one model or two) is shown a week each side;
    several keep their own range."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from flowcast.ops import accuracy

    realized = pl.DataFrame({"dataset": "emp", "as_of": as_ofs, "model": ["damped", "theta"][:len(as_ofs)],
                             "model_version": "damped-v1", "step": 1, "n": 8, "n_mase": 8, "mae": 10.0, "mase": 0.3,
                             "mase_snaive": 0.7})
    drawn = []
    real_save = reporting.save_figure
    monkeypatch.setattr(reporting, "save_figure", lambda fig, path, dpi=80: drawn.append(fig) or real_save(
        fig, path, dpi=dpi))
    assert accuracy.plot_realized(realized, {"damped-v1": 0.2}, tmp_path / "r.png", title="emp") is not None
    try:
        lo, hi = (mdates.num2date(v).replace(tzinfo=None) for v in drawn[0].axes[0].get_xlim())
        if len(set(as_ofs)) == 1:
            assert (lo, hi) == (as_ofs[0] - timedelta(days=7), as_ofs[0] + timedelta(days=7))
        else:
            assert lo <= as_ofs[0] and as_ofs[-1] <= hi and hi - lo < timedelta(days=120)
    finally:
        plt.close(drawn[0])


@pytest.mark.parametrize("n_as_ofs", [1, 3])
def test_realized_accuracy_plot_draws_the_promise_it_names(tmp_path, monkeypatch, n_as_ofs):
    """ui43: with one scored as_of (a forecast run the day after the first retrain) the legend named 'backtest
    promised' and the plot drew nothing of it: a step through one point is no line. Each as_of's promise is marked
    inside the axes, in the legend's colour."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgb

    from flowcast.ops import accuracy

    as_ofs = [datetime(2018, 10 + i, 1) for i in range(n_as_ofs)]
    realized = pl.DataFrame({"dataset": "tiny", "as_of": as_ofs, "model": "gru", "model_version": "gru-v1",
                             "step": 1, "n": 4, "n_mase": 4, "mae": 0.14, "mase": 0.02, "mase_snaive": 1.0})
    drawn = []
    real_save = reporting.save_figure
    monkeypatch.setattr(reporting, "save_figure", lambda fig, path, dpi=80: drawn.append(fig) or real_save(
        fig, path, dpi=dpi))
    assert accuracy.plot_realized(realized, {"gru-v1": 0.3935}, tmp_path / "r.png", title="tiny") is not None
    fig = drawn[0]
    try:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())[:, :, :3].astype(float) / 255
        box = fig.axes[0].get_window_extent()  # display pixels, from the bottom left
        h = image.shape[0]
        inside = image[int(h - box.y1) + 2:int(h - box.y0) - 2, int(box.x0) + 2:int(box.x1) - 2]
        red = np.all(np.abs(inside - np.array(to_rgb("C3"))) < 0.1, axis=-1)
        assert red.sum() >= 20, red.sum()  # the promise's mark (0.3935), not only its legend entry
    finally:
        plt.close(fig)


@pytest.mark.parametrize(("as_ofs", "labels"), [
    ([datetime(2019, 7, 1), datetime(2019, 8, 1)], ["2019-07-01", "2019-08-01"]),
    ([datetime(2019, 9, 1)], ["2019-09-01"]),
    ([datetime(2019, 8, 1), datetime(2026, 12, 5, 18, 48)], ["2019-08-01 00:00", "2026-12-05 18:48"]),
])
def test_realized_accuracy_plot_ticks_the_scored_as_ofs(tmp_path, monkeypatch, as_ofs, labels):
    """Regression (ui29): two monthly scored as_ofs (a backfill of 2019-07-01 and 2019-08-01) were ticked 'Jul, 08,
    15, 22, Aug': days at which nothing was scored. A few as_ofs are ticked each, named in full (with the time where
    one has one); many keep the date locator."""
    import matplotlib.pyplot as plt

    from flowcast.ops import accuracy

    def ticks(days: list[datetime]) -> list[str]:
        realized = pl.DataFrame({"dataset": "emp", "as_of": days, "model": "damped", "model_version": "damped-v1",
                                 "step": 1, "n": 8, "n_mase": 8, "mae": 10.0, "mase": 0.3, "mase_snaive": 0.7})
        drawn: list = []
        real_save = reporting.save_figure
        monkeypatch.setattr(reporting, "save_figure", lambda fig, path, dpi=80: drawn.append(fig) or real_save(
            fig, path, dpi=dpi))
        assert accuracy.plot_realized(realized, {"damped-v1": 0.2}, tmp_path / "r.png", title="emp") is not None
        try:
            drawn[0].canvas.draw()
            return [t.get_text() for t in drawn[0].axes[0].get_xticklabels() if t.get_text()]
        finally:
            plt.close(drawn[0])

    assert ticks(as_ofs) == labels
    many = ticks([datetime(2019, m, 1) for m in range(1, 13)])  # twelve: fewer ticks than as_ofs, short labels
    assert 2 <= len(many) < 12 and all(len(t) <= 7 for t in many), many


def test_realized_accuracy_plot_draws_as_ofs_of_unknown_lookahead_apart_from_honest_ones(tmp_path, monkeypatch):
    """Regression: an as_of whose model may have been trained on data after it (lookahead null: its version gone,
    its publish older than the record) was drawn as an honest one, the same filled dot on the same line; and an
    as_of with one honest and one unknown model read honest (max() skipped the null). Such as_ofs are hollow
    diamonds, labelled, and the artifact's text and table say so."""
    import matplotlib.pyplot as plt

    from flowcast.evaluation.realized import assess_decay, summary_by_as_of
    from flowcast.ops import accuracy

    months = [datetime(2019, m, 1) for m in range(1, 7)]
    flags = [False, None, False, True, False, None]
    realized = pl.DataFrame({"dataset": "emp", "as_of": months, "model": "damped", "model_version": "damped-v1",
                             "step": 1, "n": 8, "n_mase": 8, "mae": 10.0, "mase": [0.3, 0.9, 0.3, 0.1, 0.3, 0.8],
                             "mase_snaive": 0.7, "lookahead": pl.Series(flags, dtype=pl.Boolean)})
    # a second model (a fallback) of March whose lookahead is not known: March is not known to be honest
    mixed = pl.concat([realized, realized.filter(pl.col("as_of") == months[2]).with_columns(
        pl.lit("theta").alias("model"), pl.lit(None, pl.Boolean).alias("lookahead"))])
    assert summary_by_as_of(mixed)["lookahead"].to_list() == [False, None, None, True, False, None]
    drawn = []
    real_save = reporting.save_figure
    monkeypatch.setattr(reporting, "save_figure", lambda fig, path, dpi=80: drawn.append(fig) or real_save(
        fig, path, dpi=dpi))
    assert accuracy.plot_realized(realized, {"damped-v1": 0.3}, tmp_path / "r.png", title="emp") is not None
    fig = drawn[0]
    try:
        lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
        unknown = next(v for k, v in lines.items() if k.startswith("no record whether its model"))
        assert list(unknown.get_xdata()) == [months[1], months[5]] and unknown.get_marker() == "D"
        assert unknown.get_markerfacecolor() == "none"
        honest = lines["realized MASE"]
        assert list(honest.get_markevery()) == [0, 2, 4]  # dots only where the model is known not to have seen them
        ahead = lines["model trained after as_of (not judged)"]
        assert list(ahead.get_xdata()) == [months[3]]
    finally:
        plt.close(fig)
    decay = assess_decay(realized, {"damped-v1": 0.3}, dataset="emp", window=12, tolerance=0.25, min_points=1)
    assert decay.lookahead_unknown == 2
    text = accuracy.markdown(accuracy.RealizedOutcome(dataset="emp", scored=[], rows_written=0, realized=realized,
                                                      decay=decay), {"damped-v1": 0.3}, None)
    assert "2 judged as_ofs (lookahead `unknown` in the table, hollow diamonds in the plot) have no record" in text
    one = accuracy.markdown(accuracy.RealizedOutcome(dataset="emp", scored=[], rows_written=0, realized=realized,
                                                     decay=dataclasses.replace(decay, lookahead_unknown=1)),
                            {"damped-v1": 0.3}, None)
    assert ("1 judged as_of (lookahead `unknown` in the table, hollow diamonds in the plot) has no record of whether "
            "its model was trained on data after it: it is judged as honest, and may have seen the actuals it is "
            "scored on.") in one
    assert "| unknown |" in text and "| yes |" in text


@pytest.mark.parametrize(("promised_rmsse", "metric", "label", "promise_col", "snaive_drawn"), [
    (None, "mase", "realized MASE", "promised MASE", True),  # MASE-ranked: as before
    # ranked on RMSSE (intermittent): seasonal naive's RMSSE on the same points, as MASE's is drawn on MASE
    ({"croston-v1": 0.5}, "rmsse", "realized RMSSE", "promised RMSSE", True),
])
def test_the_realized_accuracy_artifact_shows_the_metric_the_verdict_was_judged_on(
        tmp_path, monkeypatch, promised_rmsse, metric, label, promise_col, snaive_drawn):
    """A verdict judged on RMSSE (data classed intermittent) drew realized MASE against the promised MASE and seasonal
    naive: the plot draws realized RMSSE against the promised RMSSE and seasonal naive's RMSSE on the same points
    (its MASE was drawn on neither), the table names the promised column so; a verdict on MASE draws what it drew."""
    import matplotlib.pyplot as plt

    from flowcast.evaluation.realized import assess_decay
    from flowcast.ops import accuracy

    months = [datetime(2019, m, 1) for m in range(1, 5)]
    realized = pl.DataFrame({"dataset": "parts", "as_of": months, "model": "croston", "model_version": "croston-v1",
                             "step": 1, "n": 8, "n_mase": 8, "mae": 1.0, "mase": 0.9, "rmsse": [0.5, 0.6, 0.7, 0.8],
                             "mase_snaive": 1.1, "rmsse_snaive": 1.3})
    decay = assess_decay(realized, {"croston-v1": 0.8}, dataset="parts", window=3, tolerance=0.25, min_points=1,
                         promised_rmsse=promised_rmsse)
    assert decay.metric == metric
    promised = promised_rmsse or {"croston-v1": 0.8}
    drawn = []
    real_save = reporting.save_figure
    monkeypatch.setattr(reporting, "save_figure", lambda fig, path, dpi=80: drawn.append(fig) or real_save(
        fig, path, dpi=dpi))
    assert accuracy.plot_realized(realized, promised, tmp_path / "r.png", title="parts", metric=metric) is not None
    fig = drawn[0]
    try:
        lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
        drawn_values = [float(v) for v in lines[label].get_ydata()]
        assert drawn_values == (realized["rmsse"] if metric == "rmsse" else realized["mase"]).to_list()
        assert ("seasonal naive, same points" in lines) is snaive_drawn
        assert [float(v) for v in lines["seasonal naive, same points"].get_ydata()] == [
            1.3 if metric == "rmsse" else 1.1] * 4
        assert [float(v) for v in lines["backtest promised"].get_ydata()] == [promised["croston-v1"]] * 4
        assert fig.axes[0].get_ylabel() == label.split()[-1]
    finally:
        plt.close(fig)
    text = accuracy.markdown(accuracy.RealizedOutcome(dataset="parts", realized=realized, decay=decay), promised, None)
    header = next(line for line in text.splitlines() if line.startswith("| as\\_of")).replace("\\_", "_")
    assert header.endswith(f"| {promise_col} |") and ("RMSSE" in header) is (metric == "rmsse")
    assert ("realized RMSSE 0.7 over the last 3" in text) is (metric == "rmsse")
    assert f"## Realized accuracy of parts: {'**degraded**' if decay.degraded else 'healthy'} on {metric.upper()}\n" in text


def test_the_realized_accuracy_artifact_of_a_window_of_mase_and_rmsse_ranked_versions_shows_both_promises():
    """A window of a MASE-ranked version (theta-v0) and an RMSSE-ranked one (croston-v1) judges each on its own
    metric: the artifact says so, and its table has the MASE and the RMSSE promise of each as_of's version."""
    from flowcast.evaluation.realized import assess_decay
    from flowcast.ops import accuracy

    months = [datetime(2019, m, 1) for m in range(1, 4)]
    realized = pl.DataFrame({"dataset": "parts", "as_of": months, "model": "x",
                             "model_version": ["theta-v0", "croston-v1", "croston-v1"], "step": 1, "n": 8, "n_mase": 8,
                             "mae": 1.0, "mase": 0.9, "rmsse": [None, 0.6, 0.7], "mase_snaive": 1.1,
                             "rmsse_snaive": [None, 1.3, 1.3]})
    mase, rmsse = {"theta-v0": 0.85, "croston-v1": 0.95}, {"theta-v0": None, "croston-v1": 0.55}
    decay = assess_decay(realized, mase, dataset="parts", window=3, tolerance=0.25, min_points=1, promised_rmsse=rmsse)
    assert decay.metric == "mase+rmsse" and not decay.degraded
    text = accuracy.markdown(accuracy.RealizedOutcome(dataset="parts", realized=realized, decay=decay), mase, None,
                             rmsse).replace("\\_", "_")
    assert "## Realized accuracy of parts: healthy on MASE and RMSSE" in text
    assert "each version's forecasts are judged on the metric it was ranked on" in text
    assert "- on RMSSE: realized RMSSE 0.65 over the last 2 scored as_ofs" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| as_of"))
    cells = [c.strip() for c in lines[header].split("|")]
    rows = [[c.strip() for c in lines[header + 2 + k].split("|")] for k in range(3)]
    assert [r[cells.index("promised MASE")] for r in rows] == ["0.85", "0.95", "0.95"]
    assert [r[cells.index("promised RMSSE")] for r in rows] == ["", "0.55", "0.55"]


@pytest.mark.parametrize(("on_rmsse", "flags", "heads"), [
    (False, [False, False], ["as_of (UTC)", "points", "MAE", "MASE", "sMAPE", "cov80", "cov95", "snaive MASE",
                             "promised MASE"]),
    (True, [False, None], ["as_of (UTC)", "points", "MAE", "MASE", "RMSSE", "cov80", "cov95",
                           "snaive RMSSE", "promised RMSSE", "lookahead"]),
    (False, [True, False], ["as_of (UTC)", "points", "MAE", "MASE", "sMAPE", "cov80", "cov95", "snaive MASE",
                            "promised MASE", "lookahead"]),
])
def test_the_realized_accuracy_table_has_the_columns_flowcast_accuracy_prints(on_rmsse, flags, heads):
    """Regression (ui17): the table showed 12 columns (as_of, n, n_mase, mae, mase, rmsse, smape, coverage80,
    coverage95, mase_snaive, lookahead, promised), the promise the verdict compares with past the page's edge,
    MAE 28.3902; it shows `flowcast accuracy`'s columns and headers, lookahead only where an as_of's is not 'no'."""
    from flowcast.ops import accuracy

    summary = pl.DataFrame({"dataset": "emp", "as_of": [datetime(2019, 6, 1), datetime(2019, 7, 1, 6)], "n": [441, 9],
                            "n_mase": [441, 9], "mae": [28.3902, 1234.56], "mase": [0.32139, None],
                            "rmsse": [0.8261, 0.9], "smape": [0.75991, 1.0], "coverage80": [0.805, 0.8],
                            "coverage95": [0.932, 0.9], "mase_snaive": [0.74921, 0.8], "lookahead": flags,
                            "promised": [0.51874, 0.5], "promised_rmsse": [0.7, 0.7]})
    rows = accuracy.summary_rows(summary, on_rmsse)
    assert list(rows[0]) == heads
    assert rows[0]["as_of (UTC)"] == "2019-06-01" and rows[1]["as_of (UTC)"] == "2019-07-01 06:00"
    assert rows[0]["MAE"] == "28.39" and rows[1]["MAE"] == "1235" and rows[1]["MASE"] == "" and rows[0]["points"] == "441"
    if "lookahead" in heads:
        assert [r["lookahead"] for r in rows] == [{True: "yes", False: "no", None: "unknown"}[f] for f in flags]


@pytest.mark.parametrize(("n_cov80", "n_cov95", "said"), [
    (8, 8, None),  # every point has both intervals: nothing to say
    (None, None, None),  # scored before the counts were recorded: weighted by n, nothing to say
    (6, 8, ("cov80/cov95: on the points forecast with that interval, where fewer than all (a series with no typical "
           "change to scale its widths by is published without one): 6 (cov80) and 8 (cov95) of the 8 points of "
           "2019-06-01\n")),
    (8, 0, None),  # no 95% interval published: no cov95, nothing said of it (revB47: '0 (cov95)')
])
def test_the_realized_accuracy_artifact_says_on_how_many_points_its_coverage_was_computed(n_cov80, n_cov95, said):
    """Regression (srcmsg46): the artifact's table showed `points` (n) beside cov80/cov95 computed on the points
    forecast with that interval alone (`n_cov80`, `n_cov95`), without a word; it says those counts under the table
    where they differ from n, in `flowcast accuracy`'s words."""
    from flowcast.ops import accuracy

    realized = pl.DataFrame({"dataset": "emp", "as_of": [datetime(2019, 6, 1)], "model": "theta",
                             "model_version": "theta-v9", "step": 1, "n": 8, "mae": 1.0, "mase": 0.5, "n_mase": 8,
                             "smape": 3.0, "coverage80": 0.5, "coverage95": None if n_cov95 == 0 else 1.0,
                             "n_cov80": n_cov80, "n_cov95": n_cov95, "mae_snaive": 2.0, "mase_snaive": 1.0,
                             "lookahead": False},
                            schema_overrides={"n_cov80": pl.Int64, "n_cov95": pl.Int64, "coverage95": pl.Float64})
    text = accuracy.markdown(accuracy.RealizedOutcome(dataset="emp", realized=realized), {"theta-v9": 0.6}, None)
    assert ("| 2019-06-01 |" in text) and ("cov80/cov95:" in text) is (said is not None), text
    if said is not None:
        assert said in text, text


@pytest.mark.parametrize(("scored", "rows", "sentence"), [
    (2, 3, ("This run scored 2 earlier as_ofs: 3 rows of the `realized` table, one per as_of, model and horizon step "
            "(the table below sums them per as_of).")),
    (1, 1, "This run scored 1 earlier as_of: 1 row of the `realized` table, one per as_of, model and horizon step."),
])
def test_realized_accuracy_says_what_its_row_count_counts(scored, rows, sentence):
    # the UI read "This run scored 2 earlier as_of (3 rows)." above a table of 2 rows, and "(1 rows)"; ui30: counted
    # in words (`wording.plural`), '2 earlier as_ofs', '1 earlier as_of'
    from flowcast.ops import accuracy

    at = [datetime(2019, 6, 1), datetime(2019, 7, 1)][:scored]
    text = accuracy.markdown(accuracy.RealizedOutcome(dataset="emp", scored=at, rows_written=rows), {}, None)
    assert sentence in text
    assert "1 rows" not in text


@pytest.mark.parametrize(("n", "points", "at", "said"), [
    (2, 1776, datetime(2019, 9, 1),
     "Realized accuracy: scored 2 earlier as_ofs of emp (1,776 points) against the actuals up to 2019-09-01"),
    (1, 1, datetime(2019, 9, 1),
     "Realized accuracy: scored 1 earlier as_of of emp (1 point) against the actuals up to 2019-09-01"),
    # a time of day says its zone, as every instant (`timekeys.utc_text`): it read '2026-12-05 03:00' without one
    (1, 1, datetime(2026, 12, 5, 3),
     "Realized accuracy: scored 1 earlier as_of of emp (1 point) against the actuals up to 2026-12-05 03:00 UTC"),
])
def test_realized_accuracy_log_line_counts_in_words(n, points, at, said):
    """ui30: the run log read 'scored 2 earlier as_of of emp'."""
    from flowcast.ops import accuracy

    assert accuracy.scored_line(n, "emp", points, at) == said


# ----------------------------------------------------------------------------------------- progress
def test_progress_text_shows_steps_of_total_elapsed_and_losses():
    ev = {"step": 120, "max_steps": 500, "elapsed": 42.4, "train_loss": 0.12345, "val_loss": 0.2}
    assert reporting.progress_text("gru backtest", ev) == \
        "gru backtest training: step 120 of 500, 42.4 s elapsed, training loss 0.1235, validation loss 0.2"
    final = {"step": 500, "elapsed": 3725, "train_loss": 0.1, "val_loss": 0.15, "best": True}
    assert reporting.progress_text("gru backtest", final, final=True) == \
        "gru backtest finished: 500 steps, 1:02:05 in all, training loss 0.1, best validation loss 0.15"


def test_the_progress_artifact_and_the_log_line_write_a_trainings_time_alike():
    """The artifact said '0:01 in all' where the log line said 'in 0.9 s' of the same training."""
    from flowcast.flows import tasks

    final = reporting.progress_text("gru", {"step": 5, "elapsed": 0.94}, final=True)
    line = tasks.training_line("gru", {"steps": 5, "train_seconds": 0.94})
    assert "5 steps, 0.9 s in all" in final and "5 steps in 0.9 s," in line, (final, line)


def test_progress_is_due_every_few_steps_or_seconds():
    from flowcast.models.train import progress_due

    due = [s for s in range(1, 101) if progress_due(s, 0.0, (s - 1) // 5 * 5, 0.0, max_steps=100)]
    assert due == list(range(5, 101, 5))  # every max_steps / 20 steps
    assert progress_due(2, 6.0, 1, 0.5, max_steps=100_000)  # or every 5 seconds on a long run
    assert not progress_due(3, 1.0, 3, 0.0, max_steps=10)  # never twice for a step


# ----------------------------------------------------------------------------------------- quality
def test_quality_summary_says_how_many_valid_rows_have_no_target_value():
    from flowcast.data.validate import DataQualityReport
    from flowcast.flows.common import validation_line

    r = DataQualityReport(source="tiny", as_of="2019-06-01", rows_in=1000, rows_valid=990, rows_quarantined=10,
                          rows_null_y=12, n_series=4, periods=990)
    head = r.to_markdown().splitlines()[:4]
    assert any("990 valid, of which 12 without a target value" in line for line in head), head
    assert "| rows valid | 990 (12 without a target value) |" in r.to_markdown()
    assert validation_line(r) == ("Validation: 1,000 rows in, 990 valid (12 without a target value), 10 quarantined, "
                                  "4 series")


@pytest.mark.parametrize(("dups", "valid", "said"), [
    (0, 990, ""),
    (1, 989, "1 exact duplicate dropped (one copy kept), "),
    (495, 495, "495 exact duplicates dropped (one copy kept; every row repeated: the file looks appended twice), "),
])
def test_the_validation_line_and_summary_count_the_exact_duplicates_dropped(dups, valid, said):
    """data43: exact duplicates are dropped, not quarantined: the log line and the report's first line count them,
    so that rows in = valid + quarantined + exact duplicates dropped reads off both."""
    from flowcast.data.validate import DataQualityReport
    from flowcast.flows.common import validation_line

    r = DataQualityReport(source="tiny", as_of="2019-06-01", rows_in=1000, rows_valid=valid, rows_quarantined=10,
                          rows_duplicate=dups, n_series=4, periods=valid)
    assert r.reconciled
    assert validation_line(r) == (f"Validation: 1,000 rows in, {valid:,} valid, "
                                  f"10 quarantined, {said}4 series")
    assert f"10 quarantined (1.00%); {said.replace(', ', '; ')}4 series" in r.summary_sentence()


@pytest.mark.parametrize(("checks", "examples", "items"), [
    ({"y_not_number": 12}, {"y_not_number": "source_row 35 (line 37 of my_shops.csv): y 'n/a' is not a number (a "
                                            "missing value? leave the cell empty or write NA: both are read as missing)"},
     [("- **y\\_not\\_number**: 12 rows, e.g. source\\_row 35 (line 37 of my\\_shops.csv): y 'n/a' is not a number (a "
      "missing value? leave the cell empty or write NA: both are read as missing)")]),
    ({"y_not_number": 1, "duplicate_conflict": 1_200}, {"duplicate_conflict": "source_row 2: id A|B twice"},
     ["- **duplicate\\_conflict**: 1,200 rows, e.g. source\\_row 2: id A\\|B twice", "- **y\\_not\\_number**: 1 row"]),
])
def test_the_data_quality_report_lists_each_failed_check_with_its_whole_example(checks, examples, items):
    """ui31: the failed checks were a table whose 'e.g.' cell, which does not wrap in the UI, was cut at the page's
    edge: 'y 'n/a' is not a number (a missing value? leave the cell empty or write NA: both are read a', what to do
    out of sight. Each check is a list item, most rows first, its example whole and shown as written."""
    from flowcast.data.validate import DataQualityReport

    r = DataQualityReport(source="shops", as_of="2024-06-30", rows_in=2_000, rows_valid=799, n_series=3, periods=799,
                          rows_quarantined=sum(checks.values()), checks=checks, check_examples=examples)
    md = r.to_markdown()
    assert "| failed check |" not in md
    at = md.splitlines().index("Failed checks (the rows quarantined), each with its first row:")
    assert md.splitlines()[at + 1:at + 2 + len(items)] == ["", *items]


@pytest.mark.parametrize("refused", ["", ERROR])
def test_a_refused_runs_data_quality_report_says_first_that_it_was_refused(refused):
    """ui31: a run stopped by its quarantine threshold left a data-quality artifact that read as any other run's
    ('183 rows in: 171 valid ...; 12 quarantined (6.56%); 3 series.'): nowhere did it say that the run was refused,
    nothing trained or published, nor which setting lets it run. Right under its heading it says so, with the
    error whole (its cause and its fix); its description too. A run that went on is reported as before."""
    from flowcast.data.validate import DataQualityReport

    r = DataQualityReport(source="shops", as_of="2024-03-01", rows_in=183, rows_valid=171, rows_quarantined=12,
                          n_series=3, periods=171, checks={"y_not_number": 12})
    md = reporting.quality_markdown(r, refused=refused)
    assert md.splitlines()[0] == "## Data quality: shops"
    if refused:
        assert md.splitlines()[2:5] == [
            "**Refused: too many rows quarantined; this run stopped here, nothing was trained or published.**", "",
            md_text(ERROR)]
        assert md.split("\n", 5)[5] == r.to_markdown().split("\n", 1)[1]
    else:
        assert md == r.to_markdown()
    said = reporting.quality_description(refused)
    assert said == ("data quality: refused, too many rows quarantined (nothing trained or published)" if refused
                    else "data quality: rows in, valid, quarantined and why")


@pytest.mark.parametrize(("after", "planned", "partial", "in_said", "said"), [
    (0, 0, 0, "", ""),
    (39_282, 0, 0, "", "; 39,282 rows dated after as_of 2026-12-04 21:23:01 UTC not seen by this run"),
    # planned future covariates: kept, counted in rows in, and said there as `flowcast run`'s summary says them
    (5, 5, 0, " (5 of them planned: after as_of, kept for their future covariates)", ""),
    (1_205, 1_200, 0, " (1,200 of them planned: after as_of, kept for their future covariates)",
     "; 5 rows dated after as_of 2026-12-04 21:23:01 UTC not seen by this run"),
    # (aggregate) 3 of them dated before as_of, in the day not over then: not 'dated after as_of'
    (10, 0, 3, "", ("; 10 rows after as_of 2026-12-04 21:23:01 UTC not seen by this run (dated after it, or in a "
                    "period not over then)")),
    (1, 0, 0, "", "; 1 row dated after as_of 2026-12-04 21:23:01 UTC not seen by this run"),
])
def test_quality_summary_says_how_many_rows_are_after_as_of(after, planned, partial, in_said, said):
    """Regression: a run at now of a file reaching into the future (an hourly file to 2031) logged 'Validation:
    60,718 rows in' where `flowcast validate` of the same file had said 100,000, without a word about the 39,282
    rows after as_of it did not see. An aggregated source's rows of the period not over at as_of are counted with
    them (the data-quality report's 'of the rows after as_of above'), dated before as_of: not said to be after.
    Planned rows (after as_of, kept for their future covariates) are in rows in: the log line said '270 rows in' where
    `flowcast run`'s summary (`counts_said`) said 'rows in 270 (45 of them planned: ...)'; both say it alike now."""
    from flowcast.cli.pipeline import counts_said
    from flowcast.data.validate import DataQualityReport
    from flowcast.flows.common import validation_line

    r = DataQualityReport(source="big", as_of="2026-12-04T21:23:01+00:00", rows_in=60_718, rows_valid=60_718,
                          rows_quarantined=0, n_series=1, periods=60_718, rows_after_as_of=after, rows_planned=planned,
                          rows_partial_period=partial)
    assert validation_line(r) == f"Validation: 60,718 rows in{in_said}, 60,718 valid, " \
        "0 quarantined, 1 series" + said
    # ui43: the counts as the run's result holds them (ints): the summary wrote 'rows in 60718' beside the log's 60,718
    cli = counts_said({"rows_in": 60_718, "rows_valid": 60_718, "rows_quarantined": 0, "rows_planned": planned})
    assert cli.startswith(f"rows in 60,718{in_said}, valid 60,718,")
    # newuser50a: `flowcast run --as-of` / `flowcast forecast --as-of` printed 'rows in 244' of a file of 400, and no
    # word of the 156 after as_of the log line names: the summary ends with them too, off the run's result
    from flowcast.cli.pipeline import unseen_said

    result = {"as_of": r.as_of, "rows_unseen": r.rows_unseen, "rows_partial_period": partial}
    assert unseen_said(result) == said
    assert unseen_said({"as_of": r.as_of}) == ""  # an older result without the keys


# ----------------------------------------------------------------------------------------- the run form
@pytest.mark.parametrize("flow_name", ["retrain_flow", "forecast_flow", "backfill_flow"])
def test_run_form_every_parameter_described_choices_are_choices(flow_name):
    from prefect.utilities.callables import parameter_schema

    from flowcast import flows

    schema = parameter_schema(getattr(flows, flow_name).fn)
    props = schema.properties
    missing = [k for k, v in props.items() if not v.get("description")]
    assert not missing, f"parameters without a description: {missing}"
    # a field's description is read before filling it in: the forecast's `overwrite` said 722 characters (7 lines of
    # the form, the cases of a restarted `flowcast serve`), the retrain's `as_of` 597 (ui17)
    long = {k: len(v["description"]) for k, v in props.items() if len(v["description"]) > 350}
    assert not long, f"descriptions longer than 350 characters: {long}"
    # what an empty field means on a work pool: the worker's configuration, not a fixed name (the form said
    # 'Empty: the configured default (us_employment)' while the worker's FLOWCAST_CONFIG named another)
    assert "FLOWCAST_CONFIG" in props["dataset"]["description"], props["dataset"]["description"]
    assert "worker" in props["config_file"]["description"]
    assert "configuration file's `home`" in props["home"]["description"]
    choices = props["dataset"]["anyOf"]
    datasets = next(c for c in choices if "enum" in c)
    assert {"us_employment", "vic_elecdemand", "m3-monthly"} <= set(datasets["enum"])
    assert {"type": "string", "title": "configured dataset"} in choices and {"type": "null"} in choices
    # what the server checks a deployment run's parameters against: a configured dataset passes too
    import jsonschema

    given = {"start": "2019-01-01T00:00:00", "end": "2019-02-01T00:00:00"} if flow_name == "backfill_flow" else {}
    jsonschema.validate({**given, "dataset": "my_shop"}, schema.model_dump())
    with pytest.raises(jsonschema.ValidationError, match="dataset|5"):
        jsonschema.validate({**given, "dataset": 5}, schema.model_dump())
    assert props["overrides"]["anyOf"][0]["$ref"].endswith("/RunOverrides")
    overrides = schema.definitions["RunOverrides"]["properties"]
    assert {"model", "evaluation", "publish"} <= set(overrides)
    model = schema.definitions["ModelConfigOverride"]["properties"]
    assert model["mode"]["anyOf"][0]["enum"] == ["windowed", "forking"]
    # every setting of every section says what it does: 34 (impute, scaler, cells, lookback, n_windows, ...) read
    # only their own name, `preprocess.impute (empty: as configured)`, their choices out of sight in a list (ui44)
    settings = {f"{section}.{k}": v.get("description") or "" for section, d in schema.definitions.items()
                if section.endswith("Override") for k, v in d["properties"].items()}
    assert len(settings) > 100
    bare = sorted(k for k, said in settings.items() if not said or said.endswith("(empty: as configured)"))
    assert not bare, f"settings without a description of their own: {bare}"
    long = {k: len(said) for k, said in settings.items() if len(said) > 350}
    assert not long, f"descriptions longer than 350 characters: {long}"
    if flow_name == "retrain_flow":
        assert props["models"]["anyOf"][0]["items"]["enum"] == ["rnn", "lstm", "gru", "mlp"]
    if flow_name == "backfill_flow":
        assert props["mode"]["enum"] == ["forecast", "retrain"]


def test_run_overrides_are_typed_and_name_what_is_wrong():
    from pydantic import ValidationError

    from flowcast.flows.common import flow_settings
    from flowcast.flows.parameters import RunOverrides, overrides_dict

    o = RunOverrides.model_validate({"model": {"max_steps": 7, "mode": "forking"}, "evaluation": {"n_windows": 1}})
    assert overrides_dict(o) == {"model": {"max_steps": 7, "mode": "forking"}, "evaluation": {"n_windows": 1}}
    s = flow_settings(overrides=o)
    assert s.model.max_steps == 7 and s.model.mode == "forking" and s.evaluation.n_windows == 1
    with pytest.raises(ValidationError, match="hiden_size"):
        RunOverrides.model_validate({"model": {"hiden_size": 8}})
    with pytest.raises(ValidationError, match="mode"):
        RunOverrides.model_validate({"model": {"mode": "sideways"}})


def test_deployments_show_their_time_zone_tags_and_configured_datasets(tmp_path, monkeypatch):
    from flowcast.flows.deploy import build_deployments

    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('[sources.shop]\npath = "x.csv"\ntime_col = "t"\ntarget_col = "y"\nfreq = "1d"\n')
    monkeypatch.setenv("FLOWCAST_TIMEZONE", "Europe/Berlin")
    deps = {d.name: d for d in build_deployments({"config_file": str(cfg), "home": str(tmp_path / "h")})}
    assert deps["retrain"].schedules[0].schedule.timezone == "Europe/Berlin"
    assert "time zone Europe/Berlin" in deps["retrain"].description
    assert "time zone Europe/Berlin" in deps["forecast"].description
    assert {n: d.tags for n, d in deps.items()} == {n: ["flowcast", n] for n in ("retrain", "forecast", "backfill")}
    enum = next(c for c in deps["forecast"]._parameter_openapi_schema.properties["dataset"]["anyOf"] if "enum" in c)
    assert enum["enum"][0] == "us_employment" and enum["enum"][-1] == "shop"
    # the list's tab is not 'bundled dataset' over a configured one (ui21: 'shops' under 'bundled dataset')
    titles = [c.get("title") for c in deps["forecast"]._parameter_openapi_schema.properties["dataset"]["anyOf"]]
    assert titles == ["bundled or configured dataset", "another dataset, typed in", None]
    # the configured default: the one source the file declares (newuser25: it was us_employment, the file's source
    # unread unless chosen)
    assert {d.parameters["dataset"] for d in deps.values()} == {"shop"}


def _inputs(props: dict, definitions: dict, where: str = "", seen: set[str] | None = None) -> list[str]:
    """What the Run form does not open as an input to fill in or leave empty: a null default (the form opens the
    field on its null choice, 'Property is type "None"', or fills a field of one type with null and fails its own
    check), a null first choice, a choice without a type."""
    bad, seen = [], set() if seen is None else seen
    for name, p in props.items():
        at = f"{where}{name}"
        if "default" in p and p["default"] is None:
            bad.append(f"{at}: default null")
        choices = p.get("anyOf", [p])
        if choices[0].get("type") == "null":
            bad.append(f"{at}: opens on null")
        bad += [f"{at}: no type" for c in choices if "type" not in c and "$ref" not in c]
        for c in choices:
            ref = c.get("$ref", "").rsplit("/", 1)[-1]
            if ref and ref not in seen:  # RunOverrides, its sections: their settings, each an input
                seen.add(ref)
                bad += _inputs(definitions[ref].get("properties", {}), definitions, f"{at}.", seen)
    return bad


@pytest.mark.parametrize("name", ["retrain", "forecast", "backfill"])
def test_run_form_opens_every_optional_parameter_on_an_input(name, tmp_path):
    """Regression (forms27): every optional parameter of the three deployments opened on its null choice, which
    reads 'Property is type "None"' with nothing to fill in, under its description (session 35's UI pass): pydantic
    writes `X | None = None` as anyOf [X, null] with default null. A Run form left as it opens must pass the form's
    own check (Prefect's `validate`, as /ui/schemas/validate runs it) and give the flow what it was given before;
    what the server checks a deployment's or an API caller's parameters with must still take theirs: overwrite
    false (`backfill --deployment`), explicit nulls (an override's `early_stopping_patience = None`: inlined as
    `type: integer`, `flowcast serve` with it was refused, 422)."""
    from prefect._internal.schemas.validators import validate_values_conform_to_schema
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import validate

    from flowcast import flows
    from flowcast.flows.deploy import build_deployments

    deps = {d.name: d for d in build_deployments({"home": str(tmp_path)})}
    schema = deps[name]._parameter_openapi_schema.model_dump()
    props, definitions = schema["properties"], schema["definitions"]
    assert not _inputs(props, definitions), _inputs(props, definitions)
    assert all(p.get("description") for p in props.values())
    given = {"start": "2019-01-01", "end": "2019-02-01"} if name == "backfill" else {}
    assert not validate(given, schema)  # every optional field left empty: nothing is sent
    fl = getattr(flows, f"{name}_flow")
    on_off = [["on", "off"], "boolean", "null"]
    if name == "forecast":  # None: on for a run given its as_of, off for a scheduled one; the form's toggle said off
        assert [c.get("enum") or c["type"] for c in props["overwrite"]["anyOf"]] == on_off
        assert fl.validate_parameters({"overwrite": "off"})["overwrite"] is False
        assert fl.validate_parameters({"overwrite": "on"})["overwrite"] is True
    if name == "retrain":
        assert props["models"]["anyOf"][0]["type"] == "array" and props["horizon"]["anyOf"][0]["type"] == "integer"
        assert props["promote"] == {**props["promote"], "type": "boolean", "default": True}  # not optional: kept
    # a source has required fields: a JSON box (as fields, their defaults were sent and the form failed on its path)
    # (secrets50: and its path may not show a URL's password or token: the server stores a run's parameters as sent)
    from flowcast.flows.parameters import NO_SECRET_IN_PATH

    assert props["source"]["anyOf"][0] == {"type": "object", "title": "JSON", **NO_SECRET_IN_PATH}
    assert validate({**given, "source": {"path": "https://u:***@h/x.csv?token=***"}}, schema) == []
    assert validate({**given, "source": {"path": "https://u:pw@h/x.csv"}}, schema)
    assert props["overrides"]["anyOf"][0]["$ref"].endswith("/RunOverrides")  # its sections, each setting an input
    tuning = definitions["TuningConfigOverride"]["properties"]["enabled"]
    assert [c.get("enum") or c["type"] for c in tuning["anyOf"]] == on_off
    # each choice of a field is labelled in words: the form wrote the JSON type's Python name, `as_of` read
    # `date-time | date | str | None`, `horizon` `int | None`, `quarantine_threshold` `float | None` (ui44)
    fields = [*props.values(), *(p for d in definitions.values() for p in d.get("properties", {}).values())]
    untitled = [c for p in fields for c in p.get("anyOf", []) if c.get("type") in ("string", "integer", "number")
                and not c.get("title")]
    assert not untitled, untitled
    titles = {k: [c.get("title") for c in props[k]["anyOf"]] for k in ("as_of", "start", "horizon") if k in props}
    assert titles == {**({"start": ["date and time", "date", "text"]} if name == "backfill" else
                         {"as_of": ["date and time", "date", "text", None]}), "horizon": ["whole number", None]}
    section = definitions["PreprocessConfigOverride"]["properties"]
    assert [c.get("title") for c in section["impute"]["anyOf"]] == ["choice", None]
    assert [c.get("title") for c in section["max_gap"]["anyOf"]] == ["whole number", None]
    api = {**given, "horizon": None, "as_of": None, "source": None, "dataset": None,
           "overrides": {"model": {"max_steps": 3, "early_stopping_patience": None}, "tuning": {"enabled": False}},
           **({"overwrite": False} if name != "retrain" else {})}
    validate_values_conform_to_schema(api, schema, ignore_required=True)  # the server's check of a deployment
    assert not validate(api, schema)
    assert validate({**given, "overrides": {"model": {"max_stepz": 3}}}, schema)  # still checked
    # the flow's own signature is unchanged: what the CLI and the tests call
    assert parameter_schema(fl.fn).model_dump()["properties"]["horizon"]["default"] is None


# ----------------------------------------------------------------------------------------- log filter
def _record(logger: str, msg: str, *, task_name: str | None = None, exc: BaseException | None = None):
    rec = logging.LogRecord(logger, logging.INFO, __file__, 1, msg, (), (type(exc), exc, None) if exc else None)
    if task_name:
        rec.task_name = task_name
    return rec


def test_log_filter_drops_noise_of_flowcast_tasks_and_repeats_of_explained_failures():
    from flowcast.errors import RegistryError
    from flowcast.flows.logs import QuietFilter

    f = QuietFilter()
    assert not f.filter(_record("prefect.task_runs", "Finished in state Completed()", task_name="validate"))
    assert f.filter(_record("prefect.task_runs", "Finished in state Completed()", task_name="someone-elses"))
    assert not f.filter(_record("prefect.task_runs", "Finished in state Failed('Task run encountered an exception "
                                "RegistryError: no production model of tiny')", task_name="predict"))
    # a bug keeps Prefect's whole report, traceback included
    assert f.filter(_record("prefect.task_runs", "Finished in state Failed('Task run encountered an exception "
                            "KeyError: y')", task_name="predict"))
    bug = _record("prefect.flow_runs", "Encountered exception during execution: KeyError('y')", exc=KeyError("y"))
    assert f.filter(bug) and bug.exc_info is not None
    err = RegistryError("no production model of tiny")
    assert not f.filter(_record("prefect.flow_runs", "Encountered exception during execution: x", exc=err))
    # a deployment run's engine, as its subprocess exits (worker, flowcast serve): an ERROR after the final state
    assert not f.filter(_record("prefect.flow_runs", "Engine execution exited with unexpected exception", exc=err))
    crash = _record("prefect.flow_runs", "Engine execution exited with unexpected exception", exc=KeyError("y"))
    assert f.filter(crash) and crash.exc_info is not None  # a bug's keeps its traceback
    other = _record("prefect.flow_runs", "something about it", exc=err)
    assert f.filter(other) and other.exc_info is None  # said, without a traceback
    final = _record("prefect.flow_runs", "Finished in state Failed('Flow run encountered an exception: "
                    "RegistryError: no production model of tiny')")
    assert f.filter(final)  # the one message: an ERROR (Prefect logs it at INFO; the UI's error filter missed it)
    assert (final.levelno, final.levelname) == (logging.ERROR, "ERROR")
    crashed = _record("prefect.flow_runs", "Finished in state Crashed('Execution was interrupted')")
    assert f.filter(crashed) and crashed.levelno == logging.ERROR
    done = _record("prefect.flow_runs", "Finished in state Completed()")
    assert f.filter(done) and done.levelno == logging.INFO
    assert not f.filter(_record("prefect.flow_runs", "Running hook 'on_run_failure' in response to entering state "
                                "'Failed'"))


def test_log_filter_is_installed_on_prefects_run_loggers_once():
    import flowcast.flows  # noqa: F401 - installs it
    from flowcast.flows.logs import QuietFilter, install

    install()
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        assert sum(isinstance(f, QuietFilter) for f in logging.getLogger(name).filters) == 1


def _three_live_one_ended() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Monthly history of 3 series to 2019-12 and CEU4245210001 ended in 2017-12 (us_employment's shape), and each
    series' last ds."""
    live = pl.datetime_range(datetime(2016, 1, 1), datetime(2019, 12, 1), "1mo", eager=True)
    gone = pl.datetime_range(datetime(2014, 1, 1), datetime(2017, 12, 1), "1mo", eager=True)
    hist = pl.concat([pl.DataFrame({"unique_id": f"CEU{i:010d}", "ds": live, "y": [1000.0 + t for t in range(48)]})
                      for i in range(3)] + [pl.DataFrame({"unique_id": "CEU4245210001", "ds": gone, "y": 1300.5})])
    return hist, hist.group_by("unique_id").agg(pl.col("ds").max())


@pytest.mark.parametrize(("as_of", "line"), [(datetime(2020, 1, 2), True), (datetime(2026, 12, 7, 10, 30), False)])
def test_an_as_of_far_past_the_data_is_written_at_the_panels_edge(as_of, line):
    """newuser50b: a scheduled run on data that stopped years before (us_employment to 2019-09, as_of 2026-12-07)
    drew its as_of line in 2026: every panel's axis ran 2016..2027, the history and forecasts squeezed into its left
    third. Such an as_of is written at the panel's right edge and the axis keeps to the data; one near the data is
    the dashed line it was."""
    import matplotlib.pyplot as plt
    from matplotlib.dates import num2date

    hist, _ = _three_live_one_ended()
    hist = hist.filter(pl.col("unique_id") != "CEU4245210001")
    fc = pl.concat([pl.DataFrame({"unique_id": u, "ds": pl.datetime_range(datetime(2020, 1, 1), datetime(2020, 3, 1),
                                                                           "1mo", eager=True), "y_hat": 1048.0})
                    for u in hist["unique_id"].unique().sort()])
    fig = reporting.forecast_figure(hist, fc, n_series=2, as_of=as_of)
    try:
        for ax in [a for a in fig.axes if a.has_data()]:
            names = ax.get_legend_handles_labels()[1]
            written = [t.get_text() for t in ax.texts]
            right = num2date(ax.get_xlim()[1]).replace(tzinfo=None)
            if line:
                assert "as_of" in names and not written, (names, written)
            else:
                assert "as_of" not in names and written == ["as_of 2026-12-07 10:30 UTC \u2192"], (names, written)
                assert right < datetime(2021, 1, 1), right
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", ["Retail Trade: Beer, Wine, and Liquor Stores", None])
def test_an_ended_series_panel_title_stays_inside_the_figure(name):
    """Regression (ui29): an ended series' panel title said its name, its id and when it ended on one line, which ran
    past the figure's right edge in the UI ('Retail Trade:... (CEU4245210001) · ended (last data 2017-12-0'); the
    ended part is a line of its own and every drawn title lies inside the figure."""
    import matplotlib.pyplot as plt

    hist, last = _three_live_one_ended()
    fc = pl.concat([pl.DataFrame({"unique_id": u, "ds": pl.datetime_range(d, d.replace(year=d.year + 1), "1mo",
                                                                           eager=True)[1:4], "y_hat": 1.0})
                    for u, d in last.iter_rows()])
    labels = {"CEU4245210001": name} if name else None
    fig = reporting.forecast_figure(hist, fc, n_series=4, as_of=datetime(2020, 1, 2), labels=labels,
                                    unit="thousands of persons", ended={"CEU4245210001": datetime(2017, 12, 1)})
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        titles = [ax._left_title for ax in fig.axes if ax.get_title(loc="left")]
        for ax in fig.axes:  # within its own panel's width (the right column's ran off the figure)
            if ax.get_title(loc="left"):
                box, panel = ax._left_title.get_window_extent(renderer), ax.get_window_extent(renderer)
                assert box.x1 <= min(panel.x1, fig.bbox.width), (ax.get_title(loc="left"), box.x1, panel.x1)
        ended = [t.get_text().split("\n") for t in titles if "ended" in t.get_text()]
        assert len(ended) == 1 and "CEU4245210001" in ended[0][0] and ended[0][1:] == ["ended (last data 2017-12-01)"]
    finally:
        plt.close(fig)


@pytest.mark.parametrize("n_series", [1, 2])
def test_the_forecast_plot_title_stays_whole_inside_the_figure_above_its_legend(n_series):
    """opstrial52: a one-series plot (5.6 inches wide, `[publish] plot_series = 1`) drew its title on one line, which
    ran past the figure's right edge and was cut in the UI. A title too long for the figure is broken at spaces, every
    word kept, each line inside the figure, the legend below it and the panels below the legend (the two-panel plot's,
    11.2 inches wide, ran past it too with its wall time)."""
    import matplotlib.pyplot as plt

    hist, fc, _ = _plot_frames()
    title = reporting.forecast_plot_title("us_employment", "damped", "damped-v1", datetime(2019, 9, 2, 6),
                                          "America/New_York")
    ids = ["a", "b"][:n_series]
    fig = reporting.forecast_figure(hist.filter(pl.col("unique_id").is_in(ids)), fc.filter(pl.col("unique_id").is_in(ids)),
                                    n_series=n_series, title=title, as_of=datetime(2018, 12, 1))
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        drawn = fig._suptitle
        box = drawn.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height, (drawn.get_text(), box)
        assert drawn.get_text().replace("\n", " ") == title
        assert drawn.get_text().count("\n") == (2 if n_series == 1 else 1), drawn.get_text()  # no more lines than needed
        legend = fig.legends[0].get_window_extent(renderer)
        assert legend.y1 <= box.y0, (legend, box)  # the legend under the title, not over its second line
        panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.has_data()]
        assert all(p.y1 < legend.y0 for p in panels), (panels, legend)
    finally:
        plt.close(fig)


@pytest.mark.parametrize(("ended", "rows"), [(True, 2), (False, 1)])
def test_the_forecast_plot_legend_stays_inside_the_figure_above_the_panels(ended, rows):
    """ui46: us_employment's plot (both intervals, actuals after as_of, an ended series) had 7 legend entries on one
    row, and 'ended series: last observation' ran past the figure's right edge, cut in the UI. Such a legend takes
    two rows, inside the figure and above every panel; one that fits keeps its one row."""
    import matplotlib.pyplot as plt

    from flowcast.columns import interval_cols

    hist, last = _three_live_one_ended()
    fc = pl.concat([pl.DataFrame({"unique_id": u, "ds": pl.datetime_range(d, d.replace(year=d.year + 1), "1mo",
                                                                           eager=True)[1:4], "y_hat": 1000.0})
                    for u, d in last.iter_rows()])
    fc = fc.with_columns(*(pl.lit(1000.0 + s * lv / 10).alias(c) for lv in (80, 95)
                           for s, c in zip((-1, 1), interval_cols(lv), strict=True)))
    actuals = fc.select("unique_id", "ds", pl.col("y_hat").alias("y") + 5)
    fig = reporting.forecast_figure(hist, fc, n_series=4, as_of=datetime(2020, 1, 2), actuals=actuals,
                                    title="us_employment: forecasts of damped (damped-v1) as of 2019-06-01",
                                    ended={"CEU4245210001": datetime(2017, 12, 1)} if ended else None)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        (legend,) = fig.legends
        names = [t.get_text() for t in legend.get_texts()]
        assert (reporting.ENDED_LABEL in names) is ended and len(names) == 6 + ended
        box = legend.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, (box, fig.bbox.width)
        assert box.y0 >= max(ax.get_window_extent(renderer).y1 for ax in fig.axes if ax.get_title(loc="left")), box
        assert len({round(t.get_window_extent(renderer).y0) for t in legend.get_texts()}) == rows
    finally:
        plt.close(fig)


@pytest.mark.parametrize("n_series", [2, 6])
def test_forecast_plot_marks_an_ended_series_forecast_anyway(tmp_path, n_series):
    """Regression: with ended_series = "forecast" a series whose data stopped years before the others' was drawn like
    every other, its forecast dated years back and nothing saying why. Its panel's title says it ended and when, a
    dotted line marks its last observation (in the legend, though the first panel is a live series'), and the even
    spread of panels shows it when it would have left it out (n_series=2 of 8: 'c0' and 'c4' without the mark)."""
    import matplotlib.pyplot as plt

    live = pl.datetime_range(datetime(2016, 1, 1), datetime(2019, 12, 1), "1mo", eager=True)
    gone_ds = pl.datetime_range(datetime(2012, 1, 1), datetime(2014, 6, 1), "1mo", eager=True)
    hist = pl.concat([pl.DataFrame({"unique_id": f"c{i}", "ds": live, "y": [float(i + t % 12) for t in range(48)]})
                      for i in range(7)] + [pl.DataFrame({"unique_id": "c6x", "ds": gone_ds,
                                                          "y": [5.0] * gone_ds.len()})])
    last = hist.group_by("unique_id").agg(pl.col("ds").max())
    fc = pl.concat([pl.DataFrame({"unique_id": u, "ds": pl.datetime_range(d, d.replace(year=d.year + 1), "1mo",
                                                                           eager=True)[1:4], "y_hat": 1.0})
                    for u, d in last.iter_rows()])
    ended = {"c6x": datetime(2014, 6, 1)}
    fig = reporting.forecast_figure(hist, fc, n_series=n_series, as_of=datetime(2020, 1, 2), ended=ended)
    try:
        titles = {ax.get_title(loc="left"): ax for ax in fig.axes if ax.get_title(loc="left")}
        assert "c6x\nended (last data 2014-06-01)" in titles
        ax = titles["c6x\nended (last data 2014-06-01)"]
        assert ax._left_title.get_color() == reporting.ENDED_COLOR  # the left title (loc="left"), in the mark's colour
        marks = [line for line in ax.get_lines() if line.get_label() == reporting.ENDED_LABEL]
        assert len(marks) == 1 and marks[0].get_linestyle() == ":"
        assert all(not t.endswith("(last data 2014-06-01)") for t in titles if not t.startswith("c6x"))
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend.count(reporting.ENDED_LABEL) == 1 and "as_of" in legend
        assert len(titles) == n_series
    finally:
        plt.close(fig)
    one = reporting.forecast_figure(hist, fc, n_series=1, as_of=datetime(2020, 1, 2), ended=ended)
    try:  # one panel: a live series' (c0), not the ended one in its place
        assert [ax.get_title(loc="left") for ax in one.axes if ax.get_title(loc="left")] == ["c0"]
    finally:
        plt.close(one)
    plain = reporting.forecast_figure(hist, fc, n_series=n_series, as_of=datetime(2020, 1, 2))
    try:  # without `ended` nothing is marked
        assert reporting.ENDED_LABEL not in [t.get_text() for t in plain.legends[0].get_texts()]
    finally:
        plt.close(plain)
    png = reporting.plot_forecasts(hist, fc, tmp_path / "ended.png", n_series=n_series, as_of=datetime(2020, 1, 2),
                                   ended=ended, title="ended")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["retrain", "forecast", "backfill"])
def test_the_run_forms_overrides_group_and_its_sections_are_labelled_for_a_person(name, tmp_path):
    """look42 (ui42's notes): the forecast deployment's Run form labelled its overrides group with the pydantic class
    name `RunOverrides` (and each section `ModelConfigOverride`, ...): the form labels a `$ref` choice with the
    model's title. The group reads 'Settings to override', each section '<section> settings'."""
    from prefect.utilities.callables import parameter_schema

    from flowcast import flows
    from flowcast.flows.deploy import build_deployments
    from flowcast.flows.parameters import OVERRIDES_TITLE

    deployed = {d.name: d for d in build_deployments({"home": str(tmp_path)})}[name]._parameter_openapi_schema
    for schema in (deployed.model_dump(), parameter_schema(getattr(flows, f"{name}_flow").fn).model_dump()):
        definitions = schema["definitions"]
        ref = schema["properties"]["overrides"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]
        assert definitions[ref]["title"] == OVERRIDES_TITLE == "Settings to override"
        sections = {k: v["anyOf"][0]["$ref"].rsplit("/", 1)[-1] for k, v in definitions[ref]["properties"].items()
                    if "$ref" in v.get("anyOf", [{}])[0]}
        assert {"model", "evaluation", "publish"} <= set(sections), sections
        assert {k: definitions[d]["title"] for k, d in sections.items()} == {k: f"{k} settings" for k in sections}
