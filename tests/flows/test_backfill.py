"""The backfill flow's decisions made before any date runs (flowcast.flows.backfill)."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Failed

from flowcast.config import load_settings
from flowcast.errors import RegistryError
from flowcast.flows.backfill import failed_message, model_for_backfill, stopped_by_no_room
from flowcast.flows.fanout import outcome_of
from flowcast.registry import ModelRegistry


def test_a_forecast_backfill_without_a_model_names_the_datasets_that_have_one(tmp_path):
    """Regression: after `flowcast run --data sales.csv ...` (production of dataset 'sales'), `flowcast backfill`
    without the same options (the default dataset) said 'run the retrain flow first', which the user had just
    done; it names the datasets this home has production models of."""
    settings = load_settings(home=tmp_path)
    with pytest.raises(RegistryError, match="run the retrain flow first, or backfill with mode=retrain"):
        model_for_backfill(settings, "us_employment")
    reg = ModelRegistry(tmp_path / "models")
    theta = reg.register(None, name="theta", dataset="sales", kind="statistical",
                         recipe={"components": [{"type": "statistical", "model": "theta"}]},
                         created_at=datetime(2024, 1, 1)).version
    reg.promote(theta)
    with pytest.raises(RegistryError) as err:
        model_for_backfill(settings, "us_employment")
    assert "this home has production models of sales only: pass the --dataset or --data options" in str(err.value)
    assert "retrain flow first" not in str(err.value)
    assert theta in model_for_backfill(settings, "sales")
    assert "except" not in model_for_backfill(settings, "sales")  # no as_of recorded: it forecasts every date


def test_a_forecast_backfill_says_which_model_a_date_before_production_was_trained_takes(tmp_path):
    """ui44: the backfill said every date before production's training data ended takes 'the newest model promoted
    for data up to it', of dates before any model was trained: they took production, as each date's log said."""
    settings = load_settings(home=tmp_path)
    reg = ModelRegistry(tmp_path / "models")
    theta = reg.register(None, name="theta", dataset="shops", kind="statistical",
                         recipe={"components": [{"type": "statistical", "model": "theta"}]},
                         as_of=datetime(2024, 4, 15), created_at=datetime(2024, 4, 15)).version
    reg.promote(theta)
    said = model_for_backfill(settings, "shops")
    assert said.startswith(f"Every date is forecast by the production model {theta} (statistical: theta")
    assert said.endswith(f"except a date before the as_of it was trained at (2024-04-15): the newest model promoted "
                         f"for data up to that date, else {theta} still (that date's log and receipt then say its "
                         "forecasts are not the ones a run at that date could have made)"), said


def _early(as_of: str) -> dict[str, object]:
    """A failed outcome of a date before the data, its error as validate says it, the data's first as_of its fact."""
    return {"as_of": as_of, "status": "failed", "begins": "2010-01-01",
            "error": f"tiny: all 3 rows are after as_of={as_of} (the first is 2010-01-01: pick an as_of from then on); "
                     "nothing to validate"}


@pytest.mark.parametrize(("others", "said"), [
    # every failure precedes the data: said once, and no re-run promised to help
    ([{"as_of": "2013-06-01", "status": "published"}],
     ("3 of 4 backfill dates failed: 2009-06-01, 2009-07-01, 2009-08-01 precede the data's first as_of 2010-01-01: they "
     "cannot be forecast, nor on a re-run (start the backfill at 2010-01-01 or later); e.g. 2009-06-01: tiny: all 3 "
     "rows are after as_of=2009-06-01 (the first is 2010-01-01: pick an as_of from then on); nothing to validate; "
     "done, whole: 2013-06-01 (published); a re-run of the backfill skips those")),
    # another failure: said first; a re-run runs it, not the early dates
    ([{"as_of": "2013-06-01", "status": "failed", "error": "disk full"}],
     ("4 of 4 backfill dates failed: 2013-06-01: disk full; 2009-06-01, 2009-07-01, 2009-08-01 precede the data's "
     "first as_of 2010-01-01: they cannot be forecast, nor on a re-run (start the backfill at 2010-01-01 or later); "
     "e.g. 2009-06-01: tiny: all 3 rows are after as_of=2009-06-01 (the first is 2010-01-01: pick an as_of from then "
     "on); nothing to validate; no date was published: a re-run of the backfill runs the other dates that failed")),
])
def test_a_backfills_dates_before_the_data_are_said_once_and_not_to_be_run_again(others, said):
    """Regression: each date before the data failed with the same long error, and the end said 'a re-run of the
    backfill skips those and runs the dates that failed', where those dates fail again."""
    outcomes = [_early(d) for d in ("2009-06-01", "2009-07-01", "2009-08-01")] + others
    assert failed_message(outcomes, 4) == said


def test_a_backfill_date_inside_an_aggregated_sources_first_period_precedes_its_end():
    """Regression (revG47): a date after the first row of an aggregated source whose first period is not over was
    said to precede the data's first time, that row's ('2020-02-20 precedes the data's first time 2020-02-03'), and
    the backfill sent to start at it, where each date fails alike until the period ends. The date the data begins is
    the run's label (`BEGINS_LABEL`, set from `DataValidationError.begins`: 2020-03-01 here, test_validation's
    `test_an_as_of_before_planned_rows_says_when_the_data_begins`), not read back out of its message (newuser49)."""
    from flowcast.flows.common import BEGINS_LABEL

    error = ("m: all 2 rows are after as_of=2020-02-20 (2 of them in the 1mo period not over at as_of, which waits "
             "until it ends; the first is 2020-02-03, its 1mo period over at 2020-03-01: pick an as_of from then on); "
             "nothing to validate")
    # as a deployment's worker reports it: its failed run's state keeps the message, its labels the typed date
    state = Failed(message=f"Flow run encountered an exception: DataValidationError: {error}")
    run = FlowRun(id=uuid4(), name="forecast m 2020-02-20 (backfill)", flow_id=uuid4(), state=state,
                  labels={BEGINS_LABEL: "2020-03-01"})
    failed = outcome_of(datetime(2020, 2, 20), run, None, attempts=1)
    assert failed["begins"] == "2020-03-01", failed
    # a run without the label (a worker on older code) has no date guessed out of its message's words
    unlabelled = run.model_copy(update={"labels": {}})
    assert "begins" not in outcome_of(datetime(2020, 2, 20), unlabelled, None, attempts=1)
    said = failed_message([failed], 1)
    assert said.startswith("1 of 1 backfill date failed: 2020-02-20 precedes the data's first as_of 2020-03-01: it "
                           "cannot be forecast, nor on a re-run (start the backfill at 2020-03-01 or later); e.g. "), said


