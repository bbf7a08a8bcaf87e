"""Workers that split a backfill, for real: a `prefect server start` on loopback, the process
work pool of deployments/prefect.yaml (`prefect work-pool create`, `prefect deploy --all`), two
`prefect worker start --limit 1` processes, and `flowcast backfill --deployment forecast/forecast-pool`.

The production model is a statistical one (seasonal naive with interval widths, registered by
hand: nothing to train), the data a tiny CSV served by a local HTTP server (Python's http.server).

1. A 6-date backfill runs on both workers (each flow run carries Prefect's
   `prefect.worker.name` label; the summary names it), every date is published exactly once
   (24 rows, no duplicate key, the receipt names the flow run that wrote it).
2. The same backfill again starts no flow run and changes no byte: every date is skipped;
   with `--overwrite` one date is published again by a new flow run: replaced (24 rows, not
   48), the same content hash.
   `--deployment retrain/retrain-pool` over 2 dates: each trains (one tiny network) and publishes
   its own best model; production is left alone.
3. A worker killed mid-backfill (SIGKILL to the worker and its flow-run process, as when its
   machine dies): the run it held stops sending heartbeats, the shipped automation
   `flowcast: crash silent runs` (applied with `flowcast automations apply`) marks it Crashed,
   the backfill starts that date again and the other worker publishes it. No date is lost.
   The killed run is held on purpose: the first data request of that backfill is answered only
   after minutes, and the worker whose flow-run process holds that connection is the one killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from flow_helpers import tiny_toml, write_series
from prefect_server import http, prefect_server

from flowcast.registry import ModelRegistry
from flowcast.store import EmbeddedStore, content_hash

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
BIN = Path(sys.executable).parent
FLOWCAST, PREFECT = str(BIN / "flowcast"), str(BIN / "prefect")
POOL = "flowcast-process"
WORKERS = ("worker-a", "worker-b")
HEARTBEAT_S = 30  # Prefect's shortest flow-run heartbeat interval
CRASH_AFTER = "75s"  # no heartbeat for this long: crashed (two and a half heartbeats)

# conformal widths (in units of each series' scale) per level and horizon step, as a retrain stores them
CALIBRATION = {"method": "conformal", "levels": [80, 95], "n": 24, "mode": {"80": "residual", "95": "residual"},
               "q": {"80": [0.8] * 6, "95": [1.5] * 6}}


def seasonal_naive_in_production(home: Path) -> str:
    """Register seasonal_naive (with CALIBRATION) for dataset tiny in `home` and promote it: nothing to train."""
    reg = ModelRegistry(home / "models")
    champion = reg.register(None, name="seasonal_naive", dataset="tiny", kind="statistical",
                            recipe={"components": [{"type": "statistical", "model": "seasonal_naive"}],
                                    "intervals": {"seasonal_naive": CALIBRATION}},
                            created_at=datetime(2024, 1, 1)).version
    reg.promote(champion, reason="test: a statistical production model, nothing to train")
    return champion


def _run(srv, args: list[str], timeout: float = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    p = subprocess.run(args, env=srv.env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def _backfill_args(cfg: Path, home: Path, start: str, end: str, deployment: str = "forecast/forecast-pool",
                   every: str = "1mo") -> list[str]:
    return [FLOWCAST, "backfill", "--deployment", deployment, "--dataset", "tiny", "--config", str(cfg),
            "--home", str(home), "--start", start, "--end", end, "--every", every, "--json"]


def _summary(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _flow_runs(srv, deployment_id: str, **flt: object) -> list[dict]:
    """The flow runs of one deployment started by backfills."""
    body = {"flow_runs": {"tags": {"all_": ["backfill"]}, **flt}, "deployments": {"id": {"any_": [deployment_id]}},
            "limit": 200}
    r = http("POST", f"{srv.api}/flow_runs/filter", json=body)
    assert r.status_code == 200, r.text
    # the dates' runs: the backfill's own run carries the tag too (its deployment's tags: flowcast, backfill)
    return [fr for fr in r.json() if fr["flow_id"] != _backfill_flow_id(srv)]


def _backfill_flow_id(srv) -> str | None:
    r = http("POST", f"{srv.api}/flows/filter", json={"flows": {"name": {"any_": ["backfill"]}}, "limit": 1})
    assert r.status_code == 200, r.text
    return r.json()[0]["id"] if r.json() else None


def _stored(home: Path) -> dict[str, tuple[int, int, str, str]]:
    """as_of -> (rows, distinct (unique_id, ds), content hash, the receipt's run id)."""
    store = EmbeddedStore(home / "warehouse")
    out = {}
    for a in store.as_ofs("tiny"):
        rows = store.read(dataset="tiny", as_of=a)
        receipt = store.receipt_of("tiny", a)
        out[a.isoformat()] = (rows.height, rows.select("unique_id", "ds").n_unique(), content_hash(rows),
                              receipt["run_id"])
    return out


def _tree(pid: int) -> list[psutil.Process]:
    me = psutil.Process(pid)
    return [me, *me.children(recursive=True)]


def _holder_of_port(workers: dict[str, subprocess.Popen], port: int) -> str | None:
    """The worker whose process tree holds an open TCP connection to `port` (the held request)."""
    for name, proc in workers.items():
        for p in _tree(proc.pid):
            try:
                if any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
                       for c in p.net_connections(kind="tcp")):
                    return name
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return None


