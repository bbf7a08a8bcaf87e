"""The fan-out's pure parts: idempotency keys, run names and one date's outcome from its flow run
and the store's receipt (the end-to-end behaviour is tests/flows/test_workers_server.py)."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, Crashed, Failed

from flowcast.errors import ConfigError
from flowcast.flows.fanout import (
    NOT_RUN,
    FanOut,
    Halt,
    cancelled_text,
    mode_of,
    not_run_outcome,
    outcome_of,
    stopped_text,
)

PLAN = FanOut(deployment="forecast/forecast", dataset="tiny", mode="forecast", backfill_run_id="b1")
AS_OF = datetime(2019, 3, 1)


def _run(state, worker: str | None = "worker-a") -> FlowRun:
    return FlowRun(id=uuid4(), name="forecast tiny 2019-03-01 00:00", flow_id=uuid4(), state=state,
                   labels={"prefect.worker.name": worker} if worker else {})


def test_keys_are_per_deployment_dataset_date_and_backfill_run_and_attempt():
    assert PLAN.key(AS_OF, 1) == "forecast/forecast:tiny:2019-03-01T00:00:00:b1"
    assert PLAN.key(AS_OF, 2) == "forecast/forecast:tiny:2019-03-01T00:00:00:b1:attempt-2"
    assert PLAN.key(datetime(2019, 4, 1), 1) != PLAN.key(AS_OF, 1)
    assert FanOut("forecast/forecast", "other", "forecast", "b1").key(AS_OF, 1) != PLAN.key(AS_OF, 1)
    assert PLAN.run_name(AS_OF, 1) == "forecast tiny 2019-03-01 (backfill)"
    assert PLAN.run_name(AS_OF, 3) == "forecast tiny 2019-03-01 (backfill) (attempt 3)"


def test_a_completed_run_whose_rows_are_in_the_store_published_them():
    fr = _run(Completed())
    receipt = {"run_id": str(fr.id), "rows": "24", "model_version": "seasonal_naive-v1", "model": "seasonal_naive"}
    o = outcome_of(AS_OF, fr, receipt, attempts=2)
    assert (o["status"], o["rows"], o["model"], o["worker"], o["attempts"], o["flow_run"], o["error"]) == (
        "published", 24, "seasonal_naive-v1", "worker-a", 2, fr.name, None)


def test_a_completed_run_that_published_nothing_is_skipped_naming_who_wrote_the_rows():
    fr = _run(Completed())
    o = outcome_of(AS_OF, fr, {"run_id": "someone-else", "rows": "24", "model_version": "v0"}, attempts=1)
    assert (o["status"], o["rows"], o["model"]) == ("skipped", 0, "v0")
    assert "someone-else" in o["error"]
    assert outcome_of(AS_OF, fr, None, attempts=1)["error"] == "completed without publishing"


@pytest.mark.parametrize("message", [
    "Skipped: tiny as of 2019-03-01 00:00 is published already (run someone-else) and overwrite is off",
    "Nothing published: no new observation of tiny since its last publish",
])
def test_a_skipped_date_says_why_in_its_runs_own_words(message):
    """ops17: a run that publishes nothing by design says why in its state's message; the date's line of the
    backfill summary carries it (it said only 'completed without publishing')."""
    o = outcome_of(AS_OF, _run(Completed(message=message)), {"run_id": "someone-else", "rows": "24"}, attempts=1)
    assert o["status"] == "skipped"
    assert o["error"] == f"completed without publishing (the store holds run someone-else's): {message}"


def test_failed_and_crashed_runs_fail_with_their_message():
    o = outcome_of(AS_OF, _run(Failed(message="boom"), worker=None), None, attempts=1)
    assert (o["status"], o["worker"], o["error"]) == ("failed", None, "Failed after 1 flow run: boom")
    o = outcome_of(AS_OF, _run(Crashed(message="no heartbeat")), None, attempts=3)
    assert (o["status"], o["error"]) == ("failed", "Crashed after 3 flow runs: no heartbeat")


def test_a_failed_run_before_the_data_says_when_the_data_begins_from_its_label_not_its_wording():
    """newuser49: `begins` was read out of the failed run's message; it is the run's label (`BEGINS_LABEL`), whatever
    the message says, and none without it."""
    from flowcast.flows.common import BEGINS_LABEL

    fr = _run(Failed(message="DataValidationError: reworded"))
    fr.labels[BEGINS_LABEL] = "2010-01-01"
    assert outcome_of(AS_OF, fr, None, attempts=1)["begins"] == "2010-01-01"
    said = "all 3 rows are after as_of=2009-06-01 (the first is 2010-01-01: pick an as_of from then on)"
    assert "begins" not in outcome_of(AS_OF, _run(Failed(message=said)), None, attempts=1)


def test_the_deployment_decides_the_mode_and_a_contradiction_fails():
    assert mode_of("forecast/forecast", "forecast") == "forecast"
    assert mode_of("retrain/retrain", "forecast") == "retrain"  # never promotes from a backfill
    assert mode_of("retrain/nightly", "retrain") == "retrain"
    assert mode_of("my-flow/x", "forecast") == "forecast"
    with pytest.raises(ConfigError, match="mode 'retrain' with deployment 'forecast/forecast'"):
        mode_of("forecast/forecast", "retrain")
    with pytest.raises(ConfigError, match="'forecast' is not 'flow-name/deployment-name'"):
        mode_of("forecast", "forecast")


def test_an_unknown_deployment_fails_at_once_naming_it_and_starts_nothing(prefect_api):
    from flowcast.flows.fanout import fan_out

    said: list[str] = []
    with pytest.raises(ConfigError, match=r"no deployment 'forecast/nope' on http.*: deploy it first .*deployments "
                                          r"there: "):
        fan_out(FanOut("forecast/nope", "tiny", "forecast", "b1"), [AS_OF], {}, lambda _: None, said.append)
    assert said == []  # no flow run was started


def test_a_date_published_by_a_run_that_then_crashed_is_published_by_that_run():
    """The run started again after a crash finds the date published by the crashed one (overwrite off: it
    publishes nothing): the date was published, by the crashed run, not skipped."""
    crashed, again = uuid4(), _run(Completed())
    receipt = {"run_id": str(crashed), "rows": "24", "model_version": "gru-v1"}
    o = outcome_of(AS_OF, again, receipt, attempts=2, crashed=(str(crashed),))
    assert (o["status"], o["rows"], o["run_id"], o["error"]) == ("published", 24, str(crashed), None)
    assert outcome_of(AS_OF, again, receipt, attempts=2)["status"] == "skipped"


def test_an_unknown_deployment_on_the_temporary_api_says_to_point_at_the_server():
    """Regression (README 'Workers that split a backfill', run in a shell without PREFECT_API_URL): `flowcast
    backfill --deployment forecast/forecast` said "no deployment 'forecast/forecast' on http://127.0.0.1:8872/api/:
    deploy it first", the command's own throwaway server; it now says to set PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows.fanout import no_deployment_message

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        said = no_deployment_message("forecast/forecast", "http://127.0.0.1:8872/api/", [])
    assert said.startswith("no deployment 'forecast/forecast' on http://127.0.0.1:8872/api/ (Prefect's temporary "
                           "local API of this command, which has no deployments: set PREFECT_API_URL to the server "
                           "you deployed to): deploy it first")
    with temporary_settings({PREFECT_API_URL: "http://server.example:4200/api"}):
        said = no_deployment_message("forecast/nope", "http://server.example:4200/api/", ["forecast/forecast"])
    assert said == ("no deployment 'forecast/nope' on http://server.example:4200/api/: deploy it first (`flowcast "
                    "deploy` from the repository root); deployments there: forecast/forecast")


