"""A retrain killed (SIGKILL) between its winner's registration (recorded as the champion, pinned) and its publish,
then run again: the re-run ends with the versions an unkilled run leaves. The killed run's version is taken over
when it is provably this run's winner (same data, configuration, recipe), taken back otherwise; the history says
which. A real `flowcast backfill --mode retrain` under the session's Prefect API (statistical models only), killed
at FLOWCAST_FAULT=flow:before_publish; and `common.left_by_killed_runs` on a real registry and store."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flow_helpers import tiny_toml, write_series

from flowcast.flows.common import left_by_killed_runs
from flowcast.registry import ModelRegistry, Pin, Promotion
from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")


def _backfill(cfg: Path, home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("FLOWCAST_FAULT", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.run([FLOWCAST, "backfill", "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
                           "--start", "2019-01-01", "--end", "2019-02-01", "--every", "1mo", "--mode", "retrain",
                           "--json"], env=env, capture_output=True, text=True, timeout=600, check=False)


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


AS_OF = datetime(2019, 1, 1)
T0 = datetime(2019, 1, 2)


def _left(tmp_path: Path, owner: str, *, pin: bool = True, promote: bool = False) -> str:
    reg = ModelRegistry(tmp_path / "models")
    return reg.register(None, name="theta", dataset="tiny", kind="statistical", recipe={"model": "theta"},
                        fingerprint={"source": "tiny", "fingerprint": "f", "run_id": owner}, as_of=AS_OF,
                        created_at=T0, pin=Pin(run=owner, at=T0, until=T0 + timedelta(hours=24)) if pin else None,
                        then=Promotion("promote" if promote else "champion", at=T0, as_of=AS_OF)).version


@pytest.mark.parametrize(("case", "found"), [("dead", True), ("alive", False), ("unknown", False),
                                             ("ended", False), ("production", False), ("own", False)])
def test_only_a_dead_runs_unpublished_registration_of_the_as_of_is_left(tmp_path, case, found):
    owner = {"own": "me"}.get(case, "other")
    version = _left(tmp_path, owner, pin=case != "ended", promote=case == "production")
    alive = {"alive": True, "unknown": None}.get(case, False)
    left, said = left_by_killed_runs(ModelRegistry(tmp_path / "models"), EmbeddedStore(tmp_path / "warehouse"),
                                     "tiny", AS_OF, run="me", alive=lambda run: alive)
    assert [(mv.version, dead) for mv, dead in left] == ([(version, [owner])] if found else [])
    if case in ("alive", "unknown"):
        [line] = said
        assert version in line and "flow run other" in line
    assert left_by_killed_runs(ModelRegistry(tmp_path / "models"), EmbeddedStore(tmp_path / "warehouse"), "tiny",
                               AS_OF + timedelta(days=1), run="me", alive=lambda run: False) == ([], [])


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
    assert [(mv.version, dead) for mv, dead in left] == [(version, ["second"])] and said == []
    running, said = left_by_killed_runs(reg, EmbeddedStore(tmp_path / "warehouse"), "tiny", AS_OF, run="third",
                                        alive=lambda run: True)  # "second" still runs: left alone, said
    assert running == [] and len(said) == 1 and "flow run second" in said[0]
