"""The retrain flow as a deployment's schedule runs it: as_of empty, the run's scheduled start time, retrained once."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from proc_state import stopped

from flowcast import reporting
from flowcast.config import load_settings
from flowcast.errors import RegistryError
from flowcast.flows.pipeline import RETRAIN_KEYS
from flowcast.registry import ModelRegistry

SLOT = datetime(2019, 7, 1, 3, tzinfo=UTC)
NEXT = SLOT + timedelta(days=7)  # the next weekly slot: the same data (it ends before SLOT)
STATISTICAL = {"models": []}  # no network: the statistical candidates (fast)


def _other_run_of_the_slot(at: datetime, kwargs: dict) -> dict:
    """Another run of a slot or date, a real process (`slot_retrain_child.py`, this session's Prefect API): its
    retrain_flow(**kwargs) result, the slot's scheduled start `at`."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL

    here = Path(__file__).resolve().parent
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(here.parents[1] / "src"), str(here)])}
    done = subprocess.run([sys.executable, str(here / "slot_retrain_child.py"), at.isoformat(), json.dumps(kwargs)],
                          env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _late_retrain(kwargs: dict, fault: str, *, stop: bool = False, backfill: bool = False):
    """A retrain of a date another run published already, a real process (`late_retrain_child.py`: its first check
    passed as if made just before that publish; this session's Prefect API), running retrain_flow(**kwargs) with
    FLOWCAST_FAULT=`fault`: SIGKILLed there, or with `stop` stopped there (SIGSTOP: a run still live, its claim
    naming a process that runs; SIGCONT goes on); `backfill`: as a backfill's date (tagged `backfill`). The Popen
    (text streams piped)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL

    here = Path(__file__).resolve().parent
    env = {**os.environ, "FLOWCAST_FAULT": fault, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(here.parents[1] / "src"), str(here)]),
           **({"FLOWCAST_FAULT_SIGNAL": "SIGSTOP"} if stop else {})}
    return subprocess.Popen([sys.executable, str(here / "late_retrain_child.py"), json.dumps(kwargs),
                             *(["backfill"] if backfill else [])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _killed_late_retrain(kwargs: dict, fault: str, *, backfill: bool = False) -> None:
    """`_late_retrain` SIGKILLed at `fault` (asserted), waited for."""
    import signal

    proc = _late_retrain(kwargs, fault, backfill=backfill)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]


def _skipping_rerun(kwargs: dict, *, backfill: bool, **retrain: object) -> tuple[str, dict]:
    """Another run of the slot that finds it published and skips it, a retrain (`retrain`: its other arguments) or a
    retrain backfill over the date: its note and its artifacts by key."""
    from flow_helpers import artifacts_of

    from flowcast.flows import backfill_flow, retrain_flow

    if not backfill:
        done = retrain_flow(as_of=SLOT, overwrite=False, **retrain, **kwargs, **STATISTICAL)
        assert done["skipped"] and done["published_rows"] == 0
        return done["note"], artifacts_of(done["run_id"])
    done = backfill_flow(start=SLOT, end=SLOT, mode="retrain", **kwargs)
    (o,) = done["outcomes"]
    assert o["status"] == "skipped" and o["error"].startswith("already published (overwrite=False)")
    return o["error"], artifacts_of(done["run_id"])


@pytest.mark.usefixtures("prefect_api")
def test_a_second_run_of_one_retrain_slot_retrains_nothing(flow_kwargs, monkeypatch):
    """Regression (ops16): the same retrain schedule slot run twice (a restarted serve re-creating the
    scheduled run, a Crashed run retried after it had registered and published) retrained, registered and
    published twice. A scheduled retrain whose slot a run completed (a version registered for that as_of, its
    forecasts published) does nothing, names that run and ends Completed; a run given its as_of retrains."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert first["published_rows"] > 0
    versions = [v.version for v in registry.list()]
    second = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert second["published_rows"] == 0 and second["skipped"] and second["retrained_by"] == first["run_id"]
    assert f"run {first['run_id']} registered {first['model_version']}" in second["note"]
    from flow_helpers import artifacts_of

    said = artifacts_of(second["run_id"])  # its page: no task, no artifact; now one linking the run that retrained
    assert [a.data for a in said[None]] == [reporting.skipped_markdown(second["note"])]
    assert f"/runs/flow-run/{first['run_id']})" in said[None][0].data
    assert [v.version for v in registry.list()] == versions  # nothing registered
    assert store.receipt_of("tiny", SLOT)["run_id"] == first["run_id"]  # the first run's publish stays
    # an as_of given (by hand, `backfill --mode retrain`) retrains as before
    again = retrain_flow(as_of=SLOT, **flow_kwargs, **STATISTICAL)
    assert again["leaderboard"] and not again.get("retrained_by")  # backtested again (production kept: no version)
    # its forecasts are the very ones the slot holds (the same version, the same rows): not published again (publish29)
    assert again["published_rows"] == 0 and again["published_by"] == first["run_id"]
    assert store.receipt_of("tiny", SLOT)["run_id"] == first["run_id"]


@pytest.mark.usefixtures("prefect_api")
def test_a_skipped_slot_retrains_log_line_ends_its_sentences(flow_kwargs, monkeypatch, caplog, capsys):
    """ui20: a second run of a retrained slot logged its note as made ('... (a run given its as_of retrains it
    again)', no period), where its state message, `Skipped: ...`, ended it: the log line is ended the same way."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    retrain_flow(**flow_kwargs, **STATISTICAL)
    with caplog.at_level(logging.INFO):
        second = retrain_flow(**flow_kwargs, **STATISTICAL)
    said = capsys.readouterr().err + caplog.text
    assert second["skipped"] and second["note"].endswith("retrains it again).")
    lines = [line for line in said.splitlines() if "was retrained already" in line and "Skipped:" not in line]
    assert lines and all(line.rstrip().endswith("retrains it again).") for line in lines), lines


@pytest.mark.usefixtures("prefect_api")
def test_every_retrain_result_has_the_same_keys_whichever_way_it_ends(flow_kwargs, monkeypatch):
    """Regression (review20): the retrain flow's result changed shape with the way the run ended: a run that found
    its slot done as it started returned 8 keys (no n_series, leaderboard, decision, registered, ...), one refused
    after it computed 16 or 20, and the published result had no `skipped`, `published_by` nor `retrained_by` (a
    deployment run's result, `flowcast run --json` of a later flowcast, read them). Every path now has every key of
    RETRAIN_KEYS, in that order, null where it cannot know it (a run skipped as it started read no data)."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    published = retrain_flow(**flow_kwargs, **STATISTICAL)
    skipped = retrain_flow(**flow_kwargs, **STATISTICAL)  # the slot done: ends as it starts
    assert published["published_rows"] > 0 and skipped["skipped"] and skipped["retrained_by"] == published["run_id"]
    assert list(published) == list(skipped) == list(RETRAIN_KEYS)
    assert published["skipped"] is False and published["published_by"] is None and published["retrained_by"] is None
    assert published["n_series"] > 0 and published["series_excluded"] == 0 and published["leaderboard"]
    assert skipped["n_series"] is None and skipped["leaderboard"] is None and skipped["decision"] is None
    assert skipped["registered"] == {} and skipped["published_by"] is None


@pytest.mark.usefixtures("prefect_api")
def test_a_retrain_slot_registered_but_not_published_is_retrained(flow_kwargs, monkeypatch):
    """A run of the slot killed after it registered its winner, before the publish: the slot is not done, the
    next run of it retrains and publishes (here: the first run's forecasts removed, as if never published)."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert store.delete("tiny", SLOT)
    second = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert second["published_rows"] > 0 and not second.get("skipped") and second["run_id"] != first["run_id"]
    assert store.receipt_of("tiny", SLOT)["run_id"] == second["run_id"]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", ["registry:after_pointer_rename", "publish:before_rename", "publish:after_rename"])
def test_a_retrain_killed_after_recording_that_it_kept_production_is_retrained(flow_kwargs, monkeypatch, fault):
    """A real process of the kept slot SIGKILLed right after its `keep` event was written (the registry's pointer
    renamed, its backup not yet), before its forecasts landed: the slot is not done, and the next run of it retrains
    and publishes. faults20: the same killed with its forecasts written to their temp file
    (publish:before_rename: since retrainslot19 the keep is written only as the store lets the publish through, so
    none is recorded there); SIGKILLed once its forecasts were renamed into place (publish:after_rename: the slot is
    done, its publish whole), the next run of the slot names it and retrains nothing."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    here = Path(__file__).resolve().parent
    env = {**os.environ, "FLOWCAST_FAULT": fault, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(here.parents[1] / "src"), str(here)])}
    killed = subprocess.run([sys.executable, str(here / "slot_retrain_child.py"), NEXT.isoformat(),
                             json.dumps({**flow_kwargs, **STATISTICAL})], env=env, capture_output=True, text=True,
                            timeout=400, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    keeps = [e for e in registry.history("tiny") if e["action"] == "keep"]
    root = registry.root
    if fault == "publish:before_rename":  # killed before the store let its publish through: no keep recorded
        assert keeps == []  # (written in the guard's check, right before the rename: retrainslot19)
        keep = {"run": None}
    else:  # recorded, then killed
        (keep,) = keeps
        assert keep["version"] == first["model_version"]
    assert registry.production("tiny").version == first["model_version"]
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: NEXT)
    if fault == "publish:after_rename":  # its forecasts landed whole: the slot is done
        assert store.receipt_of("tiny", NEXT)["run_id"] == keep["run"]
        assert len(store.read(dataset="tiny", as_of=NEXT)) == first["published_rows"]
        done = retrain_flow(**flow_kwargs, **STATISTICAL)
        assert done["skipped"] and done["retrained_by"] == keep["run"] and done["leaderboard"] is None  # nothing backtested (RETRAIN_KEYS: null)
        assert (root / "production.json").read_bytes() == (root / "production.backup.json").read_bytes()
        return
    assert not store.has("tiny", NEXT)
    if fault == "publish:before_rename":  # nothing written to the registry since the first run
        assert (root / "production.json").read_bytes() == (root / "production.backup.json").read_bytes()
    again = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert again["published_rows"] > 0 and not again.get("skipped") and again["leaderboard"]
    assert store.receipt_of("tiny", NEXT)["run_id"] == again["run_id"] != keep["run"]
    assert retrain_flow(**flow_kwargs, **STATISTICAL)["retrained_by"] == again["run_id"]  # now done, by it


