"""The Prefect server on PostgreSQL, for real: `make server DATABASE_URL=postgresql+asyncpg://...`
against a PostgreSQL 15 server started in a temporary folder (tests/pg_helpers.py), then a tiny
flow run (one task) from another process. The run completes and its rows are in PostgreSQL's
`flow_run`/`task_run` tables; no SQLite database is created."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from prefect_server import Server, free_port, http, stop

ROOT = Path(__file__).resolve().parents[2]

FLOW = '''
from prefect import flow, task


@task
def add(a: int, b: int) -> int:
    return a + b


@flow(name="pg-smoke")
def smoke(x: int) -> int:
    return add(x, 1)


if __name__ == "__main__":
    print(smoke(41))
'''


@pytest.mark.slow
def test_make_server_keeps_its_runs_in_postgresql(postgres, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no `make` on this machine")
    db = postgres.create_database(f"prefect_{uuid.uuid4().hex[:8]}")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**__import__("os").environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_PORT": str(port)}
    for k in ("PREFECT_API_KEY", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(k, None)
    log = tmp_path / "server.log"
    # STAMP= : the recipe only, without the target's virtualenv install step (this checkout shares one)
    proc = subprocess.Popen(
        ["make", "-s", "server", "STAMP=", f"DATABASE_URL={postgres.url(db, driver='postgresql+asyncpg')}"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    srv = Server(api, env, log, proc)
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        srv.wait(healthy, 300, "the Prefect server on PostgreSQL")
        script = tmp_path / "smoke.py"
        script.write_text(FLOW)
        run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300,
                             check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.strip().splitlines()[-1] == "42"

        r = http("POST", f"{api}/flow_runs/filter", json={"limit": 10})
        (fr,) = r.json()
        assert fr["state"]["type"] == "COMPLETED"
        rows = postgres.psql("SELECT f.name, r.state_type, (SELECT count(*) FROM task_run t WHERE t.flow_run_id = r.id) "
                             "FROM flow_run r JOIN flow f ON f.id = r.flow_id", dbname=db)
        print(f"flow_run rows in PostgreSQL database {db}: {rows.strip()}")
        assert rows.strip().splitlines() == ["pg-smoke|COMPLETED|1"]
        assert postgres.psql(f"SELECT id FROM flow_run WHERE id = '{fr['id']}'", dbname=db).strip() == fr["id"]
        assert not list((tmp_path / "prefect").rglob("*.db"))  # nothing went to SQLite
    finally:
        stop(proc)
        postgres.drop_database(db)
