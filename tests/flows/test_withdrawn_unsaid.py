"""flows/common.py's helpers that read the registry and the Prefect API, in a real flow against the harness API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flowcast.config import Settings
from flowcast.registry import ModelRegistry, Promotion

T0 = datetime(2024, 1, 1, 12, 0)
AS_OF = datetime(2024, 1, 1)


def _registered(reg: ModelRegistry, tmp_path: Path, name: str, n: int, dataset: str,
                then: Promotion | None = None) -> str:
    art = tmp_path / f"art_{name}_{n}"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text(f"{name}{n}")
    (art / "meta.json").write_text(json.dumps({"cell": name}))
    return reg.register(art, name=name, dataset=dataset, config={}, fingerprint={"source": "sales"}, metrics={},
                        as_of=AS_OF, created_at=T0, then=then).version


def _noted_then_recorded(reg: ModelRegistry, settings: Settings, scope: Any, v: str, op: str,
                         event: Callable[[str], dict[str, Any]], **note: Any) -> tuple[str, tuple[str, str] | None]:
    """(the run, what `withdrawn_unsaid` says after): a run whose decision chose `v` notes its removal `op` (`event`
    of its run id) and is killed before its pointer write; a later run finds nothing unsaid until the next writer of
    the registry records the removal on its behalf."""
    from prefect import flow
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import get_run_context

    from flowcast.flows.common import withdrawn_unsaid

    @flow
    def decide_then_killed() -> str:
        run = str(get_run_context().flow_run.id)
        create_markdown_artifact(f"### To publish: **naive** ({v})\n\nThe champion of the backtest.",
                                 key=scope.key("decision"), description=scope.describe("the decision"))
        with reg._lock():  # its removal decided and noted, then killed before the pointer write
            reg._write_removing(v, scope.dataset, op, event=event(run), **note)
        return run

    run = decide_then_killed()

    @flow
    def later() -> tuple[str, str] | None:
        assert withdrawn_unsaid(settings, scope) is None  # nothing recorded yet
        reg.sync_backup()  # the next writer of the registry
        return withdrawn_unsaid(settings, scope)

    return run, later()


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(("chosen", "said"), [
    (12, False),  # theta-v12 chosen: the withdrawal of theta-v1 is not about it ('theta-v1' is in 'theta-v12')
    (1, True),    # theta-v1 chosen, and withdrawn: said
])
def test_withdrawn_unsaid_matches_the_decisions_version_whole(tmp_path, chosen, said):
    """review24: `withdrawn_unsaid` found the withdrawal of a run's decision by the version's name anywhere in the
    decision's text: a run that withdrew theta-v1 (a killed run's winner, on its behalf) and then chose theta-v12 was
    said to have chosen theta-v1, withdrawn, and a follow-up naming theta-v1 was written over its decision."""
    from prefect import flow
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import get_run_context

    from flowcast import reporting
    from flowcast.flows.common import withdrawn_unsaid

    settings = Settings(home=tmp_path / "home")
    reg = ModelRegistry(settings.models_location)
    scope = reporting.Scope(f"unsaid-{chosen}", AS_OF)  # a key of its own in the session's API
    first = _registered(reg, tmp_path, "theta", 1, scope.dataset, Promotion("promote", expected=None))
    versions = [first, *(_registered(reg, tmp_path, "theta", n, scope.dataset) for n in range(2, 13))]
    assert (versions[0], versions[-1]) == ("theta-v1", "theta-v12")

    @flow
    def decide() -> tuple[str, str] | None:
        run = str(get_run_context().flow_run.id)
        reg.withdraw(first, dataset=scope.dataset, reason="left unpublished", at=T0, run=run,
                     for_run=None if said else "killed-run")
        create_markdown_artifact(f"### To publish: **theta** (theta-v{chosen})\n\nThe champion of the backtest.",
                                 key=scope.key("decision"), description=scope.describe("the decision"))
        return withdrawn_unsaid(settings, scope)

    found = decide()
    if said:
        assert found is not None and found[1] == "theta-v1", found
    else:
        assert found is None, found


@pytest.mark.usefixtures("prefect_api")
def test_a_take_back_its_run_was_killed_before_recording_is_found_unsaid_once_the_next_writer_records_it(tmp_path):
    """removal25: a run killed after its take-back's note and before its pointer write (what the registry's kill test
    does in a real process) left no `take_back` event, so no later run could tell that its decision, naming the
    version, went unanswered. The next writer of the registry records the event on the run's behalf, naming that run:
    `withdrawn_unsaid` finds it, and the sentence says the version is removed."""
    from flowcast import reporting
    from flowcast.registry import LATE_TAKE_BACK

    settings = Settings(home=tmp_path / "home")
    reg = ModelRegistry(settings.models_location)
    scope = reporting.Scope("unsaid-take-back", AS_OF)  # a key of its own in the session's API
    _registered(reg, tmp_path, "theta", 1, scope.dataset, Promotion("promote", expected=None))
    v = _registered(reg, tmp_path, "naive", 2, scope.dataset)

    run, found = _noted_then_recorded(reg, settings, scope, v, "take_back", lambda run: {
        "action": "take_back", "version": v, "previous": None, "reason": "its forecasts were not published",
        "at": T0.isoformat(), "run": run})
    assert found is not None and found[1] == v, found
    # review26: it said 'that run took it back (...; recorded by the next writer ...: the run stopped (killed) before it
    # could) and then stopped (killed) before it could say so' of a run killed before its take-back was recorded
    assert (f"chose {v} to publish without promoting it; that run was taking it back (its forecasts were not "
            "published) when it stopped (killed), before it recorded the take-back; the next writer of the registry "
            f"took it back on its behalf: {v} is removed") in found[0], found
    assert "took it back (" not in found[0] and LATE_TAKE_BACK not in found[0], found
    assert v not in [x.version for x in reg.list()] and not (reg.versions_dir / v).exists()
    (event,) = [e for e in reg.history(scope.dataset) if e["action"] == "take_back"]
    assert event["run"] == run


@pytest.mark.usefixtures("prefect_api")
def test_a_killed_runs_version_a_rerun_took_back_is_said_as_a_take_back(tmp_path):
    """review27: a re-run of a killed run's as_of takes back the version that run registered and never published when
    it is not its own winner (`pipeline._resume_killed`: a `take_back` event, `run` the re-run, `for_run` the killed
    run, after the `withdraw_champion` that put the older champion back). Where the killed run's decision stayed the
    newest (the re-run failed before its own), `withdrawn_unsaid` said it as a withdrawal of a champion record by a run
    'that then stopped (killed)', the champion 'none since' (the take_back event's `previous`): the wrong action, the
    wrong run killed, and the wrong champion. It says the take-back, and the champion the registry records."""
    from prefect import flow
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import get_run_context

    from flowcast import reporting
    from flowcast.flows.common import withdrawn_unsaid
    from flowcast.registry import Pin

    settings = Settings(home=tmp_path / "home")
    reg = ModelRegistry(settings.models_location)
    scope = reporting.Scope("unsaid-rerun-take-back", AS_OF)  # a key of its own in the session's API
    old = _registered(reg, tmp_path, "theta", 1, scope.dataset, Promotion("champion", as_of=datetime(2023, 12, 1)))

    @flow
    def killed_before_publish() -> tuple[str, str]:
        run = str(get_run_context().flow_run.id)
        art = tmp_path / "art_naive"
        (art / "ckpt").mkdir(parents=True)
        (art / "ckpt" / "model.ckpt").write_text("naive")
        v = reg.register(art, name="naive", dataset=scope.dataset, config={}, metrics={}, as_of=AS_OF, created_at=T0,
                         fingerprint={"source": scope.dataset, "run_id": run},
                         then=Promotion("champion", at=T0, as_of=AS_OF),
                         pin=Pin(run=run, at=T0, until=datetime(2024, 1, 2, 12))).version
        create_markdown_artifact(f"### To publish: **naive** ({v})\n\nThe champion of the backtest.",
                                 key=scope.key("decision"), description=scope.describe("the decision"))
        return run, v

    killed, v = killed_before_publish()
    assert reg.champion(scope.dataset).version == v
    # its re-run (which then failed before its own decision) takes it back: not its winner
    reg.delete(v, at=datetime(2024, 1, 1, 13), run="re-run", for_run=killed, dataset=scope.dataset,
               reason="not this run's winner theta (its name differs)", released=[killed], allow_protected=True)
    assert reg.champion(scope.dataset).version == old

    @flow
    def later() -> tuple[str, str] | None:
        return withdrawn_unsaid(settings, scope)

    found = later()
    assert found is not None and found[1] == v, found
    assert "took it back" in found[0] and "run re-run" in found[0], found
    assert "record as the champion" not in found[0] and "none since" not in found[0], found
    assert f"the recorded champion of {scope.dataset} is {old}" in found[0], found


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(("op", "by", "said"), [
    ("withdraw", None, ("whose promotion that run was withdrawing (never published) when it stopped (killed), before it "
                       "recorded the withdrawal; the next writer of the registry withdrew it on its behalf: production "
                       "of {ds} is {old} since")),
    ("withdraw_champion", None, ("whose record as the champion of {ds} that run was withdrawing (never published) when "
                                "it stopped (killed), before it recorded the withdrawal of the champion record; the "
                                "next writer of the registry withdrew it on its behalf: the recorded champion of {ds} "
                                "is none since")),
    ("withdraw", "run-s", ("whose promotion run run-s was withdrawing on its behalf (never published) when it stopped "
                          "(killed), before it recorded the withdrawal; the next writer of the registry withdrew it "
                          "for run run-s: production of {ds} is {old} since")),
])
def test_a_withdrawal_the_next_writer_recorded_is_said_in_words_of_its_own(tmp_path, op, by, said):
    """removal28: a withdrawal (of the run's own promotion or champion record, or of a killed run's winner by a run
    that skipped its slot) killed after its note and before its pointer write is recorded by the next writer of the
    registry, its reason ending in `LATE_TAKE_BACK`. The follow-up said the run 'withdrew (...; recorded by the next
    writer of the registry: the run stopped (killed) before it could) and then stopped (killed) before it could say
    so', the late wording in brackets; it says, as a late take-back's does, what the run was doing when it was killed
    and that the next writer withdrew it."""
    from flowcast import reporting
    from flowcast.registry import LATE_TAKE_BACK

    settings = Settings(home=tmp_path / "home")
    reg = ModelRegistry(settings.models_location)
    scope = reporting.Scope(f"unsaid-late-{op}-{by}", AS_OF)  # a key of its own in the session's API
    old = _registered(reg, tmp_path, "theta", 1, scope.dataset, Promotion("promote", expected=None))
    v = _registered(reg, tmp_path, "naive", 2, scope.dataset,
                    Promotion("promote", expected=old) if op == "withdraw" else Promotion("champion", as_of=AS_OF))

    run, found = _noted_then_recorded(reg, settings, scope, v, op, lambda run: {
        "action": op, "version": v, "previous": old if op == "withdraw" else None, "reason": "never published",
        "at": T0.isoformat(), "run": by or run, **({"for_run": run} if by else {})}, spared=set(), champion=None)
    assert found is not None and found[1] == v, found
    assert f"The newest decision of {scope.dataset} (run {run}) chose {v}, " \
           + said.format(ds=scope.dataset, old=old) == found[0], found
    assert LATE_TAKE_BACK not in found[0] and "and then stopped" not in found[0], found
    (event,) = [e for e in reg.history(scope.dataset) if e["action"] == op]
    assert event["reason"] == f"never published; {LATE_TAKE_BACK}" and event["late"] == "run", event


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("record", ["field", "wording"])
def test_a_late_withdrawal_is_told_by_its_field_and_an_older_records_wording(tmp_path, record):
    """registry29: `withdrawn_unsaid` told a withdrawal the next writer recorded on a killed run's behalf by the
    wording its reason ends with (`LATE_TAKE_BACK`). The event says so in a field of its own now (`late`), whatever its
    reason's words; an older record, which has the wording only, is read as before."""
    from prefect import flow
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import get_run_context

    from flowcast import reporting
    from flowcast.flows.common import withdrawn_unsaid
    from flowcast.registry import LATE_TAKE_BACK

    settings = Settings(home=tmp_path / "home")
    reg = ModelRegistry(settings.models_location)
    scope = reporting.Scope(f"unsaid-late-{record}", AS_OF)  # a key of its own in the session's API
    old = _registered(reg, tmp_path, "theta", 1, scope.dataset, Promotion("promote", expected=None))
    v = _registered(reg, tmp_path, "naive", 2, scope.dataset, Promotion("promote", expected=old))

    @flow
    def decide() -> tuple[str, str] | None:
        run = str(get_run_context().flow_run.id)
        create_markdown_artifact(f"### To publish: **naive** ({v})\n\nThe champion of the backtest.",
                                 key=scope.key("decision"), description=scope.describe("the decision"))
        with reg._lock():  # what the next writer recorded on its behalf (a record of its own, or an older one's)
            ptr = reg._pointer_locked()
            ent = ptr["datasets"][scope.dataset]
            ent["stack"].pop()
            ent["events"].append({"action": "withdraw", "version": v, "previous": old, "at": T0.isoformat(), "run": run,
                                  **({"reason": "never published.", "late": "run"} if record == "field"
                                     else {"reason": f"never published; {LATE_TAKE_BACK}"})})
            reg._write_pointer(ptr)
        return withdrawn_unsaid(settings, scope)

    found = decide()
    assert found is not None and found[1] == v, found
    assert ("whose promotion that run was withdrawing (never published) when it stopped (killed), before it recorded "
            "the withdrawal; the next writer of the registry withdrew it on its behalf") in found[0], found
    assert LATE_TAKE_BACK not in found[0] and "and then stopped" not in found[0], found