def flow_run_of(run_id: str):
    """The flow run as the Prefect API holds it (what the UI's run list shows)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


@pytest.mark.usefixtures("prefect_api")
def test_a_second_run_of_a_retrain_slot_that_kept_production_retrains_nothing(flow_kwargs, monkeypatch):
    """Regression (ops17): a scheduled retrain whose candidates did not beat production keeps it and registers
    nothing, so the once-per-slot check (a version registered for the slot's as_of) did not see its slot done: a
    second run of it (a restarted serve, a Crashed run retried) backtested and published it all over again. The
    kept decision is recorded in the registry (a `keep` event naming the run) in its publish: the second run
    does nothing and names the first. Recorded but not published (killed in between): the slot is retrained."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert first["decision"]["promote"]
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: NEXT)
    kept = retrain_flow(**flow_kwargs, **STATISTICAL)  # the same data: production stays, nothing registered
    assert not kept["decision"]["promote"] and kept["registered"] == {} and kept["published_rows"] > 0
    assert kept["model_version"] == first["model_version"]
    versions = [v.version for v in registry.list()]
    second = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert second["published_rows"] == 0 and second["skipped"] and second["retrained_by"] == kept["run_id"]
    assert f"run {kept['run_id']} kept the production model {first['model_version']}" in second["note"]
    assert second["leaderboard"] is None  # nothing backtested (every result has RETRAIN_KEYS: null here)
    assert [v.version for v in registry.list()] == versions
    assert store.receipt_of("tiny", NEXT)["run_id"] == kept["run_id"]  # the kept run's publish stays
    keeps = [e for e in registry.history("tiny") if e["action"] == "keep"]
    assert [(e["run"], e["version"]) for e in keeps] == [(kept["run_id"], first["model_version"])]
    # recorded, not published (a run killed between its keep event and its publish): not done, retrained
    assert store.delete("tiny", NEXT)
    again = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert again["published_rows"] > 0 and not again.get("skipped") and again["leaderboard"]
    assert store.receipt_of("tiny", NEXT)["run_id"] == again["run_id"]