@pytest.mark.parametrize(("message", "receipt", "said"), [
    # look42: it read 'completed without publishing (the store holds run later's): Published 48 forecast rows ...'
    ("Published 48 forecast rows from gru-v1: tiny as of 2019-03-01", {"run_id": "later", "rows": "48"},
     ("Published 48 forecast rows from gru-v1: tiny as of 2019-03-01; then another run's publish of the "
     "date replaced it (the store holds run later's)")),
    ("Published 48 forecast rows from gru-v1: tiny as of 2019-03-01", None,
     ("Published 48 forecast rows from gru-v1: tiny as of 2019-03-01; then its forecasts were removed from "
     "the store (it holds none of the date)")),
    ("Skipped: tiny as of 2019-03-01 00:00 is published already (run later)", {"run_id": "later", "rows": "48"},
     ("completed without publishing (the store holds run later's): Skipped: tiny as of 2019-03-01 00:00 is published "
     "already (run later)")),
    (None, {"run_id": "later", "rows": "48"}, "completed without publishing (the store holds run later's)"),
    (None, None, "completed without publishing"),
])
def test_a_date_whose_run_published_and_was_replaced_says_so(message, receipt, said):
    """look42 (ui42's notes): a run that published says so in its state message ('Published 48 forecast rows ...');
    where another run's publish of the date then replaced it, the backfill's line for the date read 'completed
    without publishing ...: Published 48 forecast rows ...'. It says it published, then was replaced."""
    from flowcast.flows.common import run_state_message
    from flowcast.flows.fanout import not_published_text

    assert not_published_text(message, receipt) == said
    if message and message.startswith("Published"):  # the very message a run that published ends with
        assert message == run_state_message({"dataset": "tiny", "as_of": "2019-03-01", "published_rows": 48,
                                             "model_version": "gru-v1"})
    o = outcome_of(AS_OF, _run(Completed(message=message)), receipt, attempts=1)
    published = message is not None and message.startswith("Published")
    # bf43: a date whose run published 48 rows was listed `skipped` with 0 rows: it is `replaced`, with its rows
    assert (o["status"], o["rows"], o["model"], o["error"]) == (
        ("replaced", 48, "gru-v1", said) if published else ("skipped", 0, None, said))


