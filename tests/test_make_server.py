"""`make server SERVER_PORT=N`: a real Prefect server on another port than 4200 whose UI is told
where its API is (the UI reads /ui-settings; without PREFECT_UI_API_URL it would ask :4200)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from prefect_server import free_port, stop

ROOT = Path(__file__).resolve().parents[1]


def _server_command(port: int) -> str:
    """The recipe `make server` runs (printed by `make -n`, which runs nothing: not even the
    virtualenv stamp's install)."""
    out = subprocess.run(["make", "-n", "server", f"SERVER_PORT={port}"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    lines = out.replace("\\\n", " ").splitlines()
    return next(line for line in lines if "prefect server start" in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_server_on_another_port_tells_the_ui_where_its_api_is(tmp_path):
    port = free_port()
    cmd = _server_command(port)
    assert f"PREFECT_UI_API_URL=http://127.0.0.1:{port}/api" in cmd and f"--port {port}" in cmd
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    log = tmp_path / "server.log"
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        settings = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=2)
                if r.status_code == 200:
                    settings = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert settings is not None, log.read_text(errors="replace")[-3000:]
        assert settings["api_url"] == f"http://127.0.0.1:{port}/api"
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code == 200
        # a server left running deletes flow runs (their logs and artifacts) past Prefect's retention period:
        # without it every run's artifacts stayed for good (~330 KB a forecast run, measured over scheduled runs)
        admin = httpx.get(f"http://127.0.0.1:{port}/api/admin/settings", timeout=10).json()
        assert set(admin["server"]["services"]["db_vacuum"]["enabled"]) == {"events", "flow_runs"}
    finally:
        stop(proc)