@pytest.mark.usefixtures("prefect_api")
def test_a_retrain_that_skips_its_slot_says_so_in_the_run_list(flow_kwargs, monkeypatch):
    """Regression (ops17): a run that skipped its slot had the name of a run that retrained and published
    ('retrain tiny 2019-07-01 03:00') and the state `Completed()` with no message, so the UI's run list showed it as
    one that did the work. It ends Completed with a message naming the run that did, is renamed '... (skipped)' and
    tagged 'skipped'; the run that published keeps its name, its message saying what it published."""
    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow

    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = retrain_flow(**flow_kwargs, **STATISTICAL)
    second = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert second["skipped"] and second["retrained_by"] == first["run_id"]
    done, skipped = flow_run_of(first["run_id"]), flow_run_of(second["run_id"])
    assert skipped.state.is_completed() and skipped.state.message == f"Skipped: {second['note']}"
    assert first["run_id"] in skipped.state.message
    assert skipped.name == "retrain tiny 2019-07-01 03:00 UTC (skipped)" and "skipped" in skipped.tags
    assert done.name == "retrain tiny 2019-07-01 03:00 UTC" and "skipped" not in done.tags
    assert done.state.is_completed() and done.state.message == (  # ui42: what it published, not 'None'
        f"Published {first['published_rows']:,} forecast rows from {first['champion']} ({first['model_version']}): tiny as "
        "of 2019-07-01 "
        "03:00 UTC")


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("promote", [True, False], ids=["promoting", "backfill-date"])
def test_a_retrain_date_published_by_another_run_meanwhile_is_not_published_again(flow_kwargs, monkeypatch, promote,
                                                                                  caplog, capsys):
    """Regression (retrainlock18): a retrain with overwrite off (`backfill --mode retrain --deployment`) checked
    whether its date was published only as it started: another run of the date (a real process here, a backfill's
    retrain of it) that published it while this one computed, and this one, both published, one after the other.
    The check is made again under the key's lock in the publish: this run publishes nothing, ends Completed naming
    the other run, and its winner stays neither promoted (withdrawn under the registry's lock, production empty
    again) nor recorded as a champion (withdrawn: the other run's is the champion); its version is removed."""
    import json

    from flowcast.flows import pipeline, retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    other_kwargs = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": False, "overwrite": False}
    real_check = pipeline.published_already
    other: dict = {}

    def then_another_run_publishes(settings_, as_of):  # the race window: right after this run's first check
        found = real_check(settings_, as_of)
        other.update(_other_run_of_the_slot(SLOT, other_kwargs))
        return found

    monkeypatch.setattr(pipeline, "published_already", then_another_run_publishes)
    with caplog.at_level(logging.INFO):
        late = retrain_flow(as_of=SLOT, promote=promote, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert other["published_rows"] > 0 and not other.get("skipped")
    # rollback19: its log's leaderboard, written before the publish, marked the winner '<- published'; it is to
    # publish, and once the publish is refused a line says what came of it
    said = capsys.readouterr().err + caplog.text  # (Prefect's first flow run of a session sets up its handlers)
    rows = [line.strip() for line in said.splitlines() if re.match(rf"\s*\d+\. {late['champion']}\s", line)]
    assert rows and all(r.endswith("<- to publish") for r in rows) and "<- published" not in said, rows
    assert (f"Leaderboard: {late['champion']} ({late['model_version']}), marked '<- to publish' above: "
            f"{reporting.WITHDRAWN_MARK}") in said, said
    assert late["published_rows"] == 0 and late["skipped"] and late["published_by"] == other["run_id"]
    assert f"run {other['run_id']}" in late["note"] and "found under the key's lock" in late["note"]
    assert list(late) == list(other) == list(RETRAIN_KEYS)  # review20: refused under the key's lock, the same keys
    assert set(store.read(dataset="tiny", as_of=SLOT)["run_id"]) == {other["run_id"]}  # the other run's, alone
    assert late["model_version"] != other["model_version"]
    assert late["model_version"] not in [v.version for v in registry.list()]  # removed: no publish names it
    assert registry.production("tiny") is None  # the losing run's promotion withdrawn (nothing was in production)
    assert registry.champion("tiny").version == other["model_version"]
    (undone,) = [e for e in registry.history("tiny") if e["version"] == late["model_version"]
                 and e["action"] in ("withdraw", "withdraw_champion")]
    assert undone["action"] == ("withdraw" if promote else "withdraw_champion")
    assert "withdrawn" in late["note"] and "publishes nothing. Its " in late["note"]  # ui19: two sentences
    run = flow_run_of(late["run_id"])
    assert run.state.is_completed() and other["run_id"] in run.state.message
    # artifacts17/19: its decision artifact was written before the publish; the key's newest version is its
    # follow-up saying the winner was withdrawn and which run published (not the winner, as if it had published)
    from flow_helpers import artifacts_of

    (decision, *earlier) = artifacts_of(late["run_id"])["promotion-decision-tiny"]  # newest first
    assert earlier and late["model_version"] in earlier[0].data  # the decision it made before the publish
    assert decision.data.startswith("## Withdrawn: nothing published by this run")
    assert f"/runs/flow-run/{other['run_id']})" in decision.data and late["model_version"] in decision.data
    assert "withdrawn" in decision.description
    # retrainslot19: its leaderboard too (it marked the withdrawn winner published)
    (board, before) = artifacts_of(late["run_id"])["leaderboard-tiny"]
    marks = [{r["model"]: r["published"] for r in json.loads(a.data) if r["published"]} for a in (before, board)]
    assert marks == [{late["champion"]: reporting.TO_PUBLISH_MARK}, {late["champion"]: reporting.WITHDRAWN_MARK}]
    assert "Withdrawn: nothing published by this run" in board.description
    assert f"/runs/flow-run/{other['run_id']})" in board.description


def _evaluation(**given) -> dict:
    """flow_kwargs' overrides with `given` in [evaluation]."""
    from flow_helpers import TINY_OVERRIDES

    return {**TINY_OVERRIDES, "evaluation": {**TINY_OVERRIDES["evaluation"], **given}}


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", ["kept", "promoted"])
def test_a_retrain_slot_another_run_retrains_while_this_one_computes_is_not_published_again(flow_kwargs, monkeypatch,
                                                                                              case):
    """Regression (retrainslot19): a scheduled retrain (overwrite on: it replaces the forecast flow's publish of its
    as_of) checked whether its slot was retrained only as it started. Another run of the slot (a real process here: a
    restarted serve's, a retried Crashed run's) that retrained and published it while this one computed, and this one,
    both published, each promoting or keeping as it decided. The check is made again under the key's lock in the
    publish: this run publishes nothing, records no keep event, has its promotion withdrawn in the same hold of the
    registry's lock, ends Completed('Skipped: ...') naming the other run; its decision and leaderboard artifacts get a
    follow-up version (the key's newest) saying that nothing of it was published and which run did."""
    import json

    from flow_helpers import artifacts_of
    from prefect.runtime import flow_run

    from flowcast.flows import pipeline, retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    # production: the slot before's winner ("kept": the same data, this run keeps it), or naive alone ("promoted":
    # this run's winner beats it)
    weak = {"overrides": _evaluation(statistical=["naive"], combination=[])} if case == "promoted" else {}
    first = retrain_flow(**{**flow_kwargs, **weak}, **STATISTICAL)
    production = first["model_version"]
    assert registry.production("tiny").version == production
    # the other run of the slot keeps production whatever it scores (naive its one baseline, a margin no challenger
    # meets)
    other_kwargs = {**flow_kwargs, **STATISTICAL,
                    "overrides": _evaluation(statistical=["naive"], combination=[], margin=100.0)}
    real_scoring = pipeline.score_candidates
    other: dict = {}

    def then_another_run_retrains(*args, **kwargs):  # the race window: this run read production, then scores
        scored = real_scoring(*args, **kwargs)
        other.update(_other_run_of_the_slot(NEXT, other_kwargs))
        return scored

    monkeypatch.setattr(pipeline, "score_candidates", then_another_run_retrains)
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: NEXT)
    late = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert other["published_rows"] > 0 and not other.get("skipped") and not other["decision"]["promote"]
    assert late["decision"]["publish"] == ("production" if case == "kept" else late["champion"])
    assert late["published_rows"] == 0 and late["skipped"] and late["retrained_by"] == other["run_id"]
    assert f"run {other['run_id']} kept the production model {production}" in late["note"]
    assert list(late) == list(other) == list(RETRAIN_KEYS)  # review20: refused under the key's lock, the same keys
    assert "found under the key's lock" in late["note"]
    assert set(store.read(dataset="tiny", as_of=NEXT)["run_id"]) == {other["run_id"]}  # the other run's, alone
    assert registry.production("tiny").version == production
    keeps = [(e["run"], e["version"]) for e in registry.history("tiny") if e["action"] == "keep"]
    assert keeps == [(other["run_id"], production)]  # this run, refused, recorded no keep
    if case == "promoted":  # its winner was promoted over production, then withdrawn in the refused publish's hold
        assert late["model_version"] != production
        (undone,) = [e for e in registry.history("tiny") if e["version"] == late["model_version"]
                     and e["action"] == "withdraw"]
        assert undone["previous"] == production and "Its promotion of the winner was withdrawn" in late["note"]
        assert late["model_version"] not in [v.version for v in registry.list()]  # removed: no publish names it
    run = flow_run_of(late["run_id"])
    assert run.state.is_completed() and run.state.message == f"Skipped: {late['note']}"
    assert run.name.endswith("(skipped)") and "skipped" in run.tags
    # the slot is done: a third run of it does nothing, naming the run that published
    assert retrain_flow(**flow_kwargs, **STATISTICAL)["retrained_by"] == other["run_id"]
    said = artifacts_of(late["run_id"])
    (decision, *earlier) = said["promotion-decision-tiny"]  # newest first
    # kept: nothing of this run was withdrawn (it recorded no keep), and no artifact says it was (review19)
    head, mark = (("Withdrawn: nothing published by this run", reporting.WITHDRAWN_MARK) if case == "promoted" else
                  ("Not published by this run", reporting.NOT_PUBLISHED_MARK))
    assert earlier and decision.data.startswith(f"## {head}")
    assert f"/runs/flow-run/{other['run_id']})" in decision.data
    # ui20: a kept production model is named as the leaderboard names it, not by its model's name alone
    chose = f"production ({production})" if case == "kept" else f"{late['champion']} ({late['model_version']})"
    assert f"(the previous version of this key) chose {chose}:" in decision.data, decision.data
    (board, before) = said["leaderboard-tiny"]  # its leaderboard, then the follow-up, the key's newest
    winner = "production" if case == "kept" else late["champion"]
    marks = [{r["model"]: r["published"] for r in json.loads(a.data) if r["published"]} for a in (before, board)]
    assert marks == [{winner: reporting.TO_PUBLISH_MARK}, {winner: mark}]
    assert board.description.startswith(f"As of 2019-07-08 03:00 UTC: {head}")
    assert f"/runs/flow-run/{other['run_id']})" in board.description
    (details, before) = said["leaderboard-details-tiny"]  # its details too (they marked the winner published)
    assert reporting.TO_PUBLISH_MARK in before.data and "✔ published" not in before.data + details.data
    assert details.data.startswith(f"## {head}") and mark in details.data
    assert f"/runs/flow-run/{other['run_id']})" in details.data