@pytest.mark.parametrize(("message", "said"), [
    ("Published 1,776 forecast rows from seasonal_naive-v12: tiny as of 2019-03-01", (1776, "seasonal_naive-v12")),
    ("Published 24 forecast rows from gru-v1: tiny as of 2019-03-01 00:00 UTC", (24, "gru-v1")),
    # a version holding ': ' (it was cut at the first: 'ens'), one row (it read as no publish), seconds
    ("Published 1 forecast row from ens: a+b-v2: m3.monthly-x as of 2019-03-01 06:00:15 UTC", (1, "ens: a+b-v2")),
    # every row the fallback's (wordsC45): its words are the model the date's line names
    (("Published 48 forecast rows from naive, the fallback for every series (theta-v1 forecast none): tiny as of "
     "2019-03-01"), (48, "naive, the fallback for every series (theta-v1 forecast none)")),
    # uiB46: the model as the receipt names it: its version, as a date's line names a publish the store holds
    ("Published 6 forecast rows from theta (theta-v3): tiny as of 2019-03-01", (6, "theta-v3")),
    ("Skipped: tiny as of 2019-03-01 00:00 is published already (run later)", None),
    ("Nothing published: no new observation of tiny since its last publish", None),
    (None, None),
])
def test_what_a_runs_state_message_says_it_published(message, said):
    from flowcast.flows.common import published_by_message, run_state_message

    assert published_by_message(message) == said
    if said is not None:  # what a run that published writes reads back as what it published
        for as_of in ("2019-03-01", "2019-03-01T06:00:00", "2019-03-01T06:00:15"):
            written = run_state_message({"dataset": "m3.monthly-x", "as_of": as_of, "published_rows": said[0],
                                         "model_version": said[1]})
            assert published_by_message(written) == said, written


@pytest.mark.parametrize("rows", [1, 48, 1776])
def test_what_a_run_that_published_says_is_read_back_whatever_its_rows(rows):
    """rev44: a run that published one row says 'Published 1 forecast row from ...' (`run_state_message`), which
    `published_by_message` did not read ('forecast rows' alone): a fanned-out date whose run published its one row,
    replaced since, was listed `skipped` with 0 rows, its detail saying 'Published 1 forecast row ...'."""
    from flowcast.flows.common import published_by_message, run_state_message

    message = run_state_message({"dataset": "tiny", "as_of": "2019-03-01", "published_rows": rows,
                                 "model_version": "theta-v1"})
    assert published_by_message(message) == (rows, "theta-v1"), message
    o = outcome_of(AS_OF, _run(Completed(message=message)), {"run_id": "later", "rows": "2"}, attempts=1)
    assert (o["status"], o["rows"], o["model"]) == ("replaced", rows, "theta-v1"), o


@pytest.mark.parametrize(("own_pool", "pool", "said"), [
    ("flowcast-process", "flowcast-process", True),
    ("flowcast-process", "gpu-pool", False),  # its dates go to other workers
    (None, "flowcast-process", False),  # the CLI or `flowcast serve`: it holds no worker's slot
])
def test_a_backfill_on_a_worker_of_its_dates_pool_says_they_may_wait_behind_it(own_pool, pool, said):
    """newuser50b: the backfill-pool deployment run as the UI runs it, `deployment` = forecast/forecast-pool, on the
    one worker started with --limit 1 as the README starts it, held that worker's only run while its dates (and every
    scheduled run) waited Late behind it, without a word. It says so before it starts them, and what to do."""
    from flowcast.flows.fanout import same_pool_sentence

    sentence = same_pool_sentence(own_pool, "ProcessWorker ae940fa3", "forecast/forecast-pool", pool, 6 * 3600)
    if not said:
        assert sentence is None
        return
    assert sentence == (
        "This backfill runs in work pool 'flowcast-process' on worker ProcessWorker ae940fa3 and starts its dates on "
        "forecast/forecast-pool, a deployment of the same pool: a worker started with --limit 1 cannot start them "
        "while it runs this backfill, and they wait (up to [workers] wait_timeout, 6:00:00) for another of the pool's "
        "workers. Start one more (`prefect worker start --pool flowcast-process`), or leave `deployment` empty to run "
        "the dates in this run, one after another.")