def test_backfill_dates_step_by_business_days():
    """every='1b': the weekdays from start to end (polars' datetime_range has no business-day unit)."""
    from flowcast.errors import ConfigError
    from flowcast.flows.backfill import backfill_dates

    got = backfill_dates(datetime(2024, 1, 4), datetime(2024, 1, 9), "1b")
    assert got == [datetime(2024, 1, 4), datetime(2024, 1, 5), datetime(2024, 1, 8), datetime(2024, 1, 9)]
    assert backfill_dates(datetime(2024, 1, 1), datetime(2024, 2, 1), "1mo") == [datetime(2024, 1, 1),
                                                                                datetime(2024, 2, 1)]
    with pytest.raises(ConfigError, match="every='2b' is not a duration such as 1d, 1b"):
        backfill_dates(datetime(2024, 1, 1), datetime(2024, 2, 1), "2b")


def test_an_empty_every_runs_the_forecast_cron_s_slots_as_none_does(monkeypatch):
    """review52: a backfill run from the UI with its `every` field left empty gets '', which took the duration branch:
    2 daily as_ofs where the every-6-hours forecast schedule published 8 (the parameter's description says 'Empty:
    ... the slots of the forecast schedule'). The grid says whether its dates are the schedule's slots (`slots`),
    which the command's note and table read instead of guessing it from `said`'s words."""
    from flowcast.flows.backfill import default_grid

    monkeypatch.setenv("FLOWCAST_FORECAST_CRON", "0 */6 * * *")
    monkeypatch.delenv("FLOWCAST_TIMEZONE", raising=False)
    slots = "the slots of the forecast schedule (FLOWCAST_FORECAST_CRON='0 */6 * * *', UTC)"
    for every in (None, ""):
        grid = default_grid("2024-11-01", "2024-11-02", every, "1h", "UTC")
        assert grid.dates == [datetime(2024, 11, d, h) for d in (1, 2) for h in (0, 6, 12, 18)], (every, grid)
        assert (grid.every, grid.slots, grid.said) == ("cron 0 */6 * * * (UTC)", slots, f"at {slots}"), grid
    grid = default_grid("2024-11-01", "2024-11-02", "12h", "1h", "UTC")  # a step given: no slots
    assert (len(grid.dates), grid.every, grid.slots, grid.said) == (3, "12h", "", "every 12h"), grid
    monkeypatch.delenv("FLOWCAST_FORECAST_CRON")
    grid = default_grid("2024-11-01", "2024-11-02", "", "1h", "UTC")
    assert (len(grid.dates), grid.every, grid.slots, grid.said) == (2, "1d", "", "every 1d"), grid


def test_a_range_s_schedule_slots_are_read_once(monkeypatch):
    """review52: `flowcast backfill` computes its grid for its note and checks, then its flow computes it again from
    the same --start and --end: reading up to 10,001 slots of the schedule took about 1.5 s each time. The second
    reading of a range is the first's; another range or cron is read anew."""
    from flowcast.flows import deploy
    from flowcast.flows.backfill import schedule_slots

    reads = []
    real = deploy.missed_slots

    def counted(*args, **kwargs):
        reads.append(args[:2])
        return real(*args, **kwargs)

    monkeypatch.setattr(deploy, "missed_slots", counted)
    first = schedule_slots("1999-03-01", "1999-03-02", "0 */6 * * *", "UTC", "UTC")
    again = schedule_slots("1999-03-01", datetime(1999, 3, 2, 23, 59, 59, 999999), "0 */6 * * *", "UTC", "UTC")
    assert first == again == [datetime(1999, 3, d, h) for d in (1, 2) for h in (0, 6, 12, 18)]
    assert reads == [("0 */6 * * *", "UTC")], reads
    again.clear()  # a caller's list is its own: the range's slots are kept apart from it
    assert len(schedule_slots("1999-03-01", "1999-03-02", "0 */6 * * *", "UTC", "UTC")) == 8
    assert schedule_slots("1999-03-01", "1999-03-02", "0 */12 * * *", "UTC", "UTC") == [
        datetime(1999, 3, d, h) for d in (1, 2) for h in (0, 12)]
    assert reads == [("0 */6 * * *", "UTC"), ("0 */12 * * *", "UTC")], reads


def test_backfill_dates_alone_are_days_of_the_sources_calendar_keyed_as_a_run_of_that_date():
    """Regression: backfill dates were midnights UTC (a New York day's run cut at the day before), stepping over
    UTC instants; each is now the midnight its day starts at in the source's tz, across daylight saving (14 March
    2021 in New York), the same key as `--as-of` of that date."""
    from datetime import date as day

    from flowcast.flows.backfill import backfill_dates
    from flowcast.timekeys import as_instant, storage_naive

    got = backfill_dates("2021-03-13", "2021-03-15", "1d", "America/New_York")
    assert got == [datetime(2021, 3, 13, 5), datetime(2021, 3, 14, 5), datetime(2021, 3, 15, 4)]
    assert got == [storage_naive(as_instant(day(2021, 3, d), "America/New_York")) for d in (13, 14, 15)]
    # months and business days step over the calendar too; timestamps stay instants (UTC without an offset)
    assert backfill_dates("2021-01-01", "2021-03-01", "1mo", "America/New_York") == [
        datetime(2021, 1, 1, 5), datetime(2021, 2, 1, 5), datetime(2021, 3, 1, 5)]
    assert backfill_dates(datetime(2021, 3, 13), datetime(2021, 3, 14), "1d", "America/New_York") == [
        datetime(2021, 3, 13), datetime(2021, 3, 14)]
    assert backfill_dates("2021-06-30", "2021-06-30", "6h", "Asia/Tokyo") == [datetime(2021, 6, 29, 15)]