@pytest.mark.usefixtures("prefect_api")
def test_a_retrain_slot_the_forecast_flow_published_is_retrained_and_replaced(flow_kwargs, monkeypatch):
    """The check under the key's lock refuses only another run's retrain of the slot: a scheduled retrain whose as_of
    the forecast flow published (the production model of an earlier as_of) retrains and replaces that publish."""
    from prefect.runtime import flow_run

    from flowcast.flows import forecast_flow, retrain_flow
    from flowcast.store import open_store

    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    retrain_flow(as_of=SLOT - timedelta(days=7), **flow_kwargs, **STATISTICAL)
    forecast = forecast_flow(as_of=NEXT, **flow_kwargs)
    assert store.receipt_of("tiny", NEXT)["run_id"] == forecast["run_id"]
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: NEXT)
    retrained = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert retrained["published_rows"] > 0 and not retrained.get("skipped")
    assert store.receipt_of("tiny", NEXT)["run_id"] == retrained["run_id"]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_retrain_slot_whose_other_run_promoted_first_ends_skipped_not_failed(flow_kwargs, monkeypatch):
    """Regression (retrainslot19): of two runs of one retrain slot that both decided to promote, the one whose
    promotion's compare and swap found production moved by the other (which then published the slot) failed
    (ProductionMovedError, 'run again to compare against the new production model', a failed-run alert) although
    its slot was done. It registers nothing and ends Completed('Skipped: ...') naming the other run."""

    from prefect.runtime import flow_run

    from flowcast.flows import pipeline, retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = retrain_flow(**{**flow_kwargs, "overrides": _evaluation(statistical=["naive"], combination=[])},
                         **STATISTICAL)  # naive in production: both runs of the next slot replace it
    real_scoring = pipeline.score_candidates
    other: dict = {}

    def then_another_run_retrains(*args, **kwargs):  # the race window: this run read production, then scores
        scored = real_scoring(*args, **kwargs)
        other.update(_other_run_of_the_slot(NEXT, {**flow_kwargs, **STATISTICAL}))
        return scored

    monkeypatch.setattr(pipeline, "score_candidates", then_another_run_retrains)
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: NEXT)
    late = retrain_flow(**flow_kwargs, **STATISTICAL)
    versions = [v.version for v in registry.list()]
    assert other["decision"]["promote"] and other["published_rows"] > 0
    assert late["published_rows"] == 0 and late["skipped"] and late["retrained_by"] == other["run_id"]
    assert late["registered"] == {} and versions == [first["model_version"], other["model_version"]]
    assert list(late) == list(other) == list(RETRAIN_KEYS)  # review20: refused as production moved, the same keys
    assert f"run {other['run_id']} registered {other['model_version']}" in late["note"]
    assert "was neither registered nor promoted" in late["note"] and "run again" not in late["note"]
    assert registry.production("tiny").version == other["model_version"]
    assert set(store.read(dataset="tiny", as_of=NEXT)["run_id"]) == {other["run_id"]}
    run = flow_run_of(late["run_id"])
    assert run.state.is_completed() and run.state.message == f"Skipped: {late['note']}"


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_slot_retrain_that_kept_production_moved_by_the_other_run_says_nothing_was_withdrawn(flow_kwargs,
                                                                                               monkeypatch):
    """Regression (review20): a scheduled retrain that kept the production model, whose publish's guard found
    production moved by another run of its slot (which promoted and published it after this run's check that
    production was unmoved), ends skipped naming that run, and its follow-up decision and leaderboard were headed
    'Withdrawn: nothing published by this run' and said its promotion was withdrawn, though it promoted nothing
    (retrainslot19's path missed review19's `withdrawn` flag). They say 'Not published by this run' now."""
    import json

    from flow_helpers import artifacts_of
    from prefect.runtime import flow_run

    from flowcast.flows import pipeline, retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = retrain_flow(**{**flow_kwargs, "overrides": _evaluation(statistical=["naive"], combination=[])},
                         **STATISTICAL)  # naive in production: the other run of the next slot replaces it
    real_artifact = pipeline.reporting.decision_artifact
    other: dict = {}

    def then_another_run_retrains(*args, **kwargs):  # after this run's check that production is unmoved
        if not other:
            other.update(_other_run_of_the_slot(NEXT, {**flow_kwargs, **STATISTICAL}))
        return real_artifact(*args, **kwargs)

    monkeypatch.setattr(pipeline.reporting, "decision_artifact", then_another_run_retrains)
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: NEXT)
    late = retrain_flow(**{**flow_kwargs, "overrides": _evaluation(statistical=["naive"], combination=[],
                                                                   margin=100.0)}, **STATISTICAL)  # keeps naive
    assert other["decision"]["promote"] and other["published_rows"] > 0
    assert late["decision"]["publish"] == "production" and late["model_version"] is None
    assert late["skipped"] and late["retrained_by"] == other["run_id"] and late["published_rows"] == 0
    assert registry.production("tiny").version == other["model_version"] != first["model_version"]
    said = artifacts_of(late["run_id"])
    (decision, *earlier) = said["promotion-decision-tiny"]  # newest first
    assert earlier and decision.data.startswith("## Not published by this run")
    assert "nothing of this run was withdrawn" in decision.data
    (board, before) = said["leaderboard-tiny"]
    assert [{r["model"]: r["published"] for r in json.loads(a.data) if r["published"]} for a in (before, board)] == [
        {"production": reporting.TO_PUBLISH_MARK}, {"production": reporting.NOT_PUBLISHED_MARK}]
    (details, _) = said["leaderboard-details-tiny"]
    assert details.data.startswith("## Not published by this run")


@pytest.mark.parametrize(("held_version", "withdrawn"), [
    ("own", False),  # the other run (a forecast of this as_of) published with this run's champion: it stands
    ("other-v1", True),  # the other run's own model: this run's champion is withdrawn and removed
    (None, True),  # a publish of a baseline without a version
])
def test_a_refused_backfill_retrain_keeps_its_champion_when_the_publish_held_is_made_by_it(
        tmp_path, held_version, withdrawn):
    """Review19: a backfill's retrain of a date (no promotion), overwrite off, whose publish was refused withdrew its
    champion whatever the key held. A forecast run of that date whose production model was trained after it takes the
    newest champion of data up to it (`model_for_as_of`): this run's, registered a moment before. When that run
    published first, the store holds forecasts made by this very champion; withdrawing it removed the version that
    the published forecasts name (and marked it dropped for later runs). As `PublishGuard.refuse` leaves a promotion
    the other run published with, the champion stays."""
    import json
    import logging

    from flowcast.flows.pipeline import _undo_champion
    from flowcast.registry import Promotion

    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    (art / "meta.json").write_text(json.dumps({"cell": "theta"}))
    registry = ModelRegistry(tmp_path / "models")
    at = datetime(2019, 7, 1)
    v = registry.register(art, name="theta", dataset="tiny", config={}, fingerprint={"source": "tiny"}, metrics={},
                          as_of=at, created_at=at, then=Promotion("champion", as_of=at)).version
    said, undone = _undo_champion(registry, "tiny", v, as_of=at, at=at, late="published by run b",
                                  log=logging.getLogger("test"), held_version=v if held_version == "own" else held_version)
    assert undone is withdrawn
    if withdrawn:
        assert "was withdrawn" in said and v not in [m.version for m in registry.list()]
        assert registry.champion("tiny") is None
    else:
        assert "stays" in said and registry.get(v).version == v and registry.champion("tiny").version == v
        assert all(e["action"] != "withdraw_champion" for e in registry.history("tiny"))


@pytest.mark.parametrize("withdrawn", [True, False])
def test_the_follow_up_decision_says_withdrawn_only_when_something_was(withdrawn):
    """Review19: a refused retrain that kept the production model (or whose winner the other run published with)
    withdrew nothing, yet its follow-up decision was headed 'Withdrawn' and said its promotion was withdrawn."""
    md = reporting.withdrawn_decision_markdown("tiny as of 2019-07-01 00:00 is published already", "production",
                                               "theta-v1", withdrawn=withdrawn)
    assert md.startswith("## Withdrawn: ") is withdrawn
    assert ("withdrawn as said above" in md) is withdrawn
    assert "chose production (theta-v1)" in md


RUN_A, RUN_B = "2298be58-b161-44ff-ae5f-dccb54078982", "5110a02d-9213-4f97-b92d-33a90326d77d"


@pytest.mark.parametrize(("published_by", "rows", "said"), [
    (RUN_A, "30", f"run {RUN_A} registered naive-v1 and its 30 forecast rows are published. A scheduled"),
    (RUN_B, "30", f"run {RUN_A} registered naive-v1 and its 30 forecast rows are published by run {RUN_B}. A scheduled"),
    (RUN_A, "1776", f"run {RUN_A} registered naive-v1 and its 1,776 forecast rows are published. A scheduled"),
])
def test_a_retrained_slot_names_the_run_that_published_it_once(tmp_path, published_by, rows, said):
    """ui20: a second run of a retrain slot said 'run 2298be58-... registered naive-v1 and its 30 forecast rows are
    published (run 2298be58-...)', the same 36-character id twice in one sentence, in its state message, log and
    'Nothing published by this run' artifact. The run that published is named only where it is another run.
    ui43: its count is written as every other count of rows is (`1,776`; it said `its 1776 forecast rows`)."""
    from flowcast.flows.common import retrained_by

    registry = ModelRegistry(tmp_path / "models")
    mv = registry.register(None, name="naive", dataset="tiny", kind="statistical", as_of=SLOT,
                           recipe={"components": [{"type": "statistical", "model": "naive"}], "weights": [1.0]},
                           fingerprint={"run_id": RUN_A}, created_at=datetime(2026, 12, 5))
    held = {"model_version": mv.version, "rows": rows, "run_id": published_by}
    found = retrained_by(registry, "tiny", SLOT.replace(tzinfo=None), held)
    assert found is not None and found[0] == RUN_A
    assert said in found[1] and found[1].count(RUN_A) == 1, found[1]