def test_the_backfill_forms_deployment_field_says_dates_sent_to_its_own_pool_wait_behind_it():
    """fanout50: the run form's `deployment` field (the UI shows the flow's docstring beside it) said nothing of the
    wait a backfill's dates sent to its own pool have behind it on a worker of one slot; it says so, and what to do."""
    from prefect.utilities.callables import parameter_schema

    from flowcast.flows import backfill_flow

    said = " ".join(parameter_schema(backfill_flow.fn).model_dump()["properties"]["deployment"]["description"].split())
    assert ("Dates sent to this backfill's own pool wait behind it on workers of one slot (`--limit 1`): use "
            "another pool's.") in said, said


def test_a_cancel_after_a_no_room_stop_is_recorded_and_its_dates_keep_their_reason():
    """Review 51: `Halt.cancel` did nothing once a date that found no room had stopped the fan-out, so a cancel from
    the UI then ended the backfill Failed, not Cancelled (`fan_out` raises FanOutCancelled where `cancelled`)."""
    no_room = "the backfill stopped at 2024-01-01, whose run found no room to write"
    halt = Halt(lambda o: (lambda d: not_run_outcome(d, no_room)) if o["status"] == "failed" else None)
    halt.after({"status": "failed"})
    assert halt.not_run is not None and halt.event.is_set() and halt.cancelled is None
    halt.cancel("not run: its backfill was cancelled")
    assert halt.cancelled == "not run: its backfill was cancelled"
    assert halt.not_run(datetime(2024, 1, 2)) == not_run_outcome(datetime(2024, 1, 2), no_room)
    fresh = Halt()
    fresh.cancel("first")
    fresh.cancel("second")
    assert fresh.cancelled == "first" and fresh.not_run is not None
    assert fresh.not_run(datetime(2024, 1, 2))["error"] == "first"
    assert fresh.not_run(datetime(2024, 1, 2))["status"] == NOT_RUN


@pytest.mark.parametrize(("statuses", "said"), [
    ([NOT_RUN, "published", NOT_RUN], ("2 dates not run, their runs cancelled before they started; it waited for "
                                       "the 1 date that had started to end")),
    ([NOT_RUN], "1 date not run, its run cancelled before it started"),
    (["published", "failed"], "every date had started: it waited for all 2 dates to end"),
    (["published"], "every date had started: it waited for its 1 date to end"),
])
def test_a_cancelled_fan_out_says_what_became_of_its_dates(statuses, said):
    """Review 51: where every date had started, it said '0 dates not run, their runs cancelled before they started'."""
    why = "not run: its backfill was cancelled"
    assert cancelled_text([{"status": s, "error": why if s == NOT_RUN else None} for s in statuses], why) == (
        "The backfill's flow run was cancelled as it waited on its dates: " + said)
    assert stopped_text([{"status": s, "error": why if s == NOT_RUN else None} for s in statuses], why) is None


def test_a_cancelled_fan_out_with_no_dates_says_so():
    """fixC51: it read 'every date had started: it waited for all 0 dates to end'."""
    assert cancelled_text([], "not run: its backfill was cancelled") == (
        "The backfill's flow run was cancelled as it waited on its dates: it had no date to run")


def test_a_fan_out_cancelled_after_a_full_disk_stopped_it_says_each_dates_own_reason(tmp_path):
    """fixC51: after a date found no room (the later dates `not run`, saying where to free room) and then a cancel,
    every date not run was said cancelled before it started, and the full disk's line, its 'free N GB', was dropped.
    Those the cancel stopped (its own error) are said cancelled; the others with the disk's error, its line kept."""
    from flowcast.flows.backfill import stopped_by_no_room

    failed = {"as_of": "2024-01-01T00:00:00", "status": "failed",
              "error": f"could not write: No space left on device [ENOSPC] (4,096 bytes to write, 0 bytes free in "
                       f"{tmp_path})"}
    later = [datetime(2024, 1, d) for d in (2, 3, 4)]
    no_room = stopped_by_no_room(failed, later, [tmp_path])
    why = "not run: its backfill was cancelled"
    outcomes = [failed, *no_room[:2], not_run_outcome(later[2], why), {"status": "published", "error": None}]
    room = no_room[0]["error"]
    assert "free" in room, room
    assert cancelled_text(outcomes, why) == (
        "The backfill's flow run was cancelled as it waited on its dates: 1 date not run, its run cancelled before it "
        f"started; 2 dates not run ({room}); it waited for the 2 dates that had started to end")
    assert stopped_text(outcomes, why) == (
        f"The backfill stopped: 2 dates not run, cancelled before their runs started ({room})")
    assert stopped_text(outcomes) == f"The backfill stopped: 3 dates not run, cancelled before their runs started ({room})"
