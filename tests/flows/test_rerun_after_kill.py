"""A retrain killed (SIGKILL) between its winner's registration (recorded as the champion, pinned) and its publish,
then run again: the re-run ends with the versions an unkilled run leaves. The killed run's version is taken over
when it is provably this run's winner (same data, configuration, recipe), taken back otherwise; the history says
which. A real `flowcast backfill --mode retrain` under the session's Prefect API (statistical models only), killed
at FLOWCAST_FAULT=flow:before_publish; and `common.left_by_killed_runs` on a real registry and store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import TINY_OVERRIDES, source_dict, tiny_toml, write_series

from flowcast.flows.common import left_by_killed_runs
from flowcast.registry import ModelRegistry, Pin, Promotion
from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")


def _env(fault: str | None) -> dict[str, str]:
    """A child process's environment: this session's Prefect API, killed at `fault` (FLOWCAST_FAULT) if given."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("FLOWCAST_FAULT", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return env


def _backfill(cfg: Path, home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FLOWCAST, "backfill", "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
                           "--start", "2019-01-01", "--end", "2019-02-01", "--every", "1mo", "--mode", "retrain",
                           "--json"], env=_env(fault), capture_output=True, text=True, timeout=600, check=False)


# the retrain flow with `refit_all` (no command sets it) in a process of its own, so that it can be SIGKILLed
_RETRAIN = ("import json, sys; from flowcast.flows import retrain_flow; "
            "print(json.dumps(retrain_flow(**json.loads(sys.argv[1])), default=str), flush=True)")