@pytest.mark.usefixtures("prefect_api")
def test_a_backfills_publish_neither_rearms_nor_clears_the_current_dates_alerts(production_home):
    """Regression: a backfill's child runs emitted flowcast.forecast.published (and would emit
    ...unchanged, ...data.stale) for the dataset exactly as the scheduled forecast does, so
    "forecast not published" took a publish of 2018-01-01 as today's: a backfill run while the daily
    deployment was dead re-armed the deadline (nobody told for another 26h, then told 'since as_of
    2018-01-01'), and "data stale" notified a past date and spent its once-a-day window. Their resource
    carries flowcast.backfill "true", and those two automations match only "false" (the server's own
    matching of the shipped triggers)."""
    from flow_helpers import events_named
    from prefect.server.events.schemas.events import Resource, ResourceSpecification

    from flowcast import events
    from flowcast.config import with_overrides
    from flowcast.flows import backfill_flow, forecast_flow
    from flowcast.ops import automations as auto

    backfill_flow(start=datetime(2018, 1, 1), end=datetime(2018, 1, 1), every="1mo", **production_home)
    forecast_flow(as_of=datetime(2019, 10, 1), **production_home)
    want = {"2018-01-01T00:00:00", "2019-10-01T00:00:00"}
    for _ in range(60):  # stored in batches: the API may have one of the two yet
        sent = {e["resource"]["flowcast.as_of"]: e["resource"] for e in events_named(events.PUBLISHED)
                if e["resource"]["flowcast.dataset"] == "tiny"}
        if want <= set(sent):
            break
        time.sleep(1)
    past, today = sent["2018-01-01T00:00:00"], sent["2019-10-01T00:00:00"]
    assert (past.get("flowcast.backfill"), today.get("flowcast.backfill")) == ("true", "false")

    settings = with_overrides(load_settings(None, home=production_home["home"]),
                              alerts={"webhook_url": "http://127.0.0.1:9/hook"})
    shipped = {a.name: a.trigger for a in auto.desired(settings, "00000000-0000-0000-0000-000000000000")}

    def matches(name: str, resource: dict) -> bool:
        return ResourceSpecification(shipped[name].match.root).matches(Resource(root=resource))

    assert matches(auto.NOT_PUBLISHED, today) and not matches(auto.NOT_PUBLISHED, past)
    stale_past = events.build(events.STALE, dataset="tiny", as_of=datetime(2018, 1, 1), message="stale",
                              backfill=True)["resource"]
    stale_now = events.build(events.STALE, dataset="tiny", as_of=datetime(2019, 10, 1), message="stale")["resource"]
    assert matches(auto.STALE_DATA, stale_now) and not matches(auto.STALE_DATA, stale_past)
    # the others still hear a backfill's: its data-quality failure, a degraded verdict it reached
    assert matches(auto.QUALITY_FAILED, stale_past) and matches(auto.DEGRADED, stale_past)


@pytest.mark.usefixtures("prefect_api")
def test_a_manual_forecast_of_a_past_date_neither_rearms_nor_clears_the_current_dates_alerts(production_home):
    """Regression: a manual `flowcast forecast --as-of 2019-03-01`, run after 2019-10-01 was published, is a
    backfill of one date, but only a backfill's runs (their tag) labelled their events: its publish carried
    flowcast.backfill "false" and re-armed "forecast not published" as the current date's publish would (a dead
    daily deployment told a day late). A run of an as_of earlier than one the dataset published labels them
    "true"; a run of a later as_of still "false"."""
    from flow_helpers import events_named

    from flowcast import events
    from flowcast.flows import forecast_flow

    later = forecast_flow(as_of=datetime(2019, 10, 1), **production_home)
    past = forecast_flow(as_of=datetime(2019, 3, 1), **production_home)
    assert past["published_rows"] > 0 and later["published_rows"] > 0
    want = {later["run_id"], past["run_id"]}
    for _ in range(60):  # stored in batches: the API may have one of the two yet
        sent = {e["payload"].get("run_id"): e["resource"] for e in events_named(events.PUBLISHED)}
        if want <= set(sent):
            break
        time.sleep(1)
    assert sent[later["run_id"]]["flowcast.backfill"] == "false"
    assert sent[past["run_id"]]["flowcast.backfill"] == "true", sent[past["run_id"]]


@pytest.mark.usefixtures("prefect_api")
def test_a_failed_backfill_date_is_told_once(production_home):
    """Regression: a backfill date that failed sent flowcast.run.failed from its own run (its failure hook) and
    again in the backfill's failure, which names it: 'run failed' told it twice. The date's run, tagged
    backfill, leaves it to the backfill's failure (one event for all its failed dates)."""
    from flow_helpers import events_named

    from flowcast import events
    from flowcast.flows import backfill_flow

    state = backfill_flow(start=datetime(1990, 2, 1), end=datetime(1990, 2, 1), every="1mo", return_state=True,
                          **production_home)
    assert state.is_failed(), state
    backfill_run = str(state.state_details.flow_run_id)
    for _ in range(15):  # stored in batches
        told = [e for e in events_named(events.RUN_FAILED, timeout=2)
                if e["resource"].get("flowcast.as_of", "").startswith("1990-02-01")]
        if any(e["payload"].get("flow_run_id") == backfill_run for e in told):
            break
        time.sleep(1)
    time.sleep(3)  # a second event, if any, would be stored by now
    told = [e for e in events_named(events.RUN_FAILED, timeout=2)
            if e["resource"].get("flowcast.as_of", "").startswith("1990-02-01")]
    assert [e["payload"]["flow"] for e in told] == ["backfill"], [(e["payload"]["flow"], e["payload"]["message"])
                                                                  for e in told]
    assert "1990-02-01" in told[0]["payload"]["message"]


@pytest.mark.usefixtures("prefect_api")
def test_a_date_another_run_published_while_the_backfill_ran_is_skipped_not_replaced(production_home):
    """Regression (two backfills of overlapping ranges at once, or the daily forecast of a date inside a running
    backfill's range): the dates to skip were read once, before the first date ran, so a date another run
    published meanwhile was published again without --overwrite (its log: 'is published already and this run
    replaces it') and counted 'published' by both commands. Each date is checked again just before it runs."""
    from flowcast.flows import backfill_flow, forecast_flow
    from flowcast.flows.backfill import listen
    from flowcast.store import open_store

    first, second = datetime(2018, 1, 1), datetime(2018, 2, 1)
    other: dict = {}

    def meanwhile(outcome: dict) -> None:  # another run publishes the second date as the first one finishes
        if outcome["as_of"].startswith("2018-01-01") and not other:
            other.update(forecast_flow(as_of=second, **production_home))

    with listen(meanwhile):
        summary = backfill_flow(start=first, end=second, every="1mo", **production_home)
    assert other["published_rows"] > 0
    assert [(o["as_of"][:10], o["status"]) for o in summary["outcomes"]] == [
        ("2018-01-01", "published"), ("2018-02-01", "skipped")]
    assert (summary["published"], summary["skipped"]) == (1, 1)
    skipped = summary["outcomes"][1]
    assert skipped["run_id"] == other["run_id"] and "since this backfill started" in skipped["error"]
    store = open_store(load_settings(None, home=production_home["home"]))
    assert store.receipt_of("tiny", second)["run_id"] == other["run_id"]  # the other run's publish stays


@pytest.mark.usefixtures("prefect_api")
def test_a_completed_backfill_says_what_came_of_its_dates_in_its_state(production_home):
    """newuser50b: a backfill's page read 'State Message: None' in the UI, where every forecast and retrain run says
    what it did: its Completed state says its dates and their outcome; calling the flow still returns the summary."""
    from flowcast.flows import backfill_flow

    state = backfill_flow(start=datetime(2018, 1, 1), end=datetime(2018, 2, 1), every="1mo", return_state=True,
                          **production_home)
    assert state.is_completed() and state.message == "2 dates: 2 published, 0 skipped", state
    again = backfill_flow(start=datetime(2018, 2, 1), end=datetime(2018, 2, 1), every="1mo", **production_home)
    assert isinstance(again, dict) and (again["published"], again["skipped"]) == (0, 1), again