def test_a_slot_kept_long_ago_is_still_told_done_once_its_keep_event_moved_to_the_history_file(tmp_path):
    """registry19: production.json keeps a dataset's newest KEEP_EVENTS_KEPT `keep` events; older ones move to
    history.jsonl. The slot check (`_kept`, what `retrained_already` asks) reads the whole history, so a slot
    whose event moved out is still told done by the run that published it (and by no other run)."""
    from flowcast.flows.common import _kept
    from flowcast.registry import HISTORY, KEEP_EVENTS_KEPT, Kept

    reg = ModelRegistry(tmp_path / "models")
    v = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                     created_at=SLOT).version
    reg.promote(v, at=SLOT)
    slots = [SLOT + timedelta(days=7 * w) for w in range(KEEP_EVENTS_KEPT + 5)]
    for w, at in enumerate(slots):
        with reg.publishing("sales", v, at=at, kept=Kept(as_of=at, run=f"run-{w}")) as check:
            check("the publish")  # the store let it through: its keep event is written
    assert "run-0" in (tmp_path / "models" / HISTORY).read_text()
    assert "run-0" not in (tmp_path / "models" / "production.json").read_text()
    first = slots[0].replace(tzinfo=None)
    held = {"run_id": "run-0", "model_version": v}
    assert _kept(reg, "sales", first, held)["run"] == "run-0"
    assert _kept(reg, "sales", first, {"run_id": "run-1", "model_version": v}) is None
    assert _kept(reg, "sales", slots[-1].replace(tzinfo=None), {"run_id": f"run-{len(slots) - 1}",
                                                                "model_version": v}) is not None


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("rerun", ["date", "slot", "promoted-by-hand"])
def test_a_winner_left_in_production_by_a_retrain_killed_before_its_refused_publish_is_withdrawn(
        flow_kwargs, monkeypatch, rerun):
    """Regression (faults20): a retrain with overwrite off whose date another run published while it computed
    promotes its winner, then its publish is refused under the key's lock and the promotion withdrawn there. A real
    process SIGKILLed between the two (after its promotion, FLOWCAST_FAULT=flow:before_publish) left its winner in
    production for good: every later run of that date or slot found it published and skipped it, so production
    stayed on a model whose forecasts were never published. A re-run of the date (`backfill --mode retrain`'s
    date, overwrite off) or of the slot (scheduled) withdraws it, says so (also in a follow-up decision artifact:
    the killed run's, written before its publish, named the winner) and publishes nothing; a person who promoted it
    by hand since is left alone."""

    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert other["published_rows"] > 0 and registry.production("tiny") is None
    late = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": True, "overwrite": False}
    _killed_late_retrain(late, "flow:before_publish")
    left = registry.production("tiny")  # promoted, then killed: its forecasts never published (the key is other's)
    assert left is not None and left.version != other["model_version"]
    assert store.receipt_of("tiny", SLOT)["run_id"] == other["run_id"]
    if rerun == "promoted-by-hand":  # a person's choice since (`flowcast models promote`): it stands
        registry.promote(left.version, dataset="tiny", reason="manual promotion", at=SLOT + timedelta(days=1))
        again = retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)
        assert again["skipped"] and "withdrawn" not in again["note"]
        assert registry.production("tiny").version == left.version
        return
    if rerun == "date":
        again = retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)
    else:
        monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
        again = retrain_flow(**flow_kwargs, **STATISTICAL)
    assert again["skipped"] and again["published_rows"] == 0
    assert f"Production of tiny was {left.version}" in again["note"] and "withdrawn, production is empty" in again["note"]
    assert registry.production("tiny") is None  # as it was before the killed run promoted
    (undone,) = [e for e in registry.history("tiny") if e["version"] == left.version and e["action"] == "withdraw"]
    assert "stopped (killed, or out of disk) before its publish was refused" in undone["reason"]
    # out of production, and removed with its pin: the killed run was found dead (faults22: its pin, not lapsed, kept
    # it registered until gc; a version a live run pins is kept, review19)
    assert left.version not in registry.pins() and left.version not in [v.version for v in registry.list()]
    assert not (registry.versions_dir / left.version).exists()
    assert store.receipt_of("tiny", SLOT)["run_id"] == other["run_id"]  # the other run's publish stays
    from flow_helpers import artifacts_of

    # the killed run's decision named its winner: the key's newest says so

    (decision,) = artifacts_of(again["run_id"])["promotion-decision-tiny"]
    assert decision.data.startswith("## Withdrawn: nothing published by this run") and left.version in decision.data
    assert "withdrawn" not in retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)["note"]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_full_disk_when_a_refused_retrain_withdraws_its_winner_is_said_and_a_rerun_withdraws_it(
        flow_kwargs, monkeypatch, capsys, caplog):
    """faults20: a retrain with overwrite off whose date another run published while it computed, on a registry
    that cannot write its pointer (no space left) from the refusal of its publish on: the withdrawal's rewrite of
    production.json fails, the run fails with a StorageError naming the file and ENOSPC, production.json is whole
    and still the winner (as its backup), and the log says what brings it right; it said 'run again for this as_of
    to publish', which a run with overwrite off cannot (the as_of is the other run's). With room again, a re-run
    of the date withdraws the winner (the same as after a kill there)."""
    import errno

    from flowcast import registry as registry_mod
    from flowcast.atomic import storage_error
    from flowcast.errors import StorageError
    from flowcast.flows import pipeline, retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    real_write, real_refuse, full = registry_mod._write_json_atomic, registry_mod.PublishGuard.refuse, []

    def write(path, obj, fault="before_pointer_rename"):
        if full:  # the disk filled up as the publish was refused
            raise storage_error(path, OSError(errno.ENOSPC, "No space left on device"))
        return real_write(path, obj, fault)

    def refuse(self, reason, held_version=None):
        full.append(True)
        return real_refuse(self, reason, held_version)

    monkeypatch.setattr(registry_mod, "_write_json_atomic", write)
    monkeypatch.setattr(registry_mod.PublishGuard, "refuse", refuse)
    monkeypatch.setattr(pipeline, "published_already", lambda settings, as_of: None)  # empty as it started
    pointer = registry.root / "production.json"
    with pytest.raises(StorageError, match=f"could not write {pointer}: no space left on device"):
        retrain_flow(as_of=SLOT, promote=True, overwrite=False, **flow_kwargs, **STATISTICAL)
    left = registry.production("tiny")
    assert left is not None and left.version != other["model_version"] and full
    assert pointer.read_bytes() == (registry.root / "production.backup.json").read_bytes()
    # the run's log: Prefect's flow-run logger (its console handler's stream, or the records pytest captures)
    said = " ".join((capsys.readouterr().err + caplog.text).split())
    assert f"{left.version} stays in production of tiny" in said and "withdrawing it failed" in said
    assert "run again for this as_of to publish" not in said
    assert f"the as_of holds {other['model_version']}'s" in said and "withdraws" in said
    monkeypatch.undo()  # room again
    again = retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert again["skipped"] and f"Production of tiny was {left.version}" in again["note"]
    assert registry.production("tiny") is None


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_refused_retrain_killed_after_its_withdrawal_leaves_production_as_it_was(flow_kwargs):
    """faults20: a retrain with overwrite off whose publish was refused (another run published its date), a real
    process SIGKILLed right after its promotion was withdrawn under the registry's lock
    (FLOWCAST_FAULT=registry:refused_withdrawn), before its note and its follow-up decision artifact: production is
    what it was, the pointer and its backup agree, the winner is removed, and a re-run of the date skips it with
    nothing left to withdraw. withdraw20: the killed run's decision artifact, written before its publish and naming
    its winner, stayed the key's newest for good; the re-run that skips writes the follow-up (`withdrawn_unsaid`: the
    `withdraw` event names the run whose decision is the newest), once."""
    from flow_helpers import artifacts_of

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    late = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": True, "overwrite": False}
    _killed_late_retrain(late, "registry:refused_withdrawn")
    assert registry.production("tiny") is None  # withdrawn before the kill
    (undone,) = [e for e in registry.history("tiny") if e["action"] == "withdraw"]
    assert undone["version"] not in [v.version for v in registry.list()]  # removed
    root = registry.root
    assert (root / "production.json").read_bytes() == (root / "production.backup.json").read_bytes()
    assert store.receipt_of("tiny", SLOT)["run_id"] == other["run_id"]
    assert undone["run"] != other["run_id"]  # the killed run's (the version and the run whose decision named it)
    again = retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert again["skipped"] and registry.production("tiny") is None
    assert (f"The newest decision of tiny (run {undone['run']}) chose {undone['version']}, whose promotion that run "
            "withdrew") in again["note"] and "production of tiny is empty since" in again["note"]
    (decision,) = artifacts_of(again["run_id"])["promotion-decision-tiny"]
    assert decision.data.startswith("## Withdrawn: nothing published by this run") and undone["version"] in decision.data
    (killed,) = artifacts_of(undone["run"])["promotion-decision-tiny"]  # its decision: the winner, as if published
    assert undone["version"] in killed.data and not killed.data.startswith("## Withdrawn")
    third = retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)  # said once: nothing more
    assert third["skipped"] and "withdrawn" not in third["note"] and "promotion-decision-tiny" not in artifacts_of(
        third["run_id"])


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("rerun", ["retrain", "backfill"])
def test_a_refused_retrain_killed_after_withdrawing_its_champion_gets_its_follow_up_decision(flow_kwargs, rerun):
    """followup21: a retrain that does not promote (promote=False: a backfill's date), overwrite off, whose publish was
    refused (another run published its date), a real process SIGKILLed right after it withdrew its winner's champion
    record (FLOWCAST_FAULT=registry:champion_withdrawn), before its follow-up decision artifact: its decision, naming
    the winner, stayed the key's newest, and the `withdraw_champion` event did not name the run, so no later run could
    tell. The event names it now; the retrain of the date that skips it (`rerun` retrain), or a retrain backfill over
    the date, which skips it before any retrain runs (`rerun` backfill; the killed run a backfill's date, its
    artifacts under the `backfill-` keys), writes the follow-up, once."""
    from flow_helpers import artifacts_of

    from flowcast.flows import retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    late = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": False, "overwrite": False}
    _killed_late_retrain(late, "registry:champion_withdrawn", backfill=rerun == "backfill")
    (undone,) = [e for e in registry.history("tiny") if e["action"] == "withdraw_champion"]
    assert registry.champion("tiny").version == other["model_version"]  # put back before the kill
    assert undone["run"] != other["run_id"] and undone["version"] not in [v.version for v in registry.list()]
    key = reporting.artifact_key("decision", "tiny", backfill=rerun == "backfill")
    (killed,) = artifacts_of(undone["run"])[key]  # its decision, written before its publish: the winner, to publish
    assert killed.data.startswith(f"### To publish: **{undone['version'].rsplit('-v', 1)[0]}** ({undone['version']})")
    said = (f"The newest decision of tiny (run {undone['run']}) chose {undone['version']}, whose record as the "
            f"champion of tiny that run withdrew")

    def again() -> tuple[str, dict]:
        return _skipping_rerun(flow_kwargs, backfill=rerun == "backfill", promote=False)

    note, arts = again()
    assert said in note and f"the recorded champion of tiny is {other['model_version']} since" in note, note
    (decision,) = arts[key]
    assert decision.data.startswith("## Withdrawn: nothing published by this run") and undone["version"] in decision.data
    note, arts = again()  # said once: nothing more
    assert "withdrew" not in note and key not in arts
    assert registry.champion("tiny").version == other["model_version"]


