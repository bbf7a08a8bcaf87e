"""A Ctrl-C that lands while Prefect creates a task run: the flow run is Crashed, the command says
'interrupted' and exits 130. Real processes under the session's Prefect API (interrupt_child.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import tiny_toml, write_series

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve().parent / "interrupt_child.py"
SIGNALS = ("SIGINT_AT_TASK_RUN", "SIGINT_AFTER_FLOW_COMPLETED", "SECOND_SIGINT_IN_CLEANUP")  # what the child reads


def _interrupted(tmp_path: Path, command: str, *args: str, **signals: str) -> subprocess.CompletedProcess[str]:
    """`flowcast COMMAND` of the tiny dataset (the statistical models only; its home tmp_path/home) run by
    interrupt_child.py under the session's Prefect API, interrupted where `signals` (the child's variables) say."""
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(tiny_toml(write_series(tmp_path / "tiny.csv")).replace('cells = ["gru"]', "cells = []"))
    env = {**{k: v for k, v in os.environ.items() if k not in SIGNALS}, **signals, "PREFECT_API_URL": _api_url(),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(CHILD.parent)])}
    return subprocess.run([sys.executable, str(CHILD), command, "--dataset", "tiny", "--config", str(cfg), "--home",
                           str(tmp_path / "home"), *args], env=env, capture_output=True, text=True, timeout=400,
                          check=False)


def _state_of_run_said(said: str) -> Any:
    """The state of the flow run whose id the command said ('(run <id>)')."""
    from prefect.client.orchestration import get_client

    run_id = re.search(r"\(run ([0-9a-f-]{36})\)", said)
    assert run_id is not None, said[-3000:]
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id.group(1)).state


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_ctrl_c_while_prefect_creates_a_task_run_crashes_the_flow_run_and_exits_130(tmp_path):
    """Regression: Prefect's task engine, handling a KeyboardInterrupt raised before its task run existed, failed
    to record the crash ('ValueError: Task run is not set'); that ValueError reached the flow as the task's
    error, so the flow run ended Failed ('Flow run encountered an exception: ValueError: Task run is not set'),
    its failure hook sent a 'run failed' event, and nothing said a person had stopped it."""
    from prefect.client.schemas.objects import StateType

    done = _interrupted(tmp_path, "run", "--as-of", "2019-06-01", "--json", SIGINT_AT_TASK_RUN="2")
    said = done.stdout + done.stderr
    assert done.returncode == 130, said[-3000:]
    assert "interrupted" in done.stderr and "Task run is not set" not in said, said[-3000:]
    state = _state_of_run_said(said)
    assert state is not None and state.type == StateType.CRASHED, state
    assert "interrupt" in (state.message or ""), state.message


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_second_ctrl_c_while_the_engine_records_the_first_still_crashes_the_run(tmp_path):
    """Regression: a second Ctrl-C landing while Prefect's engine recorded the first one's crash raised there
    too, cut the recording short and left the flow run Running ('Finished in state Running()'). The second is
    counted and said ('Ctrl-C again to stop at once'); the run is Crashed, the command exits 130, no traceback."""
    from prefect.client.schemas.objects import StateType

    done = _interrupted(tmp_path, "run", "--as-of", "2019-06-01", SIGINT_AT_TASK_RUN="2", SECOND_SIGINT_IN_CLEANUP="1")
    said = done.stdout + done.stderr
    assert done.returncode == 130, said[-3000:]
    assert "Ctrl-C again to stop at once" in done.stderr and "Traceback" not in said, said[-3000:]
    state = _state_of_run_said(said)
    assert state is not None and state.type == StateType.CRASHED, state


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_ctrl_c_after_the_run_completed_keeps_its_forecasts_and_exits_130(tmp_path):
    """Regression: a SIGINT landing after Prefect recorded the flow run Completed (the forecasts published, the
    engine finishing: the command's last second) was swallowed by Prefect's engine ('BaseException was raised
    after user code finished executing', a debug line) and the command exited 0 as if nothing had happened.
    The run stays Completed and its forecasts stay published (they are whole); the command says it was
    interrupted after publishing and exits 130, as every other Ctrl-C does."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    done = _interrupted(tmp_path, "run", "--as-of", "2019-06-01", "--json", SIGINT_AFTER_FLOW_COMPLETED="1")
    said = done.stdout + done.stderr
    assert done.returncode == 130, said[-3000:]
    assert "interrupted" in done.stderr and "published" in done.stderr.split("interrupted", 1)[1], said[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["published_rows"] > 0 and summary["interrupted"] is True, summary
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(summary["run_id"]).state
    assert state is not None and state.type == StateType.COMPLETED, state


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(600)
def test_a_ctrl_c_after_a_backfill_date_completed_stops_the_backfill(tmp_path):
    """Regression: a SIGINT landing after a backfill's date (a child flow run) was recorded Completed was swallowed
    by Prefect's engine, and the backfill went on with its next dates and exited 0. It stops after that date
    (published, whole) with 'interrupted', exit 130; the next date is not started."""
    done = _interrupted(tmp_path, "backfill", "--start", "2019-05-01", "--end", "2019-06-01", "--mode", "retrain",
                        SIGINT_AFTER_FLOW_COMPLETED="child")
    said = done.stdout + done.stderr
    assert done.returncode == 130, said[-3000:]
    assert "interrupted" in done.stderr, said[-3000:]
    published = sorted(p.name for p in (tmp_path / "home" / "warehouse" / "forecasts" / "dataset=tiny").iterdir())
    assert published == ["as_of=2019-05-01T00:00:00"], published


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())