@pytest.mark.usefixtures("prefect_api")
def test_a_damaged_published_date_fails_named_and_the_other_dates_run(production_home):
    """Regression (faults31): one published date's Parquet file cut short (a full disk, a bad copy) stopped every
    backfill over it before any date ran, with a bare 'ArrowInvalid: Parquet magic bytes not found in footer',
    naming no file, no date and nothing to do. That date fails, naming its file and the command that publishes it
    again; the other dates run."""
    from flowcast.flows import backfill_flow, forecast_flow
    from flowcast.flows.backfill import BackfillError

    first, second = datetime(2018, 1, 1), datetime(2018, 2, 1)
    forecast_flow(as_of=first, **production_home)
    settings = load_settings(None, home=production_home["home"])
    (part,) = (settings.warehouse_dir / "forecasts" / "dataset=tiny").glob("as_of=2018-01-01*/*.parquet")
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    with pytest.raises(BackfillError) as err:
        backfill_flow(start=first, end=second, every="1mo", **production_home)
    summary = err.value.summary
    assert [(o["as_of"][:10], o["status"]) for o in summary["outcomes"]] == [
        ("2018-01-01", "failed"), ("2018-02-01", "published")]
    said = summary["outcomes"][0]["error"]
    assert str(part) in said and "flowcast forecast --as-of 2018-01-01" in said, said


@pytest.mark.usefixtures("prefect_api")
def test_a_store_out_of_reach_when_a_date_is_checked_again_does_not_stop_the_backfill(production_home, monkeypatch):
    """Regression (PostgreSQL stopped for 20 s during a backfill): the check, before each date, of whether another
    run had published it meanwhile raised the store's 'cannot connect' error out of the backfill, which ended
    Failed with no summary and never tried its remaining dates. A check that cannot be made is a warning and the
    date runs (failing on its own, listed with the others, when the store is still out of reach)."""
    from flowcast.errors import PublishError
    from flowcast.flows import backfill_flow
    from flowcast.store.embedded import EmbeddedStore

    first, second = datetime(2018, 1, 1), datetime(2018, 2, 1)
    real_has, calls = EmbeddedStore.has, []

    def has(self, dataset, as_of):
        calls.append(as_of)
        if len(calls) == 3:  # the two dates listed, then the first date's check again: the connection is lost
            raise PublishError("cannot connect to the store to read the published keys: connection refused")
        return real_has(self, dataset, as_of)

    monkeypatch.setattr(EmbeddedStore, "has", has)
    summary = backfill_flow(start=first, end=second, every="1mo", **production_home)
    assert [(o["as_of"][:10], o["status"]) for o in summary["outcomes"]] == [
        ("2018-01-01", "published"), ("2018-02-01", "published")]
    assert len(calls) >= 3


@pytest.mark.usefixtures("prefect_api")
def test_a_fanned_out_date_another_run_published_while_it_waited_in_the_queue_is_not_replaced(production_home,
                                                                                               monkeypatch):
    """Regression (`backfill --deployment` without --overwrite): the dates to skip were read once, before the
    dates' runs were started, and the runs themselves replaced whatever was published when a worker got to them
    (a queue of hours: an overlapping backfill or the daily forecast published the date meanwhile). The backfill
    starts each run with overwrite=False, and such a run publishes nothing and names the run that published."""
    from flowcast.flows import backfill_flow, fanout, forecast_flow
    from flowcast.store import open_store

    day = datetime(2018, 1, 1)
    started: list[dict] = []
    other: dict = {}

    def fan_out(plan, dates, parameters, receipt_of, log, on_outcome=None, stops=None):  # a worker that gets to it late
        started.append(parameters)
        other.update(forecast_flow(as_of=day, **production_home))  # meanwhile, another run publishes the date
        late = forecast_flow(**parameters, as_of=dates[0].isoformat())
        return [{"as_of": dates[0].isoformat(), "status": "skipped", "rows": 0, "model": None,
                 "run_id": late["run_id"], "flow_run": "late", "worker": "w", "error": late.get("note"), "late": late}]

    monkeypatch.setattr(fanout, "fan_out", fan_out)
    summary = backfill_flow(start=day, end=day, every="1mo", deployment="forecast/forecast", **production_home)
    assert started and started[0]["overwrite"] is False
    late = summary["outcomes"][0]["late"]
    assert late["published_rows"] == 0 and late["skipped"] is True
    assert f"run {other['run_id']}" in late["note"] and "overwrite is off" in late["note"]
    store = open_store(load_settings(None, home=production_home["home"]))
    assert store.receipt_of("tiny", day)["run_id"] == other["run_id"]  # the other run's publish stays
    # with --overwrite the dates' runs replace as before
    started.clear()
    backfill_flow(start=day, end=day, every="1mo", deployment="forecast/forecast", overwrite=True, **production_home)
    assert started[0]["overwrite"] is True  # asked for: even the same forecasts are rewritten (publish29)
    # a retrain deployment's date (mode retrain) the same, before it trains anything
    from flow_helpers import AS_OF

    from flowcast.flows import retrain_flow

    held = store.receipt_of("tiny", AS_OF)["run_id"]
    skipped = retrain_flow(as_of=AS_OF, overwrite=False, promote=False, **production_home)
    assert skipped["skipped"] is True and f"run {held}" in skipped["note"]
    assert store.receipt_of("tiny", AS_OF)["run_id"] == held


def _another_run_publishes_after_the_check(monkeypatch, module, settings, date: datetime) -> None:
    """The race window: `module`'s `published_already` makes the date's own first check, then a real process
    (run-7) publishes the date, before the date's run computes and publishes."""
    import subprocess
    import sys
    from pathlib import Path

    faults = Path(__file__).resolve().parents[1] / "publish_faults"
    real_check = module.published_already

    def then_another_run_publishes(settings_, as_of):
        found = real_check(settings_, as_of)
        subprocess.run([sys.executable, str(faults / "publisher.py"), str(settings.warehouse_dir), "tiny",
                        date.isoformat(), "7", "4", "6"], check=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(faults.parents[1] / "src"), str(faults)])})
        return found

    monkeypatch.setattr(module, "published_already", then_another_run_publishes)


@pytest.mark.usefixtures("prefect_api")
def test_a_date_another_run_publishes_after_the_backfills_last_check_is_not_published_again(production_home,
                                                                                               monkeypatch):
    """Regression (ops16's note): the in-process backfill ran each date's forecast with overwrite on, so a date
    another run (a second backfill, a real process here) published after the backfill's check before the date,
    while the date computed, was published again by both. The date's run makes the check again under the key's
    lock: the date is `skipped`, naming the run that published it, whose publish stays."""
    from flowcast.flows import backfill_flow, forecast
    from flowcast.store import open_store

    date = datetime(2018, 1, 1)
    settings = load_settings(None, home=production_home["home"])
    _another_run_publishes_after_the_check(monkeypatch, forecast, settings, date)
    summary = backfill_flow(start=date, end=date, every="1mo", **production_home)
    (outcome,) = summary["outcomes"]
    assert (outcome["status"], outcome["run_id"], summary["published"]) == ("skipped", "run-7", 0), outcome
    store = open_store(settings)
    assert set(store.read(dataset="tiny", as_of=date)["run_id"]) == {"run-7"}  # the other run's publish, alone


