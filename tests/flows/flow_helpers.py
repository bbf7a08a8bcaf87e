"""Tiny data and settings for the flow tests: 4 monthly series of 10 years, models of a few steps."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl

START = datetime(2010, 1, 1)
N_MONTHS = 120  # 2010-01 .. 2019-12
AS_OF = datetime(2019, 6, 1)  # the trained fixture's run key


def write_series(path: Path, n_series: int = 4, n_months: int = N_MONTHS) -> Path:
    """Seasonal series with trend and a little deterministic noise, raw column names."""
    rows = []
    for s in range(n_series):
        for t in range(n_months):
            y = 100 + 10 * s + 0.5 * t + 8 * math.sin(2 * math.pi * t / 12 + s) + ((t * 7 + s * 3) % 5 - 2)
            rows.append({"store": f"S{s}", "month": f"{2010 + t // 12}-{t % 12 + 1:02d}-01", "sales": round(y, 3)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).write_csv(path)
    return path


def tiny_toml(csv: Path | str, max_steps: int = 3, source: str = "", sections: str = "", **model: object) -> str:
    """flowcast.toml of a command-line run on `write_series` data (dataset "tiny", at a path or URL): one
    tiny gru trained inline on the CPU, one backtest window; `source` adds lines to [sources.tiny]
    ('read_timeout = 600'), `sections` whole sections ('[alerts] ...'), `model` [model] keys
    (checkpoint_every = 10)."""
    extra = "".join(f"{k} = {v}\n" for k, v in model.items())
    return f"""
[sources.tiny]
path = "{csv}"
id_cols = ["store"]
time_col = "month"
target_col = "sales"
freq = "1mo"
horizon = 6
season_length = 12
{source}
{sections}
[publish]
plot_series = 1

[model]
cells = ["gru"]
lookback = 12
hidden_size = 8
num_layers = 1
batch_size = 64
max_steps = {max_steps}
{extra}launcher = "inline"
accelerator = "cpu"
early_stopping_patience = 0

[evaluation]
n_windows = 1
"""


def source_dict(path: Path) -> dict:
    return {"name": "tiny", "path": str(path), "id_cols": ["store"], "time_col": "month", "target_col": "sales",
            "freq": "1mo", "horizon": 6, "season_length": 12}


# small and fast: inline training (no subprocess), a handful of steps, one backtest window
TINY_OVERRIDES = {
    "model": {"cells": ["gru"], "lookback": 12, "hidden_size": 8, "num_layers": 1, "batch_size": 64,
              "max_steps": 5, "launcher": "inline", "accelerator": "cpu", "early_stopping_patience": None},
    "evaluation": {"n_windows": 1},
    "publish": {"plot_series": 2},
}




def artifacts_of(flow_run_id: str) -> dict[str, list]:
    """key -> artifacts of one flow run (its tasks' included), read back through the Prefect API.

    Posts the filter itself: `PrefectClient.read_artifacts` sends null for the filters it is not
    given, which this server rejects (422), and an empty task-run filter would drop the
    artifacts made by the flow itself."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    async def read() -> list[Artifact]:
        async with get_client() as client:
            body = {"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 200, "offset": 0,
                    "sort": "CREATED_DESC"}
            response = await client.request("POST", "/artifacts/filter", json=body)
            return Artifact.model_validate_list(response.json())

    out: dict[str, list] = {}
    for a in asyncio.run(read()):
        out.setdefault(a.key, []).append(a)
    return out


def newest_artifact(key: str):
    """The newest artifact under `key` in this session's Prefect API."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    async def read() -> list[Artifact]:
        async with get_client() as client:
            body = {"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0, "sort": "CREATED_DESC"}
            return Artifact.model_validate_list((await client.request("POST", "/artifacts/filter", json=body)).json())

    (newest,) = asyncio.run(read())
    return newest


def task_states_of(flow_run_id: str) -> dict[str, list[str]]:
    """first word of the task run name (preprocess, train, ...) -> state names of one flow run's task runs
    (read back through the Prefect API)."""
    import asyncio

    from prefect.client.orchestration import get_client

    async def read() -> list[dict]:
        async with get_client() as client:
            body = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}, "limit": 200, "offset": 0}
            response = await client.request("POST", "/task_runs/filter", json=body)
            return response.json()

    out: dict[str, list[str]] = {}
    for tr in asyncio.run(read()):
        # task runs are named for a person ("preprocess tiny"); unnamed ones keep Prefect's "name-3fa"
        name = tr["name"].split(" ", 1)[0] if " " in tr["name"] else tr["name"].rsplit("-", 1)[0]
        out.setdefault(name, []).append(tr["state"]["name"] if tr.get("state") else "")
    return out


def events_named(name: str, timeout: float = 30.0, where: Callable[[dict], bool] | None = None) -> list[dict]:
    """Events called `name` the Prefect API has stored (newest first), polled for up to `timeout`
    seconds: events are sent in the background and persisted in batches. `where`: only those it
    holds for, polled until one is stored (another test's event of that name is not this one's)."""
    import asyncio
    import time

    from prefect.client.orchestration import get_client

    async def read() -> list[dict]:
        async with get_client() as client:
            body = {"filter": {"event": {"name": [name]}, "order": "DESC"}, "limit": 50}
            response = await client.request("POST", "/events/filter", json=body)
            return response.json()["events"]

    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in asyncio.run(read()) if where is None or where(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def prefect_deploy_all(prefect_file: str = "deployments/prefect.yaml") -> None:
    """`prefect deploy --all` of `prefect_file` (from the current folder: the repository root) to the test
    API, its work pool created first: what `flowcast deploy` runs."""
    import os
    import subprocess
    import sys

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="flowcast-process", type="process"))
        except ObjectAlreadyExists:
            pass
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file",
                           prefect_file], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def wait_for(what: str, until: Callable[[], object], proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Polled until `until()` is true; fails naming `what` (and the end of `log`, `proc`'s output) where `proc` ended
    first or `timeout` s passed."""
    deadline = time.monotonic() + timeout
    while not until():
        assert proc.poll() is None, f"it ended (exit {proc.returncode}) before {what}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f} s: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def signal_and_wait(proc: subprocess.Popen, log: Path, timeout: float,
                    signum: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    """One `signum` (by default SIGTERM) to `proc`, then its exit code and what it said (`log`); a process still
    running after `timeout` fails."""
    import pytest

    os.kill(proc.pid, signum)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {timeout:.0f} s after one {signum.name}: {log.read_text()[-3000:]}")
    return code, log.read_text()
