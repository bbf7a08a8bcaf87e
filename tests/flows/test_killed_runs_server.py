"""A `flowcast run` killed with SIGKILL against a real `prefect server start` (loopback, SQLite)
does not stay "Running" in the UI (flowcast.ops.reaper): real processes, real signals.

1. The command alone is killed while it trains: its watchdog marks the flow run Crashed, with a
   message naming the dead process, and its running task runs too; the same when it is killed
   the moment its run is Running, before the flow's body began (FLOWCAST_FAULT=flow:started), or
   before Prefect set it Running (flow:naming: the run had not recorded its process yet).
2. The command and its watchdog are killed together (nothing is left to report): the flow run
   stays Running until the next `flowcast run` in the same home, which marks it Crashed as it
   starts, says so in its log, and then completes and publishes once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from flow_helpers import tiny_toml, write_series
from prefect_server import http, prefect_server

from flowcast.store import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FLOWCAST = str(Path(sys.executable).parent / "flowcast")



def _args(cfg: Path, home: Path, *extra: str) -> list[str]:
    return [FLOWCAST, "run", "--dataset", "tiny", "--config", str(cfg), "--home", str(home),
            "--as-of", "2019-06-01", "--json", *extra]


def _flow_run(srv, run_id: str) -> dict:
    r = http("GET", f"{srv.api}/flow_runs/{run_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _runs(srv) -> list[dict]:
    r = http("POST", f"{srv.api}/flow_runs/filter", json={"limit": 50, "sort": "EXPECTED_START_TIME_ASC"})
    assert r.status_code == 200, r.text
    return r.json()


def _training(srv) -> str | None:
    """The id of the flow run whose `train` task is running (the kill lands mid-training)."""
    body = {"task_runs": {"name": {"like_": "train gru"}, "state": {"type": {"any_": ["RUNNING"]}}}, "limit": 5}
    r = http("POST", f"{srv.api}/task_runs/filter", json=body)
    return next((t["flow_run_id"] for t in r.json()), None) if r.status_code == 200 else None


def _task_states(srv, run_id: str) -> dict[str, str]:
    r = http("POST", f"{srv.api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}, "limit": 200})
    return {t["name"]: t["state"]["type"] for t in r.json()}


def _watchdog_of(pid: int) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "flowcast.ops.reaper" in cmd and str(pid) in cmd:
            return p
    raise AssertionError(f"no watchdog process for the command {pid}")


def _start_and_kill(srv, cfg: Path, home: Path, log: Path, *, watchdog_too: bool) -> str:
    """Start `flowcast run` (a long training), SIGKILL it once a `train` task runs; the flow run id."""
    proc = srv.start(_args(cfg, home, "--max-steps", "100000"), log, cwd=ROOT)
    run_id = srv.wait(lambda: _training(srv), 300, "the killed run to train")
    assert _flow_run(srv, run_id)["state"]["type"] == "RUNNING"
    dog = _watchdog_of(proc.pid)
    if watchdog_too:
        dog.kill()
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    srv.others.remove(next(o for o in srv.others if o[0] is proc))  # exited on purpose
    if watchdog_too:
        dog.wait(60)
    return run_id


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_killed_run_is_marked_crashed_not_left_running(tmp_path):
    csv = write_series(tmp_path / "tiny.csv", n_series=4)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(csv))
    home = tmp_path / "home"
    with prefect_server(tmp_path / "server", {"PYTHONPATH": str(ROOT / "src")}) as srv:
        # -- 1. the command alone is killed: its watchdog crashes the run
        first = _start_and_kill(srv, cfg, home, tmp_path / "run1.log", watchdog_too=False)
        state = srv.wait(lambda: (s := _flow_run(srv, first)["state"])["type"] == "CRASHED" and s, 120,
                         "the watchdog to mark the killed run Crashed")
        assert "is gone without reporting a final state" in state["message"], state
        assert "watchdog" in state["message"], state
        # the watchdog crashes the task runs after the flow run, reading them until none is left Running
        def settled() -> dict[str, str] | None:
            tasks = _task_states(srv, first)
            return tasks if "RUNNING" not in tasks.values() else None

        tasks = srv.wait(settled, 30, "the watchdog to mark the killed run's task runs Crashed")
        assert tasks["train gru backtest"] == "CRASHED", tasks
        srv.wait(lambda: not list((home / ".flow-runs").glob("*.json")), 60,
                 "the watchdog to drop the dead command's records")  # the run's, then the command's

        # -- 1b. killed the moment the run is Running, before its body began; 1c. before Prefect set it
        # Running, as it asked flowcast for the run's name (the run had not recorded itself yet)
        for n, point, was in ((1, "flow:started", "Running"), (2, "flow:naming", "Pending")):
            early = srv.start(_args(cfg, home), tmp_path / f"{point}.log", cwd=ROOT, env={"FLOWCAST_FAULT": point})
            early.wait(300)
            srv.others.remove(next(o for o in srv.others if o[0] is early))
            assert early.returncode == -signal.SIGKILL
            crashed = srv.wait(lambda n=n: [r for r in _runs(srv)[1:] if r["state"]["type"] == "CRASHED"][n - 1:], 120,
                               f"the watchdog to mark the run killed at {point} Crashed")
            assert "watchdog" in crashed[0]["state"]["message"] and f"it was {was}" in crashed[0]["state"]["message"]

        # -- 2. command and watchdog killed: Running until the next run in this home
        second = _start_and_kill(srv, cfg, home, tmp_path / "run2.log", watchdog_too=True)
        assert _flow_run(srv, second)["state"]["type"] == "RUNNING"
        assert (home / ".flow-runs" / f"{second}.json").exists()
        p = subprocess.run(_args(cfg, home), env=srv.env, cwd=ROOT, capture_output=True, text=True,
                           timeout=900, check=False)
        assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        state = _flow_run(srv, second)["state"]
        assert state["type"] == "CRASHED", state
        assert "Marked Crashed by flow run 'retrain tiny 2019-06-01'" in state["message"], state
        assert f"Marked flow run 'retrain tiny 2019-06-01' ({second}) Crashed" in p.stderr
        assert "RUNNING" not in _task_states(srv, second).values()
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        assert [r["state"]["type"] for r in _runs(srv)] == ["CRASHED"] * 4 + ["COMPLETED"]

    stored = EmbeddedStore(home / "warehouse").read(dataset="tiny")
    assert stored.height == summary["published_rows"] == 24
    assert stored.select("as_of", "unique_id", "ds").n_unique() == 24
    assert not (home / ".flow-runs" / f"{second}.json").exists()