@pytest.mark.usefixtures("prefect_api")
def test_a_retrain_date_another_run_publishes_while_it_computes_is_not_published_again(production_home, monkeypatch):
    """Regression (retrainlock18): the in-process backfill's `--mode retrain` dates ran with overwrite on, so a
    date another run (a real process here) published after the backfill's check, while the date trained, was
    published again by both. The date's retrain makes the check again under the key's lock: the date is `skipped`
    naming the run that published it, whose publish stays, and the date's winner is no recorded champion."""
    from flow_helpers import TINY_OVERRIDES

    from flowcast.flows import backfill_flow, pipeline
    from flowcast.store import open_store

    date = datetime(2018, 1, 1)
    settings = load_settings(None, home=production_home["home"])
    registry = ModelRegistry(settings.models_dir)
    versions, champion = [v.version for v in registry.list()], getattr(registry.champion("tiny"), "version", None)
    _another_run_publishes_after_the_check(monkeypatch, pipeline, settings, date)
    statistical = {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": []}}
    summary = backfill_flow(start=date, end=date, every="1mo", mode="retrain",
                            **{**production_home, "overrides": statistical})
    (outcome,) = summary["outcomes"]
    assert (outcome["status"], outcome["run_id"], summary["published"]) == ("skipped", "run-7", 0), outcome
    assert "withdrawn" in outcome["error"]
    store = open_store(settings)
    assert set(store.read(dataset="tiny", as_of=date)["run_id"]) == {"run-7"}  # the other run's publish, alone
    assert [v.version for v in registry.list()] == versions  # the date's winner removed
    assert getattr(registry.champion("tiny"), "version", None) == champion


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("left_as", ["champion", "production"])
def test_a_retrain_backfill_skipping_a_published_date_withdraws_a_winner_a_killed_retrain_of_it_left(
        flow_kwargs, left_as):
    """gc19: the in-process `backfill --mode retrain` skipped a date published before it started without running
    the date's retrain, so the check the retrain flow's skip makes (`withdraw_unpublished_winner`) never ran: a
    winner a retrain of that date killed before its refused publish was undone left in production, or recorded as
    the dataset's champion (what a forecast run takes while no model is in production), stayed for good. The
    backfill's skip makes the same check. The state written directly: the date published by another run (run-7, a
    real process), a version registered for that date recorded (promoted) by its registration, never published."""
    import subprocess
    import sys
    from datetime import UTC, timedelta
    from pathlib import Path

    from flowcast.flows import backfill_flow

    date = datetime(2018, 1, 1)
    settings = load_settings(None, home=flow_kwargs["home"])
    faults = Path(__file__).resolve().parents[1] / "publish_faults"
    subprocess.run([sys.executable, str(faults / "publisher.py"), str(settings.warehouse_dir), "tiny",
                    date.isoformat(), "7", "4", "6"], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(faults.parents[1] / "src"), str(faults)])})
    registry = ModelRegistry(settings.models_dir)
    made = date + timedelta(days=400)  # the killed retrain ran long after the date
    left = registry.register(None, name="theta", dataset="tiny", kind="statistical",
                             recipe={"components": [{"type": "statistical", "model": "theta"}]},
                             as_of=date.replace(tzinfo=UTC), created_at=made,
                             fingerprint={"run_id": "run-killed"}).version  # the killed retrain
    if left_as == "champion":
        registry.record_champion(left, dataset="tiny", at=made, as_of=date.replace(tzinfo=UTC))
    else:
        registry.promote(left, dataset="tiny", at=made)
    summary = backfill_flow(start=date, end=date, every="1mo", mode="retrain", **flow_kwargs)
    (outcome,) = summary["outcomes"]
    assert (outcome["status"], outcome["run_id"], summary["published"]) == ("skipped", "run-7", 0), outcome
    said = " ".join(outcome["error"].split())
    what = "The recorded champion of tiny" if left_as == "champion" else "Production of tiny"
    assert f"{what} was {left}" in said and "it was withdrawn" in said, said
    assert registry.champion("tiny") is None and registry.production("tiny") is None
    assert left not in {v.version for v in registry.list()}
    assert registry.history("tiny")[-1]["action"] == ("withdraw_champion" if left_as == "champion" else "withdraw")
    # takeback21: the withdrawal names the backfill that made it and the killed run it withdrew for (killed before
    # its follow-up, the next run of the date writes it: `withdrawn_unsaid`)
    assert (registry.history("tiny")[-1]["run"], registry.history("tiny")[-1]["for_run"]) == (summary["run_id"],
                                                                                              "run-killed")


@pytest.mark.usefixtures("prefect_api")
def test_a_backfill_dates_quarantine_refusal_names_the_artifact_the_backfill_wrote(flow_kwargs, tiny_csv):
    """rows42: a backfill date refused at its quarantine threshold pointed to the run's `data-quality-tiny` artifact,
    which a backfill's run does not write (its artifacts are under the backfill- keys, `reporting.Scope`): it names
    the key its run wrote the report under, and that report holds the refusal."""
    import polars as pl
    from flow_helpers import AS_OF, newest_artifact

    from flowcast.flows import backfill_flow
    from flowcast.flows.backfill import BackfillError
    from flowcast.mdtext import md_text
    from flowcast.reporting import artifact_key

    raw = pl.read_csv(tiny_csv, infer_schema=False)  # a quarter of the rows' sales not a number: over 5%, rows left
    raw.with_columns(pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("abc")).otherwise(pl.col("sales"))
                     .alias("sales")).write_csv(tiny_csv)
    state = backfill_flow(start=AS_OF, end=AS_OF, every="1mo", mode="retrain", return_state=True, **flow_kwargs)
    assert state.is_failed(), state
    with pytest.raises(BackfillError) as err:
        state.result()
    error, key = str(err.value), artifact_key("quality", "tiny", backfill=True)
    assert key == "backfill-data-quality-tiny"
    mend = (f"; to mend them, read each check's rows and reasons in the data-quality report (the run's {key} artifact, "
            "or `flowcast validate` with the run's options); to run with these rows left out")
    assert "% > threshold 5.0%): y_not_number=" in error and mend in error, error
    quarantine = error.split("; see ", 1)[1].split(";", 1)[0]  # this run's file: the report is this run's
    report = newest_artifact(key).data  # the refusal said whole under its heading (markdown-escaped)
    assert md_text(mend) in report and md_text(quarantine) in report, report


