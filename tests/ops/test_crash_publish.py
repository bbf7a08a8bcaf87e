"""What a killed flow run published, as the reaper's Crashed message says it (flowcast.ops.crash_publish): read off
the real embedded store of the run's home, whose receipt names the flow run that published each as_of."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta

import polars as pl
import pytest

from flowcast.config import load_settings
from flowcast.flows.common import flow_settings
from flowcast.ops.crash_publish import SETTINGS_PARAMETERS, run_store, what_it_published
from flowcast.store import open_store

AS_OF = datetime(2019, 6, 1)
KEY = "us_employment as_of 2019-06-01"


def _publish(home, run_id: str) -> None:
    """Forecasts of the bundled us_employment dataset at AS_OF, published by flow run `run_id`."""
    frame = pl.DataFrame({"unique_id": ["a", "a"], "step": [1, 2],
                          "ds": [AS_OF + timedelta(days=31 * s) for s in (1, 2)], "y_hat": [1.0, 2.0]})
    open_store(load_settings(None, home=home)).publish(frame, dataset="us_employment", as_of=AS_OF, model="naive",
                                                      model_version=None, run_id=run_id, created_at=AS_OF)


def _claim_of(params: dict) -> dict[str, str]:
    """What a run of `params` records in its claim of where it publishes, as `flows.naming` writes it."""
    return run_store(flow_settings(**{k: params.get(k) for k in SETTINGS_PARAMETERS}))


def test_the_store_says_whether_a_killed_run_published_its_as_of(tmp_path):
    """ops53: the Crashed message could not say whether the killed run published; for a run of one explicit as_of the
    store's receipt of that as_of names the flow run that published it, or there is none."""
    home = str(tmp_path / "home")
    params = {"dataset": "us_employment", "as_of": "2019-06-01", "home": home}
    claim = _claim_of(params)
    assert claim == {"store": str(tmp_path / "home" / "warehouse"), "dataset": "us_employment"}
    assert what_it_published(params, "run-1", claim) == f"It published nothing: the store holds no forecasts of {KEY}"
    _publish(home, "run-1")
    assert what_it_published(params, "run-1", claim) == f"It published the forecasts of {KEY} before it stopped"
    # the home the reaper found the claim in, where the parameters name none
    assert what_it_published({k: v for k, v in params.items() if k != "home"}, "run-1", claim, home=home) == (
        f"It published the forecasts of {KEY} before it stopped")


def test_a_key_a_later_run_replaced_names_that_run_not_that_the_killed_run_published_nothing(tmp_path):
    """fixA53: the killed run may have published before a later run replaced its forecasts, before the reap: the
    message says whose forecasts the key holds (the receipt's run), never 'It published nothing'."""
    home = str(tmp_path / "home")
    params = {"dataset": "us_employment", "as_of": "2019-06-01", "home": home}
    _publish(home, "run-1")
    _publish(home, "run-2")
    said = what_it_published(params, "run-1", _claim_of(params))
    assert said == (f"The forecasts of {KEY} in the store are flow run run-2's (whether this run published them "
                    "before that run replaced them cannot be told)"), said


def test_a_reaper_whose_environment_names_another_store_cannot_tell(tmp_path, monkeypatch):
    """fixA53: the settings were rebuilt from the reaper's environment: with FLOWCAST_STORE__URL naming another store
    there, a run that published in its home's store was said to have published nothing. The store the run recorded in
    its claim is the one read, and only where the reaper reaches that very store; else 'cannot be told'."""
    home = str(tmp_path / "home")
    params = {"dataset": "us_employment", "as_of": "2019-06-01", "home": home}
    claim = _claim_of(params)
    _publish(home, "run-1")
    monkeypatch.setenv("FLOWCAST_STORE__URL", str(tmp_path / "elsewhere"))
    assert what_it_published(params, "run-1", claim) is None
    monkeypatch.delenv("FLOWCAST_STORE__URL")
    assert what_it_published(params, "run-1", claim) == f"It published the forecasts of {KEY} before it stopped"
    # a claim that records no store (written by an older flowcast, or where the run could not read its settings)
    assert what_it_published(params, "run-1", {}) is None
    assert what_it_published(params, "run-1", {**claim, "dataset": "other"}) is None


def test_an_unreachable_postgres_store_is_tried_once_not_waited_for(tmp_path, monkeypatch):
    """fixA53: the reap runs as every flow run starts; its read of a PostgreSQL store that does not answer waited
    store.pg_wait_s (60 s) per killed run. It is tried once: 'cannot be told' at once."""
    import time

    with socket.socket() as s:  # a loopback port nothing listens at: each connect is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLOWCAST_STORE__URL", f"postgresql://flowcast@127.0.0.1:{port}/flowcast")
    params = {"dataset": "us_employment", "as_of": "2019-06-01", "home": str(tmp_path / "home")}
    claim = _claim_of(params)
    assert claim["store"].startswith(f"postgresql://flowcast@127.0.0.1:{port}/flowcast")
    t0 = time.monotonic()
    assert what_it_published(params, "run-1", claim) is None
    assert time.monotonic() - t0 < 20, "waited for the store as a publish does (store.pg_wait_s = 60 s)"


