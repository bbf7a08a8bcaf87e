"""A run killed between its publish and its realized-accuracy scoring (FLOWCAST_FAULT=flow:before_realized), then run
again: the re-run records the realized accuracy of what is published (a backfill's re-run, which skips every date
as published, and a `flowcast run` of the same as_of), once; a further re-run changes nothing."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from test_rerun_after_kill import FLOWCAST, _config, _env, _ok

from flowcast.reporting import utc_text
from flowcast.store import EmbeddedStore

FIRST = "2019-01-01"  # the retrain that puts a model in production (its scoring: nothing published before it)


def _flowcast(cfg: Path, home: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FLOWCAST, *args, "--dataset", "tiny", "--config", str(cfg), "--home", str(home)],
                          env=_env(fault), capture_output=True, text=True, timeout=600, check=False)


def _backfill(cfg: Path, home: Path, start: str, end: str, fault: str | None = None) -> subprocess.CompletedProcess:
    return _flowcast(cfg, home, "backfill", "--start", start, "--end", end, "--every", "1mo", "--json", fault=fault)


def _checked(home: Path) -> str | None:
    """The as_of whose run recorded the dataset's realized-accuracy verdict last (None: none recorded)."""
    path = home / "accuracy" / "tiny.json"
    return json.loads(path.read_text())["checked_as_of"] if path.exists() else None


def _realized(home: Path) -> list[tuple]:
    rows = EmbeddedStore(home / "warehouse").read_realized("tiny")
    return sorted(rows.select("as_of", "step", "n", "mae").iter_rows())


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
@pytest.mark.parametrize("command", ["backfill", "run"])
def test_a_run_killed_between_its_publish_and_its_scoring_is_scored_by_its_rerun(tmp_path, command):
    """Regression (publish29): a backfill killed after its last date's publish, before that date's realized
    accuracy was scored, left it missing for good: its re-run skipped every date (published) and scored nothing
    (`accuracy/<dataset>.json` still the verdict of the date before, that date's forecasts never scored). The re-run
    scores as of that date, as its run would have; a `flowcast run` of the same as_of too (its publish finds the same
    forecasts published)."""
    cfg = _config(tmp_path, "flowcast.toml")
    home = tmp_path / "home"
    _ok(_flowcast(cfg, home, "run", "--as-of", FIRST))
    if command == "backfill":
        _ok(_backfill(cfg, home, "2019-02-01", "2019-02-01"))  # scores 2019-01-01's forecasts
        rerun = ("backfill", "2019-02-01", "2019-03-01")  # its last date, 2019-03-01, killed before its scoring
    else:
        _ok(_flowcast(cfg, home, "forecast", "--as-of", "2019-02-01"))
        rerun = ("run", "2019-03-01")

    def again(fault: str | None = None) -> subprocess.CompletedProcess:
        return (_backfill(cfg, home, *rerun[1:], fault=fault) if command == "backfill" else
                _flowcast(cfg, home, "run", "--as-of", rerun[1], "--json", fault=fault))

    assert _checked(home) == "2019-02-01T00:00:00"
    before = _realized(home)
    killed = again(fault="flow:before_realized")
    assert killed.returncode == -9, killed.stderr[-3000:]
    store = EmbeddedStore(home / "warehouse")
    assert datetime(2019, 3, 1) in store.as_ofs("tiny")  # published, not scored
    assert _checked(home) == "2019-02-01T00:00:00" and _realized(home) == before
    first = again()
    _ok(first)
    assert _checked(home) == "2019-03-01T00:00:00"  # was 2019-02-01: the killed date's scoring, missing for good
    after = _realized(home)
    scored = {r[0] for r in after}
    assert scored == {datetime(2019, 1, 1), datetime(2019, 2, 1)} and after != before  # 2019-02-01's scored now
    if command == "backfill":
        assert json.loads(first.stdout.strip().splitlines()[-1])["skipped"] == 2  # both dates published already
        said = " ".join(first.stderr.split())  # its newest verdict, 2019-02-01's, named (utc_text)
        assert f"was not recorded (its newest verdict is as of {utc_text(datetime(2019, 2, 1))}" in said, said
        assert "the run of that date stopped between its publish and its scoring, or a run of an earlier" in said
    else:
        res = json.loads(first.stdout.strip().splitlines()[-1])
        assert res["realized"]["recorded"] is True
    files = {a: store.data.current("realized", "tiny", a) for a in scored}
    _ok(again())  # once: a further re-run writes nothing new
    assert _realized(home) == after and {a: store.data.current("realized", "tiny", a) for a in scored} == files