@pytest.mark.usefixtures("prefect_api")
def test_a_date_another_run_replaced_after_the_backfill_published_it_is_replaced_with_its_rows(production_home):
    """bf43: a date the backfill published and another run's publish of it then replaced (a re-run of that as_of, here
    `forecast --as-of` with its overwrite forced, while the backfill ran its next date) was counted `published`, the
    store holding none of its rows (on a worker: `skipped`, 0 rows). It is `replaced`, with the rows and model it
    published and the run whose publish the store holds, and the counts reconcile with the store."""
    from flowcast.flows import backfill_flow, forecast_flow
    from flowcast.flows.backfill import listen
    from flowcast.store import open_store

    first, second = datetime(2018, 1, 1), datetime(2018, 2, 1)
    other: dict = {}

    def meanwhile(outcome: dict) -> None:  # another run publishes the first date again as it finishes
        if outcome["as_of"].startswith("2018-01-01") and not other:
            other.update(forecast_flow(as_of=first, overwrite=True, **production_home))

    with listen(meanwhile):
        summary = backfill_flow(start=first, end=second, every="1mo", **production_home)
    assert other["published_rows"] > 0
    replaced, published = summary["outcomes"]
    assert [replaced["status"], published["status"]] == ["replaced", "published"], summary["outcomes"]
    assert (summary["published"], summary["replaced"], summary["skipped"], summary["failed"]) == (1, 1, 0, 0)
    assert replaced["rows"] == other["published_rows"] and replaced["model"] == other["model_version"]
    assert replaced["run_id"] != other["run_id"]
    assert replaced["error"].startswith(f"Published {replaced['rows']} forecast rows from {replaced['model']}")
    assert f"then another run's publish of the date replaced it (the store holds run {other['run_id']}'s)" in \
        replaced["error"], replaced
    store = open_store(load_settings(None, home=production_home["home"]))
    # what the summary counts published is what the store holds of this backfill's runs
    held = {o["as_of"][:10]: store.receipt_of("tiny", datetime.fromisoformat(o["as_of"]))["run_id"]
            for o in summary["outcomes"]}
    assert held == {"2018-01-01": other["run_id"], "2018-02-01": published["run_id"]}


@pytest.mark.usefixtures("prefect_api")
def test_a_dates_run_whose_creation_reply_was_lost_is_not_left_pending(production_home):
    """bf43: the reply to the creation of a date's flow run lost (the API carried it out; the connection was cut
    before its answer: a server restarting, a proxy): Prefect's client sent the request again, the date ran as the
    second run, and the first stayed Pending in the UI's runs list for ever. The backfill cancels it, saying why."""
    from api_relay import relay_to
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows import backfill_flow
    from flowcast.flows.backfill import LOST_RUN, listen

    api = PREFECT_API_URL.value()
    with relay_to(api) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        relay.up()

        def lose_the_next_creation(outcome: dict) -> None:  # the second date's run: created, its reply lost
            if outcome["as_of"].startswith("2018-01-01"):
                relay.lose_reply_to = b"POST /api/flow_runs/ HTTP/1.1"

        with listen(lose_the_next_creation):
            summary = backfill_flow(start=datetime(2018, 1, 1), end=datetime(2018, 2, 1), every="1mo",
                                    **production_home)
    assert relay.lost == 1
    assert [o["status"] for o in summary["outcomes"]] == ["published", "published"], summary["outcomes"]
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[summary["run_id"]])))
    states = sorted((r.state.name, r.state.message or "") for r in children)
    ran = {o["run_id"] for o in summary["outcomes"]}
    assert {str(r.id) for r in children if r.state.name == "Completed"} == ran, states
    assert states[0] == ("Cancelled", LOST_RUN.format(run=summary["run_id"])), states
    assert len(children) == 3 and not any(r.state.is_pending() for r in children), states


def test_dates_skipped_as_published_with_another_horizon_are_named(tmp_path):
    """Regression (faults43): a backfill killed after 2 of 4 dates and run again with `horizon` changed 6 -> 3 said
    `2 published, 2 skipped`: the range held 48 rows a date before and 24 after, and nothing said so. The dates
    skipped whose publish has another horizon are named, with what recomputes them; none where all match."""
    from datetime import timedelta

    import polars as pl

    from flowcast.flows.backfill import other_settings_note
    from flowcast.store import open_store

    store = open_store(load_settings(home=tmp_path))
    a, b, c = datetime(2019, 2, 1), datetime(2019, 3, 1), datetime(2019, 4, 1)
    for as_of, horizon in ((a, 6), (b, 6), (c, 3)):
        fc = pl.DataFrame({"unique_id": [u for u in "xy" for _ in range(horizon)],
                           "ds": [as_of + timedelta(days=31 * k) for _ in "xy" for k in range(1, horizon + 1)],
                           "step": [k for _ in "xy" for k in range(1, horizon + 1)], "y_hat": 1.0},
                          schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="tiny", as_of=as_of, model="damped", model_version="damped-v1", run_id="r",
                      created_at=datetime(2024, 1, 1))
    note = other_settings_note(store, "tiny", [a, b, c], lambda _: 3)
    assert note is not None and note.startswith("2 dates skipped as published were published with another horizon "
                                                "than this backfill's 3: 2019-02-01")
    assert "(horizon 6)" in note and "2019-04-01" not in note and "--overwrite" in note
    assert other_settings_note(store, "tiny", [c], lambda _: 3) is None
    assert other_settings_note(store, "tiny", [a], lambda _: 3).startswith("1 date skipped as published was published")


def _monthly_tiny(tmp_path):
    """A monthly source `tiny` (its file is never read by these tests)."""
    from flowcast.config import SourceConfig

    return SourceConfig(name="tiny", path=str(tmp_path / "tiny.csv"), id_cols=["store"], time_col="month",
                        target_col="sales", freq="1mo")


def _model_files(tmp_path):
    """A folder of model files to register (a checkpoint's bytes)."""
    art = tmp_path / "art"
    art.mkdir()
    (art / "model.ckpt").write_bytes(b"x")
    return art