def _killed_skipping_retrain(kwargs: dict, fault: str, *, backfill: bool = False) -> None:
    """A retrain of a date another run published (it skips it), a real process (`slot_retrain_child.py`, this
    session's Prefect API) SIGKILLed at FLOWCAST_FAULT=`fault` (asserted); `backfill`: a retrain backfill over the
    date (`backfill_flow(start=as_of, end=as_of, mode='retrain')`) instead."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL

    here = Path(__file__).resolve().parent
    env = {**os.environ, "FLOWCAST_FAULT": fault, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(here.parents[1] / "src"), str(here)])}
    if backfill:
        kwargs = {**{k: v for k, v in kwargs.items() if k not in ("as_of", "overwrite", "models")},
                  "start": kwargs["as_of"], "end": kwargs["as_of"], "mode": "retrain"}
        code = "import json, sys; from flowcast.flows import backfill_flow; backfill_flow(**json.loads(sys.argv[1]))"
        argv = ["-c", code, json.dumps(kwargs)]
    else:
        argv = [str(here / "slot_retrain_child.py"), SLOT.isoformat(), json.dumps(kwargs)]
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("left", "skipper", "fault"), [
    ("production", "retrain", "registry:winner_withdrawn"), ("champion", "retrain", "registry:champion_withdrawn"),
    ("champion", "backfill", "registry:champion_withdrawn"),
    # faults22: killed between the withdrawal's event and the removal of the winner's files
    ("production", "retrain", "registry:before_version_removal"),
    ("champion", "backfill", "registry:version_hidden")])
def test_a_run_killed_after_withdrawing_a_killed_runs_winner_leaves_its_follow_up_to_the_next_run(flow_kwargs, left,
                                                                                                  skipper, fault):
    """takeback21: a retrain with overwrite off killed before its refused publish (FLOWCAST_FAULT=flow:before_publish)
    left its winner in production (`left` production: it promoted) or recorded as the champion (`left` champion:
    promote=False, a backfill's date), its decision ('To publish') the key's newest. A run that skips the date
    withdraws it on its behalf (`withdraw_unpublished_winner`), then writes the follow-up decision; a real process
    SIGKILLed between the two (FLOWCAST_FAULT=registry:winner_withdrawn, registry:champion_withdrawn) left that
    decision the newest for good: the withdrawal's event named neither run, so the next run of the date found nothing
    to withdraw and nothing unsaid. The event names the withdrawing run and the run it withdrew for (`for_run`); the
    next run of the date writes the follow-up, once. `skipper` backfill: the killed run a backfill's date (its
    decision under the `backfill-` key), the withdrawing run and the next one retrain backfills over the date.
    faults22: the winner is removed with its withdrawal (the killed run's pin, which lasts 24 hours, kept it
    registered, listed by `models list`, though the killed run was found dead), and a kill between the withdrawal's
    event and the removal of its files (`before_version_removal`, `version_hidden`) leaves it unlisted, its files
    removed by the next run."""
    from flow_helpers import artifacts_of

    from flowcast.flows import retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    late = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": left == "production",
            "overwrite": False}
    backfill = skipper == "backfill"
    _killed_late_retrain(late, "flow:before_publish", backfill=backfill)
    winner = registry.production("tiny") if left == "production" else registry.champion("tiny")
    assert winner is not None and winner.version != other["model_version"]
    owner = winner.fingerprint["run_id"]
    skip = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "overwrite": False}
    _killed_skipping_retrain(skip, fault, backfill=backfill)
    action = "withdraw" if left == "production" else "withdraw_champion"
    (undone,) = [e for e in registry.history("tiny") if e["action"] == action and e["version"] == winner.version]
    assert undone["for_run"] == owner and undone["run"] not in (owner, other["run_id"])
    assert registry.production("tiny") is None and registry.champion("tiny").version == other["model_version"]
    assert winner.version not in [v.version for v in registry.list()]  # withdrawn: not listed
    if fault.endswith("_withdrawn"):  # removed with the withdrawal, the killed run's pin with it
        assert not (registry.versions_dir / winner.version).exists() and not registry.pins()
    key = reporting.artifact_key("decision", "tiny", backfill=backfill)
    (killed,) = artifacts_of(owner)[key]  # the killed run's decision: the winner, to publish
    assert killed.data.startswith(f"### To publish: **{winner.name}** ({winner.version})"), killed.data[:200]
    assert key not in artifacts_of(undone["run"])  # the withdrawing run wrote no follow-up before its kill

    def again() -> tuple[str, dict]:
        return _skipping_rerun(flow_kwargs, backfill=backfill)

    note, arts = again()
    assert (f"The newest decision of tiny (run {owner}) chose {winner.version}, whose "
            f"{'promotion' if left == 'production' else 'record as the champion of tiny'} run {undone['run']} "
            "withdrew on its behalf") in note, note
    (decision,) = arts[key]
    assert decision.data.startswith("## Withdrawn: nothing published by this run") and winner.version in decision.data
    note, arts = again()  # said once: nothing more
    assert "withdr" not in note and key not in arts
    assert not [d for d in registry.versions_dir.iterdir() if winner.version in d.name]  # its files gone


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", ["killed", "full-disk"])
def test_a_champion_left_by_a_refused_backfill_retrain_is_withdrawn_by_a_rerun_of_the_date(
        flow_kwargs, monkeypatch, capsys, caplog, fault):
    """faults20: a retrain that does not promote (a backfill's date, overwrite off) whose date another run published
    while it computed records its winner as the dataset's champion (what a forecast run takes while no model is in
    production), then withdraws that record once its publish is refused. SIGKILLed in between (a real process,
    FLOWCAST_FAULT=flow:before_publish), or the withdrawal's pointer write failing (ENOSPC), the winner stayed the
    champion for good (a re-run of the date skipped it; the log of the full disk said `flowcast gc --version V`
    removes it, which removes its files and leaves the champion record naming it). A re-run of the date withdraws it: the other run's
    winner is the champion again."""
    import errno

    from flowcast import registry as registry_mod
    from flowcast.atomic import storage_error
    from flowcast.flows import pipeline, retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert registry.champion("tiny").version == other["model_version"]
    late = {**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": False, "overwrite": False}
    if fault == "killed":
        _killed_late_retrain(late, "flow:before_publish")
    else:
        real_write, real_withdraw, full = registry_mod._write_json_atomic, registry_mod.ModelRegistry.withdraw_champion, []

        def write(path, obj, fault="before_pointer_rename"):
            if full:
                raise storage_error(path, OSError(errno.ENOSPC, "No space left on device"))
            return real_write(path, obj, fault)

        def withdraw_champion(self, *a, **kw):
            full.append(True)
            return real_withdraw(self, *a, **kw)

        monkeypatch.setattr(registry_mod, "_write_json_atomic", write)
        monkeypatch.setattr(registry_mod.ModelRegistry, "withdraw_champion", withdraw_champion)
        monkeypatch.setattr(pipeline, "published_already", lambda settings, as_of: None)
        done = retrain_flow(**{**late, "as_of": SLOT})
        assert done["skipped"] and full
        said = " ".join((capsys.readouterr().err + caplog.text).split())
        assert "withdrawing it failed" in said and "flowcast gc --version" not in said
        assert "run this date again (overwrite off)" in said
        monkeypatch.undo()
    left = registry.champion("tiny")  # recorded, never published
    assert left is not None and left.version != other["model_version"]
    again = retrain_flow(as_of=SLOT, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert again["skipped"] and f"The recorded champion of tiny was {left.version}" in again["note"]
    assert registry.champion("tiny").version == other["model_version"] and registry.production("tiny") is None
    assert [e["action"] for e in registry.history("tiny") if e["version"] == left.version][-1] == "withdraw_champion"


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("run_b", ["live", "killed"])
def test_a_scheduled_run_of_the_slot_leaves_a_live_runs_unpublished_winner_alone(flow_kwargs, monkeypatch, run_b):
    """Regression (withdraw20): a retrain of the slot's as_of with overwrite on (`flowcast run --as-of`, a real
    process here: run B) promoted its winner and was about to publish it when a scheduled run of that slot started:
    the slot was retrained already, and its check for a winner a killed run left unpublished (read without the
    registry's lock, pins ignored) took B's for one and withdrew it; B then failed, ProductionMovedError, its work
    lost. B pins its winner until its publish ends, and its claim names its live process: the scheduled run leaves
    the winner alone and B publishes it (B stopped at `flow:before_publish`, SIGSTOP, then SIGCONT). B killed there
    instead (its pin stays 24 hours), the scheduled run withdraws it as before."""
    import json
    import os
    import signal

    from prefect.runtime import flow_run

    from flowcast.flows import retrain_flow
    from flowcast.store import open_store

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    store = open_store(load_settings(None, home=flow_kwargs["home"]))
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    first = retrain_flow(**{**flow_kwargs, "overrides": _evaluation(statistical=["naive"], combination=[])},
                         **STATISTICAL)  # naive in production: run B's candidates beat it
    b = _late_retrain({**flow_kwargs, **STATISTICAL, "as_of": SLOT.isoformat(), "promote": True, "overwrite": True},
                      "flow:before_publish", stop=True)
    try:
        assert stopped(b, timeout=400.0, poll=0.2), b.communicate()[1][-3000:]
        winner = registry.production("tiny")  # B's: promoted, not published
        assert winner.version != first["model_version"] and winner.version in registry.pins()
        if run_b == "killed":
            os.kill(b.pid, signal.SIGKILL)
            b.wait(timeout=60)
        skipped = retrain_flow(**flow_kwargs, **STATISTICAL)  # the scheduled run of the slot: retrained already
        assert skipped["skipped"] and skipped["retrained_by"] == first["run_id"]
        if run_b == "killed":
            assert f"Production of tiny was {winner.version}" in skipped["note"] and "withdrawn" in skipped["note"]
            assert registry.production("tiny").version == first["model_version"]
            return
        assert "withdrawn" not in skipped["note"] and registry.production("tiny").version == winner.version
    finally:
        if b.poll() is None:
            os.kill(b.pid, signal.SIGCONT)
    out, err = b.communicate(timeout=400)
    assert b.returncode == 0, err[-3000:]
    done = json.loads(out.strip().splitlines()[-1])
    assert done["published_rows"] > 0 and done["model_version"] == winner.version and not done["skipped"]
    assert store.receipt_of("tiny", SLOT)["run_id"] == done["run_id"]
    assert registry.production("tiny").version == winner.version


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("meanwhile", ["retract", "pinned-since"])
def test_an_unpublished_winner_is_withdrawn_past_a_retract_and_never_once_a_run_pins_it_meanwhile(flow_kwargs,
                                                                                                   meanwhile):
    """Regression (withdraw20): `withdraw_unpublished_winner` compared the pointer's latest change with the killed
    run's promotion counting `retract` events (gc taking a version out from under production: no pointer moves), so a
    retract since left the winner in production for good; it reads past `registry.NO_POINTER_MOVE` now, as `models
    rollback --expected` does. And it read its conditions without the registry's lock: a run that began to use the
    winner (pinned it: a forecast run, which then publishes with it) between that look and the withdrawal lost it.
    They are read again in the withdrawal's hold of the lock: a pin since leaves the winner alone."""
    from datetime import timedelta

    from prefect import flow

    from flowcast.flows import retrain_flow
    from flowcast.flows.common import flow_settings, withdraw_unpublished_winner
    from flowcast.registry import Pin, Promotion

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    other = retrain_flow(as_of=SLOT, promote=False, overwrite=False, **flow_kwargs, **STATISTICAL)
    key, at = SLOT.replace(tzinfo=None), datetime(2019, 7, 2)
    before = registry.register(None, name="naive", dataset="tiny", kind="statistical", recipe={"model": "naive"},
                               fingerprint={"source": "tiny"}, as_of=key - timedelta(days=30), created_at=at,
                               then=Promotion("promote", at=at)).version
    # a killed retrain of the slot's as_of: registered, promoted and pinned (its pin lasts 24 h), never published
    dead = registry.register(None, name="theta", dataset="tiny", kind="statistical", recipe={"model": "theta"},
                             fingerprint={"source": "tiny", "run_id": "run-killed"}, as_of=key, created_at=at,
                             then=Promotion("promote", at=at),
                             pin=Pin(run="run-killed", at=at, until=at + timedelta(hours=24))).version
    asked: list[str] = []

    def alive(run: str) -> bool | None:
        asked.append(run)
        if meanwhile == "pinned-since":  # a forecast run takes it up right after this look
            registry.pin(dead, run="run-forecasting", at=at, until=at + timedelta(hours=24))
        return False  # the killed run's process is gone

    if meanwhile == "retract":
        registry.delete(before, allow_protected=True, at=at)  # gc: out from under production, a `retract`
        assert registry.history("tiny")[-1]["action"] == "retract"

    @flow
    def skip_of_the_slot() -> tuple[str, object] | None:
        return withdraw_unpublished_winner(flow_settings(**flow_kwargs), SLOT, at + timedelta(hours=1), alive=alive)

    left = skip_of_the_slot()
    assert asked == ["run-killed"]
    if meanwhile == "retract":
        assert left is not None and f"Production of tiny was {dead}" in left[0]
        assert registry.production("tiny") is None and registry.history("tiny")[-1]["action"] == "withdraw"
    else:
        assert left is None and registry.production("tiny").version == dead
    # withdrawn, the killed run found dead: removed with its pin (faults22: that pin kept it for gc); a pin since
    # (a live forecast run) leaves it in production
    assert other["published_rows"] > 0 and (dead in [v.version for v in registry.list()]) == (meanwhile != "retract")
    assert (dead in registry.pins()) == (meanwhile != "retract")


@pytest.mark.parametrize("kept_by", ["run-0", None], ids=["retrained-by-another-run", "not-retrained"])
def test_a_slot_check_under_the_keys_lock_reads_on_when_the_history_file_cannot_be_read(tmp_path, caplog, kept_by):
    """Review (mend21): a history.jsonl that cannot be read (here a folder in its place: an OSError, as a disk
    error or a permission) failed the scheduled retrain's publish in its slot check under the key's lock
    (`SlotRetrained`), where the same check as the run started (`retrained_already`) went on: every scheduled
    retrain's publish failed until the file was mended. The check reads production.json's events, where the keep
    event of a slot retrained now is (a slot is not published twice), and says which file it could not read."""
    from flowcast.flows.common import SlotRetrained
    from flowcast.registry import HISTORY, Kept

    reg = ModelRegistry(tmp_path / "models")
    v = reg.register(None, name="theta", dataset="sales", kind="statistical", recipe={"model": "theta"},
                     created_at=SLOT).version
    reg.promote(v, at=SLOT)
    if kept_by:
        with reg.publishing("sales", v, at=SLOT, kept=Kept(as_of=SLOT, run=kept_by)) as check:
            check("the publish")
    (tmp_path / "models" / HISTORY).mkdir()  # cannot be read as a file
    slot = SlotRetrained(reg, "sales", SLOT.replace(tzinfo=None))
    with caplog.at_level(logging.WARNING):
        refused = slot({"run_id": "run-0", "model_version": v, "rows": "30"})
    assert refused is bool(kept_by)
    assert (slot.found is not None and slot.found[0] == "run-0") is bool(kept_by)
    said = " ".join(caplog.text.split())
    assert f"{tmp_path / 'models'}/{HISTORY}" in said and "flowcast models repair" in said, said
    with pytest.raises(RegistryError, match=HISTORY):  # `models history` says what it cannot read, as before
        reg.history("sales")


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_refused_retrain_whose_promoted_winner_published_the_key_says_its_promotion_stands(flow_kwargs,
                                                                                            monkeypatch):
    """mend21: a retrain with overwrite off that promoted its winner, whose key a forecast run of the same as_of
    published meanwhile with production (this very winner), has its publish refused and its promotion left in place
    (`PublishGuard.refuse`: the other run published this model): the result said `decision.promote` false, so
    `flowcast run --json` said `promoted: false` of the model in production. It says what is true."""
    from flowcast.flows import forecast_flow, pipeline, retrain_flow

    registry = ModelRegistry(f"{flow_kwargs['home']}/models")
    real_artifact = pipeline.reporting.decision_artifact
    other: dict = {}

    def then_a_forecast_run_publishes(*args, **kwargs):  # after this run's promotion, before its publish
        if not other:
            other.update(forecast_flow(as_of=SLOT, overwrite=False, **flow_kwargs))
        return real_artifact(*args, **kwargs)

    monkeypatch.setattr(pipeline.reporting, "decision_artifact", then_a_forecast_run_publishes)
    late = retrain_flow(as_of=SLOT, promote=True, overwrite=False, **flow_kwargs, **STATISTICAL)
    assert other["model_version"] == late["model_version"] and other["published_rows"] > 0
    assert late["skipped"] and late["published_rows"] == 0 and late["published_by"] == other["run_id"]
    assert registry.production("tiny").version == late["model_version"]  # its promotion stands
    assert late["decision"]["promote"] is True
    assert (f"Its promotion of the winner stands: production of tiny is {late['model_version']}, whose forecasts of "
            "this as_of the other run published.") in late["note"], late["note"]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_flowcast_run_refused_after_computing_prints_its_note_not_a_publish(flow_kwargs, tiny_csv, tmp_path,
                                                                         monkeypatch):
    """mend21: `flowcast run` (no --as-of: a slot) whose publish another run of the slot refused under the key's
    lock (it retrained it while this one computed) printed 'Decision: ... published, not promoted.' and 'Published 0
    forecast rows ... Parquet: None': a publish that did not happen. It prints its leaderboard (no model marked
    published) and the note naming the run that retrained the slot."""
    import shutil

    from prefect.runtime import flow_run
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.flows import pipeline

    csv = shutil.copy(tiny_csv, tmp_path / "tiny.csv")  # the dataset `--data` names after the file: tiny
    kwargs = {**flow_kwargs, "source": {**flow_kwargs["source"], "path": str(csv)}, **STATISTICAL}
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('[evaluation]\nn_windows = 1\n[model]\nlauncher = "inline"\naccelerator = "cpu"\n')
    real_artifact = pipeline.reporting.decision_artifact
    other: dict = {}

    def then_another_run_retrains(*args, **kw):  # before this run's publish
        if not other:
            other.update(_other_run_of_the_slot(SLOT, kwargs))
        return real_artifact(*args, **kw)

    monkeypatch.setattr(pipeline.reporting, "decision_artifact", then_another_run_retrains)
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: SLOT)
    result = CliRunner().invoke(app, ["run", "--data", str(csv), "--id-col", "store", "--time-col", "month",
                                      "--target-col", "sales", "--freq", "1mo", "--horizon", "6", "--models", "none",
                                      "--config", str(cfg), "--home", flow_kwargs["home"]])
    assert result.exit_code == 0, result.output
    assert other["published_rows"] > 0 and not other.get("skipped")
    said = " ".join(result.stdout.split())
    assert "Backtest leaderboard" in said and " * " not in result.stdout, result.stdout
    assert f"tiny as of {SLOT:%Y-%m-%d %H:%M} UTC was retrained already" in said and f"run {other['run_id']}" in said, said
    assert "tiny: tiny as of" not in said, said  # the dataset named once (cli41)
    assert "found under the key's lock" in said and "publishes nothing" in said
    assert "Decision:" not in said and "Published 0" not in said and "Parquet: None" not in said, said


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_killed_schedule_slot_retrain_says_in_its_crashed_message_what_it_published(flow_kwargs):
    """ops54: a scheduled retrain has no as_of parameter (its as_of is its scheduled start), and the reaper's Crashed
    message of one SIGKILLed said whether it published 'cannot be told from here'. The run records the as_of it
    resolved in its claim: killed once its forecasts landed (publish:after_rename), the message says it published
    them."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flowcast.ops.reaper import CLAIMS, reap
    from flowcast.timekeys import utc_text

    here = Path(__file__).resolve().parent
    env = {**os.environ, "FLOWCAST_FAULT": "publish:after_rename", "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(here.parents[1] / "src"), str(here)])}
    killed = subprocess.run([sys.executable, str(here / "slot_retrain_child.py"), NEXT.isoformat(),
                             json.dumps({**flow_kwargs, **STATISTICAL})], env=env, capture_output=True, text=True,
                            timeout=400, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (claim,) = [json.loads(p.read_text()) for p in (Path(flow_kwargs["home"]) / CLAIMS).glob("*.json")]
    assert claim["as_of"] == NEXT.isoformat(), claim
    (reaped,) = [r for r in reap(flow_kwargs["home"], by="flowcast reap") if r.action == "crashed"]
    assert reaped.flow_run_id == claim["flow_run_id"]
    with get_client(sync_client=True) as client:
        message = client.read_flow_run(reaped.flow_run_id).state.message
    assert f"It did not finish. It published the forecasts of tiny as_of {utc_text(NEXT)} before it stopped (" in (
        message), message
    assert "cannot be told" not in message, message
