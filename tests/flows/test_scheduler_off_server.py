"""A Prefect server without its scheduler service (`prefect server start --no-services`) creates no scheduled run,
so a served or deployed schedule never runs, and Prefect says nothing (serve40). `flowcast serve` and `flowcast
deploy` check, once they registered schedules, that the server scheduled runs of them within a bounded wait, and
say the likely cause and what to do when it did not. Real `prefect server start` processes on loopback."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from prefect_server import prefect_server

pytestmark = pytest.mark.timeout(600)


def _cron_deployment(api: str) -> str:
    """A forecast deployment with an every-minute schedule registered on `api`: its name."""
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows import forecast_flow

    with temporary_settings({PREFECT_API_URL: api}):
        d = forecast_flow.to_deployment(f"every-minute-{uuid.uuid4().hex[:8]}", schedules=[Cron("* * * * *")])
        d.apply()
    return f"forecast/{d.name}"


def _deploy(api: str, monkeypatch, check_s: float) -> str:
    """`flowcast deploy` of the repository's work-pool deployments on `api`, its schedule check bounded by `check_s`:
    its output, on one line."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.flows import deploy

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    monkeypatch.setattr(deploy, "SCHEDULE_CHECK_S", check_s)
    with temporary_settings({PREFECT_API_URL: api}):
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name="flowcast-process", type="process"))
        res = CliRunner().invoke(app, ["deploy"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 0, out
    return out


def _checks_waits(monkeypatch) -> list[float]:
    """The waits (`time.sleep`) of `deploy.unscheduled` between its looks at the server, as they are made."""
    import time

    waits: list[float] = []
    sleep = time.sleep

    def counted(seconds: float) -> None:
        if sys._getframe(1).f_code.co_name == "unscheduled":
            waits.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", counted)
    return waits


def test_a_server_with_its_scheduler_schedules_the_runs_and_nothing_is_said(tmp_path, monkeypatch):
    """... and the check returns as soon as the runs are there, well before its bound: on a working server neither
    `flowcast deploy` nor a check of runs scheduled already waits it out (msg42)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows.deploy import say_if_unscheduled, unscheduled

    waits = _checks_waits(monkeypatch)
    with prefect_server(tmp_path / "server") as srv:
        name = _cron_deployment(srv.api)
        said: list[str] = []
        with temporary_settings({PREFECT_API_URL: srv.api}):
            say_if_unscheduled([name], said.append, wait_s=120)  # returns once the scheduler made its runs
        assert said == []
        assert sum(waits) < 119, waits  # it looked again (if they were not there yet) until they were, then returned
        waits.clear()
        with temporary_settings({PREFECT_API_URL: srv.api}):
            assert unscheduled([name], 120) == []
        assert waits == []  # runs scheduled already: one look, no wait

        # `flowcast deploy` on it: nothing said, back once the scheduler made their runs, whatever its bound
        out = _deploy(srv.api, monkeypatch, 600.0)
        assert "Run forms given to" in out and "warning" not in out, out
        assert sum(waits) < 599, (waits, out)


def test_a_server_started_with_no_services_is_said_by_serve_and_deploy(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows import deploy
    from flowcast.flows.deploy import say_if_unscheduled

    with prefect_server(tmp_path / "server", args=("--no-services",)) as srv:
        name = _cron_deployment(srv.api)
        said: list[str] = []
        with temporary_settings({PREFECT_API_URL: srv.api}):
            say_if_unscheduled([name], said.append, wait_s=3)
        [sentence] = said
        assert sentence.startswith(f"the Prefect API {srv.api} created no scheduled run of {name} within 3 s of their "
                                   "schedules being registered: its scheduler service is likely off "
                                   "(`prefect server start --no-services`, or PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"
                                   "=false)"), sentence
        assert "Restart the server with its services" in sentence

        # `flowcast serve` against it says so (its default schedules: retrain weekly, forecast daily)
        log = tmp_path / "serve.log"
        srv.start([sys.executable, "-m", "flowcast", "serve", "--home", str(tmp_path / "home")], log, cwd=tmp_path,
                  env={"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"})

        def warned() -> str | None:
            text = " ".join(log.read_text(errors="replace").split())
            return text if "created no scheduled run" in text else None

        text = srv.wait(warned, 240, "serve's warning")
        assert (f"the Prefect API {srv.api} created no scheduled run of retrain/retrain and forecast/forecast within "
                f"{deploy.SCHEDULE_CHECK_S:.0f} s") in text, text
        # the check waits beside the serve, which serves from the start (msg42: it never delays it)
        assert text.index("being served and polling") < text.index("created no scheduled run"), text
        # before it, the serve scheduled the slots since its missed-slot check itself (soak45): without a failure
        assert "could not schedule the slots" not in text, text

        # `flowcast deploy` of the work pool's deployments likewise
        out = _deploy(srv.api, monkeypatch, 3.0)
        assert (f"warning: the Prefect API {srv.api} created no scheduled run of retrain/retrain-pool and "
                "forecast/forecast-pool within 3 s") in out, out