@pytest.mark.parametrize(("mode", "given", "said"), [("forecast", None, None), ("forecast", 3, 3), ("retrain", None, 12)])
def test_skipped_dates_are_compared_with_the_horizon_the_backfill_s_dates_publish_with(tmp_path, mode, given, said):
    """Regression (review of faults43): the note of dates skipped as published with another horizon compared them
    with `resolve_horizon` (the monthly default, 12, where none is given or declared), but a forecast backfill's dates
    publish with the production model's own horizon then (`forecast_flow`): every re-run of a backfill over published
    dates warned of all of them (`published with another horizon than this backfill's 12`), none of which differed."""
    from datetime import timedelta

    import polars as pl

    from flowcast.flows.backfill import backfill_horizon, other_settings_note
    from flowcast.store import open_store

    settings = load_settings(home=tmp_path).model_copy(update={"horizon": given})
    src = _monthly_tiny(tmp_path)
    art = _model_files(tmp_path)
    registry = ModelRegistry(tmp_path / "models")
    registry.promote(registry.register(art, name="damped", dataset="tiny", recipe={"horizon": 6}, metrics={"mase": 1.0},
                                       created_at=datetime(2019, 1, 1)).version, reason="test")
    store = open_store(settings)
    a = datetime(2019, 2, 1)
    fc = pl.DataFrame({"unique_id": ["x"] * 6, "ds": [a + timedelta(days=31 * k) for k in range(1, 7)],
                       "step": list(range(1, 7)), "y_hat": 1.0}, schema_overrides={"step": pl.Int32})
    store.publish(fc, dataset="tiny", as_of=a, model="damped", model_version="damped-v1", run_id="r",
                  created_at=datetime(2024, 1, 1))
    horizon = backfill_horizon(settings, src, mode)
    assert horizon(a) == (6 if said is None else said)
    note = other_settings_note(store, "tiny", [a], horizon)
    assert (note is None) if said is None else f"than this backfill's {said}: 2019-02-01 (horizon 6)" in str(note)


def test_each_skipped_date_is_compared_with_the_horizon_of_the_model_its_run_forecasts_with(tmp_path):
    """fcst44: a forecast backfill compared every date skipped as published with the production model's horizon, but
    an early date is forecast by the older model promoted for data up to it (`model_for_as_of`), of another horizon:
    a re-run warned that its date was `published with another horizon than this backfill's 3`, which it was not.
    Each date is compared with the horizon of the model that date forecasts with."""
    from datetime import timedelta

    import polars as pl

    from flowcast.flows.backfill import backfill_horizon, other_settings_note
    from flowcast.store import open_store

    settings = load_settings(home=tmp_path)
    src = _monthly_tiny(tmp_path)
    art = _model_files(tmp_path)
    registry = ModelRegistry(tmp_path / "models")
    for name, trained, h in (("damped", datetime(2019, 1, 1), 6), ("gru", datetime(2019, 2, 15), 3)):
        registry.promote(registry.register(art, name=name, dataset="tiny", recipe={"horizon": h}, metrics={"mase": 1.0},
                                           as_of=trained, created_at=trained).version, reason="test")
    store = open_store(settings)
    a, b = datetime(2019, 2, 1), datetime(2019, 3, 1)  # a: before gru's data ended, damped's (6); b: gru's (3)
    for as_of, h in ((a, 6), (b, 6)):
        fc = pl.DataFrame({"unique_id": ["x"] * h, "ds": [as_of + timedelta(days=31 * k) for k in range(1, h + 1)],
                           "step": list(range(1, h + 1)), "y_hat": 1.0}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="tiny", as_of=as_of, model="damped", model_version="damped-v1", run_id="r",
                      created_at=datetime(2024, 1, 1))
    horizon = backfill_horizon(settings, src, "forecast")
    assert (horizon(a), horizon(b)) == (6, 3)
    note = other_settings_note(store, "tiny", [a, b], horizon)
    assert note is not None and note.startswith("1 date skipped as published was published with another horizon "
                                                "than this backfill's 3: 2019-03-01 (horizon 6);"), note
    assert "2019-02-01" not in note
    mixed = other_settings_note(store, "tiny", [a, b], lambda d: 3 if d == b else 12)  # two horizons: each named
    assert mixed is not None and ("than this backfill's runs of them: 2019-02-01 (horizon 6, not 12), 2019-03-01 "
                                  "(horizon 6, not 3);") in mixed, mixed


@pytest.mark.parametrize("mode", ["forecast", "retrain"])
def test_dates_skipped_as_published_by_another_model_than_the_backfill_forecasts_them_with_are_named(tmp_path, mode, monkeypatch):
    """inst44: the note of dates skipped as published compared their horizon alone: a forecast backfill run again
    after gru was promoted over damped skipped the dates damped-v1 had published, and the range held damped's
    forecasts a date before and gru's after with no word. The receipt records the model version: a date whose
    publish another version made than the one this backfill's run of that date forecasts with (`model_for_as_of`:
    a date before gru's training data ended is still damped's) is named; a retrain backfill (each date trains its own)
    compares no model."""
    from datetime import timedelta

    import polars as pl

    from flowcast.flows.backfill import backfill_model_at, other_settings_note
    from flowcast.store import open_store

    settings = load_settings(home=tmp_path)
    src = _monthly_tiny(tmp_path)
    art = _model_files(tmp_path)
    registry = ModelRegistry(tmp_path / "models")
    versions = [registry.register(art, name=name, dataset="tiny", recipe={"horizon": 6},
                                  metrics={"mase": 1.0}, as_of=trained, created_at=trained).version
                for name, trained in (("damped", datetime(2019, 1, 1)), ("gru", datetime(2019, 2, 15)))]
    registry.promote(versions[0], reason="test")
    store = open_store(settings)
    a, b = datetime(2019, 2, 1), datetime(2019, 3, 1)
    for as_of in (a, b):
        fc = pl.DataFrame({"unique_id": ["x"] * 6, "ds": [as_of + timedelta(days=31 * k) for k in range(1, 7)],
                           "step": list(range(1, 7)), "y_hat": 1.0}, schema_overrides={"step": pl.Int32})
        store.publish(fc, dataset="tiny", as_of=as_of, model="damped", model_version=versions[0], run_id="r",
                      created_at=datetime(2024, 1, 1))
    assert other_settings_note(store, "tiny", [a, b], lambda _: 6, backfill_model_at(settings, src, mode)) is None
    registry.promote(versions[1], reason="test")  # gru, trained on data up to 15 February
    model_at = backfill_model_at(settings, src, mode)
    note = other_settings_note(store, "tiny", [a, b], lambda _: 6, model_at)
    # the backfill's own check reads the registry's history once for both (final read: it read it twice)
    import flowcast.flows.forecast as forecast_mod
    from flowcast.flows.backfill import backfill_models

    reads: list[str] = []
    real = forecast_mod.run_models
    monkeypatch.setattr(forecast_mod, "run_models", lambda *a, **k: reads.append("read") or real(*a, **k))
    horizon_at, version_at = backfill_models(settings, src, mode)
    assert len(reads) == (1 if mode == "forecast" else 0), reads
    assert (version_at is None) if model_at is None else [version_at(d) for d in (a, b)] == [model_at(d) for d in (a, b)]
    assert horizon_at(b) == 6 if mode == "forecast" else horizon_at(b) is not None
    if mode == "retrain":
        assert model_at is None and note is None
        return
    assert note == (f"1 date skipped as published was published by another model than this backfill forecasts it "
                    f"with: 2019-03-01 (by {versions[0]}, not {versions[1]}); the range holds both now. Run the backfill "
                    "with --overwrite (overwrite=True) to recompute them with the settings of now"), note
    both = other_settings_note(store, "tiny", [a, b], lambda _: 3, model_at)  # and a horizon changed: both said
    assert both is not None and both.startswith("2 dates skipped as published were published with another horizon "
                                                "than this backfill's 3: 2019-02-01 (horizon 6), 2019-03-01 (horizon "
                                                "6); 1 date skipped as published was published by another model"), both