def _heartbeats(srv, flow_run_id: str) -> int:
    body = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]},
                       "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}}, "limit": 50}
    r = http("POST", f"{srv.api}/events/filter", json=body)
    return len(r.json().get("events", [])) if r.status_code == 200 else 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_workers_split_a_backfill_and_a_killed_worker_loses_no_date(tmp_path, http_server):
    home = tmp_path / "home"
    write_series(http_server.root / "sales.csv")
    port = http_server.server_address[1]
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(http_server.url("sales.csv"), source="read_timeout = 600"))
    champion = seasonal_naive_in_production(home)

    extra = {"PYTHONPATH": SRC, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
             "PREFECT_WORKER_QUERY_SECONDS": "2", "FLOWCAST_WORKERS__CRASH_AFTER": CRASH_AFTER}
    with prefect_server(tmp_path / "server", extra) as srv:
        # -- the pool, the deployments of deployments/prefect.yaml, the automation, two workers
        _run(srv, [PREFECT, "work-pool", "create", POOL, "--type", "process"])
        _run(srv, [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"])
        r = http("POST", f"{srv.api}/deployments/filter", json={"limit": 20})
        assert sorted((d["name"], d["work_pool_name"]) for d in r.json()) == [
            ("backfill-pool", POOL), ("forecast-pool", POOL), ("retrain-pool", POOL)]
        forecast_id = next(d["id"] for d in r.json() if d["name"] == "forecast-pool")
        for expected in ("created", "unchanged"):  # idempotent
            done = _summary(_run(srv, [FLOWCAST, "automations", "apply", "--config", str(cfg), "--json"]).stdout)
            assert [(a["name"], a["action"]) for a in done["automations"]] == [
                ("flowcast: crash silent runs", expected)]
        workers = {name: srv.start([PREFECT, "worker", "start", "--pool", POOL, "--limit", "1", "--name", name],
                                   tmp_path / f"{name}.log", cwd=ROOT) for name in WORKERS}

        def online() -> bool:
            r = http("POST", f"{srv.api}/work_pools/{POOL}/workers/filter", json={})
            return r.status_code == 200 and set(WORKERS) <= {w["name"] for w in r.json()}

        srv.wait(online, 180, "both workers to poll the pool")

        # -- 1. six dates over two workers, each published exactly once
        first = _summary(_run(srv, _backfill_args(cfg, home, "2019-01-01", "2019-06-01"), timeout=900).stdout)
        six = [f"2019-0{m}-01T00:00:00" for m in range(1, 7)]
        outcomes = first["outcomes"]
        print(json.dumps([{k: o[k] for k in ("as_of", "status", "rows", "model", "worker", "flow_run", "attempts")}
                          for o in outcomes]))
        assert [o["as_of"] for o in outcomes] == six
        assert [(o["status"], o["rows"], o["model"], o["attempts"]) for o in outcomes] == [
            ("published", 24, champion, 1)] * 6
        assert {o["worker"] for o in outcomes} == set(WORKERS)  # both workers took dates
        runs = {fr["id"]: fr for fr in _flow_runs(srv, forecast_id)}
        assert len(runs) == 6
        for o in outcomes:  # the summary agrees with what the server recorded
            fr = runs[o["flow_run_id"]]
            assert fr["state"]["type"] == "COMPLETED" and fr["name"] == o["flow_run"]
            assert fr["labels"]["prefect.worker.name"] == o["worker"]
        stored = _stored(home)
        assert sorted(stored) == six
        for a, o in zip(six, outcomes, strict=True):
            rows, distinct, _, run_id = stored[a]
            assert rows == distinct == 24 and run_id == o["flow_run_id"]  # once, written by that run

        # -- 2. the same backfill again: nothing started, nothing published twice
        again = _summary(_run(srv, _backfill_args(cfg, home, "2019-01-01", "2019-06-01"), timeout=600).stdout)
        assert [(o["status"], o["rows"], o["model"]) for o in again["outcomes"]] == [("skipped", 24, champion)] * 6
        assert len(_flow_runs(srv, forecast_id)) == 6 and _stored(home) == stored
        redo = _summary(_run(srv, [*_backfill_args(cfg, home, "2019-06-01", "2019-06-01"), "--overwrite"],
                             timeout=600).stdout)["outcomes"]
        (o,) = redo
        assert (o["status"], o["rows"]) == ("published", 24) and o["flow_run_id"] != outcomes[-1]["flow_run_id"]
        rows, distinct, digest, run_id = _stored(home)["2019-06-01T00:00:00"]
        assert rows == distinct == 24 and run_id == o["flow_run_id"]  # replaced, not added to
        assert digest == stored["2019-06-01T00:00:00"][2]  # the same forecasts: the same content hash
        stored["2019-06-01T00:00:00"] = (rows, distinct, digest, run_id)

        # -- retrain/retrain-pool: each date trains and publishes its own best model, production stays
        retrains = _summary(_run(srv, _backfill_args(cfg, home, "2018-06-01", "2018-12-01", "retrain/retrain-pool", "6mo"),
                                 timeout=900).stdout)["outcomes"]
        print(json.dumps([{k: o[k] for k in ("as_of", "status", "rows", "model", "worker", "flow_run")}
                          for o in retrains]))
        assert [(o["as_of"], o["status"], o["rows"]) for o in retrains] == [
            ("2018-06-01T00:00:00", "published", 24), ("2018-12-01T00:00:00", "published", 24)]
        after = ModelRegistry(home / "models")
        assert all(o["worker"] in WORKERS and after.get(o["model"]).dataset == "tiny" for o in retrains)
        assert after.production("tiny").version == champion  # backfills never promote
        stored.update({o["as_of"]: _stored(home)[o["as_of"]] for o in retrains})

        # -- 3. a worker dies mid-backfill: its date is started again, on the other worker
        http_server.failures.append(900.0)  # the next data request is answered after 15 minutes
        log = tmp_path / "backfill-kill.log"
        bf = subprocess.Popen(_backfill_args(cfg, home, "2019-07-01", "2019-09-01"), env=srv.env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=log.open("wb"), text=True, start_new_session=True)
        try:
            victim = srv.wait(lambda: _holder_of_port(workers, port), 300, "a flow run to hold the data request")
            (held,) = [fr for fr in _flow_runs(srv, forecast_id, state={"type": {"any_": ["RUNNING"]}})
                       if fr["labels"].get("prefect.worker.name") == victim]
            srv.wait(lambda: _heartbeats(srv, held["id"]), 120, f"a heartbeat of {held['name']}")
            proc = workers.pop(victim)
            srv.others = [(p, lg) for p, lg in srv.others if p is not proc]  # its death is intended
            tree = _tree(proc.pid)
            for p in tree:
                p.send_signal(signal.SIGKILL)
            psutil.wait_procs(tree, timeout=30)
            out, _ = bf.communicate(timeout=600)
        finally:
            if bf.poll() is None:
                os.killpg(bf.pid, signal.SIGKILL)
        assert bf.returncode == 0, log.read_text()[-4000:]
        third = _summary(out)["outcomes"]
        print(json.dumps({"killed": victim, "held": held["name"], "outcomes": [
            {k: o[k] for k in ("as_of", "status", "rows", "worker", "flow_run", "attempts")} for o in third]}))
        survivor = next(iter(workers))
        assert [(o["status"], o["rows"]) for o in third] == [("published", 24)] * 3
        retried = [o for o in third if o["attempts"] == 2]
        assert len(retried) == 1 and retried[0]["worker"] == survivor
        assert retried[0]["as_of"] == held["parameters"]["as_of"]  # the killed run's date
        crashed = http("GET", f"{srv.api}/flow_runs/{held['id']}").json()
        assert crashed["state"]["type"] == "CRASHED", crashed["state"]
        # whoever saw it first says why: Prefect's heartbeat automation, or flowcast's reaper (a later run in
        # the same home on this machine finds the killed run's process gone: flowcast.ops.reaper)
        message = crashed["state"]["message"]
        assert f"No heartbeat for {CRASH_AFTER}" in message or (
            "is gone without reporting a final state" in message and "killed (SIGKILL)" in message), message
        final = _stored(home)
        assert sorted(final) == sorted(stored) + ["2019-07-01T00:00:00", "2019-08-01T00:00:00", "2019-09-01T00:00:00"]
        assert all(rows == distinct == 24 for rows, distinct, _, _ in final.values())
        assert {a: v for a, v in final.items() if a in stored} == stored  # earlier dates untouched
        assert final[retried[0]["as_of"]][3] == retried[0]["flow_run_id"]  # written by the restarted run