def _refit_all(csv: Path, home: Path, fault: str | None = None, **kw: object) -> subprocess.CompletedProcess:
    kwargs = {"as_of": "2019-06-01", "refit_all": True, "source": source_dict(csv), "home": str(home),
              "overrides": {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": ["rnn", "gru"]}}, **kw}
    return subprocess.run([sys.executable, "-c", _RETRAIN, json.dumps(kwargs)], env=_env(fault), capture_output=True,
                          text=True, timeout=600, check=False)


def _config(tmp_path: Path, name: str, hidden_size: int = 8) -> Path:
    cfg = tmp_path / name
    text = tiny_toml(write_series(tmp_path / "tiny.csv")).replace('cells = ["gru"]', "cells = []")
    cfg.write_text(text.replace("hidden_size = 8", f"hidden_size = {hidden_size}"))
    return cfg


def _published(home: Path) -> list[tuple]:
    rows = EmbeddedStore(home / "warehouse").read(dataset="tiny")
    return sorted(rows.select("as_of", "unique_id", "ds", "model", "y_hat").iter_rows())


def _ok(p: subprocess.CompletedProcess) -> None:
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_backfill_killed_before_a_dates_publish_reuses_its_version_when_run_again(tmp_path):
    cfg = _config(tmp_path, "flowcast.toml")
    ref, home = tmp_path / "ref", tmp_path / "home"
    _ok(_backfill(cfg, ref))  # unkilled
    unkilled = [v.version for v in ModelRegistry(ref / "models").list()]

    killed = _backfill(cfg, home, fault="flow:before_publish")  # the first date: registered, champion, pinned
    assert killed.returncode == -9, killed.stderr[-3000:]
    registry = ModelRegistry(home / "models")
    [left] = registry.list()
    assert registry.pin_runs(left.version) == [left.fingerprint["run_id"]]

    rerun = _backfill(cfg, home)
    _ok(rerun)
    assert [v.version for v in registry.list()] == unkilled  # was [theta-v1, theta-v2, damped-v3]
    assert registry.pin_runs(left.version) == []
    assert _published(home) == _published(ref)
    reuse = [e for e in registry.history("tiny") if e["action"] == "reuse"]
    assert [e["version"] for e in reuse] == [left.version] and reuse[0]["for_run"] == left.fingerprint["run_id"]
    assert [e["version"] for e in registry.history("tiny") if e["action"] == "champion"] == unkilled  # once each
    assert f"Reusing {left.version}: " in rerun.stderr


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_version_a_killed_run_registered_from_another_configuration_is_taken_back(tmp_path):
    home = tmp_path / "home"
    killed = _backfill(_config(tmp_path, "before.toml", hidden_size=9), home, fault="flow:before_publish")
    assert killed.returncode == -9, killed.stderr[-3000:]
    registry = ModelRegistry(home / "models")
    [left] = registry.list()

    _ok(_backfill(_config(tmp_path, "flowcast.toml"), home))  # its configuration changed: not the same model
    versions = registry.list()
    assert left.version not in {v.version for v in versions}
    assert [v.name for v in versions] == ["theta", "damped"]  # one version a date, as an unkilled run leaves
    back = [e for e in registry.history("tiny") if e["action"] == "take_back"]
    assert [e["version"] for e in back] == [left.version] and back[0]["for_run"] == left.fingerprint["run_id"]
    assert "its configuration differs" in back[0]["reason"]
    assert registry.champion("tiny").version == versions[-1].version


# only the network cells on the leaderboard (no statistical model, ensemble or hybrid): a network wins
_NETWORKS_ONLY = {**TINY_OVERRIDES, "model": {**TINY_OVERRIDES["model"], "cells": ["rnn", "gru"]},
                  "evaluation": {**TINY_OVERRIDES["evaluation"], "statistical": [], "combination": [],
                                 "ensemble": False, "hybrid": False}}


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("promote", "networks_only"), [(True, False), (False, False), (False, True)])
def test_a_refit_all_retrain_killed_before_its_publish_leaves_no_second_version_of_a_cell(tmp_path, promote,
                                                                                          networks_only):
    """Every network cell a `refit_all` retrain registered besides its winner was neither pinned nor looked for:
    killed before its publish and run again, the home held two versions of each refit cell (rnn-v2, gru-v3, rnn-v4,
    gru-v5). Each is pinned now, and its re-run takes it over (the same model) before registering the cell, as it
    does the winner: an unkilled run's versions, one per cell. The winner's own look leaves the refit cells to theirs
    (it took them back as 'not this run's winner'). reuse28: the same network trained again (the same seed, on the
    CPU) has the same weights but never the same files (meta.json's train_seconds, the checkpoint's run folder), so
    every network was taken back and registered again with a new number (rnn-v4 for rnn-v2): its volatile fields
    aside, it is the same model now, taken over, and the re-run ends with the very versions an unkilled run leaves,
    a network winner's too (`networks_only`)."""
    csv = write_series(tmp_path / "tiny.csv")
    ref, home = tmp_path / "ref", tmp_path / "home"
    kw: dict[str, object] = {"promote": promote, **({"overrides": _NETWORKS_ONLY} if networks_only else {})}
    _ok(_refit_all(csv, ref, **kw))  # unkilled
    versions = [v.version for v in ModelRegistry(ref / "models").list()]
    unkilled = [v.name for v in ModelRegistry(ref / "models").list()]
    assert sorted(unkilled) == sorted({*unkilled}) and {"rnn", "gru"} <= {*unkilled}
    assert {*unkilled} == {"rnn", "gru"} or not networks_only  # a network won

    killed = _refit_all(csv, home, fault="flow:before_publish", **kw)
    assert killed.returncode == -9, killed.stderr[-3000:]
    registry = ModelRegistry(home / "models")
    left = registry.list()
    assert [v.name for v in left] == unkilled
    dead = left[0].fingerprint["run_id"]
    assert {v.version: registry.pin_runs(v.version) for v in left} == {v.version: [dead] for v in left}
    refits = {v.version: v.name for v in left if v.name in ("rnn", "gru")}

    rerun = _refit_all(csv, home, **kw)
    _ok(rerun)
    now = registry.list()
    assert sorted(v.name for v in now) == sorted(unkilled)  # one version of each cell
    assert [v.version for v in now] == versions  # the killed run's, taken over: was rnn-v4, gru-v5
    # (the killed run's pin of the production model it promoted, which its re-run kept, lapses as it did)
    assert set(registry.pins()) <= ({registry.production("tiny").version} if promote else set())
    said = {e["version"]: e for e in registry.history("tiny")
            if e["action"] in ("reuse", "take_back") and e.get("for_run") == dead}
    assert set(refits) <= set(said)
    kept = registry.production("tiny").version if promote else None  # promoted: production, not left
    assert {v: e["action"] for v, e in said.items()} == {v.version: "reuse" for v in left if v.version != kept}
    for version, cell in refits.items():  # (a network winner's says 'this run's winner rnn')
        assert any(f"the same model as this run's {what} {cell} (" in said[version]["reason"]
                   for what in ("refit", "winner"))
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert {c: summary["registered"][c] for c in ("rnn", "gru")} == {v.name: v.version for v in now
                                                                     if v.name in ("rnn", "gru")}


AS_OF = datetime(2019, 1, 1)
T0 = datetime(2019, 1, 2)


def _left(tmp_path: Path, owner: str, *, pin: bool = True, promote: bool = False, refit: bool = False) -> str:
    """A version registered for AS_OF by run `owner` (its winner, recorded as the champion or promoted; `refit`: a
    refit_all run's other cell, no follow-up), pinned for it unless `pin` is False."""
    reg = ModelRegistry(tmp_path / "models")
    return reg.register(None, name="theta", dataset="tiny", kind="statistical", recipe={"model": "theta"},
                        fingerprint={"source": "tiny", "fingerprint": "f", "run_id": owner}, as_of=AS_OF,
                        created_at=T0, pin=Pin(run=owner, at=T0, until=T0 + timedelta(hours=24)) if pin else None,
                        then=None if refit else Promotion("promote" if promote else "champion", at=T0,
                                                          as_of=AS_OF)).version


@pytest.mark.parametrize(("case", "found"), [("dead", True), ("alive", False), ("unknown", False),
                                             ("ended", False), ("production", False), ("own", False),
                                             ("refit", True), ("refit alive", False)])
def test_only_a_dead_runs_unpublished_registration_of_the_as_of_is_left(tmp_path, case, found):
    owner = {"own": "me"}.get(case, "other")
    version = _left(tmp_path, owner, pin=case != "ended", promote=case == "production", refit=case.startswith("refit"))
    alive = {"alive": True, "unknown": None, "refit alive": True}.get(case, False)
    left, said = left_by_killed_runs(ModelRegistry(tmp_path / "models"), EmbeddedStore(tmp_path / "warehouse"),
                                     "tiny", AS_OF, run="me", alive=lambda run: alive)
    assert [(mv.version, dead) for mv, dead in left] == ([(version, [owner])] if found else [])
    if case in ("alive", "unknown", "refit alive"):
        [line] = said.values()
        assert version in line and "flow run other" in line
    assert left_by_killed_runs(ModelRegistry(tmp_path / "models"), EmbeddedStore(tmp_path / "warehouse"), "tiny",
                               AS_OF + timedelta(days=1), run="me", alive=lambda run: False) == ([], {})


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_rerun_that_reuses_the_killed_runs_version_says_it_in_its_registered_models(tmp_path):
    """review27: a re-run that took over the version its killed run registered (`ModelRegistry.reuse`) published
    that version and left it as the dataset's champion, but its result's `registered` ("what stays registered: the
    winner unless withdrawn") was {}: `result["registered"][result["champion"]]`, which an unkilled run's result
    answers, failed with KeyError. It names the winner's version, as an unkilled run's does."""
    from flowcast.flows import retrain_flow

    cfg, home = _config(tmp_path, "flowcast.toml"), tmp_path / "home"
    killed = _backfill(cfg, home, fault="flow:before_publish")  # the first date: registered, champion, pinned
    assert killed.returncode == -9, killed.stderr[-3000:]
    [left] = ModelRegistry(home / "models").list()

    # the killed date run again, as the backfill runs it (a past date: production left alone)
    rerun = retrain_flow(as_of=datetime(2019, 1, 1), dataset="tiny", config_file=str(cfg), home=str(home.resolve()),
                         promote=False)
    assert rerun["model_version"] == left.version and rerun["published_rows"] > 0  # taken over, not registered again
    assert [e["action"] for e in ModelRegistry(home / "models").history("tiny")][-1] == "reuse"
    assert rerun["registered"] == {rerun["champion"]: left.version}


def test_a_version_a_killed_rerun_took_over_is_left_by_killed_runs_too(tmp_path):
    """review27: a re-run that took over its killed run's version (`reuse`: its own pin in place of the dead run's)
    and was killed in turn, before its publish, left that version pinned by itself alone; the next re-run looked for
    the pin of the run that registered it (`fingerprint.run_id`), found none, took the version for one whose run
    ended, and registered a second version of the same model for the same date: the duplicate the first re-run had
    avoided. The runs that took it over count as its owners too."""
    version = _left(tmp_path, "other")
    reg = ModelRegistry(tmp_path / "models")
    t1 = T0 + timedelta(hours=1)
    reg.reuse(version, dataset="tiny", run="second", for_run="other", pin=Pin(run="second", at=t1, until=t1),
              reason="the same model", released=["other"])  # ... and then "second" is killed before its publish
    assert reg.pin_runs(version) == ["second"]
    left, said = left_by_killed_runs(reg, EmbeddedStore(tmp_path / "warehouse"), "tiny", AS_OF, run="third",
                                     alive=lambda run: False)
    assert [(mv.version, dead) for mv, dead in left] == [(version, ["second"])] and said == {}
    running, said = left_by_killed_runs(reg, EmbeddedStore(tmp_path / "warehouse"), "tiny", AS_OF, run="third",
                                        alive=lambda run: True)  # "second" still runs: left alone, said
    assert running == [] and list(said) == [version] and "flow run second" in said[version]


def test_a_version_this_run_took_over_is_its_own_not_said_left_alone(tmp_path):
    """review29: a refit_all re-run looks again before each refit cell it registers (`pipeline._resume_killed`); the
    version it had taken over just before (its winner, an earlier cell: `reuse`, its pin in place of the dead run's)
    was said 'left alone: flow run <this very run>, which uses it, still runs', once per cell after it. A version this
    run pins is its own: neither left nor said."""
    version = _left(tmp_path, "other")
    reg = ModelRegistry(tmp_path / "models")
    t1 = T0 + timedelta(hours=1)
    reg.reuse(version, dataset="tiny", run="me", for_run="other", pin=Pin(run="me", at=t1, until=t1 + timedelta(1)),
              reason="the same model", released=["other"])
    assert left_by_killed_runs(reg, EmbeddedStore(tmp_path / "warehouse"), "tiny", AS_OF, run="me",
                               alive=lambda run: run == "me") == ([], {})


class _Receipts(EmbeddedStore):
    """The embedded store, the as_ofs whose receipt was read recorded."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read_at: list[datetime] = []

    def receipt_of(self, dataset: str, as_of: datetime) -> dict[str, str]:
        self.read_at.append(as_of)
        return super().receipt_of(dataset, as_of)


def _publish(store: EmbeddedStore, as_of: datetime, version: str) -> None:
    frame = pl.DataFrame({"unique_id": ["a", "a"], "ds": [as_of + timedelta(days=31), as_of + timedelta(days=59)],
                          "step": pl.Series([1, 2], dtype=pl.Int32), "y_hat": [1.0, 2.0]})
    store.publish(frame, dataset="tiny", as_of=as_of, model=version.split("-")[0], model_version=version,
                  run_id=f"run of {as_of:%Y-%m-%d}", created_at=as_of + timedelta(hours=1))


@pytest.mark.parametrize(("case", "found", "read"), [
    ("refit", True, "key"),  # no promotion or champion record: published at its as_of or nowhere
    ("refit published at its as_of", False, "key"),
    ("refit, its as_of not published", True, "none"),
    ("champion", True, "all"),  # a forecast of any as_of publishes the champion while none is promoted
    ("champion published at another as_of", False, "all"),
])
def test_only_the_as_ofs_receipt_is_read_for_a_version_never_in_charge(tmp_path, case, found, read):
    """Every receipt of the dataset was read (one file each: thousands on a home with years of daily as_ofs) for
    any version left: only the key's is, but for a version once production or the champion, which a publish of any
    as_of may name."""
    version = _left(tmp_path, "other", refit=case.startswith("refit"))
    store = _Receipts(tmp_path / "warehouse")
    others = [AS_OF - timedelta(days=d) for d in (1, 2, 3)] + [AS_OF + timedelta(days=1)]
    for at in others:
        _publish(store, at, version if case.endswith("another as_of") and at == others[0] else "naive-v9")
    if "not published" not in case:
        _publish(store, AS_OF, version if case.endswith("at its as_of") else "naive-v9")
    store.read_at.clear()
    left, _ = left_by_killed_runs(ModelRegistry(tmp_path / "models"), store, "tiny", AS_OF, run="me",
                                  alive=lambda run: False)
    assert [mv.version for mv, _ in left] == ([version] if found else [])
    assert sorted(set(store.read_at)) == {"key": [AS_OF], "none": [], "all": sorted([*others, AS_OF])}[read]


def test_a_refit_all_rerun_says_each_version_left_alone_once(tmp_path, caplog):
    """mend29: a refit_all re-run looks for a killed run's versions before its winner and again before each refit cell
    (`pipeline._resume_killed`), and each look said every version left alone (pinned by a run that may still run) again:
    the same 'left alone' lines once for the winner and once per cell. Each is said once per run."""
    import logging

    from flowcast.config import load_settings
    from flowcast.flows.pipeline import _resume_killed
    from flowcast.models.recipes import Recipe

    settings = load_settings(home=tmp_path)
    reg = ModelRegistry(settings.models_dir)
    pin = Pin(run="other", at=T0, until=T0 + timedelta(hours=24))
    fp = {"source": "tiny", "fingerprint": "f", "run_id": "other"}  # run "other": no claim, no API: may still run
    left = [reg.register(None, name=name, dataset="tiny", kind="statistical", recipe={"model": name}, fingerprint=fp,
                         as_of=AS_OF, created_at=T0, pin=pin,
                         then=Promotion("champion", at=T0, as_of=AS_OF) if name == "theta" else None).version
            for name in ("theta", "naive", "seasonal_naive")]
    refits = ["naive", "seasonal_naive"]
    mine = Pin(run="me", at=T0 + timedelta(hours=1), until=T0 + timedelta(hours=25))
    said: set[str] = set()
    log = logging.getLogger("test_rerun_after_kill")
    with caplog.at_level(logging.INFO, logger=log.name):
        for name, which in (("theta", lambda n: n not in refits), *((c, c.__eq__) for c in refits)):
            recipe = Recipe(name=name, kind="statistical", components=[{"type": "statistical", "model": name}],
                            weights=[1.0])
            registration = {"name": name, "dataset": "tiny", "kind": "statistical", "recipe": {"model": name},
                            "config": {}, "fingerprint": fp, "metrics": {}, "as_of": AS_OF, "created_at": T0}
            assert _resume_killed(settings, reg, recipe, registration, as_of=AS_OF, run="me", pin=mine, then=None,
                                  log=log, notes=[], which=which, refit=name != "theta", said=said) is None
    lines = [r.getMessage() for r in caplog.records if "is left alone" in r.getMessage()]
    assert sorted(line.split(",")[0] for line in lines) == sorted(left), lines  # each once, none twice
    assert all("flow run other, which uses it, may still run" in line for line in lines), lines
    assert said == set(left)
    assert {v.version for v in reg.list()} == set(left)  # left alone: nothing taken back or over


@pytest.mark.parametrize(("change", "differs"), [
    ({}, False),
    ({"preprocess": {"max_gap": 5}}, True),
    ({"validation": {"ended_series": "exclude"}}, True),
    ({"horizon": 7}, True),
    ({"version": True}, True),  # a flowcast whose PREPROCESS_VERSION is another (upgraded between the kill and now)
])
def test_a_rerun_prepared_otherwise_does_not_take_over_the_killed_runs_version(tmp_path, monkeypatch, change, differs):
    """mend29: what a retrain's versions record as their data fingerprint (`pipeline._trained_on`) says how the data
    were prepared (`tasks.preprocessing_identity`), so that `same_registration` tells a re-run that prepared them
    otherwise from the killed run (a statistical version: no trained files to differ)."""
    from flowcast.config import load_settings
    from flowcast.flows import tasks
    from flowcast.flows.pipeline import _trained_on
    from flowcast.registry import same_registration

    kw = {"name": "theta", "dataset": "tiny", "kind": "statistical", "recipe": {"model": "theta"}, "config": {},
          "metrics": {}, "as_of": AS_OF}
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.get(reg.register(None, **kw, created_at=T0,
                              fingerprint=_trained_on(load_settings(home=tmp_path), "tiny", "f", AS_OF, "other")).version)
    if change.pop("version", False):
        monkeypatch.setattr(tasks, "PREPROCESS_VERSION", tasks.PREPROCESS_VERSION + 1)
    ours = _trained_on(load_settings(home=tmp_path, **change), "tiny", "f", AS_OF, "me")
    assert same_registration(mv, None, **kw, fingerprint=ours) == (
        "its preprocessing (what it was trained on) differs" if differs else "")