@pytest.mark.parametrize(("recorded", "said"), [
    (None, "no verdict of the dataset is stored: the run of that date stopped between its publish and its scoring"),
    (datetime(2016, 11, 1), ("its newest verdict is as of {}: the run of that date stopped between its publish "
                             "and its scoring, or a run of an earlier date scored after it")),
])
def test_a_backfill_catching_up_realized_accuracy_says_what_it_knows(recorded, said):
    """ui43: a backfill of 2014-11-01..2018-11-01 (every 24mo) whose last date was published and scored by the
    day's forecast run logged 'Realized accuracy of tiny as of 2018-11-01 was not recorded (the run of that date
    stopped between its publish and its scoring)': that run had scored; its 2016-11-01 date, run after it, had
    stored its verdict over it. The line names the verdict stored last and both causes."""
    from flowcast.flows.backfill import caught_up_why
    from flowcast.timekeys import utc_text

    assert caught_up_why(recorded, datetime(2018, 11, 1)) == said.format(utc_text(recorded) if recorded else "")


def test_a_backfill_stopped_by_a_full_disk_says_the_dates_done_failed_and_not_run(tmp_path):
    """faults48: the dates after one that found no room are listed apart, with where it stopped, and the re-run that
    runs them once there is room; the dates done are named, and the counts add up to the dates. faults49: the room
    is that of the folder the date's error names (the store's, where it lies apart from the home: it named the
    home), with the bytes the write needed."""
    store, home = tmp_path / "store", tmp_path / "home"
    store.mkdir()
    home.mkdir()
    error = (f"could not write forecasts of dataset tiny as_of 2018-02-01 to {store}/forecasts/x: No space left on "
             f"device [ENOSPC] (the disk is full) (40,960 bytes to write, 0 bytes free in {store}); previously "
             "published forecasts are intact")
    failed = {"as_of": "2018-02-01", "status": "failed", "error": error}
    outcomes = [{"as_of": "2018-01-01", "status": "published"}, failed,
                *stopped_by_no_room(failed, [datetime(2018, 3, 1), datetime(2018, 4, 1)], [store, home])]
    said = failed_message(outcomes, 4)
    room = outcomes[-1]["error"].removeprefix("the backfill stopped at 2018-02-01, whose run found no room to write; ")
    assert room.startswith("40,960 bytes to write, ") and room.endswith(f" bytes free in {store}"), room
    assert said == (f"1 of 4 backfill dates failed, 2 not run: 2018-02-01: {error}; not run: 2018-03-01, 2018-04-01 "
                    f"(the backfill stopped at 2018-02-01, whose run found no room to write; {room}); done, whole: "
                    "2018-01-01 (published); a re-run of the backfill skips those and runs the dates that failed and "
                    "those not run, once there is room")
    assert [o["status"] for o in outcomes[2:]] == ["not run", "not run"]
    # an error naming no folder of the backfill's (a child's words): the one with the least room; none to say: why
    other = stopped_by_no_room({"as_of": "2018-02-01", "error": "[Errno 28] No space left on device"},
                               [datetime(2018, 3, 1)], [tmp_path / "gone"])
    assert other[0]["error"].endswith(f"; the room left in {tmp_path / 'gone'} is not known (No such file or "
                                      "directory)"), other


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("full", ["home", "store"])
def test_a_backfill_on_a_full_disk_stops_at_the_first_date_that_finds_no_room(production_home, tmp_path, full):
    """Regression (faults48): a backfill over many dates whose home's disk filled up ran every later date, each
    failing on the same full disk after its forecasts were computed. It stops at the first date that found no room
    (a real full tmpfs under the home): that date fails naming the disk's error, the later dates are `not run`, the
    dates done stay published, and the counts add up to the dates. faults49: the room was said of the home, also
    where the store (`store.url`) was the folder on the full disk and the home had room; the folder the date's error
    names is, the store's with the bytes its write needed and those left there."""
    import shutil

    from tmpfs import fill, tmpfs

    from flowcast.flows import backfill_flow
    from flowcast.flows.backfill import BackfillError, listen
    from flowcast.store import open_store

    dates = [datetime(2018, m, 1) for m in (1, 2, 3, 4)]
    with tmpfs(tmp_path / "disk", "64m") as disk:
        home = disk / "home" if full == "home" else tmp_path / "home-elsewhere"
        shutil.copytree(production_home["home"], home)
        kw = {**production_home, "home": str(home)}
        warehouse = home / "warehouse"
        if full == "store":
            warehouse = disk / "store"
            kw["overrides"] = {**kw["overrides"], "store": {"url": str(warehouse)}}
        ran: list[str] = []

        def fill_after_the_first(outcome: dict) -> None:
            ran.append(outcome["status"])
            if len(ran) == 1:
                fill(disk)

        with listen(fill_after_the_first), pytest.raises(BackfillError) as err:
            backfill_flow(start=dates[0], end=dates[-1], every="1mo", **kw)
        summary, said = err.value.summary, str(err.value)
        assert [(o["as_of"][:10], o["status"]) for o in summary["outcomes"]] == [
            ("2018-01-01", "published"), ("2018-02-01", "failed"), ("2018-03-01", "not run"), ("2018-04-01", "not run")]
        assert (summary["published"], summary["failed"], summary["not_run"], summary["dates"]) == (1, 1, 2, 4)
        assert "no space left on device" in summary["outcomes"][1]["error"].lower(), summary["outcomes"][1]
        assert said.startswith("1 of 4 backfill dates failed, 2 not run: 2018-02-01: "), said
        assert "not run: 2018-03-01, 2018-04-01 (the backfill stopped at 2018-02-01, whose run found no room to " \
               "write; " in said and f" bytes free in {home if full == 'home' else warehouse})" in said, said
        if full == "store":  # (the home's full disk failed a write of the home's first: a file of unknown size)
            assert re.search(r"write; [0-9,]+ bytes to write, [0-9,]+ bytes free in ", said), said
        assert "done, whole: 2018-01-01 (published)" in said and said.endswith("once there is room"), said
        (disk / "filler").unlink()
        store = open_store(load_settings(None, home=str(home), **({"store": {"url": str(warehouse)}}
                                                                   if full == "store" else {})))
        assert [a for a in store.as_ofs("tiny") if a in dates] == [dates[0]]  # (2019-06-01: the fixture's run)