@pytest.mark.parametrize("params", [
    {"dataset": "us_employment"},  # a schedule slot killed before it resolved its as_of: its claim records none
    {"dataset": "us_employment", "start": "2019-01-01", "end": "2019-06-01"},  # a backfill: several as_ofs
    {"as_of": "2019-06-01", "source": {"path": "x.csv"}},  # a source the reaper cannot resolve
    {"as_of": "2019-06-01", "dataset": "us_employment", "config_file": "/nonexistent/flowcast.toml"},
])
def test_what_cannot_be_told_from_the_store_is_left_unsaid(tmp_path, params):
    _publish(str(tmp_path / "home"), "run-1")
    claim = _claim_of({"dataset": "us_employment", "home": str(tmp_path / "home")})
    assert what_it_published({**params}, "run-1", claim, home=tmp_path / "home") is None


@pytest.mark.usefixtures("prefect_api")
def test_a_reaped_run_that_published_its_as_of_says_so_in_its_crashed_message(tmp_path):
    """The reaper's message of a dead process's run that published its as_of says so, where it said whether it
    published anything 'cannot be told from here'."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from flowcast.ops.reaper import CLAIMS, reap

    @flow(name="retrain")
    def retrain(home: str = "", as_of: str = "", dataset: str = "") -> None: ...

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    home = tmp_path / "home"
    with get_client(sync_client=True) as client:
        messages = []
        for published in (True, False):
            run = client.create_flow_run(retrain, parameters={"home": str(home), "as_of": "2019-06-01",
                                                              "dataset": "us_employment"})
            client.set_flow_run_state(run.id, Running(), force=True)
            if published:
                _publish(str(home), str(run.id))
            (home / CLAIMS).mkdir(parents=True, exist_ok=True)
            claim = {"flow_run_id": str(run.id), "name": run.name, "pid": dead.pid, "pid_start": "1",
                     "host": socket.gethostname(), "pid_ns": os.readlink("/proc/self/ns/pid"), "api_url": "",
                     "command": "flowcast run", **_claim_of({"home": str(home), "dataset": "us_employment"})}
            (home / CLAIMS / f"{run.id}.json").write_text(json.dumps(claim))
            assert [r.action for r in reap(home, by="flowcast reap")] == ["crashed"]
            messages.append((str(run.id), client.read_flow_run(run.id).state.message))
    (first, said), (_, other) = messages
    assert f"It did not finish. It published the forecasts of {KEY} before it stopped (" in said, said
    assert f"It did not finish. The forecasts of {KEY} in the store are flow run {first}'s (" in other, other
    assert "cannot be told from here" not in said + other


@pytest.mark.usefixtures("prefect_api")
def test_a_flow_run_records_its_store_in_its_claim(tmp_path, monkeypatch):
    """fixA53: the claim a flow run writes as Prefect asks for its name (`flows.naming`) records the store and dataset
    the run's own settings name (its environment's FLOWCAST_STORE__URL here), which the reaper reads."""
    from prefect import flow

    from flowcast.flows import naming
    from flowcast.ops.reaper import CLAIMS

    home = tmp_path / "home"
    monkeypatch.setenv("FLOWCAST_STORE__URL", str(tmp_path / "its-store"))
    params = {"home": str(home), "as_of": "2019-06-01", "dataset": "us_employment"}
    assert naming._store_of(params) == {"store": str(tmp_path / "its-store"), "dataset": "us_employment"}

    @flow(name="claims-itself")
    def claims_itself() -> str:
        from prefect.runtime import flow_run

        naming._claim(params)
        return str(flow_run.id)

    run_id = claims_itself()
    claim = json.loads((home / CLAIMS / f"{run_id}.json").read_text())
    assert (claim["store"], claim["dataset"]) == (str(tmp_path / "its-store"), "us_employment"), claim


def test_a_schedule_slot_is_read_at_the_as_of_its_claim_records(tmp_path):
    """ops54: a scheduled retrain has no as_of parameter (its as_of is its scheduled start), and its Crashed message
    said whether it published 'cannot be told'; the run records the as_of it resolved in its claim, read here."""
    home = str(tmp_path / "home")
    params = {"dataset": "us_employment", "home": home}
    claim = {**_claim_of(params), "as_of": "2019-06-01T00:00:00+00:00"}
    assert what_it_published(params, "run-1", claim) == f"It published nothing: the store holds no forecasts of {KEY}"
    _publish(home, "run-1")
    assert what_it_published(params, "run-1", claim) == f"It published the forecasts of {KEY} before it stopped"


@pytest.mark.usefixtures("prefect_api")
def test_a_flow_run_records_the_as_of_it_resolved_in_its_claim(tmp_path):
    """ops54: a run without an as_of parameter (a schedule slot) resolves its as_of from its scheduled start
    (`resolve_as_of`); `run_identity` adds it to the claim `flows.naming` wrote (its store kept), and the reaper's
    message reads the store at that as_of."""
    from prefect import flow

    from flowcast.flows import naming
    from flowcast.flows.common import resolve_as_of, run_identity
    from flowcast.ops.reaper import CLAIMS
    from flowcast.timekeys import utc_text

    home = tmp_path / "home"
    params = {"home": str(home), "dataset": "us_employment"}

    @flow(name="resolves-its-as-of")
    def resolves_its_as_of() -> tuple[str, datetime]:
        naming._claim(params)
        as_of = resolve_as_of(None)
        run_id, _ = run_identity(str(home), as_of)
        return run_id, as_of

    run_id, as_of = resolves_its_as_of()
    claim = json.loads((home / CLAIMS / f"{run_id}.json").read_text())
    assert claim["as_of"] == as_of.isoformat() and claim["store"] == str(home / "warehouse"), claim
    assert what_it_published(params, run_id, claim) == (
        f"It published nothing: the store holds no forecasts of us_employment as_of {utc_text(as_of)}")
